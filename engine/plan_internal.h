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
} nf_plan_step;

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
    float **seq_value;         /* per node, when time_steps > 1: [capacity, steps, size] of a
                                  sequence input or an output */
    float **seq_grad;          /* ... and of the gradient of a sequence input that keeps one */
    float **carry_grad;        /* per memory node: d loss / d its value at the step being
                                  run backward, handed to its source one step earlier */
    float *frame_losses;       /* per step: the sum of its losses */
    int64_t *lengths;          /* per row: steps before its sequence ends (nf_plan_set_lengths) */
    int masked;                /* lengths apply */
    float *row_weight;         /* [steps, capacity]: each row's share of the loss at each step */
    double loss_factor;        /* batch / sum of the weights: scales the steps' losses */
    int check_finite;          /* stop at the first non-finite output or gradient */
    int skip_nonfinite;        /* training skips a batch whose loss or gradients are not finite */
};

/* The sequence and step-handoff buffers of a plan with several time
 * steps, for its capacity (plan.c); freed by nf_plan_free. */
nf_status nf_plan_layout_sequences(nf_plan *p, nf_error *err);
void nf_plan_free_sequences(nf_plan *p);
/* Whether input node `node` takes one value per time step. */
int nf_input_is_sequence(const nf_node *node);

/* Applies the default thread count once, if nf_set_threads was never
 * called (threads.c). */
void nf_threads_ensure(void);

#endif
