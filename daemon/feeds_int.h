/*
 * feeds_int.h - private to the feeds thread (feeds_thread.c), its feed
 * sets (feedset.c) and its views (view.c).
 *
 * A feed set is a poller with its jobs, one job per polled (source,
 * market) pair, and what each job last delivered. Readers reach its
 * health table through views, so it is reference counted; it is freed
 * by the feeds thread only (md_feedset_retire waits for readers).
 *
 * Thread safety: everything here belongs to the feeds thread, except
 * the reference counts (atomic) and what md_view_* (feeds_thread.h)
 * reads, which never changes after publication.
 */
#ifndef MARKD_DAEMON_FEEDS_INT_H
#define MARKD_DAEMON_FEEDS_INT_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "aggregator/book.h"
#include "aggregator/quote.h"
#include "aggregator/snapshot.h"
#include "daemon/cfg.h"
#include "feeds/health.h"
#include "feeds/poller.h"

struct httpd_buf;

/* One polled (source, market) pair: its leg ids in the current book and
 * what it last delivered (replayed into a rebuilt book). */
struct md_job {
	char source[AGG_SOURCE_MAX];
	char market[AGG_MARKET_MAX];
	size_t src;                   /* index into md_feedset.srcs */
	size_t *legs;
	size_t nlegs;
	bool has_quote;
	struct agg_quote q;
	int64_t q_ms;
	bool has_err;                 /* an error after the last quote */
	enum agg_fetch_error ekind;
	char etext[AGG_ERROR_MAX];
	int64_t e_ms;
};

/* A source's state as last announced (feed event and log). */
struct md_src_state {
	char name[AGG_SOURCE_MAX];
	bool known;
	enum feed_state state;
};

struct md_feedset {
	atomic_uint refs;
	struct feed_poller *poller;
	struct feed_adapter_opts **opts;  /* per config source, or NULL */
	size_t nopts;
	struct md_job *jobs;              /* sorted by (source, market) */
	size_t njobs;
	struct md_src_state *srcs;        /* in the health table's order */
	size_t nsrcs;
};

/* Instruments sorted by symbol, shared by the views of one book. */
struct md_symidx {
	atomic_uint refs;
	size_t n;
	size_t idx[];
};

struct md_view {
	atomic_uint refs;
	const struct agg_snapshot *snap;  /* a reference */
	struct md_feedset *fs;            /* a reference */
	struct md_symidx *idx;            /* a reference */
	size_t n;
	_Atomic(struct httpd_buf *) all;  /* built on first use */
	struct httpd_buf **marks;         /* n references (or NULL) */
	uint64_t *seq;
	bool *ever_valid;
};

/* ---- config comparison (feedset.c) ---- */

/* Whether a and b poll exactly the same (source, market) pairs with the
 * same polling settings (false also when out of memory). */
bool md_cfg_jobs_same(const struct cfg *a, const struct cfg *b);

/* Whether the aggregator would be built identically from a and b. */
bool md_cfg_book_same(const struct cfg *a, const struct cfg *b);

/* ---- feed sets (feedset.c) ---- */

/*
 * Builds a poller (configured by pc) with one job per (source, market)
 * of cfg, jobs without leg ids yet. Errors: those of feed_poller_create,
 * feed_adapter_opts_create and feed_poller_add_job. Feeds thread.
 */
enum mk_status md_feedset_build(const struct cfg *cfg,
				const struct feed_poller_config *pc,
				struct md_feedset **out, struct mk_err *err);

/* Frees at once (NULL accepted): no reader may hold it. */
void md_feedset_free(struct md_feedset *fs);

/* Drops the caller's reference, waits (up to 5 s) for readers to drop
 * theirs, then frees; leaks it with an error log if they do not. */
void md_feedset_retire(struct md_feedset *fs);

/* Copies into fs what the jobs of old with the same (source, market)
 * delivered, and the sources' announced states. */
void md_feedset_carry(struct md_feedset *fs, const struct md_feedset *old);

/*
 * Replays the last quote and error of every job of fs into book, in time
 * order, using scratch (room for the most legs of a job). Returns the
 * number of events replayed.
 */
size_t md_feedset_replay(const struct md_feedset *fs, struct agg_book *book,
			 struct agg_quote *scratch);

/* Leg ids planned for the jobs of a feed set, computed before they are
 * put in place so that a failure changes nothing. */
struct md_leg_plan {
	size_t njobs;
	size_t **legs;
	size_t *counts;
	size_t maxlegs;               /* the most legs of one job (>= 1) */
};

/*
 * Computes for each job of fs (whose job keys are cfg's) its leg ids in
 * book (built from cfg). Errors: MK_ENOMEM, MK_EINVAL (out of step).
 */
enum mk_status md_plan_legs(const struct md_feedset *fs,
			    const struct agg_book *book, const struct cfg *cfg,
			    struct md_leg_plan *plan, struct mk_err *err);

/* Puts the planned ids in place; the plan is emptied. */
void md_plan_commit(struct md_feedset *fs, struct md_leg_plan *plan);

/* Frees a plan (also an empty or failed one). */
void md_plan_free(struct md_leg_plan *plan);

/* ---- views (view.c) ---- */

/* The symbol index of cfg's instruments, one reference; NULL on OOM. */
struct md_symidx *md_symidx_build(const struct cfg *cfg);
void md_symidx_unref(struct md_symidx *s);

/* A view with n empty slots and one reference; NULL on OOM. The writer
 * fills it, then publishes it. */
struct md_view *md_view_alloc(size_t n);

/* Takes one more reference. */
void md_view_ref(struct md_view *v);

#endif
