/* nodeflow — exp, expm1, sigmoid and tanh for float, written so that
 * loops calling them vectorize (no calls, no branches); relative error a
 * few float ulps over the whole range.
 *
 * exp(y) = 2^n e^r with n = round(y / ln 2) and r = y - n ln 2 in
 * [-ln2/2, ln2/2] (ln 2 split in two parts so that n ln 2 is exact), e^r
 * by its Taylor series to r^7 (truncation below 1.2e-7 relative), and 2^n
 * built in the exponent bits. expm1 uses the series directly where
 * e^y - 1 would cancel (|y| < ln2/2). */
#ifndef NF_KERNELS_FASTMATH_H
#define NF_KERNELS_FASTMATH_H

#include <stdint.h>
#include <string.h>

static inline float nf_taylor_expm1(float r)
{
    /* r + r^2/2! + ... + r^7/7! in Horner form */
    float p = 1.0f / 5040.0f;
    p = p * r + 1.0f / 720.0f;
    p = p * r + 1.0f / 120.0f;
    p = p * r + 1.0f / 24.0f;
    p = p * r + 1.0f / 6.0f;
    p = p * r + 0.5f;
    p = p * r + 1.0f;
    return p * r;
}

static inline float nf_fast_exp(float y)
{
    y = y < -87.0f ? -87.0f : y > 88.0f ? 88.0f : y;
    float nf = y * 1.44269504f;
    nf = nf == nf ? nf : 0.0f; /* NaN: keep it out of the integer conversion (the result stays NaN) */
    nf = (float)(int32_t)(nf + (nf >= 0 ? 0.5f : -0.5f));
    float r = y - nf * 0.693359375f;  /* ln 2, high part (exact in few bits) */
    r = r - nf * -2.12194440e-4f;     /* ln 2 - high part */
    int32_t bits = ((int32_t)nf + 127) << 23;
    float scale;
    memcpy(&scale, &bits, sizeof scale);
    return (1.0f + nf_taylor_expm1(r)) * scale;
}

static inline float nf_fast_expm1(float y)
{
    float small = nf_taylor_expm1(y), large = nf_fast_exp(y) - 1.0f;
    return (y > -0.34657359f && y < 0.34657359f) ? small : large;
}

static inline float nf_fast_sigmoid(float x) { return 1.0f / (1.0f + nf_fast_exp(-x)); }

/* tanh(x) = -expm1(-2|x|) / (2 + expm1(-2|x|)), with the sign of x */
static inline float nf_fast_tanh(float x)
{
    float a = x < 0 ? -x : x, m = nf_fast_expm1(-2.0f * a);
    float t = -m / (2.0f + m);
    return x < 0 ? -t : t;
}

#endif
