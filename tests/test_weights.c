/* Weights and checkpoints: safetensors round trips, PyTorch's weights
 * reproducing PyTorch's logits, every malformed file refused with its
 * expected error (and nothing changed), saves that are atomic under a
 * full disk, and a resumed training run that matches an uninterrupted
 * one bit for bit. */
#include <dirent.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "helpers.h"

static char tmp[256];

static int make_tmp(void **state)
{
    (void)state;
    snprintf(tmp, sizeof tmp, "/tmp/nodeflow-test-weights-XXXXXX");
    return mkdtemp(tmp) ? 0 : -1;
}

static int remove_tmp(void **state)
{
    (void)state;
    DIR *d = opendir(tmp);
    struct dirent *e;
    char path[1024];
    while (d && (e = readdir(d)))
        if (e->d_name[0] != '.') {
            snprintf(path, sizeof path, "%s/%s", tmp, e->d_name);
            unlink(path);
        }
    if (d)
        closedir(d);
    return rmdir(tmp);
}

static nf_graph *export_model(void)
{
    nf_error err;
    nf_graph *g;
    char path[1024];
    snprintf(path, sizeof path, "%s/tests/fixtures/torch_export.nfg", NF_SOURCE_DIR);
    assert_ok(nf_model_load(path, &g, NULL, &err), &err);
    return g;
}

static float *copy_params(const nf_graph *g)
{
    nf_tensor first;
    nf_graph_param(g, 0, NULL, &first, NULL);
    size_t n = (size_t)nf_graph_param_floats(g);
    float *copy = malloc(n * sizeof(float));
    memcpy(copy, first.data, n * sizeof(float));
    return copy;
}

static void assert_params(const nf_graph *g, const float *expected)
{
    nf_tensor first;
    nf_graph_param(g, 0, NULL, &first, NULL);
    assert_memory_equal(first.data, expected, (size_t)nf_graph_param_floats(g) * sizeof(float));
}

static void test_round_trip(void **state)
{
    (void)state;
    nf_error err;
    char path[512];
    snprintf(path, sizeof path, "%s/w.safetensors", tmp);
    nf_graph *g = export_model();
    float *saved = copy_params(g);
    assert_ok(nf_weights_save(g, path, &err), &err);
    assert_ok(nf_graph_init_params(g, 12345, &err), &err);
    assert_ok(nf_weights_load(g, path, NF_WEIGHTS_STRICT, &err), &err);
    assert_params(g, saved);
    free(saved);
    nf_graph_free(g);
}

static void test_pytorch_logits(void **state)
{
    (void)state;
    nf_error err;
    char path[1024];
    snprintf(path, sizeof path, "%s/tests/fixtures/torch_export.safetensors", NF_SOURCE_DIR);
    nf_graph *g = export_model();
    assert_ok(nf_weights_load(g, path, NF_WEIGHTS_STRICT, &err), &err);
    fixture f;
    fixture_load(&f, "torch_export.txt");
    nf_plan *plan;
    assert_ok(nf_plan_compile(g, 8, NF_PLAN_INFERENCE, &plan, &err), &err);
    assert_ok(nf_plan_set_input(plan, nf_graph_find(g, "x"), fixture_get(&f, "x")->data, &err), &err);
    assert_ok(nf_plan_forward(plan, &err), &err);
    nf_tensor logits;
    assert_ok(nf_plan_value(plan, nf_graph_find(g, "logits"), &logits, &err), &err);
    assert_close("logits", logits.data, fixture_get(&f, "logits")->data, 8 * 5, 1e-5);
    nf_plan_free(plan);
    fixture_free(&f);
    nf_graph_free(g);
}

static void test_bad_weights(void **state)
{
    (void)state;
    char dir[1024], cwd[1024];
    snprintf(dir, sizeof dir, "%s/tests/bad/weights", NF_SOURCE_DIR);
    assert_non_null(getcwd(cwd, sizeof cwd));
    assert_int_equal(chdir(dir), 0);
    DIR *d = opendir(".");
    struct dirent *e;
    int checked = 0;
    nf_graph *g = export_model();
    float *before = copy_params(g);
    while ((e = readdir(d))) {
        size_t n = strlen(e->d_name);
        if (n < 13 || strcmp(e->d_name + n - 12, ".safetensors") != 0)
            continue;
        char expected_path[512], expected[1024] = "";
        snprintf(expected_path, sizeof expected_path, "%.*s.expected", (int)n - 12, e->d_name);
        FILE *f = fopen(expected_path, "r");
        assert_non_null(f);
        assert_non_null(fgets(expected, sizeof expected, f));
        fclose(f);
        expected[strcspn(expected, "\n")] = '\0';
        nf_error err;
        assert_int_not_equal(nf_weights_load(g, e->d_name, NF_WEIGHTS_STRICT, &err), NF_OK);
        if (strcmp(err.message, expected) != 0)
            fail_msg("%s:\n  got      %s\n  expected %s", e->d_name, err.message, expected);
        assert_params(g, before); /* nothing was copied */
        checked++;
    }
    closedir(d);
    nf_error err;
    assert_ok(nf_weights_load(g, "extra_tensor.safetensors", NF_WEIGHTS_ALLOW_EXTRA, &err), &err);
    assert_int_equal(chdir(cwd), 0);
    assert_true(checked >= 15);
    free(before);
    nf_graph_free(g);
}

static int count_files(void)
{
    DIR *d = opendir(tmp);
    struct dirent *e;
    int n = 0;
    while ((e = readdir(d)))
        n += e->d_name[0] != '.';
    closedir(d);
    return n;
}

/* A save that runs out of space (RLIMIT_FSIZE, in a child process) fails
 * and leaves the previous file whole and no temporary file behind. */
static void test_atomic_save(void **state)
{
    (void)state;
    nf_error err;
    char path[512];
    snprintf(path, sizeof path, "%s/atomic.safetensors", tmp);
    nf_graph *g = export_model();
    assert_ok(nf_weights_save(g, path, &err), &err);
    float *saved = copy_params(g);
    int files = count_files();
    pid_t child = fork();
    if (child == 0) {
        signal(SIGXFSZ, SIG_IGN);
        struct rlimit limit = {1000, 1000}; /* smaller than the 1.7 kB file */
        setrlimit(RLIMIT_FSIZE, &limit);
        nf_graph_init_params(g, 77, NULL);
        _exit(nf_weights_save(g, path, &err) == NF_ERR_IO ? 0 : 1);
    }
    int status;
    waitpid(child, &status, 0);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    assert_int_equal(count_files(), files);
    assert_ok(nf_graph_init_params(g, 99, &err), &err);
    assert_ok(nf_weights_load(g, path, NF_WEIGHTS_STRICT, &err), &err);
    assert_params(g, saved);
    assert_int_equal(nf_weights_save(g, "/nonexistent-dir/w.safetensors", &err), NF_ERR_IO);
    free(saved);
    nf_graph_free(g);
}

/* ---- resuming -------------------------------------------------------- */

typedef struct trainer {
    nf_graph *g;
    nf_plan *plan;
    nf_training t;
    nf_binding bind;
} trainer;

/* A small classifier trained by Adam with gradients accumulated over 3
 * batches, a step schedule per epoch and an EMA of the weights: every
 * piece of state a checkpoint must carry. */
static trainer make_trainer(const nf_dataset *ds, uint64_t seed)
{
    nf_error err;
    trainer tr;
    memset(&tr, 0, sizeof tr);
    tr.g = nf_graph_new();
    nf_graph_set_seed(tr.g, seed);
    nf_node *x = nf_input(tr.g, "x", 1, (int64_t[]){784});
    nf_node *y = nf_input(tr.g, "y", 0, NULL);
    nf_node *h = nf_relu(tr.g, NULL, nf_linear(tr.g, "fc1", x, 32));
    nf_cross_entropy_loss(tr.g, "loss", nf_linear(tr.g, "fc2", h, 10), y);
    tr.bind = (nf_binding){.x = x, .y = y}; /* by hand: one feature and one label input */
    assert_ok(nf_plan_compile(tr.g, 64, NF_PLAN_TRAINING, &tr.plan, &err), &err);
    assert_ok(nf_optimizer_new(tr.g, "adam", &tr.t.opt, &err), &err);
    assert_ok(nf_optimizer_set(tr.t.opt, "accumulate", 3, &err), &err);
    assert_ok(nf_schedule_new("step", 1e-3, &tr.t.schedule, &err), &err);
    assert_ok(nf_schedule_set(tr.t.schedule, "step_size", 1, &err), &err);
    assert_ok(nf_schedule_set(tr.t.schedule, "gamma", 0.5, &err), &err);
    assert_ok(nf_average_new(tr.g, "ema", 0.9, &tr.t.average, &err), &err);
    assert_ok(nf_batcher_new(ds, 64, 1, 4242, &tr.t.batches, &err), &err);
    return tr;
}

static void free_trainer(trainer *tr)
{
    nf_batcher_free(tr->t.batches);
    nf_optimizer_free(tr->t.opt);
    nf_schedule_free(tr->t.schedule);
    nf_average_free(tr->t.average);
    nf_plan_free(tr->plan);
    nf_graph_free(tr->g);
}

/* Runs `steps` batches, recording each batch's loss; at each epoch's end
 * the schedule moves on. */
static void run_steps(trainer *tr, int steps, double *losses)
{
    nf_error err;
    for (int i = 0; i < steps; i++) {
        int done = 0;
        nf_epoch_stats s = {0};
        assert_ok(nf_train_batches(tr->plan, tr->t.opt, tr->t.batches, &tr->bind, 1, &s, &done, &err), &err);
        if (done) { /* an epoch boundary takes no batch */
            nf_schedule_step(tr->t.schedule, NAN);
            nf_optimizer_set_lr(tr->t.opt, nf_schedule_lr(tr->t.schedule));
            tr->t.progress.epoch++;
            i--;
            continue;
        }
        tr->t.progress.step++;
        assert_ok(nf_average_update(tr->t.average, &err), &err);
        losses[i] = nf_plan_loss(tr->plan);
    }
}

static float *averaged_params(trainer *tr)
{
    nf_error err;
    assert_ok(nf_average_swap(tr->t.average, &err), &err);
    float *copy = copy_params(tr->g);
    assert_ok(nf_average_swap(tr->t.average, &err), &err);
    return copy;
}

static void test_resume_bit_exact(void **state)
{
    (void)state;
    nf_error err;
    nf_dataset *ds;
    assert_ok(nf_dataset_load_fashion_mnist(NULL, 0, &ds, &err), &err);
    nf_dataset_truncate(ds, 1000); /* 16 batches per epoch, the last of 40 */
    enum { TOTAL = 40, STOP = 20 };  /* 4 batches into epoch 2: one batch into a group of 3 */
    double straight[TOTAL], resumed[TOTAL];
    trainer a = make_trainer(ds, 1);
    run_steps(&a, TOTAL, straight);
    float *final = copy_params(a.g), *final_avg = averaged_params(&a);
    free_trainer(&a);

    char path[512];
    snprintf(path, sizeof path, "%s/run.ckpt", tmp);
    trainer b = make_trainer(ds, 1);
    run_steps(&b, STOP, resumed);
    assert_ok(nf_checkpoint_save(path, b.g, &b.t, &err), &err);
    free_trainer(&b);

    trainer c = make_trainer(ds, 999); /* other initial weights: all come from the checkpoint */
    assert_ok(nf_checkpoint_load(path, c.g, &c.t, &err), &err);
    assert_int_equal(c.t.progress.epoch, 1);
    assert_int_equal(c.t.progress.step, STOP);
    assert_int_equal(nf_optimizer_steps(c.t.opt), 7); /* 5 groups + the short last of epoch 1, 1 in epoch 2 */
    nf_optimizer_set_lr(c.t.opt, nf_schedule_lr(c.t.schedule));
    run_steps(&c, TOTAL - STOP, resumed + STOP);
    assert_memory_equal(straight, resumed, sizeof straight);
    assert_params(c.g, final);
    float *avg = averaged_params(&c);
    assert_memory_equal(avg, final_avg, (size_t)nf_graph_param_floats(c.g) * sizeof(float));
    free(avg);
    free_trainer(&c);

    /* a checkpoint is refused by a run set up differently */
    trainer d = make_trainer(ds, 1);
    nf_average *other_avg = d.t.average;
    d.t.average = NULL;
    assert_int_equal(nf_checkpoint_load(path, d.g, &d.t, &err), NF_ERR_STATE);
    assert_non_null(strstr(err.message, "averages weights by 'ema', not 'none'"));
    d.t.average = other_avg;
    free_trainer(&d);
    free(final);
    free(final_avg);
    nf_dataset_free(ds);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_pytorch_logits),
        cmocka_unit_test(test_bad_weights),
        cmocka_unit_test(test_atomic_save),
        cmocka_unit_test(test_resume_bit_exact),
    };
    return cmocka_run_group_tests_name("weights", tests, make_tmp, remove_tmp);
}
