/* nodeflow — data-parallel training across processes, on MPI.
 *
 * Processes started together (`mpirun -np N nodeflow train ...`, or a
 * program of your own under mpirun) each hold a replica of the model and
 * train on their share of every batch; their gradients are summed after
 * backward, so that the replicas stay identical, as in PyTorch's DDP and
 * Horovod:
 *
 *     nf_comm *comm;
 *     nf_comm_world(&comm, &err);          // MPI_Init_thread (FUNNELED) when mpirun started us
 *     nf_session_set_comm(s, comm, &err);  // before nf_session_load_data
 *     nf_session_run(s, &err);
 *     if (nf_comm_rank(comm) == 0) nf_session_save_weights(s, "w.safetensors", 0, &err);
 *     nf_session_free(s);
 *     nf_comm_free(comm);                  // MPI_Finalize, if nf_comm_world initialised MPI
 *
 * docs/distributed.md says what is identical to one process and what is
 * not. A program that runs MPI itself can hand its communicator over with
 * nf_comm_from_mpi(&its_mpi_comm, ...). */
#ifndef NODEFLOW_DIST_H
#define NODEFLOW_DIST_H

#include "export.h"

#include "status.h"
#include "train.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct nf_comm nf_comm;

/* Whether this nodeflow was built with MPI (the Meson feature `mpi`). */
NF_API int nf_comm_available(void);

/* The processes of this job: with MPI, when the environment says mpirun
 * started this process (Open MPI's OMPI_COMM_WORLD_SIZE, or PMI_SIZE),
 * all of them (MPI_COMM_WORLD, MPI initialised with MPI_THREAD_FUNNELED
 * unless it already is); otherwise a communicator of this process alone.
 * Refused (NF_ERR_STATE) when mpirun started several processes but this
 * build has no MPI: each would train alone. */
NF_API nf_status nf_comm_world(nf_comm **out, nf_error *err);
/* Frees it; finalizes MPI when nf_comm_world initialised it. */
NF_API void nf_comm_free(nf_comm *comm);

/* This process's rank (0 .. size - 1) and the number of processes. Every
 * function here takes a NULL communicator as this process alone. */
NF_API int nf_comm_rank(const nf_comm *comm);
NF_API int nf_comm_size(const nf_comm *comm);

/* Collectives: every process calls them, in the same order, from its
 * main thread. x = the sum over the processes of their x, in place (a
 * float sum of two is x0 + x1 exactly; of more, in Open MPI's order); a
 * broadcast makes x rank 0's x. */
NF_API nf_status nf_comm_sum_floats(const nf_comm *comm, float *x, int64_t n, nf_error *err);
NF_API nf_status nf_comm_sum_doubles(const nf_comm *comm, double *x, int64_t n, nf_error *err);
NF_API nf_status nf_comm_broadcast_floats(const nf_comm *comm, float *x, int64_t n, nf_error *err);

/* nf_evaluate shared out: process r of N runs the samples
 * [r count / N, (r + 1) count / N) of ds, and the counts and sums are
 * summed over the processes before the figures are made, so that every
 * process gets those of the whole data (the loss to rounding). comm NULL:
 * nf_evaluate. */
NF_API nf_status nf_evaluate_shared(nf_plan *plan, const nf_dataset *ds, const nf_binding *bind, const nf_comm *comm,
                                    nf_epoch_stats *stats, nf_error *err);

/* How long a collective may wait for the other processes: a process that
 * stopped or hung must not hold the job for ever, and MPI cannot give up
 * a collective once it has started. When one has waited longer, a
 * watchdog thread of this communicator writes "nodeflow: rank R: <the
 * collective>: another process did not answer within S s ..." to
 * standard error and ends this process (exit code 1), and mpirun then
 * ends the job: the one place where the library ends the process, as
 * MPI_Abort would. 0 waits for ever (no watchdog). The default,
 * NF_COMM_DEFAULT_TIMEOUT, is far above any wait of a healthy job (the
 * longest: the others waiting while rank 0 writes a checkpoint). */
#define NF_COMM_DEFAULT_TIMEOUT 600.0
NF_API nf_status nf_comm_set_timeout(nf_comm *comm, double seconds, nf_error *err);
NF_API double nf_comm_timeout(const nf_comm *comm);

/* Waits until every process of the job has called it. */
NF_API nf_status nf_comm_barrier(const nf_comm *comm);

/* Ends every process of the job with exit code `code` (MPI_Abort), after
 * the caller has said why: a process that fails alone must not leave the
 * others waiting in a collective. Without MPI: exit(code). */
NF_API void nf_comm_abort(const nf_comm *comm, int code);

/* A communicator over the caller's MPI communicator: `mpi_comm` points to
 * an MPI_Comm (duplicated here; MPI stays the caller's to finalize).
 * NF_ERR_STATE in a build without MPI. */
NF_API nf_status nf_comm_from_mpi(const void *mpi_comm, nf_comm **out, nf_error *err);

#ifdef __cplusplus
}
#endif
#endif
