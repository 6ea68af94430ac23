/*
 * check_agg_snapshot.c - publication of immutable snapshots: one writer
 * thread updating a book while reader threads acquire, read and release
 * snapshots (bounded iterations; run under ASan/UBSan), marks that outlive
 * their snapshot, and snapshots that outlive their book.
 */
#include "config.h"

#include <check.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>

#include "aggregator/book.h"
#include "tests/testutil.h"

#define WRITER_UPDATES 3000
#define READER_MAX_ITERS 2000000
#define NREADERS 2

static const char *const symbols[] = { "USDT-USD", "BTC-USD", "ETH-USD" };

struct fixture {
	struct agg_leg_spec legs[3][3];
	struct agg_instrument_spec specs[3];
};

static void
fixture_init(struct fixture *f)
{
	size_t i, j;

	memset(f, 0, sizeof(*f));
	for (i = 0; i < 3; i++) {
		for (j = 0; j < 3; j++) {
			struct agg_leg_spec *l = &f->legs[i][j];

			snprintf(l->source, sizeof(l->source), "venue%zu", j);
			snprintf(l->market, sizeof(l->market), "%s", symbols[i]);
			l->weight = 10000;
			l->convert_via = (i == 1 && j == 2) ? 0 : -1;
		}
		snprintf(f->specs[i].symbol, sizeof(f->specs[i].symbol), "%s",
			 symbols[i]);
		agg_params_default(&f->specs[i].params);
		f->specs[i].params.min_sources = 2;
		f->specs[i].nlegs = 3;
		f->specs[i].legs = f->legs[i];
	}
}

struct shared {
	struct agg_book *book;
	atomic_bool done;
};

struct reader_result {
	uint64_t acquired;
	uint64_t errors;
};

struct reader_arg {
	struct shared *sh;
	struct reader_result res;
};

/* Reads every field of a mark, checks what must hold in any snapshot. */
static uint64_t
check_mark(const struct agg_mark *m, size_t i)
{
	uint64_t errors = 0, sum = 0;
	size_t j;

	errors += strcmp(m->symbol, symbols[i]) != 0;
	errors += m->nlegs != 3 || m->sources_total != 3;
	errors += m->sources_used > 3;
	errors += m->valid_for_liquidation !=
		  (m->status == AGG_MARK_OK || m->status == AGG_MARK_DEGRADED);
	errors += m->status != AGG_MARK_OK &&
		  (m->reasons & AGG_REASON(m->status)) == 0;
	for (j = 0; j < m->nlegs; j++) {
		const struct agg_leg_view *l = &m->legs[j];

		sum += (uint64_t)l->price.m + (uint64_t)l->conf.m +
		       (uint64_t)l->age_ms + l->weight;
		errors += l->state != agg_exclusion_state(l->reason);
		errors += strlen(l->source) == 0;
	}
	(void)sum;
	return errors;
}

static void *
reader(void *p)
{
	struct reader_arg *a = p;
	uint64_t last_version = 0, last_seq[3] = { 0, 0, 0 }, it;

	for (it = 0; it < READER_MAX_ITERS &&
		     !atomic_load_explicit(&a->sh->done, memory_order_acquire);
	     it++) {
		const struct agg_snapshot *s = agg_book_acquire(a->sh->book);
		const struct agg_mark *keep;
		size_t i;

		if (s == NULL) {
			a->res.errors++;
			continue;
		}
		a->res.acquired++;
		a->res.errors += s->version < last_version;
		a->res.errors += s->count != 3;
		last_version = s->version;
		for (i = 0; i < s->count && i < 3; i++) {
			a->res.errors += check_mark(s->marks[i], i);
			a->res.errors += s->marks[i]->seq < last_seq[i];
			last_seq[i] = s->marks[i]->seq;
		}
		/* a mark kept beyond its snapshot stays readable */
		keep = agg_mark_acquire(agg_snapshot_find(s, "BTC-USD"));
		agg_snapshot_release(s);
		a->res.errors += keep == NULL ? 1 : check_mark(keep, 1);
		agg_mark_release(keep);
	}
	return NULL;
}

static struct agg_quote
quote_ba(int64_t bid, int64_t ask, int scale, int64_t ts)
{
	struct agg_quote q;

	memset(&q, 0, sizeof(q));
	q.bid = MK_DEC(bid, scale);
	q.ask = MK_DEC(ask, scale);
	q.has_bid = q.has_ask = true;
	q.exchange_ts_ms = ts;
	return q;
}

START_TEST(test_concurrent_publish_acquire)
{
	static const int64_t mid[3] = { 10000, 6570000, 350000 };
	struct tu_rng r = TU_RNG_INIT(0x5eed0101);
	struct fixture f;
	struct shared sh;
	struct reader_arg args[NREADERS];
	pthread_t th[NREADERS];
	int64_t now = 1700000000000;
	size_t k;
	int n;

	fixture_init(&f);
	ck_assert_int_eq(agg_book_create(f.specs, 3, &sh.book, NULL), MK_OK);
	atomic_init(&sh.done, false);
	memset(args, 0, sizeof(args));
	for (k = 0; k < NREADERS; k++) {
		args[k].sh = &sh;
		ck_assert_int_eq(pthread_create(&th[k], NULL, reader, &args[k]),
				 0);
	}
	for (n = 0; n < WRITER_UPDATES; n++) {
		size_t inst = (size_t)tu_rng_range(&r, 0, 2);
		size_t leg = (size_t)tu_rng_range(&r, 0, 2), id;
		int64_t m = mid[inst] + tu_rng_range(&r, -50, 50);
		struct agg_quote q;

		now += tu_rng_range(&r, 1, 400);
		if (inst == 1 && leg == 2)
			m = mid[1];     /* the USDT-quoted leg */
		q = quote_ba(m - 1, m + 1, inst == 0 ? 4 : 2, now);
		ck_assert_int_eq(agg_book_leg_id(sh.book, inst, leg, &id),
				 MK_OK);
		if (n % 97 == 0)
			ck_assert_int_eq(agg_book_error(sh.book, id,
							AGG_FETCH_BAD_DATA,
							"bad body", now), MK_OK);
		else
			ck_assert_int_eq(agg_book_quote(sh.book, id, &q, now),
					 MK_OK);
		if (n % 50 == 0)
			ck_assert_int_eq(agg_book_tick(sh.book, now), MK_OK);
	}
	atomic_store_explicit(&sh.done, true, memory_order_release);
	for (k = 0; k < NREADERS; k++) {
		ck_assert_int_eq(pthread_join(th[k], NULL), 0);
		ck_assert_uint_eq(args[k].res.errors, 0);
		ck_assert_uint_gt(args[k].res.acquired, 0);
	}
	/* the writer really produced valid marks during the run */
	ck_assert(agg_book_mark(sh.book, 1)->seq > 100);
	agg_book_destroy(sh.book);
}
END_TEST

START_TEST(test_snapshot_outlives_book)
{
	struct fixture f;
	struct agg_book *book = NULL;
	const struct agg_snapshot *s1, *s2;
	struct agg_quote q = quote_ba(9999, 10001, 4, 1000);
	size_t id;

	fixture_init(&f);
	ck_assert_int_eq(agg_book_create(f.specs, 3, &book, NULL), MK_OK);
	s1 = agg_book_acquire(book);
	ck_assert_ptr_nonnull(s1);
	ck_assert_int_eq(agg_book_leg_id(book, 0, 0, &id), MK_OK);
	ck_assert_int_eq(agg_book_quote(book, id, &q, 1000), MK_OK);
	s2 = agg_book_acquire(book);
	ck_assert_ptr_ne(s1, s2);
	ck_assert_uint_gt(s2->version, s1->version);
	/* untouched instruments share their mark between snapshots */
	ck_assert_ptr_eq(s1->marks[2], s2->marks[2]);
	ck_assert_ptr_ne(s1->marks[0], s2->marks[0]);
	agg_book_destroy(book);
	/* both snapshots are still readable (ASan would catch a free) */
	ck_assert_str_eq(s1->marks[0]->symbol, "USDT-USD");
	ck_assert_int_eq(s2->marks[0]->legs[0].recv_ts_ms, 1000);
	ck_assert_int_eq(s1->marks[0]->legs[0].recv_ts_ms, 0);
	ck_assert_ptr_eq(agg_snapshot_find(s2, "ETH-USD"), s2->marks[2]);
	ck_assert_ptr_null(agg_snapshot_find(s2, "XRP-USD"));
	agg_snapshot_release(s1);
	agg_snapshot_release(s2);
	agg_snapshot_release(NULL);
	agg_mark_release(NULL);
	agg_book_destroy(NULL);
}
END_TEST

START_TEST(test_pub_direct)
{
	struct agg_pub pub;
	const struct agg_snapshot *got;
	struct agg_snapshot *s;
	struct agg_mark *m;

	ck_assert_int_eq(agg_pub_init(&pub), MK_OK);
	ck_assert_ptr_null(agg_pub_acquire(&pub));
	s = agg_snapshot_create(1);
	m = agg_mark_create(0);
	ck_assert_ptr_nonnull(s);
	ck_assert_ptr_nonnull(m);
	snprintf(m->symbol, sizeof(m->symbol), "X");
	s->marks[0] = m;                       /* the slot owns m */
	s->version = 7;
	agg_pub_publish(&pub, s);              /* pub owns s */
	got = agg_pub_acquire(&pub);
	ck_assert_ptr_eq(got, s);
	agg_pub_publish(&pub, agg_snapshot_create(0));
	/* the replaced snapshot lives on while we hold it */
	ck_assert_uint_eq(got->version, 7);
	ck_assert_str_eq(got->marks[0]->symbol, "X");
	agg_snapshot_release(got);
	agg_pub_clear(&pub);
}
END_TEST

static Suite *
snapshot_suite(void)
{
	Suite *s = suite_create("agg_snapshot");
	TCase *tc = tcase_create("core");

	tcase_set_timeout(tc, 300);
	tcase_add_test(tc, test_pub_direct);
	tcase_add_test(tc, test_snapshot_outlives_book);
	tcase_add_test(tc, test_concurrent_publish_acquire);
	suite_add_tcase(s, tc);
	return s;
}

TU_MAIN(snapshot_suite)
