/* nodeflow — element-wise functions through oneDNN's eltwise primitives
 * (its JIT kernels evaluate erf and tanh in AVX-512 registers, where the
 * engine's loops call libm once per element), made once for a count of
 * values when a plan compiles. Backward writes f'(x) dy to the scratch
 * area, then adds it to dx (the engine's backward kernels add). Built
 * only with the `onednn` Meson feature. */
#include <stdlib.h>
#include <string.h>

#include "kernels/onednn.h"
#include "kernels/variants.h"

struct nf_eltwise_kernel {
    dnnl_stream_t stream;
    int64_t n;
    nf_dnnl_prim fwd, bwd;
    char name[96];
};

void nf_onednn_eltwise_release(nf_eltwise_kernel *k)
{
    if (!k)
        return;
    nf_dnnl_destroy_prim(&k->fwd);
    nf_dnnl_destroy_prim(&k->bwd);
    if (k->stream)
        dnnl_stream_destroy(k->stream);
    free(k);
}

static dnnl_alg_kind_t algorithm(int fn)
{
    switch (fn) {
    case NF_ELTWISE_GELU_ERF: return dnnl_eltwise_gelu_erf;
    case NF_ELTWISE_GELU_TANH: return dnnl_eltwise_gelu_tanh;
    default: return dnnl_alg_kind_undef;
    }
}

static int make_eltwise(nf_eltwise_kernel *k, dnnl_alg_kind_t alg, int backward)
{
    dnnl_memory_desc_t md;
    dnnl_dims_t dims = {k->n};
    dnnl_eltwise_desc_t fd, bd;
    dnnl_primitive_desc_t fpd = NULL;
    static const dnnl_query_t fq[NF_DNNL_SLOTS] = {[NF_DNNL_SRC] = dnnl_query_src_md, [NF_DNNL_DST] = dnnl_query_dst_md,
                                                   [NF_DNNL_SCRATCH] = dnnl_query_scratchpad_md};
    static const int fa[NF_DNNL_SLOTS] = {[NF_DNNL_SRC] = DNNL_ARG_SRC, [NF_DNNL_DST] = DNNL_ARG_DST,
                                          [NF_DNNL_SCRATCH] = DNNL_ARG_SCRATCHPAD};
    /* backward: the data in SRC, d loss / dy in EXTRA, d loss / dx in DST */
    static const dnnl_query_t bq[NF_DNNL_SLOTS] = {[NF_DNNL_SRC] = dnnl_query_src_md,
                                                   [NF_DNNL_EXTRA] = dnnl_query_diff_dst_md,
                                                   [NF_DNNL_DST] = dnnl_query_diff_src_md,
                                                   [NF_DNNL_SCRATCH] = dnnl_query_scratchpad_md};
    static const int ba[NF_DNNL_SLOTS] = {[NF_DNNL_SRC] = DNNL_ARG_SRC, [NF_DNNL_EXTRA] = DNNL_ARG_DIFF_DST,
                                          [NF_DNNL_DST] = DNNL_ARG_DIFF_SRC, [NF_DNNL_SCRATCH] = DNNL_ARG_SCRATCHPAD};
    int ok = dnnl_memory_desc_init_by_tag(&md, 1, dims, dnnl_f32, dnnl_a) == dnnl_success &&
             dnnl_eltwise_forward_desc_init(&fd, backward ? dnnl_forward_training : dnnl_forward_inference, alg, &md,
                                            0.0f, 0.0f) == dnnl_success &&
             nf_dnnl_make_prim(&k->fwd, &fd, NULL, fa, fq, &fpd, k->name, sizeof k->name);
    if (ok && backward)
        ok = dnnl_eltwise_backward_desc_init(&bd, alg, &md, &md, 0.0f, 0.0f) == dnnl_success &&
             nf_dnnl_make_prim(&k->bwd, &bd, fpd, ba, bq, NULL, k->name, sizeof k->name);
    if (fpd)
        dnnl_primitive_desc_destroy(fpd);
    return ok;
}

nf_eltwise_kernel *nf_onednn_eltwise_prepare(int fn, int64_t n, int backward, size_t *scratch_bytes)
{
    dnnl_alg_kind_t alg = algorithm(fn);
    if (!nf_dnnl_engine() || alg == dnnl_alg_kind_undef || n < 1)
        return NULL;
    nf_eltwise_kernel *k = calloc(1, sizeof *k);
    if (!k)
        return NULL;
    k->n = n;
    if (dnnl_stream_create(&k->stream, nf_dnnl_engine(), dnnl_stream_default_flags) != dnnl_success ||
        !make_eltwise(k, alg, backward)) {
        nf_onednn_eltwise_release(k);
        return NULL;
    }
    size_t f = 0, b = 0;
    nf_dnnl_take(&f, k->fwd.bytes[NF_DNNL_SCRATCH]);
    if (backward) {
        nf_dnnl_take(&b, (size_t)n * sizeof(float));
        nf_dnnl_take(&b, k->bwd.bytes[NF_DNNL_SCRATCH]);
    }
    *scratch_bytes = (f > b ? f : b) + NF_DNNL_ALIGN;
    return k;
}

int nf_onednn_eltwise_forward(nf_eltwise_kernel *k, const float *x, float *y, void *scratch)
{
    const void *buffers[NF_DNNL_SLOTS] = {[NF_DNNL_SRC] = x, [NF_DNNL_DST] = y,
                                          [NF_DNNL_SCRATCH] = nf_dnnl_aligned(scratch)};
    return nf_dnnl_run_prim(k->stream, &k->fwd, buffers);
}

int nf_onednn_eltwise_backward(nf_eltwise_kernel *k, const float *x, const float *dy, float *dx, void *scratch)
{
    char *s = nf_dnnl_aligned(scratch);
    size_t at = 0, grad_at = nf_dnnl_take(&at, (size_t)k->n * sizeof(float)), pad_at = nf_dnnl_take(&at, 0);
    float *grad = (float *)(s + grad_at);
    const void *buffers[NF_DNNL_SLOTS] = {[NF_DNNL_SRC] = x, [NF_DNNL_EXTRA] = dy, [NF_DNNL_DST] = grad,
                                          [NF_DNNL_SCRATCH] = s + pad_at};
    if (!nf_dnnl_run_prim(k->stream, &k->bwd, buffers))
        return 0;
    int64_t n = k->n;
    #pragma omp parallel for simd if (n > ((int64_t)1 << 16)) schedule(static)
    for (int64_t i = 0; i < n; i++)
        dx[i] += grad[i];
    return 1;
}

const char *nf_onednn_eltwise_name(const nf_eltwise_kernel *k) { return k->name; }
