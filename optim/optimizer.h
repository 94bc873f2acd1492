/* nodeflow — the optimizer interface. Each optimizer is one file in
 * optim/ that defines an nf_optimizer_type and is listed in optimizer.c.
 *
 * A type declares its hyper-parameters (the first is always "lr"), how
 * many state floats it keeps per parameter float, and an update that is
 * called once per parameter tensor with contiguous value, gradient and
 * state slices. */
#ifndef NF_OPTIM_OPTIMIZER_H
#define NF_OPTIM_OPTIMIZER_H

#include <stdint.h>

#include "engine/internal.h"

#define NF_MAX_HPARAMS 8

typedef struct nf_hparam {
    const char *name;
    double def, min, max;
    const char *doc;
} nf_hparam;

/* One parameter tensor's slice of an update. */
typedef struct nf_update {
    float *value;
    const float *grad;
    float *state;       /* state_per_float * n floats, zero before step 1 */
    int64_t n;
    const double *h;    /* hyper-parameters, in the type's order */
    int64_t step;       /* 1 for the first step */
} nf_update;

typedef struct nf_optimizer_type {
    const char *name;
    const nf_hparam *hparams;
    int n_hparams;
    int state_per_float;
    void (*update)(const nf_update *u);
} nf_optimizer_type;

extern const nf_optimizer_type nf_optimizer_sgd, nf_optimizer_adagrad, nf_optimizer_rmsprop, nf_optimizer_adam,
    nf_optimizer_adamw;

/* The type named `name`, or NULL. */
const nf_optimizer_type *nf_optimizer_type_find(const char *name);
/* Checks that `key` is a hyper-parameter of `type` and `value` in its range. */
nf_status nf_optimizer_type_check(const nf_optimizer_type *type, const char *key, double value, nf_error *err);
/* The same for every key nf_optimizer_set takes (lr_mult.NODE, decay_1d,
 * accumulate besides the type's own). */
nf_status nf_optimizer_key_check(const nf_optimizer_type *type, const char *key, double value, nf_error *err);
/* Index of hyper-parameter `key` of `type`, or -1. */
int nf_optimizer_type_hparam(const nf_optimizer_type *type, const char *key);

/* The averaged weights (graph layout) and update count, for checkpoints. */
float *nf_average_values(nf_average *a, int64_t *count);
void nf_average_restore(nf_average *a, int64_t count);

/* A schedule's position and plateau state, for checkpoints. */
typedef struct nf_schedule_state {
    int64_t t, bad, cooldown_left;
    double plateau_lr, best;
} nf_schedule_state;
void nf_schedule_state_get(const nf_schedule *s, nf_schedule_state *st);
void nf_schedule_state_set(nf_schedule *s, const nf_schedule_state *st);
int nf_average_is_ema(const nf_average *a);

struct nf_optimizer {
    nf_graph *graph;
    uint64_t version;               /* graph version of the parameter layout */
    const nf_optimizer_type *type;
    double h[NF_MAX_HPARAMS];
    float *state;                   /* state_per_float floats per parameter float */
    int64_t steps;
    double *lr_mult;                /* per parameter tensor, default 1 */
    int decay_1d;                   /* 0: no weight decay on 1-D parameters (biases, norms) */
    double clip_norm, clip_value;   /* 0: off */
    int64_t accumulate;             /* batches whose gradients make one step (default 1) */
    int64_t pending;                /* batches accumulated since the last step */
    double last_norm;               /* gradient norm at the last step, if clipping by norm */
};

#endif
