/*
 * median.h - exact weighted percentiles over votes (DESIGN.md section 5,
 * step 5) and the plain median used by the outlier filter (step 3).
 *
 * A vote is an integer value (a price mantissa at the instrument's scale)
 * with a positive weight. The q-percentile of votes sorted by value is the
 * first vote whose cumulative weight reaches q * total; when the cumulative
 * weight equals q * total exactly, it is the mean of that vote and the next
 * one. Everything is integer arithmetic: the "doubled" functions return
 * twice the percentile, which is always an integer, so callers can compare
 * against it without rounding; the others round that mean half-even.
 *
 * The functions allocate nothing, keep no state and are reentrant; the
 * caller owns every array. Sorting is O(n log n) (qsort with a total order,
 * so the result never depends on the sort's stability).
 */
#ifndef MARKD_AGGREGATOR_MEDIAN_H
#define MARKD_AGGREGATOR_MEDIAN_H

#include <stddef.h>
#include <stdint.h>

#include "aggregator/wide.h"

struct agg_vote {
	int64_t value;    /* price mantissa */
	uint64_t weight;  /* > 0 */
};

/* Sorts votes by value, ties by weight (a total order). */
void agg_votes_sort(struct agg_vote *votes, size_t n);

/*
 * Twice the weighted (num/den)-percentile of votes already sorted by
 * agg_votes_sort. Assumes n >= 1, 0 < num <= den, every weight > 0 and
 * the sum of weights times den below 2^127 (leg weights are 32-bit, so
 * any realistic leg count qualifies). Cost O(n).
 */
agg_i128 agg_votes_percentile2(const struct agg_vote *sorted, size_t n,
			       uint32_t num, uint32_t den);

/* The same percentile rounded half-even (it always fits in int64). */
int64_t agg_votes_percentile(const struct agg_vote *sorted, size_t n,
			     uint32_t num, uint32_t den);

/*
 * Twice the plain (unweighted) median of values[0..n): the middle value
 * doubled for odd n, the sum of the two middle values for even n. Sorts
 * `values` in place. Assumes n >= 1. Cost O(n log n).
 */
agg_i128 agg_median2(int64_t *values, size_t n);

#endif
