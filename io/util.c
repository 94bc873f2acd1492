/* nodeflow — text buffers, spelling suggestions and file helpers. */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "io/util.h"

void nf_text_printf(nf_text *t, const char *fmt, ...)
{
    if (t->failed)
        return;
    va_list ap;
    va_start(ap, fmt);
    int need = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (need < 0 || t->len + (size_t)need + 1 > t->cap) {
        size_t cap = t->cap ? 2 * t->cap : 1024;
        while (need >= 0 && cap < t->len + (size_t)need + 1)
            cap *= 2;
        char *data = need < 0 ? NULL : realloc(t->data, cap);
        if (!data) {
            t->failed = 1;
            return;
        }
        t->data = data;
        t->cap = cap;
    }
    va_start(ap, fmt);
    vsnprintf(t->data + t->len, t->cap - t->len, fmt, ap);
    va_end(ap);
    t->len += (size_t)need;
}

void nf_text_free(nf_text *t)
{
    free(t->data);
    memset(t, 0, sizeof *t);
}

/* Edit distance counting an adjacent transposition as one edit (optimal
 * string alignment), for words of at most 63 characters. */
static int edit_distance(const char *a, const char *b)
{
    size_t n = strlen(a), m = strlen(b);
    if (n > 63 || m > 63)
        return 99;
    int d[64][64];
    for (size_t i = 0; i <= n; i++)
        d[i][0] = (int)i;
    for (size_t j = 0; j <= m; j++)
        d[0][j] = (int)j;
    for (size_t i = 1; i <= n; i++)
        for (size_t j = 1; j <= m; j++) {
            int best = d[i - 1][j - 1] + (a[i - 1] != b[j - 1]);
            if (d[i - 1][j] + 1 < best)
                best = d[i - 1][j] + 1;
            if (d[i][j - 1] + 1 < best)
                best = d[i][j - 1] + 1;
            if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] && d[i - 2][j - 2] + 1 < best)
                best = d[i - 2][j - 2] + 1;
            d[i][j] = best;
        }
    return d[n][m];
}

const char *nf_suggest(const char *word, const char *const *candidates)
{
    const char *best = NULL;
    int best_distance = 3;
    for (int i = 0; candidates && candidates[i]; i++) {
        int d = edit_distance(word, candidates[i]);
        if (d < best_distance && 2 * d < (int)strlen(candidates[i])) {
            best = candidates[i];
            best_distance = d;
        }
    }
    return best;
}

nf_status nf_read_file(const char *path, size_t max_bytes, char **data, size_t *len, nf_error *err)
{
    *data = NULL;
    *len = 0;
    FILE *f = fopen(path, "rb");
    if (!f)
        return nf_fail(err, NF_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap + 1);
    nf_status st = NF_OK;
    while (buf) {
        n += fread(buf + n, 1, cap - n, f);
        if (n > max_bytes) { /* only a small limit: the first buffer is 4096 bytes */
            st = nf_fail(err, NF_ERR_FORMAT, "%s: larger than %zu bytes", path, max_bytes);
            break;
        }
        if (n < cap)
            break;
        if (cap >= max_bytes) {
            st = nf_fail(err, NF_ERR_FORMAT, "%s: larger than %zu bytes", path, max_bytes);
            break;
        }
        cap = cap * 2 < max_bytes ? cap * 2 : max_bytes;
        char *grown = realloc(buf, cap + 1);
        if (!grown) {
            free(buf);
            buf = NULL;
        }
        buf = grown;
    }
    if (st == NF_OK && !buf)
        st = nf_fail(err, NF_ERR_NO_MEMORY, "%s: out of memory reading the file", path);
    if (st == NF_OK && ferror(f))
        st = nf_fail(err, NF_ERR_IO, "%s: read error", path);
    fclose(f);
    if (st != NF_OK) {
        free(buf);
        return st;
    }
    buf[n] = '\0';
    *data = buf;
    *len = n;
    return NF_OK;
}

nf_status nf_write_atomic_with(const char *path, nf_status (*write)(FILE *f, void *ctx, nf_error *err),
                               void *ctx, nf_error *err)
{
    size_t n = strlen(path);
    char *tmp = malloc(n + 16);
    if (!tmp)
        return nf_fail(err, NF_ERR_NO_MEMORY, "%s: out of memory", path);
    snprintf(tmp, n + 16, "%s.tmpXXXXXX", path);
    int fd = mkstemp(tmp);
    if (fd < 0) {
        nf_status st = nf_fail(err, NF_ERR_IO, "%s: cannot create a temporary file beside it: %s", path,
                               strerror(errno));
        free(tmp);
        return st;
    }
    fchmod(fd, 0644);
    FILE *f = fdopen(fd, "wb");
    nf_status st = f ? write(f, ctx, err) : nf_fail(err, NF_ERR_IO, "%s: %s", tmp, strerror(errno));
    if (st == NF_OK && (fflush(f) != 0 || ferror(f)))
        st = nf_fail(err, NF_ERR_IO, "%s: write failed: %s", path, strerror(errno));
    if (st == NF_OK && fsync(fd) != 0)
        st = nf_fail(err, NF_ERR_IO, "%s: fsync failed: %s", path, strerror(errno));
    if (f ? fclose(f) != 0 : close(fd) != 0)
        if (st == NF_OK)
            st = nf_fail(err, NF_ERR_IO, "%s: close failed: %s", path, strerror(errno));
    if (st == NF_OK && rename(tmp, path) != 0)
        st = nf_fail(err, NF_ERR_IO, "%s: cannot rename the temporary file into place: %s", path,
                     strerror(errno));
    if (st != NF_OK)
        unlink(tmp);
    free(tmp);
    return st;
}

typedef struct bytes {
    const void *data;
    size_t len;
} bytes;

static nf_status write_bytes(FILE *f, void *ctx, nf_error *err)
{
    const bytes *b = ctx;
    if (b->len && fwrite(b->data, 1, b->len, f) != b->len)
        return nf_fail(err, NF_ERR_IO, "write failed: %s", strerror(errno));
    return NF_OK;
}

nf_status nf_write_file_atomic(const char *path, const void *data, size_t len, nf_error *err)
{
    bytes b = {data, len};
    return nf_write_atomic_with(path, write_bytes, &b, err);
}

void nf_format_double(char *buf, size_t size, double v)
{
    for (int digits = 6; digits <= 17; digits++) {
        snprintf(buf, size, "%.*g", digits, v);
        if (strtod(buf, NULL) == v)
            return;
    }
}

static int hex_digit(int c)
{
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

int nf_hex_decode(const char *hex, unsigned char *out, size_t n)
{
    if (!hex || strlen(hex) != 2 * n)
        return 0;
    for (size_t i = 0; i < n; i++) {
        int hi = hex_digit((unsigned char)hex[2 * i]), lo = hex_digit((unsigned char)hex[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return 0;
        out[i] = (unsigned char)(hi << 4 | lo);
    }
    return 1;
}
