/* The training session from C: a set-up that fails leaves the session as
 * it was; resuming is all or nothing (a refused override changes no
 * weight); a checkpoint's early-stopping state is checked; settings take
 * the table's defaults; an unknown kernel set is refused; the task
 * metrics of known scores; a Fashion-MNIST head replaced and fine-tuned. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "helpers.h"


/* XOR from the shipped CSV, with a model of a schedule and early stopping */
static nf_graph *load_model(const char *train_section, nf_train_config *cfg)
{
    char text[1024];
    snprintf(text, sizeof text,
             "nodeflow 1\nx = input shape=2\ny = input shape=1\nhidden = linear x out=4\nh = tanh hidden\n"
             "out = linear h out=1\nlogit = output out\nloss = bce_with_logits logit y\n[train]\n%s",
             train_section);
    nf_graph *g;
    nf_error err;
    assert_ok(nf_model_parse(text, strlen(text), "session.nfg", &g, cfg, &err), &err);
    return g;
}

static const char *xor_spec(void)
{
    static char spec[1200];
    snprintf(spec, sizeof spec, "csv:%s/tests/data/xor.csv,label=2", NF_SOURCE_DIR);
    return spec;
}

static void copy_weights(nf_graph *g, float *out)
{
    nf_tensor w;
    nf_graph_param(g, 0, NULL, &w, NULL);
    memcpy(out, w.data, (size_t)nf_graph_param_floats(g) * sizeof(float));
}

static void test_failed_setup_leaves_no_half_run(void **state)
{
    (void)state;
    nf_train_config cfg;
    nf_graph *g = load_model("optimizer = sgd\nlr_mult.nosuch = 0.5\n", &cfg);
    nf_session *s;
    nf_error err;
    assert_ok(nf_session_new(g, &cfg, &s, &err), &err);
    assert_int_not_equal(nf_session_load_data(s, xor_spec(), NULL, &err), NF_OK);
    assert_non_null(strstr(err.message, "nosuch"));
    /* no data: running and checkpointing are refused, not crashes */
    assert_int_equal(nf_session_run(s, &err), NF_ERR_STATE);
    assert_int_not_equal(nf_session_save_checkpoint(s, "/tmp/never.ckpt", &err), NF_OK);
    nf_session_free(s);
    nf_graph_free(g);
}

static void test_defaults_from_the_table(void **state)
{
    (void)state;
    nf_train_config cfg;
    nf_train_config_init(&cfg);
    nf_train_config_defaults(&cfg);
    assert_string_equal(cfg.optimizer, "sgd");
    assert_true(cfg.batch == 32 && cfg.epochs == 1 && cfg.seed == 0 && cfg.unroll == 1);
    assert_true(cfg.average_decay == 0.999 && isnan(cfg.lr) && cfg.schedule[0] == '\0' && cfg.early_stop < 0);
    for (int i = 0; i < nf_train_setting_count(); i++) { /* every default is a value its own setting takes */
        const nf_train_setting *row = nf_train_setting_at(i);
        nf_train_config c;
        nf_train_config_init(&c);
        nf_error err;
        if (row->def)
            assert_ok(nf_train_config_set(&c, row->key, row->def, &err), &err);
    }
    assert_null(nf_train_setting_at(nf_train_setting_count()));
}

/* Trains 3 epochs writing a checkpoint; returns the session's graph. */
static nf_graph *checkpointed(const char *section, const char *path, nf_session **out)
{
    nf_train_config cfg;
    nf_graph *g = load_model(section, &cfg);
    nf_error err;
    assert_ok(nf_session_new(g, &cfg, out, &err), &err);
    assert_ok(nf_session_load_data(*out, xor_spec(), xor_spec(), &err), &err);
    assert_ok(nf_session_set_checkpoint(*out, path, &err), &err);
    assert_ok(nf_session_run(*out, &err), &err);
    return g;
}

static void test_refused_resume_changes_nothing(void **state)
{
    (void)state;
    char path[] = "/tmp/nodeflow-session-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    /* the schedule lowers the rate every epoch: the checkpoint's rate is 0.5 x 0.1^3, its base 0.5 */
    const char *section = "optimizer = sgd\nlr = 0.5\nschedule = step\nschedule.step_size = 1\nbatch = 2\nepochs = 3\n"
                          "seed = 4\n";
    nf_session *s;
    nf_graph *g = checkpointed(section, path, &s);
    nf_session_free(s);
    nf_graph_free(g);

    nf_train_config cfg, overrides;
    g = load_model(section, &cfg);
    nf_error err;
    /* the checkpoint has done the 3 epochs: resuming it would train nothing */
    assert_ok(nf_session_new(g, &cfg, &s, &err), &err);
    assert_ok(nf_session_load_data(s, xor_spec(), xor_spec(), &err), &err);
    assert_int_equal(nf_session_resume(s, path, NULL, &err), NF_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(err.message, "nothing is left to train"));
    nf_session_free(s);
    cfg.epochs = 5;
    assert_ok(nf_session_new(g, &cfg, &s, &err), &err);
    assert_ok(nf_session_load_data(s, xor_spec(), xor_spec(), &err), &err);
    int64_t n = nf_graph_param_floats(g);
    float *before = malloc((size_t)n * sizeof(float)), *after = malloc((size_t)n * sizeof(float));
    copy_weights(g, before);
    nf_train_config_init(&overrides);
    overrides.lr = 0.01; /* cannot apply under a schedule */
    assert_int_equal(nf_session_resume(s, path, &overrides, &err), NF_ERR_STATE);
    assert_non_null(strstr(err.message, "schedule"));
    copy_weights(g, after);
    assert_memory_equal(before, after, (size_t)n * sizeof(float));
    assert_int_equal(nf_session_training(s)->progress.epoch, 0);
    overrides.lr = 0.5; /* the schedule's own base rate: nothing to refuse */
    assert_ok(nf_session_resume(s, path, &overrides, &err), &err);
    assert_int_equal(nf_session_training(s)->progress.epoch, 3);
    free(before);
    free(after);
    nf_session_free(s);
    nf_graph_free(g);
    unlink(path);
}

static void test_early_stop_state_checked(void **state)
{
    (void)state;
    char path[] = "/tmp/nodeflow-session-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    const char *section = "optimizer = adam\nlr = 0.05\nbatch = 2\nepochs = 2\nearly_stop = 3\nseed = 2\n";
    nf_session *s;
    nf_graph *g = checkpointed(section, path, &s);
    nf_session_free(s);
    /* the same checkpoint resumes; with its best loss made NaN it is refused */
    nf_train_config cfg;
    nf_graph_free(g);
    g = load_model(section, &cfg);
    cfg.epochs = 3; /* one more than the checkpoint's */
    nf_error err;
    assert_ok(nf_session_new(g, &cfg, &s, &err), &err);
    assert_ok(nf_session_load_data(s, xor_spec(), xor_spec(), &err), &err);
    assert_ok(nf_session_resume(s, path, NULL, &err), &err);
    nf_session_free(s);
    /* the best loss rewritten in the file's JSON header, in place (the same
     * length, so that the file stays well formed): a NaN and -inf, which
     * strtod reads whole (after leading blanks), are refused */
    const char *spoiled[] = {"nan", "-inf"};
    for (int k = 0; k < 2; k++) {
        FILE *f = fopen(path, "r+b");
        assert_non_null(f);
        char header[65536];
        size_t got = fread(header, 1, sizeof header - 1, f);
        header[got] = '\0';
        char *at = NULL;
        for (size_t i = 0; !at && i + 19 <= got; i++)
            if (!memcmp(header + i, "\"early_stop.best\":\"", 19))
                at = header + i;
        assert_non_null(at);
        char *value = at + 19, *end = strchr(value, '"');
        size_t len = strlen(spoiled[k]);
        assert_true(end && (size_t)(end - value) >= len);
        memset(value, ' ', (size_t)(end - value));
        memcpy(end - len, spoiled[k], len);
        fseek(f, 0, SEEK_SET);
        fwrite(header, 1, got, f);
        fclose(f);
        assert_ok(nf_session_new(g, &cfg, &s, &err), &err);
        assert_ok(nf_session_load_data(s, xor_spec(), xor_spec(), &err), &err);
        assert_int_equal(nf_session_resume(s, path, NULL, &err), NF_ERR_FORMAT);
        assert_non_null(strstr(err.message, "early_stop.best"));
        nf_session_free(s);
    }
    nf_graph_free(g);
    unlink(path);
}

/* A config filled by hand is checked like one read from a file. */
static void test_config_from_c_checked(void **state)
{
    (void)state;
    nf_train_config cfg;
    nf_graph *g = load_model("", &cfg);
    nf_session *s;
    nf_error err;
    nf_train_config bad = cfg;
    bad.batch = 0; /* as a memset config would have it */
    assert_int_equal(nf_session_new(g, &bad, &s, &err), NF_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(err.message, "'batch' is 0"));
    bad = cfg;
    snprintf(bad.optimizer, sizeof bad.optimizer, "adamax");
    assert_int_equal(nf_session_new(g, &bad, &s, &err), NF_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(err.message, "unknown optimizer 'adamax'"));
    bad = cfg;
    bad.average_decay = 1.5;
    assert_int_equal(nf_session_new(g, &bad, &s, &err), NF_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(err.message, "average_decay"));
    bad = cfg;
    bad.n_schedule = 1;
    snprintf(bad.schedule_key[0], sizeof bad.schedule_key[0], "gama");
    snprintf(bad.schedule_value[0], sizeof bad.schedule_value[0], "0.5");
    assert_int_not_equal(nf_session_new(g, &bad, &s, &err), NF_OK);
    bad = cfg;
    bad.n_hparams = 99;
    assert_int_equal(nf_session_new(g, &bad, &s, &err), NF_ERR_INVALID_ARGUMENT);
    assert_ok(nf_session_new(g, &cfg, &s, &err), &err); /* the file's own is fine */
    nf_session_free(s);
    nf_graph_free(g);
}

static void test_unknown_kernel_set_refused(void **state)
{
    (void)state;
    nf_train_config cfg;
    nf_graph *g = load_model("", &cfg);
    nf_plan *p;
    nf_error err;
    setenv("NODEFLOW_KERNELS", "refrence", 1);
    assert_int_equal(nf_plan_compile(g, 4, NF_PLAN_INFERENCE, &p, &err), NF_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(err.message, "NODEFLOW_KERNELS='refrence'"));
    setenv("NODEFLOW_KERNELS", "reference", 1);
    assert_ok(nf_plan_compile(g, 4, NF_PLAN_INFERENCE, &p, &err), &err);
    nf_plan_free(p);
    unsetenv("NODEFLOW_KERNELS");
    nf_graph_free(g);
}

/* The last epoch's statistics, from the epoch callback. */
static void keep_epoch(void *ctx, const nf_session_progress *p)
{
    *(nf_epoch_stats *)ctx = *p->train;
}

/* Targets that are not class labels train by their loss alone: three
 * regression outputs per sample, a model without an output node (the
 * scores are the loss's first input), no accuracy (-1). */
static void test_multi_output_regression(void **state)
{
    (void)state;
    const char *text = "nodeflow 1\nx = input shape=2\ny = input shape=3\nh = linear x out=16\na = tanh h\n"
                       "f = linear a out=3\nloss = mse f y\n[train]\noptimizer = adam\nlr = 0.01\nbatch = 8\n"
                       "epochs = 60\nseed = 1\n";
    nf_graph *g;
    nf_train_config cfg;
    nf_error err;
    assert_ok(nf_model_parse(text, strlen(text), "reg.nfg", &g, &cfg, &err), &err);
    float x[64 * 2], y[64 * 3];
    for (int i = 0; i < 64; i++) { /* y = (a + b, a - b, 2a) */
        float a = (float)((i * 37) % 64) / 64.0f, b = (float)((i * 11) % 64) / 64.0f;
        x[2 * i] = a, x[2 * i + 1] = b;
        y[3 * i] = a + b, y[3 * i + 1] = a - b, y[3 * i + 2] = 2 * a;
    }
    nf_shape xs = {1, {2}}, ys = {1, {3}};
    nf_dataset *ds;
    assert_ok(nf_dataset_from_arrays(x, &xs, y, &ys, 64, &ds, &err), &err);
    assert_int_equal(ds->classes, 0);
    x[5] = NAN; /* the arrays are copied: a NaN after is the caller's own */
    assert_true(isfinite(ds->x[5]));
    nf_dataset *bad;
    assert_int_equal(nf_dataset_from_arrays(x, &xs, y, &ys, 64, &bad, &err), NF_ERR_FORMAT);
    assert_string_equal(err.message, "nf_dataset_from_arrays: x [2, 1] is nan; values must be finite numbers");
    nf_session *s;
    nf_epoch_stats last = {0};
    nf_session_events events = {&last, NULL, keep_epoch, NULL};
    assert_ok(nf_session_new(g, &cfg, &s, &err), &err);
    nf_session_set_events(s, &events);
    assert_ok(nf_session_set_data(s, ds, NULL, &err), &err);
    assert_ok(nf_session_run(s, &err), &err);
    assert_true(last.accuracy == -1.0);
    assert_true(last.loss < 0.01); /* from about 0.5 */
    assert_int_equal(last.task, NF_TASK_REGRESSION);
    assert_int_equal(last.outputs, 3);
    assert_true(last.r2 > 0.95);
    for (int j = 0; j < 3; j++)
        assert_true(last.output_r2[j] > 0.9 && last.output_mse[j] < 0.02);
    nf_session_free(s);
    /* a dataset a program fills itself is checked too: a NaN target is
     * named, not trained into a NaN loss */
    ds->y[3 * 7 + 2] = NAN;
    assert_ok(nf_session_new(g, &cfg, &s, &err), &err);
    assert_ok(nf_session_set_data(s, ds, NULL, &err), &err);
    assert_int_equal(nf_session_run(s, &err), NF_ERR_FORMAT);
    assert_string_equal(err.message, "the data's labels [7, 2] is nan; values must be finite numbers");
    nf_session_free(s);
    nf_dataset_free(ds);
    nf_graph_free(g);
}

/* A model whose scores are its input: nf_evaluate's metrics of known
 * scores against known labels, computed here by hand. */
static void evaluate_identity(const char *loss, int64_t width, int labels_per_row, const float *x, const float *y,
                              int64_t count, nf_epoch_stats *stats)
{
    char text[256];
    if (labels_per_row)
        snprintf(text, sizeof text, "nodeflow 1\nx = input shape=%lld\ny = input shape=%lld\no = output x\n"
                 "loss = %s o y\n", (long long)width, (long long)width, loss);
    else
        snprintf(text, sizeof text, "nodeflow 1\nx = input shape=%lld\ny = input shape=scalar\no = output x\n"
                 "loss = %s o y\n", (long long)width, loss);
    nf_graph *g;
    nf_error err;
    assert_ok(nf_model_parse(text, strlen(text), "id.nfg", &g, NULL, &err), &err);
    nf_shape xs = {1, {width}}, ys = labels_per_row ? (nf_shape){1, {width}} : (nf_shape){0, {0}};
    nf_dataset *ds;
    assert_ok(nf_dataset_from_arrays(x, &xs, y, &ys, count, &ds, &err), &err);
    nf_binding bind;
    nf_plan *plan;
    assert_ok(nf_binding_find(g, &bind, &err), &err);
    assert_ok(nf_plan_compile(g, 3, NF_PLAN_INFERENCE, &plan, &err), &err);
    assert_ok(nf_evaluate(plan, ds, &bind, stats, &err), &err);
    nf_plan_free(plan);
    nf_dataset_free(ds);
    nf_graph_free(g);
}

static void test_task_metrics(void **state)
{
    (void)state;
    static nf_epoch_stats st;
    /* classes: 4 samples of 6 scores; arg-maxes 0, 1, 2, 3 against labels
     * 0, 1, 1, 5: accuracy 2/4; the label of sample 3 (class 5, score
     * 0.5) has 3 better scores, sample 2's (1, score 0) has 5: top-5 3/4;
     * F1: class 0 1, class 1 2/3 (tp 1, fn 1), 2 0 (fp 1), 3 0 (fp 1),
     * 5 0 (fn 1): macro over the 5 classes seen 1/3 */
    const float cx[] = {9, 0, 0, 0, 0, 0, /**/ 0, 9, 0, 0, 0, 0, /**/ 1, 0, 9, 2, 3, 4, /**/ 1, 2, 3, 9, 0, 0.5f};
    const float cy[] = {0, 1, 1, 5};
    evaluate_identity("cross_entropy", 6, 0, cx, cy, 4, &st);
    assert_int_equal(st.task, NF_TASK_CLASSES);
    assert_true(fabs(st.accuracy - 0.5) < 1e-12);
    assert_true(fabs(st.top5 - 0.75) < 1e-12);
    assert_true(fabs(st.f1 - (1.0 + 2.0 / 3.0) / 5.0) < 1e-12);
    /* multi-label: logits against 0/1 labels, 2 rows of 3: predictions
     * (1, 0, 1) and (0, 0, 1) against (1, 1, 1) and (0, 0, 1): 5 of 6
     * labels right, 1 of 2 rows; tp 3, fp 0, fn 1: micro F1 6/7 */
    const float mx[] = {2, -1, 0.5f, -3, -0.1f, 4}, my[] = {1, 1, 1, 0, 0, 1};
    evaluate_identity("bce_with_logits", 3, 1, mx, my, 2, &st);
    assert_int_equal(st.task, NF_TASK_MULTI_LABEL);
    assert_true(fabs(st.label_accuracy - 5.0 / 6.0) < 1e-12);
    assert_true(fabs(st.subset_accuracy - 0.5) < 1e-12);
    assert_true(fabs(st.f1 - 6.0 / 7.0) < 1e-12);
    /* regression: 3 rows of 2 outputs; output 0 predicts (1, 2, 3) for
     * (1, 2, 5): SSE 4, absolute errors 2; output 1 is exact. R^2 = 1 -
     * SSE / SS_tot, pooled over all six targets and per output */
    const float rx[] = {1, 10, 2, 20, 3, 30}, ry[] = {1, 10, 2, 20, 5, 30};
    evaluate_identity("mse", 2, 1, rx, ry, 3, &st);
    assert_int_equal(st.task, NF_TASK_REGRESSION);
    double mean0 = 8.0 / 3.0, tot0 = (1 - mean0) * (1 - mean0) + (2 - mean0) * (2 - mean0) + (5 - mean0) * (5 - mean0);
    double mean = (1 + 10 + 2 + 20 + 5 + 30) / 6.0, tot = 0;
    for (int i = 0; i < 6; i++)
        tot += (ry[i] - mean) * (ry[i] - mean);
    assert_true(fabs(st.mse - 4.0 / 6.0) < 1e-12);
    assert_true(fabs(st.mae - 2.0 / 6.0) < 1e-12);
    assert_true(fabs(st.r2 - (1 - 4.0 / tot)) < 1e-9);
    assert_int_equal(st.outputs, 2);
    assert_true(fabs(st.output_mse[0] - 4.0 / 3.0) < 1e-12 && st.output_mse[1] == 0);
    assert_true(fabs(st.output_r2[0] - (1 - 4.0 / tot0)) < 1e-9 && st.output_r2[1] == 1.0);
}

/* Transfer learning on Fashion-MNIST: a LeNet trained on all ten
 * classes; a copy with a new 2-class head starts from its weights
 * (--init), everything but the head frozen, and learns T-shirt against
 * trouser on a subset; the frozen layers keep their values. */
static void test_fine_tune_head(void **state)
{
    (void)state;
    nf_error err;
    const char *body = "nodeflow 1\nx = input shape=1x28x28\ny = input shape=scalar\n"
                       "c1 = conv2d x out=6 kernel=5 padding=2\nr1 = relu c1\np1 = maxpool r1 kernel=2\n"
                       "c2 = conv2d p1 out=16 kernel=5\nr2 = relu c2\np2 = maxpool r2 kernel=2\nf = flatten p2\n"
                       "fc1 = linear f out=84\nr3 = relu fc1\n";
    char text[1024], path[] = "/tmp/nodeflow-finetune-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    snprintf(text, sizeof text, "%shead = linear r3 out=10\nloss = cross_entropy head y\n[train]\noptimizer = adam\n"
             "lr = 0.002\nbatch = 64\nepochs = 1\nseed = 3\n", body);
    nf_graph *g;
    nf_train_config cfg;
    nf_dataset *test;
    assert_ok(nf_model_parse(text, strlen(text), "lenet10.nfg", &g, &cfg, &err), &err);
    assert_ok(nf_dataset_load_fashion_mnist(NULL, 0, &test, &err), &err);
    nf_session *s;
    assert_ok(nf_session_new(g, &cfg, &s, &err), &err);
    assert_ok(nf_session_set_data(s, test, NULL, &err), &err);
    assert_ok(nf_session_run(s, &err), &err);
    assert_ok(nf_session_save_weights(s, path, 0, &err), &err);
    nf_session_free(s);
    nf_graph_free(g);
    /* T-shirts (0) against trousers (1) of the test images: 1,000 to
     * train on, the others (1,000) held out */
    int64_t size = 28 * 28, n = 0;
    static float y[2000];
    float *x = malloc((size_t)(2000 * size) * sizeof(float));
    for (int64_t i = 0; i < test->count && n < 2000; i++)
        if (test->y[i] == 0 || test->y[i] == 1) {
            memcpy(x + n * size, test->x + i * size, (size_t)size * sizeof(float));
            y[n++] = test->y[i];
        }
    nf_shape xs = {3, {1, 28, 28}}, ys = {0, {0}};
    nf_dataset *pair, *held_out;
    assert_int_equal(n, 2000);
    assert_ok(nf_dataset_from_arrays(x, &xs, y, &ys, 1000, &pair, &err), &err);
    assert_ok(nf_dataset_from_arrays(x + 1000 * size, &xs, y + 1000, &ys, 1000, &held_out, &err), &err);
    free(x);
    snprintf(text, sizeof text, "%shead2 = linear r3 out=2\nloss = cross_entropy head2 y\n[train]\noptimizer = adam\n"
             "lr = 0.01\nbatch = 32\nepochs = 3\nseed = 5\nlr_mult.c1 = 0\nlr_mult.c2 = 0\nlr_mult.fc1 = 0\n", body);
    assert_ok(nf_model_parse(text, strlen(text), "lenet2.nfg", &g, &cfg, &err), &err);
    assert_ok(nf_session_new(g, &cfg, &s, &err), &err);
    nf_init_report report;
    assert_ok(nf_session_init_weights(s, path, &report, &err), &err);
    assert_int_equal(report.loaded, 6); /* c1, c2, fc1: weight and bias */
    assert_int_equal(report.left, 2);   /* head2 */
    assert_int_equal(report.skipped, 2); /* head */
    nf_tensor c2;
    nf_graph_param(g, nf_graph_find_param(g, "c2.weight"), NULL, &c2, NULL);
    float before[16];
    memcpy(before, c2.data, sizeof before);
    nf_epoch_stats last = {0};
    nf_session_events events = {&last, NULL, keep_epoch, NULL};
    nf_session_set_events(s, &events);
    assert_ok(nf_session_set_data(s, pair, NULL, &err), &err);
    assert_ok(nf_session_run(s, &err), &err);
    assert_memory_equal(before, c2.data, sizeof before);
    nf_session_free(s);
    nf_binding bind;
    nf_plan *plan;
    nf_epoch_stats *held = calloc(1, sizeof *held);
    assert_ok(nf_binding_find(g, &bind, &err), &err);
    assert_ok(nf_plan_compile(g, 250, NF_PLAN_INFERENCE, &plan, &err), &err);
    assert_ok(nf_evaluate(plan, held_out, &bind, held, &err), &err);
    assert_true(held->accuracy > 0.95);
    nf_plan_free(plan);
    free(held);
    nf_dataset_free(held_out);
    nf_graph_free(g);
    nf_dataset_free(pair);
    nf_dataset_free(test);
    unlink(path);
}

/* 5-fold cross-validation of the fashion MLP on 5,000 training images:
 * every sample validates in exactly one fold, each fold holds a fifth of
 * every class (stratified), and a second run with the same seed repeats
 * every figure exactly; another seed draws other folds. */
static void test_cross_validation(void **state)
{
    (void)state;
    nf_error err;
    nf_dataset *ds;
    if (nf_dataset_load_fashion_mnist(NULL, 1, &ds, &err) != NF_OK) {
        printf("cross-validation: no Fashion-MNIST (%s): skipped\n", err.message);
        skip();
    }
    nf_dataset_truncate(ds, 5000);
    enum { K = 5 };
    int32_t *fold_of = malloc(5000 * sizeof *fold_of);
    assert_ok(nf_kfold_assign(ds, K, 1, 1, fold_of, &err), &err);
    int64_t per[K][10] = {{0}}, sizes[K] = {0}, counted = 0;
    for (int64_t i = 0; i < ds->count; i++) {
        assert_true(fold_of[i] >= 0 && fold_of[i] < K);
        per[fold_of[i]][(int)ds->y[i]]++;
        sizes[fold_of[i]]++;
    }
    for (int k = 0; k < K; k++) {
        nf_dataset *train, *val;
        assert_ok(nf_dataset_fold(ds, fold_of, k, &train, &val, &err), &err);
        assert_int_equal(val->count, sizes[k]);
        assert_int_equal(train->count + val->count, ds->count);
        counted += val->count;
        for (int c = 0; c < 10; c++) { /* a fifth of each class, give or take one */
            int64_t all = 0;
            for (int j = 0; j < K; j++)
                all += per[j][c];
            assert_true(per[k][c] * K >= all - K && per[k][c] * K <= all + K);
        }
        nf_dataset_free(train);
        nf_dataset_free(val);
    }
    assert_int_equal(counted, ds->count); /* the validation folds cover every sample, once */
    char path[512];
    snprintf(path, sizeof path, "%s/models/fashion_mlp.nfg", NF_SOURCE_DIR);
    nf_graph *g;
    nf_train_config cfg;
    assert_ok(nf_model_load(path, &g, &cfg, &err), &err);
    nf_train_config_set(&cfg, "epochs", "2", &err);
    nf_fold_report a[K], b[K];
    nf_cv_options cv = {.folds = K, .stratified = 1};
    assert_ok(nf_cross_validate(g, &cfg, ds, &cv, a, &err), &err);
    assert_ok(nf_cross_validate(g, &cfg, ds, &cv, b, &err), &err);
    double mean = 0;
    for (int k = 0; k < K; k++) {
        assert_int_equal(a[k].val_samples, 1000);
        assert_true(a[k].best_epoch >= 1 && a[k].best_epoch <= 2);
        assert_true(a[k].best.loss == b[k].best.loss && a[k].best.accuracy == b[k].best.accuracy);
        mean += a[k].best.accuracy / K;
    }
    assert_true(mean > 0.7);
    int32_t *other = malloc(5000 * sizeof *other);
    assert_ok(nf_kfold_assign(ds, K, 1, 2, other, &err), &err);
    assert_true(memcmp(fold_of, other, 5000 * sizeof *other) != 0);
    assert_int_equal(nf_kfold_assign(ds, 1, 0, 1, other, &err), NF_ERR_INVALID_ARGUMENT);
    printf("cross-validation: 5 folds of 1000 stratified, each sample validated once; mean accuracy %.4f, "
           "repeated exactly\n", mean);
    free(other);
    free(fold_of);
    nf_graph_free(g);
    nf_dataset_free(ds);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cross_validation),
        cmocka_unit_test(test_failed_setup_leaves_no_half_run),
        cmocka_unit_test(test_defaults_from_the_table),
        cmocka_unit_test(test_refused_resume_changes_nothing),
        cmocka_unit_test(test_early_stop_state_checked),
        cmocka_unit_test(test_config_from_c_checked),
        cmocka_unit_test(test_unknown_kernel_set_refused),
        cmocka_unit_test(test_multi_output_regression),
        cmocka_unit_test(test_task_metrics),
        cmocka_unit_test(test_fine_tune_head),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
