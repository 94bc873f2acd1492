/* nodeflow — numeric CSV files as datasets.
 *
 * Every field is a number; one column may be chosen as the label (by
 * index, or by name when the file has a header line). A first line with a
 * field that is not a number is taken as the header. Every row must have
 * as many fields as the first. Comma-separated; spaces around fields are
 * ignored; CRLF line endings are accepted. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data/data_internal.h"
#include "io/util.h"

#define CSV_MAX_BYTES ((size_t)4 << 30)
#define CSV_MAX_COLUMNS 1000000

typedef struct csv_reader {
    const char *path;
    char *text;
    size_t len, pos;
    int line;
    nf_error *err;
} csv_reader;

/* The next line (NUL-terminated in place, without '\r'), or NULL at the end. */
static char *next_line(csv_reader *r)
{
    while (r->pos < r->len) {
        char *start = r->text + r->pos;
        char *nl = memchr(start, '\n', r->len - r->pos);
        size_t n = nl ? (size_t)(nl - start) : r->len - r->pos;
        r->pos += n + (nl ? 1 : 0);
        r->line++;
        start[n] = '\0';
        if (n && start[n - 1] == '\r')
            start[n - 1] = '\0';
        if (start[strspn(start, " \t")] != '\0')
            return start;
    }
    return NULL;
}

static int64_t count_fields(const char *line)
{
    int64_t n = 1;
    for (; *line; line++)
        n += *line == ',';
    return n;
}

static int parse_field(char *field, float *out)
{
    char *end;
    errno = 0;
    double v = strtod(field, &end);
    while (*end == ' ' || *end == '\t')
        end++;
    if (end == field || *end || errno == ERANGE || !isfinite(v) || fabs(v) > 3.4e38)
        return 0;
    *out = (float)v;
    return 1;
}

/* Splits a line in place into `n` fields and parses them; on a bad field
 * reports file:line:col. */
static nf_status parse_row(csv_reader *r, char *line, int64_t n, float *values)
{
    char *field = line;
    for (int64_t i = 0; i < n; i++) {
        char *comma = strchr(field, ',');
        if (comma)
            *comma = '\0';
        if (!parse_field(field, &values[i])) {
            char shown[40];
            snprintf(shown, sizeof shown, "%s", field + strspn(field, " \t"));
            nf_status st = nf_fail(r->err, NF_ERR_FORMAT, "%s:%d:%d: field %lld is '%s', not a number", r->path,
                                   r->line, (int)(field - line) + 1, (long long)i + 1, shown);
            if (r->err) {
                r->err->line = r->line;
                r->err->column = (int)(field - line) + 1;
            }
            return st;
        }
        field = comma ? comma + 1 : field + strlen(field);
    }
    return NF_OK;
}

static int is_header(const char *line)
{
    char *copy = strdup(line);
    if (!copy)
        return 0;
    int header = 0;
    for (char *field = strtok(copy, ","); field && !header; field = strtok(NULL, ",")) {
        float v;
        header = !parse_field(field, &v);
    }
    free(copy);
    return header;
}

/* The label column: a whole number, or a header name. */
static nf_status label_column(const csv_reader *r, const char *label, const char *header, int64_t columns,
                              int64_t *out)
{
    char *end;
    long long index = strtoll(label, &end, 10);
    if (end != label && *end == '\0') {
        if (index < 0 || index >= columns)
            return nf_fail(r->err, NF_ERR_INVALID_ARGUMENT, "%s: label column %lld does not exist (columns 0..%lld)",
                           r->path, index, (long long)columns - 1);
        *out = index;
        return NF_OK;
    }
    if (header) {
        int64_t i = 0;
        const char *field = header;
        while (field) {
            const char *comma = strchr(field, ',');
            size_t n = comma ? (size_t)(comma - field) : strlen(field);
            while (n && (field[n - 1] == ' ' || field[n - 1] == '\t'))
                n--;
            const char *name = field + strspn(field, " \t");
            n -= (size_t)(name - field) > n ? n : (size_t)(name - field);
            if (strlen(label) == n && strncmp(name, label, n) == 0) {
                *out = i;
                return NF_OK;
            }
            field = comma ? comma + 1 : NULL;
            i++;
        }
    }
    return nf_fail(r->err, NF_ERR_INVALID_ARGUMENT, "%s: no column named '%s'%s", r->path, label,
                   header ? "" : " (the file has no header line)");
}

static nf_status read_rows(csv_reader *r, char *first, int64_t columns, int64_t label, nf_dataset *ds)
{
    int64_t cap = 1024, features = columns - (label >= 0);
    float *row = malloc((size_t)columns * sizeof(float));
    ds->x = malloc((size_t)(cap * features) * sizeof(float));
    ds->y = malloc((size_t)cap * sizeof(float));
    nf_status st = NF_OK;
    for (char *line = first; line && st == NF_OK; line = next_line(r)) {
        if (!row || !ds->x || !ds->y) {
            st = nf_fail(r->err, NF_ERR_NO_MEMORY, "%s: out of memory", r->path);
            break;
        }
        int64_t n = count_fields(line);
        if (n != columns) {
            st = nf_fail(r->err, NF_ERR_FORMAT, "%s:%d: %lld fields, but the first row has %lld", r->path, r->line,
                         (long long)n, (long long)columns);
            break;
        }
        if ((st = parse_row(r, line, columns, row)) != NF_OK)
            break;
        if (ds->count == cap) {
            cap *= 2;
            float *x = realloc(ds->x, (size_t)(cap * features) * sizeof(float));
            float *y = x ? realloc(ds->y, (size_t)cap * sizeof(float)) : NULL;
            if (x)
                ds->x = x;
            if (y)
                ds->y = y;
            if (!x || !y) {
                st = nf_fail(r->err, NF_ERR_NO_MEMORY, "%s: out of memory at line %d", r->path, r->line);
                break;
            }
        }
        float *x = ds->x + ds->count * features;
        for (int64_t c = 0, k = 0; c < columns; c++)
            if (c == label)
                ds->y[ds->count] = row[c];
            else
                x[k++] = row[c];
        ds->count++;
    }
    free(row);
    return st;
}

/* Class labels: whole numbers >= 0 make a classification dataset. */
static void classify_labels(nf_dataset *ds)
{
    float top = 0.0f;
    for (int64_t i = 0; i < ds->count; i++) {
        float v = ds->y[i];
        if (v < 0.0f || v != floorf(v) || v > 1e6f)
            return;
        top = v > top ? v : top;
    }
    ds->classes = (int64_t)top + 1;
}

nf_status nf_dataset_parse_csv(const char *text, size_t len, const char *name, const char *label,
                               nf_dataset **out, nf_error *err)
{
    if (!text || !out)
        return nf_fail(err, NF_ERR_INVALID_ARGUMENT, "nf_dataset_parse_csv: NULL argument");
    *out = NULL;
    csv_reader r = {.path = name ? name : "<csv>", .err = err, .len = len};
    r.text = malloc(len + 1);
    if (!r.text)
        return nf_fail(err, NF_ERR_NO_MEMORY, "out of memory");
    memcpy(r.text, text, len);
    r.text[len] = '\0';
    if (memchr(r.text, '\0', len)) {
        free(r.text);
        return nf_fail(err, NF_ERR_FORMAT, "%s: a NUL byte; CSV files are text", r.path);
    }
    nf_status st = NF_OK;
    nf_dataset *ds = calloc(1, sizeof *ds);
    char *first = next_line(&r), *header = NULL;
    if (!ds)
        st = nf_fail(err, NF_ERR_NO_MEMORY, "out of memory");
    else if (!first)
        st = nf_fail(err, NF_ERR_FORMAT, "%s: no rows", r.path);
    else if (is_header(first)) {
        header = first;
        if (!(first = next_line(&r)))
            st = nf_fail(err, NF_ERR_FORMAT, "%s: a header line but no rows", r.path);
    }
    int64_t columns = first ? count_fields(first) : 0, label_at = -1;
    if (st == NF_OK && header && count_fields(header) != columns)
        st = nf_fail(err, NF_ERR_FORMAT, "%s: the header has %lld fields but the first row has %lld", r.path,
                     (long long)count_fields(header), (long long)columns);
    if (st == NF_OK && columns > CSV_MAX_COLUMNS)
        st = nf_fail(err, NF_ERR_FORMAT, "%s:%d: %lld columns; at most %d", r.path, r.line, (long long)columns,
                     CSV_MAX_COLUMNS);
    if (st == NF_OK && label)
        st = label_column(&r, label, header, columns, &label_at);
    if (st == NF_OK && label_at >= 0 && columns < 2)
        st = nf_fail(err, NF_ERR_FORMAT, "%s: a label column needs at least one feature column beside it", r.path);
    if (st == NF_OK)
        st = read_rows(&r, first, columns, label_at, ds);
    free(r.text);
    if (st != NF_OK) {
        nf_dataset_free(ds);
        return st;
    }
    ds->x_shape = (nf_shape){1, {columns - (label_at >= 0)}};
    ds->y_shape = (nf_shape){0, {0}};
    if (label_at < 0) /* no labels: zeros, so that inference can bind them */
        memset(ds->y, 0, (size_t)ds->count * sizeof(float));
    else
        classify_labels(ds);
    *out = ds;
    return NF_OK;
}

nf_status nf_dataset_load_csv(const char *path, const char *label, nf_dataset **out, nf_error *err)
{
    if (!path || !out)
        return nf_fail(err, NF_ERR_INVALID_ARGUMENT, "nf_dataset_load_csv: NULL argument");
    *out = NULL;
    char *text;
    size_t len;
    nf_status st = nf_read_file(path, CSV_MAX_BYTES, &text, &len, err);
    if (st != NF_OK)
        return st;
    st = nf_dataset_parse_csv(text, len, path, label, out, err);
    free(text);
    return st;
}
