/*
 * exact.h - wide exact decimals for the margin kernels.
 *
 * The margin formulas multiply up to four decimals (N * CS * mmr * EP) and
 * then align scales, which can need some 500 bits; 128-bit intermediates
 * are not enough. A struct margin_num is the value
 * (neg ? -1 : 1) * mag * 10^-scale with a 1536-bit magnitude in 32-bit
 * limbs. Sums, differences and products are exact; the only rounding is
 * in margin_num_div, which produces a struct mk_dec. Inputs are 64-bit
 * mantissas with scales <= 18, so every expression the margin module
 * builds stays below about 900 bits; an operation that would still exceed
 * the magnitude sets the sticky `ovf` flag (like a NaN), which every
 * conversion reports as MK_ERANGE, so an overflow can never become a
 * wrong answer.
 *
 * No allocation: values live on the caller's stack (about 200 bytes
 * each). Functions are pure and reentrant; results may alias operands.
 */
#ifndef MARKD_MARGIN_EXACT_H
#define MARKD_MARGIN_EXACT_H

#include <stdbool.h>
#include <stdint.h>

#include "aggregator/dec.h"
#include "aggregator/status.h"

#define MARGIN_NUM_LIMBS 48

struct margin_num {
	int scale;          /* decimal digits after the point, >= 0 */
	uint16_t n;         /* limbs in use (0 for zero) */
	bool neg;           /* sign; never set for zero */
	bool ovf;           /* sticky: a result did not fit */
	uint32_t d[MARGIN_NUM_LIMBS];  /* magnitude, least significant first */
};

/* r = a (exact). */
void margin_num_set_dec(struct margin_num *r, struct mk_dec a);

/* r = v at scale 0. */
void margin_num_set_int(struct margin_num *r, int64_t v);

/* r = a + b, r = a - b, r = a * b (exact; ovf when it does not fit). */
void margin_num_add(struct margin_num *r, const struct margin_num *a,
		    const struct margin_num *b);
void margin_num_sub(struct margin_num *r, const struct margin_num *a,
		    const struct margin_num *b);
void margin_num_mul(struct margin_num *r, const struct margin_num *a,
		    const struct margin_num *b);

/* r = a * b and r = a * v for a decimal or an integer operand. */
void margin_num_mul_dec(struct margin_num *r, const struct margin_num *a,
			struct mk_dec b);
void margin_num_mul_int(struct margin_num *r, const struct margin_num *a,
			int64_t v);

/* r = -r. */
void margin_num_negate(struct margin_num *r);

/* -1, 0 or 1. Meaningless when ovf is set: check margin_num_ok first. */
int margin_num_sign(const struct margin_num *a);

/* False when the value overflowed somewhere on its way. */
bool margin_num_ok(const struct margin_num *a);

/*
 * a / b rounded to `scale` (0..18) with `mode`, as an mk_dec.
 * Errors: MK_EDIVZERO (b == 0), MK_ERANGE (an operand overflowed or the
 * quotient does not fit in 64 bits), MK_EINEXACT (MK_ROUND_EXACT and a
 * remainder), MK_EINVAL (bad scale). *out is unchanged on error.
 */
enum mk_status margin_num_div(const struct margin_num *a,
			      const struct margin_num *b, int scale,
			      enum mk_round mode, struct mk_dec *out);

/* Nearest double of a (about 1e-16 relative), and of a / b, for
 * statistics only. a / b with b == 0 is NaN. */
double margin_num_to_double(const struct margin_num *a);
double margin_num_ratio_double(const struct margin_num *a,
			       const struct margin_num *b);

#endif
