/*
 * check_margin_api.c - the margin HTTP API end to end inside one process:
 * a real config (cfg_load_buffer), a real aggregator book fed with quotes
 * whose snapshots go to the margin service, a real SQLite file in a temp
 * directory, and the httpd server on 127.0.0.1 port 0 with the margin
 * routes, driven by libcurl.
 *
 *   - evaluate: T1 at the mark 39,000 (MR 15.6%, health 6.41, LP
 *     38,152.61...), a what-if price with a top-up target (T1 at 38,500:
 *     1,040), T5 inverse, lists, every figure at the band edges;
 *   - every 400 names its field; 401/403 for writes; 404; 405; 413; 415;
 *   - positions: PUT (201, then 200), GET, list with cursor paging and
 *     state filter, collateral deposit, refused and accepted withdrawals,
 *     DELETE;
 *   - liquidations: a breach confirmed after K marks and T ms becomes an
 *     event with the mark, conf, status, sources and reason; paging with
 *     since/limit; the same events on the SSE stream; metrics;
 *   - held marks (no quorum, one venue wicking): never liquidatable,
 *     withdrawals refused;
 *   - restart: closing and reopening the service on the same file keeps
 *     positions, events and states (no duplicate events);
 *   - a full store (size cap) answers 503, is logged, and fails readiness.
 */
#include "config.h"

#include <check.h>
#include <curl/curl.h>
#include <jansson.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "aggregator/book.h"
#include "aggregator/snapshot.h"
#include "daemon/cfg.h"
#include "daemon/margin_service.h"
#include "httpd/auth.h"
#include "httpd/metrics.h"
#include "httpd/router.h"
#include "httpd/routes.h"
#include "httpd/server.h"
#include "httpd/sse.h"
#include "tests/http.h"
#include "tests/proc.h"
#include "tests/testutil.h"

#define TOKEN "tok-margin-api-test-0123456789"
#define OTHER_TOKEN "tok-not-a-known-token-0000000"

static const char CONFIG[] =
	"{\"listen\":\"127.0.0.1:0\",\"database\":\"unused.db\","
	" \"token_file\":\"tokens\","
	" \"sources\":["
	"  {\"name\":\"a\",\"adapter\":\"binance\",\"base_url\":\"http://127.0.0.1:9/a\"},"
	"  {\"name\":\"b\",\"adapter\":\"binance\",\"base_url\":\"http://127.0.0.1:9/b\"},"
	"  {\"name\":\"c\",\"adapter\":\"binance\",\"base_url\":\"http://127.0.0.1:9/c\"},"
	"  {\"name\":\"d\",\"adapter\":\"binance\",\"base_url\":\"http://127.0.0.1:9/d\"}],"
	" \"instruments\":["
	"  {\"symbol\":\"BTC-USD\",\"scale\":2,\"min_sources\":3,"
	"   \"legs\":[{\"source\":\"a\",\"market\":\"BTCUSD\"},"
	"            {\"source\":\"b\",\"market\":\"BTCUSD\"},"
	"            {\"source\":\"c\",\"market\":\"BTCUSD\"},"
	"            {\"source\":\"d\",\"market\":\"BTCUSD\"}],"
	"   \"margin\":{\"contract\":\"linear\",\"confirm_count\":3,"
	"    \"confirm_ms\":3000,\"safe_buffer_bps\":200,\"brackets\":["
	"     {\"floor\":\"0\",\"cap\":\"50000\",\"mmr\":\"0.004\"},"
	"     {\"floor\":\"50000\",\"cap\":\"250000\",\"mmr\":\"0.005\"},"
	"     {\"floor\":\"250000\",\"cap\":\"1000000\",\"mmr\":\"0.01\"},"
	"     {\"floor\":\"1000000\",\"cap\":\"10000000\",\"mmr\":\"0.025\"},"
	"     {\"floor\":\"10000000\",\"cap\":\"20000000\",\"mmr\":\"0.05\"}]}},"
	"  {\"symbol\":\"XBT-USD\",\"scale\":1,\"min_sources\":1,"
	"   \"legs\":[{\"source\":\"a\",\"market\":\"XBTUSD\"}],"
	"   \"margin\":{\"contract\":\"inverse\",\"contract_size\":\"100\","
	"    \"brackets\":["
	"     {\"floor\":\"0\",\"cap\":\"5\",\"mmr\":\"0.005\"},"
	"     {\"floor\":\"5\",\"cap\":\"10\",\"mmr\":\"0.01\"},"
	"     {\"floor\":\"10\",\"cap\":\"20\",\"mmr\":\"0.025\"}]}},"
	"  {\"symbol\":\"ETH-USD\",\"scale\":2,\"min_sources\":1,"
	"   \"legs\":[{\"source\":\"b\",\"market\":\"ETHUSD\"}]}]}";

/* T1 on BTC-USD with the instrument's brackets. */
#define T1 "{\"symbol\":\"BTC-USD\",\"side\":\"long\",\"size\":\"1\"," \
	   "\"entry_price\":\"40000\",\"collateral\":\"2000\"}"

/* ---- the environment -------------------------------------------------- */

struct env {
	char dir[TU_PATH_LEN];
	char tokens[TU_PATH_LEN + 8];
	char db[TU_PATH_LEN + 16];
	struct cfg *cfg;
	struct agg_book *book;
	int64_t now;
	struct httpd_router *router;
	struct httpd_auth *auth;
	struct httpd_metrics *metrics;
	struct httpd_sse_hub *hub;
	struct httpd_server *srv;
	struct httpd_basic_routes basic;
	struct margin_service *svc;
	struct margin_service_options opt;
	uint16_t port;
	pthread_mutex_t log_mu;
	char logs[16384];
};

static struct env E;

static void
capture_log(void *arg, enum margin_service_level level, const char *msg)
{
	size_t n;

	(void)arg;
	(void)level;
	pthread_mutex_lock(&E.log_mu);
	n = strlen(E.logs);
	snprintf(E.logs + n, sizeof(E.logs) - n, "%s\n", msg);
	pthread_mutex_unlock(&E.log_mu);
}

static bool
logged(const char *needle)
{
	bool r;

	pthread_mutex_lock(&E.log_mu);
	r = strstr(E.logs, needle) != NULL;
	pthread_mutex_unlock(&E.log_mu);
	return r;
}

static void
ready_fn(void *arg, struct httpd_readiness *r)
{
	margin_service_ready(arg, r);
}

static void
book_start(void)
{
	struct mk_err err;

	ck_assert_msg(agg_book_create(E.cfg->specs, E.cfg->ninstruments,
				      &E.book, &err) == MK_OK, "%s", err.msg);
}

/* Starts the service, the hub and the server (the service on E.db). */
static void
env_start(void)
{
	struct httpd_server_config sc;
	struct httpd_sse_config ssec;
	struct mk_err err;

	E.metrics = httpd_metrics_create();
	E.router = httpd_router_create();
	ck_assert_ptr_nonnull(E.metrics);
	ck_assert_ptr_nonnull(E.router);
	httpd_sse_config_default(&ssec);
	ck_assert_int_eq(httpd_sse_hub_create(&ssec, E.metrics, &E.hub, &err),
			 MK_OK);
	E.opt.cfg = E.cfg;
	E.opt.database = E.db;
	E.opt.metrics = E.metrics;
	E.opt.hub = E.hub;
	E.opt.log = capture_log;
	E.opt.retry_ms = 50;
	ck_assert_msg(margin_service_create(&E.opt, &E.svc, &err) == MK_OK,
		      "service: %s", err.msg);
	E.basic.metrics = E.metrics;
	E.basic.ready = ready_fn;
	E.basic.ready_arg = E.svc;
	ck_assert_int_eq(httpd_routes_basic(E.router, &E.basic, &err), MK_OK);
	ck_assert_int_eq(margin_service_routes(E.svc, E.router, &err), MK_OK);
	ck_assert_int_eq(httpd_router_add(E.router, HTTPD_GET, "/v1/stream",
					  HTTPD_ROUTE_STREAM,
					  httpd_sse_handler, E.hub, &err),
			 MK_OK);
	httpd_server_config_default(&sc);
	sc.body_cap = 16384;
	sc.drain_timeout_ms = 2000;
	sc.router = E.router;
	sc.auth = E.auth;
	sc.metrics = E.metrics;
	sc.hub = E.hub;
	ck_assert_msg(httpd_server_start(&sc, &E.srv, &err) == MK_OK,
		      "start: %s", err.msg);
	E.port = httpd_server_port(E.srv);
}

static void
env_stop(void)
{
	httpd_server_stop(E.srv);
	E.srv = NULL;
	margin_service_destroy(E.svc);
	E.svc = NULL;
	httpd_sse_hub_destroy(E.hub);
	E.hub = NULL;
	httpd_router_destroy(E.router);
	E.router = NULL;
	httpd_metrics_destroy(E.metrics);
	E.metrics = NULL;
}

static void
setup(void)
{
	struct cfg_errors *errs = calloc(1, sizeof(*errs));
	struct mk_err err;

	ck_assert_ptr_nonnull(errs);
	memset(&E, 0, sizeof(E));
	pthread_mutex_init(&E.log_mu, NULL);
	ck_assert(tu_make_dir(E.dir, sizeof(E.dir), "check_margin_api"));
	snprintf(E.tokens, sizeof(E.tokens), "%s/tokens", E.dir);
	snprintf(E.db, sizeof(E.db), "%s/markd.db", E.dir);
	ck_assert(tu_put_file(E.dir, "tokens", TOKEN "\n"));
	ck_assert_int_eq(httpd_auth_load(E.tokens, &E.auth, &err), MK_OK);
	ck_assert_msg(cfg_load_buffer(CONFIG, strlen(CONFIG), &E.cfg, errs) ==
			      MK_OK,
		      "config: %s: %s", errs->count ? errs->e[0].path : "",
		      errs->count ? errs->e[0].msg : "");
	free(errs);
	book_start();
	E.now = 1718000000000;
	env_start();
}

static void
teardown(void)
{
	if (E.srv != NULL || E.svc != NULL)
		env_stop();
	agg_book_destroy(E.book);
	cfg_free(E.cfg);
	httpd_auth_destroy(E.auth);
	tu_remove_dir(E.dir);
	pthread_mutex_destroy(&E.log_mu);
}

/* ---- marks ------------------------------------------------------------ */

/* Hands the book's latest snapshot to the service, as the feeds thread
 * does after each publication. */
static void
feed_snapshot(void)
{
	const struct agg_snapshot *s = agg_book_acquire(E.book);

	margin_service_on_snapshot(E.svc, s, E.now);
	agg_snapshot_release(s);
}

static void
quote(size_t inst, size_t leg, const char *price)
{
	struct agg_quote q;
	size_t id;
	struct mk_err err;

	memset(&q, 0, sizeof(q));
	ck_assert_int_eq(mk_dec_parse(price, strlen(price), &q.bid, &err),
			 MK_OK);
	q.ask = q.bid;
	q.has_bid = q.has_ask = true;
	ck_assert_int_eq(agg_book_leg_id(E.book, inst, leg, &id), MK_OK);
	ck_assert_int_eq(agg_book_quote(E.book, id, &q, E.now), MK_OK);
}

/* Every BTC-USD venue at price, one second later; then the snapshot. */
static void
btc_at(const char *price)
{
	E.now += 1000;
	for (size_t leg = 0; leg < 4; leg++)
		quote(0, leg, price);
	feed_snapshot();
}

/* Three venues at price, one wicking to `wick`. */
static void
btc_wick(const char *price, const char *wick)
{
	E.now += 1000;
	for (size_t leg = 0; leg < 3; leg++)
		quote(0, leg, price);
	quote(0, 3, wick);
	feed_snapshot();
}

/* Two venues send garbage: no quorum, the mark is held. */
static void
btc_no_quorum(const char *price)
{
	size_t id;

	E.now += 1000;
	quote(0, 0, price);
	quote(0, 1, price);
	for (size_t leg = 2; leg < 4; leg++) {
		ck_assert_int_eq(agg_book_leg_id(E.book, 0, leg, &id), MK_OK);
		ck_assert_int_eq(agg_book_error(E.book, id, AGG_FETCH_BAD_DATA,
						"garbage", E.now), MK_OK);
	}
	feed_snapshot();
}

static void
flush(void)
{
	ck_assert(margin_service_flush(E.svc, 10000));
}

/* ---- HTTP ------------------------------------------------------------- */

/* One request; token NULL for none; ctype NULL for application/json.
 * Asserts that the transfer worked. */
static void
http_ct(const char *method, const char *path, const char *body,
	const char *token, const char *ctype, struct tu_resp *r)
{
	char auth[200], type[200];
	const char *hdr[3] = { NULL, NULL, NULL };
	size_t n = 0;

	if (token != NULL) {
		snprintf(auth, sizeof(auth), "Authorization: Bearer %s", token);
		hdr[n++] = auth;
	}
	if (body != NULL) {
		snprintf(type, sizeof(type), "Content-Type: %s",
			 ctype != NULL ? ctype : "application/json");
		hdr[n++] = type;
	}
	ck_assert_msg(tu_http(E.port, method, path, body, hdr, 20000, r),
		      "%s %s: %s", method, path, curl_easy_strerror(r->code));
}

static void
http(const char *method, const char *path, const char *body,
     const char *token, struct tu_resp *r)
{
	http_ct(method, path, body, token, NULL, r);
}

/* The value at a dotted path ("band.adverse.price", "events.1.to"). */
static json_t *
jget(json_t *j, const char *path)
{
	char buf[256], *save = NULL, *tok;

	snprintf(buf, sizeof(buf), "%s", path);
	for (tok = strtok_r(buf, ".", &save); j != NULL && tok != NULL;
	     tok = strtok_r(NULL, ".", &save)) {
		if (json_is_array(j))
			j = json_array_get(j, strtoul(tok, NULL, 10));
		else
			j = json_object_get(j, tok);
	}
	return j;
}

static const char *
jstr(struct tu_resp *r, const char *path)
{
	const char *s = json_string_value(jget(r->j, path));

	ck_assert_msg(s != NULL, "%s: no string at %s in %s", path, path,
		      r->body != NULL ? r->body : "(no body)");
	return s;
}

#define ck_jstr(r, path, want) \
	ck_assert_msg(strcmp(jstr((r), (path)), (want)) == 0, \
		      "%s = %s, want %s (%s)", (path), jstr((r), (path)), \
		      (want), (r)->body)

static int64_t
jint(struct tu_resp *r, const char *path)
{
	json_t *v = jget(r->j, path);

	ck_assert_msg(json_is_integer(v), "%s: no integer at %s in %s", path,
		      path, r->body);
	return json_integer_value(v);
}

/* Asserts an API error: status, code and (when not NULL) field. */
static void
ck_error(struct tu_resp *r, long status, const char *code, const char *field)
{
	json_t *f;

	ck_assert_msg(r->status == status, "status %ld, want %ld: %s", r->status,
		      status, r->body != NULL ? r->body : "");
	ck_jstr(r, "error.code", code);
	f = jget(r->j, "error.field");
	if (field != NULL)
		ck_assert_msg(json_is_string(f) &&
				      strcmp(json_string_value(f), field) == 0,
			      "field %s, want %s: %s",
			      json_is_string(f) ? json_string_value(f) : "(none)",
			      field, r->body);
}

/* A body too large for the server's cap. */
static char *
big_body(size_t n)
{
	char *b = malloc(n + 1);

	ck_assert_ptr_nonnull(b);
	memset(b, ' ', n);
	b[0] = '{';
	b[n - 1] = '}';
	b[n] = '\0';
	return b;
}

/* ---- SSE -------------------------------------------------------------- */

static bool
hub_has_one_stream(void *arg)
{
	(void)arg;
	return httpd_sse_clients(E.hub) == 1;
}

/* ================= tests ================= */

START_TEST(test_evaluate_t1)
{
	struct tu_resp r = { 0 };

	/* no mark yet: 503 unless a price is given */
	http("POST", "/v1/margin/evaluate", T1, NULL, &r);
	ck_error(&r, 503, "service_unavailable", NULL);

	btc_at("39000");
	http("POST", "/v1/margin/evaluate", T1, NULL, &r);
	ck_assert_msg(r.status == 200, "%s", r.body);
	ck_jstr(&r, "symbol", "BTC-USD");
	ck_jstr(&r, "mark.source", "mark");
	ck_jstr(&r, "mark.price", "39000.00");
	ck_jstr(&r, "mark.conf", "0.01");
	ck_jstr(&r, "mark.status", "ok");
	ck_assert(json_is_true(jget(r.j, "mark.valid_for_liquidation")));
	ck_assert_int_eq(jint(&r, "mark.sources_used"), 4);
	ck_jstr(&r, "as_of", "2024-06-10T06:13:21.000Z");
	ck_jstr(&r, "notional", "39000.00000000");
	ck_jstr(&r, "unrealized_pnl", "-1000.00000000");
	ck_jstr(&r, "margin_balance", "1000.00000000");
	ck_jstr(&r, "maintenance_margin", "156.00000000");
	ck_jstr(&r, "initial_margin", "1950.00000000");
	ck_jstr(&r, "margin_ratio", "0.15600000");
	ck_jstr(&r, "health", "6.41025641");
	ck_jstr(&r, "effective_leverage", "39.00000000");
	ck_jstr(&r, "liquidation_price", "38152.61");
	ck_jstr(&r, "bankruptcy_price", "38000.00");
	ck_assert_int_eq(jint(&r, "bracket"), 0);
	ck_assert_int_eq(jint(&r, "liquidation_bracket"), 0);
	ck_jstr(&r, "liquidation_condition",
		"margin_balance < maintenance_margin");
	ck_jstr(&r, "state", "safe");
	ck_jstr(&r, "reason", "healthy");
	ck_jstr(&r, "position.entry_price", "40000");
	ck_assert_ptr_null(jget(r.j, "position.brackets"));
	/* the same figures at the band edges */
	ck_jstr(&r, "band.conf", "0.01");
	ck_jstr(&r, "band.favourable.price", "39000.01");
	ck_jstr(&r, "band.adverse.price", "38999.99");
	ck_jstr(&r, "band.adverse.margin_balance", "999.99000000");
	ck_jstr(&r, "band.favourable.margin_ratio", "0.15599848");
	ck_assert_ptr_nonnull(jget(r.j, "band.adverse.health"));
	ck_assert(json_is_false(jget(r.j, "breached")));
	ck_assert_ptr_nonnull(jget(r.j, "max_removable"));
	ck_assert_ptr_nonnull(jget(r.j, "delta"));

	/* what-if at 38,500 with a top-up target (T1: 1,040) */
	http("POST", "/v1/margin/evaluate",
	     "{\"symbol\":\"BTC-USD\",\"side\":\"long\",\"size\":1,"
	     "\"entry_price\":\"40000\",\"collateral\":\"2000\","
	     "\"price\":\"38500\",\"targets\":{\"margin_ratio\":\"0.1\","
	     "\"liq_price\":\"37108.433735\"},\"sigma\":0.6,"
	     "\"horizon_s\":86400}", NULL, &r);
	ck_assert_msg(r.status == 200, "%s", r.body);
	ck_jstr(&r, "mark.source", "request");
	ck_jstr(&r, "mark.price", "38500");
	ck_jstr(&r, "margin_ratio", "0.30800000");
	ck_jstr(&r, "topup_margin_ratio", "1040.00000000");
	ck_assert_ptr_nonnull(jget(r.j, "topup_liq_price"));
	ck_assert_ptr_nonnull(jget(r.j, "p_liq"));
	ck_assert(json_real_value(jget(r.j, "sigma")) == 0.6);

	/* T5 inverse long at 38,000 (a what-if: XBT-USD has no mark) */
	http("POST", "/v1/margin/evaluate",
	     "{\"symbol\":\"XBT-USD\",\"side\":\"long\",\"size\":\"100\","
	     "\"entry_price\":\"40000\",\"collateral\":\"0.025\","
	     "\"price\":\"38000\"}", NULL, &r);
	ck_assert_msg(r.status == 200, "%s", r.body);
	ck_jstr(&r, "position.kind", "inverse");
	ck_jstr(&r, "position.contract_size", "100");
	ck_jstr(&r, "margin_ratio", "0.11111111");
	ck_jstr(&r, "health", "9.00000000");
	ck_jstr(&r, "liquidation_price", "36545.5");

	/* a list */
	http("POST", "/v1/margin/evaluate",
	     "{\"positions\":[" T1 ",{\"id\":\"b\",\"symbol\":\"BTC-USD\","
	     "\"side\":\"short\",\"size\":\"2\",\"entry_price\":\"39000\","
	     "\"collateral\":\"3900\",\"brackets\":[{\"floor\":\"0\","
	     "\"mmr\":\"0.01\"}]}]}", NULL, &r);
	ck_assert_msg(r.status == 200, "%s", r.body);
	ck_assert_int_eq(json_array_size(jget(r.j, "evaluations")), 2);
	ck_jstr(&r, "evaluations.0.margin_ratio", "0.15600000");
	ck_jstr(&r, "evaluations.1.id", "b");
	ck_jstr(&r, "evaluations.1.position.brackets.0.mmr", "0.01");
	ck_jstr(&r, "evaluations.1.maintenance_margin", "780.00000000");
	tu_resp_free(&r);
}
END_TEST

struct bad {
	const char *body;
	const char *field;
};

START_TEST(test_bad_requests)
{
	static const struct bad bad[] = {
		{ "{\"symbol\":\"BTC-USD\",\"side\":\"long\",\"size\":\"0\","
		  "\"entry_price\":\"40000\",\"collateral\":\"2000\"}", "size" },
		{ "{\"symbol\":\"BTC-USD\",\"side\":\"long\",\"size\":\"1\","
		  "\"entry_price\":\"40000\",\"collateral\":\"-1\"}",
		  "collateral" },
		{ "{\"symbol\":\"DOGE-USD\",\"side\":\"long\",\"size\":\"1\","
		  "\"entry_price\":\"40000\",\"collateral\":\"2000\"}",
		  "symbol" },
		{ "{\"symbol\":\"BTC-USD\",\"side\":\"long\",\"size\":\"1.2.3\","
		  "\"entry_price\":\"40000\",\"collateral\":\"2000\"}", "size" },
		{ "{\"symbol\":\"BTC-USD\",\"side\":\"long\",\"size\":\"1e3\","
		  "\"entry_price\":\"40000\",\"collateral\":\"2000\"}", "size" },
		{ "{\"symbol\":\"BTC-USD\",\"side\":\"long\",\"size\":\"1\","
		  "\"entry_price\":\"NaN\",\"collateral\":\"2000\"}",
		  "entry_price" },
		{ "{\"symbol\":\"BTC-USD\",\"side\":\"long\",\"size\":\"1\","
		  "\"entry_price\":\"40000\",\"collateral\":\"2000\","
		  "\"brackets\":[{\"floor\":\"0\",\"mmr\":\"1\"}]}",
		  "brackets[0].mmr" },
		{ "{\"symbol\":\"BTC-USD\",\"side\":\"long\",\"size\":\"1\","
		  "\"entry_price\":\"40000\",\"collateral\":\"2000\","
		  "\"brackets\":[{\"floor\":\"0\",\"cap\":\"10\",\"mmr\":\"0.1\"},"
		  "{\"floor\":\"11\",\"mmr\":\"0.2\"}]}", "brackets[1].floor" },
		{ "{\"symbol\":\"BTC-USD\",\"side\":\"long\",\"size\":\"1\","
		  "\"entry_price\":\"40000\",\"collateral\":\"2000\","
		  "\"brackets\":[{\"floor\":\"0\",\"mmr\":\"0.1\",\"x\":1}]}",
		  "brackets[0].x" },
		{ "{\"symbol\":\"BTC-USD\",\"side\":\"long\",\"size\":\"1\","
		  "\"entry_price\":\"40000\",\"collateral\":\"2000\","
		  "\"foo\":1}", "foo" },
		{ "{\"symbol\":\"BTC-USD\",\"size\":\"1\","
		  "\"entry_price\":\"40000\",\"collateral\":\"2000\"}", "side" },
		{ "{\"symbol\":\"BTC-USD\",\"side\":\"up\",\"size\":\"1\","
		  "\"entry_price\":\"40000\",\"collateral\":\"2000\"}", "side" },
		{ "{\"symbol\":\"BTC-USD\",\"kind\":\"perp\",\"side\":\"long\","
		  "\"size\":\"1\",\"entry_price\":\"40000\","
		  "\"collateral\":\"2000\"}", "kind" },
		{ "{\"symbol\":\"BTC-USD\",\"side\":\"long\",\"size\":\"1\","
		  "\"entry_price\":\"40000\",\"collateral\":\"2000\","
		  "\"contract_size\":\"100\"}", "contract_size" },
		{ "{\"symbol\":\"BTC-USD\",\"kind\":\"inverse\",\"side\":\"long\","
		  "\"size\":\"1\",\"entry_price\":\"40000\","
		  "\"collateral\":\"2000\",\"contract_size\":\"100\"}",
		  "brackets" },
		{ "{\"symbol\":\"ETH-USD\",\"side\":\"long\",\"size\":\"1\","
		  "\"entry_price\":\"3000\",\"collateral\":\"200\"}",
		  "brackets" },
		{ "{\"symbol\":\"BTC-USD\",\"side\":\"long\",\"size\":\"1\","
		  "\"entry_price\":\"40000\",\"collateral\":\"2000\","
		  "\"leverage\":\"0\"}", "leverage" },
		{ "{\"symbol\":\"BTC-USD\",\"side\":\"long\",\"size\":\"1\","
		  "\"entry_price\":\"40000\",\"collateral\":true}",
		  "collateral" },
		{ "{\"symbol\":7,\"side\":\"long\",\"size\":\"1\","
		  "\"entry_price\":\"40000\",\"collateral\":\"1\"}", "symbol" },
	};
	struct tu_resp r = { 0 };
	char *big;

	btc_at("39000");
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		http("POST", "/v1/margin/evaluate", bad[i].body, NULL, &r);
		ck_error(&r, 400, "bad_request", bad[i].field);
		http("PUT", "/v1/positions/p1", bad[i].body, TOKEN, &r);
		ck_error(&r, 400, "bad_request", bad[i].field);
	}
	/* evaluate-only keys */
	http("POST", "/v1/margin/evaluate",
	     "{\"symbol\":\"BTC-USD\",\"side\":\"long\",\"size\":\"1\","
	     "\"entry_price\":\"40000\",\"collateral\":\"2000\","
	     "\"price\":\"-5\"}", NULL, &r);
	ck_error(&r, 400, "bad_request", "price");
	http("POST", "/v1/margin/evaluate",
	     "{\"symbol\":\"BTC-USD\",\"side\":\"long\",\"size\":\"1\","
	     "\"entry_price\":\"40000\",\"collateral\":\"2000\","
	     "\"targets\":{\"probability\":2}}", NULL, &r);
	ck_error(&r, 400, "bad_request", "targets.probability");
	http("POST", "/v1/margin/evaluate",
	     "{\"symbol\":\"BTC-USD\",\"side\":\"long\",\"size\":\"1\","
	     "\"entry_price\":\"40000\",\"collateral\":\"2000\","
	     "\"targets\":{\"probability\":0.01}}", NULL, &r);
	ck_error(&r, 400, "bad_request", "targets.probability");
	http("POST", "/v1/margin/evaluate",
	     "{\"symbol\":\"BTC-USD\",\"side\":\"long\",\"size\":\"1\","
	     "\"entry_price\":\"40000\",\"collateral\":\"2000\","
	     "\"conf\":\"1\"}", NULL, &r);
	ck_error(&r, 400, "bad_request", "conf");
	http("PUT", "/v1/positions/p1",
	     "{\"symbol\":\"BTC-USD\",\"side\":\"long\",\"size\":\"1\","
	     "\"entry_price\":\"40000\",\"collateral\":\"2000\","
	     "\"price\":\"1\"}", TOKEN, &r);
	ck_error(&r, 400, "bad_request", "price");
	http("PUT", "/v1/positions/p1",
	     "{\"id\":\"p2\",\"symbol\":\"BTC-USD\",\"side\":\"long\","
	     "\"size\":\"1\",\"entry_price\":\"40000\",\"collateral\":\"2\"}",
	     TOKEN, &r);
	ck_error(&r, 400, "bad_request", "id");
	http("PUT", "/v1/positions/bad%20id", T1, TOKEN, &r);
	ck_error(&r, 400, "bad_request", "id");
	http("POST", "/v1/margin/evaluate", "{\"positions\":[" T1 ",{\"symbol\""
	     ":\"BTC-USD\",\"side\":\"long\",\"size\":\"-1\",\"entry_price\":"
	     "\"1\",\"collateral\":\"1\"}]}", NULL, &r);
	ck_error(&r, 400, "bad_request", "positions[1].size");
	http("POST", "/v1/margin/evaluate", "{\"positions\":[]}", NULL, &r);
	ck_error(&r, 400, "bad_request", "positions");
	http("POST", "/v1/margin/evaluate", "{\"positions\":[" T1 "],\"x\":1}",
	     NULL, &r);
	ck_error(&r, 400, "bad_request", "x");
	http("POST", "/v1/margin/evaluate", "[1,2]", NULL, &r);
	ck_error(&r, 400, "bad_request", NULL);
	http("POST", "/v1/margin/evaluate", "{\"symbol\":", NULL, &r);
	ck_error(&r, 400, "bad_request", NULL);
	/* query parameters */
	http("GET", "/v1/positions?limit=0", NULL, NULL, &r);
	ck_error(&r, 400, "bad_request", "limit");
	http("GET", "/v1/positions?limit=1001", NULL, NULL, &r);
	ck_error(&r, 400, "bad_request", "limit");
	http("GET", "/v1/positions?state=dead", NULL, NULL, &r);
	ck_error(&r, 400, "bad_request", "state");
	http("GET", "/v1/positions?symbol=NOPE", NULL, NULL, &r);
	ck_error(&r, 400, "bad_request", "symbol");
	http("GET", "/v1/positions?cursor=x", NULL, NULL, &r);
	ck_error(&r, 400, "bad_request", "cursor");
	http("GET", "/v1/liquidations?since=-1", NULL, NULL, &r);
	ck_error(&r, 400, "bad_request", "since");
	http("GET", "/v1/liquidations?limit=abc", NULL, NULL, &r);
	ck_error(&r, 400, "bad_request", "limit");

	/* auth: 401 without a token, 403 with an unknown one */
	http("PUT", "/v1/positions/p1", T1, NULL, &r);
	ck_error(&r, 401, "unauthorized", NULL);
	http("PUT", "/v1/positions/p1", T1, OTHER_TOKEN, &r);
	ck_error(&r, 403, "forbidden", NULL);
	http("DELETE", "/v1/positions/p1", NULL, NULL, &r);
	ck_error(&r, 401, "unauthorized", NULL);
	http("POST", "/v1/positions/p1/collateral", "{\"delta\":\"1\"}",
	     OTHER_TOKEN, &r);
	ck_error(&r, 403, "forbidden", NULL);
	/* 404, 405 */
	http("GET", "/v1/positions/nope", NULL, NULL, &r);
	ck_error(&r, 404, "not_found", NULL);
	http("DELETE", "/v1/positions/nope", NULL, TOKEN, &r);
	ck_error(&r, 404, "not_found", NULL);
	http("POST", "/v1/positions/nope/collateral", "{\"delta\":\"1\"}",
	     TOKEN, &r);
	ck_error(&r, 404, "not_found", NULL);
	http("PATCH", "/v1/positions/p1", T1, TOKEN, &r);
	ck_error(&r, 405, "method_not_allowed", NULL);
	/* 413, 415 */
	big = big_body(20000);
	http("PUT", "/v1/positions/p1", big, TOKEN, &r);
	ck_error(&r, 413, "payload_too_large", NULL);
	http("POST", "/v1/margin/evaluate", big, NULL, &r);
	ck_error(&r, 413, "payload_too_large", NULL);
	free(big);
	http_ct("PUT", "/v1/positions/p1", T1, TOKEN, "text/plain", &r);
	ck_error(&r, 415, "unsupported_media_type", NULL);
	http_ct("POST", "/v1/margin/evaluate", T1, NULL,
		"application/x-www-form-urlencoded", &r);
	ck_error(&r, 415, "unsupported_media_type", NULL);
	/* collateral bodies */
	http("PUT", "/v1/positions/p1", T1, TOKEN, &r);
	ck_assert_int_eq(r.status, 201);
	http("POST", "/v1/positions/p1/collateral", "{\"delta\":\"0\"}", TOKEN,
	     &r);
	ck_error(&r, 400, "bad_request", "delta");
	http("POST", "/v1/positions/p1/collateral", "{\"amount\":\"1\"}",
	     TOKEN, &r);
	ck_error(&r, 400, "bad_request", "amount");
	http("POST", "/v1/positions/p1/collateral", "{}", TOKEN, &r);
	ck_error(&r, 400, "bad_request", "delta");
	http("POST", "/v1/positions/p1/collateral", "{\"delta\":\"x\"}", TOKEN,
	     &r);
	ck_error(&r, 400, "bad_request", "delta");
	tu_resp_free(&r);
}
END_TEST

START_TEST(test_positions)
{
	struct tu_resp r = { 0 };
	char path[160], body[256];
	const char *cursor;
	size_t seen = 0, pages = 0;

	btc_at("40000");
	http("PUT", "/v1/positions/p1", T1, TOKEN, &r);
	ck_assert_msg(r.status == 201, "%s", r.body);
	ck_jstr(&r, "id", "p1");
	ck_jstr(&r, "state", "safe");
	ck_jstr(&r, "position.collateral", "2000");
	ck_jstr(&r, "margin_ratio", "0.08000000");
	http("PUT", "/v1/positions/p1",
	     "{\"id\":\"p1\",\"symbol\":\"BTC-USD\",\"side\":\"long\","
	     "\"size\":\"1\",\"entry_price\":\"40000\",\"collateral\":\"2000\","
	     "\"leverage\":\"20\"}", TOKEN, &r);
	ck_assert_msg(r.status == 200, "%s", r.body);
	ck_jstr(&r, "position.leverage", "20");
	http("GET", "/v1/positions/p1", NULL, NULL, &r);
	ck_assert_int_eq(r.status, 200);
	ck_jstr(&r, "state", "safe");
	ck_jstr(&r, "liquidation_price", "38152.61");
	ck_jstr(&r, "mark.price", "40000.00");
	ck_assert(json_is_null(jget(r.j, "last_valid_state")) == false);

	/* five more; p4 and p5 breached at the mark (collateral 100) */
	for (int i = 2; i <= 6; i++) {
		snprintf(path, sizeof(path), "/v1/positions/p%d", i);
		snprintf(body, sizeof(body),
			 "{\"symbol\":\"BTC-USD\",\"side\":\"long\",\"size\":"
			 "\"1\",\"entry_price\":\"40000\",\"collateral\":"
			 "\"%s\"}", i >= 5 ? "100" : "2000");
		http("PUT", path, body, TOKEN, &r);
		ck_assert_msg(r.status == 201, "%s", r.body);
	}
	http("GET", "/v1/positions/p5", NULL, NULL, &r);
	ck_jstr(&r, "state", "breach_unconfirmed");
	ck_jstr(&r, "reason", "confirming");
	ck_assert_int_eq(jint(&r, "breach_marks"), 1);

	/* pages of two */
	snprintf(path, sizeof(path), "/v1/positions?limit=2");
	for (;;) {
		char next[128];

		http("GET", path, NULL, NULL, &r);
		ck_assert_msg(r.status == 200, "%s", r.body);
		pages++;
		seen += json_array_size(jget(r.j, "positions"));
		ck_assert_uint_le(json_array_size(jget(r.j, "positions")), 2);
		if (json_is_null(jget(r.j, "next_cursor")))
			break;
		cursor = jstr(&r, "next_cursor");
		snprintf(next, sizeof(next), "/v1/positions?limit=2&cursor=%s",
			 cursor);
		snprintf(path, sizeof(path), "%s", next);
		ck_assert_uint_lt(pages, 10);
	}
	ck_assert_uint_eq(seen, 6);
	http("GET", "/v1/positions?state=breach_unconfirmed&symbol=BTC-USD",
	     NULL, NULL, &r);
	ck_assert_int_eq(r.status, 200);
	ck_assert_int_eq(jint(&r, "count"), 2);
	ck_jstr(&r, "positions.0.id", "p5");
	ck_jstr(&r, "positions.1.id", "p6");
	ck_jstr(&r, "positions.0.state", "breach_unconfirmed");
	http("GET", "/v1/positions?state=liquidatable", NULL, NULL, &r);
	ck_assert_int_eq(jint(&r, "count"), 0);

	/* collateral: a deposit cures p5 */
	http("POST", "/v1/positions/p5/collateral", "{\"delta\":\"1900.5\"}",
	     TOKEN, &r);
	ck_assert_msg(r.status == 200, "%s", r.body);
	ck_jstr(&r, "position.collateral", "2000.5");
	ck_jstr(&r, "state", "safe");
	/* p1 (20x, IM 2,000 = its collateral) can give nothing back */
	http("POST", "/v1/positions/p1/collateral", "{\"delta\":\"-1\"}",
	     TOKEN, &r);
	ck_error(&r, 409, "conflict", "delta");
	http("POST", "/v1/positions/p1/collateral", "{\"delta\":\"500\"}",
	     TOKEN, &r);
	ck_assert_msg(r.status == 200, "%s", r.body);
	ck_jstr(&r, "position.collateral", "2500");
	ck_jstr(&r, "max_removable", "500.00000000");
	/* withdrawals beyond the most removable are refused with 409 */
	http("POST", "/v1/positions/p1/collateral", "{\"delta\":\"-1500\"}",
	     TOKEN, &r);
	ck_error(&r, 409, "conflict", "delta");
	ck_assert_ptr_nonnull(strstr(jstr(&r, "error.message"),
				     "most removable at the current mark,"
				     " 499.99"));
	http("GET", "/v1/positions/p1", NULL, NULL, &r);
	ck_jstr(&r, "position.collateral", "2500");
	/* within it: accepted */
	http("POST", "/v1/positions/p1/collateral", "{\"delta\":\"-499.5\"}",
	     TOKEN, &r);
	ck_assert_msg(r.status == 200, "%s", r.body);
	ck_jstr(&r, "position.collateral", "2000.5");
	ck_jstr(&r, "state", "safe");

	/* delete */
	http("DELETE", "/v1/positions/p2", NULL, TOKEN, &r);
	ck_assert_int_eq(r.status, 200);
	ck_assert(json_is_true(jget(r.j, "deleted")));
	http("GET", "/v1/positions/p2", NULL, NULL, &r);
	ck_error(&r, 404, "not_found", NULL);
	http("DELETE", "/v1/positions/p2", NULL, TOKEN, &r);
	ck_error(&r, 404, "not_found", NULL);
	http("GET", "/v1/positions", NULL, NULL, &r);
	ck_assert_int_eq(jint(&r, "count"), 5);
	tu_resp_free(&r);
}
END_TEST

START_TEST(test_liquidations_and_stream)
{
	struct tu_resp r = { 0 };
	struct tu_stream s;
	int64_t since;

	btc_at("40000");
	ck_assert(tu_stream_open(&s, E.port, "/v1/stream", NULL, 60000));
	ck_assert(tu_stream_wait(&s, "retry:", 5000));
	/* the stream registers on the server's thread */
	ck_assert(tu_wait_until(hub_has_one_stream, NULL, 5000));
	http("PUT", "/v1/positions/t1", T1, TOKEN, &r);
	ck_assert_int_eq(r.status, 201);
	/* breached at the favourable edge (LP 38,152.61), one mark a
	 * second: K = 3 marks and T = 3 s are needed */
	btc_at("38100");
	btc_at("38050");
	http("GET", "/v1/positions/t1", NULL, NULL, &r);
	ck_jstr(&r, "state", "breach_unconfirmed");
	btc_at("38040");
	http("GET", "/v1/positions/t1", NULL, NULL, &r);
	ck_jstr(&r, "state", "breach_unconfirmed");   /* 3 marks, 2 s */
	btc_at("38020");
	http("GET", "/v1/positions/t1", NULL, NULL, &r);
	ck_jstr(&r, "state", "liquidatable");
	ck_jstr(&r, "reason", "confirmed");
	ck_assert_int_eq(jint(&r, "breach_marks"), 4);
	flush();

	http("GET", "/v1/liquidations", NULL, NULL, &r);
	ck_assert_msg(r.status == 200, "%s", r.body);
	ck_assert_int_eq(json_array_size(jget(r.j, "events")), 2);
	ck_jstr(&r, "events.0.id", "t1");
	ck_jstr(&r, "events.0.from", "safe");
	ck_jstr(&r, "events.0.to", "breach_unconfirmed");
	ck_jstr(&r, "events.0.reason", "confirming");
	ck_jstr(&r, "events.1.from", "breach_unconfirmed");
	ck_jstr(&r, "events.1.to", "liquidatable");
	ck_jstr(&r, "events.1.reason", "confirmed");
	ck_jstr(&r, "events.1.symbol", "BTC-USD");
	ck_jstr(&r, "events.1.mark.price", "38020.00");
	ck_jstr(&r, "events.1.mark.conf", "0.01");
	ck_jstr(&r, "events.1.mark.status", "ok");
	ck_assert_int_eq(jint(&r, "events.1.mark.sources_used"), 4);
	ck_assert_int_eq(jint(&r, "events.1.breach_marks"), 4);
	ck_assert_int_eq(jint(&r, "events.1.breach_ms"), 3000);
	ck_assert(json_is_false(jget(r.j, "more")));
	/* paging */
	http("GET", "/v1/liquidations?limit=1", NULL, NULL, &r);
	ck_assert_int_eq(json_array_size(jget(r.j, "events")), 1);
	ck_assert(json_is_true(jget(r.j, "more")));
	since = jint(&r, "next_since");
	ck_assert_int_eq(since, jint(&r, "events.0.seq"));
	{
		char p[80];

		snprintf(p, sizeof(p), "/v1/liquidations?since=%lld&limit=1",
			 (long long)since);
		http("GET", p, NULL, NULL, &r);
	}
	ck_assert_int_eq(json_array_size(jget(r.j, "events")), 1);
	ck_jstr(&r, "events.0.to", "liquidatable");
	ck_assert(json_is_false(jget(r.j, "more")));

	/* the same transitions on the stream, with their seq */
	ck_assert(tu_stream_wait(&s, "\"to\":\"liquidatable\"", 5000));
	ck_assert_ptr_nonnull(strstr(s.r.body, "event: position\ndata: {\"seq\":"));
	ck_assert_ptr_nonnull(strstr(s.r.body, "\"to\":\"breach_unconfirmed\""));
	tu_stream_close(&s);

	/* metrics */
	http("GET", "/metrics", NULL, NULL, &r);
	ck_assert_int_eq(r.status, 200);
	ck_assert_ptr_nonnull(strstr(r.body,
				     "markd_positions{state=\"liquidatable\"} 1"));
	ck_assert_ptr_nonnull(strstr(r.body,
				     "markd_positions{state=\"safe\"} 0"));
	ck_assert_ptr_nonnull(strstr(
		r.body, "markd_liquidation_events_total{state=\"liquidatable\"} 1"));
	ck_assert_ptr_nonnull(strstr(r.body,
				     "markd_position_evaluations_total "));
	ck_assert_ptr_nonnull(strstr(r.body, "markd_margin_tick_seconds_bucket"));

	/* recovery: safe again, a third event */
	btc_at("40000");
	flush();
	http("GET", "/v1/liquidations?since=0", NULL, NULL, &r);
	ck_assert_int_eq(json_array_size(jget(r.j, "events")), 3);
	ck_jstr(&r, "events.2.to", "safe");
	tu_resp_free(&r);
}
END_TEST

START_TEST(test_held_marks)
{
	struct tu_resp r = { 0 };

	btc_at("40000");
	http("PUT", "/v1/positions/t1", T1, TOKEN, &r);
	ck_assert_int_eq(r.status, 201);
	/* one venue wicks far below, again and again: it is an outlier,
	 * the mark stays, nobody is liquidatable */
	for (int i = 0; i < 6; i++) {
		btc_wick("40000", "30000");
		http("GET", "/v1/positions/t1", NULL, NULL, &r);
		ck_jstr(&r, "state", "safe");
	}
	/* the quorum is lost while the price falls: held, never
	 * liquidatable, however long */
	for (int i = 0; i < 8; i++) {
		btc_no_quorum("37000");
		http("GET", "/v1/positions/t1", NULL, NULL, &r);
		ck_jstr(&r, "state", "held");
		ck_jstr(&r, "reason", "mark_invalid");
		ck_jstr(&r, "last_valid_state", "safe");
		ck_assert(json_is_true(jget(r.j, "held")));
		ck_jstr(&r, "mark.status", "no_quorum");
	}
	/* a stateless evaluation on the held mark says so too */
	http("POST", "/v1/margin/evaluate", T1, NULL, &r);
	ck_assert_int_eq(r.status, 200);
	ck_jstr(&r, "state", "held");
	/* withdrawals refused while held; deposits accepted */
	http("POST", "/v1/positions/t1/collateral", "{\"delta\":\"-1\"}", TOKEN,
	     &r);
	ck_error(&r, 409, "conflict", "delta");
	http("POST", "/v1/positions/t1/collateral", "{\"delta\":\"1\"}", TOKEN,
	     &r);
	ck_assert_int_eq(r.status, 200);
	http("GET", "/v1/positions?state=held", NULL, NULL, &r);
	ck_assert_int_eq(jint(&r, "count"), 1);
	flush();
	http("GET", "/v1/liquidations", NULL, NULL, &r);
	ck_assert_int_eq(json_array_size(jget(r.j, "events")), 0);
	http("GET", "/metrics", NULL, NULL, &r);
	ck_assert_ptr_nonnull(strstr(r.body, "markd_positions{state=\"held\"} 1"));
	ck_assert_ptr_nonnull(strstr(r.body,
				     "markd_positions{state=\"liquidatable\"} 0"));
	tu_resp_free(&r);
}
END_TEST

START_TEST(test_restart)
{
	struct tu_resp r = { 0 };
	struct margin_service_stats st;

	btc_at("40000");
	http("PUT", "/v1/positions/t1", T1, TOKEN, &r);
	ck_assert_int_eq(r.status, 201);
	http("PUT", "/v1/positions/keep",
	     "{\"symbol\":\"BTC-USD\",\"side\":\"short\",\"size\":\"0.5\","
	     "\"entry_price\":\"40000\",\"collateral\":\"4000\",\"brackets\":"
	     "[{\"floor\":\"0\",\"mmr\":\"0.02\"}]}", TOKEN, &r);
	ck_assert_int_eq(r.status, 201);
	for (int i = 0; i < 5; i++)
		btc_at("38000.5");
	http("GET", "/v1/positions/t1", NULL, NULL, &r);
	ck_jstr(&r, "state", "liquidatable");
	flush();

	/* close everything, reopen on the same file with a new book (mark
	 * sequence numbers start again) */
	env_stop();
	agg_book_destroy(E.book);
	book_start();
	env_start();
	margin_service_stats(E.svc, &st);
	ck_assert_uint_eq(st.positions, 2);
	ck_assert_uint_eq(st.skipped_on_load, 0);
	http("GET", "/v1/positions/keep", NULL, NULL, &r);
	ck_assert_int_eq(r.status, 200);
	ck_jstr(&r, "position.side", "short");
	ck_jstr(&r, "position.brackets.0.mmr", "0.02");
	http("GET", "/v1/positions/t1", NULL, NULL, &r);
	ck_jstr(&r, "state", "held");                 /* no mark yet */
	ck_jstr(&r, "last_valid_state", "liquidatable");
	http("GET", "/v1/liquidations", NULL, NULL, &r);
	ck_assert_int_eq(json_array_size(jget(r.j, "events")), 2);
	/* still breached after the restart: the breach is confirmed again
	 * (a new run, as after any rebuild of the aggregator) */
	btc_at("38000.5");
	http("GET", "/v1/positions/t1", NULL, NULL, &r);
	ck_jstr(&r, "state", "breach_unconfirmed");
	ck_assert_int_eq(jint(&r, "breach_marks"), 1);
	for (int i = 0; i < 3; i++)
		btc_at("38000.5");
	http("GET", "/v1/positions/t1", NULL, NULL, &r);
	ck_jstr(&r, "state", "liquidatable");
	flush();
	http("GET", "/v1/liquidations", NULL, NULL, &r);
	ck_assert_int_eq(json_array_size(jget(r.j, "events")), 4);
	ck_jstr(&r, "events.2.from", "liquidatable");
	ck_jstr(&r, "events.2.to", "breach_unconfirmed");
	ck_jstr(&r, "events.3.to", "liquidatable");
	/* recovered: one more event, after the others */
	btc_at("41000");
	flush();
	http("GET", "/v1/liquidations", NULL, NULL, &r);
	ck_assert_int_eq(json_array_size(jget(r.j, "events")), 5);
	ck_jstr(&r, "events.4.from", "liquidatable");
	ck_jstr(&r, "events.4.to", "safe");
	ck_assert_int_gt(jint(&r, "events.4.seq"), jint(&r, "events.3.seq"));
	tu_resp_free(&r);
}
END_TEST

START_TEST(test_store_full)
{
	struct tu_resp r = { 0 };
	char path[64];
	int i, code = 0;
	int64_t deadline;

	/* restart with a size cap just above what the file holds now */
	env_stop();
	E.opt.store.max_db_bytes = 96 * 1024;
	env_start();
	btc_at("40000");
	for (i = 0; i < 2000; i++) {
		snprintf(path, sizeof(path), "/v1/positions/pos-%d", i);
		http("PUT", path,
		     "{\"symbol\":\"BTC-USD\",\"side\":\"long\",\"size\":\"1\","
		     "\"entry_price\":\"40000\",\"collateral\":\"100\","
		     "\"brackets\":[{\"floor\":\"0\",\"cap\":\"1000\",\"mmr\":"
		     "\"0.001\"},{\"floor\":\"1000\",\"cap\":\"2000\",\"mmr\":"
		     "\"0.002\"},{\"floor\":\"2000\",\"cap\":\"3000\",\"mmr\":"
		     "\"0.003\"},{\"floor\":\"3000\",\"mmr\":\"0.004\"}]}",
		     TOKEN, &r);
		code = (int)r.status;
		if (code != 201)
			break;
	}
	ck_assert_msg(code == 503, "after %d positions: %d %s", i, code,
		      r.body);
	ck_error(&r, 503, "service_unavailable", NULL);
	ck_assert(logged("position store failed"));
	ck_assert(logged("op=put_position"));
	/* the refused position is not registered */
	snprintf(path, sizeof(path), "/v1/positions/pos-%d", i);
	http("GET", path, NULL, NULL, &r);
	ck_error(&r, 404, "not_found", NULL);
	/* breached positions make events that cannot be written: not ready */
	btc_at("39000");
	deadline = tu_mono_ms() + 10000;
	do {
		http("GET", "/readyz", NULL, NULL, &r);
	} while (r.status == 200 && tu_mono_ms() < deadline);
	ck_assert_int_eq(r.status, 503);
	ck_assert_ptr_nonnull(strstr(r.body, "position store refuses writes"));
	/* reads still work */
	http("GET", "/v1/positions/pos-0", NULL, NULL, &r);
	ck_assert_int_eq(r.status, 200);
	/* deleting frees room: the writer catches up, ready again */
	for (int k = 0; k < i; k++) {
		snprintf(path, sizeof(path), "/v1/positions/pos-%d", k);
		http("DELETE", path, NULL, TOKEN, &r);
	}
	ck_assert(margin_service_flush(E.svc, 20000));
	http("GET", "/readyz", NULL, NULL, &r);
	ck_assert_msg(r.status == 200, "%s", r.body);
	tu_resp_free(&r);
}
END_TEST

/* Without a token_file the daemon serves no writes: 403, and the server
 * starts without tokens. */
START_TEST(test_writes_disabled)
{
	static const char key[] = " \"token_file\":\"tokens\",";
	struct cfg_errors *errs = calloc(1, sizeof(*errs));
	struct httpd_auth *auth = E.auth;
	struct tu_resp r = { 0 };
	char *text = strdup(CONFIG), *at;

	ck_assert_ptr_nonnull(errs);
	ck_assert_ptr_nonnull(text);
	at = strstr(text, key);
	ck_assert_ptr_nonnull(at);
	memmove(at, at + strlen(key), strlen(at + strlen(key)) + 1);
	env_stop();
	cfg_free(E.cfg);
	ck_assert_int_eq(cfg_load_buffer(text, strlen(text), &E.cfg, errs),
			 MK_OK);
	ck_assert_ptr_null(E.cfg->token_file);
	E.auth = NULL;
	env_start();
	btc_at("40000");
	http("PUT", "/v1/positions/p1", T1, NULL, &r);
	ck_error(&r, 403, "forbidden", NULL);
	ck_assert_ptr_nonnull(strstr(jstr(&r, "error.message"), "disabled"));
	http("DELETE", "/v1/positions/p1", NULL, TOKEN, &r);
	ck_error(&r, 403, "forbidden", NULL);
	http("POST", "/v1/positions/p1/collateral", "{\"delta\":\"1\"}", NULL,
	     &r);
	ck_error(&r, 403, "forbidden", NULL);
	/* reads work */
	http("POST", "/v1/margin/evaluate", T1, NULL, &r);
	ck_assert_int_eq(r.status, 200);
	http("GET", "/v1/positions", NULL, NULL, &r);
	ck_assert_int_eq(r.status, 200);
	env_stop();
	E.auth = auth;
	free(text);
	free(errs);
	tu_resp_free(&r);
}
END_TEST

static Suite *
margin_api_suite(void)
{
	Suite *s = suite_create("margin_api");
	TCase *tc = tcase_create("api");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_evaluate_t1);
	tcase_add_test(tc, test_bad_requests);
	tcase_add_test(tc, test_positions);
	tcase_add_test(tc, test_liquidations_and_stream);
	tcase_add_test(tc, test_held_marks);
	tcase_add_test(tc, test_restart);
	tcase_add_test(tc, test_store_full);
	tcase_add_test(tc, test_writes_disabled);
	suite_add_tcase(s, tc);
	return s;
}

TU_MAIN(margin_api_suite)
