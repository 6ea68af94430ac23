/*
 * render_feeds.c - feed health to JSON (jansson; not a hot path).
 */
#include "config.h"

#include "daemon/render_feeds.h"

#include <stdio.h>

#include "feeds/rfc3339.h"

/* A time as an RFC 3339 string, or null for 0 ("never"). */
static json_t *
time_or_null(int64_t ms)
{
	char buf[FEED_RFC3339_STRLEN];

	if (ms <= 0 || feed_rfc3339_format_ms(ms, buf, sizeof buf) == 0)
		return json_null();
	return json_string(buf);
}

/* Microseconds as a number of milliseconds, or null when unknown. */
static json_t *
ms_of_us(int64_t us)
{
	if (us < 0)
		return json_null();
	return json_real((double)us / 1000.0);
}

/* A string that may hold bytes that are not UTF-8 (venue error texts):
 * those become '?'. */
static json_t *
text_lossy(const char *s)
{
	char copy[FEED_HEALTH_TEXT_MAX];
	json_t *j = json_string(s);

	if (j != NULL)
		return j;
	snprintf(copy, sizeof copy, "%s", s);
	for (char *p = copy; *p != '\0'; p++)
		if ((unsigned char)*p >= 0x80)
			*p = '?';
	return json_string(copy);
}

json_t *
md_render_feed(const struct feed_health *h)
{
	json_t *o, *counts, *err, *lat;

	counts = json_object();
	for (int i = 0; counts != NULL && i < FEED_OUTCOME_COUNT; i++)
		json_object_set_new(counts,
				    feed_outcome_name((enum feed_outcome)i),
				    json_integer((json_int_t)h->counts[i]));
	if (h->last_error_ms > 0)
		err = json_pack("{s:o,s:s,s:o}",
				"at", time_or_null(h->last_error_ms),
				"outcome", feed_outcome_name(h->last_error_outcome),
				"text", text_lossy(h->last_error));
	else
		err = json_null();
	lat = json_pack("{s:o,s:o}", "p50", ms_of_us(h->latency_p50_us),
			"p99", ms_of_us(h->latency_p99_us));
	o = json_pack("{s:s,s:s,s:I,s:I,s:I,s:I,s:I,s:o,s:o,s:I,s:I,s:o,s:I,s:o,s:I,s:o}",
		      "source", h->source,
		      "state", feed_state_name(h->state),
		      "markets", (json_int_t)h->jobs,
		      "markets_up", (json_int_t)h->jobs_up,
		      "markets_degraded", (json_int_t)h->jobs_degraded,
		      "markets_down", (json_int_t)h->jobs_down,
		      "interval_ms", (json_int_t)h->interval_ms,
		      "last_success", time_or_null(h->last_success_ms),
		      "last_error", err,
		      "consecutive_failures", (json_int_t)h->consecutive_failures,
		      "polls", (json_int_t)h->polls,
		      "counts", counts,
		      "bans", (json_int_t)h->bans,
		      "latency_ms", lat,
		      "backoff_ms", (json_int_t)h->backoff_ms,
		      "next_poll", time_or_null(h->next_poll_ms));
	return o;
}

json_t *
md_render_feeds(const struct feed_health *h, size_t n, int64_t as_of_ms)
{
	json_t *arr = json_array();

	for (size_t i = 0; arr != NULL && i < n; i++) {
		json_t *one = md_render_feed(&h[i]);

		if (one == NULL || json_array_append_new(arr, one) != 0) {
			json_decref(arr);
			return NULL;
		}
	}
	return json_pack("{s:o,s:o}", "as_of", time_or_null(as_of_ms),
			 "sources", arr);
}
