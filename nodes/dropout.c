/* nodeflow — inverted dropout: in training mode each element is zeroed
 * with probability p and the others scaled by 1 / (1 - p); in inference
 * mode it is the identity. The mask of element i of a run is drawn from
 * nf_mix64(key + i), the key fixed by the graph's seed, the run count and
 * the node: the same seed gives the same masks whatever the threads. */
#include <string.h>

#include "kernels/random.h"
#include "nodes/op.h"

static const nf_attr_spec dropout_attrs[] = {
    NF_ATTR_FLOAT_DEF("p", 0.5, 0, 0.999999, "probability of zeroing an element in training"),
};

static nf_status dropout_infer(nf_infer *ctx)
{
    ctx->out = *ctx->in[0];
    ctx->saved_per_sample = nf_shape_size(ctx->in[0]); /* the mask, scale included */
    return NF_OK;
}

static void dropout_forward(const nf_exec *e)
{
    int64_t n = e->batch * nf_shape_size(e->out_shape);
    float p = (float)e->attr[0], keep = 1.0f / (1.0f - p);
    const float *x = e->in[0];
    float *y = e->out, *mask = e->saved;
    int active = e->training && p > 0.0f;
    uint64_t key = e->random;
    /* keep when u >= p, with u uniform in [0, 1) from 24 random bits */
    uint64_t cut = (uint64_t)((double)p * 16777216.0);
    #pragma omp parallel for if (n > NF_PARALLEL_MIN) schedule(static)
    for (int64_t i = 0; i < n; i++) {
        float m = !active ? 1.0f : (nf_mix64(key + (uint64_t)i) >> 40) >= cut ? keep : 0.0f;
        mask[i] = m;
        y[i] = x[i] * m;
    }
}

static void dropout_backward(const nf_exec *e)
{
    int64_t n = e->batch * nf_shape_size(e->out_shape);
    if (!e->in_grad[0])
        return;
    #pragma omp parallel for if (n > NF_PARALLEL_MIN) schedule(static)
    for (int64_t i = 0; i < n; i++)
        e->in_grad[0][i] += e->out_grad[i] * e->saved[i];
}

const nf_op nf_op_dropout = {
    .name = "dropout", .summary = "zeroes elements with probability p in training (inverted dropout)",
    .min_inputs = 1, .max_inputs = 1, .attrs = dropout_attrs, .n_attrs = NF_COUNT(dropout_attrs),
    .flags = NF_OP_GRAD_NO_INPUTS | NF_OP_GRAD_NO_OUTPUT,
    .infer = dropout_infer, .forward = dropout_forward, .backward = dropout_backward,
    .flops = nf_flops_per_element,
};
