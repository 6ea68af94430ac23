/*
 * http.h - real HTTP to 127.0.0.1 with libcurl, for the integration
 * suites: one request (status, body NUL-terminated and parsed as JSON when
 * it is JSON, Content-Type, Allow, any other response header), on a fresh
 * handle or on one the caller keeps for keep-alive; and a Server-Sent
 * Events stream read while the test goes on (curl multi).
 *
 * Header-only (static inline), like testutil.h. Every transfer has a
 * timeout and every wait a deadline, so nothing here can hang a test.
 */
#ifndef MARKD_TESTS_HTTP_H
#define MARKD_TESTS_HTTP_H

#include <curl/curl.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "tests/proc.h"

struct tu_resp {
	long status;             /* 0 when no response came */
	CURLcode code;           /* the transfer's outcome */
	char *body;              /* never NULL after tu_http */
	size_t len;
	json_t *j;               /* the body as JSON, or NULL */
	char ctype[128];         /* Content-Type */
	char allow[128];         /* Allow */
	char hdrs[8192];         /* the header lines as received (cut) */
	size_t hlen;
	long connects;           /* connections the transfer opened (0 on
				  * a kept-alive one) */
};

static inline size_t
tu_http_on_body(char *p, size_t sz, size_t n, void *arg)
{
	struct tu_resp *r = arg;
	char *nb = realloc(r->body, r->len + sz * n + 1);

	if (nb == NULL)
		return 0;
	r->body = nb;
	memcpy(r->body + r->len, p, sz * n);
	r->len += sz * n;
	r->body[r->len] = '\0';
	return sz * n;
}

static inline void
tu_http_header_value(const char *line, size_t n, const char *name,
		     char *out, size_t cap)
{
	size_t k = strlen(name);

	if (n > k && strncasecmp(line, name, k) == 0 && line[k] == ':') {
		const char *v = line + k + 1;
		size_t vn = n - k - 1;

		while (vn > 0 && (*v == ' ' || *v == '\t')) {
			v++;
			vn--;
		}
		while (vn > 0 && (v[vn - 1] == '\r' || v[vn - 1] == '\n'))
			vn--;
		snprintf(out, cap, "%.*s", (int)vn, v);
	}
}

static inline size_t
tu_http_on_header(char *p, size_t sz, size_t n, void *arg)
{
	struct tu_resp *r = arg;
	size_t keep = sz * n;

	if (keep > sizeof(r->hdrs) - 1 - r->hlen)
		keep = sizeof(r->hdrs) - 1 - r->hlen;
	memcpy(r->hdrs + r->hlen, p, keep);
	r->hlen += keep;
	r->hdrs[r->hlen] = '\0';
	tu_http_header_value(p, sz * n, "Content-Type", r->ctype,
			     sizeof(r->ctype));
	tu_http_header_value(p, sz * n, "Allow", r->allow, sizeof(r->allow));
	return sz * n;
}

static inline void
tu_resp_free(struct tu_resp *r)
{
	free(r->body);
	json_decref(r->j);
	memset(r, 0, sizeof(*r));
}

/* The value of response header name (its first occurrence) into buf,
 * surrounding blanks dropped; NULL when the response had none. */
static inline const char *
tu_resp_header(const struct tu_resp *r, const char *name, char *buf,
	       size_t cap)
{
	size_t k = strlen(name);

	buf[0] = '\0';
	for (const char *line = r->hdrs; *line != '\0';) {
		size_t n = strcspn(line, "\n");

		n += line[n] == '\n';
		if (n > k && strncasecmp(line, name, k) == 0 && line[k] == ':') {
			tu_http_header_value(line, n, name, buf, cap);
			return buf;
		}
		line += n;
	}
	return NULL;
}

/*
 * method (NULL: GET; a GET may have a body) to url with body (NULL: none)
 * and extra request headers (NULL-terminated list, or NULL), within
 * timeout_ms, on handle h (reset first; its open connection is kept, so
 * requests on one handle share a kept-alive connection) or, when h is
 * NULL, on a handle of its own. Frees what r held before. True when a
 * response came.
 */
static inline bool
tu_http_url(CURL *h, const char *url, const char *method, const char *body,
	    const char *const *headers, long timeout_ms, struct tu_resp *r)
{
	CURL *own = h == NULL ? curl_easy_init() : NULL;
	struct curl_slist *sl = NULL;

	tu_resp_free(r);
	r->code = CURLE_FAILED_INIT;
	if (h == NULL && (h = own) == NULL)
		return false;
	curl_easy_reset(h);
	sl = curl_slist_append(sl, "Expect:");
	while (headers != NULL && *headers != NULL)
		sl = curl_slist_append(sl, *headers++);
	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, sl);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, tu_http_on_body);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, r);
	curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, tu_http_on_header);
	curl_easy_setopt(h, CURLOPT_HEADERDATA, r);
	curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, timeout_ms);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	if (method != NULL && strcmp(method, "HEAD") == 0)
		curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
	else if (method != NULL && (strcmp(method, "GET") != 0 || body != NULL))
		curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
	if (body != NULL) {
		curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
		curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
	}
	r->code = curl_easy_perform(h);
	curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &r->status);
	curl_easy_getinfo(h, CURLINFO_NUM_CONNECTS, &r->connects);
	curl_slist_free_all(sl);
	if (own != NULL)
		curl_easy_cleanup(own);
	if (r->body == NULL && (r->body = calloc(1, 1)) == NULL)
		abort();
	r->j = json_loadb(r->body, r->len, 0, NULL);
	return r->code == CURLE_OK;
}

/* tu_http_url for path on 127.0.0.1:port, on handle h (NULL: its own). */
static inline bool
tu_http_on(CURL *h, int port, const char *method, const char *path,
	   const char *body, const char *const *headers, long timeout_ms,
	   struct tu_resp *r)
{
	char url[1024];

	snprintf(url, sizeof(url), "http://127.0.0.1:%d%s", port, path);
	return tu_http_url(h, url, method, body, headers, timeout_ms, r);
}

/* One request on a handle of its own: tu_http_on with h NULL. */
static inline bool
tu_http(int port, const char *method, const char *path, const char *body,
	const char *const *headers, long timeout_ms, struct tu_resp *r)
{
	return tu_http_on(NULL, port, method, path, body, headers, timeout_ms,
			  r);
}

/* The string member key of the JSON body ("" when absent). */
static inline const char *
tu_resp_str(const struct tu_resp *r, const char *key)
{
	const char *s = json_string_value(json_object_get(r->j, key));

	return s != NULL ? s : "";
}

/* ---- Server-Sent Events ---- */

/* A GET of a stream, driven a little at a time by tu_stream_wait. */
struct tu_stream {
	CURLM *m;
	CURL *h;
	struct curl_slist *sl;
	struct tu_resp r;        /* the body so far (grows) and the headers */
	bool done;               /* the transfer ended */
	CURLcode result;         /* how, once done */
};

/*
 * Opens GET path on 127.0.0.1:port with "Accept: text/event-stream" and,
 * when last_event_id is not NULL, "Last-Event-ID"; curl ends the transfer
 * after timeout_ms in all. Nothing is read until tu_stream_wait. False
 * when curl could not set it up (close it all the same).
 */
static inline bool
tu_stream_open(struct tu_stream *s, int port, const char *path,
	       const char *last_event_id, long timeout_ms)
{
	char url[1024], hdr[128];

	memset(s, 0, sizeof(*s));
	s->m = curl_multi_init();
	s->h = curl_easy_init();
	if (s->m == NULL || s->h == NULL)
		return false;
	snprintf(url, sizeof(url), "http://127.0.0.1:%d%s", port, path);
	if (last_event_id != NULL) {
		snprintf(hdr, sizeof(hdr), "Last-Event-ID: %s", last_event_id);
		s->sl = curl_slist_append(s->sl, hdr);
	}
	s->sl = curl_slist_append(s->sl, "Accept: text/event-stream");
	curl_easy_setopt(s->h, CURLOPT_URL, url);
	curl_easy_setopt(s->h, CURLOPT_HTTPHEADER, s->sl);
	curl_easy_setopt(s->h, CURLOPT_WRITEFUNCTION, tu_http_on_body);
	curl_easy_setopt(s->h, CURLOPT_WRITEDATA, &s->r);
	curl_easy_setopt(s->h, CURLOPT_HEADERFUNCTION, tu_http_on_header);
	curl_easy_setopt(s->h, CURLOPT_HEADERDATA, &s->r);
	curl_easy_setopt(s->h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(s->h, CURLOPT_TIMEOUT_MS, timeout_ms);
	return curl_multi_add_handle(s->m, s->h) == CURLM_OK;
}

/* Reads what has arrived, waiting at most wait_ms for more. */
static inline void
tu_stream_pump(struct tu_stream *s, int wait_ms)
{
	int running = 0, left;
	CURLMsg *msg;

	if (s->done)
		return;
	curl_multi_perform(s->m, &running);
	while ((msg = curl_multi_info_read(s->m, &left)) != NULL)
		if (msg->msg == CURLMSG_DONE) {
			s->done = true;
			s->result = msg->data.result;
		}
	if (!s->done)
		curl_multi_poll(s->m, NULL, 0, wait_ms, NULL);
}

/* Reads until needle is in the body (needle NULL: until the transfer
 * ends), for at most timeout_ms; whether that happened. */
static inline bool
tu_stream_wait(struct tu_stream *s, const char *needle, int timeout_ms)
{
	int64_t deadline = tu_mono_ms() + timeout_ms;

	for (;;) {
		if (needle != NULL && s->r.body != NULL &&
		    strstr(s->r.body, needle) != NULL)
			return true;
		if (s->done)
			return needle == NULL;
		if (tu_mono_ms() >= deadline)
			return false;
		tu_stream_pump(s, 20);
	}
}

static inline void
tu_stream_close(struct tu_stream *s)
{
	if (s->m != NULL && s->h != NULL)
		curl_multi_remove_handle(s->m, s->h);
	curl_easy_cleanup(s->h);
	curl_multi_cleanup(s->m);
	curl_slist_free_all(s->sl);
	tu_resp_free(&s->r);
	memset(s, 0, sizeof(*s));
}

/* main() for a suite of real HTTP requests: libcurl set up around one
 * run of suite_fn's suite; exits non-zero when any test failed. */
#define TU_MAIN_CURL(suite_fn)                                             \
	int main(void)                                                     \
	{                                                                  \
		SRunner *sr;                                               \
		int failed;                                                \
		curl_global_init(CURL_GLOBAL_ALL);                         \
		sr = srunner_create(suite_fn());                           \
		srunner_run_all(sr, CK_NORMAL);                            \
		failed = srunner_ntests_failed(sr);                        \
		srunner_free(sr);                                          \
		curl_global_cleanup();                                     \
		return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;          \
	}

#endif
