/*
 * check_margin_e2e.c - isolated margin end to end: markd and markd-fakex
 * as child processes on 127.0.0.1 (ephemeral ports), driven over real
 * HTTP with libcurl, positions in a real SQLite file.
 *
 *   - one venue wicks 10% below, again and again: it is an outlier, the
 *     mark stays, the position is never liquidatable and no event says
 *     otherwise;
 *   - every venue drifts through the liquidation price (not through the
 *     bankruptcy price) and stays there:
 *     the position goes breach_unconfirmed, then liquidatable once the
 *     confirmation window (3 marks, 2 s) has passed, with the events in
 *     that order;
 *   - SIGKILL and restart on the same database: positions and events are
 *     all there; the breach is confirmed again on new marks.
 *
 * This needs a markd with the margin service wired in (its routes served,
 * its snapshot and readiness hooks set). When the markd that was built
 * does not serve /v1/positions, the test fails.
 *
 * Children get PR_SET_PDEATHSIG(SIGKILL); every wait has a deadline.
 */
#include "config.h"

#include <check.h>
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "tests/http.h"
#include "tests/proc.h"
#include "tests/testutil.h"

#define TOKEN "tok-margin-e2e-0123456789abcdef"

static char dir[TU_PATH_LEN];

static void
put_file(const char *name, const char *text)
{
	if (!tu_put_file(dir, name, text)) {
		fprintf(stderr, "check_margin_e2e: %s/%s: %s\n", dir, name,
			strerror(errno));
		exit(EXIT_FAILURE);
	}
}

static struct tu_child fakex, markd;

static void
spawn(struct tu_child *c, const char *rel, const char *name,
      const char *const *args)
{
	if (!tu_spawn(c, dir, rel, name, args))
		abort();
}

static bool
listening(struct tu_child *c)
{
	return tu_wait_listening(c, 10000);
}

static void
stop(struct tu_child *c, int sig)
{
	tu_stop(c, sig, 10000);
}

/* ---- HTTP ---- */

/* One request with the given Authorization header (NULL: none) and
 * Content-Type for the body; false when the transfer itself failed. */
static bool
http_raw(int port, const char *method, const char *path, const char *body,
	 const char *auth, const char *ctype, struct tu_resp *r)
{
	const char *hdr[3] = { NULL, NULL, NULL };
	size_t n = 0;

	if (auth != NULL)
		hdr[n++] = auth;
	if (body != NULL)
		hdr[n++] = ctype;
	return tu_http(port, method, path, body, hdr, 10000, r);
}

/* One request; false when the transfer itself failed. */
static bool
http(int port, const char *method, const char *path, const char *body,
     bool token, struct tu_resp *r)
{
	return http_raw(port, method, path, body,
			token ? "Authorization: Bearer " TOKEN : NULL,
			"Content-Type: application/json", r);
}

/* ---- the setup ---- */

static const char SCENARIO[] =
	"{\"listen\":\"127.0.0.1:0\",\"speed\":1,\"loop\":true,\"venues\":{"
	" \"coinbase\":{\"markets\":{\"BTC-USD\":{\"walk\":{\"seed\":7,"
	"  \"start\":\"30000\",\"sigma_bps\":1}}}},"
	" \"kraken\":{\"markets\":{\"XBTUSD\":{\"walk\":{\"seed\":7,"
	"  \"start\":\"30000\",\"sigma_bps\":1}}}},"
	" \"bitstamp\":{\"markets\":{\"btcusd\":{\"walk\":{\"seed\":7,"
	"  \"start\":\"30000\",\"sigma_bps\":1}}}}}}\n";

/* Long, 1 BTC at 30,000 with 717.6 of collateral: liquidation price
 * (717.6 - 30000) / (1 x (0.004 - 1)) = 29,400, 2% below. */
static const char POSITION[] =
	"{\"symbol\":\"BTC-USD\",\"side\":\"long\",\"size\":\"1\","
	"\"entry_price\":\"30000\",\"collateral\":\"717.6\"}";

static void
write_config(void)
{
	char text[4096];

	snprintf(text, sizeof(text),
		 "{\"listen\":\"127.0.0.1:0\",\"database\":\"%s/markd.db\","
		 " \"token_file\":\"%s/tokens\","
		 " \"defaults\":{\"min_sources\":2,\"max_age_ms\":5000},"
		 " \"sources\":["
		 "  {\"name\":\"coinbase\",\"adapter\":\"coinbase\","
		 "   \"base_url\":\"http://127.0.0.1:%d/coinbase\","
		 "   \"interval_ms\":100,\"timeout_ms\":1000},"
		 "  {\"name\":\"kraken\",\"adapter\":\"kraken\","
		 "   \"base_url\":\"http://127.0.0.1:%d/kraken\","
		 "   \"interval_ms\":100,\"timeout_ms\":1000},"
		 "  {\"name\":\"bitstamp\",\"adapter\":\"bitstamp\","
		 "   \"base_url\":\"http://127.0.0.1:%d/bitstamp\","
		 "   \"interval_ms\":100,\"timeout_ms\":1000}],"
		 " \"instruments\":[{\"symbol\":\"BTC-USD\",\"scale\":2,"
		 "  \"legs\":[{\"source\":\"coinbase\",\"market\":\"BTC-USD\"},"
		 "   {\"source\":\"kraken\",\"market\":\"XBTUSD\"},"
		 "   {\"source\":\"bitstamp\",\"market\":\"btcusd\"}],"
		 "  \"margin\":{\"contract\":\"linear\",\"confirm_count\":3,"
		 "   \"confirm_ms\":2000,\"safe_buffer_bps\":200,\"brackets\":["
		 "    {\"floor\":\"0\",\"cap\":\"50000\",\"mmr\":\"0.004\"},"
		 "    {\"floor\":\"50000\",\"cap\":\"250000\",\"mmr\":\"0.005\"}]}}]}\n",
		 dir, dir, fakex.port, fakex.port, fakex.port);
	put_file("markd.json", text);
}

static bool
markd_start(void)
{
	char conf[700];
	const char *args[] = { "-c", conf, NULL };

	if (snprintf(conf, sizeof(conf), "%s/markd.json", dir) >=
	    (int)sizeof(conf))
		return false;
	spawn(&markd, "markd", "markd", args);
	return listening(&markd);
}

/* GET /readyz until 200 (20 s). */
static bool
ready(void)
{
	int64_t deadline = tu_mono_ms() + 20000;
	struct tu_resp r = { 0 };
	bool ok = false;

	while (!ok && tu_mono_ms() < deadline) {
		ok = http(markd.port, "GET", "/readyz", NULL, false, &r) &&
		     r.status == 200;
		if (!ok)
			tu_pause_ms(50);
	}
	tu_resp_free(&r);
	return ok;
}

static void
fault(const char *json)
{
	struct tu_resp r = { 0 };

	ck_assert(http(fakex.port, "POST", "/admin/fault", json, false, &r));
	ck_assert_msg(r.status == 200, "fault %s: %ld %s", json, r.status, r.body);
	tu_resp_free(&r);
}

static void
clear_faults(void)
{
	struct tu_resp r = { 0 };

	ck_assert(http(fakex.port, "DELETE", "/admin/fault?venue=all", NULL,
		       false, &r));
	tu_resp_free(&r);
}

/*
 * Starts fakex and markd in a new directory. Returns 0, or EXIT_FAILURE
 * (also when the markd built has no margin routes).
 */
static int
start_all(bool probe)
{
	char scen[TU_PATH_LEN];
	const char *fargs[] = { "-s", scen, "-p", "0", NULL };
	struct tu_resp r = { 0 };
	int rc = 0;

	if (!tu_make_dir(dir, sizeof(dir), "check_margin_e2e"))
		return EXIT_FAILURE;
	put_file("tokens", TOKEN "\n");
	put_file("fakex.json", SCENARIO);
	if (snprintf(scen, sizeof(scen), "%s/fakex.json", dir) >=
	    (int)sizeof(scen))
		return EXIT_FAILURE;
	spawn(&fakex, "tools/markd-fakex", "fakex", fargs);
	if (!listening(&fakex)) {
		fprintf(stderr, "check_margin_e2e: markd-fakex did not start\n");
		return EXIT_FAILURE;
	}
	write_config();
	if (!markd_start()) {
		char *e = tu_read_file(markd.err);

		fprintf(stderr, "check_margin_e2e: markd did not start%s: %s\n",
			"", e);
		free(e);
		return EXIT_FAILURE;
	}
	/* The margin service is wired into markd: its absence is a failure,
	 * never a skip. */
	if (probe &&
	    (!http(markd.port, "GET", "/v1/positions", NULL, false, &r) ||
	     r.status == 404)) {
		fprintf(stderr, "check_margin_e2e: markd does not serve"
			" /v1/positions\n");
		rc = EXIT_FAILURE;
	}
	tu_resp_free(&r);
	return rc;
}

static void
stop_all(void)
{
	stop(&markd, SIGTERM);
	stop(&fakex, SIGTERM);
	tu_remove_dir(dir);
}

static void
setup(void)
{
	ck_assert_int_eq(start_all(false), 0);
	ck_assert_msg(ready(), "markd not ready: %s", tu_read_file(markd.err));
}

/* Polls GET path until the JSON string at key equals want (timeout_ms);
 * returns whether it did. */
static bool
poll_state(const char *path, const char *want, int timeout_ms)
{
	int64_t deadline = tu_mono_ms() + timeout_ms;
	struct tu_resp r = { 0 };
	bool ok = false;

	while (!ok && tu_mono_ms() < deadline) {
		ok = http(markd.port, "GET", path, NULL, false, &r) &&
		     r.status == 200 && strcmp(tu_resp_str(&r, "state"), want) == 0;
		if (!ok)
			tu_pause_ms(50);
	}
	tu_resp_free(&r);
	return ok;
}

/* The "to" states of every logged event of position id, in order. */
static void
event_path(char *out, size_t cap, const char *id)
{
	struct tu_resp r = { 0 };
	size_t n = 0;

	out[0] = '\0';
	ck_assert(http(markd.port, "GET", "/v1/liquidations?limit=1000", NULL,
		       false, &r));
	ck_assert_int_eq(r.status, 200);
	for (size_t i = 0; i < json_array_size(json_object_get(r.j, "events"));
	     i++) {
		json_t *e = json_array_get(json_object_get(r.j, "events"), i);

		if (strcmp(json_string_value(json_object_get(e, "id")), id) != 0)
			continue;
		n += (size_t)snprintf(out + n, cap - n, "%s%s", n ? "," : "",
				      json_string_value(json_object_get(e, "to")));
		if (n >= cap)
			break;
	}
	tu_resp_free(&r);
}

/* ================= tests ================= */

START_TEST(test_wick_never_liquidates)
{
	struct tu_resp r = { 0 };
	char path[4096];
	int64_t until;

	ck_assert(http(markd.port, "PUT", "/v1/positions/w1", POSITION, true,
		       &r));
	ck_assert_msg(r.status == 201, "%ld %s", r.status, r.body);
	ck_assert(poll_state("/v1/positions/w1", "safe", 10000));
	/* kraken answers 10% low, 40 answers in a row (about 4 s) */
	fault("{\"venue\":\"kraken\",\"kind\":\"wick\",\"bps\":-1000,"
	      "\"count\":40}");
	until = tu_mono_ms() + 5000;
	while (tu_mono_ms() < until) {
		ck_assert(http(markd.port, "GET", "/v1/positions/w1", NULL,
			       false, &r));
		ck_assert_int_eq(r.status, 200);
		ck_assert_msg(strcmp(tu_resp_str(&r, "state"), "liquidatable") != 0 &&
				      strcmp(tu_resp_str(&r, "state"), "bankrupt") !=
					      0 &&
				      strcmp(tu_resp_str(&r, "state"),
					     "breach_unconfirmed") != 0,
			      "a wick moved the position: %s", r.body);
		tu_pause_ms(100);
	}
	clear_faults();
	event_path(path, sizeof(path), "w1");
	ck_assert_msg(strstr(path, "liquidatable") == NULL, "events: %s", path);
	tu_resp_free(&r);
}
END_TEST

/* The write endpoints' error statuses, from real requests to markd. */
START_TEST(test_write_errors)
{
	struct tu_resp r = { 0 };
	const char *field;

	ck_assert(http_raw(markd.port, "PUT", "/v1/positions/e1", POSITION,
			   NULL, "Content-Type: application/json", &r));
	ck_assert_msg(r.status == 401, "%ld %s", r.status, r.body);
	ck_assert(http_raw(markd.port, "PUT", "/v1/positions/e1", POSITION,
			   "Authorization: Bearer not-the-token-0123456789",
			   "Content-Type: application/json", &r));
	ck_assert_msg(r.status == 403, "%ld %s", r.status, r.body);
	ck_assert(http_raw(markd.port, "PUT", "/v1/positions/e1", POSITION,
			   "Authorization: Bearer " TOKEN,
			   "Content-Type: text/plain", &r));
	ck_assert_msg(r.status == 415, "%ld %s", r.status, r.body);
	ck_assert(http(markd.port, "PUT", "/v1/positions/e1",
		       "{\"symbol\":\"BTC-USD\",\"side\":\"long\","
		       "\"size\":\"0\",\"entry_price\":\"30000\","
		       "\"collateral\":\"717.6\"}", true, &r));
	ck_assert_msg(r.status == 400, "%ld %s", r.status, r.body);
	field = json_string_value(json_object_get(
		json_object_get(r.j, "error"), "field"));
	ck_assert_msg(field != NULL && strcmp(field, "size") == 0, "%s",
		      r.body);
	ck_assert(http(markd.port, "GET", "/v1/positions/e1", NULL, false,
		       &r));
	ck_assert_msg(r.status == 404, "%ld %s", r.status, r.body);
	tu_resp_free(&r);
}
END_TEST

/* ---- the SSE stream, watched from a thread ---- */

/* Reads GET /v1/stream until a "position" event taking position `id` to
 * `to` arrives, or for at most 30 s (curl's own timeout bounds it). */
struct watch {
	int port;
	const char *id, *to;
	char buf[1 << 16];
	size_t len;
	bool found;
	pthread_t thread;
};

static size_t
on_stream(char *p, size_t sz, size_t n, void *arg)
{
	struct watch *w = arg;
	size_t take = sz * n;
	char want_id[160], want_to[64];
	const char *ev;

	if (take > sizeof(w->buf) - 1 - w->len) {
		/* keep the tail: events of interest are the latest */
		size_t keep = sizeof(w->buf) / 2;

		memmove(w->buf, w->buf + w->len - keep, keep);
		w->len = keep;
		if (take > sizeof(w->buf) - 1 - w->len)
			take = sizeof(w->buf) - 1 - w->len;
	}
	memcpy(w->buf + w->len, p, take);
	w->len += take;
	w->buf[w->len] = '\0';
	snprintf(want_id, sizeof(want_id), "\"id\":\"%s\"", w->id);
	snprintf(want_to, sizeof(want_to), "\"to\":\"%s\"", w->to);
	for (ev = strstr(w->buf, "event: position\n"); ev != NULL;
	     ev = strstr(ev + 1, "event: position\n")) {
		const char *end = strstr(ev, "\n\n");

		if (end == NULL)
			break;
		if (memmem(ev, (size_t)(end - ev), want_id, strlen(want_id)) &&
		    memmem(ev, (size_t)(end - ev), want_to, strlen(want_to))) {
			w->found = true;
			return 0; /* stop the transfer */
		}
	}
	return sz * n;
}

static void *
watch_run(void *arg)
{
	struct watch *w = arg;
	CURL *h = curl_easy_init();
	char url[128];

	if (h == NULL)
		return NULL;
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/v1/stream", w->port);
	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_stream);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, w);
	curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, 30000L);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_perform(h);
	curl_easy_cleanup(h);
	return NULL;
}

START_TEST(test_move_through_and_kill)
{
	struct tu_resp r = { 0 };
	char path[4096], before[4096];
	int64_t t0;

	ck_assert(http(markd.port, "PUT", "/v1/positions/d1", POSITION, true,
		       &r));
	ck_assert_int_eq(r.status, 201);
	ck_assert(poll_state("/v1/positions/d1", "safe", 10000));
	/* a dashboard watches the stream from here on */
	static struct watch w;
	memset(&w, 0, sizeof(w));
	w.port = markd.port;
	w.id = "d1";
	w.to = "liquidatable";
	ck_assert_int_eq(pthread_create(&w.thread, NULL, watch_run, &w), 0);
	/* every venue drifts down 2.2% (to about 29,340: through the
	 * liquidation price 29,400, above the bankruptcy price 29,282.4)
	 * and stays there */
	t0 = tu_mono_ms();
	fault("{\"venue\":\"coinbase\",\"kind\":\"drift\",\"bps_per_min\":-6000,"
	      "\"max_bps\":220}");
	fault("{\"venue\":\"kraken\",\"kind\":\"drift\",\"bps_per_min\":-6000,"
	      "\"max_bps\":220}");
	fault("{\"venue\":\"bitstamp\",\"kind\":\"drift\",\"bps_per_min\":-6000,"
	      "\"max_bps\":220}");
	ck_assert(poll_state("/v1/positions/d1", "breach_unconfirmed", 15000));
	ck_assert(poll_state("/v1/positions/d1", "liquidatable", 15000));
	/* at least the window after the first breach */
	ck_assert_int_ge(tu_mono_ms() - t0, 2000);
	ck_assert(http(markd.port, "GET", "/v1/positions/d1", NULL, false,
		       &r));
	ck_assert_int_ge(json_integer_value(json_object_get(r.j,
							    "breach_marks")),
			 3);
	/* the events are written by a writer thread: poll */
	t0 = tu_mono_ms() + 5000;
	do {
		event_path(path, sizeof(path), "d1");
		if (strstr(path, "liquidatable") != NULL)
			break;
		tu_pause_ms(50);
	} while (tu_mono_ms() < t0);
	ck_assert_msg(strstr(path, "breach_unconfirmed,liquidatable") != NULL,
		      "events: %s", path);
	/* the same transition reached the stream (bounded: curl gives up
	 * after 30 s) */
	ck_assert_int_eq(pthread_join(w.thread, NULL), 0);
	ck_assert_msg(w.found, "no position event to liquidatable on the "
		      "stream; last bytes: %.300s",
		      w.len > 300 ? w.buf + w.len - 300 : w.buf);
	snprintf(before, sizeof(before), "%s", path);

	/* SIGKILL, restart on the same file: everything is still there */
	stop(&markd, SIGKILL);
	ck_assert(markd_start());
	ck_assert(ready());
	ck_assert(http(markd.port, "GET", "/v1/positions/d1", NULL, false,
		       &r));
	ck_assert_int_eq(r.status, 200);
	ck_assert_str_eq(json_string_value(json_object_get(
				 json_object_get(r.j, "position"), "collateral")),
			 "717.6");
	event_path(path, sizeof(path), "d1");
	ck_assert_msg(strncmp(path, before, strlen(before)) == 0,
		      "events before %s, after %s", before, path);
	/* the prices are still low: confirmed again on new marks */
	ck_assert(poll_state("/v1/positions/d1", "liquidatable", 15000));
	clear_faults();
	tu_resp_free(&r);
}
END_TEST

static Suite *
e2e_suite(void)
{
	Suite *s = suite_create("margin_e2e");
	TCase *tc = tcase_create("e2e");

	tcase_add_checked_fixture(tc, setup, stop_all);
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_write_errors);
	tcase_add_test(tc, test_wick_never_liquidates);
	tcase_add_test(tc, test_move_through_and_kill);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr;
	int failed, probe;

	curl_global_init(CURL_GLOBAL_ALL);
	probe = start_all(true);
	stop_all();
	if (probe != 0) {
		curl_global_cleanup();
		return probe;
	}
	sr = srunner_create(e2e_suite());
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	curl_global_cleanup();
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
