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
 * evaluate every position. Build without sanitizers for real numbers;
 * mallinfo2 is meaningless under ASan.
 */
#include "config.h"

#include <inttypes.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "margin/pindex.h"

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

struct rng {
	uint64_t s;
};

static uint64_t
rng_next(struct rng *r)
{
	uint64_t z = (r->s += UINT64_C(0x9e3779b97f4a7c15));

	z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
	z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
	return z ^ (z >> 31);
}

static int64_t
rng_range(struct rng *r, int64_t lo, int64_t hi)
{
	return lo + (int64_t)(rng_next(r) % (uint64_t)(hi - lo + 1));
}

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
	rc = 0;
out:
	margin_pindex_destroy(lix);
	margin_pindex_destroy(six);
	free(recs);
	free(buf);
	free(marks);
	return rc;
}
