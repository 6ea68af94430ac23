/*
 * check_daemon.c - markd as a daemon, end to end: markd and markd-fakex
 * run as child processes on 127.0.0.1 (ephemeral ports) and are driven
 * over real HTTP with libcurl.
 *
 * Covered: marks come up with every documented field, feed health and
 * the ?symbols= subset; every error status the read API produces (400,
 * 404, 405, 413) from a real request; a venue fault injected through
 * fakex's admin endpoint shows in /v1/feeds, in the mark's sources[] and
 * in /metrics, and clears; the SSE stream delivers mark events in order
 * (ids increasing, seq never decreasing per symbol), resumes after
 * Last-Event-ID and carries feed events; /metrics passes a strict
 * Prometheus checker; SIGHUP with good files (a source and an instrument
 * added, a source removed) and with a bad one (refused, errors logged,
 * old config still served); SIGTERM while clients hammer the API exits 0
 * promptly without cutting an answer; exit codes of start failures; JSON
 * logs; every route the daemon serves is documented in doc/openapi.yaml.
 *
 * 401, 403 and 415 need a write route (token, JSON body); the daemon has
 * none of its own yet, so tests/check_httpd.c covers them on the same
 * server code.
 *
 * Children get PR_SET_PDEATHSIG(SIGKILL), so a failed test never leaves
 * them behind; every wait has a deadline.
 */
#include "config.h"

#include <check.h>
#include <curl/curl.h>
#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <arpa/inet.h>

#include "aggregator/dec.h"
#include "daemon/app.h"
#include "daemon/cfg.h"
#include "tests/http.h"
#include "tests/proc.h"
#include "tests/promcheck.h"
#include "tests/testutil.h"

/* ---- files, children and HTTP (tests/proc.h, tests/http.h) ---- */

static char tmpdir[TU_PATH_LEN];

/* Writes tmpdir/name (through a rename: a reload never reads half). */
static void
put_text(const char *name, const char *text)
{
	ck_assert_msg(tu_put_file(tmpdir, name, text), "%s/%s: %s", tmpdir,
		      name, strerror(errno));
}

/* Starts prog (a path under MARKD_BUILDDIR) with args, stdout and stderr
 * to tmpdir/<name>.out/.err; each start begins a new .err, so that a test
 * reads only its own child's log. */
static void
spawn(struct tu_child *c, const char *rel, const char *name,
      const char *const *args)
{
	char err[TU_PATH_LEN + 8];

	snprintf(err, sizeof err, "%s/%s.err", tmpdir, name);
	unlink(err);
	ck_assert(tu_spawn(c, tmpdir, rel, name, args));
}

/* One request (method NULL: GET) with a 5 s timeout; r->code tells
 * whether the transfer worked. */
static void
http(int port, const char *method, const char *path, const char *body,
     struct tu_resp *r)
{
	tu_http(port, method, path, body, NULL, 5000, r);
}

/* GET path as JSON (a new reference), asserting status 200. */
static json_t *
get_json(int port, const char *path)
{
	struct tu_resp r = { 0 };
	json_t *j;

	http(port, NULL, path, NULL, &r);
	ck_assert_msg(r.status == 200, "GET %s: %ld %s", path, r.status,
		      r.body);
	ck_assert_msg(strncmp(r.ctype, "application/json", 16) == 0,
		      "GET %s: Content-Type %s", path, r.ctype);
	ck_assert_msg(r.j != NULL, "GET %s: not JSON: %s", path, r.body);
	j = json_incref(r.j);
	tu_resp_free(&r);
	return j;
}

/* Asserts an API error body with status and code. */
static void
assert_error(struct tu_resp *r, long status, const char *code)
{
	json_t *e;

	ck_assert_msg(r->status == status, "status %ld (want %ld): %s",
		      r->status, status, r->body);
	ck_assert_msg(strncmp(r->ctype, "application/json", 16) == 0,
		      "Content-Type %s", r->ctype);
	ck_assert_msg(r->j != NULL, "not JSON: %s", r->body);
	e = json_object_get(r->j, "error");
	ck_assert_ptr_nonnull(e);
	ck_assert_str_eq(json_string_value(json_object_get(e, "code")), code);
	ck_assert_ptr_nonnull(json_string_value(json_object_get(e, "message")));
}

/* ---- the fake exchange (one per test case, shared by its tests) ---- */

static struct tu_child fakex;

static const char fakex_json[] =
	"{\"listen\": \"127.0.0.1:0\", \"speed\": 1, \"loop\": true,\n"
	" \"venues\": {\n"
	"  \"coinbase\": {\"markets\": {\n"
	"   \"BTC-USD\": {\"walk\": {\"seed\": 7, \"start\": \"30000\", \"sigma_bps\": 1}},\n"
	"   \"ETH-USD\": {\"walk\": {\"seed\": 8, \"start\": \"2000\", \"sigma_bps\": 1}}}},\n"
	"  \"kraken\": {\"markets\": {\n"
	"   \"XBTUSD\": {\"walk\": {\"seed\": 7, \"start\": \"30000\", \"sigma_bps\": 1}},\n"
	"   \"ETHUSD\": {\"walk\": {\"seed\": 8, \"start\": \"2000\", \"sigma_bps\": 1}}}},\n"
	"  \"bitstamp\": {\"markets\": {\n"
	"   \"btcusd\": {\"walk\": {\"seed\": 7, \"start\": \"30000\", \"sigma_bps\": 1}},\n"
	"   \"ethusd\": {\"walk\": {\"seed\": 8, \"start\": \"2000\", \"sigma_bps\": 1}}}}\n"
	" }}\n";

static void
fakex_setup(void)
{
	char path[2 * TU_PATH_LEN];
	const char *args[] = { "-s", path, "-p", "0", NULL };

	curl_global_init(CURL_GLOBAL_ALL);
	ck_assert(tu_make_dir(tmpdir, sizeof tmpdir, "markd-daemon"));
	snprintf(path, sizeof path, "%s/fakex.json", tmpdir);
	put_text("fakex.json", fakex_json);
	spawn(&fakex, "tools/markd-fakex", "fakex", args);
	if (!tu_wait_listening(&fakex, 10000))
		fprintf(stderr, "check_daemon: markd-fakex did not start\n");
}

static void
fakex_teardown(void)
{
	if (tu_stop(&fakex, SIGTERM, 5000) != 0)
		fprintf(stderr, "check_daemon: markd-fakex did not exit cleanly\n");
	tu_remove_dir(tmpdir);
	curl_global_cleanup();
}

static void
fault(const char *json)
{
	struct tu_resp r = { 0 };

	http(fakex.port, "POST", "/admin/fault", json, &r);
	ck_assert_msg(r.status == 200, "fault %s: %ld %s", json, r.status,
		      r.body);
	tu_resp_free(&r);
}

static void
clear_faults(void)
{
	struct tu_resp r = { 0 };

	http(fakex.port, "DELETE", "/admin/fault?venue=all", NULL, &r);
	ck_assert_msg(r.status == 200, "clear: %ld %s", r.status, r.body);
	tu_resp_free(&r);
}

/* ---- markd ---- */

static struct tu_child markd;
static char conf_path[2 * TU_PATH_LEN];
/* What write_config puts in "listen" and "log" (tests may change them;
 * each_setup restores them). */
static char cfg_listen[64];
static const char *cfg_log;

/* A source of the fake exchange, polled every 100 ms. */
static void
source_json(char *out, size_t cap, const char *name)
{
	snprintf(out, cap,
		 "{\"name\": \"%s\", \"adapter\": \"%s\", "
		 "\"base_url\": \"http://127.0.0.1:%d/%s\", "
		 "\"interval_ms\": 100, \"timeout_ms\": 1000}",
		 name, name, fakex.port, name);
}

/*
 * Writes a config to conf_path: the named sources (comma-separated),
 * instruments as JSON text, and extra top-level keys (may be "").
 */
static void
write_config(const char *sources, const char *instruments, const char *extra)
{
	char text[8192], src[512], names[256], *save = NULL;
	size_t len;

	len = (size_t)snprintf(text, sizeof text,
			       "{\"listen\": \"%s\", "
			       "\"database\": \"%s/markd.db\", "
			       "\"log\": %s, "
			       "\"http\": {\"max_body_bytes\": 1024, "
			       "\"connection_timeout_s\": 5}, %s"
			       "\"defaults\": {\"min_sources\": 2, "
			       "\"max_age_ms\": 5000},\n\"sources\": [",
			       cfg_listen, tmpdir, cfg_log, extra);
	snprintf(names, sizeof names, "%s", sources);
	for (char *n = strtok_r(names, ",", &save); n != NULL;
	     n = strtok_r(NULL, ",", &save)) {
		source_json(src, sizeof src, n);
		len += (size_t)snprintf(text + len, sizeof text - len, "%s%s\n",
					text[len - 1] == '[' ? "" : ",", src);
	}
	snprintf(text + len, sizeof text - len, "],\n\"instruments\": %s}\n",
		 instruments);
	put_text("markd.json", text);
}

#define BTC3 \
	"{\"symbol\": \"BTC-USD\", \"legs\": [" \
	"{\"source\": \"coinbase\", \"market\": \"BTC-USD\"}," \
	"{\"source\": \"kraken\", \"market\": \"XBTUSD\"}," \
	"{\"source\": \"bitstamp\", \"market\": \"btcusd\"}]}"
#define BTC2 \
	"{\"symbol\": \"BTC-USD\", \"legs\": [" \
	"{\"source\": \"coinbase\", \"market\": \"BTC-USD\"}," \
	"{\"source\": \"kraken\", \"market\": \"XBTUSD\"}]}"
#define ETH3 \
	"{\"symbol\": \"ETH-USD\", \"legs\": [" \
	"{\"source\": \"coinbase\", \"market\": \"ETH-USD\"}," \
	"{\"source\": \"kraken\", \"market\": \"ETHUSD\"}," \
	"{\"source\": \"bitstamp\", \"market\": \"ethusd\"}]}"

static void
markd_start(void)
{
	const char *args[] = { "-c", conf_path, NULL };

	spawn(&markd, "markd", "markd", args);
	ck_assert_msg(tu_wait_listening(&markd, 10000),
		      "markd did not start: %s", tu_read_file(markd.err));
}

/* Waits until GET /readyz answers 200 (15 s). */
static void
wait_ready(void)
{
	int64_t deadline = tu_mono_ms() + 15000;
	struct tu_resp r = { 0 };

	for (;;) {
		http(markd.port, NULL, "/readyz", NULL, &r);
		if (r.status == 200) {
			ck_assert_ptr_nonnull(strstr(r.body, "\"ready\""));
			tu_resp_free(&r);
			return;
		}
		ck_assert_msg(tu_mono_ms() < deadline, "not ready: %ld %s",
			      r.status, r.body);
		ck_assert_msg(r.status == 503, "readyz: %ld %s", r.status,
			      r.body);
		tu_resp_free(&r);
		tu_pause_ms(50);
	}
}

/* Whether GET path's JSON satisfies pred. */
static bool
json_poll(const char *path, bool (*pred)(json_t *j, void *arg), void *arg,
	  int timeout_ms)
{
	int64_t deadline = tu_mono_ms() + timeout_ms;

	for (;;) {
		json_t *j = get_json(markd.port, path);
		bool ok = pred(j, arg);

		if (!ok && tu_mono_ms() >= deadline) {
			char *text = json_dumps(j, JSON_COMPACT);

			fprintf(stderr, "check_daemon: GET %s: still %s\n", path,
				text);
			free(text);
		}
		json_decref(j);
		if (ok)
			return true;
		if (tu_mono_ms() >= deadline)
			return false;
		tu_pause_ms(50);
	}
}

static bool
all_legs_used(json_t *m, void *arg)
{
	(void)arg;
	return json_integer_value(json_object_get(m, "sources_used")) ==
	       json_integer_value(json_object_get(m, "sources_total"));
}

/* Ready, and every leg of BTC-USD has delivered (readiness needs only
 * the quorum). */
static void
wait_all_used(void)
{
	wait_ready();
	ck_assert_msg(json_poll("/v1/marks/BTC-USD", all_legs_used, NULL,
				10000),
		      "not every leg of BTC-USD is used");
}

static void
each_setup(void)
{
	snprintf(conf_path, sizeof conf_path, "%s/markd.json", tmpdir);
	snprintf(cfg_listen, sizeof cfg_listen, "127.0.0.1:0");
	cfg_log = "{\"level\": \"info\"}";
	memset(&markd, 0, sizeof markd);
	markd.pid = -1;
	ck_assert_int_gt(fakex.port, 0);
	clear_faults();
}

static void
each_teardown(void)
{
	if (markd.pid > 0)
		tu_stop(&markd, SIGTERM, 10000);
	clear_faults();
}

/* ---- JSON checks ---- */

/* A decimal string with exactly `scale` fraction digits. */
static struct mk_dec
dec_field(json_t *o, const char *key, int scale)
{
	const char *s = json_string_value(json_object_get(o, key));
	const char *dot;
	struct mk_dec d;

	ck_assert_msg(s != NULL, "%s: not a string", key);
	dot = strchr(s, '.');
	ck_assert_msg(dot != NULL && (int)strlen(dot + 1) == scale,
		      "%s: \"%s\" does not have %d fraction digits", key, s,
		      scale);
	ck_assert_int_eq(mk_dec_parse(s, strlen(s), &d, NULL), MK_OK);
	return d;
}

/* An RFC 3339 UTC time with milliseconds. */
static void
assert_time(json_t *o, const char *key)
{
	const char *s = json_string_value(json_object_get(o, key));
	int y, mo, d, h, mi, sec, ms;
	char z;

	ck_assert_msg(s != NULL, "%s: not a string", key);
	ck_assert_msg(strlen(s) == 24 &&
			      sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d.%3d%c", &y, &mo,
				     &d, &h, &mi, &sec, &ms, &z) == 8 &&
			      z == 'Z',
		      "%s: \"%s\" is not RFC 3339 UTC with ms", key, s);
}

static void
assert_keys(json_t *o, const char *const *keys)
{
	for (size_t i = 0; keys[i] != NULL; i++)
		ck_assert_msg(json_object_get(o, keys[i]) != NULL,
			      "key \"%s\" missing in %s", keys[i],
			      json_dumps(o, JSON_COMPACT));
}

static json_t *
leg_of(json_t *mark, const char *source)
{
	size_t i;
	json_t *l;

	json_array_foreach(json_object_get(mark, "sources"), i, l)
		if (strcmp(json_string_value(json_object_get(l, "source")),
			   source) == 0)
			return l;
	return NULL;
}

static json_t *
feed_of(json_t *feeds, const char *source)
{
	size_t i;
	json_t *f;

	json_array_foreach(json_object_get(feeds, "sources"), i, f)
		if (strcmp(json_string_value(json_object_get(f, "source")),
			   source) == 0)
			return f;
	return NULL;
}

/* ================= the API ================= */

START_TEST(test_marks_and_feeds)
{
	static const char *const mark_keys[] = {
		"symbol", "price", "conf", "status", "valid_for_liquidation",
		"reasons", "held", "sources_used", "sources_total", "ema",
		"twap", "volatility", "updated_at", "age_ms", "seq",
		"last_good_at", "last_good_age_ms", "sources", NULL,
	};
	static const char *const leg_keys[] = {
		"source", "market", "via", "raw_price", "price", "conf",
		"exchange_ts", "received_at", "age_ms", "weight", "state",
		"reason", "error", "error_at", NULL,
	};
	static const char *const feed_keys[] = {
		"source", "state", "markets", "interval_ms", "last_success",
		"last_error", "consecutive_failures", "polls", "counts", "bans",
		"latency_ms", "backoff_ms", "next_poll", NULL,
	};
	json_t *all, *m, *legs, *l, *feeds, *f;
	struct mk_dec price, lo = MK_DEC(INT64_MAX, 0), hi = MK_DEC(0, 0);
	struct tu_resp r = { 0 };
	size_t i;

	write_config("coinbase,kraken,bitstamp", "[" BTC3 "]", "");
	markd_start();
	wait_all_used();

	http(markd.port, NULL, "/healthz", NULL, &r);
	ck_assert_int_eq(r.status, 200);
	ck_assert_str_eq(r.body, "{\"status\":\"ok\"}");
	tu_resp_free(&r);

	all = get_json(markd.port, "/v1/marks");
	ck_assert_uint_eq(json_array_size(json_object_get(all, "marks")), 1);
	json_decref(all);

	m = get_json(markd.port, "/v1/marks/BTC-USD");
	assert_keys(m, mark_keys);
	ck_assert_str_eq(json_string_value(json_object_get(m, "symbol")),
			 "BTC-USD");
	price = dec_field(m, "price", 8);
	dec_field(m, "conf", 8);
	ck_assert(json_is_true(json_object_get(m, "valid_for_liquidation")));
	ck_assert(json_is_array(json_object_get(m, "reasons")));
	ck_assert(json_is_false(json_object_get(m, "held")));
	ck_assert_int_eq(json_integer_value(json_object_get(m, "sources_total")),
			 3);
	ck_assert_int_ge(json_integer_value(json_object_get(m, "sources_used")),
			 2);
	ck_assert(json_is_string(json_object_get(m, "ema")) ||
		  json_is_null(json_object_get(m, "ema")));
	ck_assert(json_is_number(json_object_get(m, "volatility")) ||
		  json_is_null(json_object_get(m, "volatility")));
	assert_time(m, "updated_at");
	assert_time(m, "last_good_at");
	ck_assert(json_is_integer(json_object_get(m, "age_ms")));
	ck_assert_int_ge(json_integer_value(json_object_get(m, "age_ms")), 0);
	ck_assert_int_gt(json_integer_value(json_object_get(m, "seq")), 0);
	ck_assert(json_is_null(json_object_get(m, "last_good_age_ms")));
	legs = json_object_get(m, "sources");
	ck_assert_uint_eq(json_array_size(legs), 3);
	json_array_foreach(legs, i, l) {
		struct mk_dec lp;

		assert_keys(l, leg_keys);
		ck_assert(json_is_null(json_object_get(l, "via")));
		dec_field(l, "raw_price", 8);
		lp = dec_field(l, "price", 8);
		dec_field(l, "conf", 8);
		assert_time(l, "received_at");
		ck_assert(json_is_integer(json_object_get(l, "age_ms")));
		ck_assert_int_eq(json_integer_value(json_object_get(l, "weight")),
				 1);
		if (strcmp(json_string_value(json_object_get(l, "state")),
			   "used") == 0) {
			ck_assert(json_is_null(json_object_get(l, "reason")));
			if (mk_dec_cmp(lp, lo) < 0)
				lo = lp;
			if (mk_dec_cmp(lp, hi) > 0)
				hi = lp;
		}
	}
	/* the weighted median lies within the legs used */
	ck_assert(mk_dec_cmp(lo, price) <= 0 && mk_dec_cmp(price, hi) <= 0);
	/* Coinbase gives the exchange's time, Kraken none */
	assert_time(leg_of(m, "coinbase"), "exchange_ts");
	ck_assert(json_is_null(json_object_get(leg_of(m, "kraken"),
					       "exchange_ts")));
	json_decref(m);

	/* the subset, in the order asked, and HEAD */
	all = get_json(markd.port, "/v1/marks?symbols=BTC-USD,BTC-USD");
	ck_assert_uint_eq(json_array_size(json_object_get(all, "marks")), 2);
	json_decref(all);
	http(markd.port, "HEAD", "/v1/marks/BTC-USD", NULL, &r);
	ck_assert_int_eq(r.status, 200);
	ck_assert_uint_eq(r.len, 0);
	tu_resp_free(&r);

	feeds = get_json(markd.port, "/v1/feeds");
	assert_time(feeds, "as_of");
	ck_assert_uint_eq(json_array_size(json_object_get(feeds, "sources")), 3);
	json_array_foreach(json_object_get(feeds, "sources"), i, f) {
		assert_keys(f, feed_keys);
		ck_assert_int_eq(json_integer_value(json_object_get(f, "interval_ms")),
				 100);
		ck_assert_int_gt(json_integer_value(json_object_get(
					 json_object_get(f, "counts"), "ok")),
				 0);
		assert_time(f, "last_success");
		ck_assert(json_is_object(json_object_get(f, "latency_ms")));
	}
	json_decref(feeds);
	f = get_json(markd.port, "/v1/feeds/kraken");
	ck_assert_str_eq(json_string_value(json_object_get(f, "source")),
			 "kraken");
	json_decref(f);

	ck_assert_int_eq(tu_stop(&markd, SIGTERM, 10000), 0);
	ck_assert(tu_file_has(markd.err, "event=stopped exit=0"));
}
END_TEST

START_TEST(test_error_statuses)
{
	char big[2100];
	struct tu_resp r = { 0 };

	write_config("coinbase,kraken,bitstamp", "[" BTC3 "]", "");
	markd_start();
	wait_ready();

	http(markd.port, NULL, "/v1/nothing", NULL, &r);
	assert_error(&r, 404, "not_found");
	tu_resp_free(&r);
	http(markd.port, NULL, "/v1/marks/DOGE-USD", NULL, &r);
	assert_error(&r, 404, "not_found");
	tu_resp_free(&r);
	http(markd.port, NULL, "/v1/feeds/nasdaq", NULL, &r);
	assert_error(&r, 404, "not_found");
	tu_resp_free(&r);
	http(markd.port, NULL, "/v1/marks?symbols=BTC-USD,DOGE-USD", NULL, &r);
	assert_error(&r, 404, "not_found");
	tu_resp_free(&r);

	http(markd.port, "POST", "/v1/marks", "{}", &r);
	assert_error(&r, 405, "method_not_allowed");
	ck_assert_str_eq(r.allow, "GET, HEAD");
	tu_resp_free(&r);
	http(markd.port, "DELETE", "/v1/marks/BTC-USD", NULL, &r);
	assert_error(&r, 405, "method_not_allowed");
	tu_resp_free(&r);

	http(markd.port, NULL, "/v1/marks?symbols=BTC-USD,,ETH-USD", NULL, &r);
	assert_error(&r, 400, "bad_request");
	ck_assert_ptr_nonnull(strstr(r.body, "\"field\":\"symbols\""));
	tu_resp_free(&r);
	http(markd.port, NULL,
	     "/v1/marks?symbols=ABCDEFGHIJKLMNOPQRSTUVWXYZ-ABCDEFGHIJKL", NULL,
	     &r);
	assert_error(&r, 400, "bad_request");
	tu_resp_free(&r);

	/* a body larger than http.max_body_bytes (1024) */
	memset(big, 'x', sizeof big - 1);
	big[sizeof big - 1] = '\0';
	http(markd.port, "GET", "/v1/marks", big, &r);
	assert_error(&r, 413, "payload_too_large");
	tu_resp_free(&r);

	/* request headers: 6 KB fit the default 8 KiB connection buffer
	 * (http.connection_memory_bytes), 9 KB do not (431) */
	{
		static char hdr[9100];
		const char *hs[] = { hdr, NULL };

		memcpy(hdr, "X-Pad: ", 7);
		memset(hdr + 7, 'p', 6000);
		hdr[6007] = '\0';
		tu_http(markd.port, NULL, "/v1/marks/BTC-USD", NULL, hs, 5000,
			&r);
		ck_assert_int_eq(r.status, 200);
		memset(hdr + 7, 'p', 9000);
		hdr[9007] = '\0';
		tu_http(markd.port, NULL, "/v1/marks/BTC-USD", NULL, hs, 5000,
			&r);
		ck_assert_int_eq(r.status, 431);
		tu_resp_free(&r);
	}

	/* the server still answers after all that */
	http(markd.port, NULL, "/v1/marks/BTC-USD", NULL, &r);
	ck_assert_int_eq(r.status, 200);
	tu_resp_free(&r);
}
END_TEST

static bool
kraken_leg_error(json_t *m, void *arg)
{
	json_t *l = leg_of(m, "kraken");

	(void)arg;
	return l != NULL &&
	       strcmp(json_string_value(json_object_get(l, "state")), "error") == 0 &&
	       strcmp(json_string_value(json_object_get(l, "reason")), "error") == 0 &&
	       json_is_string(json_object_get(l, "error")) &&
	       json_is_string(json_object_get(l, "error_at")) &&
	       strcmp(json_string_value(json_object_get(m, "status")), "degraded") == 0 &&
	       json_is_true(json_object_get(m, "valid_for_liquidation")) &&
	       json_integer_value(json_object_get(m, "sources_used")) == 2;
}

static bool
kraken_feed_down(json_t *feeds, void *arg)
{
	json_t *f = feed_of(feeds, "kraken"), *e;

	(void)arg;
	if (f == NULL)
		return false;
	e = json_object_get(f, "last_error");
	return strcmp(json_string_value(json_object_get(f, "state")), "down") == 0 &&
	       json_is_object(e) &&
	       strcmp(json_string_value(json_object_get(e, "outcome")),
		      "parse_error") == 0 &&
	       json_integer_value(json_object_get(json_object_get(f, "counts"),
						  "parse_error")) > 0 &&
	       json_integer_value(json_object_get(f, "consecutive_failures")) >= 3 &&
	       json_integer_value(json_object_get(f, "backoff_ms")) > 0;
}

static bool
kraken_leg_used(json_t *m, void *arg)
{
	json_t *l = leg_of(m, "kraken");

	(void)arg;
	return l != NULL &&
	       strcmp(json_string_value(json_object_get(l, "state")), "used") == 0 &&
	       strcmp(json_string_value(json_object_get(m, "status")), "ok") == 0;
}

static bool
kraken_feed_up(json_t *feeds, void *arg)
{
	json_t *f = feed_of(feeds, "kraken");

	(void)arg;
	return f != NULL &&
	       strcmp(json_string_value(json_object_get(f, "state")), "up") == 0;
}

static char *
get_metrics(void)
{
	struct tu_resp r = { 0 };
	char why[256];
	char *text;

	http(markd.port, NULL, "/metrics", NULL, &r);
	ck_assert_int_eq(r.status, 200);
	ck_assert_msg(strncmp(r.ctype, "text/plain; version=0.0.4", 25) == 0,
		      "Content-Type %s", r.ctype);
	ck_assert_msg(prom_check(r.body, why, sizeof why), "%s\n%s", why,
		      r.body);
	text = r.body;
	r.body = NULL;
	tu_resp_free(&r);
	return text;
}

START_TEST(test_fault_shows_everywhere)
{
	char *metrics;

	write_config("coinbase,kraken,bitstamp", "[" BTC3 "]", "");
	markd_start();
	wait_all_used();

	/* HTTP 200 with an HTML page: bad data, so the leg is excluded */
	fault("{\"venue\": \"kraken\", \"kind\": \"garbage\"}");
	ck_assert_msg(json_poll("/v1/marks/BTC-USD", kraken_leg_error, NULL,
				10000),
		      "the kraken leg did not turn to error");
	ck_assert_msg(json_poll("/v1/feeds", kraken_feed_down, NULL, 10000),
		      "the kraken feed did not turn down");
	metrics = get_metrics();
	ck_assert(prom_get(metrics, "markd_source_requests_total{source=\"kraken\",outcome=\"parse_error\"}") > 0);
	ck_assert(prom_get(metrics, "markd_source_up{source=\"kraken\"}") == 0);
	ck_assert(prom_get(metrics, "markd_source_up{source=\"coinbase\"}") == 1);
	ck_assert(prom_get(metrics, "markd_source_state{source=\"kraken\",state=\"down\"}") == 1);
	ck_assert(prom_get(metrics, "markd_mark_legs{symbol=\"BTC-USD\",state=\"error\"}") == 1);
	ck_assert(prom_get(metrics, "markd_mark_status{symbol=\"BTC-USD\",status=\"degraded\"}") == 1);
	ck_assert(prom_get(metrics, "markd_mark_valid_for_liquidation{symbol=\"BTC-USD\"}") == 1);
	free(metrics);
	ck_assert(tu_wait_file_has(markd.err,
				"event=feed_state source=kraken from=up to=",
				5000));

	/* the venue recovers: so does everything */
	clear_faults();
	ck_assert_msg(json_poll("/v1/marks/BTC-USD", kraken_leg_used, NULL,
				15000),
		      "the kraken leg did not come back");
	ck_assert_msg(json_poll("/v1/feeds", kraken_feed_up, NULL, 15000),
		      "the kraken feed did not come back up");
	ck_assert(tu_wait_file_has(markd.err, "to=up", 5000));
}
END_TEST

START_TEST(test_metrics_exposition)
{
	char *m;

	write_config("coinbase,kraken,bitstamp", "[" BTC3 "]", "");
	markd_start();
	wait_all_used();
	m = get_metrics();
	ck_assert(prom_get(m, "markd_build_info{version=\"" PACKAGE_VERSION "\"}") == 1);
	ck_assert(prom_get(m, "markd_mark_price{symbol=\"BTC-USD\"}") > 1000);
	ck_assert(prom_get(m, "markd_mark_conf{symbol=\"BTC-USD\"}") >= 0);
	ck_assert(prom_get(m, "markd_mark_age_seconds{symbol=\"BTC-USD\"}") >= 0);
	ck_assert(prom_get(m, "markd_mark_sources_total{symbol=\"BTC-USD\"}") == 3);
	ck_assert(prom_get(m, "markd_mark_sources_used{symbol=\"BTC-USD\"}") >= 2);
	ck_assert(prom_get(m, "markd_mark_updates_total{symbol=\"BTC-USD\"}") > 0);
	ck_assert(prom_get(m, "markd_source_requests_total{source=\"coinbase\",outcome=\"ok\"}") > 0);
	ck_assert(prom_get(m, "markd_source_request_duration_seconds_count{source=\"coinbase\"}") > 0);
	ck_assert(prom_get(m, "markd_source_request_duration_seconds_bucket{source=\"coinbase\",le=\"10\"}") >= 0);
	ck_assert(prom_get(m, "markd_source_staleness_seconds{source=\"coinbase\"}") >= 0);
	ck_assert(prom_get(m, "markd_source_backoff_seconds{source=\"coinbase\"}") == 0);
	ck_assert(prom_get(m, "markd_http_requests_total{route=\"/readyz\",code=\"200\"}") >= 1);
	ck_assert(prom_get(m, "markd_http_request_duration_seconds_count{route=\"/readyz\"}") >= 1);
	ck_assert(prom_get(m, "markd_config_reloads_total{result=\"error\"}") == 0);
	ck_assert(prom_get(m, "markd_start_time_seconds") > 1e9);
	free(m);
}
END_TEST

/* ================= the stream ================= */

struct stream {
	struct tu_stream t;
	size_t parsed;          /* bytes of t.r.body already split */
};

struct event {
	uint64_t id;
	char type[16];
	json_t *data;
};

static void
stream_open(struct stream *s, const char *last_event_id)
{
	memset(s, 0, sizeof *s);
	ck_assert(tu_stream_open(&s->t, markd.port, "/v1/stream",
				 last_event_id, 60000));
}

/* The next complete event (comments and retry lines skipped), waiting
 * at most timeout_ms; false when none came. */
static bool
stream_next(struct stream *s, struct event *ev, int timeout_ms)
{
	int64_t deadline = tu_mono_ms() + timeout_ms;
	struct tu_resp *r = &s->t.r;

	for (;;) {
		while (r->body != NULL && s->parsed < r->len) {
			char *start = r->body + s->parsed;
			char *end = strstr(start, "\n\n");
			char *line, *save = NULL;

			if (end == NULL)
				break;
			*end = '\0';
			s->parsed = (size_t)(end - r->body) + 2;
			memset(ev, 0, sizeof *ev);
			for (line = strtok_r(start, "\n", &save); line != NULL;
			     line = strtok_r(NULL, "\n", &save)) {
				if (strncmp(line, "id: ", 4) == 0)
					ev->id = strtoull(line + 4, NULL, 10);
				else if (strncmp(line, "event: ", 7) == 0)
					snprintf(ev->type, sizeof ev->type, "%s",
						 line + 7);
				else if (strncmp(line, "data: ", 6) == 0)
					ev->data = json_loads(line + 6, 0, NULL);
			}
			if (ev->id != 0) {
				ck_assert_msg(ev->data != NULL,
					      "event %" PRIu64 " without JSON data",
					      ev->id);
				return true;
			}
		}
		if (s->t.done || tu_mono_ms() >= deadline)
			return false;
		tu_stream_pump(&s->t, 20);
	}
}

static void
stream_close(struct stream *s)
{
	tu_stream_close(&s->t);
}

START_TEST(test_sse_stream)
{
	struct stream s, s2;
	struct event ev;
	uint64_t last_id = 0, fifth = 0, last_seq = 0;
	int marks = 0, increases = 0, n = 0;
	char lei[32];
	bool feed_seen = false;

	write_config("coinbase,kraken,bitstamp", "[" BTC3 "]", "");
	markd_start();
	wait_all_used();

	stream_open(&s, NULL);
	while (marks < 30 && stream_next(&s, &ev, 10000)) {
		uint64_t seq;

		ck_assert_msg(ev.id > last_id, "ids not increasing: %" PRIu64
			      " after %" PRIu64, ev.id, last_id);
		last_id = ev.id;
		if (++n == 5)
			fifth = ev.id;
		if (strcmp(ev.type, "mark") == 0) {
			ck_assert_str_eq(json_string_value(json_object_get(ev.data,
									   "symbol")),
					 "BTC-USD");
			seq = (uint64_t)json_integer_value(json_object_get(ev.data,
									   "seq"));
			ck_assert_msg(seq >= last_seq, "seq went back: %" PRIu64
				      " after %" PRIu64, seq, last_seq);
			increases += seq > last_seq;
			last_seq = seq;
			ck_assert_ptr_nonnull(json_object_get(ev.data, "sources"));
			marks++;
		}
		json_decref(ev.data);
	}
	ck_assert_int_ge(marks, 30);
	ck_assert_int_ge(increases, 25);
	ck_assert_str_eq(s.t.r.ctype, "text/event-stream");

	/* a venue fault: a "feed" event on the same stream */
	fault("{\"venue\": \"kraken\", \"kind\": \"garbage\"}");
	while (!feed_seen && stream_next(&s, &ev, 10000)) {
		ck_assert(ev.id > last_id);
		last_id = ev.id;
		if (strcmp(ev.type, "feed") == 0) {
			ck_assert_str_eq(json_string_value(json_object_get(ev.data,
									   "source")),
					 "kraken");
			ck_assert_str_ne(json_string_value(json_object_get(ev.data,
									   "state")),
					 "up");
			feed_seen = true;
		}
		json_decref(ev.data);
	}
	ck_assert_msg(feed_seen, "no feed event for the kraken fault");
	stream_close(&s);

	/* resume after the fifth event: the sixth comes first */
	snprintf(lei, sizeof lei, "%" PRIu64, fifth);
	stream_open(&s2, lei);
	ck_assert(stream_next(&s2, &ev, 10000));
	ck_assert_msg(ev.id == fifth + 1, "resumed at %" PRIu64 ", want %" PRIu64,
		      ev.id, fifth + 1);
	json_decref(ev.data);
	stream_close(&s2);
}
END_TEST

/* ================= signals ================= */

static bool
has_eth_price(json_t *m, void *arg)
{
	(void)arg;
	return json_is_string(json_object_get(m, "price"));
}

static bool
feeds_have_bitstamp(json_t *f, void *arg)
{
	(void)arg;
	return feed_of(f, "bitstamp") != NULL;
}

static uint64_t
btc_seq(void)
{
	json_t *m = get_json(markd.port, "/v1/marks/BTC-USD");
	uint64_t seq = (uint64_t)json_integer_value(json_object_get(m, "seq"));

	ck_assert(json_is_string(json_object_get(m, "price")));
	json_decref(m);
	return seq;
}

/* Sends SIGHUP and waits for the n-th log line with needle. */
static void
hup_and_wait(const char *needle, int nth)
{
	int64_t deadline = tu_mono_ms() + 10000;

	kill(markd.pid, SIGHUP);
	for (;;) {
		char *t = tu_read_file(markd.err);
		int count = 0;

		for (const char *p = t; (p = strstr(p, needle)) != NULL; p++)
			count++;
		free(t);
		if (count >= nth)
			return;
		ck_assert_msg(tu_mono_ms() < deadline, "no \"%s\" #%d in the log: %s",
			      needle, nth, tu_read_file(markd.err));
		tu_pause_ms(20);
	}
}

START_TEST(test_sighup)
{
	struct tu_resp r = { 0 };
	json_t *m, *f;
	uint64_t seq0, seq1;
	char *metrics;

	/* A: two sources, one instrument */
	write_config("coinbase,kraken", "[" BTC2 "]", "");
	markd_start();
	wait_ready();
	http(markd.port, NULL, "/v1/marks/ETH-USD", NULL, &r);
	ck_assert_int_eq(r.status, 404);
	tu_resp_free(&r);
	seq0 = btc_seq();

	/* B: a source (bitstamp, also a new BTC-USD leg) and an instrument */
	write_config("coinbase,kraken,bitstamp", "[" BTC3 "," ETH3 "]", "");
	hup_and_wait("event=config_reloaded", 1);
	/* the marks of BTC-USD carry over: a price at once, seq goes on */
	seq1 = btc_seq();
	ck_assert_msg(seq1 >= seq0, "seq went back from %" PRIu64 " to %" PRIu64,
		      seq0, seq1);
	ck_assert(json_poll("/v1/marks/ETH-USD", has_eth_price, NULL, 10000));
	ck_assert(json_poll("/v1/feeds", feeds_have_bitstamp, NULL, 10000));
	m = get_json(markd.port, "/v1/marks/BTC-USD");
	ck_assert_int_eq(json_integer_value(json_object_get(m, "sources_total")), 3);
	ck_assert_ptr_nonnull(leg_of(m, "bitstamp"));
	json_decref(m);
	/* every leg delivers, so that C below has quotes to carry over */
	wait_all_used();

	/* a bad file: refused, every error logged, B still served */
	put_text("markd.json",
		   "{\"sources\": [{\"name\": \"a\", \"adapter\": \"binance\", "
		   "\"base_url\": \"http://127.0.0.1:1\"}], \"instruments\": "
		   "[{\"symbol\": \"BTC-USD\", \"legs\": [{\"source\": \"bnb\", "
		   "\"market\": \"BTCUSDT\"}], \"min_sources\": 1}], "
		   "\"bogus\": 1}\n");
	hup_and_wait("event=config_reload_failed", 1);
	ck_assert(tu_file_has(markd.err, "path=instruments[0].legs[0].source"));
	ck_assert(tu_file_has(markd.err, "unknown source"));
	ck_assert(tu_file_has(markd.err, "path=bogus"));
	ck_assert(json_poll("/v1/marks/ETH-USD", has_eth_price, NULL, 1000));
	f = get_json(markd.port, "/v1/feeds");
	ck_assert_uint_eq(json_array_size(json_object_get(f, "sources")), 3);
	json_decref(f);
	metrics = get_metrics();
	ck_assert(prom_get(metrics, "markd_config_reloads_total{result=\"ok\"}") == 1);
	ck_assert(prom_get(metrics, "markd_config_reloads_total{result=\"error\"}") == 1);
	free(metrics);

	/* C: kraken removed, its legs gone; a new listen address waits for
	 * a restart (the same port keeps serving) */
	snprintf(cfg_listen, sizeof cfg_listen, "127.0.0.1:1");
	write_config("coinbase,bitstamp",
		     "[{\"symbol\": \"BTC-USD\", \"legs\": ["
		     "{\"source\": \"coinbase\", \"market\": \"BTC-USD\"},"
		     "{\"source\": \"bitstamp\", \"market\": \"btcusd\"}]}]", "");
	hup_and_wait("event=config_reloaded", 2);
	ck_assert(tu_file_has(markd.err, "event=restart_needed"));
	f = get_json(markd.port, "/v1/feeds");
	ck_assert_ptr_null(feed_of(f, "kraken"));
	ck_assert_uint_eq(json_array_size(json_object_get(f, "sources")), 2);
	json_decref(f);
	m = get_json(markd.port, "/v1/marks/BTC-USD");
	ck_assert_ptr_null(leg_of(m, "kraken"));
	ck_assert_msg(json_is_string(json_object_get(m, "price")),
		      "no price right after the reload: %s\n%s",
		      json_dumps(m, JSON_COMPACT), tu_read_file(markd.err));
	ck_assert_uint_ge((uint64_t)json_integer_value(json_object_get(m, "seq")),
			  seq1);
	json_decref(m);
	http(markd.port, NULL, "/v1/marks/ETH-USD", NULL, &r);
	ck_assert_int_eq(r.status, 404);
	tu_resp_free(&r);

	ck_assert_int_eq(tu_stop(&markd, SIGTERM, 10000), 0);
}
END_TEST

struct hammer {
	int port;
	atomic_bool stop;
	atomic_long ok, partial, refused;
};

static void *
hammer_main(void *arg)
{
	struct hammer *h = arg;
	CURL *c = curl_easy_init();

	while (!atomic_load(&h->stop)) {
		struct tu_resp r = { 0 };

		tu_http_on(c, h->port, NULL, "/v1/marks", NULL, NULL, 5000, &r);
		if (r.code == CURLE_OK && r.status == 200) {
			if (r.j != NULL)
				atomic_fetch_add(&h->ok, 1);
			else
				atomic_fetch_add(&h->partial, 1);
		} else if (r.code == CURLE_PARTIAL_FILE ||
			   (r.code == CURLE_OK && r.status != 200)) {
			atomic_fetch_add(&h->partial, 1);
		} else {
			atomic_fetch_add(&h->refused, 1);
		}
		tu_resp_free(&r);
	}
	curl_easy_cleanup(c);
	return NULL;
}

START_TEST(test_sigterm_under_load)
{
	struct hammer h;
	pthread_t t[3];
	int64_t deadline, t0;
	int rc;

	write_config("coinbase,kraken,bitstamp", "[" BTC3 "]", "");
	markd_start();
	wait_all_used();
	memset(&h, 0, sizeof h);
	h.port = markd.port;
	for (int i = 0; i < 3; i++)
		ck_assert_int_eq(pthread_create(&t[i], NULL, hammer_main, &h), 0);
	deadline = tu_mono_ms() + 10000;
	while (atomic_load(&h.ok) < 300 && tu_mono_ms() < deadline)
		tu_pause_ms(5);
	ck_assert_int_ge(atomic_load(&h.ok), 300);
	t0 = tu_mono_ms();
	rc = tu_stop(&markd, SIGTERM, 10000);
	ck_assert_int_eq(rc, 0);
	ck_assert_msg(tu_mono_ms() - t0 < 7000, "took %" PRId64 " ms to stop",
		      tu_mono_ms() - t0);
	atomic_store(&h.stop, true);
	for (int i = 0; i < 3; i++)
		pthread_join(t[i], NULL);
	ck_assert_int_eq(atomic_load(&h.partial), 0);
	ck_assert(tu_file_has(markd.err, "event=stopping signal=SIGTERM"));
	ck_assert(tu_file_has(markd.err, "event=stopped exit=0"));
}
END_TEST

/* ================= start-up, logs, docs ================= */

/* A socket listening on 127.0.0.1 at an ephemeral port (so markd cannot
 * have it); cfg_listen asks for that port. Close it when done. */
static int
take_port(void)
{
	struct sockaddr_in sin;
	socklen_t sl = sizeof sin;
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	ck_assert_int_ge(fd, 0);
	memset(&sin, 0, sizeof sin);
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ck_assert_int_eq(bind(fd, (struct sockaddr *)&sin, sizeof sin), 0);
	ck_assert_int_eq(listen(fd, 1), 0);
	ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&sin, &sl), 0);
	snprintf(cfg_listen, sizeof cfg_listen, "127.0.0.1:%u",
		 (unsigned)ntohs(sin.sin_port));
	return fd;
}

START_TEST(test_start_failures)
{
	int fd = take_port();
	char extra[2 * TU_PATH_LEN];
	const char *args[] = { "-c", conf_path, NULL };

	/* a port that is taken: exit 3 with the reason, and the HTTP
	 * server's own message in the daemon's format */
	write_config("coinbase,kraken,bitstamp", "[" BTC3 "]", "");
	spawn(&markd, "markd", "markd", args);
	ck_assert_int_eq(tu_wait_exit(&markd, 10000), 3);
	ck_assert(tu_file_has(markd.err, "event=start_failed"));
	ck_assert(tu_file_has(markd.err, "cannot start the HTTP server"));
	ck_assert(tu_file_has(markd.err, "level=warn event=http_server msg="));
	close(fd);

	/* a tokens file that does not exist: a config error, exit 1 */
	snprintf(extra, sizeof extra, "\"token_file\": \"%s/none.tokens\", ",
		 tmpdir);
	write_config("coinbase,kraken,bitstamp", "[" BTC3 "]", extra);
	spawn(&markd, "markd", "markd", args);
	ck_assert_int_eq(tu_wait_exit(&markd, 10000), 1);
	ck_assert(tu_file_has(markd.err, "token_file"));
}
END_TEST

/*
 * Asserts that every line markd logged is a JSON object with ts, level
 * and event (only the "markd: ..." line that a start failure writes for
 * people is plain text). Returns how many lines there were; *seen tells
 * whether one had event `want`.
 */
static int
json_log_lines(const char *want, bool *seen)
{
	char *t = tu_read_file(markd.err), *line, *save = NULL;
	int lines = 0;

	*seen = false;
	for (line = strtok_r(t, "\n", &save); line != NULL;
	     line = strtok_r(NULL, "\n", &save)) {
		json_error_t je;
		json_t *j;

		lines++;
		if (strncmp(line, "markd: ", 7) == 0)
			continue;
		j = json_loads(line, 0, &je);
		ck_assert_msg(j != NULL, "not JSON: %s (%s)", line, je.text);
		ck_assert(json_is_string(json_object_get(j, "ts")));
		ck_assert(json_is_string(json_object_get(j, "level")));
		ck_assert(json_is_string(json_object_get(j, "event")));
		if (strcmp(json_string_value(json_object_get(j, "event")),
			   want) == 0)
			*seen = true;
		json_decref(j);
	}
	free(t);
	return lines;
}

START_TEST(test_json_logs)
{
	const char *args[] = { "-c", conf_path, NULL };
	bool seen;
	int fd;

	cfg_log = "{\"level\": \"debug\", \"format\": \"json\"}";
	write_config("coinbase,kraken,bitstamp", "[" BTC3 "]", "");
	markd_start();
	wait_ready();
	ck_assert_int_eq(tu_stop(&markd, SIGTERM, 10000), 0);
	ck_assert_int_ge(json_log_lines("starting", &seen), 4);
	ck_assert(seen);

	/* the HTTP server's own lines follow the format too: its message
	 * about a port that is taken */
	fd = take_port();
	write_config("coinbase,kraken,bitstamp", "[" BTC3 "]", "");
	spawn(&markd, "markd", "markd", args);
	ck_assert_int_eq(tu_wait_exit(&markd, 10000), 3);
	close(fd);
	json_log_lines("http_server", &seen);
	ck_assert_msg(seen, "no http_server event: %s",
		      tu_read_file(markd.err));
}
END_TEST

static const char *
method_key(enum httpd_method m)
{
	switch (m) {
	case HTTPD_GET: return "get";
	case HTTPD_HEAD: return "head";
	case HTTPD_POST: return "post";
	case HTTPD_PUT: return "put";
	case HTTPD_PATCH: return "patch";
	case HTTPD_DELETE: return "delete";
	case HTTPD_OPTIONS: return "options";
	}
	return "?";
}

/* Whether doc/openapi.yaml has `pattern` under paths: with `method`
 * under it (two-space path keys, four-space method keys). */
static bool
yaml_has(const char *yaml, const char *pattern, const char *method)
{
	char key[256], mkey[32];
	const char *p = strstr(yaml, "\npaths:\n"), *end;

	if (p == NULL)
		return false;
	snprintf(key, sizeof key, "\n  %s:\n", pattern);
	p = strstr(p, key);
	if (p == NULL)
		return false;
	p += strlen(key) - 1;
	/* the path's block ends at the next line indented less than 3 */
	for (end = p; (end = strchr(end + 1, '\n')) != NULL;)
		if (end[1] != '\n' && strncmp(end + 1, "   ", 3) != 0)
			break;
	snprintf(mkey, sizeof mkey, "\n    %s:", method);
	for (const char *q = p; (q = strstr(q, mkey)) != NULL; q++)
		if (end == NULL || q < end)
			return true;
	return false;
}

START_TEST(test_routes_documented)
{
	char path[TU_PATH_LEN], dbpath[TU_PATH_LEN + 16];
	struct cfg *cfg = NULL;
	struct cfg_errors errs;
	struct md_app *app = NULL;
	struct mk_err err = { 0 };
	char *yaml;
	size_t n;

	tu_srcpath(path, sizeof path, "conf/demo.json");
	ck_assert_int_eq(cfg_load(path, &cfg, &errs), MK_OK);
	/* the margin service's store goes to a temp dir, not the cwd */
	ck_assert(tu_make_dir(tmpdir, sizeof tmpdir, "markd-daemon"));
	free(cfg->database);
	snprintf(dbpath, sizeof dbpath, "%s/routes.db", tmpdir);
	cfg->database = strdup(dbpath);
	ck_assert_ptr_nonnull(cfg->database);
	ck_assert_int_eq(md_app_create(path, cfg, &app, &err), MK_OK);
	ck_assert_msg(md_app_add_margin(app, &err) == MK_OK, "%s", err.msg);
	tu_srcpath(path, sizeof path, "doc/openapi.yaml");
	yaml = tu_read_file(path);
	ck_assert_msg(strncmp(yaml, "openapi: 3.", 11) == 0,
		      "doc/openapi.yaml is not OpenAPI 3");
	n = md_app_route_count(app);
	ck_assert_uint_ge(n, 8);
	for (size_t i = 0; i < n; i++) {
		enum httpd_method m;
		const char *pattern;

		ck_assert(md_app_route_at(app, i, &m, &pattern));
		ck_assert_msg(yaml_has(yaml, pattern, method_key(m)),
			      "%s %s is served but not in doc/openapi.yaml",
			      httpd_method_name(m), pattern);
	}
	/* and the check can fail */
	ck_assert(!yaml_has(yaml, "/v1/nothing", "get"));
	ck_assert(!yaml_has(yaml, "/v1/marks", "delete"));
	free(yaml);
	md_app_stop(app);
	tu_remove_dir(tmpdir);
}
END_TEST

static Suite *
daemon_suite(void)
{
	Suite *s = suite_create("daemon");
	TCase *api = tcase_create("api");
	TCase *sig = tcase_create("signals");
	TCase *misc = tcase_create("misc");
	TCase *docs = tcase_create("docs");

	tcase_add_unchecked_fixture(api, fakex_setup, fakex_teardown);
	tcase_add_checked_fixture(api, each_setup, each_teardown);
	tcase_set_timeout(api, 120);
	tcase_add_test(api, test_marks_and_feeds);
	tcase_add_test(api, test_error_statuses);
	tcase_add_test(api, test_fault_shows_everywhere);
	tcase_add_test(api, test_metrics_exposition);
	tcase_add_test(api, test_sse_stream);
	suite_add_tcase(s, api);

	tcase_add_unchecked_fixture(sig, fakex_setup, fakex_teardown);
	tcase_add_checked_fixture(sig, each_setup, each_teardown);
	tcase_set_timeout(sig, 120);
	tcase_add_test(sig, test_sighup);
	tcase_add_test(sig, test_sigterm_under_load);
	suite_add_tcase(s, sig);

	tcase_add_unchecked_fixture(misc, fakex_setup, fakex_teardown);
	tcase_add_checked_fixture(misc, each_setup, each_teardown);
	tcase_set_timeout(misc, 120);
	tcase_add_test(misc, test_start_failures);
	tcase_add_test(misc, test_json_logs);
	suite_add_tcase(s, misc);

	tcase_add_test(docs, test_routes_documented);
	suite_add_tcase(s, docs);
	return s;
}

TU_MAIN(daemon_suite)
