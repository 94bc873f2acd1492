/* nodeflow — pooling windows over one plane. Max pooling, as PyTorch's:
 * the first maximum in raster order wins, and a NaN wins over numbers (the
 * last NaN, as PyTorch's `val > max || isnan(val)` keeps it). The fast
 * variant clips each window to the input once and takes the common 2x2
 * stride-2 unpadded case without branches; the reference visits every
 * kernel tap and checks it against the input, and averages in double. */
#include <math.h>

#include "kernels/variants.h"

/* The last NaN of window (oy, ox) of a 2x2 stride-2 pool. */
static void max_plane_window_nan(const nf_pool_geom *g, const float *x, int64_t oy, int64_t ox, float *y, float *at)
{
    for (int64_t i = 3; i >= 0; i--) {
        int64_t pos = (2 * oy + i / 2) * g->w + 2 * ox + i % 2;
        if (isnan(x[pos])) {
            *y = x[pos];
            *at = (float)pos;
            return;
        }
    }
}

/* x is one plane (H, W); y and argmax are (OH, OW); each window clipped
 * to the input once */
static void max_plane_clipped(const nf_pool_geom *g, const float *x, float *y, float *argmax)
{
    for (int64_t oy = 0; oy < g->oh; oy++)
        for (int64_t ox = 0; ox < g->ow; ox++) {
            int64_t y0 = oy * g->sh - g->ph, x0 = ox * g->sw - g->pw, best_at = -1;
            float best = -INFINITY;
            /* the first tap at or past 0: y0 + i dh >= 0 */
            int64_t iy_first = y0 < 0 ? y0 + (-y0 + g->dh - 1) / g->dh * g->dh : y0;
            int64_t ix_first = x0 < 0 ? x0 + (-x0 + g->dw - 1) / g->dw * g->dw : x0;
            for (int64_t iy = iy_first; iy < y0 + g->dh * (g->kh - 1) + 1 && iy < g->h; iy += g->dh)
                for (int64_t ix = ix_first; ix < x0 + g->dw * (g->kw - 1) + 1 && ix < g->w; ix += g->dw) {
                    float v = x[iy * g->w + ix];
                    if (v > best || best_at < 0 || isnan(v)) { /* NaN propagates, as in PyTorch */
                        best = v;
                        best_at = iy * g->w + ix;
                    }
                }
            y[oy * g->ow + ox] = best;
            argmax[oy * g->ow + ox] = (float)best_at;
        }
}

/* The common 2x2 window, stride 2, no padding, whole windows only;
 * selects rather than branches (the winner is data-dependent), so that
 * the row loop vectorizes. */
static void max_plane_2x2(const nf_pool_geom *g, const float *x, float *y, float *argmax)
{
    for (int64_t oy = 0; oy < g->oh; oy++) {
        const float *r0 = x + 2 * oy * g->w, *r1 = r0 + g->w;
        float *yo = y + oy * g->ow, *ao = argmax + oy * g->ow;
        float base = (float)(2 * oy * g->w), below = (float)g->w;
        int nan_seen = 0;
        for (int32_t ox = 0; ox < (int32_t)g->ow; ox++) {
            float a = r0[2 * ox], b = r0[2 * ox + 1], c = r1[2 * ox], d = r1[2 * ox + 1];
            float top = b > a ? b : a, bottom = d > c ? d : c;
            float top_at = b > a ? 1.0f : 0.0f, bottom_at = d > c ? below + 1.0f : below;
            float sum = a + b + c + d;
            nan_seen |= sum != sum;
            yo[ox] = bottom > top ? bottom : top;
            ao[ox] = base + 2.0f * (float)ox + (bottom > top ? bottom_at : top_at);
        }
        for (int64_t ox = 0; nan_seen && ox < g->ow; ox++) /* NaN wins, as in PyTorch */
            if (isnan(r0[2 * ox] + r0[2 * ox + 1] + r1[2 * ox] + r1[2 * ox + 1]))
                max_plane_window_nan(g, x, oy, ox, yo + ox, ao + ox);
    }
}

void nf_fast_max_plane(const nf_pool_geom *g, const float *x, float *y, float *argmax)
{
    int quick = g->kh == 2 && g->kw == 2 && g->sh == 2 && g->sw == 2 && !g->ph && !g->pw && g->dh == 1 &&
                g->dw == 1 && 2 * g->oh <= g->h && 2 * g->ow <= g->w;
    (quick ? max_plane_2x2 : max_plane_clipped)(g, x, y, argmax);
}

/* The window of (oy, ox) tap by tap; a tap outside the input (padding, or
 * past the edge in ceil mode) is never chosen. */
void nf_reference_max_plane(const nf_pool_geom *g, const float *x, float *y, float *argmax)
{
    for (int64_t oy = 0; oy < g->oh; oy++)
        for (int64_t ox = 0; ox < g->ow; ox++) {
            float best = 0.0f;
            int64_t best_at = -1;
            for (int64_t i = 0; i < g->kh; i++)
                for (int64_t j = 0; j < g->kw; j++) {
                    int64_t iy = oy * g->sh - g->ph + i * g->dh, ix = ox * g->sw - g->pw + j * g->dw;
                    if (iy < 0 || iy >= g->h || ix < 0 || ix >= g->w)
                        continue;
                    float v = x[iy * g->w + ix];
                    int first = best_at < 0, nan_now = isnan(v), nan_before = !first && isnan(best);
                    if (first || nan_now || (!nan_before && v > best)) {
                        best = v;
                        best_at = iy * g->w + ix;
                    }
                }
            y[oy * g->ow + ox] = best;
            argmax[oy * g->ow + ox] = (float)best_at;
        }
}

/* The window of output (oy, ox), clipped to the input, and its divisor. */
typedef struct window {
    int64_t y0, y1, x0, x1;
    float divisor;
} window;

static window window_at(const nf_pool_geom *g, int64_t oy, int64_t ox, int include_pad)
{
    int64_t y0 = oy * g->sh - g->ph, x0 = ox * g->sw - g->pw;
    int64_t y1 = y0 + g->kh < g->h + g->ph ? y0 + g->kh : g->h + g->ph;
    int64_t x1 = x0 + g->kw < g->w + g->pw ? x0 + g->kw : g->w + g->pw;
    int64_t padded = (y1 - y0) * (x1 - x0);
    window w = {y0 < 0 ? 0 : y0, y1 < g->h ? y1 : g->h, x0 < 0 ? 0 : x0, x1 < g->w ? x1 : g->w, 0};
    w.divisor = (float)(include_pad ? padded : (w.y1 - w.y0) * (w.x1 - w.x0));
    return w;
}

void nf_fast_avg_plane(const nf_pool_geom *g, const float *x, float *y, int include_pad)
{
    for (int64_t oy = 0; oy < g->oh; oy++)
        for (int64_t ox = 0; ox < g->ow; ox++) {
            window w = window_at(g, oy, ox, include_pad);
            float sum = 0.0f;
            for (int64_t iy = w.y0; iy < w.y1; iy++)
                for (int64_t ix = w.x0; ix < w.x1; ix++)
                    sum += x[iy * g->w + ix];
            y[oy * g->ow + ox] = sum / w.divisor;
        }
}

void nf_fast_avg_plane_backward(const nf_pool_geom *g, const float *dy, float *dx, int include_pad)
{
    for (int64_t oy = 0; oy < g->oh; oy++)
        for (int64_t ox = 0; ox < g->ow; ox++) {
            window w = window_at(g, oy, ox, include_pad);
            float share = dy[oy * g->ow + ox] / w.divisor;
            for (int64_t iy = w.y0; iy < w.y1; iy++)
                for (int64_t ix = w.x0; ix < w.x1; ix++)
                    dx[iy * g->w + ix] += share;
        }
}

/* Tap (oy, ox, i, j)'s input position, or -1 outside the input; *padded
 * says whether it lies within the padding (counted when include_pad). */
static int64_t avg_tap(const nf_pool_geom *g, int64_t oy, int64_t ox, int64_t i, int64_t j, int *padded)
{
    int64_t iy = oy * g->sh - g->ph + i, ix = ox * g->sw - g->pw + j;
    *padded = iy < g->h + g->ph && ix < g->w + g->pw; /* ceil mode's overhang past the padding never counts */
    return iy < 0 || iy >= g->h || ix < 0 || ix >= g->w ? -1 : iy * g->w + ix;
}

/* The divisor of window (oy, ox): its taps in the input, or in the input
 * and its padding. */
static double avg_divisor(const nf_pool_geom *g, int64_t oy, int64_t ox, int include_pad)
{
    double count = 0;
    for (int64_t i = 0; i < g->kh; i++)
        for (int64_t j = 0; j < g->kw; j++) {
            int padded;
            int64_t at = avg_tap(g, oy, ox, i, j, &padded);
            count += include_pad ? padded : at >= 0;
        }
    return count;
}

void nf_reference_avg_plane(const nf_pool_geom *g, const float *x, float *y, int include_pad)
{
    for (int64_t oy = 0; oy < g->oh; oy++)
        for (int64_t ox = 0; ox < g->ow; ox++) {
            double sum = 0;
            for (int64_t i = 0; i < g->kh; i++)
                for (int64_t j = 0; j < g->kw; j++) {
                    int padded;
                    int64_t at = avg_tap(g, oy, ox, i, j, &padded);
                    sum += at >= 0 ? x[at] : 0.0;
                }
            y[oy * g->ow + ox] = (float)(sum / avg_divisor(g, oy, ox, include_pad));
        }
}

void nf_reference_avg_plane_backward(const nf_pool_geom *g, const float *dy, float *dx, int include_pad)
{
    for (int64_t oy = 0; oy < g->oh; oy++)
        for (int64_t ox = 0; ox < g->ow; ox++) {
            double share = dy[oy * g->ow + ox] / avg_divisor(g, oy, ox, include_pad);
            for (int64_t i = 0; i < g->kh; i++)
                for (int64_t j = 0; j < g->kw; j++) {
                    int padded;
                    int64_t at = avg_tap(g, oy, ox, i, j, &padded);
                    if (at >= 0)
                        dx[at] = (float)(dx[at] + share);
                }
        }
}
