/*
 * history.h - reader for 1-minute OHLCV history CSV files, shared by
 * markd-fakex (which replays them as live prices) and markd-replay.
 *
 * The layout is the one of ../shared/data/history/ (see its README):
 *
 *   ts_utc_unix,open,high,low,close,volume[,trades]
 *   1678233600,22196.56,22203.71,22193.67,22200.47,1.27619,32
 *
 * one bar per line, `ts_utc_unix` the bar's open time in Unix seconds (the
 * bar covers [ts, ts+60)), prices and volume plain decimals read exactly
 * with mk_dec_parse (no binary floating point), `trades` an optional
 * non-negative integer count. Bars are sorted by time, at least 60 s apart
 * (missing minutes are simply absent). A final newline is optional and
 * "\r\n" line ends are accepted. Each bar must be consistent:
 * 0 < low <= min(open, close) and max(open, close) <= high, volume >= 0.
 *
 * Every error names where it is, as FILE:LINE:COLUMN: what, for example
 * "kraken_XBTUSD_1m.csv:12:high: "22x" is not a decimal (...)".
 *
 * Intra-bar order. A bar only tells the four prices, not the order of its
 * high and low. history_bar_path() uses the likely order: a bar that closed
 * at or above its open (close >= open) most likely went down first, so its
 * path is open -> low -> high -> close; a bar that closed below its open is
 * open -> high -> low -> close. (In both cases the path ends on the side
 * where the close is, with the shortest total travel.) history_price_at()
 * walks that path linearly, one third of the bar per leg.
 *
 * Thread safety: a loaded series is immutable and may be read from any
 * number of threads; loading and destroying need exclusive access.
 * Ownership: history_load/history_parse return a new series that the caller
 * releases with history_destroy.
 */
#ifndef MARKD_TOOLS_HISTORY_H
#define MARKD_TOOLS_HISTORY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "aggregator/dec.h"
#include "aggregator/status.h"

#define HISTORY_BAR_S 60                  /* a bar covers [ts, ts + 60) */
/* The latest bar time accepted: 9999-12-31T23:59:00Z (Unix seconds). */
#define HISTORY_TS_MAX INT64_C(253402300740)
#define HISTORY_MAX_LINE_DEFAULT 512      /* bytes per line, without "\n" */
#define HISTORY_MAX_ROWS_DEFAULT 1000000  /* bars per file (~2 years) */

struct history_bar {
	int64_t ts;               /* bar open time, Unix seconds */
	struct mk_dec open, high, low, close;
	struct mk_dec volume;     /* traded volume in the base asset */
	int64_t trades;           /* trades in the minute; -1 when no column */
};

struct history_series {
	char *name;               /* file name as given, for messages */
	struct history_bar *bars; /* nbars bars, ts strictly increasing */
	size_t nbars;
	bool has_trades;          /* the file had the `trades` column */
	int scale;                /* largest scale among the prices */
};

/* Caps on what a file may hold; zero fields mean the defaults above. */
struct history_limits {
	size_t max_line;          /* longest accepted line, in bytes */
	size_t max_rows;          /* most bars accepted */
};

/*
 * Parses CSV text buf[0..len) (need not be NUL-terminated); `name` is used
 * in messages only. `lim` may be NULL (defaults). On success *out is a new
 * series with at least one bar. Errors: MK_EPARSE (bad header, bad value,
 * inconsistent bar, unsorted or duplicate time; err->msg names
 * name:line:column), MK_ETOOBIG (a line longer than max_line, more rows
 * than max_rows), MK_ENOMEM. *out is untouched on error.
 */
enum mk_status history_parse(const char *name, const char *buf, size_t len,
			     const struct history_limits *lim,
			     struct history_series **out, struct mk_err *err);

/*
 * Reads the file at `path` and parses it as history_parse does, naming the
 * file by `path` in messages. Also MK_EIO when the file cannot be read
 * (err->sys_errno set) and MK_ETOOBIG when it is larger than
 * max_line * (max_rows + 1) bytes.
 */
enum mk_status history_load(const char *path, const struct history_limits *lim,
			    struct history_series **out, struct mk_err *err);

/* Releases a series; NULL is accepted. */
void history_destroy(struct history_series *s);

/*
 * The four prices of bar b in their likely order (see the header comment):
 * out[0] = open, out[1], out[2] = low/high or high/low, out[3] = close.
 * Pure.
 */
void history_bar_path(const struct history_bar *b, struct mk_dec out[4]);

/*
 * Index of the bar whose interval [ts, ts+60) holds `t` (Unix seconds),
 * or of the last bar that opened before t when t falls in a gap or after
 * the series; returns (size_t)-1 when t is before the first bar. O(log n).
 */
size_t history_find(const struct history_series *s, int64_t t);

/*
 * The replayed price at time t_ms (Unix milliseconds), at scale `scale`
 * (rounded half-even): inside a bar, the linear walk through the bar's path
 * with its four points at ts, ts+20 s, ts+40 s and ts+60 s; in a gap after
 * a bar (a venue with no trades that minute) and after the last bar, the
 * last close; before the first bar, the first open. Pure; O(log n).
 * The walk is computed exactly and rounded once. Errors: MK_EINVAL for a
 * bad scale; MK_ERANGE if the exact intermediate does not fit: a price
 * whose scale is above 13 (more than 13 fraction digits, since the walk
 * needs 5 more), or whose mantissa x 10^5 does not fit 64 bits.
 */
enum mk_status history_price_at(const struct history_series *s, int64_t t_ms,
				int scale, struct mk_dec *out);

#endif
