/*
 * check_history.c - the history CSV reader (tools/history.[ch]): good and
 * bad files written to a temp dir, error locations, caps, the intra-bar
 * order of high and low, and the replayed price path; plus the shipped
 * USDC de-peg window.
 */
#include "config.h"

#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tests/testutil.h"
#include "tools/history.h"

static char tmpdir[256];

static void
setup(void)
{
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/check_history.XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(tmpdir));
}

static void
teardown(void)
{
	char cmd[512];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
	ck_assert_int_eq(system(cmd), 0);
}

/* Writes text to tmpdir/name; returns the path (static buffer). */
static const char *
write_file(const char *name, const char *text)
{
	static char path[512];
	FILE *fp;

	snprintf(path, sizeof(path), "%s/%s", tmpdir, name);
	fp = fopen(path, "wb");
	ck_assert_ptr_nonnull(fp);
	ck_assert_uint_eq(fwrite(text, 1, strlen(text), fp), strlen(text));
	ck_assert_int_eq(fclose(fp), 0);
	return path;
}

static void
ck_dec(struct mk_dec d, const char *want)
{
	char buf[MK_DEC_STRLEN];

	ck_assert_uint_gt(mk_dec_format(d, buf, sizeof(buf)), 0);
	ck_assert_str_eq(buf, want);
}

/* Loads `text` as `name`; expects status `want` and, on error, a message
 * starting with the file's path and containing `where`. */
static void
expect_error(const char *name, const char *text,
	     const struct history_limits *lim, enum mk_status want,
	     const char *where)
{
	struct history_series *s = NULL;
	struct mk_err err = { 0 };
	const char *path = write_file(name, text);
	char prefix[600];
	enum mk_status st;

	st = history_load(path, lim, &s, &err);
	ck_assert_msg(st == want, "%s: status %s, want %s (%s)", name,
		      mk_strstatus(st), mk_strstatus(want), err.msg);
	ck_assert_ptr_null(s);
	snprintf(prefix, sizeof(prefix), "%s:", path);
	ck_assert_msg(strncmp(err.msg, prefix, strlen(prefix)) == 0,
		      "%s: message does not start with the path: %s", name,
		      err.msg);
	ck_assert_msg(strstr(err.msg, where) != NULL,
		      "%s: message lacks \"%s\": %s", name, where, err.msg);
}

START_TEST(test_good_file)
{
	struct history_series *s = NULL;
	struct mk_err err = { 0 };
	const char *path = write_file("good.csv",
		"ts_utc_unix,open,high,low,close,volume,trades\n"
		"1678233600,22196.56,22203.71,22193.67,22200.47,1.27619,32\n"
		"1678233660,22200.47,22223.61,22199,22222.5,2.59888,55\r\n"
		"1678233840,0.00000001,0.00000002,0.00000001,0.00000002,0,0");

	ck_assert_int_eq(history_load(path, NULL, &s, &err), MK_OK);
	ck_assert_uint_eq(s->nbars, 3);
	ck_assert(s->has_trades);
	ck_assert_int_eq(s->scale, 8);
	ck_assert_int_eq(s->bars[0].ts, 1678233600);
	ck_dec(s->bars[0].open, "22196.56");
	ck_dec(s->bars[0].high, "22203.71");
	ck_dec(s->bars[0].low, "22193.67");
	ck_dec(s->bars[0].close, "22200.47");
	ck_dec(s->bars[0].volume, "1.27619");
	ck_assert_int_eq(s->bars[0].trades, 32);
	ck_dec(s->bars[1].low, "22199");
	ck_dec(s->bars[1].close, "22222.5");
	ck_assert_int_eq(s->bars[2].ts, 1678233840);
	ck_dec(s->bars[2].high, "0.00000002");
	history_destroy(s);
	history_destroy(NULL);
}
END_TEST

START_TEST(test_no_trades_column)
{
	struct history_series *s = NULL;
	struct mk_err err = { 0 };
	static const char text[] =
		"ts_utc_unix,open,high,low,close,volume\n"
		"1678233600,1,1,0.99999,0.99999,29928.76\n";

	ck_assert_int_eq(history_parse("mem.csv", text, sizeof(text) - 1, NULL,
				       &s, &err), MK_OK);
	ck_assert(!s->has_trades);
	ck_assert_int_eq(s->bars[0].trades, -1);
	ck_assert_str_eq(s->name, "mem.csv");
	history_destroy(s);
}
END_TEST

START_TEST(test_bad_files)
{
	static const char hdr[] = "ts_utc_unix,open,high,low,close,volume\n";
	struct history_limits narrow = { .max_line = 64, .max_rows = 10 };
	struct history_limits small = { .max_line = 64, .max_rows = 2 };
	char text[1024], longline[200];

	expect_error("hdr.csv", "ts,open,high,low,close,volume\n1,1,1,1,1,1\n",
		     NULL, MK_EPARSE, ":1:ts_utc_unix:");
	expect_error("hdr2.csv", "ts_utc_unix,open,low,high,close,volume\n",
		     NULL, MK_EPARSE, ":1:high:");
	expect_error("hdr3.csv", "ts_utc_unix,open,high\n", NULL, MK_EPARSE,
		     ":1:");
	expect_error("empty.csv", "", NULL, MK_EPARSE, ":1:");
	expect_error("nobars.csv", hdr, NULL, MK_EPARSE, ":2:");

	snprintf(text, sizeof(text), "%s1678233600,1,1,1,1,1\n1678233660,2,2x,1,2,1\n", hdr);
	expect_error("nonnum.csv", text, NULL, MK_EPARSE, ":3:high:");
	snprintf(text, sizeof(text), "%s1678233600,1,1,1,NaN,1\n", hdr);
	expect_error("nan.csv", text, NULL, MK_EPARSE, ":2:close:");
	snprintf(text, sizeof(text), "%s1678233600,1,1,1,1e3,1\n", hdr);
	expect_error("exp.csv", text, NULL, MK_EPARSE, ":2:close:");
	snprintf(text, sizeof(text), "%s16782x3600,1,1,1,1,1\n", hdr);
	expect_error("ts.csv", text, NULL, MK_EPARSE, ":2:ts_utc_unix:");
	snprintf(text, sizeof(text), "%s1678233600,10,9,11,10,1\n", hdr);
	expect_error("highlow.csv", text, NULL, MK_EPARSE, ":2:high: high is below low");
	snprintf(text, sizeof(text), "%s1678233600,10,11,9,12,1\n", hdr);
	expect_error("highclose.csv", text, NULL, MK_EPARSE, ":2:high:");
	snprintf(text, sizeof(text), "%s1678233600,8,11,9,10,1\n", hdr);
	expect_error("lowopen.csv", text, NULL, MK_EPARSE, ":2:low:");
	snprintf(text, sizeof(text), "%s1678233600,0,1,0,1,1\n", hdr);
	expect_error("zero.csv", text, NULL, MK_EPARSE, ":2:open:");
	snprintf(text, sizeof(text), "%s1678233600,1,1,1,1,-1\n", hdr);
	expect_error("negvol.csv", text, NULL, MK_EPARSE, ":2:volume:");
	snprintf(text, sizeof(text), "%s1678233600,1,1,1,1\n", hdr);
	expect_error("fields.csv", text, NULL, MK_EPARSE, ":2:volume:");
	snprintf(text, sizeof(text), "%s1678233600,1,1,1,1,1,7\n", hdr);
	expect_error("extra.csv", text, NULL, MK_EPARSE, ":2:");
	snprintf(text, sizeof(text), "%s1678233600,1,1,1,1,1\n\n1678233660,1,1,1,1,1\n", hdr);
	expect_error("blank.csv", text, NULL, MK_EPARSE, ":3:");
	/* a time that would overflow once taken to milliseconds */
	snprintf(text, sizeof(text), "%s999999999999999999,1,1,1,1,0\n", hdr);
	expect_error("farfuture.csv", text, NULL, MK_EPARSE,
		     ":2:ts_utc_unix: \"999999999999999999\" is after 9999-12-31");
	snprintf(text, sizeof(text),
		 "%s1678233660,1,1,1,1,1\n1678233600,1,1,1,1,1\n", hdr);
	expect_error("unsorted.csv", text, NULL, MK_EPARSE,
		     ":3:ts_utc_unix: time 1678233600 is before");
	snprintf(text, sizeof(text),
		 "%s1678233600,1,1,1,1,1\n1678233660,1,1,1,1,1\n1678233660,1,1,1,1,1\n",
		 hdr);
	expect_error("dup.csv", text, NULL, MK_EPARSE,
		     ":4:ts_utc_unix: duplicate time 1678233660");
	snprintf(text, sizeof(text),
		 "%s1678233600,1,1,1,1,1\n1678233630,1,1,1,1,1\n", hdr);
	expect_error("overlap.csv", text, NULL, MK_EPARSE, ":3:ts_utc_unix:");
	snprintf(text, sizeof(text), "ts_utc_unix,open,high,low,close,volume,trades\n"
		 "1678233600,1,1,1,1,1,x\n");
	expect_error("trades.csv", text, NULL, MK_EPARSE, ":2:trades:");

	/* Caps: line length and rows. */
	memset(longline, '1', sizeof(longline) - 1);
	longline[sizeof(longline) - 1] = '\0';
	snprintf(text, sizeof(text), "%s1678233600,1,1,1,1,1\n1678233660,1,1,1,1,%s\n",
		 hdr, longline);
	expect_error("long.csv", text, &narrow, MK_ETOOBIG,
		     ":3: line is longer than 64 bytes");
	expect_error("long2.csv", text, NULL, MK_EPARSE, ":3:volume:");
	snprintf(text, sizeof(text),
		 "%s1678233600,1,1,1,1,1\n1678233660,1,1,1,1,1\n1678233720,1,1,1,1,1\n",
		 hdr);
	expect_error("rows.csv", text, &small, MK_ETOOBIG, ":4: more than 2 rows");
	/* A file larger than the caps allow at all is refused unread. */
	snprintf(text, sizeof(text), "%s%0400d\n", hdr, 0);
	expect_error("huge.csv", text, &small, MK_ETOOBIG, "larger than 198 bytes");
}
END_TEST

START_TEST(test_missing_file)
{
	struct history_series *s = NULL;
	struct mk_err err = { 0 };
	char path[512];

	snprintf(path, sizeof(path), "%s/absent.csv", tmpdir);
	ck_assert_int_eq(history_load(path, NULL, &s, &err), MK_EIO);
	ck_assert_int_eq(err.sys_errno, ENOENT);
	ck_assert_ptr_nonnull(strstr(err.msg, "absent.csv"));
}
END_TEST

static struct history_bar
bar(int64_t ts, const char *o, const char *h, const char *l, const char *c)
{
	struct history_bar b;

	memset(&b, 0, sizeof(b));
	b.ts = ts;
	ck_assert_int_eq(mk_dec_parse(o, strlen(o), &b.open, NULL), MK_OK);
	ck_assert_int_eq(mk_dec_parse(h, strlen(h), &b.high, NULL), MK_OK);
	ck_assert_int_eq(mk_dec_parse(l, strlen(l), &b.low, NULL), MK_OK);
	ck_assert_int_eq(mk_dec_parse(c, strlen(c), &b.close, NULL), MK_OK);
	return b;
}

START_TEST(test_bar_path_order)
{
	struct history_bar up = bar(0, "100", "110", "95", "105");
	struct history_bar down = bar(0, "100", "110", "95", "97");
	struct history_bar flat = bar(0, "100", "101", "99", "100");
	struct mk_dec p[4];

	/* close >= open: open -> low -> high -> close */
	history_bar_path(&up, p);
	ck_dec(p[0], "100");
	ck_dec(p[1], "95");
	ck_dec(p[2], "110");
	ck_dec(p[3], "105");
	/* close < open: open -> high -> low -> close */
	history_bar_path(&down, p);
	ck_dec(p[0], "100");
	ck_dec(p[1], "110");
	ck_dec(p[2], "95");
	ck_dec(p[3], "97");
	/* close == open counts as up */
	history_bar_path(&flat, p);
	ck_dec(p[1], "99");
	ck_dec(p[2], "101");
}
END_TEST

START_TEST(test_price_path)
{
	static const char text[] =
		"ts_utc_unix,open,high,low,close,volume\n"
		"1000020,100.00,110.00,95.00,105.00,1\n"   /* up bar */
		"1000080,105.00,106.00,101.00,102.00,1\n"  /* down bar */
		"1000200,102.5,102.5,102.5,102.5,1\n";     /* after a gap */
	struct history_series *s = NULL;
	struct mk_dec p;

	ck_assert_int_eq(history_parse("p.csv", text, sizeof(text) - 1, NULL, &s,
				       NULL), MK_OK);
	ck_assert_uint_eq(history_find(s, 1000019), (size_t)-1);
	ck_assert_uint_eq(history_find(s, 1000020), 0);
	ck_assert_uint_eq(history_find(s, 1000079), 0);
	ck_assert_uint_eq(history_find(s, 1000080), 1);
	ck_assert_uint_eq(history_find(s, 1000199), 1);
	ck_assert_uint_eq(history_find(s, 1000200), 2);
	ck_assert_uint_eq(history_find(s, 99999999), 2);

	/* Before the first bar: its open. */
	ck_assert_int_eq(history_price_at(s, 1000000000, 2, &p), MK_OK);
	ck_dec(p, "100.00");
	/* The up bar: 100 -> 95 (20 s) -> 110 (40 s) -> 105 (60 s). */
	ck_assert_int_eq(history_price_at(s, 1000020000, 2, &p), MK_OK);
	ck_dec(p, "100.00");
	ck_assert_int_eq(history_price_at(s, 1000030000, 2, &p), MK_OK);
	ck_dec(p, "97.50");
	ck_assert_int_eq(history_price_at(s, 1000040000, 2, &p), MK_OK);
	ck_dec(p, "95.00");
	ck_assert_int_eq(history_price_at(s, 1000050000, 2, &p), MK_OK);
	ck_dec(p, "102.50");
	ck_assert_int_eq(history_price_at(s, 1000060000, 2, &p), MK_OK);
	ck_dec(p, "110.00");
	ck_assert_int_eq(history_price_at(s, 1000070000, 4, &p), MK_OK);
	ck_dec(p, "107.5000");
	/* 1 ms before the end: 110 - 5 x 19999/20000 = 105.00025 -> 105.00 */
	ck_assert_int_eq(history_price_at(s, 1000079999, 2, &p), MK_OK);
	ck_dec(p, "105.00");
	ck_assert_int_eq(history_price_at(s, 1000079999, 5, &p), MK_OK);
	ck_dec(p, "105.00025");
	/* The down bar: 105 -> 106 -> 101 -> 102. */
	ck_assert_int_eq(history_price_at(s, 1000080000, 2, &p), MK_OK);
	ck_dec(p, "105.00");
	ck_assert_int_eq(history_price_at(s, 1000100000, 2, &p), MK_OK);
	ck_dec(p, "106.00");
	ck_assert_int_eq(history_price_at(s, 1000120000, 2, &p), MK_OK);
	ck_dec(p, "101.00");
	/* Half-even rounding: 106 - 5 x 1/20000 s... at 1 ms: 105.99975 */
	ck_assert_int_eq(history_price_at(s, 1000100001, 4, &p), MK_OK);
	ck_dec(p, "105.9998");
	/* The gap after the down bar holds its close. */
	ck_assert_int_eq(history_price_at(s, 1000140000, 2, &p), MK_OK);
	ck_dec(p, "102.00");
	ck_assert_int_eq(history_price_at(s, 1000199999, 2, &p), MK_OK);
	ck_dec(p, "102.00");
	/* After the last bar: its close. */
	ck_assert_int_eq(history_price_at(s, 2000000000, 1, &p), MK_OK);
	ck_dec(p, "102.5");
	ck_assert_int_eq(history_price_at(s, 2000000000, 19, &p), MK_EINVAL);
	history_destroy(s);
}
END_TEST

/* The shipped window of the 2023 USDC de-peg parses, and holds the BTC
 * sell-off bar of 2023-03-10 10:48 UTC as recorded. */
START_TEST(test_shipped_window)
{
	static const char *const files[] = {
		"binanceus_BTCUSDC_1m.csv", "binanceus_BTCUSDT_1m.csv",
		"binanceus_USDCUSDT_1m.csv", "bybit_BTCUSDC_1m.csv",
		"coinbase_BTC-USDT_1m.csv", "coinbase_BTC-USD_1m.csv",
		"coinbase_USDT-USD_1m.csv", "kraken_USDCUSD_1m.csv",
		"kraken_USDTUSD_1m.csv", "kraken_XBTUSDC_1m.csv",
		"kraken_XBTUSDT_1m.csv", "kraken_XBTUSD_1m.csv",
	};
	char rel[256], path[1024];

	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		struct history_series *s = NULL;
		struct mk_err err = { 0 };

		snprintf(rel, sizeof(rel), "tests/data/history/usdc_depeg/%s",
			 files[i]);
		tu_srcpath(path, sizeof(path), rel);
		ck_assert_msg(history_load(path, NULL, &s, &err) == MK_OK, "%s",
			      err.msg);
		ck_assert_uint_gt(s->nbars, 1000);
		ck_assert_int_ge(s->bars[0].ts, 1678442400);
		ck_assert_int_lt(s->bars[s->nbars - 1].ts, 1678521600);
		if (strcmp(files[i], "kraken_XBTUSD_1m.csv") == 0) {
			size_t k = history_find(s, 1678445280);

			ck_assert_int_eq(s->bars[k].ts, 1678445280);
			ck_dec(s->bars[k].low, "19549.9");
			ck_dec(s->bars[k].high, "19679.6");
			ck_assert_int_eq(s->bars[k].trades, 352);
		}
		history_destroy(s);
	}
}
END_TEST

static Suite *
history_suite(void)
{
	Suite *s = suite_create("history");
	TCase *tc = tcase_create("csv");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_good_file);
	tcase_add_test(tc, test_no_trades_column);
	tcase_add_test(tc, test_bad_files);
	tcase_add_test(tc, test_missing_file);
	tcase_add_test(tc, test_bar_path_order);
	tcase_add_test(tc, test_price_path);
	tcase_add_test(tc, test_shipped_window);
	suite_add_tcase(s, tc);
	return s;
}

TU_MAIN(history_suite)
