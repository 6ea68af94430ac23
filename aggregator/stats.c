#include "config.h"

#include "aggregator/stats.h"

#include <assert.h>
#include <math.h>
#include <string.h>

#define MS_PER_YEAR 31557600000.0   /* 365.25 days */

/* floor(a / b) for b > 0, also for negative a. */
static int64_t
floor_div(int64_t a, int64_t b)
{
	int64_t q = a / b;

	if (a % b != 0 && a < 0)
		q--;
	return q;
}

/* ---- EMA ------------------------------------------------------------ */

void
agg_ema_init(struct agg_ema *e)
{
	memset(e, 0, sizeof(*e));
}

void
agg_ema_push(struct agg_ema *e, int64_t price, int64_t now_ms,
	     int64_t window_ms)
{
	agg_i128 step;
	int64_t dt;

	assert(window_ms > 0 && window_ms <= AGG_STATS_MAX_WINDOW_MS);
	if (!e->has) {
		e->has = true;
		e->value = price;
		e->at_ms = now_ms;
		return;
	}
	if (now_ms <= e->at_ms)
		return;
	/* dt is capped: beyond it alpha is 1 to within one part in 2^40 of
	 * a 2^64 difference, and the cap keeps diff * dt below 2^105. */
	dt = now_ms - e->at_ms;
	if (dt > AGG_STATS_MAX_WINDOW_MS * 64)
		dt = AGG_STATS_MAX_WINDOW_MS * 64;
	step = agg_div_round(((agg_i128)price - e->value) * dt,
			     (agg_i128)dt + window_ms, MK_ROUND_HALF_EVEN);
	/* value + step lies between value and price, so it fits. */
	e->value = (int64_t)(e->value + step);
	e->at_ms = now_ms;
}

/* ---- TWAP ----------------------------------------------------------- */

void
agg_twap_init(struct agg_twap *t, int64_t window_ms)
{
	assert(window_ms > 0 && window_ms <= AGG_STATS_MAX_WINDOW_MS);
	memset(t, 0, sizeof(*t));
	t->window_ms = window_ms;
	t->bucket_ms = (window_ms + AGG_TWAP_BUCKETS - 1) / AGG_TWAP_BUCKETS;
}

void
agg_twap_reset(struct agg_twap *t)
{
	agg_twap_init(t, t->window_ms);
}

static struct agg_twap_bucket *
slot(struct agg_twap *t, int64_t idx)
{
	int64_t i = idx % AGG_TWAP_BUCKETS;

	if (i < 0)
		i += AGG_TWAP_BUCKETS;
	return &t->b[i];
}

/* Oldest bucket index inside the window that ends in bucket `last`. */
static int64_t
first_idx(int64_t last)
{
	return last - (AGG_TWAP_BUCKETS - 1);
}

/* Accrues `price` over [from, to) into the buckets, skipping whatever
 * falls before the window that ends at `to`. */
static void
accrue(struct agg_twap *t, int64_t price, int64_t from, int64_t to)
{
	int64_t lo;

	if (to <= from)
		return;
	lo = first_idx(floor_div(to - 1, t->bucket_ms)) * t->bucket_ms;
	if (from < lo)
		from = lo;
	while (from < to) {
		int64_t k = floor_div(from, t->bucket_ms);
		int64_t end = (k + 1) * t->bucket_ms;
		struct agg_twap_bucket *b = slot(t, k);

		if (end > to)
			end = to;
		if (b->idx != k || b->dt == 0) {
			b->idx = k;
			b->dt = 0;
			b->pdt = 0;
		}
		b->dt += end - from;
		b->pdt += (agg_i128)price * (end - from);
		from = end;
	}
}

void
agg_twap_push(struct agg_twap *t, int64_t price, int64_t now_ms)
{
	if (t->has) {
		if (now_ms < t->last_ms)
			now_ms = t->last_ms;
		accrue(t, t->last_price, t->last_ms, now_ms);
	}
	t->has = true;
	t->last_price = price;
	t->last_ms = now_ms;
}

bool
agg_twap_value(const struct agg_twap *t, int64_t now_ms, int64_t *out)
{
	agg_i128 pdt = 0;
	int64_t dt = 0, last, lo, from;
	size_t i;

	if (!t->has)
		return false;
	if (now_ms < t->last_ms)
		now_ms = t->last_ms;
	last = floor_div(now_ms, t->bucket_ms);
	lo = first_idx(last);
	for (i = 0; i < AGG_TWAP_BUCKETS; i++) {
		const struct agg_twap_bucket *b = &t->b[i];

		if (b->dt == 0 || b->idx < lo || b->idx > last)
			continue;
		dt += b->dt;
		pdt += b->pdt;
	}
	/* The last value, held since last_ms, counts up to now_ms. */
	from = t->last_ms;
	if (from < lo * t->bucket_ms)
		from = lo * t->bucket_ms;
	if (now_ms > from) {
		dt += now_ms - from;
		pdt += (agg_i128)t->last_price * (now_ms - from);
	}
	if (dt == 0) {
		*out = t->last_price;
		return true;
	}
	/* A weighted mean of int64 values fits in int64. */
	*out = (int64_t)agg_div_round(pdt, dt, MK_ROUND_HALF_EVEN);
	return true;
}

/* ---- volatility ----------------------------------------------------- */

void
agg_vol_init(struct agg_vol *v)
{
	memset(v, 0, sizeof(*v));
}

void
agg_vol_push(struct agg_vol *v, int64_t price, int64_t now_ms,
	     int64_t halflife_ms)
{
	double r, dt, lambda, inst;

	assert(price > 0);
	assert(halflife_ms > 0 && halflife_ms <= AGG_STATS_MAX_WINDOW_MS);
	if (!v->has_prev) {
		v->has_prev = true;
		v->prev_price = price;
		v->prev_ms = now_ms;
		return;
	}
	if (now_ms <= v->prev_ms) {
		/* no time elapsed: the newer price replaces the last one */
		v->prev_price = price;
		return;
	}
	dt = (double)(now_ms - v->prev_ms);
	r = log((double)price) - log((double)v->prev_price);
	inst = r * r / dt;
	if (v->returns == 0) {
		v->var_per_ms = inst;
	} else {
		lambda = exp2(-dt / (double)halflife_ms);
		v->var_per_ms = lambda * v->var_per_ms + (1.0 - lambda) * inst;
	}
	v->returns++;
	v->prev_price = price;
	v->prev_ms = now_ms;
}

bool
agg_vol_sigma(const struct agg_vol *v, double *out)
{
	if (v->returns == 0)
		return false;
	*out = sqrt(v->var_per_ms * MS_PER_YEAR);
	return true;
}
