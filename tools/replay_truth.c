/*
 * replay_truth.c - per-minute conversion rates and majority thresholds.
 */
#include "config.h"

#include "tools/replay_truth.h"

#include <stdlib.h>
#include <string.h>


/* Rates of every instrument per minute, computed on demand. */
struct rates {
	const struct replay_data *d;
	int64_t **r;               /* [inst][minute], 0 = unknown */
	uint8_t *state;            /* 0 not done, 1 in progress, 2 done */
};

static enum mk_status compute_rates(struct rates *rs, size_t inst,
				    struct mk_err *err);

/* price converted through instrument `via` in minute m to `scale`: the
 * mantissa into *out, 0 when the rate is unknown. */
static enum mk_status
convert(struct rates *rs, struct mk_dec price, int via, size_t m, int scale,
	int64_t *out, struct mk_err *err)
{
	struct mk_dec r;
	enum mk_status st;

	if (via < 0) {
		st = mk_dec_rescale(price, scale, MK_ROUND_HALF_EVEN, &r);
	} else {
		const struct cfg *c = rs->d->cfg;
		int64_t rate;

		st = compute_rates(rs, (size_t)via, err);
		if (st != MK_OK)
			return st;
		rate = rs->r[via][m];
		if (rate == 0) {
			*out = 0;
			return MK_OK;
		}
		st = mk_dec_mul(price, MK_DEC(rate, c->specs[via].params.scale),
				scale, MK_ROUND_HALF_EVEN, &r);
	}
	if (st != MK_OK)
		return mk_err_set(err, st, "a converted price does not fit");
	*out = r.m > 0 ? r.m : 0;
	return MK_OK;
}

/* rs->r[inst][m] for every minute: the median of the converted closes of
 * inst's legs with a bar in minute m. */
static enum mk_status
compute_rates(struct rates *rs, size_t inst, struct mk_err *err)
{
	const struct replay_data *d = rs->d;
	size_t lo = d->first_leg[inst], hi = d->first_leg[inst + 1];
	int scale = d->cfg->specs[inst].params.scale;
	int64_t vals[CFG_MAX_LEGS];
	enum mk_status st;

	if (rs->state[inst] == 2)
		return MK_OK;
	/* the config loader refuses conversion cycles */
	if (rs->state[inst] == 1)
		return mk_err_set(err, MK_ECONFIG, "conversion cycle");
	rs->state[inst] = 1;
	rs->r[inst] = calloc(d->nmin, sizeof(int64_t));
	if (rs->r[inst] == NULL)
		return mk_err_set(err, MK_ENOMEM, "out of memory");
	for (size_t m = 0; m < d->nmin; m++) {
		size_t n = 0;

		for (size_t l = lo; l < hi && n < CFG_MAX_LEGS; l++) {
			const struct history_bar *b = replay_bar(d, l, m);
			int64_t v;

			if (b == NULL)
				continue;
			st = convert(rs, b->close, d->legs[l].via, m, scale, &v,
				     err);
			if (st != MK_OK)
				return st;
			if (v > 0)
				vals[n++] = v;
		}
		if (n > 0)
			rs->r[inst][m] = replay_median(vals, n);
	}
	rs->state[inst] = 2;
	return MK_OK;
}

static int
cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

	return (x > y) - (x < y);
}

/* Allocates t's arrays. */
static enum mk_status
alloc_truth(struct replay_truth *t, size_t nmin, size_t nlegs,
	    struct mk_err *err)
{
	t->nmin = nmin;
	t->nlegs = nlegs;
	t->nvenues = calloc(nmin, 1);
	t->low_k = calloc(nmin, sizeof(int64_t));
	t->close_lo_k = calloc(nmin, sizeof(int64_t));
	t->high_k = calloc(nmin, sizeof(int64_t));
	t->close_hi_k = calloc(nmin, sizeof(int64_t));
	t->close = calloc(nmin * (nlegs > 0 ? nlegs : 1), sizeof(int64_t));
	if (t->nvenues == NULL || t->low_k == NULL || t->close_lo_k == NULL ||
	    t->high_k == NULL || t->close_hi_k == NULL || t->close == NULL)
		return mk_err_set(err, MK_ENOMEM, "out of memory");
	return MK_OK;
}

enum mk_status
replay_truth_build(const struct replay_data *d, struct replay_truth *t,
		   struct mk_err *err)
{
	size_t ni = d->cfg->ninstruments, nl = replay_target_nlegs(d);
	struct rates rs = { .d = d };
	int64_t lows[CFG_MAX_LEGS], highs[CFG_MAX_LEGS], closes[CFG_MAX_LEGS];
	enum mk_status st;

	memset(t, 0, sizeof(*t));
	rs.r = calloc(ni, sizeof(*rs.r));
	rs.state = calloc(ni, 1);
	if (rs.r == NULL || rs.state == NULL) {
		st = mk_err_set(err, MK_ENOMEM, "out of memory");
		goto out;
	}
	st = alloc_truth(t, d->nmin, nl, err);
	if (st != MK_OK)
		goto out;
	for (size_t m = 0; m < d->nmin; m++) {
		size_t n = 0, k;

		for (size_t j = 0; j < nl && j < CFG_MAX_LEGS; j++) {
			size_t l = replay_target_leg(d, j);
			const struct history_bar *b = replay_bar(d, l, m);
			int via = d->legs[l].via;

			if (b == NULL)
				continue;
			st = convert(&rs, b->low, via, m, d->scale, &lows[n],
				     err);
			if (st == MK_OK)
				st = convert(&rs, b->high, via, m, d->scale,
					     &highs[n], err);
			if (st == MK_OK)
				st = convert(&rs, b->close, via, m, d->scale,
					     &closes[n], err);
			if (st != MK_OK)
				goto out;
			if (lows[n] == 0 || highs[n] == 0 || closes[n] == 0)
				continue;
			t->close[j * d->nmin + m] = closes[n];
			n++;
		}
		t->nvenues[m] = (uint8_t)n;
		if (n == 0)
			continue;
		qsort(lows, n, sizeof(int64_t), cmp_i64);
		qsort(highs, n, sizeof(int64_t), cmp_i64);
		qsort(closes, n, sizeof(int64_t), cmp_i64);
		k = n / 2 + 1;           /* a majority */
		t->low_k[m] = lows[k - 1];
		t->close_lo_k[m] = closes[k - 1];
		t->high_k[m] = highs[n - k];
		t->close_hi_k[m] = closes[n - k];
	}
out:
	if (rs.r != NULL)
		for (size_t i = 0; i < ni; i++)
			free(rs.r[i]);
	free(rs.r);
	free(rs.state);
	if (st != MK_OK)
		replay_truth_clear(t);
	return st;
}

void
replay_truth_clear(struct replay_truth *t)
{
	if (t == NULL)
		return;
	free(t->nvenues);
	free(t->low_k);
	free(t->close_lo_k);
	free(t->high_k);
	free(t->close_hi_k);
	free(t->close);
	memset(t, 0, sizeof(*t));
}

bool
replay_truth_touched(const struct replay_truth *t, enum margin_side side,
		     int64_t lp, size_t minute)
{
	if (minute >= t->nmin || t->nvenues[minute] == 0)
		return false;
	if (side == MARGIN_LONG)
		return t->low_k[minute] <= lp;
	return t->high_k[minute] >= lp;
}

bool
replay_truth_sustained(const struct replay_truth *t, enum margin_side side,
		       int64_t lp, size_t minute)
{
	if (minute >= t->nmin || t->nvenues[minute] == 0)
		return false;
	if (side == MARGIN_LONG)
		return t->close_lo_k[minute] < lp;
	return t->close_hi_k[minute] > lp;
}

bool
replay_truth_touched_near(const struct replay_truth *t, enum margin_side side,
			  int64_t lp, size_t minute)
{
	size_t lo = minute >= REPLAY_TOUCH_SLACK_MIN
			    ? minute - REPLAY_TOUCH_SLACK_MIN : 0;

	for (size_t m = lo; m <= minute + REPLAY_TOUCH_SLACK_MIN; m++)
		if (replay_truth_touched(t, side, lp, m))
			return true;
	return false;
}

size_t
replay_truth_first_run(const struct replay_truth *t, enum margin_side side,
		       int64_t lp, size_t from)
{
	size_t run = 0;

	for (size_t m = from; m < t->nmin; m++) {
		if (!replay_truth_sustained(t, side, lp, m)) {
			run = 0;
			continue;
		}
		if (++run == REPLAY_SUSTAINED_RUN)
			return m + 1 - REPLAY_SUSTAINED_RUN;
	}
	return SIZE_MAX;
}
