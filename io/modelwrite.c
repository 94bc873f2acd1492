/* nodeflow — writing graphs as model files, and the node-type reference
 * generated from the node tables (docs/model-format.md). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/settings.h"

void nf_format_node_attr(char *buf, size_t size, const nf_node *node, int i)
{
    const nf_attr_spec *spec = &node->op->attrs[i];
    double v = node->attr[i];
    switch (spec->type) {
    case NF_ATTR_DIMS: nf_format_shape(buf, size, &node->dims); break;
    case NF_ATTR_AXES:
        for (int a = 0, used = 0; a < node->dims.rank && used < (int)size; a++)
            used += snprintf(buf + used, size - (size_t)used, "%s%lld", a ? "," : "", (long long)node->dims.dim[a]);
        break;
    case NF_ATTR_ENUM: snprintf(buf, size, "%s", spec->choices[(int)v]); break;
    case NF_ATTR_BOOL: snprintf(buf, size, "%s", v != 0 ? "true" : "false"); break;
    case NF_ATTR_INT: snprintf(buf, size, "%lld", (long long)v); break;
    case NF_ATTR_INT2:
        if (node->attr_w[i] == v)
            snprintf(buf, size, "%lld", (long long)v);
        else
            snprintf(buf, size, "%lldx%lld", (long long)v, (long long)node->attr_w[i]);
        break;
    case NF_ATTR_FLOAT: nf_format_double(buf, size, v); break;
    }
}

static void write_node(nf_text *t, const nf_node *node)
{
    char value[128];
    nf_text_printf(t, "%s = %s", node->name, node->op->name);
    if (node->memory_source)
        nf_text_printf(t, " %s", node->memory_source->name);
    for (int i = 0; i < node->n_inputs; i++)
        nf_text_printf(t, " %s", node->inputs[i]->name);
    for (int i = 0; i < node->op->n_attrs; i++) {
        if (!(node->attr_set & (1u << i)))
            continue;
        nf_format_node_attr(value, sizeof value, node, i);
        nf_text_printf(t, " %s=%s", node->op->attrs[i].name, value);
    }
    if (node->share_from)
        nf_text_printf(t, " share=%s", node->share_from->name);
    nf_text_printf(t, "\n");
}

nf_status nf_model_format(const nf_graph *g, const nf_train_config *train, char **text, nf_error *err)
{
    if (!g || !text)
        return nf_fail(err, NF_ERR_INVALID_ARGUMENT, "nf_model_format: NULL argument");
    *text = NULL;
    if (g->error.code != NF_OK)
        return nf_graph_status(g, err);
    nf_text t = {0};
    nf_text_printf(&t, "nodeflow 1\n");
    for (int i = 0; i < g->n_nodes; i++)
        write_node(&t, g->nodes[i]);
    if (train)
        nf_train_config_write(&t, train);
    if (t.failed) {
        nf_text_free(&t);
        return nf_fail(err, NF_ERR_NO_MEMORY, "out of memory writing the model");
    }
    *text = t.data;
    return NF_OK;
}

nf_status nf_model_save(const nf_graph *g, const nf_train_config *train, const char *path, nf_error *err)
{
    if (!path)
        return nf_fail(err, NF_ERR_INVALID_ARGUMENT, "nf_model_save: NULL path");
    char *text;
    nf_status st = nf_model_format(g, train, &text, err);
    if (st != NF_OK)
        return st;
    st = nf_file_write(path, text, strlen(text), err);
    free(text);
    return st;
}

/* ---- the reference -------------------------------------------------- */

static const char *type_name(const nf_attr_spec *spec)
{
    switch (spec->type) {
    case NF_ATTR_INT: return "integer";
    case NF_ATTR_INT2: return "integer or HxW";
    case NF_ATTR_FLOAT: return "number";
    case NF_ATTR_BOOL: return "true/false";
    case NF_ATTR_ENUM: return "choice";
    case NF_ATTR_DIMS: return "shape";
    case NF_ATTR_AXES: return "axes";
    }
    return "?";
}

static void reference_attr(nf_text *t, const nf_attr_spec *a)
{
    char def[96];
    if (a->type == NF_ATTR_DIMS || a->type == NF_ATTR_AXES || isnan(a->def))
        snprintf(def, sizeof def, "required");
    else if (a->type == NF_ATTR_ENUM)
        snprintf(def, sizeof def, "`%s`", a->choices[(int)a->def]);
    else if (a->type == NF_ATTR_BOOL)
        snprintf(def, sizeof def, "`%s`", a->def != 0 ? "true" : "false");
    else {
        char num[64];
        nf_format_double(num, sizeof num, a->def);
        snprintf(def, sizeof def, "`%s`", num);
    }
    nf_text_printf(t, "| `%s` | %s | %s | %s", a->name, type_name(a), def, a->doc);
    if (a->type == NF_ATTR_ENUM) {
        nf_text_printf(t, ": ");
        for (int c = 0; a->choices[c]; c++)
            nf_text_printf(t, "%s`%s`", c ? ", " : "", a->choices[c]);
    }
    nf_text_printf(t, " |\n");
}

nf_status nf_model_reference(char **text, nf_error *err)
{
    if (!text)
        return nf_fail(err, NF_ERR_INVALID_ARGUMENT, "nf_model_reference: NULL argument");
    nf_text t = {0};
    for (int i = 0; i < nf_op_count(); i++) {
        const nf_op *op = nf_op_at(i);
        nf_text_printf(&t, "### `%s`\n\n%s.\n\n", op->name, op->summary);
        if (op->min_inputs == op->max_inputs)
            nf_text_printf(&t, "Inputs: %d", op->min_inputs);
        else
            nf_text_printf(&t, "Inputs: %d to %d", op->min_inputs, op->max_inputs);
        if (op->flags & NF_OP_MEMORY)
            nf_text_printf(&t, " (its source, which may be defined later)");
        if (op->flags & NF_OP_LOSS)
            nf_text_printf(&t, "; a loss (one number per batch)");
        nf_text_printf(&t, ".%s\n\n", op->n_attrs ? "" : " No attributes.");
        if (op->n_attrs) {
            nf_text_printf(&t, "| attribute | type | default | meaning |\n| --- | --- | --- | --- |\n");
            for (int a = 0; a < op->n_attrs; a++)
                reference_attr(&t, &op->attrs[a]);
            nf_text_printf(&t, "\n");
        }
    }
    char *settings = NULL;
    nf_status st = nf_train_settings_reference(1, &settings, err);
    if (st != NF_OK) {
        nf_text_free(&t);
        return st;
    }
    nf_text_printf(&t, "## The `[train]` settings\n\n%s", settings);
    free(settings);
    if (t.failed) {
        nf_text_free(&t);
        return nf_fail(err, NF_ERR_NO_MEMORY, "out of memory");
    }
    *text = t.data;
    return NF_OK;
}
