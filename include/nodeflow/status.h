/* nodeflow — status codes and error reports.
 *
 * Every fallible call returns an nf_status and, when given a non-NULL
 * nf_error, fills it with a message meant for a person. The library never
 * prints, exits or aborts: the caller decides what to do with an error. */
#ifndef NODEFLOW_STATUS_H
#define NODEFLOW_STATUS_H

#include "export.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum nf_status {
    NF_OK = 0,
    NF_ERR_INVALID_ARGUMENT, /* a NULL handle, a bad size, an unknown name */
    NF_ERR_SHAPE,            /* shapes that do not fit together */
    NF_ERR_GRAPH,            /* wiring: cycles, undefined or duplicate names */
    NF_ERR_NO_MEMORY,        /* an allocation failed */
    NF_ERR_IO,               /* a file could not be opened, read or written */
    NF_ERR_FORMAT,           /* a file's content is malformed */
    NF_ERR_STATE,            /* a call made at the wrong time (e.g. a stale plan) */
    NF_ERR_NUMERIC,          /* NaN or Inf where a number was expected */
    NF_ERR_INTERRUPTED       /* stopped on request (nf_session_stop) */
} nf_status;

#define NF_ERROR_MESSAGE_MAX 512

/* A filled-in error report. `message` is a complete sentence such as
 * "linear 'fc2': input 'h1' has 128 features, weight expects 256". */
typedef struct nf_error {
    nf_status code;
    char message[NF_ERROR_MESSAGE_MAX];
    int line, column;   /* where in a text file, 1-based; 0 when not a file error */
} nf_error;

/* A short, constant name for a status code ("shape error", ...). */
NF_API const char *nf_status_name(nf_status status);

#ifdef __cplusplus
}
#endif
#endif
