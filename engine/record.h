/* nodeflow — a record of named values and tensors: how each component
 * (the graph, an optimizer, a schedule, an average, a batcher, the
 * training session) hands its state to a checkpoint and takes it back,
 * without the checkpoint knowing any component's fields.
 *
 * Values are text (numbers are written with full precision); tensors are
 * float32 with a shape. A component writes its entries under its own
 * keys; reading checks a value's range or a tensor's shape and names the
 * key in the error. */
#ifndef NF_ENGINE_RECORD_H
#define NF_ENGINE_RECORD_H

#include <stdint.h>

#include "engine/internal.h"

typedef struct nf_record nf_record;

/* The largest counter (steps, epochs, positions) a record may hold: 2^53,
 * so that every count is exact in a double and sums of a few cannot wrap. */
#define NF_MAX_COUNT ((int64_t)1 << 53)

nf_record *nf_record_new(void);
void nf_record_free(nf_record *r);

/* Writing. `data` of a tensor is borrowed (it must outlive the record).
 * Each returns 0 when out of memory (the record is then marked failed:
 * nf_record_failed). */
int nf_record_put_text(nf_record *r, const char *key, const char *text);
int nf_record_put_int(nf_record *r, const char *key, int64_t value);
int nf_record_put_double(nf_record *r, const char *key, double value);
int nf_record_put_tensor(nf_record *r, const char *name, const nf_shape *shape, const float *data);
/* A tensor read on demand: read(src, out) writes its floats (a file's
 * tensor, say); `src` must outlive the record. */
int nf_record_put_source(nf_record *r, const char *name, const nf_shape *shape, const void *src,
                         void (*read)(const void *src, float *out));
/* Hands `owner` to the record, which calls release(owner) when freed
 * (the file its sources read from). */
void nf_record_keep(nf_record *r, void *owner, void (*release)(void *owner));
int nf_record_failed(const nf_record *r);

/* Reading. Errors name the key; the caller adds where the record came from. */
const char *nf_record_text(const nf_record *r, const char *key);
nf_status nf_record_int(const nf_record *r, const char *key, int64_t min, int64_t max, int64_t *out,
                        nf_error *err);
nf_status nf_record_double(const nf_record *r, const char *key, double *out, nf_error *err);
/* Numbers inside a value of several fields ("12 0 3 0.5 inf"): each
 * reads one space-separated field at *p and moves *p past it; 0 when the
 * field is missing, not a number, out of range (a count is a whole number
 * from 0 to NF_MAX_COUNT; a real is not NaN and not past double's range,
 * though "inf" may be written) or not followed by a space or the end. */
int nf_scan_count(const char **p, int64_t *out);
int nf_scan_real(const char **p, double *out);
/* A tensor of exactly `shape`; copied to `out` when `out` is not NULL. */
nf_status nf_record_tensor(const nf_record *r, const char *name, const nf_shape *shape, float *out,
                           nf_error *err);

/* Iteration, for the file formats that store a record (of values and
 * tensors put with their data, not sources). */
int nf_record_count(const nf_record *r);
/* Entry i: its key, and either its text or (text NULL) its tensor. */
const char *nf_record_key(const nf_record *r, int i, const char **text, const nf_shape **shape,
                          const float **data);

/* A graph's own part of a checkpoint: its parameters, by name, and the
 * count of training runs that keys its random masks. */
nf_status nf_graph_save_state(const nf_graph *g, nf_record *r, nf_error *err);
nf_status nf_graph_load_state(nf_graph *g, const nf_record *r, int apply, nf_error *err);

#endif
