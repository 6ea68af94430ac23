/*
 * check_dec.c - exact decimals: edges, malformed input, and fixed-seed
 * randomized differential tests against GMP rationals, a slow reference
 * that is obviously right (exact rational arithmetic, rounding written as
 * floor/ceil of rationals rather than remainder arithmetic).
 */
#include "config.h"

#include <check.h>
#include <gmp.h>
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "aggregator/dec.h"
#include "aggregator/json_dec.h"
#include "tests/testutil.h"

#define RANDOM_CASES 100000

static const enum mk_round all_modes[] = {
	MK_ROUND_EXACT, MK_ROUND_DOWN, MK_ROUND_UP, MK_ROUND_FLOOR,
	MK_ROUND_CEIL, MK_ROUND_HALF_UP, MK_ROUND_HALF_EVEN,
};

static struct mk_dec
parse_ok(const char *s)
{
	struct mk_dec d;
	struct mk_err err;
	enum mk_status st = mk_dec_parse(s, strlen(s), &d, &err);

	ck_assert_msg(st == MK_OK, "parse %s: %s", s, err.msg);
	return d;
}

static const char *
fmt(struct mk_dec d, char *buf)
{
	ck_assert_uint_gt(mk_dec_format(d, buf, MK_DEC_STRLEN), 0);
	return buf;
}

/* ---- reference: value of an mk_dec as a GMP rational ---- */

static void
ref_value(mpq_t q, struct mk_dec d)
{
	mpz_t den;

	mpz_init(den);
	mpz_ui_pow_ui(den, 10, (unsigned long)d.scale);
	mpq_set_si(q, 0, 1);
	mpz_set_si(mpq_numref(q), d.m);
	mpz_set(mpq_denref(q), den);
	mpq_canonicalize(q);
	mpz_clear(den);
}

/*
 * Rounds the rational x * 10^scale to an integer with mode, into out.
 * Returns 0 when mode is EXACT and x * 10^scale is not an integer.
 */
static int
ref_round(mpz_t out, const mpq_t x, int scale, enum mk_round mode)
{
	mpq_t y, half;
	mpz_t fl, ce, p;
	int ok = 1;

	mpq_inits(y, half, NULL);
	mpz_inits(fl, ce, p, NULL);
	mpz_ui_pow_ui(p, 10, (unsigned long)scale);
	mpq_set_z(half, p);
	mpq_mul(y, x, half);
	mpz_fdiv_q(fl, mpq_numref(y), mpq_denref(y));
	mpz_cdiv_q(ce, mpq_numref(y), mpq_denref(y));
	if (mpz_cmp(fl, ce) == 0) {
		mpz_set(out, fl);
		goto out;
	}
	/* y lies strictly between fl and ce = fl + 1. */
	switch (mode) {
	case MK_ROUND_EXACT:
		ok = 0;
		break;
	case MK_ROUND_DOWN:
		mpz_set(out, mpq_sgn(y) > 0 ? fl : ce);
		break;
	case MK_ROUND_UP:
		mpz_set(out, mpq_sgn(y) > 0 ? ce : fl);
		break;
	case MK_ROUND_FLOOR:
		mpz_set(out, fl);
		break;
	case MK_ROUND_CEIL:
		mpz_set(out, ce);
		break;
	case MK_ROUND_HALF_UP:
	case MK_ROUND_HALF_EVEN: {
		/* compare y - fl with 1/2 */
		mpq_t frac;
		int c;

		mpq_init(frac);
		mpq_set_z(frac, fl);
		mpq_sub(frac, y, frac);
		mpq_set_ui(half, 1, 2);
		c = mpq_cmp(frac, half);
		if (c < 0)
			mpz_set(out, fl);
		else if (c > 0)
			mpz_set(out, ce);
		else if (mode == MK_ROUND_HALF_UP)
			mpz_set(out, mpq_sgn(y) > 0 ? ce : fl);
		else
			mpz_set(out, mpz_even_p(fl) ? fl : ce);
		mpq_clear(frac);
		break;
	}
	}
out:
	mpq_clears(y, half, NULL);
	mpz_clears(fl, ce, p, NULL);
	return ok;
}

static int
fits_int64(const mpz_t z)
{
	return mpz_fits_slong_p(z) && sizeof(long) == 8;
}

/*
 * Checks one operation result against the reference rational x rounded to
 * scale with mode: expects MK_OK and the same mantissa, MK_ERANGE when the
 * rounded value does not fit, MK_EINEXACT when EXACT cannot hold.
 */
static void
expect_result(const char *what, enum mk_status st, struct mk_dec got,
	      const mpq_t x, int scale, enum mk_round mode)
{
	mpz_t want;
	int ok;

	mpz_init(want);
	ok = ref_round(want, x, scale, mode);
	if (!ok) {
		ck_assert_msg(st == MK_EINEXACT || st == MK_ERANGE,
			      "%s: want inexact, got %s", what,
			      mk_strstatus(st));
	} else if (!fits_int64(want)) {
		ck_assert_msg(st == MK_ERANGE, "%s: want range error, got %s",
			      what, mk_strstatus(st));
	} else {
		ck_assert_msg(st == MK_OK, "%s: want ok, got %s", what,
			      mk_strstatus(st));
		ck_assert_msg(got.m == mpz_get_si(want) && got.scale == scale,
			      "%s: got %" PRId64 "e-%d want %ld", what, got.m,
			      got.scale, mpz_get_si(want));
	}
	mpz_clear(want);
}

/* A random mantissa with a random bit length, so that small, medium and
 * extreme magnitudes all occur; sometimes exactly an edge. */
static int64_t
rand_mantissa(struct tu_rng *r)
{
	uint64_t bits = tu_rng_next(r) % 64;
	uint64_t v = tu_rng_next(r);
	int64_t m;

	switch (tu_rng_next(r) % 16) {
	case 0: return INT64_MAX;
	case 1: return INT64_MIN;
	case 2: return 0;
	case 3: return (tu_rng_next(r) & 1) ? 1 : -1;
	default: break;
	}
	v = bits == 63 ? v : v & ((UINT64_C(1) << bits) - 1u);
	m = (int64_t)(v >> 1);
	return (tu_rng_next(r) & 1) ? -m : m;
}

static struct mk_dec
rand_dec(struct tu_rng *r)
{
	return MK_DEC(rand_mantissa(r), (int)(tu_rng_next(r) % 19));
}

START_TEST(test_parse_format_basic)
{
	char buf[MK_DEC_STRLEN];
	struct mk_dec d = parse_ok("67123.45");

	ck_assert_int_eq(d.m, 6712345);
	ck_assert_int_eq(d.scale, 2);
	ck_assert_str_eq(fmt(d, buf), "67123.45");
	ck_assert_str_eq(fmt(parse_ok("-0.5"), buf), "-0.5");
	ck_assert_str_eq(fmt(parse_ok("-0"), buf), "0");
	ck_assert_str_eq(fmt(parse_ok("+12"), buf), "12");
	ck_assert_str_eq(fmt(parse_ok(".5"), buf), "0.5");
	ck_assert_str_eq(fmt(parse_ok("0.000001"), buf), "0.000001");
	ck_assert_str_eq(fmt(parse_ok("00012.3400"), buf), "12.3400");
	ck_assert_str_eq(fmt(MK_DEC(-5, 3), buf), "-0.005");
	/* Trailing zeros that do not fit carry no value: the scale is kept
	 * as far as it fits (here the 18-digit limit, then the 64 bits). */
	ck_assert_str_eq(fmt(parse_ok("1.50000000000000000000000"), buf),
			 "1.500000000000000000");
	ck_assert_str_eq(fmt(parse_ok("92233720368547758.0700"), buf),
			 "92233720368547758.07");
	ck_assert_str_eq(fmt(parse_ok("9223372036854775807.000"), buf),
			 "9223372036854775807");
}
END_TEST

START_TEST(test_parse_edges)
{
	char buf[MK_DEC_STRLEN];
	struct mk_dec d;

	d = parse_ok("9223372036854775807");
	ck_assert_int_eq(d.m, INT64_MAX);
	d = parse_ok("-9223372036854775808");
	ck_assert_int_eq(d.m, INT64_MIN);
	ck_assert_str_eq(fmt(d, buf), "-9223372036854775808");
	d = parse_ok("-9.223372036854775808");
	ck_assert_int_eq(d.m, INT64_MIN);
	ck_assert_int_eq(d.scale, 18);
	d = parse_ok("0.000000000000000001");
	ck_assert_int_eq(d.m, 1);
	ck_assert_int_eq(d.scale, 18);
	ck_assert_str_eq(fmt(d, buf), "0.000000000000000001");
}
END_TEST

static const struct {
	const char *text;
	enum mk_status st;
	const char *why;
} bad_inputs[] = {
	{ "", MK_EPARSE, "empty" },
	{ "-", MK_EPARSE, "no digits" },
	{ "+", MK_EPARSE, "no digits" },
	{ ".", MK_EPARSE, "no digits" },
	{ "-.", MK_EPARSE, "no digits" },
	{ "1.2.3", MK_EPARSE, "more than one decimal point" },
	{ "1..2", MK_EPARSE, "more than one decimal point" },
	{ "1e5", MK_EPARSE, "exponents" },
	{ "1.5E-3", MK_EPARSE, "exponents" },
	{ "NaN", MK_EPARSE, "NaN" },
	{ "nan", MK_EPARSE, "NaN" },
	{ "Infinity", MK_EPARSE, "Infinity" },
	{ "-inf", MK_EPARSE, "Infinity" },
	{ " 1", MK_EPARSE, "white space" },
	{ "1 ", MK_EPARSE, "white space" },
	{ "0x10", MK_EPARSE, "unexpected character" },
	{ "1,5", MK_EPARSE, "unexpected character" },
	{ "--1", MK_EPARSE, "unexpected character" },
	{ "9223372036854775808", MK_ERANGE, "too many digits" },
	{ "-9223372036854775809", MK_ERANGE, "too many digits" },
	{ "123456789012345678901234567890", MK_ERANGE, "too many digits" },
	{ "0.0000000000000000001", MK_ERANGE, "more than 18 digits" },
	{ "92233720368547758.08", MK_ERANGE, "too many digits" },
};

START_TEST(test_parse_malformed)
{
	struct mk_dec d = MK_DEC(42, 0);
	struct mk_err err;
	const char *text = bad_inputs[_i].text;
	enum mk_status st = mk_dec_parse(text, strlen(text), &d, &err);

	ck_assert_msg(st == bad_inputs[_i].st, "\"%s\": got %s", text,
		      mk_strstatus(st));
	ck_assert_msg(strstr(err.msg, bad_inputs[_i].why) != NULL,
		      "\"%s\": message \"%s\" lacks \"%s\"", text, err.msg,
		      bad_inputs[_i].why);
	ck_assert_msg(strstr(err.msg, "not a valid decimal") != NULL,
		      "message \"%s\"", err.msg);
	/* The out-parameter is untouched on error. */
	ck_assert_int_eq(d.m, 42);
}
END_TEST

START_TEST(test_parse_not_nul_terminated)
{
	const char text[] = { '1', '2', '.', '5', '9', '9' };
	struct mk_dec d;

	ck_assert_int_eq(mk_dec_parse(text, 4, &d, NULL), MK_OK);
	ck_assert_int_eq(d.m, 125);
	ck_assert_int_eq(d.scale, 1);
}
END_TEST

START_TEST(test_rounding_modes_table)
{
	/* value, mode, expected at scale 0 */
	static const struct {
		const char *v;
		enum mk_round mode;
		int64_t want;
	} t[] = {
		{ "2.5", MK_ROUND_HALF_EVEN, 2 }, { "3.5", MK_ROUND_HALF_EVEN, 4 },
		{ "-2.5", MK_ROUND_HALF_EVEN, -2 }, { "2.5", MK_ROUND_HALF_UP, 3 },
		{ "-2.5", MK_ROUND_HALF_UP, -3 }, { "2.4", MK_ROUND_HALF_UP, 2 },
		{ "-2.1", MK_ROUND_FLOOR, -3 }, { "-2.9", MK_ROUND_CEIL, -2 },
		{ "2.1", MK_ROUND_UP, 3 }, { "-2.1", MK_ROUND_UP, -3 },
		{ "2.9", MK_ROUND_DOWN, 2 }, { "-2.9", MK_ROUND_DOWN, -2 },
		{ "-0.4", MK_ROUND_HALF_EVEN, 0 },
	};
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		struct mk_dec r;

		ck_assert_int_eq(mk_dec_rescale(parse_ok(t[i].v), 0, t[i].mode,
						&r), MK_OK);
		ck_assert_msg(r.m == t[i].want, "%s mode %d: got %" PRId64,
			      t[i].v, (int)t[i].mode, r.m);
	}
	struct mk_dec r = MK_DEC(7, 0);
	ck_assert_int_eq(mk_dec_rescale(parse_ok("2.5"), 0, MK_ROUND_EXACT, &r),
			 MK_EINEXACT);
	ck_assert_int_eq(r.m, 7);
	ck_assert_int_eq(mk_dec_rescale(parse_ok("2.50"), 1, MK_ROUND_EXACT, &r),
			 MK_OK);
	ck_assert_int_eq(r.m, 25);
}
END_TEST

START_TEST(test_arith_edges)
{
	struct mk_dec r;
	struct mk_dec max = MK_DEC(INT64_MAX, 0), min = MK_DEC(INT64_MIN, 0);
	struct mk_dec one = MK_DEC(1, 0), unit = MK_DEC(1, 18);

	ck_assert_int_eq(mk_dec_add(max, one, &r), MK_ERANGE);
	ck_assert_int_eq(mk_dec_sub(min, one, &r), MK_ERANGE);
	ck_assert_int_eq(mk_dec_add(max, MK_DEC(-1, 0), &r), MK_OK);
	ck_assert_int_eq(r.m, INT64_MAX - 1);
	ck_assert_int_eq(mk_dec_neg(min, &r), MK_ERANGE);
	ck_assert_int_eq(mk_dec_abs(min, &r), MK_ERANGE);
	ck_assert_int_eq(mk_dec_mul(min, MK_DEC(-1, 0), 0, MK_ROUND_EXACT, &r),
			 MK_ERANGE);
	ck_assert_int_eq(mk_dec_mul(max, max, 18, MK_ROUND_DOWN, &r),
			 MK_ERANGE);
	ck_assert_int_eq(mk_dec_div(min, MK_DEC(-1, 0), 0, MK_ROUND_EXACT, &r),
			 MK_ERANGE);
	ck_assert_int_eq(mk_dec_div(one, MK_DEC(0, 5), 2, MK_ROUND_DOWN, &r),
			 MK_EDIVZERO);
	ck_assert_int_eq(mk_dec_div(one, MK_DEC(3, 0), 18, MK_ROUND_HALF_EVEN,
				    &r), MK_OK);
	ck_assert_int_eq(r.m, 333333333333333333);
	ck_assert_int_eq(mk_dec_add(unit, unit, &r), MK_OK);
	ck_assert_int_eq(r.m, 2);
	ck_assert_int_eq(r.scale, 18);
	ck_assert_int_eq(mk_dec_rescale(unit, 17, MK_ROUND_HALF_EVEN, &r),
			 MK_OK);
	ck_assert_int_eq(r.m, 0);
	ck_assert_int_eq(mk_dec_rescale(unit, 17, MK_ROUND_UP, &r), MK_OK);
	ck_assert_int_eq(r.m, 1);
	ck_assert_int_eq(mk_dec_rescale(one, 19, MK_ROUND_EXACT, &r),
			 MK_EINVAL);
	ck_assert_int_eq(mk_dec_rescale(max, 1, MK_ROUND_EXACT, &r),
			 MK_ERANGE);
	ck_assert_int_eq(mk_dec_cmp(min, max), -1);
	ck_assert_int_eq(mk_dec_cmp(MK_DEC(10, 1), MK_DEC(1, 0)), 0);
	ck_assert_int_eq(mk_dec_cmp(MK_DEC(INT64_MAX, 18), MK_DEC(INT64_MAX, 0)),
			 -1);
	/* Division whose intermediate would overflow 128 bits. */
	ck_assert_int_eq(mk_dec_div(MK_DEC(INT64_MAX, 0), MK_DEC(INT64_MAX, 18),
				    18, MK_ROUND_DOWN, &r), MK_ERANGE);
	ck_assert_int_eq(mk_dec_div(MK_DEC(INT64_MAX, 18), MK_DEC(INT64_MAX, 0),
				    18, MK_ROUND_HALF_EVEN, &r), MK_OK);
	ck_assert_int_eq(r.m, 1);
}
END_TEST

START_TEST(test_random_add_sub_cmp)
{
	struct tu_rng rng = TU_RNG_INIT(20261125);
	mpq_t x, y, z;

	mpq_inits(x, y, z, NULL);
	for (int i = 0; i < RANDOM_CASES; i++) {
		struct mk_dec a = rand_dec(&rng), b = rand_dec(&rng), r;
		int s = a.scale > b.scale ? a.scale : b.scale;
		enum mk_status st;

		ref_value(x, a);
		ref_value(y, b);
		mpq_add(z, x, y);
		r = MK_DEC(0, 0);
		st = mk_dec_add(a, b, &r);
		expect_result("add", st, r, z, s, MK_ROUND_EXACT);
		mpq_sub(z, x, y);
		st = mk_dec_sub(a, b, &r);
		expect_result("sub", st, r, z, s, MK_ROUND_EXACT);
		ck_assert_int_eq(mk_dec_cmp(a, b), mpq_cmp(x, y) > 0 ? 1 :
				 mpq_cmp(x, y) < 0 ? -1 : 0);
	}
	mpq_clears(x, y, z, NULL);
}
END_TEST

START_TEST(test_random_mul_div_rescale)
{
	struct tu_rng rng = TU_RNG_INIT(7);
	mpq_t x, y, z;

	mpq_inits(x, y, z, NULL);
	for (int i = 0; i < RANDOM_CASES; i++) {
		struct mk_dec a = rand_dec(&rng), b = rand_dec(&rng), r;
		int s = (int)(tu_rng_next(&rng) % 19);
		enum mk_round mode = all_modes[tu_rng_next(&rng) % 7];
		enum mk_status st;

		ref_value(x, a);
		ref_value(y, b);
		mpq_mul(z, x, y);
		r = MK_DEC(0, 0);
		st = mk_dec_mul(a, b, s, mode, &r);
		expect_result("mul", st, r, z, s, mode);
		if (b.m != 0) {
			mpq_div(z, x, y);
			st = mk_dec_div(a, b, s, mode, &r);
			expect_result("div", st, r, z, s, mode);
		}
		st = mk_dec_rescale(a, s, mode, &r);
		expect_result("rescale", st, r, x, s, mode);
	}
	mpq_clears(x, y, z, NULL);
}
END_TEST

START_TEST(test_random_format_parse_roundtrip)
{
	struct tu_rng rng = TU_RNG_INIT(99);
	char buf[MK_DEC_STRLEN], want[128];
	mpz_t z;

	mpz_init(z);
	for (int i = 0; i < RANDOM_CASES; i++) {
		struct mk_dec a = rand_dec(&rng), b;
		size_t n = mk_dec_format(a, buf, sizeof(buf));
		size_t wl;
		int neg;

		ck_assert_uint_gt(n, 0);
		ck_assert_uint_eq(n, strlen(buf));
		ck_assert_int_eq(mk_dec_parse(buf, n, &b, NULL), MK_OK);
		ck_assert(b.m == a.m && b.scale == a.scale);
		/* Reference text: |m| in decimal, left-padded, point
		 * inserted scale digits from the right. */
		mpz_set_si(z, a.m);
		neg = mpz_sgn(z) < 0;
		mpz_abs(z, z);
		gmp_snprintf(want, sizeof(want), "%0*Zd", a.scale + 1, z);
		wl = strlen(want);
		if (a.scale > 0) {
			memmove(want + wl - (size_t)a.scale + 1,
				want + wl - (size_t)a.scale,
				(size_t)a.scale + 1);
			want[wl - (size_t)a.scale] = '.';
		}
		ck_assert_str_eq(buf + neg, want);
		ck_assert_int_eq(buf[0] == '-', neg);
	}
	mpz_clear(z);
}
END_TEST

START_TEST(test_from_double_shortest)
{
	char buf[MK_DEC_STRLEN];
	struct mk_dec d;
	struct mk_err err;

	ck_assert_int_eq(mk_dec_from_double(0.1, &d, NULL), MK_OK);
	ck_assert_str_eq(fmt(d, buf), "0.1");
	ck_assert_int_eq(mk_dec_from_double(10645.0, &d, NULL), MK_OK);
	ck_assert_str_eq(fmt(d, buf), "10645");
	ck_assert_int_eq(mk_dec_from_double(-0.00012, &d, NULL), MK_OK);
	ck_assert_str_eq(fmt(d, buf), "-0.00012");
	ck_assert_int_eq(mk_dec_from_double(67123.45, &d, NULL), MK_OK);
	ck_assert_str_eq(fmt(d, buf), "67123.45");
	ck_assert_int_eq(mk_dec_from_double(1e25, &d, &err), MK_ERANGE);
	ck_assert_int_eq(mk_dec_from_double(1e300, &d, &err), MK_ERANGE);
	ck_assert_int_eq(mk_dec_from_double(1e-30, &d, &err), MK_ERANGE);
	ck_assert_int_eq(mk_dec_from_double(0.0 / 0.0, &d, &err), MK_EINVAL);
	ck_assert_ptr_nonnull(strstr(err.msg, "NaN"));
}
END_TEST

START_TEST(test_json_dec)
{
	char buf[MK_DEC_STRLEN];
	struct mk_dec d;
	struct mk_err err;
	json_t *v;

	v = json_string("40000.50");
	ck_assert_int_eq(mk_json_dec(v, &d, NULL), MK_OK);
	ck_assert_str_eq(fmt(d, buf), "40000.50");
	json_decref(v);
	v = json_integer(-12);
	ck_assert_int_eq(mk_json_dec(v, &d, NULL), MK_OK);
	ck_assert_str_eq(fmt(d, buf), "-12");
	json_decref(v);
	v = json_real(0.004);
	ck_assert_int_eq(mk_json_dec(v, &d, NULL), MK_OK);
	ck_assert_str_eq(fmt(d, buf), "0.004");
	json_decref(v);
	v = json_true();
	ck_assert_int_eq(mk_json_dec(v, &d, &err), MK_EINVAL);
	ck_assert_ptr_nonnull(strstr(err.msg, "got true"));
	ck_assert_int_eq(mk_json_dec(NULL, &d, &err), MK_EINVAL);
	v = json_string("NaN");
	ck_assert_int_eq(mk_json_dec(v, &d, &err), MK_EPARSE);
	json_decref(v);
}
END_TEST

static Suite *
dec_suite(void)
{
	Suite *s = suite_create("dec");
	TCase *tc = tcase_create("core");

	tcase_set_timeout(tc, 300);
	tcase_add_test(tc, test_parse_format_basic);
	tcase_add_test(tc, test_parse_edges);
	tcase_add_loop_test(tc, test_parse_malformed, 0,
			    (int)(sizeof(bad_inputs) / sizeof(bad_inputs[0])));
	tcase_add_test(tc, test_parse_not_nul_terminated);
	tcase_add_test(tc, test_rounding_modes_table);
	tcase_add_test(tc, test_arith_edges);
	tcase_add_test(tc, test_random_add_sub_cmp);
	tcase_add_test(tc, test_random_mul_div_rescale);
	tcase_add_test(tc, test_random_format_parse_roundtrip);
	tcase_add_test(tc, test_from_double_shortest);
	tcase_add_test(tc, test_json_dec);
	suite_add_tcase(s, tc);
	return s;
}

TU_MAIN(dec_suite)
