/*
 * math.h - exact evaluation of an isolated-margin position: the figures
 * at a price, the liquidation and bankruptcy prices, distances and
 * probabilities, top-ups, the most collateral that can be removed, the
 * greeks, the same at both band edges, and the exact verdict flags the
 * decision states are built on (margin-vectors.md sections 1 and 4).
 *
 * Exactness. Decisions compare exact values: MB < MM (liquidation, strict),
 * MB <= 0 (bankrupt), MB >= MM * (1 + buffer) (safe). For linear contracts
 * every quantity is a product of decimals; for inverse contracts, where
 * 1/P and 1/EP appear, everything is multiplied by the positive EP * P
 * first, so each comparison is an exact integer comparison (margin/exact.h
 * holds the wide integers). Reported values are rounded once, from the
 * exact value, to the scales of struct margin_params:
 *   - prices, amounts, ratios: half-even (the display rule);
 *   - top-ups: up (applying a suggested top-up always meets its target);
 *   - the most removable collateral: down (removing it keeps the target).
 * Statistics (distances in log and sigma units, probabilities, greeks
 * other than the exposure) are double.
 *
 * Units: linear amounts are in the quote currency and prices per base
 * unit; inverse amounts (notional, PnL, balances, margins) are in the
 * coin. Ratios are fractions (0.156 is 15.6%), except distance_pct which
 * is in percent.
 *
 * No allocation, no globals: every function works on the caller's stack
 * (a few kilobytes at most). Pure and reentrant.
 */
#ifndef MARKD_MARGIN_MATH_H
#define MARKD_MARGIN_MATH_H

#include <stdbool.h>
#include <stddef.h>

#include "aggregator/dec.h"
#include "aggregator/status.h"
#include "margin/position.h"
#include "margin/prob.h"

/* The position at one price. */
struct margin_figures {
	struct mk_dec price;               /* where it was evaluated */
	struct mk_dec notional;            /* Q*P or N*CS/P */
	struct mk_dec unrealized_pnl;
	struct mk_dec margin_balance;      /* MB = collateral + uPnL */
	struct mk_dec initial_margin;      /* notional / leverage */
	struct mk_dec maintenance_margin;  /* MM = notional * mmr - cum */
	bool has_margin_ratio;             /* false when MB <= 0 */
	struct mk_dec margin_ratio;        /* MM / MB */
	bool has_health;                   /* false when MM == 0 */
	struct mk_dec health;              /* MB / MM */
	bool has_effective_leverage;       /* false when MB <= 0 */
	struct mk_dec effective_leverage;  /* notional / MB */
	size_t bracket;                    /* index of the notional's bracket */
	bool beyond_cap;                   /* notional >= the last bracket's cap */
	bool breached;                     /* MB < MM (exact) */
	bool bankrupt;                     /* MB <= 0 (exact) */
	bool buffered;                     /* MB >= MM * (1 + buffer) (exact) */
};

/*
 * The figures at `price` (> 0). Ratios that would not fit their scale are
 * reported as absent. Errors: MK_EINVAL for a bad position, parameter or
 * price (the message names the field), MK_ERANGE when an amount does not
 * fit at its scale.
 */
enum mk_status margin_figures_at(const struct margin_position *p,
				 const struct margin_params *prm,
				 struct mk_dec price, struct margin_figures *out,
				 struct mk_err *err);

/* Liquidation and bankruptcy prices (independent of the mark). */
struct margin_liq {
	bool has_price;           /* false: no liquidation price ("null") */
	bool out_of_range;        /* a liquidation price exists but is too
				   * large for a 64-bit mantissa at
				   * price_scale; has_price is false */
	struct mk_dec price;      /* the exact root of MB(P) = MM(P), rounded
				   * half-even to price_scale */
	size_t bracket;           /* the bracket holding the notional at the
				   * exact liquidation price */
	bool has_bankruptcy;      /* false: MB > 0 at every price */
	bool bankruptcy_out_of_range;  /* as out_of_range */
	struct mk_dec bankruptcy; /* MB(P) = 0, half-even */
};

/*
 * The liquidation price: for each bracket the candidate that solves
 * MB = MM with that bracket's mmr and cum is computed exactly, and the one
 * whose notional at the candidate lies in [floor, cap) is kept (the last
 * bracket is open-ended). There is none (has_price = false) when the
 * position cannot be liquidated at any positive price: a linear long with
 * WB + cum >= Q * EP, an inverse short with WB + cum >= N * CS / EP.
 * A long is liquidatable strictly below it, a short strictly above it.
 * A price too large to represent (a short within a hair of 1x) is
 * reported as none, with out_of_range set; so is such a bankruptcy price.
 */
enum mk_status margin_liquidation(const struct margin_position *p,
				  const struct margin_params *prm,
				  struct margin_liq *out, struct mk_err *err);

/*
 * Collateral to add (>= 0, rounded up to amount_scale) so that at `price`
 * the margin ratio MM/MB is at most `target` (> 0), or the health MB/MM at
 * least `target` (> 0). Adding collateral does not change MM.
 */
enum mk_status margin_topup_margin_ratio(const struct margin_position *p,
					 const struct margin_params *prm,
					 struct mk_dec price,
					 struct mk_dec target,
					 struct mk_dec *out,
					 struct mk_err *err);
enum mk_status margin_topup_health(const struct margin_position *p,
				   const struct margin_params *prm,
				   struct mk_dec price, struct mk_dec target,
				   struct mk_dec *out, struct mk_err *err);

/*
 * Collateral to add (>= 0, rounded up) so that the liquidation price is at
 * or below `target` for a long, at or above it (or gone) for a short:
 * MM(target) - MB(target), with MM in the bracket of the notional at the
 * target. Independent of the mark.
 */
enum mk_status margin_topup_liq_price(const struct margin_position *p,
				      const struct margin_params *prm,
				      struct mk_dec target, struct mk_dec *out,
				      struct mk_err *err);

/*
 * Collateral to add so that the probability of liquidation within the
 * horizon of `v` is at most `prob` (0 < prob < 1): the target liquidation
 * price is price * e^{-d*} for a long, price * e^{+d*} for a short, with
 * d* = margin_prob_distance(); it is rounded half-even to price_scale and
 * returned in *liq_price (may be NULL), then margin_topup_liq_price
 * applies.
 */
enum mk_status margin_topup_probability(const struct margin_position *p,
					const struct margin_params *prm,
					struct mk_dec price, double prob,
					const struct margin_vol *v,
					struct mk_dec *liq_price,
					struct mk_dec *out, struct mk_err *err);

/*
 * The most collateral that can be withdrawn at `price` (>= 0, rounded
 * down): min(collateral, MB - IM, MB - health * MM), so that afterwards
 * the margin balance still covers the initial margin at the price and the
 * health is still at least `health` (> 0). With an implied leverage the
 * IM is taken as it is before the withdrawal.
 */
enum mk_status margin_max_removable(const struct margin_position *p,
				    const struct margin_params *prm,
				    struct mk_dec price, struct mk_dec health,
				    struct mk_dec *out, struct mk_err *err);

/* Sensitivities at a price (section 4.7). */
struct margin_greeks {
	double delta;            /* dMB/dP in the settlement currency per
				  * price unit: s*Q, or s*N*CS/P^2 */
	double gamma;            /* 0, or -2*s*N*CS/P^3 */
	struct mk_dec exposure;  /* delta of the quote-valued equity, in
				  * base units: s*Q exactly (linear), or
				  * WB + s*N*CS/EP half-even at amount_scale
				  * (inverse; 0 for a 1x short) */
};

enum mk_status margin_greeks_at(const struct margin_position *p,
				const struct margin_params *prm,
				struct mk_dec price, struct margin_greeks *out,
				struct mk_err *err);

/* Distance to liquidation from a price. */
struct margin_risk {
	bool has_distance;          /* false: no liquidation price */
	bool has_distance_pct;      /* false also when it does not fit */
	struct mk_dec distance_pct; /* 100 * s * (P - LP) / P, ratio_scale,
				     * half-even; <= 0 at or past LP */
	double distance_log;        /* s * ln(P / LP) */
	bool has_stats;             /* a volatility model was given */
	double z;                   /* distance_log / (sigma sqrt T) */
	double p_liq;               /* first passage within T, continuous
				     * monitoring; 1 at or past LP, 0 when
				     * there is no LP */
	double p_liq_discrete;      /* with the BGK correction for the
				     * model's sample_s (= p_liq when 0) */
};

/* Targets for margin_evaluate (each optional). */
struct margin_targets {
	bool has_margin_ratio;
	struct mk_dec margin_ratio;     /* > 0 */
	bool has_health;
	struct mk_dec health;           /* > 0 */
	bool has_liq_price;
	struct mk_dec liq_price;        /* > 0 */
	bool has_probability;           /* needs a volatility model */
	double probability;             /* 0 < p < 1 */
	bool has_removable_health;      /* default 1 + buffer_bps / 10000 */
	struct mk_dec removable_health; /* > 0 */
};

struct margin_options {
	bool has_vol;
	struct margin_vol vol;
	struct margin_targets targets;
};

/* Everything at one price. */
struct margin_point {
	bool has;                        /* false: the price is <= 0 (a band
					  * edge below zero); nothing else set */
	struct margin_figures fig;
	struct margin_risk risk;
	bool has_topup_margin_ratio;
	struct mk_dec topup_margin_ratio;
	bool has_topup_health;
	struct mk_dec topup_health;
	bool has_topup_liq_price;
	struct mk_dec topup_liq_price;
	bool has_topup_probability;
	struct mk_dec topup_probability;
	struct mk_dec probability_liq_price;  /* the target LP it used */
	struct mk_dec max_removable;
	struct margin_greeks greeks;
};

struct margin_eval {
	struct margin_liq liq;
	struct mk_dec conf;
	struct margin_point mark;        /* at the mark */
	struct margin_point fav;         /* mark + conf for a long, - for a short */
	struct margin_point adv;         /* the other edge */
	unsigned flags;                  /* MARGIN_FLAG_* of margin_verdict */
	bool has_max_leverage;           /* a probability target and a model */
	double max_leverage;             /* section 4.4, first bracket's mmr;
					  * HUGE_VAL when unbounded */
};

/*
 * Evaluates everything at the mark and at both band edges mark +- conf
 * (conf >= 0). `o` may be NULL (no statistics, no targets). Errors:
 * MK_EINVAL naming the field (position, parameters, "price", "conf",
 * "targets.health", "sigma", ...), MK_ERANGE when a value does not fit.
 */
enum mk_status margin_evaluate(const struct margin_position *p,
			       const struct margin_params *prm,
			       struct mk_dec mark, struct mk_dec conf,
			       const struct margin_options *o,
			       struct margin_eval *out, struct mk_err *err);

/* Verdict flags: exact comparisons at the mark and the band edges. */
#define MARGIN_FLAG_MARK_BREACH   0x01u  /* MB < MM at the mark */
#define MARGIN_FLAG_MARK_BANKRUPT 0x02u  /* MB <= 0 at the mark */
#define MARGIN_FLAG_FAV_BREACH    0x04u  /* MB < MM at the favourable edge */
#define MARGIN_FLAG_FAV_BANKRUPT  0x08u  /* MB <= 0 at the favourable edge */
#define MARGIN_FLAG_AT_RISK       0x10u  /* MB < MM*(1+buffer) at the
					  * adverse edge */
#define MARGIN_FLAG_ADV_BREACH    0x20u  /* MB < MM at the adverse edge */
#define MARGIN_FLAG_ADV_BANKRUPT  0x40u  /* MB <= 0 at the adverse edge */

/*
 * The verdict flags at price +- conf, the decision states' input. Longs
 * are favoured by the upper edge, shorts by the lower. A lower edge <= 0
 * is judged at the limit: a linear position exactly at price 0; an
 * inverse long is breached and bankrupt there, an inverse short is
 * neither. This is the hot path: a few microseconds, no allocation, no
 * rounding. Errors: MK_EINVAL (price <= 0, conf < 0, a bad position),
 * MK_ERANGE (price + conf overflows).
 */
enum mk_status margin_verdict(const struct margin_position *p,
			      const struct margin_params *prm,
			      struct mk_dec price, struct mk_dec conf,
			      unsigned *flags, struct mk_err *err);

#endif
