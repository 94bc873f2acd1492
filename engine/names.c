/* nodeflow — name index (see names.h). */
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "engine/internal.h"
#include "engine/names.h"

static uint64_t process_basis;

static void draw_basis(void)
{
    uint64_t seed = 0;
    if (getrandom(&seed, sizeof seed, GRND_NONBLOCK) != (ssize_t)sizeof seed) {
        struct timespec t;
        clock_gettime(CLOCK_REALTIME, &t);
        seed = (uint64_t)t.tv_nsec ^ ((uint64_t)t.tv_sec << 20) ^ ((uint64_t)getpid() << 40);
    }
    process_basis = 1469598103934665603ull ^ seed;
}

void nf_name_index_init(nf_name_index *ix, nf_name_of name_of, const void *items)
{
    memset(ix, 0, sizeof *ix);
    ix->name_of = name_of;
    ix->items = items;
}

/* FNV-1a from a basis drawn once per process, so that nobody can write
 * a file of names that all land in one slot; the slot takes the top bits
 * of a multiplicative mix (Knuth's), which depend on every bit of the
 * hash. Parameter seeds use nf_name_hash, which must not vary. */
static uint64_t hash_basis(void)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, draw_basis);
    return process_basis;
}

static size_t first_slot(const nf_name_index *ix, const char *name)
{
    uint64_t h = hash_basis();
    for (const unsigned char *c = (const unsigned char *)name; *c; c++)
        h = (h ^ *c) * 1099511628211ull;
    h *= 0x9e3779b97f4a7c15ull;
    return (size_t)(h >> (64 - ix->bits));
}

int nf_name_index_find(const nf_name_index *ix, const char *name)
{
    if (!ix->n_slots || !name)
        return -1;
    for (size_t s = first_slot(ix, name);; s = (s + 1) & (ix->n_slots - 1)) {
        int at = ix->slots[s];
        if (at < 0 || strcmp(ix->name_of(ix->items, at), name) == 0)
            return at;
    }
}

static void place(nf_name_index *ix, int i)
{
    size_t s = first_slot(ix, ix->name_of(ix->items, i));
    while (ix->slots[s] >= 0)
        s = (s + 1) & (ix->n_slots - 1);
    ix->slots[s] = i;
}

/* Doubles the table (load at most 1/2) and places every item again. */
static int grow(nf_name_index *ix)
{
    size_t n = ix->n_slots ? 2 * ix->n_slots : 64;
    if (n > SIZE_MAX / sizeof(int))
        return 0;
    int *slots = malloc(n * sizeof *slots);
    if (!slots)
        return 0;
    int *old = ix->slots;
    size_t old_n = ix->n_slots;
    ix->slots = slots;
    ix->n_slots = n;
    for (ix->bits = 0; ((size_t)1 << ix->bits) < n; ix->bits++)
        ;
    for (size_t s = 0; s < n; s++)
        slots[s] = -1;
    for (size_t s = 0; s < old_n; s++)
        if (old[s] >= 0)
            place(ix, old[s]);
    free(old);
    return 1;
}

int nf_name_index_add(nf_name_index *ix, int i)
{
    if (2 * ((size_t)ix->count + 1) > ix->n_slots && !grow(ix))
        return 0;
    place(ix, i);
    ix->count++;
    return 1;
}

void nf_name_index_free(nf_name_index *ix)
{
    free(ix->slots);
    ix->slots = NULL;
    ix->n_slots = 0;
    ix->count = 0;
}
