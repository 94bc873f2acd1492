/* nodeflow — AdaGrad, as torch.optim.Adagrad:
 *
 *   g = grad + weight_decay * w
 *   clr = lr / (1 + (step - 1) * lr_decay)
 *   s = s + g^2               (s starts at initial_accumulator_value)
 *   w = w - clr * g / (sqrt(s) + eps)
 */
#include <math.h>

#include "optim/optimizer.h"

enum { LR, LR_DECAY, WEIGHT_DECAY, INITIAL, EPS };

static const nf_hparam adagrad_hparams[] = {
    [LR] = {"lr", 0.01, 0, 1e6, "learning rate"},
    [LR_DECAY] = {"lr_decay", 0, 0, 1e6, "learning-rate decay per step"},
    [WEIGHT_DECAY] = {"weight_decay", 0, 0, 1e6, "L2 penalty added to the gradient"},
    [INITIAL] = {"initial_accumulator_value", 0, 0, 1e6, "starting value of the sum of squares"},
    [EPS] = {"eps", 1e-10, 0, 1, "added to the denominator"},
};

static void adagrad_kernel(int64_t n, float *restrict w, const float *restrict grad, float *restrict sum,
                           const double *h, int64_t step)
{
    const float clr = (float)(h[LR] / (1.0 + (double)(step - 1) * h[LR_DECAY]));
    const float wd = (float)h[WEIGHT_DECAY], eps = (float)h[EPS], initial = (float)h[INITIAL];
    for (int64_t i = 0; i < n; i++) {
        float g = grad[i] + wd * w[i];
        float s = (step == 1 ? initial : sum[i]) + g * g;
        sum[i] = s;
        w[i] -= clr * (g / (sqrtf(s) + eps));
    }
}

static void adagrad_update(const nf_update *u)
{
    #pragma omp parallel if (u->n > 65536)
    {
        int64_t a, b;
        nf_thread_range(u->n, &a, &b);
        adagrad_kernel(b - a, u->value + a, u->grad + a, u->state + a, u->h, u->step);
    }
}

const nf_optimizer_type nf_optimizer_adagrad = {
    .name = "adagrad",
    .hparams = adagrad_hparams,
    .n_hparams = sizeof adagrad_hparams / sizeof adagrad_hparams[0],
    .state_per_float = 1,
    .update = adagrad_update,
};
