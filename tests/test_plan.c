/* Plans: buffer reuse by liveness, batch changes, inference and training
 * plans agreeing, and no heap allocation while a plan runs (the test is
 * linked with -Wl,--wrap for the allocator, which counts the calls made
 * by nodeflow's statically linked code). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "helpers.h"

static long allocations;

void *__real_malloc(size_t size);
void *__real_calloc(size_t n, size_t size);
void *__real_realloc(void *ptr, size_t size);
int __real_posix_memalign(void **ptr, size_t align, size_t size);

void *__wrap_malloc(size_t size) { allocations++; return __real_malloc(size); }
void *__wrap_calloc(size_t n, size_t size) { allocations++; return __real_calloc(n, size); }
void *__wrap_realloc(void *ptr, size_t size) { allocations++; return __real_realloc(ptr, size); }
int __wrap_posix_memalign(void **ptr, size_t align, size_t size)
{
    allocations++;
    return __real_posix_memalign(ptr, align, size);
}

/* x [32] -> 6 x (linear 32 -> relu) -> linear 4 = out; mse against t */
static nf_graph *deep_chain(nf_node **x, nf_node **t, nf_node **out)
{
    nf_graph *g = nf_graph_new();
    *x = nf_input(g, "x", 1, (int64_t[]){32});
    *t = nf_input(g, "t", 1, (int64_t[]){4});
    nf_node *h = *x;
    for (int i = 0; i < 6; i++)
        h = nf_relu(g, NULL, nf_linear(g, NULL, h, 32));
    *out = nf_output(g, "out", nf_linear(g, "head", h, 4));
    nf_mse_loss(g, "loss", *out, *t);
    return g;
}

static void test_buffer_reuse(void **state)
{
    (void)state;
    nf_error err;
    nf_node *x, *t, *out;
    nf_graph *g = deep_chain(&x, &t, &out);
    nf_plan *keep, *infer, *train, *train_keep;
    assert_ok(nf_plan_compile(g, 16, NF_PLAN_INFERENCE | NF_PLAN_KEEP_VALUES, &keep, &err), &err);
    assert_ok(nf_plan_compile(g, 16, NF_PLAN_INFERENCE, &infer, &err), &err);
    assert_ok(nf_plan_compile(g, 16, NF_PLAN_TRAINING, &train, &err), &err);
    assert_ok(nf_plan_compile(g, 16, NF_PLAN_TRAINING | NF_PLAN_KEEP_VALUES, &train_keep, &err), &err);
    /* 15 values of 16 x 32 floats, kept, against a few live at once */
    assert_true(nf_plan_arena_bytes(infer) * 3 < nf_plan_arena_bytes(keep));
    /* gradients reuse one another's memory too */
    assert_true(nf_plan_arena_bytes(train) < nf_plan_arena_bytes(train_keep));
    /* an intermediate value of the inference plan is not readable */
    nf_tensor v;
    assert_int_equal(nf_plan_value(infer, nf_graph_find(g, "relu_3"), &v, &err), NF_ERR_STATE);
    assert_non_null(strstr(err.message, "relu 'relu_3': its memory is reused"));
    assert_int_equal(nf_plan_value(keep, nf_graph_find(g, "relu_3"), &v, &err), NF_OK);
    /* all four give the same outputs */
    const nf_plan *plans[] = {keep, infer, train, train_keep};
    float first[16 * 4];
    for (int p = 0; p < 4; p++) {
        fill_inputs((nf_plan *)plans[p], g, 0, 21);
        assert_ok(nf_plan_forward((nf_plan *)plans[p], &err), &err);
        assert_ok(nf_plan_value(plans[p], out, &v, &err), &err);
        if (p == 0)
            memcpy(first, v.data, sizeof first);
        else
            assert_memory_equal(first, v.data, sizeof first);
    }
    nf_plan_free(keep);
    nf_plan_free(infer);
    nf_plan_free(train);
    nf_plan_free(train_keep);
    nf_graph_free(g);
}

static void copy_grads(nf_graph *g, float *to)
{
    nf_tensor grad;
    nf_graph_param(g, 0, NULL, NULL, &grad);
    memcpy(to, grad.data, (size_t)nf_graph_param_floats(g) * sizeof(float));
}

/* A plan compiled for 8 and run at 3 gives the gradients of a plan
 * compiled for 3; growing past the capacity works too. */
static void test_batch_changes(void **state)
{
    (void)state;
    nf_error err;
    nf_node *x, *t, *out;
    nf_graph *g = deep_chain(&x, &t, &out);
    nf_plan *big, *small;
    assert_ok(nf_plan_compile(g, 8, NF_PLAN_TRAINING, &big, &err), &err);
    assert_ok(nf_plan_compile(g, 3, NF_PLAN_TRAINING, &small, &err), &err);
    size_t floats = (size_t)nf_graph_param_floats(g);
    float *a = malloc(floats * sizeof(float)), *b = malloc(floats * sizeof(float));
    size_t bytes = nf_plan_arena_bytes(big);
    assert_ok(nf_plan_set_batch(big, 3, &err), &err);
    assert_int_equal(nf_plan_arena_bytes(big), bytes);
    fill_inputs(big, g, 0, 4);
    fill_inputs(small, g, 0, 4);
    assert_ok(nf_plan_forward(big, &err), &err);
    assert_ok(nf_plan_backward(big, &err), &err);
    copy_grads(g, a);
    assert_ok(nf_plan_forward(small, &err), &err);
    assert_ok(nf_plan_backward(small, &err), &err);
    copy_grads(g, b);
    assert_memory_equal(a, b, floats * sizeof(float));
    assert_true(nf_plan_loss(big) == nf_plan_loss(small));
    /* grow */
    assert_ok(nf_plan_set_batch(small, 40, &err), &err);
    assert_int_equal(nf_plan_batch(small), 40);
    assert_true(nf_plan_arena_bytes(small) > bytes);
    fill_inputs(small, g, 0, 5);
    assert_ok(nf_plan_forward(small, &err), &err);
    assert_ok(nf_plan_backward(small, &err), &err);
    assert_int_equal(nf_plan_set_batch(small, 0, &err), NF_ERR_INVALID_ARGUMENT);
    free(a);
    free(b);
    nf_plan_free(big);
    nf_plan_free(small);
    nf_graph_free(g);
}

static void test_no_allocation_while_running(void **state)
{
    (void)state;
    nf_error err;
    nf_node *x, *t, *out;
    nf_graph *g = deep_chain(&x, &t, &out);
    nf_plan *plan;
    nf_optimizer *opt;
    assert_ok(nf_plan_compile(g, 8, NF_PLAN_TRAINING, &plan, &err), &err);
    assert_ok(nf_optimizer_new(g, "sgd", &opt, &err), &err);
    assert_ok(nf_optimizer_set(opt, "momentum", 0.9, &err), &err);
    fill_inputs(plan, g, 0, 8);
    long before = allocations;
    assert_true(before > 0); /* the wrap is in place: compiling allocated */
    for (int step = 0; step < 3; step++) {
        assert_ok(nf_plan_set_batch(plan, step == 1 ? 5 : 8, &err), &err);
        assert_ok(nf_plan_forward(plan, &err), &err);
        assert_ok(nf_plan_backward(plan, &err), &err);
        assert_ok(nf_optimizer_step(opt, &err), &err);
    }
    assert_int_equal(allocations, before);
    nf_optimizer_free(opt);
    nf_plan_free(plan);
    nf_graph_free(g);
}

/* x [3, 10, 10] -> conv2d 8 3x3 pad 1 (requires dx) -> relu -> conv2d 4
 * 3x3 stride 2 -> flatten -> linear 3 -> cross-entropy */
static nf_graph *small_cnn(void)
{
    nf_graph *g = nf_graph_new();
    nf_node *x = nf_input(g, "x", 3, (int64_t[]){3, 10, 10});
    nf_node *y = nf_input(g, "y", 0, NULL);
    nf_input_requires_grad(g, x);
    nf_node *c1 = nf_graph_add(g, "conv2d", "c1", 1, &x);
    nf_node_set_attr(g, c1, "out", "8");
    nf_node_set_attr(g, c1, "kernel", "3");
    nf_node_set_attr(g, c1, "padding", "1");
    nf_node *r = nf_relu(g, NULL, c1);
    nf_node *c2 = nf_graph_add(g, "conv2d", "c2", 1, &r);
    nf_node_set_attr(g, c2, "out", "4");
    nf_node_set_attr(g, c2, "kernel", "3");
    nf_node_set_attr(g, c2, "stride", "2");
    nf_node *flat = nf_graph_add(g, "flatten", NULL, 1, &c2);
    nf_node *logits = nf_output(g, "logits", nf_linear(g, "head", flat, 3));
    nf_cross_entropy_loss(g, "loss", logits, y);
    return g;
}

/* Forward and backward at `batch` rows of a plan of `capacity`; the
 * gradients of the parameters and of x into grads. */
static void run_cnn(nf_graph *g, int64_t capacity, int64_t batch, float *grads, float *dx)
{
    nf_error err;
    nf_plan *plan;
    assert_ok(nf_plan_compile(g, capacity, NF_PLAN_TRAINING, &plan, &err), &err);
    assert_ok(nf_plan_set_batch(plan, batch, &err), &err);
    fill_inputs(plan, g, 3, 11);
    assert_ok(nf_plan_forward(plan, &err), &err);
    assert_ok(nf_plan_backward(plan, &err), &err);
    copy_grads(g, grads);
    nf_tensor view;
    assert_ok(nf_plan_grad(plan, nf_graph_find(g, "x"), &view, &err), &err);
    memcpy(dx, view.data, (size_t)(batch * 300) * sizeof(float));
    nf_plan_free(plan);
}

/* A kernel set that prepares its own convolution (oneDNN's primitives,
 * when built) runs a plan's full batch with it and a shorter one with
 * im2col: both agree with the openblas set, which has no such kernel. */
static void test_prepared_kernels(void **state)
{
    (void)state;
    nf_graph *g = small_cnn();
    nf_error err;
    nf_plan *plan;
    assert_ok(nf_plan_compile(g, 6, NF_PLAN_TRAINING, &plan, &err), &err);
    char what[256];
    nf_plan_node_kernels(plan, nf_graph_find(g, "c1"), what, sizeof what);
    const char *set = nf_kernel_set();
    print_message("c1 runs on %s\n", what);
    assert_true(!strncmp(what, set, strlen(set)));
    if (!strcmp(set, "onednn"))
        assert_non_null(strstr(what, "onednn: ")); /* its primitives were made */
    nf_plan_node_kernels(plan, nf_graph_find(g, "head"), what, sizeof what);
    assert_string_equal(what, set);
    nf_plan_free(plan);

    size_t floats = (size_t)nf_graph_param_floats(g);
    float *want = malloc(floats * sizeof(float)), *got = malloc(floats * sizeof(float));
    float *want_dx = malloc(6 * 300 * sizeof(float)), *got_dx = malloc(6 * 300 * sizeof(float));
    const char *before = getenv("NODEFLOW_KERNELS");
    char *saved_env = before ? strdup(before) : NULL;
    for (int64_t batch = 6; batch >= 4; batch -= 2) {
        setenv("NODEFLOW_KERNELS", "openblas", 1);
        run_cnn(g, 6, batch, want, want_dx);
        if (saved_env)
            setenv("NODEFLOW_KERNELS", saved_env, 1);
        else
            unsetenv("NODEFLOW_KERNELS");
        run_cnn(g, 6, batch, got, got_dx);
        assert_close("parameter gradients", got, want, (int64_t)floats, 1e-4);
        assert_close("input gradient", got_dx, want_dx, batch * 300, 1e-4);
        /* the same set, threads and data: the same bits (oneDNN picks one
         * implementation for an ISA and a thread count) */
        run_cnn(g, 6, batch, want, want_dx);
        assert_memory_equal(got, want, floats * sizeof(float));
        assert_memory_equal(got_dx, want_dx, (size_t)(batch * 300) * sizeof(float));
    }
    free(saved_env);
    free(want);
    free(got);
    free(want_dx);
    free(got_dx);
    nf_graph_free(g);
}

static void test_misuse(void **state)
{
    (void)state;
    nf_error err;
    nf_node *x, *t, *out;
    nf_graph *g = deep_chain(&x, &t, &out);
    nf_plan *infer, *train;
    assert_int_equal(nf_plan_compile(g, 0, NF_PLAN_TRAINING, &train, &err), NF_ERR_INVALID_ARGUMENT);
    assert_ok(nf_plan_compile(g, 4, NF_PLAN_INFERENCE, &infer, &err), &err);
    assert_ok(nf_plan_compile(g, 4, NF_PLAN_TRAINING, &train, &err), &err);
    assert_int_equal(nf_plan_backward(train, &err), NF_ERR_STATE); /* before forward */
    assert_ok(nf_plan_forward(infer, &err), &err);
    assert_int_equal(nf_plan_backward(infer, &err), NF_ERR_STATE);
    nf_tensor v;
    assert_int_equal(nf_plan_input(infer, out, &v, &err), NF_ERR_INVALID_ARGUMENT);
    assert_int_equal(nf_plan_grad(train, x, &v, &err), NF_ERR_STATE); /* x did not ask */
    nf_graph *other = nf_graph_new();
    nf_node *y = nf_input(other, "y", 1, (int64_t[]){32});
    assert_int_equal(nf_plan_input(infer, y, &v, &err), NF_ERR_INVALID_ARGUMENT);
    nf_graph_free(other);
    nf_plan_free(infer);
    nf_plan_free(train);
    nf_graph_free(g);
}

/* s_t = x_t + s_{t-1}: a running sum carried by a memory node whose
 * source is added after it (the back edge). */
static void test_memory_steps(void **state)
{
    (void)state;
    nf_error err;
    nf_graph *g = nf_graph_new();
    nf_node *x = nf_input(g, "x", 1, (int64_t[]){2});
    nf_node *prev = nf_memory(g, "prev", 1, (int64_t[]){2});
    nf_node_set_attr(g, prev, "init", "constant");
    nf_node_set_attr(g, prev, "value", "10");
    nf_node *sum = nf_output(g, "sum", nf_add(g, "s", x, prev));
    assert_ok(nf_memory_connect(g, prev, nf_graph_find(g, "s")), &err);
    nf_plan *plan;
    assert_ok(nf_plan_compile(g, 3, NF_PLAN_INFERENCE, &plan, &err), &err);
    float ones[6] = {1, 1, 1, 1, 1, 1};
    nf_tensor v;
    for (int step = 1; step <= 3; step++) {
        assert_ok(nf_plan_set_input(plan, x, ones, &err), &err);
        assert_ok(nf_plan_forward(plan, &err), &err);
        assert_ok(nf_plan_value(plan, sum, &v, &err), &err);
        for (int i = 0; i < 6; i++)
            assert_true(v.data[i] == 10.0f + (float)step);
    }
    nf_plan_reset_state(plan);
    assert_ok(nf_plan_forward(plan, &err), &err);
    assert_ok(nf_plan_value(plan, sum, &v, &err), &err);
    assert_true(v.data[0] == 11.0f);
    nf_plan_free(plan);
    nf_graph_free(g);
}

static void test_memory_errors(void **state)
{
    (void)state;
    nf_error err;
    nf_graph *g = nf_graph_new();
    nf_node *m = nf_memory(g, "m", 1, (int64_t[]){4});
    nf_relu(g, "r", m);
    assert_int_equal(nf_graph_validate(g, &err), NF_ERR_GRAPH);
    assert_non_null(strstr(err.message, "memory 'm': no source node"));
    nf_node *wide = nf_linear(g, "wide", m, 5);
    assert_ok(nf_memory_connect(g, m, wide), &err);
    assert_int_equal(nf_graph_validate(g, &err), NF_ERR_SHAPE);
    assert_non_null(strstr(err.message, "memory 'm': shape [4] but its source 'wide' is [5]"));
    assert_int_equal(nf_memory_connect(g, wide, m), NF_ERR_GRAPH);
    nf_graph_free(g);
}

/* A failed resize keeps the plan whole: the scratch area of a convolution
 * included (run under ASan, an out-of-bounds write would show). */
static void test_failed_resize(void **state)
{
    (void)state;
    nf_error err;
    nf_graph *g = nf_graph_new();
    nf_node *x = nf_input(g, "x", 3, (int64_t[]){1, 8, 8});
    nf_node *c = nf_graph_add(g, "conv2d", "c", 1, &x);
    nf_node_set_attr(g, c, "out", "4");
    nf_node_set_attr(g, c, "kernel", "3");
    nf_output(g, "y", c);
    nf_plan *plan;
    assert_ok(nf_plan_compile(g, 2, NF_PLAN_INFERENCE, &plan, &err), &err);
    size_t limit = nf_memory_limit();
    nf_set_memory_limit((size_t)1 << 20);
    assert_int_equal(nf_plan_set_batch(plan, 100000, &err), NF_ERR_NO_MEMORY);
    nf_set_memory_limit(limit);
    assert_int_equal(nf_plan_batch(plan), 2);
    fill_inputs(plan, g, 0, 3);
    assert_ok(nf_plan_forward(plan, &err), &err);
    nf_plan_free(plan);
    nf_graph_free(g);
}

/* The arena's total is summed in checked arithmetic: 1,024 kept values of
 * 2^54 floats each (batch 2^30 x a one-hot of 2^24) add up to 2^64, which
 * wrapped to 0 before, and the plan then wrote past a tiny arena. */
static void test_arena_total_cannot_wrap(void **state)
{
    (void)state;
    nf_error err;
    nf_graph *g = nf_graph_new();
    nf_node *x = nf_input(g, "x", 1, (int64_t[]){1});
    nf_node *h = nf_graph_add(g, "one_hot", "h", 1, &x);
    nf_node_set_attr(g, h, "classes", "16777216");
    for (int i = 0; i < 1023; i++) {
        char name[32];
        snprintf(name, sizeof name, "c%d", i);
        nf_graph_add(g, "copy", name, 1, &h);
    }
    nf_plan *plan = NULL;
    size_t limit = nf_memory_limit();
    nf_set_memory_limit(SIZE_MAX);
    assert_int_equal(nf_plan_compile(g, (int64_t)1 << 30, NF_PLAN_INFERENCE | NF_PLAN_KEEP_VALUES, &plan, &err),
                     NF_ERR_NO_MEMORY);
    assert_non_null(strstr(err.message, "more than 2^64 bytes"));
    assert_null(plan);
    nf_set_memory_limit(limit);
    nf_graph_free(g);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_buffer_reuse),
        cmocka_unit_test(test_batch_changes),
        cmocka_unit_test(test_no_allocation_while_running),
        cmocka_unit_test(test_misuse),
        cmocka_unit_test(test_prepared_kernels),
        cmocka_unit_test(test_memory_steps),
        cmocka_unit_test(test_memory_errors),
        cmocka_unit_test(test_failed_resize),
        cmocka_unit_test(test_arena_total_cannot_wrap),
    };
    return cmocka_run_group_tests_name("plan", tests, NULL, NULL);
}
