/* nodeflow — convolutions through oneDNN's primitives: forward,
 * backward-data and backward-weights, created once for a geometry and a
 * batch (when a plan compiles: creation takes 0.2-9 ms) and run every
 * time. oneDNN picks its own (blocked, e.g. nChw16c) layouts for the
 * tensors ("any"); the engine's tensors stay NCHW and OIHW, so each run
 * reorders into and out of those layouts:
 *
 *   forward:   x -> src (kept in `saved` for backward), W -> w, conv, dst -> y
 *   backward:  dy -> ddst, W -> w, conv bwd-data, dsrc -> dx (added)
 *              conv bwd-weights (src, ddst), dw -> dW (added), db added
 *
 * A reorder whose two layouts are the same is a copy, or nothing where the
 * buffer can be used as it is. Every temporary (blocked tensors and
 * oneDNN's own scratchpads, "user" mode) lives in the caller's scratch
 * area, so a run allocates no buffer of ours. Geometries that oneDNN runs
 * only with its reference loops, and padding other than zeros, are
 * refused (NULL): the node then runs im2col and sgemm. Built only with the
 * `onednn` Meson feature; this and gemm_onednn.c are the files that call
 * dnnl_. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <oneapi/dnnl/dnnl.h>

#include "kernels/variants.h"

#define ALIGN 64

static dnnl_engine_t engine;
static pthread_once_t engine_once = PTHREAD_ONCE_INIT;

static void create_engine(void)
{
    if (dnnl_engine_create(&engine, dnnl_cpu, 0) != dnnl_success)
        engine = NULL;
}

/* A tensor moved from one layout to another: a reorder (NULL when the
 * layouts are the same and no sum is asked), and memory objects whose
 * buffers are set at each run. */
typedef struct move {
    dnnl_primitive_t reorder;
    dnnl_memory_t from, to;
    size_t bytes;       /* of the destination */
} move;

/* One primitive with its memory objects, by argument. */
enum { SRC, WEIGHTS, BIAS, DST, SCRATCH, N_ARGS };

typedef struct prim {
    dnnl_primitive_t p;
    dnnl_memory_t mem[N_ARGS];
    int arg[N_ARGS];
    dnnl_memory_desc_t md[N_ARGS];
    size_t bytes[N_ARGS];
} prim;

struct nf_conv_kernel {
    dnnl_stream_t stream;
    int bias, input_grad, backward;
    int64_t o;
    prim fwd, bwd_data, bwd_weights;
    /* forward */
    move x_to_src, w_to_fwd, dst_to_y;
    /* backward */
    move dy_to_data, w_to_data, dsrc_to_dx;
    move src_to_weights, dy_to_weights, dw_to_grad;
    size_t fwd_scratch, bwd_scratch; /* bytes of the scratch area each pass uses */
    char name[160];                   /* the implementations oneDNN chose */
};

static size_t round_up(size_t n) { return (n + ALIGN - 1) / ALIGN * ALIGN; }

static void destroy_move(move *m)
{
    if (m->reorder)
        dnnl_primitive_destroy(m->reorder);
    if (m->from)
        dnnl_memory_destroy(m->from);
    if (m->to)
        dnnl_memory_destroy(m->to);
}

static void destroy_prim(prim *p)
{
    if (p->p)
        dnnl_primitive_destroy(p->p);
    for (int i = 0; i < N_ARGS; i++)
        if (p->mem[i])
            dnnl_memory_destroy(p->mem[i]);
}

void nf_onednn_conv_release(nf_conv_kernel *k)
{
    if (!k)
        return;
    move *moves[] = {&k->x_to_src, &k->w_to_fwd, &k->dst_to_y, &k->dy_to_data, &k->w_to_data,
                     &k->dsrc_to_dx, &k->src_to_weights, &k->dy_to_weights, &k->dw_to_grad};
    for (size_t i = 0; i < sizeof moves / sizeof moves[0]; i++)
        destroy_move(moves[i]);
    destroy_prim(&k->fwd);
    destroy_prim(&k->bwd_data);
    destroy_prim(&k->bwd_weights);
    if (k->stream)
        dnnl_stream_destroy(k->stream);
    free(k);
}

/* A reorder from `from` to `to`; `add`: to += from (a sum post-op), else
 * to = from, and nothing at all when the layouts are the same. */
static int make_move(move *m, const dnnl_memory_desc_t *from, const dnnl_memory_desc_t *to, int add)
{
    m->bytes = dnnl_memory_desc_get_size(to);
    if (!add && dnnl_memory_desc_equal(from, to))
        return 1;
    dnnl_primitive_attr_t attr = NULL;
    dnnl_post_ops_t ops = NULL;
    dnnl_primitive_desc_t pd = NULL;
    int ok = dnnl_primitive_attr_create(&attr) == dnnl_success &&
             dnnl_primitive_attr_set_scratchpad_mode(attr, dnnl_scratchpad_mode_user) == dnnl_success;
    if (ok && add)
        ok = dnnl_post_ops_create(&ops) == dnnl_success && dnnl_post_ops_append_sum(ops, 1.0f) == dnnl_success &&
             dnnl_primitive_attr_set_post_ops(attr, ops) == dnnl_success;
    ok = ok && dnnl_reorder_primitive_desc_create(&pd, from, engine, to, engine, attr) == dnnl_success;
    /* a reorder that needs a scratchpad of its own is not expected here */
    ok = ok && dnnl_memory_desc_get_size(dnnl_primitive_desc_query_md(pd, dnnl_query_scratchpad_md, 0)) == 0;
    ok = ok && dnnl_primitive_create(&m->reorder, pd) == dnnl_success;
    ok = ok && dnnl_memory_create(&m->from, from, engine, DNNL_MEMORY_NONE) == dnnl_success;
    ok = ok && dnnl_memory_create(&m->to, to, engine, DNNL_MEMORY_NONE) == dnnl_success;
    if (pd)
        dnnl_primitive_desc_destroy(pd);
    if (ops)
        dnnl_post_ops_destroy(ops);
    if (attr)
        dnnl_primitive_attr_destroy(attr);
    return ok;
}

/* Runs a move: to = from (or += from). Without a reorder, `to` is `from`. */
static int run_move(nf_conv_kernel *k, const move *m, const void *from, void *to)
{
    if (!m->reorder)
        return 1;
    dnnl_exec_arg_t args[2] = {{DNNL_ARG_FROM, m->from}, {DNNL_ARG_TO, m->to}};
    return dnnl_memory_set_data_handle_v2(m->from, (void *)from, k->stream) == dnnl_success &&
           dnnl_memory_set_data_handle_v2(m->to, to, k->stream) == dnnl_success &&
           dnnl_primitive_execute(m->reorder, k->stream, 2, args) == dnnl_success;
}

/* Where a moved tensor is: the destination buffer, or the source itself
 * when no reorder runs. */
static const void *moved(const move *m, const void *from, void *to) { return m->reorder ? to : from; }

/* Makes p from its descriptor: the layouts it chose for the arguments
 * (args[i] names argument i, 0: none), memory objects and its scratchpad.
 * Refuses oneDNN's reference implementation (plain loops, slower than
 * im2col and sgemm). */
static int make_prim(prim *p, const void *desc, const dnnl_primitive_desc_t hint, const int *args,
                     const dnnl_query_t *queries, dnnl_primitive_desc_t *pd_out, char *name, size_t size)
{
    dnnl_primitive_attr_t attr = NULL;
    dnnl_primitive_desc_t pd = NULL;
    int ok = dnnl_primitive_attr_create(&attr) == dnnl_success &&
             dnnl_primitive_attr_set_scratchpad_mode(attr, dnnl_scratchpad_mode_user) == dnnl_success &&
             dnnl_primitive_desc_create(&pd, desc, attr, engine, hint) == dnnl_success;
    const char *impl = NULL;
    ok = ok && dnnl_primitive_desc_query(pd, dnnl_query_impl_info_str, 0, &impl) == dnnl_success && impl &&
         !strstr(impl, "ref");
    if (ok)
        snprintf(name + strlen(name), size - strlen(name), "%s%s", *name ? ", " : "", impl);
    for (int i = 0; ok && i < N_ARGS; i++) {
        p->arg[i] = args[i];
        if (!args[i])
            continue;
        /* the bias is the second weights (or diff weights) descriptor */
        const dnnl_memory_desc_t *md = dnnl_primitive_desc_query_md(pd, queries[i], i == BIAS);
        ok = md != NULL;
        if (ok && i == SCRATCH && dnnl_memory_desc_get_size(md) == 0) {
            p->arg[i] = 0; /* no scratchpad */
            continue;
        }
        if (ok) {
            p->md[i] = *md;
            p->bytes[i] = dnnl_memory_desc_get_size(md);
            ok = dnnl_memory_create(&p->mem[i], md, engine, DNNL_MEMORY_NONE) == dnnl_success;
        }
    }
    ok = ok && dnnl_primitive_create(&p->p, pd) == dnnl_success;
    if (attr)
        dnnl_primitive_attr_destroy(attr);
    if (ok && pd_out)
        *pd_out = pd;
    else if (pd)
        dnnl_primitive_desc_destroy(pd);
    return ok;
}

/* Runs p on the given buffers (NULL for arguments it does not take). */
static int run_prim(nf_conv_kernel *k, const prim *p, const void *const *buffers)
{
    dnnl_exec_arg_t args[N_ARGS];
    int n = 0;
    for (int i = 0; i < N_ARGS; i++) {
        if (!p->arg[i])
            continue;
        if (dnnl_memory_set_data_handle_v2(p->mem[i], (void *)buffers[i], k->stream) != dnnl_success)
            return 0;
        args[n++] = (dnnl_exec_arg_t){p->arg[i], p->mem[i]};
    }
    return dnnl_primitive_execute(p->p, k->stream, n, args) == dnnl_success &&
           dnnl_stream_wait(k->stream) == dnnl_success;
}

/* The plain (NCHW, OIHW or GOIHW, and x) descriptors of a geometry. */
typedef struct plain_mds {
    dnnl_memory_desc_t x, w, b, y, any_x, any_w, any_b, any_y;
} plain_mds;

static int init_mds(const nf_conv_geom *g, int64_t batch, plain_mds *m)
{
    dnnl_dims_t x = {batch, g->c, g->h, g->w}, y = {batch, g->o, g->oh, g->ow}, b = {g->o};
    dnnl_dims_t w4 = {g->o, g->c, g->kh, g->kw};
    dnnl_dims_t w5 = {g->groups, g->o / g->groups, g->c / g->groups, g->kh, g->kw};
    int grouped = g->groups > 1;
    const dnnl_dim_t *w = grouped ? w5 : w4;
    int wr = grouped ? 5 : 4;
    dnnl_data_type_t f = dnnl_f32;
    return dnnl_memory_desc_init_by_tag(&m->x, 4, x, f, dnnl_nchw) == dnnl_success &&
           dnnl_memory_desc_init_by_tag(&m->y, 4, y, f, dnnl_nchw) == dnnl_success &&
           dnnl_memory_desc_init_by_tag(&m->b, 1, b, f, dnnl_a) == dnnl_success &&
           dnnl_memory_desc_init_by_tag(&m->w, wr, w, f, grouped ? dnnl_goihw : dnnl_oihw) == dnnl_success &&
           dnnl_memory_desc_init_by_tag(&m->any_x, 4, x, f, dnnl_format_tag_any) == dnnl_success &&
           dnnl_memory_desc_init_by_tag(&m->any_y, 4, y, f, dnnl_format_tag_any) == dnnl_success &&
           dnnl_memory_desc_init_by_tag(&m->any_b, 1, b, f, dnnl_format_tag_any) == dnnl_success &&
           dnnl_memory_desc_init_by_tag(&m->any_w, wr, w, f, dnnl_format_tag_any) == dnnl_success;
}

/* The three primitives and the moves around them. */
static int make_conv(nf_conv_kernel *k, const nf_conv_geom *g, const plain_mds *m)
{
    dnnl_dims_t strides = {g->sh, g->sw}, dilates = {g->dh - 1, g->dw - 1};
    dnnl_dims_t pad_l = {g->pt, g->pl}, pad_r = {g->pb, g->pr};
    const dnnl_memory_desc_t *bias = k->bias ? &m->any_b : NULL;
    dnnl_convolution_desc_t fd, dd, wd;
    dnnl_primitive_desc_t fpd = NULL;
    int ok = dnnl_dilated_convolution_forward_desc_init(&fd, k->backward ? dnnl_forward_training : dnnl_forward_inference,
                                                        dnnl_convolution_direct, &m->any_x, &m->any_w, bias,
                                                        &m->any_y, strides, dilates, pad_l, pad_r) == dnnl_success;
    static const dnnl_query_t fq[N_ARGS] = {dnnl_query_src_md, dnnl_query_weights_md, dnnl_query_weights_md,
                                            dnnl_query_dst_md, dnnl_query_scratchpad_md};
    int fa[N_ARGS] = {DNNL_ARG_SRC, DNNL_ARG_WEIGHTS, k->bias ? DNNL_ARG_BIAS : 0, DNNL_ARG_DST, DNNL_ARG_SCRATCHPAD};
    ok = ok && make_prim(&k->fwd, &fd, NULL, fa, fq, &fpd, k->name, sizeof k->name);
    ok = ok && make_move(&k->x_to_src, &m->x, &k->fwd.md[SRC], 0) && make_move(&k->w_to_fwd, &m->w, &k->fwd.md[WEIGHTS], 0) &&
         make_move(&k->dst_to_y, &k->fwd.md[DST], &m->y, 0);
    if (ok && k->input_grad) {
        static const dnnl_query_t dq[N_ARGS] = {dnnl_query_diff_src_md, dnnl_query_weights_md, 0,
                                                dnnl_query_diff_dst_md, dnnl_query_scratchpad_md};
        int da[N_ARGS] = {DNNL_ARG_DIFF_SRC, DNNL_ARG_WEIGHTS, 0, DNNL_ARG_DIFF_DST, DNNL_ARG_SCRATCHPAD};
        ok = dnnl_dilated_convolution_backward_data_desc_init(&dd, dnnl_convolution_direct, &m->any_x, &m->any_w,
                                                              &m->any_y, strides, dilates, pad_l, pad_r) == dnnl_success &&
             make_prim(&k->bwd_data, &dd, fpd, da, dq, NULL, k->name, sizeof k->name) &&
             make_move(&k->dy_to_data, &m->y, &k->bwd_data.md[DST], 0) &&
             make_move(&k->w_to_data, &m->w, &k->bwd_data.md[WEIGHTS], 0) &&
             make_move(&k->dsrc_to_dx, &k->bwd_data.md[SRC], &m->x, 1);
    }
    if (ok && k->backward) {
        static const dnnl_query_t wq[N_ARGS] = {dnnl_query_src_md, dnnl_query_diff_weights_md,
                                                dnnl_query_diff_weights_md, dnnl_query_diff_dst_md,
                                                dnnl_query_scratchpad_md};
        int wa[N_ARGS] = {DNNL_ARG_SRC, DNNL_ARG_DIFF_WEIGHTS, k->bias ? DNNL_ARG_DIFF_BIAS : 0, DNNL_ARG_DIFF_DST,
                          DNNL_ARG_SCRATCHPAD};
        ok = dnnl_dilated_convolution_backward_weights_desc_init(&wd, dnnl_convolution_direct, &m->any_x, &m->any_w,
                                                                 k->bias ? &m->b : NULL, &m->any_y, strides, dilates,
                                                                 pad_l, pad_r) == dnnl_success &&
             make_prim(&k->bwd_weights, &wd, fpd, wa, wq, NULL, k->name, sizeof k->name);
        ok = ok && make_move(&k->src_to_weights, &k->fwd.md[SRC], &k->bwd_weights.md[SRC], 0) &&
             make_move(&k->dy_to_weights, &m->y, &k->bwd_weights.md[DST], 0) &&
             make_move(&k->dw_to_grad, &k->bwd_weights.md[WEIGHTS], &m->w, 1);
    }
    if (fpd)
        dnnl_primitive_desc_destroy(fpd);
    return ok;
}

/* A region of the scratch area: its offset, after `*at` bytes. */
static size_t take(size_t *at, size_t bytes)
{
    size_t here = *at;
    *at += round_up(bytes);
    return here;
}

/* The scratch each pass uses (see the offsets in the runs below). */
static void size_scratch(nf_conv_kernel *k)
{
    size_t f = 0;
    take(&f, k->fwd.bytes[SRC]); /* src, when it is not kept in saved */
    take(&f, k->w_to_fwd.bytes);
    take(&f, k->dst_to_y.reorder ? k->fwd.bytes[DST] : 0);
    take(&f, k->fwd.bytes[SCRATCH]);
    k->fwd_scratch = f;
    size_t b = 0;
    if (k->input_grad) {
        take(&b, k->dy_to_data.bytes);
        take(&b, k->w_to_data.bytes);
        take(&b, k->bwd_data.bytes[SRC]);
        take(&b, k->bwd_data.bytes[SCRATCH]);
    }
    if (k->backward) {
        take(&b, k->src_to_weights.bytes);
        take(&b, k->dy_to_weights.bytes);
        take(&b, k->bwd_weights.bytes[WEIGHTS]);
        take(&b, k->bwd_weights.bytes[BIAS]);
        take(&b, k->bwd_weights.bytes[SCRATCH]);
    }
    k->bwd_scratch = b;
}

nf_conv_kernel *nf_onednn_conv_prepare(const nf_conv_request *r, nf_conv_sizes *sizes)
{
    const nf_conv_geom *g = &r->geom;
    pthread_once(&engine_once, create_engine);
    if (!engine || g->pad_mode != NF_PAD_ZEROS || r->batch < 1)
        return NULL;
    nf_conv_kernel *k = calloc(1, sizeof *k);
    if (!k)
        return NULL;
    k->bias = r->bias;
    k->backward = r->backward;
    k->input_grad = r->backward && r->input_grad;
    k->o = g->o;
    plain_mds m;
    if (dnnl_stream_create(&k->stream, engine, dnnl_stream_default_flags) != dnnl_success || !init_mds(g, r->batch, &m) ||
        !make_conv(k, g, &m)) {
        nf_onednn_conv_release(k);
        return NULL;
    }
    size_scratch(k);
    sizes->saved_bytes = k->backward ? k->fwd.bytes[SRC] : 0;
    sizes->scratch_bytes = (k->fwd_scratch > k->bwd_scratch ? k->fwd_scratch : k->bwd_scratch) + ALIGN;
    return k;
}

static char *aligned(void *scratch)
{
    return (char *)(((uintptr_t)scratch + ALIGN - 1) / ALIGN * ALIGN);
}

int nf_onednn_conv_forward(nf_conv_kernel *k, const float *x, const float *w, const float *b, float *y, void *saved,
                           void *scratch)
{
    char *s = aligned(scratch);
    size_t at = 0;
    size_t src_at = take(&at, k->fwd.bytes[SRC]), w_at = take(&at, k->w_to_fwd.bytes);
    size_t dst_at = take(&at, k->dst_to_y.reorder ? k->fwd.bytes[DST] : 0), pad_at = take(&at, k->fwd.bytes[SCRATCH]);
    /* training keeps src (in the primitive's layout) for backward: always written to saved */
    void *src_buf = saved ? saved : s + src_at;
    const void *src = saved && !k->x_to_src.reorder ? memcpy(saved, x, k->fwd.bytes[SRC]) : moved(&k->x_to_src, x, src_buf);
    void *dst = k->dst_to_y.reorder ? (void *)(s + dst_at) : (void *)y;
    const void *buffers[N_ARGS] = {src, moved(&k->w_to_fwd, w, s + w_at), b, dst, s + pad_at};
    return run_move(k, &k->x_to_src, x, src_buf) && run_move(k, &k->w_to_fwd, w, s + w_at) &&
           run_prim(k, &k->fwd, buffers) && run_move(k, &k->dst_to_y, dst, y) && dnnl_stream_wait(k->stream) == dnnl_success;
}

int nf_onednn_conv_backward(nf_conv_kernel *k, const void *saved, const float *w, const float *dy, float *dx, float *dw,
                            float *db, void *scratch)
{
    char *s = aligned(scratch);
    size_t at = 0;
    int ok = 1;
    if (k->input_grad && dx) {
        size_t dy_at = take(&at, k->dy_to_data.bytes), w_at = take(&at, k->w_to_data.bytes);
        size_t dsrc_at = take(&at, k->bwd_data.bytes[SRC]), pad_at = take(&at, k->bwd_data.bytes[SCRATCH]);
        const void *buffers[N_ARGS] = {s + dsrc_at, moved(&k->w_to_data, w, s + w_at), NULL,
                                       moved(&k->dy_to_data, dy, s + dy_at), s + pad_at};
        ok = run_move(k, &k->dy_to_data, dy, s + dy_at) && run_move(k, &k->w_to_data, w, s + w_at) &&
             run_prim(k, &k->bwd_data, buffers) && run_move(k, &k->dsrc_to_dx, s + dsrc_at, dx);
    }
    size_t src_at = take(&at, k->src_to_weights.bytes), dy_at = take(&at, k->dy_to_weights.bytes);
    size_t dw_at = take(&at, k->bwd_weights.bytes[WEIGHTS]), db_at = take(&at, k->bwd_weights.bytes[BIAS]);
    size_t pad_at = take(&at, k->bwd_weights.bytes[SCRATCH]);
    const void *src = moved(&k->src_to_weights, saved, s + src_at);
    const void *buffers[N_ARGS] = {src, s + dw_at, s + db_at, moved(&k->dy_to_weights, dy, s + dy_at), s + pad_at};
    ok = ok && run_move(k, &k->src_to_weights, saved, s + src_at) && run_move(k, &k->dy_to_weights, dy, s + dy_at) &&
         run_prim(k, &k->bwd_weights, buffers) && run_move(k, &k->dw_to_grad, s + dw_at, dw) &&
         dnnl_stream_wait(k->stream) == dnnl_success;
    const float *bias_grad = (const float *)(s + db_at);
    for (int64_t o = 0; ok && db && o < k->o; o++)
        db[o] += bias_grad[o];
    return ok;
}

const char *nf_onednn_conv_name(const nf_conv_kernel *k) { return k->name; }
