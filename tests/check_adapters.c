/*
 * check_adapters.c - the venue adapters and markd-parse.
 *
 * Data-driven: every tests/data/payloads/<venue>/<case>.expect names a body
 * (<case>.json, .txt or .html, or another file with "body:"), a market and
 * the expected normalized line or error; each is run through the adapter,
 * then through every proper prefix of its body (truncation) and through
 * fixed-seed random mutations (never a crash, never a quote without a
 * price, every error names the venue). Then: malformed bodies for every
 * adapter, URL building, options, the registry, the every-market mode,
 * the exact mid, RFC 3339, and the built markd-parse's exit codes.
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "feeds/adapter.h"
#include "feeds/rfc3339.h"
#include "tests/testutil.h"

#define PAYLOADS "tests/data/payloads"
#define MAX_CASES 512
#define NAME_MAX_LEN 128
/* make dist writes v7 tar files: 99 bytes per path, "markd-x.y.z/"
 * included. Longer fixture paths would silently vanish from the tarball. */
#define DIST_PATH_MAX 85

struct fixture {
	char venue[32];
	char stem[NAME_MAX_LEN];
};

static struct fixture cases[MAX_CASES];
static size_t ncases;

/* --- helpers ----------------------------------------------------------- */

/* Reads a whole file into a new NUL-terminated buffer; NULL on failure. */
static char *
slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	char *buf = NULL;
	size_t cap = 0, n = 0, got;

	if (f == NULL)
		return NULL;
	do {
		if (cap - n < 4096) {
			char *nb = realloc(buf, cap + 65536);

			ck_assert_ptr_nonnull(nb);
			buf = nb;
			cap += 65536;
		}
		got = fread(buf + n, 1, cap - n - 1, f);
		n += got;
	} while (got > 0);
	fclose(f);
	buf[n] = '\0';
	*len = n;
	return buf;
}

static bool
starts_with(const char *s, const char *prefix)
{
	return strncmp(s, prefix, strlen(prefix)) == 0;
}

/* The value of "key: value" in an .expect text, copied into buf. */
static bool
expect_get(const char *text, const char *key, char *buf, size_t cap)
{
	size_t klen = strlen(key);
	const char *line = text;

	while (*line != '\0') {
		const char *end = strchr(line, '\n');
		size_t len = end != NULL ? (size_t)(end - line) : strlen(line);

		if (len > klen + 1 && strncmp(line, key, klen) == 0 &&
		    line[klen] == ':' && line[klen + 1] == ' ') {
			size_t vlen = len - klen - 2;

			ck_assert_uint_lt(vlen, cap);
			memcpy(buf, line + klen + 2, vlen);
			buf[vlen] = '\0';
			return true;
		}
		line += len + (end != NULL);
	}
	return false;
}

static int
fixture_cmp(const void *a, const void *b)
{
	const struct fixture *x = a, *y = b;
	int c = strcmp(x->venue, y->venue);

	return c != 0 ? c : strcmp(x->stem, y->stem);
}

/* Collects every <venue>/<case>.expect under the payloads folder. */
static void
scan_fixtures(void)
{
	char root[4096];
	DIR *top;
	struct dirent *v;

	top = opendir(tu_srcpath(root, sizeof(root), PAYLOADS));
	if (top == NULL) {
		fprintf(stderr, "cannot open %s: %s\n", root, strerror(errno));
		return;
	}
	while ((v = readdir(top)) != NULL) {
		char dir[4200];
		DIR *d;
		struct dirent *e;

		if (v->d_name[0] == '.' || strlen(v->d_name) >= 32)
			continue;
		snprintf(dir, sizeof(dir), "%s/%s", root, v->d_name);
		d = opendir(dir);
		if (d == NULL)
			continue;
		while ((e = readdir(d)) != NULL && ncases < MAX_CASES) {
			size_t len = strlen(e->d_name);

			if (len <= 7 || len - 7 >= NAME_MAX_LEN ||
			    strcmp(e->d_name + len - 7, ".expect") != 0)
				continue;
			snprintf(cases[ncases].venue, sizeof(cases[0].venue),
				 "%s", v->d_name);
			snprintf(cases[ncases].stem, sizeof(cases[0].stem),
				 "%.*s", (int)(len - 7), e->d_name);
			ncases++;
		}
		closedir(d);
	}
	closedir(top);
	qsort(cases, ncases, sizeof(cases[0]), fixture_cmp);
}

/* Error of a failed parse: names the venue, no quote. */
static void
assert_clean_error(const struct feed_adapter *a, enum mk_status st, size_t n,
		   const struct mk_err *err, const char *what)
{
	char prefix[40];

	snprintf(prefix, sizeof(prefix), "%s: ", feed_adapter_name(a));
	ck_assert_msg(n == 0, "%s: %zu quotes returned with an error", what, n);
	ck_assert_msg(err->code == st, "%s: err.code %d != status %d", what,
		      err->code, st);
	ck_assert_msg(starts_with(err->msg, prefix),
		      "%s: message does not name the venue: %s", what,
		      err->msg);
	ck_assert_msg(st == MK_EPARSE || st == MK_EVENUE ||
		      st == MK_ERATELIMIT || st == MK_ENOTFOUND,
		      "%s: unexpected status %s (%s)", what, mk_strstatus(st),
		      err->msg);
}

/* Checks the outcome of a parse of arbitrary (mangled) input. */
static void
assert_sane(const struct feed_adapter *a, const char *market,
	    enum mk_status st, const struct feed_quote *q, size_t n,
	    const struct mk_err *err, const char *what)
{
	if (st != MK_OK) {
		assert_clean_error(a, st, n, err, what);
		return;
	}
	ck_assert_msg(n == 1, "%s: %zu quotes for one market", what, n);
	ck_assert_str_eq(q[0].market, market);
	ck_assert_msg((q[0].q.has_bid && q[0].q.has_ask) || q[0].q.has_last,
		      "%s: a quote without a usable price", what);
	ck_assert_msg(q[0].q.exchange_ts_ms >= 0 &&
		      q[0].q.exchange_ts_ms <= FEED_TS_MAX_MS,
		      "%s: timestamp out of range", what);
}

static struct feed_adapter_opts *
compile_opts(const struct feed_adapter *a, const char *text)
{
	struct feed_adapter_opts *o = NULL;
	struct mk_err err = { 0 };
	json_error_t jerr;
	json_t *j = NULL;

	if (text != NULL) {
		j = json_loads(text, JSON_REJECT_DUPLICATES, &jerr);
		ck_assert_msg(j != NULL, "bad options JSON: %s", jerr.text);
	}
	ck_assert_msg(feed_adapter_opts_create(a, j, &o, &err) == MK_OK,
		      "options: %s", err.msg);
	json_decref(j);
	return o;
}

/* --- fixtures ----------------------------------------------------------- */

struct loaded {
	const struct feed_adapter *a;
	struct feed_adapter_opts *opts;
	char market[FEED_MARKET_MAX];
	char *expect, *body;
	size_t len;
	bool own_body;          /* the body file belongs to this case */
};

static void
load_case(const struct fixture *fx, struct loaded *c)
{
	char path[4400], rel[2048], buf[1024], adapter[32];
	static const char *const exts[] = { ".json", ".txt", ".html" };
	size_t elen;

	memset(c, 0, sizeof(*c));
	snprintf(rel, sizeof(rel), PAYLOADS "/%s/%s.expect", fx->venue,
		 fx->stem);
	ck_assert_msg(strlen(rel) <= DIST_PATH_MAX, "%s: path too long for "
		      "make dist", rel);
	c->expect = slurp(tu_srcpath(path, sizeof(path), rel), &elen);
	ck_assert_msg(c->expect != NULL, "cannot read %s", path);
	if (!expect_get(c->expect, "adapter", adapter, sizeof(adapter)))
		snprintf(adapter, sizeof(adapter), "%s", fx->venue);
	c->a = feed_adapter_find(adapter);
	ck_assert_msg(c->a != NULL, "%s: unknown adapter %s", rel, adapter);
	ck_assert_msg(expect_get(c->expect, "market", c->market,
				 sizeof(c->market)), "%s: no market", rel);
	c->opts = compile_opts(c->a, expect_get(c->expect, "options", buf,
						sizeof(buf)) ? buf : NULL);
	if (expect_get(c->expect, "body", buf, sizeof(buf))) {
		snprintf(rel, sizeof(rel), PAYLOADS "/%s/%s", fx->venue, buf);
		c->body = slurp(tu_srcpath(path, sizeof(path), rel), &c->len);
	} else {
		for (size_t i = 0; i < 3 && c->body == NULL; i++) {
			snprintf(rel, sizeof(rel), PAYLOADS "/%s/%s%s",
				 fx->venue, fx->stem, exts[i]);
			c->body = slurp(tu_srcpath(path, sizeof(path), rel),
					&c->len);
			ck_assert_msg(c->body == NULL ||
				      strlen(rel) <= DIST_PATH_MAX,
				      "%s: path too long for make dist", rel);
		}
		c->own_body = true;
	}
	ck_assert_msg(c->body != NULL, "%s/%s: no body file", fx->venue,
		      fx->stem);
}

static void
free_case(struct loaded *c)
{
	feed_adapter_opts_destroy(c->opts);
	free(c->expect);
	free(c->body);
}

/* Finding no fixtures must fail, not pass vacuously. */
START_TEST(test_fixture_count)
{
	ck_assert_msg(ncases >= 100, "only %zu fixtures under %s", ncases,
		      PAYLOADS);
}
END_TEST

START_TEST(test_fixture)
{
	const struct fixture *fx = &cases[_i];
	struct loaded c;
	struct feed_quote q[4];
	struct mk_err err = { 0 };
	char want[2048], msg[512], what[200];
	char *line = NULL;
	size_t n = 99;
	enum mk_status st;

	snprintf(what, sizeof(what), "%s/%s", fx->venue, fx->stem);
	load_case(fx, &c);
	st = feed_adapter_parse(c.a, c.opts, c.market, c.body, c.len, q, 4,
				&n, &err);
	if (expect_get(c.expect, "result", want, sizeof(want))) {
		ck_assert_msg(st == MK_OK, "%s: %s (%s)", what,
			      mk_strstatus(st), err.msg);
		ck_assert_uint_eq(n, 1);
		ck_assert_int_eq(feed_quotes_render(feed_adapter_name(c.a),
						    c.market, q, n, &line,
						    &err), MK_OK);
		ck_assert_msg(strcmp(line, want) == 0,
			      "%s:\n got  %s\n want %s", what, line, want);
		free(line);
	} else {
		ck_assert_msg(expect_get(c.expect, "error", want,
					 sizeof(want)),
			      "%s: neither result nor error", what);
		ck_assert_msg(st != MK_OK, "%s: parsed, expected %s", what,
			      want);
		ck_assert_msg(strcmp(mk_strstatus(st), want) == 0,
			      "%s: got %s (%s), want %s", what,
			      mk_strstatus(st), err.msg, want);
		assert_clean_error(c.a, st, n, &err, what);
		if (expect_get(c.expect, "message", msg, sizeof(msg)))
			ck_assert_msg(strstr(err.msg, msg) != NULL,
				      "%s: message \"%s\" lacks \"%s\"", what,
				      err.msg, msg);
	}
	free_case(&c);
}
END_TEST

/* Every proper prefix of a JSON document is malformed: each must fail as
 * a parse error that names the venue (bodies over 4 KiB are cut at about
 * 2000 evenly spaced points). */
START_TEST(test_fixture_truncated)
{
	const struct fixture *fx = &cases[_i];
	struct loaded c;
	struct feed_quote q[4];
	size_t end, step;

	load_case(fx, &c);
	if (!c.own_body || c.len == 0) {
		free_case(&c);
		return;
	}
	end = c.len;
	while (end > 0 && strchr(" \t\r\n", c.body[end - 1]) != NULL)
		end--;
	step = end > 4096 ? end / 2000 : 1;
	for (size_t cut = 0; cut < end; cut += step) {
		struct mk_err err = { 0 };
		size_t n = 99;
		enum mk_status st;
		char what[200];

		snprintf(what, sizeof(what), "%s/%s cut at %zu", fx->venue,
			 fx->stem, cut);
		st = feed_adapter_parse(c.a, c.opts, c.market, c.body, cut, q,
					4, &n, &err);
		ck_assert_msg(st == MK_EPARSE, "%s: %s (%s)", what,
			      mk_strstatus(st), err.msg);
		assert_clean_error(c.a, st, n, &err, what);
	}
	free_case(&c);
}
END_TEST

/* Fixed-seed random damage to each body: flipped, deleted, duplicated and
 * replaced bytes, and digits turned into letters. No crash, and either a
 * clean error or a quote that has a price. */
START_TEST(test_fixture_mutated)
{
	static const char junk[] = "0123456789.-eE\"{}[],: nNaI\\x";
	const struct fixture *fx = &cases[_i];
	struct tu_rng rng = TU_RNG_INIT(0x5eed0000u + _i);
	struct loaded c;
	struct feed_quote q[4];
	char *buf;

	load_case(fx, &c);
	if (!c.own_body || c.len == 0) {
		free_case(&c);
		return;
	}
	buf = malloc(c.len + 64);
	ck_assert_ptr_nonnull(buf);
	for (int round = 0; round < 300; round++) {
		struct mk_err err = { 0 };
		size_t len = c.len, n = 99;
		int edits = (int)tu_rng_range(&rng, 1, 4);
		char what[200];
		enum mk_status st;

		memcpy(buf, c.body, len);
		for (int k = 0; k < edits && len > 1; k++) {
			size_t at = (size_t)tu_rng_range(&rng, 0,
							 (int64_t)len - 1);

			switch (tu_rng_range(&rng, 0, 3)) {
			case 0:
				buf[at] ^= (char)(1 << tu_rng_range(&rng, 0, 7));
				break;
			case 1:
				memmove(buf + at, buf + at + 1, len - at - 1);
				len--;
				break;
			case 2:
				memmove(buf + at + 1, buf + at, len - at);
				len++;
				break;
			default:
				buf[at] = junk[tu_rng_range(&rng, 0,
							    sizeof(junk) - 2)];
				break;
			}
		}
		snprintf(what, sizeof(what), "%s/%s mutation %d", fx->venue,
			 fx->stem, round);
		st = feed_adapter_parse(c.a, c.opts, c.market, buf, len, q, 4,
					&n, &err);
		assert_sane(c.a, c.market, st, q, n, &err, what);
	}
	free(buf);
	free_case(&c);
}
END_TEST

/* --- malformed bodies for every adapter --------------------------------- */

static const char *
market_for(const struct feed_adapter *a)
{
	if (strcmp(feed_adapter_name(a), "pyth") == 0)
		return "e62df6c8b4a85fe1a67db44dc12de5db330f7ac66b72dc658afedf0f4a415b43";
	return "BTCUSDT";
}

static struct feed_adapter_opts *
opts_for(const struct feed_adapter *a)
{
	if (strcmp(feed_adapter_name(a), "json") != 0)
		return NULL;
	return compile_opts(a, "{\"path\":\"/p\",\"price\":\"/price\"}");
}

START_TEST(test_malformed_every_adapter)
{
	static const struct { const char *body; size_t len; } bodies[] = {
		{ "", 0 },
		{ " \r\n\t ", 5 },
		{ "<!DOCTYPE html><html><body><h1>403 Forbidden</h1></body>"
		  "</html>", 64 },
		{ "null", 4 },
		{ "42", 2 },
		{ "\"ok\"", 4 },
		{ "{}", 2 },
		{ "{\"a\":1,\"a\":2}", 13 },
		{ "[1,2", 4 },
		{ "{\"a\":1}\0trailing", 16 },
		{ "{\"a\":\"x\\u0000y\"}", 16 },
		{ "\xef\xbb\xbf{}", 5 },
		{ "{\"price\":\"1\"} {\"price\":\"2\"}", 27 },
		{ "Too Many Requests", 17 },
	};
	const struct feed_adapter *a = feed_adapter_at((size_t)_i);
	const char *market = market_for(a);
	struct feed_adapter_opts *o = opts_for(a);
	struct feed_quote q[2];
	char *deep;

	for (size_t i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++) {
		struct mk_err err = { 0 };
		size_t n = 99;
		char what[64];
		enum mk_status st;

		snprintf(what, sizeof(what), "%s body %zu",
			 feed_adapter_name(a), i);
		st = feed_adapter_parse(a, o, market, bodies[i].body,
					bodies[i].len, q, 2, &n, &err);
		ck_assert_msg(st == MK_EPARSE, "%s: %s (%s)", what,
			      mk_strstatus(st), err.msg);
		assert_clean_error(a, st, n, &err, what);
	}
	/* Nesting past jansson's depth limit. */
	deep = malloc(20001);
	ck_assert_ptr_nonnull(deep);
	memset(deep, '[', 10000);
	memset(deep + 10000, ']', 10000);
	{
		struct mk_err err = { 0 };
		size_t n = 99;
		enum mk_status st = feed_adapter_parse(a, o, market, deep,
						       20000, q, 2, &n, &err);

		ck_assert_int_eq(st, MK_EPARSE);
		assert_clean_error(a, st, n, &err, "deep nesting");
	}
	free(deep);
	feed_adapter_opts_destroy(o);
}
END_TEST

/* One price field of a good answer per adapter, replaced by bad values:
 * each is a parse error naming the venue (and the field, when the JSON
 * itself parses). The first value is good, to show the template works. */
START_TEST(test_bad_values_every_adapter)
{
	static const struct { const char *adapter, *market, *tmpl, *field; }
	t[] = {
		{ "binance", "BTCUSDT", "{\"symbol\":\"BTCUSDT\",\"bidPrice\":%s,"
		  "\"askPrice\":\"60741.68\"}", "\"bidPrice\"" },
		{ "coinbase", "BTC-USD", "{\"bid\":%s,\"ask\":\"67123.46\","
		  "\"price\":\"67123.45\",\"time\":\"2024-05-03T14:21:41Z\"}",
		  "\"bid\"" },
		{ "kraken", "XBTUSD", "{\"error\":[],\"result\":{\"XXBTZUSD\":"
		  "{\"a\":[\"67123.5\",\"1\",\"1.000\"],\"b\":[%s,\"1\",\"1.0\"],"
		  "\"c\":[\"67123.45\",\"0.1\"]}}}", "\"result.XXBTZUSD.b[0]\"" },
		{ "bitstamp", "btcusd", "{\"timestamp\":\"1714746101\",\"bid\":%s,"
		  "\"ask\":\"63501\",\"last\":\"63500\"}", "\"bid\"" },
		{ "okx", "BTC-USDT", "{\"code\":\"0\",\"msg\":\"\",\"data\":[{"
		  "\"instId\":\"BTC-USDT\",\"last\":\"1\",\"bidPx\":%s,"
		  "\"askPx\":\"2\",\"ts\":\"1714746101000\"}]}",
		  "\"data[0].bidPx\"" },
		{ "bybit", "BTCUSDT", "{\"retCode\":0,\"retMsg\":\"OK\",\"result\":"
		  "{\"category\":\"spot\",\"list\":[{\"symbol\":\"BTCUSDT\","
		  "\"bid1Price\":%s,\"ask1Price\":\"2\",\"lastPrice\":\"1\"}]},"
		  "\"time\":1714746101000}", "\"result.list[0].bid1Price\"" },
		{ "gemini", "btcusd", "{\"bid\":%s,\"ask\":\"2\",\"last\":\"1\","
		  "\"volume\":{\"timestamp\":1714746101000}}", "\"bid\"" },
		{ "kucoin", "BTC-USDT", "{\"code\":\"200000\",\"data\":{\"price\":"
		  "\"1\",\"bestBid\":%s,\"bestAsk\":\"2\",\"time\":1714746101000}}",
		  "\"data.bestBid\"" },
		{ "bitfinex", "tBTCUSD", "[%s,1,2,1,0,0,1.5,100,3,1]", "\"[0]\"" },
		{ "pyth", "e62df6c8b4a85fe1a67db44dc12de5db330f7ac66b72dc658afedf0f4a415b43",
		  "{\"parsed\":[{\"id\":\"e62df6c8b4a85fe1a67db44dc12de5db330f7ac66"
		  "b72dc658afedf0f4a415b43\",\"price\":{\"price\":%s,\"conf\":\"1\","
		  "\"expo\":-8,\"publish_time\":1714746101}}]}",
		  "\"parsed[0].price.price\"" },
		{ "json", "X", "{\"bid\":%s,\"ask\":\"2\"}", "\"/bid\"" },
	};
	/* parses: the JSON is valid, so the message names the field */
	static const struct { const char *v; bool parses; } values[] = {
		{ "\"150000000\"", true }, { "\"NaN\"", true },
		{ "\"Infinity\"", true }, { "\"-nan\"", true },
		{ "\"99999999999999999999999\"", true },
		{ "\"9223372036854775808\"", true },
		{ "\"0.0000000000000000001\"", true }, { "\"1e5\"", true },
		{ "\"1.2.3\"", true }, { "\" 1\"", true }, { "\"-\"", true },
		{ "\"0x10\"", true }, { "true", true }, { "{}", true },
		{ "[]", true }, { "[\"1\"]", true }, { "1e300", true },
		{ "123456789012345678901234567890", false },
		{ "1e999", false }, { "NaN", false }, { "\"1", false },
	};
	size_t k = (size_t)_i;
	const struct feed_adapter *a = feed_adapter_find(t[k].adapter);
	struct feed_adapter_opts *o = NULL;

	ck_assert_ptr_nonnull(a);
	if (strcmp(t[k].adapter, "json") == 0)
		o = compile_opts(a, "{\"path\":\"/p\",\"bid\":\"/bid\","
				 "\"ask\":\"/ask\"}");
	for (size_t i = 0; i < sizeof(values) / sizeof(values[0]); i++) {
		char body[1024], what[200];
		struct feed_quote q[2];
		struct mk_err err = { 0 };
		size_t n = 99;
		enum mk_status st;

		const char *hole = strstr(t[k].tmpl, "%s");

		ck_assert_ptr_nonnull(hole);
		snprintf(body, sizeof(body), "%.*s%s%s",
			 (int)(hole - t[k].tmpl), t[k].tmpl, values[i].v,
			 hole + 2);
		snprintf(what, sizeof(what), "%s with %s", t[k].adapter,
			 values[i].v);
		st = feed_adapter_parse(a, o, t[k].market, body, strlen(body),
					q, 2, &n, &err);
		if (i == 0) {
			ck_assert_msg(st == MK_OK, "%s: %s", what, err.msg);
			continue;
		}
		ck_assert_msg(st == MK_EPARSE, "%s: %s (%s)", what,
			      mk_strstatus(st), err.msg);
		assert_clean_error(a, st, n, &err, what);
		/* Bitfinex reads an array in front as the /v2/tickers form,
		 * so the error is about that form's entries instead. */
		if (values[i].parses && !(values[i].v[0] == '[' &&
					  strcmp(t[k].adapter, "bitfinex") == 0))
			ck_assert_msg(strstr(err.msg, t[k].field) != NULL,
				      "%s: message does not name %s: %s", what,
				      t[k].field, err.msg);
	}
	{
		/* An empty array body: nothing for the market, or not the
		 * venue's shape, never a quote. */
		struct feed_quote q[2];
		struct mk_err err = { 0 };
		size_t n = 99;
		enum mk_status st = feed_adapter_parse(a, o, t[k].market, "[]",
						       2, q, 2, &n, &err);

		ck_assert_msg(st == MK_ENOTFOUND || st == MK_EPARSE, "%s: %s",
			      t[k].adapter, mk_strstatus(st));
		assert_clean_error(a, st, n, &err, "[]");
	}
	feed_adapter_opts_destroy(o);
}
END_TEST

START_TEST(test_parse_arguments)
{
	const struct feed_adapter *a = feed_adapter_find("binance");
	const struct feed_adapter *j = feed_adapter_find("json");
	const char *ctl = "{\"error\":[\"EQuery:a\\nb\\u001b[1m\"]}";
	struct feed_quote q[1];
	struct mk_err err = { 0 };
	char longm[200];
	size_t n = 99;

	ck_assert_int_eq(feed_adapter_parse(a, NULL, "X", "{}", 2, q, 0, &n,
					    &err), MK_EINVAL);
	ck_assert_uint_eq(n, 0);
	ck_assert_int_eq(feed_adapter_parse(a, NULL, "", "{}", 2, q, 1, &n,
					    &err), MK_EINVAL);
	memset(longm, 'A', sizeof(longm) - 1);
	longm[sizeof(longm) - 1] = '\0';
	ck_assert_int_eq(feed_adapter_parse(a, NULL, longm, "{}", 2, q, 1, &n,
					    &err), MK_EINVAL);
	/* Markets are checked as for URLs. */
	ck_assert_int_eq(feed_adapter_parse(feed_adapter_find("pyth"), NULL,
					    "BTCUSD", "[]", 2, q, 1, &n, &err),
			 MK_EINVAL);
	ck_assert_int_eq(feed_adapter_parse(a, NULL, "a\tb", "[]", 2, q, 1,
					    &n, &err), MK_EINVAL);
	/* A venue's text reaches the message without control characters. */
	ck_assert_int_eq(feed_adapter_parse(feed_adapter_find("kraken"), NULL,
					    "XBTUSD", ctl, strlen(ctl), q, 1,
					    &n, &err), MK_EVENUE);
	ck_assert_str_eq(err.msg, "kraken: EQuery:a?b?[1m");
	/* The json adapter cannot parse without its options. */
	ck_assert_int_eq(feed_adapter_parse(j, NULL, "X", "{}", 2, q, 1, &n,
					    &err), MK_EINVAL);
	ck_assert(starts_with(err.msg, "json: "));
}
END_TEST

/* --- URLs ---------------------------------------------------------------- */

START_TEST(test_urls)
{
	static const struct {
		const char *adapter, *base, *market, *url;
	} t[] = {
		{ "binance", "https://api.binance.com", "BTCUSDT",
		  "https://api.binance.com/api/v3/ticker/bookTicker?symbol=BTCUSDT" },
		{ "coinbase", "https://api.exchange.coinbase.com/", "BTC-USD",
		  "https://api.exchange.coinbase.com/products/BTC-USD/ticker" },
		{ "kraken", "https://api.kraken.com", "XBTUSD",
		  "https://api.kraken.com/0/public/Ticker?pair=XBTUSD" },
		{ "bitstamp", "https://www.bitstamp.net", "btcusd",
		  "https://www.bitstamp.net/api/v2/ticker/btcusd/" },
		{ "okx", "https://www.okx.com", "BTC-USDT",
		  "https://www.okx.com/api/v5/market/ticker?instId=BTC-USDT" },
		{ "bybit", "https://api.bybit.com", "BTCUSDT",
		  "https://api.bybit.com/v5/market/tickers?category=spot&symbol=BTCUSDT" },
		{ "gemini", "https://api.gemini.com", "btcusd",
		  "https://api.gemini.com/v1/pubticker/btcusd" },
		{ "kucoin", "https://api.kucoin.com", "BTC-USDT",
		  "https://api.kucoin.com/api/v1/market/orderbook/level1?symbol=BTC-USDT" },
		{ "bitfinex", "https://api-pub.bitfinex.com", "tBTCUSD",
		  "https://api-pub.bitfinex.com/v2/ticker/tBTCUSD" },
		{ "bitfinex", "https://api-pub.bitfinex.com", "tBTCF0:USTF0",
		  "https://api-pub.bitfinex.com/v2/ticker/tBTCF0%3AUSTF0" },
		{ "pyth", "https://hermes.pyth.network", "0xe62df6c8b4a85fe1a67db44dc12de5db330f7ac66b72dc658afedf0f4a415b43",
		  "https://hermes.pyth.network/v2/updates/price/latest?ids[]=0xe62df6c8b4a85fe1a67db44dc12de5db330f7ac66b72dc658afedf0f4a415b43" },
		{ "pyth", "http://127.0.0.1:9000/hermes//", "E62DF6C8B4A85FE1A67DB44DC12DE5DB330F7AC66B72DC658AFEDF0F4A415B43",
		  "http://127.0.0.1:9000/hermes/v2/updates/price/latest?ids[]=E62DF6C8B4A85FE1A67DB44DC12DE5DB330F7AC66B72DC658AFEDF0F4A415B43" },
		/* Escaping: everything but unreserved bytes. */
		{ "coinbase", "http://127.0.0.1:1", "a b/c?d&e#f%g+h",
		  "http://127.0.0.1:1/products/a%20b%2Fc%3Fd%26e%23f%25g%2Bh/ticker" },
		{ "binance", "http://127.0.0.1:1", "\xc3\xa9~_.-",
		  "http://127.0.0.1:1/api/v3/ticker/bookTicker?symbol=%C3%A9~_.-" },
		{ "kraken", "http://127.0.0.1:1", "../x",
		  "http://127.0.0.1:1/0/public/Ticker?pair=..%2Fx" },
	};

	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		const struct feed_adapter *a = feed_adapter_find(t[i].adapter);
		char buf[FEED_URL_MAX];
		struct mk_err err = { 0 };

		ck_assert_ptr_nonnull(a);
		ck_assert_msg(feed_adapter_url(a, NULL, t[i].base, t[i].market,
					       buf, sizeof(buf), &err) == MK_OK,
			      "case %zu: %s", i, err.msg);
		ck_assert_str_eq(buf, t[i].url);
	}
}
END_TEST

START_TEST(test_url_json_template)
{
	const struct feed_adapter *a = feed_adapter_find("json");
	struct feed_adapter_opts *o = compile_opts(a,
		"{\"path\":\"/v1/price/{market}?sym={market}&x=1\","
		"\"price\":\"/p\"}");
	struct mk_err err = { 0 };
	char buf[FEED_URL_MAX];

	ck_assert_int_eq(feed_adapter_url(a, o, "http://127.0.0.1:8080/api/",
					  "BTC/USD", buf, sizeof(buf), &err),
			 MK_OK);
	ck_assert_str_eq(buf, "http://127.0.0.1:8080/api/v1/price/BTC%2FUSD"
			 "?sym=BTC%2FUSD&x=1");
	ck_assert_int_eq(feed_adapter_url(a, NULL, "http://h", "X", buf,
					  sizeof(buf), &err), MK_EINVAL);
	feed_adapter_opts_destroy(o);
}
END_TEST

START_TEST(test_url_errors)
{
	static const struct {
		const char *adapter, *base, *market;
		enum mk_status st;
		const char *msg;
	} t[] = {
		{ "binance", "", "BTCUSDT", MK_EINVAL, "empty base URL" },
		{ "binance", "https://x/?a=1", "BTCUSDT", MK_EINVAL, "query" },
		{ "binance", "https://x/#f", "BTCUSDT", MK_EINVAL, "fragment" },
		{ "binance", "https://x y", "BTCUSDT", MK_EINVAL, "white space" },
		{ "binance", "https://x", "", MK_EINVAL, "empty market id" },
		{ "coinbase", "https://x", ".", MK_EINVAL, "not usable" },
		{ "coinbase", "https://x", "..", MK_EINVAL, "not usable" },
		{ "coinbase", "https://x", "a\nb", MK_EINVAL, "control" },
		{ "coinbase", "https://x", "a\x7f", MK_EINVAL, "control" },
		{ "pyth", "https://x", "BTCUSD", MK_EINVAL, "not a price feed id" },
		{ "pyth", "https://x", "0xe62df6c8b4a85fe1a67db44dc12de5db330f7ac66b72dc658afedf0f4a415b4",
		  MK_EINVAL, "not a price feed id" },
		{ "pyth", "https://x", "0xe62df6c8b4a85fe1a67db44dc12de5db330f7ac66b72dc658afedf0f4a415b4g",
		  MK_EINVAL, "not a price feed id" },
	};
	char longm[FEED_MARKET_MAX + 1], buf[FEED_URL_MAX], small[40];
	const struct feed_adapter *b = feed_adapter_find("binance");
	struct mk_err err = { 0 };

	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		const struct feed_adapter *a = feed_adapter_find(t[i].adapter);
		enum mk_status st;

		buf[0] = 'x';
		st = feed_adapter_url(a, NULL, t[i].base, t[i].market, buf,
				      sizeof(buf), &err);
		ck_assert_msg(st == t[i].st, "case %zu: %s", i,
			      mk_strstatus(st));
		ck_assert_msg(strstr(err.msg, t[i].msg) != NULL,
			      "case %zu: %s", i, err.msg);
		ck_assert_msg(starts_with(err.msg, t[i].adapter),
			      "case %zu: %s", i, err.msg);
		ck_assert_str_eq(buf, "");
	}
	memset(longm, 'A', sizeof(longm) - 1);
	longm[sizeof(longm) - 1] = '\0';
	ck_assert_int_eq(feed_adapter_url(b, NULL, "https://x", longm, buf,
					  sizeof(buf), &err), MK_EINVAL);
	longm[FEED_MARKET_MAX - 1] = '\0';      /* the longest valid id */
	ck_assert_int_eq(feed_adapter_url(b, NULL, "https://x", longm, buf,
					  sizeof(buf), &err), MK_OK);
	ck_assert_int_eq(feed_adapter_url(b, NULL, "https://x", "BTCUSDT",
					  small, sizeof(small), &err),
			 MK_ETOOBIG);
	ck_assert_str_eq(small, "");
	ck_assert_int_eq(feed_adapter_check_market(b, "BTCUSDT", &err), MK_OK);
}
END_TEST

/* --- options -------------------------------------------------------------- */

START_TEST(test_options_plain_adapters)
{
	const struct feed_adapter *a = feed_adapter_at((size_t)_i);
	struct mk_err err = { 0 };
	json_t *empty = json_object(), *arr = json_array();
	json_t *extra = json_pack("{s:i}", "interval", 5);

	if (strcmp(feed_adapter_name(a), "json") == 0)
		goto out;
	ck_assert_int_eq(feed_adapter_check_options(a, NULL, &err), MK_OK);
	ck_assert_int_eq(feed_adapter_check_options(a, empty, &err), MK_OK);
	ck_assert_int_eq(feed_adapter_check_options(a, json_null(), &err),
			 MK_OK);
	ck_assert_int_eq(feed_adapter_check_options(a, extra, &err),
			 MK_ECONFIG);
	ck_assert_msg(starts_with(err.msg, "options.interval: unknown key"),
		      "%s", err.msg);
	ck_assert_int_eq(feed_adapter_check_options(a, arr, &err),
			 MK_ECONFIG);
	ck_assert_msg(starts_with(err.msg, "options: expected an object"),
		      "%s", err.msg);
out:
	json_decref(empty);
	json_decref(arr);
	json_decref(extra);
}
END_TEST

START_TEST(test_options_json)
{
	static const struct { const char *opts, *msg; } bad[] = {
		{ "[]", "options: expected an object" },
		{ "{}", "options.path: missing" },
		{ "{\"path\":\"/p\"}", "options.price: missing" },
		{ "{\"path\":\"/p\",\"bid\":\"/b\"}", "options.ask: missing" },
		{ "{\"path\":\"/p\",\"ask\":\"/a\",\"price\":\"/x\"}",
		  "options.bid: missing" },
		{ "{\"path\":\"/p\",\"price\":\"/x\",\"last\":\"/y\"}",
		  "options.last: give \"price\" or \"last\", not both" },
		{ "{\"path\":\"/p\",\"price\":\"x\"}",
		  "options.price: a JSON Pointer" },
		{ "{\"path\":\"/p\",\"price\":\"/a~2b\"}", "options.price: '~'" },
		{ "{\"path\":\"/p\",\"price\":\"/{symbol}\"}",
		  "options.price: unknown placeholder" },
		{ "{\"path\":\"/p/{symbol}\",\"price\":\"/x\"}",
		  "options.path: unknown placeholder" },
		{ "{\"path\":\"p\",\"price\":\"/x\"}",
		  "options.path: the template is appended" },
		{ "{\"path\":\"/p q\",\"price\":\"/x\"}",
		  "options.path: byte 0x20" },
		{ "{\"path\":\"/p#f\",\"price\":\"/x\"}",
		  "options.path: byte 0x23" },
		{ "{\"path\":5,\"price\":\"/x\"}",
		  "options.path: expected a string, got an integer" },
		{ "{\"path\":\"/p\",\"price\":\"/x\",\"interval\":\"1\"}",
		  "options.interval: unknown key" },
		{ "{\"path\":\"/p\",\"price\":\"/x\",\"timestamp_unit\":\"s\"}",
		  "options.timestamp_unit: given without \"timestamp\"" },
		{ "{\"path\":\"/p\",\"price\":\"/x\",\"timestamp\":\"/t\","
		  "\"timestamp_unit\":\"minutes\"}",
		  "options.timestamp_unit: \"minutes\" is not one of" },
	};
	static const char *const good[] = {
		"{\"path\":\"/p\",\"price\":\"\"}",
		"{\"path\":\"?q={market}\",\"last\":\"/a~0b/c~1d/0\"}",
		"{\"path\":\"/p\",\"bid\":\"/b\",\"ask\":\"/a\",\"conf\":\"/c\","
		"\"timestamp\":\"/t\",\"timestamp_unit\":\"ns\","
		"\"error\":\"/e\"}",
	};
	const struct feed_adapter *a = feed_adapter_find("json");
	struct mk_err err = { 0 };

	ck_assert_int_eq(feed_adapter_check_options(a, NULL, &err),
			 MK_ECONFIG);
	ck_assert(starts_with(err.msg, "options: the json adapter needs"));
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		json_t *j = json_loads(bad[i].opts, 0, NULL);

		ck_assert_ptr_nonnull(j);
		ck_assert_msg(feed_adapter_check_options(a, j, &err) ==
			      MK_ECONFIG, "case %zu accepted", i);
		ck_assert_msg(starts_with(err.msg, bad[i].msg),
			      "case %zu: %s", i, err.msg);
		json_decref(j);
	}
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		json_t *j = json_loads(good[i], 0, NULL);

		ck_assert_msg(feed_adapter_check_options(a, j, &err) == MK_OK,
			      "case %zu: %s", i, err.msg);
		json_decref(j);
	}
}
END_TEST

/* Pointer syntax details: escapes, array indexes, the whole document. */
START_TEST(test_json_pointers)
{
	static const struct { const char *opts, *body, *last; } t[] = {
		{ "{\"path\":\"/p\",\"price\":\"/a~1b/m~0n\"}",
		  "{\"a/b\":{\"m~n\":\"7.25\"}}", "7.25" },
		{ "{\"path\":\"/p\",\"price\":\"/l/10\"}",
		  "{\"l\":[0,1,2,3,4,5,6,7,8,9,\"10.5\"]}", "10.5" },
		{ "{\"path\":\"/p\",\"price\":\"/\"}", "{\"\":\"3\"}", "3" },
		{ "{\"path\":\"/p\",\"price\":\"/0\"}", "[\"4\"]", "4" },
		{ "{\"path\":\"/p\",\"price\":\"/x/{market}\"}",
		  "{\"x\":{\"a/b~c\":\"5\"}}", "5" },
	};
	static const struct { const char *opts, *body; } missing[] = {
		{ "{\"path\":\"/p\",\"price\":\"/l/01\"}", "{\"l\":[\"1\",\"2\"]}" },
		{ "{\"path\":\"/p\",\"price\":\"/l/-\"}", "{\"l\":[\"1\"]}" },
		{ "{\"path\":\"/p\",\"price\":\"/l/99999999999999999999999\"}",
		  "{\"l\":[\"1\"]}" },
		{ "{\"path\":\"/p\",\"price\":\"/s/x\"}", "{\"s\":\"str\"}" },
	};
	const struct feed_adapter *a = feed_adapter_find("json");

	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		struct feed_adapter_opts *o = compile_opts(a, t[i].opts);
		struct feed_quote q[1];
		struct mk_err err = { 0 };
		char buf[MK_DEC_STRLEN];
		size_t n;

		ck_assert_msg(feed_adapter_parse(a, o, "a/b~c", t[i].body,
						 strlen(t[i].body), q, 1, &n,
						 &err) == MK_OK,
			      "case %zu: %s", i, err.msg);
		mk_dec_format(q[0].q.last, buf, sizeof(buf));
		ck_assert_str_eq(buf, t[i].last);
		feed_adapter_opts_destroy(o);
	}
	for (size_t i = 0; i < sizeof(missing) / sizeof(missing[0]); i++) {
		struct feed_adapter_opts *o = compile_opts(a, missing[i].opts);
		struct feed_quote q[1];
		struct mk_err err = { 0 };
		size_t n;

		ck_assert_int_eq(feed_adapter_parse(a, o, "X", missing[i].body,
						    strlen(missing[i].body), q,
						    1, &n, &err), MK_EPARSE);
		ck_assert_msg(strstr(err.msg, "nothing at") != NULL, "%s",
			      err.msg);
		feed_adapter_opts_destroy(o);
	}
}
END_TEST

/* --- registry --------------------------------------------------------------- */

START_TEST(test_registry)
{
	static const char *const names[] = {
		"binance", "bitfinex", "bitstamp", "bybit", "coinbase",
		"gemini", "kraken", "kucoin", "okx", "pyth", "json",
	};
	const char *all = "binance, bitfinex, bitstamp, bybit, coinbase, "
			  "gemini, kraken, kucoin, okx, pyth, json";
	char buf[256], small[10];

	ck_assert_uint_eq(feed_adapter_count(), 11);
	for (size_t i = 0; i < 11; i++) {
		const struct feed_adapter *a = feed_adapter_find(names[i]);

		ck_assert_ptr_nonnull(a);
		ck_assert_ptr_eq(a, feed_adapter_at(i));
		ck_assert_str_eq(feed_adapter_name(a), names[i]);
		ck_assert(strlen(feed_adapter_summary(a)) > 0);
	}
	ck_assert_ptr_null(feed_adapter_at(11));
	ck_assert_ptr_null(feed_adapter_find("Binance"));
	ck_assert_ptr_null(feed_adapter_find("bnb"));
	ck_assert_ptr_null(feed_adapter_find(""));
	ck_assert_ptr_null(feed_adapter_find(NULL));
	ck_assert_uint_eq(feed_adapter_names(buf, sizeof(buf)), strlen(all));
	ck_assert_str_eq(buf, all);
	ck_assert_uint_eq(feed_adapter_names(small, sizeof(small)),
			  strlen(all));
	ck_assert_str_eq(small, "binance, ");
}
END_TEST

/* --- every market of an answer -------------------------------------------- */

static size_t
parse_all(const char *adapter, const char *rel, struct feed_quote *q,
	  size_t cap, enum mk_status *st, struct mk_err *err)
{
	const struct feed_adapter *a = feed_adapter_find(adapter);
	char path[4400];
	size_t len, n = 99;
	char *body = slurp(tu_srcpath(path, sizeof(path), rel), &len);

	ck_assert_ptr_nonnull(body);
	*st = feed_adapter_parse(a, NULL, NULL, body, len, q, cap, &n, err);
	free(body);
	return n;
}

START_TEST(test_every_market)
{
	struct feed_quote q[8];
	struct mk_err err = { 0 };
	enum mk_status st;
	size_t n;

	n = parse_all("binance", PAYLOADS "/binance/api_v3_ticker_bookTicker"
		      ".array.docs-example.json", q, 8, &st, &err);
	ck_assert_int_eq(st, MK_OK);
	ck_assert_uint_eq(n, 2);
	ck_assert_str_eq(q[0].market, "LTCBTC");
	ck_assert_str_eq(q[1].market, "ETHBTC");
	n = parse_all("binance", PAYLOADS "/binance/api_v3_ticker_bookTicker"
		      ".array.docs-example.json", q, 1, &st, &err);
	ck_assert_int_eq(st, MK_ETOOBIG);
	ck_assert_uint_eq(n, 0);
	n = parse_all("kraken", PAYLOADS "/kraken/synthetic_two_pairs.json",
		      q, 8, &st, &err);
	ck_assert_int_eq(st, MK_OK);
	ck_assert_uint_eq(n, 3);
	ck_assert_str_eq(q[1].market, "XETHZUSD");
	n = parse_all("pyth", PAYLOADS "/pyth/v2_updates_price_latest_BTCUSD_"
		      "0xc964.docs-example.json", q, 8, &st, &err);
	ck_assert_int_eq(st, MK_OK);
	ck_assert_uint_eq(n, 2);
	ck_assert_str_eq(q[1].market, "c96458d393fe9deb7a7d63a0ac41e2898a67a7750dbd166673279e06c868df0a");
	n = parse_all("coinbase", PAYLOADS "/coinbase/synthetic_exchange_"
		      "ticker_BTC-USD.json", q, 8, &st, &err);
	ck_assert_int_eq(st, MK_OK);
	ck_assert_uint_eq(n, 1);
	ck_assert_str_eq(q[0].market, "");
	/* Entries without a usable price are skipped, not errors. */
	n = parse_all("bybit", PAYLOADS "/bybit/v5_market_tickers_option"
		      ".docs-example.json", q, 8, &st, &err);
	ck_assert_int_eq(st, MK_OK);
	ck_assert_uint_eq(n, 1);
	n = parse_all("binance", PAYLOADS "/binance/bad_one_sided.json", q, 8,
		      &st, &err);
	ck_assert_int_eq(st, MK_ENOTFOUND);
	ck_assert_uint_eq(n, 0);
	n = parse_all("binance", PAYLOADS "/binance/bad_two_entries.json", q,
		      8, &st, &err);
	ck_assert_int_eq(st, MK_EPARSE);
	ck_assert_uint_eq(n, 0);
}
END_TEST

START_TEST(test_json_market_placeholder_needs_market)
{
	const struct feed_adapter *a = feed_adapter_find("json");
	struct feed_adapter_opts *o = compile_opts(a,
		"{\"path\":\"/p\",\"price\":\"/r/{market}\"}");
	struct feed_quote q[1];
	struct mk_err err = { 0 };
	size_t n;

	ck_assert_int_eq(feed_adapter_parse(a, o, NULL, "{\"r\":{}}", 8, q, 1,
					    &n, &err), MK_EINVAL);
	feed_adapter_opts_destroy(o);
}
END_TEST

/* --- the single price ------------------------------------------------------- */

START_TEST(test_quote_price)
{
	/* want NULL: the mid does not fit (MK_ERANGE). */
	static const struct {
		int64_t bm; int bs; int64_t am; int as; const char *want;
	} t[] = {
		{ 101, 2, 102, 2, "1.015" },
		{ 100, 2, 102, 2, "1.01" },
		{ 1, 0, 2, 0, "1.5" },
		{ 60741670, 3, 6074168, 2, "60741.675" },
		{ 5, 1, 70, 2, "0.60" },
		{ -3, 0, 4, 0, "0.5" },
		/* At 18 digits there is no room for one more: half-even. */
		{ 1, 18, 2, 18, "0.000000000000000002" },
		{ 1, 18, 4, 18, "0.000000000000000002" },
		{ 3, 18, 4, 18, "0.000000000000000004" },
		/* The sum overflows 64 bits: bid + (ask - bid) / 2. */
		{ INT64_MAX - 2, 0, INT64_MAX, 0, "9223372036854775806" },
		{ INT64_MAX - 1, 0, INT64_MAX, 0, NULL },
	};

	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		struct agg_quote q = { 0 };
		struct mk_dec p;
		char buf[MK_DEC_STRLEN];
		enum mk_status st;

		q.bid = MK_DEC(t[i].bm, t[i].bs);
		q.ask = MK_DEC(t[i].am, t[i].as);
		q.has_bid = q.has_ask = true;
		/* last never wins over a bid/ask pair */
		q.last = MK_DEC(7, 0);
		q.has_last = true;
		st = feed_quote_price(&q, &p);
		if (t[i].want == NULL) {
			ck_assert_msg(st == MK_ERANGE, "case %zu", i);
			continue;
		}
		ck_assert_msg(st == MK_OK, "case %zu", i);
		mk_dec_format(p, buf, sizeof(buf));
		ck_assert_msg(strcmp(buf, t[i].want) == 0, "case %zu: %s", i,
			      buf);
	}
	{
		struct agg_quote q = { .bid = MK_DEC(1, 0), .has_bid = true };
		struct mk_dec p;

		ck_assert_int_eq(feed_quote_price(&q, &p), MK_ENOTFOUND);
		q.last = MK_DEC(4200, 2);
		q.has_last = true;
		ck_assert_int_eq(feed_quote_price(&q, &p), MK_OK);
		ck_assert_int_eq(mk_dec_cmp(p, MK_DEC(42, 0)), 0);
		ck_assert_int_eq(p.scale, 2);
	}
}
END_TEST

/* --- RFC 3339 ------------------------------------------------------------ */

START_TEST(test_rfc3339_parse)
{
	static const struct { const char *s; int64_t ms; } ok[] = {
		{ "1970-01-01T00:00:00Z", 0 },
		{ "2024-05-03T14:21:41Z", INT64_C(1714746101000) },
		{ "2024-05-03T14:21:41.123456Z", INT64_C(1714746101123) },
		{ "2024-05-03t14:21:41.1z", INT64_C(1714746101100) },
		{ "2024-05-03 16:21:41+02:00", INT64_C(1714746101000) },
		{ "2024-05-03T09:51:41-04:30", INT64_C(1714746101000) },
		{ "2024-02-29T00:00:00Z", INT64_C(1709164800000) },
		{ "2000-02-29T23:59:59.999Z", INT64_C(951868799999) },
		{ "2016-12-31T23:59:60Z", INT64_C(1483228800000) },
		{ "9999-12-31T23:59:59.999Z", FEED_TS_MAX_MS },
	};
	static const char *const bad[] = {
		"", "2024-05-03", "2024-05-03T14:21:41", "2024-5-3T14:21:41Z",
		"2023-02-29T00:00:00Z", "1900-02-29T00:00:00Z",
		"2024-13-01T00:00:00Z", "2024-04-31T00:00:00Z",
		"2024-05-03T24:00:00Z", "2024-05-03T14:60:00Z",
		"2024-05-03T14:21:41.Z", "2024-05-03T14:21:41ZZ",
		"2024-05-03T14:21:41+0200", "2024-05-03T14:21:41+24:00",
		"1969-12-31T23:59:59Z", "1970-01-01T00:00:00+00:01",
		"1714746101", "2024-05-03T14:21:41\"Z",
	};

	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		int64_t ms = -1;
		struct mk_err err = { 0 };

		ck_assert_msg(feed_rfc3339_parse_ms(ok[i].s, strlen(ok[i].s),
						    &ms, &err) == MK_OK,
			      "%s: %s", ok[i].s, err.msg);
		ck_assert_int_eq(ms, ok[i].ms);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int64_t ms = -1;
		struct mk_err err = { 0 };

		ck_assert_msg(feed_rfc3339_parse_ms(bad[i], strlen(bad[i]),
						    &ms, &err) == MK_EPARSE,
			      "%s accepted", bad[i]);
		ck_assert_int_eq(ms, -1);
		ck_assert(starts_with(err.msg, "not an RFC 3339 time"));
	}
}
END_TEST

/* format then parse gives the same instant, over random instants and the
 * ends of the range; and the text matches gmtime-free expectations. */
START_TEST(test_rfc3339_roundtrip)
{
	struct tu_rng rng = TU_RNG_INIT(3339);
	char buf[FEED_RFC3339_STRLEN];

	ck_assert_uint_eq(feed_rfc3339_format_ms(INT64_C(1714746101123), buf,
						 sizeof(buf)), 24);
	ck_assert_str_eq(buf, "2024-05-03T14:21:41.123Z");
	ck_assert_uint_eq(feed_rfc3339_format_ms(FEED_TS_MAX_MS, buf,
						 sizeof(buf)), 24);
	ck_assert_str_eq(buf, "9999-12-31T23:59:59.999Z");
	ck_assert_uint_eq(feed_rfc3339_format_ms(-1, buf, sizeof(buf)), 0);
	ck_assert_uint_eq(feed_rfc3339_format_ms(FEED_TS_MAX_MS + 1, buf,
						 sizeof(buf)), 0);
	ck_assert_uint_eq(feed_rfc3339_format_ms(0, buf, 10), 0);
	for (int i = 0; i < 100000; i++) {
		int64_t ms = tu_rng_range(&rng, 0, FEED_TS_MAX_MS), back = -1;

		ck_assert_uint_eq(feed_rfc3339_format_ms(ms, buf, sizeof(buf)),
				  24);
		ck_assert_int_eq(feed_rfc3339_parse_ms(buf, 24, &back, NULL),
				 MK_OK);
		ck_assert_int_eq(back, ms);
	}
}
END_TEST

/* --- markd-parse ------------------------------------------------------------ */

struct run {
	int status;
	char out[4096], err[4096];
};

static void
read_back(int fd, char *buf, size_t cap)
{
	ssize_t got;

	ck_assert(lseek(fd, 0, SEEK_SET) == 0);
	got = read(fd, buf, cap - 1);
	ck_assert(got >= 0);
	buf[got] = '\0';
	close(fd);
}

/* Runs the built markd-parse with args (NULL-terminated, without argv[0])
 * and collects its exit status and output. */
static void
run_parse(const char *const *args, struct run *r)
{
	char prog[4096], o_tmpl[] = "/tmp/markd-parse-outXXXXXX";
	char e_tmpl[] = "/tmp/markd-parse-errXXXXXX";
	const char *argv[16];
	int ofd, efd, wst;
	size_t n = 0;
	pid_t pid;

	tu_buildpath(prog, sizeof(prog), "tools/markd-parse");
	argv[n++] = prog;
	while (*args != NULL && n < 15)
		argv[n++] = *args++;
	argv[n] = NULL;
	ofd = mkstemp(o_tmpl);
	efd = mkstemp(e_tmpl);
	ck_assert(ofd >= 0 && efd >= 0);
	unlink(o_tmpl);
	unlink(e_tmpl);
	pid = fork();
	ck_assert(pid >= 0);
	if (pid == 0) {
		dup2(ofd, 1);
		dup2(efd, 2);
		execv(prog, (char *const *)argv);
		_exit(127);
	}
	ck_assert(waitpid(pid, &wst, 0) == pid);
	ck_assert_msg(WIFEXITED(wst), "markd-parse did not exit normally");
	r->status = WEXITSTATUS(wst);
	read_back(ofd, r->out, sizeof(r->out));
	read_back(efd, r->err, sizeof(r->err));
}

static const char *
fixture_path(char *buf, size_t cap, const char *rel)
{
	char tmp[512];

	snprintf(tmp, sizeof(tmp), PAYLOADS "/%s", rel);
	return tu_srcpath(buf, cap, tmp);
}

START_TEST(test_markd_parse_ok)
{
	char path[4400], want[2048], exp_path[4400];
	struct run r;
	size_t len;
	char *expect;
	const char *args[] = { "--adapter", "binance", "--market", "BTCUSDT",
			       NULL, NULL };

	args[4] = fixture_path(path, sizeof(path), "binance/api_v3_ticker_"
			       "bookTicker_BTCUSDT.nautilus.json");
	run_parse(args, &r);
	ck_assert_int_eq(r.status, 0);
	expect = slurp(fixture_path(exp_path, sizeof(exp_path),
				    "binance/api_v3_ticker_bookTicker_"
				    "BTCUSDT.nautilus.expect"), &len);
	ck_assert_ptr_nonnull(expect);
	ck_assert(expect_get(expect, "result", want, sizeof(want)));
	strcat(want, "\n");
	ck_assert_str_eq(r.out, want);
	ck_assert_str_eq(r.err, "");
	free(expect);
}
END_TEST

START_TEST(test_markd_parse_json_options)
{
	char path[4400];
	struct run r;
	const char *args[] = {
		"-a", "json", "-m", "ETH-BTC", "-o",
		"{\"path\":\"/l1?s={market}\",\"bid\":\"/data/bestBid\","
		"\"ask\":\"/data/bestAsk\"}", NULL, NULL,
	};

	args[6] = fixture_path(path, sizeof(path), "kucoin/api_v1_market_"
			       "orderbook_level1.docs-example.json");
	run_parse(args, &r);
	ck_assert_int_eq(r.status, 0);
	ck_assert(strstr(r.out, "\"price\":\"0.03712886\"") != NULL);
	args[5] = "{\"path\":\"/l1\"}";
	run_parse(args, &r);
	ck_assert_int_eq(r.status, 2);
	ck_assert(strstr(r.err, "options.price: missing") != NULL);
	args[5] = "{not json";
	run_parse(args, &r);
	ck_assert_int_eq(r.status, 2);
}
END_TEST

START_TEST(test_markd_parse_venue_errors)
{
	static const struct { const char *adapter, *market, *file, *msg; } t[] = {
		{ "binance", "BTCUSDT", "binance/error_418_-1003_ip_banned"
		  ".issue.json", "markd-parse: binance: error -1003" },
		{ "kraken", "XBTUSD", "kraken/error_too_many_requests.issue"
		  ".json", "markd-parse: kraken: EGeneral:Too many requests" },
		{ "binance", "BTCUSDT", "binance/bad_nan.json",
		  "markd-parse: binance: field \"bidPrice\"" },
		{ "binance", "BTCUSDT", "binance/bad_empty_body.json",
		  "markd-parse: binance: empty body" },
		{ "okx", "BTC-USDT", "okx/api_v5_market_ticker_BTC-USD-SWAP"
		  ".docs-example.json", "markd-parse: okx: the answer has no "
		  "entry for market \"BTC-USDT\"" },
	};

	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		char path[4400];
		struct run r;
		const char *args[] = { "--adapter", t[i].adapter, "--market",
				       t[i].market, NULL, NULL };

		args[4] = fixture_path(path, sizeof(path), t[i].file);
		run_parse(args, &r);
		ck_assert_msg(r.status == 1, "case %zu: exit %d", i, r.status);
		ck_assert_str_eq(r.out, "");
		ck_assert_msg(starts_with(r.err, t[i].msg), "case %zu: %s", i,
			      r.err);
		/* One line. */
		ck_assert_ptr_eq(strchr(r.err, '\n'), r.err + strlen(r.err) - 1);
	}
}
END_TEST

START_TEST(test_markd_parse_usage)
{
	char path[4400];
	struct run r;
	const char *f = fixture_path(path, sizeof(path), "binance/api_v3_"
				     "ticker_price_BTCUSDT.nautilus.json");
	const char *unknown[] = { "--adapter", "bnb", "--market", "X", f,
				  NULL };
	const char *no_market[] = { "--adapter", "binance", f, NULL };
	const char *no_adapter[] = { "--market", "BTCUSDT", f, NULL };
	const char *no_file[] = { "--adapter", "binance", "--market", "X",
				  NULL };
	const char *two_files[] = { "--adapter", "binance", "--market", "X",
				    f, f, NULL };
	const char *missing[] = { "--adapter", "binance", "--market", "X",
				  "/nonexistent/markd/body.json", NULL };
	const char *bad_opt[] = { "--bogus", NULL };
	const char *help[] = { "--help", NULL };

	run_parse(unknown, &r);
	ck_assert_int_eq(r.status, 2);
	ck_assert(strstr(r.err, "unknown adapter \"bnb\" (known: binance, "
			 "bitfinex,") != NULL);
	run_parse(no_market, &r);
	ck_assert_int_eq(r.status, 2);
	ck_assert(strstr(r.err, "--market is required") != NULL);
	run_parse(no_adapter, &r);
	ck_assert_int_eq(r.status, 2);
	run_parse(no_file, &r);
	ck_assert_int_eq(r.status, 2);
	run_parse(two_files, &r);
	ck_assert_int_eq(r.status, 2);
	run_parse(missing, &r);
	ck_assert_int_eq(r.status, 2);
	ck_assert(strstr(r.err, "No such file") != NULL);
	run_parse(bad_opt, &r);
	ck_assert_int_eq(r.status, 2);
	run_parse(help, &r);
	ck_assert_int_eq(r.status, 0);
	ck_assert(strstr(r.out, "usage: markd-parse") != NULL);
	ck_assert(strstr(r.out, "  pyth ") != NULL);
	ck_assert_str_eq(r.err, "");
}
END_TEST

static Suite *
adapters_suite(void)
{
	Suite *s = suite_create("adapters");
	TCase *tc;
	int na = (int)feed_adapter_count();

	scan_fixtures();
	tc = tcase_create("fixtures");
	tcase_add_test(tc, test_registry);
	tcase_add_test(tc, test_fixture_count);
	tcase_add_loop_test(tc, test_fixture, 0, (int)ncases);
	suite_add_tcase(s, tc);

	tc = tcase_create("damaged");
	tcase_set_timeout(tc, 600);
	tcase_add_loop_test(tc, test_fixture_truncated, 0, (int)ncases);
	tcase_add_loop_test(tc, test_fixture_mutated, 0, (int)ncases);
	tcase_add_loop_test(tc, test_malformed_every_adapter, 0, na);
	tcase_add_loop_test(tc, test_bad_values_every_adapter, 0, na);
	tcase_add_test(tc, test_parse_arguments);
	suite_add_tcase(s, tc);

	tc = tcase_create("urls_options");
	tcase_add_test(tc, test_urls);
	tcase_add_test(tc, test_url_json_template);
	tcase_add_test(tc, test_url_errors);
	tcase_add_loop_test(tc, test_options_plain_adapters, 0, na);
	tcase_add_test(tc, test_options_json);
	tcase_add_test(tc, test_json_pointers);
	suite_add_tcase(s, tc);

	tc = tcase_create("results");
	tcase_add_test(tc, test_every_market);
	tcase_add_test(tc, test_json_market_placeholder_needs_market);
	tcase_add_test(tc, test_quote_price);
	tcase_add_test(tc, test_rfc3339_parse);
	tcase_add_test(tc, test_rfc3339_roundtrip);
	suite_add_tcase(s, tc);

	tc = tcase_create("markd_parse");
	tcase_add_test(tc, test_markd_parse_ok);
	tcase_add_test(tc, test_markd_parse_json_options);
	tcase_add_test(tc, test_markd_parse_venue_errors);
	tcase_add_test(tc, test_markd_parse_usage);
	suite_add_tcase(s, tc);
	return s;
}

TU_MAIN(adapters_suite)
