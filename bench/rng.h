/*
 * rng.h - the benchmarks' seeded PRNG (splitmix64, as the tests' tu_rng),
 * so that every run of a benchmark draws the same positions and paths.
 * Header-only.
 */
#ifndef MARKD_BENCH_RNG_H
#define MARKD_BENCH_RNG_H

#include <stdint.h>

struct rng {
	uint64_t s;
};

static inline uint64_t
rng_next(struct rng *r)
{
	uint64_t z = (r->s += UINT64_C(0x9e3779b97f4a7c15));

	z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
	z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
	return z ^ (z >> 31);
}

/* A uniform integer in [lo, hi] (hi - lo below 2^63). */
static inline int64_t
rng_range(struct rng *r, int64_t lo, int64_t hi)
{
	return lo + (int64_t)(rng_next(r) % (uint64_t)(hi - lo + 1));
}

#endif
