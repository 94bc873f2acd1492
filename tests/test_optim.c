/* The optimizer interface and SGD: the update rule of torch.optim.SGD
 * (momentum, dampening, Nesterov, weight decay) followed step by step,
 * learning rates changed between steps, and every misuse reported. */
#include <math.h>
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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sgd_rule),
        cmocka_unit_test(test_learning_rate_between_steps),
        cmocka_unit_test(test_misuse),
    };
    return cmocka_run_group_tests_name("optim", tests, NULL, NULL);
}
