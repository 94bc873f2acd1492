/* nodeflow — building graphs.
 *
 * A graph records nodes: each has an operation ("linear", "relu", ...), a
 * unique name, inputs (other nodes), attributes and, for some operations,
 * parameters named "<node>.<param>" ("fc1.weight"). Building never
 * computes; nf_graph_validate infers every shape and creates parameters,
 * and nf_plan_compile (plan.h) turns a graph into something that runs.
 *
 * Errors are sticky: a constructor that fails returns NULL and records the
 * first error in the graph. Passing that NULL on to another constructor is
 * safe (it returns NULL too), and nf_graph_status, nf_graph_validate and
 * nf_plan_compile report the first error. So a whole network can be built
 * in straight-line code and checked once:
 *
 *     nf_node *x  = nf_input(g, "x", 1, (int64_t[]){784});
 *     nf_node *h  = nf_relu(g, NULL, nf_linear(g, "fc1", x, 256));
 *     ...
 *     if (nf_graph_validate(g, &err) != NF_OK) puts(err.message);
 */
#ifndef NODEFLOW_GRAPH_H
#define NODEFLOW_GRAPH_H

#include "export.h"

#include <stdint.h>
#include "status.h"
#include "tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct nf_graph nf_graph;
typedef struct nf_node nf_node;

#define NF_NAME_MAX 64      /* node names are shorter than this */
#define NF_MAX_INPUTS 8     /* inputs of one node */

/* A new, empty graph; NULL when memory is exhausted. Release it with
 * nf_graph_free, which also frees its nodes and parameters. */
NF_API nf_graph *nf_graph_new(void);
NF_API void nf_graph_free(nf_graph *g);

/* The first error recorded while building (NF_OK if none). */
NF_API nf_status nf_graph_status(const nf_graph *g, nf_error *err);

/* Seed of the graph's random number generator, used to initialise
 * parameters (and, later, dropout masks). Default 0. */
NF_API void nf_graph_set_seed(nf_graph *g, uint64_t seed);
/* The vocabulary of a byte-level text model: the byte of each token id
 * (1 to 256 distinct bytes). Saved with the weights (safetensors metadata
 * "nodeflow.vocab", hex) and restored when they are loaded. */
NF_API nf_status nf_graph_set_vocab(nf_graph *g, const unsigned char *bytes, int n, nf_error *err);
/* The vocabulary's bytes and count (0 if none). */
NF_API const unsigned char *nf_graph_vocab(const nf_graph *g, int *n);

/* ---- Generic construction (used by the model-file parser) ---------- */

/* The constructor of every node type: the typed constructors below are
 * shorthands for it. Attributes have the names and text forms of the
 * model-file format (docs/model-format.md, `nodeflow ops`), for example
 *     nf_node *c = nf_graph_add(g, "conv2d", "c1", 1, &x);
 *     nf_node_set_attr(g, c, "out", "16");
 *     nf_node_set_attr(g, c, "kernel", "3x3");
 *     nf_node_set_attr(g, c, "stride", "2x1");
 * A mistake (an unknown attribute, a bad value) is recorded in the graph
 * and returned by nf_graph_validate / nf_plan_compile.
 *
 * Adds a node of operation `op` (see nf_op_names). `name` may be NULL or
 * "" for an automatic unique name ("relu_3"). Returns NULL and records an
 * error for an unknown op, a duplicate or too long name, a NULL input, or
 * a wrong number of inputs. */
NF_API nf_node *nf_graph_add(nf_graph *g, const char *op, const char *name,
                      int n_inputs, nf_node *const *inputs);

/* Sets attribute `key` from its text form ("256", "0.01", "xavier_uniform").
 * Returns NF_ERR_INVALID_ARGUMENT (and records it) for an unknown key or a
 * value that is not of the attribute's type or range. */
NF_API nf_status nf_node_set_attr(nf_graph *g, nf_node *node, const char *key, const char *value);

/* The same for numeric attributes (an HxW attribute takes the number for
 * both axes). */
NF_API nf_status nf_node_set_attr_number(nf_graph *g, nf_node *node, const char *key, double value);

/* Reads an attribute back as a number (enumerations give their index, an
 * HxW attribute its height). */
NF_API nf_status nf_node_get_attr_number(const nf_node *node, const char *key, double *value);

/* Makes `node` use the parameters of `source` (tied weights). Both must
 * have the same operation; shapes are checked by nf_graph_validate.
 * Gradients of shared parameters are summed over all users. */
NF_API nf_status nf_node_share_params(nf_graph *g, nf_node *node, nf_node *source);

/* Node lookup and facts. Names and op strings are owned by the graph. */
NF_API nf_node *nf_graph_find(const nf_graph *g, const char *name);
NF_API int nf_graph_node_count(const nf_graph *g);
NF_API nf_node *nf_graph_node(const nf_graph *g, int index);
NF_API const char *nf_node_name(const nf_node *node);
NF_API const char *nf_node_op(const nf_node *node);
NF_API int nf_node_input_count(const nf_node *node);
NF_API nf_node *nf_node_input(const nf_node *node, int index);

/* Per-sample output shape of a node (no batch axis); valid after a
 * successful nf_graph_validate. */
NF_API nf_status nf_node_shape(const nf_node *node, nf_shape *shape, nf_error *err);

/* Forward floating-point operations per sample of a validated node (an
 * estimate for element-wise nodes: one per element). */
NF_API double nf_node_flops(const nf_node *node);
/* Parameter floats a node owns (0 when it shares another node's). */
NF_API int64_t nf_node_param_floats(const nf_graph *g, const nf_node *node);
/* The node whose parameters this one uses (nf_node_share_params), or NULL. */
NF_API nf_node *nf_node_share_source(const nf_node *node);
/* 1 for inputs, outputs, losses and memory nodes respectively. */
NF_API int nf_node_is_input(const nf_node *node);
NF_API int nf_node_is_output(const nf_node *node);
NF_API int nf_node_is_loss(const nf_node *node);
NF_API int nf_node_is_memory(const nf_node *node);

/* 1 if a node of g carries its state from one run of a plan to the next
 * (lstm or gru with carry=true, a carrying memory node), else 0. */
NF_API int nf_graph_carries_state(const nf_graph *g);
/* 1 if g has a node that can carry state from run to run (lstm, gru,
 * memory nodes): nf_graph_set_window makes such a model read one step
 * per run. */
NF_API int nf_graph_has_recurrence(const nf_graph *g);

/* Names of all operations, NULL-terminated; owned by the library. */
NF_API const char *const *nf_op_names(void);

/* ---- Typed constructors ------------------------------------------- */

/* A graph input with a per-sample shape; the plan adds the batch axis.
 * Class-index labels are rank-0 inputs (rank 0, dims NULL). */
NF_API nf_node *nf_input(nf_graph *g, const char *name, int rank, const int64_t *dims);
/* Asks for the gradient of the loss with respect to an input node;
 * read it with nf_plan_grad after a backward pass. */
NF_API nf_status nf_input_requires_grad(nf_graph *g, nf_node *input);
/* A memory node: at each run of a plan (a time step) it outputs the value
 * its source had at the previous run, and zeros at the first (attribute
 * "init" = "constant" with "value" for another start). Connect the source,
 * which may be added later (a recurrent back edge), with
 * nf_memory_connect; its shape must equal `dims`. */
NF_API nf_node *nf_memory(nf_graph *g, const char *name, int rank, const int64_t *dims);
NF_API nf_status nf_memory_connect(nf_graph *g, nf_node *memory, nf_node *source);
/* The source of a memory node (NULL if none or not a memory node). */
NF_API nf_node *nf_memory_source(const nf_node *memory);
/* Marks a node's value as a graph output (identity). */
NF_API nf_node *nf_output(nf_graph *g, const char *name, nf_node *x);

/* y = x W^T + b over the last axis; W is [out, in], b is [out] (PyTorch's
 * layout). in_features is inferred from x. */
NF_API nf_node *nf_linear(nf_graph *g, const char *name, nf_node *x, int64_t out_features);
/* Per-sample matrix product as torch.matmul: a [..., M, K] x b [..., K, N]
 * -> [..., M, N], the leading (batch) axes broadcast; a 1-D a is a row and
 * a 1-D b a column. Attributes "transpose_a" / "transpose_b" swap the last
 * two axes of a or b first. */
NF_API nf_node *nf_matmul(nf_graph *g, const char *name, nf_node *a, nf_node *b);

/* Element-wise a+b, a-b, a*b. b's per-sample shape must equal a's or a
 * trailing part of it (b is then repeated over a's leading axes). */
NF_API nf_node *nf_add(nf_graph *g, const char *name, nf_node *a, nf_node *b);
NF_API nf_node *nf_sub(nf_graph *g, const char *name, nf_node *a, nf_node *b);
NF_API nf_node *nf_mul(nf_graph *g, const char *name, nf_node *a, nf_node *b);
/* y = factor * x */
NF_API nf_node *nf_scale(nf_graph *g, const char *name, nf_node *x, double factor);

NF_API nf_node *nf_relu(nf_graph *g, const char *name, nf_node *x);
NF_API nf_node *nf_leaky_relu(nf_graph *g, const char *name, nf_node *x, double slope);
NF_API nf_node *nf_sigmoid(nf_graph *g, const char *name, nf_node *x);
NF_API nf_node *nf_tanh(nf_graph *g, const char *name, nf_node *x);
/* Softmax and log-softmax over the last axis. Attribute "axis" picks
 * another; "causal" = "true" removes, over the last two axes [.., T, S],
 * positions j > i; an additive mask is a second input (nf_graph_add). */
NF_API nf_node *nf_softmax(nf_graph *g, const char *name, nf_node *x);
NF_API nf_node *nf_log_softmax(nf_graph *g, const char *name, nf_node *x);

/* Multi-head attention as torch.nn.MultiheadAttention (batch_first):
 * query [T, E], key [S, E], value [S, E] per sample; key NULL: self-
 * attention; value NULL: the key is also the value. Parameters
 * in_proj_weight [3E, E], in_proj_bias [3E], out_proj.weight [E, E],
 * out_proj.bias [E]; attributes "causal", "dropout" (on the attention
 * weights) and "bias". */
NF_API nf_node *nf_attention(nf_graph *g, const char *name, nf_node *query, nf_node *key, nf_node *value,
                             int64_t heads);
/* A tensor of per-sample shape `dims`, the same for every sample: the
 * buffer "<name>.value" (read from a weights file, never trained), or a
 * learned parameter with attribute "trainable" = "true". Attribute "init"
 * (zeros by default; constant, normal, sinusoidal, ...) and "value". */
NF_API nf_node *nf_constant(nf_graph *g, const char *name, int rank, const int64_t *dims);

/* Losses produce one number for the whole batch; reduction "mean" by
 * default (set the attribute "reduction" to "sum" to change it).
 * mse: mean of (pred - target)^2 over all elements.
 * cross_entropy: softmax cross-entropy of logits [..., C] against class
 *   indices [...] (stored as floats) or against probabilities [..., C].
 * bce_with_logits: binary cross-entropy of sigmoid(logits) against
 *   targets in [0, 1] of the same shape. */
NF_API nf_node *nf_mse_loss(nf_graph *g, const char *name, nf_node *pred, nf_node *target);
NF_API nf_node *nf_cross_entropy_loss(nf_graph *g, const char *name, nf_node *logits, nf_node *target);
NF_API nf_node *nf_bce_with_logits_loss(nf_graph *g, const char *name, nf_node *logits, nf_node *target);

/* ---- Validation and parameters ------------------------------------ */

/* Infers every shape, checks the wiring and creates or re-uses the
 * parameters (initialised from the graph seed, see the node attributes
 * "weight_init" and "bias_init"). Errors name the node, its type and the
 * offending shapes. Called by nf_plan_compile; calling it again after
 * adding nodes keeps the values of existing parameters. */
NF_API nf_status nf_graph_validate(nf_graph *g, nf_error *err);

/* Re-initialises every parameter from `seed`. */
NF_API nf_status nf_graph_init_params(nf_graph *g, uint64_t seed, nf_error *err);

/* Parameters, after validation. Tensors are views owned by the graph:
 * values and gradients of parameter `index` (0 .. count-1). */
NF_API int nf_graph_param_count(const nf_graph *g);
NF_API nf_status nf_graph_param(const nf_graph *g, int index, const char **name,
                         nf_tensor *value, nf_tensor *grad);
/* Finds a parameter by its name ("fc1.weight"); returns its index or -1. */
NF_API int nf_graph_find_param(const nf_graph *g, const char *name);
/* Total number of parameter floats. */
NF_API int64_t nf_graph_param_floats(const nf_graph *g);

#ifdef __cplusplus
}
#endif
#endif
