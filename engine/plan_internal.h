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
};

/* Applies the default thread count once, if nf_set_threads was never
 * called (threads.c). */
void nf_threads_ensure(void);

#endif
