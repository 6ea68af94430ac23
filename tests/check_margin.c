/*
 * check_margin.c - the isolated-margin module against the test vectors
 * T1-T17 of margin-vectors.md (prices exact at 6 decimals, coin amounts at
 * 8, statistics within 1e-6 relative of values recomputed at 40 digits),
 * input validation, and the decision states with their confirmation
 * window.
 */
#include "config.h"

#include <check.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "aggregator/dec.h"
#include "margin/exact.h"
#include "margin/math.h"
#include "margin/position.h"
#include "margin/prob.h"
#include "margin/state.h"
#include "tests/testutil.h"

/* ---- helpers ---------------------------------------------------------- */

static struct mk_dec
D(const char *s)
{
	struct mk_dec d;
	struct mk_err err;

	ck_assert_msg(mk_dec_parse(s, strlen(s), &d, &err) == MK_OK,
		      "parse %s: %s", s, err.msg);
	return d;
}

#define ck_dec_eq(actual, expect)                                           \
	do {                                                                \
		struct mk_dec a_ = (actual);                                \
		char b_[MK_DEC_STRLEN];                                     \
		mk_dec_format(a_, b_, sizeof(b_));                          \
		ck_assert_msg(mk_dec_cmp(a_, D(expect)) == 0,               \
			      "%s = %s, expected %s", #actual, b_, expect); \
	} while (0)

#define ck_rel(actual, expect, tol)                                         \
	do {                                                                \
		double a_ = (actual), e_ = (expect);                        \
		ck_assert_msg(fabs(a_ - e_) <= (tol) * fabs(e_),            \
			      "%s = %.12g, expected %.12g", #actual, a_, e_); \
	} while (0)

#define ck_ok(call)                                                         \
	do {                                                                \
		struct mk_err e_ = { 0 };                                   \
		enum mk_status s_ = (call);                                 \
		(void)e_;                                                   \
		ck_assert_msg(s_ == MK_OK, "%s: %s", #call,                 \
			      mk_strstatus(s_));                            \
	} while (0)

static void
add_bracket(struct margin_brackets *t, const char *floor, const char *cap,
	    const char *mmr, const char *cum)
{
	struct margin_bracket *b = &t->b[t->n++];

	memset(b, 0, sizeof(*b));
	b->floor = D(floor);
	if (cap != NULL) {
		b->cap = D(cap);
		b->has_cap = true;
	}
	b->mmr = D(mmr);
	if (cum != NULL) {
		b->cum = D(cum);
		b->has_cum = true;
	}
}

static void
prepare(struct margin_brackets *t)
{
	struct mk_err err;

	ck_assert_msg(margin_brackets_prepare(t, &err) == MK_OK, "%s", err.msg);
}

/* Illustrative linear brackets (USDT), cum given as in the vectors. */
static struct margin_brackets lin_table;
/* Illustrative inverse brackets (BTC), cum left to be derived. */
static struct margin_brackets inv_table;

static void
setup_tables(void)
{
	memset(&lin_table, 0, sizeof(lin_table));
	add_bracket(&lin_table, "0", "50000", "0.004", "0");
	add_bracket(&lin_table, "50000", "250000", "0.005", "50");
	add_bracket(&lin_table, "250000", "1000000", "0.01", "1300");
	add_bracket(&lin_table, "1000000", "10000000", "0.025", "16300");
	add_bracket(&lin_table, "10000000", "20000000", "0.05", "266300");
	prepare(&lin_table);
	memset(&inv_table, 0, sizeof(inv_table));
	add_bracket(&inv_table, "0", "5", "0.005", NULL);
	add_bracket(&inv_table, "5", "10", "0.01", NULL);
	add_bracket(&inv_table, "10", "20", "0.025", NULL);
	prepare(&inv_table);
}

static struct margin_params
params_lin(void)
{
	struct margin_params p;

	margin_params_default(&p);
	p.price_scale = 6;
	p.amount_scale = 6;
	p.ratio_scale = 6;
	return p;
}

static struct margin_params
params_inv(void)
{
	struct margin_params p = params_lin();

	p.amount_scale = 8;
	return p;
}

static struct margin_position
lin(enum margin_side side, const char *q, const char *ep, const char *wb,
    const struct margin_brackets *t)
{
	struct margin_position p;

	memset(&p, 0, sizeof(p));
	p.kind = MARGIN_LINEAR;
	p.side = side;
	p.size = D(q);
	p.entry_price = D(ep);
	p.collateral = D(wb);
	p.brackets = t;
	return p;
}

static struct margin_position
inv(enum margin_side side, const char *n, const char *ep, const char *wb,
    const struct margin_brackets *t)
{
	struct margin_position p = lin(side, n, ep, wb, t);

	p.kind = MARGIN_INVERSE;
	p.contract_size = D("100");
	return p;
}

static struct margin_liq
liq(const struct margin_position *p, const struct margin_params *prm)
{
	struct margin_liq l;
	struct mk_err err;

	ck_assert_msg(margin_liquidation(p, prm, &l, &err) == MK_OK, "%s",
		      err.msg);
	return l;
}

static struct margin_figures
at(const struct margin_position *p, const struct margin_params *prm,
   const char *price)
{
	struct margin_figures f;
	struct mk_err err;

	ck_assert_msg(margin_figures_at(p, prm, D(price), &f, &err) == MK_OK,
		      "%s", err.msg);
	return f;
}

static struct margin_vol
vol24h(void)
{
	struct margin_vol v = { .sigma = 0.6, .horizon_s = 86400.0,
				.model = MARGIN_DRIFTLESS };

	return v;
}

/* ---- T1-T4: linear -------------------------------------------------- */

START_TEST(t1_linear_long_tier1)
{
	struct margin_params prm = params_lin();
	struct margin_position p = lin(MARGIN_LONG, "1", "40000", "2000",
				       &lin_table);
	struct margin_liq l = liq(&p, &prm);
	struct margin_figures f;
	struct margin_eval ev;
	struct margin_options o;
	struct mk_dec topup;
	struct mk_err err;

	ck_assert(l.has_price);
	ck_dec_eq(l.price, "38152.610442");
	ck_assert_uint_eq(l.bracket, 0);
	ck_assert(l.has_bankruptcy);
	ck_dec_eq(l.bankruptcy, "38000");

	f = at(&p, &prm, "39000");
	ck_assert_uint_eq(f.bracket, 0);
	ck_dec_eq(f.unrealized_pnl, "-1000");
	ck_dec_eq(f.margin_balance, "1000");
	ck_dec_eq(f.maintenance_margin, "156");
	ck_dec_eq(f.notional, "39000");
	ck_assert(f.has_margin_ratio && f.has_health &&
		  f.has_effective_leverage);
	ck_dec_eq(f.margin_ratio, "0.156");
	ck_dec_eq(f.health, "6.410256");
	ck_dec_eq(f.effective_leverage, "39");
	/* implied leverage 20x: IM = 2000 * 39000 / 40000 */
	ck_dec_eq(f.initial_margin, "1950");
	ck_assert(!f.breached && !f.bankrupt && f.buffered);

	memset(&o, 0, sizeof(o));
	o.has_vol = true;
	o.vol = vol24h();
	ck_assert_msg(margin_evaluate(&p, &prm, D("39000"), D("0"), &o, &ev,
				      &err) == MK_OK, "%s", err.msg);
	ck_assert(ev.mark.risk.has_distance && ev.mark.risk.has_stats);
	ck_rel(ev.mark.risk.p_liq, 0.48425228500864136, 1e-6);
	ck_assert(fabs(ev.mark.risk.p_liq - 0.48425) < 5e-6);
	/* distance 100 * (39000 - 38152.6104417...) / 39000 */
	ck_dec_eq(ev.mark.risk.distance_pct, "2.172794");

	f = at(&p, &prm, "38500");
	ck_dec_eq(f.margin_balance, "500");
	ck_dec_eq(f.maintenance_margin, "154");
	ck_dec_eq(f.margin_ratio, "0.308");
	ck_ok(margin_topup_margin_ratio(&p, &prm, D("38500"), D("0.1"),
					&topup, &err));
	ck_dec_eq(topup, "1040");
	ck_assert_int_eq(topup.scale, 6);
	ck_ok(mk_dec_add(p.collateral, topup, &p.collateral));
	l = liq(&p, &prm);
	ck_dec_eq(l.price, "37108.433735");
	f = at(&p, &prm, "38500");
	ck_dec_eq(f.margin_ratio, "0.1");
}
END_TEST

START_TEST(t2_linear_long_tier_drops)
{
	struct margin_params prm = params_lin();
	struct margin_position p = lin(MARGIN_LONG, "6", "45000", "27000",
				       &lin_table);
	struct margin_liq l = liq(&p, &prm);
	struct margin_figures f = at(&p, &prm, "45000");

	ck_assert_uint_eq(f.bracket, 2);  /* entry notional 270,000 */
	ck_assert(l.has_price);
	ck_dec_eq(l.price, "40695.142379");
	ck_assert_uint_eq(l.bracket, 1);
	ck_dec_eq(l.bankruptcy, "40500");
	f = at(&p, &prm, "40695.142379");
	ck_assert_uint_eq(f.bracket, 1);
}
END_TEST

START_TEST(t3_linear_short_tier_rises)
{
	struct margin_params prm = params_lin();
	struct margin_position p = lin(MARGIN_SHORT, "6", "40000", "48000",
				       &lin_table);
	struct margin_liq l = liq(&p, &prm);

	ck_assert_uint_eq(at(&p, &prm, "40000").bracket, 1);
	ck_assert(l.has_price);
	ck_dec_eq(l.price, "47739.273927");
	ck_assert_uint_eq(l.bracket, 2);
	ck_dec_eq(l.bankruptcy, "48000");
}
END_TEST

START_TEST(t4_linear_long_tier3)
{
	struct margin_params prm = params_lin();
	struct margin_position p = lin(MARGIN_LONG, "10", "40000", "40000",
				       &lin_table);
	struct margin_liq l = liq(&p, &prm);

	ck_dec_eq(l.price, "36232.323232");
	ck_assert_uint_eq(l.bracket, 2);
}
END_TEST

/* ---- T5-T9: inverse ------------------------------------------------- */

START_TEST(t5_inverse_long)
{
	struct margin_params prm = params_inv();
	struct margin_position p = inv(MARGIN_LONG, "100", "40000", "0.025",
				       &inv_table);
	struct margin_liq l = liq(&p, &prm);
	struct margin_figures f;
	struct mk_dec topup;
	struct mk_err err;

	ck_assert(l.has_price);
	ck_dec_eq(l.price, "36545.454545");
	ck_assert_uint_eq(l.bracket, 0);
	ck_dec_eq(l.bankruptcy, "36363.636364");
	f = at(&p, &prm, "38000");
	ck_dec_eq(f.unrealized_pnl, "-0.01315789");
	ck_dec_eq(f.margin_balance, "0.01184211");
	ck_dec_eq(f.maintenance_margin, "0.00131579");
	ck_dec_eq(f.margin_ratio, "0.111111");
	ck_dec_eq(f.health, "9");
	f = at(&p, &prm, "36800");
	ck_dec_eq(f.margin_ratio, "0.416667");
	ck_ok(margin_topup_margin_ratio(&p, &prm, D("36800"), D("0.2"), &topup,
					&err));
	ck_dec_eq(topup, "0.00353261");
	ck_ok(mk_dec_add(p.collateral, topup, &p.collateral));
	f = at(&p, &prm, "36800");
	ck_assert(mk_dec_cmp(f.margin_ratio, D("0.2")) <= 0);
}
END_TEST

START_TEST(t6_inverse_short)
{
	struct margin_params prm = params_inv();
	struct margin_position p = inv(MARGIN_SHORT, "100", "40000", "0.025",
				       &inv_table);
	struct margin_liq l = liq(&p, &prm);
	struct margin_figures f = at(&p, &prm, "42000");

	ck_assert(l.has_price);
	ck_dec_eq(l.price, "44222.222222");
	ck_dec_eq(l.bankruptcy, "44444.444444");
	ck_dec_eq(f.unrealized_pnl, "-0.01190476");
	ck_dec_eq(f.margin_balance, "0.01309524");
	ck_dec_eq(f.maintenance_margin, "0.00119048");
	ck_dec_eq(f.margin_ratio, "0.090909");
}
END_TEST

START_TEST(t7_inverse_short_1x_no_liquidation)
{
	struct margin_params prm = params_inv();
	struct margin_position p = inv(MARGIN_SHORT, "100", "40000", "0.25",
				       &inv_table);
	struct margin_liq l = liq(&p, &prm);
	struct margin_eval ev;
	struct margin_options o;
	struct mk_err err;
	unsigned flags;

	ck_assert(!l.has_price);
	ck_assert(!l.has_bankruptcy);
	memset(&o, 0, sizeof(o));
	o.has_vol = true;
	o.vol = vol24h();
	ck_ok(margin_evaluate(&p, &prm, D("1000000"), D("10"), &o, &ev, &err));
	ck_assert(!ev.mark.risk.has_distance);
	ck_assert(ev.mark.risk.p_liq == 0.0);
	/* even at a huge price the 1x short is not breached */
	ck_ok(margin_verdict(&p, &prm, D("100000000"), D("0"), &flags, &err));
	ck_assert_uint_eq(flags & MARGIN_FLAG_MARK_BREACH, 0);
	/* one satoshi less than 1x and a liquidation price appears */
	p.collateral = D("0.24999999");
	l = liq(&p, &prm);
	ck_assert(l.has_price);
}
END_TEST

START_TEST(t8_inverse_long_tier_rises)
{
	struct margin_params prm = params_inv();
	struct margin_position p = inv(MARGIN_LONG, "1900", "40000", "0.475",
				       &inv_table);
	struct margin_liq l = liq(&p, &prm);

	ck_assert_uint_eq(at(&p, &prm, "40000").bracket, 0);  /* 4.75 BTC */
	ck_dec_eq(l.price, "36552.380952");
	ck_assert_uint_eq(l.bracket, 1);
	/* cum of bracket 1 was derived: 5 * (0.01 - 0.005) */
	ck_dec_eq(inv_table.b[1].cum, "0.025");
	ck_dec_eq(inv_table.b[2].cum, "0.175");
}
END_TEST

START_TEST(t9_mm_at_liquidation_price)
{
	struct margin_params prm = params_inv();
	struct margin_brackets t;
	struct margin_position p;
	struct margin_liq l;

	memset(&t, 0, sizeof(t));
	add_bracket(&t, "0", NULL, "0.005", NULL);
	prepare(&t);
	p = inv(MARGIN_LONG, "600", "50000", "0.12", &t);
	l = liq(&p, &prm);
	/* MM at the liquidation price (Binance/UTA), not at entry (Bybit
	 * doc: 45,662.100457) */
	ck_dec_eq(l.price, "45681.818182");
}
END_TEST

/* ---- T10-T12: other venues' identities ------------------------------- */

START_TEST(t10_dydx_isolated)
{
	struct margin_params prm = params_lin();
	struct margin_brackets t;
	struct margin_position p;

	memset(&t, 0, sizeof(t));
	add_bracket(&t, "0", NULL, "0.05", "0");
	prepare(&t);
	p = lin(MARGIN_SHORT, "3", "3000", "1000", &t);
	ck_dec_eq(liq(&p, &prm).price, "3174.603175");
}
END_TEST

START_TEST(t11_hyperliquid_identity)
{
	struct margin_params prm = params_lin();
	struct margin_brackets t;
	struct margin_position p;

	memset(&t, 0, sizeof(t));
	add_bracket(&t, "0", NULL, "0.0125", NULL);
	prepare(&t);
	p = lin(MARGIN_LONG, "2", "3000", "600", &t);
	ck_dec_eq(liq(&p, &prm).price, "2734.177215");
}
END_TEST

START_TEST(t12_bitmex_inverse_pnl)
{
	struct margin_params prm = params_inv();
	struct margin_position p = inv(MARGIN_LONG, "1000", "1000", "1",
				       &inv_table);

	p.contract_size = D("1");
	ck_dec_eq(at(&p, &prm, "1250").unrealized_pnl, "0.2");
	p.size = D("100000");
	p.entry_price = D("10000");
	ck_dec_eq(at(&p, &prm, "10500").unrealized_pnl, "0.47619048");
}
END_TEST

/* ---- T13: probabilities and limits ------------------------------------ */

START_TEST(t13_probability_and_limits)
{
	struct margin_params prm = params_lin();
	struct margin_position p = lin(MARGIN_LONG, "1", "65760", "3288",
				       &lin_table);
	struct margin_liq l = liq(&p, &prm);
	struct margin_options o;
	struct margin_eval ev;
	struct margin_vol v = vol24h();
	struct mk_dec lp, topup;
	struct mk_err err;

	ck_assert_uint_eq(at(&p, &prm, "65760").bracket, 1);
	ck_dec_eq(l.price, "62735.678392");
	ck_assert_uint_eq(l.bracket, 1);

	memset(&o, 0, sizeof(o));
	o.has_vol = true;
	o.vol = v;
	ck_assert_msg(margin_evaluate(&p, &prm, D("65760"), D("0"), &o, &ev,
				      &err) == MK_OK, "%s", err.msg);
	ck_rel(ev.mark.risk.z, 1.4991491456729154, 1e-6);
	ck_rel(ev.mark.risk.p_liq, 0.13383494443135789, 1e-6);
	ck_rel(ev.mark.risk.p_liq_discrete, ev.mark.risk.p_liq, 1e-15);

	/* GBM with mu = 0, i.e. nu = -sigma^2/2 */
	o.vol.model = MARGIN_GBM;
	o.vol.mu = 0.0;
	ck_ok(margin_evaluate(&p, &prm, D("65760"), D("0"), &o, &ev, &err));
	ck_rel(ev.mark.risk.p_liq, 0.13701177843628245, 1e-6);

	/* driftless, sampled every minute: BGK */
	o.vol.model = MARGIN_DRIFTLESS;
	o.vol.sample_s = 60.0;
	ck_ok(margin_evaluate(&p, &prm, D("65760"), D("0"), &o, &ev, &err));
	ck_rel(ev.mark.risk.p_liq_discrete, 0.12989856601386062, 1e-6);
	ck_rel(ev.mark.risk.p_liq, 0.13383494443135789, 1e-6);

	/* p <= 1% within 24 h */
	ck_rel(margin_prob_distance(MARGIN_LONG, 0.01, &v),
	       0.080895040679183034, 1e-9);
	ck_ok(margin_topup_probability(&p, &prm, D("65760"), 0.01, &v, &lp,
				       &topup, &err));
	ck_dec_eq(lp, "60649.822580");
	ck_dec_eq(topup, "2075.426533");
	ck_ok(mk_dec_add(p.collateral, topup, &p.collateral));
	l = liq(&p, &prm);
	ck_assert(mk_dec_cmp(l.price, lp) <= 0);
	ck_assert(margin_prob_touch(MARGIN_LONG,
				    log(65760.0 / mk_dec_to_double(l.price)),
				    &v, true) <= 0.01 * (1 + 1e-6));

	/* maximum leverage, tier 1 (0.4%), p = 1%, 24 h */
	ck_rel(margin_max_leverage(MARGIN_LINEAR, MARGIN_LONG, 0.004, 0.01, &v),
	       12.285212620089816, 1e-6);
	ck_rel(margin_max_leverage(MARGIN_INVERSE, MARGIN_SHORT, 0.004, 0.01,
				   &v), 12.285212620089816, 1e-6);
	ck_rel(margin_max_leverage(MARGIN_LINEAR, MARGIN_SHORT, 0.004, 0.01,
				   &v), 11.287431315988241, 1e-6);
	ck_rel(margin_max_leverage(MARGIN_INVERSE, MARGIN_LONG, 0.004, 0.01,
				   &v), 11.287431315988241, 1e-6);
	ck_assert(fabs(margin_max_leverage(MARGIN_LINEAR, MARGIN_LONG, 0.004,
					   0.01, &v) - 12.2852) < 5e-5);
}
END_TEST

START_TEST(t13_probability_with_drift_inverts)
{
	/* The drift case has no closed form: the distance found by
	 * bisection must give back the target probability, for both sides,
	 * with and without the BGK shift. */
	struct margin_vol v = vol24h();
	const double targets[] = { 0.5, 0.1, 0.01, 1e-4 };
	const double mus[] = { -1.0, 0.0, 0.7 };

	v.model = MARGIN_GBM;
	for (size_t m = 0; m < 3; m++) {
		for (size_t i = 0; i < 4; i++) {
			for (int side = -1; side <= 1; side += 2) {
				double d;

				v.mu = mus[m];
				v.sample_s = i % 2 == 0 ? 0.0 : 60.0;
				d = margin_prob_distance(
					(enum margin_side)side, targets[i], &v);
				ck_assert(d > 0.0);
				ck_rel(margin_prob_touch((enum margin_side)side,
							 d, &v, false),
				       targets[i], 1e-9);
			}
		}
	}
	/* the driftless formula is the mu = sigma^2/2 case of the drift one */
	v.mu = 0.5 * v.sigma * v.sigma;
	v.sample_s = 0.0;
	{
		struct margin_vol w = vol24h();

		ck_rel(margin_prob_touch(MARGIN_LONG, 0.05, &v, true),
		       margin_prob_touch(MARGIN_LONG, 0.05, &w, true), 1e-12);
		ck_rel(margin_prob_touch(MARGIN_SHORT, 0.05, &v, true),
		       margin_prob_touch(MARGIN_SHORT, 0.05, &w, true), 1e-12);
	}
	ck_rel(margin_norm_quantile(0.995), 2.5758293035489004, 1e-12);
	ck_rel(margin_norm_cdf(-1.0), 0.15865525393145705, 1e-12);
}
END_TEST

/* ---- T14-T16: robust index, band decision, invalid oracle ------------ */

static struct margin_tick
tick(const char *price, const char *conf, bool valid, uint64_t seq,
     int64_t ms)
{
	struct margin_tick t;

	memset(&t, 0, sizeof(t));
	t.price = D(price);
	t.conf = D(conf);
	t.valid_for_liquidation = valid;
	t.status = valid ? 0 : 5;
	t.sources_used = valid ? 5 : 1;
	t.seq = seq;
	t.time_ms = ms;
	return t;
}

static enum margin_state
step(struct margin_tracker *tr, const struct margin_position *p,
     const struct margin_params *prm, struct margin_tick tk,
     struct margin_decision *d, struct margin_event *ev)
{
	struct mk_err err;

	ck_assert_msg(margin_step(tr, p, prm, &tk, d, ev, &err) == MK_OK, "%s",
		      err.msg);
	return d->state;
}

START_TEST(t14_robust_index)
{
	struct margin_params prm = params_lin();
	struct margin_position p = lin(MARGIN_LONG, "1", "65760", "3288",
				       &lin_table);
	struct margin_tracker tr;
	struct margin_decision d;
	struct margin_event ev;

	margin_tracker_init(&tr);
	/* the median of the five sources is safe */
	ck_assert_int_eq(step(&tr, &p, &prm, tick("65740", "15", true, 1, 0),
			      &d, &ev), MARGIN_STATE_SAFE);
	ck_assert(ev.from == MARGIN_STATE_NEW && d.changed);
	/* the plain mean would breach it (54,237 < LP) */
	ck_assert(at(&p, &prm, "54237").breached);
	/* Bitstamp's low does not */
	ck_assert(!at(&p, &prm, "63600").breached);
	/* the 8,200 print arrives flagged too_volatile: held, forever */
	for (int i = 0; i < 10; i++) {
		ck_assert_int_eq(step(&tr, &p, &prm,
				      tick("8200", "100", false,
					   (uint64_t)(2 + i), 1000 * (i + 1)),
				      &d, NULL),
				 MARGIN_STATE_HELD);
		ck_assert_int_eq(d.last_valid, MARGIN_STATE_SAFE);
		ck_assert_uint_eq(d.breach_marks, 0);
	}
}
END_TEST

START_TEST(t15_band_decision)
{
	struct margin_params prm = params_lin();
	struct margin_position p = lin(MARGIN_LONG, "1", "40000", "2000",
				       &lin_table);
	struct margin_eval ev;
	struct margin_tracker tr;
	struct margin_decision d;
	struct margin_event e;
	struct mk_err err;
	unsigned flags;

	ck_ok(margin_evaluate(&p, &prm, D("38100"), D("150"), NULL, &ev, &err));
	ck_dec_eq(ev.mark.fig.margin_balance, "100");
	ck_dec_eq(ev.mark.fig.maintenance_margin, "152.4");
	ck_assert(ev.mark.fig.breached);
	ck_dec_eq(ev.fav.fig.price, "38250");
	ck_dec_eq(ev.fav.fig.margin_balance, "250");
	ck_dec_eq(ev.fav.fig.maintenance_margin, "153");
	ck_assert(!ev.fav.fig.breached);
	ck_dec_eq(ev.adv.fig.price, "37950");
	ck_dec_eq(ev.adv.fig.margin_balance, "-50");
	ck_assert(ev.adv.fig.bankrupt);

	ck_ok(margin_verdict(&p, &prm, D("38100"), D("150"), &flags, &err));
	ck_assert_uint_eq(flags, ev.flags);
	ck_assert(flags & MARGIN_FLAG_MARK_BREACH);
	ck_assert(!(flags & MARGIN_FLAG_FAV_BREACH));
	ck_assert(flags & MARGIN_FLAG_AT_RISK);
	ck_assert(flags & MARGIN_FLAG_ADV_BANKRUPT);

	margin_tracker_init(&tr);
	for (int i = 0; i < 5; i++) {
		ck_assert_int_eq(step(&tr, &p, &prm,
				      tick("38100", "150", true,
					   (uint64_t)(i + 1), i * 2000),
				      &d, &e),
				 MARGIN_STATE_BREACH_UNCONFIRMED);
		ck_assert_int_eq(d.reason, MARGIN_REASON_MARK_BREACH);
		ck_assert(d.flags & MARGIN_FLAG_AT_RISK);
		ck_assert_uint_eq(d.breach_marks, 0);
	}
}
END_TEST

START_TEST(t16_pyth_2021_replay)
{
	struct margin_params prm = params_lin();
	struct margin_position p = lin(MARGIN_LONG, "1", "42000", "2100",
				       &lin_table);
	struct margin_tracker tr;
	struct margin_decision d;
	struct margin_event e;

	margin_tracker_init(&tr);
	ck_assert_int_eq(step(&tr, &p, &prm, tick("42000", "10", true, 1, 0),
			      &d, &e), MARGIN_STATE_SAFE);
	/* price 5,402, conf 21,623: too uncertain and too volatile */
	for (int i = 0; i < 20; i++) {
		ck_assert_int_eq(step(&tr, &p, &prm,
				      tick("5402", "21623", false,
					   (uint64_t)(2 + i), 400 * (i + 1)),
				      &d, &e),
				 MARGIN_STATE_HELD);
		ck_assert_int_eq(d.last_valid, MARGIN_STATE_SAFE);
		if (i == 0) {
			ck_assert(d.changed);
			ck_assert_int_eq(e.from, MARGIN_STATE_SAFE);
			ck_assert_int_eq(e.to, MARGIN_STATE_HELD);
			ck_assert_int_eq(e.reason, MARGIN_REASON_MARK_INVALID);
			ck_assert_int_eq(e.status, 5);
			ck_assert_ptr_nonnull(strstr(e.text, "last valid "
							     "state safe"));
		} else {
			ck_assert(!d.changed);
		}
	}
}
END_TEST

/* ---- T17: greeks --------------------------------------------------- */

START_TEST(t17_inverse_greeks)
{
	struct margin_params prm = params_inv();
	struct margin_position p = inv(MARGIN_LONG, "100", "40000", "0.025",
				       &inv_table);
	struct margin_greeks g;
	struct mk_err err;

	ck_ok(margin_greeks_at(&p, &prm, D("40000"), &g, &err));
	ck_rel(g.delta, 6.25e-6, 1e-12);
	ck_rel(g.gamma, -3.125e-10, 1e-12);
	ck_dec_eq(g.exposure, "0.275");
	p.side = MARGIN_SHORT;
	ck_ok(margin_greeks_at(&p, &prm, D("40000"), &g, &err));
	ck_rel(g.delta, -6.25e-6, 1e-12);
	ck_rel(g.gamma, 3.125e-10, 1e-12);
	ck_dec_eq(g.exposure, "-0.225");
	/* a 1x inverse short is USD-neutral */
	p.collateral = D("0.25");
	ck_ok(margin_greeks_at(&p, &prm, D("40000"), &g, &err));
	ck_dec_eq(g.exposure, "0");
	/* linear: delta = s*Q, gamma = 0 */
	p = lin(MARGIN_SHORT, "1.5", "40000", "2000", &lin_table);
	ck_ok(margin_greeks_at(&p, &prm, D("40000"), &g, &err));
	ck_rel(g.delta, -1.5, 1e-15);
	ck_assert(g.gamma == 0.0);
	ck_dec_eq(g.exposure, "-1.5");
}
END_TEST

/* ---- more figures: removable, health top-up, LP top-up, edges -------- */

START_TEST(topups_and_removable)
{
	struct margin_params prm = params_lin();
	struct margin_position p = lin(MARGIN_LONG, "1", "40000", "2000",
				       &lin_table);
	struct mk_dec v;
	struct mk_err err;

	/* health 10 at 39,000: 10 * 156 - 1000 = 560 */
	ck_ok(margin_topup_health(&p, &prm, D("39000"), D("10"), &v, &err));
	ck_dec_eq(v, "560");
	/* already healthier than 2: nothing to add */
	ck_ok(margin_topup_health(&p, &prm, D("39000"), D("2"), &v, &err));
	ck_dec_eq(v, "0");
	/* LP at 37,000: MM(37000) - MB(37000) = 148 - (2000 - 3000) */
	ck_ok(margin_topup_liq_price(&p, &prm, D("37000"), &v, &err));
	ck_dec_eq(v, "1148");
	/* LP target above the current LP: nothing to add */
	ck_ok(margin_topup_liq_price(&p, &prm, D("39000"), &v, &err));
	ck_dec_eq(v, "0");
	/* removable at 41,000 with health 1.02: MB 3000, IM 2050 (implied
	 * 20x), MM 164: min(2000, 950, 3000 - 167.28) = 950 */
	ck_ok(margin_max_removable(&p, &prm, D("41000"), D("1.02"), &v, &err));
	ck_dec_eq(v, "950");
	/* with an explicit 50x leverage IM = 820: min(2000, 2180, 2832.72) */
	p.has_leverage = true;
	p.leverage = D("50");
	ck_ok(margin_max_removable(&p, &prm, D("41000"), D("1.02"), &v, &err));
	ck_dec_eq(v, "2000");
	/* underwater: nothing removable */
	ck_ok(margin_max_removable(&p, &prm, D("38500"), D("1.02"), &v, &err));
	ck_dec_eq(v, "0");
	/* errors name the target */
	ck_assert_int_eq(margin_topup_health(&p, &prm, D("39000"), D("0"), &v,
					     &err), MK_EINVAL);
	ck_assert_str_eq(err.msg, "targets.health: must be positive");
	ck_assert_int_eq(margin_topup_liq_price(&p, &prm, D("-1"), &v, &err),
			 MK_EINVAL);
	ck_assert_str_eq(err.msg, "targets.liq_price: must be positive");
}
END_TEST

START_TEST(band_edge_below_zero)
{
	struct margin_params prm = params_inv();
	struct margin_position p = inv(MARGIN_LONG, "100", "40000", "0.025",
				       &inv_table);
	struct margin_eval ev;
	struct mk_err err;
	unsigned flags;

	/* conf above the price: the lower edge does not exist */
	ck_ok(margin_evaluate(&p, &prm, D("100"), D("150"), NULL, &ev, &err));
	ck_assert(!ev.adv.has);
	ck_assert(ev.fav.has);
	ck_ok(margin_verdict(&p, &prm, D("100"), D("150"), &flags, &err));
	ck_assert(flags & MARGIN_FLAG_ADV_BANKRUPT);
	p.side = MARGIN_SHORT;
	ck_ok(margin_verdict(&p, &prm, D("100"), D("150"), &flags, &err));
	ck_assert(!(flags & MARGIN_FLAG_FAV_BREACH));
	/* a fully collateralised linear long is fine even at price 0 */
	p = lin(MARGIN_LONG, "1", "40000", "40000", &lin_table);
	ck_ok(margin_verdict(&p, &prm, D("100"), D("150"), &flags, &err));
	ck_assert(!(flags & MARGIN_FLAG_ADV_BREACH));
	ck_assert(!liq(&p, &prm).has_price);
	ck_assert(!liq(&p, &prm).has_bankruptcy);
}
END_TEST

START_TEST(beyond_last_cap)
{
	struct margin_params prm = params_inv();
	struct margin_position p = inv(MARGIN_LONG, "100", "40000", "0.025",
				       &inv_table);
	struct margin_figures f = at(&p, &prm, "400");

	/* 25 BTC of notional, above the last cap of 20: the last bracket
	 * goes on, and the overrun is reported */
	ck_assert_uint_eq(f.bracket, 2);
	ck_assert(f.beyond_cap);
	ck_dec_eq(f.notional, "25");
	ck_assert(!at(&p, &prm, "40000").beyond_cap);
}
END_TEST

START_TEST(bracket_boundaries)
{
	struct margin_params prm = params_lin();
	struct margin_position p = lin(MARGIN_LONG, "1", "40000", "2000",
				       &lin_table);
	struct margin_liq l;

	/* a notional exactly at a floor belongs to that bracket */
	ck_assert_uint_eq(at(&p, &prm, "50000").bracket, 1);
	ck_assert_uint_eq(at(&p, &prm, "49999.999999").bracket, 0);
	ck_assert_uint_eq(at(&p, &prm, "250000").bracket, 2);
	ck_dec_eq(at(&p, &prm, "50000").maintenance_margin, "200");
	/* continuous: 199.999999996, half-even at 6 decimals */
	ck_dec_eq(at(&p, &prm, "49999.999999").maintenance_margin, "200");
	/* a liquidation price exactly on a boundary: WB = EP - 49800 puts
	 * it at 50,000, where both linear pieces meet; the notional there
	 * is in bracket 1 */
	p = lin(MARGIN_LONG, "1", "52000", "2200", &lin_table);
	l = liq(&p, &prm);
	ck_dec_eq(l.price, "50000");
	ck_assert_uint_eq(l.bracket, 1);
	/* the same for an inverse long: F = 1,000,000 USD, boundary at 5 BTC
	 * (P = 200,000), EP = 250,000: MB = WB + 4 - 5 = MM = 0.025 */
	p = inv(MARGIN_LONG, "10000", "250000", "1.025", &inv_table);
	ck_assert_uint_eq(at(&p, &prm, "200000").bracket, 1);
	l = liq(&p, &prm);
	ck_dec_eq(l.price, "200000");
	ck_assert_uint_eq(l.bracket, 1);
}
END_TEST

/* ---- validation ------------------------------------------------------ */

START_TEST(validation_errors)
{
	struct margin_params prm = params_lin();
	struct margin_position p = lin(MARGIN_LONG, "1", "40000", "2000",
				       &lin_table);
	struct margin_position q;
	struct margin_brackets t;
	struct margin_liq l;
	struct mk_err err;

	q = p;
	q.size = D("0");
	ck_assert_int_eq(margin_liquidation(&q, &prm, &l, &err), MK_EINVAL);
	ck_assert_str_eq(err.msg, "size: must be positive");
	q = p;
	q.entry_price = D("-1");
	ck_assert_int_eq(margin_liquidation(&q, &prm, &l, &err), MK_EINVAL);
	ck_assert_str_eq(err.msg, "entry_price: must be positive");
	q = p;
	q.collateral = D("-0.01");
	ck_assert_int_eq(margin_liquidation(&q, &prm, &l, &err), MK_EINVAL);
	ck_assert_str_eq(err.msg, "collateral: must not be negative");
	q = p;
	q.kind = MARGIN_INVERSE;
	ck_assert_int_eq(margin_liquidation(&q, &prm, &l, &err), MK_EINVAL);
	ck_assert_str_eq(err.msg, "contract_size: must be positive for an "
				  "inverse position");
	q = p;
	q.has_leverage = true;
	q.leverage = D("0");
	ck_assert_int_eq(margin_liquidation(&q, &prm, &l, &err), MK_EINVAL);
	ck_assert_str_eq(err.msg, "leverage: must be positive");
	q = p;
	q.side = (enum margin_side)0;
	ck_assert_int_eq(margin_liquidation(&q, &prm, &l, &err), MK_EINVAL);
	ck_assert_str_eq(err.msg, "side: must be long or short");
	q = p;
	q.brackets = NULL;
	ck_assert_int_eq(margin_liquidation(&q, &prm, &l, &err), MK_EINVAL);
	ck_assert_str_eq(err.msg, "brackets: missing or not prepared");
	ck_assert_int_eq(margin_verdict(&q, &prm, D("1"), D("0"),
					&(unsigned){ 0 }, &err), MK_EINVAL);
	ck_assert_int_eq(margin_figures_at(&p, &prm, D("0"),
					   &(struct margin_figures){ 0 },
					   &err), MK_EINVAL);
	ck_assert_str_eq(err.msg, "price: must be positive");

	/* brackets */
	memset(&t, 0, sizeof(t));
	ck_assert_int_eq(margin_brackets_prepare(&t, &err), MK_EINVAL);
	ck_assert_str_eq(err.msg, "brackets: at least one bracket is needed");
	add_bracket(&t, "10", "50000", "0.004", NULL);
	ck_assert_int_eq(margin_brackets_prepare(&t, &err), MK_EINVAL);
	ck_assert_str_eq(err.msg, "brackets[0].floor: must be 0, not 10");
	memset(&t, 0, sizeof(t));
	add_bracket(&t, "0", "50000", "0.004", NULL);
	add_bracket(&t, "60000", "250000", "0.005", NULL);
	ck_assert_int_eq(margin_brackets_prepare(&t, &err), MK_EINVAL);
	ck_assert_str_eq(err.msg, "brackets[1].floor: must equal "
				  "brackets[0].cap (50000), not 60000");
	memset(&t, 0, sizeof(t));
	add_bracket(&t, "0", "50000", "1", NULL);
	ck_assert_int_eq(margin_brackets_prepare(&t, &err), MK_EINVAL);
	ck_assert_str_eq(err.msg, "brackets[0].mmr: must be >= 0 and < 1, "
				  "not 1");
	ck_assert(!t.ready);
	memset(&t, 0, sizeof(t));
	add_bracket(&t, "0", "50000", "0.004", NULL);
	add_bracket(&t, "50000", "40000", "0.005", NULL);
	ck_assert_int_eq(margin_brackets_prepare(&t, &err), MK_EINVAL);
	ck_assert_str_eq(err.msg, "brackets[1].cap: must be above its floor "
				  "(50000)");
	memset(&t, 0, sizeof(t));
	add_bracket(&t, "0", NULL, "0.004", NULL);
	add_bracket(&t, "50000", NULL, "0.005", NULL);
	ck_assert_int_eq(margin_brackets_prepare(&t, &err), MK_EINVAL);
	ck_assert_str_eq(err.msg, "brackets[0].cap: required on every "
				  "bracket but the last");
	/* a cum that breaks continuity */
	memset(&t, 0, sizeof(t));
	add_bracket(&t, "0", "50000", "0.004", NULL);
	add_bracket(&t, "50000", "250000", "0.005", "50");
	add_bracket(&t, "250000", "1000000", "0.01", "1250");
	ck_assert_int_eq(margin_brackets_prepare(&t, &err), MK_EINVAL);
	ck_assert_str_eq(err.msg, "brackets[2].cum: 1250 breaks the continuity"
				  " of the maintenance margin; expected "
				  "1300.000");
	memset(&t, 0, sizeof(t));
	add_bracket(&t, "0", "50000", "0.004", "1");
	ck_assert_int_eq(margin_brackets_prepare(&t, &err), MK_EINVAL);
	/* derived cum reproduces the vectors' column */
	memset(&t, 0, sizeof(t));
	add_bracket(&t, "0", "50000", "0.004", NULL);
	add_bracket(&t, "50000", "250000", "0.005", NULL);
	add_bracket(&t, "250000", "1000000", "0.01", NULL);
	add_bracket(&t, "1000000", "10000000", "0.025", NULL);
	add_bracket(&t, "10000000", "20000000", "0.05", NULL);
	prepare(&t);
	for (size_t k = 0; k < t.n; k++)
		ck_assert(mk_dec_cmp(t.b[k].cum, lin_table.b[k].cum) == 0);

	/* parameters */
	prm.confirm_marks = 0;
	ck_assert_int_eq(margin_params_check(&prm, &err), MK_EINVAL);
	ck_assert_str_eq(err.msg, "confirm_marks: must be at least 1");
	prm = params_lin();
	prm.price_scale = 19;
	ck_assert_int_eq(margin_params_check(&prm, &err), MK_EINVAL);
	ck_assert_str_eq(err.msg, "price_scale: must be in 0..18");
	prm = params_lin();
	{
		struct margin_options o;
		struct margin_eval ev;

		memset(&o, 0, sizeof(o));
		o.targets.has_probability = true;
		o.targets.probability = 0.01;
		ck_assert_int_eq(margin_evaluate(&p, &prm, D("40000"), D("0"),
						 &o, &ev, &err), MK_EINVAL);
		ck_assert_str_eq(err.msg, "targets.probability: needs a "
					  "volatility (sigma and horizon)");
		o.has_vol = true;
		o.vol = vol24h();
		o.vol.sigma = -1;
		ck_assert_int_eq(margin_evaluate(&p, &prm, D("40000"), D("0"),
						 &o, &ev, &err), MK_EINVAL);
		ck_assert_str_eq(err.msg, "sigma: must be positive");
		ck_assert_int_eq(margin_evaluate(&p, &prm, D("40000"), D("-1"),
						 NULL, &ev, &err), MK_EINVAL);
		ck_assert_str_eq(err.msg, "conf: must not be negative");
	}
}
END_TEST

START_TEST(evaluate_everything)
{
	struct margin_params prm = params_lin();
	struct margin_position p = lin(MARGIN_SHORT, "6", "40000", "48000",
				       &lin_table);
	struct margin_options o;
	struct margin_eval ev;
	struct mk_err err;

	memset(&o, 0, sizeof(o));
	o.has_vol = true;
	o.vol = vol24h();
	o.targets.has_margin_ratio = true;
	o.targets.margin_ratio = D("0.01");
	o.targets.has_health = true;
	o.targets.health = D("20");
	o.targets.has_liq_price = true;
	o.targets.liq_price = D("50000");
	o.targets.has_probability = true;
	o.targets.probability = 0.001;
	ck_assert_msg(margin_evaluate(&p, &prm, D("45000"), D("100"), &o, &ev,
				      &err) == MK_OK, "%s", err.msg);
	ck_dec_eq(ev.liq.price, "47739.273927");
	ck_dec_eq(ev.mark.fig.price, "45000");
	ck_dec_eq(ev.fav.fig.price, "44900");  /* shorts: the lower edge */
	ck_dec_eq(ev.adv.fig.price, "45100");
	ck_assert(ev.mark.has_topup_margin_ratio && ev.fav.has_topup_health &&
		  ev.adv.has_topup_liq_price &&
		  ev.mark.has_topup_probability);
	/* the adverse edge needs more than the favourable one */
	ck_assert(mk_dec_cmp(ev.adv.topup_health, ev.fav.topup_health) > 0);
	ck_assert(ev.adv.risk.p_liq > ev.mark.risk.p_liq);
	ck_assert(ev.mark.risk.p_liq > ev.fav.risk.p_liq);
	/* a short's probability target lies above the mark */
	ck_assert(mk_dec_cmp(ev.mark.probability_liq_price, D("45000")) > 0);
	ck_assert(ev.has_max_leverage && ev.max_leverage > 1.0);
	/* the LP top-up does not depend on the price */
	ck_assert(mk_dec_cmp(ev.adv.topup_liq_price,
			     ev.fav.topup_liq_price) == 0);
	ck_assert_uint_eq(ev.flags & MARGIN_FLAG_MARK_BREACH, 0);
}
END_TEST

/* ---- decision states ------------------------------------------------- */

/* T1 position: LP 38,152.61, BP 38,000. */
static struct margin_position st_pos;
static struct margin_params st_prm;

static void
setup_state(void)
{
	setup_tables();
	st_pos = lin(MARGIN_LONG, "1", "40000", "2000", &lin_table);
	st_prm = params_lin();
}

START_TEST(state_wick_never_liquidates)
{
	struct margin_tracker tr;
	struct margin_decision d;
	struct margin_event e;
	uint64_t seq = 0;
	int64_t ms = 0;

	margin_tracker_init(&tr);
	for (int round = 0; round < 50; round++) {
		/* one valid wick far below LP, then recovery */
		ck_assert_int_eq(step(&tr, &st_pos, &st_prm,
				      tick("39000", "20", true, ++seq,
					   ms += 5000), &d, &e),
				 MARGIN_STATE_SAFE);
		ck_assert_int_eq(step(&tr, &st_pos, &st_prm,
				      tick("30000", "20", true, ++seq,
					   ms += 5000), &d, &e),
				 MARGIN_STATE_BREACH_UNCONFIRMED);
		ck_assert_int_eq(d.reason, MARGIN_REASON_CONFIRMING);
		ck_assert_uint_eq(d.breach_marks, 1);
	}
}
END_TEST

START_TEST(state_sustained_breach_liquidates_at_kth_mark)
{
	struct margin_tracker tr;
	struct margin_decision d;
	struct margin_event e;

	/* marks 1500 ms apart: the K-th (3rd) mark is 3000 ms after the
	 * first, so it liquidates exactly there */
	margin_tracker_init(&tr);
	ck_assert_int_eq(step(&tr, &st_pos, &st_prm,
			      tick("39000", "10", true, 10, 100000), &d, &e),
			 MARGIN_STATE_SAFE);
	ck_assert_int_eq(step(&tr, &st_pos, &st_prm,
			      tick("38050", "10", true, 11, 101000), &d, &e),
			 MARGIN_STATE_BREACH_UNCONFIRMED);
	ck_assert(d.changed);
	ck_assert_int_eq(e.from, MARGIN_STATE_SAFE);
	ck_assert_int_eq(e.to, MARGIN_STATE_BREACH_UNCONFIRMED);
	ck_assert_str_eq(e.text, "breached at the favourable edge, not yet "
				 "confirmed (1 of 3 marks, 0 of 3000 ms)");
	ck_assert_int_eq(step(&tr, &st_pos, &st_prm,
			      tick("38050", "10", true, 12, 102500), &d, &e),
			 MARGIN_STATE_BREACH_UNCONFIRMED);
	ck_assert(!d.changed);
	ck_assert_uint_eq(d.breach_marks, 2);
	ck_assert_int_eq(d.breach_ms, 1500);
	ck_assert_int_eq(step(&tr, &st_pos, &st_prm,
			      tick("38040", "10", true, 13, 104000), &d, &e),
			 MARGIN_STATE_LIQUIDATABLE);
	ck_assert(d.changed);
	ck_assert_int_eq(e.from, MARGIN_STATE_BREACH_UNCONFIRMED);
	ck_assert_int_eq(e.to, MARGIN_STATE_LIQUIDATABLE);
	ck_assert_int_eq(e.reason, MARGIN_REASON_CONFIRMED);
	ck_dec_eq(e.price, "38040");
	ck_dec_eq(e.conf, "10");
	ck_assert_uint_eq(e.seq, 13);
	ck_assert_int_eq(e.time_ms, 104000);
	ck_assert_uint_eq(e.sources_used, 5);
	ck_assert(e.valid_for_liquidation);
	ck_assert_uint_eq(e.breach_marks, 3);
	ck_assert_int_eq(e.breach_ms, 3000);

	/* marks 1000 ms apart: the 3rd mark is only 2000 ms in, the 4th
	 * (3000 ms) liquidates */
	margin_tracker_init(&tr);
	for (int i = 0; i < 3; i++)
		ck_assert_int_eq(step(&tr, &st_pos, &st_prm,
				      tick("38050", "10", true,
					   (uint64_t)(i + 1), i * 1000),
				      &d, &e),
				 MARGIN_STATE_BREACH_UNCONFIRMED);
	ck_assert_int_eq(step(&tr, &st_pos, &st_prm,
			      tick("38050", "10", true, 4, 3000), &d, &e),
			 MARGIN_STATE_LIQUIDATABLE);

	/* 10 s apart, K = 3: the 3rd mark liquidates, not the 2nd */
	margin_tracker_init(&tr);
	ck_assert_int_eq(step(&tr, &st_pos, &st_prm,
			      tick("38050", "10", true, 1, 0), &d, &e),
			 MARGIN_STATE_BREACH_UNCONFIRMED);
	ck_assert_int_eq(step(&tr, &st_pos, &st_prm,
			      tick("38050", "10", true, 2, 10000), &d, &e),
			 MARGIN_STATE_BREACH_UNCONFIRMED);
	ck_assert_int_eq(step(&tr, &st_pos, &st_prm,
			      tick("38050", "10", true, 3, 20000), &d, &e),
			 MARGIN_STATE_LIQUIDATABLE);
	/* recovery at the favourable edge: the state follows, the counter
	 * restarts */
	ck_assert_int_eq(step(&tr, &st_pos, &st_prm,
			      tick("38150", "10", true, 4, 21000), &d, &e),
			 MARGIN_STATE_BREACH_UNCONFIRMED);
	ck_assert_int_eq(d.reason, MARGIN_REASON_MARK_BREACH);
	ck_assert_uint_eq(d.breach_marks, 0);
	ck_assert_int_eq(step(&tr, &st_pos, &st_prm,
			      tick("38050", "10", true, 5, 30000), &d, &e),
			 MARGIN_STATE_BREACH_UNCONFIRMED);
	ck_assert_uint_eq(d.breach_marks, 1);
}
END_TEST

START_TEST(state_held_reports_last_valid)
{
	struct margin_tracker tr;
	struct margin_decision d;
	struct margin_event e;

	margin_tracker_init(&tr);
	ck_assert_int_eq(step(&tr, &st_pos, &st_prm,
			      tick("38050", "10", true, 1, 0), &d, &e),
			 MARGIN_STATE_BREACH_UNCONFIRMED);
	/* held ticks: state held, last valid kept, counter untouched */
	ck_assert_int_eq(step(&tr, &st_pos, &st_prm,
			      tick("30000", "10", false, 2, 500), &d, &e),
			 MARGIN_STATE_HELD);
	ck_assert(d.changed);
	ck_assert_int_eq(e.last_valid, MARGIN_STATE_BREACH_UNCONFIRMED);
	ck_assert_int_eq(d.last_valid, MARGIN_STATE_BREACH_UNCONFIRMED);
	ck_assert_uint_eq(d.breach_marks, 1);
	ck_assert_int_eq(step(&tr, &st_pos, &st_prm,
			      tick("39000", "10", false, 3, 1000), &d, &e),
			 MARGIN_STATE_HELD);
	ck_assert(!d.changed);
	ck_assert_uint_eq(d.breach_marks, 1);  /* not reset either */
	/* a valid-flagged tick with a non-positive price is held too */
	ck_assert_int_eq(step(&tr, &st_pos, &st_prm,
			      tick("0", "10", true, 4, 1500), &d, &e),
			 MARGIN_STATE_HELD);
	ck_assert_int_eq(d.reason, MARGIN_REASON_MARK_UNUSABLE);
	ck_assert_int_eq(step(&tr, &st_pos, &st_prm,
			      tick("38050", "10", true, 5, 2000), &d, &e),
			 MARGIN_STATE_BREACH_UNCONFIRMED);
	ck_assert(d.changed);
	ck_assert_int_eq(e.from, MARGIN_STATE_HELD);
	ck_assert_uint_eq(d.breach_marks, 2);
	ck_assert_int_eq(step(&tr, &st_pos, &st_prm,
			      tick("20000", "10", false, 6, 2500), &d, &e),
			 MARGIN_STATE_HELD);
	/* third valid breached mark, 3000 ms after the first */
	ck_assert_int_eq(step(&tr, &st_pos, &st_prm,
			      tick("38050", "10", true, 7, 3000), &d, &e),
			 MARGIN_STATE_LIQUIDATABLE);
	ck_assert_uint_eq(d.breach_marks, 3);
	ck_assert_int_eq(e.from, MARGIN_STATE_HELD);
	/* and held again: reports liquidatable as the last valid state */
	ck_assert_int_eq(step(&tr, &st_pos, &st_prm,
			      tick("38050", "10", false, 8, 3500), &d, &e),
			 MARGIN_STATE_HELD);
	ck_assert_int_eq(d.last_valid, MARGIN_STATE_LIQUIDATABLE);
}
END_TEST

START_TEST(state_same_mark_counts_once)
{
	struct margin_tracker tr;
	struct margin_decision d;
	struct margin_event e;

	margin_tracker_init(&tr);
	/* the same mark re-evaluated (e.g. after a collateral change) five
	 * times over 10 s: one mark, not five */
	for (int i = 0; i < 5; i++)
		ck_assert_int_eq(step(&tr, &st_pos, &st_prm,
				      tick("38050", "10", true, 42, i * 2500),
				      &d, &e),
				 MARGIN_STATE_BREACH_UNCONFIRMED);
	ck_assert_uint_eq(d.breach_marks, 1);
	ck_assert_int_eq(step(&tr, &st_pos, &st_prm,
			      tick("38050", "10", true, 43, 11000), &d, &e),
			 MARGIN_STATE_BREACH_UNCONFIRMED);
	ck_assert_int_eq(step(&tr, &st_pos, &st_prm,
			      tick("38050", "10", true, 44, 12000), &d, &e),
			 MARGIN_STATE_LIQUIDATABLE);
}
END_TEST

START_TEST(state_bankrupt)
{
	struct margin_tracker tr;
	struct margin_decision d;
	struct margin_event e;

	margin_tracker_init(&tr);
	/* below the bankruptcy price 38,000 even at the favourable edge */
	for (int i = 0; i < 2; i++)
		ck_assert_int_eq(step(&tr, &st_pos, &st_prm,
				      tick("37000", "100", true,
					   (uint64_t)(i + 1), i * 2000),
				      &d, &e),
				 MARGIN_STATE_BREACH_UNCONFIRMED);
	ck_assert(d.flags & MARGIN_FLAG_FAV_BANKRUPT);
	ck_assert_int_eq(step(&tr, &st_pos, &st_prm,
			      tick("37000", "100", true, 3, 4000), &d, &e),
			 MARGIN_STATE_BANKRUPT);
	ck_assert_int_eq(e.reason, MARGIN_REASON_BANKRUPT);
	ck_assert_int_eq(e.from, MARGIN_STATE_BREACH_UNCONFIRMED);
	/* back above the bankruptcy price at the favourable edge, still
	 * breached: liquidatable */
	ck_assert_int_eq(step(&tr, &st_pos, &st_prm,
			      tick("38050", "10", true, 4, 5000), &d, &e),
			 MARGIN_STATE_LIQUIDATABLE);
	ck_assert_int_eq(e.from, MARGIN_STATE_BANKRUPT);
}
END_TEST

START_TEST(state_safe_and_at_risk)
{
	struct margin_tracker tr;
	struct margin_decision d;
	struct margin_event e;

	margin_tracker_init(&tr);
	ck_assert_int_eq(step(&tr, &st_pos, &st_prm,
			      tick("39000", "10", true, 1, 0), &d, &e),
			 MARGIN_STATE_SAFE);
	ck_assert_int_eq(e.from, MARGIN_STATE_NEW);
	ck_assert_int_eq(e.reason, MARGIN_REASON_HEALTHY);
	/* MB = MM*(1.02) at P: 2000 + P - 40000 = 1.02 * 0.004 * P,
	 * P = 38000 / 0.99592 = 38155.67...; the adverse edge 38,154 is
	 * under the buffer but above LP (38,152.61): at_risk */
	ck_assert_int_eq(step(&tr, &st_pos, &st_prm,
			      tick("38164", "10", true, 2, 1000), &d, &e),
			 MARGIN_STATE_AT_RISK);
	ck_assert_int_eq(d.reason, MARGIN_REASON_ADVERSE_BUFFER);
	ck_assert_int_eq(step(&tr, &st_pos, &st_prm,
			      tick("38164", "100", true, 3, 2000), &d, &e),
			 MARGIN_STATE_AT_RISK);
	ck_assert_int_eq(d.reason, MARGIN_REASON_ADVERSE_BREACH);
	/* buffer 0: the same tick is safe */
	st_prm.buffer_bps = 0;
	ck_assert_int_eq(step(&tr, &st_pos, &st_prm,
			      tick("38164", "0", true, 4, 3000), &d, &e),
			 MARGIN_STATE_SAFE);
	st_prm.buffer_bps = 200;
	ck_assert_str_eq(margin_state_name(MARGIN_STATE_BREACH_UNCONFIRMED),
			 "breach_unconfirmed");
	ck_assert_str_eq(margin_reason_name(MARGIN_REASON_CONFIRMING),
			 "confirming");
	ck_assert(sizeof(struct margin_tracker) <= 32);
}
END_TEST

START_TEST(state_exact_boundary)
{
	/* MB == MM exactly is not a breach (strict): Q = 1, EP = 1000,
	 * WB = 5, mmr 0.5%: MB = P - 995, MM = 0.005 P, root P = 1000. */
	struct margin_brackets t;
	struct margin_position p;
	struct margin_params prm = params_lin();
	struct mk_err err;
	unsigned flags;

	memset(&t, 0, sizeof(t));
	add_bracket(&t, "0", NULL, "0.005", NULL);
	prepare(&t);
	p = lin(MARGIN_LONG, "1", "1000", "5", &t);
	ck_dec_eq(liq(&p, &prm).price, "1000");
	ck_ok(margin_verdict(&p, &prm, D("1000"), D("0"), &flags, &err));
	ck_assert_uint_eq(flags & MARGIN_FLAG_MARK_BREACH, 0);
	ck_ok(margin_verdict(&p, &prm, D("999.999999999999"), D("0"), &flags,
			     &err));
	ck_assert(flags & MARGIN_FLAG_MARK_BREACH);
	/* inverse, exact boundary through cross-multiplication:
	 * F = 100, EP = 100, mmr 0 -> MM = 0, bankrupt when MB <= 0:
	 * WB = 0.5 coin, MB = 0.5 + (1 - 100/P) = 0 at P = 200/3 */
	memset(&t, 0, sizeof(t));
	add_bracket(&t, "0", NULL, "0", NULL);
	prepare(&t);
	p = inv(MARGIN_LONG, "1", "100", "0.5", &t);
	ck_ok(margin_verdict(&p, &prm, D("66.666666666667"), D("0"), &flags,
			     &err));
	ck_assert_uint_eq(flags & MARGIN_FLAG_MARK_BANKRUPT, 0);
	ck_ok(margin_verdict(&p, &prm, D("66.666666666666"), D("0"), &flags,
			     &err));
	ck_assert(flags & MARGIN_FLAG_MARK_BANKRUPT);
}
END_TEST

/* ---- exact helper ---------------------------------------------------- */

START_TEST(exact_basics)
{
	struct margin_num a, b, c;
	struct mk_dec q;

	margin_num_set_dec(&a, D("123456789.123456789"));
	margin_num_set_dec(&b, D("-0.000000001"));
	margin_num_mul(&c, &a, &a);
	margin_num_mul(&c, &c, &a);
	margin_num_mul(&c, &c, &a);      /* a^4, about 2.3e32 */
	margin_num_mul(&a, &c, &b);      /* -a^4 * 1e-9 */
	ck_assert_int_eq(margin_num_sign(&a), -1);
	ck_assert_int_eq(margin_num_div(&a, &c, 9, MK_ROUND_EXACT, &q), MK_OK);
	ck_dec_eq(q, "-0.000000001");
	margin_num_add(&a, &a, &c);
	ck_assert_int_eq(margin_num_div(&a, &c, 9, MK_ROUND_EXACT, &q), MK_OK);
	ck_dec_eq(q, "0.999999999");
	margin_num_set_int(&a, 2);
	margin_num_set_int(&b, 3);
	ck_assert_int_eq(margin_num_div(&a, &b, 2, MK_ROUND_HALF_EVEN, &q),
			 MK_OK);
	ck_dec_eq(q, "0.67");
	ck_assert_int_eq(margin_num_div(&a, &b, 2, MK_ROUND_EXACT, &q),
			 MK_EINEXACT);
	margin_num_set_int(&b, 0);
	ck_assert_int_eq(margin_num_div(&a, &b, 2, MK_ROUND_FLOOR, &q),
			 MK_EDIVZERO);
	/* repeated squaring overflows into the sticky flag, never wraps */
	margin_num_set_dec(&a, D("9223372036854775807"));
	for (int i = 0; i < 6; i++)
		margin_num_mul(&a, &a, &a);
	ck_assert(!margin_num_ok(&a));
	margin_num_set_int(&b, 1);
	ck_assert_int_eq(margin_num_div(&a, &b, 0, MK_ROUND_FLOOR, &q),
			 MK_ERANGE);
	/* quotient too large for 64 bits */
	margin_num_set_dec(&a, D("9223372036854775807"));
	margin_num_mul_int(&a, &a, 2);
	ck_assert_int_eq(margin_num_div(&a, &b, 0, MK_ROUND_FLOOR, &q),
			 MK_ERANGE);
	margin_num_set_dec(&a, D("-9223372036854775808"));
	ck_assert_int_eq(margin_num_div(&a, &b, 0, MK_ROUND_FLOOR, &q), MK_OK);
	ck_assert(q.m == INT64_MIN);
	ck_rel(margin_num_ratio_double(&c, &c), 1.0, 1e-15);
	margin_num_set_dec(&a, D("-12.5"));
	ck_rel(margin_num_to_double(&a), -12.5, 1e-15);
}
END_TEST

static Suite *
margin_suite(void)
{
	Suite *s = suite_create("margin");
	TCase *v = tcase_create("vectors");
	TCase *st = tcase_create("states");

	tcase_add_checked_fixture(v, setup_tables, NULL);
	tcase_add_test(v, t1_linear_long_tier1);
	tcase_add_test(v, t2_linear_long_tier_drops);
	tcase_add_test(v, t3_linear_short_tier_rises);
	tcase_add_test(v, t4_linear_long_tier3);
	tcase_add_test(v, t5_inverse_long);
	tcase_add_test(v, t6_inverse_short);
	tcase_add_test(v, t7_inverse_short_1x_no_liquidation);
	tcase_add_test(v, t8_inverse_long_tier_rises);
	tcase_add_test(v, t9_mm_at_liquidation_price);
	tcase_add_test(v, t10_dydx_isolated);
	tcase_add_test(v, t11_hyperliquid_identity);
	tcase_add_test(v, t12_bitmex_inverse_pnl);
	tcase_add_test(v, t13_probability_and_limits);
	tcase_add_test(v, t13_probability_with_drift_inverts);
	tcase_add_test(v, t14_robust_index);
	tcase_add_test(v, t15_band_decision);
	tcase_add_test(v, t16_pyth_2021_replay);
	tcase_add_test(v, t17_inverse_greeks);
	tcase_add_test(v, topups_and_removable);
	tcase_add_test(v, band_edge_below_zero);
	tcase_add_test(v, beyond_last_cap);
	tcase_add_test(v, bracket_boundaries);
	tcase_add_test(v, validation_errors);
	tcase_add_test(v, evaluate_everything);
	tcase_add_test(v, exact_basics);
	suite_add_tcase(s, v);

	tcase_add_checked_fixture(st, setup_state, NULL);
	tcase_add_test(st, state_wick_never_liquidates);
	tcase_add_test(st, state_sustained_breach_liquidates_at_kth_mark);
	tcase_add_test(st, state_held_reports_last_valid);
	tcase_add_test(st, state_same_mark_counts_once);
	tcase_add_test(st, state_bankrupt);
	tcase_add_test(st, state_safe_and_at_risk);
	tcase_add_test(st, state_exact_boundary);
	suite_add_tcase(s, st);
	return s;
}

TU_MAIN(margin_suite)
