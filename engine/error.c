/* nodeflow — status names and error recording. */
#include <stdarg.h>
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

static void record(nf_error *err, nf_status code, const char *fmt, va_list ap)
{
    err->code = code;
    vsnprintf(err->message, sizeof err->message, fmt, ap);
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
