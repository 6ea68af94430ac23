/*
 * snapshot.h - the published, immutable view of the robust marks, and the
 * mechanism that hands it from the aggregator's writer to reader threads.
 *
 * A struct agg_mark is one instrument's mark at one evaluation: price,
 * confidence, validity status with reasons, statistics and the state of
 * every leg (DESIGN.md sections 5 and 7). A struct agg_snapshot is an array
 * of pointers to the current mark of every instrument, so publishing an
 * update of one instrument copies pointers, not marks. Both are reference
 * counted and never change once published.
 *
 * Thread safety: marks and snapshots are immutable after publication and
 * may be read from any thread while a reference is held. The reference
 * counts are atomic, so agg_mark_acquire/agg_mark_release and
 * agg_snapshot_release may be called from any thread. A struct agg_pub
 * has one writer (agg_pub_publish, from one thread at a time) and any
 * number of readers (agg_pub_acquire); a reader holds the publisher's mutex
 * only for the pointer read and the reference increment, never while the
 * writer builds the next snapshot, and frees happen outside the lock.
 *
 * Ownership: functions that return a mark or a snapshot with "new
 * reference" transfer one reference to the caller, who must release it.
 * Pointers reached through a snapshot (its marks, their legs and strings)
 * are borrowed and valid while the snapshot reference is held.
 */
#ifndef MARKD_AGGREGATOR_SNAPSHOT_H
#define MARKD_AGGREGATOR_SNAPSHOT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "aggregator/dec.h"
#include "aggregator/instrument.h"

/* Longest error text kept per leg, with the NUL (longer text is cut). */
#define AGG_ERROR_MAX 128

/*
 * Mark status, in ascending severity (DESIGN.md section 5, step 7). The
 * status of a mark is the most severe condition that holds; every
 * condition that holds is also recorded in the mark's reasons bitmask as
 * AGG_REASON(status).
 */
enum agg_mark_status {
	AGG_MARK_OK = 0,
	AGG_MARK_DEGRADED,       /* quorum met, but some legs were excluded */
	AGG_MARK_NO_QUORUM,      /* fewer than min_sources distinct sources usable */
	AGG_MARK_STALE,          /* no quorum, held mark past max_age_ms */
	AGG_MARK_TOO_UNCERTAIN,  /* conf / price above max_conf_bps */
	AGG_MARK_TOO_VOLATILE,   /* too far from the TWAP of earlier marks */
	AGG_MARK_NON_POSITIVE,   /* price <= 0 */
};
#define AGG_MARK_STATUS_COUNT 7
#define AGG_REASON(status) (1u << (unsigned)(status))

/* Per-leg state, as shown to users (DESIGN.md section 7). */
enum agg_leg_state {
	AGG_LEG_USED = 0,
	AGG_LEG_STALE,
	AGG_LEG_OUTLIER,
	AGG_LEG_ERROR,
	AGG_LEG_INVALID,
};

/* Why a leg is excluded; each maps to one state (agg_exclusion_state). */
enum agg_exclusion {
	AGG_EXCL_NONE = 0,             /* used */
	AGG_EXCL_NO_DATA,              /* no usable quote yet (stale) */
	AGG_EXCL_ERROR,                /* last fetch was bad data (error) */
	AGG_EXCL_CLOCK_SKEW,           /* exchange time far ahead (invalid) */
	AGG_EXCL_STALE,                /* older than max_age_ms */
	AGG_EXCL_NON_POSITIVE,         /* a price <= 0 (invalid) */
	AGG_EXCL_BAD_SPREAD,           /* ask < bid, or too wide (invalid) */
	AGG_EXCL_OUT_OF_RANGE,         /* a value that does not fit (invalid) */
	AGG_EXCL_CONVERSION_UNAVAILABLE, /* quote currency has no valid mark */
	AGG_EXCL_OUTLIER,              /* too far from the median (outlier) */
};

/* One leg as evaluated for a mark. */
struct agg_leg_view {
	char source[AGG_SOURCE_MAX];
	char market[AGG_MARKET_MAX];
	char via[AGG_SYMBOL_MAX];      /* converting instrument, "" if none */
	uint32_t weight;
	bool has_raw;                  /* raw_price is set */
	struct mk_dec raw_price;       /* in the leg's own quote currency */
	bool has_price;                /* price and conf are set */
	struct mk_dec price;           /* in the instrument's currency */
	struct mk_dec conf;            /* the leg's own uncertainty, too */
	int64_t exchange_ts_ms;        /* the venue's timestamp; 0 = none */
	int64_t recv_ts_ms;            /* when we received it; 0 = no quote */
	int64_t age_ms;                /* age used for staleness (exchange time
					* when present, conversion included);
					* -1 when there is no quote */
	int64_t exchange_age_ms;       /* now - exchange_ts_ms, -1 when none */
	int64_t recv_age_ms;           /* now - recv_ts_ms, -1 when no quote */
	enum agg_leg_state state;
	enum agg_exclusion reason;
	int64_t error_at_ms;           /* last fetch error's time, 0 = none */
	bool error_bad_data;           /* that error was bad data (excludes) */
	char error[AGG_ERROR_MAX];     /* its text, "" when none */
};

/*
 * One instrument's mark. Prices are at the instrument's scale. When the
 * quorum is lost the mark holds the last valid price (held = true) with its
 * age; an instrument that never had a valid mark has no price.
 */
struct agg_mark {
	atomic_uint_fast32_t _refs;    /* private: reference count */
	char symbol[AGG_SYMBOL_MAX];
	int scale;
	uint64_t seq;                  /* number of marks computed so far */
	enum agg_mark_status status;
	unsigned reasons;              /* AGG_REASON() of every condition */
	bool valid_for_liquidation;    /* status is ok or degraded */
	bool has_price;
	bool held;                     /* price is the last good mark, held */
	struct mk_dec price;
	struct mk_dec conf;
	bool has_ema, has_twap, has_volatility;
	struct mk_dec ema;
	struct mk_dec twap;
	double volatility;             /* annualized sigma of log returns */
	int64_t updated_at_ms;         /* time of this evaluation */
	int64_t price_at_ms;           /* when the shown price was computed */
	int64_t age_ms;                /* updated_at_ms - price_at_ms */
	int64_t data_ts_ms;            /* oldest leg time behind the price */
	bool has_last_good;
	int64_t last_good_at_ms;       /* time of the last valid mark */
	uint32_t sources_used;
	uint32_t sources_total;
	size_t nlegs;
	struct agg_leg_view legs[];
};

struct agg_snapshot {
	atomic_uint_fast32_t _refs;    /* private: reference count */
	uint64_t version;              /* increases with every publication */
	int64_t at_ms;                 /* time of the evaluation published */
	size_t count;
	const struct agg_mark *marks[]; /* in the book's instrument order */
};

struct agg_pub {
	pthread_mutex_t mu;
	struct agg_snapshot *cur;      /* guarded by mu */
};

/* Names used on the wire: "ok", "degraded", "no_quorum", "stale",
 * "too_uncertain", "too_volatile", "non_positive"; "used", "stale",
 * "outlier", "error", "invalid"; "", "no_data", "error", "clock_skew",
 * "stale", "non_positive", "bad_spread", "out_of_range",
 * "conversion_unavailable", "outlier". Never NULL. */
const char *agg_mark_status_name(enum agg_mark_status st);
const char *agg_leg_state_name(enum agg_leg_state st);
const char *agg_exclusion_name(enum agg_exclusion r);

/* The leg state an exclusion reason puts a leg in. */
enum agg_leg_state agg_exclusion_state(enum agg_exclusion r);

/* ---- marks ---------------------------------------------------------- */

/* A zeroed mark with room for nlegs legs and one reference (new
 * reference), or NULL when out of memory. Writer side: fill it, then
 * publish it; never change it after that. */
struct agg_mark *agg_mark_create(size_t nlegs);

/* Takes one more reference on m (NULL allowed); returns m. */
const struct agg_mark *agg_mark_acquire(const struct agg_mark *m);

/* Drops one reference; frees the mark with the last one. NULL allowed. */
void agg_mark_release(const struct agg_mark *m);

/* ---- snapshots ------------------------------------------------------ */

/* A snapshot with `count` NULL mark slots and one reference (new
 * reference), or NULL when out of memory. The writer stores marks (each
 * slot owns one reference, released with the snapshot). */
struct agg_snapshot *agg_snapshot_create(size_t count);

/* Takes one more reference on s (NULL allowed); returns s. */
const struct agg_snapshot *agg_snapshot_acquire(const struct agg_snapshot *s);

/* Drops one reference; the last one releases every mark and frees the
 * snapshot. NULL allowed. */
void agg_snapshot_release(const struct agg_snapshot *s);

/* The mark of `symbol` in s (borrowed), or NULL. Cost O(count). */
const struct agg_mark *agg_snapshot_find(const struct agg_snapshot *s,
					 const char *symbol);

/* ---- publisher ------------------------------------------------------ */

/* Initializes an empty publisher. MK_EIO if the mutex cannot be made. */
enum mk_status agg_pub_init(struct agg_pub *p);

/* Releases the current snapshot and the mutex. No reader may be inside
 * agg_pub_acquire. NULL allowed. */
void agg_pub_clear(struct agg_pub *p);

/* Makes s the current snapshot (steals the caller's reference) and
 * releases the previous one outside the lock. Writer thread only. */
void agg_pub_publish(struct agg_pub *p, struct agg_snapshot *s);

/* The current snapshot with a new reference for the caller, or NULL when
 * nothing was published yet. Any thread; waits only for a concurrent
 * pointer swap. */
const struct agg_snapshot *agg_pub_acquire(struct agg_pub *p);

#endif
