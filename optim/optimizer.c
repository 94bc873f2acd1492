/* nodeflow — creating optimizers by name, setting hyper-parameters by key
 * and stepping over every parameter of a graph. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "optim/optimizer.h"

static const nf_optimizer_type *const types[] = {&nf_optimizer_sgd, &nf_optimizer_adagrad, &nf_optimizer_rmsprop,
                                                 &nf_optimizer_adam, &nf_optimizer_adamw};
static const char *const type_names[] = {"sgd", "adagrad", "rmsprop", "adam", "adamw", NULL};

#define TYPE_COUNT ((int)(sizeof types / sizeof types[0]))

const char *const *nf_optimizer_names(void) { return type_names; }

const nf_optimizer_type *nf_optimizer_type_find(const char *name)
{
    for (int i = 0; name && i < TYPE_COUNT; i++)
        if (strcmp(types[i]->name, name) == 0)
            return types[i];
    return NULL;
}

int nf_optimizer_type_hparam(const nf_optimizer_type *type, const char *key)
{
    for (int i = 0; i < type->n_hparams; i++)
        if (strcmp(type->hparams[i].name, key) == 0)
            return i;
    return -1;
}

nf_status nf_optimizer_key_check(const nf_optimizer_type *type, const char *key, double value, nf_error *err)
{
    if (strncmp(key, "lr_mult.", 8) == 0)
        return isfinite(value) && value >= 0 ? NF_OK
                                             : nf_fail(err, NF_ERR_INVALID_ARGUMENT, "%s must be >= 0", key);
    if (strcmp(key, "decay_1d") == 0)
        return value == 0 || value == 1 ? NF_OK : nf_fail(err, NF_ERR_INVALID_ARGUMENT, "decay_1d must be 0 or 1");
    if (strcmp(key, "accumulate") == 0)
        return value == floor(value) && value >= 1 && value <= 1e6
                   ? NF_OK
                   : nf_fail(err, NF_ERR_INVALID_ARGUMENT, "accumulate must be a whole number from 1 to 1e6");
    if (strcmp(key, "bucket_mb") == 0)
        return value >= 0 && value <= 1e6 ? NF_OK
                                           : nf_fail(err, NF_ERR_INVALID_ARGUMENT, "bucket_mb must be from 0 to 1e6");
    return nf_optimizer_type_check(type, key, value, err);
}

nf_status nf_optimizer_type_check(const nf_optimizer_type *type, const char *key, double value, nf_error *err)
{
    int i = nf_optimizer_type_hparam(type, key);
    if (i < 0)
        return nf_fail(err, NF_ERR_INVALID_ARGUMENT, "optimizer '%s' has no hyper-parameter '%s'", type->name,
                       key);
    const nf_hparam *hp = &type->hparams[i];
    if (hp->kind == NF_HPARAM_FLAG && value != 0 && value != 1)
        return nf_fail(err, NF_ERR_INVALID_ARGUMENT, "%s %s = %g: it is a switch, 0 (false) or 1 (true)", type->name,
                       key, value);
    if (!isfinite(value) || value < hp->min || value > hp->max || (hp->kind == NF_HPARAM_BELOW_MAX && value == hp->max))
        return nf_fail(err, NF_ERR_INVALID_ARGUMENT, "%s %s = %g is outside [%g, %g%s", type->name, key, value,
                       hp->min, hp->max, hp->kind == NF_HPARAM_BELOW_MAX ? ")" : "]");
    return NF_OK;
}

nf_status nf_optimizer_type_check_together(const nf_optimizer_type *type, const double *h, const char **blame,
                                      nf_error *err)
{
    *blame = NULL;
    const char *fault = type->check ? type->check(h, blame) : NULL;
    return fault ? nf_fail(err, NF_ERR_INVALID_ARGUMENT, "%s: %s", type->name, fault) : NF_OK;
}

nf_status nf_optimizer_new(nf_graph *g, const char *name, nf_optimizer **out, nf_error *err)
{
    if (!g || !name || !out)
        return nf_fail(err, NF_ERR_INVALID_ARGUMENT, "nf_optimizer_new: NULL argument");
    *out = NULL;
    const nf_optimizer_type *type = nf_optimizer_type_find(name);
    if (!type)
        return nf_fail(err, NF_ERR_INVALID_ARGUMENT, "unknown optimizer '%s'", name);
    if (g->validated_version != g->version)
        return nf_fail(err, NF_ERR_STATE, "validate or compile the graph before creating an optimizer");
    nf_optimizer *opt = calloc(1, sizeof *opt);
    size_t floats = (size_t)(g->param_floats * type->state_per_float);
    float *state = opt ? nf_aligned_alloc((floats ? floats : 16) * sizeof(float)) : NULL;
    double *lr_mult = state ? malloc(((size_t)g->n_params + 1) * sizeof *lr_mult) : NULL;
    if (!lr_mult) {
        nf_aligned_free(state);
        free(opt);
        return nf_fail(err, NF_ERR_NO_MEMORY, "out of memory for the optimizer state");
    }
    for (int k = 0; k < g->n_params; k++)
        lr_mult[k] = 1.0;
    opt->lr_mult = lr_mult;
    opt->decay_1d = 1;
    opt->accumulate = 1;
    opt->bucket_mb = NF_DEFAULT_BUCKET_MB;
    memset(state, 0, (floats ? floats : 16) * sizeof(float));
    opt->graph = g;
    opt->version = g->version;
    opt->type = type;
    opt->state = state;
    for (int i = 0; i < type->n_hparams; i++)
        opt->h[i] = type->hparams[i].def;
    *out = opt;
    return NF_OK;
}

void nf_optimizer_free(nf_optimizer *opt)
{
    if (!opt)
        return;
    nf_aligned_free(opt->state);
    nf_aligned_free(opt->gathered);
    free(opt->buckets);
    free(opt->lr_mult);
    free(opt);
}

/* "lr_mult.NODE": the learning-rate multiplier of NODE's parameters
 * (opt NULL: only checks that NODE has parameters). */
static nf_status set_lr_mult(nf_optimizer *opt, const nf_graph *g, const char *node, double value, nf_error *err)
{
    if (!isfinite(value) || value < 0)
        return nf_fail(err, NF_ERR_INVALID_ARGUMENT, "lr_mult.%s = %g must be >= 0", node, value);
    size_t n = strlen(node);
    int found = 0;
    for (int k = 0; k < g->n_params; k++) {
        const char *name = g->params[k].name;
        if (strncmp(name, node, n) == 0 && name[n] == '.') {
            if (opt)
                opt->lr_mult[k] = value;
            found = 1;
        }
    }
    return found ? NF_OK
                 : nf_fail(err, NF_ERR_INVALID_ARGUMENT, "lr_mult.%s: node '%s' has no parameters", node, node);
}

nf_status nf_optimizer_set(nf_optimizer *opt, const char *key, double value, nf_error *err)
{
    if (!opt || !key)
        return nf_fail(err, NF_ERR_INVALID_ARGUMENT, "nf_optimizer_set: NULL argument");
    if (strncmp(key, "lr_mult.", 8) == 0)
        return set_lr_mult(opt, opt->graph, key + 8, value, err);
    if (strcmp(key, "decay_1d") == 0) {
        if (value != 0 && value != 1)
            return nf_fail(err, NF_ERR_INVALID_ARGUMENT, "decay_1d must be 0 or 1");
        opt->decay_1d = (int)value;
        return NF_OK;
    }
    if (strcmp(key, "bucket_mb") == 0) {
        nf_status st = nf_optimizer_key_check(opt->type, key, value, err);
        if (st == NF_OK && value != opt->bucket_mb) {
            opt->bucket_mb = value;
            free(opt->buckets); /* laid out again when next needed */
            opt->buckets = NULL;
        }
        return st;
    }
    if (strcmp(key, "accumulate") == 0) {
        if (value != floor(value) || value < 1 || value > 1e6)
            return nf_fail(err, NF_ERR_INVALID_ARGUMENT, "accumulate must be a whole number from 1 to 1e6");
        if (value > 1 && !opt->gathered) {
            size_t bytes = (size_t)(opt->graph->param_floats ? opt->graph->param_floats : 1) * sizeof(float);
            if (!(opt->gathered = nf_aligned_alloc(bytes)))
                return nf_fail(err, NF_ERR_NO_MEMORY, "out of memory for the accumulated gradients");
        }
        opt->accumulate = (int64_t)value;
        return NF_OK;
    }
    nf_status st = nf_optimizer_type_check(opt->type, key, value, err);
    if (st != NF_OK)
        return st;
    opt->h[nf_optimizer_type_hparam(opt->type, key)] = value;
    return NF_OK;
}

nf_status nf_optimizer_get(const nf_optimizer *opt, const char *key, double *value, nf_error *err)
{
    if (!opt || !key || !value)
        return nf_fail(err, NF_ERR_INVALID_ARGUMENT, "nf_optimizer_get: NULL argument");
    if (strcmp(key, "decay_1d") == 0 || strcmp(key, "accumulate") == 0 || strcmp(key, "bucket_mb") == 0) {
        *value = strcmp(key, "decay_1d") == 0     ? (double)opt->decay_1d
                 : strcmp(key, "accumulate") == 0 ? (double)opt->accumulate
                                                  : opt->bucket_mb;
        return NF_OK;
    }
    int i = nf_optimizer_type_hparam(opt->type, key);
    if (i < 0)
        return nf_fail(err, NF_ERR_INVALID_ARGUMENT, "optimizer '%s' has no hyper-parameter '%s'",
                       opt->type->name, key);
    *value = opt->h[i];
    return NF_OK;
}

/* "lr" is the first hyper-parameter of every type. */
void nf_optimizer_set_lr(nf_optimizer *opt, double lr)
{
    if (opt && isfinite(lr) && lr >= 0)
        opt->h[0] = lr;
}

nf_status nf_optimizer_set_clipping(nf_optimizer *opt, double max_norm, double limit, nf_error *err)
{
    if (!opt)
        return nf_fail(err, NF_ERR_INVALID_ARGUMENT, "optimizer is NULL");
    if (!(max_norm >= 0) || !(limit >= 0) || isinf(max_norm) || isinf(limit))
        return nf_fail(err, NF_ERR_INVALID_ARGUMENT, "clipping thresholds must be finite and >= 0");
    opt->clip_norm = max_norm;
    opt->clip_value = limit;
    return NF_OK;
}

double nf_optimizer_grad_norm(const nf_optimizer *opt) { return opt ? opt->last_norm : 0.0; }

double nf_optimizer_lr(const nf_optimizer *opt) { return opt ? opt->h[0] : 0.0; }
int64_t nf_optimizer_steps(const nf_optimizer *opt) { return opt ? opt->steps : 0; }

nf_status nf_optimizer_step(nf_optimizer *opt, nf_error *err)
{
    if (!opt)
        return nf_fail(err, NF_ERR_INVALID_ARGUMENT, "optimizer is NULL");
    nf_graph *g = opt->graph;
    if (g->version != opt->version)
        return nf_fail(err, NF_ERR_STATE, "the graph's parameters changed; create the optimizer again");
    /* data parallel: the sum over the processes, each batch's loss already
     * weighed 1 / processes, is the mean over the global batch (made while
     * backward ran, when it was overlapped) */
    nf_status st = opt->summed ? NF_OK : nf_comm_sum_floats(opt->comm, g->grads, g->param_floats, err);
    opt->summed = 0;
    if (st != NF_OK)
        return st;
    if (opt->clip_norm > 0)
        opt->last_norm = nf_clip_grad_norm(g, opt->clip_norm);
    if (opt->clip_value > 0)
        nf_clip_grad_value(g, opt->clip_value);
    opt->steps++;
    int decay = nf_optimizer_type_hparam(opt->type, "weight_decay");
    for (int k = 0; k < g->n_params; k++) {
        const nf_param *p = &g->params[k];
        if (p->spec.buffer)
            continue;
        double h[NF_MAX_HPARAMS];
        memcpy(h, opt->h, sizeof h);
        h[0] *= opt->lr_mult[k];
        if (!opt->decay_1d && p->shape.rank == 1 && decay >= 0)
            h[decay] = 0.0;
        nf_update u = {
            .value = g->values + p->offset,
            .grad = g->grads + p->offset,
            .state = opt->state + p->offset * opt->type->state_per_float,
            .n = p->size,
            .h = h,
            .step = opt->steps,
        };
        opt->type->update(&u);
    }
    return NF_OK;
}

/* The type's rule for settings together, over the optimizer's values
 * with `key` (one of its hyper-parameters) set to `value`. */
static nf_status check_together(const nf_optimizer_type *type, const double *h, const char *key, double value,
                                nf_error *err)
{
    double with[NF_MAX_HPARAMS];
    memcpy(with, h, (size_t)type->n_hparams * sizeof(double));
    int i = key ? nf_optimizer_type_hparam(type, key) : -1;
    if (i >= 0)
        with[i] = value;
    const char *blame;
    return nf_optimizer_type_check_together(type, with, &blame, err);
}

nf_status nf_optimizer_check(const nf_optimizer *opt, const char *key, double value, nf_error *err)
{
    if (!strncmp(key, "lr_mult.", 8))
        return set_lr_mult(NULL, opt->graph, key + 8, value, err);
    nf_status st = nf_optimizer_key_check(opt->type, key, value, err);
    return st == NF_OK ? check_together(opt->type, opt->h, key, value, err) : st;
}

int nf_optimizer_belongs_to(const nf_optimizer *opt, const nf_graph *g)
{
    return opt->graph == g && opt->version == g->version;
}

/* ---- accumulation -------------------------------------------------------- */

double nf_optimizer_batch_scale(const nf_optimizer *opt, double weight)
{
    return weight / ((double)opt->accumulate * (double)nf_comm_size(opt->comm));
}

void nf_optimizer_set_comm(nf_optimizer *opt, const nf_comm *comm) { opt->comm = comm; }

int nf_optimizer_has_pending(const nf_optimizer *opt) { return opt->pending > 0; }

/* The batch's gradients (in the graph's buffer) added to those gathered:
 * whole, so that K batches sum as K processes' gradients do. */
static void gather(nf_optimizer *opt)
{
    const float *g = opt->graph->grads;
    float *sum = opt->gathered;
    int64_t n = opt->graph->param_floats;
    if (opt->pending == 0)
        memcpy(sum, g, (size_t)n * sizeof(float));
    else
        for (int64_t i = 0; i < n; i++)
            sum[i] += g[i];
    opt->pending++;
}

/* A step on what was gathered. */
static nf_status step_gathered(nf_optimizer *opt, nf_error *err)
{
    if (opt->gathered)
        memcpy(opt->graph->grads, opt->gathered, (size_t)opt->graph->param_floats * sizeof(float));
    opt->pending = 0;
    return nf_optimizer_step(opt, err);
}

nf_status nf_optimizer_add_batch(nf_optimizer *opt, nf_error *err)
{
    if (opt->accumulate == 1 && opt->pending == 0)
        return nf_optimizer_step(opt, err);
    gather(opt); /* (pending batches imply the buffer: accumulate was > 1) */
    return opt->pending < opt->accumulate ? NF_OK : step_gathered(opt, err);
}

nf_status nf_optimizer_flush(nf_optimizer *opt, nf_error *err)
{
    return opt->pending == 0 ? NF_OK : step_gathered(opt, err);
}

void nf_optimizer_drop_pending(nf_optimizer *opt)
{
    memset(opt->graph->grads, 0, (size_t)opt->graph->param_floats * sizeof(float));
    opt->pending = 0;
    opt->summed = 0;
}

/* ---- data parallel: sums overlapped with backward ------------------------
 * The gradient buffer is cut into buckets of about bucket_mb, from its end
 * (parameters are laid out in the graph's order and backward goes from
 * the last node to the first, so the last parameters are done first).
 * When backward has finished the first node that uses any parameter of
 * the next bucket, that bucket's sum starts; the sums go on while backward
 * works on earlier nodes, and are waited for after it. Every process cuts
 * and starts the same buckets in the same order, as MPI requires. */

/* The least index of a node that uses each parameter (its gradient is
 * final once backward has finished that node). */
static int *first_users(const nf_graph *g)
{
    int *first = malloc((size_t)(g->n_params ? g->n_params : 1) * sizeof *first);
    if (!first)
        return NULL;
    for (int k = 0; k < g->n_params; k++)
        first[k] = g->n_nodes;
    for (int i = g->n_nodes - 1; i >= 0; i--)
        for (int j = 0; j < g->nodes[i]->n_params; j++)
            first[g->nodes[i]->param[j]] = i;
    return first;
}

static nf_status cut_buckets(nf_optimizer *opt, nf_error *err)
{
    const nf_graph *g = opt->graph;
    int *first = first_users(g);
    opt->buckets = calloc((size_t)(g->n_params ? g->n_params : 1), sizeof *opt->buckets);
    if (!first || !opt->buckets) {
        free(first);
        free(opt->buckets);
        opt->buckets = NULL;
        return nf_fail(err, NF_ERR_NO_MEMORY, "out of memory");
    }
    double cap = opt->bucket_mb * 1048576.0 / sizeof(float);
    int n = 0;
    int64_t end = g->param_floats;
    for (int k = g->n_params - 1; k >= 0; k--) {
        nf_bucket *b = &opt->buckets[n];
        if (b->end == 0)
            b->end = end, b->ready_node = first[k];
        b->start = g->params[k].offset;
        if (first[k] < b->ready_node)
            b->ready_node = first[k];
        if ((double)(b->end - b->start) >= cap || k == 0)
            end = b->start, n++;
    }
    opt->n_buckets = n;
    free(first);
    nf_status st = nf_comm_reserve_sums(opt->comm, g->param_floats, n, err);
    if (st != NF_OK) { /* (cut again, and reserved, at the next try) */
        free(opt->buckets);
        opt->buckets = NULL;
    }
    return st;
}

/* Starts every bucket, in order, whose gradients are final now that
 * backward has finished node `done` (all nodes from `done` on). */
static nf_status start_ready(nf_optimizer *opt, int done, nf_error *err)
{
    nf_status st = NF_OK;
    while (st == NF_OK && opt->next_bucket < opt->n_buckets && opt->buckets[opt->next_bucket].ready_node >= done) {
        const nf_bucket *b = &opt->buckets[opt->next_bucket++];
        st = nf_comm_start_sum_floats(opt->comm, opt->graph->grads + b->start, b->end - b->start, err);
    }
    return st;
}

static void grads_done(void *ctx, int node)
{
    nf_optimizer *opt = ctx;
    int before = opt->next_bucket;
    if (opt->sum_status == NF_OK)
        opt->sum_status = start_ready(opt, node, &opt->sum_error);
    opt->overlapped += opt->next_bucket - before;
    nf_comm_progress(opt->comm);
}

int nf_optimizer_overlaps(const nf_optimizer *opt)
{
    return opt->bucket_mb > 0 && nf_comm_size(opt->comm) > 1 && opt->accumulate == 1 && opt->pending == 0;
}

nf_status nf_optimizer_begin_backward(nf_optimizer *opt, nf_plan *plan, nf_error *err)
{
    nf_plan_set_grads_done(plan, NULL, NULL);
    opt->overlapping = 0;
    if (!nf_optimizer_overlaps(opt))
        return NF_OK;
    if (opt->graph->version != opt->version)
        return nf_fail(err, NF_ERR_STATE, "the graph's parameters changed; create the optimizer again");
    if (!opt->buckets) {
        nf_status st = cut_buckets(opt, err);
        if (st != NF_OK)
            return st;
    }
    opt->next_bucket = 0;
    opt->sum_status = NF_OK;
    opt->overlapping = 1;
    nf_plan_set_grads_done(plan, grads_done, opt);
    return NF_OK;
}

nf_status nf_optimizer_end_backward(nf_optimizer *opt, nf_plan *plan, nf_error *err)
{
    if (!opt->overlapping)
        return NF_OK;
    nf_plan_set_grads_done(plan, NULL, NULL);
    opt->overlapping = 0;
    nf_status st = opt->sum_status;
    if (st == NF_OK)
        st = start_ready(opt, -1, err); /* those backward did not reach (nodes that need no gradient) */
    else if (err)
        *err = opt->sum_error;
    /* whatever was started is waited for, even after a failure: MPI owns
     * those parts of the gradients until then */
    nf_status waited = nf_comm_finish_sums(opt->comm, st == NF_OK ? err : NULL);
    if (st == NF_OK)
        st = waited;
    opt->summed = st == NF_OK;
    return st;
}

/* ---- checkpoints ------------------------------------------------------- */

/* Tensor names: "optim.<param>.<slot>" for the state, "grad.<param>" for
 * gradients accumulated before the checkpoint. */
static void state_name(char *buf, size_t size, const nf_param *p, int slot)
{
    if (slot >= 0)
        snprintf(buf, size, "optim.%s.%d", p->name, slot);
    else
        snprintf(buf, size, "grad.%s", p->name);
}

nf_status nf_optimizer_save_state(const nf_optimizer *opt, nf_record *r, nf_error *err)
{
    const nf_graph *g = opt->graph;
    int slots = opt->type->state_per_float;
    char key[NF_PARAM_NAME_MAX + 32];
    nf_record_put_text(r, "optimizer", opt->type->name);
    nf_record_put_int(r, "optimizer_steps", opt->steps);
    nf_record_put_int(r, "accumulated", opt->pending);
    for (int i = 0; i < opt->type->n_hparams; i++) {
        snprintf(key, sizeof key, "hparam.%s", opt->type->hparams[i].name);
        nf_record_put_double(r, key, opt->h[i]);
    }
    for (int k = 0; k < g->n_params; k++) {
        const nf_param *p = &g->params[k];
        for (int s = 0; s < slots; s++) {
            state_name(key, sizeof key, p, s);
            nf_record_put_tensor(r, key, &p->shape, opt->state + p->offset * slots + (int64_t)s * p->size);
        }
        state_name(key, sizeof key, p, -1);
        if (opt->pending > 0)
            nf_record_put_tensor(r, key, &p->shape, opt->gathered + p->offset);
    }
    return nf_record_failed(r) ? nf_fail(err, NF_ERR_NO_MEMORY, "out of memory saving the optimizer") : NF_OK;
}

nf_status nf_optimizer_load_state(nf_optimizer *opt, const nf_record *r, int apply, nf_error *err)
{
    const char *name = nf_record_text(r, "optimizer");
    if (!name || strcmp(name, opt->type->name) != 0)
        return nf_fail(err, NF_ERR_STATE, "the checkpoint is for optimizer '%s', not '%s'", name ? name : "?",
                       opt->type->name);
    int64_t steps, pending;
    double h[NF_MAX_HPARAMS];
    char key[NF_PARAM_NAME_MAX + 32];
    nf_status st = nf_record_int(r, "optimizer_steps", 0, NF_MAX_COUNT, &steps, err);
    if (st == NF_OK)
        st = nf_record_int(r, "accumulated", 0, NF_MAX_COUNT, &pending, err);
    for (int i = 0; st == NF_OK && i < opt->type->n_hparams; i++) {
        snprintf(key, sizeof key, "hparam.%s", opt->type->hparams[i].name);
        st = nf_record_double(r, key, &h[i], err);
        if (st == NF_OK && nf_optimizer_type_check(opt->type, opt->type->hparams[i].name, h[i], NULL) != NF_OK)
            st = nf_fail(err, NF_ERR_FORMAT, "%s = %g is out of range", key, h[i]);
    }
    if (st == NF_OK)
        st = check_together(opt->type, h, NULL, 0, err);
    if (st == NF_OK && pending > 0 && !opt->gathered)
        st = nf_fail(err, NF_ERR_STATE,
                     "the checkpoint holds the gradients of %lld accumulated batches: resume it with the same "
                     "accumulate setting", (long long)pending);
    const nf_graph *g = opt->graph;
    int slots = opt->type->state_per_float;
    for (int k = 0; st == NF_OK && k < g->n_params; k++) {
        const nf_param *p = &g->params[k];
        for (int s = -1; st == NF_OK && s < slots; s++) {
            if (s < 0 && !pending)
                continue;
            state_name(key, sizeof key, p, s);
            float *to = !apply ? NULL
                        : s < 0 ? opt->gathered + p->offset
                                : opt->state + p->offset * slots + (int64_t)s * p->size;
            st = nf_record_tensor(r, key, &p->shape, to, err);
        }
    }
    if (st != NF_OK || !apply)
        return st;
    memcpy(opt->h, h, (size_t)opt->type->n_hparams * sizeof(double));
    opt->steps = steps;
    opt->pending = pending;
    return NF_OK;
}
