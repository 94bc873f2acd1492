/* nodeflow — the kernel functions of every variant, which
 * kernels/registry.c assembles into sets. Private to kernels/. */
#ifndef NF_KERNELS_VARIANTS_H
#define NF_KERNELS_VARIANTS_H

#include "kernels/kernels.h"

/* gemm.c */
void nf_openblas_sgemm(int ta, int tb, int64_t m, int64_t n, int64_t k, float alpha, const float *a, int64_t lda,
                       const float *b, int64_t ldb, float beta, float *c, int64_t ldc);
void nf_openblas_sgemv(int64_t rows, int64_t cols, float alpha, const float *a, int64_t lda, const float *x,
                       float beta, float *y);
void nf_reference_sgemm(int ta, int tb, int64_t m, int64_t n, int64_t k, float alpha, const float *a, int64_t lda,
                        const float *b, int64_t ldb, float beta, float *c, int64_t ldc);
void nf_reference_sgemv(int64_t rows, int64_t cols, float alpha, const float *a, int64_t lda, const float *x,
                        float beta, float *y);

/* gemm_onednn.c (with the onednn feature) */
void nf_onednn_sgemm(int ta, int tb, int64_t m, int64_t n, int64_t k, float alpha, const float *a, int64_t lda,
                     const float *b, int64_t ldb, float beta, float *c, int64_t ldc);

/* conv_onednn.c (with the onednn feature) */
nf_conv_kernel *nf_onednn_conv_prepare(const nf_conv_request *r, nf_conv_sizes *sizes);
int nf_onednn_conv_forward(nf_conv_kernel *k, const float *x, const float *w, const float *b, float *y, void *saved,
                           void *scratch);
int nf_onednn_conv_backward(nf_conv_kernel *k, const void *saved, const float *w, const float *dy, float *dx,
                            float *dw, float *db, void *scratch);
void nf_onednn_conv_release(nf_conv_kernel *k);
const char *nf_onednn_conv_name(const nf_conv_kernel *k);

/* eltwise_onednn.c (with the onednn feature) */
nf_eltwise_kernel *nf_onednn_eltwise_prepare(int fn, int64_t n, int backward, size_t *scratch_bytes);
int nf_onednn_eltwise_forward(nf_eltwise_kernel *k, const float *x, float *y, void *scratch);
int nf_onednn_eltwise_backward(nf_eltwise_kernel *k, const float *x, const float *dy, float *dx, void *scratch);
void nf_onednn_eltwise_release(nf_eltwise_kernel *k);
const char *nf_onednn_eltwise_name(const nf_eltwise_kernel *k);

/* im2col.c */
void nf_fast_im2col(const nf_conv_geom *g, const float *x, float *cols, int64_t stride);
void nf_fast_col2im_add(const nf_conv_geom *g, const float *dcols, int64_t stride, float *dx);
void nf_reference_im2col(const nf_conv_geom *g, const float *x, float *cols, int64_t stride);
void nf_reference_col2im_add(const nf_conv_geom *g, const float *dcols, int64_t stride, float *dx);

/* pool.c */
void nf_fast_max_plane(const nf_pool_geom *g, const float *x, float *y, float *argmax);
void nf_fast_avg_plane(const nf_pool_geom *g, const float *x, float *y, int include_pad);
void nf_fast_avg_plane_backward(const nf_pool_geom *g, const float *dy, float *dx, int include_pad);
void nf_reference_max_plane(const nf_pool_geom *g, const float *x, float *y, float *argmax);
void nf_reference_avg_plane(const nf_pool_geom *g, const float *x, float *y, int include_pad);
void nf_reference_avg_plane_backward(const nf_pool_geom *g, const float *dy, float *dx, int include_pad);

/* vecmath.c: libm in float (the default), and in double */
void nf_libm_sigmoid(int64_t n, const float *x, float *y);
void nf_libm_tanh(int64_t n, const float *x, float *y);
void nf_reference_sigmoid(int64_t n, const float *x, float *y);
void nf_reference_tanh(int64_t n, const float *x, float *y);

/* cells.c */
void nf_fast_lstm_cell(int64_t h, float *ai, float *af, float *ag, float *ao, const float *cp, float *c, float *y);
void nf_fast_lstm_cell_backward(int64_t h, float *ai, float *af, float *ag, float *ao, const float *c,
                                const float *cp, const float *dy, const float *dhn, float *dcn);
void nf_fast_gru_cell(int64_t h, float *xr, float *xz, float *xn, const float *hr, const float *hz,
                      const float *hn_in, float *hn, const float *hp, float *y);
void nf_fast_gru_cell_backward(int64_t h, float *ar, float *az, float *an, float *gr, float *gz, float *gn,
                               const float *hn, const float *hp, const float *dy, float *dhn);
void nf_reference_lstm_cell(int64_t h, float *ai, float *af, float *ag, float *ao, const float *cp, float *c,
                            float *y);
void nf_reference_lstm_cell_backward(int64_t h, float *ai, float *af, float *ag, float *ao, const float *c,
                                     const float *cp, const float *dy, const float *dhn, float *dcn);
void nf_reference_gru_cell(int64_t h, float *xr, float *xz, float *xn, const float *hr, const float *hz,
                           const float *hn_in, float *hn, const float *hp, float *y);
void nf_reference_gru_cell_backward(int64_t h, float *ar, float *az, float *an, float *gr, float *gz, float *gn,
                                    const float *hn, const float *hp, const float *dy, float *dhn);

void nf_fast_gru_reset_gates(int64_t h, float *xr, float *xz, const float *hr, const float *hz, const float *hp,
                             float *rh);
void nf_fast_gru_reset_output(int64_t h, const float *z, float *xn, const float *hn, const float *hp, float *y);
void nf_fast_gru_reset_output_backward(int64_t h, float *az, float *an, float *gz, float *gn, const float *hp,
                                       const float *dy, float *dhn);
void nf_fast_gru_reset_gates_backward(int64_t h, float *ar, float *gr, const float *drh, const float *hp, float *dhn);
void nf_reference_gru_reset_gates(int64_t h, float *xr, float *xz, const float *hr, const float *hz, const float *hp,
                                  float *rh);
void nf_reference_gru_reset_output(int64_t h, const float *z, float *xn, const float *hn, const float *hp, float *y);
void nf_reference_gru_reset_output_backward(int64_t h, float *az, float *an, float *gz, float *gn, const float *hp,
                                            const float *dy, float *dhn);
void nf_reference_gru_reset_gates_backward(int64_t h, float *ar, float *gr, const float *drh, const float *hp,
                                           float *dhn);

void nf_fast_lstm_peephole_cell(int64_t h, float *ai, float *af, float *ag, float *ao, const float *p, const float *cp,
                                float *c, float *y);
void nf_fast_lstm_peephole_cell_backward(int64_t h, float *ai, float *af, float *ag, float *ao, const float *p,
                                         const float *c, const float *cp, const float *dy, const float *dhn,
                                         float *dcn);
void nf_reference_lstm_peephole_cell(int64_t h, float *ai, float *af, float *ag, float *ao, const float *p,
                                     const float *cp, float *c, float *y);
void nf_reference_lstm_peephole_cell_backward(int64_t h, float *ai, float *af, float *ag, float *ao, const float *p,
                                              const float *c, const float *cp, const float *dy, const float *dhn,
                                              float *dcn);

#endif
