/* nodeflow — the training session: a graph, its [train] settings and its
 * data, run epoch by epoch with validation, a learning-rate schedule,
 * weight averaging, early stopping, checkpoints and resuming. The command
 * line (tools/cmd_train.c) is option parsing and a progress display over
 * this. */
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "data/data_internal.h"
#include "engine/plan_internal.h"
#include "io/checkpoint_file.h"
#include "optim/optimizer.h"
#include "train/train_internal.h"

struct nf_session {
    nf_graph *g;
    nf_train_config cfg;
    const nf_dataset *train, *val;
    nf_dataset *owned_train, *owned_val;  /* loaded by nf_session_load_data */
    nf_plan *plan, *eval_plan;
    nf_training t;                        /* optimizer, batches, schedule, average, progress */
    nf_binding bind;
    double best_val;                      /* early stopping: the best validation loss, */
    int64_t bad_epochs;                   /* epochs since it improved, */
    float *best_weights;                  /* the weights that made it */
    int stopped_early;
    volatile sig_atomic_t stop;
    char *checkpoint;
    nf_session_events events;             /* all NULL: none */
    const nf_comm *comm;                  /* data parallel (nodeflow/dist.h); NULL: this process alone */
    int replicas_synced;                  /* the processes' replicas were checked and made equal */
};

nf_status nf_session_new(nf_graph *g, const nf_train_config *config, nf_session **out, nf_error *err)
{
    if (!g || !config || !out)
        return nf_fail(err, NF_ERR_INVALID_ARGUMENT, "nf_session_new: NULL argument");
    *out = NULL;
    nf_session *s = calloc(1, sizeof *s);
    if (!s)
        return nf_fail(err, NF_ERR_NO_MEMORY, "out of memory");
    s->g = g;
    s->cfg = *config;
    s->best_val = INFINITY;
    nf_train_config_defaults(&s->cfg);
    nf_status st = nf_train_config_check(&s->cfg, NULL, err);
    if (st == NF_OK)
        st = nf_graph_init_params(g, (uint64_t)s->cfg.seed, err);
    if (st == NF_OK)
        st = nf_binding_find(g, &s->bind, err);
    if (st != NF_OK) {
        nf_session_free(s);
        return st;
    }
    *out = s;
    return NF_OK;
}

/* Frees what nf_session_set_data built, so that a failed set-up leaves
 * the session as it was (without data). */
static void drop_run(nf_session *s)
{
    free(s->best_weights);
    nf_batcher_free(s->t.batches);
    nf_optimizer_free(s->t.opt);
    nf_schedule_free(s->t.schedule);
    nf_average_free(s->t.average);
    nf_plan_free(s->plan);
    nf_plan_free(s->eval_plan);
    s->best_weights = NULL;
    memset(&s->t, 0, sizeof s->t);
    s->plan = s->eval_plan = NULL;
    s->train = s->val = NULL;
}

void nf_session_free(nf_session *s)
{
    if (!s)
        return;
    drop_run(s);
    free(s->checkpoint);
    nf_dataset_free(s->owned_train);
    nf_dataset_free(s->owned_val);
    free(s);
}

/* ---- set-up ---------------------------------------------------------------- */

/* Text is cut into windows of the model's input length (one token id per
 * step when unrolled). A model that carries state from run to run (or is
 * unrolled) reads one stream per batch row, in order; any other model
 * (a transformer) sees the windows as independent samples, shuffled. */
static nf_status load_spec(const nf_session *s, const char *spec, nf_dataset **out, nf_error *err)
{
    if (strncmp(spec, "text:", 5) != 0 || strchr(spec, ','))
        return nf_dataset_load_spec(spec, out, err);
    const nf_shape *x = &s->bind.x->shape;
    int unrolled = s->cfg.unroll > 1;
    if (x->rank != (unrolled ? 0 : 1))
        return nf_fail(err, NF_ERR_SHAPE, "text data needs an input of %s; '%s' is not one",
                       unrolled ? "one token id per step (shape=scalar sequence=true)" : "[T] token ids", s->bind.x->name);
    int in_order = unrolled || nf_graph_carries_state(s->g);
    /* streams: one per batch row of every process (process r reads streams
     * [r batch, (r + 1) batch), the same ones every step) */
    int64_t streams = in_order ? s->cfg.batch * nf_comm_size(s->comm) : 0;
    return nf_dataset_load_text(spec + 5, unrolled ? s->cfg.unroll : x->dim[0], streams, out, err);
}

nf_status nf_session_load_data(nf_session *s, const char *train_spec, const char *val_spec, nf_error *err)
{
    if (!s || !train_spec)
        return nf_fail(err, NF_ERR_INVALID_ARGUMENT, "nf_session_load_data: NULL argument");
    if (s->plan)
        return nf_fail(err, NF_ERR_STATE, "the session has its data already");
    nf_dataset *train = NULL, *val = NULL;
    nf_status st = load_spec(s, train_spec, &train, err);
    if (st == NF_OK && val_spec)
        st = load_spec(s, val_spec, &val, err);
    if (st == NF_OK)
        st = nf_session_set_data(s, train, val, err);
    if (st != NF_OK) {
        nf_dataset_free(train);
        nf_dataset_free(val);
        return st;
    }
    s->owned_train = train;
    s->owned_val = val;
    return NF_OK;
}

/* Validation batches: at least 256 rows, or one per stream of text */
static int64_t eval_batch(const nf_session *s)
{
    if (s->val->streams)
        return s->val->streams;
    return s->cfg.batch > 256 ? s->cfg.batch : 256;
}

static nf_status make_optimizer(nf_session *s, nf_error *err)
{
    const nf_train_config *c = &s->cfg;
    nf_status st = nf_optimizer_new(s->g, c->optimizer, &s->t.opt, err);
    for (int i = 0; st == NF_OK && i < c->n_hparams; i++)
        st = nf_optimizer_set(s->t.opt, c->hparam_key[i], c->hparam_value[i], err);
    if (st == NF_OK && !isnan(c->lr))
        st = nf_optimizer_set(s->t.opt, "lr", c->lr, err);
    if (st == NF_OK)
        st = nf_optimizer_set_clipping(s->t.opt, isnan(c->clip_norm) ? 0 : c->clip_norm,
                                       isnan(c->clip_value) ? 0 : c->clip_value, err);
    return st;
}

/* The schedule starts from the optimizer's learning rate. */
static nf_status make_schedule(nf_session *s, nf_error *err)
{
    const nf_train_config *c = &s->cfg;
    if (!c->schedule[0])
        return NF_OK;
    nf_status st = nf_schedule_new(c->schedule, nf_optimizer_lr(s->t.opt), &s->t.schedule, err);
    for (int i = 0; st == NF_OK && i < c->n_schedule; i++)
        st = nf_schedule_set_text(s->t.schedule, c->schedule_key[i], c->schedule_value[i], err);
    return st;
}

/* Data parallel: at least one global batch (every epoch would be empty).
 * (Text streams are checked against the global batch by the loop.) */
static nf_status check_global_batch(const nf_session *s, nf_error *err)
{
    int64_t global = s->cfg.batch * nf_comm_size(s->comm);
    if (nf_comm_size(s->comm) > 1 && s->train->count < global)
        return nf_fail(err, NF_ERR_INVALID_ARGUMENT,
                       "the data has %lld samples, fewer than one global batch (%lld per process x %d processes): "
                       "every epoch would be empty", (long long)s->train->count, (long long)s->cfg.batch,
                       nf_comm_size(s->comm));
    return NF_OK;
}

static nf_status check_watchers(const nf_session *s, nf_error *err)
{
    if (s->cfg.early_stop > 0 && !s->val)
        return nf_fail(err, NF_ERR_INVALID_ARGUMENT, "early stopping watches the validation loss: give validation data");
    if (!strcmp(s->cfg.schedule, "plateau") && !s->val)
        return nf_fail(err, NF_ERR_INVALID_ARGUMENT, "the plateau schedule watches the validation loss: give validation data");
    return NF_OK;
}

/* What nodes call to sum over the processes (sync_bn). */
static int sum_across(const void *comm, double *x, int64_t n)
{
    return nf_comm_sum_doubles(comm, x, n, NULL) == NF_OK;
}

/* Plans, batcher, optimizer, schedule and average for the data. */
static nf_status build_run(nf_session *s, nf_error *err)
{
    const nf_train_config *c = &s->cfg;
    nf_status st = check_watchers(s, err);
    if (st == NF_OK)
        st = check_global_batch(s, err);
    if (st == NF_OK)
        st = nf_graph_set_vocab(s->g, s->train->vocab, s->train->vocab_size, err);
    if (st == NF_OK)
        st = nf_plan_compile(s->g, c->batch, NF_PLAN_TRAINING, &s->plan, err);
    if (st == NF_OK)
        st = nf_plan_set_steps(s->plan, c->unroll, err);
    if (st == NF_OK && s->val)
        st = nf_plan_compile(s->g, eval_batch(s), NF_PLAN_INFERENCE, &s->eval_plan, err);
    if (st == NF_OK && s->val)
        st = nf_plan_set_steps(s->eval_plan, c->unroll, err);
    if (st == NF_OK)
        st = nf_batcher_new(s->train, c->batch, s->train->streams == 0, (uint64_t)c->seed * 2654435761u + 1,
                            &s->t.batches, err);
    if (st == NF_OK)
        st = make_optimizer(s, err);
    if (st == NF_OK && nf_comm_size(s->comm) > 1) {
        nf_batcher_shard(s->t.batches, nf_comm_rank(s->comm), nf_comm_size(s->comm));
        nf_optimizer_set_comm(s->t.opt, s->comm);
        nf_plan_set_sum_across(s->plan, sum_across, s->comm);
    }
    if (st == NF_OK)
        st = make_schedule(s, err);
    if (st == NF_OK && c->average[0])
        st = nf_average_new(s->g, c->average, c->average_decay, &s->t.average, err);
    if (st != NF_OK)
        return st;
    nf_plan_set_skip_nonfinite(s->plan, c->skip_nonfinite > 0);
    /* the best weights so far, read only once a validation loss was a number */
    if (c->early_stop > 0 && !(s->best_weights = malloc((size_t)s->g->param_floats * sizeof(float) + 1)))
        return nf_fail(err, NF_ERR_NO_MEMORY, "out of memory");
    return NF_OK;
}

nf_status nf_session_set_data(nf_session *s, const nf_dataset *train, const nf_dataset *val, nf_error *err)
{
    if (!s || !train)
        return nf_fail(err, NF_ERR_INVALID_ARGUMENT, "nf_session_set_data: NULL argument");
    if (s->plan)
        return nf_fail(err, NF_ERR_STATE, "the session has its data already");
    s->train = train;
    s->val = val;
    nf_status st = build_run(s, err);
    if (st != NF_OK)
        drop_run(s);
    return st;
}

nf_status nf_session_set_comm(nf_session *s, const nf_comm *comm, nf_error *err)
{
    if (!s)
        return nf_fail(err, NF_ERR_INVALID_ARGUMENT, "nf_session_set_comm: NULL session");
    if (s->plan)
        return nf_fail(err, NF_ERR_STATE, "give the session its communicator before its data");
    s->comm = comm;
    s->replicas_synced = 0;
    return NF_OK;
}

/* ---- data parallel: replicas ------------------------------------------------- */

/* FNV-1a over bytes, continuing from h. */
static uint64_t fnv(uint64_t h, const void *data, size_t n)
{
    const unsigned char *p = data;
    for (size_t i = 0; i < n; i++)
        h = (h ^ p[i]) * 0x100000001b3ull;
    return h;
}

static uint64_t tensor_hash(const nf_param *p)
{
    uint64_t h = fnv(0xcbf29ce484222325ull, p->name, strlen(p->name) + 1);
    return fnv(h, p->shape.dim, (size_t)p->shape.rank * sizeof p->shape.dim[0]);
}

/* Every process must have the same parameters: their count first, then
 * each tensor's name and shape, by a hash whose least and greatest value
 * over the processes must agree; the first that differs is named. */
static nf_status check_same_model(const nf_session *s, nf_error *err)
{
    const nf_graph *g = s->g;
    uint64_t lo, hi;
    nf_status st = nf_comm_min_max(s->comm, (uint64_t)g->n_params, &lo, &hi, err);
    if (st != NF_OK)
        return st;
    if (lo != hi)
        return nf_fail(err, NF_ERR_STATE, "rank %d: the processes' models differ: between %llu and %llu parameter "
                       "tensors", nf_comm_rank(s->comm), (unsigned long long)lo, (unsigned long long)hi);
    for (int k = 0; k < g->n_params; k++) {
        st = nf_comm_min_max(s->comm, tensor_hash(&g->params[k]), &lo, &hi, err);
        if (st != NF_OK)
            return st;
        if (lo != hi) {
            char shape[64];
            return nf_fail(err, NF_ERR_STATE,
                           "rank %d: the processes' models differ at parameter tensor %d, here %s %s",
                           nf_comm_rank(s->comm), k + 1, g->params[k].name,
                           nf_shape_format(&g->params[k].shape, shape, sizeof shape));
        }
    }
    return NF_OK;
}

/* Before the first step: the same model everywhere, rank 0's weights and
 * optimizer state in every process, and per process dropout masks. */
static nf_status sync_replicas(nf_session *s, nf_error *err)
{
    if (s->replicas_synced || nf_comm_size(s->comm) < 2)
        return NF_OK;
    nf_status st = check_same_model(s, err);
    if (st == NF_OK)
        st = nf_comm_broadcast_floats(s->comm, s->g->values, s->g->param_floats, err);
    if (st == NF_OK)
        st = nf_comm_broadcast_floats(s->comm, s->t.opt->state,
                                      s->g->param_floats * (int64_t)s->t.opt->type->state_per_float, err);
    /* each process draws its own dropout masks: the graph's seed mixed
     * with its rank (masks shared by every process would correlate them) */
    if (st == NF_OK && nf_comm_rank(s->comm) > 0)
        s->g->seed ^= 0x9e3779b97f4a7c15ull * (uint64_t)nf_comm_rank(s->comm); /* (exec mixes the key) */
    if (st == NF_OK)
        s->replicas_synced = 1;
    return st;
}

/* At the end of an epoch: the buffers (running statistics, which local
 * batch normalization makes differ) become rank 0's, as DDP's
 * broadcast_buffers makes them; then every replica's weights must be
 * equal. */
static nf_status check_replicas(const nf_session *s, nf_error *err)
{
    if (nf_comm_size(s->comm) < 2)
        return NF_OK;
    for (int k = 0; k < s->g->n_params; k++) {
        const nf_param *p = &s->g->params[k];
        nf_status st = p->spec.buffer ? nf_comm_broadcast_floats(s->comm, s->g->values + p->offset, p->size, err)
                                      : NF_OK;
        if (st != NF_OK)
            return st;
    }
    uint64_t h = fnv(0xcbf29ce484222325ull, s->g->values, (size_t)s->g->param_floats * sizeof(float)), lo, hi;
    nf_status st = nf_comm_min_max(s->comm, h, &lo, &hi, err);
    if (st == NF_OK && lo != hi)
        return nf_fail(err, NF_ERR_NUMERIC, "rank %d: the replicas' weights differ after epoch %lld (hash %016llx "
                       "here)", nf_comm_rank(s->comm), (long long)s->t.progress.epoch, (unsigned long long)h);
    return st;
}

/* Checkpoints come from rank 0 alone. */
static int writes(const nf_session *s) { return s->checkpoint && nf_comm_rank(s->comm) == 0; }

/* ---- checkpoints ------------------------------------------------------------ */

static nf_status save_early_stop(const nf_session *s, nf_record *r, nf_error *err)
{
    if (s->cfg.early_stop <= 0)
        return NF_OK;
    nf_record_put_double(r, "early_stop.best", s->best_val);
    nf_record_put_int(r, "early_stop.bad", s->bad_epochs);
    for (int k = 0; k < s->g->n_params && isfinite(s->best_val); k++) {
        const nf_param *p = &s->g->params[k];
        char name[NF_PARAM_NAME_MAX + 8];
        snprintf(name, sizeof name, "best.%s", p->name);
        nf_record_put_tensor(r, name, &p->shape, s->best_weights + p->offset);
    }
    return nf_record_failed(r) ? nf_fail(err, NF_ERR_NO_MEMORY, "out of memory writing a checkpoint") : NF_OK;
}

/* A checkpoint written without early stopping (or by an older nodeflow)
 * starts the patience afresh. */
static nf_status load_early_stop(nf_session *s, const nf_record *r, int apply, nf_error *err)
{
    if (s->cfg.early_stop <= 0 || !nf_record_text(r, "early_stop.bad"))
        return NF_OK;
    double best;
    int64_t bad;
    nf_status st = nf_record_double(r, "early_stop.best", &best, err);
    if (st == NF_OK && (isnan(best) || best == -INFINITY)) /* +inf: no validation yet */
        st = nf_fail(err, NF_ERR_FORMAT, "early_stop.best is %g, not a validation loss", best);
    if (st == NF_OK)
        st = nf_record_int(r, "early_stop.bad", 0, NF_MAX_COUNT, &bad, err);
    for (int k = 0; st == NF_OK && isfinite(best) && k < s->g->n_params; k++) {
        const nf_param *p = &s->g->params[k];
        char name[NF_PARAM_NAME_MAX + 8];
        snprintf(name, sizeof name, "best.%s", p->name);
        st = nf_record_tensor(r, name, &p->shape, apply ? s->best_weights + p->offset : NULL, err);
    }
    if (st == NF_OK && apply) {
        s->best_val = best;
        s->bad_epochs = bad;
    }
    return st;
}

nf_status nf_session_save_checkpoint(const nf_session *s, const char *path, nf_error *err)
{
    if (!s || !path || !s->plan)
        return nf_fail(err, NF_ERR_INVALID_ARGUMENT, "nf_session_save_checkpoint: no path or no data yet");
    nf_record *r = nf_record_new();
    if (!r)
        return nf_fail(err, NF_ERR_NO_MEMORY, "out of memory writing a checkpoint");
    nf_status st = nf_training_save_state(s->g, &s->t, r, err);
    if (st == NF_OK)
        st = save_early_stop(s, r, err);
    if (st == NF_OK)
        st = nf_checkpoint_write(path, s->g, r, err);
    nf_record_free(r);
    return st;
}

static void notify(const nf_session_events *ev, nf_notice kind, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void notify(const nf_session_events *ev, nf_notice kind, const char *fmt, ...)
{
    if (!ev || !ev->notice)
        return;
    char message[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(message, sizeof message, fmt, ap);
    va_end(ap);
    ev->notice(ev->ctx, kind, message);
}

/* What resuming needs beside the checkpoint: the settings given over it. */
typedef struct resuming {
    nf_session *s;
    const nf_train_config *overrides;
    const nf_session_events *ev;
} resuming;

/* The checkpoint's value of optimizer setting `key`: for lr under a
 * schedule, the schedule's base rate (the rate itself moves with it). */
static int saved_setting(const nf_session *s, const nf_record *r, const char *key, double *saved)
{
    char name[64];
    int schedule_lr = !strcmp(key, "lr") && s->t.schedule && nf_record_text(r, "schedule_lr0");
    snprintf(name, sizeof name, "hparam.%s", key);
    if (schedule_lr)
        snprintf(name, sizeof name, "schedule_lr0");
    return nf_record_text(r, name) && nf_record_double(r, name, saved, NULL) == NF_OK;
}

/* Optimizer settings given over a checkpoint's replace them, each with a
 * notice. Checked (apply = 0) before anything is restored: each must be a
 * setting of the optimizer, in its range, and a new lr cannot apply under
 * a schedule, which sets the learning rate itself. */
static nf_status override_optimizer(const resuming *rs, const nf_record *r, int apply, nf_error *err)
{
    const nf_train_config *o = rs->overrides;
    nf_session *s = rs->s;
    for (int i = -1; o && i < o->n_hparams; i++) {
        const char *key = i < 0 ? "lr" : o->hparam_key[i];
        double want = i < 0 ? o->lr : o->hparam_value[i], saved;
        int known = saved_setting(s, r, key, &saved);
        if (isnan(want) || (known && want == saved))
            continue;
        if (!apply && i < 0 && s->t.schedule)
            return nf_fail(err, NF_ERR_STATE, "lr %g cannot apply to a resumed run that follows a schedule (the "
                                              "schedule sets the learning rate); resume without it", want);
        nf_status st = apply ? nf_optimizer_set(s->t.opt, key, want, err) : nf_optimizer_check(s->t.opt, key, want, err);
        if (st != NF_OK) /* (applying cannot fail: the same was checked) */
            return st;
        if (apply && known)
            notify(rs->ev, NF_NOTICE_SETTING, "%s = %g replaces the checkpoint's %g: the resumed run is not bit-exact",
                   key, want, saved);
    }
    if (apply && o && o->seed >= 0)
        notify(rs->ev, NF_NOTICE_SETTING,
               "the seed does not apply to a resumed run: its shuffle and weights come from the checkpoint");
    return NF_OK;
}

/* A checkpoint at or past the end this session trains to would resume
 * into a run that does nothing: say so instead. */
static nf_status check_work_left(const nf_session *s, const nf_record *r, nf_error *err)
{
    int64_t epoch, step;
    nf_status st = nf_record_int(r, "epoch", 0, NF_MAX_COUNT, &epoch, err);
    if (st == NF_OK)
        st = nf_record_int(r, "step", 0, NF_MAX_COUNT, &step, err);
    if (st == NF_OK && epoch >= s->cfg.epochs)
        return nf_fail(err, NF_ERR_INVALID_ARGUMENT,
                       "the checkpoint has trained %lld epochs and epochs is %lld: nothing is left to train "
                       "(set epochs above %lld to train on)",
                       (long long)epoch, (long long)s->cfg.epochs, (long long)epoch);
    if (st == NF_OK && s->cfg.steps > 0 && step >= s->cfg.steps)
        return nf_fail(err, NF_ERR_INVALID_ARGUMENT,
                       "the checkpoint has taken %lld steps and steps is %lld: nothing is left to train",
                       (long long)step, (long long)s->cfg.steps);
    return st;
}

static nf_status load_session_part(void *ctx, const nf_record *r, int apply, nf_error *err)
{
    const resuming *rs = ctx;
    nf_status st = apply ? NF_OK : check_work_left(rs->s, r, err);
    if (st == NF_OK)
        st = load_early_stop(rs->s, r, apply, err);
    return st == NF_OK ? override_optimizer(rs, r, apply, err) : st;
}

nf_status nf_session_resume(nf_session *s, const char *checkpoint, const nf_train_config *overrides, nf_error *err)
{
    if (!s || !checkpoint)
        return nf_fail(err, NF_ERR_INVALID_ARGUMENT, "nf_session_resume: NULL argument");
    if (!s->plan)
        return nf_fail(err, NF_ERR_STATE, "give the session its data before resuming");
    resuming rs = {s, overrides, &s->events};
    return nf_training_resume(checkpoint, s->g, &s->t, load_session_part, &rs, err);
}

nf_status nf_session_set_checkpoint(nf_session *s, const char *path, nf_error *err)
{
    if (!s)
        return nf_fail(err, NF_ERR_INVALID_ARGUMENT, "nf_session_set_checkpoint: NULL session");
    nf_status st = path ? nf_output_path_check(path, err) : NF_OK;
    if (st != NF_OK)
        return st;
    char *copy = NULL;
    if (path && !(copy = strdup(path)))
        return nf_fail(err, NF_ERR_NO_MEMORY, "out of memory");
    free(s->checkpoint);
    s->checkpoint = copy;
    return NF_OK;
}

void nf_session_set_events(nf_session *s, const nf_session_events *events)
{
    memset(&s->events, 0, sizeof s->events);
    if (events)
        s->events = *events;
}

/* ---- running -------------------------------------------------------------- */

static int steps_done(const nf_session *s) { return s->cfg.steps > 0 && s->t.progress.step >= s->cfg.steps; }

/* The validation data's loss and accuracy, with the averaged weights when
 * averaging. */
static nf_status validate(nf_session *s, nf_epoch_stats *val, nf_error *err)
{
    if (s->t.average) {
        nf_status st = nf_average_swap(s->t.average, err);
        if (st != NF_OK)
            return st;
    }
    /* text read as streams continues each stream from batch to batch: every
     * process evaluates all of it (the same figures everywhere) */
    nf_status st = nf_evaluate_shared(s->eval_plan, s->val, &s->bind, s->val->streams ? NULL : s->comm, val, err);
    if (s->t.average)
        nf_average_swap(s->t.average, NULL);
    return st;
}

/* Keeps the best weights; stops after early_stop epochs without a better
 * validation loss, restoring them. */
static void early_stopping(nf_session *s, double val_loss, const nf_session_events *ev)
{
    size_t bytes = (size_t)s->g->param_floats * sizeof(float);
    if (val_loss < s->best_val) {
        s->best_val = val_loss;
        s->bad_epochs = 0;
        memcpy(s->best_weights, s->g->values, bytes);
        return;
    }
    if (++s->bad_epochs < s->cfg.early_stop)
        return;
    if (isfinite(s->best_val)) /* else no validation loss was ever a number: keep what there is */
        memcpy(s->g->values, s->best_weights, bytes);
    s->stopped_early = 1;
    notify(ev, NF_NOTICE_EARLY_STOP, "early stop: no better validation loss for %lld epochs; keeping the best (%.4f)",
           (long long)s->cfg.early_stop, s->best_val);
}

static void report(const nf_session *s, const nf_session_events *ev, int at_epoch_end, int64_t batches,
                   const nf_epoch_stats *fit, const nf_epoch_stats *val, double seconds)
{
    void (*cb)(void *, const nf_session_progress *) = !ev ? NULL : at_epoch_end ? ev->epoch : ev->batch;
    if (!cb)
        return;
    nf_session_progress p = {at_epoch_end ? s->t.progress.epoch : s->t.progress.epoch + 1, s->cfg.epochs, batches,
                             nf_batcher_batches(s->t.batches), s->t.progress.step, fit, val,
                             nf_optimizer_lr(s->t.opt), seconds};
    cb(ev->ctx, &p);
}

static nf_status end_epoch(nf_session *s, nf_epoch_stats *fit, double start, const nf_session_events *ev,
                           nf_error *err)
{
    double seconds = nf_now_seconds() - start; /* training only, not validation */
    nf_epoch_stats val = {0};
    nf_status st = nf_stats_share(fit, s->plan, &s->bind, s->comm, err);
    if (st == NF_OK)
        st = check_replicas(s, err);
    if (st == NF_OK && s->val)
        st = validate(s, &val, err);
    if (st != NF_OK)
        return st;
    s->t.progress.epoch++;
    report(s, ev, 1, fit->batches, fit, s->val ? &val : NULL, seconds);
    if (s->t.schedule) {
        nf_schedule_step(s->t.schedule, s->val ? val.loss : NAN);
        nf_optimizer_set_lr(s->t.opt, nf_schedule_lr(s->t.schedule));
    }
    if (s->cfg.early_stop > 0)
        early_stopping(s, val.loss, ev);
    return writes(s) ? nf_session_save_checkpoint(s, s->checkpoint, err) : NF_OK;
}

static nf_status train_epoch(nf_session *s, const nf_session_events *ev, nf_error *err)
{
    nf_epoch_stats fit;
    memset(&fit, 0, sizeof fit);
    double start = nf_now_seconds();
    int epoch_done = 0;
    while (!epoch_done && !steps_done(s)) {
        nf_status st = nf_train_batches(s->plan, s->t.opt, s->t.batches, &s->bind, 1, &fit, &epoch_done, err);
        if (st != NF_OK)
            return st;
        if (epoch_done)
            break;
        s->t.progress.step++;
        if (s->t.average && (st = nf_average_update(s->t.average, err)) != NF_OK)
            return st;
        report(s, ev, 0, fit.batches, &fit, NULL, nf_now_seconds() - start);
        if (writes(s) && s->cfg.checkpoint_every > 0 && s->t.progress.step % s->cfg.checkpoint_every == 0 &&
            (st = nf_session_save_checkpoint(s, s->checkpoint, err)) != NF_OK)
            return st;
        int go = !s->stop; /* several processes stop at the same batch */
        if (nf_comm_size(s->comm) > 1 && (st = nf_comm_all(s->comm, &go, err)) != NF_OK)
            return st;
        if (!go)
            return nf_fail(err, NF_ERR_INTERRUPTED, "interrupted after %lld batches", (long long)s->t.progress.step);
    }
    return end_epoch(s, &fit, start, ev, err);
}

nf_status nf_session_run(nf_session *s, nf_error *err)
{
    const nf_session_events *ev = s ? &s->events : NULL;
    if (!s)
        return nf_fail(err, NF_ERR_INVALID_ARGUMENT, "nf_session_run: NULL session");
    if (!s->plan)
        return nf_fail(err, NF_ERR_STATE, "give the session its data before running it");
    if (s->t.schedule)
        nf_optimizer_set_lr(s->t.opt, nf_schedule_lr(s->t.schedule));
    nf_status st = sync_replicas(s, err);
    while (st == NF_OK && s->t.progress.epoch < s->cfg.epochs && !s->stopped_early && !steps_done(s))
        st = train_epoch(s, ev, err);
    return st;
}

void nf_session_stop(nf_session *s)
{
    if (s)
        s->stop = 1;
}

nf_status nf_session_init_weights(nf_session *s, const char *path, nf_init_report *report, nf_error *err)
{
    if (!s || !path)
        return nf_fail(err, NF_ERR_INVALID_ARGUMENT, "nf_session_init_weights: NULL argument");
    if (s->t.progress.step > 0 || s->t.progress.epoch > 0 || (s->t.opt && nf_optimizer_has_pending(s->t.opt)))
        return nf_fail(err, NF_ERR_STATE, "the session has trained already: start from weights before the first step");
    return nf_weights_init(s->g, path, report, err);
}

nf_status nf_session_save_weights(nf_session *s, const char *path, int averaged, nf_error *err)
{
    if (!s || !path)
        return nf_fail(err, NF_ERR_INVALID_ARGUMENT, "nf_session_save_weights: NULL argument");
    if (s->checkpoint && nf_paths_same_file(path, s->checkpoint))
        return nf_fail(err, NF_ERR_INVALID_ARGUMENT, "%s: is the session's checkpoint; weights would overwrite it",
                       path);
    int swap = averaged && s->t.average;
    nf_status st = swap ? nf_average_swap(s->t.average, err) : NF_OK;
    if (st == NF_OK)
        st = nf_weights_save(s->g, path, err);
    if (swap)
        nf_average_swap(s->t.average, NULL);
    return st;
}

const nf_train_config *nf_session_config(const nf_session *s) { return &s->cfg; }
const nf_training *nf_session_training(const nf_session *s) { return &s->t; }
const nf_dataset *nf_session_train_data(const nf_session *s) { return s->train; }
