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
enum {
    SRC = NF_DNNL_SRC, WEIGHTS = NF_DNNL_WEIGHTS, BIAS = NF_DNNL_BIAS, DST = NF_DNNL_DST, SCRATCH = NF_DNNL_SCRATCH
};

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

/* A convolution's strides, dilations (oneDNN counts the gaps: d - 1) and
 * padding before and after, per axis. */
typedef struct conv_dims {
    dnnl_dims_t strides, dilates, pad_l, pad_r;
} conv_dims;

/* Forward, with the moves of x, W and y. */
static int make_forward(nf_conv_kernel *k, const plain_mds *m, const conv_dims *d, dnnl_primitive_desc_t *fpd)
{
    static const dnnl_query_t q[NF_DNNL_SLOTS] = {dnnl_query_src_md, dnnl_query_weights_md, dnnl_query_weights_md,
                                                  dnnl_query_dst_md, dnnl_query_scratchpad_md};
    int args[NF_DNNL_SLOTS] = {DNNL_ARG_SRC, DNNL_ARG_WEIGHTS, k->bias ? DNNL_ARG_BIAS : 0, DNNL_ARG_DST,
                               DNNL_ARG_SCRATCHPAD};
    dnnl_convolution_desc_t desc;
    dnnl_prop_kind_t kind = k->backward ? dnnl_forward_training : dnnl_forward_inference;
    return dnnl_dilated_convolution_forward_desc_init(&desc, kind, dnnl_convolution_direct, &m->any_x, &m->any_w,
                                                      k->bias ? &m->any_b : NULL, &m->any_y, d->strides,
                                                      d->dilates, d->pad_l, d->pad_r) == dnnl_success &&
           nf_dnnl_make_prim(&k->fwd, &desc, NULL, args, q, fpd, k->name, sizeof k->name) &&
           nf_dnnl_make_move(&k->x_to_src, &m->x, &k->fwd.md[SRC], 0) &&
           nf_dnnl_make_move(&k->w_to_fwd, &m->w, &k->fwd.md[WEIGHTS], 0) &&
           nf_dnnl_make_move(&k->dst_to_y, &k->fwd.md[DST], &m->y, 0);
}

/* Backward-data (slots: SRC the input's gradient, DST the output's), with
 * the moves of dy and W in and dx out (added). */
static int make_backward_data(nf_conv_kernel *k, const plain_mds *m, const conv_dims *d, dnnl_primitive_desc_t fpd)
{
    static const dnnl_query_t q[NF_DNNL_SLOTS] = {dnnl_query_diff_src_md, dnnl_query_weights_md, 0,
                                                  dnnl_query_diff_dst_md, dnnl_query_scratchpad_md};
    static const int args[NF_DNNL_SLOTS] = {DNNL_ARG_DIFF_SRC, DNNL_ARG_WEIGHTS, 0, DNNL_ARG_DIFF_DST,
                                            DNNL_ARG_SCRATCHPAD};
    dnnl_convolution_desc_t desc;
    return dnnl_dilated_convolution_backward_data_desc_init(&desc, dnnl_convolution_direct, &m->any_x, &m->any_w,
                                                            &m->any_y, d->strides, d->dilates, d->pad_l,
                                                            d->pad_r) == dnnl_success &&
           nf_dnnl_make_prim(&k->bwd_data, &desc, fpd, args, q, NULL, k->name, sizeof k->name) &&
           nf_dnnl_make_move(&k->dy_to_data, &m->y, &k->bwd_data.md[DST], 0) &&
           nf_dnnl_make_move(&k->w_to_data, &m->w, &k->bwd_data.md[WEIGHTS], 0) &&
           nf_dnnl_make_move(&k->dsrc_to_dx, &k->bwd_data.md[SRC], &m->x, 1);
}

/* Backward-weights (the bias's gradient asked for in the plain layout),
 * with the moves of the kept source and dy in and dW out (added). */
static int make_backward_weights(nf_conv_kernel *k, const plain_mds *m, const conv_dims *d,
                                 dnnl_primitive_desc_t fpd)
{
    static const dnnl_query_t q[NF_DNNL_SLOTS] = {dnnl_query_src_md, dnnl_query_diff_weights_md,
                                                  dnnl_query_diff_weights_md, dnnl_query_diff_dst_md,
                                                  dnnl_query_scratchpad_md};
    int args[NF_DNNL_SLOTS] = {DNNL_ARG_SRC, DNNL_ARG_DIFF_WEIGHTS, k->bias ? DNNL_ARG_DIFF_BIAS : 0,
                               DNNL_ARG_DIFF_DST, DNNL_ARG_SCRATCHPAD};
    dnnl_convolution_desc_t desc;
    return dnnl_dilated_convolution_backward_weights_desc_init(&desc, dnnl_convolution_direct, &m->any_x,
                                                               &m->any_w, k->bias ? &m->b : NULL, &m->any_y,
                                                               d->strides, d->dilates, d->pad_l,
                                                               d->pad_r) == dnnl_success &&
           nf_dnnl_make_prim(&k->bwd_weights, &desc, fpd, args, q, NULL, k->name, sizeof k->name) &&
           nf_dnnl_make_move(&k->src_to_weights, &k->fwd.md[SRC], &k->bwd_weights.md[SRC], 0) &&
           nf_dnnl_make_move(&k->dy_to_weights, &m->y, &k->bwd_weights.md[DST], 0) &&
           nf_dnnl_make_move(&k->dw_to_grad, &k->bwd_weights.md[WEIGHTS], &m->w, 1);
}

/* The primitives the request needs (the backward ones hinted by the
 * forward one) and the moves around them. */
static int make_conv(nf_conv_kernel *k, const nf_conv_geom *g, const plain_mds *m)
{
    conv_dims d = {{g->sh, g->sw}, {g->dh - 1, g->dw - 1}, {g->pt, g->pl}, {g->pb, g->pr}};
    dnnl_primitive_desc_t fpd = NULL;
    int ok = make_forward(k, m, &d, &fpd) && (!k->input_grad || make_backward_data(k, m, &d, fpd)) &&
             (!k->backward || make_backward_weights(k, m, &d, fpd));
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
    if (dnnl_stream_create(&k->stream, nf_dnnl_engine(), dnnl_stream_default_flags) != dnnl_success ||
        !init_mds(g, r->batch, &m) || !make_conv(k, g, &m)) {
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
    dnnl_stream_t st = k->stream;
    char *s = nf_dnnl_aligned(scratch);
    size_t at = 0;
    char *src_tmp = s + nf_dnnl_take(&at, k->fwd.bytes[SRC]);
    char *w_tmp = s + nf_dnnl_take(&at, k->w_to_fwd.bytes);
    char *dst_tmp = s + nf_dnnl_take(&at, k->dst_to_y.reorder ? k->fwd.bytes[DST] : 0);
    char *pad = s + nf_dnnl_take(&at, k->fwd.bytes[SCRATCH]);
    /* training keeps the source, in the primitive's layout, in saved */
    void *src_buf = saved ? saved : src_tmp;
    const void *src = saved && !k->x_to_src.reorder ? memcpy(saved, x, k->fwd.bytes[SRC])
                                                    : nf_dnnl_moved(&k->x_to_src, x, src_buf);
    void *dst = k->dst_to_y.reorder ? (void *)dst_tmp : (void *)y;
    const void *buffers[NF_DNNL_SLOTS] = {src, nf_dnnl_moved(&k->w_to_fwd, w, w_tmp), b, dst, pad, NULL};
    return nf_dnnl_run_move(st, &k->x_to_src, x, src_buf) && nf_dnnl_run_move(st, &k->w_to_fwd, w, w_tmp) &&
           nf_dnnl_run_prim(st, &k->fwd, buffers) && nf_dnnl_run_move(st, &k->dst_to_y, dst, y) &&
           dnnl_stream_wait(st) == dnnl_success;
}

/* dx += the input's gradient, through bwd-data into the scratch area
 * from *at on. */
static int backward_data(nf_conv_kernel *k, const float *w, const float *dy, float *dx, char *s, size_t *at)
{
    dnnl_stream_t st = k->stream;
    char *dy_tmp = s + nf_dnnl_take(at, k->dy_to_data.bytes), *w_tmp = s + nf_dnnl_take(at, k->w_to_data.bytes);
    char *dsrc = s + nf_dnnl_take(at, k->bwd_data.bytes[SRC]), *pad = s + nf_dnnl_take(at, k->bwd_data.bytes[SCRATCH]);
    const void *buffers[NF_DNNL_SLOTS] = {dsrc, nf_dnnl_moved(&k->w_to_data, w, w_tmp), NULL,
                                          nf_dnnl_moved(&k->dy_to_data, dy, dy_tmp), pad, NULL};
    return nf_dnnl_run_move(st, &k->dy_to_data, dy, dy_tmp) && nf_dnnl_run_move(st, &k->w_to_data, w, w_tmp) &&
           nf_dnnl_run_prim(st, &k->bwd_data, buffers) && nf_dnnl_run_move(st, &k->dsrc_to_dx, dsrc, dx);
}

/* dw += and db += the weights' and bias's gradients, through bwd-weights
 * into the scratch area from *at on. */
static int backward_weights(nf_conv_kernel *k, const void *saved, const float *dy, float *dw, float *db, char *s,
                            size_t *at)
{
    dnnl_stream_t st = k->stream;
    char *src_tmp = s + nf_dnnl_take(at, k->src_to_weights.bytes);
    char *dy_tmp = s + nf_dnnl_take(at, k->dy_to_weights.bytes);
    char *dw_tmp = s + nf_dnnl_take(at, k->bwd_weights.bytes[WEIGHTS]);
    float *db_tmp = (float *)(s + nf_dnnl_take(at, k->bwd_weights.bytes[BIAS]));
    char *pad = s + nf_dnnl_take(at, k->bwd_weights.bytes[SCRATCH]);
    const void *buffers[NF_DNNL_SLOTS] = {nf_dnnl_moved(&k->src_to_weights, saved, src_tmp), dw_tmp, db_tmp,
                                          nf_dnnl_moved(&k->dy_to_weights, dy, dy_tmp), pad, NULL};
    int ok = nf_dnnl_run_move(st, &k->src_to_weights, saved, src_tmp) &&
             nf_dnnl_run_move(st, &k->dy_to_weights, dy, dy_tmp) && nf_dnnl_run_prim(st, &k->bwd_weights, buffers) &&
             nf_dnnl_run_move(st, &k->dw_to_grad, dw_tmp, dw) && dnnl_stream_wait(st) == dnnl_success;
    for (int64_t o = 0; ok && db && o < k->o; o++)
        db[o] += db_tmp[o];
    return ok;
}

int nf_onednn_conv_backward(nf_conv_kernel *k, const void *saved, const float *w, const float *dy, float *dx, float *dw,
                            float *db, void *scratch)
{
    char *s = nf_dnnl_aligned(scratch);
    size_t at = 0;
    if (k->input_grad && dx && !backward_data(k, w, dy, dx, s, &at))
        return 0;
    return backward_weights(k, saved, dy, dw, db, s, &at);
}

const char *nf_onednn_conv_name(const nf_conv_kernel *k) { return k->name; }
