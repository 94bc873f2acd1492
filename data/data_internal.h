/* nodeflow — private helpers of the dataset loaders. */
#ifndef NF_DATA_INTERNAL_H
#define NF_DATA_INTERNAL_H

#include "engine/internal.h"
#include "engine/record.h"

/* An IDX file's content, converted to floats (malloc'ed; caller frees). */
typedef struct nf_idx {
    nf_shape shape;
    int type;      /* IDX element type byte: 0x08 is unsigned byte */
    float *data;
} nf_idx;

nf_status nf_idx_read(const char *path, nf_idx *idx, nf_error *err);

/* A .npy array converted to floats (malloc'ed; caller frees). */
typedef struct nf_npy {
    nf_shape shape;
    int integral;  /* the file held integers */
    float *data;
} nf_npy;

nf_status nf_npy_read(const char *path, nf_npy *out, nf_error *err);
/* The same from `len` bytes in memory; `path` is used in messages. */
nf_status nf_npy_parse(const char *path, const char *raw, size_t len, nf_npy *out, nf_error *err);

struct nf_batcher {
    const nf_dataset *ds;
    int64_t batch;
    int shuffle;
    nf_rng rng;
    nf_rng epoch_rng; /* rng as it was before this epoch's shuffle */
    int64_t *order;   /* sample indices of this epoch */
    int64_t next;     /* position in order */
};

/* Checkpoints: the batch size, the data's size, the epoch's shuffle state
 * and the position in it (see nf_optimizer_load_state for `apply`). */
nf_status nf_batcher_save_state(const nf_batcher *b, nf_record *r, nf_error *err);
nf_status nf_batcher_load_state(nf_batcher *b, const nf_record *r, int apply, nf_error *err);


#endif
