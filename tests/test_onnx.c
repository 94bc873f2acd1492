/* ONNX models read into graphs: PyTorch's exports (tests/fixtures/
 * make_onnx.py) give PyTorch's outputs; broken and unsupported files give
 * errors that say what is wrong. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "helpers.h"

/* The model's output for the fixture's x, against PyTorch's y: within
 * 1e-5 absolute or 1e-4 relative (issue 16's bound), element by element. */
static void check_export(const char *name)
{
    char path[512], fixture_name[64];
    snprintf(path, sizeof path, "%s/tests/fixtures/onnx/%s.onnx", NF_SOURCE_DIR, name);
    snprintf(fixture_name, sizeof fixture_name, "onnx_%s.txt", name);
    fixture f;
    fixture_load(&f, fixture_name);
    const fixture_tensor *x = fixture_get(&f, "x"), *y = fixture_get(&f, "y");
    nf_graph *g;
    nf_error err;
    if (nf_onnx_load(path, &g, &err) != NF_OK)
        fail_msg("%s: %s", name, err.message);
    nf_node *in = nf_graph_find(g, "x"), *out = nf_graph_find(g, "y");
    assert_non_null(in);
    assert_non_null(out);
    nf_plan *plan;
    int64_t batch = x->shape.dim[0];
    if (nf_plan_compile(g, batch, NF_PLAN_INFERENCE, &plan, &err) != NF_OK)
        fail_msg("%s: %s", name, err.message);
    assert_int_equal(nf_plan_set_input(plan, in, x->data, &err), NF_OK);
    assert_int_equal(nf_plan_forward(plan, &err), NF_OK);
    nf_tensor v;
    assert_int_equal(nf_plan_value(plan, out, &v, &err), NF_OK);
    int64_t n = nf_shape_size(&y->shape);
    assert_int_equal(nf_shape_size(&v.shape), n);
    double worst = 0;
    for (int64_t i = 0; i < n; i++) {
        double d = fabs((double)v.data[i] - y->data[i]);
        if (d > 1e-5 && d > 1e-4 * fabs(y->data[i]))
            fail_msg("%s: output %lld is %.9g, PyTorch's %.9g", name, (long long)i, v.data[i], y->data[i]);
        worst = fmax(worst, d);
    }
    printf("onnx %s: %lld outputs, max |nodeflow - PyTorch| = %.3g\n", name, (long long)n, worst);
    nf_plan_free(plan);
    /* the last sample alone (a batch of 1): the same outputs as in the batch */
    int64_t per_x = nf_shape_size(&x->shape) / batch, per_y = n / batch;
    assert_int_equal(nf_plan_compile(g, 1, NF_PLAN_INFERENCE, &plan, &err), NF_OK);
    assert_int_equal(nf_plan_set_input(plan, in, x->data + (batch - 1) * per_x, &err), NF_OK);
    assert_int_equal(nf_plan_forward(plan, &err), NF_OK);
    assert_int_equal(nf_plan_value(plan, out, &v, &err), NF_OK);
    for (int64_t i = 0; i < per_y; i++) {
        double want = y->data[(batch - 1) * per_y + i];
        if (fabs(v.data[i] - want) > 1e-5 && fabs(v.data[i] - want) > 1e-4 * fabs(want))
            fail_msg("%s, batch of 1: output %lld is %.9g, PyTorch's %.9g", name, (long long)i, v.data[i], want);
    }
    nf_plan_free(plan);
    nf_graph_free(g);
    fixture_free(&f);
}

/* Every export of make_onnx.py. */
static void test_pytorch_exports(void **state)
{
    (void)state;
    static const char *const names[] = {"mlp",          "lenet_bn",    "global_pool", "embed_lstm", "bigru",
                                        "layernorm",    "encoder",     "encoder_post", "layernorm14",
                                        "encoder14",    "pad",         "conv1d",       "reductions"};
    for (size_t k = 0; k < sizeof names / sizeof names[0]; k++)
        check_export(names[k]);
}

/* Export round trip: an imported model exported again and imported gives
 * the same outputs, bit for bit; so do the shipped models that export
 * (their weights from their initialisation). */
/* The graph's first input node (want_input) or first output node. */
static nf_node *first_end(const nf_graph *g, int want_input)
{
    for (int i = 0; i < nf_graph_node_count(g); i++) {
        nf_node *node = nf_graph_node(g, i);
        if (want_input ? nf_node_is_input(node) : nf_node_is_output(node))
            return node;
    }
    fail_msg("the graph has no %s node", want_input ? "input" : "output");
    return NULL;
}

static void outputs_of(nf_graph *g, const float *x, int64_t batch, float *out, int64_t n)
{
    nf_plan *plan;
    nf_error err;
    nf_node *in = first_end(g, 1), *o = first_end(g, 0);
    if (nf_plan_compile(g, batch, NF_PLAN_INFERENCE, &plan, &err) != NF_OK)
        fail_msg("%s", err.message);
    assert_int_equal(nf_plan_set_input(plan, in, x, &err), NF_OK);
    assert_int_equal(nf_plan_forward(plan, &err), NF_OK);
    nf_tensor v;
    assert_int_equal(nf_plan_value(plan, o, &v, &err), NF_OK);
    assert_int_equal(nf_shape_size(&v.shape), n);
    memcpy(out, v.data, (size_t)n * sizeof(float));
    nf_plan_free(plan);
}

/* ids: the input takes token ids below this (0: values in [0, 1)). */
static void round_trip(nf_graph *g, const char *what, int ids)
{
    char path[64];
    snprintf(path, sizeof path, "/tmp/nodeflow-roundtrip-%d.onnx", (int)getpid());
    nf_error err;
    if (nf_onnx_save(g, path, &err) != NF_OK)
        fail_msg("%s: export: %s", what, err.message);
    nf_graph *again;
    if (nf_onnx_load(path, &again, &err) != NF_OK)
        fail_msg("%s: the exported file: %s", what, err.message);
    remove(path);
    nf_shape s;
    nf_node_shape(first_end(g, 1), &s, NULL);
    enum { B = 3 };
    int64_t per = nf_shape_size(&s);
    float *x = malloc((size_t)(B * per) * sizeof(float));
    uint64_t seed = 5;
    fill_uniform(x, B * per, 0, 1, &seed);
    for (int64_t k = 0; ids && k < B * per; k++)
        x[k] = floorf(x[k] * (float)ids);
    nf_node_shape(first_end(g, 0), &s, NULL);
    int64_t n = B * nf_shape_size(&s);
    float *a = malloc((size_t)n * sizeof(float)), *b = malloc((size_t)n * sizeof(float));
    outputs_of(g, x, B, a, n);
    outputs_of(again, x, B, b, n);
    if (memcmp(a, b, (size_t)n * sizeof(float)))
        fail_msg("%s: the re-imported model gives other outputs", what);
    printf("onnx round trip %s: %lld outputs, bit for bit\n", what, (long long)n);
    free(x);
    free(a);
    free(b);
    nf_graph_free(again);
}

static void test_export_round_trip(void **state)
{
    (void)state;
    static const struct {
        const char *name;
        int ids;
    } imported[] = {{"mlp", 0}, {"lenet_bn", 0}, {"global_pool", 0}, {"layernorm", 0}, {"embed_lstm", 50},
                    {"bigru", 0}, {"encoder", 0}, {"encoder_post", 0}, {"encoder14", 0}};
    for (size_t k = 0; k < sizeof imported / sizeof imported[0]; k++) {
        char path[512];
        snprintf(path, sizeof path, "%s/tests/fixtures/onnx/%s.onnx", NF_SOURCE_DIR, imported[k].name);
        nf_graph *g;
        nf_error err;
        if (nf_onnx_load(path, &g, &err) != NF_OK)
            fail_msg("%s", err.message);
        round_trip(g, imported[k].name, imported[k].ids);
        nf_graph_free(g);
    }
    static const struct {
        const char *name;
        int ids;
    } shipped[] = {{"fashion_mlp", 0}, {"fashion_lenet", 0}, {"fashion_cnn", 0}, {"fashion_best", 0},
                   {"xor", 0},         {"char_lstm", 114}, {"lstm_fused", 0},    {"char_transformer", 114}};
    for (size_t k = 0; k < sizeof shipped / sizeof shipped[0]; k++) {
        char path[512];
        snprintf(path, sizeof path, "%s/models/%s.nfg", NF_SOURCE_DIR, shipped[k].name);
        nf_graph *g;
        nf_error err;
        if (nf_model_load(path, &g, NULL, &err) != NF_OK)
            fail_msg("%s", err.message);
        round_trip(g, shipped[k].name, shipped[k].ids);
        nf_graph_free(g);
    }
}

/* The node types exported as compositions (functions of nodeflow's
 * domain, read back as the node) or as shape operators, a GRU with the
 * reset gate first, an LSTM with peepholes, mod, pad, div, 1-D convolution
 * and pools, layer-norm statistics, a transposed convolution: export,
 * re-import and the same outputs, bit for bit. */
static void test_export_ops(void **state)
{
    (void)state;
    static const char text[] =
        "nodeflow 1\n"
        "x = input shape=4x6\n"
        "g = gelu x\n"
        "gt = gelu x approximate=tanh\n"
        "si = silu x\n"
        "sp = softplus x beta=2\n"
        "ht = hardtanh x min_val=-0.5 max_val=0.7\n"
        "r6 = relu6 x\n"
        "ef = erf x\n"
        "j = concat g gt si sp ht r6 ef axis=1\n"   /* [4, 42] */
        "c = slice j axis=1 start=3 end=40\n"        /* [4, 37] */
        "t = transpose c dim0=0 dim1=1\n"             /* [37, 4] */
        "p = permute t order=1,0\n"                   /* [4, 37] */
        "m = matmul p t\n"                            /* [4, 4] */
        "a1 = attention x heads=2 causal=true\n"      /* [4, 6] */
        "a2 = attention a1 x heads=1 bias=false\n"    /* (key and value: x) */
        "rg = gru x hidden=3 linear_before_reset=false\n" /* [4, 3] */
        "md = mod x divisor=1.5\n"                    /* [4, 6] */
        "mf = mod x divisor=-1.25 fmod=true\n"
        "lp = lstm x hidden=2 peephole=true bidirectional=true\n" /* [4, 4] */
        "pc = pad x axis=1 before=1 after=2 value=0.25\n" /* [4, 9] */
        "pr = pad pc axis=0 before=2 after=1 mode=reflect\n" /* [7, 9] */
        "pe = pad pr axis=-1 before=2 mode=edge\n"    /* [7, 11] */
        "ps = slice pe axis=0 start=1 end=5\n"        /* [4, 11] */
        "sg = sigmoid x\n"
        "dv = div x sg\n"                             /* [4, 6] */
        "c1 = conv1d x out=4 kernel=3 pad_left=1 pad_right=2 dilation=2\n" /* [4, 5] */
        "mp = maxpool1d c1 kernel=2 stride=1\n"       /* [4, 4] */
        "ap = avgpool1d x kernel=3 stride=2 padding=1\n" /* [4, 3] */
        "o1 = concat m a2 rg md mf lp axis=1\n"       /* [4, 29] (at most 8 inputs) */
        "lm = layernorm x affine=false output=mean\n" /* [4, 1] */
        "li = layernorm x affine=false output=inv_std_dev eps=0.01\n"
        "x3 = reshape x shape=2x2x6\n"
        "ct = conv_transpose2d x3 out=2 kernel=2x3 stride=2x1 padding=0x1 output_padding=1x0 dilation=1x2 groups=2\n"
        "cf = reshape ct shape=4x20\n"                /* [2, 5, 8] as [4, 20] */
        "o2 = concat o1 ps dv c1 axis=1\n"
        "o3 = concat o2 mp ap lm li cf axis=1\n"      /* [4, 80] */
        "a3 = attention x x heads=2\n"                /* an input twice */
        "a4 = attention x sg dv heads=3\n"            /* query, key, value */
        "o4 = concat o3 a3 a4 axis=1\n"               /* [4, 92] */
        "ex = exp x\n"
        "ab = abs x\n"
        "sq = sqrt sg\n"
        "lg = log sg\n"
        "o5 = concat o4 ex ab sq lg axis=1\n"         /* [4, 116] */
        "rmx = reduce_max x\n"                        /* [4, 1] */
        "rmn = reduce_max x min=true\n"
        "amx = reduce_max x output=indices last=true\n"
        "amn = reduce_max x min=true output=indices\n"
        "o = concat o5 rmx rmn amx amn axis=1\n"      /* [4, 120] */
        "y = output o\n";
    nf_graph *g;
    nf_error err;
    assert_int_equal(nf_model_parse(text, sizeof text - 1, "ops.nfg", &g, NULL, &err), NF_OK);
    char path[64];
    snprintf(path, sizeof path, "/tmp/nodeflow-ops-%d.onnx", (int)getpid());
    if (nf_onnx_save(g, path, &err) != NF_OK)
        fail_msg("export: %s", err.message);
    nf_graph *again;
    if (nf_onnx_load(path, &again, &err) != NF_OK)
        fail_msg("the exported file: %s", err.message);
    remove(path);
    enum { B = 3, N = B * 480 };
    float x[B * 24], a[N], b[N];
    uint64_t seed = 9;
    fill_uniform(x, B * 24, -3, 3, &seed);
    outputs_of(g, x, B, a, N);
    outputs_of(again, x, B, b, N);
    double worst = 0;
    for (int k = 0; k < N; k++)
        worst = fmax(worst, fabs((double)a[k] - b[k]) / (1 + fabs((double)a[k])));
    printf("onnx export of composed and shape ops and attention: %d outputs, max relative difference %.3g\n", N,
           worst);
    assert_true(worst == 0);
    nf_graph_free(g);
    nf_graph_free(again);
}

/* What does not export says so, naming the node. */
static void test_export_refusals(void **state)
{
    (void)state;
    static const char text[] = "nodeflow 1\nx = input shape=5x8\nh = lstm x hidden=3 output=cell\ny = output h\n";
    nf_graph *g;
    nf_error err;
    assert_int_equal(nf_model_parse(text, sizeof text - 1, "t.nfg", &g, NULL, &err), NF_OK);
    assert_int_equal(nf_onnx_save(g, "/tmp/nodeflow-never.onnx", &err), NF_ERR_STATE);
    assert_non_null(strstr(err.message, "lstm 'h'"));
    FILE *f = fopen("/tmp/nodeflow-never.onnx", "rb");
    assert_null(f); /* nothing written */
    nf_graph_free(g);
}

/* The imported graph keeps ONNX's names where they are identifiers and
 * its weights in nodeflow's names: Gemm "/fc1/Gemm" becomes linear
 * "fc1_Gemm" with fc1_Gemm.weight. */
static void test_names_and_weights(void **state)
{
    (void)state;
    char path[512];
    snprintf(path, sizeof path, "%s/tests/fixtures/onnx/mlp.onnx", NF_SOURCE_DIR);
    nf_graph *g;
    nf_error err;
    assert_int_equal(nf_onnx_load(path, &g, &err), NF_OK);
    int linear = 0;
    for (int i = 0; i < nf_graph_node_count(g); i++)
        linear += !strcmp(nf_node_op(nf_graph_node(g, i)), "linear");
    assert_int_equal(linear, 2);
    assert_int_equal(nf_graph_param_count(g), 4);
    nf_graph_free(g);
}

/* A real model: W2 (LeNet-5) trained one epoch in PyTorch and exported
 * (tests/fixtures/make_onnx_w2.py), on the 10,000 Fashion-MNIST test
 * images: the same class as PyTorch for at least 9,995 of them, the
 * accuracy within 0.05 points. */
static void test_real_w2(void **state)
{
    (void)state;
    nf_dataset *ds;
    nf_error err;
    if (nf_dataset_load_spec("fashion-mnist:test", &ds, &err) != NF_OK) {
        printf("onnx w2: no Fashion-MNIST (%s): skipped\n", err.message);
        skip();
    }
    char path[512];
    snprintf(path, sizeof path, "%s/tests/fixtures/onnx/w2_lenet.onnx", NF_SOURCE_DIR);
    nf_graph *g;
    if (nf_onnx_load(path, &g, &err) != NF_OK)
        fail_msg("w2: %s", err.message);
    fixture f;
    fixture_load(&f, "onnx_w2.txt");
    const fixture_tensor *pred = fixture_get(&f, "pred"), *acc = fixture_get(&f, "accuracy");
    assert_int_equal(nf_shape_size(&pred->shape), ds->count);
    enum { B = 500 };
    nf_plan *plan;
    assert_int_equal(nf_plan_compile(g, B, NF_PLAN_INFERENCE, &plan, &err), NF_OK);
    nf_node *x = nf_graph_find(g, "x"), *scores = nf_graph_find(g, "scores");
    int64_t per = nf_shape_size(&ds->x_shape), same = 0, correct = 0;
    for (int64_t at = 0; at < ds->count; at += B) {
        int64_t rows = ds->count - at < B ? ds->count - at : B;
        assert_int_equal(nf_plan_set_batch(plan, rows, &err), NF_OK);
        assert_int_equal(nf_plan_set_input(plan, x, ds->x + at * per, &err), NF_OK);
        assert_int_equal(nf_plan_forward(plan, &err), NF_OK);
        nf_tensor v;
        assert_int_equal(nf_plan_value(plan, scores, &v, &err), NF_OK);
        for (int64_t r = 0; r < rows; r++) {
            int best = 0;
            for (int c = 1; c < 10; c++)
                if (v.data[r * 10 + c] > v.data[r * 10 + best])
                    best = c;
            same += best == (int)pred->data[at + r];
            correct += best == (int)ds->y[at + r];
        }
    }
    double accuracy = (double)correct / (double)ds->count;
    printf("onnx w2: the same class as PyTorch for %lld of %lld test images; accuracy %.2f%% (PyTorch %.2f%%)\n",
           (long long)same, (long long)ds->count, 100 * accuracy, 100 * acc->data[0]);
    assert_true(same >= 9995);
    assert_true(fabs(accuracy - acc->data[0]) <= 0.0005);
    nf_plan_free(plan);
    nf_graph_free(g);
    fixture_free(&f);
    nf_dataset_free(ds);
}

/* ---- bad files ------------------------------------------------------------ */

/* Protobuf by hand: a varint, a length-delimited field. */
typedef struct {
    unsigned char b[4096];
    size_t n;
} buf;

static void varint(buf *o, uint64_t v)
{
    do {
        o->b[o->n++] = (unsigned char)((v & 0x7f) | (v > 0x7f ? 0x80 : 0));
        v >>= 7;
    } while (v);
}

static void field_varint(buf *o, int field, uint64_t v)
{
    varint(o, (uint64_t)field << 3);
    varint(o, v);
}

static void field_bytes(buf *o, int field, const void *data, size_t len)
{
    varint(o, (uint64_t)field << 3 | 2);
    varint(o, len);
    memcpy(o->b + o->n, data, len);
    o->n += len;
}

static void field_msg(buf *o, int field, const buf *m) { field_bytes(o, field, m->b, m->n); }

/* A model: ir_version, one opset (domain, version) and a graph. */
static buf model(int64_t ir, const char *domain, int64_t opset, const buf *graph)
{
    buf m = {{0}, 0}, o = {{0}, 0};
    field_varint(&m, 1, (uint64_t)ir);
    if (domain)
        field_bytes(&o, 1, domain, strlen(domain));
    field_varint(&o, 2, (uint64_t)opset);
    field_msg(&m, 8, &o);
    if (graph)
        field_msg(&m, 7, graph);
    return m;
}

static buf graph_typed(const char *op, int elem_type, uint64_t width, const buf *extra_node_fields,
                       const buf *initializer);

/* A graph with input x [N, 4] (float) and one node of `op` x -> y. */
static buf graph_with(const char *op, const buf *extra_node_fields, const buf *initializer)
{
    return graph_typed(op, 1, 4, extra_node_fields, initializer);
}

/* The same with x [N, width] of ONNX element type elem_type. */
static buf graph_typed(const char *op, int elem_type, uint64_t width, const buf *extra_node_fields,
                       const buf *initializer)
{
    buf g = {{0}, 0}, node = {{0}, 0}, vi = {{0}, 0}, type = {{0}, 0}, tensor = {{0}, 0}, shape = {{0}, 0};
    buf d0 = {{0}, 0}, d1 = {{0}, 0}, out = {{0}, 0};
    field_bytes(&node, 1, "x", 1);
    field_bytes(&node, 2, "y", 1);
    field_bytes(&node, 3, "n1", 2);
    field_bytes(&node, 4, op, strlen(op));
    if (extra_node_fields) {
        memcpy(node.b + node.n, extra_node_fields->b, extra_node_fields->n);
        node.n += extra_node_fields->n;
    }
    field_msg(&g, 1, &node);
    field_bytes(&g, 2, "g", 1);
    if (initializer)
        field_msg(&g, 5, initializer);
    field_bytes(&d0, 2, "N", 1);  /* dim_param */
    field_varint(&d1, 1, width);  /* dim_value */
    field_msg(&shape, 1, &d0);
    field_msg(&shape, 1, &d1);
    field_varint(&tensor, 1, (uint64_t)elem_type);
    field_msg(&tensor, 2, &shape);
    field_msg(&type, 1, &tensor);
    field_bytes(&vi, 1, "x", 1);
    field_msg(&vi, 2, &type);
    field_msg(&g, 11, &vi);
    field_bytes(&out, 1, "y", 1);
    field_msg(&g, 12, &out);
    return g;
}

/* *a (n bytes) made field `field` of a message that starts with `head`,
 * through the spare buffer *b. */
static void enclose(unsigned char **a, unsigned char **b, size_t *n, buf *head, int field)
{
    varint(head, (uint64_t)field << 3 | 2);
    varint(head, *n);
    memcpy(*b, head->b, head->n);
    memcpy(*b + head->n, *a, *n);
    *n += head->n;
    unsigned char *t = *a;
    *a = *b, *b = t;
}

/* A model whose graph input's type nests 5,000 sequence types deep (a
 * few KB): refused, not a stack overflow inside protobuf-c. */
static void deep_nesting(void)
{
    size_t cap = 1 << 20, n = 0;
    unsigned char *a = malloc(cap), *b = malloc(cap);
    for (int level = 0; level < 5000; level++) { /* TypeProto{sequence_type: Sequence{elem_type: inner}} */
        for (int wrap = 0; wrap < 2; wrap++) {
            buf head = {{0}, 0};
            enclose(&a, &b, &n, &head, wrap == 0 ? 1 : 4);
        }
    }
    /* ValueInfoProto{name: "x", type: ...}, GraphProto{input: ...}, ModelProto{ir 7, opset 14, graph} */
    const int fields[3] = {2, 11, 7};
    for (int k = 0; k < 3; k++) {
        buf head = {{0}, 0};
        if (k == 2) {
            field_varint(&head, 1, 7);
            buf o = {{0}, 0};
            field_varint(&o, 2, 14);
            field_msg(&head, 8, &o);
        }
        if (k == 0)
            field_bytes(&head, 1, "x", 1);
        enclose(&a, &b, &n, &head, fields[k]);
    }
    nf_graph *g = NULL;
    nf_error err;
    assert_int_not_equal(nf_onnx_parse(a, n, "deep.onnx", &g, &err), NF_OK);
    assert_non_null(strstr(err.message, "nested more than"));
    free(a);
    free(b);
}

static void expect_error(const buf *b, const char *what, const char *fragment)
{
    nf_graph *g = NULL;
    nf_error err;
    nf_status st = nf_onnx_parse(b->b, b->n, "bad.onnx", &g, &err);
    if (st == NF_OK)
        fail_msg("%s: accepted", what);
    assert_null(g);
    if (!strstr(err.message, fragment))
        fail_msg("%s: the error '%s' does not say '%s'", what, err.message, fragment);
}

/* A string attribute: name, s, type STRING. */
static void string_attr(buf *node, const char *name, const char *value)
{
    buf a = {{0}, 0};
    field_bytes(&a, 1, name, strlen(name));
    field_bytes(&a, 4, value, strlen(value));
    field_varint(&a, 20, 3);
    field_msg(node, 5, &a);
}

/* Calls of nodeflow's own domain (the functions its export writes) that
 * do not make a node: refused with what is wrong. */
static void nodeflow_calls(void)
{
    static const struct {
        const char *op, *attr, *value, *error;
        int version;
    } cases[] = {
        {"memory", NULL, NULL, "needs nodeflow_op, one of gelu", 1},
        {"gelu", "bogus", "1", "bogus", 1},
        {"gelu", "approximate", "sideways", "attribute 'approximate'", 1},
        {"gelu", NULL, NULL, "version 2 is not supported", 2},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        buf fields = {{0}, 0}, own = {{0}, 0};
        field_bytes(&fields, 7, "ai.nodeflow", 11);
        string_attr(&fields, "nodeflow_op", cases[k].op);
        if (cases[k].attr)
            string_attr(&fields, cases[k].attr, cases[k].value);
        buf g = graph_with("gelu.n1", &fields, NULL);
        buf m = model(8, NULL, 14, &g);
        field_bytes(&own, 1, "ai.nodeflow", 11);
        field_varint(&own, 2, (uint64_t)cases[k].version);
        field_msg(&m, 8, &own);
        expect_error(&m, cases[k].op, cases[k].error);
    }
}

static void test_bad_files(void **state)
{
    (void)state;
    buf g = graph_with("Relu", NULL, NULL);
    buf good = model(7, NULL, 14, &g);
    nf_graph *ok;
    nf_error err;
    if (nf_onnx_parse(good.b, good.n, "good.onnx", &ok, &err) != NF_OK)
        fail_msg("the hand-made model: %s", err.message);
    nf_graph_free(ok);

    buf cut = good;
    for (size_t n = 0; n < good.n; n += 7) { /* truncated anywhere: an error (some cuts still parse) */
        cut.n = n;
        nf_graph *g2 = NULL;
        if (nf_onnx_parse(cut.b, cut.n, "cut.onnx", &g2, &err) == NF_OK)
            nf_graph_free(g2);
    }
    cut.n = good.n - 1;
    expect_error(&cut, "truncated", "malformed or truncated");
    buf long_varint = {{0}, 0};
    varint(&long_varint, 1 << 3);
    for (int k = 0; k < 11; k++)
        long_varint.b[long_varint.n++] = 0xff;
    long_varint.b[long_varint.n++] = 0x01;
    expect_error(&long_varint, "a varint over 10 bytes", "malformed");
    buf past = {{0}, 0};
    varint(&past, 7 << 3 | 2);
    varint(&past, 1000);
    expect_error(&past, "a length past the end", "malformed");

    deep_nesting();
    buf m = model(9, NULL, 14, &g);
    expect_error(&m, "IR version 9", "IR version 9");
    m = model(7, NULL, 18, &g);
    expect_error(&m, "opset 18", "opset 18");
    m = model(7, "com.microsoft", 1, &g);
    expect_error(&m, "another domain", "'com.microsoft'");
    buf unknown = graph_with("Einsum", NULL, NULL);
    m = model(7, NULL, 14, &unknown);
    expect_error(&m, "an unknown operator", "node 'n1' (Einsum, opset 14): the operator is not supported");

    /* an initializer whose raw data does not match its dims */
    buf t = {{0}, 0};
    field_varint(&t, 1, 3);
    field_varint(&t, 1, 4);
    field_varint(&t, 2, 1);
    field_bytes(&t, 8, "w", 1);
    field_bytes(&t, 9, "0123456789", 10);
    buf with_t = graph_with("Relu", NULL, &t);
    m = model(7, NULL, 14, &with_t);
    expect_error(&m, "raw_data size", "12 elements of 4 bytes, but the tensor holds 10 bytes");
    /* dims whose product overflows */
    buf big = {{0}, 0};
    field_varint(&big, 1, (uint64_t)1 << 40);
    field_varint(&big, 1, (uint64_t)1 << 40);
    field_varint(&big, 2, 1);
    field_bytes(&big, 8, "w", 1);
    buf with_big = graph_with("Relu", NULL, &big);
    m = model(7, NULL, 14, &with_big);
    expect_error(&m, "dims overflow", "too large");
    /* external data */
    buf ext = {{0}, 0};
    field_varint(&ext, 1, 2);
    field_varint(&ext, 2, 1);
    field_bytes(&ext, 8, "w", 1);
    field_varint(&ext, 14, 1);
    buf with_ext = graph_with("Relu", NULL, &ext);
    m = model(7, NULL, 14, &with_ext);
    expect_error(&m, "external data", "external file");
    /* an attribute the mapping does not know */
    buf attr = {{0}, 0}, a = {{0}, 0};
    field_bytes(&a, 1, "beta", 4);
    field_varint(&a, 20, 1);
    field_msg(&attr, 5, &a);
    buf odd = graph_with("Relu", &attr, NULL);
    m = model(7, NULL, 14, &odd);
    expect_error(&m, "an unknown attribute", "attribute 'beta' is not supported");
    nodeflow_calls();
    /* integers held as floats: division would not truncate */
    buf second = {{0}, 0};
    field_bytes(&second, 1, "x", 1);
    static const int int_types[] = {7, 6, 2}; /* int64, int32, uint8 */
    for (int k = 0; k < 3; k++) {
        buf ints = graph_typed("Div", int_types[k], 4, &second, NULL);
        m = model(7, NULL, 14, &ints);
        expect_error(&m, "Div of integers", "Div of integer values");
        buf mean = graph_typed("ReduceMean", int_types[k], 4, NULL, NULL);
        m = model(7, NULL, 14, &mean);
        expect_error(&m, "ReduceMean of integers", "ReduceMean of integer values");
    }
    /* a tensor with no elements ([N, 0]) reaches only Reshape, Flatten and Identity */
    buf empty = graph_typed("Relu", 1, 0, NULL, NULL);
    m = model(7, NULL, 14, &empty);
    expect_error(&m, "Relu of no elements", "input 'x' has no elements; only Reshape, Flatten and Identity");
    nf_graph *flat;
    buf empty_flat = graph_typed("Flatten", 1, 0, NULL, NULL);
    m = model(7, NULL, 14, &empty_flat);
    if (nf_onnx_parse(m.b, m.n, "empty.onnx", &flat, &err) != NF_OK)
        fail_msg("Flatten of no elements: %s", err.message);
    nf_graph_free(flat);
}

int main(void)
{
    if (!nf_onnx_available()) {
        printf("onnx: this build reads no ONNX files (Meson feature 'onnx'): skipped\n");
        return 77;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pytorch_exports),
        cmocka_unit_test(test_names_and_weights),
        cmocka_unit_test(test_export_round_trip),
        cmocka_unit_test(test_export_ops),
        cmocka_unit_test(test_export_refusals),
        cmocka_unit_test(test_real_w2),
        cmocka_unit_test(test_bad_files),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
