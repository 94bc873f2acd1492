/* libFuzzer target: CSV datasets, with and without a label column. */
#include <stdint.h>

#include <nodeflow/nodeflow.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *labels[] = {NULL, "0", "label", "2"};
    for (int i = 0; i < 4; i++) {
        nf_dataset *ds;
        nf_error err;
        if (nf_dataset_parse_csv((const char *)data, size, "fuzz", labels[i], &ds, &err) == NF_OK)
            nf_dataset_free(ds);
    }
    return 0;
}
