/* nodeflow — K-fold cross-validation (nodeflow/session.h): the folds,
 * drawn with the seed, and one training session per fold. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "engine/internal.h"
#include "kernels/random.h"
#include "nodeflow/session.h"

/* Shuffles items[0..n) (Fisher-Yates) with counter-based draws keyed by
 * seed and `stream`. */
static void shuffle(int64_t *items, int64_t n, uint64_t seed, uint64_t stream)
{
    for (int64_t i = n - 1; i > 0; i--) {
        uint64_t r = nf_mix64(nf_mix64(seed ^ 0x6a09e667f3bcc909ull) + stream * 0x9e3779b97f4a7c15ull + (uint64_t)i);
        int64_t j = (int64_t)(((unsigned __int128)r * (uint64_t)(i + 1)) >> 64);
        int64_t t = items[i];
        items[i] = items[j], items[j] = t;
    }
}

nf_status nf_kfold_assign(const nf_dataset *ds, int k, int stratified, uint64_t seed, int32_t *fold_of, nf_error *err)
{
    if (!ds || !fold_of)
        return nf_fail(err, NF_ERR_INVALID_ARGUMENT, "nf_kfold_assign: NULL argument");
    if (ds->streams > 0)
        return nf_fail(err, NF_ERR_INVALID_ARGUMENT, "text streams cannot be cut into folds (their windows follow "
                       "each other)");
    if (k < 2 || k > ds->count)
        return nf_fail(err, NF_ERR_INVALID_ARGUMENT, "%d folds of %lld samples (2 to the number of samples)", k,
                       (long long)ds->count);
    if (stratified && (ds->classes < 1 || ds->y_shape.rank != 0))
        return nf_fail(err, NF_ERR_INVALID_ARGUMENT, "stratified folds need class labels");
    int64_t groups = stratified ? ds->classes : 1, dealt = 0;
    for (int64_t i = 0; stratified && i < ds->count; i++)
        if (!(ds->y[i] >= 0 && ds->y[i] < (float)groups) || ds->y[i] != floorf(ds->y[i]))
            return nf_fail(err, NF_ERR_INVALID_ARGUMENT, "sample %lld: label %g is no class below %lld",
                           (long long)i, (double)ds->y[i], (long long)groups);
    /* the samples bucketed by class (a counting sort: one pass, whatever the classes) */
    int64_t *items = malloc((size_t)ds->count * sizeof *items), *start = calloc((size_t)groups + 2, sizeof *start);
    if (!items || !start) {
        free(items);
        free(start);
        return nf_fail(err, NF_ERR_NO_MEMORY, "out of memory");
    }
    for (int64_t i = 0; i < ds->count; i++)
        start[(stratified ? (int64_t)ds->y[i] : 0) + 2]++;
    for (int64_t g = 0; g < groups; g++)
        start[g + 2] += start[g + 1];
    for (int64_t i = 0; i < ds->count; i++)
        items[start[(stratified ? (int64_t)ds->y[i] : 0) + 1]++] = i;
    for (int64_t g = 0; g < groups; g++) { /* each class (or all) shuffled, dealt out from where the last ended */
        int64_t first = start[g], n = start[g + 1] - first;
        shuffle(items + first, n, seed, (uint64_t)g);
        for (int64_t j = 0; j < n; j++, dealt++)
            fold_of[items[first + j]] = (int32_t)(dealt % k);
    }
    free(items);
    free(start);
    return NF_OK;
}

/* The rows of ds where (fold_of[i] == fold) == in_fold, as a new dataset. */
static nf_status rows_of(const nf_dataset *ds, const int32_t *fold_of, int fold, int in_fold, nf_dataset **out,
                         nf_error *err)
{
    int64_t n = 0, xs = nf_shape_size(&ds->x_shape), ys = nf_shape_size(&ds->y_shape);
    for (int64_t i = 0; i < ds->count; i++)
        n += (fold_of[i] == fold) == in_fold;
    if (n == 0)
        return nf_fail(err, NF_ERR_INVALID_ARGUMENT, "fold %d leaves no samples %s", fold,
                       in_fold ? "to validate on" : "to train on");
    float *x = malloc((size_t)(n * xs) * sizeof(float)), *y = ds->y ? malloc((size_t)(n * ys) * sizeof(float)) : NULL;
    nf_status st = x && (y || !ds->y) ? NF_OK : nf_fail(err, NF_ERR_NO_MEMORY, "out of memory");
    for (int64_t i = 0, r = 0; st == NF_OK && i < ds->count; i++) {
        if ((fold_of[i] == fold) != in_fold)
            continue;
        memcpy(x + r * xs, ds->x + i * xs, (size_t)xs * sizeof(float));
        if (y)
            memcpy(y + r * ys, ds->y + i * ys, (size_t)ys * sizeof(float));
        r++;
    }
    if (st == NF_OK && (st = nf_dataset_from_arrays(x, &ds->x_shape, y, &ds->y_shape, n, out, err)) == NF_OK)
        (*out)->classes = ds->classes; /* (every class, whether this part holds it or not) */
    free(x);
    free(y);
    return st;
}

nf_status nf_dataset_fold(const nf_dataset *ds, const int32_t *fold_of, int fold, nf_dataset **train,
                          nf_dataset **val, nf_error *err)
{
    if (!ds || !fold_of || !train || !val)
        return nf_fail(err, NF_ERR_INVALID_ARGUMENT, "nf_dataset_fold: NULL argument");
    *train = *val = NULL;
    nf_status st = rows_of(ds, fold_of, fold, 0, train, err);
    if (st == NF_OK && (st = rows_of(ds, fold_of, fold, 1, val, err)) != NF_OK) {
        nf_dataset_free(*train);
        *train = NULL;
    }
    return st;
}

/* A fold's session events: the caller's, and the best validation kept. */
typedef struct fold_run {
    const nf_session_events *user;
    nf_fold_report *report;
} fold_run;

static void on_batch(void *ctx, const nf_session_progress *p)
{
    const fold_run *f = ctx;
    if (f->user && f->user->batch)
        f->user->batch(f->user->ctx, p);
}

static void on_epoch(void *ctx, const nf_session_progress *p)
{
    fold_run *f = ctx;
    if (p->val) {
        if (f->report->best_epoch == 0 || p->val->loss < f->report->best.loss) {
            f->report->best = *p->val;
            f->report->best_epoch = p->epoch;
        }
        f->report->last = *p->val;
    }
    if (f->user && f->user->epoch)
        f->user->epoch(f->user->ctx, p);
}

static void on_notice(void *ctx, nf_notice kind, const char *message)
{
    const fold_run *f = ctx;
    if (f->user && f->user->notice)
        f->user->notice(f->user->ctx, kind, message);
}

nf_status nf_cross_validate(nf_graph *g, const nf_train_config *config, const nf_dataset *ds,
                            const nf_cv_options *o, nf_fold_report *reports, nf_error *err)
{
    if (!g || !config || !ds || !o || !reports)
        return nf_fail(err, NF_ERR_INVALID_ARGUMENT, "nf_cross_validate: NULL argument");
    int32_t *fold_of = malloc((size_t)ds->count * sizeof *fold_of);
    if (!fold_of)
        return nf_fail(err, NF_ERR_NO_MEMORY, "out of memory");
    nf_train_config c = *config;
    nf_train_config_defaults(&c);
    nf_status st = nf_kfold_assign(ds, o->folds, o->stratified, (uint64_t)c.seed, fold_of, err);
    for (int k = 0; st == NF_OK && k < o->folds; k++) {
        nf_fold_report *r = &reports[k];
        memset(r, 0, sizeof *r);
        r->fold = k;
        if (o->step > 0 && (k < o->first || (k - o->first) % o->step))
            continue; /* (another process's fold) */
        nf_dataset *train, *val;
        nf_session *s = NULL;
        if ((st = nf_dataset_fold(ds, fold_of, k, &train, &val, err)) != NF_OK)
            break;
        r->train_samples = train->count, r->val_samples = val->count;
        fold_run run = {o->events, r};
        nf_session_events events = {&run, on_batch, on_epoch, on_notice};
        if ((st = nf_session_new(g, &c, &s, err)) == NF_OK) { /* (the same initialisation: the seed) */
            nf_session_set_events(s, &events);
            if ((st = nf_session_set_data(s, train, val, err)) == NF_OK)
                st = nf_session_run(s, err);
        }
        nf_session_free(s);
        nf_dataset_free(train);
        nf_dataset_free(val);
        if (st == NF_OK && r->best_epoch == 0)
            st = nf_fail(err, NF_ERR_STATE, "fold %d ran no epoch to validate", k);
        if (st == NF_OK && o->fold_done)
            o->fold_done(o->ctx, r);
    }
    free(fold_of);
    return st;
}
