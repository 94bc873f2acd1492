/* nodeflow eval and nodeflow infer: metrics of trained weights on a
 * dataset, and raw outputs for new inputs. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

typedef struct eval_options {
    const char *model, *weights, *data, *input, *output;
    long long batch, threads;
    double comm_timeout;   /* --comm-timeout; < 0: the default */
    int json, allow_extra, allow_nonfinite;
    int intervals;         /* --ci given */
    cli_ci_options ci;
    const char *confusion_png, *class_names; /* --confusion-png FILE, --class-names a,b,... */
} eval_options;

static int takes_value(const char *name)
{
    static const char *const flags[] = {"--weights", "--data", "--input", "--output", "--batch", "--threads",
                                        "--comm-timeout", "--ci", "--bootstrap", "--seed", "--half-width",
                                        "--permutations", "--confusion-png", "--class-names", NULL};
    for (int i = 0; flags[i]; i++)
        if (!strcmp(name, flags[i]))
            return 1;
    return 0;
}

/* --ci C, --bootstrap N, --seed S, --half-width E, --jackknife (eval). */
static int ci_option(const char *flag, const char *v, eval_options *o)
{
    if (!strcmp(flag, "--ci") && cli_parse_double(v, &o->ci.confidence) && o->ci.confidence > 0 &&
        o->ci.confidence < 1)
        return o->intervals = 1;
    if (!strcmp(flag, "--bootstrap") && cli_parse_int(v, 2, 1000000, &o->ci.resamples))
        return o->intervals = 1;
    if (!strcmp(flag, "--seed") && cli_parse_int(v, 0, INT64_MAX, &o->ci.seed))
        return 1;
    if (!strcmp(flag, "--half-width") && cli_parse_double(v, &o->ci.half_width) && o->ci.half_width > 0 &&
        o->ci.half_width < 1)
        return o->intervals = 1;
    if (!strcmp(flag, "--jackknife") && !v)
        return o->intervals = o->ci.jackknife = 1;
    return 0;
}

static void default_options(eval_options *o)
{
    memset(o, 0, sizeof *o);
    o->batch = 256;
    o->comm_timeout = -1;
    o->ci = (cli_ci_options){.confidence = 0.95, .half_width = 0.01, .resamples = 1000, .permutations = 1000,
                             .seed = 1};
}

static int parse_options(int argc, char **argv, const char *command, const char *help, eval_options *o)
{
    default_options(o);
    cli_args a = {argc, argv, 1, command};
    const char *flag, *v;
    while (cli_next(&a, &flag, &v, takes_value)) {
        if (!flag) {
            if (o->model)
                return cli_usage(command, "one model file, please");
            o->model = v;
        } else if (!strcmp(flag, "--help")) {
            fputs(help, stdout);
            return -1;
        } else if (!strcmp(flag, "--weights") && v) {
            o->weights = v;
        } else if (!strcmp(flag, "--data") && v && !strcmp(command, "eval")) {
            o->data = v;
        } else if (!strcmp(flag, "--input") && v && !strcmp(command, "infer")) {
            o->input = v;
        } else if (!strcmp(flag, "--output") && v && !strcmp(command, "infer")) {
            o->output = v;
        } else if (!strcmp(flag, "--json") && !v && !strcmp(command, "eval")) {
            o->json = 1;
        } else if (!strcmp(flag, "--allow-extra") && !v) {
            o->allow_extra = 1;
        } else if (!strcmp(flag, "--allow-nonfinite") && !v) {
            o->allow_nonfinite = 1;
        } else if (!strcmp(flag, "--batch") && cli_parse_int(v, 1, 1 << 20, &o->batch)) {
        } else if (!strcmp(flag, "--threads") && cli_parse_int(v, 1, 1024, &o->threads)) {
        } else if (!strcmp(flag, "--comm-timeout") && cli_parse_double(v, &o->comm_timeout) && o->comm_timeout >= 0) {
        } else if (!strcmp(command, "eval") && ci_option(flag, v, o)) {
        } else if (!strcmp(flag, "--confusion-png") && v && !strcmp(command, "eval")) {
            o->confusion_png = v;
        } else if (!strcmp(flag, "--class-names") && v && !strcmp(command, "eval")) {
            o->class_names = v;
        } else {
            return cli_usage(command, takes_value(flag) ? "bad value for %s" : "unknown option '%s'", flag);
        }
    }
    if (!o->model)
        return cli_usage(command, "which model? 'nodeflow %s MODEL.nfg ...'", command);
    if (!o->weights && !cli_is_onnx(o->model))
        return cli_usage(command, "--weights FILE is required (but for a .onnx model, which holds its own)");
    if (!strcmp(command, "eval") && !o->data)
        return cli_usage(command, "--data SPEC is required");
    size_t len = o->confusion_png ? strlen(o->confusion_png) : 0;
    if (o->confusion_png && (len < 5 || (strcmp(o->confusion_png + len - 4, ".png") &&
                                         strcmp(o->confusion_png + len - 4, ".svg"))))
        return cli_usage(command, "--confusion-png %s: the file's name must end in .png or .svg", o->confusion_png);
    nf_error err;
    if (o->confusion_png && nf_output_path_check(o->confusion_png, &err) != NF_OK)
        return cli_fail(&err);
    if (!strcmp(command, "infer") && !o->input)
        return cli_usage(command, "--input FILE is required ('-' reads CSV from standard input)");
    return EXIT_OK;
}

/* A model with its weights, bound and compiled for inference. */
typedef struct session {
    nf_graph *g;
    nf_binding bind;
    nf_plan *plan;
    nf_comm *comm;   /* under mpirun: the samples are shared out, rank 0 reports */
} session;

/* Joins the processes, loads the model (and for eval the data, *ds), binds
 * and compiles it. An ONNX model has no loss: eval gives it one that fits
 * the data's labels (cross_entropy for class indices, else mse). */
static int open_model(const eval_options *o, session *s, int forward_only, nf_dataset **ds);

static int open_session(const eval_options *o, session *s, int forward_only, nf_dataset **ds)
{
    memset(s, 0, sizeof *s);
    int rc = cli_join(&s->comm, o->comm_timeout);
    if (rc != EXIT_OK)
        return rc;
    cli_set_threads(s->comm, o->threads);
    return open_model(o, s, forward_only, ds);
}

/* The model of o (and the data, when ds and *ds is NULL) into s. */
static int open_model(const eval_options *o, session *s, int forward_only, nf_dataset **ds)
{
    nf_error err;
    int rc = cli_load_model(o->model, &s->g, NULL);
    if (rc != EXIT_OK)
        return rc;
    if (ds && !*ds && nf_dataset_load_spec(o->data, ds, &err) != NF_OK)
        return cli_fail(&err);
    if (ds && cli_is_onnx(o->model) && (rc = cli_add_loss(s->g, (*ds)->y_shape.rank == 0 ? "cross_entropy" : "mse")) !=
                                           EXIT_OK)
        return rc;
    unsigned flags = (o->allow_extra ? NF_WEIGHTS_ALLOW_EXTRA : 0) | (o->allow_nonfinite ? NF_WEIGHTS_ALLOW_NONFINITE : 0);
    if ((o->weights && nf_weights_load(s->g, o->weights, flags, &err) != NF_OK) ||
        (forward_only ? nf_binding_find_inference(s->g, &s->bind, &err) : nf_binding_find(s->g, &s->bind, &err)) !=
            NF_OK ||
        nf_plan_compile(s->g, o->batch, NF_PLAN_INFERENCE | NF_PLAN_KEEP_VALUES, &s->plan, &err) != NF_OK)
        return cli_fail(&err);
    return EXIT_OK;
}

static void close_session(session *s)
{
    nf_plan_free(s->plan);
    nf_graph_free(s->g);
    nf_comm_free(s->comm);
}

/* Rank 0 reports and writes; the others only compute. */
static int reports(const session *s) { return nf_comm_rank(s->comm) == 0; }

/* Runs every sample of ds; collects the scores (count x score_size) and
 * the mean loss. Under mpirun each process runs its block of the samples
 * (process r of N: [r count / N, (r + 1) count / N)) and the blocks are
 * summed into every process's array: each score comes from one process,
 * the others add zeros, so the scores are exactly one process's. */
static int run_all(session *s, const nf_dataset *ds, float **scores, int64_t *score_size, double *loss)
{
    nf_error err;
    nf_shape shape;
    nf_node_shape(s->bind.scores, &shape, NULL);
    *score_size = nf_shape_size(&shape);
    *scores = calloc((size_t)(ds->count * *score_size) + 1, sizeof(float));
    if (!*scores) {
        fprintf(stderr, "nodeflow: %sout of memory\n", cli_who);
        return EXIT_RUNTIME;
    }
    int64_t capacity = nf_plan_batch(s->plan), n = nf_comm_size(s->comm), r = nf_comm_rank(s->comm);
    int64_t first = ds->count * r / n, end = ds->count * (r + 1) / n;
    double total = 0;
    for (int64_t start = first; start < end; start += capacity) {
        int64_t rows = end - start < capacity ? end - start : capacity;
        nf_tensor out;
        if (nf_plan_set_batch(s->plan, rows, &err) != NF_OK ||
            nf_binding_feed(s->plan, &s->bind, ds, start, rows, &err) != NF_OK)
            return cli_fail(&err);
        if (nf_plan_forward(s->plan, &err) != NF_OK || nf_plan_value(s->plan, s->bind.scores, &out, &err) != NF_OK)
            return cli_fail(&err);
        memcpy(*scores + start * *score_size, out.data, (size_t)(rows * *score_size) * sizeof(float));
        total += nf_plan_loss(s->plan) * (double)rows;
    }
    if (n > 1 && (nf_comm_sum_floats(s->comm, *scores, ds->count * *score_size, &err) != NF_OK ||
                  nf_comm_sum_doubles(s->comm, &total, 1, &err) != NF_OK))
        return cli_fail(&err);
    *loss = total / (double)ds->count;
    return EXIT_OK;
}

/* ---- eval --------------------------------------------------------------- */

/* Each sample's class and its predicted class (the highest score), for
 * the intervals; *labels holds both (2 count), freed by the caller. */
static int class_predictions(const nf_dataset *ds, const float *scores, int64_t classes, nf_predictions *p,
                             int32_t **labels)
{
    *labels = malloc((size_t)(2 * ds->count) * sizeof(int32_t));
    if (!*labels)
        return 0;
    for (int64_t i = 0; i < ds->count; i++) {
        const float *s = scores + i * classes;
        int32_t best = 0;
        for (int32_t c = 1; c < classes; c++)
            best = s[c] > s[best] ? c : best;
        (*labels)[i] = (int32_t)ds->y[i];
        (*labels)[ds->count + i] = best;
    }
    *p = (nf_predictions){.count = ds->count, .classes = classes, .label = *labels, .predicted = *labels + ds->count};
    return 1;
}

/* The classes' names: --class-names, Fashion-MNIST's for its data, else
 * the numbers. names[] points into buf. */
static int class_names(const eval_options *o, int64_t classes, const char **names, char *buf, size_t size)
{
    static const char *const fashion[] = {"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                                          "Sandal",      "Shirt",   "Sneaker",  "Bag",   "Ankle boot"};
    const char *list = o->class_names;
    if (!list && classes == 10 && !strncmp(o->data, "fashion-mnist", 13)) {
        for (int c = 0; c < 10; c++)
            names[c] = fashion[c];
        return EXIT_OK;
    }
    size_t used = 0;
    for (int64_t c = 0; c < classes; c++) {
        size_t n = list ? strcspn(list, ",") : 0;
        int w = list ? snprintf(buf + used, size - used, "%.*s", (int)n, list)
                     : snprintf(buf + used, size - used, "%lld", (long long)c);
        if (w < 0 || used + (size_t)w + 1 >= size || (list && n == 0))
            return cli_usage("eval", "--class-names: %lld names joined by ',' (short ones), please",
                             (long long)classes);
        names[c] = buf + used;
        used += (size_t)w + 1;
        if (list)
            list = list[n] ? list + n + 1 : (c + 1 < classes ? NULL : list + n);
        if (o->class_names && !list && c + 1 < classes)
            return cli_usage("eval", "--class-names gives fewer names than the %lld classes", (long long)classes);
    }
    if (list && *list)
        return cli_usage("eval", "--class-names gives more names than the %lld classes", (long long)classes);
    return EXIT_OK;
}

static int classification_report(const nf_dataset *ds, const float *scores, int64_t classes, double loss,
                                 const eval_options *o)
{
    int json = o->json;
    nf_predictions pred;
    int32_t *labels;
    const char **names = NULL; /* for the picture: the names first, so that a bad list is refused before */
    char *name_text = NULL;    /* anything is printed */
    if (o->confusion_png) {
        names = calloc((size_t)classes, sizeof *names);
        name_text = malloc(16384);
        int rc = names && name_text ? class_names(o, classes, names, name_text, 16384) : EXIT_RUNTIME;
        if (rc != EXIT_OK) {
            free(names);
            free(name_text);
            return rc;
        }
    }
    int64_t *confusion = calloc((size_t)(classes * classes), sizeof *confusion), correct = 0;
    if (!confusion || !class_predictions(ds, scores, classes, &pred, &labels)) {
        free(confusion);
        free(names);
        free(name_text);
        fprintf(stderr, "nodeflow: out of memory\n");
        return EXIT_RUNTIME;
    }
    for (int64_t i = 0; i < ds->count; i++) {
        int64_t best = pred.predicted[i], label = pred.label[i];
        if (label >= 0 && label < classes)
            confusion[label * classes + best]++;
        correct += best == label;
    }
    double accuracy = (double)correct / (double)ds->count, macro_f1 = 0;
    char n1[32], n2[32], n3[32], n4[32];
    if (json)
        printf("{\"samples\": %lld, \"loss\": %s, \"accuracy\": %s, \"classes\": [", (long long)ds->count,
               cli_json_number(n1, sizeof n1, loss), cli_json_number(n2, sizeof n2, accuracy));
    else
        printf("samples %lld  loss %.4f  accuracy %.2f%%\n\nclass  precision  recall      f1  support\n",
               (long long)ds->count, loss, 100 * accuracy);
    for (int64_t c = 0; c < classes; c++) {
        int64_t tp = confusion[c * classes + c], predicted = 0, actual = 0;
        for (int64_t k = 0; k < classes; k++) {
            predicted += confusion[k * classes + c];
            actual += confusion[c * classes + k];
        }
        double p = predicted ? (double)tp / (double)predicted : 0, r = actual ? (double)tp / (double)actual : 0;
        double f1 = p + r > 0 ? 2 * p * r / (p + r) : 0;
        macro_f1 += f1 / (double)classes;
        if (json)
            printf("%s{\"class\": %lld, \"precision\": %s, \"recall\": %s, \"f1\": %s, \"support\": %lld}",
                   c ? ", " : "", (long long)c, cli_json_number(n1, sizeof n1, p), cli_json_number(n2, sizeof n2, r),
                   cli_json_number(n3, sizeof n3, f1), (long long)actual);
        else
            printf("%5lld  %9.4f  %6.4f  %6.4f  %7lld\n", (long long)c, p, r, f1, (long long)actual);
    }
    int rc = EXIT_OK;
    if (json) {
        printf("], \"macro_f1\": %s, \"confusion\": [", cli_json_number(n4, sizeof n4, macro_f1));
        for (int64_t a = 0; a < classes; a++) {
            printf("%s[", a ? ", " : "");
            for (int64_t b = 0; b < classes; b++)
                printf("%s%lld", b ? ", " : "", (long long)confusion[a * classes + b]);
            printf("]");
        }
        printf("]");
        if (o->intervals)
            rc = cli_print_intervals(stdout, &pred, &o->ci, 1);
        printf("}\n");
    } else {
        printf("macro F1 %.4f\n\nconfusion matrix (rows: true class, columns: predicted)\n      ", macro_f1);
        for (int64_t b = 0; b < classes; b++)
            printf("%6lld", (long long)b);
        printf("\n");
        for (int64_t a = 0; a < classes; a++) {
            printf("%6lld", (long long)a);
            for (int64_t b = 0; b < classes; b++)
                printf("%6lld", (long long)confusion[a * classes + b]);
            printf("\n");
        }
        if (o->intervals)
            rc = cli_print_intervals(stdout, &pred, &o->ci, 0);
    }
    const char *slash = strrchr(o->model, '/');
    if (rc == EXIT_OK && o->confusion_png)
        rc = cli_plot_confusion(o->confusion_png, confusion, classes, names, slash ? slash + 1 : o->model);
    free(confusion);
    free(labels);
    free(names);
    free(name_text);
    return rc;
}

/* Targets with one score each: the task's metrics from nf_evaluate
 * (multi-label: per-label and subset accuracy, micro F1; regression: MSE,
 * MAE and R^2 pooled and per output). */
static int task_report(session *s, const nf_dataset *ds, const eval_options *o, const nf_predictions *pred)
{
    nf_error err;
    int json = o->json, rc = EXIT_OK;
    static nf_epoch_stats stats; /* large: its running sums */
    if (nf_evaluate_shared(s->plan, ds, &s->bind, s->comm, &stats, &err) != NF_OK)
        return cli_fail(&err);
    if (!reports(s))
        return EXIT_OK;
    if (pred && stats.task != NF_TASK_REGRESSION) {
        fprintf(stderr, "nodeflow: --ci: intervals are computed for class labels and regression targets; these "
                        "targets are neither\n");
        pred = NULL;
    }
    if (json) {
        printf("{\"samples\": %lld, ", (long long)ds->count);
        cli_metrics_json(stdout, &stats);
        if (pred)
            rc = cli_print_intervals(stdout, pred, &o->ci, 1);
        printf("}\n");
        return rc;
    }
    printf("samples %lld  loss %.4f ", (long long)ds->count, stats.loss);
    cli_metrics_text(stdout, &stats);
    printf("\n");
    if (stats.task == NF_TASK_REGRESSION && stats.outputs > 1) {
        printf("\noutput        mse        mae       r2\n");
        for (int j = 0; j < stats.outputs; j++)
            printf("%6d  %9.4g  %9.4g  %7.4f\n", j, stats.output_mse[j], stats.output_mae[j], stats.output_r2[j]);
    }
    if (pred)
        rc = cli_print_intervals(stdout, pred, &o->ci, 0);
    return rc;
}

/* One output per sample against 0/1 labels: a binary classifier, whose
 * threshold is the binding's (0 for a logit that a loss reads as one,
 * else 0.5: the same rule as training's). Rewrites the scores as two
 * columns. */
static int binary_scores(const session *s, int64_t count, float **scores)
{
    double threshold = s->bind.threshold;
    float *two = malloc((size_t)(2 * count) * sizeof(float));
    if (!two)
        return 0;
    for (int64_t i = 0; i < count; i++) {
        two[2 * i] = (float)(threshold - (*scores)[i]);
        two[2 * i + 1] = (float)((*scores)[i] - threshold);
    }
    free(*scores);
    *scores = two;
    return 1;
}

static const char eval_help[] =
    "usage: nodeflow eval MODEL.nfg --weights W --data SPEC [--json] [--batch N] [--threads N] [--allow-extra]\n"
    "                      [--allow-nonfinite] [--ci C [--bootstrap N] [--seed S] [--half-width E] [--jackknife]]\n"
    "                      [--confusion-png FILE [--class-names a,b,...]]\n\n"
    "Loss and, for classifiers (one score per class and class-index labels, or one\n"
    "logit or probability per sample and 0/1 labels), accuracy,\n"
    "per-class precision, recall and F1 and the confusion matrix; for other\n"
    "outputs MSE, MAE and R^2. --json prints one JSON object instead (a number\n"
    "that is not finite is null there). Weights must be finite float32 values\n"
    "unless --allow-nonfinite; tensors the model lacks are refused unless\n"
    "--allow-extra.\n\n"
    "  --ci C            confidence intervals at level C (0.95: 95%) for every metric:\n"
    "                    a percentile bootstrap over the samples, stratified by class,\n"
    "                    run in parallel; for accuracy also Wilson's score interval, and\n"
    "                    the test samples needed for a half-width of --half-width E\n"
    "                    (default 0.01: n = z^2 p (1 - p) / e^2) when it is wider\n"
    "  --bootstrap N     resamples (default 1000); --seed S (default 1) draws them\n"
    "                    (the same at any thread count)\n"
    "  --jackknife       each metric's jackknife bias and standard error as well\n"
    "  --confusion-png F the confusion matrix as a picture (.png or .svg; a build with\n"
    "                    cairo), the classes named by --class-names (Fashion-MNIST's\n"
    "                    names for its data, else numbers)\n\n"
    "Under mpirun -np N the processes share the samples out and rank 0 prints the\n"
    "figures of all of them; --comm-timeout S (default 600, 0: none) ends the job\n"
    "when a process does not answer for S seconds.\n";

int cmd_eval(int argc, char **argv)
{
    eval_options o;
    int rc = parse_options(argc, argv, "eval", eval_help, &o);
    if (rc)
        return rc < 0 ? EXIT_OK : rc;
    session s;
    nf_dataset *ds = NULL;
    nf_error err;
    float *scores = NULL;
    int64_t size = 0;
    double loss = 0;
    rc = open_session(&o, &s, 0, &ds);
    if (rc == EXIT_OK && o.ci.jackknife && ds->count < 2)
        rc = cli_usage("eval", "--jackknife needs 2 samples or more");
    if (rc == EXIT_OK) {
        /* what the report is decided from the shapes: class labels and a
         * binary classifier need every score (run_all); other targets,
         * several label inputs included, are nf_evaluate's task metrics */
        nf_shape shape;
        nf_node_shape(s.bind.scores, &shape, NULL);
        size = nf_shape_size(&shape);
        int one_label = s.bind.n_y == 1;
        int class_labels = one_label && shape.rank == 1 && ds->y_shape.rank == 0 && size > 1; /* C scores, one label */
        int binary = one_label && size == 1 && ds->classes == 2;
        if (class_labels && nf_dataset_check_classes(ds, size, &err) != NF_OK)
            rc = cli_fail(&err);
        else if (class_labels || binary) {
            rc = run_all(&s, ds, &scores, &size, &loss);
            if (rc == EXIT_OK && binary && !binary_scores(&s, ds->count, &scores)) {
                fprintf(stderr, "nodeflow: out of memory\n");
                rc = EXIT_RUNTIME;
            }
            if (rc == EXIT_OK && reports(&s))
                rc = classification_report(ds, scores, binary ? 2 : size, loss, &o);
        } else if (one_label && size == nf_shape_size(&ds->y_shape) && o.intervals) {
            /* regression with intervals: every output, against the targets */
            rc = run_all(&s, ds, &scores, &size, &loss);
            nf_predictions pred = {.count = ds->count, .outputs = size, .target = ds->y, .output = scores};
            if (rc == EXIT_OK)
                rc = task_report(&s, ds, &o, &pred);
        } else if (!one_label || size == nf_shape_size(&ds->y_shape)) {
            if (o.intervals && reports(&s))
                fprintf(stderr, "nodeflow: --ci: intervals are computed for class labels and regression targets; "
                                "these targets are neither\n");
            rc = task_report(&s, ds, &o, NULL);
        } else
            rc = cli_usage("eval", "the outputs (%lld per sample) match neither class labels nor targets",
                           (long long)size);
    }
    free(scores);
    nf_dataset_free(ds);
    rc = cli_end(s.comm, rc);
    close_session(&s);
    return rc;
}

/* ---- compare ------------------------------------------------------------ */

static const char compare_help[] =
    "usage: nodeflow compare A.nfg --weights WA B.nfg --weights WB --data SPEC [--ci C] [--bootstrap N]\n"
    "                         [--permutations N] [--seed S] [--json] [--batch N] [--threads N]\n\n"
    "Runs two models on the same samples and says whether one is better: each\n"
    "metric of both, their difference A - B with a paired percentile bootstrap\n"
    "interval (--bootstrap resamples, default 1000, stratified by class; --ci\n"
    "confidence, default 0.95), a paired permutation test of each difference\n"
    "(--permutations, default 1000), and for classifiers McNemar's exact test of\n"
    "the samples only one model gets right; then a sentence of what it means. Both\n"
    "models must be classifiers of the same classes, or regressions of the same\n"
    "targets. A .onnx model holds its own weights. --seed (default 1) makes the\n"
    "resamples and permutations reproducible.\n";

/* One model's predictions on every sample of ds: classes or outputs. */
static int predictions_of(const eval_options *o, session *s, nf_dataset **ds, float **scores, nf_predictions *p,
                          int32_t **labels)
{
    int rc = open_model(o, s, 0, ds);
    int64_t size;
    double loss;
    if (rc == EXIT_OK)
        rc = run_all(s, *ds, scores, &size, &loss);
    if (rc != EXIT_OK)
        return rc;
    nf_error err;
    if ((*ds)->y_shape.rank == 0 && size == 1 && (*ds)->classes == 2 && s->bind.n_y == 1) {
        /* one score against 0/1 labels: a binary classifier, as eval takes it */
        if (!binary_scores(s, (*ds)->count, scores)) {
            fprintf(stderr, "nodeflow: out of memory\n");
            return EXIT_RUNTIME;
        }
        size = 2;
    }
    if ((*ds)->y_shape.rank == 0 && size > 1) {
        if (nf_dataset_check_classes(*ds, size, &err) != NF_OK)
            return cli_fail(&err);
        if (!class_predictions(*ds, *scores, size, p, labels)) {
            fprintf(stderr, "nodeflow: out of memory\n");
            return EXIT_RUNTIME;
        }
        return EXIT_OK;
    }
    if (size != nf_shape_size(&(*ds)->y_shape))
        return cli_usage("compare", "model %s gives %lld outputs per sample, and the data has %lld targets",
                         o->model, (long long)size, (long long)nf_shape_size(&(*ds)->y_shape));
    *p = (nf_predictions){.count = (*ds)->count, .outputs = size, .target = (*ds)->y, .output = *scores};
    return EXIT_OK;
}

static int takes_compare_value(const char *name) { return takes_value(name) && strcmp(name, "--input") &&
                                                          strcmp(name, "--output"); }

static int parse_compare(int argc, char **argv, eval_options *o, const char **models, const char **weights)
{
    default_options(o);
    int n = 0;
    cli_args a = {argc, argv, 1, "compare"};
    const char *flag, *v;
    while (cli_next(&a, &flag, &v, takes_compare_value)) {
        if (!flag) {
            if (n == 2)
                return cli_usage("compare", "two models, please");
            models[n++] = v;
        } else if (!strcmp(flag, "--help")) {
            fputs(compare_help, stdout);
            return -1;
        } else if (!strcmp(flag, "--weights") && v && n > 0 && !weights[n - 1]) {
            weights[n - 1] = v;
        } else if (!strcmp(flag, "--data") && v) {
            o->data = v;
        } else if (!strcmp(flag, "--json") && !v) {
            o->json = 1;
        } else if (!strcmp(flag, "--batch") && cli_parse_int(v, 1, 1 << 20, &o->batch)) {
        } else if (!strcmp(flag, "--threads") && cli_parse_int(v, 1, 1024, &o->threads)) {
        } else if (!strcmp(flag, "--permutations") && cli_parse_int(v, 1, 1000000, &o->ci.permutations)) {
        } else if (strcmp(flag, "--jackknife") && strcmp(flag, "--half-width") && ci_option(flag, v, o)) {
        } else {
            return cli_usage("compare", !strcmp(flag, "--weights") ? "--weights follows its model, once"
                                        : takes_compare_value(flag) ? "bad value for %s" : "unknown option '%s'", flag);
        }
    }
    if (n != 2 || !o->data)
        return cli_usage("compare", "'nodeflow compare A.nfg --weights WA B.nfg --weights WB --data SPEC'");
    for (int k = 0; k < 2; k++)
        if (!weights[k] && !cli_is_onnx(models[k]))
            return cli_usage("compare", "--weights after %s (a .onnx model holds its own)", models[k]);
    return EXIT_OK;
}

int cmd_compare(int argc, char **argv)
{
    eval_options o;
    const char *models[2] = {NULL, NULL}, *weights[2] = {NULL, NULL};
    int rc = parse_compare(argc, argv, &o, models, weights);
    if (rc)
        return rc < 0 ? EXIT_OK : rc;
    session s[2];
    memset(s, 0, sizeof s);
    nf_dataset *ds = NULL;
    float *scores[2] = {NULL, NULL};
    int32_t *labels[2] = {NULL, NULL};
    nf_predictions p[2];
    rc = cli_join(&s[0].comm, o.comm_timeout);
    if (rc == EXIT_OK)
        cli_set_threads(s[0].comm, o.threads);
    for (int k = 0; k < 2 && rc == EXIT_OK; k++) {
        eval_options one = o;
        one.model = models[k], one.weights = weights[k];
        s[k].comm = s[0].comm;
        rc = predictions_of(&one, &s[k], &ds, &scores[k], &p[k], &labels[k]);
    }
    if (rc == EXIT_OK && (p[0].classes != p[1].classes || p[0].outputs != p[1].outputs))
        rc = cli_usage("compare", "the two models' outputs are not alike (%lld and %lld classes)",
                       (long long)p[0].classes, (long long)p[1].classes);
    if (rc == EXIT_OK && reports(&s[0]))
        rc = cli_print_comparison(stdout, &p[0], &p[1], models[0], models[1], &o.ci, o.json);
    rc = cli_end(s[0].comm, rc);
    for (int k = 0; k < 2; k++) {
        free(scores[k]);
        free(labels[k]);
        nf_plan_free(s[k].plan);
        nf_graph_free(s[k].g);
    }
    nf_comm_free(s[0].comm);
    nf_dataset_free(ds);
    return rc;
}

/* ---- infer ------------------------------------------------------------- */

static int ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && strcmp(s + n - m, suffix) == 0;
}

static int read_input(const char *path, nf_dataset **ds)
{
    nf_error err;
    nf_status st;
    if (!strcmp(path, "-")) {
        size_t cap = 1 << 16, len = 0;
        char *text = malloc(cap);
        size_t got;
        while (text && (got = fread(text + len, 1, cap - len, stdin)) > 0) {
            len += got;
            if (len == cap) {
                char *grown = cap < ((size_t)1 << 32) ? realloc(text, cap *= 2) : NULL;
                if (!grown)
                    free(text);
                text = grown;
            }
        }
        if (!text) {
            fprintf(stderr, "nodeflow: out of memory reading standard input\n");
            return EXIT_RUNTIME;
        }
        st = nf_dataset_parse_csv(text, len, "<stdin>", NULL, ds, &err);
        free(text);
    } else if (ends_with(path, ".npy")) {
        st = nf_dataset_load_npy(path, NULL, ds, &err);
    } else {
        st = nf_dataset_load_csv(path, NULL, ds, &err);
    }
    return st == NF_OK ? EXIT_OK : cli_fail(&err);
}

static int write_csv(FILE *f, const float *data, int64_t rows, int64_t cols)
{
    for (int64_t r = 0; r < rows; r++)
        for (int64_t c = 0; c < cols; c++)
            fprintf(f, "%.9g%c", data[r * cols + c], c + 1 < cols ? ',' : '\n');
    return ferror(f) ? EXIT_RUNTIME : EXIT_OK;
}

typedef struct csv_rows {
    const float *data;
    int64_t rows, cols;
} csv_rows;

static int write_csv_rows(FILE *f, void *ctx)
{
    const csv_rows *c = ctx;
    return write_csv(f, c->data, c->rows, c->cols) == EXIT_OK ? 0 : -1;
}

/* The CSV to a file, streamed, and whole or not at all
 * (nf_file_write_stream). */
static int save_csv(const char *path, const float *data, int64_t rows, int64_t cols)
{
    csv_rows c = {data, rows, cols};
    nf_error err;
    return nf_file_write_stream(path, write_csv_rows, &c, &err) == NF_OK ? EXIT_OK : cli_fail(&err);
}

static const char infer_help[] =
    "usage: nodeflow infer MODEL.nfg --weights W --input FILE [--output FILE] [--batch N] [--threads N]\n"
    "                       [--allow-extra] [--allow-nonfinite]\n\n"
    "Runs the model on every row of FILE (.npy, or CSV of features; '-' reads CSV\n"
    "from standard input) and writes the model's output (its first output node,\n"
    "else its loss's first input) per row: CSV on standard output, or to --output\n"
    "(.npy or .csv by name). A .npy keeps the output's shape ([N, T, H] for [T, H]\n"
    "per sample); a CSV row holds a sample's output flattened in C order. The model\n"
    "needs no loss and no label input: infer only runs it forward.\n\n"
    "Under mpirun -np N the processes share the rows out and rank 0 writes them in\n"
    "input order; --comm-timeout S as for eval.\n";

int cmd_infer(int argc, char **argv)
{
    eval_options o;
    int rc = parse_options(argc, argv, "infer", infer_help, &o);
    if (rc)
        return rc < 0 ? EXIT_OK : rc;
    session s;
    nf_dataset *ds = NULL;
    float *scores = NULL;
    int64_t size = 0;
    double loss;
    nf_error err;
    if (o.output && nf_output_path_check(o.output, &err) != NF_OK)
        return cli_fail(&err);
    rc = open_session(&o, &s, 1, NULL);
    if (rc == EXIT_OK)
        rc = read_input(o.input, &ds);
    if (rc == EXIT_OK)
        rc = run_all(&s, ds, &scores, &size, &loss);
    if (rc == EXIT_OK && !reports(&s)) {
        /* rank 0 writes every row, in input order */
    } else if (rc == EXIT_OK && o.output && ends_with(o.output, ".npy")) { /* [N, the output's per-sample shape] */
        nf_shape per_sample, shape = {1, {ds->count}};
        nf_node_shape(s.bind.scores, &per_sample, NULL);
        for (int i = 0; i < per_sample.rank && shape.rank < NF_MAX_RANK; i++)
            shape.dim[shape.rank++] = per_sample.dim[i];
        if (per_sample.rank >= NF_MAX_RANK) /* no room for the sample axis: one row per sample */
            shape = (nf_shape){2, {ds->count, size}};
        if (nf_npy_write(o.output, scores, &shape, &err) != NF_OK)
            rc = cli_fail(&err);
    } else if (rc == EXIT_OK && o.output) {
        rc = save_csv(o.output, scores, ds->count, size);
    } else if (rc == EXIT_OK) {
        rc = write_csv(stdout, scores, ds->count, size);
    }
    free(scores);
    nf_dataset_free(ds);
    rc = cli_end(s.comm, rc);
    close_session(&s);
    return rc;
}
