/*
 * liqprice.c - the liquidation price (tier-consistent) and the bankruptcy
 * price (see math.h, margin_liquidation).
 *
 * Because 0 <= mmr < 1 and MM is continuous in the notional, f(P) = MB(P)
 * - MM(P) is strictly monotone in P, so there is at most one root. Each
 * bracket's linear piece gives one candidate; a candidate whose notional
 * lies inside its own bracket is a root of f, hence the root. The brackets
 * [floor, cap) partition [0, inf) (the last one open-ended), so when a
 * root exists exactly one candidate qualifies. Everything is exact: the
 * candidate is kept as a fraction and the bracket test cross-multiplies.
 */
#include "config.h"

#include "margin/math_int.h"

/* Candidate of bracket k as num/den with den > 0; false when it is not a
 * positive price. Linear: (WB + cum - s*Q*EP) / (Q*(mmr - s)). Inverse,
 * multiplied through by EP: F*(mmr + s)*EP / ((WB + cum)*EP + s*F). */
static bool
candidate(const struct margin_position *p, const struct margin_bracket *b,
	  const struct margin_num *f, struct margin_num *num,
	  struct margin_num *den)
{
	struct margin_num s, t, ep;
	int sd = p->side == MARGIN_LONG ? 1 : -1;

	margin_num_set_int(&s, sd);
	margin_num_set_dec(&ep, p->entry_price);
	margin_num_set_dec(&t, b->mmr);
	if (p->kind == MARGIN_LINEAR) {
		margin_num_sub(&t, &t, &s);             /* mmr - s */
		margin_num_mul(den, f, &t);
		margin_num_set_dec(num, p->collateral);
		margin_num_set_dec(&t, b->cum);
		margin_num_add(num, num, &t);           /* WB + cum */
		margin_num_mul(&t, f, &ep);
		if (sd > 0)
			margin_num_sub(num, num, &t);
		else
			margin_num_add(num, num, &t);
	} else {
		margin_num_add(&t, &t, &s);             /* mmr + s */
		margin_num_mul(num, f, &t);
		margin_num_mul(num, num, &ep);
		margin_num_set_dec(den, p->collateral);
		margin_num_set_dec(&t, b->cum);
		margin_num_add(den, den, &t);
		margin_num_mul(den, den, &ep);
		if (sd > 0)
			margin_num_add(den, den, f);
		else
			margin_num_sub(den, den, f);
	}
	if (margin_num_sign(den) < 0) {
		margin_num_negate(den);
		margin_num_negate(num);
	}
	return margin_num_sign(den) > 0 && margin_num_sign(num) > 0;
}

/* sign(nf - lim * nd): where the notional nf/nd (nd > 0) is against a
 * bracket bound. */
static int
against(const struct margin_num *nf, const struct margin_num *nd,
	struct mk_dec lim, bool *ovf)
{
	struct margin_num r;

	margin_num_mul_dec(&r, nd, lim);
	margin_num_sub(&r, nf, &r);
	*ovf = *ovf || !margin_num_ok(&r);
	return margin_num_sign(&r);
}

bool
margin_i_liq(const struct margin_position *p, struct margin_num *num,
	     struct margin_num *den, size_t *bracket, bool *ovf)
{
	const struct margin_brackets *t = p->brackets;
	struct margin_num f, nf, nd;

	margin_i_face(p, &f);
	for (size_t k = 0; k < t->n; k++) {
		const struct margin_bracket *b = &t->b[k];
		bool last = k + 1 == t->n;

		if (!candidate(p, b, &f, num, den)) {
			*ovf = *ovf || !margin_num_ok(num) ||
			       !margin_num_ok(den);
			continue;
		}
		/* notional at the candidate as nf / nd: linear Q*num/den,
		 * inverse F/(num/den) = F*den/num */
		if (p->kind == MARGIN_LINEAR) {
			margin_num_mul(&nf, &f, num);
			nd = *den;
		} else {
			margin_num_mul(&nf, &f, den);
			nd = *num;
		}
		if (against(&nf, &nd, b->floor, ovf) < 0)
			continue;
		if (!last && against(&nf, &nd, b->cap, ovf) >= 0)
			continue;
		*bracket = k;
		return !*ovf;
	}
	return false;
}

enum mk_status
margin_liquidation(const struct margin_position *p,
		   const struct margin_params *prm, struct margin_liq *out,
		   struct mk_err *err)
{
	struct margin_num num, den, f, t;
	bool ovf = false;
	size_t k = 0;
	enum mk_status st;

	st = margin_position_check(p, err);
	if (st == MK_OK)
		st = margin_params_check(prm, err);
	if (st != MK_OK)
		return st;
	out->has_price = margin_i_liq(p, &num, &den, &k, &ovf);
	out->out_of_range = false;
	out->bankruptcy_out_of_range = false;
	out->bracket = k;
	out->price = MK_DEC(0, prm->price_scale);
	if (ovf)
		return mk_err_set(err, MK_ERANGE,
				  "liquidation_price: out of range");
	if (out->has_price) {
		st = margin_num_div(&num, &den, prm->price_scale,
				    MK_ROUND_HALF_EVEN, &out->price);
		if (st == MK_ERANGE) {
			out->has_price = false;
			out->out_of_range = true;
			out->price = MK_DEC(0, prm->price_scale);
		} else if (st != MK_OK) {
			return mk_err_set(err, st, "liquidation_price: %s",
					  mk_strstatus(st));
		}
	}
	/* Bankruptcy, MB(P) = 0. Linear: (Q*EP - s*WB) / Q. Inverse:
	 * F*EP / (WB*EP + s*F) with s = +1 long, -1 short (the short form
	 * F*EP / (F - WB*EP) negated top and bottom). */
	margin_i_face(p, &f);
	margin_num_set_dec(&t, p->entry_price);
	if (p->kind == MARGIN_LINEAR) {
		margin_num_mul(&num, &f, &t);
		margin_num_set_dec(&t, p->collateral);
		if (p->side == MARGIN_LONG)
			margin_num_sub(&num, &num, &t);
		else
			margin_num_add(&num, &num, &t);
		den = f;
	} else {
		margin_num_mul(&num, &f, &t);
		margin_num_set_dec(&den, p->collateral);
		margin_num_mul(&den, &den, &t);
		if (p->side == MARGIN_LONG) {
			margin_num_add(&den, &den, &f);
		} else {
			margin_num_sub(&den, &f, &den);
		}
	}
	out->has_bankruptcy = margin_num_sign(&num) > 0 &&
			      margin_num_sign(&den) > 0;
	out->bankruptcy = MK_DEC(0, prm->price_scale);
	if (out->has_bankruptcy) {
		st = margin_num_div(&num, &den, prm->price_scale,
				    MK_ROUND_HALF_EVEN, &out->bankruptcy);
		if (st == MK_ERANGE) {
			out->has_bankruptcy = false;
			out->bankruptcy_out_of_range = true;
			out->bankruptcy = MK_DEC(0, prm->price_scale);
		} else if (st != MK_OK) {
			return mk_err_set(err, st, "bankruptcy_price: %s",
					  mk_strstatus(st));
		}
	}
	return MK_OK;
}
