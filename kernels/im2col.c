/* nodeflow — im2col and col2im for convolutions: the fast variant (a
 * 1x1 convolution copies rows; each kernel row's valid output columns
 * are found once, so the inner loops have no bounds checks; stride 1 gets
 * its own loop; padding that is not zeros goes entry by entry) and the
 * reference, one bounds check per element. */
#include <string.h>

#include "kernels/variants.h"

/* The output columns ox whose input column ox sw + ix0 lies in
 * [0, w): [*lo, *hi). */
static void valid_columns(const nf_conv_geom *g, int64_t ix0, int64_t *lo, int64_t *hi)
{
    *lo = ix0 >= 0 ? 0 : (-ix0 + g->sw - 1) / g->sw;
    *hi = g->w - ix0 <= 0 ? 0 : (g->w - ix0 + g->sw - 1) / g->sw;
    if (*hi > g->ow)
        *hi = g->ow;
    if (*lo > *hi)
        *lo = *hi;
}

/* x is one group's channels (C/G, H, W); cols is (C/G kh kw, OH OW),
 * with rows `stride` floats apart */
void nf_fast_im2col(const nf_conv_geom *g, const float *x, float *cols, int64_t stride)
{
    if (g->pad_mode != NF_PAD_ZEROS) { /* padding that holds input values: entry by entry */
        nf_reference_im2col(g, x, cols, stride);
        return;
    }
    if (g->direct) { /* 1x1, stride 1, no padding: the columns are x itself */
        for (int64_t r = 0; r < g->ckk; r++)
            memcpy(cols + r * stride, x + r * g->hw, (size_t)g->hw * sizeof(float));
        return;
    }
    for (int64_t c = 0; c < g->c / g->groups; c++)
        for (int64_t ki = 0; ki < g->kh; ki++)
            for (int64_t kj = 0; kj < g->kw; kj++) {
                float *row = cols + ((c * g->kh + ki) * g->kw + kj) * stride;
                int64_t ix0 = kj * g->dw - g->pl, lo, hi;
                valid_columns(g, ix0, &lo, &hi);
                for (int64_t oy = 0; oy < g->oh; oy++) {
                    int64_t iy = oy * g->sh - g->pt + ki * g->dh;
                    float *out = row + oy * g->ow;
                    if (iy < 0 || iy >= g->h) {
                        memset(out, 0, (size_t)g->ow * sizeof(float));
                        continue;
                    }
                    const float *in = x + (c * g->h + iy) * g->w;
                    for (int64_t ox = 0; ox < lo; ox++)
                        out[ox] = 0.0f;
                    if (g->sw == 1) /* rows are short: a loop beats a memcpy call */
                        for (int64_t ox = lo; ox < hi; ox++)
                            out[ox] = in[ox + ix0];
                    else
                        for (int64_t ox = lo; ox < hi; ox++)
                            out[ox] = in[ox * g->sw + ix0];
                    for (int64_t ox = hi; ox < g->ow; ox++)
                        out[ox] = 0.0f;
                }
            }
}

/* dx += col2im(dcols): every column entry goes back to its input pixel
 * (rows of dcols `stride` floats apart) */
void nf_fast_col2im_add(const nf_conv_geom *g, const float *dcols, int64_t stride, float *dx)
{
    if (g->pad_mode != NF_PAD_ZEROS) {
        nf_reference_col2im_add(g, dcols, stride, dx);
        return;
    }
    if (g->direct) {
        for (int64_t r = 0; r < g->ckk; r++)
            for (int64_t i = 0; i < g->hw; i++)
                dx[r * g->hw + i] += dcols[r * stride + i];
        return;
    }
    for (int64_t c = 0; c < g->c / g->groups; c++)
        for (int64_t ki = 0; ki < g->kh; ki++)
            for (int64_t kj = 0; kj < g->kw; kj++) {
                const float *row = dcols + ((c * g->kh + ki) * g->kw + kj) * stride;
                int64_t ix0 = kj * g->dw - g->pl, lo, hi;
                valid_columns(g, ix0, &lo, &hi);
                for (int64_t oy = 0; oy < g->oh; oy++) {
                    int64_t iy = oy * g->sh - g->pt + ki * g->dh;
                    if (iy < 0 || iy >= g->h)
                        continue;
                    float *out = dx + (c * g->h + iy) * g->w;
                    const float *in = row + oy * g->ow;
                    for (int64_t ox = lo; ox < hi; ox++)
                        out[ox * g->sw + ix0] += in[ox];
                }
            }
}

/* Index i of an axis of n positions, i in the padding mapped as the
 * padding mode says (its limits checked by the shape rule: a reflection
 * or a wrap passes the input at most once), or -1 for zeros. */
static int64_t padded_index(int64_t i, int64_t n, int mode)
{
    if (i >= 0 && i < n)
        return i;
    switch (mode) {
    case NF_PAD_REFLECT: /* ... 2 1 | 0 1 2 .. n-1 | n-2 n-3 ... */
        return i < 0 ? -i : 2 * (n - 1) - i;
    case NF_PAD_REPLICATE:
        return i < 0 ? 0 : n - 1;
    case NF_PAD_CIRCULAR:
        return i < 0 ? i + n : i - n;
    default:
        return -1;
    }
}

/* The input position under column entry (row r, output position q), or
 * -1 in zero padding. */
static int64_t source_of(const nf_conv_geom *g, int64_t r, int64_t q)
{
    int64_t c = r / (g->kh * g->kw), i = r / g->kw % g->kh, j = r % g->kw;
    int64_t iy = padded_index(q / g->ow * g->sh - g->pt + i * g->dh, g->h, g->pad_mode);
    int64_t ix = padded_index(q % g->ow * g->sw - g->pl + j * g->dw, g->w, g->pad_mode);
    return iy < 0 || ix < 0 ? -1 : (c * g->h + iy) * g->w + ix;
}

void nf_reference_im2col(const nf_conv_geom *g, const float *x, float *cols, int64_t stride)
{
    for (int64_t r = 0; r < g->ckk; r++)
        for (int64_t q = 0; q < g->hw; q++) {
            int64_t from = source_of(g, r, q);
            cols[r * stride + q] = from < 0 ? 0.0f : x[from];
        }
}

void nf_reference_col2im_add(const nf_conv_geom *g, const float *dcols, int64_t stride, float *dx)
{
    for (int64_t r = 0; r < g->ckk; r++)
        for (int64_t q = 0; q < g->hw; q++) {
            int64_t to = source_of(g, r, q);
            if (to >= 0)
                dx[to] += dcols[r * stride + q];
        }
}
