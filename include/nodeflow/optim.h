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

#include "graph.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct nf_optimizer nf_optimizer;

/* Creates optimizer `name` ("sgd") over all parameters of `g`, which
 * must have been validated (nf_graph_validate or nf_plan_compile). The
 * caller owns it; release with nf_optimizer_free before the graph. */
nf_status nf_optimizer_new(nf_graph *g, const char *name, nf_optimizer **out, nf_error *err);
void nf_optimizer_free(nf_optimizer *opt);

/* Sets hyper-parameter `key` ("lr", "momentum", ...). An unknown key or
 * an out-of-range value is NF_ERR_INVALID_ARGUMENT. */
nf_status nf_optimizer_set(nf_optimizer *opt, const char *key, double value, nf_error *err);
nf_status nf_optimizer_get(const nf_optimizer *opt, const char *key, double *value, nf_error *err);

/* The learning rate, settable between steps (schedules use this). */
void nf_optimizer_set_lr(nf_optimizer *opt, double lr);
double nf_optimizer_lr(const nf_optimizer *opt);

/* Gradient clipping applied by every nf_optimizer_step before the
 * update: by global norm (PyTorch's clip_grad_norm_: gradients scaled by
 * max_norm / (norm + 1e-6) when that is below 1) and by value (each
 * gradient element clamped to [-limit, limit]). 0 turns either off. */
nf_status nf_optimizer_set_clipping(nf_optimizer *opt, double max_norm, double limit, nf_error *err);
/* The global gradient norm seen by the last step (before clipping). */
double nf_optimizer_grad_norm(const nf_optimizer *opt);

/* Clip the gradients of a graph directly; nf_clip_grad_norm returns the
 * norm before clipping. */
double nf_clip_grad_norm(nf_graph *g, double max_norm);
void nf_clip_grad_value(nf_graph *g, double limit);

/* One update of every parameter from its current gradient. */
nf_status nf_optimizer_step(nf_optimizer *opt, nf_error *err);
/* Number of steps taken so far. */
int64_t nf_optimizer_steps(const nf_optimizer *opt);

/* Names of all optimizers, NULL-terminated. */
const char *const *nf_optimizer_names(void);

#ifdef __cplusplus
}
#endif
#endif
