/* nodeflow/stats.h against numpy and scipy (tests/fixtures/make_stats.py,
 * on the committed predictions in stats_predictions.txt): metrics,
 * normal quantiles, Wilson intervals and McNemar's exact test to 1e-9;
 * bootstrap percentiles, the jackknife and the permutation test on the
 * same resamples as numpy's; then the intervals' coverage on a synthetic
 * classifier of known accuracy, and bad arguments. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "helpers.h"

enum { MAX_N = 1000 };

/* The committed predictions. */
static int64_t n, classes, nr, outputs;
static int32_t label[MAX_N], pred_a[MAX_N], pred_b[MAX_N];
static float target[MAX_N * 2], output[MAX_N * 2];

static void load_predictions(void)
{
    char path[512];
    snprintf(path, sizeof path, "%s/tests/fixtures/stats_predictions.txt", NF_SOURCE_DIR);
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    char line[512];
    assert_non_null(fgets(line, sizeof line, f)); /* the comment */
    long long a, b;
    assert_int_equal(fscanf(f, "%lld %lld", &a, &b), 2);
    n = a, classes = b;
    assert_true(n <= MAX_N);
    for (int64_t i = 0; i < n; i++)
        assert_int_equal(fscanf(f, "%d %d %d", &label[i], &pred_a[i], &pred_b[i]), 3);
    assert_int_equal(fscanf(f, "%lld %lld", &a, &b), 2);
    nr = a, outputs = b;
    assert_true(nr * outputs <= MAX_N * 2);
    for (int64_t i = 0; i < nr; i++) {
        for (int64_t j = 0; j < outputs; j++)
            assert_int_equal(fscanf(f, "%f", &target[i * outputs + j]), 1);
        for (int64_t j = 0; j < outputs; j++)
            assert_int_equal(fscanf(f, "%f", &output[i * outputs + j]), 1);
    }
    fclose(f);
}

/* Reference value k (0, 1, ...) of line `name`. */
static double ref(const char *name, int k)
{
    char path[512], line[1024];
    snprintf(path, sizeof path, "%s/tests/fixtures/stats_reference.txt", NF_SOURCE_DIR);
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    size_t len = strlen(name);
    while (fgets(line, sizeof line, f))
        if (!strncmp(line, name, len) && line[len] == ' ') {
            char *at = line + len;
            double v = 0;
            for (int j = 0; j <= k; j++)
                v = strtod(at, &at);
            fclose(f);
            return v;
        }
    fclose(f);
    fail_msg("no reference '%s'", name);
    return 0;
}

static nf_predictions model_a(void)
{
    return (nf_predictions){.count = n, .classes = classes, .label = label, .predicted = pred_a};
}

static nf_predictions model_b(void)
{
    return (nf_predictions){.count = n, .classes = classes, .label = label, .predicted = pred_b};
}

static nf_predictions regression(void)
{
    return (nf_predictions){.count = nr, .outputs = outputs, .target = target, .output = output};
}

static void near(double got, double want, double tolerance, const char *what)
{
    if (!(fabs(got - want) <= tolerance))
        fail_msg("%s: %.17g, numpy/scipy %.17g (difference %.3g)", what, got, want, fabs(got - want));
}

static void test_metrics(void **state)
{
    (void)state;
    load_predictions();
    nf_predictions a = model_a(), r = regression();
    nf_error err;
    for (nf_metric m = NF_METRIC_ACCURACY; m <= NF_METRIC_R2; m++) {
        char name[64];
        double v;
        snprintf(name, sizeof name, "metric_%s", nf_metric_name(m));
        assert_int_equal(nf_metric_value(m <= NF_METRIC_MACRO_RECALL ? &a : &r, m, &v, &err), NF_OK);
        near(v, ref(name, 0), 1e-12, name);
    }
    printf("stats: 7 metrics equal numpy's to 1e-12\n");
}

static void test_quantiles_wilson_mcnemar(void **state)
{
    (void)state;
    static const double ps[] = {0.95, 0.975, 0.995, 1e-10, 0.3, 0.9999};
    for (size_t k = 0; k < sizeof ps / sizeof ps[0]; k++) {
        char name[64];
        snprintf(name, sizeof name, "quantile_%g", ps[k]);
        near(nf_normal_quantile(ps[k]), ref(name, 0), 1e-9 * fmax(1, fabs(ref(name, 0))), name);
    }
    nf_predictions a = model_a(), b = model_b();
    nf_error err;
    int64_t right = 0;
    for (int64_t i = 0; i < n; i++)
        right += pred_a[i] == label[i];
    static const double levels[] = {0.90, 0.95, 0.99};
    for (size_t k = 0; k < 3; k++) {
        char name[64];
        nf_interval ci;
        snprintf(name, sizeof name, "wilson_%g", levels[k]);
        assert_int_equal(nf_wilson_interval(right, n, levels[k], &ci, &err), NF_OK);
        near(ci.lo, ref(name, 0), 1e-9, name);
        near(ci.hi, ref(name, 1), 1e-9, name);
    }
    int64_t only_a, only_b;
    double p;
    assert_int_equal(nf_mcnemar_exact(&a, &b, &only_a, &only_b, &p, &err), NF_OK);
    assert_int_equal(only_a, (int64_t)ref("mcnemar", 0));
    assert_int_equal(only_b, (int64_t)ref("mcnemar", 1));
    near(p, ref("mcnemar", 2), 1e-9, "McNemar's p");
    /* n = z^2 p (1 - p) / e^2: 0.85 within 0.01 at 95% */
    double z = ref("quantile_0.975", 0);
    assert_int_equal(nf_sample_size(0.85, 0.01, 0.95), (int64_t)ceil(z * z * 0.85 * 0.15 / 1e-4));
    printf("stats: quantiles, 3 Wilson intervals and McNemar's p = %.6f equal scipy's to 1e-9\n", p);
}

static void test_bootstrap_as_numpy(void **state)
{
    (void)state;
    nf_predictions a = model_a(), b = model_b(), r = regression();
    nf_error err;
    nf_interval ci;
    for (int stratified = 0; stratified < 2; stratified++) {
        nf_bootstrap_config c = {.resamples = 200, .confidence = 0.95, .seed = 42, .stratified = stratified};
        char name[64];
        for (nf_metric m = NF_METRIC_ACCURACY; m <= NF_METRIC_MACRO_F1; m++) {
            snprintf(name, sizeof name, "bootstrap_%s_%d", nf_metric_name(m), stratified);
            assert_int_equal(nf_bootstrap(&a, m, &c, &ci, &err), NF_OK);
            near(ci.lo, ref(name, 0), 1e-12, name);
            near(ci.hi, ref(name, 1), 1e-12, name);
        }
        snprintf(name, sizeof name, "bootstrap_difference_%d", stratified);
        assert_int_equal(nf_bootstrap_difference(&a, &b, NF_METRIC_ACCURACY, &c, &ci, &err), NF_OK);
        near(ci.lo, ref(name, 0), 1e-12, name);
        near(ci.hi, ref(name, 1), 1e-12, name);
    }
    nf_bootstrap_config c = {.resamples = 200, .confidence = 0.95, .seed = 42};
    int64_t indices[MAX_N];
    assert_int_equal(nf_bootstrap_resample(&a, &c, 0, indices, &err), NF_OK);
    for (int k = 0; k < 5; k++)
        assert_int_equal(indices[k], (int64_t)ref("resample_0_first", k));
    assert_int_equal(nf_bootstrap(&r, NF_METRIC_MSE, &c, &ci, &err), NF_OK);
    near(ci.lo, ref("bootstrap_mse", 0), 1e-9, "bootstrap mse");
    near(ci.hi, ref("bootstrap_mse", 1), 1e-9, "bootstrap mse");
    assert_int_equal(nf_bootstrap(&r, NF_METRIC_R2, &c, &ci, &err), NF_OK);
    near(ci.lo, ref("bootstrap_r2", 0), 1e-9, "bootstrap r2");
    near(ci.hi, ref("bootstrap_r2", 1), 1e-9, "bootstrap r2");
    /* the same at 1 thread as at 2 */
    nf_interval two;
    nf_bootstrap_config big = {.resamples = 1000, .seed = 3, .stratified = 1};
    assert_int_equal(nf_bootstrap(&a, NF_METRIC_MACRO_F1, &big, &two, &err), NF_OK);
    nf_set_threads(1);
    assert_int_equal(nf_bootstrap(&a, NF_METRIC_MACRO_F1, &big, &ci, &err), NF_OK);
    nf_set_threads(2);
    assert_true(ci.lo == two.lo && ci.hi == two.hi);
    double p;
    assert_int_equal(nf_permutation_test(&a, &b, NF_METRIC_ACCURACY, 200, 42, &p, &err), NF_OK);
    near(p, ref("permutation_accuracy", 0), 1e-15, "permutation p");
    printf("stats: bootstrap percentiles (plain and stratified, a paired difference, regression) and the "
           "permutation test's p equal numpy's on the same resamples\n");
}

static void test_jackknife(void **state)
{
    (void)state;
    nf_predictions a = model_a(), r = regression();
    nf_error err;
    nf_jackknife j;
    assert_int_equal(nf_jackknife_metric(&a, NF_METRIC_ACCURACY, &j, &err), NF_OK);
    near(j.bias, ref("jackknife_accuracy", 0), 1e-9, "jackknife bias of accuracy");
    near(j.std_error, ref("jackknife_accuracy", 1), 1e-9, "jackknife standard error of accuracy");
    assert_int_equal(nf_jackknife_metric(&a, NF_METRIC_MACRO_F1, &j, &err), NF_OK);
    near(j.bias, ref("jackknife_macro_f1", 0), 1e-9, "jackknife bias of macro F1");
    near(j.std_error, ref("jackknife_macro_f1", 1), 1e-9, "jackknife standard error of macro F1");
    near(j.corrected, j.estimate - j.bias, 1e-15, "the corrected estimate");
    assert_int_equal(nf_jackknife_metric(&r, NF_METRIC_R2, &j, &err), NF_OK);
    near(j.bias, ref("jackknife_r2", 0), 1e-9, "jackknife bias of R^2");
    near(j.std_error, ref("jackknife_r2", 1), 1e-9, "jackknife standard error of R^2");
    printf("stats: jackknife bias and standard error equal numpy's leave-one-out to 1e-9\n");
}

/* A synthetic classifier right with probability 0.85 on 200 samples, 400
 * seeded trials: the 95% intervals (Wilson's, the stratified percentile
 * bootstrap's) cover 0.85 in 93% to 97% of them. */
static void test_coverage(void **state)
{
    (void)state;
    enum { SAMPLES = 200, TRIALS = 400 };
    int32_t y[SAMPLES], yhat[SAMPLES];
    uint64_t seed = 11;
    int wilson = 0, boot = 0;
    nf_error err;
    for (int trial = 0; trial < TRIALS; trial++) {
        int64_t right = 0;
        for (int i = 0; i < SAMPLES; i++) {
            float u[2];
            fill_uniform(u, 2, 0, 1, &seed);
            y[i] = (int32_t)(u[0] * 3);
            yhat[i] = u[1] < 0.85f ? y[i] : (y[i] + 1) % 3;
            right += yhat[i] == y[i];
        }
        nf_predictions p = {.count = SAMPLES, .classes = 3, .label = y, .predicted = yhat};
        nf_interval ci;
        assert_int_equal(nf_wilson_interval(right, SAMPLES, 0.95, &ci, &err), NF_OK);
        wilson += ci.lo <= 0.85 && 0.85 <= ci.hi;
        nf_bootstrap_config c = {.resamples = 1000, .seed = (uint64_t)trial, .stratified = 1};
        assert_int_equal(nf_bootstrap(&p, NF_METRIC_ACCURACY, &c, &ci, &err), NF_OK);
        boot += ci.lo <= 0.85 && 0.85 <= ci.hi;
    }
    printf("stats: 95%% intervals cover the true accuracy 0.85 in %d (Wilson) and %d (bootstrap) of %d trials\n",
           wilson, boot, TRIALS);
    assert_true(wilson >= 0.93 * TRIALS && wilson <= 0.97 * TRIALS);
    assert_true(boot >= 0.93 * TRIALS && boot <= 0.97 * TRIALS);
}

static void test_bad_arguments(void **state)
{
    (void)state;
    nf_error err;
    nf_interval ci;
    nf_predictions a = model_a(), none = {0};
    assert_int_equal(nf_wilson_interval(5, 10, 1.5, &ci, &err), NF_ERR_INVALID_ARGUMENT);
    assert_int_equal(nf_wilson_interval(11, 10, 0.95, &ci, &err), NF_ERR_INVALID_ARGUMENT);
    assert_int_equal(nf_bootstrap(&none, NF_METRIC_ACCURACY, NULL, &ci, &err), NF_ERR_INVALID_ARGUMENT);
    assert_int_equal(nf_bootstrap(&a, NF_METRIC_MSE, NULL, &ci, &err), NF_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(err.message, "does not apply"));
    nf_bootstrap_config c = {.resamples = 1};
    assert_int_equal(nf_bootstrap(&a, NF_METRIC_ACCURACY, &c, &ci, &err), NF_ERR_INVALID_ARGUMENT);
    int32_t bad[2] = {0, 7}, ok[2] = {0, 1};
    nf_predictions out_of_range = {.count = 2, .classes = 2, .label = bad, .predicted = ok};
    assert_int_equal(nf_bootstrap(&out_of_range, NF_METRIC_ACCURACY, NULL, &ci, &err), NF_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(err.message, "sample 1"));
    nf_predictions shorter = a;
    shorter.count = n - 1;
    double p;
    assert_int_equal(nf_mcnemar_exact(&a, &shorter, NULL, NULL, &p, &err), NF_ERR_INVALID_ARGUMENT);
    nf_jackknife j;
    nf_predictions one = {.count = 1, .classes = 2, .label = ok, .predicted = ok};
    assert_int_equal(nf_jackknife_metric(&one, NF_METRIC_ACCURACY, &j, &err), NF_ERR_INVALID_ARGUMENT);
    assert_int_equal(nf_sample_size(0.5, 0, 0.95), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_metrics),          cmocka_unit_test(test_quantiles_wilson_mcnemar),
        cmocka_unit_test(test_bootstrap_as_numpy), cmocka_unit_test(test_jackknife),
        cmocka_unit_test(test_coverage),         cmocka_unit_test(test_bad_arguments),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
