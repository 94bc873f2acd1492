/* Every differentiable node type, checked by central differences
 * (nf_gradcheck), with the attribute variants that change the code path,
 * plus a fan-out graph and a shared-weight graph. Inputs ask for their
 * gradients too, so input gradients are checked as well. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "helpers.h"

#define TOL 2e-2

static nf_node *grad_input(nf_graph *g, const char *name, int rank, const int64_t *dims)
{
    nf_node *x = nf_input(g, name, rank, dims);
    nf_input_requires_grad(g, x);
    return x;
}

/* loss = mse(node, target) so that any node can be checked */
static void finish_with_mse(nf_graph *g, nf_node *y, int rank, const int64_t *dims)
{
    nf_node *t = nf_input(g, "target", rank, dims);
    nf_mse_loss(g, "loss", y, t);
}

typedef nf_node *(*unary_builder)(nf_graph *, const char *, nf_node *);

static void check_unary(unary_builder build)
{
    nf_graph *g = nf_graph_new();
    int64_t dims[] = {3, 4};
    nf_node *x = grad_input(g, "x", 2, dims);
    finish_with_mse(g, build(g, "y", x), 2, dims);
    assert_gradients(g, 3, TOL);
    nf_graph_free(g);
}

static void test_relu(void **state) { (void)state; check_unary(nf_relu); }
static void test_sigmoid(void **state) { (void)state; check_unary(nf_sigmoid); }
static void test_tanh(void **state) { (void)state; check_unary(nf_tanh); }
static void test_softmax(void **state) { (void)state; check_unary(nf_softmax); }
static void test_log_softmax(void **state) { (void)state; check_unary(nf_log_softmax); }
static void test_output(void **state) { (void)state; check_unary(nf_output); }

static nf_node *leaky(nf_graph *g, const char *name, nf_node *x) { return nf_leaky_relu(g, name, x, 0.2); }
static nf_node *scale(nf_graph *g, const char *name, nf_node *x) { return nf_scale(g, name, x, -1.5); }
static void test_leaky_relu(void **state) { (void)state; check_unary(leaky); }
static void test_scale(void **state) { (void)state; check_unary(scale); }

static void check_linear(int rank, int bias)
{
    nf_graph *g = nf_graph_new();
    int64_t dims[] = {2, 5}, out_dims[] = {2, 4};
    nf_node *x = grad_input(g, "x", rank, rank == 1 ? dims + 1 : dims);
    nf_node *y = nf_linear(g, "fc", x, 4);
    if (!bias)
        nf_node_set_attr(g, y, "bias", "false");
    finish_with_mse(g, y, rank, rank == 1 ? out_dims + 1 : out_dims);
    assert_gradients(g, 3, TOL);
    assert_int_equal(nf_graph_param_count(g), bias ? 2 : 1);
    nf_graph_free(g);
}

static void test_linear(void **state)
{
    (void)state;
    check_linear(1, 1);
    check_linear(1, 0);
    check_linear(2, 1); /* rows over the leading axis too */
}

static void test_matmul(void **state)
{
    (void)state;
    nf_graph *g = nf_graph_new();
    nf_node *a = grad_input(g, "a", 2, (int64_t[]){3, 4});
    nf_node *b = grad_input(g, "b", 2, (int64_t[]){4, 2});
    finish_with_mse(g, nf_matmul(g, "c", a, b), 2, (int64_t[]){3, 2});
    assert_gradients(g, 2, TOL);
    nf_graph_free(g);
}

typedef nf_node *(*binary_builder)(nf_graph *, const char *, nf_node *, nf_node *);

/* a is [2, 3, 4]; b is the same shape, [3, 4] or [4] (repeated) */
static void check_binary(binary_builder build)
{
    int64_t dims[] = {2, 3, 4};
    for (int b_rank = 3; b_rank >= 1; b_rank--) {
        nf_graph *g = nf_graph_new();
        nf_node *a = grad_input(g, "a", 3, dims);
        nf_node *b = grad_input(g, "b", b_rank, dims + 3 - b_rank);
        finish_with_mse(g, build(g, "c", a, b), 3, dims);
        assert_gradients(g, 2, TOL);
        nf_graph_free(g);
    }
}

static void test_add(void **state) { (void)state; check_binary(nf_add); }
static void test_sub(void **state) { (void)state; check_binary(nf_sub); }
static void test_mul(void **state) { (void)state; check_binary(nf_mul); }

static void test_mse(void **state)
{
    (void)state;
    for (int sum = 0; sum <= 1; sum++) {
        nf_graph *g = nf_graph_new();
        nf_node *p = grad_input(g, "p", 1, (int64_t[]){6});
        nf_node *t = grad_input(g, "t", 1, (int64_t[]){6});
        nf_node *loss = nf_mse_loss(g, "loss", p, t);
        if (sum)
            nf_node_set_attr(g, loss, "reduction", "sum");
        assert_gradients(g, 4, TOL);
        nf_graph_free(g);
    }
}

static void test_cross_entropy_indices(void **state)
{
    (void)state;
    /* logits [5] with a scalar label, and a sequence [3, 5] with labels [3] */
    for (int rank = 1; rank <= 2; rank++) {
        nf_graph *g = nf_graph_new();
        int64_t dims[] = {3, 5};
        nf_node *x = grad_input(g, "x", rank, rank == 1 ? dims + 1 : dims);
        nf_node *y = nf_input(g, "label", rank - 1, dims);
        nf_cross_entropy_loss(g, "loss", x, y);
        assert_gradients(g, 4, TOL);
        nf_graph_free(g);
    }
}

static void test_cross_entropy_probabilities(void **state)
{
    (void)state;
    nf_graph *g = nf_graph_new();
    nf_node *x = grad_input(g, "x", 1, (int64_t[]){5});
    nf_node *t = grad_input(g, "prob", 1, (int64_t[]){5});
    nf_cross_entropy_loss(g, "loss", x, t);
    assert_gradients(g, 4, TOL);
    nf_graph_free(g);
}

static void test_bce_with_logits(void **state)
{
    (void)state;
    nf_graph *g = nf_graph_new();
    nf_node *x = grad_input(g, "x", 1, (int64_t[]){5});
    nf_node *t = grad_input(g, "unit", 1, (int64_t[]){5});
    nf_bce_with_logits_loss(g, "loss", x, t);
    assert_gradients(g, 4, TOL);
    nf_graph_free(g);
}

/* h feeds three consumers; its gradient is the sum of theirs. */
static void test_fan_out(void **state)
{
    (void)state;
    nf_graph *g = nf_graph_new();
    nf_node *x = grad_input(g, "x", 1, (int64_t[]){6});
    nf_node *h = nf_linear(g, "fc", x, 5);
    nf_node *a = nf_sigmoid(g, "a", h);
    nf_node *b = nf_tanh(g, "b", h);
    nf_node *c = nf_mul(g, "c", nf_add(g, "s", a, b), h);
    finish_with_mse(g, c, 1, (int64_t[]){5});
    assert_gradients(g, 3, TOL);
    nf_graph_free(g);
}

/* div: a / b with b repeated over a's rows (b a sigmoid, away from 0),
 * and of one shape; gradients to both operands. */
static void test_div(void **state)
{
    (void)state;
    for (int repeated = 0; repeated <= 1; repeated++) {
        nf_graph *g = nf_graph_new();
        nf_node *a = grad_input(g, "a", 2, (int64_t[]){3, 4});
        /* ("unit": uniform in [0, 1), so that b is in [0.5, 0.74) and 1 / b gently curved) */
        nf_node *b = repeated ? grad_input(g, "unit_b", 1, (int64_t[]){4})
                              : grad_input(g, "unit_b", 2, (int64_t[]){3, 4});
        nf_node *in[2] = {a, nf_sigmoid(g, "sb", b)};
        nf_node *q = nf_graph_add(g, "div", "q", 2, in);
        finish_with_mse(g, q, 2, (int64_t[]){3, 4});
        assert_gradients(g, 2, TOL);
        nf_graph_free(g);
    }
}

/* Two linear nodes share one weight and bias: gradients add up. */
static void test_shared_weights(void **state)
{
    (void)state;
    nf_error err;
    nf_graph *g = nf_graph_new();
    nf_node *x1 = grad_input(g, "x1", 1, (int64_t[]){4});
    nf_node *x2 = grad_input(g, "x2", 1, (int64_t[]){4});
    nf_node *f1 = nf_linear(g, "enc", x1, 4);
    nf_node *f2 = nf_linear(g, "enc2", nf_tanh(g, "t", f1), 4);
    nf_node *f3 = nf_linear(g, "enc3", x2, 4);
    assert_int_equal(nf_node_share_params(g, f2, f1), NF_OK);
    assert_int_equal(nf_node_share_params(g, f3, f1), NF_OK);
    finish_with_mse(g, nf_add(g, "sum", f2, f3), 1, (int64_t[]){4});
    assert_ok(nf_graph_validate(g, &err), &err);
    assert_int_equal(nf_graph_param_count(g), 2); /* enc.weight, enc.bias only */
    assert_gradients(g, 3, TOL);
    nf_graph_free(g);
}

/* A node of `op` on an input of `rank` dims, with text attributes, ending in
 * an mse loss against a target of its output shape; gradient-checked. */
static void check_op(const char *op, int rank, const int64_t *dims, const char *const *attrs, int64_t batch)
{
    nf_error err;
    nf_graph *g = nf_graph_new();
    nf_graph_set_seed(g, 5);
    nf_node *x = grad_input(g, "x", rank, dims);
    nf_node *y = nf_graph_add(g, op, "y", 1, &x);
    for (int i = 0; attrs && attrs[i]; i += 2)
        nf_node_set_attr(g, y, attrs[i], attrs[i + 1]);
    if (nf_graph_validate(g, &err) != NF_OK)
        fail_msg("%s: %s", op, err.message);
    nf_shape out;
    nf_node_shape(y, &out, NULL);
    finish_with_mse(g, y, out.rank, out.dim);
    assert_gradients(g, batch, TOL);
    nf_graph_free(g);
}

#define ATTRS(...) ((const char *const[]){__VA_ARGS__, NULL})

/* One node of `op` (text attributes) on input x of `dims` per sample, run
 * forward in inference on `batch` samples of x; `n` output values to out. */
static void run_node(const char *op, const char *const *attrs, int rank, const int64_t *dims, int64_t batch,
                     const float *x, float *out, int64_t n)
{
    nf_error err;
    nf_graph *g = nf_graph_new();
    nf_node *in = nf_input(g, "x", rank, dims);
    nf_node *y = nf_graph_add(g, op, "y", 1, &in);
    for (int i = 0; attrs && attrs[i]; i += 2)
        assert_int_equal(nf_node_set_attr(g, y, attrs[i], attrs[i + 1]), NF_OK);
    nf_node *result = nf_output(g, "out", y);
    nf_plan *plan;
    assert_ok(nf_plan_compile(g, batch, 0, &plan, &err), &err);
    nf_tensor vx, vy;
    nf_plan_input(plan, in, &vx, NULL);
    memcpy(vx.data, x, (size_t)nf_shape_size(&vx.shape) * sizeof(float));
    assert_ok(nf_plan_forward(plan, &err), &err);
    nf_plan_value(plan, result, &vy, NULL);
    assert_int_equal(nf_shape_size(&vy.shape), n);
    memcpy(out, vy.data, (size_t)n * sizeof(float));
    nf_plan_free(plan);
    nf_graph_free(g);
}

/* A model text that must be refused with `fragment` in the message. */
static void expect_refused(const char *text, const char *fragment)
{
    nf_graph *g;
    nf_error err;
    assert_int_not_equal(nf_model_parse(text, strlen(text), "bad.nfg", &g, NULL, &err), NF_OK);
    if (!strstr(err.message, fragment))
        fail_msg("'%s' does not say '%s'", err.message, fragment);
}

static void test_conv2d(void **state)
{
    (void)state;
    int64_t dims[] = {4, 7, 6};
    check_op("conv2d", 3, dims, ATTRS("out", "3", "kernel", "3"), 2);
    check_op("conv2d", 3, dims, ATTRS("out", "2", "kernel", "3x2", "stride", "2", "padding", "1"), 2);
    check_op("conv2d", 3, dims, ATTRS("out", "4", "kernel", "3", "dilation", "2", "pad_top", "2", "pad_right", "1"), 2);
    check_op("conv2d", 3, dims, ATTRS("out", "4", "kernel", "3", "groups", "2", "same", "true"), 2);
    check_op("conv2d", 3, dims, ATTRS("out", "4", "kernel", "3", "groups", "4", "bias", "false"), 2); /* depthwise */
    check_op("conv2d", 3, dims, ATTRS("out", "5", "kernel", "1"), 3);                      /* 1x1: no im2col */
    check_op("conv2d", 3, dims, ATTRS("out", "3", "kernel", "2", "stride", "3"), 1);      /* batch below threads */
}

static void test_conv1d(void **state)
{
    (void)state;
    int64_t dims[] = {3, 9};
    check_op("conv1d", 2, dims, ATTRS("out", "4", "kernel", "3"), 2);
    check_op("conv1d", 2, dims, ATTRS("out", "3", "kernel", "4", "stride", "2", "pad_left", "2", "dilation", "2",
                                      "groups", "3"), 2);
}

/* An lstm with peepholes, its peephole weights drawn from U(-1, 1) (they
 * start at zero, where their own gradient is checked but not the paths
 * through them), gradient-checked. */
static void check_lstm_peepholes(const char *attrs)
{
    char text[256];
    snprintf(text, sizeof text, "nodeflow 1\nx = input shape=4x3 grad=true\nt = input shape=4x%d\n"
             "y = lstm x peephole=true %s\nloss = mse y t\n", strstr(attrs, "bidirectional") ? 4 : 3, attrs);
    nf_graph *g;
    nf_error err;
    assert_ok(nf_model_parse(text, strlen(text), "peep.nfg", &g, NULL, &err), &err);
    assert_ok(nf_graph_validate(g, &err), &err);
    uint64_t seed = 3;
    int peepholes = 0;
    for (int k = 0; k < nf_graph_param_count(g); k++) {
        const char *name;
        nf_tensor value;
        assert_int_equal(nf_graph_param(g, k, &name, &value, NULL), NF_OK);
        if (!strstr(name, "peephole"))
            continue;
        peepholes++;
        fill_uniform(value.data, nf_shape_size(&value.shape), -1, 1, &seed);
    }
    assert_true(peepholes == (strstr(attrs, "bidirectional") ? 4 : 1));
    assert_gradients(g, 2, TOL);
    nf_graph_free(g);
}

/* lstm and gru through time: several steps, with and without biases,
 * input gradients included */
static void test_recurrent(void **state)
{
    (void)state;
    int64_t dims[] = {4, 3};
    check_op("lstm", 2, dims, ATTRS("hidden", "5"), 2);
    check_op("lstm", 2, dims, ATTRS("hidden", "2", "bias", "false"), 3);
    check_op("gru", 2, dims, ATTRS("hidden", "5"), 2);
    check_op("gru", 2, dims, ATTRS("hidden", "3", "bias", "false"), 3);
    check_op("gru", 2, dims, ATTRS("hidden", "5", "linear_before_reset", "false"), 2);
    check_op("gru", 2, dims, ATTRS("hidden", "3", "bias", "false", "linear_before_reset", "false"), 3);
    int64_t one_step[] = {1, 2};
    check_op("lstm", 2, one_step, ATTRS("hidden", "3"), 2);
    check_lstm_peepholes("hidden=3");
    check_lstm_peepholes("hidden=2 bias=false bidirectional=true num_layers=2");
    check_op("gru", 2, one_step, ATTRS("hidden", "3"), 2);
}

/* One-hot rows into lstm / gru take a lookup path: gradient-checked (with
 * few rows and with many), and its outputs equal those of the GEMM path,
 * forced by a 1e-30 that makes one row not one-hot. */
static void check_one_hot_recurrent(const char *kind, int64_t steps, int64_t classes)
{
    nf_error err;
    nf_graph *g = nf_graph_new();
    nf_graph_set_seed(g, 9);
    nf_node *ids = nf_input(g, "label_ids", 1, (int64_t[]){steps});
    nf_node *hot = nf_graph_add(g, "one_hot", "hot", 1, &ids);
    nf_node_set_attr_number(g, hot, "classes", (double)classes);
    nf_node *rec = nf_graph_add(g, kind, "rec", 1, &hot);
    nf_node_set_attr(g, rec, "hidden", "3");
    finish_with_mse(g, rec, 2, (int64_t[]){steps, 3});
    assert_ok(nf_graph_validate(g, &err), &err);
    assert_gradients(g, 2, TOL);

    nf_node *dense = nf_input(g, "dense", 2, (int64_t[]){steps, classes});
    nf_node *rec2 = nf_graph_add(g, kind, "rec2", 1, &dense);
    nf_node_set_attr(g, rec2, "hidden", "3");
    assert_int_equal(nf_node_share_params(g, rec2, rec), NF_OK);
    nf_node *out1 = nf_output(g, "out1", rec), *out2 = nf_output(g, "out2", rec2);
    assert_ok(nf_graph_validate(g, &err), &err);
    nf_plan *plan;
    assert_ok(nf_plan_compile(g, 2, 0, &plan, &err), &err);
    float id_values[64], dense_values[64 * 8] = {0};
    for (int64_t i = 0; i < 2 * steps; i++) {
        id_values[i] = (float)((i * 5 + 1) % classes);
        dense_values[i * classes + (int64_t)id_values[i]] = 1.0f;
    }
    dense_values[1] = dense_values[1] == 0.0f ? 1e-30f : dense_values[1] + 1e-30f;
    assert_ok(nf_plan_set_input(plan, ids, id_values, &err), &err);
    assert_ok(nf_plan_set_input(plan, dense, dense_values, &err), &err);
    assert_ok(nf_plan_forward(plan, &err), &err);
    nf_tensor a, b;
    assert_ok(nf_plan_value(plan, out1, &a, &err), &err);
    assert_ok(nf_plan_value(plan, out2, &b, &err), &err);
    assert_close(kind, a.data, b.data, nf_shape_size(&a.shape), 1e-6);
    nf_plan_free(plan);
    nf_graph_free(g);
}

static void test_recurrent_one_hot(void **state)
{
    (void)state;
    check_one_hot_recurrent("lstm", 3, 8);  /* 6 rows < 8 columns: lookups in place */
    check_one_hot_recurrent("lstm", 20, 4); /* 40 rows: through the transposed copy */
    check_one_hot_recurrent("gru", 3, 8);
    check_one_hot_recurrent("gru", 20, 4);
}

/* ids -> vectors: gradient of the table (ids get none), and the values */
static void test_embedding(void **state)
{
    (void)state;
    nf_error err;
    nf_graph *g = nf_graph_new();
    nf_graph_set_seed(g, 3);
    nf_node *ids = nf_input(g, "label_ids", 1, (int64_t[]){5});
    nf_node *emb = nf_graph_add(g, "embedding", "emb", 1, &ids);
    nf_node_set_attr(g, emb, "num", "4");
    nf_node_set_attr(g, emb, "dim", "3");
    finish_with_mse(g, emb, 2, (int64_t[]){5, 3});
    assert_ok(nf_graph_validate(g, &err), &err);
    assert_gradients(g, 2, TOL);

    nf_node *hot = nf_graph_add(g, "one_hot", "hot", 1, &ids);
    nf_node_set_attr(g, hot, "classes", "4");
    nf_output(g, "hot_out", hot);
    nf_node *emb_out = nf_output(g, "emb_out", emb);
    assert_ok(nf_graph_validate(g, &err), &err);
    nf_plan *plan;
    assert_ok(nf_plan_compile(g, 1, 0, &plan, &err), &err);
    const float id_values[5] = {2, 0, 3, 7, 1.5f}; /* 7 and 1.5 are not ids: zeros */
    assert_ok(nf_plan_set_input(plan, ids, id_values, &err), &err);
    assert_ok(nf_plan_forward(plan, &err), &err);
    nf_tensor v, t;
    assert_ok(nf_plan_value(plan, nf_graph_find(g, "hot_out"), &v, &err), &err);
    assert_ok(nf_plan_value(plan, emb_out, &t, &err), &err);
    nf_tensor w;
    assert_int_equal(nf_graph_param(g, nf_graph_find_param(g, "emb.weight"), NULL, &w, NULL), NF_OK);
    const float *table = w.data;
    for (int i = 0; i < 5; i++)
        for (int j = 0; j < 4; j++) {
            int hot_expected = (i < 3 && j == (int)id_values[i]);
            assert_true(v.data[i * 4 + j] == (float)hot_expected);
            if (j < 3)
                assert_true(t.data[i * 3 + j] == (i < 3 ? table[(int)id_values[i] * 3 + j] : 0.0f));
        }
    nf_plan_free(plan);
    nf_graph_free(g);
}

static void test_more_activations(void **state)
{
    (void)state;
    int64_t dims[] = {3, 5};
    check_op("elu", 2, dims, ATTRS("alpha", "0.7"), 2);
    check_op("gelu", 2, dims, NULL, 2);
    check_op("gelu", 2, dims, ATTRS("approximate", "tanh"), 2);
    check_op("silu", 2, dims, NULL, 2);
    check_op("softplus", 2, dims, ATTRS("beta", "2", "threshold", "1"), 2);
    check_op("hardtanh", 2, dims, ATTRS("min_val", "-0.5", "max_val", "0.8"), 2);
    check_op("relu6", 2, dims, NULL, 2);
    check_op("erf", 2, dims, NULL, 2);
    check_op("abs", 2, dims, NULL, 2);
    /* exp of x in [0, 1) (larger outputs drown the central differences in
     * float rounding); sqrt and log of that exp (positive inputs) */
    for (int k = 0; k < 3; k++) {
        nf_graph *g = nf_graph_new();
        nf_node *x = grad_input(g, "unit_x", 2, dims), *y = nf_graph_add(g, "exp", "e", 1, &x);
        if (k)
            y = nf_graph_add(g, k == 1 ? "log" : "sqrt", "y", 1, &y);
        finish_with_mse(g, y, 2, dims);
        assert_gradients(g, 2, TOL);
        nf_graph_free(g);
    }
}

static void test_shape_ops(void **state)
{
    (void)state;
    int64_t d3[] = {2, 3, 4};
    check_op("copy", 3, d3, NULL, 2);
    check_op("flatten", 3, d3, NULL, 2);
    check_op("flatten", 3, d3, ATTRS("start", "1"), 2);
    check_op("reshape", 3, d3, ATTRS("shape", "4x6"), 2);
    check_op("slice", 3, d3, ATTRS("axis", "1", "start", "1", "end", "3"), 2);
    check_op("slice", 3, d3, ATTRS("axis", "-1", "start", "2"), 2);
    check_op("transpose", 3, d3, ATTRS("dim0", "0", "dim1", "2"), 2);
    check_op("permute", 3, d3, ATTRS("order", "2,0,1"), 2);
    /* concat of two inputs along the middle axis */
    nf_graph *g = nf_graph_new();
    nf_node *in[2] = {grad_input(g, "a", 3, d3), grad_input(g, "b", 3, (int64_t[]){2, 5, 4})};
    nf_node *c = nf_graph_add(g, "concat", "c", 2, in);
    nf_node_set_attr(g, c, "axis", "1");
    finish_with_mse(g, c, 3, (int64_t[]){2, 8, 4});
    assert_gradients(g, 2, TOL);
    nf_graph_free(g);
}

/* Where each value goes: permute, transpose, concat and slice by index. */
static void test_shape_values(void **state)
{
    (void)state;
    nf_error err;
    nf_graph *g = nf_graph_new();
    nf_node *x = nf_input(g, "x", 3, (int64_t[]){2, 3, 4});
    nf_node *p = nf_graph_add(g, "permute", "p", 1, &x);
    nf_node_set_attr(g, p, "order", "2,0,1");
    nf_node *t = nf_graph_add(g, "transpose", "t", 1, &x);
    nf_node_set_attr(g, t, "dim0", "-1");
    nf_node_set_attr(g, t, "dim1", "1");
    nf_node *pair[2] = {x, x};
    nf_node *c = nf_graph_add(g, "concat", "c", 2, pair);
    nf_node_set_attr(g, c, "axis", "2");
    nf_node *s = nf_graph_add(g, "slice", "s", 1, &c);
    nf_node_set_attr(g, s, "axis", "2");
    nf_node_set_attr(g, s, "start", "3");
    nf_node_set_attr(g, s, "end", "6");
    nf_plan *plan;
    assert_ok(nf_plan_compile(g, 2, NF_PLAN_INFERENCE | NF_PLAN_KEEP_VALUES, &plan, &err), &err);
    nf_tensor vx, vp, vt, vs;
    nf_plan_input(plan, x, &vx, NULL);
    for (int i = 0; i < 48; i++)
        vx.data[i] = (float)i;
    assert_ok(nf_plan_forward(plan, &err), &err);
    nf_plan_value(plan, p, &vp, NULL);
    nf_plan_value(plan, t, &vt, NULL);
    nf_plan_value(plan, s, &vs, NULL);
    for (int n = 0; n < 2; n++)
        for (int i = 0; i < 2; i++)
            for (int j = 0; j < 3; j++)
                for (int k = 0; k < 4; k++) {
                    float v = (float)(n * 24 + i * 12 + j * 4 + k);
                    assert_true(vp.data[n * 24 + k * 6 + i * 3 + j] == v); /* p[k][i][j] = x[i][j][k] */
                    assert_true(vt.data[n * 24 + i * 12 + k * 3 + j] == v); /* t[i][k][j] = x[i][j][k] */
                    /* s = concat(x, x)[..., 3:6] = (x[..., 3], x[..., 0], x[..., 1]) */
                    if (k == 3)
                        assert_true(vs.data[n * 18 + i * 9 + j * 3] == v);
                    if (k < 2)
                        assert_true(vs.data[n * 18 + i * 9 + j * 3 + k + 1] == v);
                }
    nf_plan_free(plan);
    nf_graph_free(g);
}

static void test_norms_and_dropout(void **state)
{
    (void)state;
    int64_t d1[] = {5}, d3[] = {3, 4, 5};
    check_op("batchnorm", 1, d1, NULL, 6);
    check_op("batchnorm", 3, d3, NULL, 3);
    check_op("batchnorm", 3, d3, ATTRS("affine", "false", "momentum", "0.3"), 3);
    check_op("layernorm", 3, d3, NULL, 2);
    check_op("layernorm", 3, d3, ATTRS("axes", "2"), 2);
    check_op("layernorm", 3, d3, ATTRS("axes", "3", "affine", "false"), 2);
    check_op("layernorm", 3, d3, ATTRS("axes", "2", "affine", "false", "output", "mean"), 2);
    check_op("layernorm", 3, d3, ATTRS("axes", "1", "affine", "false", "output", "inv_std_dev", "eps", "0.1"), 2);
    check_op("dropout", 3, d3, ATTRS("p", "0.3"), 2);
}

/* A model text ending in a node 'y', its gradients checked through an
 * mse loss on y. */
static void check_model_text(const char *text, int64_t batch)
{
    nf_error err;
    nf_graph *g;
    if (nf_model_parse(text, strlen(text), "model", &g, NULL, &err) != NF_OK)
        fail_msg("%s", err.message);
    nf_graph_set_seed(g, 5);
    nf_node *y = nf_graph_find(g, "y");
    if (nf_graph_validate(g, &err) != NF_OK)
        fail_msg("%s", err.message);
    nf_shape out;
    nf_node_shape(y, &out, NULL);
    finish_with_mse(g, y, out.rank, out.dim);
    assert_gradients(g, batch, TOL);
    nf_graph_free(g);
}

/* Batched and transposed matmul, softmax over an axis and with masks,
 * fused attention (with dropout on its weights) and a learned constant. */
static void test_attention_blocks(void **state)
{
    (void)state;
    int64_t d3[] = {2, 3, 4};
    check_op("softmax", 3, d3, ATTRS("axis", "0"), 2);
    check_op("log_softmax", 3, d3, ATTRS("axis", "-2"), 2);
    check_op("softmax", 3, d3, ATTRS("causal", "true"), 2);
    check_op("log_softmax", 3, (int64_t[]){2, 4, 3}, ATTRS("causal", "true"), 2);
    static const char *const models[] = {
        "a = input shape=2x3x4 grad=true\nb = input shape=1x4x5 grad=true\ny = matmul a b\n",
        "a = input shape=3x4 grad=true\nb = input shape=2x5x4 grad=true\ny = matmul a b transpose_b=true\n",
        "a = input shape=2x4x3 grad=true\nb = input shape=4x2 grad=true\ny = matmul a b transpose_a=true\n",
        "a = input shape=4 grad=true\nb = input shape=2x4x3 grad=true\ny = matmul a b\n",
        "x = input shape=3x4 grad=true\nm = input shape=4\ny = softmax x m\n",
        "x = input shape=5x8 grad=true\ny = attention x heads=2\n",
        "x = input shape=5x8 grad=true\ny = attention x heads=4 causal=true bias=false\n",
        "x = input shape=3x6 grad=true\nm = input shape=4x6 grad=true\ny = attention x m heads=3\n",
        "q = input shape=3x4 grad=true\nk = input shape=5x4 grad=true\nv = input shape=5x4 grad=true\n"
        "y = attention q k v heads=2 dropout=0.3\n",
        "x = input shape=3x4 grad=true\nc = constant shape=3x4 init=normal value=0.5 trainable=true\n"
        "y = mul x c\n",
    };
    char text[512];
    for (int i = 0; i < (int)(sizeof models / sizeof models[0]); i++) {
        snprintf(text, sizeof text, "nodeflow 1\n%s", models[i]);
        check_model_text(text, 2);
    }
    /* dropout between layers acts in training only: two training runs
     * differ, two inference runs do not */
    nf_error err;
    const char *text2 = "nodeflow 1\nx = input shape=6x3\ny = lstm x hidden=8 num_layers=2 dropout=0.5\n"
                        "o = output y\n";
    nf_graph *g;
    assert_ok(nf_model_parse(text2, strlen(text2), "drop", &g, NULL, &err), &err);
    nf_plan *plan;
    assert_ok(nf_plan_compile(g, 2, NF_PLAN_TRAINING, &plan, &err), &err);
    fill_inputs(plan, g, 0, 3);
    float runs[4][96];
    nf_tensor out;
    for (int r = 0; r < 4; r++) {
        nf_plan_set_training(plan, r < 2);
        assert_ok(nf_plan_forward(plan, &err), &err);
        assert_ok(nf_plan_value(plan, nf_graph_find(g, "o"), &out, &err), &err);
        assert_int_equal(nf_shape_size(&out.shape), 96);
        memcpy(runs[r], out.data, sizeof runs[r]);
    }
    assert_true(memcmp(runs[0], runs[1], sizeof runs[0]) != 0);
    assert_memory_equal(runs[2], runs[3], sizeof runs[2]);
    nf_plan_free(plan);
    nf_graph_free(g);
}

/* The typed constructors of attention and constant build what the model
 * format builds: self-, cross- and three-input attention, a constant's
 * buffer; a value without a key is refused. */
static void test_attention_constructors(void **state)
{
    (void)state;
    nf_error err;
    nf_graph *g = nf_graph_new();
    nf_node *q = grad_input(g, "q", 2, (int64_t[]){3, 8});
    nf_node *kv = grad_input(g, "kv", 2, (int64_t[]){5, 8});
    nf_node *pos = nf_constant(g, "pos", 2, (int64_t[]){3, 8});
    assert_ok(nf_node_set_attr(g, pos, "init", "sinusoidal"), &err);
    nf_node *h = nf_add(g, "h", q, pos);
    nf_node *self = nf_attention(g, "self", h, NULL, NULL, 2);
    nf_node *cross = nf_attention(g, "cross", self, kv, NULL, 4);
    nf_node *three = nf_attention(g, "three", cross, kv, kv, 1);
    assert_non_null(self);
    assert_non_null(cross);
    assert_non_null(three);
    assert_ok(nf_node_set_attr(g, self, "causal", "true"), &err);
    assert_int_equal(nf_node_input_count(cross), 2);
    assert_int_equal(nf_node_input_count(three), 3);
    finish_with_mse(g, three, 2, (int64_t[]){3, 8});
    assert_ok(nf_graph_validate(g, &err), &err);
    assert_true(nf_graph_find_param(g, "self.in_proj_weight") >= 0);
    assert_true(nf_graph_find_param(g, "three.out_proj.bias") >= 0);
    assert_true(nf_graph_find_param(g, "pos.value") >= 0);
    assert_gradients(g, 2, TOL);
    assert_null(nf_attention(g, "bad", q, NULL, kv, 2));
    nf_graph_free(g);
}

/* softmax with a mask input: each sample's own mask, repeated over the
 * leading axes (x [2, 3] per sample, mask [3]), -inf removing a position;
 * also over axis 0, where the mask runs across the lines. */
static void test_softmax_mask_values(void **state)
{
    (void)state;
    nf_error err;
    for (int axis = 0; axis < 2; axis++) {
        char text[256];
        snprintf(text, sizeof text, "nodeflow 1\nx = input shape=2x3\nm = input shape=3\ny = softmax x m axis=%d\n"
                 "o = output y\n", axis ? -1 : 0);
        nf_graph *g;
        assert_ok(nf_model_parse(text, strlen(text), "mask", &g, NULL, &err), &err);
        nf_plan *plan;
        assert_ok(nf_plan_compile(g, 2, NF_PLAN_INFERENCE, &plan, &err), &err);
        const float x[12] = {0.5f, -1, 2, 1, 0, -0.5f, /* sample 1 */ 3, 1, -2, 0.25f, 0.75f, 1.5f};
        const float m[6] = {0, -INFINITY, 1, /* sample 1 */ -2, 0, -INFINITY};
        assert_ok(nf_plan_set_input(plan, nf_graph_find(g, "x"), x, &err), &err);
        assert_ok(nf_plan_set_input(plan, nf_graph_find(g, "m"), m, &err), &err);
        assert_ok(nf_plan_forward(plan, &err), &err);
        nf_tensor y;
        assert_ok(nf_plan_value(plan, nf_graph_find(g, "o"), &y, &err), &err);
        float want[12];
        for (int s = 0; s < 2; s++) { /* z = x + m, softmax along rows (axis 1) or columns (axis 0) */
            double z[2][3];
            for (int r = 0; r < 2; r++)
                for (int c = 0; c < 3; c++)
                    z[r][c] = x[s * 6 + r * 3 + c] + m[s * 3 + c];
            for (int line = 0; line < (axis ? 2 : 3); line++) {
                int n = axis ? 3 : 2;
                double sum = 0;
                for (int j = 0; j < n; j++)
                    sum += exp(axis ? z[line][j] : z[j][line]);
                for (int j = 0; j < n; j++) {
                    int at = axis ? line * 3 + j : j * 3 + line;
                    want[s * 6 + at] = (float)(exp(axis ? z[line][j] : z[j][line]) / sum);
                }
            }
        }
        for (int i = 0; i < 12; i++) /* a fully removed column (axis 0) is zeros */
            want[i] = isnan(want[i]) ? 0.0f : want[i];
        assert_close("masked softmax", y.data, want, 12, 1e-6);
        nf_plan_free(plan);
        nf_graph_free(g);
    }
}

/* Copies `count` floats of parameter `from` (from element `at`) into
 * parameter `to`. */
static void copy_param(nf_graph *g, const char *from, int64_t at, const char *to, int64_t count)
{
    nf_tensor src, dst;
    nf_graph_param(g, nf_graph_find_param(g, from), NULL, &src, NULL);
    nf_graph_param(g, nf_graph_find_param(g, to), NULL, &dst, NULL);
    assert_int_equal(nf_shape_size(&dst.shape), count);
    memcpy(dst.data, src.data + at, (size_t)count * sizeof(float));
}

static void expect_same_grads(nf_graph *g, const char *fused, int64_t at, const char *part, int64_t count)
{
    nf_tensor a, b;
    nf_graph_param(g, nf_graph_find_param(g, fused), NULL, NULL, &a);
    nf_graph_param(g, nf_graph_find_param(g, part), NULL, NULL, &b);
    assert_close(part, a.data + at, b.data, count, 1e-5);
}

/* The fused attention node and the same block written from primitives
 * (linear, reshape, transpose, batched matmul, scale, causal softmax),
 * with the same weights, agree to 1e-5 in values and in gradients. */
static void test_attention_matches_primitives(void **state)
{
    (void)state;
    nf_error err;
    const char *text =
        "nodeflow 1\nx = input shape=5x8 grad=true\nt = input shape=5x8\n"
        "fused = attention x heads=2 causal=true\nl1 = mse fused t\n"
        "q = linear x out=8\nk = linear x out=8\nv = linear x out=8\n"
        "qh = reshape q shape=5x2x4\nkh = reshape k shape=5x2x4\nvh = reshape v shape=5x2x4\n"
        "qt = transpose qh dim0=0 dim1=1\nkt = transpose kh dim0=0 dim1=1\nvt = transpose vh dim0=0 dim1=1\n"
        "s = matmul qt kt transpose_b=true\nss = scale s factor=0.5\np = softmax ss causal=true\n"
        "o = matmul p vt\not = transpose o dim0=0 dim1=1\nof = reshape ot shape=5x8\n"
        "prim = linear of out=8\nl2 = mse prim t\n";
    nf_graph *g;
    assert_ok(nf_model_parse(text, strlen(text), "attention", &g, NULL, &err), &err);
    nf_graph_set_seed(g, 3);
    nf_plan *plan;
    assert_ok(nf_plan_compile(g, 3, NF_PLAN_TRAINING, &plan, &err), &err);
    static const char *part[] = {"q", "k", "v"};
    char w[32], b[32];
    for (int i = 0; i < 3; i++) {
        snprintf(w, sizeof w, "%s.weight", part[i]);
        snprintf(b, sizeof b, "%s.bias", part[i]);
        copy_param(g, "fused.in_proj_weight", 64 * i, w, 64);
        copy_param(g, "fused.in_proj_bias", 8 * i, b, 8);
    }
    copy_param(g, "fused.out_proj.weight", 0, "prim.weight", 64);
    copy_param(g, "fused.out_proj.bias", 0, "prim.bias", 8);
    fill_inputs(plan, g, 0, 17);
    assert_ok(nf_plan_forward(plan, &err), &err);
    assert_ok(nf_plan_backward(plan, &err), &err);
    nf_tensor fused, prim;
    assert_ok(nf_plan_value(plan, nf_graph_find(g, "fused"), &fused, &err), &err);
    assert_ok(nf_plan_value(plan, nf_graph_find(g, "prim"), &prim, &err), &err);
    assert_close("attention output", fused.data, prim.data, nf_shape_size(&fused.shape), 1e-5);
    for (int i = 0; i < 3; i++) {
        snprintf(w, sizeof w, "%s.weight", part[i]);
        snprintf(b, sizeof b, "%s.bias", part[i]);
        expect_same_grads(g, "fused.in_proj_weight", 64 * i, w, 64);
        if (i != 1) /* the key bias shifts a row's scores alike: its gradient is 0 up to rounding */
            expect_same_grads(g, "fused.in_proj_bias", 8 * i, b, 8);
    }
    expect_same_grads(g, "fused.out_proj.weight", 0, "prim.weight", 64);
    expect_same_grads(g, "fused.out_proj.bias", 0, "prim.bias", 8);
    nf_plan_free(plan);
    nf_graph_free(g);
}

/* Per-axis convolution and pooling, padding modes, transposed
 * convolution, upsampling and adaptive pooling. */
static void test_conv_options(void **state)
{
    (void)state;
    int64_t d3[] = {2, 7, 6}, d2[] = {2, 9};
    check_op("conv2d", 3, d3, ATTRS("out", "2", "kernel", "3x2", "stride", "2x1", "padding", "1x2", "dilation", "1x2"), 2);
    check_op("conv2d", 3, d3, ATTRS("out", "2", "kernel", "3", "padding", "2", "padding_mode", "reflect"), 2);
    check_op("conv2d", 3, d3, ATTRS("out", "2", "kernel", "2x3", "padding", "1x2", "padding_mode", "replicate"), 2);
    check_op("conv2d", 3, d3, ATTRS("out", "2", "kernel", "3", "padding", "1", "padding_mode", "circular", "groups",
                                    "2"), 2);
    check_op("conv1d", 2, d2, ATTRS("out", "3", "kernel", "3", "padding", "2", "padding_mode", "circular"), 2);
    check_op("conv_transpose2d", 3, d3, ATTRS("out", "3", "kernel", "3x2", "stride", "2", "padding", "1x0",
                                              "output_padding", "1", "dilation", "1x2"), 2);
    check_op("conv_transpose2d", 3, d3, ATTRS("out", "4", "kernel", "2", "groups", "2", "bias", "false"), 2);
    check_op("maxpool", 3, d3, ATTRS("kernel", "3x2", "stride", "2x1", "padding", "1x0", "dilation", "2x1"), 2);
    check_op("maxpool1d", 2, d2, ATTRS("kernel", "2", "dilation", "3", "ceil_mode", "true"), 2);
    check_op("avgpool", 3, d3, ATTRS("kernel", "3x2", "stride", "1x2", "padding", "1", "include_pad", "true"), 2);
    /* padding over half the kernel (ONNX allows it; PyTorch does not) */
    check_op("maxpool", 3, d3, ATTRS("kernel", "3", "padding", "2"), 2);
    check_op("avgpool", 3, d3, ATTRS("kernel", "3", "padding", "2", "include_pad", "true"), 2);
    check_op("avgpool", 3, d3, ATTRS("kernel", "3", "stride", "2", "padding", "2"), 2);
    check_op("adaptive_avgpool", 3, d3, ATTRS("size", "3x4"), 2);
    check_op("adaptive_avgpool", 2, d2, ATTRS("size", "4"), 2);
    check_op("upsample", 3, d3, ATTRS("scale", "2x3"), 2);
    check_op("upsample", 3, d3, ATTRS("size", "11x9", "mode", "bilinear"), 2);
    check_op("upsample", 3, d3, ATTRS("scale", "2", "mode", "bilinear", "align_corners", "true"), 2);
}

/* Stacked and bidirectional recurrent layers with dropout between them,
 * initial states as inputs and final states as outputs, and rnn. */
static void test_recurrent_stacks(void **state)
{
    (void)state;
    static const char *const models[] = {
        "x = input shape=4x3 grad=true\ny = lstm x hidden=3 num_layers=2 bidirectional=true dropout=0.4\n",
        "x = input shape=4x3 grad=true\nh = input shape=2x3 grad=true\nc = input shape=2x3 grad=true\n"
        "y = lstm x h c hidden=3 bidirectional=true output=cell\n",
        "x = input shape=4x3 grad=true\nh = input shape=3x2 grad=true\n"
        "y = gru x h hidden=2 num_layers=3 output=state dropout=0.2\n",
        "x = input shape=4x3 grad=true\nh = input shape=4x2 grad=true\n"
        "y = gru x h hidden=2 num_layers=2 bidirectional=true linear_before_reset=false\n",
        "x = input shape=4x3 grad=true\ny = rnn x hidden=3 num_layers=2 bidirectional=true\n",
        "x = input shape=4x3 grad=true\nh = input shape=1x3 grad=true\ny = rnn x h hidden=3 nonlinearity=relu\n",
    };
    char text[512];
    for (int i = 0; i < (int)(sizeof models / sizeof models[0]); i++) {
        snprintf(text, sizeof text, "nodeflow 1\n%s", models[i]);
        check_model_text(text, 2);
    }
}

/* Dropout: about p of the elements zeroed and the rest scaled in
 * training, none in inference, the same masks from the same seed. */
static void test_dropout_values(void **state)
{
    (void)state;
    nf_error err;
    float first[4000];
    for (int run = 0; run < 2; run++) {
        nf_graph *g = nf_graph_new();
        nf_graph_set_seed(g, 8);
        nf_node *x = nf_input(g, "x", 1, (int64_t[]){1000});
        nf_node *d = nf_output(g, "d", nf_graph_add(g, "dropout", "drop", 1, &x));
        nf_node_set_attr(g, nf_graph_find(g, "drop"), "p", "0.25");
        nf_plan *plan;
        assert_ok(nf_plan_compile(g, 4, NF_PLAN_TRAINING, &plan, &err), &err);
        nf_tensor vx, vd;
        nf_plan_input(plan, x, &vx, NULL);
        for (int i = 0; i < 4000; i++)
            vx.data[i] = 1.0f;
        assert_ok(nf_plan_forward(plan, &err), &err);
        nf_plan_value(plan, d, &vd, NULL);
        int zeros = 0;
        for (int i = 0; i < 4000; i++) {
            assert_true(vd.data[i] == 0.0f || fabsf(vd.data[i] - 1.0f / 0.75f) < 1e-6f);
            zeros += vd.data[i] == 0.0f;
        }
        assert_true(zeros > 850 && zeros < 1150); /* 1000 expected */
        if (run == 0)
            memcpy(first, vd.data, sizeof first);
        else
            assert_memory_equal(first, vd.data, sizeof first);
        assert_ok(nf_plan_forward(plan, &err), &err); /* a new run draws new masks */
        assert_memory_not_equal(first, vd.data, sizeof first);
        nf_plan_set_training(plan, 0);
        assert_ok(nf_plan_forward(plan, &err), &err);
        for (int i = 0; i < 4000; i++)
            assert_true(vd.data[i] == 1.0f);
        nf_plan_free(plan);
        nf_graph_free(g);
    }
}

static void test_pooling(void **state)
{
    (void)state;
    int64_t d2[] = {2, 7, 6}, d1[] = {3, 9};
    check_op("maxpool", 3, d2, ATTRS("kernel", "2"), 2);
    check_op("maxpool", 3, d2, ATTRS("kernel", "3", "stride", "2", "padding", "1", "ceil_mode", "true"), 2);
    check_op("avgpool", 3, d2, ATTRS("kernel", "2"), 2);
    check_op("avgpool", 3, d2, ATTRS("kernel", "3x2", "stride", "2", "padding", "1", "ceil_mode", "true"), 2);
    check_op("avgpool", 3, d2, ATTRS("kernel", "3", "stride", "2", "padding", "1", "include_pad", "true"), 2);
    check_op("maxpool1d", 2, d1, ATTRS("kernel", "2"), 2);
    check_op("avgpool1d", 2, d1, ATTRS("kernel", "4", "stride", "3", "padding", "2", "ceil_mode", "true"), 2);
    check_op("global_avgpool", 3, d2, NULL, 2);
}

/* maxpool output=indices: where each maximum is in its sample (row- and
 * column-major), the same for every sample of a batch, no gradient. */
static void test_maxpool_indices(void **state)
{
    (void)state;
    /* 2 channels of 3x4 (rows of 4), twice (a batch of 2) */
    static const float x[48] = {1, 9, 2, 3, 4, 5, 8, 6, 7, 0, 1, 2, 2, 1, 0, 7, 6, 8, 5, 4, 3, 2, 9, 1,
                                1, 9, 2, 3, 4, 5, 8, 6, 7, 0, 1, 2, 2, 1, 0, 7, 6, 8, 5, 4, 3, 2, 9, 1};
    /* 2x2 windows, stride 2, over rows 0-1: the maxima 9 at (0,1), 8 at (1,2); 8 at (1,1), 7 at (0,3) */
    static const float row_major[2][4] = {{1, 6, 12 + 5, 12 + 3}, {1 * 3 + 0, 2 * 3 + 1, 12 + 1 * 3 + 1, 12 + 3 * 3}};
    static const char *const orders[] = {"false", "true"};
    float y[8];
    for (int column = 0; column < 2; column++) {
        run_node("maxpool", ATTRS("kernel", "2", "output", "indices", "column_major", orders[column]), 3,
                 (int64_t[]){2, 3, 4}, 2, x, y, 8);
        for (int i = 0; i < 8; i++)
            assert_true(y[i] == row_major[column][i % 4]);
    }
    expect_refused("nodeflow 1\nx = input shape=1x4x4\np = avgpool x kernel=2 output=indices\n",
                   "are for max pooling");
}

/* mod: Python's % (the divisor's sign) and C's fmod (the dividend's),
 * the wrap of uint8 arithmetic; its gradient is 1 where it is continuous
 * (checked with fmod=true on inputs inside one period). */
static void test_mod(void **state)
{
    (void)state;
    static const float x[6] = {-1, 255, 256, 300, -300, 5};
    static const struct {
        const char *divisor, *fmod;
        float want[6];
    } cases[] = {
        {"256", "false", {255, 255, 0, 44, 212, 5}},
        {"256", "true", {-1, 255, 0, 44, -44, 5}},
        {"-3", "false", {-1, 0, -2, 0, 0, -1}},
    };
    float y[6];
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        run_node("mod", ATTRS("divisor", cases[c].divisor, "fmod", cases[c].fmod), 1, (int64_t[]){6}, 1, x, y, 6);
        for (int i = 0; i < 6; i++)
            assert_true(y[i] == cases[c].want[i]);
    }
    int64_t dims[] = {3, 4};
    check_op("mod", 2, dims, ATTRS("divisor", "50", "fmod", "true"), 2);
    expect_refused("nodeflow 1\nx = input shape=4\nm = mod x divisor=0\n", "divisor must not be 0");
}

/* pad: numpy's pad modes on [1, 2, 3] (and, as a second axis, every
 * row), gradient-checked in each mode. */
static void test_pad(void **state)
{
    (void)state;
    static const struct {
        const char *mode;
        float want[7];
    } cases[] = {
        {"constant", {9, 9, 1, 2, 3, 9, 9}},
        {"reflect", {3, 2, 1, 2, 3, 2, 1}},
        {"edge", {1, 1, 1, 2, 3, 3, 3}},
    };
    static const float x[6] = {1, 2, 3, 11, 12, 13};
    float y[14];
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        run_node("pad", ATTRS("axis", "-1", "before", "2", "after", "2", "mode", cases[c].mode, "value", "9"), 2,
                 (int64_t[]){2, 3}, 1, x, y, 14);
        for (int row = 0; row < 2; row++)
            for (int i = 0; i < 7; i++) { /* (the second row is the first plus 10, but for the constant) */
                float want = cases[c].want[i] + (c == 0 && (i < 2 || i > 4) ? 0.0f : 10.0f * (float)row);
                assert_true(y[row * 7 + i] == want);
            }
    }
    int64_t dims[] = {3, 4};
    check_op("pad", 2, dims, ATTRS("axis", "0", "before", "1", "after", "2", "value", "0.5"), 2);
    check_op("pad", 2, dims, ATTRS("axis", "1", "before", "3", "after", "2", "mode", "reflect"), 2);
    check_op("pad", 2, dims, ATTRS("axis", "-2", "before", "4", "mode", "edge"), 2);
    expect_refused("nodeflow 1\nx = input shape=3\np = pad x before=3 mode=reflect\n",
                   "less than the axis' length 3");
}

/* reduce_max: maxima and minima gradient-checked; positions on ties (the
 * first, or the last), over two axes, and a NaN that wins. */
static void test_reduce_max(void **state)
{
    (void)state;
    int64_t dims[] = {3, 4};
    check_op("reduce_max", 2, dims, NULL, 2);
    check_op("reduce_max", 2, dims, ATTRS("axes", "2", "min", "true"), 2);
    static const float x[8] = {1, 5, 5, 2, NAN, -3, NAN, -1}; /* [2, 4] per sample */
    static const struct {
        const char *axes, *min, *last;
        float want[2];
    } cases[] = {
        {"1", "false", "false", {1, 0}}, {"1", "false", "true", {2, 2}}, {"1", "true", "true", {0, 2}},
        {"2", "true", "false", {4, 0}},  {"2", "false", "true", {6, 0}},
    };
    float y[2];
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        int64_t n = cases[c].axes[0] == '1' ? 2 : 1;
        run_node("reduce_max", ATTRS("axes", cases[c].axes, "min", cases[c].min, "last", cases[c].last, "output",
                                     "indices"), 2, (int64_t[]){2, 4}, 1, x, y, n);
        for (int64_t i = 0; i < n; i++)
            assert_true(y[i] == cases[c].want[i]);
    }
}

/* Tensors with no elements (ONNX's [0, 3, 4]): from an input through
 * reshape, flatten, copy and output, in inference and beside a trained
 * branch; any other node refuses them, as does every other shape. */
static void test_empty_tensors(void **state)
{
    (void)state;
    static const char text[] = "nodeflow 1\nx = input shape=0x3x4\nr = reshape x shape=3x4x0\nf = flatten r\n"
                               "c = copy f\ny = output c\nz = input shape=4\nt = input shape=2\n"
                               "l = linear z out=2\nloss = mse l t\n";
    nf_graph *g;
    nf_error err;
    assert_ok(nf_model_parse(text, sizeof text - 1, "empty.nfg", &g, NULL, &err), &err);
    assert_ok(nf_graph_validate(g, &err), &err);
    nf_shape s;
    nf_node_shape(nf_graph_find(g, "r"), &s, NULL);
    assert_true(s.rank == 3 && s.dim[2] == 0 && nf_shape_size(&s) == 0);
    for (int training = 0; training <= 1; training++) {
        nf_plan *plan;
        assert_ok(nf_plan_compile(g, 3, training ? NF_PLAN_TRAINING : 0, &plan, &err), &err);
        nf_tensor vx, vy;
        assert_ok(nf_plan_input(plan, nf_graph_find(g, "x"), &vx, &err), &err);
        assert_int_equal(nf_shape_size(&vx.shape), 0);
        fill_inputs(plan, g, 5, 3);
        assert_ok(nf_plan_forward(plan, &err), &err);
        if (training)
            assert_ok(nf_plan_backward(plan, &err), &err);
        assert_ok(nf_plan_value(plan, nf_graph_find(g, "y"), &vy, &err), &err);
        assert_int_equal(nf_shape_size(&vy.shape), 0);
        nf_plan_free(plan);
    }
    char *written;
    assert_ok(nf_model_format(g, NULL, &written, &err), &err);
    assert_non_null(strstr(written, "shape=0x3x4"));
    free(written);
    nf_graph_free(g);
    expect_refused("nodeflow 1\nx = input shape=0x3\ny = relu x\n", "has no elements; only reshape");
    expect_refused("nodeflow 1\nx = input shape=0x3\ny = linear x out=2\n", "has no elements");
    expect_refused("nodeflow 1\nx = input shape=2x3\ny = reshape x shape=0x6\n", "cannot reshape");
    expect_refused("nodeflow 1\nx = input shape=4\ny = constant shape=0x4\n", "must be positive sizes");
    expect_refused("nodeflow 1\nx = input shape=4x4x4\ny = conv2d x out=2 kernel=0\n", "must be positive sizes");
    /* the other sizes are bounded as a whole shape is (any part stays below 2^31) */
    expect_refused("nodeflow 1\nx = input shape=0x9223372036854775807\n", "more than 2^31 elements");
    expect_refused("nodeflow 1\nx = input shape=0x65536x65536\n", "more than 2^31 elements");
}

/* L1 and L2 penalties: their value by hand, and their gradients (with a
 * shared parameter counted once) by central differences. */
static void test_penalties(void **state)
{
    (void)state;
    nf_error err;
    for (int l2 = 0; l2 <= 1; l2++) {
        nf_graph *g = nf_graph_new();
        nf_node *x = grad_input(g, "x", 1, (int64_t[]){3});
        nf_node *a = nf_linear(g, "a", x, 3);
        nf_node *b = nf_linear(g, "b", a, 3);
        nf_node_share_params(g, b, a);
        finish_with_mse(g, b, 1, (int64_t[]){3});
        nf_node *in[2] = {a, b};
        nf_node *pen = nf_graph_add(g, l2 ? "l2_penalty" : "l1_penalty", "pen", 2, in);
        nf_node_set_attr(g, pen, "lambda", "0.3");
        assert_ok(nf_graph_validate(g, &err), &err);
        nf_plan *plan;
        assert_ok(nf_plan_compile(g, 2, NF_PLAN_TRAINING, &plan, &err), &err);
        fill_inputs(plan, g, 5, 3);
        assert_ok(nf_plan_forward(plan, &err), &err);
        nf_tensor w, v;
        nf_graph_param(g, nf_graph_find_param(g, "a.weight"), NULL, &w, NULL);
        double want = 0;
        for (int i = 0; i < 9; i++) /* a.weight once; the bias is 1-D */
            want += l2 ? (double)w.data[i] * w.data[i] : fabs(w.data[i]);
        assert_ok(nf_plan_value(plan, pen, &v, &err), &err);
        assert_true(fabs(v.data[0] - 0.3 * want) < 1e-5 * (1 + want));
        nf_plan_free(plan);
        assert_gradients(g, 2, TOL);
        nf_graph_free(g);
    }
    nf_graph *g = nf_graph_new();
    nf_node *x = nf_input(g, "x", 1, (int64_t[]){3});
    nf_node *r = nf_relu(g, "r", x);
    nf_node *pen = nf_graph_add(g, "l2_penalty", "pen", 1, &r);
    nf_node_set_attr(g, pen, "lambda", "0.1");
    assert_int_equal(nf_graph_validate(g, &err), NF_ERR_GRAPH);
    assert_non_null(strstr(err.message, "l2_penalty 'pen': input 'r' has no parameters to penalise"));
    nf_graph_free(g);
}

/* Forward values that are easy to state exactly. */
static void test_forward_values(void **state)
{
    (void)state;
    nf_error err;
    nf_graph *g = nf_graph_new();
    nf_node *x = nf_input(g, "x", 1, (int64_t[]){3});
    nf_node *r = nf_output(g, "r", nf_relu(g, NULL, x));
    nf_node *s = nf_output(g, "s", nf_softmax(g, NULL, x));
    nf_node *l = nf_output(g, "l", nf_leaky_relu(g, NULL, x, 0.5));
    nf_plan *plan;
    assert_ok(nf_plan_compile(g, 1, NF_PLAN_INFERENCE, &plan, &err), &err);
    assert_ok(nf_plan_set_input(plan, x, (float[]){-2.0f, 0.0f, 3.0f}, &err), &err);
    assert_ok(nf_plan_forward(plan, &err), &err);
    nf_tensor v;
    nf_plan_value(plan, r, &v, NULL);
    assert_close("relu", v.data, (float[]){0, 0, 3}, 3, 1e-7);
    nf_plan_value(plan, l, &v, NULL);
    assert_close("leaky_relu", v.data, (float[]){-1, 0, 3}, 3, 1e-7);
    nf_plan_value(plan, s, &v, NULL);
    double z = exp(-2.0) + 1.0 + exp(3.0);
    assert_close("softmax", v.data, (float[]){(float)(exp(-2.0) / z), (float)(1 / z), (float)(exp(3.0) / z)}, 3,
                 1e-6);
    nf_plan_free(plan);
    nf_graph_free(g);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_relu),
        cmocka_unit_test(test_leaky_relu),
        cmocka_unit_test(test_sigmoid),
        cmocka_unit_test(test_tanh),
        cmocka_unit_test(test_softmax),
        cmocka_unit_test(test_log_softmax),
        cmocka_unit_test(test_output),
        cmocka_unit_test(test_scale),
        cmocka_unit_test(test_linear),
        cmocka_unit_test(test_matmul),
        cmocka_unit_test(test_add),
        cmocka_unit_test(test_sub),
        cmocka_unit_test(test_mul),
        cmocka_unit_test(test_mse),
        cmocka_unit_test(test_cross_entropy_indices),
        cmocka_unit_test(test_cross_entropy_probabilities),
        cmocka_unit_test(test_bce_with_logits),
        cmocka_unit_test(test_fan_out),
        cmocka_unit_test(test_shared_weights),
        cmocka_unit_test(test_forward_values),
        cmocka_unit_test(test_penalties),
        cmocka_unit_test(test_conv2d),
        cmocka_unit_test(test_conv1d),
        cmocka_unit_test(test_recurrent),
        cmocka_unit_test(test_embedding),
        cmocka_unit_test(test_recurrent_one_hot),
        cmocka_unit_test(test_pooling),
        cmocka_unit_test(test_maxpool_indices),
        cmocka_unit_test(test_mod),
        cmocka_unit_test(test_div),
        cmocka_unit_test(test_pad),
        cmocka_unit_test(test_reduce_max),
        cmocka_unit_test(test_empty_tensors),
        cmocka_unit_test(test_more_activations),
        cmocka_unit_test(test_shape_ops),
        cmocka_unit_test(test_shape_values),
        cmocka_unit_test(test_norms_and_dropout),
        cmocka_unit_test(test_dropout_values),
        cmocka_unit_test(test_attention_blocks),
        cmocka_unit_test(test_softmax_mask_values),
        cmocka_unit_test(test_attention_constructors),
        cmocka_unit_test(test_attention_matches_primitives),
        cmocka_unit_test(test_conv_options),
        cmocka_unit_test(test_recurrent_stacks),
    };
    return cmocka_run_group_tests_name("nodes", tests, NULL, NULL);
}
