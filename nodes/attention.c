/* nodeflow — multi-head attention, fused: torch.nn.MultiheadAttention with
 * batch_first=True, its parameters under PyTorch's names.
 *
 * Inputs: query [T, E] and optionally key [S, E] and value [S, E] per
 * sample (one input: self-attention; two: the second is key and value).
 * With H heads of d = E / H features, Wq, Wk, Wv the three [E, E] blocks
 * of in_proj_weight (and bq, bk, bv of in_proj_bias):
 *     Q = query Wq^T + bq,  K = key Wk^T + bk,  V = value Wv^T + bv
 *     per head h:  P_h = softmax(Q_h K_h^T / sqrt(d))   (causal: j > i removed)
 *                  O_h = dropout(P_h) V_h
 *     y = [O_1 .. O_H] Wo^T + bo                        (out_proj)
 * (Vaswani et al. 2017, 3.2.) Dropout acts on the attention weights in
 * training, as PyTorch's. */
#include <math.h>
#include <string.h>

#include "kernels/kernels.h"
#include "kernels/random.h"
#include "nodes/op.h"

enum { ATT_HEADS, ATT_CAUSAL, ATT_DROPOUT, ATT_BIAS };

static const nf_attr_spec attention_attrs[] = {
    [ATT_HEADS] = NF_ATTR_REQUIRED_INT("heads", 1, 1 << 20, "number of heads; they divide the features"),
    [ATT_CAUSAL] = NF_ATTR_BOOL_DEF("causal", 0, "query i attends to keys j <= i only"),
    [ATT_DROPOUT] = NF_ATTR_FLOAT_DEF("dropout", 0, 0, 0.999999, "dropout on the attention weights in training"),
    [ATT_BIAS] = NF_ATTR_BOOL_DEF("bias", 1, "in_proj_bias and out_proj.bias"),
};

/* Sizes of one node, and where each part of its saved buffer starts for
 * a batch of `batch` (each part holds the whole batch, so that the
 * projections are one product each). */
typedef struct att_geom {
    int64_t t, s, e, heads, d;
    int64_t q, k, v, o, p, pd, dout, dq, dk, dv, dp; /* offsets into saved */
    int dropout;                                      /* Pd kept apart from P */
} att_geom;

static att_geom att_make(const nf_shape *query, const nf_shape *key, const double *attr, int64_t batch)
{
    att_geom g = {0};
    g.t = query->dim[0];
    g.s = key->dim[0];
    g.e = query->dim[1];
    g.heads = (int64_t)attr[ATT_HEADS];
    g.d = g.e / g.heads;
    g.dropout = attr[ATT_DROPOUT] > 0;
    int64_t te = batch * g.t * g.e, se = batch * g.s * g.e, hts = batch * g.heads * g.t * g.s;
    g.q = 0;
    g.k = g.q + te;
    g.v = g.k + se;
    g.o = g.v + se;
    g.p = g.o + te;
    g.pd = g.p + (g.dropout ? hts : 0);
    g.dout = g.pd + hts;
    g.dq = g.dout + te;
    g.dk = g.dq + te;
    g.dv = g.dk + se;
    g.dp = g.dv + se;
    return g;
}

/* Saved floats per sample: Q, K, V, O, P (and the dropped P), then dO,
 * dQ, dK, dV and dP for backward; -1 past 2^62. */
static int64_t att_saved_per_sample(const att_geom *g)
{
    int64_t te = nf_mul_checked(g->t, g->e), se = nf_mul_checked(g->s, g->e);
    int64_t hts = nf_mul3_checked(g->heads, g->t, g->s);
    int64_t sum = nf_add_checked(nf_mul_checked(4, te), nf_mul_checked(4, se));
    return nf_add_checked(sum, nf_mul_checked(g->dropout ? 3 : 2, hts));
}

static const nf_shape *key_shape(const nf_shape *const *in, int n) { return in[n > 1 ? 1 : 0]; }

static nf_status attention_infer(nf_infer *ctx)
{
    char a[64], b[64];
    for (int i = 0; i < ctx->n_inputs; i++)
        if (ctx->in[i]->rank != 2)
            return nf_infer_fail(ctx, NF_ERR_SHAPE, "input '%s' is %s; attention needs [positions, features]",
                                 ctx->in_name[i], nf_shape_format(ctx->in[i], a, sizeof a));
    const nf_shape *q = ctx->in[0], *k = key_shape(ctx->in, ctx->n_inputs), *v = ctx->in[ctx->n_inputs - 1];
    if (k->dim[1] != q->dim[1] || v->dim[1] != q->dim[1] || v->dim[0] != k->dim[0]) {
        char c[64];
        return nf_infer_fail(ctx, NF_ERR_SHAPE, "query %s, key %s and value %s need the same features (and key and "
                             "value the same positions)", nf_shape_format(q, a, sizeof a),
                             nf_shape_format(k, b, sizeof b), nf_shape_format(v, c, sizeof c));
    }
    int64_t e = q->dim[1], heads = (int64_t)ctx->attr[ATT_HEADS];
    if (e % heads != 0)
        return nf_infer_fail(ctx, NF_ERR_SHAPE, "%lld heads do not divide %lld features", (long long)heads,
                             (long long)e);
    att_geom g = att_make(q, k, ctx->attr, 1);
    int64_t saved = att_saved_per_sample(&g);
    int64_t weight = nf_mul3_checked(3, e, e);
    if (saved < 0 || saved > NF_MAX_SAMPLE_ELEMENTS || weight < 0 || weight > ((int64_t)1 << 34))
        return nf_infer_fail(ctx, NF_ERR_SHAPE, "%lld positions of %lld features are too many for attention",
                             (long long)(q->dim[0] > k->dim[0] ? q->dim[0] : k->dim[0]), (long long)e);
    ctx->out = *q;
    ctx->saved_per_sample = saved;
    int bias = ctx->attr[ATT_BIAS] != 0, n = 0;
    /* PyTorch's initialisation: xavier_uniform for in_proj_weight (its
     * fans are those of a [3E, E] matrix), Linear's default for out_proj,
     * zero biases */
    ctx->params[n++] = (nf_param_spec){"in_proj_weight", {2, {3 * e, e}}, NF_INIT_XAVIER_UNIFORM, 0, e, 3 * e, 0};
    if (bias)
        ctx->params[n++] = (nf_param_spec){"in_proj_bias", {1, {3 * e}}, NF_INIT_ZEROS, 0, e, 3 * e, 0};
    ctx->params[n++] = (nf_param_spec){"out_proj.weight", {2, {e, e}}, NF_INIT_TORCH_DEFAULT, 0, e, e, 0};
    if (bias)
        ctx->params[n++] = (nf_param_spec){"out_proj.bias", {1, {e}}, NF_INIT_ZEROS, 0, e, e, 0};
    ctx->n_params = n;
    return NF_OK;
}

typedef struct att_run {
    att_geom g;
    const float *x[3];        /* query, key, value inputs */
    float *dx[3];             /* their gradients (NULL: not wanted) */
    const float *w_in, *b_in, *w_out, *b_out;
    float *dw_in, *db_in, *dw_out, *db_out;
    float *saved;
} att_run;

static att_run att_run_of(const nf_exec *e)
{
    att_run r;
    int n = e->n_inputs;
    r.g = att_make(e->in_shape[0], key_shape(e->in_shape, n), e->attr, e->batch);
    for (int i = 0; i < 3; i++) {
        int from = i == 0 ? 0 : n == 1 ? 0 : n == 2 ? 1 : i;
        r.x[i] = e->in[from];
        r.dx[i] = e->in_grad[from];
    }
    int bias = e->attr[ATT_BIAS] != 0;
    r.w_in = e->param[0];
    r.dw_in = e->param_grad[0];
    r.b_in = bias ? e->param[1] : NULL;
    r.db_in = bias ? e->param_grad[1] : NULL;
    r.w_out = e->param[bias ? 2 : 1];
    r.dw_out = e->param_grad[bias ? 2 : 1];
    r.b_out = bias ? e->param[3] : NULL;
    r.db_out = bias ? e->param_grad[3] : NULL;
    r.saved = e->saved;
    return r;
}

/* y[rows, n] = x[rows, k] W[n, k]^T + b (b NULL: none) */
static void project(const nf_exec *e, int64_t rows, int64_t n, int64_t k, const float *x, const float *w,
                    const float *b, float *y)
{
    if (b)
        for (int64_t r = 0; r < rows; r++)
            memcpy(y + r * n, b, (size_t)n * sizeof(float));
    e->kernels->sgemm(NF_NO_TRANS, NF_TRANS, rows, n, k, 1.0f, x, k, w, k, b ? 1.0f : 0.0f, y, n);
}

/* Backward of project: dx += dy W, dW += dy^T x, db += column sums of dy */
static void project_backward(const nf_exec *e, int64_t rows, int64_t n, int64_t k, const float *x, const float *w,
                             const float *dy, float *dx, float *dw, float *db)
{
    if (dx)
        e->kernels->sgemm(NF_NO_TRANS, NF_NO_TRANS, rows, k, n, 1.0f, dy, n, w, k, 1.0f, dx, k);
    e->kernels->sgemm(NF_TRANS, NF_NO_TRANS, n, k, rows, 1.0f, dy, n, x, k, 1.0f, dw, k);
    if (db)
        for (int64_t r = 0; r < rows; r++)
            for (int64_t j = 0; j < n; j++)
                db[j] += dy[r * n + j];
}

/* Row i of P_h: softmax over the keys it may see (all, or j <= i). */
static void softmax_row(float *p, int64_t s, int64_t visible)
{
    float top = p[0];
    for (int64_t j = 1; j < visible; j++)
        top = p[j] > top ? p[j] : top;
    double sum = 0.0;
    for (int64_t j = 0; j < visible; j++) {
        p[j] = expf(p[j] - top);
        sum += p[j];
    }
    float inv = (float)(1.0 / sum);
    for (int64_t j = 0; j < visible; j++)
        p[j] *= inv;
    for (int64_t j = visible; j < s; j++)
        p[j] = 0.0f;
}

static int64_t visible_keys(const att_geom *g, int causal, int64_t i)
{
    return causal && i + 1 < g->s ? i + 1 : g->s;
}

/* Sample b, head h: P = softmax(Q K^T / sqrt(d)), Pd = dropout(P), O = Pd V */
static void head_forward(const nf_exec *e, const att_run *r, int64_t b, int64_t h)
{
    const att_geom *g = &r->g;
    int64_t ts = g->t * g->s, bh = b * g->heads + h;
    const float *q = r->saved + g->q + b * g->t * g->e + h * g->d;
    const float *k = r->saved + g->k + b * g->s * g->e + h * g->d;
    const float *v = r->saved + g->v + b * g->s * g->e + h * g->d;
    float *p = r->saved + g->p + bh * ts, *o = r->saved + g->o + b * g->t * g->e + h * g->d;
    float scale = 1.0f / sqrtf((float)g->d);
    e->kernels->sgemm(NF_NO_TRANS, NF_TRANS, g->t, g->s, g->d, scale, q, g->e, k, g->e, 0.0f, p, g->s);
    int causal = e->attr[ATT_CAUSAL] != 0;
    for (int64_t i = 0; i < g->t; i++)
        softmax_row(p + i * g->s, g->s, visible_keys(g, causal, i));
    const float *pd = p;
    float rate = (float)e->attr[ATT_DROPOUT];
    if (g->dropout) {
        /* as the dropout node: keep when 24 random bits >= p 2^24 */
        float *drop = r->saved + g->pd + bh * ts, keep = e->training ? 1.0f / (1.0f - rate) : 1.0f;
        uint64_t cut = (uint64_t)((double)rate * 16777216.0), key = e->random + (uint64_t)(bh * ts);
        for (int64_t j = 0; j < ts; j++)
            drop[j] = !e->training || (nf_mix64(key + (uint64_t)j) >> 40) >= cut ? p[j] * keep : 0.0f;
        pd = drop;
    }
    e->kernels->sgemm(NF_NO_TRANS, NF_NO_TRANS, g->t, g->d, g->s, 1.0f, pd, g->s, v, g->e, 0.0f, o, g->e);
}

static void attention_forward(const nf_exec *e)
{
    att_run r = att_run_of(e);
    const att_geom *g = &r.g;
    int64_t rq = e->batch * g->t, rk = e->batch * g->s, ee = g->e * g->e;
    project(e, rq, g->e, g->e, r.x[0], r.w_in, r.b_in, r.saved + g->q);
    project(e, rk, g->e, g->e, r.x[1], r.w_in + ee, r.b_in ? r.b_in + g->e : NULL, r.saved + g->k);
    project(e, rk, g->e, g->e, r.x[2], r.w_in + 2 * ee, r.b_in ? r.b_in + 2 * g->e : NULL, r.saved + g->v);
    int64_t tasks = e->batch * g->heads;
    #pragma omp parallel for if (tasks > 1 && tasks * g->t * g->s * g->d > NF_PARALLEL_MIN) schedule(static)
    for (int64_t task = 0; task < tasks; task++)
        head_forward(e, &r, task / g->heads, task % g->heads);
    project(e, rq, g->e, g->e, r.saved + g->o, r.w_out, r.b_out, e->out);
}

/* Sample b, head h, from dO: dV = Pd^T dO, dPd = dO V^T, dP = dPd * mask,
 * dS = P (dP - rowsum(dP P)) (softmax's backward), dQ = dS K / sqrt(d),
 * dK = dS^T Q / sqrt(d). Each writes its own rows and columns. */
static void head_backward(const nf_exec *e, const att_run *r, int64_t b, int64_t h)
{
    const att_geom *g = &r->g;
    int64_t ts = g->t * g->s, bh = b * g->heads + h, qo = b * g->t * g->e + h * g->d, ko = b * g->s * g->e + h * g->d;
    const float *p = r->saved + g->p + bh * ts, *pd = g->dropout ? r->saved + g->pd + bh * ts : p;
    const float *dout = r->saved + g->dout + qo;
    float *dp = r->saved + g->dp + bh * ts;
    float scale = 1.0f / sqrtf((float)g->d);
    e->kernels->sgemm(NF_TRANS, NF_NO_TRANS, g->s, g->d, g->t, 1.0f, pd, g->s, dout, g->e, 0.0f,
                      r->saved + g->dv + ko, g->e);
    e->kernels->sgemm(NF_NO_TRANS, NF_TRANS, g->t, g->s, g->d, 1.0f, dout, g->e, r->saved + g->v + ko, g->e, 0.0f, dp,
                      g->s);
    if (g->dropout && e->training) { /* Pd = P keep or 0: dP = dPd keep where kept */
        float keep = 1.0f / (1.0f - (float)e->attr[ATT_DROPOUT]);
        for (int64_t j = 0; j < ts; j++)
            dp[j] = pd[j] != 0.0f ? dp[j] * keep : 0.0f;
    }
    for (int64_t i = 0; i < g->t; i++) {
        const float *pi = p + i * g->s;
        float *di = dp + i * g->s;
        double dot = 0.0;
        for (int64_t j = 0; j < g->s; j++)
            dot += (double)di[j] * pi[j];
        for (int64_t j = 0; j < g->s; j++)
            di[j] = pi[j] * (di[j] - (float)dot);
    }
    e->kernels->sgemm(NF_NO_TRANS, NF_NO_TRANS, g->t, g->d, g->s, scale, dp, g->s, r->saved + g->k + ko, g->e, 0.0f,
                      r->saved + g->dq + qo, g->e);
    e->kernels->sgemm(NF_TRANS, NF_NO_TRANS, g->s, g->d, g->t, scale, dp, g->s, r->saved + g->q + qo, g->e, 0.0f,
                      r->saved + g->dk + ko, g->e);
}

static void attention_backward(const nf_exec *e)
{
    att_run r = att_run_of(e);
    const att_geom *g = &r.g;
    int64_t rq = e->batch * g->t, rk = e->batch * g->s, ee = g->e * g->e;
    float *dout = r.saved + g->dout;
    /* out_proj: dO = dY Wo, dWo += dY^T O, dbo += sums of dY */
    memset(dout, 0, (size_t)(rq * g->e) * sizeof(float));
    project_backward(e, rq, g->e, g->e, r.saved + g->o, r.w_out, e->out_grad, dout, r.dw_out, r.db_out);
    int64_t tasks = e->batch * g->heads;
    #pragma omp parallel for if (tasks > 1 && tasks * g->t * g->s * g->d > NF_PARALLEL_MIN) schedule(static)
    for (int64_t task = 0; task < tasks; task++)
        head_backward(e, &r, task / g->heads, task % g->heads);
    project_backward(e, rq, g->e, g->e, r.x[0], r.w_in, r.saved + g->dq, r.dx[0], r.dw_in, r.db_in);
    project_backward(e, rk, g->e, g->e, r.x[1], r.w_in + ee, r.saved + g->dk, r.dx[1], r.dw_in + ee,
                     r.db_in ? r.db_in + g->e : NULL);
    project_backward(e, rk, g->e, g->e, r.x[2], r.w_in + 2 * ee, r.saved + g->dv, r.dx[2], r.dw_in + 2 * ee,
                     r.db_in ? r.db_in + 2 * g->e : NULL);
}

/* projections 2 (T + 2 S) E^2 + 2 T E^2, scores and weighted sums 4 T S E */
static double attention_flops(const nf_node *node)
{
    const nf_shape *q = &node->inputs[0]->shape, *k = &node->inputs[node->n_inputs > 1 ? 1 : 0]->shape;
    double t = (double)q->dim[0], s = (double)k->dim[0], e = (double)q->dim[1];
    return 2.0 * (t + 2.0 * s) * e * e + 2.0 * t * e * e + 4.0 * t * s * e;
}

const nf_op nf_op_attention = {
    .name = "attention",
    .summary = "multi-head attention as torch.nn.MultiheadAttention (batch_first), self or with key and value",
    .min_inputs = 1, .max_inputs = 3, .attrs = attention_attrs, .n_attrs = NF_COUNT(attention_attrs),
    .flags = NF_OP_GRAD_NO_OUTPUT,
    .infer = attention_infer, .forward = attention_forward, .backward = attention_backward,
    .flops = attention_flops,
};
