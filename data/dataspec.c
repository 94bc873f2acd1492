/* nodeflow — datasets named by a spec string, as the command line takes
 * them:
 *   fashion-mnist:train | fashion-mnist:test   Debian's dataset-fashion-mnist
 *   idx:IMAGES,LABELS                          IDX files, plain or .gz
 *   csv:FILE[,label=COLUMN]                    numeric CSV, label by index or name
 *   npy:X.npy[,Y.npy]                          NumPy arrays, first axis = samples
 *   text:PATH[,window=T,streams=B]             byte-level text (window and
 *                                              streams are needed here; the
 *                                              session adds them itself)
 * one row of the table `kinds` each, below.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data/data_internal.h"

/* Labels of one whole number 0 .. 2^24 - 1 per sample make a
 * classification dataset (nf_dataset_check_classes checks them against a
 * model's classes); the class count is the largest + 1. */
static nf_status dataset_from_arrays(const char *x_path, const char *y_path, nf_npy *x, nf_npy *y,
                                     nf_dataset **out, nf_error *err)
{
    if (x->shape.rank < 1)
        return nf_fail(err, NF_ERR_FORMAT, "%s: features need a first axis of samples", x_path);
    int64_t n = x->shape.dim[0];
    if (y && (y->shape.rank < 1 || y->shape.dim[0] != n))
        return nf_fail(err, NF_ERR_FORMAT, "%s has %lld samples but the labels have %lld", x_path, (long long)n,
                       (long long)(y->shape.rank ? y->shape.dim[0] : 0));
    nf_dataset *ds = calloc(1, sizeof *ds);
    float *zeros = y ? NULL : calloc((size_t)n, sizeof(float));
    nf_status st = !ds || (!y && !zeros) ? nf_fail(err, NF_ERR_NO_MEMORY, "out of memory") : NF_OK;
    if (st == NF_OK && y)
        st = nf_dataset_set_origin(ds, y_path, NULL, 0, err);
    if (st != NF_OK) {
        free(ds);
        free(zeros);
        return st;
    }
    ds->count = n;
    ds->x_shape.rank = x->shape.rank - 1;
    memcpy(ds->x_shape.dim, x->shape.dim + 1, (size_t)ds->x_shape.rank * sizeof(int64_t));
    ds->x = x->data;
    x->data = NULL;
    if (y) {
        ds->y_shape.rank = y->shape.rank - 1;
        memcpy(ds->y_shape.dim, y->shape.dim + 1, (size_t)ds->y_shape.rank * sizeof(int64_t));
        ds->y = y->data;
        y->data = NULL;
        ds->classes = ds->y_shape.rank == 0 ? nf_class_count(ds->y, ds->count, NULL) : 0;
    } else {
        ds->y = zeros;
    }
    *out = ds;
    return NF_OK;
}

nf_status nf_dataset_load_npy(const char *x_path, const char *y_path, nf_dataset **out, nf_error *err)
{
    if (!x_path || !out)
        return nf_fail(err, NF_ERR_INVALID_ARGUMENT, "nf_dataset_load_npy: NULL argument");
    *out = NULL;
    nf_npy x, y = {0};
    nf_status st = nf_npy_read(x_path, &x, err);
    if (st == NF_OK && y_path)
        st = nf_npy_read(y_path, &y, err);
    if (st == NF_OK)
        st = dataset_from_arrays(x_path, y_path, &x, y_path ? &y : NULL, out, err);
    free(x.data);
    free(y.data);
    return st;
}

/* Splits "a,b" at the first comma into two NUL-terminated strings of `buf`. */
static char *split_pair(char *buf, char **second)
{
    char *comma = strchr(buf, ',');
    *second = NULL;
    if (comma) {
        *comma = '\0';
        *second = comma + 1;
    }
    return buf;
}

/* "window=T,streams=B" (either order) after text:PATH */
static nf_status load_text_spec(const char *path, char *options, nf_dataset **out, nf_error *err)
{
    long long window = 0, streams = 0;
    for (char *opt = options, *next; opt && *opt; opt = next) {
        next = strchr(opt, ',');
        if (next)
            *next++ = '\0';
        char *end;
        long long *slot = strncmp(opt, "window=", 7) == 0 ? &window : strncmp(opt, "streams=", 8) == 0 ? &streams : NULL;
        if (!slot)
            return nf_fail(err, NF_ERR_INVALID_ARGUMENT, "text data: unknown option '%.100s' (window=T, streams=B)", opt);
        const char *number = strchr(opt, '=') + 1;
        errno = 0;
        *slot = strtoll(number, &end, 10);
        if (*end || end == number || errno == ERANGE)
            return nf_fail(err, NF_ERR_INVALID_ARGUMENT, "text data: '%.100s' needs a whole number 1 .. 2^24", opt);
    }
    if (window <= 0 || streams <= 0)
        return nf_fail(err, NF_ERR_INVALID_ARGUMENT, "text:%.200s needs window=T and streams=B (positive)", path);
    return nf_dataset_load_text(path, window, streams, out, err);
}

/* Each kind of spec: its prefix, the forms it takes (the help text and
 * errors are written from them) and its loader, which gets the text after
 * the colon split at the first comma (second is NULL without one) and
 * says 0 when that text has the wrong form. */
typedef struct spec_kind {
    const char *prefix;
    const char *usage;
    int (*load)(char *first, char *second, nf_dataset **out, nf_error *err, nf_status *st);
} spec_kind;

static int load_fashion(char *first, char *second, nf_dataset **out, nf_error *err, nf_status *st)
{
    if (second || (strcmp(first, "train") != 0 && strcmp(first, "test") != 0))
        return 0;
    *st = nf_dataset_load_fashion_mnist(NULL, strcmp(first, "train") == 0, out, err);
    return 1;
}

static int load_idx(char *first, char *second, nf_dataset **out, nf_error *err, nf_status *st)
{
    if (!second || !*first || !*second)
        return 0;
    *st = nf_dataset_load_idx(first, second, out, err);
    return 1;
}

static int load_csv(char *first, char *second, nf_dataset **out, nf_error *err, nf_status *st)
{
    if (!*first || (second && (strncmp(second, "label=", 6) != 0 || !second[6])))
        return 0;
    *st = nf_dataset_load_csv(first, second ? second + 6 : NULL, out, err);
    return 1;
}

static int load_npy(char *first, char *second, nf_dataset **out, nf_error *err, nf_status *st)
{
    if (!*first || (second && !*second))
        return 0;
    *st = nf_dataset_load_npy(first, second, out, err);
    return 1;
}

static int load_text(char *first, char *second, nf_dataset **out, nf_error *err, nf_status *st)
{
    if (!*first)
        return 0;
    *st = load_text_spec(first, second, out, err);
    return 1;
}

static const spec_kind kinds[] = {
    {"fashion-mnist", "fashion-mnist:train | fashion-mnist:test  (Debian's dataset-fashion-mnist)", load_fashion},
    {"idx", "idx:IMAGES,LABELS  (IDX files, plain or .gz)", load_idx},
    {"csv", "csv:FILE[,label=COLUMN]  (numeric CSV; the label column by index or header name, none without it)", load_csv},
    {"npy", "npy:X.npy[,Y.npy]  (NumPy arrays, first axis = samples)", load_npy},
    {"text", "text:FILE-OR-DIRECTORY[,window=T,streams=B]  (bytes; nodeflow train sets window and streams)",
     load_text},
};

#define KIND_COUNT ((int)(sizeof kinds / sizeof kinds[0]))

const char *nf_dataset_spec_usage(int index) { return index >= 0 && index < KIND_COUNT ? kinds[index].usage : NULL; }

static nf_status spec_error(const char *spec, nf_error *err)
{
    char forms[512] = "";
    for (int i = 0; i < KIND_COUNT; i++) { /* each usage up to its note */
        size_t at = strlen(forms);
        const char *note = strstr(kinds[i].usage, "  (");
        snprintf(forms + at, sizeof forms - at, "%s%.*s", i ? "; " : "",
                 (int)(note ? (size_t)(note - kinds[i].usage) : strlen(kinds[i].usage)), kinds[i].usage);
    }
    return nf_fail(err, NF_ERR_INVALID_ARGUMENT, "data spec '%.200s' is not one of: %s", spec, forms);
}

static nf_status load_spec(const char *spec, nf_dataset **out, nf_error *err)
{
    if (!spec || !out)
        return nf_fail(err, NF_ERR_INVALID_ARGUMENT, "nf_dataset_load_spec: NULL argument");
    *out = NULL;
    const char *colon = strchr(spec, ':');
    if (!colon || !colon[1])
        return spec_error(spec, err);
    size_t length = (size_t)(colon - spec);
    for (int i = 0; i < KIND_COUNT; i++) {
        if (strlen(kinds[i].prefix) != length || strncmp(spec, kinds[i].prefix, length) != 0)
            continue;
        char *rest = strdup(colon + 1), *second;
        if (!rest)
            return nf_fail(err, NF_ERR_NO_MEMORY, "out of memory");
        nf_status st = NF_OK;
        char *first = split_pair(rest, &second);
        int matched = kinds[i].load(first, second, out, err, &st);
        free(rest);
        return matched ? st : spec_error(spec, err);
    }
    return spec_error(spec, err);
}

nf_status nf_dataset_load_spec(const char *spec, nf_dataset **out, nf_error *err)
{
    return load_spec(spec, out, err);
}
