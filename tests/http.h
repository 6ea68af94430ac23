/*
 * http.h - one real HTTP request to 127.0.0.1 with libcurl, for the
 * integration suites: status, body (NUL-terminated, parsed as JSON when it
 * is JSON), Content-Type and Allow.
 *
 * Header-only (static inline), like testutil.h. Every transfer has a
 * timeout, so no request can hang a test.
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

struct tu_resp {
	long status;             /* 0 when no response came */
	CURLcode code;           /* the transfer's outcome */
	char *body;              /* never NULL after tu_http */
	size_t len;
	json_t *j;               /* the body as JSON, or NULL */
	char ctype[128];         /* Content-Type */
	char allow[128];         /* Allow */
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

/*
 * method (NULL: GET) path on 127.0.0.1:port with body (NULL: none) and
 * extra request headers (NULL-terminated list, or NULL), within
 * timeout_ms. Frees what r held before. True when a response came.
 */
static inline bool
tu_http(int port, const char *method, const char *path, const char *body,
	const char *const *headers, long timeout_ms, struct tu_resp *r)
{
	CURL *h = curl_easy_init();
	struct curl_slist *sl = NULL;
	char url[1024];

	tu_resp_free(r);
	r->code = CURLE_FAILED_INIT;
	if (h == NULL)
		return false;
	snprintf(url, sizeof(url), "http://127.0.0.1:%d%s", port, path);
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
	if (method != NULL && strcmp(method, "GET") != 0)
		curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
	if (method != NULL && strcmp(method, "HEAD") == 0)
		curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
	if (body != NULL) {
		curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
		curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
	}
	r->code = curl_easy_perform(h);
	curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &r->status);
	curl_slist_free_all(sl);
	curl_easy_cleanup(h);
	if (r->body == NULL && (r->body = calloc(1, 1)) == NULL)
		abort();
	r->j = json_loadb(r->body, r->len, 0, NULL);
	return r->code == CURLE_OK;
}

/* The string member key of the JSON body ("" when absent). */
static inline const char *
tu_resp_str(const struct tu_resp *r, const char *key)
{
	const char *s = json_string_value(json_object_get(r->j, key));

	return s != NULL ? s : "";
}

#endif
