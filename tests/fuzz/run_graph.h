/* Fuzz targets whose input becomes a graph: run it (forward, and backward
 * when training) if it is small enough for the fuzzer's memory. */
#ifndef NF_FUZZ_RUN_GRAPH_H
#define NF_FUZZ_RUN_GRAPH_H

#include <pthread.h>
#include <signal.h>

#include <nodeflow/nodeflow.h>

static void fuzz_run_graph(nf_graph *g, int training)
{
    int64_t floats = 0;
    for (int i = 0; i < nf_graph_node_count(g); i++) {
        nf_shape s;
        nf_node_shape(nf_graph_node(g, i), &s, NULL);
        floats += nf_shape_size(&s);
    }
    if (floats >= (1 << 20) || nf_graph_param_floats(g) >= (1 << 22))
        return;
    /* libFuzzer's timer (SIGALRM, -timeout) must not interrupt oneDNN's
     * generated kernels: a handler run there found its stack inside one of
     * oneDNN's heap blocks and wrote over it (ASan: heap-buffer-overflow in
     * the handler's clock_gettime; the command line handles its signals
     * in a thread of its own for the same reason). Blocked here, the
     * signal waits until parsing, where it is taken; the threads OpenMP
     * starts meanwhile inherit the mask and never take it. */
    sigset_t alarm, before;
    sigemptyset(&alarm);
    sigaddset(&alarm, SIGALRM);
    pthread_sigmask(SIG_BLOCK, &alarm, &before);
    nf_plan *plan;
    nf_error err;
    if (nf_plan_compile(g, 2, training ? NF_PLAN_TRAINING : NF_PLAN_INFERENCE, &plan, &err) == NF_OK) {
        if (nf_plan_forward(plan, &err) == NF_OK && training)
            nf_plan_backward(plan, &err);
        nf_plan_free(plan);
    }
    pthread_sigmask(SIG_SETMASK, &before, NULL);
}

#endif
