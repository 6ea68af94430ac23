/*
 * check_httpd.c - the HTTP server over real loopback HTTP: routing and
 * error bodies, request checks (JSON, size, media type), bearer auth and
 * token files, keep-alive, connection limits and timeouts, Prometheus
 * exposition, the SSE stream, shared response buffers and clean stop.
 *
 * Every test starts its own server on 127.0.0.1 port 0 and talks to it
 * with libcurl (or a raw socket where the point is what a misbehaving
 * client does). Every wait has a deadline; nothing sleeps to synchronise.
 */
#include "config.h"

#include <arpa/inet.h>
#include <check.h>
#include <curl/curl.h>
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "httpd/auth.h"
#include "httpd/metrics.h"
#include "httpd/request.h"
#include "httpd/response.h"
#include "httpd/router.h"
#include "httpd/routes.h"
#include "httpd/server.h"
#include "httpd/sse.h"
#include "tests/http.h"
#include "tests/proc.h"
#include "tests/promcheck.h"
#include "tests/testutil.h"

#define TOKEN_A "tok-AAAAAAAAAAAAAAAAAAAAAAAA"
#define TOKEN_B "tok-BBBBBBBBBBBBBBBBBBBBBBBB"
#define TOKEN_C "tok-CCCCCCCCCCCCCCCCCCCCCCCC"

/* ---- the server under test ---- */

struct env {
	char dir[TU_PATH_LEN];
	char tokens[TU_PATH_LEN + 8];
	struct httpd_router *router;
	struct httpd_auth *auth;
	struct httpd_metrics *metrics;
	struct httpd_sse_hub *hub;
	struct httpd_server *srv;
	struct httpd_server_config cfg;
	struct httpd_sse_config sse;
	struct httpd_basic_routes basic;
	uint16_t port;
	atomic_bool ready;
	struct httpd_buf *shared;  /* current "snapshot" bytes */
	pthread_mutex_t shared_mu;
};

static struct env E;

/* Writes E.dir/name. */
static void
put_file(const char *name, const char *text)
{
	ck_assert_msg(tu_put_file(E.dir, name, text), "cannot write %s/%s: %s",
		      E.dir, name, strerror(errno));
}

/* GET /v1/things/{id}?x= -> {"id":..,"x":..} */
static void
h_thing(struct httpd_req *req, void *arg)
{
	const char *x = httpd_req_query(req, "x");

	(void)arg;
	httpd_reply_json(req, 200, json_pack("{s:s,s:s?}", "id",
					     httpd_req_param(req, "id"), "x", x));
}

static void
h_count(struct httpd_req *req, void *arg)
{
	(void)arg;
	httpd_reply_json(req, 200, json_pack("{s:i}", "count", 3));
}

/* Echoes the parsed JSON body. */
static void
h_echo(struct httpd_req *req, void *arg)
{
	(void)arg;
	httpd_reply_json(req, 200, json_pack("{s:b,s:O}", "ok", 1, "got",
					     httpd_req_json(req)));
}

static void
h_delete(struct httpd_req *req, void *arg)
{
	(void)arg;
	httpd_reply_json(req, 200,
			 json_pack("{s:s}", "deleted", httpd_req_param(req, "id")));
}

static void
h_noanswer(struct httpd_req *req, void *arg)
{
	(void)req;
	(void)arg;
}

/* Serves the current shared buffer, then replaces it (as a new snapshot
 * would), dropping the owner's reference while MHD still sends it. */
static void
h_shared(struct httpd_req *req, void *arg)
{
	struct httpd_buf *b, *fresh;
	size_t len;
	char *bytes;

	(void)arg;
	pthread_mutex_lock(&E.shared_mu);
	b = httpd_buf_ref(E.shared);
	pthread_mutex_unlock(&E.shared_mu);
	httpd_reply_buf(req, 200, "application/octet-stream", b);
	len = httpd_buf_len(b);
	bytes = malloc(len);
	ck_assert_ptr_nonnull(bytes);
	for (size_t i = 0; i < len; i++)
		bytes[i] = (char)('a' + (httpd_buf_data(b)[i] - 'a' + 1) % 26);
	httpd_buf_unref(b);
	fresh = httpd_buf_take(bytes, len);
	ck_assert_ptr_nonnull(fresh);
	pthread_mutex_lock(&E.shared_mu);
	b = E.shared;
	E.shared = fresh;
	pthread_mutex_unlock(&E.shared_mu);
	httpd_buf_unref(b);
}

static void
ready_fn(void *arg, struct httpd_readiness *r)
{
	(void)arg;
	if (!atomic_load(&E.ready)) {
		httpd_readiness_fail(r, "store not open");
		httpd_readiness_fail(r, "instrument %s has no valid mark yet",
				     "BTC-USD");
	}
}

static void
add(enum httpd_method m, const char *pattern, unsigned flags,
    httpd_handler_fn fn, void *arg)
{
	struct mk_err err;

	ck_assert_msg(httpd_router_add(E.router, m, pattern, flags, fn, arg,
				       &err) == MK_OK,
		      "add %s: %s", pattern, err.msg);
}

/* Prepares everything; tests adjust E.cfg / E.sse, then call env_start. */
static void
env_setup(void)
{
	struct mk_err err;
	char *big;

	memset(&E, 0, sizeof E);
	ck_assert(tu_make_dir(E.dir, sizeof E.dir, "check_httpd"));
	snprintf(E.tokens, sizeof E.tokens, "%s/tokens", E.dir);
	put_file("tokens", "# markd write tokens\n\n" TOKEN_A "\n  " TOKEN_B
			   "   # ops\n");
	ck_assert_int_eq(httpd_auth_load(E.tokens, &E.auth, &err), MK_OK);
	E.metrics = httpd_metrics_create();
	ck_assert_ptr_nonnull(E.metrics);
	E.router = httpd_router_create();
	ck_assert_ptr_nonnull(E.router);
	httpd_server_config_default(&E.cfg);
	E.cfg.body_cap = 1024;
	E.cfg.drain_timeout_ms = 3000;
	httpd_sse_config_default(&E.sse);
	E.sse.first_id = 1;
	atomic_init(&E.ready, true);
	pthread_mutex_init(&E.shared_mu, NULL);
	big = malloc(1 << 20);
	ck_assert_ptr_nonnull(big);
	for (size_t i = 0; i < (1u << 20); i++)
		big[i] = (char)('a' + i % 26);
	E.shared = httpd_buf_take(big, 1u << 20);
	ck_assert_ptr_nonnull(E.shared);
}

static void
env_start(void)
{
	struct mk_err err;

	ck_assert_int_eq(httpd_sse_hub_create(&E.sse, E.metrics, &E.hub, &err),
			 MK_OK);
	E.basic.metrics = E.metrics;
	E.basic.ready = ready_fn;
	E.basic.version = "9.9.9-test";
	ck_assert_int_eq(httpd_routes_basic(E.router, &E.basic, &err), MK_OK);
	add(HTTPD_GET, "/v1/things/{id}", 0, h_thing, NULL);
	add(HTTPD_GET, "/v1/things/count", 0, h_count, NULL);
	add(HTTPD_PUT, "/v1/things/{id}", HTTPD_ROUTE_AUTH | HTTPD_ROUTE_BODY,
	    h_echo, NULL);
	add(HTTPD_DELETE, "/v1/things/{id}", HTTPD_ROUTE_AUTH, h_delete, NULL);
	add(HTTPD_POST, "/v1/echo", HTTPD_ROUTE_BODY, h_echo, NULL);
	add(HTTPD_GET, "/v1/noanswer", 0, h_noanswer, NULL);
	add(HTTPD_GET, "/v1/shared", 0, h_shared, NULL);
	add(HTTPD_GET, "/v1/stream", HTTPD_ROUTE_STREAM, httpd_sse_handler,
	    E.hub);
	E.cfg.router = E.router;
	E.cfg.auth = E.auth;
	E.cfg.metrics = E.metrics;
	E.cfg.hub = E.hub;
	ck_assert_msg(httpd_server_start(&E.cfg, &E.srv, &err) == MK_OK,
		      "start: %s", err.msg);
	E.port = httpd_server_port(E.srv);
	ck_assert_uint_ne(E.port, 0);
}

static void
env_teardown(void)
{
	httpd_server_stop(E.srv);
	E.srv = NULL;
	httpd_sse_hub_destroy(E.hub);
	httpd_router_destroy(E.router);
	httpd_auth_destroy(E.auth);
	httpd_metrics_destroy(E.metrics);
	httpd_buf_unref(E.shared);
	pthread_mutex_destroy(&E.shared_mu);
	tu_remove_dir(E.dir);
}

/* ---- a curl client (tests/http.h) ---- */

/* One request on handle h (reused for keep-alive; NULL: a handle of its
 * own); headers NULL-ended. Whether the transfer worked. */
static bool
http(CURL *h, const char *method, const char *path, const char *const *headers,
     const char *body, struct tu_resp *r)
{
	return tu_http_on(h, E.port, method, path, body, headers, 10000, r);
}

/* One request on a handle of its own; asserts the transfer worked. */
static void
http1(const char *method, const char *path, const char *const *headers,
      const char *body, struct tu_resp *r)
{
	ck_assert_msg(http(NULL, method, path, headers, body, r),
		      "%s %s: %s", method, path, curl_easy_strerror(r->code));
}

/* Asserts r is the API error with this status, code and (when not NULL)
 * a message containing needle. */
static void
assert_error(struct tu_resp *r, long status, const char *code,
	     const char *needle)
{
	json_error_t je;
	json_t *j, *e;
	char ct[128];

	ck_assert_int_eq(r->status, status);
	ck_assert_ptr_nonnull(tu_resp_header(r, "Content-Type", ct, sizeof ct));
	ck_assert_str_eq(ct, "application/json");
	j = json_loadb(r->body, r->len, JSON_REJECT_DUPLICATES, &je);
	ck_assert_msg(j != NULL, "error body is not JSON: %s", r->body);
	e = json_object_get(j, "error");
	ck_assert_ptr_nonnull(e);
	ck_assert_int_eq(json_object_size(j), 1);
	ck_assert_str_eq(json_string_value(json_object_get(e, "code")), code);
	ck_assert_ptr_nonnull(json_string_value(json_object_get(e, "message")));
	if (needle != NULL)
		ck_assert_msg(strstr(json_string_value(json_object_get(e, "message")),
				     needle) != NULL,
			      "message \"%s\" lacks \"%s\"",
			      json_string_value(json_object_get(e, "message")),
			      needle);
	json_decref(j);
}

/* ---- raw sockets ---- */

static int
raw_connect(int rcvbuf)
{
	struct sockaddr_in sa;
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	ck_assert_int_ge(fd, 0);
	if (rcvbuf > 0)
		setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
	memset(&sa, 0, sizeof sa);
	sa.sin_family = AF_INET;
	sa.sin_port = htons(E.port);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ck_assert_int_eq(connect(fd, (struct sockaddr *)&sa, sizeof sa), 0);
	return fd;
}

static void
raw_send(int fd, const char *s)
{
	size_t n = strlen(s), off = 0;

	while (off < n) {
		ssize_t k = send(fd, s + off, n - off, MSG_NOSIGNAL);

		ck_assert_int_gt(k, 0);
		off += (size_t)k;
	}
}

/*
 * Reads into buf (cap, NUL-terminated) until needle appears (when not
 * NULL), the peer closes, or timeout_ms pass. Returns bytes held; *closed
 * tells whether EOF or a reset was seen. Keeps the last cap-1 bytes when
 * more arrive.
 */
static size_t
raw_read(int fd, char *buf, size_t cap, const char *needle, int timeout_ms,
	 bool *closed)
{
	int64_t deadline = tu_mono_ms() + timeout_ms;
	size_t len = 0;

	*closed = false;
	buf[0] = '\0';
	for (;;) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		int64_t now = tu_mono_ms();
		ssize_t k;
		char tmp[65536];

		if (needle != NULL && strstr(buf, needle) != NULL)
			break;
		if (now >= deadline)
			break;
		if (poll(&p, 1, (int)(deadline - now)) <= 0)
			continue;
		k = recv(fd, tmp, sizeof tmp, 0);
		if (k <= 0) {
			*closed = true;
			break;
		}
		if ((size_t)k > cap - 1 - len) {
			size_t drop = (size_t)k - (cap - 1 - len);

			if (drop > len)
				drop = len;
			memmove(buf, buf + drop, len - drop);
			len -= drop;
		}
		if ((size_t)k > cap - 1 - len)
			k = (ssize_t)(cap - 1 - len);
		memcpy(buf + len, tmp, (size_t)k);
		len += (size_t)k;
		buf[len] = '\0';
	}
	return len;
}

/* ---- SSE client (tests/http.h) ---- */

static void
stream_open(struct tu_stream *s, const char *last_event_id)
{
	ck_assert(tu_stream_open(s, E.port, "/v1/stream", last_event_id,
				 30000));
}

static void
publish(const char *type, const char *json, uint64_t expect_id)
{
	uint64_t id = 0;

	ck_assert_int_eq(httpd_sse_publish(E.hub, type, json, strlen(json), &id),
			 MK_OK);
	ck_assert_uint_eq(id, expect_id);
}

static bool
hub_has(void *arg)
{
	return httpd_sse_clients(E.hub) == *(const size_t *)arg;
}

/* Waits until the hub has n streams (a stream registers on the server's
 * thread, after curl connected). */
static void
wait_clients(size_t n)
{
	ck_assert_msg(tu_wait_until(hub_has, &n, 5000),
		      "hub has %zu streams, want %zu", httpd_sse_clients(E.hub),
		      n);
}

/* ================= tests ================= */

START_TEST(test_health_and_ready)
{
	struct tu_resp r = { 0 };
	char v[128];
	json_t *j;

	env_start();
	http1("GET", "/healthz", NULL, NULL, &r);
	ck_assert_int_eq(r.status, 200);
	ck_assert_str_eq(r.body, "{\"status\":\"ok\"}");
	ck_assert_str_eq(tu_resp_header(&r, "Content-Type", v, sizeof v),
			 "application/json");
	ck_assert_str_eq(tu_resp_header(&r, "Cache-Control", v, sizeof v),
			 "no-store");

	http1("GET", "/readyz", NULL, NULL, &r);
	ck_assert_int_eq(r.status, 200);
	ck_assert_str_eq(r.body, "{\"status\":\"ready\"}");
	atomic_store(&E.ready, false);
	http1("GET", "/readyz", NULL, NULL, &r);
	ck_assert_int_eq(r.status, 503);
	j = json_loads(r.body, 0, NULL);
	ck_assert_ptr_nonnull(j);
	ck_assert_str_eq(json_string_value(json_object_get(j, "status")),
			 "not_ready");
	ck_assert_int_eq(json_array_size(json_object_get(j, "reasons")), 2);
	ck_assert_str_eq(json_string_value(json_array_get(
				 json_object_get(j, "reasons"), 1)),
			 "instrument BTC-USD has no valid mark yet");
	json_decref(j);

	/* HEAD on a GET route: headers only. */
	http1("HEAD", "/healthz", NULL, NULL, &r);
	ck_assert_int_eq(r.status, 200);
	ck_assert_uint_eq(r.len, 0);
	ck_assert_str_eq(tu_resp_header(&r, "Content-Length", v, sizeof v), "15");
	tu_resp_free(&r);
}
END_TEST

START_TEST(test_routing_404_405)
{
	struct tu_resp r = { 0 };
	char v[128];

	env_start();
	http1("GET", "/nope", NULL, NULL, &r);
	assert_error(&r, 404, "not_found", "/nope");
	ck_assert_str_eq(r.body,
			 "{\"error\":{\"code\":\"not_found\",\"message\":\"no resource at /nope\"}}");
	http1("GET", "/v1/things/", NULL, NULL, &r); /* empty param: no */
	assert_error(&r, 404, "not_found", NULL);
	http1("GET", "/v1/things/a/b", NULL, NULL, &r);
	assert_error(&r, 404, "not_found", NULL);

	http1("DELETE", "/healthz", NULL, NULL, &r);
	assert_error(&r, 405, "method_not_allowed", "DELETE");
	ck_assert_str_eq(tu_resp_header(&r, "Allow", v, sizeof v), "GET, HEAD");
	http1("PATCH", "/v1/things/7", NULL, NULL, &r);
	assert_error(&r, 405, "method_not_allowed", NULL);
	ck_assert_str_eq(tu_resp_header(&r, "Allow", v, sizeof v),
			 "GET, HEAD, PUT, DELETE");
	http1("POST", "/v1/things/count", NULL, "{}", &r);
	ck_assert_int_eq(r.status, 405);
	ck_assert_str_eq(tu_resp_header(&r, "Allow", v, sizeof v),
			 "GET, HEAD, PUT, DELETE");
	http1("BREW", "/healthz", NULL, NULL, &r);
	assert_error(&r, 405, "method_not_allowed", "BREW");

	/* parameters, query, literal beats parameter */
	http1("GET", "/v1/things/abc%2Dd?x=1%202", NULL, NULL, &r);
	ck_assert_int_eq(r.status, 200);
	ck_assert_str_eq(r.body, "{\"id\":\"abc-d\",\"x\":\"1 2\"}");
	http1("GET", "/v1/things/count", NULL, NULL, &r);
	ck_assert_str_eq(r.body, "{\"count\":3}");
	http1("GET", "/v1/things/a?x", NULL, NULL, &r);
	ck_assert_str_eq(r.body, "{\"id\":\"a\",\"x\":\"\"}");
	http1("GET", "/v1/things/a", NULL, NULL, &r);
	ck_assert_str_eq(r.body, "{\"id\":\"a\",\"x\":null}");

	/* a handler that answers nothing gets a 500 in the API format */
	http1("GET", "/v1/noanswer", NULL, NULL, &r);
	assert_error(&r, 500, "internal", "no answer");
	tu_resp_free(&r);
}
END_TEST

START_TEST(test_json_bodies)
{
	static const char *const json[] = { "Content-Type: application/json",
					    NULL };
	static const char *const json_cs[] = {
		"Content-Type: Application/JSON ; charset=\"UTF-8\"", NULL
	};
	static const char *const latin[] = {
		"Content-Type: application/json; charset=iso-8859-1", NULL
	};
	static const char *const text[] = { "Content-Type: text/plain", NULL };
	struct tu_resp r = { 0 };
	char big[2048];

	env_start();
	http1("POST", "/v1/echo", json, "{\"a\":[1,2]}", &r);
	ck_assert_int_eq(r.status, 200);
	ck_assert_str_eq(r.body, "{\"ok\":true,\"got\":{\"a\":[1,2]}}");
	http1("POST", "/v1/echo", json_cs, "{\"a\":1}", &r);
	ck_assert_int_eq(r.status, 200);

	/* malformed: the message names line and column */
	http1("POST", "/v1/echo", json, "{\"a\": 1,\n  \"b\": }", &r);
	assert_error(&r, 400, "bad_request", "at line 2, column");
	http1("POST", "/v1/echo", json, "{\"size\":\"1\",\"size\":\"2\"}", &r);
	assert_error(&r, 400, "bad_request", "duplicate");
	http1("POST", "/v1/echo", json, "", &r);
	assert_error(&r, 400, "bad_request", "JSON request body");

	/* media type */
	http1("POST", "/v1/echo", text, "{\"a\":1}", &r);
	assert_error(&r, 415, "unsupported_media_type", "text/plain");
	http1("POST", "/v1/echo", latin, "{\"a\":1}", &r);
	assert_error(&r, 415, "unsupported_media_type", NULL);
	http1("POST", "/v1/echo", NULL, "{\"a\":1}", &r); /* curl's form type */
	assert_error(&r, 415, "unsupported_media_type", NULL);

	/* body cap (1024 in these tests) */
	memset(big, ' ', sizeof big - 1);
	big[0] = '[';
	big[sizeof big - 2] = ']';
	big[sizeof big - 1] = '\0';
	http1("POST", "/v1/echo", json, big, &r);
	assert_error(&r, 413, "payload_too_large", "1024");
	big[1024] = '\0';
	big[1023] = ']';
	http1("POST", "/v1/echo", json, big, &r);
	ck_assert_int_eq(r.status, 200);
	tu_resp_free(&r);
}
END_TEST

START_TEST(test_content_type_parser)
{
	ck_assert(httpd_content_type_is_json("application/json"));
	ck_assert(httpd_content_type_is_json(" application/JSON "));
	ck_assert(httpd_content_type_is_json("application/json;charset=utf-8"));
	ck_assert(httpd_content_type_is_json("application/json; charset=UTF8"));
	ck_assert(httpd_content_type_is_json("application/json; charset=\"utf-8\""));
	ck_assert(httpd_content_type_is_json("application/json; foo=bar; charset=utf-8"));
	ck_assert(!httpd_content_type_is_json(NULL));
	ck_assert(!httpd_content_type_is_json(""));
	ck_assert(!httpd_content_type_is_json("application/jsonx"));
	ck_assert(!httpd_content_type_is_json("application/json-patch+json"));
	ck_assert(!httpd_content_type_is_json("text/json"));
	ck_assert(!httpd_content_type_is_json("application/json; charset=latin1"));
	ck_assert(!httpd_content_type_is_json("application/json; charset"));
	ck_assert(!httpd_content_type_is_json("application/json; charset=\"utf-8"));
	ck_assert(!httpd_content_type_is_json("application/json junk"));
}
END_TEST

START_TEST(test_early_413_closes)
{
	char buf[4096];
	bool closed;
	int fd;

	env_start();
	/* A Content-Length far past the cap is refused before the body. */
	fd = raw_connect(0);
	raw_send(fd, "POST /v1/echo HTTP/1.1\r\nHost: x\r\n"
		     "Content-Type: application/json\r\n"
		     "Content-Length: 100000000\r\n\r\n{");
	raw_read(fd, buf, sizeof buf, NULL, 5000, &closed);
	ck_assert_msg(strncmp(buf, "HTTP/1.1 413", 12) == 0, "got: %s", buf);
	ck_assert_ptr_nonnull(strstr(buf, "payload_too_large"));
	ck_assert(closed);
	close(fd);
	/* the same for any answer chosen before a body too large to drop */
	fd = raw_connect(0);
	raw_send(fd, "PUT /v1/things/1 HTTP/1.1\r\nHost: x\r\n"
		     "Content-Type: application/json\r\n"
		     "Content-Length: 5000000\r\n\r\n{");
	raw_read(fd, buf, sizeof buf, NULL, 5000, &closed);
	ck_assert_msg(strncmp(buf, "HTTP/1.1 401", 12) == 0, "got: %s", buf);
	ck_assert(closed);
	close(fd);
}
END_TEST

START_TEST(test_auth_http)
{
	static const char *const none[] = { "Content-Type: application/json",
					    NULL };
	static const char *const basic[] = { "Content-Type: application/json",
					     "Authorization: Basic dXNlcjpwYXNz",
					     NULL };
	static const char *const empty[] = { "Content-Type: application/json",
					     "Authorization: Bearer ", NULL };
	static const char *const wrong[] = {
		"Content-Type: application/json",
		"Authorization: Bearer tok-AAAAAAAAAAAAAAAAAAAAAAAB", NULL
	};
	static const char *const wrong_text[] = {
		"Content-Type: text/plain",
		"Authorization: Bearer tok-AAAAAAAAAAAAAAAAAAAAAAAB", NULL
	};
	static const char *const good[] = { "Content-Type: application/json",
					    "Authorization: bearer  " TOKEN_B,
					    NULL };
	static const char *const good_a[] = { "Authorization: Bearer " TOKEN_A,
					      NULL };
	struct tu_resp r = { 0 };
	char v[128];

	env_start();
	http1("PUT", "/v1/things/1", none, "{\"x\":1}", &r);
	assert_error(&r, 401, "unauthorized", "Bearer");
	ck_assert_str_eq(tu_resp_header(&r, "WWW-Authenticate", v, sizeof v),
			 "Bearer realm=\"markd\"");
	http1("PUT", "/v1/things/1", basic, "{\"x\":1}", &r);
	assert_error(&r, 401, "unauthorized", "malformed");
	ck_assert_str_eq(tu_resp_header(&r, "WWW-Authenticate", v, sizeof v),
			 "Bearer realm=\"markd\", error=\"invalid_request\"");
	http1("PUT", "/v1/things/1", empty, "{\"x\":1}", &r);
	ck_assert_int_eq(r.status, 401);
	http1("PUT", "/v1/things/1", wrong, "{\"x\":1}", &r);
	assert_error(&r, 403, "forbidden", NULL);
	ck_assert_ptr_null(tu_resp_header(&r, "WWW-Authenticate", v, sizeof v));
	/* auth is checked before the media type */
	http1("PUT", "/v1/things/1", wrong_text, "{\"x\":1}", &r);
	ck_assert_int_eq(r.status, 403);
	http1("PUT", "/v1/things/1", good, "{\"x\":1}", &r);
	ck_assert_int_eq(r.status, 200);
	ck_assert_str_eq(r.body, "{\"ok\":true,\"got\":{\"x\":1}}");
	http1("DELETE", "/v1/things/9", good_a, NULL, &r);
	ck_assert_int_eq(r.status, 200);
	ck_assert_str_eq(r.body, "{\"deleted\":\"9\"}");
	/* reads stay open */
	http1("GET", "/v1/things/9", NULL, NULL, &r);
	ck_assert_int_eq(r.status, 200);
	tu_resp_free(&r);
}
END_TEST

START_TEST(test_token_files)
{
	struct httpd_auth *a = NULL;
	struct mk_err err;
	char path[TU_PATH_LEN + 8];

	snprintf(path, sizeof path, "%s/other", E.dir);
	ck_assert_int_eq(httpd_auth_load(path, &a, &err), MK_EIO);
	ck_assert_ptr_nonnull(strstr(err.msg, path));
	ck_assert_int_eq(err.sys_errno, ENOENT);

	put_file("other", "");
	ck_assert_int_eq(httpd_auth_load(path, &a, &err), MK_ECONFIG);
	ck_assert_ptr_nonnull(strstr(err.msg, "no token"));
	put_file("other", "# only a comment\n\n   \n");
	ck_assert_int_eq(httpd_auth_load(path, &a, &err), MK_ECONFIG);

	put_file("other", "# c\n" TOKEN_A "\nnot a token with spaces\n");
	ck_assert_int_eq(httpd_auth_load(path, &a, &err), MK_EPARSE);
	ck_assert_msg(strstr(err.msg, "line 3") != NULL, "%s", err.msg);
	ck_assert_ptr_null(strstr(err.msg, "spaces")); /* never echo tokens */
	put_file("other", "short\n");
	ck_assert_int_eq(httpd_auth_load(path, &a, &err), MK_EPARSE);
	ck_assert_msg(strstr(err.msg, "line 1") != NULL &&
		      strstr(err.msg, "16") != NULL, "%s", err.msg);
	ck_assert_int_eq(httpd_auth_load("", &a, &err), MK_ECONFIG);

	/* CRLF, comments, trailing '=' */
	put_file("other", TOKEN_A "\r\n# x\r\n" TOKEN_C "==  # c\r\n");
	ck_assert_int_eq(httpd_auth_load(path, &a, &err), MK_OK);
	ck_assert_uint_eq(httpd_auth_count(a), 2);
	ck_assert_int_eq(httpd_auth_check(a, "Bearer " TOKEN_A), HTTPD_AUTH_OK);
	ck_assert_int_eq(httpd_auth_check(a, "Bearer " TOKEN_C "=="),
			 HTTPD_AUTH_OK);
	ck_assert_int_eq(httpd_auth_check(a, "Bearer " TOKEN_C), HTTPD_AUTH_DENIED);
	ck_assert_int_eq(httpd_auth_check(a, "Bearer " TOKEN_A "A"),
			 HTTPD_AUTH_DENIED);
	ck_assert_int_eq(httpd_auth_check(a, NULL), HTTPD_AUTH_MISSING);
	ck_assert_int_eq(httpd_auth_check(a, "Bearer"), HTTPD_AUTH_MALFORMED);
	ck_assert_int_eq(httpd_auth_check(a, "Bearer a b"), HTTPD_AUTH_MALFORMED);
	ck_assert_int_eq(httpd_auth_check(a, "Token " TOKEN_A),
			 HTTPD_AUTH_MALFORMED);

	/* reload: new tokens replace old ones; a bad file keeps the old */
	put_file("other", TOKEN_B "\n");
	ck_assert_int_eq(httpd_auth_reload(a, &err), MK_OK);
	ck_assert_int_eq(httpd_auth_check(a, "Bearer " TOKEN_A), HTTPD_AUTH_DENIED);
	ck_assert_int_eq(httpd_auth_check(a, "Bearer " TOKEN_B), HTTPD_AUTH_OK);
	put_file("other", "# emptied by mistake\n");
	ck_assert_int_eq(httpd_auth_reload(a, &err), MK_ECONFIG);
	ck_assert_int_eq(httpd_auth_check(a, "Bearer " TOKEN_B), HTTPD_AUTH_OK);
	httpd_auth_destroy(a);
	httpd_auth_destroy(NULL);
}
END_TEST

START_TEST(test_keepalive_reused)
{
	static const char *const json[] = { "Content-Type: application/json",
					    NULL };
	CURL *h;
	struct tu_resp r = { 0 };
	int64_t t0;

	env_start();
	h = curl_easy_init();
	ck_assert(http(h, "GET", "/healthz", NULL, NULL, &r));
	ck_assert_int_eq(r.connects, 1);
	ck_assert(http(h, "GET", "/healthz", NULL, NULL, &r));
	ck_assert_int_eq(r.status, 200);
	ck_assert_int_eq(r.connects, 0);
	/* with a body, and after error answers chosen before the body */
	ck_assert(http(h, "POST", "/v1/echo", json, "{}", &r));
	ck_assert_int_eq(r.status, 200);
	ck_assert_int_eq(r.connects, 0);
	ck_assert(http(h, "PUT", "/v1/things/1", json, "{}", &r));
	ck_assert_int_eq(r.status, 401);
	ck_assert_int_eq(r.connects, 0);
	ck_assert(http(h, "GET", "/missing", NULL, NULL, &r));
	ck_assert_int_eq(r.status, 404);
	ck_assert_int_eq(r.connects, 0);
	ck_assert(http(h, "POST", "/v1/echo", json, "{\"a\":", &r));
	ck_assert_int_eq(r.status, 400);
	ck_assert_int_eq(r.connects, 0);
	ck_assert(http(h, "GET", "/healthz", NULL, NULL, &r));
	ck_assert_int_eq(r.connects, 0);

	/* Stopping with only an idle keep-alive connection does not wait
	 * for the drain timeout (3 s here). */
	t0 = tu_mono_ms();
	httpd_server_stop(E.srv);
	E.srv = NULL;
	ck_assert_int_lt(tu_mono_ms() - t0, 1500);
	curl_easy_cleanup(h);
	tu_resp_free(&r);
}
END_TEST

START_TEST(test_per_ip_limit)
{
	int a, b, c;
	char buf[4096];
	bool closed;
	int64_t deadline;

	E.cfg.per_ip_limit = 2;
	env_start();
	a = raw_connect(0);
	b = raw_connect(0);
	raw_send(a, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
	raw_read(a, buf, sizeof buf, "{\"status\":\"ok\"}", 5000, &closed);
	ck_assert_ptr_nonnull(strstr(buf, "200 OK"));
	raw_send(b, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
	raw_read(b, buf, sizeof buf, "{\"status\":\"ok\"}", 5000, &closed);
	ck_assert_ptr_nonnull(strstr(buf, "200 OK"));

	/* the third connection from the same address is refused */
	c = raw_connect(0);
	send(c, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n", 35, MSG_NOSIGNAL);
	raw_read(c, buf, sizeof buf, NULL, 5000, &closed);
	ck_assert(closed);
	ck_assert_ptr_null(strstr(buf, "HTTP/1.1"));
	close(c);

	/* the first two still work */
	raw_send(a, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
	raw_read(a, buf, sizeof buf, "{\"status\":\"ok\"}", 5000, &closed);
	ck_assert_ptr_nonnull(strstr(buf, "200 OK"));

	/* once one closes, a new one is let in (MHD notices the close on
	 * its next poll: retry within a deadline) */
	close(b);
	deadline = tu_mono_ms() + 5000;
	for (;;) {
		c = raw_connect(0);
		send(c, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n", 35,
		     MSG_NOSIGNAL);
		raw_read(c, buf, sizeof buf, "{\"status\":\"ok\"}", 2000, &closed);
		close(c);
		if (strstr(buf, "200 OK") != NULL)
			break;
		ck_assert_msg(tu_mono_ms() < deadline, "never let back in");
	}
	close(a);
}
END_TEST

START_TEST(test_idle_timeout)
{
	char buf[4096];
	bool closed;
	int64_t t0;
	int fd;

	E.cfg.connection_timeout_s = 1;
	env_start();
	/* a connection that never sends anything */
	t0 = tu_mono_ms();
	fd = raw_connect(0);
	raw_read(fd, buf, sizeof buf, NULL, 5000, &closed);
	ck_assert(closed);
	ck_assert_int_ge(tu_mono_ms() - t0, 900);
	ck_assert_uint_eq(strlen(buf), 0);
	close(fd);

	/* a kept-alive connection left idle after a request */
	fd = raw_connect(0);
	raw_send(fd, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
	raw_read(fd, buf, sizeof buf, "{\"status\":\"ok\"}", 5000, &closed);
	ck_assert(!closed);
	t0 = tu_mono_ms();
	raw_read(fd, buf, sizeof buf, NULL, 5000, &closed);
	ck_assert(closed);
	ck_assert_int_ge(tu_mono_ms() - t0, 900);
	close(fd);

	/* a request whose headers never finish (slowloris) */
	fd = raw_connect(0);
	raw_send(fd, "GET /healthz HTTP/1.1\r\nHost: x\r\n");
	raw_read(fd, buf, sizeof buf, NULL, 5000, &closed);
	ck_assert(closed);
	close(fd);
}
END_TEST

START_TEST(test_metrics_endpoint)
{
	CURL *h;
	struct tu_resp r = { 0 };
	char why[256], v[128];
	double x;

	env_start();
	h = curl_easy_init();
	for (int i = 0; i < 5; i++)
		ck_assert(http(h, "GET", "/healthz", NULL, NULL, &r));
	ck_assert(http(h, "GET", "/nope", NULL, NULL, &r));
	ck_assert(http(h, "GET", "/v1/things/x", NULL, NULL, &r));
	ck_assert(http(h, "GET", "/v1/things/y", NULL, NULL, &r));
	ck_assert(http(h, "GET", "/metrics", NULL, NULL, &r));
	ck_assert_int_eq(r.status, 200);
	ck_assert_str_eq(tu_resp_header(&r, "Content-Type", v, sizeof v),
			 "text/plain; version=0.0.4; charset=utf-8");
	ck_assert_msg(prom_check(r.body, why, sizeof why), "%s\n%s", why, r.body);
	ck_assert(prom_get(r.body, "markd_http_requests_total{route=\"/healthz\",code=\"200\"}") == 5);
	ck_assert(prom_get(r.body, "markd_http_requests_total{route=\"unmatched\",code=\"404\"}") == 1);
	ck_assert(prom_get(r.body, "markd_http_requests_total{route=\"/v1/things/{id}\",code=\"200\"}") == 2);
	ck_assert(prom_get(r.body, "markd_http_request_duration_seconds_count{route=\"/healthz\"}") == 5);
	ck_assert(prom_get(r.body, "markd_http_request_duration_seconds_bucket{route=\"/healthz\",le=\"+Inf\"}") == 5);
	x = prom_get(r.body, "markd_http_request_duration_seconds_sum{route=\"/healthz\"}");
	ck_assert(x > 0 && x < 10);
	ck_assert(prom_get(r.body, "markd_build_info{version=\"9.9.9-test\"}") == 1);
	ck_assert(prom_get(r.body, "markd_http_connections") == 1);
	ck_assert(prom_get(r.body, "markd_sse_clients") == 0);

	/* the scrape itself is counted by the next one */
	ck_assert(http(h, "GET", "/metrics", NULL, NULL, &r));
	ck_assert(prom_get(r.body, "markd_http_requests_total{route=\"/metrics\",code=\"200\"}") == 1);
	ck_assert_msg(prom_check(r.body, why, sizeof why), "%s", why);
	curl_easy_cleanup(h);
	tu_resp_free(&r);
}
END_TEST

static void
collect(void *arg, struct httpd_expo *w)
{
	static const char *const names[] = { "source" };
	static const char *const vals[] = { "bin\"ance" };

	(void)arg;
	httpd_expo_family(w, "markd_feed_up", "Whether a source is up.",
			  HTTPD_METRIC_GAUGE);
	httpd_expo_sample(w, "markd_feed_up", names, vals, 1, 1);
}

START_TEST(test_metrics_registry)
{
	static const char *const l2[] = { "route", "code" };
	static const char *const weird[] = { "a\"b\\c\nd", "200" };
	static const double b3[] = { 0.1, 0.5, 1 };
	static const double bad[] = { 1, 0.5 };
	struct httpd_metrics *m = httpd_metrics_create();
	struct httpd_family *c = NULL, *g = NULL, *h = NULL, *c2 = NULL;
	struct mk_err err;
	char *text = NULL, why[256], num[40];
	size_t len = 0;

	ck_assert_int_eq(httpd_metrics_family(m, HTTPD_METRIC_COUNTER,
					      "markd_x_total", "X.\nsecond \\ line",
					      l2, 2, NULL, 0, &c, &err), MK_OK);
	ck_assert_int_eq(httpd_metrics_family(m, HTTPD_METRIC_COUNTER,
					      "markd_x_total", "X.", l2, 2,
					      NULL, 0, &c2, &err), MK_OK);
	ck_assert_ptr_eq(c, c2);
	ck_assert_int_eq(httpd_metrics_family(m, HTTPD_METRIC_GAUGE,
					      "markd_x_total", "X.", l2, 2,
					      NULL, 0, &c2, &err), MK_ESTATE);
	ck_assert_int_eq(httpd_metrics_family(m, HTTPD_METRIC_GAUGE, "x_total",
					      "X.", NULL, 0, NULL, 0, &c2, &err),
			 MK_EINVAL);
	ck_assert_int_eq(httpd_metrics_family(m, HTTPD_METRIC_GAUGE,
					      "markd_y", "Y.",
					      (const char *const[]){ "le" }, 1,
					      NULL, 0, &c2, &err), MK_EINVAL);
	ck_assert_int_eq(httpd_metrics_family(m, HTTPD_METRIC_HISTOGRAM,
					      "markd_z_seconds", "Z.", NULL, 0,
					      bad, 2, &c2, &err), MK_EINVAL);
	ck_assert_int_eq(httpd_metrics_family(m, HTTPD_METRIC_GAUGE,
					      "markd_temp_celsius", "T.", NULL,
					      0, NULL, 0, &g, &err), MK_OK);
	ck_assert_int_eq(httpd_metrics_family(m, HTTPD_METRIC_HISTOGRAM,
					      "markd_lat_seconds", "L.", l2, 1,
					      b3, 3, &h, &err), MK_OK);
	ck_assert_int_eq(httpd_metrics_add_collector(m, collect, NULL), MK_OK);

	httpd_metric_add(c, weird, 2);
	httpd_metric_add(c, weird, 1);
	httpd_metric_add(c, weird, -5); /* ignored: counters only go up */
	httpd_metric_set(g, NULL, -1.5);
	httpd_metric_observe(h, l2, 0.05);
	httpd_metric_observe(h, l2, 0.1);  /* le is inclusive */
	httpd_metric_observe(h, l2, 0.7);
	httpd_metric_observe(h, l2, 99);
	ck_assert_int_eq(httpd_metrics_render(m, &text, &len), MK_OK);
	ck_assert_uint_eq(strlen(text), len);
	ck_assert_msg(prom_check(text, why, sizeof why), "%s\n%s", why, text);
	ck_assert_ptr_nonnull(strstr(text, "# HELP markd_x_total X.\\nsecond \\\\ line\n"));
	ck_assert_ptr_nonnull(strstr(text,
		"markd_x_total{route=\"a\\\"b\\\\c\\nd\",code=\"200\"} 3\n"));
	ck_assert_ptr_nonnull(strstr(text, "markd_temp_celsius -1.5\n"));
	ck_assert_ptr_nonnull(strstr(text, "markd_lat_seconds_bucket{route=\"route\",le=\"0.1\"} 2\n"));
	ck_assert_ptr_nonnull(strstr(text, "markd_lat_seconds_bucket{route=\"route\",le=\"0.5\"} 2\n"));
	ck_assert_ptr_nonnull(strstr(text, "markd_lat_seconds_bucket{route=\"route\",le=\"1\"} 3\n"));
	ck_assert_ptr_nonnull(strstr(text, "markd_lat_seconds_bucket{route=\"route\",le=\"+Inf\"} 4\n"));
	ck_assert_ptr_nonnull(strstr(text, "markd_lat_seconds_count{route=\"route\"} 4\n"));
	ck_assert_ptr_nonnull(strstr(text, "markd_feed_up{source=\"bin\\\"ance\"} 1\n"));
	free(text);

	/* the checker itself rejects what it should */
	ck_assert(!prom_check("markd_a 1\n", why, sizeof why));
	ck_assert(!prom_check("# HELP markd_a A\n# TYPE markd_a gauge\nmarkd_b 1\n",
			      why, sizeof why));
	ck_assert(!prom_check("# HELP markd_h H\n# TYPE markd_h histogram\n"
			      "markd_h_bucket{le=\"1\"} 2\nmarkd_h_bucket{le=\"+Inf\"} 1\n"
			      "markd_h_sum 1\nmarkd_h_count 1\n", why, sizeof why));
	ck_assert(!prom_check("# HELP markd_h H\n# TYPE markd_h histogram\n"
			      "markd_h_bucket{le=\"1\"} 1\nmarkd_h_sum 1\nmarkd_h_count 1\n",
			      why, sizeof why));
	ck_assert(!prom_check("# HELP markd_a A\n# TYPE markd_a gauge\nmarkd_a{x=\"\\q\"} 1\n",
			      why, sizeof why));

	ck_assert_str_eq(httpd_metric_format(0.1, num, sizeof num), "0.1");
	ck_assert_str_eq(httpd_metric_format(0.00025, num, sizeof num), "0.00025");
	ck_assert_str_eq(httpd_metric_format(12345678, num, sizeof num), "12345678");
	ck_assert_str_eq(httpd_metric_format(INFINITY, num, sizeof num), "+Inf");
	httpd_metrics_destroy(m);
	httpd_metrics_destroy(NULL);
}
END_TEST

START_TEST(test_sse_order_and_keepalive)
{
	struct tu_stream s;
	char v[128];
	const char *p1, *p2, *p3;

	E.sse.keepalive_ms = 150;
	env_start();
	stream_open(&s, NULL);
	ck_assert(tu_stream_wait(&s, "retry: 3000\n\n", 5000));
	ck_assert_str_eq(tu_resp_header(&s.r, "Content-Type", v, sizeof v),
			 "text/event-stream");
	wait_clients(1);
	publish("mark", "{\"symbol\":\"BTC-USD\",\"price\":\"1\"}", 1);
	publish("feed", "{\"source\":\"binance\"}", 2);
	publish("position", "{\"id\":\"p1\",\n\"state\":\"safe\"}", 3);
	ck_assert(tu_stream_wait(&s, "id: 3\n", 5000));
	ck_assert(tu_stream_wait(&s, "\"safe\"}\n\n", 5000));
	p1 = strstr(s.r.body, "id: 1\nevent: mark\ndata: {\"symbol\":\"BTC-USD\",\"price\":\"1\"}\n\n");
	p2 = strstr(s.r.body, "id: 2\nevent: feed\ndata: {\"source\":\"binance\"}\n\n");
	p3 = strstr(s.r.body, "id: 3\nevent: position\ndata: {\"id\":\"p1\",\ndata: \"state\":\"safe\"}\n\n");
	ck_assert_msg(p1 != NULL && p2 != NULL && p3 != NULL, "%s", s.r.body);
	ck_assert(p1 < p2 && p2 < p3);
	/* idle: keep-alive comments */
	ck_assert(tu_stream_wait(&s, ": keep-alive\n\n", 3000));
	publish("mark", "{\"n\":4}", 4);
	ck_assert(tu_stream_wait(&s, "id: 4\nevent: mark\ndata: {\"n\":4}\n\n", 5000));
	ck_assert_int_eq(httpd_sse_publish(E.hub, "bad type", "{}", 2, NULL),
			 MK_EINVAL);
	ck_assert_int_eq(httpd_sse_publish(E.hub, "mark", "", 0, NULL), MK_EINVAL);
	tu_stream_close(&s);
	wait_clients(0);
}
END_TEST

START_TEST(test_sse_resume)
{
	struct tu_stream s, t;

	E.sse.ring_capacity = 4;
	E.sse.max_lag = 4;
	env_start();
	publish("mark", "{\"n\":1}", 1);
	publish("mark", "{\"n\":2}", 2);
	publish("mark", "{\"n\":3}", 3);
	publish("mark", "{\"n\":4}", 4);

	/* resume after 2: gets 3 and 4, not 1 and 2 */
	stream_open(&s, "2");
	ck_assert(tu_stream_wait(&s, "id: 4\n", 5000));
	ck_assert(tu_stream_wait(&s, "{\"n\":4}\n\n", 5000));
	ck_assert_ptr_nonnull(strstr(s.r.body, "id: 3\nevent: mark\ndata: {\"n\":3}\n\n"));
	ck_assert_ptr_null(strstr(s.r.body, "id: 1\n"));
	ck_assert_ptr_null(strstr(s.r.body, "id: 2\n"));
	ck_assert_ptr_null(strstr(s.r.body, "missed"));
	publish("mark", "{\"n\":5}", 5);
	ck_assert(tu_stream_wait(&s, "id: 5\nevent: mark\ndata: {\"n\":5}\n\n", 5000));

	/* resuming after 0 needs 1, no longer held (the ring of 4 holds
	 * 2..5): start from now */
	stream_open(&t, "0");
	ck_assert(tu_stream_wait(&t, ": events missed", 5000));
	ck_assert_ptr_nonnull(strstr(t.r.body, "held: 2 to 5"));
	wait_clients(2);
	publish("mark", "{\"n\":6}", 6);
	ck_assert(tu_stream_wait(&t, "id: 6\n", 5000));
	ck_assert(tu_stream_wait(&s, "id: 6\n", 5000));
	ck_assert_ptr_null(strstr(t.r.body, "id: 5\n"));
	tu_stream_close(&t);

	/* a Last-Event-ID from the future (another server's ids) */
	stream_open(&t, "999");
	ck_assert(tu_stream_wait(&t, ": events missed", 5000));
	tu_stream_close(&t);
	stream_open(&t, "garbage");
	ck_assert(tu_stream_wait(&t, ": events missed", 5000));
	tu_stream_close(&t);
	/* resuming at the newest id: nothing missed, nothing replayed */
	stream_open(&t, "6");
	ck_assert(tu_stream_wait(&t, "retry:", 5000));
	wait_clients(2);
	publish("mark", "{\"n\":7}", 7);
	ck_assert(tu_stream_wait(&t, "id: 7\n", 5000));
	ck_assert_ptr_null(strstr(t.r.body, "id: 6\n"));
	ck_assert_ptr_null(strstr(t.r.body, "missed"));
	tu_stream_close(&t);
	tu_stream_close(&s);
}
END_TEST

START_TEST(test_sse_slow_client_dropped)
{
	static char data[8192];
	static char buf[1 << 16];
	bool closed;
	int fd;
	uint64_t last = 0;
	size_t n;

	E.sse.ring_capacity = 64;
	E.sse.max_lag = 16;
	env_start();
	fd = raw_connect(4096);
	raw_send(fd, "GET /v1/stream HTTP/1.0\r\n\r\n");
	raw_read(fd, buf, sizeof buf, "retry:", 5000, &closed);
	ck_assert_msg(strstr(buf, "retry:") != NULL, "%s", buf);
	wait_clients(1);
	/* far more than any socket buffer holds, while not reading */
	memset(data, 'x', sizeof data - 1);
	data[0] = '"';
	data[sizeof data - 2] = '"';
	for (uint64_t i = 1; i <= 4000; i++)
		ck_assert_int_eq(httpd_sse_publish(E.hub, "mark", data,
						   sizeof data - 1, NULL), MK_OK);
	/* now read everything: events, then the final comment, then EOF */
	n = raw_read(fd, buf, sizeof buf, NULL, 20000, &closed);
	ck_assert(closed);
	ck_assert_msg(strstr(buf, ": too slow:") != NULL, "tail: %s",
		      n > 300 ? buf + n - 300 : buf);
	/* ids seen in the tail increase */
	for (const char *p = strstr(buf, "\nid: "); p != NULL;
	     p = strstr(p + 1, "\nid: ")) {
		uint64_t id = strtoull(p + 5, NULL, 10);

		ck_assert_uint_gt(id, last);
		last = id;
	}
	ck_assert_uint_lt(last, 4000);
	close(fd);
	wait_clients(0);
	ck_assert_int_eq(httpd_sse_publish(E.hub, "mark", "{}", 2, NULL), MK_OK);
}
END_TEST

START_TEST(test_sse_limits)
{
	struct tu_stream s, t;
	struct tu_resp r = { 0 };

	E.sse.max_clients = 1;
	env_start();
	stream_open(&s, NULL);
	ck_assert(tu_stream_wait(&s, "retry:", 5000));
	wait_clients(1);
	stream_open(&t, NULL);
	ck_assert(tu_stream_wait(&t, NULL, 5000));
	ck_assert_int_eq(t.result, CURLE_OK);
	curl_easy_getinfo(t.h, CURLINFO_RESPONSE_CODE, &r.status);
	ck_assert_int_eq(r.status, 503);
	ck_assert_ptr_nonnull(strstr(t.r.body, "service_unavailable"));
	tu_stream_close(&t);
	tu_stream_close(&s);
}
END_TEST

struct stopper {
	pthread_t th;
	atomic_bool done;
	int64_t took_ms;
};

static void *
stop_main(void *arg)
{
	struct stopper *st = arg;
	int64_t t0 = tu_mono_ms();

	httpd_server_stop(E.srv);
	st->took_ms = tu_mono_ms() - t0;
	atomic_store(&st->done, true);
	return NULL;
}

static bool
two_in_flight(void *arg)
{
	(void)arg;
	return httpd_server_in_flight(E.srv) >= 2;
}

START_TEST(test_clean_stop_in_flight)
{
	struct tu_stream s;
	struct stopper st;
	char buf[4096];
	bool closed;
	int fd;

	env_start();
	stream_open(&s, NULL);
	ck_assert(tu_stream_wait(&s, "retry:", 5000));
	wait_clients(1);
	/* a request in flight: headers and half of its body sent */
	fd = raw_connect(0);
	raw_send(fd, "POST /v1/echo HTTP/1.1\r\nHost: x\r\n"
		     "Content-Type: application/json\r\n"
		     "Content-Length: 14\r\n\r\n{\"half\":");
	ck_assert(tu_wait_until(two_in_flight, NULL, 5000));
	memset(&st, 0, sizeof st);
	atomic_init(&st.done, false);
	ck_assert_int_eq(pthread_create(&st.th, NULL, stop_main, &st), 0);
	/* the stream ends with a final comment: stop has begun draining */
	ck_assert(tu_stream_wait(&s, ": server shutting down\n\n", 5000));
	ck_assert(tu_stream_wait(&s, NULL, 5000));
	ck_assert_int_eq(s.result, CURLE_OK);
	ck_assert(!atomic_load(&st.done));
	/* the request in flight still gets its answer */
	raw_send(fd, "\"yes\"}");
	raw_read(fd, buf, sizeof buf, NULL, 5000, &closed);
	ck_assert_msg(strncmp(buf, "HTTP/1.1 200", 12) == 0, "%s", buf);
	ck_assert_ptr_nonnull(strstr(buf, "{\"ok\":true,\"got\":{\"half\":\"yes\"}}"));
	ck_assert_ptr_nonnull(strstr(buf, "Connection: close"));
	ck_assert(closed);
	pthread_join(st.th, NULL);
	ck_assert_int_lt(st.took_ms, 2500); /* did not sit out the drain */
	E.srv = NULL;
	close(fd);
	tu_stream_close(&s);
}
END_TEST

START_TEST(test_shared_buffer)
{
	CURL *h;
	struct tu_resp r = { 0 };

	env_start();
	h = curl_easy_init();
	for (int i = 0; i < 3; i++) {
		ck_assert(http(h, "GET", "/v1/shared", NULL, NULL, &r));
		ck_assert_int_eq(r.status, 200);
		ck_assert_uint_eq(r.len, 1u << 20);
		/* each answer is the snapshot current when it was asked
		 * for, intact although it was replaced (and its owner's
		 * reference dropped) while MHD was still sending it */
		for (size_t k = 0; k < r.len; k += 4099)
			ck_assert_int_eq(r.body[k], 'a' + (int)((k + (size_t)i) % 26));
	}
	curl_easy_cleanup(h);
	tu_resp_free(&r);
}
END_TEST

/* 256 concurrent keep-alive clients, twice: every one is answered in
 * time. A smoke test of the connection limits and the poll loop; it does
 * not reproduce MHD 0.9.75's epoll stall at 128*k ready connections
 * (perf-baseline.md section 4.5; with MHD_USE_EPOLL this test still
 * passes), which needs wrk's timing (the benchmarks' stall test). */
START_TEST(test_many_connections_at_once)
{
	enum { N = 256 };
	static CURL *hs[N];
	static struct tu_resp rs[N];
	CURLM *m = curl_multi_init();
	char url[128];
	int running = 1, done = 0, left;
	int64_t deadline;
	CURLMsg *msg;

	E.cfg.per_ip_limit = 600;
	E.cfg.connection_limit = 600;
	env_start();
	snprintf(url, sizeof url, "http://127.0.0.1:%u/healthz", (unsigned)E.port);
	curl_multi_setopt(m, CURLMOPT_MAX_TOTAL_CONNECTIONS, (long)N);
	curl_multi_setopt(m, CURLMOPT_MAXCONNECTS, (long)N);
	for (int round = 0; round < 2; round++) {
		for (int i = 0; i < N; i++) {
			if (round == 0)
				hs[i] = curl_easy_init();
			curl_easy_setopt(hs[i], CURLOPT_URL, url);
			curl_easy_setopt(hs[i], CURLOPT_WRITEFUNCTION, tu_http_on_body);
			curl_easy_setopt(hs[i], CURLOPT_WRITEDATA, &rs[i]);
			curl_easy_setopt(hs[i], CURLOPT_NOSIGNAL, 1L);
			curl_easy_setopt(hs[i], CURLOPT_TIMEOUT_MS, 20000L);
			curl_multi_add_handle(m, hs[i]);
		}
		done = 0;
		running = 1;
		deadline = tu_mono_ms() + 20000;
		while (done < N) {
			ck_assert_msg(tu_mono_ms() < deadline, "only %d of %d answered",
				      done, N);
			curl_multi_perform(m, &running);
			while ((msg = curl_multi_info_read(m, &left)) != NULL)
				if (msg->msg == CURLMSG_DONE) {
					long code = 0;

					ck_assert_int_eq(msg->data.result, CURLE_OK);
					curl_easy_getinfo(msg->easy_handle,
							  CURLINFO_RESPONSE_CODE, &code);
					ck_assert_int_eq(code, 200);
					curl_multi_remove_handle(m, msg->easy_handle);
					done++;
				}
			if (done < N)
				curl_multi_poll(m, NULL, 0, 50, NULL);
		}
	}
	for (int i = 0; i < N; i++) {
		curl_easy_cleanup(hs[i]);
		tu_resp_free(&rs[i]);
	}
	curl_multi_cleanup(m);
}
END_TEST

/* What a log sink was given, one "level route msg" line per call. */
struct log_capture {
	pthread_mutex_t mu;
	char text[4096];
};

static void
capture_log(void *arg, enum httpd_log_level level, const char *route,
	    const char *msg)
{
	struct log_capture *c = arg;
	size_t n;

	pthread_mutex_lock(&c->mu);
	n = strlen(c->text);
	snprintf(c->text + n, sizeof c->text - n, "%s %s %s\n",
		 level == HTTPD_LOG_ERROR ? "error" : "warn",
		 route != NULL ? route : "-", msg);
	pthread_mutex_unlock(&c->mu);
}

static bool
captured(struct log_capture *c, const char *needle)
{
	bool yes;

	pthread_mutex_lock(&c->mu);
	yes = strstr(c->text, needle) != NULL;
	pthread_mutex_unlock(&c->mu);
	return yes;
}

/* With a log sink, the server's own lines go there (the daemon's sink
 * writes them in its log format), not to stderr. */
START_TEST(test_log_sink)
{
	static struct log_capture cap;
	struct httpd_server_config cfg;
	struct httpd_server *srv2 = NULL;
	struct tu_resp r = { 0 };
	struct mk_err err;

	memset(&cap, 0, sizeof cap);
	pthread_mutex_init(&cap.mu, NULL);
	E.cfg.log = capture_log;
	E.cfg.log_arg = &cap;
	env_start();
	/* a handler that answers nothing */
	http1("GET", "/v1/noanswer", NULL, NULL, &r);
	assert_error(&r, 500, "internal", "no answer");
	ck_assert_msg(captured(&cap, "error /v1/noanswer handler gave no answer\n"),
		      "captured: %s", cap.text);
	/* libmicrohttpd's own message: the port is taken */
	cfg = E.cfg;
	cfg.port = E.port;
	ck_assert_int_eq(httpd_server_start(&cfg, &srv2, &err), MK_EIO);
	ck_assert_msg(captured(&cap, "warn - "), "captured: %s", cap.text);
	tu_resp_free(&r);
	pthread_mutex_destroy(&cap.mu);
}
END_TEST

START_TEST(test_router_and_start_errors)
{
	struct httpd_router *r = httpd_router_create();
	struct httpd_server_config cfg;
	struct httpd_server *srv = NULL, *srv2 = NULL;
	struct mk_err err;
	char allow[64];

	ck_assert_int_eq(httpd_router_add(r, HTTPD_GET, "v1/x", 0, h_count, NULL,
					  &err), MK_EINVAL);
	ck_assert_int_eq(httpd_router_add(r, HTTPD_GET, "/v1//x", 0, h_count,
					  NULL, &err), MK_EINVAL);
	ck_assert_int_eq(httpd_router_add(r, HTTPD_GET, "/v1/{Bad}", 0, h_count,
					  NULL, &err), MK_EINVAL);
	ck_assert_int_eq(httpd_router_add(r, HTTPD_GET, "/v1/{a}/{a}", 0, h_count,
					  NULL, &err), MK_EINVAL);
	ck_assert_ptr_nonnull(strstr(err.msg, "twice"));
	ck_assert_int_eq(httpd_router_add(r, HTTPD_GET, "/v1/a{b}", 0, h_count,
					  NULL, &err), MK_EINVAL);
	ck_assert_int_eq(httpd_router_add(r, HTTPD_GET | HTTPD_PUT, "/v1/a", 0,
					  h_count, NULL, &err), MK_EINVAL);
	ck_assert_int_eq(httpd_router_add(r, HTTPD_GET, "/v1/{id}", 0, h_count,
					  NULL, &err), MK_OK);
	ck_assert_int_eq(httpd_router_add(r, HTTPD_GET, "/v1/{other}", 0, h_count,
					  NULL, &err), MK_ESTATE);
	ck_assert_int_eq(httpd_router_add(r, HTTPD_PUT, "/v1/{other}",
					  HTTPD_ROUTE_AUTH, h_count, NULL, &err),
			 MK_OK);
	ck_assert_str_eq(httpd_allow_header(HTTPD_DELETE | HTTPD_GET | HTTPD_HEAD,
					    allow, sizeof allow),
			 "GET, HEAD, DELETE");
	ck_assert_int_eq(httpd_method_parse("get"), 0);
	ck_assert_int_eq(httpd_method_parse("PATCH"), HTTPD_PATCH);

	httpd_server_config_default(&cfg);
	cfg.router = r;
	/* a route needs tokens and none are configured */
	ck_assert_int_eq(httpd_server_start(&cfg, &srv, &err), MK_ECONFIG);
	ck_assert_ptr_nonnull(strstr(err.msg, "tokens"));
	cfg.auth = E.auth;
	cfg.bind_addr = "localhost";
	ck_assert_int_eq(httpd_server_start(&cfg, &srv, &err), MK_ECONFIG);
	ck_assert_ptr_nonnull(strstr(err.msg, "http.bind"));
	cfg.bind_addr = NULL;
	cfg.connection_timeout_s = 0;
	ck_assert_int_eq(httpd_server_start(&cfg, &srv, &err), MK_ECONFIG);
	cfg.connection_timeout_s = 10;
	ck_assert_int_eq(httpd_server_start(&cfg, &srv, &err), MK_OK);
	/* the same port twice */
	cfg.port = httpd_server_port(srv);
	ck_assert_int_eq(httpd_server_start(&cfg, &srv2, &err), MK_EIO);
	ck_assert_msg(strstr(err.msg, "cannot start") != NULL, "%s", err.msg);
	httpd_server_stop(srv);
	httpd_server_stop(NULL);
	/* IPv6 loopback, when the machine has it */
	cfg.port = 0;
	cfg.bind_addr = "::1";
	if (httpd_server_start(&cfg, &srv, &err) == MK_OK)
		httpd_server_stop(srv);
	httpd_router_destroy(r);
}
END_TEST

START_TEST(test_error_bodies)
{
	char *b;

	for (int e = 0; e < HTTPD_ERR_COUNT; e++) {
		ck_assert_uint_ge(httpd_error_status((enum httpd_error)e), 400);
		ck_assert_str_ne(httpd_error_code((enum httpd_error)e), "");
	}
	ck_assert_uint_eq(httpd_error_status(HTTPD_ERR_CONFLICT), 409);
	ck_assert_uint_eq(httpd_error_status(HTTPD_ERR_TOO_MANY_REQUESTS), 429);
	ck_assert_str_eq(httpd_error_code(HTTPD_ERR_UNSUPPORTED_MEDIA_TYPE),
			 "unsupported_media_type");
	b = httpd_error_body(HTTPD_ERR_BAD_REQUEST, "size", "size must be > 0",
			     NULL);
	ck_assert_str_eq(b, "{\"error\":{\"code\":\"bad_request\",\"message\":\"size must be > 0\",\"field\":\"size\"}}");
	free(b);
	b = httpd_error_body(HTTPD_ERR_NOT_FOUND, NULL, "no \"x\"\xff", NULL);
	ck_assert_str_eq(b, "{\"error\":{\"code\":\"not_found\",\"message\":\"no \\\"x\\\"?\"}}");
	free(b);
}
END_TEST

static Suite *
httpd_suite(void)
{
	Suite *s = suite_create("httpd");
	TCase *tc = tcase_create("server");

	tcase_add_checked_fixture(tc, env_setup, env_teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_health_and_ready);
	tcase_add_test(tc, test_routing_404_405);
	tcase_add_test(tc, test_json_bodies);
	tcase_add_test(tc, test_content_type_parser);
	tcase_add_test(tc, test_early_413_closes);
	tcase_add_test(tc, test_auth_http);
	tcase_add_test(tc, test_token_files);
	tcase_add_test(tc, test_keepalive_reused);
	tcase_add_test(tc, test_per_ip_limit);
	tcase_add_test(tc, test_idle_timeout);
	tcase_add_test(tc, test_metrics_endpoint);
	tcase_add_test(tc, test_metrics_registry);
	tcase_add_test(tc, test_sse_order_and_keepalive);
	tcase_add_test(tc, test_sse_resume);
	tcase_add_test(tc, test_sse_slow_client_dropped);
	tcase_add_test(tc, test_sse_limits);
	tcase_add_test(tc, test_clean_stop_in_flight);
	tcase_add_test(tc, test_shared_buffer);
	tcase_add_test(tc, test_many_connections_at_once);
	tcase_add_test(tc, test_router_and_start_errors);
	tcase_add_test(tc, test_error_bodies);
	tcase_add_test(tc, test_log_sink);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr;
	int failed;

	/* What the daemon's main() does before any thread starts. */
	signal(SIGPIPE, SIG_IGN);
	curl_global_init(CURL_GLOBAL_ALL);
	sr = srunner_create(httpd_suite());
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	curl_global_cleanup();
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
