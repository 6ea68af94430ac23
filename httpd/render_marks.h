/*
 * render_marks.h - the JSON of the marks API (GET /v1/marks,
 * GET /v1/marks/{symbol} and the SSE "mark" event), rendered once per
 * published mark into shared immutable bytes that handlers serve as they
 * are (reference/perf-baseline.md: building JSON per request costs more
 * than serving it).
 *
 * One mark renders as
 *   {"symbol":"BTC-USD","price":"67123.45000000","conf":"1.20000000",
 *    "status":"ok","valid_for_liquidation":true,"reasons":[],
 *    "held":false,"sources_used":4,"sources_total":4,
 *    "ema":"...","twap":"...","volatility":0.41,
 *    "updated_at":"2026-01-02T03:04:05.678Z","age_ms":0,"seq":42,
 *    "last_good_at":"...","last_good_age_ms":null,
 *    "sources":[{"source":"kraken","market":"XBTUSD","via":null,
 *      "raw_price":"...","price":"...","conf":"...",
 *      "exchange_ts":null,"received_at":"...","age_ms":130,
 *      "weight":1,"state":"used","reason":null,
 *      "error":null,"error_at":null}, ...]}
 * Decimals are strings rounded half-even to the instrument's scale, null
 * when absent; times are RFC 3339 UTC with milliseconds; every age is as
 * of "updated_at" (the evaluation the document shows), so a reader's
 * current age is age_ms + (now - updated_at). reasons[] lists every
 * condition that holds, most severe first, "ok" never.
 *
 * Thread safety: pure functions of their arguments; any thread.
 * Ownership: results are new (free() the text, httpd_buf_unref the
 * buffers); inputs are borrowed.
 */
#ifndef MARKD_HTTPD_RENDER_MARKS_H
#define MARKD_HTTPD_RENDER_MARKS_H

#include <stddef.h>
#include <stdint.h>

#include "aggregator/snapshot.h"
#include "aggregator/status.h"

struct httpd_buf;

/*
 * Renders mark m as the JSON object above, with "seq" shown as seq (the
 * caller may add an offset to m->seq so that the number keeps growing
 * when the aggregator is rebuilt). *out is a new malloc'd NUL-terminated
 * string of *len bytes. Errors: MK_ENOMEM; MK_ERANGE when a decimal
 * cannot be shown at the mark's scale (cannot happen for values the
 * aggregator produced).
 */
enum mk_status httpd_render_mark(const struct agg_mark *m, uint64_t seq,
				 char **out, size_t *len);

/* The same into a new shared buffer (one reference for the caller), or
 * NULL on failure. */
struct httpd_buf *httpd_render_mark_buf(const struct agg_mark *m,
					uint64_t seq);

/*
 * Joins n rendered marks (NULL entries are skipped) into
 *   {"marks":[m0,m1,...]}
 * as a new shared buffer (one reference for the caller), or NULL when out
 * of memory. Cost: one allocation and a copy of the parts.
 */
struct httpd_buf *httpd_render_marks_list(struct httpd_buf *const *marks,
					  size_t n);

/* Writes Unix ms (0 .. 9999-12-31) as "YYYY-MM-DDTHH:MM:SS.mmmZ" into buf
 * (cap >= 25). Returns the length, or 0 when out of range or too small. */
size_t httpd_render_time(int64_t ms, char *buf, size_t cap);

#endif
