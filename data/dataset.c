/* nodeflow — in-memory datasets and shuffled mini-batches. */
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "data/data_internal.h"
#include "io/util.h"

static void forget_origin(nf_dataset *ds);

void nf_dataset_free(nf_dataset *ds)
{
    if (!ds)
        return;
    forget_origin(ds);
    free(ds->x);
    free(ds->y);
    free(ds);
}

/* ---- values ---------------------------------------------------------------- */

int nf_is_class_label(float v)
{
    return v >= 0.0f && v < (float)NF_CLASS_LABEL_LIMIT && v == floorf(v);
}

/* The first element of n floats that is not finite, or -1. */
static int64_t first_nonfinite(const float *v, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        if (!isfinite(v[i]))
            return i;
    return -1;
}

/* Element `bad` of an array of `count` samples of `shape` is not finite:
 * "features [2, 1] is nan; ...". */
static nf_status nonfinite_fail(const char *what, const float *v, const nf_shape *shape, int64_t count, int64_t bad,
                                nf_error *err)
{
    nf_shape all = {shape->rank + 1, {count}};
    memcpy(all.dim + 1, shape->dim, (size_t)shape->rank * sizeof(int64_t));
    char index[NF_MAX_RANK * 22 + 24];
    nf_format_index(&all, bad, index, sizeof index);
    return nf_fail(err, NF_ERR_FORMAT, "%s [%s] is %g; values must be finite numbers", what, index, (double)v[bad]);
}

/* Copies `count` samples of `shape` from `from` (NULL: zeros) into a new
 * array; refuses a value that is not finite, naming "what [sample, ...]". */
static nf_status copy_array(const float *from, const nf_shape *shape, int64_t count, const char *what, float **out,
                            nf_error *err)
{
    int64_t per = nf_shape_size(shape), n = nf_mul_checked(count, per > 0 ? per : 1);
    if (per < 1 || n < 0 || n > nf_limit_floats())
        return nf_fail(err, NF_ERR_INVALID_ARGUMENT, "nf_dataset_from_arrays: %lld samples of %s are over the memory limit",
                       (long long)count, what);
    int64_t bad = from ? first_nonfinite(from, n) : -1;
    if (bad >= 0) {
        char whole[64];
        snprintf(whole, sizeof whole, "nf_dataset_from_arrays: %s", what);
        return nonfinite_fail(whole, from, shape, count, bad, err);
    }
    *out = malloc((size_t)n * sizeof(float));
    if (!*out)
        return nf_fail(err, NF_ERR_NO_MEMORY, "out of memory copying %lld floats of %s", (long long)n, what);
    if (from)
        memcpy(*out, from, (size_t)n * sizeof(float));
    else
        memset(*out, 0, (size_t)n * sizeof(float));
    return NF_OK;
}

nf_status nf_dataset_check_finite(const nf_dataset *ds, nf_error *err)
{
    int64_t bad = first_nonfinite(ds->x, ds->count * nf_shape_size(&ds->x_shape));
    if (bad >= 0)
        return nonfinite_fail("the data's features", ds->x, &ds->x_shape, ds->count, bad, err);
    bad = first_nonfinite(ds->y, ds->count * nf_shape_size(&ds->y_shape));
    if (bad >= 0)
        return nonfinite_fail("the data's labels", ds->y, &ds->y_shape, ds->count, bad, err);
    return NF_OK;
}

nf_status nf_dataset_from_arrays(const float *x, const nf_shape *x_shape, const float *y, const nf_shape *y_shape,
                                 int64_t count, nf_dataset **out, nf_error *err)
{
    if (!x || !x_shape || !out || (y && !y_shape))
        return nf_fail(err, NF_ERR_INVALID_ARGUMENT, "nf_dataset_from_arrays: NULL argument");
    *out = NULL;
    nf_shape scalar = {0, {0}}, *labels = y ? (nf_shape *)y_shape : &scalar;
    if (count < 1 || x_shape->rank < 0 || x_shape->rank > NF_MAX_RANK || labels->rank < 0 || labels->rank > NF_MAX_RANK)
        return nf_fail(err, NF_ERR_INVALID_ARGUMENT, "nf_dataset_from_arrays: %lld samples, shapes of rank %d and %d",
                       (long long)count, x_shape->rank, labels->rank);
    nf_dataset *ds = calloc(1, sizeof *ds);
    if (!ds)
        return nf_fail(err, NF_ERR_NO_MEMORY, "out of memory");
    ds->count = count;
    ds->x_shape = *x_shape;
    ds->y_shape = *labels;
    nf_status st = copy_array(x, x_shape, count, "x", &ds->x, err);
    if (st == NF_OK)
        st = copy_array(y, labels, count, "y", &ds->y, err);
    if (st != NF_OK) {
        nf_dataset_free(ds);
        return st;
    }
    if (y && labels->rank == 0)
        ds->classes = nf_class_count(ds->y, count, NULL);
    *out = ds;
    return NF_OK;
}

int64_t nf_class_count(const float *y, int64_t n, int64_t *first_bad)
{
    float top = 0.0f;
    for (int64_t i = 0; i < n; i++) {
        if (!nf_is_class_label(y[i])) {
            if (first_bad)
                *first_bad = i;
            return 0;
        }
        top = y[i] > top ? y[i] : top;
    }
    return n ? (int64_t)top + 1 : 0;
}

nf_value_kind nf_value_to_float(double v, float *out)
{
    if (!isfinite(v))
        return NF_VALUE_NOT_FINITE;
    if (fabs(v) >= 0x1.ffffffp127) /* FLT_MAX and half a step: rounds to infinity */
        return NF_VALUE_OUT_OF_RANGE;
    *out = (float)v; /* a value below float's range rounds to a subnormal or 0, as numpy's astype does */
    return NF_VALUE_OK;
}

void nf_format_index(const nf_shape *shape, int64_t flat, char *buf, size_t size)
{
    int64_t index[NF_MAX_RANK] = {0};
    for (int i = shape->rank - 1; i >= 0; i--) {
        index[i] = shape->dim[i] > 0 ? flat % shape->dim[i] : 0;
        flat = shape->dim[i] > 0 ? flat / shape->dim[i] : 0;
    }
    size_t at = 0;
    buf[0] = '\0';
    for (int i = 0; i < shape->rank && at < size; i++)
        at += (size_t)snprintf(buf + at, size - at, "%s%lld", i ? ", " : "", (long long)index[i]);
}

static const char *nonfinite_name(double v)
{
    return isnan(v) ? "NaN" : v > 0 ? "infinity" : "-infinity";
}

nf_status nf_value_fail(nf_error *err, const char *path, const nf_shape *shape, int64_t flat, double v,
                        nf_value_kind kind)
{
    char index[NF_MAX_RANK * 22];
    nf_format_index(shape, flat, index, sizeof index);
    if (kind == NF_VALUE_NOT_FINITE)
        return nf_fail(err, NF_ERR_FORMAT, "%s: element [%s] is %s; values must be finite numbers", path, index,
                       nonfinite_name(v));
    return nf_fail(err, NF_ERR_FORMAT, "%s: element [%s] is %g, out of float range", path, index, v);
}

/* ---- where the labels came from --------------------------------------------- */

struct nf_label_origin {
    char *path;
    nf_line_run *runs; /* CSV; NULL for arrays */
    int64_t n_runs;
};

nf_status nf_dataset_set_origin(nf_dataset *ds, const char *path, nf_line_run *runs, int64_t n_runs,
                                nf_error *err)
{
    struct nf_label_origin *o = calloc(1, sizeof *o);
    char *copy = o ? strdup(path) : NULL;
    if (!copy) {
        free(o);
        free(runs);
        return nf_fail(err, NF_ERR_NO_MEMORY, "out of memory");
    }
    *o = (struct nf_label_origin){.path = copy, .runs = runs, .n_runs = n_runs};
    forget_origin(ds);
    ds->origin = o;
    return NF_OK;
}

static void forget_origin(nf_dataset *ds)
{
    if (ds->origin) {
        free(ds->origin->path);
        free(ds->origin->runs);
        free(ds->origin);
        ds->origin = NULL;
    }
}

/* The CSV line of sample i: its run's first line plus the distance. */
static int64_t line_of(const struct nf_label_origin *o, int64_t sample)
{
    int64_t lo = 0, hi = o->n_runs - 1; /* the last run starting at or before `sample` */
    while (lo < hi) {
        int64_t mid = lo + (hi - lo + 1) / 2;
        if (o->runs[mid].sample <= sample)
            lo = mid;
        else
            hi = mid - 1;
    }
    return o->runs[lo].line + (sample - o->runs[lo].sample);
}

/* "6" for label 6 of rank-0 labels, "6, 2" for label 2 of sample 6. */
static void label_index(const nf_dataset *ds, int64_t flat, char *buf, size_t size)
{
    int64_t per_sample = nf_shape_size(&ds->y_shape);
    int n = snprintf(buf, size, "%lld", (long long)(flat / per_sample));
    if (ds->y_shape.rank > 0 && n > 0 && (size_t)n + 2 < size) {
        memcpy(buf + n, ", ", 3);
        nf_format_index(&ds->y_shape, flat % per_sample, buf + n + 2, size - (size_t)n - 2);
    }
}

/* For text, the byte a token id stands for: " (byte 'a')". */
static void label_byte(const nf_dataset *ds, float v, char *buf, size_t size)
{
    buf[0] = '\0';
    if (ds->vocab_size > 0 && nf_is_class_label(v) && v < (float)ds->vocab_size) {
        char shown[8];
        snprintf(buf, size, " (byte '%s')", nf_shown((const char *)&ds->vocab[(int)v], 1, shown, sizeof shown));
    }
}

/* "data.csv:7: label 1.5" or "y.npy: label [6] is 1.5" for label `flat`
 * of ds->y, with the file when a loader recorded it. */
static void describe_label(const nf_dataset *ds, int64_t flat, char *buf, size_t size)
{
    char index[NF_MAX_RANK * 22 + 24], byte[24];
    label_index(ds, flat, index, sizeof index);
    label_byte(ds, ds->y[flat], byte, sizeof byte);
    const struct nf_label_origin *o = ds->origin;
    if (o && o->n_runs > 0 && ds->y_shape.rank == 0)
        snprintf(buf, size, "%s:%lld: label %.9g", o->path, (long long)line_of(o, flat), ds->y[flat]);
    else
        snprintf(buf, size, "%s%slabel [%s] is %.9g%s", o ? o->path : "", o ? ": " : "", index, ds->y[flat], byte);
}

nf_status nf_dataset_check_classes(const nf_dataset *ds, int64_t classes, nf_error *err)
{
    if (!ds || (ds->count > 0 && !ds->y))
        return nf_fail(err, NF_ERR_INVALID_ARGUMENT, "nf_dataset_check_classes: NULL dataset or labels");
    if (classes < 1 || classes > NF_CLASS_LABEL_LIMIT)
        return nf_fail(err, NF_ERR_INVALID_ARGUMENT, "%lld classes: a model scores 1 .. 2^24 classes",
                       (long long)classes);
    int64_t n = nf_mul_checked(ds->count, nf_shape_size(&ds->y_shape));
    if (n < 0)
        return nf_fail(err, NF_ERR_INVALID_ARGUMENT, "nf_dataset_check_classes: a negative count or label shape");
    for (int64_t i = 0; i < n; i++) {
        float v = ds->y[i];
        if (nf_is_class_label(v) && v < (float)classes)
            continue;
        char where[NF_ERROR_MESSAGE_MAX];
        describe_label(ds, i, where, sizeof where);
        nf_status code = nf_is_class_label(v) ? NF_ERR_SHAPE : NF_ERR_FORMAT;
        nf_fail(err, code, "%s, not one of the %lld class indices 0 .. %lld", where, (long long)classes,
                (long long)classes - 1);
        return code;
    }
    return NF_OK;
}

void nf_dataset_truncate(nf_dataset *ds, int64_t count)
{
    if (ds && count >= 0 && count < ds->count)
        ds->count = ds->streams > 0 ? count / ds->streams * ds->streams : count;
}

/* IDX labels are class indices (whole numbers 0 .. 2^24 - 1); the class
 * count is the largest + 1. */
static nf_status check_labels(const char *path, const nf_idx *labels, int64_t *classes, nf_error *err)
{
    int64_t bad = 0;
    *classes = nf_class_count(labels->data, nf_shape_size(&labels->shape), &bad);
    if (*classes == 0 && nf_shape_size(&labels->shape) > 0)
        return nf_fail(err, NF_ERR_FORMAT, "%s: label [%lld] is %.9g; labels must be " NF_CLASS_LABEL_RULE, path,
                       (long long)bad, labels->data[bad]);
    return NF_OK;
}

static nf_status load_idx(const char *images_path, const char *labels_path, nf_dataset **out, nf_error *err)
{
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
    if (st == NF_OK && (st = nf_dataset_set_origin(ds, labels_path, NULL, 0, err)) != NF_OK)
        free(ds);
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

nf_status nf_dataset_load_idx(const char *images_path, const char *labels_path, nf_dataset **out,
                              nf_error *err)
{
    if (!images_path || !labels_path || !out)
        return nf_fail(err, NF_ERR_INVALID_ARGUMENT, "nf_dataset_load_idx: NULL argument");
    *out = NULL;
    return load_idx(images_path, labels_path, out, err);
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

void nf_batcher_shard(nf_batcher *b, int shard, int shards)
{
    b->shard = shard;
    b->shards = shards > 1 ? shards : 1;
}

/* Rows of a global batch: every process's share. */
static int64_t global_batch(const nf_batcher *b) { return b->batch * (b->shards > 1 ? b->shards : 1); }

int64_t nf_batcher_take(nf_batcher *b, const int64_t **indices)
{
    int64_t left = b->ds->count - b->next;
    if (b->shards > 1) {
        int64_t whole = global_batch(b);
        if (left >= whole) {
            *indices = b->order + b->next + b->shard * b->batch;
            b->next += whole;
            b->global_rows = whole;
            return b->batch;
        }
        *indices = b->order + b->next;
        if (left < b->shards || b->ds->streams > 0) /* left out (nf_batcher_shard) */
            return 0;
        int64_t from = left * b->shard / b->shards, to = left * (b->shard + 1) / b->shards;
        *indices += from;
        b->next += left;
        b->global_rows = left;
        return to - from;
    }
    int64_t rows = left < b->batch ? left : b->batch;
    *indices = b->order + b->next;
    b->next += rows;
    b->global_rows = rows;
    return rows;
}

int64_t nf_batcher_next(nf_batcher *b, float *x, float *y)
{
    const nf_dataset *ds = b->ds;
    const int64_t *index;
    int64_t rows = nf_batcher_take(b, &index);
    int64_t xs = nf_shape_size(&ds->x_shape), ys = nf_shape_size(&ds->y_shape);
    for (int64_t r = 0; r < rows; r++) {
        memcpy(x + r * xs, ds->x + index[r] * xs, (size_t)xs * sizeof(float));
        memcpy(y + r * ys, ds->y + index[r] * ys, (size_t)ys * sizeof(float));
    }
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
    if (!b)
        return 0;
    if (b->shards < 2)
        return (b->ds->count + b->batch - 1) / b->batch;
    int64_t whole = global_batch(b), left = b->ds->count % whole; /* (a short last one: nf_batcher_shard) */
    return b->ds->count / whole + (left >= b->shards && b->ds->streams == 0);
}
