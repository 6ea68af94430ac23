/*
 * replay_data.h - markd-replay's data set: the daemon's config, one
 * history CSV per leg, and the simulated clock laid over them.
 *
 * Each leg of the config names its CSV file through its "market" field,
 * relative to the data folder (--data), so one config runs on any window
 * of any data set whose files have the same names. A file used by several
 * legs is loaded once.
 *
 * Simulated time. The window is a whole number of minutes [from, from +
 * nmin * 60 s). Each minute is cut into REPLAY_SUBTICKS steps, at +0, +15,
 * +30 and +45 s; a leg with a bar in that minute quotes, in those steps,
 * the bar's open, then its low and high in the order the bar implies
 * (history_bar_path), then its close. A minute without a bar is no quote.
 * So is a bar with volume 0: Binance.US writes one for every minute
 * without a trade, with OHLC = the previous close, which is not a price
 * anybody traded at in that minute.
 *
 * Thread safety: a loaded data set is immutable; any number of threads
 * may read it. Ownership: replay_data_load takes the config; everything
 * is released by replay_data_free.
 */
#ifndef MARKD_TOOLS_REPLAY_DATA_H
#define MARKD_TOOLS_REPLAY_DATA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "aggregator/instrument.h"
#include "aggregator/status.h"
#include "daemon/cfg.h"
#include "tools/history.h"

#define REPLAY_MINUTE_MS INT64_C(60000)
#define REPLAY_SUBTICKS 4
#define REPLAY_SUBTICK_MS INT64_C(15000)
/* Longest window: 400 days of minutes. */
#define REPLAY_MAX_MINUTES ((size_t)60 * 24 * 400)

/* One CSV file. */
struct replay_series {
	char *market;              /* its name relative to the data folder */
	struct history_series *h;
	int32_t *bar_at;           /* per minute of the window: the bar's
				    * index in h, -1 when there is no trade */
};

/* One leg of one instrument of the config. */
struct replay_leg {
	size_t inst;               /* instrument index in the config */
	size_t leg;                /* leg index in that instrument */
	size_t series;             /* index into replay_data.series */
	int via;                   /* instrument converting its quote, -1 */
	char name[AGG_MARKET_MAX]; /* the file name without "_1m.csv"/".csv" */
};

/* Optional bounds of the window, Unix seconds. */
struct replay_window {
	bool has_from, has_to;
	int64_t from_s, to_s;
};

struct replay_data {
	struct cfg *cfg;           /* owned */
	size_t target;             /* the instrument positions are on */
	int scale;                 /* its price scale */
	int64_t from_ms;           /* window start, a whole minute */
	size_t nmin;               /* minutes in the window */
	size_t nseries;
	struct replay_series *series;
	size_t nlegs;              /* legs of every instrument, in config
				    * order (the aggregator's leg ids) */
	struct replay_leg *legs;
	size_t *first_leg;         /* ninstruments + 1 entries: instrument
				    * i's legs are legs[first_leg[i] ..
				    * first_leg[i + 1]) */
};

/*
 * Loads the CSV of every leg of cfg from folder `dir` and lays the window
 * over them: from the first bar of any file to the end of the last one's
 * minute, cut to `w` when given (may be NULL). `symbol` names the
 * instrument positions are on (NULL: the first one with margin brackets).
 * Takes cfg in every case (freed on error). On success *out is new.
 * Errors, err->msg naming the leg's JSON path and the file:
 *   MK_EIO / MK_EPARSE / MK_ETOOBIG  a file that cannot be read, or a
 *       malformed line (as history_load reports it, FILE:LINE:COLUMN);
 *   MK_ENOTFOUND  an unknown symbol;
 *   MK_ECONFIG    an instrument without brackets, a market that is an
 *       absolute path, an empty or too long window;
 *   MK_ENOMEM.
 */
enum mk_status replay_data_load(const char *dir, struct cfg *cfg,
				const char *symbol,
				const struct replay_window *w,
				struct replay_data **out, struct mk_err *err);

/* Releases everything; NULL accepted. */
void replay_data_free(struct replay_data *d);

/* The bar leg `leg` traded in minute `minute`, or NULL. */
const struct history_bar *replay_bar(const struct replay_data *d, size_t leg,
				     size_t minute);

/* Number of legs of the target instrument, and the index into legs[] of
 * its j-th leg. */
size_t replay_target_nlegs(const struct replay_data *d);
size_t replay_target_leg(const struct replay_data *d, size_t j);

/* The plain median of v[0..n) (n >= 1; v is sorted in place), rounded
 * half-even to an integer. */
int64_t replay_median(int64_t *v, size_t n);

/* v as plain decimal text without trailing fraction zeros ("25", "2.5")
 * into buf (cap >= MK_DEC_STRLEN). */
void replay_dec_text(struct mk_dec v, char *buf, size_t cap);

/* Time of step `step` (minute * REPLAY_SUBTICKS + sub-tick), Unix ms. */
int64_t replay_step_ms(const struct replay_data *d, size_t step);

#endif
