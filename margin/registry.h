/*
 * registry.h - the in-memory registry of isolated-margin positions: per
 * instrument, the positions in a slab of compact records, ordered by their
 * watch price in two price indexes (longs, shorts), each with its decision
 * state tracker (DESIGN.md sections 6.4 and 6.5).
 *
 * The watch price. A long is safe while its adverse price (mark - conf)
 * stays at or above the root of MB(P) = MM(P) * (1 + buffer); a short while
 * its adverse price (mark + conf) stays at or below it. That root is the
 * liquidation price of the same position with every bracket's mmr and cum
 * multiplied by 1 + buffer (margin_liquidation on a "buffered" bracket
 * table), rounded half-even to the instrument's price scale and moved one
 * unit outwards (up for a long, down for a short) so that rounding can
 * never leave a position out of the candidates. Positions without a root
 * are never candidates; positions whose buffered mmr would reach 1 (the
 * margin is then not monotone in the price) are always candidates (they
 * stay in the hot set below).
 *
 * Thresholds. Besides the watch price, each position keeps its
 * liquidation and bankruptcy prices (margin_liquidation, half-even at the
 * price scale). Every verdict flag compares the mark or a band edge with
 * one of these three roots of strictly monotone functions, so a price
 * more than one unit away from a key decides the flag by an integer
 * comparison, exactly as margin_verdict would; a price closer to a key,
 * a lower edge at or below zero, or a position whose roots are not all
 * known (no buffered table, out of range) goes to margin_verdict. The
 * thresholds are recomputed on every write (put, replace, collateral).
 *
 * A tick (one mark) of an instrument visits:
 *   - the hot set: every position whose tracked state is not safe, every
 *     one without usable thresholds, and every one not evaluated since it
 *     was written or restored (or whose evaluation failed);
 *   - the safe positions that may leave "safe": a safe long outside the
 *     hot set had its adverse price at or above its buffered root at the
 *     instrument's last usable tick, so only longs whose watch price lies
 *     between this tick's adverse price and the previous one (when the
 *     price fell) can, found in the index at O(log n + k); shorts
 *     mirrored. A lower edge at or below zero takes every long below the
 *     previous adverse price (a position without a root can be bankrupt
 *     exactly at price 0);
 * each at most once, evaluated with the thresholds (or margin_verdict)
 * and margin_track. Any other position is safe before and after the
 * tick, so its state cannot change: the result is the same as evaluating
 * every position (tests/check_registry.c holds the registry to that,
 * tracker field by tracker field, with marks aimed at the thresholds).
 *
 * Held marks. A tick that is not usable for liquidation
 * (margin_tick_usable false) visits nobody and changes no tracker: every
 * position of the instrument then reports the state "held", with its last
 * valid state alongside, until the next usable tick. Nobody can become
 * liquidatable on such a tick. No event is produced for entering or
 * leaving "held" (it is a property of the instrument's mark, and would
 * otherwise cost one event per position). The instrument remembers when
 * its held stretch began and hands it to every position the next usable
 * tick evaluates, so that margin_track applies state.h's rule (a stretch
 * as long as the window starts a new confirmation run) exactly as if each
 * position had seen every held tick; positions not evaluated then have no
 * run to restart.
 *
 * Events. Each change of a position's tracked state is handed to the
 * caller's callback as a struct margin_registry_event, with the mark of
 * that moment, except the first evaluation of a new position when it is
 * safe (registering a healthy position is not news).
 *
 * Writes (put, replace, collateral) re-evaluate the position at once
 * against the instrument's last tick when that tick is usable.
 *
 * Pure code: no I/O, no clock, no globals, no threads; it allocates with
 * malloc and reports MK_ENOMEM.
 *
 * Thread safety: none inside. The caller serialises every call on one
 * registry (the margin service holds one mutex around it). A view
 * (margin_registry_get/list) may be used and released on any thread after
 * that mutex is dropped: the bracket table it references is kept alive by
 * an atomic reference count.
 *
 * Memory: a position costs one slab record (160 bytes, ids up to 39 bytes
 * inline; longer ids add a heap copy), its share of the id hash table
 * (4 to 16 bytes), its index entry (about 19 bytes) and its slot in the
 * hot set's reserve (4 bytes). Custom bracket
 * tables are interned per instrument and shared by every position that
 * brings the same table.
 */
#ifndef MARKD_MARGIN_REGISTRY_H
#define MARKD_MARGIN_REGISTRY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "aggregator/dec.h"
#include "aggregator/status.h"
#include "margin/position.h"
#include "margin/state.h"

/* Longest position id, in bytes (ids are opaque to the registry). */
#define MARGIN_REGISTRY_MAX_ID 128
/* Longest instrument symbol, with the NUL. */
#define MARGIN_REGISTRY_MAX_SYMBOL 32
/* Most instruments in one registry. */
#define MARGIN_REGISTRY_MAX_INSTRUMENTS 65535u
/* Most distinct custom bracket tables at once (each costs ~5 KiB). */
#define MARGIN_REGISTRY_MAX_TABLES 4096u
/* Most positions in one registry. */
#define MARGIN_REGISTRY_MAX_POSITIONS (UINT32_C(1) << 30)

struct margin_registry;

/* One instrument, as the registry is created with it. */
struct margin_registry_instrument {
	const char *symbol;                     /* 1..31 bytes, unique */
	struct margin_params params;            /* checked at create */
	const struct margin_brackets *brackets; /* the instrument's default
						 * table (ready; copied), or
						 * NULL: positions bring
						 * their own */
};

/* A transition handed to the event callback. Pointers are borrowed for
 * the duration of the callback. */
struct margin_registry_event {
	const char *id;
	size_t inst;
	const char *symbol;
	struct margin_event ev;
};

typedef void (*margin_registry_event_fn)(void *ctx,
					 const struct margin_registry_event *e);

/* What one tick cost. */
struct margin_registry_tick_stats {
	size_t visited;     /* positions evaluated */
	size_t exact;       /* of them, decided by margin_verdict (near a
			     * threshold, or without thresholds); the others
			     * by comparing the mark with the thresholds */
	size_t events;      /* events produced */
	size_t hot;         /* the instrument's hot set after the tick:
			     * positions every usable tick evaluates (not
			     * safe, not evaluated since written, or without
			     * thresholds) */
	size_t errors;      /* evaluations that failed (out of range); the
			     * tracker of such a position is left as it was */
	bool held;          /* the tick was not usable: nobody visited */
};

/*
 * A copy of one registered position, safe to use without the registry's
 * lock. pos.brackets points to a table the view holds a reference on:
 * release every view with margin_registry_view_release.
 */
struct margin_registry_view {
	uint32_t slot;                 /* the position's slab slot */
	size_t inst;
	const char *symbol;            /* registry-owned, lives as long as it */
	char id[MARGIN_REGISTRY_MAX_ID + 1];
	struct margin_position pos;
	bool custom_brackets;          /* pos.brackets is the position's own */
	struct margin_tracker tracker;
	enum margin_state state;       /* reported: held while the
					* instrument's last tick is not
					* usable, new before any evaluation */
	enum margin_state last_valid;  /* the tracked state */
	enum margin_reason reason;     /* MARGIN_REASON_MARK_INVALID when held */
	bool held;
	int64_t watch;                 /* the position's watch price
					* (mantissa at the price scale) */
	void *table_;                  /* private: the referenced table */
};

/* Filter for margin_registry_list. */
struct margin_registry_filter {
	bool has_inst;
	size_t inst;
	bool has_state;
	enum margin_state state;       /* the reported state */
};

/*
 * Creates a registry for insts[0..n), 1 <= n <= MARGIN_REGISTRY_MAX_INSTRUMENTS
 * (everything is copied). Errors: MK_EINVAL naming the instrument and field
 * (empty, long or duplicate symbol, bad params, a table that is not
 * ready), MK_ENOMEM. On success *out is a new registry.
 */
enum mk_status margin_registry_create(
	const struct margin_registry_instrument *insts, size_t n,
	struct margin_registry **out, struct mk_err *err);

/* Frees everything. Views still held keep their tables alive until they
 * are released. NULL is accepted. */
void margin_registry_destroy(struct margin_registry *reg);

/* Number of instruments; their symbols, parameters and default tables
 * (NULL when none), by index in creation order. */
size_t margin_registry_instruments(const struct margin_registry *reg);
const char *margin_registry_symbol(const struct margin_registry *reg,
				   size_t inst);
const struct margin_params *
margin_registry_params(const struct margin_registry *reg, size_t inst);
const struct margin_brackets *
margin_registry_brackets(const struct margin_registry *reg, size_t inst);

/* Index of the instrument named symbol into *inst: MK_OK or
 * MK_ENOTFOUND. O(log instruments). */
enum mk_status margin_registry_find(const struct margin_registry *reg,
				    const char *symbol, size_t *inst);

/*
 * Registers position id (1..MARGIN_REGISTRY_MAX_ID bytes) on instrument
 * inst, or replaces it (possibly moving it to another instrument). pos is
 * copied; pos->brackets must be ready: when it points to the instrument's
 * default table (margin_registry_brackets) the position uses that table,
 * otherwise its table is interned. A new position starts from `restore`
 * when not NULL (a tracker recovered from the event log: only its state,
 * reason and flags are kept, the confirmation run starts again as after
 * any rebuild of the aggregator), else from a new tracker; a replaced
 * position keeps its reported state but restarts its confirmation run.
 * Then the position
 * is evaluated at the instrument's last tick if that tick is usable, and
 * a transition goes to fn (may be NULL). *created (may be NULL) says
 * whether the id was new.
 * Errors (the registry is then unchanged): MK_EINVAL (bad id, instrument
 * or position; the message names the field), MK_ETOOBIG (too many
 * positions or bracket tables), MK_ENOMEM.
 */
enum mk_status margin_registry_put(struct margin_registry *reg,
				   const char *id, size_t inst,
				   const struct margin_position *pos,
				   const struct margin_tracker *restore,
				   margin_registry_event_fn fn, void *ctx,
				   bool *created, struct mk_err *err);

/*
 * Whether margin_registry_put of position id with these brackets (NULL:
 * the instrument's default) on instrument inst would be refused for want
 * of room: MK_ETOOBIG (too many positions or distinct bracket tables),
 * MK_EINVAL (bad instrument), else MK_OK. Allocates nothing; lets a
 * caller that must commit the position elsewhere first check under the
 * same lock, so that only running out of memory remains.
 */
enum mk_status margin_registry_room(const struct margin_registry *reg,
				    const char *id, size_t inst,
				    const struct margin_brackets *brackets,
				    struct mk_err *err);

/*
 * Sets the tracked state of registered position id from history (a
 * restart recovering the last recorded state, reason and flags; the
 * confirmation run starts again; a held or unknown state becomes new).
 * The position is not evaluated and no event is produced. MK_ENOTFOUND
 * when it is not registered.
 */
enum mk_status margin_registry_restore(struct margin_registry *reg,
				       const char *id,
				       const struct margin_tracker *t);

/* Removes position id. MK_ENOTFOUND when it is not registered. O(log n). */
enum mk_status margin_registry_remove(struct margin_registry *reg,
				      const char *id);

/*
 * Sets the collateral of position id (>= 0), moves its watch price and
 * re-evaluates it at the last tick if usable (the confirmation count goes
 * on: the same mark is not counted twice). Errors: MK_ENOTFOUND, MK_EINVAL
 * (negative), MK_ENOMEM; the registry is then unchanged.
 */
enum mk_status margin_registry_set_collateral(struct margin_registry *reg,
					      const char *id,
					      struct mk_dec collateral,
					      margin_registry_event_fn fn,
					      void *ctx, struct mk_err *err);

/*
 * One mark of instrument inst. The tick is kept as the instrument's last
 * one. When it is usable, the candidates (see the top of this file) are
 * evaluated and each transition goes to fn (may be NULL); when it is not,
 * nothing else happens. st (may be NULL) receives the counts.
 * Errors: MK_EINVAL for a bad instrument index. A tick never allocates
 * (the hot set's room is reserved when positions are registered).
 * Cost: O(log n + k + h) for k safe candidates and h in the hot set.
 */
enum mk_status margin_registry_on_mark(struct margin_registry *reg,
				       size_t inst,
				       const struct margin_tick *tick,
				       margin_registry_event_fn fn, void *ctx,
				       struct margin_registry_tick_stats *st);

/* The instrument's last tick into *tick: false when it has had none. */
bool margin_registry_last_tick(const struct margin_registry *reg, size_t inst,
			       struct margin_tick *tick);

/* A view of position id (release it). MK_ENOTFOUND when absent. */
enum mk_status margin_registry_get(const struct margin_registry *reg,
				   const char *id,
				   struct margin_registry_view *out);

/*
 * Views of the positions matching f (NULL: all), in slot order, starting
 * at slot *cursor: at most cap views into out[], after looking at no more
 * than max_scan slots (>= 1). Returns the number of views written;
 * *cursor becomes the slot to resume at, and *end is set when no slot is
 * left. Slots are reused after removals, so a position registered during a
 * paging may or may not be seen.
 */
size_t margin_registry_list(const struct margin_registry *reg,
			    uint32_t *cursor,
			    const struct margin_registry_filter *f,
			    struct margin_registry_view *out, size_t cap,
			    size_t max_scan, bool *end);

/* Releases a view's table reference; the view is then unusable. NULL and
 * released views are accepted. Any thread. */
void margin_registry_view_release(struct margin_registry_view *v);

/* Positions registered, in all and per reported state (counts has
 * MARGIN_STATE_COUNT entries). O(1). */
size_t margin_registry_count(const struct margin_registry *reg);
void margin_registry_state_counts(const struct margin_registry *reg,
				  size_t counts[MARGIN_STATE_COUNT]);

/* Bytes held by the registry (slab, id table, heap ids, indexes, sets,
 * tables), by its own accounting. O(instruments). */
size_t margin_registry_memory(const struct margin_registry *reg);

/* Verifies the internal invariants (every position in its index with its
 * watch price and thresholds, the hot sets, every position outside them
 * safe at the last usable tick by margin_verdict, the id table, the
 * counts). MK_OK or
 * MK_ESTATE naming the first broken one. O(n); for tests. */
enum mk_status margin_registry_check(const struct margin_registry *reg,
				     struct mk_err *err);

#endif
