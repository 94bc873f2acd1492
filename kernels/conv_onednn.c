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
 * `onednn` Meson feature. */
#include <stdlib.h>
#include <string.h>

#include "kernels/onednn.h"
#include "kernels/variants.h"

typedef nf_dnnl_prim prim;
typedef nf_dnnl_move move;
enum { SRC = NF_DNNL_SRC, WEIGHTS = NF_DNNL_WEIGHTS, BIAS = NF_DNNL_BIAS, DST = NF_DNNL_DST, SCRATCH = NF_DNNL_SCRATCH };

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

void nf_onednn_conv_release(nf_conv_kernel *k)
{
    if (!k)
        return;
    move *moves[] = {&k->x_to_src, &k->w_to_fwd, &k->dst_to_y, &k->dy_to_data, &k->w_to_data,
                     &k->dsrc_to_dx, &k->src_to_weights, &k->dy_to_weights, &k->dw_to_grad};
    for (size_t i = 0; i < sizeof moves / sizeof moves[0]; i++)
        nf_dnnl_destroy_move(moves[i]);
    nf_dnnl_destroy_prim(&k->fwd);
    nf_dnnl_destroy_prim(&k->bwd_data);
    nf_dnnl_destroy_prim(&k->bwd_weights);
    if (k->stream)
        dnnl_stream_destroy(k->stream);
    free(k);
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
    static const dnnl_query_t fq[NF_DNNL_SLOTS] = {dnnl_query_src_md, dnnl_query_weights_md, dnnl_query_weights_md,
                                            dnnl_query_dst_md, dnnl_query_scratchpad_md};
    int fa[NF_DNNL_SLOTS] = {DNNL_ARG_SRC, DNNL_ARG_WEIGHTS, k->bias ? DNNL_ARG_BIAS : 0, DNNL_ARG_DST, DNNL_ARG_SCRATCHPAD};
    ok = ok && nf_dnnl_make_prim(&k->fwd, &fd, NULL, fa, fq, &fpd, k->name, sizeof k->name);
    ok = ok && nf_dnnl_make_move(&k->x_to_src, &m->x, &k->fwd.md[SRC], 0) && nf_dnnl_make_move(&k->w_to_fwd, &m->w, &k->fwd.md[WEIGHTS], 0) &&
         nf_dnnl_make_move(&k->dst_to_y, &k->fwd.md[DST], &m->y, 0);
    if (ok && k->input_grad) {
        static const dnnl_query_t dq[NF_DNNL_SLOTS] = {dnnl_query_diff_src_md, dnnl_query_weights_md, 0,
                                                dnnl_query_diff_dst_md, dnnl_query_scratchpad_md};
        int da[NF_DNNL_SLOTS] = {DNNL_ARG_DIFF_SRC, DNNL_ARG_WEIGHTS, 0, DNNL_ARG_DIFF_DST, DNNL_ARG_SCRATCHPAD};
        ok = dnnl_dilated_convolution_backward_data_desc_init(&dd, dnnl_convolution_direct, &m->any_x, &m->any_w,
                                                              &m->any_y, strides, dilates, pad_l, pad_r) == dnnl_success &&
             nf_dnnl_make_prim(&k->bwd_data, &dd, fpd, da, dq, NULL, k->name, sizeof k->name) &&
             nf_dnnl_make_move(&k->dy_to_data, &m->y, &k->bwd_data.md[DST], 0) &&
             nf_dnnl_make_move(&k->w_to_data, &m->w, &k->bwd_data.md[WEIGHTS], 0) &&
             nf_dnnl_make_move(&k->dsrc_to_dx, &k->bwd_data.md[SRC], &m->x, 1);
    }
    if (ok && k->backward) {
        static const dnnl_query_t wq[NF_DNNL_SLOTS] = {dnnl_query_src_md, dnnl_query_diff_weights_md,
                                                dnnl_query_diff_weights_md, dnnl_query_diff_dst_md,
                                                dnnl_query_scratchpad_md};
        int wa[NF_DNNL_SLOTS] = {DNNL_ARG_SRC, DNNL_ARG_DIFF_WEIGHTS, k->bias ? DNNL_ARG_DIFF_BIAS : 0, DNNL_ARG_DIFF_DST,
                          DNNL_ARG_SCRATCHPAD};
        ok = dnnl_dilated_convolution_backward_weights_desc_init(&wd, dnnl_convolution_direct, &m->any_x, &m->any_w,
                                                                 k->bias ? &m->b : NULL, &m->any_y, strides, dilates,
                                                                 pad_l, pad_r) == dnnl_success &&
             nf_dnnl_make_prim(&k->bwd_weights, &wd, fpd, wa, wq, NULL, k->name, sizeof k->name);
        ok = ok && nf_dnnl_make_move(&k->src_to_weights, &k->fwd.md[SRC], &k->bwd_weights.md[SRC], 0) &&
             nf_dnnl_make_move(&k->dy_to_weights, &m->y, &k->bwd_weights.md[DST], 0) &&
             nf_dnnl_make_move(&k->dw_to_grad, &k->bwd_weights.md[WEIGHTS], &m->w, 1);
    }
    if (fpd)
        dnnl_primitive_desc_destroy(fpd);
    return ok;
}

/* The scratch each pass uses (see the offsets in the runs below). */
static void size_scratch(nf_conv_kernel *k)
{
    size_t f = 0;
    nf_dnnl_take(&f, k->fwd.bytes[SRC]); /* src, when it is not kept in saved */
    nf_dnnl_take(&f, k->w_to_fwd.bytes);
    nf_dnnl_take(&f, k->dst_to_y.reorder ? k->fwd.bytes[DST] : 0);
    nf_dnnl_take(&f, k->fwd.bytes[SCRATCH]);
    k->fwd_scratch = f;
    size_t b = 0;
    if (k->input_grad) {
        nf_dnnl_take(&b, k->dy_to_data.bytes);
        nf_dnnl_take(&b, k->w_to_data.bytes);
        nf_dnnl_take(&b, k->bwd_data.bytes[SRC]);
        nf_dnnl_take(&b, k->bwd_data.bytes[SCRATCH]);
    }
    if (k->backward) {
        nf_dnnl_take(&b, k->src_to_weights.bytes);
        nf_dnnl_take(&b, k->dy_to_weights.bytes);
        nf_dnnl_take(&b, k->bwd_weights.bytes[WEIGHTS]);
        nf_dnnl_take(&b, k->bwd_weights.bytes[BIAS]);
        nf_dnnl_take(&b, k->bwd_weights.bytes[SCRATCH]);
    }
    k->bwd_scratch = b;
}

nf_conv_kernel *nf_onednn_conv_prepare(const nf_conv_request *r, nf_conv_sizes *sizes)
{
    const nf_conv_geom *g = &r->geom;
    if (!nf_dnnl_engine() || g->pad_mode != NF_PAD_ZEROS || r->batch < 1)
        return NULL;
    nf_conv_kernel *k = calloc(1, sizeof *k);
    if (!k)
        return NULL;
    k->bias = r->bias;
    k->backward = r->backward;
    k->input_grad = r->backward && r->input_grad;
    k->o = g->o;
    plain_mds m;
    if (dnnl_stream_create(&k->stream, nf_dnnl_engine(), dnnl_stream_default_flags) != dnnl_success || !init_mds(g, r->batch, &m) ||
        !make_conv(k, g, &m)) {
        nf_onednn_conv_release(k);
        return NULL;
    }
    size_scratch(k);
    sizes->saved_bytes = k->backward ? k->fwd.bytes[SRC] : 0;
    sizes->scratch_bytes = (k->fwd_scratch > k->bwd_scratch ? k->fwd_scratch : k->bwd_scratch) + NF_DNNL_ALIGN;
    return k;
}

int nf_onednn_conv_forward(nf_conv_kernel *k, const float *x, const float *w, const float *b, float *y, void *saved,
                           void *scratch)
{
    char *s = nf_dnnl_aligned(scratch);
    size_t at = 0;
    size_t src_at = nf_dnnl_take(&at, k->fwd.bytes[SRC]), w_at = nf_dnnl_take(&at, k->w_to_fwd.bytes);
    size_t dst_at = nf_dnnl_take(&at, k->dst_to_y.reorder ? k->fwd.bytes[DST] : 0), pad_at = nf_dnnl_take(&at, k->fwd.bytes[SCRATCH]);
    /* training keeps src (in the primitive's layout) for backward: always written to saved */
    void *src_buf = saved ? saved : s + src_at;
    const void *src = saved && !k->x_to_src.reorder ? memcpy(saved, x, k->fwd.bytes[SRC]) : nf_dnnl_moved(&k->x_to_src, x, src_buf);
    void *dst = k->dst_to_y.reorder ? (void *)(s + dst_at) : (void *)y;
    const void *buffers[NF_DNNL_SLOTS] = {src, nf_dnnl_moved(&k->w_to_fwd, w, s + w_at), b, dst, s + pad_at, NULL};
    return nf_dnnl_run_move(k->stream, &k->x_to_src, x, src_buf) && nf_dnnl_run_move(k->stream, &k->w_to_fwd, w, s + w_at) &&
           nf_dnnl_run_prim(k->stream, &k->fwd, buffers) && nf_dnnl_run_move(k->stream, &k->dst_to_y, dst, y) && dnnl_stream_wait(k->stream) == dnnl_success;
}

int nf_onednn_conv_backward(nf_conv_kernel *k, const void *saved, const float *w, const float *dy, float *dx, float *dw,
                            float *db, void *scratch)
{
    char *s = nf_dnnl_aligned(scratch);
    size_t at = 0;
    int ok = 1;
    if (k->input_grad && dx) {
        size_t dy_at = nf_dnnl_take(&at, k->dy_to_data.bytes), w_at = nf_dnnl_take(&at, k->w_to_data.bytes);
        size_t dsrc_at = nf_dnnl_take(&at, k->bwd_data.bytes[SRC]), pad_at = nf_dnnl_take(&at, k->bwd_data.bytes[SCRATCH]);
        const void *buffers[NF_DNNL_SLOTS] = {s + dsrc_at, nf_dnnl_moved(&k->w_to_data, w, s + w_at), NULL,
                                       nf_dnnl_moved(&k->dy_to_data, dy, s + dy_at), s + pad_at};
        ok = nf_dnnl_run_move(k->stream, &k->dy_to_data, dy, s + dy_at) && nf_dnnl_run_move(k->stream, &k->w_to_data, w, s + w_at) &&
             nf_dnnl_run_prim(k->stream, &k->bwd_data, buffers) && nf_dnnl_run_move(k->stream, &k->dsrc_to_dx, s + dsrc_at, dx);
    }
    size_t src_at = nf_dnnl_take(&at, k->src_to_weights.bytes), dy_at = nf_dnnl_take(&at, k->dy_to_weights.bytes);
    size_t dw_at = nf_dnnl_take(&at, k->bwd_weights.bytes[WEIGHTS]), db_at = nf_dnnl_take(&at, k->bwd_weights.bytes[BIAS]);
    size_t pad_at = nf_dnnl_take(&at, k->bwd_weights.bytes[SCRATCH]);
    const void *src = nf_dnnl_moved(&k->src_to_weights, saved, s + src_at);
    const void *buffers[NF_DNNL_SLOTS] = {src, s + dw_at, s + db_at, nf_dnnl_moved(&k->dy_to_weights, dy, s + dy_at), s + pad_at};
    ok = ok && nf_dnnl_run_move(k->stream, &k->src_to_weights, saved, s + src_at) && nf_dnnl_run_move(k->stream, &k->dy_to_weights, dy, s + dy_at) &&
         nf_dnnl_run_prim(k->stream, &k->bwd_weights, buffers) && nf_dnnl_run_move(k->stream, &k->dw_to_grad, s + dw_at, dw) &&
         dnnl_stream_wait(k->stream) == dnnl_success;
    const float *bias_grad = (const float *)(s + db_at);
    for (int64_t o = 0; ok && db && o < k->o; o++)
        db[o] += bias_grad[o];
    return ok;
}

const char *nf_onednn_conv_name(const nf_conv_kernel *k) { return k->name; }
