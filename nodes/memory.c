/* nodeflow — memory: state carried between runs of a plan (time steps).
 *
 * A memory node outputs, at step t, the value its source node had at step
 * t - 1, and its initial state (zeros or a constant) at t = 0. Its source
 * may be defined after it: that back edge is how a recurrent flow is
 * written, and it is the only edge allowed to point forward. The state
 * lives in the node's saved buffer; the executor copies the source's value
 * into it at the end of every forward pass. Gradients do not flow through
 * the back edge here: each run is one time step (backpropagation through
 * time unrolls the steps; see the recurrent-flow issue). */
#include <math.h>
#include <string.h>

#include "engine/internal.h"

static const char *const memory_inits[] = {"zeros", "constant", NULL};

static const nf_attr_spec memory_attrs[] = {
    {"shape", NF_ATTR_DIMS, 0, 0, 0, NULL, "per-sample shape of the state (that of its source)"},
    NF_ATTR_ENUM_DEF("init", 0, memory_inits, "initial state: zeros or constant"),
    NF_ATTR_FLOAT_DEF("value", 0, -1e30, 1e30, "initial value for init=constant"),
};

static nf_status memory_infer(nf_infer *ctx)
{
    ctx->out = *ctx->dims;
    ctx->saved_per_sample = nf_shape_size(ctx->dims);
    return NF_OK;
}

/* y = state (the source's value at the previous step) */
static void memory_forward(const nf_exec *e)
{
    memcpy(e->out, e->saved, (size_t)(e->batch * nf_shape_size(e->out_shape)) * sizeof(float));
}

/* the initial state: zeros or the constant */
static void memory_reset(const nf_node *node, float *state, int64_t rows)
{
    int64_t n = rows * nf_shape_size(&node->shape);
    float value = node->attr[1] == 1 ? (float)node->attr[2] : 0.0f;
    for (int64_t i = 0; i < n; i++)
        state[i] = value;
}

const nf_op nf_op_memory = {
    .name = "memory", .summary = "the value its source had at the previous step (a recurrent back edge)",
    .min_inputs = 0, .max_inputs = 0,
    .attrs = memory_attrs, .n_attrs = NF_COUNT(memory_attrs),
    .flags = NF_OP_MEMORY, .infer = memory_infer, .forward = memory_forward, .reset_state = memory_reset,
};
