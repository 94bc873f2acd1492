/* nodeflow — threads, memory limit and version. */
#ifndef NODEFLOW_RUNTIME_H
#define NODEFLOW_RUNTIME_H

#include "export.h"

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* NF_VERSION, the version as text ("0.1.0") */
#include "nodeflow_version.h"

/* Sets the one thread budget shared by nodeflow's OpenMP loops and
 * OpenBLAS. n <= 0 means: the environment variable NODEFLOW_THREADS if it
 * is set to a positive number, else the number of cores. Returns the
 * count now in force. Call it from the main thread, outside a run. */
NF_API int nf_set_threads(int n);
/* The thread count in force. */
NF_API int nf_threads(void);

/* The kernel sets built in, NULL-terminated, the default first:
 * "onednn" (with oneDNN), "openblas", "reference" (plain loops, the
 * yardstick). Plans compile with the one the environment variable
 * NODEFLOW_KERNELS names, else the default; nf_kernel_set says which
 * (NULL: NODEFLOW_KERNELS names none, and compiling a plan fails). */
NF_API const char *const *nf_kernel_sets(void);
NF_API const char *nf_kernel_set(void);

/* The largest block nodeflow allocates for a graph's parameters or for
 * one plan's activations (default 8 GiB). A model or batch size that asks
 * for more is refused with NF_ERR_SHAPE or NF_ERR_NO_MEMORY before
 * anything is allocated. Process-wide; set it before building graphs. */
NF_API void nf_set_memory_limit(size_t bytes);
NF_API size_t nf_memory_limit(void);

#ifdef __cplusplus
}
#endif
#endif
