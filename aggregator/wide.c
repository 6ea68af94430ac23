#include "config.h"

#include "aggregator/wide.h"

#include <assert.h>

int64_t
agg_pow10(int k)
{
	int64_t p = 1;

	assert(k >= 0 && k <= 18);
	while (k-- > 0)
		p *= 10;
	return p;
}

agg_i128
agg_div_round(agg_i128 num, agg_i128 den, enum mk_round mode)
{
	agg_i128 q, r, twice_r;
	bool neg = num < 0;

	assert(den > 0);
	q = num / den;          /* C truncates toward zero */
	r = num % den;          /* same sign as num, |r| < den */
	if (r == 0)
		return q;
	/* Work with the magnitude of the remainder; |r| < den, so 2|r| cannot
	 * overflow as long as den < 2^126, which every caller guarantees
	 * (denominators are products of int64 values at most). */
	if (r < 0)
		r = -r;
	twice_r = 2 * r;
	switch (mode) {
	case MK_ROUND_DOWN:
		return q;
	case MK_ROUND_UP:
		return neg ? q - 1 : q + 1;
	case MK_ROUND_FLOOR:
		return neg ? q - 1 : q;
	case MK_ROUND_CEIL:
		return neg ? q : q + 1;
	case MK_ROUND_HALF_UP:
		if (twice_r >= den)
			return neg ? q - 1 : q + 1;
		return q;
	case MK_ROUND_EXACT:
	case MK_ROUND_HALF_EVEN:
		break;
	}
	if (twice_r > den || (twice_r == den && q % 2 != 0))
		return neg ? q - 1 : q + 1;
	return q;
}

bool
agg_i128_to_i64(agg_i128 v, int64_t *out)
{
	if (v < INT64_MIN || v > INT64_MAX)
		return false;
	*out = (int64_t)v;
	return true;
}

int64_t
agg_avg2_half_even(int64_t a, int64_t b)
{
	/* The mean of two int64 values always fits in int64. */
	return (int64_t)agg_div_round((agg_i128)a + b, 2, MK_ROUND_HALF_EVEN);
}
