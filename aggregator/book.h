/*
 * book.h - the quote book and the robust mark (DESIGN.md section 5).
 *
 * A struct agg_book holds, for every configured instrument, the latest
 * quote and fetch error of each leg and the statistics of its marks. Each
 * update entry point (a quote, a fetch error, a clock tick) re-evaluates
 * the instruments it affects -- the instrument of the leg and, through
 * quote-currency conversions, every instrument that converts through it --
 * and publishes a new immutable snapshot (snapshot.h) with the new marks
 * and the unchanged ones shared.
 *
 * Legs are named by a leg id: a number in [0, total legs) that counts the
 * legs of instrument 0, then those of instrument 1, and so on, in spec
 * order. agg_book_leg_id and agg_book_find_legs produce them.
 *
 * Pure and deterministic: time is the now_ms argument (Unix ms), nothing
 * here reads a clock, does I/O or keeps globals; the same sequence of calls
 * gives bit-identical snapshots. Money is exact (struct mk_dec and 128-bit
 * integers); only the volatility statistic uses double.
 *
 * Thread safety: one writer. agg_book_create, agg_book_destroy, the update
 * entry points and agg_book_mark must be called from one thread at a time
 * (the feeds thread). agg_book_acquire may be called from any thread at any
 * time while the book exists; the snapshot it returns stays valid after the
 * book is destroyed, until released.
 *
 * Memory: the book allocates its state at creation, and one mark per
 * re-evaluated instrument plus one pointer array per publication; it copies
 * whatever it keeps from the specs.
 */
#ifndef MARKD_AGGREGATOR_BOOK_H
#define MARKD_AGGREGATOR_BOOK_H

#include <stddef.h>
#include <stdint.h>

#include "aggregator/instrument.h"
#include "aggregator/quote.h"
#include "aggregator/snapshot.h"
#include "aggregator/status.h"

struct agg_book;

/* Times passed in (now_ms) must lie in [0, AGG_MAX_TIME_MS] (Unix ms; the
 * bound is far in the future and keeps every time difference and every
 * price * time product exact). */
#define AGG_MAX_TIME_MS (INT64_C(1) << 50)

/* What kind of fetch failure agg_book_error reports. */
enum agg_fetch_error {
	/* Transport error, timeout, HTTP 5xx, rate limit: says nothing about
	 * the price. A still-fresh quote stays in use; staleness takes over
	 * if the failures last. */
	AGG_FETCH_TRANSIENT,
	/* The venue answered, but with an error envelope or a body that could
	 * not be parsed: the leg is excluded (reason "error") until its next
	 * good quote. */
	AGG_FETCH_BAD_DATA,
};

/*
 * Builds a book for specs[0..n) (copied; the caller keeps ownership) and
 * publishes a first snapshot in which nothing has data yet.
 * Errors (err->msg names the instrument and the field): MK_ECONFIG for an
 * invalid spec -- no instruments, a bad scale, an empty or duplicate
 * symbol, no legs, min_sources of 0 or above the leg count, a zero weight,
 * a non-positive or too long age, window or half-life, a convert_via out of
 * range or naming the instrument itself, a conversion cycle (the message
 * lists it); MK_ENOMEM; MK_EIO when the publisher's mutex cannot be made.
 * On success *out is a new book for agg_book_destroy.
 */
enum mk_status agg_book_create(const struct agg_instrument_spec *specs,
			       size_t n, struct agg_book **out,
			       struct mk_err *err);

/* Frees the book (NULL allowed). Snapshots still held by readers stay
 * valid until released. No reader may be inside agg_book_acquire. */
void agg_book_destroy(struct agg_book *book);

/* Number of instruments; instrument i is specs[i] of the creation. */
size_t agg_book_count(const struct agg_book *book);

/* Index of the instrument named `symbol` into *inst; MK_ENOTFOUND. */
enum mk_status agg_book_find(const struct agg_book *book, const char *symbol,
			     size_t *inst);

/* Leg id of leg `leg` of instrument `inst`; MK_EINVAL when out of range. */
enum mk_status agg_book_leg_id(const struct agg_book *book, size_t inst,
			       size_t leg, size_t *id);

/*
 * Leg ids of every leg whose source and market are the given ones (one
 * venue market can feed several instruments), in increasing order: the
 * first min(count, cap) go to ids[]; returns count. Cost O(total legs).
 */
size_t agg_book_find_legs(const struct agg_book *book, const char *source,
			  const char *market, size_t *ids, size_t cap);

/*
 * Records a quote for leg `id`, received at now_ms (it replaces the
 * previous quote and clears a bad-data error), re-evaluates the instrument
 * and those converting through it at now_ms, and publishes. A quote whose
 * values are unusable is recorded and excluded with its reason; it is not
 * an error of the call.
 * Errors: MK_EINVAL for a bad id, a NULL quote or a now_ms out of range
 * (nothing changes);
 * MK_ENOMEM (the quote is kept, and instruments not yet re-evaluated are
 * re-evaluated by the next successful call).
 */
enum mk_status agg_book_quote(struct agg_book *book, size_t id,
			      const struct agg_quote *q, int64_t now_ms);

/* The same for n quotes at once (one venue response can carry several):
 * every quote is recorded first, then each affected instrument is
 * re-evaluated once and one snapshot is published. MK_EINVAL (nothing
 * recorded) when any id is bad. */
enum mk_status agg_book_quotes(struct agg_book *book, const size_t *ids,
			       const struct agg_quote *qs, size_t n,
			       int64_t now_ms);

/*
 * Records a failed fetch for leg `id` at now_ms with its text (copied, cut
 * at AGG_ERROR_MAX - 1 bytes; NULL is ""), re-evaluates and publishes.
 * AGG_FETCH_BAD_DATA excludes the leg until its next quote;
 * AGG_FETCH_TRANSIENT is only shown. Errors as agg_book_quote.
 */
enum mk_status agg_book_error(struct agg_book *book, size_t id,
			      enum agg_fetch_error kind, const char *text,
			      int64_t now_ms);

/*
 * Re-evaluates every instrument at now_ms without new input, so quotes
 * ageing into staleness, the loss of the quorum and the age of a held mark
 * show up even when the feeds are silent; publishes. MK_EINVAL for a
 * now_ms out of range; MK_ENOMEM as above.
 */
enum mk_status agg_book_tick(struct agg_book *book, int64_t now_ms);

/* The latest snapshot, a new reference for the caller (release it with
 * agg_snapshot_release). Never NULL after a successful create. Any thread. */
const struct agg_snapshot *agg_book_acquire(struct agg_book *book);

/* The current mark of instrument `inst` (borrowed; valid until the next
 * update call), or NULL when out of range. Writer thread only. */
const struct agg_mark *agg_book_mark(const struct agg_book *book,
				     size_t inst);

#endif
