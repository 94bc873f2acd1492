/* nodeflow-bench — the reference workloads of shared/bench/WORKLOADS.md.
 *
 *   nodeflow-bench W1 [--threads N] [--epochs N] [--data DIR]
 *
 * Prints one JSON line: workload, threads, epoch_s (median seconds per
 * training epoch), test_acc (after the last epoch), infer_img_s (10,000
 * test images at batch 256, median of 3), latency_ms (median of 1,000
 * single-image forwards). Only the loops are timed, not data loading. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <nodeflow/nodeflow.h>

typedef struct options {
    const char *workload;
    int threads, epochs;
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
    fprintf(stderr, "usage: nodeflow-bench W1 [--threads N] [--epochs N] [--data DIR]\n");
    return 2;
}

static int parse(int argc, char **argv, options *o)
{
    *o = (options){NULL, 0, 5, NULL};
    for (int i = 1; i < argc; i++) {
        const char *next = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(argv[i], "--threads") && next)
            o->threads = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--epochs") && next)
            o->epochs = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--data") && next)
            o->data = argv[++i];
        else if (argv[i][0] != '-' && !o->workload)
            o->workload = argv[i];
        else
            return 0;
    }
    return o->workload && !strcmp(o->workload, "W1") && o->epochs > 0 && o->threads >= 0;
}

typedef struct w1 {
    nf_graph *g;
    nf_node *x, *y, *logits;
} w1;

static w1 build_w1(void)
{
    w1 m;
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

/* Median of 1,000 single-image forwards, in milliseconds. */
static int latency_ms(w1 *m, const nf_dataset *test, double *out, nf_error *err)
{
    nf_plan *plan;
    if (nf_plan_compile(m->g, 1, NF_PLAN_INFERENCE, &plan, err) != NF_OK)
        return 0;
    enum { RUNS = 1000 };
    static double t[RUNS];
    for (int i = 0; i < RUNS; i++) {
        double start = now();
        nf_plan_set_input(plan, m->x, test->x + (int64_t)(i % test->count) * 784, err);
        nf_plan_forward(plan, err);
        t[i] = now() - start;
    }
    nf_plan_free(plan);
    *out = 1e3 * median(t, RUNS);
    return 1;
}

static int run_w1(const options *o)
{
    nf_error err = {0};
    nf_dataset *train, *test;
    if (nf_dataset_load_fashion_mnist(o->data, 1, &train, &err) != NF_OK ||
        nf_dataset_load_fashion_mnist(o->data, 0, &test, &err) != NF_OK)
        return fail("loading Fashion-MNIST", &err);
    w1 m = build_w1();
    nf_plan *plan, *eval_plan;
    nf_optimizer *opt;
    nf_batcher *batches;
    if (nf_plan_compile(m.g, 64, NF_PLAN_TRAINING, &plan, &err) != NF_OK ||
        nf_plan_compile(m.g, 256, NF_PLAN_INFERENCE, &eval_plan, &err) != NF_OK ||
        nf_optimizer_new(m.g, "sgd", &opt, &err) != NF_OK || nf_optimizer_set(opt, "lr", 0.05, &err) != NF_OK ||
        nf_optimizer_set(opt, "momentum", 0.9, &err) != NF_OK ||
        nf_batcher_new(train, 64, 1, 7, &batches, &err) != NF_OK)
        return fail("setting up W1", &err);
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
    printf("{\"workload\": \"W1\", \"threads\": %d, \"epoch_s\": %.4f, \"test_acc\": %.4f, "
           "\"infer_img_s\": %.0f, \"latency_ms\": %.4f}\n",
           nf_threads(), median(epoch_s, o->epochs < 64 ? o->epochs : 64), stats.accuracy,
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

int main(int argc, char **argv)
{
    options o;
    if (!parse(argc, argv, &o))
        return usage();
    nf_set_threads(o.threads);
    return run_w1(&o);
}
