/* nodeflow — ONNX model files read into a graph (nodeflow/onnx.h).
 *
 * protobuf-c decodes the file with C generated at build time from the
 * system's onnx.proto (Debian's libonnx-dev); it takes repeated scalars
 * packed or not, and bounds every length by its enclosing message. Here
 * each ONNX value becomes either a node (per-sample values: the first
 * axis of every ONNX tensor that depends on an input is the batch) or a
 * constant known at import (initializers, Constant, and the Shape /
 * Gather / Unsqueeze / Concat chains PyTorch writes around view(), which
 * are folded). Weights go into the nodes' parameters once the graph is
 * laid out. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/internal.h"
#include "engine/names.h"
#include "io/onnx_internal.h"
#include "io/util.h"
#include "nodeflow/onnx.h"
#include "onnx.pb-c.h"

enum { MAX_DIMS = 8 };

/* The domain of the functions nodeflow's export writes for its own node
 * types (onnx_write.c): a node of it is read as that node. */
#define NODEFLOW_DOMAIN "ai.nodeflow"
/* In a constant that holds a shape: the batch size, unknown at import,
 * and its multiples m (the batch size times m: PyTorch's attention
 * writes batch x heads): INT64_MIN + m - 1. As numbers they are far
 * below any size, so code that does not expect them refuses them. */
#define BATCH_DIM INT64_MIN
enum { MAX_BATCH_MULTIPLE = 1 << 30 };

static int64_t batch_times(int64_t m) { return INT64_MIN + (m - 1); }

/* m when v is m times the batch size, else 0. */
static int64_t batch_multiple(int64_t v)
{
    return v >= INT64_MIN && v < INT64_MIN + MAX_BATCH_MULTIPLE ? v - INT64_MIN + 1 : 0;
}
/* The batch_axis of a value without one (whole inputs): past every axis,
 * so that ONNX axis k is per-sample axis k. */
enum { NO_BATCH = 64 };

/* An ONNX value: computed per sample by a node, or a constant. A node's
 * ONNX tensor is its per-sample shape with the batch axis inserted at
 * batch_axis: 0 but where a Transpose moved it (the time-major tensors
 * around LSTM and GRU), or NO_BATCH when the whole ONNX tensor is one
 * sample (whole inputs). A constant of zeros whose shape holds the batch
 * size (ConstantOfShape of a Shape, PyTorch's initial states) is
 * `zeros`, with the batch's place in zeros_batch_axis (dims[] 1 there).
 * A merged batch axis holds outer x batch x inner values (PyTorch's
 * attention reshapes [T, batch, E] to [T, batch heads, d]); per sample
 * it is two axes, outer and inner, at batch_axis. */
typedef struct {
    const char *name;          /* the model's own string */
    nf_node *node;             /* NULL: a constant */
    const char *unusable;      /* an output that cannot be used, and why (LSTM's final states) */
    int batch_axis;
    int merged;                /* the batch axis is merged: per sample [.., outer, inner, ..] there */
    int64_t outer, inner;
    int zeros, zeros_batch_axis;
    int rank;                  /* a constant's shape */
    int64_t dims[MAX_DIMS];
    int64_t count;
    int is_int;                /* int64 values (shapes, axes, indices), else float */
    int wrap_bits;             /* 8 or 16: values of ONNX's uint8 or uint16, whose arithmetic wraps */
    int integer;               /* computed values of an integer type, held as floats */
    int initializer;           /* a graph initializer (a weight of the model, trainable) */
    float *f;
    int64_t *i;
} value;

/* Values for a parameter, copied in once the graph is laid out. */
typedef struct {
    char name[NF_NAME_MAX + 32];
    float *data;               /* owned */
    int64_t count;
} weight;

typedef struct {
    nf_graph *g;
    const char *file;
    int64_t opset;
    value **values;            /* each its own allocation: pointers to them stay valid */
    int n_values, cap_values;
    nf_name_index index;
    weight *weights;
    int n_weights, cap_weights;
    size_t const_bytes;        /* constants held so far: bounded by the memory limit in all */
    const Onnx__NodeProto *at; /* the node being mapped, for errors */
    nf_error *err;
    nf_onnx_options options;
    value views[NF_MAX_INPUTS]; /* node inputs seen with a batch axis (whole inputs) */
    const Onnx__GraphProto *graph;
    size_t node_index;          /* of `at` in the graph */
    unsigned char *done;        /* per node: mapped already, as part of a pattern */
} importer;

static const char *value_name(const void *items, int i) { return ((value *const *)items)[i]->name; }

static nf_status fail(importer *im, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static nf_status fail(importer *im, const char *fmt, ...)
{
    char text[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    if (im->at)
        return nf_fail(im->err, NF_ERR_FORMAT, "%s: node '%s' (%s, opset %lld): %s", im->file,
                       im->at->name && *im->at->name ? im->at->name : "(unnamed)",
                       im->at->op_type ? im->at->op_type : "no operator",
                       (long long)im->opset, text);
    return nf_fail(im->err, NF_ERR_FORMAT, "%s: %s", im->file, text);
}

static nf_status no_memory(importer *im) { return nf_fail(im->err, NF_ERR_NO_MEMORY, "%s: out of memory", im->file); }

/* ---- values ------------------------------------------------------------- */

static value *find(importer *im, const char *name)
{
    int i = name && *name ? nf_name_index_find(&im->index, name) : -1;
    return i < 0 ? NULL : im->values[i];
}

/* A new value named `name` (later definitions of a name are refused). */
static value *define(importer *im, const char *name)
{
    if (!name || !*name || find(im, name)) {
        fail(im, "output '%s' is empty or defined twice", name ? name : "");
        return NULL;
    }
    if (im->n_values == im->cap_values) {
        int cap = im->cap_values ? 2 * im->cap_values : 64;
        value **grown = realloc(im->values, (size_t)cap * sizeof *grown);
        if (!grown) {
            no_memory(im);
            return NULL;
        }
        im->values = grown, im->cap_values = cap;
        im->index.items = grown;
    }
    value *v = calloc(1, sizeof *v);
    if (!v) {
        no_memory(im);
        return NULL;
    }
    v->name = name;
    im->values[im->n_values] = v;
    if (!nf_name_index_add(&im->index, im->n_values)) {
        free(v);
        no_memory(im);
        return NULL;
    }
    im->n_values++;
    return v;
}

/* The node's input i (NULL and an error when it is missing or unknown). */
static int takes_merged(const char *op);

static value *input(importer *im, int i)
{
    if ((size_t)i >= im->at->n_input || !*im->at->input[i]) {
        fail(im, "input %d is missing", i + 1);
        return NULL;
    }
    value *v = find(im, im->at->input[i]);
    if (!v)
        fail(im, "input '%s' is not defined before it is used", im->at->input[i]);
    else if (v->unusable) {
        fail(im, "input '%s' is %s", v->name, v->unusable);
        return NULL;
    } else if (v->merged && !takes_merged(im->at->op_type)) {
        fail(im, "input '%s' has its batch merged with other axes (%lld x batch x %lld)", v->name,
             (long long)v->outer, (long long)v->inner);
        return NULL;
    }
    return v;
}

static int has_input(const importer *im, int i) { return (size_t)i < im->at->n_input && *im->at->input[i]; }

/* Input i as a node, its batch axis anywhere. */
static value *any_input(importer *im, int i)
{
    value *v = input(im, i);
    if (v && !v->node) {
        fail(im, "input '%s' is a constant where nodeflow needs values computed from the model's inputs",
             v->name);
        return NULL;
    }
    return v; /* (a merged batch was checked by input()) */
}

static nf_status shape_of(importer *im, const nf_node *node, nf_shape *s);
static nf_status reshaped(importer *im, nf_node *x, const nf_shape *to, const char *suffix, nf_node **out);

/* The ONNX rank of a node value of per-sample shape s. */
static int onnx_rank(const value *v, const nf_shape *s)
{
    return s->rank + (v->batch_axis != NO_BATCH) - 2 * v->merged;
}

/* The per-sample axis of ONNX axis k (not the batch's). */
static int sample_axis(const value *v, int k)
{
    return k < v->batch_axis ? k : k - 1 + 2 * v->merged;
}

/* Whether two node values hold their batch alike (the same axis, merged
 * the same way). */
static int same_layout(const value *a, const value *b)
{
    return a->batch_axis == b->batch_axis && a->merged == b->merged && a->outer == b->outer && a->inner == b->inner;
}

/* Whether s is one of a NULL-terminated list. */
static int one_of(const char *s, const char *const *list)
{
    for (int k = 0; list[k]; k++)
        if (!strcmp(s, list[k]))
            return 1;
    return 0;
}

/* Operators that take values whose batch axis is merged with others. */
static int takes_merged(const char *op)
{
    static const char *const ops[] = {"Reshape", "Transpose", "MatMul", "Gemm", "Softmax", "Shape", "Add", "Sub", "Mul",
                                      "Div", "Identity", "Dropout", "Cast", "Relu", "Sigmoid", "Tanh", "Erf", "Slice",
                                      "Sqrt", "Exp", "Log", "Abs",
                                      NULL};
    return one_of(op, ops);
}

/* Node input i of a whole-input model seen with its ONNX axis `axis`
 * (of size 1) as nodeflow's batch: that axis reshaped away. */
static value *batch_view(importer *im, value *v, int i, int axis)
{
    nf_shape s, to = {0, {0}};
    if (shape_of(im, v->node, &s) != NF_OK)
        return NULL;
    if (axis >= s.rank || s.dim[axis] != 1) {
        fail(im, "input '%s': with whole inputs, this operator needs axis %d of size 1 as its batch", v->name, axis);
        return NULL;
    }
    for (int k = 0; k < s.rank; k++)
        if (k != axis)
            to.dim[to.rank++] = s.dim[k];
    value *view = &im->views[i % NF_MAX_INPUTS];
    *view = *v;
    view->batch_axis = axis;
    char suffix[24];
    snprintf(suffix, sizeof suffix, "_in%d", i);
    return reshaped(im, v->node, &to, suffix, &view->node) == NF_OK ? view : NULL;
}

/* Input i as a node whose first axis is the batch. */
static value *node_input(importer *im, int i)
{
    value *v = any_input(im, i);
    if (v && v->batch_axis == NO_BATCH)
        return batch_view(im, v, i, 0);
    if (v && v->batch_axis != 0) {
        fail(im, "input '%s' has the batch at axis %d (after a Transpose); this operator needs it first", v->name,
             v->batch_axis);
        return NULL;
    }
    return v;
}

static value *const_input(importer *im, int i)
{
    value *v = input(im, i);
    if (v && v->node) {
        fail(im, "input '%s' must be a constant (an initializer or Constant) to map", v->name);
        return NULL;
    }
    if (v && v->zeros) {
        fail(im, "input '%s' is zeros of a shape that depends on the batch size: it maps only as an initial "
             "state of LSTM or GRU", v->name);
        return NULL;
    }
    return v;
}

/* Defines output `k` as `node`, its ONNX batch axis at batch_axis. With
 * whole inputs, a batch axis (of size 1 there) comes back as a unit axis. */
static nf_status define_output(importer *im, int k, nf_node *node, int batch_axis)
{
    if (!node)
        return nf_graph_status(im->g, im->err);
    if (im->at->n_output > (size_t)k && !*im->at->output[k])
        return NF_OK; /* (an optional output left out: "") */
    if (im->options.whole_inputs && batch_axis != NO_BATCH) {
        nf_shape s, to = {0, {0}};
        nf_status st = shape_of(im, node, &s);
        if (st != NF_OK)
            return st;
        if (s.rank >= NF_MAX_RANK)
            return fail(im, "output %d would have more than %d axes", k + 1, NF_MAX_RANK);
        for (int a = 0; a <= s.rank; a++)
            to.dim[to.rank++] = a == batch_axis ? 1 : s.dim[a < batch_axis ? a : a - 1];
        char suffix[24];
        snprintf(suffix, sizeof suffix, "_out%d", k);
        if ((st = reshaped(im, node, &to, suffix, &node)) != NF_OK)
            return st;
        batch_axis = NO_BATCH;
    }
    value *v = im->at->n_output > (size_t)k ? define(im, im->at->output[k]) : NULL;
    if (!v)
        return im->at->n_output > (size_t)k ? im->err->code : fail(im, "it has no output %d", k + 1);
    v->node = node;
    v->batch_axis = batch_axis;
    return NF_OK;
}

static nf_status define_node(importer *im, nf_node *node) { return define_output(im, 0, node, 0); }

/* Output k as `node`, its batch where `like` has it (merged or not). */
static nf_status define_like(importer *im, int k, nf_node *node, const value *like)
{
    nf_status st = define_output(im, k, node, like->batch_axis);
    value *v = st == NF_OK && im->at->n_output > (size_t)k ? find(im, im->at->output[k]) : NULL;
    if (v && v->node && like->merged) {
        v->merged = 1;
        v->outer = like->outer, v->inner = like->inner;
    }
    return st;
}

/* Output k as `node` with its batch at axis `axis`, merged as outer x
 * batch x inner unless both are 1. */
static nf_status define_merged(importer *im, int k, nf_node *node, int axis, int64_t outer, int64_t inner)
{
    value like = {.batch_axis = axis, .merged = outer != 1 || inner != 1, .outer = outer, .inner = inner};
    return define_like(im, k, node, &like);
}

/* A constant value: count elements of shape dims (float or int64). */
static nf_status make_const(importer *im, value *v, int rank, const int64_t *dims, int is_int)
{
    if (rank > MAX_DIMS)
        return fail(im, "a constant of rank %d (at most %d)", rank, MAX_DIMS);
    /* every dimension bounded, a 0 among them or not (loops walk dims) */
    int64_t count = 1, nonzero = 1, most = (int64_t)(nf_memory_limit() / 8);
    for (int k = 0; k < rank; k++) {
        if (dims[k] < 0 || (dims[k] > 0 && nonzero > most / dims[k]))
            return fail(im, "a constant's dimensions are negative or too large");
        nonzero *= dims[k] ? dims[k] : 1;
        count *= dims[k];
    }
    size_t bytes = (size_t)(count ? count : 1) * (is_int ? sizeof(int64_t) : sizeof(float));
    if ((uint64_t)count > (uint64_t)(nf_memory_limit() / 8) || im->const_bytes + bytes > nf_memory_limit())
        return fail(im, "the model's constants (%lld elements here) are over the memory limit", (long long)count);
    im->const_bytes += bytes;
    v->rank = rank;
    if (rank > 0)
        memcpy(v->dims, dims, (size_t)rank * sizeof *dims);
    v->count = count;
    v->is_int = is_int;
    if (!(is_int ? (void *)(v->i = calloc(1, bytes)) : (void *)(v->f = calloc(1, bytes))))
        return no_memory(im);
    return NF_OK;
}

static double const_at(const value *v, int64_t k) { return v->is_int ? (double)v->i[k] : (double)v->f[k]; }

/* ---- tensors ------------------------------------------------------------ */


/* The bits at which arithmetic of an element type wraps around: 8 and 16
 * for uint8 and uint16 (held as floats, exact); 0 for the others. */
static int wrap_bits_of(int type)
{
    return type == ONNX__TENSOR_PROTO__DATA_TYPE__UINT8 ? 8 : type == ONNX__TENSOR_PROTO__DATA_TYPE__UINT16 ? 16 : 0;
}

/* A TensorProto as a constant: float, double, int32 and int64 elements,
 * from raw_data (little-endian, perhaps unaligned) or the typed field. */
static nf_status read_tensor(importer *im, const Onnx__TensorProto *t, value *v)
{
    const char *what = t->name && *t->name ? t->name : "a tensor";
    if (t->has_data_location && t->data_location == ONNX__TENSOR_PROTO__DATA_LOCATION__EXTERNAL)
        return fail(im, "%s: data in an external file (models over 2 GB) is not supported", what);
    if (t->segment)
        return fail(im, "%s: segmented tensors are not supported", what);
    int type = t->has_data_type ? t->data_type : 0;
    size_t size;
    switch (type) {
    case ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT: size = 4; break;
    case ONNX__TENSOR_PROTO__DATA_TYPE__DOUBLE: size = 8; break;
    case ONNX__TENSOR_PROTO__DATA_TYPE__INT32: size = 4; break;
    case ONNX__TENSOR_PROTO__DATA_TYPE__INT64: size = 8; break;
    case ONNX__TENSOR_PROTO__DATA_TYPE__BOOL:
    case ONNX__TENSOR_PROTO__DATA_TYPE__INT8:
    case ONNX__TENSOR_PROTO__DATA_TYPE__UINT8: size = 1; break;
    case ONNX__TENSOR_PROTO__DATA_TYPE__INT16:
    case ONNX__TENSOR_PROTO__DATA_TYPE__UINT16: size = 2; break;
    default:
        return fail(im, "%s: element type %d is not supported (float, double, bool and integers of up to 64 bits "
                    "but uint32 and uint64 are)", what, type);
    }
    if (t->n_dims > MAX_DIMS)
        return fail(im, "%s: rank %zu (at most %d)", what, t->n_dims, MAX_DIMS);
    int is_int = type != ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT && type != ONNX__TENSOR_PROTO__DATA_TYPE__DOUBLE;
    nf_status st = make_const(im, v, (int)t->n_dims, t->dims, is_int);
    if (st != NF_OK)
        return st;
    v->wrap_bits = wrap_bits_of(type);
    int64_t n = v->count;
    size_t given = t->has_raw_data ? t->raw_data.len
                   : type == ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT  ? t->n_float_data * 4
                   : type == ONNX__TENSOR_PROTO__DATA_TYPE__DOUBLE ? t->n_double_data * 8
                   : type == ONNX__TENSOR_PROTO__DATA_TYPE__INT64  ? t->n_int64_data * 8
                                                                   : t->n_int32_data * size; /* (the small ones too) */
    if ((uint64_t)n > SIZE_MAX / size || given != (size_t)n * size)
        return fail(im, "%s: %lld elements of %zu bytes, but the tensor holds %zu bytes", what, (long long)n, size,
                    given);
    const uint8_t *raw = t->has_raw_data ? t->raw_data.data : NULL;
    for (int64_t k = 0; k < n; k++) {
        double d;
        int64_t j;
        switch (type) {
        case ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT: {
            float f;
            uint32_t bits = raw ? nf_read_le32(raw + 4 * k) : 0;
            if (raw)
                memcpy(&f, &bits, 4);
            else
                f = t->float_data[k];
            d = f, j = 0;
            break;
        }
        case ONNX__TENSOR_PROTO__DATA_TYPE__DOUBLE: {
            uint64_t bits = raw ? nf_read_le64(raw + 8 * k) : 0;
            if (raw)
                memcpy(&d, &bits, 8);
            else
                d = t->double_data[k];
            j = 0;
            break;
        }
        case ONNX__TENSOR_PROTO__DATA_TYPE__INT32:
            j = raw ? (int32_t)nf_read_le32(raw + 4 * k) : t->int32_data[k];
            d = 0;
            break;
        case ONNX__TENSOR_PROTO__DATA_TYPE__BOOL:
        case ONNX__TENSOR_PROTO__DATA_TYPE__UINT8:
            j = raw ? raw[k] : (uint8_t)t->int32_data[k], d = 0;
            break;
        case ONNX__TENSOR_PROTO__DATA_TYPE__INT8:
            j = raw ? (int8_t)raw[k] : (int8_t)t->int32_data[k], d = 0;
            break;
        case ONNX__TENSOR_PROTO__DATA_TYPE__INT16:
            j = raw ? (int16_t)(raw[2 * k] | raw[2 * k + 1] << 8) : (int16_t)t->int32_data[k], d = 0;
            break;
        case ONNX__TENSOR_PROTO__DATA_TYPE__UINT16:
            j = raw ? (uint16_t)(raw[2 * k] | raw[2 * k + 1] << 8) : (uint16_t)t->int32_data[k], d = 0;
            break;
        default:
            j = raw ? (int64_t)nf_read_le64(raw + 8 * k) : t->int64_data[k];
            d = 0;
        }
        if (is_int)
            v->i[k] = j;
        else
            v->f[k] = (float)d;
    }
    return NF_OK;
}

/* ---- attributes ---------------------------------------------------------- */

static const Onnx__AttributeProto *attribute(const importer *im, const char *name)
{
    for (size_t i = 0; i < im->at->n_attribute; i++)
        if (im->at->attribute[i]->name && !strcmp(im->at->attribute[i]->name, name))
            return im->at->attribute[i];
    return NULL;
}

static int64_t attr_int(const importer *im, const char *name, int64_t fallback)
{
    const Onnx__AttributeProto *a = attribute(im, name);
    return a && a->has_i ? a->i : fallback;
}

static double attr_float(const importer *im, const char *name, double fallback)
{
    const Onnx__AttributeProto *a = attribute(im, name);
    return a && a->has_f ? a->f : fallback;
}

/* A list of ints: its length (0 when absent), at most `max` copied. */
/* String attribute `name` as text in buf, or `fallback` when absent; ""
 * when it does not fit or holds a NUL (which matches no caller's choice). */
static const char *attr_str(const importer *im, const char *name, const char *fallback, char *buf, size_t size)
{
    const Onnx__AttributeProto *a = attribute(im, name);
    if (!a || !a->has_s)
        return fallback;
    if (a->s.len >= size || memchr(a->s.data, 0, a->s.len))
        return "";
    memcpy(buf, a->s.data, a->s.len);
    buf[a->s.len] = 0;
    return buf;
}

static int attr_ints(importer *im, const char *name, int64_t *out, int max, nf_status *st)
{
    const Onnx__AttributeProto *a = attribute(im, name);
    *st = NF_OK;
    if (!a)
        return 0;
    if (a->n_ints > (size_t)max) {
        *st = fail(im, "attribute %s has %zu values (at most %d)", name, a->n_ints, max);
        return 0;
    }
    if (a->n_ints > 0)
        memcpy(out, a->ints, a->n_ints * sizeof *out);
    return (int)a->n_ints;
}

/* An attribute this mapping does not read must be absent or at its
 * default, so that nothing is silently ignored. */
static nf_status refuse_attrs(importer *im, const char *const *known)
{
    for (size_t i = 0; i < im->at->n_attribute; i++) {
        const char *name = im->at->attribute[i]->name ? im->at->attribute[i]->name : "";
        int ok = 0;
        for (int k = 0; known[k] && !ok; k++)
            ok = !strcmp(name, known[k]);
        if (!ok)
            return fail(im, "attribute '%s' is not supported", name);
    }
    return NF_OK;
}

/* ---- nodes ---------------------------------------------------------------- */

/* A node name from an ONNX name: letters, digits and '_' kept, anything
 * else '_', a leading '_' when it would start with a digit, and a number
 * appended until it is unused. */
static void node_name(importer *im, const char *onnx, char *out)
{
    char base[NF_NAME_MAX - 8];
    size_t n = 0;
    for (const char *c = onnx ? onnx : ""; *c && n + 2 < sizeof base; c++) {
        int ok = (*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') || *c == '_';
        if (ok || (n > 0 && base[n - 1] != '_'))
            base[n++] = ok ? *c : '_';
    }
    while (n > 1 && base[n - 1] == '_')
        n--;
    base[n] = '\0';
    if (base[0] >= '0' && base[0] <= '9') { /* ("/0/Conv": a name starts with a letter or '_') */
        memmove(base + 1, base, n + 1);
        base[0] = '_';
    }
    if (n == 0 || (n == 1 && base[0] == '_'))
        snprintf(base, sizeof base, "%s", "node");
    snprintf(out, NF_NAME_MAX, "%s", base);
    for (int k = 2; nf_graph_find(im->g, out); k++)
        snprintf(out, NF_NAME_MAX, "%s_%d", base, k);
}

/* Adds a node of `op` named after the ONNX node (or its output). */
static nf_node *add(importer *im, const char *op, int n, nf_node *const *inputs, const char *suffix)
{
    char name[NF_NAME_MAX], onnx[NF_NAME_MAX];
    const char *base = im->at->name && *im->at->name ? im->at->name
                       : im->at->n_output                 ? im->at->output[0]
                                                          : op;
    snprintf(onnx, sizeof onnx, "%s%s", base, suffix ? suffix : "");
    node_name(im, onnx, name);
    return nf_graph_add(im->g, op, name, n, inputs);
}

static nf_status set(importer *im, nf_node *node, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static nf_status set(importer *im, nf_node *node, const char *key, const char *fmt, ...)
{
    char text[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    if (!node)
        return nf_graph_status(im->g, im->err);
    return nf_node_set_attr(im->g, node, key, text) == NF_OK ? NF_OK : nf_graph_status(im->g, im->err);
}

/* A float attribute of ONNX's (float32) as the shortest text that reads
 * back as the same float32: 1e-05, not 9.99999975e-06, so that a value
 * written from a double reads back as that double. */
static nf_status set_float(importer *im, nf_node *node, const char *key, double v)
{
    char text[32];
    for (int digits = 1; digits <= 9; digits++) {
        snprintf(text, sizeof text, "%.*g", digits, v);
        if ((float)strtod(text, NULL) == (float)v)
            break;
    }
    return set(im, node, key, "%s", text);
}

/* Values for parameter `param` of `node`, copied (count floats). */
static nf_status give_weight(importer *im, const nf_node *node, const char *param, const float *data, int64_t count)
{
    if (im->n_weights == im->cap_weights) {
        int cap = im->cap_weights ? 2 * im->cap_weights : 32;
        weight *grown = realloc(im->weights, (size_t)cap * sizeof *grown);
        if (!grown)
            return no_memory(im);
        im->weights = grown, im->cap_weights = cap;
    }
    weight *w = &im->weights[im->n_weights];
    snprintf(w->name, sizeof w->name, "%s.%s", nf_node_name(node), param);
    if (!(w->data = malloc((size_t)(count ? count : 1) * sizeof(float))))
        return no_memory(im);
    memcpy(w->data, data, (size_t)count * sizeof(float));
    w->count = count;
    im->n_weights++;
    return NF_OK;
}

/* The per-sample shape of a node (the graph is validated for it). */
static nf_status shape_of(importer *im, const nf_node *node, nf_shape *s)
{
    nf_status st = nf_graph_validate(im->g, im->err);
    return st == NF_OK ? nf_node_shape(node, s, im->err) : st;
}

/* A node reshaped to per-sample shape `to` (the same node when it has
 * that shape already). */
static nf_status reshaped(importer *im, nf_node *x, const nf_shape *to, const char *suffix, nf_node **out)
{
    nf_shape s;
    nf_status st = shape_of(im, x, &s);
    if (st != NF_OK)
        return st;
    if (s.rank == to->rank && !memcmp(s.dim, to->dim, (size_t)s.rank * sizeof s.dim[0])) {
        *out = x;
        return NF_OK;
    }
    char text[160];
    if (!nf_format_shape(text, sizeof text, to))
        return fail(im, "a shape too long to write");
    *out = add(im, "reshape", 1, &x, suffix);
    return set(im, *out, "shape", "%s", to->rank ? text : "1");
}

/* ---- the operators ------------------------------------------------------- */

/* Attribute "axis" (fallback when absent) of a tensor of rank `rank`,
 * negative counting from the end, as 0 .. last (rank - 1; Flatten's may
 * be rank). */
static nf_status axis_attr(importer *im, int64_t fallback, int rank, int last, int64_t *axis)
{
    *axis = attr_int(im, "axis", fallback);
    if (*axis < -rank || *axis > last)
        return fail(im, "axis %lld is outside a tensor of rank %d", (long long)*axis, rank);
    if (*axis < 0)
        *axis += rank;
    return NF_OK;
}

/* The start of most mappings: only the attributes in `known`, input 0 as
 * a node (its batch axis first unless any_layout) and its per-sample
 * shape. */
static nf_status start_node(importer *im, const char *const *known, int any_layout, value **x, nf_shape *s)
{
    nf_status st = refuse_attrs(im, known);
    if (st != NF_OK)
        return st;
    if (!(*x = any_layout ? any_input(im, 0) : node_input(im, 0)))
        return im->err->code;
    return shape_of(im, (*x)->node, s);
}

typedef nf_status (*mapper)(importer *im);

static nf_status constant_like(importer *im, const value *c, const nf_shape *s, int batch_axis, nf_node **out);

/* Dropout's mask output where it drops nothing: ones of x's shape. */
static nf_status dropout_mask(importer *im, const value *x)
{
    value *mask = define(im, im->at->output[1]);
    if (!mask)
        return im->err->code;
    if (!x->node) {
        nf_status st = make_const(im, mask, x->rank, x->dims, 1);
        for (int64_t k = 0; st == NF_OK && k < mask->count; k++)
            mask->i[k] = 1;
        return st;
    }
    float one_value = 1;
    value one = {.name = "ones", .count = 1, .f = &one_value};
    nf_shape s;
    nf_status st = shape_of(im, x->node, &s);
    one.rank = s.rank; /* (all 1: broadcast to the whole of s) */
    for (int k = 0; k < s.rank; k++)
        one.dims[k] = 1;
    if (st == NF_OK)
        st = constant_like(im, &one, &s, x->batch_axis, &mask->node);
    mask->batch_axis = x->batch_axis;
    return st;
}

static nf_status map_identity(importer *im)
{
    value *x = input(im, 0);
    if (!x)
        return im->err->code;
    if (!strcmp(im->at->op_type, "Dropout")) {
        static const char *const known[] = {"ratio", "seed", "is_test", NULL};
        nf_status st = refuse_attrs(im, known);
        if (st != NF_OK)
            return st;
        if (has_input(im, 2)) { /* training_mode (opset 12): a constant, true only with ratio 0 */
            value *mode = const_input(im, 2), *ratio = mode && has_input(im, 1) ? const_input(im, 1) : NULL;
            if (!mode || (has_input(im, 1) && !ratio))
                return im->err->code;
            if (mode->count != 1 || (const_at(mode, 0) != 0 && (!ratio || ratio->count != 1 ||
                                                                const_at(ratio, 0) != 0)))
                return fail(im, "training_mode = true is supported with ratio 0 only (an identity)");
        }
        if (im->at->n_output > 1 && *im->at->output[1] && (st = dropout_mask(im, x)) != NF_OK)
            return st;
    }
    value *y = im->at->n_output ? define(im, im->at->output[0]) : NULL;
    if (!y)
        return im->err->code;
    if (x->node) {
        y->node = x->node;
        y->batch_axis = x->batch_axis;
        y->merged = x->merged, y->outer = x->outer, y->inner = x->inner;
        return NF_OK;
    }
    nf_status st = make_const(im, y, x->rank, x->dims, x->is_int);
    y->zeros = x->zeros, y->zeros_batch_axis = x->zeros_batch_axis;
    if (st == NF_OK)
        memcpy(x->is_int ? (void *)y->i : (void *)y->f, x->is_int ? (void *)x->i : (void *)x->f,
               (size_t)x->count * (x->is_int ? sizeof(int64_t) : sizeof(float)));
    return st;
}

/* Relu, Sigmoid, Tanh, LeakyRelu, Elu: one node of the same name. */
/* Sqrt, Exp, Log or Abs of a float constant (PyTorch writes an
 * attention's scale as Sqrt of a folded size): a constant. */
static nf_status fold_unary(importer *im, const value *x)
{
    const char *op = im->at->op_type;
    value *y = define(im, im->at->output[0]);
    nf_status st = y ? make_const(im, y, x->rank, x->dims, 0) : im->err->code;
    for (int64_t k = 0; st == NF_OK && k < x->count; k++) { /* (x is float: no multiple of the batch size) */
        double v = x->f[k];
        y->f[k] = (float)(!strcmp(op, "Sqrt") ? sqrt(v) : !strcmp(op, "Exp") ? exp(v) : !strcmp(op, "Log") ? log(v)
                                                                                                        : fabs(v));
    }
    return st;
}

static nf_status map_activation(importer *im)
{
    static const struct {
        const char *onnx, *op, *attr, *onnx_attr;
        double fallback;
    } table[] = {
        {"Relu", "relu", NULL, NULL, 0},          {"Sigmoid", "sigmoid", NULL, NULL, 0},
        {"Tanh", "tanh", NULL, NULL, 0},          {"LeakyRelu", "leaky_relu", "slope", "alpha", 0.01},
        {"Elu", "elu", "alpha", "alpha", 1.0},    {"Erf", "erf", NULL, NULL, 0},
        {"Softplus", "softplus", NULL, NULL, 0}, {"Sqrt", "sqrt", NULL, NULL, 0},
        {"Exp", "exp", NULL, NULL, 0},           {"Log", "log", NULL, NULL, 0},
        {"Abs", "abs", NULL, NULL, 0},
    };
    for (size_t k = 0; k < sizeof table / sizeof table[0]; k++) {
        if (strcmp(im->at->op_type, table[k].onnx))
            continue;
        const char *known[] = {table[k].onnx_attr, NULL};
        nf_status st = refuse_attrs(im, known);
        value *c = st == NF_OK ? input(im, 0) : NULL;
        int foldable = !strcmp(table[k].onnx, "Sqrt") || !strcmp(table[k].onnx, "Exp") ||
                       !strcmp(table[k].onnx, "Log") || !strcmp(table[k].onnx, "Abs");
        if (c && !c->node && !c->zeros && !c->is_int && foldable)
            return fold_unary(im, c);
        value *x = st == NF_OK ? any_input(im, 0) : NULL;
        if (!x)
            return st != NF_OK ? st : im->err->code;
        nf_node *y = add(im, table[k].op, 1, &x->node, NULL);
        if (table[k].attr && (st = set_float(im, y, table[k].attr, attr_float(im, table[k].onnx_attr,
                                                                                   table[k].fallback))) != NF_OK)
            return st;
        return define_like(im, 0, y, x);
    }
    return fail(im, "not an activation");
}

/* Clip by constant bounds: relu (0, none), relu6 (0, 6) or hardtanh.
 * The bounds are attributes before opset 11, optional inputs from it. */
static nf_status map_clip(importer *im)
{
    static const char *const known[] = {"min", "max", NULL};
    nf_status st = refuse_attrs(im, known);
    value *x = st == NF_OK ? any_input(im, 0) : NULL;
    if (!x)
        return st != NF_OK ? st : im->err->code;
    double bound[2] = {-INFINITY, INFINITY};
    for (int k = 0; k < 2; k++) {
        if (im->opset < 11) {
            bound[k] = attr_float(im, k ? "max" : "min", bound[k]);
        } else if (has_input(im, k + 1)) {
            value *b = const_input(im, k + 1);
            if (!b)
                return im->err->code;
            if (b->count != 1)
                return fail(im, "input %d must be a scalar", k + 2);
            bound[k] = const_at(b, 0);
        }
    }
    int relu = bound[0] == 0 && isinf(bound[1]) && bound[1] > 0, relu6 = bound[0] == 0 && bound[1] == 6;
    if (!relu && !relu6 && !(bound[0] >= -1e6 && bound[1] <= 1e6 && bound[0] <= bound[1]))
        return fail(im, "bounds %g and %g: both finite within 1e6 (hardtanh), or 0 and none (relu)", bound[0],
                    bound[1]);
    nf_node *y = add(im, relu ? "relu" : relu6 ? "relu6" : "hardtanh", 1, &x->node, NULL);
    if (!relu && !relu6 && ((st = set_float(im, y, "min_val", bound[0])) != NF_OK ||
                            (st = set_float(im, y, "max_val", bound[1])) != NF_OK))
        return st;
    return define_output(im, 0, y, x->batch_axis);
}

/* Softmax and LogSoftmax: opset 13 normalises over `axis` (default -1);
 * before, over the axes from `axis` (default 1) on, flattened: the same
 * when that is the last axis. */
static nf_status map_softmax(importer *im)
{
    static const char *const known[] = {"axis", NULL};
    value *x;
    nf_shape s;
    nf_status st = start_node(im, known, 1, &x, &s);
    if (st != NF_OK)
        return st;
    int rank = onnx_rank(x, &s), b = x->batch_axis;
    int64_t axis;
    if ((st = axis_attr(im, im->opset >= 13 ? -1 : 1, rank, rank - 1, &axis)) != NF_OK)
        return st;
    if (axis == b)
        return fail(im, "axis %lld normalises over the batch", (long long)axis);
    if (im->opset < 13 && axis != rank - 1)
        return fail(im, "axis %lld flattens the axes after it (opset < 13); only the last axis maps",
                    (long long)axis);
    nf_node *y = add(im, strcmp(im->at->op_type, "Softmax") ? "log_softmax" : "softmax", 1, &x->node, NULL);
    if ((st = set(im, y, "axis", "%d", sample_axis(x, (int)axis))) != NF_OK)
        return st;
    return define_like(im, 0, y, x);
}

/* A 2-D constant as the weight [out, in] of a linear node, times alpha. */
static nf_status linear_weight(importer *im, const nf_node *node, const value *w, int transposed, double alpha)
{
    int64_t rows = w->dims[0], cols = w->dims[1]; /* transposed: [out, in] */
    int64_t out = transposed ? rows : cols, in = transposed ? cols : rows;
    float *data = malloc((size_t)(w->count ? w->count : 1) * sizeof(float));
    if (!data)
        return no_memory(im);
    for (int64_t o = 0; o < out; o++)
        for (int64_t i = 0; i < in; i++)
            data[o * in + i] = (float)(alpha * const_at(w, transposed ? o * cols + i : i * cols + o));
    nf_status st = give_weight(im, node, "weight", data, w->count);
    free(data);
    return st;
}

/* Gemm of a whole 2-D A: A (or A', a permute) times alpha B by a linear
 * node, then beta C added as a constant that broadcasts to [M, N]. */
static nf_status gemm_whole(importer *im, value *a, const value *b, const value *c)
{
    nf_shape s;
    nf_status st = shape_of(im, a->node, &s);
    if (st != NF_OK)
        return st;
    int trans_a = attr_int(im, "transA", 0) != 0, trans_b = attr_int(im, "transB", 0) != 0;
    if (s.rank != 2 || b->rank != 2 || b->dims[trans_b ? 1 : 0] != s.dim[trans_a ? 0 : 1])
        return fail(im, "A and B are not matrices of matching sizes");
    nf_node *x = a->node;
    if (trans_a && (st = set(im, x = add(im, "permute", 1, &a->node, "_t"), "order", "1,0")) != NF_OK)
        return st;
    int64_t n = trans_b ? b->dims[0] : b->dims[1];
    nf_node *y = add(im, "linear", 1, &x, c ? "_mm" : NULL);
    if ((st = set(im, y, "out", "%lld", (long long)n)) != NF_OK ||
        (st = set(im, y, "in", "%lld", (long long)(trans_b ? b->dims[1] : b->dims[0]))) != NF_OK ||
        (st = set(im, y, "bias", "false")) != NF_OK ||
        (st = linear_weight(im, y, b, trans_b, attr_float(im, "alpha", 1.0))) != NF_OK)
        return st;
    double beta = attr_float(im, "beta", 1.0);
    if (!c || beta == 0)
        return define_output(im, 0, y, NO_BATCH);
    value scaled = *c;
    if (!(scaled.f = malloc((size_t)(c->count ? c->count : 1) * sizeof(float))))
        return no_memory(im);
    scaled.is_int = 0, scaled.i = NULL;
    for (int64_t k = 0; k < c->count; k++)
        scaled.f[k] = (float)(beta * const_at(c, k));
    nf_shape ys = {2, {trans_a ? s.dim[1] : s.dim[0], n}};
    nf_node *in[2] = {y, NULL};
    st = constant_like(im, &scaled, &ys, NO_BATCH, &in[1]);
    free(scaled.f);
    return st == NF_OK ? define_output(im, 0, add(im, "add", 2, in, NULL), NO_BATCH) : st;
}

/* Gemm: Y = alpha A B' + beta C with A per sample ([batch, K]) and B a
 * constant: a linear node. C broadcasts to [N] (a scalar, [N] or [1, N]). */
static nf_status map_gemm(importer *im)
{
    static const char *const known[] = {"alpha", "beta", "transA", "transB", NULL};
    nf_status st = refuse_attrs(im, known);
    value *a = st == NF_OK ? any_input(im, 0) : NULL;
    if (a && a->batch_axis != 0 && a->batch_axis != NO_BATCH)
        a = node_input(im, 0); /* (says why not) */
    if (a && a->merged && attr_int(im, "transA", 0))
        return fail(im, "transA = 1 of a batch merged with other values");
    value *b = a ? const_input(im, 1) : NULL;
    value *c = b && has_input(im, 2) ? const_input(im, 2) : NULL;
    if (!b || (has_input(im, 2) && !c))
        return st != NF_OK ? st : im->err->code;
    if (a->batch_axis == NO_BATCH)
        return gemm_whole(im, a, b, c);
    if (attr_int(im, "transA", 0))
        return fail(im, "transA = 1 would transpose the batch axis");
    if (b->rank != 2)
        return fail(im, "B has rank %d, not 2", b->rank);
    int trans_b = attr_int(im, "transB", 0) != 0;
    int64_t n = trans_b ? b->dims[0] : b->dims[1];
    double alpha = attr_float(im, "alpha", 1.0), beta = attr_float(im, "beta", 1.0);
    if (c && (!(c->count == n || c->count == 1) || c->rank > 2 || (c->rank == 2 && c->dims[0] != 1)))
        return fail(im, "C must be a scalar, [%lld] or [1, %lld] (a bias per output)", (long long)n, (long long)n);
    nf_node *y = add(im, "linear", 1, &a->node, NULL);
    if ((st = set(im, y, "out", "%lld", (long long)n)) != NF_OK ||
        (st = set(im, y, "in", "%lld", (long long)(trans_b ? b->dims[1] : b->dims[0]))) != NF_OK ||
        (st = set(im, y, "bias", "%s", c && beta != 0 ? "true" : "false")) != NF_OK)
        return st;
    if ((st = linear_weight(im, y, b, trans_b, alpha)) != NF_OK)
        return st;
    if (c && beta != 0) {
        float *bias = malloc((size_t)n * sizeof(float));
        if (!bias)
            return no_memory(im);
        for (int64_t k = 0; k < n; k++)
            bias[k] = (float)(beta * const_at(c, c->count == 1 ? 0 : k));
        st = give_weight(im, y, "bias", bias, n);
        free(bias);
        if (st != NF_OK)
            return st;
    }
    return define_like(im, 0, y, a);
}

/* A new constant node's shape and n values, from constant `from`: a
 * float initializer's own values (a weight or bias, not a broadcast copy)
 * are trainable, so that fine-tuning trains them. */
static nf_status fill_constant(importer *im, nf_node *node, const nf_shape *shape, const float *data, int64_t n,
                               const value *from)
{
    char text[160];
    nf_status st = !node ? nf_graph_status(im->g, im->err)
                   : nf_format_shape(text, sizeof text, shape) ? set(im, node, "shape", "%s", text)
                                                               : fail(im, "a constant of too many dimensions");
    if (st == NF_OK && from->initializer && !from->is_int && n == from->count)
        st = set(im, node, "trainable", "true");
    return st == NF_OK ? give_weight(im, node, "value", data, n) : st;
}

/* A constant as a constant node of its own shape (floats; a scalar as
 * [1]), named after it. */
static nf_status constant_node(importer *im, const value *v, nf_node **out)
{
    if (v->rank > NF_MAX_RANK)
        return fail(im, "constant '%s' has more than %d axes", v->name, NF_MAX_RANK);
    nf_shape s = {v->rank ? v->rank : 1, {1}};
    for (int k = 0; k < v->rank; k++)
        s.dim[k] = v->dims[k];
    float *data = malloc((size_t)(v->count ? v->count : 1) * sizeof(float));
    if (!data)
        return no_memory(im);
    for (int64_t k = 0; k < v->count; k++)
        data[k] = (float)const_at(v, k);
    char name[NF_NAME_MAX + 8];
    snprintf(name, sizeof name, "%s_const", v->name); /* (named after the value: outputs have no node at hand) */
    node_name(im, name, name);
    *out = nf_graph_add(im->g, "constant", name, 0, NULL);
    nf_status st = fill_constant(im, *out, &s, data, v->count, v);
    free(data);
    return st;
}

/* MatMul of a whole tensor (numpy's rules): by a 2-D constant, a linear
 * node; else a matmul node, a constant operand as a constant node. */
static nf_status matmul_whole(importer *im, value *a, value *b)
{
    nf_status st;
    if (!b->node && b->rank == 2 && !b->zeros) {
        nf_node *y = add(im, "linear", 1, &a->node, NULL);
        if ((st = set(im, y, "out", "%lld", (long long)b->dims[1])) != NF_OK ||
            (st = set(im, y, "in", "%lld", (long long)b->dims[0])) != NF_OK ||
            (st = set(im, y, "bias", "false")) != NF_OK || (st = linear_weight(im, y, b, 0, 1.0)) != NF_OK)
            return st;
        return define_output(im, 0, y, NO_BATCH);
    }
    nf_node *in[2] = {a->node, b->node};
    if (b->node && b->batch_axis != NO_BATCH)
        return fail(im, "B has a batch axis where A has none");
    if (!b->node && (b->zeros || (st = constant_node(im, b, &in[1])) != NF_OK))
        return b->zeros ? fail(im, "B is zeros of the batch size's shape") : st;
    return define_output(im, 0, add(im, "matmul", 2, in, NULL), NO_BATCH);
}

/* MatMul: by a 2-D constant, a linear node without bias; of two
 * per-sample values, a matmul node (batch axes broadcast). */
static long sole_reader(const importer *im, const char *name, const char *op);

/* MatMul(x, W) + b, PyTorch's and nodeflow's linear on [.., in]: when the
 * MatMul's one reader is an Add of a known float constant of `n` values
 * (shaped [n] or [1, .., n], of rank at most the product's: no axis
 * added), that constant, and the Add's index. */
static const value *added_bias(importer *im, int64_t n, int rank, long *plus)
{
    *plus = sole_reader(im, im->at->output[0], "Add");
    const Onnx__NodeProto *add_node = *plus >= 0 ? im->graph->node[*plus] : NULL;
    if (!add_node || add_node->n_input != 2 || add_node->n_output != 1)
        return NULL;
    int other = strcmp(add_node->input[0], im->at->output[0]) ? 0 : 1;
    const value *b = find(im, add_node->input[other]);
    if (!b || b->node || b->zeros || b->is_int || b->count != n || b->rank > rank ||
        !strcmp(add_node->input[0], add_node->input[1]))
        return NULL;
    for (int k = 0; k + 1 < b->rank; k++)
        if (b->dims[k] != 1)
            return NULL;
    return b;
}

static nf_status map_matmul(importer *im)
{
    value *a = any_input(im, 0), *b = a ? input(im, 1) : NULL;
    if (!b)
        return im->err->code;
    if (a->batch_axis == NO_BATCH)
        return matmul_whole(im, a, b);
    nf_shape sa, sb;
    nf_status st = shape_of(im, a->node, &sa);
    if (st != NF_OK)
        return st;
    int rank = onnx_rank(a, &sa);
    if (b->node) { /* (the batch axes must line up, outside the two multiplied) */
        if (!same_layout(a, b))
            return fail(im, "A and B have their batch at different axes (%d and %d) or merged differently",
                        a->batch_axis, b->batch_axis);
        if ((st = shape_of(im, b->node, &sb)) != NF_OK)
            return st;
        if (sa.rank != sb.rank || a->batch_axis >= rank - 2)
            return fail(im, "computed operands of ranks %d and %d, the batch at axis %d (equal ranks, the batch "
                        "before the last two axes, map)", rank, onnx_rank(b, &sb), a->batch_axis);
        nf_node *in[2] = {a->node, b->node};
        return define_like(im, 0, add(im, "matmul", 2, in, NULL), a);
    }
    if (b->rank != 2)
        return fail(im, "a constant right operand of rank %d (2 maps)", b->rank);
    if (a->batch_axis == rank - 1)
        return fail(im, "A has its batch on the last axis");
    long plus;
    const value *bias = a->integer ? NULL : added_bias(im, b->dims[1], rank, &plus);
    nf_node *y = add(im, "linear", 1, &a->node, NULL);
    if ((st = set(im, y, "out", "%lld", (long long)b->dims[1])) != NF_OK ||
        (st = set(im, y, "in", "%lld", (long long)b->dims[0])) != NF_OK ||
        (st = set(im, y, "bias", "%s", bias ? "true" : "false")) != NF_OK ||
        (st = linear_weight(im, y, b, 0, 1.0)) != NF_OK ||
        (bias && (st = give_weight(im, y, "bias", bias->f, bias->count)) != NF_OK))
        return st;
    if (!bias)
        return define_like(im, 0, y, a);
    const Onnx__NodeProto *at = im->at;
    im->done[plus] = 1;
    im->at = im->graph->node[plus]; /* (y is the Add's output) */
    st = define_like(im, 0, y, a);
    im->at = at;
    return st;
}

/* A constant broadcast (numpy rules) to the trailing axes of a node's
 * per-sample shape: a constant node holding it. A leading batch axis of
 * size 1 in the constant is dropped (unless the node has none). */
static nf_status constant_like(importer *im, const value *c, const nf_shape *s, int batch_axis, nf_node **out)
{
    int rank = c->rank;
    const int64_t *dims = c->dims;
    if (rank == s->rank + 1 && batch_axis != NO_BATCH) {
        if (dims[0] != 1)
            return fail(im, "constant '%s' varies along the batch axis", c->name);
        rank--, dims++;
    }
    if (rank > s->rank)
        return fail(im, "constant '%s' has rank %d, more than the other operand's %d per sample", c->name,
                    c->rank, s->rank);
    nf_shape t = {rank, {0}}; /* the trailing axes of s */
    for (int k = 0; k < rank; k++) {
        t.dim[k] = s->dim[s->rank - rank + k];
        if (dims[k] != 1 && dims[k] != t.dim[k])
            return fail(im, "constant '%s' does not broadcast to the other operand", c->name);
    }
    int64_t n = nf_shape_size(&t);
    float *data = malloc((size_t)(n ? n : 1) * sizeof(float));
    if (!data)
        return no_memory(im);
    for (int64_t e = 0; e < n; e++) { /* the constant's element for element e of t */
        int64_t rest = e, at = 0, stride = 1;
        for (int k = rank - 1; k >= 0; k--) {
            int64_t i = rest % t.dim[k];
            rest /= t.dim[k];
            at += (dims[k] == 1 ? 0 : i) * stride;
            stride *= dims[k];
        }
        data[e] = (float)const_at(c, at);
    }
    *out = add(im, "constant", 0, NULL, "_const");
    nf_status st = fill_constant(im, *out, &t, data, n, c);
    free(data);
    return st;
}

/* One element of a folded Add, Sub, Mul or Div of integers, where either
 * may be a multiple of the batch size: kept so for a multiple times or
 * divided exactly by a positive number, refused otherwise. */
static nf_status fold_ints(importer *im, char op, int64_t x, int64_t y, int64_t *out)
{
    int64_t mx = batch_multiple(x), my = batch_multiple(y);
    if (mx || my) {
        int64_t m = mx ? mx : my, k = mx ? y : x;
        if ((mx && my) || (op != '*' && !(op == '/' && mx)) || k < 1 || (op == '/' && m % k) ||
            (op == '*' && m > MAX_BATCH_MULTIPLE / k))
            return fail(im, "arithmetic on the batch size other than multiplying or dividing it exactly");
        *out = batch_times(op == '*' ? m * k : m / k);
        return NF_OK;
    }
    if (op == '/' && (y == 0 || (x == INT64_MIN && y == -1)))
        return fail(im, "an integer division by 0 (or overflowing)");
    int64_t r;
    if ((op == '+' && __builtin_add_overflow(x, y, &r)) || (op == '-' && __builtin_sub_overflow(x, y, &r)) ||
        (op == '*' && __builtin_mul_overflow(x, y, &r)))
        return fail(im, "integer arithmetic that overflows");
    *out = op == '/' ? x / y : r;
    return NF_OK;
}

/* Add, Sub, Mul or Div of two constants (numpy broadcasting), folded:
 * integers when both are (shape arithmetic), else floats. */
static nf_status fold_binary(importer *im, const value *a, const value *b)
{
    const char *name = im->at->op_type;
    char op = !strcmp(name, "Add") ? '+' : !strcmp(name, "Sub") ? '-' : !strcmp(name, "Mul") ? '*' : '/';
    if (a->zeros || b->zeros)
        return fail(im, "zeros of a shape that depends on the batch size");
    int rank = a->rank > b->rank ? a->rank : b->rank;
    int64_t dims[MAX_DIMS];
    for (int k = 0; k < rank; k++) { /* right-aligned */
        int ka = k - (rank - a->rank), kb = k - (rank - b->rank);
        int64_t da = ka >= 0 ? a->dims[ka] : 1, db = kb >= 0 ? b->dims[kb] : 1;
        if (da != db && da != 1 && db != 1)
            return fail(im, "constants of shapes that do not broadcast");
        dims[k] = da == 1 ? db : da;
    }
    int is_int = a->is_int && b->is_int, bits = a->wrap_bits > b->wrap_bits ? a->wrap_bits : b->wrap_bits;
    value *y = define(im, im->at->output[0]);
    nf_status st = y ? make_const(im, y, rank, dims, is_int) : im->err->code;
    if (st == NF_OK)
        y->wrap_bits = is_int ? bits : 0;
    for (int64_t e = 0; st == NF_OK && e < y->count; e++) {
        int64_t rest = e, at[2] = {0, 0}, stride[2] = {1, 1};
        const value *v[2] = {a, b};
        for (int k = rank - 1; k >= 0; k--) {
            int64_t i = rest % dims[k];
            rest /= dims[k];
            for (int j = 0; j < 2; j++) {
                int kv = k - (rank - v[j]->rank);
                if (kv >= 0) {
                    at[j] += (v[j]->dims[kv] == 1 ? 0 : i) * stride[j];
                    stride[j] *= v[j]->dims[kv];
                }
            }
        }
        if (is_int) {
            st = fold_ints(im, op, a->i[at[0]], b->i[at[1]], &y->i[e]);
            if (y->wrap_bits && !batch_multiple(y->i[e])) /* (uint8, uint16: modulo 2^bits) */
                y->i[e] = (int64_t)((uint64_t)y->i[e] & (((uint64_t)1 << y->wrap_bits) - 1));
        } else {
            if ((a->is_int && batch_multiple(a->i[at[0]])) || (b->is_int && batch_multiple(b->i[at[1]])))
                return fail(im, "float arithmetic on the batch size");
            double x = const_at(a, at[0]), z = const_at(b, at[1]);
            y->f[e] = (float)(op == '+' ? x + z : op == '-' ? x - z : op == '*' ? x * z : x / z);
        }
    }
    return st;
}

/* Cast: of a constant, its values converted (integers kept as they are,
 * the batch size's multiples too; floats to integers truncated); of
 * computed floats to a float type, nothing to do. */
static nf_status map_cast(importer *im)
{
    static const char *const known[] = {"to", "saturate", NULL};
    nf_status st = refuse_attrs(im, known);
    value *x = st == NF_OK ? input(im, 0) : NULL;
    if (!x)
        return st != NF_OK ? st : im->err->code;
    int64_t to = attr_int(im, "to", 0);
    int to_float = to == ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT || to == ONNX__TENSOR_PROTO__DATA_TYPE__DOUBLE;
    int to_int = to == ONNX__TENSOR_PROTO__DATA_TYPE__INT64 || to == ONNX__TENSOR_PROTO__DATA_TYPE__INT32;
    if (!to_float && !to_int)
        return fail(im, "to = %lld: casts to float, double, int32 and int64 map", (long long)to);
    if (x->node) {
        if (!to_float)
            return fail(im, "a cast of computed values to integers (nodeflow computes in float)");
        return map_identity(im);
    }
    if (x->zeros)
        return fail(im, "zeros of a shape that depends on the batch size");
    value *y = define(im, im->at->output[0]);
    if (!y || (st = make_const(im, y, x->rank, x->dims, to_int)) != NF_OK)
        return y ? st : im->err->code;
    for (int64_t k = 0; k < x->count; k++) {
        if (to_int && x->is_int) {
            y->i[k] = x->i[k];
        } else if (to_int) {
            if (!(fabsf(x->f[k]) < 9.2e18f))
                return fail(im, "a value (%g) that no integer holds", (double)x->f[k]);
            y->i[k] = (int64_t)x->f[k];
        } else {
            if (x->is_int && batch_multiple(x->i[k]))
                return fail(im, "the batch size as a float");
            y->f[k] = (float)const_at(x, k);
        }
    }
    return NF_OK;
}

/* Add, Sub, Mul, Div. Two per-sample operands of the same shape, or one
 * and a constant that broadcasts to it; of two constants, folded. */
/* y, or for uint8 and uint16 operands y mod 2^bits: ONNX's unsigned
 * arithmetic wraps around. */
static nf_status define_wrapped(importer *im, nf_node *y, const value *like, int bits)
{
    nf_status st;
    if (bits && y) {
        nf_node *wrap = add(im, "mod", 1, &y, "_wrap");
        if ((st = set(im, wrap, "divisor", "%d", 1 << bits)) != NF_OK)
            return st;
        y = wrap;
    }
    return define_like(im, 0, y, like);
}

/* c OP x for a constant c on the left of Sub or Div: c as a constant node
 * of x's whole per-sample shape (numpy's broadcasting), then the node. */
static nf_status constant_first(importer *im, const char *nf_op, const value *c, const value *x, int bits)
{
    nf_shape s;
    nf_status st = shape_of(im, x->node, &s);
    if (st != NF_OK)
        return st;
    int plain_first = x->batch_axis == 0 && !x->merged, rank = c->rank, lead = 0;
    if (!plain_first && x->batch_axis != NO_BATCH)
        return fail(im, "a constant left operand needs the other's batch first");
    if (plain_first && rank == s.rank + 1) { /* (its batch axis must be 1) */
        if (c->dims[0] != 1)
            return fail(im, "constant '%s' varies along the batch axis", c->name);
        lead = 1, rank--;
    }
    if (rank > s.rank)
        return fail(im, "constant '%s' has more axes than the other operand", c->name);
    value whole = *c; /* c with leading 1s up to x's rank: a constant node of x's shape */
    whole.rank = s.rank;
    for (int k = 0; k < s.rank; k++)
        whole.dims[k] = k < s.rank - rank ? 1 : c->dims[lead + k - (s.rank - rank)];
    for (int k = 0; k < s.rank; k++)
        if (whole.dims[k] != 1 && whole.dims[k] != s.dim[k])
            return fail(im, "constant '%s' does not broadcast to the other operand", c->name);
    nf_node *in[2] = {NULL, x->node};
    if ((st = constant_like(im, &whole, &s, NO_BATCH, &in[0])) != NF_OK)
        return st;
    return define_wrapped(im, add(im, nf_op, 2, in, NULL), x, bits);
}

/* 1 / x: a constant 1 divided by x. */
static nf_status reciprocal(importer *im, const value *x)
{
    float one_value = 1;
    value one = {.name = "1", .count = 1, .f = &one_value};
    return constant_first(im, "div", &one, x, 0);
}

/* Pow by a constant scalar exponent: 1 (x itself), 2 (x times x), -1 (1
 * divided by x); other exponents are refused (no power node). The layer
 * norm's Pow is part of its pattern (map_reduce_mean). */
static nf_status map_pow(importer *im)
{
    static const char *const known[] = {NULL};
    value *x, *e;
    nf_shape s;
    nf_status st = start_node(im, known, 1, &x, &s);
    if (st != NF_OK)
        return st;
    if (!(e = const_input(im, 1)))
        return im->err->code;
    double p = e->count == 1 && e->rank <= onnx_rank(x, &s) ? const_at(e, 0) : NAN;
    if (p == 1)
        return define_like(im, 0, x->node, x);
    if (p == -1 && !x->integer)
        return reciprocal(im, x);
    if (p != 2)
        return fail(im, "Pow maps with a constant scalar exponent of 1, 2 or -1 (-1 of floats), of rank at most "
                    "the base's");
    nf_node *in[2] = {x->node, x->node};
    return define_like(im, 0, add(im, "mul", 2, in, NULL), x);
}

/* Neg (a scale by -1) and Reciprocal (1 / x, a constant 1 divided). */
static nf_status map_neg_reciprocal(importer *im)
{
    static const char *const known[] = {NULL};
    value *x;
    nf_shape s;
    nf_status st = start_node(im, known, 1, &x, &s);
    if (st != NF_OK)
        return st;
    if (!strcmp(im->at->op_type, "Reciprocal")) {
        if (x->integer)
            return fail(im, "Reciprocal of integer values is not supported");
        return reciprocal(im, x);
    }
    nf_node *y = add(im, "scale", 1, &x->node, NULL);
    return (st = set(im, y, "factor", "-1")) == NF_OK ? define_like(im, 0, y, x) : st;
}

static nf_status map_binary(importer *im)
{
    const char *op = im->at->op_type;
    value *a = input(im, 0), *b = a ? input(im, 1) : NULL;
    if (!b)
        return im->err->code;
    if (!a->node && !b->node)
        return fold_binary(im, a, b);
    int commutes = !strcmp(op, "Add") || !strcmp(op, "Mul");
    int bits = a->wrap_bits > b->wrap_bits ? a->wrap_bits : b->wrap_bits;
    if ((a->integer || b->integer) && !strcmp(op, "Div"))
        return fail(im, "Div of integer values (ONNX's division truncates them) is not supported");
    if (bits > 8 && !strcmp(op, "Mul")) /* (products of uint8 stay below 2^16) */
        return fail(im, "Mul of uint%d values can pass 2^24, past which floats do not count exactly", bits);
    const char *nf_op = !strcmp(op, "Add") ? "add" : !strcmp(op, "Sub") ? "sub" : !strcmp(op, "Mul") ? "mul" : "div";
    if (!a->node && !commutes) /* c - x, c / x */
        return constant_first(im, nf_op, a, b, bits);
    if (!a->node) {
        value *t = a;
        a = b, b = t;
    }
    nf_status st;
    if (!b->node && b->zeros)
        return fail(im, "zeros of a shape that depends on the batch size");
    if (!b->node && b->count == 1 && (!strcmp(op, "Mul") || !strcmp(op, "Div"))) {
        double k = const_at(b, 0);
        if (!strcmp(op, "Div") && k == 0)
            return fail(im, "division by a constant 0");
        nf_node *y = add(im, "scale", 1, &a->node, NULL);
        if ((st = set(im, y, "factor", "%.17g", !strcmp(op, "Div") ? 1.0 / k : k)) != NF_OK)
            return st;
        return define_wrapped(im, y, a, bits);
    }
    nf_node *other = b->node;
    if (other && !same_layout(a, b))
        return fail(im, "the operands have their batch at different axes (%d and %d) or merged differently",
                    a->batch_axis, b->batch_axis);
    if (other) { /* (ONNX broadcasts over the batch axis too: only equal shapes agree) */
        nf_shape sa, sb;
        if ((st = shape_of(im, a->node, &sa)) != NF_OK || (st = shape_of(im, other, &sb)) != NF_OK)
            return st;
        if (sa.rank != sb.rank || memcmp(sa.dim, sb.dim, (size_t)sa.rank * sizeof sa.dim[0]))
            return fail(im, "computed operands of different shapes (broadcasting between them is not supported)");
    }
    if (!other) {
        nf_shape s;
        if ((st = shape_of(im, a->node, &s)) != NF_OK)
            return st;
        /* the constant lines up with the trailing axes: those after the batch's, or all with a plain batch
         * first (a leading 1 of the constant stands for it) */
        int plain_first = a->batch_axis == 0 && !a->merged;
        if (!plain_first && a->batch_axis != NO_BATCH && b->rank > onnx_rank(a, &s) - 1 - a->batch_axis)
            return fail(im, "a constant operand that reaches the batch axis (%d%s)", a->batch_axis,
                        a->merged ? ", merged with others" : ", not first");
        if ((st = constant_like(im, b, &s, plain_first ? 0 : NO_BATCH, &other)) != NF_OK)
            return st;
    }
    nf_node *in[2] = {a->node, other};
    return define_wrapped(im, add(im, nf_op, 2, in, NULL), a, bits);
}

/* Mod by a constant scalar: the mod node, fmod 0 (the divisor's sign:
 * integers' floor remainder) or 1 (C's fmod, which ONNX requires of
 * floats). */
static nf_status map_mod(importer *im)
{
    static const char *const known[] = {"fmod", NULL};
    value *x, *d;
    nf_shape s;
    nf_status st = start_node(im, known, 1, &x, &s);
    if (st != NF_OK)
        return st;
    if (!(d = const_input(im, 1)))
        return im->err->code;
    int64_t c_fmod = attr_int(im, "fmod", 0);
    if (d->count != 1 || d->rank > onnx_rank(x, &s) || const_at(d, 0) == 0 || !isfinite(const_at(d, 0)) ||
        (c_fmod != 0 && c_fmod != 1))
        return fail(im, "Mod maps with a constant scalar divisor other than 0 (of rank at most the dividend's), "
                    "and fmod 0 or 1");
    nf_node *y = add(im, "mod", 1, &x->node, NULL);
    if ((st = set(im, y, "divisor", "%.17g", const_at(d, 0))) != NF_OK ||
        (st = set(im, y, "fmod", "%s", c_fmod ? "true" : "false")) != NF_OK)
        return st;
    return define_like(im, 0, y, x);
}

/* Pad (constant, reflect, edge): a pad node per padded axis, then a
 * slice per axis with a negative pad (ONNX pads first, then crops). The
 * pads come as an attribute (opsets before 11) or a constant input, and
 * must leave the batch axis alone. */
static nf_status map_pad(importer *im)
{
    static const char *const known[] = {"mode", "pads", "value", NULL};
    value *x;
    nf_shape s;
    nf_status st = start_node(im, known, 1, &x, &s);
    if (st != NF_OK)
        return st;
    if (x->merged)
        return fail(im, "the input's batch axis is merged with others");
    static const char *const modes[] = {"constant", "reflect", "edge", NULL};
    char buf[16];
    const char *mode = attr_str(im, "mode", "constant", buf, sizeof buf);
    if (!one_of(mode, modes))
        return fail(im, "mode '%s' is not one of constant, reflect, edge", mode);
    int rank = onnx_rank(x, &s), n = 0;
    int64_t pads[2 * MAX_DIMS];
    double fill = attr_float(im, "value", 0);
    if (im->opset < 11) {
        n = attr_ints(im, "pads", pads, 2 * MAX_DIMS, &st);
        if (st != NF_OK)
            return st;
    } else {
        value *p = const_input(im, 1), *c = NULL;
        if (!p || (has_input(im, 2) && !(c = const_input(im, 2))))
            return im->err->code;
        if (!p->is_int || p->rank != 1 || p->count > 2 * MAX_DIMS || (c && c->count != 1))
            return fail(im, "pads must be integers and constant_value one value");
        n = (int)p->count;
        memcpy(pads, p->i, (size_t)n * sizeof *pads);
        fill = c ? const_at(c, 0) : 0;
    }
    if (n != 2 * rank || !isfinite(fill) || fabs(fill) > 1e30)
        return fail(im, "pads needs %d values (begin and end of %d axes) and the value must be finite", 2 * rank,
                    rank);
    nf_node *y = x->node;
    for (int pass = 0; pass < 2; pass++) /* the padding, then the crops */
        for (int k = 0; k < rank; k++) {
            int64_t begin = pads[k], end = pads[k + rank];
            int64_t grow_begin = begin > 0 ? begin : 0, grow_end = end > 0 ? end : 0;
            if (pass == 0 ? !grow_begin && !grow_end : begin >= 0 && end >= 0)
                continue;
            if (k == x->batch_axis)
                return fail(im, "pads on the batch axis (%d) are not supported", k);
            if (begin > ((int64_t)1 << 31) || end > ((int64_t)1 << 31) || begin < -((int64_t)1 << 31) ||
                end < -((int64_t)1 << 31))
                return fail(im, "pads of axis %d are out of range", k);
            int axis = sample_axis(x, k);
            nf_shape now;
            if ((st = shape_of(im, y, &now)) != NF_OK)
                return st;
            nf_node *next = add(im, pass == 0 ? "pad" : "slice", 1, &y, pass == 0 ? "_pad" : "_crop");
            if (pass == 0 && ((st = set(im, next, "axis", "%d", axis)) != NF_OK ||
                              (st = set(im, next, "before", "%lld", (long long)grow_begin)) != NF_OK ||
                              (st = set(im, next, "after", "%lld", (long long)grow_end)) != NF_OK ||
                              (st = set(im, next, "mode", "%s", mode)) != NF_OK ||
                              (st = set_float(im, next, "value", fill)) != NF_OK))
                return st;
            int64_t from = begin < 0 ? -begin : 0, to = now.dim[axis] - (end < 0 ? -end : 0);
            if (pass == 1 && from >= to)
                return fail(im, "the negative pads of axis %d remove all of it", k);
            if (pass == 1 && ((st = set(im, next, "axis", "%d", axis)) != NF_OK ||
                              (st = set(im, next, "start", "%lld", (long long)from)) != NF_OK ||
                              (st = set(im, next, "end", "%lld", (long long)to)) != NF_OK))
                return st;
            y = next;
        }
    return define_like(im, 0, y, x); /* (nothing padded: x itself) */
}

/* Kernel, strides and dilations of a Conv or pool over n spatial axes:
 * 1 to 65536 each. */
static nf_status check_window(importer *im, int n, const int64_t *kernel, const int64_t *stride,
                              const int64_t *dilation)
{
    for (int k = 0; k < n; k++)
        if (kernel[k] < 1 || kernel[k] > 65536 || stride[k] < 1 || stride[k] > 65536 || dilation[k] < 1 ||
            dilation[k] > 65536)
            return fail(im, "kernel_shape, strides and dilations must be 1 to 65536");
    return NF_OK;
}

/* The pads of a Conv or pool over the n spatial axes of per-sample shape
 * s ([C, spatial...]) as ONNX orders them: the n begins, then the n ends
 * (auto_pad SAME_* computed from the input size). */
static nf_status spatial_pads(importer *im, int n, const nf_shape *s, const int64_t *kernel, const int64_t *stride,
                              const int64_t *dilation, int64_t *pads)
{
    char buf[16];
    const char *mode = attr_str(im, "auto_pad", "NOTSET", buf, sizeof buf);
    memset(pads, 0, 2 * (size_t)n * sizeof *pads);
    if (!strcmp(mode, "NOTSET")) {
        nf_status st;
        int given = attr_ints(im, "pads", pads, 2 * n, &st);
        if (st != NF_OK)
            return st;
        if (given != 0 && given != 2 * n)
            return fail(im, "pads has %d values (%d for %d spatial axes)", given, 2 * n, n);
        for (int k = 0; k < 2 * n; k++)
            if (pads[k] < 0 || pads[k] > 65536)
                return fail(im, "pads must be 0 to 65536");
        return NF_OK;
    }
    if (!strcmp(mode, "VALID"))
        return NF_OK;
    if (strcmp(mode, "SAME_UPPER") && strcmp(mode, "SAME_LOWER"))
        return fail(im, "auto_pad '%s' is not one of NOTSET, VALID, SAME_UPPER, SAME_LOWER", mode);
    for (int k = 0; k < n; k++) { /* output = ceil(in / stride) */
        int64_t in = s->dim[1 + k], out = (in + stride[k] - 1) / stride[k];
        int64_t need = (out - 1) * stride[k] + (kernel[k] - 1) * dilation[k] + 1 - in;
        if (need < 0)
            need = 0;
        int64_t small = need / 2, large = need - small;
        int upper = !strcmp(mode, "SAME_UPPER");
        pads[k] = upper ? small : large, pads[k + n] = upper ? large : small;
    }
    return NF_OK;
}

/* Conv, 1-D ([batch, C, L]) or 2-D ([batch, C, H, W]): a conv1d or conv2d
 * node with the weight [O, C / group, k...] as it is and the bias B. */
static nf_status map_conv(importer *im)
{
    static const char *const known[] = {"auto_pad", "dilations", "group", "kernel_shape", "pads", "strides", NULL};
    value *x, *w, *b = NULL;
    nf_shape s;
    nf_status st = start_node(im, known, 0, &x, &s);
    if (st != NF_OK)
        return st;
    if (!(w = const_input(im, 1)) || (has_input(im, 2) && !(b = const_input(im, 2))))
        return im->err->code;
    int n = s.rank - 1;
    if ((n != 1 && n != 2) || w->rank != n + 2)
        return fail(im, "only 1-D and 2-D convolutions map (input [N, C, L] or [N, C, H, W], a weight of rank 3 or "
                    "4)");
    int64_t kernel[2] = {w->dims[2], n == 2 ? w->dims[3] : 1}, stride[2] = {1, 1}, dilation[2] = {1, 1}, given[2];
    int count = attr_ints(im, "kernel_shape", given, 2, &st);
    if (st == NF_OK && count && (count != n || given[0] != kernel[0] || (n == 2 && given[1] != kernel[1])))
        return fail(im, "kernel_shape does not match the weight");
    if (st == NF_OK && (count = attr_ints(im, "strides", stride, 2, &st)) != 0 && count != n)
        return fail(im, "strides needs %d values", n);
    if (st == NF_OK && (count = attr_ints(im, "dilations", dilation, 2, &st)) != 0 && count != n)
        return fail(im, "dilations needs %d values", n);
    int64_t pads[4];
    if (st != NF_OK || (st = check_window(im, n, kernel, stride, dilation)) != NF_OK ||
        (st = spatial_pads(im, n, &s, kernel, stride, dilation, pads)) != NF_OK)
        return st;
    int64_t group = attr_int(im, "group", 1);
    if (group < 1 || group > 65536 || w->dims[0] < 1 || w->dims[1] < 1 || w->dims[1] > 65536)
        return fail(im, "group %lld or the weight's shape is out of range", (long long)group);
    if (group < 1 || s.dim[0] % group || w->dims[1] * group != s.dim[0])
        return fail(im, "the weight's %lld input channels x %lld groups are not the input's %lld channels",
                    (long long)w->dims[1], (long long)group, (long long)s.dim[0]);
    if (b && b->count != w->dims[0])
        return fail(im, "B has %lld values for %lld output channels", (long long)b->count, (long long)w->dims[0]);
    nf_node *y = add(im, n == 1 ? "conv1d" : "conv2d", 1, &x->node, NULL);
    if ((st = set(im, y, "out", "%lld", (long long)w->dims[0])) != NF_OK ||
        (st = set(im, y, "groups", "%lld", (long long)group)) != NF_OK ||
        (st = set(im, y, "bias", "%s", b ? "true" : "false")) != NF_OK)
        return st;
    if (n == 1) { /* (pads: begin, end) */
        if ((st = set(im, y, "kernel", "%lld", (long long)kernel[0])) != NF_OK ||
            (st = set(im, y, "stride", "%lld", (long long)stride[0])) != NF_OK ||
            (st = set(im, y, "dilation", "%lld", (long long)dilation[0])) != NF_OK ||
            (st = set(im, y, "pad_left", "%lld", (long long)pads[0])) != NF_OK ||
            (st = set(im, y, "pad_right", "%lld", (long long)pads[1])) != NF_OK)
            return st;
    } else if ((st = set(im, y, "kernel", "%lldx%lld", (long long)kernel[0], (long long)kernel[1])) != NF_OK ||
               (st = set(im, y, "stride", "%lldx%lld", (long long)stride[0], (long long)stride[1])) != NF_OK ||
               (st = set(im, y, "dilation", "%lldx%lld", (long long)dilation[0], (long long)dilation[1])) != NF_OK ||
               (st = set(im, y, "pad_top", "%lld", (long long)pads[0])) != NF_OK ||
               (st = set(im, y, "pad_left", "%lld", (long long)pads[1])) != NF_OK ||
               (st = set(im, y, "pad_bottom", "%lld", (long long)pads[2])) != NF_OK ||
               (st = set(im, y, "pad_right", "%lld", (long long)pads[3])) != NF_OK) {
        return st;
    }
    if (w->is_int || (b && b->is_int))
        return fail(im, "integer weights");
    if ((st = give_weight(im, y, "weight", w->f, w->count)) != NF_OK ||
        (b && (st = give_weight(im, y, "bias", b->f, b->count)) != NF_OK))
        return st;
    return define_node(im, y);
}

/* ConvTranspose's pads of n spatial axes: as given, or from output_shape
 * or auto_pad SAME_* (output = input x stride) through the total
 * padding stride (in - 1) + output_padding + (k - 1) d + 1 - out, split
 * as ONNX's reference does (SAME_UPPER puts the odd one at the end); an
 * output longer than that (a negative total) grows output_padding. */
static nf_status transpose_pads(importer *im, int n, const nf_shape *s, const int64_t *kernel, const int64_t *stride,
                                const int64_t *dilation, int64_t *out_pad, int64_t *pads)
{
    int64_t shape[2];
    nf_status st = NF_OK;
    int given = attr_ints(im, "output_shape", shape, 2, &st);
    char buf[16];
    const char *mode = attr_str(im, "auto_pad", "NOTSET", buf, sizeof buf);
    if (st != NF_OK)
        return st;
    if (!given && (!strcmp(mode, "NOTSET") || !strcmp(mode, "VALID"))) {
        int count = attr_ints(im, "pads", pads, 4, &st);
        if (st == NF_OK && count && count != 2 * n)
            return fail(im, "pads needs %d values", 2 * n);
        for (int k = 0; k < 2 * n; k++)
            if (!count || !strcmp(mode, "VALID"))
                pads[k] = 0;
            else if (pads[k] < 0 || pads[k] > 65536)
                return fail(im, "pads must be 0 to 65536");
        return st;
    }
    if (given && given != n)
        return fail(im, "output_shape needs %d values", n);
    if (!given && strcmp(mode, "SAME_UPPER") && strcmp(mode, "SAME_LOWER"))
        return fail(im, "auto_pad '%s' is not one of NOTSET, VALID, SAME_UPPER, SAME_LOWER", mode);
    for (int k = 0; k < n; k++) {
        int64_t in = s->dim[1 + k], want = given ? shape[k] : in * stride[k];
        if (out_pad[k] < 0 || out_pad[k] > 65536 || want < 1 || want > ((int64_t)1 << 40))
            return fail(im, "output_padding or output_shape of axis %d is out of range", k);
        /* (in < 2^31, stride and kernel <= 65536, dilation <= 65536: no overflow) */
        int64_t total = stride[k] * (in - 1) + out_pad[k] + (kernel[k] - 1) * dilation[k] + 1 - want;
        if (total < -65536 || total > 131072)
            return fail(im, "output_shape %lld of axis %d does not fit the input, strides and kernel", (long long)want,
                        k);
        if (total < 0) { /* (conv_transpose2d checks that it stays below the stride or the dilation) */
            out_pad[k] -= total;
            total = 0;
        }
        int lower = !given && !strcmp(mode, "SAME_LOWER");
        pads[k] = lower ? total - total / 2 : total / 2, pads[k + n] = total - pads[k];
    }
    return NF_OK;
}

/* ConvTranspose, 2-D (or 1-D as 2-D of height 1): conv_transpose2d with
 * the padding of the smaller side of each axis, then a slice per axis
 * where the other side takes more; W [C, O / group, k...] as it is. */
static nf_status map_conv_transpose(importer *im)
{
    static const char *const known[] = {"auto_pad", "dilations", "group", "kernel_shape", "output_padding",
                                        "output_shape", "pads", "strides", NULL};
    value *x, *w, *b = NULL;
    nf_shape s;
    nf_status st = start_node(im, known, 0, &x, &s);
    if (st != NF_OK)
        return st;
    if (!(w = const_input(im, 1)) || (has_input(im, 2) && !(b = const_input(im, 2))))
        return im->err->code;
    int n = s.rank - 1;
    if ((n != 1 && n != 2) || w->rank != n + 2 || w->is_int || (b && b->is_int))
        return fail(im, "only 1-D and 2-D transposed convolutions of float weights map");
    int64_t kernel[2] = {w->dims[2], n == 2 ? w->dims[3] : 1}, stride[2] = {1, 1}, dilation[2] = {1, 1};
    int64_t out_pad[2] = {0, 0}, given[2], pads[4];
    int count = attr_ints(im, "kernel_shape", given, 2, &st);
    if (st == NF_OK && count && (count != n || given[0] != kernel[0] || (n == 2 && given[1] != kernel[1])))
        return fail(im, "kernel_shape does not match the weight");
    if (st == NF_OK && (count = attr_ints(im, "strides", stride, 2, &st)) != 0 && count != n)
        return fail(im, "strides needs %d values", n);
    if (st == NF_OK && (count = attr_ints(im, "dilations", dilation, 2, &st)) != 0 && count != n)
        return fail(im, "dilations needs %d values", n);
    if (st == NF_OK && (count = attr_ints(im, "output_padding", out_pad, 2, &st)) != 0 && count != n)
        return fail(im, "output_padding needs %d values", n);
    if (st != NF_OK || (st = check_window(im, n, kernel, stride, dilation)) != NF_OK ||
        (st = transpose_pads(im, n, &s, kernel, stride, dilation, out_pad, pads)) != NF_OK)
        return st;
    int64_t group = attr_int(im, "group", 1), c = s.dim[0];
    if (group < 1 || group > 65536 || c % group || w->dims[0] != c || w->dims[1] < 1 || w->dims[1] > 65536 ||
        out_pad[0] < 0 || out_pad[0] > 65536 || out_pad[1] < 0 || out_pad[1] > 65536)
        return fail(im, "group %lld, output_padding or the weight's shape does not fit the input's %lld channels",
                    (long long)group, (long long)c);
    int64_t outs = w->dims[1] * group;
    if (b && b->count != outs)
        return fail(im, "B has %lld values for %lld output channels", (long long)b->count, (long long)outs);
    nf_node *in = x->node;
    if (n == 1) { /* [C, L] as [C, 1, L] */
        nf_shape plane = {3, {c, 1, s.dim[1]}};
        if ((st = reshaped(im, in, &plane, "_plane", &in)) != NF_OK)
            return st;
    }
    int64_t pad_h = n == 2 ? (pads[0] < pads[2] ? pads[0] : pads[2]) : 0;
    int64_t pad_w = n == 2 ? (pads[1] < pads[3] ? pads[1] : pads[3]) : (pads[0] < pads[1] ? pads[0] : pads[1]);
    int64_t kh = n == 2 ? kernel[0] : 1, kw = kernel[n - 1], sh = n == 2 ? stride[0] : 1, sw = stride[n - 1];
    int64_t dh = n == 2 ? dilation[0] : 1, dw = dilation[n - 1], oph = n == 2 ? out_pad[0] : 0, opw = out_pad[n - 1];
    nf_node *y = add(im, "conv_transpose2d", 1, &in, NULL);
    if ((st = set(im, y, "out", "%lld", (long long)outs)) != NF_OK ||
        (st = set(im, y, "kernel", "%lldx%lld", (long long)kh, (long long)kw)) != NF_OK ||
        (st = set(im, y, "stride", "%lldx%lld", (long long)sh, (long long)sw)) != NF_OK ||
        (st = set(im, y, "dilation", "%lldx%lld", (long long)dh, (long long)dw)) != NF_OK ||
        (st = set(im, y, "padding", "%lldx%lld", (long long)pad_h, (long long)pad_w)) != NF_OK ||
        (st = set(im, y, "output_padding", "%lldx%lld", (long long)oph, (long long)opw)) != NF_OK ||
        (st = set(im, y, "groups", "%lld", (long long)group)) != NF_OK ||
        (st = set(im, y, "bias", "%s", b ? "true" : "false")) != NF_OK ||
        (st = give_weight(im, y, "weight", w->f, w->count)) != NF_OK ||
        (b && (st = give_weight(im, y, "bias", b->f, b->count)) != NF_OK))
        return st;
    nf_shape full;
    if ((st = shape_of(im, y, &full)) != NF_OK)
        return st;
    for (int k = 0; k < n; k++) { /* the larger side of an axis: a slice */
        int64_t begin = pads[k], end = pads[k + n], least = begin < end ? begin : end;
        if (begin == end)
            continue;
        int axis = n == 2 ? 1 + k : 2;
        nf_node *cut = add(im, "slice", 1, &y, "_side");
        if ((st = set(im, cut, "axis", "%d", axis)) != NF_OK ||
            (st = set(im, cut, "start", "%lld", (long long)(begin - least))) != NF_OK ||
            (st = set(im, cut, "end", "%lld", (long long)(full.dim[axis] - (end - least)))) != NF_OK)
            return st;
        y = cut;
    }
    if (n == 1) {
        nf_shape line;
        if ((st = shape_of(im, y, &line)) != NF_OK)
            return st;
        nf_shape to = {2, {line.dim[0], line.dim[2]}};
        if ((st = reshaped(im, y, &to, "_line", &y)) != NF_OK)
            return st;
    }
    return define_node(im, y);
}

/* One pooling node over x ([C, spatial...] per sample, 1 or 2 spatial
 * axes) with symmetric padding pad[], then, where ONNX pads one side
 * more, a slice per axis: the windows of begin padding b are those of
 * the symmetric padding from index (pad - b) / stride on. `indices`
 * (max pooling): 0 the maxima, 1 their positions (storage_order 0), 2
 * their positions column-major (storage_order 1). */
static nf_status pool_node(importer *im, nf_node *x, const nf_shape *s, int n, int is_max, int indices,
                              const int64_t *kernel, const int64_t *stride, const int64_t *dilation,
                              const int64_t *pads, const char *suffix, nf_node **out)
{
    int64_t pad[2], offset[2], length[2];
    int ceil_mode = attr_int(im, "ceil_mode", 0) != 0;
    for (int k = 0; k < n; k++) {
        int64_t b = pads[k], e = pads[k + n], span = (kernel[k] - 1) * dilation[k] + 1;
        pad[k] = b > e ? b : e;
        if (b != e && (ceil_mode || (pad[k] - b) % stride[k]))
            return fail(im, "pads differ between the sides of an axis (%lld, %lld) with ceil_mode or a stride that "
                        "does not divide the difference", (long long)b, (long long)e);
        offset[k] = (pad[k] - b) / stride[k];
        length[k] = (s->dim[1 + k] + b + e - span) / stride[k] + 1; /* ONNX's output size (floor) */
    }
    nf_node *y = add(im, n == 1 ? (is_max ? "maxpool1d" : "avgpool1d") : is_max ? "maxpool" : "avgpool", 1, &x,
                     suffix);
    nf_status st;
    if (n == 1) {
        if ((st = set(im, y, "kernel", "%lld", (long long)kernel[0])) != NF_OK ||
            (st = set(im, y, "stride", "%lld", (long long)stride[0])) != NF_OK ||
            (st = set(im, y, "padding", "%lld", (long long)pad[0])) != NF_OK ||
            (is_max && (st = set(im, y, "dilation", "%lld", (long long)dilation[0])) != NF_OK))
            return st;
    } else if ((st = set(im, y, "kernel", "%lldx%lld", (long long)kernel[0], (long long)kernel[1])) != NF_OK ||
               (st = set(im, y, "stride", "%lldx%lld", (long long)stride[0], (long long)stride[1])) != NF_OK ||
               (st = set(im, y, "padding", "%lldx%lld", (long long)pad[0], (long long)pad[1])) != NF_OK ||
               (is_max && (st = set(im, y, "dilation", "%lldx%lld", (long long)dilation[0],
                                    (long long)dilation[1])) != NF_OK))
        return st;
    if ((st = set(im, y, "ceil_mode", "%s", ceil_mode ? "true" : "false")) != NF_OK ||
        (!is_max && (st = set(im, y, "include_pad", "%s", attr_int(im, "count_include_pad", 0) ? "true" : "false")) !=
                        NF_OK) ||
        (indices && (st = set(im, y, "output", "indices")) != NF_OK) ||
        (indices == 2 && (st = set(im, y, "column_major", "true")) != NF_OK))
        return st;
    for (int k = 0; k < n; k++) {
        if (pads[k] == pads[k + n])
            continue;
        nf_node *cut = add(im, "slice", 1, &y, "_side");
        if ((st = set(im, cut, "axis", "%d", k + 1)) != NF_OK ||
            (st = set(im, cut, "start", "%lld", (long long)offset[k])) != NF_OK ||
            (st = set(im, cut, "end", "%lld", (long long)(offset[k] + length[k]))) != NF_OK)
            return st;
        y = cut;
    }
    *out = y;
    return NF_OK;
}


/* MaxPool and AveragePool over 1, 2 or 3 spatial axes. 3-D pools are
 * separable: the (H, W) window on every depth slice, then the depth
 * window over the results (a max of maxes; a mean of means, each over
 * as many values). */
static nf_status map_pool(importer *im)
{
    int is_max = !strcmp(im->at->op_type, "MaxPool");
    static const char *const known_max[] = {"auto_pad", "ceil_mode", "dilations", "kernel_shape", "pads",
                                            "storage_order", "strides", NULL};
    static const char *const known_avg[] = {"auto_pad", "ceil_mode", "count_include_pad", "kernel_shape", "pads",
                                            "strides", NULL};
    value *x = any_input(im, 0);
    nf_shape s;
    int with_indices = im->at->n_output > 1 && *im->at->output[1];
    if (x && with_indices && x->batch_axis != NO_BATCH)
        return fail(im, "the Indices output numbers positions across the whole batch; it maps with whole inputs "
                    "(nodeflow import --whole-inputs), where each input is one sample");
    nf_status st = start_node(im, is_max ? known_max : known_avg, 0, &x, &s);
    if (st != NF_OK)
        return st;
    int n = s.rank - 1;
    if (n < 1 || n > 3)
        return fail(im, "pooling over %d spatial axes (1, 2 or 3 map)", n);
    int64_t kernel[3], stride[3] = {1, 1, 1}, dilation[3] = {1, 1, 1}, pads[6];
    int given = attr_ints(im, "kernel_shape", kernel, 3, &st);
    if (st == NF_OK && given != n)
        return fail(im, "kernel_shape needs %d values", n);
    if (st == NF_OK && (given = attr_ints(im, "strides", stride, 3, &st)) != 0 && given != n)
        return fail(im, "strides needs %d values", n);
    if (st == NF_OK && (given = attr_ints(im, "dilations", dilation, 3, &st)) != 0 && given != n)
        return fail(im, "dilations needs %d values", n);
    if (st != NF_OK || (st = check_window(im, n, kernel, stride, dilation)) != NF_OK ||
        (st = spatial_pads(im, n, &s, kernel, stride, dilation, pads)) != NF_OK)
        return st;
    int64_t storage_order = attr_int(im, "storage_order", 0);
    if (storage_order != 0 && storage_order != 1)
        return fail(im, "storage_order must be 0 or 1");
    nf_node *y, *where;
    if (n < 3) {
        if ((st = pool_node(im, x->node, &s, n, is_max, 0, kernel, stride, dilation, pads, NULL, &y)) != NF_OK ||
            (with_indices && (st = pool_node(im, x->node, &s, n, 1, 1 + (int)storage_order, kernel, stride,
                                                dilation, pads, "_indices", &where)) != NF_OK) ||
            (st = define_node(im, y)) != NF_OK)
            return st;
        return with_indices ? define_output(im, 1, where, 0) : NF_OK;
    }
    if (with_indices)
        return fail(im, "the Indices output of 3-D pooling is not supported");
    if (dilation[0] != 1 || attr_int(im, "ceil_mode", 0))
        return fail(im, "3-D pooling with a depth dilation or ceil_mode is not supported");
    int64_t c = s.dim[0], d = s.dim[1];
    nf_shape planes = {3, {c * d, s.dim[2], s.dim[3]}}, hw;
    int64_t pads_hw[4] = {pads[1], pads[2], pads[4], pads[5]};
    nf_node *flat, *pooled;
    if ((st = reshaped(im, x->node, &planes, "_planes", &flat)) != NF_OK ||
        (st = pool_node(im, flat, &planes, 2, is_max, 0, kernel + 1, stride + 1, dilation + 1, pads_hw, "_hw",
                        &pooled)) != NF_OK ||
        (st = shape_of(im, pooled, &hw)) != NF_OK)
        return st;
    nf_shape depth = {3, {c, d, hw.dim[1] * hw.dim[2]}}, depth_pooled;
    int64_t k_d[2] = {kernel[0], 1}, s_d[2] = {stride[0], 1}, one[2] = {1, 1}, pads_d[4] = {pads[0], 0, pads[3], 0};
    nf_node *cols;
    if ((st = reshaped(im, pooled, &depth, "_depth", &cols)) != NF_OK ||
        (st = pool_node(im, cols, &depth, 2, is_max, 0, k_d, s_d, one, pads_d, "_d", &pooled)) != NF_OK ||
        (st = shape_of(im, pooled, &depth_pooled)) != NF_OK)
        return st;
    nf_shape to = {4, {c, depth_pooled.dim[1], hw.dim[1], hw.dim[2]}};
    return (st = reshaped(im, pooled, &to, NULL, &y)) == NF_OK ? define_node(im, y) : st;
}

/* GlobalAveragePool: [N, C, ...] -> [N, C, 1, ...]: global_avgpool, then
 * the unit axes back (a reshape). */
static nf_status map_global_pool(importer *im)
{
    static const char *const known[] = {NULL};
    value *x;
    nf_shape s;
    nf_status st = start_node(im, known, 0, &x, &s);
    if (st != NF_OK)
        return st;
    if (s.rank < 2)
        return fail(im, "the input has no spatial axes");
    nf_node *pooled = add(im, "global_avgpool", 1, &x->node, "_pool");
    nf_node *y = add(im, "reshape", 1, &pooled, NULL);
    char text[96];
    int n = snprintf(text, sizeof text, "%lld", (long long)s.dim[0]);
    for (int k = 1; k < s.rank && n < (int)sizeof text; k++)
        n += snprintf(text + n, sizeof text - (size_t)n, "x1");
    if ((st = set(im, y, "shape", "%s", text)) != NF_OK)
        return st;
    return define_node(im, y);
}

/* A constant node of v's values times k, as [C, 1] (to broadcast over
 * [C, values]) or as [C] (rank 1). */
static nf_status channel_constant(importer *im, const value *v, double k, int rank, const nf_shape *s, nf_node **out)
{
    int64_t c = v->count;
    float *data = malloc((size_t)(c ? c : 1) * sizeof(float));
    if (!data)
        return no_memory(im);
    for (int64_t j = 0; j < c; j++)
        data[j] = (float)(k * const_at(v, j));
    value col = {.name = v->name, .rank = rank, .dims = {c, 1}, .count = c, .f = data};
    nf_status st = constant_like(im, &col, s, NO_BATCH, out);
    free(data);
    return st;
}

/* BatchNormalization in training mode, of a whole tensor [N, C, ...]:
 * the statistics of the batch in it (Ioffe and Szegedy: mean and biased
 * variance over every axis but C). Per channel, x as [C, values]: y is
 * its layer norm times the scale plus B; the running statistics
 * out = momentum stat_in + (1 - momentum) stat. */
static nf_status batchnorm_training(importer *im)
{
    value *x = any_input(im, 0), *p[4];
    if (!x)
        return im->err->code;
    if (x->batch_axis != NO_BATCH)
        return fail(im, "training mode needs the whole batch in one tensor (import with whole inputs)");
    for (int k = 0; k < 4; k++)
        if (!(p[k] = const_input(im, k + 1)))
            return im->err->code;
    nf_shape s;
    nf_status st = shape_of(im, x->node, &s);
    if (st != NF_OK)
        return st;
    if (s.rank < 2 || s.rank > NF_MAX_RANK)
        return fail(im, "the input needs [N, C, ...]");
    int64_t c = s.dim[1], rest = nf_shape_size(&s) / c;
    for (int k = 0; k < 4; k++)
        if (p[k]->count != c || p[k]->is_int)
            return fail(im, "input %d has %lld values for %lld channels", k + 2, (long long)p[k]->count, (long long)c);
    double eps = attr_float(im, "epsilon", 1e-5), momentum = attr_float(im, "momentum", 0.9);
    char order[32];
    snprintf(order, sizeof order, "1,0");
    for (int k = 2; k < s.rank; k++)
        snprintf(order + strlen(order), sizeof order - strlen(order), ",%d", k);
    nf_node *t = add(im, "permute", 1, &x->node, "_cfirst"), *cols, *norm, *scale_c, *bias_c, *y;
    nf_shape cv = {2, {c, rest}}, moved = s;
    moved.dim[0] = s.dim[1], moved.dim[1] = s.dim[0];
    if ((st = set(im, t, "order", "%s", order)) != NF_OK || (st = reshaped(im, t, &cv, "_cols", &cols)) != NF_OK)
        return st;
    norm = add(im, "layernorm", 1, &cols, "_norm");
    if ((st = set(im, norm, "axes", "1")) != NF_OK || (st = set_float(im, norm, "eps", eps)) != NF_OK ||
        (st = set(im, norm, "affine", "false")) != NF_OK ||
        (st = channel_constant(im, p[0], 1, 2, &cv, &scale_c)) != NF_OK ||
        (st = channel_constant(im, p[1], 1, 2, &cv, &bias_c)) != NF_OK)
        return st;
    nf_node *in[2] = {norm, scale_c};
    nf_node *scaled = add(im, "mul", 2, in, "_scale");
    in[0] = scaled, in[1] = bias_c;
    nf_node *shifted = add(im, "add", 2, in, "_shift"), *back;
    if ((st = reshaped(im, shifted, &moved, "_back", &back)) != NF_OK ||
        (st = set(im, y = add(im, "permute", 1, &back, NULL), "order", "%s", order)) != NF_OK ||
        (st = define_output(im, 0, y, NO_BATCH)) != NF_OK)
        return st;
    /* the running statistics; the variance of x - c about the given running
     * mean c (the same variance, with less cancellation in float when the
     * batch's mean is near c): mean((x - c)^2) - mean(x - c)^2 */
    nf_node *mean = add(im, "global_avgpool", 1, &cols, "_mean"), *prior_c;
    if ((st = channel_constant(im, p[2], 1, 2, &cv, &prior_c)) != NF_OK)
        return st;
    in[0] = cols, in[1] = prior_c;
    nf_node *about = add(im, "sub", 2, in, "_about");
    in[0] = in[1] = about;
    nf_node *square = add(im, "mul", 2, in, "_square");
    nf_node *mean_sq = add(im, "global_avgpool", 1, &square, "_mean_sq");
    nf_node *mean_shift = add(im, "global_avgpool", 1, &about, "_mean_about");
    in[0] = in[1] = mean_shift;
    nf_node *sq_mean = add(im, "mul", 2, in, "_sq_mean");
    in[0] = mean_sq, in[1] = sq_mean;
    nf_node *var = add(im, "sub", 2, in, "_var");
    nf_node *stat[2] = {mean, var};
    nf_shape one = {1, {c}};
    for (int k = 0; k < 2 && im->at->n_output > (size_t)k + 1; k++) {
        nf_node *part = add(im, "scale", 1, &stat[k], k ? "_var_part" : "_mean_part"), *prior;
        if ((st = set(im, part, "factor", "%.17g", 1 - momentum)) != NF_OK ||
            (st = channel_constant(im, p[2 + k], momentum, 1, &one, &prior)) != NF_OK)
            return st;
        in[0] = part, in[1] = prior;
        if ((st = define_output(im, k + 1, add(im, "add", 2, in, k ? "_running_var" : "_running_mean"), NO_BATCH)) !=
            NF_OK)
            return st;
    }
    return NF_OK;
}

/* BatchNormalization in inference form: a batchnorm node whose running
 * statistics are the given mean and variance. */
static nf_status map_batchnorm(importer *im)
{
    static const char *const known[] = {"epsilon", "momentum", "training_mode", "spatial", NULL};
    nf_status st = refuse_attrs(im, known);
    if (st != NF_OK)
        return st;
    if (attr_int(im, "spatial", 1) != 1)
        return fail(im, "spatial = 0 is not supported");
    if (attr_int(im, "training_mode", 0) || (im->at->n_output > 1 && *im->at->output[1]))
        return batchnorm_training(im);
    value *x = node_input(im, 0), *p[4];
    if (!x)
        return im->err->code;
    for (int k = 0; k < 4; k++)
        if (!(p[k] = const_input(im, k + 1)))
            return im->err->code;
    nf_shape s;
    if ((st = shape_of(im, x->node, &s)) != NF_OK)
        return st;
    int64_t c = s.rank ? s.dim[0] : 1;
    for (int k = 0; k < 4; k++)
        if (p[k]->count != c || p[k]->is_int)
            return fail(im, "input %d has %lld values for %lld channels", k + 2, (long long)p[k]->count, (long long)c);
    nf_node *y = add(im, "batchnorm", 1, &x->node, NULL);
    if ((st = set_float(im, y, "eps", attr_float(im, "epsilon", 1e-5))) != NF_OK ||
        (st = set_float(im, y, "momentum", 1.0 - attr_float(im, "momentum", 0.9))) != NF_OK)
        return st;
    static const char *const names[] = {"weight", "bias", "running_mean", "running_var"};
    for (int k = 0; k < 4; k++)
        if ((st = give_weight(im, y, names[k], p[k]->f, c)) != NF_OK)
            return st;
    return define_node(im, y);
}

/* LayerNormalization (opset 17): over the axes from `axis` on, which must
 * leave the batch out: a layernorm node over that many trailing axes. */
static nf_status map_layernorm(importer *im)
{
    static const char *const known[] = {"axis", "epsilon", "stash_type", NULL};
    value *x, *scale, *bias = NULL;
    nf_shape s;
    nf_status st = start_node(im, known, 1, &x, &s);
    if (st != NF_OK)
        return st;
    if (!(scale = const_input(im, 1)) || (has_input(im, 2) && !(bias = const_input(im, 2))))
        return im->err->code;
    int rank = onnx_rank(x, &s), whole = x->batch_axis == NO_BATCH;
    int64_t axis;
    if ((st = axis_attr(im, -1, rank, rank - 1, &axis)) != NF_OK)
        return st;
    if (!whole && axis <= x->batch_axis)
        return fail(im, "axis %lld normalises over the batch", (long long)attr_int(im, "axis", -1));
    int64_t n = 1;
    for (int64_t k = axis; k < rank; k++)
        n *= s.dim[k - !whole];
    if (scale->count != n || scale->is_int || (bias && (bias->count != n || bias->is_int)))
        return fail(im, "Scale and B must hold the %lld values of the normalised axes", (long long)n);
    nf_node *y = add(im, "layernorm", 1, &x->node, NULL);
    if ((st = set(im, y, "axes", "%lld", (long long)(rank - axis))) != NF_OK ||
        (st = set_float(im, y, "eps", attr_float(im, "epsilon", 1e-5))) != NF_OK ||
        (st = give_weight(im, y, "weight", scale->f, n)) != NF_OK)
        return st;
    float *b = calloc((size_t)n, sizeof(float));
    if (!b)
        return no_memory(im);
    if (bias)
        memcpy(b, bias->f, (size_t)n * sizeof(float));
    st = give_weight(im, y, "bias", b, n);
    free(b);
    if (st != NF_OK || (st = define_output(im, 0, y, x->batch_axis)) != NF_OK)
        return st;
    for (int k = 1; k < 3 && (size_t)k < im->at->n_output; k++) { /* Mean, InvStdDev: the normalised axes as 1s */
        if (!*im->at->output[k])
            continue;
        nf_node *stat = add(im, "layernorm", 1, &x->node, k == 1 ? "_mean" : "_inv_std");
        if ((st = set(im, stat, "axes", "%lld", (long long)(rank - axis))) != NF_OK ||
            (st = set_float(im, stat, "eps", attr_float(im, "epsilon", 1e-5))) != NF_OK ||
            (st = set(im, stat, "affine", "false")) != NF_OK ||
            (st = set(im, stat, "output", "%s", k == 1 ? "mean" : "inv_std_dev")) != NF_OK ||
            (st = define_output(im, k, stat, x->batch_axis)) != NF_OK)
            return st;
    }
    return NF_OK;
}

/* Flatten: with a batch axis first, axis 1 (the per-sample axes as one);
 * of a whole tensor, any axis (a reshape to [before, from axis on]). */
static nf_status map_flatten(importer *im)
{
    static const char *const known[] = {"axis", NULL};
    value *x;
    nf_shape s;
    nf_status st = start_node(im, known, 1, &x, &s);
    if (st != NF_OK)
        return st;
    int rank = onnx_rank(x, &s);
    int64_t axis;
    if ((st = axis_attr(im, 1, rank, rank, &axis)) != NF_OK) /* (Flatten's axis may stand past the last) */
        return st;
    if (x->batch_axis == NO_BATCH) {
        nf_shape to = {2, {1, 1}};
        for (int k = 0; k < s.rank; k++)
            to.dim[k >= axis] *= s.dim[k];
        nf_node *y;
        return (st = reshaped(im, x->node, &to, NULL, &y)) == NF_OK ? define_output(im, 0, y, NO_BATCH) : st;
    }
    if (x->batch_axis != 0 || axis != 1)
        return fail(im, "axis %lld: only axis 1 (keeping the batch axis first) maps",
                    (long long)attr_int(im, "axis", 1));
    nf_node *y = add(im, "flatten", 1, &x->node, NULL);
    return define_node(im, y);
}

/* Reshape of a whole tensor: 0 copies the input's axis (unless
 * allowzero), one -1 takes what is left. */
static nf_status reshape_whole(importer *im, const value *x, const nf_shape *s, const value *shape)
{
    int allowzero = attr_int(im, "allowzero", 0) != 0, infer = -1;
    int64_t total = nf_shape_size(s), known_size = 1;
    nf_shape to = {(int)shape->count, {0}};
    if (to.rank > NF_MAX_RANK)
        return fail(im, "more than %d axes", NF_MAX_RANK);
    for (int k = 0; k < to.rank; k++) {
        int64_t e = shape->i[k];
        if (e == 0 && !allowzero) {
            if (k >= s->rank)
                return fail(im, "a 0 in the shape copies an axis the input does not have");
            e = s->dim[k];
        }
        if (e == -1) {
            if (infer >= 0)
                return fail(im, "more than one -1 in the shape");
            infer = k;
        } else if (e < 0 || (e > 0 && known_size > INT64_MAX / e)) {
            return fail(im, "dimension %lld in the shape", (long long)shape->i[k]);
        } else {
            known_size *= e;
        }
        to.dim[k] = e;
    }
    if (infer >= 0) {
        if (known_size == 0 || total % known_size)
            return fail(im, "-1 cannot be inferred: %lld values do not divide into %lld", (long long)total,
                        (long long)known_size);
        to.dim[infer] = total / known_size;
    } else if (known_size != total) {
        return fail(im, "%lld values cannot take the shape given (%lld)", (long long)total, (long long)known_size);
    }
    nf_node *y; /* (a tensor with no elements reshapes too: see the graph's validation) */
    nf_status st = reshaped(im, x->node, &to, NULL, &y);
    return st == NF_OK ? define_output(im, 0, y, NO_BATCH) : st;
}

/* Reshape where the batch is merged with other axes, before or after:
 * the shape names the batch's axis as a multiple m of the batch size (or
 * a 0 copying it). Row-major order keeps each sample's values together
 * when the values before the batch are as many before and after: that
 * gives the outer factor (those values over the entries before it), and
 * m / outer the inner one. Other 0s copy, one -1 takes what is left. */
static nf_status reshape_merged(importer *im, const value *x, const nf_shape *s, const value *shape)
{
    int n = (int)shape->count, in_rank = onnx_rank(x, s), at = -1, infer = -1;
    int64_t e[NF_MAX_RANK + 1], total = nf_shape_size(s), before_in = x->merged ? x->outer : 1, known = 1, m = 0;
    if (total == 0) /* (the arithmetic below divides by the parts of a size) */
        return fail(im, "a tensor with no elements reshaped with its batch merged into other axes");
    for (int k = 0; k < x->batch_axis; k++)
        before_in *= s->dim[k];
    for (int k = 0; k < n; k++) {
        e[k] = shape->i[k];
        if (e[k] == 0 && !attr_int(im, "allowzero", 0)) {
            if (k >= in_rank)
                return fail(im, "a 0 in the shape copies an axis the input does not have");
            e[k] = k == x->batch_axis ? batch_times(x->merged ? x->outer * x->inner : 1) : s->dim[sample_axis(x, k)];
        }
        if (batch_multiple(e[k])) {
            if (at >= 0)
                return fail(im, "the batch twice in the shape");
            at = k, m = batch_multiple(e[k]);
        } else if (e[k] == -1) {
            if (infer >= 0)
                return fail(im, "more than one -1 in the shape");
            infer = k;
        } else if (e[k] < 1 || known > INT64_MAX / e[k]) {
            return fail(im, "dimension %lld in the shape", (long long)shape->i[k]);
        } else {
            known *= e[k];
        }
    }
    if (at < 0)
        return fail(im, "the shape does not name the batch axis (as a multiple of the batch size or a 0)");
    if (known > INT64_MAX / m)
        return fail(im, "the shape is too large");
    if (infer >= 0) {
        if (total % (known * m))
            return fail(im, "-1 cannot be inferred: %lld values per sample do not divide into %lld", (long long)total,
                        (long long)(known * m));
        e[infer] = total / (known * m);
    } else if (known * m != total) {
        return fail(im, "%lld values per sample cannot take the shape given (%lld)", (long long)total,
                    (long long)(known * m));
    }
    int64_t before_out = 1;
    for (int k = 0; k < at; k++)
        before_out *= e[k];
    if (before_in % before_out || m % (before_in / before_out))
        return fail(im, "the reshape moves values across the batch axis");
    int64_t outer = before_in / before_out, inner = m / outer;
    nf_shape to = {0, {0}};
    if (n - 1 + 2 * (outer != 1 || inner != 1) > NF_MAX_RANK)
        return fail(im, "more than %d axes per sample", NF_MAX_RANK);
    for (int k = 0; k < n; k++) {
        if (k != at)
            to.dim[to.rank++] = e[k];
        else if (outer != 1 || inner != 1)
            to.dim[to.rank++] = outer, to.dim[to.rank++] = inner;
    }
    nf_node *y;
    nf_status st = reshaped(im, x->node, &to, NULL, &y);
    return st == NF_OK ? define_merged(im, 0, y, at, outer, inner) : st;
}

/* Reshape by a constant shape. The batch is the entry that names it (the
 * folded batch size, or a 0 copying the input's batch axis), else a -1
 * when the other entries take exactly one sample; the axes before it
 * must hold as many values as those before the input's batch axis, so
 * that each sample keeps its values in order. Other 0s copy the input's
 * axis (unless allowzero), another -1 takes what is left. */
/* Reshape of a constant: the same values under the new dims (0 copies
 * the input's axis unless allowzero, -1 takes the rest). */
static nf_status fold_reshape(importer *im, const value *x, const value *shape, int allowzero)
{
    int64_t dims[MAX_DIMS], known_size = 1;
    int infer = -1, n = (int)shape->count;
    if (n > MAX_DIMS)
        return fail(im, "a constant reshaped to rank %d (at most %d)", n, MAX_DIMS);
    for (int k = 0; k < n; k++) {
        dims[k] = shape->i[k] == 0 && !allowzero ? (k < x->rank ? x->dims[k] : -2) : shape->i[k];
        if (dims[k] == -1 && infer < 0)
            infer = k;
        else if (dims[k] < 0 || (dims[k] > 0 && known_size > INT64_MAX / dims[k]))
            return fail(im, "dimension %lld of the shape does not fit the constant", (long long)shape->i[k]);
        else
            known_size *= dims[k];
    }
    if (infer >= 0) {
        if (known_size == 0 || x->count % known_size)
            return fail(im, "the shape does not divide the constant's %lld values", (long long)x->count);
        dims[infer] = x->count / known_size;
    } else if (known_size != x->count) {
        return fail(im, "the shape holds %lld values, the constant %lld", (long long)known_size,
                    (long long)x->count);
    }
    value *y = define(im, im->at->output[0]);
    nf_status st = y ? make_const(im, y, n, dims, x->is_int) : im->err->code;
    if (st == NF_OK && x->count)
        memcpy(x->is_int ? (void *)y->i : (void *)y->f, x->is_int ? (void *)x->i : (void *)x->f,
               (size_t)x->count * (x->is_int ? sizeof(int64_t) : sizeof(float)));
    return st;
}

/* Transpose of a constant: out[i] at the input position whose axis
 * perm[k] is the output's axis k. */
static nf_status fold_transpose(importer *im, const value *x, const int64_t *perm)
{
    int64_t dims[MAX_DIMS], stride[MAX_DIMS], index[MAX_DIMS] = {0};
    for (int k = x->rank - 1; k >= 0; k--) /* (the products stay below the constant's count) */
        stride[k] = k == x->rank - 1 ? 1 : stride[k + 1] * x->dims[k + 1];
    for (int k = 0; k < x->rank; k++)
        dims[k] = x->dims[perm[k]];
    value *y = define(im, im->at->output[0]);
    nf_status st = y ? make_const(im, y, x->rank, dims, x->is_int) : im->err->code;
    for (int64_t o = 0; st == NF_OK && o < x->count; o++) {
        int64_t from = 0;
        for (int k = 0; k < x->rank; k++)
            from += index[k] * stride[perm[k]];
        if (x->is_int)
            y->i[o] = x->i[from];
        else
            y->f[o] = x->f[from];
        for (int k = x->rank - 1; k >= 0 && ++index[k] == dims[k]; k--) /* the next output position */
            index[k] = 0;
    }
    return st;
}

static nf_status map_reshape(importer *im)
{
    static const char *const known[] = {"allowzero", NULL};
    value *x = input(im, 0), *shape;
    nf_shape s;
    if (x && !x->node && !x->zeros) { /* a constant: folded */
        nf_status st = refuse_attrs(im, known);
        if (st != NF_OK || !(shape = const_input(im, 1)))
            return st != NF_OK ? st : im->err->code;
        if (!shape->is_int || shape->rank != 1)
            return fail(im, "the shape must be integers");
        return fold_reshape(im, x, shape, attr_int(im, "allowzero", 0) != 0);
    }
    nf_status st = start_node(im, known, 1, &x, &s);
    if (st != NF_OK)
        return st;
    if (!(shape = const_input(im, 1)))
        return im->err->code;
    if (!shape->is_int || shape->rank != 1 || shape->count < 1 || shape->count > NF_MAX_RANK + 1)
        return fail(im, "the shape must be 1 to %d integers", NF_MAX_RANK + 1);
    if (x->batch_axis == NO_BATCH)
        return reshape_whole(im, x, &s, shape);
    for (int k = 0; k < shape->count; k++)
        if (x->merged || batch_multiple(shape->i[k]) > 1)
            return reshape_merged(im, x, &s, shape);
    int allowzero = attr_int(im, "allowzero", 0) != 0, n = (int)shape->count, in_rank = s.rank + 1;
    int64_t total = nf_shape_size(&s), before_in = 1, e[NF_MAX_RANK + 1], known_size = 1;
    for (int k = 0; k < x->batch_axis; k++)
        before_in *= s.dim[k];
    int batch = -1, infer = -1;
    for (int k = 0; k < n; k++) {
        e[k] = shape->i[k];
        if (e[k] == 0 && !allowzero) { /* a copy of the input's axis k */
            if (k >= in_rank)
                return fail(im, "a 0 in the shape copies an axis the input does not have");
            e[k] = k == x->batch_axis ? BATCH_DIM : s.dim[k < x->batch_axis ? k : k - 1];
        }
        if (e[k] == BATCH_DIM) {
            if (batch >= 0)
                return fail(im, "the batch twice in the shape");
            batch = k;
        } else if (e[k] == -1) {
            if (infer >= 0)
                return fail(im, "more than one -1 in the shape");
            infer = k;
        } else if (e[k] < 0 || (e[k] > 0 && known_size > INT64_MAX / e[k])) {
            return fail(im, "dimension %lld in the shape", (long long)shape->i[k]);
        } else {
            known_size *= e[k];
        }
    }
    if (batch < 0 && infer >= 0 && known_size == total) /* the -1 is the batch */
        batch = infer, infer = -1;
    if (batch < 0)
        return fail(im, "the shape does not keep the batch axis (give it as 0, -1 or the model's batch size)");
    if (infer >= 0) {
        if (known_size == 0 || total % known_size)
            return fail(im, "-1 cannot be inferred: %lld values do not divide into %lld", (long long)total,
                        (long long)known_size);
        e[infer] = total / known_size;
    } else if (known_size != total) {
        return fail(im, "%lld values per sample cannot take the shape given (%lld)", (long long)total,
                    (long long)known_size);
    }
    nf_shape out = {0, {0}};
    int64_t before_out = 1;
    for (int k = 0; k < n; k++)
        if (k != batch) {
            out.dim[out.rank++] = e[k];
            if (k < batch)
                before_out *= e[k];
        }
    if (before_out != before_in)
        return fail(im, "the reshape moves values across the batch axis");
    nf_node *y;
    if ((st = reshaped(im, x->node, &out, NULL, &y)) != NF_OK)
        return st;
    return define_output(im, 0, y, batch);
}

/* ---- constants that PyTorch builds around view() -------------------------- */

static nf_status map_constant(importer *im)
{
    value *y = im->at->n_output ? define(im, im->at->output[0]) : NULL;
    if (!y)
        return im->err->code;
    if (im->at->n_attribute != 1)
        return fail(im, "a Constant needs exactly one attribute");
    const Onnx__AttributeProto *a = im->at->attribute[0];
    const char *name = a->name ? a->name : "";
    if (!strcmp(name, "value") && a->t)
        return read_tensor(im, a->t, y);
    int64_t n = !strcmp(name, "value_ints") ? (int64_t)a->n_ints : !strcmp(name, "value_floats") ? (int64_t)a->n_floats : 1;
    int is_int = !strcmp(name, "value_int") || !strcmp(name, "value_ints");
    int list = !strcmp(name, "value_ints") || !strcmp(name, "value_floats");
    if (!is_int && strcmp(name, "value_float") && strcmp(name, "value_floats"))
        return fail(im, "a Constant's '%s' is not supported", name);
    nf_status st = make_const(im, y, list, &n, is_int);
    for (int64_t k = 0; st == NF_OK && k < n; k++) {
        if (is_int)
            y->i[k] = list ? a->ints[k] : a->i;
        else
            y->f[k] = list ? a->floats[k] : a->f;
    }
    return st;
}

/* Shape of a per-sample value: [batch, its dimensions]. */
static nf_status map_shape(importer *im)
{
    static const char *const known[] = {"start", "end", NULL};
    value *x;
    nf_shape s;
    nf_status st = start_node(im, known, 1, &x, &s);
    if (st != NF_OK)
        return st;
    int64_t rank = onnx_rank(x, &s), start = attr_int(im, "start", 0), end = attr_int(im, "end", rank);
    start = start < 0 ? start + rank : start, end = end < 0 ? end + rank : end;
    start = start < 0 ? 0 : start > rank ? rank : start, end = end < start ? start : end > rank ? rank : end;
    value *y = define(im, im->at->output[0]);
    int64_t n = end - start;
    if (!y || (st = make_const(im, y, 1, &n, 1)) != NF_OK)
        return y ? st : im->err->code;
    for (int64_t k = start; k < end; k++) /* (a merged batch: outer x batch x inner) */
        y->i[k - start] = k == x->batch_axis ? batch_times(x->merged ? x->outer * x->inner : 1)
                                             : s.dim[sample_axis(x, (int)k)];
    return NF_OK;
}

/* Gather from a 2-D constant by per-sample indices: an embedding. */
static nf_status gather_embedding(importer *im, const value *table, const value *ids)
{
    if (table->rank != 2 || table->is_int || attr_int(im, "axis", 0) != 0)
        return fail(im, "indices computed per sample map only into a 2-D float table along axis 0 (an embedding)");
    nf_node *y = add(im, "embedding", 1, &ids->node, NULL);
    nf_status st;
    if ((st = set(im, y, "num", "%lld", (long long)table->dims[0])) != NF_OK ||
        (st = set(im, y, "dim", "%lld", (long long)table->dims[1])) != NF_OK ||
        (st = give_weight(im, y, "weight", table->f, table->count)) != NF_OK)
        return st;
    return define_output(im, 0, y, ids->batch_axis);
}

/* Gather from a node by constant indices along a per-sample axis: a
 * slice of one per index, joined (concat) when there are several, and
 * reshaped to the indices' shape in place of the axis. */
static nf_status gather_from_node(importer *im, const value *x, const value *idx)
{
    nf_shape s;
    nf_status st = shape_of(im, x->node, &s);
    if (st != NF_OK)
        return st;
    int rank = onnx_rank(x, &s), b = x->batch_axis;
    int64_t axis;
    if ((st = axis_attr(im, 0, rank, rank - 1, &axis)) != NF_OK)
        return st;
    if (axis == b)
        return fail(im, "gathering along the batch axis");
    if (!idx->is_int || idx->count < 1 || idx->count > NF_MAX_INPUTS)
        return fail(im, "1 to %d constant integer indices map when gathering from computed values", NF_MAX_INPUTS);
    int a = (int)(axis < b ? axis : axis - 1);
    nf_node *cuts[NF_MAX_INPUTS];
    for (int j = 0; j < idx->count; j++) {
        int64_t i = idx->i[j] < 0 ? idx->i[j] + s.dim[a] : idx->i[j];
        if (i < 0 || i >= s.dim[a])
            return fail(im, "index %lld is outside [0, %lld)", (long long)idx->i[j], (long long)s.dim[a]);
        cuts[j] = add(im, "slice", 1, &x->node, "_slice");
        if ((st = set(im, cuts[j], "axis", "%d", a)) != NF_OK ||
            (st = set(im, cuts[j], "start", "%lld", (long long)i)) != NF_OK ||
            (st = set(im, cuts[j], "end", "%lld", (long long)(i + 1))) != NF_OK)
            return st;
    }
    nf_node *joined = cuts[0];
    if (idx->count > 1 && (st = set(im, joined = add(im, "concat", (int)idx->count, cuts, "_join"), "axis", "%d",
                                     a)) != NF_OK)
        return st;
    nf_shape to = {0, {0}}; /* s with axis a replaced by the indices' dims */
    if (s.rank - 1 + idx->rank > NF_MAX_RANK)
        return fail(im, "the result would have more than %d axes per sample", NF_MAX_RANK);
    for (int k = 0; k < s.rank; k++)
        if (k != a)
            to.dim[to.rank++] = s.dim[k];
        else
            for (int j = 0; j < idx->rank; j++)
                to.dim[to.rank++] = idx->dims[j];
    nf_node *y;
    if ((st = reshaped(im, joined, &to, NULL, &y)) != NF_OK)
        return st;
    int moved = b == NO_BATCH || a >= b ? b : b + idx->rank - 1; /* the batch after the new axes */
    if (moved != NO_BATCH && moved > NF_MAX_RANK)
        return fail(im, "the result would have more than %d axes", NF_MAX_RANK + 1);
    return define_output(im, 0, y, moved);
}

/* OneHot of per-sample ids into depth classes, values 0 and 1, as the
 * last axis: a one_hot node. */
static nf_status map_one_hot(importer *im)
{
    static const char *const known[] = {"axis", NULL};
    nf_status st = refuse_attrs(im, known);
    value *ids = st == NF_OK ? any_input(im, 0) : NULL, *depth = ids ? const_input(im, 1) : NULL;
    value *values = depth ? const_input(im, 2) : NULL;
    if (!values)
        return st != NF_OK ? st : im->err->code;
    nf_shape s;
    if ((st = shape_of(im, ids->node, &s)) != NF_OK)
        return st;
    int64_t axis = attr_int(im, "axis", -1);
    if (axis != -1 && axis != onnx_rank(ids, &s))
        return fail(im, "axis %lld: only the last axis (-1) maps", (long long)axis);
    double classes = depth->count == 1 ? const_at(depth, 0) : 0;
    if (!(classes >= 1 && classes <= (1 << 24)) || classes != floor(classes) || values->count != 2 ||
        const_at(values, 0) != 0 || const_at(values, 1) != 1)
        return fail(im, "depth must be 1 to 2^24 and values [0, 1]");
    nf_node *y = add(im, "one_hot", 1, &ids->node, NULL);
    if ((st = set(im, y, "classes", "%lld", (long long)classes)) != NF_OK)
        return st;
    return define_output(im, 0, y, ids->batch_axis);
}

/* Gather: of constants, folded; an embedding; or one index of a node. */
static nf_status map_gather(importer *im)
{
    static const char *const known[] = {"axis", NULL};
    nf_status known_st = refuse_attrs(im, known);
    value *data = known_st == NF_OK ? input(im, 0) : NULL, *idx = data ? input(im, 1) : NULL;
    if (!idx)
        return known_st != NF_OK ? known_st : im->err->code;
    if (data->zeros || idx->zeros)
        return fail(im, "zeros of a shape that depends on the batch size");
    if (!data->node && idx->node)
        return gather_embedding(im, data, idx);
    if (data->node && !idx->node)
        return gather_from_node(im, data, idx);
    if (data->node)
        return fail(im, "both operands are computed per sample");
    if (!idx->is_int)
        return fail(im, "the indices must be integers");
    int64_t axis;
    nf_status st = data->rank < 1 ? fail(im, "a scalar to gather from")
                                  : axis_attr(im, 0, data->rank, data->rank - 1, &axis);
    if (st != NF_OK)
        return st;
    if (data->rank + idx->rank - 1 > MAX_DIMS)
        return fail(im, "the result would have more than %d axes", MAX_DIMS);
    int64_t dims[MAX_DIMS], outer = 1, inner = 1, along = data->dims[axis];
    int r = 0;
    for (int k = 0; k < axis; k++)
        dims[r++] = data->dims[k], outer *= data->dims[k];
    for (int k = 0; k < idx->rank; k++)
        dims[r++] = idx->dims[k];
    for (int k = (int)axis + 1; k < data->rank; k++)
        dims[r++] = data->dims[k], inner *= data->dims[k];
    value *y = define(im, im->at->output[0]);
    st = y ? make_const(im, y, r, dims, data->is_int) : im->err->code;
    int64_t at = 0;
    for (int64_t o = 0; st == NF_OK && o < outer; o++)
        for (int64_t j = 0; j < idx->count; j++) {
            int64_t i = idx->i[j] < 0 ? idx->i[j] + along : idx->i[j];
            if (i < 0 || i >= along)
                return fail(im, "index %lld is outside [0, %lld)", (long long)idx->i[j], (long long)along);
            for (int64_t e = 0; e < inner; e++, at++) {
                int64_t from = (o * along + i) * inner + e;
                if (data->is_int)
                    y->i[at] = data->i[from];
                else
                    y->f[at] = data->f[from];
            }
        }
    return st;
}

/* Squeeze and Unsqueeze of a node: the unit axes go or come (a reshape);
 * the batch axis stays, moved by the axes before it. */
static nf_status squeeze_node(importer *im, value *x, const int64_t *axes, int n, int un)
{
    nf_shape s;
    nf_status st = shape_of(im, x->node, &s);
    if (st != NF_OK)
        return st;
    int in_rank = onnx_rank(x, &s), rank = un ? in_rank + n : in_rank;
    int64_t full[NF_MAX_RANK + 2];
    for (int k = 0, j = 0; k < in_rank; k++)
        full[k] = k == x->batch_axis ? -1 : s.dim[j++];
    int marked[NF_MAX_RANK + 2] = {0};
    if (rank > NF_MAX_RANK + 1)
        return fail(im, "the result would have more than %d axes", NF_MAX_RANK + 1);
    for (int k = 0; k < n; k++) {
        int64_t a = axes[k] < 0 ? axes[k] + rank : axes[k];
        if (a < 0 || a >= rank || marked[a])
            return fail(im, "axis %lld is outside the result or repeated", (long long)axes[k]);
        marked[a] = 1;
    }
    int64_t out[NF_MAX_RANK + 2];
    int r = 0;
    if (un) {
        for (int k = 0, from = 0; k < rank; k++)
            out[r++] = marked[k] ? 1 : full[from++];
    } else {
        for (int k = 0; k < in_rank; k++) {
            int drop = n ? marked[k] : full[k] == 1;
            if (drop && full[k] != 1)
                return fail(im, "axis %d is %s, not of size 1", k, full[k] == -1 ? "the batch" : "longer");
            if (!drop)
                out[r++] = full[k];
        }
    }
    nf_shape to = {0, {0}};
    int batch = NO_BATCH;
    for (int k = 0; k < r; k++) {
        if (out[k] == -1)
            batch = k;
        else
            to.dim[to.rank++] = out[k];
    }
    if (to.rank > NF_MAX_RANK)
        return fail(im, "more than %d axes per sample", NF_MAX_RANK);
    nf_node *y;
    if ((st = reshaped(im, x->node, &to, NULL, &y)) != NF_OK)
        return st;
    return define_output(im, 0, y, batch);
}

/* Unsqueeze and Squeeze of a constant (axes an attribute before opset
 * 13, an input from it). */
static nf_status map_squeeze(importer *im)
{
    int un = !strcmp(im->at->op_type, "Unsqueeze");
    value *x = input(im, 0);
    if (!x)
        return im->err->code;
    if (x->zeros)
        return fail(im, "zeros of a shape that depends on the batch size");
    int64_t axes[MAX_DIMS];
    int n = 0;
    nf_status st = NF_OK;
    if (has_input(im, 1)) {
        value *a = const_input(im, 1);
        if (!a)
            return im->err->code;
        if (!a->is_int || a->count > MAX_DIMS)
            return fail(im, "axes must be at most %d integers", MAX_DIMS);
        for (n = 0; n < a->count; n++)
            axes[n] = a->i[n];
    } else if ((n = attr_ints(im, "axes", axes, MAX_DIMS, &st)) == 0 && st == NF_OK && un) {
        return fail(im, "Unsqueeze needs axes");
    }
    if (st != NF_OK)
        return st;
    if (x->node)
        return squeeze_node(im, x, axes, n, un);
    int rank = un ? x->rank + n : x->rank;
    if (rank > MAX_DIMS)
        return fail(im, "the result would have more than %d axes", MAX_DIMS);
    int marked[MAX_DIMS] = {0};
    for (int k = 0; k < n; k++) {
        int64_t a = axes[k] < 0 ? axes[k] + rank : axes[k];
        if (a < 0 || a >= rank || marked[a])
            return fail(im, "axis %lld is outside the result or repeated", (long long)axes[k]);
        marked[a] = 1;
    }
    int64_t dims[MAX_DIMS];
    int r = 0;
    if (un) {
        for (int k = 0, from = 0; k < rank; k++)
            dims[r++] = marked[k] ? 1 : x->dims[from++];
    } else {
        for (int k = 0; k < x->rank; k++) {
            if ((n == 0 && x->dims[k] == 1) || marked[k]) {
                if (x->dims[k] != 1)
                    return fail(im, "axis %d has size %lld, not 1", k, (long long)x->dims[k]);
                continue;
            }
            dims[r++] = x->dims[k];
        }
    }
    value *y = define(im, im->at->output[0]);
    if (!y || (st = make_const(im, y, r, dims, x->is_int)) != NF_OK)
        return y ? st : im->err->code;
    memcpy(x->is_int ? (void *)y->i : (void *)y->f, x->is_int ? (void *)x->i : (void *)x->f,
           (size_t)x->count * (x->is_int ? sizeof(int64_t) : sizeof(float)));
    return NF_OK;
}

/* Concat of constants (shapes), or of per-sample values along axis >= 1. */
static nf_status map_concat(importer *im)
{
    int n = (int)im->at->n_input;
    if (n < 1)
        return fail(im, "no inputs");
    value *first = input(im, 0);
    if (!first)
        return im->err->code;
    if (first->node) {
        nf_node *in[NF_MAX_INPUTS];
        if (n > NF_MAX_INPUTS)
            return fail(im, "%d inputs (at most %d)", n, NF_MAX_INPUTS);
        int b = first->batch_axis;
        for (int k = 0; k < n; k++) {
            value *v = any_input(im, k);
            if (!v)
                return im->err->code;
            if (v->batch_axis != b)
                return fail(im, "the inputs have their batch at different axes");
            in[k] = v->node;
        }
        nf_shape s;
        nf_status st = shape_of(im, first->node, &s);
        if (st != NF_OK)
            return st;
        int64_t axis;
        if ((st = axis_attr(im, 0, onnx_rank(first, &s), onnx_rank(first, &s) - 1, &axis)) != NF_OK)
            return st;
        if (axis == b)
            return fail(im, "axis %lld: joining along the batch axis", (long long)axis);
        nf_node *y = add(im, "concat", n, in, NULL);
        if ((st = set(im, y, "axis", "%lld", (long long)(axis < b ? axis : axis - 1))) != NF_OK)
            return st;
        return define_output(im, 0, y, b);
    }
    if (first->rank != 1)
        return fail(im, "constants of rank %d: only 1-D constants are joined", first->rank);
    int64_t total = 0;
    for (int k = 0; k < n; k++) {
        value *v = const_input(im, k);
        if (!v)
            return im->err->code;
        if (v->rank != 1 || v->is_int != first->is_int)
            return fail(im, "constants of other ranks or types");
        total += v->count;
    }
    value *y = define(im, im->at->output[0]);
    nf_status st = y ? make_const(im, y, 1, &total, first->is_int) : im->err->code;
    for (int k = 0, at = 0; st == NF_OK && k < n; k++) {
        const value *v = find(im, im->at->input[k]);
        for (int64_t e = 0; e < v->count; e++, at++)
            if (v->is_int)
                y->i[at] = v->i[e];
            else
                y->f[at] = v->f[e];
    }
    return st;
}

/* Transpose: the batch axis goes where perm puts it; the other axes are
 * permuted per sample (nothing to do when their order stays). */
static nf_status map_transpose(importer *im)
{
    static const char *const known[] = {"perm", NULL};
    value *x = input(im, 0);
    nf_shape s;
    int is_const = x && !x->node && !x->zeros;
    nf_status st = is_const ? refuse_attrs(im, known) : start_node(im, known, 1, &x, &s);
    if (st != NF_OK)
        return st;
    int64_t perm[MAX_DIMS];
    int rank = is_const ? x->rank : onnx_rank(x, &s), n = attr_ints(im, "perm", perm, MAX_DIMS, &st);
    if (st != NF_OK)
        return st;
    if (n == 0) /* the default reverses the axes */
        for (n = 0; n < rank; n++)
            perm[n] = rank - 1 - n;
    if (n != rank)
        return fail(im, "perm names %d axes of a tensor of rank %d", n, rank);
    if (is_const) {
        int used[MAX_DIMS] = {0};
        for (int k = 0; k < n; k++)
            if (perm[k] < 0 || perm[k] >= rank || used[perm[k]]++)
                return fail(im, "perm is not a permutation of the axes");
        return fold_transpose(im, x, perm);
    }
    int seen[NF_MAX_RANK + 1] = {0}, batch = NO_BATCH, order[NF_MAX_RANK], m = 0, moved = 0;
    for (int k = 0; k < n; k++) {
        if (perm[k] < 0 || perm[k] >= rank || seen[perm[k]])
            return fail(im, "perm is not a permutation of the axes");
        seen[perm[k]] = 1;
        if (perm[k] == x->batch_axis) { /* (a merged batch: its two per-sample axes move together) */
            batch = k;
            for (int j = 0; j < 2 * x->merged; j++, m++) {
                order[m] = x->batch_axis + j;
                moved |= order[m] != m;
            }
            continue;
        }
        order[m] = sample_axis(x, (int)perm[k]);
        moved |= order[m] != m;
        m++;
    }
    value layout = *x;
    layout.batch_axis = batch;
    if (!moved)
        return define_like(im, 0, x->node, &layout);
    char text[64];
    int len = 0;
    for (int k = 0; k < m; k++)
        len += snprintf(text + len, sizeof text - (size_t)len, "%s%d", k ? "," : "", order[k]);
    nf_node *y = add(im, "permute", 1, &x->node, NULL);
    if ((st = set(im, y, "order", "%s", text)) != NF_OK)
        return st;
    return define_like(im, 0, y, &layout);
}

/* The gate blocks of an ONNX weight in PyTorch's order: LSTM's i o f c
 * become i f g o, GRU's z r h become r z n. */
static void reorder_gates(const float *onnx, float *torch, int lstm, int64_t block)
{
    static const int lstm_from[4] = {0, 2, 3, 1}, gru_from[3] = {1, 0, 2};
    int gates = lstm ? 4 : 3;
    for (int g = 0; g < gates; g++)
        memcpy(torch + g * block, onnx + (lstm ? lstm_from[g] : gru_from[g]) * block, (size_t)block * sizeof(float));
}

/* One of W [D, G H, F], R [D, G H, H] or B [D, 2 G H] for direction d
 * (B: its W half or R half) as parameter `name` in PyTorch's gate order. */
static nf_status recurrent_weight(importer *im, const nf_node *node, const char *name, const value *w, int d,
                                  int half, int lstm, int64_t gh)
{
    int64_t per = w->count / w->dims[0], part = half >= 0 ? per / 2 : per;
    float *data = malloc((size_t)part * sizeof(float));
    if (!data)
        return no_memory(im);
    reorder_gates(w->f + d * per + (half > 0 ? part : 0), data, lstm, part / (lstm ? 4 : 3));
    (void)gh;
    nf_status st = give_weight(im, node, name, data, part);
    free(data);
    return st;
}

/* Direction d's peepholes: ONNX's P (i, o, f) as the lstm node's
 * peephole_l0 (i, f, o). */
static nf_status peephole_weight(importer *im, const nf_node *node, const value *p, int d, const char *suffix)
{
    int64_t h = p->dims[1] / 3;
    float *data = malloc((size_t)(3 * h) * sizeof(float));
    if (!data)
        return no_memory(im);
    const float *from = p->f + d * 3 * h;
    memcpy(data, from, (size_t)h * sizeof(float));
    memcpy(data + h, from + 2 * h, (size_t)h * sizeof(float));
    memcpy(data + 2 * h, from + h, (size_t)h * sizeof(float));
    char name[48];
    snprintf(name, sizeof name, "peephole_l0%s", suffix);
    nf_status st = give_weight(im, node, name, data, 3 * h);
    free(data);
    return st;
}

/* LSTM and GRU (one layer each, forward or bidirectional): an lstm or gru
 * node over the per-sample [T, F], its weights reordered to PyTorch's
 * gates. Y, ONNX's [T, D, N, H] (layout 0) or [N, T, D, H] (layout 1),
 * is the node's [T, D H] seen as [T, D, H]. Initial states must be absent
 * or zeros; Y_c must be unused; sequence_lens absent or full lengths; the
 * default activations. GRU's linear_before_reset and LSTM's peepholes are
 * the nodes'. */
/* Y_h, the final hidden states [D, batch, H] (layout 0) or [batch, D, H],
 * from the sequence y [T, D H] per sample: the forward direction's last
 * step and the reverse direction's first, each a slice, joined. */
static nf_status final_states(importer *im, nf_node *y, int64_t steps, int dirs, int64_t h, int layout)
{
    nf_node *last[2];
    nf_status st;
    for (int d = 0; d < dirs; d++) {
        nf_node *step = add(im, "slice", 1, &y, "_hstep");
        nf_node *part = add(im, "slice", 1, &step, "_hdir");
        if ((st = set(im, step, "axis", "0")) != NF_OK ||
            (st = set(im, step, "start", "%lld", (long long)(d ? 0 : steps - 1))) != NF_OK ||
            (st = set(im, step, "end", "%lld", (long long)(d ? 1 : steps))) != NF_OK ||
            (st = set(im, part, "axis", "1")) != NF_OK ||
            (st = set(im, part, "start", "%lld", (long long)(d * h))) != NF_OK ||
            (st = set(im, part, "end", "%lld", (long long)((d + 1) * h))) != NF_OK)
            return st;
        last[d] = part; /* [1, H] */
    }
    nf_node *joined = last[0];
    if (dirs == 2 && (st = set(im, joined = add(im, "concat", 2, last, "_h"), "axis", "0")) != NF_OK)
        return st;
    return define_output(im, 1, joined, layout ? 0 : 1);
}

static nf_status map_recurrent(importer *im)
{
    int lstm = !strcmp(im->at->op_type, "LSTM");
    static const char *const known[] = {"activations", "direction", "hidden_size", "layout", "linear_before_reset",
                                        "activation_alpha", "activation_beta", "clip", "input_forget", NULL};
    nf_status st = refuse_attrs(im, known);
    if (st != NF_OK)
        return st;
    if (attribute(im, "activations") || attribute(im, "activation_alpha") || attribute(im, "activation_beta") ||
        attribute(im, "clip") || attr_int(im, "input_forget", 0))
        return fail(im, "activations, clip and input_forget other than the defaults are not supported");
    int64_t linear_before_reset = attr_int(im, "linear_before_reset", 0);
    if (linear_before_reset != 0 && linear_before_reset != 1)
        return fail(im, "linear_before_reset must be 0 or 1");
    char buf[16];
    const char *direction = attr_str(im, "direction", "forward", buf, sizeof buf);
    int bidirectional = !strcmp(direction, "bidirectional");
    if (!bidirectional && strcmp(direction, "forward"))
        return fail(im, "direction '%s' is not supported (forward and bidirectional are)", direction);
    int64_t layout_attr = attr_int(im, "layout", 0), h = attr_int(im, "hidden_size", 0), gates = lstm ? 4 : 3;
    if ((layout_attr != 0 && layout_attr != 1) || h < 1 || h > 65536)
        return fail(im, "layout must be 0 or 1 and hidden_size 1 to 65536");
    int layout = (int)layout_attr, dirs = bidirectional ? 2 : 1;
    value *x = any_input(im, 0), *w = x ? const_input(im, 1) : NULL, *r = w ? const_input(im, 2) : NULL;
    value *b = r && has_input(im, 3) ? const_input(im, 3) : NULL;
    if (!r || (has_input(im, 3) && !b))
        return im->err->code;
    if (has_input(im, 4)) { /* sequence_lens: every sequence whole, or refused */
        value *lens = const_input(im, 4);
        if (!lens)
            return im->err->code;
        nf_shape xs;
        if ((st = shape_of(im, x->node, &xs)) != NF_OK)
            return st;
        int64_t steps = x->batch_axis == NO_BATCH ? xs.dim[layout] : xs.dim[0];
        for (int64_t k = 0; k < lens->count; k++)
            if (const_at(lens, k) != steps)
                return fail(im, "sequence_lens: sequences shorter than the input (%g of %lld steps) are not supported",
                            const_at(lens, k), (long long)steps);
    }
    value *peep = NULL; /* P [D, 3 H] (i, o, f) */
    if (lstm && has_input(im, 7) && !(peep = const_input(im, 7)))
        return im->err->code;
    for (int k = 5; k < (lstm ? 7 : 6); k++)
        if (has_input(im, k)) {
            value *init = input(im, k);
            if (!init)
                return im->err->code;
            if (!init->zeros && !(!init->node && init->count > 0 && init->f)) /* zeros, known or batch-sized */
                return fail(im, "input %d: only zero initial states are supported", k + 1);
            for (int64_t e = 0; !init->zeros && e < init->count; e++)
                if (init->f[e] != 0)
                    return fail(im, "input %d: only zero initial states are supported", k + 1);
        }
    if (im->at->n_output > 2 && *im->at->output[2]) { /* Y_c: named, but nothing may use it */
        value *unused = define(im, im->at->output[2]);
        if (!unused)
            return im->err->code;
        unused->unusable = "the final cell state of LSTM, which is not supported";
    }
    if (x->batch_axis == NO_BATCH && !(x = batch_view(im, x, 0, layout ? 0 : 1)))
        return im->err->code;
    if (x->batch_axis != (layout ? 0 : 1))
        return fail(im, "X has the batch at axis %d; layout %d needs it at %d", x->batch_axis, layout, layout ? 0 : 1);
    nf_shape s;
    if ((st = shape_of(im, x->node, &s)) != NF_OK)
        return st;
    if (s.rank != 2 || h < 1 || w->rank != 3 || r->rank != 3 || w->dims[0] != dirs || w->dims[1] != gates * h ||
        w->dims[2] != s.dim[1] || r->dims[0] != dirs || r->dims[1] != gates * h || r->dims[2] != h ||
        (b && (b->rank != 2 || b->dims[0] != dirs || b->dims[1] != 2 * gates * h)) || w->is_int || r->is_int ||
        (b && b->is_int) ||
        (peep && (peep->rank != 2 || peep->dims[0] != dirs || peep->dims[1] != 3 * h || peep->is_int)))
        return fail(im, "X, W, R or B does not have the shape hidden_size %lld and direction ask for", (long long)h);
    nf_node *y = add(im, lstm ? "lstm" : "gru", 1, &x->node, NULL);
    if ((st = set(im, y, "hidden", "%lld", (long long)h)) != NF_OK ||
        (st = set(im, y, "bidirectional", "%s", bidirectional ? "true" : "false")) != NF_OK ||
        (st = set(im, y, "bias", "true")) != NF_OK ||
        (!lstm && (st = set(im, y, "linear_before_reset", "%s", linear_before_reset ? "true" : "false")) != NF_OK) ||
        (peep && (st = set(im, y, "peephole", "true")) != NF_OK))
        return st;
    for (int d = 0; d < dirs; d++) {
        char name[48];
        const char *suffix = d ? "_reverse" : "";
        snprintf(name, sizeof name, "weight_ih_l0%s", suffix);
        if ((st = recurrent_weight(im, y, name, w, d, -1, lstm, gates * h)) != NF_OK)
            return st;
        snprintf(name, sizeof name, "weight_hh_l0%s", suffix);
        if ((st = recurrent_weight(im, y, name, r, d, -1, lstm, gates * h)) != NF_OK)
            return st;
        if (peep && (st = peephole_weight(im, y, peep, d, suffix)) != NF_OK)
            return st;
        for (int half = 0; half < 2; half++) {
            snprintf(name, sizeof name, "bias_%s_l0%s", half ? "hh" : "ih", suffix);
            if (b)
                st = recurrent_weight(im, y, name, b, d, half, lstm, gates * h);
            else { /* no B: zero biases */
                float *zeros = calloc((size_t)(gates * h), sizeof(float));
                st = zeros ? give_weight(im, y, name, zeros, gates * h) : no_memory(im);
                free(zeros);
            }
            if (st != NF_OK)
                return st;
        }
    }
    if (im->at->n_output > 1 && *im->at->output[1] && (st = final_states(im, y, s.dim[0], dirs, h, layout)) != NF_OK)
        return st;
    nf_shape tdh = {3, {s.dim[0], dirs, h}};
    nf_node *out;
    if ((st = reshaped(im, y, &tdh, "_dirs", &out)) != NF_OK)
        return st;
    return define_output(im, 0, out, layout ? 0 : 2);
}

/* ConstantOfShape: a constant, or zeros whose shape holds the batch size
 * (the initial states PyTorch builds for LSTM and GRU). */
static nf_status map_constant_of_shape(importer *im)
{
    value *shape = input(im, 0);
    if (!shape)
        return im->err->code;
    if (shape->node || shape->zeros || !shape->is_int || shape->rank != 1 || shape->count > MAX_DIMS)
        return fail(im, "the shape must be a constant of at most %d integers", MAX_DIMS);
    const Onnx__AttributeProto *a = attribute(im, "value");
    value fill = {0};
    double v = 0;
    int is_int = 0;
    if (a && a->t) {
        nf_status st = read_tensor(im, a->t, &fill);
        if (st == NF_OK && fill.count != 1)
            st = fail(im, "value must hold one element");
        if (st == NF_OK)
            v = const_at(&fill, 0), is_int = fill.is_int;
        free(fill.f);
        free(fill.i);
        if (st != NF_OK)
            return st;
    }
    int64_t dims[MAX_DIMS];
    int batch = -1;
    for (int k = 0; k < shape->count; k++) {
        dims[k] = shape->i[k];
        if (dims[k] == BATCH_DIM) {
            if (batch >= 0)
                return fail(im, "the batch size twice in the shape");
            batch = k, dims[k] = 1;
        }
    }
    if (batch >= 0 && v != 0)
        return fail(im, "a constant other than 0 of a shape that depends on the batch size");
    value *y = define(im, im->at->output[0]);
    nf_status st = y ? make_const(im, y, (int)shape->count, dims, is_int) : im->err->code;
    for (int64_t k = 0; st == NF_OK && k < y->count; k++)
        if (is_int)
            y->i[k] = (int64_t)v;
        else
            y->f[k] = (float)v;
    if (st == NF_OK && batch >= 0)
        y->zeros = 1, y->zeros_batch_axis = batch;
    return st;
}

/* Expand of a constant to a constant shape (numpy broadcasting): folded,
 * or zeros when the shape holds the batch size. */
static nf_status map_expand(importer *im)
{
    value *x = input(im, 0), *shape = x ? const_input(im, 1) : NULL;
    if (!shape)
        return im->err->code;
    if (x->node || x->zeros)
        return fail(im, "only a constant maps (Expand of computed values is not supported)");
    if (!shape->is_int || shape->rank != 1 || shape->count > MAX_DIMS || x->rank > MAX_DIMS)
        return fail(im, "the shape must be a constant of at most %d integers", MAX_DIMS);
    int rank = (int)(shape->count > x->rank ? shape->count : x->rank), batch = -1, all_zero = 1;
    for (int64_t e = 0; e < x->count && all_zero; e++)
        all_zero = const_at(x, e) == 0;
    int64_t dims[MAX_DIMS];
    for (int k = 0; k < rank; k++) { /* right-aligned */
        int ks = k - (rank - (int)shape->count), kx = k - (rank - x->rank);
        int64_t want = ks >= 0 ? shape->i[ks] : 1, have = kx >= 0 ? x->dims[kx] : 1;
        if (want == BATCH_DIM) { /* (zeros of the export's batch size are zeros of any) */
            if ((have != 1 && !all_zero) || batch >= 0 || !all_zero)
                return fail(im, "a constant other than 0 expanded to the batch size");
            batch = k, want = have = 1;
        }
        if (want < 0 || (have != 1 && want != 1 && want != have))
            return fail(im, "dimension %lld does not broadcast to %lld", (long long)have, (long long)want);
        dims[k] = have != 1 ? have : want;
    }
    value *y = define(im, im->at->output[0]);
    nf_status st = y ? make_const(im, y, rank, dims, x->is_int) : im->err->code;
    for (int64_t e = 0; st == NF_OK && batch < 0 && e < y->count; e++) {
        int64_t rest = e, at = 0, stride = 1;
        for (int k = rank - 1; k >= 0; k--) {
            int64_t i = rest % dims[k];
            rest /= dims[k];
            int kx = k - (rank - x->rank);
            if (kx >= 0) {
                at += (x->dims[kx] == 1 ? 0 : i) * stride;
                stride *= x->dims[kx];
            }
        }
        if (x->is_int)
            y->i[e] = x->i[at];
        else
            y->f[e] = x->f[at];
    }
    if (st == NF_OK && batch >= 0)
        y->zeros = 1, y->zeros_batch_axis = batch;
    return st;
}

/* The bounds of a Slice along one axis of size n: [*from, *to) by step
 * (ONNX clamps them; a negative step walks back). */
static void slice_bounds(int64_t start, int64_t end, int64_t step, int64_t n, int64_t *from, int64_t *to)
{
    start = start < 0 ? start + n : start;
    end = end < 0 ? end + n : end;
    if (step > 0) {
        *from = start < 0 ? 0 : start > n ? n : start;
        *to = end < 0 ? 0 : end > n ? n : end;
    } else {
        *from = start < 0 ? (n > 0 ? 0 : -1) : start > n - 1 ? n - 1 : start;
        *to = end < -1 ? -1 : end > n - 1 ? n - 1 : end;
    }
}

/* Slice (starts, ends, axes, steps as constant inputs, or attributes
 * before opset 10): of a constant, or of zeros along axes other than the
 * batch's, folded; of a node, along per-sample axes with step 1. */
static nf_status map_slice(importer *im)
{
    value *x = input(im, 0);
    if (!x)
        return im->err->code;
    int64_t starts[MAX_DIMS], ends[MAX_DIMS], axes[MAX_DIMS], steps[MAX_DIMS];
    int n = 0, n_axes = 0, n_steps = 0;
    nf_status st = NF_OK;
    if (im->opset < 10) {
        n = attr_ints(im, "starts", starts, MAX_DIMS, &st);
        if (st == NF_OK && attr_ints(im, "ends", ends, MAX_DIMS, &st) != n && st == NF_OK)
            return fail(im, "starts and ends differ in length");
        if (st == NF_OK)
            n_axes = attr_ints(im, "axes", axes, MAX_DIMS, &st);
        if (st == NF_OK && n_axes && n_axes != n)
            return fail(im, "starts, ends and axes differ in length");
    } else {
        int64_t *lists[4] = {starts, ends, axes, steps};
        int counts[4] = {0, 0, 0, 0};
        for (int k = 0; k < 4 && st == NF_OK; k++) {
            if (!has_input(im, k + 1)) {
                if (k < 2)
                    return fail(im, "starts and ends are required");
                continue;
            }
            value *c = const_input(im, k + 1);
            if (!c)
                return im->err->code;
            if (!c->is_int || c->rank != 1 || c->count > MAX_DIMS)
                return fail(im, "input %d must be at most %d integers", k + 2, MAX_DIMS);
            counts[k] = (int)c->count;
            memcpy(lists[k], c->i, (size_t)c->count * sizeof(int64_t));
        }
        n = counts[0], n_axes = counts[2], n_steps = counts[3];
        if (counts[1] != n || (n_axes && n_axes != n) || (n_steps && n_steps != n))
            return fail(im, "starts, ends, axes and steps differ in length");
    }
    if (st != NF_OK)
        return st;
    int rank = x->node ? 0 : x->rank;
    nf_shape s = {0, {0}};
    if (x->node) {
        if ((st = shape_of(im, x->node, &s)) != NF_OK)
            return st;
        rank = onnx_rank(x, &s);
    }
    int64_t dims[MAX_DIMS], from[MAX_DIMS], step[MAX_DIMS];
    for (int k = 0; k < rank; k++) { /* the whole axis unless sliced */
        dims[k] = x->node ? (k == x->batch_axis ? -1 : s.dim[sample_axis(x, k)]) : x->dims[k];
        from[k] = 0, step[k] = 1;
    }
    int64_t out[MAX_DIMS];
    memcpy(out, dims, sizeof out);
    for (int j = 0; j < n; j++) {
        int64_t a = n_axes ? axes[j] : j, stp = n_steps ? steps[j] : 1;
        a = a < 0 ? a + rank : a;
        if (a < 0 || a >= rank || stp == 0 || stp > ((int64_t)1 << 31) || stp < -((int64_t)1 << 31))
            return fail(im, "axis %lld or step %lld does not fit", (long long)(n_axes ? axes[j] : j), (long long)stp);
        int batch_here = x->node ? a == x->batch_axis : x->zeros && a == x->zeros_batch_axis;
        if (batch_here) {
            if (starts[j] != 0 || stp != 1 || ends[j] < (int64_t)1 << 31)
                return fail(im, "slicing the batch axis");
            continue;
        }
        int64_t lo, hi;
        slice_bounds(starts[j], ends[j], stp, dims[a], &lo, &hi);
        from[a] = lo, step[a] = stp;
        out[a] = stp > 0 ? (hi > lo ? (hi - lo + stp - 1) / stp : 0) : (lo > hi ? (lo - hi - stp - 1) / -stp : 0);
    }
    if (x->node) { /* one slice node per cut axis */
        nf_node *y = x->node;
        for (int a = 0; a < rank; a++) {
            if (a == x->batch_axis || (out[a] == dims[a] && from[a] == 0 && step[a] == 1))
                continue;
            if (step[a] != 1 || out[a] == 0)
                return fail(im, "a step other than 1, or an empty slice, of computed values");
            y = add(im, "slice", 1, &y, "_slice");
            int pa = sample_axis(x, a);
            if ((st = set(im, y, "axis", "%d", pa)) != NF_OK ||
                (st = set(im, y, "start", "%lld", (long long)from[a])) != NF_OK ||
                (st = set(im, y, "end", "%lld", (long long)(from[a] + out[a]))) != NF_OK)
                return st;
        }
        return define_like(im, 0, y, x);
    }
    value *y = define(im, im->at->output[0]);
    if (!y || (st = make_const(im, y, rank, out, x->is_int)) != NF_OK)
        return y ? st : im->err->code;
    y->zeros = x->zeros, y->zeros_batch_axis = x->zeros_batch_axis;
    for (int64_t e = 0; e < y->count; e++) { /* element e of the result, from x */
        int64_t rest = e, at = 0, stride = 1;
        for (int a = rank - 1; a >= 0; a--) {
            int64_t i = rest % out[a];
            rest /= out[a];
            at += (from[a] + i * step[a]) * stride;
            stride *= dims[a];
        }
        if (x->is_int)
            y->i[e] = x->i[at];
        else
            y->f[e] = x->f[at];
    }
    return NF_OK;
}

static nf_status map_reduce_mean(importer *im);
static nf_status map_reduce(importer *im);

static const struct {
    const char *op;
    mapper map;
} operators[] = {
    {"Add", map_binary},
    {"AveragePool", map_pool},
    {"BatchNormalization", map_batchnorm},
    {"Clip", map_clip},
    {"Cast", map_cast},
    {"Concat", map_concat},
    {"Constant", map_constant},
    {"ConstantOfShape", map_constant_of_shape},
    {"Conv", map_conv},
    {"Div", map_binary},
    {"Dropout", map_identity},
    {"Elu", map_activation},
    {"Erf", map_activation},
    {"Sqrt", map_activation},
    {"Exp", map_activation},
    {"Log", map_activation},
    {"Abs", map_activation},
    {"Mod", map_mod},
    {"Neg", map_neg_reciprocal},
    {"Pow", map_pow},
    {"Reciprocal", map_neg_reciprocal},
    {"Pad", map_pad},
    {"ConvTranspose", map_conv_transpose},
    {"Expand", map_expand},
    {"Flatten", map_flatten},
    {"Gather", map_gather},
    {"Gemm", map_gemm},
    {"GlobalAveragePool", map_global_pool},
    {"GRU", map_recurrent},
    {"Identity", map_identity},
    {"LayerNormalization", map_layernorm},
    {"LeakyRelu", map_activation},
    {"LogSoftmax", map_softmax},
    {"LSTM", map_recurrent},
    {"MatMul", map_matmul},
    {"MaxPool", map_pool},
    {"OneHot", map_one_hot},
    {"Mul", map_binary},
    {"Relu", map_activation},
    {"ReduceMean", map_reduce_mean},
    {"ReduceSum", map_reduce},
    {"ReduceMax", map_reduce},
    {"ReduceMin", map_reduce},
    {"ArgMax", map_reduce},
    {"ArgMin", map_reduce},
    {"Reshape", map_reshape},
    {"Shape", map_shape},
    {"Slice", map_slice},
    {"Sigmoid", map_activation},
    {"Softmax", map_softmax},
    {"Softplus", map_activation},
    {"Squeeze", map_squeeze},
    {"Sub", map_binary},
    {"Tanh", map_activation},
    {"Transpose", map_transpose},
    {"Unsqueeze", map_squeeze},
};

/* ---- the layer norm that opsets before 17 spell out ------------------------------ */

/* The one node after `at` that reads value `name` and is of operator
 * `op`, when nothing else reads it (no other node, no graph output):
 * its index, else -1. */
static long sole_reader(const importer *im, const char *name, const char *op)
{
    const Onnx__GraphProto *gp = im->graph;
    long found = -1;
    for (size_t k = 0; k < gp->n_output; k++)
        if (gp->output[k]->name && !strcmp(gp->output[k]->name, name))
            return -1;
    for (size_t k = 0; k < gp->n_node; k++)
        for (size_t i = 0; i < gp->node[k]->n_input; i++) {
            if (strcmp(gp->node[k]->input[i], name))
                continue;
            if (found >= 0 || k <= im->node_index || !gp->node[k]->op_type || strcmp(gp->node[k]->op_type, op) ||
                gp->node[k]->n_output < 1)
                return -1;
            found = (long)k;
        }
    return found;
}

/* Node k's input i as a constant scalar in *got: a value known already,
 * or a Constant node that comes later than `at` (not mapped yet). */
static int scalar_input(importer *im, size_t k, size_t i, double *got)
{
    const Onnx__NodeProto *n = im->graph->node[k];
    if (i >= n->n_input)
        return 0;
    const value *c = find(im, n->input[i]);
    if (c) {
        if (c->node || c->zeros || c->count != 1 || (c->is_int && batch_multiple(c->i[0])))
            return 0;
        *got = const_at(c, 0);
        return 1;
    }
    for (size_t j = 0; j < k; j++) {
        const Onnx__NodeProto *def = im->graph->node[j];
        if (def->n_output && !strcmp(def->output[0], n->input[i]) && def->op_type &&
            !strcmp(def->op_type, "Constant") && def->n_attribute == 1 && def->attribute[0]->t) {
            value tmp = {0};
            int ok = read_tensor(im, def->attribute[0]->t, &tmp) == NF_OK && tmp.count == 1;
            if (ok)
                *got = const_at(&tmp, 0);
            free(tmp.f);
            free(tmp.i);
            return ok;
        }
    }
    return 0;
}

/* The node that reduces the last `count` axes of y for ReduceMean,
 * ReduceSum (layernorm output=mean, times `items` for a sum), ReduceMax,
 * ReduceMin, ArgMax and ArgMin (reduce_max); the reduced axes stay as 1s. */
static nf_status reducing_node(importer *im, nf_node *y, int count, int64_t items, nf_node **out)
{
    const char *op = im->at->op_type;
    int mean = !strcmp(op, "ReduceMean"), sum = !strcmp(op, "ReduceSum"), arg = !strncmp(op, "Arg", 3);
    nf_status st;
    if (mean || sum) {
        nf_node *m = add(im, "layernorm", 1, &y, sum ? "_mean" : NULL);
        if ((st = set(im, m, "axes", "%d", count)) != NF_OK || (st = set(im, m, "affine", "false")) != NF_OK ||
            (st = set(im, m, "output", "mean")) != NF_OK)
            return st;
        *out = m;
        if (sum && (st = set(im, *out = add(im, "scale", 1, &m, NULL), "factor", "%lld", (long long)items)) != NF_OK)
            return st;
        return NF_OK;
    }
    *out = add(im, "reduce_max", 1, &y, NULL);
    int64_t last = arg ? attr_int(im, "select_last_index", 0) : 0;
    if ((st = set(im, *out, "axes", "%d", count)) != NF_OK ||
        (st = set(im, *out, "min", "%s", strstr(op, "Min") ? "true" : "false")) != NF_OK ||
        (arg && (st = set(im, *out, "output", "indices")) != NF_OK) ||
        (st = set(im, *out, "last", "%s", last ? "true" : "false")) != NF_OK)
        return st;
    return NF_OK;
}

/* ReduceMean, ReduceSum, ReduceMax, ReduceMin over per-sample axes (or
 * any, with whole inputs), and ArgMax, ArgMin along one: the reduced axes
 * moved last (a permute), the reducing node over them, then the shape
 * with them as 1s (keepdims) or without them (a reshape). */
static nf_status map_reduce(importer *im)
{
    static const char *const known[] = {"axes", "keepdims", "noop_with_empty_axes", NULL};
    static const char *const known_arg[] = {"axis", "keepdims", "select_last_index", NULL};
    value *x;
    nf_shape s;
    int arg = !strncmp(im->at->op_type, "Arg", 3);
    nf_status st = start_node(im, arg ? known_arg : known, 1, &x, &s);
    if (st != NF_OK)
        return st;
    int sum = !strcmp(im->at->op_type, "ReduceSum"), rank = onnx_rank(x, &s), n = 0;
    int64_t axes[MAX_DIMS];
    if (arg) {
        axes[0] = attr_int(im, "axis", 0), n = 1;
    } else if (sum && im->opset >= 13) { /* (the axes became an input) */
        value *a = has_input(im, 1) ? const_input(im, 1) : NULL;
        if (has_input(im, 1) && !a)
            return im->err->code;
        if (a && (!a->is_int || a->rank > 1 || a->count > MAX_DIMS))
            return fail(im, "axes must be at most %d integers", MAX_DIMS);
        n = a ? (int)a->count : 0;
        for (int k = 0; k < n; k++)
            axes[k] = a->i[k];
    } else if ((n = attr_ints(im, "axes", axes, MAX_DIMS, &st)) < 0 || st != NF_OK) {
        return st;
    }
    if (x->merged)
        return fail(im, "the input's batch axis is merged with others");
    if (x->integer && (sum || !strcmp(im->at->op_type, "ReduceMean")))
        return fail(im, "%s of integer values (ONNX computes it in integers) is not supported", im->at->op_type);
    if (n == 0 && attr_int(im, "noop_with_empty_axes", 0))
        return define_like(im, 0, x->node, x);
    int reduced[MAX_DIMS] = {0};
    for (int k = 0; k < (n ? n : rank); k++) { /* (no axes: all of them) */
        int64_t a = n ? (axes[k] < 0 ? axes[k] + rank : axes[k]) : k;
        if (a < 0 || a >= rank || reduced[a]++)
            return fail(im, "axes: %lld is not an axis, or named twice", (long long)(n ? axes[k] : k));
        if (a == x->batch_axis)
            return fail(im, "a reduction over the batch axis (%lld) needs whole inputs", (long long)a);
    }
    int order[NF_MAX_RANK], m = 0, count_reduced = 0, keepdims = attr_int(im, "keepdims", 1) != 0;
    int64_t items = 1;
    nf_shape kept = {0, {0}};
    for (int pass = 0; pass < 2; pass++) /* the kept per-sample axes, then the reduced */
        for (int a = 0; a < rank; a++)
            if (a != x->batch_axis && reduced[a] == pass)
                order[m++] = sample_axis(x, a);
    for (int a = 0; a < rank; a++) {
        if (a == x->batch_axis)
            continue;
        int64_t d = s.dim[sample_axis(x, a)];
        if (reduced[a])
            items *= d, count_reduced++;
        if (!reduced[a] || keepdims)
            kept.dim[kept.rank++] = reduced[a] ? 1 : d;
    }
    nf_node *y = x->node;
    int moved = 0;
    for (int k = 0; k < m; k++)
        moved |= order[k] != k;
    if (moved) {
        char text[64];
        int used = 0;
        for (int k = 0; k < m; k++)
            used += snprintf(text + used, sizeof text - (size_t)used, "%s%d", k ? "," : "", order[k]);
        y = add(im, "permute", 1, &y, "_last");
        if ((st = set(im, y, "order", "%s", text)) != NF_OK)
            return st;
    }
    if ((st = reducing_node(im, y, count_reduced, items, &y)) != NF_OK)
        return st;
    int batch = x->batch_axis; /* (keepdims=0 shifts it down by the reduced axes before it) */
    for (int a = 0; !keepdims && batch != NO_BATCH && a < x->batch_axis; a++)
        batch -= reduced[a];
    if ((st = reshaped(im, y, &kept, "_kept", &y)) != NF_OK)
        return st;
    return define_output(im, 0, y, batch);
}

/* The ReduceMean of x over its last axis that starts PyTorch's layer norm
 * before opset 17: d = x - mean; var = ReduceMean(d^2); y = d /
 * sqrt(var + eps), each value read by the next step alone. The whole
 * chain becomes one layernorm node (no affine; the Mul and Add of the
 * weight and bias that follow map as they are). Other ReduceMeans are
 * reductions (map_reduce). */
static nf_status map_reduce_mean(importer *im)
{
    long first = sole_reader(im, im->at->output[0], "Sub");
    const Onnx__NodeProto *sub_node = first >= 0 ? im->graph->node[first] : NULL;
    if (!sub_node || sub_node->n_input != 2 || im->at->n_input < 1 || strcmp(sub_node->input[0], im->at->input[0]) ||
        strcmp(sub_node->input[1], im->at->output[0]))
        return map_reduce(im);
    static const char *const known[] = {"axes", "keepdims", NULL};
    value *x;
    nf_shape s;
    nf_status st = start_node(im, known, 1, &x, &s);
    if (st != NF_OK)
        return st;
    int64_t axes[MAX_DIMS];
    int n = attr_ints(im, "axes", axes, MAX_DIMS, &st), rank = onnx_rank(x, &s);
    if (st != NF_OK)
        return st;
    if (n != 1 || (axes[0] != -1 && axes[0] != rank - 1) || !attr_int(im, "keepdims", 1) || x->merged ||
        x->batch_axis == rank - 1 || s.rank < 1)
        return fail(im, "ReduceMean maps only as the start of a layer norm over the last axis "
                    "((x - mean) / sqrt(mean((x - mean)^2) + eps))");
    Onnx__NodeProto *const *nodes = im->graph->node;
    long sub = first, pow, mean2, plus, root, div; /* (x - mean: checked above) */
    /* d is read by Pow (or Mul) and by Div: two readers */
    const char *d = nodes[sub]->output[0];
    long readers[2] = {-1, -1}, found = 0;
    for (size_t k = 0; k < im->graph->n_node && found <= 2; k++)
        for (size_t i = 0; i < nodes[k]->n_input; i++)
            if (!strcmp(nodes[k]->input[i], d)) {
                if (found < 2)
                    readers[found] = (long)k;
                found++;
                break;
            }
    double two = 0, eps = 0;
    pow = found == 2 && nodes[readers[0]]->n_output ? readers[0] : -1;
    div = found == 2 && nodes[readers[1]]->n_output ? readers[1] : -1;
    int squares = pow >= 0 && nodes[pow]->op_type &&
                  ((!strcmp(nodes[pow]->op_type, "Pow") && scalar_input(im, (size_t)pow, 1, &two) && two == 2) ||
                   (!strcmp(nodes[pow]->op_type, "Mul") && nodes[pow]->n_input == 2 &&
                    !strcmp(nodes[pow]->input[0], d) && !strcmp(nodes[pow]->input[1], d)));
    mean2 = squares ? sole_reader(im, nodes[pow]->output[0], "ReduceMean") : -1;
    plus = mean2 >= 0 ? sole_reader(im, nodes[mean2]->output[0], "Add") : -1;
    root = plus >= 0 && scalar_input(im, (size_t)plus, 1, &eps) ? sole_reader(im, nodes[plus]->output[0], "Sqrt")
                                                                  : -1;
    if (root < 0 || sole_reader(im, nodes[root]->output[0], "Div") != div || !nodes[div]->op_type ||
        strcmp(nodes[div]->op_type, "Div") || strcmp(nodes[div]->input[0], d) || !(eps > 0 && eps < 1))
        return fail(im, "ReduceMean maps only as the start of a layer norm: (x - mean) / sqrt(mean((x - mean)^2) "
                    "+ eps) with eps between 0 and 1, each step read by the next alone");
    for (size_t a = 0; a < nodes[mean2]->n_attribute; a++) /* the variance's mean over the same axis */
        if (nodes[mean2]->attribute[a]->name && !strcmp(nodes[mean2]->attribute[a]->name, "keepdims") &&
            !nodes[mean2]->attribute[a]->i)
            return fail(im, "the variance's ReduceMean drops the axis");
    int64_t axes2[MAX_DIMS];
    const Onnx__NodeProto *at = im->at;
    im->at = nodes[mean2];
    int n2 = attr_ints(im, "axes", axes2, MAX_DIMS, &st);
    im->at = at;
    if (st != NF_OK || n2 != 1 || axes2[0] != axes[0])
        return fail(im, "the variance's ReduceMean is over other axes");
    nf_node *y = add(im, "layernorm", 1, &x->node, NULL);
    if ((st = set(im, y, "axes", "1")) != NF_OK || (st = set_float(im, y, "eps", eps)) != NF_OK ||
        (st = set(im, y, "affine", "false")) != NF_OK)
        return st;
    long chain[] = {sub, pow, mean2, plus, root, div};
    for (size_t k = 0; k < sizeof chain / sizeof chain[0]; k++)
        im->done[chain[k]] = 1;
    im->at = nodes[div]; /* (y is the Div's output) */
    st = define_like(im, 0, y, x);
    im->at = at;
    return st;
}

/* Operators whose opset-1 form is the one mapped here (older models are
 * read when they use only these; Relu and the like lost an attribute,
 * consumed_inputs, which is refused when present). */
static int same_since_opset_1(const char *op)
{
    static const char *const ops[] = {"GlobalAveragePool", "Transpose", "Identity", "Softmax", "LogSoftmax",
                                      "Flatten", "Relu", "Sigmoid", "Tanh", "LeakyRelu", "Elu", NULL};
    return one_of(op, ops);
}

/* A node of domain ai.nodeflow (a call of a function nodeflow's export
 * writes for a node type ONNX lacks): the node itself, of type
 * nodeflow_op, its attributes from the call's (as text), its parameters
 * the constant inputs after the data inputs, named by nodeflow_params.
 * The function's body is not read. */
static nf_status map_nodeflow(importer *im)
{
    static const char *const types[] = {"gelu", "silu", "softplus", "mod", "attention", NULL};
    const Onnx__AttributeProto *params = attribute(im, "nodeflow_params");
    char buf[16];
    const char *type = attr_str(im, "nodeflow_op", "", buf, sizeof buf);
    if (!one_of(type, types))
        return fail(im, "a node of domain %s needs nodeflow_op, one of gelu, silu, softplus, mod, attention",
                    NODEFLOW_DOMAIN);
    size_t n_params = params ? params->n_strings : 0;
    if (n_params >= im->at->n_input || im->at->n_input - n_params > NF_MAX_INPUTS)
        return fail(im, "%zu inputs for %zu parameters", im->at->n_input, n_params);
    int n_data = (int)(im->at->n_input - n_params);
    nf_node *in[NF_MAX_INPUTS];
    value *first = NULL;
    for (int k = 0; k < n_data; k++) {
        value *v = node_input(im, k);
        if (!v)
            return im->err->code;
        if (first && !same_layout(first, v))
            return fail(im, "its inputs hold their batch differently");
        first = first ? first : v;
        in[k] = v->node;
    }
    nf_node *y = add(im, type, n_data, in, NULL);
    nf_status st = y ? NF_OK : nf_graph_status(im->g, im->err);
    for (size_t k = 0; st == NF_OK && k < im->at->n_attribute; k++) {
        const Onnx__AttributeProto *a = im->at->attribute[k];
        if (!a->name || !strcmp(a->name, "nodeflow_op") || !strcmp(a->name, "nodeflow_params"))
            continue;
        if (!a->has_s || a->s.len > 64)
            return fail(im, "attribute '%s' must be the text of a value", a->name ? a->name : "");
        st = set(im, y, a->name, "%.*s", (int)a->s.len, (const char *)a->s.data);
    }
    for (size_t k = 0; st == NF_OK && k < n_params; k++) {
        value *w = const_input(im, n_data + (int)k);
        char suffix[64];
        if (!w)
            return im->err->code;
        if (w->is_int || params->strings[k].len >= sizeof suffix)
            return fail(im, "parameter %zu must be floats, named in fewer than 64 bytes", k + 1);
        memcpy(suffix, params->strings[k].data, params->strings[k].len);
        suffix[params->strings[k].len] = 0;
        st = give_weight(im, y, suffix, w->f, w->count);
    }
    return st == NF_OK ? define_node(im, y) : st;
}

/* The element type of an operator's computed outputs, as far as it
 * matters here (integer; uint8 or uint16, which wrap): that of its data,
 * input 0, or for the element-wise operators and Concat, whose inputs
 * share one type, any computed input (constants folded from uint8 or
 * uint16 ones keep that type). Cast, Shape and Size change the type (to
 * float here), OneHot's is that of its values, and MaxPool's Indices and
 * ArgMax's are int64. */
static void keep_integer_types(importer *im)
{
    static const char *const changes_type[] = {"Cast", "CastLike", "Shape", "Size", "OneHot", NULL};
    static const char *const same_type[] = {"Add", "Sub", "Mul", "Div", "Mod", "Concat", NULL};
    const Onnx__NodeProto *node = im->at;
    int integer = 0, bits = 0, any = 0;
    if (!strcmp(node->op_type, "OneHot") && node->n_input > 2) { /* of the type of its values */
        const value *values = find(im, node->input[2]);
        value *out = find(im, node->output[0]);
        if (values && out && out->node && values->is_int)
            out->integer = 1, out->wrap_bits = values->wrap_bits;
        return;
    }
    for (int k = 0; changes_type[k]; k++)
        if (!strcmp(node->op_type, changes_type[k]))
            return;
    for (int k = 0; same_type[k]; k++)
        any |= !strcmp(node->op_type, same_type[k]);
    for (size_t i = 0; i < (any ? node->n_input : 1) && i < node->n_input; i++) {
        const value *v = *node->input[i] ? find(im, node->input[i]) : NULL;
        integer |= v && v->node && v->integer;
        bits = v && (v->node || v->is_int) && v->wrap_bits > bits ? v->wrap_bits : bits;
    }
    for (size_t k = 0; k < node->n_output; k++) {
        value *v = *node->output[k] ? find(im, node->output[k]) : NULL;
        int indices = (k == 1 && !strcmp(node->op_type, "MaxPool")) || !strncmp(node->op_type, "Arg", 3);
        if (v && v->node) {
            v->integer = indices || integer;
            v->wrap_bits = indices ? 0 : bits;
        } else if (v && v->is_int && !v->wrap_bits) { /* a folded constant (Unsqueeze of a uint8 one) */
            v->wrap_bits = bits;
        }
    }
}

/* A tensor with no elements passes only through Reshape, Flatten and
 * Identity (as through nodeflow's reshape, flatten, copy): the other
 * mappers, like the other nodes, count on sizes of at least 1. */
static nf_status refuse_empty(importer *im)
{
    static const char *const takes_empty[] = {"Reshape", "Flatten", "Identity", NULL};
    for (int k = 0; takes_empty[k]; k++)
        if (!strcmp(im->at->op_type, takes_empty[k]))
            return NF_OK;
    for (size_t i = 0; i < im->at->n_input; i++) {
        const value *v = *im->at->input[i] ? find(im, im->at->input[i]) : NULL;
        nf_shape s;
        if (v && v->node && shape_of(im, v->node, &s) == NF_OK && nf_shape_size(&s) == 0)
            return fail(im, "input '%s' has no elements; only Reshape, Flatten and Identity take such a tensor",
                        v->name);
    }
    return NF_OK;
}

static nf_status map_node(importer *im, const Onnx__NodeProto *node)
{
    im->at = node;
    if (node->domain && !strcmp(node->domain, NODEFLOW_DOMAIN))
        return map_nodeflow(im);
    if (node->domain && *node->domain && strcmp(node->domain, "ai.onnx"))
        return fail(im, "operators of domain '%s' are not supported", node->domain);
    if (!node->op_type || !*node->op_type)
        return fail(im, "a node without an operator");
    if (node->n_output < 1)
        return fail(im, "it has no output");
    if (im->opset < 7 && !same_since_opset_1(node->op_type))
        return fail(im, "opset %lld of the default domain is supported (7 to 17 are) only for operators that have "
                    "not changed since (GlobalAveragePool, Transpose, Identity, Softmax...)", (long long)im->opset);
    nf_status empty = refuse_empty(im);
    if (empty != NF_OK)
        return empty;
    for (size_t k = 0; k < sizeof operators / sizeof operators[0]; k++)
        if (node->op_type && !strcmp(node->op_type, operators[k].op)) {
            nf_status st = operators[k].map(im);
            if (st == NF_OK)
                keep_integer_types(im);
            return st;
        }
    return fail(im, "the operator is not supported (docs/onnx.md lists those that are)");
}

/* ---- nesting ---------------------------------------------------------------- */

enum { MAX_NESTING = 64 };

/* A varint at *p (before end): its value, *p moved past it; 0 at a
 * malformed one (*ok cleared). */
static uint64_t read_varint(const uint8_t **p, const uint8_t *end, int *ok)
{
    uint64_t v = 0;
    for (int shift = 0; shift < 64 && *p < end; shift += 7) {
        uint8_t b = *(*p)++;
        v |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80))
            return v;
    }
    *ok = 0;
    return 0;
}

/* Whether the messages of a serialized `desc` nest at most MAX_NESTING
 * deep. protobuf-c decodes nested messages by recursion, with no limit
 * of its own: a small file of deeply nested TypeProtos would exhaust the
 * stack. This walks the wire format with a stack of its own, descending
 * into the fields the descriptors say are messages; anything malformed
 * is left for protobuf-c to refuse. */
static int nesting_ok(const uint8_t *data, size_t size, const ProtobufCMessageDescriptor *desc)
{
    struct {
        const uint8_t *end;
        const ProtobufCMessageDescriptor *desc;
    } stack[MAX_NESTING + 1];
    int depth = 0, ok = 1;
    const uint8_t *p = data;
    stack[0].end = data + size, stack[0].desc = desc;
    while (ok) {
        if (p >= stack[depth].end) {
            if (depth == 0)
                return 1;
            p = stack[depth--].end;
            continue;
        }
        uint64_t key = read_varint(&p, stack[depth].end, &ok);
        int wire = (int)(key & 7);
        if (!ok || key >> 3 > UINT32_MAX)
            return 1;
        if (wire == 0) {
            read_varint(&p, stack[depth].end, &ok);
        } else if (wire == 1 || wire == 5) {
            size_t n = wire == 1 ? 8 : 4;
            if ((size_t)(stack[depth].end - p) < n)
                return 1;
            p += n;
        } else if (wire == 2) {
            uint64_t len = read_varint(&p, stack[depth].end, &ok);
            if (!ok || len > (uint64_t)(stack[depth].end - p))
                return 1;
            const ProtobufCFieldDescriptor *f =
                protobuf_c_message_descriptor_get_field(stack[depth].desc, (unsigned)(key >> 3));
            if (f && f->type == PROTOBUF_C_TYPE_MESSAGE) {
                if (depth == MAX_NESTING)
                    return 0;
                depth++;
                stack[depth].end = p + len, stack[depth].desc = f->descriptor;
                continue;
            }
            p += len;
        } else {
            return 1; /* (groups and bad wire types: protobuf-c refuses them) */
        }
    }
    return 1;
}

/* ---- the model ------------------------------------------------------------ */

static nf_status check_model(importer *im, const Onnx__ModelProto *m)
{
    if (!m->has_ir_version || m->ir_version < 3 || m->ir_version > 8)
        return fail(im, "IR version %lld is not supported (3 to 8 are)", (long long)m->ir_version);
    im->opset = -1;
    for (size_t k = 0; k < m->n_opset_import; k++) {
        const Onnx__OperatorSetIdProto *o = m->opset_import[k];
        if (o->domain && !strcmp(o->domain, NODEFLOW_DOMAIN)) { /* nodeflow's own node types (its exports) */
            if (!o->has_version || o->version != 1)
                return fail(im, "operator set '%s' version %lld is not supported (1 is)", o->domain,
                            (long long)(o->has_version ? o->version : -1));
            continue;
        }
        if (o->domain && *o->domain && strcmp(o->domain, "ai.onnx"))
            return fail(im, "operator set '%s' is not supported (the default domain and %s are)", o->domain,
                        NODEFLOW_DOMAIN);
        im->opset = o->has_version ? o->version : -1;
    }
    if (im->opset < 1 || im->opset > 17)
        return fail(im, "opset %lld of the default domain is not supported (7 to 17 are)", (long long)im->opset);
    if (!m->graph)
        return fail(im, "the model has no graph");
    return NF_OK;
}

/* The value bound to input `name` by the options, or NULL. */
static const nf_tensor *bound_value(const importer *im, const char *name)
{
    for (int k = 0; k < im->options.n_bound; k++)
        if (im->options.bound_names[k] && !strcmp(im->options.bound_names[k], name))
            return &im->options.bound_values[k];
    return NULL;
}

/* A bound input as a constant (integers when the input is). */
static nf_status bind_input(importer *im, const char *name, const Onnx__TypeProto__Tensor *tt, const nf_tensor *t,
                            int is_int)
{
    if (!t->data || t->shape.rank < 0 || t->shape.rank > NF_MAX_RANK)
        return nf_fail(im->err, NF_ERR_INVALID_ARGUMENT, "%s: the value bound to input '%s' has no data or rank %d",
                       im->file, name, t->shape.rank);
    int same = tt->shape && tt->shape->n_dim == (size_t)t->shape.rank;
    for (int k = 0; same && k < t->shape.rank; k++) {
        const Onnx__TensorShapeProto__Dimension *d = tt->shape->dim[k];
        same = t->shape.dim[k] >= 0 && (d->value_case != ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE ||
                                        d->dim_value == t->shape.dim[k]);
    }
    if (!same)
        return nf_fail(im->err, NF_ERR_INVALID_ARGUMENT, "%s: the value bound to input '%s' does not have its shape",
                       im->file, name);
    value *v = define(im, name);
    nf_status st = v ? make_const(im, v, t->shape.rank, t->shape.dim, is_int) : im->err->code;
    for (int64_t k = 0; st == NF_OK && k < v->count; k++) {
        if (!is_int)
            v->f[k] = t->data[k];
        else if (!(fabsf(t->data[k]) < 9.2e18f) || t->data[k] != floorf(t->data[k]))
            return nf_fail(im->err, NF_ERR_INVALID_ARGUMENT, "%s: input '%s' takes integers, not %g", im->file,
                           name, (double)t->data[k]);
        else
            v->i[k] = (int64_t)t->data[k];
    }
    return st;
}

/* Where a graph input has its batch: axis 1 when an LSTM or GRU reads it
 * as X in the time-major layout (layout 0: [T, batch, features]), else 0. */
static int input_batch_axis(const Onnx__GraphProto *gp, const char *name)
{
    for (size_t k = 0; k < gp->n_node; k++) {
        const Onnx__NodeProto *n = gp->node[k];
        if (!n->op_type || (strcmp(n->op_type, "LSTM") && strcmp(n->op_type, "GRU")) || n->n_input < 1 ||
            strcmp(n->input[0], name))
            continue;
        int64_t layout = 0;
        for (size_t a = 0; a < n->n_attribute; a++)
            if (n->attribute[a]->name && !strcmp(n->attribute[a]->name, "layout"))
                layout = n->attribute[a]->i;
        return layout == 0;
    }
    return 0;
}

/* A graph input: a node of its known dimensions with the batch axis
 * (first, or second for time-major recurrent input) left out, or of its
 * whole fixed shape with whole inputs; or the constant bound to it.
 * Floats, and integers (token ids) fed as floats. */
static nf_status add_input(importer *im, const Onnx__GraphProto *gp, const Onnx__ValueInfoProto *in)
{
    const char *name = in->name ? in->name : "";
    const Onnx__TypeProto *t = in->type;
    if (!t || t->value_case != ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE || !t->tensor_type)
        return fail(im, "input '%s' is not a tensor (sequences and maps are not supported)", name);
    const Onnx__TypeProto__Tensor *tt = t->tensor_type;
    int type = tt->has_elem_type ? tt->elem_type : 0;
    int is_int = type == ONNX__TENSOR_PROTO__DATA_TYPE__INT64 || type == ONNX__TENSOR_PROTO__DATA_TYPE__INT32;
    int wrap_bits = wrap_bits_of(type);
    const nf_tensor *bound = bound_value(im, name);
    if (bound && (type == ONNX__TENSOR_PROTO__DATA_TYPE__BOOL || type == ONNX__TENSOR_PROTO__DATA_TYPE__INT8 ||
                  type == ONNX__TENSOR_PROTO__DATA_TYPE__UINT8 || type == ONNX__TENSOR_PROTO__DATA_TYPE__INT16 ||
                  type == ONNX__TENSOR_PROTO__DATA_TYPE__UINT16 || type == ONNX__TENSOR_PROTO__DATA_TYPE__UINT32))
        is_int = 1; /* (bound values of these are exact as floats) */
    if (type != ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT && type != ONNX__TENSOR_PROTO__DATA_TYPE__DOUBLE && !is_int &&
        !wrap_bits)
        return fail(im, "input '%s' has element type %d; float, int32, int64, uint8 and uint16 inputs are "
                    "supported%s", name, type, bound ? "" : " (bool and other integers when bound)");
    if (bound)
        return bind_input(im, name, tt, bound, is_int);
    if (type == ONNX__TENSOR_PROTO__DATA_TYPE__DOUBLE)
        return fail(im, "input '%s' has element type double; float, int32 and int64 inputs are supported", name);
    int whole = im->options.whole_inputs, rank = tt->shape ? (int)tt->shape->n_dim - !whole : -1;
    int batch = whole ? NO_BATCH : input_batch_axis(gp, name);
    if (rank < 1 || rank > NF_MAX_RANK || (batch == 1 && rank < 2))
        return fail(im, "input '%s' needs a shape of rank %d to %d%s", name, 2 - whole + (batch == 1),
                    NF_MAX_RANK + !whole,
                    whole ? "" : batch ? ", the second axis the batch" : ", the first axis the batch");
    int64_t dims[NF_MAX_RANK];
    for (int k = 0; k < rank; k++) {
        int axis = k < batch ? k : k + 1; /* (the batch's axis skipped) */
        const Onnx__TensorShapeProto__Dimension *d = tt->shape->dim[axis];
        if (d->value_case != ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE || d->dim_value < 0)
            return fail(im, "input '%s': axis %d has no fixed size (%s)", name, axis,
                        whole ? "whole inputs need them all" : "only the batch's may vary");
        dims[k] = d->dim_value;
    }
    char node_name_buf[NF_NAME_MAX];
    node_name(im, name, node_name_buf);
    value *v = define(im, name);
    if (!v)
        return im->err->code;
    v->batch_axis = batch;
    v->wrap_bits = wrap_bits;
    v->integer = is_int || wrap_bits;
    v->node = nf_input(im->g, node_name_buf, rank, dims);
    return v->node ? NF_OK : nf_graph_status(im->g, im->err);
}

/* A constant output of a whole-input model: a constant node. */
static nf_status constant_output(importer *im, const value *v, nf_node **out)
{
    if (!im->options.whole_inputs || v->zeros)
        return fail(im, "output '%s' is a constant%s", v->name,
                    im->options.whole_inputs ? " of the batch size's shape" : " (it may read with whole inputs)");
    return constant_node(im, v, out);
}

/* The weights gathered into the laid-out parameters. */
static nf_status copy_weights(importer *im)
{
    nf_status st = nf_graph_validate(im->g, im->err);
    for (int k = 0; st == NF_OK && k < im->n_weights; k++) {
        const weight *w = &im->weights[k];
        int p = nf_graph_find_param(im->g, w->name);
        nf_tensor value;
        if (p < 0 || nf_graph_param(im->g, p, NULL, &value, NULL) != NF_OK)
            return fail(im, "no parameter '%s' for the model's weights", w->name);
        if (nf_shape_size(&value.shape) != w->count)
            return fail(im, "parameter '%s' holds %lld values, the model gives %lld", w->name,
                        (long long)nf_shape_size(&value.shape), (long long)w->count);
        memcpy(value.data, w->data, (size_t)w->count * sizeof(float));
    }
    return st;
}

static nf_status import_graph(importer *im, const Onnx__GraphProto *gp)
{
    nf_status st = NF_OK;
    for (size_t k = 0; st == NF_OK && k < gp->n_initializer; k++) {
        const Onnx__TensorProto *t = gp->initializer[k];
        if (t->name && bound_value(im, t->name))
            continue; /* (an input with a default: the bound value replaces it) */
        value *v = define(im, t->name);
        st = v ? read_tensor(im, t, v) : im->err->code;
        if (v)
            v->initializer = 1;
    }
    for (int k = 0; st == NF_OK && k < im->options.n_bound; k++) {
        size_t j = 0;
        while (j < gp->n_input && (!gp->input[j]->name || !im->options.bound_names[k] ||
                                   strcmp(gp->input[j]->name, im->options.bound_names[k])))
            j++;
        if (j == gp->n_input)
            return nf_fail(im->err, NF_ERR_INVALID_ARGUMENT, "%s: no input '%s' to bind", im->file,
                           im->options.bound_names[k] ? im->options.bound_names[k] : "(null)");
    }
    for (size_t k = 0; st == NF_OK && k < gp->n_input; k++)
        if (!find(im, gp->input[k]->name)) /* (an initializer may be listed as an input too) */
            st = add_input(im, gp, gp->input[k]);
    im->graph = gp;
    if (st == NF_OK && !(im->done = calloc(gp->n_node + 1, 1)))
        st = no_memory(im);
    for (size_t k = 0; st == NF_OK && k < gp->n_node; k++)
        if (!im->done[k]) {
            im->node_index = k;
            st = map_node(im, gp->node[k]);
        }
    im->at = NULL;
    if (st == NF_OK && gp->n_output == 0)
        return fail(im, "the graph has no outputs");
    for (size_t k = 0; st == NF_OK && k < gp->n_output; k++) {
        const char *name = gp->output[k]->name ? gp->output[k]->name : "";
        value *v = find(im, name);
        if (!v || v->unusable)
            return fail(im, "output '%s' is %s", name, !v ? "not computed by any node" : v->unusable);
        nf_node *node = v->node;
        if (!node && (st = constant_output(im, v, &node)) != NF_OK)
            return st;
        if (v->node && v->merged)
            return fail(im, "output '%s' has its batch merged with other axes", name);
        int batch = !v->node || v->batch_axis == NO_BATCH ? -1 : v->batch_axis;
        if (batch > 0 && !im->options.output_batch_axes) /* (who cannot learn where it went is told so) */
            return fail(im, "output '%s' has the batch at axis %d; nodeflow's outputs have it first (nf_onnx_load_with "
                        "with output_batch_axes takes it so)", name, batch);
        if (im->options.output_batch_axes && k < (size_t)im->options.max_outputs)
            im->options.output_batch_axes[k] = batch;
        char out_name[NF_NAME_MAX];
        node_name(im, name, out_name);
        if (!nf_output(im->g, out_name, node))
            return nf_graph_status(im->g, im->err);
    }
    return st == NF_OK ? copy_weights(im) : st;
}

static void free_importer(importer *im)
{
    free(im->done);
    for (int k = 0; k < im->n_values; k++) {
        free(im->values[k]->f);
        free(im->values[k]->i);
        free(im->values[k]);
    }
    free(im->values);
    nf_name_index_free(&im->index);
    for (int k = 0; k < im->n_weights; k++)
        free(im->weights[k].data);
    free(im->weights);
}

int nf_onnx_available(void) { return 1; }

nf_status nf_onnx_parse_with(const void *data, size_t size, const char *name, const nf_onnx_options *options,
                             nf_graph **out, nf_error *err)
{
    if (!data || !out || (options && options->n_bound && (!options->bound_names || !options->bound_values)) ||
        (options && (options->n_bound < 0 || options->max_outputs < 0)))
        return nf_fail(err, NF_ERR_INVALID_ARGUMENT, "nf_onnx_parse: NULL argument or no bound values");
    *out = NULL;
    nf_error local;
    importer im = {.file = name ? name : "(memory)", .err = err ? err : &local};
    if (options)
        im.options = *options;
    nf_name_index_init(&im.index, value_name, NULL);
    if (!nesting_ok(data, size, &onnx__model_proto__descriptor))
        return fail(&im, "messages nested more than %d deep", MAX_NESTING);
    Onnx__ModelProto *m = onnx__model_proto__unpack(NULL, size, data);
    if (!m)
        return fail(&im, "not an ONNX model (the protobuf is malformed or truncated)");
    nf_status st = check_model(&im, m);
    if (st == NF_OK && !(im.g = nf_graph_new()))
        st = no_memory(&im);
    if (st == NF_OK)
        st = import_graph(&im, m->graph);
    free_importer(&im);
    onnx__model_proto__free_unpacked(m, NULL);
    if (st != NF_OK) {
        nf_graph_free(im.g);
        return st;
    }
    *out = im.g;
    return NF_OK;
}

nf_status nf_onnx_parse(const void *data, size_t size, const char *name, nf_graph **out, nf_error *err)
{
    return nf_onnx_parse_with(data, size, name, NULL, out, err);
}

nf_status nf_onnx_load_with(const char *path, const nf_onnx_options *options, nf_graph **out, nf_error *err)
{
    if (!path || !out)
        return nf_fail(err, NF_ERR_INVALID_ARGUMENT, "nf_onnx_load: NULL argument");
    char *data;
    size_t len;
    nf_status st = nf_read_file(path, nf_memory_limit(), &data, &len, err);
    if (st != NF_OK)
        return st;
    st = nf_onnx_parse_with(data, len, path, options, out, err);
    free(data);
    return st;
}

nf_status nf_onnx_load(const char *path, nf_graph **out, nf_error *err)
{
    return nf_onnx_load_with(path, NULL, out, err);
}

nf_status nf_onnx_tensor_parse(const void *data, size_t size, nf_shape *shape, float **values, nf_error *err)
{
    *values = NULL;
    nf_error local;
    importer im = {.file = "tensor", .err = err ? err : &local};
    if (!nesting_ok(data, size, &onnx__tensor_proto__descriptor))
        return fail(&im, "messages nested more than %d deep", MAX_NESTING);
    Onnx__TensorProto *t = onnx__tensor_proto__unpack(NULL, size, data);
    if (!t)
        return fail(&im, "not a TensorProto");
    value v = {0};
    nf_status st = read_tensor(&im, t, &v);
    onnx__tensor_proto__free_unpacked(t, NULL);
    if (st == NF_OK && v.rank > NF_MAX_RANK)
        st = fail(&im, "rank %d (at most %d)", v.rank, NF_MAX_RANK);
    if (st == NF_OK && v.is_int) { /* as floats */
        if (!(v.f = malloc((size_t)(v.count ? v.count : 1) * sizeof(float))))
            st = no_memory(&im);
        for (int64_t k = 0; st == NF_OK && k < v.count; k++)
            v.f[k] = (float)v.i[k];
    }
    free(v.i);
    if (st != NF_OK) {
        free(v.f);
        return st;
    }
    shape->rank = v.rank;
    for (int k = 0; k < v.rank; k++)
        shape->dim[k] = v.dims[k];
    *values = v.f;
    return NF_OK;
}

nf_status nf_onnx_op_types(const void *data, size_t size, char *out, size_t out_size, nf_error *err)
{
    nf_error local;
    importer im = {.file = "model", .err = err ? err : &local};
    if (!nesting_ok(data, size, &onnx__model_proto__descriptor))
        return fail(&im, "messages nested more than %d deep", MAX_NESTING);
    Onnx__ModelProto *m = onnx__model_proto__unpack(NULL, size, data);
    if (!m)
        return fail(&im, "not an ONNX model (the protobuf is malformed or truncated)");
    size_t n = 0;
    out[0] = '\0';
    for (size_t k = 0; m->graph && k < m->graph->n_node; k++) {
        const char *op = m->graph->node[k]->op_type ? m->graph->node[k]->op_type : "";
        char key[80];
        snprintf(key, sizeof key, ",%s,", op);
        char listed[4096];
        snprintf(listed, sizeof listed, ",%s,", out);
        if (strstr(listed, key) || n + strlen(op) + 2 >= out_size)
            continue;
        n += (size_t)snprintf(out + n, out_size - n, "%s%s", n ? "," : "", op);
    }
    onnx__model_proto__free_unpacked(m, NULL);
    return NF_OK;
}

nf_status nf_onnx_input_names(const void *data, size_t size, char *names, size_t name_size, int max, int *n,
                              int *batch_axes, nf_error *err)
{
    nf_error local;
    importer im = {.file = "model", .err = err ? err : &local};
    *n = 0;
    if (!nesting_ok(data, size, &onnx__model_proto__descriptor))
        return fail(&im, "messages nested more than %d deep", MAX_NESTING);
    Onnx__ModelProto *m = onnx__model_proto__unpack(NULL, size, data);
    if (!m || !m->graph) {
        onnx__model_proto__free_unpacked(m, NULL);
        return fail(&im, "not an ONNX model (the protobuf is malformed or truncated)");
    }
    const Onnx__GraphProto *gp = m->graph;
    for (size_t k = 0; k < gp->n_input && *n < max; k++) {
        const char *name = gp->input[k]->name ? gp->input[k]->name : "";
        int initializer = 0;
        for (size_t j = 0; j < gp->n_initializer && !initializer; j++)
            initializer = gp->initializer[j]->name && !strcmp(gp->initializer[j]->name, name);
        if (!initializer) {
            batch_axes[*n] = input_batch_axis(gp, name);
            snprintf(names + (size_t)(*n)++ * name_size, name_size, "%s", name);
        }
    }
    onnx__model_proto__free_unpacked(m, NULL);
    return NF_OK;
}
