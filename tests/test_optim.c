/* The optimizer interface and SGD: the update rule of torch.optim.SGD
 * (momentum, dampening, Nesterov, weight decay) followed step by step,
 * learning rates changed between steps, and every misuse reported. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "helpers.h"

/* A graph with one parameter tensor of 6 floats (a 3 -> 2 linear, no bias). */
static nf_graph *one_param_graph(nf_tensor *w, nf_tensor *grad)
{
    nf_error err;
    nf_graph *g = nf_graph_new();
    nf_node *fc = nf_linear(g, "fc", nf_input(g, "x", 1, (int64_t[]){3}), 2);
    nf_node_set_attr(g, fc, "bias", "0");
    assert_ok(nf_graph_validate(g, &err), &err);
    nf_graph_param(g, 0, NULL, w, grad);
    return g;
}

typedef struct sgd_case {
    double lr, momentum, dampening, weight_decay, nesterov;
} sgd_case;

/* The reference: torch.optim.SGD's documented algorithm in double. */
static void reference_step(const sgd_case *c, double *w, double *buf, const double *g, int step)
{
    for (int i = 0; i < 6; i++) {
        double d = g[i] + c->weight_decay * w[i];
        if (c->momentum != 0) {
            buf[i] = step == 1 ? d : c->momentum * buf[i] + (1 - c->dampening) * d;
            d = c->nesterov ? d + c->momentum * buf[i] : buf[i];
        }
        w[i] -= c->lr * d;
    }
}

static void test_sgd_rule(void **state)
{
    (void)state;
    nf_error err;
    const sgd_case cases[] = {
        {0.1, 0, 0, 0, 0}, {0.05, 0.9, 0, 0, 0}, {0.05, 0.9, 0.3, 0, 0},
        {0.05, 0.9, 0, 0.01, 1}, {0.2, 0.5, 0.1, 0.1, 0},
    };
    const char *keys[] = {"lr", "momentum", "dampening", "weight_decay", "nesterov"};
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        nf_tensor w, grad;
        nf_graph *g = one_param_graph(&w, &grad);
        nf_optimizer *opt;
        assert_ok(nf_optimizer_new(g, "sgd", &opt, &err), &err);
        const double *values = &cases[c].lr;
        for (int k = 0; k < 5; k++)
            assert_ok(nf_optimizer_set(opt, keys[k], values[k], &err), &err);
        double ref_w[6], ref_buf[6] = {0}, ref_g[6];
        for (int i = 0; i < 6; i++)
            ref_w[i] = w.data[i];
        for (int step = 1; step <= 20; step++) {
            for (int i = 0; i < 6; i++) /* a gradient that changes every step */
                ref_g[i] = grad.data[i] = (float)sin(step * 0.7 + i);
            assert_ok(nf_optimizer_step(opt, &err), &err);
            reference_step(&cases[c], ref_w, ref_buf, ref_g, step);
            for (int i = 0; i < 6; i++)
                if (fabs(w.data[i] - ref_w[i]) > 1e-6 * fmax(1.0, fabs(ref_w[i])))
                    fail_msg("case %zu step %d: w[%d] = %.9g, reference %.9g", c, step, i, w.data[i], ref_w[i]);
        }
        assert_int_equal(nf_optimizer_steps(opt), 20);
        nf_optimizer_free(opt);
        nf_graph_free(g);
    }
}

static void test_learning_rate_between_steps(void **state)
{
    (void)state;
    nf_error err;
    nf_tensor w, grad;
    nf_graph *g = one_param_graph(&w, &grad);
    nf_optimizer *opt;
    assert_ok(nf_optimizer_new(g, "sgd", &opt, &err), &err);
    float before = w.data[0];
    grad.data[0] = 1.0f;
    nf_optimizer_set_lr(opt, 0.25);
    assert_true(nf_optimizer_lr(opt) == 0.25);
    assert_ok(nf_optimizer_step(opt, &err), &err);
    nf_optimizer_set_lr(opt, 0.5);
    assert_ok(nf_optimizer_step(opt, &err), &err);
    assert_true(fabsf(w.data[0] - (before - 0.75f)) < 1e-6f);
    double lr;
    assert_ok(nf_optimizer_get(opt, "lr", &lr, &err), &err);
    assert_true(lr == 0.5);
    nf_optimizer_free(opt);
    nf_graph_free(g);
}

static void test_misuse(void **state)
{
    (void)state;
    nf_error err;
    nf_tensor w, grad;
    nf_graph *g = one_param_graph(&w, &grad);
    nf_optimizer *opt;
    assert_int_equal(nf_optimizer_new(g, "adamax", &opt, &err), NF_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(err.message, "unknown optimizer 'adamax'"));
    assert_ok(nf_optimizer_new(g, "sgd", &opt, &err), &err);
    assert_int_equal(nf_optimizer_set(opt, "beta1", 0.9, &err), NF_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(err.message, "optimizer 'sgd' has no hyper-parameter 'beta1'"));
    assert_int_equal(nf_optimizer_set(opt, "lr", -1, &err), NF_ERR_INVALID_ARGUMENT);
    assert_int_equal(nf_optimizer_set(opt, "momentum", NAN, &err), NF_ERR_INVALID_ARGUMENT);
    /* the graph grows: the optimizer's state no longer matches */
    nf_linear(g, "fc2", nf_graph_find(g, "fc"), 2);
    assert_ok(nf_graph_validate(g, &err), &err);
    assert_int_equal(nf_optimizer_step(opt, &err), NF_ERR_STATE);
    nf_optimizer_free(opt);
    nf_linear(g, "fc3", nf_graph_find(g, "fc2"), 2);
    assert_int_equal(nf_optimizer_new(g, "sgd", &opt, &err), NF_ERR_STATE); /* not validated */
    assert_string_equal(nf_optimizer_names()[0], "sgd");
    nf_graph_free(g);
}

/* ---- against torch.optim (tests/fixtures/make_torch_optim.py) ---------- */

typedef struct torch_case {
    const char *name, *optimizer;
    const char *keys[6];
    double values[6];
} torch_case;

/* The same settings as OPTIMIZERS in make_torch_optim.py. */
static const torch_case torch_cases[] = {
    {"sgd_plain", "sgd", {"lr"}, {0.1}},
    {"sgd_momentum", "sgd", {"lr", "momentum"}, {0.05, 0.9}},
    {"sgd_dampening", "sgd", {"lr", "momentum", "dampening"}, {0.05, 0.9, 0.5}},
    {"sgd_nesterov", "sgd", {"lr", "momentum", "nesterov", "weight_decay"}, {0.05, 0.9, 1, 0.01}},
    {"sgd_decay", "sgd", {"lr", "weight_decay"}, {0.1, 0.1}},
    {"adagrad", "adagrad", {"lr"}, {0.1}},
    {"adagrad_all", "adagrad", {"lr", "lr_decay", "weight_decay", "initial_accumulator_value", "eps"},
     {0.1, 0.01, 0.05, 0.1, 1e-6}},
    {"rmsprop", "rmsprop", {"lr"}, {0.01}},
    {"rmsprop_centered", "rmsprop", {"lr", "centered"}, {0.01, 1}},
    {"rmsprop_momentum", "rmsprop", {"lr", "momentum"}, {0.01, 0.9}},
    {"rmsprop_all", "rmsprop", {"lr", "alpha", "eps", "weight_decay", "momentum", "centered"},
     {0.01, 0.9, 1e-6, 0.1, 0.5, 1}},
    {"adam", "adam", {"lr"}, {0.01}},
    {"adam_amsgrad", "adam", {"lr", "amsgrad"}, {0.01, 1}},
    {"adam_decay", "adam", {"lr", "weight_decay"}, {0.01, 0.1}},
    {"adam_betas", "adam", {"lr", "beta1", "beta2", "eps"}, {0.02, 0.8, 0.99, 1e-6}},
    {"adamw", "adamw", {"lr"}, {0.01}},
    {"adamw_all", "adamw", {"lr", "weight_decay", "amsgrad"}, {0.01, 0.1, 1}},
};

/* max |a - b| <= 1e-6 max |b|: relative to the tensor's scale, because
 * single elements pass near 0, where PyTorch's fused multiply-adds and
 * our separate ones differ in the last bit of a tiny number. */
static void assert_relative(const char *what, int step, const float *a, const float *b, int n)
{
    double scale = 0;
    for (int i = 0; i < n; i++)
        scale = fmax(scale, fabs(b[i]));
    for (int i = 0; i < n; i++)
        if (fabs((double)a[i] - b[i]) > 1e-6 * scale)
            fail_msg("%s, step %d, element %d: %.9g, PyTorch %.9g (scale %.3g)", what, step + 1, i, a[i], b[i], scale);
}

/* The problem of make_torch_optim.py: a 3 x 4 weight and a bias of 3,
 * starting at weight0 and bias0, with the gradient g = a * p + b. */
typedef struct torch_problem {
    nf_graph *g;
    nf_tensor w, b, gw, gb;
    const float *aw, *ab, *bw, *bb;
} torch_problem;

static torch_problem torch_problem_new(const fixture *f)
{
    nf_error err;
    torch_problem t;
    t.g = nf_graph_new();
    nf_linear(t.g, "fc", nf_input(t.g, "x", 1, (int64_t[]){4}), 3);
    assert_ok(nf_graph_validate(t.g, &err), &err);
    nf_graph_param(t.g, nf_graph_find_param(t.g, "fc.weight"), NULL, &t.w, &t.gw);
    nf_graph_param(t.g, nf_graph_find_param(t.g, "fc.bias"), NULL, &t.b, &t.gb);
    memcpy(t.w.data, fixture_get(f, "weight0")->data, 12 * sizeof(float));
    memcpy(t.b.data, fixture_get(f, "bias0")->data, 3 * sizeof(float));
    t.aw = fixture_get(f, "a_weight")->data;
    t.ab = fixture_get(f, "a_bias")->data;
    t.bw = fixture_get(f, "b_weight")->data;
    t.bb = fixture_get(f, "b_bias")->data;
    return t;
}

/* g = a * p + b, in float32 as in the script */
static void torch_problem_gradients(torch_problem *t)
{
    for (int i = 0; i < 12; i++)
        t->gw.data[i] = t->aw[i] * t->w.data[i] + t->bw[i];
    for (int i = 0; i < 3; i++)
        t->gb.data[i] = t->ab[i] * t->b.data[i] + t->bb[i];
}

static void test_torch_trajectories(void **state)
{
    (void)state;
    nf_error err;
    fixture f;
    fixture_load(&f, "torch_optim.txt");
    for (size_t c = 0; c < sizeof torch_cases / sizeof torch_cases[0]; c++) {
        const torch_case *tc = &torch_cases[c];
        torch_problem t = torch_problem_new(&f);
        nf_optimizer *opt;
        assert_ok(nf_optimizer_new(t.g, tc->optimizer, &opt, &err), &err);
        for (int k = 0; k < 6 && tc->keys[k]; k++)
            assert_ok(nf_optimizer_set(opt, tc->keys[k], tc->values[k], &err), &err);
        char name[96];
        snprintf(name, sizeof name, "%s.weight", tc->name);
        const float *want_w = fixture_get(&f, name)->data;
        snprintf(name, sizeof name, "%s.bias", tc->name);
        const float *want_b = fixture_get(&f, name)->data;
        for (int step = 0; step < 20; step++) {
            torch_problem_gradients(&t);
            assert_ok(nf_optimizer_step(opt, &err), &err);
            assert_relative(tc->name, step, t.w.data, want_w + 12 * step, 12);
            assert_relative(tc->name, step, t.b.data, want_b + 3 * step, 3);
        }
        nf_optimizer_free(opt);
        nf_graph_free(t.g);
    }
    fixture_free(&f);
}

typedef struct schedule_case {
    const char *name, *schedule;
    const char *keys[4], *values[4];
} schedule_case;

/* The same settings as SCHEDULES in make_torch_optim.py. */
static const schedule_case schedule_cases[] = {
    {"step", "step", {"step_size", "gamma"}, {"7", "0.5"}},
    {"multistep", "multistep", {"milestones", "gamma"}, {"5,12,20", "0.3"}},
    {"exponential", "exponential", {"gamma"}, {"0.9"}},
    {"cosine", "cosine", {"T_max", "eta_min"}, {"10", "0.001"}},
    {"restarts", "restarts", {"T_0", "T_mult", "eta_min"}, {"5", "2", "0.001"}},
    {"restarts_flat", "restarts", {"T_0"}, {"4"}},
    {"warmup_cosine", "cosine", {"warmup", "warmup_start", "T_max", "eta_min"}, {"5", "0.1", "20", "0"}},
    {"warmup_step", "step", {"warmup", "warmup_start", "step_size", "gamma"}, {"4", "0.25", "6", "0.5"}},
    {"plateau", "plateau", {"factor", "patience", "cooldown", "min_lr"}, {"0.5", "2", "1", "0.002"}},
};

static void test_torch_schedules(void **state)
{
    (void)state;
    nf_error err;
    fixture f;
    fixture_load(&f, "torch_optim.txt");
    const float *metric = fixture_get(&f, "plateau.metric")->data;
    for (size_t c = 0; c < sizeof schedule_cases / sizeof schedule_cases[0]; c++) {
        const schedule_case *sc = &schedule_cases[c];
        nf_schedule *s;
        assert_ok(nf_schedule_new(sc->schedule, 0.1, &s, &err), &err);
        for (int k = 0; k < 4 && sc->keys[k]; k++)
            assert_ok(nf_schedule_set_text(s, sc->keys[k], sc->values[k], &err), &err);
        char name[64];
        snprintf(name, sizeof name, "%s.lr", sc->name);
        const float *want = fixture_get(&f, name)->data;
        for (int t = 0; t < 30; t++) {
            double lr = nf_schedule_lr(s);
            if (fabs(lr - want[t]) > 1e-6 * fmax(want[t], 1e-6))
                fail_msg("%s, period %d: lr %.9g, PyTorch %.9g", sc->name, t, lr, want[t]);
            nf_schedule_step(s, strcmp(sc->schedule, "plateau") == 0 ? metric[t] : NAN);
        }
        nf_schedule_free(s);
    }
    nf_schedule *s;
    assert_int_equal(nf_schedule_new("linear", 0.1, &s, &err), NF_ERR_INVALID_ARGUMENT);
    assert_ok(nf_schedule_new("step", 0.1, &s, &err), &err);
    assert_int_equal(nf_schedule_set(s, "gama", 0.5, &err), NF_ERR_INVALID_ARGUMENT);
    assert_int_equal(nf_schedule_set_text(s, "milestones", "5,3", &err), NF_ERR_INVALID_ARGUMENT);
    assert_int_equal(nf_schedule_set(s, "step_size", 2.5, &err), NF_ERR_INVALID_ARGUMENT);
    nf_schedule_free(s);
    fixture_free(&f);
}

/* Polyak and EMA averages of the sgd_momentum run, against AveragedModel;
 * swapping puts the average in the graph and back. */
static void test_torch_averages(void **state)
{
    (void)state;
    nf_error err;
    fixture f;
    fixture_load(&f, "torch_optim.txt");
    torch_problem t = torch_problem_new(&f);
    nf_graph *g = t.g;
    nf_tensor w = t.w;
    const float *want_polyak = fixture_get(&f, "average_polyak.weight")->data;
    const float *want_ema = fixture_get(&f, "average_ema.weight")->data;
    nf_optimizer *opt;
    nf_average *polyak, *ema;
    assert_ok(nf_optimizer_new(g, "sgd", &opt, &err), &err);
    assert_ok(nf_optimizer_set(opt, "lr", 0.05, &err), &err);
    assert_ok(nf_optimizer_set(opt, "momentum", 0.9, &err), &err);
    assert_ok(nf_average_new(g, "polyak", 0, &polyak, &err), &err);
    assert_ok(nf_average_new(g, "ema", 0.9, &ema, &err), &err);
    for (int step = 0; step < 20; step++) {
        torch_problem_gradients(&t);
        assert_ok(nf_optimizer_step(opt, &err), &err);
        assert_ok(nf_average_update(polyak, &err), &err);
        assert_ok(nf_average_update(ema, &err), &err);
        float live[12];
        memcpy(live, w.data, sizeof live);
        assert_ok(nf_average_swap(polyak, &err), &err);
        assert_relative("polyak", step, w.data, want_polyak + 12 * step, 12);
        assert_ok(nf_average_swap(polyak, &err), &err);
        assert_ok(nf_average_swap(ema, &err), &err);
        assert_relative("ema", step, w.data, want_ema + 12 * step, 12);
        assert_ok(nf_average_swap(ema, &err), &err);
        assert_memory_equal(live, w.data, sizeof live);
    }
    assert_int_equal(nf_average_count(ema), 20);
    nf_average *bad;
    assert_int_equal(nf_average_new(g, "swa", 0, &bad, &err), NF_ERR_INVALID_ARGUMENT);
    assert_int_equal(nf_average_new(g, "ema", 1.5, &bad, &err), NF_ERR_INVALID_ARGUMENT);
    nf_average_free(polyak);
    nf_average_free(ema);
    nf_optimizer_free(opt);
    nf_graph_free(g);
    fixture_free(&f);
}

/* lr_mult.NODE scales one node's learning rate; decay_1d=0 spares biases. */
static void test_per_parameter_options(void **state)
{
    (void)state;
    nf_error err;
    nf_graph *g = nf_graph_new();
    nf_node *a = nf_linear(g, "a", nf_input(g, "x", 1, (int64_t[]){2}), 2);
    nf_linear(g, "b", a, 2);
    assert_ok(nf_graph_validate(g, &err), &err);
    nf_optimizer *opt;
    assert_ok(nf_optimizer_new(g, "sgd", &opt, &err), &err);
    assert_ok(nf_optimizer_set(opt, "lr", 1, &err), &err);
    assert_ok(nf_optimizer_set(opt, "weight_decay", 0.5, &err), &err);
    assert_ok(nf_optimizer_set(opt, "lr_mult.b", 0.25, &err), &err);
    assert_ok(nf_optimizer_set(opt, "decay_1d", 0, &err), &err);
    assert_int_equal(nf_optimizer_set(opt, "lr_mult.x", 2, &err), NF_ERR_INVALID_ARGUMENT);
    float before[4][4];
    nf_tensor v[4], gr[4];
    for (int k = 0; k < 4; k++) {
        nf_graph_param(g, k, NULL, &v[k], &gr[k]);
        memcpy(before[k], v[k].data, (size_t)nf_shape_size(&v[k].shape) * sizeof(float));
        for (int64_t i = 0; i < nf_shape_size(&v[k].shape); i++)
            gr[k].data[i] = 1.0f;
    }
    assert_ok(nf_optimizer_step(opt, &err), &err);
    /* a.weight: w - 1 (1 + 0.5 w); a.bias: b - 1; b.weight: w - 0.25 (1 + 0.5 w); b.bias: b - 0.25 */
    const double lr[4] = {1, 1, 0.25, 0.25}, wd[4] = {0.5, 0, 0.5, 0};
    for (int k = 0; k < 4; k++)
        for (int64_t i = 0; i < nf_shape_size(&v[k].shape); i++) {
            double want = before[k][i] - lr[k] * (1 + wd[k] * before[k][i]);
            assert_true(fabs(v[k].data[i] - want) < 1e-6);
        }
    nf_optimizer_free(opt);
    nf_graph_free(g);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sgd_rule),
        cmocka_unit_test(test_learning_rate_between_steps),
        cmocka_unit_test(test_misuse),
        cmocka_unit_test(test_torch_trajectories),
        cmocka_unit_test(test_torch_schedules),
        cmocka_unit_test(test_per_parameter_options),
        cmocka_unit_test(test_torch_averages),
    };
    return cmocka_run_group_tests_name("optim", tests, NULL, NULL);
}
