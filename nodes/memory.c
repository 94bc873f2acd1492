/* nodeflow — memory: state carried between runs of a plan (time steps).
 *
 * A memory node outputs, at step t, the value its source node had at step
 * t - 1, and its initial state (zeros or a constant) at t = 0. Its source
 * may be defined after it: that back edge is how a recurrent flow is
 * written, and it is the only edge allowed to point forward. The state
 * lives in the node's saved buffer; the executor copies the source's value
 * into it at the end of every forward pass.
 *
 * In a plan unrolled over T steps (nf_plan_set_steps) the executor hands
 * the source's value of step t - 1 to the node at step t, and its gradient
 * back to the source (engine/exec.c). The state at step 0 is carried from
 * the previous run (carry=true, the default), or set afresh every run:
 * zeros, a constant, or a learned vector (init=param, parameter NAME.init,
 * trained through the gradient of step 0). */
#include <math.h>
#include <string.h>

#include "nodes/op.h"

enum { SHAPE, INIT, VALUE, CARRY };
enum { INIT_ZEROS, INIT_CONSTANT, INIT_PARAM };

static const char *const memory_inits[] = {"zeros", "constant", "param", NULL};

static const nf_attr_spec memory_attrs[] = {
    [SHAPE] = {"shape", NF_ATTR_DIMS, 0, 0, 0, NULL, "per-sample shape of the state (that of its source)"},
    [INIT] = NF_ATTR_ENUM_DEF("init", 0, memory_inits, "initial state: zeros, constant, or param (learned)"),
    [VALUE] = NF_ATTR_FLOAT_DEF("value", 0, -1e30, 1e30, "initial value for init=constant"),
    [CARRY] = NF_ATTR_BOOL_DEF("carry", 1, "keep the state from one run to the next (init=param never does)"),
};

static nf_status memory_infer(nf_infer *ctx)
{
    ctx->out = *ctx->dims;
    ctx->saved_per_sample = ctx->state_per_sample = nf_shape_size(ctx->dims);
    if (ctx->attr[INIT] == INIT_PARAM) {
        ctx->params[0] = (nf_param_spec){"init", *ctx->dims, NF_INIT_ZEROS, 0, 1, 1, 0};
        ctx->n_params = 1;
    }
    return NF_OK;
}

/* y = state (the source's value at the previous step) */
static void memory_forward(const nf_exec *e)
{
    memcpy(e->out, e->saved, (size_t)(e->batch * nf_shape_size(e->out_shape)) * sizeof(float));
}

/* At step 0 of a run that starts from the learned state: d init += the
 * sum over rows of dy (the executor calls it only then). */
static void memory_backward(const nf_exec *e)
{
    int64_t size = nf_shape_size(e->out_shape);
    for (int64_t r = 0; e->node->n_params && r < e->batch; r++)
        for (int64_t i = 0; i < size; i++)
            e->param_grad[0][i] += e->out_grad[r * size + i];
}

/* the initial state: zeros or the constant (a learned one is set by the
 * executor at the start of every run) */
static void memory_reset(const nf_node *node, float *state, int64_t rows)
{
    int64_t n = rows * nf_shape_size(&node->shape);
    float value = node->attr[INIT] == INIT_CONSTANT ? (float)node->attr[VALUE] : 0.0f;
    for (int64_t i = 0; i < n; i++)
        state[i] = value;
}

/* A learned initial state cannot carry: every run starts from it. */
static int memory_carries(const nf_node *node) { return node->attr[CARRY] != 0 && node->attr[INIT] != INIT_PARAM; }

const nf_op nf_op_memory = {
    .name = "memory", .summary = "the value its source had at the previous step (a recurrent back edge)",
    .min_inputs = 0, .max_inputs = 0,
    .attrs = memory_attrs, .n_attrs = NF_COUNT(memory_attrs),
    .flags = NF_OP_MEMORY, .infer = memory_infer, .forward = memory_forward, .backward = memory_backward,
    .reset_state = memory_reset, .carries_state = memory_carries,
};

