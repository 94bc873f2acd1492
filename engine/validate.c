/* nodeflow — validation: shape inference over the graph, parameter
 * sharing checks, and the parameter block (one contiguous array of values
 * and one of gradients, so an optimizer step is a flat loop). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/internal.h"

static nf_status check_required(const nf_node *node, nf_error *err)
{
    for (int i = 0; i < node->op->n_attrs; i++) {
        const nf_attr_spec *spec = &node->op->attrs[i];
        int required = spec->type == NF_ATTR_DIMS || spec->type == NF_ATTR_AXES || isnan(spec->def);
        if (required && !(node->attr_set & (1u << i)))
            return nf_fail(err, NF_ERR_INVALID_ARGUMENT, "%s '%s': attribute '%s' is required (%s)",
                           node->op->name, node->name, spec->name, spec->doc);
    }
    return NF_OK;
}

/* Tensors with no elements (a size of 0, as ONNX allows) come only from
 * inputs and pass only through the node types that move values without
 * looking at sizes (NF_OP_TAKES_EMPTY: reshape, flatten, copy, output);
 * every other node type divides by sizes somewhere, so it refuses such
 * an input. */
static int takes_empty(const nf_op *op) { return (op->flags & NF_OP_TAKES_EMPTY) != 0; }

static nf_status check_empty_inputs(const nf_node *node, nf_error *err)
{
    for (int i = 0; i < node->n_inputs; i++)
        if (nf_shape_size(&node->inputs[i]->shape) == 0 && !takes_empty(node->op)) {
            char s[64];
            return nf_fail(err, NF_ERR_SHAPE, "%s '%s': input '%s' %s has no elements; only reshape, flatten, copy "
                           "and output take such a tensor", node->op->name, node->name, node->inputs[i]->name,
                           nf_shape_format(&node->inputs[i]->shape, s, sizeof s));
        }
    return NF_OK;
}

/* Runs one node's shape rule; fills specs[] with its parameters. */
static nf_status infer_node(nf_node *node, nf_param_spec *specs, nf_error *err)
{
    nf_status st = check_required(node, err);
    if (st == NF_OK)
        st = check_empty_inputs(node, err);
    if (st != NF_OK)
        return st;
    nf_infer ctx;
    memset(&ctx, 0, sizeof ctx);
    ctx.node = node;
    ctx.attr = node->attr;
    ctx.dims = &node->dims;
    ctx.n_inputs = node->n_inputs;
    for (int i = 0; i < node->n_inputs; i++) {
        ctx.in[i] = &node->inputs[i]->shape;
        ctx.in_name[i] = node->inputs[i]->name;
    }
    ctx.err = err;
    st = node->op->infer(&ctx);
    if (st != NF_OK)
        return st;
    /* the sizes other than 0 bounded as a whole size is, so that any part
     * of a shape, and the batch times it, stays far from overflowing */
    int64_t size = 1, least = takes_empty(node->op) ? 0 : 1;
    for (int i = 0; i < ctx.out.rank && size >= 0; i++)
        size = ctx.out.dim[i] >= least ? nf_mul_checked(size, ctx.out.dim[i] ? ctx.out.dim[i] : 1) : -1;
    if (size < 0 || size > NF_MAX_SAMPLE_ELEMENTS)
        return nf_fail(err, NF_ERR_SHAPE, "%s '%s': its output would have more than 2^31 elements per sample",
                       node->op->name, node->name);
    /* what it keeps per sample and its scratch obey the same bound, so
     * that batch x size stays far from overflowing (batch <= 2^30) */
    if (ctx.saved_per_sample < 0 || ctx.saved_per_sample > NF_MAX_SAMPLE_ELEMENTS || ctx.saved_fixed < 0 ||
        ctx.saved_fixed > NF_MAX_SAMPLE_ELEMENTS || ctx.workspace < 0 || ctx.workspace > NF_MAX_SAMPLE_ELEMENTS)
        return nf_fail(err, NF_ERR_SHAPE, "%s '%s': it would keep more than 2^31 floats per sample",
                       node->op->name, node->name);
    node->shape = ctx.out;
    node->n_params = ctx.n_params;
    node->saved_per_sample = ctx.saved_per_sample;
    node->saved_fixed = ctx.saved_fixed;
    node->state_per_sample = ctx.state_per_sample;
    node->workspace = ctx.workspace;
    node->nondiff_inputs = ctx.nondiff_inputs;
    int grad_attr = nf_op_attr_index(node->op, "grad");
    node->requires_grad = (node->op->flags & NF_OP_INPUT) && grad_attr >= 0 && node->attr[grad_attr] != 0;
    memcpy(specs, ctx.params, sizeof ctx.params);
    return NF_OK;
}

/* Every memory node has a source of its own shape. */
static nf_status check_memory_sources(nf_graph *g, nf_error *err)
{
    for (int i = 0; i < g->n_nodes; i++) {
        const nf_node *m = g->nodes[i];
        if (!(m->op->flags & NF_OP_MEMORY))
            continue;
        g->error_node = i;
        if (!m->memory_source)
            return nf_fail(err, NF_ERR_GRAPH, "memory '%s': no source node; connect one (nf_memory_connect)",
                           m->name);
        const nf_node *src = m->memory_source;
        if (src->index >= g->n_nodes || g->nodes[src->index] != src)
            return nf_fail(err, NF_ERR_GRAPH, "memory '%s': its source is not a node of this graph", m->name);
        if (!nf_shape_equal(&m->shape, &src->shape)) {
            char a[64], b[64];
            return nf_fail(err, NF_ERR_SHAPE, "memory '%s': shape %s but its source '%s' is %s", m->name,
                           nf_shape_format(&m->shape, a, sizeof a), src->name,
                           nf_shape_format(&src->shape, b, sizeof b));
        }
    }
    g->error_node = -1;
    return NF_OK;
}

void nf_param_init_seeded(float *data, const nf_param *p, uint64_t seed)
{
    nf_rng rng;
    nf_rng_seed(&rng, seed ^ nf_name_hash(p->name));
    nf_param_init(data, p, &rng);
}

/* The parameters of every node that owns some, in graph order. */
static nf_status layout_params(nf_graph *g, nf_param_spec (*specs)[NF_MAX_PARAMS],
                               nf_param **out, int *count, int64_t *floats, nf_error *err)
{
    int n = 0;
    for (int i = 0; i < g->n_nodes; i++)
        if (!g->nodes[i]->share_from)
            n += g->nodes[i]->n_params;
    nf_param *params = calloc(n ? (size_t)n : 1, sizeof *params);
    if (!params)
        return nf_fail(err, NF_ERR_NO_MEMORY, "out of memory laying out %d parameters", n);
    int64_t offset = 0;
    int k = 0;
    for (int i = 0; i < g->n_nodes; i++) {
        nf_node *node = g->nodes[i];
        if (node->share_from)
            continue;
        for (int j = 0; j < node->n_params; j++, k++) {
            nf_param *p = &params[k];
            snprintf(p->name, sizeof p->name, "%s.%s", node->name, specs[i][j].suffix);
            p->shape = specs[i][j].shape;
            p->size = nf_shape_size(&p->shape);
            p->offset = offset;
            p->spec = specs[i][j];
            node->param[j] = k;
            offset += nf_align_floats(p->size);
            if (offset > nf_limit_floats()) {
                free(params);
                return nf_fail(err, NF_ERR_SHAPE, "%s '%s': the graph's parameters exceed the memory limit of %zu bytes",
                               node->op->name, node->name, nf_memory_limit());
            }
        }
    }
    *out = params;
    *count = n;
    *floats = offset;
    return NF_OK;
}

/* Shared parameters must have the shapes the sharing node needs. */
static nf_status link_shared(nf_graph *g, nf_param *params, nf_param_spec (*specs)[NF_MAX_PARAMS],
                             nf_error *err)
{
    for (int i = 0; i < g->n_nodes; i++) {
        nf_node *node = g->nodes[i];
        const nf_node *src = node->share_from;
        if (!src)
            continue;
        if (node->n_params == 0 || src->n_params != node->n_params) {
            g->error_node = i;
            return nf_fail(err, NF_ERR_GRAPH, "%s '%s': shares the parameters of '%s', but %s", node->op->name,
                           node->name, src->name,
                           node->n_params == 0 ? "it has none to share" : "they have another number of them");
        }
        for (int j = 0; j < node->n_params; j++) {
            const nf_param *p = &params[src->param[j]];
            if (!nf_shape_equal(&p->shape, &specs[i][j].shape)) {
                char have[64], want[64];
                g->error_node = i;
                return nf_fail(err, NF_ERR_SHAPE, "%s '%s': shares '%s' of shape %s but needs %s",
                               node->op->name, node->name, p->name,
                               nf_shape_format(&p->shape, have, sizeof have),
                               nf_shape_format(&specs[i][j].shape, want, sizeof want));
            }
            node->param[j] = src->param[j];
        }
    }
    return NF_OK;
}

/* Moves to a new parameter block, keeping the values of parameters whose
 * name and shape are unchanged and initialising the others. Takes params
 * (freed on failure). */
static nf_status install_params(nf_graph *g, nf_param *params, int n, int64_t floats, nf_error *err)
{
    size_t bytes = (size_t)(floats ? floats : 16) * sizeof(float);
    float *values = nf_aligned_alloc(bytes);
    float *grads = nf_aligned_alloc(bytes);
    if (!values || !grads) {
        nf_aligned_free(values);
        nf_aligned_free(grads);
        free(params);
        return nf_fail(err, NF_ERR_NO_MEMORY, "out of memory for %lld parameter floats", (long long)floats);
    }
    memset(values, 0, bytes);
    memset(grads, 0, bytes);
    for (int k = 0; k < n; k++) {
        nf_param *p = &params[k];
        int old = nf_graph_find_param(g, p->name);
        if (old >= 0 && nf_shape_equal(&g->params[old].shape, &p->shape))
            memcpy(values + p->offset, g->values + g->params[old].offset, (size_t)p->size * sizeof(float));
        else
            nf_param_init_seeded(values + p->offset, p, g->seed);
    }
    nf_name_index new_names;
    nf_name_index_init(&new_names, g->param_names.name_of, g);
    nf_param *old_params = g->params;
    g->params = params; /* the index reads names through g */
    for (int k = 0; k < n; k++)
        if (!nf_name_index_add(&new_names, k)) {
            g->params = old_params;
            nf_name_index_free(&new_names);
            nf_aligned_free(values);
            nf_aligned_free(grads);
            free(params);
            return nf_fail(err, NF_ERR_NO_MEMORY, "out of memory indexing %d parameter names", n);
        }
    nf_name_index_free(&g->param_names);
    g->param_names = new_names;
    free(old_params);
    nf_aligned_free(g->values);
    nf_aligned_free(g->grads);
    g->n_params = n;
    g->param_floats = floats;
    g->values = values;
    g->grads = grads;
    return NF_OK;
}

nf_status nf_graph_validate(nf_graph *g, nf_error *err)
{
    if (!g)
        return nf_fail(err, NF_ERR_INVALID_ARGUMENT, "graph is NULL");
    if (g->error.code != NF_OK)
        return nf_graph_status(g, err);
    if (g->validated_version == g->version)
        return NF_OK;
    if (g->n_nodes == 0)
        return nf_fail(err, NF_ERR_GRAPH, "the graph has no nodes");
    nf_param_spec (*specs)[NF_MAX_PARAMS] = calloc((size_t)g->n_nodes, sizeof *specs);
    if (!specs)
        return nf_fail(err, NF_ERR_NO_MEMORY, "out of memory validating the graph");
    nf_status st = NF_OK;
    /* Nodes are stored in insertion order and inputs must exist before a
     * node is added, so that order is topological. */
    g->error_node = -1;
    for (int i = 0; i < g->n_nodes && st == NF_OK; i++)
        if ((st = infer_node(g->nodes[i], specs[i], err)) != NF_OK)
            g->error_node = i;
    if (st == NF_OK)
        st = check_memory_sources(g, err);
    nf_param *params = NULL;
    int n = 0;
    int64_t floats = 0;
    if (st == NF_OK)
        st = layout_params(g, specs, &params, &n, &floats, err);
    if (st == NF_OK)
        st = link_shared(g, params, specs, err);
    if (st == NF_OK)
        st = install_params(g, params, n, floats, err);
    else
        free(params);
    free(specs);
    if (st == NF_OK)
        g->validated_version = g->version;
    return st;
}

nf_status nf_graph_init_params(nf_graph *g, uint64_t seed, nf_error *err)
{
    nf_status st = nf_graph_validate(g, err);
    if (st != NF_OK)
        return st;
    for (int k = 0; k < g->n_params; k++)
        nf_param_init_seeded(g->values + g->params[k].offset, &g->params[k], seed);
    return NF_OK;
}

nf_status nf_node_shape(const nf_node *node, nf_shape *shape, nf_error *err)
{
    if (!node || !shape)
        return nf_fail(err, NF_ERR_INVALID_ARGUMENT, "nf_node_shape: NULL argument");
    *shape = node->shape;
    return NF_OK;
}

int nf_graph_param_count(const nf_graph *g) { return g ? g->n_params : 0; }
int64_t nf_graph_param_floats(const nf_graph *g) { return g ? g->param_floats : 0; }

nf_status nf_graph_param(const nf_graph *g, int index, const char **name, nf_tensor *value,
                         nf_tensor *grad)
{
    if (!g || index < 0 || index >= g->n_params)
        return NF_ERR_INVALID_ARGUMENT;
    const nf_param *p = &g->params[index];
    if (name)
        *name = p->name;
    if (value) {
        value->shape = p->shape;
        value->data = g->values + p->offset;
    }
    if (grad) {
        grad->shape = p->shape;
        grad->data = g->grads + p->offset;
    }
    return NF_OK;
}

int nf_graph_find_param(const nf_graph *g, const char *name)
{
    if (!g || !name)
        return -1;
    return nf_name_index_find(&g->param_names, name);
}

double nf_node_flops(const nf_node *node)
{
    return node && node->op->flops ? node->op->flops(node) : 0.0;
}

int64_t nf_node_param_floats(const nf_graph *g, const nf_node *node)
{
    if (!g || !node || node->share_from || g->validated_version != g->version)
        return 0;
    int64_t total = 0;
    for (int j = 0; j < node->n_params; j++)
        total += g->params[node->param[j]].size;
    return total;
}

nf_node *nf_node_share_source(const nf_node *node) { return node ? node->share_from : NULL; }
int nf_node_is_input(const nf_node *node) { return node && (node->op->flags & NF_OP_INPUT); }
int nf_node_is_output(const nf_node *node) { return node && (node->op->flags & NF_OP_OUTPUT); }
int nf_node_is_loss(const nf_node *node) { return node && (node->op->flags & NF_OP_LOSS); }
int nf_node_is_memory(const nf_node *node) { return node && (node->op->flags & NF_OP_MEMORY); }

int nf_graph_has_recurrence(const nf_graph *g)
{
    for (int k = 0; g && k < g->n_nodes; k++)
        if (g->nodes[k]->op->flags & (NF_OP_CARRY_OPTION | NF_OP_MEMORY))
            return 1;
    return 0;
}

int nf_node_carries_state(const nf_node *node)
{
    if (node->op->carries_state)
        return node->op->carries_state(node);
    int carry = nf_op_attr_index(node->op, "carry");
    return (node->op->flags & NF_OP_CARRY_OPTION) && carry >= 0 && node->attr[carry] != 0;
}

int nf_graph_carries_state(const nf_graph *g)
{
    for (int k = 0; g && k < g->n_nodes; k++)
        if (nf_node_carries_state(g->nodes[k]))
            return 1;
    return 0;
}
