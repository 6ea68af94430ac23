/*
 * request.h - what a route handler can read about the request it answers.
 *
 * The server builds one struct httpd_req per HTTP request (opaque here),
 * accumulates the body under a cap, checks Content-Type and parses JSON
 * bodies for HTTPD_ROUTE_BODY routes before the handler runs. The checks
 * are also exposed as plain functions so they can be tested and reused.
 *
 * Thread safety: a request belongs to MHD's thread; use it only inside the
 * handler call. Ownership: every pointer returned here is borrowed and
 * valid until the handler returns (copy what you keep).
 */
#ifndef MARKD_HTTPD_REQUEST_H
#define MARKD_HTTPD_REQUEST_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "aggregator/status.h"
#include "httpd/router.h"

struct httpd_req;

/* The request method as sent ("GET"), and as a bit (0 for unknown ones). */
const char *httpd_req_method(const struct httpd_req *req);
enum httpd_method httpd_req_method_id(const struct httpd_req *req);

/* The path, percent-decoded by MHD, without the query string. */
const char *httpd_req_path(const struct httpd_req *req);

/* The pattern of the matched route ("/v1/marks/{symbol}"), or NULL. */
const char *httpd_req_route(const struct httpd_req *req);

/* The value of path parameter name ({name} in the pattern), or NULL. */
const char *httpd_req_param(const struct httpd_req *req, const char *name);

/* The first value of query parameter name (decoded), or NULL when absent;
 * "" for "?name" or "?name=". */
const char *httpd_req_query(const struct httpd_req *req, const char *name);

/* The first value of header name (case-insensitive), or NULL. */
const char *httpd_req_header(const struct httpd_req *req, const char *name);

/* The raw body and its length (not NUL-terminated; NULL when empty). */
const char *httpd_req_body(const struct httpd_req *req, size_t *len);

/* The parsed JSON body of an HTTPD_ROUTE_BODY route (borrowed), else NULL. */
json_t *httpd_req_json(const struct httpd_req *req);

/*
 * Whether a Content-Type value announces JSON: media type
 * application/json (case-insensitive) with optional parameters, where a
 * charset parameter, if present, must be utf-8. NULL gives false.
 */
bool httpd_content_type_is_json(const char *value);

/*
 * Parses body (len bytes, no NUL needed) as one JSON object or array with
 * duplicate keys rejected. On success *out is a new reference. On failure
 * returns MK_EPARSE with err->msg naming line and column, e.g.
 * "malformed JSON body at line 2, column 5: ...".
 */
enum mk_status httpd_parse_json_body(const char *body, size_t len,
				     json_t **out, struct mk_err *err);

#endif
