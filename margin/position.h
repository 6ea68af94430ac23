/*
 * position.h - the isolated-margin position, its maintenance-margin bracket
 * table, and the per-instrument margin parameters (DESIGN.md section 6).
 *
 * Everything here is plain data with exact decimals (struct mk_dec); no
 * binary floating point touches a price, a size or an amount. The
 * functions validate and prepare these values; the evaluation lives in
 * margin/math.h, the statistics in margin/prob.h and the decision states
 * in margin/state.h.
 *
 * Conventions used by the whole margin module:
 *   - one-way isolated positions, linear (quote-margined, size in base
 *     units, amounts in the quote currency) or inverse (coin-margined,
 *     size in contracts of contract_size quote units of face value,
 *     amounts in the base coin);
 *   - a bracket covers the notional range [floor, cap) in the settlement
 *     currency (quote for linear, coin for inverse); the last bracket is
 *     open-ended for the calculations (its cap, when given, is only
 *     reported as exceeded);
 *   - liquidation condition: margin balance < maintenance margin,
 *     STRICTLY (a position with MB == MM is not liquidatable).
 *
 * Thread safety: pure functions over caller-owned data; reentrant.
 * Ownership: a position borrows its bracket table (struct margin_position
 * .brackets), which must outlive every call that uses the position.
 */
#ifndef MARKD_MARGIN_POSITION_H
#define MARKD_MARGIN_POSITION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "aggregator/dec.h"
#include "aggregator/status.h"

/* Most brackets a table may hold. */
#define MARGIN_MAX_BRACKETS 32

enum margin_kind {
	MARGIN_LINEAR = 0,   /* quote-margined: notional Q*P in quote */
	MARGIN_INVERSE = 1,  /* coin-margined: notional N*CS/P in coin */
};

enum margin_side {
	MARGIN_LONG = 1,
	MARGIN_SHORT = -1,
};

/* One maintenance-margin bracket: for a notional n in [floor, cap),
 * MM = n * mmr - cum. */
struct margin_bracket {
	struct mk_dec floor;  /* inclusive lower bound of the notional */
	struct mk_dec cap;    /* exclusive upper bound, when has_cap */
	struct mk_dec mmr;    /* maintenance-margin rate, 0 <= mmr < 1 */
	struct mk_dec cum;    /* maintenance amount, when has_cum */
	bool has_cap;         /* required for every bracket but the last */
	bool has_cum;         /* false: derived by margin_brackets_prepare */
};

/* A bracket table. Fill n and b[0..n), then call margin_brackets_prepare
 * once; evaluation refuses a table that is not ready. */
struct margin_brackets {
	size_t n;
	bool ready;           /* set by margin_brackets_prepare */
	struct margin_bracket b[MARGIN_MAX_BRACKETS];
};

struct margin_position {
	enum margin_kind kind;
	enum margin_side side;
	struct mk_dec size;           /* Q base units (linear), N contracts
				       * (inverse); > 0 */
	struct mk_dec contract_size;  /* inverse only: quote face value per
				       * contract (CS); > 0 */
	struct mk_dec entry_price;    /* EP > 0 */
	struct mk_dec collateral;     /* isolated wallet balance WB >= 0, in
				       * the settlement currency */
	bool has_leverage;            /* false: implied, see below */
	struct mk_dec leverage;       /* L > 0 when has_leverage */
	const struct margin_brackets *brackets;  /* borrowed, ready */
};
/*
 * Initial margin at a price P is notional(P) / L. Without a leverage the
 * position's leverage is the one its collateral implies at entry,
 * L = notional(EP) / WB, so IM(P) = WB * notional(P) / notional(EP)
 * (and IM = 0 when WB = 0).
 */

/* Per-instrument margin parameters. */
struct margin_params {
	int price_scale;         /* display scale of prices (8) */
	int amount_scale;        /* display scale of amounts in the settlement
				  * currency: the quote's for linear, the
				  * coin's for inverse (8) */
	int ratio_scale;         /* display scale of ratios (8) */
	uint32_t buffer_bps;     /* safe: MB >= MM * (1 + buffer) at the
				  * adverse edge (200 = 2%) */
	uint32_t confirm_marks;  /* K consecutive valid marks (3) */
	int64_t confirm_ms;      /* and T milliseconds (3000) */
};

/* Fills p with the defaults shown above. */
void margin_params_default(struct margin_params *p);

/* Checks every parameter: scales in 0..18, buffer_bps <= 10000,
 * confirm_marks >= 1, confirm_ms >= 0. MK_EINVAL naming the field. */
enum mk_status margin_params_check(const struct margin_params *p,
				   struct mk_err *err);

/*
 * Validates a bracket table and completes it: at least one and at most
 * MARGIN_MAX_BRACKETS brackets, brackets[0].floor == 0, each floor equal
 * to the previous cap (ascending and contiguous), cap > floor, a cap on
 * every bracket but the last, 0 <= mmr < 1. The maintenance amounts keep
 * MM continuous: cum[0] = 0 and
 *   cum[k] = cum[k-1] + floor[k] * (mmr[k] - mmr[k-1]).
 * A missing cum is filled in with this value; a given cum must equal it
 * exactly (otherwise MM would jump at the bracket boundary). Sets ready.
 * Errors: MK_EINVAL (or MK_ERANGE when a derived cum does not fit) with a
 * message naming the field, e.g. "brackets[2].floor: must equal
 * brackets[1].cap (250000)". The table is left not ready on error.
 */
enum mk_status margin_brackets_prepare(struct margin_brackets *t,
				       struct mk_err *err);

/*
 * Validates a position: size > 0, entry_price > 0, collateral >= 0,
 * contract_size > 0 for inverse, leverage > 0 when given, a known kind and
 * side, and a ready bracket table. MK_EINVAL with the field name first,
 * e.g. "size: must be positive".
 */
enum mk_status margin_position_check(const struct margin_position *p,
				     struct mk_err *err);

/* "linear"/"inverse", "long"/"short"; "?" for an unknown value. */
const char *margin_kind_name(enum margin_kind k);
const char *margin_side_name(enum margin_side s);

#endif
