/* nodeflow import and export: ONNX models from and to a model file and
 * its weights. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static const char import_help[] =
    "usage: nodeflow import MODEL.onnx -o MODEL.nfg --weights-out W.safetensors [--loss cross_entropy|mse]\n"
    "                       [--bind NAME=FILE.npy ...] [--whole-inputs]\n\n"
    "Writes the ONNX model as a model file (ONNX's names kept where they are\n"
    "identifiers) and its weights in nodeflow's layouts, so that infer, eval and\n"
    "train take them. --loss adds what training needs: a label input and a loss on\n"
    "the model's output (cross_entropy: class indices; mse: targets of the output's\n"
    "shape). docs/onnx.md lists the operators that map. infer, eval and check also\n"
    "take a .onnx file directly.\n\n"
    "  --bind NAME=FILE.npy   give input NAME these values: it becomes a constant of\n"
    "                         the model (shapes, axes or weights that a model takes as\n"
    "                         inputs); its shape must be the input's whole shape\n"
    "  --whole-inputs         every input is one whole sample of its fixed shape (its\n"
    "                         first axis is data, not the batch): for models that work\n"
    "                         across axis 0\n";

enum { MAX_BOUND = 16 };

typedef struct import_options {
    const char *model, *out, *weights_out, *loss;
    const char *bind[MAX_BOUND]; /* NAME=FILE.npy */
    int n_bind, whole_inputs;
} import_options;

static int takes_value(const char *name)
{
    return !strcmp(name, "-o") || !strcmp(name, "--out") || !strcmp(name, "--weights-out") || !strcmp(name, "--loss") ||
           !strcmp(name, "--bind");
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
        } else if (!strcmp(flag, "--bind") && v && strchr(v, '=') && strchr(v, '=') != v && o->n_bind < MAX_BOUND) {
            o->bind[o->n_bind++] = v;
        } else if (!strcmp(flag, "--whole-inputs") && !v) {
            o->whole_inputs = 1;
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

/* The --bind values: each NAME=FILE.npy read whole (its first axis
 * included) into names[k], values[k]; sets[k] keeps the data. */
static nf_status read_bound(const import_options *o, char names[][256], nf_tensor *values, nf_dataset **sets,
                            nf_error *err)
{
    for (int k = 0; k < o->n_bind; k++) {
        const char *eq = strchr(o->bind[k], '=');
        snprintf(names[k], 256, "%.*s", (int)(eq - o->bind[k]), o->bind[k]);
        nf_status st = nf_dataset_load_npy(eq + 1, NULL, &sets[k], err);
        if (st != NF_OK)
            return st;
        const nf_dataset *d = sets[k];
        if (d->x_shape.rank >= NF_MAX_RANK) {
            *err = (nf_error){.code = NF_ERR_SHAPE};
            snprintf(err->message, sizeof err->message, "%s: more than %d axes", eq + 1, NF_MAX_RANK);
            return err->code;
        }
        values[k].shape.rank = d->x_shape.rank + 1;
        values[k].shape.dim[0] = d->count;
        for (int a = 0; a < d->x_shape.rank; a++)
            values[k].shape.dim[a + 1] = d->x_shape.dim[a];
        values[k].data = d->x;
    }
    return NF_OK;
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
    char names[MAX_BOUND][256];
    const char *name_list[MAX_BOUND];
    nf_tensor values[MAX_BOUND];
    nf_dataset *sets[MAX_BOUND] = {NULL};
    for (int k = 0; k < MAX_BOUND; k++)
        name_list[k] = names[k];
    nf_onnx_options options = {.n_bound = o.n_bind, .bound_names = name_list, .bound_values = values,
                               .whole_inputs = o.whole_inputs};
    nf_status st = read_bound(&o, names, values, sets, &err);
    if (st == NF_OK)
        st = nf_onnx_load_with(o.model, &options, &g, &err);
    for (int k = 0; k < MAX_BOUND; k++)
        nf_dataset_free(sets[k]);
    if (st != NF_OK)
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
