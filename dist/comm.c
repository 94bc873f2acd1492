/* nodeflow — communicators and collectives over MPI (the only file that
 * calls MPI_). Built with the `mpi` Meson feature (NF_HAVE_MPI); without
 * it every communicator is one process. */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

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

/* A thread that ends the process when a collective has waited longer
 * than the timeout: the main thread is inside MPI then, which has no way
 * to give up a collective. */
typedef struct {
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t wake;
    double deadline;        /* when the collective under way must be over; 0: none under way */
    const char *what;       /* its name */
    int rank;
    double timeout;
    int stop;
} watchdog;

struct nf_comm {
    int rank, size;
    int finalize;      /* nf_comm_world initialised MPI: finalize it when freed */
    double timeout;    /* seconds a collective may wait for the others; 0: for ever */
    started_sums *started;
    watchdog *dog;     /* started with the first collective that has a timeout */
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

static void stop_watchdog(nf_comm *c)
{
    watchdog *d = c->dog;
    if (!d)
        return;
    pthread_mutex_lock(&d->lock);
    d->stop = 1;
    pthread_cond_signal(&d->wake);
    pthread_mutex_unlock(&d->lock);
    pthread_join(d->thread, NULL);
    pthread_cond_destroy(&d->wake);
    pthread_mutex_destroy(&d->lock);
    free(d);
    c->dog = NULL;
}

static void free_comm(nf_comm *c)
{
    stop_watchdog(c);
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
    stop_watchdog(c); /* the next collective starts one with the new timeout */
    c->timeout = seconds;
    return NF_OK;
}

double nf_comm_timeout(const nf_comm *c) { return c ? c->timeout : 0.0; }

void nf_comm_abort(const nf_comm *c, int code)
{
#ifdef NF_HAVE_MPI
    if (c && c->mpi != MPI_COMM_NULL) {
        /* Open MPI 4.1's mpirun can crash (SIGSEGV in pmix_server_log_fn)
         * when several processes abort at the same moment, as they do
         * after an error every process meets: rank 0 aborts first, the
         * others a moment later (mpirun has usually ended them by then) */
        if (c->rank > 0) {
            struct timespec pause = {0, 300000000};
            nanosleep(&pause, NULL);
        }
        MPI_Abort(MPI_COMM_WORLD, code);
    }
#endif
    (void)c;
    exit(code);
}

#ifdef NF_HAVE_MPI
/* MPI counts are int: long buffers go in pieces of at most 2^30. */
#define PIECE ((int64_t)1 << 30)

static int many(const nf_comm *c) { return c && c->size > 1 && c->mpi != MPI_COMM_NULL; }

/* The watchdog looks every quarter of the timeout (at most every 0.5 s),
 * so that a collective that waits too long ends the process within
 * 1.25 x timeout. It writes why and exits: mpirun then ends the job. */
static void *watch(void *arg)
{
    watchdog *d = arg;
    double period = d->timeout / 4 < 0.5 ? d->timeout / 4 : 0.5;
    pthread_mutex_lock(&d->lock);
    while (!d->stop) {
        double now = nf_now_seconds();
        if (d->deadline > 0 && now > d->deadline) {
            fprintf(stderr, "nodeflow: rank %d: %s: another process did not answer within %g s (stopped, hung "
                    "or on a dead node?); ending the job\n", d->rank, d->what, d->timeout);
            fflush(stderr);
            _exit(1);
        }
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts); /* the condition's clock (below) */
        ts.tv_sec += (time_t)period;
        ts.tv_nsec += (long)((period - (double)(time_t)period) * 1e9);
        if (ts.tv_nsec >= 1000000000L)
            ts.tv_sec++, ts.tv_nsec -= 1000000000L;
        pthread_cond_timedwait(&d->wake, &d->lock, &ts);
    }
    pthread_mutex_unlock(&d->lock);
    return NULL;
}

static watchdog *start_watchdog(const nf_comm *c)
{
    watchdog *d = calloc(1, sizeof *d);
    if (!d)
        return NULL;
    d->rank = c->rank;
    d->timeout = c->timeout;
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_mutex_init(&d->lock, NULL);
    pthread_cond_init(&d->wake, &attr);
    pthread_condattr_destroy(&attr);
    /* no signal for this thread: the program's own handling (a sigwait
     * thread, for one) must not find it unblocked here */
    sigset_t all, before;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &before);
    int rc = pthread_create(&d->thread, NULL, watch, d);
    pthread_sigmask(SIG_SETMASK, &before, NULL);
    if (rc != 0) {
        pthread_cond_destroy(&d->wake);
        pthread_mutex_destroy(&d->lock);
        free(d);
        return NULL;
    }
    return d;
}

/* A collective starts (what: its name) and ends: with a timeout, the
 * watchdog holds its deadline meanwhile. */
static nf_status begin_wait(const nf_comm *c, const char *what, nf_error *err)
{
    if (c->timeout <= 0)
        return NF_OK;
    nf_comm *mutable = (nf_comm *)c; /* the watchdog is the communicator's own business */
    if (!c->dog && !(mutable->dog = start_watchdog(c)))
        return nf_fail(err, NF_ERR_NO_MEMORY, "cannot start the collectives' watchdog thread");
    pthread_mutex_lock(&c->dog->lock);
    c->dog->deadline = nf_now_seconds() + c->timeout;
    c->dog->what = what;
    pthread_mutex_unlock(&c->dog->lock);
    return NF_OK;
}

static void end_wait(const nf_comm *c)
{
    if (!c->dog)
        return;
    pthread_mutex_lock(&c->dog->lock);
    c->dog->deadline = 0;
    pthread_mutex_unlock(&c->dog->lock);
}

/* After a blocking collective (rc its result) under the watchdog. */
static nf_status done(const nf_comm *c, int rc, const char *what, nf_error *err)
{
    end_wait(c);
    return rc == MPI_SUCCESS ? NF_OK : mpi_failed(rc, what, err);
}

static nf_status sum_in_place(const nf_comm *c, void *x, int64_t n, MPI_Datatype type, size_t size, nf_error *err)
{
    nf_status st = NF_OK;
    for (int64_t at = 0; many(c) && at < n && st == NF_OK; at += PIECE) {
        int count = (int)(n - at < PIECE ? n - at : PIECE);
        if ((st = begin_wait(c, "MPI_Allreduce", err)) == NF_OK)
            st = done(c, MPI_Allreduce(MPI_IN_PLACE, (char *)x + (size_t)at * size, count, type, MPI_SUM, c->mpi),
                      "MPI_Allreduce", err);
    }
    return st;
}
#endif

nf_status nf_comm_barrier(const nf_comm *c)
{
    nf_status st = NF_OK;
#ifdef NF_HAVE_MPI
    if (many(c) && (st = begin_wait(c, "MPI_Barrier", NULL)) == NF_OK)
        st = done(c, MPI_Barrier(c->mpi), "MPI_Barrier", NULL);
#else
    (void)c;
#endif
    return st;
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
        if ((st = begin_wait(c, "MPI_Bcast", err)) == NF_OK)
            st = done(c, MPI_Bcast(x + at, count, MPI_FLOAT, 0, c->mpi), "MPI_Bcast", err);
    }
#else
    (void)c, (void)x, (void)n, (void)err;
#endif
    return st;
}

#ifdef NF_HAVE_MPI
/* Room for `need` started sums (requests). */
static nf_status reserve(started_sums *s, int64_t need, nf_error *err)
{
    if (need <= s->capacity)
        return NF_OK;
    if (need > INT32_MAX / 2)
        return nf_fail(err, NF_ERR_NO_MEMORY, "too many sums at once");
    int capacity = s->capacity ? 2 * s->capacity : 16;
    while (capacity < need)
        capacity *= 2;
    MPI_Request *grown = realloc(s->requests, (size_t)capacity * sizeof *grown);
    if (!grown)
        return nf_fail(err, NF_ERR_NO_MEMORY, "out of memory");
    s->requests = grown, s->capacity = capacity;
    return NF_OK;
}
#endif

nf_status nf_comm_reserve_sums(const nf_comm *c, int64_t floats, int64_t buckets, nf_error *err)
{
#ifdef NF_HAVE_MPI
    if (many(c)) /* (each bucket one request per piece of 2^30 floats) */
        return reserve(c->started, buckets + floats / PIECE + 1, err);
#else
    (void)c, (void)floats, (void)buckets, (void)err;
#endif
    return NF_OK;
}

nf_status nf_comm_start_sum_floats(const nf_comm *c, float *x, int64_t n, nf_error *err)
{
#ifdef NF_HAVE_MPI
    started_sums *s = c ? c->started : NULL;
    for (int64_t at = 0; many(c) && at < n; at += PIECE) {
        nf_status st = reserve(s, (int64_t)s->count + 1, err);
        if (st != NF_OK)
            return st;
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
    int finished;
    if (many(c) && c->started->count > 0)
        MPI_Testall(c->started->count, c->started->requests, &finished, MPI_STATUSES_IGNORE);
#else
    (void)c;
#endif
}

nf_status nf_comm_finish_sums(const nf_comm *c, nf_error *err)
{
    nf_status st = NF_OK;
#ifdef NF_HAVE_MPI
    if (many(c) && c->started->count > 0) { /* (waited for even when the watchdog cannot start) */
        st = begin_wait(c, "MPI_Iallreduce", err);
        nf_status waited =
            done(c, MPI_Waitall(c->started->count, c->started->requests, MPI_STATUSES_IGNORE), "MPI_Iallreduce", err);
        st = st == NF_OK ? waited : st;
    }
    if (c)
        c->started->count = 0;
#else
    (void)c, (void)err;
#endif
    return st;
}

nf_status nf_comm_all(const nf_comm *c, int *flag, nf_error *err)
{
    nf_status st = NF_OK;
#ifdef NF_HAVE_MPI
    if (many(c) && (st = begin_wait(c, "MPI_Allreduce", err)) == NF_OK) {
        int mine = *flag != 0;
        st = done(c, MPI_Allreduce(&mine, flag, 1, MPI_INT, MPI_LAND, c->mpi), "MPI_Allreduce", err);
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
    if (many(c) && (st = begin_wait(c, "MPI_Allreduce", err)) == NF_OK) {
        unsigned long long mine[2] = {value, ~(unsigned long long)value}, most[2] = {0, 0};
        st = done(c, MPI_Allreduce(mine, most, 2, MPI_UNSIGNED_LONG_LONG, MPI_MAX, c->mpi), "MPI_Allreduce", err);
        *max = most[0], *min = ~most[1];
    }
#else
    (void)c, (void)err;
#endif
    return st;
}
