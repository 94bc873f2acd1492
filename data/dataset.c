/* nodeflow — in-memory datasets and shuffled mini-batches. */
#include <math.h>
#include <stdio.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "data/data_internal.h"
#include "io/util.h"

void nf_dataset_free(nf_dataset *ds)
{
    if (!ds)
        return;
    free(ds->x);
    free(ds->y);
    free(ds);
}

void nf_dataset_truncate(nf_dataset *ds, int64_t count)
{
    if (ds && count >= 0 && count < ds->count)
        ds->count = ds->streams > 0 ? count / ds->streams * ds->streams : count;
}

/* Labels must be whole numbers >= 0; the class count is the largest + 1. */
static nf_status check_labels(const char *path, const nf_idx *labels, int64_t *classes, nf_error *err)
{
    int64_t n = nf_shape_size(&labels->shape);
    float top = 0.0f;
    for (int64_t i = 0; i < n; i++) {
        float v = labels->data[i];
        if (!(v >= 0.0f) || v != floorf(v) || v > 1e6f)
            return nf_fail(err, NF_ERR_FORMAT, "%s: label %lld is %g; labels must be class indices 0, 1, ...",
                           path, (long long)i, v);
        top = v > top ? v : top;
    }
    *classes = (int64_t)top + 1;
    return NF_OK;
}

nf_status nf_dataset_load_idx(const char *images_path, const char *labels_path, nf_dataset **out,
                              nf_error *err)
{
    if (!images_path || !labels_path || !out)
        return nf_fail(err, NF_ERR_INVALID_ARGUMENT, "nf_dataset_load_idx: NULL argument");
    *out = NULL;
    nf_idx images, labels = {0};
    nf_status st = nf_idx_read(images_path, &images, err);
    if (st == NF_OK)
        st = nf_idx_read(labels_path, &labels, err);
    if (st == NF_OK && labels.shape.rank != 1)
        st = nf_fail(err, NF_ERR_FORMAT, "%s: labels must be a 1-D IDX array, found rank %d", labels_path,
                     labels.shape.rank);
    if (st == NF_OK && labels.shape.dim[0] != images.shape.dim[0])
        st = nf_fail(err, NF_ERR_FORMAT, "%s has %lld images but %s has %lld labels", images_path,
                     (long long)images.shape.dim[0], labels_path, (long long)labels.shape.dim[0]);
    int64_t classes = 0;
    if (st == NF_OK)
        st = check_labels(labels_path, &labels, &classes, err);
    nf_dataset *ds = st == NF_OK ? calloc(1, sizeof *ds) : NULL;
    if (st == NF_OK && !ds)
        st = nf_fail(err, NF_ERR_NO_MEMORY, "out of memory");
    if (st != NF_OK) {
        free(images.data);
        free(labels.data);
        return st;
    }
    ds->count = images.shape.dim[0];
    ds->x_shape.rank = images.shape.rank - 1;
    for (int i = 1; i < images.shape.rank; i++)
        ds->x_shape.dim[i - 1] = images.shape.dim[i];
    ds->y_shape.rank = 0;
    ds->x = images.data;
    ds->y = labels.data;
    ds->classes = classes;
    if (images.type == 0x08) { /* pixels: x / 255 */
        int64_t n = nf_shape_size(&images.shape);
        for (int64_t i = 0; i < n; i++)
            ds->x[i] /= 255.0f;
    }
    *out = ds;
    return NF_OK;
}

nf_status nf_dataset_load_fashion_mnist(const char *dir, int train, nf_dataset **out, nf_error *err)
{
    if (!dir)
        dir = getenv("NODEFLOW_FASHION_MNIST");
    if (!dir)
        dir = "/usr/share/datasets/fashion-mnist";
    const char *prefix = train ? "train" : "t10k";
    char images[4096], labels[4096];
    if (snprintf(images, sizeof images, "%s/%s-images-idx3-ubyte.gz", dir, prefix) >= (int)sizeof images ||
        snprintf(labels, sizeof labels, "%s/%s-labels-idx1-ubyte.gz", dir, prefix) >= (int)sizeof labels)
        return nf_fail(err, NF_ERR_INVALID_ARGUMENT, "dataset directory path is too long");
    return nf_dataset_load_idx(images, labels, out, err);
}

/* ---- batches ----------------------------------------------------------- */

nf_status nf_batcher_new(const nf_dataset *ds, int64_t batch, int shuffle, uint64_t seed, nf_batcher **out,
                         nf_error *err)
{
    if (!ds || !out)
        return nf_fail(err, NF_ERR_INVALID_ARGUMENT, "nf_batcher_new: NULL argument");
    *out = NULL;
    if (batch <= 0)
        return nf_fail(err, NF_ERR_INVALID_ARGUMENT, "batch size %lld must be positive", (long long)batch);
    if (ds->count <= 0)
        return nf_fail(err, NF_ERR_INVALID_ARGUMENT, "the dataset is empty");
    nf_batcher *b = calloc(1, sizeof *b);
    int64_t *order = b ? malloc((size_t)ds->count * sizeof *order) : NULL;
    if (!order) {
        free(b);
        return nf_fail(err, NF_ERR_NO_MEMORY, "out of memory for the batch order");
    }
    b->ds = ds;
    b->batch = batch;
    b->shuffle = shuffle;
    b->order = order;
    nf_rng_seed(&b->rng, seed);
    nf_batcher_rewind(b);
    *out = b;
    return NF_OK;
}

void nf_batcher_free(nf_batcher *b)
{
    if (!b)
        return;
    free(b->order);
    free(b);
}

void nf_batcher_rewind(nf_batcher *b)
{
    int64_t n = b->ds->count;
    b->epoch_rng = b->rng;
    for (int64_t i = 0; i < n; i++)
        b->order[i] = i;
    if (b->shuffle) /* Fisher-Yates */
        for (int64_t i = n - 1; i > 0; i--) {
            int64_t j = (int64_t)nf_rng_below(&b->rng, (uint64_t)i + 1);
            int64_t t = b->order[i];
            b->order[i] = b->order[j];
            b->order[j] = t;
        }
    b->next = 0;
}

int64_t nf_batcher_next(nf_batcher *b, float *x, float *y)
{
    const nf_dataset *ds = b->ds;
    int64_t rows = ds->count - b->next < b->batch ? ds->count - b->next : b->batch;
    int64_t xs = nf_shape_size(&ds->x_shape), ys = nf_shape_size(&ds->y_shape);
    for (int64_t r = 0; r < rows; r++) {
        int64_t i = b->order[b->next + r];
        memcpy(x + r * xs, ds->x + i * xs, (size_t)xs * sizeof(float));
        memcpy(y + r * ys, ds->y + i * ys, (size_t)ys * sizeof(float));
    }
    b->next += rows;
    return rows;
}

nf_status nf_batcher_save_state(const nf_batcher *b, nf_record *r, nf_error *err)
{
    char rng[4 * 16 + 1];
    snprintf(rng, sizeof rng, "%016" PRIx64 "%016" PRIx64 "%016" PRIx64 "%016" PRIx64, b->epoch_rng.s[0],
             b->epoch_rng.s[1], b->epoch_rng.s[2], b->epoch_rng.s[3]);
    nf_record_put_int(r, "batch_size", b->batch);
    nf_record_put_int(r, "batch_next", b->next);
    nf_record_put_int(r, "samples", b->ds->count);
    nf_record_put_text(r, "shuffle_state", rng);
    return nf_record_failed(r) ? nf_fail(err, NF_ERR_NO_MEMORY, "out of memory saving the batcher") : NF_OK;
}

/* Four 16-digit hex words, most significant digit first. */
static int parse_rng(const char *text, nf_rng *rng)
{
    unsigned char bytes[32];
    if (!nf_hex_decode(text, bytes, sizeof bytes))
        return 0;
    for (int i = 0; i < 4; i++) {
        rng->s[i] = 0;
        for (int j = 0; j < 8; j++)
            rng->s[i] = rng->s[i] << 8 | bytes[8 * i + j];
    }
    return 1;
}

nf_status nf_batcher_load_state(nf_batcher *b, const nf_record *r, int apply, nf_error *err)
{
    int64_t batch, next, samples;
    nf_rng rng;
    nf_status st = nf_record_int(r, "batch_size", 1, NF_MAX_COUNT, &batch, err);
    if (st == NF_OK)
        st = nf_record_int(r, "samples", 0, NF_MAX_COUNT, &samples, err);
    if (st == NF_OK)
        st = nf_record_int(r, "batch_next", 0, samples, &next, err);
    if (st == NF_OK && !parse_rng(nf_record_text(r, "shuffle_state"), &rng))
        st = nf_fail(err, NF_ERR_FORMAT, "malformed shuffle_state in the checkpoint");
    if (st != NF_OK)
        return st;
    if (batch != b->batch || samples != b->ds->count)
        return nf_fail(err, NF_ERR_STATE, "saved for batches of %lld over %lld samples, not %lld over %lld",
                       (long long)batch, (long long)samples, (long long)b->batch, (long long)b->ds->count);
    if (apply) { /* the epoch's order as it was shuffled, and the position in it */
        b->rng = rng;
        nf_batcher_rewind(b);
        b->next = next;
    }
    return NF_OK;
}

int64_t nf_batcher_batches(const nf_batcher *b)
{
    return b ? (b->ds->count + b->batch - 1) / b->batch : 0;
}
