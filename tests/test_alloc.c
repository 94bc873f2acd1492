/* Allocation failure: the n-th allocation of nodeflow's code fails, for
 * every n, along model parsing, graph validation and plan compiling,
 * unrolling, weight and checkpoint loading and saving, data loading and a
 * training step. Each must return an error (or cope), free what it took
 * (the sanitizer build checks for leaks), and leave the caller's objects
 * usable: the same call without failures then succeeds.
 *
 * Linked with --wrap for malloc, calloc, realloc and posix_memalign, so
 * only allocations made by nodeflow's (static) code are counted. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cJSON.h>

#include "helpers.h"

static long countdown; /* > 0: the allocation that brings it to 0 fails */
static long failures;  /* allocations failed on purpose */

static int fail_now(void)
{
    if (countdown > 0 && --countdown == 0) {
        failures++;
        return 1;
    }
    return 0;
}

void *__real_malloc(size_t size);
void *__real_calloc(size_t n, size_t size);
void *__real_realloc(void *ptr, size_t size);
int __real_posix_memalign(void **ptr, size_t align, size_t size);

void *__wrap_malloc(size_t size) { return fail_now() ? NULL : __real_malloc(size); }
void *__wrap_calloc(size_t n, size_t size) { return fail_now() ? NULL : __real_calloc(n, size); }
void *__wrap_realloc(void *ptr, size_t size) { return fail_now() ? NULL : __real_realloc(ptr, size); }
int __wrap_posix_memalign(void **ptr, size_t align, size_t size)
{
    return fail_now() ? ENOMEM : __real_posix_memalign(ptr, align, size);
}

static const char model_text[] =
    "nodeflow 1\n"
    "x = input shape=6\n"
    "y = input shape=scalar\n"
    "h = memory hn shape=5\n"
    "a = linear x out=5\n"
    "b = linear h out=5 bias=false\n"
    "s = add a b\n"
    "hn = tanh s\n"
    "d = dropout hn p=0.2\n"
    "n = layernorm d\n"
    "logits = linear n out=3\n"
    "out = output logits\n"
    "loss = cross_entropy out y\n"
    "[train]\noptimizer = adam\nlr = 0.01\n";

typedef struct world {
    nf_graph *g;
    nf_plan *plan;       /* unrolled over 3 steps */
    nf_plan *train_plan; /* one step per run, for the data */
    nf_optimizer *opt;
    nf_dataset *data;
    nf_batcher *batches;
    nf_binding bind;
    char weights[256], checkpoint[256], csv[256];
} world;

/* Runs `op` with the n-th allocation failing, for n = 1, 2, ... until a
 * run makes no allocation fail; after each failure, `op` without failures
 * must succeed (the objects are still usable). Returns the number of
 * allocation points tried. */
static long every_failure(const char *what, nf_status (*op)(world *w, nf_error *err), void (*undo)(world *w), world *w)
{
    long n;
    for (n = 1;; n++) {
        nf_error err = {0};
        long before = failures;
        countdown = n;
        nf_status st = op(w, &err);
        countdown = 0;
        int failed = failures > before;
        if (!failed) {
            if (st != NF_OK)
                fail_msg("%s: failed with no allocation failure: %s", what, err.message);
            if (undo)
                undo(w);
            break;
        }
        if (st != NF_OK && err.message[0] == '\0')
            fail_msg("%s: allocation %ld failed and the error says nothing", what, n);
        if (undo)
            undo(w);
        st = op(w, &err); /* the same call, nothing failing: the objects are intact */
        if (st != NF_OK)
            fail_msg("%s: after allocation %ld failed, a clean retry failed: %s", what, n, err.message);
        if (undo)
            undo(w);
    }
    printf("%s: %ld allocation points\n", what, n - 1);
    return n - 1;
}

static nf_status parse(world *w, nf_error *err)
{
    return nf_model_parse(model_text, sizeof model_text - 1, "alloc.nfg", &w->g, NULL, err);
}

static void free_graph(world *w)
{
    nf_graph_free(w->g);
    w->g = NULL;
}

static nf_status compile(world *w, nf_error *err)
{
    nf_status st = nf_plan_compile(w->g, 4, NF_PLAN_TRAINING, &w->plan, err);
    if (st == NF_OK)
        st = nf_plan_set_steps(w->plan, 5, err);
    if (st == NF_OK) /* grown, then unrolled again: each relayout is all or nothing */
        st = nf_plan_set_batch(w->plan, 9, err);
    if (st == NF_OK)
        st = nf_plan_set_steps(w->plan, 3, err);
    return st;
}

static void free_plan(world *w)
{
    nf_plan_free(w->plan);
    w->plan = NULL;
}

static nf_status load_weights(world *w, nf_error *err) { return nf_weights_load(w->g, w->weights, 0, err); }
static nf_status save_weights(world *w, nf_error *err) { return nf_weights_save(w->g, w->weights, err); }

static nf_status load_csv(world *w, nf_error *err) { return nf_dataset_load_csv(w->csv, "label", &w->data, err); }

static nf_status load_text(world *w, nf_error *err) { return nf_dataset_load_text(w->csv, 8, 3, &w->data, err); }

static void free_data(world *w)
{
    nf_dataset_free(w->data);
    w->data = NULL;
}

static nf_status make_optimizer(world *w, nf_error *err)
{
    nf_status st = nf_optimizer_new(w->g, "adam", &w->opt, err);
    if (st == NF_OK)
        st = nf_batcher_new(w->data, 4, 1, 3, &w->batches, err);
    return st;
}

static void free_optimizer(world *w)
{
    nf_optimizer_free(w->opt);
    nf_batcher_free(w->batches);
    w->opt = NULL;
    w->batches = NULL;
}

static nf_status train_steps(world *w, nf_error *err)
{
    return nf_train_batches(w->train_plan, w->opt, w->batches, &w->bind, 2, NULL, NULL, err);
}

static nf_training training_of(world *w) { return (nf_training){.opt = w->opt, .batches = w->batches}; }

static nf_status save_checkpoint(world *w, nf_error *err)
{
    nf_training t = training_of(w);
    return nf_checkpoint_save(w->checkpoint, w->g, &t, err);
}

static nf_status load_checkpoint(world *w, nf_error *err)
{
    nf_training t = training_of(w);
    return nf_checkpoint_load(w->checkpoint, w->g, &t, err);
}

static void test_every_allocation_fails_in_turn(void **state)
{
    (void)state;
    nf_error err;
    world w = {0};
    /* cJSON (safetensors headers) allocates through these, so its
     * allocations fail in turn too */
    cJSON_Hooks hooks = {__wrap_malloc, free};
    cJSON_InitHooks(&hooks);
    snprintf(w.weights, sizeof w.weights, "/tmp/nodeflow-alloc-%d.safetensors", (int)getpid());
    snprintf(w.checkpoint, sizeof w.checkpoint, "/tmp/nodeflow-alloc-%d.ckpt", (int)getpid());
    snprintf(w.csv, sizeof w.csv, "/tmp/nodeflow-alloc-%d.csv", (int)getpid());
    FILE *f = fopen(w.csv, "w");
    assert_non_null(f);
    fprintf(f, "a,b,c,d,e,f,label\n");
    for (int i = 0; i < 12; i++)
        fprintf(f, "%d,%d,%d,%d,%d,%d,%d\n", i, -i, i * 2, 1, 0, i % 5, i % 3);
    fclose(f);

    assert_true(every_failure("model parse", parse, free_graph, &w) > 0);
    assert_ok(parse(&w, &err), &err);
    assert_true(every_failure("plan compile and unroll", compile, free_plan, &w) > 0);
    assert_ok(compile(&w, &err), &err);
    assert_ok(nf_graph_set_vocab(w.g, (const unsigned char *)"abc", 3, &err), &err); /* saved as metadata */
    assert_ok(nf_binding_find(w.g, &w.bind, &err), &err);
    assert_ok(nf_plan_compile(w.g, 4, NF_PLAN_TRAINING, &w.train_plan, &err), &err);
    every_failure("weights save", save_weights, NULL, &w);
    every_failure("weights load", load_weights, NULL, &w);
    assert_true(every_failure("text load", load_text, free_data, &w) > 0);
    assert_true(every_failure("csv load", load_csv, free_data, &w) > 0);
    assert_ok(load_csv(&w, &err), &err);
    every_failure("optimizer and batcher", make_optimizer, free_optimizer, &w);
    assert_ok(make_optimizer(&w, &err), &err);
    every_failure("training steps", train_steps, NULL, &w);
    every_failure("checkpoint save", save_checkpoint, NULL, &w);
    every_failure("checkpoint load", load_checkpoint, NULL, &w);

    free_optimizer(&w);
    free_data(&w);
    free_plan(&w);
    nf_plan_free(w.train_plan);
    free_graph(&w);
    unlink(w.weights);
    unlink(w.checkpoint);
    unlink(w.csv);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_allocation_fails_in_turn),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
