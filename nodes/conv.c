/* nodeflow — convolutions: conv2d over NCHW and conv1d over NCW, lowered
 * to OpenBLAS sgemm through im2col over a chunk of samples at a time, so
 * that each product is large (one GEMM per chunk and group, threaded
 * inside OpenBLAS):
 *
 * For a chunk of S samples and group g (weights W [O, C/G, kh, kw] as in
 * PyTorch), the columns of sample s sit side by side:
 *   cols = [im2col(x_1) ... im2col(x_S)]   [C/G kh kw, S OH OW]
 *   Y    = W_g cols                        [O/G, S OH OW], then + b into NCHW
 * backward, with dY gathered the same way from NCHW:
 *   dW_g += dY cols^T
 *   dcols = W_g^T dY;  dx_s += col2im(dcols of sample s)
 * A chunk holds as many samples as fit its size in columns (below). In
 * training the columns of the whole batch are kept from forward, so that
 * backward neither rebuilds them nor reads x. */
#include <math.h>
#include <string.h>

#include <omp.h>

#include "kernels/kernels.h"
#include "nodes/op.h"

/* Columns per chunk. A product with few output channels does little work
 * per column float (2 O/G flops), so its columns should still be in the
 * core's L2 cache when sgemm reads them: 256 KB. One with many does enough
 * work per float that a large GEMM, threaded inside OpenBLAS, wins: 16 MB. */
#define CACHED_CHUNK_FLOATS ((int64_t)1 << 16)
#define LARGE_CHUNK_FLOATS ((int64_t)4 << 20)
#define FEW_OUTPUTS 32
/* Columns this short (C/G kh kw) make a product whose every column float
 * is used a few times only, however many outputs: small, as above. */
#define SHORT_COLUMNS 32

enum { OUT, KERNEL, STRIDE, PADDING, PAD_TOP, PAD_BOTTOM, PAD_LEFT, PAD_RIGHT, SAME, DILATION, GROUPS, BIAS,
       WEIGHT_INIT, BIAS_INIT, PADDING_MODE };

/* As PyTorch's padding_mode: what the padding holds. */
static const char *const padding_modes[] = {"zeros", "reflect", "replicate", "circular", NULL};

static const nf_attr_spec conv2d_attrs[] = {
    [OUT] = NF_ATTR_REQUIRED_INT("out", 1, 1 << 20, "output channels"),
    [KERNEL] = {"kernel", NF_ATTR_DIMS, 0, 0, 0, NULL, "kernel size: 3, or 3x5 (height x width)"},
    [STRIDE] = NF_ATTR_INT2_DEF("stride", 1, 1, 1 << 16, "step between windows: 2, or 2x1 (height x width)"),
    [PADDING] = NF_ATTR_INT2_DEF("padding", 0, 0, 1 << 16, "padding on every side: 1, or 1x0 (height x width)"),
    [PAD_TOP] = NF_ATTR_INT_DEF("pad_top", -1, -1, 1 << 16, "zeros above (-1: padding)"),
    [PAD_BOTTOM] = NF_ATTR_INT_DEF("pad_bottom", -1, -1, 1 << 16, "zeros below (-1: padding)"),
    [PAD_LEFT] = NF_ATTR_INT_DEF("pad_left", -1, -1, 1 << 16, "zeros on the left (-1: padding)"),
    [PAD_RIGHT] = NF_ATTR_INT_DEF("pad_right", -1, -1, 1 << 16, "zeros on the right (-1: padding)"),
    [SAME] = NF_ATTR_BOOL_DEF("same", 0, "pad so that the output has the input's size (stride 1)"),
    [DILATION] = NF_ATTR_INT2_DEF("dilation", 1, 1, 1 << 16, "spacing between kernel taps: 2, or 2x1"),
    [GROUPS] = NF_ATTR_INT_DEF("groups", 1, 1, 1 << 20, "channel groups (= channels: depthwise)"),
    [BIAS] = NF_ATTR_BOOL_DEF("bias", 1, "add a learned bias per output channel"),
    [WEIGHT_INIT] = NF_ATTR_ENUM_DEF("weight_init", 0, nf_init_names, "initialisation of the weight"),
    [BIAS_INIT] = NF_ATTR_ENUM_DEF("bias_init", 0, nf_init_names, "initialisation of the bias"),
    [PADDING_MODE] = NF_ATTR_ENUM_DEF("padding_mode", 0, padding_modes,
                                      "what the padding holds: zeros, or the input reflected (without the edge), "
                                      "its edge repeated, or wrapped around"),
};

typedef nf_conv_geom geom;

/* A weight of at most 2^34 floats, as linear's and embedding's. */
#define MAX_WEIGHT_FLOATS ((int64_t)1 << 34)

/* A side's padding: its own attribute, else padding's height (top,
 * bottom) or width (left, right) value. */
static int64_t side(const nf_node *node, int which)
{
    const double *attr = node->attr;
    if (attr[which] >= 0)
        return (int64_t)attr[which];
    return (int64_t)(which == PAD_TOP || which == PAD_BOTTOM ? attr[PADDING] : node->attr_w[PADDING]);
}

/* The geometry of a node, from its attributes and input shape; `is1d`
 * reads [C, L] as [C, 1, L] (its stride, dilation and padding are the
 * width values). Returns 0 and a reason when it does not fit.
 * Attributes are at most 2^20, input axes and kernel sizes at most 2^31,
 * so spans (dil (k - 1) + 1 <= 2^47) and padded sizes cannot overflow;
 * ckk and hw are products of three and two of them (a kernel given as one
 * size is square: kh kw up to 2^62), so they are checked: -1 past 2^62. */
static int make_geom(const nf_node *node, const nf_shape *kernel, const nf_shape *in, int is1d, geom *g,
                     const char **why)
{
    const double *attr = node->attr, *attr_w = node->attr_w;
    memset(g, 0, sizeof *g);
    g->c = in->dim[0];
    g->h = is1d ? 1 : in->dim[1];
    g->w = is1d ? in->dim[1] : in->dim[2];
    g->o = (int64_t)attr[OUT];
    g->kh = is1d ? 1 : kernel->dim[0];
    g->kw = is1d ? kernel->dim[0] : kernel->rank == 2 ? kernel->dim[1] : kernel->dim[0];
    g->sh = is1d ? 1 : (int64_t)attr[STRIDE];
    g->sw = (int64_t)attr_w[STRIDE];
    g->dh = is1d ? 1 : (int64_t)attr[DILATION];
    g->dw = (int64_t)attr_w[DILATION];
    g->groups = (int64_t)attr[GROUPS];
    g->pad_mode = (int)attr[PADDING_MODE];
    if (attr[SAME] != 0) {
        if (g->sh != 1 || g->sw != 1) {
            *why = "same padding needs stride 1";
            return 0;
        }
        int64_t th = g->dh * (g->kh - 1), tw = g->dw * (g->kw - 1);
        g->pt = th / 2, g->pb = th - th / 2, g->pl = tw / 2, g->pr = tw - tw / 2;
    } else {
        g->pt = is1d ? 0 : side(node, PAD_TOP), g->pb = is1d ? 0 : side(node, PAD_BOTTOM);
        g->pl = side(node, PAD_LEFT), g->pr = side(node, PAD_RIGHT);
    }
    if (g->c % g->groups || g->o % g->groups) {
        *why = "groups must divide both the input and the output channels";
        return 0;
    }
    if (!g->pt && !g->pb && !g->pl && !g->pr)
        g->pad_mode = NF_PAD_ZEROS; /* no padding to fill */
    /* PyTorch's limits: a reflection cannot pass the edge it mirrors, a
     * wrap cannot pass the input once */
    int64_t most_h = g->pt > g->pb ? g->pt : g->pb, most_w = g->pl > g->pr ? g->pl : g->pr;
    if ((g->pad_mode == NF_PAD_REFLECT && (most_h >= g->h || most_w >= g->w)) ||
        (g->pad_mode == NF_PAD_CIRCULAR && (most_h > g->h || most_w > g->w))) {
        *why = g->pad_mode == NF_PAD_REFLECT ? "reflect padding must be smaller than the input"
                                             : "circular padding must be at most the input's size";
        return 0;
    }
    int64_t span_h = g->dh * (g->kh - 1) + 1, span_w = g->dw * (g->kw - 1) + 1;
    if (g->h + g->pt + g->pb < span_h || g->w + g->pl + g->pr < span_w) {
        *why = "the kernel is larger than the padded input";
        return 0;
    }
    g->oh = (g->h + g->pt + g->pb - span_h) / g->sh + 1;
    g->ow = (g->w + g->pl + g->pr - span_w) / g->sw + 1;
    g->ckk = nf_mul3_checked(g->c / g->groups, g->kh, g->kw);
    g->hw = nf_mul_checked(g->oh, g->ow);
    g->direct = g->kh == 1 && g->kw == 1 && g->sh == 1 && g->sw == 1 && !g->pt && !g->pb && !g->pl && !g->pr;
    return 1;
}

/* Samples per chunk: as many as fit the chunk's floats of columns. The
 * columns of a sample (ckk hw) are at most 2^31 floats and at least 1,
 * as the shape rule checked. */
static int64_t chunk_samples(const geom *g)
{
    int64_t per = g->ckk * g->hw, limit = g->o / g->groups < FEW_OUTPUTS ? CACHED_CHUNK_FLOATS : LARGE_CHUNK_FLOATS;
    return per >= limit ? 1 : limit / per;
}

/* Attributes that do not go with the others: HxW values, pad_top and
 * pad_bottom on a conv1d (PyTorch's Conv1d pads its one axis), and
 * explicit padding with same=true (PyTorch's padding is either 'same' or
 * sizes). */
static nf_status check_padding_attrs(nf_infer *ctx, int is1d)
{
    nf_status st = is1d ? nf_infer_one_size(ctx, "conv1d") : NF_OK;
    if (st != NF_OK)
        return st;
    static const int sides[] = {PADDING, PAD_TOP, PAD_BOTTOM, PAD_LEFT, PAD_RIGHT};
    unsigned given = ctx->node->attr_set;
    for (int i = 0; i < NF_COUNT(sides); i++) {
        int a = sides[i];
        if (!(given & (1u << a)))
            continue;
        if (is1d && (a == PAD_TOP || a == PAD_BOTTOM))
            return nf_infer_fail(ctx, NF_ERR_INVALID_ARGUMENT,
                                 "attribute '%s' is for conv2d; conv1d pads with padding, pad_left and pad_right",
                                 conv2d_attrs[a].name);
        if (ctx->attr[SAME] != 0)
            return nf_infer_fail(ctx, NF_ERR_INVALID_ARGUMENT,
                                 "attribute '%s' and same=true both set the padding; give one of them",
                                 conv2d_attrs[a].name);
    }
    return NF_OK;
}

/* Scratch floats: a chunk's columns, their gradient and Y (or dY), that
 * is 2 ckk + O floats per output position of the chunk; -1 past 2^62. */
static int64_t workspace_floats(const geom *g)
{
    int64_t positions = nf_mul_checked(chunk_samples(g), g->hw);
    return nf_add_checked(nf_mul_checked(positions, nf_add_checked(2 * g->ckk, g->o)), 64);
}

/* The sizes that grow with the input and the kernel, each checked before
 * it is used: the weight [O, C/G, kh, kw], the output [O, OH, OW], the
 * columns of a sample (C kh kw rows by OH OW, kept for backward: in
 * training, the columns of the whole batch are kept from forward) and the
 * scratch area. Sets saved_per_sample and workspace. */
static nf_status set_sizes(nf_infer *ctx, const geom *g, const nf_shape *wshape)
{
    char s[64];
    int64_t weight = nf_mul_checked(g->o, g->ckk);
    if (weight < 0 || weight > MAX_WEIGHT_FLOATS)
        return nf_infer_fail(ctx, NF_ERR_SHAPE, "weight %s is too large", nf_shape_format(wshape, s, sizeof s));
    int64_t out = nf_mul_checked(g->o, g->hw);
    if (out < 0 || out > NF_MAX_SAMPLE_ELEMENTS)
        return nf_infer_fail(ctx, NF_ERR_SHAPE, "its output would have more than 2^31 elements per sample");
    int64_t cols = nf_mul3_checked(g->groups, g->ckk, g->hw);
    if (cols < 0 || cols > NF_MAX_SAMPLE_ELEMENTS)
        return nf_infer_fail(ctx, NF_ERR_SHAPE,
                             "its columns (kernel taps x output positions) would have more than 2^31 floats per sample");
    int64_t scratch = workspace_floats(g); /* needs ckk hw checked: chunk_samples divides by it */
    if (scratch < 0 || scratch > NF_MAX_SAMPLE_ELEMENTS)
        return nf_infer_fail(ctx, NF_ERR_SHAPE, "its scratch space would have more than 2^31 floats");
    ctx->saved_per_sample = cols;
    ctx->workspace = scratch;
    return NF_OK;
}

static nf_status conv_infer_common(nf_infer *ctx, int is1d)
{
    const nf_shape *in = ctx->in[0], *kernel = ctx->dims;
    char s[64];
    if (in->rank != (is1d ? 2 : 3))
        return nf_infer_fail(ctx, NF_ERR_SHAPE, "input '%s' is %s; %s needs %s per sample", ctx->in_name[0],
                             nf_shape_format(in, s, sizeof s), is1d ? "conv1d" : "conv2d",
                             is1d ? "[channels, length]" : "[channels, height, width]");
    if (kernel->rank < 1 || kernel->rank > (is1d ? 1 : 2))
        return nf_infer_fail(ctx, NF_ERR_SHAPE, "kernel must be %s", is1d ? "one size" : "3 or 3x5");
    nf_status st = check_padding_attrs(ctx, is1d);
    if (st != NF_OK)
        return st;
    geom g;
    const char *why = "";
    if (!make_geom(ctx->node, kernel, in, is1d, &g, &why))
        return nf_infer_fail(ctx, NF_ERR_SHAPE, "%s (input %s)", why, nf_shape_format(in, s, sizeof s));
    nf_shape wshape = is1d ? (nf_shape){3, {g.o, g.c / g.groups, g.kw}}
                           : (nf_shape){4, {g.o, g.c / g.groups, g.kh, g.kw}};
    if ((st = set_sizes(ctx, &g, &wshape)) != NF_OK)
        return st;
    ctx->out = is1d ? (nf_shape){2, {g.o, g.ow}} : (nf_shape){3, {g.o, g.oh, g.ow}};
    /* fan_out = O/G kh kw is at most the weight's size, checked above */
    int64_t fan_in = g.ckk, fan_out = g.o / g.groups * g.kh * g.kw;
    ctx->params[0] = (nf_param_spec){"weight", wshape, (nf_init)ctx->attr[WEIGHT_INIT], 0, fan_in, fan_out, 0};
    ctx->n_params = 1;
    if (ctx->attr[BIAS] != 0) {
        ctx->params[1] = (nf_param_spec){"bias", {1, {g.o}}, (nf_init)ctx->attr[BIAS_INIT], 0, fan_in, fan_out, 0};
        ctx->n_params = 2;
    }
    return NF_OK;
}

static nf_status conv2d_infer(nf_infer *ctx) { return conv_infer_common(ctx, 0); }
static nf_status conv1d_infer(nf_infer *ctx) { return conv_infer_common(ctx, 1); }

static geom geom_of(const nf_exec *e)
{
    geom g;
    const char *why;
    make_geom(e->node, &e->node->dims, e->in_shape[0], e->in_shape[0]->rank == 2, &g, &why);
    return g;
}

/* Chunk-wide matrices: row r of a [rows, S HW] matrix holds, for each
 * sample s of the chunk, HW values at column s HW. */

/* Where the columns of group grp for the chunk at n0 go: the kept columns
 * of the batch (training), or the scratch area. */
static float *chunk_cols(const nf_exec *e, const geom *g, int64_t grp, int64_t n0, int64_t count)
{
    if (!e->saved)
        return e->workspace;
    return e->saved + n0 * g->groups * g->ckk * g->hw + grp * g->ckk * count * g->hw;
}

/* cols of group grp for samples [n0, n0 + count) */
static void chunk_im2col(const nf_exec *e, const geom *g, int64_t grp, int64_t n0, int64_t count, float *cols)
{
    int64_t cg = g->c / g->groups, width = count * g->hw;
    #pragma omp parallel for if (count > 1 && count * g->ckk * g->hw > NF_PARALLEL_MIN) schedule(static)
    for (int64_t s = 0; s < count; s++) {
        const float *xg = e->in[0] + (n0 + s) * g->c * g->h * g->w + grp * cg * g->h * g->w;
        e->kernels->im2col(g, xg, cols + s * g->hw, width);
    }
}

/* ---- few output channels, in training: one sample per thread ---------
 * The products of such a convolution are small (LeNet's conv1 is 6 x 784
 * x 25 per sample): threading each one, chunk by chunk, costs more in
 * fork and join than it saves. Instead the threads take whole samples,
 * each running its im2col and single-threaded products (OpenBLAS runs
 * single-threaded inside a parallel region), writing straight into the
 * sample's output; in backward each thread sums its samples' dW in its
 * own slice of the scratch area. */

/* The per-sample path applies: training (columns kept in `saved`), few
 * outputs or short columns, several threads, and room in the scratch area
 * for each thread's dW and dcols. */
static int per_sample_threads(const nf_exec *e, const geom *g)
{
    int64_t threads = e->threads < e->batch ? e->threads : e->batch;
    int64_t per_thread = g->o * g->ckk + g->ckk * g->hw, chunk = chunk_samples(g);
    int64_t room = chunk * g->hw * (2 * g->ckk + g->o);
    int small = g->o / g->groups < FEW_OUTPUTS || g->ckk < SHORT_COLUMNS;
    if (!e->saved || !small || threads < 2 || threads * per_thread > room)
        return 0;
    return (int)threads;
}

/* The columns of sample s, group grp, and their row stride. */
static float *sample_cols(const nf_exec *e, const geom *g, int64_t grp, int64_t s, int64_t *stride)
{
    int64_t chunk = chunk_samples(g), n0 = s / chunk * chunk;
    int64_t count = e->batch - n0 < chunk ? e->batch - n0 : chunk;
    *stride = count * g->hw;
    return chunk_cols(e, g, grp, n0, count) + (s - n0) * g->hw;
}

static void forward_per_sample(const nf_exec *e, const geom *g, int threads)
{
    int64_t og = g->o / g->groups, cg = g->c / g->groups;
    const float *bias = e->node->n_params > 1 ? e->param[1] : NULL;
    #pragma omp parallel for num_threads(threads) schedule(static)
    for (int64_t s = 0; s < e->batch; s++) {
        float *out = e->out + s * g->o * g->hw;
        for (int64_t grp = 0; grp < g->groups; grp++) {
            int64_t stride;
            float *cols = sample_cols(e, g, grp, s, &stride);
            const float *xg = e->in[0] + s * g->c * g->h * g->w + grp * cg * g->h * g->w;
            e->kernels->im2col(g, xg, cols, stride);
            e->kernels->sgemm(NF_NO_TRANS, NF_NO_TRANS, og, g->hw, g->ckk, 1.0f,
                        e->param[0] + grp * og * g->ckk, g->ckk, cols, stride, 0.0f,
                        out + grp * og * g->hw, g->hw);
        }
        for (int64_t o = 0; bias && o < g->o; o++)
            for (int64_t i = 0; i < g->hw; i++)
                out[o * g->hw + i] += bias[o];
    }
}

/* dW_g += dY_s cols_s^T per sample into the thread's slice, then summed;
 * dcols_s = W_g^T dY_s and dx_s += col2im(dcols_s). */
static void backward_per_sample(const nf_exec *e, const geom *g, int threads)
{
    int64_t og = g->o / g->groups, cg = g->c / g->groups, wfloats = g->o * g->ckk;
    float *dw_all = e->workspace, *dcols_all = e->workspace + threads * wfloats;
    memset(dw_all, 0, (size_t)(threads * wfloats) * sizeof(float));
    #pragma omp parallel num_threads(threads)
    {
        int id = omp_get_thread_num();
        float *dw = dw_all + id * wfloats, *dcols = dcols_all + id * g->ckk * g->hw;
        #pragma omp for schedule(static)
        for (int64_t s = 0; s < e->batch; s++)
            for (int64_t grp = 0; grp < g->groups; grp++) {
                int64_t stride;
                const float *cols = sample_cols(e, g, grp, s, &stride);
                const float *dyg = e->out_grad + s * g->o * g->hw + grp * og * g->hw;
                e->kernels->sgemm(NF_NO_TRANS, NF_TRANS, og, g->ckk, g->hw, 1.0f, dyg,
                            g->hw, cols, stride, 1.0f, dw + grp * og * g->ckk, g->ckk);
                if (!e->in_grad[0])
                    continue;
                e->kernels->sgemm(NF_TRANS, NF_NO_TRANS, g->ckk, g->hw, og, 1.0f,
                            e->param[0] + grp * og * g->ckk, g->ckk, dyg, g->hw, 0.0f, dcols, g->hw);
                e->kernels->col2im_add(g, dcols, g->hw, e->in_grad[0] + s * g->c * g->h * g->w + grp * cg * g->h * g->w);
            }
    }
    for (int t = 0; t < threads; t++)
        for (int64_t i = 0; i < wfloats; i++)
            e->param_grad[0][i] += dw_all[t * wfloats + i];
    float *db = e->node->n_params > 1 ? e->param_grad[1] : NULL;
    for (int64_t s = 0; db && s < e->batch; s++)
        for (int64_t o = 0; o < g->o; o++)
            db[o] += (float)nf_sum_floats(e->out_grad + (s * g->o + o) * g->hw, g->hw);
}

/* ---- a whole-convolution kernel (oneDNN's primitives) -----------------
 * Prepared for the plan's capacity: a run of that many rows uses it (in
 * training its saved buffer then holds what that kernel keeps, not the
 * columns); a shorter run, or a set without one, runs im2col and sgemm. */

static void *conv_prepare(nf_prepare *ctx)
{
    const nf_kernels *kernels = ctx->kernels;
    const nf_node *node = ctx->node;
    if (!kernels->conv_prepare)
        return NULL;
    nf_conv_request r = {.batch = ctx->capacity, .bias = node->n_params > 1, .backward = ctx->backward,
                         .input_grad = ctx->input_grad};
    const char *why;
    const nf_shape *in = &node->inputs[0]->shape;
    make_geom(node, &node->dims, in, in->rank == 2, &r.geom, &why);
    nf_conv_sizes sizes = {0, 0};
    nf_conv_kernel *k = kernels->conv_prepare(&r, &sizes);
    if (k && (sizes.saved_bytes > (size_t)ctx->saved_floats * sizeof(float) ||
              sizes.scratch_bytes / sizeof(float) > (size_t)NF_MAX_SAMPLE_ELEMENTS)) {
        kernels->conv_release(k); /* what it keeps does not fit the saved buffer: im2col */
        return NULL;
    }
    ctx->workspace = (int64_t)((sizes.scratch_bytes + sizeof(float) - 1) / sizeof(float));
    return k;
}

static void conv_release(const nf_kernels *kernels, void *state) { kernels->conv_release(state); }

static const char *conv_describe(const nf_kernels *kernels, const void *state)
{
    return kernels->conv_name(state);
}

static void conv_forward(const nf_exec *e)
{
    geom g = geom_of(e);
    if (nf_uses_prepared(e)) {
        const float *bias = e->node->n_params > 1 ? e->param[1] : NULL;
        if (!e->kernels->conv_forward(e->state, e->in[0], e->param[0], bias, e->out, e->saved, e->workspace))
            nf_fill_nan(e->out, e->batch * g.o * g.hw);
        return;
    }
    int threads = per_sample_threads(e, &g);
    if (threads) {
        forward_per_sample(e, &g, threads);
        return;
    }
    int64_t chunk = chunk_samples(&g), og = g.o / g.groups;
    const float *bias = e->node->n_params > 1 ? e->param[1] : NULL;
    float *y = e->workspace + 2 * chunk * g.ckk * g.hw;
    for (int64_t n0 = 0; n0 < e->batch; n0 += chunk) {
        int64_t count = e->batch - n0 < chunk ? e->batch - n0 : chunk, width = count * g.hw;
        for (int64_t grp = 0; grp < g.groups; grp++) {
            float *cols = chunk_cols(e, &g, grp, n0, count);
            chunk_im2col(e, &g, grp, n0, count, cols);
            e->kernels->sgemm(NF_NO_TRANS, NF_NO_TRANS, og, width, g.ckk, 1.0f,
                        e->param[0] + grp * og * g.ckk, g.ckk, cols, width, 0.0f, y + grp * og * width,
                        width);
        }
        /* Y [O, S HW] + b -> out [S, O, HW] */
        #pragma omp parallel for collapse(2) if (width * g.o > NF_PARALLEL_MIN) schedule(static)
        for (int64_t s = 0; s < count; s++)
            for (int64_t o = 0; o < g.o; o++) {
                float *out = e->out + ((n0 + s) * g.o + o) * g.hw, b = bias ? bias[o] : 0.0f;
                const float *from = y + o * width + s * g.hw;
                for (int64_t i = 0; i < g.hw; i++)
                    out[i] = from[i] + b;
            }
    }
}

static void conv_backward(const nf_exec *e)
{
    geom g = geom_of(e);
    if (nf_uses_prepared(e)) {
        float *db = e->node->n_params > 1 ? e->param_grad[1] : NULL;
        if (!e->kernels->conv_backward(e->state, e->saved, e->param[0], e->out_grad, e->in_grad[0],
                                       e->param_grad[0], db, e->workspace)) {
            nf_fill_nan(e->in_grad[0], e->batch * g.c * g.h * g.w);
            nf_fill_nan(e->param_grad[0], g.o * g.ckk);
        }
        return;
    }
    int threads = per_sample_threads(e, &g);
    if (threads) {
        backward_per_sample(e, &g, threads);
        return;
    }
    int64_t chunk = chunk_samples(&g), og = g.o / g.groups, cg = g.c / g.groups;
    float *dcols = e->workspace + chunk * g.ckk * g.hw, *dy = dcols + chunk * g.ckk * g.hw;
    float *db = e->node->n_params > 1 ? e->param_grad[1] : NULL;
    for (int64_t n0 = 0; n0 < e->batch; n0 += chunk) {
        int64_t count = e->batch - n0 < chunk ? e->batch - n0 : chunk, width = count * g.hw;
        /* out_grad [S, O, HW] -> dY [O, S HW] */
        #pragma omp parallel for collapse(2) if (width * g.o > NF_PARALLEL_MIN) schedule(static)
        for (int64_t s = 0; s < count; s++)
            for (int64_t o = 0; o < g.o; o++)
                memcpy(dy + o * width + s * g.hw, e->out_grad + ((n0 + s) * g.o + o) * g.hw,
                       (size_t)g.hw * sizeof(float));
        for (int64_t o = 0; db && o < g.o; o++)
            db[o] += (float)nf_sum_floats(dy + o * width, width);
        for (int64_t grp = 0; grp < g.groups; grp++) {
            const float *dyg = dy + grp * og * width;
            const float *cols = chunk_cols(e, &g, grp, n0, count); /* kept by forward */
            e->kernels->sgemm(NF_NO_TRANS, NF_TRANS, og, g.ckk, width, 1.0f, dyg,
                        width, cols, width, 1.0f, e->param_grad[0] + grp * og * g.ckk, g.ckk);
            if (!e->in_grad[0])
                continue;
            e->kernels->sgemm(NF_TRANS, NF_NO_TRANS, g.ckk, width, og, 1.0f,
                        e->param[0] + grp * og * g.ckk, g.ckk, dyg, width, 0.0f, dcols, width);
            #pragma omp parallel for if (count > 1 && width * g.ckk > NF_PARALLEL_MIN) schedule(static)
            for (int64_t s = 0; s < count; s++) {
                float *dxg = e->in_grad[0] + (n0 + s) * g.c * g.h * g.w + grp * cg * g.h * g.w;
                e->kernels->col2im_add(&g, dcols + s * g.hw, width, dxg);
            }
        }
    }
}

/* 2 (C/G kh kw) multiply-adds per output element, plus the bias (in
 * double: a kernel given as one size is square, kh kw up to 2^62) */
static double conv_flops(const nf_node *node)
{
    const nf_shape *k = &node->dims;
    double kh = (double)k->dim[0], kw = (double)(k->rank == 2 ? k->dim[1] : k->dim[0]);
    double kk = k->rank == 2 || node->inputs[0]->shape.rank == 3 ? kh * kw : kh;
    double per_out = 2.0 * (double)(node->inputs[0]->shape.dim[0] / (int64_t)node->attr[GROUPS]) * kk;
    return (double)nf_shape_size(&node->shape) * (per_out + (node->attr[BIAS] != 0));
}

const nf_op nf_op_conv2d = {
    .name = "conv2d", .summary = "2-D convolution over [channels, height, width] (PyTorch's Conv2d)",
    .min_inputs = 1, .max_inputs = 1,
    .attrs = conv2d_attrs, .n_attrs = NF_COUNT(conv2d_attrs),
    .flags = NF_OP_GRAD_NO_OUTPUT | NF_OP_GRAD_NO_INPUTS | NF_OP_SAVED_FOR_BACKWARD,
    .infer = conv2d_infer, .forward = conv_forward, .backward = conv_backward, .flops = conv_flops,
    .prepare = conv_prepare, .release = conv_release, .describe = conv_describe,
};

const nf_op nf_op_conv1d = {
    .name = "conv1d", .summary = "1-D convolution over [channels, length] (PyTorch's Conv1d; pad_left, pad_right)",
    .min_inputs = 1, .max_inputs = 1,
    .attrs = conv2d_attrs, .n_attrs = NF_COUNT(conv2d_attrs),
    .flags = NF_OP_GRAD_NO_OUTPUT | NF_OP_GRAD_NO_INPUTS | NF_OP_SAVED_FOR_BACKWARD,
    .infer = conv1d_infer, .forward = conv_forward, .backward = conv_backward, .flops = conv_flops,
    .prepare = conv_prepare, .release = conv_release, .describe = conv_describe,
};

/* ---- conv_transpose2d: the adjoint of conv2d ---------------------------
 * As PyTorch's ConvTranspose2d: x [C, H, W], weight [C, O/G, kh, kw],
 * output [O, OH, OW] with OH = (H - 1) sh - 2 ph + dh (kh - 1) + oph + 1.
 * It is the input gradient of a conv2d from [O, OH, OW] to [C, H, W] with
 * that weight, so it runs on the same im2col kernels, seen from that
 * convolution (geometry t: input the output here, output the input):
 *   forward   cols = W_g^T x_g;  y_g += col2im(cols) (+ b)
 *   backward  cols = im2col(dy_g);  dx_g += W_g cols;  dW_g += x_g cols^T
 * Output padding adds rows and columns at the bottom and right that the
 * windows of t do not reach (bias only). */

enum { TR_OUT, TR_KERNEL, TR_STRIDE, TR_PADDING, TR_OUTPUT_PADDING, TR_DILATION, TR_GROUPS, TR_BIAS, TR_WEIGHT_INIT,
       TR_BIAS_INIT };

static const nf_attr_spec conv_transpose_attrs[] = {
    [TR_OUT] = NF_ATTR_REQUIRED_INT("out", 1, 1 << 20, "output channels"),
    [TR_KERNEL] = {"kernel", NF_ATTR_DIMS, 0, 0, 0, NULL, "kernel size: 3, or 3x5 (height x width)"},
    [TR_STRIDE] = NF_ATTR_INT2_DEF("stride", 1, 1, 1 << 16, "step between windows: 2, or 2x1"),
    [TR_PADDING] = NF_ATTR_INT2_DEF("padding", 0, 0, 1 << 16, "rows and columns taken off each side: 1, or 1x0"),
    [TR_OUTPUT_PADDING] = NF_ATTR_INT2_DEF("output_padding", 0, 0, 1 << 16,
                                           "rows and columns added at the bottom and right (less than the stride "
                                           "or the dilation)"),
    [TR_DILATION] = NF_ATTR_INT2_DEF("dilation", 1, 1, 1 << 16, "spacing between kernel taps: 2, or 2x1"),
    [TR_GROUPS] = NF_ATTR_INT_DEF("groups", 1, 1, 1 << 20, "channel groups"),
    [TR_BIAS] = NF_ATTR_BOOL_DEF("bias", 1, "add a learned bias per output channel"),
    [TR_WEIGHT_INIT] = NF_ATTR_ENUM_DEF("weight_init", 0, nf_init_names, "initialisation of the weight"),
    [TR_BIAS_INIT] = NF_ATTR_ENUM_DEF("bias_init", 0, nf_init_names, "initialisation of the bias"),
};

/* The geometry t of the convolution this one is the adjoint of; 0 and a
 * reason when it does not fit. Sizes as in make_geom: the output axis
 * (H - 1) sh + dh (kh - 1) + 1 + oph is below 2^31 2^16 + 2^47: no
 * overflow; the products are checked. */
static int make_transpose_geom(const nf_node *node, const nf_shape *in, geom *t, const char **why)
{
    const double *a = node->attr, *aw = node->attr_w;
    const nf_shape *k = &node->dims;
    memset(t, 0, sizeof *t);
    t->o = in->dim[0];
    t->oh = in->dim[1];
    t->ow = in->dim[2];
    t->c = (int64_t)a[TR_OUT];
    t->groups = (int64_t)a[TR_GROUPS];
    t->kh = k->dim[0];
    t->kw = k->rank == 2 ? k->dim[1] : k->dim[0];
    t->sh = (int64_t)a[TR_STRIDE], t->sw = (int64_t)aw[TR_STRIDE];
    t->dh = (int64_t)a[TR_DILATION], t->dw = (int64_t)aw[TR_DILATION];
    int64_t ph = (int64_t)a[TR_PADDING], pw = (int64_t)aw[TR_PADDING];
    int64_t oph = (int64_t)a[TR_OUTPUT_PADDING], opw = (int64_t)aw[TR_OUTPUT_PADDING];
    if (t->o % t->groups || t->c % t->groups) {
        *why = "groups must divide both the input and the output channels";
        return 0;
    }
    if ((oph >= t->sh && oph >= t->dh) || (opw >= t->sw && opw >= t->dw)) {
        *why = "output_padding must be smaller than the stride or the dilation";
        return 0;
    }
    t->h = (t->oh - 1) * t->sh - 2 * ph + t->dh * (t->kh - 1) + oph + 1;
    t->w = (t->ow - 1) * t->sw - 2 * pw + t->dw * (t->kw - 1) + opw + 1;
    if (t->h < 1 || t->w < 1) {
        *why = "the padding takes off more than the output has";
        return 0;
    }
    t->pt = ph, t->pl = pw;
    t->pb = ph - oph, t->pr = pw - opw; /* may be negative: rows no window reaches */
    t->ckk = nf_mul3_checked(t->c / t->groups, t->kh, t->kw);
    t->hw = nf_mul_checked(t->oh, t->ow);
    return 1;
}

static nf_status conv_transpose_infer(nf_infer *ctx)
{
    const nf_shape *in = ctx->in[0], *kernel = ctx->dims;
    char s[64];
    if (in->rank != 3)
        return nf_infer_fail(ctx, NF_ERR_SHAPE, "input '%s' is %s; conv_transpose2d needs [channels, height, width]",
                             ctx->in_name[0], nf_shape_format(in, s, sizeof s));
    if (kernel->rank < 1 || kernel->rank > 2)
        return nf_infer_fail(ctx, NF_ERR_SHAPE, "kernel must be 3 or 3x5");
    geom t;
    const char *why = "";
    if (!make_transpose_geom(ctx->node, in, &t, &why))
        return nf_infer_fail(ctx, NF_ERR_SHAPE, "%s (input %s)", why, nf_shape_format(in, s, sizeof s));
    int64_t weight = nf_mul_checked(t.o, t.ckk), out = nf_mul3_checked(t.c, t.h, t.w);
    int64_t cols = nf_mul_checked(t.ckk, t.hw);
    if (weight < 0 || weight > MAX_WEIGHT_FLOATS)
        return nf_infer_fail(ctx, NF_ERR_SHAPE, "its weight is too large");
    if (out < 0 || out > NF_MAX_SAMPLE_ELEMENTS || cols < 0 || cols > NF_MAX_SAMPLE_ELEMENTS)
        return nf_infer_fail(ctx, NF_ERR_SHAPE, "its output or columns would have more than 2^31 elements per sample");
    ctx->out = (nf_shape){3, {t.c, t.h, t.w}};
    ctx->workspace = cols; /* one sample's columns at a time */
    int64_t og = t.c / t.groups;
    /* PyTorch's fans for a [C, O/G, kh, kw] weight: fan_in = O/G kh kw */
    int64_t fan_in = og * t.kh * t.kw, fan_out = in->dim[0] * t.kh * t.kw;
    ctx->params[0] = (nf_param_spec){"weight", {4, {t.o, og, t.kh, t.kw}}, (nf_init)ctx->attr[TR_WEIGHT_INIT], 0,
                                     fan_in, fan_out, 0};
    ctx->n_params = 1;
    if (ctx->attr[TR_BIAS] != 0) {
        ctx->params[1] = (nf_param_spec){"bias", {1, {t.c}}, (nf_init)ctx->attr[TR_BIAS_INIT], 0, fan_in, fan_out, 0};
        ctx->n_params = 2;
    }
    return NF_OK;
}

static geom transpose_geom_of(const nf_exec *e)
{
    geom t;
    const char *why;
    make_transpose_geom(e->node, e->in_shape[0], &t, &why);
    return t;
}

/* Sample by sample (the products are threaded inside the kernel). */
static void conv_transpose_forward(const nf_exec *e)
{
    geom t = transpose_geom_of(e);
    int64_t cg = t.o / t.groups, og = t.c / t.groups, in_size = t.o * t.hw, out_size = t.c * t.h * t.w;
    const float *bias = e->node->n_params > 1 ? e->param[1] : NULL;
    float *cols = e->workspace;
    for (int64_t s = 0; s < e->batch; s++) {
        float *y = e->out + s * out_size;
        for (int64_t o = 0; o < t.c; o++)
            for (int64_t i = 0; i < t.h * t.w; i++)
                y[o * t.h * t.w + i] = bias ? bias[o] : 0.0f;
        for (int64_t grp = 0; grp < t.groups; grp++) {
            const float *xg = e->in[0] + s * in_size + grp * cg * t.hw, *wg = e->param[0] + grp * cg * t.ckk;
            e->kernels->sgemm(NF_TRANS, NF_NO_TRANS, t.ckk, t.hw, cg, 1.0f, wg, t.ckk, xg, t.hw, 0.0f, cols, t.hw);
            e->kernels->col2im_add(&t, cols, t.hw, y + grp * og * t.h * t.w);
        }
    }
}

static void conv_transpose_backward(const nf_exec *e)
{
    geom t = transpose_geom_of(e);
    int64_t cg = t.o / t.groups, og = t.c / t.groups, in_size = t.o * t.hw, out_size = t.c * t.h * t.w;
    float *cols = e->workspace, *db = e->node->n_params > 1 ? e->param_grad[1] : NULL;
    for (int64_t s = 0; s < e->batch; s++) {
        const float *dy = e->out_grad + s * out_size;
        for (int64_t o = 0; db && o < t.c; o++)
            db[o] += (float)nf_sum_floats(dy + o * t.h * t.w, t.h * t.w);
        for (int64_t grp = 0; grp < t.groups; grp++) {
            const float *xg = e->in[0] + s * in_size + grp * cg * t.hw, *wg = e->param[0] + grp * cg * t.ckk;
            e->kernels->im2col(&t, dy + grp * og * t.h * t.w, cols, t.hw);
            e->kernels->sgemm(NF_NO_TRANS, NF_TRANS, cg, t.ckk, t.hw, 1.0f, xg, t.hw, cols, t.hw, 1.0f,
                              e->param_grad[0] + grp * cg * t.ckk, t.ckk);
            if (e->in_grad[0])
                e->kernels->sgemm(NF_NO_TRANS, NF_NO_TRANS, cg, t.hw, t.ckk, 1.0f, wg, t.ckk, cols, t.hw, 1.0f,
                                  e->in_grad[0] + s * in_size + grp * cg * t.hw, t.hw);
        }
    }
}

/* 2 (O/G kh kw) multiply-adds per input element, plus the bias */
static double conv_transpose_flops(const nf_node *node)
{
    const nf_shape *k = &node->dims;
    double kk = (double)k->dim[0] * (double)(k->rank == 2 ? k->dim[1] : k->dim[0]);
    double og = node->attr[TR_OUT] / node->attr[TR_GROUPS];
    return (double)nf_shape_size(&node->inputs[0]->shape) * 2.0 * og * kk +
           (node->attr[TR_BIAS] != 0 ? (double)nf_shape_size(&node->shape) : 0.0);
}

const nf_op nf_op_conv_transpose2d = {
    .name = "conv_transpose2d",
    .summary = "2-D transposed convolution over [channels, height, width] (PyTorch's ConvTranspose2d)",
    .min_inputs = 1, .max_inputs = 1,
    .attrs = conv_transpose_attrs, .n_attrs = NF_COUNT(conv_transpose_attrs),
    .flags = NF_OP_GRAD_NO_OUTPUT,
    .infer = conv_transpose_infer, .forward = conv_transpose_forward, .backward = conv_transpose_backward,
    .flops = conv_transpose_flops,
};
