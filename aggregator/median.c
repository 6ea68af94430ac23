#include "config.h"

#include "aggregator/median.h"

#include <assert.h>
#include <stdlib.h>

static int
vote_cmp(const void *pa, const void *pb)
{
	const struct agg_vote *a = pa;
	const struct agg_vote *b = pb;

	if (a->value != b->value)
		return a->value < b->value ? -1 : 1;
	if (a->weight != b->weight)
		return a->weight < b->weight ? -1 : 1;
	return 0;
}

void
agg_votes_sort(struct agg_vote *votes, size_t n)
{
	if (n > 1)
		qsort(votes, n, sizeof(*votes), vote_cmp);
}

agg_i128
agg_votes_percentile2(const struct agg_vote *sorted, size_t n, uint32_t num,
		      uint32_t den)
{
	agg_u128 total = 0, target, cum = 0;
	size_t i;

	assert(n >= 1 && num > 0 && num <= den);
	for (i = 0; i < n; i++)
		total += sorted[i].weight;
	/* Compare cum * den against num * total: both sides stay below 2^127
	 * under the documented precondition, so neither product wraps. */
	target = (agg_u128)num * total;
	for (i = 0; i < n; i++) {
		agg_u128 scaled;

		cum += sorted[i].weight;
		scaled = cum * den;
		if (scaled < target)
			continue;
		if (scaled == target && i + 1 < n)
			return (agg_i128)sorted[i].value + sorted[i + 1].value;
		return 2 * (agg_i128)sorted[i].value;
	}
	/* Unreachable: with num <= den the last vote always reaches target. */
	assert(0);
	return 2 * (agg_i128)sorted[n - 1].value;
}

int64_t
agg_votes_percentile(const struct agg_vote *sorted, size_t n, uint32_t num,
		     uint32_t den)
{
	agg_i128 twice = agg_votes_percentile2(sorted, n, num, den);

	/* twice / 2 lies between two int64 values, so it fits. */
	return (int64_t)agg_div_round(twice, 2, MK_ROUND_HALF_EVEN);
}

static int
i64_cmp(const void *pa, const void *pb)
{
	int64_t a = *(const int64_t *)pa;
	int64_t b = *(const int64_t *)pb;

	return (a > b) - (a < b);
}

agg_i128
agg_median2(int64_t *values, size_t n)
{
	assert(n >= 1);
	if (n > 1)
		qsort(values, n, sizeof(*values), i64_cmp);
	if (n % 2 == 1)
		return 2 * (agg_i128)values[n / 2];
	return (agg_i128)values[n / 2 - 1] + values[n / 2];
}
