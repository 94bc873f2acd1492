/* nodeflow — kernels on OpenBLAS (Debian's OpenMP build, so that its
 * threads are the engine's). The only file that calls cblas_. */
#include <cblas.h>

#include "kernels/kernels.h"

static enum CBLAS_TRANSPOSE trans(int t) { return t ? CblasTrans : CblasNoTrans; }

static void openblas_sgemm(int ta, int tb, int64_t m, int64_t n, int64_t k, float alpha, const float *a, int64_t lda,
                           const float *b, int64_t ldb, float beta, float *c, int64_t ldc)
{
    cblas_sgemm(CblasRowMajor, trans(ta), trans(tb), (int)m, (int)n, (int)k, alpha, a, (int)lda, b, (int)ldb, beta,
                c, (int)ldc);
}

static void openblas_sgemv(int ta, int64_t rows, int64_t cols, float alpha, const float *a, int64_t lda,
                           const float *x, float beta, float *y)
{
    cblas_sgemv(CblasRowMajor, trans(ta), (int)rows, (int)cols, alpha, a, (int)lda, x, 1, beta, y, 1);
}

const nf_kernels nf_kernels_openblas = {"openblas", openblas_sgemm, openblas_sgemv};

void nf_kernels_set_threads(int threads) { openblas_set_num_threads(threads); }
