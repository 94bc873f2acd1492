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
#include <math.h>
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

float *nf_average_values(nf_average *a, int64_t *count) /* checkpoints */
{
    *count = a->count;
    return a->avg;
}

void nf_average_restore(nf_average *a, int64_t count) { a->count = count; }

int nf_average_is_ema(const nf_average *a) { return a->ema; }
