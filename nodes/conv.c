/* nodeflow — convolutions: conv2d over NCHW and conv1d over NCW, lowered
 * to OpenBLAS sgemm through im2col, one sample per thread.
 *
 * For sample n and group g (weights W [O, C/G, kh, kw] as in PyTorch):
 *   cols = im2col(x_n)                     [C/G kh kw, OH OW]
 *   y_n  = W_g cols + b                    [O/G, OH OW]
 * backward:
 *   dW_g += dy_n cols^T                    (per-thread sums, then added in thread order)
 *   dx_n += col2im(W_g^T dy_n)
 * A 1x1 convolution with stride 1 and no padding uses x_n as cols. */
#include <math.h>
#include <omp.h>
#include <string.h>

#include <cblas.h>

#include "engine/internal.h"

enum { OUT, KERNEL, STRIDE, PADDING, PAD_TOP, PAD_BOTTOM, PAD_LEFT, PAD_RIGHT, SAME, DILATION, GROUPS, BIAS,
       WEIGHT_INIT, BIAS_INIT };

static const nf_attr_spec conv2d_attrs[] = {
    [OUT] = NF_ATTR_REQUIRED_INT("out", 1, 1 << 20, "output channels"),
    [KERNEL] = {"kernel", NF_ATTR_DIMS, 0, 0, 0, NULL, "kernel size: 3, or 3x5 (height x width)"},
    [STRIDE] = NF_ATTR_INT_DEF("stride", 1, 1, 1 << 16, "step between windows"),
    [PADDING] = NF_ATTR_INT_DEF("padding", 0, 0, 1 << 16, "zeros added on every side"),
    [PAD_TOP] = NF_ATTR_INT_DEF("pad_top", -1, -1, 1 << 16, "zeros above (-1: padding)"),
    [PAD_BOTTOM] = NF_ATTR_INT_DEF("pad_bottom", -1, -1, 1 << 16, "zeros below (-1: padding)"),
    [PAD_LEFT] = NF_ATTR_INT_DEF("pad_left", -1, -1, 1 << 16, "zeros on the left (-1: padding)"),
    [PAD_RIGHT] = NF_ATTR_INT_DEF("pad_right", -1, -1, 1 << 16, "zeros on the right (-1: padding)"),
    [SAME] = NF_ATTR_BOOL_DEF("same", 0, "pad so that the output has the input's size (stride 1)"),
    [DILATION] = NF_ATTR_INT_DEF("dilation", 1, 1, 1 << 16, "spacing between kernel taps"),
    [GROUPS] = NF_ATTR_INT_DEF("groups", 1, 1, 1 << 20, "channel groups (= channels: depthwise)"),
    [BIAS] = NF_ATTR_BOOL_DEF("bias", 1, "add a learned bias per output channel"),
    [WEIGHT_INIT] = NF_ATTR_ENUM_DEF("weight_init", 0, nf_init_names, "initialisation of the weight"),
    [BIAS_INIT] = NF_ATTR_ENUM_DEF("bias_init", 0, nf_init_names, "initialisation of the bias"),
};

typedef struct geom {
    int64_t c, h, w;          /* input per sample */
    int64_t o, oh, ow;        /* output per sample */
    int64_t kh, kw, stride, dil, groups;
    int64_t pt, pb, pl, pr;   /* padding per side */
    int64_t ckk, hw;          /* rows of cols per group (C/G kh kw), output positions */
    int direct;               /* 1x1, stride 1, no padding: cols = x */
} geom;

static int64_t side(const double *attr, int which)
{
    return attr[which] >= 0 ? (int64_t)attr[which] : (int64_t)attr[PADDING];
}

/* The geometry of a node, from its attributes and input shape; `is1d`
 * reads [C, L] as [C, 1, L]. Returns 0 and a reason when it does not fit. */
static int make_geom(const double *attr, const nf_shape *kernel, const nf_shape *in, int is1d, geom *g,
                     const char **why)
{
    memset(g, 0, sizeof *g);
    g->c = in->dim[0];
    g->h = is1d ? 1 : in->dim[1];
    g->w = is1d ? in->dim[1] : in->dim[2];
    g->o = (int64_t)attr[OUT];
    g->kh = is1d ? 1 : kernel->dim[0];
    g->kw = is1d ? kernel->dim[0] : kernel->rank == 2 ? kernel->dim[1] : kernel->dim[0];
    g->stride = (int64_t)attr[STRIDE];
    g->dil = (int64_t)attr[DILATION];
    g->groups = (int64_t)attr[GROUPS];
    if (attr[SAME] != 0) {
        if (g->stride != 1) {
            *why = "same padding needs stride 1";
            return 0;
        }
        int64_t th = g->dil * (g->kh - 1), tw = g->dil * (g->kw - 1);
        g->pt = th / 2, g->pb = th - th / 2, g->pl = tw / 2, g->pr = tw - tw / 2;
    } else {
        g->pt = is1d ? 0 : side(attr, PAD_TOP), g->pb = is1d ? 0 : side(attr, PAD_BOTTOM);
        g->pl = side(attr, PAD_LEFT), g->pr = side(attr, PAD_RIGHT);
    }
    if (g->c % g->groups || g->o % g->groups) {
        *why = "groups must divide both the input and the output channels";
        return 0;
    }
    int64_t span_h = g->dil * (g->kh - 1) + 1, span_w = g->dil * (g->kw - 1) + 1;
    if (g->h + g->pt + g->pb < span_h || g->w + g->pl + g->pr < span_w) {
        *why = "the kernel is larger than the padded input";
        return 0;
    }
    g->oh = (g->h + g->pt + g->pb - span_h) / g->stride + 1;
    g->ow = (g->w + g->pl + g->pr - span_w) / g->stride + 1;
    g->ckk = g->c / g->groups * g->kh * g->kw;
    g->hw = g->oh * g->ow;
    g->direct = g->kh == 1 && g->kw == 1 && g->stride == 1 && !g->pt && !g->pb && !g->pl && !g->pr;
    return 1;
}

static nf_status conv_infer_common(nf_infer *ctx, int is1d)
{
    const nf_shape *in = ctx->in[0], *kernel = ctx->dims;
    char s[64];
    if (in->rank != (is1d ? 2 : 3))
        return nf_infer_fail(ctx, NF_ERR_SHAPE, "input '%s' is %s; %s needs %s per sample", ctx->in_name[0],
                             nf_shape_format(in, s, sizeof s), is1d ? "conv1d" : "conv2d",
                             is1d ? "[channels, length]" : "[channels, height, width]");
    if (kernel->rank > (is1d ? 1 : 2))
        return nf_infer_fail(ctx, NF_ERR_SHAPE, "kernel must be %s", is1d ? "one size" : "3 or 3x5");
    geom g;
    const char *why = "";
    if (!make_geom(ctx->attr, kernel, in, is1d, &g, &why))
        return nf_infer_fail(ctx, NF_ERR_SHAPE, "%s (input %s)", why, nf_shape_format(in, s, sizeof s));
    ctx->out = is1d ? (nf_shape){2, {g.o, g.ow}} : (nf_shape){3, {g.o, g.oh, g.ow}};
    int64_t fan_in = g.ckk, fan_out = g.o / g.groups * g.kh * g.kw;
    nf_shape wshape = is1d ? (nf_shape){3, {g.o, g.c / g.groups, g.kw}}
                           : (nf_shape){4, {g.o, g.c / g.groups, g.kh, g.kw}};
    ctx->params[0] = (nf_param_spec){"weight", wshape, (nf_init)ctx->attr[WEIGHT_INIT], 0, fan_in, fan_out, 0};
    ctx->n_params = 1;
    if (ctx->attr[BIAS] != 0) {
        ctx->params[1] = (nf_param_spec){"bias", {1, {g.o}}, (nf_init)ctx->attr[BIAS_INIT], 0, fan_in, fan_out, 0};
        ctx->n_params = 2;
    }
    /* per thread: cols and their gradient, and partial dW and db */
    ctx->workspace = 2 * g.ckk * g.hw + g.o * g.ckk + g.o + 64;
    return NF_OK;
}

static nf_status conv2d_infer(nf_infer *ctx) { return conv_infer_common(ctx, 0); }
static nf_status conv1d_infer(nf_infer *ctx) { return conv_infer_common(ctx, 1); }

static geom geom_of(const nf_exec *e)
{
    geom g;
    const char *why;
    make_geom(e->attr, &e->node->dims, e->in_shape[0], e->in_shape[0]->rank == 2, &g, &why);
    return g;
}

/* The output columns ox whose input column ox stride + ix0 lies in
 * [0, w): [*lo, *hi). */
static void valid_columns(const geom *g, int64_t ix0, int64_t *lo, int64_t *hi)
{
    *lo = ix0 >= 0 ? 0 : (-ix0 + g->stride - 1) / g->stride;
    *hi = g->w - ix0 <= 0 ? 0 : (g->w - ix0 + g->stride - 1) / g->stride;
    if (*hi > g->ow)
        *hi = g->ow;
    if (*lo > *hi)
        *lo = *hi;
}

/* x is one group's channels (C/G, H, W); cols is (C/G kh kw, OH OW) */
static void im2col(const geom *g, const float *x, float *cols)
{
    for (int64_t c = 0; c < g->c / g->groups; c++)
        for (int64_t ki = 0; ki < g->kh; ki++)
            for (int64_t kj = 0; kj < g->kw; kj++) {
                float *row = cols + ((c * g->kh + ki) * g->kw + kj) * g->hw;
                int64_t ix0 = kj * g->dil - g->pl, lo, hi;
                valid_columns(g, ix0, &lo, &hi);
                for (int64_t oy = 0; oy < g->oh; oy++) {
                    int64_t iy = oy * g->stride - g->pt + ki * g->dil;
                    float *out = row + oy * g->ow;
                    if (iy < 0 || iy >= g->h) {
                        memset(out, 0, (size_t)g->ow * sizeof(float));
                        continue;
                    }
                    const float *in = x + (c * g->h + iy) * g->w;
                    for (int64_t ox = 0; ox < lo; ox++)
                        out[ox] = 0.0f;
                    if (g->stride == 1)
                        memcpy(out + lo, in + lo + ix0, (size_t)(hi - lo) * sizeof(float));
                    else
                        for (int64_t ox = lo; ox < hi; ox++)
                            out[ox] = in[ox * g->stride + ix0];
                    for (int64_t ox = hi; ox < g->ow; ox++)
                        out[ox] = 0.0f;
                }
            }
}

/* dx += col2im(dcols): every column entry goes back to its input pixel */
static void col2im_add(const geom *g, const float *dcols, float *dx)
{
    for (int64_t c = 0; c < g->c / g->groups; c++)
        for (int64_t ki = 0; ki < g->kh; ki++)
            for (int64_t kj = 0; kj < g->kw; kj++) {
                const float *row = dcols + ((c * g->kh + ki) * g->kw + kj) * g->hw;
                int64_t ix0 = kj * g->dil - g->pl, lo, hi;
                valid_columns(g, ix0, &lo, &hi);
                for (int64_t oy = 0; oy < g->oh; oy++) {
                    int64_t iy = oy * g->stride - g->pt + ki * g->dil;
                    if (iy < 0 || iy >= g->h)
                        continue;
                    float *out = dx + (c * g->h + iy) * g->w;
                    const float *in = row + oy * g->ow;
                    for (int64_t ox = lo; ox < hi; ox++)
                        out[ox * g->stride + ix0] += in[ox];
                }
            }
}

static void forward_sample(const nf_exec *e, const geom *g, int64_t n, float *cols)
{
    const float *x = e->in[0] + n * g->c * g->h * g->w;
    float *y = e->out + n * g->o * g->hw;
    const float *bias = e->node->n_params > 1 ? e->param[1] : NULL;
    int64_t og = g->o / g->groups, cg = g->c / g->groups;
    for (int64_t o = 0; o < g->o; o++)
        for (int64_t i = 0; i < g->hw; i++)
            y[o * g->hw + i] = bias ? bias[o] : 0.0f;
    for (int64_t grp = 0; grp < g->groups; grp++) {
        const float *xg = x + grp * cg * g->h * g->w;
        const float *c = g->direct ? xg : cols;
        if (!g->direct)
            im2col(g, xg, cols);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)og, (int)g->hw, (int)g->ckk, 1.0f,
                    e->param[0] + grp * og * g->ckk, (int)g->ckk, c, (int)g->hw, 1.0f, y + grp * og * g->hw,
                    (int)g->hw);
    }
}

/* Samples are split over threads when there are enough of them (each
 * sgemm then runs on one thread); otherwise one sample at a time, with
 * OpenBLAS's threads inside each sgemm. */
static int by_sample(const nf_exec *e) { return e->batch >= e->threads && e->threads > 1; }

static void conv_forward(const nf_exec *e)
{
    geom g = geom_of(e);
    int64_t slice = e->node->workspace;
    if (!by_sample(e)) {
        for (int64_t n = 0; n < e->batch; n++)
            forward_sample(e, &g, n, e->workspace);
        return;
    }
    #pragma omp parallel num_threads(e->threads)
    {
        int64_t a, b;
        nf_thread_range(e->batch, &a, &b);
        float *cols = e->workspace + omp_get_thread_num() * slice;
        for (int64_t n = a; n < b; n++)
            forward_sample(e, &g, n, cols);
    }
}

/* One sample's share of dW (into dw), db (into db) and dx. */
static void backward_sample(const nf_exec *e, const geom *g, int64_t n, float *cols, float *dcols, float *dw,
                            float *db)
{
    const float *x = e->in[0] + n * g->c * g->h * g->w;
    const float *dy = e->out_grad + n * g->o * g->hw;
    int64_t og = g->o / g->groups, cg = g->c / g->groups;
    if (db)
        for (int64_t o = 0; o < g->o; o++) {
            float sum = 0.0f;
            for (int64_t i = 0; i < g->hw; i++)
                sum += dy[o * g->hw + i];
            db[o] += sum;
        }
    for (int64_t grp = 0; grp < g->groups; grp++) {
        const float *xg = x + grp * cg * g->h * g->w, *dyg = dy + grp * og * g->hw;
        const float *c = g->direct ? xg : cols;
        if (!g->direct)
            im2col(g, xg, cols);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)og, (int)g->ckk, (int)g->hw, 1.0f, dyg,
                    (int)g->hw, c, (int)g->hw, 1.0f, dw + grp * og * g->ckk, (int)g->ckk);
        if (!e->in_grad[0])
            continue;
        float *dxg = e->in_grad[0] + n * g->c * g->h * g->w + grp * cg * g->h * g->w;
        float *target = g->direct ? dxg : dcols;
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)g->ckk, (int)g->hw, (int)og, 1.0f,
                    e->param[0] + grp * og * g->ckk, (int)g->ckk, dyg, (int)g->hw, g->direct ? 1.0f : 0.0f, target,
                    (int)g->hw);
        if (!g->direct)
            col2im_add(g, dcols, dxg);
    }
}

static void conv_backward(const nf_exec *e)
{
    geom g = geom_of(e);
    int64_t slice = e->node->workspace, cols_n = g.ckk * g.hw, dw_n = g.o * g.ckk;
    float *db = e->node->n_params > 1 ? e->param_grad[1] : NULL;
    if (!by_sample(e)) {
        for (int64_t n = 0; n < e->batch; n++)
            backward_sample(e, &g, n, e->workspace, e->workspace + cols_n, e->param_grad[0], db);
        return;
    }
    int threads = e->threads;
    #pragma omp parallel num_threads(threads)
    {
        int64_t a, b;
        nf_thread_range(e->batch, &a, &b);
        float *ws = e->workspace + omp_get_thread_num() * slice;
        float *dw = ws + 2 * cols_n, *dbp = dw + dw_n;
        memset(dw, 0, (size_t)(dw_n + g.o) * sizeof(float));
        for (int64_t n = a; n < b; n++)
            backward_sample(e, &g, n, ws, ws + cols_n, dw, db ? dbp : NULL);
    }
    /* add the per-thread sums in thread order: the same bits every run */
    for (int t = 0; t < threads; t++) {
        const float *dw = e->workspace + t * slice + 2 * cols_n;
        for (int64_t i = 0; i < dw_n; i++)
            e->param_grad[0][i] += dw[i];
        for (int64_t o = 0; db && o < g.o; o++)
            db[o] += dw[dw_n + o];
    }
}

/* 2 (C/G kh kw) multiply-adds per output element, plus the bias */
static double conv_flops(const nf_node *node)
{
    int64_t kk = node->dims.rank == 2 ? node->dims.dim[0] * node->dims.dim[1]
                 : node->inputs[0]->shape.rank == 3 ? node->dims.dim[0] * node->dims.dim[0]
                                                      : node->dims.dim[0];
    double per_out = 2.0 * (double)(node->inputs[0]->shape.dim[0] / (int64_t)node->attr[GROUPS] * kk);
    return (double)nf_shape_size(&node->shape) * (per_out + (node->attr[BIAS] != 0));
}

const nf_op nf_op_conv2d = {
    .name = "conv2d", .summary = "2-D convolution over [channels, height, width] (PyTorch's Conv2d)",
    .min_inputs = 1, .max_inputs = 1,
    .attrs = conv2d_attrs, .n_attrs = NF_COUNT(conv2d_attrs),
    .flags = NF_OP_GRAD_NO_OUTPUT,
    .infer = conv2d_infer, .forward = conv_forward, .backward = conv_backward, .flops = conv_flops,
};

const nf_op nf_op_conv1d = {
    .name = "conv1d", .summary = "1-D convolution over [channels, length] (PyTorch's Conv1d; pad_left, pad_right)",
    .min_inputs = 1, .max_inputs = 1,
    .attrs = conv2d_attrs, .n_attrs = NF_COUNT(conv2d_attrs),
    .flags = NF_OP_GRAD_NO_OUTPUT,
    .infer = conv1d_infer, .forward = conv_forward, .backward = conv_backward, .flops = conv_flops,
};
