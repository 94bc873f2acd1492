/* The training session from C: a set-up that fails leaves the session as
 * it was; resuming is all or nothing (a refused override changes no
 * weight); a checkpoint's early-stopping state is checked; settings take
 * the table's defaults; an unknown kernel set is refused. */
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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_failed_setup_leaves_no_half_run),
        cmocka_unit_test(test_defaults_from_the_table),
        cmocka_unit_test(test_refused_resume_changes_nothing),
        cmocka_unit_test(test_early_stop_state_checked),
        cmocka_unit_test(test_config_from_c_checked),
        cmocka_unit_test(test_unknown_kernel_set_refused),
        cmocka_unit_test(test_multi_output_regression),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
