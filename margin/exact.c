/*
 * exact.c - wide exact decimals (see exact.h).
 *
 * Magnitudes are little-endian arrays of 32-bit limbs; every limb product
 * and carry fits a uint64_t. Division is shift-and-subtract restricted to
 * quotients below 2^66: the margin module only divides to produce an
 * mk_dec, whose mantissa is below 2^63, so a larger quotient is an
 * MK_ERANGE anyway and is detected from the bit lengths before any work.
 */
#include "config.h"

#include "margin/exact.h"

#include <math.h>
#include <string.h>

typedef unsigned __int128 u128;

#define LIMBS MARGIN_NUM_LIMBS

static void
trim(struct margin_num *r)
{
	while (r->n > 0 && r->d[r->n - 1] == 0)
		r->n--;
	if (r->n == 0)
		r->neg = false;
}

static void
set_zero(struct margin_num *r)
{
	r->scale = 0;
	r->n = 0;
	r->neg = false;
	r->ovf = false;
}

static void
set_mag64(struct margin_num *r, uint64_t mag, bool neg, int scale)
{
	set_zero(r);
	r->scale = scale;
	r->d[0] = (uint32_t)mag;
	r->d[1] = (uint32_t)(mag >> 32);
	r->n = 2;
	r->neg = neg;
	trim(r);
}

static uint64_t
mag_of(int64_t m)
{
	/* Well defined for INT64_MIN: negate in unsigned arithmetic. */
	return m < 0 ? (uint64_t)0 - (uint64_t)m : (uint64_t)m;
}

void
margin_num_set_dec(struct margin_num *r, struct mk_dec a)
{
	set_mag64(r, mag_of(a.m), a.m < 0, a.scale < 0 ? 0 : a.scale);
	if (a.scale < 0 || a.scale > MK_DEC_MAX_SCALE)
		r->ovf = true;
}

void
margin_num_set_int(struct margin_num *r, int64_t v)
{
	set_mag64(r, mag_of(v), v < 0, 0);
}

bool
margin_num_ok(const struct margin_num *a)
{
	return !a->ovf;
}

int
margin_num_sign(const struct margin_num *a)
{
	if (a->n == 0)
		return 0;
	return a->neg ? -1 : 1;
}

void
margin_num_negate(struct margin_num *r)
{
	if (r->n != 0)
		r->neg = !r->neg;
}

/* mag(r) = mag(r) * m + add. */
static void
mag_mul_small(struct margin_num *r, uint32_t m, uint32_t add)
{
	uint64_t carry = add;

	for (unsigned i = 0; i < r->n; i++) {
		uint64_t t = (uint64_t)r->d[i] * m + carry;

		r->d[i] = (uint32_t)t;
		carry = t >> 32;
	}
	if (carry != 0) {
		if (r->n == LIMBS)
			r->ovf = true;
		else
			r->d[r->n++] = (uint32_t)carry;
	}
	trim(r);
}

/* Multiplies the magnitude by 10^k (k >= 0) and adds k to the scale. */
static void
scale_up(struct margin_num *r, int k)
{
	static const uint32_t p10[10] = {
		1u, 10u, 100u, 1000u, 10000u, 100000u, 1000000u,
		10000000u, 100000000u, 1000000000u,
	};

	r->scale += k;
	while (k > 0 && !r->ovf) {
		int step = k > 9 ? 9 : k;

		mag_mul_small(r, p10[step], 0);
		k -= step;
	}
}

static int
mag_cmp(const struct margin_num *a, const struct margin_num *b)
{
	if (a->n != b->n)
		return a->n > b->n ? 1 : -1;
	for (unsigned i = a->n; i-- > 0;) {
		if (a->d[i] != b->d[i])
			return a->d[i] > b->d[i] ? 1 : -1;
	}
	return 0;
}

/* mag(r) = mag(a) + mag(b); r may alias either (limb i is read before
 * it is written). Returns false when the sum does not fit. */
static bool
mag_add(struct margin_num *r, const struct margin_num *a,
	const struct margin_num *b)
{
	unsigned an = a->n, bn = b->n;
	unsigned n = an > bn ? an : bn;
	uint64_t carry = 0;

	for (unsigned i = 0; i < n; i++) {
		uint64_t t = carry;

		if (i < an)
			t += a->d[i];
		if (i < bn)
			t += b->d[i];
		r->d[i] = (uint32_t)t;
		carry = t >> 32;
	}
	r->n = (uint16_t)n;
	if (carry == 0)
		return true;
	if (n == LIMBS)
		return false;
	r->d[r->n++] = (uint32_t)carry;
	return true;
}

/* mag(r) = mag(a) - mag(b), requires mag(a) >= mag(b); r may alias
 * either. */
static void
mag_sub(struct margin_num *r, const struct margin_num *a,
	const struct margin_num *b)
{
	unsigned an = a->n, bn = b->n;
	uint64_t borrow = 0;

	for (unsigned i = 0; i < an; i++) {
		uint64_t x = a->d[i];
		uint64_t y = (i < bn ? b->d[i] : 0u) + borrow;

		r->d[i] = (uint32_t)(x - y);
		borrow = x < y;
	}
	r->n = (uint16_t)an;
	trim(r);
}

/* Copies the used part of a only. */
static void
copy_num(struct margin_num *r, const struct margin_num *a)
{
	r->scale = a->scale;
	r->n = a->n;
	r->neg = a->neg;
	r->ovf = a->ovf;
	memcpy(r->d, a->d, sizeof(uint32_t) * a->n);
}

/* a + b or a - b, with both taken at the larger scale. Only the operand
 * with the smaller scale is copied (and scaled). */
static void
add_signed(struct margin_num *r, const struct margin_num *a,
	   const struct margin_num *b, bool negate_b)
{
	struct margin_num tmp;
	const struct margin_num *x = a, *y = b;
	bool xneg, yneg, neg, ovf, fits = true;
	int scale;

	if (a->scale < b->scale) {
		copy_num(&tmp, a);
		scale_up(&tmp, b->scale - a->scale);
		x = &tmp;
	} else if (b->scale < a->scale) {
		copy_num(&tmp, b);
		scale_up(&tmp, a->scale - b->scale);
		y = &tmp;
	}
	xneg = x->neg;
	yneg = y->n != 0 && (y->neg != negate_b);
	scale = x->scale;
	ovf = x->ovf || y->ovf;
	if (xneg == yneg || x->n == 0 || y->n == 0) {
		neg = x->n != 0 ? xneg : yneg;
		fits = mag_add(r, x, y);
	} else if (mag_cmp(x, y) >= 0) {
		neg = xneg;
		mag_sub(r, x, y);
	} else {
		neg = yneg;
		mag_sub(r, y, x);
	}
	r->neg = neg;
	r->scale = scale;
	r->ovf = ovf || !fits;
	trim(r);
}

void
margin_num_add(struct margin_num *r, const struct margin_num *a,
	       const struct margin_num *b)
{
	add_signed(r, a, b, false);
}

void
margin_num_sub(struct margin_num *r, const struct margin_num *a,
	       const struct margin_num *b)
{
	add_signed(r, a, b, true);
}

void
margin_num_mul(struct margin_num *r, const struct margin_num *a,
	       const struct margin_num *b)
{
	uint32_t t[2 * LIMBS];
	unsigned n = (unsigned)a->n + b->n;
	bool ovf = a->ovf || b->ovf;
	bool neg = a->neg != b->neg;
	int scale = a->scale + b->scale;

	memset(t, 0, sizeof(uint32_t) * n);
	for (unsigned i = 0; i < a->n; i++) {
		uint64_t carry = 0;

		for (unsigned j = 0; j < b->n; j++) {
			uint64_t p = (uint64_t)a->d[i] * b->d[j] +
				     t[i + j] + carry;

			t[i + j] = (uint32_t)p;
			carry = p >> 32;
		}
		t[i + b->n] = (uint32_t)carry;
	}
	while (n > 0 && t[n - 1] == 0)
		n--;
	if (n > LIMBS) {
		ovf = true;
		n = LIMBS;
	}
	memcpy(r->d, t, sizeof(uint32_t) * n);
	r->n = (uint16_t)n;
	r->neg = neg;
	r->scale = scale;
	r->ovf = ovf;
	trim(r);
}

void
margin_num_mul_dec(struct margin_num *r, const struct margin_num *a,
		   struct mk_dec b)
{
	struct margin_num y;

	margin_num_set_dec(&y, b);
	margin_num_mul(r, a, &y);
}

void
margin_num_mul_int(struct margin_num *r, const struct margin_num *a,
		   int64_t v)
{
	struct margin_num y;

	margin_num_set_int(&y, v);
	margin_num_mul(r, a, &y);
}

static unsigned
bitlen(const struct margin_num *a)
{
	uint32_t top;
	unsigned bits;

	if (a->n == 0)
		return 0;
	top = a->d[a->n - 1];
	bits = 32u * ((unsigned)a->n - 1u);
	while (top != 0) {
		bits++;
		top >>= 1;
	}
	return bits;
}

/* mag(r) <<= k; ovf when the result would not fit. */
static void
mag_shl(struct margin_num *r, unsigned k)
{
	unsigned limbs = k / 32, bits = k % 32;
	unsigned n = r->n;

	if (n == 0)
		return;
	if (bitlen(r) + k > 32u * LIMBS) {
		r->ovf = true;
		return;
	}
	if (bits != 0) {
		uint32_t carry = 0;

		for (unsigned i = 0; i < n; i++) {
			uint32_t v = r->d[i];

			r->d[i] = (v << bits) | carry;
			carry = v >> (32 - bits);
		}
		if (carry != 0)
			r->d[n++] = carry;
	}
	if (limbs != 0) {
		memmove(r->d + limbs, r->d, sizeof(uint32_t) * n);
		memset(r->d, 0, sizeof(uint32_t) * limbs);
		n += limbs;
	}
	r->n = (uint16_t)n;
	trim(r);
}

static void
mag_shr1(struct margin_num *r)
{
	for (unsigned i = 0; i < r->n; i++) {
		uint32_t hi = i + 1 < r->n ? r->d[i + 1] : 0u;

		r->d[i] = (r->d[i] >> 1) | (hi << 31);
	}
	trim(r);
}

static u128
to_u128(const struct margin_num *a)
{
	u128 v = 0;

	for (unsigned i = a->n; i-- > 0;)
		v = (v << 32) | a->d[i];
	return v;
}

static void
set_u128(struct margin_num *r, u128 v)
{
	r->n = 0;
	while (v != 0) {
		r->d[r->n++] = (uint32_t)v;
		v >>= 32;
	}
}

enum mk_status
margin_num_div(const struct margin_num *a, const struct margin_num *b,
	       int scale, enum mk_round mode, struct mk_dec *out)
{
	struct margin_num x, y, s;
	bool neg, away = false;
	unsigned bx, by;
	u128 q = 0;
	int e, c;

	if (a->ovf || b->ovf)
		return MK_ERANGE;
	if (b->n == 0)
		return MK_EDIVZERO;
	if (scale < 0 || scale > MK_DEC_MAX_SCALE)
		return MK_EINVAL;
	neg = a->n != 0 && a->neg != b->neg;
	x = *a;
	y = *b;
	x.neg = y.neg = false;
	/* quotient mantissa = |a| * 10^e / |b| with e = scale + sb - sa */
	e = scale + b->scale - a->scale;
	if (e >= 0)
		scale_up(&x, e);
	else
		scale_up(&y, -e);
	if (x.ovf || y.ovf)
		return MK_ERANGE;
	bx = bitlen(&x);
	by = bitlen(&y);
	s = y;
	/* q >= 2^(bx - by - 1); anything at or above 2^64 cannot fit. */
	if (bx > by + 64)
		return MK_ERANGE;
	if (bx <= 128 && by <= 128) {
		/* both fit in 128 bits: divide directly */
		u128 xv = to_u128(&x), yv = to_u128(&y);

		q = xv / yv;
		set_u128(&x, xv % yv);
	} else if (bx >= by) {
		unsigned k = bx - by;

		mag_shl(&s, k);
		for (unsigned i = k + 1; i-- > 0;) {
			if (mag_cmp(&x, &s) >= 0) {
				mag_sub(&x, &x, &s);
				q |= (u128)1 << i;
			}
			mag_shr1(&s);
		}
	}
	/* x is the remainder now, x < y. Compare 2x with y as x with y - x
	 * (no shift, so no extra bit is needed). */
	if (x.n != 0) {
		mag_sub(&s, &y, &x);
		c = mag_cmp(&x, &s);
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
			away = c >= 0;
			break;
		case MK_ROUND_HALF_EVEN:
			away = c > 0 || (c == 0 && (q & 1u) != 0);
			break;
		}
	}
	if (away)
		q += 1;
	if (q > (neg ? (u128)INT64_MAX + 1u : (u128)INT64_MAX))
		return MK_ERANGE;
	if (neg && q == (u128)INT64_MAX + 1u)
		out->m = INT64_MIN;
	else
		out->m = neg ? -(int64_t)q : (int64_t)q;
	out->scale = scale;
	return MK_OK;
}

/* |a| = m * 2^e with m holding the top 64 bits (exact below 2^64). */
static double
mag_to_double(const struct margin_num *a, int *e2)
{
	unsigned bits = bitlen(a);
	struct margin_num t = *a;
	unsigned shift = bits > 64 ? bits - 64 : 0;
	uint64_t m = 0;

	*e2 = (int)shift;
	if (shift != 0) {
		unsigned limbs = shift / 32, rem = shift % 32;

		for (unsigned i = 0; i + limbs < t.n; i++)
			t.d[i] = t.d[i + limbs];
		t.n = (uint16_t)(t.n - limbs);
		for (unsigned k = 0; k < rem; k++)
			mag_shr1(&t);
	}
	for (unsigned i = t.n; i-- > 0;)
		m = (m << 32) | t.d[i];
	return (double)m;
}

/* x * 10^-k for k >= 0 without overflowing the intermediate power. */
static double
div_pow10(double x, int k)
{
	while (k > 300) {
		x /= 1e300;
		k -= 300;
	}
	while (k < -300) {
		x *= 1e300;
		k += 300;
	}
	return x / pow(10.0, (double)k);
}

double
margin_num_to_double(const struct margin_num *a)
{
	int e2;
	double m, v;

	if (a->n == 0)
		return 0.0;
	m = mag_to_double(a, &e2);
	v = div_pow10(ldexp(m, e2), a->scale);
	return a->neg ? -v : v;
}

double
margin_num_ratio_double(const struct margin_num *a, const struct margin_num *b)
{
	int ea, eb;
	double ma, mb, v;

	if (b->n == 0)
		return NAN;
	if (a->n == 0)
		return 0.0;
	ma = mag_to_double(a, &ea);
	mb = mag_to_double(b, &eb);
	v = div_pow10(ldexp(ma / mb, ea - eb), a->scale - b->scale);
	return a->neg != b->neg ? -v : v;
}
