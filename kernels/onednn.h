/* nodeflow — what the oneDNN variants share (private to kernels/): the
 * engine, primitives with their memory objects, and reorders between
 * layouts. Buffers are set at each run, so a primitive made once runs on
 * whatever the plan hands it; every primitive uses a scratchpad the
 * caller provides ("user" mode). Built only with the `onednn` feature. */
#ifndef NF_KERNELS_ONEDNN_H
#define NF_KERNELS_ONEDNN_H

#include <stddef.h>

#include <oneapi/dnnl/dnnl.h>

/* Alignment of every region of a caller's scratch area. */
#define NF_DNNL_ALIGN 64

/* The CPU engine (made once; NULL if oneDNN cannot make one). */
dnnl_engine_t nf_dnnl_engine(void);

/* A primitive's argument slots, by their place in its descriptor: for a
 * backward primitive SRC holds the source's gradient (or its data, with
 * EXTRA the gradient), DST the destination's gradient. */
enum { NF_DNNL_SRC, NF_DNNL_WEIGHTS, NF_DNNL_BIAS, NF_DNNL_DST, NF_DNNL_SCRATCH, NF_DNNL_EXTRA, NF_DNNL_SLOTS };

typedef struct nf_dnnl_prim {
    dnnl_primitive_t p;
    dnnl_memory_t mem[NF_DNNL_SLOTS];
    int arg[NF_DNNL_SLOTS];                 /* DNNL_ARG_*, 0: the slot is not used */
    dnnl_memory_desc_t md[NF_DNNL_SLOTS];   /* the layouts the primitive chose */
    size_t bytes[NF_DNNL_SLOTS];
} nf_dnnl_prim;

/* A primitive from its descriptor: args[i] and queries[i] name slot i's
 * argument and the query of its layout (the bias: the second weights
 * descriptor). Refuses oneDNN's reference implementation (plain loops:
 * slower than the engine's own). Appends the implementation's name to
 * `name`. The primitive descriptor goes to *pd_out when it is not NULL
 * (the caller destroys it), for backward primitives' hints. */
int nf_dnnl_make_prim(nf_dnnl_prim *p, const void *desc, const_dnnl_primitive_desc_t hint, const int *args,
                      const dnnl_query_t *queries, dnnl_primitive_desc_t *pd_out, char *name, size_t size);
/* Runs p on buffers[slot] (NULL for unused slots) and waits. */
int nf_dnnl_run_prim(dnnl_stream_t stream, const nf_dnnl_prim *p, const void *const *buffers);
void nf_dnnl_destroy_prim(nf_dnnl_prim *p);

/* A tensor moved from one layout to another: a reorder (none when the
 * layouts are the same and no sum is asked). */
typedef struct nf_dnnl_move {
    dnnl_primitive_t reorder;
    dnnl_memory_t from, to;
    size_t bytes;   /* of the destination */
} nf_dnnl_move;

/* add: to += from (a sum post-op), else to = from. */
int nf_dnnl_make_move(nf_dnnl_move *m, const dnnl_memory_desc_t *from, const dnnl_memory_desc_t *to, int add);
int nf_dnnl_run_move(dnnl_stream_t stream, const nf_dnnl_move *m, const void *from, void *to);
/* Where a moved tensor is: `to`, or `from` itself when no reorder runs. */
const void *nf_dnnl_moved(const nf_dnnl_move *m, const void *from, void *to);
void nf_dnnl_destroy_move(nf_dnnl_move *m);

/* Regions of a scratch area: the offset of `bytes` after *at (aligned),
 * and the area's first aligned byte. */
size_t nf_dnnl_take(size_t *at, size_t bytes);
char *nf_dnnl_aligned(void *scratch);

#endif
