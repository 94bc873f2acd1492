/* nodeflow-bench — the reference workloads of bench/WORKLOADS.md.
 *
 *   nodeflow-bench W1|W2 [--threads N] [--epochs N] [--data DIR]
 *   nodeflow-bench W3 [--threads N]
 *   nodeflow-bench W4|W6 [--threads N] [--steps N] [--data DIR]
 *   nodeflow-bench W5 [--threads N]
 *
 * Prints one JSON line. W1 (MLP) and W2 (LeNet-5): epoch_s (median
 * seconds per training epoch), test_acc (after the last epoch),
 * infer_img_s (10,000 test images at batch 256, median of 3), latency_ms
 * (median of 1,000 single-image forwards). W3 (CNN): train_img_s over 100
 * batches of 128 after 5 warm-up batches, and gflops (2 M N K per matrix
 * product of forward and backward). W5: sgemm GFLOP/s of every kernel set
 * for 1024^3 and (but the reference) for W3's largest convolution (M=64,
 * K=288, N=128*784).
 * W4 (character LSTM, models/char_lstm.nfg on the fortunes corpus):
 * train_tok_s over steps 6-205, loss_1900_2000 (mean training loss of
 * steps 1,901-2,000 when --steps reaches 2,000; default 205 steps) and
 * gen_tok_s (the median of three rounds of 500 bytes generated one at a
 * time at batch 1, after 20 untimed). W6 (character
 * transformer, models/char_transformer.nfg): the same figures; its
 * generation runs the whole 64-byte window per byte (no key/value cache).
 * Only the loops are timed, not data loading. Every workload trains its
 * model file (models/) with its [train] settings, through the library's
 * training session, as `nodeflow train` does. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <nodeflow/nodeflow.h>

#include "kernels/kernels.h"

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
    fprintf(stderr, "usage: nodeflow-bench W1|W2|W3|W4|W5|W6 [--threads N] [--epochs N] [--steps N] [--data DIR]\n");
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
            !strcmp(o->workload, "W4") || !strcmp(o->workload, "W5") ||
            !strcmp(o->workload, "W6"));
}

/* A model file of models/ with its [train] settings, as a session with
 * `epochs` and `steps` over them (0: the file's), data loaded. */
typedef struct workload {
    nf_graph *g;
    nf_session *session;
} workload;

static int open_workload(const char *file, int64_t epochs, int64_t steps, const char *train, const char *val,
                         workload *w, nf_error *err)
{
    char path[1024];
    nf_train_config cfg;
    snprintf(path, sizeof path, "%s/models/%s", NF_SOURCE_DIR, file);
    memset(w, 0, sizeof *w);
    if (nf_model_load(path, &w->g, &cfg, err) != NF_OK)
        return 0;
    if (epochs > 0)
        cfg.epochs = epochs;
    if (steps > 0)
        cfg.steps = steps;
    return nf_session_new(w->g, &cfg, &w->session, err) == NF_OK &&
           nf_session_load_data(w->session, train, val, err) == NF_OK;
}

static void close_workload(workload *w)
{
    nf_session_free(w->session);
    nf_graph_free(w->g);
}

/* What the session's callbacks gather: seconds per epoch, the last
 * validation accuracy, the time of batches [from, to] and the losses of
 * single batches. */
typedef struct timing {
    double epoch_s[64];
    int epochs;
    double test_acc;
    int64_t from, to;            /* batches (steps, from 1) timed */
    double start, seconds;
    double loss_sum, samples;    /* the epoch's running sums at the last batch */
    double late_loss;            /* W4: the sum of the losses of steps 1,901-2,000 */
    int late;
} timing;

static void on_batch(void *ctx, const nf_session_progress *p)
{
    timing *t = ctx;
    if (p->step == t->from - 1)
        t->start = now();
    if (p->step == t->to)
        t->seconds = now() - t->start;
    if (p->batches == 1) /* a new epoch: its sums start afresh */
        t->loss_sum = t->samples = 0;
    double batch_loss = (p->train->loss_sum - t->loss_sum) / ((double)p->train->samples - t->samples);
    t->loss_sum = p->train->loss_sum;
    t->samples = (double)p->train->samples;
    if (p->step > 1900 && p->step <= 2000) {
        t->late_loss += batch_loss;
        t->late++;
    }
}

static void on_epoch(void *ctx, const nf_session_progress *p)
{
    timing *t = ctx;
    t->epoch_s[t->epochs < 64 ? t->epochs++ : 63] = p->seconds;
    t->test_acc = p->val ? p->val->accuracy : -1;
    fprintf(stderr, "epoch %lld: %.3f s, loss %.4f\n", (long long)p->epoch, p->seconds, p->train->loss);
}

static nf_status train(workload *w, timing *t, nf_error *err)
{
    nf_session_events events = {t, on_batch, on_epoch, NULL};
    nf_session_set_events(w->session, &events);
    return nf_session_run(w->session, err);
}

/* Median of 1,000 single-image forwards, in milliseconds. */
static int latency_ms(nf_graph *g, const nf_binding *bind, const nf_dataset *test, double *out, nf_error *err)
{
    nf_plan *plan;
    if (nf_plan_compile(g, 1, NF_PLAN_INFERENCE, &plan, err) != NF_OK)
        return 0;
    enum { RUNS = 1000 };
    static double t[RUNS];
    int64_t size = test->x_shape.dim[0] * test->x_shape.dim[1] * test->x_shape.dim[2];
    for (int i = 0; i < RUNS; i++) {
        double start = now();
        nf_plan_set_input(plan, bind->x, test->x + (int64_t)(i % test->count) * size, err);
        nf_plan_forward(plan, err);
        t[i] = now() - start;
    }
    nf_plan_free(plan);
    *out = 1e3 * median(t, RUNS);
    return 1;
}

static void fashion_spec(const options *o, const char *part, char *buf, size_t size)
{
    if (o->data)
        snprintf(buf, size, "idx:%s/%s-images-idx3-ubyte.gz,%s/%s-labels-idx1-ubyte.gz", o->data,
                 !strcmp(part, "train") ? "train" : "t10k", o->data, !strcmp(part, "train") ? "train" : "t10k");
    else
        snprintf(buf, size, "fashion-mnist:%s", part);
}

/* W1 and W2: epochs of training (validated on the test images), then
 * inference throughput and latency. */
static int run_classifier(const options *o)
{
    nf_error err = {0};
    char train_spec[2048], test_spec[2048];
    fashion_spec(o, "train", train_spec, sizeof train_spec);
    fashion_spec(o, "test", test_spec, sizeof test_spec);
    workload w;
    timing t = {0};
    const char *file = !strcmp(o->workload, "W1") ? "fashion_mlp.nfg" : "fashion_lenet.nfg";
    if (!open_workload(file, o->epochs, 0, train_spec, test_spec, &w, &err))
        return fail("setting up the workload", &err);
    if (train(&w, &t, &err) != NF_OK)
        return fail("training", &err);
    nf_dataset *test;
    nf_plan *eval_plan;
    nf_binding bind;
    double infer_s[3], latency;
    nf_epoch_stats stats;
    if (nf_dataset_load_spec(test_spec, &test, &err) != NF_OK || nf_binding_find(w.g, &bind, &err) != NF_OK ||
        nf_plan_compile(w.g, 256, NF_PLAN_INFERENCE, &eval_plan, &err) != NF_OK)
        return fail("setting up inference", &err);
    for (int r = 0; r < 3; r++) {
        double start = now();
        if (nf_evaluate(eval_plan, test, &bind, &stats, &err) != NF_OK)
            return fail("evaluating", &err);
        infer_s[r] = now() - start;
    }
    if (!latency_ms(w.g, &bind, test, &latency, &err))
        return fail("latency", &err);
    printf("{\"workload\": \"%s\", \"threads\": %d, \"epoch_s\": %.4f, \"test_acc\": %.4f, "
           "\"infer_img_s\": %.0f, \"latency_ms\": %.4f}\n",
           o->workload, nf_threads(), median(t.epoch_s, t.epochs), t.test_acc, (double)test->count / median(infer_s, 3),
           latency);
    nf_plan_free(eval_plan);
    nf_dataset_free(test);
    close_workload(&w);
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
    char train_spec[2048];
    fashion_spec(o, "train", train_spec, sizeof train_spec);
    workload w;
    timing t = {.from = 6, .to = 105};
    if (!open_workload("fashion_cnn.nfg", 1, 105, train_spec, NULL, &w, &err))
        return fail("setting up W3", &err);
    if (train(&w, &t, &err) != NF_OK)
        return fail("training", &err);
    double images = 100.0 * nf_session_config(w.session)->batch;
    printf("{\"workload\": \"W3\", \"threads\": %d, \"train_img_s\": %.1f, \"gflops\": %.2f, \"loss\": %.4f}\n",
           nf_threads(), images / t.seconds, images * w3_flops_per_image() / t.seconds / 1e9,
           t.samples > 0 ? t.loss_sum / t.samples : 0.0);
    close_workload(&w);
    return 0;
}

/* Generation: bytes per second sampling 500 bytes at batch 1 with the
 * trained weights. A recurrent model (W4) runs one token per run with its
 * window set to one step; a window model (W6, no key/value cache) runs
 * its whole window per token, the context left-aligned, and samples from
 * the scores of the context's last position (as nodeflow generate). */
static int generate_tok_s(const char *file, const nf_graph *trained, double *tok_s, nf_error *err)
{
    char path[1024];
    nf_graph *g;
    snprintf(path, sizeof path, "%s/models/%s", NF_SOURCE_DIR, file);
    if (nf_model_load(path, &g, NULL, err) != NF_OK)
        return 0;
    int recurrent = nf_graph_has_recurrence(g);
    if (recurrent && nf_graph_set_window(g, 1, err) != NF_OK)
        return 0;
    for (int k = 0; k < nf_graph_param_count(trained); k++) {
        nf_tensor from, to;
        nf_graph_param(trained, k, NULL, &from, NULL);
        nf_graph_param(g, k, NULL, &to, NULL);
        memcpy(to.data, from.data, (size_t)nf_shape_size(&from.shape) * sizeof(float));
    }
    nf_plan *plan;
    nf_binding bind;
    if (nf_binding_find(g, &bind, err) != NF_OK || nf_plan_compile(g, 1, NF_PLAN_INFERENCE, &plan, err) != NF_OK)
        return 0;
    nf_tensor x, scores;
    nf_plan_input(plan, bind.x, &x, NULL);
    int64_t window = nf_shape_size(&x.shape), used = 0;
    memset(x.data, 0, (size_t)window * sizeof(float));
    if (bind.y) {
        nf_tensor y;
        nf_plan_input(plan, bind.y, &y, NULL);
        memset(y.data, 0, (size_t)nf_shape_size(&y.shape) * sizeof(float));
    }
    float id = 0;
    uint64_t rng = 1;
    /* 20 bytes untimed (first-run costs: pages, the kernels' set-up), then
     * three rounds of 500: the median (one round of a few milliseconds
     * alone swings by 4x on a busy machine) */
    double rounds[3];
    for (int round = -1; round < 3; round++) {
        int tokens = round < 0 ? 20 : 500;
        double start = now();
        for (int i = 0; i < tokens; i++) {
            if (used == window) /* a full context (a recurrent model's is one token): the oldest leaves */
                memmove(x.data, x.data + 1, (size_t)(--used) * sizeof(float));
            x.data[used++] = id;
            nf_plan_forward(plan, err);
            nf_plan_value(plan, bind.scores, &scores, err);
            int64_t vocab = scores.shape.dim[scores.shape.rank - 1];
            id = (float)nf_sample(scores.data + (used - 1) * vocab, vocab, 0.8, &rng);
        }
        if (round >= 0) {
            rounds[round] = tokens / (now() - start);
            fprintf(stderr, "generation round %d: %.0f tokens/s\n", round + 1, rounds[round]);
        }
    }
    *tok_s = median(rounds, 3);
    nf_plan_free(plan);
    nf_graph_free(g);
    return 1;
}

/* W4 and W6: a character model on the fortunes corpus, batches of 32
 * 64-byte windows; tokens per second over steps 6-205, the loss of steps
 * 1,901-2,000, generation speed. */
static int run_text(const options *o, const char *file)
{
    nf_error err = {0};
    char spec[2048];
    snprintf(spec, sizeof spec, "text:%s", o->data ? o->data : "/usr/share/games/fortunes");
    workload w;
    timing t = {.from = 6, .to = 205};
    int steps = o->steps > 0 ? o->steps : 205;
    if (!open_workload(file, 1000000, steps, spec, NULL, &w, &err))
        return fail("setting up the workload", &err);
    if (train(&w, &t, &err) != NF_OK)
        return fail("training", &err);
    double gen_tok_s = 0;
    if (!generate_tok_s(file, w.g, &gen_tok_s, &err))
        return fail("generating", &err);
    nf_shape window;
    nf_node_shape(nf_graph_find(w.g, "x"), &window, NULL);
    double tokens = 200.0 * (double)nf_session_config(w.session)->batch * (double)window.dim[0];
    printf("{\"workload\": \"%s\", \"threads\": %d, \"train_tok_s\": %.0f, \"gen_tok_s\": %.0f", o->workload,
           nf_threads(), t.seconds > 0 ? tokens / t.seconds : 0.0, gen_tok_s);
    if (t.late)
        printf(", \"loss_1900_2000\": %.4f", t.late_loss / t.late);
    printf("}\n");
    close_workload(&w);
    return 0;
}

/* GFLOP/s of C = A B for row-major A [m, k] and B [k, n] with a kernel
 * set's sgemm, best of `runs`. */
static double sgemm_gflops(const nf_kernels *k, int runs, int64_t m, int64_t n, int64_t kk)
{
    float *a = nf_aligned_alloc((size_t)(m * kk) * 4), *b = nf_aligned_alloc((size_t)(kk * n) * 4);
    float *c = nf_aligned_alloc((size_t)(m * n) * 4);
    for (int64_t i = 0; i < m * kk; i++)
        a[i] = (float)(i % 13) * 0.01f;
    for (int64_t i = 0; i < kk * n; i++)
        b[i] = (float)(i % 7) * 0.01f;
    double best = 1e30;
    for (int r = 0; r < runs; r++) {
        double start = now();
        k->sgemm(NF_NO_TRANS, NF_NO_TRANS, m, n, kk, 1.0f, a, kk, b, n, 0.0f, c, n);
        double t = now() - start;
        best = t < best ? t : best;
    }
    nf_aligned_free(a);
    nf_aligned_free(b);
    nf_aligned_free(c);
    return 2.0 * (double)m * (double)n * (double)kk / best / 1e9;
}

/* W5: every kernel set's sgemm; the reference, a yardstick of
 * correctness and not of speed, once and on 1024^3 only. */
static int run_w5(void)
{
    printf("{\"workload\": \"W5\", \"threads\": %d", nf_threads());
    for (int i = 0; i < nf_kernels_count(); i++) {
        const nf_kernels *k = nf_kernels_at(i);
        int reference = !strcmp(k->name, "reference");
        printf(", \"%s_sgemm_1024_gflops\": %.2f", k->name, sgemm_gflops(k, reference ? 1 : 5, 1024, 1024, 1024));
        if (!reference)
            printf(", \"%s_sgemm_w3_conv2_gflops\": %.2f", k->name, sgemm_gflops(k, 5, 64, 128 * 784, 288));
        fflush(stdout);
    }
    printf("}\n");
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
        return run_text(&o, "char_lstm.nfg");
    if (!strcmp(o.workload, "W6"))
        return run_text(&o, "char_transformer.nfg");
    if (!strcmp(o.workload, "W5"))
        return run_w5();
    return run_classifier(&o);
}
