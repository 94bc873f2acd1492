/* nodeflow — compiled plans: running a graph forward and backward.
 *
 * A plan is a graph compiled for a batch size: the nodes in topological
 * order, every buffer's place in one arena (buffers whose lifetimes do not
 * overlap share memory) and the list of parameters. Running a plan does no
 * heap allocation. A plan refers to its graph, which must outlive it; if
 * the graph changes after compiling, the plan reports NF_ERR_STATE. */
#ifndef NODEFLOW_PLAN_H
#define NODEFLOW_PLAN_H

#include "export.h"

#include <stddef.h>
#include <stdint.h>
#include "graph.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct nf_plan nf_plan;

enum nf_plan_flags {
    NF_PLAN_INFERENCE = 0,        /* forward only, values freed early */
    NF_PLAN_TRAINING = 1u << 0,   /* forward and backward */
    NF_PLAN_KEEP_VALUES = 1u << 1 /* every node's value stays readable */
};

/* Validates `g` and compiles it for up to `batch` samples. The caller owns
 * the plan and releases it with nf_plan_free (before the graph). */
NF_API nf_status nf_plan_compile(nf_graph *g, int64_t batch, unsigned flags,
                          nf_plan **out, nf_error *err);
NF_API void nf_plan_free(nf_plan *plan);

/* Sets the number of samples of the next runs. Up to the compiled
 * capacity this allocates nothing; above it the arena is re-sized. */
NF_API nf_status nf_plan_set_batch(nf_plan *plan, int64_t batch, nf_error *err);
NF_API int64_t nf_plan_batch(const nf_plan *plan);
/* Training mode (dropout active, batch normalization on batch statistics
 * and updating its running ones) or inference mode. A plan starts in
 * training mode when compiled with NF_PLAN_TRAINING. nf_evaluate switches
 * to inference mode while it runs. */
NF_API void nf_plan_set_training(nf_plan *plan, int training);
NF_API int nf_plan_training(const nf_plan *plan);
/* Puts every memory node back to its initial state (also done when the
 * plan is compiled or its arena re-sized). */
NF_API void nf_plan_reset_state(nf_plan *plan);
/* Bytes of activation and gradient memory held by the plan. */
NF_API size_t nf_plan_arena_bytes(const nf_plan *plan);
/* What runs a node in this plan, written to buf: the kernel set's name,
 * and where the set prepared a kernel of its own for the node (oneDNN's
 * convolution primitives), its implementations, e.g.
 * "onednn: jit:avx512_core, jit:avx512_core, jit:avx512_core" (forward,
 * backward-data, backward-weights). Such a kernel serves runs of the
 * plan's full batch; a shorter batch runs the set's im2col and sgemm. */
NF_API const char *nf_plan_node_kernels(const nf_plan *plan, const nf_node *node, char *buf, size_t size);

/* A writable view [batch, ...] of an input node's buffer: fill it before
 * nf_plan_forward. */
NF_API nf_status nf_plan_input(nf_plan *plan, const nf_node *input, nf_tensor *view, nf_error *err);
/* Copies batch * per-sample-size floats into an input's buffer. */
NF_API nf_status nf_plan_set_input(nf_plan *plan, const nf_node *input, const float *data, nf_error *err);

/* Runs the graph forward. */
NF_API nf_status nf_plan_forward(nf_plan *plan, nf_error *err);
/* Back-propagates the sum of all loss nodes: parameter gradients are
 * overwritten (not accumulated across calls), input gradients are made
 * for inputs that asked for them. Needs NF_PLAN_TRAINING and a forward. */
NF_API nf_status nf_plan_backward(nf_plan *plan, nf_error *err);
/* The same, with the seed of every loss scaled by `loss_scale` and, when
 * `accumulate` is set, parameter gradients added to those already there
 * (gradient accumulation over several batches). */
NF_API nf_status nf_plan_backward_ex(nf_plan *plan, double loss_scale, int accumulate, nf_error *err);

/* The value of a node after forward. Inputs, outputs, losses and a
 * loss's first input (the scores) are always readable; other nodes only
 * with NF_PLAN_KEEP_VALUES. */
NF_API nf_status nf_plan_value(const nf_plan *plan, const nf_node *node, nf_tensor *view, nf_error *err);
/* The gradient of the loss with respect to an input that asked for it
 * (nf_input_requires_grad), after backward. */
NF_API nf_status nf_plan_grad(const nf_plan *plan, const nf_node *node, nf_tensor *view, nf_error *err);
/* Sum of the loss nodes' values after forward (0 if there are none). */
NF_API double nf_plan_loss(const nf_plan *plan);

/* Checks every node's output after its forward, and the gradient of its
 * output before its backward (and the parameters' gradients at the end),
 * for NaN and Inf: the first one found stops the run with NF_ERR_NUMERIC
 * and a message naming the node (and the time step). Off by default: the
 * training loop turns it on for a batch that went wrong, to say where. */
NF_API void nf_plan_set_check_finite(nf_plan *plan, int on);

/* Unrolling in time (backpropagation through time). With steps T > 1 a
 * run executes the graph T times, one frame of activations per step,
 * without copying the graph: a memory node's value at step t is its
 * source's at t - 1 (at t = 0, its state: carried from the previous run,
 * reset, or a learned vector), and backward runs the steps in reverse,
 * handing each memory node's gradient to its source one step earlier and
 * summing the gradients of the shared weights over the steps. State
 * carries across runs (truncated BPTT); gradients do not.
 * Inputs with sequence=true take [batch, T, shape] through nf_plan_input
 * and nf_plan_set_input (others hold for every step); outputs read back as
 * [batch, T, shape]; nf_plan_loss is the mean of the steps' losses, or the
 * last step's (nf_plan_set_loss_last_step). Lays the plan out again. */
NF_API nf_status nf_plan_set_steps(nf_plan *plan, int64_t steps, nf_error *err);
NF_API int64_t nf_plan_steps(const nf_plan *plan);
NF_API void nf_plan_set_loss_last_step(nf_plan *plan, int last_only);
/* Variable-length sequences: row b holds lengths[b] valid steps (0 .. T)
 * of the next runs (one per row of the current batch; NULL: all T). Past
 * its end a row's state is frozen (memory nodes keep the value they had,
 * and that is the state carried to the next run) and its losses count for
 * nothing: the loss is the mean over the valid (row, step) pairs, or with
 * nf_plan_set_loss_last_step each row's loss at its own last step. */
NF_API nf_status nf_plan_set_lengths(nf_plan *plan, const int64_t *lengths, nf_error *err);

#ifdef __cplusplus
}
#endif
#endif
