/*
 * feedset.c - the feeds thread's pollers with their jobs (one per polled
 * (source, market)), the comparison of two configs that decides what a
 * reload rebuilds, and the replay of delivered quotes into a new book.
 */
#include "config.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "daemon/feeds_int.h"
#include "daemon/log.h"
#include "feeds/adapter.h"

/* How long a retired poller waits for readers to let go of its health
 * table before it is leaked (with an error log) rather than freed. */
#define RETIRE_WAIT_MS 5000

/* ---- config comparison and leg collection ---- */

struct legref {
	const char *source;    /* name */
	size_t src;            /* index into cfg->sources */
	const char *market;
	size_t inst, leg;
};

static int
legref_cmp(const void *a, const void *b)
{
	const struct legref *x = a, *y = b;
	int c = strcmp(x->source, y->source);

	if (c == 0)
		c = strcmp(x->market, y->market);
	if (c == 0)
		c = x->inst < y->inst ? -1 : x->inst > y->inst;
	if (c == 0)
		c = x->leg < y->leg ? -1 : x->leg > y->leg;
	return c;
}

/* Every leg of cfg, sorted by (source name, market, instrument, leg), so
 * that runs of equal (source, market) are the jobs in a stable order. */
static struct legref *
collect_legs(const struct cfg *cfg, size_t *n)
{
	struct legref *v;
	size_t total = 0, k = 0;

	for (size_t i = 0; i < cfg->ninstruments; i++)
		total += cfg->specs[i].nlegs;
	v = calloc(total > 0 ? total : 1, sizeof *v);
	if (v == NULL)
		return NULL;
	for (size_t i = 0; i < cfg->ninstruments; i++)
		for (size_t j = 0; j < cfg->specs[i].nlegs; j++) {
			size_t s = cfg->instruments[i].legs[j].source;

			v[k].source = cfg->sources[s].name;
			v[k].src = s;
			v[k].market = cfg->specs[i].legs[j].market;
			v[k].inst = i;
			v[k].leg = j;
			k++;
		}
	qsort(v, total, sizeof *v, legref_cmp);
	*n = total;
	return v;
}

static bool
same_key(const struct legref *a, const struct legref *b)
{
	return strcmp(a->source, b->source) == 0 &&
	       strcmp(a->market, b->market) == 0;
}

/* Whether two sources poll the same way (weight is the book's). */
static bool
source_polls_same(const struct cfg_source *a, const struct cfg_source *b)
{
	if (strcmp(a->name, b->name) != 0 || a->adapter != b->adapter ||
	    strcmp(a->base_url, b->base_url) != 0 ||
	    a->interval_ms != b->interval_ms || a->timeout_ms != b->timeout_ms ||
	    a->max_body_bytes != b->max_body_bytes || a->enabled != b->enabled)
		return false;
	if (a->options == NULL || b->options == NULL)
		return a->options == b->options;
	return json_equal(a->options, b->options) != 0;
}

/* MK_ENOMEM is reported as "different" (a rebuild then fails on memory
 * cleanly). */
bool
md_cfg_jobs_same(const struct cfg *a, const struct cfg *b)
{
	size_t na, nb, i = 0, j = 0;
	struct legref *la = collect_legs(a, &na), *lb = collect_legs(b, &nb);
	bool same = la != NULL && lb != NULL;

	while (same && (i < na || j < nb)) {
		if (i >= na || j >= nb || !same_key(&la[i], &lb[j]) ||
		    !source_polls_same(&a->sources[la[i].src],
				       &b->sources[lb[j].src])) {
			same = false;
			break;
		}
		/* skip the rest of both runs */
		size_t i0 = i, j0 = j;

		while (i < na && same_key(&la[i], &la[i0]))
			i++;
		while (j < nb && same_key(&lb[j], &lb[j0]))
			j++;
	}
	free(la);
	free(lb);
	return same;
}

static bool
params_same(const struct agg_params *a, const struct agg_params *b)
{
	return a->scale == b->scale && a->min_sources == b->min_sources &&
	       a->max_age_ms == b->max_age_ms &&
	       a->max_skew_ms == b->max_skew_ms &&
	       a->max_deviation_bps == b->max_deviation_bps &&
	       a->max_conf_bps == b->max_conf_bps &&
	       a->max_spread_bps == b->max_spread_bps &&
	       a->too_volatile_ratio == b->too_volatile_ratio &&
	       a->max_twap_deviation_bps == b->max_twap_deviation_bps &&
	       a->ema_window_ms == b->ema_window_ms &&
	       a->twap_window_ms == b->twap_window_ms &&
	       a->vol_halflife_ms == b->vol_halflife_ms;
}

bool
md_cfg_book_same(const struct cfg *a, const struct cfg *b)
{
	if (a->ninstruments != b->ninstruments)
		return false;
	for (size_t i = 0; i < a->ninstruments; i++) {
		const struct agg_instrument_spec *x = &a->specs[i],
						  *y = &b->specs[i];

		if (strcmp(x->symbol, y->symbol) != 0 ||
		    !params_same(&x->params, &y->params) ||
		    x->nlegs != y->nlegs)
			return false;
		for (size_t j = 0; j < x->nlegs; j++)
			if (strcmp(x->legs[j].source, y->legs[j].source) != 0 ||
			    strcmp(x->legs[j].market, y->legs[j].market) != 0 ||
			    x->legs[j].weight != y->legs[j].weight ||
			    x->legs[j].convert_via != y->legs[j].convert_via)
				return false;
	}
	return true;
}

void
md_feedset_free(struct md_feedset *fs)
{
	if (fs == NULL)
		return;
	feed_poller_destroy(fs->poller);
	for (size_t i = 0; i < fs->nopts; i++)
		feed_adapter_opts_destroy(fs->opts[i]);
	free(fs->opts);
	for (size_t i = 0; i < fs->njobs; i++)
		free(fs->jobs[i].legs);
	free(fs->jobs);
	free(fs->srcs);
	free(fs);
}

void
md_plan_free(struct md_leg_plan *p)
{
	for (size_t i = 0; p->legs != NULL && i < p->njobs; i++)
		free(p->legs[i]);
	free(p->legs);
	free(p->counts);
	memset(p, 0, sizeof *p);
}

enum mk_status
md_plan_legs(const struct md_feedset *fs, const struct agg_book *book,
	     const struct cfg *cfg, struct md_leg_plan *plan,
	     struct mk_err *err)
{
	size_t n, i = 0, jn = 0, maxlegs = 1;
	struct legref *v = collect_legs(cfg, &n);
	enum mk_status st = MK_OK;

	memset(plan, 0, sizeof *plan);
	plan->njobs = fs->njobs;
	plan->legs = calloc(fs->njobs + 1, sizeof *plan->legs);
	plan->counts = calloc(fs->njobs + 1, sizeof *plan->counts);
	if (v == NULL || plan->legs == NULL || plan->counts == NULL) {
		st = mk_err_set(err, MK_ENOMEM, "out of memory");
		goto out;
	}
	while (i < n) {
		size_t i0 = i, cnt;

		while (i < n && same_key(&v[i], &v[i0]))
			i++;
		cnt = i - i0;
		if (jn >= fs->njobs) {
			st = mk_err_set(err, MK_EINVAL,
					"internal: job list out of step");
			goto out;
		}
		plan->legs[jn] = calloc(cnt, sizeof(size_t));
		if (plan->legs[jn] == NULL) {
			st = mk_err_set(err, MK_ENOMEM, "out of memory");
			goto out;
		}
		plan->counts[jn] = cnt;
		for (size_t k = 0; k < cnt; k++)
			if (agg_book_leg_id(book, v[i0 + k].inst, v[i0 + k].leg,
					    &plan->legs[jn][k]) != MK_OK) {
				st = mk_err_set(err, MK_EINVAL,
						"internal: no leg %zu of instrument %zu",
						v[i0 + k].leg, v[i0 + k].inst);
				goto out;
			}
		if (cnt > maxlegs)
			maxlegs = cnt;
		jn++;
	}
	plan->maxlegs = maxlegs;
out:
	free(v);
	if (st != MK_OK)
		md_plan_free(plan);
	return st;
}

void
md_plan_commit(struct md_feedset *fs, struct md_leg_plan *plan)
{
	for (size_t i = 0; i < fs->njobs && i < plan->njobs; i++) {
		free(fs->jobs[i].legs);
		fs->jobs[i].legs = plan->legs[i];
		fs->jobs[i].nlegs = plan->counts[i];
		plan->legs[i] = NULL;
	}
	md_plan_free(plan);
}

enum mk_status
md_feedset_build(const struct cfg *cfg, const struct feed_poller_config *pc,
		 struct md_feedset **out, struct mk_err *err)
{
	struct md_feedset *fs;
	struct legref *v = NULL;
	size_t n = 0, i = 0;
	enum mk_status st;

	*out = NULL;
	fs = calloc(1, sizeof *fs);
	if (fs == NULL)
		return mk_err_set(err, MK_ENOMEM, "out of memory");
	atomic_init(&fs->refs, 1);
	st = feed_poller_create(pc, &fs->poller, err);
	if (st != MK_OK)
		goto fail;

	fs->nopts = cfg->nsources;
	fs->opts = calloc(cfg->nsources > 0 ? cfg->nsources : 1,
			  sizeof *fs->opts);
	fs->srcs = calloc(cfg->nsources > 0 ? cfg->nsources : 1,
			  sizeof *fs->srcs);
	v = collect_legs(cfg, &n);
	if (fs->opts == NULL || fs->srcs == NULL || v == NULL) {
		st = mk_err_set(err, MK_ENOMEM, "out of memory");
		goto fail;
	}
	for (size_t s = 0; s < cfg->nsources; s++) {
		const struct cfg_source *src = &cfg->sources[s];

		if (!src->enabled)
			continue;
		st = feed_adapter_opts_create(src->adapter, src->options,
					      &fs->opts[s], err);
		if (st != MK_OK) {
			mk_err_prefix(err, "sources[%zu]", s);
			goto fail;
		}
	}
	/* count the jobs, then make them (job addresses must not move: the
	 * poller hands them back) */
	for (size_t k = 0; k < n; k++)
		if (k == 0 || !same_key(&v[k], &v[k - 1]))
			fs->njobs++;
	fs->jobs = calloc(fs->njobs > 0 ? fs->njobs : 1, sizeof *fs->jobs);
	if (fs->jobs == NULL) {
		st = mk_err_set(err, MK_ENOMEM, "out of memory");
		goto fail;
	}
	for (size_t jn = 0; i < n; jn++) {
		const struct cfg_source *src = &cfg->sources[v[i].src];
		struct md_job *j = &fs->jobs[jn];
		struct feed_job_config jc;
		size_t i0 = i, si;

		while (i < n && same_key(&v[i], &v[i0]))
			i++;
		snprintf(j->source, sizeof j->source, "%s", src->name);
		snprintf(j->market, sizeof j->market, "%s", v[i0].market);
		/* the source's slot in srcs: jobs come sorted by source, so it
		 * is the last one or a new one (the health table registers
		 * sources in the same order) */
		si = fs->nsrcs;
		if (si > 0 && strcmp(fs->srcs[si - 1].name, src->name) == 0)
			si--;
		else {
			snprintf(fs->srcs[si].name, sizeof fs->srcs[si].name,
				 "%s", src->name);
			fs->nsrcs++;
		}
		j->src = si;
		feed_job_config_default(&jc);
		jc.source = src->name;
		jc.adapter = src->adapter;
		jc.opts = fs->opts[v[i0].src];
		jc.base_url = src->base_url;
		jc.market = v[i0].market;
		jc.interval_ms = src->interval_ms;
		jc.timeout_ms = src->timeout_ms;
		jc.max_body_bytes = (int64_t)src->max_body_bytes;
		jc.user = j;
		st = feed_poller_add_job(fs->poller, &jc, NULL, err);
		if (st != MK_OK)
			goto fail;
	}
	free(v);
	*out = fs;
	return MK_OK;
fail:
	free(v);
	md_feedset_free(fs);
	return st;
}

/* The job of fs named (source, market), or NULL. Jobs are sorted by
 * (source, market): binary search. */
static struct md_job *
feedset_find(const struct md_feedset *fs, const char *source,
	     const char *market)
{
	size_t lo = 0, hi = fs->njobs;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strcmp(fs->jobs[mid].source, source);

		if (c == 0)
			c = strcmp(fs->jobs[mid].market, market);
		if (c == 0)
			return (struct md_job *)(uintptr_t)&fs->jobs[mid];
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

void
md_feedset_retire(struct md_feedset *fs)
{
	int64_t deadline = feed_now_mono_ms() + RETIRE_WAIT_MS;

	if (fs == NULL)
		return;
	while (atomic_load(&fs->refs) > 1 && feed_now_mono_ms() < deadline) {
		struct timespec ts = { 0, 200000 };

		nanosleep(&ts, NULL);
	}
	if (atomic_load(&fs->refs) > 1) {
		md_log_msg(CFG_LOG_ERROR, "poller_leaked",
			   "readers still held the old poller after %d ms; it is left allocated",
			   RETIRE_WAIT_MS);
		return;
	}
	md_feedset_free(fs);
}

/* ---- carry-over and replay ---- */

struct replay_ev {
	int64_t at;
	struct md_job *j;
	bool quote;
};

static int
replay_cmp(const void *a, const void *b)
{
	const struct replay_ev *x = a, *y = b;

	if (x->at != y->at)
		return x->at < y->at ? -1 : 1;
	/* a job's quote before its error at the same ms */
	if (x->j != y->j)
		return x->j < y->j ? -1 : 1;
	return (int)y->quote - (int)x->quote;
}

size_t
md_feedset_replay(const struct md_feedset *fs, struct agg_book *book,
		  struct agg_quote *scratch)
{
	struct replay_ev *ev = calloc(2 * fs->njobs + 1, sizeof *ev);
	size_t n = 0;

	if (ev == NULL)
		return 0;
	for (size_t i = 0; i < fs->njobs; i++) {
		struct md_job *j = &fs->jobs[i];

		if (j->has_quote)
			ev[n++] = (struct replay_ev){ j->q_ms, j, true };
		if (j->has_err)
			ev[n++] = (struct replay_ev){ j->e_ms, j, false };
	}
	qsort(ev, n, sizeof *ev, replay_cmp);
	for (size_t i = 0; i < n; i++) {
		struct md_job *j = ev[i].j;

		if (j->nlegs == 0)
			continue;
		if (ev[i].quote) {
			for (size_t k = 0; k < j->nlegs; k++)
				scratch[k] = j->q;
			agg_book_quotes(book, j->legs, scratch, j->nlegs,
					ev[i].at);
		} else {
			for (size_t k = 0; k < j->nlegs; k++)
				agg_book_error(book, j->legs[k], j->ekind,
					       j->etext, ev[i].at);
		}
	}
	free(ev);
	return n;
}

void
md_feedset_carry(struct md_feedset *fs, const struct md_feedset *old)
{
	for (size_t i = 0; i < old->njobs; i++) {
		const struct md_job *o = &old->jobs[i];
		struct md_job *j = feedset_find(fs, o->source, o->market);

		if (j == NULL)
			continue;
		j->has_quote = o->has_quote;
		j->q = o->q;
		j->q_ms = o->q_ms;
		j->has_err = o->has_err;
		j->ekind = o->ekind;
		memcpy(j->etext, o->etext, sizeof j->etext);
		j->e_ms = o->e_ms;
	}
	for (size_t i = 0; i < fs->nsrcs; i++)
		for (size_t k = 0; k < old->nsrcs; k++)
			if (strcmp(fs->srcs[i].name, old->srcs[k].name) == 0) {
				fs->srcs[i].known = old->srcs[k].known;
				fs->srcs[i].state = old->srcs[k].state;
				break;
			}
}
