/*
 * stats.h - the statistics tracked per instrument on its valid marks
 * (DESIGN.md section 5, step 6): a time-based EMA, a bucketed TWAP and an
 * EWMA realized volatility of log returns.
 *
 * Prices are int64 mantissas at one fixed scale chosen by the caller (the
 * instrument's); times are Unix milliseconds passed in. The EMA and the
 * TWAP are exact integer arithmetic (128-bit intermediates) with half-even
 * rounding, so they are bit-for-bit reproducible; the volatility is a
 * statistic and uses double.
 *
 * Each struct is a plain value owned by its caller; no allocation, no
 * locking (one writer at a time).
 */
#ifndef MARKD_AGGREGATOR_STATS_H
#define MARKD_AGGREGATOR_STATS_H

#include <stdbool.h>
#include <stdint.h>

#include "aggregator/wide.h"

/* Longest window or half-life accepted, in ms (about 34 years); keeps every
 * price * time product far below 2^127. */
#define AGG_STATS_MAX_WINDOW_MS (INT64_C(1) << 40)

/* ---- EMA ------------------------------------------------------------ */

struct agg_ema {
	bool has;        /* false until the first sample */
	int64_t value;   /* current EMA (mantissa) */
	int64_t at_ms;   /* time of the last sample */
};

/* An empty EMA. */
void agg_ema_init(struct agg_ema *e);

/*
 * Adds a sample: value += (price - value) * dt / (dt + window_ms), rounded
 * half-even, with dt = now_ms - at_ms (the first sample sets the value;
 * dt <= 0 leaves it unchanged). Assumes 0 < window_ms <=
 * AGG_STATS_MAX_WINDOW_MS.
 */
void agg_ema_push(struct agg_ema *e, int64_t price, int64_t now_ms,
		  int64_t window_ms);

/* ---- TWAP ----------------------------------------------------------- */

#define AGG_TWAP_BUCKETS 64

struct agg_twap_bucket {
	int64_t idx;     /* floor(time / bucket_ms) this slot holds */
	int64_t dt;      /* ms of price path accrued in the bucket */
	agg_i128 pdt;    /* sum of price * ms accrued in the bucket */
};

/*
 * The time-weighted average of a piecewise-constant price path: each
 * sample holds until the next one. The window is covered by
 * AGG_TWAP_BUCKETS buckets of ceil(window / AGG_TWAP_BUCKETS) ms aligned on
 * absolute time, so the oldest edge of the window has bucket resolution.
 */
struct agg_twap {
	int64_t window_ms;
	int64_t bucket_ms;
	bool has;             /* a sample has been pushed since init/reset */
	int64_t last_price;   /* the value the path holds since last_ms */
	int64_t last_ms;      /* time of the last sample */
	struct agg_twap_bucket b[AGG_TWAP_BUCKETS];
};

/* An empty TWAP over window_ms. Assumes 0 < window_ms <=
 * AGG_STATS_MAX_WINDOW_MS. */
void agg_twap_init(struct agg_twap *t, int64_t window_ms);

/* Forgets every sample (the window is kept). */
void agg_twap_reset(struct agg_twap *t);

/* Adds a sample at now_ms: the previous value is accrued up to now_ms, then
 * `price` holds from now_ms on. A now_ms earlier than the last sample is
 * taken as the last sample's time. */
void agg_twap_push(struct agg_twap *t, int64_t price, int64_t now_ms);

/*
 * The TWAP of the path over the window ending at now_ms (the last value
 * extended up to now_ms), rounded half-even. When no time has elapsed since
 * the first sample, the TWAP is that sample. Returns false (and leaves *out
 * alone) when there is no sample. Does not modify t. Cost O(buckets).
 */
bool agg_twap_value(const struct agg_twap *t, int64_t now_ms, int64_t *out);

/* ---- volatility ----------------------------------------------------- */

struct agg_vol {
	bool has_prev;       /* a previous sample exists */
	int64_t prev_price;
	int64_t prev_ms;
	uint64_t returns;    /* log returns folded in so far */
	double var_per_ms;   /* EWMA of r^2 / dt, per millisecond */
};

/* An empty estimator. */
void agg_vol_init(struct agg_vol *v);

/*
 * Adds a sample. With r = ln(price / prev) over dt = now_ms - prev_ms > 0,
 * var = lambda * var + (1 - lambda) * r^2 / dt, lambda = 2^(-dt/halflife)
 * (the first return sets var). Samples with dt <= 0 only replace the
 * previous price. Assumes price > 0 and 0 < halflife_ms <=
 * AGG_STATS_MAX_WINDOW_MS.
 */
void agg_vol_push(struct agg_vol *v, int64_t price, int64_t now_ms,
		  int64_t halflife_ms);

/* Annualized sigma (365.25-day year) into *out; false until a first return
 * has been folded in. */
bool agg_vol_sigma(const struct agg_vol *v, double *out);

#endif
