/* nodeflow — process-wide settings: one thread budget for OpenMP loops
 * and OpenBLAS, the kernel sets, and the memory limit.
 *
 * Threads: Debian's OpenMP build of OpenBLAS runs its threads in the same OpenMP
 * runtime as our loops, so one count set in both places means the two
 * never oversubscribe the cores: our parallel loops and BLAS calls never
 * nest, and each uses the same pool. */
#include <omp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <time.h>


#include "engine/plan_internal.h"
#include "kernels/kernels.h"

static int threads_in_force;

static int default_threads(void)
{
    const char *env = getenv("NODEFLOW_THREADS");
    if (env) {
        char *end;
        long n = strtol(env, &end, 10);
        if (end != env && *end == '\0' && n > 0 && n <= 1024)
            return (int)n;
    }
    return omp_get_num_procs();
}

int nf_set_threads(int n)
{
    if (n <= 0)
        n = default_threads();
    omp_set_num_threads(n);
    nf_kernels_set_threads(n);
    threads_in_force = n;
    return n;
}

int nf_threads(void)
{
    return threads_in_force ? threads_in_force : default_threads();
}

static const char *set_names[8];
static pthread_once_t set_names_once = PTHREAD_ONCE_INIT;

static void fill_set_names(void)
{
    for (int i = 0; i < 7 && nf_kernels_at(i); i++)
        set_names[i] = nf_kernels_at(i)->name;
}

const char *const *nf_kernel_sets(void)
{
    pthread_once(&set_names_once, fill_set_names); /* safe from several threads */
    return set_names;
}

const char *nf_kernel_set(void)
{
    const nf_kernels *k = nf_kernels_for_plan();
    return k ? k->name : NULL;
}

void nf_threads_ensure(void)
{
    if (!threads_in_force)
        nf_set_threads(0);
}

/* ---- the memory limit -------------------------------------------------- */

static _Atomic size_t memory_limit = (size_t)8 << 30;

void nf_set_memory_limit(size_t bytes) { memory_limit = bytes >= 64 ? bytes : 64; }
size_t nf_memory_limit(void) { return memory_limit; }
int64_t nf_limit_floats(void) { return (int64_t)(memory_limit / sizeof(float)); }

double nf_now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}
