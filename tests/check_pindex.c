/*
 * check_pindex.c - the price-ordered position index (margin/pindex.h)
 * against a naive full scan, plus its edges: duplicate prices, the int64
 * and uint32 extremes, scans that resume across modifications, and the
 * tree invariants after growth and shrinkage.
 */
#include "config.h"

#include <check.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "margin/pindex.h"
#include "tests/testutil.h"

/* Check's ck_assert_* record a "mark point" through a pipe on every
 * success, which is far too slow for a few million checks; these cost
 * nothing while they hold and abort the test with the values when not. */
#define REQ(cond)                                                          \
	do {                                                               \
		if (!(cond))                                               \
			ck_abort_msg("%s:%d: %s", __FILE__, __LINE__,      \
				     #cond);                               \
	} while (0)
#define REQ_CMP(a, op, b)                                                  \
	do {                                                               \
		intmax_t a_ = (intmax_t)(a), b_ = (intmax_t)(b);           \
		if (!(a_ op b_))                                           \
			ck_abort_msg("%s:%d: %s %s %s (%jd vs %jd)",        \
				     __FILE__, __LINE__, #a, #op, #b, a_,  \
				     b_);                                  \
	} while (0)
#define REQ_EQ(a, b) REQ_CMP(a, ==, b)

struct kv {
	int64_t price;
	uint32_t slot;
};

static int
kv_cmp(const void *a, const void *b)
{
	const struct kv *x = a, *y = b;

	if (x->price != y->price)
		return x->price < y->price ? -1 : 1;
	if (x->slot != y->slot)
		return x->slot < y->slot ? -1 : 1;
	return 0;
}

static void
assert_same(const struct kv *got, const struct kv *want, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		REQ_EQ(got[i].price, want[i].price);
		REQ_EQ(got[i].slot, want[i].slot);
	}
}

static void
assert_valid(const struct margin_pindex *ix)
{
	struct mk_err err = { 0 };
	enum mk_status st = margin_pindex_check(ix, &err);

	ck_assert_msg(st == MK_OK, "index invariant: %s", err.msg);
}

/* Collects a range through the visitor. */
struct sink {
	struct kv *v;
	size_t n, cap;
	size_t stop_after;      /* 0: never stop */
};

static int
sink_visit(void *ctx, int64_t price, uint32_t slot)
{
	struct sink *s = ctx;

	REQ(s->n < s->cap);
	s->v[s->n].price = price;
	s->v[s->n].slot = slot;
	s->n++;
	return s->stop_after != 0 && s->n >= s->stop_after;
}

/* The reference: slot -> price (present[] says which slots are in), and
 * the same keys in one sorted array that ranges scan in full. */
struct ref {
	size_t nslots;
	int64_t *price;
	unsigned char *present;
	struct kv *sorted;
	size_t count;
};

static size_t
ref_pos(const struct ref *r, int64_t price, uint32_t slot)
{
	struct kv k = { price, slot };
	size_t lo = 0, hi = r->count;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (kv_cmp(&r->sorted[mid], &k) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static void
ref_add(struct ref *r, int64_t price, uint32_t slot)
{
	size_t at = ref_pos(r, price, slot);

	memmove(&r->sorted[at + 1], &r->sorted[at],
		(r->count - at) * sizeof(r->sorted[0]));
	r->sorted[at].price = price;
	r->sorted[at].slot = slot;
	r->count++;
	r->present[slot] = 1;
	r->price[slot] = price;
}

static void
ref_del(struct ref *r, uint32_t slot)
{
	size_t at = ref_pos(r, r->price[slot], slot);

	REQ(at < r->count && r->sorted[at].slot == slot);
	memmove(&r->sorted[at], &r->sorted[at + 1],
		(r->count - at - 1) * sizeof(r->sorted[0]));
	r->count--;
	r->present[slot] = 0;
}

/* Naive full scan of the reference for lo <= price <= hi. */
static size_t
ref_range(const struct ref *r, int64_t lo, int64_t hi, struct kv *out)
{
	size_t i, n = 0;

	for (i = 0; i < r->count; i++)
		if (r->sorted[i].price >= lo && r->sorted[i].price <= hi)
			out[n++] = r->sorted[i];
	return n;
}

static const int64_t edge_prices[] = {
	INT64_MIN, INT64_MIN + 1, -65000, -1, 0, 1, 6500000, 6500001,
	INT64_MAX - 1, INT64_MAX,
};
#define N_EDGES (sizeof(edge_prices) / sizeof(edge_prices[0]))

/* Prices that collide often (a small pool), touch the extremes, or spread
 * over a realistic band or the whole int64 range. */
static int64_t
gen_price(struct tu_rng *rng)
{
	uint64_t pick = tu_rng_next(rng) % 100u;

	if (pick < 30)
		return 6500000 + tu_rng_range(rng, -8, 8);
	if (pick < 40)
		return edge_prices[tu_rng_next(rng) % N_EDGES];
	if (pick < 80)
		return tu_rng_range(rng, 5000000, 8000000);
	return (int64_t)tu_rng_next(rng);
}

/* A query bound: mostly near existing prices, sometimes an extreme. */
static void
gen_range(struct tu_rng *rng, int64_t *lo, int64_t *hi)
{
	int64_t a = gen_price(rng), b = gen_price(rng);
	uint64_t shape = tu_rng_next(rng) % 10u;

	if (shape == 0)
		b = INT64_MAX;                 /* a long-side scan */
	else if (shape == 1)
		a = INT64_MIN;                 /* a short-side scan */
	else if (shape == 2)
		b = a;                         /* a single price */
	if (shape >= 3 && a > b && tu_rng_next(rng) % 4u != 0) {
		int64_t t = a;                 /* mostly ordered; some empty */
		a = b;
		b = t;
	}
	*lo = a;
	*hi = b;
}

START_TEST(test_differential)
{
	enum { NSLOTS = 6000, NOPS = 150000 };
	struct tu_rng rng = TU_RNG_INIT(0x5eed1dULL);
	struct margin_pindex *ix = NULL;
	struct ref r;
	struct kv *want = calloc(NSLOTS, sizeof(*want));
	struct kv *got = calloc(NSLOTS, sizeof(*got));
	uint32_t *slots = calloc(NSLOTS, sizeof(*slots));
	size_t op, nq = 0, nrows = 0, maxcount = 0;
	unsigned grow = 1;

	r.nslots = NSLOTS;
	r.price = calloc(NSLOTS, sizeof(*r.price));
	r.present = calloc(NSLOTS, 1);
	r.sorted = calloc(NSLOTS, sizeof(*r.sorted));
	r.count = 0;
	REQ(want && got && slots && r.price && r.present && r.sorted);
	REQ_EQ(margin_pindex_create(&ix), MK_OK);

	for (op = 0; op < NOPS; op++) {
		uint64_t kind = tu_rng_next(&rng) % 100u;
		uint32_t s = (uint32_t)(tu_rng_next(&rng) % NSLOTS);
		int64_t p = gen_price(&rng);
		enum mk_status st;

		/* Alternate growing towards full and shrinking towards
		 * empty so splits, borrows, merges and root changes all
		 * happen many times. */
		if (r.count > NSLOTS * 9 / 10)
			grow = 0;
		else if (r.count < 50)
			grow = 1;
		if (kind < 40) {
			/* insert, or a duplicate insert */
			if (!r.present[s] && (grow || kind < 20)) {
				REQ_EQ(margin_pindex_insert(ix, p, s),
				       MK_OK);
				ref_add(&r, p, s);
			} else if (r.present[s]) {
				REQ_EQ(margin_pindex_insert(
				       ix, r.price[s], s), MK_ESTATE);
			}
		} else if (kind < 62) {
			/* remove, or remove something absent */
			if (r.present[s] && (!grow || kind < 48)) {
				REQ_EQ(margin_pindex_remove(
				       ix, r.price[s], s), MK_OK);
				ref_del(&r, s);
			} else if (!r.present[s]) {
				REQ_EQ(margin_pindex_remove(ix, p, s),
				       MK_ENOTFOUND);
			} else if (r.price[s] != p) {
				REQ_EQ(margin_pindex_remove(ix, p, s),
				       MK_ENOTFOUND);
			}
		} else if (kind < 77) {
			/* update (a watch price moved) */
			if (r.present[s]) {
				st = margin_pindex_update(ix, r.price[s], p, s);
				REQ_EQ(st, MK_OK);
				ref_del(&r, s);
				ref_add(&r, p, s);
			} else {
				REQ_EQ(margin_pindex_update(
				       ix, p, p + (p < INT64_MAX), s),
				       MK_ENOTFOUND);
			}
		} else if (kind < 80) {
			REQ_EQ(margin_pindex_contains(ix, p, s),
			       r.present[s] && r.price[s] == p);
			if (r.present[s])
				REQ(margin_pindex_contains(ix, r.price[s], s));
		} else if (kind < 90) {
			/* range through the visitor */
			struct sink sk = { got, 0, NSLOTS, 0 };
			int64_t lo, hi;
			size_t nw, calls;

			gen_range(&rng, &lo, &hi);
			nw = ref_range(&r, lo, hi, want);
			calls = margin_pindex_range(ix, lo, hi, sink_visit, &sk);
			REQ_EQ(calls, nw);
			REQ_EQ(sk.n, nw);
			assert_same(got, want, nw);
			nq++;
			nrows += nw;
		} else {
			/* range through collect, in small pieces */
			struct margin_pindex_scan sc;
			size_t cap = 1 + (size_t)(tu_rng_next(&rng) % 9u);
			size_t nw, n = 0, k, rounds = 0;
			int64_t lo, hi;

			gen_range(&rng, &lo, &hi);
			nw = ref_range(&r, lo, hi, want);
			margin_pindex_scan_init(&sc, lo, hi);
			while (!sc.done) {
				k = margin_pindex_collect(ix, &sc, slots + n,
							  cap);
				REQ(k <= cap);
				REQ(k > 0 || sc.done);
				n += k;
				REQ_CMP(n, <=, nw);
				REQ_CMP(++rounds, <=, nw / cap + 2);
			}
			REQ_EQ(n, nw);
			for (k = 0; k < n; k++)
				REQ_EQ(slots[k], want[k].slot);
			nq++;
			nrows += nw;
		}
		REQ_EQ(margin_pindex_count(ix), r.count);
		if (r.count > maxcount)
			maxcount = r.count;
		if (op % 997 == 0)
			assert_valid(ix);
	}
	assert_valid(ix);
	/* The run must have exercised what it claims to. */
	REQ_CMP(maxcount, >, NSLOTS * 8 / 10);
	REQ_CMP(nq, >, NOPS / 10);
	REQ_CMP(nrows, >, nq);

	margin_pindex_destroy(ix);
	free(want);
	free(got);
	free(slots);
	free(r.price);
	free(r.present);
	free(r.sorted);
}
END_TEST

/* Enough keys for a three-level tree, inserted in random order, then
 * removed down to nothing; scans checked against the sorted keys. */
START_TEST(test_large_grow_shrink)
{
	enum { N = 400000 };
	struct tu_rng rng = TU_RNG_INIT(42);
	struct margin_pindex *ix = NULL;
	struct kv *keys = malloc(N * sizeof(*keys));
	struct kv *got = malloc(N * sizeof(*got));
	struct sink sk = { got, 0, N, 0 };
	size_t i, mem_full;

	REQ(keys && got);
	REQ_EQ(margin_pindex_create(&ix), MK_OK);
	for (i = 0; i < N; i++) {
		keys[i].price = tu_rng_range(&rng, 1000000, 9000000);
		keys[i].slot = (uint32_t)i;
	}
	for (i = 0; i < N; i++)
		REQ_EQ(margin_pindex_insert(ix, keys[i].price,
		       keys[i].slot), MK_OK);
	assert_valid(ix);
	REQ_EQ(margin_pindex_count(ix), N);
	/* The memory target: at most 32 bytes an entry in the index. */
	mem_full = margin_pindex_memory(ix);
	REQ_CMP(mem_full, <=, (size_t)N * 32u);

	qsort(keys, N, sizeof(*keys), kv_cmp);
	REQ_EQ(margin_pindex_range(ix, INT64_MIN, INT64_MAX,
	       sink_visit, &sk), N);
	assert_same(got, keys, N);

	/* Remove in a shuffled order, checking now and then. */
	for (i = N - 1; i > 0; i--) {
		size_t j = (size_t)(tu_rng_next(&rng) % (i + 1));
		struct kv t = keys[i];

		keys[i] = keys[j];
		keys[j] = t;
	}
	for (i = 0; i < N; i++) {
		REQ_EQ(margin_pindex_remove(ix, keys[i].price,
		       keys[i].slot), MK_OK);
		if (i % 50000 == 0) {
			assert_valid(ix);
			/* Merges keep the fill: memory shrinks with count. */
			REQ_CMP(margin_pindex_memory(ix), <=,
				(N - i) * 32u + 4096u);
		}
	}
	assert_valid(ix);
	REQ_EQ(margin_pindex_count(ix), 0);
	REQ_CMP(margin_pindex_memory(ix), <, 256);
	margin_pindex_destroy(ix);
	free(keys);
	free(got);
}
END_TEST

/* Ascending inserts (the worst case for split-in-half fill) and many
 * entries at one price. */
START_TEST(test_sequential_and_same_price)
{
	struct margin_pindex *ix = NULL;
	struct margin_pindex_scan sc;
	uint32_t out[64];
	uint32_t i, expect = 0;
	size_t k;

	REQ_EQ(margin_pindex_create(&ix), MK_OK);
	for (i = 0; i < 100000; i++)
		REQ_EQ(margin_pindex_insert(ix, 777, i), MK_OK);
	assert_valid(ix);
	REQ_CMP(margin_pindex_memory(ix), <=, 100000u * 32u);
	/* All share one price: a scan of exactly that price sees them in
	 * slot order; a scan next to it sees none. */
	margin_pindex_scan_init(&sc, 777, 777);
	while (!sc.done) {
		k = margin_pindex_collect(ix, &sc, out, 64);
		for (size_t j = 0; j < k; j++)
			REQ_EQ(out[j], expect++);
	}
	REQ_EQ(expect, 100000);
	margin_pindex_scan_init(&sc, 778, INT64_MAX);
	REQ_EQ(margin_pindex_collect(ix, &sc, out, 64), 0);
	REQ(sc.done);
	margin_pindex_scan_init(&sc, INT64_MIN, 776);
	REQ_EQ(margin_pindex_collect(ix, &sc, out, 64), 0);
	REQ(sc.done);
	for (i = 0; i < 100000; i += 2)
		REQ_EQ(margin_pindex_remove(ix, 777, i), MK_OK);
	assert_valid(ix);
	REQ_EQ(margin_pindex_count(ix), 50000);
	margin_pindex_destroy(ix);
}
END_TEST

/* The very last key of the key space, the very first, and prices at both
 * int64 ends, through every query form. */
START_TEST(test_extremes)
{
	struct margin_pindex *ix = NULL;
	struct margin_pindex_scan sc;
	uint32_t out[8];
	
	REQ_EQ(margin_pindex_create(&ix), MK_OK);
	/* Empty index. */
	margin_pindex_scan_init(&sc, INT64_MIN, INT64_MAX);
	REQ_EQ(margin_pindex_collect(ix, &sc, out, 8), 0);
	REQ(sc.done);
	REQ_EQ(margin_pindex_remove(ix, 0, 0), MK_ENOTFOUND);
	REQ_EQ(margin_pindex_update(ix, 0, 1, 0), MK_ENOTFOUND);
	REQ(!margin_pindex_contains(ix, 0, 0));
	assert_valid(ix);

	REQ_EQ(margin_pindex_insert(ix, INT64_MAX, UINT32_MAX), MK_OK);
	REQ_EQ(margin_pindex_insert(ix, INT64_MAX, 0), MK_OK);
	REQ_EQ(margin_pindex_insert(ix, INT64_MIN, 0), MK_OK);
	REQ_EQ(margin_pindex_insert(ix, INT64_MIN, UINT32_MAX), MK_OK);
	REQ_EQ(margin_pindex_insert(ix, INT64_MIN, 0), MK_ESTATE);
	REQ_EQ(margin_pindex_count(ix), 4);

	/* One slot at a time to the very end: the scan must stop after
	 * (INT64_MAX, UINT32_MAX) without wrapping around. */
	margin_pindex_scan_init(&sc, INT64_MIN, INT64_MAX);
	REQ_EQ(margin_pindex_collect(ix, &sc, out, 1), 1);
	REQ_EQ(out[0], 0);
	REQ_EQ(margin_pindex_collect(ix, &sc, out, 1), 1);
	REQ_EQ(out[0], UINT32_MAX);
	REQ_EQ(margin_pindex_collect(ix, &sc, out, 1), 1);
	REQ_EQ(out[0], 0);
	REQ(!sc.done);
	REQ_EQ(margin_pindex_collect(ix, &sc, out, 1), 1);
	REQ_EQ(out[0], UINT32_MAX);
	REQ(sc.done);
	REQ_EQ(margin_pindex_collect(ix, &sc, out, 1), 0);

	/* A full buffer that ends exactly at the range's end says done. */
	margin_pindex_scan_init(&sc, INT64_MIN, INT64_MIN);
	REQ_EQ(margin_pindex_collect(ix, &sc, out, 2), 2);
	REQ(sc.done);
	/* lo > hi is empty. */
	margin_pindex_scan_init(&sc, 1, 0);
	REQ(sc.done);
	REQ_EQ(margin_pindex_range(ix, 1, 0, sink_visit, NULL), 0);

	REQ_EQ(margin_pindex_update(ix, INT64_MAX, INT64_MIN, 0),
	       MK_ESTATE);
	REQ_EQ(margin_pindex_update(ix, INT64_MAX, INT64_MAX, 0),
	       MK_OK);
	REQ_EQ(margin_pindex_update(ix, INT64_MAX, 5, 0), MK_OK);
	REQ(margin_pindex_contains(ix, 5, 0));
	REQ(!margin_pindex_contains(ix, INT64_MAX, 0));
	assert_valid(ix);
	margin_pindex_destroy(ix);
	margin_pindex_destroy(NULL);
}
END_TEST

/* The tick pattern: collect a batch, act on it (move or drop the entries),
 * collect the next. Entries added behind the scan are not seen, entries
 * added ahead are, removed ones never come back. */
START_TEST(test_scan_across_modifications)
{
	struct margin_pindex *ix = NULL;
	struct margin_pindex_scan sc;
	uint32_t out[4], seen[200];
	size_t n = 0, k, j;
	uint32_t i;

	REQ_EQ(margin_pindex_create(&ix), MK_OK);
	for (i = 0; i < 100; i++)
		REQ_EQ(margin_pindex_insert(ix, i / 10, i), MK_OK);
	margin_pindex_scan_init(&sc, 2, 7);
	while (!sc.done) {
		k = margin_pindex_collect(ix, &sc, out, 4);
		for (j = 0; j < k; j++) {
			seen[n++] = out[j];
			/* Evaluated: this one's watch price moves away. */
			int64_t was = out[j] == 151 ? 6 : out[j] / 10;

			REQ_EQ(margin_pindex_update(ix, was, 1000,
			       out[j]), MK_OK);
		}
		if (n == 8) {
			/* Behind the scan: not seen. Ahead: seen. */
			REQ_EQ(margin_pindex_insert(ix, 2, 21),
			       MK_OK);
			REQ_EQ(margin_pindex_insert(ix, 6, 151),
			       MK_OK);
			/* Removed ahead of the scan: never returned. */
			REQ_EQ(margin_pindex_remove(ix, 5, 55),
			       MK_OK);
		}
	}
	REQ_EQ(n, 60 - 1 + 1);
	for (j = 0, i = 20; i < 80; i++) {
		if (i == 55)
			continue;
		if (i == 70)
			REQ_EQ(seen[j++], 151);
		REQ_EQ(seen[j++], i);
	}
	REQ_EQ(j, n);
	assert_valid(ix);
	margin_pindex_destroy(ix);
}
END_TEST

START_TEST(test_visitor_stops)
{
	struct margin_pindex *ix = NULL;
	struct kv buf[100];
	struct sink sk = { buf, 0, 100, 5 };
	uint32_t i;

	REQ_EQ(margin_pindex_create(&ix), MK_OK);
	for (i = 0; i < 100; i++)
		REQ_EQ(margin_pindex_insert(ix, -(int64_t)i, i),
		       MK_OK);
	REQ_EQ(margin_pindex_range(ix, -50, 0, sink_visit, &sk), 5);
	REQ_EQ(buf[0].price, -50);
	REQ_EQ(buf[4].price, -46);
	margin_pindex_destroy(ix);
}
END_TEST

static Suite *
pindex_suite(void)
{
	Suite *s = suite_create("pindex");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, test_differential);
	tcase_add_test(tc, test_large_grow_shrink);
	tcase_add_test(tc, test_sequential_and_same_price);
	tcase_add_test(tc, test_extremes);
	tcase_add_test(tc, test_scan_across_modifications);
	tcase_add_test(tc, test_visitor_stops);
	suite_add_tcase(s, tc);
	return s;
}

TU_MAIN(pindex_suite)
