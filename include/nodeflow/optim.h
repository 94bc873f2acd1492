/* nodeflow — optimizers.
 *
 * An optimizer updates every parameter of a graph from its gradient. Each
 * optimizer keeps its own state per parameter (momentum buffers, ...) in
 * one block, so a step is a flat loop over contiguous memory.
 *
 * Optimizers are chosen by name and configured by key, the same way from
 * C, from model files and from the command line:
 *
 *     nf_optimizer *opt;
 *     nf_optimizer_new(g, "sgd", &opt, &err);
 *     nf_optimizer_set(opt, "lr", 0.05, &err);
 *     nf_optimizer_set(opt, "momentum", 0.9, &err);
 */
#ifndef NODEFLOW_OPTIM_H
#define NODEFLOW_OPTIM_H

#include "export.h"

#include "graph.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct nf_optimizer nf_optimizer;

/* Creates optimizer `name` ("sgd") over all parameters of `g`, which
 * must have been validated (nf_graph_validate or nf_plan_compile). The
 * caller owns it; release with nf_optimizer_free before the graph. */
NF_API nf_status nf_optimizer_new(nf_graph *g, const char *name, nf_optimizer **out, nf_error *err);
NF_API void nf_optimizer_free(nf_optimizer *opt);

/* Sets hyper-parameter `key` ("lr", "momentum", ...). An unknown key or
 * an out-of-range value is NF_ERR_INVALID_ARGUMENT. */
NF_API nf_status nf_optimizer_set(nf_optimizer *opt, const char *key, double value, nf_error *err);
NF_API nf_status nf_optimizer_get(const nf_optimizer *opt, const char *key, double *value, nf_error *err);

/* The learning rate, settable between steps (schedules use this). */
NF_API void nf_optimizer_set_lr(nf_optimizer *opt, double lr);
NF_API double nf_optimizer_lr(const nf_optimizer *opt);

/* Gradient clipping applied by every nf_optimizer_step before the
 * update: by global norm (PyTorch's clip_grad_norm_: gradients scaled by
 * max_norm / (norm + 1e-6) when that is below 1) and by value (each
 * gradient element clamped to [-limit, limit]). 0 turns either off. */
NF_API nf_status nf_optimizer_set_clipping(nf_optimizer *opt, double max_norm, double limit, nf_error *err);
/* The global gradient norm seen by the last step (before clipping). */
NF_API double nf_optimizer_grad_norm(const nf_optimizer *opt);

/* Clip the gradients of a graph directly; nf_clip_grad_norm returns the
 * norm before clipping. */
NF_API double nf_clip_grad_norm(nf_graph *g, double max_norm);
NF_API void nf_clip_grad_value(nf_graph *g, double limit);

/* One update of every parameter from its current gradient. */
NF_API nf_status nf_optimizer_step(nf_optimizer *opt, nf_error *err);
/* Number of steps taken so far. */
NF_API int64_t nf_optimizer_steps(const nf_optimizer *opt);

/* Names of all optimizers, NULL-terminated. */
NF_API const char *const *nf_optimizer_names(void);

/* Besides each optimizer's own hyper-parameters, nf_optimizer_set takes:
 *   "lr_mult.NODE"  a learning-rate multiplier for NODE's parameters
 *   "decay_1d"      0: no weight decay on 1-D parameters (biases and
 *                   normalization scales), 1 (default): decay them too
 *   "accumulate"    k: the training loop (nf_train_epoch) sums the
 *                   gradients of k batches, each loss scaled by 1/k, per
 *                   step: an effective batch of k x B
 *   "bucket_mb"     data parallel (nodeflow/dist.h): > 0 sums the
 *                   gradients in pieces of about this many MiB, each
 *                   started while backward still runs on earlier nodes;
 *                   0: one sum after backward (the default: measured
 *                   faster, docs/distributed.md) */

/* ---- weight averaging --------------------------------------------------
 * "polyak": the running mean of the weights after each step (as
 * torch.optim.swa_utils.AveragedModel); "ema": avg = decay avg + (1 -
 * decay) w. Call nf_average_update after each optimizer step; swap the
 * averaged weights into the graph to evaluate or save them, and swap back
 * to continue training. */
typedef struct nf_average nf_average;

NF_API nf_status nf_average_new(nf_graph *g, const char *kind, double decay, nf_average **out, nf_error *err);
NF_API void nf_average_free(nf_average *a);
NF_API nf_status nf_average_update(nf_average *a, nf_error *err);
NF_API nf_status nf_average_swap(nf_average *a, nf_error *err);
NF_API int64_t nf_average_count(const nf_average *a);

/* ---- learning-rate schedules ------------------------------------------
 * The learning rate of each period (an epoch or a step, as the caller
 * steps it), as torch.optim.lr_scheduler computes it: "constant", "step"
 * (step_size, gamma), "multistep" (milestones "5,12,20", gamma),
 * "exponential" (gamma), "cosine" (T_max, eta_min), "restarts" (T_0,
 * T_mult, eta_min: cosine annealing with warm restarts) and "plateau"
 * (factor, patience, threshold, cooldown, min_lr: reduce when the metric
 * passed to nf_schedule_step stops falling). Any of them may start with
 * "warmup" periods of linear warm-up from warmup_start x lr0. */
typedef struct nf_schedule nf_schedule;

NF_API nf_status nf_schedule_new(const char *name, double lr0, nf_schedule **out, nf_error *err);
NF_API void nf_schedule_free(nf_schedule *s);
NF_API nf_status nf_schedule_set(nf_schedule *s, const char *key, double value, nf_error *err);
/* The same from text; "milestones" takes a comma-separated list. */
NF_API nf_status nf_schedule_set_text(nf_schedule *s, const char *key, const char *text, nf_error *err);
/* The learning rate of the current period. */
NF_API double nf_schedule_lr(const nf_schedule *s);
/* Ends the current period; `metric` (the validation loss) drives
 * "plateau" and is ignored (pass NAN) by the others. */
NF_API void nf_schedule_step(nf_schedule *s, double metric);
/* Periods completed; nf_schedule_seek jumps there (when resuming; not
 * for "plateau", whose state depends on the metrics). */
NF_API int64_t nf_schedule_periods(const nf_schedule *s);
NF_API void nf_schedule_seek(nf_schedule *s, int64_t periods);
NF_API const char *const *nf_schedule_names(void);

#ifdef __cplusplus
}
#endif
#endif
