/* nodeflow — losses: mse, softmax cross-entropy and binary cross-entropy
 * with logits. A loss turns a batch into one number (its mean by default,
 * as PyTorch's reduction='mean'); sums are taken in double. */
#include <math.h>

#include "nodes/op.h"

static const char *const reductions[] = {"mean", "sum", NULL};
enum { REDUCE_MEAN, REDUCE_SUM };

static const nf_attr_spec loss_attrs[] = {
    NF_ATTR_ENUM_DEF("reduction", REDUCE_MEAN, reductions, "mean or sum over the batch"),
};

/* The factor applied to a sum of n terms: 1/n for the mean, 1 for sum. */
static double reduce_factor(const nf_exec *e, int64_t n)
{
    return e->attr[0] == REDUCE_SUM ? 1.0 : 1.0 / (double)n;
}

/* The weight of element i (of n in the batch): its row's, or 1. */
static double weight_of(const nf_exec *e, int64_t i, int64_t n)
{
    return e->row_weight ? e->row_weight[i / (n / e->batch)] : 1.0;
}

static nf_status same_shapes_infer(nf_infer *ctx)
{
    if (!nf_shape_equal(ctx->in[0], ctx->in[1])) {
        char sa[64], sb[64];
        return nf_infer_fail(ctx, NF_ERR_SHAPE, "'%s' %s and target '%s' %s must have the same shape",
                             ctx->in_name[0], nf_shape_format(ctx->in[0], sa, sizeof sa), ctx->in_name[1],
                             nf_shape_format(ctx->in[1], sb, sizeof sb));
    }
    ctx->out = (nf_shape){0, {0}};
    return NF_OK;
}

/* ---- mse: L = f sum (p - t)^2, dL/dp = 2 f (p - t) -------------------- */

static void mse_forward(const nf_exec *e)
{
    int64_t n = e->batch * nf_shape_size(e->in_shape[0]);
    double sum = 0.0;
    for (int64_t i = 0; i < n; i++) {
        double d = (double)e->in[0][i] - e->in[1][i];
        sum += weight_of(e, i, n) * d * d;
    }
    e->out[0] = (float)(sum * reduce_factor(e, n));
}

static void mse_backward(const nf_exec *e)
{
    int64_t n = e->batch * nf_shape_size(e->in_shape[0]);
    float k = (float)(2.0 * reduce_factor(e, n) * e->out_grad[0]);
    for (int64_t i = 0; i < n; i++) {
        float d = (float)weight_of(e, i, n) * k * (e->in[0][i] - e->in[1][i]);
        if (e->in_grad[0])
            e->in_grad[0][i] += d;
        if (e->in_grad[1])
            e->in_grad[1][i] -= d;
    }
}

const nf_op nf_op_mse = {
    .name = "mse", .summary = "mean squared error between a prediction and a target",
    .min_inputs = 2, .max_inputs = 2, .attrs = loss_attrs, .n_attrs = NF_COUNT(loss_attrs),
    .flags = NF_OP_LOSS | NF_OP_GRAD_NO_OUTPUT,
    .infer = same_shapes_infer, .forward = mse_forward, .backward = mse_backward,
    .flops = nf_flops_per_input_element,
};

/* ---- softmax cross-entropy ------------------------------------------- */

/* Logits [..., C]; the target is either class indices [...] or
 * probabilities [..., C]. Rows are the leading axes flattened. */
static nf_status cross_entropy_infer(nf_infer *ctx)
{
    const nf_shape *x = ctx->in[0], *t = ctx->in[1];
    char sx[64], st[64], sc[64];
    if (x->rank < 1)
        return nf_infer_fail(ctx, NF_ERR_SHAPE, "logits '%s' need a class axis", ctx->in_name[0]);
    nf_shape classes_shape = *x;
    classes_shape.rank--;
    if (nf_shape_equal(t, &classes_shape))
        ctx->nondiff_inputs = 1u << 1; /* class indices get no gradient */
    else if (!nf_shape_equal(t, x))
        return nf_infer_fail(ctx, NF_ERR_SHAPE,
                             "target '%s' has shape %s; logits '%s' %s need class indices %s or probabilities %s",
                             ctx->in_name[1], nf_shape_format(t, st, sizeof st), ctx->in_name[0],
                             nf_shape_format(x, sx, sizeof sx), nf_shape_format(&classes_shape, sc, sizeof sc),
                             sx);
    ctx->out = (nf_shape){0, {0}};
    return NF_OK;
}

typedef struct ce_view {
    int64_t rows, classes;
    int indices;  /* targets are class indices */
} ce_view;

static ce_view ce_view_of(const nf_exec *e)
{
    int64_t classes = e->in_shape[0]->dim[e->in_shape[0]->rank - 1];
    return (ce_view){nf_rows(e, nf_shape_size(e->in_shape[0]), classes), classes,
                     e->in_shape[1]->rank < e->in_shape[0]->rank};
}

/* A class index as an array index, or -1 if it is not a whole number in
 * [0, classes). */
static int64_t class_of(float label, int64_t classes)
{
    if (!(label >= 0.0f && label < (float)classes) || label != floorf(label))
        return -1;
    return (int64_t)label;
}

/* Class target c: L_r = lse(x_r) - x_rc.
 * Probabilities t: L_r = sum_j t_j (lse(x_r) - x_rj).
 * A label that is not a valid class makes the loss NaN (reported by the
 * training loop) instead of reading out of bounds. */
static void cross_entropy_forward(const nf_exec *e)
{
    ce_view v = ce_view_of(e);
    double total = 0.0;
    for (int64_t r = 0; r < v.rows; r++) {
        const float *x = e->in[0] + r * v.classes;
        double lse = nf_logsumexp(x, v.classes), row = 0.0;
        if (v.indices) {
            int64_t c = class_of(e->in[1][r], v.classes);
            row = c < 0 ? NAN : lse - x[c];
        } else {
            const float *t = e->in[1] + r * v.classes;
            for (int64_t j = 0; j < v.classes; j++)
                row += t[j] * (lse - x[j]);
        }
        double w = weight_of(e, r, v.rows);
        total += w == 0.0 ? 0.0 : w * row; /* past a sequence's end even a bad label counts for nothing */
    }
    e->out[0] = (float)(total * reduce_factor(e, v.rows));
}

/* dx_j = f g (softmax_j sum_k t_k - t_j); dt_j = -f g log_softmax_j */
static void cross_entropy_backward(const nf_exec *e)
{
    ce_view v = ce_view_of(e);
    for (int64_t r = 0; r < v.rows; r++) {
        double k = reduce_factor(e, v.rows) * e->out_grad[0] * weight_of(e, r, v.rows);
        const float *x = e->in[0] + r * v.classes;
        double lse = nf_logsumexp(x, v.classes);
        double tsum = 1.0;
        int64_t c = -1;
        const float *t = NULL;
        if (v.indices) {
            c = class_of(e->in[1][r], v.classes);
            if (c < 0)
                continue;
        } else {
            t = e->in[1] + r * v.classes;
            tsum = 0.0;
            for (int64_t j = 0; j < v.classes; j++)
                tsum += t[j];
        }
        for (int64_t j = 0; j < v.classes; j++) {
            double log_p = x[j] - lse, tj = t ? t[j] : (j == c);
            if (e->in_grad[0])
                e->in_grad[0][r * v.classes + j] += (float)(k * (exp(log_p) * tsum - tj));
            if (t && e->in_grad[1])
                e->in_grad[1][r * v.classes + j] += (float)(-k * log_p);
        }
    }
}

const nf_op nf_op_cross_entropy = {
    .name = "cross_entropy", .summary = "softmax cross-entropy of logits against class indices or probabilities",
    .min_inputs = 2, .max_inputs = 2, .attrs = loss_attrs, .n_attrs = NF_COUNT(loss_attrs),
    .flags = NF_OP_LOSS | NF_OP_READS_LOGITS | NF_OP_GRAD_NO_OUTPUT, .infer = cross_entropy_infer,
    .forward = cross_entropy_forward, .backward = cross_entropy_backward,
    .flops = nf_flops_per_input_element,
};

/* ---- binary cross-entropy with logits --------------------------------- */

/* L = f sum [max(x, 0) - x t + log(1 + exp(-|x|))] (the stable form of
 * -t log s(x) - (1 - t) log(1 - s(x))); dL/dx = f (s(x) - t), dL/dt = -f x */
static void bce_forward(const nf_exec *e)
{
    int64_t n = e->batch * nf_shape_size(e->in_shape[0]);
    double sum = 0.0;
    for (int64_t i = 0; i < n; i++) {
        double x = e->in[0][i], t = e->in[1][i];
        sum += weight_of(e, i, n) * (fmax(x, 0.0) - x * t + log1p(exp(-fabs(x))));
    }
    e->out[0] = (float)(sum * reduce_factor(e, n));
}

static void bce_backward(const nf_exec *e)
{
    int64_t n = e->batch * nf_shape_size(e->in_shape[0]);
    for (int64_t i = 0; i < n; i++) {
        double x = e->in[0][i], t = e->in[1][i], k = reduce_factor(e, n) * e->out_grad[0] * weight_of(e, i, n);
        if (e->in_grad[0])
            e->in_grad[0][i] += (float)(k * (1.0 / (1.0 + exp(-x)) - t));
        if (e->in_grad[1])
            e->in_grad[1][i] += (float)(-k * x);
    }
}

const nf_op nf_op_bce_with_logits = {
    .name = "bce_with_logits", .summary = "binary cross-entropy of sigmoid(logits) against targets in [0, 1]",
    .min_inputs = 2, .max_inputs = 2, .attrs = loss_attrs, .n_attrs = NF_COUNT(loss_attrs),
    .flags = NF_OP_LOSS | NF_OP_READS_LOGITS | NF_OP_GRAD_NO_OUTPUT,
    .infer = same_shapes_infer, .forward = bce_forward, .backward = bce_backward,
    .flops = nf_flops_per_input_element,
};
