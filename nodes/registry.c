/* nodeflow — the one list of node types. Adding a node type: write its
 * nf_op in a file of nodes/ and add it here. */
#include <pthread.h>
#include <string.h>

#include "nodes/op.h"

extern const nf_op nf_op_input, nf_op_output, nf_op_memory, nf_op_constant;
extern const nf_op nf_op_attention;
extern const nf_op nf_op_linear, nf_op_matmul;
extern const nf_op nf_op_add, nf_op_sub, nf_op_mul, nf_op_div, nf_op_scale, nf_op_mod;
extern const nf_op nf_op_relu, nf_op_leaky_relu, nf_op_sigmoid, nf_op_tanh;
extern const nf_op nf_op_softmax, nf_op_log_softmax;
extern const nf_op nf_op_elu, nf_op_gelu, nf_op_silu, nf_op_softplus, nf_op_hardtanh, nf_op_relu6, nf_op_erf;
extern const nf_op nf_op_sqrt, nf_op_exp, nf_op_log, nf_op_abs;
extern const nf_op nf_op_reduce_max;
extern const nf_op nf_op_mse, nf_op_cross_entropy, nf_op_bce_with_logits;
extern const nf_op nf_op_l1_penalty, nf_op_l2_penalty;
extern const nf_op nf_op_conv2d, nf_op_conv1d, nf_op_conv_transpose2d, nf_op_upsample;
extern const nf_op nf_op_dropout, nf_op_batchnorm, nf_op_layernorm;
extern const nf_op nf_op_copy, nf_op_flatten, nf_op_reshape, nf_op_concat, nf_op_slice, nf_op_pad, nf_op_transpose, nf_op_permute;
extern const nf_op nf_op_lstm, nf_op_gru, nf_op_rnn, nf_op_embedding, nf_op_one_hot;
extern const nf_op nf_op_maxpool, nf_op_avgpool, nf_op_maxpool1d, nf_op_avgpool1d, nf_op_global_avgpool;
extern const nf_op nf_op_adaptive_avgpool;

static const nf_op *const registry[] = {
    &nf_op_input, &nf_op_output, &nf_op_memory, &nf_op_constant,
    &nf_op_copy, &nf_op_flatten, &nf_op_reshape, &nf_op_concat, &nf_op_slice, &nf_op_pad, &nf_op_transpose, &nf_op_permute,
    &nf_op_linear, &nf_op_matmul, &nf_op_conv2d, &nf_op_conv1d, &nf_op_conv_transpose2d, &nf_op_upsample,
    &nf_op_maxpool, &nf_op_avgpool, &nf_op_maxpool1d, &nf_op_avgpool1d, &nf_op_global_avgpool,
    &nf_op_adaptive_avgpool, &nf_op_reduce_max,
    &nf_op_dropout, &nf_op_batchnorm, &nf_op_layernorm,
    &nf_op_lstm, &nf_op_gru, &nf_op_rnn, &nf_op_embedding, &nf_op_one_hot, &nf_op_attention,
    &nf_op_add, &nf_op_sub, &nf_op_mul, &nf_op_div, &nf_op_scale, &nf_op_mod,
    &nf_op_relu, &nf_op_leaky_relu, &nf_op_sigmoid, &nf_op_tanh,
    &nf_op_elu, &nf_op_gelu, &nf_op_silu, &nf_op_softplus, &nf_op_hardtanh, &nf_op_relu6, &nf_op_erf,
    &nf_op_sqrt, &nf_op_exp, &nf_op_log, &nf_op_abs,
    &nf_op_softmax, &nf_op_log_softmax,
    &nf_op_mse, &nf_op_cross_entropy, &nf_op_bce_with_logits,
    &nf_op_l1_penalty, &nf_op_l2_penalty,
};

#define REGISTRY_SIZE ((int)(sizeof registry / sizeof registry[0]))

static const char *names[REGISTRY_SIZE + 1];

const nf_op *nf_op_find(const char *name)
{
    for (int i = 0; i < REGISTRY_SIZE; i++)
        if (strcmp(registry[i]->name, name) == 0)
            return registry[i];
    return NULL;
}

int nf_op_count(void) { return REGISTRY_SIZE; }

const nf_op *nf_op_at(int index)
{
    return index >= 0 && index < REGISTRY_SIZE ? registry[index] : NULL;
}

static pthread_once_t names_once = PTHREAD_ONCE_INIT;

static void fill_names(void)
{
    for (int i = 0; i < REGISTRY_SIZE; i++)
        names[i] = registry[i]->name;
    names[REGISTRY_SIZE] = NULL;
}

const char *const *nf_op_names(void)
{
    pthread_once(&names_once, fill_names); /* safe from several threads */
    return names;
}
