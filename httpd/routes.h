/*
 * routes.h - registration of the API's route groups on a router.
 *
 * Each routes_*.c file adds one group; the daemon's main() calls the ones
 * it wants before starting the server. Handlers follow router.h: they run
 * on MHD's thread and never block.
 *
 * Thread safety: registration happens before the server starts. The
 * readiness callback runs on MHD's thread for every GET /readyz, so it
 * must be quick and must not block (read flags or a snapshot).
 */
#ifndef MARKD_HTTPD_ROUTES_H
#define MARKD_HTTPD_ROUTES_H

#include "aggregator/status.h"

struct httpd_metrics;
struct httpd_router;
struct httpd_readiness;

/* Records one reason the daemon is not ready (printf-style, cut at 200
 * bytes; at most 32 reasons are kept). */
void httpd_readiness_fail(struct httpd_readiness *r, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* Fills r with the reasons the daemon is not ready; none = ready. */
typedef void (*httpd_ready_fn)(void *arg, struct httpd_readiness *r);

struct httpd_basic_routes {
	struct httpd_metrics *metrics; /* GET /metrics renders it; NULL: no
					* /metrics route */
	httpd_ready_fn ready;          /* NULL: always ready */
	void *ready_arg;
	const char *version;           /* markd_build_info{version}; NULL =
					* PACKAGE_VERSION */
};

/*
 * Adds GET /healthz ({"status":"ok"}), GET /readyz (200
 * {"status":"ready"} or 503 {"status":"not_ready","reasons":[...]}) and,
 * with metrics, GET /metrics (text/plain; version=0.0.4) plus the gauge
 * markd_build_info{version} = 1. opts and what it points to are borrowed
 * and must outlive the server. Errors as httpd_router_add and
 * httpd_metrics_family.
 */
enum mk_status httpd_routes_basic(struct httpd_router *r,
				  const struct httpd_basic_routes *opts,
				  struct mk_err *err);

#endif
