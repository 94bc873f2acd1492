/* nodeflow — name index (see names.h). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "engine/internal.h"
#include "engine/names.h"

void nf_name_index_init(nf_name_index *ix, nf_name_of name_of, const void *items)
{
    memset(ix, 0, sizeof *ix);
    ix->name_of = name_of;
    ix->items = items;
}

void nf_name_index_rebind(nf_name_index *ix, const void *items) { ix->items = items; }

static size_t first_slot(const nf_name_index *ix, const char *name)
{
    return (size_t)nf_name_hash(name) & (ix->n_slots - 1);
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
