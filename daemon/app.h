/*
 * app.h - the markd daemon put together: config, metrics registry, SSE
 * hub, route table, bearer tokens, the feeds thread and the HTTP server,
 * and their order of start, reload and stop.
 *
 * Lifecycle (main thread):
 *   md_app_create   loads nothing, starts nothing: wires the registry,
 *                   the hub, the router with the read API (GET /v1/marks,
 *                   /v1/marks/{symbol}, /v1/feeds, /v1/feeds/{source},
 *                   /v1/stream, /metrics, /healthz, /readyz) and the
 *                   tokens file when the config names one;
 *   (other modules add routes with md_app_add_route and set hooks)
 *   md_app_start    starts the feeds thread (first marks published),
 *                   then the HTTP server;
 *   md_app_reload   SIGHUP: re-reads the config file; a bad file is
 *                   refused with every error logged and the old config
 *                   kept; a good one is applied by the feeds thread
 *                   (daemon/feeds_thread.h says what is rebuilt); log
 *                   level and format change at once; the tokens file is
 *                   re-read; listen address and "http" limits need a
 *                   restart (a warning says so);
 *   md_app_stop     stops the server (requests in flight finish, SSE
 *                   streams end), then the feeds thread, then frees.
 *
 * Hooks for other modules (the margin service): a snapshot hook on the
 * feeds thread after every publication, a readiness check on MHD's
 * thread, and a reload hook on the main thread after a good reload.
 *
 * Thread safety: every md_app_* function belongs to the main thread;
 * the hooks run where said above.
 */
#ifndef MARKD_DAEMON_APP_H
#define MARKD_DAEMON_APP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "aggregator/status.h"
#include "daemon/cfg.h"
#include "daemon/feeds_thread.h"
#include "httpd/router.h"
#include "httpd/routes.h"

struct httpd_metrics;
struct httpd_sse_hub;
struct md_app;

/* Called on the main thread after a reload was applied, with the new
 * config (borrowed: valid until the next good reload or stop). */
typedef void (*md_reload_fn)(void *arg, const struct cfg *cfg);

/*
 * Wires the daemon for cfg (ownership passes to the app, also on
 * failure), read from config_path (copied; re-read on reload).
 * Errors: MK_ECONFIG and the tokens file's errors (httpd/auth.h),
 * MK_ENOMEM, MK_EIO; err says which.
 */
enum mk_status md_app_create(const char *config_path, struct cfg *cfg,
			     struct md_app **out, struct mk_err *err);

/* Adds a route (httpd_router_add) and records it for md_app_route_at.
 * Before md_app_start only. */
enum mk_status md_app_add_route(struct md_app *a, enum httpd_method method,
				const char *pattern, unsigned flags,
				httpd_handler_fn fn, void *arg,
				struct mk_err *err);

/* The routes served, in registration order (the ones of
 * httpd_routes_basic included): method and pattern of route i, false
 * when i is out of range. */
size_t md_app_route_count(const struct md_app *a);
bool md_app_route_at(const struct md_app *a, size_t i,
		     enum httpd_method *method, const char **pattern);

/* The registry, the hub and the config in use (borrowed). */
struct httpd_metrics *md_app_metrics(struct md_app *a);
struct httpd_sse_hub *md_app_hub(struct md_app *a);
const struct cfg *md_app_cfg(const struct md_app *a);

/* Hooks; set before md_app_start. One of each (later calls replace). */
void md_app_set_snapshot_hook(struct md_app *a, md_snapshot_fn fn,
			      void *arg);
void md_app_set_ready_hook(struct md_app *a, httpd_ready_fn fn, void *arg);
void md_app_set_reload_hook(struct md_app *a, md_reload_fn fn, void *arg);
/* Called by md_app_stop after the feeds thread stopped and before the
 * SSE hub and metrics are destroyed. */
void md_app_set_halt_hook(struct md_app *a, void (*fn)(void *), void *arg);

/*
 * Creates the margin service (positions, evaluations, liquidation events,
 * the SQLite store named by the config's "database") and plugs it in: its
 * routes, snapshot, readiness and halt hooks. Call after md_app_create and
 * before md_app_start. Errors: as margin_service_create (the store cannot
 * be opened, ...), the app unchanged.
 */
enum mk_status md_app_add_margin(struct md_app *a, struct mk_err *err);

/*
 * Starts the feeds thread and the HTTP server. Errors: as
 * md_feeds_start, and httpd_server_start's (MK_EIO for a port that
 * cannot be bound). After a failure only md_app_stop may be called.
 */
enum mk_status md_app_start(struct md_app *a, struct mk_err *err);

/* The address and port the server listens on ("127.0.0.1", 8080). */
const char *md_app_bind(const struct md_app *a);
uint16_t md_app_port(const struct md_app *a);

/* Re-reads and applies the config file (see above); every outcome is
 * logged. Returns MK_OK when the new config is in use. */
enum mk_status md_app_reload(struct md_app *a);

/* Whether the feeds thread stopped on a fatal error (why may be NULL). */
bool md_app_failed(struct md_app *a, struct mk_err *why);

/* Stops what runs and frees everything. NULL is accepted. */
void md_app_stop(struct md_app *a);

#endif
