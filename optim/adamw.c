/* nodeflow — AdamW (Loshchilov & Hutter 2019), as torch.optim.AdamW:
 * Adam with decoupled weight decay, w = w (1 - lr weight_decay) before
 * the Adam step (see adam.c); weight_decay defaults to 0.01. */
#include "optim/adam.h"

static const nf_hparam adamw_hparams[] = {
    [ADAM_LR] = {"lr", 1e-3, 0, 1e6, "learning rate"},
    [ADAM_BETA1] = {"beta1", 0.9, 0, 1, "decay of the first moment", NF_HPARAM_BELOW_MAX},
    [ADAM_BETA2] = {"beta2", 0.999, 0, 1, "decay of the second moment", NF_HPARAM_BELOW_MAX},
    [ADAM_EPS] = {"eps", 1e-8, 0, 1, "added to the denominator"},
    [ADAM_WEIGHT_DECAY] = {"weight_decay", 1e-2, 0, 1e6, "decoupled weight decay"},
    [ADAM_AMSGRAD] = {"amsgrad", 0, 0, 1, "1: use the maximum of past second moments", NF_HPARAM_FLAG},
};

static void adamw_update(const nf_update *u) { nf_adam_update(u, 1); }

const nf_optimizer_type nf_optimizer_adamw = {
    .name = "adamw",
    .hparams = adamw_hparams,
    .n_hparams = sizeof adamw_hparams / sizeof adamw_hparams[0],
    .state_per_float = 3,
    .update = adamw_update,
};
