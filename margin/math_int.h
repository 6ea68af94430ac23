/*
 * math_int.h - internal to margin/: the exact evaluation of a position at
 * one price, shared by math.c, liqprice.c and topup.c.
 *
 * Every amount at a price P is kept as a numerator over one positive
 * denominator D: D = 1 for linear, D = EP * P for inverse (the product
 * that clears 1/EP and 1/P). Sums and comparisons of amounts at the same
 * price then work on numerators only.
 */
#ifndef MARKD_MARGIN_MATH_INT_H
#define MARKD_MARGIN_MATH_INT_H

#include <stdbool.h>
#include <stddef.h>

#include "margin/exact.h"
#include "margin/math.h"

struct margin_at {
	struct margin_num den;  /* D > 0 */
	struct margin_num nn;   /* notional * D */
	struct margin_num un;   /* uPnL * D */
	struct margin_num bn;   /* MB * D */
	struct margin_num mn;   /* MM * D */
	size_t bracket;
};

/* Face value: Q (linear) or N * CS (inverse). */
void margin_i_face(const struct margin_position *p, struct margin_num *f);

/* Index of the bracket holding the notional num / den (den > 0, num >= 0):
 * the largest k with floor_k * den <= num. Sets *ovf on overflow. */
size_t margin_i_bracket(const struct margin_brackets *t,
			const struct margin_num *num,
			const struct margin_num *den, bool *ovf);

/* The position at `price` (> 0; 0 is accepted for linear, where every
 * formula holds at P = 0). MK_ERANGE when something overflowed. */
enum mk_status margin_i_at(const struct margin_position *p,
			   struct mk_dec price, struct margin_at *x);

/* The exact liquidation price num / den (den > 0) and its bracket; false
 * when there is none. Sets *ovf on overflow. */
bool margin_i_liq(const struct margin_position *p, struct margin_num *num,
		  struct margin_num *den, size_t *bracket, bool *ovf);

/* num / den rounded to scale with mode; errors go to err as
 * "<what>: <status>". */
enum mk_status margin_i_round(const struct margin_num *num,
			      const struct margin_num *den, int scale,
			      enum mk_round mode, struct mk_dec *out,
			      const char *what, struct mk_err *err);

/* Position, parameters and a positive price (field `what`) checked. */
enum mk_status margin_i_check(const struct margin_position *p,
			      const struct margin_params *prm,
			      struct mk_dec price, const char *what,
			      struct mk_err *err);

#endif
