/* libFuzzer target: model description files. Parses, and for a valid
 * graph writes it back out and parses that again (it must parse); runs
 * small graphs forward and backward. */
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <nodeflow/nodeflow.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    nf_set_memory_limit((size_t)256 << 20); /* refuse what would exceed the fuzzer's memory */
    nf_graph *g = NULL, *again = NULL;
    nf_train_config train;
    nf_error err;
    if (nf_model_parse((const char *)data, size, "fuzz", &g, &train, &err) != NF_OK)
        return 0;
    char *text = NULL;
    if (nf_model_format(g, &train, &text, &err) == NF_OK) {
        if (nf_model_parse(text, strlen(text), "again", &again, NULL, &err) != NF_OK)
            abort(); /* the writer produced something the parser refuses */
        nf_graph_free(again);
        free(text);
    }
    /* compile and run only graphs small enough for the fuzzer's memory */
    int64_t floats = 0;
    for (int i = 0; i < nf_graph_node_count(g); i++) {
        nf_shape s;
        nf_node_shape(nf_graph_node(g, i), &s, NULL);
        floats += nf_shape_size(&s);
    }
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
    if (floats < (1 << 20) && nf_graph_param_floats(g) < (1 << 22) &&
        nf_plan_compile(g, 2, NF_PLAN_TRAINING, &plan, &err) == NF_OK) {
        if (nf_plan_forward(plan, &err) == NF_OK)
            nf_plan_backward(plan, &err);
        nf_plan_free(plan);
    }
    pthread_sigmask(SIG_SETMASK, &before, NULL);
    nf_graph_free(g);
    return 0;
}
