/* nodeflow — evaluation statistics (nodeflow/stats.h): metrics of
 * per-sample predictions and how sure they are. Every metric is a
 * function of a few sums over the samples (per-class counts for
 * classifiers, error and target sums for regression), so a resample or a
 * left-out sample costs one pass, or none. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "engine/internal.h"
#include "kernels/random.h"
#include "nodeflow/stats.h"

enum { DEFAULT_RESAMPLES = 1000, MAX_RESAMPLES = 1000000 };

/* The sums a metric needs, over a multiset of samples. */
typedef struct sums {
    int64_t n;                       /* samples */
    int64_t *tp, *predicted, *actual; /* classifiers: per class */
    double sse, sae, sum_y, sum_y2;  /* regression: over every value */
} sums;

static int classifier(const nf_predictions *p) { return p->classes > 0; }

static int sums_init(sums *s, const nf_predictions *p)
{
    memset(s, 0, sizeof *s);
    if (!classifier(p))
        return 1;
    s->tp = calloc((size_t)(3 * p->classes), sizeof(int64_t));
    s->predicted = s->tp + p->classes, s->actual = s->tp + 2 * p->classes;
    return s->tp != NULL;
}

static void sums_clear(sums *s, const nf_predictions *p)
{
    if (classifier(p))
        memset(s->tp, 0, (size_t)(3 * p->classes) * sizeof(int64_t));
    s->n = 0, s->sse = s->sae = s->sum_y = s->sum_y2 = 0;
}

static void sums_free(sums *s) { free(s->tp); }

/* Adds sample i, `times` times (-1 takes it out). */
static void sums_add(sums *s, const nf_predictions *p, int64_t i, int64_t times)
{
    s->n += times;
    if (classifier(p)) {
        int32_t y = p->label[i], yhat = p->predicted[i];
        s->tp[y] += times * (y == yhat);
        s->predicted[yhat] += times;
        s->actual[y] += times;
        return;
    }
    for (int64_t j = 0; j < p->outputs; j++) {
        double t = p->target[i * p->outputs + j], e = p->output[i * p->outputs + j] - t;
        s->sse += (double)times * e * e, s->sae += (double)times * fabs(e);
        s->sum_y += (double)times * t, s->sum_y2 += (double)times * t * t;
    }
}

/* The metric from the sums. */
static double metric_of(const sums *s, const nf_predictions *p, nf_metric m)
{
    if (m == NF_METRIC_ACCURACY) {
        int64_t right = 0;
        for (int64_t c = 0; c < p->classes; c++)
            right += s->tp[c];
        return s->n ? (double)right / (double)s->n : 0;
    }
    if (classifier(p)) {
        double total = 0;
        int64_t seen = 0;
        for (int64_t c = 0; c < p->classes; c++) {
            int64_t tp = s->tp[c], pred = s->predicted[c], act = s->actual[c];
            if (pred == 0 && act == 0)
                continue;
            seen++;
            if (m == NF_METRIC_MACRO_PRECISION)
                total += pred ? (double)tp / (double)pred : 0;
            else if (m == NF_METRIC_MACRO_RECALL)
                total += act ? (double)tp / (double)act : 0;
            else /* F1 = 2 TP / (2 TP + FP + FN) = 2 TP / (predicted + actual) */
                total += 2.0 * (double)tp / (double)(pred + act);
        }
        return seen ? total / (double)seen : 0;
    }
    double values = (double)s->n * (double)p->outputs;
    if (m == NF_METRIC_MSE)
        return values > 0 ? s->sse / values : 0;
    if (m == NF_METRIC_MAE)
        return values > 0 ? s->sae / values : 0;
    /* R^2; SST = sum y^2 - (sum y)^2 / n cancels for constant targets:
     * what is left under 1e-12 of sum y^2 is rounding, taken as 0 */
    double total = s->sum_y2 - s->sum_y * s->sum_y / values;
    return values > 0 && total > 1e-12 * s->sum_y2 ? 1.0 - s->sse / total : 0;
}

const char *nf_metric_name(nf_metric m)
{
    static const char *const names[] = {"accuracy", "macro_f1", "macro_precision", "macro_recall", "mse", "mae",
                                        "r2"};
    return (unsigned)m < sizeof names / sizeof names[0] ? names[m] : "unknown";
}

int nf_metric_applies(const nf_predictions *p, nf_metric m)
{
    return p && (classifier(p) ? m <= NF_METRIC_MACRO_RECALL : m >= NF_METRIC_MSE && m <= NF_METRIC_R2);
}

/* Checks predictions against the metric; classes in range. */
static nf_status check(const nf_predictions *p, nf_metric m, nf_error *err)
{
    if (!p || p->count < 1)
        return nf_fail(err, NF_ERR_INVALID_ARGUMENT, "no predictions (no samples)");
    if (!nf_metric_applies(p, m))
        return nf_fail(err, NF_ERR_INVALID_ARGUMENT, "metric %s does not apply to %s", nf_metric_name(m),
                       classifier(p) ? "class predictions" : "regression outputs");
    if (classifier(p)) {
        if (!p->label || !p->predicted || p->classes > ((int64_t)1 << 24))
            return nf_fail(err, NF_ERR_INVALID_ARGUMENT, "class predictions need labels, predictions and at most "
                           "2^24 classes");
        for (int64_t i = 0; i < p->count; i++)
            if (p->label[i] < 0 || p->label[i] >= p->classes || p->predicted[i] < 0 ||
                p->predicted[i] >= p->classes)
                return nf_fail(err, NF_ERR_INVALID_ARGUMENT, "sample %lld: class %d or prediction %d is outside "
                               "[0, %lld)", (long long)i, p->label[i], p->predicted[i], (long long)p->classes);
    } else if (!p->target || !p->output || p->outputs < 1) {
        return nf_fail(err, NF_ERR_INVALID_ARGUMENT, "regression predictions need targets, outputs and 1 or more "
                       "values per sample");
    } else {
        for (int64_t v = 0; v < p->count * p->outputs; v++)
            if (!isfinite(p->target[v]) || !isfinite(p->output[v]))
                return nf_fail(err, NF_ERR_INVALID_ARGUMENT, "sample %lld: a target or output that is not finite",
                               (long long)(v / p->outputs));
    }
    return NF_OK;
}

nf_status nf_metric_value(const nf_predictions *p, nf_metric m, double *out, nf_error *err)
{
    nf_status st = check(p, m, err);
    if (st != NF_OK)
        return st;
    sums s;
    if (!sums_init(&s, p))
        return nf_fail(err, NF_ERR_NO_MEMORY, "out of memory");
    for (int64_t i = 0; i < p->count; i++)
        sums_add(&s, p, i, 1);
    *out = metric_of(&s, p, m);
    sums_free(&s);
    return NF_OK;
}

/* ---- the normal distribution and proportions -------------------------------- */

double nf_normal_quantile(double p)
{
    if (!(p > 0 && p < 1))
        return p == 0 ? -INFINITY : p == 1 ? INFINITY : NAN;
    /* Acklam's coefficients: the central region and the two tails */
    static const double a[] = {-3.969683028665376e+01, 2.209460984245205e+02, -2.759285104469687e+02,
                               1.383577518672690e+02,  -3.066479806614716e+01, 2.506628277459239e+00};
    static const double b[] = {-5.447609879822406e+01, 1.615858368580409e+02, -1.556989798598866e+02,
                               6.680131188771972e+01,  -1.328068155288572e+01};
    static const double c[] = {-7.784894002430293e-03, -3.223964580411365e-01, -2.400758277161838e+00,
                               -2.549732539343734e+00, 4.374664141464968e+00,  2.938163982698783e+00};
    static const double d[] = {7.784695709041462e-03, 3.224671290700398e-01, 2.445134137142996e+00,
                               3.754408661907416e+00};
    double q, x;
    if (p < 0.02425) {
        q = sqrt(-2 * log(p));
        x = (((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5]) /
            ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1);
    } else if (p <= 1 - 0.02425) {
        q = p - 0.5;
        double r = q * q;
        x = (((((a[0] * r + a[1]) * r + a[2]) * r + a[3]) * r + a[4]) * r + a[5]) * q /
            (((((b[0] * r + b[1]) * r + b[2]) * r + b[3]) * r + b[4]) * r + 1);
    } else {
        q = sqrt(-2 * log(1 - p));
        x = -(((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5]) /
            ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1);
    }
    /* one Halley step on Phi(x) - p, Phi(x) = erfc(-x / sqrt 2) / 2 */
    double e = 0.5 * erfc(-x / sqrt(2.0)) - p, u = e * sqrt(2 * M_PI) * exp(x * x / 2);
    return x - u / (1 + x * u / 2);
}

static nf_status check_confidence(double confidence, nf_error *err)
{
    if (!(confidence > 0 && confidence < 1))
        return nf_fail(err, NF_ERR_INVALID_ARGUMENT, "confidence %g: it must be between 0 and 1 (0.95 is 95%%)",
                       confidence);
    return NF_OK;
}

nf_status nf_wilson_interval(int64_t successes, int64_t n, double confidence, nf_interval *out, nf_error *err)
{
    nf_status st = check_confidence(confidence, err);
    if (st != NF_OK)
        return st;
    if (n < 1 || successes < 0 || successes > n)
        return nf_fail(err, NF_ERR_INVALID_ARGUMENT, "%lld successes of %lld trials", (long long)successes,
                       (long long)n);
    double z = nf_normal_quantile((1 + confidence) / 2), p = (double)successes / (double)n, nn = (double)n;
    double denominator = 1 + z * z / nn, centre = (p + z * z / (2 * nn)) / denominator;
    double half = z * sqrt(p * (1 - p) / nn + z * z / (4 * nn * nn)) / denominator;
    out->estimate = p;
    out->lo = fmax(0, centre - half);
    out->hi = fmin(1, centre + half);
    return NF_OK;
}

int64_t nf_sample_size(double p, double half_width, double confidence)
{
    if (!(half_width > 0) || !(confidence > 0 && confidence < 1) || !(p >= 0 && p <= 1))
        return -1;
    double z = nf_normal_quantile((1 + confidence) / 2), n = ceil(z * z * p * (1 - p) / (half_width * half_width));
    return n < 1 ? 1 : n > 9e18 ? INT64_MAX : (int64_t)n;
}

/* ---- resampling ---------------------------------------------------------------- */

/* A uniform integer in [0, n): the high half of a 64 x 64 product (Lemire). */
static int64_t below(uint64_t random, int64_t n) { return (int64_t)(((unsigned __int128)random * (uint64_t)n) >> 64); }

/* Draw j of resample r: counter-based, the same whatever the threads. */
static uint64_t draw(uint64_t seed, int64_t r, int64_t j)
{
    return nf_mix64(nf_mix64(seed ^ 0x9e3779b97f4a7c15ull) + (uint64_t)r * 0xd1b54a32d192ed03ull + (uint64_t)j);
}

/* The samples of each class, for stratified resampling: order[] lists the
 * samples class by class, start[c] where class c's begin (classes + 1). */
typedef struct strata {
    int64_t *order, *start;
} strata;

static int strata_make(strata *t, const nf_predictions *p)
{
    t->order = malloc((size_t)p->count * sizeof(int64_t));
    t->start = calloc((size_t)p->classes + 2, sizeof(int64_t));
    if (!t->order || !t->start)
        return 0;
    for (int64_t i = 0; i < p->count; i++)
        t->start[p->label[i] + 2]++;
    for (int64_t c = 0; c < p->classes; c++)
        t->start[c + 2] += t->start[c + 1];
    for (int64_t i = 0; i < p->count; i++)
        t->order[t->start[p->label[i] + 1]++] = i;
    return 1; /* (start[c] now begins class c) */
}

static void strata_free(strata *t)
{
    free(t->order);
    free(t->start);
}

/* Resample r: indices[j] for j < count. Stratified: class c's slots
 * [start[c], start[c + 1]) draw among class c's samples. */
static void resample(const nf_predictions *p, const nf_bootstrap_config *c, const strata *t, int64_t r,
                     int64_t *indices)
{
    if (!c->stratified || !classifier(p)) {
        for (int64_t j = 0; j < p->count; j++)
            indices[j] = below(draw(c->seed, r, j), p->count);
        return;
    }
    for (int64_t k = 0; k < p->classes; k++) {
        int64_t first = t->start[k], size = t->start[k + 1] - first;
        for (int64_t j = first; j < first + size; j++)
            indices[j] = t->order[first + below(draw(c->seed, r, j), size)];
    }
}

/* numpy's default percentile: linear interpolation between the sorted
 * values at rank q (n - 1). */
static double percentile(const double *sorted, int64_t n, double q)
{
    double at = q * (double)(n - 1);
    int64_t below_at = (int64_t)floor(at);
    if (below_at >= n - 1)
        return sorted[n - 1];
    double frac = at - (double)below_at;
    return sorted[below_at] + frac * (sorted[below_at + 1] - sorted[below_at]);
}

static int by_value(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static nf_status config_of(const nf_bootstrap_config *given, nf_bootstrap_config *c, nf_error *err)
{
    *c = given ? *given : (nf_bootstrap_config){0};
    if (c->resamples == 0)
        c->resamples = DEFAULT_RESAMPLES;
    if (c->confidence == 0)
        c->confidence = 0.95;
    if (c->resamples < 2 || c->resamples > MAX_RESAMPLES)
        return nf_fail(err, NF_ERR_INVALID_ARGUMENT, "%lld resamples (2 to %d)", (long long)c->resamples,
                       MAX_RESAMPLES);
    return check_confidence(c->confidence, err);
}

/* The metric of a (and minus b's, when b) on every resample, into values. */
static nf_status resampled(const nf_predictions *a, const nf_predictions *b, nf_metric m, const nf_bootstrap_config *c,
                           double *values, nf_error *err)
{
    strata t = {NULL, NULL};
    if (c->stratified && classifier(a) && !strata_make(&t, a)) {
        strata_free(&t);
        return nf_fail(err, NF_ERR_NO_MEMORY, "out of memory");
    }
    int failed = 0;
    #pragma omp parallel
    {
        int64_t *indices = malloc((size_t)a->count * sizeof(int64_t));
        sums sa = {0}, sb = {0};
        int ok = sums_init(&sa, a) & sums_init(&sb, b ? b : a) & (indices != NULL); /* (all tried: all freed) */
        #pragma omp for schedule(static)
        for (int64_t r = 0; r < c->resamples; r++) {
            if (!ok)
                continue;
            resample(a, c, &t, r, indices);
            sums_clear(&sa, a);
            for (int64_t j = 0; j < a->count; j++)
                sums_add(&sa, a, indices[j], 1);
            values[r] = metric_of(&sa, a, m);
            if (b) {
                sums_clear(&sb, b);
                for (int64_t j = 0; j < b->count; j++)
                    sums_add(&sb, b, indices[j], 1);
                values[r] -= metric_of(&sb, b, m);
            }
        }
        if (!ok) {
            #pragma omp atomic write
            failed = 1;
        }
        free(indices);
        sums_free(&sa);
        sums_free(&sb);
    }
    strata_free(&t);
    return failed ? nf_fail(err, NF_ERR_NO_MEMORY, "out of memory") : NF_OK;
}

static nf_status bootstrap(const nf_predictions *a, const nf_predictions *b, nf_metric m,
                           const nf_bootstrap_config *given, nf_interval *out, nf_error *err)
{
    nf_bootstrap_config c;
    nf_status st = config_of(given, &c, err);
    double full_a, full_b = 0;
    if (st != NF_OK || (st = nf_metric_value(a, m, &full_a, err)) != NF_OK ||
        (b && (st = nf_metric_value(b, m, &full_b, err)) != NF_OK))
        return st;
    double *values = malloc((size_t)c.resamples * sizeof(double));
    if (!values)
        return nf_fail(err, NF_ERR_NO_MEMORY, "out of memory");
    if ((st = resampled(a, b, m, &c, values, err)) == NF_OK) {
        qsort(values, (size_t)c.resamples, sizeof(double), by_value);
        out->estimate = full_a - full_b;
        out->lo = percentile(values, c.resamples, (1 - c.confidence) / 2);
        out->hi = percentile(values, c.resamples, (1 + c.confidence) / 2);
    }
    free(values);
    return st;
}

nf_status nf_bootstrap(const nf_predictions *p, nf_metric m, const nf_bootstrap_config *c, nf_interval *out,
                       nf_error *err)
{
    if (!out)
        return nf_fail(err, NF_ERR_INVALID_ARGUMENT, "nf_bootstrap: NULL argument");
    return bootstrap(p, NULL, m, c, out, err);
}

/* Two predictions of the same samples: the same count, classes and labels
 * (or targets). */
static nf_status check_pair(const nf_predictions *a, const nf_predictions *b, nf_metric m, nf_error *err)
{
    nf_status st = check(a, m, err);
    if (st != NF_OK || (st = check(b, m, err)) != NF_OK)
        return st;
    if (a->count != b->count || a->classes != b->classes || a->outputs != b->outputs)
        return nf_fail(err, NF_ERR_INVALID_ARGUMENT, "the two models' predictions are not of the same samples "
                       "(%lld and %lld samples)", (long long)a->count, (long long)b->count);
    for (int64_t i = 0; classifier(a) && i < a->count; i++)
        if (a->label[i] != b->label[i])
            return nf_fail(err, NF_ERR_INVALID_ARGUMENT, "sample %lld has class %d for one model and %d for the "
                           "other", (long long)i, a->label[i], b->label[i]);
    return NF_OK;
}

nf_status nf_bootstrap_difference(const nf_predictions *a, const nf_predictions *b, nf_metric m,
                                  const nf_bootstrap_config *c, nf_interval *out, nf_error *err)
{
    nf_status st = check_pair(a, b, m, err);
    if (st != NF_OK)
        return st;
    if (!out)
        return nf_fail(err, NF_ERR_INVALID_ARGUMENT, "nf_bootstrap_difference: NULL argument");
    return bootstrap(a, b, m, c, out, err);
}

nf_status nf_bootstrap_resample(const nf_predictions *p, const nf_bootstrap_config *given, int64_t r,
                                int64_t *indices, nf_error *err)
{
    nf_bootstrap_config c;
    nf_status st = config_of(given, &c, err);
    if (st != NF_OK || (st = check(p, classifier(p) ? NF_METRIC_ACCURACY : NF_METRIC_MSE, err)) != NF_OK)
        return st;
    if (!indices || r < 0)
        return nf_fail(err, NF_ERR_INVALID_ARGUMENT, "nf_bootstrap_resample: no room or a negative resample");
    strata t = {NULL, NULL};
    if (c.stratified && classifier(p) && !strata_make(&t, p)) {
        strata_free(&t);
        return nf_fail(err, NF_ERR_NO_MEMORY, "out of memory");
    }
    resample(p, &c, &t, r, indices);
    strata_free(&t);
    return NF_OK;
}

/* ---- comparing two models --------------------------------------------------------- */

/* log C(n, k), for the binomial probabilities */
static double log_choose(int64_t n, int64_t k) { return lgamma(n + 1.0) - lgamma(k + 1.0) - lgamma(n - k + 1.0); }

nf_status nf_mcnemar_exact(const nf_predictions *a, const nf_predictions *b, int64_t *a_only, int64_t *b_only,
                           double *p_value, nf_error *err)
{
    nf_status st = check_pair(a, b, NF_METRIC_ACCURACY, err);
    if (st != NF_OK)
        return st;
    int64_t only_a = 0, only_b = 0;
    for (int64_t i = 0; i < a->count; i++) {
        int right_a = a->predicted[i] == a->label[i], right_b = b->predicted[i] == b->label[i];
        only_a += right_a && !right_b;
        only_b += right_b && !right_a;
    }
    /* two-sided: 2 P(X <= min), X ~ Binomial(n, 1/2), summed in logs */
    int64_t n = only_a + only_b, k = only_a < only_b ? only_a : only_b;
    double tail = 0;
    for (int64_t j = 0; j <= k; j++)
        tail += exp(log_choose(n, j) - (double)n * log(2.0));
    if (a_only)
        *a_only = only_a;
    if (b_only)
        *b_only = only_b;
    *p_value = n == 0 ? 1.0 : fmin(1.0, 2 * tail);
    return NF_OK;
}

/* The per-sample view of a and b with each sample's predictions swapped
 * where flip(i): new predictions x (a's side) and y (b's side). */
static void swapped(const nf_predictions *a, const nf_predictions *b, uint64_t seed, int64_t r, nf_predictions *x,
                    nf_predictions *y, int32_t *px, int32_t *py, float *ox, float *oy)
{
    *x = *a, *y = *b;
    for (int64_t i = 0; i < a->count; i++) {
        int flip = draw(seed, r, i) >> 63;
        if (classifier(a)) {
            px[i] = flip ? b->predicted[i] : a->predicted[i];
            py[i] = flip ? a->predicted[i] : b->predicted[i];
        } else {
            size_t w = (size_t)a->outputs;
            memcpy(ox + i * a->outputs, (flip ? b : a)->output + i * a->outputs, w * sizeof(float));
            memcpy(oy + i * a->outputs, (flip ? a : b)->output + i * a->outputs, w * sizeof(float));
        }
    }
    if (classifier(a))
        x->predicted = px, y->predicted = py;
    else
        x->output = ox, y->output = oy;
}

nf_status nf_permutation_test(const nf_predictions *a, const nf_predictions *b, nf_metric m, int64_t permutations,
                              uint64_t seed, double *p_value, nf_error *err)
{
    nf_status st = check_pair(a, b, m, err);
    if (st != NF_OK)
        return st;
    if (permutations < 1 || permutations > MAX_RESAMPLES)
        return nf_fail(err, NF_ERR_INVALID_ARGUMENT, "%lld permutations (1 to %d)", (long long)permutations,
                       MAX_RESAMPLES);
    double va, vb;
    if ((st = nf_metric_value(a, m, &va, err)) != NF_OK || (st = nf_metric_value(b, m, &vb, err)) != NF_OK)
        return st;
    double observed = fabs(va - vb);
    int64_t at_least = 0, failed = 0;
    #pragma omp parallel reduction(+ : at_least, failed)
    {
        int cls = classifier(a);
        size_t values = (size_t)(cls ? a->count : a->count * a->outputs);
        void *bx = malloc(values * (cls ? sizeof(int32_t) : sizeof(float)));
        void *by = malloc(values * (cls ? sizeof(int32_t) : sizeof(float)));
        sums sx = {0}, sy = {0};
        int ok = sums_init(&sx, a) & sums_init(&sy, b) & (bx != NULL) & (by != NULL); /* (all tried: all freed) */
        #pragma omp for schedule(static)
        for (int64_t r = 0; r < permutations; r++) {
            if (!ok)
                continue;
            nf_predictions x, y;
            swapped(a, b, seed, r, &x, &y, bx, by, bx, by);
            sums_clear(&sx, &x);
            sums_clear(&sy, &y);
            for (int64_t i = 0; i < a->count; i++) {
                sums_add(&sx, &x, i, 1);
                sums_add(&sy, &y, i, 1);
            }
            /* (a relative margin: differences equal but for rounding count) */
            at_least += fabs(metric_of(&sx, &x, m) - metric_of(&sy, &y, m)) >= observed * (1 - 1e-12);
        }
        failed += !ok;
        sums_free(&sx);
        sums_free(&sy);
        free(bx);
        free(by);
    }
    if (failed)
        return nf_fail(err, NF_ERR_NO_MEMORY, "out of memory");
    *p_value = (double)(1 + at_least) / (double)(1 + permutations);
    return NF_OK;
}

/* ---- the jackknife -------------------------------------------------------------------- */

nf_status nf_jackknife_metric(const nf_predictions *p, nf_metric m, nf_jackknife *out, nf_error *err)
{
    nf_status st = check(p, m, err);
    if (st != NF_OK)
        return st;
    if (p->count < 2)
        return nf_fail(err, NF_ERR_INVALID_ARGUMENT, "the jackknife needs 2 samples or more");
    sums s;
    if (!sums_init(&s, p))
        return nf_fail(err, NF_ERR_NO_MEMORY, "out of memory");
    for (int64_t i = 0; i < p->count; i++)
        sums_add(&s, p, i, 1);
    double full = metric_of(&s, p, m), mean = 0, square = 0;
    /* theta_i from the sums without sample i; Welford's running mean and
     * squared deviations */
    for (int64_t i = 0; i < p->count; i++) {
        sums kept = s; /* (the float sums restored exactly; the counts are exact anyway) */
        sums_add(&s, p, i, -1);
        double theta = metric_of(&s, p, m), delta = theta - mean;
        sums_add(&s, p, i, 1);
        s.sse = kept.sse, s.sae = kept.sae, s.sum_y = kept.sum_y, s.sum_y2 = kept.sum_y2;
        mean += delta / (double)(i + 1);
        square += delta * (theta - mean);
    }
    sums_free(&s);
    double n = (double)p->count;
    out->estimate = full;
    out->bias = (n - 1) * (mean - full);
    out->std_error = sqrt((n - 1) / n * square);
    out->corrected = full - out->bias;
    return NF_OK;
}
