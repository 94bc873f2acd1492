/* nodeflow — activations: relu, leaky_relu, sigmoid, tanh (element-wise)
 * and softmax, log_softmax (over the last axis). */
#include <math.h>

#include "kernels/kernels.h"
#include "nodes/op.h"

static int64_t elements(const nf_exec *e) { return e->batch * nf_shape_size(e->out_shape); }

/* Kernels over n contiguous elements; the op functions below split the
 * elements across threads (nf_thread_range) and call them per chunk. */

/* relu: y = max(x, 0); dx += g [y > 0] */
static void relu_kernel(int64_t n, const float *restrict x, float *restrict y)
{
    for (int64_t i = 0; i < n; i++)
        y[i] = x[i] > 0.0f ? x[i] : 0.0f;
}

static void relu_grad_kernel(int64_t n, const float *restrict y, const float *restrict g, float *restrict dx)
{
    for (int64_t i = 0; i < n; i++) {
        float gi = g[i]; /* loaded unconditionally, so the select vectorizes */
        dx[i] += y[i] > 0.0f ? gi : 0.0f;
    }
}

/* leaky_relu: y = x if x > 0 else slope x */
static void leaky_kernel(int64_t n, const float *restrict x, float *restrict y, float slope)
{
    for (int64_t i = 0; i < n; i++) { /* max(x, 0) + slope min(x, 0): selects, so it vectorizes */
        float xi = x[i], pos = xi > 0.0f ? xi : 0.0f, neg = xi > 0.0f ? 0.0f : xi;
        y[i] = pos + slope * neg;
    }
}

static void leaky_grad_kernel(int64_t n, const float *restrict x, const float *restrict g, float *restrict dx,
                              float slope)
{
    for (int64_t i = 0; i < n; i++) {
        float gi = g[i], pos = x[i] > 0.0f ? gi : 0.0f, neg = x[i] > 0.0f ? 0.0f : gi;
        dx[i] += pos + slope * neg;
    }
}

/* sigmoid: y = 1 / (1 + exp(-x)) (kernels' sigmoid); dy/dx = y (1 - y) */
static void sigmoid_grad_kernel(int64_t n, const float *restrict y, const float *restrict g, float *restrict dx)
{
    for (int64_t i = 0; i < n; i++)
        dx[i] += g[i] * y[i] * (1.0f - y[i]);
}

/* tanh (kernels' tanh): dy/dx = 1 - y^2 */
static void tanh_grad_kernel(int64_t n, const float *restrict y, const float *restrict g, float *restrict dx)
{
    for (int64_t i = 0; i < n; i++)
        dx[i] += g[i] * (1.0f - y[i] * y[i]);
}

/* Forward: y = f(x) over this thread's chunk. */
#define FORWARD_OP(name, kernel, ...)                                     \
    static void name(const nf_exec *e)                                    \
    {                                                                     \
        int64_t n = elements(e);                                          \
        _Pragma("omp parallel if (n > NF_PARALLEL_MIN)")                  \
        {                                                                 \
            int64_t a, b;                                                 \
            nf_thread_range(n, &a, &b);                                   \
            kernel(b - a, e->in[0] + a, e->out + a, ##__VA_ARGS__);       \
        }                                                                 \
    }

/* Backward: dx += g * f'(.), where f' is computed from `from` (the
 * node's output or its input). */
#define BACKWARD_OP(name, kernel, from, ...)                              \
    static void name(const nf_exec *e)                                    \
    {                                                                     \
        int64_t n = elements(e);                                          \
        if (!e->in_grad[0])                                               \
            return;                                                       \
        _Pragma("omp parallel if (n > NF_PARALLEL_MIN)")                  \
        {                                                                 \
            int64_t a, b;                                                 \
            nf_thread_range(n, &a, &b);                                   \
            kernel(b - a, (from) + a, e->out_grad + a, e->in_grad[0] + a, ##__VA_ARGS__); \
        }                                                                 \
    }

/* erf: y = erf(x); dy/dx = 2 / sqrt(pi) exp(-x^2) (ONNX's Erf, the
 * building block of exported GELUs) */
static void erf_kernel(int64_t n, const float *restrict x, float *restrict y)
{
    for (int64_t i = 0; i < n; i++)
        y[i] = erff(x[i]);
}

static void erf_grad_kernel(int64_t n, const float *restrict x, const float *restrict g, float *restrict dx)
{
    const float two_over_sqrt_pi = 1.12837916709551257f;
    for (int64_t i = 0; i < n; i++)
        dx[i] += g[i] * two_over_sqrt_pi * expf(-x[i] * x[i]);
}

/* sqrt, exp, log, abs (ONNX's Sqrt, Exp, Log, Abs): dy/dx = 1 / (2 y),
 * y, 1 / x, and the sign of x (0 at 0, as PyTorch's); NaN outside the
 * domain, as in C and PyTorch. */
static void sqrt_kernel(int64_t n, const float *restrict x, float *restrict y)
{
    for (int64_t i = 0; i < n; i++)
        y[i] = sqrtf(x[i]);
}

static void sqrt_grad_kernel(int64_t n, const float *restrict y, const float *restrict g, float *restrict dx)
{
    for (int64_t i = 0; i < n; i++)
        dx[i] += g[i] * 0.5f / y[i];
}

static void exp_kernel(int64_t n, const float *restrict x, float *restrict y)
{
    for (int64_t i = 0; i < n; i++)
        y[i] = expf(x[i]);
}

static void exp_grad_kernel(int64_t n, const float *restrict y, const float *restrict g, float *restrict dx)
{
    for (int64_t i = 0; i < n; i++)
        dx[i] += g[i] * y[i];
}

static void log_kernel(int64_t n, const float *restrict x, float *restrict y)
{
    for (int64_t i = 0; i < n; i++)
        y[i] = logf(x[i]);
}

static void log_grad_kernel(int64_t n, const float *restrict x, const float *restrict g, float *restrict dx)
{
    for (int64_t i = 0; i < n; i++)
        dx[i] += g[i] / x[i];
}

static void abs_kernel(int64_t n, const float *restrict x, float *restrict y)
{
    for (int64_t i = 0; i < n; i++)
        y[i] = fabsf(x[i]);
}

static void abs_grad_kernel(int64_t n, const float *restrict x, const float *restrict g, float *restrict dx)
{
    for (int64_t i = 0; i < n; i++)
        dx[i] += x[i] > 0.0f ? g[i] : x[i] < 0.0f ? -g[i] : 0.0f;
}

/* elu: y = x if x > 0 else alpha (exp(x) - 1); dy/dx = 1 or alpha exp(x) */
static void elu_kernel(int64_t n, const float *restrict x, float *restrict y, float alpha)
{
    for (int64_t i = 0; i < n; i++)
        y[i] = x[i] > 0.0f ? x[i] : alpha * expm1f(x[i]);
}

static void elu_grad_kernel(int64_t n, const float *restrict x, const float *restrict g, float *restrict dx,
                            float alpha)
{
    for (int64_t i = 0; i < n; i++)
        dx[i] += x[i] > 0.0f ? g[i] : g[i] * alpha * expf(x[i]);
}

/* gelu, exact: y = x Phi(x) = 0.5 x (1 + erf(x / sqrt 2));
 * dy/dx = Phi(x) + x phi(x), phi(x) = exp(-x^2 / 2) / sqrt(2 pi).
 * gelu, tanh form: y = 0.5 x (1 + tanh(u)), u = sqrt(2/pi) (x + 0.044715 x^3);
 * dy/dx = 0.5 (1 + t) + 0.5 x (1 - t^2) sqrt(2/pi) (1 + 3 0.044715 x^2). */
#define SQRT_2_OVER_PI 0.7978845608028654f
#define GELU_C 0.044715f

static void gelu_kernel(int64_t n, const float *restrict x, float *restrict y, int tanh_form)
{
    for (int64_t i = 0; i < n; i++) {
        float v = x[i];
        y[i] = tanh_form ? 0.5f * v * (1.0f + tanhf(SQRT_2_OVER_PI * (v + GELU_C * v * v * v)))
                         : 0.5f * v * (1.0f + erff(v * 0.70710678118654752f));
    }
}

static void gelu_grad_kernel(int64_t n, const float *restrict x, const float *restrict g, float *restrict dx,
                             int tanh_form)
{
    for (int64_t i = 0; i < n; i++) {
        float v = x[i], d;
        if (tanh_form) {
            float t = tanhf(SQRT_2_OVER_PI * (v + GELU_C * v * v * v));
            d = 0.5f * (1.0f + t) + 0.5f * v * (1.0f - t * t) * SQRT_2_OVER_PI * (1.0f + 3.0f * GELU_C * v * v);
        } else {
            d = 0.5f * (1.0f + erff(v * 0.70710678118654752f)) + v * expf(-0.5f * v * v) * 0.3989422804014327f;
        }
        dx[i] += g[i] * d;
    }
}

/* silu (swish): y = x s(x); dy/dx = s(x) (1 + x (1 - s(x))) */
static void silu_kernel(int64_t n, const float *restrict x, float *restrict y)
{
    for (int64_t i = 0; i < n; i++)
        y[i] = x[i] / (1.0f + expf(-x[i]));
}

static void silu_grad_kernel(int64_t n, const float *restrict x, const float *restrict g, float *restrict dx)
{
    for (int64_t i = 0; i < n; i++) {
        float s = 1.0f / (1.0f + expf(-x[i]));
        dx[i] += g[i] * s * (1.0f + x[i] * (1.0f - s));
    }
}

/* softplus: y = log(1 + exp(beta x)) / beta, or x where beta x > threshold;
 * dy/dx = s(beta x), or 1 */
static void softplus_kernel(int64_t n, const float *restrict x, float *restrict y, float beta, float threshold)
{
    for (int64_t i = 0; i < n; i++)
        y[i] = x[i] * beta > threshold ? x[i] : log1pf(expf(beta * x[i])) / beta;
}

static void softplus_grad_kernel(int64_t n, const float *restrict x, const float *restrict g, float *restrict dx,
                                 float beta, float threshold)
{
    for (int64_t i = 0; i < n; i++)
        dx[i] += x[i] * beta > threshold ? g[i] : g[i] / (1.0f + expf(-beta * x[i]));
}

/* hardtanh: y = min(max(x, lo), hi); dy/dx = 1 for lo < x < hi, else 0 */
static void hardtanh_kernel(int64_t n, const float *restrict x, float *restrict y, float lo, float hi)
{
    for (int64_t i = 0; i < n; i++) {
        float v = x[i] < lo ? lo : x[i];
        y[i] = v > hi ? hi : v;
    }
}

static void hardtanh_grad_kernel(int64_t n, const float *restrict x, const float *restrict g, float *restrict dx,
                                 float lo, float hi)
{
    for (int64_t i = 0; i < n; i++) {
        float gi = g[i];
        dx[i] += x[i] > lo && x[i] < hi ? gi : 0.0f;
    }
}

FORWARD_OP(relu_forward, relu_kernel)
BACKWARD_OP(relu_backward, relu_grad_kernel, e->out)
FORWARD_OP(leaky_relu_forward, leaky_kernel, (float)e->attr[0])
BACKWARD_OP(leaky_relu_backward, leaky_grad_kernel, e->in[0], (float)e->attr[0])
FORWARD_OP(sigmoid_forward, e->kernels->sigmoid)
BACKWARD_OP(sigmoid_backward, sigmoid_grad_kernel, e->out)
FORWARD_OP(tanh_forward, e->kernels->tanh)
BACKWARD_OP(tanh_backward, tanh_grad_kernel, e->out)
FORWARD_OP(elu_forward, elu_kernel, (float)e->attr[0])
BACKWARD_OP(elu_backward, elu_grad_kernel, e->in[0], (float)e->attr[0])
FORWARD_OP(erf_forward, erf_kernel)
BACKWARD_OP(erf_backward, erf_grad_kernel, e->in[0])
FORWARD_OP(sqrt_forward, sqrt_kernel)
BACKWARD_OP(sqrt_backward, sqrt_grad_kernel, e->out)
FORWARD_OP(exp_forward, exp_kernel)
BACKWARD_OP(exp_backward, exp_grad_kernel, e->out)
FORWARD_OP(log_forward, log_kernel)
BACKWARD_OP(log_backward, log_grad_kernel, e->in[0])
FORWARD_OP(abs_forward, abs_kernel)
BACKWARD_OP(abs_backward, abs_grad_kernel, e->in[0])
FORWARD_OP(gelu_loops_forward, gelu_kernel, e->attr[0] != 0)
BACKWARD_OP(gelu_loops_backward, gelu_grad_kernel, e->in[0], e->attr[0] != 0)
FORWARD_OP(silu_forward, silu_kernel)
BACKWARD_OP(silu_backward, silu_grad_kernel, e->in[0])
FORWARD_OP(softplus_forward, softplus_kernel, (float)e->attr[0], (float)e->attr[1])
BACKWARD_OP(softplus_backward, softplus_grad_kernel, e->in[0], (float)e->attr[0], (float)e->attr[1])
FORWARD_OP(hardtanh_forward, hardtanh_kernel, (float)e->attr[0], (float)e->attr[1])
BACKWARD_OP(hardtanh_backward, hardtanh_grad_kernel, e->in[0], (float)e->attr[0], (float)e->attr[1])
FORWARD_OP(relu6_forward, hardtanh_kernel, 0.0f, 6.0f)
BACKWARD_OP(relu6_backward, hardtanh_grad_kernel, e->in[0], 0.0f, 6.0f)

static const nf_attr_spec leaky_relu_attrs[] = {
    NF_ATTR_FLOAT_DEF("slope", 0.01, -1e6, 1e6, "slope for x < 0"),
};

const nf_op nf_op_relu = {
    .name = "relu", .summary = "max(x, 0)", .min_inputs = 1, .max_inputs = 1,
    .flags = NF_OP_GRAD_NO_INPUTS,
    .infer = nf_infer_same_shape, .forward = relu_forward, .backward = relu_backward,
    .flops = nf_flops_per_element,
};

const nf_op nf_op_leaky_relu = {
    .name = "leaky_relu", .summary = "x if x > 0 else slope * x", .min_inputs = 1, .max_inputs = 1,
    .attrs = leaky_relu_attrs, .n_attrs = NF_COUNT(leaky_relu_attrs),
    .flags = NF_OP_GRAD_NO_OUTPUT,
    .infer = nf_infer_same_shape, .forward = leaky_relu_forward, .backward = leaky_relu_backward,
    .flops = nf_flops_per_element,
};

const nf_op nf_op_sigmoid = {
    .name = "sigmoid", .summary = "1 / (1 + exp(-x))", .min_inputs = 1, .max_inputs = 1,
    .flags = NF_OP_GRAD_NO_INPUTS,
    .infer = nf_infer_same_shape, .forward = sigmoid_forward, .backward = sigmoid_backward,
    .flops = nf_flops_per_element,
};

const nf_op nf_op_tanh = {
    .name = "tanh", .summary = "hyperbolic tangent", .min_inputs = 1, .max_inputs = 1,
    .flags = NF_OP_GRAD_NO_INPUTS,
    .infer = nf_infer_same_shape, .forward = tanh_forward, .backward = tanh_backward,
    .flops = nf_flops_per_element,
};

static const nf_attr_spec elu_attrs[] = {NF_ATTR_FLOAT_DEF("alpha", 1, -1e6, 1e6, "scale of the negative part")};
static const char *const gelu_forms[] = {"none", "tanh", NULL};
static const nf_attr_spec gelu_attrs[] = {
    NF_ATTR_ENUM_DEF("approximate", 0, gelu_forms, "none (exact, with erf) or tanh"),
};
static const nf_attr_spec softplus_attrs[] = {
    NF_ATTR_FLOAT_DEF("beta", 1, 1e-6, 1e6, "sharpness"),
    NF_ATTR_FLOAT_DEF("threshold", 20, -1e6, 1e6, "above beta x > threshold the output is x"),
};
static const nf_attr_spec hardtanh_attrs[] = {
    NF_ATTR_FLOAT_DEF("min_val", -1, -1e30, 1e30, "lower bound"),
    NF_ATTR_FLOAT_DEF("max_val", 1, -1e30, 1e30, "upper bound"),
};

/* gelu through the kernel set's element-wise kernel where it has one
 * (oneDNN's), prepared for the plan's full batch; other runs, and other
 * sets, use the loops above. */
static void *gelu_prepare(nf_prepare *ctx)
{
    const nf_kernels *k = ctx->kernels;
    if (!k->eltwise_prepare)
        return NULL;
    int fn = ctx->node->attr[0] != 0 ? NF_ELTWISE_GELU_TANH : NF_ELTWISE_GELU_ERF;
    size_t scratch = 0;
    nf_eltwise_kernel *state =
        k->eltwise_prepare(fn, ctx->capacity * nf_shape_size(&ctx->node->shape), ctx->backward, &scratch);
    ctx->workspace = (int64_t)((scratch + sizeof(float) - 1) / sizeof(float));
    return state;
}

static void gelu_release(const nf_kernels *kernels, void *state) { kernels->eltwise_release(state); }

static const char *gelu_describe(const nf_kernels *kernels, const void *state)
{
    return kernels->eltwise_name(state);
}

static void gelu_forward(const nf_exec *e)
{
    if (!nf_uses_prepared(e))
        gelu_loops_forward(e);
    else if (!e->kernels->eltwise_forward(e->state, e->in[0], e->out, e->workspace))
        nf_fill_nan(e->out, elements(e));
}

static void gelu_backward(const nf_exec *e)
{
    if (!nf_uses_prepared(e))
        gelu_loops_backward(e);
    else if (e->in_grad[0] &&
             !e->kernels->eltwise_backward(e->state, e->in[0], e->out_grad, e->in_grad[0], e->workspace))
        nf_fill_nan(e->in_grad[0], elements(e));
}

/* PyTorch's Hardtanh asserts max_val > min_val. */
static nf_status hardtanh_infer(nf_infer *ctx)
{
    if (!(ctx->attr[0] < ctx->attr[1]))
        return nf_infer_fail(ctx, NF_ERR_INVALID_ARGUMENT, "min_val (%.15g) must be less than max_val (%.15g)",
                             ctx->attr[0], ctx->attr[1]);
    return nf_infer_same_shape(ctx);
}

/* Element-wise activations that read their input in backward. */
#define INPUT_ACTIVATION(var, nm, text, attr_table, infer_fn, fwd, bwd)                    \
    const nf_op var = {                                                                  \
        .name = nm, .summary = text, .min_inputs = 1, .max_inputs = 1,                   \
        .attrs = attr_table, .n_attrs = NF_COUNT(attr_table),                            \
        .flags = NF_OP_GRAD_NO_OUTPUT, .infer = infer_fn,                                \
        .forward = fwd, .backward = bwd, .flops = nf_flops_per_element,                  \
    }

INPUT_ACTIVATION(nf_op_elu, "elu", "x if x > 0 else alpha (exp(x) - 1)", elu_attrs, nf_infer_same_shape,
                 elu_forward, elu_backward);
const nf_op nf_op_gelu = {
    .name = "gelu", .summary = "x Phi(x), exactly or in the tanh form", .min_inputs = 1, .max_inputs = 1,
    .attrs = gelu_attrs, .n_attrs = NF_COUNT(gelu_attrs),
    .flags = NF_OP_GRAD_NO_OUTPUT, .infer = nf_infer_same_shape,
    .forward = gelu_forward, .backward = gelu_backward, .flops = nf_flops_per_element,
    .prepare = gelu_prepare, .release = gelu_release, .describe = gelu_describe,
};
INPUT_ACTIVATION(nf_op_softplus, "softplus", "log(1 + exp(beta x)) / beta", softplus_attrs, nf_infer_same_shape,
                 softplus_forward, softplus_backward);
INPUT_ACTIVATION(nf_op_hardtanh, "hardtanh", "x clamped to [min_val, max_val]", hardtanh_attrs, hardtanh_infer,
                 hardtanh_forward, hardtanh_backward);

const nf_op nf_op_silu = {
    .name = "silu", .summary = "x sigmoid(x) (swish)", .min_inputs = 1, .max_inputs = 1,
    .flags = NF_OP_GRAD_NO_OUTPUT, .infer = nf_infer_same_shape,
    .forward = silu_forward, .backward = silu_backward, .flops = nf_flops_per_element,
};


/* Element-wise functions without attributes, their backward reading the
 * output (flags NF_OP_GRAD_NO_INPUTS) or the input (NF_OP_GRAD_NO_OUTPUT). */
#define UNARY_OP(var, nm, text, grad_flag, fwd, bwd)                                                 \
    const nf_op var = {                                                                            \
        .name = nm, .summary = text, .min_inputs = 1, .max_inputs = 1, .flags = grad_flag,          \
        .infer = nf_infer_same_shape, .forward = fwd, .backward = bwd, .flops = nf_flops_per_element, \
    }

UNARY_OP(nf_op_erf, "erf", "the error function erf(x)", NF_OP_GRAD_NO_OUTPUT, erf_forward, erf_backward);
UNARY_OP(nf_op_sqrt, "sqrt", "the square root (NaN below 0)", NF_OP_GRAD_NO_INPUTS, sqrt_forward, sqrt_backward);
UNARY_OP(nf_op_exp, "exp", "e to the x", NF_OP_GRAD_NO_INPUTS, exp_forward, exp_backward);
UNARY_OP(nf_op_log, "log", "the natural logarithm (NaN below 0, -inf at 0)", NF_OP_GRAD_NO_OUTPUT, log_forward,
         log_backward);
UNARY_OP(nf_op_abs, "abs", "|x|", NF_OP_GRAD_NO_OUTPUT, abs_forward, abs_backward);

const nf_op nf_op_relu6 = {
    .name = "relu6", .summary = "min(max(x, 0), 6)", .min_inputs = 1, .max_inputs = 1,
    .flags = NF_OP_GRAD_NO_OUTPUT, .infer = nf_infer_same_shape,
    .forward = relu6_forward, .backward = relu6_backward, .flops = nf_flops_per_element,
};

/* ---- softmax and log_softmax over an axis -----------------------------
 * Seen from the axis, the input is `outer` rows (batch and the axes before
 * it) of `len` values `inner` floats apart (inner: the axes after it). An
 * optional second input is an additive mask (its shape the input's or a
 * trailing part of it, as in add; -inf removes a position); causal=true
 * removes, over the last two axes [.., T, S], every position j > i (as
 * PyTorch's is_causal: the lower triangle, from the top left). A row whose
 * every position is removed gives zeros from softmax and -inf from
 * log_softmax (PyTorch gives NaN). Each sample has its own mask (an input,
 * or a constant node); it receives no gradient. */

enum { SM_AXIS, SM_CAUSAL };

static const nf_attr_spec softmax_attrs[] = {
    [SM_AXIS] = NF_ATTR_INT_DEF("axis", -1, -NF_MAX_RANK, NF_MAX_RANK - 1,
                                "axis normalised over (negative: from the end)"),
    [SM_CAUSAL] = NF_ATTR_BOOL_DEF("causal", 0, "over the last axis of [.., T, S]: remove positions j > i"),
};

static int softmax_axis(double attr, int rank) { return attr < 0 ? rank + (int)attr : (int)attr; }

static nf_status softmax_infer(nf_infer *ctx)
{
    const nf_shape *x = ctx->in[0];
    int axis = softmax_axis(ctx->attr[SM_AXIS], x->rank);
    if (x->rank < 1)
        return nf_infer_fail(ctx, NF_ERR_SHAPE, "input '%s' is a scalar per sample; need an axis", ctx->in_name[0]);
    if (axis < 0 || axis >= x->rank)
        return nf_infer_fail(ctx, NF_ERR_SHAPE, "axis %g is outside the %d axes of '%s'", ctx->attr[SM_AXIS],
                             x->rank, ctx->in_name[0]);
    if (ctx->attr[SM_CAUSAL] != 0 && (x->rank < 2 || axis != x->rank - 1))
        return nf_infer_fail(ctx, NF_ERR_SHAPE,
                             "causal=true needs the last axis of a [.., T, S] input ('%s' is rank %d, axis %d)",
                             ctx->in_name[0], x->rank, axis);
    if (ctx->n_inputs > 1) {
        const nf_shape *m = ctx->in[1];
        int fits = m->rank <= x->rank;
        for (int i = 0; fits && i < m->rank; i++)
            fits = m->dim[m->rank - 1 - i] == x->dim[x->rank - 1 - i];
        if (!fits) {
            char a[64], b[64];
            return nf_infer_fail(ctx, NF_ERR_SHAPE, "mask '%s' %s must equal '%s' %s or its trailing part",
                                 ctx->in_name[1], nf_shape_format(m, b, sizeof b), ctx->in_name[0],
                                 nf_shape_format(x, a, sizeof a));
        }
        ctx->nondiff_inputs = 1u << 1;
    }
    ctx->out = *x;
    return NF_OK;
}

typedef struct axis_view {
    int64_t outer, len, inner;
    int64_t sample;      /* floats of x per sample */
    int64_t mask_size;   /* floats of the mask per sample (0: no mask) */
    int64_t t, s;        /* causal: the last two axes; t 0: not causal */
} axis_view;

static axis_view axis_view_of(const nf_exec *e)
{
    const nf_shape *x = e->out_shape;
    int axis = softmax_axis(e->attr[SM_AXIS], x->rank);
    axis_view v = {e->batch, x->dim[axis], 1, nf_shape_size(x), 0, 0, 0};
    for (int i = 0; i < axis; i++)
        v.outer *= x->dim[i];
    for (int i = axis + 1; i < x->rank; i++)
        v.inner *= x->dim[i];
    if (e->n_inputs > 1)
        v.mask_size = nf_shape_size(e->in_shape[1]);
    if (e->attr[SM_CAUSAL] != 0) {
        v.t = x->dim[x->rank - 2];
        v.s = x->dim[x->rank - 1];
    }
    return v;
}

/* The mask's value for element f of x (counted over the batch): the
 * sample's own mask, repeated over x's leading axes as in add. */
static float mask_at(const nf_exec *e, const axis_view *v, int64_t f)
{
    return e->in[1][f / v->sample * v->mask_size + f % v->sample % v->mask_size];
}

/* Line (r, i) of the view: writes log softmax of x + mask (masked and
 * causally removed positions -inf) into y, `inner` apart. */
static void line_log_softmax(const nf_exec *e, const axis_view *v, int64_t r, int64_t i)
{
    int64_t base = r * v->len * v->inner + i, n = v->len, step = v->inner;
    const float *x = e->in[0] + base;
    float *y = e->out + base;
    int64_t visible = n;
    if (v->t) /* causal: the last axis is this line (inner 1), row r % t of the [t, s] matrix */
        visible = r % v->t + 1 < n ? r % v->t + 1 : n;
    float top = -INFINITY;
    for (int64_t j = 0; j < visible; j++) {
        float z = x[j * step] + (v->mask_size ? mask_at(e, v, base + j * step) : 0.0f);
        y[j * step] = z;
        top = z > top ? z : top;
    }
    for (int64_t j = visible; j < n; j++)
        y[j * step] = -INFINITY;
    if (top == -INFINITY) { /* nothing visible: zeros (and exp gives 0 for log_softmax's -inf) */
        for (int64_t j = 0; j < n; j++)
            y[j * step] = -INFINITY;
        return;
    }
    double sum = 0.0;
    for (int64_t j = 0; j < visible; j++)
        sum += exp((double)(y[j * step] - top));
    float lse = top + (float)log(sum);
    for (int64_t j = 0; j < visible; j++)
        y[j * step] -= lse;
}

static void axis_softmax_forward(const nf_exec *e, int take_exp)
{
    axis_view v = axis_view_of(e);
    int64_t lines = v.outer * v.inner;
    #pragma omp parallel for if (lines * v.len > NF_PARALLEL_MIN) schedule(static)
    for (int64_t l = 0; l < lines; l++) {
        int64_t r = l / v.inner, i = l % v.inner;
        line_log_softmax(e, &v, r, i);
        if (take_exp) {
            float *y = e->out + r * v.len * v.inner + i;
            for (int64_t j = 0; j < v.len; j++)
                y[j * v.inner] = expf(y[j * v.inner]);
        }
    }
}

/* softmax: dx_j += y_j (g_j - sum_k g_k y_k);
 * log_softmax: dx_j += g_j - softmax_j sum_k g_k (removed positions,
 * where y is 0 or -inf, get nothing) */
static void axis_softmax_backward(const nf_exec *e, int is_softmax)
{
    axis_view v = axis_view_of(e);
    if (!e->in_grad[0])
        return;
    int64_t lines = v.outer * v.inner;
    #pragma omp parallel for if (lines * v.len > NF_PARALLEL_MIN) schedule(static)
    for (int64_t l = 0; l < lines; l++) {
        int64_t base = l / v.inner * v.len * v.inner + l % v.inner, step = v.inner;
        const float *y = e->out + base, *g = e->out_grad + base;
        float *dx = e->in_grad[0] + base;
        double acc = 0.0;
        for (int64_t j = 0; j < v.len; j++)
            acc += is_softmax ? (double)g[j * step] * y[j * step] : (y[j * step] == -INFINITY ? 0.0 : g[j * step]);
        for (int64_t j = 0; j < v.len; j++) {
            float yj = y[j * step];
            if (is_softmax)
                dx[j * step] += yj * (g[j * step] - (float)acc);
            else if (yj != -INFINITY)
                dx[j * step] += g[j * step] - expf(yj) * (float)acc;
        }
    }
}

static void softmax_forward(const nf_exec *e) { axis_softmax_forward(e, 1); }
static void softmax_backward(const nf_exec *e) { axis_softmax_backward(e, 1); }
static void log_softmax_forward(const nf_exec *e) { axis_softmax_forward(e, 0); }
static void log_softmax_backward(const nf_exec *e) { axis_softmax_backward(e, 0); }

const nf_op nf_op_softmax = {
    .name = "softmax", .summary = "exp(x) / sum(exp(x)) over an axis (default the last), with an optional mask",
    .min_inputs = 1, .max_inputs = 2, .attrs = softmax_attrs, .n_attrs = NF_COUNT(softmax_attrs),
    .flags = NF_OP_GRAD_NO_INPUTS,
    .infer = softmax_infer, .forward = softmax_forward, .backward = softmax_backward,
    .flops = nf_flops_per_element,
};

const nf_op nf_op_log_softmax = {
    .name = "log_softmax", .summary = "x - logsumexp(x) over an axis (default the last), with an optional mask",
    .min_inputs = 1, .max_inputs = 2, .attrs = softmax_attrs, .n_attrs = NF_COUNT(softmax_attrs),
    .flags = NF_OP_GRAD_NO_INPUTS,
    .infer = softmax_infer, .forward = log_softmax_forward, .backward = log_softmax_backward,
    .flops = nf_flops_per_element,
};
