/* nodeflow — the training session: everything a model file's [train]
 * section describes, run from C as `nodeflow train` runs it.
 *
 *     nf_graph *g;
 *     nf_train_config cfg;
 *     nf_model_load("models/fashion_mlp.nfg", &g, &cfg, &err);
 *     nf_session *s;
 *     nf_session_new(g, &cfg, &s, &err);             // initialises the weights (seed)
 *     nf_session_load_data(s, "fashion-mnist:train", "fashion-mnist:test", &err);
 *     nf_session_run(s, &err);                        // every epoch, validation, ...
 *     nf_session_save_weights(s, "mlp.safetensors", 0, &err);
 *     nf_session_free(s);
 *
 * A session owns its plans, optimizer, batcher, schedule and average, and
 * the datasets it loaded, not the graph or datasets given to it. To put
 * settings of your own over the model file's, merge them into the config
 * first (nf_train_config_merge); settings not given take the table's
 * defaults (nf_train_config_defaults). */
#ifndef NODEFLOW_SESSION_H
#define NODEFLOW_SESSION_H

#include "export.h"

#include "dist.h"
#include "model.h"
#include "train.h"
#include "weights.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct nf_session nf_session;

/* Creates a session over a validated graph with `config` (copied; its
 * settings checked) and initialises the graph's parameters from the seed.
 * The graph must outlive the session. */
NF_API nf_status nf_session_new(nf_graph *g, const nf_train_config *config, nf_session **out, nf_error *err);
NF_API void nf_session_free(nf_session *s);

/* Training and (val may be NULL) validation data from specs
 * (nf_dataset_load_spec); text data is cut into windows of the model's
 * input length (or the unroll steps), one stream per batch row. Builds
 * the plans, the batcher, the optimizer, the schedule and the average; on
 * failure the session is left without data, as before the call. */
NF_API nf_status nf_session_load_data(nf_session *s, const char *train_spec, const char *val_spec, nf_error *err);
/* The same with datasets the caller owns (they must outlive the session). */
NF_API nf_status nf_session_set_data(nf_session *s, const nf_dataset *train, const nf_dataset *val, nf_error *err);

/* Data parallel training (nodeflow/dist.h): this process is one of
 * nf_comm_size(comm) replicas, given before the data (the communicator
 * must outlive the session; NULL: alone). `batch` is per process: each
 * step takes the mean over the global batch of size x batch (every
 * process walks the same shuffled order, takes its block of each global
 * batch, an epoch's short last global batch shared out as evenly as
 * its rows go, each process's loss weighed by its share); gradients
 * are summed over the processes before every optimizer step. Before the
 * first step the processes check that their parameters have the same
 * names and shapes and take rank 0's weights and optimizer state; after
 * each epoch they compare a hash of their weights. Validation shares the
 * data out and sums the counts, so its figures are those of one process;
 * a non-finite loss or gradient skips or stops every process at the same
 * batch; checkpoints come from rank 0 alone. Text read as streams is cut
 * into size x batch streams, process r reading streams [r batch,
 * (r + 1) batch). */
NF_API nf_status nf_session_set_comm(nf_session *s, const nf_comm *comm, nf_error *err);

/* Continues from a checkpoint exactly where it stopped; a checkpoint that
 * does not fit (another optimizer, batch size, data size, schedule or
 * average) is refused and changes nothing. The optimizer settings in
 * `overrides` (may be NULL: the command line's, say) that differ from the
 * checkpoint's replace them, each with an NF_NOTICE_SETTING notice (the
 * run is then not bit-exact); a new lr under a schedule is refused
 * (NF_ERR_STATE). A seed in `overrides` gets a notice: it cannot apply.
 * A checkpoint that has already trained the session's epochs (or steps)
 * is refused (NF_ERR_INVALID_ARGUMENT): resuming it would train nothing. */
NF_API nf_status nf_session_resume(nf_session *s, const char *checkpoint, const nf_train_config *overrides,
                            nf_error *err);

/* What the session reports while it runs. */
typedef struct nf_session_progress {
    int64_t epoch;              /* the epoch running, from 1 */
    int64_t epochs;
    int64_t batches;            /* batches of this epoch done, of */
    int64_t epoch_batches;
    int64_t step;               /* optimizer steps (batches) done in all */
    const nf_epoch_stats *train;/* this epoch so far */
    const nf_epoch_stats *val;  /* at the end of an epoch with validation data, else NULL */
    double lr;                  /* the learning rate */
    double seconds;             /* of this epoch so far */
} nf_session_progress;

typedef enum nf_notice {
    NF_NOTICE_EARLY_STOP,   /* training ends early: the best weights are kept */
    NF_NOTICE_SETTING       /* a setting applied over a checkpoint's, or one that cannot apply */
} nf_notice;

typedef struct nf_session_events {
    void *ctx;
    /* after every batch */
    void (*batch)(void *ctx, const nf_session_progress *p);
    /* after every epoch (validation done, schedule stepped) */
    void (*epoch)(void *ctx, const nf_session_progress *p);
    /* something the caller should know, such as early stopping or a
     * setting applied over a checkpoint's */
    void (*notice)(void *ctx, nf_notice kind, const char *message);
} nf_session_events;

/* Where the session reports (copied; NULL: nowhere). */
NF_API void nf_session_set_events(nf_session *s, const nf_session_events *events);

/* Trains until the epochs or steps are done, early stopping ends it or
 * nf_session_stop is called (then NF_ERR_INTERRUPTED, after the current
 * batch). With a checkpoint path (nf_session_set_checkpoint), one is
 * written after every epoch and every checkpoint_every batches. */
NF_API nf_status nf_session_run(nf_session *s, nf_error *err);

/* Asks a running session to stop after the current batch; safe to call
 * from a signal handler. */
NF_API void nf_session_stop(nf_session *s);

/* Starts training from a weights file (fine-tuning, transfer learning):
 * the parameters whose names and shapes match take the file's values, the
 * others keep their initialisation (nf_weights_init; `report` may be
 * NULL). Only before the first step: refused after a resume or a run. */
NF_API nf_status nf_session_init_weights(nf_session *s, const char *path, nf_init_report *report, nf_error *err);

/* Where checkpoints go (NULL: nowhere); the path is checked as an output
 * (nf_output_path_check) here, before any training. */
NF_API nf_status nf_session_set_checkpoint(nf_session *s, const char *path, nf_error *err);
NF_API nf_status nf_session_save_checkpoint(const nf_session *s, const char *path, nf_error *err);

/* Writes the weights (averaged = 1: the averaged ones, when averaging);
 * the session's checkpoint path is refused. */
NF_API nf_status nf_session_save_weights(nf_session *s, const char *path, int averaged, nf_error *err);

/* The settings in force, the training state and the data. */
NF_API const nf_train_config *nf_session_config(const nf_session *s);
NF_API const nf_training *nf_session_training(const nf_session *s);
NF_API const nf_dataset *nf_session_train_data(const nf_session *s);

/* ---- K-fold cross-validation ------------------------------------------------
 *
 *     nf_fold_report folds[5];
 *     nf_cv_options cv = {.folds = 5, .stratified = 1};
 *     nf_cross_validate(g, &cfg, data, &cv, folds, &err);
 *
 * Each fold trains a new session on the other folds from the same
 * initialisation (the config's seed) and validates on its own fold; the
 * folds are drawn with the seed too, so a run repeats exactly. */

/* Which fold each of ds's samples validates in (fold_of[i] in [0, k)):
 * the samples shuffled with the seed and dealt out in turn, so that fold
 * sizes differ by one at most; stratified (class labels only), each
 * class is dealt out on its own, so that every fold holds its share of
 * every class. 2 <= k <= ds->count; text streams are refused (their
 * windows are not independent samples). */
NF_API nf_status nf_kfold_assign(const nf_dataset *ds, int k, int stratified, uint64_t seed, int32_t *fold_of,
                                 nf_error *err);

/* The samples of fold `fold` (*val) and of every other fold (*train) as
 * new datasets, in ds's order (nf_dataset_free each). */
NF_API nf_status nf_dataset_fold(const nf_dataset *ds, const int32_t *fold_of, int fold, nf_dataset **train,
                                 nf_dataset **val, nf_error *err);

typedef struct nf_fold_report {
    int fold;
    int64_t train_samples, val_samples;
    int64_t best_epoch;          /* the epoch of the lowest validation loss, from 1 */
    nf_epoch_stats best, last;   /* validation at that epoch, and at the last */
} nf_fold_report;

typedef struct nf_cv_options {
    int folds;                   /* K, at least 2 */
    int stratified;
    const nf_session_events *events;                     /* each fold's session reports here (may be NULL) */
    void (*fold_done)(void *ctx, const nf_fold_report *r); /* after each fold (may be NULL) */
    void *ctx;
    /* The folds this call trains: first, first + step, ... (step 0: every
     * fold), so that processes can share them out; the others' reports
     * are left zero. */
    int first, step;
} nf_cv_options;

/* K-fold cross-validation of g (trained as config says: its epochs,
 * optimizer, schedule...) on ds; reports[k] for fold k. Leaves g with the
 * last fold's weights. */
NF_API nf_status nf_cross_validate(nf_graph *g, const nf_train_config *config, const nf_dataset *ds,
                                   const nf_cv_options *options, nf_fold_report *reports, nf_error *err);

#ifdef __cplusplus
}
#endif
#endif
