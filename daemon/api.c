/*
 * api.c - GET /v1/marks, /v1/marks/{symbol}, /v1/feeds,
 * /v1/feeds/{source}; marks and sources metrics; readiness.
 */
#include "config.h"

#include "daemon/api.h"

#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "aggregator/dec.h"
#include "daemon/feeds_thread.h"
#include "daemon/render_feeds.h"
#include "feeds/health.h"
#include "httpd/metrics.h"
#include "httpd/render_marks.h"
#include "httpd/request.h"
#include "httpd/response.h"

#define JSON_TYPE "application/json"

/* Instruments without a valid mark that /readyz names before "and N
 * more". */
#define READY_LIST_MAX 8

/* ---- marks ---- */

/* The view, or an answered 503 and NULL. */
static const struct md_view *
view_or_503(struct httpd_req *req, const struct md_api *api)
{
	const struct md_view *v =
		api->feeds != NULL ? md_feeds_view(api->feeds) : NULL;

	if (v == NULL)
		httpd_reply_error(req, HTTPD_ERR_SERVICE_UNAVAILABLE, NULL,
				  "no marks are published yet");
	return v;
}

/* GET /v1/marks?symbols=A,B: the listed marks, in the order given. */
static void
marks_subset(struct httpd_req *req, const struct md_view *v,
	     const char *list)
{
	struct httpd_buf *parts[MD_API_MAX_SYMBOLS], *b;
	size_t n = 0;
	const char *p = list;

	for (;;) {
		const char *comma = strchr(p, ',');
		size_t len = comma != NULL ? (size_t)(comma - p) : strlen(p);
		char sym[AGG_SYMBOL_MAX];
		long i;

		if (len == 0) {
			httpd_reply_error(req, HTTPD_ERR_BAD_REQUEST, "symbols",
					  "symbols: empty symbol in the list (expected symbols=BTC-USD,ETH-USD)");
			return;
		}
		if (len >= sizeof sym) {
			httpd_reply_error(req, HTTPD_ERR_BAD_REQUEST, "symbols",
					  "symbols: a symbol is longer than %zu characters",
					  sizeof sym - 1);
			return;
		}
		if (n == MD_API_MAX_SYMBOLS) {
			httpd_reply_error(req, HTTPD_ERR_BAD_REQUEST, "symbols",
					  "symbols: at most %d symbols per request",
					  MD_API_MAX_SYMBOLS);
			return;
		}
		memcpy(sym, p, len);
		sym[len] = '\0';
		i = md_view_find(v, sym);
		if (i < 0) {
			httpd_reply_error(req, HTTPD_ERR_NOT_FOUND, "symbols",
					  "no instrument \"%s\"", sym);
			return;
		}
		parts[n++] = md_view_mark(v, (size_t)i);
		if (comma == NULL)
			break;
		p = comma + 1;
	}
	b = httpd_render_marks_list(parts, n);
	if (b == NULL) {
		httpd_reply_error(req, HTTPD_ERR_INTERNAL, NULL, "out of memory");
		return;
	}
	httpd_reply_buf(req, 200, JSON_TYPE, b);
	httpd_buf_unref(b);
}

void
md_api_marks(struct httpd_req *req, void *arg)
{
	const struct md_view *v = view_or_503(req, arg);
	const char *list;
	struct httpd_buf *b;

	if (v == NULL)
		return;
	list = httpd_req_query(req, "symbols");
	if (list != NULL) {
		marks_subset(req, v, list);
	} else if ((b = md_view_all(v)) != NULL) {
		httpd_reply_buf(req, 200, JSON_TYPE, b);
	} else {
		httpd_reply_error(req, HTTPD_ERR_INTERNAL, NULL, "out of memory");
	}
	md_view_release(v);
}

void
md_api_mark(struct httpd_req *req, void *arg)
{
	const struct md_view *v = view_or_503(req, arg);
	const char *sym = httpd_req_param(req, "symbol");
	struct httpd_buf *b;
	long i;

	if (v == NULL)
		return;
	i = md_view_find(v, sym);
	if (i < 0)
		httpd_reply_error(req, HTTPD_ERR_NOT_FOUND, NULL,
				  "no instrument \"%.40s\" (symbols are BASE-QUOTE in capitals, e.g. BTC-USD)",
				  sym);
	else if ((b = md_view_mark(v, (size_t)i)) != NULL)
		httpd_reply_buf(req, 200, JSON_TYPE, b);
	else
		httpd_reply_error(req, HTTPD_ERR_INTERNAL, NULL,
				  "the mark could not be rendered");
	md_view_release(v);
}

/* ---- feeds ---- */

/* Copies every source's health out of the view's table; *out is new
 * (free()). Returns the count, or -1 when out of memory. */
static long
health_copy(const struct md_view *v, struct feed_health **out)
{
	struct feed_health_table *t = md_view_health(v);
	size_t n = feed_health_count(t), got;
	struct feed_health *h = calloc(n > 0 ? n : 1, sizeof *h);

	*out = h;
	if (h == NULL)
		return -1;
	got = feed_health_list(t, feed_now_mono_ms(), h, n);
	return (long)(got < n ? got : n);
}

static void
reply_json(struct httpd_req *req, json_t *o)
{
	if (o == NULL)
		httpd_reply_error(req, HTTPD_ERR_INTERNAL, NULL, "out of memory");
	else
		httpd_reply_json(req, 200, o);
}

void
md_api_feeds(struct httpd_req *req, void *arg)
{
	const struct md_view *v = view_or_503(req, arg);
	struct feed_health *h = NULL;
	long n;

	if (v == NULL)
		return;
	n = health_copy(v, &h);
	if (n < 0)
		httpd_reply_error(req, HTTPD_ERR_INTERNAL, NULL, "out of memory");
	else
		reply_json(req, md_render_feeds(h, (size_t)n,
						feed_now_wall_ms()));
	free(h);
	md_view_release(v);
}

void
md_api_feed(struct httpd_req *req, void *arg)
{
	const struct md_view *v = view_or_503(req, arg);
	const char *name = httpd_req_param(req, "source");
	struct feed_health h;

	if (v == NULL)
		return;
	if (feed_health_get(md_view_health(v), name, feed_now_mono_ms(),
			    &h) != MK_OK)
		httpd_reply_error(req, HTTPD_ERR_NOT_FOUND, NULL,
				  "no polled source \"%.40s\"", name);
	else
		reply_json(req, md_render_feed(&h));
	md_view_release(v);
}

/* ---- metrics ---- */

static const char *const L_SYM[] = { "symbol" };
static const char *const L_SYM_STATUS[] = { "symbol", "status" };
static const char *const L_SYM_STATE[] = { "symbol", "state" };
static const char *const L_SRC[] = { "source" };
static const char *const L_SRC_OUTCOME[] = { "source", "outcome" };
static const char *const L_SRC_STATE[] = { "source", "state" };
static const char *const L_SRC_LE[] = { "source", "le" };

/* One gauge family with one sample per mark. */
static void
mark_gauge(struct httpd_expo *w, const struct md_view *v, const char *name,
	   const char *help,
	   bool (*value)(const struct agg_mark *m, int64_t now, double *out),
	   int64_t now)
{
	const struct agg_snapshot *s = md_view_snapshot(v);

	httpd_expo_family(w, name, help, HTTPD_METRIC_GAUGE);
	for (size_t i = 0; i < s->count; i++) {
		const char *lv[1] = { s->marks[i]->symbol };
		double x;

		if (value(s->marks[i], now, &x))
			httpd_expo_sample(w, name, L_SYM, lv, 1, x);
	}
}

static bool
v_price(const struct agg_mark *m, int64_t now, double *x)
{
	(void)now;
	*x = mk_dec_to_double(m->price);
	return m->has_price;
}

static bool
v_conf(const struct agg_mark *m, int64_t now, double *x)
{
	(void)now;
	*x = mk_dec_to_double(m->conf);
	return m->has_price;
}

static bool
v_age(const struct agg_mark *m, int64_t now, double *x)
{
	int64_t at = m->price_at_ms;

	*x = (double)(now > at ? now - at : 0) / 1000.0;
	return m->has_price;
}

static bool
v_used(const struct agg_mark *m, int64_t now, double *x)
{
	(void)now;
	*x = (double)m->sources_used;
	return true;
}

static bool
v_total(const struct agg_mark *m, int64_t now, double *x)
{
	(void)now;
	*x = (double)m->sources_total;
	return true;
}

static bool
v_valid(const struct agg_mark *m, int64_t now, double *x)
{
	(void)now;
	*x = m->valid_for_liquidation ? 1 : 0;
	return true;
}

static bool
v_vol(const struct agg_mark *m, int64_t now, double *x)
{
	(void)now;
	*x = m->volatility;
	return m->has_volatility;
}

static bool
v_updated(const struct agg_mark *m, int64_t now, double *x)
{
	(void)now;
	*x = (double)m->updated_at_ms / 1000.0;
	return true;
}

void
md_api_collect_marks(void *arg, struct httpd_expo *w)
{
	struct md_api *api = arg;
	const struct md_view *v;
	const struct agg_snapshot *s;
	int64_t now = feed_now_wall_ms();

	if (api->feeds == NULL || (v = md_feeds_view(api->feeds)) == NULL)
		return;
	s = md_view_snapshot(v);
	mark_gauge(w, v, "markd_mark_price",
		   "Mark price (for dashboards; decisions use the exact decimal of the API).",
		   v_price, now);
	mark_gauge(w, v, "markd_mark_conf",
		   "Confidence half-width of the mark price.", v_conf, now);
	mark_gauge(w, v, "markd_mark_age_seconds",
		   "Age of the price shown (now minus the evaluation that produced it).",
		   v_age, now);
	mark_gauge(w, v, "markd_mark_sources_used",
		   "Legs used in the mark.", v_used, now);
	mark_gauge(w, v, "markd_mark_sources_total",
		   "Legs configured for the instrument.", v_total, now);
	mark_gauge(w, v, "markd_mark_valid_for_liquidation",
		   "1 when the mark may be used for liquidations (status ok or degraded).",
		   v_valid, now);
	mark_gauge(w, v, "markd_mark_volatility",
		   "Annualized EWMA volatility of the mark's log returns.",
		   v_vol, now);
	mark_gauge(w, v, "markd_mark_updated_timestamp_seconds",
		   "Unix time of the mark's last evaluation.", v_updated, now);

	httpd_expo_family(w, "markd_mark_status",
			  "1 for the mark's current status, 0 for the others.",
			  HTTPD_METRIC_GAUGE);
	for (size_t i = 0; i < s->count; i++)
		for (int st = 0; st < AGG_MARK_STATUS_COUNT; st++) {
			const char *lv[2] = {
				s->marks[i]->symbol,
				agg_mark_status_name((enum agg_mark_status)st),
			};

			httpd_expo_sample(w, "markd_mark_status", L_SYM_STATUS,
					  lv, 2,
					  s->marks[i]->status ==
						  (enum agg_mark_status)st);
		}
	httpd_expo_family(w, "markd_mark_legs",
			  "Legs of the mark by state (used, stale, outlier, error, invalid).",
			  HTTPD_METRIC_GAUGE);
	for (size_t i = 0; i < s->count; i++) {
		const struct agg_mark *m = s->marks[i];
		unsigned cnt[AGG_LEG_INVALID + 1] = { 0 };

		for (size_t k = 0; k < m->nlegs; k++)
			if ((unsigned)m->legs[k].state <= AGG_LEG_INVALID)
				cnt[m->legs[k].state]++;
		for (int st = 0; st <= AGG_LEG_INVALID; st++) {
			const char *lv[2] = {
				m->symbol,
				agg_leg_state_name((enum agg_leg_state)st),
			};

			httpd_expo_sample(w, "markd_mark_legs", L_SYM_STATE, lv,
					  2, cnt[st]);
		}
	}
	httpd_expo_family(w, "markd_mark_updates_total",
			  "Marks computed per instrument (the seq of the API).",
			  HTTPD_METRIC_COUNTER);
	for (size_t i = 0; i < s->count; i++) {
		const char *lv[1] = { s->marks[i]->symbol };

		httpd_expo_sample(w, "markd_mark_updates_total", L_SYM, lv, 1,
				  (double)md_view_seq(v, i));
	}
	md_view_release(v);
}

/* Writes one family over every source with value(h). */
static void
source_gauge(struct httpd_expo *w, const struct feed_health *h, size_t n,
	     const char *name, const char *help, enum httpd_metric_type type,
	     bool (*value)(const struct feed_health *h, int64_t now,
			   double *out),
	     int64_t now)
{
	httpd_expo_family(w, name, help, type);
	for (size_t i = 0; i < n; i++) {
		const char *lv[1] = { h[i].source };
		double x;

		if (value(&h[i], now, &x))
			httpd_expo_sample(w, name, L_SRC, lv, 1, x);
	}
}

static bool
s_up(const struct feed_health *h, int64_t now, double *x)
{
	(void)now;
	*x = h->state == FEED_STATE_UP;
	return true;
}

static bool
s_stale(const struct feed_health *h, int64_t now, double *x)
{
	*x = (double)(now > h->last_success_ms ? now - h->last_success_ms : 0) /
	     1000.0;
	return h->last_success_ms > 0;
}

static bool
s_last_ok(const struct feed_health *h, int64_t now, double *x)
{
	(void)now;
	*x = (double)h->last_success_ms / 1000.0;
	return h->last_success_ms > 0;
}

static bool
s_backoff(const struct feed_health *h, int64_t now, double *x)
{
	(void)now;
	*x = (double)h->backoff_ms / 1000.0;
	return true;
}

static bool
s_fails(const struct feed_health *h, int64_t now, double *x)
{
	(void)now;
	*x = (double)h->consecutive_failures;
	return true;
}

static bool
s_bans(const struct feed_health *h, int64_t now, double *x)
{
	(void)now;
	*x = (double)h->bans;
	return true;
}

/* ms as an exact decimal number of seconds: 5 -> "0.005", 10000 -> "10". */
static void
seconds_of_ms(int64_t ms, char *buf, size_t cap)
{
	int n = snprintf(buf, cap, "%" PRId64 ".%03" PRId64, ms / 1000,
			 ms % 1000);

	while (n > 0 && buf[n - 1] == '0')
		buf[--n] = '\0';
	if (n > 0 && buf[n - 1] == '.')
		buf[--n] = '\0';
}

void
md_api_collect_sources(void *arg, struct httpd_expo *w)
{
	struct md_api *api = arg;
	const struct md_view *v;
	struct feed_health *h = NULL;
	int64_t now = feed_now_wall_ms();
	long ln;
	size_t n;

	if (api->feeds == NULL || (v = md_feeds_view(api->feeds)) == NULL)
		return;
	ln = health_copy(v, &h);
	md_view_release(v);
	if (ln < 0) {
		free(h);
		return;
	}
	n = (size_t)ln;
	httpd_expo_family(w, "markd_source_requests_total",
			  "Completed polls by source and outcome.",
			  HTTPD_METRIC_COUNTER);
	for (size_t i = 0; i < n; i++)
		for (int o = 0; o < FEED_OUTCOME_COUNT; o++) {
			const char *lv[2] = {
				h[i].source,
				feed_outcome_name((enum feed_outcome)o),
			};

			httpd_expo_sample(w, "markd_source_requests_total",
					  L_SRC_OUTCOME, lv, 2,
					  (double)h[i].counts[o]);
		}
	httpd_expo_family(w, "markd_source_request_duration_seconds",
			  "Duration of polls that got an HTTP answer, by source.",
			  HTTPD_METRIC_HISTOGRAM);
	for (size_t i = 0; i < n; i++) {
		char le[32];
		const char *lv[2] = { h[i].source, le };

		for (int b = 0; b < FEED_HEALTH_NBUCKETS; b++) {
			seconds_of_ms(feed_health_bucket_le_ms[b], le,
				      sizeof le);
			httpd_expo_sample(w,
					  "markd_source_request_duration_seconds_bucket",
					  L_SRC_LE, lv, 2,
					  (double)h[i].latency_le[b]);
		}
		snprintf(le, sizeof le, "+Inf");
		httpd_expo_sample(w, "markd_source_request_duration_seconds_bucket",
				  L_SRC_LE, lv, 2, (double)h[i].latency_count);
		httpd_expo_sample(w, "markd_source_request_duration_seconds_sum",
				  L_SRC, lv, 1,
				  (double)h[i].latency_sum_us / 1e6);
		httpd_expo_sample(w, "markd_source_request_duration_seconds_count",
				  L_SRC, lv, 1, (double)h[i].latency_count);
	}
	source_gauge(w, h, n, "markd_source_up",
		     "1 when every market of the source is up, else 0.",
		     HTTPD_METRIC_GAUGE, s_up, now);
	httpd_expo_family(w, "markd_source_state",
			  "1 for the source's current state (up, degraded, down), 0 for the others.",
			  HTTPD_METRIC_GAUGE);
	for (size_t i = 0; i < n; i++)
		for (int st = FEED_STATE_DOWN; st <= FEED_STATE_UP; st++) {
			const char *lv[2] = {
				h[i].source, feed_state_name((enum feed_state)st),
			};

			httpd_expo_sample(w, "markd_source_state", L_SRC_STATE,
					  lv, 2,
					  h[i].state == (enum feed_state)st);
		}
	source_gauge(w, h, n, "markd_source_staleness_seconds",
		     "Time since the source's last successful poll (absent before the first).",
		     HTTPD_METRIC_GAUGE, s_stale, now);
	source_gauge(w, h, n, "markd_source_last_success_timestamp_seconds",
		     "Unix time of the source's last successful poll.",
		     HTTPD_METRIC_GAUGE, s_last_ok, now);
	source_gauge(w, h, n, "markd_source_backoff_seconds",
		     "Largest backoff now applied to the source's polls.",
		     HTTPD_METRIC_GAUGE, s_backoff, now);
	source_gauge(w, h, n, "markd_source_consecutive_failures",
		     "Largest number of consecutive failed polls over the source's markets.",
		     HTTPD_METRIC_GAUGE, s_fails, now);
	source_gauge(w, h, n, "markd_source_bans_total",
		     "Polls answered with HTTP 418 or 451 (bans).",
		     HTTPD_METRIC_COUNTER, s_bans, now);
	free(h);
}

/* ---- readiness ---- */

void
md_api_ready(void *arg, struct httpd_readiness *r)
{
	struct md_api *api = arg;
	const struct md_view *v;
	struct mk_err why;
	size_t missing = 0;

	if (api->feeds == NULL) {
		httpd_readiness_fail(r, "the feeds thread is not running");
		goto extra;
	}
	if (md_feeds_failed(api->feeds, &why))
		httpd_readiness_fail(r, "the feeds thread stopped: %s", why.msg);
	v = md_feeds_view(api->feeds);
	if (v == NULL) {
		httpd_readiness_fail(r, "no marks published yet");
		goto extra;
	}
	for (size_t i = 0; i < md_view_count(v); i++) {
		if (md_view_ever_valid(v, i))
			continue;
		if (missing++ < READY_LIST_MAX)
			httpd_readiness_fail(r, "%s has not had a valid mark yet",
					     md_view_snapshot(v)->marks[i]->symbol);
	}
	if (missing > READY_LIST_MAX)
		httpd_readiness_fail(r, "and %zu more instruments without a valid mark",
				     missing - READY_LIST_MAX);
	md_view_release(v);
extra:
	if (api->extra_ready != NULL)
		api->extra_ready(api->extra_ready_arg, r);
}
