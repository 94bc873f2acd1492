/* nodeflow — graph weights and training checkpoints as safetensors. */
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/data_internal.h"
#include "engine/safetensors.h"
#include "optim/optimizer.h"

/* ---- weights --------------------------------------------------------- */

static nf_st_entry *param_entries(const nf_graph *g)
{
    nf_st_entry *e = calloc((size_t)g->n_params + 1, sizeof *e);
    for (int k = 0; e && k < g->n_params; k++)
        e[k] = (nf_st_entry){g->params[k].name, g->params[k].shape, g->values + g->params[k].offset};
    return e;
}

nf_status nf_weights_save(const nf_graph *g, const char *path, nf_error *err)
{
    if (!g || !path)
        return nf_fail(err, NF_ERR_INVALID_ARGUMENT, "nf_weights_save: NULL argument");
    if (g->validated_version != g->version)
        return nf_fail(err, NF_ERR_STATE, "validate the graph before saving its weights");
    nf_st_entry *e = param_entries(g);
    if (!e)
        return nf_fail(err, NF_ERR_NO_MEMORY, "out of memory");
    nf_status st = nf_st_write(path, e, g->n_params, NULL, err);
    free(e);
    return st;
}

static int is_checkpoint_extra(const char *name) { return strncmp(name, "optim.", 6) == 0; }

/* Every parameter present with its shape; extra tensors only if allowed. */
static nf_status check_params(const nf_graph *g, const nf_st_file *f, unsigned flags, nf_error *err)
{
    for (int k = 0; k < g->n_params; k++) {
        const nf_param *p = &g->params[k];
        const nf_st_tensor *t = nf_st_find(f, p->name);
        char want[64], have[64];
        if (!t)
            return nf_fail(err, NF_ERR_FORMAT, "%s: tensor '%s' is missing", f->path, p->name);
        if (!nf_shape_equal(&t->shape, &p->shape))
            return nf_fail(err, NF_ERR_SHAPE, "%s: tensor '%s': expected shape %s, found %s", f->path, p->name,
                           nf_shape_format(&p->shape, want, sizeof want), nf_shape_format(&t->shape, have, sizeof have));
    }
    for (int i = 0; i < f->count && !(flags & NF_WEIGHTS_ALLOW_EXTRA); i++)
        if (nf_graph_find_param(g, f->tensors[i].name) < 0 && !is_checkpoint_extra(f->tensors[i].name))
            return nf_fail(err, NF_ERR_FORMAT, "%s: tensor '%s' is not a parameter of the graph (allow extra tensors to ignore it)",
                           f->path, f->tensors[i].name);
    return NF_OK;
}

static void copy_params(nf_graph *g, const nf_st_file *f)
{
    for (int k = 0; k < g->n_params; k++)
        nf_st_read(nf_st_find(f, g->params[k].name), g->values + g->params[k].offset);
}

nf_status nf_weights_load(nf_graph *g, const char *path, unsigned flags, nf_error *err)
{
    if (!g || !path)
        return nf_fail(err, NF_ERR_INVALID_ARGUMENT, "nf_weights_load: NULL argument");
    nf_status st = nf_graph_validate(g, err);
    if (st != NF_OK)
        return st;
    nf_st_file f;
    if ((st = nf_st_open(path, &f, err)) != NF_OK)
        return st;
    st = nf_weights_from(g, &f, flags, err);
    nf_st_close(&f);
    return st;
}

nf_status nf_weights_from(nf_graph *g, const nf_st_file *f, unsigned flags, nf_error *err)
{
    nf_status st = check_params(g, f, flags, err);
    if (st == NF_OK)
        copy_params(g, f);
    return st;
}

/* ---- checkpoints ----------------------------------------------------- */

#define CHECKPOINT_FORMAT "nodeflow-checkpoint-1"
#define STATE_NAME_MAX (NF_PARAM_NAME_MAX + 24)

/* "optim.<param>.<slot>": the tensor of one optimizer state slot. */
static void state_name(char *buf, const nf_param *p, int slot)
{
    snprintf(buf, STATE_NAME_MAX, "optim.%s.%d", p->name, slot);
}

static int add_meta(cJSON *meta, const char *key, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static int add_meta(cJSON *meta, const char *key, const char *fmt, ...)
{
    char value[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(value, sizeof value, fmt, ap);
    va_end(ap);
    return cJSON_AddStringToObject(meta, key, value) != NULL;
}

static cJSON *checkpoint_meta(const nf_optimizer *opt, const nf_batcher *b, const nf_progress *progress)
{
    cJSON *meta = cJSON_CreateObject();
    int ok = meta && add_meta(meta, "format", "%s", CHECKPOINT_FORMAT) &&
             add_meta(meta, "optimizer", "%s", opt->type->name) &&
             add_meta(meta, "optimizer_steps", "%" PRId64, opt->steps) &&
             add_meta(meta, "epoch", "%" PRId64, progress->epoch) &&
             add_meta(meta, "step", "%" PRId64, progress->step) &&
             add_meta(meta, "batch_size", "%" PRId64, b->batch) &&
             add_meta(meta, "batch_next", "%" PRId64, b->next) &&
             add_meta(meta, "samples", "%" PRId64, b->ds->count) &&
             add_meta(meta, "shuffle_state", "%016" PRIx64 "%016" PRIx64 "%016" PRIx64 "%016" PRIx64,
                      b->epoch_rng.s[0], b->epoch_rng.s[1], b->epoch_rng.s[2], b->epoch_rng.s[3]);
    for (int i = 0; ok && i < opt->type->n_hparams; i++) {
        char key[64];
        snprintf(key, sizeof key, "hparam.%s", opt->type->hparams[i].name);
        ok = add_meta(meta, key, "%.17g", opt->h[i]);
    }
    if (!ok) {
        cJSON_Delete(meta);
        return NULL;
    }
    return meta;
}

/* Parameters, then one "optim.<param>.<slot>" tensor per state slot. */
static nf_st_entry *checkpoint_entries(const nf_graph *g, const nf_optimizer *opt, char (**names)[STATE_NAME_MAX], int *count)
{
    int slots = opt->type->state_per_float, n = g->n_params * (1 + slots);
    nf_st_entry *e = param_entries(g);
    nf_st_entry *all = e ? realloc(e, ((size_t)n + 1) * sizeof *all) : NULL;
    *names = calloc((size_t)g->n_params * (size_t)slots + 1, sizeof **names);
    if (!all || !*names) {
        free(all ? all : e);
        free(*names);
        return NULL;
    }
    for (int k = 0; k < g->n_params; k++)
        for (int s = 0; s < slots; s++) {
            const nf_param *p = &g->params[k];
            char *name = (*names)[k * slots + s];
            state_name(name, p, s);
            all[g->n_params + k * slots + s] =
                (nf_st_entry){name, p->shape, opt->state + p->offset * slots + (int64_t)s * p->size};
        }
    *count = n;
    return all;
}

nf_status nf_checkpoint_save(const char *path, const nf_graph *g, const nf_optimizer *opt, const nf_batcher *b,
                             const nf_progress *progress, nf_error *err)
{
    if (!path || !g || !opt || !b || !progress)
        return nf_fail(err, NF_ERR_INVALID_ARGUMENT, "nf_checkpoint_save: NULL argument");
    if (opt->graph != g || opt->version != g->version)
        return nf_fail(err, NF_ERR_STATE, "the optimizer does not belong to this graph as it is now");
    char(*names)[STATE_NAME_MAX] = NULL;
    int count = 0;
    cJSON *meta = checkpoint_meta(opt, b, progress);
    nf_st_entry *entries = meta ? checkpoint_entries(g, opt, &names, &count) : NULL;
    nf_status st = entries ? nf_st_write(path, entries, count, meta, err)
                           : nf_fail(err, NF_ERR_NO_MEMORY, "out of memory writing a checkpoint");
    free(entries);
    free(names);
    cJSON_Delete(meta);
    return st;
}

static int meta_int(const nf_st_file *f, const char *key, int64_t *out)
{
    const char *v = nf_st_meta(f, key);
    char *end;
    if (!v)
        return 0;
    long long x = strtoll(v, &end, 10);
    if (end == v || *end)
        return 0;
    *out = x;
    return 1;
}

static int meta_rng(const nf_st_file *f, nf_rng *rng)
{
    const char *v = nf_st_meta(f, "shuffle_state");
    if (!v || strlen(v) != 64)
        return 0;
    for (int i = 0; i < 4; i++) {
        char part[17];
        memcpy(part, v + 16 * i, 16);
        part[16] = '\0';
        char *end;
        rng->s[i] = strtoull(part, &end, 16);
        if (*end)
            return 0;
    }
    return 1;
}

/* Reads and checks everything a checkpoint must hold before changing
 * anything. */
static nf_status read_checkpoint(const nf_st_file *f, const nf_graph *g, const nf_optimizer *opt,
                                 const nf_batcher *b, nf_progress *progress, int64_t *steps, int64_t *next,
                                 nf_rng *rng, double *h, nf_error *err)
{
    int64_t batch, samples;
    const char *format = nf_st_meta(f, "format"), *name = nf_st_meta(f, "optimizer");
    if (!format || strcmp(format, CHECKPOINT_FORMAT) != 0)
        return nf_fail(err, NF_ERR_FORMAT, "%s: not a nodeflow checkpoint (no format '%s' in __metadata__)",
                       f->path, CHECKPOINT_FORMAT);
    if (!name || strcmp(name, opt->type->name) != 0)
        return nf_fail(err, NF_ERR_STATE, "%s: the checkpoint is for optimizer '%s', not '%s'", f->path,
                       name ? name : "?", opt->type->name);
    if (!meta_int(f, "optimizer_steps", steps) || !meta_int(f, "epoch", &progress->epoch) ||
        !meta_int(f, "step", &progress->step) || !meta_int(f, "batch_size", &batch) ||
        !meta_int(f, "batch_next", next) || !meta_int(f, "samples", &samples) || !meta_rng(f, rng) ||
        *steps < 0 || *next < 0)
        return nf_fail(err, NF_ERR_FORMAT, "%s: incomplete or malformed checkpoint metadata", f->path);
    if (batch != b->batch || samples != b->ds->count)
        return nf_fail(err, NF_ERR_STATE, "%s: saved for batches of %lld over %lld samples, not %lld over %lld",
                       f->path, (long long)batch, (long long)samples, (long long)b->batch, (long long)b->ds->count);
    for (int i = 0; i < opt->type->n_hparams; i++) {
        char key[64];
        snprintf(key, sizeof key, "hparam.%s", opt->type->hparams[i].name);
        const char *v = nf_st_meta(f, key);
        char *end;
        h[i] = v ? strtod(v, &end) : NAN;
        if (!v || *end || nf_optimizer_type_check(opt->type, opt->type->hparams[i].name, h[i], NULL) != NF_OK)
            return nf_fail(err, NF_ERR_FORMAT, "%s: missing or bad %s", f->path, key);
    }
    nf_status st = check_params(g, f, NF_WEIGHTS_STRICT, err);
    for (int k = 0; st == NF_OK && k < g->n_params; k++)
        for (int s = 0; s < opt->type->state_per_float; s++) {
            char tname[STATE_NAME_MAX];
            state_name(tname, &g->params[k], s);
            const nf_st_tensor *t = nf_st_find(f, tname);
            if (!t || !nf_shape_equal(&t->shape, &g->params[k].shape))
                return nf_fail(err, NF_ERR_FORMAT, "%s: optimizer state '%s' is missing or misshapen", f->path, tname);
        }
    return st;
}

nf_status nf_checkpoint_load(const char *path, nf_graph *g, nf_optimizer *opt, nf_batcher *b, nf_progress *progress,
                             nf_error *err)
{
    if (!path || !g || !opt || !b || !progress)
        return nf_fail(err, NF_ERR_INVALID_ARGUMENT, "nf_checkpoint_load: NULL argument");
    if (opt->graph != g || opt->version != g->version)
        return nf_fail(err, NF_ERR_STATE, "the optimizer does not belong to this graph as it is now");
    nf_st_file f;
    nf_status st = nf_st_open(path, &f, err);
    if (st != NF_OK)
        return st;
    nf_progress read = {0};
    int64_t steps = 0, next = 0;
    nf_rng rng;
    double h[NF_MAX_HPARAMS];
    st = read_checkpoint(&f, g, opt, b, &read, &steps, &next, &rng, h, err);
    if (st == NF_OK) {
        copy_params(g, &f);
        int slots = opt->type->state_per_float;
        for (int k = 0; k < g->n_params; k++)
            for (int s = 0; s < slots; s++) {
                char tname[STATE_NAME_MAX];
                const nf_param *p = &g->params[k];
                state_name(tname, p, s);
                nf_st_read(nf_st_find(&f, tname), opt->state + p->offset * slots + (int64_t)s * p->size);
            }
        memcpy(opt->h, h, (size_t)opt->type->n_hparams * sizeof(double));
        opt->steps = steps;
        nf_batcher_restore(b, &rng, next);
        *progress = read;
    }
    nf_st_close(&f);
    return st;
}
