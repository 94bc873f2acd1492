/* libFuzzer target: command-line data specs (kind:FILE[,option...]).
 * Runs in an empty temporary directory, and skips specs that name an
 * absolute path or the installed Fashion-MNIST files, so that what is
 * fuzzed is the spec parsing, not the reading of the machine's files. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <nodeflow/nodeflow.h>

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    char dir[] = "/tmp/nodeflow-fuzz-spec-XXXXXX";
    if (mkdtemp(dir) && chdir(dir) == 0)
        return 0;
    abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 4096 || memchr(data, '/', size) || (size >= 13 && memcmp(data, "fashion-mnist", 13) == 0))
        return 0;
    char *spec = malloc(size + 1);
    if (!spec)
        return 0;
    memcpy(spec, data, size);
    spec[size] = '\0';
    nf_dataset *ds;
    nf_error err;
    if (nf_dataset_load_spec(spec, &ds, &err) == NF_OK)
        nf_dataset_free(ds);
    free(spec);
    return 0;
}
