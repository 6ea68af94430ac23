/*
 * router.h - the route table of the HTTP server: method + path pattern ->
 * handler.
 *
 * A pattern is an absolute path whose segments are literals or {name}
 * parameters that match exactly one non-empty segment ("/v1/marks/{symbol}").
 * Lookup prefers literal segments over parameters, left to right, so
 * "/v1/positions/count" wins over "/v1/positions/{id}". A path that matches
 * no pattern answers 404; a path that matches only under other methods
 * answers 405 with an Allow header. A GET route also answers HEAD (MHD sends
 * the headers of the GET answer without its body) unless a HEAD route for
 * the same pattern exists.
 *
 * Thread safety: build the table from one thread, then hand it to
 * httpd_server_start; from then on it is read-only (lookups from MHD's
 * thread) until the server is stopped. Handlers run on MHD's single thread
 * and must not block: they read immutable snapshots or copy under a short
 * lock, and never do network or disk I/O.
 *
 * Ownership: the router copies the pattern; the handler argument is
 * borrowed and must outlive the server.
 */
#ifndef MARKD_HTTPD_ROUTER_H
#define MARKD_HTTPD_ROUTER_H

#include <stddef.h>

#include "aggregator/status.h"

struct httpd_req;
struct httpd_router;

/* HTTP methods as bits, so a set of methods is a mask. */
enum httpd_method {
	HTTPD_GET = 1u << 0,
	HTTPD_HEAD = 1u << 1,
	HTTPD_POST = 1u << 2,
	HTTPD_PUT = 1u << 3,
	HTTPD_PATCH = 1u << 4,
	HTTPD_DELETE = 1u << 5,
	HTTPD_OPTIONS = 1u << 6,
};

/* Route flags. */
#define HTTPD_ROUTE_AUTH   0x1u /* needs "Authorization: Bearer <token>" */
#define HTTPD_ROUTE_BODY   0x2u /* takes a JSON body: Content-Type checked
				 * (415), size capped (413), parsed (400)
				 * before the handler runs */
#define HTTPD_ROUTE_STREAM 0x4u /* long-lived answer (SSE): left out of
				 * the request duration histogram */

/* Most {param} segments in one pattern. */
#define HTTPD_MAX_PARAMS 8

/*
 * A route handler. It runs on MHD's thread once the whole request (body
 * included) has arrived and every check implied by the route flags has
 * passed. It answers by calling exactly one httpd_reply_* function
 * (response.h) on req; a handler that answers nothing gets a 500.
 */
typedef void (*httpd_handler_fn)(struct httpd_req *req, void *arg);

/* A new empty route table, or NULL when out of memory. */
struct httpd_router *httpd_router_create(void);

/* Frees the table. NULL is accepted. The server using it must be stopped. */
void httpd_router_destroy(struct httpd_router *r);

/*
 * Adds a route. pattern: "/" or "/seg/seg/..." where a segment is a literal
 * (no '{', '}', '?', '#' and not empty) or "{name}" with name of
 * [a-z_][a-z0-9_]*, unique in the pattern, at most HTTPD_MAX_PARAMS of
 * them. The pattern also serves as the route's metrics label.
 * Errors: MK_EINVAL for a bad pattern, method or flags (err names what),
 * MK_ESTATE when the same method and path shape is already registered,
 * MK_ENOMEM.
 */
enum mk_status httpd_router_add(struct httpd_router *r,
				enum httpd_method method, const char *pattern,
				unsigned flags, httpd_handler_fn fn, void *arg,
				struct mk_err *err);

/* Whether any route carries flag (used to insist on tokens at start). */
int httpd_router_has_flag(const struct httpd_router *r, unsigned flag);

/* "GET" etc. for one method bit; "?" for anything else. */
const char *httpd_method_name(enum httpd_method m);

/* The method bit for a method name (case-sensitive, as HTTP says), or 0
 * when the method is not one of the above. */
enum httpd_method httpd_method_parse(const char *name);

/*
 * Writes the methods of mask as an Allow header value ("GET, HEAD, PUT")
 * into buf (cap bytes, always NUL-terminated). Returns buf.
 */
const char *httpd_allow_header(unsigned mask, char *buf, size_t cap);

#endif
