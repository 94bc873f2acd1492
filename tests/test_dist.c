/* Data-parallel training, run under mpirun (tests/meson.build: -np 2 and
 * -np 3): N processes at batch B against one process at batch N B, over
 * the same shuffled order, from the same initialisation:
 *   - the replicas' weights are equal (bit for bit) after every run;
 *   - they are within 1e-6 of the one process's after 20 steps (the one
 *     process sums the N B rows of each batch in its own order);
 *   - with 2 processes they equal, bit for bit, one process at batch B
 *     accumulating 2 batches per step (Open MPI's sum of two is x0 + x1);
 *   - sharded validation counts every sample once, with the one process's
 *     accuracy exactly and its loss to rounding;
 *   - batch normalization with sync_bn=true equals one process at N B
 *     (running statistics included); without it the replicas still agree;
 *   - with 2 processes, 20 SGD steps from PyTorch's initial weights on the
 *     batches PyTorch's DistributedDataParallel took are within 1e-5 of
 *     its weights (tests/fixtures/make_torch_ddp.py);
 *   - processes whose models differ are refused before the first step,
 *     naming the tensor;
 *   - a NaN in one process's weights stops every process at the same
 *     batch; a replica whose weights drift is found at the epoch's end.
 * Each process checks; a failure ends the whole job (MPI_Abort). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "helpers.h"

#include "data/data_internal.h"
#include "dist/comm.h"
#include "engine/internal.h"
#include "nodeflow/nodeflow.h"
#include "optim/optimizer.h"
#include "train/train_internal.h"

static nf_comm *comm;

static void job_fail(const char *fmt, const char *detail)
{
    fprintf(stderr, "FAIL (rank %d): ", nf_comm_rank(comm));
    fprintf(stderr, fmt, detail);
    fprintf(stderr, "\n");
    nf_comm_abort(comm, 1);
}

static void ok(nf_status st, const nf_error *err)
{
    if (st != NF_OK)
        job_fail("%s", err->message);
}

#define SAMPLES 480
#define FEATURES 6
#define CLASSES 3

/* Separable-ish classes: the label is the arg-max of three fixed sums. */
static nf_dataset *make_data(uint64_t seed, int64_t count)
{
    float *x = malloc(sizeof(float) * FEATURES * count), *y = malloc(sizeof(float) * count);
    for (int64_t i = 0; i < count; i++) {
        double score[CLASSES] = {0};
        for (int j = 0; j < FEATURES; j++) {
            seed = seed * 6364136223846793005ull + 1442695040888963407ull;
            x[i * FEATURES + j] = (float)((double)(seed >> 11) / (double)(1ull << 53) * 2.0 - 1.0);
            score[j % CLASSES] += x[i * FEATURES + j] * (j + 1);
        }
        int best = 0;
        for (int c = 1; c < CLASSES; c++)
            if (score[c] > score[best])
                best = c;
        y[i] = (float)best;
    }
    nf_dataset *ds;
    nf_error err;
    nf_shape xs = {1, {FEATURES}}, ys = {0, {0}};
    ok(nf_dataset_from_arrays(x, &xs, y, &ys, count, &ds, &err), &err);
    free(x);
    free(y);
    return ds;
}

static const char model_text[] = "nodeflow 1\n"
                                 "x = input shape=6\n"
                                 "y = input shape=scalar\n"
                                 "%s"
                                 "a = tanh n\n"
                                 "o = linear a out=3\n"
                                 "logits = output o\n"
                                 "loss = cross_entropy logits y\n"
                                 "[train]\n"
                                 "optimizer = adam\n"
                                 "lr = 0.01\n"
                                 "batch = %d\n"
                                 "accumulate = %d\n"
                                 "steps = %d\n"
                                 "seed = 7\n"
                                 "%s";

static const char *train_extra = ""; /* [train] lines train() adds */
static int train_steps = 20;         /* optimizer steps train() runs */

/* A session at `batch` per process, with `comm` (NULL: alone); `extra` a
 * model line inserted (a different model). */
/* One process's weights changed after batch `at` (a fault the others
 * must notice): rank `rank` sets the output layer's first bias (whatever
 * it holds reaches the loss) to `value`, or adds `value` to it when add
 * is set. */
typedef struct fault {
    nf_graph *g;
    int rank, add;
    int64_t at;
    float value;
} fault;

static void inject(void *ctx, const nf_session_progress *p)
{
    fault *f = ctx;
    float *w = f->g->values + f->g->params[f->g->n_params - 1].offset;
    if (p->step == f->at && nf_comm_rank(comm) == f->rank)
        *w = f->add ? *w + f->value : f->value;
}

static fault *injected; /* the fault train() gives its next session, or NULL */

static nf_session *train(nf_graph **g, int batch, int accumulate, const nf_comm *c, const char *extra,
                         const nf_dataset *data, const nf_dataset *val, nf_status *result, nf_error *err)
{
    char text[1024];
    /* 20 optimizer steps (steps counts batches) */
    snprintf(text, sizeof text, model_text, extra && *extra ? extra : "h = linear x out=16\nn = relu h\n", batch, accumulate,
             train_steps * accumulate, train_extra);
    nf_train_config cfg;
    nf_session *s;
    ok(nf_model_parse(text, strlen(text), "dist.nfg", g, &cfg, err), err);
    ok(nf_session_new(*g, &cfg, &s, err), err);
    ok(nf_session_set_comm(s, c, err), err);
    ok(nf_session_set_data(s, data, val, err), err);
    if (injected) {
        injected->g = *g;
        nf_session_events events = {injected, inject, NULL, NULL};
        nf_session_set_events(s, &events);
    }
    *result = nf_session_run(s, err);
    return s;
}

static void check_replicas_equal(const nf_graph *g)
{
    int64_t n = g->param_floats;
    float *mine = malloc(sizeof(float) * n), *first = malloc(sizeof(float) * n);
    memcpy(mine, g->values, sizeof(float) * n);
    memcpy(first, g->values, sizeof(float) * n);
    nf_error err;
    ok(nf_comm_broadcast_floats(comm, first, n, &err), &err);
    if (memcmp(mine, first, sizeof(float) * n) != 0)
        job_fail("%s", "the replicas' weights differ");
    free(mine);
    free(first);
}

/* ---- against PyTorch's DistributedDataParallel ------------------------ */

/* Tensor `name` of a loaded fixture, which must hold `want` floats, into `to`. */
static void fixture_copy(const fixture *f, const char *name, float *to, int64_t want)
{
    const fixture_tensor *t = fixture_get(f, name);
    if (nf_shape_size(&t->shape) != want)
        job_fail("%s has another size in torch_ddp.txt", name);
    memcpy(to, t->data, (size_t)want * sizeof(float));
}

/* 2 processes, 20 SGD steps at batch 8 each from PyTorch's initial
 * weights, on the batches DDP took (tests/fixtures/make_torch_ddp.py):
 * within 1e-5 of DDP's weights. The loop of nf_train_batches over an
 * unshuffled, shared-out batcher, so that the order is the fixture's. */
static double against_ddp(void)
{
    enum { STEPS = 20, B = 8, F = 6, ROWS = STEPS * B * 2 };
    static const char text[] = "nodeflow 1\nx = input shape=6\ny = input shape=scalar\nh = linear x out=16\n"
                               "a = relu h\no = linear a out=3\nlogits = output o\nloss = cross_entropy logits y\n";
    static const char *const names[] = {"h.weight", "h.bias", "o.weight", "o.bias"};
    nf_error err;
    nf_graph *g;
    ok(nf_model_parse(text, strlen(text), "ddp.nfg", &g, NULL, &err), &err);
    fixture fx;
    fixture_load(&fx, "torch_ddp.txt");
    const float *x = fixture_get(&fx, "x")->data, *y = fixture_get(&fx, "y")->data;
    float *want = calloc((size_t)g->param_floats, sizeof(float));
    for (int i = 0; i < 4; i++) {
        char key[64];
        const nf_param *p = &g->params[nf_graph_find_param(g, names[i])];
        snprintf(key, sizeof key, "start.%s", names[i]);
        fixture_copy(&fx, key, g->values + p->offset, p->size);
        snprintf(key, sizeof key, "final.%s", names[i]);
        fixture_copy(&fx, key, want + p->offset, p->size);
    }
    nf_dataset *ds;
    nf_shape xs = {1, {F}}, ys = {0, {0}};
    ok(nf_dataset_from_arrays(x, &xs, y, &ys, ROWS, &ds, &err), &err);
    nf_plan *plan;
    nf_optimizer *opt;
    nf_batcher *b;
    nf_binding bind;
    ok(nf_plan_compile(g, B, NF_PLAN_TRAINING, &plan, &err), &err);
    ok(nf_optimizer_new(g, "sgd", &opt, &err), &err);
    ok(nf_optimizer_set(opt, "lr", 0.1, &err), &err);
    ok(nf_optimizer_set(opt, "momentum", 0.9, &err), &err);
    ok(nf_batcher_new(ds, B, 0, 1, &b, &err), &err);
    ok(nf_binding_find(g, &bind, &err), &err);
    nf_batcher_shard(b, nf_comm_rank(comm), nf_comm_size(comm));
    nf_optimizer_set_comm(opt, comm);
    nf_epoch_stats stats;
    ok(nf_train_batches(plan, opt, b, &bind, STEPS, &stats, NULL, &err), &err);
    double worst = 0, scale = 0; /* over the four tensors (not the padding between them) */
    for (int i = 0; i < 4; i++) {
        const nf_param *p = &g->params[nf_graph_find_param(g, names[i])];
        for (int64_t j = p->offset; j < p->offset + p->size; j++) {
            worst = fmax(worst, fabs((double)g->values[j] - want[j]));
            scale = fmax(scale, fabs(want[j]));
        }
    }
    nf_batcher_free(b);
    nf_optimizer_free(opt);
    nf_plan_free(plan);
    nf_dataset_free(ds);
    nf_graph_free(g);
    fixture_free(&fx);
    free(want);
    return worst / scale;
}

int main(void)
{
    nf_error err;
    ok(nf_comm_world(&comm, &err), &err);
    int n = nf_comm_size(comm), rank = nf_comm_rank(comm);
    nf_set_threads(1);
    nf_dataset *data = make_data(11, SAMPLES), *val = make_data(12, 301);
    enum { B = 8 };

    nf_graph *g;
    nf_status st;
    nf_session *s = train(&g, B, 1, comm, "", data, val, &st, &err);
    ok(st, &err);
    check_replicas_equal(g);

    /* the same steps in one process at batch N B */
    nf_graph *g1;
    nf_session *one = train(&g1, n * B, 1, NULL, "", data, val, &st, &err);
    ok(st, &err);
    double worst = 0;
    for (int64_t i = 0; i < g->param_floats; i++)
        worst = fmax(worst, fabs((double)g->values[i] - g1->values[i]));
    char detail[128];
    snprintf(detail, sizeof detail, "%.3g after 20 steps", worst);
    if (!(worst <= 1e-6))
        job_fail("weights differ from one process at batch N B by %s", detail);

    /* with 2 processes (Open MPI's sum is then exactly g0 + g1): bit for
     * bit one process at batch B accumulating 2 batches per step */
    if (n == 2) {
        nf_graph *ga;
        nf_session *acc = train(&ga, B, 2, NULL, "", data, NULL, &st, &err);
        ok(st, &err);
        if (memcmp(g->values, ga->values, sizeof(float) * (size_t)g->param_floats) != 0)
            job_fail("%s", "2 processes differ from one accumulating 2 batches per step");
        nf_session_free(acc);
        nf_graph_free(ga);
    }

    /* the sum overlapped with backward, in buckets of at least 64 floats:
     * two, the output layer's (started as soon as backward has done it,
     * while it goes on to the hidden layer) and the hidden layer's; the
     * weights of one sum after backward, bit for bit with 2 processes */
    train_extra = "bucket_mb = 0.000244140625\n";
    nf_graph *gb;
    nf_session *buckets = train(&gb, B, 1, comm, "", data, val, &st, &err);
    train_extra = "";
    ok(st, &err);
    const nf_optimizer *bopt = nf_session_training(buckets)->opt;
    double worst_buckets = 0;
    for (int64_t i = 0; i < g->param_floats; i++)
        worst_buckets = fmax(worst_buckets, fabs((double)gb->values[i] - g->values[i]));
    char bucket_text[128];
    snprintf(bucket_text, sizeof bucket_text, "%d buckets, %lld started during backward in 20 steps, max |w - w_once| %.3g",
             bopt->n_buckets, (long long)bopt->overlapped, worst_buckets);
    if (bopt->n_buckets != 2 || bopt->overlapped != 40 || !(worst_buckets <= (n == 2 ? 0 : 1e-6)))
        job_fail("overlapped sums: %s", bucket_text);
    check_replicas_equal(gb);
    nf_session_free(buckets);
    nf_graph_free(gb);

    /* an epoch whose last global batch is short (N + 3 rows): shared out,
     * each process's loss weighed by its rows, the 21 steps equal one
     * process's at batch N B, short last batch included */
    nf_dataset *ragged = make_data(13, 20 * n * B + n + 3);
    nf_graph *gr, *gr1;
    train_steps = 21;
    nf_session *rs = train(&gr, B, 1, comm, "", ragged, NULL, &st, &err);
    ok(st, &err);
    nf_session *rs1 = train(&gr1, n * B, 1, NULL, "", ragged, NULL, &st, &err);
    ok(st, &err);
    train_steps = 20;
    double worst_ragged = 0;
    for (int64_t i = 0; i < gr->param_floats; i++)
        worst_ragged = fmax(worst_ragged, fabs((double)gr->values[i] - gr1->values[i]));
    int64_t steps = nf_session_training(rs)->progress.step, steps1 = nf_session_training(rs1)->progress.step;
    char ragged_text[128];
    snprintf(ragged_text, sizeof ragged_text, "%lld and %lld steps, max |w - w_one| %.3g", (long long)steps,
             (long long)steps1, worst_ragged);
    if (steps != 21 || steps1 != 21 || !(worst_ragged <= 1e-6))
        job_fail("a short last global batch: %s", ragged_text);
    check_replicas_equal(gr);
    nf_session_free(rs);
    nf_session_free(rs1);
    nf_graph_free(gr);
    nf_graph_free(gr1);
    nf_dataset_free(ragged);

    /* PyTorch's DDP, from the same weights on the same batches */
    double ddp = n == 2 ? against_ddp() : 0;
    char ddp_text[32];
    snprintf(ddp_text, sizeof ddp_text, "%.3g", ddp);
    if (!(ddp <= 1e-5))
        job_fail("20 steps differ from PyTorch DDP's by %s (relative to the largest weight)", ddp_text);

    /* synchronized batch normalization: N processes at B equal one
     * process at N B, running statistics included */
    nf_graph *gs, *gs1;
    /* (no bias before it: its gradient is rounding noise around 0, which
     * Adam scales up to a full step whichever way the noise falls) */
    const char *bn = "h = linear x out=16 bias=false\nn = batchnorm h sync_bn=true\n";
    nf_session *sync = train(&gs, B, 1, comm, bn, data, NULL, &st, &err);
    ok(st, &err);
    nf_session *sync1 = train(&gs1, n * B, 1, NULL, bn, data, NULL, &st, &err);
    ok(st, &err);
    double worst_bn = 0;
    for (int64_t i = 0; i < gs->param_floats; i++)
        worst_bn = fmax(worst_bn, fabs((double)gs->values[i] - gs1->values[i]));
    snprintf(detail, sizeof detail, "%.3g", worst_bn);
    if (!(worst_bn <= 1e-6))
        job_fail("sync_bn: weights differ from one process at batch N B by %s", detail);
    check_replicas_equal(gs);
    nf_session_free(sync);
    nf_session_free(sync1);
    nf_graph_free(gs);
    nf_graph_free(gs1);
    /* local batch normalization: the replicas still agree (running
     * statistics from rank 0) */
    nf_session *local = train(&gs, B, 1, comm, "h = linear x out=16 bias=false\nn = batchnorm h\n", data, NULL, &st,
                              &err);
    ok(st, &err);
    check_replicas_equal(gs);
    nf_session_free(local);
    nf_graph_free(gs);

    /* validation shared out: the whole set, counted once */
    nf_plan *plan;
    nf_binding bind;
    ok(nf_binding_find(g, &bind, &err), &err);
    ok(nf_plan_compile(g, 64, NF_PLAN_INFERENCE, &plan, &err), &err);
    nf_epoch_stats shared, alone;
    ok(nf_evaluate_shared(plan, val, &bind, comm, &shared, &err), &err);
    ok(nf_evaluate(plan, val, &bind, &alone, &err), &err);
    snprintf(detail, sizeof detail, "%lld samples, accuracy %.6f (alone: %lld, %.6f)", (long long)shared.samples,
             shared.accuracy, (long long)alone.samples, alone.accuracy);
    if (shared.samples != val->count || shared.correct != alone.correct ||
        fabs(shared.loss - alone.loss) > 1e-6 * fmax(1.0, fabs(alone.loss)))
        job_fail("shared validation: %s", detail);
    nf_plan_free(plan);

    /* a NaN in one process's weights stops every process at the same
     * batch, with an error */
    fault nan_fault = {NULL, n - 1, 0, 5, NAN};
    injected = &nan_fault;
    nf_graph *gf;
    nf_session *faulty = train(&gf, B, 1, comm, "", data, NULL, &st, &err);
    float step = (float)nf_session_training(faulty)->progress.step, first = step;
    ok(nf_comm_broadcast_floats(comm, &first, 1, &err), &err);
    if (st != NF_ERR_NUMERIC || step != first || step != 5)
        job_fail("a NaN in one process: %s", st == NF_OK ? "trained on" : err.message);
    nf_session_free(faulty);
    nf_graph_free(gf);
    /* the same with the sums overlapping backward: every process still
     * runs backward or none, and all stop at the same batch */
    train_extra = "bucket_mb = 0.000244140625\n";
    faulty = train(&gf, B, 1, comm, "", data, NULL, &st, &err);
    train_extra = "";
    step = (float)nf_session_training(faulty)->progress.step, first = step;
    ok(nf_comm_broadcast_floats(comm, &first, 1, &err), &err);
    if (st != NF_ERR_NUMERIC || step != first || step != 5)
        job_fail("a NaN in one process, sums overlapped: %s", st == NF_OK ? "trained on" : err.message);
    nf_session_free(faulty);
    nf_graph_free(gf);
    /* a replica that drifts is found at the end of the epoch */
    fault drift = {NULL, 0, 1, 3, 1e-3f};
    injected = &drift;
    faulty = train(&gf, B, 1, comm, "", data, NULL, &st, &err);
    injected = NULL;
    if (st != NF_ERR_NUMERIC || !strstr(err.message, "replicas' weights differ"))
        job_fail("a drifting replica: %s", st == NF_OK ? "not noticed" : err.message);
    nf_session_free(faulty);
    nf_graph_free(gf);

    /* a process with another model is refused before the first step */
    nf_graph *g2;
    const char *other = "h = linear x out=16\nn = relu h\na2 = linear h out=4\n";
    nf_session *odd = train(&g2, B, 1, comm, rank == n - 1 ? other : "", data, NULL, &st, &err);
    nf_session_free(odd);
    nf_graph_free(g2);
    if (st == NF_OK || !strstr(err.message, "models differ"))
        job_fail("a different model was not refused: %s", st == NF_OK ? "it trained" : err.message);

    if (rank == 0)
        printf("dist: %d processes, max |w - w_one| = %.3g (sync_bn %.3g), against PyTorch DDP %s, validation %s, "
               "overlapped sums: %s, short last batch: %s: ok\n",
               n, worst, worst_bn, n == 2 ? ddp_text : "(2 processes only)", detail, bucket_text, ragged_text);
    nf_session_free(s);
    nf_session_free(one);
    nf_graph_free(g);
    nf_graph_free(g1);
    nf_dataset_free(data);
    nf_dataset_free(val);
    nf_comm_free(comm);
    return 0;
}
