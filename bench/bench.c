/* nodeflow-bench — the reference workloads of bench/WORKLOADS.md.
 *
 *   nodeflow-bench W1|W2 [--threads N] [--epochs N] [--data DIR]
 *   nodeflow-bench W3 [--threads N]
 *   nodeflow-bench W4 [--threads N] [--steps N] [--data DIR]
 *   nodeflow-bench W5 [--threads N]
 *
 * Prints one JSON line. W1 (MLP) and W2 (LeNet-5): epoch_s (median
 * seconds per training epoch), test_acc (after the last epoch),
 * infer_img_s (10,000 test images at batch 256, median of 3), latency_ms
 * (median of 1,000 single-image forwards). W3 (CNN): train_img_s over 100
 * batches of 128 after 5 warm-up batches, and gflops (2 M N K per matrix
 * product of forward and backward). W5: OpenBLAS sgemm GFLOP/s for
 * 1024^3 and for W3's largest convolution (M=64, K=288, N=128*784).
 * W4 (character LSTM, models/char_lstm.nfg on the fortunes corpus):
 * train_tok_s over steps 6-205, loss_1900_2000 (mean training loss of
 * steps 1,901-2,000 when --steps reaches 2,000; default 205 steps) and
 * gen_tok_s (500 bytes generated one at a time at batch 1).
 * Only the loops are timed, not data loading. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cblas.h>

#include <nodeflow/nodeflow.h>

typedef struct options {
    const char *workload;
    int threads, epochs, steps;
    const char *data;
} options;

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int by_value(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, by_value);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

static int fail(const char *what, const nf_error *err)
{
    fprintf(stderr, "nodeflow-bench: %s: %s\n", what, err->message);
    return 1;
}

static int usage(void)
{
    fprintf(stderr, "usage: nodeflow-bench W1|W2|W3|W4|W5 [--threads N] [--epochs N] [--steps N] [--data DIR]\n");
    return 2;
}

static int parse(int argc, char **argv, options *o)
{
    *o = (options){NULL, 0, 5, 0, NULL};
    for (int i = 1; i < argc; i++) {
        const char *next = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(argv[i], "--threads") && next)
            o->threads = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--epochs") && next)
            o->epochs = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--steps") && next)
            o->steps = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--data") && next)
            o->data = argv[++i];
        else if (argv[i][0] != '-' && !o->workload)
            o->workload = argv[i];
        else
            return 0;
    }
    return o->workload && o->epochs > 0 && o->threads >= 0 &&
           (!strcmp(o->workload, "W1") || !strcmp(o->workload, "W2") || !strcmp(o->workload, "W3") ||
            !strcmp(o->workload, "W4") || !strcmp(o->workload, "W5"));
}

typedef struct model {
    nf_graph *g;
    nf_node *x, *y, *logits;
} model;

static model build_w1(void)
{
    model m;
    m.g = nf_graph_new();
    nf_graph_set_seed(m.g, 1);
    m.x = nf_input(m.g, "x", 1, (int64_t[]){784});
    m.y = nf_input(m.g, "y", 0, NULL);
    nf_node *h1 = nf_relu(m.g, "h1", nf_linear(m.g, "fc1", m.x, 256)); /* PyTorch's default init */
    nf_node *h2 = nf_relu(m.g, "h2", nf_linear(m.g, "fc2", h1, 128));
    m.logits = nf_output(m.g, "logits", nf_linear(m.g, "fc3", h2, 10));
    nf_cross_entropy_loss(m.g, "loss", m.logits, m.y);
    return m;
}

/* A model file of models/ (W2: fashion_lenet.nfg, W3: fashion_cnn.nfg). */
static int load_model(const char *file, model *m, nf_error *err)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/models/%s", NF_SOURCE_DIR, file);
    if (nf_model_load(path, &m->g, NULL, err) != NF_OK)
        return 0;
    nf_graph_init_params(m->g, 1, NULL);
    m->x = nf_graph_find(m->g, "x");
    m->y = nf_graph_find(m->g, "y");
    m->logits = nf_graph_find(m->g, "logits");
    return 1;
}

/* Median of 1,000 single-image forwards, in milliseconds. */
static int latency_ms(model *m, const nf_dataset *test, double *out, nf_error *err)
{
    nf_plan *plan;
    if (nf_plan_compile(m->g, 1, NF_PLAN_INFERENCE, &plan, err) != NF_OK)
        return 0;
    enum { RUNS = 1000 };
    static double t[RUNS];
    for (int i = 0; i < RUNS; i++) {
        double start = now();
        nf_plan_set_input(plan, m->x, test->x + (int64_t)(i % test->count) * 784, err); /* 28 x 28 */
        nf_plan_forward(plan, err);
        t[i] = now() - start;
    }
    nf_plan_free(plan);
    *out = 1e3 * median(t, RUNS);
    return 1;
}

/* W1 and W2: epochs of training, then inference throughput and latency. */
static int run_classifier(const options *o)
{
    nf_error err = {0};
    nf_dataset *train, *test;
    if (nf_dataset_load_fashion_mnist(o->data, 1, &train, &err) != NF_OK ||
        nf_dataset_load_fashion_mnist(o->data, 0, &test, &err) != NF_OK)
        return fail("loading Fashion-MNIST", &err);
    int w1 = !strcmp(o->workload, "W1");
    model m;
    if (w1)
        m = build_w1();
    else if (!load_model("fashion_lenet.nfg", &m, &err))
        return fail("loading the model", &err);
    nf_plan *plan, *eval_plan;
    nf_optimizer *opt;
    nf_batcher *batches;
    if (nf_plan_compile(m.g, 64, NF_PLAN_TRAINING, &plan, &err) != NF_OK ||
        nf_plan_compile(m.g, 256, NF_PLAN_INFERENCE, &eval_plan, &err) != NF_OK ||
        nf_optimizer_new(m.g, w1 ? "sgd" : "adam", &opt, &err) != NF_OK ||
        nf_optimizer_set(opt, "lr", w1 ? 0.05 : 1e-3, &err) != NF_OK ||
        (w1 && nf_optimizer_set(opt, "momentum", 0.9, &err) != NF_OK) ||
        nf_batcher_new(train, 64, 1, 7, &batches, &err) != NF_OK)
        return fail("setting up the workload", &err);
    nf_binding bind = {.x = m.x, .y = m.y, .scores = m.logits};
    double epoch_s[64], infer_s[3];
    nf_epoch_stats stats;
    for (int e = 0; e < o->epochs; e++) {
        double start = now();
        if (nf_train_epoch(plan, opt, batches, &bind, &stats, &err) != NF_OK)
            return fail("training", &err);
        epoch_s[e < 64 ? e : 63] = now() - start;
        fprintf(stderr, "epoch %d: %.3f s, loss %.4f\n", e + 1, epoch_s[e < 64 ? e : 63], stats.loss);
    }
    for (int r = 0; r < 3; r++) {
        double start = now();
        if (nf_evaluate(eval_plan, test, &bind, &stats, &err) != NF_OK)
            return fail("evaluating", &err);
        infer_s[r] = now() - start;
    }
    double latency;
    if (!latency_ms(&m, test, &latency, &err))
        return fail("latency", &err);
    printf("{\"workload\": \"%s\", \"threads\": %d, \"epoch_s\": %.4f, \"test_acc\": %.4f, "
           "\"infer_img_s\": %.0f, \"latency_ms\": %.4f}\n",
           o->workload, nf_threads(), median(epoch_s, o->epochs < 64 ? o->epochs : 64), stats.accuracy,
           (double)test->count / median(infer_s, 3), latency);
    nf_batcher_free(batches);
    nf_optimizer_free(opt);
    nf_plan_free(plan);
    nf_plan_free(eval_plan);
    nf_graph_free(m.g);
    nf_dataset_free(train);
    nf_dataset_free(test);
    return 0;
}

/* The matrix products of W3, forward and backward, per image: conv1 (no
 * input gradient), conv2, fc1, fc2 as 2 M N K each. */
static double w3_flops_per_image(void)
{
    double conv1 = 2.0 * 32 * 9 * 784, conv2 = 2.0 * 64 * 288 * 784, fc1 = 2.0 * 12544 * 128, fc2 = 2.0 * 128 * 10;
    return 2 * conv1 + 3 * conv2 + 3 * fc1 + 3 * fc2;
}

/* W3: images per second over 100 training batches of 128 after 5. */
static int run_w3(const options *o)
{
    nf_error err = {0};
    nf_dataset *train;
    model m;
    if (nf_dataset_load_fashion_mnist(o->data, 1, &train, &err) != NF_OK || !load_model("fashion_cnn.nfg", &m, &err))
        return fail("setting up W3", &err);
    nf_plan *plan;
    nf_optimizer *opt;
    nf_batcher *batches;
    if (nf_plan_compile(m.g, 128, NF_PLAN_TRAINING, &plan, &err) != NF_OK ||
        nf_optimizer_new(m.g, "adam", &opt, &err) != NF_OK ||
        nf_batcher_new(train, 128, 1, 7, &batches, &err) != NF_OK)
        return fail("setting up W3", &err);
    nf_binding bind = {.x = m.x, .y = m.y};
    nf_epoch_stats stats = {0};
    if (nf_train_batches(plan, opt, batches, &bind, 5, &stats, NULL, &err) != NF_OK)
        return fail("training", &err);
    double start = now();
    if (nf_train_batches(plan, opt, batches, &bind, 100, &stats, NULL, &err) != NF_OK)
        return fail("training", &err);
    double seconds = now() - start, images = 100.0 * 128;
    printf("{\"workload\": \"W3\", \"threads\": %d, \"train_img_s\": %.1f, \"gflops\": %.2f, \"loss\": %.4f}\n",
           nf_threads(), images / seconds, images * w3_flops_per_image() / seconds / 1e9, stats.loss);
    nf_batcher_free(batches);
    nf_optimizer_free(opt);
    nf_plan_free(plan);
    nf_graph_free(m.g);
    nf_dataset_free(train);
    return 0;
}

/* W4 generation: bytes per second sampling 500 bytes at batch 1. */
static int w4_generate(const unsigned char *vocab, int vocab_size, const nf_graph *trained, double *tok_s,
                       nf_error *err)
{
    model m;
    if (!load_model("char_lstm.nfg", &m, err) || nf_graph_set_window(m.g, 1, err) != NF_OK)
        return 0;
    for (int k = 0; k < nf_graph_param_count(trained); k++) { /* the trained weights */
        nf_tensor from, to;
        nf_graph_param(trained, k, NULL, &from, NULL);
        nf_graph_param(m.g, k, NULL, &to, NULL);
        memcpy(to.data, from.data, (size_t)nf_shape_size(&from.shape) * sizeof(float));
    }
    nf_plan *plan;
    if (nf_plan_compile(m.g, 1, NF_PLAN_INFERENCE, &plan, err) != NF_OK)
        return 0;
    nf_tensor y, scores;
    nf_plan_input(plan, m.y, &y, NULL);
    y.data[0] = 0;
    float id = 0;
    uint64_t rng = 1;
    double start = now();
    for (int i = 0; i < 500; i++) {
        nf_plan_set_input(plan, m.x, &id, err);
        nf_plan_forward(plan, err);
        nf_plan_value(plan, m.logits, &scores, err);
        id = (float)nf_sample(scores.data, vocab_size, 0.8, &rng);
    }
    *tok_s = 500 / (now() - start);
    (void)vocab;
    nf_plan_free(plan);
    nf_graph_free(m.g);
    return 1;
}

/* W4: the character LSTM, 32 streams of 64-byte windows; tokens per
 * second over steps 6-205, the loss of steps 1,901-2,000. */
static int run_w4(const options *o)
{
    nf_error err = {0};
    model m;
    nf_dataset *text;
    const char *corpus = o->data ? o->data : "/usr/share/games/fortunes";
    int steps = o->steps > 0 ? o->steps : 205;
    if (!load_model("char_lstm.nfg", &m, &err) || nf_dataset_load_text(corpus, 64, 32, &text, &err) != NF_OK)
        return fail("setting up W4", &err);
    nf_plan *plan;
    nf_optimizer *opt;
    nf_batcher *batches;
    if (nf_plan_compile(m.g, 32, NF_PLAN_TRAINING, &plan, &err) != NF_OK ||
        nf_optimizer_new(m.g, "adam", &opt, &err) != NF_OK || nf_optimizer_set(opt, "lr", 2e-3, &err) != NF_OK ||
        nf_optimizer_set_clipping(opt, 5.0, 0, &err) != NF_OK || nf_batcher_new(text, 32, 0, 1, &batches, &err) != NF_OK)
        return fail("setting up W4", &err);
    nf_binding bind = {.x = m.x, .y = m.y};
    double start = 0, seconds = 0, late_loss = 0;
    int late = 0;
    for (int s = 1; s <= steps; s++) {
        nf_epoch_stats stats = {0};
        if (s == 6)
            start = now();
        if (nf_train_batches(plan, opt, batches, &bind, 1, &stats, NULL, &err) != NF_OK)
            return fail("training", &err);
        if (s == 205)
            seconds = now() - start;
        if (s > 1900 && s <= 2000) {
            late_loss += stats.loss;
            late++;
        }
    }
    double gen_tok_s = 0;
    if (!w4_generate(text->vocab, text->vocab_size, m.g, &gen_tok_s, &err))
        return fail("generating", &err);
    printf("{\"workload\": \"W4\", \"threads\": %d, \"train_tok_s\": %.0f, \"gen_tok_s\": %.0f", nf_threads(),
           seconds > 0 ? 200.0 * 32 * 64 / seconds : 0.0, gen_tok_s);
    if (late)
        printf(", \"loss_1900_2000\": %.4f", late_loss / late);
    printf("}\n");
    nf_batcher_free(batches);
    nf_optimizer_free(opt);
    nf_plan_free(plan);
    nf_graph_free(m.g);
    nf_dataset_free(text);
    return 0;
}

/* GFLOP/s of C = A B for row-major A [m, k] and B [k, n], best of 5 runs. */
static double sgemm_gflops(int m, int n, int k)
{
    float *a = nf_aligned_alloc((size_t)m * k * 4), *b = nf_aligned_alloc((size_t)k * n * 4);
    float *c = nf_aligned_alloc((size_t)m * n * 4);
    for (size_t i = 0; i < (size_t)m * k; i++)
        a[i] = (float)(i % 13) * 0.01f;
    for (size_t i = 0; i < (size_t)k * n; i++)
        b[i] = (float)(i % 7) * 0.01f;
    double best = 1e30;
    for (int r = 0; r < 5; r++) {
        double start = now();
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, m, n, k, 1.0f, a, k, b, n, 0.0f, c, n);
        double t = now() - start;
        best = t < best ? t : best;
    }
    nf_aligned_free(a);
    nf_aligned_free(b);
    nf_aligned_free(c);
    return 2.0 * m * n * k / best / 1e9;
}

static int run_w5(void)
{
    printf("{\"workload\": \"W5\", \"threads\": %d, \"sgemm_1024_gflops\": %.2f, \"sgemm_w3_conv2_gflops\": %.2f}\n",
           nf_threads(), sgemm_gflops(1024, 1024, 1024), sgemm_gflops(64, 128 * 784, 288));
    return 0;
}

int main(int argc, char **argv)
{
    options o;
    if (!parse(argc, argv, &o))
        return usage();
    nf_set_threads(o.threads);
    if (!strcmp(o.workload, "W3"))
        return run_w3(&o);
    if (!strcmp(o.workload, "W4"))
        return run_w4(&o);
    if (!strcmp(o.workload, "W5"))
        return run_w5();
    return run_classifier(&o);
}
