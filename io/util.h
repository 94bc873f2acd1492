/* nodeflow — small helpers shared by the file formats: a growing text
 * buffer, spelling suggestions, whole-file reads and atomic writes. */
#ifndef NF_IO_UTIL_H
#define NF_IO_UTIL_H

#include <stddef.h>
#include <stdio.h>

#include "engine/internal.h"

typedef struct nf_text {
    char *data;
    size_t len, cap;
    int failed;       /* an allocation failed; data is then incomplete */
} nf_text;

/* Appends printf-style text; on allocation failure sets `failed`. */
void nf_text_printf(nf_text *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void nf_text_free(nf_text *t);

/* The shortest "%g" text that reads back as the same double. */
void nf_format_double(char *buf, size_t size, double v);
/* A shape in the model files' form, "4x7x7" ("scalar" for rank 0); 0 when
 * it did not fit in size bytes. */
int nf_format_shape(char *buf, size_t size, const nf_shape *s);

/* Attribute i of node as a model file writes it (modelwrite.c). */
void nf_format_node_attr(char *buf, size_t size, const nf_node *node, int i);
/* Little-endian integers at p (any alignment). */
uint32_t nf_read_le32(const unsigned char *p);
uint64_t nf_read_le64(const unsigned char *p);

/* Decodes 2 n hex digits (either case) into n bytes; 0 when `hex` is not
 * exactly that. */
int nf_hex_decode(const char *hex, unsigned char *out, size_t n);

/* The candidate closest to `word` by edit distance, if close enough to be
 * a likely misspelling (distance <= 2 and less than half the length);
 * NULL otherwise. `candidates` is NULL-terminated. */
const char *nf_suggest(const char *word, const char *const *candidates);

/* Opens a regular file for reading (never blocking on a FIFO); a
 * directory, FIFO, device or socket is refused naming what it is. Returns
 * the descriptor, or -1 with err set. */
int nf_open_regular(const char *path, nf_error *err);

/* Reads a whole file (at most max_bytes) into a malloc'ed buffer with a
 * NUL after the last byte. */
nf_status nf_read_file(const char *path, size_t max_bytes, char **data, size_t *len, nf_error *err);

/* Writes to `path` through a temporary file in the same directory: the
 * content produced by `write` into an open FILE, flush, fsync, rename
 * (see include/nodeflow/files.h for modes, links and what is refused;
 * nf_file_write writes bytes the same way). On any failure the temporary
 * file is removed and `path` is left as it was. */
nf_status nf_write_atomic_with(const char *path, nf_status (*write)(FILE *f, void *ctx, nf_error *err),
                               void *ctx, nf_error *err);

#endif
