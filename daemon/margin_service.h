/*
 * margin_service.h - the margin service of the daemon: the in-memory
 * position registry (margin/registry.h) kept in step with the durable
 * store (margin/store.h, the SQLite file named by the config's
 * "database"), fed by every published snapshot, and served over HTTP
 * (httpd/routes_margin.h).
 *
 * Data flow:
 *   - the feeds thread calls margin_service_on_snapshot after each
 *     published snapshot; every instrument whose mark changed is ticked
 *     through the registry (O(log n + k)); transitions go to a queue;
 *   - one writer thread appends the queued transitions to the store as
 *     events (one committed transaction each), then publishes each on the
 *     SSE hub as a "position" event carrying its sequence number, and
 *     counts it; while the store fails (full disk, read-only file) it
 *     keeps the event, logs, fails readiness and retries every second;
 *   - HTTP writes (PUT, DELETE, collateral) commit to the store on the
 *     handler's thread and answer only after COMMIT, then update the
 *     registry; reads (GET, list, evaluate) never touch the store;
 *     GET /v1/liquidations reads the event log through its own read-only
 *     connection.
 * On start every stored position is loaded and the registry rebuilt; the
 * event log is replayed so that each position resumes from its last
 * recorded state (the next transition is reported from there, without a
 * duplicate of the last one). As after any rebuild of the aggregator
 * (margin/state.h), a breach must then be confirmed again on K new marks
 * and T ms: a position liquidatable before the restart is reported
 * breach_unconfirmed at the first breached mark, liquidatable once
 * confirmed again.
 *
 * Locks: a registry mutex (held for one tick or one registry operation,
 * never during I/O), a store-writer mutex (serialises HTTP writes and the
 * event writer; taken before the registry mutex), the event queue's
 * mutex, and short mutexes for the latest snapshot and the read
 * connection.
 *
 * Thread safety: margin_service_on_snapshot from one thread (the feeds
 * thread); the HTTP ops from MHD's thread (or any thread); readiness from
 * MHD's thread; create/destroy from the controlling thread, destroy only
 * after the HTTP server is stopped and the feeds thread no longer calls
 * on_snapshot.
 *
 * Ownership: the service copies what it needs from the config; metrics
 * and hub are borrowed and must outlive it.
 */
#ifndef MARKD_DAEMON_MARGIN_SERVICE_H
#define MARKD_DAEMON_MARGIN_SERVICE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "aggregator/status.h"
#include "httpd/routes_margin.h"
#include "margin/store.h"

struct agg_snapshot;
struct cfg;
struct httpd_metrics;
struct httpd_readiness;
struct httpd_router;
struct httpd_sse_hub;
struct margin_service;

/* Log levels of the log callback. */
enum margin_service_level {
	MARGIN_LOG_DEBUG, MARGIN_LOG_INFO, MARGIN_LOG_WARN, MARGIN_LOG_ERROR,
};

/* One log line: msg is a "key=value ..." fragment without the level. */
typedef void (*margin_service_log_fn)(void *arg,
				      enum margin_service_level level,
				      const char *msg);

struct margin_service_options {
	const struct cfg *cfg;          /* instruments and "database"
					 * (required; borrowed for create) */
	const char *database;           /* overrides cfg->database */
	struct margin_store_options store;  /* busy timeout, size cap, ... */
	struct httpd_metrics *metrics;  /* NULL: no metrics */
	struct httpd_sse_hub *hub;      /* NULL: no "position" events */
	margin_service_log_fn log;      /* NULL: key=value lines on stderr */
	void *log_arg;
	size_t max_pending_events;      /* queue cap; 0: 1,000,000. Beyond
					 * it events are dropped, counted and
					 * logged */
	unsigned retry_ms;              /* store retry interval; 0: 1000 */
};

/*
 * Opens the store, loads every position into a new registry, replays the
 * event log for their last states, registers the metrics and starts the
 * writer thread. Positions that no longer fit the config (an instrument
 * removed, brackets now missing) are skipped with a warning and left in
 * the store. Errors: MK_ECONFIG (the config's margin settings do not fit:
 * more than 32 brackets), MK_EIO/MK_ESTATE from the store (err says
 * which file and why), MK_ENOMEM. On success *out is the new service.
 */
enum mk_status margin_service_create(const struct margin_service_options *o,
				     struct margin_service **out,
				     struct mk_err *err);

/* Stops the writer (after it has tried to write every queued event once),
 * closes the store and frees. NULL is accepted. */
void margin_service_destroy(struct margin_service *svc);

/*
 * The daemon's snapshot hook (the feeds thread calls it after each
 * publication; arg is the service): keeps a reference to snap for the
 * HTTP handlers and ticks the registry for every instrument whose mark
 * has a new seq. now_ms is unused (mark times drive the confirmation
 * window). Never blocks on I/O.
 */
void margin_service_on_snapshot(void *arg, const struct agg_snapshot *snap,
				int64_t now_ms);

/* Adds the margin routes (httpd/routes_margin.h) to r, before the server
 * starts. When the config names no token_file the write routes answer
 * 403 and need no token, so that the server starts without tokens. */
enum mk_status margin_service_routes(struct margin_service *svc,
				     struct httpd_router *r,
				     struct mk_err *err);

/* The same through add(ctx, ...), for a daemon that owns its router
 * (md_app_add_route behind a wrapper taking void *). */
enum mk_status margin_service_add_routes(struct margin_service *svc,
					 httpd_route_add_fn add, void *ctx,
					 struct mk_err *err);

/* The readiness hook (arg is the service): not ready while the store
 * refuses writes. */
void margin_service_ready(void *arg, struct httpd_readiness *r);

/* Waits until every queued event has been written (or has failed), at
 * most timeout_ms. True when the queue was drained. For tests and for a
 * clean shutdown. */
bool margin_service_flush(struct margin_service *svc, unsigned timeout_ms);

/* Counters, for tests and logs. */
struct margin_service_stats {
	size_t positions;
	size_t skipped_on_load;        /* stored positions not loaded */
	uint64_t evaluations;          /* positions evaluated by ticks */
	uint64_t events_written;
	uint64_t events_dropped;
	uint64_t store_errors;
	size_t pending;
};

void margin_service_stats(struct margin_service *svc,
			  struct margin_service_stats *out);

#endif
