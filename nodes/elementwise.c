/* nodeflow — element-wise arithmetic: add, sub, mul, div (with b repeated
 * over a's leading axes when b's shape is a trailing part of a's), scale
 * and mod. */
#include <math.h>

#include "nodes/op.h"

static nf_status binary_infer(nf_infer *ctx)
{
    const nf_shape *a = ctx->in[0], *b = ctx->in[1];
    int fits = b->rank <= a->rank;
    for (int i = 0; fits && i < b->rank; i++)
        fits = b->dim[b->rank - 1 - i] == a->dim[a->rank - 1 - i];
    if (!fits) {
        char sa[64], sb[64];
        return nf_infer_fail(ctx, NF_ERR_SHAPE,
                             "'%s' %s and '%s' %s: the second shape must equal the first or its trailing part",
                             ctx->in_name[0], nf_shape_format(a, sa, sizeof sa), ctx->in_name[1],
                             nf_shape_format(b, sb, sizeof sb));
    }
    ctx->out = *a;
    return NF_OK;
}

/* Per sample, a has na elements and b has nb; a is viewed as rows of nb
 * ("reps" rows per sample) and b's sample row is used for each. */
typedef struct broadcast {
    int64_t na, nb, reps, rows;
} broadcast;

static broadcast broadcast_of(const nf_exec *e)
{
    broadcast bc;
    bc.na = nf_shape_size(e->in_shape[0]);
    bc.nb = nf_shape_size(e->in_shape[1]);
    bc.reps = bc.na / bc.nb;
    bc.rows = e->batch * bc.reps;
    return bc;
}

typedef enum { OP_ADD, OP_SUB, OP_MUL, OP_DIV } binary_kind;

static float combine(binary_kind kind, float a, float b)
{
    switch (kind) {
    case OP_ADD: return a + b;
    case OP_SUB: return a - b;
    case OP_MUL: return a * b;
    default: return a / b;
    }
}

/* d(a op b)/da: 1, 1, b, 1 / b */
static float grad_a(binary_kind kind, float b) { return kind == OP_MUL ? b : kind == OP_DIV ? 1.0f / b : 1.0f; }

/* d(a op b)/db: 1, -1, a, -a / b^2 */
static float grad_b(binary_kind kind, float a, float b)
{
    return kind == OP_ADD ? 1.0f : kind == OP_SUB ? -1.0f : kind == OP_MUL ? a : -a / (b * b);
}

static void binary_forward(const nf_exec *e, binary_kind kind)
{
    broadcast bc = broadcast_of(e);
    #pragma omp parallel for if (e->batch * bc.na > NF_PARALLEL_MIN) schedule(static)
    for (int64_t r = 0; r < bc.rows; r++) {
        const float *a = e->in[0] + r * bc.nb, *b = e->in[1] + (r / bc.reps) * bc.nb;
        float *y = e->out + r * bc.nb;
        for (int64_t j = 0; j < bc.nb; j++)
            y[j] = combine(kind, a[j], b[j]);
    }
}

/* da += g d(a op b)/da; db += the sum over repeats of g d(a op b)/db */
static void binary_backward(const nf_exec *e, binary_kind kind)
{
    broadcast bc = broadcast_of(e);
    int parallel = e->batch * bc.na > NF_PARALLEL_MIN;
    if (e->in_grad[0]) {
        #pragma omp parallel for if (parallel) schedule(static)
        for (int64_t r = 0; r < bc.rows; r++) {
            const float *g = e->out_grad + r * bc.nb, *b = e->in[1] + (r / bc.reps) * bc.nb;
            float *da = e->in_grad[0] + r * bc.nb;
            for (int64_t j = 0; j < bc.nb; j++)
                da[j] += g[j] * grad_a(kind, b[j]);
        }
    }
    if (e->in_grad[1]) {
        /* one sample per iteration, so that no two threads add to one db row */
        #pragma omp parallel for if (parallel) schedule(static)
        for (int64_t s = 0; s < e->batch; s++) {
            float *db = e->in_grad[1] + s * bc.nb;
            for (int64_t r = s * bc.reps; r < (s + 1) * bc.reps; r++) {
                const float *g = e->out_grad + r * bc.nb, *a = e->in[0] + r * bc.nb, *b = e->in[1] + s * bc.nb;
                for (int64_t j = 0; j < bc.nb; j++)
                    db[j] += g[j] * grad_b(kind, a[j], b[j]);
            }
        }
    }
}

static void add_forward(const nf_exec *e) { binary_forward(e, OP_ADD); }
static void add_backward(const nf_exec *e) { binary_backward(e, OP_ADD); }
static void sub_forward(const nf_exec *e) { binary_forward(e, OP_SUB); }
static void sub_backward(const nf_exec *e) { binary_backward(e, OP_SUB); }
static void mul_forward(const nf_exec *e) { binary_forward(e, OP_MUL); }
static void mul_backward(const nf_exec *e) { binary_backward(e, OP_MUL); }
static void div_forward(const nf_exec *e) { binary_forward(e, OP_DIV); }
static void div_backward(const nf_exec *e) { binary_backward(e, OP_DIV); }

const nf_op nf_op_add = {
    .name = "add", .summary = "a + b, b repeated over a's leading axes",
    .min_inputs = 2, .max_inputs = 2,
    .flags = NF_OP_GRAD_NO_INPUTS | NF_OP_GRAD_NO_OUTPUT,
    .infer = binary_infer, .forward = add_forward, .backward = add_backward,
    .flops = nf_flops_per_element,
};

const nf_op nf_op_sub = {
    .name = "sub", .summary = "a - b, b repeated over a's leading axes",
    .min_inputs = 2, .max_inputs = 2,
    .flags = NF_OP_GRAD_NO_INPUTS | NF_OP_GRAD_NO_OUTPUT,
    .infer = binary_infer, .forward = sub_forward, .backward = sub_backward,
    .flops = nf_flops_per_element,
};

const nf_op nf_op_mul = {
    .name = "mul", .summary = "element-wise a * b, b repeated over a's leading axes",
    .min_inputs = 2, .max_inputs = 2,
    .flags = NF_OP_GRAD_NO_OUTPUT,
    .infer = binary_infer, .forward = mul_forward, .backward = mul_backward,
    .flops = nf_flops_per_element,
};

const nf_op nf_op_div = {
    .name = "div", .summary = "element-wise a / b, b repeated over a's leading axes",
    .min_inputs = 2, .max_inputs = 2,
    .flags = NF_OP_GRAD_NO_OUTPUT,
    .infer = binary_infer, .forward = div_forward, .backward = div_backward,
    .flops = nf_flops_per_element,
};

/* ---- scale ------------------------------------------------------------ */

static const nf_attr_spec scale_attrs[] = {
    {"factor", NF_ATTR_FLOAT, NAN, -1e30, 1e30, NULL, "the constant multiplier"},
};

/* y = factor * x */
static void scale_forward(const nf_exec *e)
{
    int64_t n = e->batch * nf_shape_size(e->out_shape);
    float f = (float)e->attr[0];
    #pragma omp parallel for if (n > NF_PARALLEL_MIN) schedule(static)
    for (int64_t i = 0; i < n; i++)
        e->out[i] = f * e->in[0][i];
}

static void scale_backward(const nf_exec *e)
{
    int64_t n = e->batch * nf_shape_size(e->out_shape);
    float f = (float)e->attr[0];
    if (!e->in_grad[0])
        return;
    #pragma omp parallel for if (n > NF_PARALLEL_MIN) schedule(static)
    for (int64_t i = 0; i < n; i++)
        e->in_grad[0][i] += f * e->out_grad[i];
}

const nf_op nf_op_scale = {
    .name = "scale", .summary = "y = factor * x",
    .min_inputs = 1, .max_inputs = 1,
    .attrs = scale_attrs, .n_attrs = NF_COUNT(scale_attrs),
    .flags = NF_OP_GRAD_NO_INPUTS | NF_OP_GRAD_NO_OUTPUT,
    .infer = nf_infer_same_shape, .forward = scale_forward, .backward = scale_backward,
    .flops = nf_flops_per_element,
};

/* ---- mod ----------------------------------------------------------------
 * y = x mod divisor: with fmod=false the remainder takes the divisor's
 * sign (Python's %, x - d floor(x / d)), computed as fmod(fmod(x, d) + d,
 * d), which stays inside [0, d) (or (d, 0]) where a rounded r + d would
 * reach d, and is the form the ONNX export writes; with fmod=true the
 * dividend's (C's fmod).
 * dy/dx = 1 wherever y is continuous. */

static const nf_attr_spec mod_attrs[] = {
    {"divisor", NF_ATTR_FLOAT, NAN, -1e30, 1e30, NULL, "the constant divisor (not 0)"},
    NF_ATTR_BOOL_DEF("fmod", 0, "the remainder takes the sign of x (C's fmod) instead of the divisor's"),
};

static nf_status mod_infer(nf_infer *ctx)
{
    if (ctx->attr[0] == 0)
        return nf_infer_fail(ctx, NF_ERR_INVALID_ARGUMENT, "divisor must not be 0");
    return nf_infer_same_shape(ctx);
}

static void mod_forward(const nf_exec *e)
{
    int64_t n = e->batch * nf_shape_size(e->out_shape);
    float d = (float)e->attr[0];
    int c_fmod = e->attr[1] != 0;
    #pragma omp parallel for if (n > NF_PARALLEL_MIN) schedule(static)
    for (int64_t i = 0; i < n; i++) {
        float r = fmodf(e->in[0][i], d);
        e->out[i] = c_fmod ? r : fmodf(r + d, d);
    }
}

const nf_op nf_op_mod = {
    .name = "mod", .summary = "y = x mod divisor (Python's %, or C's fmod)",
    .min_inputs = 1, .max_inputs = 1,
    .attrs = mod_attrs, .n_attrs = NF_COUNT(mod_attrs),
    .flags = NF_OP_GRAD_NO_INPUTS | NF_OP_GRAD_NO_OUTPUT,
    .infer = mod_infer, .forward = mod_forward, .backward = nf_identity_backward,
    .flops = nf_flops_per_element,
};
