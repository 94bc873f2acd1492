/* nodeflow — NumPy .npy files (format versions 1.0, 2.0 and 3.0).
 *
 * Layout: "\x93NUMPY", major and minor version bytes, the header length
 * (2 bytes little-endian in version 1, 4 bytes in 2 and 3), a Python dict
 * literal {'descr': '<f4', 'fortran_order': False, 'shape': (N, ...), }
 * padded with spaces and ending in a newline, then the raw data in C order.
 *
 * The header is read as numpy reads it (ast.literal_eval, then exactly the
 * keys 'descr', 'fortran_order' and 'shape'), by a small tokenizer and
 * parser of the literal: strings in single or double quotes (without
 * escapes), True and False, tuples of whole numbers >= 0 with an optional
 * trailing comma ("()" for a scalar, "(3,)" for one dimension; "(3)" is a
 * number, not a tuple). Stricter than Python: a key given twice is refused
 * (Python would keep the last), and only spaces and the final newline may
 * follow the closing brace. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data/data_internal.h"
#include "io/util.h"

#define NPY_MAX_BYTES ((size_t)8 << 30)
#define NPY_MAX_DIM ((int64_t)1 << 40)
#define NPY_MAX_ELEMENTS ((int64_t)1 << 34)

typedef enum { NPY_F4, NPY_F8, NPY_U1, NPY_I8, NPY_I4 } npy_type;

static const struct {
    const char *descr;
    npy_type type;
    int size;
} npy_types[] = {
    {"<f4", NPY_F4, 4}, {"<f8", NPY_F8, 8}, {"|u1", NPY_U1, 1}, {"<u1", NPY_U1, 1},
    {"<i8", NPY_I8, 8}, {"<i4", NPY_I4, 4},
};

/* ---- the header's tokens ------------------------------------------------- */

typedef enum { TOK_END, TOK_PUNCT, TOK_STRING, TOK_NAME, TOK_INT, TOK_OTHER } token_kind;

typedef struct token {
    token_kind kind;
    const char *at; /* its text in the header, quotes included */
    size_t len;
    int64_t value;  /* TOK_INT: the number, -1 past 2^62 */
} token;

typedef struct lexer {
    const char *path;
    const char *text; /* the header, not NUL-terminated */
    size_t len, pos;
    nf_error *err;
} lexer;

/* ASCII only, whatever the locale. */
static int is_digit(char c) { return c >= '0' && c <= '9'; }
static int is_letter(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'; }
static int is_name_char(char c) { return is_letter(c) || is_digit(c); }

/* Python's spaces between the tokens of a bracketed literal. */
static int is_space(char c) { return c == ' ' || c == '\t' || c == '\n'; }

static int is_punct_char(char c) { return c && strchr("{}():,", c) != NULL; }

/* A run of digits, letters, '_' and '.' from a digit: a whole number when
 * it is only digits without a leading zero (Python refuses "01"). */
static void lex_number(token *t)
{
    int digits_only = 1;
    int64_t value = 0;
    for (size_t i = 0; i < t->len; i++) {
        digits_only &= is_digit(t->at[i]);
        value = nf_add_checked(nf_mul_checked(value, 10), t->at[i] - '0');
    }
    t->kind = digits_only && (t->len == 1 || t->at[0] != '0') ? TOK_INT : TOK_OTHER;
    t->value = value;
}

static void next_token(lexer *lx, token *t)
{
    while (lx->pos < lx->len && is_space(lx->text[lx->pos]))
        lx->pos++;
    const char *at = lx->text + lx->pos, *end = lx->text + lx->len;
    *t = (token){.kind = TOK_END, .at = at, .len = 0};
    if (at == end)
        return;
    char c = *at;
    size_t n = 1;
    if (is_punct_char(c)) {
        t->kind = TOK_PUNCT;
    } else if (c == '\'' || c == '"') { /* up to the same quote, on one line, no escapes */
        while (at + n < end && at[n] != c && at[n] != '\n' && at[n] != '\\')
            n++;
        t->kind = at + n < end && at[n] == c ? TOK_STRING : TOK_OTHER;
        n += t->kind == TOK_STRING;
    } else if (is_digit(c)) {
        while (at + n < end && (is_name_char(at[n]) || at[n] == '.'))
            n++;
    } else if (is_letter(c)) {
        while (at + n < end && is_name_char(at[n]))
            n++;
        t->kind = TOK_NAME;
    } else {
        t->kind = TOK_OTHER;
    }
    t->len = n;
    if (is_digit(c))
        lex_number(t);
    lx->pos += n;
}

static int is_punct(const token *t, char c) { return t->kind == TOK_PUNCT && t->at[0] == c; }

static int is_string(const token *t, const char *text)
{
    return t->kind == TOK_STRING && t->len == strlen(text) + 2 && memcmp(t->at + 1, text, t->len - 2) == 0;
}

static int is_name(const token *t, const char *text)
{
    return t->kind == TOK_NAME && t->len == strlen(text) && memcmp(t->at, text, t->len) == 0;
}

/* "malformed .npy header: expected ':', found 'x'" (`part` is header or shape) */
static nf_status syntax_error(const lexer *lx, const token *found, const char *part, const char *expected)
{
    char shown[48];
    if (found->kind == TOK_END)
        snprintf(shown, sizeof shown, "the end of the header");
    else {
        char text[40];
        snprintf(shown, sizeof shown, "'%s'", nf_shown(found->at, found->len, text, sizeof text));
    }
    return nf_fail(lx->err, NF_ERR_FORMAT, "%s: malformed .npy %s: expected %s, found %s", lx->path, part, expected,
                   shown);
}

/* ---- the header's dict ------------------------------------------------------ */

enum { KEY_DESCR, KEY_FORTRAN_ORDER, KEY_SHAPE, KEY_COUNT };
static const char *const key_names[KEY_COUNT] = {"descr", "fortran_order", "shape"};

typedef struct npy_header {
    int seen[KEY_COUNT];
    token descr;   /* a TOK_STRING */
    int fortran_order;
    int rank;
    token dim[NF_MAX_RANK];
} npy_header;

/* (), (3,), (3, 2) or (3, 2,): whole numbers >= 0, at most NF_MAX_RANK. */
static nf_status parse_shape(lexer *lx, npy_header *h)
{
    token t;
    next_token(lx, &t);
    if (!is_punct(&t, '('))
        return syntax_error(lx, &t, "shape", "a tuple such as (3, 2)");
    h->rank = 0;
    for (;;) { /* after '(' or ',' */
        next_token(lx, &t);
        if (is_punct(&t, ')'))
            return NF_OK;
        if (t.kind != TOK_INT)
            return syntax_error(lx, &t, "shape", "a dimension (a whole number >= 0) or ')'");
        if (h->rank == NF_MAX_RANK)
            return nf_fail(lx->err, NF_ERR_FORMAT, "%s: the .npy shape has more than %d dimensions", lx->path,
                           NF_MAX_RANK);
        h->dim[h->rank++] = t;
        next_token(lx, &t);
        if (is_punct(&t, ')') && h->rank == 1)
            return syntax_error(lx, &t, "shape", "',' after the one dimension ((3,) is a tuple, (3) is not)");
        if (is_punct(&t, ')'))
            return NF_OK;
        if (!is_punct(&t, ','))
            return syntax_error(lx, &t, "shape", h->rank == 1 ? "','" : "',' or ')'");
    }
}

static nf_status parse_value(lexer *lx, int key, npy_header *h)
{
    token t;
    if (key == KEY_SHAPE)
        return parse_shape(lx, h);
    next_token(lx, &t);
    if (key == KEY_DESCR) {
        if (t.kind != TOK_STRING)
            return syntax_error(lx, &t, "header", "a quoted dtype such as '<f4' for 'descr'");
        h->descr = t;
        return NF_OK;
    }
    if (!is_name(&t, "True") && !is_name(&t, "False"))
        return syntax_error(lx, &t, "header", "True or False for 'fortran_order'");
    h->fortran_order = is_name(&t, "True");
    return NF_OK;
}

/* One "'key': value" pair; the key token is read. */
static nf_status parse_entry(lexer *lx, const token *key_token, npy_header *h)
{
    int key = 0;
    while (key < KEY_COUNT && !is_string(key_token, key_names[key]))
        key++;
    char shown[64];
    if (key == KEY_COUNT)
        return nf_fail(lx->err, NF_ERR_FORMAT,
                       "%s: unknown key %s in the .npy header; expected exactly 'descr', 'fortran_order' and 'shape'",
                       lx->path, nf_shown(key_token->at, key_token->len, shown, sizeof shown));
    if (h->seen[key]++)
        return nf_fail(lx->err, NF_ERR_FORMAT, "%s: the .npy header has the key '%s' twice", lx->path, key_names[key]);
    token t;
    next_token(lx, &t);
    if (!is_punct(&t, ':'))
        return syntax_error(lx, &t, "header", "':' after the key");
    return parse_value(lx, key, h);
}

/* Only spaces may follow the closing brace, then the newline that ends
 * the header. */
static nf_status check_trailer(const lexer *lx)
{
    size_t at = lx->pos;
    while (at < lx->len && lx->text[at] == ' ')
        at++;
    if (at + 1 == lx->len && lx->text[at] == '\n')
        return NF_OK;
    if (at == lx->len)
        return nf_fail(lx->err, NF_ERR_FORMAT, "%s: the .npy header does not end with a newline", lx->path);
    char shown[48];
    return nf_fail(lx->err, NF_ERR_FORMAT,
                   "%s: '%s' after the .npy header's closing brace; only spaces and the final newline may follow",
                   lx->path, nf_shown(lx->text + at, lx->len - at, shown, sizeof shown));
}

/* {'key': value, ...} with each of the three keys once, then the trailer. */
static nf_status parse_dict(lexer *lx, npy_header *h)
{
    token t = {.kind = lx->len ? TOK_OTHER : TOK_END, .at = lx->text, .len = lx->len ? 1 : 0};
    if (!lx->len || lx->text[0] != '{')
        return syntax_error(lx, &t, "header", "'{' at its start");
    next_token(lx, &t);
    for (;;) {
        next_token(lx, &t);
        if (is_punct(&t, '}'))
            break;
        if (t.kind != TOK_STRING)
            return syntax_error(lx, &t, "header", "a quoted key or '}'");
        nf_status st = parse_entry(lx, &t, h);
        if (st != NF_OK)
            return st;
        next_token(lx, &t);
        if (is_punct(&t, '}'))
            break;
        if (!is_punct(&t, ','))
            return syntax_error(lx, &t, "header", "',' or '}'");
    }
    for (int key = 0; key < KEY_COUNT; key++)
        if (!h->seen[key])
            return nf_fail(lx->err, NF_ERR_FORMAT,
                           "%s: the .npy header lacks the key '%s' (it needs 'descr', 'fortran_order' and 'shape')",
                           lx->path, key_names[key]);
    return check_trailer(lx);
}

/* ---- what the header says ---------------------------------------------- */

static nf_status check_descr(const char *path, const token *descr, npy_type *type, int *size, nf_error *err)
{
    for (size_t i = 0; i < sizeof npy_types / sizeof npy_types[0]; i++)
        if (is_string(descr, npy_types[i].descr)) {
            *type = npy_types[i].type;
            *size = npy_types[i].size;
            return NF_OK;
        }
    char shown[40];
    return nf_fail(err, NF_ERR_FORMAT,
                   "%s: unsupported .npy dtype '%s' (float32, float64, uint8, int32, int64 are read)", path,
                   nf_shown(descr->at + 1, descr->len - 2, shown, sizeof shown));
}

/* Each dimension 1 .. 2^40, and at most 2^34 elements in all. */
static nf_status check_shape(const char *path, const npy_header *h, nf_shape *shape, nf_error *err)
{
    memset(shape, 0, sizeof *shape);
    int64_t total = 1;
    for (int i = 0; i < h->rank; i++) {
        int64_t d = h->dim[i].value;
        total = nf_mul_checked(total, d);
        if (d <= 0 || d > NPY_MAX_DIM || total < 0 || total > NPY_MAX_ELEMENTS)
            return nf_fail(err, NF_ERR_FORMAT, "%s: .npy dimension %d is %.*s%s; too large or not positive", path,
                           i + 1, (int)(h->dim[i].len < 24 ? h->dim[i].len : 24), h->dim[i].at,
                           h->dim[i].len < 24 ? "" : "...");
        shape->dim[i] = d;
    }
    shape->rank = h->rank;
    return NF_OK;
}

static nf_status parse_header(const char *path, const char *text, size_t len, npy_type *type, int *size,
                              nf_shape *shape, nf_error *err)
{
    lexer lx = {.path = path, .text = text, .len = len, .err = err};
    npy_header h;
    memset(&h, 0, sizeof h);
    nf_status st = parse_dict(&lx, &h);
    if (st == NF_OK)
        st = check_descr(path, &h.descr, type, size, err);
    if (st == NF_OK && h.fortran_order)
        st = nf_fail(err, NF_ERR_FORMAT, "%s: Fortran-order arrays are not supported; save in C order", path);
    if (st == NF_OK)
        st = check_shape(path, &h, shape, err);
    return st;
}

/* ---- the file ------------------------------------------------------------------ */

/* The magic, a version numpy writes (1.0, 2.0 or 3.0) and the header
 * length (2 bytes in version 1, 4 in 2 and 3), within the file. */
static nf_status read_preamble(const char *path, const unsigned char *u, size_t len, size_t *start,
                               size_t *header_len, nf_error *err)
{
    if (len < 6 || memcmp(u, "\x93NUMPY", 6) != 0)
        return nf_fail(err, NF_ERR_FORMAT, "%s: not a .npy file (no \\x93NUMPY magic)", path);
    if (len < 8)
        return nf_fail(err, NF_ERR_FORMAT, "%s: the .npy file ends inside its preamble", path);
    int major = u[6], minor = u[7];
    if (major < 1 || major > 3 || minor != 0)
        return nf_fail(err, NF_ERR_FORMAT, "%s: unknown .npy version %d.%d (1.0, 2.0 and 3.0 are read)", path, major,
                       minor);
    size_t width = major == 1 ? 2 : 4;
    if (len < 8 + width)
        return nf_fail(err, NF_ERR_FORMAT, "%s: the .npy file ends inside its preamble", path);
    *header_len = 0;
    for (size_t i = width; i-- > 0;)
        *header_len = *header_len << 8 | u[8 + i];
    *start = 8 + width;
    if (*header_len > len - *start)
        return nf_fail(err, NF_ERR_FORMAT, "%s: the .npy header runs past the end of the file", path);
    return NF_OK;
}

/* Element p as a float; *raw is its value as stored. Float32 is taken as
 * it is; float64 must not pass float's range (nf_value_to_float). */
static nf_value_kind decode(const unsigned char *p, npy_type type, double *raw, float *out)
{
    float f4;
    double f8;
    int64_t i8;
    int32_t i4;
    switch (type) {
    case NPY_F4:
        memcpy(&f4, p, 4);
        *raw = *out = f4;
        return isfinite(f4) ? NF_VALUE_OK : NF_VALUE_NOT_FINITE;
    case NPY_F8:
        memcpy(&f8, p, 8);
        *raw = f8;
        return nf_value_to_float(f8, out);
    case NPY_U1:
        *raw = *out = (float)*p;
        return NF_VALUE_OK;
    case NPY_I8:
        memcpy(&i8, p, 8);
        *raw = (double)i8;
        *out = (float)i8;
        return NF_VALUE_OK;
    case NPY_I4:
        memcpy(&i4, p, 4);
        *raw = i4;
        *out = (float)i4;
        return NF_VALUE_OK;
    }
    return NF_VALUE_OK;
}

static nf_status decode_all(const char *path, const unsigned char *data, npy_type type, int esize, nf_npy *out,
                            nf_error *err)
{
    int64_t count = nf_shape_size(&out->shape);
    for (int64_t i = 0; i < count; i++) {
        double raw = 0;
        nf_value_kind kind = decode(data + (size_t)i * (size_t)esize, type, &raw, &out->data[i]);
        if (kind != NF_VALUE_OK)
            return nf_value_fail(err, path, &out->shape, i, raw, kind);
    }
    return NF_OK;
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
    memset(out, 0, sizeof *out);
    const unsigned char *u = (const unsigned char *)raw;
    size_t start = 0, header_len = 0;
    npy_type type = NPY_F4;
    int esize = 4;
    nf_status st = read_preamble(path, u, len, &start, &header_len, err);
    if (st == NF_OK)
        st = parse_header(path, raw + start, header_len, &type, &esize, &out->shape, err);
    size_t data_at = start + header_len;
    int64_t count = nf_shape_size(&out->shape), bytes = nf_mul_checked(count, esize);
    if (st == NF_OK && (bytes < 0 || (uint64_t)bytes != len - data_at))
        st = nf_fail(err, NF_ERR_FORMAT, "%s: the shape needs %lld bytes of data but the file has %zu", path,
                     (long long)bytes, len - data_at);
    if (st == NF_OK && count > nf_limit_floats())
        st = nf_fail(err, NF_ERR_FORMAT, "%s: %lld elements pass the memory limit of %zu bytes", path,
                     (long long)count, nf_memory_limit());
    if (st == NF_OK && !(out->data = malloc((size_t)(count ? count : 1) * sizeof(float))))
        st = nf_fail(err, NF_ERR_NO_MEMORY, "%s: out of memory", path);
    if (st == NF_OK)
        st = decode_all(path, u + data_at, type, esize, out, err);
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
