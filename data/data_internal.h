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

/* ---- values and messages (dataset.c) -------------------------------------- */

/* Class labels are whole numbers 0 <= v < 2^24 (a float holds them exactly). */
#define NF_CLASS_LABEL_LIMIT ((int64_t)1 << 24)
#define NF_CLASS_LABEL_RULE "class indices, whole numbers 0 .. 16777215"
int nf_is_class_label(float v);

/* The number of classes that labels y[0 .. n) stand for (the largest
 * plus one), or 0 when one of them is not a class label (nf_is_class_label;
 * its index in *first_bad if not NULL): then they are targets. */
int64_t nf_class_count(const float *y, int64_t n, int64_t *first_bad);

/* How a number read from a file converts to float. */
typedef enum { NF_VALUE_OK, NF_VALUE_NOT_FINITE, NF_VALUE_OUT_OF_RANGE } nf_value_kind;

/* v as a float: NF_VALUE_NOT_FINITE for a NaN or an infinity;
 * NF_VALUE_OUT_OF_RANGE for a finite v whose float would be infinite. A
 * value below float's range becomes the nearest float (a subnormal or 0),
 * as numpy's conversion does. *out is set only when OK. */
nf_value_kind nf_value_to_float(double v, float *out);

/* Refuses element `flat` of an array of `shape` read from `path`, whose
 * value as stored is `v`: "PATH: element [i, j] is NaN; ..." (indices from
 * 0, the first one the sample). */
nf_status nf_value_fail(nf_error *err, const char *path, const nf_shape *shape, int64_t flat, double v,
                        nf_value_kind kind);

/* Every feature and label of ds is finite, else an error naming the
 * first that is not ("the data's features [2, 1] is nan; ..."): a
 * dataset a program filled itself, which no loader checked. */
nf_status nf_dataset_check_finite(const nf_dataset *ds, nf_error *err);

/* "3, 1": the index of element `flat` of an array of `shape`. */
void nf_format_index(const nf_shape *shape, int64_t flat, char *buf, size_t size);


/* ---- where the labels came from (dataset.c) -------------------------------- */

/* CSV rows: sample `sample` and those after it, up to the next run, come
 * from lines `line`, line + 1, ... (1-based). */
typedef struct nf_line_run {
    int64_t sample, line;
} nf_line_run;

/* Records the file a loaded dataset's labels were read from, and for CSV
 * the line of each sample (`runs`, malloc'ed, taken over even on failure;
 * NULL for arrays, whose rows are sample indices). nf_dataset_free forgets
 * it. Used by the messages of nf_dataset_check_classes. */
nf_status nf_dataset_set_origin(nf_dataset *ds, const char *path, nf_line_run *runs, int64_t n_runs,
                                nf_error *err);

struct nf_batcher {
    const nf_dataset *ds;
    int64_t batch;
    int shuffle;
    nf_rng rng;
    nf_rng epoch_rng; /* rng as it was before this epoch's shuffle */
    int64_t *order;   /* sample indices of this epoch */
    int64_t next;     /* position in order */
    int64_t labels_checked; /* the class count every label was checked against (0: none yet) */
    int values_checked;     /* every value was found finite */
    int task;               /* nf_task of the data, decided with that check */
    int shard, shards;      /* data parallel: this process's share of each batch (shards 1: all) */
    int64_t global_rows;    /* rows of the last batch taken, every process's together */
};

/* Data parallel: every process walks the same shuffled order (the same
 * seed) in global batches of `shards` x batch samples, and process
 * `shard` takes rows [shard batch, (shard + 1) batch) of each. An epoch's
 * last global batch, when it is short (R rows), is shared out the same
 * way, rows [shard R / shards, (shard + 1) R / shards), so that the
 * processes take the batches one process at shards x batch would; it is
 * left out when R < shards (a process would have no row) and for text
 * streams (whose batches must be whole). */
void nf_batcher_shard(nf_batcher *b, int shard, int shards);

/* The next batch as sample indices (into the batcher's order, valid until
 * the next call): their count, 0 at the end of the epoch. */
int64_t nf_batcher_take(nf_batcher *b, const int64_t **indices);

/* Checkpoints: the batch size, the data's size, the epoch's shuffle state
 * and the position in it (see nf_optimizer_load_state for `apply`). */
nf_status nf_batcher_save_state(const nf_batcher *b, nf_record *r, nf_error *err);
nf_status nf_batcher_load_state(nf_batcher *b, const nf_record *r, int apply, nf_error *err);


#endif
