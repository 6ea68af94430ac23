/*
 * replay_sim.c - the methods and the step loop of markd-replay.
 *
 * Why skipping margin_step far from the liquidation price changes no
 * decision. The liquidation price LP (margin_liquidation) is the exact
 * root of MB = MM rounded half-even to the instrument's scale, and MB - MM
 * is monotonic in the price (increasing for a long, decreasing for a
 * short). So with lp the rounded mantissa, a long whose favourable edge
 * (mark + conf) is >= lp + 1 is above the exact root: neither breached nor
 * bankrupt there, and margin_step would only reset its confirmation
 * counter. The step is therefore made whenever the edge is <= lp (>= lp
 * for a short), or when the position has a confirmation running (so the
 * reset happens), or when it has no liquidation price at all. Held ticks
 * neither advance nor reset the counter; they are passed on only while a
 * confirmation runs.
 */
#include "config.h"

#include "tools/replay_sim.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aggregator/book.h"
#include "aggregator/wide.h"

/* A live position as the hot loop sees it: small and contiguous. */
struct live {
	int64_t lp;                /* liquidation price mantissa */
	uint32_t pi;               /* index into the positions */
	int8_t side;               /* enum margin_side */
	bool has_lp;
	bool counting;             /* its tracker has a confirmation running */
};

/* One method's view of the positions. */
struct mstate {
	struct live *live;         /* entered, not liquidated */
	size_t nlive;
	struct margin_tracker *tr; /* per position */
};

struct sim {
	const struct replay_data *d;
	struct replay_positions *ps;
	struct replay_result *res;
	struct agg_book *book;
	size_t *book_id;           /* per leg */
	struct agg_quote *qs;      /* scratch, per leg */
	size_t *qids;
	/* every leg's latest quoted price, and when */
	bool *has_last;
	struct mk_dec *last;
	int64_t *last_ms;
	/* median-converted scratch, per instrument */
	uint8_t *nv_state;
	int64_t *nv_value;
	int64_t *vals;             /* scratch for medians */
	struct mstate *ms;
	struct margin_params prm, base_prm;
	struct margin_brackets brackets;
	enum margin_kind kind;
	struct mk_dec contract_size;
};

void
replay_margin_params(const struct replay_data *d, struct margin_params *prm)
{
	const struct cfg_margin *mg = &d->cfg->instruments[d->target].margin;

	margin_params_default(prm);
	prm->price_scale = d->scale;
	prm->buffer_bps = mg->safe_buffer_bps;
	prm->confirm_marks = mg->confirm_count;
	prm->confirm_ms = mg->confirm_ms;
}

/* ---- methods ---------------------------------------------------------- */

enum mk_status
replay_method_check(const char *text, struct mk_err *err)
{
	if (strlen(text) >= REPLAY_METHOD_NAME_MAX)
		return mk_err_set(err, MK_EINVAL, "--method: \"%.40s...\" is "
				  "too long", text);
	if (strcmp(text, "markd") == 0 || strcmp(text, "median") == 0 ||
	    strcmp(text, "median-converted") == 0 ||
	    (strncmp(text, "single:", 7) == 0 && text[7] != '\0'))
		return MK_OK;
	return mk_err_set(err, MK_EINVAL, "--method: unknown method \"%s\" "
			  "(known: markd, median, median-converted, "
			  "single:LEG)", text);
}

enum mk_status
replay_method_parse(const struct replay_data *d, const char *text,
		    struct replay_method *out, struct mk_err *err)
{
	size_t nl = replay_target_nlegs(d), found = SIZE_MAX;
	const char *name;

	memset(out, 0, sizeof(*out));
	if (replay_method_check(text, err) != MK_OK)
		return MK_EINVAL;
	snprintf(out->name, sizeof(out->name), "%s", text);
	if (strcmp(text, "markd") == 0) {
		out->kind = REPLAY_MARKD;
		return MK_OK;
	}
	if (strcmp(text, "median") == 0) {
		out->kind = REPLAY_MEDIAN;
		return MK_OK;
	}
	if (strcmp(text, "median-converted") == 0) {
		out->kind = REPLAY_MEDIAN_CONVERTED;
		return MK_OK;
	}
	name = text + 7;
	for (size_t j = 0; j < nl; j++) {
		const struct replay_leg *lg = &d->legs[replay_target_leg(d, j)];
		const char *market =
			d->cfg->specs[d->target].legs[j].market;

		if (strcmp(lg->name, name) != 0 && strcmp(market, name) != 0)
			continue;
		if (found != SIZE_MAX)
			return mk_err_set(err, MK_EINVAL, "--method: \"%s\" "
					  "names two legs of %s", text,
					  d->cfg->specs[d->target].symbol);
		found = j;
	}
	if (found == SIZE_MAX) {
		char legs[160] = "";
		size_t used = 0;

		for (size_t j = 0; j < nl && used < sizeof(legs); j++) {
			int w = snprintf(legs + used, sizeof(legs) - used,
					 "%s%s", j ? ", " : "",
					 d->legs[replay_target_leg(d, j)].name);

			if (w < 0)
				break;
			used += (size_t)w;
		}
		return mk_err_set(err, MK_EINVAL, "--method: %s has no leg "
				  "\"%s\" (legs: %s)",
				  d->cfg->specs[d->target].symbol, name, legs);
	}
	out->kind = REPLAY_SINGLE;
	out->leg = found;
	snprintf(out->name, sizeof(out->name), "single:%s",
		 d->legs[replay_target_leg(d, found)].name);
	return MK_OK;
}

size_t
replay_methods_all(const struct replay_data *d, struct replay_method *out,
		   size_t cap)
{
	static const char *const fixed[] = { "markd", "median",
					     "median-converted" };
	size_t n = 0, nl = replay_target_nlegs(d);

	for (size_t i = 0; i < 3; i++, n++)
		if (n < cap)
			replay_method_parse(d, fixed[i], &out[n], NULL);
	for (size_t j = 0; j < nl; j++, n++)
		if (n < cap) {
			memset(&out[n], 0, sizeof(out[n]));
			out[n].kind = REPLAY_SINGLE;
			out[n].leg = j;
			snprintf(out[n].name, sizeof(out[n].name), "single:%s",
				 d->legs[replay_target_leg(d, j)].name);
		}
	return n;
}

/* ---- setup ------------------------------------------------------------ */

static enum mk_status
setup_margin(struct sim *s, struct mk_err *err)
{
	const struct replay_data *d = s->d;
	const struct cfg_margin *mg = &d->cfg->instruments[d->target].margin;
	struct mk_err e;

	replay_margin_params(d, &s->prm);
	s->base_prm = s->prm;
	s->base_prm.confirm_marks = 1;
	s->base_prm.confirm_ms = 0;
	if (mg->nbrackets > MARGIN_MAX_BRACKETS)
		return mk_err_set(err, MK_ECONFIG, "instruments[%zu].margin."
				  "brackets: the margin module takes at most "
				  "%d", d->target, MARGIN_MAX_BRACKETS);
	memset(&s->brackets, 0, sizeof(s->brackets));
	s->brackets.n = mg->nbrackets;
	for (size_t i = 0; i < mg->nbrackets; i++) {
		struct margin_bracket *b = &s->brackets.b[i];

		b->floor = mg->brackets[i].floor;
		b->cap = mg->brackets[i].cap;
		b->mmr = mg->brackets[i].mmr;
		b->cum = mg->brackets[i].cum;
		b->has_cap = true;
		b->has_cum = true;
	}
	if (margin_brackets_prepare(&s->brackets, &e) != MK_OK)
		return mk_err_set(err, MK_ECONFIG, "instruments[%zu].margin.%s",
				  d->target, e.msg);
	s->kind = mg->contract == CFG_INVERSE ? MARGIN_INVERSE : MARGIN_LINEAR;
	s->contract_size = mg->contract_size;
	return MK_OK;
}

static enum mk_status
setup(struct sim *s, size_t nm, struct mk_err *err)
{
	const struct replay_data *d = s->d;
	const struct cfg *c = d->cfg;
	size_t ni = c->ninstruments, np = s->ps->n, nl = d->nlegs;
	struct mk_err e;
	enum mk_status st;

	st = setup_margin(s, err);
	if (st != MK_OK)
		return st;
	st = agg_book_create(c->specs, ni, &s->book, &e);
	if (st != MK_OK)
		return mk_err_set(err, st, "the aggregator refuses the config: "
				  "%s", e.msg);
	s->book_id = calloc(nl, sizeof(*s->book_id));
	s->qs = calloc(nl, sizeof(*s->qs));
	s->qids = calloc(nl, sizeof(*s->qids));
	s->has_last = calloc(nl, sizeof(*s->has_last));
	s->last = calloc(nl, sizeof(*s->last));
	s->last_ms = calloc(nl, sizeof(*s->last_ms));
	s->nv_state = calloc(ni, 1);
	s->nv_value = calloc(ni, sizeof(*s->nv_value));
	s->vals = calloc(nl, sizeof(*s->vals));
	s->ms = calloc(nm, sizeof(*s->ms));
	if (s->book_id == NULL || s->qs == NULL || s->qids == NULL ||
	    s->has_last == NULL || s->last == NULL || s->last_ms == NULL ||
	    s->nv_state == NULL || s->nv_value == NULL || s->vals == NULL ||
	    s->ms == NULL)
		return mk_err_set(err, MK_ENOMEM, "out of memory");
	for (size_t l = 0; l < nl; l++)
		if (agg_book_leg_id(s->book, d->legs[l].inst, d->legs[l].leg,
				    &s->book_id[l]) != MK_OK)
			return mk_err_set(err, MK_EINVAL, "leg %zu has no id",
					  l);
	for (size_t m = 0; m < nm; m++) {
		s->ms[m].live = calloc(np > 0 ? np : 1,
				       sizeof(struct live));
		s->ms[m].tr = calloc(np > 0 ? np : 1,
				     sizeof(struct margin_tracker));
		if (s->ms[m].live == NULL || s->ms[m].tr == NULL)
			return mk_err_set(err, MK_ENOMEM, "out of memory");
	}
	return MK_OK;
}

static void
teardown(struct sim *s, size_t nm)
{
	agg_book_destroy(s->book);
	free(s->book_id);
	free(s->qs);
	free(s->qids);
	free(s->has_last);
	free(s->last);
	free(s->last_ms);
	free(s->nv_state);
	free(s->nv_value);
	free(s->vals);
	if (s->ms != NULL)
		for (size_t m = 0; m < nm; m++) {
			free(s->ms[m].live);
			free(s->ms[m].tr);
		}
	free(s->ms);
}

static enum mk_status
alloc_result(struct replay_result *r, const struct replay_method *methods,
	     size_t nm, size_t nsteps, size_t npos, struct mk_err *err)
{
	memset(r, 0, sizeof(*r));
	r->nsteps = nsteps;
	r->nmethods = nm;
	r->npos = npos;
	r->methods = calloc(nm, sizeof(*r->methods));
	r->marks = malloc(nm * nsteps * sizeof(*r->marks));
	r->markd_conf = malloc(nsteps * sizeof(*r->markd_conf));
	r->markd_status = malloc(nsteps);
	r->liqs = calloc(nm * (npos > 0 ? npos : 1), sizeof(*r->liqs));
	if (r->methods == NULL || r->marks == NULL || r->markd_conf == NULL ||
	    r->markd_status == NULL || r->liqs == NULL)
		return mk_err_set(err, MK_ENOMEM, "out of memory");
	memcpy(r->methods, methods, nm * sizeof(*methods));
	for (size_t i = 0; i < nm * nsteps; i++)
		r->marks[i] = REPLAY_NO_MARK;
	return MK_OK;
}

void
replay_result_clear(struct replay_result *r)
{
	if (r == NULL)
		return;
	free(r->methods);
	free(r->marks);
	free(r->markd_conf);
	free(r->markd_status);
	free(r->liqs);
	memset(r, 0, sizeof(*r));
}

/* ---- one step --------------------------------------------------------- */

/* Feeds every leg with a bar in the step's minute into the book. */
static enum mk_status
feed_step(struct sim *s, size_t step, int64_t t, struct mk_err *err)
{
	const struct replay_data *d = s->d;
	size_t minute = step / REPLAY_SUBTICKS, n = 0;
	enum mk_status st;

	for (size_t l = 0; l < d->nlegs; l++) {
		const struct history_bar *b = replay_bar(d, l, minute);
		struct mk_dec path[4];

		if (b == NULL)
			continue;
		history_bar_path(b, path);
		memset(&s->qs[n], 0, sizeof(s->qs[n]));
		s->qs[n].last = path[step % REPLAY_SUBTICKS];
		s->qs[n].has_last = true;
		s->qs[n].exchange_ts_ms = t;
		s->qids[n] = s->book_id[l];
		s->has_last[l] = true;
		s->last[l] = s->qs[n].last;
		s->last_ms[l] = t;
		n++;
	}
	st = n > 0 ? agg_book_quotes(s->book, s->qids, s->qs, n, t) : MK_OK;
	if (st == MK_OK)
		st = agg_book_tick(s->book, t);
	if (st != MK_OK)
		return mk_err_set(err, st, "aggregator at %lld ms: %s",
				  (long long)t, mk_strstatus(st));
	return MK_OK;
}

/* The latest price of leg l at `scale`, into *out; false when it has none
 * or it does not fit. */
static bool
last_at(const struct sim *s, size_t l, int scale, int64_t *out)
{
	struct mk_dec v;

	if (!s->has_last[l] ||
	    mk_dec_rescale(s->last[l], scale, MK_ROUND_HALF_EVEN, &v) != MK_OK ||
	    v.m <= 0)
		return false;
	*out = v.m;
	return true;
}

/* median-converted's value of instrument i (recursive, memoised per step
 * in nv_state: 0 unknown yet, 1 in progress, 2 has a value, 3 none). */
static bool
naive_converted(struct sim *s, size_t i, int64_t *out)
{
	const struct replay_data *d = s->d;
	int scale = d->cfg->specs[i].params.scale;
	size_t n = 0, lo = d->first_leg[i], hi = d->first_leg[i + 1];
	int64_t *vals;

	if (s->nv_state[i] >= 2) {
		*out = s->nv_value[i];
		return s->nv_state[i] == 2;
	}
	if (s->nv_state[i] == 1)
		return false;            /* a cycle: the loader refuses them */
	s->nv_state[i] = 1;
	vals = malloc((hi - lo) * sizeof(*vals));
	if (vals == NULL) {
		s->nv_state[i] = 3;
		return false;
	}
	for (size_t l = lo; l < hi; l++) {
		int via = d->legs[l].via;
		int64_t p, r;
		struct mk_dec v;

		if (via < 0) {
			if (last_at(s, l, scale, &p))
				vals[n++] = p;
			continue;
		}
		if (!s->has_last[l] || !naive_converted(s, (size_t)via, &r))
			continue;
		if (mk_dec_mul(s->last[l],
			       MK_DEC(r, d->cfg->specs[via].params.scale),
			       scale, MK_ROUND_HALF_EVEN, &v) == MK_OK &&
		    v.m > 0)
			vals[n++] = v.m;
	}
	if (n > 0)
		s->nv_value[i] = replay_median(vals, n);
	s->nv_state[i] = n > 0 ? 2 : 3;
	free(vals);
	*out = s->nv_value[i];
	return n > 0;
}

/* The mark of a baseline method at this step, or REPLAY_NO_MARK. */
static int64_t
baseline_mark(struct sim *s, const struct replay_method *m, int64_t t)
{
	const struct replay_data *d = s->d;
	size_t nl = replay_target_nlegs(d), n = 0;
	int64_t v;

	switch (m->kind) {
	case REPLAY_SINGLE: {
		size_t l = replay_target_leg(d, m->leg);
		int64_t max_age = d->cfg->specs[d->target].params.max_age_ms;

		if (!s->has_last[l] || t - s->last_ms[l] > max_age ||
		    !last_at(s, l, d->scale, &v))
			return REPLAY_NO_MARK;
		return v;
	}
	case REPLAY_MEDIAN:
		for (size_t j = 0; j < nl; j++)
			if (last_at(s, replay_target_leg(d, j), d->scale, &v))
				s->vals[n++] = v;
		return n > 0 ? replay_median(s->vals, n) : REPLAY_NO_MARK;
	case REPLAY_MEDIAN_CONVERTED:
		return naive_converted(s, d->target, &v) ? v : REPLAY_NO_MARK;
	case REPLAY_MARKD:
		break;
	}
	return REPLAY_NO_MARK;
}

/* True when the favourable edge (price + dir * conf) of a position may be
 * at or beyond its liquidation price (see the head of this file). */
static bool
near_lp(const struct live *lv, int64_t price, int64_t conf)
{
	if (!lv->has_lp)
		return true;
	if (lv->side == MARGIN_LONG)
		return (agg_i128)price + conf <= lv->lp;
	return (agg_i128)price - conf >= lv->lp;
}

/* Steps the live position lv of method mi with tick; records a
 * liquidation. *gone is set when the position leaves the live list. */
static enum mk_status
step_position(struct sim *s, size_t mi, struct live *lv,
	      const struct margin_params *prm, const struct margin_tick *tick,
	      size_t step, bool *gone, struct mk_err *err)
{
	struct replay_position *p = &s->ps->p[lv->pi];
	struct margin_tracker *tr = &s->ms[mi].tr[lv->pi];
	struct margin_decision dec;
	struct replay_liq *lq;
	struct mk_err e;

	*gone = false;
	if (margin_step(tr, &p->pos, prm, tick, &dec, NULL, &e) != MK_OK)
		return mk_err_set(err, e.code, "position %s at %lld ms: %s",
				  p->id, (long long)tick->time_ms, e.msg);
	lv->counting = tr->count > 0;
	if (dec.state != MARGIN_STATE_LIQUIDATABLE &&
	    dec.state != MARGIN_STATE_BANKRUPT)
		return MK_OK;
	lq = &s->res->liqs[mi * s->ps->n + lv->pi];
	lq->has = true;
	lq->step = step;
	lq->t_ms = tick->time_ms;
	lq->mark = tick->price.m;
	lq->conf = tick->conf.m;
	lq->state = (uint8_t)dec.state;
	*gone = true;
	return MK_OK;
}

/* Steps every live position of method mi: margin_step for those near
 * their liquidation price or with a confirmation running, only the
 * comparison for the others. */
static enum mk_status
step_method(struct sim *s, size_t mi, const struct margin_params *prm,
	    const struct margin_tick *tick, size_t step, struct mk_err *err)
{
	struct mstate *m = &s->ms[mi];
	bool usable = margin_tick_usable(tick);
	int64_t price = tick->price.m, conf = tick->conf.m;

	for (size_t k = 0; k < m->nlive;) {
		struct live *lv = &m->live[k];
		bool gone;
		enum mk_status st;

		if (!lv->counting && (!usable || !near_lp(lv, price, conf))) {
			k++;
			continue;
		}
		st = step_position(s, mi, lv, prm, tick, step, &gone, err);
		if (st != MK_OK)
			return st;
		if (gone)
			*lv = m->live[--m->nlive];
		else
			k++;
	}
	return MK_OK;
}

/* Enters the positions due by t at the markd mark (when it is usable). */
static enum mk_status
enter_due(struct sim *s, size_t *next, const struct agg_mark *mk,
	  size_t step, int64_t t, size_t nm, struct mk_err *err)
{
	struct replay_positions *ps = s->ps;

	if (mk == NULL || !mk->has_price || mk->held ||
	    !mk->valid_for_liquidation || !mk_dec_is_pos(mk->price))
		return MK_OK;
	for (; *next < ps->n && ps->p[*next].at_ms <= t; (*next)++) {
		size_t pi = *next;
		enum mk_status st;

		st = replay_position_enter(&ps->p[pi], s->kind,
					   s->contract_size, &s->brackets,
					   &s->prm, mk->price, t, step, err);
		if (st != MK_OK)
			return st;
		for (size_t mi = 0; mi < nm; mi++) {
			struct live *lv = &s->ms[mi].live[s->ms[mi].nlive++];

			margin_tracker_init(&s->ms[mi].tr[pi]);
			lv->pi = (uint32_t)pi;
			lv->side = (int8_t)ps->p[pi].side;
			lv->has_lp = ps->p[pi].has_lp;
			lv->lp = ps->p[pi].lp;
			lv->counting = false;
		}
	}
	return MK_OK;
}

static enum mk_status
run_step(struct sim *s, size_t step, size_t *next, struct mk_err *err)
{
	const struct replay_data *d = s->d;
	struct replay_result *r = s->res;
	int64_t t = replay_step_ms(d, step);
	const struct agg_mark *mk;
	enum mk_status st;

	st = feed_step(s, step, t, err);
	if (st != MK_OK)
		return st;
	mk = agg_book_mark(s->book, d->target);
	r->markd_status[step] = mk->has_price ? (uint8_t)mk->status : 255;
	r->markd_conf[step] = mk->has_price ? mk->conf.m : -1;
	st = enter_due(s, next, mk, step, t, r->nmethods, err);
	if (st != MK_OK)
		return st;
	memset(s->nv_state, 0, d->cfg->ninstruments);
	for (size_t mi = 0; mi < r->nmethods; mi++) {
		const struct replay_method *m = &r->methods[mi];
		struct margin_tick tick = { .time_ms = t };
		int64_t v;

		if (m->kind == REPLAY_MARKD) {
			if (!mk->has_price)
				continue;
			r->marks[mi * r->nsteps + step] = mk->price.m;
			tick.price = mk->price;
			tick.conf = mk->conf;
			tick.valid_for_liquidation = mk->valid_for_liquidation;
			tick.status = (int)mk->status;
			tick.sources_used = mk->sources_used;
			tick.seq = mk->seq;
			st = step_method(s, mi, &s->prm, &tick, step, err);
		} else {
			v = baseline_mark(s, m, t);
			if (v == REPLAY_NO_MARK)
				continue;
			r->marks[mi * r->nsteps + step] = v;
			tick.price = MK_DEC(v, d->scale);
			tick.conf = MK_DEC(0, d->scale);
			tick.valid_for_liquidation = true;
			tick.seq = (uint64_t)step + 1;
			st = step_method(s, mi, &s->base_prm, &tick, step, err);
		}
		if (st != MK_OK)
			return st;
	}
	return MK_OK;
}

enum mk_status
replay_run(const struct replay_data *d, struct replay_positions *ps,
	   const struct replay_method *methods, size_t nm,
	   struct replay_result *res, struct mk_err *err)
{
	struct sim s = { .d = d, .ps = ps, .res = res };
	size_t nsteps = d->nmin * REPLAY_SUBTICKS, next = 0;
	enum mk_status st;

	st = alloc_result(res, methods, nm, nsteps, ps->n, err);
	if (st == MK_OK)
		st = setup(&s, nm, err);
	for (size_t step = 0; st == MK_OK && step < nsteps; step++)
		st = run_step(&s, step, &next, err);
	teardown(&s, nm);
	if (st != MK_OK)
		replay_result_clear(res);
	return st;
}
