/* nodeflow import and export: ONNX models from and to a model file and
 * its weights. */
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static const char import_help[] =
    "usage: nodeflow import MODEL.onnx -o MODEL.nfg --weights-out W.safetensors [--loss cross_entropy|mse]\n\n"
    "Writes the ONNX model as a model file (ONNX's names kept where they are\n"
    "identifiers) and its weights in nodeflow's layouts, so that infer, eval and\n"
    "train take them. --loss adds what training needs: a label input and a loss on\n"
    "the model's output (cross_entropy: class indices; mse: targets of the output's\n"
    "shape). docs/onnx.md lists the operators that map. infer, eval and check also\n"
    "take a .onnx file directly.\n";

typedef struct import_options {
    const char *model, *out, *weights_out, *loss;
} import_options;

static int takes_value(const char *name)
{
    return !strcmp(name, "-o") || !strcmp(name, "--out") || !strcmp(name, "--weights-out") || !strcmp(name, "--loss");
}

static int parse_options(int argc, char **argv, import_options *o)
{
    memset(o, 0, sizeof *o);
    cli_args a = {argc, argv, 1, "import"};
    const char *flag, *v;
    while (cli_next(&a, &flag, &v, takes_value)) {
        if (!flag) {
            if (o->model)
                return cli_usage("import", "one model file, please");
            o->model = v;
        } else if (!strcmp(flag, "--help")) {
            fputs(import_help, stdout);
            return -1;
        } else if ((!strcmp(flag, "-o") || !strcmp(flag, "--out")) && v) {
            o->out = v;
        } else if (!strcmp(flag, "--weights-out") && v) {
            o->weights_out = v;
        } else if (!strcmp(flag, "--loss") && v && (!strcmp(v, "cross_entropy") || !strcmp(v, "mse"))) {
            o->loss = v;
        } else {
            return cli_usage("import", takes_value(flag) ? "bad value for %s" : "unknown option '%s'", flag);
        }
    }
    if (!o->model)
        return cli_usage("import", "which model? 'nodeflow import MODEL.onnx -o MODEL.nfg --weights-out W'");
    if (!o->out || !o->weights_out)
        return cli_usage("import", "-o MODEL.nfg and --weights-out W.safetensors are required");
    return EXIT_OK;
}

int cmd_import(int argc, char **argv)
{
    import_options o;
    int rc = parse_options(argc, argv, &o);
    if (rc)
        return rc < 0 ? EXIT_OK : rc;
    nf_error err;
    nf_graph *g;
    if (nf_output_path_check(o.out, &err) != NF_OK || nf_output_path_check(o.weights_out, &err) != NF_OK)
        return cli_fail(&err);
    if (nf_onnx_load(o.model, &g, &err) != NF_OK)
        return cli_fail(&err);
    if (o.loss && (rc = cli_add_loss(g, o.loss)) != EXIT_OK) {
        nf_graph_free(g);
        return rc;
    }
    char *text = NULL;
    if (nf_model_format(g, NULL, &text, &err) != NF_OK || nf_file_write(o.out, text, strlen(text), &err) != NF_OK ||
        nf_weights_save(g, o.weights_out, &err) != NF_OK) {
        free(text);
        nf_graph_free(g);
        return cli_fail(&err);
    }
    printf("imported %s: %d nodes, %lld parameter floats -> %s, %s\n", o.model, nf_graph_node_count(g),
           (long long)nf_graph_param_floats(g), o.out, o.weights_out);
    free(text);
    nf_graph_free(g);
    return EXIT_OK;
}

static const char export_help[] =
    "usage: nodeflow export MODEL.nfg --weights W -o MODEL.onnx\n\n"
    "Writes the model's inference graph (what its outputs need; without an output\n"
    "node, its loss's first input) with the weights as an ONNX model (opset 14; the\n"
    "first axis of every input and output is the batch, named 'batch'). Node types\n"
    "without an ONNX form here and recurrent flows through memory nodes are refused,\n"
    "naming the node (docs/onnx.md).\n";

static int export_takes_value(const char *name)
{
    return !strcmp(name, "-o") || !strcmp(name, "--out") || !strcmp(name, "--weights");
}

int cmd_export(int argc, char **argv)
{
    const char *model = NULL, *weights = NULL, *out = NULL;
    cli_args a = {argc, argv, 1, "export"};
    const char *flag, *v;
    while (cli_next(&a, &flag, &v, export_takes_value)) {
        if (!flag) {
            if (model)
                return cli_usage("export", "one model file, please");
            model = v;
        } else if (!strcmp(flag, "--help")) {
            fputs(export_help, stdout);
            return EXIT_OK;
        } else if ((!strcmp(flag, "-o") || !strcmp(flag, "--out")) && v) {
            out = v;
        } else if (!strcmp(flag, "--weights") && v) {
            weights = v;
        } else {
            return cli_usage("export", export_takes_value(flag) ? "bad value for %s" : "unknown option '%s'", flag);
        }
    }
    if (!model || !out)
        return cli_usage("export", "'nodeflow export MODEL.nfg --weights W -o MODEL.onnx'");
    if (!weights && !cli_is_onnx(model))
        return cli_usage("export", "--weights FILE is required");
    nf_graph *g;
    nf_error err;
    int rc = cli_load_model(model, &g, NULL);
    if (rc != EXIT_OK)
        return rc;
    if ((weights && nf_weights_load(g, weights, 0, &err) != NF_OK) || nf_onnx_save(g, out, &err) != NF_OK) {
        nf_graph_free(g);
        return cli_fail(&err);
    }
    printf("exported %s: %lld parameter floats -> %s\n", model, (long long)nf_graph_param_floats(g), out);
    nf_graph_free(g);
    return EXIT_OK;
}
