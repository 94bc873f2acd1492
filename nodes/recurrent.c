/* nodeflow — fused recurrent layers: lstm and gru, one layer over a whole
 * sequence. Per sample the input is [T, in] (time first, as PyTorch's
 * batch_first=True per sample) and the output is the hidden state of every
 * step, [T, H]. Weights and gate order are PyTorch's (nn.LSTM: i, f, g, o;
 * nn.GRU: r, z, n), named weight_ih_l0, weight_hh_l0, bias_ih_l0,
 * bias_hh_l0, so that a PyTorch state_dict moves over unchanged.
 *
 * The input projection of all steps is one GEMM, X W_ih^T over B T rows;
 * each step then adds h_{t-1} W_hh^T (a GEMM of B rows) and applies the
 * gates. Backward runs through time in reverse, keeping the gate
 * gradients of every step, and ends with one GEMM each for dW_ih, dW_hh
 * and dX over all B T rows.
 *
 * The initial state is zeros, or with carry=1 the final state of the
 * previous run (truncated backpropagation through time: the state crosses
 * windows, gradients do not). nf_plan_reset_state zeroes it. */
#include <math.h>
#include <string.h>


#include "kernels/kernels.h"
#include "nodes/op.h"

enum { HIDDEN, BIAS, CARRY, WEIGHT_INIT, BIAS_INIT };

static const nf_attr_spec recurrent_attrs[] = {
    [HIDDEN] = NF_ATTR_REQUIRED_INT("hidden", 1, 1 << 16, "hidden state size H"),
    [BIAS] = NF_ATTR_BOOL_DEF("bias", 1, "learned biases bias_ih_l0 and bias_hh_l0"),
    [CARRY] = NF_ATTR_BOOL_DEF("carry", 0, "start from the previous run's final state (truncated BPTT)"),
    [WEIGHT_INIT] = NF_ATTR_ENUM_DEF("weight_init", 0, nf_init_names, "initialisation of the weights"),
    [BIAS_INIT] = NF_ATTR_ENUM_DEF("bias_init", 0, nf_init_names, "initialisation of the biases"),
};

/* Sizes of one node: T steps, `in` input features, H hidden units, and
 * `gates` pre-activations per step (4 H for an LSTM, 3 H for a GRU). */
typedef struct dims {
    int64_t t, in, h, gates;
} dims;

static dims dims_of(const nf_exec *e, int n_gates)
{
    dims d = {e->in_shape[0]->dim[0], e->in_shape[0]->dim[1], (int64_t)e->attr[HIDDEN], 0};
    d.gates = n_gates * d.h;
    return d;
}

/* The saved buffer, for `cap` rows (regions are laid out by capacity so
 * that the carried state keeps its place when the batch changes; it comes
 * first, as state_per_sample declares):
 *   sh, sc [cap, H]         the carried state
 *   act    [cap, T, gates]  gate activations, then their gradients
 *   aux    [cap, T, H]      LSTM: cell states; GRU: W_hn h + b_hn
 *   hprev  [cap, T, H]      h_{t-1} of every step (for dW_hh)
 *   h0, c0 [cap, H]         the initial state of this run
 *   dh, dc [cap, H]         gradients flowing to the previous step
 *   hot    [cap, T]         the position of the 1 of each input row, when
 *                           every row is one-hot (see project_inputs)
 *   ah     [cap, T, gates]  GRU only: W_hh h + b_hh of a step in forward,
 *                           the gradients of those in backward
 * and after them one float: 1 if this run's input rows were one-hot. */
typedef struct regions {
    float *act, *aux, *hprev, *h0, *c0, *sh, *sc, *dh, *dc, *hot, *ah, *one_hot;
} regions;

/* Floats per row of the saved buffer above, or -1 past 2^62: T (up to
 * 2^31, from the input) steps of fewer than 2^20 floats each, checked. */
static int64_t saved_per_sample(int64_t t, int64_t h, int64_t gates)
{
    int64_t gru_extra = gates == 3 * h ? nf_mul_checked(t, gates) : 0;
    int64_t steps = nf_mul_checked(t, gates + 2 * h + 1);
    return nf_add_checked(nf_add_checked(steps, 6 * h), gru_extra);
}

/* One-hot input rows are handled as a lookup of W_ih's columns, through a
 * transposed copy in the workspace, when that copy is at most this big. */
#define ONE_HOT_WORKSPACE_MAX ((int64_t)1 << 22)

static regions regions_of(float *saved, int64_t cap, const dims *d)
{
    regions r;
    r.sh = saved;
    r.sc = r.sh + cap * d->h;
    r.act = r.sc + cap * d->h;
    r.aux = r.act + cap * d->t * d->gates;
    r.hprev = r.aux + cap * d->t * d->h;
    r.h0 = r.hprev + cap * d->t * d->h;
    r.c0 = r.h0 + cap * d->h;
    r.dh = r.c0 + cap * d->h;
    r.dc = r.dh + cap * d->h;
    r.hot = r.dc + cap * d->h;
    r.ah = r.hot + cap * d->t;
    r.one_hot = saved + cap * saved_per_sample(d->t, d->h, d->gates);
    return r;
}

static nf_status recurrent_infer(nf_infer *ctx, int n_gates)
{
    const nf_shape *x = ctx->in[0];
    char s[64];
    if (x->rank != 2)
        return nf_infer_fail(ctx, NF_ERR_SHAPE, "input '%s' is %s; %s needs [steps, features] per sample",
                             ctx->in_name[0], nf_shape_format(x, s, sizeof s), ctx->node->op->name);
    /* H <= 2^16 and in <= 2^24: gates (2^18) and in gates (2^42) are safe */
    int64_t t = x->dim[0], in = x->dim[1], h = (int64_t)ctx->attr[HIDDEN], gates = n_gates * h;
    int64_t saved = saved_per_sample(t, h, gates);
    if (in > ((int64_t)1 << 24) || saved < 0 || saved > NF_MAX_SAMPLE_ELEMENTS)
        return nf_infer_fail(ctx, NF_ERR_SHAPE, "input '%s' (%s) is too large", ctx->in_name[0],
                             nf_shape_format(x, s, sizeof s));
    ctx->out = (nf_shape){2, {t, h}};
    nf_init wi = (nf_init)ctx->attr[WEIGHT_INIT], bi = (nf_init)ctx->attr[BIAS_INIT];
    /* PyTorch draws every weight and bias from U(+-1/sqrt(H)): its default
     * rule with fan_in = H */
    ctx->params[0] = (nf_param_spec){"weight_ih_l0", {2, {gates, in}}, wi, 0, h, gates, 0};
    ctx->params[1] = (nf_param_spec){"weight_hh_l0", {2, {gates, h}}, wi, 0, h, gates, 0};
    ctx->n_params = 2;
    if (ctx->attr[BIAS] != 0) {
        ctx->params[2] = (nf_param_spec){"bias_ih_l0", {1, {gates}}, bi, 0, h, gates, 0};
        ctx->params[3] = (nf_param_spec){"bias_hh_l0", {1, {gates}}, bi, 0, h, gates, 0};
        ctx->n_params = 4;
    }
    ctx->saved_per_sample = saved;
    ctx->state_per_sample = 2 * h; /* sh and sc */
    ctx->saved_fixed = 1;
    if (in * gates <= ONE_HOT_WORKSPACE_MAX)
        ctx->workspace = in * gates;
    return NF_OK;
}

static nf_status lstm_infer(nf_infer *ctx) { return recurrent_infer(ctx, 4); }
static nf_status gru_infer(nf_infer *ctx) { return recurrent_infer(ctx, 3); }

static void zero_state(const nf_node *node, float *saved, int64_t capacity)
{
    const nf_shape *x = &node->inputs[0]->shape;
    int64_t h = (int64_t)node->attr[HIDDEN], gates = (strcmp(node->op->name, "lstm") == 0 ? 4 : 3) * h;
    memset(saved, 0, (size_t)(capacity * saved_per_sample(x->dim[0], h, gates) + 1) * sizeof(float));
}

/* rows x n matrix (row stride ld) + the bias in every row, or zeros */
static void fill_rows(float *m, int64_t rows, int64_t n, int64_t ld, const float *bias, const float *bias2)
{
    for (int64_t r = 0; r < rows; r++)
        for (int64_t j = 0; j < n; j++)
            m[r * ld + j] = (bias ? bias[j] : 0.0f) + (bias2 ? bias2[j] : 0.0f);
}

/* sums over rows of a rows x n matrix, added to each of up to two vectors */
static void add_column_sums(const float *m, int64_t rows, int64_t n, float *to, float *to2)
{
    for (int64_t r = 0; r < rows; r++)
        for (int64_t j = 0; j < n; j++) {
            to[j] += m[r * n + j];
            if (to2)
                to2[j] += m[r * n + j];
        }
}

/* Start of a run: the initial state (carried or zeros) into h0 (and c0). */
static void load_initial_state(const nf_exec *e, const dims *d, const regions *r, int has_cell)
{
    size_t bytes = (size_t)(e->batch * d->h) * sizeof(float);
    if (e->attr[CARRY] != 0) {
        memcpy(r->h0, r->sh, bytes);
        if (has_cell)
            memcpy(r->c0, r->sc, bytes);
    } else {
        memset(r->h0, 0, bytes);
        memset(r->c0, 0, bytes);
    }
}

/* h_{t-1} of row b: the output of step t - 1, or the initial state */
static const float *h_before(const nf_exec *e, const dims *d, const regions *r, int64_t b, int64_t t)
{
    return t ? e->out + (b * d->t + t - 1) * d->h : r->h0 + b * d->h;
}

/* acc[b, t] += h_{t-1}[b] W_hh^T for all rows b (rows of acc T gates
 * apart: the [B, T, gates] layout) */
static void add_recurrent_product(const nf_exec *e, const dims *d, const regions *r, int64_t t, float *acc)
{
    const float *hp = t ? e->out + (t - 1) * d->h : r->h0;
    int64_t ld_hp = t ? d->t * d->h : d->h;
    e->kernels->sgemm(NF_NO_TRANS, NF_TRANS, e->batch, d->gates, d->h, 1.0f, hp,
                ld_hp, e->param[1], d->h, 1.0f, acc + t * d->gates, (d->t * d->gates));
}

/* Whether every row of x [rows, in] is one-hot (a single 1, zeros
 * elsewhere); the positions of the ones go to hot. */
static int one_hot_rows(const float *x, int64_t rows, int64_t in, float *hot)
{
    for (int64_t r = 0; r < rows; r++) {
        int64_t ones = 0, others = 0, at = 0;
        for (int64_t i = 0; i < in; i++) {
            ones += x[r * in + i] == 1.0f;
            others += x[r * in + i] != 0.0f && x[r * in + i] != 1.0f;
            at = x[r * in + i] == 1.0f ? i : at;
        }
        if (ones != 1 || others)
            return 0;
        hot[r] = (float)at;
    }
    return 1;
}

/* dst [cols, rows] += or = src [rows, cols] transposed */
static void transpose(const float *src, int64_t rows, int64_t cols, float *dst, int add)
{
    for (int64_t i = 0; i < rows; i++)
        for (int64_t j = 0; j < cols; j++)
            dst[j * rows + i] = (add ? dst[j * rows + i] : 0.0f) + src[i * cols + j];
}

/* The input projection of every step: act = X W_ih^T + biases. When every
 * input row is one-hot (a one_hot node feeding the layer), row r of
 * X W_ih^T is column hot[r] of W_ih: a lookup instead of a GEMM. */
static void project_inputs(const nf_exec *e, const dims *d, const regions *r, const float *bias2)
{
    const float *bias = e->node->n_params > 2 ? e->param[2] : NULL;
    int64_t rows = e->batch * d->t;
    fill_rows(r->act, rows, d->gates, d->gates, bias, bias ? bias2 : NULL);
    *r->one_hot = e->workspace && d->in * d->gates <= ONE_HOT_WORKSPACE_MAX &&
                  one_hot_rows(e->in[0], rows, d->in, r->hot);
    if (!*r->one_hot) {
        e->kernels->sgemm(NF_NO_TRANS, NF_TRANS, rows, d->gates, d->in, 1.0f, e->in[0],
                    d->in, e->param[0], d->in, 1.0f, r->act, d->gates);
        return;
    }
    if (rows < d->in) { /* few rows (generation): read the columns in place */
        for (int64_t row = 0; row < rows; row++)
            for (int64_t j = 0; j < d->gates; j++)
                r->act[row * d->gates + j] += e->param[0][j * d->in + (int64_t)r->hot[row]];
        return;
    }
    float *wt = e->workspace; /* W_ih^T [in, gates] */
    transpose(e->param[0], d->gates, d->in, wt, 0);
    #pragma omp parallel for if (rows * d->gates > NF_PARALLEL_MIN) schedule(static)
    for (int64_t row = 0; row < rows; row++) {
        const float *w = wt + (int64_t)r->hot[row] * d->gates;
        for (int64_t j = 0; j < d->gates; j++)
            r->act[row * d->gates + j] += w[j];
    }
}

/* dW_ih += dA^T X: for one-hot rows, row r of dA goes to column hot[r] */
static void input_weight_grad(const nf_exec *e, const dims *d, const regions *r)
{
    int64_t rows = e->batch * d->t;
    if (!*r->one_hot) {
        e->kernels->sgemm(NF_TRANS, NF_NO_TRANS, d->gates, d->in, rows, 1.0f, r->act,
                    d->gates, e->in[0], d->in, 1.0f, e->param_grad[0], d->in);
        return;
    }
    if (rows < d->in) {
        for (int64_t row = 0; row < rows; row++)
            for (int64_t j = 0; j < d->gates; j++)
                e->param_grad[0][j * d->in + (int64_t)r->hot[row]] += r->act[row * d->gates + j];
        return;
    }
    float *dwt = e->workspace; /* dW_ih^T [in, gates] */
    memset(dwt, 0, (size_t)(d->in * d->gates) * sizeof(float));
    for (int64_t row = 0; row < rows; row++) {
        float *to = dwt + (int64_t)r->hot[row] * d->gates;
        for (int64_t j = 0; j < d->gates; j++)
            to[j] += r->act[row * d->gates + j];
    }
    transpose(dwt, d->in, d->gates, e->param_grad[0], 1);
}

/* LSTM step (PyTorch's nn.LSTM):
 *   i = s(a_i)  f = s(a_f)  g = tanh(a_g)  o = s(a_o)
 *   c_t = f c_{t-1} + i g      h_t = o tanh(c_t) */
static void lstm_forward(const nf_exec *e)
{
    dims d = dims_of(e, 4);
    regions r = regions_of(e->saved, e->capacity, &d);
    int64_t h = d.h;
    load_initial_state(e, &d, &r, 1);
    project_inputs(e, &d, &r, e->node->n_params > 3 ? e->param[3] : NULL);
    for (int64_t t = 0; t < d.t; t++) {
        add_recurrent_product(e, &d, &r, t, r.act);
        #pragma omp parallel for if (e->batch * h > NF_PARALLEL_MIN / 8) schedule(static)
        for (int64_t b = 0; b < e->batch; b++) {
            float *a = r.act + (b * d.t + t) * d.gates, *c = r.aux + (b * d.t + t) * h;
            const float *cp = t ? c - h : r.c0 + b * h;
            e->kernels->lstm_cell(h, a, a + h, a + 2 * h, a + 3 * h, cp, c, e->out + (b * d.t + t) * h);
        }
    }
    if (e->attr[CARRY] != 0)
        for (int64_t b = 0; b < e->batch; b++) {
            memcpy(r.sh + b * h, e->out + (b * d.t + d.t - 1) * h, (size_t)h * sizeof(float));
            memcpy(r.sc + b * h, r.aux + (b * d.t + d.t - 1) * h, (size_t)h * sizeof(float));
        }
}

/* h_{t-1} of every step side by side, for dW_hh = sum_t dA_t^T h_{t-1} */
static void gather_hprev(const nf_exec *e, const dims *d, const regions *r)
{
    for (int64_t b = 0; b < e->batch; b++)
        for (int64_t t = 0; t < d->t; t++)
            memcpy(r->hprev + (b * d->t + t) * d->h, h_before(e, d, r, b, t), (size_t)d->h * sizeof(float));
}

/* After the gate gradients dA of every step are in act: the weight, bias
 * and input gradients, one GEMM each over all B T rows. */
static void finish_backward(const nf_exec *e, const dims *d, const regions *r, const float *dgh)
{
    int64_t rows = e->batch * d->t;
    gather_hprev(e, d, r);
    input_weight_grad(e, d, r);
    e->kernels->sgemm(NF_TRANS, NF_NO_TRANS, d->gates, d->h, rows, 1.0f, dgh,
                d->gates, r->hprev, d->h, 1.0f, e->param_grad[1], d->h);
    if (e->node->n_params > 2) {
        add_column_sums(r->act, rows, d->gates, e->param_grad[2], dgh == r->act ? e->param_grad[3] : NULL);
        if (dgh != r->act)
            add_column_sums(dgh, rows, d->gates, e->param_grad[3], NULL);
    }
    if (e->in_grad[0])
        e->kernels->sgemm(NF_NO_TRANS, NF_NO_TRANS, rows, d->in, d->gates, 1.0f, r->act,
                    d->gates, e->param[0], d->in, 1.0f, e->in_grad[0], d->in);
}

/* dh = dy_t + dh_next, dc = dh o (1 - tanh^2 c_t) + dc_next;
 * dA_i = dc g i(1-i), dA_f = dc c_{t-1} f(1-f), dA_g = dc i (1-g^2),
 * dA_o = dh tanh(c_t) o(1-o); dc_next = dc f, dh_next = dA_t W_hh */
static void lstm_backward(const nf_exec *e)
{
    dims d = dims_of(e, 4);
    regions r = regions_of(e->saved, e->capacity, &d);
    int64_t h = d.h;
    memset(r.dh, 0, (size_t)(e->batch * h) * sizeof(float));
    memset(r.dc, 0, (size_t)(e->batch * h) * sizeof(float));
    for (int64_t t = d.t - 1; t >= 0; t--) {
        #pragma omp parallel for if (e->batch * h > NF_PARALLEL_MIN / 8) schedule(static)
        for (int64_t b = 0; b < e->batch; b++) {
            float *a = r.act + (b * d.t + t) * d.gates;
            const float *c = r.aux + (b * d.t + t) * h, *cp = t ? c - h : r.c0 + b * h;
            e->kernels->lstm_cell_backward(h, a, a + h, a + 2 * h, a + 3 * h, c, cp, e->out_grad + (b * d.t + t) * h, r.dh + b * h,
                               r.dc + b * h);
        }
        if (t > 0)
            e->kernels->sgemm(NF_NO_TRANS, NF_NO_TRANS, e->batch, h, d.gates, 1.0f,
                        r.act + t * d.gates, (d.t * d.gates), e->param[1], h, 0.0f, r.dh, h);
    }
    finish_backward(e, &d, &r, r.act);
}

/* GRU step (PyTorch's nn.GRU), with a_x = W_ih x + b_ih and
 * a_h = W_hh h_{t-1} + b_hh:
 *   r = s(a_xr + a_hr)  z = s(a_xz + a_hz)  n = tanh(a_xn + r a_hn)
 *   h_t = (1 - z) n + z h_{t-1}
 * act keeps r, z, n; aux keeps a_hn; ah holds a_h. */
static void gru_forward(const nf_exec *e)
{
    dims d = dims_of(e, 3);
    regions r = regions_of(e->saved, e->capacity, &d);
    int64_t h = d.h;
    const float *bias_hh = e->node->n_params > 3 ? e->param[3] : NULL;
    load_initial_state(e, &d, &r, 0);
    project_inputs(e, &d, &r, NULL);
    for (int64_t t = 0; t < d.t; t++) {
        fill_rows(r.ah + t * d.gates, e->batch, d.gates, d.t * d.gates, bias_hh, NULL);
        add_recurrent_product(e, &d, &r, t, r.ah);
        #pragma omp parallel for if (e->batch * h > NF_PARALLEL_MIN / 8) schedule(static)
        for (int64_t b = 0; b < e->batch; b++) {
            float *a = r.act + (b * d.t + t) * d.gates;
            const float *g = r.ah + (b * d.t + t) * d.gates;
            e->kernels->gru_cell(h, a, a + h, a + 2 * h, g, g + h, g + 2 * h, r.aux + (b * d.t + t) * h, h_before(e, &d, &r, b, t),
                     e->out + (b * d.t + t) * h);
        }
    }
    if (e->attr[CARRY] != 0)
        for (int64_t b = 0; b < e->batch; b++)
            memcpy(r.sh + b * h, e->out + (b * d.t + d.t - 1) * h, (size_t)h * sizeof(float));
}

/* dh = dy_t + dh_next; dn = dh (1 - z), dz = dh (h_{t-1} - n);
 * dA_xn = dn (1 - n^2), dA_hn = dA_xn r, dA_r = dA_xn a_hn r(1-r),
 * dA_z = dz z(1-z); dh_next = dh z + dA_h W_hh.
 * dA_x goes to act; dA_h to the backward scratch (aux is a_hn). */
static void gru_backward(const nf_exec *e)
{
    dims d = dims_of(e, 3);
    regions r = regions_of(e->saved, e->capacity, &d);
    int64_t h = d.h;
    float *dah = r.ah;
    memset(r.dh, 0, (size_t)(e->batch * h) * sizeof(float));
    for (int64_t t = d.t - 1; t >= 0; t--) {
        #pragma omp parallel for if (e->batch * h > NF_PARALLEL_MIN / 8) schedule(static)
        for (int64_t b = 0; b < e->batch; b++) {
            float *a = r.act + (b * d.t + t) * d.gates, *g = dah + (b * d.t + t) * d.gates;
            e->kernels->gru_cell_backward(h, a, a + h, a + 2 * h, g, g + h, g + 2 * h, r.aux + (b * d.t + t) * h,
                              h_before(e, &d, &r, b, t), e->out_grad + (b * d.t + t) * h, r.dh + b * h);
        }
        if (t > 0)
            e->kernels->sgemm(NF_NO_TRANS, NF_NO_TRANS, e->batch, h, d.gates, 1.0f,
                        dah + t * d.gates, (d.t * d.gates), e->param[1], h, 1.0f, r.dh, h);
    }
    finish_backward(e, &d, &r, dah);
}

/* forward: 2 T gates (in + H) multiply-adds per sample, plus the gates */
static double recurrent_flops(const nf_node *node)
{
    const nf_shape *x = &node->inputs[0]->shape;
    double t = (double)x->dim[0], in = (double)x->dim[1], h = node->attr[HIDDEN];
    double gates = (strcmp(node->op->name, "lstm") == 0 ? 4 : 3) * h;
    return t * (2.0 * gates * (in + h) + 10.0 * h);
}

const nf_op nf_op_lstm = {
    .name = "lstm", .summary = "one LSTM layer over [steps, features] (PyTorch's nn.LSTM, batch_first)",
    .min_inputs = 1, .max_inputs = 1,
    .attrs = recurrent_attrs, .n_attrs = NF_COUNT(recurrent_attrs),
    .flags = NF_OP_CARRY_OPTION,
    .infer = lstm_infer, .forward = lstm_forward, .backward = lstm_backward, .flops = recurrent_flops,
    .reset_state = zero_state,
};

const nf_op nf_op_gru = {
    .name = "gru", .summary = "one GRU layer over [steps, features] (PyTorch's nn.GRU, batch_first)",
    .min_inputs = 1, .max_inputs = 1,
    .attrs = recurrent_attrs, .n_attrs = NF_COUNT(recurrent_attrs),
    .flags = NF_OP_CARRY_OPTION,
    .infer = gru_infer, .forward = gru_forward, .backward = gru_backward, .flops = recurrent_flops,
    .reset_state = zero_state,
};
