/* nodeflow — numerical gradient checking by central differences.
 * State kept between runs (memory nodes, recurrent layers with carry) is
 * put back before every run, so that each run computes the same function
 * of the parameters and inputs, from the same carried state. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/plan_internal.h"

typedef struct checker {
    nf_plan *plan;
    double step, floor;
    uint64_t runs;                 /* the run count of the analytic pass: same dropout masks */
    nf_gradcheck_result *result;
} checker;

static nf_status loss_at(checker *c, double *loss, nf_error *err)
{
    c->plan->graph->runs = c->runs;
    nf_plan_keep_state(c->plan, 0); /* the carried state as before the first run */
    nf_status st = nf_plan_forward(c->plan, err);
    *loss = nf_plan_loss(c->plan);
    return st;
}

/* Central difference (L(x + h) - L(x - h)) / 2h at element i. */
static nf_status central(checker *c, float *x, int64_t i, double h, double *out, nf_error *err)
{
    float orig = x[i];
    double up = 0, down = 0;
    x[i] = (float)(orig + h);
    nf_status st = loss_at(c, &up, err);
    x[i] = (float)(orig - h);
    if (st == NF_OK)
        st = loss_at(c, &down, err);
    x[i] = orig;
    *out = (up - down) / (2.0 * h);
    return st;
}

/* Compares analytic[i] with central differences for sampled elements of
 * one tensor. Where a kink (a relu at 0, a clamp's edge) lies within the
 * step, differences with steps h and h/2 disagree: such elements are
 * skipped and counted. On smooth functions the two agree to O(h^2). */
static nf_status check_tensor(checker *c, const char *name, float *x, const float *analytic, int64_t n,
                              int64_t max_checked, nf_error *err)
{
    int64_t stride = (max_checked > 0 && n > max_checked) ? n / max_checked : 1;
    for (int64_t i = 0; i < n; i += stride) {
        double wide, narrow;
        nf_status st = central(c, x, i, c->step, &wide, err);
        if (st == NF_OK)
            st = central(c, x, i, c->step / 2, &narrow, err);
        if (st != NF_OK)
            return st;
        double scale = fmax(fmax(fabs(wide), fabs(narrow)), c->floor);
        if (fabs(wide - narrow) / scale > 2e-3) {
            c->result->skipped_kinks++;
            continue;
        }
        double a = analytic[i];
        double rel = fabs(a - wide) / fmax(fmax(fabs(a), fabs(wide)), c->floor);
        c->result->checked++;
        if (rel > c->result->max_rel_error) {
            c->result->max_rel_error = rel;
            snprintf(c->result->worst, sizeof c->result->worst, "%s[%lld]", name, (long long)i);
        }
    }
    return NF_OK;
}

/* Analytic gradients: parameters first, then inputs that asked for them,
 * copied before any perturbation. */
static float *analytic_gradients(nf_plan *p, int64_t *floats)
{
    nf_graph *g = p->graph;
    int64_t n = g->param_floats;
    for (int k = 0; k < p->n; k++) {
        nf_tensor grad; /* [batch, shape], or [batch, steps, shape] for a sequence */
        if (g->nodes[k]->requires_grad && nf_plan_grad(p, g->nodes[k], &grad, NULL) == NF_OK)
            n += nf_shape_size(&grad.shape);
    }
    float *copy = malloc((size_t)(n ? n : 1) * sizeof(float));
    if (!copy)
        return NULL;
    memcpy(copy, g->grads, (size_t)g->param_floats * sizeof(float));
    int64_t at = g->param_floats;
    for (int k = 0; k < p->n; k++) {
        nf_tensor grad;
        if (!g->nodes[k]->requires_grad || nf_plan_grad(p, g->nodes[k], &grad, NULL) != NF_OK)
            continue;
        int64_t size = nf_shape_size(&grad.shape);
        memcpy(copy + at, grad.data, (size_t)size * sizeof(float));
        at += size;
    }
    *floats = n;
    return copy;
}

static nf_status check_all(checker *c, const float *analytic, int64_t max_checked, nf_error *err)
{
    nf_plan *p = c->plan;
    nf_graph *g = p->graph;
    nf_status st = NF_OK;
    for (int k = 0; k < g->n_params && st == NF_OK; k++) {
        const nf_param *prm = &g->params[k];
        if (prm->spec.buffer)
            continue;
        st = check_tensor(c, prm->name, g->values + prm->offset, analytic + prm->offset, prm->size,
                          max_checked, err);
    }
    int64_t at = g->param_floats;
    for (int k = 0; k < p->n && st == NF_OK; k++) {
        const nf_node *node = g->nodes[k];
        nf_tensor value;
        if (!node->requires_grad || !p->steps[k].has_grad || nf_plan_input(p, node, &value, NULL) != NF_OK)
            continue;
        int64_t size = nf_shape_size(&value.shape);
        st = check_tensor(c, node->name, value.data, analytic + at, size, max_checked, err);
        at += size;
    }
    return st;
}

nf_status nf_gradcheck(nf_plan *p, const nf_gradcheck_options *opts, nf_gradcheck_result *result,
                       nf_error *err)
{
    if (!p || !result)
        return nf_fail(err, NF_ERR_INVALID_ARGUMENT, "nf_gradcheck: NULL argument");
    memset(result, 0, sizeof *result);
    uint64_t runs = p->graph->runs;
    nf_plan_keep_state(p, 1);
    nf_status st = nf_plan_forward(p, err);
    if (st == NF_OK)
        st = nf_plan_backward(p, err);
    int64_t floats;
    float *analytic = st == NF_OK ? analytic_gradients(p, &floats) : NULL;
    if (st == NF_OK && !analytic)
        st = nf_fail(err, NF_ERR_NO_MEMORY, "out of memory for the gradient check");
    if (st != NF_OK)
        return st;
    checker c = {
        .plan = p,
        .step = opts && opts->step > 0 ? opts->step : 1e-2,
        .floor = opts && opts->abs_floor > 0 ? opts->abs_floor : 1e-2,
        .runs = runs,
        .result = result,
    };
    st = check_all(&c, analytic, opts ? opts->max_per_tensor : 0, err);
    free(analytic);
    /* leave the plan as it was after the first backward */
    p->graph->runs = runs;
    nf_plan_keep_state(p, 0);
    if (st == NF_OK)
        st = nf_plan_forward(p, err);
    if (st == NF_OK)
        st = nf_plan_backward(p, err);
    return st;
}
