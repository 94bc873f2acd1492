/* nodeflow — how sure a measured metric is: confidence intervals
 * (Wilson's for accuracy, percentile bootstrap for every metric), the
 * sample size a half-width needs, the jackknife's bias and standard error,
 * and two models compared on the same samples (a paired bootstrap of the
 * difference, McNemar's exact test, a permutation test).
 *
 *     nf_predictions p = {.count = n, .classes = 10, .label = y, .predicted = yhat};
 *     nf_interval ci;
 *     nf_bootstrap_config c = {.resamples = 1000, .confidence = 0.95, .seed = 1, .stratified = 1};
 *     nf_bootstrap(&p, NF_METRIC_ACCURACY, &c, &ci, &err);   // ci.estimate, ci.lo, ci.hi
 *
 * Resampling is seeded and reproducible: resample r draws its samples
 * from a counter-based generator keyed by (seed, r), so the result does
 * not depend on the number of threads that compute it. */
#ifndef NODEFLOW_STATS_H
#define NODEFLOW_STATS_H

#include <stdint.h>

#include "export.h"
#include "status.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Per-sample results: a classifier's true and predicted classes (classes
 * > 0; both in [0, classes)), or a regression's targets and predictions
 * (classes = 0; `outputs` values per sample, row after row). */
typedef struct nf_predictions {
    int64_t count;
    int64_t classes;
    const int32_t *label, *predicted;
    int64_t outputs;
    const float *target, *output;
} nf_predictions;

typedef enum nf_metric {
    NF_METRIC_ACCURACY,        /* classifiers: the fraction predicted right */
    /* macro averages over the classes that occur (as a label or a
     * prediction), as scikit-learn's average='macro' */
    NF_METRIC_MACRO_F1,        /* F1 = 2 TP / (2 TP + FP + FN) */
    NF_METRIC_MACRO_PRECISION, /* TP / predicted (0 for a class never predicted) */
    NF_METRIC_MACRO_RECALL,    /* TP / actual (0 for a class never a label) */
    NF_METRIC_MSE,             /* regression: mean squared error over every value */
    NF_METRIC_MAE,             /* mean absolute error */
    NF_METRIC_R2,              /* 1 - SSE / SST over every value pooled (SST = sum y^2 - (sum y)^2 / n;
                                * 0 when the targets are constant), as nodeflow eval's r2 */
} nf_metric;

/* The metric's name ("accuracy", "macro_f1", ...), and whether it applies
 * to these predictions. */
NF_API const char *nf_metric_name(nf_metric m);
NF_API int nf_metric_applies(const nf_predictions *p, nf_metric m);

/* The metric on every sample. NF_ERR_INVALID_ARGUMENT for predictions
 * that do not fit it (a class out of range, no samples). */
NF_API nf_status nf_metric_value(const nf_predictions *p, nf_metric m, double *out, nf_error *err);

/* The standard normal quantile: Phi^-1(p) for 0 < p < 1 (Acklam's rational
 * approximation refined by one Halley step: 1e-15 relative). The z of a
 * two-sided confidence level c is nf_normal_quantile((1 + c) / 2): 1.645,
 * 1.960, 2.576 for 0.90, 0.95, 0.99. */
NF_API double nf_normal_quantile(double p);

typedef struct nf_interval {
    double estimate, lo, hi;
} nf_interval;

/* Wilson's score interval for a proportion successes / n at two-sided
 * confidence c (0 < c < 1): centre (p + z^2/2n) / (1 + z^2/n), half-width
 * z sqrt(p(1-p)/n + z^2/4n^2) / (1 + z^2/n). */
NF_API nf_status nf_wilson_interval(int64_t successes, int64_t n, double confidence, nf_interval *out, nf_error *err);

/* The samples a proportion near p needs for a half-width e at confidence
 * c (the normal approximation): ceil(z^2 p (1 - p) / e^2); at least 1. */
NF_API int64_t nf_sample_size(double p, double half_width, double confidence);

typedef struct nf_bootstrap_config {
    int64_t resamples;  /* 0: 1000 */
    double confidence;  /* 0: 0.95 */
    uint64_t seed;
    int stratified;     /* classifiers: each resample keeps every class's count (resampled within it) */
} nf_bootstrap_config;

/* The percentile bootstrap: the metric on every sample (estimate) and
 * the (1 - c)/2 and (1 + c)/2 quantiles of its values on the resamples
 * (numpy's default, linear interpolation between order statistics).
 * Resamples run in parallel. */
NF_API nf_status nf_bootstrap(const nf_predictions *p, nf_metric m, const nf_bootstrap_config *c, nf_interval *out,
                              nf_error *err);

/* Resample r's sample indices (p->count of them), as nf_bootstrap draws them. */
NF_API nf_status nf_bootstrap_resample(const nf_predictions *p, const nf_bootstrap_config *c, int64_t r,
                                       int64_t *indices, nf_error *err);

/* Two models on the same samples: metric(a) - metric(b), with the
 * percentile bootstrap on paired resamples (the same indices for both). */
NF_API nf_status nf_bootstrap_difference(const nf_predictions *a, const nf_predictions *b, nf_metric m,
                                         const nf_bootstrap_config *c, nf_interval *out, nf_error *err);

/* McNemar's exact test of two classifiers on the same samples: of the
 * samples exactly one gets right, *a_only are a's and *b_only b's; the
 * two-sided p-value is min(1, 2 P(X <= min(a_only, b_only))), X ~
 * Binomial(a_only + b_only, 1/2). */
NF_API nf_status nf_mcnemar_exact(const nf_predictions *a, const nf_predictions *b, int64_t *a_only,
                                  int64_t *b_only, double *p_value, nf_error *err);

/* A paired permutation test of metric(a) - metric(b): each permutation
 * swaps a's and b's prediction on every sample with probability 1/2;
 * p = (1 + #{|difference| >= |observed|}) / (1 + permutations). */
NF_API nf_status nf_permutation_test(const nf_predictions *a, const nf_predictions *b, nf_metric m,
                                     int64_t permutations, uint64_t seed, double *p_value, nf_error *err);

/* The jackknife (leave one sample out, n times): theta_i the metric
 * without sample i, their mean theta_.; bias = (n - 1)(theta_. - theta),
 * standard error sqrt((n - 1)/n sum (theta_i - theta_.)^2), and the
 * bias-corrected estimate theta - bias. Needs 2 samples or more. */
typedef struct nf_jackknife {
    double estimate, bias, std_error, corrected;
} nf_jackknife;

NF_API nf_status nf_jackknife_metric(const nf_predictions *p, nf_metric m, nf_jackknife *out, nf_error *err);

#ifdef __cplusplus
}
#endif
#endif
