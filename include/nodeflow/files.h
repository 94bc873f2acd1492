/* nodeflow — the files nodeflow reads and writes.
 *
 * Inputs (model files, weights, checkpoints, datasets) are read only when
 * they are regular files: a directory, a FIFO, a device or a socket is
 * refused with a message naming what it is, never waited on.
 *
 * Outputs (weights, checkpoints, exported models) are written as a careful
 * Unix tool writes them: into a temporary file beside the target
 * ("<name>.nftmp.<pid>.<n>"), flushed, synced and renamed over it, so that
 * a crash or a full disk leaves the old file whole. A new file gets the
 * mode 0666 less the umask; a replaced file keeps its permission bits
 * (not set-user-ID or set-group-ID). A target that is a symbolic link is
 * written through: the file it points to is replaced and the link stays
 * (a link that another user owns in a sticky world-writable directory
 * such as /tmp is refused, as the kernel's protected_symlinks refuses to
 * follow it). A target that is a directory, a FIFO, a device or a socket,
 * a link to a missing file, or a path in a missing or read-only directory
 * is refused. Temporary files of that pattern that a process left when it
 * died (older than this process, and their process gone) are removed at
 * the first save of the same path. */
#ifndef NODEFLOW_FILES_H
#define NODEFLOW_FILES_H

#include "export.h"
#include <stddef.h>
#include <stdio.h>

#include "status.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Whether `path` can be written as an output (the checks above), before
 * any work is done that would be lost if it could not. */
NF_API nf_status nf_output_path_check(const char *path, nf_error *err);

/* Writes `len` bytes to `path` as above (all or nothing). */
NF_API nf_status nf_file_write(const char *path, const void *data, size_t len, nf_error *err);
/* The same for content produced by write(f, ctx), which returns 0 on
 * success (a write error on f is found by the flush that follows). */
NF_API nf_status nf_file_write_stream(const char *path, int (*write)(FILE *f, void *ctx), void *ctx, nf_error *err);

/* Whether two paths name the same file: the same inode when it exists,
 * the same resolved directory and name when it does not yet. */
NF_API int nf_paths_same_file(const char *a, const char *b);

#ifdef __cplusplus
}
#endif

#endif
