/* nodeflow — status names and error recording. */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
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

/* Control characters other than newline and tab in a message (names and
 * text from files end up there) become \xNN, so that no escape sequence
 * reaches a terminal. The message is cut, not overrun, when the escapes
 * make it longer. */
static void escape_controls(char *message, size_t size)
{
    char copy[NF_ERROR_MESSAGE_MAX];
    snprintf(copy, sizeof copy, "%s", message);
    size_t at = 0;
    for (const unsigned char *c = (const unsigned char *)copy; *c && at + 1 < size; c++) {
        if ((*c >= 0x20 && *c != 0x7f) || *c == '\n' || *c == '\t') {
            message[at++] = (char)*c;
        } else if (at + 4 < size) {
            snprintf(message + at, size - at, "\\x%02x", *c);
            at += 4;
        } else {
            break;
        }
    }
    message[at] = '\0';
}

static void record(nf_error *err, nf_status code, const char *fmt, va_list ap)
{
    err->code = code;
    vsnprintf(err->message, sizeof err->message, fmt, ap);
    escape_controls(err->message, sizeof err->message);
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
