/* nodeflow — compiling a graph into a plan: which nodes run backward,
 * every buffer's lifetime, and their places in one arena.
 *
 * Time runs over forward steps 0 .. n-1 (node k at time k), then
 * backward steps n .. 2n-1 (node k at time 2n-1-k). Each buffer (a
 * node's value, its gradient, the state it saves for backward) lives over
 * an interval of that timeline; buffers whose intervals do not overlap
 * share memory. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/plan_internal.h"
#include "kernels/kernels.h"

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

/* How the later nodes use node k's value, found in one pass over every
 * node's inputs (not a scan of the graph per node: plans of a million
 * nodes compile in linear time). */
typedef struct node_use {
    int64_t value_end;      /* the last time its value is read */
    int64_t grad_start;     /* the first time its gradient is written */
    int has_consumers;
    int is_memory_source;   /* a memory node copies its value after forward */
    int scored_by_loss;     /* the first input of a loss: the scores metrics read */
} node_use;

static void find_uses(const nf_plan *p, node_use *use)
{
    const nf_graph *g = p->graph;
    for (int k = 0; k < p->n; k++)
        use[k] = (node_use){k, 2 * (int64_t)p->n, 0, 0, 0};
    for (int c = 0; c < p->n; c++) {
        const nf_node *consumer = g->nodes[c];
        if (consumer->memory_source)
            use[consumer->memory_source->index].is_memory_source = 1;
        if ((consumer->op->flags & NF_OP_LOSS) && consumer->n_inputs > 0)
            use[consumer->inputs[0]->index].scored_by_loss = 1;
        int reads_in_backward = p->steps[c].run_backward && !(consumer->op->flags & NF_OP_GRAD_NO_INPUTS);
        for (int i = 0; i < consumer->n_inputs; i++) {
            int k = consumer->inputs[i]->index;
            if (k >= c)
                continue;
            use[k].has_consumers = 1;
            use[k].value_end = max64(use[k].value_end, reads_in_backward ? backward_time(p, c) : c);
            if (p->steps[c].run_backward && input_differentiable(consumer, i))
                use[k].grad_start = min64(use[k].grad_start, backward_time(p, c));
        }
    }
}

/* Values that stay readable: inputs, outputs, losses and what a loss
 * scores (its first input: accuracy reads it in a model without an output
 * node), sinks, and the sources that memory nodes copy from after
 * forward. */
static int pinned(const nf_plan *p, const nf_node *node, const node_use *use)
{
    unsigned f = node->op->flags;
    return (p->flags & NF_PLAN_KEEP_VALUES) || (f & (NF_OP_INPUT | NF_OP_OUTPUT | NF_OP_LOSS)) ||
           !use->has_consumers || use->is_memory_source || use->scored_by_loss;
}

static int64_t value_floats(const nf_plan *p, const nf_node *node)
{
    if (node->op->flags & NF_OP_LOSS)
        return nf_align_floats(1);
    /* capacity <= 2^30 and a sample <= 2^31 floats: no overflow */
    return nf_align_floats(p->capacity * nf_shape_size(&node->shape));
}

/* Appends the value, gradient and saved-state intervals of node k. */
static int node_intervals(nf_plan *p, int k, const node_use *use, interval *iv)
{
    const nf_node *node = p->graph->nodes[k];
    nf_plan_step *s = &p->steps[k];
    const int64_t forever = 2 * (int64_t)p->n;
    int64_t value_end = use->value_end, grad_start = use->grad_start;
    int count = 0;
    if (s->run_backward && !(node->op->flags & NF_OP_GRAD_NO_OUTPUT))
        value_end = max64(value_end, backward_time(p, k));
    s->value_kept = (unsigned char)pinned(p, node, use);
    if (s->value_kept)
        value_end = forever;
    int64_t value_start = (node->op->flags & NF_OP_INPUT) ? 0 : k;
    iv[count++] = (interval){value_start, value_end, value_floats(p, node), &s->value_off};
    if (s->has_grad) {
        if ((node->op->flags & NF_OP_LOSS) || (p->time_steps > 1 && use->is_memory_source))
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

/* Slots in use, as a binary min-heap on the time they become free. */
typedef struct busy_heap {
    int *at;
    int n;
} busy_heap;

static void heap_push(busy_heap *h, const slot *slots, int s)
{
    int i = h->n++;
    while (i > 0 && slots[h->at[(i - 1) / 2]].end > slots[s].end) {
        h->at[i] = h->at[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    h->at[i] = s;
}

static int heap_pop(busy_heap *h, const slot *slots)
{
    int top = h->at[0], last = h->at[--h->n], i = 0;
    for (;;) {
        int child = 2 * i + 1;
        if (child >= h->n)
            break;
        if (child + 1 < h->n && slots[h->at[child + 1]].end < slots[h->at[child]].end)
            child++;
        if (slots[h->at[child]].end >= slots[last].end)
            break;
        h->at[i] = h->at[child];
        i = child;
    }
    if (h->n)
        h->at[i] = last;
    return top;
}

/* Whether free slot a suits a buffer of `floats` better than slot b: one
 * that fits and is smallest, else (none fits) the largest, which grows;
 * ties go to the lower slot number. */
static int better_slot(const slot *slots, int a, int b, int64_t floats)
{
    int a_fits = slots[a].floats >= floats, b_fits = slots[b].floats >= floats;
    if (a_fits != b_fits)
        return a_fits;
    if (slots[a].floats != slots[b].floats)
        return a_fits ? slots[a].floats < slots[b].floats : slots[a].floats > slots[b].floats;
    return a < b;
}

/* Greedy interval colouring: each buffer takes the free slot that fits it
 * best (or the largest free one, grown), else a new slot. Returns the
 * arena's floats, or -1 past 2^62 (sizes come from the model file). */
static int64_t assign_slots(interval *iv, int n, slot *slots, int *slot_of, int *scratch)
{
    int n_slots = 0, n_free = 0;
    int *free_slots = scratch;
    busy_heap busy = {scratch + n, 0};
    qsort(iv, (size_t)n, sizeof *iv, by_start);
    for (int b = 0; b < n; b++) {
        while (busy.n && slots[busy.at[0]].end < iv[b].start)
            free_slots[n_free++] = heap_pop(&busy, slots);
        int best = -1;
        for (int f = 0; f < n_free; f++)
            if (best < 0 || better_slot(slots, free_slots[f], free_slots[best], iv[b].floats))
                best = f;
        int s;
        if (best >= 0) {
            s = free_slots[best];
            free_slots[best] = free_slots[--n_free];
        } else {
            s = n_slots++;
            slots[s].floats = 0;
        }
        slots[s].end = iv[b].end;
        slots[s].floats = max64(slots[s].floats, iv[b].floats);
        slot_of[b] = s;
        heap_push(&busy, slots, s);
    }
    int64_t total = 0;
    for (int s = 0; s < n_slots; s++) {
        slots[s].offset = total;
        total = nf_add_checked(total, slots[s].floats);
    }
    for (int b = 0; b < n && total >= 0; b++)
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
    int *scratch = calloc(2 * (size_t)max, sizeof *scratch);
    node_use *use = calloc((size_t)p->n + 1, sizeof *use);
    nf_status st = NF_OK;
    if (!iv || !slots || !slot_of || !scratch || !use) {
        st = nf_fail(err, NF_ERR_NO_MEMORY, "out of memory compiling the plan");
        goto done;
    }
    for (int k = 0; k < p->n; k++) {
        p->steps[k].value_off = p->steps[k].grad_off = p->steps[k].saved_off = -1;
    }
    find_uses(p, use);
    int n = 0;
    for (int k = 0; k < p->n; k++)
        n += node_intervals(p, k, &use[k], iv + n);
    int64_t total = assign_slots(iv, n, slots, slot_of, scratch);
    /* one scratch area shared by all nodes: each uses it only while it runs */
    int64_t scratch_floats = 0, scratch_off = total;
    for (int k = 0; k < p->n; k++)
        scratch_floats = max64(scratch_floats, nf_align_floats(max64(p->graph->nodes[k]->workspace,
                                                                     p->steps[k].state_workspace)));
    total = nf_add_checked(total, scratch_floats);
    int64_t frame = total;
    total = nf_mul_checked(frame, p->time_steps);
    if (total < 0 || total > nf_limit_floats()) {
        char need[64];
        if (total < 0)
            snprintf(need, sizeof need, "more than 2^64 bytes");
        else
            snprintf(need, sizeof need, "%llu bytes", (unsigned long long)total * 4u); /* total < 2^62 */
        st = nf_fail(err, NF_ERR_NO_MEMORY,
                     "the plan needs %s of activations, over the memory limit of %zu; lower the batch size", need,
                     nf_memory_limit());
        goto done;
    }
    float *arena = nf_aligned_alloc((size_t)(total ? total : 16) * sizeof(float));
    if (!arena) {
        st = nf_fail(err, NF_ERR_NO_MEMORY, "could not allocate %llu bytes of activations",
                     (unsigned long long)total * 4u);
        goto done;
    }
    memset(arena, 0, (size_t)(total ? total : 16) * sizeof(float));
    nf_aligned_free(p->arena);
    p->arena = p->frame = arena;
    p->arena_floats = total;
    p->frame_floats = frame;
    p->workspace_off = scratch_off; /* only now: a failure above keeps the old layout whole */
    p->workspace_floats = scratch_floats;
done:
    free(iv);
    free(slots);
    free(slot_of);
    free(scratch);
    free(use);
    return st;
}

/* ---- kernel states --------------------------------------------------- */

/* Each node's kernel state for the plan's capacity (op->prepare), made
 * after the gradient marks and before the arena is laid out, as it may
 * need a larger scratch area. Writes over steps[k].state without freeing
 * what was there. */
static void prepare_states(nf_plan *p)
{
    for (int k = 0; k < p->n; k++) {
        const nf_node *node = p->graph->nodes[k];
        nf_plan_step *s = &p->steps[k];
        s->state = NULL;
        s->state_workspace = 0;
        if (!node->op->prepare)
            continue;
        int saved_wanted = s->run_backward || !(node->op->flags & NF_OP_SAVED_FOR_BACKWARD);
        nf_prepare ctx = {
            .kernels = s->kernels,
            .node = node,
            .capacity = p->capacity,
            .backward = s->run_backward,
            .input_grad = s->run_backward && node->n_inputs > 0 && input_differentiable(node, 0) &&
                          p->steps[node->inputs[0]->index].has_grad,
            .saved_floats = saved_wanted ? p->capacity * node->saved_per_sample + node->saved_fixed : 0,
        };
        s->state = node->op->prepare(&ctx);
        s->state_workspace = s->state ? ctx.workspace : 0;
    }
}

static void release_states(const nf_plan *p, nf_plan_step *steps)
{
    for (int k = 0; k < p->n; k++) {
        if (steps[k].state)
            p->graph->nodes[k]->op->release(steps[k].kernels, steps[k].state);
        steps[k].state = NULL;
    }
}

static void free_buffers(int n, nf_plan_buffers *b);
static nf_status make_buffers(const nf_plan *p, nf_plan_buffers *b, nf_error *err);
static nf_status relayout(nf_plan *p, int64_t steps, int64_t capacity, nf_error *err);

/* NODEFLOW_KERNELS names a set that does not exist: say which do. */
static nf_status no_kernel_set(nf_error *err)
{
    char names[256] = "";
    for (int i = 0; nf_kernels_at(i); i++) {
        size_t at = strlen(names);
        snprintf(names + at, sizeof names - at, "%s%s", i ? ", " : "", nf_kernels_at(i)->name);
    }
    return nf_fail(err, NF_ERR_INVALID_ARGUMENT, "NODEFLOW_KERNELS='%.64s' names no kernel set (there are: %s)",
                   getenv("NODEFLOW_KERNELS"), names);
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
    const nf_kernels *kernels = nf_kernels_for_plan(); /* chosen once, here, for every node */
    if (!kernels) {
        nf_plan_free(p);
        return no_kernel_set(err);
    }
    for (int k = 0; k < p->n; k++)
        p->steps[k].kernels = kernels;
    mark_gradients(p);
    prepare_states(p);
    st = make_buffers(p, &p->buf, err);
    if (st == NF_OK)
        st = layout_arena(p, err);
    if (st != NF_OK) {
        nf_plan_free(p);
        return st;
    }
    nf_plan_reset_state(p);
    *out = p;
    return NF_OK;
}

void nf_plan_free(nf_plan *p)
{
    if (!p)
        return;
    nf_aligned_free(p->arena);
    free_buffers(p->n, &p->buf);
    if (p->steps)
        release_states(p, p->steps);
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
    if (batch > p->capacity) { /* lay out for the larger batch; on failure the plan is as it was */
        nf_status st = relayout(p, p->time_steps, batch, err);
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

void nf_plan_set_sum_across(nf_plan *p, int (*sum)(const void *ctx, double *x, int64_t n), const void *ctx)
{
    p->sum_across = sum;
    p->sum_ctx = ctx;
}

void nf_plan_set_grads_done(nf_plan *p, void (*done)(void *ctx, int node), void *ctx)
{
    p->grads_done = done;
    p->grads_done_ctx = ctx;
}

void nf_plan_set_training(nf_plan *p, int training)
{
    if (p)
        p->training = training != 0;
}

int nf_plan_training(const nf_plan *p) { return p ? p->training : 0; }
size_t nf_plan_arena_bytes(const nf_plan *p) { return p ? (size_t)p->arena_floats * sizeof(float) : 0; }

const char *nf_plan_node_kernels(const nf_plan *p, const nf_node *node, char *buf, size_t size)
{
    if (!buf || size == 0)
        return buf;
    buf[0] = '\0';
    if (!p || !node || node->index < 0 || node->index >= p->n || p->graph->nodes[node->index] != node)
        return buf;
    const nf_plan_step *s = &p->steps[node->index];
    if (s->state && node->op->describe)
        snprintf(buf, size, "%s: %s", s->kernels->name, node->op->describe(s->kernels, s->state));
    else
        snprintf(buf, size, "%s", s->kernels->name);
    return buf;
}

/* ---- unrolled time ----------------------------------------------------- */

int nf_input_is_sequence(const nf_node *node)
{
    return node->op->per_step && node->op->per_step(node);
}

static void free_buffers(int n, nf_plan_buffers *b)
{
    for (int k = 0; k < n; k++) { /* any of these may be missing after a failure */
        if (b->seq_value)
            free(b->seq_value[k]);
        if (b->seq_grad)
            free(b->seq_grad[k]);
        if (b->carry)
            free(b->carry[k]);
        if (b->carry_next)
            free(b->carry_next[k]);
    }
    free(b->seq_value);
    free(b->seq_grad);
    free(b->carry);
    free(b->carry_next);
    free(b->losses);
    free(b->lengths);
    free(b->row_weight);
    free(b->state_backup);
    memset(b, 0, sizeof *b);
}

/* The buffers beside the arena for p's capacity, steps and gradient
 * marks, made into b (all or nothing). */
static nf_status make_buffers(const nf_plan *p, nf_plan_buffers *b, nf_error *err)
{
    memset(b, 0, sizeof *b);
    for (int k = 0; k < p->n; k++) {
        int64_t floats = nf_mul_checked(p->capacity, p->graph->nodes[k]->state_per_sample);
        b->state_floats = floats < 0 || b->state_floats < 0 ? -1 : b->state_floats + floats;
    }
    if (b->state_floats < 0 || b->state_floats > nf_limit_floats())
        return nf_fail(err, NF_ERR_NO_MEMORY, "the carried state is over the memory limit of %zu bytes",
                       nf_memory_limit());
    int ok = (b->state_backup = malloc((size_t)(b->state_floats ? b->state_floats : 1) * sizeof(float))) != NULL;
    int64_t steps = p->time_steps;
    if (ok && steps > 1) {
        b->seq_value = calloc((size_t)p->n, sizeof *b->seq_value);
        b->seq_grad = calloc((size_t)p->n, sizeof *b->seq_grad);
        b->carry = calloc((size_t)p->n, sizeof *b->carry);
        b->carry_next = calloc((size_t)p->n, sizeof *b->carry_next);
        b->losses = calloc((size_t)steps, sizeof *b->losses);
        b->lengths = calloc((size_t)p->capacity, sizeof *b->lengths);
        b->row_weight = calloc((size_t)(p->capacity * steps), sizeof *b->row_weight);
        ok = b->seq_value && b->seq_grad && b->carry && b->carry_next && b->losses && b->lengths && b->row_weight;
    }
    for (int k = 0; ok && steps > 1 && k < p->n; k++) {
        const nf_node *node = p->graph->nodes[k];
        size_t size = (size_t)(p->capacity * nf_shape_size(&node->shape)) * sizeof(float);
        size = size ? size : sizeof(float); /* (a tensor with no elements: calloc of 0 may give NULL) */
        if (nf_input_is_sequence(node) || (node->op->flags & NF_OP_OUTPUT))
            ok = (b->seq_value[k] = calloc(1, size * (size_t)steps)) != NULL;
        if (ok && (node->op->flags & NF_OP_INPUT) && node->requires_grad && p->steps[k].has_grad)
            ok = (b->seq_grad[k] = calloc(1, size * (nf_input_is_sequence(node) ? (size_t)steps : 1))) != NULL;
        if (ok && node->memory_source && p->steps[k].has_grad)
            ok = (b->carry[k] = calloc(1, size)) && (b->carry_next[k] = calloc(1, size));
    }
    if (!ok) {
        free_buffers(p->n, b);
        return nf_fail(err, NF_ERR_NO_MEMORY, "out of memory for a plan of %lld rows and %lld time steps",
                       (long long)p->capacity, (long long)steps);
    }
    return NF_OK;
}

/* Lays the plan out again for `steps` and `capacity`: gradient marks,
 * arena, buffers. All or nothing: on failure the plan is as it was. */
static nf_status relayout(nf_plan *p, int64_t steps, int64_t capacity, nf_error *err)
{
    size_t bytes = (size_t)p->n * sizeof *p->steps;
    nf_plan_step *backup = malloc(bytes ? bytes : 1);
    if (!backup)
        return nf_fail(err, NF_ERR_NO_MEMORY, "out of memory laying out the plan");
    memcpy(backup, p->steps, bytes);
    int64_t old_steps = p->time_steps, old_capacity = p->capacity;
    p->time_steps = steps;
    p->capacity = capacity;
    for (int k = 0; k < p->n; k++)
        p->steps[k].needs_grad = p->steps[k].reaches_loss = 0;
    mark_gradients(p);
    prepare_states(p); /* the old states stay in `backup` until the new layout holds */
    nf_plan_buffers fresh;
    nf_status st = make_buffers(p, &fresh, err);
    if (st == NF_OK && (st = layout_arena(p, err)) != NF_OK)
        free_buffers(p->n, &fresh);
    if (st != NF_OK) { /* the arena is untouched by a failed layout; the step table is put back */
        release_states(p, p->steps);
        memcpy(p->steps, backup, bytes);
        p->time_steps = old_steps;
        p->capacity = old_capacity;
    } else {
        free_buffers(p->n, &p->buf);
        release_states(p, backup);
        p->buf = fresh;
        p->masked = 0;
        nf_plan_reset_state(p);
    }
    free(backup);
    return st;
}

void nf_plan_keep_state(nf_plan *p, int save)
{
    float *copy = p->buf.state_backup;
    for (int k = 0; k < p->n; k++) {
        int64_t n = p->capacity * p->graph->nodes[k]->state_per_sample;
        if (n == 0 || p->steps[k].saved_off < 0)
            continue;
        float *state = p->arena + p->steps[k].saved_off;
        memcpy(save ? copy : state, save ? state : copy, (size_t)n * sizeof(float));
        copy += n;
    }
}

/* A recurrent layer that carries its own state would carry it per time
 * step in an unrolled plan: refused; memory nodes do that job there. */
static nf_status check_unrollable(const nf_plan *p, nf_error *err)
{
    for (int k = 0; k < p->n; k++) {
        const nf_node *node = p->graph->nodes[k];
        if (!(node->op->flags & NF_OP_MEMORY) && nf_node_carries_state(node))
            return nf_fail(err, NF_ERR_GRAPH,
                           "%s '%s' carries its state from run to run (carry=true): it cannot be unrolled over "
                           "several time steps; give it carry=false, or a plan of one step",
                           node->op->name, node->name);
    }
    return NF_OK;
}

nf_status nf_plan_set_steps(nf_plan *p, int64_t steps, nf_error *err)
{
    if (!p)
        return nf_fail(err, NF_ERR_INVALID_ARGUMENT, "plan is NULL");
    if (steps < 1 || steps > (1 << 20))
        return nf_fail(err, NF_ERR_INVALID_ARGUMENT, "%lld time steps: must be 1 .. 2^20", (long long)steps);
    nf_status st = steps > 1 ? check_unrollable(p, err) : NF_OK;
    if (st == NF_OK && steps != p->time_steps)
        st = relayout(p, steps, p->capacity, err);
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
    memcpy(p->buf.lengths, lengths, (size_t)p->batch * sizeof *lengths);
    p->masked = 1;
    return NF_OK;
}

void nf_plan_set_loss_last_step(nf_plan *p, int last_only)
{
    if (p)
        p->loss_last_step = last_only != 0;
}
