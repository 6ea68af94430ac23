/*
 * check_margin_props.c - fixed-seed randomized properties of the margin
 * module, checked against GMP rationals: a slow reference written
 * straight from the formulas (notional, uPnL, MB, MM with the bracket of
 * the notional and cum from the recursion), with no scaling tricks.
 *
 * Over 100,000 random positions (linear and inverse, long and short,
 * random bracket tables and scales):
 *   - the exact root of MB - MM lies within one unit of the reported
 *     liquidation price (and within half a unit: half-even), the reported
 *     bracket holds the notional at the root, and "no liquidation price"
 *     happens exactly when the limit of MB - MM says so;
 *   - the figures at a random price equal the reference rounded half-even;
 *   - more collateral never moves a long's LP up or a short's down;
 *   - each suggested top-up (margin ratio, health, liquidation price),
 *     applied, meets its target, and one unit less does not;
 *   - the maximum removable collateral keeps IM and the target health;
 * and over random tick sequences through the state tracker, the verdict
 * flags equal the reference's and no position is ever liquidatable while
 * the mark is not valid for liquidation, or before K valid marks and T ms.
 */
#include "config.h"

#include <check.h>
#include <gmp.h>
#include <stdlib.h>
#include <string.h>

#include "aggregator/dec.h"
#include "margin/math.h"
#include "margin/position.h"
#include "margin/state.h"
#include "tests/testutil.h"

/* Check's ck_assert records its location through a system call on every
 * call; these only call into Check when the condition fails, which keeps
 * a million checks cheap. */
#define REQ(c)                                                              \
	do {                                                                \
		if (!(c))                                                   \
			ck_abort_msg("%s:%d: assertion '%s' failed", __FILE__, \
				     __LINE__, #c);                         \
	} while (0)
#define REQ_EQ(a, b) REQ((a) == (b))
#define REQ_MSG(c, ...)                                                     \
	do {                                                                \
		if (!(c))                                                   \
			ck_abort_msg(__VA_ARGS__);                          \
	} while (0)

#define POSITIONS 100000
#define SEQUENCES 3000
#define TICKS 40

/* ---- reference ------------------------------------------------------- */

static void
q_dec(mpq_t r, struct mk_dec d)
{
	mpz_t den;

	mpz_init(den);
	mpz_ui_pow_ui(den, 10, (unsigned long)d.scale);
	mpz_set_si(mpq_numref(r), d.m);
	mpz_set(mpq_denref(r), den);
	mpq_canonicalize(r);
	mpz_clear(den);
}

/* 10^-s */
static void
q_unit(mpq_t r, int s)
{
	q_dec(r, MK_DEC(1, s));
}

/* cum_k from the recursion, independent of margin_brackets_prepare. */
static void
ref_cum(mpq_t r, const struct margin_brackets *t, size_t k)
{
	mpq_t a, b, c;

	mpq_inits(a, b, c, NULL);
	mpq_set_ui(r, 0, 1);
	for (size_t i = 1; i <= k; i++) {
		q_dec(a, t->b[i].mmr);
		q_dec(b, t->b[i - 1].mmr);
		mpq_sub(a, a, b);
		q_dec(c, t->b[i].floor);
		mpq_mul(a, a, c);
		mpq_add(r, r, a);
	}
	mpq_clears(a, b, c, NULL);
}

static void
ref_face(mpq_t f, const struct margin_position *p)
{
	mpq_t cs;

	q_dec(f, p->size);
	if (p->kind == MARGIN_INVERSE) {
		mpq_init(cs);
		q_dec(cs, p->contract_size);
		mpq_mul(f, f, cs);
		mpq_clear(cs);
	}
}

static void
ref_notional(mpq_t n, const struct margin_position *p, const mpq_t price)
{
	ref_face(n, p);
	if (p->kind == MARGIN_LINEAR)
		mpq_mul(n, n, price);
	else
		mpq_div(n, n, price);
}

static size_t
ref_bracket(const struct margin_brackets *t, const mpq_t n)
{
	mpq_t fl;
	size_t k = 0;

	mpq_init(fl);
	for (size_t i = 0; i < t->n; i++) {
		q_dec(fl, t->b[i].floor);
		if (mpq_cmp(n, fl) >= 0)
			k = i;
	}
	mpq_clear(fl);
	return k;
}

/* notional, uPnL, MB, MM at price (> 0); returns the bracket. */
static size_t
ref_at(const struct margin_position *p, const mpq_t price, mpq_t n,
       mpq_t upnl, mpq_t mb, mpq_t mm)
{
	mpq_t f, ep, a, c;
	size_t k;

	mpq_inits(f, ep, a, c, NULL);
	ref_face(f, p);
	q_dec(ep, p->entry_price);
	ref_notional(n, p, price);
	if (p->kind == MARGIN_LINEAR) {
		mpq_sub(a, price, ep);
		mpq_mul(upnl, f, a);
	} else {
		mpq_inv(a, ep);
		mpq_inv(c, price);
		mpq_sub(a, a, c);
		mpq_mul(upnl, f, a);
	}
	if (p->side == MARGIN_SHORT)
		mpq_neg(upnl, upnl);
	q_dec(a, p->collateral);
	mpq_add(mb, a, upnl);
	k = ref_bracket(p->brackets, n);
	q_dec(a, p->brackets->b[k].mmr);
	mpq_mul(mm, n, a);
	ref_cum(c, p->brackets, k);
	mpq_sub(mm, mm, c);
	mpq_clears(f, ep, a, c, NULL);
	return k;
}

/* sign of MB - MM at price */
static int
ref_f_sign(const struct margin_position *p, const mpq_t price)
{
	mpq_t n, u, mb, mm;
	int s;

	mpq_inits(n, u, mb, mm, NULL);
	ref_at(p, price, n, u, mb, mm);
	s = mpq_cmp(mb, mm);
	mpq_clears(n, u, mb, mm, NULL);
	return s;
}

/* The root of MB = MM: the per-bracket candidate whose notional is in its
 * bracket, verified by evaluating MB - MM there (must be exactly 0). */
static bool
ref_root(const struct margin_position *p, mpq_t root, size_t *bracket)
{
	const struct margin_brackets *t = p->brackets;
	mpq_t f, ep, wb, mmr, cum, num, den, n, lim, s;
	bool found = false;
	long sd = p->side == MARGIN_LONG ? 1 : -1;

	mpq_inits(f, ep, wb, mmr, cum, num, den, n, lim, s, NULL);
	ref_face(f, p);
	q_dec(ep, p->entry_price);
	q_dec(wb, p->collateral);
	mpq_set_si(s, sd, 1);
	for (size_t k = 0; k < t->n && !found; k++) {
		q_dec(mmr, t->b[k].mmr);
		ref_cum(cum, t, k);
		if (p->kind == MARGIN_LINEAR) {
			/* (WB + cum - s*Q*EP) / (Q*(mmr - s)) */
			mpq_mul(num, f, ep);
			mpq_mul(num, num, s);
			mpq_sub(num, cum, num);
			mpq_add(num, num, wb);
			mpq_sub(den, mmr, s);
			mpq_mul(den, den, f);
		} else {
			/* F*(mmr + s) / (WB + cum + s*F/EP) */
			mpq_add(num, mmr, s);
			mpq_mul(num, num, f);
			mpq_div(den, f, ep);
			mpq_mul(den, den, s);
			mpq_add(den, den, wb);
			mpq_add(den, den, cum);
		}
		if (mpq_sgn(den) == 0)
			continue;
		mpq_div(root, num, den);
		if (mpq_sgn(root) <= 0)
			continue;
		ref_notional(n, p, root);
		q_dec(lim, t->b[k].floor);
		if (mpq_cmp(n, lim) < 0)
			continue;
		if (k + 1 < t->n) {
			q_dec(lim, t->b[k].cap);
			if (mpq_cmp(n, lim) >= 0)
				continue;
		}
		*bracket = k;
		found = true;
	}
	if (found)
		REQ_EQ(ref_f_sign(p, root), 0);
	mpq_clears(f, ep, wb, mmr, cum, num, den, n, lim, s, NULL);
	return found;
}

/* Whether a root must exist, from the limits of MB - MM (MM -> 0 where
 * the notional -> 0): a linear long has none iff WB >= Q*EP, an inverse
 * short none iff WB >= F/EP; the other two always have one. */
static bool
ref_root_expected(const struct margin_position *p)
{
	mpq_t f, ep, wb;
	bool r = true;

	mpq_inits(f, ep, wb, NULL);
	ref_face(f, p);
	q_dec(ep, p->entry_price);
	q_dec(wb, p->collateral);
	if (p->kind == MARGIN_LINEAR && p->side == MARGIN_LONG) {
		mpq_mul(f, f, ep);
		r = mpq_cmp(wb, f) < 0;
	} else if (p->kind == MARGIN_INVERSE && p->side == MARGIN_SHORT) {
		mpq_div(f, f, ep);
		r = mpq_cmp(wb, f) < 0;
	}
	mpq_clears(f, ep, wb, NULL);
	return r;
}

/* q rounded half-even to scale s, as an mk_dec (must fit). */
static struct mk_dec
ref_round(const mpq_t q, int s)
{
	mpz_t num, den, qt, r, twice;
	mpq_t x, u;
	struct mk_dec d;
	int c;

	mpz_inits(num, den, qt, r, twice, NULL);
	mpq_inits(x, u, NULL);
	q_unit(u, s);
	mpq_div(x, q, u);
	mpz_set(num, mpq_numref(x));
	mpz_set(den, mpq_denref(x));
	mpz_fdiv_qr(qt, r, num, den);
	mpz_mul_ui(twice, r, 2);
	c = mpz_cmp(twice, den);
	if (c > 0 || (c == 0 && mpz_odd_p(qt)))
		mpz_add_ui(qt, qt, 1);
	REQ(mpz_fits_slong_p(qt));
	d = MK_DEC(mpz_get_si(qt), s);
	mpz_clears(num, den, qt, r, twice, NULL);
	mpq_clears(x, u, NULL);
	return d;
}

/* ---- random positions ------------------------------------------------ */

static struct mk_dec
rnd_dec(struct tu_rng *g, int64_t lo, int64_t hi, int scale)
{
	int64_t p = 1;

	for (int i = 0; i < scale; i++)
		p *= 10;
	return MK_DEC(tu_rng_range(g, lo * p, hi * p), scale);
}

struct world {
	struct margin_brackets table;
	struct margin_position pos;
	struct margin_params prm;
};

static void
rnd_brackets(struct tu_rng *g, struct margin_brackets *t,
	     enum margin_kind kind)
{
	struct mk_dec floor = MK_DEC(0, 0), mmr;
	size_t n = (size_t)tu_rng_range(g, 1, 6);
	struct mk_err err;

	memset(t, 0, sizeof(*t));
	mmr = MK_DEC(tu_rng_range(g, 10, 200), 4);  /* 0.1% .. 2% */
	for (size_t k = 0; k < n; k++) {
		struct margin_bracket *b = &t->b[k];
		struct mk_dec width;

		b->floor = floor;
		b->mmr = mmr;
		if (kind == MARGIN_LINEAR)
			width = rnd_dec(g, 1000, 2000000, 0);
		else
			width = rnd_dec(g, 1, 500, 2);
		REQ(mk_dec_add(floor, width, &b->cap) == MK_OK);
		b->has_cap = k + 1 < n || tu_rng_range(g, 0, 1) == 0;
		floor = b->cap;
		REQ(mk_dec_add(mmr, MK_DEC(tu_rng_range(g, 0, 300), 4),
			       &mmr) == MK_OK);
	}
	t->n = n;
	REQ_MSG(margin_brackets_prepare(t, &err) == MK_OK, "%s", err.msg);
	/* half of the tables also state their cum (equal to the derived
	 * one), which must be accepted */
	if (tu_rng_range(g, 0, 1) == 0) {
		t->ready = false;
		REQ_MSG(margin_brackets_prepare(t, &err) == MK_OK, "%s",
			err.msg);
	}
}

static void
rnd_world(struct tu_rng *g, struct world *w)
{
	struct margin_position *p = &w->pos;
	struct mk_dec notional, lev;
	int ws = (int)tu_rng_range(g, 2, 8);
	int64_t pick;

	memset(w, 0, sizeof(*w));
	p->kind = tu_rng_range(g, 0, 1) == 0 ? MARGIN_LINEAR : MARGIN_INVERSE;
	p->side = tu_rng_range(g, 0, 1) == 0 ? MARGIN_LONG : MARGIN_SHORT;
	rnd_brackets(g, &w->table, p->kind);
	p->brackets = &w->table;
	p->entry_price = rnd_dec(g, 100, 100000, (int)tu_rng_range(g, 0, 6));
	if (p->kind == MARGIN_LINEAR) {
		int sq = (int)tu_rng_range(g, 0, 6);

		p->size = rnd_dec(g, 0, 100, sq);
		if (p->size.m == 0)
			p->size.m = 1;
		REQ(mk_dec_mul(p->size, p->entry_price, 8,
			       MK_ROUND_HALF_EVEN, &notional) == MK_OK);
	} else {
		static const int64_t cs[] = { 1, 10, 100 };

		p->size = MK_DEC(tu_rng_range(g, 1, 200000), 0);
		p->contract_size = MK_DEC(cs[tu_rng_range(g, 0, 2)], 0);
		REQ(mk_dec_mul(p->size, p->contract_size, 0,
			       MK_ROUND_EXACT, &notional) == MK_OK);
		REQ(mk_dec_div(notional, p->entry_price, 12,
			       MK_ROUND_HALF_EVEN, &notional) == MK_OK);
	}
	pick = tu_rng_range(g, 0, 19);
	if (pick == 0) {
		p->collateral = MK_DEC(0, 0);
	} else {
		/* leverage 0.5x .. 125x */
		lev = pick == 1 ? MK_DEC(5, 1)
				: rnd_dec(g, 1, 125, (int)tu_rng_range(g, 0, 2));
		if (lev.m == 0)
			lev = MK_DEC(1, 0);
		REQ(mk_dec_div(notional, lev, ws, MK_ROUND_HALF_EVEN,
			       &p->collateral) == MK_OK);
	}
	if (tu_rng_range(g, 0, 3) == 0) {
		p->has_leverage = true;
		p->leverage = rnd_dec(g, 1, 100, 0);
	}
	margin_params_default(&w->prm);
	w->prm.price_scale = (int)tu_rng_range(g, 2, 8);
	w->prm.amount_scale = p->kind == MARGIN_INVERSE
				      ? 8 : (int)tu_rng_range(g, 2, 8);
	w->prm.ratio_scale = 6;
}

/* A price around `c`: c * (1 + x), |x| <= 30%, at the price scale. */
static struct mk_dec
rnd_price(struct tu_rng *g, struct mk_dec c, int scale)
{
	struct mk_dec f = MK_DEC(tu_rng_range(g, 70000, 130000), 5), r;

	REQ(mk_dec_mul(c, f, scale, MK_ROUND_HALF_EVEN, &r) == MK_OK);
	if (!mk_dec_is_pos(r))
		r = MK_DEC(1, scale);
	return r;
}

static struct margin_liq
liq_of(const struct world *w)
{
	struct margin_liq l;
	struct mk_err err;

	REQ_MSG(margin_liquidation(&w->pos, &w->prm, &l, &err) == MK_OK,
		"%s", err.msg);
	return l;
}

/* ---- properties ------------------------------------------------------ */

static void
check_liq(const struct world *w, const struct margin_liq *l)
{
	mpq_t root, lp, u, x, half;
	size_t k = 0;
	bool has;

	mpq_init(root);
	has = ref_root(&w->pos, root, &k);
	REQ_EQ(has, ref_root_expected(&w->pos));
	if (l->out_of_range) {
		/* exists, but above what the price scale can hold */
		mpq_t big, unit;

		mpq_inits(big, unit, NULL);
		REQ(has && !l->has_price);
		mpq_set_si(big, INT64_MAX, 1);
		q_unit(unit, w->prm.price_scale);
		mpq_mul(big, big, unit);
		REQ(mpq_cmp(root, big) > 0);
		mpq_clears(big, unit, root, NULL);
		return;
	}
	REQ_EQ(l->has_price, has);
	if (!has) {
		mpq_clear(root);
		return;
	}
	mpq_inits(lp, u, x, half, NULL);
	REQ_EQ(l->bracket, k);
	q_dec(lp, l->price);
	q_unit(u, w->prm.price_scale);
	/* half-even: within half a unit of the root */
	mpq_sub(x, lp, root);
	mpq_abs(x, x);
	mpq_div_2exp(half, u, 1);
	REQ(mpq_cmp(x, half) <= 0);
	/* MB - MM changes sign within one unit of the reported price */
	mpq_add(x, lp, u);
	{
		int hi = ref_f_sign(&w->pos, x), lo = 0;

		mpq_sub(x, lp, u);
		if (mpq_sgn(x) > 0)
			lo = ref_f_sign(&w->pos, x);
		else
			lo = w->pos.side == MARGIN_LONG ? -1 : 1;
		REQ(lo == 0 || hi == 0 || lo != hi);
	}
	mpq_clears(root, lp, u, x, half, NULL);
}

static void
check_figures(const struct world *w, struct mk_dec price)
{
	struct margin_figures f;
	struct mk_err err;
	mpq_t n, up, mb, mm, pr;
	size_t k;
	int as = w->prm.amount_scale;

	REQ_MSG(margin_figures_at(&w->pos, &w->prm, price, &f, &err) ==
		MK_OK, "%s", err.msg);
	mpq_inits(n, up, mb, mm, pr, NULL);
	q_dec(pr, price);
	k = ref_at(&w->pos, pr, n, up, mb, mm);
	REQ_EQ(f.bracket, k);
	REQ(mk_dec_cmp(f.notional, ref_round(n, as)) == 0);
	REQ(mk_dec_cmp(f.unrealized_pnl, ref_round(up, as)) == 0);
	REQ(mk_dec_cmp(f.margin_balance, ref_round(mb, as)) == 0);
	REQ(mk_dec_cmp(f.maintenance_margin, ref_round(mm, as)) == 0);
	REQ_EQ(f.breached, mpq_cmp(mb, mm) < 0);
	REQ_EQ(f.bankrupt, mpq_sgn(mb) <= 0);
	mpq_clears(n, up, mb, mm, pr, NULL);
}

static void
check_more_collateral(struct world *w, const struct margin_liq *l)
{
	struct world v = *w;
	struct margin_liq m;

	v.pos.brackets = &v.table;
	REQ(mk_dec_add(v.pos.collateral,
		       MK_DEC(1 + (int64_t)(l->price.m % 1000),
			      w->prm.amount_scale),
		       &v.pos.collateral) == MK_OK);
	m = liq_of(&v);
	if (!l->has_price) {
		REQ(!m.has_price);
		return;
	}
	if (!m.has_price)
		return;  /* gone: further away than any price */
	if (w->pos.side == MARGIN_LONG)
		REQ(mk_dec_cmp(m.price, l->price) <= 0);
	else
		REQ(mk_dec_cmp(m.price, l->price) >= 0);
}

/* MB and MM of w at price after adding `delta`. */
static void
mb_mm_with(const struct world *w, struct mk_dec delta, const mpq_t price,
	   mpq_t mb, mpq_t mm)
{
	struct margin_position p = w->pos;
	mpq_t n, up;

	mpq_inits(n, up, NULL);
	REQ(mk_dec_add(p.collateral, delta, &p.collateral) == MK_OK);
	ref_at(&p, price, n, up, mb, mm);
	mpq_clears(n, up, NULL);
}

static struct mk_dec
minus_unit(struct mk_dec d)
{
	struct mk_dec r;

	REQ(mk_dec_sub(d, MK_DEC(1, d.scale), &r) == MK_OK);
	return r;
}

static void
check_topups(struct tu_rng *g, struct world *w, struct mk_dec price)
{
	struct mk_dec mr = MK_DEC(tu_rng_range(g, 100, 9000), 4);
	struct mk_dec h = MK_DEC(tu_rng_range(g, 10000, 100000), 4);
	struct mk_dec delta;
	struct mk_err err;
	mpq_t pr, mb, mm, t;

	mpq_inits(pr, mb, mm, t, NULL);
	q_dec(pr, price);

	/* margin ratio: MB' > 0 and MM <= MR* * MB' */
	REQ_MSG(margin_topup_margin_ratio(&w->pos, &w->prm, price, mr,
					  &delta, &err) == MK_OK,
		"%s", err.msg);
	REQ(!mk_dec_is_neg(delta));
	mb_mm_with(w, delta, pr, mb, mm);
	q_dec(t, mr);
	mpq_mul(t, t, mb);
	REQ(mpq_sgn(mb) > 0 && mpq_cmp(mm, t) <= 0);
	if (mk_dec_is_pos(delta)) {
		mb_mm_with(w, minus_unit(delta), pr, mb, mm);
		q_dec(t, mr);
		mpq_mul(t, t, mb);
		REQ(mpq_sgn(mb) <= 0 || mpq_cmp(mm, t) > 0);
	}

	/* health: MB' >= h * MM */
	REQ(margin_topup_health(&w->pos, &w->prm, price, h, &delta,
				&err) == MK_OK);
	mb_mm_with(w, delta, pr, mb, mm);
	q_dec(t, h);
	mpq_mul(t, t, mm);
	REQ(mpq_cmp(mb, t) >= 0);
	if (mk_dec_is_pos(delta)) {
		mb_mm_with(w, minus_unit(delta), pr, mb, mm);
		REQ(mpq_cmp(mb, t) < 0);
	}

	/* liquidation price: the new root is at or beyond the target */
	{
		struct world v = *w;
		struct mk_dec target = rnd_price(g, w->pos.entry_price,
						 w->prm.price_scale);
		mpq_t root, tq;
		size_t k;
		bool has;

		v.pos.brackets = &v.table;
		mpq_inits(root, tq, NULL);
		q_dec(tq, target);
		REQ(margin_topup_liq_price(&w->pos, &w->prm, target,
					   &delta, &err) == MK_OK);
		REQ(mk_dec_add(w->pos.collateral, delta,
			       &v.pos.collateral) == MK_OK);
		has = ref_root(&v.pos, root, &k);
		if (has) {
			int c = mpq_cmp(root, tq);

			REQ(w->pos.side == MARGIN_LONG ? c <= 0 : c >= 0);
		}
		if (mk_dec_is_pos(delta)) {
			REQ(mk_dec_add(w->pos.collateral,
				       minus_unit(delta),
				       &v.pos.collateral) == MK_OK);
			REQ(ref_root(&v.pos, root, &k));
			if (w->pos.side == MARGIN_LONG)
				REQ(mpq_cmp(root, tq) > 0);
			else
				REQ(mpq_cmp(root, tq) < 0);
		}
		mpq_clears(root, tq, NULL);
	}

	/* removable: keeps IM (as before) and the target health */
	{
		mpq_t im, x;

		mpq_inits(im, x, NULL);
		REQ(margin_max_removable(&w->pos, &w->prm, price, h,
					 &delta, &err) == MK_OK);
		REQ(!mk_dec_is_neg(delta));
		REQ(mk_dec_cmp(delta, w->pos.collateral) <= 0);
		/* exact IM: notional / L, or WB * n(P) / n(EP) */
		{
			mpq_t n, ne, ep;

			mpq_inits(n, ne, ep, NULL);
			ref_notional(n, &w->pos, pr);
			if (w->pos.has_leverage) {
				q_dec(x, w->pos.leverage);
				mpq_div(im, n, x);
			} else {
				q_dec(ep, w->pos.entry_price);
				ref_notional(ne, &w->pos, ep);
				q_dec(x, w->pos.collateral);
				mpq_mul(im, x, n);
				mpq_div(im, im, ne);
			}
			mpq_clears(n, ne, ep, NULL);
		}
		{
			struct mk_dec neg;

			REQ(mk_dec_neg(delta, &neg) == MK_OK);
			mb_mm_with(w, neg, pr, mb, mm);
		}
		if (mk_dec_is_pos(delta)) {
			REQ(mpq_cmp(mb, im) >= 0);
			q_dec(t, h);
			mpq_mul(t, t, mm);
			REQ(mpq_cmp(mb, t) >= 0);
		}
		mpq_clears(im, x, NULL);
	}
	mpq_clears(pr, mb, mm, t, NULL);
}

START_TEST(random_positions)
{
	struct tu_rng g = TU_RNG_INIT(20240611);
	static struct world w;
	size_t with_lp = 0, tier_moved = 0, at_floors = 0;

	for (int i = 0; i < POSITIONS; i++) {
		struct margin_liq l;
		struct mk_dec price, centre;

		rnd_world(&g, &w);
		w.pos.brackets = &w.table;
		l = liq_of(&w);
		check_liq(&w, &l);
		with_lp += l.has_price;
		centre = l.has_price && mk_dec_is_pos(l.price)
				 ? l.price : w.pos.entry_price;
		price = rnd_price(&g, centre, w.prm.price_scale);
		check_figures(&w, price);
		if (w.table.n > 1) {
			/* a price whose notional is exactly a floor */
			struct mk_dec at_floor, fl = w.table.b[
				tu_rng_range(&g, 1, (int64_t)w.table.n - 1)].floor;
			enum mk_status st;

			if (w.pos.kind == MARGIN_LINEAR) {
				st = mk_dec_div(fl, w.pos.size,
						w.prm.price_scale,
						MK_ROUND_EXACT, &at_floor);
			} else {
				struct mk_dec f;

				st = mk_dec_mul(w.pos.size,
						w.pos.contract_size, 0,
						MK_ROUND_EXACT, &f);
				if (st == MK_OK)
					st = mk_dec_div(f, fl,
							w.prm.price_scale,
							MK_ROUND_EXACT,
							&at_floor);
			}
			if (st == MK_OK && mk_dec_is_pos(at_floor)) {
				check_figures(&w, at_floor);
				at_floors++;
			}
		}
		if (l.has_price) {
			struct margin_figures f;
			struct mk_err err;

			REQ(margin_figures_at(&w.pos, &w.prm,
					      w.pos.entry_price, &f,
					      &err) == MK_OK);
			tier_moved += f.bracket != l.bracket;
		}
		check_more_collateral(&w, &l);
		if (i % 4 == 0)
			check_topups(&g, &w, price);
	}
	/* the generator must exercise what it claims to */
	ck_assert_uint_gt(with_lp, POSITIONS / 2);
	ck_assert_uint_gt(with_lp, 0);
	ck_assert_uint_gt(tier_moved, POSITIONS / 100);
	ck_assert_uint_gt(at_floors, POSITIONS / 100);
}
END_TEST

/* ---- random tick sequences through the tracker ----------------------- */

/* Reference flags at price +- conf from the rationals. */
static unsigned
ref_flags(const struct margin_position *p, const struct margin_params *prm,
	  struct mk_dec price, struct mk_dec conf)
{
	mpq_t pr, c, e, n, up, mb, mm, t;
	unsigned f = 0;
	int fav_dir = p->side == MARGIN_LONG ? 1 : -1;

	mpq_inits(pr, c, e, n, up, mb, mm, t, NULL);
	q_dec(pr, price);
	q_dec(c, conf);
	ref_at(p, pr, n, up, mb, mm);
	if (mpq_cmp(mb, mm) < 0)
		f |= MARGIN_FLAG_MARK_BREACH;
	if (mpq_sgn(mb) <= 0)
		f |= MARGIN_FLAG_MARK_BANKRUPT;
	for (int edge = 0; edge < 2; edge++) {
		int dir = edge == 0 ? fav_dir : -fav_dir;

		if (dir > 0)
			mpq_add(e, pr, c);
		else
			mpq_sub(e, pr, c);
		REQ(mpq_sgn(e) > 0);  /* the generator keeps conf < P */
		ref_at(p, e, n, up, mb, mm);
		if (edge == 0) {
			if (mpq_cmp(mb, mm) < 0)
				f |= MARGIN_FLAG_FAV_BREACH;
			if (mpq_sgn(mb) <= 0)
				f |= MARGIN_FLAG_FAV_BANKRUPT;
		} else {
			if (mpq_cmp(mb, mm) < 0)
				f |= MARGIN_FLAG_ADV_BREACH;
			if (mpq_sgn(mb) <= 0)
				f |= MARGIN_FLAG_ADV_BANKRUPT;
			mpq_set_ui(t, 10000 + prm->buffer_bps, 10000);
			mpq_mul(t, t, mm);
			if (mpq_cmp(mb, t) < 0)
				f |= MARGIN_FLAG_AT_RISK;
		}
	}
	mpq_clears(pr, c, e, n, up, mb, mm, t, NULL);
	return f;
}

#define LIQ MARGIN_STATE_LIQUIDATABLE
#define BKR MARGIN_STATE_BANKRUPT

START_TEST(random_tick_sequences)
{
	struct tu_rng g = TU_RNG_INIT(77);
	static struct world w;
	size_t liquidations = 0, held = 0, bankrupt = 0;

	for (int s = 0; s < SEQUENCES; s++) {
		struct margin_tracker tr;
		struct margin_liq l;
		struct mk_dec centre;
		uint64_t seq = 1, last_counted = 0;
		int64_t ms = 0, first = 0, held_since = -1;
		uint32_t count = 0;
		enum margin_state prev = MARGIN_STATE_NEW;

		rnd_world(&g, &w);
		w.pos.brackets = &w.table;
		w.prm.confirm_marks = (uint32_t)tu_rng_range(&g, 1, 4);
		w.prm.confirm_ms = tu_rng_range(&g, 0, 5000);
		l = liq_of(&w);
		centre = l.has_price && mk_dec_is_pos(l.price)
				 ? l.price : w.pos.entry_price;
		margin_tracker_init(&tr);
		for (int i = 0; i < TICKS; i++) {
			struct margin_tick tk;
			struct margin_decision d;
			struct margin_event ev;
			struct mk_err err;
			unsigned flags = 0;
			bool bad, confirmed;

			memset(&tk, 0, sizeof(tk));
			tk.price = rnd_price(&g, centre, w.prm.price_scale);
			REQ(mk_dec_mul(tk.price,
				       MK_DEC(tu_rng_range(&g, 0, 100),
					      4),
				       w.prm.price_scale,
				       MK_ROUND_DOWN, &tk.conf) == MK_OK);
			tk.valid_for_liquidation = tu_rng_range(&g, 0, 9) < 7;
			tk.status = tk.valid_for_liquidation ? 0 : 4;
			tk.sources_used = 3;
			if (tu_rng_range(&g, 0, 9) > 0)
				seq++;
			if (tu_rng_range(&g, 0, 99) == 0)
				seq = 1; /* the aggregator was rebuilt */
			tk.seq = seq;
			ms += tu_rng_range(&g, 0, 2500);
			tk.time_ms = ms;
			REQ_MSG(margin_step(&tr, &w.pos, &w.prm, &tk, &d,
					    &ev, &err) == MK_OK, "%s",
				err.msg);
			if (!tk.valid_for_liquidation) {
				if (held_since < 0)
					held_since = tk.time_ms;
				held++;
				REQ_EQ(d.state, MARGIN_STATE_HELD);
				REQ_EQ(d.breach_marks, count);
			} else {
				REQ(margin_verdict(&w.pos, &w.prm, tk.price,
						   tk.conf, &flags,
						   &err) == MK_OK);
				REQ_EQ(flags, ref_flags(&w.pos, &w.prm,
							tk.price, tk.conf));
				bad = flags & (MARGIN_FLAG_FAV_BREACH |
					       MARGIN_FLAG_FAV_BANKRUPT);
				/* an outage as long as the window, or a
				 * restarted seq, begins a new run */
				if (held_since >= 0 &&
				    tk.time_ms - held_since >= w.prm.confirm_ms)
					count = 0;
				if (count > 0 && tk.seq < last_counted)
					count = 0;
				held_since = -1;
				if (!bad) {
					count = 0;
				} else if (count == 0 ||
					   tk.seq > last_counted) {
					if (count == 0)
						first = tk.time_ms;
					count++;
					last_counted = tk.seq;
				}
				REQ_EQ(d.breach_marks, count);
				confirmed = bad &&
					    count >= w.prm.confirm_marks &&
					    tk.time_ms - first >=
						    w.prm.confirm_ms;
				REQ_EQ(confirmed,
				       d.state == LIQ || d.state == BKR);
				if (d.state == BKR)
					REQ(flags & MARGIN_FLAG_FAV_BANKRUPT);
				liquidations += d.state == LIQ;
				bankrupt += d.state == BKR;
				REQ_EQ(d.last_valid, d.state);
			}
			REQ_EQ(d.changed, d.state != prev);
			if (d.changed) {
				REQ_EQ(ev.from, prev);
				REQ_EQ(ev.to, d.state);
				REQ(mk_dec_cmp(ev.price, tk.price) == 0);
				REQ_EQ(ev.seq, tk.seq);
			}
			prev = d.state;
		}
	}
	ck_assert_uint_gt(liquidations, SEQUENCES / 20);
	ck_assert_uint_gt(bankrupt, 0);
	ck_assert_uint_gt(held, SEQUENCES);
}
END_TEST

static Suite *
props_suite(void)
{
	Suite *s = suite_create("margin_props");
	TCase *tc = tcase_create("random");

	tcase_set_timeout(tc, 600);
	tcase_add_test(tc, random_positions);
	tcase_add_test(tc, random_tick_sequences);
	suite_add_tcase(s, tc);
	return s;
}

TU_MAIN(props_suite)
