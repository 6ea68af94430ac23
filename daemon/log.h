/*
 * log.h - markd's structured logs: one line per event on stderr, either
 *   ts=2026-01-02T03:04:05.678Z level=info event=feed_state source=kraken from=up to=down
 * (format "kv": values with spaces, quotes, '=' or nothing in them are
 * double-quoted with \" \\ \n escapes) or
 *   {"ts":"2026-01-02T03:04:05.678Z","level":"info","event":"feed_state","source":"kraken",...}
 * (format "json"). ts, level and event come first, then the event's
 * fields in the order they were added. Lines below the configured level
 * are not built at all.
 *
 * A line is built in a caller-owned struct md_log_line (no allocation)
 * and written with one write(2) under a mutex, so lines from different
 * threads never interleave. A line longer than MD_LOG_LINE_MAX is cut and
 * ends with "..." (kv) or a "truncated":true field (json).
 *
 * Thread safety: every function may be called from any thread;
 * md_log_configure changes level and format atomically (SIGHUP).
 */
#ifndef MARKD_DAEMON_LOG_H
#define MARKD_DAEMON_LOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "daemon/cfg.h"

#define MD_LOG_LINE_MAX 2048

struct md_log_line {
	bool on;                    /* false: the level is filtered out */
	bool json;
	bool cut;
	size_t len;
	char buf[MD_LOG_LINE_MAX];
};

/* Sets the lowest level written and the format (defaults: info, kv). */
void md_log_configure(enum cfg_log_level level, enum cfg_log_format format);

/* Whether a line at level would be written now. */
bool md_log_enabled(enum cfg_log_level level);

/* Starts a line: ts, level and event. */
void md_log_begin(struct md_log_line *l, enum cfg_log_level level,
		  const char *event);

/* Adds key=value. Keys are [a-z0-9_] by convention (not checked). */
void md_log_str(struct md_log_line *l, const char *key, const char *value);
void md_log_int(struct md_log_line *l, const char *key, int64_t value);
void md_log_uint(struct md_log_line *l, const char *key, uint64_t value);
void md_log_bool(struct md_log_line *l, const char *key, bool value);
/* A printf-formatted string value. */
void md_log_fmt(struct md_log_line *l, const char *key, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Writes the line (nothing when filtered out). */
void md_log_end(struct md_log_line *l);

/* One-field shorthand: event with msg=<printf text>. */
void md_log_msg(enum cfg_log_level level, const char *event, const char *fmt,
		...) __attribute__((format(printf, 3, 4)));

#endif
