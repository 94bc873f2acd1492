/* nodeflow — numeric CSV files as datasets.
 *
 * Every field is a finite number that a float holds; one column may be
 * chosen as the label (by index, or by name when the file has a header
 * line). A first line with a field of text (neither empty nor a number;
 * nan and inf count as numbers) is taken as the header. Every row must
 * have as many fields as the first. Comma-separated; spaces around fields
 * are ignored; CRLF line endings and a UTF-8 byte order mark at the start
 * are accepted. */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <math.h>
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
    int64_t line;
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

typedef enum {
    FIELD_NUMBER,       /* a finite number within float's range */
    FIELD_EMPTY,
    FIELD_TEXT,         /* not a number */
    FIELD_MIXED,        /* text in a first line that also holds numbers */
    FIELD_NOT_FINITE,   /* nan, inf, infinity in any case and sign */
    FIELD_OUT_OF_RANGE, /* past float's range (1e39); smaller than its range rounds to 0 */
} field_kind;

/* One field (NUL-terminated, spaces around it allowed). */
static field_kind parse_field(const char *field, float *out)
{
    const char *start = field + strspn(field, " \t");
    if (!*start)
        return FIELD_EMPTY;
    char *end;
    errno = 0;
    double v = strtod(start, &end);
    int overflow = errno == ERANGE && isinf(v); /* 1e309; 1e-400 underflows to 0, as a float would */
    if (end == start || end[strspn(end, " \t")] != '\0')
        return FIELD_TEXT;
    if (overflow)
        return FIELD_OUT_OF_RANGE;
    switch (nf_value_to_float(v, out)) {
    case NF_VALUE_OK: return FIELD_NUMBER;
    case NF_VALUE_NOT_FINITE: return FIELD_NOT_FINITE;
    case NF_VALUE_OUT_OF_RANGE: return FIELD_OUT_OF_RANGE;
    }
    return FIELD_TEXT;
}

static nf_status field_error(csv_reader *r, const char *line, const char *field, int64_t index, field_kind kind)
{
    static const char *const why[] = {
        [FIELD_EMPTY] = "empty, not a number", [FIELD_TEXT] = "not a number",
        [FIELD_NOT_FINITE] = "not a finite number", [FIELD_OUT_OF_RANGE] = "out of float range",
        [FIELD_MIXED] = "text in a line of numbers (a header line holds names only, a data row numbers only)",
    };
    long long column = (long long)(field - line) + 1;
    const char *text = field + strspn(field, " \t");
    size_t len = strlen(text);
    while (len && (text[len - 1] == ' ' || text[len - 1] == '\t'))
        len--;
    char shown[48];
    nf_shown(text, len, shown, sizeof shown);
    nf_status st = kind == FIELD_EMPTY
                       ? nf_fail(r->err, NF_ERR_FORMAT, "%s:%lld:%lld: field %lld is %s", r->path, (long long)r->line,
                                 column, (long long)index + 1, why[kind])
                       : nf_fail(r->err, NF_ERR_FORMAT, "%s:%lld:%lld: field %lld is '%s', %s", r->path,
                                 (long long)r->line, column, (long long)index + 1, shown, why[kind]);
    if (r->err) {
        r->err->line = r->line < INT_MAX ? (int)r->line : INT_MAX;
        r->err->column = column < INT_MAX ? (int)column : INT_MAX;
    }
    return st;
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
        field_kind kind = parse_field(field, &values[i]);
        if (kind != FIELD_NUMBER)
            return field_error(r, line, field, i, kind);
        field = comma ? comma + 1 : field + strlen(field);
    }
    return NF_OK;
}

/* What the first line is: a header (no field is a number: names, or
 * empty as pandas writes above an index column), data (no field is text),
 * or both mixed, which is refused: a data row with a typo or an NA would
 * be dropped as a header. *text_field points at the first text field. */
typedef enum { LINE_DATA, LINE_HEADER, LINE_MIXED } line_kind;

static line_kind first_line_kind(char *line, char **text_field)
{
    int numbers = 0;
    *text_field = NULL;
    for (char *field = line;;) {
        size_t n = strcspn(field, ",");
        char end = field[n];
        field[n] = '\0';
        float v;
        field_kind kind = parse_field(field, &v);
        field[n] = end;
        if (kind == FIELD_TEXT && !*text_field)
            *text_field = field;
        numbers += kind != FIELD_TEXT && kind != FIELD_EMPTY;
        if (!end)
            break;
        field += n + 1;
    }
    return !*text_field ? LINE_DATA : numbers ? LINE_MIXED : LINE_HEADER;
}

/* The label column: a whole number, or a header name. */
static nf_status label_column(const csv_reader *r, const char *label, const char *header, int64_t columns,
                              int64_t *out)
{
    char *end;
    errno = 0;
    long long index = strtoll(label, &end, 10);
    if (end != label && *end == '\0') {
        if (errno == ERANGE || index < 0 || index >= columns)
            return nf_fail(r->err, NF_ERR_INVALID_ARGUMENT, "%s: label column %.40s does not exist (columns 0..%lld)",
                           r->path, label, (long long)columns - 1);
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
    char shown[128];
    return nf_fail(r->err, NF_ERR_INVALID_ARGUMENT, "%s: no column named '%s'%s", r->path,
                   nf_shown(label, strlen(label), shown, sizeof shown), header ? "" : " (the file has no header line)");
}

/* The line each sample came from, as runs of consecutive lines. */
typedef struct line_runs {
    nf_line_run *run;
    int64_t n, cap;
} line_runs;

static int note_line(line_runs *runs, int64_t sample, int64_t line)
{
    if (runs->n > 0) {
        const nf_line_run *last = &runs->run[runs->n - 1];
        if (line - last->line == sample - last->sample)
            return 1;
    }
    if (runs->n == runs->cap) {
        int64_t cap = runs->cap ? 2 * runs->cap : 8;
        nf_line_run *grown = realloc(runs->run, (size_t)cap * sizeof *grown);
        if (!grown)
            return 0;
        runs->run = grown;
        runs->cap = cap;
    }
    runs->run[runs->n++] = (nf_line_run){sample, line};
    return 1;
}

/* Room for `cap` rows of `features` floats (and their labels), within
 * the memory limit. */
static nf_status grow_rows(csv_reader *r, nf_dataset *ds, int64_t cap, int64_t features)
{
    int64_t floats = nf_mul_checked(cap, features);
    if (floats < 0 || floats > nf_limit_floats())
        return nf_fail(r->err, NF_ERR_FORMAT, "%s:%lld: the data pass the memory limit of %zu bytes", r->path,
                       (long long)r->line, nf_memory_limit());
    float *x = realloc(ds->x, (size_t)(floats ? floats : 1) * sizeof(float));
    if (x)
        ds->x = x;
    float *y = x ? realloc(ds->y, (size_t)cap * sizeof(float)) : NULL;
    if (y)
        ds->y = y;
    if (!x || !y)
        return nf_fail(r->err, NF_ERR_NO_MEMORY, "%s: out of memory at line %lld", r->path, (long long)r->line);
    return NF_OK;
}

static nf_status read_rows(csv_reader *r, char *first, int64_t columns, int64_t label, nf_dataset *ds,
                           line_runs *lines)
{
    int64_t cap = 0, features = columns - (label >= 0);
    float *row = malloc((size_t)columns * sizeof(float));
    if (!row)
        return nf_fail(r->err, NF_ERR_NO_MEMORY, "%s: out of memory", r->path);
    nf_status st = NF_OK;
    for (char *line = first; line && st == NF_OK; line = next_line(r)) {
        int64_t n = count_fields(line);
        if (n != columns) {
            st = nf_fail(r->err, NF_ERR_FORMAT, "%s:%lld: %lld fields, but the first row has %lld", r->path,
                         (long long)r->line, (long long)n, (long long)columns);
            break;
        }
        if ((st = parse_row(r, line, columns, row)) != NF_OK)
            break;
        if (ds->count == cap) {
            cap = cap ? 2 * cap : 64;
            if ((st = grow_rows(r, ds, cap, features)) != NF_OK)
                break;
        }
        if (!note_line(lines, ds->count, r->line)) {
            st = nf_fail(r->err, NF_ERR_NO_MEMORY, "%s: out of memory at line %lld", r->path, (long long)r->line);
            break;
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

/* The header (or NULL) and the first data row. */
static nf_status find_first_row(csv_reader *r, char **header, char **first)
{
    *header = NULL;
    *first = next_line(r);
    if (!*first)
        return nf_fail(r->err, NF_ERR_FORMAT, "%s: no rows", r->path);
    char *text;
    line_kind kind = first_line_kind(*first, &text);
    if (kind == LINE_DATA)
        return NF_OK;
    int64_t index = 0;
    for (const char *c = *first; c < text; c++)
        index += *c == ',';
    if (kind == LINE_MIXED) {
        text[strcspn(text, ",")] = '\0'; /* the line is refused: it may be cut */
        return field_error(r, *first, text, index, FIELD_MIXED);
    }
    *header = *first;
    *first = next_line(r);
    if (!*first)
        return nf_fail(r->err, NF_ERR_FORMAT, "%s: a header line but no rows", r->path);
    return NF_OK;
}

static nf_status parse_csv(csv_reader *r, const char *label, nf_dataset *ds, line_runs *lines)
{
    char *header, *first;
    nf_status st = find_first_row(r, &header, &first);
    if (st != NF_OK)
        return st;
    int64_t columns = count_fields(first), label_at = -1;
    if (header && count_fields(header) != columns)
        return nf_fail(r->err, NF_ERR_FORMAT, "%s: the header has %lld fields but the first row has %lld", r->path,
                       (long long)count_fields(header), (long long)columns);
    if (columns > CSV_MAX_COLUMNS)
        return nf_fail(r->err, NF_ERR_FORMAT, "%s:%lld: %lld columns; at most %d", r->path, (long long)r->line,
                       (long long)columns, CSV_MAX_COLUMNS);
    if (label && (st = label_column(r, label, header, columns, &label_at)) != NF_OK)
        return st;
    if (label_at >= 0 && columns < 2)
        return nf_fail(r->err, NF_ERR_FORMAT, "%s: a label column needs at least one feature column beside it",
                       r->path);
    if ((st = read_rows(r, first, columns, label_at, ds, lines)) != NF_OK)
        return st;
    ds->x_shape = (nf_shape){1, {columns - (label_at >= 0)}};
    ds->y_shape = (nf_shape){0, {0}};
    if (label_at < 0) /* no labels: zeros, so that inference can bind them */
        memset(ds->y, 0, (size_t)ds->count * sizeof(float));
    else
        ds->classes = nf_class_count(ds->y, ds->count, NULL);
    return NF_OK;
}

nf_status nf_dataset_parse_csv(const char *text, size_t len, const char *name, const char *label,
                               nf_dataset **out, nf_error *err)
{
    if (!text || !out)
        return nf_fail(err, NF_ERR_INVALID_ARGUMENT, "nf_dataset_parse_csv: NULL argument");
    *out = NULL;
    csv_reader r = {.path = name ? name : "<csv>", .err = err, .len = len};
    if (memchr(text, '\0', len))
        return nf_fail(err, NF_ERR_FORMAT, "%s: a NUL byte; CSV files are text", r.path);
    if (len >= 3 && memcmp(text, "\xef\xbb\xbf", 3) == 0) /* a UTF-8 byte order mark */
        r.pos = 3;
    r.text = malloc(len + 1);
    nf_dataset *ds = r.text ? calloc(1, sizeof *ds) : NULL;
    if (!ds) {
        free(r.text);
        return nf_fail(err, NF_ERR_NO_MEMORY, "out of memory");
    }
    memcpy(r.text, text, len);
    r.text[len] = '\0';
    line_runs lines = {0};
    nf_status st = parse_csv(&r, label, ds, &lines);
    free(r.text);
    if (st == NF_OK)
        st = nf_dataset_set_origin(ds, r.path, lines.run, lines.n, err);
    else
        free(lines.run);
    if (st != NF_OK) {
        nf_dataset_free(ds);
        return st;
    }
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
