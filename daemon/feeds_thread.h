/*
 * feeds_thread.h - the feeds thread (DESIGN.md section 2): it owns the
 * curl-multi poller (feeds/poller.h) and the aggregator's quote book
 * (aggregator/book.h), feeds every completed poll into the book at once,
 * ages the book on a periodic tick, and after each publication renders
 * the changed marks ONCE into shared bytes (httpd/render_marks.h) that
 * HTTP handlers serve as they are.
 *
 * What readers get is a view (struct md_view): an immutable, reference
 * counted bundle of one aggregator snapshot, the rendered bytes of each
 * of its marks, the displayed seq of each mark, whether each instrument
 * has ever had a valid mark, and the feed-health table of the poller in
 * use. Taking the current view costs a mutex held for a pointer read and
 * an increment; nothing a reader does waits for the feeds thread.
 *
 * Events: after each publication, an SSE "mark" event (the mark's JSON)
 * goes out for every instrument whose displayed seq, status, validity or
 * held flag changed; a "feed" event (the source's /v1/feeds object) for
 * every source whose health state changed (checked on each of its polls
 * and on every tick, so a source that stops answering turns "down"
 * without a new event from it). State changes are logged too.
 *
 * Reload (md_feeds_reload): the feeds thread compares the new config with
 * the one in use and rebuilds only what changed:
 *   - the poller when the set of polled (source, market) pairs or any
 *     polling setting of their sources changed (feed-health counters of
 *     the new poller start from zero);
 *   - the book when any instrument changed (symbol, parameters, legs).
 *     The last quote and the last fetch error of every (source, market)
 *     are replayed into the new book in time order, so marks are back at
 *     once; "seq" keeps growing per symbol across rebuilds; EMA, TWAP and
 *     volatility restart.
 * On any error nothing changes and the old config stays in use.
 *
 * Threads: md_feeds_start, md_feeds_reload and md_feeds_stop belong to
 * one controlling thread (main). The on_snapshot hook runs on the feeds
 * thread after every publication. md_feeds_view and the md_view_*
 * functions may be called from any thread.
 *
 * Ownership: the config passed to start or to a successful reload is
 * borrowed until the next successful reload or stop; the hub must outlive
 * the feeds thread. Views are released with md_view_release; pointers
 * reached through a view live as long as the view reference.
 */
#ifndef MARKD_DAEMON_FEEDS_THREAD_H
#define MARKD_DAEMON_FEEDS_THREAD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "aggregator/snapshot.h"
#include "aggregator/status.h"
#include "daemon/cfg.h"

struct feed_health_table;
struct httpd_buf;
struct httpd_sse_hub;
struct md_feeds;
struct md_view;

/* Called on the feeds thread after each publication with the snapshot
 * just published (borrowed for the call; take a reference to keep it)
 * and the evaluation time (Unix ms). Must be quick: the next poll result
 * waits for it. */
typedef void (*md_snapshot_fn)(void *arg, const struct agg_snapshot *snap,
			       int64_t now_ms);

struct md_feeds_config {
	const struct cfg *cfg;          /* required, borrowed (see above) */
	struct httpd_sse_hub *hub;      /* optional: mark and feed events */
	md_snapshot_fn on_snapshot;     /* optional */
	void *snapshot_arg;
	int64_t tick_ms;                /* re-evaluation period (250) */
	int64_t start_spread_ms;        /* first polls spread (1000) */
	uint64_t seed;                  /* backoff jitter seed (1) */
};

/* Defaults in brackets above; cfg NULL. */
void md_feeds_config_default(struct md_feeds_config *c);

/*
 * Starts the feeds thread, which builds the book and the poller from
 * c->cfg and publishes a first view (no marks have data yet) before this
 * returns. Errors: MK_ECONFIG (the aggregator or the poller refused a
 * value; err says which), MK_ENOMEM, MK_EIO (thread or curl failure).
 */
enum mk_status md_feeds_start(const struct md_feeds_config *c,
			      struct md_feeds **out, struct mk_err *err);

/* What a successful reload changed. */
struct md_reload_info {
	bool book_rebuilt;
	bool poller_rebuilt;
	size_t instruments;
	size_t jobs;             /* (source, market) pairs polled */
	size_t replayed;         /* quotes and errors replayed */
};

/*
 * Hands cfg to the feeds thread and waits until it has been applied
 * (within one tick) or refused. On success cfg is in use (borrowed) and
 * the caller may free the previous one; on failure (err says why: as
 * md_feeds_start, or MK_ESTATE when the thread has stopped) the previous
 * config stays in use and cfg is not referenced. info may be NULL.
 */
enum mk_status md_feeds_reload(struct md_feeds *f, const struct cfg *cfg,
			       struct md_reload_info *info,
			       struct mk_err *err);

/* Whether the feeds thread has stopped on a fatal error (the poller's
 * multi handle failed); why (may be NULL) receives it. */
bool md_feeds_failed(struct md_feeds *f, struct mk_err *why);

/* Stops the thread (within one tick), joins it and frees everything.
 * Views still held by readers stay valid until released, except their
 * health table: stop the HTTP server first. NULL is accepted. */
void md_feeds_stop(struct md_feeds *f);

/* ---- views (any thread) ---- */

/* The current view, a new reference (never NULL after a successful
 * start). */
const struct md_view *md_feeds_view(struct md_feeds *f);

/* Drops a reference; NULL accepted. */
void md_view_release(const struct md_view *v);

/* The snapshot shown (borrowed). */
const struct agg_snapshot *md_view_snapshot(const struct md_view *v);

/* Number of instruments, and the index of symbol (exact match) or -1.
 * O(log n). */
size_t md_view_count(const struct md_view *v);
long md_view_find(const struct md_view *v, const char *symbol);

/* The rendered JSON of instrument i (borrowed; httpd_buf_ref to keep),
 * or NULL when it could not be rendered (out of memory). */
struct httpd_buf *md_view_mark(const struct md_view *v, size_t i);

/* {"marks":[...]} of every instrument (borrowed), built on first use per
 * view; NULL when out of memory. */
struct httpd_buf *md_view_all(const struct md_view *v);

/* The seq shown for instrument i, and whether it has had a valid mark
 * since start (carried across reloads by symbol). */
uint64_t md_view_seq(const struct md_view *v, size_t i);
bool md_view_ever_valid(const struct md_view *v, size_t i);

/* The feed-health table of the poller in use (borrowed; readable from
 * any thread while the view is held). */
struct feed_health_table *md_view_health(const struct md_view *v);

#endif
