/* libFuzzer target: byte-level text corpora. The first two bytes choose
 * the window (1-64) and the number of streams (1-16); the rest is the
 * text, read through a temporary file. */
#include <stdint.h>

#include <nodeflow/nodeflow.h>

#include "tempfile.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    int64_t window = data[0] % 64 + 1, streams = data[1] % 16 + 1;
    const char *path = fuzz_write_temp(data + 2, size - 2);
    nf_dataset *ds;
    nf_error err;
    if (path && nf_dataset_load_text(path, window, streams, &ds, &err) == NF_OK) {
        float ids[64];
        nf_text_to_ids(ds->vocab, ds->vocab_size, (const char *)data + 2, size - 2 < 64 ? size - 2 : 64, ids, &err);
        nf_dataset_free(ds);
    }
    return 0;
}
