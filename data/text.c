/* nodeflow — byte-level text corpora cut into parallel streams of
 * windows, for recurrent models (see nf_dataset_load_text in data.h). */
#include <dirent.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "data/data_internal.h"
#include "io/util.h"

typedef struct corpus {
    char *bytes;
    size_t len;
} corpus;

/* Appends file `path` to c unless it holds a NUL byte (a binary file). */
static nf_status append_file(corpus *c, const char *path, size_t max_bytes, int skip_binary, nf_error *err)
{
    char *data;
    size_t len;
    if (c->len >= max_bytes)
        return nf_fail(err, NF_ERR_FORMAT, "%s: the text passes %zu bytes, the memory limit's share for text", path,
                       max_bytes);
    nf_status st = nf_read_file(path, max_bytes - c->len, &data, &len, err);
    if (st != NF_OK)
        return st;
    if (skip_binary && memchr(data, '\0', len)) {
        free(data);
        return NF_OK;
    }
    char *grown = realloc(c->bytes, c->len + len + 1);
    if (!grown) {
        free(data);
        return nf_fail(err, NF_ERR_NO_MEMORY, "out of memory reading %s", path);
    }
    memcpy(grown + c->len, data, len);
    c->bytes = grown;
    c->len += len;
    free(data);
    return NF_OK;
}

static int by_name(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* Every regular file of a directory, in name order. */
static nf_status read_directory(corpus *c, const char *dir, size_t max_bytes, nf_error *err)
{
    DIR *d = opendir(dir);
    if (!d)
        return nf_fail(err, NF_ERR_IO, "%s: cannot open the directory", dir);
    char **names = NULL;
    size_t n = 0, cap = 0;
    nf_status st = NF_OK;
    for (struct dirent *entry; st == NF_OK && (entry = readdir(d));) {
        size_t need = strlen(dir) + strlen(entry->d_name) + 2;
        char *path = malloc(need);
        struct stat info;
        if (!path) {
            st = nf_fail(err, NF_ERR_NO_MEMORY, "out of memory listing %s", dir);
            break;
        }
        snprintf(path, need, "%s/%s", dir, entry->d_name);
        if (lstat(path, &info) != 0 || !S_ISREG(info.st_mode)) {
            free(path);
            continue;
        }
        if (n == cap) {
            char **grown = realloc(names, (cap = cap ? 2 * cap : 64) * sizeof *names);
            if (!grown) {
                free(path);
                st = nf_fail(err, NF_ERR_NO_MEMORY, "out of memory listing %s", dir);
                break;
            }
            names = grown;
        }
        names[n++] = path;
    }
    closedir(d);
    if (st == NF_OK && n > 1)
        qsort(names, n, sizeof *names, by_name);
    for (size_t i = 0; i < n; i++) {
        if (st == NF_OK)
            st = append_file(c, names[i], max_bytes, 1, err);
        free(names[i]);
    }
    free(names);
    return st;
}

static nf_status read_corpus(const char *path, corpus *c, nf_error *err)
{
    struct stat info;
    size_t max_bytes = nf_memory_limit() / (2 * sizeof(float)) + 1; /* x and y: 8 bytes per byte of text */
    if (stat(path, &info) != 0)
        return nf_fail(err, NF_ERR_IO, "%s: no such file or directory", path);
    if (S_ISDIR(info.st_mode))
        return read_directory(c, path, max_bytes, err);
    return append_file(c, path, max_bytes, 0, err);
}

/* The sorted distinct bytes of the corpus, and each byte's id. */
static void make_vocab(const corpus *c, nf_dataset *ds, int id_of[256])
{
    int present[256] = {0};
    for (size_t i = 0; i < c->len; i++)
        present[(unsigned char)c->bytes[i]] = 1;
    ds->vocab_size = 0;
    for (int b = 0; b < 256; b++) {
        id_of[b] = present[b] ? ds->vocab_size : -1;
        if (present[b])
            ds->vocab[ds->vocab_size++] = (unsigned char)b;
    }
}

/* Window k of stream s is sample k lanes + s: tokens at s (windows T) +
 * k T of the text (lanes: the streams, or one for independent windows). */
static void cut_windows(const corpus *c, const int id_of[256], int64_t window, int64_t windows, int64_t lanes,
                        nf_dataset *ds)
{
    int64_t per_stream = windows * window;
    for (int64_t k = 0; k < windows; k++)
        for (int64_t s = 0; s < lanes; s++) {
            int64_t sample = k * lanes + s, start = s * per_stream + k * window;
            for (int64_t i = 0; i < window; i++) {
                ds->x[sample * window + i] = (float)id_of[(unsigned char)c->bytes[start + i]];
                ds->y[sample * window + i] = (float)id_of[(unsigned char)c->bytes[start + i + 1]];
            }
        }
}

static nf_status load_text(const char *path, int64_t window, int64_t streams, nf_dataset **out, nf_error *err)
{
    if (window < 1 || streams < 0 || window > (1 << 24) || streams > (1 << 24))
        return nf_fail(err, NF_ERR_INVALID_ARGUMENT,
                       "text windows of %lld tokens in %lld streams: windows 1 .. 2^24, streams 0 .. 2^24",
                       (long long)window, (long long)streams);
    int64_t lanes = streams ? streams : 1;
    corpus c = {0};
    nf_status st = read_corpus(path, &c, err);
    int64_t windows = c.len > 0 ? (int64_t)(c.len - 1) / (window * lanes) : 0;
    if (st == NF_OK && windows == 0)
        st = nf_fail(err, NF_ERR_FORMAT, "%s: %zu bytes of text are too few for %lld streams of %lld-byte windows",
                     path, c.len, (long long)lanes, (long long)window);
    nf_dataset *ds = st == NF_OK ? calloc(1, sizeof *ds) : NULL;
    int64_t floats = windows * lanes * window;
    if (st == NF_OK && (!ds || !(ds->x = malloc((size_t)floats * sizeof(float))) ||
                        !(ds->y = malloc((size_t)floats * sizeof(float)))))
        st = nf_fail(err, NF_ERR_NO_MEMORY, "out of memory for %lld text windows", (long long)(windows * lanes));
    if (st == NF_OK)
        st = nf_dataset_set_origin(ds, path, NULL, 0, err);
    if (st == NF_OK) {
        int id_of[256];
        ds->count = windows * lanes;
        ds->x_shape = ds->y_shape = (nf_shape){1, {window}};
        ds->streams = streams;
        make_vocab(&c, ds, id_of);
        ds->classes = ds->vocab_size;
        cut_windows(&c, id_of, window, windows, lanes, ds);
        *out = ds;
    } else {
        nf_dataset_free(ds);
    }
    free(c.bytes);
    return st;
}

nf_status nf_dataset_load_text(const char *path, int64_t window, int64_t streams, nf_dataset **out, nf_error *err)
{
    if (!path || !out)
        return nf_fail(err, NF_ERR_INVALID_ARGUMENT, "nf_dataset_load_text: NULL argument");
    *out = NULL;
    return load_text(path, window, streams, out, err);
}

/* Each byte's id in a vocabulary; a byte listed twice is refused, named
 * (escaped: 'a', '\x0a') with both its ids. */
static nf_status vocab_ids(const unsigned char *vocab, int vocab_size, int id_of[256], nf_error *err)
{
    for (int b = 0; b < 256; b++)
        id_of[b] = -1;
    for (int i = 0; i < vocab_size; i++) {
        if (id_of[vocab[i]] >= 0) {
            char shown[8];
            return nf_fail(err, NF_ERR_FORMAT, "the vocabulary lists byte '%s' twice, as ids %d and %d",
                           nf_shown((const char *)&vocab[i], 1, shown, sizeof shown), id_of[vocab[i]], i);
        }
        id_of[vocab[i]] = i;
    }
    return NF_OK;
}

nf_status nf_text_to_ids(const unsigned char *vocab, int vocab_size, const char *text, size_t len, float *ids,
                         nf_error *err)
{
    if (vocab_size < 0 || vocab_size > 256 || (vocab_size > 0 && !vocab) || (len > 0 && (!text || !ids)))
        return nf_fail(err, NF_ERR_INVALID_ARGUMENT, "nf_text_to_ids: NULL argument or a vocabulary of %d bytes",
                       vocab_size);
    int id_of[256];
    nf_status st = vocab_ids(vocab, vocab_size, id_of, err);
    if (st != NF_OK)
        return st;
    for (size_t i = 0; i < len; i++) {
        int id = id_of[(unsigned char)text[i]];
        if (id < 0)
            return nf_fail(err, NF_ERR_FORMAT, "byte 0x%02x at position %zu is not in the vocabulary",
                           (unsigned char)text[i], i);
        ids[i] = (float)id;
    }
    return NF_OK;
}
