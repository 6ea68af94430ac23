/*
 * check_agg_kernels.c - the aggregator's numeric kernels: weighted
 * percentiles and the plain median (fixed-seed randomized differential
 * tests against a slow reference that expands every vote into `weight`
 * unit copies and indexes the sorted list), the EMA, the TWAP (against a
 * millisecond-by-millisecond integration of the price path) and the
 * volatility.
 */
#include "config.h"

#include <check.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "aggregator/median.h"
#include "aggregator/stats.h"
#include "tests/testutil.h"

#define RANDOM_CASES 120000
#define MAX_VOTES 16
#define MAX_WEIGHT 6

/* ---- reference percentile ------------------------------------------- */

static int
cmp_i64(const void *pa, const void *pb)
{
	int64_t a = *(const int64_t *)pa, b = *(const int64_t *)pb;

	return (a > b) - (a < b);
}

/*
 * Twice the (num/den)-percentile by the unit-weight definition: the votes
 * expanded into weight copies x_1 <= ... <= x_W; k = ceil(q W); the answer
 * is x_k, or (x_k + x_{k+1}) / 2 when q W is exactly the integer k < W.
 */
static __int128
ref_percentile2(const struct agg_vote *v, size_t n, uint32_t num,
		uint32_t den)
{
	int64_t x[MAX_VOTES * MAX_WEIGHT];
	size_t w = 0, i, k;
	uint64_t j;

	for (i = 0; i < n; i++)
		for (j = 0; j < v[i].weight; j++)
			x[w++] = v[i].value;
	qsort(x, w, sizeof(x[0]), cmp_i64);
	k = (num * w + den - 1) / den;          /* ceil, 1-based */
	if (k == 0)
		k = 1;
	if ((num * w) % den == 0 && k < w)
		return (__int128)x[k - 1] + x[k];
	return 2 * (__int128)x[k - 1];
}

/* Half-even rounding of t / 2 written from the definition: the even one
 * of the two integers around t / 2 when t is odd. */
static int64_t
ref_half_even(__int128 t)
{
	__int128 lo = t / 2;

	if (t % 2 == 0)
		return (int64_t)lo;
	if (t < 0)
		lo -= 1;              /* floor */
	return (int64_t)(lo % 2 == 0 ? lo : lo + 1);
}

static int64_t
draw_value(struct tu_rng *r, int kind, int64_t base)
{
	switch (kind) {
	case 0: /* many ties */
		return tu_rng_range(r, -3, 3);
	case 1: /* prices around a base */
		return base + tu_rng_range(r, -1000, 1000);
	case 2: /* anywhere in int64 */
		return (int64_t)tu_rng_next(r);
	case 3: /* near the extremes */
		return tu_rng_range(r, 0, 1) ? INT64_MAX - tu_rng_range(r, 0, 3)
					     : INT64_MIN + tu_rng_range(r, 0, 3);
	default: /* all equal */
		return base;
	}
}

START_TEST(test_percentile_differential)
{
	static const uint32_t fixed_q[][2] = {
		{ 1, 4 }, { 1, 2 }, { 3, 4 }, { 1, 1 }, { 1, 3 }, { 2, 3 },
	};
	struct tu_rng r = TU_RNG_INIT(0x5eed0001);
	struct agg_vote v[MAX_VOTES], sorted[MAX_VOTES];
	size_t c, ones = 0, equal = 0;

	for (c = 0; c < RANDOM_CASES; c++) {
		int kind = (int)tu_rng_range(&r, 0, 4);
		int64_t base = tu_rng_range(&r, 1, INT64_C(1) << 50);
		size_t n = c % 7 == 0 ? 1 : (size_t)tu_rng_range(&r, 1, MAX_VOTES);
		uint32_t num, den;
		size_t i;
		__int128 got, want;

		for (i = 0; i < n; i++) {
			v[i].value = draw_value(&r, kind, base);
			v[i].weight = (uint64_t)tu_rng_range(&r, 1, MAX_WEIGHT);
		}
		ones += n == 1;
		equal += kind == 4;
		if (tu_rng_range(&r, 0, 1)) {
			size_t q = (size_t)tu_rng_range(&r, 0, 5);

			num = fixed_q[q][0];
			den = fixed_q[q][1];
		} else {
			den = (uint32_t)tu_rng_range(&r, 1, 12);
			num = (uint32_t)tu_rng_range(&r, 1, den);
		}
		memcpy(sorted, v, n * sizeof(v[0]));
		agg_votes_sort(sorted, n);
		for (i = 1; i < n; i++)
			ck_assert(sorted[i - 1].value <= sorted[i].value);
		got = agg_votes_percentile2(sorted, n, num, den);
		want = ref_percentile2(v, n, num, den);
		ck_assert_msg(got == want, "case %zu: n=%zu q=%u/%u", c, n,
			      num, den);
		ck_assert_int_eq(agg_votes_percentile(sorted, n, num, den),
				 ref_half_even(want));
	}
	/* the edge inputs really were drawn */
	ck_assert_uint_gt(ones, 10000);
	ck_assert_uint_gt(equal, 10000);
}
END_TEST

START_TEST(test_percentile_hand_cases)
{
	/* Three equal legs, votes p-c, p, p+c: p25 = the 3rd vote of 9. */
	struct agg_vote v[] = {
		{ 99, 1 }, { 100, 1 }, { 101, 1 }, { 199, 1 }, { 200, 1 },
		{ 201, 1 }, { 299, 1 }, { 300, 1 }, { 301, 1 },
	};
	struct agg_vote two[] = { { 10, 1 }, { 13, 1 } };
	struct agg_vote heavy[] = { { 1, 1 }, { 5, 3 }, { 9, 1 } };
	struct agg_vote neg[] = { { -3, 1 }, { 0, 1 } };
	struct agg_vote one[] = { { 7, 5 } };

	agg_votes_sort(v, 9);
	ck_assert_int_eq(agg_votes_percentile(v, 9, 1, 4), 101);
	ck_assert_int_eq(agg_votes_percentile(v, 9, 1, 2), 200);
	ck_assert_int_eq(agg_votes_percentile(v, 9, 3, 4), 299);
	/* even count: exactly on the boundary, mean of the two middles,
	 * 11.5 -> 12 (half-even) */
	ck_assert_int_eq((int64_t)agg_votes_percentile2(two, 2, 1, 2), 23);
	ck_assert_int_eq(agg_votes_percentile(two, 2, 1, 2), 12);
	/* a heavy middle vote takes the median and both quartiles */
	ck_assert_int_eq(agg_votes_percentile(heavy, 3, 1, 4), 5);
	ck_assert_int_eq(agg_votes_percentile(heavy, 3, 1, 2), 5);
	ck_assert_int_eq(agg_votes_percentile(heavy, 3, 3, 4), 5);
	/* -1.5 -> -2 (half-even) */
	ck_assert_int_eq(agg_votes_percentile(neg, 2, 1, 2), -2);
	ck_assert_int_eq(agg_votes_percentile(one, 1, 1, 4), 7);
	ck_assert_int_eq(agg_votes_percentile(one, 1, 3, 4), 7);
}
END_TEST

START_TEST(test_median2_differential)
{
	struct tu_rng r = TU_RNG_INIT(0x5eed0002);
	int64_t a[MAX_VOTES], b[MAX_VOTES];
	size_t c;

	for (c = 0; c < RANDOM_CASES; c++) {
		int kind = (int)tu_rng_range(&r, 0, 4);
		int64_t base = tu_rng_range(&r, 1, INT64_C(1) << 50);
		size_t n = (size_t)tu_rng_range(&r, 1, MAX_VOTES), i;
		struct agg_vote v[MAX_VOTES];
		__int128 want;

		for (i = 0; i < n; i++) {
			a[i] = b[i] = draw_value(&r, kind, base);
			v[i] = (struct agg_vote){ a[i], 1 };
		}
		/* the plain median is the unit-weight 1/2 percentile */
		want = ref_percentile2(v, n, 1, 2);
		ck_assert_msg(agg_median2(a, n) == want, "case %zu", c);
		/* and it sorted its input */
		qsort(b, n, sizeof(b[0]), cmp_i64);
		ck_assert(memcmp(a, b, n * sizeof(a[0])) == 0);
	}
}
END_TEST

/* ---- EMA -------------------------------------------------------------- */

START_TEST(test_ema)
{
	struct agg_ema e;

	agg_ema_init(&e);
	ck_assert(!e.has);
	agg_ema_push(&e, 100, 1000, 6000);
	ck_assert(e.has);
	ck_assert_int_eq(e.value, 100);
	/* dt = window: alpha = 1/2 */
	agg_ema_push(&e, 200, 7000, 6000);
	ck_assert_int_eq(e.value, 150);
	/* dt = window / 3: alpha = 1/4 -> 150 + 50/4 = 162.5 -> 162 */
	agg_ema_push(&e, 200, 9000, 6000);
	ck_assert_int_eq(e.value, 162);
	/* no time elapsed: unchanged */
	agg_ema_push(&e, 1000000, 9000, 6000);
	ck_assert_int_eq(e.value, 162);
	/* a very long gap converges to the price */
	agg_ema_push(&e, 500, INT64_C(1) << 60, 6000);
	ck_assert_int_eq(e.value, 500);
}
END_TEST

START_TEST(test_ema_bounded)
{
	struct tu_rng r = TU_RNG_INIT(0x5eed0003);
	struct agg_ema e;
	int64_t t = 0, lo = INT64_MAX, hi = INT64_MIN;
	int i;

	agg_ema_init(&e);
	for (i = 0; i < 20000; i++) {
		int64_t p = tu_rng_range(&r, 1, INT64_MAX);

		t += tu_rng_range(&r, 0, 100000);
		lo = p < lo ? p : lo;
		hi = p > hi ? p : hi;
		agg_ema_push(&e, p, t, tu_rng_range(&r, 1, 1000000));
		ck_assert(e.value >= lo && e.value <= hi);
	}
}
END_TEST

/* ---- TWAP ------------------------------------------------------------- */

struct sample {
	int64_t t, p;
};

/* The path's average over [window start, now) by summing every ms. */
static bool
ref_twap(const struct sample *s, size_t n, int64_t window_ms, int64_t now,
	 int64_t *out)
{
	int64_t bms = (window_ms + AGG_TWAP_BUCKETS - 1) / AGG_TWAP_BUCKETS;
	int64_t start = (now / bms - (AGG_TWAP_BUCKETS - 1)) * bms;
	__int128 sum = 0, q, rem;
	int64_t cnt = 0, t;
	size_t k = 0;

	if (n == 0)
		return false;
	t = s[0].t > start ? s[0].t : start;
	for (; t < now; t++) {
		while (k + 1 < n && s[k + 1].t <= t)
			k++;
		sum += s[k].p;
		cnt++;
	}
	if (cnt == 0) {
		*out = s[n - 1].p;
		return true;
	}
	q = sum / cnt;
	rem = sum % cnt;
	if (2 * rem > cnt || (2 * rem == cnt && q % 2 != 0))
		q++;
	*out = (int64_t)q;
	return true;
}

START_TEST(test_twap_differential)
{
	struct tu_rng r = TU_RNG_INIT(0x5eed0004);
	struct sample s[64];
	int trial;

	for (trial = 0; trial < 300; trial++) {
		int64_t window = tu_rng_range(&r, 64, 3000);
		int64_t t = tu_rng_range(&r, 0, 5000);
		struct agg_twap tw;
		size_t n = 0;
		int i;

		agg_twap_init(&tw, window);
		for (i = 0; i < 40; i++) {
			int64_t p = tu_rng_range(&r, 1, INT64_C(1) << 62);
			int64_t now, got, want;

			t += tu_rng_range(&r, 0, window / 4);
			agg_twap_push(&tw, p, t);
			if (n > 0 && s[n - 1].t == t)
				s[n - 1].p = p;     /* same instant: replaced */
			else
				s[n++] = (struct sample){ t, p };
			now = t + tu_rng_range(&r, 0, window / 2);
			ck_assert(agg_twap_value(&tw, now, &got));
			ck_assert(ref_twap(s, n, window, now, &want));
			ck_assert_msg(got == want, "trial %d step %d", trial, i);
		}
	}
}
END_TEST

START_TEST(test_twap_basics)
{
	struct agg_twap tw;
	int64_t v = 0;

	agg_twap_init(&tw, 64000);            /* 1000 ms buckets */
	ck_assert(!agg_twap_value(&tw, 0, &v));
	agg_twap_push(&tw, 100, 10000);
	ck_assert(agg_twap_value(&tw, 10000, &v));
	ck_assert_int_eq(v, 100);             /* no time yet: the sample */
	agg_twap_push(&tw, 300, 20000);
	ck_assert(agg_twap_value(&tw, 30000, &v));
	ck_assert_int_eq(v, 200);             /* 10 s at 100, 10 s at 300 */
	/* long after, only the last value is in the window */
	ck_assert(agg_twap_value(&tw, 500000, &v));
	ck_assert_int_eq(v, 300);
	agg_twap_reset(&tw);
	ck_assert(!agg_twap_value(&tw, 500000, &v));
}
END_TEST

/* ---- volatility ------------------------------------------------------- */

START_TEST(test_volatility)
{
	struct agg_vol v;
	double sigma = -1.0;
	const double year = 365.25 * 86400000.0;

	agg_vol_init(&v);
	agg_vol_push(&v, 100000, 0, 3600000);
	ck_assert(!agg_vol_sigma(&v, &sigma));
	agg_vol_push(&v, 100000, 1000, 3600000);
	ck_assert(agg_vol_sigma(&v, &sigma));
	ck_assert_double_eq_tol(sigma, 0.0, 1e-15);

	/* one return of exactly r = 0.01 over 1 s */
	agg_vol_init(&v);
	agg_vol_push(&v, 1000000000, 0, 3600000);
	agg_vol_push(&v, (int64_t)llround(1e9 * exp(0.01)), 1000, 3600000);
	ck_assert(agg_vol_sigma(&v, &sigma));
	ck_assert_double_eq_tol(sigma, 0.01 * sqrt(year / 1000.0), 1e-6);

	/* a second return after one half-life weighs one half */
	agg_vol_push(&v, (int64_t)llround(1e9 * exp(0.01)), 3601000, 3600000);
	ck_assert(agg_vol_sigma(&v, &sigma));
	ck_assert_double_eq_tol(sigma, sqrt(0.5 * 0.0001 / 1000.0 * year),
				1e-6);
}
END_TEST

static Suite *
kernels_suite(void)
{
	Suite *s = suite_create("agg_kernels");
	TCase *tc = tcase_create("core");

	tcase_set_timeout(tc, 300);
	tcase_add_test(tc, test_percentile_differential);
	tcase_add_test(tc, test_percentile_hand_cases);
	tcase_add_test(tc, test_median2_differential);
	tcase_add_test(tc, test_ema);
	tcase_add_test(tc, test_ema_bounded);
	tcase_add_test(tc, test_twap_basics);
	tcase_add_test(tc, test_twap_differential);
	tcase_add_test(tc, test_volatility);
	suite_add_tcase(s, tc);
	return s;
}

TU_MAIN(kernels_suite)
