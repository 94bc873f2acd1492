/* nodeflow — running a plan: forward in topological order, backward in
 * reverse, with no heap allocation. */
#include <math.h>
#include <stdio.h>
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

/* The arena of time step t. */
static float *frame_at(const nf_plan *p, int64_t t) { return p->arena + t * p->frame_floats; }

/* Fills e for node k in the frame being run, step t. */
static void fill_exec(const nf_plan *p, int k, int64_t t, nf_exec *e)
{
    const nf_graph *g = p->graph;
    const nf_node *node = g->nodes[k];
    const nf_plan_step *s = &p->steps[k];
    memset(e, 0, sizeof *e);
    e->kernels = p->steps[k].kernels;
    e->state = p->steps[k].state;
    if (p->training) { /* collectives only in training: see nf_exec */
        e->sum_across = p->sum_across;
        e->sum_ctx = p->sum_ctx;
    }
    e->params = g->params;
    e->param_values = g->values;
    e->param_grads = g->grads;
    e->node = node;
    e->attr = node->attr;
    e->batch = p->batch;
    e->n_inputs = node->n_inputs;
    e->training = p->training;
    e->threads = p->threads;
    e->capacity = p->capacity;
    e->workspace = p->workspace_floats ? p->frame + p->workspace_off : NULL;
    /* a key for this node in this run and step: masks differ between runs,
     * steps and nodes, and a seed and run count reproduce them */
    uint64_t at = (uint64_t)k + (uint64_t)t * ((uint64_t)p->n + 1);
    e->random = nf_mix64(g->seed ^ nf_mix64(g->runs * 0x9e3779b97f4a7c15ull + at));
    for (int i = 0; i < node->n_inputs; i++) {
        const nf_node *in = node->inputs[i];
        e->in[i] = p->frame + p->steps[in->index].value_off;
        e->in_shape[i] = &in->shape;
    }
    e->out = p->frame + s->value_off;
    e->out_shape = &node->shape;
    for (int j = 0; j < node->n_params; j++) {
        int64_t off = g->params[node->param[j]].offset;
        e->param[j] = g->values + off;
        e->param_grad[j] = g->grads + off;
    }
    if (s->saved_off >= 0)
        e->saved = p->frame + s->saved_off;
    if (p->masked && (node->op->flags & NF_OP_LOSS))
        e->row_weight = p->buf.row_weight + t * p->capacity;
}

static int64_t size_of(const nf_node *node) { return nf_shape_size(&node->shape); }

/* Row b of a [batch, steps, size] sequence buffer at step t. */
static float *seq_row(const nf_plan *p, float *seq, const nf_node *node, int64_t b, int64_t t)
{
    return seq + (b * p->time_steps + t) * size_of(node);
}

/* With sequence lengths: the weight of each (step, row) in the loss (1
 * while the row's sequence lasts, or only at its last step), and the
 * factor batch / (sum of the weights) that makes the steps' losses (each
 * a mean over the batch rows) a mean over the weighted pairs. */
static void weigh_rows(nf_plan *p)
{
    double total = 0.0;
    for (int64_t t = 0; t < p->time_steps; t++)
        for (int64_t b = 0; b < p->batch; b++) {
            int counts = p->loss_last_step ? t == p->buf.lengths[b] - 1 : t < p->buf.lengths[b];
            p->buf.row_weight[t * p->capacity + b] = (float)counts;
            total += counts;
        }
    p->loss_factor = total > 0 ? (double)p->batch / total : 0.0;
}

/* Start of a run: memory nodes that do not carry their state take their
 * initial one (a learned one: its parameter in every row). */
static void start_run(nf_plan *p)
{
    if (p->masked)
        weigh_rows(p);
    for (int k = 0; k < p->n; k++) {
        const nf_node *node = p->graph->nodes[k];
        if (!(node->op->flags & NF_OP_MEMORY) || nf_node_carries_state(node))
            continue;
        float *state = p->arena + p->steps[k].saved_off;
        if (node->n_params == 0) {
            node->op->reset_state(node, state, p->batch);
            continue;
        }
        const float *init = p->graph->values + p->graph->params[node->param[0]].offset;
        for (int64_t b = 0; b < p->batch; b++)
            memcpy(state + b * size_of(node), init, (size_t)size_of(node) * sizeof(float));
    }
}

/* A memory node's value after step t (frame `at`): its source's value,
 * or for a row whose sequence ended before t, the value it already had
 * (frozen). Written to `state`. */
static void take_state(const nf_plan *p, int k, const float *at, int64_t t, float *state)
{
    const nf_node *node = p->graph->nodes[k];
    const float *source = at + p->steps[node->memory_source->index].value_off, *kept = at + p->steps[k].saved_off;
    int64_t size = size_of(node);
    if (!p->masked) {
        memcpy(state, source, (size_t)(p->batch * size) * sizeof(float));
        return;
    }
    for (int64_t b = 0; b < p->batch; b++)
        memmove(state + b * size, (t < p->buf.lengths[b] ? source : kept) + b * size, (size_t)size * sizeof(float));
}

/* Before step t of an unrolled run: sequence inputs get their slice t,
 * other inputs the value given for the run, memory nodes the value their
 * source had at step t - 1. */
static void enter_step(nf_plan *p, int64_t t)
{
    const float *first = frame_at(p, 0), *before = t > 0 ? frame_at(p, t - 1) : NULL;
    for (int k = 0; k < p->n; k++) {
        const nf_node *node = p->graph->nodes[k];
        size_t row = (size_t)size_of(node) * sizeof(float);
        float *value = p->frame + p->steps[k].value_off;
        if (nf_input_is_sequence(node))
            for (int64_t b = 0; b < p->batch; b++)
                memcpy(value + b * size_of(node), seq_row(p, p->buf.seq_value[k], node, b, t), row);
        else if ((node->op->flags & NF_OP_INPUT) && t > 0)
            memcpy(value, first + p->steps[k].value_off, row * (size_t)p->batch);
        else if (node->memory_source && t > 0)
            take_state(p, k, before, t - 1, p->frame + p->steps[k].saved_off);
    }
}

/* After step t: outputs to their [batch, steps, size] buffers, and the
 * step's loss. */
static void leave_step(nf_plan *p, int64_t t)
{
    double loss = 0.0;
    for (int k = 0; k < p->n; k++) {
        const nf_node *node = p->graph->nodes[k];
        if (node->op->flags & NF_OP_LOSS)
            loss += p->frame[p->steps[k].value_off];
        if (!(node->op->flags & NF_OP_OUTPUT))
            continue;
        for (int64_t b = 0; b < p->batch; b++)
            memcpy(seq_row(p, p->buf.seq_value[k], node, b, t), p->frame + p->steps[k].value_off + b * size_of(node),
                   (size_t)size_of(node) * sizeof(float));
    }
    p->buf.losses[t] = loss;
}

/* After a run, each memory node keeps its source's last value for the
 * next run (in the first frame, where the state lives). */
static void carry_memory(nf_plan *p)
{
    const float *last = frame_at(p, p->time_steps - 1);
    for (int k = 0; k < p->n; k++)
        if (p->graph->nodes[k]->op->flags & NF_OP_MEMORY)
            take_state(p, k, last, p->time_steps - 1, p->arena + p->steps[k].saved_off);
}

/* The first non-finite of n floats, or -1. */
static int64_t first_nonfinite(const float *x, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        if (!isfinite(x[i]))
            return i;
    return -1;
}

/* With check_finite: an error naming the node whose output (or the
 * gradient of its output) holds a NaN or an Inf. */
static nf_status check_finite(const nf_plan *p, const nf_node *node, const float *x, int64_t t, const char *what,
                              nf_error *err)
{
    int64_t n = rows_of(p, node) * size_of(node), at = first_nonfinite(x, n);
    if (at < 0)
        return NF_OK;
    char when[48] = "";
    if (p->time_steps > 1)
        snprintf(when, sizeof when, " at time step %lld", (long long)t);
    return nf_fail(err, NF_ERR_NUMERIC, "%s of %s '%s' is %s%s (row %lld, element %lld)", what, node->op->name,
                   node->name, isnan(x[at]) ? "NaN" : "infinite", when, (long long)(at / (n / rows_of(p, node))),
                   (long long)(at % (n / rows_of(p, node))));
}

nf_status nf_plan_forward(nf_plan *p, nf_error *err)
{
    nf_status st = check_current(p, err);
    if (st != NF_OK)
        return st;
    nf_exec e;
    start_run(p);
    for (int64_t t = 0; t < p->time_steps; t++) {
        p->frame = frame_at(p, t);
        if (p->time_steps > 1)
            enter_step(p, t);
        for (int k = 0; k < p->n; k++) {
            const nf_op *op = p->graph->nodes[k]->op;
            if (!op->forward)
                continue;
            fill_exec(p, k, t, &e);
            op->forward(&e);
            if (p->check_finite && (st = check_finite(p, e.node, e.out, t, "the output", err)) != NF_OK) {
                p->forward_done = 0;
                return st;
            }
        }
        if (p->time_steps > 1)
            leave_step(p, t);
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
    float *grad = p->frame + s->grad_off;
    if (!p->grad_ready[node->index]) {
        int64_t n = rows_of(p, node) * size_of(node);
        memset(grad, 0, (size_t)n * sizeof(float));
        p->grad_ready[node->index] = 1;
    }
    return grad;
}

/* Unrolled backward, at node k of step t (before its own backward): a
 * memory node's source takes the gradient the memory node had at step
 * t + 1 (buf.carry). Returns 1 for a memory node at t > 0, whose gradient
 * is kept for step t - 1 (buf.carry_next; the two swap after each step, so
 * the order of a memory node and its source in the graph does not
 * matter); its own backward, for a learned initial state, runs at step 0
 * only. */
static int hand_over_time(nf_plan *p, int k, int64_t t)
{
    const nf_graph *g = p->graph;
    const nf_node *node = g->nodes[k];
    int64_t n = p->batch * size_of(node);
    for (int m = 0; m < p->n && t + 1 < p->time_steps; m++) {
        if (g->nodes[m]->memory_source != node || !p->buf.carry[m])
            continue;
        float *grad = grad_for_writing(p, node);
        for (int64_t i = 0; i < n; i++)
            grad[i] += p->buf.carry[m][i];
    }
    if (!node->memory_source || t == 0)
        return 0;
    if (p->grad_ready[k])
        memcpy(p->buf.carry_next[k], p->frame + p->steps[k].grad_off, (size_t)n * sizeof(float));
    else
        memset(p->buf.carry_next[k], 0, (size_t)n * sizeof(float));
    return 1;
}

/* After step t backward: gradients of inputs that keep one, per step for
 * sequence inputs, summed over the steps for the others. */
static void collect_input_grads(nf_plan *p, int64_t t)
{
    for (int k = 0; k < p->n; k++) {
        const nf_node *node = p->graph->nodes[k];
        float *to = p->buf.seq_grad[k];
        if (!to)
            continue;
        const float *grad = p->grad_ready[k] ? p->frame + p->steps[k].grad_off : NULL;
        int64_t size = size_of(node);
        int per_step = nf_input_is_sequence(node), fresh = per_step || t == p->time_steps - 1;
        for (int64_t b = 0; b < p->batch; b++) {
            float *row = per_step ? seq_row(p, to, node, b, t) : to + b * size;
            for (int64_t i = 0; i < size; i++)
                row[i] = (fresh ? 0.0f : row[i]) + (grad ? grad[b * size + i] : 0.0f);
        }
    }
}

/* The gradient that seeds loss nodes at step t */
static double loss_seed(const nf_plan *p, int64_t t, double loss_scale)
{
    if (p->time_steps == 1)
        return loss_scale;
    if (p->masked)
        return loss_scale * p->loss_factor;
    if (p->loss_last_step)
        return t == p->time_steps - 1 ? loss_scale : 0.0;
    return loss_scale / (double)p->time_steps;
}

static nf_status backward_step(nf_plan *p, int64_t t, double loss_scale, nf_error *err)
{
    nf_graph *g = p->graph;
    nf_exec e;
    memset(p->grad_ready, 0, (size_t)p->n);
    for (int k = p->n - 1; k >= 0; k--) {
        const nf_node *node = g->nodes[k];
        const nf_plan_step *s = &p->steps[k];
        if (!s->has_grad)
            continue;
        if (node->op->flags & NF_OP_LOSS) {
            /* d(scale * loss)/d(this loss), the loss shared among the steps */
            p->frame[s->grad_off] = (float)loss_seed(p, t, loss_scale);
            p->grad_ready[k] = 1;
        }
        if (p->time_steps > 1 && hand_over_time(p, k, t))
            continue;
        if (!s->run_backward)
            continue;
        fill_exec(p, k, t, &e);
        e.out_grad = grad_for_writing(p, node);
        nf_status st = p->check_finite ? check_finite(p, node, e.out_grad, t, "the gradient of the output", err) : NF_OK;
        if (st != NF_OK)
            return st;
        for (int i = 0; i < node->n_inputs; i++) {
            const nf_node *in = node->inputs[i];
            if (!(node->nondiff_inputs & (1u << i)) && p->steps[in->index].has_grad)
                e.in_grad[i] = grad_for_writing(p, in);
        }
        node->op->backward(&e);
        if (p->grads_done && t == 0)
            p->grads_done(p->grads_done_ctx, k);
    }
    if (p->time_steps > 1)
        collect_input_grads(p, t);
    return NF_OK;
}

/* With check_finite, after backward: the first parameter whose gradient
 * is not finite. */
static nf_status check_param_grads(const nf_plan *p, nf_error *err)
{
    const nf_graph *g = p->graph;
    for (int k = 0; k < g->n_params; k++) {
        int64_t at = first_nonfinite(g->grads + g->params[k].offset, g->params[k].size);
        if (at >= 0)
            return nf_fail(err, NF_ERR_NUMERIC, "the gradient of parameter %s is %s (element %lld)", g->params[k].name,
                           isnan(g->grads[g->params[k].offset + at]) ? "NaN" : "infinite", (long long)at);
    }
    return NF_OK;
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
    for (int64_t t = p->time_steps - 1; t >= 0 && st == NF_OK; t--) {
        p->frame = frame_at(p, t);
        st = backward_step(p, t, loss_scale, err);
        float **handed = p->buf.carry; /* step t's memory gradients are what step t - 1 takes */
        p->buf.carry = p->buf.carry_next;
        p->buf.carry_next = handed;
    }
    if (st == NF_OK && p->check_finite)
        st = check_param_grads(p, err);
    return st;
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

/* [batch, shape], or [batch, steps, shape] for a sequence buffer */
static void make_view(const nf_plan *p, const nf_node *node, float *data, int per_step, nf_tensor *view)
{
    memset(view, 0, sizeof *view);
    view->data = data;
    if (node->op->flags & NF_OP_LOSS) {
        view->shape.rank = 0;
        return;
    }
    int lead = per_step ? 2 : 1;
    view->shape.rank = node->shape.rank + lead;
    view->shape.dim[0] = p->batch;
    view->shape.dim[1] = p->time_steps;
    for (int i = 0; i < node->shape.rank; i++)
        view->shape.dim[i + lead] = node->shape.dim[i];
}

nf_status nf_plan_input(nf_plan *p, const nf_node *input, nf_tensor *view, nf_error *err)
{
    nf_status st = node_of_plan(p, input, err);
    if (st != NF_OK)
        return st;
    if (!view || !(input->op->flags & NF_OP_INPUT))
        return nf_fail(err, NF_ERR_INVALID_ARGUMENT, "%s '%s' is not an input", input->op->name, input->name);
    if (p->time_steps > 1 && nf_input_is_sequence(input))
        make_view(p, input, p->buf.seq_value[input->index], 1, view);
    else
        make_view(p, input, p->arena + p->steps[input->index].value_off, 0, view);
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

nf_status nf_plan_value(const nf_plan *p, const nf_node *node, nf_tensor *view, nf_error *err)
{
    nf_status st = node_of_plan(p, node, err);
    if (st != NF_OK)
        return st;
    if (!view)
        return nf_fail(err, NF_ERR_INVALID_ARGUMENT, "view is NULL");
    if (!p->steps[node->index].value_kept) /* decided where the plan laid out its arena */
        return nf_fail(err, NF_ERR_STATE,
                       "%s '%s': its memory is reused; mark it with nf_output or compile with NF_PLAN_KEEP_VALUES",
                       node->op->name, node->name);
    if (p->time_steps > 1 && p->buf.seq_value[node->index])
        make_view(p, node, p->buf.seq_value[node->index], 1, view);
    else /* the last step's */
        make_view(p, node, frame_at(p, p->time_steps - 1) + p->steps[node->index].value_off, 0, view);
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
    if (p->time_steps > 1 && p->buf.seq_grad[node->index]) { /* per step, or summed over the steps */
        make_view(p, node, p->buf.seq_grad[node->index], nf_input_is_sequence(node), view);
        return NF_OK;
    }
    if (!p->grad_ready[node->index]) /* no consumer wrote it: the gradient is 0 */
        memset(p->arena + p->steps[node->index].grad_off, 0,
               (size_t)(p->batch * nf_shape_size(&node->shape)) * sizeof(float));
    make_view(p, node, p->arena + p->steps[node->index].grad_off, 0, view);
    return NF_OK;
}

double nf_plan_loss(const nf_plan *p)
{
    if (!p || !p->forward_done)
        return 0.0;
    if (p->time_steps > 1) {
        if (p->loss_last_step && !p->masked)
            return p->buf.losses[p->time_steps - 1];
        double sum = 0.0;
        for (int64_t t = 0; t < p->time_steps; t++)
            sum += p->buf.losses[t];
        return p->masked ? sum * p->loss_factor : sum / (double)p->time_steps;
    }
    double total = 0.0;
    for (int k = 0; k < p->n; k++)
        if (p->graph->nodes[k]->op->flags & NF_OP_LOSS)
            total += p->arena[p->steps[k].value_off];
    return total;
}

void nf_plan_set_check_finite(nf_plan *p, int on)
{
    if (p)
        p->check_finite = on != 0;
}

void nf_plan_set_skip_nonfinite(nf_plan *p, int skip)
{
    if (p)
        p->skip_nonfinite = skip != 0;
}
