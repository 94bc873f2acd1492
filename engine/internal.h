/* nodeflow — the engine's private structures: graphs, nodes, parameters
 * and plans. Only engine/, nodes/ and optim/ include this. */
#ifndef NF_ENGINE_INTERNAL_H
#define NF_ENGINE_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "nodeflow/nodeflow.h"
#include "nodes/op.h"
#include "engine/rng.h"

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

typedef struct nf_param {
    char name[NF_PARAM_NAME_MAX];    /* "<node>.<suffix>" */
    nf_shape shape;
    int64_t size;
    int64_t offset;                  /* into values and grads, 16-float aligned */
    nf_param_spec spec;              /* how to initialise it */
} nf_param;

struct nf_graph {
    nf_node **nodes;
    int n_nodes, cap_nodes;
    nf_error error;                  /* first construction error (sticky) */
    uint64_t seed;
    uint64_t version;                /* bumped by every structural change */
    uint64_t validated_version;      /* version at the last validation */
    nf_param *params;
    int n_params;
    int64_t param_floats;
    float *values;                   /* all parameters, one block */
    float *grads;                    /* their gradients, same layout */
    int error_node;                  /* index of the node the last validation failed on, or -1 */
    uint64_t runs;                   /* training-mode forward passes: the key of random masks */
    unsigned char vocab[256];        /* byte of each token id, for text models */
    int vocab_size;                  /* 0: none */
};

/* Records `code` and a printf-style message into err (if non-NULL) and
 * returns code. */
nf_status nf_fail(nf_error *err, nf_status code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Records an error as the graph's sticky error (first one wins). */
void nf_graph_fail(nf_graph *g, nf_status code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Shape-checked multiply: a * b, or -1 on overflow past 2^62. */
int64_t nf_mul_checked(int64_t a, int64_t b);

/* FNV-1a hash of a name (parameter seeds, the parser's name table). */
static inline uint64_t nf_name_hash(const char *s)
{
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

/* Rounds a float count up to a 64-byte multiple. */
static inline int64_t nf_align_floats(int64_t n) { return (n + 15) & ~(int64_t)15; }

/* Fills a parameter according to its initialisation spec. */
void nf_param_init(float *data, const nf_param *p, nf_rng *rng);
/* The same from a stream seeded by (seed, parameter name), so that a
 * parameter's initial value does not depend on the others. */
void nf_param_init_seeded(float *data, const nf_param *p, uint64_t seed);

#endif
