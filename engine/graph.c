/* nodeflow — recording a graph: nodes, names, inputs and attributes.
 * Nothing here computes; see validate.c for shapes and parameters. */
#include <ctype.h>
#include <errno.h>
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/internal.h"

static const char *node_name(const void *graph, int i) { return ((const nf_graph *)graph)->nodes[i]->name; }
static const char *param_name(const void *graph, int i) { return ((const nf_graph *)graph)->params[i].name; }

nf_graph *nf_graph_new(void)
{
    nf_graph *g = calloc(1, sizeof *g);
    if (g) {
        g->version = 1;
        g->error_node = -1;
        nf_name_index_init(&g->node_names, node_name, g);
        nf_name_index_init(&g->param_names, param_name, g);
    }
    return g;
}

void nf_graph_free(nf_graph *g)
{
    if (!g)
        return;
    for (int i = 0; i < g->n_nodes; i++)
        free(g->nodes[i]);
    free(g->nodes);
    free(g->params);
    nf_name_index_free(&g->node_names);
    nf_name_index_free(&g->param_names);
    nf_aligned_free(g->values);
    nf_aligned_free(g->grads);
    free(g);
}

nf_status nf_graph_status(const nf_graph *g, nf_error *err)
{
    if (!g)
        return nf_fail(err, NF_ERR_INVALID_ARGUMENT, "graph is NULL");
    if (g->error.code != NF_OK && err)
        *err = g->error;
    return g->error.code;
}

nf_status nf_graph_set_vocab(nf_graph *g, const unsigned char *bytes, int n, nf_error *err)
{
    if (!g || (n > 0 && !bytes))
        return nf_fail(err, NF_ERR_INVALID_ARGUMENT, "nf_graph_set_vocab: NULL argument");
    if (n < 0 || n > 256)
        return nf_fail(err, NF_ERR_INVALID_ARGUMENT, "a vocabulary has 0 to 256 bytes, not %d", n);
    int first[256];
    for (int b = 0; b < 256; b++)
        first[b] = -1;
    for (int i = 0; i < n; i++) {
        if (first[bytes[i]] >= 0)
            return nf_fail(err, NF_ERR_INVALID_ARGUMENT, "the vocabulary lists byte 0x%02x twice, as ids %d and %d",
                           bytes[i], first[bytes[i]], i);
        first[bytes[i]] = i;
    }
    if (n > 0)
        memcpy(g->vocab, bytes, (size_t)n);
    g->vocab_size = n;
    return NF_OK;
}

const unsigned char *nf_graph_vocab(const nf_graph *g, int *n)
{
    if (n)
        *n = g ? g->vocab_size : 0;
    return g ? g->vocab : NULL;
}

void nf_graph_set_seed(nf_graph *g, uint64_t seed)
{
    if (g)
        g->seed = seed;
}

/* Names are identifiers: a letter or '_' then letters, digits or '_'.
 * ('.' is kept for parameter names such as "fc1.weight".) */
static int valid_name(const char *name)
{
    if (!(isalpha((unsigned char)name[0]) || name[0] == '_'))
        return 0;
    for (const char *c = name; *c; c++)
        if (!(isalnum((unsigned char)*c) || *c == '_'))
            return 0;
    return 1;
}

nf_node *nf_graph_find(const nf_graph *g, const char *name)
{
    if (!g || !name)
        return NULL;
    int i = nf_name_index_find(&g->node_names, name);
    return i >= 0 ? g->nodes[i] : NULL;
}

/* "<op>_<n>" with the first free n after the last one given to this op,
 * so that naming k nodes costs O(k), not O(k^2) (the registry holds fewer
 * types than auto_names has counters; past that, the search starts at 1). */
static void auto_name(nf_graph *g, const nf_op *op, char *out)
{
    int which = -1;
    for (int i = 0; i < nf_op_count() && which < 0; i++)
        if (nf_op_at(i) == op)
            which = i;
    int *last = which >= 0 && which < (int)(sizeof g->auto_names / sizeof *g->auto_names) ? &g->auto_names[which]
                                                                                           : NULL;
    for (int n = last ? *last + 1 : 1;; n++) {
        snprintf(out, NF_NAME_MAX, "%s_%d", op->name, n);
        if (!nf_graph_find(g, out)) {
            if (last)
                *last = n;
            return;
        }
    }
}

static int check_name(nf_graph *g, const char *op, const char *name)
{
    if (strlen(name) >= NF_NAME_MAX) {
        nf_graph_fail(g, NF_ERR_INVALID_ARGUMENT, "%s '%.20s...': name longer than %d characters",
                      op, name, NF_NAME_MAX - 1);
        return 0;
    }
    if (!valid_name(name)) {
        nf_graph_fail(g, NF_ERR_INVALID_ARGUMENT,
                      "%s '%s': a name is a letter or '_' followed by letters, digits or '_'",
                      op, name);
        return 0;
    }
    if (nf_graph_find(g, name)) {
        nf_graph_fail(g, NF_ERR_GRAPH, "%s '%s': the name is already used by another node", op, name);
        return 0;
    }
    return 1;
}

static int check_inputs(nf_graph *g, const nf_op *op, const char *name, int n_inputs,
                        nf_node *const *inputs)
{
    if (n_inputs < op->min_inputs || n_inputs > op->max_inputs) {
        if (op->min_inputs == op->max_inputs)
            nf_graph_fail(g, NF_ERR_GRAPH, "%s '%s': takes %d input(s), got %d",
                          op->name, name, op->min_inputs, n_inputs);
        else
            nf_graph_fail(g, NF_ERR_GRAPH, "%s '%s': takes %d to %d inputs, got %d",
                          op->name, name, op->min_inputs, op->max_inputs, n_inputs);
        return 0;
    }
    for (int i = 0; i < n_inputs; i++) {
        const nf_node *in = inputs[i];
        if (!in || in->index >= g->n_nodes || g->nodes[in->index] != in) {
            nf_graph_fail(g, NF_ERR_INVALID_ARGUMENT, "%s '%s': input %d is %s", op->name, name,
                          i + 1, in ? "a node of another graph" : "NULL");
            return 0;
        }
        if (in->op->flags & NF_OP_LOSS) {
            nf_graph_fail(g, NF_ERR_GRAPH, "%s '%s': input %d is the loss '%s'; a loss cannot feed another node",
                          op->name, name, i + 1, in->name);
            return 0;
        }
    }
    return 1;
}

static int grow_nodes(nf_graph *g)
{
    if (g->n_nodes < g->cap_nodes)
        return 1;
    int cap = g->cap_nodes ? 2 * g->cap_nodes : 16;
    nf_node **nodes = realloc(g->nodes, (size_t)cap * sizeof *nodes);
    if (!nodes)
        return 0;
    g->nodes = nodes;
    g->cap_nodes = cap;
    return 1;
}

nf_node *nf_graph_add(nf_graph *g, const char *op_name, const char *name, int n_inputs,
                      nf_node *const *inputs)
{
    if (!g || g->error.code != NF_OK)
        return NULL;
    const nf_op *op = op_name ? nf_op_find(op_name) : NULL;
    if (!op) {
        nf_graph_fail(g, NF_ERR_INVALID_ARGUMENT, "unknown operation '%s'", op_name ? op_name : "(null)");
        return NULL;
    }
    char chosen[NF_NAME_MAX];
    if (name && name[0]) {
        if (!check_name(g, op->name, name))
            return NULL;
        snprintf(chosen, sizeof chosen, "%s", name);
    } else {
        auto_name(g, op, chosen);
    }
    if (!check_inputs(g, op, chosen, n_inputs, inputs))
        return NULL;
    nf_node *node = calloc(1, sizeof *node);
    if (!node || !grow_nodes(g)) {
        free(node);
        nf_graph_fail(g, NF_ERR_NO_MEMORY, "%s '%s': out of memory", op->name, chosen);
        return NULL;
    }
    node->op = op;
    memcpy(node->name, chosen, sizeof chosen);
    node->n_inputs = n_inputs;
    for (int i = 0; i < n_inputs; i++)
        node->inputs[i] = inputs[i];
    for (int i = 0; i < op->n_attrs; i++)
        node->attr[i] = node->attr_w[i] = op->attrs[i].def;
    node->index = g->n_nodes;
    g->nodes[g->n_nodes] = node;
    if (!nf_name_index_add(&g->node_names, g->n_nodes)) {
        free(node);
        nf_graph_fail(g, NF_ERR_NO_MEMORY, "%s '%s': out of memory", op->name, chosen);
        return NULL;
    }
    g->n_nodes++;
    g->version++;
    return node;
}

/* ---- attributes ------------------------------------------------------ */

static nf_status attr_fail(nf_graph *g, const nf_node *node, const char *key, const char *what)
{
    nf_graph_fail(g, NF_ERR_INVALID_ARGUMENT, "%s '%s': attribute '%s' %s",
                  node->op->name, node->name, key, what);
    return NF_ERR_INVALID_ARGUMENT;
}

static nf_status find_attr(nf_graph *g, nf_node *node, const char *key, int *index)
{
    if (!g || !node || !key)
        return NF_ERR_INVALID_ARGUMENT;
    if (g->error.code != NF_OK)
        return g->error.code;
    *index = nf_op_attr_index(node->op, key);
    if (*index < 0)
        return attr_fail(g, node, key, "does not exist");
    return NF_OK;
}

/* Whether `value` suits attribute i (for an HxW value, `part` names the
 * half in the message: "width is 0; ..."); records the error if not. */
static nf_status check_number(nf_graph *g, nf_node *node, int i, double value, const char *part)
{
    const nf_attr_spec *spec = &node->op->attrs[i];
    char wrong[160];
    const char *why = NULL;
    int whole = spec->type == NF_ATTR_INT || spec->type == NF_ATTR_INT2 || spec->type == NF_ATTR_BOOL ||
                spec->type == NF_ATTR_ENUM;
    int choices = 0;
    while (spec->type == NF_ATTR_ENUM && spec->choices && spec->choices[choices])
        choices++;
    if (!isfinite(value))
        why = "must be a finite number";
    else if (whole && value != floor(value))
        why = "must be a whole number";
    else if (spec->type == NF_ATTR_ENUM && (value < 0 || value >= choices)) /* an index into its choices */
        why = "is not the index of one of its choices";
    if (why)
        snprintf(wrong, sizeof wrong, "%s%s%s", part ? part : "", part ? " " : "", why);
    else if (value < spec->min || value > spec->max)
        snprintf(wrong, sizeof wrong, "%s%sis %.15g; it must be in [%.15g, %.15g]", part ? part : "", part ? " " : "",
                 value, spec->min, spec->max);
    else
        return NF_OK;
    return attr_fail(g, node, spec->name, wrong);
}

/* Sets attribute i to h (and its width half to w). */
static void assign(nf_graph *g, nf_node *node, int i, double h, double w)
{
    node->attr[i] = h;
    node->attr_w[i] = w;
    node->attr_set |= 1u << i;
    g->version++;
}

static nf_status store_number(nf_graph *g, nf_node *node, int i, double value)
{
    nf_status st = check_number(g, node, i, value, NULL);
    if (st == NF_OK)
        assign(g, node, i, value, value);
    return st;
}

/* "HxW" for an NF_ATTR_INT2: both whole numbers in range. */
static nf_status store_pair(nf_graph *g, nf_node *node, int i, const char *text)
{
    const char *x = strchr(text, 'x');
    char first[64];
    double h, w;
    if ((size_t)(x - text) >= sizeof first)
        return attr_fail(g, node, node->op->attrs[i].name, "must be a whole number, or two joined by 'x' (e.g. 2x1)");
    memcpy(first, text, (size_t)(x - text));
    first[x - text] = '\0';
    if (nf_parse_number(first, &h) || nf_parse_number(x + 1, &w))
        return attr_fail(g, node, node->op->attrs[i].name, "must be a whole number, or two joined by 'x' (e.g. 2x1)");
    nf_status st = check_number(g, node, i, h, "height");
    if (st == NF_OK)
        st = check_number(g, node, i, w, "width");
    if (st == NF_OK)
        assign(g, node, i, h, w);
    return st;
}

nf_status nf_node_set_attr_number(nf_graph *g, nf_node *node, const char *key, double value)
{
    int i;
    nf_status st = find_attr(g, node, key, &i);
    if (st != NF_OK)
        return st;
    if (node->op->attrs[i].type == NF_ATTR_DIMS || node->op->attrs[i].type == NF_ATTR_AXES)
        return attr_fail(g, node, key, "is a list; set it from text such as 1x28x28 or 2,0,1");
    return store_number(g, node, i, value);
}

/* "1x28x28" or "784"; "scalar" for rank 0; sizes of at least `least`
 * (0 only where a tensor with no elements may be: the shapes of input and
 * reshape). Returns NULL, or what is wrong. */
static const char *parse_dims(const char *text, nf_shape *out, int64_t least)
{
    const char *form = least ? "must be positive sizes joined by 'x' (e.g. 1x28x28 or 784), or 'scalar'"
                             : "must be sizes of 0 or more joined by 'x' (e.g. 1x28x28 or 784), or 'scalar'";
    memset(out, 0, sizeof *out);
    if (strcmp(text, "scalar") == 0)
        return NULL;
    int64_t size = 1;
    for (const char *p = text; *p;) {
        if (!isdigit((unsigned char)*p))
            return form;
        if (out->rank == NF_MAX_RANK)
            return "has more than 6 dimensions";
        errno = 0;
        char *end;
        long long d = strtoll(p, &end, 10);
        if (d < least)
            return form;
        /* (the sizes other than 0 are bounded too: any part of the shape stays below 2^31) */
        if (errno || (size = nf_mul_checked(size, d ? d : 1)) < 0 || size > NF_MAX_SAMPLE_ELEMENTS)
            return "asks for more than 2^31 elements per sample";
        out->dim[out->rank++] = d;
        p = end;
        if (*p == 'x' && p[1])
            p++;
        else if (*p)
            return form;
    }
    return out->rank ? NULL : form;
}

/* "2,0,1": distinct axes from 0, at most NF_MAX_RANK of them. */
static const char *parse_axes(const char *text, nf_shape *out)
{
    memset(out, 0, sizeof *out);
    unsigned seen = 0;
    for (const char *p = text; *p;) {
        if (!isdigit((unsigned char)*p) || out->rank == NF_MAX_RANK)
            return "must be distinct axes from 0 separated by commas (e.g. 2,0,1)";
        long v = strtol(p, (char **)&p, 10);
        if (v >= NF_MAX_RANK || (seen & (1u << v)))
            return "must be distinct axes from 0 separated by commas (e.g. 2,0,1)";
        seen |= 1u << v;
        out->dim[out->rank++] = v;
        if (*p == ',' && p[1])
            p++;
        else if (*p)
            return "must be distinct axes from 0 separated by commas (e.g. 2,0,1)";
    }
    return out->rank ? NULL : "must list at least one axis";
}

static int parse_bool(const char *text, double *value)
{
    if (!strcmp(text, "1") || !strcmp(text, "true")) { *value = 1; return 1; }
    if (!strcmp(text, "0") || !strcmp(text, "false")) { *value = 0; return 1; }
    return 0;
}

nf_status nf_node_set_attr(nf_graph *g, nf_node *node, const char *key, const char *text)
{
    int i;
    nf_status st = find_attr(g, node, key, &i);
    if (st != NF_OK)
        return st;
    if (!text)
        return attr_fail(g, node, key, "has no value");
    const nf_attr_spec *spec = &node->op->attrs[i];
    double value = 0;
    const char *wrong;
    switch (spec->type) {
    case NF_ATTR_DIMS:
    case NF_ATTR_AXES: {
        /* (sizes of 0 only for the node types that take tensors with no elements) */
        wrong = spec->type == NF_ATTR_DIMS ? parse_dims(text, &node->dims, node->op->flags & NF_OP_TAKES_EMPTY ? 0 : 1)
                                           : parse_axes(text, &node->dims);
        if (wrong)
            return attr_fail(g, node, key, wrong);
        node->attr_set |= 1u << i;
        g->version++;
        return NF_OK;
    }
    case NF_ATTR_ENUM:
        for (int c = 0; spec->choices[c]; c++)
            if (strcmp(spec->choices[c], text) == 0)
                return store_number(g, node, i, c);
        return attr_fail(g, node, key, "has no such choice");
    case NF_ATTR_BOOL:
        if (!parse_bool(text, &value))
            return attr_fail(g, node, key, "must be true, false, 1 or 0");
        return store_number(g, node, i, value);
    case NF_ATTR_INT2: /* HxW, or one number for both axes (as an integer) */
        if (strchr(text, 'x'))
            return store_pair(g, node, i, text);
        __attribute__((fallthrough));
    case NF_ATTR_INT:
    case NF_ATTR_FLOAT:
        wrong = nf_parse_number(text, &value);
        if (wrong)
            return attr_fail(g, node, key, spec->type != NF_ATTR_FLOAT && !strcmp(wrong, "must be a finite number")
                                               ? "must be a whole number"
                                               : wrong);
        if (spec->type == NF_ATTR_FLOAT && (fabs(value) > FLT_MAX || (value != 0 && fabs(value) < FLT_MIN)))
            return attr_fail(g, node, key, "is out of float's range (its magnitude must be 0 or from 1.2e-38 to 3.4e38)");
        return store_number(g, node, i, value);
    }
    return attr_fail(g, node, key, "has an unknown type");
}

nf_status nf_node_get_attr_number(const nf_node *node, const char *key, double *value)
{
    if (!node || !key || !value)
        return NF_ERR_INVALID_ARGUMENT;
    int i = nf_op_attr_index(node->op, key);
    if (i < 0 || node->op->attrs[i].type == NF_ATTR_DIMS || node->op->attrs[i].type == NF_ATTR_AXES)
        return NF_ERR_INVALID_ARGUMENT;
    *value = node->attr[i];
    return NF_OK;
}

nf_status nf_node_share_params(nf_graph *g, nf_node *node, nf_node *source)
{
    if (!g || !node || !source)
        return NF_ERR_INVALID_ARGUMENT;
    if (g->error.code != NF_OK)
        return g->error.code;
    if (node->op != source->op) {
        nf_graph_fail(g, NF_ERR_GRAPH, "%s '%s': cannot share the parameters of %s '%s' (another operation)",
                      node->op->name, node->name, source->op->name, source->name);
        return NF_ERR_GRAPH;
    }
    if (source == node || source->share_from) {
        nf_graph_fail(g, NF_ERR_GRAPH, "%s '%s': share the parameters of the node that owns them, not of '%s'",
                      node->op->name, node->name, source->name);
        return NF_ERR_GRAPH;
    }
    node->share_from = source;
    g->version++;
    return NF_OK;
}

/* ---- facts ------------------------------------------------------------ */

int nf_graph_node_count(const nf_graph *g) { return g ? g->n_nodes : 0; }

nf_node *nf_graph_node(const nf_graph *g, int index)
{
    return g && index >= 0 && index < g->n_nodes ? g->nodes[index] : NULL;
}

const char *nf_node_name(const nf_node *node) { return node ? node->name : NULL; }
const char *nf_node_op(const nf_node *node) { return node ? node->op->name : NULL; }
int nf_node_input_count(const nf_node *node) { return node ? node->n_inputs : 0; }

nf_node *nf_memory_source(const nf_node *memory) { return memory ? memory->memory_source : NULL; }

nf_node *nf_node_input(const nf_node *node, int index)
{
    return node && index >= 0 && index < node->n_inputs ? node->inputs[index] : NULL;
}
