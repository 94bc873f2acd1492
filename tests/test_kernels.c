/* Every registered kernel set against the reference kernels: products on
 * random matrices of edge shapes (1, odd, prime, large), both
 * transpositions, padded leading dimensions, alpha and beta; im2col and
 * col2im and pooling windows on geometries with stride, dilation, padding,
 * ceil-mode overhang, 1x1 and 1-D, exactly (they move or compare values,
 * in the same order); sigmoid, tanh and the recurrent cells within float
 * rounding; and the kernels a set prepares for a node (oneDNN's whole
 * convolutions, forward and backward, in inference and training, with
 * and without the input's gradient; GELU, exact and tanh) against direct
 * loops in double. */
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
                nf_kernels_at(v)->sgemv(rows, cols, 1.5f, a, lda, x, (float)beta, y);
                ref->sgemv(rows, cols, 1.5f, a, lda, x, (float)beta, want);
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
        /* one row (a matrix-vector path), both transposes of B */
        for (int tb = 0; tb < 2; tb++) {
            float row[2] = {NAN, NAN};
            nf_kernels_at(v)->sgemm(NF_NO_TRANS, tb, 1, 2, 2, 1.0f, a, 2, b, 2, 0.0f, row, 2);
            assert_true(row[0] == 1.0f && row[1] == 2.0f);
        }
        /* and a product large enough for the libraries' blocked paths,
         * both transposes: every element 1 x K */
        enum { M = 64, N = 96, K = 40 };
        static float ones_a[M * K], ones_b[K * N], big[M * N];
        for (int i = 0; i < M * K; i++)
            ones_a[i] = 1.0f;
        for (int i = 0; i < K * N; i++)
            ones_b[i] = 1.0f;
        for (int t = 0; t < 4; t++) {
            for (int i = 0; i < M * N; i++)
                big[i] = NAN;
            nf_kernels_at(v)->sgemm(t & 1, t & 2 ? 1 : 0, M, N, K, 1.0f, ones_a, t & 1 ? M : K, ones_b, t & 2 ? K : N,
                                    0.0f, big, N);
            for (int i = 0; i < M * N; i++)
                assert_true(big[i] == (float)K);
        }
    }
}

/* A convolution geometry as nodes/conv.c makes it (whole windows). */
static float *copy_floats(const float *x, int64_t n)
{
    float *y = malloc((size_t)(n ? n : 1) * sizeof(float));
    memcpy(y, x, (size_t)n * sizeof(float));
    return y;
}

static nf_conv_geom conv_geom(int64_t c, int64_t h, int64_t w, int64_t kh, int64_t kw, int64_t stride, int64_t dil,
                              int64_t pt, int64_t pb, int64_t pl, int64_t pr)
{
    nf_conv_geom g = {0};
    g.c = c, g.h = h, g.w = w, g.o = 1, g.kh = kh, g.kw = kw, g.sh = g.sw = stride, g.dh = g.dw = dil, g.groups = 1;
    g.pt = pt, g.pb = pb, g.pl = pl, g.pr = pr;
    g.oh = (h + pt + pb - dil * (kh - 1) - 1) / stride + 1;
    g.ow = (w + pl + pr - dil * (kw - 1) - 1) / stride + 1;
    g.ckk = c * kh * kw;
    g.hw = g.oh * g.ow;
    g.direct = kh == 1 && kw == 1 && stride == 1 && !pt && !pb && !pl && !pr;
    return g;
}

/* The same with stride and dilation per axis. */
static nf_conv_geom conv_geom_axes(int64_t c, int64_t h, int64_t w, int64_t kh, int64_t kw, int64_t sh, int64_t sw,
                                   int64_t dh, int64_t dw, int64_t ph, int64_t pw)
{
    nf_conv_geom g = conv_geom(c, h, w, kh, kw, 1, 1, ph, ph, pw, pw);
    g.sh = sh, g.sw = sw, g.dh = dh, g.dw = dw;
    g.oh = (h + 2 * ph - dh * (kh - 1) - 1) / sh + 1;
    g.ow = (w + 2 * pw - dw * (kw - 1) - 1) / sw + 1;
    g.hw = g.oh * g.ow;
    g.direct = 0;
    return g;
}

static void test_im2col_variants(void **state)
{
    (void)state;
    const nf_conv_geom geoms[] = {
        conv_geom(1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0),   conv_geom(3, 7, 5, 1, 1, 1, 1, 0, 0, 0, 0), /* 1x1 */
        conv_geom(2, 9, 11, 3, 3, 1, 1, 1, 1, 1, 1),  conv_geom(3, 13, 7, 5, 3, 2, 1, 2, 1, 0, 2),
        conv_geom(1, 17, 19, 3, 3, 3, 2, 2, 2, 2, 2), conv_geom(4, 1, 29, 1, 5, 1, 3, 0, 0, 4, 4), /* 1-D */
        conv_geom(2, 6, 6, 7, 7, 1, 1, 3, 3, 3, 3),   /* kernel wider than the input */
        conv_geom_axes(2, 11, 9, 3, 2, 2, 1, 1, 3, 1, 0), conv_geom_axes(1, 8, 13, 2, 3, 1, 3, 2, 1, 0, 2),
    };
    const nf_kernels *ref = nf_kernels_find("reference");
    for (size_t i = 0; i < sizeof geoms / sizeof geoms[0]; i++) {
        const nf_conv_geom *g = &geoms[i];
        unsigned seed = (unsigned)i + 1;
        int64_t stride = g->hw + 3, in = g->c * g->h * g->w, cols = g->ckk * stride;
        float *x = random_floats(in, &seed), *want = calloc((size_t)cols, sizeof(float));
        float *dx_want = random_floats(in, &seed), *dcols = random_floats(cols, &seed);
        ref->im2col(g, x, want, stride);
        ref->col2im_add(g, dcols, stride, dx_want);
        for (int v = 0; v < nf_kernels_count(); v++) {
            float *got = calloc((size_t)cols, sizeof(float)), *dx = malloc((size_t)in * sizeof(float));
            unsigned again = (unsigned)i + 1;
            float *x0 = random_floats(in, &again), *dx0 = random_floats(in, &again); /* same as x, dx_want's start */
            memcpy(dx, dx0, (size_t)in * sizeof(float));
            nf_kernels_at(v)->im2col(g, x0, got, stride);
            nf_kernels_at(v)->col2im_add(g, dcols, stride, dx);
            for (int64_t r = 0; r < g->ckk; r++)
                for (int64_t q = 0; q < g->hw; q++)
                    if (got[r * stride + q] != want[r * stride + q])
                        fail_msg("%s im2col, geometry %zu: cols[%lld][%lld] = %g, not %g", nf_kernels_at(v)->name, i,
                                 (long long)r, (long long)q, got[r * stride + q], want[r * stride + q]);
            assert_memory_equal(dx, dx_want, (size_t)in * sizeof(float));
            free(got);
            free(dx);
            free(x0);
            free(dx0);
        }
        free(x);
        free(want);
        free(dx_want);
        free(dcols);
    }
}

/* ---- whole convolutions (sets with conv_prepare) against direct loops
 * in double: y = conv(x, w) + b, and dx, dw, db for a given dy */

typedef struct conv_case {
    nf_conv_geom g;
    int64_t batch;
    int bias;
} conv_case;

/* A geometry with o outputs in `groups` groups. */
static conv_case conv_case_of(nf_conv_geom g, int64_t o, int64_t groups, int64_t batch, int bias)
{
    g.o = o, g.groups = groups;
    g.ckk = g.c / groups * g.kh * g.kw;
    return (conv_case){g, batch, bias};
}

/* The input position a tap reads, or -1 in the padding. */
static int64_t tap(const nf_conv_geom *g, int64_t oy, int64_t ox, int64_t i, int64_t j)
{
    int64_t y = oy * g->sh - g->pt + i * g->dh, x = ox * g->sw - g->pl + j * g->dw;
    return y < 0 || y >= g->h || x < 0 || x >= g->w ? -1 : y * g->w + x;
}

/* The reference: forward into y, and with dy the gradients (added to
 * what dx, dw, db hold). Every loop visits (sample, output, position,
 * input channel, tap). */
static void conv_direct(const conv_case *cc, const float *x, const float *w, const float *b, float *y,
                        const float *dy, float *dx, float *dw, float *db)
{
    const nf_conv_geom *g = &cc->g;
    int64_t og = g->o / g->groups, cg = g->c / g->groups, plane = g->h * g->w;
    for (int64_t n = 0; n < cc->batch; n++)
        for (int64_t o = 0; o < g->o; o++)
            for (int64_t p = 0; p < g->hw; p++) {
                int64_t oy = p / g->ow, ox = p % g->ow, at = (n * g->o + o) * g->hw + p;
                double sum = b ? b[o] : 0.0, grad = dy ? dy[at] : 0.0;
                if (db)
                    db[o] += (float)grad;
                for (int64_t c = 0; c < cg; c++)
                    for (int64_t i = 0; i < g->kh; i++)
                        for (int64_t j = 0; j < g->kw; j++) {
                            int64_t from = tap(g, oy, ox, i, j), wi = ((o * cg + c) * g->kh + i) * g->kw + j;
                            int64_t xi = (n * g->c + o / og * cg + c) * plane + from;
                            if (from < 0)
                                continue;
                            sum += (double)w[wi] * x[xi];
                            if (dw)
                                dw[wi] += (float)(grad * x[xi]);
                            if (dx)
                                dx[xi] += (float)(grad * w[wi]);
                        }
                if (y)
                    y[at] = (float)sum;
            }
}

/* One case through set v: inference and training, with and without the
 * input's gradient. Returns whether the set prepared a kernel. */
static int check_conv_case(const nf_kernels *v, const conv_case *cc, unsigned seed)
{
    const nf_conv_geom *g = &cc->g;
    int64_t nx = cc->batch * g->c * g->h * g->w, ny = cc->batch * g->o * g->hw, nw = g->o * g->ckk;
    float *x = random_floats(nx, &seed), *w = random_floats(nw, &seed), *b = random_floats(g->o, &seed);
    float *dy = random_floats(ny, &seed), *want_y = malloc((size_t)ny * sizeof(float));
    float *start_dx = random_floats(nx, &seed), *start_dw = random_floats(nw, &seed), *start_db = random_floats(g->o, &seed);
    const float *bias = cc->bias ? b : NULL;
    conv_direct(cc, x, w, bias, want_y, NULL, NULL, NULL, NULL);
    float *want_dx = copy_floats(start_dx, nx), *want_dw = copy_floats(start_dw, nw), *want_db = copy_floats(start_db, g->o);
    conv_direct(cc, x, w, bias, NULL, dy, want_dx, want_dw, want_db);
    int prepared = 0;
    for (int mode = 0; mode < 3; mode++) { /* inference; training; training without dx */
        nf_conv_request r = {*g, cc->batch, cc->bias, mode > 0, mode == 1};
        nf_conv_sizes sizes = {0, 0};
        nf_conv_kernel *k = v->conv_prepare(&r, &sizes);
        if (!k)
            continue;
        prepared = 1;
        char what[160];
        snprintf(what, sizeof what, "%s conv %lldx%lldx%lld o %lld k %lldx%lld groups %lld batch %lld mode %d",
                 v->name, (long long)g->c, (long long)g->h, (long long)g->w, (long long)g->o, (long long)g->kh,
                 (long long)g->kw, (long long)g->groups, (long long)cc->batch, mode);
        void *saved = mode ? malloc(sizes.saved_bytes + 1) : NULL, *scratch = malloc(sizes.scratch_bytes + 1);
        float *y = malloc((size_t)ny * sizeof(float));
        assert_true(v->conv_forward(k, x, w, bias, y, saved, scratch));
        assert_close(y, want_y, ny, g->ckk, what);
        if (mode) {
            float *dx = copy_floats(start_dx, nx), *dw = copy_floats(start_dw, nw), *db = copy_floats(start_db, g->o);
            assert_true(v->conv_backward(k, saved, w, dy, mode == 1 ? dx : NULL, dw, cc->bias ? db : NULL, scratch));
            assert_close(dx, mode == 1 ? want_dx : start_dx, nx, g->o * g->kh * g->kw, what);
            assert_close(dw, want_dw, nw, cc->batch * g->hw, what);
            assert_close(db, cc->bias ? want_db : start_db, g->o, cc->batch * g->hw, what);
            free(dx);
            free(dw);
            free(db);
        }
        v->conv_release(k);
        free(saved);
        free(scratch);
        free(y);
    }
    float *all[] = {x, w, b, dy, want_y, start_dx, start_dw, start_db, want_dx, want_dw, want_db};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        free(all[i]);
    return prepared;
}

static void test_conv_variants(void **state)
{
    (void)state;
    const conv_case cases[] = {
        conv_case_of(conv_geom(32, 14, 14, 3, 3, 1, 1, 1, 1, 1, 1), 64, 1, 8, 1),  /* W3 conv2 in small */
        conv_case_of(conv_geom(1, 28, 28, 5, 5, 1, 1, 2, 2, 2, 2), 6, 1, 4, 1),    /* LeNet conv1 */
        conv_case_of(conv_geom(6, 14, 14, 5, 5, 1, 1, 0, 0, 0, 0), 16, 1, 3, 0),   /* LeNet conv2, no bias */
        conv_case_of(conv_geom(3, 13, 7, 5, 3, 2, 1, 2, 1, 0, 2), 5, 1, 1, 1),     /* odd, asymmetric padding */
        conv_case_of(conv_geom(16, 9, 11, 3, 3, 2, 2, 2, 2, 2, 2), 16, 16, 2, 1),  /* depthwise, dilated */
        conv_case_of(conv_geom(8, 1, 29, 1, 5, 1, 3, 0, 0, 4, 4), 12, 2, 3, 1),    /* 1-D, grouped */
        conv_case_of(conv_geom(17, 5, 5, 1, 1, 1, 1, 0, 0, 0, 0), 33, 1, 5, 1),    /* 1x1, odd channels */
        conv_case_of(conv_geom_axes(4, 11, 9, 3, 2, 2, 1, 1, 3, 1, 0), 8, 1, 2, 1), /* per-axis */
    };
    for (int s = 0; s < nf_kernels_count(); s++) {
        const nf_kernels *v = nf_kernels_at(s);
        if (!v->conv_prepare)
            continue;
        int prepared = 0;
        for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
            int made = check_conv_case(v, &cases[i], (unsigned)(i * 31 + 7));
            if (i < 3 && !made) /* the common shapes must get the set's own kernel */
                fail_msg("%s prepared no convolution for case %zu", v->name, i);
            prepared += made;
        }
        print_message("%s: %d of %zu convolution cases ran its own kernel\n", v->name, prepared,
                      sizeof cases / sizeof cases[0]);
    }
}

/* ---- element-wise functions (sets with eltwise_prepare) against the
 * formulas in double */

static double gelu_ref(int fn, double x, double *grad)
{
    if (fn == NF_ELTWISE_GELU_ERF) {
        double phi = 0.5 * (1.0 + erf(x / sqrt(2.0)));
        *grad = phi + x * exp(-0.5 * x * x) / sqrt(2.0 * M_PI);
        return x * phi;
    }
    double c = sqrt(2.0 / M_PI), t = tanh(c * (x + 0.044715 * x * x * x));
    *grad = 0.5 * (1.0 + t) + 0.5 * x * (1.0 - t * t) * c * (1.0 + 3.0 * 0.044715 * x * x);
    return 0.5 * x * (1.0 + t);
}

static void test_eltwise_variants(void **state)
{
    (void)state;
    const int64_t counts[] = {1, 17, 1000, 100003};
    for (int s = 0; s < nf_kernels_count(); s++) {
        const nf_kernels *v = nf_kernels_at(s);
        if (!v->eltwise_prepare)
            continue;
        for (int fn = NF_ELTWISE_GELU_ERF; fn <= NF_ELTWISE_GELU_TANH; fn++)
            for (size_t c = 0; c < sizeof counts / sizeof counts[0]; c++) {
                int64_t n = counts[c];
                unsigned seed = (unsigned)(n + fn);
                float *x = random_floats(n, &seed), *dy = random_floats(n, &seed), *dx = random_floats(n, &seed);
                float *y = malloc((size_t)n * sizeof(float)), *want_y = malloc((size_t)n * sizeof(float));
                float *want_dx = malloc((size_t)n * sizeof(float));
                for (int64_t i = 0; i < n; i++) {
                    x[i] *= 6.0f; /* [-6, 6]: both tails and the middle */
                    double grad;
                    want_y[i] = (float)gelu_ref(fn, x[i], &grad);
                    want_dx[i] = (float)(dx[i] + grad * dy[i]);
                }
                size_t scratch_bytes = 0;
                nf_eltwise_kernel *k = v->eltwise_prepare(fn, n, 1, &scratch_bytes);
                if (!k)
                    fail_msg("%s prepared no element-wise kernel %d for %lld values", v->name, fn, (long long)n);
                void *scratch = malloc(scratch_bytes);
                char what[96];
                snprintf(what, sizeof what, "%s gelu %s, %lld values", v->name, fn ? "tanh" : "erf", (long long)n);
                assert_true(v->eltwise_forward(k, x, y, scratch));
                assert_close(y, want_y, n, 1, what);
                assert_true(v->eltwise_backward(k, x, dy, dx, scratch));
                assert_close(dx, want_dx, n, 1, what);
                v->eltwise_release(k);
                float *all[] = {x, dy, dx, y, want_y, want_dx};
                for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
                    free(all[i]);
                free(scratch);
            }
    }
}

static nf_pool_geom pool_geom_dilated(int64_t h, int64_t w, int64_t k, int64_t s, int64_t p, int ceil_mode,
                                      int64_t d)
{
    nf_pool_geom g = {1, h, w, 0, 0, k, k, s, s, p, p, d, d};
    int64_t spans[2] = {h + 2 * p - d * (k - 1) - 1, w + 2 * p - d * (k - 1) - 1}, outs[2];
    for (int a = 0; a < 2; a++) {
        outs[a] = (ceil_mode ? (spans[a] + s - 1) / s : spans[a] / s) + 1;
        if (ceil_mode && (outs[a] - 1) * s >= (a ? w : h) + p)
            outs[a]--;
    }
    g.oh = outs[0];
    g.ow = outs[1];
    return g;
}

static nf_pool_geom pool_geom(int64_t h, int64_t w, int64_t k, int64_t s, int64_t p, int ceil_mode)
{
    return pool_geom_dilated(h, w, k, s, p, ceil_mode, 1);
}

static void test_pool_variants(void **state)
{
    (void)state;
    const nf_pool_geom geoms[] = {pool_geom(28, 28, 2, 2, 0, 0), pool_geom(7, 9, 2, 2, 0, 0), /* the 2x2 path */
                                  pool_geom(7, 9, 2, 2, 0, 1),   pool_geom(10, 13, 3, 2, 1, 1),
                                  pool_geom(1, 1, 1, 1, 0, 0),   pool_geom(5, 17, 3, 1, 1, 0),
                                  pool_geom_dilated(11, 12, 3, 2, 1, 1, 2), pool_geom_dilated(9, 8, 2, 1, 1, 0, 3)};
    const nf_kernels *ref = nf_kernels_find("reference");
    for (size_t i = 0; i < sizeof geoms / sizeof geoms[0]; i++) {
        const nf_pool_geom *g = &geoms[i];
        unsigned seed = (unsigned)i + 7;
        int64_t in = g->h * g->w, out = g->oh * g->ow;
        float *x = random_floats(in, &seed);
        for (int64_t j = 0; j < in; j += 5) /* ties, and a NaN, to pick between */
            x[j] = x[j / 2];
        float *y = malloc((size_t)out * sizeof(float)), *at = malloc((size_t)out * sizeof(float));
        float *y_ref = malloc((size_t)out * sizeof(float)), *at_ref = malloc((size_t)out * sizeof(float));
        for (int v = 0; v < nf_kernels_count(); v++) {
            if (in > 3) /* two NaNs in one window (2x2: positions 2, 3, w + 2, w + 3): the last wins */
                x[2] = x[3] = NAN;
            if (in > g->w + 3)
                x[g->w + 3] = NAN;
            ref->max_plane(g, x, y_ref, at_ref);
            nf_kernels_at(v)->max_plane(g, x, y, at);
            for (int64_t j = 0; j < out; j++)
                if (at[j] != at_ref[j] || !(y[j] == y_ref[j] || (isnan(y[j]) && isnan(y_ref[j]))))
                    fail_msg("%s max pooling, geometry %zu, output %lld: %g at %g, not %g at %g",
                             nf_kernels_at(v)->name, i, (long long)j, y[j], at[j], y_ref[j], at_ref[j]);
            for (int pad = 0; pad < 2; pad++) {
                float *dx = calloc((size_t)in, sizeof(float)), *dx_ref = calloc((size_t)in, sizeof(float));
                for (int64_t j = 0; j < in; j++)
                    x[j] = isnan(x[j]) ? 0.5f : x[j];
                nf_kernels_at(v)->avg_plane(g, x, y, pad);
                ref->avg_plane(g, x, y_ref, pad);
                assert_close(y, y_ref, out, g->kh * g->kw, "average pooling");
                nf_kernels_at(v)->avg_plane_backward(g, y_ref, dx, pad);
                ref->avg_plane_backward(g, y_ref, dx_ref, pad);
                assert_close(dx, dx_ref, in, g->kh * g->kw, "average pooling backward");
                free(dx);
                free(dx_ref);
            }
        }
        free(x);
        free(y);
        free(at);
        free(y_ref);
        free(at_ref);
    }
}

static void test_vector_math_variants(void **state)
{
    (void)state;
    const nf_kernels *ref = nf_kernels_find("reference");
    enum { N = 4099 };
    static float x[N], y[N], want[N];
    for (int i = 0; i < N; i++) /* -100 .. 100, and the ends */
        x[i] = -100.0f + 200.0f * (float)i / (N - 1);
    for (int v = 0; v < nf_kernels_count(); v++) {
        nf_kernels_at(v)->sigmoid(N, x, y);
        ref->sigmoid(N, x, want);
        assert_close(y, want, N, 0, "sigmoid");
        nf_kernels_at(v)->tanh(N, x, y);
        ref->tanh(N, x, want);
        assert_close(y, want, N, 0, "tanh");
    }
}

/* A copy of n floats, for kernels that work in place. */
static float *copy_of(const float *x, int64_t n)
{
    float *c = malloc((size_t)n * sizeof(float));
    memcpy(c, x, (size_t)n * sizeof(float));
    return c;
}

/* An LSTM step with peepholes p [3 h] (here g's values), forward and
 * backward, against the reference. */
static void check_lstm_peepholes(const nf_kernels *k, const nf_kernels *ref, int64_t h, const float *a,
                                 const float *p, const float *cp, const float *dy, const float *dhn, const float *dcn)
{
    float *x[2], *c[2], *y[2], *d[2];
    const nf_kernels *sets[2] = {k, ref};
    for (int i = 0; i < 2; i++) {
        x[i] = copy_of(a, 4 * h), c[i] = malloc((size_t)h * 4), y[i] = malloc((size_t)h * 4), d[i] = copy_of(dcn, h);
        sets[i]->lstm_peephole_cell(h, x[i], x[i] + h, x[i] + 2 * h, x[i] + 3 * h, p, cp, c[i], y[i]);
    }
    assert_close(x[0], x[1], 4 * h, 0, "lstm (peepholes) gates");
    assert_close(c[0], c[1], h, 0, "lstm (peepholes) cell state");
    assert_close(y[0], y[1], h, 0, "lstm (peepholes) output");
    memcpy(x[0], x[1], (size_t)(4 * h) * 4); /* backward from the same activations */
    for (int i = 0; i < 2; i++)
        sets[i]->lstm_peephole_cell_backward(h, x[i], x[i] + h, x[i] + 2 * h, x[i] + 3 * h, p, c[1], cp, dy, dhn,
                                             d[i]);
    assert_close(x[0], x[1], 4 * h, 4, "lstm (peepholes) gate gradients");
    assert_close(d[0], d[1], h, 4, "lstm (peepholes) dc");
    for (int i = 0; i < 2; i++)
        free(x[i]), free(c[i]), free(y[i]), free(d[i]);
}

/* The two halves of a GRU step with the reset gate first, forward and
 * backward, against the reference; `a` the input part [3 h], `g` the
 * hidden part [3 h], hp = h_{t-1}; drh stands in for dan W_hn. */
static void check_gru_reset_first(const nf_kernels *k, const nf_kernels *ref, int64_t h, const float *a,
                                  const float *g, const float *hp, const float *dy, const float *dhn)
{
    float *x[2], *rh[2], *y[2], *gg[2], *d[2];
    const nf_kernels *sets[2] = {k, ref};
    for (int i = 0; i < 2; i++) {
        x[i] = copy_of(a, 3 * h), rh[i] = malloc((size_t)h * 4), y[i] = malloc((size_t)h * 4);
        gg[i] = malloc((size_t)(3 * h) * 4), d[i] = copy_of(dhn, h);
        sets[i]->gru_reset_gates(h, x[i], x[i] + h, g, g + h, hp, rh[i]);
        sets[i]->gru_reset_output(h, x[i] + h, x[i] + 2 * h, g + 2 * h, hp, y[i]);
    }
    assert_close(x[0], x[1], 3 * h, 0, "gru (reset first) gates");
    assert_close(rh[0], rh[1], h, 0, "gru (reset first) r h");
    assert_close(y[0], y[1], h, 0, "gru (reset first) output");
    memcpy(x[0], x[1], (size_t)(3 * h) * 4); /* backward from the same activations */
    for (int i = 0; i < 2; i++) {
        sets[i]->gru_reset_output_backward(h, x[i] + h, x[i] + 2 * h, gg[i] + h, gg[i] + 2 * h, hp, dy, d[i]);
        sets[i]->gru_reset_gates_backward(h, x[i], gg[i], dy, hp, d[i]);
    }
    assert_close(x[0], x[1], 3 * h, 4, "gru (reset first) input-part gradients");
    assert_close(gg[0], gg[1], 3 * h, 4, "gru (reset first) hidden-part gradients");
    assert_close(d[0], d[1], h, 4, "gru (reset first) dh");
    for (int i = 0; i < 2; i++)
        free(x[i]), free(rh[i]), free(y[i]), free(gg[i]), free(d[i]);
}

static void test_cell_variants(void **state)
{
    (void)state;
    const nf_kernels *ref = nf_kernels_find("reference");
    const int64_t sizes[] = {1, 7, 64, 257};
    for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
        int64_t h = sizes[s];
        unsigned seed = (unsigned)s + 11;
        float *a = random_floats(4 * h, &seed), *cp = random_floats(h, &seed), *dy = random_floats(h, &seed);
        float *dhn = random_floats(h, &seed), *dcn = random_floats(h, &seed), *g = random_floats(3 * h, &seed);
        for (int64_t i = 0; i < 4 * h; i++)
            a[i] *= 6.0f; /* into the tails of sigmoid and tanh */
        for (int v = 0; v < nf_kernels_count(); v++) {
            const nf_kernels *k = nf_kernels_at(v);
            float *a1 = copy_of(a, 4 * h), *a2 = copy_of(a, 4 * h), *c1 = malloc((size_t)h * 4), *c2 = malloc((size_t)h * 4);
            float *y1 = malloc((size_t)h * 4), *y2 = malloc((size_t)h * 4);
            k->lstm_cell(h, a1, a1 + h, a1 + 2 * h, a1 + 3 * h, cp, c1, y1);
            ref->lstm_cell(h, a2, a2 + h, a2 + 2 * h, a2 + 3 * h, cp, c2, y2);
            assert_close(a1, a2, 4 * h, 0, "lstm gates");
            assert_close(c1, c2, h, 0, "lstm cell state");
            assert_close(y1, y2, h, 0, "lstm output");
            check_lstm_peepholes(k, ref, h, a, g, cp, dy, dhn, dcn);
            float *d1 = copy_of(dcn, h), *d2 = copy_of(dcn, h);
            k->lstm_cell_backward(h, a1, a1 + h, a1 + 2 * h, a1 + 3 * h, c1, cp, dy, dhn, d1);
            ref->lstm_cell_backward(h, a2, a2 + h, a2 + 2 * h, a2 + 3 * h, c1, cp, dy, dhn, d2);
            assert_close(a1, a2, 4 * h, 4, "lstm gate gradients");
            assert_close(d1, d2, h, 4, "lstm dc");
            float *x1 = copy_of(a, 3 * h), *x2 = copy_of(a, 3 * h), *hn1 = malloc((size_t)h * 4), *hn2 = malloc((size_t)h * 4);
            k->gru_cell(h, x1, x1 + h, x1 + 2 * h, g, g + h, g + 2 * h, hn1, cp, y1);
            ref->gru_cell(h, x2, x2 + h, x2 + 2 * h, g, g + h, g + 2 * h, hn2, cp, y2);
            assert_close(x1, x2, 3 * h, 0, "gru gates");
            assert_close(y1, y2, h, 0, "gru output");
            assert_memory_equal(hn1, hn2, (size_t)h * 4);
            /* backward from the same activations */
            float *b1 = copy_of(x1, 3 * h), *b2 = copy_of(x1, 3 * h);
            float *g1 = malloc((size_t)(3 * h) * 4), *g2 = malloc((size_t)(3 * h) * 4);
            float *e1 = copy_of(dhn, h), *e2 = copy_of(dhn, h);
            k->gru_cell_backward(h, b1, b1 + h, b1 + 2 * h, g1, g1 + h, g1 + 2 * h, hn1, cp, dy, e1);
            ref->gru_cell_backward(h, b2, b2 + h, b2 + 2 * h, g2, g2 + h, g2 + 2 * h, hn1, cp, dy, e2);
            assert_close(b1, b2, 3 * h, 4, "gru input-part gradients");
            assert_close(g1, g2, 3 * h, 4, "gru hidden-part gradients");
            assert_close(e1, e2, h, 4, "gru dh");
            check_gru_reset_first(k, ref, h, a, g, cp, dy, dhn);
            free(b1), free(b2);
            free(a1), free(a2), free(c1), free(c2), free(y1), free(y2), free(d1), free(d2);
            free(x1), free(x2), free(hn1), free(hn2), free(g1), free(g2), free(e1), free(e2);
        }
        free(a), free(cp), free(dy), free(dhn), free(dcn), free(g);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_gemm_variants),
        cmocka_unit_test(test_gemv_variants),
        cmocka_unit_test(test_beta_zero_ignores_c),
        cmocka_unit_test(test_im2col_variants),
        cmocka_unit_test(test_conv_variants),
        cmocka_unit_test(test_eltwise_variants),
        cmocka_unit_test(test_pool_variants),
        cmocka_unit_test(test_vector_math_variants),
        cmocka_unit_test(test_cell_variants),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
