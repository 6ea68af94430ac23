/*
 * feed_to_mark.c - the CPU one feed update costs the feeds thread, from a
 * parsed quote to the published bytes of the new mark: the quote applied
 * to the aggregator book (agg_book_quotes: record, re-evaluate the
 * instrument and those converting through it, publish a snapshot), the
 * snapshot taken (agg_book_acquire) and the changed marks rendered once
 * into the shared bytes GET /v1/marks/{symbol} serves
 * (httpd_render_mark_buf), as daemon/feeds_thread.c's on_result and
 * publish do. Separately: a venue adapter parsing a real response body
 * (tests/data/payloads), which the poller does first.
 *
 * Usage: bench/feed_to_mark [CONFIG] [UPDATES]
 *        (default: conf/markd.json of the source tree, 20000)
 *
 * The instruments and legs are the configuration's (BTC-USD has ten legs
 * and conversions through USDT-USD). Quotes go round-robin over the legs
 * of every instrument, each a small random step of a bid/ask pair, at
 * 100 ms intervals of a simulated clock, so every mark stays valid.
 *
 * Times are thread CPU time (CLOCK_THREAD_CPUTIME_ID), per update: the
 * median and p99 of single updates (the cost of reading the clock, itself
 * measured, is subtracted), and the mean over the whole run. Side by side,
 * as a reference for what the rendering costs: jansson's json_dumps of
 * the very same document (parsed once from our bytes), and for the parse:
 * json_loads of the same body.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "aggregator/book.h"
#include "aggregator/snapshot.h"
#include "bench/rng.h"
#include "daemon/cfg.h"
#include "feeds/adapter.h"
#include "httpd/render_marks.h"
#include "httpd/response.h"

#ifndef BENCH_SRCDIR
#define BENCH_SRCDIR "."
#endif

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

/* Per-iteration samples: median, p99 (both less the clock's own cost)
 * and mean. */
struct stat3 {
	double median_us, p99_us, mean_us;
};

static struct stat3
summarise(int64_t *v, size_t n, int64_t clock_cost)
{
	struct stat3 s;
	double sum = 0;

	for (size_t i = 0; i < n; i++)
		sum += (double)v[i];
	qsort(v, n, sizeof(*v), cmp_i64);
	s.median_us = (double)(v[n / 2] - clock_cost) / 1e3;
	s.p99_us = (double)(v[(n * 99) / 100] - clock_cost) / 1e3;
	s.mean_us = (sum / (double)n - (double)clock_cost) / 1e3;
	return s;
}

static void
print3(const char *what, struct stat3 s)
{
	printf("  %-46s median %7.2f us  p99 %7.2f us  mean %7.2f us\n", what,
	       s.median_us, s.p99_us, s.mean_us);
}

/* The median cost of reading the clock twice back to back. */
static int64_t
clock_cost(void)
{
	int64_t v[2001];

	for (size_t i = 0; i < 2001; i++) {
		int64_t t0 = cpu_ns();

		v[i] = cpu_ns() - t0;
	}
	qsort(v, 2001, sizeof(*v), cmp_i64);
	return v[1000];
}

/* Every (source, market) of the configuration, with its leg ids. */
struct market {
	const char *source;
	const char *market;
	size_t inst;                 /* the first instrument it feeds */
	size_t ids[16];
	size_t nids;
	int64_t mid;                 /* mantissa at scale 6 */
};

/* The instruments' rendered bytes, as the feeds thread keeps them. */
struct pub {
	const struct agg_mark **mark;
	struct httpd_buf **buf;
	size_t n;
	size_t rendered;
};

/* The feeds thread's publish(): take the snapshot, render what changed. */
static int
publish(struct agg_book *book, struct pub *p)
{
	const struct agg_snapshot *snap = agg_book_acquire(book);

	for (size_t i = 0; i < snap->count && i < p->n; i++) {
		const struct agg_mark *m = snap->marks[i];
		struct httpd_buf *b;

		if (m == p->mark[i] && p->buf[i] != NULL)
			continue;
		b = httpd_render_mark_buf(m, m->seq);
		if (b == NULL) {
			agg_snapshot_release(snap);
			return -1;
		}
		httpd_buf_unref(p->buf[i]);
		p->buf[i] = b;
		agg_mark_release(p->mark[i]);
		p->mark[i] = agg_mark_acquire(m);
		p->rendered++;
	}
	agg_snapshot_release(snap);
	return 0;
}

static struct agg_quote
quote_of(int64_t mid, int64_t ms)
{
	struct agg_quote q;

	memset(&q, 0, sizeof(q));
	q.bid = MK_DEC(mid - 1, 6);
	q.ask = MK_DEC(mid + 1, 6);
	q.has_bid = q.has_ask = true;
	q.exchange_ts_ms = ms - 40;
	return q;
}

/* Starting price of a market, at scale 6, from its instrument's symbol
 * (stablecoins at 1, ETH at 3,000, anything else at 65,000). */
static int64_t
start_mid(const char *symbol)
{
	if (strncmp(symbol, "USD", 3) == 0)
		return INT64_C(1000000);
	if (strncmp(symbol, "ETH", 3) == 0)
		return INT64_C(3000000000);
	return INT64_C(65000000000);
}

static int
bench_updates(const struct cfg *cfg, size_t nupd, int64_t cc)
{
	struct agg_book *book = NULL;
	struct mk_err err;
	struct market *mk = NULL;
	size_t nmk = 0, nlegs = 0;
	struct pub p = { NULL, NULL, cfg->ninstruments, 0 };
	int64_t *t_all = NULL, *t_book = NULL, *t_pub = NULL, *t_dump = NULL;
	int64_t now = 1700000000000, sum_all = 0, t0, t1, t2;
	struct rng r = { 7 };
	size_t doc_len = 0;
	json_t *doc = NULL;
	int rc = 1;

	if (agg_book_create(cfg->specs, cfg->ninstruments, &book, &err) !=
	    MK_OK) {
		fprintf(stderr, "feed_to_mark: book: %s\n", err.msg);
		return 1;
	}
	for (size_t i = 0; i < cfg->ninstruments; i++)
		nlegs += cfg->specs[i].nlegs;
	mk = calloc(nlegs, sizeof(*mk));
	p.mark = calloc(p.n, sizeof(*p.mark));
	p.buf = calloc(p.n, sizeof(*p.buf));
	t_all = malloc(nupd * sizeof(*t_all));
	t_book = malloc(nupd * sizeof(*t_book));
	t_pub = malloc(nupd * sizeof(*t_pub));
	t_dump = malloc(nupd * sizeof(*t_dump));
	if (mk == NULL || p.mark == NULL || p.buf == NULL || t_all == NULL ||
	    t_book == NULL || t_pub == NULL || t_dump == NULL)
		goto out;
	/* one entry per distinct (source, market), as the poller's jobs */
	for (size_t i = 0; i < cfg->ninstruments; i++) {
		for (size_t l = 0; l < cfg->specs[i].nlegs; l++) {
			const struct agg_leg_spec *lg = &cfg->specs[i].legs[l];
			size_t k;

			for (k = 0; k < nmk; k++)
				if (strcmp(mk[k].source, lg->source) == 0 &&
				    strcmp(mk[k].market, lg->market) == 0)
					break;
			if (k < nmk)
				continue;
			mk[nmk].source = lg->source;
			mk[nmk].market = lg->market;
			mk[nmk].inst = i;
			mk[nmk].nids = agg_book_find_legs(book, lg->source,
							  lg->market,
							  mk[nmk].ids, 16);
			mk[nmk].mid = start_mid(cfg->specs[i].symbol);
			nmk++;
		}
	}
	/* warm up: every market quoted twice, so that every mark is valid */
	for (int round = 0; round < 2; round++) {
		for (size_t k = 0; k < nmk; k++) {
			struct agg_quote q[16];

			now += 10;
			for (size_t j = 0; j < mk[k].nids; j++)
				q[j] = quote_of(mk[k].mid, now);
			if (agg_book_quotes(book, mk[k].ids, q, mk[k].nids,
					    now) != MK_OK ||
			    publish(book, &p) != 0)
				goto out;
		}
	}
	for (size_t i = 0; i < p.n; i++) {
		if (p.mark[i] == NULL || !p.mark[i]->valid_for_liquidation) {
			fprintf(stderr, "feed_to_mark: %s has no valid mark"
				" after the warm-up (status %s)\n",
				cfg->specs[i].symbol,
				p.mark[i] != NULL ? agg_mark_status_name(
							    p.mark[i]->status)
						  : "none");
			goto out;
		}
	}
	/* the reference document: our bytes of instrument 0, as jansson
	 * holds them */
	doc = json_loadb(httpd_buf_data(p.buf[0]), httpd_buf_len(p.buf[0]), 0,
			 NULL);
	doc_len = httpd_buf_len(p.buf[0]);
	if (doc == NULL)
		goto out;

	p.rendered = 0;
	for (size_t u = 0; u < nupd; u++) {
		struct market *m = &mk[u % nmk];
		struct agg_quote q[16];
		int64_t step = (int64_t)(rng_next(&r) % 5) - 2;
		char *text;

		now += 100;
		if (m->mid + step > 0)
			m->mid += step * (m->mid / 100000 + 1);
		for (size_t j = 0; j < m->nids; j++)
			q[j] = quote_of(m->mid, now);
		t0 = cpu_ns();
		if (agg_book_quotes(book, m->ids, q, m->nids, now) != MK_OK)
			goto out;
		t1 = cpu_ns();
		if (publish(book, &p) != 0)
			goto out;
		t2 = cpu_ns();
		t_book[u] = t1 - t0;
		t_pub[u] = t2 - t1;
		t_all[u] = t2 - t0;
		sum_all += t2 - t0;
		/* the reference: jansson renders the same document */
		t0 = cpu_ns();
		text = json_dumps(doc, JSON_COMPACT | JSON_PRESERVE_ORDER);
		t_dump[u] = cpu_ns() - t0;
		free(text);
	}
	printf("feed update -> published mark bytes: %zu instruments, %zu"
	       " markets, %zu updates (%.2f marks rendered per update),"
	       " clock read %lld ns (subtracted)\n", cfg->ninstruments, nmk,
	       nupd, (double)p.rendered / (double)nupd, (long long)cc);
	{
		struct stat3 all = summarise(t_all, nupd, cc);
		struct stat3 bk = summarise(t_book, nupd, cc);
		struct stat3 pb = summarise(t_pub, nupd, cc);
		struct stat3 dp = summarise(t_dump, nupd, cc);

		print3("quote -> book -> snapshot -> rendered bytes", all);
		print3("  of which agg_book_quotes (mark + publish)", bk);
		print3("  of which acquire + render changed marks", pb);
		printf("  rendered document of %s: %zu bytes; jansson"
		       " json_dumps of the same document:\n",
		       cfg->specs[0].symbol, doc_len);
		print3("  json_dumps (reference)", dp);
		printf("  render+publish / json_dumps (medians): %.2f\n",
		       pb.median_us / dp.median_us);
	}
	(void)sum_all;
	rc = 0;
out:
	json_decref(doc);
	for (size_t i = 0; p.mark != NULL && i < p.n; i++) {
		agg_mark_release(p.mark[i]);
		httpd_buf_unref(p.buf[i]);
	}
	free(p.mark);
	free(p.buf);
	free(mk);
	free(t_all);
	free(t_book);
	free(t_pub);
	free(t_dump);
	agg_book_destroy(book);
	return rc;
}

/* A real response body and the market it answers. */
struct payload {
	const char *adapter;
	const char *market;
	const char *file;
};

static const struct payload PAYLOADS[] = {
	{ "binance", "BTCUSDT",
	  "binance/api_v3_ticker_bookTicker_BTCUSDT.nautilus.json" },
	{ "coinbase", "BTC-USD",
	  "coinbase/advanced_trade_BTC-USD_ticker.nautilus.json" },
	{ "kraken", "XBTUSDT", "kraken/0_public_Ticker_XBTUSDT.nautilus.json" },
};

static char *
slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	char *buf = NULL;
	long n;

	if (f == NULL)
		return NULL;
	if (fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) >= 0 &&
	    fseek(f, 0, SEEK_SET) == 0 && (buf = malloc((size_t)n + 1)) != NULL) {
		if (fread(buf, 1, (size_t)n, f) != (size_t)n) {
			free(buf);
			buf = NULL;
		} else {
			buf[n] = '\0';
			*len = (size_t)n;
		}
	}
	fclose(f);
	return buf;
}

static int
bench_parse(size_t iters, int64_t cc)
{
	int64_t *t_parse = malloc(iters * sizeof(*t_parse));
	int64_t *t_json = malloc(iters * sizeof(*t_json));
	int rc = 1;

	if (t_parse == NULL || t_json == NULL)
		goto out;
	printf("adapter parse of a real body (feed_adapter_parse) against"
	       " jansson's json_loads of the same bytes:\n");
	for (size_t i = 0; i < sizeof(PAYLOADS) / sizeof(PAYLOADS[0]); i++) {
		const struct payload *pl = &PAYLOADS[i];
		const struct feed_adapter *a = feed_adapter_find(pl->adapter);
		char path[1024], what[96];
		struct feed_quote q;
		struct mk_err err;
		size_t len = 0, n;
		char *body;
		struct stat3 sp, sj;

		snprintf(path, sizeof(path), "%s/tests/data/payloads/%s",
			 BENCH_SRCDIR, pl->file);
		body = slurp(path, &len);
		if (a == NULL || body == NULL) {
			fprintf(stderr, "feed_to_mark: cannot read %s\n", path);
			free(body);
			goto out;
		}
		for (size_t k = 0; k < iters; k++) {
			int64_t t0 = cpu_ns();
			enum mk_status st = feed_adapter_parse(
				a, NULL, pl->market, body, len, &q, 1, &n,
				&err);
			json_t *j;

			t_parse[k] = cpu_ns() - t0;
			if (st != MK_OK || n != 1) {
				fprintf(stderr, "feed_to_mark: %s: %s\n",
					pl->file, err.msg);
				free(body);
				goto out;
			}
			t0 = cpu_ns();
			j = json_loadb(body, len, 0, NULL);
			t_json[k] = cpu_ns() - t0;
			json_decref(j);
		}
		sp = summarise(t_parse, iters, cc);
		sj = summarise(t_json, iters, cc);
		snprintf(what, sizeof(what), "%s %s (%zu bytes)", pl->adapter,
			 pl->market, len);
		printf("  %s\n", what);
		print3("  feed_adapter_parse", sp);
		print3("  json_loads (reference)", sj);
		printf("  parse / json_loads (medians): %.2f\n",
		       sp.median_us / sj.median_us);
		free(body);
	}
	rc = 0;
out:
	free(t_parse);
	free(t_json);
	return rc;
}

int
main(int argc, char **argv)
{
	char defpath[1024];
	const char *path = argc > 1 ? argv[1] : NULL;
	size_t nupd = argc > 2 ? strtoul(argv[2], NULL, 10) : 20000;
	struct cfg_errors errs;
	struct cfg *cfg = NULL;
	int64_t cc;
	int rc;

	if (nupd < 100) {
		fprintf(stderr, "usage: feed_to_mark [CONFIG] [UPDATES >= 100]\n");
		return 2;
	}
	if (path == NULL) {
		snprintf(defpath, sizeof(defpath), "%s/conf/markd.json",
			 BENCH_SRCDIR);
		path = defpath;
	}
	if (cfg_load(path, &cfg, &errs) != MK_OK) {
		fprintf(stderr, "feed_to_mark: %s: cannot load the"
			" configuration\n", path);
		return 1;
	}
	cc = clock_cost();
	rc = bench_updates(cfg, nupd, cc);
	if (rc == 0)
		rc = bench_parse(nupd / 4 > 2000 ? nupd / 4 : 2000, cc);
	cfg_free(cfg);
	return rc;
}
