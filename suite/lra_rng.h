/* lra_rng.h — counter-based random numbers, header-only.
 *
 * Every random draw in the suite is a pure function of (key, counter): dropout masks, parameter
 * initialisation, data shuffles and plugin draws. Nothing carries hidden state between calls, so
 * the numbers do not depend on how work is split across threads, and backward passes regenerate
 * a dropout mask instead of storing it. The mixer is SplitMix64's finaliser applied twice over a
 * key/counter combination; it passes BigCrush as a counter-mode generator (Steele et al., 2014).
 * Header-only so that out-of-tree plugins get the same numbers without linking the core.
 */
#ifndef LRA_RNG_H
#define LRA_RNG_H

#include <math.h>
#include <stdint.h>

static inline uint64_t lra_mix64(uint64_t z)
{
    z += 0x9e3779b97f4a7c15ULL;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

/* A new key derived from a parent key and a label (layer index, site, step, ...). */
static inline uint64_t lra_key(uint64_t parent, uint64_t label)
{
    return lra_mix64(parent ^ lra_mix64(label + 0x632be59bd9b4e019ULL));
}

/* 64 random bits for element `counter` of the stream `key`. */
static inline uint64_t lra_bits(uint64_t key, uint64_t counter)
{
    return lra_mix64(lra_mix64(counter ^ 0xd1b54a32d192ed03ULL) ^ key);
}

/* Uniform in [0, 1) with 24 random bits: exact in float32. */
static inline float lra_uniform(uint64_t key, uint64_t counter)
{
    return (float)(lra_bits(key, counter) >> 40) * (1.0f / 16777216.0f);
}

/* Standard normal by Box–Muller from one 64-bit draw (two 32-bit halves). */
static inline float lra_normal(uint64_t key, uint64_t counter)
{
    uint64_t b = lra_bits(key, counter);
    double u1 = ((double)(b >> 32) + 0.5) * (1.0 / 4294967296.0);
    double u2 = (double)(b & 0xffffffffULL) * (1.0 / 4294967296.0);
    return (float)(sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2));
}

/* Uniform integer in [0, n), n > 0 (multiply-shift; bias below 2^-32 for n < 2^32). */
static inline uint32_t lra_below(uint64_t key, uint64_t counter, uint32_t n)
{
    return (uint32_t)(((lra_bits(key, counter) >> 32) * (uint64_t)n) >> 32);
}

#endif
