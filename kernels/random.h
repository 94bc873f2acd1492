/* nodeflow — counter-based random numbers for kernels (dropout masks). */
#ifndef NF_KERNELS_RANDOM_H
#define NF_KERNELS_RANDOM_H

#include <stdint.h>

/* A 64-bit mixing function (splitmix64's finaliser; Steele, Lea & Flood
 * 2014): counter-based random numbers, nf_mix64(key + i), are the same
 * whatever the threads. */
static inline uint64_t nf_mix64(uint64_t z)
{
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

#endif
