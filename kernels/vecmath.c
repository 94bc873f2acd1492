/* nodeflow — element-wise sigmoid and tanh: libm in float (the default:
 * correctly rounded or nearly, for activation nodes) and the reference in
 * double. The recurrent cells' polynomial versions are in fastmath.h. */
#include <math.h>

#include "kernels/variants.h"

void nf_libm_sigmoid(int64_t n, const float *restrict x, float *restrict y)
{
    for (int64_t i = 0; i < n; i++)
        y[i] = 1.0f / (1.0f + expf(-x[i]));
}

void nf_libm_tanh(int64_t n, const float *restrict x, float *restrict y)
{
    for (int64_t i = 0; i < n; i++)
        y[i] = tanhf(x[i]);
}

void nf_reference_sigmoid(int64_t n, const float *restrict x, float *restrict y)
{
    for (int64_t i = 0; i < n; i++)
        y[i] = (float)(1.0 / (1.0 + exp(-(double)x[i])));
}

void nf_reference_tanh(int64_t n, const float *restrict x, float *restrict y)
{
    for (int64_t i = 0; i < n; i++)
        y[i] = (float)tanh(x[i]);
}
