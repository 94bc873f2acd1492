/* nodeflow — matrix nodes: linear (a fully connected layer) and matmul.
 * Both hand their products to OpenBLAS sgemm. */
#include <math.h>
#include <string.h>


#include "kernels/kernels.h"
#include "nodes/op.h"

enum { LIN_OUT, LIN_IN, LIN_BIAS, LIN_WEIGHT_INIT, LIN_WEIGHT_VALUE, LIN_BIAS_INIT, LIN_BIAS_VALUE };

static const nf_attr_spec linear_attrs[] = {
    [LIN_OUT] = NF_ATTR_REQUIRED_INT("out", 1, 1 << 30, "output features"),
    [LIN_IN] = NF_ATTR_INT_DEF("in", 0, 0, 1 << 30, "input features; 0 infers them from the input"),
    [LIN_BIAS] = NF_ATTR_BOOL_DEF("bias", 1, "add a learned bias"),
    [LIN_WEIGHT_INIT] = NF_ATTR_ENUM_DEF("weight_init", 0, nf_init_names, "initialisation of the weight"),
    [LIN_WEIGHT_VALUE] = NF_ATTR_FLOAT_DEF("weight_value", 0, -1e30, 1e30, "value for weight_init=constant"),
    [LIN_BIAS_INIT] = NF_ATTR_ENUM_DEF("bias_init", 0, nf_init_names, "initialisation of the bias"),
    [LIN_BIAS_VALUE] = NF_ATTR_FLOAT_DEF("bias_value", 0, -1e30, 1e30, "value for bias_init=constant"),
};

static nf_status linear_infer(nf_infer *ctx)
{
    const nf_shape *x = ctx->in[0];
    if (x->rank < 1)
        return nf_infer_fail(ctx, NF_ERR_SHAPE, "input '%s' is a scalar per sample; linear needs features",
                             ctx->in_name[0]);
    int64_t in = x->dim[x->rank - 1], out = (int64_t)ctx->attr[LIN_OUT];
    int64_t want = (int64_t)ctx->attr[LIN_IN];
    if (want && want != in)
        return nf_infer_fail(ctx, NF_ERR_SHAPE, "input '%s' has %lld features, weight expects %lld",
                             ctx->in_name[0], (long long)in, (long long)want);
    int64_t weight = nf_mul_checked(in, out);
    if (weight < 0 || weight > ((int64_t)1 << 34))
        return nf_infer_fail(ctx, NF_ERR_SHAPE, "weight [%lld, %lld] is too large", (long long)out, (long long)in);
    ctx->out = *x;
    ctx->out.dim[x->rank - 1] = out;
    ctx->params[0] = (nf_param_spec){"weight", {2, {out, in}}, (nf_init)ctx->attr[LIN_WEIGHT_INIT],
                                     ctx->attr[LIN_WEIGHT_VALUE], in, out, 0};
    ctx->n_params = 1;
    if (ctx->attr[LIN_BIAS] != 0) {
        ctx->params[1] = (nf_param_spec){"bias", {1, {out}}, (nf_init)ctx->attr[LIN_BIAS_INIT],
                                         ctx->attr[LIN_BIAS_VALUE], in, out, 0};
        ctx->n_params = 2;
    }
    return NF_OK;
}

/* x is (rows, in), weight is (out, in), bias is (out): y = x W^T + b */
static void linear_forward(const nf_exec *e)
{
    int64_t out = e->out_shape->dim[e->out_shape->rank - 1];
    int64_t in = e->in_shape[0]->dim[e->in_shape[0]->rank - 1];
    int64_t rows = nf_rows(e, nf_shape_size(e->out_shape), out);
    const float *bias = e->node->n_params > 1 ? e->param[1] : NULL;
    if (bias) {
        /* start from the bias in every row, then let sgemm add x W^T */
        #pragma omp parallel for if (rows * out > NF_PARALLEL_MIN) schedule(static)
        for (int64_t r = 0; r < rows; r++)
            memcpy(e->out + r * out, bias, (size_t)out * sizeof(float));
    }
    if (rows == 1) /* one sample: a matrix-vector product is faster than sgemm */
        e->kernels->sgemv(out, in, 1.0f, e->param[0], in, e->in[0],
                          bias ? 1.0f : 0.0f, e->out);
    else
        e->kernels->sgemm(NF_NO_TRANS, NF_TRANS, rows, out, in, 1.0f, e->in[0],
                    in, e->param[0], in, bias ? 1.0f : 0.0f, e->out, out);
}

/* dx += dy W, dW += dy^T x, db += column sums of dy */
static void linear_backward(const nf_exec *e)
{
    int64_t out = e->out_shape->dim[e->out_shape->rank - 1];
    int64_t in = e->in_shape[0]->dim[e->in_shape[0]->rank - 1];
    int64_t rows = nf_rows(e, nf_shape_size(e->out_shape), out);
    const float *dy = e->out_grad;
    if (e->in_grad[0])
        e->kernels->sgemm(NF_NO_TRANS, NF_NO_TRANS, rows, in, out, 1.0f, dy,
                    out, e->param[0], in, 1.0f, e->in_grad[0], in);
    e->kernels->sgemm(NF_TRANS, NF_NO_TRANS, out, in, rows, 1.0f, dy, out,
                e->in[0], in, 1.0f, e->param_grad[0], in);
    if (e->node->n_params > 1) {
        float *db = e->param_grad[1];
        for (int64_t r = 0; r < rows; r++)
            for (int64_t j = 0; j < out; j++)
                db[j] += dy[r * out + j];
    }
}

/* 2 in out multiply-adds per row, plus the bias */
static double linear_flops(const nf_node *node)
{
    const nf_shape *x = &node->inputs[0]->shape;
    double rows = (double)(nf_shape_size(x) / x->dim[x->rank - 1]);
    double in = (double)x->dim[x->rank - 1], out = node->attr[LIN_OUT];
    return rows * (2.0 * in * out + (node->attr[LIN_BIAS] != 0 ? out : 0.0));
}

const nf_op nf_op_linear = {
    .name = "linear", .summary = "fully connected layer over the last axis: y = x W^T + b",
    .min_inputs = 1, .max_inputs = 1,
    .attrs = linear_attrs, .n_attrs = NF_COUNT(linear_attrs),
    .flags = NF_OP_GRAD_NO_OUTPUT,
    .infer = linear_infer, .forward = linear_forward, .backward = linear_backward,
    .flops = linear_flops,
};

/* ---- matmul ----------------------------------------------------------- */

static nf_status matmul_infer(nf_infer *ctx)
{
    const nf_shape *a = ctx->in[0], *b = ctx->in[1];
    char sa[64], sb[64];
    if (a->rank != 2 || b->rank != 2 || a->dim[1] != b->dim[0])
        return nf_infer_fail(ctx, NF_ERR_SHAPE,
                             "'%s' %s and '%s' %s do not multiply; need [M, K] and [K, N] per sample",
                             ctx->in_name[0], nf_shape_format(a, sa, sizeof sa), ctx->in_name[1],
                             nf_shape_format(b, sb, sizeof sb));
    ctx->out = (nf_shape){2, {a->dim[0], b->dim[1]}};
    return NF_OK;
}

/* per sample: a is (M, K), b is (K, N), c = a b is (M, N); each axis may
 * be 2^31 (past int), each product is at most 2^31 (validated) */
static void matmul_forward(const nf_exec *e)
{
    int64_t m = e->in_shape[0]->dim[0], k = e->in_shape[0]->dim[1], n = e->in_shape[1]->dim[1];
    for (int64_t s = 0; s < e->batch; s++)
        e->kernels->sgemm(NF_NO_TRANS, NF_NO_TRANS, m, n, k, 1.0f, e->in[0] + s * m * k, k,
                    e->in[1] + s * k * n, n, 0.0f, e->out + s * m * n, n);
}

/* da += dc b^T, db += a^T dc */
static void matmul_backward(const nf_exec *e)
{
    int64_t m = e->in_shape[0]->dim[0], k = e->in_shape[0]->dim[1], n = e->in_shape[1]->dim[1];
    for (int64_t s = 0; s < e->batch; s++) {
        const float *dc = e->out_grad + s * m * n;
        if (e->in_grad[0])
            e->kernels->sgemm(NF_NO_TRANS, NF_TRANS, m, k, n, 1.0f, dc, n, e->in[1] + s * k * n,
                        n, 1.0f, e->in_grad[0] + s * m * k, k);
        if (e->in_grad[1])
            e->kernels->sgemm(NF_TRANS, NF_NO_TRANS, k, n, m, 1.0f, e->in[0] + s * m * k, k, dc,
                        n, 1.0f, e->in_grad[1] + s * k * n, n);
    }
}

static double matmul_flops(const nf_node *node)
{
    const nf_shape *a = &node->inputs[0]->shape, *b = &node->inputs[1]->shape;
    return 2.0 * (double)a->dim[0] * (double)a->dim[1] * (double)b->dim[1];
}

const nf_op nf_op_matmul = {
    .name = "matmul", .summary = "per-sample matrix product [M, K] x [K, N] -> [M, N]",
    .min_inputs = 2, .max_inputs = 2,
    .flags = NF_OP_GRAD_NO_OUTPUT,
    .infer = matmul_infer, .forward = matmul_forward, .backward = matmul_backward,
    .flops = matmul_flops,
};
