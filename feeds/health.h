/*
 * health.h - feed health per source (DESIGN.md section 4): up | degraded |
 * down, last success, last error, consecutive failures, counts by outcome,
 * latency p50/p99 and a cumulative latency histogram, current backoff and
 * next poll.
 *
 * A source polls one or more markets; each (source, market) pair is a job
 * of the poller. The table keeps raw facts per job and per source; the
 * state is judged when a reader copies a source out, against the reader's
 * "now", so a source whose polls stopped completing turns down without
 * any new event.
 *
 * Per job:
 *   down      no success yet, or >= down_after_failures consecutive
 *             failures, or no success within down_after_intervals
 *             intervals;
 *   degraded  otherwise, when the last poll failed or the job was rate
 *             limited within the last degraded_intervals intervals;
 *   up        otherwise (the last poll succeeded).
 * Per source: up when all its jobs are up, down when all are down, else
 * degraded.
 *
 * Thread safety: one writer (the feeds thread: feed_health_add_job,
 * feed_health_started, feed_health_record) and any number of readers
 * (HTTP threads: feed_health_get, feed_health_list, feed_health_count).
 * Every function takes the table's mutex for a bounded, short time; the
 * writer does the sorting for percentiles, readers only copy.
 *
 * Ownership: the table owns its entries; readers get copies.
 */
#ifndef MARKD_FEEDS_HEALTH_H
#define MARKD_FEEDS_HEALTH_H

#include <stddef.h>
#include <stdint.h>

#include "aggregator/instrument.h"
#include "aggregator/status.h"

/* How one poll ended. Stable names (feed_outcome_name) are used in the API
 * and in metrics labels. */
enum feed_outcome {
	FEED_OK = 0,           /* "ok": 2xx and the adapter gave quote(s) */
	FEED_VENUE_ERROR,      /* "venue_error": the venue's error envelope */
	FEED_RATE_LIMITED,     /* "rate_limited": HTTP 429/418/451, or the
				* venue said so in its envelope */
	FEED_HTTP_ERROR,       /* "http_error": any other non-2xx status */
	FEED_TIMEOUT,          /* "timeout": timeout_ms passed */
	FEED_CONNECT_ERROR,    /* "connect_error": refused, DNS, TLS, reset,
				* empty reply: any transport failure that is
				* not a timeout (the text says which) */
	FEED_TOO_LARGE,        /* "too_large": body over max_body_bytes */
	FEED_PARSE_ERROR,      /* "parse_error": body not understood, or the
				* market missing from it */
};
#define FEED_OUTCOME_COUNT 8
_Static_assert(FEED_PARSE_ERROR + 1 == FEED_OUTCOME_COUNT,
	       "FEED_OUTCOME_COUNT counts every enum feed_outcome");

/* Stable lower-case name of an outcome ("ok", "rate_limited", ...). */
const char *feed_outcome_name(enum feed_outcome o);

enum feed_state {
	FEED_STATE_DOWN = 0,
	FEED_STATE_DEGRADED,
	FEED_STATE_UP,
};

/* "down", "degraded" or "up". */
const char *feed_state_name(enum feed_state s);

/* Thresholds of the state rules above. */
struct feed_health_params {
	uint32_t down_after_failures;   /* consecutive failures (3) */
	uint32_t down_after_intervals;  /* intervals without success (3) */
	uint32_t degraded_intervals;    /* rate-limit memory, intervals (3) */
};

/* Fills p with the defaults shown above. */
void feed_health_params_default(struct feed_health_params *p);

/* Latency samples kept per source for the percentiles. */
#define FEED_HEALTH_LATENCY_RING 128
/* Upper bounds (ms, "le") of the cumulative latency histogram, for the
 * Prometheus exposition; a last implicit bucket is +Inf (= latency_count). */
#define FEED_HEALTH_NBUCKETS 11
extern const int64_t feed_health_bucket_le_ms[FEED_HEALTH_NBUCKETS];

#define FEED_HEALTH_TEXT_MAX 256

/* One source's health as copied out to a reader. Times are Unix ms (wall
 * clock); 0 means "never". */
struct feed_health {
	char source[AGG_SOURCE_MAX];
	enum feed_state state;
	uint32_t jobs;                    /* markets polled for this source */
	uint32_t jobs_up, jobs_degraded, jobs_down;
	int64_t interval_ms;              /* the shortest job interval */
	int64_t last_success_ms;          /* last ok poll of any job */
	int64_t last_error_ms;            /* last failed poll of any job */
	enum feed_outcome last_error_outcome;   /* valid when last_error_ms */
	char last_error[FEED_HEALTH_TEXT_MAX];  /* "okx BTC-USDT: HTTP 500" */
	uint32_t consecutive_failures;    /* the largest over the jobs */
	uint64_t polls;                   /* completed polls, all outcomes */
	uint64_t counts[FEED_OUTCOME_COUNT];    /* polls by outcome */
	uint64_t bans;                    /* HTTP 418/451 among rate_limited */
	/* Latency of polls that got an HTTP answer (any status), from the
	 * start of the transfer to its end, in microseconds; p50/p99 over
	 * the last FEED_HEALTH_LATENCY_RING samples (nearest rank), -1 with
	 * no sample. */
	int64_t latency_p50_us, latency_p99_us;
	uint32_t latency_samples;         /* in the ring, <= RING */
	uint64_t latency_count;           /* all samples ever */
	uint64_t latency_sum_us;
	uint64_t latency_le[FEED_HEALTH_NBUCKETS];  /* cumulative counts */
	int64_t backoff_ms;               /* largest current backoff, 0: none */
	int64_t next_poll_ms;             /* earliest next poll (Unix ms); 0 =
					   * unknown or a poll is in flight */
};

struct feed_health_table;

/* New empty table. NULL on allocation failure. */
struct feed_health_table *
feed_health_create(const struct feed_health_params *params);

/* Frees the table; NULL is accepted. No reader may use it any more. */
void feed_health_destroy(struct feed_health_table *t);

/*
 * Registers a job of `source` polled every interval_ms (> 0), whose first
 * poll is due at first_poll_ms (Unix ms); the source is created on its
 * first job. Returns the job's slot (>= 0) for the other writer calls, or
 * -1 when memory is short or the source name is empty or longer than
 * AGG_SOURCE_MAX - 1. Writer only. O(sources).
 */
int feed_health_add_job(struct feed_health_table *t, const char *source,
			int64_t interval_ms, int64_t first_poll_ms);

/* One completed poll, as the poller reports it. */
struct feed_health_event {
	enum feed_outcome outcome;
	int http_status;          /* 0 when there was no HTTP answer */
	int64_t latency_us;       /* < 0 when there was no HTTP answer */
	int64_t now_mono_ms;      /* completion, CLOCK_MONOTONIC */
	int64_t now_wall_ms;      /* completion, Unix ms */
	const char *text;         /* error text, NULL for ok; copied */
	int64_t backoff_ms;       /* the delay now applied; 0 after ok */
	int64_t next_poll_ms;     /* the next poll, Unix ms */
};

/* Records one completed poll of job `slot`. Writer only; O(RING log RING)
 * when a latency sample is given (the writer keeps the percentiles). */
void feed_health_record(struct feed_health_table *t, int slot,
			const struct feed_health_event *ev);

/* Records that job `slot` started a poll (its next poll is now "in
 * flight"). Writer only. */
void feed_health_started(struct feed_health_table *t, int slot);

/* Number of sources. Any thread. */
size_t feed_health_count(struct feed_health_table *t);

/*
 * Copies source `source` out, with its state judged at now_mono_ms
 * (feed_now_mono_ms()). MK_ENOTFOUND when there is no such source. Any
 * thread; O(jobs of the source).
 */
enum mk_status feed_health_get(struct feed_health_table *t,
			       const char *source, int64_t now_mono_ms,
			       struct feed_health *out);

/*
 * Copies up to cap sources, in registration order, into out; returns the
 * number of sources in the table (which may exceed cap). Any thread.
 */
size_t feed_health_list(struct feed_health_table *t,
			int64_t now_mono_ms, struct feed_health *out,
			size_t cap);

/* The clocks the feeds folder uses: CLOCK_MONOTONIC and CLOCK_REALTIME
 * in ms. Any thread. */
int64_t feed_now_mono_ms(void);
int64_t feed_now_wall_ms(void);

#endif
