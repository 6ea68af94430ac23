/*
 * check_aggregator.c - the robust mark through the book's public interface
 * (DESIGN.md section 5): the T14/T16 vectors of margin-vectors.md, f liars
 * among 2f+1 legs and f+1 liars, quote-currency conversion and depegs,
 * exchange-time staleness and clock skew, quorum loss with a held mark,
 * conf widening and narrowing, fetch errors, spreads, config validation,
 * TWAP expiry, and bit-identical snapshots for identical inputs.
 */
#include "config.h"

#include <check.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aggregator/book.h"
#include "tests/testutil.h"

#define T0 INT64_C(1700000000000)
#define MAX_INST 4
#define MAX_LEGS 16

/* ---- helpers ---------------------------------------------------------- */

struct specs {
	size_t n;
	struct agg_instrument_spec s[MAX_INST];
	struct agg_leg_spec legs[MAX_INST][MAX_LEGS];
};

/* Adds an instrument with nlegs legs "v0".."v<n-1>" on market `sym`,
 * default parameters at scale 8, weight 1 each; returns its index. */
static size_t
add_inst(struct specs *sp, const char *sym, size_t nlegs, uint32_t min_src)
{
	size_t i = sp->n++, j;
	struct agg_instrument_spec *s = &sp->s[i];

	ck_assert_uint_le(sp->n, MAX_INST);
	ck_assert_uint_le(nlegs, MAX_LEGS);
	memset(s, 0, sizeof(*s));
	snprintf(s->symbol, sizeof(s->symbol), "%s", sym);
	agg_params_default(&s->params);
	s->params.min_sources = min_src;
	s->nlegs = nlegs;
	s->legs = sp->legs[i];
	for (j = 0; j < nlegs; j++) {
		struct agg_leg_spec *l = &sp->legs[i][j];

		memset(l, 0, sizeof(*l));
		snprintf(l->source, sizeof(l->source), "v%zu", j);
		snprintf(l->market, sizeof(l->market), "%s", sym);
		l->weight = 10000;
		l->convert_via = -1;
	}
	return i;
}

static struct agg_book *
make_book(struct specs *sp)
{
	struct agg_book *b = NULL;
	struct mk_err err;

	memset(&err, 0, sizeof(err));
	ck_assert_msg(agg_book_create(sp->s, sp->n, &b, &err) == MK_OK,
		      "create: %s", err.msg);
	return b;
}

static struct mk_dec
D(const char *s)
{
	struct mk_dec d;
	struct mk_err err;

	ck_assert_msg(mk_dec_parse(s, strlen(s), &d, &err) == MK_OK,
		      "parse %s", s);
	return d;
}

static bool
dec_is(struct mk_dec a, const char *s)
{
	return mk_dec_cmp(a, D(s)) == 0;
}

static const char *
fmt(struct mk_dec d, char *buf)
{
	mk_dec_format(d, buf, MK_DEC_STRLEN);
	return buf;
}

#define ck_assert_dec(a, s)                                                \
	do {                                                               \
		char b_[MK_DEC_STRLEN];                                    \
		ck_assert_msg(dec_is((a), (s)), "%s is %s, expected %s",   \
			      #a, fmt((a), b_), (s));                      \
	} while (0)

static struct agg_quote
q_last(const char *price, int64_t ts)
{
	struct agg_quote q;

	memset(&q, 0, sizeof(q));
	q.last = D(price);
	q.has_last = true;
	q.exchange_ts_ms = ts;
	return q;
}

static struct agg_quote
q_ba(const char *bid, const char *ask, int64_t ts)
{
	struct agg_quote q;

	memset(&q, 0, sizeof(q));
	q.bid = D(bid);
	q.ask = D(ask);
	q.has_bid = q.has_ask = true;
	q.exchange_ts_ms = ts;
	return q;
}

/* bid/ask quote from mantissas at scale 8 */
static struct agg_quote
q_ba_m(int64_t bid, int64_t ask, int64_t ts)
{
	struct agg_quote q;

	memset(&q, 0, sizeof(q));
	q.bid = MK_DEC(bid, 8);
	q.ask = MK_DEC(ask, 8);
	q.has_bid = q.has_ask = true;
	q.exchange_ts_ms = ts;
	return q;
}

static size_t
leg_id(const struct agg_book *b, size_t inst, size_t leg)
{
	size_t id = 0;

	ck_assert_int_eq(agg_book_leg_id(b, inst, leg, &id), MK_OK);
	return id;
}

static void
put(struct agg_book *b, size_t inst, size_t leg, struct agg_quote q,
    int64_t now)
{
	ck_assert_int_eq(agg_book_quote(b, leg_id(b, inst, leg), &q, now),
			 MK_OK);
}

static bool
has_reason(const struct agg_mark *m, enum agg_mark_status s)
{
	return (m->reasons & AGG_REASON(s)) != 0;
}

/* ---- T14: one venue prints 8,200 among ~65,750 ---------------------- */

START_TEST(test_t14_outlier_excluded)
{
	static const char *const px[] = {
		"65740", "65755", "65770", "8200", "65720",
	};
	struct specs sp = { 0 };
	struct agg_book *b;
	const struct agg_mark *m;
	struct agg_quote qs[5];
	size_t ids[5], j;

	add_inst(&sp, "BTC-USD", 5, 3);
	b = make_book(&sp);
	for (j = 0; j < 5; j++) {
		qs[j] = q_last(px[j], T0);
		ids[j] = leg_id(b, 0, j);
	}
	ck_assert_int_eq(agg_book_quotes(b, ids, qs, 5, T0), MK_OK);
	m = agg_book_mark(b, 0);
	ck_assert_int_eq(m->legs[3].state, AGG_LEG_OUTLIER);
	ck_assert_int_eq(m->legs[3].reason, AGG_EXCL_OUTLIER);
	ck_assert_str_eq(agg_exclusion_name(m->legs[3].reason), "outlier");
	for (j = 0; j < 5; j++)
		if (j != 3)
			ck_assert_int_eq(m->legs[j].state, AGG_LEG_USED);
	ck_assert_uint_eq(m->sources_used, 4);
	ck_assert_uint_eq(m->sources_total, 5);
	ck_assert(m->has_price && !m->held);
	ck_assert(mk_dec_cmp(m->price, D("65720")) >= 0);
	ck_assert(mk_dec_cmp(m->price, D("65770")) <= 0);
	/* votes (one tick = 1e-8 each side): p50 is the mean of the 6th and
	 * 7th of 12 votes, 65740.00000001 and 65754.99999999 */
	ck_assert_dec(m->price, "65747.5");
	ck_assert_dec(m->conf, "17.5");
	ck_assert_int_eq(m->status, AGG_MARK_DEGRADED);
	ck_assert(m->valid_for_liquidation);
	ck_assert_uint_eq(m->seq, 1);
	agg_book_destroy(b);
}
END_TEST

START_TEST(test_t14_single_source_too_volatile)
{
	struct specs sp = { 0 };
	struct agg_book *b;
	const struct agg_mark *m;
	int64_t t;
	size_t j;

	add_inst(&sp, "BTC-USD", 5, 1);
	b = make_book(&sp);
	/* a minute of marks near 65,760 */
	for (t = T0; t <= T0 + 60000; t += 1000)
		for (j = 0; j < 5; j++)
			put(b, 0, j, q_last("65760", t), t);
	m = agg_book_mark(b, 0);
	ck_assert(m->valid_for_liquidation);
	ck_assert_dec(m->twap, "65760");
	/* the others fall silent; only the 8,200 venue speaks */
	t = T0 + 71000;
	put(b, 0, 3, q_last("8200", t), t);
	m = agg_book_mark(b, 0);
	ck_assert_uint_eq(m->sources_used, 1);
	ck_assert_int_eq(m->legs[0].state, AGG_LEG_STALE);
	ck_assert_int_eq(m->legs[3].state, AGG_LEG_USED);
	ck_assert(m->has_price && !m->held);
	ck_assert_dec(m->price, "8200");
	/* 65,760 / 8,200 = 8.02 > 5 */
	ck_assert(has_reason(m, AGG_MARK_TOO_VOLATILE));
	ck_assert_int_eq(m->status, AGG_MARK_TOO_VOLATILE);
	ck_assert(!m->valid_for_liquidation);
	ck_assert_str_eq(agg_mark_status_name(m->status), "too_volatile");
	/* the TWAP did not take the bad mark */
	ck_assert_dec(m->twap, "65760");
	ck_assert_int_eq(m->last_good_at_ms, T0 + 60000);
	/* the honest venues come back: 8,200 is an outlier again */
	t += 1000;
	for (j = 0; j < 5; j++)
		if (j != 3)
			put(b, 0, j, q_last("65760", t), t);
	m = agg_book_mark(b, 0);
	ck_assert_int_eq(m->legs[3].state, AGG_LEG_OUTLIER);
	ck_assert(m->valid_for_liquidation);
	ck_assert_dec(m->price, "65760");
	agg_book_destroy(b);
}
END_TEST

/* ---- T16: Pyth, 2021: 5,402 +- 21,623 after a TWAP of ~42,000 ------- */

static struct agg_quote
q_pyth(const char *price, const char *conf, int64_t ts)
{
	struct agg_quote q = q_last(price, ts);

	q.conf = D(conf);
	q.has_conf = true;
	return q;
}

START_TEST(test_t16_pyth_uncertain_and_volatile)
{
	struct specs sp = { 0 };
	struct agg_book *b;
	const struct agg_mark *m;
	int64_t t;

	add_inst(&sp, "BTC-USD", 1, 1);
	b = make_book(&sp);
	for (t = T0; t <= T0 + 120000; t += 1000)
		put(b, 0, 0, q_pyth("42000", "10", t), t);
	m = agg_book_mark(b, 0);
	ck_assert_int_eq(m->status, AGG_MARK_OK);
	ck_assert_dec(m->conf, "10");
	t += 1000;
	put(b, 0, 0, q_pyth("5402", "21623", t), t);
	m = agg_book_mark(b, 0);
	ck_assert_dec(m->price, "5402");
	ck_assert_dec(m->conf, "21623");
	/* conf / price = 4.003 > 2%; TWAP ratio 7.77 > 5 */
	ck_assert(has_reason(m, AGG_MARK_TOO_UNCERTAIN));
	ck_assert(has_reason(m, AGG_MARK_TOO_VOLATILE));
	ck_assert_int_eq(m->status, AGG_MARK_TOO_VOLATILE);
	ck_assert(!m->valid_for_liquidation);
	ck_assert_dec(m->twap, "42000");
	agg_book_destroy(b);

	/* the same print with no history: too uncertain alone */
	memset(&sp, 0, sizeof(sp));
	add_inst(&sp, "BTC-USD", 1, 1);
	b = make_book(&sp);
	put(b, 0, 0, q_pyth("5402", "21623", T0), T0);
	m = agg_book_mark(b, 0);
	ck_assert_int_eq(m->status, AGG_MARK_TOO_UNCERTAIN);
	ck_assert(!has_reason(m, AGG_MARK_TOO_VOLATILE));
	ck_assert(!m->valid_for_liquidation);
	agg_book_destroy(b);
}
END_TEST

/* ---- liars ------------------------------------------------------------ */

enum liar {
	LIAR_ZERO,
	LIAR_NEGATIVE,
	LIAR_HUGE,          /* a thousand times the price */
	LIAR_MAXINT,        /* the largest mantissa */
	LIAR_SLIGHTLY_OFF,  /* 0.1% .. 1.2% away, inside the outlier bound */
	LIAR_FROZEN,        /* exchange timestamp 30+ s old, any price */
	LIAR_FAR_OFF,       /* colluding: the episode's shared price, 30% off */
	LIAR_KINDS
};

/* bps of x, exact enough for test prices (x < 2^50). */
static int64_t
bps(int64_t x, int64_t b)
{
	return x / 10000 * b;
}

static struct agg_quote
honest_quote(struct tu_rng *r, int64_t p, int64_t now)
{
	int64_t mid = p + bps(p, tu_rng_range(r, -5, 5));
	int64_t half = bps(p, 1) / 2 + tu_rng_range(r, 0, bps(p, 3));

	return q_ba_m(mid - half, mid + half, now - tu_rng_range(r, 0, 900));
}

static struct agg_quote
liar_quote(struct tu_rng *r, enum liar kind, int64_t p, int64_t far,
	   int64_t now)
{
	struct agg_quote q;
	int64_t mid;

	switch (kind) {
	case LIAR_ZERO:
		q = q_ba_m(0, 0, now);
		if (tu_rng_range(r, 0, 1)) {
			q.has_bid = q.has_ask = false;
			q.last = MK_DEC(0, 8);
			q.has_last = true;
		}
		return q;
	case LIAR_NEGATIVE:
		q = q_ba_m(-p - 10, -p + 10, now);
		return q;
	case LIAR_HUGE:
		return q_ba_m(p * 1000 - 5, p * 1000 + 5, now);
	case LIAR_MAXINT:
		memset(&q, 0, sizeof(q));
		q.last = MK_DEC(INT64_MAX, 8);
		q.has_last = true;
		q.exchange_ts_ms = now;
		return q;
	case LIAR_SLIGHTLY_OFF:
		mid = p + (tu_rng_range(r, 0, 1) ? 1 : -1) *
			  bps(p, tu_rng_range(r, 10, 120));
		return q_ba_m(mid - bps(p, 1), mid + bps(p, 1), now);
	case LIAR_FROZEN:
		mid = p + bps(p, tu_rng_range(r, -1000, 1000));
		return q_ba_m(mid - 100, mid + 100,
			      now - 30000 - tu_rng_range(r, 0, 100000));
	case LIAR_FAR_OFF:
	case LIAR_KINDS:
		break;
	}
	return q_ba_m(far - bps(p, 1), far + bps(p, 1), now);
}

/* Marks `count` distinct legs of nlegs as liars (the rest honest). */
static void
choose_liars(struct tu_rng *r, bool *liar, size_t nlegs, int count)
{
	int k = 0;

	memset(liar, 0, nlegs * sizeof(*liar));
	while (k < count) {
		size_t x = (size_t)tu_rng_range(r, 0, (int64_t)nlegs - 1);

		if (!liar[x]) {
			liar[x] = true;
			k++;
		}
	}
}

/* f liars among 2f+1 legs, quorum f+1: always valid, always inside the
 * honest legs' [min bid, max ask]. */
START_TEST(test_f_liars_cannot_move_mark)
{
	const int f = _i;
	const size_t nlegs = (size_t)(2 * f + 1);
	struct tu_rng r = TU_RNG_INIT(0x11a40000 + (uint64_t)f);
	int trial;

	for (trial = 0; trial < 40; trial++) {
		struct specs sp = { 0 };
		struct agg_book *b;
		int64_t p = INT64_C(6576000000000), now = T0;
		size_t ids[MAX_LEGS], j;
		int round;

		add_inst(&sp, "BTC-USD", nlegs, (uint32_t)f + 1);
		b = make_book(&sp);
		for (j = 0; j < nlegs; j++)
			ids[j] = leg_id(b, 0, j);
		for (round = 0; round < 170; round++) {
			struct agg_quote qs[MAX_LEGS];
			bool liar[MAX_LEGS];
			int64_t lo = INT64_MAX, hi = INT64_MIN;
			const struct agg_mark *m;

			now += 1000;
			p += bps(p, tu_rng_range(&r, -3, 3));
			/* 20 honest rounds, then f random liars each round */
			choose_liars(&r, liar, nlegs, round < 20 ? 0 : f);
			for (j = 0; j < nlegs; j++) {
				if (liar[j]) {
					enum liar kind = (enum liar)
						tu_rng_range(&r, 0, LIAR_FROZEN);

					qs[j] = liar_quote(&r, kind, p, 0, now);
					continue;
				}
				qs[j] = honest_quote(&r, p, now);
				lo = qs[j].bid.m < lo ? qs[j].bid.m : lo;
				hi = qs[j].ask.m > hi ? qs[j].ask.m : hi;
			}
			ck_assert_int_eq(agg_book_quotes(b, ids, qs, nlegs, now),
					 MK_OK);
			m = agg_book_mark(b, 0);
			ck_assert_msg(m->has_price && !m->held &&
				      m->price.m >= lo && m->price.m <= hi,
				      "f=%d trial %d round %d: %" PRId64
				      " outside [%" PRId64 ", %" PRId64 "]",
				      f, trial, round, m->price.m, lo, hi);
			ck_assert_msg(m->valid_for_liquidation,
				      "f=%d trial %d round %d: status %s", f,
				      trial, round,
				      agg_mark_status_name(m->status));
		}
		agg_book_destroy(b);
	}
}
END_TEST

/* Draws the liars' kinds for an attack episode: all colluding far off
 * (half of the time), else a mix; and the colluders' shared price. */
static void
new_attack(struct tu_rng *r, enum liar *kind, size_t nlegs, int64_t p,
	   int64_t *far)
{
	static const enum liar kinds[] = {
		LIAR_ZERO, LIAR_NEGATIVE, LIAR_HUGE, LIAR_FROZEN, LIAR_FAR_OFF,
	};
	bool all_far = tu_rng_range(r, 0, 1);
	size_t j;

	for (j = 0; j < nlegs; j++)
		kind[j] = all_far ? LIAR_FAR_OFF : kinds[tu_rng_range(r, 0, 4)];
	*far = p + (tu_rng_range(r, 0, 1) ? 1 : -1) * bps(p, 3000);
}

/* f+1 liars among 2f+1 legs: the mark may be wrong, but then it is never
 * valid for liquidation. Honest episodes alternate with attacks shorter
 * than the TWAP window. */
START_TEST(test_f_plus_one_liars_never_valid_outside)
{
	const int f = _i;
	const size_t nlegs = (size_t)(2 * f + 1);
	struct tu_rng r = TU_RNG_INIT(0x11a50000 + (uint64_t)f);
	int trial, moved = 0, attacked = 0;

	for (trial = 0; trial < 30; trial++) {
		struct specs sp = { 0 };
		struct agg_book *b;
		int64_t p = INT64_C(6576000000000), now = T0, far = 0;
		size_t ids[MAX_LEGS], j;
		bool liar[MAX_LEGS] = { false };
		enum liar kind[MAX_LEGS] = { LIAR_ZERO };
		int round, left = 30;
		bool attack = false;

		add_inst(&sp, "BTC-USD", nlegs, (uint32_t)f + 1);
		b = make_book(&sp);
		for (j = 0; j < nlegs; j++)
			ids[j] = leg_id(b, 0, j);
		for (round = 0; round < 400; round++) {
			struct agg_quote qs[MAX_LEGS];
			int64_t lo = INT64_MAX, hi = INT64_MIN;
			const struct agg_mark *m;
			bool inside;

			if (left-- == 0) {
				/* switch between honest and attack episodes */
				attack = !attack;
				left = attack ? (int)tu_rng_range(&r, 1, 100)
					      : (int)tu_rng_range(&r, 5, 40);
				choose_liars(&r, liar, nlegs, attack ? f + 1 : 0);
				new_attack(&r, kind, nlegs, p, &far);
				attacked += attack;
			}
			now += 1000;
			p += bps(p, tu_rng_range(&r, -3, 3));
			for (j = 0; j < nlegs; j++) {
				if (liar[j]) {
					qs[j] = liar_quote(&r, kind[j], p, far,
							   now);
					continue;
				}
				qs[j] = honest_quote(&r, p, now);
				lo = qs[j].bid.m < lo ? qs[j].bid.m : lo;
				hi = qs[j].ask.m > hi ? qs[j].ask.m : hi;
			}
			ck_assert_int_eq(agg_book_quotes(b, ids, qs, nlegs, now),
					 MK_OK);
			m = agg_book_mark(b, 0);
			inside = m->has_price && m->price.m >= lo &&
				 m->price.m <= hi;
			ck_assert_msg(!m->valid_for_liquidation || inside,
				      "f=%d trial %d round %d: valid mark %"
				      PRId64 " outside [%" PRId64 ", %" PRId64
				      "]", f, trial, round, m->price.m, lo, hi);
			if (!attack)
				ck_assert_msg(m->valid_for_liquidation &&
					      inside, "f=%d trial %d round %d:"
					      " honest round not valid", f,
					      trial, round);
			moved += m->has_price && !m->held && !inside;
		}
		agg_book_destroy(b);
	}
	/* the liars really did move the raw aggregate, many times */
	ck_assert_int_gt(attacked, 30);
	ck_assert_int_gt(moved, 100);
}
END_TEST

/* ---- conversion ------------------------------------------------------- */

/* USDT-USD (3 legs) and BTC-USD: two USD legs and one USDT leg. */
static struct agg_book *
conversion_book(void)
{
	struct specs sp = { 0 };
	size_t usdt, btc;

	usdt = add_inst(&sp, "USDT-USD", 3, 2);
	btc = add_inst(&sp, "BTC-USD", 3, 2);
	sp.legs[btc][2].convert_via = (int)usdt;
	snprintf(sp.legs[btc][2].market, AGG_MARKET_MAX, "BTCUSDT");
	return make_book(&sp);
}

START_TEST(test_conversion_depeg)
{
	struct agg_book *b = conversion_book();
	const struct agg_mark *m, *u;
	const struct agg_leg_view *l;
	int64_t t = T0;
	size_t j;
	uint64_t seq;

	for (j = 0; j < 3; j++)
		put(b, 0, j, q_ba("0.8999", "0.9001", t), t);
	u = agg_book_mark(b, 0);
	ck_assert_int_eq(u->status, AGG_MARK_OK);
	ck_assert_dec(u->price, "0.9");
	ck_assert_dec(u->conf, "0.0001");
	put(b, 1, 0, q_last("65690", t), t);
	put(b, 1, 1, q_last("65710", t), t);
	put(b, 1, 2, q_last("73000", t), t);
	m = agg_book_mark(b, 1);
	l = &m->legs[2];
	ck_assert_int_eq(l->state, AGG_LEG_USED);
	ck_assert_str_eq(l->via, "USDT-USD");
	ck_assert_dec(l->raw_price, "73000");
	/* 73,000 USDT at 0.90 USD = 65,700 USD, not 73,000 */
	ck_assert_dec(l->price, "65700");
	/* The interval product's half-width c q + p c_q + c c_q, each term
	 * rounded up at scale 8: 1e-8 * 0.9 -> 1e-8, 73000 * 0.0001 = 7.3,
	 * 1e-8 * 0.0001 -> 1e-8: 7.30000002 */
	ck_assert_dec(l->conf, "7.30000002");
	ck_assert_int_eq(m->status, AGG_MARK_OK);
	ck_assert(m->valid_for_liquidation);
	ck_assert_dec(m->price, "65700");

	/* USDT-USD moves: BTC-USD is recomputed with it */
	seq = m->seq;
	t += 1000;
	for (j = 0; j < 3; j++)
		put(b, 0, j, q_ba("0.9499", "0.9501", t), t);
	m = agg_book_mark(b, 1);
	ck_assert_uint_gt(m->seq, seq);
	ck_assert_dec(m->legs[2].price, "69350");

	/* USDT-USD loses its quorum: the leg is excluded, never taken as 1 */
	t += 1000;
	ck_assert_int_eq(agg_book_error(b, leg_id(b, 0, 0), AGG_FETCH_BAD_DATA,
					"{\"code\":-1121}", t), MK_OK);
	ck_assert_int_eq(agg_book_error(b, leg_id(b, 0, 1), AGG_FETCH_BAD_DATA,
					"unparseable", t), MK_OK);
	u = agg_book_mark(b, 0);
	ck_assert_int_eq(u->status, AGG_MARK_NO_QUORUM);
	m = agg_book_mark(b, 1);
	l = &m->legs[2];
	ck_assert_int_eq(l->reason, AGG_EXCL_CONVERSION_UNAVAILABLE);
	ck_assert_str_eq(agg_exclusion_name(l->reason),
			 "conversion_unavailable");
	ck_assert_int_eq(l->state, AGG_LEG_INVALID);
	ck_assert(!l->has_price);
	ck_assert_uint_eq(m->sources_used, 2);
	ck_assert_int_eq(m->status, AGG_MARK_DEGRADED);
	ck_assert_dec(m->price, "65700");
	agg_book_destroy(b);
}
END_TEST

START_TEST(test_conversion_never_one)
{
	struct agg_book *b = conversion_book();
	const struct agg_mark *m;
	size_t j;

	/* USDT-USD has never had a mark; only the USDT leg quotes at 1:1
	 * prices -- it must not be used, so there is no quorum at all. */
	put(b, 1, 2, q_last("65700", T0), T0);
	put(b, 1, 0, q_last("65700", T0), T0);
	m = agg_book_mark(b, 1);
	ck_assert_int_eq(m->legs[2].reason, AGG_EXCL_CONVERSION_UNAVAILABLE);
	ck_assert_uint_eq(m->sources_used, 1);
	ck_assert_int_eq(m->status, AGG_MARK_NO_QUORUM);
	ck_assert(!m->has_price);
	/* a USDT-USD mark that exists but is not valid (too uncertain) is
	 * no better */
	for (j = 0; j < 3; j++)
		put(b, 0, j, q_ba("0.96", "1.04", T0), T0);
	ck_assert_int_eq(agg_book_mark(b, 0)->status, AGG_MARK_TOO_UNCERTAIN);
	ck_assert(!agg_book_mark(b, 0)->valid_for_liquidation);
	m = agg_book_mark(b, 1);
	ck_assert_int_eq(m->legs[2].reason, AGG_EXCL_CONVERSION_UNAVAILABLE);
	agg_book_destroy(b);
}
END_TEST

START_TEST(test_conversion_age_propagates)
{
	struct specs sp = { 0 };
	struct agg_book *b;
	const struct agg_mark *m;
	size_t j;

	/* stablecoin feeds may be slower: USDT-USD accepts 60 s */
	add_inst(&sp, "USDT-USD", 3, 2);
	add_inst(&sp, "BTC-USD", 3, 2);
	sp.s[0].params.max_age_ms = 60000;
	sp.legs[1][2].convert_via = 0;
	b = make_book(&sp);

	/* USDT-USD data is 8 s old, the BTCUSDT quote 3 s old */
	for (j = 0; j < 3; j++)
		put(b, 0, j, q_ba("0.9999", "1.0001", T0 - 8000), T0);
	put(b, 1, 0, q_last("65700", T0), T0);
	put(b, 1, 2, q_last("65700", T0 - 3000), T0);
	m = agg_book_mark(b, 1);
	ck_assert_int_eq(m->legs[2].age_ms, 8000);
	ck_assert_int_eq(m->legs[2].exchange_age_ms, 3000);
	ck_assert_int_eq(m->legs[2].state, AGG_LEG_USED);
	/* 3 s later the converted leg is 11 s old: stale, although its own
	 * quote is only 6 s old */
	ck_assert_int_eq(agg_book_tick(b, T0 + 3000), MK_OK);
	ck_assert(agg_book_mark(b, 0)->valid_for_liquidation);
	m = agg_book_mark(b, 1);
	ck_assert_int_eq(m->legs[2].reason, AGG_EXCL_STALE);
	ck_assert_int_eq(m->legs[2].age_ms, 11000);
	agg_book_destroy(b);
}
END_TEST

START_TEST(test_conversion_cycle_rejected)
{
	struct specs sp = { 0 };
	struct agg_book *b = NULL;
	struct mk_err err;

	add_inst(&sp, "AAA-BBB", 2, 1);
	add_inst(&sp, "BBB-CCC", 2, 1);
	add_inst(&sp, "CCC-AAA", 2, 1);
	sp.legs[0][1].convert_via = 1;
	sp.legs[1][0].convert_via = 2;
	sp.legs[2][1].convert_via = 0;
	memset(&err, 0, sizeof(err));
	ck_assert_int_eq(agg_book_create(sp.s, sp.n, &b, &err), MK_ECONFIG);
	ck_assert_ptr_null(b);
	ck_assert_msg(strstr(err.msg, "cycle") != NULL &&
		      strstr(err.msg, "AAA-BBB") != NULL &&
		      strstr(err.msg, "BBB-CCC") != NULL &&
		      strstr(err.msg, "CCC-AAA") != NULL, "%s", err.msg);
	/* a chain without a cycle is fine, in any index order */
	sp.legs[2][1].convert_via = -1;
	ck_assert_int_eq(agg_book_create(sp.s, sp.n, &b, &err), MK_OK);
	agg_book_destroy(b);
}
END_TEST

/* ---- time ------------------------------------------------------------- */

START_TEST(test_exchange_time_staleness)
{
	struct specs sp = { 0 };
	struct agg_book *b;
	const struct agg_mark *m;
	const struct agg_leg_view *l;

	add_inst(&sp, "BTC-USD", 3, 2);
	b = make_book(&sp);
	put(b, 0, 0, q_last("65700", T0), T0);
	put(b, 0, 1, q_last("65700", 0), T0);       /* no exchange time */
	/* received just now, stamped by its exchange 30 s ago */
	put(b, 0, 2, q_last("65700", T0 - 30000), T0);
	m = agg_book_mark(b, 0);
	l = &m->legs[2];
	ck_assert_int_eq(l->state, AGG_LEG_STALE);
	ck_assert_int_eq(l->reason, AGG_EXCL_STALE);
	ck_assert_int_eq(l->age_ms, 30000);
	ck_assert_int_eq(l->exchange_age_ms, 30000);
	ck_assert_int_eq(l->recv_age_ms, 0);
	ck_assert_int_eq(l->recv_ts_ms, T0);
	ck_assert_int_eq(l->exchange_ts_ms, T0 - 30000);
	/* without an exchange time, receive time decides */
	ck_assert_int_eq(m->legs[1].state, AGG_LEG_USED);
	ck_assert_int_eq(m->legs[1].exchange_age_ms, -1);
	ck_assert_int_eq(m->status, AGG_MARK_DEGRADED);
	/* an exchange clock 5 s ahead of ours (bound 2 s) */
	put(b, 0, 2, q_last("65700", T0 + 6000), T0 + 1000);
	l = &agg_book_mark(b, 0)->legs[2];
	ck_assert_int_eq(l->reason, AGG_EXCL_CLOCK_SKEW);
	ck_assert_int_eq(l->state, AGG_LEG_INVALID);
	put(b, 0, 2, q_last("65700", INT64_MAX), T0 + 1000);
	ck_assert_int_eq(agg_book_mark(b, 0)->legs[2].reason,
			 AGG_EXCL_CLOCK_SKEW);
	/* 1 s ahead is within the bound */
	put(b, 0, 2, q_last("65700", T0 + 2000), T0 + 1000);
	ck_assert_int_eq(agg_book_mark(b, 0)->legs[2].state, AGG_LEG_USED);
	/* silence: a tick alone makes the quotes stale */
	ck_assert_int_eq(agg_book_tick(b, T0 + 10500), MK_OK);
	m = agg_book_mark(b, 0);
	ck_assert_int_eq(m->legs[0].state, AGG_LEG_STALE);
	ck_assert_int_eq(m->legs[1].state, AGG_LEG_STALE);
	ck_assert_int_eq(m->legs[2].state, AGG_LEG_USED);
	ck_assert_int_eq(m->status, AGG_MARK_NO_QUORUM);
	agg_book_destroy(b);
}
END_TEST

START_TEST(test_quorum_loss_holds_last_good)
{
	struct specs sp = { 0 };
	struct agg_book *b;
	const struct agg_mark *m;
	uint64_t seq;

	add_inst(&sp, "BTC-USD", 3, 3);
	b = make_book(&sp);
	/* never had a mark: no quorum, no price */
	m = agg_book_mark(b, 0);
	ck_assert_int_eq(m->status, AGG_MARK_NO_QUORUM);
	ck_assert(!m->has_price && !m->has_last_good);
	put(b, 0, 0, q_last("100", T0), T0);
	put(b, 0, 1, q_last("101", T0), T0);
	put(b, 0, 2, q_last("102", T0), T0);
	m = agg_book_mark(b, 0);
	ck_assert_int_eq(m->status, AGG_MARK_OK);
	ck_assert_dec(m->price, "101");
	seq = m->seq;

	/* leg 0 answers garbage: 2 of 3, no quorum; the 101 mark is held */
	ck_assert_int_eq(agg_book_error(b, leg_id(b, 0, 0), AGG_FETCH_BAD_DATA,
					"unexpected body", T0 + 1000), MK_OK);
	m = agg_book_mark(b, 0);
	ck_assert_int_eq(m->status, AGG_MARK_NO_QUORUM);
	ck_assert(!m->valid_for_liquidation);
	ck_assert(m->has_price && m->held);
	ck_assert_dec(m->price, "101");
	ck_assert_int_eq(m->age_ms, 1000);
	ck_assert_int_eq(m->last_good_at_ms, T0);
	ck_assert_uint_eq(m->seq, seq);
	ck_assert_int_eq(m->legs[0].state, AGG_LEG_ERROR);
	ck_assert_str_eq(m->legs[0].error, "unexpected body");

	/* later, other legs keep quoting new prices: still held, older */
	put(b, 0, 1, q_last("102", T0 + 6000), T0 + 6000);
	put(b, 0, 2, q_last("103", T0 + 6000), T0 + 6000);
	m = agg_book_mark(b, 0);
	ck_assert(m->held);
	ck_assert_dec(m->price, "101");
	ck_assert_int_eq(m->age_ms, 6000);
	ck_assert_int_eq(m->status, AGG_MARK_NO_QUORUM);
	ck_assert(has_reason(m, AGG_MARK_NO_QUORUM) &&
		  !has_reason(m, AGG_MARK_STALE));

	/* past max_age_ms the held mark is stale */
	ck_assert_int_eq(agg_book_tick(b, T0 + 12000), MK_OK);
	m = agg_book_mark(b, 0);
	ck_assert(m->held);
	ck_assert_int_eq(m->age_ms, 12000);
	ck_assert_int_eq(m->status, AGG_MARK_STALE);
	ck_assert(has_reason(m, AGG_MARK_NO_QUORUM) &&
		  has_reason(m, AGG_MARK_STALE));

	/* recovery */
	put(b, 0, 0, q_last("101", T0 + 13000), T0 + 13000);
	m = agg_book_mark(b, 0);
	ck_assert_int_eq(m->status, AGG_MARK_OK);
	ck_assert_uint_eq(m->reasons, 0);
	ck_assert(!m->held && m->valid_for_liquidation);
	ck_assert_int_eq(m->age_ms, 0);
	ck_assert_dec(m->price, "102");
	ck_assert_int_eq(m->last_good_at_ms, T0 + 13000);
	ck_assert_uint_eq(m->seq, seq + 1);
	agg_book_destroy(b);
}
END_TEST

START_TEST(test_transient_error_keeps_fresh_quote)
{
	struct specs sp = { 0 };
	struct agg_book *b;
	const struct agg_mark *m;
	uint64_t seq;

	add_inst(&sp, "BTC-USD", 3, 3);
	b = make_book(&sp);
	put(b, 0, 0, q_last("100", T0), T0);
	put(b, 0, 1, q_last("100", T0), T0);
	put(b, 0, 2, q_last("100", T0), T0);
	seq = agg_book_mark(b, 0)->seq;
	ck_assert_int_eq(agg_book_error(b, leg_id(b, 0, 1), AGG_FETCH_TRANSIENT,
					"timeout after 2000 ms", T0 + 500),
			 MK_OK);
	m = agg_book_mark(b, 0);
	ck_assert_int_eq(m->legs[1].state, AGG_LEG_USED);
	ck_assert_str_eq(m->legs[1].error, "timeout after 2000 ms");
	ck_assert_int_eq(m->legs[1].error_at_ms, T0 + 500);
	ck_assert(!m->legs[1].error_bad_data);
	ck_assert_int_eq(m->status, AGG_MARK_OK);
	/* nothing new was learnt: no new mark */
	ck_assert_uint_eq(m->seq, seq);
	/* a bad-data error excludes; the next quote clears it */
	ck_assert_int_eq(agg_book_error(b, leg_id(b, 0, 1), AGG_FETCH_BAD_DATA,
					NULL, T0 + 600), MK_OK);
	ck_assert_int_eq(agg_book_mark(b, 0)->legs[1].reason, AGG_EXCL_ERROR);
	put(b, 0, 1, q_last("100", T0 + 700), T0 + 700);
	ck_assert_int_eq(agg_book_mark(b, 0)->legs[1].state, AGG_LEG_USED);
	ck_assert_int_eq(agg_book_mark(b, 0)->status, AGG_MARK_OK);
	agg_book_destroy(b);
}
END_TEST

/* ---- conf ------------------------------------------------------------- */

START_TEST(test_conf_tracks_disagreement)
{
	static const char *const rounds[][3] = {
		{ "99.9", "100", "100.1" },   /* agree */
		{ "99", "100", "101" },       /* disagree */
		{ "98", "100", "102" },       /* disagree more */
		{ "99.5", "100", "100.5" },   /* agree again */
		{ "100", "100", "100" },      /* fully */
	};
	struct specs sp = { 0 };
	struct agg_book *b;
	struct mk_dec conf[5];
	size_t k, j;

	add_inst(&sp, "X-USD", 3, 3);
	b = make_book(&sp);
	for (k = 0; k < 5; k++) {
		int64_t t = T0 + (int64_t)k * 1000;

		for (j = 0; j < 3; j++)
			put(b, 0, j, q_last(rounds[k][j], t), t);
		conf[k] = agg_book_mark(b, 0)->conf;
		ck_assert(agg_book_mark(b, 0)->valid_for_liquidation);
	}
	ck_assert(mk_dec_cmp(conf[1], conf[0]) > 0);
	ck_assert(mk_dec_cmp(conf[2], conf[1]) > 0);
	ck_assert(mk_dec_cmp(conf[3], conf[2]) < 0);
	ck_assert(mk_dec_cmp(conf[4], conf[3]) < 0);
	/* spread 1 each side: p75 - p50 is the distance to the next leg */
	ck_assert_dec(conf[1], "0.99999999");
	ck_assert_dec(conf[2], "1.99999999");
	/* all equal: the legs' own uncertainty (one tick) is the floor */
	ck_assert_dec(conf[4], "0.00000001");
	agg_book_destroy(b);
}
END_TEST

START_TEST(test_conf_floor_is_tightest_leg)
{
	struct specs sp = { 0 };
	struct agg_book *b;
	const struct agg_mark *m;

	add_inst(&sp, "X-USD", 3, 3);
	b = make_book(&sp);
	/* votes 99,100,101 | 100,101,102 | 99.5,100.5,101.5: p25 = 100,
	 * p50 = 100.5, p75 = 101, so the spread of votes says 0.5, but no
	 * leg claims better than 1: conf is 1 */
	put(b, 0, 0, q_pyth("100", "1", T0), T0);
	put(b, 0, 1, q_pyth("101", "1", T0), T0);
	put(b, 0, 2, q_pyth("100.5", "1", T0), T0);
	m = agg_book_mark(b, 0);
	ck_assert_dec(m->price, "100.5");
	ck_assert_dec(m->conf, "1");
	ck_assert_dec(m->legs[0].conf, "1");
	/* a bid/ask leg's own conf is half its spread */
	put(b, 0, 0, q_ba("99", "102", T0), T0);
	ck_assert_dec(agg_book_mark(b, 0)->legs[0].conf, "1.5");
	agg_book_destroy(b);
}
END_TEST

/* ---- per-leg validation ------------------------------------------------ */

START_TEST(test_leg_checks)
{
	struct specs sp = { 0 };
	struct agg_book *b;
	const struct agg_mark *m;
	struct agg_quote q;

	add_inst(&sp, "X-USD", 6, 1);
	b = make_book(&sp);
	put(b, 0, 0, q_ba("101", "99", T0), T0);        /* crossed */
	put(b, 0, 1, q_ba("90", "110", T0), T0);        /* 20% spread */
	put(b, 0, 2, q_last("-5", T0), T0);
	put(b, 0, 3, q_ba("0", "100", T0), T0);
	q = q_last("100", T0);
	q.last.scale = 40;                              /* corrupt decimal */
	put(b, 0, 4, q, T0);
	put(b, 0, 5, q_ba("99.995", "100.005", T0), T0);
	m = agg_book_mark(b, 0);
	ck_assert_int_eq(m->legs[0].reason, AGG_EXCL_BAD_SPREAD);
	ck_assert_int_eq(m->legs[1].reason, AGG_EXCL_BAD_SPREAD);
	ck_assert_int_eq(m->legs[2].reason, AGG_EXCL_NON_POSITIVE);
	ck_assert_int_eq(m->legs[3].reason, AGG_EXCL_NON_POSITIVE);
	ck_assert_int_eq(m->legs[4].reason, AGG_EXCL_OUT_OF_RANGE);
	ck_assert_int_eq(m->legs[5].state, AGG_LEG_USED);
	ck_assert_dec(m->legs[5].price, "100");
	ck_assert_dec(m->legs[5].conf, "0.005");
	ck_assert_dec(m->legs[0].raw_price, "100");     /* shown anyway */
	ck_assert_uint_eq(m->sources_used, 1);
	ck_assert_int_eq(m->status, AGG_MARK_DEGRADED);
	ck_assert_int_eq(agg_book_quote(b, 99, &q, T0), MK_EINVAL);
	ck_assert_int_eq(agg_book_quote(b, 0, &q, -1), MK_EINVAL);
	ck_assert_int_eq(agg_book_tick(b, AGG_MAX_TIME_MS + 1), MK_EINVAL);
	ck_assert_int_eq(agg_book_error(b, 0, AGG_FETCH_TRANSIENT, "x", -5),
			 MK_EINVAL);
	ck_assert_int_eq(agg_book_quote(b, 0, NULL, T0), MK_EINVAL);
	agg_book_destroy(b);
}
END_TEST

START_TEST(test_find_legs)
{
	struct specs sp = { 0 };
	struct agg_book *b;
	size_t ids[4], n, inst = 99;

	add_inst(&sp, "BTC-USD", 2, 1);
	add_inst(&sp, "ETH-USD", 3, 1);
	snprintf(sp.legs[1][2].market, AGG_MARKET_MAX, "BTC-USD");
	b = make_book(&sp);
	ck_assert_uint_eq(agg_book_count(b), 2);
	ck_assert_int_eq(agg_book_find(b, "ETH-USD", &inst), MK_OK);
	ck_assert_uint_eq(inst, 1);
	ck_assert_int_eq(agg_book_find(b, "XRP-USD", &inst), MK_ENOTFOUND);
	n = agg_book_find_legs(b, "v0", "BTC-USD", ids, 4);
	ck_assert_uint_eq(n, 1);
	ck_assert_uint_eq(ids[0], 0);
	n = agg_book_find_legs(b, "v2", "BTC-USD", ids, 4);
	ck_assert_uint_eq(n, 1);
	ck_assert_uint_eq(ids[0], 4);
	ck_assert_uint_eq(agg_book_find_legs(b, "v9", "BTC-USD", ids, 4), 0);
	ck_assert_int_eq(agg_book_leg_id(b, 1, 3, &n), MK_EINVAL);
	ck_assert_ptr_null(agg_book_mark(b, 2));
	agg_book_destroy(b);
}
END_TEST

START_TEST(test_config_rejected)
{
	struct specs sp;
	struct agg_book *b = NULL;
	struct mk_err err;
	int c;

	for (c = 0; c < 9; c++) {
		memset(&sp, 0, sizeof(sp));
		add_inst(&sp, "BTC-USD", 3, 2);
		add_inst(&sp, "ETH-USD", 3, 2);
		switch (c) {
		case 0: sp.s[1].params.min_sources = 0; break;
		case 1: sp.s[1].params.min_sources = 4; break;
		case 2: sp.legs[1][2].weight = 0; break;
		case 3: sp.s[1].params.scale = 19; break;
		case 4: snprintf(sp.s[1].symbol, AGG_SYMBOL_MAX, "BTC-USD"); break;
		case 5: sp.s[1].nlegs = 0; break;
		case 6: sp.legs[1][0].convert_via = 1; break;
		case 7: sp.legs[1][0].convert_via = 7; break;
		case 8: sp.s[1].params.twap_window_ms = 0; break;
		}
		memset(&err, 0, sizeof(err));
		ck_assert_int_eq(agg_book_create(sp.s, sp.n, &b, &err),
				 MK_ECONFIG);
		ck_assert_ptr_null(b);
		ck_assert_msg(strstr(err.msg, "instruments[1]") != NULL,
			      "case %d: %s", c, err.msg);
	}
	ck_assert_int_eq(agg_book_create(sp.s, 0, &b, &err), MK_ECONFIG);
}
END_TEST

/* ---- TWAP expiry: a real move that outlasts the window is accepted ---- */

START_TEST(test_sustained_move_accepted_after_window)
{
	struct specs sp = { 0 };
	struct agg_book *b;
	const struct agg_mark *m;
	int64_t t, first_valid = 0;
	size_t j;

	add_inst(&sp, "BTC-USD", 3, 2);
	b = make_book(&sp);
	for (t = T0; t < T0 + 60000; t += 1000)
		for (j = 0; j < 3; j++)
			put(b, 0, j, q_last("40000", t), t);
	/* every venue agrees on -30% and stays there */
	for (; t < T0 + 60000 + 400000; t += 1000) {
		for (j = 0; j < 3; j++)
			put(b, 0, j, q_last("28000", t), t);
		m = agg_book_mark(b, 0);
		if (m->valid_for_liquidation) {
			first_valid = t;
			break;
		}
		ck_assert_int_eq(m->status, AGG_MARK_TOO_VOLATILE);
	}
	/* held for the TWAP window (300 s) after the last valid mark */
	ck_assert_int_eq(first_valid, T0 + 60000 + 301000);
	agg_book_destroy(b);
}
END_TEST

/* ---- determinism ------------------------------------------------------ */

struct buf {
	char *p;
	size_t len, cap;
};

static void
bprintf(struct buf *b, const char *fmt_, ...)
	__attribute__((format(printf, 2, 3)));

static void
bprintf(struct buf *b, const char *fmt_, ...)
{
	va_list ap;
	int n;

	for (;;) {
		va_start(ap, fmt_);
		n = vsnprintf(b->p + b->len, b->cap - b->len, fmt_, ap);
		va_end(ap);
		ck_assert_int_ge(n, 0);
		if ((size_t)n < b->cap - b->len)
			break;
		b->cap = b->cap * 2 + (size_t)n + 64;
		b->p = realloc(b->p, b->cap);
		ck_assert_ptr_nonnull(b->p);
	}
	b->len += (size_t)n;
}

static void
ser_dec(struct buf *b, struct mk_dec d)
{
	bprintf(b, "%" PRId64 "e-%d,", d.m, d.scale);
}

/* Every field of a snapshot as text; the volatility in hex floating
 * point, so equal text means bit-identical values. */
static void
serialise(struct buf *b, const struct agg_snapshot *s)
{
	size_t i, j;

	b->len = 0;
	bprintf(b, "v%" PRIu64 " t%" PRId64 " n%zu\n", s->version, s->at_ms,
		s->count);
	for (i = 0; i < s->count; i++) {
		const struct agg_mark *m = s->marks[i];

		bprintf(b, "%s %d %" PRIu64 " %d %u %d %d %d ", m->symbol,
			m->scale, m->seq, (int)m->status, m->reasons,
			m->valid_for_liquidation, m->has_price, m->held);
		ser_dec(b, m->price);
		ser_dec(b, m->conf);
		bprintf(b, "%d %d %d ", m->has_ema, m->has_twap,
			m->has_volatility);
		ser_dec(b, m->ema);
		ser_dec(b, m->twap);
		bprintf(b, "%a %" PRId64 " %" PRId64 " %" PRId64 " %" PRId64
			" %d %" PRId64 " %u %u %zu\n", m->volatility,
			m->updated_at_ms, m->price_at_ms, m->age_ms,
			m->data_ts_ms, m->has_last_good, m->last_good_at_ms,
			m->sources_used, m->sources_total, m->nlegs);
		for (j = 0; j < m->nlegs; j++) {
			const struct agg_leg_view *l = &m->legs[j];

			bprintf(b, " %s|%s|%s %u %d %d ", l->source, l->market,
				l->via, l->weight, l->has_raw, l->has_price);
			ser_dec(b, l->raw_price);
			ser_dec(b, l->price);
			ser_dec(b, l->conf);
			bprintf(b, "%" PRId64 " %" PRId64 " %" PRId64 " %" PRId64
				" %" PRId64 " %d %d %" PRId64 " %d %s\n",
				l->exchange_ts_ms, l->recv_ts_ms, l->age_ms,
				l->exchange_age_ms, l->recv_age_ms,
				(int)l->state, (int)l->reason, l->error_at_ms,
				l->error_bad_data, l->error);
		}
	}
}

/* One pseudo-random event applied to a book. */
static void
random_event(struct tu_rng *r, struct agg_book *b, int64_t now)
{
	static const int64_t base[3] = {
		100000000, INT64_C(6576000000000), INT64_C(350000000000),
	};
	size_t inst = (size_t)tu_rng_range(r, 0, 2);
	size_t leg = (size_t)tu_rng_range(r, 0, 3);
	int64_t p = base[inst] + bps(base[inst], tu_rng_range(r, -300, 300));
	int64_t ts = now - tu_rng_range(r, -3000, 15000);
	int what = (int)tu_rng_range(r, 0, 19);
	struct agg_quote q;

	if (what < 14) {
		q = q_ba_m(p - bps(p, 2), p + bps(p, 2), ts);
		if (what == 0)
			q.bid.m = -q.bid.m;
		if (what == 1)
			q = liar_quote(r, LIAR_FAR_OFF, p, p * 3, ts);
		if (what == 2) {
			q.has_conf = true;
			q.conf = MK_DEC(bps(p, tu_rng_range(r, 1, 400)), 8);
		}
		ck_assert_int_eq(agg_book_quote(b, leg_id(b, inst, leg), &q,
						now), MK_OK);
	} else if (what < 17) {
		ck_assert_int_eq(agg_book_error(b, leg_id(b, inst, leg),
						what == 14 ? AGG_FETCH_BAD_DATA
							   : AGG_FETCH_TRANSIENT,
						what == 15 ? "HTTP 429" : "bad",
						now), MK_OK);
	} else {
		ck_assert_int_eq(agg_book_tick(b, now), MK_OK);
	}
}

static struct agg_book *
determinism_book(void)
{
	struct specs sp = { 0 };

	add_inst(&sp, "USDT-USD", 4, 2);
	add_inst(&sp, "BTC-USD", 4, 2);
	add_inst(&sp, "ETH-USD", 4, 3);
	sp.legs[1][3].convert_via = 0;
	sp.legs[2][2].convert_via = 0;
	sp.legs[1][1].weight = 30000;
	sp.s[2].params.scale = 6;
	return make_book(&sp);
}

START_TEST(test_identical_inputs_identical_snapshots)
{
	struct tu_rng ra = TU_RNG_INIT(0xde7e0001), rb = TU_RNG_INIT(0xde7e0001);
	struct agg_book *a = determinism_book(), *b = determinism_book();
	struct buf sa = { 0 }, sb = { 0 };
	unsigned seen = 0;
	int64_t now = T0;
	int k;

	for (k = 0; k < 4000; k++) {
		const struct agg_snapshot *x, *y;
		size_t i;

		now += tu_rng_range(&ra, 0, 1500);
		(void)tu_rng_range(&rb, 0, 1500);
		random_event(&ra, a, now);
		random_event(&rb, b, now);
		x = agg_book_acquire(a);
		y = agg_book_acquire(b);
		serialise(&sa, x);
		serialise(&sb, y);
		ck_assert_msg(sa.len == sb.len && memcmp(sa.p, sb.p, sa.len) == 0,
			      "event %d:\n%s\n---\n%s", k, sa.p, sb.p);
		for (i = 0; i < x->count; i++)
			seen |= AGG_REASON(x->marks[i]->status);
		agg_snapshot_release(x);
		agg_snapshot_release(y);
	}
	/* the script reached the interesting states */
	ck_assert(seen & AGG_REASON(AGG_MARK_OK));
	ck_assert(seen & AGG_REASON(AGG_MARK_DEGRADED));
	ck_assert(seen & AGG_REASON(AGG_MARK_NO_QUORUM));
	ck_assert(seen & AGG_REASON(AGG_MARK_TOO_UNCERTAIN));
	free(sa.p);
	free(sb.p);
	agg_book_destroy(a);
	agg_book_destroy(b);
}
END_TEST

static Suite *
aggregator_suite(void)
{
	Suite *s = suite_create("aggregator");
	TCase *tc = tcase_create("core");

	tcase_set_timeout(tc, 300);
	tcase_add_test(tc, test_t14_outlier_excluded);
	tcase_add_test(tc, test_t14_single_source_too_volatile);
	tcase_add_test(tc, test_t16_pyth_uncertain_and_volatile);
	tcase_add_loop_test(tc, test_f_liars_cannot_move_mark, 1, 4);
	tcase_add_loop_test(tc, test_f_plus_one_liars_never_valid_outside, 1,
			    4);
	tcase_add_test(tc, test_conversion_depeg);
	tcase_add_test(tc, test_conversion_never_one);
	tcase_add_test(tc, test_conversion_age_propagates);
	tcase_add_test(tc, test_conversion_cycle_rejected);
	tcase_add_test(tc, test_exchange_time_staleness);
	tcase_add_test(tc, test_quorum_loss_holds_last_good);
	tcase_add_test(tc, test_transient_error_keeps_fresh_quote);
	tcase_add_test(tc, test_conf_tracks_disagreement);
	tcase_add_test(tc, test_conf_floor_is_tightest_leg);
	tcase_add_test(tc, test_leg_checks);
	tcase_add_test(tc, test_find_legs);
	tcase_add_test(tc, test_config_rejected);
	tcase_add_test(tc, test_sustained_move_accepted_after_window);
	tcase_add_test(tc, test_identical_inputs_identical_snapshots);
	suite_add_tcase(s, tc);
	return s;
}

TU_MAIN(aggregator_suite)
