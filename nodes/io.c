/* nodeflow — graph inputs and outputs. */
#include <math.h>
#include <string.h>

#include "nodes/op.h"

static const nf_attr_spec input_attrs[] = {
    {"shape", NF_ATTR_DIMS, 0, 0, 0, NULL,
     "per-sample shape, e.g. 784 or 1x28x28 (a 0: no elements); 'scalar' for class labels"},
    NF_ATTR_BOOL_DEF("grad", 0, "keep the gradient of the loss with respect to this input"),
    NF_ATTR_BOOL_DEF("sequence", 0, "one value per time step of an unrolled plan ([batch, steps, shape])"),
};

enum { INPUT_SHAPE, INPUT_GRAD, INPUT_SEQUENCE };

static int input_per_step(const nf_node *node) { return node->attr[INPUT_SEQUENCE] != 0; }

static nf_status input_infer(nf_infer *ctx)
{
    ctx->out = *ctx->dims;
    return NF_OK;
}

const nf_op nf_op_input = {
    .name = "input", .summary = "a value supplied by the caller, one sample per batch row",
    .min_inputs = 0, .max_inputs = 0,
    .attrs = input_attrs, .n_attrs = NF_COUNT(input_attrs),
    .flags = NF_OP_INPUT | NF_OP_TAKES_EMPTY, .infer = input_infer, .per_step = input_per_step,
};

static nf_status output_infer(nf_infer *ctx)
{
    ctx->out = *ctx->in[0];
    return NF_OK;
}

/* y = x */
static void output_forward(const nf_exec *e)
{
    memcpy(e->out, e->in[0], (size_t)(e->batch * nf_shape_size(e->out_shape)) * sizeof(float));
}

const nf_op nf_op_output = {
    .name = "output", .summary = "marks its input as a graph output (identity)",
    .min_inputs = 1, .max_inputs = 1,
    .flags = NF_OP_OUTPUT | NF_OP_GRAD_NO_INPUTS | NF_OP_GRAD_NO_OUTPUT | NF_OP_TAKES_EMPTY,
    .infer = output_infer,
    .forward = output_forward, .backward = nf_identity_backward,
};

/* ---- constant: a tensor that is the same for every sample --------------
 * Its value is the parameter "<name>.value": a buffer (saved with the
 * weights, read from a weights file, never trained) unless trainable=true,
 * when it is learned like a weight (a learned positional embedding). */

enum { CONST_SHAPE, CONST_INIT, CONST_VALUE, CONST_TRAINABLE };

static const nf_attr_spec constant_attrs[] = {
    [CONST_SHAPE] = {"shape", NF_ATTR_DIMS, 0, 0, 0, NULL, "per-sample shape of the value, e.g. 64x128"},
    [CONST_INIT] = NF_ATTR_ENUM_DEF("init", 5, nf_init_names,
                                    "initial value (sinusoidal: the positional table of 'Attention is all you "
                                    "need' over [positions, features])"),
    [CONST_VALUE] = NF_ATTR_FLOAT_DEF("value", 0, -1e30, 1e30, "value for init=constant, std for init=normal"),
    [CONST_TRAINABLE] = NF_ATTR_BOOL_DEF("trainable", 0, "learn the value (a parameter, not a buffer)"),
};

static nf_status constant_infer(nf_infer *ctx)
{
    const nf_shape *s = ctx->dims;
    int64_t size = 1;
    for (int i = 0; i < s->rank; i++)
        size = nf_mul_checked(size, s->dim[i]);
    if (size < 0 || size > NF_MAX_SAMPLE_ELEMENTS)
        return nf_infer_fail(ctx, NF_ERR_SHAPE, "its value would have more than 2^31 elements");
    ctx->out = *s;
    int64_t fan = s->rank > 0 ? s->dim[s->rank - 1] : 1;
    ctx->params[0] = (nf_param_spec){"value", *s, (nf_init)ctx->attr[CONST_INIT], ctx->attr[CONST_VALUE], fan, fan,
                                     ctx->attr[CONST_TRAINABLE] == 0};
    ctx->n_params = 1;
    return NF_OK;
}

/* every row y[s] = value */
static void constant_forward(const nf_exec *e)
{
    int64_t n = nf_shape_size(e->out_shape);
    for (int64_t s = 0; s < e->batch; s++)
        memcpy(e->out + s * n, e->param[0], (size_t)n * sizeof(float));
}

/* trainable: dvalue += sum over the batch of dy */
static void constant_backward(const nf_exec *e)
{
    int64_t n = nf_shape_size(e->out_shape);
    float *dv = e->param_grad[0];
    if (!dv || e->node->attr[CONST_TRAINABLE] == 0)
        return;
    #pragma omp parallel for if (n * e->batch > NF_PARALLEL_MIN) schedule(static)
    for (int64_t j = 0; j < n; j++) {
        float sum = 0.0f;
        for (int64_t s = 0; s < e->batch; s++)
            sum += e->out_grad[s * n + j];
        dv[j] += sum;
    }
}

const nf_op nf_op_constant = {
    .name = "constant", .summary = "a tensor the same for every sample (a buffer, or learned with trainable=true)",
    .min_inputs = 0, .max_inputs = 0,
    .attrs = constant_attrs, .n_attrs = NF_COUNT(constant_attrs),
    .flags = NF_OP_GRAD_NO_INPUTS | NF_OP_GRAD_NO_OUTPUT, .infer = constant_infer,
    .forward = constant_forward, .backward = constant_backward,
};
