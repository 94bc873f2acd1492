/* libFuzzer target: ONNX model files. Reads them as they are and with
 * whole inputs, and runs a graph that was accepted and is small forward. */
#include <stdint.h>
#include <stdlib.h>

#include <nodeflow/nodeflow.h>

#include "run_graph.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    nf_set_memory_limit((size_t)256 << 20);
    for (int whole = 0; whole < 2; whole++) {
        nf_onnx_options options = {.whole_inputs = whole};
        nf_graph *g = NULL;
        nf_error err;
        if (nf_onnx_parse_with(data, size, "fuzz.onnx", &options, &g, &err) != NF_OK)
            continue;
        fuzz_run_graph(g, 0);
        nf_graph_free(g);
    }
    return 0;
}
