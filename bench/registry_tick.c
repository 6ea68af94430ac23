/*
 * registry_tick.c - what one mark tick costs the position registry: the
 * price-ordered index (margin/pindex.h) against a naive full scan.
 *
 * Usage: bench/registry_tick [POSITIONS] [SEED]     (default 1000000, 1)
 *
 * Builds POSITIONS positions around a 65,000.00 mark (scale 2), half long
 * and half short, leverage 2x-100x, entries within +-3% of the mark, 0.5%
 * maintenance margin. A position's watch price is its liquidation price
 * moved a fifth of the way towards its entry (the "no longer safe" line);
 * positions already past it at the start mark are drawn again, as a live
 * registry would have liquidated them. Then it runs ticks of two sizes
 * (1000 typical 0.05% moves, a walk kept within +-0.5% of the start, and
 * 20 swings of 2% down and up)
 * and for each tick asks for every position whose state can change:
 * longs with watch >= min(previous, current) adverse price (mark - conf),
 * shorts with watch <= max(previous, current) adverse price (mark + conf).
 * The same question is answered by the index and by a scan over all the
 * records; both answers are counted and must agree.
 *
 * The scan only compares one price per record, so the ratio printed
 * understates what the index saves a real registry, whose naive loop would
 * evaluate every position.
 *
 * Then the same for the real registry (margin/registry.h): POSITIONS
 * linear positions with exact decimals (size 0.001-100, entries within
 * +-3%, leverage 2x-100x, one 0.5% bracket), registered, then ticked with
 * margin_registry_on_mark over the same kinds of mark paths, against a
 * naive loop that runs margin_verdict and margin_track on every position
 * for each tick (on the first ticks only: it takes about a second a tick
 * at 10^6). Both must produce the same number of transitions on the ticks
 * they share. It prints the registry's bytes per position (its own
 * accounting and mallinfo2), the cost of a registration, and per tick:
 * the positions evaluated (and how many of them needed margin_verdict
 * rather than the thresholds), the hot set, the events, and the thread
 * CPU time of on_mark (median, p99, mean) against the naive loop's mean.
 * Most ticks of the walk cross no threshold and cost a microsecond; the
 * mean is carried by the ticks where many positions change state.
 *
 * Build without sanitizers for real numbers; mallinfo2 is meaningless
 * under ASan.
 */
#include "config.h"

#include <inttypes.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench/rng.h"
#include "margin/pindex.h"
#include "margin/registry.h"
#include "margin/state.h"

#define MARK0 INT64_C(6500000)  /* 65,000.00 at scale 2 */
#define CONF_BPS 2              /* conf = 0.02% of the mark */
#define MMR_BPS 50              /* maintenance margin rate 0.5% */

/* A stand-in for the caller's compact position record (the slab). */
struct record {
	int64_t watch;
	int64_t size;
	int64_t entry;
	int64_t collateral;
	int64_t liq;
	uint32_t slot;
	uint8_t is_long;
	uint8_t state;
	uint8_t pad[18];
};

static int64_t
now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Liquidation and watch price for an isolated linear position with
 * leverage lev_tenths / 10, in integers: long liq = E (1 - 1/L + mmr),
 * short liq = E (1 + 1/L - mmr); watch = liq + (E - liq) / 5. */
static void
make_position(struct rng *r, struct record *rec, uint32_t slot)
{
	int64_t lev_tenths = rng_range(r, 20, 1000);
	int64_t entry = MARK0 + MARK0 * rng_range(r, -300, 300) / 10000;
	int is_long = (int)(rng_next(r) & 1u);
	/* 1/L in bps: 100000 / lev_tenths. */
	int64_t inv_bps = 100000 / lev_tenths;
	int64_t liq;

	if (is_long)
		liq = entry * (10000 - inv_bps + MMR_BPS) / 10000;
	else
		liq = entry * (10000 + inv_bps - MMR_BPS) / 10000;
	memset(rec, 0, sizeof(*rec));
	rec->entry = entry;
	rec->liq = liq;
	rec->watch = liq + (entry - liq) / 5;
	rec->size = rng_range(r, 1, 100000);
	rec->collateral = entry * rec->size / (lev_tenths / 10 + 1);
	rec->slot = slot;
	rec->is_long = (uint8_t)is_long;
}

struct tick_range {
	int64_t long_lo;        /* longs: watch >= long_lo */
	int64_t short_hi;       /* shorts: watch <= short_hi */
};

static struct tick_range
tick_range(int64_t prev_mark, int64_t mark)
{
	int64_t pc = prev_mark * CONF_BPS / 10000, c = mark * CONF_BPS / 10000;
	int64_t pl = prev_mark - pc, l = mark - c;
	int64_t ps = prev_mark + pc, s = mark + c;
	struct tick_range t = { pl < l ? pl : l, ps > s ? ps : s };

	return t;
}

static size_t
query_index(const struct margin_pindex *lix, const struct margin_pindex *six,
	    struct tick_range t, uint32_t *out, size_t cap)
{
	struct margin_pindex_scan sc;
	size_t n;

	margin_pindex_scan_init(&sc, t.long_lo, INT64_MAX);
	n = margin_pindex_collect(lix, &sc, out, cap);
	margin_pindex_scan_init(&sc, INT64_MIN, t.short_hi);
	n += margin_pindex_collect(six, &sc, out + n, cap - n);
	return n;
}

static size_t
query_scan(const struct record *recs, size_t nrec, struct tick_range t,
	   uint32_t *out)
{
	size_t i, n = 0;

	for (i = 0; i < nrec; i++) {
		const struct record *r = &recs[i];

		if (r->is_long ? r->watch >= t.long_lo
			       : r->watch <= t.short_hi)
			out[n++] = r->slot;
	}
	return n;
}

/* Runs nticks ticks of +-move_bps twice (index, then scan) over the same
 * mark path and prints the per-tick costs. */
static int
run_ticks(const char *label, const struct margin_pindex *lix,
	  const struct margin_pindex *six, const struct record *recs,
	  size_t nrec, uint32_t *buf, int64_t *marks, size_t nticks,
	  int64_t move_bps, int alternate, struct rng *r)
{
	int64_t t0, t_index, t_scan;
	size_t i, k_index = 0, k_scan = 0, k_max = 0;
	volatile size_t sink = 0;

	marks[0] = MARK0;
	for (i = 1; i <= nticks; i++) {
		int64_t step = marks[i - 1] * move_bps / 10000;
		int down;

		if (alternate)
			down = (int)(i & 1u);
		else if (marks[i - 1] > MARK0 + MARK0 / 200)
			down = 1;
		else if (marks[i - 1] < MARK0 - MARK0 / 200)
			down = 0;
		else
			down = (int)(rng_next(r) & 1u);
		marks[i] = marks[i - 1] + (down ? -step : step);
	}

	t0 = now_ns();
	for (i = 1; i <= nticks; i++) {
		size_t k = query_index(lix, six, tick_range(marks[i - 1],
							    marks[i]),
				       buf, nrec);

		k_index += k;
		if (k > k_max)
			k_max = k;
		sink += buf[0];
	}
	t_index = now_ns() - t0;

	t0 = now_ns();
	for (i = 1; i <= nticks; i++) {
		k_scan += query_scan(recs, nrec, tick_range(marks[i - 1],
							     marks[i]), buf);
		sink += buf[0];
	}
	t_scan = now_ns() - t0;
	(void)sink;

	if (k_index != k_scan) {
		fprintf(stderr, "registry_tick: index found %zu, scan %zu\n",
			k_index, k_scan);
		return 1;
	}
	printf("tick %-6s %5zu ticks  k avg %9.1f max %7zu  index %10.0f ns/tick"
	       "  full scan %10.0f ns/tick  ratio %7.1fx\n",
	       label, nticks, (double)k_index / (double)nticks, k_max,
	       (double)t_index / (double)nticks,
	       (double)t_scan / (double)nticks,
	       t_index > 0 ? (double)t_scan / (double)t_index : 0.0);
	return 0;
}

/* ---- the real registry ---- */

#define NAIVE_TICKS 5           /* ticks the naive loop also runs */

struct naive_pos {
	struct margin_position pos;
	struct margin_tracker trk;
	int dead;
};

static size_t naive_transitions;

/* Events of one run; the positions that became liquidatable are closed
 * after each tick, as a liquidation engine would. */
struct events {
	size_t n;
	size_t *closing;
	size_t nclosing;
};

static void
count_event(void *ctx, const struct margin_registry_event *e)
{
	struct events *ev = ctx;

	ev->n++;
	if (e->ev.to >= MARGIN_STATE_LIQUIDATABLE)
		ev->closing[ev->nclosing++] = strtoul(e->id + 4, NULL, 10);
}

static struct margin_tick
make_tick(int64_t mark, uint64_t seq)
{
	struct margin_tick t;

	memset(&t, 0, sizeof(t));
	t.price = MK_DEC(mark, 2);
	t.conf = MK_DEC(mark * CONF_BPS / 10000, 2);
	t.valid_for_liquidation = true;
	t.sources_used = 5;
	t.seq = seq;
	t.time_ms = 1700000000000 + (int64_t)seq * 500;
	return t;
}

/* Every position, every tick: margin_verdict + margin_track. */
static void
naive_tick(struct naive_pos *np, size_t n, const struct margin_params *prm,
	   const struct margin_tick *t)
{
	for (size_t i = 0; i < n; i++) {
		enum margin_state from = (enum margin_state)np[i].trk.state;
		struct margin_decision d;
		unsigned flags = 0;

		if (np[i].dead)
			continue;
		if (margin_verdict(&np[i].pos, prm, t->price, t->conf, &flags,
				   NULL) != MK_OK)
			continue;
		margin_track(&np[i].trk, prm, t, flags, &d, NULL);
		/* as the registry: a new position found safe is no event */
		if (d.changed && !(from == MARGIN_STATE_NEW &&
				   d.state == MARGIN_STATE_SAFE))
			naive_transitions++;
	}
}

static int64_t
cpu_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int
cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

	return (x > y) - (x < y);
}

/* Runs the ticks of marks[1..nticks] on the registry, the first `shared`
 * also on the naive loop; prints the costs (thread CPU time, per tick:
 * median, p99 and mean). */
static int
run_registry(const char *label, struct margin_registry *reg,
	     struct naive_pos *np, size_t n, const struct margin_params *prm,
	     const int64_t *marks, size_t nticks, size_t shared, uint64_t *seq)
{
	size_t visited = 0, exact = 0, hot = 0, shared_events = 0, closed = 0;
	int64_t t0, t_reg = 0, t_naive = 0, *per = NULL;
	struct events events = { 0, NULL, 0 };
	char id[32];

	events.closing = malloc(n * sizeof(*events.closing));
	per = malloc(nticks * sizeof(*per));
	if (events.closing == NULL || per == NULL) {
		free(events.closing);
		free(per);
		return 1;
	}
	naive_transitions = 0;
	for (size_t i = 1; i <= nticks; i++) {
		struct margin_tick t = make_tick(marks[i], ++*seq);
		struct margin_registry_tick_stats st;

		events.nclosing = 0;
		t0 = cpu_ns();
		margin_registry_on_mark(reg, 0, &t, count_event, &events, &st);
		per[i - 1] = cpu_ns() - t0;
		t_reg += per[i - 1];
		visited += st.visited;
		exact += st.exact;
		hot += st.hot;
		if (i <= shared) {
			t0 = cpu_ns();
			naive_tick(np, n, prm, &t);
			t_naive += cpu_ns() - t0;
			shared_events = events.n;
		}
		for (size_t k = 0; k < events.nclosing; k++) {
			snprintf(id, sizeof(id), "pos-%zu", events.closing[k]);
			margin_registry_remove(reg, id);
			np[events.closing[k]].dead = 1;
			closed++;
		}
	}
	free(events.closing);
	if (shared > 0 && naive_transitions != shared_events) {
		fprintf(stderr, "registry_tick: registry made %zu transitions,"
			" naive %zu\n", shared_events, naive_transitions);
		free(per);
		return 1;
	}
	qsort(per, nticks, sizeof(*per), cmp_i64);
	printf("registry %-6s %5zu ticks  per tick: evaluated %.1f (exact"
	       " %.1f), hot set %.1f, events %.1f (closed %zu in all)\n",
	       label, nticks, (double)visited / (double)nticks,
	       (double)exact / (double)nticks, (double)hot / (double)nticks,
	       (double)events.n / (double)nticks, closed);
	printf("registry %-6s on_mark CPU per tick: median %.1f us, p99 %.1f"
	       " us, mean %.1f us", label, (double)per[nticks / 2] / 1e3,
	       (double)per[(nticks * 99) / 100] / 1e3,
	       (double)t_reg / (double)nticks / 1e3);
	if (shared > 0)
		printf("; naive loop (%zu ticks) mean %.1f ms: ratio %.0fx",
		       shared, (double)t_naive / (double)shared / 1e6,
		       (double)t_naive / (double)shared /
			       ((double)t_reg / (double)nticks));
	printf("\n");
	free(per);
	return 0;
}

static int
bench_registry(size_t n, struct rng *r, int64_t *marks)
{
	struct margin_registry_instrument in;
	struct margin_registry *reg = NULL;
	struct margin_brackets br;
	struct naive_pos *np;
	struct margin_tick t0k;
	struct mallinfo2 m0, m1;
	size_t i, kept = 0;
	uint64_t seq = 0;
	int64_t t0, t_build;
	char id[32];
	int rc = 1;

	memset(&br, 0, sizeof(br));
	br.n = 1;
	br.b[0].floor = MK_DEC(0, 0);
	br.b[0].mmr = MK_DEC(MMR_BPS, 4);
	if (margin_brackets_prepare(&br, NULL) != MK_OK)
		return 1;
	memset(&in, 0, sizeof(in));
	in.symbol = "BTC-USD";
	margin_params_default(&in.params);
	in.params.price_scale = 2;
	in.brackets = &br;
	np = calloc(n, sizeof(*np));
	if (np == NULL || margin_registry_create(&in, 1, &reg, NULL) != MK_OK)
		goto out;
	/* positions safe at the start mark, drawn with exact decimals */
	t0k = make_tick(MARK0, ++seq);
	while (kept < n) {
		struct margin_position *p = &np[kept].pos;
		int64_t lev = rng_range(r, 2, 100);
		struct mk_dec notional;
		unsigned flags;

		memset(p, 0, sizeof(*p));
		p->kind = MARGIN_LINEAR;
		p->side = (rng_next(r) & 1u) ? MARGIN_LONG : MARGIN_SHORT;
		p->size = MK_DEC(rng_range(r, 1, 100000), 3);
		p->entry_price = MK_DEC(MARK0 + MARK0 * rng_range(r, -300, 300) /
						 10000, 2);
		p->brackets = &br;
		if (mk_dec_mul(p->size, p->entry_price, 5, MK_ROUND_EXACT,
			       &notional) != MK_OK ||
		    mk_dec_div(notional, mk_dec_from_int(lev), 2,
			       MK_ROUND_HALF_EVEN, &p->collateral) != MK_OK ||
		    margin_verdict(p, &in.params, t0k.price, t0k.conf, &flags,
				   NULL) != MK_OK ||
		    flags != 0)
			continue;
		margin_tracker_init(&np[kept].trk);
		kept++;
	}
	margin_registry_on_mark(reg, 0, &t0k, NULL, NULL, NULL);
	naive_tick(np, n, &in.params, &t0k);
	m0 = mallinfo2();
	t0 = now_ns();
	for (i = 0; i < n; i++) {
		snprintf(id, sizeof(id), "pos-%zu", i);
		if (margin_registry_put(reg, id, 0, &np[i].pos, NULL, NULL,
					NULL, NULL, NULL) != MK_OK) {
			fprintf(stderr, "registry_tick: put %s failed\n", id);
			goto out;
		}
	}
	t_build = now_ns() - t0;
	m1 = mallinfo2();
	printf("registry: %zu positions, put %.0f ns/position; memory %.1f"
	       " B/position (own accounting), %.1f B/position (mallinfo2)\n",
	       n, (double)t_build / (double)n,
	       (double)margin_registry_memory(reg) / (double)n,
	       (double)(m1.uordblks - m0.uordblks) / (double)n);
	/* the same kinds of paths as the index part */
	{
		size_t j;

		marks[0] = MARK0;
		for (j = 1; j <= 1000; j++) {
			int64_t step = marks[j - 1] * 5 / 10000;
			int down;

			if (marks[j - 1] > MARK0 + MARK0 / 200)
				down = 1;
			else if (marks[j - 1] < MARK0 - MARK0 / 200)
				down = 0;
			else
				down = (int)(rng_next(r) & 1u);
			marks[j] = marks[j - 1] + (down ? -step : step);
		}
	}
	if (run_registry("0.05%", reg, np, n, &in.params, marks, 1000,
			 NAIVE_TICKS, &seq))
		goto out;
	/* back to the start, then 2% swings */
	marks[0] = marks[1000];
	for (i = 1; i <= 20; i++)
		marks[i] = (i & 1u) ? MARK0 - MARK0 / 50 : MARK0 + MARK0 / 50;
	if (run_registry("2%", reg, np, n, &in.params, marks, 20, 0, &seq))
		goto out;
	rc = 0;
out:
	margin_registry_destroy(reg);
	free(np);
	return rc;
}

int
main(int argc, char **argv)
{
	size_t n = argc > 1 ? strtoul(argv[1], NULL, 10) : 1000000;
	struct rng r = { argc > 2 ? strtoull(argv[2], NULL, 10) : 1 };
	struct margin_pindex *lix = NULL, *six = NULL;
	struct record *recs;
	uint32_t *buf;
	int64_t *marks;
	size_t i, nlong = 0, mem;
	struct mallinfo2 m0, m1;
	int64_t t0, t_build;
	/* Drawn again: positions that are not safe at the starting mark
	 * (a live registry would have liquidated them). */
	struct tick_range start = tick_range(MARK0, MARK0);
	int rc = 1;

	if (n == 0 || n > UINT32_MAX) {
		fprintf(stderr, "usage: registry_tick [POSITIONS] [SEED]\n");
		return 2;
	}
	recs = malloc(n * sizeof(*recs));
	buf = malloc(n * sizeof(*buf));
	marks = malloc(1001 * sizeof(*marks));
	if (recs == NULL || buf == NULL || marks == NULL) {
		fprintf(stderr, "registry_tick: out of memory\n");
		goto out;
	}
	for (i = 0; i < n; i++) {
		do
			make_position(&r, &recs[i], (uint32_t)i);
		while (recs[i].is_long ? recs[i].watch >= start.long_lo
				       : recs[i].watch <= start.short_hi);
		nlong += recs[i].is_long;
	}

	m0 = mallinfo2();
	t0 = now_ns();
	if (margin_pindex_create(&lix) != MK_OK ||
	    margin_pindex_create(&six) != MK_OK)
		goto out;
	for (i = 0; i < n; i++)
		if (margin_pindex_insert(recs[i].is_long ? lix : six,
					 recs[i].watch, recs[i].slot) != MK_OK)
			goto out;
	t_build = now_ns() - t0;
	m1 = mallinfo2();
	mem = margin_pindex_memory(lix) + margin_pindex_memory(six);

	printf("registry_tick: %zu positions (%zu long, %zu short), mark"
	       " 65000.00, conf %d bps\n", n, nlong, n - nlong, CONF_BPS);
	printf("index build %.0f ns/insert; index memory %.1f B/position (own"
	       " accounting), %.1f B/position (mallinfo2); stand-in record"
	       " %zu B/position\n",
	       (double)t_build / (double)n, (double)mem / (double)n,
	       (double)(m1.uordblks - m0.uordblks) / (double)n,
	       sizeof(struct record));
	if (run_ticks("0.05%", lix, six, recs, n, buf, marks, 1000, 5, 0, &r) ||
	    run_ticks("2%", lix, six, recs, n, buf, marks, 20, 200, 1, &r))
		goto out;
	margin_pindex_destroy(lix);
	margin_pindex_destroy(six);
	lix = six = NULL;
	if (bench_registry(n, &r, marks))
		goto out;
	rc = 0;
out:
	margin_pindex_destroy(lix);
	margin_pindex_destroy(six);
	free(recs);
	free(buf);
	free(marks);
	return rc;
}
