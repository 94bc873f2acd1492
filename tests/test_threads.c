/* Independent graphs trained at the same time from several threads of one
 * process give exactly the weights each gives trained alone: nodeflow
 * keeps no hidden global state (each graph has its own seed and random
 * streams, each plan its own memory). */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "helpers.h"

enum { WORKERS = 4, FEATURES = 24, SAMPLES = 96 };

typedef struct job {
    uint64_t seed;
    float *weights; /* the trained parameters */
    int64_t floats;
    nf_status status;
    char message[NF_ERROR_MESSAGE_MAX];
} job;

/* A small classifier with dropout (random masks) and layer norm, trained
 * with Adam for 3 epochs on data drawn from the job's seed. */
static void *train_one(void *arg)
{
    job *j = arg;
    nf_error err = {0};
    float *x = malloc(SAMPLES * FEATURES * sizeof(float)), *y = malloc(SAMPLES * sizeof(float));
    uint64_t state = j->seed;
    fill_normal(x, SAMPLES * FEATURES, &state);
    for (int i = 0; i < SAMPLES; i++)
        y[i] = (float)((x[i * FEATURES] > 0) + (x[i * FEATURES + 1] > 0));
    nf_dataset ds = {.count = SAMPLES, .x_shape = {1, {FEATURES}}, .y_shape = {0, {0}}, .x = x, .y = y};
    nf_graph *g = nf_graph_new();
    nf_graph_set_seed(g, j->seed);
    nf_node *in = nf_input(g, "x", 1, (int64_t[]){FEATURES}), *label = nf_input(g, "y", 0, NULL);
    nf_node *h = nf_graph_add(g, "dropout", "drop", 1, (nf_node *[]){nf_relu(g, "h", nf_linear(g, "fc1", in, 32))});
    nf_node_set_attr(g, h, "p", "0.2");
    nf_node *n = nf_graph_add(g, "layernorm", "norm", 1, &h);
    nf_cross_entropy_loss(g, "loss", nf_output(g, "logits", nf_linear(g, "fc2", n, 3)), label);
    nf_plan *plan = NULL;
    nf_optimizer *opt = NULL;
    nf_batcher *b = NULL;
    nf_binding bind = {.x = in, .y = label};
    j->status = nf_plan_compile(g, 16, NF_PLAN_TRAINING, &plan, &err);
    if (j->status == NF_OK)
        j->status = nf_optimizer_new(g, "adam", &opt, &err);
    if (j->status == NF_OK)
        j->status = nf_batcher_new(&ds, 16, 1, j->seed + 1, &b, &err);
    for (int epoch = 0; epoch < 3 && j->status == NF_OK; epoch++)
        j->status = nf_train_epoch(plan, opt, b, &bind, NULL, &err);
    if (j->status == NF_OK) {
        nf_tensor w;
        nf_graph_param(g, 0, NULL, &w, NULL);
        j->floats = nf_graph_param_floats(g);
        j->weights = malloc((size_t)j->floats * sizeof(float));
        memcpy(j->weights, w.data, (size_t)j->floats * sizeof(float));
    }
    memcpy(j->message, err.message, sizeof j->message);
    nf_batcher_free(b);
    nf_optimizer_free(opt);
    nf_plan_free(plan);
    nf_graph_free(g);
    free(x);
    free(y);
    return NULL;
}

static void test_concurrent_graphs(void **state)
{
    (void)state;
    job alone[WORKERS], together[WORKERS];
    pthread_t threads[WORKERS];
    for (int i = 0; i < WORKERS; i++) {
        alone[i] = (job){.seed = 100 + (uint64_t)i};
        together[i] = alone[i];
        train_one(&alone[i]);
        if (alone[i].status != NF_OK)
            fail_msg("alone %d: %s", i, alone[i].message);
    }
    for (int i = 0; i < WORKERS; i++)
        assert_int_equal(pthread_create(&threads[i], NULL, train_one, &together[i]), 0);
    for (int i = 0; i < WORKERS; i++)
        assert_int_equal(pthread_join(threads[i], NULL), 0);
    for (int i = 0; i < WORKERS; i++) {
        if (together[i].status != NF_OK)
            fail_msg("together %d: %s", i, together[i].message);
        assert_int_equal(together[i].floats, alone[i].floats);
        assert_memory_equal(together[i].weights, alone[i].weights, (size_t)alone[i].floats * sizeof(float));
        if (i > 0) /* and the seeds did make different networks */
            assert_memory_not_equal(alone[i].weights, alone[0].weights, (size_t)alone[0].floats * sizeof(float));
        free(alone[i].weights);
        free(together[i].weights);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_concurrent_graphs),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
