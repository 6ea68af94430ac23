/*
 * replay_data.c - loading the config's CSV files and laying the simulated
 * clock over them.
 */
#include "config.h"

#include "tools/replay_data.h"

#include "aggregator/book.h"
#include "aggregator/median.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* floor(a / b) for b > 0. */
static int64_t
floor_div(int64_t a, int64_t b)
{
	int64_t q = a / b;

	return (a % b != 0 && a < 0) ? q - 1 : q;
}

/* The display name of a market: the file name without "_1m.csv" or
 * ".csv". */
static void
leg_name(const char *market, char *buf, size_t cap)
{
	static const char *const suffixes[] = { "_1m.csv", ".csv" };
	size_t len = strlen(market);

	snprintf(buf, cap, "%s", market);
	for (size_t i = 0; i < sizeof(suffixes) / sizeof(suffixes[0]); i++) {
		size_t sl = strlen(suffixes[i]);

		if (len > sl && len - sl < cap &&
		    strcmp(market + len - sl, suffixes[i]) == 0) {
			buf[len - sl] = '\0';
			return;
		}
	}
}

/* Index of the series for `market`, loading it from dir when new. */
static enum mk_status
series_for(struct replay_data *d, const char *dir, const char *market,
	   size_t *idx, struct mk_err *err)
{
	struct replay_series *s;
	size_t plen;
	char *path;
	enum mk_status st;

	for (size_t i = 0; i < d->nseries; i++)
		if (strcmp(d->series[i].market, market) == 0) {
			*idx = i;
			return MK_OK;
		}
	if (market[0] == '/')
		return mk_err_set(err, MK_ECONFIG, "\"%s\" must be a file name "
				  "relative to the data folder", market);
	s = &d->series[d->nseries];
	memset(s, 0, sizeof(*s));
	plen = strlen(dir) + strlen(market) + 2;
	path = malloc(plen);
	s->market = strdup(market);
	if (path == NULL || s->market == NULL) {
		free(path);
		free(s->market);
		s->market = NULL;
		return mk_err_set(err, MK_ENOMEM, "out of memory");
	}
	snprintf(path, plen, "%s/%s", dir, market);
	st = history_load(path, NULL, &s->h, err);
	free(path);
	if (st != MK_OK) {
		free(s->market);
		s->market = NULL;
		return st;
	}
	*idx = d->nseries++;
	return MK_OK;
}

/* The instrument positions are on. */
static enum mk_status
pick_target(struct replay_data *d, const char *symbol, struct mk_err *err)
{
	const struct cfg *c = d->cfg;
	int i;

	if (symbol != NULL) {
		i = cfg_instrument_index(c, symbol);
		if (i < 0)
			return mk_err_set(err, MK_ENOTFOUND, "--symbol: no "
					  "instrument \"%s\" in the config",
					  symbol);
		if (c->instruments[i].margin.nbrackets == 0)
			return mk_err_set(err, MK_ECONFIG, "instruments[%d] "
					  "(%s): no margin brackets", i,
					  symbol);
	} else {
		for (i = 0; i < (int)c->ninstruments; i++)
			if (c->instruments[i].margin.nbrackets > 0)
				break;
		if (i == (int)c->ninstruments)
			return mk_err_set(err, MK_ECONFIG, "no instrument has "
					  "margin brackets (instruments[].margin"
					  ".brackets)");
	}
	d->target = (size_t)i;
	d->scale = c->specs[i].params.scale;
	return MK_OK;
}

/* Sets from_ms and nmin from the files and the optional bounds. */
static enum mk_status
set_window(struct replay_data *d, const struct replay_window *w,
	   struct mk_err *err)
{
	int64_t lo = INT64_MAX, hi = INT64_MIN, from, to;

	for (size_t i = 0; i < d->nseries; i++) {
		const struct history_series *h = d->series[i].h;

		if (h->bars[0].ts < lo)
			lo = h->bars[0].ts;
		if (h->bars[h->nbars - 1].ts > hi)
			hi = h->bars[h->nbars - 1].ts;
	}
	from = floor_div(lo, 60) * 60;
	to = floor_div(hi, 60) * 60 + 60;
	if (w != NULL && w->has_from && w->from_s > from)
		from = floor_div(w->from_s, 60) * 60;
	if (w != NULL && w->has_to && w->to_s < to)
		to = floor_div(w->to_s + 59, 60) * 60;
	if (from < 0 || to <= from)
		return mk_err_set(err, MK_ECONFIG, "the window holds no minute "
				  "of data (from %lld to %lld)",
				  (long long)from, (long long)to);
	if ((uint64_t)(to - from) / 60 > REPLAY_MAX_MINUTES)
		return mk_err_set(err, MK_ECONFIG, "the window is %lld minutes "
				  "long, at most %zu", (long long)(to - from) / 60,
				  REPLAY_MAX_MINUTES);
	if (from > AGG_MAX_TIME_MS / 1000 - (to - from))
		return mk_err_set(err, MK_ECONFIG, "the window ends too far "
				  "in the future");
	d->from_ms = from * 1000;
	d->nmin = (size_t)((to - from) / 60);
	return MK_OK;
}

/* bar_at of every series: the bar of each minute, skipping bars without
 * volume (no trade happened). */
static enum mk_status
index_bars(struct replay_data *d, struct mk_err *err)
{
	int64_t from_s = d->from_ms / 1000;

	for (size_t i = 0; i < d->nseries; i++) {
		struct replay_series *s = &d->series[i];

		s->bar_at = malloc(d->nmin * sizeof(*s->bar_at));
		if (s->bar_at == NULL)
			return mk_err_set(err, MK_ENOMEM, "out of memory");
		for (size_t m = 0; m < d->nmin; m++)
			s->bar_at[m] = -1;
		if (s->h->nbars > INT32_MAX)
			return mk_err_set(err, MK_ETOOBIG, "%s: too many bars",
					  s->market);
		for (size_t b = 0; b < s->h->nbars; b++) {
			const struct history_bar *bar = &s->h->bars[b];
			int64_t m = floor_div(bar->ts - from_s, 60);

			if (m < 0 || (uint64_t)m >= d->nmin)
				continue;
			if (mk_dec_is_zero(bar->volume))
				continue;
			/* bars are >= 60 s apart: one bar per minute */
			s->bar_at[m] = (int32_t)b;
		}
	}
	return MK_OK;
}

enum mk_status
replay_data_load(const char *dir, struct cfg *cfg, const char *symbol,
		 const struct replay_window *w, struct replay_data **out,
		 struct mk_err *err)
{
	struct replay_data *d;
	size_t total = 0, k = 0;
	enum mk_status st;

	d = calloc(1, sizeof(*d));
	if (d == NULL) {
		cfg_free(cfg);
		return mk_err_set(err, MK_ENOMEM, "out of memory");
	}
	d->cfg = cfg;
	st = pick_target(d, symbol, err);
	if (st != MK_OK)
		goto fail;
	for (size_t i = 0; i < cfg->ninstruments; i++)
		total += cfg->specs[i].nlegs;
	d->legs = calloc(total, sizeof(*d->legs));
	d->series = calloc(total, sizeof(*d->series));
	d->first_leg = calloc(cfg->ninstruments + 1, sizeof(*d->first_leg));
	if (d->legs == NULL || d->series == NULL || d->first_leg == NULL) {
		st = mk_err_set(err, MK_ENOMEM, "out of memory");
		goto fail;
	}
	for (size_t i = 0; i < cfg->ninstruments; i++) {
		const struct agg_instrument_spec *sp = &cfg->specs[i];

		d->first_leg[i] = k;
		for (size_t j = 0; j < sp->nlegs; j++, k++) {
			struct replay_leg *lg = &d->legs[k];

			lg->inst = i;
			lg->leg = j;
			lg->via = sp->legs[j].convert_via;
			leg_name(sp->legs[j].market, lg->name,
				 sizeof(lg->name));
			st = series_for(d, dir, sp->legs[j].market,
					&lg->series, err);
			if (st != MK_OK) {
				mk_err_prefix(err, "instruments[%zu].legs[%zu]"
					      ".market", i, j);
				goto fail;
			}
		}
	}
	d->first_leg[cfg->ninstruments] = k;
	d->nlegs = k;
	st = set_window(d, w, err);
	if (st == MK_OK)
		st = index_bars(d, err);
	if (st != MK_OK)
		goto fail;
	*out = d;
	return MK_OK;
fail:
	replay_data_free(d);
	return st;
}

void
replay_data_free(struct replay_data *d)
{
	if (d == NULL)
		return;
	for (size_t i = 0; i < d->nseries; i++) {
		free(d->series[i].market);
		history_destroy(d->series[i].h);
		free(d->series[i].bar_at);
	}
	free(d->series);
	free(d->legs);
	free(d->first_leg);
	cfg_free(d->cfg);
	free(d);
}

const struct history_bar *
replay_bar(const struct replay_data *d, size_t leg, size_t minute)
{
	const struct replay_series *s = &d->series[d->legs[leg].series];
	int32_t b;

	if (minute >= d->nmin)
		return NULL;
	b = s->bar_at[minute];
	return b < 0 ? NULL : &s->h->bars[b];
}

size_t
replay_target_nlegs(const struct replay_data *d)
{
	return d->first_leg[d->target + 1] - d->first_leg[d->target];
}

size_t
replay_target_leg(const struct replay_data *d, size_t j)
{
	return d->first_leg[d->target] + j;
}

int64_t
replay_step_ms(const struct replay_data *d, size_t step)
{
	return d->from_ms +
	       (int64_t)(step / REPLAY_SUBTICKS) * REPLAY_MINUTE_MS +
	       (int64_t)(step % REPLAY_SUBTICKS) * REPLAY_SUBTICK_MS;
}

int64_t
replay_median(int64_t *v, size_t n)
{
	agg_i128 m2 = agg_median2(v, n);
	agg_i128 q = m2 / 2;

	/* an odd double median is a tie: round to the even neighbour */
	if (m2 % 2 != 0 && q % 2 != 0)
		q += m2 > 0 ? 1 : -1;
	return (int64_t)q;
}

void
replay_dec_text(struct mk_dec v, char *buf, size_t cap)
{
	size_t n = mk_dec_format(v, buf, cap);

	if (n == 0 || strchr(buf, '.') == NULL)
		return;
	while (buf[n - 1] == '0')
		buf[--n] = '\0';
	if (buf[n - 1] == '.')
		buf[n - 1] = '\0';
}
