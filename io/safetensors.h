/* nodeflow — safetensors files: reading with full validation, writing
 * atomically. The format: an 8-byte little-endian header size N, N bytes
 * of JSON ({"name": {"dtype": "F32", "shape": [...], "data_offsets":
 * [begin, end]}, ..., "__metadata__": {"key": "value"}}), then the data,
 * little-endian, offsets relative to its start. */
#ifndef NF_ENGINE_SAFETENSORS_H
#define NF_ENGINE_SAFETENSORS_H

#include <cjson/cJSON.h>

#include "engine/internal.h"
#include "engine/names.h"

typedef struct nf_st_tensor {
    const char *name;            /* owned by the header JSON */
    nf_shape shape;
    int dtype_size;              /* 4 (F32) or 8 (F64) */
    const unsigned char *data;   /* into the file buffer */
} nf_st_tensor;

typedef struct nf_st_file {
    const char *path;
    char *buf;
    size_t len;
    cJSON *header;
    cJSON *metadata;             /* "__metadata__" object, or NULL */
    nf_st_tensor *tensors;
    int count;
    nf_name_index names;         /* tensor name -> index into tensors */
} nf_st_file;

/* Reads and validates a whole file: header size, JSON, dtypes, shapes,
 * offsets (in range, not overlapping, no holes). */
nf_status nf_st_open(const char *path, nf_st_file *f, nf_error *err);
/* The same over a malloc'ed buffer, which `f` takes over (freed by
 * nf_st_close, also on failure). `name` is used in messages. */
nf_status nf_st_parse(const char *name, char *buf, size_t len, nf_st_file *f, nf_error *err);
/* Loads a graph's parameters from an opened file (see nf_weights_load). */
nf_status nf_weights_from(nf_graph *g, const nf_st_file *f, unsigned flags, nf_error *err);
void nf_st_close(nf_st_file *f);
const nf_st_tensor *nf_st_find(const nf_st_file *f, const char *name);
/* Converts a tensor's data to float32. */
void nf_st_read(const nf_st_tensor *t, float *out);
/* The index of the first element that is not a finite float32 (NaN, an
 * infinity, or an F64 value past float's range), or -1; its value in
 * `value`. */
int64_t nf_st_first_nonfinite(const nf_st_tensor *t, double *value);
/* A metadata string, or NULL. */
const char *nf_st_meta(const nf_st_file *f, const char *key);

typedef struct nf_st_entry {
    const char *name;
    nf_shape shape;
    const float *data;
} nf_st_entry;

/* Writes float32 tensors and string metadata (a cJSON object of strings,
 * or NULL) atomically. */
nf_status nf_st_write(const char *path, const nf_st_entry *entries, int count, const cJSON *metadata,
                      nf_error *err);

#endif
