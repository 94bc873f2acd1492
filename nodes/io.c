/* nodeflow — graph inputs and outputs. */
#include <math.h>
#include <string.h>

#include "nodes/op.h"

static const nf_attr_spec input_attrs[] = {
    {"shape", NF_ATTR_DIMS, 0, 0, 0, NULL, "per-sample shape, e.g. 784 or 1x28x28; 'scalar' for class labels"},
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
    .flags = NF_OP_INPUT, .infer = input_infer, .per_step = input_per_step,
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

static void output_backward(const nf_exec *e)
{
    int64_t n = e->batch * nf_shape_size(e->out_shape);
    float *dx = e->in_grad[0];
    if (!dx)
        return;
    for (int64_t i = 0; i < n; i++)
        dx[i] += e->out_grad[i];
}

const nf_op nf_op_output = {
    .name = "output", .summary = "marks its input as a graph output (identity)",
    .min_inputs = 1, .max_inputs = 1,
    .flags = NF_OP_OUTPUT | NF_OP_GRAD_NO_INPUTS | NF_OP_GRAD_NO_OUTPUT, .infer = output_infer,
    .forward = output_forward, .backward = output_backward,
};
