/* Fuzz targets whose reader takes a path: the input goes to one temporary
 * file per process, rewritten for every input. */
#ifndef NF_FUZZ_TEMPFILE_H
#define NF_FUZZ_TEMPFILE_H

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static const char *fuzz_write_temp(const uint8_t *data, size_t size)
{
    static char path[64];
    if (!path[0]) {
        snprintf(path, sizeof path, "/tmp/nodeflow-fuzz-%d", (int)getpid());
    }
    FILE *f = fopen(path, "wb");
    if (!f)
        return NULL;
    size_t wrote = fwrite(data, 1, size, f);
    fclose(f);
    return wrote == size ? path : NULL;
}

#endif
