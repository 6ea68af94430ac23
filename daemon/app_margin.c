/*
 * app_margin.c - plugs the margin service (positions, evaluations,
 * liquidation events) into the running daemon: its routes, its snapshot,
 * readiness and shutdown hooks, and its log lines.
 */
#include "config.h"

#include <string.h>

#include "daemon/app.h"
#include "daemon/log.h"
#include "daemon/margin_service.h"

static enum mk_status
add_route(void *ctx, enum httpd_method m, const char *pattern, unsigned flags,
	  httpd_handler_fn fn, void *arg, struct mk_err *err)
{
	return md_app_add_route(ctx, m, pattern, flags, fn, arg, err);
}

static void
margin_log(void *arg, enum margin_service_level level, const char *msg)
{
	static const enum cfg_log_level map[] = { CFG_LOG_DEBUG, CFG_LOG_INFO,
						   CFG_LOG_WARN, CFG_LOG_ERROR };

	(void)arg;
	md_log_msg(map[level], "margin", "%s", msg);
}

static void
halt_margin(void *arg)
{
	margin_service_destroy(arg);
}

enum mk_status
md_app_add_margin(struct md_app *app, struct mk_err *err)
{
	struct margin_service_options mo;
	struct margin_service *svc = NULL;
	enum mk_status st;

	memset(&mo, 0, sizeof(mo));
	mo.cfg = md_app_cfg(app);
	mo.metrics = md_app_metrics(app);
	mo.hub = md_app_hub(app);
	mo.log = margin_log;
	st = margin_service_create(&mo, &svc, err);
	if (st == MK_OK)
		st = margin_service_add_routes(svc, add_route, app, err);
	if (st != MK_OK) {
		margin_service_destroy(svc);
		return st;
	}
	md_app_set_snapshot_hook(app, margin_service_on_snapshot, svc);
	md_app_set_ready_hook(app, margin_service_ready, svc);
	md_app_set_halt_hook(app, halt_margin, svc);
	return MK_OK;
}
