/*
 * routes_basic.c - GET /healthz, GET /readyz, GET /metrics.
 */
#include "config.h"

#include "httpd/routes.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "httpd/metrics.h"
#include "httpd/request.h"
#include "httpd/response.h"
#include "httpd/router.h"

#define READY_REASONS_MAX 32
#define READY_REASON_LEN 200

struct httpd_readiness {
	size_t n;
	size_t dropped;
	char reasons[READY_REASONS_MAX][READY_REASON_LEN];
};

void
httpd_readiness_fail(struct httpd_readiness *r, const char *fmt, ...)
{
	va_list ap;

	if (r->n == READY_REASONS_MAX) {
		r->dropped++;
		return;
	}
	va_start(ap, fmt);
	vsnprintf(r->reasons[r->n], READY_REASON_LEN, fmt, ap);
	va_end(ap);
	r->n++;
}

static void
healthz(struct httpd_req *req, void *arg)
{
	static const char body[] = "{\"status\":\"ok\"}";

	(void)arg;
	httpd_reply_borrowed(req, 200, "application/json", body,
			     sizeof body - 1, NULL, NULL);
}

static void
readyz(struct httpd_req *req, void *arg)
{
	const struct httpd_basic_routes *o = arg;
	struct httpd_readiness *r;
	json_t *body = NULL, *reasons = NULL;

	if (o->ready == NULL) {
		httpd_reply_json(req, 200, json_pack("{s:s}", "status", "ready"));
		return;
	}
	/* ~6 KiB: off MHD's stack. */
	r = calloc(1, sizeof *r);
	if (r == NULL) {
		httpd_reply_error(req, HTTPD_ERR_INTERNAL, NULL, "out of memory");
		return;
	}
	o->ready(o->ready_arg, r);
	if (r->n == 0) {
		free(r);
		httpd_reply_json(req, 200, json_pack("{s:s}", "status", "ready"));
		return;
	}
	reasons = json_array();
	for (size_t i = 0; reasons != NULL && i < r->n; i++)
		json_array_append_new(reasons, json_string(r->reasons[i]));
	if (reasons != NULL && r->dropped > 0) {
		char more[64];

		snprintf(more, sizeof more, "(%zu more reasons)", r->dropped);
		json_array_append_new(reasons, json_string(more));
	}
	free(r);
	body = json_pack("{s:s,s:o}", "status", "not_ready", "reasons", reasons);
	httpd_reply_json(req, 503, body);
}

static void
metrics(struct httpd_req *req, void *arg)
{
	const struct httpd_basic_routes *o = arg;
	char *text = NULL;
	size_t len = 0;
	enum mk_status st = httpd_metrics_render(o->metrics, &text, &len);

	if (st != MK_OK) {
		httpd_reply_error(req, HTTPD_ERR_INTERNAL, NULL,
				  "cannot render metrics: %s", mk_strstatus(st));
		return;
	}
	httpd_reply_take(req, 200, "text/plain; version=0.0.4; charset=utf-8",
			 text, len);
}

enum mk_status
httpd_routes_basic(struct httpd_router *r, const struct httpd_basic_routes *opts,
		   struct mk_err *err)
{
	/* The arg is not changed by the handlers; the router stores void *. */
	void *arg = (void *)(uintptr_t)opts;
	enum mk_status st;

	st = httpd_router_add(r, HTTPD_GET, "/healthz", 0, healthz, NULL, err);
	if (st == MK_OK)
		st = httpd_router_add(r, HTTPD_GET, "/readyz", 0, readyz, arg, err);
	if (st != MK_OK || opts->metrics == NULL)
		return st;
	st = httpd_router_add(r, HTTPD_GET, "/metrics", 0, metrics, arg, err);
	if (st == MK_OK) {
		static const char *const labels[] = { "version" };
		const char *values[] = { opts->version != NULL ? opts->version
							       : PACKAGE_VERSION };
		struct httpd_family *f = NULL;

		st = httpd_metrics_family(opts->metrics, HTTPD_METRIC_GAUGE,
					  "markd_build_info",
					  "Always 1; the labels say which build is running.",
					  labels, 1, NULL, 0, &f, err);
		if (st == MK_OK)
			httpd_metric_set(f, values, 1);
	}
	return st;
}
