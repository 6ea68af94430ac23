/*
 * prob.c - liquidation statistics (see prob.h).
 */
#include "config.h"

#include "margin/prob.h"

#include <math.h>

enum mk_status
margin_vol_check(const struct margin_vol *v, struct mk_err *err)
{
	if (!isfinite(v->sigma) || v->sigma <= 0.0)
		return mk_err_set(err, MK_EINVAL, "sigma: must be positive");
	if (!isfinite(v->horizon_s) || v->horizon_s <= 0.0)
		return mk_err_set(err, MK_EINVAL,
				  "horizon_s: must be positive");
	if (!isfinite(v->sample_s) || v->sample_s < 0.0)
		return mk_err_set(err, MK_EINVAL,
				  "sample_s: must not be negative");
	if (v->model != MARGIN_DRIFTLESS && v->model != MARGIN_GBM)
		return mk_err_set(err, MK_EINVAL, "model: unknown drift model");
	if (!isfinite(v->mu))
		return mk_err_set(err, MK_EINVAL, "mu: must be finite");
	return MK_OK;
}

double
margin_norm_cdf(double x)
{
	return 0.5 * erfc(-x / sqrt(2.0));
}

double
margin_norm_quantile(double p)
{
	double lo = -40.0, hi = 40.0;

	if (isnan(p) || p < 0.0 || p > 1.0)
		return NAN;
	if (p == 0.0)
		return -HUGE_VAL;
	if (p == 1.0)
		return HUGE_VAL;
	/* Phi is increasing: bisection to the last bit, then one Newton
	 * step on the exact derivative for the final polish. */
	for (int i = 0; i < 200 && hi - lo > 0.0; i++) {
		double mid = 0.5 * (lo + hi);

		if (mid == lo || mid == hi)
			break;
		if (margin_norm_cdf(mid) < p)
			lo = mid;
		else
			hi = mid;
	}
	{
		double x = 0.5 * (lo + hi);
		double pdf = exp(-0.5 * x * x) / 2.5066282746310002;

		if (pdf > 0.0) {
			double nx = x - (margin_norm_cdf(x) - p) / pdf;

			if (nx >= lo && nx <= hi)
				x = nx;
		}
		return x;
	}
}

double
margin_sigma_sqrt_t(const struct margin_vol *v)
{
	return v->sigma * sqrt(v->horizon_s / MARGIN_YEAR_S);
}

double
margin_prob_z(double d, const struct margin_vol *v)
{
	return d / margin_sigma_sqrt_t(v);
}

/* a * Phi(x) computed as exp(log a + log Phi(x)) so that a huge factor
 * meeting a tiny tail gives the right small number, not inf * 0. */
static double
scaled_cdf(double log_a, double x)
{
	double c = margin_norm_cdf(x);

	if (c <= 0.0)
		return 0.0;
	return exp(log_a + log(c));
}

double
margin_prob_touch(enum margin_side side, double d,
		  const struct margin_vol *v, bool continuous)
{
	double st = margin_sigma_sqrt_t(v);
	double t = v->horizon_s / MARGIN_YEAR_S;
	double nu, b, p;

	if (!continuous && v->sample_s > 0.0)
		d += MARGIN_BGK_BETA * v->sigma *
		     sqrt(v->sample_s / MARGIN_YEAR_S);
	if (!(d > 0.0))
		return 1.0;
	if (isinf(d))
		return 0.0;
	if (v->model == MARGIN_DRIFTLESS)
		return 2.0 * margin_norm_cdf(-d / st);
	nu = v->mu - 0.5 * v->sigma * v->sigma;
	/* b = ln(LP / S0): negative for a long, positive for a short. */
	b = side == MARGIN_LONG ? -d : d;
	if (side == MARGIN_LONG)
		p = margin_norm_cdf((b - nu * t) / st) +
		    scaled_cdf(2.0 * nu * b / (v->sigma * v->sigma),
			       (b + nu * t) / st);
	else
		p = margin_norm_cdf((-b + nu * t) / st) +
		    scaled_cdf(2.0 * nu * b / (v->sigma * v->sigma),
			       (-b - nu * t) / st);
	if (p > 1.0)
		p = 1.0;
	return p < 0.0 ? 0.0 : p;
}

double
margin_prob_distance(enum margin_side side, double p,
		     const struct margin_vol *v)
{
	double shift = 0.0, lo, hi;

	if (!(p > 0.0 && p < 1.0))
		return NAN;
	if (v->sample_s > 0.0)
		shift = MARGIN_BGK_BETA * v->sigma *
			sqrt(v->sample_s / MARGIN_YEAR_S);
	if (v->model == MARGIN_DRIFTLESS) {
		double d = -margin_norm_quantile(0.5 * p) *
			   margin_sigma_sqrt_t(v) - shift;

		return d > 0.0 ? d : 0.0;
	}
	if (margin_prob_touch(side, 0.0, v, false) <= p)
		return 0.0;
	/* The touch probability falls as d grows: find a d it is below p
	 * at, then bisect to the last bit. */
	lo = 0.0;
	hi = margin_sigma_sqrt_t(v);
	for (int i = 0; i < 2000 && margin_prob_touch(side, hi, v, false) > p;
	     i++) {
		lo = hi;
		hi *= 2.0;
		if (isinf(hi))
			return HUGE_VAL;
	}
	for (int i = 0; i < 400; i++) {
		double mid = 0.5 * (lo + hi);

		if (mid == lo || mid == hi)
			break;
		if (margin_prob_touch(side, mid, v, false) > p)
			lo = mid;
		else
			hi = mid;
	}
	return hi;
}

double
margin_max_leverage(enum margin_kind kind, enum margin_side side, double mmr,
		    double p, const struct margin_vol *v)
{
	double d = margin_prob_distance(side, p, v);
	/* Linear long and inverse short share the first form: inverse PnL
	 * is linear in 1/P, which mirrors the two pairs. */
	bool first_form = (kind == MARGIN_LINEAR) == (side == MARGIN_LONG);
	double den;

	if (isnan(d))
		return NAN;
	if (first_form)
		den = 1.0 - (1.0 - mmr) * exp(-d);
	else
		den = (1.0 + mmr) * exp(d) - 1.0;
	return den > 0.0 ? 1.0 / den : HUGE_VAL;
}
