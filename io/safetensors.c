/* nodeflow — reading and writing safetensors files (see safetensors.h).
 * The JSON header is parsed and produced by cJSON. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/safetensors.h"
#include "io/util.h"

#define ST_MAX_FILE ((size_t)16 << 30)
#define ST_MAX_HEADER ((size_t)100 << 20)

/* Every dtype the safetensors format defines, with its size in bytes. */
static const struct {
    const char *name;
    int size;
} dtypes[] = {
    {"F64", 8}, {"F32", 4}, {"F16", 2}, {"BF16", 2}, {"I64", 8}, {"I32", 4}, {"I16", 2}, {"I8", 1},
    {"U64", 8}, {"U32", 4}, {"U16", 2}, {"U8", 1}, {"BOOL", 1}, {"F8_E4M3", 1}, {"F8_E5M2", 1},
};

static nf_status parse_entry(const nf_st_file *f, const cJSON *item, size_t data_len, nf_st_tensor *t,
                             uint64_t range[2], nf_error *err)
{
    const char *name = item->string;
    const cJSON *dtype = cJSON_GetObjectItemCaseSensitive(item, "dtype");
    const cJSON *shape = cJSON_GetObjectItemCaseSensitive(item, "shape");
    const cJSON *offsets = cJSON_GetObjectItemCaseSensitive(item, "data_offsets");
    if (!cJSON_IsObject(item) || !cJSON_IsString(dtype) || !cJSON_IsArray(shape) || !cJSON_IsArray(offsets) ||
        cJSON_GetArraySize(offsets) != 2)
        return nf_fail(err, NF_ERR_FORMAT, "%s: tensor '%s' needs dtype, shape and data_offsets [begin, end]",
                       f->path, name);
    int size = 0;
    for (size_t i = 0; i < sizeof dtypes / sizeof dtypes[0]; i++)
        if (strcmp(dtype->valuestring, dtypes[i].name) == 0)
            size = dtypes[i].size;
    if (!size)
        return nf_fail(err, NF_ERR_FORMAT, "%s: tensor '%s' has unknown dtype '%.32s'", f->path, name,
                       dtype->valuestring);
    if (strcmp(dtype->valuestring, "F32") != 0 && strcmp(dtype->valuestring, "F64") != 0)
        return nf_fail(err, NF_ERR_FORMAT, "%s: tensor '%s' is %s; nodeflow reads F32 and F64", f->path, name,
                       dtype->valuestring);
    int rank = cJSON_GetArraySize(shape);
    if (rank > NF_MAX_RANK)
        return nf_fail(err, NF_ERR_FORMAT, "%s: tensor '%s' has rank %d; at most %d", f->path, name, rank,
                       NF_MAX_RANK);
    memset(t, 0, sizeof *t);
    t->name = name;
    t->dtype_size = size;
    t->shape.rank = rank;
    uint64_t count = 1;
    for (int i = 0; i < rank; i++) {
        const cJSON *d = cJSON_GetArrayItem(shape, i);
        if (!cJSON_IsNumber(d) || d->valuedouble < 0 || d->valuedouble > 1e15 ||
            d->valuedouble != (double)(int64_t)d->valuedouble)
            return nf_fail(err, NF_ERR_FORMAT, "%s: tensor '%s' has a bad shape", f->path, name);
        t->shape.dim[i] = (int64_t)d->valuedouble;
        count = t->shape.dim[i] && count > UINT64_MAX / (uint64_t)t->shape.dim[i] / 8 ? UINT64_MAX
                                                                                      : count * (uint64_t)t->shape.dim[i];
    }
    for (int i = 0; i < 2; i++) {
        const cJSON *o = cJSON_GetArrayItem(offsets, i);
        if (!cJSON_IsNumber(o) || o->valuedouble < 0 || o->valuedouble > 9e15 ||
            o->valuedouble != (double)(int64_t)o->valuedouble)
            return nf_fail(err, NF_ERR_FORMAT, "%s: tensor '%s' has bad data_offsets", f->path, name);
        range[i] = (uint64_t)o->valuedouble;
    }
    if (range[0] > range[1] || range[1] > data_len)
        return nf_fail(err, NF_ERR_FORMAT, "%s: tensor '%s' data_offsets [%llu, %llu] outside the %zu data bytes",
                       f->path, name, (unsigned long long)range[0], (unsigned long long)range[1], data_len);
    if (count == UINT64_MAX || range[1] - range[0] != count * (uint64_t)size)
        return nf_fail(err, NF_ERR_FORMAT, "%s: tensor '%s' has %llu bytes of data; its shape needs %llu", f->path,
                       name, (unsigned long long)(range[1] - range[0]), (unsigned long long)(count * (uint64_t)size));
    return NF_OK;
}

typedef struct span {
    uint64_t begin, end;
    const char *name;
} span;

static int by_begin(const void *a, const void *b)
{
    const span *x = a, *y = b;
    if (x->begin != y->begin)
        return (x->begin > y->begin) - (x->begin < y->begin);
    return (x->end > y->end) - (x->end < y->end); /* an empty tensor first */
}

static int by_name(const void *a, const void *b)
{
    return strcmp(((const span *)a)->name, ((const span *)b)->name);
}

/* Each name once: sorted, duplicates are neighbours (no quadratic scan). */
static nf_status check_names(const nf_st_file *f, span *spans, int n, nf_error *err)
{
    qsort(spans, (size_t)n, sizeof *spans, by_name);
    for (int i = 1; i < n; i++)
        if (strcmp(spans[i - 1].name, spans[i].name) == 0)
            return nf_fail(err, NF_ERR_FORMAT, "%s: tensor '%s' appears twice", f->path, spans[i].name);
    return NF_OK;
}

/* Tensors may not overlap and must cover the data without holes. */
static nf_status check_layout(const nf_st_file *f, span *spans, int n, size_t data_len, nf_error *err)
{
    qsort(spans, (size_t)n, sizeof *spans, by_begin);
    uint64_t at = 0;
    for (int i = 0; i < n; i++) {
        if (spans[i].begin < at)
            return nf_fail(err, NF_ERR_FORMAT, "%s: tensors '%s' and '%s' overlap", f->path, spans[i - 1].name,
                           spans[i].name);
        if (spans[i].begin > at)
            return nf_fail(err, NF_ERR_FORMAT, "%s: %llu unused bytes before tensor '%s'", f->path,
                           (unsigned long long)(spans[i].begin - at), spans[i].name);
        at = spans[i].end;
    }
    if (at != data_len)
        return nf_fail(err, NF_ERR_FORMAT, "%s: %llu bytes after the last tensor", f->path,
                       (unsigned long long)(data_len - at));
    return NF_OK;
}

/* What the JSON parser would let through but the format forbids: bytes
 * that are not UTF-8, a control character (a raw one, or an escaped NUL,
 * \u0000, either of which cuts a name short so that it matched another)
 * inside a string, and bytes between tokens that are not JSON white space
 * (cJSON skips every byte up to 0x20). Returns NULL or the fault. */
static const char *header_text_fault(const char *json, size_t len)
{
    const unsigned char *u = (const unsigned char *)json;
    int in_string = 0;
    for (size_t i = 0; i < len;) {
        uint32_t code;
        size_t n = (size_t)nf_utf8_char(u + i, len - i, &code);
        if (!n)
            return "is not UTF-8";
        if (in_string && u[i] < 0x20)
            return "has a control character in a string";
        if (!in_string && u[i] < 0x20 && u[i] != '\t' && u[i] != '\n' && u[i] != '\r')
            return "has a control character between its tokens";
        if (in_string && u[i] == '\\' && i + 1 < len) {
            if (u[i + 1] == 'u' && i + 6 <= len && !memcmp(json + i + 2, "0000", 4))
                return "has a string with a NUL character (\\u0000)";
            i += 2; /* the escaped character cannot end the string */
            continue;
        }
        if (u[i] == '"')
            in_string = !in_string;
        i += n;
    }
    return NULL;
}

/* Only JSON white space may follow the object (the writer pads with
 * spaces). */
static int only_white_space(const char *p, const char *end)
{
    for (; p < end; p++)
        if (*p != ' ' && *p != '\t' && *p != '\n' && *p != '\r')
            return 0;
    return 1;
}

static int by_key(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* The first key that an object holds twice (sorted: no quadratic scan),
 * or NULL; *failed is set when out of memory. cJSON keeps both copies,
 * where the reference reader refuses them. */
static const char *duplicate_key(const cJSON *object, int *failed)
{
    int n = cJSON_GetArraySize(object);
    const char **keys = malloc(((size_t)n + 1) * sizeof *keys), *twice = NULL;
    if (!keys) {
        *failed = 1;
        return NULL;
    }
    int k = 0;
    const cJSON *item;
    cJSON_ArrayForEach(item, object) keys[k++] = item->string;
    qsort(keys, (size_t)k, sizeof *keys, by_key);
    for (int i = 1; i < k && !twice; i++)
        if (!strcmp(keys[i - 1], keys[i]))
            twice = keys[i];
    free(keys);
    return twice;
}

static const char *tensor_name(const void *file, int i) { return ((const nf_st_file *)file)->tensors[i].name; }

static nf_status index_names(nf_st_file *f, nf_error *err)
{
    nf_name_index_init(&f->names, tensor_name, f);
    for (int i = 0; i < f->count; i++)
        if (!nf_name_index_add(&f->names, i))
            return nf_fail(err, NF_ERR_NO_MEMORY, "%s: out of memory indexing %d tensor names", f->path, f->count);
    return NF_OK;
}

static nf_status parse_header(nf_st_file *f, const char *json, size_t json_len, size_t data_len,
                              const unsigned char *data, nf_error *err)
{
    const char *fault = header_text_fault(json, json_len);
    if (fault)
        return nf_fail(err, NF_ERR_FORMAT, "%s: the JSON header %s", f->path, fault);
    const char *end = NULL;
    f->header = cJSON_ParseWithLengthOpts(json, json_len, &end, 0);
    if (!f->header || !cJSON_IsObject(f->header))
        return nf_fail(err, NF_ERR_FORMAT, "%s: the header is not a JSON object", f->path);
    if (!only_white_space(end, json + json_len))
        return nf_fail(err, NF_ERR_FORMAT, "%s: bytes after the JSON header's closing brace (only white space may pad it)",
                       f->path);
    int n = 0;
    const cJSON *item;
    cJSON_ArrayForEach(item, f->header) n++;
    f->tensors = calloc((size_t)n + 1, sizeof *f->tensors);
    span *spans = calloc((size_t)n + 1, sizeof *spans);
    nf_status st = f->tensors && spans ? NF_OK : nf_fail(err, NF_ERR_NO_MEMORY, "%s: out of memory", f->path);
    cJSON_ArrayForEach(item, f->header)
    {
        if (st != NF_OK)
            break;
        int failed = 0;
        const char *twice = cJSON_IsObject(item) ? duplicate_key(item, &failed) : NULL;
        if (failed || twice) {
            st = failed ? nf_fail(err, NF_ERR_NO_MEMORY, "%s: out of memory", f->path)
                        : nf_fail(err, NF_ERR_FORMAT, "%s: '%s' holds the key '%s' twice", f->path, item->string, twice);
            break;
        }
        if (strcmp(item->string, "__metadata__") == 0) {
            if (!cJSON_IsObject(item) || f->metadata) {
                st = nf_fail(err, NF_ERR_FORMAT, "%s: __metadata__ must be one object of strings", f->path);
                break;
            }
            const cJSON *v;
            cJSON_ArrayForEach(v, item) if (!cJSON_IsString(v)) st =
                nf_fail(err, NF_ERR_FORMAT, "%s: __metadata__ values must be strings", f->path);
            f->metadata = (cJSON *)item;
            continue;
        }
        uint64_t range[2];
        if (st == NF_OK)
            st = parse_entry(f, item, data_len, &f->tensors[f->count], range, err);
        if (st == NF_OK) {
            f->tensors[f->count].data = data + range[0];
            spans[f->count] = (span){range[0], range[1], item->string};
            f->count++;
        }
    }
    if (st == NF_OK)
        st = check_names(f, spans, f->count, err);
    if (st == NF_OK)
        st = check_layout(f, spans, f->count, data_len, err);
    free(spans);
    if (st == NF_OK)
        st = index_names(f, err);
    return st;
}

nf_status nf_st_parse(const char *name, char *buf, size_t len, nf_st_file *f, nf_error *err)
{
    memset(f, 0, sizeof *f);
    f->path = name;
    f->buf = buf;
    f->len = len;
    const unsigned char *u = (const unsigned char *)buf;
    nf_status st = NF_OK;
    if (len < 8)
        st = nf_fail(err, NF_ERR_FORMAT, "%s: truncated: %zu bytes, less than the 8-byte header size", name, len);
    uint64_t n = st == NF_OK ? nf_read_le64(u) : 0;
    if (st == NF_OK && n > len - 8)
        st = nf_fail(err, NF_ERR_FORMAT,
                     "%s: not a safetensors file: its first 8 bytes give a header size of %llu, larger than the "
                     "file (%zu bytes)", name, (unsigned long long)n, len);
    if (st == NF_OK && n > ST_MAX_HEADER)
        st = nf_fail(err, NF_ERR_FORMAT, "%s: header size %llu is over the 100 MiB limit", name,
                     (unsigned long long)n);
    if (st == NF_OK && (n == 0 || buf[8] != '{'))
        st = nf_fail(err, NF_ERR_FORMAT, "%s: not a safetensors file: its header does not start with '{'", name);
    if (st == NF_OK)
        st = parse_header(f, buf + 8, (size_t)n, len - 8 - (size_t)n, u + 8 + n, err);
    if (st != NF_OK)
        nf_st_close(f);
    return st;
}

nf_status nf_st_open(const char *path, nf_st_file *f, nf_error *err)
{
    char *buf;
    size_t len;
    memset(f, 0, sizeof *f);
    nf_status st = nf_read_file(path, ST_MAX_FILE, &buf, &len, err);
    return st == NF_OK ? nf_st_parse(path, buf, len, f, err) : st;
}

void nf_st_close(nf_st_file *f)
{
    cJSON_Delete(f->header);
    nf_name_index_free(&f->names);
    free(f->tensors);
    free(f->buf);
    memset(f, 0, sizeof *f);
}

const nf_st_tensor *nf_st_find(const nf_st_file *f, const char *name)
{
    int i = nf_name_index_find(&f->names, name);
    return i >= 0 ? &f->tensors[i] : NULL;
}

int64_t nf_st_first_nonfinite(const nf_st_tensor *t, double *value)
{
    int64_t n = nf_shape_size(&t->shape);
    for (int64_t i = 0; i < n; i++) {
        double d;
        if (t->dtype_size == 4) {
            float x;
            memcpy(&x, t->data + 4 * i, 4);
            d = x;
        } else {
            memcpy(&d, t->data + 8 * i, 8);
        }
        if (!isfinite(d) || fabs(d) >= 0x1.ffffffp127) { /* FLT_MAX and half a step: rounds to infinity */
            *value = d;
            return i;
        }
    }
    return -1;
}

void nf_st_read(const nf_st_tensor *t, float *out)
{
    int64_t n = nf_shape_size(&t->shape);
    for (int64_t i = 0; i < n; i++) {
        if (t->dtype_size == 4) {
            memcpy(&out[i], t->data + 4 * i, 4);
        } else {
            double d;
            memcpy(&d, t->data + 8 * i, 8);
            out[i] = (float)d;
        }
    }
}

const char *nf_st_meta(const nf_st_file *f, const char *key)
{
    const cJSON *v = f->metadata ? cJSON_GetObjectItemCaseSensitive(f->metadata, key) : NULL;
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* ---- writing -------------------------------------------------------- */

typedef struct st_write {
    const nf_st_entry *entries;
    int count;
    const char *header;
    size_t header_len;   /* padded to a multiple of 8 with spaces */
} st_write;

static nf_status write_st(FILE *out, void *ctx, nf_error *err)
{
    const st_write *w = ctx;
    unsigned char size[8];
    for (int i = 0; i < 8; i++)
        size[i] = (unsigned char)((uint64_t)w->header_len >> (8 * i));
    fwrite(size, 1, 8, out);
    size_t json_len = strlen(w->header);
    fwrite(w->header, 1, json_len, out);
    for (size_t i = json_len; i < w->header_len; i++)
        fputc(' ', out);
    for (int i = 0; i < w->count; i++) {
        size_t n = (size_t)nf_shape_size(&w->entries[i].shape);
        if (fwrite(w->entries[i].data, sizeof(float), n, out) != n)
            return nf_fail(err, NF_ERR_IO, "write failed");
    }
    return NF_OK;
}

/* Attaches `item` to `to` under `key`; an item that could not be
 * attached is deleted. */
static int attach(cJSON *to, const char *key, cJSON *item)
{
    if (item && cJSON_AddItemToObject(to, key, item))
        return 1;
    cJSON_Delete(item);
    return 0;
}

/* "NAME": {"dtype": "F32", "shape": [...], "data_offsets": [begin, end]} */
static int add_tensor(cJSON *root, const char *name, const double *dims, int rank, const double *range)
{
    cJSON *t = cJSON_CreateObject();
    if (!attach(root, name, t))
        return 0;
    return attach(t, "dtype", cJSON_CreateString("F32")) && attach(t, "shape", cJSON_CreateDoubleArray(dims, rank)) &&
           attach(t, "data_offsets", cJSON_CreateDoubleArray(range, 2));
}

static cJSON *header_json(const nf_st_entry *entries, int count, const cJSON *metadata)
{
    cJSON *root = cJSON_CreateObject();
    if (!root)
        return NULL;
    if (metadata) {
        cJSON *copy = cJSON_Duplicate(metadata, 1);
        if (!copy || !cJSON_AddItemToObject(root, "__metadata__", copy)) {
            cJSON_Delete(copy);
            cJSON_Delete(root);
            return NULL;
        }
    }
    uint64_t offset = 0;
    for (int i = 0; i < count; i++) {
        const nf_st_entry *e = &entries[i];
        uint64_t bytes = (uint64_t)nf_shape_size(&e->shape) * 4;
        double dims[NF_MAX_RANK], range[2] = {(double)offset, (double)(offset + bytes)};
        for (int d = 0; d < e->shape.rank; d++)
            dims[d] = (double)e->shape.dim[d];
        if (!add_tensor(root, e->name, dims, e->shape.rank, range)) {
            cJSON_Delete(root);
            return NULL;
        }
        offset += bytes;
    }
    return root;
}

nf_status nf_st_write(const char *path, const nf_st_entry *entries, int count, const cJSON *metadata,
                      nf_error *err)
{
    cJSON *root = header_json(entries, count, metadata);
    char *json = root ? cJSON_PrintUnformatted(root) : NULL;
    cJSON_Delete(root);
    if (!json)
        return nf_fail(err, NF_ERR_NO_MEMORY, "%s: out of memory building the header", path);
    size_t len = strlen(json);
    st_write w = {entries, count, json, (len + 7) & ~(size_t)7};
    nf_status st = nf_write_atomic_with(path, write_st, &w, err);
    cJSON_free(json);
    return st;
}
