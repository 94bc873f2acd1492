/* nodeflow — helpers shared by the node families. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "nodes/op.h"

nf_status nf_infer_fail(nf_infer *ctx, nf_status code, const char *fmt, ...)
{
    if (ctx->err) {
        char detail[NF_ERROR_MESSAGE_MAX];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(detail, sizeof detail, fmt, ap);
        va_end(ap);
        nf_fail(ctx->err, code, "%s '%s': %s", ctx->node->op->name, ctx->node->name, detail);
    }
    return code;
}

int nf_uses_prepared(const nf_exec *e) { return e->state && e->batch == e->capacity; }

void nf_fill_nan(float *x, int64_t n)
{
    for (int64_t i = 0; x && i < n; i++)
        x[i] = NAN;
}

int64_t nf_rows(const nf_exec *e, int64_t size_per_sample, int64_t cols)
{
    return e->batch * (size_per_sample / cols);
}

int nf_op_attr_index(const nf_op *op, const char *name)
{
    for (int i = 0; i < op->n_attrs; i++)
        if (strcmp(op->attrs[i].name, name) == 0)
            return i;
    return -1;
}

nf_status nf_infer_one_size(nf_infer *ctx, const char *what)
{
    const nf_op *op = ctx->node->op;
    for (int i = 0; i < op->n_attrs; i++)
        if (op->attrs[i].type == NF_ATTR_INT2 && ctx->node->attr[i] != ctx->node->attr_w[i])
            return nf_infer_fail(ctx, NF_ERR_INVALID_ARGUMENT, "attribute '%s' is one size on %s, not HxW",
                                 op->attrs[i].name, what);
    return NF_OK;
}

nf_status nf_infer_same_shape(nf_infer *ctx)
{
    ctx->out = *ctx->in[0];
    return NF_OK;
}

double nf_flops_per_element(const nf_node *node)
{
    return (double)nf_shape_size(&node->shape);
}

double nf_flops_per_input_element(const nf_node *node)
{
    return (double)nf_shape_size(&node->inputs[0]->shape);
}

double nf_sum_floats(const float *x, int64_t n)
{
    enum { LANES = 16 };
    float lane[LANES] = {0};
    int64_t whole = n / LANES * LANES;
    for (int64_t i = 0; i < whole; i += LANES)
        for (int j = 0; j < LANES; j++)
            lane[j] += x[i + j];
    double sum = 0.0;
    for (int j = 0; j < LANES; j++)
        sum += lane[j];
    for (int64_t i = whole; i < n; i++)
        sum += x[i];
    return sum;
}

double nf_logsumexp(const float *x, int64_t n)
{
    float m = x[0];
    for (int64_t j = 1; j < n; j++)
        m = x[j] > m ? x[j] : m;
    double sum = 0.0;
    for (int64_t j = 0; j < n; j++)
        sum += exp((double)(x[j] - m));
    return m + log(sum);
}

void nf_identity_backward(const nf_exec *e)
{
    int64_t n = e->batch * nf_shape_size(e->out_shape);
    float *dx = e->in_grad[0];
    if (!dx)
        return;
    #pragma omp parallel for if (n > NF_PARALLEL_MIN) schedule(static)
    for (int64_t i = 0; i < n; i++)
        dx[i] += e->out_grad[i];
}

int64_t nf_trailing_size(const nf_shape *s, int axes)
{
    int64_t size = 1;
    for (int i = s->rank - axes; i < s->rank; i++)
        size *= s->dim[i];
    return size;
}
