/*
 * dec.c - exact decimal fixed-point arithmetic (see dec.h).
 *
 * Every operation works on sign and unsigned 128-bit magnitude. Bounds that
 * make this safe: a mantissa magnitude is at most 2^63 (< 9.3e18) and a
 * scale difference at most 18, so |m| * 10^18 < 9.3e36 and |a.m * b.m| <
 * 8.6e37, both far below 2^128 (3.4e38). Anything that could exceed these
 * bounds is checked before the multiplication.
 */
#include "config.h"

#include "aggregator/dec.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef unsigned __int128 u128;

#define MAG_LIMIT_POS ((u128)INT64_MAX)
#define MAG_LIMIT_NEG ((u128)INT64_MAX + 1u)

/* 10^k for 0 <= k <= 38 (10^38 < 2^128). */
static u128
pow10u(int k)
{
	u128 r = 1;

	for (int i = 0; i < k; i++)
		r *= 10u;
	return r;
}

static bool
scale_ok(int scale)
{
	return scale >= 0 && scale <= MK_DEC_MAX_SCALE;
}

static u128
magnitude(int64_t m)
{
	/* Well defined for INT64_MIN: negate in unsigned arithmetic. */
	return m < 0 ? (u128)0 - (u128)(int64_t)m : (u128)m;
}

/* Packs sign and magnitude into out; MK_ERANGE if it does not fit. */
static enum mk_status
pack(bool neg, u128 mag, int scale, struct mk_dec *out)
{
	if (mag > (neg ? MAG_LIMIT_NEG : MAG_LIMIT_POS))
		return MK_ERANGE;
	if (neg && mag == MAG_LIMIT_NEG)
		out->m = INT64_MIN;
	else
		out->m = neg ? -(int64_t)mag : (int64_t)mag;
	out->scale = scale;
	return MK_OK;
}

/*
 * The quotient magnitude q with remainder r of a division by d (r < d,
 * d > 0), of a value whose sign is neg, rounded with mode. Sets *q.
 * 2r < 2d <= 2 * 10^38 < 2^128, so doubling r cannot overflow.
 */
static enum mk_status
round_quotient(bool neg, u128 *q, u128 r, u128 d, enum mk_round mode)
{
	bool away = false;

	if (r == 0)
		return MK_OK;
	switch (mode) {
	case MK_ROUND_EXACT:
		return MK_EINEXACT;
	case MK_ROUND_DOWN:
		break;
	case MK_ROUND_UP:
		away = true;
		break;
	case MK_ROUND_FLOOR:
		away = neg;
		break;
	case MK_ROUND_CEIL:
		away = !neg;
		break;
	case MK_ROUND_HALF_UP:
		away = 2 * r >= d;
		break;
	case MK_ROUND_HALF_EVEN:
		away = 2 * r > d || (2 * r == d && (*q & 1u));
		break;
	}
	if (away)
		*q += 1;
	return MK_OK;
}

/* Divides sign/magnitude by d > 0 with rounding and packs at scale. */
static enum mk_status
div_round_pack(bool neg, u128 num, u128 d, int scale, enum mk_round mode,
	       struct mk_dec *out)
{
	u128 q = num / d;
	enum mk_status st;

	st = round_quotient(neg, &q, num % d, d, mode);
	if (st != MK_OK)
		return st;
	return pack(neg && q != 0, q, scale, out);
}

enum mk_status
mk_dec_rescale(struct mk_dec a, int scale, enum mk_round mode,
	       struct mk_dec *out)
{
	bool neg = a.m < 0;
	u128 mag = magnitude(a.m);

	if (!scale_ok(scale) || !scale_ok(a.scale))
		return MK_EINVAL;
	if (scale >= a.scale)
		return pack(neg, mag * pow10u(scale - a.scale), scale, out);
	return div_round_pack(neg, mag, pow10u(a.scale - scale), scale, mode,
			      out);
}

int
mk_dec_cmp(struct mk_dec a, struct mk_dec b)
{
	int s = a.scale > b.scale ? a.scale : b.scale;
	__int128 x = (__int128)a.m * (__int128)pow10u(s - a.scale);
	__int128 y = (__int128)b.m * (__int128)pow10u(s - b.scale);

	return (x > y) - (x < y);
}

static enum mk_status
add_signed(struct mk_dec a, struct mk_dec b, int sign_b, struct mk_dec *out)
{
	int s = a.scale > b.scale ? a.scale : b.scale;
	__int128 x, y, sum;

	if (!scale_ok(a.scale) || !scale_ok(b.scale))
		return MK_EINVAL;
	/* |x|, |y| < 9.3e36: the sum cannot overflow 128 bits. */
	x = (__int128)a.m * (__int128)pow10u(s - a.scale);
	y = (__int128)b.m * (__int128)pow10u(s - b.scale);
	sum = sign_b > 0 ? x + y : x - y;
	return pack(sum < 0, sum < 0 ? (u128)(-sum) : (u128)sum, s, out);
}

enum mk_status
mk_dec_add(struct mk_dec a, struct mk_dec b, struct mk_dec *out)
{
	return add_signed(a, b, 1, out);
}

enum mk_status
mk_dec_sub(struct mk_dec a, struct mk_dec b, struct mk_dec *out)
{
	return add_signed(a, b, -1, out);
}

enum mk_status
mk_dec_mul(struct mk_dec a, struct mk_dec b, int scale, enum mk_round mode,
	   struct mk_dec *out)
{
	bool neg = (a.m < 0) != (b.m < 0);
	u128 prod;
	int ps = a.scale + b.scale;

	if (!scale_ok(scale) || !scale_ok(a.scale) || !scale_ok(b.scale))
		return MK_EINVAL;
	/* |a.m| * |b.m| <= 2^126 < 2^128. */
	prod = magnitude(a.m) * magnitude(b.m);
	if (prod == 0)
		return pack(false, 0, scale, out);
	if (scale >= ps) {
		u128 f = pow10u(scale - ps);

		/* Any non-zero product times 10^k above 2^63 fails anyway;
		 * checking against the 128-bit limit first avoids wrapping. */
		if (prod > (~(u128)0) / f)
			return MK_ERANGE;
		return pack(neg, prod * f, scale, out);
	}
	return div_round_pack(neg, prod, pow10u(ps - scale), scale, mode, out);
}

enum mk_status
mk_dec_div(struct mk_dec a, struct mk_dec b, int scale, enum mk_round mode,
	   struct mk_dec *out)
{
	bool neg = (a.m < 0) != (b.m < 0);
	u128 num = magnitude(a.m), den = magnitude(b.m);
	u128 q, r;
	int e;

	if (!scale_ok(scale) || !scale_ok(a.scale) || !scale_ok(b.scale))
		return MK_EINVAL;
	if (den == 0)
		return MK_EDIVZERO;
	/* result = a.m * 10^e / b.m with e = scale + b.scale - a.scale. */
	e = scale + b.scale - a.scale;
	if (e < 0)
		return div_round_pack(neg, num, den * pow10u(-e), scale, mode,
				      out);
	/* Long division one decimal digit at a time: r < den < 2^64, so
	 * r * 10 fits, and q is checked against the int64 range each step. */
	q = num / den;
	r = num % den;
	for (int i = 0; i < e; i++) {
		if (q > MAG_LIMIT_NEG)
			return MK_ERANGE;
		r *= 10u;
		q = q * 10u + r / den;
		r %= den;
	}
	if (round_quotient(neg, &q, r, den, mode) != MK_OK)
		return MK_EINEXACT;
	return pack(neg && q != 0, q, scale, out);
}

enum mk_status
mk_dec_neg(struct mk_dec a, struct mk_dec *out)
{
	if (a.m == INT64_MIN)
		return MK_ERANGE;
	out->m = -a.m;
	out->scale = a.scale;
	return MK_OK;
}

enum mk_status
mk_dec_abs(struct mk_dec a, struct mk_dec *out)
{
	if (a.m >= 0) {
		*out = a;
		return MK_OK;
	}
	return mk_dec_neg(a, out);
}

struct mk_dec
mk_dec_from_int(int64_t v)
{
	return MK_DEC(v, 0);
}

/* Quotes at most 40 bytes of s for an error message, escaping
 * non-printable bytes. */
static void
quote_text(const char *s, size_t len, char *buf, size_t cap)
{
	size_t o = 0;

	buf[o++] = '"';
	for (size_t i = 0; i < len && i < 40 && o + 6 < cap; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c >= 0x20 && c < 0x7f && c != '"' && c != '\\')
			buf[o++] = (char)c;
		else
			o += (size_t)snprintf(buf + o, cap - o, "\\x%02x", c);
	}
	if (len > 40 && o + 4 < cap) {
		memcpy(buf + o, "...", 3);
		o += 3;
	}
	buf[o++] = '"';
	buf[o] = '\0';
}

static enum mk_status
parse_fail(struct mk_err *err, enum mk_status st, const char *s, size_t len,
	   const char *why)
{
	char q[200];

	quote_text(s, len, q, sizeof(q));
	return mk_err_set(err, st, "not a valid decimal %s: %s", q, why);
}

static bool
is_digit(char c)
{
	return c >= '0' && c <= '9';
}

enum mk_status
mk_dec_parse(const char *s, size_t len, struct mk_dec *out,
	     struct mk_err *err)
{
	size_t i = 0, int_start, int_len, frac_start = 0, frac_len = 0;
	size_t written;
	bool neg = false;
	u128 mag = 0;

	if (len == 0)
		return parse_fail(err, MK_EPARSE, s, len, "empty");
	if (s[0] == '-' || s[0] == '+') {
		neg = s[0] == '-';
		i = 1;
	}
	int_start = i;
	while (i < len && is_digit(s[i]))
		i++;
	int_len = i - int_start;
	if (i < len && s[i] == '.') {
		i++;
		frac_start = i;
		while (i < len && is_digit(s[i]))
			i++;
		frac_len = i - frac_start;
	}
	if (i < len) {
		const char *why = "unexpected character";

		if (s[i] == '.')
			why = "more than one decimal point";
		else if (s[i] == 'e' || s[i] == 'E')
			why = "exponents are not accepted";
		else if (s[i] == 'n' || s[i] == 'N' || s[i] == 'i' ||
			 s[i] == 'I')
			why = "NaN and Infinity are not numbers";
		else if (s[i] == ' ' || s[i] == '\t')
			why = "white space is not accepted";
		return parse_fail(err, MK_EPARSE, s, len, why);
	}
	if (int_len + frac_len == 0)
		return parse_fail(err, MK_EPARSE, s, len,
				  i == 0 ? "empty" : "no digits");
	/* Trailing fraction zeros carry no value: take them off, and put
	 * back as many as fit, so the written scale is kept when it can be. */
	written = frac_len;
	while (frac_len > 0 && s[frac_start + frac_len - 1] == '0')
		frac_len--;
	if (frac_len > MK_DEC_MAX_SCALE)
		return parse_fail(err, MK_ERANGE, s, len,
				  "more than 18 digits after the point");
	for (size_t k = 0; k < int_len + frac_len; k++) {
		char c = k < int_len ? s[int_start + k]
				     : s[frac_start + k - int_len];

		mag = mag * 10u + (u128)(unsigned)(c - '0');
		if (mag > MAG_LIMIT_NEG)
			return parse_fail(err, MK_ERANGE, s, len,
					  "too many digits for a 64-bit value");
	}
	while (frac_len < written && frac_len < MK_DEC_MAX_SCALE &&
	       mag * 10u <= (neg ? MAG_LIMIT_NEG : MAG_LIMIT_POS)) {
		mag *= 10u;
		frac_len++;
	}
	if (pack(neg && mag != 0, mag, (int)frac_len, out) != MK_OK)
		return parse_fail(err, MK_ERANGE, s, len,
				  "too many digits for a 64-bit value");
	return MK_OK;
}

enum mk_status
mk_dec_parse_scaled(const char *s, size_t len, int scale, enum mk_round mode,
		    struct mk_dec *out, struct mk_err *err)
{
	struct mk_dec d;
	enum mk_status st;

	st = mk_dec_parse(s, len, &d, err);
	if (st != MK_OK)
		return st;
	st = mk_dec_rescale(d, scale, mode, &d);
	if (st == MK_EINEXACT)
		return parse_fail(err, st, s, len,
				  "more digits after the point than allowed");
	if (st != MK_OK)
		return parse_fail(err, st, s, len,
				  "too large at the required scale");
	*out = d;
	return MK_OK;
}

size_t
mk_dec_format(struct mk_dec a, char *buf, size_t cap)
{
	char digits[40];
	size_t nd = 0, o = 0;
	/* |int64| fits in 64 bits: 64-bit division is far cheaper */
	uint64_t mag = (uint64_t)magnitude(a.m);

	if (cap < MK_DEC_STRLEN || !scale_ok(a.scale))
		return 0;
	do {
		digits[nd++] = (char)('0' + (int)(mag % 10u));
		mag /= 10u;
	} while (mag != 0);
	while (nd <= (size_t)a.scale)
		digits[nd++] = '0';
	if (a.m < 0)
		buf[o++] = '-';
	while (nd > (size_t)a.scale)
		buf[o++] = digits[--nd];
	if (a.scale > 0) {
		buf[o++] = '.';
		while (nd > 0)
			buf[o++] = digits[--nd];
	}
	buf[o] = '\0';
	return o;
}

size_t
mk_dec_format_scaled(struct mk_dec a, int scale, enum mk_round mode,
		     char *buf, size_t cap)
{
	struct mk_dec r;

	if (mk_dec_rescale(a, scale, mode, &r) != MK_OK)
		return 0;
	return mk_dec_format(r, buf, cap);
}

enum mk_status
mk_dec_from_double(double v, struct mk_dec *out, struct mk_err *err)
{
	char sci[40], plain[64];
	char *p;
	long e10;
	int prec;
	size_t nd = 0, o = 0;
	char digits[24];

	if (!isfinite(v))
		return mk_err_set(err, MK_EINVAL,
				  "not a valid decimal: NaN or Infinity");
	/* Shortest %.Ne form that reads back as the same double. */
	for (prec = 1; prec <= 17; prec++) {
		snprintf(sci, sizeof(sci), "%.*e", prec - 1, v);
		if (strtod(sci, NULL) == v)
			break;
	}
	/* sci is [-]d[.ddd]e(+|-)XX */
	p = sci;
	if (*p == '-')
		plain[o++] = *p++;
	for (; *p != 'e'; p++)
		if (is_digit(*p))
			digits[nd++] = *p;
	e10 = strtol(p + 1, NULL, 10);
	/* value = digits * 10^(e10 - (nd - 1)) */
	e10 -= (long)nd - 1;
	if (e10 > 20 || e10 < -(long)MK_DEC_MAX_SCALE - 20)
		return mk_err_set(err, MK_ERANGE,
				  "number %s out of range", sci);
	if (e10 >= 0) {
		memcpy(plain + o, digits, nd);
		o += nd;
		for (long k = 0; k < e10; k++)
			plain[o++] = '0';
	} else {
		long frac = -e10;
		long ip = (long)nd - frac;

		if (ip <= 0) {
			plain[o++] = '0';
			plain[o++] = '.';
			for (long k = 0; k < -ip; k++)
				plain[o++] = '0';
			memcpy(plain + o, digits, nd);
			o += nd;
		} else {
			memcpy(plain + o, digits, (size_t)ip);
			o += (size_t)ip;
			plain[o++] = '.';
			memcpy(plain + o, digits + ip, nd - (size_t)ip);
			o += nd - (size_t)ip;
		}
	}
	plain[o] = '\0';
	return mk_dec_parse(plain, o, out, err);
}

double
mk_dec_to_double(struct mk_dec a)
{
	/* Statistics only: (double)m / 10^scale. */
	return (double)a.m / (double)pow10u(a.scale);
}
