/*
 * request.c - request accessors, body accumulation, Content-Type check and
 * JSON body parsing.
 */
#include "config.h"

#include "httpd/request.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "httpd/httpd_int.h"

uint64_t
httpd_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * UINT64_C(1000000000) +
	       (uint64_t)ts.tv_nsec;
}

uint64_t
httpd_now_ms(void)
{
	return httpd_now_ns() / UINT64_C(1000000);
}

void
httpd_deadline_ms(struct timespec *ts, unsigned ms)
{
	clock_gettime(CLOCK_MONOTONIC, ts);
	ts->tv_sec += (time_t)(ms / 1000);
	ts->tv_nsec += (long)(ms % 1000) * 1000000L;
	if (ts->tv_nsec >= 1000000000L) {
		ts->tv_sec++;
		ts->tv_nsec -= 1000000000L;
	}
}

const char *
httpd_req_method(const struct httpd_req *req)
{
	return req->method;
}

enum httpd_method
httpd_req_method_id(const struct httpd_req *req)
{
	return req->method_id;
}

const char *
httpd_req_path(const struct httpd_req *req)
{
	return req->path;
}

const char *
httpd_req_route(const struct httpd_req *req)
{
	return req->match.route != NULL ? req->match.route->pattern : NULL;
}

const char *
httpd_req_param(const struct httpd_req *req, const char *name)
{
	for (size_t i = 0; i < req->match.nparams; i++)
		if (strcmp(req->match.params[i].name, name) == 0)
			return req->match.params[i].value;
	return NULL;
}

const char *
httpd_req_query(const struct httpd_req *req, const char *name)
{
	const char *v = MHD_lookup_connection_value(req->conn,
						    MHD_GET_ARGUMENT_KIND, name);

	/* MHD gives NULL for a key present without '=': report it as "". */
	if (v == NULL &&
	    MHD_lookup_connection_value_n(req->conn, MHD_GET_ARGUMENT_KIND,
					  name, strlen(name), NULL,
					  NULL) == MHD_YES)
		return "";
	return v;
}

const char *
httpd_req_header(const struct httpd_req *req, const char *name)
{
	return MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND, name);
}

const char *
httpd_req_body(const struct httpd_req *req, size_t *len)
{
	if (len != NULL)
		*len = req->body_len;
	return req->body_len > 0 ? req->body : NULL;
}

json_t *
httpd_req_json(const struct httpd_req *req)
{
	return req->json;
}

bool
httpd_req_append_body(struct httpd_req *req, const char *data, size_t len,
		      size_t cap)
{
	if (req->over_cap || len > cap || req->body_len > cap - len) {
		req->over_cap = true;
		return false;
	}
	if (req->body_len + len > req->body_alloc) {
		size_t n = req->body_alloc > 0 ? req->body_alloc : 1024;
		char *nb;

		while (n < req->body_len + len)
			n = n > cap / 2 ? cap : n * 2;
		nb = realloc(req->body, n);
		if (nb == NULL) {
			/* Treated like an oversized body: the answer is an
			 * error either way and the bytes are dropped. */
			req->over_cap = true;
			return false;
		}
		req->body = nb;
		req->body_alloc = n;
	}
	memcpy(req->body + req->body_len, data, len);
	req->body_len += len;
	return true;
}

void
httpd_req_release(struct httpd_req *req)
{
	if (req == NULL)
		return;
	if (req->resp != NULL)
		MHD_destroy_response(req->resp);
	req->resp = NULL;
	json_decref(req->json);
	req->json = NULL;
	free(req->body);
	req->body = NULL;
	free(req->scratch);
	req->scratch = NULL;
}

/* ---- Content-Type ---- */

static const char *
skip_ows(const char *p)
{
	while (*p == ' ' || *p == '\t')
		p++;
	return p;
}

static bool
is_tchar(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       (c >= '0' && c <= '9') || (c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

bool
httpd_content_type_is_json(const char *value)
{
	static const char mt[] = "application/json";
	const char *p;

	if (value == NULL)
		return false;
	p = skip_ows(value);
	if (strncasecmp(p, mt, sizeof mt - 1) != 0)
		return false;
	p = skip_ows(p + sizeof mt - 1);
	while (*p == ';') {
		const char *name, *val;
		size_t nlen, vlen;
		char vbuf[32];
		size_t vout = 0;

		p = skip_ows(p + 1);
		name = p;
		while (is_tchar(*p))
			p++;
		nlen = (size_t)(p - name);
		if (nlen == 0 || *p != '=')
			return false;
		p++;
		val = p;
		if (*p == '"') {
			/* quoted-string with \-escapes */
			for (p++; *p != '"'; p++) {
				if (*p == '\0')
					return false;
				if (*p == '\\' && *++p == '\0')
					return false;
				if (vout < sizeof vbuf - 1)
					vbuf[vout++] = *p;
			}
			p++;
		} else {
			while (is_tchar(*p))
				p++;
			vlen = (size_t)(p - val);
			if (vlen == 0)
				return false;
			for (size_t i = 0; i < vlen && vout < sizeof vbuf - 1; i++)
				vbuf[vout++] = val[i];
		}
		vbuf[vout] = '\0';
		if (nlen == 7 && strncasecmp(name, "charset", 7) == 0 &&
		    strcasecmp(vbuf, "utf-8") != 0 && strcasecmp(vbuf, "utf8") != 0)
			return false;
		p = skip_ows(p);
	}
	return *p == '\0';
}

/* ---- JSON bodies ---- */

enum mk_status
httpd_parse_json_body(const char *body, size_t len, json_t **out,
		      struct mk_err *err)
{
	json_error_t je;
	json_t *j;

	*out = NULL;
	if (len == 0)
		return mk_err_set(err, MK_EPARSE, "request body is empty");
	j = json_loadb(body, len, JSON_REJECT_DUPLICATES, &je);
	if (j == NULL)
		return mk_err_set(err, MK_EPARSE,
				  "malformed JSON body at line %d, column %d: %s",
				  je.line, je.column, je.text);
	*out = j;
	return MK_OK;
}
