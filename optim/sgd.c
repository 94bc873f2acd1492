/* nodeflow — stochastic gradient descent with momentum, dampening,
 * Nesterov momentum and (coupled, L2) weight decay; the update rule and
 * defaults of torch.optim.SGD:
 *
 *   g = grad + weight_decay * w
 *   b = g                                   (first step)
 *   b = momentum * b + (1 - dampening) * g  (later steps)
 *   g = g + momentum * b  if nesterov, else g = b   (when momentum != 0)
 *   w = w - lr * g
 */
#include "optim/optimizer.h"

enum { LR, MOMENTUM, DAMPENING, WEIGHT_DECAY, NESTEROV };

static const nf_hparam sgd_hparams[] = {
    [LR] = {"lr", 0.01, 0, 1e6, "learning rate"},
    [MOMENTUM] = {"momentum", 0, 0, 1e6, "momentum factor (0: none)"},
    [DAMPENING] = {"dampening", 0, 0, 1, "dampening of the momentum"},
    [WEIGHT_DECAY] = {"weight_decay", 0, 0, 1e6, "L2 penalty added to the gradient"},
    [NESTEROV] = {"nesterov", 0, 0, 1, "1: Nesterov momentum", NF_HPARAM_FLAG},
};

/* The update of n contiguous floats. */
static void sgd_kernel(int64_t n, float *restrict w, const float *restrict grad, float *restrict buf,
                       const double *h, int first)
{
    const float lr = (float)h[LR], mu = (float)h[MOMENTUM];
    const float keep = (float)(1.0 - h[DAMPENING]); /* rounded as PyTorch rounds it */
    const float wd = (float)h[WEIGHT_DECAY];
    if (mu == 0.0f) {
        for (int64_t i = 0; i < n; i++)
            w[i] -= lr * (grad[i] + wd * w[i]);
        return;
    }
    const int nesterov = h[NESTEROV] != 0;
    for (int64_t i = 0; i < n; i++) {
        float g = grad[i] + wd * w[i];
        float b = first ? g : buf[i] * mu + keep * g;
        buf[i] = b;
        w[i] -= lr * (nesterov ? g + mu * b : b);
    }
}

static void sgd_update(const nf_update *u)
{
    #pragma omp parallel if (u->n > 65536)
    {
        int64_t a, b;
        nf_thread_range(u->n, &a, &b);
        sgd_kernel(b - a, u->value + a, u->grad + a, u->state + a, u->h, u->step == 1);
    }
}

/* PyTorch's rule: Nesterov momentum needs a momentum and no dampening. */
static const char *sgd_check(const double *h, const char **blame)
{
    *blame = "nesterov";
    if (h[NESTEROV] != 0 && h[MOMENTUM] <= 0)
        return "nesterov needs a momentum above 0";
    if (h[NESTEROV] != 0 && h[DAMPENING] != 0)
        return "nesterov needs dampening 0";
    *blame = NULL;
    return NULL;
}

const nf_optimizer_type nf_optimizer_sgd = {
    .name = "sgd",
    .hparams = sgd_hparams,
    .n_hparams = sizeof sgd_hparams / sizeof sgd_hparams[0],
    .state_per_float = 1,
    .update = sgd_update,
    .check = sgd_check,
};
