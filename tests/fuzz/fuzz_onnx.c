/* libFuzzer target: ONNX model files. Reads them, and runs a graph that
 * was accepted and is small forward (see fuzz_model.c on SIGALRM). */
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>

#include <nodeflow/nodeflow.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    nf_set_memory_limit((size_t)256 << 20);
    nf_graph *g = NULL;
    nf_error err;
    if (nf_onnx_parse(data, size, "fuzz.onnx", &g, &err) != NF_OK)
        return 0;
    int64_t floats = 0;
    for (int i = 0; i < nf_graph_node_count(g); i++) {
        nf_shape s;
        nf_node_shape(nf_graph_node(g, i), &s, NULL);
        floats += nf_shape_size(&s);
    }
    sigset_t alarm, before;
    sigemptyset(&alarm);
    sigaddset(&alarm, SIGALRM);
    pthread_sigmask(SIG_BLOCK, &alarm, &before);
    nf_plan *plan;
    if (floats < (1 << 20) && nf_plan_compile(g, 2, NF_PLAN_INFERENCE, &plan, &err) == NF_OK) {
        nf_plan_forward(plan, &err);
        nf_plan_free(plan);
    }
    pthread_sigmask(SIG_SETMASK, &before, NULL);
    nf_graph_free(g);
    return 0;
}
