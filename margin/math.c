/*
 * math.c - the exact evaluation of a position at a price, the verdict
 * flags, greeks and the band evaluation (see math.h).
 *
 * Overflow argument: inputs are 64-bit mantissas with scales <= 18. The
 * widest expression here is 10000 * MB * D - (10000 + bps) * MM * D for
 * an inverse position: four decimal factors (N * CS * mmr * EP) and a
 * 14-bit integer, at most 4 * 64 + 14 bits, plus scale alignment of at
 * most 72 decimal digits (240 bits): about 510 bits, far inside the 1536
 * of struct margin_num. The ovf flags are still checked, so an argument
 * gone wrong would be an error, never a wrong decision.
 */
#include "config.h"

#include "margin/math_int.h"

#include <math.h>
#include <string.h>

void
margin_i_face(const struct margin_position *p, struct margin_num *f)
{
	margin_num_set_dec(f, p->size);
	if (p->kind == MARGIN_INVERSE)
		margin_num_mul_dec(f, f, p->contract_size);
}

size_t
margin_i_bracket(const struct margin_brackets *t, const struct margin_num *num,
		 const struct margin_num *den, bool *ovf)
{
	size_t lo = 0, hi = t->n - 1;

	/* floor_0 = 0 <= num: the answer is in [lo, hi]. */
	while (lo < hi) {
		size_t mid = lo + (hi - lo + 1) / 2;
		struct margin_num f;

		margin_num_mul_dec(&f, den, t->b[mid].floor);
		margin_num_sub(&f, num, &f);
		*ovf = *ovf || !margin_num_ok(&f);
		if (margin_num_sign(&f) >= 0)
			lo = mid;
		else
			hi = mid - 1;
	}
	return lo;
}

enum mk_status
margin_i_at(const struct margin_position *p, struct mk_dec price,
	    struct margin_at *x)
{
	struct margin_num f, pm, ep, t;
	const struct margin_bracket *b;
	bool ovf = false;

	margin_i_face(p, &f);
	margin_num_set_dec(&pm, price);
	margin_num_set_dec(&ep, p->entry_price);
	/* uPnL * D = s * F * (P - EP) in both kinds: for inverse,
	 * s*F*(1/EP - 1/P) * EP*P = s*F*(P - EP). */
	margin_num_sub(&t, &pm, &ep);
	margin_num_mul(&x->un, &f, &t);
	if (p->side == MARGIN_SHORT)
		margin_num_negate(&x->un);
	if (p->kind == MARGIN_LINEAR) {
		margin_num_set_int(&x->den, 1);
		margin_num_mul(&x->nn, &f, &pm);
	} else {
		margin_num_mul(&x->den, &ep, &pm);
		margin_num_mul(&x->nn, &f, &ep);
	}
	margin_num_mul_dec(&t, &x->den, p->collateral);
	margin_num_add(&x->bn, &t, &x->un);
	x->bracket = margin_i_bracket(p->brackets, &x->nn, &x->den, &ovf);
	b = &p->brackets->b[x->bracket];
	margin_num_mul_dec(&x->mn, &x->nn, b->mmr);
	margin_num_mul_dec(&t, &x->den, b->cum);
	margin_num_sub(&x->mn, &x->mn, &t);
	if (ovf || !margin_num_ok(&x->bn) || !margin_num_ok(&x->mn) ||
	    !margin_num_ok(&x->nn))
		return MK_ERANGE;
	return MK_OK;
}

enum mk_status
margin_i_round(const struct margin_num *num, const struct margin_num *den,
	       int scale, enum mk_round mode, struct mk_dec *out,
	       const char *what, struct mk_err *err)
{
	enum mk_status st = margin_num_div(num, den, scale, mode, out);

	if (st != MK_OK)
		return mk_err_set(err, st, "%s: %s at scale %d", what,
				  st == MK_ERANGE ? "does not fit"
						  : mk_strstatus(st), scale);
	return MK_OK;
}

enum mk_status
margin_i_check(const struct margin_position *p,
	       const struct margin_params *prm, struct mk_dec price,
	       const char *what, struct mk_err *err)
{
	enum mk_status st = margin_position_check(p, err);

	if (st == MK_OK)
		st = margin_params_check(prm, err);
	if (st == MK_OK && !mk_dec_is_pos(price))
		st = mk_err_set(err, MK_EINVAL, "%s: must be positive", what);
	return st;
}

/* sign(10000 * MB - (10000 + bps) * MM) >= 0, i.e. MB >= MM*(1+buffer). */
static bool
buffered(const struct margin_at *x, uint32_t bps, bool *ovf)
{
	struct margin_num a, b;

	margin_num_mul_int(&a, &x->bn, 10000);
	margin_num_mul_int(&b, &x->mn, 10000 + (int64_t)bps);
	margin_num_sub(&a, &a, &b);
	*ovf = *ovf || !margin_num_ok(&a);
	return margin_num_sign(&a) >= 0;
}

static bool
breached(const struct margin_at *x, bool *ovf)
{
	struct margin_num d;

	margin_num_sub(&d, &x->bn, &x->mn);
	*ovf = *ovf || !margin_num_ok(&d);
	return margin_num_sign(&d) < 0;
}

/* A ratio num/den half-even at the ratio scale, or absent when it does
 * not fit. */
static bool
ratio(const struct margin_num *num, const struct margin_num *den, int scale,
      struct mk_dec *out)
{
	return margin_num_div(num, den, scale, MK_ROUND_HALF_EVEN, out) ==
	       MK_OK;
}

static enum mk_status
figures_from(const struct margin_position *p, const struct margin_params *prm,
	     struct mk_dec price, const struct margin_at *x,
	     struct margin_figures *f, struct mk_err *err)
{
	const struct margin_brackets *t = p->brackets;
	const struct margin_bracket *last = &t->b[t->n - 1];
	struct margin_num im_num, im_den;
	enum mk_status st;
	bool ovf = false;
	int as = prm->amount_scale;

	memset(f, 0, sizeof(*f));
	f->price = price;
	st = margin_i_round(&x->nn, &x->den, as, MK_ROUND_HALF_EVEN,
			    &f->notional, "notional", err);
	if (st == MK_OK)
		st = margin_i_round(&x->un, &x->den, as, MK_ROUND_HALF_EVEN,
				    &f->unrealized_pnl, "unrealized_pnl", err);
	if (st == MK_OK)
		st = margin_i_round(&x->bn, &x->den, as, MK_ROUND_HALF_EVEN,
				    &f->margin_balance, "margin_balance", err);
	if (st == MK_OK)
		st = margin_i_round(&x->mn, &x->den, as, MK_ROUND_HALF_EVEN,
				    &f->maintenance_margin,
				    "maintenance_margin", err);
	if (st != MK_OK)
		return st;
	/* IM = notional / L, or WB * notional(P) / notional(EP) when the
	 * leverage is implied: WB*P/EP (linear), WB*EP/P (inverse). */
	if (p->has_leverage) {
		im_num = x->nn;
		margin_num_mul_dec(&im_den, &x->den, p->leverage);
	} else {
		struct mk_dec up = p->kind == MARGIN_LINEAR ? price
							    : p->entry_price;
		struct mk_dec down = p->kind == MARGIN_LINEAR ? p->entry_price
							      : price;

		margin_num_set_dec(&im_num, p->collateral);
		margin_num_mul_dec(&im_num, &im_num, up);
		margin_num_set_dec(&im_den, down);
	}
	st = margin_i_round(&im_num, &im_den, as, MK_ROUND_HALF_EVEN,
			    &f->initial_margin, "initial_margin", err);
	if (st != MK_OK)
		return st;
	if (margin_num_sign(&x->bn) > 0) {
		f->has_margin_ratio = ratio(&x->mn, &x->bn, prm->ratio_scale,
					    &f->margin_ratio);
		f->has_effective_leverage =
			ratio(&x->nn, &x->bn, prm->ratio_scale,
			      &f->effective_leverage);
	}
	if (margin_num_sign(&x->mn) > 0)
		f->has_health = ratio(&x->bn, &x->mn, prm->ratio_scale,
				      &f->health);
	f->bracket = x->bracket;
	if (x->bracket == t->n - 1 && last->has_cap) {
		struct margin_num c;

		margin_num_mul_dec(&c, &x->den, last->cap);
		margin_num_sub(&c, &x->nn, &c);
		ovf = !margin_num_ok(&c);
		f->beyond_cap = margin_num_sign(&c) >= 0;
	}
	f->breached = breached(x, &ovf);
	f->bankrupt = margin_num_sign(&x->bn) <= 0;
	f->buffered = buffered(x, prm->buffer_bps, &ovf);
	if (ovf)
		return mk_err_set(err, MK_ERANGE, "price: out of range");
	return MK_OK;
}

enum mk_status
margin_figures_at(const struct margin_position *p,
		  const struct margin_params *prm, struct mk_dec price,
		  struct margin_figures *out, struct mk_err *err)
{
	struct margin_at x;
	enum mk_status st = margin_i_check(p, prm, price, "price", err);

	if (st != MK_OK)
		return st;
	if (margin_i_at(p, price, &x) != MK_OK)
		return mk_err_set(err, MK_ERANGE, "price: out of range");
	return figures_from(p, prm, price, &x, out, err);
}

/* Flags of one edge: breached / bankrupt / not buffered, exact. An edge
 * price <= 0 is judged at the limit (see math.h). */
static enum mk_status
edge_flags(const struct margin_position *p, uint32_t bps, struct mk_dec price,
	   bool *breach, bool *bankrupt, bool *unbuffered)
{
	struct margin_at x;
	bool ovf = false;

	if (!mk_dec_is_pos(price)) {
		if (p->kind == MARGIN_INVERSE) {
			bool bad = p->side == MARGIN_LONG;

			*breach = *bankrupt = *unbuffered = bad;
			return MK_OK;
		}
		price = MK_DEC(0, 0);
	}
	if (margin_i_at(p, price, &x) != MK_OK)
		return MK_ERANGE;
	*breach = breached(&x, &ovf);
	*bankrupt = margin_num_sign(&x.bn) <= 0;
	*unbuffered = !buffered(&x, bps, &ovf);
	return ovf ? MK_ERANGE : MK_OK;
}

enum mk_status
margin_verdict(const struct margin_position *p,
	       const struct margin_params *prm, struct mk_dec price,
	       struct mk_dec conf, unsigned *flags, struct mk_err *err)
{
	struct mk_dec up, lo, fav, adv;
	bool mb, mk, fb, fk, ab, ak, au, unused;
	enum mk_status st;
	unsigned f = 0;

	if (!mk_dec_is_pos(price))
		return mk_err_set(err, MK_EINVAL, "price: must be positive");
	if (mk_dec_is_neg(conf))
		return mk_err_set(err, MK_EINVAL, "conf: must not be negative");
	st = margin_position_check(p, err);
	if (st != MK_OK)
		return st;
	if (mk_dec_add(price, conf, &up) != MK_OK ||
	    mk_dec_sub(price, conf, &lo) != MK_OK)
		return mk_err_set(err, MK_ERANGE, "conf: out of range");
	fav = p->side == MARGIN_LONG ? up : lo;
	adv = p->side == MARGIN_LONG ? lo : up;
	st = edge_flags(p, prm->buffer_bps, price, &mb, &mk, &unused);
	if (st == MK_OK && mk_dec_is_zero(conf)) {
		fb = ab = mb;
		fk = ak = mk;
		au = unused;
	} else {
		if (st == MK_OK)
			st = edge_flags(p, prm->buffer_bps, fav, &fb, &fk,
					&unused);
		if (st == MK_OK)
			st = edge_flags(p, prm->buffer_bps, adv, &ab, &ak,
					&au);
	}
	if (st != MK_OK)
		return mk_err_set(err, st, "price: out of range");
	f |= mb ? MARGIN_FLAG_MARK_BREACH : 0u;
	f |= mk ? MARGIN_FLAG_MARK_BANKRUPT : 0u;
	f |= fb ? MARGIN_FLAG_FAV_BREACH : 0u;
	f |= fk ? MARGIN_FLAG_FAV_BANKRUPT : 0u;
	f |= au ? MARGIN_FLAG_AT_RISK : 0u;
	f |= ab ? MARGIN_FLAG_ADV_BREACH : 0u;
	f |= ak ? MARGIN_FLAG_ADV_BANKRUPT : 0u;
	*flags = f;
	return MK_OK;
}

enum mk_status
margin_greeks_at(const struct margin_position *p,
		 const struct margin_params *prm, struct mk_dec price,
		 struct margin_greeks *out, struct mk_err *err)
{
	struct margin_num f, num, den;
	double s = p->side == MARGIN_LONG ? 1.0 : -1.0;
	double fd, pd;
	enum mk_status st = margin_i_check(p, prm, price, "price", err);

	if (st != MK_OK)
		return st;
	margin_i_face(p, &f);
	fd = margin_num_to_double(&f);
	pd = mk_dec_to_double(price);
	if (p->kind == MARGIN_LINEAR) {
		out->delta = s * fd;
		out->gamma = 0.0;
		out->exposure = p->size;
		if (p->side == MARGIN_SHORT)
			out->exposure.m = -out->exposure.m;  /* size > 0 */
		return MK_OK;
	}
	out->delta = s * fd / (pd * pd);
	out->gamma = -2.0 * s * fd / (pd * pd * pd);
	/* exposure = WB + s*F/EP = (WB*EP + s*F) / EP */
	margin_num_set_dec(&num, p->collateral);
	margin_num_mul_dec(&num, &num, p->entry_price);
	if (p->side == MARGIN_SHORT)
		margin_num_negate(&f);
	margin_num_add(&num, &num, &f);
	margin_num_set_dec(&den, p->entry_price);
	return margin_i_round(&num, &den, prm->amount_scale,
			      MK_ROUND_HALF_EVEN, &out->exposure, "exposure",
			      err);
}

/* Distance to the exact liquidation price lnum/lden from `price`. */
static void
risk_at(const struct margin_position *p, const struct margin_params *prm,
	struct mk_dec price, bool has_liq, const struct margin_num *lnum,
	const struct margin_num *lden, const struct margin_options *o,
	struct margin_risk *r)
{
	struct margin_num pn, num, den;

	memset(r, 0, sizeof(*r));
	r->has_stats = o != NULL && o->has_vol;
	if (!has_liq) {
		r->distance_log = HUGE_VAL;
		r->z = HUGE_VAL;
		return;
	}
	r->has_distance = true;
	/* 100 * s * (P - LP) / P = 100 * s * (P*lden - lnum) / (P*lden) */
	margin_num_set_dec(&pn, price);
	margin_num_mul(&den, &pn, lden);
	margin_num_sub(&num, &den, lnum);
	margin_num_mul_int(&num, &num, p->side == MARGIN_LONG ? 100 : -100);
	r->has_distance_pct = ratio(&num, &den, prm->ratio_scale,
				    &r->distance_pct);
	r->distance_log = log(margin_num_ratio_double(&den, lnum));
	if (p->side == MARGIN_SHORT)
		r->distance_log = -r->distance_log;
	if (!r->has_stats)
		return;
	r->z = margin_prob_z(r->distance_log, &o->vol);
	r->p_liq = margin_prob_touch(p->side, r->distance_log, &o->vol, true);
	r->p_liq_discrete = margin_prob_touch(p->side, r->distance_log,
					      &o->vol, false);
}

static enum mk_status
point_at(const struct margin_position *p, const struct margin_params *prm,
	 struct mk_dec price, bool has_liq, const struct margin_num *lnum,
	 const struct margin_num *lden, const struct margin_options *o,
	 struct mk_dec removable_health, struct margin_point *pt,
	 struct mk_err *err)
{
	const struct margin_targets *t = o != NULL ? &o->targets : NULL;
	struct margin_at x;
	enum mk_status st;

	memset(pt, 0, sizeof(*pt));
	if (!mk_dec_is_pos(price))
		return MK_OK;
	pt->has = true;
	if (margin_i_at(p, price, &x) != MK_OK)
		return mk_err_set(err, MK_ERANGE, "price: out of range");
	st = figures_from(p, prm, price, &x, &pt->fig, err);
	if (st == MK_OK)
		risk_at(p, prm, price, has_liq, lnum, lden, o, &pt->risk);
	if (st == MK_OK && t != NULL && t->has_margin_ratio) {
		pt->has_topup_margin_ratio = true;
		st = margin_topup_margin_ratio(p, prm, price, t->margin_ratio,
					       &pt->topup_margin_ratio, err);
	}
	if (st == MK_OK && t != NULL && t->has_health) {
		pt->has_topup_health = true;
		st = margin_topup_health(p, prm, price, t->health,
					 &pt->topup_health, err);
	}
	if (st == MK_OK && t != NULL && t->has_liq_price) {
		pt->has_topup_liq_price = true;
		st = margin_topup_liq_price(p, prm, t->liq_price,
					    &pt->topup_liq_price, err);
	}
	if (st == MK_OK && t != NULL && t->has_probability) {
		pt->has_topup_probability = true;
		st = margin_topup_probability(p, prm, price, t->probability,
					      &o->vol,
					      &pt->probability_liq_price,
					      &pt->topup_probability, err);
	}
	if (st == MK_OK)
		st = margin_max_removable(p, prm, price, removable_health,
					  &pt->max_removable, err);
	if (st == MK_OK)
		st = margin_greeks_at(p, prm, price, &pt->greeks, err);
	return st;
}

static enum mk_status
check_options(const struct margin_options *o, struct mk_err *err)
{
	const struct margin_targets *t = &o->targets;
	enum mk_status st;

	if (o->has_vol) {
		st = margin_vol_check(&o->vol, err);
		if (st != MK_OK)
			return st;
	}
	if (t->has_margin_ratio && !mk_dec_is_pos(t->margin_ratio))
		return mk_err_set(err, MK_EINVAL,
				  "targets.margin_ratio: must be positive");
	if (t->has_health && !mk_dec_is_pos(t->health))
		return mk_err_set(err, MK_EINVAL,
				  "targets.health: must be positive");
	if (t->has_liq_price && !mk_dec_is_pos(t->liq_price))
		return mk_err_set(err, MK_EINVAL,
				  "targets.liq_price: must be positive");
	if (t->has_removable_health && !mk_dec_is_pos(t->removable_health))
		return mk_err_set(err, MK_EINVAL,
				  "targets.removable_health: must be "
				  "positive");
	if (t->has_probability) {
		if (!(t->probability > 0.0 && t->probability < 1.0))
			return mk_err_set(err, MK_EINVAL,
					  "targets.probability: must be "
					  "between 0 and 1 (exclusive)");
		if (!o->has_vol)
			return mk_err_set(err, MK_EINVAL,
					  "targets.probability: needs a "
					  "volatility (sigma and horizon)");
	}
	return MK_OK;
}

enum mk_status
margin_evaluate(const struct margin_position *p,
		const struct margin_params *prm, struct mk_dec mark,
		struct mk_dec conf, const struct margin_options *o,
		struct margin_eval *out, struct mk_err *err)
{
	struct margin_num lnum, lden;
	struct mk_dec up, lo, rh;
	bool has_liq, ovf = false;
	size_t lb;
	enum mk_status st = margin_i_check(p, prm, mark, "price", err);

	if (st != MK_OK)
		return st;
	if (mk_dec_is_neg(conf))
		return mk_err_set(err, MK_EINVAL, "conf: must not be negative");
	if (o != NULL) {
		st = check_options(o, err);
		if (st != MK_OK)
			return st;
	}
	if (mk_dec_add(mark, conf, &up) != MK_OK ||
	    mk_dec_sub(mark, conf, &lo) != MK_OK)
		return mk_err_set(err, MK_ERANGE, "conf: out of range");
	if (o != NULL && o->targets.has_removable_health)
		rh = o->targets.removable_health;
	else
		rh = MK_DEC(10000 + (int64_t)prm->buffer_bps, 4);
	memset(out, 0, sizeof(*out));
	out->conf = conf;
	st = margin_liquidation(p, prm, &out->liq, err);
	if (st != MK_OK)
		return st;
	/* a liquidation price too large to show counts as none */
	has_liq = margin_i_liq(p, &lnum, &lden, &lb, &ovf) &&
		  out->liq.has_price;
	if (ovf)
		return mk_err_set(err, MK_ERANGE,
				  "liquidation_price: out of range");
	st = point_at(p, prm, mark, has_liq, &lnum, &lden, o, rh, &out->mark,
		      err);
	if (st == MK_OK)
		st = point_at(p, prm, p->side == MARGIN_LONG ? up : lo, has_liq,
			      &lnum, &lden, o, rh, &out->fav, err);
	if (st == MK_OK)
		st = point_at(p, prm, p->side == MARGIN_LONG ? lo : up, has_liq,
			      &lnum, &lden, o, rh, &out->adv, err);
	if (st == MK_OK)
		st = margin_verdict(p, prm, mark, conf, &out->flags, err);
	if (st == MK_OK && o != NULL && o->has_vol &&
	    o->targets.has_probability) {
		out->has_max_leverage = true;
		out->max_leverage = margin_max_leverage(
			p->kind, p->side,
			mk_dec_to_double(p->brackets->b[0].mmr),
			o->targets.probability, &o->vol);
	}
	return st;
}
