/* nodeflow — running a plan: forward in topological order, backward in
 * reverse, with no heap allocation. */
#include <math.h>
#include <string.h>

#include "engine/plan_internal.h"

static nf_status check_current(const nf_plan *p, nf_error *err)
{
    if (!p)
        return nf_fail(err, NF_ERR_INVALID_ARGUMENT, "plan is NULL");
    if (p->graph->version != p->version)
        return nf_fail(err, NF_ERR_STATE, "the graph changed after the plan was compiled; compile it again");
    return NF_OK;
}

static int64_t rows_of(const nf_plan *p, const nf_node *node)
{
    return (node->op->flags & NF_OP_LOSS) ? 1 : p->batch;
}

static void fill_exec(const nf_plan *p, int k, nf_exec *e)
{
    const nf_graph *g = p->graph;
    const nf_node *node = g->nodes[k];
    const nf_plan_step *s = &p->steps[k];
    memset(e, 0, sizeof *e);
    e->graph = g;
    e->node = node;
    e->attr = node->attr;
    e->batch = p->batch;
    e->n_inputs = node->n_inputs;
    e->training = p->training;
    e->threads = p->threads;
    e->capacity = p->capacity;
    e->workspace = p->workspace_floats ? p->arena + p->workspace_off : NULL;
    /* a key for this node in this run: masks differ between runs and
     * nodes, and a seed and run count reproduce them */
    e->random = nf_mix64(g->seed ^ nf_mix64(g->runs * 0x9e3779b97f4a7c15ull + (uint64_t)k));
    for (int i = 0; i < node->n_inputs; i++) {
        const nf_node *in = node->inputs[i];
        e->in[i] = p->arena + p->steps[in->index].value_off;
        e->in_shape[i] = &in->shape;
    }
    e->out = p->arena + s->value_off;
    e->out_shape = &node->shape;
    for (int j = 0; j < node->n_params; j++) {
        int64_t off = g->params[node->param[j]].offset;
        e->param[j] = g->values + off;
        e->param_grad[j] = g->grads + off;
    }
    if (s->saved_off >= 0)
        e->saved = p->arena + s->saved_off;
}

/* After a step, each memory node keeps its source's value for the next. */
static void carry_memory(nf_plan *p)
{
    for (int k = 0; k < p->n; k++) {
        const nf_node *node = p->graph->nodes[k];
        if (!(node->op->flags & NF_OP_MEMORY))
            continue;
        const nf_node *src = node->memory_source;
        memcpy(p->arena + p->steps[k].saved_off, p->arena + p->steps[src->index].value_off,
               (size_t)(p->batch * nf_shape_size(&node->shape)) * sizeof(float));
    }
}

nf_status nf_plan_forward(nf_plan *p, nf_error *err)
{
    nf_status st = check_current(p, err);
    if (st != NF_OK)
        return st;
    nf_exec e;
    for (int k = 0; k < p->n; k++) {
        const nf_op *op = p->graph->nodes[k]->op;
        if (!op->forward)
            continue;
        fill_exec(p, k, &e);
        op->forward(&e);
    }
    if (p->training)
        p->graph->runs++;
    carry_memory(p);
    p->forward_done = 1;
    return NF_OK;
}

/* Zeroes a node's gradient the first time something writes to it in
 * this backward pass (its buffer may hold another buffer's old data). */
static float *grad_for_writing(nf_plan *p, const nf_node *node)
{
    const nf_plan_step *s = &p->steps[node->index];
    float *grad = p->arena + s->grad_off;
    if (!p->grad_ready[node->index]) {
        int64_t n = rows_of(p, node) * nf_shape_size(&node->shape);
        memset(grad, 0, (size_t)n * sizeof(float));
        p->grad_ready[node->index] = 1;
    }
    return grad;
}

nf_status nf_plan_backward(nf_plan *p, nf_error *err) { return nf_plan_backward_ex(p, 1.0, 0, err); }

nf_status nf_plan_backward_ex(nf_plan *p, double loss_scale, int accumulate, nf_error *err)
{
    nf_status st = check_current(p, err);
    if (st != NF_OK)
        return st;
    if (!(p->flags & NF_PLAN_TRAINING))
        return nf_fail(err, NF_ERR_STATE, "backward needs a plan compiled with NF_PLAN_TRAINING");
    if (!p->forward_done)
        return nf_fail(err, NF_ERR_STATE, "backward needs a forward pass first");
    nf_graph *g = p->graph;
    if (!accumulate)
        memset(g->grads, 0, (size_t)g->param_floats * sizeof(float));
    memset(p->grad_ready, 0, (size_t)p->n);
    nf_exec e;
    for (int k = p->n - 1; k >= 0; k--) {
        const nf_node *node = g->nodes[k];
        const nf_plan_step *s = &p->steps[k];
        if (!s->has_grad)
            continue;
        if (node->op->flags & NF_OP_LOSS) {
            p->arena[s->grad_off] = (float)loss_scale; /* d(scale * sum of losses)/d(this loss) */
            p->grad_ready[k] = 1;
        }
        if (!s->run_backward)
            continue;
        fill_exec(p, k, &e);
        e.out_grad = grad_for_writing(p, node);
        for (int i = 0; i < node->n_inputs; i++) {
            const nf_node *in = node->inputs[i];
            if (!(node->nondiff_inputs & (1u << i)) && p->steps[in->index].has_grad)
                e.in_grad[i] = grad_for_writing(p, in);
        }
        node->op->backward(&e);
    }
    return NF_OK;
}

static nf_status node_of_plan(const nf_plan *p, const nf_node *node, nf_error *err)
{
    nf_status st = check_current(p, err);
    if (st != NF_OK)
        return st;
    if (!node || node->index >= p->n || p->graph->nodes[node->index] != node)
        return nf_fail(err, NF_ERR_INVALID_ARGUMENT, "the node does not belong to the plan's graph");
    return NF_OK;
}

static void make_view(const nf_plan *p, const nf_node *node, float *data, nf_tensor *view)
{
    memset(view, 0, sizeof *view);
    view->data = data;
    if (node->op->flags & NF_OP_LOSS) {
        view->shape.rank = 0;
        return;
    }
    view->shape.rank = node->shape.rank + 1;
    view->shape.dim[0] = p->batch;
    for (int i = 0; i < node->shape.rank; i++)
        view->shape.dim[i + 1] = node->shape.dim[i];
}

nf_status nf_plan_input(nf_plan *p, const nf_node *input, nf_tensor *view, nf_error *err)
{
    nf_status st = node_of_plan(p, input, err);
    if (st != NF_OK)
        return st;
    if (!view || !(input->op->flags & NF_OP_INPUT))
        return nf_fail(err, NF_ERR_INVALID_ARGUMENT, "%s '%s' is not an input", input->op->name, input->name);
    make_view(p, input, p->arena + p->steps[input->index].value_off, view);
    return NF_OK;
}

nf_status nf_plan_set_input(nf_plan *p, const nf_node *input, const float *data, nf_error *err)
{
    nf_tensor view;
    nf_status st = nf_plan_input(p, input, &view, err);
    if (st != NF_OK)
        return st;
    if (!data)
        return nf_fail(err, NF_ERR_INVALID_ARGUMENT, "input data is NULL");
    memcpy(view.data, data, (size_t)nf_shape_size(&view.shape) * sizeof(float));
    return NF_OK;
}

static int value_readable(const nf_plan *p, const nf_node *node)
{
    if ((p->flags & NF_PLAN_KEEP_VALUES) || (node->op->flags & (NF_OP_INPUT | NF_OP_OUTPUT | NF_OP_LOSS)))
        return 1;
    for (int c = node->index + 1; c < p->n; c++)
        for (int i = 0; i < p->graph->nodes[c]->n_inputs; i++)
            if (p->graph->nodes[c]->inputs[i] == node)
                return 0;
    return 1; /* a sink: nothing reuses its memory */
}

nf_status nf_plan_value(const nf_plan *p, const nf_node *node, nf_tensor *view, nf_error *err)
{
    nf_status st = node_of_plan(p, node, err);
    if (st != NF_OK)
        return st;
    if (!view)
        return nf_fail(err, NF_ERR_INVALID_ARGUMENT, "view is NULL");
    if (!value_readable(p, node))
        return nf_fail(err, NF_ERR_STATE,
                       "%s '%s': its memory is reused; mark it with nf_output or compile with NF_PLAN_KEEP_VALUES",
                       node->op->name, node->name);
    make_view(p, node, p->arena + p->steps[node->index].value_off, view);
    return NF_OK;
}

nf_status nf_plan_grad(const nf_plan *p, const nf_node *node, nf_tensor *view, nf_error *err)
{
    nf_status st = node_of_plan(p, node, err);
    if (st != NF_OK)
        return st;
    if (!view)
        return nf_fail(err, NF_ERR_INVALID_ARGUMENT, "view is NULL");
    if (!node->requires_grad || !p->steps[node->index].has_grad)
        return nf_fail(err, NF_ERR_STATE,
                       "%s '%s': no gradient kept; call nf_input_requires_grad and use a training plan with a loss",
                       node->op->name, node->name);
    if (!p->grad_ready[node->index]) /* no consumer wrote it: the gradient is 0 */
        memset(p->arena + p->steps[node->index].grad_off, 0,
               (size_t)(p->batch * nf_shape_size(&node->shape)) * sizeof(float));
    make_view(p, node, p->arena + p->steps[node->index].grad_off, view);
    return NF_OK;
}

double nf_plan_loss(const nf_plan *p)
{
    if (!p || !p->forward_done)
        return 0.0;
    double total = 0.0;
    for (int k = 0; k < p->n; k++)
        if (p->graph->nodes[k]->op->flags & NF_OP_LOSS)
            total += p->arena[p->steps[k].value_off];
    return total;
}
