/* nodeflow — the kernels layer: every matrix product and every hot loop
 * that more than one node type (or more than one code path) needs.
 *
 * A kernel set (nf_kernels) holds one variant of every kernel. "onednn"
 * (the default when built with oneDNN) has oneDNN's products and its
 * convolution and element-wise primitives, prepared per node when a plan
 * compiles; "openblas" has OpenBLAS's products and the engine's fast loops
 * (im2col with its 1x1 and stride-1 paths, branch-free 2x2 max pooling,
 * recurrent cells on fastmath.h's polynomial exp and tanh); "reference"
 * has plain loops that are obviously right, summing in double: the
 * yardstick every other variant is tested against (tests/test_kernels.c).
 * A plan picks a set for each node when it compiles (today every node
 * gets nf_kernels_for_plan's; a set chosen by shape fits the same slot)
 * and hands it to the node's forward and backward in nf_exec.kernels;
 * nodes never call a library or choose a path of their own.
 *
 * Matrices are row-major; op(X) is X or its transpose. Kernels run on
 * the calling thread (sgemm may use OpenBLAS's threads). */
#ifndef NF_KERNELS_KERNELS_H
#define NF_KERNELS_KERNELS_H

#include <stddef.h>
#include <stdint.h>

enum { NF_NO_TRANS = 0, NF_TRANS = 1 };

/* What a convolution's padding holds (PyTorch's padding_mode): zeros;
 * the input mirrored at its edge, the edge not repeated (reflect); the
 * edge repeated (replicate); the input wrapped around (circular). */
typedef enum nf_pad_mode { NF_PAD_ZEROS, NF_PAD_REFLECT, NF_PAD_REPLICATE, NF_PAD_CIRCULAR } nf_pad_mode;

/* A convolution's geometry per sample (conv2d; conv1d has h = kh = 1). */
typedef struct nf_conv_geom {
    int64_t c, h, w;          /* input per sample */
    int64_t o, oh, ow;        /* output per sample */
    int64_t kh, kw, groups;
    int64_t sh, sw, dh, dw;   /* stride and dilation per axis */
    int pad_mode;             /* nf_pad_mode: what the padding holds */
    int64_t pt, pb, pl, pr;   /* padding per side */
    int64_t ckk, hw;          /* rows of cols per group (C/G kh kw), output positions */
    int direct;               /* 1x1, stride 1, no padding: cols = x */
} nf_conv_geom;

/* A pooling window's geometry over one [h, w] plane. */
typedef struct nf_pool_geom {
    int64_t c, h, w, oh, ow, kh, kw, sh, sw, ph, pw;
    int64_t dh, dw;   /* dilation (max pooling; 1 for average pooling) */
} nf_pool_geom;

/* A convolution prepared once for a geometry and a batch (a library's
 * primitives, created when a plan compiles and run every time). */
typedef struct nf_conv_kernel nf_conv_kernel;

typedef struct nf_conv_request {
    nf_conv_geom geom;
    int64_t batch;        /* the rows every run has */
    int bias;             /* a bias per output channel */
    int backward;         /* backward runs (the weights' gradient) */
    int input_grad;       /* ... and the input's gradient is wanted */
} nf_conv_request;

typedef struct nf_conv_sizes {
    size_t saved_bytes;   /* kept from forward to backward (training) */
    size_t scratch_bytes; /* scratch while forward or backward runs */
} nf_conv_sizes;

/* An element-wise function prepared once for a count of values. */
typedef struct nf_eltwise_kernel nf_eltwise_kernel;

enum nf_eltwise_fn {
    NF_ELTWISE_GELU_ERF,  /* x Phi(x) = 0.5 x (1 + erf(x / sqrt 2)) */
    NF_ELTWISE_GELU_TANH  /* 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))) */
};

typedef struct nf_kernels {
    const char *name;

    /* C[m, n] = alpha op(A)[m, k] op(B)[k, n] + beta C (beta 0: C is not read) */
    void (*sgemm)(int trans_a, int trans_b, int64_t m, int64_t n, int64_t k, float alpha, const float *a,
                  int64_t lda, const float *b, int64_t ldb, float beta, float *c, int64_t ldc);
    /* y[rows] = alpha A[rows, cols] x + beta y (beta 0: y is not read) */
    void (*sgemv)(int64_t rows, int64_t cols, float alpha, const float *a, int64_t lda, const float *x, float beta,
                  float *y);

    /* x is one group's channels (C/G, H, W); cols is (C/G kh kw, OH OW)
     * with rows `stride` floats apart: cols[(c kh + i) kw + j][oy ow + ox] =
     * x[c][oy sh - pt + i dh][ox sw - pl + j dw]; outside the input 0, or
     * (pad_mode) the position it maps to. */
    void (*im2col)(const nf_conv_geom *g, const float *x, float *cols, int64_t stride);
    /* dx += col2im(dcols): each column entry added back to its pixel
     * (in the padding: to the position it maps to, or nowhere). */
    void (*col2im_add)(const nf_conv_geom *g, const float *dcols, int64_t stride, float *dx);

    /* A whole convolution (NULL in sets without one; the node then runs
     * im2col and sgemm). prepare returns NULL where the set has no fast
     * kernel for the request; it fills the sizes the runs need. forward:
     * y = conv(x, w) + b (b NULL: none), keeping in `saved` what backward
     * needs (saved NULL: inference); backward: dx += (NULL: skipped),
     * dw += and db += (NULL: none). Weights [O, C/G, kh, kw], tensors
     * NCHW, `batch` rows. They return 0 if the library failed. */
    nf_conv_kernel *(*conv_prepare)(const nf_conv_request *r, nf_conv_sizes *sizes);
    int (*conv_forward)(nf_conv_kernel *k, const float *x, const float *w, const float *b, float *y, void *saved,
                        void *scratch);
    int (*conv_backward)(nf_conv_kernel *k, const void *saved, const float *w, const float *dy, float *dx,
                         float *dw, float *db, void *scratch);
    void (*conv_release)(nf_conv_kernel *k);
    /* what runs it: the library's implementations, e.g. "jit:avx512_core" */
    const char *(*conv_name)(const nf_conv_kernel *k);

    /* One plane: y[oy, ox] = max of its window (NaN wins, as in PyTorch)
     * and argmax = the position of the first maximum in x, as a float. */
    void (*max_plane)(const nf_pool_geom *g, const float *x, float *y, float *argmax);
    /* One plane: y = window mean (padding in the divisor when include_pad),
     * and its backward dx += dy / divisor over each window. */
    void (*avg_plane)(const nf_pool_geom *g, const float *x, float *y, int include_pad);
    void (*avg_plane_backward)(const nf_pool_geom *g, const float *dy, float *dx, int include_pad);

    /* An element-wise function (nf_eltwise_fn) over n values (NULL in
     * sets without one; prepare returns NULL where the set has none for
     * it): y = f(x); backward dx += f'(x) dy. Both use `scratch`, of the
     * size prepare gives; they return 0 if the library failed. */
    nf_eltwise_kernel *(*eltwise_prepare)(int fn, int64_t n, int backward, size_t *scratch_bytes);
    int (*eltwise_forward)(nf_eltwise_kernel *k, const float *x, float *y, void *scratch);
    int (*eltwise_backward)(nf_eltwise_kernel *k, const float *x, const float *dy, float *dx, void *scratch);
    void (*eltwise_release)(nf_eltwise_kernel *k);
    const char *(*eltwise_name)(const nf_eltwise_kernel *k);

    /* y[i] = 1 / (1 + exp(-x[i])) and y[i] = tanh(x[i]), n values. */
    void (*sigmoid)(int64_t n, const float *x, float *y);
    void (*tanh)(int64_t n, const float *x, float *y);

    /* One row of an LSTM step (PyTorch's gate order i, f, g, o):
     * i = s(ai) f = s(af) g = tanh(ag) o = s(ao), written over the
     * pre-activations; c = f cp + i g; y = o tanh(c). */
    void (*lstm_cell)(int64_t h, float *ai, float *af, float *ag, float *ao, const float *cp, float *c, float *y);
    /* Its backward: gate activations in, gate gradients out (in place);
     * dh = dy + dhn; dc = dh o (1 - tanh^2 c) + dcn, dcn becomes dc f. */
    void (*lstm_cell_backward)(int64_t h, float *ai, float *af, float *ag, float *ao, const float *c,
                               const float *cp, const float *dy, const float *dhn, float *dcn);
    /* With peepholes p = (p_i, p_f, p_o) [3 h] (ONNX's P): i and f also
     * read p_i cp and p_f cp, o reads p_o c; backward, dc takes dA_o p_o
     * and dcn becomes dc f + dA_i p_i + dA_f p_f. */
    void (*lstm_peephole_cell)(int64_t h, float *ai, float *af, float *ag, float *ao, const float *p, const float *cp,
                               float *c, float *y);
    void (*lstm_peephole_cell_backward)(int64_t h, float *ai, float *af, float *ag, float *ao, const float *p,
                                        const float *c, const float *cp, const float *dy, const float *dhn,
                                        float *dcn);
    /* One row of a GRU step (r, z, n): r = s(xr + hr), z = s(xz + hz),
     * n = tanh(xn + r hn_in), written over xr, xz, xn; hn = hn_in;
     * y = (1 - z) n + z hp. */
    void (*gru_cell)(int64_t h, float *xr, float *xz, float *xn, const float *hr, const float *hz,
                     const float *hn_in, float *hn, const float *hp, float *y);
    /* Its backward: dh = dy + dhn; dan = dh (1 - z)(1 - n^2);
     * dar = dan hn r(1-r); daz = dh (hp - n) z(1-z): the input part over
     * ar, az, an, the hidden part to gr, gz, gn = dan r; dhn becomes dh z. */
    void (*gru_cell_backward)(int64_t h, float *ar, float *az, float *an, float *gr, float *gz, float *gn,
                              const float *hn, const float *hp, const float *dy, float *dhn);
    /* A GRU step with the reset gate before the hidden product (ONNX's
     * linear_before_reset = 0), in two halves around rh W_hn^T:
     * r = s(xr + hr), z = s(xz + hz) over xr, xz, and rh = r hp; then
     * n = tanh(xn + hn) over xn, y = (1 - z) n + z hp. */
    void (*gru_reset_gates)(int64_t h, float *xr, float *xz, const float *hr, const float *hz, const float *hp,
                            float *rh);
    void (*gru_reset_output)(int64_t h, const float *z, float *xn, const float *hn, const float *hp, float *y);
    /* Their backward, output half first: dh = dy + dhn;
     * dan = dh (1 - z)(1 - n^2), daz = dh (hp - n) z(1-z) over an, az and
     * to gn, gz; dhn becomes dh z. Then with drh = dan W_hn:
     * dar = drh hp r(1-r) over ar and to gr; dhn += drh r. */
    void (*gru_reset_output_backward)(int64_t h, float *az, float *an, float *gz, float *gn, const float *hp,
                                      const float *dy, float *dhn);
    void (*gru_reset_gates_backward)(int64_t h, float *ar, float *gr, const float *drh, const float *hp, float *dhn);
} nf_kernels;

/* The registry: variants by index (0 is the default) and by name. */
int nf_kernels_count(void);
const nf_kernels *nf_kernels_at(int index);
const nf_kernels *nf_kernels_find(const char *name);

/* The set a plan gives its nodes: the default, or the one named by the
 * environment variable NODEFLOW_KERNELS (e.g. "reference", to run a model
 * on the reference kernels); NULL when that names no set. Read when a
 * plan compiles, never per call. */
const nf_kernels *nf_kernels_for_plan(void);

/* The threads the libraries behind the kernels may use (OpenBLAS's). */
void nf_kernels_set_threads(int threads);

#endif
