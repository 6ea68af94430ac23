/*
 * check_safety.c - regression tests for ways a price that should not be
 * trusted could once reach a liquidation (found in review): a clock that
 * steps back, one venue listing several markets forming a quorum alone, a
 * converter gone stale between its own updates, a confirmation run frozen
 * by a restarted mark seq, and an outage counted as confirmation time.
 * Each test states what DESIGN.md sections 5 and 6.4 require.
 */
#include "config.h"

#include <check.h>
#include <stdio.h>
#include <string.h>

#include "aggregator/book.h"
#include "margin/math.h"
#include "margin/position.h"
#include "margin/state.h"
#include "tests/testutil.h"

#define T0 INT64_C(1700000000000)

static struct mk_dec
D(const char *s)
{
	struct mk_dec d;

	ck_assert_msg(mk_dec_parse(s, strlen(s), &d, NULL) == MK_OK, "%s", s);
	return d;
}

/* ---- aggregator helpers ---------------------------------------------- */

struct rv_specs {
	size_t n;
	struct agg_instrument_spec s[2];
	struct agg_leg_spec legs[2][5];
};

static size_t
rv_inst(struct rv_specs *sp, const char *sym, size_t nlegs, uint32_t min_src)
{
	size_t i = sp->n++;

	memset(&sp->s[i], 0, sizeof(sp->s[i]));
	snprintf(sp->s[i].symbol, AGG_SYMBOL_MAX, "%s", sym);
	agg_params_default(&sp->s[i].params);
	sp->s[i].params.min_sources = min_src;
	sp->s[i].nlegs = nlegs;
	sp->s[i].legs = sp->legs[i];
	for (size_t j = 0; j < nlegs; j++) {
		struct agg_leg_spec *l = &sp->legs[i][j];

		memset(l, 0, sizeof(*l));
		snprintf(l->source, AGG_SOURCE_MAX, "v%zu", j);
		snprintf(l->market, AGG_MARKET_MAX, "%s", sym);
		l->weight = 10000;
		l->convert_via = -1;
	}
	return i;
}

static struct agg_book *
rv_book(struct rv_specs *sp)
{
	struct agg_book *b = NULL;
	struct mk_err err;

	ck_assert_msg(agg_book_create(sp->s, sp->n, &b, &err) == MK_OK, "%s",
		      err.msg);
	return b;
}

static void
rv_put(struct agg_book *b, size_t inst, size_t leg, const char *px,
       int64_t ts, int64_t now)
{
	struct agg_quote q;
	size_t id;

	memset(&q, 0, sizeof(q));
	q.last = D(px);
	q.has_last = true;
	q.exchange_ts_ms = ts;
	ck_assert_int_eq(agg_book_leg_id(b, inst, leg, &id), MK_OK);
	ck_assert_int_eq(agg_book_quote(b, id, &q, now), MK_OK);
}

/*
 * The wall clock steps back 60 s (NTP). Quotes received "in the future"
 * get age 0 (eval.c age_of), so 30 s of total silence after the step still
 * gives a valid mark: a stale price trusted for liquidation.
 */
START_TEST(safety_clock_step_back_keeps_dead_feed_fresh)
{
	struct rv_specs sp = { 0 };
	struct agg_book *b;
	const struct agg_mark *m;

	rv_inst(&sp, "BTC-USD", 3, 3);
	b = rv_book(&sp);
	for (size_t j = 0; j < 3; j++)      /* venues give no timestamp */
		rv_put(b, 0, j, "65760", 0, T0 + 60000);
	ck_assert(agg_book_mark(b, 0)->valid_for_liquidation);
	/* clock stepped back to T0, then 30 s without any quote */
	ck_assert_int_eq(agg_book_tick(b, T0 + 30000), MK_OK);
	m = agg_book_mark(b, 0);
	ck_assert_msg(!m->valid_for_liquidation,
		      "30 s of silence, yet status %s, leg age %lld ms",
		      agg_mark_status_name(m->status),
		      (long long)m->legs[0].age_ms);
	agg_book_destroy(b);
}
END_TEST

/*
 * One venue listed with three markets (the config loader accepts it: it
 * only refuses the same source AND market twice) forms the quorum alone:
 * its 16% wick wins the median, the two other venues become "outliers",
 * and the mark is valid at the wick (|P-TWAP|/P = 19.6% < 20%).
 */
START_TEST(safety_one_venue_three_markets_is_a_quorum)
{
	static const char *const mk[5] = {
		"BTCUSDT", "BTCUSDC", "BTCFDUSD", "BTC-USD", "XBTUSD",
	};
	static const char *const src[5] = {
		"binance", "binance", "binance", "coinbase", "kraken",
	};
	struct rv_specs sp = { 0 };
	struct agg_book *b;
	const struct agg_mark *m;
	int64_t t;

	rv_inst(&sp, "BTC-USD", 5, 3);
	for (size_t j = 0; j < 5; j++) {
		snprintf(sp.legs[0][j].source, AGG_SOURCE_MAX, "%s", src[j]);
		snprintf(sp.legs[0][j].market, AGG_MARKET_MAX, "%s", mk[j]);
	}
	b = rv_book(&sp);
	for (t = T0; t <= T0 + 60000; t += 1000)
		for (size_t j = 0; j < 5; j++)
			rv_put(b, 0, j, "65760", t, t);
	/* binance wicks on all its books at once */
	t += 1000;
	for (size_t j = 0; j < 5; j++)
		rv_put(b, 0, j, j < 3 ? "55000" : "65760", t, t);
	m = agg_book_mark(b, 0);
	ck_assert_msg(!(m->valid_for_liquidation &&
			mk_dec_cmp(m->price, D("60000")) < 0),
		      "one venue set a valid mark of %lld e-%d (%s, %u used)",
		      (long long)m->price.m, m->price.scale,
		      agg_mark_status_name(m->status), m->sources_used);
	agg_book_destroy(b);
}
END_TEST

/*
 * USDT-USD accepts 5 s, BTC-USD 10 s. 7 s after the last USDT quote the
 * USDT-USD mark is no longer valid by its own rule, but a BTC quote does
 * not re-evaluate the converter, so the USDT leg converts through the
 * stale mark and completes the BTC quorum. A tick at the same instant
 * gives the opposite answer.
 */
START_TEST(safety_converter_validity_not_rechecked)
{
	struct rv_specs sp = { 0 };
	struct agg_book *b;
	bool before_tick;

	rv_inst(&sp, "USDT-USD", 3, 2);
	rv_inst(&sp, "BTC-USD", 3, 3);
	sp.s[0].params.max_age_ms = 5000;
	sp.legs[1][2].convert_via = 0;
	b = rv_book(&sp);
	for (size_t j = 0; j < 3; j++)
		rv_put(b, 0, j, "1", T0, T0);
	for (size_t j = 0; j < 3; j++)
		rv_put(b, 1, j, "65760", T0 + 7000, T0 + 7000);
	before_tick = agg_book_mark(b, 1)->valid_for_liquidation;
	ck_assert_int_eq(agg_book_tick(b, T0 + 7000), MK_OK);
	ck_assert(!agg_book_mark(b, 0)->valid_for_liquidation);
	ck_assert(!agg_book_mark(b, 1)->valid_for_liquidation);
	ck_assert_msg(!before_tick, "BTC-USD was valid through a USDT-USD "
		      "mark that was already stale at the same instant");
	agg_book_destroy(b);
}
END_TEST

/* ---- margin helpers --------------------------------------------------- */

static struct margin_brackets rv_table;
static struct margin_position rv_pos;
static struct margin_params rv_prm;

static void
rv_setup(void)
{
	struct margin_bracket *br = &rv_table.b[0];

	memset(&rv_table, 0, sizeof(rv_table));
	rv_table.n = 1;
	br->floor = D("0");
	br->mmr = D("0.004");
	ck_assert_int_eq(margin_brackets_prepare(&rv_table, NULL), MK_OK);
	/* T1: long 1 @ 40,000, WB 2,000, LP 38,152.61 */
	memset(&rv_pos, 0, sizeof(rv_pos));
	rv_pos.kind = MARGIN_LINEAR;
	rv_pos.side = MARGIN_LONG;
	rv_pos.size = D("1");
	rv_pos.entry_price = D("40000");
	rv_pos.collateral = D("2000");
	rv_pos.brackets = &rv_table;
	margin_params_default(&rv_prm);   /* K = 3, T = 3000 */
}

static enum margin_state
rv_step(struct margin_tracker *tr, const char *px, bool valid, uint64_t seq,
	int64_t ms, struct margin_decision *d)
{
	struct margin_tick tk;
	struct mk_err err;

	memset(&tk, 0, sizeof(tk));
	tk.price = D(px);
	tk.conf = D("10");
	tk.valid_for_liquidation = valid;
	tk.sources_used = 5;
	tk.seq = seq;
	tk.time_ms = ms;
	ck_assert_msg(margin_step(tr, &rv_pos, &rv_prm, &tk, d, NULL, &err) ==
		      MK_OK, "%s", err.msg);
	return d->state;
}

/*
 * The mark seq starts again from 1 (the book is rebuilt on SIGHUP or on a
 * restart) while a tracker is mid-confirmation: tick->seq > last_seq is
 * never true again, the counter is stuck at 1 and a position breached at
 * the favourable edge for 60 s is never liquidatable.
 */
START_TEST(safety_seq_restart_freezes_confirmation)
{
	struct margin_tracker tr;
	struct margin_decision d;

	margin_tracker_init(&tr);
	ck_assert_int_eq(rv_step(&tr, "38050", true, 5000, 0, &d),
			 MARGIN_STATE_BREACH_UNCONFIRMED);
	for (uint64_t s = 1; s <= 60; s++)
		rv_step(&tr, "38050", true, s, (int64_t)s * 1000, &d);
	ck_assert_msg(d.state == MARGIN_STATE_LIQUIDATABLE,
		      "60 breached marks over 60 s after a seq restart: "
		      "state %s, %u marks counted",
		      margin_state_name(d.state), d.breach_marks);
}
END_TEST

/*
 * Policy: held time counts toward T and a held stretch does not break the
 * "consecutive" run. One breached mark, 9 s of invalid marks, then two
 * breached marks 1 ms apart: liquidatable after 1 ms of trustworthy
 * observation since the outage.
 */
START_TEST(safety_long_held_gap_counts_as_confirmation)
{
	struct margin_tracker tr;
	struct margin_decision d;

	margin_tracker_init(&tr);
	rv_step(&tr, "38050", true, 1, 0, &d);
	for (int i = 1; i <= 9; i++)
		ck_assert_int_eq(rv_step(&tr, "30000", false, 1 + (uint64_t)i,
					 i * 1000, &d), MARGIN_STATE_HELD);
	rv_step(&tr, "38050", true, 11, 9500, &d);
	rv_step(&tr, "38050", true, 12, 9501, &d);
	ck_assert_msg(d.state == MARGIN_STATE_BREACH_UNCONFIRMED,
		      "liquidatable 1 ms after a 9 s outage (%u marks, "
		      "%lld ms)", d.breach_marks, (long long)d.breach_ms);
}
END_TEST

static Suite *
safety_suite(void)
{
	Suite *s = suite_create("review");
	TCase *a = tcase_create("aggregator");
	TCase *m = tcase_create("margin");

	tcase_add_test(a, safety_clock_step_back_keeps_dead_feed_fresh);
	tcase_add_test(a, safety_one_venue_three_markets_is_a_quorum);
	tcase_add_test(a, safety_converter_validity_not_rechecked);
	tcase_add_checked_fixture(m, rv_setup, NULL);
	tcase_add_test(m, safety_seq_restart_freezes_confirmation);
	tcase_add_test(m, safety_long_held_gap_counts_as_confirmation);
	suite_add_tcase(s, a);
	suite_add_tcase(s, m);
	return s;
}

TU_MAIN(safety_suite)
