/* nodeflow — the collectives the training session and the optimizer use
 * (private to the library). Every call is collective: each process of the
 * communicator makes it, in the same order, from its main thread (MPI is
 * initialised FUNNELED). With a communicator of one process, or a NULL
 * one, each is a no-op (sums of one, broadcasts from oneself). */
#ifndef NF_DIST_COMM_H
#define NF_DIST_COMM_H

#include <stdint.h>

#include "engine/internal.h"
#include "nodeflow/dist.h"

/* (the sums, the broadcast, rank and size are public: nodeflow/dist.h) */
/* *flag = whether every process's *flag is non-zero. */
nf_status nf_comm_all(const nf_comm *c, int *flag, nf_error *err);
/* The least and the greatest of every process's value. */
nf_status nf_comm_min_max(const nf_comm *c, uint64_t value, uint64_t *min, uint64_t *max, nf_error *err);

/* Overlapped sums: x summed over the processes in place, started now and
 * done by nf_comm_finish_sums (x must not be touched before it returns);
 * nf_comm_progress moves the started sums on without waiting. */
nf_status nf_comm_start_sum_floats(const nf_comm *c, float *x, int64_t n, nf_error *err);
/* Room for the sums of `buckets` pieces of `floats` in all, made before
 * backward so that starting them allocates nothing while it runs. */
nf_status nf_comm_reserve_sums(const nf_comm *c, int64_t floats, int64_t buckets, nf_error *err);
void nf_comm_progress(const nf_comm *c);
nf_status nf_comm_finish_sums(const nf_comm *c, nf_error *err);

#endif
