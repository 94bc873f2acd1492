/* nodeflow — what the files of train/ share: the state of a training run
 * in checkpoints. */
#ifndef NF_TRAIN_INTERNAL_H
#define NF_TRAIN_INTERNAL_H

#include "dist/comm.h"
#include "engine/record.h"

/* Checks that a run's objects are there and belong together. */
nf_status nf_training_check(const nf_graph *g, const nf_training *t, const char *what, nf_error *err);
/* Every component's state into `r`; back (apply = 0: only checked). */
nf_status nf_training_save_state(const nf_graph *g, const nf_training *t, nf_record *r, nf_error *err);
nf_status nf_training_load_state(nf_graph *g, nf_training *t, const nf_record *r, int apply, nf_error *err);
/* A part of a checkpoint beyond nf_training's (the session's): checks
 * (apply = 0) or restores (apply = 1, cannot fail) it. */
typedef nf_status (*nf_record_loader)(void *ctx, const nf_record *r, int apply, nf_error *err);
/* Reads checkpoint `path`, checks every part (the training's, then
 * `extra`'s, may be NULL), and only then restores them all. */
nf_status nf_training_resume(const char *path, nf_graph *g, nf_training *t, nf_record_loader extra, void *ctx,
                             nf_error *err);
/* (nf_evaluate_shared: nodeflow/dist.h) */
/* A training epoch's running sums summed over every process, and its
 * figures made again from them. */
nf_status nf_stats_share(nf_epoch_stats *stats, const nf_plan *plan, const nf_binding *bind, const nf_comm *comm,
                         nf_error *err);

/* Puts "path: " in front of err's message when st is an error. */
nf_status nf_fail_in(const char *path, nf_status st, nf_error *err);

#endif
