/* nodeflow — weight penalties as loss nodes, so that they show in the
 * loss: l1_penalty = lambda sum |w|, l2_penalty = lambda sum w^2, over the
 * parameters of the nodes given as inputs (by default those of rank >= 2,
 * the weights; include_1d adds biases and normalization parameters).
 * Gradients: lambda sign(w) and 2 lambda w, added to the parameters'
 * gradients. Parameters shared by several inputs are counted once. */
#include <math.h>

#include "nodes/op.h"

enum { LAMBDA, INCLUDE_1D };

static const nf_attr_spec penalty_attrs[] = {
    [LAMBDA] = {"lambda", NF_ATTR_FLOAT, NAN, 0, 1e6, NULL, "strength of the penalty"},
    [INCLUDE_1D] = NF_ATTR_BOOL_DEF("include_1d", 0, "also penalise 1-D parameters (biases, norms)"),
};

static nf_status penalty_infer(nf_infer *ctx)
{
    for (int i = 0; i < ctx->n_inputs; i++)
        if (ctx->node->inputs[i]->n_params == 0 && !ctx->node->inputs[i]->share_from)
            return nf_infer_fail(ctx, NF_ERR_GRAPH, "input '%s' has no parameters to penalise", ctx->in_name[i]);
    ctx->out = (nf_shape){0, {0}};
    ctx->nondiff_inputs = (1u << ctx->n_inputs) - 1; /* the activations do not matter */
    return NF_OK;
}

/* Calls visit(param) once for each penalised parameter of the inputs. */
static void each_param(const nf_exec *e, void (*visit)(const nf_exec *e, const nf_param *p, void *acc), void *acc)
{
    const nf_node *node = e->node;
    for (int i = 0; i < node->n_inputs; i++)
        for (int j = 0; j < node->inputs[i]->n_params; j++) {
            int k = node->inputs[i]->param[j], seen = 0;
            for (int a = 0; a < i && !seen; a++)
                for (int b = 0; b < node->inputs[a]->n_params; b++)
                    seen |= node->inputs[a]->param[b] == k;
            for (int b = 0; b < j && !seen; b++)
                seen |= node->inputs[i]->param[b] == k;
            const nf_param *p = &e->params[k];
            if (!seen && !p->spec.buffer && (p->shape.rank >= 2 || e->attr[INCLUDE_1D] != 0))
                visit(e, p, acc);
        }
}

static void sum_abs(const nf_exec *e, const nf_param *p, void *acc)
{
    const float *w = e->param_values + p->offset;
    for (int64_t i = 0; i < p->size; i++)
        *(double *)acc += fabs(w[i]);
}

static void sum_squares(const nf_exec *e, const nf_param *p, void *acc)
{
    const float *w = e->param_values + p->offset;
    for (int64_t i = 0; i < p->size; i++)
        *(double *)acc += (double)w[i] * w[i];
}

/* k = lambda * d(loss)/d(penalty) */
static void grad_abs(const nf_exec *e, const nf_param *p, void *acc)
{
    float k = (float)*(double *)acc;
    const float *w = e->param_values + p->offset;
    float *g = e->param_grads + p->offset;
    for (int64_t i = 0; i < p->size; i++)
        g[i] += w[i] > 0.0f ? k : w[i] < 0.0f ? -k : 0.0f;
}

static void grad_squares(const nf_exec *e, const nf_param *p, void *acc)
{
    float k = (float)(2.0 * *(double *)acc);
    const float *w = e->param_values + p->offset;
    float *g = e->param_grads + p->offset;
    for (int64_t i = 0; i < p->size; i++)
        g[i] += k * w[i];
}

static void l1_forward(const nf_exec *e)
{
    double sum = 0;
    each_param(e, sum_abs, &sum);
    e->out[0] = (float)(e->attr[LAMBDA] * sum);
}

static void l2_forward(const nf_exec *e)
{
    double sum = 0;
    each_param(e, sum_squares, &sum);
    e->out[0] = (float)(e->attr[LAMBDA] * sum);
}

static void l1_backward(const nf_exec *e)
{
    double k = e->attr[LAMBDA] * e->out_grad[0];
    each_param(e, grad_abs, &k);
}

static void l2_backward(const nf_exec *e)
{
    double k = e->attr[LAMBDA] * e->out_grad[0];
    each_param(e, grad_squares, &k);
}

static double penalty_flops(const nf_node *node)
{
    (void)node;
    return 0.0; /* per batch, not per sample */
}

const nf_op nf_op_l1_penalty = {
    .name = "l1_penalty", .summary = "lambda * sum |w| over the parameters of its inputs (a loss)",
    .min_inputs = 1, .max_inputs = NF_MAX_INPUTS,
    .attrs = penalty_attrs, .n_attrs = NF_COUNT(penalty_attrs),
    .flags = NF_OP_LOSS | NF_OP_PARAM_PENALTY | NF_OP_GRAD_NO_INPUTS | NF_OP_GRAD_NO_OUTPUT,
    .infer = penalty_infer, .forward = l1_forward, .backward = l1_backward, .flops = penalty_flops,
};

const nf_op nf_op_l2_penalty = {
    .name = "l2_penalty", .summary = "lambda * sum w^2 over the parameters of its inputs (a loss)",
    .min_inputs = 1, .max_inputs = NF_MAX_INPUTS,
    .attrs = penalty_attrs, .n_attrs = NF_COUNT(penalty_attrs),
    .flags = NF_OP_LOSS | NF_OP_PARAM_PENALTY | NF_OP_GRAD_NO_INPUTS | NF_OP_GRAD_NO_OUTPUT,
    .infer = penalty_infer, .forward = l2_forward, .backward = l2_backward, .flops = penalty_flops,
};
