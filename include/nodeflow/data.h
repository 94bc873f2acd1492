/* nodeflow — datasets and mini-batches.
 *
 * A dataset holds every sample in memory as float32: features x [N, ...]
 * and labels y [N, ...] (class indices are stored as floats). A batcher
 * walks a dataset in mini-batches, shuffled each epoch from a seed. */
#ifndef NODEFLOW_DATA_H
#define NODEFLOW_DATA_H

#include "export.h"

#include <stdint.h>
#include "tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct nf_dataset {
    int64_t count;        /* number of samples */
    nf_shape x_shape;     /* per-sample feature shape */
    nf_shape y_shape;     /* per-sample label shape (rank 0: class index) */
    float *x;             /* count * size(x_shape) floats */
    float *y;             /* count * size(y_shape) floats */
    int64_t classes;      /* number of classes for class labels, else 0 */
    /* Text windows (nf_dataset_load_text): sample k * streams + s is window
     * k of stream s, so that batches of `streams` in order continue each
     * stream where the last batch left it; 0 for independent samples. */
    int64_t streams;
    unsigned char vocab[256]; /* byte of each token id (text) */
    int vocab_size;           /* 0 if not text */
    /* Where the labels came from, for messages (set by the loaders, freed
     * by nf_dataset_free; NULL in a dataset a program fills itself). */
    struct nf_label_origin *origin;
} nf_dataset;

/* A byte-level text corpus: a file, or a directory whose regular files
 * (not symbolic links, not binary files holding a NUL byte) are read in
 * name order and joined. Token ids are positions in the sorted list of
 * the distinct bytes (ds->vocab). The text is cut into `streams` equal
 * streams, each into windows of `window` tokens: x is a window's ids and
 * y the ids that follow them (x shifted by one). Batches of `streams`
 * taken in order (no shuffling) carry each stream on from window to
 * window, so a recurrent state may be carried too. streams 0: the text's
 * consecutive windows as independent samples (ds->streams 0, so that
 * batches may be shuffled), for models that carry no state. */
NF_API nf_status nf_dataset_load_text(const char *path, int64_t window, int64_t streams, nf_dataset **out,
                               nf_error *err);
/* Ids of `len` bytes of text by a vocabulary (the byte of each id); a
 * byte not in it is an error that names the byte and its position. */
NF_API nf_status nf_text_to_ids(const unsigned char *vocab, int vocab_size, const char *text, size_t len, float *ids,
                         nf_error *err);

/* Loads an IDX image file and its IDX label file (plain or gzip, by
 * content). Pixels are scaled to [0, 1] (x / 255). Both headers are
 * checked (magic, rank, dimensions, counts, file size). The caller owns
 * the dataset; release with nf_dataset_free. */
NF_API nf_status nf_dataset_load_idx(const char *images_path, const char *labels_path,
                              nf_dataset **out, nf_error *err);

/* Fashion-MNIST from a directory holding the four *-ubyte.gz files; NULL
 * means Debian's /usr/share/datasets/fashion-mnist (or the directory named
 * by the environment variable NODEFLOW_FASHION_MNIST). `train` selects
 * the 60,000 training or the 10,000 test images. */
NF_API nf_status nf_dataset_load_fashion_mnist(const char *dir, int train,
                                        nf_dataset **out, nf_error *err);

/* A dataset from the caller's arrays, copied (the caller keeps and frees
 * its own): `count` samples of x_shape features and y_shape labels each
 * (y NULL: no labels, all zeros; y_shape rank 0: one label per sample).
 * Every value must be finite (refused naming the sample and element);
 * labels that are all class indices set `classes`. Freed by
 * nf_dataset_free. */
NF_API nf_status nf_dataset_from_arrays(const float *x, const nf_shape *x_shape, const float *y, const nf_shape *y_shape,
                                        int64_t count, nf_dataset **out, nf_error *err);

/* Checks that every label of `ds` is a class index below `classes`
 * (1 .. 2^24; a model scoring one logit for two classes passes 2): a
 * whole number 0 <= label < classes. The first bad label is refused
 * naming the file and row it came from when a loader recorded them
 * ("data.csv:7: label 1.5 ...", "y.npy: label [6] is 3, ..."), else its
 * index in ds->y: NF_ERR_FORMAT for a label that is no class index at
 * all (negative, fractional, 2^24 or more), NF_ERR_SHAPE for one past
 * `classes`, NF_ERR_INVALID_ARGUMENT for a NULL ds or classes out of
 * range. Reads the labels only. */
NF_API nf_status nf_dataset_check_classes(const nf_dataset *ds, int64_t classes, nf_error *err);

/* A numeric CSV file: every field a finite number within float's range
 * (a value too small for a float becomes a subnormal or 0), an optional
 * header line (a first line in which no field is a number: names, or
 * empty; "nan", "inf" and out-of-range numbers count as numbers; a first
 * line mixing numbers and text is refused rather than guessed), a UTF-8
 * BOM skipped, `label` the label column by index ("4") or header name
 * ("species"), or NULL for no labels (y is then all zeros). Errors name
 * file:line:col. */
NF_API nf_status nf_dataset_load_csv(const char *path, const char *label, nf_dataset **out, nf_error *err);
/* The same from text in memory (`len` bytes); `name` is for messages. */
NF_API nf_status nf_dataset_parse_csv(const char *text, size_t len, const char *name, const char *label,
                               nf_dataset **out, nf_error *err);

/* NumPy .npy arrays (float32, float64, uint8, int32, int64; C order):
 * features [N, ...] and labels [N] or [N, ...] (y_path NULL: no labels). */
NF_API nf_status nf_dataset_load_npy(const char *x_path, const char *y_path, nf_dataset **out, nf_error *err);

/* A dataset named by a spec: "fashion-mnist:train", "fashion-mnist:test",
 * "idx:IMAGES,LABELS", "csv:FILE[,label=COLUMN]", "npy:X.npy[,Y.npy]" or
 * "text:PATH,window=T,streams=B" (nf_dataset_spec_usage lists them;
 * nf_session_load_data takes "text:PATH" and sets window and streams). */
NF_API nf_status nf_dataset_load_spec(const char *spec, nf_dataset **out, nf_error *err);
/* The forms of data spec, one line each, for help texts: line `index`, or
 * NULL past the last. */
NF_API const char *nf_dataset_spec_usage(int index);

/* Writes a float32 array as a .npy file (atomically). */
NF_API nf_status nf_npy_write(const char *path, const float *data, const nf_shape *shape, nf_error *err);

/* Keeps only the first `count` samples (no-op if count >= ds->count). */
NF_API void nf_dataset_truncate(nf_dataset *ds, int64_t count);
NF_API void nf_dataset_free(nf_dataset *ds);

typedef struct nf_batcher nf_batcher;

/* Walks `ds` (which must outlive the batcher) in batches of `batch`
 * samples; the last partial batch is kept. With `shuffle`, each epoch
 * visits the samples in a new order drawn from `seed`. */
NF_API nf_status nf_batcher_new(const nf_dataset *ds, int64_t batch, int shuffle,
                         uint64_t seed, nf_batcher **out, nf_error *err);
NF_API void nf_batcher_free(nf_batcher *b);
/* Starts a new epoch (reshuffling when asked to). */
NF_API void nf_batcher_rewind(nf_batcher *b);
/* Copies the next batch into x and y (each sized for a full batch) and
 * returns its number of samples, 0 at the end of the epoch. */
NF_API int64_t nf_batcher_next(nf_batcher *b, float *x, float *y);
/* Number of batches per epoch. */
NF_API int64_t nf_batcher_batches(const nf_batcher *b);

#ifdef __cplusplus
}
#endif
#endif
