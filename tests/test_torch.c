/* nodeflow against PyTorch: forward values, losses and every gradient of
 * the graphs in tests/fixtures/make_torch.py, to 1e-5 relative (of each
 * tensor's largest magnitude). The fixtures are committed; this test does
 * not need Python. */
#include <math.h>
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

/* Convolutions, batch norm, pooling, layer norm and their 1-D forms
 * against PyTorch (torch_cnn.txt): every output, gradient and running
 * statistic. The model is written in the model-file format. */
static void test_cnn(void **state)
{
    (void)state;
    nf_error err;
    fixture f;
    fixture_load(&f, "torch_cnn.txt");
    const char *model =
        "nodeflow 1\n"
        "x = input shape=4x9x8 grad=true\ns = input shape=3x20 grad=true\n"
        "y = input shape=scalar\nt = input shape=4x3\n"
        "c1 = conv2d x out=6 kernel=3x2 stride=2 padding=1\n"
        "b1 = batchnorm c1\nr1 = relu b1\n"
        "p1 = maxpool r1 kernel=2 stride=2 ceil_mode=true\n"
        "c2 = conv2d p1 out=6 kernel=3 padding=2 dilation=2 groups=3\n"
        "p2 = avgpool c2 kernel=3 stride=1 padding=1\n"
        "ln = layernorm p2 axes=2\nflat = flatten ln\nfc = linear flat out=5\n"
        "logits = output fc\nce = cross_entropy logits y\n"
        "d1 = conv1d s out=4 kernel=3 stride=2 padding=1\n"
        "q1 = maxpool1d d1 kernel=2\nq2 = avgpool1d q1 kernel=2 ceil_mode=true\n"
        "mse = mse q2 t\n";
    nf_graph *g;
    assert_ok(nf_model_parse(model, strlen(model), "cnn", &g, NULL, &err), &err);
    nf_plan *plan;
    assert_ok(nf_plan_compile(g, 2, NF_PLAN_TRAINING | NF_PLAN_KEEP_VALUES, &plan, &err), &err);
    const char *params[] = {"c1.weight", "c1.bias", "b1.weight", "b1.bias", "c2.weight", "c2.bias",
                            "ln.weight", "ln.bias", "fc.weight", "fc.bias", "d1.weight", "d1.bias"};
    for (int i = 0; i < 12; i++)
        load_param(g, &f, params[i]);
    const char *inputs[] = {"x", "s", "y", "t"};
    for (int i = 0; i < 4; i++)
        load_input(plan, nf_graph_find(g, inputs[i]), &f);
    assert_ok(nf_plan_forward(plan, &err), &err);
    assert_ok(nf_plan_backward(plan, &err), &err);
    const char *values[] = {"c1", "b1", "p1", "c2", "p2", "ln", "logits", "d1", "q2"};
    for (int i = 0; i < 9; i++)
        expect_node_value(plan, nf_graph_find(g, values[i]), &f, values[i]);
    float loss = (float)nf_plan_loss(plan);
    assert_close("loss", &loss, fixture_get(&f, "loss")->data, 1, RTOL);
    for (int i = 0; i < 12; i++) {
        if (strcmp(params[i], "c1.bias") == 0 || strcmp(params[i], "c2.bias") == 0) {
            /* batch norm (after c1) and layer norm per channel (after c2)
             * remove a per-channel shift: these gradients are 0 up to
             * rounding (PyTorch's, in double, about 1e-15) */
            nf_tensor grad;
            nf_graph_param(g, nf_graph_find_param(g, params[i]), NULL, NULL, &grad);
            for (int j = 0; j < 6; j++)
                assert_true(fabsf(grad.data[j]) < 1e-5f);
            continue;
        }
        expect_param_grad(g, &f, params[i]);
    }
    expect_input_grad(plan, nf_graph_find(g, "x"), &f);
    expect_input_grad(plan, nf_graph_find(g, "s"), &f);
    const char *stats[] = {"b1.running_mean", "b1.running_var"};
    for (int i = 0; i < 2; i++) {
        nf_tensor v;
        nf_graph_param(g, nf_graph_find_param(g, stats[i]), NULL, &v, NULL);
        assert_close(stats[i], v.data, fixture_get(&f, stats[i])->data, 6, RTOL);
    }
    nf_plan_free(plan);
    nf_graph_free(g);
    fixture_free(&f);
}

/* Batched and transposed matmul, softmax over an axis, with a causal or
 * an additive mask, fused multi-head attention (self, cross, three
 * inputs, without bias) and the sinusoidal table against PyTorch
 * (tests/fixtures/make_torch_attention.py). */
static void test_attention(void **state)
{
    (void)state;
    nf_error err;
    fixture f;
    fixture_load(&f, "torch_attention.txt");
    const char *model =
        "nodeflow 1\n"
        "a = input shape=2x3x4 grad=true\nb = input shape=4x5 grad=true\nc = input shape=1x4x3 grad=true\n"
        "d = input shape=2x3x2 grad=true\ne = input shape=3x4 grad=true\nf = input shape=5x4 grad=true\n"
        "g = input shape=4x3 grad=true\nh = input shape=4x2 grad=true\nv = input shape=4 grad=true\n"
        "sc = input shape=4x4 grad=true\nmask = input shape=4x4\n"
        "q = input shape=5x8 grad=true\nkq = input shape=4x8 grad=true\n"
        "kk = input shape=6x8 grad=true\nkv = input shape=6x8 grad=true\n"
        "mm1 = matmul a b\nmm2 = matmul c d\nmm3 = matmul e f transpose_b=true\n"
        "mm4 = matmul g h transpose_a=true\nmm5 = matmul a v\n"
        "sm1 = softmax e axis=0\nsm2 = log_softmax a axis=1\nsm3 = softmax sc causal=true\n"
        "sm4 = softmax sc mask\n"
        "at1 = attention q heads=2 causal=true\nat2 = attention kq kv heads=4 bias=false\n"
        "at3 = attention kq kk kv heads=2\n"
        "pos = constant shape=6x8 init=sinusoidal\n";
    static const char *outs[] = {"mm1", "mm2", "mm3", "mm4", "mm5", "sm1", "sm2", "sm3", "sm4", "at1", "at2", "at3"};
    enum { N_OUTS = 12 };
    char text[4096], line[128];
    snprintf(text, sizeof text, "%s", model);
    for (int i = 0; i < N_OUTS; i++) {
        const fixture_tensor *t = fixture_get(&f, outs[i]);
        char dims[64] = "";
        for (int d = 1; d < t->shape.rank; d++)
            snprintf(dims + strlen(dims), sizeof dims - strlen(dims), "%s%lld", d > 1 ? "x" : "",
                     (long long)t->shape.dim[d]);
        snprintf(line, sizeof line, "t_%s = input shape=%s\nl_%s = mse %s t_%s\n", outs[i], dims, outs[i], outs[i],
                 outs[i]);
        strncat(text, line, sizeof text - strlen(text) - 1);
    }
    nf_graph *g;
    assert_ok(nf_model_parse(text, strlen(text), "attention", &g, NULL, &err), &err);
    nf_plan *plan;
    assert_ok(nf_plan_compile(g, 2, NF_PLAN_TRAINING | NF_PLAN_KEEP_VALUES, &plan, &err), &err);
    static const char *params[] = {
        "at1.in_proj_weight", "at1.in_proj_bias", "at1.out_proj.weight", "at1.out_proj.bias",
        "at2.in_proj_weight", "at2.out_proj.weight",
        "at3.in_proj_weight", "at3.in_proj_bias", "at3.out_proj.weight", "at3.out_proj.bias"};
    for (int i = 0; i < 10; i++)
        load_param(g, &f, params[i]);
    static const char *inputs[] = {"a", "b", "c", "d", "e", "f", "g", "h", "v", "sc", "q", "kq", "kk", "kv"};
    for (int i = 0; i < 14; i++)
        load_input(plan, nf_graph_find(g, inputs[i]), &f);
    load_input(plan, nf_graph_find(g, "mask"), &f);
    for (int i = 0; i < N_OUTS; i++) {
        snprintf(line, sizeof line, "t_%s", outs[i]);
        load_input(plan, nf_graph_find(g, line), &f);
    }
    assert_ok(nf_plan_forward(plan, &err), &err);
    assert_ok(nf_plan_backward(plan, &err), &err);
    for (int i = 0; i < N_OUTS; i++)
        expect_node_value(plan, nf_graph_find(g, outs[i]), &f, outs[i]);
    float loss = (float)nf_plan_loss(plan);
    assert_close("loss", &loss, fixture_get(&f, "loss")->data, 1, RTOL);
    for (int i = 0; i < 10; i++)
        expect_param_grad(g, &f, params[i]);
    for (int i = 0; i < 14; i++)
        expect_input_grad(plan, nf_graph_find(g, inputs[i]), &f);
    nf_tensor pos;
    nf_graph_param(g, nf_graph_find_param(g, "pos.value"), NULL, &pos, NULL);
    assert_close("pos", pos.data, fixture_get(&f, "pos")->data, 48, RTOL);
    nf_tensor rows; /* every sample gets the table */
    assert_ok(nf_plan_value(plan, nf_graph_find(g, "pos"), &rows, &err), &err);
    for (int s = 0; s < 2; s++)
        assert_close("pos row", rows.data + 48 * s, pos.data, 48, 0.0);
    nf_plan_free(plan);
    nf_graph_free(g);
    fixture_free(&f);
}

/* A fixture whose script also wrote its model (MODEL_FILE: inputs, the
 * nodes, a target t_NAME and an mse loss per output NAME): every
 * parameter of the graph is in the fixture under its name, and so is its
 * gradient ("grad.NAME"); the outputs, the loss, and the gradients of the
 * inputs that ask for them must match. */
static void check_model_fixture(const char *fixture_file, const char *model_file, const char *const *inputs,
                                int n_inputs, const char *const *outs, int n_outs)
{
    nf_error err;
    fixture f;
    fixture_load(&f, fixture_file);
    char path[1024], name[128];
    snprintf(path, sizeof path, "%s/tests/fixtures/%s", NF_SOURCE_DIR, model_file);
    nf_graph *g;
    assert_ok(nf_model_load(path, &g, NULL, &err), &err);
    nf_plan *plan;
    assert_ok(nf_plan_compile(g, 2, NF_PLAN_TRAINING | NF_PLAN_KEEP_VALUES, &plan, &err), &err);
    int n_params = nf_graph_param_count(g);
    for (int k = 0; k < n_params; k++) {
        const char *param;
        nf_graph_param(g, k, &param, NULL, NULL);
        load_param(g, &f, param);
    }
    for (int i = 0; i < n_inputs; i++)
        load_input(plan, nf_graph_find(g, inputs[i]), &f);
    for (int i = 0; i < n_outs; i++) {
        snprintf(name, sizeof name, "t_%s", outs[i]);
        load_input(plan, nf_graph_find(g, name), &f);
    }
    assert_ok(nf_plan_forward(plan, &err), &err);
    assert_ok(nf_plan_backward(plan, &err), &err);
    for (int i = 0; i < n_outs; i++)
        expect_node_value(plan, nf_graph_find(g, outs[i]), &f, outs[i]);
    float loss = (float)nf_plan_loss(plan);
    assert_close("loss", &loss, fixture_get(&f, "loss")->data, 1, RTOL);
    for (int k = 0; k < n_params; k++) {
        const char *param;
        nf_graph_param(g, k, &param, NULL, NULL);
        expect_param_grad(g, &f, param);
    }
    for (int i = 0; i < n_inputs; i++)
        expect_input_grad(plan, nf_graph_find(g, inputs[i]), &f);
    nf_plan_free(plan);
    nf_graph_free(g);
    fixture_free(&f);
}

/* Convolution and pooling options against PyTorch
 * (tests/fixtures/make_torch_conv.py): per-axis stride, padding and
 * dilation, padding modes, dilated max pooling, average pooling counting
 * the padding, adaptive average pooling, transposed convolutions and
 * upsampling. */
static void test_conv_options(void **state)
{
    (void)state;
    static const char *const inputs[] = {"x", "s"};
    static const char *const outs[] = {"c1", "c2", "c3", "c4", "d1", "m1", "m2", "m3", "a1", "ad1", "ad2",
                                       "t1", "t2", "u1", "u2", "u3", "u4"};
    check_model_fixture("torch_conv.txt", "torch_conv.nfg", inputs, 2, outs, 17);
}

/* Stacked, bidirectional recurrent layers against PyTorch
 * (tests/fixtures/make_torch_rnn_stack.py): lstm with initial states and
 * its final states as outputs (sharing the weights), gru of 3 layers and
 * with its final state out, rnn (relu, bidirectional; tanh without
 * bias). */
static void test_recurrent_stacks(void **state)
{
    (void)state;
    static const char *const inputs[] = {"x", "h0", "c0", "gh0"};
    static const char *const outs[] = {"seq", "hn", "cn", "g1", "g2", "r1", "r2"};
    check_model_fixture("torch_rnn_stack.txt", "torch_rnn_stack.nfg", inputs, 4, outs, 7);
}

/* A PyTorch LeNet-5's weights give PyTorch's logits in nodeflow. */
/* Copies fixture tensor `name` into a plan input. */
static void set_input_from(nf_plan *plan, const nf_node *node, const fixture *f, const char *name)
{
    nf_error err;
    assert_ok(nf_plan_set_input(plan, node, fixture_get(f, name)->data, &err), &err);
}

/* lstm and gru (carry=true) over two consecutive windows, as
 * nn.LSTM / nn.GRU given the first window's final state, detached */
static void check_recurrent(const char *kind)
{
    nf_error err;
    fixture f;
    fixture_load(&f, "torch_recurrent.txt");
    nf_graph *g = nf_graph_new();
    nf_node *x = nf_input(g, "x", 2, (int64_t[]){5, 3});
    nf_node *t = nf_input(g, "t", 2, (int64_t[]){5, 4});
    nf_input_requires_grad(g, x);
    nf_node *r = nf_graph_add(g, kind, kind, 1, &x);
    nf_node_set_attr(g, r, "hidden", "4");
    nf_node_set_attr(g, r, "carry", "true");
    nf_node *y = nf_output(g, "y", r);
    nf_mse_loss(g, "loss", y, t);
    nf_plan *plan;
    assert_ok(nf_plan_compile(g, 2, NF_PLAN_TRAINING, &plan, &err), &err);
    const char *params[] = {"weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0"};
    char name[96];
    for (int i = 0; i < 4; i++) {
        snprintf(name, sizeof name, "%s.%s", kind, params[i]);
        load_param(g, &f, name);
    }
    snprintf(name, sizeof name, "%s.t", kind);
    set_input_from(plan, t, &f, name);
    for (int window = 1; window <= 2; window++) {
        snprintf(name, sizeof name, "%s.x%d", kind, window);
        set_input_from(plan, x, &f, name);
        assert_ok(nf_plan_forward(plan, &err), &err);
        snprintf(name, sizeof name, "%s.y%d", kind, window);
        expect_node_value(plan, y, &f, name);
    }
    assert_ok(nf_plan_backward(plan, &err), &err);
    float loss = (float)nf_plan_loss(plan);
    snprintf(name, sizeof name, "%s.loss", kind);
    assert_close(name, &loss, fixture_get(&f, name)->data, 1, RTOL);
    for (int i = 0; i < 4; i++) {
        nf_tensor grad;
        snprintf(name, sizeof name, "%s.%s", kind, params[i]);
        nf_graph_param(g, nf_graph_find_param(g, name), NULL, NULL, &grad);
        snprintf(name, sizeof name, "%s.grad.%s", kind, params[i]);
        assert_close(name, grad.data, fixture_get(&f, name)->data, nf_shape_size(&grad.shape), RTOL);
    }
    nf_tensor dx;
    assert_ok(nf_plan_grad(plan, x, &dx, &err), &err);
    snprintf(name, sizeof name, "%s.grad.x2", kind);
    assert_close(name, dx.data, fixture_get(&f, name)->data, nf_shape_size(&dx.shape), RTOL);
    nf_plan_free(plan);
    nf_graph_free(g);
    fixture_free(&f);
}

static void test_lstm(void **state) { (void)state; check_recurrent("lstm"); }
static void test_gru(void **state) { (void)state; check_recurrent("gru"); }

static void test_lenet_weights(void **state)
{
    (void)state;
    nf_error err;
    char path[1024], weights[1024];
    snprintf(path, sizeof path, "%s/models/fashion_lenet.nfg", NF_SOURCE_DIR);
    snprintf(weights, sizeof weights, "%s/tests/fixtures/torch_lenet.safetensors", NF_SOURCE_DIR);
    nf_graph *g;
    assert_ok(nf_model_load(path, &g, NULL, &err), &err);
    assert_ok(nf_weights_load(g, weights, NF_WEIGHTS_STRICT, &err), &err);
    fixture f;
    fixture_load(&f, "torch_lenet.txt");
    nf_plan *plan;
    assert_ok(nf_plan_compile(g, 4, NF_PLAN_INFERENCE, &plan, &err), &err);
    assert_ok(nf_plan_set_input(plan, nf_graph_find(g, "x"), fixture_get(&f, "x")->data, &err), &err);
    assert_ok(nf_plan_forward(plan, &err), &err);
    expect_node_value(plan, nf_graph_find(g, "logits"), &f, "logits");
    nf_plan_free(plan);
    nf_graph_free(g);
    fixture_free(&f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_mlp),
        cmocka_unit_test(test_ops),
        cmocka_unit_test(test_cnn),
        cmocka_unit_test(test_lenet_weights),
        cmocka_unit_test(test_lstm),
        cmocka_unit_test(test_gru),
        cmocka_unit_test(test_attention),
        cmocka_unit_test(test_conv_options),
        cmocka_unit_test(test_recurrent_stacks),
    };
    return cmocka_run_group_tests_name("torch", tests, NULL, NULL);
}
