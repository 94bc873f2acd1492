/* nodeflow check and nodeflow dot: a summary table of a model, and its
 * graph in Graphviz DOT. */
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static int no_values(const char *name) { (void)name; return 0; }

/* The one positional argument MODEL.nfg, or --help. */
static int model_argument(int argc, char **argv, const char *command, const char *help, const char **model)
{
    cli_args a = {argc, argv, 1, command};
    const char *flag, *value;
    *model = NULL;
    while (cli_next(&a, &flag, &value, no_values)) {
        if (flag && !strcmp(flag, "--help")) {
            fputs(help, stdout);
            return -1;
        }
        if (flag)
            return cli_usage(command, "unknown option '%s'", flag);
        if (*model)
            return cli_usage(command, "one model file, please");
        *model = value;
    }
    return *model ? EXIT_OK : cli_usage(command, "which model? 'nodeflow %s MODEL.nfg'", command);
}

static void format_count(char *buf, size_t size, double v)
{
    if (v >= 1e9)
        snprintf(buf, size, "%.2fG", v / 1e9);
    else if (v >= 1e6)
        snprintf(buf, size, "%.2fM", v / 1e6);
    else if (v >= 1e4)
        snprintf(buf, size, "%.1fk", v / 1e3);
    else
        snprintf(buf, size, "%.0f", v);
}

static void inputs_text(const nf_node *node, char *buf, size_t size)
{
    size_t used = 0;
    buf[0] = '\0';
    const nf_node *src = nf_memory_source(node);
    if (src)
        used += (size_t)snprintf(buf, size, "(%s at t-1)", nf_node_name(src));
    for (int i = 0; i < nf_node_input_count(node) && used < size; i++)
        used += (size_t)snprintf(buf + used, size - used, "%s%s", i ? ", " : "", nf_node_name(nf_node_input(node, i)));
}

static const char check_help[] =
    "usage: nodeflow check MODEL.nfg [--kernels] [--batch N]\n\nValidates a model file and prints every node: its "
    "operation, inputs, output\nshape (per sample), parameter count and forward FLOPs per sample, with totals, and "
    "the\nkernel set plans use.\n\n"
    "  --kernels   also compile a training plan and print, per node, what runs it: the\n"
    "              kernel set, and a library's own kernels where the set prepared them\n"
    "              (oneDNN's convolution primitives, with the implementation it chose)\n"
    "  --batch N   the batch of that plan (default: the model's [train] batch, else 64)\n";

static int check_takes_value(const char *name) { return !strcmp(name, "--batch"); }

typedef struct check_options {
    const char *model;
    int kernels;
    long long batch; /* 0: the model's */
} check_options;

static int check_arguments(int argc, char **argv, check_options *o)
{
    cli_args a = {argc, argv, 1, "check"};
    const char *flag, *value;
    memset(o, 0, sizeof *o);
    while (cli_next(&a, &flag, &value, check_takes_value)) {
        if (flag && !strcmp(flag, "--help")) {
            fputs(check_help, stdout);
            return -1;
        }
        if (flag && !strcmp(flag, "--kernels"))
            o->kernels = 1;
        else if (flag && !strcmp(flag, "--batch")) {
            if (!cli_parse_int(value, 1, 1 << 20, &o->batch))
                return cli_usage("check", "--batch wants a whole number in 1..1048576, not '%s'", value);
        } else if (flag)
            return cli_usage("check", "unknown option '%s'", flag);
        else if (o->model)
            return cli_usage("check", "one model file, please");
        else
            o->model = value;
    }
    return o->model ? EXIT_OK : cli_usage("check", "which model? 'nodeflow check MODEL.nfg'");
}

/* Per node, what runs it in a training plan of `batch` rows. */
static int print_kernels(nf_graph *g, int64_t batch)
{
    nf_plan *plan;
    nf_error err;
    if (nf_plan_compile(g, batch, NF_PLAN_TRAINING, &plan, &err) != NF_OK) {
        fprintf(stderr, "nodeflow check: %s\n", err.message);
        return EXIT_FAILURE;
    }
    printf("\nkernels of a training plan of batch %lld:\n", (long long)batch);
    for (int i = 0; i < nf_graph_node_count(g); i++) {
        const nf_node *node = nf_graph_node(g, i);
        char what[256];
        printf("  %-16s %-16s %s\n", nf_node_name(node), nf_node_op(node),
               nf_plan_node_kernels(plan, node, what, sizeof what));
    }
    nf_plan_free(plan);
    return EXIT_OK;
}

int cmd_check(int argc, char **argv)
{
    check_options o;
    int rc = check_arguments(argc, argv, &o);
    if (rc)
        return rc < 0 ? EXIT_OK : rc;
    nf_graph *g;
    nf_train_config train;
    if ((rc = cli_load_model(o.model, &g, &train)) != EXIT_OK)
        return rc;
    printf("%-16s %-16s %-24s %-16s %12s %12s\n", "node", "op", "inputs", "output", "params", "FLOPs");
    double flops = 0;
    int64_t params = 0;
    for (int i = 0; i < nf_graph_node_count(g); i++) {
        const nf_node *node = nf_graph_node(g, i);
        char shape[64], in[256], p[32], f[32];
        nf_shape s;
        nf_node_shape(node, &s, NULL);
        nf_shape_format(&s, shape, sizeof shape);
        if (nf_node_is_loss(node))
            snprintf(shape, sizeof shape, "scalar (batch)");
        inputs_text(node, in, sizeof in);
        int64_t own = nf_node_param_floats(g, node);
        if (nf_node_share_source(node))
            snprintf(p, sizeof p, "= %s", nf_node_name(nf_node_share_source(node)));
        else
            format_count(p, sizeof p, (double)own);
        double fl = nf_node_flops(node);
        format_count(f, sizeof f, fl);
        printf("%-16s %-16s %-24.24s %-16s %12s %12s\n", nf_node_name(node), nf_node_op(node), in, shape, p, f);
        params += own;
        flops += fl;
    }
    char p[32], f[32];
    format_count(p, sizeof p, (double)params);
    format_count(f, sizeof f, flops);
    printf("%-16s %-16s %-24s %-16s %12s %12s\n", "total", "", "", "", p, f);
    printf("\n%d nodes, %lld parameters (%.2f MB as float32), %s FLOPs per sample forward\n",
           nf_graph_node_count(g), (long long)params, (double)params * 4 / 1e6, f);
    const char *const *sets = nf_kernel_sets();
    printf("kernels: %s (built in:", nf_kernel_set() ? nf_kernel_set() : "none: NODEFLOW_KERNELS names no set");
    for (int i = 0; sets[i]; i++)
        printf(" %s", sets[i]);
    printf("; NODEFLOW_KERNELS=NAME picks one)\n");
    if (o.kernels && nf_kernel_set())
        rc = print_kernels(g, o.batch ? o.batch : train.batch > 0 ? train.batch : 64);
    nf_graph_free(g);
    return rc;
}

/* Fill colours and shapes by the role of a node. */
static const char *node_style(const nf_graph *g, const nf_node *node)
{
    if (nf_node_is_input(node))
        return "shape=ellipse, style=filled, fillcolor=\"#d5e8d4\"";
    if (nf_node_is_output(node))
        return "shape=ellipse, style=filled, fillcolor=\"#fff2cc\"";
    if (nf_node_is_loss(node))
        return "shape=octagon, style=filled, fillcolor=\"#f8cecc\"";
    if (nf_node_is_memory(node))
        return "shape=box3d, style=filled, fillcolor=\"#e1d5e7\"";
    if (nf_node_param_floats(g, node) > 0 || nf_node_share_source(node))
        return "shape=box, style=\"rounded,filled\", fillcolor=\"#dae8fc\"";
    return "shape=box, style=rounded";
}

int cmd_dot(int argc, char **argv)
{
    const char *path;
    int rc = model_argument(argc, argv, "dot",
                            "usage: nodeflow dot MODEL.nfg\n\nPrints the graph in Graphviz DOT: inputs green, "
                            "outputs yellow, layers with\nparameters blue, losses red, memory nodes purple; edges "
                            "carry per-sample shapes,\nmemory back edges are dashed. Render with:\n"
                            "  nodeflow dot MODEL.nfg | dot -Tpng -o model.png\n",
                            &path);
    if (rc)
        return rc < 0 ? EXIT_OK : rc;
    nf_graph *g;
    if ((rc = cli_load_model(path, &g, NULL)) != EXIT_OK)
        return rc;
    printf("digraph nodeflow {\n  rankdir=TB;\n  node [fontname=\"Helvetica\", fontsize=11];\n"
           "  edge [fontname=\"Helvetica\", fontsize=9];\n");
    for (int i = 0; i < nf_graph_node_count(g); i++) {
        const nf_node *node = nf_graph_node(g, i);
        nf_shape s;
        char shape[64];
        nf_node_shape(node, &s, NULL);
        nf_shape_format(&s, shape, sizeof shape);
        printf("  \"%s\" [label=\"%s\\n%s %s\", %s];\n", nf_node_name(node), nf_node_name(node), nf_node_op(node),
               nf_node_is_loss(node) ? "" : shape, node_style(g, node));
    }
    for (int i = 0; i < nf_graph_node_count(g); i++) {
        const nf_node *node = nf_graph_node(g, i);
        for (int k = 0; k < nf_node_input_count(node); k++) {
            const nf_node *in = nf_node_input(node, k);
            nf_shape s;
            char shape[64];
            nf_node_shape(in, &s, NULL);
            printf("  \"%s\" -> \"%s\" [label=\"%s\"];\n", nf_node_name(in), nf_node_name(node),
                   nf_shape_format(&s, shape, sizeof shape));
        }
        if (nf_memory_source(node))
            printf("  \"%s\" -> \"%s\" [style=dashed, label=\"t-1\", constraint=false];\n",
                   nf_node_name(nf_memory_source(node)), nf_node_name(node));
        if (nf_node_share_source(node))
            printf("  \"%s\" -> \"%s\" [style=dotted, arrowhead=none, label=\"shares\", constraint=false];\n",
                   nf_node_name(nf_node_share_source(node)), nf_node_name(node));
    }
    printf("}\n");
    nf_graph_free(g);
    return EXIT_OK;
}
