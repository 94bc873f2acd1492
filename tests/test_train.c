/* Training end to end: XOR by a 2-4-1 network, the W1 MLP on a
 * Fashion-MNIST subset (a broken backprop cannot reach the threshold),
 * the last partial batch, and bit-identical reruns from a seed. */
#include <stdlib.h>
#include <string.h>

#include "helpers.h"

typedef struct mlp {
    nf_graph *g;
    nf_node *x, *y, *logits;
} mlp;

/* 784 -> 256 -> 128 -> 10, the W1 workload */
static mlp build_w1(uint64_t seed)
{
    mlp m;
    m.g = nf_graph_new();
    nf_graph_set_seed(m.g, seed);
    m.x = nf_input(m.g, "x", 1, (int64_t[]){784});
    m.y = nf_input(m.g, "y", 0, NULL);
    nf_node *h1 = nf_relu(m.g, NULL, nf_linear(m.g, "fc1", m.x, 256));
    nf_node *h2 = nf_relu(m.g, NULL, nf_linear(m.g, "fc2", h1, 128));
    m.logits = nf_output(m.g, "logits", nf_linear(m.g, "fc3", h2, 10));
    nf_cross_entropy_loss(m.g, "loss", m.logits, m.y);
    return m;
}

static nf_optimizer *sgd(nf_graph *g, double lr, double momentum)
{
    nf_error err;
    nf_optimizer *opt;
    assert_ok(nf_optimizer_new(g, "sgd", &opt, &err), &err);
    assert_ok(nf_optimizer_set(opt, "lr", lr, &err), &err);
    assert_ok(nf_optimizer_set(opt, "momentum", momentum, &err), &err);
    return opt;
}

static void test_xor(void **state)
{
    (void)state;
    nf_error err;
    float xs[] = {0, 0, 0, 1, 1, 0, 1, 1}, ys[] = {0, 1, 1, 0};
    nf_dataset ds = {.count = 4, .x_shape = {1, {2}}, .y_shape = {1, {1}}, .x = xs, .y = ys};
    nf_graph *g = nf_graph_new();
    nf_graph_set_seed(g, 3);
    nf_node *x = nf_input(g, "x", 1, (int64_t[]){2});
    nf_node *y = nf_input(g, "y", 1, (int64_t[]){1});
    nf_node *logit = nf_output(g, "logit", nf_linear(g, "out", nf_tanh(g, NULL, nf_linear(g, "hidden", x, 4)), 1));
    nf_bce_with_logits_loss(g, "loss", logit, y);
    nf_plan *plan;
    assert_ok(nf_plan_compile(g, 4, NF_PLAN_TRAINING, &plan, &err), &err);
    nf_optimizer *opt = sgd(g, 0.5, 0.9);
    nf_batcher *b;
    assert_ok(nf_batcher_new(&ds, 4, 1, 5, &b, &err), &err);
    nf_binding bind = {.x = x, .y = y};
    nf_epoch_stats stats;
    for (int epoch = 0; epoch < 500; epoch++)
        assert_ok(nf_train_epoch(plan, opt, b, &bind, &stats, &err), &err);
    assert_true(stats.loss < 0.05);
    /* every one of the four cases on the right side of 0 */
    assert_ok(nf_plan_set_input(plan, x, xs, &err), &err);
    assert_ok(nf_plan_forward(plan, &err), &err);
    nf_tensor out;
    assert_ok(nf_plan_value(plan, logit, &out, &err), &err);
    for (int i = 0; i < 4; i++)
        assert_int_equal(out.data[i] > 0.0f, ys[i] > 0.5f);
    nf_batcher_free(b);
    nf_optimizer_free(opt);
    nf_plan_free(plan);
    nf_graph_free(g);
}

/* A sample whose feature is 1e30 makes a scaled layer's output
 * infinite (1e30 x 1e30 overflows a float; other samples stay finite): training stops with an error naming that node and the batch,
 * or, skipping, leaves the weights as they were and counts the batch. */
static void test_nonfinite(void **state)
{
    (void)state;
    nf_error err;
    float xs[] = {0.5f, -1, 1e30f, 2, 0.25f, 1}, ys[] = {0, 1, 1};
    nf_dataset ds = {.count = 3, .x_shape = {1, {2}}, .y_shape = {1, {1}}, .x = xs, .y = ys};
    nf_graph *g = nf_graph_new();
    nf_graph_set_seed(g, 3);
    nf_node *x = nf_input(g, "x", 1, (int64_t[]){2});
    nf_node *y = nf_input(g, "y", 1, (int64_t[]){1});
    nf_node *hidden = nf_scale(g, "boost", nf_linear(g, "hidden", x, 4), 1e30);
    nf_node *logit = nf_output(g, "logit", nf_linear(g, "out", nf_scale(g, NULL, hidden, 1e-30), 1));
    nf_bce_with_logits_loss(g, "loss", logit, y);
    nf_plan *plan;
    assert_ok(nf_plan_compile(g, 1, NF_PLAN_TRAINING, &plan, &err), &err);
    nf_optimizer *opt = sgd(g, 0.1, 0.0);
    nf_batcher *b;
    assert_ok(nf_batcher_new(&ds, 1, 0, 5, &b, &err), &err);
    nf_binding bind = {.x = x, .y = y};
    nf_epoch_stats stats = {0};
    assert_int_equal(nf_train_epoch(plan, opt, b, &bind, &stats, &err), NF_ERR_NUMERIC);
    if (!strstr(err.message, "batch 2: the output of scale 'boost' is infinite"))
        fail_msg("unexpected message: %s", err.message);

    nf_batcher_rewind(b);
    nf_plan_set_skip_nonfinite(plan, 1);
    nf_tensor w;
    nf_graph_param(g, 0, NULL, &w, NULL);
    int64_t floats = nf_graph_param_floats(g);
    float *before = malloc((size_t)floats * sizeof(float));
    assert_non_null(before);
    assert_ok(nf_train_batches(plan, opt, b, &bind, 1, &stats, NULL, &err), &err); /* the good first sample */
    memcpy(before, w.data, (size_t)floats * sizeof(float));
    memset(&stats, 0, sizeof stats);
    assert_ok(nf_train_batches(plan, opt, b, &bind, 1, &stats, NULL, &err), &err); /* the bad one */
    assert_int_equal(stats.skipped, 1);
    assert_int_equal(stats.batches, 0);
    assert_memory_equal(before, w.data, (size_t)floats * sizeof(float));
    assert_ok(nf_train_batches(plan, opt, b, &bind, 1, &stats, NULL, &err), &err); /* and on */
    assert_int_equal(stats.batches, 1);
    free(before);
    nf_batcher_free(b);
    nf_optimizer_free(opt);
    nf_plan_free(plan);
    nf_graph_free(g);
}

static void load_subset(nf_dataset **train, nf_dataset **test)
{
    nf_error err;
    assert_ok(nf_dataset_load_fashion_mnist(NULL, 1, train, &err), &err);
    assert_ok(nf_dataset_load_fashion_mnist(NULL, 0, test, &err), &err);
    nf_dataset_truncate(*train, 5000);
    nf_dataset_truncate(*test, 2000);
}

/* Trains W1 for `epochs` on the subset; returns the test accuracy and
 * copies the final parameters into `params` (if non-NULL). */
static double train_w1(const nf_dataset *train, const nf_dataset *test, int epochs, float *params)
{
    nf_error err;
    mlp m = build_w1(11);
    nf_plan *plan, *eval_plan;
    assert_ok(nf_plan_compile(m.g, 64, NF_PLAN_TRAINING, &plan, &err), &err);
    assert_ok(nf_plan_compile(m.g, 500, NF_PLAN_INFERENCE, &eval_plan, &err), &err);
    nf_optimizer *opt = sgd(m.g, 0.05, 0.9);
    nf_batcher *b;
    assert_ok(nf_batcher_new(train, 64, 1, 17, &b, &err), &err);
    nf_binding bind = {.x = m.x, .y = m.y, .scores = m.logits};
    nf_epoch_stats fit, eval;
    for (int e = 0; e < epochs; e++) {
        assert_ok(nf_train_epoch(plan, opt, b, &bind, &fit, &err), &err);
        assert_int_equal(fit.samples, 5000); /* the last partial batch of 8 is kept */
        assert_int_equal(fit.batches, 79);
    }
    assert_ok(nf_evaluate(eval_plan, test, &bind, &eval, &err), &err);
    assert_int_equal(eval.samples, 2000);
    if (params) {
        nf_tensor first;
        nf_graph_param(m.g, 0, NULL, &first, NULL);
        memcpy(params, first.data, (size_t)nf_graph_param_floats(m.g) * sizeof(float));
    }
    nf_batcher_free(b);
    nf_optimizer_free(opt);
    nf_plan_free(plan);
    nf_plan_free(eval_plan);
    nf_graph_free(m.g);
    return eval.accuracy;
}

static void test_fashion_subset(void **state)
{
    (void)state;
    nf_dataset *train, *test;
    load_subset(&train, &test);
    /* chance is 10%; a wrong gradient sign or a dead layer stays far
     * below 75%, while 5 epochs on 5,000 images reach about 80% */
    double acc = train_w1(train, test, 5, NULL);
    print_message("W1 on 5,000 images, 5 epochs: test accuracy %.4f\n", acc);
    assert_true(acc > 0.75);
    nf_dataset_free(train);
    nf_dataset_free(test);
}

static void test_reproducible(void **state)
{
    (void)state;
    nf_dataset *train, *test;
    load_subset(&train, &test);
    size_t floats = 784 * 256 + 256 * 128 + 128 * 10 + 256 + 128 + 10 + 6 * 16;
    float *a = calloc(floats, sizeof(float)), *b = calloc(floats, sizeof(float));
    double acc_a = train_w1(train, test, 1, a);
    double acc_b = train_w1(train, test, 1, b);
    assert_true(acc_a == acc_b);
    assert_memory_equal(a, b, floats * sizeof(float));
    free(a);
    free(b);
    nf_dataset_free(train);
    nf_dataset_free(test);
}

/* Accumulating the gradients of 2 batches of 8 makes the same step as
 * one batch of 16 (mean losses, so each half is scaled by 1/2). */
static void test_gradient_accumulation(void **state)
{
    (void)state;
    nf_error err;
    nf_dataset *ds;
    assert_ok(nf_dataset_load_fashion_mnist(NULL, 0, &ds, &err), &err);
    nf_dataset_truncate(ds, 16);
    float *after[2];
    size_t n = 0;
    for (int run = 0; run < 2; run++) {
        int64_t batch = run == 0 ? 16 : 8;
        mlp m = build_w1(5);
        nf_plan *plan;
        assert_ok(nf_plan_compile(m.g, batch, NF_PLAN_TRAINING, &plan, &err), &err);
        nf_optimizer *opt = sgd(m.g, 0.1, 0.9);
        assert_ok(nf_optimizer_set(opt, "accumulate", run == 0 ? 1 : 2, &err), &err);
        nf_batcher *b;
        assert_ok(nf_batcher_new(ds, batch, 0, 1, &b, &err), &err);
        nf_binding bind = {.x = m.x, .y = m.y};
        assert_ok(nf_train_epoch(plan, opt, b, &bind, NULL, &err), &err);
        assert_int_equal(nf_optimizer_steps(opt), 1);
        nf_tensor first;
        nf_graph_param(m.g, 0, NULL, &first, NULL);
        n = (size_t)nf_graph_param_floats(m.g);
        after[run] = malloc(n * sizeof(float));
        memcpy(after[run], first.data, n * sizeof(float));
        nf_batcher_free(b);
        nf_optimizer_free(opt);
        nf_plan_free(plan);
        nf_graph_free(m.g);
    }
    assert_close("accumulated step", after[1], after[0], (int64_t)n, 1e-5);
    assert_memory_not_equal(after[0], after[1], n * sizeof(float)); /* different sums, same step */
    free(after[0]);
    free(after[1]);
    nf_dataset_free(ds);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_xor),
        cmocka_unit_test(test_nonfinite),
        cmocka_unit_test(test_fashion_subset),
        cmocka_unit_test(test_reproducible),
        cmocka_unit_test(test_gradient_accumulation),
    };
    return cmocka_run_group_tests_name("train", tests, NULL, NULL);
}
