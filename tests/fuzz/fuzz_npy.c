/* libFuzzer target: NumPy .npy arrays. */
#include <stdint.h>
#include <stdlib.h>

#include "data/data_internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    nf_npy array;
    nf_error err;
    if (nf_npy_parse("fuzz", (const char *)data, size, &array, &err) == NF_OK)
        free(array.data);
    return 0;
}
