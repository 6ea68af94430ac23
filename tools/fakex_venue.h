/*
 * fakex_venue.h - the venues' faces in markd-fakex: which paths each venue
 * answers, and the exact shape of its bodies (tickers, error envelopes),
 * modelled on the real payloads in ../shared/data/payloads/ so that markd's
 * real adapters parse them.
 *
 * Pure: an answer is a function of the scenario, the request and a view
 * (simulated time for the price, the timestamp to print, a price shift);
 * nothing here reads a clock or touches a socket.
 *
 * Thread safety: reentrant. Ownership: an answer's body is owned by the
 * answer and released with fakex_answer_release.
 */
#ifndef MARKD_TOOLS_FAKEX_VENUE_H
#define MARKD_TOOLS_FAKEX_VENUE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "aggregator/status.h"
#include "tools/fakex_scenario.h"

#define FAKEX_BODY_MAX (256u * 1024u)  /* largest body fakex renders */
#define FAKEX_MAX_IDS 32               /* Pyth ids[] per request */

/* A growable text buffer with a cap; once an append fails, `failed`
 * stays set and the text must not be used. */
struct fakex_buf {
	char *p;
	size_t len, cap;
	bool failed;
};

void fakex_buf_printf(struct fakex_buf *b, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* Appends s as the inside of a JSON string (quotes not included). */
void fakex_buf_json_escape(struct fakex_buf *b, const char *s);
void fakex_buf_release(struct fakex_buf *b);

/* One request, as the server saw it. */
struct fakex_request {
	const char *path;  /* venue-relative, starting with '/' */
	/* First value of query argument `key`, or NULL. */
	const char *(*arg)(void *ctx, const char *key);
	void *ctx;
	const char *ids[FAKEX_MAX_IDS];  /* every ids[] value (Pyth), in order */
	size_t nids;
	bool too_many_ids;
};

/* How the prices of this answer are made. */
struct fakex_view {
	int64_t sim_ms;   /* simulated time of the prices */
	int64_t ts_ms;    /* Unix ms printed as the venue's timestamp */
	int64_t ppm;      /* every price x (1 + ppm / 10^6): wick, drift */
};

struct fakex_answer {
	unsigned status;          /* HTTP status */
	unsigned retry_after_s;   /* Retry-After header when > 0 */
	const char *content_type; /* static string */
	struct fakex_buf body;
};

/* Error answers every venue has, each in the venue's own envelope. */
enum fakex_error {
	FAKEX_ERR_NO_ROUTE,     /* unknown path: 404 */
	FAKEX_ERR_BAD_MARKET,   /* unknown symbol/pair/id */
	FAKEX_ERR_BAD_PARAM,    /* a required query argument missing or bad */
	FAKEX_ERR_RATELIMIT,    /* 429 (Retry-After set by the caller) */
	FAKEX_ERR_INTERNAL,     /* 500 */
};

/*
 * Answers request rq as venue v would: a ticker body for a served market
 * at view->sim_ms, or the venue's own error for an unknown path, market or
 * missing argument. Returns MK_OK with *ans filled (status may be 4xx), or
 * MK_ENOMEM / MK_ETOOBIG / a price error; *ans is then released.
 */
enum mk_status fakex_venue_answer(const struct fakex_scenario *sc,
				  enum fakex_venue v,
				  const struct fakex_request *rq,
				  const struct fakex_view *view,
				  struct fakex_answer *ans);

/*
 * The venue's error answer of kind e (status and body); `detail` (may be
 * NULL) is the offending path or id, escaped where the body shows it;
 * ts_ms fills the envelopes that carry a time (Bybit). For
 * FAKEX_ERR_INTERNAL, `status` overrides 500 when non-zero.
 */
enum mk_status fakex_venue_error(enum fakex_venue v, enum fakex_error e,
				 const char *detail, int64_t ts_ms,
				 unsigned status, struct fakex_answer *ans);

void fakex_answer_release(struct fakex_answer *ans);

/* RFC 3339 UTC with microseconds ("2023-03-10T10:48:00.123000Z") of a
 * Unix-ms time into buf (>= 32 bytes). */
void fakex_rfc3339(int64_t ms, char *buf, size_t cap);

#endif
