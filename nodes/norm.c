/* nodeflow — normalization: batchnorm and layernorm, with PyTorch's
 * parameters and buffers (weight, bias, running_mean, running_var) so that
 * weights move between the two unchanged.
 *
 * batchnorm, per channel c (axis 0 of [C] or [C, ...]) over the batch and
 * the spatial positions, M values in all:
 *   training:  mu, var = mean and biased variance of the batch
 *              running_mean = (1 - momentum) running_mean + momentum mu
 *              running_var  = (1 - momentum) running_var + momentum var M / (M - 1)
 *   inference: mu, var = running_mean, running_var
 *   y = (x - mu) / sqrt(var + eps) * weight + bias
 * backward (training), with xh = (x - mu) / sqrt(var + eps) and s = 1 / sqrt(var + eps):
 *   dx = weight s / M (M dy - sum dy - xh sum(dy xh)),  dweight = sum dy xh,  dbias = sum dy
 *
 * layernorm normalises each sample over its last `axes` axes the same way
 * (statistics of that sample only), with weight and bias of that shape. */
#include <math.h>
#include <string.h>

#include "nodes/op.h"

enum { BN_MOMENTUM, BN_EPS, BN_AFFINE, BN_TRACK, BN_SYNC };

static const nf_attr_spec batchnorm_attrs[] = {
    [BN_MOMENTUM] = NF_ATTR_FLOAT_DEF("momentum", 0.1, 0, 1, "weight of the batch in the running statistics"),
    [BN_EPS] = NF_ATTR_FLOAT_DEF("eps", 1e-5, 0, 1, "added to the variance"),
    [BN_AFFINE] = NF_ATTR_BOOL_DEF("affine", 1, "learn a scale (weight) and a shift (bias)"),
    [BN_TRACK] = NF_ATTR_BOOL_DEF("track_running_stats", 1, "keep running statistics for inference"),
    [BN_SYNC] = NF_ATTR_BOOL_DEF("sync_bn", 0,
                                 "data parallel (mpirun): statistics over every process's batch in training, as "
                                 "one process over the global batch (PyTorch's SyncBatchNorm)"),
};

/* params: [weight, bias] if affine, then [running_mean, running_var] if tracked */
static nf_status batchnorm_infer(nf_infer *ctx)
{
    const nf_shape *in = ctx->in[0];
    if (in->rank < 1)
        return nf_infer_fail(ctx, NF_ERR_SHAPE, "input '%s' needs a channel axis", ctx->in_name[0]);
    int64_t c = in->dim[0];
    int n = 0;
    if (ctx->attr[BN_AFFINE] != 0) {
        ctx->params[n++] = (nf_param_spec){"weight", {1, {c}}, NF_INIT_CONSTANT, 1.0, c, c, 0};
        ctx->params[n++] = (nf_param_spec){"bias", {1, {c}}, NF_INIT_ZEROS, 0.0, c, c, 0};
    }
    if (ctx->attr[BN_TRACK] != 0) {
        ctx->params[n++] = (nf_param_spec){"running_mean", {1, {c}}, NF_INIT_ZEROS, 0.0, c, c, 1};
        ctx->params[n++] = (nf_param_spec){"running_var", {1, {c}}, NF_INIT_CONSTANT, 1.0, c, c, 1};
    }
    ctx->n_params = n;
    ctx->out = *in;
    ctx->saved_fixed = 2 * c; /* mean and 1/std per channel, as used in forward */
    if (ctx->attr[BN_SYNC] != 0)
        ctx->workspace = 2 * (2 * c + 1); /* the per-channel sums shared among processes, as doubles */
    return NF_OK;
}

typedef struct bn_view {
    int64_t c, area;        /* channels, positions per channel per sample */
    const float *weight, *bias;
    float *running_mean, *running_var;
    float *mean, *inv_std;  /* saved statistics */
} bn_view;

static bn_view bn_view_of(const nf_exec *e)
{
    bn_view v = {e->in_shape[0]->dim[0], nf_shape_size(e->in_shape[0]) / e->in_shape[0]->dim[0],
                 NULL, NULL, NULL, NULL, e->saved, NULL};
    int j = 0;
    if (e->attr[BN_AFFINE] != 0) {
        v.weight = e->param[j++];
        v.bias = e->param[j++];
    }
    if (e->attr[BN_TRACK] != 0) {
        v.running_mean = e->param[j++];
        v.running_var = e->param[j++];
    }
    v.inv_std = e->saved + v.c;
    return v;
}

/* The sum and the sum of squares of channel c over the batch, in double. */
static void channel_sums(const nf_exec *e, const bn_view *v, int64_t c, double *sum, double *sq)
{
    *sum = *sq = 0;
    for (int64_t n = 0; n < e->batch; n++) {
        const float *x = e->in[0] + (n * v->c + c) * v->area;
        for (int64_t i = 0; i < v->area; i++) {
            *sum += x[i];
            *sq += (double)x[i] * x[i];
        }
    }
}

/* Mean and biased variance of channel c over the batch, in double. */
static void channel_stats(const nf_exec *e, const bn_view *v, int64_t c, double *mean, double *var)
{
    double sum, sq, m = (double)(e->batch * v->area);
    channel_sums(e, v, c, &sum, &sq);
    *mean = sum / m;
    *var = fmax(sq / m - *mean * *mean, 0.0);
}

/* Sync: per channel the sum and the sum of squares of this process's
 * batch, and the count, summed over the processes: [sums | squares | M]
 * in `buf` (2 C + 1 doubles). 0 if the sum failed. */
static int shared_moments(const nf_exec *e, const bn_view *v, double *buf)
{
    #pragma omp parallel for if (e->batch * v->c * v->area > NF_PARALLEL_MIN) schedule(static)
    for (int64_t c = 0; c < v->c; c++)
        channel_sums(e, v, c, &buf[c], &buf[v->c + c]);
    buf[2 * v->c] = (double)(e->batch * v->area);
    return e->sum_across(e->sum_ctx, buf, 2 * v->c + 1);
}

static int synced(const nf_exec *e) { return e->attr[BN_SYNC] != 0 && e->sum_across && e->training; }

static void batchnorm_forward(const nf_exec *e)
{
    bn_view v = bn_view_of(e);
    int batch_stats = e->training || !v.running_mean;
    double momentum = e->attr[BN_MOMENTUM], eps = e->attr[BN_EPS], m = (double)(e->batch * v.area);
    double *shared = synced(e) ? (double *)e->workspace : NULL;
    if (shared && !shared_moments(e, &v, shared)) {
        nf_fill_nan(e->out, e->batch * v.c * v.area);
        return;
    }
    if (shared)
        m = shared[2 * v.c];
    #pragma omp parallel for if (e->batch * v.c * v.area > NF_PARALLEL_MIN) schedule(static)
    for (int64_t c = 0; c < v.c; c++) {
        double mean, var;
        if (shared) {
            mean = shared[c] / m;
            var = fmax(shared[v.c + c] / m - mean * mean, 0.0);
        } else if (batch_stats) {
            channel_stats(e, &v, c, &mean, &var);
        } else {
            mean = v.running_mean[c];
            var = v.running_var[c];
        }
        if (batch_stats && e->training && v.running_mean) {
            v.running_mean[c] = (float)((1 - momentum) * v.running_mean[c] + momentum * mean);
            v.running_var[c] = (float)((1 - momentum) * v.running_var[c] + momentum * var * (m > 1 ? m / (m - 1) : 1.0));
        }
        float inv = (float)(1.0 / sqrt(var + eps)), mu = (float)mean;
        float scale = v.weight ? v.weight[c] * inv : inv, shift = v.bias ? v.bias[c] : 0.0f;
        v.mean[c] = mu;
        v.inv_std[c] = inv;
        for (int64_t n = 0; n < e->batch; n++) {
            const float *x = e->in[0] + (n * v.c + c) * v.area;
            float *y = e->out + (n * v.c + c) * v.area;
            for (int64_t i = 0; i < v.area; i++)
                y[i] = (x[i] - mu) * scale + shift;
        }
    }
}

/* Sum dy and sum dy xh of channel c over the batch, in double. */
static void grad_sums(const nf_exec *e, const bn_view *v, int64_t c, double *sum_dy, double *sum_dy_xh)
{
    float mu = v->mean[c], inv = v->inv_std[c];
    *sum_dy = *sum_dy_xh = 0;
    for (int64_t n = 0; n < e->batch; n++) {
        const float *x = e->in[0] + (n * v->c + c) * v->area, *dy = e->out_grad + (n * v->c + c) * v->area;
        for (int64_t i = 0; i < v->area; i++) {
            *sum_dy += dy[i];
            *sum_dy_xh += (double)dy[i] * (x[i] - mu) * inv;
        }
    }
}

static void batchnorm_backward(const nf_exec *e)
{
    bn_view v = bn_view_of(e);
    int batch_stats = e->training || !v.running_mean;
    double m = (double)(e->batch * v.area);
    /* the local sums (their own 2 C + 1 doubles in the scratch area, or
     * a per-channel pair below): the parameters' gradients take this
     * process's (the optimizer sums them over the processes); dx, with
     * sync, the sums over every process */
    double *sums = synced(e) ? (double *)e->workspace : NULL;
    if (sums) {
        #pragma omp parallel for if (e->batch * v.c * v.area > NF_PARALLEL_MIN) schedule(static)
        for (int64_t c = 0; c < v.c; c++)
            grad_sums(e, &v, c, &sums[c], &sums[v.c + c]);
        for (int64_t c = 0; v.weight && c < v.c; c++) {
            e->param_grad[0][c] += (float)sums[v.c + c];
            e->param_grad[1][c] += (float)sums[c];
        }
        sums[2 * v.c] = m;
        if (!e->in_grad[0])
            return;
        if (!e->sum_across(e->sum_ctx, sums, 2 * v.c + 1)) {
            nf_fill_nan(e->in_grad[0], e->batch * v.c * v.area);
            return;
        }
        m = sums[2 * v.c];
    }
    #pragma omp parallel for if (e->batch * v.c * v.area > NF_PARALLEL_MIN) schedule(static)
    for (int64_t c = 0; c < v.c; c++) {
        float mu = v.mean[c], inv = v.inv_std[c];
        double sum_dy = 0, sum_dy_xh = 0;
        if (sums) {
            sum_dy = sums[c];
            sum_dy_xh = sums[v.c + c];
        } else {
            grad_sums(e, &v, c, &sum_dy, &sum_dy_xh);
            if (v.weight) {
                e->param_grad[0][c] += (float)sum_dy_xh;
                e->param_grad[1][c] += (float)sum_dy;
            }
        }
        if (!e->in_grad[0])
            continue;
        float w = v.weight ? v.weight[c] : 1.0f;
        float k = w * inv, mean_dy = (float)(sum_dy / m), mean_dy_xh = (float)(sum_dy_xh / m);
        for (int64_t n = 0; n < e->batch; n++) {
            const float *x = e->in[0] + (n * v.c + c) * v.area, *dy = e->out_grad + (n * v.c + c) * v.area;
            float *dx = e->in_grad[0] + (n * v.c + c) * v.area;
            for (int64_t i = 0; i < v.area; i++)
                dx[i] += batch_stats ? k * (dy[i] - mean_dy - (x[i] - mu) * inv * mean_dy_xh) : k * dy[i];
        }
    }
}

const nf_op nf_op_batchnorm = {
    .name = "batchnorm", .summary = "batch normalization per channel (PyTorch's BatchNorm1d/2d)",
    .min_inputs = 1, .max_inputs = 1, .attrs = batchnorm_attrs, .n_attrs = NF_COUNT(batchnorm_attrs),
    .flags = NF_OP_GRAD_NO_OUTPUT,
    .infer = batchnorm_infer, .forward = batchnorm_forward, .backward = batchnorm_backward,
    .flops = nf_flops_per_element,
};

/* ---- layernorm ---------------------------------------------------------- */

enum { LN_AXES, LN_EPS, LN_AFFINE, LN_OUTPUT };
enum { LN_VALUES, LN_MEAN, LN_INV_STD };

static const char *const ln_outputs[] = {"values", "mean", "inv_std_dev", NULL};

static const nf_attr_spec layernorm_attrs[] = {
    [LN_AXES] = NF_ATTR_INT_DEF("axes", 1, 1, NF_MAX_RANK, "number of trailing axes normalised together"),
    [LN_EPS] = NF_ATTR_FLOAT_DEF("eps", 1e-5, 0, 1, "added to the variance"),
    [LN_AFFINE] = NF_ATTR_BOOL_DEF("affine", 1, "learn a weight and a bias of the normalised shape"),
    [LN_OUTPUT] = NF_ATTR_ENUM_DEF("output", 0, ln_outputs,
                                   "values: the normalised input; mean or inv_std_dev (1 / sqrt(var + eps)): the "
                                   "statistics, the normalised axes kept as 1s (ONNX's Mean and InvStdDev; "
                                   "affine=false)"),
};

static nf_status layernorm_infer(nf_infer *ctx)
{
    const nf_shape *in = ctx->in[0];
    int axes = (int)ctx->attr[LN_AXES];
    if (axes > in->rank)
        return nf_infer_fail(ctx, NF_ERR_SHAPE, "input '%s' has %d axes, fewer than %d", ctx->in_name[0], in->rank,
                             axes);
    nf_shape norm = {axes, {0}};
    for (int i = 0; i < axes; i++)
        norm.dim[i] = in->dim[in->rank - axes + i];
    int statistic = ctx->attr[LN_OUTPUT] != LN_VALUES;
    if (statistic && ctx->attr[LN_AFFINE] != 0)
        return nf_infer_fail(ctx, NF_ERR_INVALID_ARGUMENT, "output=%s needs affine=false (the statistics have no "
                             "weight)", ln_outputs[(int)ctx->attr[LN_OUTPUT]]);
    if (ctx->attr[LN_AFFINE] != 0) {
        int64_t n = nf_shape_size(&norm);
        ctx->params[0] = (nf_param_spec){"weight", norm, NF_INIT_CONSTANT, 1.0, n, n, 0};
        ctx->params[1] = (nf_param_spec){"bias", norm, NF_INIT_ZEROS, 0.0, n, n, 0};
        ctx->n_params = 2;
    }
    ctx->out = *in;
    for (int i = in->rank - axes; statistic && i < in->rank; i++)
        ctx->out.dim[i] = 1;
    ctx->saved_per_sample = 2 * (nf_shape_size(in) / nf_shape_size(&norm)); /* mean, 1/std per row */
    return NF_OK;
}

static int64_t ln_inner(const nf_exec *e) { return nf_trailing_size(e->in_shape[0], (int)e->attr[LN_AXES]); }

static void layernorm_forward(const nf_exec *e)
{
    int64_t inner = ln_inner(e), rows = e->batch * nf_shape_size(e->in_shape[0]) / inner;
    const float *w = e->attr[LN_AFFINE] != 0 ? e->param[0] : NULL, *b = w ? e->param[1] : NULL;
    float *mean = e->saved, *inv = e->saved + rows;
    double eps = e->attr[LN_EPS];
    #pragma omp parallel for if (rows * inner > NF_PARALLEL_MIN) schedule(static)
    for (int64_t r = 0; r < rows; r++) {
        const float *x = e->in[0] + r * inner;
        float *y = e->out + r * inner;
        double sum = 0, sq = 0;
        for (int64_t i = 0; i < inner; i++) {
            sum += x[i];
            sq += (double)x[i] * x[i];
        }
        double mu = sum / (double)inner, var = fmax(sq / (double)inner - mu * mu, 0.0);
        mean[r] = (float)mu;
        inv[r] = (float)(1.0 / sqrt(var + eps));
        if (e->attr[LN_OUTPUT] != LN_VALUES) {
            e->out[r] = e->attr[LN_OUTPUT] == LN_MEAN ? mean[r] : inv[r];
            continue;
        }
        for (int64_t i = 0; i < inner; i++) {
            float xh = (x[i] - mean[r]) * inv[r];
            y[i] = w ? xh * w[i] + b[i] : xh;
        }
    }
}

/* The statistics' gradients: d mean / dx_i = 1 / n, and with
 * s = (var + eps)^(-1/2), ds / dx_i = -s^3 (x_i - mean) / n. */
static void statistic_backward(const nf_exec *e, int64_t rows, int64_t inner)
{
    const float *mean = e->saved, *inv = e->saved + rows;
    int is_mean = e->attr[LN_OUTPUT] == LN_MEAN;
    #pragma omp parallel for if (rows * inner > NF_PARALLEL_MIN) schedule(static)
    for (int64_t r = 0; r < rows; r++) {
        double g = e->out_grad[r] / (double)inner, cube = (double)inv[r] * inv[r] * inv[r];
        for (int64_t i = 0; i < inner; i++)
            e->in_grad[0][r * inner + i] +=
                (float)(is_mean ? g : -g * cube * ((double)e->in[0][r * inner + i] - mean[r]));
    }
}

static void layernorm_backward(const nf_exec *e)
{
    int64_t inner = ln_inner(e), rows = e->batch * nf_shape_size(e->in_shape[0]) / inner;
    if (e->attr[LN_OUTPUT] != LN_VALUES) {
        if (e->in_grad[0])
            statistic_backward(e, rows, inner);
        return;
    }
    const float *w = e->attr[LN_AFFINE] != 0 ? e->param[0] : NULL;
    const float *mean = e->saved, *inv = e->saved + rows;
    if (w) /* parameter gradients: a sum over rows, kept serial for determinism */
        for (int64_t r = 0; r < rows; r++)
            for (int64_t i = 0; i < inner; i++) {
                float xh = (e->in[0][r * inner + i] - mean[r]) * inv[r], dy = e->out_grad[r * inner + i];
                e->param_grad[0][i] += dy * xh;
                e->param_grad[1][i] += dy;
            }
    if (!e->in_grad[0])
        return;
    #pragma omp parallel for if (rows * inner > NF_PARALLEL_MIN) schedule(static)
    for (int64_t r = 0; r < rows; r++) {
        const float *x = e->in[0] + r * inner, *dy = e->out_grad + r * inner;
        double sum = 0, sum_xh = 0;
        for (int64_t i = 0; i < inner; i++) {
            double g = w ? dy[i] * w[i] : dy[i];
            sum += g;
            sum_xh += g * (x[i] - mean[r]) * inv[r];
        }
        float mean_g = (float)(sum / (double)inner), mean_g_xh = (float)(sum_xh / (double)inner);
        for (int64_t i = 0; i < inner; i++) {
            float g = w ? dy[i] * w[i] : dy[i], xh = (x[i] - mean[r]) * inv[r];
            e->in_grad[0][r * inner + i] += inv[r] * (g - mean_g - xh * mean_g_xh);
        }
    }
}

const nf_op nf_op_layernorm = {
    .name = "layernorm", .summary = "layer normalization over the trailing axes (PyTorch's LayerNorm)",
    .min_inputs = 1, .max_inputs = 1, .attrs = layernorm_attrs, .n_attrs = NF_COUNT(layernorm_attrs),
    .flags = NF_OP_GRAD_NO_OUTPUT,
    .infer = layernorm_infer, .forward = layernorm_forward, .backward = layernorm_backward,
    .flops = nf_flops_per_element,
};
