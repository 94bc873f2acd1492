/* nodeflow — compiling a graph into a plan: which nodes run backward,
 * every buffer's lifetime, and their places in one arena.
 *
 * Time runs over forward steps 0 .. n-1 (node k at time k), then
 * backward steps n .. 2n-1 (node k at time 2n-1-k). Each buffer (a
 * node's value, its gradient, the state it saves for backward) lives over
 * an interval of that timeline; buffers whose intervals do not overlap
 * share memory. */
#include <stdlib.h>
#include <string.h>

#include "engine/plan_internal.h"

typedef struct interval {
    int64_t start, end;   /* inclusive */
    int64_t floats;
    int64_t *offset;      /* where to write the assigned arena offset */
} interval;

/* ---- which nodes need gradients -------------------------------------- */

static int input_differentiable(const nf_node *node, int i)
{
    return !(node->nondiff_inputs & (1u << i));
}

/* Marks along the edges of a graph, forward (needs_grad) or backward
 * (reaches_loss); returns whether anything changed. */
static int propagate(nf_plan *p, int forward)
{
    const nf_graph *g = p->graph;
    int changed = 0;
    for (int j = 0; j < p->n; j++) {
        int k = forward ? j : p->n - 1 - j;
        const nf_node *node = g->nodes[k];
        for (int i = 0; i < node->n_inputs; i++) {
            nf_plan_step *in = &p->steps[node->inputs[i]->index], *s = &p->steps[k];
            if (!input_differentiable(node, i))
                continue;
            if (forward && in->needs_grad && !s->needs_grad)
                s->needs_grad = changed = 1;
            if (!forward && s->reaches_loss && !in->reaches_loss)
                in->reaches_loss = changed = 1;
        }
    }
    return changed;
}

/* Unrolled in time, a memory node's value at step t is its source's at
 * t - 1: gradients flow along that back edge too, so the marks run to a
 * fixed point over the graph plus the back edges. */
static void mark_through_time(nf_plan *p)
{
    const nf_graph *g = p->graph;
    for (int changed = 1; changed;) {
        changed = 0;
        for (int k = 0; k < p->n; k++) {
            const nf_node *src = g->nodes[k]->memory_source;
            if (!src)
                continue;
            nf_plan_step *m = &p->steps[k], *s = &p->steps[src->index];
            if (s->needs_grad && !m->needs_grad)
                m->needs_grad = changed = 1;
            if (m->reaches_loss && !s->reaches_loss)
                s->reaches_loss = changed = 1;
        }
        changed |= propagate(p, 1);
        changed |= propagate(p, 0);
    }
}

static void mark_gradients(nf_plan *p)
{
    const nf_graph *g = p->graph;
    int training = (p->flags & NF_PLAN_TRAINING) != 0;
    for (int k = 0; k < p->n; k++) {
        const nf_node *node = g->nodes[k];
        nf_plan_step *s = &p->steps[k];
        s->needs_grad = node->n_params > 0 || node->requires_grad || (node->op->flags & NF_OP_PARAM_PENALTY);
        for (int i = 0; i < node->n_inputs; i++)
            if (input_differentiable(node, i) && p->steps[node->inputs[i]->index].needs_grad)
                s->needs_grad = 1;
    }
    for (int k = p->n - 1; k >= 0; k--) {
        const nf_node *node = g->nodes[k];
        nf_plan_step *s = &p->steps[k];
        if (node->op->flags & NF_OP_LOSS)
            s->reaches_loss = 1;
        if (!s->reaches_loss)
            continue;
        for (int i = 0; i < node->n_inputs; i++)
            if (input_differentiable(node, i))
                p->steps[node->inputs[i]->index].reaches_loss = 1;
    }
    if (p->time_steps > 1)
        mark_through_time(p);
    for (int k = 0; k < p->n; k++) {
        nf_plan_step *s = &p->steps[k];
        s->has_grad = training && s->reaches_loss && s->needs_grad;
        s->run_backward = s->has_grad && g->nodes[k]->op->backward != NULL;
    }
}

/* ---- buffer lifetimes ----------------------------------------------- */

static int64_t backward_time(const nf_plan *p, int k) { return 2 * (int64_t)p->n - 1 - k; }
static int64_t max64(int64_t a, int64_t b) { return a > b ? a : b; }
static int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }

static int is_memory_source(const nf_graph *g, const nf_node *node)
{
    for (int i = 0; i < g->n_nodes; i++)
        if (g->nodes[i]->memory_source == node)
            return 1;
    return 0;
}

/* Values that stay readable: inputs, outputs, losses, sinks, and the
 * sources that memory nodes copy from after forward. */
static int pinned(const nf_plan *p, const nf_node *node, int has_consumers)
{
    unsigned f = node->op->flags;
    return (p->flags & NF_PLAN_KEEP_VALUES) || (f & (NF_OP_INPUT | NF_OP_OUTPUT | NF_OP_LOSS)) ||
           !has_consumers || is_memory_source(p->graph, node);
}

static int64_t value_floats(const nf_plan *p, const nf_node *node)
{
    if (node->op->flags & NF_OP_LOSS)
        return nf_align_floats(1);
    return nf_align_floats(p->capacity * nf_shape_size(&node->shape));
}

/* Appends the value, gradient and saved-state intervals of node k. */
static int node_intervals(nf_plan *p, int k, interval *iv)
{
    const nf_graph *g = p->graph;
    const nf_node *node = g->nodes[k];
    nf_plan_step *s = &p->steps[k];
    const int64_t forever = 2 * (int64_t)p->n;
    int64_t value_end = k, grad_start = forever;
    int has_consumers = 0, count = 0;
    for (int c = k + 1; c < p->n; c++) {
        const nf_node *consumer = g->nodes[c];
        for (int i = 0; i < consumer->n_inputs; i++) {
            if (consumer->inputs[i] != node)
                continue;
            has_consumers = 1;
            int reads_in_backward = p->steps[c].run_backward && !(consumer->op->flags & NF_OP_GRAD_NO_INPUTS);
            value_end = max64(value_end, reads_in_backward ? backward_time(p, c) : c);
            if (p->steps[c].run_backward && input_differentiable(consumer, i))
                grad_start = min64(grad_start, backward_time(p, c));
        }
    }
    if (s->run_backward && !(node->op->flags & NF_OP_GRAD_NO_OUTPUT))
        value_end = max64(value_end, backward_time(p, k));
    if (pinned(p, node, has_consumers))
        value_end = forever;
    int64_t value_start = (node->op->flags & NF_OP_INPUT) ? 0 : k;
    iv[count++] = (interval){value_start, value_end, value_floats(p, node), &s->value_off};
    if (s->has_grad) {
        if ((node->op->flags & NF_OP_LOSS) || (p->time_steps > 1 && is_memory_source(g, node)))
            grad_start = min64(grad_start, backward_time(p, k)); /* seeded, or handed a later step's gradient */
        int64_t grad_end = node->requires_grad ? forever : backward_time(p, k);
        iv[count++] = (interval){grad_start, grad_end, value_floats(p, node), &s->grad_off};
    }
    int saved_wanted = s->run_backward || !(node->op->flags & NF_OP_SAVED_FOR_BACKWARD);
    if ((node->saved_per_sample > 0 || node->saved_fixed > 0) && saved_wanted) {
        int keeps_state = node->op->reset_state != NULL;
        int64_t end = keeps_state ? forever : s->run_backward ? backward_time(p, k) : k;
        int64_t start = keeps_state ? 0 : k;
        iv[count++] = (interval){start, end,
                                 nf_align_floats(p->capacity * node->saved_per_sample + node->saved_fixed),
                                 &s->saved_off};
    }
    return count;
}

static int by_start(const void *a, const void *b)
{
    const interval *x = a, *y = b;
    if (x->start != y->start)
        return x->start < y->start ? -1 : 1;
    return (x->floats > y->floats) ? -1 : (x->floats < y->floats);
}

typedef struct slot {
    int64_t end, floats, offset;
} slot;

/* Greedy interval colouring: each buffer takes the free slot that fits it
 * best (or the largest free one, grown), else a new slot. */
static int64_t assign_slots(interval *iv, int n, slot *slots, int *slot_of)
{
    int n_slots = 0;
    qsort(iv, (size_t)n, sizeof *iv, by_start);
    for (int b = 0; b < n; b++) {
        int best = -1;
        for (int s = 0; s < n_slots; s++) {
            if (slots[s].end >= iv[b].start)
                continue;
            if (best < 0) {
                best = s;
                continue;
            }
            int fits = slots[s].floats >= iv[b].floats, best_fits = slots[best].floats >= iv[b].floats;
            if ((fits && (!best_fits || slots[s].floats < slots[best].floats)) ||
                (!fits && !best_fits && slots[s].floats > slots[best].floats))
                best = s;
        }
        if (best < 0) {
            best = n_slots++;
            slots[best].floats = 0;
        }
        slots[best].end = iv[b].end;
        slots[best].floats = max64(slots[best].floats, iv[b].floats);
        slot_of[b] = best;
    }
    int64_t total = 0;
    for (int s = 0; s < n_slots; s++) {
        slots[s].offset = total;
        total += slots[s].floats;
    }
    for (int b = 0; b < n; b++)
        *iv[b].offset = slots[slot_of[b]].offset;
    return total;
}

/* Computes every offset and (re)allocates the arena for p->capacity. */
static nf_status layout_arena(nf_plan *p, nf_error *err)
{
    int max = 3 * p->n;
    interval *iv = calloc((size_t)max, sizeof *iv);
    slot *slots = calloc((size_t)max, sizeof *slots);
    int *slot_of = calloc((size_t)max, sizeof *slot_of);
    nf_status st = NF_OK;
    if (!iv || !slots || !slot_of) {
        st = nf_fail(err, NF_ERR_NO_MEMORY, "out of memory compiling the plan");
        goto done;
    }
    for (int k = 0; k < p->n; k++) {
        p->steps[k].value_off = p->steps[k].grad_off = p->steps[k].saved_off = -1;
    }
    int n = 0;
    for (int k = 0; k < p->n; k++)
        n += node_intervals(p, k, iv + n);
    int64_t total = assign_slots(iv, n, slots, slot_of);
    /* one scratch area shared by all nodes: each uses it only while it runs */
    int64_t scratch = 0, scratch_off = total;
    for (int k = 0; k < p->n; k++)
        scratch = max64(scratch, nf_align_floats(p->graph->nodes[k]->workspace));
    total += scratch;
    int64_t frame = total;
    total = nf_mul_checked(frame, p->time_steps);
    if (total < 0 || total > nf_limit_floats()) {
        st = nf_fail(err, NF_ERR_NO_MEMORY,
                     "the plan needs %lld bytes of activations, over the memory limit of %zu; lower the batch size",
                     (long long)total * 4, nf_memory_limit());
        goto done;
    }
    float *arena = nf_aligned_alloc((size_t)(total ? total : 16) * sizeof(float));
    if (!arena) {
        st = nf_fail(err, NF_ERR_NO_MEMORY, "could not allocate %lld bytes of activations",
                     (long long)total * 4);
        goto done;
    }
    memset(arena, 0, (size_t)(total ? total : 16) * sizeof(float));
    nf_aligned_free(p->arena);
    p->arena = p->frame = arena;
    p->arena_floats = total;
    p->frame_floats = frame;
    p->workspace_off = scratch_off; /* only now: a failure above keeps the old layout whole */
    p->workspace_floats = scratch;
    nf_plan_reset_state(p);
done:
    free(iv);
    free(slots);
    free(slot_of);
    return st;
}

nf_status nf_plan_compile(nf_graph *g, int64_t batch, unsigned flags, nf_plan **out, nf_error *err)
{
    if (!g || !out)
        return nf_fail(err, NF_ERR_INVALID_ARGUMENT, "nf_plan_compile: NULL argument");
    *out = NULL;
    if (batch <= 0 || batch > ((int64_t)1 << 30))
        return nf_fail(err, NF_ERR_INVALID_ARGUMENT, "batch size %lld must be in 1..2^30", (long long)batch);
    nf_status st = nf_graph_validate(g, err);
    if (st != NF_OK)
        return st;
    nf_threads_ensure();
    nf_plan *p = calloc(1, sizeof *p);
    if (p) {
        p->steps = calloc((size_t)g->n_nodes, sizeof *p->steps);
        p->grad_ready = calloc((size_t)g->n_nodes, 1);
    }
    if (!p || !p->steps || !p->grad_ready) {
        nf_plan_free(p);
        return nf_fail(err, NF_ERR_NO_MEMORY, "out of memory compiling the plan");
    }
    p->graph = g;
    p->version = g->version;
    p->flags = flags;
    p->n = g->n_nodes;
    p->capacity = p->batch = batch;
    p->time_steps = 1;
    p->training = (flags & NF_PLAN_TRAINING) != 0;
    p->threads = nf_threads();
    mark_gradients(p);
    st = layout_arena(p, err);
    if (st != NF_OK) {
        nf_plan_free(p);
        return st;
    }
    *out = p;
    return NF_OK;
}

void nf_plan_free(nf_plan *p)
{
    if (!p)
        return;
    nf_aligned_free(p->arena);
    nf_plan_free_sequences(p);
    free(p->steps);
    free(p->grad_ready);
    free(p);
}

nf_status nf_plan_set_batch(nf_plan *p, int64_t batch, nf_error *err)
{
    if (!p)
        return nf_fail(err, NF_ERR_INVALID_ARGUMENT, "plan is NULL");
    if (batch <= 0 || batch > ((int64_t)1 << 30))
        return nf_fail(err, NF_ERR_INVALID_ARGUMENT, "batch size %lld must be in 1..2^30", (long long)batch);
    if (batch > p->capacity) {
        /* Lay out for the larger batch; on failure keep the old layout
         * (its arena is only released once the new one exists). */
        size_t bytes = (size_t)p->n * sizeof *p->steps;
        nf_plan_step *backup = malloc(bytes);
        if (!backup)
            return nf_fail(err, NF_ERR_NO_MEMORY, "out of memory resizing the plan");
        memcpy(backup, p->steps, bytes);
        int64_t old = p->capacity;
        p->capacity = batch;
        nf_status st = layout_arena(p, err);
        if (st != NF_OK) {
            memcpy(p->steps, backup, bytes);
            p->capacity = old;
        }
        free(backup);
        if (st == NF_OK)
            st = nf_plan_layout_sequences(p, err); /* on failure: one step, as the buffers are gone */
        if (st != NF_OK && p->time_steps > 1 && !p->seq_value)
            p->time_steps = 1;
        if (st != NF_OK)
            return st;
    }
    p->batch = batch;
    p->forward_done = 0;
    return NF_OK;
}

void nf_plan_reset_state(nf_plan *p)
{
    if (!p)
        return;
    for (int k = 0; k < p->n; k++) { /* the state lives in the first frame */
        const nf_node *node = p->graph->nodes[k];
        if (node->op->reset_state && p->steps[k].saved_off >= 0)
            node->op->reset_state(node, p->arena + p->steps[k].saved_off, p->capacity);
    }
}

int64_t nf_plan_batch(const nf_plan *p) { return p ? p->batch : 0; }

void nf_plan_set_training(nf_plan *p, int training)
{
    if (p)
        p->training = training != 0;
}

int nf_plan_training(const nf_plan *p) { return p ? p->training : 0; }
size_t nf_plan_arena_bytes(const nf_plan *p) { return p ? (size_t)p->arena_floats * sizeof(float) : 0; }

/* ---- unrolled time ----------------------------------------------------- */

int nf_input_is_sequence(const nf_node *node)
{
    return (node->op->flags & NF_OP_INPUT) && node->attr[2] != 0; /* input attribute "sequence" */
}

void nf_plan_free_sequences(nf_plan *p)
{
    for (int k = 0; k < p->n; k++) { /* any of the three may be missing after a failure */
        if (p->seq_value)
            free(p->seq_value[k]);
        if (p->seq_grad)
            free(p->seq_grad[k]);
        if (p->carry_grad)
            free(p->carry_grad[k]);
    }
    free(p->seq_value);
    free(p->seq_grad);
    free(p->carry_grad);
    free(p->frame_losses);
    free(p->lengths);
    free(p->row_weight);
    p->seq_value = p->seq_grad = p->carry_grad = NULL;
    p->frame_losses = p->row_weight = NULL;
    p->lengths = NULL;
    p->masked = 0;
}

nf_status nf_plan_layout_sequences(nf_plan *p, nf_error *err)
{
    nf_plan_free_sequences(p);
    if (p->time_steps == 1)
        return NF_OK;
    p->seq_value = calloc((size_t)p->n, sizeof *p->seq_value);
    p->seq_grad = calloc((size_t)p->n, sizeof *p->seq_grad);
    p->carry_grad = calloc((size_t)p->n, sizeof *p->carry_grad);
    p->frame_losses = calloc((size_t)p->time_steps, sizeof *p->frame_losses);
    p->lengths = calloc((size_t)p->capacity, sizeof *p->lengths);
    p->row_weight = calloc((size_t)(p->capacity * p->time_steps), sizeof *p->row_weight);
    int ok = p->seq_value && p->seq_grad && p->carry_grad && p->frame_losses && p->lengths && p->row_weight;
    for (int k = 0; ok && k < p->n; k++) {
        const nf_node *node = p->graph->nodes[k];
        size_t size = (size_t)(p->capacity * nf_shape_size(&node->shape)) * sizeof(float);
        if (nf_input_is_sequence(node) || (node->op->flags & NF_OP_OUTPUT))
            ok = (p->seq_value[k] = calloc(1, size * (size_t)p->time_steps)) != NULL;
        if (ok && nf_input_is_sequence(node) && node->requires_grad && p->steps[k].has_grad)
            ok = (p->seq_grad[k] = calloc(1, size * (size_t)p->time_steps)) != NULL;
        if (ok && node->memory_source && p->steps[k].has_grad)
            ok = (p->carry_grad[k] = calloc(1, size)) != NULL;
    }
    if (!ok) {
        nf_plan_free_sequences(p);
        return nf_fail(err, NF_ERR_NO_MEMORY, "out of memory for %lld time steps", (long long)p->time_steps);
    }
    return NF_OK;
}

nf_status nf_plan_set_steps(nf_plan *p, int64_t steps, nf_error *err)
{
    if (!p)
        return nf_fail(err, NF_ERR_INVALID_ARGUMENT, "plan is NULL");
    if (steps < 1 || steps > (1 << 20))
        return nf_fail(err, NF_ERR_INVALID_ARGUMENT, "%lld time steps: must be 1 .. 2^20", (long long)steps);
    int64_t old = p->time_steps;
    p->time_steps = steps;
    for (int k = 0; k < p->n; k++)
        p->steps[k].needs_grad = p->steps[k].reaches_loss = 0;
    mark_gradients(p);
    nf_status st = layout_arena(p, err);
    if (st == NF_OK)
        st = nf_plan_layout_sequences(p, err);
    if (st != NF_OK) { /* back to the old number of steps, laid out again */
        p->time_steps = old;
        for (int k = 0; k < p->n; k++)
            p->steps[k].needs_grad = p->steps[k].reaches_loss = 0;
        mark_gradients(p);
        if (layout_arena(p, NULL) == NF_OK)
            nf_plan_layout_sequences(p, NULL);
    }
    p->forward_done = 0;
    return st;
}

int64_t nf_plan_steps(const nf_plan *p) { return p ? p->time_steps : 0; }

nf_status nf_plan_set_lengths(nf_plan *p, const int64_t *lengths, nf_error *err)
{
    if (!p)
        return nf_fail(err, NF_ERR_INVALID_ARGUMENT, "plan is NULL");
    if (!lengths) {
        p->masked = 0;
        return NF_OK;
    }
    if (p->time_steps == 1)
        return nf_fail(err, NF_ERR_STATE, "sequence lengths need a plan of several steps (nf_plan_set_steps)");
    for (int64_t b = 0; b < p->batch; b++)
        if (lengths[b] < 0 || lengths[b] > p->time_steps)
            return nf_fail(err, NF_ERR_INVALID_ARGUMENT, "row %lld: length %lld is not in 0 .. %lld steps",
                           (long long)b, (long long)lengths[b], (long long)p->time_steps);
    memcpy(p->lengths, lengths, (size_t)p->batch * sizeof *lengths);
    p->masked = 1;
    return NF_OK;
}

void nf_plan_set_loss_last_step(nf_plan *p, int last_only)
{
    if (p)
        p->loss_last_step = last_only != 0;
}
