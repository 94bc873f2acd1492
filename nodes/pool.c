/* nodeflow — pooling: maxpool and avgpool over [C, H, W] (and the 1-D
 * variants over [C, L]) with kernel, stride, padding (per axis), ceil
 * mode and, for max pooling, dilation as in PyTorch's MaxPool2d/AvgPool2d,
 * global_avgpool over every spatial axis and adaptive_avgpool. Max pooling records the arg-max of each window in forward and
 * routes the gradient there. Average pooling leaves padding out of the
 * divisor unless include_pad is set. */
#include <float.h>
#include <math.h>
#include <string.h>

#include "kernels/kernels.h"
#include "nodes/op.h"

enum { KERNEL, STRIDE, PADDING, CEIL, INCLUDE_PAD, DILATION, OUTPUT, COLUMN_MAJOR };

static const char *const max_outputs[] = {"values", "indices", NULL};

static const nf_attr_spec pool_attrs[] = {
    [KERNEL] = {"kernel", NF_ATTR_DIMS, 0, 0, 0, NULL, "window size: 2, or 2x3 (height x width)"},
    [STRIDE] = NF_ATTR_INT2_DEF("stride", 0, 0, 1 << 16, "step between windows: 2, or 2x1 (0: the kernel size)"),
    [PADDING] = NF_ATTR_INT2_DEF("padding", 0, 0, 1 << 16,
                                 "implicit padding on every side: 1, or 1x0 (less than the kernel)"),
    [CEIL] = NF_ATTR_BOOL_DEF("ceil_mode", 0, "round the output size up (windows may start in the padding)"),
    [INCLUDE_PAD] = NF_ATTR_BOOL_DEF("include_pad", 0, "avgpool: count padding in the divisor"),
    [DILATION] = NF_ATTR_INT2_DEF("dilation", 1, 1, 1 << 16, "maxpool: spacing between window taps: 2, or 2x1"),
    [OUTPUT] = NF_ATTR_ENUM_DEF("output", 0, max_outputs,
                                "maxpool: the maxima, or where they are: c H W + y W + x in the sample (ONNX's "
                                "Indices; no gradient)"),
    [COLUMN_MAJOR] = NF_ATTR_BOOL_DEF("column_major", 0, "maxpool output=indices: c H W + x H + y instead"),
};

typedef nf_pool_geom pgeom;

/* PyTorch's pooling_output_shape for one axis: floor((in + 2p - d (k - 1)
 * - 1 + (ceil ? s - 1 : 0)) / s) + 1, rounding toward minus infinity, and
 * in ceil mode no window may start in the right padding. A kernel wider
 * than the padded input gives one window in ceil mode (span > -s), none
 * (0, which the caller refuses) otherwise. in <= 2^31, k <= 2^31, d <=
 * 2^16 and 2 p <= k (checked first), so nothing here can overflow. */
static int64_t pooled(int64_t in, int64_t k, int64_t d, int64_t s, int64_t p, int ceil_mode)
{
    int64_t span = in + 2 * p - d * (k - 1) - 1 + (ceil_mode ? s - 1 : 0);
    int64_t out = (span >= 0 ? span / s : -((-span + s - 1) / s)) + 1;
    if (ceil_mode && out > 0 && (out - 1) * s >= in + p)
        out--;
    return out;
}

/* Whether every window of an axis has a tap in the input: with dilation,
 * a window that starts in the left padding can step over all of it
 * (kernel 2, padding 1, dilation 2 on 1 position). Windows that start at
 * or past 0 begin inside the input (ceil mode keeps the last one there). */
static int windows_reach_input(int64_t in, int64_t k, int64_t d, int64_t s, int64_t p, int64_t out)
{
    for (int64_t o = 0; o < out && o * s < p; o++) {
        int64_t start = o * s - p, first = (-start + d - 1) / d; /* the first tap at or past 0 */
        if (first >= k || start + first * d >= in)
            return 0;
    }
    return 1;
}

/* Stride 0 (the default) is the kernel size, so strides are at least 1.
 * A 1-D pool takes the width values of stride, padding and dilation. */
static int make_pgeom(const nf_node *node, const nf_shape *k, const nf_shape *in, int is1d, pgeom *g,
                      const char **why)
{
    const double *attr = node->attr, *attr_w = node->attr_w;
    g->c = in->dim[0];
    g->h = is1d ? 1 : in->dim[1];
    g->w = is1d ? in->dim[1] : in->dim[2];
    g->kh = is1d ? 1 : k->dim[0];
    g->kw = is1d ? k->dim[0] : k->rank == 2 ? k->dim[1] : k->dim[0];
    int64_t stride_h = (int64_t)attr[STRIDE], stride_w = (int64_t)attr_w[STRIDE];
    g->sh = is1d ? 1 : stride_h ? stride_h : g->kh;
    g->sw = stride_w ? stride_w : g->kw;
    g->ph = is1d ? 0 : (int64_t)attr[PADDING];
    g->pw = (int64_t)attr_w[PADDING];
    g->dh = is1d ? 1 : (int64_t)attr[DILATION];
    g->dw = (int64_t)attr_w[DILATION];
    if ((!is1d && g->ph >= g->kh) || g->pw >= g->kw) { /* (PyTorch asks for half; ONNX for less than all) */
        *why = "padding must be smaller than the kernel";
        return 0;
    }
    g->oh = pooled(g->h, g->kh, g->dh, g->sh, g->ph, attr[CEIL] != 0);
    g->ow = pooled(g->w, g->kw, g->dw, g->sw, g->pw, attr[CEIL] != 0);
    if (g->oh < 1 || g->ow < 1) {
        *why = "the kernel is larger than the padded input (with ceil_mode=true it may be: one window)";
        return 0;
    }
    if (!windows_reach_input(g->h, g->kh, g->dh, g->sh, g->ph, g->oh) ||
        !windows_reach_input(g->w, g->kw, g->dw, g->sw, g->pw, g->ow)) {
        *why = "with this dilation a window in the padding has no tap in the input";
        return 0;
    }
    return 1;
}

/* Attributes of one kind of pooling only, refused rather than ignored:
 * include_pad on max pooling (PyTorch's MaxPool has no divisor), dilation,
 * output and column_major on average pooling (PyTorch's AvgPool has no
 * dilation); HxW values on a 1-D pool. */
static nf_status check_kind_attrs(nf_infer *ctx, int is1d, int max)
{
    uint32_t max_only = (1u << OUTPUT) | (1u << COLUMN_MAJOR);
    if (!max && (ctx->node->attr_set & max_only))
        return nf_infer_fail(ctx, NF_ERR_INVALID_ARGUMENT, "attributes 'output' and 'column_major' are for max "
                             "pooling");
    if (ctx->node->attr[COLUMN_MAJOR] != 0 && ctx->node->attr[OUTPUT] == 0)
        return nf_infer_fail(ctx, NF_ERR_INVALID_ARGUMENT, "column_major=true orders indices: it needs "
                             "output=indices");
    if (max && (ctx->node->attr_set & (1u << INCLUDE_PAD)))
        return nf_infer_fail(ctx, NF_ERR_INVALID_ARGUMENT,
                             "attribute 'include_pad' is for average pooling; max pooling has no divisor");
    if (!max && (ctx->node->attr_set & (1u << DILATION)))
        return nf_infer_fail(ctx, NF_ERR_INVALID_ARGUMENT,
                             "attribute 'dilation' is for max pooling; average pooling has none");
    return is1d ? nf_infer_one_size(ctx, "a 1-D pool") : NF_OK;
}

static nf_status pool_infer_common(nf_infer *ctx, int is1d, int max)
{
    const nf_shape *in = ctx->in[0];
    char s[64];
    if (in->rank != (is1d ? 2 : 3) || ctx->dims->rank < 1 || ctx->dims->rank > (is1d ? 1 : 2))
        return nf_infer_fail(ctx, NF_ERR_SHAPE, "input '%s' is %s; it needs %s per sample and a %s kernel",
                             ctx->in_name[0], nf_shape_format(in, s, sizeof s),
                             is1d ? "[channels, length]" : "[channels, height, width]", is1d ? "1-D" : "1-D or 2-D");
    nf_status st = check_kind_attrs(ctx, is1d, max);
    if (st != NF_OK)
        return st;
    pgeom g;
    const char *why = "";
    if (!make_pgeom(ctx->node, ctx->dims, in, is1d, &g, &why))
        return nf_infer_fail(ctx, NF_ERR_SHAPE, "%s (input %s)", why, nf_shape_format(in, s, sizeof s));
    /* with padding (and ceil_mode) an axis can grow by one: the output
     * can pass 2^31 where the input did not */
    int64_t out = nf_mul3_checked(g.c, g.oh, g.ow);
    if (out < 0 || out > NF_MAX_SAMPLE_ELEMENTS)
        return nf_infer_fail(ctx, NF_ERR_SHAPE, "its output would have more than 2^31 elements per sample");
    ctx->out = is1d ? (nf_shape){2, {g.c, g.ow}} : (nf_shape){3, {g.c, g.oh, g.ow}};
    if (max && g.h * g.w > (1 << 24))
        return nf_infer_fail(ctx, NF_ERR_SHAPE, "planes of more than 2^24 positions are not supported");
    if (max && ctx->node->attr[OUTPUT] != 0 && nf_mul3_checked(g.c, g.h, g.w) > (1 << 24))
        return nf_infer_fail(ctx, NF_ERR_SHAPE, "output=indices needs at most 2^24 input values per sample (the "
                             "largest that a float counts exactly)");
    if (max)
        ctx->saved_per_sample = out; /* arg-max positions (floats: exact below 2^24) */
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
    make_pgeom(e->node, &e->node->dims, e->in_shape[0], e->in_shape[0]->rank == 2, &g, &why);
    return g;
}

/* output=indices: the arg-max positions of plane p (of channel p mod C),
 * as positions in the sample. */
static void write_indices(const nf_exec *e, const pgeom *g, int64_t p)
{
    int64_t out = g->oh * g->ow, base = p % g->c * g->h * g->w;
    int column = e->attr[COLUMN_MAJOR] != 0;
    for (int64_t i = 0; i < out; i++) {
        int64_t at = (int64_t)e->saved[p * out + i], y = at / g->w, x = at % g->w;
        e->out[p * out + i] = (float)(base + (column ? x * g->h + y : at));
    }
}

static void maxpool_forward(const nf_exec *e)
{
    pgeom g = pgeom_of(e);
    int64_t planes = e->batch * g.c, in = g.h * g.w, out = g.oh * g.ow;
    #pragma omp parallel for if (planes * in > NF_PARALLEL_MIN) schedule(static)
    for (int64_t p = 0; p < planes; p++) {
        e->kernels->max_plane(&g, e->in[0] + p * in, e->out + p * out, e->saved + p * out);
        if (e->attr[OUTPUT] != 0)
            write_indices(e, &g, p);
    }
}

static void maxpool_backward(const nf_exec *e)
{
    pgeom g = pgeom_of(e);
    int64_t planes = e->batch * g.c, in = g.h * g.w, out = g.oh * g.ow;
    if (!e->in_grad[0] || e->attr[OUTPUT] != 0) /* indices are constant almost everywhere */
        return;
    #pragma omp parallel for if (planes * in > NF_PARALLEL_MIN) schedule(static)
    for (int64_t p = 0; p < planes; p++)
        for (int64_t i = 0; i < out; i++)
            e->in_grad[0][p * in + (int64_t)e->saved[p * out + i]] += e->out_grad[p * out + i];
}

static void avgpool_forward(const nf_exec *e)
{
    pgeom g = pgeom_of(e);
    int64_t planes = e->batch * g.c, in = g.h * g.w, out = g.oh * g.ow;
    int include_pad = e->attr[INCLUDE_PAD] != 0;
    #pragma omp parallel for if (planes * in > NF_PARALLEL_MIN) schedule(static)
    for (int64_t p = 0; p < planes; p++)
        e->kernels->avg_plane(&g, e->in[0] + p * in, e->out + p * out, include_pad);
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
        e->kernels->avg_plane_backward(&g, e->out_grad + p * out, e->in_grad[0] + p * in, include_pad);
}

/* one operation per window tap (in double: a kernel given as one size is
 * square, kh kw up to 2^62) */
static double pool_flops(const nf_node *node)
{
    const nf_shape *k = &node->dims;
    double kh = (double)k->dim[0], kw = (double)(k->rank == 2 ? k->dim[1] : k->dim[0]);
    double kk = k->rank == 2 || node->inputs[0]->shape.rank == 3 ? kh * kw : kh;
    return (double)nf_shape_size(&node->shape) * kk;
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

/* ---- adaptive average pooling: [C, H, W] -> [C, OH, OW] ----------------
 * As PyTorch's AdaptiveAvgPool2d (and 1d over [C, L]): output position i
 * of an axis of n inputs and m outputs averages inputs
 * [floor(i n / m), ceil((i + 1) n / m)). */

static const nf_attr_spec adaptive_attrs[] = {
    NF_ATTR_INT2_DEF("size", NAN, 1, 1 << 24, "output size: 7, or 7x5 (height x width); one number for [C, L]"),
};

static nf_status adaptive_infer(nf_infer *ctx)
{
    const nf_shape *in = ctx->in[0];
    char s[64];
    if (in->rank != 2 && in->rank != 3)
        return nf_infer_fail(ctx, NF_ERR_SHAPE, "input '%s' is %s; it needs [channels, height, width] or "
                             "[channels, length] per sample", ctx->in_name[0], nf_shape_format(in, s, sizeof s));
    int64_t oh = (int64_t)ctx->node->attr[0], ow = (int64_t)ctx->node->attr_w[0];
    nf_status st = in->rank == 2 ? nf_infer_one_size(ctx, "a [channels, length] input") : NF_OK;
    if (st != NF_OK)
        return st;
    int64_t out = nf_mul3_checked(in->dim[0], in->rank == 3 ? oh : 1, ow);
    if (out < 0 || out > NF_MAX_SAMPLE_ELEMENTS)
        return nf_infer_fail(ctx, NF_ERR_SHAPE, "its output would have more than 2^31 elements per sample");
    ctx->out = in->rank == 3 ? (nf_shape){3, {in->dim[0], oh, ow}} : (nf_shape){2, {in->dim[0], ow}};
    return NF_OK;
}

/* The input range [*lo, *hi) of output i of m over n inputs. */
static void adaptive_range(int64_t i, int64_t n, int64_t m, int64_t *lo, int64_t *hi)
{
    *lo = i * n / m;
    *hi = ((i + 1) * n + m - 1) / m;
}

/* Plane sizes: h, w in and oh, ow out (1-D: h = oh = 1). */
static void adaptive_sizes(const nf_exec *e, int64_t *h, int64_t *w, int64_t *oh, int64_t *ow)
{
    int two = e->in_shape[0]->rank == 3;
    *h = two ? e->in_shape[0]->dim[1] : 1;
    *w = e->in_shape[0]->dim[two ? 2 : 1];
    *oh = two ? e->out_shape->dim[1] : 1;
    *ow = e->out_shape->dim[two ? 2 : 1];
}

static void adaptive_move(const nf_exec *e, int backward)
{
    int64_t h, w, oh, ow;
    adaptive_sizes(e, &h, &w, &oh, &ow);
    int64_t planes = e->batch * e->in_shape[0]->dim[0];
    #pragma omp parallel for if (planes * h * w > NF_PARALLEL_MIN) schedule(static)
    for (int64_t p = 0; p < planes; p++)
        for (int64_t oy = 0; oy < oh; oy++)
            for (int64_t ox = 0; ox < ow; ox++) {
                int64_t y0, y1, x0, x1;
                adaptive_range(oy, h, oh, &y0, &y1);
                adaptive_range(ox, w, ow, &x0, &x1);
                double count = (double)((y1 - y0) * (x1 - x0));
                if (backward) {
                    float share = (float)(e->out_grad[(p * oh + oy) * ow + ox] / count);
                    for (int64_t iy = y0; iy < y1; iy++)
                        for (int64_t ix = x0; ix < x1; ix++)
                            e->in_grad[0][(p * h + iy) * w + ix] += share;
                    continue;
                }
                double sum = 0.0;
                for (int64_t iy = y0; iy < y1; iy++)
                    for (int64_t ix = x0; ix < x1; ix++)
                        sum += e->in[0][(p * h + iy) * w + ix];
                e->out[(p * oh + oy) * ow + ox] = (float)(sum / count);
            }
}

static void adaptive_forward(const nf_exec *e) { adaptive_move(e, 0); }

static void adaptive_backward(const nf_exec *e)
{
    if (e->in_grad[0])
        adaptive_move(e, 1);
}

const nf_op nf_op_adaptive_avgpool = {
    .name = "adaptive_avgpool", .summary = "average pooling to a given output size (PyTorch's AdaptiveAvgPool2d/1d)",
    .min_inputs = 1, .max_inputs = 1, .attrs = adaptive_attrs, .n_attrs = NF_COUNT(adaptive_attrs),
    .flags = NF_OP_GRAD_NO_INPUTS | NF_OP_GRAD_NO_OUTPUT,
    .infer = adaptive_infer, .forward = adaptive_forward, .backward = adaptive_backward,
    .flops = nf_flops_per_input_element,
};
