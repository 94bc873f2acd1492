/* nodeflow — a small, seeded, reproducible random number generator
 * (xoshiro256**, seeded through splitmix64; Blackman & Vigna 2018). */
#ifndef NF_ENGINE_RNG_H
#define NF_ENGINE_RNG_H

#include <stdint.h>

#include "kernels/random.h"

typedef struct nf_rng {
    uint64_t s[4];
} nf_rng;

void nf_rng_seed(nf_rng *rng, uint64_t seed);
uint64_t nf_rng_next(nf_rng *rng);
/* Uniform in [0, 1) with 53 random bits. */
double nf_rng_uniform(nf_rng *rng);
/* Standard normal (Box-Muller). */
double nf_rng_normal(nf_rng *rng);
/* Uniform integer in [0, n), without modulo bias. */
uint64_t nf_rng_below(nf_rng *rng, uint64_t n);

#endif
