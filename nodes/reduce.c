/* nodeflow — reductions by comparison: reduce_max over the last `axes`
 * axes of each sample gives, for each block of those trailing values, its
 * maximum (with min=true its minimum) or, with output=indices, where that
 * is in the block (row-major; the first on ties, or with last=true the
 * last, as ONNX's select_last_index). The reduced axes stay, as 1s. A NaN
 * wins (the first one, or with last=true the last), as in PyTorch's max
 * and numpy's argmax. The
 * gradient of the values goes to the chosen position; indices have none. */
#include <math.h>

#include "nodes/op.h"

enum { RD_AXES, RD_MIN, RD_OUTPUT, RD_LAST };

static const char *const reduce_outputs[] = {"values", "indices", NULL};

static const nf_attr_spec reduce_max_attrs[] = {
    [RD_AXES] = NF_ATTR_INT_DEF("axes", 1, 1, NF_MAX_RANK, "number of trailing axes reduced together"),
    [RD_MIN] = NF_ATTR_BOOL_DEF("min", 0, "the minimum instead of the maximum"),
    [RD_OUTPUT] = NF_ATTR_ENUM_DEF("output", 0, reduce_outputs,
                                   "values: the extreme value; indices: its position in the reduced block (no "
                                   "gradient)"),
    [RD_LAST] = NF_ATTR_BOOL_DEF("last", 0, "on ties, the last position instead of the first"),
};

static nf_status reduce_max_infer(nf_infer *ctx)
{
    const nf_shape *in = ctx->in[0];
    int axes = (int)ctx->attr[RD_AXES];
    if (axes > in->rank)
        return nf_infer_fail(ctx, NF_ERR_SHAPE, "input '%s' has %d axes, fewer than %d", ctx->in_name[0], in->rank,
                             axes);
    if (nf_trailing_size(in, axes) > (1 << 24))
        return nf_infer_fail(ctx, NF_ERR_SHAPE, "a block of more than 2^24 values (positions are counted in floats)");
    ctx->out = *in;
    for (int i = in->rank - axes; i < in->rank; i++)
        ctx->out.dim[i] = 1;
    ctx->saved_per_sample = nf_shape_size(&ctx->out); /* the chosen position of each block */
    return NF_OK;
}

/* The chosen position in one block of n values (a NaN: the first, or
 * with `last` the last one). */
static int64_t choose(const float *x, int64_t n, int min, int last)
{
    int64_t at = 0, nan_at = -1;
    for (int64_t i = 0; i < n; i++) {
        if (isnan(x[i])) {
            if (!last)
                return i;
            nan_at = i;
            continue;
        }
        int better = min ? x[i] < x[at] : x[i] > x[at];
        if (better || (last && x[i] == x[at]) || isnan(x[at]))
            at = i;
    }
    return nan_at >= 0 ? nan_at : at;
}

static void reduce_max_forward(const nf_exec *e)
{
    int64_t inner = nf_trailing_size(e->in_shape[0], (int)e->attr[RD_AXES]);
    int64_t rows = e->batch * nf_shape_size(e->out_shape);
    int min = e->attr[RD_MIN] != 0, last = e->attr[RD_LAST] != 0, indices = e->attr[RD_OUTPUT] != 0;
    #pragma omp parallel for if (rows * inner > NF_PARALLEL_MIN) schedule(static)
    for (int64_t r = 0; r < rows; r++) {
        int64_t at = choose(e->in[0] + r * inner, inner, min, last);
        e->saved[r] = (float)at;
        e->out[r] = indices ? (float)at : e->in[0][r * inner + at];
    }
}

static void reduce_max_backward(const nf_exec *e)
{
    int64_t inner = nf_trailing_size(e->in_shape[0], (int)e->attr[RD_AXES]);
    int64_t rows = e->batch * nf_shape_size(e->out_shape);
    if (!e->in_grad[0] || e->attr[RD_OUTPUT] != 0)
        return;
    for (int64_t r = 0; r < rows; r++)
        e->in_grad[0][r * inner + (int64_t)e->saved[r]] += e->out_grad[r];
}

const nf_op nf_op_reduce_max = {
    .name = "reduce_max", .summary = "the maximum (or minimum, or its position) over the trailing axes",
    .min_inputs = 1, .max_inputs = 1, .attrs = reduce_max_attrs, .n_attrs = NF_COUNT(reduce_max_attrs),
    .flags = NF_OP_GRAD_NO_INPUTS | NF_OP_GRAD_NO_OUTPUT,
    .infer = reduce_max_infer, .forward = reduce_max_forward, .backward = reduce_max_backward,
    .flops = nf_flops_per_input_element,
};
