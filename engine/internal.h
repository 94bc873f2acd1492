/* nodeflow — the engine's private structures: graphs and their
 * parameter blocks. Nodes and parameters are the node-type contract, in
 * nodes/op.h. Included by engine/ and by the folders above it (optim/,
 * io/, data/, train/), never by nodes/ or kernels/. */
#ifndef NF_ENGINE_INTERNAL_H
#define NF_ENGINE_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "nodeflow/nodeflow.h"
#include "nodes/op.h"
#include "engine/names.h"
#include "engine/rng.h"

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
    nf_name_index node_names;        /* node name -> index */
    nf_name_index param_names;       /* parameter name -> index into params */
    int auto_names[64];              /* per op (registry order): the last number auto_name used */
};

/* The length of the UTF-8 character at p (n bytes left) and its code
 * point, or 0 when the bytes are not UTF-8 (overlong forms, surrogates
 * and code points past U+10FFFF included). */
int nf_utf8_char(const unsigned char *p, size_t n, uint32_t *code);

/* `len` bytes of `text` made safe to print, into `out` (NUL-terminated):
 * control characters (C0, DEL, C1), invisible or reordering format
 * characters (zero-width, bidirectional, BOM) and bytes that are not
 * UTF-8 become \xNN, a backslash becomes \\; text that does not fit is
 * cut at a character boundary and ends in "...". Returns out. Every error
 * message (nf_fail) gets the same treatment, newlines and tabs kept. */
const char *nf_shown(const char *text, size_t len, char *out, size_t size);

/* Reads a whole text as a finite double into *out; NULL, or what is wrong
 * with it: not a number, past double's range (1e309), or so small that it
 * would read as 0 or a subnormal (1e-400: strtod's ERANGE). */
const char *nf_parse_number(const char *text, double *out);

/* Whether a node's state carries from one run of a plan to the next: a
 * memory node that says so (op->carries_state), or a layer with the carry
 * option turned on. */
int nf_node_carries_state(const nf_node *node);

/* Records an error as the graph's sticky error (first one wins). */
void nf_graph_fail(nf_graph *g, nf_status code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* FNV-1a hash of a name: the seed of a parameter's initial values (fixed;
 * name lookup hashes with a per-process basis, engine/names.c). */
static inline uint64_t nf_name_hash(const char *s)
{
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

/* Rounds a float count up to a 64-byte multiple. */
static inline int64_t nf_align_floats(int64_t n) { return (n + 15) & ~(int64_t)15; }

/* A monotonic clock, in seconds (engine/threads.c). */
double nf_now_seconds(void);

/* Fills a parameter according to its initialisation spec. */
void nf_param_init(float *data, const nf_param *p, nf_rng *rng);
/* The same from a stream seeded by (seed, parameter name), so that a
 * parameter's initial value does not depend on the others. */
void nf_param_init_seeded(float *data, const nf_param *p, uint64_t seed);

#endif
