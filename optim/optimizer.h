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

#include "dist/comm.h"
#include "engine/internal.h"
#include "engine/plan_internal.h"
#include "engine/record.h"

#define NF_MAX_HPARAMS 8

/* How a hyper-parameter's value is bounded besides [min, max]. */
enum nf_hparam_kind {
    NF_HPARAM_REAL = 0,     /* any value in [min, max] */
    NF_HPARAM_BELOW_MAX,    /* [min, max): a decay rate that must stay below 1 */
    NF_HPARAM_FLAG          /* 0 or 1 */
};

typedef struct nf_hparam {
    const char *name;
    double def, min, max;
    const char *doc;
    int kind;               /* enum nf_hparam_kind */
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
    /* Settings that make no sense together (NULL: none): given every
     * hyper-parameter's value, the fault, naming in *blame the setting to
     * point at, or NULL. */
    const char *(*check)(const double *h, const char **blame);
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
/* Checks a whole set of values (every hyper-parameter of `type`, in its
 * order) with the type's own rule; *blame names the setting at fault. */
nf_status nf_optimizer_type_check_together(const nf_optimizer_type *type, const double *h, const char **blame,
                                      nf_error *err);
/* Index of hyper-parameter `key` of `type`, or -1. */
int nf_optimizer_type_hparam(const nf_optimizer_type *type, const char *key);

/* Checks that nf_optimizer_set(opt, key, value) would succeed. */
nf_status nf_optimizer_check(const nf_optimizer *opt, const char *key, double value, nf_error *err);
/* Whether the optimizer was made for `g` as it is now. */
int nf_optimizer_belongs_to(const nf_optimizer *opt, const nf_graph *g);

/* Gradient accumulation, for the training loop: the factor of each
 * batch's loss (weight / (accumulate x processes); weight 1 but for a
 * process's share of a short global batch, below), whether gradients of earlier batches are
 * waiting, one batch's gradients added (a step when `accumulate` have
 * been), a step on what a short last group gathered, and dropping what
 * has been gathered (a skipped batch). */
double nf_optimizer_batch_scale(const nf_optimizer *opt, double weight);
int nf_optimizer_has_pending(const nf_optimizer *opt);
nf_status nf_optimizer_add_batch(nf_optimizer *opt, nf_error *err);
nf_status nf_optimizer_flush(nf_optimizer *opt, nf_error *err);
void nf_optimizer_drop_pending(nf_optimizer *opt);

/* Checkpoints: each object writes its own state into a record and reads
 * it back. A load with apply = 0 only checks the record (everything that
 * could fail); with apply = 1 it also restores, and then cannot fail, so a
 * checkpoint is restored all or nothing. A NULL schedule or average
 * writes "none" and checks that the record has none. */
nf_status nf_optimizer_save_state(const nf_optimizer *opt, nf_record *r, nf_error *err);
nf_status nf_optimizer_load_state(nf_optimizer *opt, const nf_record *r, int apply, nf_error *err);
nf_status nf_schedule_save_state(const nf_schedule *s, nf_record *r, nf_error *err);
nf_status nf_schedule_load_state(nf_schedule *s, const nf_record *r, int apply, nf_error *err);
nf_status nf_average_save_state(const nf_average *a, nf_record *r, nf_error *err);
nf_status nf_average_load_state(nf_average *a, const nf_record *r, int apply, nf_error *err);

/* Data parallel: sums that overlap backward (below). Every process must
 * call these around each backward of training, even when backward
 * failed, so that all start the same sums. begin sets plan's grads_done
 * hook when the sums overlap (bucket_mb > 0, several processes, no
 * accumulation); end starts what is left, waits for all, and unsets it;
 * the next step then sums no more. */
nf_status nf_optimizer_begin_backward(nf_optimizer *opt, nf_plan *plan, nf_error *err);
/* Whether the next backward's sums overlap it. */
int nf_optimizer_overlaps(const nf_optimizer *opt);
nf_status nf_optimizer_end_backward(nf_optimizer *opt, nf_plan *plan, nf_error *err);

/* The buckets' size unless bucket_mb is set (tests/bench_dist.sh measured
 * the choice: docs/distributed.md). */
#define NF_DEFAULT_BUCKET_MB 0.0

/* A piece of the gradient buffer summed as one: [start, end), started
 * when backward has finished node ready_node. */
typedef struct {
    int64_t start, end;
    int ready_node;
} nf_bucket;

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
    float *gathered;                /* accumulate > 1: the sum of their gradients, each batch's whole
                                       gradient added at once (as processes' are summed) */
    double last_norm;               /* gradient norm at the last step, if clipping by norm */
    const nf_comm *comm;            /* data parallel: gradients summed over its processes
                                       before each step (NULL: this process alone) */
    double bucket_mb;               /* > 0: the sum overlaps backward, in buckets this large */
    nf_bucket *buckets;             /* cut at first use: from the buffer's end */
    int n_buckets, next_bucket;
    int overlapping;                /* between begin and end of a backward whose sums overlap */
    nf_status sum_status;           /* the first failure to start a sum during backward */
    nf_error sum_error;
    int summed;                     /* the gradients were summed during backward */
    int64_t overlapped;             /* buckets started while backward ran, in all */
};

/* Data parallel: each batch's loss weighs 1 / (accumulate x processes),
 * and a step first sums the gradients of every process of `comm` (NULL:
 * none), so that it takes the mean over the global batch. */
void nf_optimizer_set_comm(nf_optimizer *opt, const nf_comm *comm);

#endif
