/* nodeflow — status names and error recording. */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <stdio.h>

#include "engine/internal.h"

const char *nf_status_name(nf_status status)
{
    switch (status) {
    case NF_OK: return "ok";
    case NF_ERR_INVALID_ARGUMENT: return "invalid argument";
    case NF_ERR_SHAPE: return "shape error";
    case NF_ERR_GRAPH: return "graph error";
    case NF_ERR_NO_MEMORY: return "out of memory";
    case NF_ERR_IO: return "i/o error";
    case NF_ERR_FORMAT: return "format error";
    case NF_ERR_STATE: return "state error";
    case NF_ERR_NUMERIC: return "numeric error";
    case NF_ERR_INTERRUPTED: return "interrupted";
    }
    return "unknown status";
}

/* ---- text safe to print ------------------------------------------------ */

/* The length of the UTF-8 character at p (n bytes left) and its code
 * point, or 0 when the bytes are not UTF-8 (overlong forms, surrogates and
 * code points past U+10FFFF included). */
int nf_utf8_char(const unsigned char *p, size_t n, uint32_t *code)
{
    static const uint32_t smallest[] = {0, 0, 0x80, 0x800, 0x10000};
    int len = p[0] < 0x80 ? 1 : p[0] >= 0xc2 && p[0] <= 0xdf ? 2 : p[0] >= 0xe0 && p[0] <= 0xef ? 3
            : p[0] >= 0xf0 && p[0] <= 0xf4 ? 4 : 0;
    if (len == 0 || (size_t)len > n)
        return 0;
    uint32_t c = len == 1 ? p[0] : p[0] & (0x7fu >> len);
    for (int i = 1; i < len; i++) {
        if ((p[i] & 0xc0) != 0x80)
            return 0;
        c = c << 6 | (p[i] & 0x3fu);
    }
    if (c < smallest[len] || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff))
        return 0;
    *code = c;
    return len;
}

/* Control characters, and format characters that print nothing or reorder
 * what follows them on a terminal. */
static int unprintable(uint32_t c)
{
    return c < 0x20 || (c >= 0x7f && c <= 0x9f) || c == 0x061c || (c >= 0x200b && c <= 0x200f) ||
           (c >= 0x2028 && c <= 0x202e) || (c >= 0x2060 && c <= 0x2069) || c == 0xfeff;
}

/* The printable form of the character at p (n bytes left) into piece;
 * returns its length and sets *used to the bytes it stands for. */
static size_t escape_char(const unsigned char *p, size_t n, int backslash, char piece[20], int *used)
{
    uint32_t code = 0;
    int len = nf_utf8_char(p, n, &code);
    int layout = !backslash && (code == '\n' || code == '\t'); /* a whole message keeps its lines */
    if (len == 0 || (unprintable(code) && !layout)) {
        *used = len ? len : 1;
        for (int k = 0; k < *used; k++)
            snprintf(piece + 4 * k, 5, "\\x%02x", p[k]);
        return 4 * (size_t)*used;
    }
    *used = len;
    if (backslash && p[0] == '\\') {
        memcpy(piece, "\\\\", 2);
        return 2;
    }
    memcpy(piece, p, (size_t)len);
    return (size_t)len;
}

static const char *escape(const char *text, size_t len, int backslash, char *out, size_t size)
{
    const unsigned char *p = (const unsigned char *)text;
    char piece[20];
    int used;
    size_t whole = 0; /* the length of the whole escaped text */
    for (size_t i = 0; i < len; i += (size_t)used)
        whole += escape_char(p + i, len - i, backslash, piece, &used);
    size_t at = 0;
    for (size_t i = 0; i < len && size > 0; i += (size_t)used) {
        size_t n = escape_char(p + i, len - i, backslash, piece, &used);
        if (whole >= size && at + n + 3 >= size) { /* cut here, room kept for "..." */
            if (at + 3 < size)
                memcpy(out + at, "...", 3), at += 3;
            break;
        }
        memcpy(out + at, piece, n);
        at += n;
    }
    if (size > 0)
        out[at] = '\0';
    return out;
}

const char *nf_shown(const char *text, size_t len, char *out, size_t size)
{
    return escape(text, len, 1, out, size);
}

static void record(nf_error *err, nf_status code, const char *fmt, va_list ap)
{
    err->code = code;
    char raw[sizeof err->message];
    vsnprintf(raw, sizeof raw, fmt, ap);
    /* names and text from files end up in messages: no escape sequence
     * may reach a terminal (backslashes kept: escaping twice is harmless) */
    escape(raw, strlen(raw), 0, err->message, sizeof err->message);
}

nf_status nf_fail(nf_error *err, nf_status code, const char *fmt, ...)
{
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        record(err, code, fmt, ap);
        va_end(ap);
    }
    return code;
}

void nf_graph_fail(nf_graph *g, nf_status code, const char *fmt, ...)
{
    if (!g || g->error.code != NF_OK)
        return;
    va_list ap;
    va_start(ap, fmt);
    record(&g->error, code, fmt, ap);
    va_end(ap);
}

int64_t nf_mul_checked(int64_t a, int64_t b)
{
    const int64_t limit = (int64_t)1 << 62;
    if (a < 0 || b < 0)
        return -1;
    if (a != 0 && b > limit / a)
        return -1;
    return a * b;
}

int64_t nf_add_checked(int64_t a, int64_t b)
{
    const int64_t limit = (int64_t)1 << 62;
    if (a < 0 || b < 0 || a > limit - b)
        return -1;
    return a + b;
}

int64_t nf_mul3_checked(int64_t a, int64_t b, int64_t c)
{
    return nf_mul_checked(nf_mul_checked(a, b), c);
}

const char *nf_parse_number(const char *text, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(text, &end);
    if (end == text || *end || isnan(v) || (isinf(v) && errno != ERANGE))
        return "must be a finite number";
    if (errno == ERANGE && (isinf(v) || fabs(v) > 1))
        return "is out of range (past 1.8e308, the largest double)";
    if (errno == ERANGE)
        return "is too small: it would read as 0 (below 2.2e-308, the smallest normal double)";
    *out = v;
    return NULL;
}
