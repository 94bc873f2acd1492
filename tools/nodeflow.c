/* nodeflow — the command line: check, dot, train, eval, infer and ops
 * over model description files. Exit codes: 0 success, 1 runtime failure,
 * 2 usage or input error. */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"

char cli_who[32];

int cli_join(nf_comm **comm, double timeout)
{
    nf_error err;
    if (nf_comm_world(comm, &err) != NF_OK)
        return cli_fail(&err);
    if (timeout >= 0 && nf_comm_set_timeout(*comm, timeout, &err) != NF_OK) {
        nf_comm_free(*comm);
        *comm = NULL;
        return cli_fail(&err);
    }
    if (nf_comm_size(*comm) > 1)
        snprintf(cli_who, sizeof cli_who, "rank %d: ", nf_comm_rank(*comm));
    return EXIT_OK;
}

void cli_set_threads(const nf_comm *comm, long long threads)
{
    int alone = nf_comm_size(comm) == 1;
    nf_set_threads(threads > 0 ? (int)threads : alone || getenv("NODEFLOW_THREADS") ? 0 : 1);
}

int cli_end(const nf_comm *comm, int rc)
{
    if (rc != EXIT_OK && nf_comm_size(comm) > 1)
        nf_comm_abort(comm, rc);
    return rc;
}

int cli_fail(const nf_error *err)
{
    fprintf(stderr, "nodeflow: %s%s\n", cli_who, err->message);
    switch (err->code) {
    case NF_ERR_NO_MEMORY:
    case NF_ERR_NUMERIC:
    case NF_ERR_INTERRUPTED:
    case NF_ERR_STATE:
        return EXIT_RUNTIME;
    default:
        return EXIT_USAGE;
    }
}

int cli_usage(const char *command, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "nodeflow %s: ", command);
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n(see 'nodeflow %s --help')\n", command);
    va_end(ap);
    return EXIT_USAGE;
}

int cli_next(cli_args *a, const char **flag, const char **value, int (*takes_value)(const char *name))
{
    static char name[64];
    if (a->at >= a->argc)
        return 0;
    const char *arg = a->argv[a->at++];
    *value = NULL;
    /* a short option ("-o") when the command takes one by that name */
    int is_short = arg[0] == '-' && arg[1] && arg[1] != '-' && !arg[2] && takes_value(arg);
    if ((strncmp(arg, "--", 2) != 0 || arg[2] == '\0') && !is_short) {
        *flag = NULL;
        *value = arg;
        return 1;
    }
    const char *eq = strchr(arg, '=');
    size_t n = eq ? (size_t)(eq - arg) : strlen(arg);
    if (n >= sizeof name)
        n = sizeof name - 1;
    memcpy(name, arg, n);
    name[n] = '\0';
    *flag = name;
    if (eq)
        *value = eq + 1;
    else if (takes_value(name) && a->at < a->argc)
        *value = a->argv[a->at++];
    return 1;
}

int cli_parse_int(const char *text, long long min, long long max, long long *out)
{
    char *end;
    errno = 0;
    long long v = text ? strtoll(text, &end, 10) : 0;
    if (!text || end == text || *end || errno || v < min || v > max)
        return 0;
    *out = v;
    return 1;
}

int cli_parse_double(const char *text, double *out)
{
    char *end;
    errno = 0;
    double v = text ? strtod(text, &end) : 0;
    if (!text || end == text || *end || errno || !isfinite(v))
        return 0;
    *out = v;
    return 1;
}

int cli_add_loss(nf_graph *g, const char *loss)
{
    nf_node *out = NULL;
    int outputs = 0;
    for (int i = 0; i < nf_graph_node_count(g); i++) {
        if (nf_node_is_loss(nf_graph_node(g, i))) {
            fprintf(stderr, "nodeflow: %sthe model has a loss already\n", cli_who);
            return EXIT_USAGE;
        }
        if (nf_node_is_output(nf_graph_node(g, i)))
            out = nf_graph_node(g, i), outputs++;
    }
    nf_error err;
    if (outputs != 1) {
        fprintf(stderr, "nodeflow: %sa loss needs a model of one output, not %d\n", cli_who, outputs);
        return EXIT_USAGE;
    }
    nf_shape s;
    if (nf_node_shape(out, &s, &err) != NF_OK)
        return cli_fail(&err);
    int ce = !strcmp(loss, "cross_entropy");
    nf_node *scores = out;
    if (ce && nf_shape_size(&s) == 1) /* one score per sample: a binary classifier's logit */
        loss = "bce_with_logits", ce = 0;
    /* probabilities: the loss takes the logits before the softmax (a
     * log-softmax may stay: cross_entropy of log-probabilities is theirs) */
    if (ce && nf_node_input_count(out) == 1 && !strcmp(nf_node_op(nf_node_input(out, 0)), "softmax") &&
        nf_node_input_count(nf_node_input(out, 0)) == 1)
        scores = nf_node_input(nf_node_input(out, 0), 0);
    char label[NF_NAME_MAX] = "label", name[NF_NAME_MAX] = "loss";
    for (int k = 2; nf_graph_find(g, label); k++) /* names the model does not use */
        snprintf(label, sizeof label, "label_%d", k);
    for (int k = 2; nf_graph_find(g, name); k++)
        snprintf(name, sizeof name, "loss_%d", k);
    nf_node *in[2] = {scores, nf_input(g, label, ce ? 0 : s.rank, s.dim)};
    if (!in[1] || !nf_graph_add(g, loss, name, 2, in)) { /* (the graph keeps the error) */
        nf_graph_status(g, &err);
        return cli_fail(&err);
    }
    return nf_graph_validate(g, &err) == NF_OK ? EXIT_OK : cli_fail(&err);
}

int cli_is_onnx(const char *path)
{
    size_t n = strlen(path);
    return n > 5 && !strcmp(path + n - 5, ".onnx");
}

int cli_load_model(const char *path, nf_graph **g, nf_train_config *train)
{
    nf_error err;
    if (cli_is_onnx(path)) { /* the weights come with it; no [train] section */
        if (train)
            nf_train_config_init(train);
        if (nf_onnx_load(path, g, &err) != NF_OK)
            return cli_fail(&err);
        return EXIT_OK;
    }
    if (nf_model_load(path, g, train, &err) != NF_OK)
        return cli_fail(&err);
    return EXIT_OK;
}

const char *cli_json_number(char *buf, size_t size, double v)
{
    if (!isfinite(v))
        return "null"; /* JSON has no NaN or infinity */
    snprintf(buf, size, "%.6g", v);
    return buf;
}

/* Output that could not be written is a failure: a full disk or a closed
 * pipe behind standard output must not end in exit status 0. */
static int finish_output(int rc)
{
    errno = 0;
    if (fflush(stdout) != 0 || ferror(stdout)) {
        fprintf(stderr, "nodeflow: cannot write to standard output: %s\n", strerror(errno ? errno : EIO));
        return rc == EXIT_OK ? EXIT_RUNTIME : rc;
    }
    return rc;
}

double cli_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int cmd_ops(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "--help") == 0) {
        printf("usage: nodeflow ops\n\nPrints every node type with its inputs and attributes (Markdown,\n"
               "the reference part of docs/model-format.md).\n");
        return EXIT_OK;
    }
    if (argc > 1)
        return cli_usage("ops", "takes no arguments");
    nf_error err;
    char *text;
    if (nf_model_reference(&text, &err) != NF_OK)
        return cli_fail(&err);
    fputs(text, stdout);
    free(text);
    return EXIT_OK; /* main checks that standard output took it */
}

static void usage(FILE *out)
{
    fprintf(out,
            "usage: nodeflow COMMAND [ARGS...]\n\n"
            "commands:\n"
            "  check MODEL.nfg             validate a model and print a summary table\n"
            "  dot MODEL.nfg               print the graph in Graphviz DOT\n"
            "  train MODEL.nfg --data SPEC train, with options; see 'nodeflow train --help'\n"
            "  eval MODEL.nfg --weights W --data SPEC    loss, accuracy and per-class metrics\n"
            "                              (--ci 0.95: with confidence intervals)\n"
            "  compare A.nfg --weights WA B.nfg --weights WB --data SPEC   is one model better?\n"
            "  infer MODEL.nfg --weights W --input FILE  run a batch and write the outputs\n"
            "  generate MODEL.nfg --weights W [--prime TEXT]   sample text from a text model\n"
            "  import MODEL.onnx -o MODEL.nfg --weights-out W  an ONNX model as a model file and weights\n"
            "                              (check, infer and eval also take a .onnx, with its weights)\n"
            "  export MODEL.nfg --weights W -o MODEL.onnx      the inference graph as an ONNX model\n"
            "  plot LOG.csv -o FILE.svg    learning curves from train --log (PNG too)\n"
            "  ops                         the node types and their attributes\n\n");
    cli_print_specs(out);
    fprintf(out, "exit codes: 0 success, 1 runtime failure, 2 usage or input error\n");
}

void cli_print_specs(FILE *out)
{
    fprintf(out, "data SPEC, one of:\n");
    for (int i = 0; nf_dataset_spec_usage(i); i++)
        fprintf(out, "  %s\n", nf_dataset_spec_usage(i));
}

int main(int argc, char **argv)
{
    static const struct {
        const char *name;
        int (*run)(int, char **);
    } commands[] = {
        {"check", cmd_check}, {"dot", cmd_dot}, {"train", cmd_train},
        {"eval", cmd_eval},   {"infer", cmd_infer}, {"generate", cmd_generate}, {"ops", cmd_ops},
        {"import", cmd_import}, {"export", cmd_export}, {"compare", cmd_compare}, {"plot", cmd_plot},
    };
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
        usage(argc < 2 ? stderr : stdout);
        return finish_output(argc < 2 ? EXIT_USAGE : EXIT_OK);
    }
    if (!strcmp(argv[1], "--version")) {
        printf("nodeflow %s\n", NF_VERSION);
        return finish_output(EXIT_OK);
    }
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (strcmp(argv[1], commands[i].name) == 0)
            return finish_output(commands[i].run(argc - 1, argv + 1));
    fprintf(stderr, "nodeflow: unknown command '%s'\n", argv[1]);
    usage(stderr);
    return EXIT_USAGE;
}
