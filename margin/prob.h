/*
 * prob.h - statistics of liquidation: first passage of a log-normal price
 * to the liquidation barrier, the discrete-monitoring correction, the
 * barrier distance for a target probability, and the largest leverage for
 * a target probability (margin-vectors.md sections 4.1, 4.2 and 4.4).
 *
 * Statistics only: these use double, and no liquidation decision depends
 * on them. Treat the probabilities as a ranking and alert signal (GBM has
 * thin tails; crypto has jumps).
 *
 * Units: sigma and mu are annualized (a year is MARGIN_YEAR_S seconds,
 * 365 days, as crypto trades every day); horizons and sampling intervals
 * are in seconds. A barrier distance d is the log distance from the price
 * to the liquidation price in the adverse direction of the side:
 * d = ln(P / LP) for a long, ln(LP / P) for a short.
 *
 * Thread safety: pure functions; reentrant.
 */
#ifndef MARKD_MARGIN_PROB_H
#define MARKD_MARGIN_PROB_H

#include <stdbool.h>

#include "aggregator/status.h"
#include "margin/position.h"

#define MARGIN_YEAR_S (365.0 * 86400.0)
/* Broadie-Glasserman-Kou continuity correction, -zeta(1/2)/sqrt(2 pi). */
#define MARGIN_BGK_BETA 0.5826

enum margin_drift {
	MARGIN_DRIFTLESS = 0,  /* nu = 0: p = 2 Phi(-z), the shortcut */
	MARGIN_GBM = 1,        /* nu = mu - sigma^2 / 2 */
};

/* The price model for one question. */
struct margin_vol {
	double sigma;            /* annualized volatility of log returns, > 0 */
	double horizon_s;        /* T, > 0 */
	enum margin_drift model;
	double mu;               /* annualized drift (MARGIN_GBM only) */
	double sample_s;         /* mark sampling interval for the BGK
				  * correction; 0 = continuous monitoring */
};

/* Checks a model: finite sigma > 0, horizon_s > 0, sample_s >= 0, a
 * known model and a finite mu. MK_EINVAL naming the field ("sigma: must
 * be positive"). */
enum mk_status margin_vol_check(const struct margin_vol *v,
				struct mk_err *err);

/* Standard normal distribution function and its inverse (0 < p < 1;
 * +-HUGE_VAL at 1 and 0, NaN outside). */
double margin_norm_cdf(double x);
double margin_norm_quantile(double p);

/* sigma * sqrt(T in years). */
double margin_sigma_sqrt_t(const struct margin_vol *v);

/*
 * Probability that the price touches the barrier at log distance d within
 * the horizon (section 4.1). d <= 0 means the barrier is already crossed:
 * 1. With continuous = false and sample_s > 0 the barrier is first moved
 * away from the price by beta * sigma * sqrt(sample_s) (section 4.2).
 */
double margin_prob_touch(enum margin_side side, double d,
			 const struct margin_vol *v, bool continuous);

/* z = d / (sigma sqrt T): the distance in sigma units. */
double margin_prob_z(double d, const struct margin_vol *v);

/*
 * The smallest log distance d* >= 0 whose touch probability (with the
 * discrete correction when sample_s > 0) is at most p, 0 < p < 1. For the
 * driftless model d* = z_{1-p/2} sigma sqrt T - beta sigma sqrt(dt),
 * closed form; with drift it is found by bisection to double precision.
 */
double margin_prob_distance(enum margin_side side, double p,
			    const struct margin_vol *v);

/*
 * Largest leverage whose liquidation probability within the horizon is at
 * most p, for a position opened at the mark with WB = notional / L in a
 * bracket with rate mmr and cum = 0 (section 4.4):
 *   linear long, inverse short:  1 / (1 - (1 - mmr) e^{-d*})
 *   linear short, inverse long:  1 / ((1 + mmr) e^{d*} - 1)
 * HUGE_VAL when any leverage qualifies (d* = 0 and mmr = 0).
 */
double margin_max_leverage(enum margin_kind kind, enum margin_side side,
			   double mmr, double p, const struct margin_vol *v);

#endif
