/* nodeflow — graph weights and training checkpoints as safetensors. */
#include <ctype.h>
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

#define VOCAB_KEY "nodeflow.vocab"

/* Adds the graph's vocabulary (hex) to meta, made if NULL; NULL without a
 * vocabulary or out of memory. */
static cJSON *vocab_meta(const nf_graph *g, cJSON *meta)
{
    if (!g->vocab_size)
        return meta;
    char hex[2 * 256 + 1];
    for (int i = 0; i < g->vocab_size; i++)
        snprintf(hex + 2 * i, 3, "%02x", g->vocab[i]);
    cJSON *m = meta ? meta : cJSON_CreateObject();
    if (!m || !cJSON_AddStringToObject(m, VOCAB_KEY, hex)) {
        if (!meta)
            cJSON_Delete(m);
        return NULL;
    }
    return m;
}

/* The vocabulary of a weights file's metadata, if it has one. */
static nf_status vocab_from(nf_graph *g, const nf_st_file *f, nf_error *err)
{
    const char *hex = nf_st_meta(f, VOCAB_KEY);
    if (!hex)
        return NF_OK;
    size_t len = strlen(hex);
    unsigned char bytes[256];
    if (len % 2 || len / 2 > 256 || len == 0)
        return nf_fail(err, NF_ERR_FORMAT, "%s: metadata %s must hold 1 to 256 bytes in hex", f->path, VOCAB_KEY);
    for (size_t i = 0; i < len / 2; i++) {
        unsigned v;
        if (!isxdigit((unsigned char)hex[2 * i]) || !isxdigit((unsigned char)hex[2 * i + 1]) ||
            sscanf(hex + 2 * i, "%2x", &v) != 1)
            return nf_fail(err, NF_ERR_FORMAT, "%s: metadata %s is not hex", f->path, VOCAB_KEY);
        bytes[i] = (unsigned char)v;
    }
    nf_status st = nf_graph_set_vocab(g, bytes, (int)(len / 2), err);
    if (st != NF_OK)
        return nf_fail(err, NF_ERR_FORMAT, "%s: metadata %s: %s", f->path, VOCAB_KEY, err ? err->message : "");
    return NF_OK;
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
    cJSON *meta = vocab_meta(g, NULL);
    nf_status st = g->vocab_size && !meta ? nf_fail(err, NF_ERR_NO_MEMORY, "out of memory")
                                          : nf_st_write(path, e, g->n_params, meta, err);
    cJSON_Delete(meta);
    free(e);
    return st;
}

static int is_checkpoint_extra(const char *name);

/* Every parameter present with its shape; extra tensors only if allowed
 * (a checkpoint's own extra tensors always are). */
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
        st = vocab_from(g, f, err);
    if (st == NF_OK)
        copy_params(g, f);
    return st;
}

/* ---- checkpoints ----------------------------------------------------- */

#define CHECKPOINT_FORMAT "nodeflow-checkpoint-1"
#define EXTRA_NAME_MAX (NF_PARAM_NAME_MAX + 24)

/* Names of the extra tensors: "optim.<param>.<slot>", "grad.<param>",
 * "average.<param>". */
static void extra_name(char *buf, const char *prefix, const nf_param *p, int slot)
{
    if (slot >= 0)
        snprintf(buf, EXTRA_NAME_MAX, "%s.%s.%d", prefix, p->name, slot);
    else
        snprintf(buf, EXTRA_NAME_MAX, "%s.%s", prefix, p->name);
}

static int is_checkpoint_extra(const char *name)
{
    return strncmp(name, "optim.", 6) == 0 || strncmp(name, "grad.", 5) == 0 || strncmp(name, "average.", 8) == 0;
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

static int schedule_meta(cJSON *meta, const nf_schedule *s)
{
    if (!s)
        return add_meta(meta, "schedule", "none");
    nf_schedule_state st;
    nf_schedule_state_get(s, &st);
    return add_meta(meta, "schedule", "%" PRId64 " %" PRId64 " %" PRId64 " %.17g %.17g", st.t, st.bad,
                    st.cooldown_left, st.plateau_lr, st.best);
}

static cJSON *checkpoint_meta(const nf_graph *g, const nf_training *t)
{
    const nf_optimizer *opt = t->opt;
    const nf_batcher *b = t->batches;
    cJSON *meta = cJSON_CreateObject();
    int64_t avg_count = t->average ? nf_average_count(t->average) : 0;
    int ok = meta && add_meta(meta, "format", "%s", CHECKPOINT_FORMAT) &&
             add_meta(meta, "optimizer", "%s", opt->type->name) &&
             add_meta(meta, "optimizer_steps", "%" PRId64, opt->steps) &&
             add_meta(meta, "accumulated", "%" PRId64, opt->pending) &&
             add_meta(meta, "epoch", "%" PRId64, t->progress.epoch) &&
             add_meta(meta, "graph_runs", "%" PRIu64, g->runs) &&
             add_meta(meta, "step", "%" PRId64, t->progress.step) &&
             add_meta(meta, "batch_size", "%" PRId64, b->batch) &&
             add_meta(meta, "batch_next", "%" PRId64, b->next) &&
             add_meta(meta, "samples", "%" PRId64, b->ds->count) &&
             add_meta(meta, "shuffle_state", "%016" PRIx64 "%016" PRIx64 "%016" PRIx64 "%016" PRIx64,
                      b->epoch_rng.s[0], b->epoch_rng.s[1], b->epoch_rng.s[2], b->epoch_rng.s[3]) &&
             schedule_meta(meta, t->schedule) &&
             add_meta(meta, "average", "%s %" PRId64,
                      !t->average ? "none" : nf_average_is_ema(t->average) ? "ema" : "polyak", avg_count);
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

/* Parameters, the optimizer's state slots, pending gradients, averages. */
typedef struct entry_list {
    nf_st_entry *entries;
    char (*names)[EXTRA_NAME_MAX];
    int count;
} entry_list;

static void add_entry(entry_list *l, const char *prefix, const nf_param *p, int slot, const float *data)
{
    char *name = l->names[l->count];
    extra_name(name, prefix, p, slot);
    l->entries[l->count] = (nf_st_entry){name, p->shape, data};
    l->count++;
}

static int checkpoint_entries(const nf_graph *g, const nf_training *t, entry_list *l)
{
    const nf_optimizer *opt = t->opt;
    int slots = opt->type->state_per_float;
    size_t max = (size_t)g->n_params * (size_t)(slots + 3) + 1;
    l->entries = calloc(max, sizeof *l->entries);
    l->names = calloc(max, sizeof *l->names);
    l->count = 0;
    if (!l->entries || !l->names)
        return 0;
    int64_t unused;
    float *avg = t->average ? nf_average_values(t->average, &unused) : NULL;
    for (int k = 0; k < g->n_params; k++) {
        const nf_param *p = &g->params[k];
        l->entries[l->count++] = (nf_st_entry){p->name, p->shape, g->values + p->offset};
        for (int s = 0; s < slots; s++)
            add_entry(l, "optim", p, s, opt->state + p->offset * slots + (int64_t)s * p->size);
        if (opt->pending > 0)
            add_entry(l, "grad", p, -1, g->grads + p->offset);
        if (avg)
            add_entry(l, "average", p, -1, avg + p->offset);
    }
    return 1;
}

nf_status nf_checkpoint_save(const char *path, const nf_graph *g, const nf_training *t, nf_error *err)
{
    if (!path || !g || !t || !t->opt || !t->batches)
        return nf_fail(err, NF_ERR_INVALID_ARGUMENT, "nf_checkpoint_save: NULL argument");
    if (t->opt->graph != g || t->opt->version != g->version)
        return nf_fail(err, NF_ERR_STATE, "the optimizer does not belong to this graph as it is now");
    entry_list l = {0};
    cJSON *meta = checkpoint_meta(g, t);
    if (meta && g->vocab_size && !vocab_meta(g, meta)) {
        cJSON_Delete(meta);
        meta = NULL;
    }
    nf_status st = meta && checkpoint_entries(g, t, &l)
                       ? nf_st_write(path, l.entries, l.count, meta, err)
                       : nf_fail(err, NF_ERR_NO_MEMORY, "out of memory writing a checkpoint");
    free(l.entries);
    free(l.names);
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
    if (end == v || *end || x < 0)
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

/* Everything a checkpoint holds, read and checked before anything of the
 * caller's changes. */
typedef struct saved {
    nf_progress progress;
    int64_t steps, pending, next, avg_count, runs;
    nf_rng rng;
    double h[NF_MAX_HPARAMS];
    int has_schedule;
    nf_schedule_state schedule;
    char average[16];
} saved;

static nf_status read_extras_meta(const nf_st_file *f, const nf_training *t, saved *s, nf_error *err)
{
    const char *sched = nf_st_meta(f, "schedule"), *avg = nf_st_meta(f, "average");
    if (!sched || !avg)
        return nf_fail(err, NF_ERR_FORMAT, "%s: no schedule or average entry in the checkpoint metadata", f->path);
    s->has_schedule = strcmp(sched, "none") != 0;
    long long st_t = 0, bad = 0, cool = 0;
    if (s->has_schedule && sscanf(sched, "%lld %lld %lld %lf %lf", &st_t, &bad, &cool, &s->schedule.plateau_lr,
                                  &s->schedule.best) != 5)
        return nf_fail(err, NF_ERR_FORMAT, "%s: malformed schedule state", f->path);
    s->schedule.t = st_t;
    s->schedule.bad = bad;
    s->schedule.cooldown_left = cool;
    long long count = 0;
    if (sscanf(avg, "%15s %lld", s->average, &count) != 2 || count < 0)
        return nf_fail(err, NF_ERR_FORMAT, "%s: malformed average entry", f->path);
    s->avg_count = count;
    if (s->has_schedule != (t->schedule != NULL))
        return nf_fail(err, NF_ERR_STATE, "%s: the checkpoint was saved %s a schedule; resume it the same way",
                       f->path, s->has_schedule ? "with" : "without");
    const char *kind = !t->average ? "none" : nf_average_is_ema(t->average) ? "ema" : "polyak";
    if (strcmp(s->average, kind) != 0)
        return nf_fail(err, NF_ERR_STATE, "%s: the checkpoint averages weights by '%s', not '%s'", f->path,
                       s->average, kind);
    return NF_OK;
}

static nf_status read_checkpoint(const nf_st_file *f, const nf_graph *g, const nf_training *t, saved *s,
                                 nf_error *err)
{
    const nf_optimizer *opt = t->opt;
    int64_t batch, samples;
    const char *format = nf_st_meta(f, "format"), *name = nf_st_meta(f, "optimizer");
    if (!format || strcmp(format, CHECKPOINT_FORMAT) != 0)
        return nf_fail(err, NF_ERR_FORMAT, "%s: not a nodeflow checkpoint (no format '%s' in __metadata__)",
                       f->path, CHECKPOINT_FORMAT);
    if (!name || strcmp(name, opt->type->name) != 0)
        return nf_fail(err, NF_ERR_STATE, "%s: the checkpoint is for optimizer '%s', not '%s'", f->path,
                       name ? name : "?", opt->type->name);
    if (!meta_int(f, "optimizer_steps", &s->steps) || !meta_int(f, "accumulated", &s->pending) ||
        !meta_int(f, "epoch", &s->progress.epoch) || !meta_int(f, "step", &s->progress.step) ||
        !meta_int(f, "graph_runs", &s->runs) ||
        !meta_int(f, "batch_size", &batch) || !meta_int(f, "batch_next", &s->next) ||
        !meta_int(f, "samples", &samples) || !meta_rng(f, &s->rng))
        return nf_fail(err, NF_ERR_FORMAT, "%s: incomplete or malformed checkpoint metadata", f->path);
    const nf_batcher *b = t->batches;
    if (batch != b->batch || samples != b->ds->count)
        return nf_fail(err, NF_ERR_STATE, "%s: saved for batches of %lld over %lld samples, not %lld over %lld",
                       f->path, (long long)batch, (long long)samples, (long long)b->batch, (long long)b->ds->count);
    for (int i = 0; i < opt->type->n_hparams; i++) {
        char key[64];
        snprintf(key, sizeof key, "hparam.%s", opt->type->hparams[i].name);
        const char *v = nf_st_meta(f, key);
        char *end;
        s->h[i] = v ? strtod(v, &end) : NAN;
        if (!v || *end || nf_optimizer_type_check(opt->type, opt->type->hparams[i].name, s->h[i], NULL) != NF_OK)
            return nf_fail(err, NF_ERR_FORMAT, "%s: missing or bad %s", f->path, key);
    }
    nf_status st = read_extras_meta(f, t, s, err);
    if (st == NF_OK)
        st = check_params(g, f, NF_WEIGHTS_STRICT, err);
    for (int k = 0; st == NF_OK && k < g->n_params; k++) {
        const nf_param *p = &g->params[k];
        char tname[EXTRA_NAME_MAX];
        for (int slot = -3; slot < opt->type->state_per_float; slot++) {
            if ((slot == -3 && !s->pending) || (slot == -2 && !t->average) || slot == -1)
                continue;
            extra_name(tname, slot == -3 ? "grad" : slot == -2 ? "average" : "optim", p, slot < 0 ? -1 : slot);
            const nf_st_tensor *tensor = nf_st_find(f, tname);
            if (!tensor || !nf_shape_equal(&tensor->shape, &p->shape))
                return nf_fail(err, NF_ERR_FORMAT, "%s: tensor '%s' is missing or misshapen", f->path, tname);
        }
    }
    return st;
}

static void read_extra(const nf_st_file *f, const char *prefix, const nf_param *p, int slot, float *out)
{
    char tname[EXTRA_NAME_MAX];
    extra_name(tname, prefix, p, slot);
    nf_st_read(nf_st_find(f, tname), out);
}

static void restore(const nf_st_file *f, nf_graph *g, nf_training *t, const saved *s)
{
    nf_optimizer *opt = t->opt;
    int slots = opt->type->state_per_float;
    int64_t unused;
    float *avg = t->average ? nf_average_values(t->average, &unused) : NULL;
    copy_params(g, f);
    for (int k = 0; k < g->n_params; k++) {
        const nf_param *p = &g->params[k];
        for (int slot = 0; slot < slots; slot++)
            read_extra(f, "optim", p, slot, opt->state + p->offset * slots + (int64_t)slot * p->size);
        if (s->pending)
            read_extra(f, "grad", p, -1, g->grads + p->offset);
        if (avg)
            read_extra(f, "average", p, -1, avg + p->offset);
    }
    memcpy(opt->h, s->h, (size_t)opt->type->n_hparams * sizeof(double));
    opt->steps = s->steps;
    opt->pending = s->pending;
    if (t->schedule)
        nf_schedule_state_set(t->schedule, &s->schedule);
    if (t->average)
        nf_average_restore(t->average, s->avg_count);
    nf_batcher_restore(t->batches, &s->rng, s->next);
    g->runs = (uint64_t)s->runs; /* dropout masks continue where they were */
    t->progress = s->progress;
}

nf_status nf_checkpoint_load(const char *path, nf_graph *g, nf_training *t, nf_error *err)
{
    if (!path || !g || !t || !t->opt || !t->batches)
        return nf_fail(err, NF_ERR_INVALID_ARGUMENT, "nf_checkpoint_load: NULL argument");
    if (t->opt->graph != g || t->opt->version != g->version)
        return nf_fail(err, NF_ERR_STATE, "the optimizer does not belong to this graph as it is now");
    nf_st_file f;
    nf_status st = nf_st_open(path, &f, err);
    if (st != NF_OK)
        return st;
    saved s;
    memset(&s, 0, sizeof s);
    st = read_checkpoint(&f, g, t, &s, err);
    if (st == NF_OK)
        restore(&f, g, t, &s);
    nf_st_close(&f);
    return st;
}
