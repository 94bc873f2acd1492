/* libFuzzer target: model description files. Parses, and for a valid
 * graph writes it back out and parses that again (it must parse); runs
 * small graphs forward and backward. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <nodeflow/nodeflow.h>

#include "run_graph.h"

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
    fuzz_run_graph(g, 1);
    nf_graph_free(g);
    return 0;
}
