/* Building and validating graphs: every wiring mistake is reported with
 * the node, its type and the shapes; nothing crashes on NULL; parameters
 * are initialised reproducibly by the documented schemes. */
#include <math.h>
#include <string.h>

#include "helpers.h"

static void assert_message(nf_status got, nf_status want, const nf_error *err, const char *text)
{
    assert_int_equal(got, want);
    if (!strstr(err->message, text))
        fail_msg("message \"%s\" does not contain \"%s\"", err->message, text);
}

static void test_linear_feature_mismatch(void **state)
{
    (void)state;
    nf_error err;
    nf_graph *g = nf_graph_new();
    nf_node *x = nf_input(g, "x", 1, (int64_t[]){784});
    nf_node *h1 = nf_linear(g, "h1", x, 128);
    nf_node *fc2 = nf_linear(g, "fc2", h1, 10);
    nf_node_set_attr(g, fc2, "in", "256");
    assert_message(nf_graph_validate(g, &err), NF_ERR_SHAPE, &err,
                   "linear 'fc2': input 'h1' has 128 features, weight expects 256");
    /* fixing the attribute makes the graph valid */
    nf_node_set_attr(g, fc2, "in", "128");
    assert_int_equal(nf_graph_validate(g, &err), NF_OK);
    nf_graph_free(g);
}

static void test_sticky_errors(void **state)
{
    (void)state;
    nf_error err;
    nf_graph *g = nf_graph_new();
    nf_node *x = nf_input(g, "x", 1, (int64_t[]){4});
    assert_null(nf_graph_add(g, "conv9d", "c", 1, &x));
    /* later constructors get NULL inputs and must not crash */
    nf_node *y = nf_relu(g, "r", nf_linear(g, "fc", NULL, 3));
    assert_null(y);
    assert_message(nf_graph_status(g, &err), NF_ERR_INVALID_ARGUMENT, &err, "unknown operation 'conv9d'");
    nf_plan *plan = (nf_plan *)1;
    assert_message(nf_plan_compile(g, 8, NF_PLAN_TRAINING, &plan, &err), NF_ERR_INVALID_ARGUMENT, &err,
                   "conv9d");
    assert_null(plan);
    nf_graph_free(g);
}

static void test_null_input(void **state)
{
    (void)state;
    nf_error err;
    nf_graph *g = nf_graph_new();
    assert_null(nf_sigmoid(g, "s", NULL));
    assert_message(nf_graph_status(g, &err), NF_ERR_INVALID_ARGUMENT, &err, "sigmoid 's': input 1 is NULL");
    nf_graph_free(g);
    /* a NULL graph is an error, not a crash */
    assert_null(nf_relu(NULL, "r", NULL));
    assert_int_equal(nf_graph_validate(NULL, &err), NF_ERR_INVALID_ARGUMENT);
}

static void test_names(void **state)
{
    (void)state;
    nf_error err;
    nf_graph *g = nf_graph_new();
    nf_node *x = nf_input(g, "x", 1, (int64_t[]){4});
    nf_node *a = nf_relu(g, NULL, x);
    nf_node *b = nf_relu(g, "", a);
    assert_string_equal(nf_node_name(a), "relu_1");
    assert_string_equal(nf_node_name(b), "relu_2");
    assert_ptr_equal(nf_graph_find(g, "relu_2"), b);
    assert_null(nf_tanh(g, "x", b));
    assert_message(nf_graph_status(g, &err), NF_ERR_GRAPH, &err, "tanh 'x': the name is already used");
    nf_graph_free(g);

    g = nf_graph_new();
    assert_null(nf_input(g, "fc1.weight", 1, (int64_t[]){4}));
    assert_message(nf_graph_status(g, &err), NF_ERR_INVALID_ARGUMENT, &err, "a name is a letter");
    nf_graph_free(g);
}

static void test_input_count(void **state)
{
    (void)state;
    nf_error err;
    nf_graph *g = nf_graph_new();
    nf_node *x = nf_input(g, "x", 1, (int64_t[]){4});
    nf_node *in[3] = {x, x, x};
    assert_null(nf_graph_add(g, "add", "a", 3, in));
    assert_message(nf_graph_status(g, &err), NF_ERR_GRAPH, &err, "add 'a': takes 2 input(s), got 3");
    nf_graph_free(g);
}

static void test_attributes(void **state)
{
    (void)state;
    nf_error err;
    struct {
        const char *key, *value, *message;
    } bad[] = {
        {"out", "0", "attribute 'out' is 0; it must be in [1,"},
        {"out", "12abc", "attribute 'out' must be a whole number"},
        {"out", "2.5", "attribute 'out' must be a whole number"},
        {"kernel", "3", "attribute 'kernel' does not exist"},
        {"weight_init", "glorot", "attribute 'weight_init' has no such choice"},
        {"bias", "maybe", "attribute 'bias' must be true, false, 1 or 0"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        nf_graph *g = nf_graph_new();
        nf_node *x = nf_input(g, "x", 1, (int64_t[]){4});
        nf_node *fc = nf_linear(g, "fc", x, 3);
        assert_int_equal(nf_node_set_attr(g, fc, bad[i].key, bad[i].value), NF_ERR_INVALID_ARGUMENT);
        assert_message(nf_graph_status(g, &err), NF_ERR_INVALID_ARGUMENT, &err, bad[i].message);
        nf_graph_free(g);
    }
    /* a required attribute left out is reported at validation */
    nf_graph *g = nf_graph_new();
    nf_node *x = nf_input(g, "x", 1, (int64_t[]){4});
    nf_graph_add(g, "linear", "fc", 1, &x);
    assert_message(nf_graph_validate(g, &err), NF_ERR_INVALID_ARGUMENT, &err,
                   "linear 'fc': attribute 'out' is required");
    nf_graph_free(g);
}

static void test_shape_errors(void **state)
{
    (void)state;
    nf_error err;
    nf_graph *g = nf_graph_new();
    nf_node *a = nf_input(g, "a", 2, (int64_t[]){3, 4});
    nf_node *b = nf_input(g, "b", 1, (int64_t[]){3});
    nf_add(g, "sum", a, b);
    assert_message(nf_graph_validate(g, &err), NF_ERR_SHAPE, &err, "add 'sum': 'a' [3, 4] and 'b' [3]");
    nf_graph_free(g);

    g = nf_graph_new();
    nf_node *logits = nf_input(g, "logits", 1, (int64_t[]){10});
    nf_node *labels = nf_input(g, "labels", 1, (int64_t[]){3});
    nf_cross_entropy_loss(g, "loss", logits, labels);
    assert_message(nf_graph_validate(g, &err), NF_ERR_SHAPE, &err,
                   "cross_entropy 'loss': target 'labels' has shape [3]; logits 'logits' [10] need class indices [] or probabilities [10]");
    nf_graph_free(g);

    g = nf_graph_new();
    nf_matmul(g, "mm", nf_input(g, "p", 2, (int64_t[]){2, 3}), nf_input(g, "q", 2, (int64_t[]){2, 3}));
    assert_message(nf_graph_validate(g, &err), NF_ERR_SHAPE, &err, "matmul 'mm': 'p' [2, 3] and 'q' [2, 3] do not multiply");
    nf_graph_free(g);
}

static void test_loss_cannot_feed(void **state)
{
    (void)state;
    nf_error err;
    nf_graph *g = nf_graph_new();
    nf_node *x = nf_input(g, "x", 1, (int64_t[]){2});
    nf_node *loss = nf_mse_loss(g, "loss", x, x);
    assert_null(nf_scale(g, "twice", loss, 2));
    assert_message(nf_graph_status(g, &err), NF_ERR_GRAPH, &err, "a loss cannot feed another node");
    nf_graph_free(g);
}

static void test_share_errors(void **state)
{
    (void)state;
    nf_error err;
    nf_graph *g = nf_graph_new();
    nf_node *x = nf_input(g, "x", 1, (int64_t[]){4});
    nf_node *a = nf_linear(g, "a", x, 3);
    nf_node *b = nf_linear(g, "b", x, 5);
    assert_int_equal(nf_node_share_params(g, b, a), NF_OK);
    assert_message(nf_graph_validate(g, &err), NF_ERR_SHAPE, &err,
                   "linear 'b': shares 'a.weight' of shape [3, 4] but needs [5, 4]");
    nf_graph_free(g);

    g = nf_graph_new();
    x = nf_input(g, "x", 1, (int64_t[]){4});
    a = nf_linear(g, "a", x, 4);
    nf_node *r = nf_relu(g, "r", a);
    assert_int_equal(nf_node_share_params(g, r, a), NF_ERR_GRAPH);
    assert_message(nf_graph_status(g, &err), NF_ERR_GRAPH, &err, "another operation");
    nf_graph_free(g);
}

static void test_bad_input_shapes(void **state)
{
    (void)state;
    nf_error err;
    nf_graph *g = nf_graph_new();
    assert_null(nf_input(g, "x", 7, (int64_t[]){1, 1, 1, 1, 1, 1, 1}));
    assert_message(nf_graph_status(g, &err), NF_ERR_SHAPE, &err, "rank 7 is outside 0..6");
    nf_graph_free(g);
    g = nf_graph_new();
    assert_null(nf_input(g, "x", 2, (int64_t[]){3, -1}));
    assert_message(nf_graph_status(g, &err), NF_ERR_SHAPE, &err, "dimension 1 is -1");
    nf_graph_free(g);
    g = nf_graph_new();
    nf_node *x = nf_graph_add(g, "input", "x", 0, NULL); /* (3x0: a tensor with no elements, allowed) */
    assert_int_equal(nf_node_set_attr(g, x, "shape", "3x-1"), NF_ERR_INVALID_ARGUMENT);
    nf_node *c = nf_graph_add(g, "constant", "c", 0, NULL);
    assert_int_equal(nf_node_set_attr(g, c, "shape", "3x0"), NF_ERR_INVALID_ARGUMENT);
    nf_graph_free(g);
    g = nf_graph_new();
    x = nf_graph_add(g, "input", "x", 0, NULL);
    assert_int_equal(nf_node_set_attr(g, x, "shape", "1x28x28"), NF_OK);
    nf_linear(g, "fc", x, 2);
    assert_int_equal(nf_graph_validate(g, &err), NF_OK);
    nf_shape s;
    nf_node_shape(nf_graph_find(g, "fc"), &s, NULL);
    assert_int_equal(s.rank, 3);
    assert_int_equal(s.dim[2], 2);
    nf_graph_free(g);
}

/* A model over the memory limit is refused before allocating; so is a
 * plan whose activations would be. */
static void test_memory_limit(void **state)
{
    (void)state;
    nf_error err;
    size_t before = nf_memory_limit();
    nf_set_memory_limit((size_t)1 << 20);
    nf_graph *g = nf_graph_new();
    nf_node *x = nf_input(g, "x", 1, (int64_t[]){784});
    nf_linear(g, "big", x, 1000); /* 3 MB of weights */
    assert_message(nf_graph_validate(g, &err), NF_ERR_SHAPE, &err,
                   "linear 'big': the graph's parameters exceed the memory limit of 1048576 bytes");
    nf_graph_free(g);
    g = nf_graph_new();
    nf_relu(g, "r", nf_input(g, "x", 1, (int64_t[]){1000}));
    nf_plan *plan;
    assert_message(nf_plan_compile(g, 1000, NF_PLAN_INFERENCE, &plan, &err), NF_ERR_NO_MEMORY, &err,
                   "over the memory limit of 1048576; lower the batch size");
    nf_set_memory_limit(before);
    assert_ok(nf_plan_compile(g, 1000, NF_PLAN_INFERENCE, &plan, &err), &err);
    nf_plan_free(plan);
    nf_graph_free(g);
}

/* Revalidating after adding nodes keeps existing parameter values, and a
 * plan compiled before the change refuses to run. */
static void test_growing_graph(void **state)
{
    (void)state;
    nf_error err;
    nf_graph *g = nf_graph_new();
    nf_node *x = nf_input(g, "x", 1, (int64_t[]){4});
    nf_node *fc = nf_linear(g, "fc", x, 3);
    nf_plan *plan;
    assert_ok(nf_plan_compile(g, 2, NF_PLAN_INFERENCE, &plan, &err), &err);
    nf_tensor w;
    nf_graph_param(g, 0, NULL, &w, NULL);
    float before[12];
    memcpy(before, w.data, sizeof before);
    nf_linear(g, "fc2", fc, 2);
    assert_message(nf_plan_forward(plan, &err), NF_ERR_STATE, &err, "compile it again");
    nf_plan_free(plan);
    assert_ok(nf_graph_validate(g, &err), &err);
    assert_int_equal(nf_graph_param_count(g), 4);
    nf_graph_param(g, nf_graph_find_param(g, "fc.weight"), NULL, &w, NULL);
    assert_memory_equal(before, w.data, sizeof before);
    nf_graph_free(g);
}

/* Initial values follow each scheme's bound or spread, and the seed. */
static void test_init_schemes(void **state)
{
    (void)state;
    nf_error err;
    const int64_t fan_in = 400, fan_out = 300;
    struct {
        const char *scheme;
        double bound;  /* max |w| for uniform schemes, else 0 */
        double std;    /* expected standard deviation */
    } cases[] = {
        {"default", 1 / sqrt(400.0), 1 / sqrt(400.0) / sqrt(3.0)},
        {"xavier_uniform", sqrt(6.0 / 700), sqrt(6.0 / 700) / sqrt(3.0)},
        {"xavier_normal", 0, sqrt(2.0 / 700)},
        {"kaiming_uniform", sqrt(6.0 / 400), sqrt(6.0 / 400) / sqrt(3.0)},
        {"kaiming_normal", 0, sqrt(2.0 / 400)},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        nf_graph *g = nf_graph_new();
        nf_node *fc = nf_linear(g, "fc", nf_input(g, "x", 1, &fan_in), fan_out);
        nf_node_set_attr(g, fc, "weight_init", cases[c].scheme);
        nf_node_set_attr(g, fc, "bias_init", "constant");
        nf_node_set_attr(g, fc, "bias_value", "0.25");
        assert_ok(nf_graph_validate(g, &err), &err);
        nf_tensor w, b;
        nf_graph_param(g, 0, NULL, &w, NULL);
        nf_graph_param(g, 1, NULL, &b, NULL);
        double sum = 0, sq = 0, top = 0;
        int64_t n = fan_in * fan_out;
        for (int64_t i = 0; i < n; i++) {
            sum += w.data[i];
            sq += (double)w.data[i] * w.data[i];
            top = fmax(top, fabs(w.data[i]));
        }
        double mean = sum / (double)n, std = sqrt(sq / (double)n - mean * mean);
        assert_true(fabs(mean) < 0.05 * cases[c].std);
        assert_true(fabs(std - cases[c].std) < 0.02 * cases[c].std);
        if (cases[c].bound > 0)
            assert_true(top <= cases[c].bound && top > 0.99 * cases[c].bound);
        for (int64_t j = 0; j < fan_out; j++)
            assert_true(b.data[j] == 0.25f);
        nf_graph_free(g);
    }
}

/* The first 8 weights of a 4 -> 2 linear layer made with `seed`. */
static void weights_for_seed(uint64_t seed, float *out)
{
    nf_error err;
    nf_graph *g = nf_graph_new();
    nf_graph_set_seed(g, seed);
    nf_linear(g, "fc", nf_input(g, "x", 1, (int64_t[]){4}), 2);
    assert_ok(nf_graph_validate(g, &err), &err);
    nf_tensor w;
    nf_graph_param(g, 0, NULL, &w, NULL);
    memcpy(out, w.data, 8 * sizeof(float));
    nf_graph_free(g);
}

static void test_seeds(void **state)
{
    (void)state;
    float a[8], b[8], c[8];
    weights_for_seed(5, a);
    weights_for_seed(5, b);
    weights_for_seed(6, c);
    assert_memory_equal(a, b, sizeof a);
    assert_memory_not_equal(a, c, sizeof a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_linear_feature_mismatch),
        cmocka_unit_test(test_sticky_errors),
        cmocka_unit_test(test_null_input),
        cmocka_unit_test(test_names),
        cmocka_unit_test(test_input_count),
        cmocka_unit_test(test_attributes),
        cmocka_unit_test(test_shape_errors),
        cmocka_unit_test(test_loss_cannot_feed),
        cmocka_unit_test(test_share_errors),
        cmocka_unit_test(test_bad_input_shapes),
        cmocka_unit_test(test_growing_graph),
        cmocka_unit_test(test_memory_limit),
        cmocka_unit_test(test_init_schemes),
        cmocka_unit_test(test_seeds),
    };
    return cmocka_run_group_tests_name("graph", tests, NULL, NULL);
}
