/*
 * topup.c - collateral to add for a target (margin ratio, health,
 * liquidation price, probability) and the most collateral that can be
 * removed (see math.h; margin-vectors.md section 4.5).
 *
 * Isolated collateral moves MB one for one and leaves MM alone, so every
 * top-up is a difference of exact amounts at one price, rounded up once.
 */
#include "config.h"

#include "margin/math_int.h"

#include <math.h>

/* max(0, num/den) rounded up to the amount scale. */
static enum mk_status
amount_up(const struct margin_num *num, const struct margin_num *den,
	  const struct margin_params *prm, struct mk_dec *out,
	  const char *what, struct mk_err *err)
{
	if (margin_num_ok(num) && margin_num_sign(num) <= 0) {
		*out = MK_DEC(0, prm->amount_scale);
		return MK_OK;
	}
	return margin_i_round(num, den, prm->amount_scale, MK_ROUND_CEIL, out,
			      what, err);
}

static enum mk_status
prepare(const struct margin_position *p, const struct margin_params *prm,
	struct mk_dec price, const char *price_what, struct mk_dec target,
	const char *target_what, struct margin_at *x, struct mk_err *err)
{
	enum mk_status st = margin_i_check(p, prm, price, price_what, err);

	if (st != MK_OK)
		return st;
	if (!mk_dec_is_pos(target))
		return mk_err_set(err, MK_EINVAL, "%s: must be positive",
				  target_what);
	if (margin_i_at(p, price, x) != MK_OK)
		return mk_err_set(err, MK_ERANGE, "%s: out of range",
				  price_what);
	return MK_OK;
}

enum mk_status
margin_topup_margin_ratio(const struct margin_position *p,
			  const struct margin_params *prm, struct mk_dec price,
			  struct mk_dec target, struct mk_dec *out,
			  struct mk_err *err)
{
	struct margin_at x;
	struct margin_num num, den;
	enum mk_status st = prepare(p, prm, price, "price", target,
				    "targets.margin_ratio", &x, err);

	if (st != MK_OK)
		return st;
	/* MM/MR* - MB = (mn - MR* * bn) / (MR* * D) */
	margin_num_mul_dec(&num, &x.bn, target);
	margin_num_sub(&num, &x.mn, &num);
	margin_num_mul_dec(&den, &x.den, target);
	return amount_up(&num, &den, prm, out, "topup_margin_ratio", err);
}

enum mk_status
margin_topup_health(const struct margin_position *p,
		    const struct margin_params *prm, struct mk_dec price,
		    struct mk_dec target, struct mk_dec *out,
		    struct mk_err *err)
{
	struct margin_at x;
	struct margin_num num;
	enum mk_status st = prepare(p, prm, price, "price", target,
				    "targets.health", &x, err);

	if (st != MK_OK)
		return st;
	/* h* * MM - MB = (h* * mn - bn) / D */
	margin_num_mul_dec(&num, &x.mn, target);
	margin_num_sub(&num, &num, &x.bn);
	return amount_up(&num, &x.den, prm, out, "topup_health", err);
}

enum mk_status
margin_topup_liq_price(const struct margin_position *p,
		       const struct margin_params *prm, struct mk_dec target,
		       struct mk_dec *out, struct mk_err *err)
{
	struct margin_at x;
	struct margin_num num;
	enum mk_status st = prepare(p, prm, target, "targets.liq_price",
				    target, "targets.liq_price", &x, err);

	if (st != MK_OK)
		return st;
	/* With WB* = WB + delta, MB(LP*) = MM(LP*) exactly, MM taken in the
	 * bracket of the notional at LP*: delta = MM(LP*) - MB(LP*). This is
	 * the per-kind WB* formula of section 4.5 minus WB. f grows with WB,
	 * so any more collateral moves the liquidation price further away. */
	margin_num_sub(&num, &x.mn, &x.bn);
	return amount_up(&num, &x.den, prm, out, "topup_liq_price", err);
}

enum mk_status
margin_topup_probability(const struct margin_position *p,
			 const struct margin_params *prm, struct mk_dec price,
			 double prob, const struct margin_vol *v,
			 struct mk_dec *liq_price, struct mk_dec *out,
			 struct mk_err *err)
{
	struct mk_dec lp;
	double d, target;
	enum mk_status st = margin_i_check(p, prm, price, "price", err);

	if (st == MK_OK)
		st = margin_vol_check(v, err);
	if (st != MK_OK)
		return st;
	if (!(prob > 0.0 && prob < 1.0))
		return mk_err_set(err, MK_EINVAL,
				  "targets.probability: must be between 0 "
				  "and 1 (exclusive)");
	d = margin_prob_distance(p->side, prob, v);
	target = mk_dec_to_double(price) *
		 exp(p->side == MARGIN_LONG ? -d : d);
	if (!isfinite(target) ||
	    mk_dec_from_double(target, &lp, NULL) != MK_OK ||
	    mk_dec_rescale(lp, prm->price_scale, MK_ROUND_HALF_EVEN, &lp) !=
		    MK_OK)
		return mk_err_set(err, MK_ERANGE,
				  "targets.probability: the target "
				  "liquidation price is out of range");
	if (!mk_dec_is_pos(lp))
		return mk_err_set(err, MK_ERANGE,
				  "targets.probability: the target "
				  "liquidation price rounds to 0");
	if (liq_price != NULL)
		*liq_price = lp;
	return margin_topup_liq_price(p, prm, lp, out, err);
}

enum mk_status
margin_max_removable(const struct margin_position *p,
		     const struct margin_params *prm, struct mk_dec price,
		     struct mk_dec health, struct mk_dec *out,
		     struct mk_err *err)
{
	struct margin_at x;
	struct margin_num num, den, t;
	struct mk_dec a, best = p->collateral;
	enum mk_status st = prepare(p, prm, price, "price", health,
				    "targets.removable_health", &x, err);

	if (st != MK_OK)
		return st;
	/* MB - IM. With a leverage IM = nn / (D*L), so MB - IM =
	 * (bn*L - nn) / (D*L). With the implied one IM = WB*up/down (up/down
	 * = P/EP linear, EP/P inverse), so MB - IM =
	 * (bn*down - WB*up*D) / (D*down). */
	if (p->has_leverage) {
		margin_num_mul_dec(&num, &x.bn, p->leverage);
		margin_num_sub(&num, &num, &x.nn);
		margin_num_mul_dec(&den, &x.den, p->leverage);
	} else {
		struct mk_dec up = p->kind == MARGIN_LINEAR ? price
							    : p->entry_price;
		struct mk_dec down = p->kind == MARGIN_LINEAR ? p->entry_price
							      : price;

		margin_num_mul_dec(&num, &x.bn, down);
		margin_num_mul_dec(&t, &x.den, p->collateral);
		margin_num_mul_dec(&t, &t, up);
		margin_num_sub(&num, &num, &t);
		margin_num_mul_dec(&den, &x.den, down);
	}
	st = margin_i_round(&num, &den, prm->amount_scale, MK_ROUND_FLOOR, &a,
			    "max_removable", err);
	if (st != MK_OK)
		return st;
	if (mk_dec_cmp(a, best) < 0)
		best = a;
	/* MB - h * MM = (bn - h*mn) / D */
	margin_num_mul_dec(&num, &x.mn, health);
	margin_num_sub(&num, &x.bn, &num);
	st = margin_i_round(&num, &x.den, prm->amount_scale, MK_ROUND_FLOOR,
			    &a, "max_removable", err);
	if (st != MK_OK)
		return st;
	if (mk_dec_cmp(a, best) < 0)
		best = a;
	if (mk_dec_is_neg(best))
		best = MK_DEC(0, 0);
	return mk_dec_rescale(best, prm->amount_scale, MK_ROUND_FLOOR, out) ==
			       MK_OK
		       ? MK_OK
		       : mk_err_set(err, MK_ERANGE,
				    "max_removable: does not fit");
}
