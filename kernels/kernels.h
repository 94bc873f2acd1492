/* nodeflow — the kernels layer: every matrix product goes through here.
 *
 * A kernel set (nf_kernels) is one variant of every kernel: "openblas"
 * (OpenBLAS's sgemm and sgemv) and "reference" (plain loops that are
 * obviously right, accumulating in double: the yardstick every other
 * variant is tested against, tests/test_kernels.c). A plan picks a set for
 * each node when it compiles (nf_kernels_for) and hands it to the node's
 * forward and backward in nf_exec.kernels; nodes never call a library.
 *
 * Matrices are row-major; op(X) is X or its transpose. */
#ifndef NF_KERNELS_KERNELS_H
#define NF_KERNELS_KERNELS_H

#include <stdint.h>

enum { NF_NO_TRANS = 0, NF_TRANS = 1 };

/* C[m, n] = alpha op(A)[m, k] op(B)[k, n] + beta C, with leading
 * dimensions lda, ldb, ldc. */
typedef void (*nf_sgemm_fn)(int trans_a, int trans_b, int64_t m, int64_t n, int64_t k, float alpha, const float *a,
                            int64_t lda, const float *b, int64_t ldb, float beta, float *c, int64_t ldc);
/* y[m] = alpha op(A)[m, n] x[n] + beta y (A is [rows, cols], lda). */
typedef void (*nf_sgemv_fn)(int trans_a, int64_t rows, int64_t cols, float alpha, const float *a, int64_t lda,
                            const float *x, float beta, float *y);

typedef struct nf_kernels {
    const char *name;
    nf_sgemm_fn sgemm;
    nf_sgemv_fn sgemv;
} nf_kernels;

/* The registry: variants by index (0 is the default) and by name. */
int nf_kernels_count(void);
const nf_kernels *nf_kernels_at(int index);
const nf_kernels *nf_kernels_find(const char *name);

/* The variant a plan gives a node: the default, or the one named by the
 * environment variable NODEFLOW_KERNELS (e.g. "reference", to run a model
 * on the reference kernels). Read when a plan compiles, never per call. */
const nf_kernels *nf_kernels_for_plan(void);

/* The threads the libraries behind the kernels may use (OpenBLAS's). */
void nf_kernels_set_threads(int threads);

#endif
