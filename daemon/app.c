/*
 * app.c - wiring, start, reload and stop of the daemon.
 */
#include "config.h"

#include "daemon/app.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "daemon/api.h"
#include "daemon/log.h"
#include "feeds/health.h"
#include "httpd/auth.h"
#include "httpd/metrics.h"
#include "httpd/server.h"
#include "httpd/sse.h"

struct route_rec {
	enum httpd_method method;
	char *pattern;
};

struct md_app {
	char *path;
	struct cfg *cfg;
	struct httpd_metrics *metrics;
	struct httpd_sse_hub *hub;
	struct httpd_router *router;
	struct httpd_auth *auth;
	struct httpd_server *server;
	struct md_feeds *feeds;
	struct md_api api;
	struct httpd_basic_routes basic;
	struct route_rec *routes;
	size_t nroutes, caproutes;
	md_snapshot_fn on_snapshot;
	void *snapshot_arg;
	md_reload_fn on_reload;
	void *reload_arg;
	void (*on_halt)(void *arg);
	void *halt_arg;
	struct httpd_family *m_reloads;
	struct httpd_family *m_reload_ts;
	bool started;
	char bind[CFG_HOST_MAX];      /* the address the server was given */
};

static enum mk_status
record_route(struct md_app *a, enum httpd_method method, const char *pattern,
	     struct mk_err *err)
{
	if (a->nroutes == a->caproutes) {
		size_t ncap = a->caproutes > 0 ? 2 * a->caproutes : 16;
		struct route_rec *r = realloc(a->routes, ncap * sizeof *r);

		if (r == NULL)
			return mk_err_set(err, MK_ENOMEM, "out of memory");
		a->routes = r;
		a->caproutes = ncap;
	}
	a->routes[a->nroutes].method = method;
	a->routes[a->nroutes].pattern = strdup(pattern);
	if (a->routes[a->nroutes].pattern == NULL)
		return mk_err_set(err, MK_ENOMEM, "out of memory");
	a->nroutes++;
	return MK_OK;
}

enum mk_status
md_app_add_route(struct md_app *a, enum httpd_method method,
		 const char *pattern, unsigned flags, httpd_handler_fn fn,
		 void *arg, struct mk_err *err)
{
	enum mk_status st;

	if (a->started)
		return mk_err_set(err, MK_ESTATE,
				  "routes must be added before the server starts");
	st = httpd_router_add(a->router, method, pattern, flags, fn, arg, err);
	if (st == MK_OK)
		st = record_route(a, method, pattern, err);
	return st;
}

size_t
md_app_route_count(const struct md_app *a)
{
	return a->nroutes;
}

bool
md_app_route_at(const struct md_app *a, size_t i, enum httpd_method *method,
		const char **pattern)
{
	if (i >= a->nroutes)
		return false;
	*method = a->routes[i].method;
	*pattern = a->routes[i].pattern;
	return true;
}

struct httpd_metrics *
md_app_metrics(struct md_app *a)
{
	return a->metrics;
}

struct httpd_sse_hub *
md_app_hub(struct md_app *a)
{
	return a->hub;
}

const struct cfg *
md_app_cfg(const struct md_app *a)
{
	return a->cfg;
}

void
md_app_set_snapshot_hook(struct md_app *a, md_snapshot_fn fn, void *arg)
{
	a->on_snapshot = fn;
	a->snapshot_arg = arg;
}

void
md_app_set_ready_hook(struct md_app *a, httpd_ready_fn fn, void *arg)
{
	a->api.extra_ready = fn;
	a->api.extra_ready_arg = arg;
}

void
md_app_set_reload_hook(struct md_app *a, md_reload_fn fn, void *arg)
{
	a->on_reload = fn;
	a->reload_arg = arg;
}

/* The read API, the stream and the basic routes. */
static enum mk_status
add_routes(struct md_app *a, struct mk_err *err)
{
	static const char *const basic_paths[] = { "/healthz", "/readyz",
						   "/metrics" };
	enum mk_status st;

	st = md_app_add_route(a, HTTPD_GET, "/v1/marks", 0, md_api_marks,
			      &a->api, err);
	if (st == MK_OK)
		st = md_app_add_route(a, HTTPD_GET, "/v1/marks/{symbol}", 0,
				      md_api_mark, &a->api, err);
	if (st == MK_OK)
		st = md_app_add_route(a, HTTPD_GET, "/v1/feeds", 0,
				      md_api_feeds, &a->api, err);
	if (st == MK_OK)
		st = md_app_add_route(a, HTTPD_GET, "/v1/feeds/{source}", 0,
				      md_api_feed, &a->api, err);
	if (st == MK_OK)
		st = md_app_add_route(a, HTTPD_GET, "/v1/stream",
				      HTTPD_ROUTE_STREAM, httpd_sse_handler,
				      a->hub, err);
	if (st != MK_OK)
		return st;
	a->basic.metrics = a->metrics;
	a->basic.ready = md_api_ready;
	a->basic.ready_arg = &a->api;
	a->basic.version = PACKAGE_VERSION;
	st = httpd_routes_basic(a->router, &a->basic, err);
	/* httpd_routes_basic adds exactly these (httpd/routes.h) */
	for (size_t i = 0; st == MK_OK && i < 3; i++)
		st = record_route(a, HTTPD_GET, basic_paths[i], err);
	return st;
}

static enum mk_status
add_metrics(struct md_app *a, struct mk_err *err)
{
	static const char *const result[] = { "result" };
	struct httpd_family *start = NULL;
	enum mk_status st;

	st = httpd_metrics_family(a->metrics, HTTPD_METRIC_COUNTER,
				  "markd_config_reloads_total",
				  "Config reloads (SIGHUP) by result: ok, or error (refused, old config kept).",
				  result, 1, NULL, 0, &a->m_reloads, err);
	if (st == MK_OK)
		st = httpd_metrics_family(a->metrics, HTTPD_METRIC_GAUGE,
					  "markd_config_last_reload_success_timestamp_seconds",
					  "Unix time the config in use was loaded.",
					  NULL, 0, NULL, 0, &a->m_reload_ts, err);
	if (st == MK_OK)
		st = httpd_metrics_family(a->metrics, HTTPD_METRIC_GAUGE,
					  "markd_start_time_seconds",
					  "Unix time the daemon started.", NULL,
					  0, NULL, 0, &start, err);
	if (st != MK_OK)
		return st;
	{
		const char *ok[1] = { "ok" }, *bad[1] = { "error" };
		double now = (double)feed_now_wall_ms() / 1000.0;

		httpd_metric_add(a->m_reloads, ok, 0);
		httpd_metric_add(a->m_reloads, bad, 0);
		httpd_metric_set(a->m_reload_ts, NULL, now);
		httpd_metric_set(start, NULL, now);
	}
	st = httpd_metrics_add_collector(a->metrics, md_api_collect_marks,
					 &a->api);
	if (st == MK_OK)
		st = httpd_metrics_add_collector(a->metrics,
						 md_api_collect_sources,
						 &a->api);
	if (st != MK_OK)
		return mk_err_set(err, st, "out of memory");
	return MK_OK;
}

enum mk_status
md_app_create(const char *config_path, struct cfg *cfg, struct md_app **out,
	      struct mk_err *err)
{
	struct httpd_sse_config sc;
	struct md_app *a;
	enum mk_status st;

	*out = NULL;
	a = calloc(1, sizeof *a);
	if (a == NULL) {
		cfg_free(cfg);
		return mk_err_set(err, MK_ENOMEM, "out of memory");
	}
	a->cfg = cfg;
	a->path = strdup(config_path);
	a->metrics = httpd_metrics_create();
	a->router = httpd_router_create();
	if (a->path == NULL || a->metrics == NULL || a->router == NULL) {
		st = mk_err_set(err, MK_ENOMEM, "out of memory");
		goto fail;
	}
	httpd_sse_config_default(&sc);
	st = httpd_sse_hub_create(&sc, a->metrics, &a->hub, err);
	if (st == MK_OK)
		st = add_metrics(a, err);
	if (st == MK_OK)
		st = add_routes(a, err);
	if (st == MK_OK && cfg->token_file != NULL) {
		st = httpd_auth_load(cfg->token_file, &a->auth, err);
		if (st != MK_OK)
			mk_err_prefix(err, "token_file");
	}
	if (st != MK_OK)
		goto fail;
	*out = a;
	return MK_OK;
fail:
	md_app_stop(a);
	return st;
}

/* The HTTP server's own lines, in the daemon's log format. */
static void
log_httpd(void *arg, enum httpd_log_level level, const char *route,
	  const char *msg)
{
	struct md_log_line l;

	(void)arg;
	md_log_begin(&l, level == HTTPD_LOG_ERROR ? CFG_LOG_ERROR : CFG_LOG_WARN,
		     "http_server");
	md_log_str(&l, "msg", msg);
	if (route != NULL)
		md_log_str(&l, "route", route);
	md_log_end(&l);
}

enum mk_status
md_app_start(struct md_app *a, struct mk_err *err)
{
	struct md_feeds_config fc;
	struct httpd_server_config hc;
	enum mk_status st;

	md_feeds_config_default(&fc);
	fc.cfg = a->cfg;
	fc.hub = a->hub;
	fc.on_snapshot = a->on_snapshot;
	fc.snapshot_arg = a->snapshot_arg;
	fc.seed = (uint64_t)feed_now_wall_ms();
	a->started = true;
	snprintf(a->bind, sizeof a->bind, "%s", a->cfg->listen_host);
	st = md_feeds_start(&fc, &a->feeds, err);
	if (st != MK_OK)
		return st;
	a->api.feeds = a->feeds;

	httpd_server_config_default(&hc);
	hc.bind_addr = a->cfg->listen_host;
	hc.port = a->cfg->listen_port;
	hc.connection_timeout_s = a->cfg->http.connection_timeout_s;
	hc.connection_limit = a->cfg->http.max_connections;
	hc.per_ip_limit = a->cfg->http.max_connections_per_ip;
	hc.body_cap = a->cfg->http.max_body_bytes;
	hc.connection_memory = a->cfg->http.connection_memory_bytes;
	hc.router = a->router;
	hc.auth = a->auth;
	hc.metrics = a->metrics;
	hc.hub = a->hub;
	hc.log = log_httpd;
	return httpd_server_start(&hc, &a->server, err);
}

const char *
md_app_bind(const struct md_app *a)
{
	return a->bind;
}

uint16_t
md_app_port(const struct md_app *a)
{
	return a->server != NULL ? httpd_server_port(a->server)
				 : a->cfg->listen_port;
}

bool
md_app_failed(struct md_app *a, struct mk_err *why)
{
	return a->feeds != NULL && md_feeds_failed(a->feeds, why);
}

/* ---- reload ---- */

static void
count_reload(struct md_app *a, bool ok)
{
	const char *v[1] = { ok ? "ok" : "error" };

	httpd_metric_add(a->m_reloads, v, 1);
	if (ok)
		httpd_metric_set(a->m_reload_ts, NULL,
				 (double)feed_now_wall_ms() / 1000.0);
}

static void
log_load_errors(const char *path, const struct cfg_errors *errs)
{
	for (size_t i = 0; i < errs->count; i++) {
		const struct cfg_error *e = &errs->e[i];
		struct md_log_line l;

		md_log_begin(&l, CFG_LOG_ERROR, "config_error");
		md_log_str(&l, "file", path);
		if (e->path[0] != '\0')
			md_log_str(&l, "path", e->path);
		if (e->line > 0) {
			md_log_int(&l, "line", e->line);
			md_log_int(&l, "column", e->column);
		}
		md_log_str(&l, "error", e->msg);
		md_log_end(&l);
	}
	if (errs->total > errs->count)
		md_log_msg(CFG_LOG_ERROR, "config_error",
			   "%zu more errors not shown", errs->total - errs->count);
}

static bool
str_eq(const char *a, const char *b)
{
	if (a == NULL || b == NULL)
		return a == b;
	return strcmp(a, b) == 0;
}

/* Settings the running server cannot take: warn that they wait for a
 * restart. */
static void
warn_restart_needed(const struct cfg *old, const struct cfg *next)
{
	if (strcmp(old->listen_host, next->listen_host) != 0 ||
	    old->listen_port != next->listen_port)
		md_log_msg(CFG_LOG_WARN, "restart_needed",
			   "listen changed to %s port %u: still serving on %s port %u until restarted",
			   next->listen_host, (unsigned)next->listen_port,
			   old->listen_host, (unsigned)old->listen_port);
	if (old->http.max_connections != next->http.max_connections ||
	    old->http.max_connections_per_ip !=
		    next->http.max_connections_per_ip ||
	    old->http.connection_timeout_s != next->http.connection_timeout_s ||
	    old->http.max_body_bytes != next->http.max_body_bytes ||
	    old->http.connection_memory_bytes !=
		    next->http.connection_memory_bytes)
		md_log_msg(CFG_LOG_WARN, "restart_needed",
			   "the \"http\" limits changed: they apply after a restart");
	if (!str_eq(old->token_file, next->token_file))
		md_log_msg(CFG_LOG_WARN, "restart_needed",
			   "token_file changed: it applies after a restart");
}

enum mk_status
md_app_reload(struct md_app *a)
{
	struct cfg_errors *errs = malloc(sizeof *errs);
	struct cfg *ncfg = NULL, *old;
	struct md_reload_info info;
	struct md_log_line l;
	struct mk_err err = { 0 };
	enum mk_status st;
	char summary[256];

	md_log_begin(&l, CFG_LOG_INFO, "config_reload");
	md_log_str(&l, "file", a->path);
	md_log_end(&l);
	if (errs == NULL) {
		md_log_msg(CFG_LOG_ERROR, "config_reload_failed", "out of memory");
		count_reload(a, false);
		return MK_ENOMEM;
	}
	st = cfg_load(a->path, &ncfg, errs);
	if (st != MK_OK) {
		log_load_errors(a->path, errs);
		md_log_begin(&l, CFG_LOG_ERROR, "config_reload_failed");
		md_log_str(&l, "file", a->path);
		md_log_uint(&l, "errors", errs->total > 0 ? errs->total : 1);
		md_log_str(&l, "msg", "the file was refused; the previous config stays in use");
		md_log_end(&l);
		free(errs);
		count_reload(a, false);
		return st;
	}
	free(errs);
	st = md_feeds_reload(a->feeds, ncfg, &info, &err);
	if (st != MK_OK) {
		md_log_begin(&l, CFG_LOG_ERROR, "config_reload_failed");
		md_log_str(&l, "file", a->path);
		md_log_str(&l, "error", err.msg);
		md_log_str(&l, "msg", "the previous config stays in use");
		md_log_end(&l);
		cfg_free(ncfg);
		count_reload(a, false);
		return st;
	}
	warn_restart_needed(a->cfg, ncfg);
	if (a->auth != NULL && str_eq(a->cfg->token_file, ncfg->token_file) &&
	    httpd_auth_reload(a->auth, &err) != MK_OK)
		md_log_msg(CFG_LOG_ERROR, "tokens_reload_failed",
			   "%s: %s (the previous tokens stay in use)",
			   ncfg->token_file, err.msg);
	md_log_configure(ncfg->log_level, ncfg->log_format);
	old = a->cfg;
	a->cfg = ncfg;
	if (a->on_reload != NULL)
		a->on_reload(a->reload_arg, ncfg);
	/* nothing running points into old: the server copied its address,
	 * the feeds thread has switched to ncfg */
	cfg_free(old);
	cfg_summary(ncfg, summary, sizeof summary);
	md_log_begin(&l, CFG_LOG_INFO, "config_reloaded");
	md_log_str(&l, "file", a->path);
	md_log_str(&l, "summary", summary);
	md_log_bool(&l, "instruments_rebuilt", info.book_rebuilt);
	md_log_bool(&l, "pollers_rebuilt", info.poller_rebuilt);
	md_log_uint(&l, "markets_polled", info.jobs);
	md_log_uint(&l, "replayed", info.replayed);
	md_log_end(&l);
	count_reload(a, true);
	return MK_OK;
}

void
md_app_stop(struct md_app *a)
{
	if (a == NULL)
		return;
	httpd_server_stop(a->server);
	a->server = NULL;
	md_feeds_stop(a->feeds);
	a->feeds = NULL;
	a->api.feeds = NULL;
	if (a->on_halt != NULL)
		a->on_halt(a->halt_arg);
	httpd_sse_hub_destroy(a->hub);
	httpd_router_destroy(a->router);
	httpd_auth_destroy(a->auth);
	httpd_metrics_destroy(a->metrics);
	for (size_t i = 0; i < a->nroutes; i++)
		free(a->routes[i].pattern);
	free(a->routes);
	cfg_free(a->cfg);
	free(a->path);
	free(a);
}

void
md_app_set_halt_hook(struct md_app *a, void (*fn)(void *), void *arg)
{
	a->on_halt = fn;
	a->halt_arg = arg;
}
