/* nodeflow — a hash index from names to item positions (open addressing,
 * linear probing), so that finding a node, a parameter or a tensor by name
 * costs O(1) however large the graph or the file. The index stores only
 * positions; the names stay in the caller's items and are read back
 * through a callback. */
#ifndef NF_NAMES_H
#define NF_NAMES_H

#include <stddef.h>

/* The name of item i of `items`. */
typedef const char *(*nf_name_of)(const void *items, int i);

typedef struct nf_name_index {
    int *slots;        /* item position, or -1 for an empty slot */
    size_t n_slots;    /* 0 or a power of two, at least twice the count */
    int bits;          /* n_slots = 2^bits */
    int count;
    nf_name_of name_of;
    const void *items;
} nf_name_index;

void nf_name_index_init(nf_name_index *ix, nf_name_of name_of, const void *items);
/* The position of the item named `name`, or -1. */
int nf_name_index_find(const nf_name_index *ix, const char *name);
/* Adds item `i` (its name must not be in the index yet); 0 when out of
 * memory, the index then unchanged. */
int nf_name_index_add(nf_name_index *ix, int i);
void nf_name_index_free(nf_name_index *ix);

#endif
