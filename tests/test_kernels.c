/* Every registered kernel variant against the reference kernels, on
 * random matrices of edge shapes (1, odd, prime, large), both
 * transpositions, padded leading dimensions, and alpha and beta. */
#include <math.h>
#include <stdio.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "kernels/kernels.h"

static float *random_floats(int64_t n, unsigned *seed)
{
    float *x = malloc((size_t)(n ? n : 1) * sizeof(float));
    for (int64_t i = 0; i < n; i++)
        x[i] = (float)rand_r(seed) / (float)RAND_MAX * 2.0f - 1.0f;
    return x;
}

/* |got - want| within float rounding of a k-term dot product */
static void assert_close(const float *got, const float *want, int64_t n, int64_t k, const char *what)
{
    for (int64_t i = 0; i < n; i++) {
        double tol = 1e-5 * (double)(k + 1) + 1e-5 * fabs(want[i]);
        if (!(fabs((double)got[i] - want[i]) <= tol))
            fail_msg("%s: element %lld is %.8g, the reference says %.8g", what, (long long)i, got[i], want[i]);
    }
}

static void check_gemm(const nf_kernels *v, int ta, int tb, int64_t m, int64_t n, int64_t k, float alpha, float beta)
{
    const nf_kernels *ref = nf_kernels_find("reference");
    unsigned seed = (unsigned)(m * 7919 + n * 131 + k * 17 + ta * 3 + tb);
    int64_t lda = (ta ? m : k) + 3, ldb = (tb ? k : n) + 1, ldc = n + 2; /* padded rows */
    float *a = random_floats((ta ? k : m) * lda, &seed), *b = random_floats((tb ? n : k) * ldb, &seed);
    float *c = random_floats(m * ldc, &seed), *want = malloc((size_t)(m * ldc + 1) * sizeof(float));
    memcpy(want, c, (size_t)(m * ldc) * sizeof(float));
    v->sgemm(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
    ref->sgemm(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, want, ldc);
    char what[160];
    snprintf(what, sizeof what, "%s sgemm %c%c %lldx%lldx%lld alpha %g beta %g", v->name, ta ? 'T' : 'N',
             tb ? 'T' : 'N', (long long)m, (long long)n, (long long)k, alpha, beta);
    assert_close(c, want, m * ldc, k, what);
    free(a);
    free(b);
    free(c);
    free(want);
}

static void test_gemm_variants(void **state)
{
    (void)state;
    const int64_t sizes[][3] = {{1, 1, 1}, {1, 7, 5}, {7, 1, 13}, {3, 5, 1}, {17, 31, 13}, {64, 33, 97},
                                {128, 257, 64}, {300, 1, 290}, {2, 1024, 3}};
    const float ab[][2] = {{1, 0}, {1, 1}, {0.5f, -2}};
    assert_true(nf_kernels_count() >= 2);
    assert_non_null(nf_kernels_find("reference"));
    for (int v = 0; v < nf_kernels_count(); v++)
        for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++)
            for (int t = 0; t < 4; t++)
                for (size_t c = 0; c < sizeof ab / sizeof ab[0]; c++)
                    check_gemm(nf_kernels_at(v), t & 1, t >> 1, sizes[s][0], sizes[s][1], sizes[s][2], ab[c][0], ab[c][1]);
}

static void test_gemv_variants(void **state)
{
    (void)state;
    const nf_kernels *ref = nf_kernels_find("reference");
    const int64_t shapes[][2] = {{1, 1}, {1, 9}, {9, 1}, {31, 17}, {257, 784}};
    for (int v = 0; v < nf_kernels_count(); v++)
        for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++)
            for (int beta = 0; beta < 2; beta++) {
                unsigned seed = (unsigned)(s * 31 + (size_t)beta);
                int64_t rows = shapes[s][0], cols = shapes[s][1], lda = cols + 1;
                float *a = random_floats(rows * lda, &seed), *x = random_floats(cols, &seed);
                float *y = random_floats(rows, &seed), *want = malloc((size_t)rows * sizeof(float));
                memcpy(want, y, (size_t)rows * sizeof(float));
                nf_kernels_at(v)->sgemv(NF_NO_TRANS, rows, cols, 1.5f, a, lda, x, (float)beta, y);
                ref->sgemv(NF_NO_TRANS, rows, cols, 1.5f, a, lda, x, (float)beta, want);
                assert_close(y, want, rows, cols, nf_kernels_at(v)->name);
                free(a);
                free(x);
                free(y);
                free(want);
            }
}

/* beta = 0 must not read C (it may hold NaN, as BLAS allows) */
static void test_beta_zero_ignores_c(void **state)
{
    (void)state;
    for (int v = 0; v < nf_kernels_count(); v++) {
        float a[4] = {1, 2, 3, 4}, b[4] = {1, 0, 0, 1}, c[4] = {NAN, NAN, NAN, NAN};
        nf_kernels_at(v)->sgemm(NF_NO_TRANS, NF_NO_TRANS, 2, 2, 2, 1.0f, a, 2, b, 2, 0.0f, c, 2);
        for (int i = 0; i < 4; i++)
            assert_true(c[i] == a[i]);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_gemm_variants),
        cmocka_unit_test(test_gemv_variants),
        cmocka_unit_test(test_beta_zero_ignores_c),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
