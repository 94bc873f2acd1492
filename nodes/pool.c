/* nodeflow — pooling: maxpool and avgpool over [C, H, W] (and the 1-D
 * variants over [C, L]) with kernel, stride, padding and ceil mode as in
 * PyTorch's MaxPool2d/AvgPool2d, and global_avgpool over every spatial
 * axis. Max pooling records the arg-max of each window in forward and
 * routes the gradient there. Average pooling leaves padding out of the
 * divisor unless include_pad is set. */
#include <float.h>
#include <math.h>
#include <string.h>

#include "nodes/op.h"

enum { KERNEL, STRIDE, PADDING, CEIL, INCLUDE_PAD };

static const nf_attr_spec pool_attrs[] = {
    [KERNEL] = {"kernel", NF_ATTR_DIMS, 0, 0, 0, NULL, "window size: 2, or 2x3 (height x width)"},
    [STRIDE] = NF_ATTR_INT_DEF("stride", 0, 0, 1 << 16, "step between windows (0: the kernel size)"),
    [PADDING] = NF_ATTR_INT_DEF("padding", 0, 0, 1 << 16, "implicit padding on every side (at most half the kernel)"),
    [CEIL] = NF_ATTR_BOOL_DEF("ceil_mode", 0, "round the output size up (windows may start in the padding)"),
    [INCLUDE_PAD] = NF_ATTR_BOOL_DEF("include_pad", 0, "avgpool: count padding in the divisor"),
};

typedef struct pgeom {
    int64_t c, h, w, oh, ow, kh, kw, sh, sw, ph, pw;
} pgeom;

/* PyTorch's pooling_output_shape for one axis. */
static int64_t pooled(int64_t in, int64_t k, int64_t s, int64_t p, int ceil_mode)
{
    int64_t span = in + 2 * p - k;
    int64_t out = (ceil_mode ? (span + s - 1) / s : span / s) + 1;
    if (ceil_mode && (out - 1) * s >= in + p)
        out--;
    return out;
}

static int make_pgeom(const double *attr, const nf_shape *k, const nf_shape *in, int is1d, pgeom *g, const char **why)
{
    g->c = in->dim[0];
    g->h = is1d ? 1 : in->dim[1];
    g->w = is1d ? in->dim[1] : in->dim[2];
    g->kh = is1d ? 1 : k->dim[0];
    g->kw = is1d ? k->dim[0] : k->rank == 2 ? k->dim[1] : k->dim[0];
    int64_t stride = (int64_t)attr[STRIDE], pad = (int64_t)attr[PADDING];
    g->sh = is1d ? 1 : stride ? stride : g->kh;
    g->sw = stride ? stride : g->kw;
    g->ph = is1d ? 0 : pad;
    g->pw = pad;
    if (2 * g->ph > g->kh || 2 * g->pw > g->kw) {
        *why = "padding must be at most half the kernel";
        return 0;
    }
    if (g->h + 2 * g->ph < g->kh || g->w + 2 * g->pw < g->kw) {
        *why = "the kernel is larger than the padded input";
        return 0;
    }
    g->oh = pooled(g->h, g->kh, g->sh, g->ph, attr[CEIL] != 0);
    g->ow = pooled(g->w, g->kw, g->sw, g->pw, attr[CEIL] != 0);
    return 1;
}

static nf_status pool_infer_common(nf_infer *ctx, int is1d, int max)
{
    const nf_shape *in = ctx->in[0];
    char s[64];
    if (in->rank != (is1d ? 2 : 3) || ctx->dims->rank < 1 || ctx->dims->rank > (is1d ? 1 : 2))
        return nf_infer_fail(ctx, NF_ERR_SHAPE, "input '%s' is %s; it needs %s per sample and a %s kernel",
                             ctx->in_name[0], nf_shape_format(in, s, sizeof s),
                             is1d ? "[channels, length]" : "[channels, height, width]", is1d ? "1-D" : "1-D or 2-D");
    pgeom g;
    const char *why = "";
    if (!make_pgeom(ctx->attr, ctx->dims, in, is1d, &g, &why))
        return nf_infer_fail(ctx, NF_ERR_SHAPE, "%s (input %s)", why, nf_shape_format(in, s, sizeof s));
    ctx->out = is1d ? (nf_shape){2, {g.c, g.ow}} : (nf_shape){3, {g.c, g.oh, g.ow}};
    if (max && g.h * g.w > (1 << 24))
        return nf_infer_fail(ctx, NF_ERR_SHAPE, "planes of more than 2^24 positions are not supported");
    if (max)
        ctx->saved_per_sample = g.c * g.oh * g.ow; /* arg-max positions (floats: exact below 2^24) */
    return NF_OK;
}

static nf_status maxpool_infer(nf_infer *ctx) { return pool_infer_common(ctx, 0, 1); }
static nf_status avgpool_infer(nf_infer *ctx) { return pool_infer_common(ctx, 0, 0); }
static nf_status maxpool1d_infer(nf_infer *ctx) { return pool_infer_common(ctx, 1, 1); }
static nf_status avgpool1d_infer(nf_infer *ctx) { return pool_infer_common(ctx, 1, 0); }

static pgeom pgeom_of(const nf_exec *e)
{
    pgeom g;
    const char *why;
    make_pgeom(e->attr, &e->node->dims, e->in_shape[0], e->in_shape[0]->rank == 2, &g, &why);
    return g;
}

/* The first NaN of window (oy, ox) of a 2x2 stride-2 pool. */
static void max_plane_window_nan(const pgeom *g, const float *x, int64_t oy, int64_t ox, float *y, float *at)
{
    for (int64_t i = 0; i < 4; i++) {
        int64_t pos = (2 * oy + i / 2) * g->w + 2 * ox + i % 2;
        if (isnan(x[pos])) {
            *y = x[pos];
            *at = (float)pos;
            return;
        }
    }
}

/* x is one plane (H, W); y and argmax are (OH, OW) */
static void max_plane(const pgeom *g, const float *x, float *y, float *argmax)
{
    for (int64_t oy = 0; oy < g->oh; oy++)
        for (int64_t ox = 0; ox < g->ow; ox++) {
            int64_t y0 = oy * g->sh - g->ph, x0 = ox * g->sw - g->pw, best_at = -1;
            float best = -INFINITY;
            for (int64_t iy = y0 < 0 ? 0 : y0; iy < y0 + g->kh && iy < g->h; iy++)
                for (int64_t ix = x0 < 0 ? 0 : x0; ix < x0 + g->kw && ix < g->w; ix++) {
                    float v = x[iy * g->w + ix];
                    if (v > best || best_at < 0 || isnan(v)) { /* NaN propagates, as in PyTorch */
                        best = v;
                        best_at = iy * g->w + ix;
                    }
                }
            y[oy * g->ow + ox] = best;
            argmax[oy * g->ow + ox] = (float)best_at;
        }
}

/* The common 2x2 window, stride 2, no padding, whole windows only;
 * selects rather than branches (the winner is data-dependent), so that
 * the row loop vectorizes. */
static void max_plane_2x2(const pgeom *g, const float *x, float *y, float *argmax)
{
    for (int64_t oy = 0; oy < g->oh; oy++) {
        const float *r0 = x + 2 * oy * g->w, *r1 = r0 + g->w;
        float *yo = y + oy * g->ow, *ao = argmax + oy * g->ow;
        float base = (float)(2 * oy * g->w), below = (float)g->w;
        int nan_seen = 0;
        for (int32_t ox = 0; ox < (int32_t)g->ow; ox++) {
            float a = r0[2 * ox], b = r0[2 * ox + 1], c = r1[2 * ox], d = r1[2 * ox + 1];
            float top = b > a ? b : a, bottom = d > c ? d : c;
            float top_at = b > a ? 1.0f : 0.0f, bottom_at = d > c ? below + 1.0f : below;
            float sum = a + b + c + d;
            nan_seen |= sum != sum;
            yo[ox] = bottom > top ? bottom : top;
            ao[ox] = base + 2.0f * (float)ox + (bottom > top ? bottom_at : top_at);
        }
        for (int64_t ox = 0; nan_seen && ox < g->ow; ox++) /* NaN wins, as in PyTorch */
            if (isnan(r0[2 * ox] + r0[2 * ox + 1] + r1[2 * ox] + r1[2 * ox + 1]))
                max_plane_window_nan(g, x, oy, ox, yo + ox, ao + ox);
    }
}

static void maxpool_forward(const nf_exec *e)
{
    pgeom g = pgeom_of(e);
    int64_t planes = e->batch * g.c, in = g.h * g.w, out = g.oh * g.ow;
    int quick = g.kh == 2 && g.kw == 2 && g.sh == 2 && g.sw == 2 && !g.ph && !g.pw && 2 * g.oh <= g.h &&
                2 * g.ow <= g.w;
    #pragma omp parallel for if (planes * in > NF_PARALLEL_MIN) schedule(static)
    for (int64_t p = 0; p < planes; p++)
        (quick ? max_plane_2x2 : max_plane)(&g, e->in[0] + p * in, e->out + p * out, e->saved + p * out);
}

static void maxpool_backward(const nf_exec *e)
{
    pgeom g = pgeom_of(e);
    int64_t planes = e->batch * g.c, in = g.h * g.w, out = g.oh * g.ow;
    if (!e->in_grad[0])
        return;
    #pragma omp parallel for if (planes * in > NF_PARALLEL_MIN) schedule(static)
    for (int64_t p = 0; p < planes; p++)
        for (int64_t i = 0; i < out; i++)
            e->in_grad[0][p * in + (int64_t)e->saved[p * out + i]] += e->out_grad[p * out + i];
}

/* The window of output (oy, ox), clipped to the input, and its divisor. */
typedef struct window {
    int64_t y0, y1, x0, x1;
    float divisor;
} window;

static window window_at(const pgeom *g, int64_t oy, int64_t ox, int include_pad)
{
    int64_t y0 = oy * g->sh - g->ph, x0 = ox * g->sw - g->pw;
    int64_t y1 = y0 + g->kh < g->h + g->ph ? y0 + g->kh : g->h + g->ph;
    int64_t x1 = x0 + g->kw < g->w + g->pw ? x0 + g->kw : g->w + g->pw;
    int64_t padded = (y1 - y0) * (x1 - x0);
    window w = {y0 < 0 ? 0 : y0, y1 < g->h ? y1 : g->h, x0 < 0 ? 0 : x0, x1 < g->w ? x1 : g->w, 0};
    w.divisor = (float)(include_pad ? padded : (w.y1 - w.y0) * (w.x1 - w.x0));
    return w;
}

static void avgpool_forward(const nf_exec *e)
{
    pgeom g = pgeom_of(e);
    int64_t planes = e->batch * g.c, in = g.h * g.w, out = g.oh * g.ow;
    int include_pad = e->attr[INCLUDE_PAD] != 0;
    #pragma omp parallel for if (planes * in > NF_PARALLEL_MIN) schedule(static)
    for (int64_t p = 0; p < planes; p++)
        for (int64_t oy = 0; oy < g.oh; oy++)
            for (int64_t ox = 0; ox < g.ow; ox++) {
                window w = window_at(&g, oy, ox, include_pad);
                float sum = 0.0f;
                for (int64_t iy = w.y0; iy < w.y1; iy++)
                    for (int64_t ix = w.x0; ix < w.x1; ix++)
                        sum += e->in[0][p * in + iy * g.w + ix];
                e->out[p * out + oy * g.ow + ox] = sum / w.divisor;
            }
}

static void avgpool_backward(const nf_exec *e)
{
    pgeom g = pgeom_of(e);
    int64_t planes = e->batch * g.c, in = g.h * g.w, out = g.oh * g.ow;
    int include_pad = e->attr[INCLUDE_PAD] != 0;
    if (!e->in_grad[0])
        return;
    #pragma omp parallel for if (planes * in > NF_PARALLEL_MIN) schedule(static)
    for (int64_t p = 0; p < planes; p++)
        for (int64_t oy = 0; oy < g.oh; oy++)
            for (int64_t ox = 0; ox < g.ow; ox++) {
                window w = window_at(&g, oy, ox, include_pad);
                float share = e->out_grad[p * out + oy * g.ow + ox] / w.divisor;
                for (int64_t iy = w.y0; iy < w.y1; iy++)
                    for (int64_t ix = w.x0; ix < w.x1; ix++)
                        e->in_grad[0][p * in + iy * g.w + ix] += share;
            }
}

static double pool_flops(const nf_node *node)
{
    int64_t k = node->dims.rank == 2 ? node->dims.dim[0] * node->dims.dim[1]
                : node->inputs[0]->shape.rank == 3 ? node->dims.dim[0] * node->dims.dim[0]
                                                     : node->dims.dim[0];
    return (double)nf_shape_size(&node->shape) * (double)k;
}

#define POOL_OP(var, nm, summary_text, infer_fn, fwd, bwd, extra_flags)                   \
    const nf_op var = {                                                                     \
        .name = nm, .summary = summary_text, .min_inputs = 1, .max_inputs = 1,              \
        .attrs = pool_attrs, .n_attrs = NF_COUNT(pool_attrs),                               \
        .flags = NF_OP_GRAD_NO_OUTPUT | (extra_flags),                                      \
        .infer = infer_fn, .forward = fwd, .backward = bwd, .flops = pool_flops,            \
    }

POOL_OP(nf_op_maxpool, "maxpool", "2-D max pooling over [channels, height, width]", maxpool_infer, maxpool_forward,
        maxpool_backward, NF_OP_GRAD_NO_INPUTS);
POOL_OP(nf_op_avgpool, "avgpool", "2-D average pooling over [channels, height, width]", avgpool_infer,
        avgpool_forward, avgpool_backward, NF_OP_GRAD_NO_INPUTS);
POOL_OP(nf_op_maxpool1d, "maxpool1d", "1-D max pooling over [channels, length]", maxpool1d_infer, maxpool_forward,
        maxpool_backward, NF_OP_GRAD_NO_INPUTS);
POOL_OP(nf_op_avgpool1d, "avgpool1d", "1-D average pooling over [channels, length]", avgpool1d_infer,
        avgpool_forward, avgpool_backward, NF_OP_GRAD_NO_INPUTS);

/* ---- global average pooling: [C, ...] -> [C] ------------------------- */

static nf_status global_infer(nf_infer *ctx)
{
    if (ctx->in[0]->rank < 2)
        return nf_infer_fail(ctx, NF_ERR_SHAPE, "input '%s' needs [channels, spatial...] per sample",
                             ctx->in_name[0]);
    ctx->out = (nf_shape){1, {ctx->in[0]->dim[0]}};
    return NF_OK;
}

static void global_forward(const nf_exec *e)
{
    int64_t planes = e->batch * e->in_shape[0]->dim[0];
    int64_t area = nf_shape_size(e->in_shape[0]) / e->in_shape[0]->dim[0];
    for (int64_t p = 0; p < planes; p++) {
        double sum = 0;
        for (int64_t i = 0; i < area; i++)
            sum += e->in[0][p * area + i];
        e->out[p] = (float)(sum / (double)area);
    }
}

static void global_backward(const nf_exec *e)
{
    int64_t planes = e->batch * e->in_shape[0]->dim[0];
    int64_t area = nf_shape_size(e->in_shape[0]) / e->in_shape[0]->dim[0];
    if (!e->in_grad[0])
        return;
    for (int64_t p = 0; p < planes; p++) {
        float share = e->out_grad[p] / (float)area;
        for (int64_t i = 0; i < area; i++)
            e->in_grad[0][p * area + i] += share;
    }
}

const nf_op nf_op_global_avgpool = {
    .name = "global_avgpool", .summary = "the mean of each channel over every spatial position: [C, ...] -> [C]",
    .min_inputs = 1, .max_inputs = 1,
    .flags = NF_OP_GRAD_NO_INPUTS | NF_OP_GRAD_NO_OUTPUT,
    .infer = global_infer, .forward = global_forward, .backward = global_backward,
    .flops = nf_flops_per_input_element,
};
