/*
 * check_faults.c - faults end to end: markd and markd-fakex as child
 * processes on 127.0.0.1, 2f+1 venues (f = 1: 3 venues, f = 2: 5 venues,
 * each its own adapter and market) replaying the SAME minute bars of real
 * history (Coinbase BTC-USD, 2023-03-10 10:40-11:20 UTC, the sell-off of
 * 10:48 included) at 20x, so the honest price at any moment is known
 * exactly. Six linear positions are registered whose liquidation prices lie
 * 1.5 %, 2.5 % and 4 % outside the honest range of the whole replayed
 * window (longs below, shorts above) but inside the lies: every wick
 * (>= 15 %) and the larger drifts cross them.
 *
 * Phase 1, at most f bad venues: every fault kind of doc/fakex.md (stale,
 * wick, drift, garbage, ratelimit, error, slow, down, truncated) at random
 * times, for random durations, on random venues, from a fixed seed
 * (MARKD_FAULTS_SEED overrides it; the schedule is printed as it runs).
 * A venue counts as bad from its fault until markd is seen using a quote
 * it sent after the fault was cleared; a new fault starts only while fewer
 * than f venues are bad, so the honest venues always hold a strict
 * majority of the usable quotes. Throughout, every ~30 ms:
 *   - a mark that is valid_for_liquidation lies within [lowest bid,
 *     highest ask] of the honest venues over the time its quotes can come
 *     from: [updated_at - max_age_ms, updated_at] (a used quote is never
 *     older than max_age_ms at the evaluation that published the mark).
 *     The only widening is in TIME, not price: the mapping from the wall
 *     clock to fakex's simulated clock is known to within the round trip
 *     of an /admin/state request plus TIME_SLACK_MS (ms rounding, and the
 *     wall clock against fakex's monotonic one). With the votes {p-c, p,
 *     p+c} of an honest majority, c half the spread and the mark's scale
 *     finer than the venues' prices, the weighted median is exactly
 *     between the honest bids and asks, so no price tolerance is needed.
 *     The extremes of the window are computed exactly from the scenario
 *     (fakex's own pure price path, tools/fakex_scenario.h: straight lines
 *     between the points at 0, 20, 40 and 60 s of each bar, so only those
 *     points and the window's ends need evaluating), and cross-checked
 *     against fakex's /admin/state about once a second;
 *   - while at most f venues are bad, a source markd uses is within
 *     max_deviation_bps (500) of the honest range: the median of the
 *     usable quotes is in that range, so a lie further off than that must
 *     be an outlier;
 *   - a venue answering bad data (garbage, truncated body) is not used
 *     one poll interval (+ slack) after its fault is in force; a silent one
 *     (down, slow beyond timeout_ms, 429 rate limit, HTTP 5xx, transfer cut
 *     short, stale on a venue that gives its own timestamp) is not used
 *     max_age_ms + one interval (+ slack) after;
 *   - no registered position is ever breach_unconfirmed, liquidatable or
 *     bankrupt, and at the end /v1/liquidations holds no such event.
 * A venue that comes back is used again within its recovery bound (below),
 * and once all are back the mark is "ok" with every source used.
 *
 * Phase 2, f+1 bad venues at once, four trials: bad data and large lies
 * (wicks of 30-50 %) only; the same large lie told by all f+1 (within
 * 100 bps of each other: a quorum of liars whose median is far beyond
 * max_twap_deviation_bps, 2000, from the TWAP: the mark must say
 * too_volatile); silences only; a random mix. The mark must become not
 * valid for liquidation within
 *   - bad data and large lies: interval_ms + SLACK_MS (the next poll of
 *     the last venue faulted starts within one interval, the answer is
 *     excluded at once);
 *   - silences: max_age_ms + interval_ms + SLACK_MS (the last quote stays
 *     until it is max_age_ms old; markd re-evaluates at least every
 *     interval, on each honest venue's answer and on its 250 ms tick),
 * measured from the answer of the admin POST that made the (f+1)-th venue
 * bad to the first mark we read as not valid (printed on stderr), and stay
 * not valid while the faults last. SLACK_MS = timeout_ms + 300 ms: the
 * revealing poll takes at most timeout_ms, plus markd's evaluation, our
 * own reading (one request every ~30 ms) and scheduling delays of a loaded
 * 2-core machine running sanitizer builds in parallel. The checks of
 * phase 1 on valid marks and on positions go on throughout phase 2 (the
 * lies there are large, the silent venues' last quotes honest).
 * Not tested as "must be invalid": a SMALL lie told together by a majority
 * (f+1 venues drifting 3 % at once) is indistinguishable from a real move
 * by any median; nor a frozen price from a venue without its own timestamp
 * (kraken, bitfinex here): it looks like a quiet market. Drifts (which ramp
 * through small lies) and such stale faults are phase 1 only.
 *
 * Recovery bound, for a fault in force from `on` to `off`: failed polls
 * back off exponentially with jitter (feeds/backoff.h: the n-th delay is
 * in [b/2, b], b = interval x 2^(n-1)), so the delays before the last
 * failure add up to at least (b_last - interval) / 2: b_last <=
 * 2 x (off - on + timeout_ms) + interval. A 429's Retry-After may delay
 * the next poll more. The first good poll therefore starts by off +
 * timeout_ms + max(2 (off - on + timeout_ms) + interval, Retry-After), and
 * the venue is seen back one interval + SLACK_MS later at most. Faults
 * whose polls succeed (wick, drift, stale) recover within timeout_ms +
 * interval + SLACK_MS.
 *
 * Children get PR_SET_PDEATHSIG(SIGKILL); every wait has a deadline.
 */
#include "config.h"

#include <check.h>
#include <curl/curl.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "aggregator/dec.h"
#include "tests/http.h"
#include "tests/proc.h"
#include "tests/testutil.h"
#include "tools/fakex_scenario.h"

#define TOKEN "tok-faults-e2e-0123456789abcdef"
#define SYMBOL "BTC-USD"
#define CSV "tests/data/history/usdc_depeg/coinbase_BTC-USD_1m.csv"
#define SIM_START "2023-03-10T10:40:00Z"
#define SIM_END "2023-03-10T11:20:00Z"
#define SPEED 20                 /* simulated seconds per real second */
#define SPREAD_BPS 2

#define INTERVAL_MS 200          /* markd: every source's poll interval */
#define TIMEOUT_MS 500           /* markd: every source's timeout */
#define MAX_AGE_MS 1500          /* markd: a quote older is stale */
#define MAX_DEV_BPS 500          /* markd's default max_deviation_bps */
#define SLACK_MS (TIMEOUT_MS + 300)
#define TIME_SLACK_MS 25         /* see the header comment */
#define LEG_MS 20000             /* fakex: a bar's path has points every 20 s */
#define HOLD_MS 1200             /* phase 2: how long f+1 faults are kept */
#define PAUSE_MS 20              /* between two readings */
#define DEFAULT_SEED UINT64_C(20240607)

#define MAXV 5
#define MAX_FAULTS 16

struct venue {
	const char *name;        /* fakex venue, markd source and adapter */
	const char *market;      /* the market id the adapter asks for */
	bool own_port;           /* own fakex port: `down` refuses to connect */
	bool has_ts;             /* the adapter reads the venue's timestamp */
};

/* f = 1 uses the first three, f = 2 all five. */
static const struct venue VENUES[MAXV] = {
	{ "coinbase", "BTC-USD", false, true },
	{ "kraken", "XBTUSD", true, false },
	{ "bybit", "BTCUSD", false, true },
	{ "gemini", "btcusd", false, true },
	{ "bitfinex", "tBTCUSD", true, false },
};

enum kind {
	K_STALE, K_WICK, K_DRIFT, K_GARBAGE, K_RATELIMIT, K_ERROR, K_SLOW,
	K_DOWN, K_TRUNCATED, NKINDS
};

static const char *const KIND_NAME[NKINDS] = {
	"stale", "wick", "drift", "garbage", "ratelimit", "error", "slow",
	"down", "truncated",
};

/* What a fault looks like to markd. */
enum effect {
	E_LIE,      /* quotes markd may take as fresh: the median protects */
	E_BAD,      /* answers that are no quote: excluded at once */
	E_SILENT,   /* no new quote: the last one ages out */
};

struct fault {
	int venue;
	enum kind kind;
	int bps, count, bps_per_min, max_bps, retry_s, status, delay_ms;
	bool transfer;           /* truncated: cut the transfer, not the body */
	int64_t gap_ms;          /* phase 1: start this long after the last */
	int64_t dur_ms;          /* phase 1: in force this long */
	/* ms since the case started, -1 until it happens */
	int64_t on, off, back, back_by, out;  /* out: first seen unused */
	int64_t off_wall;        /* wall clock (Unix ms) once cleared */
};

/* A range of prices; empty until the first point. */
struct range {
	bool have;
	struct mk_dec lo, hi;
};

/* Phase 2's trials: f+1 venues with bad data or large lies (wicks split
 * so that no quorum is left), f+1 venues telling the same large lie,
 * f+1 silent venues, a random mix. */
enum trial { T_FAST, T_COLLUDE, T_SILENT, T_MIXED, NTRIALS };

/* What one reading of GET /v1/marks/{symbol} said. */
struct obs {
	bool valid;
	char status[32];
	bool used[MAXV];
	int64_t recv_ms[MAXV];   /* received_at (Unix ms), 0 when none */
	int64_t xts_ms[MAXV];    /* exchange_ts (Unix ms), 0 when none */
};

/* One case: one f, its processes, its schedule. */
struct run {
	int f, n;
	uint64_t seed;
	struct tu_rng rng;
	char dir[TU_PATH_LEN];
	struct tu_child fakex, markd;
	int own_port[MAXV];
	struct fakex_scenario *sc;
	const struct fakex_market *mkt;  /* the series every venue replays */
	int64_t t0;              /* tu_mono_ms() at the start */
	/* wall = fakex elapsed + offset, offset in [off_lo, off_hi] */
	int64_t off_lo, off_hi, next_anchor;
	struct fault *cur[MAXV]; /* a venue's fault, until it is back */
	char last_body[8192];    /* the last mark read, for failure messages */
	bool running;            /* markd was ready with every source used */
	/* statistics for the report */
	long nobs, nvalid, nvalid_faulted, nused_checked;
	/* readings with an honest venue unused while at most f were bad */
	long honest_out;
	int64_t max_back_ms, lat[NTRIALS];
	char lat_kinds[NTRIALS][128];
};

static struct run R;

static int64_t
now(void)
{
	return tu_mono_ms() - R.t0;
}

static void
flunk(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

/* Prints the context (the schedule is on stderr above) and fails. */
static void
flunk(const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	fprintf(stderr, "check_faults: FAILED f=%d seed=%" PRIu64 " at +%.3f s"
		" (logs in %s): %s\ncheck_faults: last mark read: %s\n", R.f,
		R.seed, (double)now() / 1000, R.dir, msg, R.last_body);
	fflush(stderr);
	ck_abort_msg("%s (f=%d, seed %" PRIu64 "; schedule on stderr)", msg,
		     R.f, R.seed);
	abort();
}

static void
say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void
say(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "check_faults: f=%d +%7.3f s ", R.f,
		(double)now() / 1000);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	fflush(stderr);
}

/* ---- HTTP ---- */

static bool
http(int port, const char *method, const char *path, const char *body,
     bool token, struct tu_resp *r)
{
	const char *hdr[3] = { NULL, NULL, NULL };
	size_t n = 0;

	if (token)
		hdr[n++] = "Authorization: Bearer " TOKEN;
	if (body != NULL)
		hdr[n++] = "Content-Type: application/json";
	return tu_http(port, method, path, body, hdr, 10000, r);
}

/* GET path from markd, 200 and JSON or the test fails. */
static void
get_markd(const char *path, struct tu_resp *r)
{
	if (!http(R.markd.port, "GET", path, NULL, false, r) ||
	    r->status != 200 || r->j == NULL)
		flunk("GET %s: %s, HTTP %ld: %.300s", path,
		      curl_easy_strerror(r->code), r->status, r->body);
}

static void
admin(const char *method, const char *path, const char *body)
{
	struct tu_resp r = { 0 };

	if (!http(R.fakex.port, method, path, body, false, &r) ||
	    r.status != 200)
		flunk("fakex %s %s %s: HTTP %ld %s", method, path,
		      body != NULL ? body : "", r.status, r.body);
	tu_resp_free(&r);
}

/* ---- decimals and times ---- */

static struct mk_dec
dec_of(const char *s, const char *what)
{
	struct mk_dec d;
	struct mk_err err;

	if (s == NULL || mk_dec_parse(s, strlen(s), &d, &err) != MK_OK)
		flunk("%s: not a decimal: %s", what, s != NULL ? s : "(none)");
	return d;
}

static const char *
dec_str(struct mk_dec d, char *buf)
{
	mk_dec_format(d, buf, MK_DEC_STRLEN);
	return buf;
}

/* a x bps / 10000, exact (or rounded with mode to `scale`). */
static struct mk_dec
dec_bps(struct mk_dec a, int64_t bps, int scale, enum mk_round mode)
{
	struct mk_dec out;

	if (mk_dec_mul(a, MK_DEC(bps, 4), scale, mode, &out) != MK_OK)
		flunk("decimal overflow");
	return out;
}

/* "2026-01-02T03:04:05.678Z" as Unix ms; 0 for null or a bad value. */
static int64_t
rfc3339_ms(const json_t *v)
{
	const char *s = json_string_value(v);
	struct tm tm;
	int ms = 0;

	memset(&tm, 0, sizeof(tm));
	if (s == NULL ||
	    sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d.%3dZ", &tm.tm_year, &tm.tm_mon,
		   &tm.tm_mday, &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &ms) != 7)
		return 0;
	tm.tm_year -= 1900;
	tm.tm_mon -= 1;
	return (int64_t)timegm(&tm) * 1000 + ms;
}

/* ---- the honest price ---- */

static void
range_add(int64_t sim_ms, struct range *g)
{
	struct mk_dec mid, bid, ask;

	if (fakex_market_mid(R.sc, R.mkt, sim_ms, &mid) != MK_OK ||
	    fakex_market_book(R.mkt, mid, &bid, &ask) != MK_OK)
		flunk("no price at sim %" PRId64, sim_ms);
	if (!g->have || mk_dec_cmp(bid, g->lo) < 0)
		g->lo = bid;
	if (!g->have || mk_dec_cmp(ask, g->hi) > 0)
		g->hi = ask;
	g->have = true;
}

/*
 * Adds the bids and asks over simulated [a, b] (a <= b, no wrap). Between
 * the points every LEG_MS the mid moves on a straight line (rounded, so
 * monotonically), and bid and ask move with it: the extremes are at a, b,
 * the points, and just before each point (where a bar's close meets the
 * next bar's open).
 */
static void
range_sim(int64_t a, int64_t b, struct range *g)
{
	range_add(a, g);
	range_add(b, g);
	for (int64_t t = (a / LEG_MS + 1) * LEG_MS; t <= b; t += LEG_MS) {
		range_add(t - 1, g);
		range_add(t, g);
	}
}

/* The honest venues' [lowest bid, highest ask] over the wall-clock
 * interval [w0, w1], widened in time only (see the header comment). */
static struct range
honest_range(int64_t w0, int64_t w1)
{
	const struct fakex_scenario *sc = R.sc;
	struct range g = { 0 };
	int64_t e0 = w0 - R.off_hi - TIME_SLACK_MS;
	int64_t e1 = w1 - R.off_lo + TIME_SLACK_MS;
	int64_t s0, s1, span = sc->end_ms - sc->start_ms;

	if (e0 < 0)
		e0 = 0;
	if (e1 < e0)
		e1 = e0;
	s0 = fakex_sim_ms(sc, e0);
	s1 = fakex_sim_ms(sc, e1);
	if ((e1 - e0) * sc->speed_milli / 1000 >= span - 1) {
		range_sim(sc->start_ms, sc->end_ms - 1, &g);
	} else if (s1 >= s0) {
		range_sim(s0, s1, &g);
	} else {        /* wrapped from the end back to the start */
		range_sim(s0, sc->end_ms - 1, &g);
		range_sim(sc->start_ms, s1, &g);
	}
	return g;
}

/* Whether fakex's bid and ask of venue k's market id (JSON mo) at sim_ms
 * are those of the scenario loaded here. */
static bool
same_book(const char *k, const char *id, const json_t *mo, int64_t sim_ms)
{
	enum fakex_venue v;
	const struct fakex_market *m;
	struct mk_dec mid, bid, ask;
	const char *sb = json_string_value(json_object_get(mo, "bid"));
	const char *sa = json_string_value(json_object_get(mo, "ask"));

	return fakex_venue_from_name(k, strlen(k), &v) &&
	       (m = fakex_market_find(R.sc, v, id)) != NULL &&
	       fakex_market_mid(R.sc, m, sim_ms, &mid) == MK_OK &&
	       fakex_market_book(m, mid, &bid, &ask) == MK_OK &&
	       mk_dec_cmp(bid, dec_of(sb, "bid")) == 0 &&
	       mk_dec_cmp(ask, dec_of(sa, "ask")) == 0;
}

/*
 * Reads fakex's clock: GET /admin/state gives its uptime (elapsed ms)
 * and wall clock; our wall clock before and after bounds the offset.
 * Also checks that fakex's prices now are the ones computed here.
 */
static void
anchor(void)
{
	struct tu_resp r = { 0 };
	int64_t wb = tu_wall_ms(), wa, up, fwall, sim, lo, hi;
	const char *k;
	json_t *vo;

	if (!http(R.fakex.port, "GET", "/admin/state", NULL, false, &r) ||
	    r.status != 200 || r.j == NULL)
		flunk("GET /admin/state: HTTP %ld", r.status);
	wa = tu_wall_ms();
	up = json_integer_value(json_object_get(r.j, "uptime_ms"));
	fwall = json_integer_value(json_object_get(r.j, "now_ms"));
	sim = json_integer_value(json_object_get(r.j, "sim_ms"));
	if (fakex_sim_ms(R.sc, up) != sim)
		flunk("fakex's simulated clock: %" PRId64 " after %" PRId64
		      " ms, expected %" PRId64, sim, up,
		      fakex_sim_ms(R.sc, up));
	lo = fwall - up < wb - up ? fwall - up : wb - up;
	hi = fwall - up > wa - up ? fwall - up : wa - up;
	if (R.next_anchor == 0 || wa - wb <= 50) {
		R.off_lo = lo;
		R.off_hi = hi;
	}
	json_object_foreach(json_object_get(r.j, "venues"), k, vo) {
		const char *id;
		json_t *mo;

		json_object_foreach(json_object_get(vo, "markets"), id, mo)
			if (!same_book(k, id, mo, sim))
				flunk("fakex %s %s at sim %" PRId64 " is not"
				      " the price computed here: %s", k, id,
				      sim, r.body);
	}
	R.next_anchor = now() + 1000;
	tu_resp_free(&r);
}

/* ---- faults ---- */

static enum effect
effect_of(const struct fault *f)
{
	switch (f->kind) {
	case K_STALE:
		return VENUES[f->venue].has_ts ? E_SILENT : E_LIE;
	case K_WICK:
	case K_DRIFT:
		return E_LIE;
	case K_GARBAGE:
		return E_BAD;
	case K_TRUNCATED:
		return f->transfer ? E_SILENT : E_BAD;
	default:
		return E_SILENT;
	}
}

/* Whether markd's polls fail (and back off) while f is in force. */
static bool
polls_fail(const struct fault *f)
{
	return f->kind != K_STALE && f->kind != K_WICK && f->kind != K_DRIFT;
}

/* When the venue must no longer be used (ms after f->on); -1: never. */
static int64_t
exclusion_bound(const struct fault *f)
{
	switch (effect_of(f)) {
	case E_BAD:
		return INTERVAL_MS + SLACK_MS;
	case E_SILENT:
		return MAX_AGE_MS + INTERVAL_MS + SLACK_MS;
	default:
		return -1;
	}
}

static int
rnd(int lo, int hi)
{
	return (int)tu_rng_range(&R.rng, lo, hi);
}

/* Random parameters for f->kind; big: phase 2's large lies. */
static void
fault_params(struct fault *f, bool big)
{
	int sign = rnd(0, 1) ? 1 : -1;

	f->bps = sign * (big ? rnd(3000, 5000) : rnd(1500, 3000));
	f->count = big ? 1000000 : rnd(3, 40);
	f->bps_per_min = sign * rnd(6000, 10000);
	f->max_bps = rnd(800, 2000);
	f->retry_s = rnd(1, 2);
	f->status = rnd(500, 599);
	f->delay_ms = rnd(TIMEOUT_MS + 200, 3000);
	f->transfer = rnd(0, 1) == 1;
	f->on = f->off = f->back = f->back_by = f->out = -1;
}

static void
fault_json(const struct fault *f, char *buf, size_t cap)
{
	int n = snprintf(buf, cap, "{\"venue\":\"%s\",\"kind\":\"%s\"",
			 VENUES[f->venue].name, KIND_NAME[f->kind]);

	switch (f->kind) {
	case K_WICK:
		n += snprintf(buf + n, cap - n, ",\"bps\":%d,\"count\":%d",
			      f->bps, f->count);
		break;
	case K_DRIFT:
		n += snprintf(buf + n, cap - n,
			      ",\"bps_per_min\":%d,\"max_bps\":%d",
			      f->bps_per_min, f->max_bps);
		break;
	case K_RATELIMIT:
		n += snprintf(buf + n, cap - n, ",\"retry_after_s\":%d",
			      f->retry_s);
		break;
	case K_ERROR:
		n += snprintf(buf + n, cap - n, ",\"status\":%d", f->status);
		break;
	case K_SLOW:
		n += snprintf(buf + n, cap - n, ",\"delay_ms\":%d",
			      f->delay_ms);
		break;
	case K_TRUNCATED:
		n += snprintf(buf + n, cap - n, ",\"mode\":\"%s\"",
			      f->transfer ? "transfer" : "body");
		break;
	default:
		break;
	}
	snprintf(buf + n, cap - n, "}");
}

static void
fault_on(struct fault *f)
{
	char body[256];

	if (R.cur[f->venue] != NULL)
		flunk("%s already has a fault", VENUES[f->venue].name);
	fault_json(f, body, sizeof(body));
	admin("POST", "/admin/fault", body);
	f->on = now();
	R.cur[f->venue] = f;
	say("on   %s", body);
}

/* The time by which f's venue must be used again (see the header). */
static int64_t
recovery_bound(const struct fault *f)
{
	int64_t b = 2 * (f->off - f->on + TIMEOUT_MS) + INTERVAL_MS;

	if (!polls_fail(f))
		return f->off + TIMEOUT_MS + INTERVAL_MS + SLACK_MS;
	if (f->kind == K_RATELIMIT && (int64_t)f->retry_s * 1000 > b)
		b = (int64_t)f->retry_s * 1000;
	return f->off + TIMEOUT_MS + b + INTERVAL_MS + SLACK_MS;
}

/* Marks f cleared (its DELETE has been answered). */
static void
fault_cleared(struct fault *f)
{
	f->off = now();
	f->off_wall = tu_wall_ms();
	f->back_by = recovery_bound(f);
}

static void
fault_off(struct fault *f)
{
	char path[128];

	snprintf(path, sizeof(path), "/admin/fault?venue=%s",
		 VENUES[f->venue].name);
	admin("DELETE", path, NULL);
	fault_cleared(f);
	say("off  %s %s after %" PRId64 " ms (unused after %" PRId64
	    " ms, bound %" PRId64 "), back by +%.3f s", VENUES[f->venue].name,
	    KIND_NAME[f->kind], f->off - f->on,
	    f->out >= 0 ? f->out - f->on : -1, exclusion_bound(f),
	    (double)f->back_by / 1000);
}

static int
bad_venues(void)
{
	int k = 0;

	for (int v = 0; v < R.n; v++)
		k += R.cur[v] != NULL;
	return k;
}

/* Whether the honest venues hold a majority: at most f are bad (a venue
 * is bad from its fault until it is seen back). */
static bool
honest_majority(void)
{
	return bad_venues() <= R.f;
}

/* ---- one reading ---- */

static bool
is_forbidden(const char *state)
{
	return state != NULL && (strcmp(state, "breach_unconfirmed") == 0 ||
				 strcmp(state, "liquidatable") == 0 ||
				 strcmp(state, "bankrupt") == 0);
}

/*
 * With an honest majority the outlier filter's median lies in the honest
 * range g, so a used quote (source JSON s) is within max_deviation of it.
 */
static void
check_used(const char *name, const json_t *s, const struct range *g)
{
	char b1[MK_DEC_STRLEN], b2[MK_DEC_STRLEN], b3[MK_DEC_STRLEN];
	struct mk_dec p, lo, hi;

	p = dec_of(json_string_value(json_object_get(s, "raw_price")),
		   "raw_price");
	lo = dec_bps(g->lo, 10000 - MAX_DEV_BPS, g->lo.scale + 4,
		     MK_ROUND_EXACT);
	hi = dec_bps(g->hi, 10000 + MAX_DEV_BPS, g->hi.scale + 4,
		     MK_ROUND_EXACT);
	R.nused_checked++;
	if (mk_dec_cmp(p, lo) < 0 || mk_dec_cmp(p, hi) > 0)
		flunk("%s used at %s, beyond %d bps of the honest range "
		      "[%s, %s]", name, dec_str(p, b1), MAX_DEV_BPS,
		      dec_str(g->lo, b2), dec_str(g->hi, b3));
}

/* Checks a mark (see the header comment) and fills o. */
static void
check_mark(const json_t *j, struct obs *o)
{
	const json_t *srcs = json_object_get(j, "sources"), *s;
	struct range g = { 0 };
	char b1[MK_DEC_STRLEN], b2[MK_DEC_STRLEN], b3[MK_DEC_STRLEN];
	int64_t upd = rfc3339_ms(json_object_get(j, "updated_at"));
	bool majority = honest_majority();
	size_t i;

	memset(o, 0, sizeof(*o));
	o->valid = json_is_true(json_object_get(j, "valid_for_liquidation"));
	snprintf(o->status, sizeof(o->status), "%s",
		 json_string_value(json_object_get(j, "status")) != NULL
			 ? json_string_value(json_object_get(j, "status"))
			 : "?");
	if (upd == 0)
		flunk("mark without updated_at");
	if (o->valid || majority)
		g = honest_range(upd - MAX_AGE_MS, upd);
	if (o->valid) {
		struct mk_dec p = dec_of(json_string_value(json_object_get(
						 j, "price")), "mark price");

		R.nvalid++;
		if (bad_venues() > 0)
			R.nvalid_faulted++;
		if (mk_dec_cmp(p, g.lo) < 0 || mk_dec_cmp(p, g.hi) > 0)
			flunk("valid mark %s outside the honest range [%s, %s]"
			      " of %d ms before its updated_at",
			      dec_str(p, b1), dec_str(g.lo, b2),
			      dec_str(g.hi, b3), MAX_AGE_MS);
	}
	json_array_foreach(srcs, i, s) {
		const char *name, *state;
		int v;

		name = json_string_value(json_object_get(s, "source"));
		state = json_string_value(json_object_get(s, "state"));
		for (v = 0; v < R.n; v++)
			if (name != NULL && strcmp(name, VENUES[v].name) == 0)
				break;
		if (v == R.n || state == NULL)
			flunk("unknown source in the mark");
		o->used[v] = strcmp(state, "used") == 0;
		o->recv_ms[v] = rfc3339_ms(json_object_get(s, "received_at"));
		o->xts_ms[v] = rfc3339_ms(json_object_get(s, "exchange_ts"));
		if (o->used[v] && majority)
			check_used(name, s, &g);
	}
}

static void
check_positions(void)
{
	struct tu_resp r = { 0 };
	const json_t *p;
	size_t i;

	get_markd("/v1/positions?symbol=" SYMBOL "&limit=100", &r);
	json_array_foreach(json_object_get(r.j, "positions"), i, p) {
		const char *st = json_string_value(json_object_get(p, "state"));

		if (is_forbidden(st)) {
			char *d = json_dumps(p, JSON_COMPACT);

			fprintf(stderr, "check_faults: position: %.3000s\n",
				d != NULL ? d : "");
			free(d);
			flunk("position %s is %s on a lie",
			      json_string_value(json_object_get(p, "id")), st);
		}
	}
	tu_resp_free(&r);
}

/* Whether venue v is seen using a quote sent after f was cleared. */
static bool
came_back(const struct obs *o, int v, const struct fault *f)
{
	if (!o->used[v])
		return false;
	if (VENUES[v].has_ts)
		return o->xts_ms[v] >= f->off_wall + 10;
	/* a poll answered TIMEOUT_MS after the clear started after it */
	return o->recv_ms[v] >= f->off_wall + TIMEOUT_MS;
}

/*
 * One reading: the mark and the positions, checked; each bad venue's
 * exclusion and recovery deadlines checked. Fills o.
 */
static void
step(struct obs *o)
{
	struct tu_resp r = { 0 };
	int64_t t;

	if (now() >= R.next_anchor)
		anchor();
	get_markd("/v1/marks/" SYMBOL, &r);
	t = now();
	snprintf(R.last_body, sizeof(R.last_body), "%s", r.body);
	R.nobs++;
	check_mark(r.j, o);
	tu_resp_free(&r);
	check_positions();
	for (int v = 0; v < R.n && R.running && honest_majority(); v++)
		if (R.cur[v] == NULL && !o->used[v]) {
			if (R.honest_out++ < 5)
				say("note: honest %s unused: %.600s",
				    VENUES[v].name, R.last_body);
			break;
		}
	for (int v = 0; v < R.n; v++) {
		struct fault *f = R.cur[v];
		int64_t ex;

		if (f == NULL)
			continue;
		ex = exclusion_bound(f);
		if (f->off < 0 && f->out < 0 && !o->used[v])
			f->out = t;
		if (f->off < 0 && ex >= 0 && t >= f->on + ex && o->used[v])
			flunk("%s still used %" PRId64 " ms into %s (bound %"
			      PRId64 " ms)", VENUES[v].name, t - f->on,
			      KIND_NAME[f->kind], ex);
		if (f->off >= 0 && came_back(o, v, f)) {
			f->back = t;
			R.cur[v] = NULL;
			if (t - f->off > R.max_back_ms)
				R.max_back_ms = t - f->off;
			say("back %s %" PRId64 " ms after its %s ended (bound %"
			    PRId64 ")", VENUES[v].name, t - f->off,
			    KIND_NAME[f->kind], f->back_by - f->off);
		} else if (f->off >= 0 && t > f->back_by) {
			flunk("%s not used again %" PRId64 " ms after its %s "
			      "ended (bound %" PRId64 " ms)", VENUES[v].name,
			      t - f->off, KIND_NAME[f->kind],
			      f->back_by - f->off);
		}
	}
}

/* Reads until every venue is back and the mark is ok with all sources
 * used: within the venues' recovery bounds, then one interval + slack. */
static void
wait_all_ok(void)
{
	struct obs o;
	int64_t deadline = -1;

	for (;;) {
		bool all = true;

		step(&o);
		for (int v = 0; v < R.n; v++)
			all = all && o.used[v];
		if (bad_venues() == 0 && all && strcmp(o.status, "ok") == 0)
			return;
		if (bad_venues() == 0 && deadline < 0)
			deadline = now() + INTERVAL_MS + SLACK_MS;
		if (deadline >= 0 && now() > deadline)
			flunk("all venues back, but the mark is %s", o.status);
		tu_pause_ms(PAUSE_MS);
	}
}

/* ---- setup ---- */

static void
put_file(const char *name, const char *text)
{
	if (!tu_put_file(R.dir, name, text))
		flunk("cannot write %s/%s", R.dir, name);
}

static void
write_scenario(void)
{
	char csv[TU_PATH_LEN], text[8192];
	int n;

	tu_srcpath(csv, sizeof(csv), CSV);
	n = snprintf(text, sizeof(text),
		     "{\"listen\":\"127.0.0.1:0\",\"speed\":%d,\"loop\":true,"
		     "\"start\":\"" SIM_START "\",\"end\":\"" SIM_END "\","
		     "\"venues\":{", SPEED);
	for (int v = 0; v < R.n; v++)
		n += snprintf(text + n, sizeof(text) - n,
			      "%s\"%s\":{%s\"markets\":{\"%s\":{\"csv\":\"%s\","
			      "\"spread_bps\":%d}}}", v ? "," : "",
			      VENUES[v].name,
			      VENUES[v].own_port ? "\"port\":0," : "",
			      VENUES[v].market, csv, SPREAD_BPS);
	snprintf(text + n, sizeof(text) - n, "}}\n");
	put_file("fakex.json", text);
}

static void
write_config(void)
{
	char text[8192];
	int n;

	n = snprintf(text, sizeof(text),
		     "{\"listen\":\"127.0.0.1:0\",\"database\":\"%s/markd.db\","
		     "\"token_file\":\"%s/tokens\","
		     "\"defaults\":{\"min_sources\":%d,\"max_age_ms\":%d},"
		     "\"sources\":[", R.dir, R.dir,
		     R.f + 1, MAX_AGE_MS);
	for (int v = 0; v < R.n; v++) {
		char base[128];

		if (VENUES[v].own_port)
			snprintf(base, sizeof(base), "http://127.0.0.1:%d",
				 R.own_port[v]);
		else
			snprintf(base, sizeof(base), "http://127.0.0.1:%d/%s",
				 R.fakex.port, VENUES[v].name);
		n += snprintf(text + n, sizeof(text) - n,
			      "%s{\"name\":\"%s\",\"adapter\":\"%s\","
			      "\"base_url\":\"%s\",\"interval_ms\":%d,"
			      "\"timeout_ms\":%d}",
			      v ? "," : "", VENUES[v].name, VENUES[v].name,
			      base, INTERVAL_MS, TIMEOUT_MS);
	}
	n += snprintf(text + n, sizeof(text) - n,
		      "],\"instruments\":[{\"symbol\":\"" SYMBOL "\","
		      "\"scale\":4,\"legs\":[");
	for (int v = 0; v < R.n; v++)
		n += snprintf(text + n, sizeof(text) - n,
			      "%s{\"source\":\"%s\",\"market\":\"%s\"}",
			      v ? "," : "", VENUES[v].name, VENUES[v].market);
	snprintf(text + n, sizeof(text) - n,
		 "],\"margin\":{\"contract\":\"linear\",\"confirm_count\":3,"
		 "\"confirm_ms\":3000,\"brackets\":["
		 "{\"floor\":\"0\",\"cap\":\"50000\",\"mmr\":\"0.004\"},"
		 "{\"floor\":\"50000\",\"cap\":\"250000\","
		 "\"mmr\":\"0.005\"}]}}]}\n");
	put_file("markd.json", text);
}

/* Starts fakex, reads its ports and clock, starts markd, waits for it to
 * be ready with every source used. */
static void
start(int f)
{
	char path[TU_PATH_LEN], conf[TU_PATH_LEN];
	const char *fargs[] = { "-s", path, "-p", "0", NULL };
	const char *margs[] = { "-c", conf, NULL };
	struct mk_err err;
	struct tu_resp r = { 0 };
	const char *env = getenv("MARKD_FAULTS_SEED");
	int64_t deadline;

	memset(&R, 0, sizeof(R));
	R.f = f;
	R.n = 2 * f + 1;
	R.seed = env != NULL && env[0] != '\0' ? strtoull(env, NULL, 0)
					       : DEFAULT_SEED + (uint64_t)f;
	R.rng = TU_RNG_INIT(R.seed);
	R.t0 = tu_mono_ms();
	R.fakex.pid = R.markd.pid = -1;
	if (!tu_make_dir(R.dir, sizeof(R.dir), "check_faults"))
		flunk("no temp folder");
	say("seed %" PRIu64 " (MARKD_FAULTS_SEED=%" PRIu64 " reproduces it), "
	    "%d venues, files in %s", R.seed, R.seed, R.n, R.dir);
	put_file("tokens", TOKEN "\n");
	write_scenario();
	if (snprintf(path, sizeof(path), "%s/fakex.json", R.dir) >=
		    (int)sizeof(path) ||
	    snprintf(conf, sizeof(conf), "%s/markd.json", R.dir) >=
		    (int)sizeof(conf))
		flunk("temp folder name too long: %s", R.dir);
	if (fakex_scenario_load(path, &R.sc, &err) != MK_OK)
		flunk("scenario: %s", err.msg);
	R.mkt = fakex_market_find(R.sc, FAKEX_COINBASE, "BTC-USD");
	if (R.mkt == NULL)
		flunk("no coinbase market in the scenario");
	if (!tu_spawn(&R.fakex, R.dir, "tools/markd-fakex", "fakex", fargs) ||
	    !tu_wait_listening(&R.fakex, 10000))
		flunk("markd-fakex did not start");
	if (!http(R.fakex.port, "GET", "/admin/state", NULL, false, &r) ||
	    r.status != 200)
		flunk("GET /admin/state: HTTP %ld", r.status);
	for (int v = 0; v < R.n; v++)
		R.own_port[v] = (int)json_integer_value(json_object_get(
			json_object_get(json_object_get(r.j, "venues"),
					VENUES[v].name), "port"));
	tu_resp_free(&r);
	anchor();
	write_config();
	if (!tu_spawn(&R.markd, R.dir, "markd", "markd", margs) ||
	    !tu_wait_listening(&R.markd, 10000))
		flunk("markd did not start: %s", tu_read_file(R.markd.err));
	deadline = now() + 20000;
	for (;;) {
		struct obs o;
		bool all = true;

		if (http(R.markd.port, "GET", "/readyz", NULL, false, &r) &&
		    r.status == 200) {
			step(&o);
			for (int v = 0; v < R.n; v++)
				all = all && o.used[v];
			if (all && strcmp(o.status, "ok") == 0)
				break;
		}
		if (now() > deadline)
			flunk("markd not ready with every source used");
		tu_pause_ms(50);
	}
	tu_resp_free(&r);
	R.running = true;
}

static void
stop(void)
{
	tu_stop(&R.markd, SIGTERM, 10000);
	tu_stop(&R.fakex, SIGTERM, 10000);
	fakex_scenario_destroy(R.sc);
	R.sc = NULL;
	tu_remove_dir(R.dir);
}

/*
 * Registers longs and shorts of 1 BTC whose liquidation prices are k bps
 * outside the honest range of the whole replayed window, and checks
 * markd's liquidation prices: outside that range by >= 1 %, and crossed by
 * the lies (a lie of 800 bps from anywhere in the range reaches them).
 */
static void
register_positions(void)
{
	static const int K[3] = { 150, 250, 400 };
	struct range g = { 0 };
	struct mk_dec entry, sum, mmr_long = MK_DEC(996, 3),
				      mmr_short = MK_DEC(1004, 3);
	char b[4][MK_DEC_STRLEN];
	int64_t deadline;

	range_sim(R.sc->start_ms, R.sc->end_ms - 1, &g);
	if (mk_dec_add(g.lo, g.hi, &sum) != MK_OK ||
	    mk_dec_div(sum, mk_dec_from_int(2), 2, MK_ROUND_HALF_EVEN,
		       &entry) != MK_OK)
		flunk("entry price");
	say("honest range of the replay [%s, %s], entry %s",
	    dec_str(g.lo, b[0]), dec_str(g.hi, b[1]), dec_str(entry, b[2]));
	for (int i = 0; i < 6; i++) {
		bool lng = i < 3;
		struct mk_dec liq, x, coll, got;
		struct tu_resp r = { 0 };
		char id[16], body[512], path[64];

		/* long: mb = coll + (p - entry) = 0.004 p at liq, so
		 * coll = entry - 0.996 liq; short: coll = 1.004 liq - entry */
		liq = lng ? dec_bps(g.lo, 10000 - K[i % 3], 2, MK_ROUND_FLOOR)
			  : dec_bps(g.hi, 10000 + K[i % 3], 2, MK_ROUND_CEIL);
		if (mk_dec_mul(liq, lng ? mmr_long : mmr_short, 5,
			       MK_ROUND_EXACT, &x) != MK_OK ||
		    (lng ? mk_dec_sub(entry, x, &coll)
			 : mk_dec_sub(x, entry, &coll)) != MK_OK)
			flunk("collateral");
		snprintf(id, sizeof(id), "%c%d", lng ? 'L' : 'S', K[i % 3]);
		snprintf(body, sizeof(body),
			 "{\"symbol\":\"" SYMBOL "\",\"side\":\"%s\",\"size\":"
			 "\"1\",\"entry_price\":\"%s\",\"collateral\":\"%s\"}",
			 lng ? "long" : "short", dec_str(entry, b[0]),
			 dec_str(coll, b[1]));
		snprintf(path, sizeof(path), "/v1/positions/%s", id);
		if (!http(R.markd.port, "PUT", path, body, true, &r) ||
		    r.status != 201)
			flunk("PUT %s: HTTP %ld %s", path, r.status, r.body);
		got = dec_of(json_string_value(json_object_get(r.j,
				"liquidation_price")), "liquidation_price");
		if (lng ? mk_dec_cmp(got, dec_bps(g.lo, 9900, 8,
						  MK_ROUND_EXACT)) > 0 ||
				  mk_dec_cmp(got, dec_bps(g.hi, 9200, 8,
							  MK_ROUND_EXACT)) < 0
			: mk_dec_cmp(got, dec_bps(g.hi, 10100, 8,
						  MK_ROUND_EXACT)) < 0 ||
				  mk_dec_cmp(got, dec_bps(g.lo, 10800, 8,
							  MK_ROUND_EXACT)) > 0)
			flunk("%s: liquidation price %s, wanted about %s", id,
			      dec_str(got, b[2]), dec_str(liq, b[3]));
		say("position %s collateral %s, liquidation price %s", id,
		    dec_str(coll, b[0]), dec_str(got, b[1]));
		tu_resp_free(&r);
	}
	/* every position is evaluated and safe before the faults */
	deadline = now() + 20000;
	for (;;) {
		struct tu_resp r = { 0 };
		const json_t *p;
		size_t i, safe = 0;

		get_markd("/v1/positions?symbol=" SYMBOL "&limit=100", &r);
		json_array_foreach(json_object_get(r.j, "positions"), i, p) {
			const char *st = json_string_value(
				json_object_get(p, "state"));

			safe += st != NULL && strcmp(st, "safe") == 0;
		}
		tu_resp_free(&r);
		if (safe == 6)
			break;
		if (now() > deadline)
			flunk("positions not safe (%zu of 6)", safe);
		tu_pause_ms(50);
	}
}

/* /v1/liquidations, every page: no transition to a liquidation state. */
static void
check_events(void)
{
	int64_t since = 0;
	size_t total = 0;

	for (int page = 0; page < 100; page++) {
		struct tu_resp r = { 0 };
		const json_t *e;
		char path[96];
		size_t i;
		bool more;

		snprintf(path, sizeof(path), "/v1/liquidations?since=%" PRId64
			 "&limit=1000", since);
		get_markd(path, &r);
		json_array_foreach(json_object_get(r.j, "events"), i, e) {
			const char *to;

			to = json_string_value(json_object_get(e, "to"));

			total++;
			if (is_forbidden(to)) {
				char *d = json_dumps(e, JSON_COMPACT);

				fprintf(stderr, "check_faults: event: %s\n",
					d != NULL ? d : "");
				free(d);
				flunk("liquidation event to %s", to);
			}
		}
		since = json_integer_value(json_object_get(r.j, "next_since"));
		more = json_is_true(json_object_get(r.j, "more"));
		tu_resp_free(&r);
		if (!more) {
			say("%zu position events, none to a liquidation state",
			    total);
			return;
		}
	}
	flunk("/v1/liquidations: too many pages");
}

/* ---- phase 1: at most f bad venues ---- */

static void
plan_phase1(struct fault *plan, size_t nplan)
{
	int order[MAX_FAULTS];

	for (size_t i = 0; i < nplan; i++)
		order[i] = i < NKINDS ? (int)i : rnd(0, NKINDS - 1);
	for (size_t i = NKINDS; i > 1; i--) {   /* every kind, shuffled */
		int j = rnd(0, (int)i - 1), t = order[i - 1];

		order[i - 1] = order[j];
		order[j] = t;
	}
	for (size_t i = 0; i < nplan; i++) {
		struct fault *f = &plan[i];

		memset(f, 0, sizeof(*f));
		f->kind = (enum kind)order[i];
		f->venue = rnd(0, R.n - 1);
		fault_params(f, false);
		f->gap_ms = rnd(300, 2500);
		if (f->kind == K_DRIFT)         /* long enough to cross */
			f->dur_ms = rnd(4000, 7000);
		else if (effect_of(f) == E_SILENT)  /* long enough to stale */
			f->dur_ms = rnd(2800, 4000);
		else
			f->dur_ms = rnd(1200, 3000);
	}
}

static void
phase1(void)
{
	struct fault plan[MAX_FAULTS];
	size_t nplan = R.f == 1 ? NKINDS : NKINDS + 3, next = 0;
	int64_t due, t_end;
	struct obs o;

	plan_phase1(plan, nplan);
	due = now() + plan[0].gap_ms;
	t_end = now() + 150000;
	while (next < nplan || bad_venues() > 0) {
		int64_t t = now();

		for (size_t i = 0; i < next; i++)
			if (plan[i].off < 0 && t >= plan[i].on + plan[i].dur_ms)
				fault_off(&plan[i]);
		if (next < nplan && t >= due && bad_venues() < R.f &&
		    R.cur[plan[next].venue] == NULL) {
			fault_on(&plan[next]);
			if (++next < nplan)
				due = now() + plan[next].gap_ms;
		}
		step(&o);
		if (now() > t_end)
			flunk("phase 1 takes too long");
		tu_pause_ms(PAUSE_MS);
	}
	wait_all_ok();
}

/* ---- phase 2: f+1 bad venues ---- */

static void
phase2_trial(int trial, enum trial kind)
{
	static const enum kind FAST[] = { K_GARBAGE, K_TRUNCATED, K_WICK };
	static const enum kind SILENT[] = { K_DOWN, K_SLOW, K_ERROR,
					    K_RATELIMIT, K_TRUNCATED, K_STALE };
	struct fault tr[MAXV];
	int perm[MAXV], lie = (rnd(0, 1) ? 1 : -1) * rnd(3000, 5000);
	int64_t since, bound = 0, lat, until;
	size_t nk = 0;
	struct obs o;

	for (int v = 0; v < R.n; v++)
		perm[v] = v;
	for (int v = R.n; v > 1; v--) {
		int j = rnd(0, v - 1), t = perm[v - 1];

		perm[v - 1] = perm[j];
		perm[j] = t;
	}
	for (int i = 0; i < R.f + 1; i++) {
		struct fault *f = &tr[i];
		bool fast = kind == T_FAST ||
			    (kind == T_MIXED && rnd(0, 1) == 0);

		memset(f, 0, sizeof(*f));
		f->venue = perm[i];
		fault_params(f, true);
		if (kind == T_COLLUDE) {
			/* the same lie, within 100 bps: a quorum of liars */
			f->kind = K_WICK;
			f->bps = lie + (lie > 0 ? 1 : -1) * rnd(-100, 100);
		} else do {
			f->kind = fast ? FAST[rnd(0, 2)] : SILENT[rnd(0, 5)];
			f->transfer = !fast;
		} while (f->kind == K_STALE && !VENUES[f->venue].has_ts);
		if (f->kind != K_TRUNCATED)
			f->transfer = false;
		if (exclusion_bound(f) > bound)
			bound = exclusion_bound(f);
		if (f->kind == K_WICK)   /* a large lie, found at once */
			bound = bound > INTERVAL_MS + SLACK_MS
					? bound : INTERVAL_MS + SLACK_MS;
		nk += (size_t)snprintf(R.lat_kinds[trial] + nk,
				       sizeof(R.lat_kinds[trial]) - nk,
				       "%s%s@%s", i ? "," : "",
				       KIND_NAME[f->kind],
				       VENUES[f->venue].name);
	}
	for (int i = 0; i < R.f + 1; i++)
		fault_on(&tr[i]);
	since = now();
	for (;;) {
		step(&o);
		if (!o.valid)
			break;
		if (now() - since > bound)
			flunk("f+1 bad venues (%s), the mark still valid %"
			      PRId64 " ms later (bound %" PRId64 " ms)",
			      R.lat_kinds[trial], now() - since, bound);
		tu_pause_ms(PAUSE_MS);
	}
	lat = now() - since;
	R.lat[trial] = lat;
	/* the liars' median is 30-50 % off the TWAP of the valid marks */
	if (kind == T_COLLUDE && strcmp(o.status, "too_volatile") != 0)
		flunk("f+1 venues telling the same lie (%s): mark %s, "
		      "expected too_volatile", R.lat_kinds[trial], o.status);
	say("f+1 bad (%s): not valid (%s) after %" PRId64 " ms, bound %"
	    PRId64 " ms", R.lat_kinds[trial], o.status, lat, bound);
	until = now() + HOLD_MS;
	while (now() < until) {
		tu_pause_ms(PAUSE_MS);
		step(&o);
		if (o.valid)
			flunk("valid again while f+1 venues are bad (%s)",
			      R.lat_kinds[trial]);
	}
	admin("DELETE", "/admin/fault?venue=all", NULL);
	for (int i = 0; i < R.f + 1; i++)
		fault_cleared(&tr[i]);
	say("off  all");
	wait_all_ok();
}

/* ---- the cases ---- */

static void
run_case(int f)
{
	int64_t t1, t2;

	start(f);
	register_positions();
	t1 = now();
	phase1();
	t2 = now();
	for (int i = 0; i < NTRIALS; i++)
		phase2_trial(i, (enum trial)i);
	check_events();
	if (R.nvalid_faulted < 10)
		flunk("only %ld valid marks read while venues were bad: the "
		      "range check was hardly exercised", R.nvalid_faulted);
	say("done: %ld readings, %ld valid marks checked (%ld while venues "
	    "were bad), %ld used quotes checked, %ld readings with an honest "
	    "venue unused; phase 1 %.1f s, phase 2 %.1f s; slowest recovery %"
	    PRId64 " ms; f+1 latencies: bad data %" PRId64 ", same lie %"
	    PRId64 " (bounds %d), silent %" PRId64 ", mixed %" PRId64
	    " ms (bounds <= %d)", R.nobs, R.nvalid, R.nvalid_faulted,
	    R.nused_checked, R.honest_out, (double)(t2 - t1) / 1000,
	    (double)(now() - t2) / 1000, R.max_back_ms, R.lat[T_FAST],
	    R.lat[T_COLLUDE], INTERVAL_MS + SLACK_MS, R.lat[T_SILENT],
	    R.lat[T_MIXED], MAX_AGE_MS + INTERVAL_MS + SLACK_MS);
	stop();
}

START_TEST(test_one_of_three)
{
	run_case(1);
}
END_TEST

START_TEST(test_two_of_five)
{
	run_case(2);
}
END_TEST

static Suite *
faults_suite(void)
{
	Suite *s = suite_create("faults");
	TCase *one = tcase_create("f1");
	TCase *two = tcase_create("f2");

	tcase_set_timeout(one, 240);
	tcase_add_test(one, test_one_of_three);
	tcase_set_timeout(two, 240);
	tcase_add_test(two, test_two_of_five);
	suite_add_tcase(s, one);
	suite_add_tcase(s, two);
	return s;
}

TU_MAIN_CURL(faults_suite)
