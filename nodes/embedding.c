/* nodeflow — token ids to vectors: embedding (a learned table, PyTorch's
 * nn.Embedding) and one_hot. Ids arrive as floats (exact below 2^24);
 * an id outside [0, num) or not a whole number gives a vector of zeros
 * and no gradient (the text dataset never produces one). */
#include <math.h>
#include <string.h>

#include "nodes/op.h"

enum { EMB_NUM, EMB_DIM, EMB_INIT, EMB_VALUE };

static const nf_attr_spec embedding_attrs[] = {
    [EMB_NUM] = NF_ATTR_REQUIRED_INT("num", 1, 1 << 24, "number of ids (rows of the table)"),
    [EMB_DIM] = NF_ATTR_REQUIRED_INT("dim", 1, 1 << 20, "size of each vector"),
    [EMB_INIT] = NF_ATTR_ENUM_DEF("weight_init", NF_INIT_NORMAL, nf_init_names, "initialisation of the table"),
    [EMB_VALUE] = NF_ATTR_FLOAT_DEF("weight_value", 0, -1e30, 1e30, "std for normal (0: 1), value for constant"),
};

/* the row of id value v in a table of n rows, or -1 */
static int64_t row_of(float v, int64_t n)
{
    if (!(v >= 0.0f && v < (float)n) || v != floorf(v))
        return -1;
    return (int64_t)v;
}

/* output shape: the ids' shape with one more axis of `size` */
static nf_status ids_infer(nf_infer *ctx, int64_t size)
{
    const nf_shape *ids = ctx->in[0];
    if (ids->rank >= NF_MAX_RANK)
        return nf_infer_fail(ctx, NF_ERR_SHAPE, "input '%s' has too many axes", ctx->in_name[0]);
    int64_t out = nf_mul_checked(nf_shape_size(ids), size);
    if (out < 0 || out > NF_MAX_SAMPLE_ELEMENTS)
        return nf_infer_fail(ctx, NF_ERR_SHAPE, "its output would have more than 2^31 elements per sample");
    ctx->out = *ids;
    ctx->out.dim[ctx->out.rank++] = size;
    ctx->nondiff_inputs = 1u; /* ids get no gradient */
    return NF_OK;
}

static nf_status embedding_infer(nf_infer *ctx)
{
    int64_t num = (int64_t)ctx->attr[EMB_NUM], dim = (int64_t)ctx->attr[EMB_DIM];
    nf_status st = ids_infer(ctx, dim);
    if (st != NF_OK)
        return st;
    int64_t table = nf_mul_checked(num, dim);
    if (table < 0 || table > ((int64_t)1 << 34))
        return nf_infer_fail(ctx, NF_ERR_SHAPE, "table [%lld, %lld] is too large", (long long)num, (long long)dim);
    ctx->params[0] = (nf_param_spec){"weight", {2, {num, dim}}, (nf_init)ctx->attr[EMB_INIT],
                                     ctx->attr[EMB_VALUE], num, dim, 0};
    ctx->n_params = 1;
    return NF_OK;
}

/* y[i] = W[id_i] */
static void embedding_forward(const nf_exec *e)
{
    int64_t num = (int64_t)e->attr[EMB_NUM], dim = (int64_t)e->attr[EMB_DIM];
    int64_t n = e->batch * nf_shape_size(e->in_shape[0]);
    #pragma omp parallel for if (n * dim > NF_PARALLEL_MIN) schedule(static)
    for (int64_t i = 0; i < n; i++) {
        int64_t row = row_of(e->in[0][i], num);
        if (row < 0)
            memset(e->out + i * dim, 0, (size_t)dim * sizeof(float));
        else
            memcpy(e->out + i * dim, e->param[0] + row * dim, (size_t)dim * sizeof(float));
    }
}

/* dW[id_i] += dy[i] (serial: two positions may share an id) */
static void embedding_backward(const nf_exec *e)
{
    int64_t num = (int64_t)e->attr[EMB_NUM], dim = (int64_t)e->attr[EMB_DIM];
    int64_t n = e->batch * nf_shape_size(e->in_shape[0]);
    for (int64_t i = 0; i < n; i++) {
        int64_t row = row_of(e->in[0][i], num);
        if (row < 0)
            continue;
        float *dw = e->param_grad[0] + row * dim;
        for (int64_t j = 0; j < dim; j++)
            dw[j] += e->out_grad[i * dim + j];
    }
}

const nf_op nf_op_embedding = {
    .name = "embedding", .summary = "ids to rows of a learned table (PyTorch's nn.Embedding)",
    .min_inputs = 1, .max_inputs = 1,
    .attrs = embedding_attrs, .n_attrs = NF_COUNT(embedding_attrs),
    .flags = NF_OP_GRAD_NO_OUTPUT,
    .infer = embedding_infer, .forward = embedding_forward, .backward = embedding_backward,
};

static const nf_attr_spec one_hot_attrs[] = {
    NF_ATTR_REQUIRED_INT("classes", 1, 1 << 24, "length of each vector"),
};

static nf_status one_hot_infer(nf_infer *ctx) { return ids_infer(ctx, (int64_t)ctx->attr[0]); }

/* y[i] = e_{id_i} */
static void one_hot_forward(const nf_exec *e)
{
    int64_t classes = (int64_t)e->attr[0], n = e->batch * nf_shape_size(e->in_shape[0]);
    memset(e->out, 0, (size_t)(n * classes) * sizeof(float));
    for (int64_t i = 0; i < n; i++) {
        int64_t hot = row_of(e->in[0][i], classes);
        if (hot >= 0)
            e->out[i * classes + hot] = 1.0f;
    }
}

const nf_op nf_op_one_hot = {
    .name = "one_hot", .summary = "ids to one-hot vectors (no gradient)",
    .min_inputs = 1, .max_inputs = 1,
    .attrs = one_hot_attrs, .n_attrs = NF_COUNT(one_hot_attrs),
    .infer = one_hot_infer, .forward = one_hot_forward,
};
