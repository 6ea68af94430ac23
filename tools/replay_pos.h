/*
 * replay_pos.h - the positions markd-replay evaluates: a grid spec or a
 * JSON file, entered in simulated time at the markd mark.
 *
 * Grid spec "grid:LEVERAGES:EVERY_MIN", e.g. grid:5,10,25,50,100:30: a
 * long and a short at each leverage, entered every EVERY_MIN minutes from
 * the start of the window, size 1 (base unit, or contract for an inverse
 * instrument), collateral = notional at entry / leverage, the
 * instrument's contract kind and brackets.
 *
 * Positions file: a JSON array (or {"positions": [...]}) of objects
 *   {"id": "p1", "at": "2023-03-10T10:00:00Z" | 1678442400,
 *    "side": "long" | "short", "size": "1",
 *    "entry_price": "20000",     optional: the markd mark at entry
 *    "collateral": "400",        one of collateral and leverage, or both
 *    "leverage": "50"}
 * with decimals as strings or numbers; "id" defaults to "p<index>".
 *
 * A position is entered at the first step at or after its "at" time at
 * which the markd mark is valid for liquidation; one never entered within
 * the window takes no part in the results.
 *
 * Thread safety: plain data, one writer. Ownership: a struct
 * replay_positions owns its array (replay_positions_clear).
 */
#ifndef MARKD_TOOLS_REPLAY_POS_H
#define MARKD_TOOLS_REPLAY_POS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "aggregator/dec.h"
#include "aggregator/status.h"
#include "margin/math.h"
#include "margin/position.h"

#define REPLAY_GRID_MAX_LEVERAGES 32
#define REPLAY_MAX_POSITIONS 200000
#define REPLAY_POS_ID_MAX 64
#define REPLAY_POS_FILE_MAX (64u << 20)

struct replay_grid {
	size_t nlev;
	struct mk_dec lev[REPLAY_GRID_MAX_LEVERAGES];  /* > 0, <= 1000 */
	int64_t every_min;                             /* 1..525600 */
};

struct replay_position {
	char id[REPLAY_POS_ID_MAX];
	int64_t at_ms;                /* asked entry time */
	enum margin_side side;
	struct mk_dec size;
	bool has_entry, has_collateral, has_leverage;
	struct mk_dec entry, collateral, leverage;
	/* Set by replay_position_enter. */
	bool entered;
	int64_t entry_ms;
	size_t entry_step;
	struct margin_position pos;   /* borrows the instrument's brackets */
	struct margin_liq liq;
	bool has_lp;
	int64_t lp;                   /* liquidation price mantissa at the
				       * instrument's scale */
};

struct replay_positions {
	size_t n;
	struct replay_position *p;    /* sorted by at_ms, then file order */
};

/*
 * Parses a grid spec. MK_EINVAL with a message naming the part that is
 * wrong, e.g. "grid:5,x:30: leverage \"x\" is not a decimal".
 */
enum mk_status replay_grid_parse(const char *spec, struct replay_grid *g,
				 struct mk_err *err);

/* The grid's positions for the window [from_ms, to_ms) into *out (new).
 * MK_ETOOBIG beyond REPLAY_MAX_POSITIONS, MK_ENOMEM. */
enum mk_status replay_grid_positions(const struct replay_grid *g,
				     int64_t from_ms, int64_t to_ms,
				     struct replay_positions *out,
				     struct mk_err *err);

/* Reads a positions file into *out (new). Errors name the file and the
 * JSON path ("pos.json: positions[2].side: ..."): MK_EIO, MK_ETOOBIG,
 * MK_EPARSE (not JSON: line and column), MK_EINVAL (bad content),
 * MK_ENOMEM. */
enum mk_status replay_positions_load(const char *path,
				     struct replay_positions *out,
				     struct mk_err *err);

/* Releases the array; NULL accepted. */
void replay_positions_clear(struct replay_positions *ps);

/*
 * Enters p at time t_ms (step `step`) at `mark` (unless it brings its own
 * entry price): fills pos (kind, brackets and contract size given), the
 * collateral from the leverage when it has none, and the liquidation
 * price at prm->price_scale. Errors (MK_EINVAL, MK_ERANGE) name the
 * position's id.
 */
enum mk_status replay_position_enter(struct replay_position *p,
				     enum margin_kind kind,
				     struct mk_dec contract_size,
				     const struct margin_brackets *b,
				     const struct margin_params *prm,
				     struct mk_dec mark, int64_t t_ms,
				     size_t step, struct mk_err *err);

#endif
