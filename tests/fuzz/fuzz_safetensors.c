/* libFuzzer target: safetensors files, parsed and loaded into the graph
 * of tests/fixtures/torch_export.nfg. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "io/safetensors.h"

static const char model[] = "nodeflow 1\nx = input shape=20\ny = input shape=scalar\nfc1 = linear x out=16\n"
                            "h = relu fc1\nfc2 = linear h out=5\nloss = cross_entropy fc2 y\n";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static nf_graph *g;
    nf_error err;
    if (!g && nf_model_parse(model, sizeof model - 1, "fuzz", &g, NULL, &err) != NF_OK)
        abort();
    char *buf = malloc(size ? size : 1);
    if (!buf)
        return 0;
    memcpy(buf, data, size);
    nf_st_file f;
    if (nf_st_parse("fuzz", buf, size, &f, &err) != NF_OK)
        return 0;
    nf_weights_from(g, &f, NF_WEIGHTS_STRICT, &err);
    nf_weights_from(g, &f, NF_WEIGHTS_ALLOW_EXTRA, &err);
    nf_st_close(&f);
    return 0;
}
