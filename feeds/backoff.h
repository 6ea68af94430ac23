/*
 * backoff.h - retry timing for the feed poller: a small seedable PRNG,
 * jittered exponential backoff, and the HTTP Retry-After header.
 *
 * Pure code: no clock, no I/O, no globals. "Now" is a parameter, so the
 * same inputs give the same outputs (tests seed the PRNG and check exact
 * schedules).
 *
 * Backoff rule (DESIGN.md section 4): after the n-th consecutive failure
 * (n >= 1) the next poll waits
 *     delay = min(max_backoff, interval * 2^(n-1)) * u,  u uniform in [0.5, 1]
 * computed in integer milliseconds: with b = min(max_backoff, interval *
 * 2^(n-1)), delay is uniform over the integers [b - b/2, b].
 *
 * Thread safety: all functions are reentrant; a struct feed_rng belongs to
 * one thread at a time.
 */
#ifndef MARKD_FEEDS_BACKOFF_H
#define MARKD_FEEDS_BACKOFF_H

#include <stddef.h>
#include <stdint.h>

#include "aggregator/status.h"

/* splitmix64 generator: one 64-bit state word, full period 2^64. Not for
 * cryptography; only for spreading retries. */
struct feed_rng {
	uint64_t state;
};

/* Seeds r; every seed (0 included) gives a usable, reproducible stream. */
void feed_rng_seed(struct feed_rng *r, uint64_t seed);

/* Next 64 pseudo-random bits. */
uint64_t feed_rng_next(struct feed_rng *r);

/*
 * The un-jittered backoff ceiling for the failures-th consecutive failure:
 * min(max_backoff_ms, interval_ms * 2^(failures-1)), without overflow.
 * Preconditions: interval_ms > 0, max_backoff_ms > 0. failures == 0 gives
 * 0 (no backoff). The delay of feed_backoff_delay lies in
 * [ceiling - ceiling/2, ceiling].
 */
int64_t feed_backoff_ceiling(int64_t interval_ms, int64_t max_backoff_ms,
			     unsigned failures);

/*
 * The jittered delay in ms before the next poll after the failures-th
 * consecutive failure; draws exactly one number from r when failures > 0
 * (none when failures == 0, which returns 0). Same preconditions as
 * feed_backoff_ceiling.
 */
int64_t feed_backoff_delay(int64_t interval_ms, int64_t max_backoff_ms,
			   unsigned failures, struct feed_rng *r);

/*
 * Parses the value of an HTTP Retry-After header (RFC 9110 section 10.2.3)
 * into a delay in ms from now_wall_ms (Unix ms, the receive time):
 *   - delay-seconds: 1*DIGIT ("120"); very large values saturate at
 *     FEED_RETRY_AFTER_MAX_MS;
 *   - HTTP-date in any of the three forms a recipient must accept:
 *     IMF-fixdate "Sun, 06 Nov 1994 08:49:37 GMT", obsolete RFC 850
 *     "Sunday, 06-Nov-94 08:49:37 GMT" (two-digit years more than 50 years
 *     ahead of now_wall_ms are taken in the past century), and asctime
 *     "Sun Nov  6 08:49:37 1994"; a date in the past gives 0.
 * Surrounding spaces and tabs are ignored. s[0..len) need not be
 * NUL-terminated.
 * Returns MK_OK and sets *delay_ms (>= 0), or MK_EPARSE (err says what was
 * wrong) leaving *delay_ms unchanged; the poller then ignores the header.
 */
enum mk_status feed_retry_after_parse(const char *s, size_t len,
				      int64_t now_wall_ms, int64_t *delay_ms,
				      struct mk_err *err);

/* Saturation bound of feed_retry_after_parse: 30 days. Callers apply their
 * own, smaller cap (the poller's max_retry_after_ms). */
#define FEED_RETRY_AFTER_MAX_MS ((int64_t)30 * 24 * 3600 * 1000)

#endif
