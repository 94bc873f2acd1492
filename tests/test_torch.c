/* nodeflow against PyTorch: forward values, losses and every gradient of
 * the graphs in tests/fixtures/make_torch.py, to 1e-5 relative (of each
 * tensor's largest magnitude). The fixtures are committed; this test does
 * not need Python. */
#include <stdio.h>
#include <string.h>

#include "helpers.h"

#define RTOL 1e-5

/* Copies a fixture tensor into a parameter (by name) or an input. */
static void load_param(nf_graph *g, const fixture *f, const char *name)
{
    const fixture_tensor *t = fixture_get(f, name);
    nf_tensor value;
    int k = nf_graph_find_param(g, name);
    assert_true(k >= 0);
    nf_graph_param(g, k, NULL, &value, NULL);
    assert_true(nf_shape_equal(&value.shape, &t->shape));
    memcpy(value.data, t->data, (size_t)nf_shape_size(&t->shape) * sizeof(float));
}

static void load_input(nf_plan *plan, const nf_node *node, const fixture *f)
{
    nf_error err;
    const fixture_tensor *t = fixture_get(f, nf_node_name(node));
    nf_tensor view;
    assert_ok(nf_plan_input(plan, node, &view, &err), &err);
    assert_true(nf_shape_equal(&view.shape, &t->shape));
    memcpy(view.data, t->data, (size_t)nf_shape_size(&t->shape) * sizeof(float));
}

static void expect_node_value(const nf_plan *plan, const nf_node *node, const fixture *f, const char *name)
{
    nf_error err;
    nf_tensor v;
    assert_ok(nf_plan_value(plan, node, &v, &err), &err);
    const fixture_tensor *t = fixture_get(f, name);
    assert_int_equal(nf_shape_size(&v.shape), nf_shape_size(&t->shape));
    assert_close(name, v.data, t->data, nf_shape_size(&t->shape), RTOL);
}

static void expect_param_grad(const nf_graph *g, const fixture *f, const char *param)
{
    char name[96];
    nf_tensor grad;
    nf_graph_param(g, nf_graph_find_param(g, param), NULL, NULL, &grad);
    snprintf(name, sizeof name, "grad.%s", param);
    assert_close(name, grad.data, fixture_get(f, name)->data, nf_shape_size(&grad.shape), RTOL);
}

static void expect_input_grad(const nf_plan *plan, const nf_node *node, const fixture *f)
{
    nf_error err;
    char name[96];
    nf_tensor grad;
    assert_ok(nf_plan_grad(plan, node, &grad, &err), &err);
    snprintf(name, sizeof name, "grad.%s", nf_node_name(node));
    assert_close(name, grad.data, fixture_get(f, name)->data, nf_shape_size(&grad.shape), RTOL);
}

static void test_mlp(void **state)
{
    (void)state;
    nf_error err;
    fixture f;
    fixture_load(&f, "torch_mlp.txt");
    nf_graph *g = nf_graph_new();
    nf_node *x = nf_input(g, "x", 1, (int64_t[]){5});
    nf_node *y = nf_input(g, "y", 0, NULL);
    nf_node *t = nf_input(g, "t", 1, (int64_t[]){3});
    nf_input_requires_grad(g, x);
    nf_node *h1 = nf_tanh(g, NULL, nf_linear(g, "fc1", x, 7));
    nf_node *h2 = nf_leaky_relu(g, NULL, nf_linear(g, "fc2", h1, 6), 0.1);
    nf_node *logits = nf_output(g, "logits", nf_linear(g, "fc3", h2, 3));
    nf_cross_entropy_loss(g, "ce", logits, y);
    nf_mse_loss(g, "mse", nf_sigmoid(g, NULL, logits), t);
    nf_plan *plan;
    assert_ok(nf_plan_compile(g, 4, NF_PLAN_TRAINING, &plan, &err), &err);
    const char *params[] = {"fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias", "fc3.weight", "fc3.bias"};
    for (int i = 0; i < 6; i++)
        load_param(g, &f, params[i]);
    load_input(plan, x, &f);
    load_input(plan, y, &f);
    load_input(plan, t, &f);
    assert_ok(nf_plan_forward(plan, &err), &err);
    assert_ok(nf_plan_backward(plan, &err), &err);
    expect_node_value(plan, logits, &f, "logits");
    float loss = (float)nf_plan_loss(plan);
    assert_close("loss", &loss, fixture_get(&f, "loss")->data, 1, RTOL);
    for (int i = 0; i < 6; i++)
        expect_param_grad(g, &f, params[i]);
    expect_input_grad(plan, x, &f);
    nf_plan_free(plan);
    nf_graph_free(g);
    fixture_free(&f);
}

static void test_ops(void **state)
{
    (void)state;
    nf_error err;
    fixture f;
    fixture_load(&f, "torch_ops.txt");
    nf_graph *g = nf_graph_new();
    const char *names[] = {"x", "m", "c", "d", "e", "tb", "tp", "tw"};
    nf_node *in[8];
    for (int i = 0; i < 8; i++) {
        const fixture_tensor *t = fixture_get(&f, names[i]);
        in[i] = nf_input(g, names[i], t->shape.rank - 1, t->shape.dim + 1);
        nf_input_requires_grad(g, in[i]);
    }
    nf_node *p = nf_matmul(g, "p", in[0], in[1]);
    nf_node *q = nf_add(g, "q", p, in[2]);
    nf_node *r = nf_sub(g, "r", q, in[3]);
    nf_node *s = nf_mul(g, "s", r, in[4]);
    nf_node *u = nf_output(g, "u", nf_scale(g, "half", s, 0.5));
    nf_node *w = nf_output(g, "w", nf_softmax(g, "sm", nf_relu(g, "v", u)));
    nf_node *z = nf_output(g, "z", nf_log_softmax(g, "lsm", u));
    nf_node *bce = nf_bce_with_logits_loss(g, "bce", u, in[5]);
    nf_node *ce = nf_cross_entropy_loss(g, "ce", z, in[6]);
    nf_node *mse = nf_mse_loss(g, "mse", w, in[7]);
    nf_plan *plan;
    assert_ok(nf_plan_compile(g, 4, NF_PLAN_TRAINING, &plan, &err), &err);
    for (int i = 0; i < 8; i++)
        load_input(plan, in[i], &f);
    assert_ok(nf_plan_forward(plan, &err), &err);
    assert_ok(nf_plan_backward(plan, &err), &err);
    expect_node_value(plan, u, &f, "u");
    expect_node_value(plan, w, &f, "w");
    expect_node_value(plan, z, &f, "z");
    expect_node_value(plan, bce, &f, "bce");
    expect_node_value(plan, ce, &f, "ce");
    expect_node_value(plan, mse, &f, "mse");
    for (int i = 0; i < 8; i++)
        expect_input_grad(plan, in[i], &f);
    nf_plan_free(plan);
    nf_graph_free(g);
    fixture_free(&f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_mlp),
        cmocka_unit_test(test_ops),
    };
    return cmocka_run_group_tests_name("torch", tests, NULL, NULL);
}
