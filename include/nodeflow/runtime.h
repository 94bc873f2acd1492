/* nodeflow — threads and version. */
#ifndef NODEFLOW_RUNTIME_H
#define NODEFLOW_RUNTIME_H

#ifdef __cplusplus
extern "C" {
#endif

#define NF_VERSION "0.1.0"

/* Sets the one thread budget shared by nodeflow's OpenMP loops and
 * OpenBLAS. n <= 0 means: the environment variable NODEFLOW_THREADS if it
 * is set to a positive number, else the number of cores. Returns the
 * count now in force. Call it from the main thread, outside a run. */
int nf_set_threads(int n);
/* The thread count in force. */
int nf_threads(void);

#ifdef __cplusplus
}
#endif
#endif
