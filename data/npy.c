/* nodeflow — NumPy .npy files (format versions 1, 2 and 3).
 *
 * Layout: "\x93NUMPY", major and minor version bytes, the header length
 * (2 bytes little-endian in version 1, 4 bytes in 2 and 3), a Python dict
 * literal {'descr': '<f4', 'fortran_order': False, 'shape': (N, ...), }
 * padded with spaces and a newline, then the raw data in C order. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data/data_internal.h"
#include "io/util.h"

#define NPY_MAX_BYTES ((size_t)8 << 30)

typedef enum { NPY_F4, NPY_F8, NPY_U1, NPY_I8, NPY_I4 } npy_type;

static const struct {
    const char *descr;
    npy_type type;
    int size;
} npy_types[] = {
    {"<f4", NPY_F4, 4}, {"<f8", NPY_F8, 8}, {"|u1", NPY_U1, 1}, {"<u1", NPY_U1, 1},
    {"<i8", NPY_I8, 8}, {"<i4", NPY_I4, 4},
};

/* The value of 'key' in the header dict: a pointer just past "'key':". */
static const char *dict_value(const char *header, const char *key)
{
    char quoted[32];
    snprintf(quoted, sizeof quoted, "'%s'", key);
    const char *at = strstr(header, quoted);
    if (!at)
        return NULL;
    at += strlen(quoted);
    while (*at == ' ')
        at++;
    if (*at != ':')
        return NULL;
    at++;
    while (*at == ' ')
        at++;
    return at;
}

static nf_status parse_shape(const char *path, const char *v, nf_shape *shape, nf_error *err)
{
    memset(shape, 0, sizeof *shape);
    if (!v || *v != '(')
        return nf_fail(err, NF_ERR_FORMAT, "%s: the .npy header has no shape tuple", path);
    v++;
    int64_t total = 1;
    for (;;) {
        while (*v == ' ' || *v == ',')
            v++;
        if (*v == ')')
            break;
        if (!isdigit((unsigned char)*v) || shape->rank == NF_MAX_RANK)
            return nf_fail(err, NF_ERR_FORMAT, "%s: malformed .npy shape (at most %d positive dimensions)", path,
                           NF_MAX_RANK);
        char *end;
        long long d = strtoll(v, &end, 10);
        if (d <= 0 || d > ((int64_t)1 << 40) || (total = nf_mul_checked(total, d)) < 0 ||
            total > ((int64_t)1 << 34))
            return nf_fail(err, NF_ERR_FORMAT, "%s: .npy dimension %d is %lld; too large or not positive", path,
                           shape->rank + 1, d);
        shape->dim[shape->rank++] = d;
        v = end;
    }
    return NF_OK;
}

static nf_status parse_header(const char *path, const char *h, npy_type *type, int *size, nf_shape *shape,
                              nf_error *err)
{
    const char *descr = dict_value(h, "descr"), *order = dict_value(h, "fortran_order");
    if (!descr || !order)
        return nf_fail(err, NF_ERR_FORMAT, "%s: the .npy header lacks 'descr' or 'fortran_order'", path);
    if (strncmp(order, "False", 5) != 0)
        return nf_fail(err, NF_ERR_FORMAT, "%s: Fortran-order arrays are not supported; save in C order", path);
    int found = 0;
    for (size_t i = 0; i < sizeof npy_types / sizeof npy_types[0]; i++)
        if (descr[0] == '\'' && strncmp(descr + 1, npy_types[i].descr, 3) == 0 && descr[4] == '\'') {
            *type = npy_types[i].type;
            *size = npy_types[i].size;
            found = 1;
        }
    if (!found) {
        const char *end = descr[0] == '\'' ? strchr(descr + 1, '\'') : NULL;
        int n = end && end - descr < 16 ? (int)(end - descr) + 1 : 8;
        return nf_fail(err, NF_ERR_FORMAT,
                       "%s: unsupported .npy dtype %.*s (float32, float64, uint8, int32, int64 are read)", path, n,
                       descr);
    }
    return parse_shape(path, dict_value(h, "shape"), shape, err);
}

static float decode(const unsigned char *p, npy_type type)
{
    float f;
    double d;
    int64_t i8;
    int32_t i4;
    switch (type) {
    case NPY_F4: memcpy(&f, p, 4); return f;
    case NPY_F8: memcpy(&d, p, 8); return (float)d;
    case NPY_U1: return (float)*p;
    case NPY_I8: memcpy(&i8, p, 8); return (float)i8;
    case NPY_I4: memcpy(&i4, p, 4); return (float)i4;
    }
    return 0.0f;
}

nf_status nf_npy_read(const char *path, nf_npy *out, nf_error *err)
{
    memset(out, 0, sizeof *out);
    char *raw;
    size_t len;
    nf_status st = nf_read_file(path, NPY_MAX_BYTES, &raw, &len, err);
    if (st != NF_OK)
        return st;
    st = nf_npy_parse(path, raw, len, out, err);
    free(raw);
    return st;
}

nf_status nf_npy_parse(const char *path, const char *raw, size_t len, nf_npy *out, nf_error *err)
{
    nf_status st = NF_OK;
    memset(out, 0, sizeof *out);
    const unsigned char *u = (const unsigned char *)raw;
    size_t header_len = 0, start = 0;
    if (len < 10 || memcmp(raw, "\x93NUMPY", 6) != 0)
        st = nf_fail(err, NF_ERR_FORMAT, "%s: not a .npy file (no \\x93NUMPY magic)", path);
    else if (u[6] == 1) {
        header_len = (size_t)u[8] | (size_t)u[9] << 8;
        start = 10;
    } else if ((u[6] == 2 || u[6] == 3) && len >= 12) {
        header_len = (size_t)u[8] | (size_t)u[9] << 8 | (size_t)u[10] << 16 | (size_t)u[11] << 24;
        start = 12;
    } else
        st = nf_fail(err, NF_ERR_FORMAT, "%s: unknown .npy version %d", path, u[6]);
    if (st == NF_OK && header_len > len - start)
        st = nf_fail(err, NF_ERR_FORMAT, "%s: the .npy header runs past the end of the file", path);
    npy_type type = NPY_F4;
    int esize = 4;
    if (st == NF_OK) {
        char *header = strndup(raw + start, header_len);
        st = header ? parse_header(path, header, &type, &esize, &out->shape, err)
                    : nf_fail(err, NF_ERR_NO_MEMORY, "out of memory");
        free(header);
    }
    size_t data_at = start + header_len;
    int64_t count = nf_shape_size(&out->shape);
    if (st == NF_OK && (size_t)count * (size_t)esize != len - data_at)
        st = nf_fail(err, NF_ERR_FORMAT, "%s: the shape needs %lld bytes of data but the file has %zu", path,
                     (long long)count * esize, len - data_at);
    if (st == NF_OK && !(out->data = malloc((size_t)(count ? count : 1) * sizeof(float))))
        st = nf_fail(err, NF_ERR_NO_MEMORY, "%s: out of memory", path);
    for (int64_t i = 0; st == NF_OK && i < count; i++)
        out->data[i] = decode(u + data_at + (size_t)i * (size_t)esize, type);
    out->integral = type == NPY_U1 || type == NPY_I8 || type == NPY_I4;
    if (st != NF_OK) {
        free(out->data);
        out->data = NULL;
    }
    return st;
}

typedef struct npy_write {
    const float *data;
    nf_shape shape;
} npy_write;

static nf_status write_npy(FILE *f, void *ctx, nf_error *err)
{
    const npy_write *w = ctx;
    char header[256];
    int n = snprintf(header, sizeof header, "{'descr': '<f4', 'fortran_order': False, 'shape': (");
    for (int i = 0; i < w->shape.rank; i++)
        n += snprintf(header + n, sizeof header - (size_t)n, "%lld,%s", (long long)w->shape.dim[i],
                      i + 1 < w->shape.rank ? " " : "");
    n += snprintf(header + n, sizeof header - (size_t)n, "), }");
    int total = 10 + n + 1;
    int pad = (64 - total % 64) % 64; /* data starts 64-byte aligned */
    unsigned short header_len = (unsigned short)(n + pad + 1);
    fwrite("\x93NUMPY\x01\x00", 1, 8, f);
    unsigned char len_bytes[2] = {(unsigned char)(header_len & 0xff), (unsigned char)(header_len >> 8)};
    fwrite(len_bytes, 1, 2, f);
    fwrite(header, 1, (size_t)n, f);
    for (int i = 0; i < pad; i++)
        fputc(' ', f);
    fputc('\n', f);
    size_t count = (size_t)nf_shape_size(&w->shape);
    if (fwrite(w->data, sizeof(float), count, f) != count)
        return nf_fail(err, NF_ERR_IO, "write failed");
    return NF_OK;
}

nf_status nf_npy_write(const char *path, const float *data, const nf_shape *shape, nf_error *err)
{
    npy_write w = {data, *shape};
    return nf_write_atomic_with(path, write_npy, &w, err);
}
