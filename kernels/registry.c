/* nodeflow — the registry of kernel sets: each set names one variant of
 * every kernel. Adding a variant: its functions in the file of its family,
 * declared in variants.h, and a set here (or a slot of an existing one). */
#include <stdlib.h>
#include <string.h>

#include "kernels/variants.h"

/* The slots of a fast set with its products from `gemm` (OpenBLAS's or
 * oneDNN's). */
#define FAST_SLOTS(set_name, gemm)                           \
    .name = set_name,                                        \
    .sgemm = gemm,                                           \
    .sgemv = nf_openblas_sgemv,                              \
    .im2col = nf_fast_im2col,                                \
    .col2im_add = nf_fast_col2im_add,                        \
    .max_plane = nf_fast_max_plane,                          \
    .avg_plane = nf_fast_avg_plane,                          \
    .avg_plane_backward = nf_fast_avg_plane_backward,        \
    .sigmoid = nf_libm_sigmoid,                              \
    .tanh = nf_libm_tanh,                                    \
    .lstm_cell = nf_fast_lstm_cell,                          \
    .lstm_cell_backward = nf_fast_lstm_cell_backward,        \
    .lstm_peephole_cell = nf_fast_lstm_peephole_cell,        \
    .lstm_peephole_cell_backward = nf_fast_lstm_peephole_cell_backward, \
    .gru_cell = nf_fast_gru_cell,                            \
    .gru_cell_backward = nf_fast_gru_cell_backward,          \
    .gru_reset_gates = nf_fast_gru_reset_gates,              \
    .gru_reset_output = nf_fast_gru_reset_output,            \
    .gru_reset_output_backward = nf_fast_gru_reset_output_backward, \
    .gru_reset_gates_backward = nf_fast_gru_reset_gates_backward

static const nf_kernels openblas = {FAST_SLOTS("openblas", nf_openblas_sgemm)};

static const nf_kernels reference = {
    .name = "reference",
    .sgemm = nf_reference_sgemm,
    .sgemv = nf_reference_sgemv,
    .im2col = nf_reference_im2col,
    .col2im_add = nf_reference_col2im_add,
    .max_plane = nf_reference_max_plane,
    .avg_plane = nf_reference_avg_plane,
    .avg_plane_backward = nf_reference_avg_plane_backward,
    .sigmoid = nf_reference_sigmoid,
    .tanh = nf_reference_tanh,
    .lstm_cell = nf_reference_lstm_cell,
    .lstm_cell_backward = nf_reference_lstm_cell_backward,
    .lstm_peephole_cell = nf_reference_lstm_peephole_cell,
    .lstm_peephole_cell_backward = nf_reference_lstm_peephole_cell_backward,
    .gru_cell = nf_reference_gru_cell,
    .gru_cell_backward = nf_reference_gru_cell_backward,
    .gru_reset_gates = nf_reference_gru_reset_gates,
    .gru_reset_output = nf_reference_gru_reset_output,
    .gru_reset_output_backward = nf_reference_gru_reset_output_backward,
    .gru_reset_gates_backward = nf_reference_gru_reset_gates_backward,
};

#ifdef NF_HAVE_ONEDNN
/* oneDNN's products, convolution and element-wise primitives (the
 * default when it is built). */
static const nf_kernels onednn = {
    FAST_SLOTS("onednn", nf_onednn_sgemm),
    .conv_prepare = nf_onednn_conv_prepare,
    .conv_forward = nf_onednn_conv_forward,
    .conv_backward = nf_onednn_conv_backward,
    .conv_release = nf_onednn_conv_release,
    .conv_name = nf_onednn_conv_name,
    .eltwise_prepare = nf_onednn_eltwise_prepare,
    .eltwise_forward = nf_onednn_eltwise_forward,
    .eltwise_backward = nf_onednn_eltwise_backward,
    .eltwise_release = nf_onednn_eltwise_release,
    .eltwise_name = nf_onednn_eltwise_name,
};

static const nf_kernels *const sets[] = {&onednn, &openblas, &reference};
#else
static const nf_kernels *const sets[] = {&openblas, &reference};
#endif

int nf_kernels_count(void) { return (int)(sizeof sets / sizeof sets[0]); }

const nf_kernels *nf_kernels_at(int index) { return index >= 0 && index < nf_kernels_count() ? sets[index] : NULL; }

const nf_kernels *nf_kernels_find(const char *name)
{
    for (int i = 0; name && i < nf_kernels_count(); i++)
        if (!strcmp(sets[i]->name, name))
            return sets[i];
    return NULL;
}

const nf_kernels *nf_kernels_for_plan(void)
{
    const char *name = getenv("NODEFLOW_KERNELS");
    return name && *name ? nf_kernels_find(name) : sets[0];
}
