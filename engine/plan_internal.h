/* nodeflow — the plan's private structure, shared by plan.c (compiling)
 * and exec.c (running). */
#ifndef NF_ENGINE_PLAN_INTERNAL_H
#define NF_ENGINE_PLAN_INTERNAL_H

#include "engine/internal.h"

typedef struct nf_plan_step {
    int64_t value_off;        /* arena offsets in floats; -1: none */
    int64_t grad_off;
    int64_t saved_off;
    unsigned char needs_grad;   /* depends on a parameter or a grad input */
    unsigned char reaches_loss; /* a loss depends on it, differentiably */
    unsigned char has_grad;     /* its output gradient is computed */
    unsigned char run_backward; /* its backward kernel runs */
    unsigned char value_kept;   /* its value stays readable after forward (nf_plan_value) */
    const struct nf_kernels *kernels; /* the kernel variant chosen for the node at compile time */
    void *state;                /* what the op's prepare made for the plan's capacity (or NULL) */
    int64_t state_workspace;    /* scratch floats its runs with that state use */
} nf_plan_step;

/* What a plan keeps beside its arena, sized for its capacity and steps. */
typedef struct nf_plan_buffers {
    float *state_backup;       /* the carried state of frame 0 (nf_plan_keep_state) */
    int64_t state_floats;
    /* when time_steps > 1: */
    float **seq_value;         /* per node: [capacity, steps, size] of a sequence input or an output */
    float **seq_grad;          /* per input keeping a gradient: per step (sequence), or summed */
    float **carry;             /* per memory node: d loss / d its value at step t + 1, for its source */
    float **carry_next;        /* ... its gradient at step t, being made while step t runs backward */
    float *losses;             /* per step: the sum of its losses */
    int64_t *lengths;          /* per row: steps before its sequence ends (nf_plan_set_lengths) */
    float *row_weight;         /* [steps, capacity]: each row's share of the loss at each step */
} nf_plan_buffers;

struct nf_plan {
    nf_graph *graph;
    uint64_t version;          /* graph version compiled */
    unsigned flags;
    int64_t capacity;          /* largest batch the arena holds */
    int64_t batch;             /* batch of the next run */
    int n;                     /* nodes, in graph (topological) order */
    nf_plan_step *steps;
    float *arena;
    int64_t arena_floats;
    unsigned char *grad_ready; /* per node: gradient zeroed this backward */
    int forward_done;
    int training;              /* training mode: dropout active, batch statistics */
    int threads;               /* nf_threads() when compiled */
    int64_t workspace_off;     /* the shared scratch area in the arena */
    int64_t workspace_floats;
    /* Unrolled time (nf_plan_set_steps): the arena holds one frame of
     * frame_floats per time step, every frame laid out alike. */
    int64_t time_steps;        /* 1: no unrolling */
    int64_t frame_floats;
    float *frame;              /* the frame being run (arena + t frame_floats) */
    int loss_last_step;        /* the loss is the last step's, else the mean over steps */
    nf_plan_buffers buf;       /* buffers beside the arena, laid out with it */
    int masked;                /* lengths apply */
    double loss_factor;        /* batch / sum of the weights: scales the steps' losses */
    int check_finite;          /* stop at the first non-finite output or gradient */
    int skip_nonfinite;        /* training skips a batch whose loss or gradients are not finite */
    int (*sum_across)(const void *ctx, double *x, int64_t n); /* data parallel: nf_exec's, or NULL */
    const void *sum_ctx;
    void (*grads_done)(void *ctx, int node); /* see nf_plan_set_grads_done */
    void *grads_done_ctx;
};

/* Data parallel: what nodes call to sum over the processes (nf_exec's
 * sum_across; the training session sets it when it has several). */
void nf_plan_set_sum_across(nf_plan *p, int (*sum)(const void *ctx, double *x, int64_t n), const void *ctx);

/* Backward tells `done(ctx, k)` when it has finished node k for the last
 * time in a pass (nodes in decreasing order, at the first time step):
 * from then on the gradients of node k's parameters, and of those of
 * every later node, are final, unless an earlier node shares them. For
 * sums that start while backward goes on. done NULL: none. */
void nf_plan_set_grads_done(nf_plan *p, void (*done)(void *ctx, int node), void *ctx);

/* Saves (save = 1) or puts back the state that carries from run to run
 * (memory nodes, recurrent layers with carry), in buf.state_backup. */
void nf_plan_keep_state(nf_plan *p, int save);
/* Whether input node `node` takes one value per time step. */
int nf_input_is_sequence(const nf_node *node);

/* Applies the default thread count once, if nf_set_threads was never
 * called (threads.c). */
void nf_threads_ensure(void);

#endif
