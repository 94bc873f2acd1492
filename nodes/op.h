/* nodeflow — the node-type table: the whole contract between the engine
 * and a node type. A file in nodes/ includes this header (and kernels/)
 * and nothing of the engine's.
 *
 * Each node type is one nf_op: its attributes (names, types, defaults and
 * ranges, which the model-file parser and writer also use), a shape rule
 * that also declares the node's parameters, a forward and a backward
 * kernel. Every nf_op is listed once, in nodes/registry.c.
 *
 * Kernels see plain pointers. Activations are [batch, per-sample shape];
 * backward kernels ADD into in_grad and param_grad (a node's inputs may
 * feed several consumers, and parameters may be shared), and skip any
 * in_grad that is NULL (that input needs no gradient). */
#ifndef NF_NODES_OP_H
#define NF_NODES_OP_H

#include <omp.h>
#include <stdint.h>

#include "nodeflow/graph.h"

#define NF_MAX_ATTRS 16
#define NF_MAX_PARAMS 32 /* a 4-layer bidirectional lstm has 32 */

typedef enum nf_attr_type {
    NF_ATTR_INT,
    NF_ATTR_FLOAT,
    NF_ATTR_BOOL,
    NF_ATTR_ENUM,     /* stored as the index into `choices` */
    NF_ATTR_DIMS,     /* a shape such as 1x28x28, stored in node->dims */
    NF_ATTR_AXES,     /* axes such as 2,0,1 (from 0), stored in node->dims */
    NF_ATTR_INT2      /* one whole number for both axes, or HxW: the height in
                         attr[i] and the width in attr_w[i] (both in range) */
} nf_attr_type;

typedef struct nf_attr_spec {
    const char *name;
    nf_attr_type type;
    double def;                  /* default (an index for enums); NAN: required */
    double min, max;             /* accepted range for numbers */
    const char *const *choices;  /* NULL-terminated, for enums */
    const char *doc;
} nf_attr_spec;

/* How a parameter is initialised. fan_in and fan_out as in PyTorch's
 * torch.nn.init (for a [out, in] weight: fan_in = in, fan_out = out). */
typedef enum nf_init {
    NF_INIT_TORCH_DEFAULT,   /* weight: kaiming_uniform a=sqrt(5); bias: U(+-1/sqrt(fan_in)) */
    NF_INIT_XAVIER_UNIFORM,
    NF_INIT_XAVIER_NORMAL,
    NF_INIT_KAIMING_UNIFORM, /* gain sqrt(2), fan_in mode (for relu) */
    NF_INIT_KAIMING_NORMAL,
    NF_INIT_ZEROS,
    NF_INIT_CONSTANT,
    NF_INIT_NORMAL,          /* N(0, value^2); value 0: N(0, 1) */
    NF_INIT_SINUSOIDAL       /* positional table over [positions, features] */
} nf_init;

/* Names of nf_init values, in order; used as enum attribute choices. */
extern const char *const nf_init_names[];

typedef struct nf_param_spec {
    const char *suffix;     /* "weight", "bias" */
    nf_shape shape;
    nf_init init;
    double init_value;      /* for NF_INIT_CONSTANT */
    int64_t fan_in, fan_out;
    int buffer;             /* 1: state such as running statistics, saved with the
                               weights but not trained (no gradient, no update) */
} nf_param_spec;

typedef struct nf_param nf_param;

/* What a shape rule receives and fills. */
typedef struct nf_infer {
    const nf_node *node;
    const double *attr;
    const nf_shape *dims;        /* the node's NF_ATTR_DIMS value */
    int n_inputs;
    const nf_shape *in[NF_MAX_INPUTS];
    const char *in_name[NF_MAX_INPUTS];
    /* filled by the rule: */
    nf_shape out;
    int n_params;
    nf_param_spec params[NF_MAX_PARAMS];
    int64_t saved_per_sample;   /* floats per sample kept for backward */
    int64_t saved_fixed;        /* ... and floats per batch (e.g. per-channel statistics) */
    int64_t workspace;          /* scratch floats used while it runs (forward or backward) */
    int64_t state_per_sample;   /* nodes with reset_state: floats per row, first in the saved
                                   buffer (capacity rows of them), that carry from run to run */
    unsigned nondiff_inputs;    /* bit i: input i receives no gradient */
    nf_error *err;
} nf_infer;

/* What a kernel receives. Sizes are per sample; `batch` rows of each. */
typedef struct nf_kernels nf_kernels;

typedef struct nf_exec {
    const nf_kernels *kernels;       /* the products' variant the plan chose (kernels/kernels.h) */
    const nf_param *params;          /* the graph's parameters, for nodes that reach other */
    const float *param_values;       /* nodes' parameters (penalties): values and gradients */
    float *param_grads;              /* of params[k] at params[k].offset */
    const nf_node *node;
    const double *attr;
    int64_t batch;
    int n_inputs;
    const float *in[NF_MAX_INPUTS];
    const nf_shape *in_shape[NF_MAX_INPUTS];
    float *out;
    const nf_shape *out_shape;
    float *in_grad[NF_MAX_INPUTS];   /* NULL: not wanted */
    const float *out_grad;
    float *param[NF_MAX_PARAMS];
    float *param_grad[NF_MAX_PARAMS];
    float *saved;                    /* capacity * saved_per_sample + saved_fixed floats */
    float *workspace;                /* the node's scratch floats (shared by all nodes in turn) */
    int training;                    /* training mode (dropout active, batch statistics) */
    uint64_t random;                 /* a fresh random key for this node and run */
    int threads;                     /* threads of the plan */
    int64_t capacity;                /* rows the buffers have room for (>= batch) */
    const float *row_weight;         /* losses: each row's weight (0 past the end of its
                                        sequence); NULL: 1 for every row */
    void *state;                     /* what the op's prepare made for this plan (NULL: none) */
    /* Data parallel (a plan of one of several processes): sums x over the
     * processes, in place; returns 0 if that failed. NULL: one process.
     * Every process runs the same nodes in the same order, so a node may
     * call it in training; never in inference (processes evaluate
     * different numbers of batches). */
    int (*sum_across)(const void *ctx, double *x, int64_t n);
    const void *sum_ctx;
} nf_exec;

/* What a node's kernel state is prepared for, when a plan compiles. */
typedef struct nf_prepare {
    const nf_kernels *kernels;       /* the set the plan chose for the node */
    const nf_node *node;
    int64_t capacity;                /* rows of a run that can use the state (runs of fewer
                                        rows must do without it) */
    int backward;                    /* the plan runs the node's backward */
    int input_grad;                  /* ... and wants the gradient of its first input */
    int64_t saved_floats;            /* floats of its saved buffer (0 without backward) */
    /* filled by prepare: */
    int64_t workspace;               /* scratch floats its runs with the state use */
} nf_prepare;

enum nf_op_flags {
    NF_OP_INPUT = 1u << 0,   /* value supplied by the caller */
    NF_OP_LOSS = 1u << 1,    /* one number for the batch; seeds backward */
    NF_OP_OUTPUT = 1u << 2,  /* a graph output */
    NF_OP_MEMORY = 1u << 5,  /* state from the previous step (node->memory_source) */
    NF_OP_PARAM_PENALTY = 1u << 6, /* reads and adds to its inputs' parameter gradients */
    /* its saved floats are a cache for backward: a plan that runs no
     * backward for the node gives it none (exec->saved is NULL) */
    NF_OP_SAVED_FOR_BACKWARD = 1u << 7,
    /* What backward does not read, so that the plan can reuse that
     * memory as soon as forward is done with it: */
    NF_OP_GRAD_NO_INPUTS = 1u << 3, /* backward reads no input value */
    NF_OP_GRAD_NO_OUTPUT = 1u << 4, /* backward does not read the output */
    /* a layer with a boolean "carry" attribute: a generation window
     * (nf_graph_set_window) turns it on, so state flows between tokens */
    NF_OP_CARRY_OPTION = 1u << 8,
    /* a loss whose first input is logits (a single one is a positive
     * prediction above 0), not values (above 0.5) */
    NF_OP_READS_LOGITS = 1u << 9,
    /* takes (or for an input, gives) a tensor with no elements, a size of
     * 0 as ONNX allows: it moves values without dividing by sizes */
    NF_OP_TAKES_EMPTY = 1u << 10
};

typedef struct nf_op {
    const char *name;
    const char *summary;
    int min_inputs, max_inputs;
    const nf_attr_spec *attrs;
    int n_attrs;
    unsigned flags;
    nf_status (*infer)(nf_infer *ctx);
    void (*forward)(const nf_exec *e);
    void (*backward)(const nf_exec *e);
    /* Forward floating-point operations per sample (NULL: 0). */
    double (*flops)(const nf_node *node);
    /* For nodes with state kept between runs (memory nodes, recurrent
     * layers that carry their state): their saved buffer lives as long as
     * the plan, and this sets it to the initial state for `capacity` rows. */
    void (*reset_state)(const nf_node *node, float *saved, int64_t capacity);
    /* Whether the node's state carries from run to run (NULL: it does not):
     * a node that does not starts every run from its initial state. */
    int (*carries_state)(const nf_node *node);
    /* Inputs: whether the node takes one value per time step of an
     * unrolled plan (NULL: no). */
    int (*per_step)(const nf_node *node);
    /* Kernel state made when a plan compiles, for runs of `capacity` rows
     * (a library's primitives, created once): handed to forward and
     * backward in nf_exec.state. NULL (no hook, or nothing to prepare for
     * this node): the node runs without. release frees it. */
    void *(*prepare)(nf_prepare *ctx);
    void (*release)(const nf_kernels *kernels, void *state);
    /* What runs the node with that state (e.g. the library's kernels). */
    const char *(*describe)(const nf_kernels *kernels, const void *state);
} nf_op;

#define NF_PARAM_NAME_MAX (2 * NF_NAME_MAX)

/* Resource limits, checked before anything that large is allocated: a
 * per-sample shape at most 2^31 elements; parameters and a plan's
 * activations each at most nf_memory_limit() bytes (nf_limit_floats). */
#define NF_MAX_SAMPLE_ELEMENTS ((int64_t)1 << 31)
int64_t nf_limit_floats(void);

struct nf_node {
    int index;                       /* position in the graph */
    const nf_op *op;
    char name[NF_NAME_MAX];
    int n_inputs;
    nf_node *inputs[NF_MAX_INPUTS];
    double attr[NF_MAX_ATTRS];       /* in the order of op->attrs */
    double attr_w[NF_MAX_ATTRS];     /* NF_ATTR_INT2: the second (width) value */
    unsigned attr_set;               /* bit i: attribute i given explicitly */
    nf_shape dims;                   /* value of an NF_ATTR_DIMS attribute */
    int requires_grad;               /* inputs: the caller wants dL/dx */
    nf_node *share_from;             /* parameters come from this node */
    nf_node *memory_source;          /* memory nodes: the node whose value they carry */

    /* Filled by validation. */
    nf_shape shape;                  /* per-sample output shape */
    int n_params;
    int param[NF_MAX_PARAMS];        /* indices into graph->params */
    int64_t saved_per_sample;        /* floats kept from forward to backward */
    int64_t saved_fixed;             /* ... per batch */
    int64_t state_per_sample;        /* floats per row, first in saved, carried between runs */
    int64_t workspace;               /* scratch floats while it runs */
    unsigned nondiff_inputs;         /* bit i: input i gets no gradient */
};

struct nf_param {
    char name[NF_PARAM_NAME_MAX];    /* "<node>.<suffix>" */
    nf_shape shape;
    int64_t size;
    int64_t offset;                  /* into values and grads, 16-float aligned */
    nf_param_spec spec;              /* how to initialise it */
};

/* Records `code` and a printf-style message into err (if non-NULL) and
 * returns code. */
nf_status nf_fail(nf_error *err, nf_status code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Size arithmetic on counts read from input: each returns -1 when an
 * operand is negative (an earlier failure) or the result would pass 2^62,
 * so a chain of them needs one check at its end. */
int64_t nf_mul_checked(int64_t a, int64_t b);
int64_t nf_add_checked(int64_t a, int64_t b);
int64_t nf_mul3_checked(int64_t a, int64_t b, int64_t c);

/* The registry (nodes/registry.c). */
const nf_op *nf_op_find(const char *name);
int nf_op_count(void);
const nf_op *nf_op_at(int index);

/* Index of attribute `name` in op, or -1. */
int nf_op_attr_index(const nf_op *op, const char *name);

/* Helpers for shape rules and kernels (nodes/common.c). */
nf_status nf_infer_fail(nf_infer *ctx, nf_status code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* A node over one spatial axis ([C, L]): every NF_ATTR_INT2 attribute
 * must be one size, else an error "... is one size on WHAT, not HxW". */
nf_status nf_infer_one_size(nf_infer *ctx, const char *what);
/* Shape rule of nodes whose output has their first input's shape. */
nf_status nf_infer_same_shape(nf_infer *ctx);
/* FLOP counts of element-wise nodes: one per output element, or one per
 * element of the first input (losses). */
double nf_flops_per_element(const nf_node *node);
/* backward of y = x (copy, output, and functions whose slope is 1):
 * dx += dy */
void nf_identity_backward(const nf_exec *e);
/* the product of the last `axes` sizes of s */
int64_t nf_trailing_size(const nf_shape *s, int axes);
double nf_flops_per_input_element(const nf_node *node);
/* log(sum(exp(x))) of n values, the max subtracted first for stability. */
double nf_logsumexp(const float *x, int64_t n);
/* The sum of n floats, in 16 float lanes (so that it vectorizes) added
 * together in double. */
double nf_sum_floats(const float *x, int64_t n);
/* Rows of a tensor whose last axis is `cols` long: batch * (size / cols). */
int64_t nf_rows(const nf_exec *e, int64_t size_per_sample, int64_t cols);
/* Whether this run uses the state the op prepared: there is one, and the
 * run has the rows it was prepared for. */
int nf_uses_prepared(const nf_exec *e);
/* x[0..n) = NaN (x may be NULL): what a node leaves where a library call
 * failed, for the finiteness checks to report. */
void nf_fill_nan(float *x, int64_t n);
/* Threshold above which element-wise loops use OpenMP threads. */
#define NF_PARALLEL_MIN 32768

/* The one threading idiom of element-wise kernels: inside
 * `#pragma omp parallel`, each thread takes the contiguous chunk
 * [start, end) of n elements. Outside a parallel region it is all of them. */
static inline void nf_thread_range(int64_t n, int64_t *start, int64_t *end)
{
    int64_t t = omp_get_thread_num(), threads = omp_get_num_threads();
    *start = n * t / threads;
    *end = n * (t + 1) / threads;
}

/* Shorthands for attribute tables. */
#define NF_ATTR_REQUIRED_INT(nm, lo, hi, d) {nm, NF_ATTR_INT, NAN, lo, hi, NULL, d}
#define NF_ATTR_INT_DEF(nm, def, lo, hi, d) {nm, NF_ATTR_INT, def, lo, hi, NULL, d}
#define NF_ATTR_INT2_DEF(nm, def, lo, hi, d) {nm, NF_ATTR_INT2, def, lo, hi, NULL, d}
#define NF_ATTR_FLOAT_DEF(nm, def, lo, hi, d) {nm, NF_ATTR_FLOAT, def, lo, hi, NULL, d}
#define NF_ATTR_BOOL_DEF(nm, def, d) {nm, NF_ATTR_BOOL, def, 0, 1, NULL, d}
#define NF_ATTR_ENUM_DEF(nm, def, choices, d) {nm, NF_ATTR_ENUM, def, 0, 1e9, choices, d}
#define NF_COUNT(a) ((int)(sizeof(a) / sizeof((a)[0])))

#endif
