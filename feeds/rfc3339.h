/*
 * rfc3339.h - RFC 3339 timestamps <-> Unix milliseconds, UTC, years
 * 1970..9999, without the C library's time zone machinery.
 *
 * Pure and reentrant.
 */
#ifndef MARKD_FEEDS_RFC3339_H
#define MARKD_FEEDS_RFC3339_H

#include <stddef.h>
#include <stdint.h>

#include "aggregator/status.h"

/* "YYYY-MM-DDTHH:MM:SS.mmmZ" and the NUL fit in this. */
#define FEED_RFC3339_STRLEN 32
/* 9999-12-31T23:59:59.999Z */
#define FEED_TS_MAX_MS INT64_C(253402300799999)

/*
 * Parses s[0..len) (no NUL needed): "YYYY-MM-DD", 'T' (or 't' or ' '),
 * "HH:MM:SS", optional '.' and 1 or more fraction digits (truncated to
 * milliseconds), then 'Z' ('z') or a "+HH:MM"/"-HH:MM" offset. Dates are
 * checked (month lengths, leap years). Result in 0..FEED_TS_MAX_MS.
 * MK_EPARSE (message says what is wrong) otherwise.
 */
enum mk_status feed_rfc3339_parse_ms(const char *s, size_t len, int64_t *ms,
				     struct mk_err *err);

/*
 * Writes ms (0..FEED_TS_MAX_MS) as "YYYY-MM-DDTHH:MM:SS.mmmZ" into buf.
 * Returns the length (24), or 0 when ms is out of range or
 * cap < FEED_RFC3339_STRLEN.
 */
size_t feed_rfc3339_format_ms(int64_t ms, char *buf, size_t cap);

#endif
