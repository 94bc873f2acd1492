/* nodeflow — graphs written as ONNX models (nodeflow/onnx.h): the
 * inference graph, from the inputs to the outputs, opset 14 (17 where a
 * node needs it), with protobuf-c packing the messages. Every structure
 * of the model is allocated from one list and freed together. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/internal.h"
#include "io/util.h"
#include "nodeflow/onnx.h"
#include "nodes/op.h"
#include "onnx.pb-c.h"

enum { MAX_LAYERS = 4 }; /* (the recurrent nodes' num_layers) */

typedef struct {
    const nf_graph *g;
    void **blocks;                 /* everything allocated, freed at the end */
    size_t n_blocks, cap_blocks;
    Onnx__NodeProto **nodes;
    size_t n_nodes, cap_nodes;
    Onnx__TensorProto **inits;
    size_t n_inits, cap_inits;
    Onnx__ValueInfoProto **inputs, **outputs;
    size_t n_inputs, n_outputs;
    int failed;                    /* out of memory */
    unsigned char *written;        /* per node: its constant's initializer is written */
    const unsigned char *needed;   /* per node: in the inference graph */
    nf_error *err;
    int64_t opset;
    /* node types that ONNX lacks, written as model-local functions (see
     * export_function): while one is written, nodes go to its body,
     * constants become Constant nodes and parameters its inputs */
    int in_function;
    const char **fn_params;
    size_t n_fn_params, cap_fn_params;
    Onnx__FunctionProto **functions;
    size_t n_functions, cap_functions;
} exporter;

/* The domain of the functions: a node of it is a nodeflow node. */
static const char nodeflow_domain[] = "ai.nodeflow";

static void *keep(exporter *ex, size_t bytes)
{
    if (ex->failed)
        return NULL;
    if (ex->n_blocks == ex->cap_blocks) {
        size_t cap = ex->cap_blocks ? 2 * ex->cap_blocks : 256;
        void **grown = realloc(ex->blocks, cap * sizeof *grown);
        if (!grown) {
            ex->failed = 1;
            return NULL;
        }
        ex->blocks = grown, ex->cap_blocks = cap;
    }
    void *p = calloc(1, bytes ? bytes : 1);
    if (!p) {
        ex->failed = 1;
        return NULL;
    }
    ex->blocks[ex->n_blocks++] = p;
    return p;
}

static char *text(exporter *ex, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static char *text(exporter *ex, const char *fmt, ...)
{
    char buf[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    char *s = keep(ex, strlen(buf) + 1);
    if (s)
        memcpy(s, buf, strlen(buf) + 1);
    return s;
}

/* Appends p to a growing array of pointers. */
static void push(exporter *ex, void ***list, size_t *n, size_t *cap, void *p)
{
    if (!p || ex->failed)
        return;
    if (*n == *cap) {
        size_t c = *cap ? 2 * *cap : 64;
        void **grown = keep(ex, c * sizeof *grown);
        if (!grown)
            return;
        if (*n)
            memcpy(grown, *list, *n * sizeof *grown);
        *list = grown, *cap = c;
    }
    (*list)[(*n)++] = p;
}

static nf_status refuse(exporter *ex, const nf_node *node, const char *why)
{
    return nf_fail(ex->err, NF_ERR_STATE, "%s '%s': %s", node->op->name, node->name, why);
}

/* ---- messages ---------------------------------------------------------------- */

/* A node of `op` with inputs and one output (NULL-terminated lists). */
static Onnx__NodeProto *node(exporter *ex, const char *op, const char *name, const char *const *in, const char *out)
{
    Onnx__NodeProto *n = keep(ex, sizeof *n);
    if (!n)
        return NULL;
    onnx__node_proto__init(n);
    n->op_type = text(ex, "%s", op);
    n->name = text(ex, "%s", name);
    size_t count = 0;
    while (in[count])
        count++;
    n->input = keep(ex, (count ? count : 1) * sizeof(char *));
    n->output = keep(ex, sizeof(char *));
    if (!n->input || !n->output)
        return NULL;
    for (size_t k = 0; k < count; k++)
        n->input[k] = text(ex, "%s", in[k]);
    n->n_input = count;
    n->output[0] = text(ex, "%s", out);
    n->n_output = 1;
    push(ex, (void ***)&ex->nodes, &ex->n_nodes, &ex->cap_nodes, n);
    return n;
}

static Onnx__AttributeProto *attribute(exporter *ex, Onnx__NodeProto *n, const char *name,
                                       Onnx__AttributeProto__AttributeType type)
{
    if (!n)
        return NULL;
    Onnx__AttributeProto *a = keep(ex, sizeof *a);
    Onnx__AttributeProto **grown = keep(ex, (n->n_attribute + 1) * sizeof *grown);
    if (!a || !grown)
        return NULL;
    onnx__attribute_proto__init(a);
    a->name = text(ex, "%s", name);
    a->has_type = 1, a->type = type;
    if (n->n_attribute)
        memcpy(grown, n->attribute, n->n_attribute * sizeof *grown);
    grown[n->n_attribute++] = a;
    n->attribute = grown;
    return a;
}

/* A string attribute (bytes: ONNX's strings are not NUL-terminated). */
static void attr_string(exporter *ex, Onnx__NodeProto *n, const char *name, const char *value)
{
    Onnx__AttributeProto *a = attribute(ex, n, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__STRING);
    char *copy = text(ex, "%s", value);
    if (a && copy)
        a->has_s = 1, a->s.data = (uint8_t *)copy, a->s.len = strlen(copy);
}

static void attr_int(exporter *ex, Onnx__NodeProto *n, const char *name, int64_t v)
{
    Onnx__AttributeProto *a = attribute(ex, n, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT);
    if (a)
        a->has_i = 1, a->i = v;
}

static void attr_float(exporter *ex, Onnx__NodeProto *n, const char *name, double v)
{
    Onnx__AttributeProto *a = attribute(ex, n, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOAT);
    if (a)
        a->has_f = 1, a->f = (float)v;
}

static void attr_ints(exporter *ex, Onnx__NodeProto *n, const char *name, const int64_t *v, size_t count)
{
    Onnx__AttributeProto *a = attribute(ex, n, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INTS);
    int64_t *copy = keep(ex, (count ? count : 1) * sizeof *copy);
    if (a && copy) {
        memcpy(copy, v, count * sizeof *copy);
        a->ints = copy, a->n_ints = count;
    }
}

/* A Constant node giving t as `name` (a function's constants). */
static void constant_node(exporter *ex, const char *name, Onnx__TensorProto *t)
{
    const char *none[] = {NULL};
    Onnx__AttributeProto *a = attribute(ex, node(ex, "Constant", name, none, name), "value",
                                        ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__TENSOR);
    if (a)
        a->t = t;
}

/* An initializer `name` of dims and float (or int64) data, copied (in a
 * function's body: a Constant node). */
static void initializer(exporter *ex, const char *name, int rank, const int64_t *dims, const float *f,
                        const int64_t *i)
{
    Onnx__TensorProto *t = keep(ex, sizeof *t);
    int64_t count = 1;
    for (int k = 0; k < rank; k++)
        count *= dims[k];
    int64_t *d = keep(ex, (size_t)(rank ? rank : 1) * sizeof *d);
    void *data = keep(ex, (size_t)(count ? count : 1) * (f ? sizeof(float) : sizeof(int64_t)));
    if (!t || !d || !data)
        return;
    onnx__tensor_proto__init(t);
    t->name = text(ex, "%s", name);
    for (int k = 0; k < rank; k++)
        d[k] = dims[k];
    t->dims = d, t->n_dims = (size_t)rank;
    t->has_data_type = 1;
    t->data_type = f ? ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT : ONNX__TENSOR_PROTO__DATA_TYPE__INT64;
    if (f) {
        memcpy(data, f, (size_t)count * sizeof(float));
        t->float_data = data, t->n_float_data = (size_t)count;
    } else if (i) {
        memcpy(data, i, (size_t)count * sizeof(int64_t));
        t->int64_data = data, t->n_int64_data = (size_t)count;
    }
    if (ex->in_function)
        constant_node(ex, name, t);
    else
        push(ex, (void ***)&ex->inits, &ex->n_inits, &ex->cap_inits, t);
}

/* A tensor value [batch, per-sample shape...] of float (or int64). */
static Onnx__ValueInfoProto *value_info(exporter *ex, const char *name, const nf_shape *s, int int64)
{
    Onnx__ValueInfoProto *v = keep(ex, sizeof *v);
    Onnx__TypeProto *t = keep(ex, sizeof *t);
    Onnx__TypeProto__Tensor *tt = keep(ex, sizeof *tt);
    Onnx__TensorShapeProto *shape = keep(ex, sizeof *shape);
    Onnx__TensorShapeProto__Dimension **dims = keep(ex, (size_t)(s->rank + 1) * sizeof *dims);
    if (!v || !t || !tt || !shape || !dims)
        return NULL;
    onnx__value_info_proto__init(v);
    onnx__type_proto__init(t);
    onnx__type_proto__tensor__init(tt);
    onnx__tensor_shape_proto__init(shape);
    for (int k = 0; k <= s->rank; k++) {
        Onnx__TensorShapeProto__Dimension *d = keep(ex, sizeof *d);
        if (!d)
            return NULL;
        onnx__tensor_shape_proto__dimension__init(d);
        if (k == 0) {
            d->value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_PARAM;
            d->dim_param = text(ex, "batch");
        } else {
            d->value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE;
            d->dim_value = s->dim[k - 1];
        }
        dims[k] = d;
    }
    shape->dim = dims, shape->n_dim = (size_t)s->rank + 1;
    tt->has_elem_type = 1;
    tt->elem_type = int64 ? ONNX__TENSOR_PROTO__DATA_TYPE__INT64 : ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT;
    tt->shape = shape;
    t->value_case = ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE;
    t->tensor_type = tt;
    v->name = text(ex, "%s", name);
    v->type = t;
    return v;
}

/* ---- nodeflow's attributes and parameters --------------------------------------- */

static double attr(const nf_node *n, const char *name)
{
    int i = nf_op_attr_index(n->op, name);
    return i < 0 ? 0 : n->attr[i];
}

/* An HxW attribute as two numbers. */
static void attr2(const nf_node *n, const char *name, int64_t out[2])
{
    int i = nf_op_attr_index(n->op, name);
    out[0] = i < 0 ? 0 : (int64_t)n->attr[i];
    out[1] = i < 0 ? 0 : (int64_t)n->attr_w[i];
}

static const nf_param *param(const nf_graph *g, const nf_node *n, const char *suffix)
{
    char name[NF_PARAM_NAME_MAX];
    snprintf(name, sizeof name, "%s.%s", n->name, suffix);
    int k = nf_graph_find_param(g, name);
    return k < 0 ? NULL : &g->params[k];
}

/* Parameter p as a graph initializer of its name, once; in a function's
 * body, also one of the function's inputs. */
static const char *param_value(exporter *ex, const nf_param *p)
{
    for (size_t k = 0; k < ex->n_fn_params; k++)
        if (!strcmp(ex->fn_params[k], p->name))
            return p->name;
    int in_function = ex->in_function, written = 0;
    for (size_t k = 0; in_function && k < ex->n_inits; k++) /* (a parameter two functions share) */
        written |= !strcmp(ex->inits[k]->name, p->name);
    ex->in_function = 0;
    if (!written)
        initializer(ex, p->name, p->shape.rank, p->shape.dim, ex->g->values + p->offset, NULL);
    ex->in_function = in_function;
    if (in_function)
        push(ex, (void ***)&ex->fn_params, &ex->n_fn_params, &ex->cap_fn_params, (void *)p->name);
    return p->name;
}

/* Parameter `suffix` of node n as an initializer of the same name. */
static const char *param_init(exporter *ex, const nf_node *n, const char *suffix)
{
    const nf_param *p = param(ex->g, n, suffix);
    return p ? param_value(ex, p) : NULL;
}

/* ---- the node types ------------------------------------------------------------ */

static const char *in_name(const nf_node *n, int i) { return n->inputs[i]->name; }

/* rows [first, first + rows) of a [R, C] parameter, transposed, as an
 * initializer [C, rows] (x W^T as MatMul(x, W^T)). */
static const char *rows_of_param(exporter *ex, const nf_node *n, const nf_param *p, int64_t first, int64_t rows,
                                 const char *what);

static const char *rows_transposed(exporter *ex, const nf_node *n, const nf_param *w, int64_t first, int64_t rows,
                                   const char *what)
{
    if (ex->in_function) { /* Transpose(the rows of the parameter, a function input) */
        const char *part = rows_of_param(ex, n, w, first, rows, what), *in[] = {part, NULL};
        const char *t = text(ex, "%s:%s_t", n->name, what);
        static const int64_t swap[2] = {1, 0};
        attr_ints(ex, node(ex, "Transpose", t, in, t), "perm", swap, 2);
        return t;
    }
    int64_t cols = w->shape.dim[1], dims[2] = {cols, rows};
    float *t = keep(ex, (size_t)(rows * cols) * sizeof(float));
    if (!t)
        return NULL;
    const float *v = ex->g->values + w->offset;
    for (int64_t r = 0; r < rows; r++)
        for (int64_t c = 0; c < cols; c++)
            t[c * rows + r] = v[(first + r) * cols + c];
    const char *name = text(ex, "%s.%s", n->name, what);
    initializer(ex, name, 2, dims, t, NULL);
    return name;
}

/* x W^T (+ b): MatMul by rows [first, first + rows) of W transposed, then
 * Add of those entries of b (b NULL: none). */
static const char *projection(exporter *ex, const nf_node *n, const char *x, const nf_param *w, const nf_param *b,
                              int64_t first, int64_t rows, const char *what, const char *out)
{
    const char *wt = rows_transposed(ex, n, w, first, rows, what);
    const char *mm = b ? text(ex, "%s:%s_mm", n->name, what) : out;
    const char *in[] = {x, wt, NULL};
    node(ex, "MatMul", mm, in, mm);
    if (b) {
        int64_t dims[1] = {rows}; /* (the whole bias keeps its parameter's name) */
        const char *bn = rows == b->shape.dim[0] ? b->name : text(ex, "%s.%s_bias", n->name, what);
        if (ex->in_function)
            bn = rows_of_param(ex, n, b, first, rows, text(ex, "%s_bias", what));
        else
            initializer(ex, bn, 1, dims, ex->g->values + b->offset + first, NULL);
        const char *add_in[] = {mm, bn, NULL};
        node(ex, "Add", out, add_in, out);
    }
    return out;
}

/* In a function's body: rows [first, first + rows) of parameter p (an
 * input of the function), a Slice along axis 0 unless they are all. */
static const char *rows_of_param(exporter *ex, const nf_node *n, const nf_param *p, int64_t first, int64_t rows,
                                 const char *what)
{
    const char *whole = param_value(ex, p);
    if (first == 0 && rows == p->shape.dim[0])
        return whole;
    int64_t one[1] = {1}, from[1] = {first}, to[1] = {first + rows}, axis[1] = {0};
    const char *fn = text(ex, "%s.%s_from", n->name, what), *tn = text(ex, "%s.%s_to", n->name, what);
    const char *an = text(ex, "%s.%s_axis", n->name, what), *out = text(ex, "%s:%s_rows", n->name, what);
    initializer(ex, fn, 1, one, NULL, from);
    initializer(ex, tn, 1, one, NULL, to);
    initializer(ex, an, 1, one, NULL, axis);
    const char *in[] = {whole, fn, tn, an, NULL};
    node(ex, "Slice", out, in, out);
    return out;
}

static nf_status export_linear(exporter *ex, const nf_node *n)
{
    const nf_param *w = param(ex->g, n, "weight"), *b = param(ex->g, n, "bias");
    if (n->inputs[0]->shape.rank == 1) { /* Gemm(x, W, b), transB */
        const char *in[] = {in_name(n, 0), param_init(ex, n, "weight"), b ? param_init(ex, n, "bias") : NULL, NULL};
        Onnx__NodeProto *gemm = node(ex, "Gemm", n->name, in, n->name);
        attr_int(ex, gemm, "transB", 1);
        return NF_OK;
    }
    /* [.., in] x W^T (+ b): MatMul by the transposed weight, then Add */
    projection(ex, n, in_name(n, 0), w, b, 0, w->shape.dim[0], "weight_t", n->name);
    return NF_OK;
}

static nf_status export_conv(exporter *ex, const nf_node *n)
{
    if (attr(n, "padding_mode") != 0)
        return refuse(ex, n, "padding modes other than zeros have no ONNX Conv form");
    if (attr(n, "same") != 0)
        return refuse(ex, n, "same=true: give the padding explicitly to export");
    int64_t stride[2], dil[2], pad[2];
    attr2(n, "stride", stride);
    attr2(n, "dilation", dil);
    attr2(n, "padding", pad);
    int64_t top = (int64_t)attr(n, "pad_top"), bottom = (int64_t)attr(n, "pad_bottom");
    int64_t left = (int64_t)attr(n, "pad_left"), right = (int64_t)attr(n, "pad_right");
    int64_t pads[4] = {top >= 0 ? top : pad[0], left >= 0 ? left : pad[1], bottom >= 0 ? bottom : pad[0],
                       right >= 0 ? right : pad[1]};
    const nf_param *w = param(ex->g, n, "weight");
    const char *wn = param_init(ex, n, "weight");
    const char *b = param(ex->g, n, "bias") ? param_init(ex, n, "bias") : NULL;
    const char *in[] = {in_name(n, 0), wn, b, NULL};
    Onnx__NodeProto *c = node(ex, "Conv", n->name, in, n->name);
    if (w->shape.rank == 3) { /* conv1d: the width's values */
        int64_t kernel1[1] = {w->shape.dim[2]}, pads1[2] = {pads[1], pads[3]};
        attr_ints(ex, c, "kernel_shape", kernel1, 1);
        attr_ints(ex, c, "strides", stride + 1, 1);
        attr_ints(ex, c, "dilations", dil + 1, 1);
        attr_ints(ex, c, "pads", pads1, 2);
    } else {
        int64_t kernel[2] = {w->shape.dim[2], w->shape.dim[3]};
        attr_ints(ex, c, "kernel_shape", kernel, 2);
        attr_ints(ex, c, "strides", stride, 2);
        attr_ints(ex, c, "dilations", dil, 2);
        attr_ints(ex, c, "pads", pads, 4);
    }
    attr_int(ex, c, "group", (int64_t)attr(n, "groups"));
    return NF_OK;
}

/* conv_transpose2d: ConvTranspose with its weight [C, O / G, kh, kw] as
 * it is, symmetric pads and output_padding. */
static nf_status export_conv_transpose(exporter *ex, const nf_node *n)
{
    int64_t stride[2], dil[2], pad[2], out_pad[2];
    attr2(n, "stride", stride);
    attr2(n, "dilation", dil);
    attr2(n, "padding", pad);
    attr2(n, "output_padding", out_pad);
    int64_t pads[4] = {pad[0], pad[1], pad[0], pad[1]};
    const nf_param *w = param(ex->g, n, "weight");
    const char *wn = param_init(ex, n, "weight");
    const char *b = param(ex->g, n, "bias") ? param_init(ex, n, "bias") : NULL;
    const char *in[] = {in_name(n, 0), wn, b, NULL};
    Onnx__NodeProto *c = node(ex, "ConvTranspose", n->name, in, n->name);
    int64_t kernel[2] = {w->shape.dim[2], w->shape.dim[3]};
    attr_ints(ex, c, "kernel_shape", kernel, 2);
    attr_ints(ex, c, "strides", stride, 2);
    attr_ints(ex, c, "dilations", dil, 2);
    attr_ints(ex, c, "pads", pads, 4);
    attr_ints(ex, c, "output_padding", out_pad, 2);
    attr_int(ex, c, "group", (int64_t)attr(n, "groups"));
    return NF_OK;
}

static nf_status export_pool(exporter *ex, const nf_node *n, int is_max)
{
    int64_t stride[2], pad[2], dil[2];
    /* (the kernel is a shape attribute: "2" or "2x3") */
    int64_t kernel[2] = {n->dims.dim[0], n->dims.rank > 1 ? n->dims.dim[1] : n->dims.dim[0]};
    attr2(n, "stride", stride);
    attr2(n, "padding", pad);
    attr2(n, "dilation", dil);
    if (is_max && attr(n, "output") != 0)
        return refuse(ex, n, "output=indices numbers positions in each sample; ONNX's Indices number them across "
                      "the batch");
    if (stride[0] == 0) /* 0: the kernel size */
        stride[0] = kernel[0], stride[1] = kernel[1];
    int64_t pads[4] = {pad[0], pad[1], pad[0], pad[1]};
    const char *in[] = {in_name(n, 0), NULL};
    Onnx__NodeProto *p = node(ex, is_max ? "MaxPool" : "AveragePool", n->name, in, n->name);
    if (n->inputs[0]->shape.rank == 2) { /* maxpool1d, avgpool1d: the width's values */
        int64_t pads1[2] = {pad[1], pad[1]};
        attr_ints(ex, p, "kernel_shape", kernel, 1);
        attr_ints(ex, p, "strides", stride + 1, 1);
        attr_ints(ex, p, "pads", pads1, 2);
        if (is_max && dil[1] != 1)
            attr_ints(ex, p, "dilations", dil + 1, 1);
    } else {
        attr_ints(ex, p, "kernel_shape", kernel, 2);
        attr_ints(ex, p, "strides", stride, 2);
        attr_ints(ex, p, "pads", pads, 4);
        if (is_max && (dil[0] != 1 || dil[1] != 1))
            attr_ints(ex, p, "dilations", dil, 2);
    }
    attr_int(ex, p, "ceil_mode", attr(n, "ceil_mode") != 0);
    if (!is_max)
        attr_int(ex, p, "count_include_pad", attr(n, "include_pad") != 0);
    return NF_OK;
}

/* A per-sample reshape: Reshape by [0, dims...] (0 keeps the batch). */
static void reshape_to(exporter *ex, const char *in, const char *out, const nf_shape *s)
{
    int64_t shape[NF_MAX_RANK + 1], dims[1] = {s->rank + 1};
    shape[0] = 0;
    for (int k = 0; k < s->rank; k++)
        shape[k + 1] = s->dim[k];
    const char *sn = text(ex, "%s.shape", out);
    initializer(ex, sn, 1, dims, NULL, shape);
    const char *inputs[] = {in, sn, NULL};
    Onnx__NodeProto *r = node(ex, "Reshape", out, inputs, out);
    (void)r;
}

static nf_status export_batchnorm(exporter *ex, const nf_node *n)
{
    if (!param(ex->g, n, "running_mean") || !param(ex->g, n, "weight"))
        return refuse(ex, n, "batch normalization without running statistics or affine parameters");
    const char *in[] = {in_name(n, 0), param_init(ex, n, "weight"), param_init(ex, n, "bias"),
                        param_init(ex, n, "running_mean"), param_init(ex, n, "running_var"), NULL};
    Onnx__NodeProto *b = node(ex, "BatchNormalization", n->name, in, n->name);
    attr_float(ex, b, "epsilon", attr(n, "eps"));
    attr_float(ex, b, "momentum", 1.0 - attr(n, "momentum"));
    return NF_OK;
}

/* layernorm: LayerNormalization (opset 17) over the trailing axes. */
static nf_status export_layernorm(exporter *ex, const nf_node *n)
{
    const nf_shape *in_shape = &n->inputs[0]->shape;
    int64_t axes = (int64_t)attr(n, "axes"), count = 1;
    int output = (int)attr(n, "output"); /* values, mean, inv_std_dev: LayerNormalization's outputs 0, 1, 2 */
    for (int64_t k = in_shape->rank - axes; k < in_shape->rank; k++)
        count *= in_shape->dim[k];
    const char *scale = NULL, *bias = NULL;
    if (param(ex->g, n, "weight")) {
        scale = param_init(ex, n, "weight");
        bias = param_init(ex, n, "bias");
    } else { /* affine=false: a scale of ones, of the normalised shape */
        float *ones = keep(ex, (size_t)count * sizeof(float));
        for (int64_t k = 0; ones && k < count; k++)
            ones[k] = 1.0f;
        scale = text(ex, "%s.scale", n->name);
        if (ones)
            initializer(ex, scale, (int)axes, in_shape->dim + in_shape->rank - axes, ones, NULL);
    }
    const char *in[] = {in_name(n, 0), scale, bias, NULL};
    Onnx__NodeProto *l = node(ex, "LayerNormalization", n->name, in, n->name);
    char **outputs = output ? keep(ex, 3 * sizeof *outputs) : NULL;
    if (l && outputs) { /* the statistic as output 1 or 2, the others unused */
        outputs[0] = (char *)text(ex, "%s:y", n->name), outputs[1] = (char *)text(ex, "%s:mean", n->name);
        outputs[output] = (char *)n->name;
        l->output = outputs, l->n_output = (size_t)output + 1;
    }
    attr_int(ex, l, "axis", -axes);
    attr_float(ex, l, "epsilon", attr(n, "eps"));
    ex->opset = 17;
    return NF_OK;
}

/* add, sub, mul: two values of one per-sample shape, or a constant node
 * as the second operand (an initializer without the batch axis, which
 * broadcasts over it). */
static nf_status export_binary(exporter *ex, const nf_node *n, const char *op)
{
    const nf_node *b = n->inputs[1];
    const char *bn = in_name(n, 1);
    if (!strcmp(n->inputs[0]->op->name, "constant"))
        return refuse(ex, n, "a constant first operand is not exported (give it second)");
    if (!strcmp(b->op->name, "constant")) {
        const nf_param *v = param(ex->g, b, "value");
        if (!v)
            return refuse(ex, n, "its constant operand has no value");
        if (!ex->written[b->index]) /* one initializer, however many use it */
            param_init(ex, b, "value");
        ex->written[b->index] = 1;
        bn = v->name;
    } else if (b->shape.rank != n->inputs[0]->shape.rank ||
             memcmp(b->shape.dim, n->inputs[0]->shape.dim, (size_t)b->shape.rank * sizeof b->shape.dim[0]))
        return refuse(ex, n, "operands of different per-sample shapes broadcast differently in ONNX");
    const char *in[] = {in_name(n, 0), bn, NULL};
    node(ex, op, n->name, in, n->name);
    return NF_OK;
}

/* A float initializer holding [dirs, G H, cols] (or [dirs, 2 G H] for
 * the biases: the input's then the recurrent's) from nodeflow's
 * per-direction parameters, the gate blocks in ONNX's order: LSTM's
 * i f g o become i o f c, GRU's r z n become z r h. */
static const char *recurrent_init(exporter *ex, const nf_node *n, int layer, int dirs, int gates, int64_t h,
                                  const char *kind, const char *onnx_name)
{
    static const int lstm_from[4] = {0, 3, 1, 2}, gru_from[3] = {1, 0, 2}, rnn_from[1] = {0};
    const int *from = gates == 4 ? lstm_from : gates == 3 ? gru_from : rnn_from;
    int bias = !strcmp(kind, "bias");
    const nf_param *first = NULL;
    char name[64];
    snprintf(name, sizeof name, "%s_%s_l%d", bias ? "bias" : "weight", bias ? "ih" : kind, layer);
    if (!(first = param(ex->g, n, name)))
        return NULL;
    int64_t cols = bias ? 1 : first->shape.dim[1], block = h * cols, per_dir = (bias ? 2 : 1) * gates * block;
    float *data = keep(ex, (size_t)(dirs * per_dir) * sizeof(float));
    if (!data)
        return NULL;
    for (int d = 0; d < dirs; d++)
        for (int half = 0; half < (bias ? 2 : 1); half++) {
            snprintf(name, sizeof name, "%s_%s_l%d%s", bias ? "bias" : "weight", bias ? (half ? "hh" : "ih") : kind,
                     layer, d ? "_reverse" : "");
            const nf_param *p = param(ex->g, n, name);
            if (!p)
                return NULL;
            const float *v = ex->g->values + p->offset;
            for (int j = 0; j < gates; j++)
                memcpy(data + d * per_dir + (half * gates + j) * block, v + from[j] * block,
                       (size_t)block * sizeof(float));
        }
    int64_t dims[3] = {dirs, bias ? 2 * gates * h : gates * h, cols};
    const char *full = text(ex, "%s.%s_l%d", n->name, onnx_name, layer);
    initializer(ex, full, bias ? 2 : 3, dims, data, NULL);
    return full;
}

/* LSTM's P [D, 3 H] of layer `layer`: ONNX's order (i, o, f) from the
 * node's peephole_l* (i, f, o). */
static const char *peephole_init(exporter *ex, const nf_node *n, int layer, int dirs, int64_t h)
{
    static const int from[3] = {0, 2, 1};
    float *data = keep(ex, (size_t)(dirs * 3 * h) * sizeof(float));
    char name[64];
    for (int d = 0; data && d < dirs; d++) {
        snprintf(name, sizeof name, "peephole_l%d%s", layer, d ? "_reverse" : "");
        const nf_param *p = param(ex->g, n, name);
        if (!p)
            return NULL;
        for (int j = 0; j < 3; j++)
            memcpy(data + (d * 3 + j) * h, ex->g->values + p->offset + from[j] * h, (size_t)h * sizeof(float));
    }
    int64_t dims[2] = {dirs, 3 * h};
    const char *full = text(ex, "%s.P_l%d", n->name, layer);
    if (data)
        initializer(ex, full, 2, dims, data, NULL);
    return data ? full : NULL;
}

/* A Transpose of `in` by perm into `out`. */
static void transpose(exporter *ex, const char *in, const char *out, const int64_t *perm, int rank)
{
    const char *inputs[] = {in, NULL};
    attr_ints(ex, node(ex, "Transpose", out, inputs, out), "perm", perm, (size_t)rank);
}

/* rnn, lstm, gru: one ONNX RNN, LSTM or GRU per layer, time-major
 * (Transposes around it: [batch, T, F] in, [batch, T, D H] out), from zero
 * states: a run of the exported model is a fresh call (carry=true, a
 * training-time link between batches, is not in it). output=state gives
 * the final hidden states [L D, H]; output=cell has no form here. */
static nf_status export_recurrent(exporter *ex, const nf_node *n)
{
    const char *op = n->op->name;
    int gates = !strcmp(op, "lstm") ? 4 : !strcmp(op, "gru") ? 3 : 1;
    int layers = (int)attr(n, "num_layers"), dirs = attr(n, "bidirectional") != 0 ? 2 : 1;
    int output = (int)attr(n, "output");
    int64_t h = (int64_t)attr(n, "hidden");
    if (output == 2)
        return refuse(ex, n, "output=cell (the final cell states) is not exported");
    if (n->inputs[0]->shape.rank != 2)
        return refuse(ex, n, "an input other than [T, features] per sample");
    static const int64_t swap[3] = {1, 0, 2};
    const char *x = text(ex, "%s:x_l0", n->name), *states[MAX_LAYERS + 1] = {NULL};
    if (layers < 1 || layers > MAX_LAYERS)
        return refuse(ex, n, "num_layers out of range");
    transpose(ex, in_name(n, 0), x, swap, 3);
    for (int l = 0; l < layers && !ex->failed; l++) {
        const char *w = recurrent_init(ex, n, l, dirs, gates, h, "ih", "W");
        const char *r = recurrent_init(ex, n, l, dirs, gates, h, "hh", "R");
        const char *b = param(ex->g, n, "bias_ih_l0") ? recurrent_init(ex, n, l, dirs, gates, h, "bias", "B") : NULL;
        const char *peep = gates == 4 && attr(n, "peephole") != 0 ? peephole_init(ex, n, l, dirs, h) : NULL;
        if (!w || !r || (gates == 4 && attr(n, "peephole") != 0 && !peep))
            return ex->failed ? NF_OK : refuse(ex, n, "its weights are missing");
        const char *y = text(ex, "%s:y_l%d", n->name, l), *y_h = text(ex, "%s:h_l%d", n->name, l);
        /* (no B: the list ends there; P is input 8, after three left out) */
        const char *in[] = {x, w, r, peep && !b ? "" : b, "", "", "", peep, NULL};
        if (!peep)
            in[4] = NULL;
        const char *kind = gates == 4 ? "LSTM" : gates == 3 ? "GRU" : "RNN";
        Onnx__NodeProto *rec = node(ex, kind, text(ex, "%s_l%d", n->name, l), in, y);
        if (!rec)
            return NF_OK;
        rec->output = keep(ex, 2 * sizeof *rec->output);
        if (!rec->output)
            return NF_OK;
        rec->output[0] = (char *)y, rec->output[1] = (char *)y_h, rec->n_output = 2;
        attr_int(ex, rec, "hidden_size", h);
        if (dirs == 2)
            attr_string(ex, rec, "direction", "bidirectional");
        if (gates == 3) /* 1 is PyTorch's GRU, nodeflow's default */
            attr_int(ex, rec, "linear_before_reset", attr(n, "linear_before_reset") != 0);
        if (gates == 1 && attr(n, "nonlinearity") != 0) {
            Onnx__AttributeProto *a = attribute(ex, rec, "activations", ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__STRINGS);
            ProtobufCBinaryData *names = keep(ex, (size_t)dirs * sizeof *names);
            for (int d = 0; a && names && d < dirs; d++)
                names[d].data = (uint8_t *)text(ex, "Relu"), names[d].len = 4;
            if (a && names)
                a->strings = names, a->n_strings = (size_t)dirs;
        }
        states[l] = y_h;
        /* Y [T, D, batch, H] -> [T, batch, D H], the next layer's input */
        const char *yt = text(ex, "%s:yt_l%d", n->name, l);
        static const int64_t tbdh[4] = {0, 2, 1, 3};
        transpose(ex, y, yt, tbdh, 4);
        int64_t shape[3] = {0, 0, dirs * h}, dims[1] = {3}; /* (0s copy T and the batch) */
        const char *sn = text(ex, "%s.shape_l%d", n->name, l);
        initializer(ex, sn, 1, dims, NULL, shape);
        x = text(ex, "%s:x_l%d", n->name, l + 1);
        const char *rin[] = {yt, sn, NULL};
        node(ex, "Reshape", x, rin, x);
    }
    if (output == 0) { /* [T, batch, D H] -> [batch, T, D H] */
        transpose(ex, x, n->name, swap, 3);
        return NF_OK;
    }
    /* the final hidden states: Y_h [D, batch, H] of every layer, joined, batch first */
    const char *joined = states[0];
    if (layers > 1) {
        joined = text(ex, "%s:states", n->name);
        Onnx__NodeProto *c = node(ex, "Concat", joined, states, joined);
        attr_int(ex, c, "axis", 0);
    }
    transpose(ex, joined, n->name, swap, 3);
    return NF_OK;
}

/* A float scalar initializer named `<node>.<what>`. */
static const char *scalar(exporter *ex, const nf_node *n, const char *what, float v)
{
    const char *name = text(ex, "%s.%s", n->name, what);
    initializer(ex, name, 0, NULL, &v, NULL);
    return name;
}

/* out = a OP b, one ONNX node named after out. */
static const char *binary(exporter *ex, const char *op, const char *a, const char *b, const char *out)
{
    const char *in[] = {a, b, NULL};
    node(ex, op, out, in, out);
    return out;
}

/* gelu: exactly 0.5 x (1 + erf(x / sqrt 2)), or in its tanh form
 * 0.5 x (1 + tanh(sqrt(2 / pi) (x + 0.044715 x^3))), from Erf, Tanh, Mul,
 * Add and Div (opset 14 has no Gelu). */
static nf_status export_gelu(exporter *ex, const nf_node *n)
{
    const char *x = in_name(n, 0), *name = n->name, *inner;
    if (attr(n, "approximate") == 0) {
        const char *scaled = binary(ex, "Div", x, scalar(ex, n, "sqrt2", 1.41421356f), text(ex, "%s:div", name));
        const char *in[] = {scaled, NULL};
        inner = text(ex, "%s:erf", name);
        node(ex, "Erf", inner, in, inner);
    } else {
        const char *x2 = binary(ex, "Mul", x, x, text(ex, "%s:x2", name));
        const char *x3 = binary(ex, "Mul", x2, x, text(ex, "%s:x3", name));
        const char *c3 = binary(ex, "Mul", x3, scalar(ex, n, "c", 0.044715f), text(ex, "%s:cx3", name));
        const char *sum = binary(ex, "Add", x, c3, text(ex, "%s:sum", name));
        const char *u = binary(ex, "Mul", sum, scalar(ex, n, "k", 0.797884561f), text(ex, "%s:u", name));
        const char *in[] = {u, NULL};
        inner = text(ex, "%s:tanh", name);
        node(ex, "Tanh", inner, in, inner);
    }
    const char *plus = binary(ex, "Add", inner, scalar(ex, n, "one", 1.0f), text(ex, "%s:plus1", name));
    const char *times = binary(ex, "Mul", x, plus, text(ex, "%s:times", name));
    binary(ex, "Mul", times, scalar(ex, n, "half", 0.5f), name);
    return NF_OK;
}

/* softplus (beta, threshold): Softplus(beta x) / beta; above the
 * threshold nodeflow gives x, which Softplus equals there in float32
 * (log(1 + e^t) - t < 2^-24 for t >= 17, and the threshold must be so). */
static nf_status export_softplus(exporter *ex, const nf_node *n)
{
    double beta = attr(n, "beta"), threshold = attr(n, "threshold");
    if (threshold < 17)
        return refuse(ex, n, "a threshold below 17 differs from ONNX's Softplus");
    const char *x = in_name(n, 0);
    if (beta != 1)
        x = binary(ex, "Mul", x, scalar(ex, n, "beta", (float)beta), text(ex, "%s:scaled", n->name));
    const char *sp = beta != 1 ? text(ex, "%s:softplus", n->name) : n->name;
    const char *in[] = {x, NULL};
    node(ex, "Softplus", sp, in, sp);
    if (beta != 1)
        binary(ex, "Div", sp, scalar(ex, n, "beta_div", (float)beta), n->name);
    return NF_OK;
}

/* mod: ONNX's Mod with fmod=1 (C's fmod: the only one for floats); for
 * Python's %, fmod(fmod(x, d) + d, d), as the node computes it. */
static nf_status export_mod(exporter *ex, const nf_node *n)
{
    const char *d = scalar(ex, n, "divisor", (float)attr(n, "divisor"));
    int python = attr(n, "fmod") == 0;
    const char *first = python ? text(ex, "%s:fmod", n->name) : n->name;
    const char *in[] = {in_name(n, 0), d, NULL};
    attr_int(ex, node(ex, "Mod", first, in, first), "fmod", 1);
    if (python) {
        const char *shifted = binary(ex, "Add", first, d, text(ex, "%s:shifted", n->name));
        const char *again[] = {shifted, d, NULL};
        attr_int(ex, node(ex, "Mod", n->name, again, n->name), "fmod", 1);
    }
    return NF_OK;
}

/* pad: ONNX's Pad over the one axis (the batch's and the others' pads 0),
 * the mode by name, the constant as its third input. */
static nf_status export_pad(exporter *ex, const nf_node *n)
{
    static const char *const modes[] = {"constant", "reflect", "edge"};
    const nf_shape *s = &n->inputs[0]->shape;
    int64_t axis = (int64_t)attr(n, "axis"), rank = s->rank + 1, pads[2 * (NF_MAX_RANK + 1)] = {0};
    axis = (axis < 0 ? axis + s->rank : axis) + 1;
    pads[axis] = (int64_t)attr(n, "before");
    pads[rank + axis] = (int64_t)attr(n, "after");
    int64_t dims[1] = {2 * rank};
    const char *pn = text(ex, "%s.pads", n->name), *value = scalar(ex, n, "value", (float)attr(n, "value"));
    initializer(ex, pn, 1, dims, NULL, pads);
    const char *in[] = {in_name(n, 0), pn, value, NULL};
    attr_string(ex, node(ex, "Pad", n->name, in, n->name), "mode", modes[(int)attr(n, "mode")]);
    return NF_OK;
}

/* reduce_max: ReduceMax or ReduceMin over the trailing axes (keepdims);
 * output=indices over one axis: ArgMax or ArgMin (keepdims,
 * select_last_index). Positions in a block of several axes have no ONNX
 * operator. */
static nf_status export_reduce_max(exporter *ex, const nf_node *n)
{
    const nf_shape *in_shape = &n->inputs[0]->shape;
    int64_t count = (int64_t)attr(n, "axes"), axes[NF_MAX_RANK];
    int min = attr(n, "min") != 0, indices = attr(n, "output") != 0;
    const char *in[] = {in_name(n, 0), NULL};
    if (indices && count != 1)
        return refuse(ex, n, "positions over more than one axis have no ONNX operator (ArgMax takes one)");
    if (indices) { /* (int64 in ONNX; nodeflow's values are floats: a Cast) */
        const char *at = text(ex, "%s:int64", n->name), *cast_in[] = {at, NULL};
        Onnx__NodeProto *a = node(ex, min ? "ArgMin" : "ArgMax", at, in, at);
        attr_int(ex, a, "axis", -1);
        attr_int(ex, a, "keepdims", 1);
        attr_int(ex, a, "select_last_index", attr(n, "last") != 0);
        attr_int(ex, node(ex, "Cast", n->name, cast_in, n->name), "to", ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT);
        return NF_OK;
    }
    if (attr(n, "last") != 0)
        return refuse(ex, n, "last=true changes only positions (output=indices)");
    for (int64_t k = 0; k < count; k++) /* (ONNX's axes: the batch is axis 0) */
        axes[k] = in_shape->rank - count + k + 1;
    Onnx__NodeProto *r = node(ex, min ? "ReduceMin" : "ReduceMax", n->name, in, n->name);
    attr_ints(ex, r, "axes", axes, (size_t)count);
    attr_int(ex, r, "keepdims", 1);
    return NF_OK;
}

/* Per-sample axes into ONNX's (the batch first): the axis + 1. */
static int64_t onnx_axis(const nf_node *n, const nf_shape *s, const char *name)
{
    int64_t a = (int64_t)attr(n, name);
    return (a < 0 ? a + s->rank : a) + 1;
}

/* slice, concat, transpose, permute, matmul: their ONNX operators over
 * the per-sample axes shifted by one. */
static nf_status export_shape_op(exporter *ex, const nf_node *n)
{
    const char *op = n->op->name;
    const nf_shape *in0 = &n->inputs[0]->shape;
    if (!strcmp(op, "slice")) {
        int64_t axis = onnx_axis(n, in0, "axis"), start = (int64_t)attr(n, "start"), end = (int64_t)attr(n, "end");
        int64_t len = in0->dim[axis - 1], one[1] = {1};
        int64_t starts[1] = {start < 0 ? start + len : start}, ends[1] = {end < 0 ? end + len + 1 : end};
        int64_t axes[1] = {axis};
        const char *sn = text(ex, "%s.starts", n->name), *en = text(ex, "%s.ends", n->name);
        const char *an = text(ex, "%s.axes", n->name);
        initializer(ex, sn, 1, one, NULL, starts);
        initializer(ex, en, 1, one, NULL, ends);
        initializer(ex, an, 1, one, NULL, axes);
        const char *in[] = {in_name(n, 0), sn, en, an, NULL};
        node(ex, "Slice", n->name, in, n->name);
        return NF_OK;
    }
    if (!strcmp(op, "concat")) {
        const char *in[NF_MAX_INPUTS + 1] = {NULL};
        for (int i = 0; i < n->n_inputs; i++)
            in[i] = in_name(n, i);
        attr_int(ex, node(ex, "Concat", n->name, in, n->name), "axis", onnx_axis(n, in0, "axis"));
        return NF_OK;
    }
    if (!strcmp(op, "transpose") || !strcmp(op, "permute")) {
        int64_t perm[NF_MAX_RANK + 1];
        perm[0] = 0;
        for (int k = 0; k < in0->rank; k++)
            perm[k + 1] = k + 1;
        if (!strcmp(op, "transpose")) {
            int64_t a = onnx_axis(n, in0, "dim0"), b = onnx_axis(n, in0, "dim1");
            perm[a] = b, perm[b] = a;
        } else { /* (the order is the node's axes attribute) */
            for (int k = 0; k < n->dims.rank; k++)
                perm[k + 1] = n->dims.dim[k] + 1;
        }
        transpose(ex, in_name(n, 0), n->name, perm, in0->rank + 1);
        return NF_OK;
    }
    /* matmul: ONNX broadcasts from the right, so only equal ranks keep the batch axes lined up */
    const nf_shape *in1 = &n->inputs[1]->shape;
    if (in0->rank != in1->rank || in0->rank < 2)
        return refuse(ex, n, "operands of different ranks broadcast differently in ONNX");
    const char *a = in_name(n, 0), *b = in_name(n, 1);
    int64_t perm[NF_MAX_RANK + 1];
    for (int k = 0; k <= in0->rank; k++)
        perm[k] = k;
    perm[in0->rank - 1] = in0->rank, perm[in0->rank] = in0->rank - 1;
    if (attr(n, "transpose_a") != 0) {
        const char *t = text(ex, "%s:at", n->name);
        transpose(ex, a, t, perm, in0->rank + 1);
        a = t;
    }
    if (attr(n, "transpose_b") != 0) {
        const char *t = text(ex, "%s:bt", n->name);
        transpose(ex, b, t, perm, in0->rank + 1);
        b = t;
    }
    binary(ex, "MatMul", a, b, n->name);
    return NF_OK;
}

/* A Reshape of `in` by the int64 shape `dims` (0: copy the batch). */
static const char *reshape_by(exporter *ex, const char *in, const char *out, const int64_t *dims, int rank)
{
    int64_t len[1] = {rank};
    const char *sn = text(ex, "%s.shape", out);
    initializer(ex, sn, 1, len, NULL, dims);
    const char *inputs[] = {in, sn, NULL};
    node(ex, "Reshape", out, inputs, out);
    return out;
}

/* attention (nn.MultiheadAttention, batch first) written out: the three
 * projections, heads split ([N, T, E] to [N, H, T, d]), Q K^T / sqrt(d)
 * (with the causal mask added: -inf where j > i), Softmax, times V, heads
 * joined, the output projection. Dropout acts in training only. */
static nf_status export_attention(exporter *ex, const nf_node *n)
{
    const nf_node *query = n->inputs[0], *key = n->inputs[n->n_inputs > 1 ? 1 : 0];
    int64_t t = query->shape.dim[0], sl = key->shape.dim[0], e = query->shape.dim[1];
    int64_t heads = (int64_t)attr(n, "heads"), d = e / heads;
    const nf_param *w = param(ex->g, n, "in_proj_weight"), *b = param(ex->g, n, "in_proj_bias");
    const nf_param *wo = param(ex->g, n, "out_proj.weight"), *bo = param(ex->g, n, "out_proj.bias");
    if (!w || !wo)
        return refuse(ex, n, "its projection weights are missing");
    const char *qn = in_name(n, 0), *kn = in_name(n, n->n_inputs > 1 ? 1 : 0);
    const char *vn = in_name(n, n->n_inputs > 2 ? 2 : n->n_inputs > 1 ? 1 : 0); /* (query; key and value) */
    const char *q = projection(ex, n, qn, w, b, 0, e, "q", text(ex, "%s:q", n->name));
    const char *k = projection(ex, n, kn, w, b, e, e, "k", text(ex, "%s:k", n->name));
    const char *v = projection(ex, n, vn, w, b, 2 * e, e, "v", text(ex, "%s:v", n->name));
    int64_t split_t[4] = {0, t, heads, d}, split_s[4] = {0, sl, heads, d}, join[3] = {0, t, e};
    static const int64_t heads_first[4] = {0, 2, 1, 3}, keys_last[4] = {0, 2, 3, 1};
    const char *qh = text(ex, "%s:qh", n->name), *kh = text(ex, "%s:kh", n->name), *vh = text(ex, "%s:vh", n->name);
    transpose(ex, reshape_by(ex, q, text(ex, "%s:q4", n->name), split_t, 4), qh, heads_first, 4);
    transpose(ex, reshape_by(ex, k, text(ex, "%s:k4", n->name), split_s, 4), kh, keys_last, 4);
    transpose(ex, reshape_by(ex, v, text(ex, "%s:v4", n->name), split_s, 4), vh, heads_first, 4);
    const char *scores = binary(ex, "MatMul", qh, kh, text(ex, "%s:scores", n->name));
    const char *scaled = binary(ex, "Mul", scores, scalar(ex, n, "scale", (float)(1.0 / sqrt((double)d))),
                                text(ex, "%s:scaled", n->name));
    if (attr(n, "causal") != 0) { /* -inf above the diagonal (PyTorch's is_causal) */
        float *mask = keep(ex, (size_t)(t * sl) * sizeof(float));
        if (!mask)
            return NF_OK;
        for (int64_t i = 0; i < t; i++)
            for (int64_t j = 0; j < sl; j++)
                mask[i * sl + j] = j > i ? -INFINITY : 0.0f;
        int64_t dims[2] = {t, sl};
        const char *mn = text(ex, "%s.causal_mask", n->name);
        initializer(ex, mn, 2, dims, mask, NULL);
        scaled = binary(ex, "Add", scaled, mn, text(ex, "%s:masked", n->name));
    }
    const char *sm_in[] = {scaled, NULL}, *weights = text(ex, "%s:weights", n->name);
    attr_int(ex, node(ex, "Softmax", weights, sm_in, weights), "axis", -1);
    const char *o = binary(ex, "MatMul", weights, vh, text(ex, "%s:o", n->name));
    const char *ot = text(ex, "%s:ot", n->name);
    transpose(ex, o, ot, heads_first, 4);
    const char *joined = reshape_by(ex, ot, text(ex, "%s:joined", n->name), join, 3);
    projection(ex, n, joined, wo, bo, 0, e, "out", n->name);
    return NF_OK;
}

static int ids_only(const nf_graph *g, const unsigned char *needed, const nf_node *in);

/* embedding: Gather of the table's rows by the ids (int64 in the model);
 * one_hot: OneHot of the ids with depth `classes` and values 0, 1. */
static nf_status export_ids(exporter *ex, const nf_node *n)
{
    if (!(n->inputs[0]->op->flags & NF_OP_INPUT) || !ids_only(ex->g, ex->needed, n->inputs[0]))
        return refuse(ex, n, "ids computed by other nodes, or an input that other nodes read as numbers, are not "
                             "exported (ids are an int64 input in ONNX)");
    if (!strcmp(n->op->name, "embedding")) {
        const char *in[] = {param_init(ex, n, "weight"), in_name(n, 0), NULL};
        attr_int(ex, node(ex, "Gather", n->name, in, n->name), "axis", 0);
        return NF_OK;
    }
    int64_t depth = (int64_t)attr(n, "classes"), two[1] = {2};
    float values[2] = {0, 1};
    const char *dn = text(ex, "%s.depth", n->name), *vn = text(ex, "%s.values", n->name);
    initializer(ex, dn, 0, NULL, NULL, &depth);
    initializer(ex, vn, 1, two, values, NULL);
    const char *in[] = {in_name(n, 0), dn, vn, NULL};
    attr_int(ex, node(ex, "OneHot", n->name, in, n->name), "axis", -1);
    return NF_OK;
}

typedef nf_status (*body_writer)(exporter *ex, const nf_node *n);

/* A node type that ONNX lacks (gelu, attention...) as a model-local
 * function of domain ai.nodeflow, named <type>.<node>: its body is the
 * composition that `body` writes, which onnxruntime runs, and the call
 * carries the node's type (nodeflow_op), its attributes as text and its
 * parameters' names (nodeflow_params, after the data inputs), from which
 * nodeflow's reader makes the node again, exactly. IR version 8. */
static nf_status export_function(exporter *ex, const nf_node *n, body_writer body)
{
    Onnx__NodeProto **graph_nodes = ex->nodes;
    size_t n_graph = ex->n_nodes, cap_graph = ex->cap_nodes;
    ex->nodes = NULL, ex->n_nodes = ex->cap_nodes = 0;
    ex->fn_params = NULL, ex->n_fn_params = ex->cap_fn_params = 0;
    ex->in_function = 1;
    nf_status st = body(ex, n);
    ex->in_function = 0;
    Onnx__NodeProto **body_nodes = ex->nodes;
    size_t n_body = ex->n_nodes, n_params = ex->n_fn_params;
    const char **params = ex->fn_params;
    ex->nodes = graph_nodes, ex->n_nodes = n_graph, ex->cap_nodes = cap_graph;
    ex->fn_params = NULL, ex->n_fn_params = ex->cap_fn_params = 0;
    size_t n_in = (size_t)n->n_inputs + n_params, n_attrs = 0;
    const char **in = keep(ex, (n_in + 1) * sizeof *in), **formal = keep(ex, (n_in + 1) * sizeof *formal);
    char **attr_names = keep(ex, ((size_t)n->op->n_attrs + 2) * sizeof *attr_names);
    char **outputs = keep(ex, sizeof *outputs);
    ProtobufCBinaryData *suffixes = keep(ex, (n_params + 1) * sizeof *suffixes);
    Onnx__FunctionProto *f = keep(ex, sizeof *f);
    if (st != NF_OK || !in || !formal || !attr_names || !outputs || !suffixes || !f)
        return st;
    for (int k = 0; k < n->n_inputs; k++) { /* the body reads the first of a repeated input (attention(x, x)) */
        int again = 0;
        for (int j = 0; j < k; j++)
            again |= !strcmp(in[j], in_name(n, k));
        in[k] = in_name(n, k);
        formal[k] = again ? text(ex, "%s:input%d", n->name, k) : in[k];
    }
    for (size_t k = 0; k < n_params; k++) {
        in[n->n_inputs + k] = formal[n->n_inputs + k] = params[k];
        const char *dot = strchr(params[k], '.'); /* (a parameter is named <node>.<suffix>) */
        suffixes[k].data = (uint8_t *)(dot ? dot + 1 : params[k]);
        suffixes[k].len = strlen((const char *)suffixes[k].data);
    }
    onnx__function_proto__init(f);
    f->name = text(ex, "%s.%s", n->op->name, n->name);
    f->domain = (char *)nodeflow_domain;
    f->input = (char **)formal, f->n_input = n_in;
    outputs[0] = (char *)n->name;
    f->output = outputs, f->n_output = 1;
    f->node = body_nodes, f->n_node = n_body;
    Onnx__NodeProto *call = node(ex, f->name, n->name, in, n->name);
    if (!call)
        return NF_OK;
    call->domain = (char *)nodeflow_domain;
    attr_string(ex, call, "nodeflow_op", n->op->name);
    attr_names[n_attrs++] = (char *)"nodeflow_op";
    Onnx__AttributeProto *p = attribute(ex, call, "nodeflow_params", ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__STRINGS);
    if (p)
        p->strings = suffixes, p->n_strings = n_params;
    attr_names[n_attrs++] = (char *)"nodeflow_params";
    for (int i = 0; i < n->op->n_attrs; i++) {
        char value[128];
        if (!(n->attr_set & (1u << i)))
            continue;
        nf_format_node_attr(value, sizeof value, n, i);
        attr_string(ex, call, n->op->attrs[i].name, value);
        attr_names[n_attrs++] = (char *)n->op->attrs[i].name;
    }
    f->attribute = attr_names, f->n_attribute = n_attrs;
    push(ex, (void ***)&ex->functions, &ex->n_functions, &ex->cap_functions, f);
    return NF_OK;
}

static nf_status export_silu(exporter *ex, const nf_node *n)
{
    const char *in[] = {in_name(n, 0), NULL}, *sig = text(ex, "%s:sigmoid", n->name);
    node(ex, "Sigmoid", sig, in, sig);
    binary(ex, "Mul", in_name(n, 0), sig, n->name);
    return NF_OK;
}

static nf_status export_node(exporter *ex, const nf_node *n)
{
    const char *op = n->op->name;
    const char *in[] = {n->n_inputs ? in_name(n, 0) : NULL, NULL};
    static const struct {
        const char *nf, *onnx;
    } same[] = {{"relu", "Relu"}, {"sigmoid", "Sigmoid"}, {"tanh", "Tanh"}, {"copy", "Identity"},
                {"dropout", "Identity"}, {"output", "Identity"}, {"erf", "Erf"}, {"sqrt", "Sqrt"}, {"exp", "Exp"},
                {"log", "Log"}, {"abs", "Abs"}};
    for (size_t k = 0; k < sizeof same / sizeof same[0]; k++)
        if (!strcmp(op, same[k].nf)) {
            node(ex, same[k].onnx, n->name, in, n->name);
            return NF_OK;
        }
    if (!strcmp(op, "leaky_relu") || !strcmp(op, "elu")) {
        Onnx__NodeProto *a = node(ex, !strcmp(op, "elu") ? "Elu" : "LeakyRelu", n->name, in, n->name);
        attr_float(ex, a, "alpha", attr(n, !strcmp(op, "elu") ? "alpha" : "slope"));
        return NF_OK;
    }
    if (!strcmp(op, "softmax") || !strcmp(op, "log_softmax")) {
        if (attr(n, "causal") != 0)
            return refuse(ex, n, "causal softmax has no ONNX operator");
        Onnx__NodeProto *s = node(ex, !strcmp(op, "softmax") ? "Softmax" : "LogSoftmax", n->name, in, n->name);
        int64_t axis = (int64_t)attr(n, "axis");
        attr_int(ex, s, "axis", axis < 0 ? axis : axis + 1);
        return NF_OK;
    }
    if (!strcmp(op, "scale")) {
        float factor = (float)attr(n, "factor");
        const char *k = text(ex, "%s.factor", n->name);
        initializer(ex, k, 0, NULL, &factor, NULL);
        const char *mul_in[] = {in_name(n, 0), k, NULL};
        node(ex, "Mul", n->name, mul_in, n->name);
        return NF_OK;
    }
    if (!strcmp(op, "linear"))
        return export_linear(ex, n);
    if (!strcmp(op, "conv2d") || !strcmp(op, "conv1d"))
        return export_conv(ex, n);
    if (!strcmp(op, "conv_transpose2d"))
        return export_conv_transpose(ex, n);
    if (!strcmp(op, "maxpool") || !strcmp(op, "avgpool") || !strcmp(op, "maxpool1d") || !strcmp(op, "avgpool1d"))
        return export_pool(ex, n, !strncmp(op, "maxpool", 7));
    if (!strcmp(op, "batchnorm"))
        return export_batchnorm(ex, n);
    if (!strcmp(op, "layernorm"))
        return export_layernorm(ex, n);
    if (!strcmp(op, "add") || !strcmp(op, "sub") || !strcmp(op, "mul") || !strcmp(op, "div"))
        return export_binary(ex, n, !strcmp(op, "add")   ? "Add"
                                    : !strcmp(op, "sub") ? "Sub"
                                    : !strcmp(op, "mul") ? "Mul"
                                                         : "Div");
    if (!strcmp(op, "global_avgpool")) { /* [C, ...] -> [C]: the pool, then its unit axes dropped */
        const char *pooled = text(ex, "%s:pool", n->name);
        node(ex, "GlobalAveragePool", pooled, in, pooled);
        reshape_to(ex, pooled, n->name, &n->shape);
        return NF_OK;
    }
    if (!strcmp(op, "flatten") || !strcmp(op, "reshape")) {
        if (nf_shape_size(&n->shape) == 0) /* (its 0s would copy input axes; allowzero would lose the batch) */
            return refuse(ex, n, "a reshape of a tensor with no elements is not exported");
        reshape_to(ex, in_name(n, 0), n->name, &n->shape);
        return NF_OK;
    }
    if (!strcmp(op, "constant"))
        return NF_OK; /* (written where it is used, as an initializer) */
    if (!strcmp(op, "lstm") || !strcmp(op, "gru") || !strcmp(op, "rnn"))
        return export_recurrent(ex, n);
    if (!strcmp(op, "gelu")) /* (the compositions: functions, which nodeflow reads back as the node) */
        return export_function(ex, n, export_gelu);
    if (!strcmp(op, "attention"))
        return export_function(ex, n, export_attention);
    if (!strcmp(op, "softplus"))
        return export_function(ex, n, export_softplus);
    if (!strcmp(op, "silu")) /* x sigmoid(x) */
        return export_function(ex, n, export_silu);
    if (!strcmp(op, "slice") || !strcmp(op, "concat") || !strcmp(op, "transpose") || !strcmp(op, "permute") ||
        !strcmp(op, "matmul"))
        return export_shape_op(ex, n);
    if (!strcmp(op, "hardtanh") || !strcmp(op, "relu6")) { /* Clip(x, min, max) */
        int relu6 = !strcmp(op, "relu6");
        const char *lo = scalar(ex, n, "min", relu6 ? 0.0f : (float)attr(n, "min_val"));
        const char *hi = scalar(ex, n, "max", relu6 ? 6.0f : (float)attr(n, "max_val"));
        const char *clip_in[] = {in_name(n, 0), lo, hi, NULL};
        node(ex, "Clip", n->name, clip_in, n->name);
        return NF_OK;
    }
    if (!strcmp(op, "embedding") || !strcmp(op, "one_hot"))
        return export_ids(ex, n);
    if (!strcmp(op, "mod")) /* C's fmod, then for Python's % fmod(fmod(x, d) + d, d) */
        return attr(n, "fmod") != 0 ? export_mod(ex, n) : export_function(ex, n, export_mod);
    if (!strcmp(op, "pad"))
        return export_pad(ex, n);
    if (!strcmp(op, "reduce_max"))
        return export_reduce_max(ex, n);
    return refuse(ex, n, "this node type is not exported to ONNX yet (docs/onnx.md)");
}

/* ---- the graph ---------------------------------------------------------------- */

/* Marks the nodes the outputs need (the inference graph): the outputs,
 * or without any, the first input of each loss. */
static int mark_needed(const nf_graph *g, unsigned char *needed)
{
    int outputs = 0;
    for (int k = g->n_nodes - 1; k >= 0; k--) {
        const nf_node *n = g->nodes[k];
        if (n->op->flags & NF_OP_OUTPUT)
            needed[k] = 1, outputs++;
    }
    for (int k = g->n_nodes - 1; k >= 0 && !outputs; k--)
        if (g->nodes[k]->op->flags & NF_OP_LOSS)
            needed[g->nodes[k]->inputs[0]->index] = 2, outputs++; /* 2: exported as an output */
    for (int k = g->n_nodes - 1; k >= 0; k--)
        if (needed[k])
            for (int i = 0; i < g->nodes[k]->n_inputs; i++)
                if (!needed[g->nodes[k]->inputs[i]->index])
                    needed[g->nodes[k]->inputs[i]->index] = 1;
    return outputs;
}

/* Whether input node `in` feeds only embedding and one_hot nodes (token
 * ids: an int64 input in ONNX, as PyTorch writes them). */
static int ids_only(const nf_graph *g, const unsigned char *needed, const nf_node *in)
{
    int uses = 0;
    for (int k = 0; k < g->n_nodes; k++)
        for (int i = 0; needed[k] && i < g->nodes[k]->n_inputs; i++)
            if (g->nodes[k]->inputs[i] == in) {
                if (strcmp(g->nodes[k]->op->name, "embedding") && strcmp(g->nodes[k]->op->name, "one_hot"))
                    return 0;
                uses++;
            }
    return uses > 0;
}

static nf_status build(exporter *ex, unsigned char *needed)
{
    const nf_graph *g = ex->g;
    if (!mark_needed(g, needed))
        return nf_fail(ex->err, NF_ERR_STATE, "the graph has no output node and no loss: nothing to export");
    ex->inputs = keep(ex, (size_t)g->n_nodes * sizeof *ex->inputs);
    ex->outputs = keep(ex, (size_t)g->n_nodes * sizeof *ex->outputs);
    for (int k = 0; k < g->n_nodes && !ex->failed; k++) {
        const nf_node *n = g->nodes[k];
        if (!needed[k])
            continue;
        if (n->memory_source || (n->op->flags & NF_OP_MEMORY))
            return refuse(ex, n, "recurrent flows through memory nodes are not exported (ONNX would need Loop "
                                 "or Scan)");
        if (n->share_from)
            return refuse(ex, n, "shared parameters (share=) are not exported yet");
        if (!strcmp(n->op->name, "constant")) {
            for (int j = k + 1; j < g->n_nodes; j++) /* only as the second operand of add, sub or mul */
                for (int i = 0; i < g->nodes[j]->n_inputs; i++)
                    if (needed[j] && g->nodes[j]->inputs[i] == n &&
                        (i != 1 || (strcmp(g->nodes[j]->op->name, "add") && strcmp(g->nodes[j]->op->name, "sub") &&
                                    strcmp(g->nodes[j]->op->name, "mul"))))
                        return refuse(ex, n, "a constant is exported only as the second operand of add, sub or mul");
            if (needed[k] == 2 || (n->op->flags & NF_OP_OUTPUT))
                return refuse(ex, n, "a constant as an output is not exported");
            continue;
        }
        if (n->op->flags & NF_OP_INPUT) {
            if (n->attr[nf_op_attr_index(n->op, "sequence")] != 0)
                return refuse(ex, n, "sequence inputs of unrolled plans are not exported");
            ex->inputs[ex->n_inputs++] = value_info(ex, n->name, &n->shape, ids_only(g, needed, n));
            continue;
        }
        nf_status st = export_node(ex, n);
        if (st != NF_OK)
            return st;
        if (needed[k] == 2 || (n->op->flags & NF_OP_OUTPUT))
            ex->outputs[ex->n_outputs++] = value_info(ex, n->name, &n->shape, 0);
    }
    return ex->failed ? nf_fail(ex->err, NF_ERR_NO_MEMORY, "out of memory exporting the graph") : NF_OK;
}

nf_status nf_onnx_save(nf_graph *g, const char *path, nf_error *err)
{
    if (!g || !path)
        return nf_fail(err, NF_ERR_INVALID_ARGUMENT, "nf_onnx_save: NULL argument");
    nf_status st = nf_graph_validate(g, err);
    if (st != NF_OK)
        return st;
    exporter ex = {.g = g, .err = err, .opset = 14};
    unsigned char *needed = calloc((size_t)g->n_nodes + 1, 1);
    ex.needed = needed;
    ex.written = calloc((size_t)g->n_nodes + 1, 1);
    st = needed && ex.written ? build(&ex, needed) : nf_fail(err, NF_ERR_NO_MEMORY, "out of memory");
    free(needed);
    free(ex.written);
    Onnx__ModelProto model = ONNX__MODEL_PROTO__INIT;
    Onnx__GraphProto graph = ONNX__GRAPH_PROTO__INIT;
    Onnx__OperatorSetIdProto opset = ONNX__OPERATOR_SET_ID_PROTO__INIT, own = ONNX__OPERATOR_SET_ID_PROTO__INIT;
    Onnx__OperatorSetIdProto *opsets[2] = {&opset, &own};
    uint8_t *bytes = NULL;
    if (st == NF_OK) {
        opset.domain = "";
        opset.has_version = 1, opset.version = ex.opset;
        graph.name = "nodeflow";
        graph.node = ex.nodes, graph.n_node = ex.n_nodes;
        graph.initializer = ex.inits, graph.n_initializer = ex.n_inits;
        graph.input = ex.inputs, graph.n_input = ex.n_inputs;
        graph.output = ex.outputs, graph.n_output = ex.n_outputs;
        /* (the opsets' IR versions; local functions need 8) */
        model.has_ir_version = 1, model.ir_version = ex.opset >= 17 || ex.n_functions ? 8 : 7;
        model.opset_import = opsets, model.n_opset_import = ex.n_functions ? 2 : 1;
        own.domain = (char *)nodeflow_domain;
        own.has_version = 1, own.version = 1;
        for (size_t k = 0; k < ex.n_functions; k++) /* (the body's operators: the model's default opset) */
            ex.functions[k]->opset_import = opsets, ex.functions[k]->n_opset_import = 1;
        model.functions = ex.functions, model.n_functions = ex.n_functions;
        model.producer_name = "nodeflow";
        model.producer_version = NF_VERSION;
        model.graph = &graph;
        size_t size = onnx__model_proto__get_packed_size(&model);
        if (!(bytes = malloc(size ? size : 1)))
            st = nf_fail(err, NF_ERR_NO_MEMORY, "out of memory packing the model");
        else if (onnx__model_proto__pack(&model, bytes) != size)
            st = nf_fail(err, NF_ERR_STATE, "protobuf-c packed another size than it announced");
        else
            st = nf_file_write(path, bytes, size, err);
    }
    free(bytes);
    for (size_t k = 0; k < ex.n_blocks; k++)
        free(ex.blocks[k]);
    free(ex.blocks);
    return st;
}
