/* nodeflow command line — helpers shared by the subcommands. Only this
 * program prints; the library returns errors. */
#ifndef NF_TOOLS_CLI_H
#define NF_TOOLS_CLI_H

#include <stdio.h>

#include <nodeflow/nodeflow.h>

/* Exit codes */
enum { EXIT_OK = 0, EXIT_RUNTIME = 1, EXIT_USAGE = 2 };

/* Prints "nodeflow: <message>" and returns the exit code for `err`:
 * input errors (bad files, arguments, shapes) 2, others 1. */
int cli_fail(const nf_error *err);
/* Set by a command running as one of several processes (mpirun): "rank
 * R: ", put after "nodeflow: " in the messages cli_fail prints. */
extern char cli_who[32];

/* The processes of this run (nodeflow/dist.h): under mpirun several, and
 * then cli_who names this one's rank; their collectives wait at most
 * `timeout` seconds for each other (--comm-timeout; < 0: the library's
 * default). Prints errors. */
int cli_join(nf_comm **comm, double timeout);
/* The thread budget: `threads` when given (> 0), else every core for one
 * process, and one each for several (mpirun -np 2 on 2 cores must not
 * oversubscribe them) unless NODEFLOW_THREADS says otherwise. */
void cli_set_threads(const nf_comm *comm, long long threads);
/* A command of several processes that fails in one ends them all (none
 * may wait in a collective for it); returns rc. */
int cli_end(const nf_comm *comm, int rc);
/* Prints "nodeflow <command>: <message>" and a hint to --help; returns 2. */
int cli_usage(const char *command, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Options: "--name value" or "--name=value" (and "-x value" where takes_value("-x")). */
typedef struct cli_args {
    int argc;
    char **argv;
    int at;             /* next argument to read */
    const char *command;
} cli_args;

/* The next argument: sets *flag to "--name" (or NULL for a positional
 * argument) and *value to its value (NULL for a flag with no value).
 * Returns 0 at the end. `takes_value(name)` tells which flags take one. */
int cli_next(cli_args *a, const char **flag, const char **value, int (*takes_value)(const char *name));

int cli_parse_int(const char *text, long long min, long long max, long long *out);
int cli_parse_double(const char *text, double *out);

/* Loads a model file, or an ONNX model (a name ending in .onnx: its
 * weights come with it, and *train is the defaults); prints errors. */
int cli_load_model(const char *path, nf_graph **g, nf_train_config *train);
int cli_is_onnx(const char *path);
/* A label input and a loss (cross_entropy: class indices, or
 * bce_with_logits for one score per sample; mse: targets of the output's
 * shape) on the graph's one output (for an output that is a softmax, on
 * the logits before it); prints errors. */
int cli_add_loss(nf_graph *g, const char *loss);

/* The forms of data spec (the library's table), for help texts. */
void cli_print_specs(FILE *out);

/* A number for JSON output: "%.6g" in buf, or "null" when it is NaN or
 * infinite (JSON has neither). */
const char *cli_json_number(char *buf, size_t size, double v);

/* The task metrics of s (tools/metrics.c): " acc 85.20% top5 99.10% f1
 * 0.851" (those the task has), CSV columns PREFIX_accuracy ... PREFIX_r2
 * (every metric, empty where the task has none; s NULL: all empty), JSON
 * members "loss", "task" and the task's metrics (with per-output lists
 * for regression). */
void cli_metrics_text(FILE *out, const nf_epoch_stats *s);
void cli_metrics_csv_header(FILE *out, const char *prefix);
void cli_metrics_csv(FILE *out, const nf_epoch_stats *s);
void cli_metrics_json(FILE *out, const nf_epoch_stats *s);

/* A monotonic clock in seconds. */
double cli_now(void);

int cmd_check(int argc, char **argv);
int cmd_dot(int argc, char **argv);
int cmd_train(int argc, char **argv);
int cmd_eval(int argc, char **argv);
int cmd_compare(int argc, char **argv);
int cmd_infer(int argc, char **argv);
int cmd_generate(int argc, char **argv);
int cmd_import(int argc, char **argv);
int cmd_export(int argc, char **argv);

/* How sure the metrics are (eval --ci, compare). */
typedef struct cli_ci_options {
    double confidence;        /* two-sided, e.g. 0.95 */
    double half_width;        /* the accuracy's wanted half-width, for the sample size */
    long long resamples, permutations, seed;
    int jackknife;
} cli_ci_options;

/* The metrics' intervals (bootstrap; Wilson's for accuracy; the sample
 * size; the jackknife when asked), all computed before anything is
 * printed: text lines, or a JSON member ', "intervals": {...}' (its
 * comma first) of the caller's object. */
int cli_print_intervals(FILE *f, const nf_predictions *p, const cli_ci_options *o, int json);

/* Two models on the same samples: A - B per metric with paired intervals
 * and permutation p-values, McNemar's test for classifiers, a sentence. */
int cli_print_comparison(FILE *f, const nf_predictions *a, const nf_predictions *b, const char *name_a,
                         const char *name_b, const cli_ci_options *o, int json);

/* train --folds: K-fold cross-validation of the model on the data (the
 * first `samples`, when > 0), reported by rank 0. */
int cli_cross_validate(const char *model, const char *data, long long samples, int folds, int stratified,
                       const nf_train_config *given, nf_comm *comm, int quiet, int json);

/* Pictures (cairo; without it they say so): learning curves from a
 * train --log CSV, and a confusion matrix (rows: true class) with names. */
int cli_plot_curves(const char *log_path, const char *out, const char *title);
int cli_plot_confusion(const char *out, const int64_t *confusion, int64_t classes, const char *const *names,
                       const char *title);
int cmd_plot(int argc, char **argv);

#endif
