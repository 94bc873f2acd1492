/* nodeflow — xoshiro256** random numbers, seeded by splitmix64. */
#include <math.h>

#include "engine/rng.h"

static uint64_t splitmix64(uint64_t *state)
{
    uint64_t z = (*state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

void nf_rng_seed(nf_rng *rng, uint64_t seed)
{
    for (int i = 0; i < 4; i++)
        rng->s[i] = splitmix64(&seed);
}

static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

uint64_t nf_rng_next(nf_rng *rng)
{
    uint64_t *s = rng->s;
    uint64_t result = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

double nf_rng_uniform(nf_rng *rng)
{
    return (double)(nf_rng_next(rng) >> 11) * 0x1.0p-53;
}

double nf_rng_normal(nf_rng *rng)
{
    /* Box-Muller: sqrt(-2 ln u1) cos(2 pi u2), with u1 in (0, 1]. */
    double u1 = 1.0 - nf_rng_uniform(rng);
    double u2 = nf_rng_uniform(rng);
    return sqrt(-2.0 * log(u1)) * cos(2.0 * M_PI * u2);
}

uint64_t nf_rng_below(nf_rng *rng, uint64_t n)
{
    /* Rejection sampling: drop the top partial range so every value is
     * equally likely. */
    uint64_t limit = UINT64_MAX - UINT64_MAX % n;
    uint64_t x;
    do {
        x = nf_rng_next(rng);
    } while (x >= limit);
    return x % n;
}
