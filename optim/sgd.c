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
    [NESTEROV] = {"nesterov", 0, 0, 1, "1: Nesterov momentum"},
};

static void sgd_update(const nf_update *u)
{
    const float lr = (float)u->h[LR], mu = (float)u->h[MOMENTUM], damp = (float)u->h[DAMPENING];
    const float wd = (float)u->h[WEIGHT_DECAY];
    const int nesterov = u->h[NESTEROV] != 0, first = u->step == 1;
    float *w = u->value, *buf = u->state;
    const float *grad = u->grad;
    #pragma omp parallel for if (u->n > 65536) schedule(static)
    for (int64_t i = 0; i < u->n; i++) {
        float g = grad[i] + wd * w[i];
        if (mu != 0.0f) {
            buf[i] = first ? g : mu * buf[i] + (1.0f - damp) * g;
            g = nesterov ? g + mu * buf[i] : buf[i];
        }
        w[i] -= lr * g;
    }
}

const nf_optimizer_type nf_optimizer_sgd = {
    .name = "sgd",
    .hparams = sgd_hparams,
    .n_hparams = sizeof sgd_hparams / sizeof sgd_hparams[0],
    .state_per_float = 1,
    .update = sgd_update,
};
