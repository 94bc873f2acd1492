/* nodeflow — Adam, as torch.optim.Adam (Kingma & Ba 2015, with PyTorch's
 * placement of eps and the amsgrad variant):
 *
 *   g = grad + weight_decay * w          (Adam; AdamW decays w instead)
 *   m = beta1 m + (1 - beta1) g
 *   v = beta2 v + (1 - beta2) g^2
 *   amsgrad: vmax = max(vmax, v), used for v below
 *   w = w - lr / (1 - beta1^t) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps)
 */
#include <math.h>

#include "optim/adam.h"

static const nf_hparam adam_hparams[] = {
    [ADAM_LR] = {"lr", 1e-3, 0, 1e6, "learning rate"},
    [ADAM_BETA1] = {"beta1", 0.9, 0, 1, "decay of the first moment", NF_HPARAM_BELOW_MAX},
    [ADAM_BETA2] = {"beta2", 0.999, 0, 1, "decay of the second moment", NF_HPARAM_BELOW_MAX},
    [ADAM_EPS] = {"eps", 1e-8, 0, 1, "added to the denominator"},
    [ADAM_WEIGHT_DECAY] = {"weight_decay", 0, 0, 1e6, "L2 penalty added to the gradient"},
    [ADAM_AMSGRAD] = {"amsgrad", 0, 0, 1, "1: use the maximum of past second moments", NF_HPARAM_FLAG},
};

/* state: m[n], v[n], vmax[n] */
static void adam_kernel(int64_t n, float *restrict w, const float *restrict grad, float *restrict m,
                        float *restrict v, float *restrict vmax, const double *h, int64_t step, int decoupled)
{
    /* scalars rounded as PyTorch rounds them: 1 - beta in double, then float */
    const float b1 = (float)h[ADAM_BETA1], b2 = (float)h[ADAM_BETA2], eps = (float)h[ADAM_EPS];
    const float c1 = (float)(1.0 - h[ADAM_BETA1]), c2 = (float)(1.0 - h[ADAM_BETA2]);
    const float wd = (float)h[ADAM_WEIGHT_DECAY];
    const float step_size = (float)(h[ADAM_LR] / (1.0 - pow(h[ADAM_BETA1], (double)step)));
    const float bc2_sqrt = (float)sqrt(1.0 - pow(h[ADAM_BETA2], (double)step));
    /* AdamW shrinks w, Adam adds wd w to g: written as multiplications by
     * 1 and 0 so that the loop has no branches and vectorizes */
    const float shrink = decoupled ? (float)(1.0 - h[ADAM_LR] * h[ADAM_WEIGHT_DECAY]) : 1.0f;
    const float coupled = decoupled ? 0.0f : wd;
    const int amsgrad = h[ADAM_AMSGRAD] != 0;
    for (int64_t i = 0; i < n; i++) {
        w[i] *= shrink;
        float g = grad[i] + coupled * w[i];
        m[i] = m[i] * b1 + c1 * g;
        v[i] = v[i] * b2 + (c2 * g) * g;
        float second = amsgrad ? fmaxf(vmax[i], v[i]) : v[i];
        vmax[i] = second;
        float denom = sqrtf(second) / bc2_sqrt + eps;
        w[i] -= step_size * (m[i] / denom);
    }
}

void nf_adam_update(const nf_update *u, int decoupled)
{
    #pragma omp parallel if (u->n > 65536)
    {
        int64_t a, b;
        nf_thread_range(u->n, &a, &b);
        adam_kernel(b - a, u->value + a, u->grad + a, u->state + a, u->state + u->n + a, u->state + 2 * u->n + a,
                    u->h, u->step, decoupled);
    }
}

static void adam_update(const nf_update *u) { nf_adam_update(u, 0); }

const nf_optimizer_type nf_optimizer_adam = {
    .name = "adam",
    .hparams = adam_hparams,
    .n_hparams = sizeof adam_hparams / sizeof adam_hparams[0],
    .state_per_float = 3,
    .update = adam_update,
};
