/* nodeflow eval --ci and nodeflow compare: how sure the metrics are, and
 * whether one model is better than another, printed as text or JSON
 * (the numbers from nodeflow/stats.h). */
#include <math.h>
#include <string.h>

#include "cli.h"

/* The metrics that apply to the predictions, in order. */
static int metrics_of(const nf_predictions *p, nf_metric *out)
{
    int n = 0;
    for (nf_metric m = NF_METRIC_ACCURACY; m <= NF_METRIC_R2; m++)
        if (nf_metric_applies(p, m))
            out[n++] = m;
    return n;
}

static nf_bootstrap_config bootstrap_config(const cli_ci_options *o)
{
    return (nf_bootstrap_config){.resamples = o->resamples, .confidence = o->confidence, .seed = (uint64_t)o->seed,
                                 .stratified = 1};
}

static int64_t correct_of(const nf_predictions *p)
{
    int64_t right = 0;
    for (int64_t i = 0; i < p->count; i++)
        right += p->label[i] == p->predicted[i];
    return right;
}

/* The proportion the sample size is planned for: the measured one, kept
 * within [1/n, 1 - 1/n] (at 0 or 1, p (1 - p) = 0 would ask for one
 * sample however wide the interval is). */
static double planning_p(double p, int64_t n)
{
    double edge = 1.0 / (double)n;
    return p < edge ? edge : p > 1 - edge ? 1 - edge : p;
}

/* The sample size for the accuracy's half-width, when the interval is wider. */
static void sample_size_text(FILE *f, const nf_predictions *p, const nf_interval *wilson, const cli_ci_options *o)
{
    double half = (wilson->hi - wilson->lo) / 2;
    int64_t need = nf_sample_size(planning_p(wilson->estimate, p->count), o->half_width, o->confidence);
    if (half <= o->half_width)
        fprintf(f, "the accuracy's interval is within +-%.4g (it is +-%.4g with %lld samples)\n", o->half_width, half,
                (long long)p->count);
    else
        fprintf(f, "the accuracy's interval is +-%.4g; +-%.4g at %g%% needs about %lld test samples "
                   "(n = z^2 p (1 - p) / e^2, z = %.3f), not %lld\n",
                half, o->half_width, 100 * o->confidence, (long long)need,
                nf_normal_quantile((1 + o->confidence) / 2), (long long)p->count);
}

int cli_print_intervals(FILE *f, const nf_predictions *p, const cli_ci_options *o, int json)
{
    nf_metric metrics[8];
    int n = metrics_of(p, metrics);
    nf_bootstrap_config c = bootstrap_config(o);
    nf_interval ci[8], wilson = {0};
    nf_jackknife jack[8];
    nf_error err;
    for (int k = 0; k < n; k++)
        if (nf_bootstrap(p, metrics[k], &c, &ci[k], &err) != NF_OK ||
            (o->jackknife && nf_jackknife_metric(p, metrics[k], &jack[k], &err) != NF_OK))
            return cli_fail(&err);
    int classes = p->classes > 0;
    if (classes && nf_wilson_interval(correct_of(p), p->count, o->confidence, &wilson, &err) != NF_OK)
        return cli_fail(&err);
    char a[32], b[32], d[32];
    if (json) { /* (a member of the caller's object: the comma first) */
        fprintf(f, ", \"intervals\": {\"confidence\": %s, \"method\": \"percentile bootstrap\", \"resamples\": %lld, "
                   "\"seed\": %lld, \"stratified\": %s",
                cli_json_number(a, sizeof a, o->confidence), (long long)c.resamples, (long long)o->seed,
                classes ? "true" : "false");
        for (int k = 0; k < n; k++) {
            fprintf(f, ", \"%s\": {\"estimate\": %s, \"lo\": %s, \"hi\": %s", nf_metric_name(metrics[k]),
                    cli_json_number(a, sizeof a, ci[k].estimate), cli_json_number(b, sizeof b, ci[k].lo),
                    cli_json_number(d, sizeof d, ci[k].hi));
            if (metrics[k] == NF_METRIC_ACCURACY)
                fprintf(f, ", \"wilson\": [%s, %s]", cli_json_number(a, sizeof a, wilson.lo),
                        cli_json_number(b, sizeof b, wilson.hi));
            if (o->jackknife)
                fprintf(f, ", \"jackknife\": {\"bias\": %s, \"std_error\": %s, \"corrected\": %s}",
                        cli_json_number(a, sizeof a, jack[k].bias), cli_json_number(b, sizeof b, jack[k].std_error),
                        cli_json_number(d, sizeof d, jack[k].corrected));
            fprintf(f, "}");
        }
        if (classes)
            fprintf(f, ", \"half_width\": %s, \"samples_needed\": %lld", cli_json_number(a, sizeof a, o->half_width),
                    (long long)nf_sample_size(planning_p(wilson.estimate, p->count), o->half_width, o->confidence));
        fprintf(f, "}");
        return EXIT_OK;
    }
    fprintf(f, "\n%g%% confidence intervals: percentile bootstrap, %lld resamples%s, seed %lld%s\n",
            100 * o->confidence, (long long)c.resamples, classes ? " stratified by class" : "", (long long)o->seed,
            classes ? "; accuracy also Wilson's score interval" : "");
    fprintf(f, "metric             estimate      lower      upper%s\n",
            o->jackknife ? "   jackknife bias  std error" : "");
    for (int k = 0; k < n; k++) {
        fprintf(f, "%-16s %10.4f %10.4f %10.4f", nf_metric_name(metrics[k]), ci[k].estimate, ci[k].lo, ci[k].hi);
        if (o->jackknife)
            fprintf(f, "   %14.3g %10.4g", jack[k].bias, jack[k].std_error);
        fprintf(f, "\n");
        if (metrics[k] == NF_METRIC_ACCURACY)
            fprintf(f, "%-16s %10s %10.4f %10.4f\n", "  (Wilson)", "", wilson.lo, wilson.hi);
    }
    if (classes)
        sample_size_text(f, p, &wilson, o);
    return EXIT_OK;
}

/* What the comparison means, in a sentence. */
static void verdict(FILE *f, const char *name_a, const char *name_b, const nf_interval *diff, int higher_better,
                    double p, double alpha, const char *test)
{
    int a_better = (diff->estimate > 0) == (higher_better != 0);
    if (p < alpha && (diff->lo > 0 || diff->hi < 0))
        fprintf(f, "%s is better than %s on these samples: the difference's interval excludes 0 and %s gives "
                   "p = %.3g < %g, so chance alone is unlikely to explain it.\n",
                a_better ? name_a : name_b, a_better ? name_b : name_a, test, p, alpha);
    else if (p < alpha || diff->lo > 0 || diff->hi < 0)
        fprintf(f, "The evidence is mixed (%s p = %.3g, interval %.4g to %.4g): more test samples would settle "
                   "whether %s and %s differ.\n", test, p, diff->lo, diff->hi, name_a, name_b);
    else
        fprintf(f, "These samples do not show a difference between %s and %s (%s p = %.3g, and the interval "
                   "includes 0).\n", name_a, name_b, test, p);
}

/* s as a JSON string (quotes, backslashes and control characters escaped). */
static void json_string(FILE *f, const char *s)
{
    fputc('"', f);
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            fprintf(f, "\\%c", c);
        else if (c < 0x20)
            fprintf(f, "\\u%04x", c);
        else
            fputc(c, f);
    }
    fputc('"', f);
}

int cli_print_comparison(FILE *f, const nf_predictions *a, const nf_predictions *b, const char *name_a,
                         const char *name_b, const cli_ci_options *o, int json)
{
    nf_metric metrics[8];
    int n = metrics_of(a, metrics);
    nf_bootstrap_config c = bootstrap_config(o);
    nf_interval diff[8];
    double perm[8], mcnemar = 1;
    int64_t only_a = 0, only_b = 0;
    nf_error err;
    for (int k = 0; k < n; k++)
        if (nf_bootstrap_difference(a, b, metrics[k], &c, &diff[k], &err) != NF_OK ||
            nf_permutation_test(a, b, metrics[k], o->permutations, (uint64_t)o->seed, &perm[k], &err) != NF_OK)
            return cli_fail(&err);
    int classes = a->classes > 0;
    if (classes && nf_mcnemar_exact(a, b, &only_a, &only_b, &mcnemar, &err) != NF_OK)
        return cli_fail(&err);
    char x[32], y[32], z[32], w[32];
    if (json) {
        fprintf(f, "{\"samples\": %lld, \"a\": ", (long long)a->count);
        json_string(f, name_a);
        fprintf(f, ", \"b\": ");
        json_string(f, name_b);
        fprintf(f, ", \"confidence\": %s, \"resamples\": %lld, \"permutations\": %lld, \"seed\": %lld, "
                   "\"differences\": {",
                cli_json_number(x, sizeof x, o->confidence), (long long)c.resamples, (long long)o->permutations,
                (long long)o->seed);
        for (int k = 0; k < n; k++)
            fprintf(f, "%s\"%s\": {\"a_minus_b\": %s, \"lo\": %s, \"hi\": %s, \"permutation_p\": %s}", k ? ", " : "",
                    nf_metric_name(metrics[k]), cli_json_number(x, sizeof x, diff[k].estimate),
                    cli_json_number(y, sizeof y, diff[k].lo), cli_json_number(z, sizeof z, diff[k].hi),
                    cli_json_number(w, sizeof w, perm[k]));
        fprintf(f, "}");
        if (classes)
            fprintf(f, ", \"mcnemar\": {\"a_only_right\": %lld, \"b_only_right\": %lld, \"p\": %s}",
                    (long long)only_a, (long long)only_b, cli_json_number(x, sizeof x, mcnemar));
        fprintf(f, "}\n");
        return EXIT_OK;
    }
    fprintf(f, "%lld samples; A = %s, B = %s; %g%% intervals of A - B: paired percentile bootstrap, %lld "
               "resamples%s; permutation tests of %lld paired swaps; seed %lld\n\n",
            (long long)a->count, name_a, name_b, 100 * o->confidence, (long long)c.resamples,
            classes ? " stratified by class" : "", (long long)o->permutations, (long long)o->seed);
    fprintf(f, "metric                  A          B      A - B      lower      upper  permutation p\n");
    for (int k = 0; k < n; k++) {
        double va, vb;
        nf_metric_value(a, metrics[k], &va, &err);
        nf_metric_value(b, metrics[k], &vb, &err);
        fprintf(f, "%-16s %10.4f %10.4f %10.4f %10.4f %10.4f %14.4g\n", nf_metric_name(metrics[k]), va, vb,
                diff[k].estimate, diff[k].lo, diff[k].hi, perm[k]);
    }
    double alpha = 1 - o->confidence;
    if (classes) {
        fprintf(f, "\nMcNemar's exact test: A alone right on %lld samples, B alone on %lld; p = %.4g\n",
                (long long)only_a, (long long)only_b, mcnemar);
        verdict(f, "A", "B", &diff[0], 1, mcnemar, alpha, "McNemar's exact test");
    } else {
        fprintf(f, "\n");
        verdict(f, "A", "B", &diff[0], 0, perm[0], alpha, "the permutation test of the MSE");
    }
    return EXIT_OK;
}
