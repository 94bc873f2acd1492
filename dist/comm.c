/* nodeflow — communicators and collectives over MPI (the only file that
 * calls MPI_). Built with the `mpi` Meson feature (NF_HAVE_MPI); without
 * it every communicator is one process. */
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dist/comm.h"

#ifdef NF_HAVE_MPI
#include <mpi.h>
#endif

/* Sums started and not yet waited for (nf_comm_start_sum_floats). */
typedef struct {
#ifdef NF_HAVE_MPI
    MPI_Request *requests;
#endif
    int count, capacity;
} started_sums;

struct nf_comm {
    int rank, size;
    int finalize;      /* nf_comm_world initialised MPI: finalize it when freed */
    double timeout;    /* seconds a collective may wait for the others; 0: for ever */
    started_sums *started;
#ifdef NF_HAVE_MPI
    MPI_Comm mpi;      /* MPI_COMM_NULL: one process, no MPI */
#endif
};

int nf_comm_available(void)
{
#ifdef NF_HAVE_MPI
    return 1;
#else
    return 0;
#endif
}

/* The job's size as the launcher's environment gives it (0: none). */
static long launched_size(void)
{
    const char *names[] = {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_SIZE"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        const char *v = getenv(names[i]);
        if (v && *v)
            return strtol(v, NULL, 10);
    }
    return 0;
}

static nf_comm *new_comm(void)
{
    nf_comm *c = calloc(1, sizeof *c);
    if (c && !(c->started = calloc(1, sizeof *c->started))) {
        free(c);
        return NULL;
    }
    if (c)
        c->timeout = NF_COMM_DEFAULT_TIMEOUT;
    return c;
}

static void free_comm(nf_comm *c)
{
#ifdef NF_HAVE_MPI
    free(c->started->requests);
#endif
    free(c->started);
    free(c);
}

static nf_comm *one_process(void)
{
    nf_comm *c = new_comm();
    if (c) {
        c->size = 1;
#ifdef NF_HAVE_MPI
        c->mpi = MPI_COMM_NULL;
#endif
    }
    return c;
}

#ifdef NF_HAVE_MPI
static nf_status mpi_failed(int code, const char *what, nf_error *err)
{
    char text[MPI_MAX_ERROR_STRING];
    int len = 0;
    if (MPI_Error_string(code, text, &len) != MPI_SUCCESS)
        snprintf(text, sizeof text, "error %d", code);
    return nf_fail(err, NF_ERR_IO, "%s failed: %s", what, text);
}

/* A communicator over a duplicate of `mpi` (errors returned, not fatal). */
static nf_status wrap(MPI_Comm mpi, int finalize, nf_comm **out, nf_error *err)
{
    nf_comm *c = new_comm();
    if (!c)
        return nf_fail(err, NF_ERR_NO_MEMORY, "out of memory");
    int rc = MPI_Comm_dup(mpi, &c->mpi);
    if (rc == MPI_SUCCESS)
        rc = MPI_Comm_set_errhandler(c->mpi, MPI_ERRORS_RETURN);
    if (rc == MPI_SUCCESS)
        rc = MPI_Comm_rank(c->mpi, &c->rank);
    if (rc == MPI_SUCCESS)
        rc = MPI_Comm_size(c->mpi, &c->size);
    if (rc != MPI_SUCCESS) {
        free_comm(c);
        return mpi_failed(rc, "MPI_Comm_dup", err);
    }
    c->finalize = finalize;
    *out = c;
    return NF_OK;
}

#endif

nf_status nf_comm_from_mpi(const void *mpi_comm, nf_comm **out, nf_error *err)
{
    if (!mpi_comm || !out)
        return nf_fail(err, NF_ERR_INVALID_ARGUMENT, "nf_comm_from_mpi: NULL argument");
    *out = NULL;
#ifdef NF_HAVE_MPI
    return wrap(*(const MPI_Comm *)mpi_comm, 0, out, err);
#else
    return nf_fail(err, NF_ERR_STATE, "this nodeflow was built without MPI");
#endif
}

nf_status nf_comm_world(nf_comm **out, nf_error *err)
{
    if (!out)
        return nf_fail(err, NF_ERR_INVALID_ARGUMENT, "nf_comm_world: NULL argument");
    *out = NULL;
    long size = launched_size();
#ifdef NF_HAVE_MPI
    int started = 0;
    MPI_Initialized(&started);
    if (size > 0 || started) {
        int provided = 0;
        if (!started) {
            int rc = MPI_Init_thread(NULL, NULL, MPI_THREAD_FUNNELED, &provided);
            if (rc != MPI_SUCCESS)
                return nf_fail(err, NF_ERR_IO, "MPI_Init_thread failed (error %d)", rc);
            if (provided < MPI_THREAD_FUNNELED) {
                MPI_Finalize();
                return nf_fail(err, NF_ERR_STATE, "MPI gives thread level %d; nodeflow needs MPI_THREAD_FUNNELED",
                               provided);
            }
        }
        return wrap(MPI_COMM_WORLD, !started, out, err);
    }
#else
    if (size > 1)
        return nf_fail(err, NF_ERR_STATE,
                       "started as one of %ld processes (mpirun), but this nodeflow was built without MPI: each "
                       "would train alone; rebuild with libopenmpi-dev installed (Meson feature 'mpi')",
                       size);
#endif
    if (!(*out = one_process()))
        return nf_fail(err, NF_ERR_NO_MEMORY, "out of memory");
    return NF_OK;
}

void nf_comm_free(nf_comm *c)
{
    if (!c)
        return;
#ifdef NF_HAVE_MPI
    if (c->mpi != MPI_COMM_NULL)
        MPI_Comm_free(&c->mpi);
    if (c->finalize)
        MPI_Finalize();
#endif
    free_comm(c);
}

int nf_comm_rank(const nf_comm *c) { return c ? c->rank : 0; }
int nf_comm_size(const nf_comm *c) { return c ? c->size : 1; }

nf_status nf_comm_set_timeout(nf_comm *c, double seconds, nf_error *err)
{
    if (!c)
        return nf_fail(err, NF_ERR_INVALID_ARGUMENT, "nf_comm_set_timeout: NULL communicator");
    if (!(seconds >= 0) || seconds > 1e9)
        return nf_fail(err, NF_ERR_INVALID_ARGUMENT, "the collectives' timeout must be from 0 to 1e9 seconds (0: none)");
    c->timeout = seconds;
    return NF_OK;
}

double nf_comm_timeout(const nf_comm *c) { return c ? c->timeout : 0.0; }

void nf_comm_abort(const nf_comm *c, int code)
{
#ifdef NF_HAVE_MPI
    if (c && c->mpi != MPI_COMM_NULL)
        MPI_Abort(MPI_COMM_WORLD, code);
#endif
    (void)c;
    exit(code);
}

#ifdef NF_HAVE_MPI
/* MPI counts are int: long buffers go in pieces of at most 2^30. */
#define PIECE ((int64_t)1 << 30)

static int many(const nf_comm *c) { return c && c->size > 1 && c->mpi != MPI_COMM_NULL; }

static double now_seconds(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* Waits for the started collectives `requests`, testing them (which
 * also moves them on) until they are done or c's timeout has passed: a
 * process that stopped or hung must not hold the others for ever. After
 * the first millisecond the wait yields the core between tests. */
static nf_status wait_for(const nf_comm *c, MPI_Request *requests, int count, const char *what, nf_error *err)
{
    double start = now_seconds();
    for (long tests = 0;; tests++) {
        int done = 0;
        int rc = MPI_Testall(count, requests, &done, MPI_STATUSES_IGNORE);
        if (rc != MPI_SUCCESS)
            return mpi_failed(rc, what, err);
        if (done)
            return NF_OK;
        if (tests % 64 != 63)
            continue;
        double waited = now_seconds() - start;
        if (c->timeout > 0 && waited > c->timeout)
            return nf_fail(err, NF_ERR_IO, "%s: another process did not answer within %g s (stopped, hung or "
                           "on a dead node?)", what, c->timeout);
        if (waited > 1e-3)
            sched_yield();
    }
}

/* One collective, started and then waited for. */
static nf_status finish(const nf_comm *c, int rc, MPI_Request *request, const char *what, nf_error *err)
{
    return rc == MPI_SUCCESS ? wait_for(c, request, 1, what, err) : mpi_failed(rc, what, err);
}

static nf_status sum_in_place(const nf_comm *c, void *x, int64_t n, MPI_Datatype type, size_t size, nf_error *err)
{
    nf_status st = NF_OK;
    for (int64_t at = 0; many(c) && at < n && st == NF_OK; at += PIECE) {
        int count = (int)(n - at < PIECE ? n - at : PIECE);
        MPI_Request r;
        int rc = MPI_Iallreduce(MPI_IN_PLACE, (char *)x + (size_t)at * size, count, type, MPI_SUM, c->mpi, &r);
        st = finish(c, rc, &r, "MPI_Iallreduce", err);
    }
    return st;
}
#endif

nf_status nf_comm_barrier(const nf_comm *c)
{
#ifdef NF_HAVE_MPI
    if (many(c)) {
        MPI_Request r;
        return finish(c, MPI_Ibarrier(c->mpi, &r), &r, "MPI_Ibarrier", NULL);
    }
#else
    (void)c;
#endif
    return NF_OK;
}

nf_status nf_comm_sum_floats(const nf_comm *c, float *x, int64_t n, nf_error *err)
{
#ifdef NF_HAVE_MPI
    return sum_in_place(c, x, n, MPI_FLOAT, sizeof(float), err);
#else
    (void)c, (void)x, (void)n, (void)err;
    return NF_OK;
#endif
}

nf_status nf_comm_sum_doubles(const nf_comm *c, double *x, int64_t n, nf_error *err)
{
#ifdef NF_HAVE_MPI
    return sum_in_place(c, x, n, MPI_DOUBLE, sizeof(double), err);
#else
    (void)c, (void)x, (void)n, (void)err;
    return NF_OK;
#endif
}

nf_status nf_comm_broadcast_floats(const nf_comm *c, float *x, int64_t n, nf_error *err)
{
    nf_status st = NF_OK;
#ifdef NF_HAVE_MPI
    for (int64_t at = 0; many(c) && at < n && st == NF_OK; at += PIECE) {
        int count = (int)(n - at < PIECE ? n - at : PIECE);
        MPI_Request r;
        st = finish(c, MPI_Ibcast(x + at, count, MPI_FLOAT, 0, c->mpi, &r), &r, "MPI_Ibcast", err);
    }
#else
    (void)c, (void)x, (void)n, (void)err;
#endif
    return st;
}

nf_status nf_comm_start_sum_floats(const nf_comm *c, float *x, int64_t n, nf_error *err)
{
#ifdef NF_HAVE_MPI
    started_sums *s = c ? c->started : NULL;
    for (int64_t at = 0; many(c) && at < n; at += PIECE) {
        if (s->count == s->capacity) {
            int capacity = s->capacity ? 2 * s->capacity : 16;
            MPI_Request *grown = realloc(s->requests, (size_t)capacity * sizeof *grown);
            if (!grown)
                return nf_fail(err, NF_ERR_NO_MEMORY, "out of memory");
            s->requests = grown, s->capacity = capacity;
        }
        int count = (int)(n - at < PIECE ? n - at : PIECE);
        int rc = MPI_Iallreduce(MPI_IN_PLACE, x + at, count, MPI_FLOAT, MPI_SUM, c->mpi, &s->requests[s->count]);
        if (rc != MPI_SUCCESS)
            return mpi_failed(rc, "MPI_Iallreduce", err);
        s->count++;
    }
#else
    (void)c, (void)x, (void)n, (void)err;
#endif
    return NF_OK;
}

void nf_comm_progress(const nf_comm *c)
{
#ifdef NF_HAVE_MPI
    int done;
    if (many(c) && c->started->count > 0)
        MPI_Testall(c->started->count, c->started->requests, &done, MPI_STATUSES_IGNORE);
#else
    (void)c;
#endif
}

nf_status nf_comm_finish_sums(const nf_comm *c, nf_error *err)
{
    nf_status st = NF_OK;
#ifdef NF_HAVE_MPI
    if (many(c) && c->started->count > 0) {
        st = wait_for(c, c->started->requests, c->started->count, "MPI_Iallreduce", err);
        c->started->count = 0;
    }
#else
    (void)c, (void)err;
#endif
    return st;
}

nf_status nf_comm_all(const nf_comm *c, int *flag, nf_error *err)
{
    nf_status st = NF_OK;
#ifdef NF_HAVE_MPI
    if (many(c)) {
        int mine = *flag != 0;
        MPI_Request r;
        st = finish(c, MPI_Iallreduce(&mine, flag, 1, MPI_INT, MPI_LAND, c->mpi, &r), &r, "MPI_Iallreduce", err);
    }
#else
    (void)c, (void)flag, (void)err;
#endif
    return st;
}

/* One reduction with MAX gives both: min(v) = ~max(~v). */
nf_status nf_comm_min_max(const nf_comm *c, uint64_t value, uint64_t *min, uint64_t *max, nf_error *err)
{
    *min = *max = value;
    nf_status st = NF_OK;
#ifdef NF_HAVE_MPI
    if (many(c)) {
        unsigned long long mine[2] = {value, ~(unsigned long long)value}, most[2] = {0, 0};
        MPI_Request r;
        st = finish(c, MPI_Iallreduce(mine, most, 2, MPI_UNSIGNED_LONG_LONG, MPI_MAX, c->mpi, &r), &r,
                    "MPI_Iallreduce", err);
        *max = most[0], *min = ~most[1];
    }
#else
    (void)c, (void)err;
#endif
    return st;
}
