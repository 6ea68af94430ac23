/*
 * api.h - the read side of the HTTP API that the daemon serves from the
 * feeds thread's views (daemon/feeds_thread.h):
 *
 *   GET /v1/marks[?symbols=A,B]   every mark, or the ones listed
 *   GET /v1/marks/{symbol}        one mark
 *   GET /v1/feeds                 feed health of every polled source
 *   GET /v1/feeds/{source}        one source
 *
 * plus the Prometheus collectors of marks and sources and the readiness
 * check behind GET /readyz. Marks are served from bytes rendered once
 * per snapshot (no JSON is built per request, except for a ?symbols=
 * subset, which is a concatenation); feed health is read live from the
 * health table and rendered per request (not a hot path).
 *
 * Thread safety: handlers, collectors and the readiness check run on
 * MHD's thread and never wait for the feeds thread. The struct md_api is
 * filled before the server starts and not changed while it runs.
 */
#ifndef MARKD_DAEMON_API_H
#define MARKD_DAEMON_API_H

#include "httpd/routes.h"

struct httpd_expo;
struct httpd_req;
struct md_feeds;

struct md_api {
	struct md_feeds *feeds;        /* set before the server starts */
	httpd_ready_fn extra_ready;    /* optional further checks */
	void *extra_ready_arg;
};

/* Route handlers; arg is the struct md_api. */
void md_api_marks(struct httpd_req *req, void *arg);
void md_api_mark(struct httpd_req *req, void *arg);
void md_api_feeds(struct httpd_req *req, void *arg);
void md_api_feed(struct httpd_req *req, void *arg);

/* Metrics collectors (httpd_metrics_add_collector); arg is the struct
 * md_api. Marks: markd_mark_*; sources: markd_source_*. */
void md_api_collect_marks(void *arg, struct httpd_expo *w);
void md_api_collect_sources(void *arg, struct httpd_expo *w);

/* Readiness (httpd_ready_fn): the feeds thread runs, every instrument
 * has had a valid mark since start, and extra_ready agrees. */
void md_api_ready(void *arg, struct httpd_readiness *r);

/* Most symbols accepted in one ?symbols= list. */
#define MD_API_MAX_SYMBOLS 256

#endif
