/* nodeflow — data operations on per-sample axes (the batch axis is never
 * touched): copy, flatten, reshape, concat, slice, pad, transpose, permute.
 * Axes count from 0 at the first per-sample axis; negative axes count from
 * the end. */
#include <string.h>

#include "nodes/op.h"

/* ---- copy, flatten, reshape: the same floats under another shape ------ */

static void copy_forward(const nf_exec *e)
{
    memcpy(e->out, e->in[0], (size_t)(e->batch * nf_shape_size(e->out_shape)) * sizeof(float));
}


static const nf_attr_spec flatten_attrs[] = {
    NF_ATTR_INT_DEF("start", 0, 0, NF_MAX_RANK - 1, "first axis flattened; the axes from it on become one"),
};

static nf_status flatten_infer(nf_infer *ctx)
{
    const nf_shape *in = ctx->in[0];
    int start = (int)ctx->attr[0];
    if (start >= in->rank && !(start == 0 && in->rank == 0))
        return nf_infer_fail(ctx, NF_ERR_SHAPE, "start %d is past the %d axes of '%s'", start, in->rank,
                             ctx->in_name[0]);
    ctx->out = *in;
    ctx->out.rank = start + 1;
    int64_t tail = 1; /* a part of the input's size: at most 2^31 */
    for (int i = start; i < in->rank; i++)
        tail = nf_mul_checked(tail, in->dim[i]);
    ctx->out.dim[start] = tail;
    return NF_OK;
}

static const nf_attr_spec reshape_attrs[] = {
    {"shape", NF_ATTR_DIMS, 0, 0, 0, NULL, "the new per-sample shape, e.g. 4x7x7"},
};

static nf_status reshape_infer(nf_infer *ctx)
{
    char a[64], b[64];
    if (nf_shape_size(ctx->dims) != nf_shape_size(ctx->in[0]))
        return nf_infer_fail(ctx, NF_ERR_SHAPE, "cannot reshape '%s' %s (%lld elements) to %s", ctx->in_name[0],
                             nf_shape_format(ctx->in[0], a, sizeof a), (long long)nf_shape_size(ctx->in[0]),
                             nf_shape_format(ctx->dims, b, sizeof b));
    ctx->out = *ctx->dims;
    return NF_OK;
}

#define COPY_LIKE(var, nm, text, attr_table, n_attr, infer_fn)                                    \
    const nf_op var = {                                                                         \
        .name = nm, .summary = text, .min_inputs = 1, .max_inputs = 1,                          \
        .attrs = attr_table, .n_attrs = n_attr,                                                 \
        .flags = NF_OP_GRAD_NO_INPUTS | NF_OP_GRAD_NO_OUTPUT | NF_OP_TAKES_EMPTY, .infer = infer_fn, \
        .forward = copy_forward, .backward = nf_identity_backward,                                    \
    }

COPY_LIKE(nf_op_copy, "copy", "the same values (an explicit fan-out point)", NULL, 0, nf_infer_same_shape);
COPY_LIKE(nf_op_flatten, "flatten", "the axes from start on as one axis", flatten_attrs, NF_COUNT(flatten_attrs),
          flatten_infer);
COPY_LIKE(nf_op_reshape, "reshape", "the same values in another per-sample shape", reshape_attrs,
          NF_COUNT(reshape_attrs), reshape_infer);

/* ---- concat and slice along an axis -------------------------------------
 * Seen from the axis, a tensor is `outer` rows (batch and the axes before
 * it) of `len * inner` floats (the axis and the axes after it). */

static int resolve_axis(double attr, int rank) { return attr < 0 ? rank + (int)attr : (int)attr; }

static int64_t inner_of(const nf_shape *s, int axis)
{
    int64_t inner = 1;
    for (int i = axis + 1; i < s->rank; i++)
        inner *= s->dim[i];
    return inner;
}

static int64_t outer_of(const nf_shape *s, int axis, int64_t batch)
{
    int64_t outer = batch;
    for (int i = 0; i < axis; i++)
        outer *= s->dim[i];
    return outer;
}

static const nf_attr_spec concat_attrs[] = {
    NF_ATTR_INT_DEF("axis", 0, -NF_MAX_RANK, NF_MAX_RANK - 1, "axis to join along (negative: from the end)"),
};

static nf_status concat_infer(nf_infer *ctx)
{
    const nf_shape *first = ctx->in[0];
    int axis = resolve_axis(ctx->attr[0], first->rank);
    if (axis < 0 || axis >= first->rank)
        return nf_infer_fail(ctx, NF_ERR_SHAPE, "axis %g is outside the %d axes of '%s'", ctx->attr[0], first->rank,
                             ctx->in_name[0]);
    ctx->out = *first;
    for (int i = 1; i < ctx->n_inputs; i++) {
        const nf_shape *s = ctx->in[i];
        int fits = s->rank == first->rank;
        for (int d = 0; fits && d < s->rank; d++)
            fits = d == axis || s->dim[d] == first->dim[d];
        if (!fits) {
            char a[64], b[64];
            return nf_infer_fail(ctx, NF_ERR_SHAPE, "'%s' %s and '%s' %s differ outside axis %d", ctx->in_name[0],
                                 nf_shape_format(first, a, sizeof a), ctx->in_name[i], nf_shape_format(s, b, sizeof b),
                                 axis);
        }
        ctx->out.dim[axis] = nf_add_checked(ctx->out.dim[axis], s->dim[axis]);
    }
    /* up to 8 parts of up to 2^31 each: the output may pass 2^31 */
    int64_t size = 1;
    for (int d = 0; d < ctx->out.rank; d++)
        size = nf_mul_checked(size, ctx->out.dim[d]);
    if (size < 0 || size > NF_MAX_SAMPLE_ELEMENTS)
        return nf_infer_fail(ctx, NF_ERR_SHAPE, "its output would have more than 2^31 elements per sample");
    return NF_OK;
}

static void concat_move(const nf_exec *e, int backward)
{
    int axis = resolve_axis(e->attr[0], e->out_shape->rank);
    int64_t outer = outer_of(e->out_shape, axis, e->batch), inner = inner_of(e->out_shape, axis);
    int64_t out_row = e->out_shape->dim[axis] * inner, at = 0;
    for (int i = 0; i < e->n_inputs; i++) {
        int64_t row = e->in_shape[i]->dim[axis] * inner;
        if (!backward) {
            for (int64_t r = 0; r < outer; r++)
                memcpy(e->out + r * out_row + at, e->in[i] + r * row, (size_t)row * sizeof(float));
        } else if (e->in_grad[i]) {
            for (int64_t r = 0; r < outer; r++)
                for (int64_t j = 0; j < row; j++)
                    e->in_grad[i][r * row + j] += e->out_grad[r * out_row + at + j];
        }
        at += row;
    }
}

static void concat_forward(const nf_exec *e) { concat_move(e, 0); }
static void concat_backward(const nf_exec *e) { concat_move(e, 1); }

const nf_op nf_op_concat = {
    .name = "concat", .summary = "its inputs joined along an axis", .min_inputs = 2, .max_inputs = NF_MAX_INPUTS,
    .attrs = concat_attrs, .n_attrs = NF_COUNT(concat_attrs),
    .flags = NF_OP_GRAD_NO_INPUTS | NF_OP_GRAD_NO_OUTPUT, .infer = concat_infer,
    .forward = concat_forward, .backward = concat_backward,
};

enum { SL_AXIS, SL_START, SL_END };

static const nf_attr_spec slice_attrs[] = {
    [SL_AXIS] = NF_ATTR_INT_DEF("axis", 0, -NF_MAX_RANK, NF_MAX_RANK - 1, "axis to cut (negative: from the end)"),
    [SL_START] = NF_ATTR_INT_DEF("start", 0, 0, 1LL << 40, "first index kept"),
    [SL_END] = NF_ATTR_INT_DEF("end", -1, -1, 1LL << 40, "index after the last kept (-1: the end)"),
};

static nf_status slice_infer(nf_infer *ctx)
{
    const nf_shape *in = ctx->in[0];
    int axis = resolve_axis(ctx->attr[SL_AXIS], in->rank);
    if (axis < 0 || axis >= in->rank)
        return nf_infer_fail(ctx, NF_ERR_SHAPE, "axis %g is outside the %d axes of '%s'", ctx->attr[SL_AXIS],
                             in->rank, ctx->in_name[0]);
    int64_t start = (int64_t)ctx->attr[SL_START];
    int64_t end = ctx->attr[SL_END] < 0 ? in->dim[axis] : (int64_t)ctx->attr[SL_END];
    if (start >= end || end > in->dim[axis])
        return nf_infer_fail(ctx, NF_ERR_SHAPE, "[%lld, %lld) is not a part of axis %d of length %lld",
                             (long long)start, (long long)end, axis, (long long)in->dim[axis]);
    ctx->out = *in;
    ctx->out.dim[axis] = end - start;
    return NF_OK;
}

static void slice_move(const nf_exec *e, int backward)
{
    int axis = resolve_axis(e->attr[SL_AXIS], e->in_shape[0]->rank);
    int64_t outer = outer_of(e->in_shape[0], axis, e->batch), inner = inner_of(e->in_shape[0], axis);
    int64_t in_row = e->in_shape[0]->dim[axis] * inner, out_row = e->out_shape->dim[axis] * inner;
    int64_t at = (int64_t)e->attr[SL_START] * inner;
    for (int64_t r = 0; r < outer; r++) {
        if (!backward)
            memcpy(e->out + r * out_row, e->in[0] + r * in_row + at, (size_t)out_row * sizeof(float));
        else
            for (int64_t j = 0; j < out_row; j++)
                e->in_grad[0][r * in_row + at + j] += e->out_grad[r * out_row + j];
    }
}

static void slice_forward(const nf_exec *e) { slice_move(e, 0); }

static void slice_backward(const nf_exec *e)
{
    if (e->in_grad[0])
        slice_move(e, 1);
}

const nf_op nf_op_slice = {
    .name = "slice", .summary = "the part [start, end) of an axis (several slices split a tensor)",
    .min_inputs = 1, .max_inputs = 1, .attrs = slice_attrs, .n_attrs = NF_COUNT(slice_attrs),
    .flags = NF_OP_GRAD_NO_INPUTS | NF_OP_GRAD_NO_OUTPUT, .infer = slice_infer,
    .forward = slice_forward, .backward = slice_backward,
};

/* ---- pad: one axis longer at either end ---------------------------------
 * Output index o of the axis reads input index o - before; outside the
 * input, mode constant writes `value`, edge repeats the end value, reflect
 * mirrors about the end value (numpy's pad modes; ONNX's Pad pads one
 * axis after another, as chained pad nodes do). Backward adds each output
 * gradient to the input value it read. */

enum { PAD_AXIS, PAD_BEFORE, PAD_AFTER, PAD_MODE, PAD_VALUE };
enum { PAD_CONSTANT, PAD_REFLECT, PAD_EDGE };

static const char *const pad_modes[] = {"constant", "reflect", "edge", NULL};

static const nf_attr_spec pad_attrs[] = {
    [PAD_AXIS] = NF_ATTR_INT_DEF("axis", 0, -NF_MAX_RANK, NF_MAX_RANK - 1, "axis to pad (negative: from the end)"),
    [PAD_BEFORE] = NF_ATTR_INT_DEF("before", 0, 0, 1LL << 31, "values added before the first"),
    [PAD_AFTER] = NF_ATTR_INT_DEF("after", 0, 0, 1LL << 31, "values added after the last"),
    [PAD_MODE] = NF_ATTR_ENUM_DEF("mode", 0, pad_modes,
                                  "constant: value; reflect: mirrored about the end (1 2 3 -> 3 2 1 2 3 2 1); edge: "
                                  "the end repeated"),
    [PAD_VALUE] = NF_ATTR_FLOAT_DEF("value", 0, -1e30, 1e30, "mode=constant: the value added"),
};

static nf_status pad_infer(nf_infer *ctx)
{
    const nf_shape *in = ctx->in[0];
    int axis = resolve_axis(ctx->attr[PAD_AXIS], in->rank);
    if (axis < 0 || axis >= in->rank)
        return nf_infer_fail(ctx, NF_ERR_SHAPE, "axis %g is outside the %d axes of '%s'", ctx->attr[PAD_AXIS],
                             in->rank, ctx->in_name[0]);
    int64_t len = in->dim[axis], before = (int64_t)ctx->attr[PAD_BEFORE], after = (int64_t)ctx->attr[PAD_AFTER];
    if (ctx->attr[PAD_MODE] == PAD_REFLECT && (before >= len || after >= len))
        return nf_infer_fail(ctx, NF_ERR_SHAPE, "mode=reflect pads less than the axis' length %lld on each side",
                             (long long)len);
    ctx->out = *in;
    ctx->out.dim[axis] = len + before + after; /* (each term below 2^31; validation bounds the whole) */
    return NF_OK;
}

/* The input index that output index o reads, or -1 (the constant). */
static int64_t pad_source(int64_t o, int64_t before, int64_t len, int mode)
{
    int64_t i = o - before;
    if (i >= 0 && i < len)
        return i;
    if (mode == PAD_EDGE)
        return i < 0 ? 0 : len - 1;
    if (mode == PAD_REFLECT)
        return i < 0 ? -i : 2 * (len - 1) - i;
    return -1;
}

static void pad_move(const nf_exec *e, int backward)
{
    int axis = resolve_axis(e->attr[PAD_AXIS], e->in_shape[0]->rank), mode = (int)e->attr[PAD_MODE];
    int64_t outer = outer_of(e->in_shape[0], axis, e->batch), inner = inner_of(e->in_shape[0], axis);
    int64_t len = e->in_shape[0]->dim[axis], out_len = e->out_shape->dim[axis], before = (int64_t)e->attr[PAD_BEFORE];
    float value = (float)e->attr[PAD_VALUE];
    #pragma omp parallel for if (!backward && outer * out_len * inner > NF_PARALLEL_MIN) schedule(static)
    for (int64_t r = 0; r < outer; r++)
        for (int64_t o = 0; o < out_len; o++) {
            int64_t i = pad_source(o, before, len, mode);
            float *out = e->out + (r * out_len + o) * inner;
            if (backward && i >= 0) {
                const float *g = e->out_grad + (r * out_len + o) * inner;
                float *to = e->in_grad[0] + (r * len + i) * inner;
                for (int64_t j = 0; j < inner; j++)
                    to[j] += g[j];
            } else if (!backward && i >= 0) {
                memcpy(out, e->in[0] + (r * len + i) * inner, (size_t)inner * sizeof(float));
            } else if (!backward) {
                for (int64_t j = 0; j < inner; j++)
                    out[j] = value;
            }
        }
}

static void pad_forward(const nf_exec *e) { pad_move(e, 0); }

static void pad_backward(const nf_exec *e)
{
    if (e->in_grad[0])
        pad_move(e, 1);
}

const nf_op nf_op_pad = {
    .name = "pad", .summary = "an axis padded at either end: a constant, its edge values, or their reflection",
    .min_inputs = 1, .max_inputs = 1, .attrs = pad_attrs, .n_attrs = NF_COUNT(pad_attrs),
    .flags = NF_OP_GRAD_NO_INPUTS | NF_OP_GRAD_NO_OUTPUT, .infer = pad_infer,
    .forward = pad_forward, .backward = pad_backward,
};

/* ---- transpose and permute ---------------------------------------------
 * out axis i is in axis order[i]; the batch axis stays first. */

static const nf_attr_spec transpose_attrs[] = {
    NF_ATTR_INT_DEF("dim0", 0, -NF_MAX_RANK, NF_MAX_RANK - 1, "first axis swapped"),
    NF_ATTR_INT_DEF("dim1", 1, -NF_MAX_RANK, NF_MAX_RANK - 1, "second axis swapped"),
};

static const nf_attr_spec permute_attrs[] = {
    {"order", NF_ATTR_AXES, 0, 0, 0, NULL, "the input axis of each output axis, e.g. 2,0,1"},
};

/* The permutation of a transpose or permute node. */
static int order_of(const nf_node *node, const nf_shape *in, int *order)
{
    if (node->op->attrs == permute_attrs) {
        if (node->dims.rank != in->rank)
            return 0;
        for (int i = 0; i < in->rank; i++)
            order[i] = (int)node->dims.dim[i];
        return 1;
    }
    int a = resolve_axis(node->attr[0], in->rank), b = resolve_axis(node->attr[1], in->rank);
    if (a < 0 || b < 0 || a >= in->rank || b >= in->rank)
        return 0;
    for (int i = 0; i < in->rank; i++)
        order[i] = i;
    order[a] = b;
    order[b] = a;
    return 1;
}

static nf_status permute_infer(nf_infer *ctx)
{
    int order[NF_MAX_RANK];
    const nf_shape *in = ctx->in[0];
    if (!order_of(ctx->node, in, order))
        return nf_infer_fail(ctx, NF_ERR_SHAPE, "the axes do not fit the %d axes of '%s'", in->rank, ctx->in_name[0]);
    for (int i = 0; i < in->rank; i++)
        if (order[i] >= in->rank)
            return nf_infer_fail(ctx, NF_ERR_SHAPE, "axis %d is outside the %d axes of '%s'", order[i], in->rank,
                                 ctx->in_name[0]);
    ctx->out.rank = in->rank;
    for (int i = 0; i < in->rank; i++)
        ctx->out.dim[i] = in->dim[order[i]];
    return NF_OK;
}

/* Walks the output in order; `from` is the input offset of each output
 * element (strides of the input taken in the output's axis order). */
static void permute_move(const nf_exec *e, int backward)
{
    const nf_shape *in = e->in_shape[0], *out = e->out_shape;
    int order[NF_MAX_RANK], rank = in->rank;
    order_of(e->node, in, order);
    int64_t in_stride[NF_MAX_RANK], stride[NF_MAX_RANK], idx[NF_MAX_RANK] = {0};
    int64_t s = 1;
    for (int i = rank - 1; i >= 0; i--) {
        in_stride[i] = s;
        s *= in->dim[i];
    }
    for (int i = 0; i < rank; i++)
        stride[i] = in_stride[order[i]];
    int64_t size = nf_shape_size(in);
    for (int64_t n = 0; n < e->batch; n++) {
        const float *x = e->in[0] + n * size, *dy = backward ? e->out_grad + n * size : NULL;
        float *y = e->out + n * size, *dx = backward ? e->in_grad[0] + n * size : NULL;
        int64_t from = 0;
        memset(idx, 0, sizeof idx);
        for (int64_t o = 0; o < size; o++) {
            if (backward)
                dx[from] += dy[o];
            else
                y[o] = x[from];
            for (int d = rank - 1; d >= 0; d--) { /* the next output index, like an odometer */
                from += stride[d];
                if (++idx[d] < out->dim[d])
                    break;
                from -= stride[d] * out->dim[d];
                idx[d] = 0;
            }
        }
    }
}

static void permute_forward(const nf_exec *e) { permute_move(e, 0); }

static void permute_backward(const nf_exec *e)
{
    if (e->in_grad[0])
        permute_move(e, 1);
}

const nf_op nf_op_transpose = {
    .name = "transpose", .summary = "two per-sample axes swapped", .min_inputs = 1, .max_inputs = 1,
    .attrs = transpose_attrs, .n_attrs = NF_COUNT(transpose_attrs),
    .flags = NF_OP_GRAD_NO_INPUTS | NF_OP_GRAD_NO_OUTPUT, .infer = permute_infer,
    .forward = permute_forward, .backward = permute_backward,
};

const nf_op nf_op_permute = {
    .name = "permute", .summary = "the per-sample axes in a new order", .min_inputs = 1, .max_inputs = 1,
    .attrs = permute_attrs, .n_attrs = NF_COUNT(permute_attrs),
    .flags = NF_OP_GRAD_NO_INPUTS | NF_OP_GRAD_NO_OUTPUT, .infer = permute_infer,
    .forward = permute_forward, .backward = permute_backward,
};
