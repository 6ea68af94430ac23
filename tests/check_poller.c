/*
 * check_poller.c - the feeds polling engine, feed health and backoff.
 *
 * The poller is driven against a real libmicrohttpd server inside the test
 * on 127.0.0.1 (ephemeral port) serving real venue payloads from
 * tests/data/poller/. Each route of the server is one behaviour (good
 * answer, 429, 500, oversized, slow, garbage, a gate that holds every
 * request until N are in flight). Every wait is bounded; nothing sleeps to
 * synchronise.
 */
#include "config.h"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>

#include "feeds/adapter.h"
#include "feeds/backoff.h"
#include "feeds/health.h"
#include "feeds/poller.h"
#include "tests/testutil.h"

#define SEED 20261125u
#define MAX_REQS 512
#define MAX_RECS 128
#define BIG_TOTAL ((uint64_t)64 << 20)   /* the oversized body: 64 MiB */
#define GATE_N 50

/* ---------------------------------------------------------------- */
/* The test server                                                   */
/* ---------------------------------------------------------------- */

struct payload {
	char *data;
	size_t len;
};

struct req_rec {
	char path[64];
	int64_t mono_ms;
	unsigned client_port;
};

struct srv {
	struct MHD_Daemon *d;
	unsigned port;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct req_rec reqs[MAX_REQS];
	size_t nreq;
	unsigned r429_hits;
	bool release_slow;
	struct MHD_Connection *gated[GATE_N];
	size_t ngated;
	size_t gate_arrived;
	atomic_uint_fast64_t big_produced;
	bool big_done;
	struct payload book, e429, e418, ebadsym;
};

static struct srv S;

/* Per-request markers kept in *req_cls. */
static int MARK_SEEN, MARK_GATED, MARK_BIG;

static void
load_payload(struct payload *p, const char *name)
{
	char rel[256], path[1024];
	FILE *f;
	long n;

	snprintf(rel, sizeof(rel), "tests/data/poller/%s", name);
	tu_srcpath(path, sizeof(path), rel);
	f = fopen(path, "rb");
	ck_assert_msg(f != NULL, "cannot open %s", path);
	ck_assert_int_eq(fseek(f, 0, SEEK_END), 0);
	n = ftell(f);
	ck_assert_int_gt(n, 0);
	rewind(f);
	p->data = malloc((size_t)n);
	ck_assert_ptr_nonnull(p->data);
	ck_assert_uint_eq(fread(p->data, 1, (size_t)n, f), (size_t)n);
	p->len = (size_t)n;
	fclose(f);
}

static enum MHD_Result
reply(struct MHD_Connection *c, unsigned code, const void *body, size_t len,
      const char *hname, const char *hval)
{
	struct MHD_Response *r;
	enum MHD_Result ret;

	r = MHD_create_response_from_buffer(len, (void *)body,
					    MHD_RESPMEM_MUST_COPY);
	if (r == NULL)
		return MHD_NO;
	MHD_add_response_header(r, "Content-Type", "application/json");
	if (hname != NULL)
		MHD_add_response_header(r, hname, hval);
	ret = MHD_queue_response(c, code, r);
	MHD_destroy_response(r);
	return ret;
}

static ssize_t
big_reader(void *cls, uint64_t pos, char *buf, size_t max)
{
	size_t n;

	(void)cls;
	if (pos >= BIG_TOTAL)
		return MHD_CONTENT_READER_END_OF_STREAM;
	n = max;
	if ((uint64_t)n > BIG_TOTAL - pos)
		n = (size_t)(BIG_TOTAL - pos);
	memset(buf, ' ', n);
	atomic_fetch_add(&S.big_produced, n);
	return (ssize_t)n;
}

static enum MHD_Result
reply_big(struct MHD_Connection *c, uint64_t size, void **req_cls)
{
	struct MHD_Response *r;
	enum MHD_Result ret;

	r = MHD_create_response_from_callback(size, 16384, big_reader, NULL,
					      NULL);
	if (r == NULL)
		return MHD_NO;
	*req_cls = &MARK_BIG;
	ret = MHD_queue_response(c, MHD_HTTP_OK, r);
	MHD_destroy_response(r);
	return ret;
}

static void
record_request(struct MHD_Connection *c, const char *url)
{
	const union MHD_ConnectionInfo *ci;
	unsigned port = 0;

	ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
	if (ci != NULL && ci->client_addr->sa_family == AF_INET)
		port = ntohs(((const struct sockaddr_in *)(const void *)
				      ci->client_addr)->sin_port);
	pthread_mutex_lock(&S.mu);
	if (S.nreq < MAX_REQS) {
		snprintf(S.reqs[S.nreq].path, sizeof(S.reqs[0].path), "%s",
			 url);
		S.reqs[S.nreq].mono_ms = feed_now_mono_ms();
		S.reqs[S.nreq].client_port = port;
		S.nreq++;
	}
	pthread_cond_broadcast(&S.cv);
	pthread_mutex_unlock(&S.mu);
}

static bool
route(const char *url, const char *prefix)
{
	size_t n = strlen(prefix);

	return strncmp(url, prefix, n) == 0 && url[n] == '/';
}

static enum MHD_Result
handler(void *cls, struct MHD_Connection *c, const char *url,
	const char *method, const char *version, const char *upload,
	size_t *upload_size, void **req_cls)
{
	struct timespec until;
	char date[64];
	time_t t;
	struct tm tm;
	size_t i;
	int rc = 0;

	(void)cls;
	(void)method;
	(void)version;
	(void)upload;
	(void)upload_size;
	if (*req_cls == NULL) {
		/* First call: answer on the second one (keep-alive). */
		*req_cls = &MARK_SEEN;
		record_request(c, url);
		return MHD_YES;
	}
	if (route(url, "/ok") || route(url, "/reuse"))
		return reply(c, MHD_HTTP_OK, S.book.data, S.book.len, NULL,
			     NULL);
	if (route(url, "/r429")) {
		pthread_mutex_lock(&S.mu);
		i = S.r429_hits++;
		pthread_mutex_unlock(&S.mu);
		if (i == 0)
			return reply(c, MHD_HTTP_OK, S.book.data, S.book.len,
				     NULL, NULL);
		return reply(c, 429, S.e429.data, S.e429.len, "Retry-After",
			     "2");
	}
	if (route(url, "/r418")) {
		t = time(NULL) + 3;
		gmtime_r(&t, &tm);
		strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S GMT", &tm);
		return reply(c, 418, S.e418.data, S.e418.len, "Retry-After",
			     date);
	}
	if (route(url, "/r500"))
		return reply(c, 500, "oops", 4, NULL, NULL);
	if (route(url, "/r404"))
		return reply(c, 404, "<html>no</html>", 15, NULL, NULL);
	if (route(url, "/badsym"))
		return reply(c, 400, S.ebadsym.data, S.ebadsym.len, NULL,
			     NULL);
	if (route(url, "/garbage"))
		return reply(c, MHD_HTTP_OK, "<html>not json</html>", 21, NULL,
			     NULL);
	if (route(url, "/bigchunked"))
		return reply_big(c, MHD_SIZE_UNKNOWN, req_cls);
	if (route(url, "/biglength"))
		return reply_big(c, BIG_TOTAL, req_cls);
	if (route(url, "/slow")) {
		/* Blocks this server's only thread until the test lets go
		 * (teardown) or 10 s pass. */
		clock_gettime(CLOCK_REALTIME, &until);
		until.tv_sec += 10;
		pthread_mutex_lock(&S.mu);
		while (!S.release_slow && rc == 0)
			rc = pthread_cond_timedwait(&S.cv, &S.mu, &until);
		pthread_mutex_unlock(&S.mu);
		return reply(c, MHD_HTTP_OK, S.book.data, S.book.len, NULL,
			     NULL);
	}
	if (route(url, "/gate")) {
		/* Holds every request until GATE_N are open at once. */
		if (*req_cls == &MARK_GATED)
			return reply(c, MHD_HTTP_OK, S.book.data, S.book.len,
				     NULL, NULL);
		pthread_mutex_lock(&S.mu);
		S.gate_arrived++;
		if (S.gate_arrived < GATE_N) {
			S.gated[S.ngated++] = c;
			*req_cls = &MARK_GATED;
			MHD_suspend_connection(c);
			pthread_mutex_unlock(&S.mu);
			return MHD_YES;
		}
		for (i = 0; i < S.ngated; i++)
			MHD_resume_connection(S.gated[i]);
		S.ngated = 0;
		pthread_mutex_unlock(&S.mu);
		return reply(c, MHD_HTTP_OK, S.book.data, S.book.len, NULL,
			     NULL);
	}
	return reply(c, MHD_HTTP_NOT_FOUND, "{}", 2, NULL, NULL);
}

static void
completed(void *cls, struct MHD_Connection *c, void **req_cls,
	  enum MHD_RequestTerminationCode toe)
{
	(void)cls;
	(void)c;
	(void)toe;
	if (*req_cls == &MARK_BIG) {
		pthread_mutex_lock(&S.mu);
		S.big_done = true;
		pthread_cond_broadcast(&S.cv);
		pthread_mutex_unlock(&S.mu);
	}
}

static void
srv_start(void)
{
	struct sockaddr_in sa;
	const union MHD_DaemonInfo *info;

	memset(&S, 0, sizeof(S));
	pthread_mutex_init(&S.mu, NULL);
	pthread_cond_init(&S.cv, NULL);
	load_payload(&S.book, "binance_bookTicker_BTCUSDT.json");
	load_payload(&S.e429, "binance_error_429.json");
	load_payload(&S.e418, "binance_error_418.json");
	load_payload(&S.ebadsym, "binance_error_invalid_symbol.json");
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	sa.sin_port = 0;
	S.d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_POLL |
				       MHD_USE_ERROR_LOG |
				       MHD_ALLOW_SUSPEND_RESUME,
			       0, NULL, NULL, handler, NULL,
			       MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa,
			       MHD_OPTION_NOTIFY_COMPLETED, completed, NULL,
			       MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)10,
			       MHD_OPTION_END);
	ck_assert_ptr_nonnull(S.d);
	info = MHD_get_daemon_info(S.d, MHD_DAEMON_INFO_BIND_PORT);
	ck_assert_ptr_nonnull(info);
	S.port = info->port;
	ck_assert_uint_gt(S.port, 0);
}

static void
srv_stop(void)
{
	size_t i;

	pthread_mutex_lock(&S.mu);
	S.release_slow = true;
	pthread_cond_broadcast(&S.cv);
	for (i = 0; i < S.ngated; i++)
		MHD_resume_connection(S.gated[i]);
	S.ngated = 0;
	pthread_mutex_unlock(&S.mu);
	if (S.d != NULL)
		MHD_stop_daemon(S.d);
	S.d = NULL;
	free(S.book.data);
	free(S.e429.data);
	free(S.e418.data);
	free(S.ebadsym.data);
}

/* Requests the server saw under the route prefix, in order. */
static size_t
srv_requests(const char *prefix, struct req_rec *out, size_t cap)
{
	size_t i, n = 0;

	pthread_mutex_lock(&S.mu);
	for (i = 0; i < S.nreq; i++)
		if (route(S.reqs[i].path, prefix) && n < cap)
			out[n++] = S.reqs[i];
	pthread_mutex_unlock(&S.mu);
	return n;
}

/* Waits (bounded) until the server has seen n requests under prefix. */
static size_t
srv_wait_requests(const char *prefix, size_t n, int64_t within_ms)
{
	struct req_rec reqs[8];
	struct timespec until;
	size_t got;
	int rc = 0;

	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += within_ms / 1000 + 1;
	while ((got = srv_requests(prefix, reqs, 8)) < n && rc == 0) {
		pthread_mutex_lock(&S.mu);
		rc = pthread_cond_timedwait(&S.cv, &S.mu, &until);
		pthread_mutex_unlock(&S.mu);
	}
	return got;
}

/* ---------------------------------------------------------------- */
/* The poller side                                                   */
/* ---------------------------------------------------------------- */

struct rec {
	enum feed_outcome outcome;
	enum feed_fail_class cls;
	int http_status;
	char text[FEED_HEALTH_TEXT_MAX];
	bool has_text;
	uint32_t consecutive;
	int64_t retry_after_ms, delay_ms, latency_us, recv_ms;
	int64_t mono_ms;            /* when the callback ran */
	uint64_t seq;
	const void *transfer;
	size_t nquotes;
	struct feed_quote quote;
	void *user;
};

struct collector {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct rec recs[MAX_RECS];
	size_t n;
};

static struct collector C;
static struct feed_poller *P;
static const struct feed_adapter *BINANCE;

static void
on_result(void *arg, const struct feed_result *r)
{
	struct collector *c = arg;
	struct rec *x;

	pthread_mutex_lock(&c->mu);
	if (c->n < MAX_RECS) {
		x = &c->recs[c->n++];
		memset(x, 0, sizeof(*x));
		x->outcome = r->outcome;
		x->cls = r->fail_class;
		x->http_status = r->http_status;
		x->has_text = r->text != NULL;
		if (r->text != NULL)
			snprintf(x->text, sizeof(x->text), "%s", r->text);
		x->consecutive = r->consecutive_failures;
		x->retry_after_ms = r->retry_after_ms;
		x->delay_ms = r->delay_ms;
		x->latency_us = r->latency_us;
		x->recv_ms = r->recv_ms;
		x->mono_ms = feed_now_mono_ms();
		x->seq = r->poll_seq;
		x->transfer = r->transfer;
		x->nquotes = r->nquotes;
		if (r->nquotes > 0)
			x->quote = r->quotes[0];
		x->user = r->user;
	}
	pthread_cond_broadcast(&c->cv);
	pthread_mutex_unlock(&c->mu);
}

static size_t
collected(void)
{
	size_t n;

	pthread_mutex_lock(&C.mu);
	n = C.n;
	pthread_mutex_unlock(&C.mu);
	return n;
}

/* Drives the loop until n results arrived or within_ms passed; returns
 * the number of results. */
static size_t
run_until(size_t n, int64_t within_ms)
{
	int64_t end = feed_now_mono_ms() + within_ms;
	struct mk_err err;

	while (collected() < n && feed_now_mono_ms() < end)
		ck_assert_msg(feed_poller_step(P, 50, &err) == MK_OK, "%s",
			      err.msg);
	return collected();
}

static void
setup(void)
{
	struct feed_poller_config pc;
	struct mk_err err;

	ck_assert_int_eq(curl_global_init(CURL_GLOBAL_ALL), CURLE_OK);
	memset(&C, 0, sizeof(C));
	pthread_mutex_init(&C.mu, NULL);
	pthread_cond_init(&C.cv, NULL);
	srv_start();
	BINANCE = feed_adapter_find("binance");
	ck_assert_ptr_nonnull(BINANCE);
	feed_poller_config_default(&pc);
	pc.on_result = on_result;
	pc.arg = &C;
	pc.seed = SEED;
	ck_assert_msg(feed_poller_create(&pc, &P, &err) == MK_OK, "%s",
		      err.msg);
}

static void
teardown(void)
{
	feed_poller_destroy(P);
	P = NULL;
	srv_stop();
	curl_global_cleanup();
}

/* A binance job on the test server under route `path`. */
static void
job_cfg(struct feed_job_config *jc, char *base, size_t cap, const char *path)
{
	feed_job_config_default(jc);
	snprintf(base, cap, "http://127.0.0.1:%u%s", S.port, path);
	jc->source = "binance";
	jc->adapter = BINANCE;
	jc->base_url = base;
	jc->market = "BTCUSDT";
}

static struct feed_job *
add_job(const struct feed_job_config *jc)
{
	struct feed_job *job = NULL;
	struct mk_err err;

	ck_assert_msg(feed_poller_add_job(P, jc, &job, &err) == MK_OK, "%s",
		      err.msg);
	return job;
}

static void
health_of(const char *source, int64_t now_mono, struct feed_health *h)
{
	ck_assert_int_eq(feed_health_get(feed_poller_health(P), source,
					 now_mono, h),
			 MK_OK);
}

static void
assert_dec(struct mk_dec d, const char *want)
{
	char buf[MK_DEC_STRLEN];

	ck_assert_uint_gt(mk_dec_format(d, buf, sizeof(buf)), 0);
	ck_assert_str_eq(buf, want);
}

/* ---- poller tests ---- */

START_TEST(test_good_quote)
{
	struct feed_job_config jc;
	struct feed_health h;
	char base[128];
	int64_t before = feed_now_wall_ms(), now;
	struct rec *r;
	int dummy;

	job_cfg(&jc, base, sizeof(base), "/ok");
	jc.user = &dummy;
	add_job(&jc);
	ck_assert_uint_eq(run_until(1, 5000), 1);
	r = &C.recs[0];
	ck_assert_int_eq(r->outcome, FEED_OK);
	ck_assert_int_eq(r->cls, FEED_FAIL_NONE);
	ck_assert(!r->has_text);
	ck_assert_int_eq(r->http_status, 200);
	ck_assert_ptr_eq(r->user, &dummy);
	ck_assert_uint_eq(r->nquotes, 1);
	ck_assert_str_eq(r->quote.market, "BTCUSDT");
	ck_assert(r->quote.q.has_bid && r->quote.q.has_ask);
	assert_dec(r->quote.q.bid, "60741.67000000");
	assert_dec(r->quote.q.ask, "60741.68000000");
	ck_assert_int_ge(r->recv_ms, before);
	ck_assert_int_le(r->recv_ms, feed_now_wall_ms());
	ck_assert_int_ge(r->latency_us, 0);
	ck_assert_int_eq(r->consecutive, 0);
	ck_assert_int_eq(r->retry_after_ms, -1);
	/* On success the next poll keeps the interval's phase. */
	ck_assert_int_gt(r->delay_ms, 0);
	ck_assert_int_le(r->delay_ms, jc.interval_ms);

	now = r->mono_ms;
	health_of("binance", now, &h);
	ck_assert_str_eq(feed_state_name(h.state), "up");
	ck_assert_uint_eq(h.jobs, 1);
	ck_assert_uint_eq(h.jobs_up, 1);
	ck_assert_int_eq(h.last_success_ms, r->recv_ms);
	ck_assert_int_eq(h.last_error_ms, 0);
	ck_assert_uint_eq(h.polls, 1);
	ck_assert_uint_eq(h.counts[FEED_OK], 1);
	ck_assert_uint_eq(h.consecutive_failures, 0);
	ck_assert_uint_eq(h.latency_samples, 1);
	ck_assert_int_eq(h.latency_p50_us, r->latency_us);
	ck_assert_int_eq(h.latency_p99_us, r->latency_us);
	ck_assert_uint_eq(h.latency_count, 1);
	ck_assert_uint_eq(h.latency_le[FEED_HEALTH_NBUCKETS - 1], 1);
	ck_assert_int_eq(h.backoff_ms, 0);
	ck_assert_int_eq(h.next_poll_ms, r->recv_ms + r->delay_ms);
	/* Three intervals without a success: down, without any event. */
	health_of("binance", now + 3 * jc.interval_ms + r->delay_ms + 1, &h);
	ck_assert_str_eq(feed_state_name(h.state), "down");
}
END_TEST

START_TEST(test_rate_limited_retry_after)
{
	struct feed_job_config jc;
	struct feed_health h;
	char base[128];
	struct rec *r;

	job_cfg(&jc, base, sizeof(base), "/r429");
	jc.interval_ms = 200;
	add_job(&jc);
	ck_assert_uint_eq(run_until(2, 5000), 2);
	ck_assert_int_eq(C.recs[0].outcome, FEED_OK);
	r = &C.recs[1];
	ck_assert_str_eq(feed_outcome_name(r->outcome), "rate_limited");
	ck_assert_int_eq(r->cls, FEED_FAIL_TRANSIENT);
	ck_assert_int_eq(r->http_status, 429);
	ck_assert_int_eq(r->retry_after_ms, 2000);
	/* The backoff alone would be 100..200 ms; Retry-After wins. */
	ck_assert_int_eq(r->delay_ms, 2000);
	ck_assert_msg(strstr(r->text, "HTTP 429") == r->text &&
			      strstr(r->text, "-1003") != NULL,
		      "text: %s", r->text);
	ck_assert_int_eq(r->latency_us >= 0, 1);

	health_of("binance", r->mono_ms, &h);
	ck_assert_str_eq(feed_state_name(h.state), "degraded");
	ck_assert_int_ge(h.backoff_ms, 2000);
	ck_assert_int_ge(h.next_poll_ms, r->recv_ms + 2000);
	ck_assert_uint_eq(h.counts[FEED_OK], 1);
	ck_assert_uint_eq(h.counts[FEED_RATE_LIMITED], 1);
	ck_assert_uint_eq(h.bans, 0);
	ck_assert_uint_eq(h.consecutive_failures, 1);
	ck_assert_int_eq(h.last_error_outcome, FEED_RATE_LIMITED);
	ck_assert_msg(strstr(h.last_error, "BTCUSDT: HTTP 429") == h.last_error,
		      "last_error: %s", h.last_error);
	ck_assert_int_eq(h.last_error_ms, r->recv_ms);
	/* The job really waits: nothing is polled within the next 300 ms
	 * (the un-honoured backoff would have polled by then). */
	run_until(3, 300);
	ck_assert_uint_eq(collected(), 2);
	ck_assert_uint_eq(feed_poller_in_flight(P), 0);
}
END_TEST

START_TEST(test_ban_http_date)
{
	struct feed_job_config jc;
	struct feed_health h;
	char base[128];
	struct rec *r;

	job_cfg(&jc, base, sizeof(base), "/r418");
	jc.interval_ms = 100;
	add_job(&jc);
	ck_assert_uint_eq(run_until(1, 5000), 1);
	r = &C.recs[0];
	ck_assert_int_eq(r->outcome, FEED_RATE_LIMITED);
	ck_assert_int_eq(r->http_status, 418);
	/* "now + 3 s" as an HTTP-date, whole seconds: 2..3 s from now. */
	ck_assert_int_gt(r->retry_after_ms, 1000);
	ck_assert_int_le(r->retry_after_ms, 3000);
	ck_assert_int_eq(r->delay_ms, r->retry_after_ms);
	ck_assert_msg(strstr(r->text, "IP banned") != NULL, "text: %s",
		      r->text);
	health_of("binance", r->mono_ms, &h);
	ck_assert_uint_eq(h.bans, 1);
	ck_assert_uint_eq(h.counts[FEED_RATE_LIMITED], 1);
	ck_assert_str_eq(feed_state_name(h.state), "down");  /* never ok */
}
END_TEST

START_TEST(test_http_500_backoff_schedule)
{
	struct feed_job_config jc;
	struct feed_health h;
	struct feed_rng ref;
	struct req_rec reqs[8];
	char base[128];
	int64_t ceiling, want;
	size_t i, n;
	struct rec *r;

	job_cfg(&jc, base, sizeof(base), "/r500");
	jc.interval_ms = 40;
	jc.max_backoff_ms = 150;
	add_job(&jc);
	ck_assert_uint_eq(run_until(5, 10000), 5);
	/* The poller's only draws are this job's backoffs: replay them. */
	feed_rng_seed(&ref, SEED);
	for (i = 0; i < 5; i++) {
		r = &C.recs[i];
		ck_assert_int_eq(r->outcome, FEED_HTTP_ERROR);
		ck_assert_int_eq(r->cls, FEED_FAIL_TRANSIENT);
		ck_assert_str_eq(r->text, "HTTP 500");
		ck_assert_uint_eq(r->consecutive, i + 1);
		ck_assert_uint_eq(r->seq, i + 1);
		ceiling = feed_backoff_ceiling(40, 150, (unsigned)i + 1);
		ck_assert_int_eq(ceiling, i < 2 ? 40 << i : 150);
		want = feed_backoff_delay(40, 150, (unsigned)i + 1, &ref);
		ck_assert_int_eq(r->delay_ms, want);
		ck_assert_int_ge(r->delay_ms, ceiling - ceiling / 2);
		ck_assert_int_le(r->delay_ms, ceiling);
	}
	/* The server saw the polls spaced by at least those delays. */
	n = srv_requests("/r500", reqs, 8);
	ck_assert_uint_ge(n, 5);
	for (i = 0; i + 1 < 5; i++)
		ck_assert_int_ge(reqs[i + 1].mono_ms - reqs[i].mono_ms,
				 C.recs[i].delay_ms);
	health_of("binance", C.recs[4].mono_ms, &h);
	ck_assert_str_eq(feed_state_name(h.state), "down");
	ck_assert_uint_eq(h.consecutive_failures, 5);
	ck_assert_uint_eq(h.counts[FEED_HTTP_ERROR], 5);
	ck_assert_int_eq(h.backoff_ms, C.recs[4].delay_ms);
	ck_assert_str_eq(h.last_error, "BTCUSDT: HTTP 500");
}
END_TEST

START_TEST(test_http_4xx_and_venue_error)
{
	struct feed_job_config jc;
	char base[128];
	struct rec *r;

	job_cfg(&jc, base, sizeof(base), "/r404");
	add_job(&jc);
	job_cfg(&jc, base, sizeof(base), "/badsym");
	jc.source = "binance2";
	add_job(&jc);
	ck_assert_uint_eq(run_until(2, 5000), 2);
	for (r = C.recs; r < C.recs + 2; r++) {
		if (r->http_status == 404) {
			ck_assert_int_eq(r->outcome, FEED_HTTP_ERROR);
			ck_assert_int_eq(r->cls, FEED_FAIL_BAD_DATA);
			ck_assert_str_eq(r->text, "HTTP 404");
		} else {
			ck_assert_int_eq(r->http_status, 400);
			ck_assert_str_eq(feed_outcome_name(r->outcome),
					 "venue_error");
			ck_assert_int_eq(r->cls, FEED_FAIL_BAD_DATA);
			ck_assert_msg(strstr(r->text, "-1121") != NULL &&
					      strstr(r->text, "Invalid symbol"),
				      "text: %s", r->text);
		}
	}
}
END_TEST

static void
too_large_case(const char *path)
{
	struct feed_job_config jc;
	struct feed_health h;
	struct timespec until;
	char base[128];
	struct rec *r;
	int rc = 0;

	job_cfg(&jc, base, sizeof(base), path);
	jc.max_body_bytes = 4096;
	add_job(&jc);
	ck_assert_uint_eq(run_until(1, 10000), 1);
	r = &C.recs[0];
	ck_assert_str_eq(feed_outcome_name(r->outcome), "too_large");
	ck_assert_int_eq(r->cls, FEED_FAIL_BAD_DATA);
	ck_assert_str_eq(r->text, "body larger than 4096 bytes");
	health_of("binance", r->mono_ms, &h);
	ck_assert_uint_eq(h.counts[FEED_TOO_LARGE], 1);
	/* The server's side of the transfer ends (the client hung up)
	 * long before the 64 MiB are produced. */
	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += 10;
	pthread_mutex_lock(&S.mu);
	while (!S.big_done && rc == 0)
		rc = pthread_cond_timedwait(&S.cv, &S.mu, &until);
	pthread_mutex_unlock(&S.mu);
	ck_assert_msg(S.big_done, "the server never saw the transfer end");
	ck_assert_uint_lt(atomic_load(&S.big_produced), BIG_TOTAL / 4);
}

START_TEST(test_too_large_chunked)
{
	too_large_case("/bigchunked");
}
END_TEST

START_TEST(test_too_large_content_length)
{
	too_large_case("/biglength");
	/* Refused from the Content-Length alone, before any body. */
	ck_assert_uint_lt(atomic_load(&S.big_produced), BIG_TOTAL / 4);
}
END_TEST

START_TEST(test_timeout)
{
	struct feed_job_config jc;
	char base[128];
	int64_t t0 = feed_now_mono_ms();
	struct rec *r;

	job_cfg(&jc, base, sizeof(base), "/slow");
	jc.timeout_ms = 300;
	add_job(&jc);
	ck_assert_uint_eq(run_until(1, 5000), 1);
	r = &C.recs[0];
	ck_assert_str_eq(feed_outcome_name(r->outcome), "timeout");
	ck_assert_int_eq(r->cls, FEED_FAIL_TRANSIENT);
	ck_assert_str_eq(r->text, "timeout after 300 ms");
	ck_assert_int_eq(r->http_status, 0);
	ck_assert_int_eq(r->latency_us, -1);
	/* curl keeps its own millisecond clock: allow it a few ms of
	 * rounding against ours (once seen at 299 under load). */
	ck_assert_int_ge(r->mono_ms - t0, 290);
	ck_assert_int_lt(r->mono_ms - t0, 3000);
}
END_TEST

START_TEST(test_connect_refused)
{
	struct feed_job_config jc;
	struct sockaddr_in sa;
	socklen_t sl = sizeof(sa);
	struct feed_health h;
	char base[128];
	struct rec *r;
	int fd;

	/* A bound socket that never listens: connecting is refused, and
	 * no one else can take the port meanwhile. */
	fd = socket(AF_INET, SOCK_STREAM, 0);
	ck_assert_int_ge(fd, 0);
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ck_assert_int_eq(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&sa, &sl), 0);
	feed_job_config_default(&jc);
	snprintf(base, sizeof(base), "http://127.0.0.1:%u",
		 (unsigned)ntohs(sa.sin_port));
	jc.source = "closed";
	jc.adapter = BINANCE;
	jc.base_url = base;
	jc.market = "BTCUSDT";
	add_job(&jc);
	ck_assert_uint_eq(run_until(1, 5000), 1);
	close(fd);
	r = &C.recs[0];
	ck_assert_str_eq(feed_outcome_name(r->outcome), "connect_error");
	ck_assert_int_eq(r->cls, FEED_FAIL_TRANSIENT);
	ck_assert_int_eq(r->http_status, 0);
	ck_assert(r->has_text && r->text[0] != '\0');
	health_of("closed", r->mono_ms, &h);
	ck_assert_uint_eq(h.counts[FEED_CONNECT_ERROR], 1);
	ck_assert_uint_eq(h.latency_samples, 0);
	ck_assert_int_eq(h.latency_p50_us, -1);
}
END_TEST

START_TEST(test_disallowed_scheme)
{
	struct feed_job_config jc;
	struct mk_err err;
	char base[128];

	job_cfg(&jc, base, sizeof(base), "/ok");
	jc.base_url = "ftp://127.0.0.1/x";
	ck_assert_int_eq(feed_poller_add_job(P, &jc, NULL, &err), MK_ECONFIG);
	ck_assert_msg(strstr(err.msg, "binance BTCUSDT: ") == err.msg &&
			      strstr(err.msg, "\"ftp\" is not allowed"),
		      "%s", err.msg);
	jc.base_url = "file:///etc";
	ck_assert_int_eq(feed_poller_add_job(P, &jc, NULL, &err), MK_ECONFIG);
	/* http refused where only https is allowed. */
	jc.base_url = base;
	jc.schemes = "https";
	ck_assert_int_eq(feed_poller_add_job(P, &jc, NULL, &err), MK_ECONFIG);
	ck_assert_msg(strstr(err.msg, "(allowed: https)") != NULL, "%s",
		      err.msg);
	/* Only http and https may be allowed at all. */
	jc.schemes = "http,gopher";
	ck_assert_int_eq(feed_poller_add_job(P, &jc, NULL, &err), MK_ECONFIG);
	ck_assert_msg(strstr(err.msg, "gopher") != NULL, "%s", err.msg);
	/* Bad numbers are refused with their name. */
	jc.schemes = NULL;
	jc.timeout_ms = 0;
	ck_assert_int_eq(feed_poller_add_job(P, &jc, NULL, &err), MK_ECONFIG);
	ck_assert_msg(strstr(err.msg, "timeout_ms 0") != NULL, "%s", err.msg);
	ck_assert_uint_eq(feed_poller_job_count(P), 0);
	/* The same job with "HTTP" spelled upper-case is fine. */
	jc.timeout_ms = 2000;
	jc.schemes = "HTTP";
	add_job(&jc);
	ck_assert_uint_eq(feed_poller_job_count(P), 1);
	ck_assert_uint_eq(feed_health_count(feed_poller_health(P)), 1);
}
END_TEST

START_TEST(test_garbage_body)
{
	struct feed_job_config jc;
	char base[128];
	struct rec *r;

	job_cfg(&jc, base, sizeof(base), "/garbage");
	add_job(&jc);
	ck_assert_uint_eq(run_until(1, 5000), 1);
	r = &C.recs[0];
	ck_assert_str_eq(feed_outcome_name(r->outcome), "parse_error");
	ck_assert_str_eq(feed_fail_class_name(r->cls), "bad_data");
	ck_assert_int_eq(r->http_status, 200);
	ck_assert_uint_eq(r->nquotes, 0);
	ck_assert_msg(strncmp(r->text, "binance", 7) == 0, "text: %s",
		      r->text);
}
END_TEST

START_TEST(test_many_in_flight)
{
	struct feed_job_config jc;
	struct feed_health h;
	char base[128];
	size_t i;

	job_cfg(&jc, base, sizeof(base), "/gate");
	jc.interval_ms = 60000;
	jc.timeout_ms = 10000;
	for (i = 0; i < GATE_N; i++)
		add_job(&jc);
	/* The server answers nothing until all GATE_N requests are open
	 * at once, so this completes only if they are in flight together. */
	ck_assert_uint_eq(run_until(GATE_N, 15000), GATE_N);
	for (i = 0; i < GATE_N; i++) {
		ck_assert_int_eq(C.recs[i].outcome, FEED_OK);
		ck_assert_uint_eq(C.recs[i].nquotes, 1);
	}
	ck_assert_uint_eq(S.gate_arrived, GATE_N);
	health_of("binance", feed_now_mono_ms(), &h);
	ck_assert_uint_eq(h.jobs, GATE_N);
	ck_assert_uint_eq(h.jobs_up, GATE_N);
	ck_assert_uint_eq(h.counts[FEED_OK], GATE_N);
	ck_assert_int_gt(h.next_poll_ms, feed_now_wall_ms());
}
END_TEST

START_TEST(test_handle_reused)
{
	struct feed_job_config jc;
	struct req_rec reqs[8];
	char base[128];
	size_t i, n;
	int64_t t_add;

	job_cfg(&jc, base, sizeof(base), "/reuse");
	jc.interval_ms = 30;
	t_add = feed_now_mono_ms();
	add_job(&jc);
	ck_assert_uint_eq(run_until(3, 5000), 3);
	for (i = 0; i < 3; i++) {
		ck_assert_int_eq(C.recs[i].outcome, FEED_OK);
		ck_assert_uint_eq(C.recs[i].seq, i + 1);
		ck_assert_ptr_nonnull(C.recs[i].transfer);
		ck_assert_ptr_eq(C.recs[i].transfer, C.recs[0].transfer);
	}
	/* And the connection too: every poll came from one client port. */
	n = srv_requests("/reuse", reqs, 8);
	ck_assert_uint_ge(n, 3);
	for (i = 1; i < 3; i++)
		ck_assert_uint_eq(reqs[i].client_port, reqs[0].client_port);
	/* Poll i is not sent before its tick, i intervals after the add. */
	for (i = 0; i < 3; i++)
		ck_assert_int_ge(reqs[i].mono_ms, t_add + 30 * (int64_t)i);
}
END_TEST

START_TEST(test_start_spread)
{
	struct feed_poller_config pc;
	struct feed_job_config jc;
	struct feed_poller *p2 = NULL;
	struct feed_health h[8];
	struct mk_err err;
	char base[128], name[8][8];
	int64_t w0, lo = INT64_MAX, hi = 0;
	size_t i;

	feed_poller_config_default(&pc);
	pc.on_result = on_result;
	pc.arg = &C;
	pc.start_spread_ms = 5000;
	ck_assert_int_eq(feed_poller_create(&pc, &p2, &err), MK_OK);
	w0 = feed_now_wall_ms();
	for (i = 0; i < 8; i++) {
		job_cfg(&jc, base, sizeof(base), "/ok");
		snprintf(name[i], sizeof(name[i]), "s%zu", i);
		jc.source = name[i];
		jc.interval_ms = 1000;
		ck_assert_int_eq(feed_poller_add_job(p2, &jc, NULL, &err),
				 MK_OK);
	}
	/* First polls fall in [now, now + min(spread, interval)), and not
	 * all at the same moment. */
	ck_assert_uint_eq(feed_health_list(feed_poller_health(p2),
					   feed_now_mono_ms(), h, 8),
			  8);
	for (i = 0; i < 8; i++) {
		ck_assert_int_ge(h[i].next_poll_ms, w0);
		ck_assert_int_lt(h[i].next_poll_ms, feed_now_wall_ms() + 1000);
		if (h[i].next_poll_ms < lo)
			lo = h[i].next_poll_ms;
		if (h[i].next_poll_ms > hi)
			hi = h[i].next_poll_ms;
	}
	ck_assert_int_gt(hi - lo, 100);
	feed_poller_destroy(p2);
	/* Bad poller settings. */
	pc.on_result = NULL;
	ck_assert_int_eq(feed_poller_create(&pc, &p2, &err), MK_EINVAL);
	ck_assert_ptr_null(p2);
}
END_TEST

struct runner {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	bool done;
	enum mk_status st;
	atomic_int tid;             /* the loop thread's id, once running */
};

static void *
run_thread(void *arg)
{
	struct runner *rn = arg;
	struct mk_err err;
	enum mk_status st;

	atomic_store(&rn->tid, (int)gettid());
	st = feed_poller_run(P, &err);
	pthread_mutex_lock(&rn->mu);
	rn->st = st;
	rn->done = true;
	pthread_cond_broadcast(&rn->cv);
	pthread_mutex_unlock(&rn->mu);
	return NULL;
}

/* Waits (bounded) on cv for *flag, or for n results when flag is NULL. */
static bool
wait_for(pthread_mutex_t *mu, pthread_cond_t *cv, const bool *flag,
	 size_t n, int64_t within_ms)
{
	struct timespec until;
	bool ok;
	int rc = 0;

	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += within_ms / 1000;
	until.tv_nsec += (long)(within_ms % 1000) * 1000000L;
	if (until.tv_nsec >= 1000000000L) {
		until.tv_sec++;
		until.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(mu);
	while (rc == 0 && (flag != NULL ? !*flag : C.n < n))
		rc = pthread_cond_timedwait(cv, mu, &until);
	ok = flag != NULL ? *flag : C.n >= n;
	pthread_mutex_unlock(mu);
	return ok;
}

/* Linux scheduler state of thread tid of this process ('R', 'S', ...). */
static char
thread_state(int tid)
{
	char path[64], buf[512], *p;
	FILE *f;
	size_t n;

	snprintf(path, sizeof(path), "/proc/self/task/%d/stat", tid);
	f = fopen(path, "r");
	if (f == NULL)
		return '?';
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	p = strrchr(buf, ')');
	return p != NULL && p[1] == ' ' ? p[2] : '?';
}

/* Waits (bounded, checking every ms) until the loop thread sleeps: once
 * the test knows the loop has nothing else to do, that is the loop
 * blocked in curl_multi_poll. */
static bool
wait_blocked(struct runner *rn, int64_t within_ms)
{
	int64_t end = feed_now_mono_ms() + within_ms;
	struct timespec ms = { 0, 1000000L };
	int tid = atomic_load(&rn->tid);

	while (feed_now_mono_ms() < end) {
		if (tid == 0)
			tid = atomic_load(&rn->tid);
		else if (thread_state(tid) == 'S')
			return true;
		nanosleep(&ms, NULL);
	}
	return false;
}

/* Runs the loop on its own thread with one job on route `path`; once
 * `ready` results came, the server has the request and the loop is
 * blocked, calls feed_poller_stop and checks that the loop ends within
 * 1 s. */
static void
stop_case(const char *path, int64_t timeout_ms, size_t ready)
{
	struct feed_job_config jc;
	struct runner rn;
	pthread_t th;
	char base[128];
	int64_t t0;

	memset(&rn, 0, sizeof(rn));
	pthread_mutex_init(&rn.mu, NULL);
	pthread_cond_init(&rn.cv, NULL);
	atomic_init(&rn.tid, 0);
	job_cfg(&jc, base, sizeof(base), path);
	jc.interval_ms = 60000;
	jc.timeout_ms = timeout_ms;
	add_job(&jc);
	ck_assert_int_eq(pthread_create(&th, NULL, run_thread, &rn), 0);
	ck_assert(wait_for(&C.mu, &C.cv, NULL, ready, 5000));
	ck_assert_uint_eq(srv_wait_requests(path, 1, 5000), 1);
	ck_assert_msg(wait_blocked(&rn, 5000), "the loop never blocked");
	ck_assert(!rn.done);
	t0 = feed_now_mono_ms();
	feed_poller_stop(P);
	ck_assert_msg(wait_for(&rn.mu, &rn.cv, &rn.done, 0, 5000),
		      "feed_poller_run did not return");
	ck_assert_int_lt(feed_now_mono_ms() - t0, 1000);
	ck_assert_int_eq(pthread_join(th, NULL), 0);
	ck_assert_int_eq(rn.st, MK_OK);
	ck_assert_uint_eq(collected(), ready);
	/* Sticky: a later run returns at once. */
	ck_assert_int_eq(feed_poller_run(P, NULL), MK_OK);
	ck_assert_int_eq(feed_poller_step(P, 60000, NULL), MK_OK);
}

START_TEST(test_stop_idle)
{
	/* After its one poll the loop would sleep for a minute. */
	stop_case("/ok", 2000, 1);
}
END_TEST

START_TEST(test_stop_in_flight)
{
	/* The loop waits on a transfer the server holds for 10 s. */
	stop_case("/slow", 30000, 0);
	ck_assert_uint_eq(feed_poller_in_flight(P), 1);
}
END_TEST

/* ---- backoff (pure) ---- */

START_TEST(test_backoff_ceiling)
{
	ck_assert_int_eq(feed_backoff_ceiling(1000, 60000, 0), 0);
	ck_assert_int_eq(feed_backoff_ceiling(1000, 60000, 1), 1000);
	ck_assert_int_eq(feed_backoff_ceiling(1000, 60000, 2), 2000);
	ck_assert_int_eq(feed_backoff_ceiling(1000, 60000, 6), 32000);
	ck_assert_int_eq(feed_backoff_ceiling(1000, 60000, 7), 60000);
	ck_assert_int_eq(feed_backoff_ceiling(1000, 60000, 4000000000u),
			 60000);
	ck_assert_int_eq(feed_backoff_ceiling(86400000, 86400000, 99),
			 86400000);
	ck_assert_int_eq(feed_backoff_ceiling(1, 1, 1), 1);
}
END_TEST

START_TEST(test_backoff_bounds_and_jitter)
{
	struct feed_rng r, r2;
	int64_t c, d, lo, hi;
	unsigned f, seen[3] = { 0, 0, 0 };
	int i;

	feed_rng_seed(&r, 7);
	for (i = 0; i < 20000; i++) {
		f = 1 + (unsigned)(i % 12);
		c = feed_backoff_ceiling(250, 30000, f);
		d = feed_backoff_delay(250, 30000, f, &r);
		ck_assert_int_ge(d, c - c / 2);
		ck_assert_int_le(d, c);
	}
	/* Both ends of [b/2, b] are reached: b = 4 gives 2, 3 and 4. */
	feed_rng_seed(&r, 1);
	lo = 4;
	hi = 0;
	for (i = 0; i < 300; i++) {
		d = feed_backoff_delay(4, 100, 1, &r);
		ck_assert(d >= 2 && d <= 4);
		seen[d - 2]++;
		if (d < lo)
			lo = d;
		if (d > hi)
			hi = d;
	}
	ck_assert_int_eq(lo, 2);
	ck_assert_int_eq(hi, 4);
	ck_assert(seen[0] > 50 && seen[1] > 50 && seen[2] > 50);
	/* No failure, no draw and no delay. */
	feed_rng_seed(&r, 5);
	feed_rng_seed(&r2, 5);
	ck_assert_int_eq(feed_backoff_delay(100, 1000, 0, &r), 0);
	ck_assert_uint_eq(feed_rng_next(&r), feed_rng_next(&r2));
}
END_TEST

START_TEST(test_rng_deterministic)
{
	struct feed_rng a, b, c;
	int i, same = 0;

	feed_rng_seed(&a, 42);
	feed_rng_seed(&b, 42);
	feed_rng_seed(&c, 43);
	for (i = 0; i < 1000; i++) {
		uint64_t x = feed_rng_next(&a);

		ck_assert_uint_eq(x, feed_rng_next(&b));
		same += x == feed_rng_next(&c);
	}
	ck_assert_int_eq(same, 0);
	/* Seed 0 is usable (not a stuck stream). */
	feed_rng_seed(&a, 0);
	ck_assert_uint_ne(feed_rng_next(&a), feed_rng_next(&a));
}
END_TEST

/* 1994-11-06T08:49:37Z */
#define RFC_EXAMPLE_MS INT64_C(784111777000)

static int64_t
ra(const char *s, int64_t now, enum mk_status want)
{
	int64_t d = -12345;
	struct mk_err err;

	ck_assert_msg(feed_retry_after_parse(s, strlen(s), now, &d, &err) ==
			      want,
		      "\"%s\"", s);
	if (want != MK_OK) {
		ck_assert_int_eq(d, -12345);   /* untouched */
		ck_assert_msg(strstr(err.msg, "Retry-After") == err.msg, "%s",
			      err.msg);
	}
	return d;
}

START_TEST(test_retry_after_seconds)
{
	ck_assert_int_eq(ra("2", 0, MK_OK), 2000);
	ck_assert_int_eq(ra("0", 0, MK_OK), 0);
	ck_assert_int_eq(ra(" \t120 ", 0, MK_OK), 120000);
	ck_assert_int_eq(ra("99999999999999999999999", 0, MK_OK),
			 FEED_RETRY_AFTER_MAX_MS);
	/* Length-delimited: only "12" of "123" is read. */
	{
		int64_t d = 0;

		ck_assert_int_eq(feed_retry_after_parse("123", 2, 0, &d, NULL),
				 MK_OK);
		ck_assert_int_eq(d, 12000);
	}
}
END_TEST

START_TEST(test_retry_after_dates)
{
	int64_t now = RFC_EXAMPLE_MS - 5000;

	ck_assert_int_eq(ra("Sun, 06 Nov 1994 08:49:37 GMT", now, MK_OK),
			 5000);
	ck_assert_int_eq(ra("Sunday, 06-Nov-94 08:49:37 GMT", now, MK_OK),
			 5000);
	ck_assert_int_eq(ra("Sun Nov  6 08:49:37 1994", now, MK_OK), 5000);
	ck_assert_int_eq(ra(" Sun, 06 Nov 1994 08:49:37 GMT\t", now, MK_OK),
			 5000);
	/* In the past: retry now. */
	ck_assert_int_eq(ra("Sun, 06 Nov 1994 08:49:37 GMT",
			    RFC_EXAMPLE_MS + 1000, MK_OK),
			 0);
	/* Leap day 2024-02-29T00:00:00Z = 1709164800 s. */
	ck_assert_int_eq(ra("Thu, 29 Feb 2024 00:00:00 GMT",
			    INT64_C(1709164800000) - 1500, MK_OK),
			 1500);
	ck_assert_int_eq(ra("Sun, 31 Dec 2023 23:59:59 GMT",
			    INT64_C(1704067199000), MK_OK),
			 0);
	/* Two-digit years: 00 read in 1999 is 2000 (not 1900). Now is
	 * 1999-12-25T00:00:00Z = 946080000 s; a week later. */
	ck_assert_int_eq(ra("Saturday, 01-Jan-00 00:00:00 GMT",
			    INT64_C(946080000000), MK_OK),
			 INT64_C(7) * 86400000);
	/* Far future saturates. */
	ck_assert_int_eq(ra("Fri, 31 Dec 9999 23:59:59 GMT", 0, MK_OK),
			 FEED_RETRY_AFTER_MAX_MS);
}
END_TEST

START_TEST(test_retry_after_garbage)
{
	static const char *const bad[] = {
		"", "   ", "soon", "-5", "2.5", "12abc", "+3", "0x10",
		"Sun, 06 Nov 1994 08:49:37 UTC",
		"Sun, 06 Nov 1994 08:49:37",
		"Sun, 32 Nov 1994 08:49:37 GMT",
		"Fri, 29 Feb 2023 00:00:00 GMT",
		"Sun, 06 Nov 1994 24:00:00 GMT",
		"Sun, 06 Foo 1994 08:49:37 GMT",
		"Xyz, 06 Nov 1994 08:49:37 GMT",
		"Sun, 06 Nov 94 08:49:37 GMT",
		"Sunday, 06-Nov-1994 08:49:37 GMT",
		"Sun Nov 6 08:49:37 1994",
		"Sun, 06 Nov 1994 08:49:37 GMT trailing",
	};
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		ra(bad[i], 0, MK_EPARSE);
}
END_TEST

/* ---- health (through its API, with explicit clocks) ---- */

static struct feed_health_event
ev_at(enum feed_outcome o, int64_t mono, int64_t latency_us, int status)
{
	struct feed_health_event ev;

	memset(&ev, 0, sizeof(ev));
	ev.outcome = o;
	ev.http_status = status;
	ev.latency_us = latency_us;
	ev.now_mono_ms = mono;
	ev.now_wall_ms = 1700000000000 + mono;
	ev.text = o == FEED_OK ? NULL : "BTCUSDT: boom";
	ev.backoff_ms = o == FEED_OK ? 0 : 500;
	ev.next_poll_ms = ev.now_wall_ms + 1000;
	return ev;
}

static enum feed_state
state_at(struct feed_health_table *t, const char *src, int64_t now)
{
	struct feed_health h;

	ck_assert_int_eq(feed_health_get(t, src, now, &h), MK_OK);
	return h.state;
}

START_TEST(test_health_states)
{
	struct feed_health_table *t = feed_health_create(NULL);
	struct feed_health_event ev;
	struct feed_health h;
	int a;

	ck_assert_ptr_nonnull(t);
	a = feed_health_add_job(t, "okx", 1000, 1700000000500);
	ck_assert_int_ge(a, 0);
	ck_assert_int_eq(feed_health_get(t, "nope", 0, &h), MK_ENOTFOUND);
	/* Never polled: down, next poll known. */
	ck_assert_int_eq(feed_health_get(t, "okx", 0, &h), MK_OK);
	ck_assert_int_eq(h.state, FEED_STATE_DOWN);
	ck_assert_int_eq(h.next_poll_ms, 1700000000500);
	ck_assert_int_eq(h.latency_p50_us, -1);
	/* In flight: no next poll. */
	feed_health_started(t, a);
	ck_assert_int_eq(feed_health_get(t, "okx", 0, &h), MK_OK);
	ck_assert_int_eq(h.next_poll_ms, 0);

	ev = ev_at(FEED_OK, 1000, 2000, 200);
	feed_health_record(t, a, &ev);
	ck_assert_int_eq(state_at(t, "okx", 1000), FEED_STATE_UP);
	ev = ev_at(FEED_HTTP_ERROR, 2000, 3000, 500);
	feed_health_record(t, a, &ev);
	ck_assert_int_eq(state_at(t, "okx", 2000), FEED_STATE_DEGRADED);
	ev = ev_at(FEED_TIMEOUT, 2500, -1, 0);
	feed_health_record(t, a, &ev);
	ck_assert_int_eq(state_at(t, "okx", 2500), FEED_STATE_DEGRADED);
	/* Still a success within 3 intervals, but 3 failures in a row. */
	ev = ev_at(FEED_CONNECT_ERROR, 3000, -1, 0);
	feed_health_record(t, a, &ev);
	ck_assert_int_eq(state_at(t, "okx", 3000), FEED_STATE_DOWN);
	ck_assert_int_eq(feed_health_get(t, "okx", 3000, &h), MK_OK);
	ck_assert_uint_eq(h.consecutive_failures, 3);
	ck_assert_int_eq(h.backoff_ms, 500);
	ck_assert_int_eq(h.last_error_outcome, FEED_CONNECT_ERROR);
	ck_assert_str_eq(h.last_error, "BTCUSDT: boom");
	ck_assert_int_eq(h.last_success_ms, 1700000001000);
	ck_assert_int_eq(h.last_error_ms, 1700000003000);
	ck_assert_uint_eq(h.polls, 4);
	ck_assert_uint_eq(h.counts[FEED_OK], 1);
	ck_assert_uint_eq(h.counts[FEED_HTTP_ERROR], 1);
	ck_assert_uint_eq(h.counts[FEED_TIMEOUT], 1);
	ck_assert_uint_eq(h.counts[FEED_CONNECT_ERROR], 1);
	/* Recovery. */
	ev = ev_at(FEED_OK, 4000, 1000, 200);
	feed_health_record(t, a, &ev);
	ck_assert_int_eq(state_at(t, "okx", 4000), FEED_STATE_UP);
	ck_assert_int_eq(state_at(t, "okx", 7000), FEED_STATE_UP);
	/* No success for more than 3 intervals: down by time alone. */
	ck_assert_int_eq(state_at(t, "okx", 7001), FEED_STATE_DOWN);
	/* A rate limit degrades for 3 intervals even after a success. */
	ev = ev_at(FEED_RATE_LIMITED, 5000, 1000, 418);
	feed_health_record(t, a, &ev);
	ev = ev_at(FEED_OK, 5500, 1000, 200);
	feed_health_record(t, a, &ev);
	ck_assert_int_eq(state_at(t, "okx", 5500), FEED_STATE_DEGRADED);
	ck_assert_int_eq(state_at(t, "okx", 8000), FEED_STATE_DEGRADED);
	ev = ev_at(FEED_OK, 8001, 1000, 200);
	feed_health_record(t, a, &ev);
	ck_assert_int_eq(state_at(t, "okx", 8001), FEED_STATE_UP);
	ck_assert_int_eq(feed_health_get(t, "okx", 8001, &h), MK_OK);
	ck_assert_uint_eq(h.bans, 1);
	ck_assert_int_eq(h.backoff_ms, 0);
	feed_health_destroy(t);
	feed_health_destroy(NULL);
}
END_TEST

START_TEST(test_health_sources_and_jobs)
{
	struct feed_health_params hp;
	struct feed_health_table *t;
	struct feed_health_event ev;
	struct feed_health list[2];
	char longname[AGG_SOURCE_MAX + 1];
	int a, b, c;

	feed_health_params_default(&hp);
	hp.down_after_failures = 2;
	t = feed_health_create(&hp);
	ck_assert_ptr_nonnull(t);
	a = feed_health_add_job(t, "kraken", 1000, 1);
	b = feed_health_add_job(t, "kraken", 500, 2);
	c = feed_health_add_job(t, "bybit", 2000, 3);
	ck_assert(a >= 0 && b >= 0 && c >= 0 && a != b && b != c);
	memset(longname, 'x', sizeof(longname) - 1);
	longname[sizeof(longname) - 1] = '\0';
	ck_assert_int_eq(feed_health_add_job(t, longname, 1000, 0), -1);
	ck_assert_int_eq(feed_health_add_job(t, "", 1000, 0), -1);
	ck_assert_int_eq(feed_health_add_job(t, "x", 0, 0), -1);
	ck_assert_uint_eq(feed_health_count(t), 2);

	/* kraken: one market fine, the other failing: degraded as a source
	 * even though that job is down (2 failures with this threshold). */
	ev = ev_at(FEED_OK, 100, 5000, 200);
	feed_health_record(t, a, &ev);
	ev = ev_at(FEED_OK, 100, 5000, 200);
	feed_health_record(t, b, &ev);
	ev = ev_at(FEED_PARSE_ERROR, 200, 5000, 200);
	feed_health_record(t, b, &ev);
	ev = ev_at(FEED_PARSE_ERROR, 300, 5000, 200);
	feed_health_record(t, b, &ev);
	ck_assert_uint_eq(feed_health_list(t, 300, list, 2), 2);
	ck_assert_str_eq(list[0].source, "kraken");
	ck_assert_str_eq(feed_state_name(list[0].state), "degraded");
	ck_assert_uint_eq(list[0].jobs, 2);
	ck_assert_uint_eq(list[0].jobs_up, 1);
	ck_assert_uint_eq(list[0].jobs_down, 1);
	ck_assert_uint_eq(list[0].consecutive_failures, 2);
	ck_assert_int_eq(list[0].interval_ms, 500);
	ck_assert_str_eq(list[1].source, "bybit");
	ck_assert_str_eq(feed_state_name(list[1].state), "down");
	/* cap smaller than the table: the total comes back. */
	ck_assert_uint_eq(feed_health_list(t, 300, list, 1), 2);
	ck_assert_str_eq(feed_state_name(FEED_STATE_UP), "up");
	ck_assert_str_eq(feed_outcome_name(FEED_VENUE_ERROR), "venue_error");
	ck_assert_str_eq(feed_outcome_name(FEED_HTTP_ERROR), "http_error");
	feed_health_destroy(t);
}
END_TEST

START_TEST(test_health_latency)
{
	struct feed_health_table *t = feed_health_create(NULL);
	struct feed_health_event ev;
	struct feed_health h;
	uint64_t sum = 0;
	int a, i;

	ck_assert_ptr_nonnull(t);
	a = feed_health_add_job(t, "gemini", 1000, 0);
	/* 1..100 ms: p50 = 50 ms, p99 = 99 ms (nearest rank). */
	for (i = 1; i <= 100; i++) {
		ev = ev_at(FEED_OK, i, (int64_t)i * 1000, 200);
		feed_health_record(t, a, &ev);
		sum += (uint64_t)i * 1000;
	}
	ck_assert_int_eq(feed_health_get(t, "gemini", 100, &h), MK_OK);
	ck_assert_int_eq(h.latency_p50_us, 50000);
	ck_assert_int_eq(h.latency_p99_us, 99000);
	ck_assert_uint_eq(h.latency_samples, 100);
	ck_assert_uint_eq(h.latency_count, 100);
	ck_assert_uint_eq(h.latency_sum_us, sum);
	/* Cumulative buckets: le 5 ms holds 1..5, le 50 holds 1..50. */
	ck_assert_int_eq(feed_health_bucket_le_ms[0], 5);
	ck_assert_uint_eq(h.latency_le[0], 5);
	ck_assert_uint_eq(h.latency_le[3], 50);
	ck_assert_uint_eq(h.latency_le[4], 100);
	ck_assert_uint_eq(h.latency_le[FEED_HEALTH_NBUCKETS - 1], 100);
	/* 100 more (101..200 ms): the ring keeps the last 128 (73..200). */
	for (i = 101; i <= 200; i++) {
		ev = ev_at(FEED_OK, i, (int64_t)i * 1000, 200);
		feed_health_record(t, a, &ev);
	}
	ck_assert_int_eq(feed_health_get(t, "gemini", 200, &h), MK_OK);
	ck_assert_uint_eq(h.latency_samples, FEED_HEALTH_LATENCY_RING);
	ck_assert_int_eq(h.latency_p50_us, 136000);
	ck_assert_int_eq(h.latency_p99_us, 199000);
	ck_assert_uint_eq(h.latency_count, 200);
	ck_assert_uint_eq(h.latency_le[4], 100);   /* le 100 ms */
	ck_assert_uint_eq(h.latency_le[5], 200);   /* le 250 ms */
	/* A poll without an answer adds no sample. */
	ev = ev_at(FEED_TIMEOUT, 300, -1, 0);
	feed_health_record(t, a, &ev);
	ck_assert_int_eq(feed_health_get(t, "gemini", 300, &h), MK_OK);
	ck_assert_uint_eq(h.latency_count, 200);
	feed_health_destroy(t);
}
END_TEST

static Suite *
poller_suite(void)
{
	Suite *s = suite_create("poller");
	TCase *tc;

	tc = tcase_create("backoff");
	tcase_add_test(tc, test_backoff_ceiling);
	tcase_add_test(tc, test_backoff_bounds_and_jitter);
	tcase_add_test(tc, test_rng_deterministic);
	tcase_add_test(tc, test_retry_after_seconds);
	tcase_add_test(tc, test_retry_after_dates);
	tcase_add_test(tc, test_retry_after_garbage);
	suite_add_tcase(s, tc);

	tc = tcase_create("health");
	tcase_add_test(tc, test_health_states);
	tcase_add_test(tc, test_health_sources_and_jobs);
	tcase_add_test(tc, test_health_latency);
	suite_add_tcase(s, tc);

	tc = tcase_create("poller");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_good_quote);
	tcase_add_test(tc, test_rate_limited_retry_after);
	tcase_add_test(tc, test_ban_http_date);
	tcase_add_test(tc, test_http_500_backoff_schedule);
	tcase_add_test(tc, test_http_4xx_and_venue_error);
	tcase_add_test(tc, test_too_large_chunked);
	tcase_add_test(tc, test_too_large_content_length);
	tcase_add_test(tc, test_timeout);
	tcase_add_test(tc, test_connect_refused);
	tcase_add_test(tc, test_disallowed_scheme);
	tcase_add_test(tc, test_garbage_body);
	tcase_add_test(tc, test_many_in_flight);
	tcase_add_test(tc, test_handle_reused);
	tcase_add_test(tc, test_start_spread);
	tcase_add_test(tc, test_stop_idle);
	tcase_add_test(tc, test_stop_in_flight);
	suite_add_tcase(s, tc);
	return s;
}

TU_MAIN(poller_suite)
