/*
 * httpd_int.h - private to httpd/: the request context shared by the
 * server, the router, the reply functions and the SSE hub, and the only
 * place where MHD types meet our own.
 *
 * Thread safety: everything here runs on MHD's thread unless said
 * otherwise.
 */
#ifndef MARKD_HTTPD_HTTPD_INT_H
#define MARKD_HTTPD_HTTPD_INT_H

#include <jansson.h>
#include <microhttpd.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "httpd/router.h"

#if MHD_VERSION < 0x00097302
#error "libmicrohttpd >= 0.9.73 needed (buffer responses with a free callback)"
#endif

struct httpd_server;

/* One segment of a route pattern. */
struct httpd_seg {
	char *text;   /* literal text, or the parameter name */
	bool param;
};

struct httpd_route {
	enum httpd_method method;
	unsigned flags;
	char *pattern;
	struct httpd_seg *segs;
	size_t nseg;
	httpd_handler_fn fn;
	void *arg;
};

/* Outcome of a lookup. */
enum httpd_lookup {
	HTTPD_LOOKUP_OK = 0,
	HTTPD_LOOKUP_NO_PATH,    /* 404 */
	HTTPD_LOOKUP_NO_METHOD,  /* 405; allowed says which methods */
};

struct httpd_param {
	const char *name;   /* borrowed from the route */
	const char *value;  /* points into the scratch path copy */
};

struct httpd_match {
	const struct httpd_route *route;
	unsigned allowed;   /* methods the path has (for 405) */
	size_t nparams;
	struct httpd_param params[HTTPD_MAX_PARAMS];
};

/*
 * Looks up method (a bit; 0 for unknown methods) and path. scratch is a
 * writable copy of path that the parameter values will point into (it is
 * split in place), so it must outlive the match.
 */
enum httpd_lookup httpd_router_lookup(const struct httpd_router *r,
				      enum httpd_method method,
				      char *scratch, struct httpd_match *m);

/* One HTTP request, from the access handler's first call to MHD's
 * completion notification. */
struct httpd_req {
	struct httpd_server *srv;
	struct MHD_Connection *conn;
	const char *method;        /* MHD's, valid until completion */
	const char *path;          /* MHD's, valid until completion */
	enum httpd_method method_id;
	char *scratch;             /* path copy split by the router */
	struct httpd_match match;
	bool matched;

	/* Body. */
	char *body;
	size_t body_len;
	size_t body_alloc;
	size_t discarded;          /* bytes dropped while an answer was
				    * already chosen */
	bool over_cap;
	json_t *json;

	/* Answer. */
	struct MHD_Response *resp;
	unsigned status;
	bool queued;

	uint64_t t_start_ns;       /* monotonic, at the first call */
};

/* Sets the answer (replacing and destroying any previous one). resp may be
 * NULL after an allocation failure: the answer becomes the server's
 * built-in 500 when it has one. */
void httpd_req_set_response(struct httpd_req *req, unsigned status,
			    struct MHD_Response *resp);

/* Adds Cache-Control: no-store and, when ctype is not NULL, Content-Type.
 * Returns false when MHD refused a header. */
bool httpd_response_headers(struct MHD_Response *resp, const char *ctype);

/* Appends body bytes under cap; false (and over_cap set) beyond it. */
bool httpd_req_append_body(struct httpd_req *req, const char *data,
			   size_t len, size_t cap);

/* Frees what the request owns (not the request itself). */
void httpd_req_release(struct httpd_req *req);

/* CLOCK_MONOTONIC in nanoseconds / milliseconds. */
uint64_t httpd_now_ns(void);
uint64_t httpd_now_ms(void);

/* *ts = CLOCK_MONOTONIC now + ms, for timed waits on condition variables
 * created with pthread_condattr_setclock(CLOCK_MONOTONIC). */
struct timespec;
void httpd_deadline_ms(struct timespec *ts, unsigned ms);

#endif
