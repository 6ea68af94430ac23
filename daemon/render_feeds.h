/*
 * render_feeds.h - feed health (feeds/health.h) as the JSON of
 * GET /v1/feeds, GET /v1/feeds/{source} and the SSE "feed" event.
 *
 * One source renders as
 *   {"source":"kraken","state":"degraded","markets":3,
 *    "markets_up":2,"markets_degraded":1,"markets_down":0,
 *    "interval_ms":500,"last_success":"2026-...Z",
 *    "last_error":{"at":"2026-...Z","outcome":"http_error",
 *                  "text":"XBTUSD: HTTP 500"},
 *    "consecutive_failures":1,"polls":120,
 *    "counts":{"ok":119,"venue_error":0,"rate_limited":0,"http_error":1,
 *              "timeout":0,"connect_error":0,"too_large":0,
 *              "parse_error":0},
 *    "bans":0,"latency_ms":{"p50":0.41,"p99":1.2},
 *    "backoff_ms":0,"next_poll":"2026-...Z"}
 * with null for "never" (last_success, last_error, next_poll while a poll
 * is in flight) and for percentiles without samples. The list is
 *   {"as_of":"2026-...Z","sources":[...]}.
 *
 * Thread safety: pure; any thread. Ownership: results are new.
 */
#ifndef MARKD_DAEMON_RENDER_FEEDS_H
#define MARKD_DAEMON_RENDER_FEEDS_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "feeds/health.h"

/* One source as a new JSON object, or NULL when out of memory. */
json_t *md_render_feed(const struct feed_health *h);

/* The list of n sources as of as_of_ms (Unix ms), as a new JSON object,
 * or NULL when out of memory. */
json_t *md_render_feeds(const struct feed_health *h, size_t n,
			int64_t as_of_ms);

#endif
