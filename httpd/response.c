/*
 * response.c - reply functions, the error body format and shared buffers.
 */
#include "config.h"

#include "httpd/response.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "httpd/httpd_int.h"

static const struct {
	const char *code;
	unsigned status;
} errors[HTTPD_ERR_COUNT] = {
	[HTTPD_ERR_BAD_REQUEST] = { "bad_request", 400 },
	[HTTPD_ERR_UNAUTHORIZED] = { "unauthorized", 401 },
	[HTTPD_ERR_FORBIDDEN] = { "forbidden", 403 },
	[HTTPD_ERR_NOT_FOUND] = { "not_found", 404 },
	[HTTPD_ERR_METHOD_NOT_ALLOWED] = { "method_not_allowed", 405 },
	[HTTPD_ERR_CONFLICT] = { "conflict", 409 },
	[HTTPD_ERR_PAYLOAD_TOO_LARGE] = { "payload_too_large", 413 },
	[HTTPD_ERR_UNSUPPORTED_MEDIA_TYPE] = { "unsupported_media_type", 415 },
	[HTTPD_ERR_TOO_MANY_REQUESTS] = { "too_many_requests", 429 },
	[HTTPD_ERR_SERVICE_UNAVAILABLE] = { "service_unavailable", 503 },
	[HTTPD_ERR_INTERNAL] = { "internal", 500 },
};

const char *
httpd_error_code(enum httpd_error e)
{
	return (unsigned)e < HTTPD_ERR_COUNT ? errors[e].code : "internal";
}

unsigned
httpd_error_status(enum httpd_error e)
{
	return (unsigned)e < HTTPD_ERR_COUNT ? errors[e].status : 500;
}

/* A JSON string of s; bytes that are not valid UTF-8 become '?'. */
static json_t *
string_lossy(const char *s)
{
	json_t *j = json_string(s);
	char *copy;

	if (j != NULL || s == NULL)
		return j;
	copy = strdup(s);
	if (copy == NULL)
		return NULL;
	/* Crude but safe: keep ASCII, replace every other byte. */
	for (char *p = copy; *p != '\0'; p++)
		if ((unsigned char)*p >= 0x80)
			*p = '?';
	j = json_string(copy);
	free(copy);
	return j;
}

char *
httpd_error_body(enum httpd_error e, const char *field, const char *message,
		 size_t *len)
{
	json_t *root = json_object(), *inner = json_object();
	char *out = NULL;
	size_t n;

	if (root == NULL || inner == NULL) {
		json_decref(inner);
		goto out;
	}
	if (json_object_set_new(root, "error", inner) != 0 ||
	    json_object_set_new(inner, "code",
				json_string(httpd_error_code(e))) != 0 ||
	    json_object_set_new(inner, "message",
				string_lossy(message != NULL ? message : "")) != 0)
		goto out;
	if (field != NULL &&
	    json_object_set_new(inner, "field", string_lossy(field)) != 0)
		goto out;
	/* malloc'd (not jansson's allocator), as the header promises */
	n = json_dumpb(root, NULL, 0, JSON_COMPACT);
	if (n == 0 || (out = malloc(n + 1)) == NULL)
		goto out;
	if (json_dumpb(root, out, n, JSON_COMPACT) != n) {
		free(out);
		out = NULL;
		goto out;
	}
	out[n] = '\0';
	if (len != NULL)
		*len = n;
out:
	json_decref(root);
	return out;
}

bool
httpd_response_headers(struct MHD_Response *resp, const char *ctype)
{
	if (MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL,
				    "no-store") != MHD_YES)
		return false;
	if (ctype != NULL &&
	    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE,
				    ctype) != MHD_YES)
		return false;
	return true;
}

/* Finishes a reply: headers, then hands it to the request. */
static enum mk_status
finish(struct httpd_req *req, unsigned status, struct MHD_Response *resp,
       const char *ctype)
{
	if (resp == NULL) {
		httpd_req_set_response(req, 500, NULL);
		return MK_ENOMEM;
	}
	if (!httpd_response_headers(resp, ctype)) {
		MHD_destroy_response(resp);
		httpd_req_set_response(req, 500, NULL);
		return MK_ENOMEM;
	}
	httpd_req_set_response(req, status, resp);
	return MK_OK;
}

static void
free_cb(void *p)
{
	free(p);
}

enum mk_status
httpd_reply_take(struct httpd_req *req, unsigned status,
		 const char *content_type, char *bytes, size_t len)
{
	struct MHD_Response *resp =
		MHD_create_response_from_buffer_with_free_callback(len, bytes,
								   free_cb);

	if (resp == NULL)
		free(bytes);
	return finish(req, status, resp, content_type);
}

enum mk_status
httpd_reply_copy(struct httpd_req *req, unsigned status,
		 const char *content_type, const void *bytes, size_t len)
{
	char *copy = malloc(len > 0 ? len : 1);

	if (copy == NULL)
		return finish(req, status, NULL, content_type);
	if (len > 0)
		memcpy(copy, bytes, len);
	return httpd_reply_take(req, status, content_type, copy, len);
}

enum mk_status
httpd_reply_error(struct httpd_req *req, enum httpd_error e,
		  const char *field, const char *fmt, ...)
{
	char msg[HTTPD_ERR_MSG_MAX];
	va_list ap;
	char *body;
	size_t len = 0;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	body = httpd_error_body(e, field, msg, &len);
	if (body == NULL)
		return finish(req, 500, NULL, NULL);
	return httpd_reply_take(req, httpd_error_status(e), "application/json",
				body, len);
}

/* jansson's own free, in case someone installed other allocators. */
static void
json_free_cb(void *p)
{
	json_free_t jfree;

	json_get_alloc_funcs(NULL, &jfree);
	jfree(p);
}

enum mk_status
httpd_reply_json(struct httpd_req *req, unsigned status, json_t *body)
{
	char *s = body != NULL ? json_dumps(body, JSON_COMPACT) : NULL;
	struct MHD_Response *resp = NULL;

	json_decref(body);
	if (s != NULL) {
		resp = MHD_create_response_from_buffer_with_free_callback(
			strlen(s), s, json_free_cb);
		if (resp == NULL)
			json_free_cb(s);
	}
	return finish(req, status, resp, "application/json");
}

enum mk_status
httpd_reply_borrowed(struct httpd_req *req, unsigned status,
		     const char *content_type, const void *bytes, size_t len,
		     void (*release)(void *arg), void *arg)
{
	/* MHD takes a non-const pointer but never writes through it. */
	struct MHD_Response *resp =
		MHD_create_response_from_buffer_with_free_callback_cls(
			len, (void *)(uintptr_t)bytes, release, arg);

	if (resp == NULL && release != NULL)
		release(arg);
	return finish(req, status, resp, content_type);
}

enum mk_status
httpd_reply_header(struct httpd_req *req, const char *name, const char *value)
{
	if (req->resp == NULL)
		return MK_ESTATE;
	return MHD_add_response_header(req->resp, name, value) == MHD_YES
		       ? MK_OK : MK_EINVAL;
}

/* ---- shared buffers ---- */

struct httpd_buf {
	atomic_size_t refs;
	size_t len;
	char *data;        /* inline[] or adopted */
	char inline_[];
};

struct httpd_buf *
httpd_buf_new(const void *bytes, size_t len)
{
	struct httpd_buf *b = malloc(sizeof *b + len + 1);

	if (b == NULL)
		return NULL;
	atomic_init(&b->refs, 1);
	b->len = len;
	b->data = b->inline_;
	if (len > 0)
		memcpy(b->data, bytes, len);
	b->data[len] = '\0';
	return b;
}

struct httpd_buf *
httpd_buf_take(char *bytes, size_t len)
{
	struct httpd_buf *b = malloc(sizeof *b);

	if (b == NULL) {
		free(bytes);
		return NULL;
	}
	atomic_init(&b->refs, 1);
	b->len = len;
	b->data = bytes;
	return b;
}

struct httpd_buf *
httpd_buf_ref(struct httpd_buf *b)
{
	atomic_fetch_add_explicit(&b->refs, 1, memory_order_relaxed);
	return b;
}

void
httpd_buf_unref(struct httpd_buf *b)
{
	if (b == NULL)
		return;
	if (atomic_fetch_sub_explicit(&b->refs, 1, memory_order_acq_rel) != 1)
		return;
	if (b->data != b->inline_)
		free(b->data);
	free(b);
}

const char *
httpd_buf_data(const struct httpd_buf *b)
{
	return b->data;
}

size_t
httpd_buf_len(const struct httpd_buf *b)
{
	return b->len;
}

static void
buf_release_cb(void *arg)
{
	httpd_buf_unref(arg);
}

enum mk_status
httpd_reply_buf(struct httpd_req *req, unsigned status,
		const char *content_type, struct httpd_buf *b)
{
	return httpd_reply_borrowed(req, status, content_type, b->data, b->len,
				    buf_release_cb, httpd_buf_ref(b));
}
