/* Model files: every malformed file of tests/bad/models gives exactly the
 * error in its .expected file; every model of models/ (and tests/data)
 * round-trips through the writer to an identical graph; the node-type
 * reference in docs/model-format.md matches the node tables. */
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "helpers.h"

static char *read_text(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        fail_msg("cannot open %s", path);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *text = malloc((size_t)n + 1);
    assert_int_equal(fread(text, 1, (size_t)n, f), (size_t)n);
    text[n] = '\0';
    fclose(f);
    return text;
}

static int has_suffix(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    return n > m && strcmp(s + n - m, suffix) == 0;
}

static void test_bad_models(void **state)
{
    (void)state;
    char dir[1024];
    snprintf(dir, sizeof dir, "%s/tests/bad/models", NF_SOURCE_DIR);
    DIR *d = opendir(dir);
    assert_non_null(d);
    int checked = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (!has_suffix(e->d_name, ".nfg"))
            continue;
        char path[2048], expected_path[2048];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        snprintf(expected_path, sizeof expected_path, "%s/%.*s.expected", dir, (int)strlen(e->d_name) - 4, e->d_name);
        char *text = read_text(path), *expected = read_text(expected_path);
        expected[strcspn(expected, "\n")] = '\0';
        nf_graph *g = (nf_graph *)1;
        nf_error err;
        nf_status st = nf_model_parse(text, strlen(text), e->d_name, &g, NULL, &err);
        if (st == NF_OK)
            fail_msg("%s parsed without error", e->d_name);
        assert_null(g);
        err.message[strcspn(err.message, "\n")] = '\0';
        if (strcmp(err.message, expected) != 0)
            fail_msg("%s:\n  got      %s\n  expected %s", e->d_name, err.message, expected);
        assert_true(err.line >= 1 && err.column >= 1);
        free(text);
        free(expected);
        checked++;
    }
    closedir(d);
    assert_true(checked >= 25);
}

/* Two graphs are identical: nodes, operations, inputs, attributes,
 * shapes, sharing and memory sources. */
static void assert_same_graph(const nf_graph *a, const nf_graph *b)
{
    assert_int_equal(nf_graph_node_count(a), nf_graph_node_count(b));
    for (int i = 0; i < nf_graph_node_count(a); i++) {
        const nf_node *x = nf_graph_node(a, i), *y = nf_graph_node(b, i);
        assert_string_equal(nf_node_name(x), nf_node_name(y));
        assert_string_equal(nf_node_op(x), nf_node_op(y));
        assert_int_equal(nf_node_input_count(x), nf_node_input_count(y));
        for (int k = 0; k < nf_node_input_count(x); k++)
            assert_string_equal(nf_node_name(nf_node_input(x, k)), nf_node_name(nf_node_input(y, k)));
        nf_shape sx, sy;
        nf_node_shape(x, &sx, NULL);
        nf_node_shape(y, &sy, NULL);
        assert_true(nf_shape_equal(&sx, &sy));
        assert_int_equal(nf_node_share_source(x) != NULL, nf_node_share_source(y) != NULL);
        assert_int_equal(nf_memory_source(x) != NULL, nf_memory_source(y) != NULL);
        if (nf_memory_source(x))
            assert_string_equal(nf_node_name(nf_memory_source(x)), nf_node_name(nf_memory_source(y)));
    }
    assert_int_equal(nf_graph_param_count(a), nf_graph_param_count(b));
}

static void round_trip(const char *path)
{
    nf_error err;
    nf_graph *g, *again;
    nf_train_config train, train_again;
    assert_ok(nf_model_load(path, &g, &train, &err), &err);
    char *text, *text_again;
    assert_ok(nf_model_format(g, &train, &text, &err), &err);
    assert_ok(nf_model_parse(text, strlen(text), path, &again, &train_again, &err), &err);
    assert_same_graph(g, again);
    assert_ok(nf_model_format(again, &train_again, &text_again, &err), &err);
    assert_string_equal(text, text_again); /* the writer is a fixed point */
    assert_string_equal(train.optimizer, train_again.optimizer);
    assert_int_equal(train.batch, train_again.batch);
    assert_true(isnan(train.lr) ? isnan(train_again.lr) : train.lr == train_again.lr);
    free(text);
    free(text_again);
    nf_graph_free(g);
    nf_graph_free(again);
}

static void round_trip_dir(const char *sub, int at_least)
{
    char dir[1024];
    snprintf(dir, sizeof dir, "%s/%s", NF_SOURCE_DIR, sub);
    DIR *d = opendir(dir);
    assert_non_null(d);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        if (has_suffix(e->d_name, ".nfg")) {
            char path[2048];
            snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
            round_trip(path);
            n++;
        }
    closedir(d);
    assert_true(n >= at_least);
}

static void test_round_trip_models(void **state)
{
    (void)state;
    round_trip_dir("models", 2);
    round_trip_dir("tests/data", 2);
}

/* A graph built in C (with every attribute kind, sharing and a memory
 * node) written and read back. */
static void test_round_trip_from_c(void **state)
{
    (void)state;
    nf_error err;
    nf_graph *g = nf_graph_new();
    nf_node *x = nf_input(g, "x", 2, (int64_t[]){3, 4});
    nf_node *prev = nf_memory(g, "prev", 2, (int64_t[]){3, 4});
    nf_node *fc = nf_linear(g, "fc", nf_add(g, "sum", x, prev), 4);
    nf_node_set_attr(g, fc, "weight_init", "xavier_normal");
    nf_node_set_attr(g, fc, "bias", "false");
    nf_node *tied = nf_linear(g, "tied", fc, 4);
    nf_node_set_attr(g, tied, "bias", "false");
    nf_node_share_params(g, tied, fc);
    nf_node *s = nf_scale(g, "s", nf_leaky_relu(g, "lr", tied, 0.125), 1.0 / 3.0);
    nf_memory_connect(g, prev, s);
    nf_mse_loss(g, "loss", s, nf_input(g, "t", 2, (int64_t[]){3, 4}));
    assert_ok(nf_graph_validate(g, &err), &err);
    char *text;
    assert_ok(nf_model_format(g, NULL, &text, &err), &err);
    nf_graph *again;
    assert_ok(nf_model_parse(text, strlen(text), "from-c", &again, NULL, &err), &err);
    assert_same_graph(g, again);
    double factor;
    assert_int_equal(nf_node_get_attr_number(nf_graph_find(again, "s"), "factor", &factor), NF_OK);
    assert_true(factor == 1.0 / 3.0); /* numbers are written exactly */
    assert_non_null(strstr(text, "prev = memory s shape=3x4"));
    assert_non_null(strstr(text, "share=fc"));
    free(text);
    nf_graph_free(g);
    nf_graph_free(again);
}

static void test_train_section(void **state)
{
    (void)state;
    nf_error err;
    const char *text = "nodeflow 1\nx = input shape=2\ny = input shape=scalar\nl = linear x out=2\n"
                       "loss = cross_entropy l y\n[train]\nlr = 0.1\nmomentum=0.5\noptimizer = sgd\nbatch = 8\n"
                       "epochs = 3\nseed = 9\nclip_norm = 2.5\n";
    nf_graph *g;
    nf_train_config c;
    assert_ok(nf_model_parse(text, strlen(text), "t", &g, &c, &err), &err);
    assert_string_equal(c.optimizer, "sgd");
    assert_true(c.lr == 0.1 && c.batch == 8 && c.epochs == 3 && c.seed == 9 && c.clip_norm == 2.5);
    assert_int_equal(c.n_hparams, 1);
    assert_string_equal(c.hparam_key[0], "momentum");
    nf_graph_free(g);
    const char *twice = "nodeflow 1\nx = input shape=2\n[train]\nlr = 0.1\nlr = 0.2\n";
    assert_int_equal(nf_model_parse(twice, strlen(twice), "t", &g, &c, &err), NF_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(err.message, "t:5:1: error: 'lr' is set twice"));
    const char *bad = "nodeflow 1\nx = input shape=2\n[train]\nbatch = 0\n";
    assert_int_equal(nf_model_parse(bad, strlen(bad), "t", &g, &c, &err), NF_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(err.message, "'batch' must be a whole number from 1"));
}

/* Text with no final newline, CRLF, tabs, a NUL byte, a huge line. */
static void test_edge_text(void **state)
{
    (void)state;
    nf_error err;
    nf_graph *g;
    const char *crlf = "nodeflow 1\r\n\tx = input shape=4\t# c\r\nh = relu x";
    assert_ok(nf_model_parse(crlf, strlen(crlf), "crlf", &g, NULL, &err), &err);
    nf_graph_free(g);
    const char nul[] = "nodeflow 1\nx = input\0 shape=4\n";
    assert_int_equal(nf_model_parse(nul, sizeof nul - 1, "nul", &g, NULL, &err), NF_ERR_FORMAT);
    assert_non_null(strstr(err.message, "nul:2:10: error: a NUL byte"));
    size_t n = 200000;
    char *huge = malloc(n + 32);
    strcpy(huge, "nodeflow 1\nx = input shape=4 ");
    size_t at = strlen(huge);
    memset(huge + at, 'a', n);
    huge[at + n] = '\0';
    assert_int_not_equal(nf_model_parse(huge, strlen(huge), "huge", &g, NULL, &err), NF_OK);
    free(huge);
    assert_int_equal(nf_model_load("/nonexistent.nfg", &g, NULL, &err), NF_ERR_IO);
}

/* 100,000 statements in a cycle: found without recursion, quickly. */
static void test_long_cycle(void **state)
{
    (void)state;
    nf_error err;
    nf_graph *g;
    enum { N = 100000 };
    size_t cap = (size_t)N * 32 + 64, len = 0;
    char *text = malloc(cap);
    len += (size_t)snprintf(text + len, cap - len, "nodeflow 1\ns0 = relu s%d\n", N - 1);
    for (int i = 1; i < N; i++)
        len += (size_t)snprintf(text + len, cap - len, "s%d = relu s%d\n", i, i - 1);
    assert_int_equal(nf_model_parse(text, len, "long", &g, NULL, &err), NF_ERR_GRAPH);
    assert_non_null(strstr(err.message, "long:2:11: error: cycle s0 -> s99999 -> s99998"));
    free(text);
}

static void test_reference_matches_docs(void **state)
{
    (void)state;
    nf_error err;
    char path[1024], *reference;
    snprintf(path, sizeof path, "%s/docs/model-format.md", NF_SOURCE_DIR);
    char *doc = read_text(path);
    const char *marker = "<!-- generated by 'nodeflow ops': do not edit by hand -->\n";
    char *at = strstr(doc, marker);
    assert_non_null(at);
    assert_ok(nf_model_reference(&reference, &err), &err);
    if (strcmp(at + strlen(marker), reference) != 0)
        fail_msg("docs/model-format.md is out of date: regenerate its reference with 'nodeflow ops'");
    free(reference);
    free(doc);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bad_models),
        cmocka_unit_test(test_round_trip_models),
        cmocka_unit_test(test_round_trip_from_c),
        cmocka_unit_test(test_train_section),
        cmocka_unit_test(test_edge_text),
        cmocka_unit_test(test_long_cycle),
        cmocka_unit_test(test_reference_matches_docs),
    };
    return cmocka_run_group_tests_name("model", tests, NULL, NULL);
}
