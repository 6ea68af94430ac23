/*
 * check_fakex.c - markd-fakex.
 *
 * "pure": scenario loading and its errors, the simulated clock, the price
 * paths (CSV replay, seeded walks), the fault table, and every venue's
 * bodies parsed by markd's real adapters (feeds/adapter_*.c).
 * "http": the program itself, started as a child process on port 0 with a
 * scenario written here, fetched over real HTTP with libcurl: every venue's
 * real path parsed by its real adapter to the scenario's price, every fault
 * kind observed on the wire, the admin endpoint, venue-style 404s.
 * "program": options, the shipped demo scenario, clean shutdown.
 *
 * Waits are bounded: child start (10 s), polling loops with deadlines,
 * curl timeouts on every request.
 */
#include "config.h"

#include <check.h>
#include <curl/curl.h>
#include <errno.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "feeds/adapter.h"
#include "tests/http.h"
#include "tests/proc.h"
#include "tests/testutil.h"
#include "tools/fakex_fault.h"
#include "tools/fakex_scenario.h"
#include "tools/fakex_venue.h"

#define PYTH_BTC "e62df6c8b4a85fe1a67db44dc12de5db330f7ac66b72dc658afedf0f4a415b43"

/* The market each venue serves in the test scenarios. */
static const char *const market_of[FAKEX_NVENUES] = {
	"BTCUSDT", "BTC-USD", "XBTUSD", "btcusd", "BTC-USDT",
	"BTCUSDT", "btcusd", "BTC-USDT", "tBTCUSD", PYTH_BTC,
};

/* Venues whose ticker carries the exchange's own time. */
static bool
has_ts(enum fakex_venue v)
{
	return v != FAKEX_BINANCE && v != FAKEX_KRAKEN && v != FAKEX_BITFINEX;
}

static void
ck_dec_eq(struct mk_dec a, struct mk_dec b, const char *what)
{
	char sa[MK_DEC_STRLEN], sb[MK_DEC_STRLEN];

	mk_dec_format(a, sa, sizeof(sa));
	mk_dec_format(b, sb, sizeof(sb));
	ck_assert_msg(mk_dec_cmp(a, b) == 0, "%s: %s, want %s", what, sa, sb);
}

/* ---- a temp dir with a CSV, shared by the suites ---- */

static char tmpdir[TU_PATH_LEN];

/* Writes tmpdir/name. */
static void
put_text(const char *name, const char *text)
{
	ck_assert_msg(tu_put_file(tmpdir, name, text), "%s/%s: %s", tmpdir,
		      name, strerror(errno));
}

static const char test_csv[] =
	"ts_utc_unix,open,high,low,close,volume\n"
	"1700000000,100.00,110.00,95.00,105.00,1\n"
	"1700000060,105.00,106.00,101.37,102.00,1\n"
	"1700000120,102.00,102.00,99.00,99.50,1\n";

static void
make_tmpdir(void)
{
	ck_assert(tu_make_dir(tmpdir, sizeof(tmpdir), "check_fakex"));
	put_text("bars.csv", test_csv);
}

/* The "frozen" scenario: every venue replays bars.csv, speed 0 (prices
 * fixed at start), bitfinex on its own port. */
static void
frozen_scenario(char *out, size_t cap, const char *start)
{
	snprintf(out, cap,
		 "{\"listen\":\"127.0.0.1:0\",\"speed\":0,\"start\":%s,\"venues\":{"
		 "\"binance\":{\"markets\":{\"BTCUSDT\":{\"csv\":\"bars.csv\",\"spread_bps\":10}}},"
		 "\"coinbase\":{\"markets\":{\"BTC-USD\":{\"csv\":\"bars.csv\",\"spread_bps\":10}}},"
		 "\"kraken\":{\"markets\":{\"XBTUSD\":{\"csv\":\"bars.csv\",\"spread_bps\":10}}},"
		 "\"bitstamp\":{\"markets\":{\"btcusd\":{\"csv\":\"bars.csv\",\"spread_bps\":10}}},"
		 "\"okx\":{\"markets\":{\"BTC-USDT\":{\"csv\":\"bars.csv\",\"spread_bps\":10}}},"
		 "\"bybit\":{\"markets\":{\"BTCUSDT\":{\"csv\":\"bars.csv\",\"spread_bps\":10}}},"
		 "\"gemini\":{\"markets\":{\"btcusd\":{\"csv\":\"bars.csv\",\"spread_bps\":10}}},"
		 "\"kucoin\":{\"markets\":{\"BTC-USDT\":{\"csv\":\"bars.csv\",\"spread_bps\":10}}},"
		 "\"bitfinex\":{\"port\":0,\"markets\":{\"tBTCUSD\":{\"csv\":\"bars.csv\",\"spread_bps\":10}}},"
		 "\"pyth\":{\"markets\":{\"0x" PYTH_BTC "\":{\"csv\":\"bars.csv\",\"spread_bps\":10}}}"
		 "}}", start);
}

/* The "moving" scenario: seeded walks, 1000 simulated s per real s, and
 * a scheduled fault active from the start. */
static const char moving_json[] =
	"{\"listen\":\"127.0.0.1:0\",\"speed\":1000,\"venues\":{"
	"\"okx\":{\"markets\":{\"BTC-USDT\":{\"walk\":{\"seed\":11,\"start\":\"30000.00\",\"sigma_bps\":20}}}},"
	"\"kucoin\":{\"markets\":{\"BTC-USDT\":{\"walk\":{\"seed\":12,\"start\":\"30000.00\",\"sigma_bps\":20}}}},"
	"\"gemini\":{\"markets\":{\"btcusd\":{\"walk\":{\"seed\":13,\"start\":\"30000.00\",\"sigma_bps\":20}}}}"
	"},\"faults\":[{\"venue\":\"gemini\",\"kind\":\"error\",\"at_s\":0,\"for_s\":3600,"
	"\"params\":{\"status\":503}}]}";

/* ================= pure ================= */

static void
pure_setup(void)
{
	make_tmpdir();
}

static void
pure_teardown(void)
{
	tu_remove_dir(tmpdir);
}

static enum mk_status
parse_scenario(const char *json, struct fakex_scenario **sc, struct mk_err *err)
{
	return fakex_scenario_parse(json, strlen(json), tmpdir, sc, err);
}

START_TEST(test_scenario_errors)
{
	static const struct {
		const char *json;
		const char *msg;
	} cases[] = {
		{ "[", "line 1" },
		{ "[]", "(root): expected an object" },
		{ "{\"venues\":{}}", "venues: expected an object" },
		{ "{\"lisen\":1,\"venues\":{}}", "(root).lisen: unknown key" },
		{ "{\"venues\":{\"nasdaq\":{}}}", "venues.nasdaq: unknown venue" },
		{ "{\"venues\":{\"kraken\":{\"markets\":{}}}}",
		  "venues.kraken.markets: expected an object" },
		{ "{\"venues\":{\"kraken\":{\"markets\":{\"XBTUSD\":{\"csv\":\"bars.csv\",\"spread_bps\":-1}}}}}",
		  "venues.kraken.markets.XBTUSD.spread_bps:" },
		{ "{\"venues\":{\"kraken\":{\"markets\":{\"XBTUSD\":{}}}}}",
		  "venues.kraken.markets.XBTUSD: give exactly one of" },
		{ "{\"venues\":{\"kraken\":{\"markets\":{\"XBTUSD\":{\"csv\":\"none.csv\"}}}}}",
		  "venues.kraken.markets.XBTUSD.csv: " },
		{ "{\"venues\":{\"kraken\":{\"markets\":{\"XBTUSD\":{\"walk\":{\"start\":\"-1\"}}}}}}",
		  "venues.kraken.markets.XBTUSD.walk.start: must be > 0" },
		{ "{\"venues\":{\"kraken\":{\"markets\":{\"XBTUSD\":{\"walk\":{\"start\":\"1\",\"sigma\":1}}}}}}",
		  "venues.kraken.markets.XBTUSD.walk.sigma: unknown key" },
		{ "{\"venues\":{\"pyth\":{\"markets\":{\"BTC\":{\"walk\":{\"start\":\"1\"}}}}}}",
		  "venues.pyth.markets.BTC: not a valid pyth market id" },
		{ "{\"venues\":{\"binance\":{\"markets\":{\"X\":{\"walk\":{\"start\":\"1\"},\"key\":\"Y\"}}}}}",
		  "venues.binance.markets.X.key: only for kraken" },
		{ "{\"venues\":{\"binance\":{\"port\":70000,\"markets\":{\"X\":{\"walk\":{\"start\":\"1\"}}}}}}",
		  "venues.binance.port:" },
		{ "{\"speed\":-1,\"venues\":{\"binance\":{\"markets\":{\"X\":{\"walk\":{\"start\":\"1\"}}}}}}",
		  "speed: must be >= 0" },
		{ "{\"start\":\"2023-03-10 10:00\",\"venues\":{\"binance\":{\"markets\":{\"X\":{\"walk\":{\"start\":\"1\"}}}}}}",
		  "start: \"2023-03-10 10:00\" is not" },
		{ "{\"start\":100,\"end\":100,\"venues\":{\"binance\":{\"markets\":{\"X\":{\"walk\":{\"start\":\"1\"}}}}}}",
		  "end: must be after start" },
		{ "{\"listen\":\"127.0.0.1\",\"venues\":{\"binance\":{\"markets\":{\"X\":{\"walk\":{\"start\":\"1\"}}}}}}",
		  "listen: expected" },
		{ "{\"venues\":{\"binance\":{\"markets\":{\"X\":{\"walk\":{\"start\":\"1\"}}}}},"
		  "\"faults\":[{\"venue\":\"kraken\",\"kind\":\"wick\",\"at_s\":1,\"for_s\":1}]}",
		  "faults[0].venue: \"kraken\" is not in \"venues\"" },
		{ "{\"venues\":{\"binance\":{\"markets\":{\"X\":{\"walk\":{\"start\":\"1\"}}}}},"
		  "\"faults\":[{\"venue\":\"binance\",\"kind\":\"meteor\",\"at_s\":1,\"for_s\":1}]}",
		  "faults[0].kind: expected one of" },
		{ "{\"venues\":{\"binance\":{\"markets\":{\"X\":{\"walk\":{\"start\":\"1\"}}}}},"
		  "\"faults\":[{\"venue\":\"binance\",\"kind\":\"wick\",\"at_s\":1}]}",
		  "faults[0].for_s:" },
		{ "{\"venues\":{\"binance\":{\"markets\":{\"X\":{\"walk\":{\"start\":\"1\"}}}}},"
		  "\"faults\":[{\"venue\":\"binance\",\"kind\":\"wick\",\"at_s\":1,\"for_s\":1,\"params\":{\"delay_ms\":5}}]}",
		  "faults[0].params.delay_ms: not a parameter of fault \"wick\"" },
		{ "{\"venues\":{\"binance\":{\"markets\":{\"X\":{\"walk\":{\"start\":\"1\"}}}}},"
		  "\"faults\":[{\"venue\":\"binance\",\"kind\":\"slow\",\"at_s\":1,\"for_s\":10,\"every_s\":5}]}",
		  "faults[0].every_s: must be longer than for_s" },
		{ "{\"venues\":{\"binance\":{\"markets\":{\"X\":{\"walk\":{\"start\":\"1\"}}}}},"
		  "\"faults\":[{\"venue\":\"binance\",\"kind\":\"error\",\"at_s\":1,\"for_s\":1,\"params\":{\"status\":404}}]}",
		  "faults[0].params.status: 404 is outside 500..599" },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct fakex_scenario *sc = NULL;
		struct mk_err err = { 0 };
		enum mk_status st = parse_scenario(cases[i].json, &sc, &err);

		ck_assert_msg(st != MK_OK, "case %zu accepted", i);
		ck_assert_ptr_null(sc);
		ck_assert_msg(strstr(err.msg, cases[i].msg) != NULL,
			      "case %zu: \"%s\" lacks \"%s\"", i, err.msg,
			      cases[i].msg);
	}
}
END_TEST

START_TEST(test_csv_error_names_file_line)
{
	struct fakex_scenario *sc = NULL;
	struct mk_err err = { 0 };

	put_text("bad.csv", "ts_utc_unix,open,high,low,close,volume\n"
			 "1700000000,1,1,1,1,1\n1700000060,1,0.5,1,1,1\n");
	ck_assert_int_ne(parse_scenario("{\"venues\":{\"okx\":{\"markets\":"
					"{\"BTC-USDT\":{\"csv\":\"bad.csv\"}}}}}",
					&sc, &err), MK_OK);
	ck_assert_msg(strstr(err.msg, "venues.okx.markets.BTC-USDT.csv") != NULL &&
		      strstr(err.msg, "bad.csv:3:high:") != NULL, "%s", err.msg);
}
END_TEST

START_TEST(test_sim_clock)
{
	struct fakex_scenario *sc = NULL;
	struct mk_err err = { 0 };

	ck_assert_msg(parse_scenario("{\"speed\":\"2.5\",\"loop\":true,"
				     "\"start\":\"2023-03-10T10:00:00Z\",\"end\":1678442500,"
				     "\"venues\":{\"okx\":{\"markets\":{\"BTC-USDT\":"
				     "{\"walk\":{\"start\":\"1\"}}}}}}", &sc, &err) == MK_OK,
		      "%s", err.msg);
	ck_assert_int_eq(sc->start_ms, INT64_C(1678442400000));
	ck_assert_int_eq(sc->end_ms, INT64_C(1678442500000));
	ck_assert_int_eq(fakex_sim_ms(sc, 0), INT64_C(1678442400000));
	ck_assert_int_eq(fakex_sim_ms(sc, 1000), INT64_C(1678442402500));
	/* 100 s of window: 40 real s = 100 simulated s wraps to the start */
	ck_assert_int_eq(fakex_sim_ms(sc, 40000), INT64_C(1678442400000));
	ck_assert_int_eq(fakex_sim_ms(sc, 41000), INT64_C(1678442402500));
	sc->loop = false;
	ck_assert_int_eq(fakex_sim_ms(sc, 41000), INT64_C(1678442502500));
	sc->speed_milli = 0;
	ck_assert_int_eq(fakex_sim_ms(sc, 99999), INT64_C(1678442400000));
	fakex_scenario_destroy(sc);
}
END_TEST

START_TEST(test_csv_market_replays_history)
{
	struct fakex_scenario *sc = NULL;
	struct mk_err err = { 0 };
	const struct fakex_market *m;
	struct mk_dec mid, want, bid, ask;
	char json[4096];

	frozen_scenario(json, sizeof(json), "1700000030");
	ck_assert_msg(parse_scenario(json, &sc, &err) == MK_OK, "%s", err.msg);
	/* Default window: the CSV's span; the start given. */
	ck_assert_int_eq(sc->start_ms, INT64_C(1700000030000));
	ck_assert_int_eq(sc->end_ms, INT64_C(1700000180000));
	m = fakex_market_find(sc, FAKEX_KRAKEN, "XBTUSD");
	ck_assert_ptr_nonnull(m);
	ck_assert_ptr_eq(fakex_market_find(sc, FAKEX_KRAKEN, "XXBTZUSD"), m);
	ck_assert_str_eq(m->key, "XXBTZUSD");
	ck_assert_ptr_null(fakex_market_find(sc, FAKEX_KRAKEN, "ETHUSD"));
	ck_assert_ptr_nonnull(fakex_market_find(sc, FAKEX_PYTH, "0X" PYTH_BTC));
	ck_assert_int_eq(m->scale, 2);
	for (int64_t t = INT64_C(1699999990000); t < INT64_C(1700000200000);
	     t += 777) {
		ck_assert_int_eq(fakex_market_mid(sc, m, t, &mid), MK_OK);
		ck_assert_int_eq(history_price_at(m->csv, t, 2, &want), MK_OK);
		ck_dec_eq(mid, want, "mid");
	}
	/* 30 s into the up bar: halfway from the low 95 to the high 110. */
	ck_assert_int_eq(fakex_market_mid(sc, m, sc->start_ms, &mid), MK_OK);
	ck_dec_eq(mid, MK_DEC(10250, 2), "start mid");
	/* 10 bps spread: 102.50 -/+ 0.05125 -> 0.05 at the market's scale */
	ck_assert_int_eq(fakex_market_book(m, mid, &bid, &ask), MK_OK);
	ck_dec_eq(bid, MK_DEC(10245, 2), "bid");
	ck_dec_eq(ask, MK_DEC(10255, 2), "ask");
	ck_assert_int_eq(fakex_shift_ppm(mid, -200000, 2, &want), MK_OK);
	ck_dec_eq(want, MK_DEC(8200, 2), "wick -20%");
	fakex_scenario_destroy(sc);
}
END_TEST

START_TEST(test_random_walk)
{
	static const char fmt[] =
		"{\"start\":0,\"end\":3600,\"venues\":{\"okx\":{\"markets\":{"
		"\"A\":{\"walk\":{\"seed\":%d,\"start\":\"100.00\",\"sigma_bps\":25,\"step_s\":2}},"
		"\"B\":{\"walk\":{\"seed\":%d,\"start\":\"100.00\",\"sigma_bps\":25,\"step_s\":2}}}}}}";
	struct fakex_scenario *s1 = NULL, *s2 = NULL;
	const struct fakex_market *a1, *b1, *a2;
	char json[1024];
	size_t differ = 0, moves = 0;
	struct mk_dec lo = MK_DEC(INT64_MAX, 2), hi = MK_DEC(0, 2);

	snprintf(json, sizeof(json), fmt, 7, 8);
	ck_assert_int_eq(parse_scenario(json, &s1, NULL), MK_OK);
	snprintf(json, sizeof(json), fmt, 7, 9);
	ck_assert_int_eq(parse_scenario(json, &s2, NULL), MK_OK);
	a1 = fakex_market_find(s1, FAKEX_OKX, "A");
	b1 = fakex_market_find(s1, FAKEX_OKX, "B");
	a2 = fakex_market_find(s2, FAKEX_OKX, "A");
	ck_assert_uint_eq(a1->nwalk, 1801);
	for (int64_t t = 0; t < 3600000; t += 500) {
		struct mk_dec x1, y1, x2, prev;

		ck_assert_int_eq(fakex_market_mid(s1, a1, t, &x1), MK_OK);
		ck_assert_int_eq(fakex_market_mid(s1, b1, t, &y1), MK_OK);
		ck_assert_int_eq(fakex_market_mid(s2, a2, t, &x2), MK_OK);
		/* Same seed, same path, in another scenario object. */
		ck_dec_eq(x1, x2, "same seed");
		differ += mk_dec_cmp(x1, y1) != 0;
		ck_assert(mk_dec_is_pos(x1));
		ck_assert_int_eq(x1.scale, 2);
		/* Each point is held for its 2 s step. */
		if (t % 2000 != 0) {
			ck_assert_int_eq(fakex_market_mid(s1, a1, t - t % 2000, &prev),
					 MK_OK);
			ck_dec_eq(x1, prev, "held");
		} else if (t > 0) {
			ck_assert_int_eq(fakex_market_mid(s1, a1, t - 1, &prev), MK_OK);
			moves += mk_dec_cmp(x1, prev) != 0;
		}
		if (mk_dec_cmp(x1, lo) < 0)
			lo = x1;
		if (mk_dec_cmp(x1, hi) > 0)
			hi = x1;
	}
	ck_assert_uint_gt(differ, 1700);   /* another seed, another path */
	ck_assert_uint_gt(moves, 1700);    /* 25 bps steps do move */
	/* sqrt(1800) x 25 bps ~ 10%: the walk goes somewhere, not to zero */
	ck_assert(mk_dec_cmp(lo, MK_DEC(5000, 2)) > 0);
	ck_assert(mk_dec_cmp(hi, MK_DEC(20000, 2)) < 0);
	ck_assert(mk_dec_cmp(hi, lo) > 0);
	fakex_scenario_destroy(s1);
	fakex_scenario_destroy(s2);
}
END_TEST

START_TEST(test_fault_table)
{
	struct fakex_scenario *sc = NULL;
	struct fakex_faults f;
	struct fakex_active a;
	struct fakex_fault_spec spec;
	struct mk_err err = { 0 };
	bool hit;

	ck_assert_msg(parse_scenario(
		"{\"venues\":{\"okx\":{\"markets\":{\"A\":{\"walk\":{\"start\":\"1\"}}}},"
		"\"kraken\":{\"markets\":{\"XBTUSD\":{\"walk\":{\"start\":\"1\"}}}}},"
		"\"faults\":[{\"venue\":\"okx\",\"kind\":\"stale\",\"at_s\":10,\"for_s\":5,\"every_s\":60},"
		"{\"venue\":\"okx\",\"kind\":\"slow\",\"at_s\":12,\"for_s\":10},"
		"{\"venue\":\"kraken\",\"kind\":\"wick\",\"at_s\":1,\"for_s\":2,\"every_s\":10,"
		"\"params\":{\"bps\":-1500,\"count\":2}}]}", &sc, &err) == MK_OK,
		"%s", err.msg);
	fakex_faults_init(&f, sc);

	/* Schedule: before, during, after, repeated; overlaps: first wins. */
	fakex_faults_get(&f, FAKEX_OKX, 9999, false, &a, NULL);
	ck_assert_int_eq(a.spec.kind, FAKEX_FAULT_NONE);
	fakex_faults_get(&f, FAKEX_OKX, 10000, false, &a, NULL);
	ck_assert_int_eq(a.spec.kind, FAKEX_FAULT_STALE);
	ck_assert_int_eq(a.start_ms, 10000);
	ck_assert(!a.from_admin);
	fakex_faults_get(&f, FAKEX_OKX, 14999, false, &a, NULL);
	ck_assert_int_eq(a.spec.kind, FAKEX_FAULT_STALE);
	fakex_faults_get(&f, FAKEX_OKX, 15000, false, &a, NULL);
	ck_assert_int_eq(a.spec.kind, FAKEX_FAULT_SLOW);
	ck_assert_uint_eq(a.spec.params.delay_ms, 5000);
	fakex_faults_get(&f, FAKEX_OKX, 22000, false, &a, NULL);
	ck_assert_int_eq(a.spec.kind, FAKEX_FAULT_NONE);
	fakex_faults_get(&f, FAKEX_OKX, 70001, false, &a, NULL);
	ck_assert_int_eq(a.spec.kind, FAKEX_FAULT_STALE);
	ck_assert_int_eq(a.start_ms, 70000);

	/* Wick: `count` answers off, then normal; a new occurrence re-arms. */
	fakex_faults_get(&f, FAKEX_KRAKEN, 1000, true, &a, &hit);
	ck_assert(hit);
	ck_assert_int_eq(fakex_fault_ppm(&a, hit, 1000), -150000);
	fakex_faults_get(&f, FAKEX_KRAKEN, 1001, false, &a, &hit);
	ck_assert(!hit);
	fakex_faults_get(&f, FAKEX_KRAKEN, 1002, true, &a, &hit);
	ck_assert(hit);
	fakex_faults_get(&f, FAKEX_KRAKEN, 1003, true, &a, &hit);
	ck_assert(!hit);
	ck_assert_int_eq(a.spec.kind, FAKEX_FAULT_WICK);
	ck_assert_int_eq(fakex_fault_ppm(&a, hit, 1003), 0);
	fakex_faults_get(&f, FAKEX_KRAKEN, 11000, true, &a, &hit);
	ck_assert(hit);

	/* Admin overrides the schedule, expires, and clear silences. */
	memset(&spec, 0, sizeof(spec));
	spec.venue = FAKEX_OKX;
	spec.kind = FAKEX_FAULT_DRIFT;
	spec.for_ms = 60000;
	fakex_fault_params_default(&spec.params);
	spec.params.bps_per_min = 600;
	spec.params.max_bps = 50;
	fakex_faults_set(&f, &spec, 70500);
	fakex_faults_get(&f, FAKEX_OKX, 71000, false, &a, NULL);
	ck_assert_int_eq(a.spec.kind, FAKEX_FAULT_DRIFT);
	ck_assert(a.from_admin);
	/* 600 bps/min for 0.5 s = 5 bps = 500 ppm; capped at 50 bps */
	ck_assert_int_eq(fakex_fault_ppm(&a, false, 71000), 500);
	ck_assert_int_eq(fakex_fault_ppm(&a, false, 80500), 5000);
	fakex_faults_get(&f, FAKEX_OKX, 130500, false, &a, NULL);
	ck_assert_int_eq(a.spec.kind, FAKEX_FAULT_STALE);  /* 130000 + 5 s */
	fakex_faults_clear(&f, FAKEX_OKX, 131000);
	fakex_faults_get(&f, FAKEX_OKX, 131001, false, &a, NULL);
	ck_assert_int_eq(a.spec.kind, FAKEX_FAULT_NONE);
	fakex_faults_get(&f, FAKEX_OKX, 190000, false, &a, NULL);
	ck_assert_int_eq(a.spec.kind, FAKEX_FAULT_STALE);
	spec.for_ms = 0;
	spec.kind = FAKEX_FAULT_DOWN;
	fakex_faults_set(&f, &spec, 200000);
	fakex_faults_get(&f, FAKEX_OKX, INT64_C(999999999), false, &a, NULL);
	ck_assert_int_eq(a.spec.kind, FAKEX_FAULT_DOWN);
	ck_assert_int_eq(a.until_ms, INT64_MAX);
	fakex_scenario_destroy(sc);
}
END_TEST

/* Parses body with the real adapter of venue v for `market`. */
static enum mk_status
adapter_parse(enum fakex_venue v, const char *market, const char *body,
	      size_t len, struct feed_quote *q, struct mk_err *err)
{
	const struct feed_adapter *a = feed_adapter_find(fakex_venue_name(v));
	size_t n = 0;
	enum mk_status st;

	ck_assert_ptr_nonnull(a);
	st = feed_adapter_parse(a, NULL, market, body, len, q, 1, &n, err);
	if (st == MK_OK)
		ck_assert_uint_eq(n, 1);
	return st;
}

static const char *
path_arg(void *ctx, const char *key)
{
	const char *const *kv = ctx;

	for (size_t i = 0; kv[i] != NULL; i += 2)
		if (strcmp(kv[i], key) == 0)
			return kv[i + 1];
	return NULL;
}

/* Every venue's body, rendered without HTTP, is read by the real adapter
 * to the scenario's price and timestamp; its error envelopes are read as
 * the venue's errors. */
START_TEST(test_bodies_parse_with_real_adapters)
{
	static const char *const args[] = {
		"symbol", NULL, "pair", "XBTUSD", "instId", "BTC-USDT",
		"category", "spot", NULL,
	};
	struct fakex_scenario *sc = NULL;
	struct mk_err err = { 0 };
	char json[4096];
	int64_t ts = INT64_C(1700000123456);

	frozen_scenario(json, sizeof(json), "1700000100");
	ck_assert_msg(parse_scenario(json, &sc, &err) == MK_OK, "%s", err.msg);
	for (int v = 0; v < FAKEX_NVENUES; v++) {
		static const char *paths[FAKEX_NVENUES] = {
			"/api/v3/ticker/bookTicker", "/products/BTC-USD/ticker",
			"/0/public/Ticker", "/api/v2/ticker/btcusd/",
			"/api/v5/market/ticker", "/v5/market/tickers",
			"/v1/pubticker/btcusd", "/api/v1/market/orderbook/level1",
			"/v2/ticker/tBTCUSD", "/v2/updates/price/latest",
		};
		const char *kv[sizeof(args) / sizeof(args[0])];
		struct fakex_request rq;
		struct fakex_view view = { .sim_ms = INT64_C(1700000100000),
					   .ts_ms = ts, .ppm = 0 };
		struct fakex_answer ans;
		struct feed_quote q;
		struct mk_dec mid, price;
		const struct fakex_market *m =
			fakex_market_find(sc, (enum fakex_venue)v, market_of[v]);
		enum fakex_error kinds[] = { FAKEX_ERR_RATELIMIT,
					     FAKEX_ERR_INTERNAL,
					     FAKEX_ERR_BAD_MARKET };
		enum mk_status st;

		memcpy(kv, args, sizeof(kv));
		kv[1] = market_of[v];
		if (v == FAKEX_KUCOIN)
			kv[1] = "BTC-USDT";
		memset(&rq, 0, sizeof(rq));
		rq.path = paths[v];
		rq.arg = path_arg;
		rq.ctx = (void *)kv;
		rq.ids[0] = market_of[v];
		rq.nids = 1;
		ck_assert_int_eq(fakex_venue_answer(sc, (enum fakex_venue)v, &rq,
						    &view, &ans), MK_OK);
		ck_assert_uint_eq(ans.status, 200);
		st = adapter_parse((enum fakex_venue)v, market_of[v], ans.body.p,
				   ans.body.len, &q, &err);
		ck_assert_msg(st == MK_OK, "%s: %s in %.*s", fakex_venue_name(v),
			      err.msg, (int)ans.body.len, ans.body.p);
		ck_assert_int_eq(feed_quote_price(&q.q, &price), MK_OK);
		ck_assert_int_eq(fakex_market_mid(sc, m, view.sim_ms, &mid), MK_OK);
		ck_dec_eq(price, mid, fakex_venue_name(v));
		if (has_ts((enum fakex_venue)v)) {
			/* Bitstamp and Pyth give whole seconds. */
			int64_t want = (v == FAKEX_BITSTAMP || v == FAKEX_PYTH) ?
					       ts / 1000 * 1000 : ts;

			ck_assert_msg(q.q.exchange_ts_ms == want, "%s ts %lld",
				      fakex_venue_name(v),
				      (long long)q.q.exchange_ts_ms);
		}
		fakex_answer_release(&ans);

		/* Error envelopes: the venue's error, never "it parsed". */
		for (size_t k = 0; k < sizeof(kinds) / sizeof(kinds[0]); k++) {
			ck_assert_int_eq(fakex_venue_error((enum fakex_venue)v,
							   kinds[k], "X", ts, 0,
							   &ans), MK_OK);
			st = adapter_parse((enum fakex_venue)v, market_of[v],
					   ans.body.p, ans.body.len, &q, &err);
			if (v != FAKEX_PYTH) {
				ck_assert_msg(st == MK_EVENUE || st == MK_ERATELIMIT,
					      "%s error %zu: %s (%s)",
					      fakex_venue_name(v), k,
					      mk_strstatus(st), err.msg);
				if (kinds[k] == FAKEX_ERR_RATELIMIT)
					ck_assert_msg(st == MK_ERATELIMIT,
						      "%s: rate limit read as %s",
						      fakex_venue_name(v),
						      mk_strstatus(st));
			} else {
				ck_assert_int_ne(st, MK_OK);
			}
			ck_assert_uint_ge(ans.status, 200);
			fakex_answer_release(&ans);
		}
	}
	fakex_scenario_destroy(sc);
}
END_TEST

/* ================= http ================= */

struct child {
	struct tu_child proc;           /* proc.port: the shared port */
	int vport[FAKEX_NVENUES];       /* own ports, 0 = none */
};

static struct child frozen, moving;
static struct fakex_scenario *frozen_sc;

struct out_lines {
	const char *path;
	int want;
};

/* Whether the file has at least want lines. */
static bool
has_lines(void *arg)
{
	const struct out_lines *ol = arg;
	char *t = tu_read_file(ol->path);
	int n = 0;

	for (const char *p = t; (p = strchr(p, '\n')) != NULL; p++)
		n++;
	free(t);
	return n >= ol->want;
}

/* Starts markd-fakex in tmpdir with `args` (NULL-terminated, after the
 * program), output to tmpdir/<name>.out/.err, and reads its "listening
 * 127.0.0.1:P" line and `nvenue_lines` "venue NAME 127.0.0.1:P" lines
 * within 10 s. Returns false (and kills it) when that does not happen. */
static bool
start_child(const char *name, const char *const *args, int nvenue_lines,
	    struct child *c)
{
	struct out_lines ol;
	char *t;

	memset(c, 0, sizeof(*c));
	if (!tu_spawn(&c->proc, tmpdir, "tools/markd-fakex", name, args))
		return false;
	ol.path = c->proc.out;
	ol.want = 1 + nvenue_lines;
	if (!tu_wait_listening(&c->proc, 10000) ||
	    !tu_wait_until(has_lines, &ol, 10000)) {
		t = tu_read_file(c->proc.err);
		fprintf(stderr, "check_fakex: markd-fakex did not start: %s\n",
			t);
		free(t);
		tu_stop(&c->proc, SIGKILL, 5000);
		return false;
	}
	t = tu_read_file(c->proc.out);
	for (const char *s = strchr(t, '\n'); s != NULL; s = strchr(s + 1, '\n')) {
		char vname[32];
		int port;
		enum fakex_venue v;

		if (sscanf(s + 1, "venue %31s 127.0.0.1:%d", vname, &port) == 2 &&
		    fakex_venue_from_name(vname, strlen(vname), &v))
			c->vport[v] = port;
	}
	free(t);
	return true;
}

/* SIGTERM, then reap within 5 s (SIGKILL after). Returns the exit status
 * (-1 when it had to be killed). */
static int
stop_child(struct child *c)
{
	return tu_stop(&c->proc, SIGTERM, 5000);
}

static void
http_setup(void)
{
	char path[TU_PATH_LEN + 16], json[4096];
	const char *fargs[] = { "-s", path, "-p", "0", NULL };
	struct mk_err err = { 0 };

	curl_global_init(CURL_GLOBAL_ALL);
	make_tmpdir();
	frozen_scenario(json, sizeof(json), "1700000030");
	put_text("frozen.json", json);
	snprintf(path, sizeof(path), "%s/frozen.json", tmpdir);
	if (fakex_scenario_load(path, &frozen_sc, &err) != MK_OK)
		fprintf(stderr, "check_fakex: %s\n", err.msg);
	start_child("frozen", fargs, 1, &frozen);
	put_text("moving.json", moving_json);
	snprintf(path, sizeof(path), "%s/moving.json", tmpdir);
	start_child("moving", fargs, 0, &moving);
}

static void
http_teardown(void)
{
	int a = stop_child(&frozen), b = stop_child(&moving);

	if (a != 0 || b != 0)
		fprintf(stderr, "check_fakex: markd-fakex exited with %d and %d\n",
			a, b);
	fakex_scenario_destroy(frozen_sc);
	frozen_sc = NULL;
	tu_remove_dir(tmpdir);
	curl_global_cleanup();
}

/* One request to url (method NULL: GET) within timeout_ms, on a
 * connection of its own; returns how long it took, in ms. */
static int64_t
http(const char *method, const char *url, const char *body, long timeout_ms,
     struct tu_resp *r)
{
	int64_t t0 = tu_mono_ms();

	tu_http_url(NULL, url, method, body, NULL, timeout_ms, r);
	return tu_mono_ms() - t0;
}

/* Sets a fault through the admin endpoint of child c. */
static void
admin_fault(const struct child *c, const char *json)
{
	char url[128];
	struct tu_resp r = { 0 };

	snprintf(url, sizeof(url), "http://127.0.0.1:%d/admin/fault", c->proc.port);
	http("POST", url, json, 3000, &r);
	ck_assert_msg(r.code == CURLE_OK && r.status == 200, "%s -> %ld %s", json,
		      r.status, r.body != NULL ? r.body : "");
	tu_resp_free(&r);
}

static void
admin_clear(const struct child *c, const char *venue)
{
	char url[128];
	struct tu_resp r = { 0 };

	snprintf(url, sizeof(url), "http://127.0.0.1:%d/admin/fault%s%s",
		 c->proc.port, venue != NULL ? "?venue=" : "", venue != NULL ? venue : "");
	http("DELETE", url, NULL, 3000, &r);
	ck_assert_msg(r.code == CURLE_OK && r.status == 200, "clear %ld",
		      r.status);
	tu_resp_free(&r);
}

/* Each http test starts with no admin fault on the frozen child. */
static void
each_setup(void)
{
	ck_assert_msg(frozen.proc.pid > 0 && moving.proc.pid > 0 && frozen_sc != NULL,
		      "markd-fakex did not start");
	admin_clear(&frozen, NULL);
}

/* The URL the real adapter builds for venue v on child c (own port when
 * the venue has one and own is true). */
static void
venue_url(const struct child *c, enum fakex_venue v, bool own, char *url,
	  size_t cap)
{
	const struct feed_adapter *a = feed_adapter_find(fakex_venue_name(v));
	char base[128];
	struct mk_err err = { 0 };

	if (own && c->vport[v] > 0)
		snprintf(base, sizeof(base), "http://127.0.0.1:%d", c->vport[v]);
	else
		snprintf(base, sizeof(base), "http://127.0.0.1:%d/%s", c->proc.port,
			 fakex_venue_name(v));
	ck_assert_msg(feed_adapter_url(a, NULL, base, market_of[v], url, cap,
				       &err) == MK_OK, "%s", err.msg);
}

/* GETs venue v's ticker on c and parses it with the real adapter. */
static enum mk_status
fetch_quote(const struct child *c, enum fakex_venue v, bool own,
	    struct tu_resp *r, struct feed_quote *q, struct mk_err *err)
{
	char url[FEED_URL_MAX];

	venue_url(c, v, own, url, sizeof(url));
	http(NULL, url, NULL, 3000, r);
	if (r->code != CURLE_OK)
		return MK_EIO;
	return adapter_parse(v, market_of[v], r->body, r->len, q, err);
}

static struct mk_dec
fetch_price(const struct child *c, enum fakex_venue v, int64_t *ts)
{
	struct tu_resp r = { 0 };
	struct feed_quote q;
	struct mk_err err = { 0 };
	struct mk_dec p;
	enum mk_status st = fetch_quote(c, v, false, &r, &q, &err);

	ck_assert_msg(st == MK_OK, "%s: %s (%s) %ld %s", fakex_venue_name(v),
		      mk_strstatus(st), err.msg, r.status,
		      r.body != NULL ? r.body : "");
	ck_assert_int_eq(feed_quote_price(&q.q, &p), MK_OK);
	if (ts != NULL)
		*ts = q.q.exchange_ts_ms;
	tu_resp_free(&r);
	return p;
}

static struct mk_dec
frozen_mid(enum fakex_venue v)
{
	struct mk_dec mid;
	const struct fakex_market *m = fakex_market_find(frozen_sc, v, market_of[v]);

	ck_assert_ptr_nonnull(m);
	ck_assert_int_eq(fakex_market_mid(frozen_sc, m, frozen_sc->start_ms, &mid),
			 MK_OK);
	return mid;
}

START_TEST(test_http_every_venue)
{
	for (int v = 0; v < FAKEX_NVENUES; v++) {
		int64_t before = tu_wall_ms(), after, ts = 0;
		struct mk_dec p = fetch_price(&frozen, (enum fakex_venue)v, &ts);

		after = tu_wall_ms();
		ck_dec_eq(p, frozen_mid((enum fakex_venue)v), fakex_venue_name(v));
		if (has_ts((enum fakex_venue)v))
			ck_assert_msg(ts >= before - 2000 && ts <= after + 1000,
				      "%s: exchange time %lld outside [%lld, %lld]",
				      fakex_venue_name(v), (long long)ts,
				      (long long)before, (long long)after);
	}
	/* A venue with its own port answers its real paths at the root. */
	{
		struct tu_resp r = { 0 };
		struct feed_quote q;
		struct mk_dec p;
		struct mk_err err = { 0 };

		ck_assert_int_gt(frozen.vport[FAKEX_BITFINEX], 0);
		ck_assert_int_eq(fetch_quote(&frozen, FAKEX_BITFINEX, true, &r, &q,
					     &err), MK_OK);
		ck_assert_int_eq(feed_quote_price(&q.q, &p), MK_OK);
		ck_dec_eq(p, frozen_mid(FAKEX_BITFINEX), "bitfinex own port");
		tu_resp_free(&r);
	}
}
END_TEST

static const char *
unknown_of(int v)
{
	return v == FAKEX_PYTH ?
		"ff2df6c8b4a85fe1a67db44dc12de5db330f7ac66b72dc658afedf0f4a415b43" :
		"NOPE1";
}

START_TEST(test_http_not_found)
{
	for (int v = 0; v < FAKEX_NVENUES; v++) {
		char url[256];
		struct tu_resp r = { 0 };
		struct feed_quote q;
		struct mk_err err = { 0 };
		enum mk_status st;
		const struct feed_adapter *a = feed_adapter_find(fakex_venue_name(v));

		snprintf(url, sizeof(url), "http://127.0.0.1:%d/%s/no/such/path",
			 frozen.proc.port, fakex_venue_name(v));
		http(NULL, url, NULL, 3000, &r);
		ck_assert_int_eq(r.code, CURLE_OK);
		ck_assert_msg(r.status == 404, "%s: %ld", fakex_venue_name(v),
			      r.status);
		if (v != FAKEX_PYTH) {
			st = adapter_parse((enum fakex_venue)v, market_of[v], r.body,
					   r.len, &q, &err);
			ck_assert_msg(st == MK_EVENUE, "%s 404 body read as %s: %s",
				      fakex_venue_name(v), mk_strstatus(st), r.body);
		}
		tu_resp_free(&r);

		/* An unknown market: the venue's own "no such symbol". */
		{
			char base[128];

			snprintf(base, sizeof(base), "http://127.0.0.1:%d/%s",
				 frozen.proc.port, fakex_venue_name(v));
			ck_assert_int_eq(feed_adapter_url(a, NULL, base,
							  unknown_of(v), url,
							  sizeof(url), &err), MK_OK);
		}
		http(NULL, url, NULL, 3000, &r);
		ck_assert_int_eq(r.code, CURLE_OK);
		st = adapter_parse((enum fakex_venue)v, unknown_of(v), r.body,
				   r.len, &q, &err);
		ck_assert_msg(st != MK_OK, "%s accepted an unknown market",
			      fakex_venue_name(v));
		if (v != FAKEX_PYTH)
			ck_assert_msg(st == MK_EVENUE || st == MK_ENOTFOUND,
				      "%s unknown market read as %s: %s",
				      fakex_venue_name(v), mk_strstatus(st), r.body);
		tu_resp_free(&r);
	}
}
END_TEST

START_TEST(test_fault_ratelimit)
{
	char json[256];

	for (int v = 0; v < FAKEX_NVENUES; v++) {
		struct tu_resp r = { 0 };
		struct feed_quote q;
		struct mk_err err = { 0 };
		char retry[32];
		enum mk_status st;

		snprintf(json, sizeof(json),
			 "{\"venue\":\"%s\",\"kind\":\"ratelimit\",\"retry_after_s\":7}",
			 fakex_venue_name(v));
		admin_fault(&frozen, json);
		st = fetch_quote(&frozen, (enum fakex_venue)v, false, &r, &q, &err);
		ck_assert_msg(r.status == 429, "%s: %ld", fakex_venue_name(v), r.status);
		ck_assert_str_eq(tu_resp_header(&r, "Retry-After", retry,
						sizeof(retry)), "7");
		if (v != FAKEX_PYTH)
			ck_assert_msg(st == MK_ERATELIMIT, "%s: %s (%s)",
				      fakex_venue_name(v), mk_strstatus(st), err.msg);
		tu_resp_free(&r);
	}
}
END_TEST

START_TEST(test_fault_error_and_garbage)
{
	struct tu_resp r = { 0 };
	struct feed_quote q;
	struct mk_err err = { 0 };

	admin_fault(&frozen, "{\"venue\":\"okx\",\"kind\":\"error\"}");
	ck_assert_int_eq(fetch_quote(&frozen, FAKEX_OKX, false, &r, &q, &err),
			 MK_EVENUE);
	ck_assert_int_eq(r.status, 500);
	tu_resp_free(&r);
	admin_fault(&frozen, "{\"venue\":\"kraken\",\"kind\":\"error\",\"params\":{\"status\":503}}");
	ck_assert_int_eq(fetch_quote(&frozen, FAKEX_KRAKEN, false, &r, &q, &err),
			 MK_EVENUE);
	ck_assert_int_eq(r.status, 503);
	tu_resp_free(&r);

	admin_fault(&frozen, "{\"venue\":\"coinbase\",\"kind\":\"garbage\"}");
	ck_assert_int_eq(fetch_quote(&frozen, FAKEX_COINBASE, false, &r, &q, &err),
			 MK_EPARSE);
	ck_assert_int_eq(r.status, 200);
	ck_assert_ptr_nonnull(strstr(r.body, "502 Bad Gateway"));
	tu_resp_free(&r);
	admin_fault(&frozen, "{\"venue\":\"bybit\",\"kind\":\"garbage\",\"body\":\"{\\\"retCode\\\":\"}");
	ck_assert_int_eq(fetch_quote(&frozen, FAKEX_BYBIT, false, &r, &q, &err),
			 MK_EPARSE);
	ck_assert_str_eq(r.body, "{\"retCode\":");
	tu_resp_free(&r);
	/* Cleared: normal again. */
	admin_clear(&frozen, "okx");
	ck_dec_eq(fetch_price(&frozen, FAKEX_OKX, NULL), frozen_mid(FAKEX_OKX),
		  "okx after clear");
}
END_TEST

START_TEST(test_fault_truncated)
{
	struct tu_resp r = { 0 }, full = { 0 };
	struct feed_quote q;
	struct mk_err err = { 0 };
	char url[FEED_URL_MAX];
	json_error_t jerr;

	venue_url(&frozen, FAKEX_BYBIT, false, url, sizeof(url));
	http(NULL, url, NULL, 3000, &full);
	ck_assert_int_eq(full.status, 200);
	admin_fault(&frozen, "{\"venue\":\"bybit\",\"kind\":\"truncated\"}");
	ck_assert_int_eq(fetch_quote(&frozen, FAKEX_BYBIT, false, &r, &q, &err),
			 MK_EPARSE);
	ck_assert_int_eq(r.status, 200);
	ck_assert_uint_eq(r.len, full.len / 2);
	ck_assert_int_eq(memcmp(r.body, full.body, r.len), 0);
	ck_assert_ptr_null(json_loadb(r.body, r.len, 0, &jerr));
	tu_resp_free(&r);
	tu_resp_free(&full);
	/* "transfer": Content-Length says more than arrives. */
	admin_fault(&frozen, "{\"venue\":\"bybit\",\"kind\":\"truncated\",\"mode\":\"transfer\"}");
	http(NULL, url, NULL, 3000, &r);
	ck_assert_msg(r.code == CURLE_PARTIAL_FILE, "curl %d", (int)r.code);
	tu_resp_free(&r);
}
END_TEST

START_TEST(test_fault_slow)
{
	char url[FEED_URL_MAX];
	struct tu_resp r = { 0 };
	int64_t took;

	admin_fault(&frozen, "{\"venue\":\"gemini\",\"kind\":\"slow\",\"delay_ms\":1200}");
	venue_url(&frozen, FAKEX_GEMINI, false, url, sizeof(url));
	/* A client with a 300 ms timeout gives up... */
	took = http(NULL, url, NULL, 300, &r);
	ck_assert_msg(r.code == CURLE_OPERATION_TIMEDOUT, "curl %d", (int)r.code);
	ck_assert_int_lt(took, 1100);
	tu_resp_free(&r);
	/* ...a patient one gets the normal answer, late. */
	took = http(NULL, url, NULL, 5000, &r);
	ck_assert_int_eq(r.code, CURLE_OK);
	ck_assert_int_eq(r.status, 200);
	ck_assert_int_ge(took, 1150);
	tu_resp_free(&r);
	/* Other venues are not held up meanwhile. */
	{
		int64_t t0 = tu_mono_ms();

		ck_dec_eq(fetch_price(&frozen, FAKEX_OKX, NULL), frozen_mid(FAKEX_OKX),
			  "okx");
		ck_assert_int_lt(tu_mono_ms() - t0, 1000);
	}
}
END_TEST

START_TEST(test_fault_down)
{
	char url[FEED_URL_MAX];
	struct tu_resp r = { 0 };

	/* Own port: the socket is closed, connections are refused. */
	admin_fault(&frozen, "{\"venue\":\"bitfinex\",\"kind\":\"down\",\"for_s\":60}");
	venue_url(&frozen, FAKEX_BITFINEX, true, url, sizeof(url));
	http(NULL, url, NULL, 2000, &r);
	ck_assert_msg(r.code == CURLE_COULDNT_CONNECT, "curl %d", (int)r.code);
	tu_resp_free(&r);
	/* ...and on the shared port the connection closes unanswered. */
	venue_url(&frozen, FAKEX_BITFINEX, false, url, sizeof(url));
	http(NULL, url, NULL, 2000, &r);
	ck_assert_msg(r.code == CURLE_GOT_NOTHING, "curl %d", (int)r.code);
	tu_resp_free(&r);
	admin_fault(&frozen, "{\"venue\":\"kraken\",\"kind\":\"down\"}");
	venue_url(&frozen, FAKEX_KRAKEN, false, url, sizeof(url));
	http(NULL, url, NULL, 2000, &r);
	ck_assert_msg(r.code == CURLE_GOT_NOTHING, "curl %d", (int)r.code);
	tu_resp_free(&r);
	/* Cleared: the own port listens again, on the same port number. */
	admin_clear(&frozen, NULL);
	{
		struct feed_quote q;
		struct mk_err err = { 0 };

		ck_assert_int_eq(fetch_quote(&frozen, FAKEX_BITFINEX, true, &r, &q,
					     &err), MK_OK);
		tu_resp_free(&r);
	}
	ck_dec_eq(fetch_price(&frozen, FAKEX_KRAKEN, NULL),
		  frozen_mid(FAKEX_KRAKEN), "kraken back");
}
END_TEST

START_TEST(test_fault_wick_and_drift)
{
	struct mk_dec mid = frozen_mid(FAKEX_KRAKEN), want, p, first;
	int64_t deadline;

	admin_fault(&frozen, "{\"venue\":\"kraken\",\"kind\":\"wick\",\"for_s\":30,\"bps\":-1500}");
	ck_assert_int_eq(fakex_shift_ppm(mid, -150000, 2, &want), MK_OK);
	ck_dec_eq(fetch_price(&frozen, FAKEX_KRAKEN, NULL), want, "the wick");
	ck_dec_eq(fetch_price(&frozen, FAKEX_KRAKEN, NULL), mid, "after the wick");
	ck_dec_eq(fetch_price(&frozen, FAKEX_KRAKEN, NULL), mid, "still normal");

	/* Drift: 10000 bps/min (~1.7 bps per 10 ms) up to 30 bps. */
	mid = frozen_mid(FAKEX_OKX);
	admin_fault(&frozen, "{\"venue\":\"okx\",\"kind\":\"drift\",\"bps_per_min\":10000,\"max_bps\":30}");
	ck_assert_int_eq(fakex_shift_ppm(mid, 3000, 2, &want), MK_OK);
	first = fetch_price(&frozen, FAKEX_OKX, NULL);
	ck_assert(mk_dec_cmp(first, mid) >= 0);
	ck_assert(mk_dec_cmp(first, want) <= 0);
	deadline = tu_mono_ms() + 5000;
	do {
		p = fetch_price(&frozen, FAKEX_OKX, NULL);
		ck_assert(mk_dec_cmp(p, first) >= 0);   /* only ever up */
		ck_assert(mk_dec_cmp(p, want) <= 0);    /* never past the cap */
		first = p;
	} while (mk_dec_cmp(p, want) != 0 && tu_mono_ms() < deadline);
	ck_dec_eq(p, want, "drift reaches its cap");
}
END_TEST

START_TEST(test_fault_stale)
{
	struct mk_dec p1, p2, k1, k2;
	int64_t ts1, ts2, kts, t_set, deadline;

	/* The moving child: prices change every simulated second (1 ms). */
	k1 = fetch_price(&moving, FAKEX_KUCOIN, &kts);
	t_set = tu_wall_ms();
	admin_fault(&moving, "{\"venue\":\"okx\",\"kind\":\"stale\",\"for_s\":60}");
	p1 = fetch_price(&moving, FAKEX_OKX, &ts1);
	ck_assert_int_le(ts1, tu_wall_ms() + 1000);
	ck_assert_int_ge(ts1, t_set - 2000);
	/* Wait (bounded) until a healthy venue shows a new price and time. */
	deadline = tu_mono_ms() + 5000;
	do {
		int64_t t;

		k2 = fetch_price(&moving, FAKEX_KUCOIN, &t);
		if (mk_dec_cmp(k1, k2) != 0 && t > ts1)
			break;
	} while (tu_mono_ms() < deadline);
	ck_assert_msg(mk_dec_cmp(k1, k2) != 0, "kucoin did not move in 5 s");
	p2 = fetch_price(&moving, FAKEX_OKX, &ts2);
	ck_dec_eq(p2, p1, "stale price");
	ck_assert_int_eq(ts2, ts1);
	admin_clear(&moving, "okx");
	deadline = tu_mono_ms() + 5000;
	do {
		p2 = fetch_price(&moving, FAKEX_OKX, &ts2);
	} while (mk_dec_cmp(p1, p2) == 0 && tu_mono_ms() < deadline);
	ck_assert_msg(mk_dec_cmp(p1, p2) != 0, "okx still frozen after clear");
	ck_assert_int_gt(ts2, ts1);
}
END_TEST

static json_t *
get_state(const struct child *c)
{
	char url[128];
	struct tu_resp r = { 0 };
	json_error_t jerr;
	json_t *st;

	snprintf(url, sizeof(url), "http://127.0.0.1:%d/admin/state", c->proc.port);
	http(NULL, url, NULL, 3000, &r);
	ck_assert_int_eq(r.status, 200);
	st = json_loadb(r.body, r.len, 0, &jerr);
	ck_assert_msg(st != NULL, "%s", jerr.text);
	tu_resp_free(&r);
	return st;
}

START_TEST(test_admin)
{
	static const struct {
		const char *method, *path, *body;
		long status;
		const char *msg;
	} bad[] = {
		{ "POST", "/admin/fault", "{\"venue\":\"nasdaq\",\"kind\":\"wick\"}", 400, "venue" },
		{ "POST", "/admin/fault", "{\"venue\":\"okx\",\"kind\":\"meteor\"}", 400, "kind" },
		{ "POST", "/admin/fault", "{\"venue\":\"okx\",\"kind\":\"slow\",\"bps\":1}", 400, "params.bps" },
		{ "POST", "/admin/fault", "{\"venue\":\"okx\",\"kind\":\"slow\",\"for_s\":-1}", 400, "for_s" },
		{ "POST", "/admin/fault", "not json", 400, "body" },
		{ "DELETE", "/admin/fault?venue=nasdaq", NULL, 400, "venue" },
		{ "PUT", "/admin/fault", "{}", 405, "POST" },
		{ "GET", "/admin/nothing", NULL, 404, "admin" },
		{ "GET", "/nasdaq/api", NULL, 404, "venue" },
	};
	json_t *st, *f;
	char url[256];
	struct tu_resp r = { 0 };

	st = get_state(&frozen);
	ck_assert_str_eq(json_string_value(json_object_get(st, "sim_time")),
			 "2023-11-14T22:13:50.000000Z");
	ck_assert(json_is_null(json_object_get(json_object_get(
		json_object_get(st, "venues"), "kraken"), "fault")));
	ck_assert_str_eq(json_string_value(json_object_get(json_object_get(
		json_object_get(json_object_get(json_object_get(st, "venues"),
						"kraken"), "markets"), "XBTUSD"),
		"key")), "XXBTZUSD");
	json_decref(st);

	admin_fault(&frozen, "{\"venue\":\"kraken\",\"kind\":\"wick\",\"for_s\":30,\"params\":{\"count\":3}}");
	st = get_state(&frozen);
	f = json_object_get(json_object_get(json_object_get(st, "venues"), "kraken"),
			    "fault");
	ck_assert_str_eq(json_string_value(json_object_get(f, "kind")), "wick");
	ck_assert_str_eq(json_string_value(json_object_get(f, "source")), "admin");
	ck_assert_int_eq(json_integer_value(json_object_get(f, "wick_left")), 3);
	ck_assert_int_gt(json_integer_value(json_object_get(f, "remaining_ms")),
			 25000);
	json_decref(st);
	admin_clear(&frozen, "kraken");
	st = get_state(&frozen);
	ck_assert(json_is_null(json_object_get(json_object_get(
		json_object_get(st, "venues"), "kraken"), "fault")));
	json_decref(st);

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		snprintf(url, sizeof(url), "http://127.0.0.1:%d%s", frozen.proc.port,
			 bad[i].path);
		http(bad[i].method, url, bad[i].body, 3000, &r);
		ck_assert_msg(r.status == bad[i].status, "case %zu: %ld %s", i,
			      r.status, r.body != NULL ? r.body : "");
		ck_assert_msg(r.body != NULL && strstr(r.body, bad[i].msg) != NULL,
			      "case %zu: %s", i, r.body != NULL ? r.body : "");
		tu_resp_free(&r);
	}

	/* The moving child's schedule: gemini errors (503) from the start,
	 * shown as a scheduled fault, until cleared. */
	st = get_state(&moving);
	f = json_object_get(json_object_get(json_object_get(st, "venues"), "gemini"),
			    "fault");
	ck_assert_str_eq(json_string_value(json_object_get(f, "kind")), "error");
	ck_assert_str_eq(json_string_value(json_object_get(f, "source")), "schedule");
	json_decref(st);
	{
		struct feed_quote q;
		struct mk_err err = { 0 };

		ck_assert_int_eq(fetch_quote(&moving, FAKEX_GEMINI, false, &r, &q,
					     &err), MK_EVENUE);
		ck_assert_int_eq(r.status, 503);
		tu_resp_free(&r);
		admin_clear(&moving, "gemini");
		ck_assert_int_eq(fetch_quote(&moving, FAKEX_GEMINI, false, &r, &q,
					     &err), MK_OK);
		tu_resp_free(&r);
	}
}
END_TEST

/* ================= program ================= */

/* Runs markd-fakex to completion with args (bounded: 10 s); its exit
 * status, what it wrote in r. */
static int
run_program(const char *const *args, struct tu_run *r)
{
	tu_run_program("tools/markd-fakex", args, 10, r);
	return r->status;
}

/* Whether the program wrote needle, on stdout or stderr. */
static bool
said(const struct tu_run *r, const char *needle)
{
	return strstr(r->out, needle) != NULL || strstr(r->err, needle) != NULL;
}

START_TEST(test_program_options)
{
	struct tu_run r;
	char path[1024];
	const char *check_demo[] = { "--check", "-s", path, NULL };
	const char *bad_port[] = { "-p", "x", NULL };
	const char *extra[] = { "oops", NULL };
	const char *help[] = { "--help", NULL };
	const char *missing[] = { "-s", "/nonexistent/s.json", NULL };

	tu_srcpath(path, sizeof(path), "conf/fakex-demo.json");
	ck_assert_msg(run_program(check_demo, &r) == 0, "%s%s", r.out, r.err);
	ck_assert(said(&r, "scenario ok"));
	ck_assert_int_eq(run_program(bad_port, &r), 2);
	ck_assert_int_eq(run_program(extra, &r), 2);
	ck_assert_int_eq(run_program(help, &r), 0);
	ck_assert(said(&r, "usage: markd-fakex"));
	ck_assert_int_eq(run_program(missing, &r), 1);
	ck_assert(said(&r, "/nonexistent/s.json"));
}
END_TEST

/* The demo scenario replays the shipped de-peg window: at 10:48 UTC on
 * 2023-03-10 Coinbase BTC-USD is inside the recorded sell-off bar, and
 * Kraken's USDC-USD is at its recorded low on 2023-03-11 07:15. */
START_TEST(test_demo_scenario)
{
	struct fakex_scenario *sc = NULL;
	struct mk_err err = { 0 };
	const struct fakex_market *m;
	struct mk_dec p;
	char path[1024];

	tu_srcpath(path, sizeof(path), "conf/fakex-demo.json");
	ck_assert_msg(fakex_scenario_load(path, &sc, &err) == MK_OK, "%s", err.msg);
	for (int v = 0; v < FAKEX_NVENUES; v++)
		ck_assert_msg(sc->venues[v].enabled, "%s", fakex_venue_name(v));
	ck_assert_int_eq(sc->start_ms, INT64_C(1678442400000));
	m = fakex_market_find(sc, FAKEX_COINBASE, "BTC-USD");
	ck_assert_ptr_nonnull(m);
	ck_assert_int_eq(fakex_market_mid(sc, m, INT64_C(1678445280000), &p), MK_OK);
	ck_dec_eq(p, MK_DEC(1964944, 2), "coinbase open at 10:48");
	ck_assert_int_eq(fakex_market_mid(sc, m, INT64_C(1678445300000), &p), MK_OK);
	ck_assert(mk_dec_cmp(p, MK_DEC(1957000, 2)) < 0);  /* down at the low */
	m = fakex_market_find(sc, FAKEX_KRAKEN, "USDCUSD");
	ck_assert_ptr_nonnull(m);
	ck_assert_str_eq(m->key, "USDCUSD");
	ck_assert_str_eq(fakex_market_find(sc, FAKEX_KRAKEN, "USDTUSD")->key,
			 "USDTZUSD");
	fakex_scenario_destroy(sc);
}
END_TEST

/* The built-in scenario serves every venue; SIGTERM with a slow request
 * still suspended shuts down cleanly (exit 0; ASan finds no leak). */
START_TEST(test_clean_shutdown)
{
	const char *args[] = { "-p", "0", NULL };
	struct child c;
	char url[FEED_URL_MAX], base[128];
	struct tu_resp r = { 0 };
	struct mk_err err = { 0 };

	curl_global_init(CURL_GLOBAL_ALL);
	ck_assert(tu_make_dir(tmpdir, sizeof(tmpdir), "check_fakex"));
	ck_assert(start_child("builtin", args, 0, &c));
	for (int v = 0; v < FAKEX_NVENUES; v++) {
		struct feed_quote q;

		snprintf(base, sizeof(base), "http://127.0.0.1:%d/%s", c.proc.port,
			 fakex_venue_name(v));
		ck_assert_int_eq(feed_adapter_url(feed_adapter_find(fakex_venue_name(v)),
						  NULL, base, market_of[v], url,
						  sizeof(url), &err), MK_OK);
		http(NULL, url, NULL, 3000, &r);
		ck_assert_msg(adapter_parse((enum fakex_venue)v, market_of[v], r.body,
					    r.len, &q, &err) == MK_OK,
			      "%s: %s", fakex_venue_name(v), err.msg);
		tu_resp_free(&r);
	}
	admin_fault(&c, "{\"venue\":\"okx\",\"kind\":\"slow\",\"delay_ms\":60000}");
	snprintf(base, sizeof(base), "http://127.0.0.1:%d/okx", c.proc.port);
	ck_assert_int_eq(feed_adapter_url(feed_adapter_find("okx"), NULL, base,
					  "BTC-USDT", url, sizeof(url), &err), MK_OK);
	http(NULL, url, NULL, 200, &r);
	ck_assert_int_eq(r.code, CURLE_OPERATION_TIMEDOUT);
	tu_resp_free(&r);
	ck_assert_int_eq(stop_child(&c), 0);
	tu_remove_dir(tmpdir);
	curl_global_cleanup();
}
END_TEST

static Suite *
fakex_suite(void)
{
	Suite *s = suite_create("fakex");
	TCase *pure = tcase_create("pure");
	TCase *web = tcase_create("http");
	TCase *prog = tcase_create("program");

	tcase_add_checked_fixture(pure, pure_setup, pure_teardown);
	tcase_add_test(pure, test_scenario_errors);
	tcase_add_test(pure, test_csv_error_names_file_line);
	tcase_add_test(pure, test_sim_clock);
	tcase_add_test(pure, test_csv_market_replays_history);
	tcase_add_test(pure, test_random_walk);
	tcase_add_test(pure, test_fault_table);
	tcase_add_test(pure, test_bodies_parse_with_real_adapters);
	suite_add_tcase(s, pure);

	tcase_add_unchecked_fixture(web, http_setup, http_teardown);
	tcase_add_checked_fixture(web, each_setup, NULL);
	tcase_set_timeout(web, 60);
	tcase_add_test(web, test_http_every_venue);
	tcase_add_test(web, test_http_not_found);
	tcase_add_test(web, test_fault_ratelimit);
	tcase_add_test(web, test_fault_error_and_garbage);
	tcase_add_test(web, test_fault_truncated);
	tcase_add_test(web, test_fault_slow);
	tcase_add_test(web, test_fault_down);
	tcase_add_test(web, test_fault_wick_and_drift);
	tcase_add_test(web, test_fault_stale);
	tcase_add_test(web, test_admin);
	suite_add_tcase(s, web);

	tcase_set_timeout(prog, 60);
	tcase_add_test(prog, test_program_options);
	tcase_add_test(prog, test_demo_scenario);
	tcase_add_test(prog, test_clean_shutdown);
	suite_add_tcase(s, prog);
	return s;
}

TU_MAIN(fakex_suite)
