/* nodeflow — RMSProp, as torch.optim.RMSprop (eps outside the square
 * root):
 *
 *   g = grad + weight_decay * w
 *   v = alpha v + (1 - alpha) g^2
 *   centered: a = alpha a + (1 - alpha) g;  d = sqrt(v - a^2) + eps
 *   else:     d = sqrt(v) + eps
 *   momentum: b = momentum b + g / d;  w = w - lr b
 *   else:     w = w - lr g / d
 */
#include <math.h>

#include "optim/optimizer.h"

enum { LR, ALPHA, EPS, WEIGHT_DECAY, MOMENTUM, CENTERED };

static const nf_hparam rmsprop_hparams[] = {
    [LR] = {"lr", 0.01, 0, 1e6, "learning rate"},
    [ALPHA] = {"alpha", 0.99, 0, 1, "smoothing of the squared gradient"},
    [EPS] = {"eps", 1e-8, 0, 1, "added to the denominator"},
    [WEIGHT_DECAY] = {"weight_decay", 0, 0, 1e6, "L2 penalty added to the gradient"},
    [MOMENTUM] = {"momentum", 0, 0, 1e6, "momentum factor (0: none)"},
    [CENTERED] = {"centered", 0, 0, 1, "1: normalise by the gradient's variance", NF_HPARAM_FLAG},
};

/* state: v[n], a[n] (centered), b[n] (momentum) */
static void rmsprop_kernel(int64_t n, float *restrict w, const float *restrict grad, float *restrict v,
                           float *restrict avg, float *restrict buf, const double *h)
{
    const float lr = (float)h[LR], alpha = (float)h[ALPHA], eps = (float)h[EPS];
    const float wd = (float)h[WEIGHT_DECAY], mu = (float)h[MOMENTUM];
    const float c = (float)(1.0 - h[ALPHA]); /* rounded as PyTorch rounds it */
    const int centered = h[CENTERED] != 0;
    /* selects instead of branches, so that the loop vectorizes; the
     * centered average and the momentum buffer are kept either way */
    for (int64_t i = 0; i < n; i++) {
        float g = grad[i] + wd * w[i];
        v[i] = v[i] * alpha + (c * g) * g;
        avg[i] = avg[i] * alpha + c * g;
        float d = sqrtf(centered ? v[i] - avg[i] * avg[i] : v[i]) + eps;
        float ratio = g / d;
        buf[i] = buf[i] * mu + ratio;
        w[i] -= lr * (mu > 0.0f ? buf[i] : ratio);
    }
}

static void rmsprop_update(const nf_update *u)
{
    #pragma omp parallel if (u->n > 65536)
    {
        int64_t a, b;
        nf_thread_range(u->n, &a, &b);
        rmsprop_kernel(b - a, u->value + a, u->grad + a, u->state + a, u->state + u->n + a,
                       u->state + 2 * u->n + a, u->h);
    }
}

const nf_optimizer_type nf_optimizer_rmsprop = {
    .name = "rmsprop",
    .hparams = rmsprop_hparams,
    .n_hparams = sizeof rmsprop_hparams / sizeof rmsprop_hparams[0],
    .state_per_float = 3,
    .update = rmsprop_update,
};
