/*
 * testutil.h - small helpers shared by the Check suites: a seeded PRNG,
 * fixture paths, and the main() that runs one suite.
 *
 * Header-only (static inline) so each test program stays one file.
 */
#ifndef MARKD_TESTS_TESTUTIL_H
#define MARKD_TESTS_TESTUTIL_H

#include <check.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

/* splitmix64: a tiny PRNG with a fixed seed, so failures reproduce. */
struct tu_rng {
	uint64_t s;
};
#define TU_RNG_INIT(seed) ((struct tu_rng){ .s = (uint64_t)(seed) })

static inline uint64_t
tu_rng_next(struct tu_rng *r)
{
	uint64_t z = (r->s += UINT64_C(0x9e3779b97f4a7c15));

	z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
	z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
	return z ^ (z >> 31);
}

/* A uniform integer in [lo, hi]. */
static inline int64_t
tu_rng_range(struct tu_rng *r, int64_t lo, int64_t hi)
{
	uint64_t span = (uint64_t)(hi - lo) + 1u;

	return lo + (int64_t)(span == 0 ? tu_rng_next(r)
					: tu_rng_next(r) % span);
}

/* "$MARKD_SRCDIR/rel" (or "./rel" when unset) into buf. */
static inline const char *
tu_srcpath(char *buf, size_t cap, const char *rel)
{
	const char *top = getenv("MARKD_SRCDIR");

	snprintf(buf, cap, "%s/%s", top != NULL ? top : ".", rel);
	return buf;
}

/* "$MARKD_BUILDDIR/rel" (or "./rel" when unset) into buf. */
static inline const char *
tu_buildpath(char *buf, size_t cap, const char *rel)
{
	const char *top = getenv("MARKD_BUILDDIR");

	snprintf(buf, cap, "%s/%s", top != NULL ? top : ".", rel);
	return buf;
}

/* main() for a test program running one suite; exits non-zero when any
 * test failed. The closing line is Check's own summary. */
#define TU_MAIN(suite_fn)                                                  \
	int main(void)                                                     \
	{                                                                  \
		SRunner *sr = srunner_create(suite_fn());                  \
		int failed;                                                \
		srunner_run_all(sr, CK_NORMAL);                            \
		failed = srunner_ntests_failed(sr);                        \
		srunner_free(sr);                                          \
		return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;          \
	}

#endif
