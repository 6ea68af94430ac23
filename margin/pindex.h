/*
 * pindex.h - the price-ordered position index of the margin registry.
 *
 * One index holds the positions of one instrument and one side. Each entry
 * is a key (watch price, slot): the watch price is an int64 mantissa at
 * the instrument's scale, computed by the caller (the price beyond which
 * the position's state can be anything other than safe), and the slot is
 * the caller's uint32 handle for the full record (an index into its slab).
 * Entries are kept in ascending (price, slot) order in a B+-tree whose
 * leaves are chained, so a tick asks for a price range and pays
 * O(log n + k) for the k entries in it; insert, update and remove are
 * O(log n). Leaves hold 64 keys in parallel arrays (12 bytes a key), so
 * the index costs about 18 bytes an entry at the usual fill.
 *
 * How the registry uses it (adverse price = mark - conf for longs, mark +
 * conf for shorts): positions that are not safe are kept apart and
 * evaluated on every tick, so the index only has to find the safe ones
 * that may enter the non-safe region: when the adverse price fell, the
 * longs whose watch price lies between the current and the previous
 * adverse price (shorts mirrored); see margin/registry.h.
 *
 * Pure code: no I/O, no clock, no globals; it allocates its nodes with
 * malloc and reports MK_ENOMEM instead of aborting, leaving the index as
 * it was.
 *
 * Thread safety: an index has no lock. Readers may share it; a writer
 * needs it to itself. Different indexes are independent.
 * Ownership: the index owns its nodes; slots are plain numbers to it.
 */
#ifndef MARKD_MARGIN_PINDEX_H
#define MARKD_MARGIN_PINDEX_H

#include <stddef.h>
#include <stdint.h>

#include "aggregator/status.h"

struct margin_pindex;

/* A range scan in progress for margin_pindex_collect(): the next key to
 * return and the upper price bound. Plain data; the caller owns it and
 * may keep it across modifications of the index. */
struct margin_pindex_scan {
	int64_t next_price;     /* resume at key >= (next_price, next_slot) */
	uint32_t next_slot;
	int done;               /* non-zero once the range is exhausted */
	int64_t hi;             /* last price in the range (inclusive) */
};

/* Visitor for margin_pindex_range(): returns 0 to continue, non-zero to
 * stop the walk. It must not modify the index it is walking. */
typedef int (*margin_pindex_visit_fn)(void *ctx, int64_t price,
				      uint32_t slot);

/* Creates an empty index. Returns a new index in *out, or MK_ENOMEM. */
enum mk_status margin_pindex_create(struct margin_pindex **out);

/* Frees the index and all its nodes. NULL is accepted. */
void margin_pindex_destroy(struct margin_pindex *ix);

/* Number of entries. O(1). */
size_t margin_pindex_count(const struct margin_pindex *ix);

/* Bytes held by the index's nodes and header (its own accounting, without
 * the allocator's per-block overhead). O(1). */
size_t margin_pindex_memory(const struct margin_pindex *ix);

/* Adds the key (price, slot). Every int64 price and uint32 slot is valid;
 * several slots may share a price.
 * Errors: MK_ESTATE when that exact key is present already (the index is
 * unchanged), MK_ENOMEM (the index is unchanged). O(log n). */
enum mk_status margin_pindex_insert(struct margin_pindex *ix, int64_t price,
				    uint32_t slot);

/* Removes the key (price, slot). Error: MK_ENOTFOUND when it is absent.
 * Never allocates. O(log n). */
enum mk_status margin_pindex_remove(struct margin_pindex *ix, int64_t price,
				    uint32_t slot);

/* Moves a slot from old_price to new_price (remove then insert; nothing
 * happens when the prices are equal and the key is present).
 * Errors: MK_ENOTFOUND when (old_price, slot) is absent, MK_ESTATE when
 * (new_price, slot) is present already, MK_ENOMEM; on every error the
 * index is unchanged. O(log n). */
enum mk_status margin_pindex_update(struct margin_pindex *ix,
				    int64_t old_price, int64_t new_price,
				    uint32_t slot);

/* 1 when the key (price, slot) is present, else 0. O(log n). */
int margin_pindex_contains(const struct margin_pindex *ix, int64_t price,
			   uint32_t slot);

/* Calls fn for every entry with lo <= price <= hi, in ascending (price,
 * slot) order, until fn returns non-zero. Returns the number of calls
 * made. An empty range (lo > hi) makes no call. O(log n + k). */
size_t margin_pindex_range(const struct margin_pindex *ix, int64_t lo,
			   int64_t hi, margin_pindex_visit_fn fn, void *ctx);

/* Starts a scan of the entries with lo <= price <= hi. */
void margin_pindex_scan_init(struct margin_pindex_scan *sc, int64_t lo,
			     int64_t hi);

/* Copies the slots of the scan's next entries (ascending key order) into
 * out[0..cap) and returns how many it wrote; advances the scan past them
 * and sets sc->done once the range holds no more. Because the scan
 * resumes by key, the index may be modified between calls: entries added
 * behind the scan position are not seen, entries removed are not
 * returned. cap == 0 writes nothing. O(log n + returned). */
size_t margin_pindex_collect(const struct margin_pindex *ix,
			     struct margin_pindex_scan *sc, uint32_t *out,
			     size_t cap);

/* Verifies the tree's invariants (key order, node fill, separators, leaf
 * chain, count, memory accounting). Returns MK_OK or MK_ESTATE with a
 * message in err naming the first broken invariant. O(n); for tests. */
enum mk_status margin_pindex_check(const struct margin_pindex *ix,
				   struct mk_err *err);

#endif
