/*
 * check_registry.c - the position registry (margin/registry.h).
 *
 *   - differential: 100,000 positions on three instruments (linear with
 *     default brackets, inverse, custom tables only) and a fixed-seed
 *     sequence of ticks (small moves, jumps, wide bands, held marks)
 *     interleaved with registrations, replacements, removals and
 *     collateral changes; after every step the registry must report, for
 *     every position, the same state, last valid state, reason and
 *     confirmation count as a naive reference that evaluates every
 *     position of the instrument on every usable tick, and it must have
 *     produced the same events; the registry must also look at far fewer
 *     positions than the reference does;
 *   - held marks: nobody becomes liquidatable, whatever the price of a
 *     mark that is not valid for liquidation, and the window still needs
 *     K valid marks;
 *   - watch prices: a position is visited exactly when its adverse price
 *     crosses the buffered liquidation price (T1), and the vectors' states;
 *   - writes: replace (also to another instrument and side), remove,
 *     collateral, restored trackers, interned bracket tables, views that
 *     outlive the registry, listing with filters and cursors, bad input.
 */
#include "config.h"

#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "aggregator/dec.h"
#include "margin/math.h"
#include "margin/position.h"
#include "margin/registry.h"
#include "margin/state.h"
#include "tests/testutil.h"

/* ---- helpers ---------------------------------------------------------- */

/* For hot loops: Check's own asserts record every passing check (a write
 * each), which would dominate the run time. */
#define REQUIRE(cond, ...)                                                 \
	do {                                                               \
		if (!(cond))                                               \
			ck_abort_msg(__VA_ARGS__);                         \
	} while (0)

static struct mk_dec
D(const char *s)
{
	struct mk_dec d;
	struct mk_err err;

	ck_assert_msg(mk_dec_parse(s, strlen(s), &d, &err) == MK_OK,
		      "parse %s: %s", s, err.msg);
	return d;
}

static void
add_bracket(struct margin_brackets *t, const char *floor, const char *cap,
	    const char *mmr)
{
	struct margin_bracket *b = &t->b[t->n++];

	memset(b, 0, sizeof(*b));
	b->floor = D(floor);
	if (cap != NULL) {
		b->cap = D(cap);
		b->has_cap = true;
	}
	b->mmr = D(mmr);
}

static void
prepare(struct margin_brackets *t)
{
	struct mk_err err;

	ck_assert_msg(margin_brackets_prepare(t, &err) == MK_OK, "%s", err.msg);
}

/* margin-vectors.md's illustrative tables. */
static struct margin_brackets LIN, INV, CUST[3];

static void
tables_init(void)
{
	memset(&LIN, 0, sizeof(LIN));
	add_bracket(&LIN, "0", "50000", "0.004");
	add_bracket(&LIN, "50000", "250000", "0.005");
	add_bracket(&LIN, "250000", "1000000", "0.01");
	add_bracket(&LIN, "1000000", "10000000", "0.025");
	add_bracket(&LIN, "10000000", "20000000", "0.05");
	prepare(&LIN);
	memset(&INV, 0, sizeof(INV));
	add_bracket(&INV, "0", "5", "0.005");
	add_bracket(&INV, "5", "10", "0.01");
	add_bracket(&INV, "10", "20", "0.025");
	prepare(&INV);
	memset(CUST, 0, sizeof(CUST));
	add_bracket(&CUST[0], "0", NULL, "0.01");
	add_bracket(&CUST[1], "0", "10000", "0.005");
	add_bracket(&CUST[1], "10000", NULL, "0.02");
	add_bracket(&CUST[2], "0", "1000", "0.1");
	add_bracket(&CUST[2], "1000", NULL, "0.3");
	for (int i = 0; i < 3; i++)
		prepare(&CUST[i]);
}

enum { I_LIN, I_INV, I_CUST, NINST };

static const char *const SYMS[NINST] = { "BTC-USD", "XBT-USD", "ETH-USD" };

static void
params_of(size_t i, struct margin_params *p)
{
	margin_params_default(p);
	p->price_scale = i == I_INV ? 1 : 2;
	if (i == I_CUST) {
		p->confirm_marks = 1;
		p->confirm_ms = 0;
		p->buffer_bps = 500;
	}
}

static struct margin_registry *
make_registry(void)
{
	struct margin_registry_instrument in[NINST];
	struct margin_registry *reg = NULL;
	struct mk_err err;

	tables_init();
	for (size_t i = 0; i < NINST; i++) {
		in[i].symbol = SYMS[i];
		params_of(i, &in[i].params);
		in[i].brackets = i == I_LIN ? &LIN : i == I_INV ? &INV : NULL;
	}
	ck_assert_msg(margin_registry_create(in, NINST, &reg, &err) == MK_OK,
		      "%s", err.msg);
	return reg;
}

static struct margin_tick
tick_of(const char *price, const char *conf, bool valid, uint64_t seq,
	int64_t ms)
{
	struct margin_tick t;

	memset(&t, 0, sizeof(t));
	t.price = D(price);
	t.conf = D(conf);
	t.valid_for_liquidation = valid;
	t.status = valid ? 0 : 2;
	t.sources_used = 3;
	t.seq = seq;
	t.time_ms = ms;
	return t;
}

/* Events collected from the callback. */
struct evrec {
	char id[MARGIN_REGISTRY_MAX_ID + 1];
	size_t inst;
	struct margin_event ev;
};

struct evlist {
	struct evrec *v;
	size_t n, cap;
};

static void
ev_push(struct evlist *l, const char *id, size_t inst,
	const struct margin_event *ev)
{
	if (l->n == l->cap) {
		l->cap = l->cap ? l->cap * 2 : 256;
		l->v = realloc(l->v, l->cap * sizeof(*l->v));
		REQUIRE(l->v != NULL, "out of memory");
	}
	snprintf(l->v[l->n].id, sizeof(l->v[l->n].id), "%s", id);
	l->v[l->n].inst = inst;
	l->v[l->n].ev = *ev;
	l->n++;
}

static void
collect(void *ctx, const struct margin_registry_event *e)
{
	ev_push(ctx, e->id, e->inst, &e->ev);
}

static int
evrec_cmp(const void *a, const void *b)
{
	return strcmp(((const struct evrec *)a)->id,
		      ((const struct evrec *)b)->id);
}

static void
put_ok(struct margin_registry *reg, const char *id, size_t inst,
       const struct margin_position *p, struct evlist *evs)
{
	struct mk_err err;

	REQUIRE(margin_registry_put(reg, id, inst, p, NULL,
				    evs != NULL ? collect : NULL, evs, NULL,
				    &err) == MK_OK,
		"put %s: %s", id, err.msg);
}

static enum margin_state
state_of(struct margin_registry *reg, const char *id)
{
	struct margin_registry_view v;
	enum margin_state s;

	ck_assert_int_eq(margin_registry_get(reg, id, &v), MK_OK);
	s = v.state;
	margin_registry_view_release(&v);
	return s;
}

static void
check_ok(struct margin_registry *reg)
{
	struct mk_err err;

	ck_assert_msg(margin_registry_check(reg, &err) == MK_OK, "%s",
		      err.msg);
}

/* T1: linear long Q = 1, EP = 40,000, WB = 2,000. */
static struct margin_position
t1(void)
{
	struct margin_position p;

	memset(&p, 0, sizeof(p));
	p.kind = MARGIN_LINEAR;
	p.side = MARGIN_LONG;
	p.size = D("1");
	p.entry_price = D("40000");
	p.collateral = D("2000");
	p.brackets = &LIN;
	return p;
}

/* ---- the naive reference ---------------------------------------------- */

struct npos {
	bool live;
	size_t inst;
	char id[24];
	struct margin_position pos;
	struct margin_tracker trk;
};

struct naive {
	struct npos *p;
	size_t n;
	struct margin_params prm[NINST];
	bool has_tick[NINST];
	struct margin_tick tick[NINST];
	size_t evaluated;
};

/*
 * margin_step on one position, as state.h defines it (held ticks too, so
 * that a long held stretch restarts the run), with the registry's event
 * rules: entering "held" is no event, leaving it is one only when the
 * tracked state changes, a new position found safe is none. Writes
 * (`tick` false) evaluate only on a usable tick.
 */
static void
naive_eval(struct naive *nv, struct npos *np, struct evlist *evs, bool tick)
{
	const struct margin_tick *t = &nv->tick[np->inst];
	enum margin_state from = (enum margin_state)np->trk.state;
	enum margin_state valid = (enum margin_state)np->trk.last_valid;
	struct margin_decision d;
	struct margin_event ev;

	if (!nv->has_tick[np->inst] || (!tick && !margin_tick_usable(t)))
		return;
	if (margin_tick_usable(t))
		nv->evaluated++;
	if (margin_step(&np->trk, &np->pos, &nv->prm[np->inst], t, &d, &ev,
			NULL) != MK_OK || !d.changed)
		return;
	if (d.state == MARGIN_STATE_HELD)
		return;
	if (from == MARGIN_STATE_HELD)
		from = valid;
	if (from == d.state ||
	    (from == MARGIN_STATE_NEW && d.state == MARGIN_STATE_SAFE))
		return;
	ev.from = from;
	ev_push(evs, np->id, np->inst, &ev);
}

static void
naive_put(struct naive *nv, size_t k, size_t inst,
	  const struct margin_position *p, struct evlist *evs)
{
	struct npos *np = &nv->p[k];

	if (!np->live) {
		margin_tracker_init(&np->trk);
		np->live = true;
	} else {
		np->trk.count = 0;
		np->trk.first_ms = 0;
		np->trk.last_seq = 0;
	}
	np->inst = inst;
	np->pos = *p;
	naive_eval(nv, np, evs, false);
}

static void
naive_tick(struct naive *nv, size_t inst, const struct margin_tick *t,
	   struct evlist *evs)
{
	nv->tick[inst] = *t;
	nv->has_tick[inst] = true;
	for (size_t k = 0; k < nv->n; k++)
		if (nv->p[k].live && nv->p[k].inst == inst)
			naive_eval(nv, &nv->p[k], evs, true);
}

/* ---- random positions and ticks --------------------------------------- */

/* Mark mantissas, at each instrument's price scale, and where they
 * started. */
static int64_t MARK[NINST], START[NINST];

static struct mk_dec
pct_of(struct tu_rng *r, int64_t m, int scale, int lo_bp, int hi_bp)
{
	int64_t bp = tu_rng_range(r, lo_bp, hi_bp);

	return MK_DEC(m + m * bp / 10000, scale);
}

static void
random_position(struct tu_rng *r, size_t inst, struct margin_position *p)
{
	int64_t lev = tu_rng_range(r, 2, 100);
	struct mk_dec notional;

	memset(p, 0, sizeof(*p));
	p->side = (tu_rng_next(r) & 1u) ? MARGIN_LONG : MARGIN_SHORT;
	if (inst == I_INV) {
		p->kind = MARGIN_INVERSE;
		p->size = MK_DEC(tu_rng_range(r, 1, 20000), 0);
		p->contract_size = MK_DEC(100, 0);
		p->entry_price = pct_of(r, MARK[inst], 1, -300, 300);
		/* coin notional N * CS / EP */
		REQUIRE(mk_dec_mul(p->size, p->contract_size, 0,
				   MK_ROUND_EXACT, &notional) == MK_OK &&
				mk_dec_div(notional, p->entry_price, 8,
					   MK_ROUND_HALF_EVEN,
					   &notional) == MK_OK,
			"notional");
		p->brackets = &INV;
	} else {
		p->kind = MARGIN_LINEAR;
		p->size = MK_DEC(tu_rng_range(r, 1, 50000), 3);
		p->entry_price = pct_of(r, MARK[inst], 2, -300, 300);
		REQUIRE(mk_dec_mul(p->size, p->entry_price, 5, MK_ROUND_EXACT,
				   &notional) == MK_OK, "notional");
		if (inst == I_CUST)
			p->brackets = &CUST[tu_rng_next(r) % 3];
		else if (tu_rng_next(r) % 10 == 0)
			p->brackets = &CUST[tu_rng_next(r) % 2];
		else
			p->brackets = &LIN;
	}
	REQUIRE(mk_dec_div(notional, mk_dec_from_int(lev),
			   inst == I_INV ? 8 : 2, MK_ROUND_HALF_EVEN,
			   &p->collateral) == MK_OK, "collateral");
	if (tu_rng_next(r) % 4 == 0) {
		p->has_leverage = true;
		p->leverage = mk_dec_from_int(lev);
	}
}

static struct margin_tick
random_tick(struct tu_rng *r, size_t inst, uint64_t seq, int64_t ms)
{
	int scale = inst == I_INV ? 1 : 2;
	int64_t m = MARK[inst], step;
	uint64_t kind = tu_rng_next(r) % 20;
	struct margin_tick t;

	memset(&t, 0, sizeof(t));
	if (kind == 0)
		step = m * tu_rng_range(r, -400, 400) / 10000;   /* jump */
	else
		step = m * tu_rng_range(r, -40, 40) / 10000;
	/* keep the walk within +-6% of the start */
	if ((m + step) > START[inst] / 100 * 106 ||
	    (m + step) < START[inst] / 100 * 94)
		step = -step;
	t.price = MK_DEC(m + step, scale);
	t.conf = MK_DEC((tu_rng_next(r) % 4 == 0)
				? 0
				: (m + step) * tu_rng_range(r, 1, 30) / 10000,
			scale);
	t.valid_for_liquidation = tu_rng_next(r) % 8 != 0;
	t.status = t.valid_for_liquidation ? 0 : 3;
	t.sources_used = (uint32_t)tu_rng_range(r, 1, 5);
	t.seq = seq;
	t.time_ms = ms;
	if (t.valid_for_liquidation)
		MARK[inst] = m + step;
	else if (tu_rng_next(r) & 1u)
		t.price = MK_DEC((m + step) / 3, scale);  /* a wild held mark */
	return t;
}

static void
compare_events(struct evlist *a, struct evlist *b, const char *what)
{
	ck_assert_msg(a->n == b->n, "%s: registry %zu events, naive %zu", what,
		      a->n, b->n);
	if (a->n == 0)
		return;
	qsort(a->v, a->n, sizeof(*a->v), evrec_cmp);
	qsort(b->v, b->n, sizeof(*b->v), evrec_cmp);
	for (size_t i = 0; i < a->n; i++) {
		const struct margin_event *x = &a->v[i].ev, *y = &b->v[i].ev;

		REQUIRE(strcmp(a->v[i].id, b->v[i].id) == 0 &&
				      x->from == y->from && x->to == y->to &&
				      x->reason == y->reason &&
				      x->breach_marks == y->breach_marks &&
				      x->breach_ms == y->breach_ms &&
				      x->seq == y->seq && x->flags == y->flags &&
				      mk_dec_cmp(x->price, y->price) == 0,
			      "%s: event %zu differs: %s %s->%s vs %s %s->%s",
			      what, i, a->v[i].id, margin_state_name(x->from),
			      margin_state_name(x->to), b->v[i].id,
			      margin_state_name(y->from),
			      margin_state_name(y->to));
	}
	a->n = b->n = 0;
}

static void
compare_states(struct margin_registry *reg, struct naive *nv)
{
	size_t counts[MARGIN_STATE_COUNT], want[MARGIN_STATE_COUNT];

	memset(want, 0, sizeof(want));
	for (size_t k = 0; k < nv->n; k++) {
		const struct npos *np = &nv->p[k];
		struct margin_registry_view v;
		const struct margin_tick *t = &nv->tick[np->inst];
		enum margin_reason why;
		bool held;
		enum margin_state st;

		if (!np->live) {
			REQUIRE(margin_registry_get(reg, np->id, &v) ==
					MK_ENOTFOUND, "%s: still there", np->id);
			continue;
		}
		REQUIRE(margin_registry_get(reg, np->id, &v) == MK_OK,
			"%s: missing", np->id);
		held = !nv->has_tick[np->inst] || !margin_tick_usable(t);
		st = held ? MARGIN_STATE_HELD : (enum margin_state)np->trk.state;
		why = !held ? (enum margin_reason)np->trk.reason
		      : nv->has_tick[np->inst] && t->valid_for_liquidation
			      ? MARGIN_REASON_MARK_UNUSABLE
			      : MARGIN_REASON_MARK_INVALID;
		want[st]++;
		REQUIRE(v.state == st && v.held == held &&
				      v.last_valid == np->trk.last_valid &&
				      v.tracker.count == np->trk.count &&
				      v.reason == why && v.inst == np->inst,
			      "%s: registry %s (last valid %s, count %u),"
			      " naive %s (count %u)", np->id,
			      margin_state_name(v.state),
			      margin_state_name(v.last_valid), v.tracker.count,
			      margin_state_name(st), np->trk.count);
		REQUIRE(st == MARGIN_STATE_HELD ||
				np->trk.last_valid == np->trk.state,
			"%s: last valid", np->id);
		REQUIRE(!(held && v.state == MARGIN_STATE_LIQUIDATABLE),
			"%s: liquidatable while held", np->id);
		margin_registry_view_release(&v);
	}
	margin_registry_state_counts(reg, counts);
	for (size_t s = 0; s < MARGIN_STATE_COUNT; s++)
		ck_assert_uint_eq(counts[s], want[s]);
}

#define NPOS 100000u
#define NTICKS 60

START_TEST(test_differential)
{
	struct tu_rng r = TU_RNG_INIT(20240611);
	struct margin_registry *reg = make_registry();
	struct naive nv;
	struct evlist re = { 0 }, ne = { 0 };
	uint64_t seq[NINST] = { 0 };
	int64_t now = 1700000000000;
	size_t visited = 0, transitions = 0, liquidatable = 0, naive_total = 0;

	MARK[I_LIN] = 4000000;     /* 40,000.00 */
	MARK[I_INV] = 400000;      /* 40,000.0 */
	MARK[I_CUST] = 300000;     /* 3,000.00 */
	memcpy(START, MARK, sizeof(START));
	memset(&nv, 0, sizeof(nv));
	for (size_t i = 0; i < NINST; i++)
		params_of(i, &nv.prm[i]);
	nv.n = NPOS + NTICKS * 20;
	nv.p = calloc(nv.n, sizeof(*nv.p));
	ck_assert_ptr_nonnull(nv.p);
	for (size_t k = 0; k < nv.n; k++)
		snprintf(nv.p[k].id, sizeof(nv.p[k].id), "p%zu", k);

	/* A first usable tick on each instrument, then the positions. */
	for (size_t i = 0; i < NINST; i++) {
		struct margin_tick t = random_tick(&r, i, ++seq[i], now);

		t.valid_for_liquidation = true;
		ck_assert_int_eq(margin_registry_on_mark(reg, i, &t, collect,
							 &re, NULL), MK_OK);
		naive_tick(&nv, i, &t, &ne);
	}
	for (size_t k = 0; k < NPOS; k++) {
		size_t inst = (size_t)(tu_rng_next(&r) % NINST);
		struct margin_position p;

		random_position(&r, inst, &p);
		put_ok(reg, nv.p[k].id, inst, &p, &re);
		naive_put(&nv, k, inst, &p, &ne);
	}
	transitions += re.n;
	compare_events(&re, &ne, "registration");
	compare_states(reg, &nv);
	check_ok(reg);

	for (int step = 0; step < NTICKS; step++) {
		size_t inst = (size_t)(tu_rng_next(&r) % NINST);
		struct margin_registry_tick_stats st;
		struct margin_tick t;
		char what[64];
		int nops = (int)(tu_rng_next(&r) % 20);

		/* writes between ticks */
		for (int o = 0; o < nops; o++) {
			size_t k = (size_t)(tu_rng_next(&r) % nv.n);
			struct npos *np = &nv.p[k];
			uint64_t op = tu_rng_next(&r) % 4;

			if (op == 0 && np->live) {
				ck_assert_int_eq(margin_registry_remove(
							 reg, np->id), MK_OK);
				np->live = false;
			} else if (op == 1 && np->live) {
				struct margin_position p = np->pos;
				struct mk_err err;
				int64_t pct = tu_rng_range(&r, 50, 150);

				ck_assert_int_eq(mk_dec_mul(p.collateral,
							    MK_DEC(pct, 2),
							    p.collateral.scale,
							    MK_ROUND_DOWN,
							    &p.collateral),
						 MK_OK);
				ck_assert_msg(margin_registry_set_collateral(
						      reg, np->id, p.collateral,
						      collect, &re, &err) ==
						      MK_OK,
					      "%s", err.msg);
				np->pos.collateral = p.collateral;
				naive_eval(&nv, np, &ne, false);
			} else {
				size_t ni = (size_t)(tu_rng_next(&r) % NINST);
				struct margin_position p;

				random_position(&r, ni, &p);
				put_ok(reg, np->id, ni, &p, &re);
				naive_put(&nv, k, ni, &p, &ne);
			}
		}
		snprintf(what, sizeof(what), "writes before tick %d", step);
		transitions += re.n;
		compare_events(&re, &ne, what);

		t = random_tick(&r, inst, ++seq[inst], now += tu_rng_range(&r, 200, 2000));
		ck_assert_int_eq(margin_registry_on_mark(reg, inst, &t, collect,
							 &re, &st), MK_OK);
		nv.evaluated = 0;
		naive_tick(&nv, inst, &t, &ne);
		ck_assert_uint_eq(st.errors, 0);
		ck_assert(st.held == !margin_tick_usable(&t));
		if (st.held)
			ck_assert_uint_eq(re.n, 0);
		for (size_t e = 0; e < re.n; e++) {
			REQUIRE(re.v[e].ev.to != MARGIN_STATE_HELD, "held");
			liquidatable += re.v[e].ev.to ==
					MARGIN_STATE_LIQUIDATABLE;
		}
		visited += st.visited;
		naive_total += nv.evaluated;
		/* the registry never looks at more than the reference */
		ck_assert_uint_le(st.visited, nv.evaluated);
		snprintf(what, sizeof(what), "tick %d", step);
		transitions += re.n;
		compare_events(&re, &ne, what);
		compare_states(reg, &nv);
		/* the liquidation engine closes most liquidatable positions */
		for (size_t k = 0; k < nv.n; k++) {
			struct npos *np = &nv.p[k];

			if (np->live && np->inst == inst &&
			    np->trk.state >= MARGIN_STATE_LIQUIDATABLE &&
			    tu_rng_next(&r) % 4 != 0) {
				REQUIRE(margin_registry_remove(reg, np->id) ==
						MK_OK, "remove %s", np->id);
				np->live = false;
			}
		}
		if (step % 20 == 19)
			check_ok(reg);
	}
	check_ok(reg);
	/* The run must have exercised something, and the registry must have
	 * looked at a small share of what the full scan evaluates. */
	printf("differential: %u positions, %d ticks: %zu transitions (%zu to"
	       " liquidatable), registry evaluated %zu, full scan %zu\n",
	       NPOS, NTICKS, transitions, liquidatable, visited, naive_total);
	ck_assert_uint_gt(transitions, 1000);
	ck_assert_uint_gt(liquidatable, 10);
	ck_assert_msg(visited * 5 < naive_total,
		      "registry visited %zu positions in %d ticks", visited,
		      NTICKS);
	free(re.v);
	free(ne.v);
	free(nv.p);
	margin_registry_destroy(reg);
}
END_TEST

/* ---- the threshold fast path against a full scan --------------------- */

/*
 * Every position and every tracker field (state, last valid state,
 * reason, flags, confirmation count, first breached time, last counted
 * seq) must match the naive reference after every step, as must the
 * events. Unlike test_differential, the marks are aimed at the positions'
 * own thresholds: exactly at a liquidation, bankruptcy or buffered price,
 * a unit or half a unit (a finer scale) away, with the mark, the lower or
 * the upper edge on it; and at the corners: conf 0, a lower edge at or
 * below zero, seq going back, held stretches longer than the window.
 */

/* A restored tracker, as margin_registry_restore keeps it. */
static void
naive_restore(struct npos *np, const struct margin_tracker *from)
{
	margin_tracker_init(&np->trk);
	if (from->state < MARGIN_STATE_SAFE ||
	    from->state > MARGIN_STATE_BANKRUPT)
		return;
	np->trk.state = from->state;
	np->trk.last_valid = from->state;
	np->trk.reason = from->reason;
	np->trk.flags = from->flags;
}

static void
compare_trackers(struct margin_registry *reg, struct naive *nv,
		 const char *what)
{
	for (size_t k = 0; k < nv->n; k++) {
		const struct npos *np = &nv->p[k];
		struct margin_registry_view v;
		const struct margin_tracker *a, *b = &np->trk;

		if (!np->live)
			continue;
		REQUIRE(margin_registry_get(reg, np->id, &v) == MK_OK,
			"%s: %s missing", what, np->id);
		a = &v.tracker;
		REQUIRE(a->last_valid == b->last_valid &&
				(b->state == MARGIN_STATE_HELD ||
				 (a->state == b->state &&
				  a->reason == b->reason)) &&
				a->flags == b->flags && a->count == b->count &&
				a->first_ms == b->first_ms &&
				a->last_seq == b->last_seq,
			"%s: %s: registry %s/%s flags %#x count %u first %lld"
			" seq %llu; naive %s/%s flags %#x count %u first %lld"
			" seq %llu", what, np->id,
			margin_state_name(a->state),
			margin_reason_name(a->reason), a->flags, a->count,
			(long long)a->first_ms, (unsigned long long)a->last_seq,
			margin_state_name(b->state),
			margin_reason_name(b->reason), b->flags, b->count,
			(long long)b->first_ms,
			(unsigned long long)b->last_seq);
		margin_registry_view_release(&v);
	}
}

/* A position near its limits: leverage 1x to 120x, sometimes exactly 1x
 * (no liquidation or bankruptcy price on one side). */
static void
edgy_position(struct tu_rng *r, size_t inst, struct margin_position *p)
{
	random_position(r, inst, p);
	if (tu_rng_next(r) % 10 == 0) {
		/* fully collateralised: WB = notional at entry */
		struct mk_dec n;

		if (p->kind == MARGIN_LINEAR)
			REQUIRE(mk_dec_mul(p->size, p->entry_price, 5,
					   MK_ROUND_EXACT, &n) == MK_OK,
				"notional");
		else
			REQUIRE(mk_dec_mul(p->size, p->contract_size, 0,
					   MK_ROUND_EXACT, &n) == MK_OK &&
					mk_dec_div(n, p->entry_price, 8,
						   MK_ROUND_HALF_EVEN,
						   &n) == MK_OK,
				"notional");
		p->collateral = n;
		p->has_leverage = false;
	}
}

/* One of position np's threshold prices (liquidation, bankruptcy,
 * buffered) at the instrument's scale, moved by -1, -1/2, 0, +1/2 or +1
 * units (half units at a scale one digit finer); false when it has
 * none. */
static bool
threshold_price(struct tu_rng *r, struct margin_registry *reg,
		const struct npos *np, const struct margin_params *prm,
		struct mk_dec *out)
{
	struct margin_registry_view v;
	struct margin_liq liq;
	struct mk_dec x;
	int64_t off = tu_rng_range(r, -2, 2);
	uint64_t which = tu_rng_next(r) % 3;

	if (margin_registry_get(reg, np->id, &v) != MK_OK)
		return false;
	if (margin_liquidation(&np->pos, prm, &liq, NULL) != MK_OK) {
		margin_registry_view_release(&v);
		return false;
	}
	if (which == 0 && liq.has_price)
		x = liq.price;
	else if (which == 1 && liq.has_bankruptcy)
		x = liq.bankruptcy;
	else if (v.watch != INT64_MAX && v.watch != INT64_MIN)
		x = MK_DEC(np->pos.side == MARGIN_LONG ? v.watch - 1
						       : v.watch + 1,
			   prm->price_scale);
	else
		x = MK_DEC(0, 0);
	margin_registry_view_release(&v);
	if (x.m <= 2)
		return false;
	/* off in half units: at a scale one digit finer */
	REQUIRE(mk_dec_rescale(x, x.scale + 1, MK_ROUND_EXACT, &x) == MK_OK,
		"rescale");
	x.m += off * 5;
	*out = x;
	return true;
}

START_TEST(test_fast_path_exact)
{
	struct tu_rng r = TU_RNG_INIT(77123);
	struct margin_registry *reg = make_registry();
	struct naive nv;
	struct evlist re = { 0 }, ne = { 0 };
	uint64_t seq[NINST] = { 0 };
	int64_t now = 1700000000000;
	size_t visited = 0, exact = 0, transitions = 0, aimed = 0, full = 0;
	const size_t npos = 2400, nticks = 1500;

	MARK[I_LIN] = 4000000;
	MARK[I_INV] = 400000;
	MARK[I_CUST] = 300000;
	memcpy(START, MARK, sizeof(START));
	memset(&nv, 0, sizeof(nv));
	for (size_t i = 0; i < NINST; i++)
		params_of(i, &nv.prm[i]);
	nv.n = npos + 200;
	nv.p = calloc(nv.n, sizeof(*nv.p));
	ck_assert_ptr_nonnull(nv.p);
	for (size_t k = 0; k < nv.n; k++)
		snprintf(nv.p[k].id, sizeof(nv.p[k].id), "q%zu", k);
	/* positions first, while no instrument has a tick: all new */
	for (size_t k = 0; k < npos; k++) {
		size_t inst = (size_t)(tu_rng_next(&r) % NINST);
		struct margin_position p;

		edgy_position(&r, inst, &p);
		put_ok(reg, nv.p[k].id, inst, &p, &re);
		naive_put(&nv, k, inst, &p, &ne);
	}
	compare_events(&re, &ne, "registration");

	for (size_t step = 0; step < nticks; step++) {
		size_t inst = (size_t)(tu_rng_next(&r) % NINST);
		const struct margin_params *prm = &nv.prm[inst];
		int ps = prm->price_scale;
		struct margin_registry_tick_stats st;
		struct margin_tick t;
		uint64_t kind = tu_rng_next(&r) % 16;
		char what[64];

		/* a few writes */
		for (int o = (int)(tu_rng_next(&r) % 4); o > 0; o--) {
			size_t k = (size_t)(tu_rng_next(&r) % nv.n);
			struct npos *np = &nv.p[k];
			uint64_t op = tu_rng_next(&r) % 5;

			if (op == 0 && np->live) {
				ck_assert_int_eq(margin_registry_remove(
							 reg, np->id), MK_OK);
				np->live = false;
			} else if (op == 1 && np->live) {
				struct mk_dec c = np->pos.collateral;
				struct mk_err err;

				REQUIRE(mk_dec_mul(c, MK_DEC(tu_rng_range(
							       &r, 60, 140), 2),
						   c.scale, MK_ROUND_DOWN,
						   &c) == MK_OK, "collateral");
				REQUIRE(margin_registry_set_collateral(
						reg, np->id, c, collect, &re,
						&err) == MK_OK, "%s", err.msg);
				np->pos.collateral = c;
				naive_eval(&nv, np, &ne, false);
			} else if (op == 2 && np->live) {
				struct margin_tracker tr;

				margin_tracker_init(&tr);
				tr.state = (uint8_t)tu_rng_range(
					&r, MARGIN_STATE_SAFE,
					MARGIN_STATE_BANKRUPT);
				tr.reason = (uint8_t)tu_rng_range(
					&r, 0, MARGIN_REASON_COUNT - 1);
				tr.flags = (uint8_t)(tu_rng_next(&r) & 0x7fu);
				ck_assert_int_eq(margin_registry_restore(
							 reg, np->id, &tr),
						 MK_OK);
				naive_restore(np, &tr);
			} else {
				size_t ni = (size_t)(tu_rng_next(&r) % NINST);
				struct margin_position p;

				edgy_position(&r, ni, &p);
				put_ok(reg, np->id, ni, &p, &re);
				naive_put(&nv, k, ni, &p, &ne);
			}
		}
		snprintf(what, sizeof(what), "writes before tick %zu", step);
		transitions += re.n;
		compare_events(&re, &ne, what);
		compare_trackers(reg, &nv, what);

		now += tu_rng_range(&r, 100, 1500);
		if (kind == 0)
			now += 120000;           /* a long gap */
		t = random_tick(&r, inst, ++seq[inst], now);
		if (kind <= 6) {
			/* aim at a position's threshold */
			size_t k = (size_t)(tu_rng_next(&r) % nv.n);
			struct mk_dec x, c = t.conf;

			for (int tries = 0; tries < 20 && !(nv.p[k].live &&
							    nv.p[k].inst == inst);
			     tries++)
				k = (size_t)(tu_rng_next(&r) % nv.n);
			if (nv.p[k].live && nv.p[k].inst == inst &&
			    threshold_price(&r, reg, &nv.p[k], prm, &x)) {
				uint64_t edge = tu_rng_next(&r) % 3;

				if (tu_rng_next(&r) % 3 == 0)
					c = MK_DEC(0, 0);
				if (edge == 0)
					t.price = x;                  /* mark */
				else if (edge == 1)
					REQUIRE(mk_dec_add(x, c, &t.price) ==
							MK_OK, "add");  /* lo */
				else
					REQUIRE(mk_dec_sub(x, c, &t.price) ==
							MK_OK, "sub");  /* hi */
				t.conf = c;
				if (mk_dec_is_pos(t.price)) {
					aimed++;
					t.valid_for_liquidation = true;
					REQUIRE(mk_dec_rescale(t.price, ps,
							       MK_ROUND_HALF_EVEN,
							       &x) == MK_OK,
						"rescale");
					MARK[inst] = x.m;
				}
			}
		} else if (kind == 7) {
			/* conf at least the mark: lower edge <= 0 */
			t.conf = MK_DEC(t.price.m * tu_rng_range(&r, 100, 130) /
						100,
					t.price.scale);
		} else if (kind == 8 && seq[inst] > 5) {
			t.seq = seq[inst] - 5;    /* a rebuilt aggregator */
		}
		ck_assert_int_eq(margin_registry_on_mark(reg, inst, &t, collect,
							 &re, &st), MK_OK);
		naive_tick(&nv, inst, &t, &ne);
		ck_assert_uint_eq(st.errors, 0);
		visited += st.visited;
		exact += st.exact;
		full += nv.evaluated;
		nv.evaluated = 0;
		snprintf(what, sizeof(what), "tick %zu", step);
		transitions += re.n;
		compare_events(&re, &ne, what);
		compare_trackers(reg, &nv, what);
		if (step % 50 == 49) {
			compare_states(reg, &nv);
			check_ok(reg);
		}
	}
	check_ok(reg);
	printf("fast path: %zu positions, %zu ticks (%zu aimed at a"
	       " threshold): %zu transitions; evaluated %zu (%zu exactly),"
	       " full scan %zu\n", npos, nticks, aimed, transitions, visited,
	       exact, full);
	/* it must have exercised both ways of deciding, and mostly the
	 * thresholds */
	ck_assert_uint_gt(aimed, 300);
	ck_assert_uint_gt(transitions, 1000);
	ck_assert_uint_gt(exact, 20);
	ck_assert_msg(exact * 4 < visited, "exact %zu of %zu", exact,
		      visited);
	ck_assert_uint_lt(visited, full);
	free(re.v);
	free(ne.v);
	free(nv.p);
	margin_registry_destroy(reg);
}
END_TEST

/* ---- held marks ------------------------------------------------------- */

START_TEST(test_held_never_liquidates)
{
	struct margin_registry *reg = make_registry();
	struct evlist evs = { 0 };
	struct margin_position p;
	struct margin_tick t;
	struct margin_registry_tick_stats st;
	size_t counts[MARGIN_STATE_COUNT];
	int64_t ms = 1000;
	uint64_t seq = 1;

	p = t1();
	t = tick_of("39000", "0", true, seq++, ms);
	ck_assert_int_eq(margin_registry_on_mark(reg, I_LIN, &t, collect, &evs,
						 NULL), MK_OK);
	put_ok(reg, "t1", I_LIN, &p, &evs);
	ck_assert_int_eq(state_of(reg, "t1"), MARGIN_STATE_SAFE);
	ck_assert_uint_eq(evs.n, 0);   /* new -> safe is not an event */

	/* One valid breached mark (below LP 38,152.61): confirming. */
	t = tick_of("38000", "10", true, seq++, ms += 1000);
	margin_registry_on_mark(reg, I_LIN, &t, collect, &evs, &st);
	ck_assert_int_eq(state_of(reg, "t1"), MARGIN_STATE_BREACH_UNCONFIRMED);
	ck_assert_uint_eq(evs.n, 1);
	ck_assert_int_eq(evs.v[0].ev.reason, MARGIN_REASON_CONFIRMING);

	/* A hundred held marks far below, over minutes: held, never
	 * liquidatable, nobody visited, no event. */
	for (int i = 0; i < 100; i++) {
		t = tick_of(i % 2 ? "1000" : "20000", "5", false, seq++,
			    ms += 5000);
		ck_assert_int_eq(margin_registry_on_mark(reg, I_LIN, &t,
							 collect, &evs, &st),
				 MK_OK);
		ck_assert(st.held);
		ck_assert_uint_eq(st.visited, 0);
		ck_assert_int_eq(state_of(reg, "t1"), MARGIN_STATE_HELD);
		margin_registry_state_counts(reg, counts);
		ck_assert_uint_eq(counts[MARGIN_STATE_LIQUIDATABLE], 0);
		ck_assert_uint_eq(counts[MARGIN_STATE_HELD], 1);
	}
	ck_assert_uint_eq(evs.n, 1);
	{
		struct margin_registry_view v;

		ck_assert_int_eq(margin_registry_get(reg, "t1", &v), MK_OK);
		ck_assert_int_eq(v.last_valid, MARGIN_STATE_BREACH_UNCONFIRMED);
		ck_assert_int_eq(v.reason, MARGIN_REASON_MARK_INVALID);
		ck_assert_uint_eq(v.tracker.count, 1);
		margin_registry_view_release(&v);
	}
	/* Also a "valid" mark with a non-positive price is held. */
	t = tick_of("0", "0", true, seq++, ms += 1000);
	margin_registry_on_mark(reg, I_LIN, &t, collect, &evs, &st);
	ck_assert(st.held);
	ck_assert_int_eq(state_of(reg, "t1"), MARGIN_STATE_HELD);

	/* The held stretch lasted far more than T: the run starts again and
	 * needs K = 3 valid marks over T = 3 s from now. */
	t = tick_of("38000", "10", true, seq++, ms += 1000);
	margin_registry_on_mark(reg, I_LIN, &t, collect, &evs, &st);
	ck_assert_int_eq(state_of(reg, "t1"), MARGIN_STATE_BREACH_UNCONFIRMED);
	{
		struct margin_registry_view v;

		ck_assert_int_eq(margin_registry_get(reg, "t1", &v), MK_OK);
		ck_assert_uint_eq(v.tracker.count, 1);
		margin_registry_view_release(&v);
	}
	ck_assert_uint_eq(evs.n, 1);   /* no change of tracked state */
	/* a short blip (< T) neither resets nor counts */
	t = tick_of("1000", "5", false, seq++, ms += 500);
	margin_registry_on_mark(reg, I_LIN, &t, collect, &evs, &st);
	for (int i = 0; i < 2; i++) {
		t = tick_of("38000", "10", true, seq++, ms += 1000);
		margin_registry_on_mark(reg, I_LIN, &t, collect, &evs, &st);
		ck_assert_int_eq(state_of(reg, "t1"),
				 MARGIN_STATE_BREACH_UNCONFIRMED);
	}
	ck_assert_uint_eq(evs.n, 1);   /* 3 marks, 2.5 s */
	t = tick_of("38000", "10", true, seq++, ms += 1000);
	margin_registry_on_mark(reg, I_LIN, &t, collect, &evs, &st);
	ck_assert_int_eq(state_of(reg, "t1"), MARGIN_STATE_LIQUIDATABLE);
	ck_assert_uint_eq(evs.n, 2);
	ck_assert_int_eq(evs.v[1].ev.from, MARGIN_STATE_BREACH_UNCONFIRMED);
	ck_assert_int_eq(evs.v[1].ev.to, MARGIN_STATE_LIQUIDATABLE);
	ck_assert_uint_eq(evs.v[1].ev.breach_marks, 4);

	/* Held again: reported held, last valid liquidatable. */
	t = tick_of("38000", "10", false, seq++, ms += 1000);
	margin_registry_on_mark(reg, I_LIN, &t, collect, &evs, &st);
	ck_assert_int_eq(state_of(reg, "t1"), MARGIN_STATE_HELD);

	/* A wick: valid marks above the favourable edge reset the count. */
	t = tick_of("39000", "0", true, seq++, ms += 1000);
	margin_registry_on_mark(reg, I_LIN, &t, collect, &evs, &st);
	ck_assert_int_eq(state_of(reg, "t1"), MARGIN_STATE_SAFE);
	ck_assert_uint_eq(evs.n, 3);
	check_ok(reg);
	free(evs.v);
	margin_registry_destroy(reg);
}
END_TEST

/* A position first registered while the mark is held is "held" with last
 * valid state "new", and is evaluated by the first usable tick wherever
 * its watch price lies. */
START_TEST(test_new_while_held)
{
	struct margin_registry *reg = make_registry();
	struct margin_position p = t1();
	struct margin_registry_view v;
	struct margin_tick t;
	struct margin_registry_tick_stats st;

	put_ok(reg, "a", I_LIN, &p, NULL);
	ck_assert_int_eq(margin_registry_get(reg, "a", &v), MK_OK);
	ck_assert_int_eq(v.state, MARGIN_STATE_HELD);      /* no mark yet */
	ck_assert_int_eq(v.last_valid, MARGIN_STATE_NEW);
	margin_registry_view_release(&v);
	t = tick_of("39000", "1", false, 1, 1);
	margin_registry_on_mark(reg, I_LIN, &t, NULL, NULL, &st);
	ck_assert_int_eq(state_of(reg, "a"), MARGIN_STATE_HELD);
	/* Far above the watch price: still visited (it is new). */
	t = tick_of("60000", "1", true, 2, 2);
	margin_registry_on_mark(reg, I_LIN, &t, NULL, NULL, &st);
	ck_assert_uint_eq(st.visited, 1);
	ck_assert_int_eq(state_of(reg, "a"), MARGIN_STATE_SAFE);
	/* and not any more once known safe */
	t = tick_of("60001", "1", true, 3, 3);
	margin_registry_on_mark(reg, I_LIN, &t, NULL, NULL, &st);
	ck_assert_uint_eq(st.visited, 0);
	check_ok(reg);
	margin_registry_destroy(reg);
}
END_TEST

/* ---- watch prices ----------------------------------------------------- */

START_TEST(test_watch_price_t1)
{
	struct margin_registry *reg = make_registry();
	struct margin_position p = t1();
	struct margin_registry_view v;
	struct margin_registry_tick_stats st;
	struct margin_tick t;
	struct margin_liq liq;
	struct margin_params prm;
	uint64_t seq = 1;

	put_ok(reg, "t1", I_LIN, &p, NULL);
	ck_assert_int_eq(margin_registry_get(reg, "t1", &v), MK_OK);
	/* MB = (1.02) MM: 2000 + (P - 40000) = 1.02 * 0.004 P
	 * -> P = 38000 / 0.99592 = 38155.675355... -> 38155.68 + 0.01 */
	ck_assert_int_eq(v.watch, 3815569);
	margin_registry_view_release(&v);
	/* The plain liquidation price lies below the watch price. */
	params_of(I_LIN, &prm);
	ck_assert_int_eq(margin_liquidation(&p, &prm, &liq, NULL), MK_OK);
	ck_assert_int_eq(liq.price.m, 3815261);

	/* Adverse price 38155.69 (= watch): visited, safe (just). */
	t = tick_of("38155.70", "0.01", true, seq++, 1);
	margin_registry_on_mark(reg, I_LIN, &t, NULL, NULL, &st);
	ck_assert_uint_eq(st.visited, 1);
	ck_assert_int_eq(state_of(reg, "t1"), MARGIN_STATE_SAFE);
	/* Adverse 38155.70, previous 38155.69: in the range through the
	 * previous tick only, and known safe: not evaluated. */
	t = tick_of("38155.71", "0.01", true, seq++, 2);
	margin_registry_on_mark(reg, I_LIN, &t, NULL, NULL, &st);
	ck_assert_uint_eq(st.visited, 0);
	ck_assert_int_eq(state_of(reg, "t1"), MARGIN_STATE_SAFE);
	/* Above the watch price twice: not visited. */
	t = tick_of("38155.72", "0.01", true, seq++, 3);
	margin_registry_on_mark(reg, I_LIN, &t, NULL, NULL, &st);
	ck_assert_uint_eq(st.visited, 0);
	/* Adverse 38155.67 < root 38155.675...: at risk. */
	t = tick_of("38156", "0.33", true, seq++, 4);
	margin_registry_on_mark(reg, I_LIN, &t, NULL, NULL, &st);
	ck_assert_uint_eq(st.visited, 1);
	ck_assert_int_eq(state_of(reg, "t1"), MARGIN_STATE_AT_RISK);
	/* T15: mark 38,100 +- 150: breached at the mark, not at the
	 * favourable edge. */
	t = tick_of("38100", "150", true, seq++, 5);
	margin_registry_on_mark(reg, I_LIN, &t, NULL, NULL, &st);
	ck_assert_int_eq(state_of(reg, "t1"), MARGIN_STATE_BREACH_UNCONFIRMED);
	{
		ck_assert_int_eq(margin_registry_get(reg, "t1", &v), MK_OK);
		ck_assert_int_eq(v.reason, MARGIN_REASON_MARK_BREACH);
		margin_registry_view_release(&v);
	}
	/* Back to 40,000: safe again (visited from the not-safe set). */
	t = tick_of("40000", "1", true, seq++, 6);
	margin_registry_on_mark(reg, I_LIN, &t, NULL, NULL, &st);
	ck_assert_uint_eq(st.visited, 1);
	ck_assert_int_eq(state_of(reg, "t1"), MARGIN_STATE_SAFE);
	check_ok(reg);
	margin_registry_destroy(reg);
}
END_TEST

/* Shorts, inverse, and positions that can never be liquidated. */
START_TEST(test_watch_price_sides)
{
	struct margin_registry *reg = make_registry();
	struct margin_position p;
	struct margin_registry_view v;
	struct margin_registry_tick_stats st;
	struct margin_tick t;

	/* T6 inverse short: LP 44,222.2; watch is below it (buffered). */
	memset(&p, 0, sizeof(p));
	p.kind = MARGIN_INVERSE;
	p.side = MARGIN_SHORT;
	p.size = D("100");
	p.contract_size = D("100");
	p.entry_price = D("40000");
	p.collateral = D("0.025");
	p.brackets = &INV;
	put_ok(reg, "t6", I_INV, &p, NULL);
	ck_assert_int_eq(margin_registry_get(reg, "t6", &v), MK_OK);
	ck_assert_int_lt(v.watch, 442222);
	ck_assert_int_gt(v.watch, 430000);
	margin_registry_view_release(&v);
	/* T7: a 1x inverse short has no liquidation price: never watched. */
	p.collateral = D("0.25");
	put_ok(reg, "t7", I_INV, &p, NULL);
	ck_assert_int_eq(margin_registry_get(reg, "t7", &v), MK_OK);
	ck_assert_int_eq(v.watch, INT64_MAX);
	margin_registry_view_release(&v);
	/* A fully collateralised linear long: never watched. */
	p = t1();
	p.collateral = D("40000");
	put_ok(reg, "full", I_LIN, &p, NULL);
	ck_assert_int_eq(margin_registry_get(reg, "full", &v), MK_OK);
	ck_assert_int_eq(v.watch, INT64_MIN);
	margin_registry_view_release(&v);

	t = tick_of("42000", "0", true, 1, 1);
	margin_registry_on_mark(reg, I_INV, &t, NULL, NULL, &st);
	ck_assert_int_eq(state_of(reg, "t6"), MARGIN_STATE_SAFE);
	ck_assert_int_eq(state_of(reg, "t7"), MARGIN_STATE_SAFE);
	t = tick_of("44300", "10", true, 2, 2);
	margin_registry_on_mark(reg, I_INV, &t, NULL, NULL, &st);
	ck_assert_uint_eq(st.visited, 1);
	ck_assert_int_eq(state_of(reg, "t6"), MARGIN_STATE_BREACH_UNCONFIRMED);
	ck_assert_int_eq(state_of(reg, "t7"), MARGIN_STATE_SAFE);
	t = tick_of("1", "0", true, 1, 1);
	margin_registry_on_mark(reg, I_LIN, &t, NULL, NULL, &st);
	ck_assert_uint_eq(st.visited, 1);  /* new: evaluated once */
	ck_assert_int_eq(state_of(reg, "full"), MARGIN_STATE_SAFE);
	t = tick_of("0.6", "0.5", true, 2, 2);
	margin_registry_on_mark(reg, I_LIN, &t, NULL, NULL, &st);
	ck_assert_uint_eq(st.visited, 0);
	/* An adverse edge at zero is judged at price 0, where its margin
	 * balance is exactly 0: bankrupt there, as a full scan finds. */
	t = tick_of("0.5", "0.5", true, 3, 3);
	margin_registry_on_mark(reg, I_LIN, &t, NULL, NULL, &st);
	ck_assert_uint_eq(st.visited, 1);
	ck_assert_int_eq(state_of(reg, "full"), MARGIN_STATE_AT_RISK);
	check_ok(reg);
	margin_registry_destroy(reg);
}
END_TEST

/* ---- writes ----------------------------------------------------------- */

START_TEST(test_replace_remove_collateral)
{
	struct margin_registry *reg = make_registry();
	struct evlist evs = { 0 };
	struct margin_position p = t1();
	struct margin_registry_view v;
	struct margin_tick t;
	struct mk_err err;
	bool created;

	t = tick_of("38000", "0", true, 1, 1000);
	margin_registry_on_mark(reg, I_LIN, &t, NULL, NULL, NULL);
	ck_assert_int_eq(margin_registry_put(reg, "x", I_LIN, &p, NULL, collect,
					     &evs, &created, &err), MK_OK);
	ck_assert(created);
	/* evaluated at once against the last tick: new -> confirming */
	ck_assert_uint_eq(evs.n, 1);
	ck_assert_int_eq(evs.v[0].ev.from, MARGIN_STATE_NEW);
	ck_assert_int_eq(evs.v[0].ev.to, MARGIN_STATE_BREACH_UNCONFIRMED);
	ck_assert_uint_eq(evs.v[0].ev.seq, 1);
	/* the same mark is not counted twice after a collateral change */
	ck_assert_int_eq(margin_registry_set_collateral(reg, "x", D("2001"),
							collect, &evs, &err),
			 MK_OK);
	ck_assert_int_eq(margin_registry_get(reg, "x", &v), MK_OK);
	ck_assert_uint_eq(v.tracker.count, 1);
	ck_assert_int_eq(mk_dec_cmp(v.pos.collateral, D("2001")), 0);
	margin_registry_view_release(&v);
	/* a deposit that cures it: safe, event */
	ck_assert_int_eq(margin_registry_set_collateral(reg, "x", D("4000"),
							collect, &evs, &err),
			 MK_OK);
	ck_assert_int_eq(state_of(reg, "x"), MARGIN_STATE_SAFE);
	ck_assert_uint_eq(evs.n, 2);
	ck_assert_int_eq(margin_registry_set_collateral(reg, "x", D("-1"),
							NULL, NULL, &err),
			 MK_EINVAL);
	ck_assert(strncmp(err.msg, "collateral:", 11) == 0);
	ck_assert_int_eq(margin_registry_set_collateral(reg, "nope", D("1"),
							NULL, NULL, &err),
			 MK_ENOTFOUND);

	/* replace by a short on the inverse instrument, then back */
	memset(&p, 0, sizeof(p));
	p.kind = MARGIN_INVERSE;
	p.side = MARGIN_SHORT;
	p.size = D("100");
	p.contract_size = D("100");
	p.entry_price = D("40000");
	p.collateral = D("0.025");
	p.brackets = &INV;
	ck_assert_int_eq(margin_registry_put(reg, "x", I_INV, &p, NULL, collect,
					     &evs, &created, &err), MK_OK);
	ck_assert(!created);
	ck_assert_int_eq(margin_registry_get(reg, "x", &v), MK_OK);
	ck_assert_uint_eq(v.inst, I_INV);
	ck_assert_int_eq(v.pos.kind, MARGIN_INVERSE);
	ck_assert_int_eq(v.pos.side, MARGIN_SHORT);
	ck_assert_int_eq(v.state, MARGIN_STATE_HELD);  /* XBT has no mark */
	ck_assert_int_eq(v.last_valid, MARGIN_STATE_SAFE);  /* kept */
	margin_registry_view_release(&v);
	check_ok(reg);
	p = t1();
	ck_assert_int_eq(margin_registry_put(reg, "x", I_LIN, &p, NULL, collect,
					     &evs, &created, &err), MK_OK);
	ck_assert_int_eq(state_of(reg, "x"), MARGIN_STATE_BREACH_UNCONFIRMED);
	check_ok(reg);

	ck_assert_int_eq(margin_registry_remove(reg, "x"), MK_OK);
	ck_assert_int_eq(margin_registry_remove(reg, "x"), MK_ENOTFOUND);
	ck_assert_int_eq(margin_registry_get(reg, "x", &v), MK_ENOTFOUND);
	ck_assert_uint_eq(margin_registry_count(reg), 0);
	check_ok(reg);
	free(evs.v);
	margin_registry_destroy(reg);
}
END_TEST

START_TEST(test_restore_tracker)
{
	struct margin_registry *reg = make_registry();
	struct evlist evs = { 0 };
	struct margin_position p = t1();
	struct margin_tracker tr;
	struct margin_tick t;
	struct mk_err err;

	/* recovered from an event: liquidatable (the counts are not kept) */
	margin_tracker_init(&tr);
	tr.state = MARGIN_STATE_LIQUIDATABLE;
	tr.last_valid = MARGIN_STATE_LIQUIDATABLE;
	tr.reason = MARGIN_REASON_CONFIRMED;
	tr.count = 3;
	tr.first_ms = 1000;
	tr.last_seq = 999;
	ck_assert_int_eq(margin_registry_put(reg, "r", I_LIN, &p, &tr, collect,
					     &evs, NULL, &err), MK_OK);
	ck_assert_int_eq(state_of(reg, "r"), MARGIN_STATE_HELD);
	/* still breached at the first mark after the restart: a new run */
	t = tick_of("38100", "0", true, 1, 9000);
	margin_registry_on_mark(reg, I_LIN, &t, collect, &evs, NULL);
	ck_assert_int_eq(state_of(reg, "r"), MARGIN_STATE_BREACH_UNCONFIRMED);
	ck_assert_uint_eq(evs.n, 1);
	ck_assert_int_eq(evs.v[0].ev.from, MARGIN_STATE_LIQUIDATABLE);
	ck_assert_uint_eq(evs.v[0].ev.breach_marks, 1);
	evs.n = 0;
	/* restore on a registered position (a restart replaying events) */
	tr.state = MARGIN_STATE_AT_RISK;
	tr.count = 0;
	ck_assert_int_eq(margin_registry_restore(reg, "r", &tr), MK_OK);
	ck_assert_int_eq(state_of(reg, "r"), MARGIN_STATE_AT_RISK);
	check_ok(reg);
	tr.state = MARGIN_STATE_SAFE;
	ck_assert_int_eq(margin_registry_restore(reg, "r", &tr), MK_OK);
	check_ok(reg);
	ck_assert_int_eq(margin_registry_restore(reg, "zz", &tr), MK_ENOTFOUND);
	tr.state = MARGIN_STATE_LIQUIDATABLE;
	tr.count = 3;
	ck_assert_int_eq(margin_registry_restore(reg, "r", &tr), MK_OK);
	ck_assert_int_eq(margin_registry_room(reg, "new", I_LIN, NULL, &err),
			 MK_OK);
	ck_assert_int_eq(margin_registry_room(reg, "new", NINST, NULL, &err),
			 MK_EINVAL);
	/* a restored "held" is not a tracked state: starts new */
	tr.state = MARGIN_STATE_HELD;
	ck_assert_int_eq(margin_registry_put(reg, "h", I_LIN, &p, &tr, collect,
					     &evs, NULL, &err), MK_OK);
	ck_assert_uint_eq(evs.n, 1);
	ck_assert_int_eq(evs.v[0].ev.from, MARGIN_STATE_NEW);
	check_ok(reg);
	free(evs.v);
	margin_registry_destroy(reg);
}
END_TEST

START_TEST(test_tables_and_views)
{
	struct margin_registry *reg = make_registry();
	struct margin_position p = t1();
	struct margin_brackets copy;
	struct margin_registry_view v;
	size_t mem0, mem1;

	/* ETH-USD has no default table */
	ck_assert_ptr_null(margin_registry_brackets(reg, I_CUST));
	ck_assert_ptr_nonnull(margin_registry_brackets(reg, I_LIN));
	mem0 = margin_registry_memory(reg);
	p.brackets = &CUST[0];
	put_ok(reg, "a", I_CUST, &p, NULL);
	copy = CUST[0];     /* equal content, another address: interned */
	p.brackets = &copy;
	put_ok(reg, "b", I_CUST, &p, NULL);
	mem1 = margin_registry_memory(reg);
	/* a copy of the default table is the default table */
	copy = LIN;
	p.brackets = &copy;
	put_ok(reg, "c", I_LIN, &p, NULL);
	ck_assert_int_eq(margin_registry_get(reg, "c", &v), MK_OK);
	ck_assert(!v.custom_brackets);
	ck_assert_ptr_eq(v.pos.brackets, margin_registry_brackets(reg, I_LIN));
	margin_registry_view_release(&v);
	ck_assert_int_eq(margin_registry_get(reg, "b", &v), MK_OK);
	ck_assert(v.custom_brackets);
	check_ok(reg);
	/* the view keeps its table after the positions and the registry */
	ck_assert_int_eq(margin_registry_remove(reg, "a"), MK_OK);
	ck_assert_int_eq(margin_registry_remove(reg, "b"), MK_OK);
	check_ok(reg);
	ck_assert_uint_lt(margin_registry_memory(reg), mem1);
	ck_assert_uint_gt(mem1, mem0);
	margin_registry_destroy(reg);
	ck_assert_uint_eq(v.pos.brackets->n, 1);
	ck_assert_int_eq(mk_dec_cmp(v.pos.brackets->b[0].mmr, D("0.01")), 0);
	margin_registry_view_release(&v);
	margin_registry_view_release(&v);   /* twice is harmless */
}
END_TEST

START_TEST(test_list_and_filters)
{
	struct margin_registry *reg = make_registry();
	struct margin_registry_view out[7];
	struct margin_registry_filter f;
	struct margin_position p = t1();
	struct margin_tick t;
	uint32_t cursor = 0;
	size_t total = 0, n, breached = 0;
	bool end = false;
	char id[32];

	t = tick_of("40000", "0", true, 1, 1);
	margin_registry_on_mark(reg, I_LIN, &t, NULL, NULL, NULL);
	for (int i = 0; i < 50; i++) {
		snprintf(id, sizeof(id), "pos-%02d", i);
		p.collateral = MK_DEC(i % 5 == 0 ? 100 : 2000, 0);
		put_ok(reg, id, I_LIN, &p, NULL);
	}
	p.brackets = &CUST[0];
	put_ok(reg, "eth", I_CUST, &p, NULL);
	ck_assert_int_eq(margin_registry_remove(reg, "pos-07"), MK_OK);
	/* pages of 7, looking at most 5 slots at a time */
	while (!end) {
		n = margin_registry_list(reg, &cursor, NULL, out, 7, 5, &end);
		ck_assert_uint_le(n, 5);
		for (size_t i = 0; i < n; i++) {
			ck_assert_str_ne(out[i].id, "pos-07");
			margin_registry_view_release(&out[i]);
		}
		total += n;
	}
	ck_assert_uint_eq(total, 50);
	/* by instrument and state */
	memset(&f, 0, sizeof(f));
	f.has_inst = true;
	f.inst = I_LIN;
	f.has_state = true;
	f.state = MARGIN_STATE_BREACH_UNCONFIRMED;
	cursor = 0;
	end = false;
	while (!end) {
		n = margin_registry_list(reg, &cursor, &f, out, 7, 1000, &end);
		for (size_t i = 0; i < n; i++) {
			ck_assert_int_eq(out[i].state, f.state);
			margin_registry_view_release(&out[i]);
		}
		breached += n;
	}
	ck_assert_uint_eq(breached, 10);
	f.has_state = true;
	f.state = MARGIN_STATE_HELD;
	f.inst = I_CUST;
	cursor = 0;
	n = margin_registry_list(reg, &cursor, &f, out, 7, 1000, &end);
	ck_assert_uint_eq(n, 1);
	ck_assert_str_eq(out[0].id, "eth");
	margin_registry_view_release(&out[0]);
	margin_registry_destroy(reg);
}
END_TEST

START_TEST(test_bad_input)
{
	struct margin_registry *reg = make_registry();
	struct margin_position p = t1();
	struct margin_registry_instrument in[2];
	struct margin_registry *r2 = NULL;
	struct mk_err err;
	char longid[MARGIN_REGISTRY_MAX_ID + 2];
	size_t idx;

	p.size = D("0");
	ck_assert_int_eq(margin_registry_put(reg, "a", I_LIN, &p, NULL, NULL,
					     NULL, NULL, &err), MK_EINVAL);
	ck_assert(strncmp(err.msg, "size:", 5) == 0);
	p = t1();
	ck_assert_int_eq(margin_registry_put(reg, "", I_LIN, &p, NULL, NULL,
					     NULL, NULL, &err), MK_EINVAL);
	memset(longid, 'x', sizeof(longid) - 1);
	longid[sizeof(longid) - 1] = '\0';
	ck_assert_int_eq(margin_registry_put(reg, longid, I_LIN, &p, NULL,
					     NULL, NULL, NULL, &err),
			 MK_EINVAL);
	longid[MARGIN_REGISTRY_MAX_ID] = '\0';   /* the longest: heap id */
	put_ok(reg, longid, I_LIN, &p, NULL);
	ck_assert_int_eq(state_of(reg, longid), MARGIN_STATE_HELD);
	ck_assert_int_eq(margin_registry_put(reg, "a", NINST, &p, NULL, NULL,
					     NULL, NULL, &err), MK_EINVAL);
	p.brackets = NULL;
	ck_assert_int_eq(margin_registry_put(reg, "a", I_CUST, &p, NULL, NULL,
					     NULL, NULL, &err), MK_EINVAL);
	ck_assert(strncmp(err.msg, "brackets:", 9) == 0);
	ck_assert_int_eq(margin_registry_find(reg, "ETH-USD", &idx), MK_OK);
	ck_assert_uint_eq(idx, I_CUST);
	ck_assert_int_eq(margin_registry_find(reg, "DOGE-USD", &idx),
			 MK_ENOTFOUND);
	ck_assert_int_eq(margin_registry_on_mark(reg, NINST, NULL, NULL, NULL,
						 NULL), MK_EINVAL);
	check_ok(reg);
	margin_registry_destroy(reg);

	memset(in, 0, sizeof(in));
	in[0].symbol = "A-B";
	margin_params_default(&in[0].params);
	in[1] = in[0];
	ck_assert_int_eq(margin_registry_create(in, 2, &r2, &err), MK_EINVAL);
	ck_assert_ptr_null(r2);
	ck_assert_ptr_nonnull(strstr(err.msg, "twice"));
	in[1].symbol = "C-D";
	in[1].params.confirm_marks = 0;
	ck_assert_int_eq(margin_registry_create(in, 2, &r2, &err), MK_EINVAL);
	ck_assert_ptr_nonnull(strstr(err.msg, "confirm_marks"));
	ck_assert_int_eq(margin_registry_create(in, 0, &r2, &err), MK_EINVAL);
}
END_TEST

/* Many ids through the id table: growth, deletion chains, reuse. */
START_TEST(test_id_table_churn)
{
	struct margin_registry *reg = make_registry();
	struct margin_position p = t1();
	struct tu_rng r = TU_RNG_INIT(7);
	static bool live[20000];
	char id[64];

	memset(live, 0, sizeof(live));
	for (int i = 0; i < 60000; i++) {
		size_t k = (size_t)(tu_rng_next(&r) % 20000);

		/* half of the ids are long enough to live on the heap */
		snprintf(id, sizeof(id), k % 2 ? "id-%zu" :
			 "a-rather-long-position-identifier-%08zu", k);
		if (live[k] && tu_rng_next(&r) % 2) {
			REQUIRE(margin_registry_remove(reg, id) == MK_OK,
				"remove %s", id);
			live[k] = false;
		} else {
			p.collateral = MK_DEC((int64_t)(k % 3000) + 100, 0);
			put_ok(reg, id, I_LIN, &p, NULL);
			live[k] = true;
		}
	}
	for (size_t k = 0; k < 20000; k++) {
		struct margin_registry_view v;

		snprintf(id, sizeof(id), k % 2 ? "id-%zu" :
			 "a-rather-long-position-identifier-%08zu", k);
		REQUIRE(margin_registry_get(reg, id, &v) ==
				(live[k] ? MK_OK : MK_ENOTFOUND), "get %s", id);
		if (live[k]) {
			REQUIRE(strcmp(v.id, id) == 0, "id %s", id);
			margin_registry_view_release(&v);
		}
	}
	check_ok(reg);
	margin_registry_destroy(reg);
}
END_TEST

static Suite *
registry_suite(void)
{
	Suite *s = suite_create("registry");
	TCase *tc = tcase_create("core");

	tcase_set_timeout(tc, 600);
	tcase_add_test(tc, test_held_never_liquidates);
	tcase_add_test(tc, test_new_while_held);
	tcase_add_test(tc, test_watch_price_t1);
	tcase_add_test(tc, test_watch_price_sides);
	tcase_add_test(tc, test_replace_remove_collateral);
	tcase_add_test(tc, test_restore_tracker);
	tcase_add_test(tc, test_tables_and_views);
	tcase_add_test(tc, test_list_and_filters);
	tcase_add_test(tc, test_bad_input);
	tcase_add_test(tc, test_id_table_churn);
	tcase_add_test(tc, test_differential);
	tcase_add_test(tc, test_fast_path_exact);
	suite_add_tcase(s, tc);
	return s;
}

TU_MAIN(registry_suite)
