/* nodeflow — reference kernels: the definitions, as plain loops summing
 * in double. Slow and obviously right; every other variant is tested
 * against them. */
#include "kernels/kernels.h"

/* element (i, j) of op(X) for a row-major X with leading dimension ld */
static float at(const float *x, int trans, int64_t ld, int64_t i, int64_t j)
{
    return trans ? x[j * ld + i] : x[i * ld + j];
}

/* C = alpha op(A) op(B) + beta C; beta = 0 ignores what C held (as BLAS) */
static void reference_sgemm(int ta, int tb, int64_t m, int64_t n, int64_t k, float alpha, const float *a, int64_t lda,
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

static void reference_sgemv(int ta, int64_t rows, int64_t cols, float alpha, const float *a, int64_t lda,
                            const float *x, float beta, float *y)
{
    int64_t m = ta ? cols : rows, n = ta ? rows : cols;
    for (int64_t i = 0; i < m; i++) {
        double sum = 0;
        for (int64_t j = 0; j < n; j++)
            sum += (double)(ta ? a[j * lda + i] : a[i * lda + j]) * x[j];
        y[i] = (float)(alpha * sum + (beta == 0.0f ? 0.0 : (double)beta * y[i]));
    }
}

const nf_kernels nf_kernels_reference = {"reference", reference_sgemm, reference_sgemv};
