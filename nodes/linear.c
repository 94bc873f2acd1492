/* nodeflow — matrix nodes: linear (a fully connected layer) and matmul.
 * Both hand their products to OpenBLAS sgemm. */
#include <math.h>
#include <string.h>


#include "kernels/kernels.h"
#include "nodes/op.h"

enum { LIN_OUT, LIN_IN, LIN_BIAS, LIN_WEIGHT_INIT, LIN_WEIGHT_VALUE, LIN_BIAS_INIT, LIN_BIAS_VALUE };

static const nf_attr_spec linear_attrs[] = {
    [LIN_OUT] = NF_ATTR_REQUIRED_INT("out", 1, 1 << 30, "output features"),
    [LIN_IN] = NF_ATTR_INT_DEF("in", 0, 0, 1 << 30, "input features; 0 infers them from the input"),
    [LIN_BIAS] = NF_ATTR_BOOL_DEF("bias", 1, "add a learned bias"),
    [LIN_WEIGHT_INIT] = NF_ATTR_ENUM_DEF("weight_init", 0, nf_init_names, "initialisation of the weight"),
    [LIN_WEIGHT_VALUE] = NF_ATTR_FLOAT_DEF("weight_value", 0, -1e30, 1e30, "value for weight_init=constant"),
    [LIN_BIAS_INIT] = NF_ATTR_ENUM_DEF("bias_init", 0, nf_init_names, "initialisation of the bias"),
    [LIN_BIAS_VALUE] = NF_ATTR_FLOAT_DEF("bias_value", 0, -1e30, 1e30, "value for bias_init=constant"),
};

static nf_status linear_infer(nf_infer *ctx)
{
    const nf_shape *x = ctx->in[0];
    if (x->rank < 1)
        return nf_infer_fail(ctx, NF_ERR_SHAPE, "input '%s' is a scalar per sample; linear needs features",
                             ctx->in_name[0]);
    int64_t in = x->dim[x->rank - 1], out = (int64_t)ctx->attr[LIN_OUT];
    int64_t want = (int64_t)ctx->attr[LIN_IN];
    if (want && want != in)
        return nf_infer_fail(ctx, NF_ERR_SHAPE, "input '%s' has %lld features, weight expects %lld",
                             ctx->in_name[0], (long long)in, (long long)want);
    int64_t weight = nf_mul_checked(in, out);
    if (weight < 0 || weight > ((int64_t)1 << 34))
        return nf_infer_fail(ctx, NF_ERR_SHAPE, "weight [%lld, %lld] is too large", (long long)out, (long long)in);
    ctx->out = *x;
    ctx->out.dim[x->rank - 1] = out;
    ctx->params[0] = (nf_param_spec){"weight", {2, {out, in}}, (nf_init)ctx->attr[LIN_WEIGHT_INIT],
                                     ctx->attr[LIN_WEIGHT_VALUE], in, out, 0};
    ctx->n_params = 1;
    if (ctx->attr[LIN_BIAS] != 0) {
        ctx->params[1] = (nf_param_spec){"bias", {1, {out}}, (nf_init)ctx->attr[LIN_BIAS_INIT],
                                         ctx->attr[LIN_BIAS_VALUE], in, out, 0};
        ctx->n_params = 2;
    }
    return NF_OK;
}

/* x is (rows, in), weight is (out, in), bias is (out): y = x W^T + b */
static void linear_forward(const nf_exec *e)
{
    int64_t out = e->out_shape->dim[e->out_shape->rank - 1];
    int64_t in = e->in_shape[0]->dim[e->in_shape[0]->rank - 1];
    int64_t rows = nf_rows(e, nf_shape_size(e->out_shape), out);
    const float *bias = e->node->n_params > 1 ? e->param[1] : NULL;
    if (bias) {
        /* start from the bias in every row, then let sgemm add x W^T */
        #pragma omp parallel for if (rows * out > NF_PARALLEL_MIN) schedule(static)
        for (int64_t r = 0; r < rows; r++)
            memcpy(e->out + r * out, bias, (size_t)out * sizeof(float));
    }
    if (rows == 1) /* one sample: a matrix-vector product is faster than sgemm */
        e->kernels->sgemv(out, in, 1.0f, e->param[0], in, e->in[0],
                          bias ? 1.0f : 0.0f, e->out);
    else
        e->kernels->sgemm(NF_NO_TRANS, NF_TRANS, rows, out, in, 1.0f, e->in[0],
                    in, e->param[0], in, bias ? 1.0f : 0.0f, e->out, out);
}

/* dx += dy W, dW += dy^T x, db += column sums of dy */
static void linear_backward(const nf_exec *e)
{
    int64_t out = e->out_shape->dim[e->out_shape->rank - 1];
    int64_t in = e->in_shape[0]->dim[e->in_shape[0]->rank - 1];
    int64_t rows = nf_rows(e, nf_shape_size(e->out_shape), out);
    const float *dy = e->out_grad;
    if (e->in_grad[0])
        e->kernels->sgemm(NF_NO_TRANS, NF_NO_TRANS, rows, in, out, 1.0f, dy,
                    out, e->param[0], in, 1.0f, e->in_grad[0], in);
    e->kernels->sgemm(NF_TRANS, NF_NO_TRANS, out, in, rows, 1.0f, dy, out,
                e->in[0], in, 1.0f, e->param_grad[0], in);
    if (e->node->n_params > 1) {
        float *db = e->param_grad[1];
        for (int64_t r = 0; r < rows; r++)
            for (int64_t j = 0; j < out; j++)
                db[j] += dy[r * out + j];
    }
}

/* 2 in out multiply-adds per row, plus the bias */
static double linear_flops(const nf_node *node)
{
    const nf_shape *x = &node->inputs[0]->shape;
    double rows = (double)(nf_shape_size(x) / x->dim[x->rank - 1]);
    double in = (double)x->dim[x->rank - 1], out = node->attr[LIN_OUT];
    return rows * (2.0 * in * out + (node->attr[LIN_BIAS] != 0 ? out : 0.0));
}

const nf_op nf_op_linear = {
    .name = "linear", .summary = "fully connected layer over the last axis: y = x W^T + b",
    .min_inputs = 1, .max_inputs = 1,
    .attrs = linear_attrs, .n_attrs = NF_COUNT(linear_attrs),
    .flags = NF_OP_GRAD_NO_OUTPUT,
    .infer = linear_infer, .forward = linear_forward, .backward = linear_backward,
    .flops = linear_flops,
};

/* ---- matmul ------------------------------------------------------------
 * As torch.matmul, per sample: a [..., M, K] times b [..., K, N] is
 * [..., M, N], the leading (batch) axes broadcast against each other
 * (aligned from the right; a size-1 axis repeats). A 1-D a is a row
 * [1, K] and a 1-D b a column [K, 1], that axis removed from the result.
 * transpose_a / transpose_b use a's or b's last two axes swapped. */

enum { MM_TRANS_A, MM_TRANS_B };

static const nf_attr_spec matmul_attrs[] = {
    [MM_TRANS_A] = NF_ATTR_BOOL_DEF("transpose_a", 0, "use a with its last two axes swapped"),
    [MM_TRANS_B] = NF_ATTR_BOOL_DEF("transpose_b", 0, "use b with its last two axes swapped"),
};

/* The product's geometry per sample: `count` matrix products, each with
 * its offset (in matrices) into a and b. */
typedef struct mm_geom {
    int64_t m, k, n;
    int trans_a, trans_b;
    int rank;                           /* broadcast batch axes */
    int64_t dim[NF_MAX_RANK];           /* the output's batch axes */
    int64_t a_stride[NF_MAX_RANK];      /* matrices of a per step of each axis (0: repeated) */
    int64_t b_stride[NF_MAX_RANK];
    int64_t count, a_count, b_count;    /* products per sample; matrices of a and b per sample */
} mm_geom;

/* Fills g from the shapes; 0 (with `why`) when they do not multiply. */
static int mm_make(const nf_shape *a, const nf_shape *b, const double *attr, mm_geom *g, const char **why)
{
    memset(g, 0, sizeof *g);
    g->trans_a = attr[MM_TRANS_A] != 0;
    g->trans_b = attr[MM_TRANS_B] != 0;
    if (a->rank < 1 || b->rank < 1) {
        *why = "need at least one axis in each";
        return 0;
    }
    /* a's matrix [M, K] and b's [K, N], 1-D operands as a row or a column */
    int64_t ar = a->rank >= 2 ? a->dim[a->rank - 2] : 1, ac = a->dim[a->rank - 1];
    int64_t br = b->rank >= 2 ? b->dim[b->rank - 2] : b->dim[0], bc = b->rank >= 2 ? b->dim[b->rank - 1] : 1;
    if (a->rank >= 2 && g->trans_a) { int64_t t = ar; ar = ac; ac = t; }
    if (b->rank >= 2 && g->trans_b) { int64_t t = br; br = bc; bc = t; }
    g->m = ar;
    g->k = ac;
    g->n = bc;
    if (ac != br) {
        *why = "the inner sizes differ";
        return 0;
    }
    int a_batch = a->rank > 2 ? a->rank - 2 : 0, b_batch = b->rank > 2 ? b->rank - 2 : 0;
    g->rank = a_batch > b_batch ? a_batch : b_batch;
    int64_t sa = 1, sb = 1;
    g->count = 1;
    for (int i = g->rank - 1; i >= 0; i--) { /* output batch axis i, aligned from the right */
        int ia = i - (g->rank - a_batch), ib = i - (g->rank - b_batch);
        int64_t da = ia >= 0 ? a->dim[ia] : 1, db = ib >= 0 ? b->dim[ib] : 1;
        if (da != db && da != 1 && db != 1) {
            *why = "their batch axes do not broadcast";
            return 0;
        }
        g->dim[i] = da > db ? da : db;
        g->a_stride[i] = da == 1 ? 0 : sa;
        g->b_stride[i] = db == 1 ? 0 : sb;
        sa *= da;
        sb *= db;
        g->count = nf_mul_checked(g->count, g->dim[i]);
    }
    g->a_count = sa;
    g->b_count = sb;
    return 1;
}

static nf_status matmul_infer(nf_infer *ctx)
{
    const nf_shape *a = ctx->in[0], *b = ctx->in[1];
    mm_geom g;
    const char *why = "";
    char sa[64], sb[64];
    if (!mm_make(a, b, ctx->attr, &g, &why))
        return nf_infer_fail(ctx, NF_ERR_SHAPE, "'%s' %s and '%s' %s do not multiply as [..., M, K] x [..., K, N]: %s",
                             ctx->in_name[0], nf_shape_format(a, sa, sizeof sa), ctx->in_name[1],
                             nf_shape_format(b, sb, sizeof sb), why);
    nf_shape out = {0, {0}};
    for (int i = 0; i < g.rank; i++)
        out.dim[out.rank++] = g.dim[i];
    if (a->rank >= 2)
        out.dim[out.rank++] = g.m;
    if (b->rank >= 2)
        out.dim[out.rank++] = g.n;
    int64_t size = nf_mul3_checked(g.count, g.m, g.n);
    if (size < 0 || size > NF_MAX_SAMPLE_ELEMENTS)
        return nf_infer_fail(ctx, NF_ERR_SHAPE, "its output would have more than 2^31 elements per sample");
    ctx->out = out;
    return NF_OK;
}

static mm_geom mm_of(const nf_exec *e)
{
    mm_geom g;
    const char *why;
    mm_make(e->in_shape[0], e->in_shape[1], e->attr, &g, &why);
    return g;
}

/* The offsets (in matrices) into a and b of product p of a sample. */
static void mm_offsets(const mm_geom *g, int64_t p, int64_t *ia, int64_t *ib)
{
    *ia = *ib = 0;
    for (int i = g->rank - 1; i >= 0; i--) {
        int64_t idx = p % g->dim[i];
        p /= g->dim[i];
        *ia += idx * g->a_stride[i];
        *ib += idx * g->b_stride[i];
    }
}

/* Leading dimensions of a's and b's matrices as stored. */
static int64_t mm_lda(const mm_geom *g) { return g->trans_a ? g->m : g->k; }
static int64_t mm_ldb(const mm_geom *g) { return g->trans_b ? g->k : g->n; }

/* c = op(a) op(b) for every product of every sample; each writes its own
 * c, so the products run in parallel (the kernel on one thread each). */
static void matmul_forward(const nf_exec *e)
{
    mm_geom g = mm_of(e);
    int64_t mk = g.m * g.k, kn = g.k * g.n, mn = g.m * g.n, total = e->batch * g.count;
    #pragma omp parallel for if (total > 1 && total * mn * g.k > NF_PARALLEL_MIN) schedule(static)
    for (int64_t t = 0; t < total; t++) {
        int64_t s = t / g.count, ia, ib;
        mm_offsets(&g, t % g.count, &ia, &ib);
        e->kernels->sgemm(g.trans_a, g.trans_b, g.m, g.n, g.k, 1.0f, e->in[0] + (s * g.a_count + ia) * mk,
                          mm_lda(&g), e->in[1] + (s * g.b_count + ib) * kn, mm_ldb(&g), 0.0f, e->out + t * mn, g.n);
    }
}

/* da += dc op(b)^T (or its transpose when a is used transposed), db +=
 * op(a)^T dc (likewise). Products that share an a (or b) matrix through
 * broadcasting add into it in turn: each sample is one parallel task. */
static void matmul_backward(const nf_exec *e)
{
    mm_geom g = mm_of(e);
    int64_t mk = g.m * g.k, kn = g.k * g.n, mn = g.m * g.n;
    #pragma omp parallel for if (e->batch > 1 && e->batch * g.count * mn * g.k > NF_PARALLEL_MIN) schedule(static)
    for (int64_t s = 0; s < e->batch; s++) {
        for (int64_t p = 0; p < g.count; p++) {
            int64_t ia, ib;
            mm_offsets(&g, p, &ia, &ib);
            const float *dc = e->out_grad + (s * g.count + p) * mn;
            const float *a = e->in[0] + (s * g.a_count + ia) * mk, *b = e->in[1] + (s * g.b_count + ib) * kn;
            if (e->in_grad[0]) {
                float *da = e->in_grad[0] + (s * g.a_count + ia) * mk;
                if (!g.trans_a) /* da [M, K] += dc [M, N] op(b)^T */
                    e->kernels->sgemm(NF_NO_TRANS, !g.trans_b, g.m, g.k, g.n, 1.0f, dc, g.n, b, mm_ldb(&g), 1.0f,
                                      da, g.k);
                else /* da [K, M] += op(b) [K, N] dc^T */
                    e->kernels->sgemm(g.trans_b, NF_TRANS, g.k, g.m, g.n, 1.0f, b, mm_ldb(&g), dc, g.n, 1.0f, da,
                                      g.m);
            }
            if (e->in_grad[1]) {
                float *db = e->in_grad[1] + (s * g.b_count + ib) * kn;
                if (!g.trans_b) /* db [K, N] += op(a)^T [K, M] dc */
                    e->kernels->sgemm(!g.trans_a, NF_NO_TRANS, g.k, g.n, g.m, 1.0f, a, mm_lda(&g), dc, g.n, 1.0f,
                                      db, g.n);
                else /* db [N, K] += dc^T op(a) */
                    e->kernels->sgemm(NF_TRANS, g.trans_a, g.n, g.k, g.m, 1.0f, dc, g.n, a, mm_lda(&g), 1.0f, db,
                                      g.k);
            }
        }
    }
}

static double matmul_flops(const nf_node *node)
{
    mm_geom g;
    const char *why;
    if (!mm_make(&node->inputs[0]->shape, &node->inputs[1]->shape, node->attr, &g, &why))
        return 0.0;
    return 2.0 * (double)g.count * (double)g.m * (double)g.k * (double)g.n;
}

const nf_op nf_op_matmul = {
    .name = "matmul", .summary = "per-sample matrix product [..., M, K] x [..., K, N] -> [..., M, N], batch axes broadcast",
    .min_inputs = 2, .max_inputs = 2, .attrs = matmul_attrs, .n_attrs = NF_COUNT(matmul_attrs),
    .flags = NF_OP_GRAD_NO_OUTPUT,
    .infer = matmul_infer, .forward = matmul_forward, .backward = matmul_backward,
    .flops = matmul_flops,
};
