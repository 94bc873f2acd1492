/* libFuzzer target: IDX files (plain or gzip, by content), through a
 * temporary file as nf_idx_read reads a path. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "data/data_internal.h"
#include "tempfile.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *path = fuzz_write_temp(data, size);
    nf_idx idx;
    nf_error err;
    if (path && nf_idx_read(path, &idx, &err) == NF_OK)
        free(idx.data);
    return 0;
}
