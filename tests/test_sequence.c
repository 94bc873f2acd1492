/* Plans unrolled in time: gradient checks through memory nodes (state
 * from zeros and from a learned vector), the LSTM of primitives against
 * the fused lstm node (outputs and every gradient), state carried across
 * windows, the loss of the last step, and an iteration over the graph's
 * own output with tied weights. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "helpers.h"

#define TOL 2e-2

static nf_graph *load(const char *file)
{
    char path[1024];
    nf_error err;
    nf_graph *g;
    snprintf(path, sizeof path, "%s/models/%s", NF_SOURCE_DIR, file);
    assert_ok(nf_model_load(path, &g, NULL, &err), &err);
    return g;
}

/* h_t = tanh(W x_t + U h_{t-1}), a loss at every step (or the last) */
static nf_graph *simple_rnn(const char *init, const char *carry)
{
    nf_error err;
    nf_graph *g = nf_graph_new();
    nf_graph_set_seed(g, 4);
    nf_node *x = nf_input(g, "x", 1, (int64_t[]){3});
    nf_node_set_attr(g, x, "sequence", "true");
    nf_input_requires_grad(g, x);
    nf_node *target = nf_input(g, "target", 1, (int64_t[]){2});
    nf_node_set_attr(g, target, "sequence", "true");
    nf_node *h = nf_memory(g, "h", 1, (int64_t[]){2});
    nf_node_set_attr(g, h, "init", init);
    nf_node_set_attr(g, h, "carry", carry);
    nf_node *shift = nf_input(g, "shift", 1, (int64_t[]){2}); /* the same at every step; its gradient sums them */
    nf_input_requires_grad(g, shift);
    nf_node *sum = nf_add(g, "sum", nf_add(g, "wx", nf_linear(g, "wxl", x, 2), shift), nf_linear(g, "uh", h, 2));
    nf_node *hnew = nf_tanh(g, "hnew", sum);
    assert_int_equal(nf_memory_connect(g, h, hnew), NF_OK);
    nf_mse_loss(g, "loss", nf_output(g, "y", hnew), target);
    assert_ok(nf_graph_validate(g, &err), &err);
    return g;
}

/* With `warm`, a first run leaves a carried state that the check starts
 * from (its runs all start from it: nf_gradcheck puts it back). */
/* h_t = tanh(W x_t) defined before the memory node d that reads it:
 * d_t = h_{t-1}; y_t = h_t + U d_t. The order of a memory node and its
 * source in the graph must not matter to backpropagation through time. */
static nf_graph *source_first(void)
{
    nf_error err;
    nf_graph *g = nf_graph_new();
    nf_graph_set_seed(g, 6);
    nf_node *x = nf_input(g, "x", 1, (int64_t[]){3});
    nf_node_set_attr(g, x, "sequence", "true");
    nf_node *target = nf_input(g, "target", 1, (int64_t[]){2});
    nf_node_set_attr(g, target, "sequence", "true");
    nf_node *h = nf_tanh(g, "h", nf_linear(g, "w", x, 2));
    nf_node *d = nf_memory(g, "d", 1, (int64_t[]){2});
    assert_int_equal(nf_memory_connect(g, d, h), NF_OK);
    nf_node_set_attr(g, d, "carry", "false");
    nf_node *y = nf_add(g, "y", h, nf_linear(g, "u", d, 2));
    nf_mse_loss(g, "loss", nf_output(g, "out", y), target);
    assert_ok(nf_graph_validate(g, &err), &err);
    return g;
}

static void gradcheck_steps(nf_graph *g, int64_t steps, int last_only, int warm)
{
    nf_error err;
    nf_plan *plan;
    assert_ok(nf_plan_compile(g, 2, NF_PLAN_TRAINING, &plan, &err), &err);
    assert_ok(nf_plan_set_steps(plan, steps, &err), &err);
    nf_plan_set_loss_last_step(plan, last_only);
    if (warm) {
        fill_inputs(plan, g, 5, 31);
        assert_ok(nf_plan_forward(plan, &err), &err);
    }
    fill_inputs(plan, g, 5, 17);
    nf_gradcheck_result r;
    assert_ok(nf_gradcheck(plan, NULL, &r, &err), &err);
    if (r.checked == 0 || !(r.max_rel_error < TOL))
        fail_msg("%lld steps: relative error %.3g at %s (%lld checked)", (long long)steps, r.max_rel_error, r.worst,
                 (long long)r.checked);
    nf_plan_free(plan);
}

static void test_gradients_through_time(void **state)
{
    (void)state;
    nf_graph *g = simple_rnn("zeros", "false");
    gradcheck_steps(g, 4, 0, 0);
    gradcheck_steps(g, 4, 1, 0);
    gradcheck_steps(g, 1, 0, 0);
    nf_graph_free(g);
    g = simple_rnn("zeros", "true"); /* from a state carried from the run before */
    gradcheck_steps(g, 4, 0, 1);
    nf_graph_free(g);
    g = simple_rnn("param", "false"); /* the learned initial state h.init gets its gradient */
    assert_true(nf_graph_find_param(g, "h.init") >= 0);
    gradcheck_steps(g, 5, 0, 0);
    nf_graph_free(g);
    g = load("lstm_primitives.nfg");
    gradcheck_steps(g, 4, 0, 0);
    nf_node_set_attr(g, nf_graph_find(g, "h"), "carry", "true");
    nf_node_set_attr(g, nf_graph_find(g, "c"), "carry", "true");
    gradcheck_steps(g, 3, 0, 1);
    nf_graph_free(g);
    g = load("lstm_fused.nfg"); /* the fused layer from a carried state */
    nf_node_set_attr(g, nf_graph_find(g, "lstm"), "carry", "true");
    gradcheck_steps(g, 1, 0, 1);
    nf_error err;
    nf_plan *plan;
    assert_ok(nf_plan_compile(g, 2, NF_PLAN_TRAINING, &plan, &err), &err);
    assert_int_equal(nf_plan_set_steps(plan, 3, &err), NF_ERR_GRAPH); /* it would carry per step: refused */
    assert_non_null(strstr(err.message, "lstm 'lstm' carries its state from run to run"));
    assert_int_equal(nf_plan_steps(plan), 1);
    nf_plan_free(plan);
    nf_graph_free(g);
    g = source_first();
    gradcheck_steps(g, 4, 0, 0);
    nf_graph_free(g);
}

/* Copies parameter `from` of graph a into `to` of graph b. */
static void copy_param(nf_graph *a, const char *from, nf_graph *b, const char *to)
{
    nf_tensor src, dst;
    assert_int_equal(nf_graph_param(a, nf_graph_find_param(a, from), NULL, &src, NULL), NF_OK);
    assert_int_equal(nf_graph_param(b, nf_graph_find_param(b, to), NULL, &dst, NULL), NF_OK);
    assert_int_equal(nf_shape_size(&src.shape), nf_shape_size(&dst.shape));
    memcpy(dst.data, src.data, (size_t)nf_shape_size(&src.shape) * sizeof(float));
}

static void expect_same_grad(nf_graph *a, const char *pa, nf_graph *b, const char *pb)
{
    nf_tensor ga, gb;
    nf_graph_param(a, nf_graph_find_param(a, pa), NULL, NULL, &ga);
    nf_graph_param(b, nf_graph_find_param(b, pb), NULL, NULL, &gb);
    assert_close(pa, ga.data, gb.data, nf_shape_size(&ga.shape), 1e-5);
}

/* The primitive LSTM unrolled over 5 steps and the fused node over a
 * window of 5 give the same outputs, loss and gradients. */
static void test_primitives_equal_fused(void **state)
{
    (void)state;
    nf_error err;
    nf_graph *prim = load("lstm_primitives.nfg"), *fused = load("lstm_fused.nfg");
    nf_graph_init_params(fused, 3, NULL);
    const char *pairs[][2] = {{"lstm.weight_ih_l0", "ih.weight"}, {"lstm.weight_hh_l0", "hh.weight"},
                              {"lstm.bias_ih_l0", "ih.bias"},     {"lstm.bias_hh_l0", "hh.bias"}};
    for (int i = 0; i < 4; i++)
        copy_param(fused, pairs[i][0], prim, pairs[i][1]);
    nf_plan *pp, *fp;
    assert_ok(nf_plan_compile(prim, 3, NF_PLAN_TRAINING, &pp, &err), &err);
    assert_ok(nf_plan_set_steps(pp, 5, &err), &err);
    assert_ok(nf_plan_compile(fused, 3, NF_PLAN_TRAINING, &fp, &err), &err);
    fill_inputs(fp, fused, 5, 23);
    /* the same numbers: [batch, 5, 3] and [batch, 5, 4] either way */
    const char *inputs[] = {"x", "target"};
    for (int i = 0; i < 2; i++) {
        nf_tensor from, to;
        assert_ok(nf_plan_input(fp, nf_graph_find(fused, inputs[i]), &from, &err), &err);
        assert_ok(nf_plan_input(pp, nf_graph_find(prim, inputs[i]), &to, &err), &err);
        assert_int_equal(nf_shape_size(&from.shape), nf_shape_size(&to.shape));
        assert_int_equal(to.shape.rank, 3);
        memcpy(to.data, from.data, (size_t)nf_shape_size(&from.shape) * sizeof(float));
    }
    assert_ok(nf_plan_forward(pp, &err), &err);
    assert_ok(nf_plan_backward(pp, &err), &err);
    assert_ok(nf_plan_forward(fp, &err), &err);
    assert_ok(nf_plan_backward(fp, &err), &err);
    nf_tensor yp, yf;
    assert_ok(nf_plan_value(pp, nf_graph_find(prim, "y"), &yp, &err), &err);
    assert_ok(nf_plan_value(fp, nf_graph_find(fused, "y"), &yf, &err), &err);
    assert_int_equal(nf_shape_size(&yp.shape), 3 * 5 * 4);
    assert_close("y", yp.data, yf.data, 3 * 5 * 4, 1e-5);
    float lp = (float)nf_plan_loss(pp), lf = (float)nf_plan_loss(fp);
    assert_close("loss", &lp, &lf, 1, 1e-5);
    for (int i = 0; i < 4; i++)
        expect_same_grad(fused, pairs[i][0], prim, pairs[i][1]);
    nf_plan_free(pp);
    nf_plan_free(fp);
    nf_graph_free(prim);
    nf_graph_free(fused);
}

/* Two runs of 3 steps with carry=true continue one another: their outputs
 * are those of one run of 6 steps. */
static void test_state_carried_across_windows(void **state)
{
    (void)state;
    nf_error err;
    nf_graph *g = load("lstm_primitives.nfg");
    nf_node_set_attr(g, nf_graph_find(g, "h"), "carry", "true");
    nf_node_set_attr(g, nf_graph_find(g, "c"), "carry", "true");
    nf_graph_init_params(g, 8, NULL);
    nf_plan *whole, *part;
    assert_ok(nf_plan_compile(g, 2, NF_PLAN_INFERENCE, &whole, &err), &err);
    assert_ok(nf_plan_set_steps(whole, 6, &err), &err);
    assert_ok(nf_plan_compile(g, 2, NF_PLAN_INFERENCE, &part, &err), &err);
    assert_ok(nf_plan_set_steps(part, 3, &err), &err);
    nf_node *x = nf_graph_find(g, "x"), *y = nf_graph_find(g, "y");
    float xs[2 * 6 * 3];
    uint64_t seed = 5;
    fill_normal(xs, 2 * 6 * 3, &seed);
    assert_ok(nf_plan_set_input(whole, x, xs, &err), &err);
    assert_ok(nf_plan_forward(whole, &err), &err);
    nf_tensor all;
    assert_ok(nf_plan_value(whole, y, &all, &err), &err);
    for (int window = 0; window < 2; window++) {
        float xw[2 * 3 * 3];
        for (int b = 0; b < 2; b++)
            memcpy(xw + b * 9, xs + b * 18 + window * 9, 9 * sizeof(float));
        assert_ok(nf_plan_set_input(part, x, xw, &err), &err);
        assert_ok(nf_plan_forward(part, &err), &err);
        nf_tensor yw;
        assert_ok(nf_plan_value(part, y, &yw, &err), &err);
        for (int b = 0; b < 2; b++)
            assert_close("window", yw.data + b * 12, all.data + b * 24 + window * 12, 12, 1e-6);
    }
    nf_plan_reset_state(part); /* back to zeros: the first window again */
    float xw[2 * 3 * 3];
    for (int b = 0; b < 2; b++)
        memcpy(xw + b * 9, xs + b * 18, 9 * sizeof(float));
    assert_ok(nf_plan_set_input(part, x, xw, &err), &err);
    assert_ok(nf_plan_forward(part, &err), &err);
    nf_tensor again;
    assert_ok(nf_plan_value(part, y, &again, &err), &err);
    assert_close("after reset", again.data, all.data, 12, 1e-6);
    nf_plan_free(whole);
    nf_plan_free(part);
    nf_graph_free(g);
}

/* A loop over the graph's own output: z_{t} = tanh(W z_{t-1} + b) from a
 * learned start, 6 times with the same W (no sequence input), loss on the
 * last step only; the value after 6 steps is computed by hand. */
static void test_iterate_own_output(void **state)
{
    (void)state;
    nf_error err;
    nf_graph *g = nf_graph_new();
    nf_node *z = nf_memory(g, "z", 1, (int64_t[]){2});
    nf_node_set_attr(g, z, "init", "param");
    nf_node *next = nf_tanh(g, "next", nf_linear(g, "w", z, 2));
    assert_int_equal(nf_memory_connect(g, z, next), NF_OK);
    nf_node *target = nf_input(g, "target", 1, (int64_t[]){2});
    nf_mse_loss(g, "loss", nf_output(g, "out", next), target);
    assert_ok(nf_graph_validate(g, &err), &err);
    nf_graph_init_params(g, 2, NULL);
    nf_tensor w, b, init;
    nf_graph_param(g, nf_graph_find_param(g, "w.weight"), NULL, &w, NULL);
    nf_graph_param(g, nf_graph_find_param(g, "w.bias"), NULL, &b, NULL);
    nf_graph_param(g, nf_graph_find_param(g, "z.init"), NULL, &init, NULL);
    init.data[0] = 0.5f, init.data[1] = -1.0f;
    double v[2] = {0.5, -1.0};
    for (int t = 0; t < 6; t++) {
        double n0 = tanh(w.data[0] * v[0] + w.data[1] * v[1] + b.data[0]);
        double n1 = tanh(w.data[2] * v[0] + w.data[3] * v[1] + b.data[1]);
        v[0] = n0, v[1] = n1;
    }
    nf_plan *plan;
    assert_ok(nf_plan_compile(g, 1, NF_PLAN_TRAINING, &plan, &err), &err);
    assert_ok(nf_plan_set_steps(plan, 6, &err), &err);
    nf_plan_set_loss_last_step(plan, 1);
    fill_inputs(plan, g, 5, 3);
    assert_ok(nf_plan_forward(plan, &err), &err);
    nf_tensor out;
    assert_ok(nf_plan_value(plan, nf_graph_find(g, "out"), &out, &err), &err);
    assert_int_equal(out.shape.rank, 3); /* [batch, steps, 2] */
    float expected[2] = {(float)v[0], (float)v[1]};
    assert_close("z after 6 steps", out.data + 5 * 2, expected, 2, 1e-5);
    nf_gradcheck_result r;
    assert_ok(nf_gradcheck(plan, NULL, &r, &err), &err);
    if (!(r.max_rel_error < TOL))
        fail_msg("relative error %.3g at %s", r.max_rel_error, r.worst);
    nf_plan_free(plan);
    nf_graph_free(g);
}

/* Runs `plan` (steps T, given batch) on rows [row0, row0 + batch) of
 * x [2, 5, 3] and target [2, 5, 4] (the first T steps of each) */
static void feed_rows(nf_plan *plan, nf_graph *g, const float *x, const float *target, int row0, int64_t steps)
{
    nf_error err;
    nf_tensor xv, tv;
    assert_ok(nf_plan_input(plan, nf_graph_find(g, "x"), &xv, &err), &err);
    assert_ok(nf_plan_input(plan, nf_graph_find(g, "target"), &tv, &err), &err);
    for (int64_t b = 0; b < xv.shape.dim[0]; b++) {
        memcpy(xv.data + b * steps * 3, x + (row0 + b) * 15, (size_t)steps * 3 * sizeof(float));
        memcpy(tv.data + b * steps * 4, target + (row0 + b) * 20, (size_t)steps * 4 * sizeof(float));
    }
}

static nf_plan *unrolled(nf_graph *g, int64_t batch, int64_t steps)
{
    nf_error err;
    nf_plan *plan;
    assert_ok(nf_plan_compile(g, batch, NF_PLAN_TRAINING, &plan, &err), &err);
    assert_ok(nf_plan_set_steps(plan, steps, &err), &err);
    return plan;
}

/* Rows of 5 and 3 steps in one batch: the loss is the mean over the 8
 * valid (row, step) pairs, gradients likewise, as two separate runs of
 * 5 and 3 steps weighted 5/8 and 3/8; and the state carried from the
 * shorter row is the one after its third step. */
static void test_variable_lengths(void **state)
{
    (void)state;
    nf_error err;
    nf_graph *g = load("lstm_primitives.nfg");
    nf_node_set_attr(g, nf_graph_find(g, "h"), "carry", "true");
    nf_node_set_attr(g, nf_graph_find(g, "c"), "carry", "true");
    nf_graph_init_params(g, 6, NULL);
    float x[2 * 15], target[2 * 20], x2[2 * 15];
    uint64_t seed = 11;
    fill_normal(x, 30, &seed);
    fill_normal(target, 40, &seed);
    fill_normal(x2, 30, &seed);
    int64_t floats = nf_graph_param_floats(g);
    float grads[3][200];
    assert_true(floats <= 200);
    nf_tensor all;
    nf_graph_param(g, 0, NULL, NULL, &all); /* the gradients are one block from parameter 0 */

    nf_plan *masked = unrolled(g, 2, 5), *five = unrolled(g, 1, 5), *three = unrolled(g, 1, 3);
    assert_ok(nf_plan_set_lengths(masked, (int64_t[]){5, 3}, &err), &err);
    assert_int_equal(nf_plan_set_lengths(masked, (int64_t[]){6, 3}, &err), NF_ERR_INVALID_ARGUMENT);
    nf_plan *plans[3] = {masked, five, three};
    double loss[3];
    for (int i = 0; i < 3; i++) {
        feed_rows(plans[i], g, x, target, i == 2 ? 1 : 0, i == 2 ? 3 : 5);
        assert_ok(nf_plan_forward(plans[i], &err), &err);
        assert_ok(nf_plan_backward(plans[i], &err), &err);
        loss[i] = nf_plan_loss(plans[i]);
        memcpy(grads[i], all.data, (size_t)floats * sizeof(float));
    }
    float got = (float)loss[0], want = (float)((5 * loss[1] + 3 * loss[2]) / 8);
    assert_close("masked loss", &got, &want, 1, 1e-5);
    for (int64_t j = 0; j < floats; j++)
        grads[1][j] = (5 * grads[1][j] + 3 * grads[2][j]) / 8;
    assert_close("masked gradients", grads[0], grads[1], floats, 1e-5);

    /* the next window: row 1 continues from its state after 3 steps */
    feed_rows(masked, g, x2, target, 0, 5);
    feed_rows(three, g, x2, target, 1, 3);
    assert_ok(nf_plan_forward(masked, &err), &err);
    assert_ok(nf_plan_forward(three, &err), &err);
    nf_tensor ym, y3;
    assert_ok(nf_plan_value(masked, nf_graph_find(g, "y"), &ym, &err), &err);
    assert_ok(nf_plan_value(three, nf_graph_find(g, "y"), &y3, &err), &err);
    assert_close("state frozen past the end", ym.data + 20, y3.data, 12, 1e-6);
    for (int i = 0; i < 3; i++)
        nf_plan_free(plans[i]);
    nf_graph_free(g);
}

/* Streaming: the fused LSTM with its window set to 1 step, run 5 times
 * (state kept between runs), gives the outputs of one run over 5 steps. */
static void test_streaming_one_step_at_a_time(void **state)
{
    (void)state;
    nf_error err;
    nf_graph *whole = load("lstm_fused.nfg"), *stream = load("lstm_fused.nfg");
    nf_graph_init_params(whole, 12, NULL);
    nf_graph_init_params(stream, 12, NULL);
    assert_ok(nf_graph_set_window(stream, 1, &err), &err);
    nf_plan *a, *b;
    assert_ok(nf_plan_compile(whole, 2, NF_PLAN_INFERENCE, &a, &err), &err);
    assert_ok(nf_plan_compile(stream, 2, NF_PLAN_INFERENCE, &b, &err), &err);
    float xs[2 * 5 * 3];
    uint64_t seed = 21;
    fill_normal(xs, 30, &seed);
    assert_ok(nf_plan_set_input(a, nf_graph_find(whole, "x"), xs, &err), &err);
    assert_ok(nf_plan_forward(a, &err), &err);
    nf_tensor all, one;
    assert_ok(nf_plan_value(a, nf_graph_find(whole, "y"), &all, &err), &err);
    for (int t = 0; t < 5; t++) {
        float step[2 * 3];
        for (int r = 0; r < 2; r++)
            memcpy(step + r * 3, xs + r * 15 + t * 3, 3 * sizeof(float));
        assert_ok(nf_plan_set_input(b, nf_graph_find(stream, "x"), step, &err), &err);
        assert_ok(nf_plan_forward(b, &err), &err);
        assert_ok(nf_plan_value(b, nf_graph_find(stream, "y"), &one, &err), &err);
        for (int r = 0; r < 2; r++)
            assert_close("step", one.data + r * 4, all.data + r * 20 + t * 4, 4, 1e-6);
    }
    nf_plan_free(a);
    nf_plan_free(b);
    nf_graph_free(whole);
    nf_graph_free(stream);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_gradients_through_time),
        cmocka_unit_test(test_primitives_equal_fused),
        cmocka_unit_test(test_state_carried_across_windows),
        cmocka_unit_test(test_iterate_own_output),
        cmocka_unit_test(test_variable_lengths),
        cmocka_unit_test(test_streaming_one_step_at_a_time),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
