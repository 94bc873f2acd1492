/* nodeflow — typed constructors: thin, checked wrappers of nf_graph_add. */
#include <stdio.h>

#include "engine/internal.h"

static nf_node *add1(nf_graph *g, const char *op, const char *name, nf_node *x)
{
    return nf_graph_add(g, op, name, 1, &x);
}

static nf_node *add2(nf_graph *g, const char *op, const char *name, nf_node *a, nf_node *b)
{
    nf_node *in[2] = {a, b};
    return nf_graph_add(g, op, name, 2, in);
}

/* Sets a numeric attribute of a node just made; NULL if either failed. */
static nf_node *with_number(nf_graph *g, nf_node *node, const char *key, double value)
{
    if (!node || nf_node_set_attr_number(g, node, key, value) != NF_OK)
        return NULL;
    return node;
}

/* A node without inputs whose "shape" attribute is `dims` (input,
 * memory, constant). */
static nf_node *add_shaped(nf_graph *g, const char *op, const char *name, int rank, const int64_t *dims)
{
    nf_node *node = nf_graph_add(g, op, name, 0, NULL);
    if (!node)
        return NULL;
    nf_error err;
    int64_t sizes[NF_MAX_RANK];
    int empty = 0, may = (node->op->flags & NF_OP_TAKES_EMPTY) != 0; /* an input's sizes may be 0 (validate.c) */
    for (int i = 0; i < rank && i < NF_MAX_RANK && dims; i++) {
        empty |= may && dims[i] == 0;
        sizes[i] = may && dims[i] == 0 ? 1 : dims[i];
    }
    if (nf_shape_make(&node->dims, rank, dims ? sizes : NULL, &err) != NF_OK) {
        nf_graph_fail(g, err.code, "%s '%s': %s", op, node->name, err.message);
        return NULL;
    }
    for (int i = 0; empty && i < rank; i++)
        node->dims.dim[i] = dims[i];
    node->attr_set |= 1u << nf_op_attr_index(node->op, "shape");
    return node;
}

nf_node *nf_input(nf_graph *g, const char *name, int rank, const int64_t *dims)
{
    return add_shaped(g, "input", name, rank, dims);
}

nf_status nf_input_requires_grad(nf_graph *g, nf_node *input)
{
    if (!g || !input)
        return NF_ERR_INVALID_ARGUMENT;
    if (!(input->op->flags & NF_OP_INPUT)) {
        nf_graph_fail(g, NF_ERR_INVALID_ARGUMENT, "%s '%s': only inputs can ask for their gradient",
                      input->op->name, input->name);
        return NF_ERR_INVALID_ARGUMENT;
    }
    return nf_node_set_attr_number(g, input, "grad", 1);
}

nf_node *nf_constant(nf_graph *g, const char *name, int rank, const int64_t *dims)
{
    return add_shaped(g, "constant", name, rank, dims);
}

nf_node *nf_attention(nf_graph *g, const char *name, nf_node *query, nf_node *key, nf_node *value, int64_t heads)
{
    nf_node *in[3] = {query, key, value};
    int n = !key ? 1 : !value ? 2 : 3;
    if (!key && value) {
        nf_graph_fail(g, NF_ERR_INVALID_ARGUMENT, "attention '%s': a value needs a key", name ? name : "");
        return NULL;
    }
    return with_number(g, nf_graph_add(g, "attention", name, n, in), "heads", (double)heads);
}

nf_node *nf_memory(nf_graph *g, const char *name, int rank, const int64_t *dims)
{
    return add_shaped(g, "memory", name, rank, dims);
}

nf_status nf_memory_connect(nf_graph *g, nf_node *memory, nf_node *source)
{
    if (!g || !memory || !source)
        return NF_ERR_INVALID_ARGUMENT;
    if (g->error.code != NF_OK)
        return g->error.code;
    if (!(memory->op->flags & NF_OP_MEMORY)) {
        nf_graph_fail(g, NF_ERR_GRAPH, "%s '%s': only a memory node takes a source", memory->op->name,
                      memory->name);
        return NF_ERR_GRAPH;
    }
    if (source->op->flags & NF_OP_LOSS) {
        nf_graph_fail(g, NF_ERR_GRAPH, "memory '%s': its source '%s' is a loss", memory->name, source->name);
        return NF_ERR_GRAPH;
    }
    memory->memory_source = source;
    g->version++;
    return NF_OK;
}

nf_node *nf_output(nf_graph *g, const char *name, nf_node *x) { return add1(g, "output", name, x); }

nf_node *nf_linear(nf_graph *g, const char *name, nf_node *x, int64_t out_features)
{
    return with_number(g, add1(g, "linear", name, x), "out", (double)out_features);
}

nf_node *nf_matmul(nf_graph *g, const char *name, nf_node *a, nf_node *b) { return add2(g, "matmul", name, a, b); }
nf_node *nf_add(nf_graph *g, const char *name, nf_node *a, nf_node *b) { return add2(g, "add", name, a, b); }
nf_node *nf_sub(nf_graph *g, const char *name, nf_node *a, nf_node *b) { return add2(g, "sub", name, a, b); }
nf_node *nf_mul(nf_graph *g, const char *name, nf_node *a, nf_node *b) { return add2(g, "mul", name, a, b); }

nf_node *nf_scale(nf_graph *g, const char *name, nf_node *x, double factor)
{
    return with_number(g, add1(g, "scale", name, x), "factor", factor);
}

nf_node *nf_relu(nf_graph *g, const char *name, nf_node *x) { return add1(g, "relu", name, x); }

nf_node *nf_leaky_relu(nf_graph *g, const char *name, nf_node *x, double slope)
{
    return with_number(g, add1(g, "leaky_relu", name, x), "slope", slope);
}

nf_node *nf_sigmoid(nf_graph *g, const char *name, nf_node *x) { return add1(g, "sigmoid", name, x); }
nf_node *nf_tanh(nf_graph *g, const char *name, nf_node *x) { return add1(g, "tanh", name, x); }
nf_node *nf_softmax(nf_graph *g, const char *name, nf_node *x) { return add1(g, "softmax", name, x); }
nf_node *nf_log_softmax(nf_graph *g, const char *name, nf_node *x) { return add1(g, "log_softmax", name, x); }

nf_node *nf_mse_loss(nf_graph *g, const char *name, nf_node *pred, nf_node *target)
{
    return add2(g, "mse", name, pred, target);
}

nf_node *nf_cross_entropy_loss(nf_graph *g, const char *name, nf_node *logits, nf_node *target)
{
    return add2(g, "cross_entropy", name, logits, target);
}

nf_node *nf_bce_with_logits_loss(nf_graph *g, const char *name, nf_node *logits, nf_node *target)
{
    return add2(g, "bce_with_logits", name, logits, target);
}
