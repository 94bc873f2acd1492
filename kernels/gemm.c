/* nodeflow — matrix products: OpenBLAS's (Debian's OpenMP build, so that
 * its threads are the engine's; the only file that calls cblas_), and the
 * reference, plain loops summing in double. */
#include <cblas.h>
#include <limits.h>

#include "kernels/variants.h"

static enum CBLAS_TRANSPOSE trans(int t) { return t ? CblasTrans : CblasNoTrans; }

/* CBLAS takes int sizes: larger ones (not reachable from a model's
 * limits today) go to the reference loops rather than being cut. */
static int fits_int(int64_t a, int64_t b, int64_t c, int64_t d) { return (a | b | c | d) <= INT_MAX; }

void nf_openblas_sgemm(int ta, int tb, int64_t m, int64_t n, int64_t k, float alpha, const float *a, int64_t lda,
                       const float *b, int64_t ldb, float beta, float *c, int64_t ldc)
{
    if (!fits_int(m, n, k, lda | ldb | ldc)) {
        nf_reference_sgemm(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
        return;
    }
    cblas_sgemm(CblasRowMajor, trans(ta), trans(tb), (int)m, (int)n, (int)k, alpha, a, (int)lda, b, (int)ldb, beta,
                c, (int)ldc);
}

void nf_openblas_sgemv(int64_t rows, int64_t cols, float alpha, const float *a, int64_t lda, const float *x,
                       float beta, float *y)
{
    if (!fits_int(rows, cols, lda, 0)) {
        nf_reference_sgemv(rows, cols, alpha, a, lda, x, beta, y);
        return;
    }
    cblas_sgemv(CblasRowMajor, CblasNoTrans, (int)rows, (int)cols, alpha, a, (int)lda, x, 1, beta, y, 1);
}

void nf_kernels_set_threads(int threads) { openblas_set_num_threads(threads); }

/* element (i, j) of op(X) for a row-major X with leading dimension ld */
static float at(const float *x, int transposed, int64_t ld, int64_t i, int64_t j)
{
    return transposed ? x[j * ld + i] : x[i * ld + j];
}

void nf_reference_sgemm(int ta, int tb, int64_t m, int64_t n, int64_t k, float alpha, const float *a, int64_t lda,
                        const float *b, int64_t ldb, float beta, float *c, int64_t ldc)
{
    for (int64_t i = 0; i < m; i++)
        for (int64_t j = 0; j < n; j++) {
            double sum = 0;
            for (int64_t p = 0; p < k; p++)
                sum += (double)at(a, ta, lda, i, p) * at(b, tb, ldb, p, j);
            double before = beta == 0.0f ? 0.0 : (double)beta * c[i * ldc + j];
            c[i * ldc + j] = (float)(alpha * sum + before);
        }
}

void nf_reference_sgemv(int64_t rows, int64_t cols, float alpha, const float *a, int64_t lda, const float *x,
                        float beta, float *y)
{
    for (int64_t i = 0; i < rows; i++) {
        double sum = 0;
        for (int64_t j = 0; j < cols; j++)
            sum += (double)a[i * lda + j] * x[j];
        y[i] = (float)(alpha * sum + (beta == 0.0f ? 0.0 : (double)beta * y[i]));
    }
}
