/*
 * poller.h - the feeds polling engine (DESIGN.md sections 2 and 4).
 *
 * A poller owns one curl multi handle and one easy handle per job; a job
 * is one (source, market) pair: a venue adapter, a URL built from the
 * source's base URL and the market, an interval, a timeout, a body cap and
 * the URL schemes allowed. Every job's easy handle is created once and
 * re-added to the multi handle for each poll, so connections (and TLS
 * sessions) are reused; all due jobs are in flight at once.
 *
 * Scheduling runs on CLOCK_MONOTONIC. A job that succeeds polls again
 * every interval_ms (phase kept; missed ticks are skipped, never bunched).
 * A job that fails waits a jittered exponential backoff (feeds/backoff.h)
 * from its completion; on a rate-limit answer (HTTP 429/418/451, or the
 * venue's own rate-limit code) or an HTTP 503, a Retry-After header that
 * asks for longer is honoured up to max_retry_after_ms.
 *
 * Each completed poll is parsed by the job's adapter and reported at once
 * through the owner's callback (struct feed_result), after the health
 * table (feeds/health.h) has been updated.
 *
 * Thread safety: a poller belongs to the thread that runs it (the feeds
 * thread): feed_poller_add_job, feed_poller_step, feed_poller_run and
 * feed_poller_destroy must be called from that thread only, never from
 * inside the callback, and never concurrently. feed_poller_stop may be
 * called from any thread (and from the callback). The health table
 * returned by feed_poller_health may be read from any thread.
 * curl_global_init must have been called (by main) before any poller is
 * created.
 *
 * Ownership: the poller copies every string of a job config; adapters are
 * static; compiled adapter options (struct feed_adapter_opts) are borrowed
 * and must outlive the poller. Pointers handed to the callback are valid
 * only during the call.
 */
#ifndef MARKD_FEEDS_POLLER_H
#define MARKD_FEEDS_POLLER_H

#include <stddef.h>
#include <stdint.h>

#include "aggregator/status.h"
#include "feeds/adapter.h"
#include "feeds/health.h"

/* What a failure means for the data (DESIGN.md section 5, step 2). */
enum feed_fail_class {
	FEED_FAIL_NONE = 0,     /* the poll succeeded */
	/* The venue could not be reached or asked us to wait: timeout,
	 * connect_error, rate_limited, http_error 5xx. The last good quote
	 * stays usable until it is stale. */
	FEED_FAIL_TRANSIENT,
	/* The venue answered something we cannot use: venue_error,
	 * parse_error, too_large, http_error other than 5xx (a wrong URL or
	 * market, a redirect). */
	FEED_FAIL_BAD_DATA,
};

/* "none", "transient" or "bad_data". */
const char *feed_fail_class_name(enum feed_fail_class c);

/* One completed poll, as the callback sees it. Every pointer is borrowed
 * for the duration of the call. */
struct feed_result {
	const char *source;             /* the job's source name */
	const char *market;             /* the job's market id */
	void *user;                     /* the job's feed_job_config.user */
	enum feed_outcome outcome;
	enum feed_fail_class fail_class;
	/* On FEED_OK: the parsed quote(s) (today always exactly one, for the
	 * job's market); NULL and 0 otherwise. */
	const struct feed_quote *quotes;
	size_t nquotes;
	int64_t recv_ms;                /* receive time, Unix ms (wall clock) */
	int http_status;                /* 0 when no HTTP answer came */
	int64_t latency_us;             /* transfer time; -1 without answer */
	/* NULL on FEED_OK, else one line: "HTTP 500", "timeout after 2000
	 * ms", "kraken: EAPI:Rate limit exceeded", "HTTP 429: binance:
	 * code -1003: Too many requests" ... */
	const char *text;
	uint32_t consecutive_failures;  /* of this job, this poll included */
	int64_t retry_after_ms;         /* the Retry-After header; -1 = none */
	int64_t delay_ms;               /* until this job's next poll */
	uint64_t poll_seq;              /* 1 for the job's first poll, ... */
	const void *transfer;           /* identity of the job's easy handle
					 * (the same for every poll) */
};

typedef void (*feed_result_fn)(void *arg, const struct feed_result *r);

/* Poller-wide settings. */
struct feed_poller_config {
	feed_result_fn on_result;       /* required */
	void *arg;                      /* passed to on_result */
	uint64_t seed;                  /* jitter PRNG seed */
	/* First polls are spread uniformly over [0, min(this, interval));
	 * 0 starts every job at once. */
	int64_t start_spread_ms;
	/* Connections per host (CURLMOPT_MAX_HOST_CONNECTIONS); 0 = no
	 * limit. Queued transfers count against their job's timeout. */
	long max_host_connections;
	const char *user_agent;         /* NULL: "markd/<version>"; copied */
	struct feed_health_params health;
};

/* Defaults: no callback, seed 1, start_spread_ms 0, no host limit,
 * the default user agent and health thresholds. */
void feed_poller_config_default(struct feed_poller_config *c);

/* One job. */
struct feed_job_config {
	const char *source;             /* configured source name (required) */
	const struct feed_adapter *adapter;       /* required */
	const struct feed_adapter_opts *opts;     /* NULL unless the adapter
						   * takes options; borrowed */
	const char *base_url;           /* "https://api.binance.com" */
	const char *market;             /* "BTCUSDT" */
	int64_t interval_ms;            /* 1..86400000 (1000) */
	int64_t timeout_ms;             /* 1..600000 (2000) */
	int64_t max_body_bytes;         /* 16..67108864 (262144) */
	int64_t max_backoff_ms;         /* interval_ms..86400000 (60000, or
					 * interval_ms when that is larger) */
	int64_t max_retry_after_ms;     /* 0..86400000 (600000) */
	/* Allowed URL schemes, comma-separated, from "http" and "https";
	 * NULL means "http,https". */
	const char *schemes;
	void *user;                     /* handed back in each result */
};

/* Fills c with the defaults in brackets above; the required fields are
 * NULL. max_backoff_ms is left 0, meaning "the default". */
void feed_job_config_default(struct feed_job_config *c);

struct feed_poller;
struct feed_job;

/*
 * New poller with no jobs. *out is new (feed_poller_destroy).
 * Errors: MK_EINVAL (no callback), MK_ENOMEM, MK_EIO (curl refused to
 * create or configure the multi handle).
 */
enum mk_status feed_poller_create(const struct feed_poller_config *cfg,
				  struct feed_poller **out,
				  struct mk_err *err);

/* Abandons the transfers in flight (no callback is called for them),
 * frees every handle and the health table. NULL is accepted. Feeds
 * thread, once the loop has returned; no reader may use the health table
 * any more. */
void feed_poller_destroy(struct feed_poller *p);

/*
 * Adds a job, due after the start spread (see the config). The URL is
 * built by the adapter; its scheme must be in the job's allowed schemes.
 * *job (may be NULL) receives a borrowed handle valid until the poller is
 * destroyed. Errors: MK_ECONFIG for a bad value (the message names the
 * field and the source: "binance BTCUSDT: scheme \"ftp\" is not allowed
 * (allowed: https)"), MK_ENOMEM, MK_EIO (curl refused an option).
 * Feeds thread, not while inside the callback.
 */
enum mk_status feed_poller_add_job(struct feed_poller *p,
				   const struct feed_job_config *cfg,
				   struct feed_job **job, struct mk_err *err);

/*
 * One turn of the loop: starts every due job, lets curl move every
 * transfer, delivers each completed poll to the callback, then waits for
 * network activity, the next due job, feed_poller_stop, or max_wait_ms
 * (>= 0), whichever comes first. Returns at once once stopped.
 * Errors: MK_EIO or MK_ENOMEM when the multi handle fails (err says how).
 */
enum mk_status feed_poller_step(struct feed_poller *p, int64_t max_wait_ms,
				struct mk_err *err);

/*
 * Runs feed_poller_step until feed_poller_stop is called (MK_OK) or the
 * multi handle fails (that error). A stop requested before the call makes
 * it return at once. Feeds thread.
 */
enum mk_status feed_poller_run(struct feed_poller *p, struct mk_err *err);

/*
 * Asks the loop to stop and wakes it; feed_poller_run returns promptly
 * (within one turn; transfers in flight are left for destroy). Sticky:
 * later steps return at once. Any thread; async-signal-unsafe.
 */
void feed_poller_stop(struct feed_poller *p);

/* The poller's health table (borrowed, valid until destroy), readable
 * from any thread. */
struct feed_health_table *feed_poller_health(struct feed_poller *p);

/* Number of jobs, and of transfers in flight now. Feeds thread. */
size_t feed_poller_job_count(const struct feed_poller *p);
size_t feed_poller_in_flight(const struct feed_poller *p);

/* The job's URL, as built at creation (borrowed). */
const char *feed_job_url(const struct feed_job *job);

#endif
