/* nodeflow — weight averaging over the optimizer's steps:
 *
 *   polyak   the running mean of the weights after each step
 *            (Polyak & Juditsky 1992; torch.optim.swa_utils.AveragedModel):
 *            avg = avg + (w - avg) / (n + 1)
 *   ema      an exponential moving average: avg = decay avg + (1 - decay) w
 *
 * The first update copies the weights. nf_average_swap exchanges the
 * averaged and the live weights, so that evaluation and saving use the
 * average, and a second swap puts the live weights back. */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "optim/optimizer.h"

struct nf_average {
    nf_graph *graph;
    uint64_t version;
    int ema;
    double decay;
    float *avg;          /* same layout as graph->values */
    int64_t count;       /* updates so far */
};

nf_status nf_average_new(nf_graph *g, const char *kind, double decay, nf_average **out, nf_error *err)
{
    if (!g || !kind || !out)
        return nf_fail(err, NF_ERR_INVALID_ARGUMENT, "nf_average_new: NULL argument");
    *out = NULL;
    int ema = strcmp(kind, "ema") == 0;
    if (!ema && strcmp(kind, "polyak") != 0)
        return nf_fail(err, NF_ERR_INVALID_ARGUMENT, "unknown averaging '%s' (ema or polyak)", kind);
    if (ema && !(decay > 0 && decay < 1))
        return nf_fail(err, NF_ERR_INVALID_ARGUMENT, "ema decay %g must be in (0, 1)", decay);
    if (g->validated_version != g->version)
        return nf_fail(err, NF_ERR_STATE, "validate the graph before averaging its weights");
    nf_average *a = calloc(1, sizeof *a);
    size_t floats = (size_t)(g->param_floats ? g->param_floats : 16);
    float *avg = a ? nf_aligned_alloc(floats * sizeof(float)) : NULL;
    if (!avg) {
        free(a);
        return nf_fail(err, NF_ERR_NO_MEMORY, "out of memory for averaged weights");
    }
    memset(avg, 0, floats * sizeof(float));
    *a = (nf_average){g, g->version, ema, decay, avg, 0};
    *out = a;
    return NF_OK;
}

void nf_average_free(nf_average *a)
{
    if (!a)
        return;
    nf_aligned_free(a->avg);
    free(a);
}

nf_status nf_average_update(nf_average *a, nf_error *err)
{
    if (!a)
        return nf_fail(err, NF_ERR_INVALID_ARGUMENT, "averager is NULL");
    if (a->graph->version != a->version)
        return nf_fail(err, NF_ERR_STATE, "the graph's parameters changed; create the averager again");
    const float *w = a->graph->values;
    int64_t n = a->graph->param_floats;
    float keep = (float)a->decay, take = (float)(1.0 - a->decay), n_plus_1 = (float)(a->count + 1);
    if (a->count == 0)
        memcpy(a->avg, w, (size_t)n * sizeof(float));
    else if (a->ema)
        for (int64_t i = 0; i < n; i++)
            a->avg[i] = keep * a->avg[i] + take * w[i];
    else
        for (int64_t i = 0; i < n; i++)
            a->avg[i] += (w[i] - a->avg[i]) / n_plus_1;
    a->count++;
    return NF_OK;
}

nf_status nf_average_swap(nf_average *a, nf_error *err)
{
    if (!a)
        return nf_fail(err, NF_ERR_INVALID_ARGUMENT, "averager is NULL");
    if (a->graph->version != a->version)
        return nf_fail(err, NF_ERR_STATE, "the graph's parameters changed; create the averager again");
    float *w = a->graph->values;
    for (int64_t i = 0; i < a->graph->param_floats; i++) {
        float t = w[i];
        w[i] = a->avg[i];
        a->avg[i] = t;
    }
    return NF_OK;
}

int64_t nf_average_count(const nf_average *a) { return a ? a->count : 0; }

#define AVERAGE_KEY "average"

static const char *average_kind(const nf_average *a) { return !a ? "none" : a->ema ? "ema" : "polyak"; }

static void average_name(char *buf, size_t size, const nf_param *p) { snprintf(buf, size, "average.%s", p->name); }

nf_status nf_average_save_state(const nf_average *a, nf_record *r, nf_error *err)
{
    char text[64], name[NF_PARAM_NAME_MAX + 16];
    snprintf(text, sizeof text, "%s %" PRId64, average_kind(a), a ? a->count : 0);
    nf_record_put_text(r, AVERAGE_KEY, text);
    for (int k = 0; a && k < a->graph->n_params; k++) {
        const nf_param *p = &a->graph->params[k];
        average_name(name, sizeof name, p);
        nf_record_put_tensor(r, name, &p->shape, a->avg + p->offset);
    }
    return nf_record_failed(r) ? nf_fail(err, NF_ERR_NO_MEMORY, "out of memory saving the average") : NF_OK;
}

nf_status nf_average_load_state(nf_average *a, const nf_record *r, int apply, nf_error *err)
{
    const char *text = nf_record_text(r, AVERAGE_KEY);
    char kind[16], name[NF_PARAM_NAME_MAX + 16];
    int64_t count;
    const char *space = text ? strchr(text, ' ') : NULL, *rest = space ? space + 1 : NULL;
    if (!space || space == text || (size_t)(space - text) >= sizeof kind || !nf_scan_count(&rest, &count) || *rest)
        return nf_fail(err, NF_ERR_FORMAT, "malformed average entry '%s'", text ? text : "(missing)");
    snprintf(kind, sizeof kind, "%.*s", (int)(space - text), text);
    if (strcmp(kind, average_kind(a)) != 0)
        return nf_fail(err, NF_ERR_STATE, "the checkpoint averages weights by '%s', not '%s'", kind, average_kind(a));
    for (int k = 0; a && k < a->graph->n_params; k++) {
        const nf_param *p = &a->graph->params[k];
        average_name(name, sizeof name, p);
        nf_status st = nf_record_tensor(r, name, &p->shape, apply ? a->avg + p->offset : NULL, err);
        if (st != NF_OK)
            return st;
    }
    if (a && apply)
        a->count = count;
    return NF_OK;
}
