/* nodeflow — IDX files (the MNIST format), plain or gzip-compressed.
 *
 * Layout: two zero bytes, a type byte (0x08 uint8, 0x09 int8, 0x0B int16,
 * 0x0C int32, 0x0D float32, 0x0E float64), a rank byte, `rank` big-endian
 * uint32 dimensions, then the elements, big-endian, row-major. zlib's
 * gzread reads both compressed and plain files. Float elements must be
 * finite, and float64 ones within the float range. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <zlib.h>

#include "data/data_internal.h"
#include "io/util.h"

#define IDX_MAX_ELEMENTS ((int64_t)1 << 31)

static int element_size(int type)
{
    switch (type) {
    case 0x08: case 0x09: return 1;
    case 0x0B: return 2;
    case 0x0C: case 0x0D: return 4;
    case 0x0E: return 8;
    default: return 0;
    }
}

static uint64_t big_endian(const unsigned char *p, int n)
{
    uint64_t v = 0;
    for (int i = 0; i < n; i++)
        v = (v << 8) | p[i];
    return v;
}

/* One big-endian element as stored. */
static double decode(const unsigned char *p, int type)
{
    uint64_t v = big_endian(p, element_size(type));
    switch (type) {
    case 0x08: return (uint8_t)v;
    case 0x09: return (int8_t)v;
    case 0x0B: return (int16_t)v;
    case 0x0C: return (int32_t)v;
    case 0x0D: { uint32_t b = (uint32_t)v; float f; memcpy(&f, &b, 4); return f; }
    default: { double d; memcpy(&d, &v, 8); return d; }
    }
}

/* An element as a float: float32 as it is (finite), float64 a value a
 * float holds (nf_value_to_float), integers exactly as far as 2^24. */
static nf_value_kind to_float(double v, int type, float *out)
{
    if (type == 0x0E)
        return nf_value_to_float(v, out);
    *out = (float)v;
    return isfinite(v) ? NF_VALUE_OK : NF_VALUE_NOT_FINITE;
}

static int read_exact(gzFile f, void *buf, int64_t n)
{
    unsigned char *p = buf;
    while (n > 0) {
        unsigned chunk = n > (1 << 30) ? (1u << 30) : (unsigned)n;
        int got = gzread(f, p, chunk);
        if (got <= 0)
            return 0;
        p += got;
        n -= got;
    }
    return 1;
}

static nf_status read_header(gzFile f, const char *path, nf_idx *idx, int *type, nf_error *err)
{
    unsigned char magic[4], dim[4];
    if (!read_exact(f, magic, 4))
        return nf_fail(err, NF_ERR_FORMAT, "%s: too short for an IDX header", path);
    if (magic[0] != 0 || magic[1] != 0 || !element_size(magic[2]))
        return nf_fail(err, NF_ERR_FORMAT, "%s: not an IDX file (magic %02x %02x %02x %02x)", path, magic[0],
                       magic[1], magic[2], magic[3]);
    if (magic[3] < 1 || magic[3] > NF_MAX_RANK)
        return nf_fail(err, NF_ERR_FORMAT, "%s: IDX rank %d is outside 1..%d", path, magic[3], NF_MAX_RANK);
    *type = magic[2];
    idx->shape.rank = magic[3];
    int64_t count = 1;
    for (int i = 0; i < idx->shape.rank; i++) {
        if (!read_exact(f, dim, 4))
            return nf_fail(err, NF_ERR_FORMAT, "%s: IDX header ends inside dimension %d", path, i + 1);
        idx->shape.dim[i] = (int64_t)big_endian(dim, 4);
        if (idx->shape.dim[i] == 0)
            return nf_fail(err, NF_ERR_FORMAT, "%s: IDX dimension %d is 0", path, i + 1);
        count = nf_mul_checked(count, idx->shape.dim[i]);
        if (count < 0 || count > IDX_MAX_ELEMENTS)
            return nf_fail(err, NF_ERR_FORMAT, "%s: IDX dimensions ask for more than 2^31 elements", path);
    }
    return NF_OK;
}

/* The raw elements, read in growing chunks, so that a header that
 * promises more than the file holds fails at the end of the data having
 * taken only as much memory as the data. */
static unsigned char *read_raw(gzFile f, int64_t bytes, int *truncated)
{
    enum { CHUNK = 1 << 24 };
    unsigned char *raw = NULL;
    int64_t have = 0;
    *truncated = 0;
    while (have < bytes) {
        int64_t want = bytes - have < CHUNK ? bytes - have : CHUNK;
        unsigned char *grown = realloc(raw, (size_t)(have + want));
        if (!grown) {
            free(raw);
            return NULL;
        }
        raw = grown;
        if (!read_exact(f, raw + have, want)) {
            *truncated = 1;
            return raw;
        }
        have += want;
    }
    return raw ? raw : malloc(1);
}

static nf_status read_body(gzFile f, const char *path, nf_idx *idx, int type, nf_error *err)
{
    int64_t count = nf_shape_size(&idx->shape);
    int esize = element_size(type);
    int64_t need = nf_mul_checked(count, esize + (int64_t)sizeof(float)); /* the raw bytes and the floats */
    if (need < 0 || (uint64_t)need > nf_memory_limit())
        return nf_fail(err, NF_ERR_FORMAT, "%s: the header declares %lld elements, over the memory limit of %zu bytes",
                       path, (long long)count, nf_memory_limit());
    int truncated;
    unsigned char *raw = read_raw(f, count * esize, &truncated);
    if (!raw)
        return nf_fail(err, NF_ERR_NO_MEMORY, "%s: out of memory for %lld elements", path, (long long)count);
    nf_status st = NF_OK;
    unsigned char extra;
    if (truncated)
        st = nf_fail(err, NF_ERR_FORMAT, "%s: truncated: the header promises %lld elements", path,
                     (long long)count);
    else if (gzread(f, &extra, 1) > 0)
        st = nf_fail(err, NF_ERR_FORMAT, "%s: data continues past the %lld elements the header declares", path,
                     (long long)count);
    else if (!(idx->data = malloc((size_t)count * sizeof(float))))
        st = nf_fail(err, NF_ERR_NO_MEMORY, "%s: out of memory for %lld elements", path, (long long)count);
    for (int64_t i = 0; st == NF_OK && i < count; i++) {
        double v = decode(raw + i * esize, type);
        nf_value_kind kind = to_float(v, type, &idx->data[i]);
        if (kind != NF_VALUE_OK)
            st = nf_value_fail(err, path, &idx->shape, i, v, kind);
    }
    free(raw);
    return st;
}

nf_status nf_idx_read(const char *path, nf_idx *idx, nf_error *err)
{
    memset(idx, 0, sizeof *idx);
    nf_error local;
    err = err ? err : &local;
    int fd = nf_open_regular(path, err); /* never waits on a FIFO */
    if (fd < 0)
        return err->code;
    gzFile f = gzdopen(fd, "rb");
    if (!f) {
        close(fd);
        return nf_fail(err, NF_ERR_NO_MEMORY, "%s: cannot open: out of memory", path);
    }
    int type = 0;
    nf_status st = read_header(f, path, idx, &type, err);
    idx->type = type;
    if (st == NF_OK)
        st = read_body(f, path, idx, type, err);
    int gz_err = 0;
    const char *gz_msg = gzerror(f, &gz_err);
    if (st == NF_OK && gz_err != Z_OK && gz_err != Z_STREAM_END)
        st = nf_fail(err, NF_ERR_FORMAT, "%s: %s", path, gz_msg);
    gzclose(f);
    if (st != NF_OK) {
        free(idx->data);
        idx->data = NULL;
    }
    return st;
}
