/* nodeflow — fused recurrent layers: lstm, gru and rnn (tanh or relu) over
 * a whole sequence, as PyTorch's nn.LSTM, nn.GRU and nn.RNN with
 * batch_first=True: num_layers stacked layers, each one or two directions
 * (bidirectional), dropout between layers in training. Per sample the
 * input is [T, in]; the output is the last layer's hidden state of every
 * step, [T, D H] (D directions; the reverse direction's second), or with
 * output=state the final hidden state of every layer and direction,
 * [L D, H], or with output=cell the LSTM's final cell states. Optional
 * inputs 2 and 3 are the initial hidden and cell states, [L D, H] per
 * sample (PyTorch's h_0 and c_0, batch moved first). Weights and gate
 * order are PyTorch's (nn.LSTM: i, f, g, o; nn.GRU: r, z, n), named
 * weight_ih_l{k}{_reverse}, weight_hh_l.., bias_ih_l.., bias_hh_l.., so that
 * a PyTorch state_dict moves over unchanged. Two variants from ONNX, which
 * PyTorch lacks: lstm with peephole=true (peephole_l.. [3 H]) and gru with
 * linear_before_reset=false.
 *
 * Each layer and direction (a "sub-layer", k = layer D + direction) runs
 * the same code: the input projection of all steps is one GEMM, X W_ih^T
 * over B T rows; each step then adds h_{t-1} W_hh^T (a GEMM of B rows) and
 * applies the gates. Backward runs through time in reverse, keeping the
 * gate gradients of every step, and ends with one GEMM each for dW_ih,
 * dW_hh and dX over all B T rows. The reverse direction runs on a
 * time-reversed copy of its input and its output is reversed back.
 *
 * The initial state is zeros, the state inputs, or with carry=1 the final
 * state of the previous run (truncated backpropagation through time: the
 * state crosses windows, gradients do not). nf_plan_reset_state zeroes
 * it. */
#include <math.h>
#include <string.h>

#include "kernels/kernels.h"
#include "kernels/random.h"
#include "nodes/op.h"

enum { HIDDEN, BIAS, CARRY, WEIGHT_INIT, BIAS_INIT, LAYERS, BIDIRECTIONAL, DROPOUT, OUTPUT, NONLINEARITY };

/* gru's and lstm's last attributes take the slot that rnn's nonlinearity
 * has. */
enum { LINEAR_BEFORE_RESET = NONLINEARITY, PEEPHOLE = NONLINEARITY };

#define MAX_LAYERS 4 /* 4 layers of 2 directions of 4 tensors: NF_MAX_PARAMS */

/* One-hot input rows are handled as a lookup of W_ih's columns, through a
 * transposed copy in the workspace, when that copy is at most this big. */
#define ONE_HOT_WORKSPACE_MAX ((int64_t)1 << 22)

static const char *const output_kinds[] = {"sequence", "state", "cell", NULL};
static const char *const nonlinearities[] = {"tanh", "relu", NULL};

enum { OUT_SEQUENCE, OUT_STATE, OUT_CELL };

#define COMMON_ATTRS                                                                                               \
    [HIDDEN] = NF_ATTR_REQUIRED_INT("hidden", 1, 1 << 16, "hidden state size H"),                                  \
    [BIAS] = NF_ATTR_BOOL_DEF("bias", 1, "learned biases bias_ih_l0 and bias_hh_l0 (and those of every layer)"),      \
    [CARRY] = NF_ATTR_BOOL_DEF("carry", 0, "start from the previous run's final state (truncated BPTT)"),             \
    [WEIGHT_INIT] = NF_ATTR_ENUM_DEF("weight_init", 0, nf_init_names, "initialisation of the weights"),               \
    [BIAS_INIT] = NF_ATTR_ENUM_DEF("bias_init", 0, nf_init_names, "initialisation of the biases"),                   \
    [LAYERS] = NF_ATTR_INT_DEF("num_layers", 1, 1, MAX_LAYERS, "stacked layers, each reading the one below"),        \
    [BIDIRECTIONAL] = NF_ATTR_BOOL_DEF("bidirectional", 0, "a second direction per layer, over reversed time"),      \
    [DROPOUT] = NF_ATTR_FLOAT_DEF("dropout", 0, 0, 0.999999, "dropout on the outputs of every layer but the last, "  \
                                                             "in training"),                                         \
    [OUTPUT] = NF_ATTR_ENUM_DEF("output", 0, output_kinds,                                                           \
                                "sequence: [T, D H]; state: final hidden states [L D, H]; cell: lstm's final cell "  \
                                "states [L D, H]")

static const nf_attr_spec recurrent_attrs[] = {
    COMMON_ATTRS,
    [NONLINEARITY] = NF_ATTR_ENUM_DEF("nonlinearity", 0, nonlinearities, "rnn: tanh or relu"),
};

static const nf_attr_spec lstm_attrs[] = {
    COMMON_ATTRS,
    [PEEPHOLE] = NF_ATTR_BOOL_DEF("peephole", 0,
                                  "peephole weights peephole_l0 [3 H] (i, f, o): i and f also read the previous "
                                  "cell state, o the new one (ONNX's P; PyTorch has none)"),
};

static const nf_attr_spec gru_attrs[] = {
    COMMON_ATTRS,
    [LINEAR_BEFORE_RESET] = NF_ATTR_BOOL_DEF("linear_before_reset", 1,
                                             "n = tanh(W_in x + b_in + r (W_hn h + b_hn)), PyTorch's; false: "
                                             "tanh(W_in x + b_in + W_hn (r h) + b_hn), ONNX's default"),
};

/* The parameter names of sub-layer k (layer k / 2 or k, direction), in
 * PyTorch's order. */
#define NAMES(l) {{"weight_ih_l" #l, "weight_hh_l" #l, "bias_ih_l" #l, "bias_hh_l" #l, "peephole_l" #l},         \
                  {"weight_ih_l" #l "_reverse", "weight_hh_l" #l "_reverse", "bias_ih_l" #l "_reverse",            \
                   "bias_hh_l" #l "_reverse", "peephole_l" #l "_reverse"}}
static const char *const param_names[MAX_LAYERS][2][5] = {NAMES(0), NAMES(1), NAMES(2), NAMES(3)};

/* The whole node: T steps, `in` input features, H hidden units, `gates`
 * pre-activations per step (4 H, 3 H or H), L layers of D directions. */
typedef struct stack {
    int64_t t, in, h, gates;
    int layers, dirs, subs, n_gates, output;
    int reset_first; /* gru with linear_before_reset=false */
    int peephole;    /* lstm with peepholes */
    int biases, per; /* whether it has biases; parameters per sub-layer */
    int64_t cap;
} stack;

extern const nf_op nf_op_lstm, nf_op_gru;

/* Pre-activations per hidden unit: LSTM's 4 gates, GRU's 3, RNN's 1. */
static int gates_of(const nf_op *op) { return op == &nf_op_lstm ? 4 : op == &nf_op_gru ? 3 : 1; }

static stack stack_of(const nf_node *node, const nf_shape *x, int64_t cap)
{
    stack s;
    s.t = x->dim[0];
    s.in = x->dim[1];
    s.h = (int64_t)node->attr[HIDDEN];
    s.n_gates = gates_of(node->op);
    s.gates = s.n_gates * s.h;
    s.layers = (int)node->attr[LAYERS];
    s.dirs = node->attr[BIDIRECTIONAL] != 0 ? 2 : 1;
    s.subs = s.layers * s.dirs;
    s.output = (int)node->attr[OUTPUT];
    s.reset_first = s.n_gates == 3 && node->attr[LINEAR_BEFORE_RESET] == 0;
    s.peephole = s.n_gates == 4 && node->attr[PEEPHOLE] != 0;
    s.biases = node->attr[BIAS] != 0;
    s.per = (s.biases ? 4 : 2) + s.peephole;
    s.cap = cap;
    return s;
}

/* Input features of sub-layer k. */
static int64_t in_of(const stack *s, int k) { return k < s->dirs ? s->in : s->dirs * s->h; }

/* Whether sub-layer k writes straight into the node's output (one
 * direction, the last layer, output=sequence): no copy. */
static int direct_output(const stack *s, int k)
{
    return s->dirs == 1 && k == s->subs - 1 && s->output == OUT_SEQUENCE;
}

/* ---- the saved buffer ----------------------------------------------------
 * Laid out by capacity (cap rows), so that the carried state keeps its
 * place when the batch changes:
 *   state   per sub-layer sh, sc [cap, H]       the carried state (first, as
 *                                               state_per_sample declares)
 *   then per sub-layer k its body:
 *     act   [cap, T, gates]  gate activations, then their gradients
 *     aux   [cap, T, H]      LSTM: cell states; GRU: W_hn h + b_hn, or r h
 *                            with linear_before_reset=false
 *     hprev [cap, T, H]      h_{t-1} of every step (for dW_hh)
 *     h0, c0 [cap, H]        the initial state of this run
 *     dh, dc [cap, H]        gradients flowing to the previous step
 *     hot   [cap, T]         the position of the 1 of each input row, when
 *                            every row is one-hot (see project_inputs)
 *     ah    [cap, T, gates]  GRU only: W_hh h + b_hh of a step in forward,
 *                            the gradients of those in backward
 *     y, dy [cap, T, H]      its output and output gradient (none when it
 *                            writes the node's output directly)
 *     xr, dxr [cap, T, in_k] reverse direction: its time-reversed input
 *                            and that input's gradient
 *   per layer but the last: out, mask, dout [cap, T, D H], its output after
 *                            dropout, the dropout mask, the gradient
 * and after all that one float per sub-layer: 1 if this run's input rows
 * were one-hot. Every count is checked: T (up to 2^31) steps of fewer
 * than 2^21 floats each. */
typedef struct regions {
    float *act, *aux, *hprev, *h0, *c0, *sh, *sc, *dh, *dc, *hot, *ah, *y, *dy, *xr, *dxr, *one_hot;
} regions;

static int64_t body_per_row(const stack *s, int k)
{
    int64_t gru_extra = s->n_gates == 3 ? nf_mul_checked(s->t, s->gates) : 0;
    int64_t steps = nf_mul_checked(s->t, s->gates + 2 * s->h + 1);
    int64_t own = nf_add_checked(nf_add_checked(steps, 4 * s->h), gru_extra);
    int64_t y = direct_output(s, k) ? 0 : nf_mul3_checked(2, s->t, s->h);
    int64_t rev = k % s->dirs == 1 ? nf_mul3_checked(2, s->t, in_of(s, k)) : 0;
    return nf_add_checked(nf_add_checked(own, y), rev);
}

static int64_t layer_buffers_per_row(const stack *s)
{
    return nf_mul3_checked(3 * (s->layers - 1), s->t, s->dirs * s->h);
}

static int64_t saved_per_row(const stack *s)
{
    int64_t total = nf_mul3_checked(2, s->subs, s->h);
    for (int k = 0; k < s->subs; k++)
        total = nf_add_checked(total, body_per_row(s, k));
    return nf_add_checked(total, layer_buffers_per_row(s));
}

static regions regions_of(float *saved, const stack *s, int k)
{
    int64_t cap = s->cap, t = s->t, h = s->h;
    regions r;
    r.sh = saved + (int64_t)k * 2 * cap * h;
    r.sc = r.sh + cap * h;
    float *at = saved + (int64_t)s->subs * 2 * cap * h;
    for (int j = 0; j < k; j++)
        at += cap * body_per_row(s, j);
    r.act = at;
    r.aux = r.act + cap * t * s->gates;
    r.hprev = r.aux + cap * t * h;
    r.h0 = r.hprev + cap * t * h;
    r.c0 = r.h0 + cap * h;
    r.dh = r.c0 + cap * h;
    r.dc = r.dh + cap * h;
    r.hot = r.dc + cap * h;
    r.ah = r.hot + cap * t;
    float *next = r.ah + (s->n_gates == 3 ? cap * t * s->gates : 0);
    r.y = r.dy = r.xr = r.dxr = NULL;
    if (!direct_output(s, k)) {
        r.y = next;
        r.dy = r.y + cap * t * h;
        next = r.dy + cap * t * h;
    }
    if (k % s->dirs == 1) {
        r.xr = next;
        r.dxr = r.xr + cap * t * in_of(s, k);
    }
    r.one_hot = saved + cap * saved_per_row(s) + k;
    return r;
}

/* Layer l's output after dropout, its mask and gradient (l < L - 1). */
static float *layer_out(float *saved, const stack *s, int l, int which)
{
    int64_t size = s->cap * s->t * s->dirs * s->h;
    float *base = saved + s->cap * (saved_per_row(s) - layer_buffers_per_row(s));
    return base + (3 * (int64_t)l + which) * size;
}

/* ---- shape rule ------------------------------------------------------------ */

static nf_status check_state_input(nf_infer *ctx, int i, const stack *s)
{
    char a[64];
    const nf_shape *st = ctx->in[i];
    if (st->rank != 2 || st->dim[0] != s->subs || st->dim[1] != s->h)
        return nf_infer_fail(ctx, NF_ERR_SHAPE, "initial state '%s' is %s; it needs [%d, %lld] per sample "
                             "(layers x directions, hidden)", ctx->in_name[i], nf_shape_format(st, a, sizeof a),
                             s->subs, (long long)s->h);
    return NF_OK;
}

static nf_status recurrent_infer(nf_infer *ctx)
{
    const nf_shape *x = ctx->in[0];
    const nf_node *node = ctx->node;
    char a[64];
    if (x->rank != 2)
        return nf_infer_fail(ctx, NF_ERR_SHAPE, "input '%s' is %s; %s needs [steps, features] per sample",
                             ctx->in_name[0], nf_shape_format(x, a, sizeof a), node->op->name);
    stack s = stack_of(node, x, 1);
    int has_cell = s.n_gates == 4;
    if (s.output == OUT_CELL && !has_cell)
        return nf_infer_fail(ctx, NF_ERR_INVALID_ARGUMENT, "output=cell is for lstm (it has a cell state)");
    if (ctx->n_inputs == 3 && !has_cell)
        return nf_infer_fail(ctx, NF_ERR_INVALID_ARGUMENT, "only lstm takes an initial cell state (a third input)");
    if (ctx->n_inputs > 1 && node->attr[CARRY] != 0)
        return nf_infer_fail(ctx, NF_ERR_INVALID_ARGUMENT, "carry=true and initial-state inputs both set the start");
    if (s.dirs == 2 && node->attr[CARRY] != 0)
        return nf_infer_fail(ctx, NF_ERR_INVALID_ARGUMENT, "carry=true needs one direction: the reverse direction's "
                             "final state belongs to the start of its window, not to the next one");
    for (int i = 1; i < ctx->n_inputs; i++) {
        nf_status st = check_state_input(ctx, i, &s);
        if (st != NF_OK)
            return st;
    }
    /* H <= 2^16 and in <= 2^24: gates (2^18) and in gates (2^42) are safe */
    int64_t saved = saved_per_row(&s);
    if (s.in > ((int64_t)1 << 24) || saved < 0 || saved > NF_MAX_SAMPLE_ELEMENTS)
        return nf_infer_fail(ctx, NF_ERR_SHAPE, "input '%s' (%s) is too large", ctx->in_name[0],
                             nf_shape_format(x, a, sizeof a));
    if (s.output == OUT_SEQUENCE)
        ctx->out = (nf_shape){2, {s.t, s.dirs * s.h}};
    else
        ctx->out = (nf_shape){2, {s.subs, s.h}};
    nf_init wi = (nf_init)ctx->attr[WEIGHT_INIT], bi = (nf_init)ctx->attr[BIAS_INIT];
    int biases = s.biases, per = s.per;
    if (s.subs * per > NF_MAX_PARAMS)
        return nf_infer_fail(ctx, NF_ERR_INVALID_ARGUMENT, "%d layers x %d directions of %d parameters each pass "
                             "the %d a node may have", s.layers, s.dirs, per, NF_MAX_PARAMS);
    /* PyTorch draws every weight and bias from U(+-1/sqrt(H)): its default
     * rule with fan_in = H; peepholes start at zero (no peeping) */
    for (int k = 0; k < s.subs; k++) {
        const char *const *names = param_names[k / s.dirs][k % s.dirs];
        nf_param_spec *p = ctx->params + k * per;
        p[0] = (nf_param_spec){names[0], {2, {s.gates, in_of(&s, k)}}, wi, 0, s.h, s.gates, 0};
        p[1] = (nf_param_spec){names[1], {2, {s.gates, s.h}}, wi, 0, s.h, s.gates, 0};
        if (biases) {
            p[2] = (nf_param_spec){names[2], {1, {s.gates}}, bi, 0, s.h, s.gates, 0};
            p[3] = (nf_param_spec){names[3], {1, {s.gates}}, bi, 0, s.h, s.gates, 0};
        }
        if (s.peephole)
            p[per - 1] = (nf_param_spec){names[4], {1, {3 * s.h}}, NF_INIT_ZEROS, 0, s.h, 3 * s.h, 0};
    }
    ctx->n_params = s.subs * per;
    ctx->saved_per_sample = saved;
    ctx->state_per_sample = 2 * s.subs * s.h; /* sh and sc of every sub-layer */
    ctx->saved_fixed = s.subs;
    if (s.in * s.gates <= ONE_HOT_WORKSPACE_MAX)
        ctx->workspace = s.in * s.gates;
    return NF_OK;
}

/* ---- one sub-layer ------------------------------------------------------- */

/* What a sub-layer reads and writes. */
typedef struct sub {
    const nf_exec *e;
    const stack *s;
    int k;
    int64_t in;                           /* its input features */
    const float *x;                       /* [B, T, in] (reversed for the reverse direction) */
    float *dx;                            /* its gradient, added to (NULL: not wanted) */
    float *y;                             /* [B, T, H] */
    const float *dy;                      /* [B, T, H] */
    const float *w_ih, *w_hh, *b_ih, *b_hh, *peep; /* peep: lstm's peepholes (i, f, o) or NULL */
    float *dw_ih, *dw_hh, *db_ih, *db_hh, *dpeep;
    const float *init_h, *init_c;         /* initial state inputs [B, subs, H], or NULL */
    regions r;
} sub;

/* dst[b, T-1-t] (+)= src[b, t], rows of `width` */
static void reverse_time(const float *src, float *dst, int64_t batch, int64_t t, int64_t width, int add)
{
    for (int64_t b = 0; b < batch; b++)
        for (int64_t i = 0; i < t; i++) {
            const float *from = src + (b * t + i) * width;
            float *to = dst + (b * t + t - 1 - i) * width;
            for (int64_t j = 0; j < width; j++)
                to[j] = (add ? to[j] : 0.0f) + from[j];
        }
}

static sub sub_of(const nf_exec *e, const stack *s, int k)
{
    sub u;
    int l = k / s->dirs, reverse = k % s->dirs, per = s->per, biases = s->biases;
    u.e = e;
    u.s = s;
    u.k = k;
    u.in = in_of(s, k);
    u.r = regions_of(e->saved, s, k);
    u.x = l == 0 ? e->in[0] : layer_out(e->saved, s, l - 1, 0);
    u.dx = l == 0 ? e->in_grad[0] : layer_out(e->saved, s, l - 1, 2);
    if (reverse) {
        u.x = u.r.xr;
        u.dx = u.dx ? u.r.dxr : NULL;
    }
    u.y = direct_output(s, k) ? e->out : u.r.y;
    u.dy = direct_output(s, k) ? e->out_grad : u.r.dy;
    u.w_ih = e->param[k * per];
    u.w_hh = e->param[k * per + 1];
    u.b_ih = biases ? e->param[k * per + 2] : NULL;
    u.b_hh = biases ? e->param[k * per + 3] : NULL;
    u.peep = s->peephole ? e->param[k * per + per - 1] : NULL;
    u.dw_ih = e->param_grad[k * per];
    u.dw_hh = e->param_grad[k * per + 1];
    u.db_ih = biases ? e->param_grad[k * per + 2] : NULL;
    u.db_hh = biases ? e->param_grad[k * per + 3] : NULL;
    u.dpeep = s->peephole ? e->param_grad[k * per + per - 1] : NULL;
    u.init_h = e->n_inputs > 1 ? e->in[1] : NULL;
    u.init_c = e->n_inputs > 2 ? e->in[2] : NULL;
    return u;
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

/* Start of a run: the initial state (inputs, carried or zeros) into h0
 * (and c0). */
static void load_initial_state(const sub *u)
{
    const nf_exec *e = u->e;
    int64_t h = u->s->h;
    size_t bytes = (size_t)(e->batch * h) * sizeof(float);
    if (u->init_h) {
        for (int64_t b = 0; b < e->batch; b++) {
            memcpy(u->r.h0 + b * h, u->init_h + (b * u->s->subs + u->k) * h, (size_t)h * sizeof(float));
            if (u->init_c)
                memcpy(u->r.c0 + b * h, u->init_c + (b * u->s->subs + u->k) * h, (size_t)h * sizeof(float));
            else
                memset(u->r.c0 + b * h, 0, (size_t)h * sizeof(float));
        }
    } else if (e->attr[CARRY] != 0) {
        memcpy(u->r.h0, u->r.sh, bytes);
        memcpy(u->r.c0, u->r.sc, bytes);
    } else {
        memset(u->r.h0, 0, bytes);
        memset(u->r.c0, 0, bytes);
    }
}

/* h_{t-1} of row b: the output of step t - 1, or the initial state */
static const float *h_before(const sub *u, int64_t b, int64_t t)
{
    return t ? u->y + (b * u->s->t + t - 1) * u->s->h : u->r.h0 + b * u->s->h;
}

/* acc[b, t] += h_{t-1}[b] W_hh^T for all rows b (rows of acc T gates
 * apart: the [B, T, gates] layout), the first n gate columns */
static void add_recurrent_product(const sub *u, int64_t t, float *acc, int64_t n)
{
    const stack *s = u->s;
    const float *hp = t ? u->y + (t - 1) * s->h : u->r.h0;
    int64_t ld_hp = t ? s->t * s->h : s->h;
    u->e->kernels->sgemm(NF_NO_TRANS, NF_TRANS, u->e->batch, n, s->h, 1.0f, hp, ld_hp, u->w_hh, s->h, 1.0f,
                         acc + t * s->gates, s->t * s->gates);
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
 * input row is one-hot (a one_hot node feeding the first layer), row r of
 * X W_ih^T is column hot[r] of W_ih: a lookup instead of a GEMM. */
static void project_inputs(const sub *u, const float *bias2)
{
    const nf_exec *e = u->e;
    const stack *s = u->s;
    int64_t rows = e->batch * s->t, in = u->in;
    fill_rows(u->r.act, rows, s->gates, s->gates, u->b_ih, u->b_ih ? bias2 : NULL);
    *u->r.one_hot = u->k < s->dirs && e->workspace && in * s->gates <= ONE_HOT_WORKSPACE_MAX &&
                    one_hot_rows(u->x, rows, in, u->r.hot);
    if (!*u->r.one_hot) {
        e->kernels->sgemm(NF_NO_TRANS, NF_TRANS, rows, s->gates, in, 1.0f, u->x, in, u->w_ih, in, 1.0f, u->r.act,
                          s->gates);
        return;
    }
    if (rows < in) { /* few rows (generation): read the columns in place */
        for (int64_t row = 0; row < rows; row++)
            for (int64_t j = 0; j < s->gates; j++)
                u->r.act[row * s->gates + j] += u->w_ih[j * in + (int64_t)u->r.hot[row]];
        return;
    }
    float *wt = e->workspace; /* W_ih^T [in, gates] */
    transpose(u->w_ih, s->gates, in, wt, 0);
    #pragma omp parallel for if (rows * s->gates > NF_PARALLEL_MIN) schedule(static)
    for (int64_t row = 0; row < rows; row++) {
        const float *w = wt + (int64_t)u->r.hot[row] * s->gates;
        for (int64_t j = 0; j < s->gates; j++)
            u->r.act[row * s->gates + j] += w[j];
    }
}

/* dW_ih += dA^T X: for one-hot rows, row r of dA goes to column hot[r] */
static void input_weight_grad(const sub *u)
{
    const nf_exec *e = u->e;
    const stack *s = u->s;
    int64_t rows = e->batch * s->t, in = u->in;
    if (!*u->r.one_hot) {
        e->kernels->sgemm(NF_TRANS, NF_NO_TRANS, s->gates, in, rows, 1.0f, u->r.act, s->gates, u->x, in, 1.0f,
                          u->dw_ih, in);
        return;
    }
    if (rows < in) {
        for (int64_t row = 0; row < rows; row++)
            for (int64_t j = 0; j < s->gates; j++)
                u->dw_ih[j * in + (int64_t)u->r.hot[row]] += u->r.act[row * s->gates + j];
        return;
    }
    float *dwt = e->workspace; /* dW_ih^T [in, gates] */
    memset(dwt, 0, (size_t)(in * s->gates) * sizeof(float));
    for (int64_t row = 0; row < rows; row++) {
        float *to = dwt + (int64_t)u->r.hot[row] * s->gates;
        for (int64_t j = 0; j < s->gates; j++)
            to[j] += u->r.act[row * s->gates + j];
    }
    transpose(dwt, in, s->gates, u->dw_ih, 1);
}

/* h_{t-1} of every step side by side, for dW_hh = sum_t dA_t^T h_{t-1} */
static void gather_hprev(const sub *u)
{
    for (int64_t b = 0; b < u->e->batch; b++)
        for (int64_t t = 0; t < u->s->t; t++)
            memcpy(u->r.hprev + (b * u->s->t + t) * u->s->h, h_before(u, b, t), (size_t)u->s->h * sizeof(float));
}

/* After the gate gradients dA of every step are in act (dgh: the hidden
 * part's, GRU): the weight, bias and input gradients, one GEMM each over
 * all B T rows. (GRU with the reset first: W_hn's rows read r h, kept in
 * aux, instead of h_{t-1}.) */
static void finish_backward(const sub *u, const float *dgh)
{
    const nf_exec *e = u->e;
    const stack *s = u->s;
    int64_t rows = e->batch * s->t, h = s->h, from_h = s->reset_first ? 2 * h : s->gates;
    gather_hprev(u);
    input_weight_grad(u);
    e->kernels->sgemm(NF_TRANS, NF_NO_TRANS, from_h, h, rows, 1.0f, dgh, s->gates, u->r.hprev, h, 1.0f, u->dw_hh, h);
    if (s->reset_first)
        e->kernels->sgemm(NF_TRANS, NF_NO_TRANS, h, h, rows, 1.0f, dgh + 2 * h, s->gates, u->r.aux, h, 1.0f,
                          u->dw_hh + 2 * h * h, h);
    if (u->db_ih) {
        add_column_sums(u->r.act, rows, s->gates, u->db_ih, dgh == u->r.act ? u->db_hh : NULL);
        if (dgh != u->r.act)
            add_column_sums(dgh, rows, s->gates, u->db_hh, NULL);
    }
    if (u->dx)
        e->kernels->sgemm(NF_NO_TRANS, NF_NO_TRANS, rows, u->in, s->gates, 1.0f, u->r.act, s->gates, u->w_ih, u->in,
                          1.0f, u->dx, u->in);
}

/* The gradients of the final state (output=state or cell) start the
 * backward pass through time; zeros otherwise. */
static void start_state_grads(const sub *u)
{
    const nf_exec *e = u->e;
    int64_t h = u->s->h;
    memset(u->r.dh, 0, (size_t)(e->batch * h) * sizeof(float));
    memset(u->r.dc, 0, (size_t)(e->batch * h) * sizeof(float));
    if (u->s->output == OUT_SEQUENCE)
        return;
    float *to = u->s->output == OUT_STATE ? u->r.dh : u->r.dc;
    for (int64_t b = 0; b < e->batch; b++)
        memcpy(to + b * h, e->out_grad + (b * u->s->subs + u->k) * h, (size_t)h * sizeof(float));
}

/* dh and dc at the start (before step 0) to the initial-state inputs */
static void finish_state_grads(const sub *u)
{
    const nf_exec *e = u->e;
    int64_t h = u->s->h;
    for (int i = 1; i < e->n_inputs; i++) {
        float *to = e->in_grad[i];
        const float *from = i == 1 ? u->r.dh : u->r.dc;
        for (int64_t b = 0; to && b < e->batch; b++)
            for (int64_t j = 0; j < h; j++)
                to[(b * u->s->subs + u->k) * h + j] += from[b * h + j];
    }
}

static int wants_initial_grads(const sub *u)
{
    return (u->e->n_inputs > 1 && u->e->in_grad[1]) || (u->e->n_inputs > 2 && u->e->in_grad[2]);
}

/* The step's output gradient row. */
static const float *dy_row(const sub *u, int64_t b, int64_t t)
{
    return u->dy + (b * u->s->t + t) * u->s->h;
}

/* ---- LSTM ------------------------------------------------------------------
 * i = s(a_i)  f = s(a_f)  g = tanh(a_g)  o = s(a_o)
 * c_t = f c_{t-1} + i g      h_t = o tanh(c_t) */
static void lstm_forward_sub(const sub *u)
{
    const nf_exec *e = u->e;
    const stack *s = u->s;
    int64_t h = s->h;
    project_inputs(u, u->b_hh);
    for (int64_t t = 0; t < s->t; t++) {
        add_recurrent_product(u, t, u->r.act, s->gates);
        #pragma omp parallel for if (e->batch * h > NF_PARALLEL_MIN / 8) schedule(static)
        for (int64_t b = 0; b < e->batch; b++) {
            float *a = u->r.act + (b * s->t + t) * s->gates, *c = u->r.aux + (b * s->t + t) * h;
            const float *cp = t ? c - h : u->r.c0 + b * h;
            if (u->peep)
                e->kernels->lstm_peephole_cell(h, a, a + h, a + 2 * h, a + 3 * h, u->peep, cp, c,
                                               u->y + (b * s->t + t) * h);
            else
                e->kernels->lstm_cell(h, a, a + h, a + 2 * h, a + 3 * h, cp, c, u->y + (b * s->t + t) * h);
        }
    }
}

/* dh = dy_t + dh_next, dc = dh o (1 - tanh^2 c_t) + dc_next;
 * dA_i = dc g i(1-i), dA_f = dc c_{t-1} f(1-f), dA_g = dc i (1-g^2),
 * dA_o = dh tanh(c_t) o(1-o); dc_next = dc f, dh_next = dA_t W_hh */
static void peephole_grads(const sub *u);

static void lstm_backward_sub(const sub *u)
{
    const nf_exec *e = u->e;
    const stack *s = u->s;
    int64_t h = s->h;
    int initial = wants_initial_grads(u);
    for (int64_t t = s->t - 1; t >= 0; t--) {
        #pragma omp parallel for if (e->batch * h > NF_PARALLEL_MIN / 8) schedule(static)
        for (int64_t b = 0; b < e->batch; b++) {
            float *a = u->r.act + (b * s->t + t) * s->gates;
            const float *c = u->r.aux + (b * s->t + t) * h, *cp = t ? c - h : u->r.c0 + b * h;
            if (u->peep)
                e->kernels->lstm_peephole_cell_backward(h, a, a + h, a + 2 * h, a + 3 * h, u->peep, c, cp,
                                                        dy_row(u, b, t), u->r.dh + b * h, u->r.dc + b * h);
            else
                e->kernels->lstm_cell_backward(h, a, a + h, a + 2 * h, a + 3 * h, c, cp, dy_row(u, b, t),
                                               u->r.dh + b * h, u->r.dc + b * h);
        }
        if (t > 0 || initial)
            e->kernels->sgemm(NF_NO_TRANS, NF_NO_TRANS, e->batch, h, s->gates, 1.0f, u->r.act + t * s->gates,
                              s->t * s->gates, u->w_hh, h, 0.0f, u->r.dh, h);
    }
    if (u->dpeep)
        peephole_grads(u);
    finish_backward(u, u->r.act);
}

/* dp_i += sum dA_i c_{t-1}, dp_f += sum dA_f c_{t-1}, dp_o += sum dA_o c_t
 * over every row and step (the gate gradients are in act). */
static void peephole_grads(const sub *u)
{
    const stack *s = u->s;
    int64_t h = s->h;
    for (int64_t b = 0; b < u->e->batch; b++)
        for (int64_t t = 0; t < s->t; t++) {
            const float *da = u->r.act + (b * s->t + t) * s->gates, *c = u->r.aux + (b * s->t + t) * h;
            const float *cp = t ? c - h : u->r.c0 + b * h;
            for (int64_t j = 0; j < h; j++) {
                u->dpeep[j] += da[j] * cp[j];
                u->dpeep[h + j] += da[h + j] * cp[j];
                u->dpeep[2 * h + j] += da[3 * h + j] * c[j];
            }
        }
}

/* ---- GRU -------------------------------------------------------------------
 * With a_x = W_ih x + b_ih and a_h = W_hh h_{t-1} + b_hh:
 *   r = s(a_xr + a_hr)  z = s(a_xz + a_hz)  n = tanh(a_xn + r a_hn)
 *   h_t = (1 - z) n + z h_{t-1}
 * act keeps r, z, n; aux keeps a_hn; ah holds a_h. */
static void gru_forward_sub(const sub *u)
{
    const nf_exec *e = u->e;
    const stack *s = u->s;
    int64_t h = s->h;
    project_inputs(u, NULL);
    for (int64_t t = 0; t < s->t; t++) {
        fill_rows(u->r.ah + t * s->gates, e->batch, s->gates, s->t * s->gates, u->b_hh, NULL);
        add_recurrent_product(u, t, u->r.ah, s->gates);
        #pragma omp parallel for if (e->batch * h > NF_PARALLEL_MIN / 8) schedule(static)
        for (int64_t b = 0; b < e->batch; b++) {
            float *a = u->r.act + (b * s->t + t) * s->gates;
            const float *g = u->r.ah + (b * s->t + t) * s->gates;
            e->kernels->gru_cell(h, a, a + h, a + 2 * h, g, g + h, g + 2 * h, u->r.aux + (b * s->t + t) * h,
                                 h_before(u, b, t), u->y + (b * s->t + t) * h);
        }
    }
}

/* dh = dy_t + dh_next; dn = dh (1 - z), dz = dh (h_{t-1} - n);
 * dA_xn = dn (1 - n^2), dA_hn = dA_xn r, dA_r = dA_xn a_hn r(1-r),
 * dA_z = dz z(1-z); dh_next = dh z + dA_h W_hh.
 * dA_x goes to act; dA_h to ah (a_h is no longer needed). */
static void gru_backward_sub(const sub *u)
{
    const nf_exec *e = u->e;
    const stack *s = u->s;
    int64_t h = s->h;
    int initial = wants_initial_grads(u);
    float *dah = u->r.ah;
    for (int64_t t = s->t - 1; t >= 0; t--) {
        #pragma omp parallel for if (e->batch * h > NF_PARALLEL_MIN / 8) schedule(static)
        for (int64_t b = 0; b < e->batch; b++) {
            float *a = u->r.act + (b * s->t + t) * s->gates, *g = dah + (b * s->t + t) * s->gates;
            e->kernels->gru_cell_backward(h, a, a + h, a + 2 * h, g, g + h, g + 2 * h, u->r.aux + (b * s->t + t) * h,
                                          h_before(u, b, t), dy_row(u, b, t), u->r.dh + b * h);
        }
        if (t > 0 || initial)
            e->kernels->sgemm(NF_NO_TRANS, NF_NO_TRANS, e->batch, h, s->gates, 1.0f, dah + t * s->gates,
                              s->t * s->gates, u->w_hh, h, 1.0f, u->r.dh, h);
    }
    finish_backward(u, dah);
}

/* ---- GRU with the reset gate first (linear_before_reset=false) ---------------
 *   r, z as above   n = tanh(a_xn + W_hn (r h_{t-1}) + b_hn)
 * Each step is two products: h_{t-1} by W_hr, W_hz, then r h_{t-1} (kept
 * in aux) by W_hn. */
static void gru_reset_first_forward_sub(const sub *u)
{
    const nf_exec *e = u->e;
    const stack *s = u->s;
    int64_t h = s->h, ld = s->t * s->gates;
    project_inputs(u, NULL);
    for (int64_t t = 0; t < s->t; t++) {
        fill_rows(u->r.ah + t * s->gates, e->batch, s->gates, ld, u->b_hh, NULL);
        add_recurrent_product(u, t, u->r.ah, 2 * h);
        #pragma omp parallel for if (e->batch * h > NF_PARALLEL_MIN / 8) schedule(static)
        for (int64_t b = 0; b < e->batch; b++) {
            float *a = u->r.act + (b * s->t + t) * s->gates;
            const float *g = u->r.ah + (b * s->t + t) * s->gates;
            e->kernels->gru_reset_gates(h, a, a + h, g, g + h, h_before(u, b, t), u->r.aux + (b * s->t + t) * h);
        }
        e->kernels->sgemm(NF_NO_TRANS, NF_TRANS, e->batch, h, h, 1.0f, u->r.aux + t * h, s->t * h, u->w_hh + 2 * h * h,
                          h, 1.0f, u->r.ah + t * s->gates + 2 * h, ld);
        #pragma omp parallel for if (e->batch * h > NF_PARALLEL_MIN / 8) schedule(static)
        for (int64_t b = 0; b < e->batch; b++) {
            float *a = u->r.act + (b * s->t + t) * s->gates;
            const float *g = u->r.ah + (b * s->t + t) * s->gates;
            e->kernels->gru_reset_output(h, a + h, a + 2 * h, g + 2 * h, h_before(u, b, t),
                                         u->y + (b * s->t + t) * h);
        }
    }
}

/* dh = dy_t + dh_next; dA_n = dh (1 - z)(1 - n^2), dA_z = dh (h_{t-1} - n)
 * z(1-z); d(r h) = dA_hn W_hn; dA_r = d(r h) h_{t-1} r(1-r);
 * dh_next = dh z + d(r h) r + dA_{hr,hz} W_{hr,hz}. d(r h) goes to dc,
 * which a GRU does not otherwise use. */
static void gru_reset_first_backward_sub(const sub *u)
{
    const nf_exec *e = u->e;
    const stack *s = u->s;
    int64_t h = s->h, ld = s->t * s->gates;
    int initial = wants_initial_grads(u);
    float *dah = u->r.ah, *drh = u->r.dc;
    for (int64_t t = s->t - 1; t >= 0; t--) {
        #pragma omp parallel for if (e->batch * h > NF_PARALLEL_MIN / 8) schedule(static)
        for (int64_t b = 0; b < e->batch; b++) {
            float *a = u->r.act + (b * s->t + t) * s->gates, *g = dah + (b * s->t + t) * s->gates;
            e->kernels->gru_reset_output_backward(h, a + h, a + 2 * h, g + h, g + 2 * h, h_before(u, b, t),
                                                  dy_row(u, b, t), u->r.dh + b * h);
        }
        e->kernels->sgemm(NF_NO_TRANS, NF_NO_TRANS, e->batch, h, h, 1.0f, dah + t * s->gates + 2 * h, ld,
                          u->w_hh + 2 * h * h, h, 0.0f, drh, h);
        #pragma omp parallel for if (e->batch * h > NF_PARALLEL_MIN / 8) schedule(static)
        for (int64_t b = 0; b < e->batch; b++) {
            float *a = u->r.act + (b * s->t + t) * s->gates, *g = dah + (b * s->t + t) * s->gates;
            e->kernels->gru_reset_gates_backward(h, a, g, drh + b * h, h_before(u, b, t), u->r.dh + b * h);
        }
        if (t > 0 || initial)
            e->kernels->sgemm(NF_NO_TRANS, NF_NO_TRANS, e->batch, h, 2 * h, 1.0f, dah + t * s->gates, ld, u->w_hh, h,
                              1.0f, u->r.dh, h);
    }
    finish_backward(u, dah);
}

/* ---- RNN -------------------------------------------------------------------
 * h_t = f(W_ih x + b_ih + W_hh h_{t-1} + b_hh), f tanh or relu;
 * backward dA = (dy_t + dh_next) f'(h_t), f' = 1 - h^2 or [h > 0];
 * dh_next = dA W_hh. */
static void rnn_forward_sub(const sub *u)
{
    const nf_exec *e = u->e;
    const stack *s = u->s;
    int64_t h = s->h;
    int relu = e->attr[NONLINEARITY] != 0;
    project_inputs(u, u->b_hh);
    for (int64_t t = 0; t < s->t; t++) {
        add_recurrent_product(u, t, u->r.act, s->gates);
        for (int64_t b = 0; b < e->batch; b++) {
            const float *a = u->r.act + (b * s->t + t) * h;
            float *y = u->y + (b * s->t + t) * h;
            if (relu)
                for (int64_t j = 0; j < h; j++)
                    y[j] = a[j] > 0.0f ? a[j] : 0.0f;
            else
                e->kernels->tanh(h, a, y);
        }
    }
}

static void rnn_backward_sub(const sub *u)
{
    const nf_exec *e = u->e;
    const stack *s = u->s;
    int64_t h = s->h;
    int relu = e->attr[NONLINEARITY] != 0, initial = wants_initial_grads(u);
    for (int64_t t = s->t - 1; t >= 0; t--) {
        for (int64_t b = 0; b < e->batch; b++) {
            float *da = u->r.act + (b * s->t + t) * h;
            const float *y = u->y + (b * s->t + t) * h, *dy = dy_row(u, b, t), *dh = u->r.dh + b * h;
            for (int64_t j = 0; j < h; j++) {
                float g = dy[j] + dh[j];
                da[j] = relu ? (y[j] > 0.0f ? g : 0.0f) : g * (1.0f - y[j] * y[j]);
            }
        }
        if (t > 0 || initial)
            e->kernels->sgemm(NF_NO_TRANS, NF_NO_TRANS, e->batch, h, s->gates, 1.0f, u->r.act + t * s->gates,
                              s->t * s->gates, u->w_hh, h, 0.0f, u->r.dh, h);
    }
    finish_backward(u, u->r.act);
}

/* ---- the node: layers and directions ---------------------------------------- */

/* Layer l's output [B, T, D H] from its directions' (the reverse one's
 * reversed back); between layers, dropout in training (mask kept). */
static void gather_layer(const nf_exec *e, const stack *s, int l)
{
    int last = l == s->layers - 1;
    if (last && s->output != OUT_SEQUENCE)
        return;
    if (last && direct_output(s, s->subs - 1))
        return;
    float *out = last ? e->out : layer_out(e->saved, s, l, 0);
    int64_t h = s->h, width = s->dirs * h;
    for (int dir = 0; dir < s->dirs; dir++) {
        const float *y = regions_of(e->saved, s, l * s->dirs + dir).y;
        for (int64_t b = 0; b < e->batch; b++)
            for (int64_t t = 0; t < s->t; t++) {
                int64_t from = dir ? s->t - 1 - t : t;
                memcpy(out + (b * s->t + t) * width + dir * h, y + (b * s->t + from) * h, (size_t)h * sizeof(float));
            }
    }
    if (last)
        return;
    /* inverted dropout, as the dropout node: keep when 24 random bits >= p 2^24 */
    float *mask = layer_out(e->saved, s, l, 1), p = (float)e->attr[DROPOUT];
    int active = e->training && p > 0.0f;
    float keep = active ? 1.0f / (1.0f - p) : 1.0f;
    uint64_t cut = (uint64_t)((double)p * 16777216.0), key = e->random + (uint64_t)l * ((uint64_t)1 << 40);
    int64_t n = e->batch * s->t * width;
    for (int64_t i = 0; i < n; i++) {
        mask[i] = !active || (nf_mix64(key + (uint64_t)i) >> 40) >= cut ? keep : 0.0f;
        out[i] *= mask[i];
    }
}

static void forward_sub(const sub *u)
{
    switch (u->s->n_gates) {
    case 4: lstm_forward_sub(u); break;
    case 3: u->s->reset_first ? gru_reset_first_forward_sub(u) : gru_forward_sub(u); break;
    default: rnn_forward_sub(u); break;
    }
}

/* The final states of every sub-layer: into the output (output=state or
 * cell) and, with carry, into the carried state. */
static void keep_final_states(const nf_exec *e, const stack *s, const sub *u)
{
    int64_t h = s->h, last = s->t - 1;
    for (int64_t b = 0; b < e->batch; b++) {
        const float *hn = u->y + (b * s->t + last) * h;
        const float *cn = s->n_gates == 4 ? u->r.aux + (b * s->t + last) * h : NULL;
        if (s->output != OUT_SEQUENCE)
            memcpy(e->out + (b * s->subs + u->k) * h, s->output == OUT_STATE ? hn : cn, (size_t)h * sizeof(float));
        if (e->attr[CARRY] != 0) {
            memcpy(u->r.sh + b * h, hn, (size_t)h * sizeof(float));
            if (cn)
                memcpy(u->r.sc + b * h, cn, (size_t)h * sizeof(float));
        }
    }
}

static void recurrent_forward(const nf_exec *e)
{
    stack s = stack_of(e->node, e->in_shape[0], e->capacity);
    for (int l = 0; l < s.layers; l++) {
        for (int dir = 0; dir < s.dirs; dir++) {
            int k = l * s.dirs + dir;
            sub u = sub_of(e, &s, k);
            if (dir) /* the reverse direction reads its input back to front */
                reverse_time(l == 0 ? e->in[0] : layer_out(e->saved, &s, l - 1, 0), u.r.xr, e->batch, s.t, u.in, 0);
            load_initial_state(&u);
            forward_sub(&u);
            keep_final_states(e, &s, &u);
        }
        gather_layer(e, &s, l);
    }
}

/* The gradient of layer l's output to its directions' dy (the reverse
 * one's reversed); `g` NULL: none (the state is the output). */
static void scatter_layer_grad(const nf_exec *e, const stack *s, int l, const float *g)
{
    int64_t h = s->h, width = s->dirs * h;
    for (int dir = 0; dir < s->dirs; dir++) {
        int k = l * s->dirs + dir;
        if (direct_output(s, k))
            continue;
        float *dy = regions_of(e->saved, s, k).dy;
        for (int64_t b = 0; b < e->batch; b++)
            for (int64_t t = 0; t < s->t; t++) {
                int64_t to = dir ? s->t - 1 - t : t;
                if (g)
                    memcpy(dy + (b * s->t + to) * h, g + (b * s->t + t) * width + dir * h, (size_t)h * sizeof(float));
                else
                    memset(dy + (b * s->t + to) * h, 0, (size_t)h * sizeof(float));
            }
    }
}

static void backward_sub(const sub *u)
{
    switch (u->s->n_gates) {
    case 4: lstm_backward_sub(u); break;
    case 3: u->s->reset_first ? gru_reset_first_backward_sub(u) : gru_backward_sub(u); break;
    default: rnn_backward_sub(u); break;
    }
}

static void recurrent_backward(const nf_exec *e)
{
    stack s = stack_of(e->node, e->in_shape[0], e->capacity);
    int64_t width = s.dirs * s.h;
    for (int l = s.layers - 1; l >= 0; l--) {
        const float *g = NULL;
        if (l < s.layers - 1) { /* through this layer's dropout */
            float *dout = layer_out(e->saved, &s, l, 2);
            const float *mask = layer_out(e->saved, &s, l, 1);
            for (int64_t i = 0; i < e->batch * s.t * width; i++)
                dout[i] *= mask[i];
            g = dout;
        } else if (s.output == OUT_SEQUENCE) {
            g = e->out_grad;
        }
        scatter_layer_grad(e, &s, l, g);
        if (l > 0) /* both directions add their input gradients here */
            memset(layer_out(e->saved, &s, l - 1, 2), 0, (size_t)(e->batch * s.t * width) * sizeof(float));
        for (int dir = 0; dir < s.dirs; dir++) {
            sub u = sub_of(e, &s, l * s.dirs + dir);
            if (u.dx && dir)
                memset(u.dx, 0, (size_t)(e->batch * s.t * u.in) * sizeof(float));
            start_state_grads(&u);
            backward_sub(&u);
            if (u.dx && dir)
                reverse_time(u.dx, l == 0 ? e->in_grad[0] : layer_out(e->saved, &s, l - 1, 2), e->batch, s.t, u.in, 1);
            finish_state_grads(&u);
        }
    }
}

static void zero_state(const nf_node *node, float *saved, int64_t capacity)
{
    stack s = stack_of(node, &node->inputs[0]->shape, capacity);
    memset(saved, 0, (size_t)(capacity * saved_per_row(&s) + s.subs) * sizeof(float));
}

/* forward: 2 T gates (in + H) multiply-adds per sample and sub-layer, plus
 * the gates */
static double recurrent_flops(const nf_node *node)
{
    stack s = stack_of(node, &node->inputs[0]->shape, 1);
    double total = 0.0;
    for (int k = 0; k < s.subs; k++)
        total += (double)s.t * (2.0 * (double)s.gates * (double)(in_of(&s, k) + s.h) + 10.0 * (double)s.h);
    return total;
}

#define RECURRENT_OP(var, nm, text, attr_table, n)                                                    \
    const nf_op var = {                                                                               \
        .name = nm, .summary = text, .min_inputs = 1, .max_inputs = 3,                                \
        .attrs = attr_table, .n_attrs = n, .flags = NF_OP_CARRY_OPTION,                          \
        .infer = recurrent_infer, .forward = recurrent_forward, .backward = recurrent_backward,       \
        .flops = recurrent_flops, .reset_state = zero_state,                                          \
    }

RECURRENT_OP(nf_op_lstm, "lstm", "LSTM layers over [steps, features] (PyTorch's nn.LSTM, batch_first)", lstm_attrs,
             PEEPHOLE + 1);
RECURRENT_OP(nf_op_gru, "gru", "GRU layers over [steps, features] (PyTorch's nn.GRU, batch_first)", gru_attrs,
             LINEAR_BEFORE_RESET + 1);
RECURRENT_OP(nf_op_rnn, "rnn", "Elman RNN layers, tanh or relu, over [steps, features] (PyTorch's nn.RNN)",
             recurrent_attrs, NONLINEARITY + 1);
