/*
 * response.h - how a handler answers: JSON errors in the one format of the
 * API, JSON documents, bytes built per request, and shared immutable byte
 * buffers ("rendered once per snapshot") that stay valid while MHD sends
 * them.
 *
 * Every answer made here carries "Cache-Control: no-store"; JSON answers
 * carry "Content-Type: application/json". An error body is exactly
 *   {"error":{"code":"bad_request","message":"...","field":"size"}}
 * with "field" left out when there is none.
 *
 * A handler calls one httpd_reply_* function; calling another replaces the
 * previous answer (the last one wins). A reply function that fails (out of
 * memory) leaves a 500 answer in place when it can, and the server closes
 * the connection when even that is impossible.
 *
 * Thread safety: httpd_reply_* belong to MHD's thread (inside a handler).
 * struct httpd_buf is immutable once created; its reference count is
 * atomic, so references may be taken and dropped from any thread.
 */
#ifndef MARKD_HTTPD_RESPONSE_H
#define MARKD_HTTPD_RESPONSE_H

#include <jansson.h>
#include <stddef.h>

#include "aggregator/status.h"

struct httpd_req;

/* The error codes of the API, each with its HTTP status. */
enum httpd_error {
	HTTPD_ERR_BAD_REQUEST = 0,        /* 400 */
	HTTPD_ERR_UNAUTHORIZED,           /* 401 */
	HTTPD_ERR_FORBIDDEN,              /* 403 */
	HTTPD_ERR_NOT_FOUND,              /* 404 */
	HTTPD_ERR_METHOD_NOT_ALLOWED,     /* 405 */
	HTTPD_ERR_CONFLICT,               /* 409 */
	HTTPD_ERR_PAYLOAD_TOO_LARGE,      /* 413 */
	HTTPD_ERR_UNSUPPORTED_MEDIA_TYPE, /* 415 */
	HTTPD_ERR_TOO_MANY_REQUESTS,      /* 429 */
	HTTPD_ERR_SERVICE_UNAVAILABLE,    /* 503 */
	HTTPD_ERR_INTERNAL,               /* 500 */
};
#define HTTPD_ERR_COUNT 11

/* Longest error message kept, in bytes (longer ones are cut). */
#define HTTPD_ERR_MSG_MAX 512

/* "bad_request" etc.; "internal" for values out of range. */
const char *httpd_error_code(enum httpd_error e);

/* 400 etc.; 500 for values out of range. */
unsigned httpd_error_status(enum httpd_error e);

/*
 * Renders the error body into a new malloc'd NUL-terminated string (*len
 * set when len is not NULL). field may be NULL. Bytes of message that are
 * not valid UTF-8 are replaced by '?'. Returns NULL when out of memory.
 */
char *httpd_error_body(enum httpd_error e, const char *field,
		       const char *message, size_t *len);

/* Answers with an API error; field may be NULL; fmt is printf-style. */
enum mk_status httpd_reply_error(struct httpd_req *req, enum httpd_error e,
				 const char *field, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

/* Answers status with the compact rendering of body. Steals body (also
 * on failure). */
enum mk_status httpd_reply_json(struct httpd_req *req, unsigned status,
				json_t *body);

/* Answers status with a copy of len bytes of content_type. */
enum mk_status httpd_reply_copy(struct httpd_req *req, unsigned status,
				const char *content_type, const void *bytes,
				size_t len);

/* Answers status with bytes, a malloc'd buffer whose ownership passes to
 * the server (freed with free() once sent, or at once on failure). */
enum mk_status httpd_reply_take(struct httpd_req *req, unsigned status,
				const char *content_type, char *bytes,
				size_t len);

/*
 * Answers status with len bytes owned by someone else: release(arg) is
 * called exactly once when MHD no longer needs them (after sending, or at
 * once on failure). The bytes must not change before that. This is the
 * hook for serving a snapshot's pre-rendered bytes: take a snapshot
 * reference, pass the snapshot as arg and its release function. release
 * may be NULL for bytes in static storage.
 */
enum mk_status httpd_reply_borrowed(struct httpd_req *req, unsigned status,
				    const char *content_type,
				    const void *bytes, size_t len,
				    void (*release)(void *arg), void *arg);

/* Adds a header to the answer already chosen. MK_ESTATE when there is no
 * answer yet, MK_EINVAL when MHD refuses the header. */
enum mk_status httpd_reply_header(struct httpd_req *req, const char *name,
				  const char *value);

/* ---- shared, reference-counted, immutable bytes ---- */

struct httpd_buf;

/* A new buffer holding a copy of len bytes, with one reference for the
 * caller. NULL when out of memory. */
struct httpd_buf *httpd_buf_new(const void *bytes, size_t len);

/* A new buffer that adopts bytes (malloc'd; freed with free() when the
 * last reference goes), with one reference for the caller. On failure
 * returns NULL and frees bytes. */
struct httpd_buf *httpd_buf_take(char *bytes, size_t len);

/* Takes one more reference; returns b. */
struct httpd_buf *httpd_buf_ref(struct httpd_buf *b);

/* Drops one reference; the last one frees. NULL is accepted. */
void httpd_buf_unref(struct httpd_buf *b);

const char *httpd_buf_data(const struct httpd_buf *b);
size_t httpd_buf_len(const struct httpd_buf *b);

/* Answers status with the bytes of b, holding a reference until MHD has
 * sent them; the caller keeps its own reference. */
enum mk_status httpd_reply_buf(struct httpd_req *req, unsigned status,
			       const char *content_type, struct httpd_buf *b);

#endif
