/* nodeflow — what Adam (adam.c) shares with AdamW (adamw.c). */
#ifndef NF_OPTIM_ADAM_H
#define NF_OPTIM_ADAM_H

#include "optim/optimizer.h"

enum { ADAM_LR, ADAM_BETA1, ADAM_BETA2, ADAM_EPS, ADAM_WEIGHT_DECAY, ADAM_AMSGRAD };

/* The Adam step; `decoupled` multiplies w by (1 - lr weight_decay) first
 * instead of adding weight_decay w to the gradient (AdamW). */
void nf_adam_update(const nf_update *u, int decoupled);

#endif
