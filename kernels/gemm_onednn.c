/* nodeflow — matrix products through oneDNN (the only file that calls
 * dnnl_): dnnl_sgemm is row-major and BLAS-shaped, so it takes the
 * engine's products as they are. On CPUs with AVX-512 it runs its own
 * kernels at 70-100% of the FMA peak, where OpenBLAS as configured on the
 * development machines runs its AVX2 ones at half of it (W1-W4 measured
 * 1.5-1.7x faster end to end by swapping this call alone). It runs on the
 * engine's OpenMP threads; a call from inside a parallel region runs on
 * the calling thread. Built only with the `onednn` Meson feature. */
#include <oneapi/dnnl/dnnl.h>

#include "kernels/variants.h"

void nf_onednn_sgemm(int ta, int tb, int64_t m, int64_t n, int64_t k, float alpha, const float *a, int64_t lda,
                     const float *b, int64_t ldb, float beta, float *c, int64_t ldc)
{
    /* with beta 0 dnnl_sgemm does not read C, as BLAS (test_kernels:
     * NaN left in C, products small and large) */
    if (m == 0 || n == 0)
        return;
    /* it refuses only arguments that are not a product (checked before it
     * writes anything): those go to the plain loops */
    if (dnnl_sgemm(ta ? 'T' : 'N', tb ? 'T' : 'N', m, n, k, alpha, a, lda, b, ldb, beta, c, ldc) != dnnl_success)
        nf_reference_sgemm(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}
