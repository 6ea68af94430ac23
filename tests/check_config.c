/*
 * check_config.c - the config loader (daemon/cfg.h) and markd's
 * command line.
 *
 * Fixtures: tests/data/config/good/ must load, tests/data/config/bad/X.json
 * must fail with exactly the errors listed in X.expect (see the README
 * there). Inline configs cover what needs a look inside the loaded struct:
 * defaults and overrides, weights, cum derivation, quote conversions.
 */
#include "config.h"

#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "daemon/cfg.h"
#include "tests/testutil.h"

#define PATH_LEN 1024

/* ---- helpers ---- */

/* An error as markd --check-config prints it after "FILE: ". */
static const char *
render(const struct cfg_error *e, char *buf, size_t cap)
{
	if (e->line > 0)
		snprintf(buf, cap, "%d:%d: %s", e->line, e->column, e->msg);
	else if (e->path[0] != '\0')
		snprintf(buf, cap, "%s: %s", e->path, e->msg);
	else
		snprintf(buf, cap, "%s", e->msg);
	return buf;
}

static void
dump_errors(const char *what, const struct cfg_errors *errs)
{
	char line[CFG_PATH_MAX + CFG_MSG_MAX + 32];

	for (size_t i = 0; i < errs->count; i++)
		fprintf(stderr, "%s: %s\n", what,
			render(&errs->e[i], line, sizeof(line)));
}

/* The index of the first error containing fragment, or -1. */
static long
find_error(const struct cfg_errors *errs, const char *fragment)
{
	char line[CFG_PATH_MAX + CFG_MSG_MAX + 32];

	for (size_t i = 0; i < errs->count; i++)
		if (strstr(render(&errs->e[i], line, sizeof(line)),
			      fragment) != NULL)
			return (long)i;
	return -1;
}

static struct cfg *
load_ok_buffer(const char *json)
{
	static struct cfg_errors errs;
	struct cfg *cfg = NULL;
	enum mk_status st = cfg_load_buffer(json, strlen(json), &cfg, &errs);

	if (st != MK_OK)
		dump_errors("inline", &errs);
	ck_assert_int_eq(st, MK_OK);
	ck_assert_uint_eq(errs.count, 0);
	ck_assert_ptr_nonnull(cfg);
	return cfg;
}

/* Loads json expecting failure; errs receives the errors. */
static void
load_bad_buffer(const char *json, struct cfg_errors *errs)
{
	struct cfg *cfg = (struct cfg *)1;
	enum mk_status st = cfg_load_buffer(json, strlen(json), &cfg, errs);

	ck_assert_int_eq(st, MK_ECONFIG);
	ck_assert_ptr_null(cfg);
	ck_assert_uint_gt(errs->count, 0);
}

static struct mk_dec
dec(const char *s)
{
	struct mk_dec d;

	ck_assert_int_eq(mk_dec_parse(s, strlen(s), &d, NULL), MK_OK);
	return d;
}

static void
assert_dec_eq(struct mk_dec got, const char *want)
{
	char buf[MK_DEC_STRLEN];

	mk_dec_format(got, buf, sizeof(buf));
	ck_assert_msg(mk_dec_cmp(got, dec(want)) == 0, "got %s, want %s",
		      buf, want);
}

/* Three sources every inline config can use. */
#define SOURCES \
	"\"sources\": [" \
	"{\"name\": \"a\", \"adapter\": \"binance\", " \
	"\"base_url\": \"http://127.0.0.1:8701/binance\"}," \
	"{\"name\": \"b\", \"adapter\": \"coinbase\", " \
	"\"base_url\": \"http://127.0.0.1:8701/coinbase\", \"weight\": \"2.5\"}," \
	"{\"name\": \"c\", \"adapter\": \"kraken\", " \
	"\"base_url\": \"http://127.0.0.1:8701/kraken\"}]"

/* ---- shipped configs ---- */

static struct cfg *
load_conf(const char *rel)
{
	static struct cfg_errors errs;
	char path[PATH_LEN];
	struct cfg *cfg = NULL;
	enum mk_status st;

	st = cfg_load(tu_srcpath(path, sizeof(path), rel), &cfg, &errs);
	if (st != MK_OK)
		dump_errors(rel, &errs);
	ck_assert_msg(st == MK_OK, "%s: %s", rel, mk_strstatus(st));
	return cfg;
}

static void
check_shipped_instruments(const struct cfg *cfg)
{
	static const char *const symbols[] = {
		"BTC-USD", "ETH-USD", "USDT-USD", "USDC-USD",
	};
	int usdt = cfg_instrument_index(cfg, "USDT-USD");
	size_t converted = 0;

	ck_assert_uint_eq(cfg->ninstruments, 4);
	for (size_t i = 0; i < 4; i++) {
		int ix = cfg_instrument_index(cfg, symbols[i]);

		ck_assert_msg(ix >= 0, "%s missing", symbols[i]);
		ck_assert_uint_ge(cfg->specs[ix].nlegs,
				  cfg->specs[ix].params.min_sources);
		ck_assert_uint_ge(cfg->specs[ix].params.min_sources, 3);
	}
	/* Every USDT-quoted leg goes through USDT-USD, none is taken as 1. */
	for (size_t i = 0; i < cfg->ninstruments; i++) {
		for (size_t k = 0; k < cfg->specs[i].nlegs; k++) {
			const struct agg_leg_spec *leg = &cfg->specs[i].legs[k];

			if (strcmp(cfg->instruments[i].legs[k].quote,
				   "USDT") == 0) {
				ck_assert_int_eq(leg->convert_via, usdt);
				converted++;
			} else {
				ck_assert_int_eq(leg->convert_via, -1);
			}
		}
	}
	ck_assert_uint_ge(converted, 8);
	/* BTC-USD carries the brackets of margin-vectors.md. */
	ck_assert_uint_eq(cfg->instruments[cfg_instrument_index(cfg,
			  "BTC-USD")].margin.nbrackets, 5);
}

START_TEST(test_demo_config)
{
	struct cfg *cfg = load_conf("conf/demo.json");
	int usdt = cfg_instrument_index(cfg, "USDT-USD");
	int usdc = cfg_instrument_index(cfg, "USDC-USD");
	size_t converted = 0;

	/* what markd-fakex serves with conf/fakex-demo.json: BTC in USD,
	 * USDT and USDC, and both stablecoins (no ETH recording) */
	ck_assert_uint_eq(cfg->ninstruments, 3);
	ck_assert_int_ge(cfg_instrument_index(cfg, "BTC-USD"), 0);
	ck_assert_int_ge(usdt, 0);
	ck_assert_int_ge(usdc, 0);
	for (size_t i = 0; i < cfg->ninstruments; i++) {
		ck_assert_uint_ge(cfg->specs[i].nlegs,
				  cfg->specs[i].params.min_sources);
		for (size_t k = 0; k < cfg->specs[i].nlegs; k++) {
			const char *q = cfg->instruments[i].legs[k].quote;
			int via = cfg->specs[i].legs[k].convert_via;

			if (strcmp(q, "USDT") == 0 && (int)i != usdt)
				ck_assert_int_eq(via, usdt);
			if (strcmp(q, "USDC") == 0 && (int)i != usdc)
				ck_assert_int_eq(via, usdc);
			converted += via >= 0;
		}
	}
	ck_assert_uint_ge(converted, 8);
	ck_assert_uint_eq(cfg->nsources, 10);
	for (size_t i = 0; i < cfg->nsources; i++) {
		char want[128];

		/* markd-fakex: one port, one path prefix per venue. */
		snprintf(want, sizeof(want), "http://127.0.0.1:8701/%s",
			 cfg->sources[i].name);
		ck_assert_str_eq(cfg->sources[i].base_url, want);
		ck_assert(cfg->sources[i].enabled);
	}
	ck_assert_str_eq(cfg->listen_host, "127.0.0.1");
	cfg_free(cfg);
}
END_TEST

START_TEST(test_real_config)
{
	static const char *const hosts[] = {
		"https://api.binance.com", "https://api.exchange.coinbase.com",
		"https://api.kraken.com", "https://www.bitstamp.net",
		"https://www.okx.com", "https://api.bybit.com",
		"https://api.gemini.com", "https://api.kucoin.com",
		"https://api-pub.bitfinex.com", "https://hermes.pyth.network",
	};
	struct cfg *cfg = load_conf("conf/markd.json");

	check_shipped_instruments(cfg);
	ck_assert_uint_eq(cfg->nsources, 10);
	for (size_t i = 0; i < 10; i++) {
		bool found = false;

		for (size_t j = 0; j < cfg->nsources; j++)
			found = found ||
				strcmp(cfg->sources[j].base_url, hosts[i]) == 0;
		ck_assert_msg(found, "no source polls %s", hosts[i]);
	}
	ck_assert_str_eq(cfg->listen_host, "127.0.0.1");
	ck_assert_ptr_nonnull(cfg->token_file);
	cfg_free(cfg);
}
END_TEST

/* ---- fixture folders ---- */

static bool
has_suffix(const char *s, const char *suffix)
{
	size_t n = strlen(s), m = strlen(suffix);

	return n > m && strcmp(s + n - m, suffix) == 0;
}

/* Calls fn for each *.json in the fixture folder rel; returns the count. */
static size_t
each_fixture(const char *rel, void (*fn)(const char *dir, const char *name))
{
	char dir[PATH_LEN];
	DIR *d = opendir(tu_srcpath(dir, sizeof(dir), rel));
	struct dirent *de;
	size_t n = 0;

	ck_assert_msg(d != NULL, "%s: %s", dir, strerror(errno));
	while ((de = readdir(d)) != NULL) {
		if (!has_suffix(de->d_name, ".json"))
			continue;
		fn(dir, de->d_name);
		n++;
	}
	closedir(d);
	return n;
}

static void
good_one(const char *dir, const char *name)
{
	static struct cfg_errors errs;
	char path[PATH_LEN];
	struct cfg *cfg = NULL;
	enum mk_status st;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	st = cfg_load(path, &cfg, &errs);
	if (st != MK_OK)
		dump_errors(name, &errs);
	ck_assert_msg(st == MK_OK, "%s: %s", name, mk_strstatus(st));
	cfg_free(cfg);
}

START_TEST(test_good_fixtures)
{
	ck_assert_uint_ge(each_fixture("tests/data/config/good", good_one), 2);
}
END_TEST

static void
bad_one(const char *dir, const char *name)
{
	static struct cfg_errors errs;
	char path[PATH_LEN], line[512];
	bool used[CFG_MAX_ERRORS] = { false };
	struct cfg *cfg = (struct cfg *)1;
	size_t nexpect = 0;
	enum mk_status st;
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	st = cfg_load(path, &cfg, &errs);
	ck_assert_msg(st == MK_ECONFIG || st == MK_EPARSE,
		      "%s: loaded (%s)", name, mk_strstatus(st));
	ck_assert_ptr_null(cfg);

	snprintf(path + strlen(path) - 5, 8, ".expect");
	f = fopen(path, "r");
	ck_assert_msg(f != NULL, "%s: %s", path, strerror(errno));
	while (fgets(line, sizeof(line), f) != NULL) {
		char got[CFG_PATH_MAX + CFG_MSG_MAX + 32];
		bool found = false;

		line[strcspn(line, "\n")] = '\0';
		if (line[0] == '\0')
			continue;
		nexpect++;
		for (size_t i = 0; i < errs.count && !found; i++) {
			if (used[i] || strstr(render(&errs.e[i], got,
					      sizeof(got)), line) == NULL)
				continue;
			used[i] = found = true;
		}
		if (!found)
			dump_errors(name, &errs);
		ck_assert_msg(found, "%s: no error matches \"%s\"", name, line);
	}
	fclose(f);
	if (errs.count != nexpect)
		dump_errors(name, &errs);
	ck_assert_msg(nexpect > 0, "%s: empty .expect", name);
	ck_assert_msg(errs.count == nexpect && errs.total == nexpect,
		      "%s: %zu errors, %zu expected", name, errs.count,
		      nexpect);
}

START_TEST(test_bad_fixtures)
{
	ck_assert_uint_ge(each_fixture("tests/data/config/bad", bad_one), 20);
}
END_TEST

/* ---- error collection ---- */

START_TEST(test_errors_collected_and_capped)
{
	static struct cfg_errors errs;
	size_t cap = 100 * 160 + 512, used = 0;
	char *json = malloc(cap);
	struct cfg *cfg = NULL;

	ck_assert_ptr_nonnull(json);
	used += (size_t)snprintf(json + used, cap - used, "{\"sources\": [");
	for (int i = 0; i < 100; i++)
		used += (size_t)snprintf(json + used, cap - used,
			"%s{\"name\": \"s%d\", \"adapter\": \"binance\", "
			"\"base_url\": \"http://x\", \"bogus\": %d}",
			i ? "," : "", i, i);
	snprintf(json + used, cap - used, "], \"instruments\": [{\"symbol\": "
		 "\"BTC-USD\", \"min_sources\": 1, \"legs\": [{\"source\": "
		 "\"s0\", \"market\": \"BTCUSDT\"}]}]}");
	ck_assert_uint_lt(used, cap);

	ck_assert_int_eq(cfg_load_buffer(json, strlen(json), &cfg, &errs),
			 MK_ECONFIG);
	ck_assert_ptr_null(cfg);
	ck_assert_uint_eq(errs.count, CFG_MAX_ERRORS);
	ck_assert_uint_eq(errs.total, 100);
	ck_assert_str_eq(errs.e[0].path, "sources[0].bogus");
	ck_assert_str_eq(errs.e[63].path, "sources[63].bogus");

	/* Without an error list the status is the same. */
	ck_assert_int_eq(cfg_load_buffer(json, strlen(json), &cfg, NULL),
			 MK_ECONFIG);
	ck_assert_ptr_null(cfg);
	free(json);
}
END_TEST

START_TEST(test_syntax_error_position)
{
	static const char json[] = "{\n  \"listen\": \"127.0.0.1:1\",\n"
				   "  \"sources\": [ } \n}";
	static struct cfg_errors errs;
	struct cfg *cfg = NULL;

	ck_assert_int_eq(cfg_load_buffer(json, sizeof(json) - 1, &cfg, &errs),
			 MK_EPARSE);
	ck_assert_uint_eq(errs.count, 1);
	ck_assert_int_eq(errs.e[0].line, 3);
	ck_assert_int_gt(errs.e[0].column, 0);
	ck_assert_ptr_nonnull(strstr(errs.e[0].msg, "invalid JSON"));

	/* Not NUL-terminated: only the first len bytes count. */
	ck_assert_int_eq(cfg_load_buffer("{}xyz", 2, &cfg, &errs), MK_ECONFIG);
	ck_assert_int_ge(find_error(&errs, "sources: required"), 0);
}
END_TEST

START_TEST(test_file_errors)
{
	static struct cfg_errors errs;
	static char block[65536];
	char path[] = "/tmp/check_config_XXXXXX";
	struct cfg *cfg = (struct cfg *)1;
	FILE *f;
	int fd;

	ck_assert_int_eq(cfg_load("/nonexistent/markd.json", &cfg, &errs),
			 MK_EIO);
	ck_assert_ptr_null(cfg);
	ck_assert_uint_eq(errs.count, 1);
	ck_assert_ptr_nonnull(strstr(errs.e[0].msg, "cannot open"));

	/* One byte over the cap is refused before parsing. */
	fd = mkstemp(path);
	ck_assert_int_ge(fd, 0);
	f = fdopen(fd, "w");
	ck_assert_ptr_nonnull(f);
	memset(block, ' ', sizeof(block));
	block[0] = '{';
	for (size_t i = 0; i < CFG_FILE_MAX / sizeof(block); i++) {
		ck_assert_uint_eq(fwrite(block, 1, sizeof(block), f),
				  sizeof(block));
		block[0] = ' ';
	}
	ck_assert_int_eq(fputc('}', f), '}');
	ck_assert_int_eq(fclose(f), 0);
	ck_assert_int_eq(cfg_load(path, &cfg, &errs), MK_ETOOBIG);
	ck_assert_ptr_null(cfg);
	ck_assert_ptr_nonnull(strstr(errs.e[0].msg, "larger than"));
	unlink(path);
}
END_TEST

/* ---- what a loaded config holds ---- */

START_TEST(test_defaults_and_overrides)
{
	struct agg_params def;
	struct cfg *cfg = load_ok_buffer("{" SOURCES ","
		"\"defaults\": {\"max_age_ms\": 5000, \"min_sources\": 1,"
		"               \"ema_window_ms\": 20000},"
		"\"instruments\": ["
		"{\"symbol\": \"BTC-USD\", \"legs\": ["
		"  {\"source\": \"a\", \"market\": \"BTCUSD\"},"
		"  {\"source\": \"b\", \"market\": \"BTC-USD\"},"
		"  {\"source\": \"c\", \"market\": \"XBTUSD\", \"weight\": \"0.1234\"}]},"
		"{\"symbol\": \"ETH-USD\", \"max_age_ms\": 7000, \"scale\": 2,"
		" \"max_deviation_bps\": 50, \"min_sources\": 2, \"legs\": ["
		"  {\"source\": \"a\", \"market\": \"ETHUSD\", \"weight\": 3},"
		"  {\"source\": \"b\", \"market\": \"ETH-USD\"}]}]}");
	const struct agg_params *btc = &cfg->specs[0].params;
	const struct agg_params *eth = &cfg->specs[1].params;

	agg_params_default(&def);
	/* "defaults" replaces the built-in values... */
	ck_assert_int_eq(btc->max_age_ms, 5000);
	ck_assert_int_eq(btc->ema_window_ms, 20000);
	ck_assert_uint_eq(btc->min_sources, 1);
	/* ...and leaves the others alone... */
	ck_assert_int_eq(btc->scale, def.scale);
	ck_assert_uint_eq(btc->max_deviation_bps, def.max_deviation_bps);
	ck_assert_uint_eq(btc->max_conf_bps, def.max_conf_bps);
	ck_assert_uint_eq(btc->max_spread_bps, def.max_spread_bps);
	ck_assert_uint_eq(btc->too_volatile_ratio, def.too_volatile_ratio);
	ck_assert_uint_eq(btc->max_twap_deviation_bps,
			  def.max_twap_deviation_bps);
	ck_assert_int_eq(btc->max_skew_ms, def.max_skew_ms);
	ck_assert_int_eq(btc->twap_window_ms, def.twap_window_ms);
	ck_assert_int_eq(btc->vol_halflife_ms, def.vol_halflife_ms);
	/* ...and the instrument's own keys win over both. */
	ck_assert_int_eq(eth->max_age_ms, 7000);
	ck_assert_int_eq(eth->scale, 2);
	ck_assert_uint_eq(eth->max_deviation_bps, 50);
	ck_assert_uint_eq(eth->min_sources, 2);
	ck_assert_int_eq(eth->ema_window_ms, 20000);

	/* Leg weights: the source's unless given, in 1/10000. */
	ck_assert_uint_eq(cfg->specs[0].legs[0].weight, 10000);
	ck_assert_uint_eq(cfg->specs[0].legs[1].weight, 25000);
	ck_assert_uint_eq(cfg->specs[0].legs[2].weight, 1234);
	ck_assert_uint_eq(cfg->specs[1].legs[0].weight, 30000);
	ck_assert_str_eq(cfg->specs[0].legs[2].source, "c");
	ck_assert_str_eq(cfg->specs[0].legs[2].market, "XBTUSD");
	ck_assert_uint_eq(cfg->instruments[0].legs[2].source, 2);

	/* Margin defaults without a "margin" object. */
	ck_assert_uint_eq(cfg->instruments[0].margin.nbrackets, 0);
	ck_assert_uint_eq(cfg->instruments[0].margin.confirm_count, 3);
	ck_assert_int_eq(cfg->instruments[0].margin.confirm_ms, 3000);
	ck_assert_uint_eq(cfg->instruments[0].margin.safe_buffer_bps, 200);
	ck_assert_int_eq(cfg->instruments[0].margin.contract, CFG_LINEAR);
	ck_assert_str_eq(cfg->instruments[0].base, "BTC");
	ck_assert_str_eq(cfg->instruments[0].quote, "USD");
	cfg_free(cfg);
}
END_TEST

START_TEST(test_top_level_and_source_settings)
{
	struct cfg *cfg = load_ok_buffer("{" SOURCES ","
		"\"instruments\": [{\"symbol\": \"BTC-USD\", \"min_sources\": 1,"
		" \"legs\": [{\"source\": \"a\", \"market\": \"BTCUSD\"}]}]}");
	const struct cfg_source *a = &cfg->sources[0];
	char buf[256];

	ck_assert_str_eq(cfg->listen_host, "127.0.0.1");
	ck_assert_uint_eq(cfg->listen_port, 8080);
	ck_assert_int_eq(cfg->listen_addr.ss_family, AF_INET);
	ck_assert_ptr_null(cfg->token_file);
	ck_assert_str_eq(cfg->database, "markd.db");
	ck_assert_int_eq(cfg->log_level, CFG_LOG_INFO);
	ck_assert_int_eq(cfg->log_format, CFG_LOG_KV);
	ck_assert_uint_eq(cfg->http.max_connections, 1024);
	ck_assert_uint_eq(cfg->http.max_connections_per_ip, 64);
	ck_assert_uint_eq(cfg->http.connection_timeout_s, 10);
	ck_assert_uint_eq(cfg->http.max_body_bytes, 65536);
	ck_assert_uint_eq(cfg->http.connection_memory_bytes, 8192);

	ck_assert_str_eq(a->name, "a");
	ck_assert_ptr_nonnull(a->adapter);
	ck_assert_str_eq(a->base_url, "http://127.0.0.1:8701/binance");
	ck_assert_int_eq(a->interval_ms, 1000);
	ck_assert_int_eq(a->timeout_ms, 2000);
	ck_assert_uint_eq(a->weight, 10000);
	ck_assert_uint_eq(a->max_body_bytes, 262144);
	ck_assert(a->enabled);
	ck_assert_ptr_null(a->options);

	ck_assert_int_eq(cfg_source_index(cfg, "c"), 2);
	ck_assert_int_eq(cfg_source_index(cfg, "nope"), -1);
	ck_assert_int_eq(cfg_instrument_index(cfg, "BTC-USD"), 0);
	ck_assert_int_eq(cfg_instrument_index(cfg, "ETH-USD"), -1);
	cfg_summary(cfg, buf, sizeof(buf));
	ck_assert_str_eq(buf, "1 instrument, 3 sources (3 enabled), 1 leg, "
			 "listen 127.0.0.1:8080, database markd.db");
	ck_assert_str_eq(cfg_log_level_name(CFG_LOG_WARN), "warn");
	ck_assert_str_eq(cfg_log_format_name(CFG_LOG_JSON), "json");
	ck_assert_str_eq(cfg_contract_name(CFG_INVERSE), "inverse");
	cfg_free(cfg);
	cfg_free(NULL);
}
END_TEST

START_TEST(test_full_fixture_values)
{
	struct cfg *cfg = load_conf("tests/data/config/good/full.json");
	int gen = cfg_source_index(cfg, "gen");
	const struct cfg_margin *m = &cfg->instruments[0].margin;

	ck_assert_int_eq(cfg->listen_addr.ss_family, AF_INET6);
	ck_assert_str_eq(cfg->listen_host, "::1");
	ck_assert_uint_eq(cfg->listen_port, 0);
	ck_assert_str_eq(cfg->token_file, "tokens.txt");
	ck_assert_int_eq(cfg->log_level, CFG_LOG_DEBUG);
	ck_assert_int_eq(cfg->log_format, CFG_LOG_JSON);
	ck_assert_uint_eq(cfg->http.max_connections_per_ip, 10);
	ck_assert_uint_eq(cfg->http.connection_memory_bytes, 16384);
	/* Trailing slashes go; the scheme's case is kept. */
	ck_assert_str_eq(cfg->sources[0].base_url,
			 "http://127.0.0.1:8701/binance");
	ck_assert_str_eq(cfg->sources[1].base_url, "HTTPS://[::1]:8443/cb");
	ck_assert(!cfg->sources[cfg_source_index(cfg, "off")].enabled);
	/* The adapter's options stay with the source for the poller. */
	ck_assert(gen >= 0);
	ck_assert(json_is_object(cfg->sources[gen].options));
	ck_assert_str_eq(json_string_value(json_object_get(
		cfg->sources[gen].options, "path")), "/price?symbol={market}");
	ck_assert_uint_eq(cfg->specs[0].legs[5].weight, 1);
	ck_assert_int_eq(cfg->specs[0].params.scale, 2);
	ck_assert_int_eq(cfg->specs[1].params.scale, 6);
	/* Inverse brackets of margin-vectors.md, cum given and checked. */
	ck_assert_int_eq(m->contract, CFG_INVERSE);
	assert_dec_eq(m->contract_size, "100");
	ck_assert_uint_eq(m->nbrackets, 3);
	assert_dec_eq(m->brackets[1].cum, "0.025");
	assert_dec_eq(m->brackets[2].cum, "0.175");
	ck_assert_uint_eq(m->confirm_count, 1);
	ck_assert_int_eq(m->confirm_ms, 0);
	/* A leg whose "quote" is the instrument's own needs no conversion. */
	ck_assert_int_eq(cfg->specs[2].legs[0].convert_via, -1);
	cfg_free(cfg);
}
END_TEST

START_TEST(test_cum_derivation)
{
	/* The linear brackets of margin-vectors.md, without cum. */
	struct cfg *cfg = load_ok_buffer("{" SOURCES ","
		"\"instruments\": [{\"symbol\": \"BTC-USD\", \"min_sources\": 1,"
		" \"legs\": [{\"source\": \"a\", \"market\": \"BTCUSD\"}],"
		" \"margin\": {\"brackets\": ["
		"  {\"floor\": \"0\", \"cap\": \"50000\", \"mmr\": \"0.004\"},"
		"  {\"floor\": \"50000\", \"cap\": \"250000\", \"mmr\": 0.005},"
		"  {\"floor\": 250000, \"cap\": \"1000000\", \"mmr\": \"0.01\"},"
		"  {\"floor\": \"1000000\", \"cap\": \"10000000\", \"mmr\": \"0.025\"},"
		"  {\"floor\": \"10000000\", \"cap\": \"20000000\", \"mmr\": \"0.05\"}"
		"]}}]}");
	const struct cfg_margin *m = &cfg->instruments[0].margin;
	static const char *const cum[] = { "0", "50", "1300", "16300",
					   "266300" };

	ck_assert_uint_eq(m->nbrackets, 5);
	for (size_t k = 0; k < 5; k++)
		assert_dec_eq(m->brackets[k].cum, cum[k]);
	assert_dec_eq(m->brackets[1].mmr, "0.005");
	assert_dec_eq(m->brackets[2].floor, "250000");
	assert_dec_eq(m->brackets[4].cap, "20000000");
	cfg_free(cfg);
}
END_TEST

START_TEST(test_cum_continuity_error)
{
	static struct cfg_errors errs;

	load_bad_buffer("{" SOURCES ","
		"\"instruments\": [{\"symbol\": \"BTC-USD\", \"min_sources\": 1,"
		" \"legs\": [{\"source\": \"a\", \"market\": \"BTCUSD\"}],"
		" \"margin\": {\"brackets\": ["
		"  {\"floor\": \"0\", \"cap\": \"50000\", \"mmr\": \"0.004\", \"cum\": 0},"
		"  {\"floor\": \"50000\", \"cap\": \"250000\", \"mmr\": \"0.005\", \"cum\": \"49.99\"}"
		"]}}]}", &errs);
	ck_assert_uint_eq(errs.count, 1);
	ck_assert_str_eq(errs.e[0].path,
			 "instruments[0].margin.brackets[1].cum");
	ck_assert_ptr_nonnull(strstr(errs.e[0].msg, "49.99"));
	ck_assert_ptr_nonnull(strstr(errs.e[0].msg, "expected 50"));
}
END_TEST

START_TEST(test_quote_conversion)
{
	/* Conversion instruments may come after the legs that use them. */
	struct cfg *cfg = load_ok_buffer("{" SOURCES ","
		"\"defaults\": {\"min_sources\": 1},"
		"\"instruments\": ["
		"{\"symbol\": \"BTC-USD\", \"legs\": ["
		"  {\"source\": \"b\", \"market\": \"BTC-USD\"},"
		"  {\"source\": \"a\", \"market\": \"BTCUSDT\", \"quote\": \"USDT\"},"
		"  {\"source\": \"a\", \"market\": \"BTCUSDC\", \"quote\": \"USDC\"}]},"
		"{\"symbol\": \"USDC-USD\", \"legs\": ["
		"  {\"source\": \"c\", \"market\": \"USDCUSD\"},"
		"  {\"source\": \"a\", \"market\": \"USDCUSDT\", \"quote\": \"USDT\"}]},"
		"{\"symbol\": \"USDT-USD\", \"legs\": ["
		"  {\"source\": \"c\", \"market\": \"USDTUSD\"}]}]}");

	ck_assert_int_eq(cfg->specs[0].legs[0].convert_via, -1);
	ck_assert_int_eq(cfg->specs[0].legs[1].convert_via, 2);
	ck_assert_int_eq(cfg->specs[0].legs[2].convert_via, 1);
	ck_assert_int_eq(cfg->specs[1].legs[0].convert_via, -1);
	ck_assert_int_eq(cfg->specs[1].legs[1].convert_via, 2);
	ck_assert_int_eq(cfg->specs[2].legs[0].convert_via, -1);
	ck_assert_str_eq(cfg->instruments[0].legs[0].quote, "USD");
	ck_assert_str_eq(cfg->instruments[0].legs[1].quote, "USDT");
	cfg_free(cfg);
}
END_TEST

START_TEST(test_quote_conversion_missing)
{
	static struct cfg_errors errs;

	load_bad_buffer("{" SOURCES ","
		"\"instruments\": [{\"symbol\": \"BTC-EUR\", \"min_sources\": 1,"
		" \"legs\": [{\"source\": \"a\", \"market\": \"BTCUSDT\","
		" \"quote\": \"USDT\"}]},"
		"{\"symbol\": \"USDT-USD\", \"min_sources\": 1,"
		" \"legs\": [{\"source\": \"c\", \"market\": \"USDTUSD\"}]}]}",
		&errs);
	ck_assert_uint_eq(errs.count, 1);
	ck_assert_str_eq(errs.e[0].path, "instruments[0].legs[0].quote");
	ck_assert_str_eq(errs.e[0].msg, "no instrument \"USDT-EUR\" to "
			 "convert USDT into EUR");
}
END_TEST

START_TEST(test_listen_values)
{
	static const struct { const char *listen; int family; unsigned port; }
	good[] = {
		{ "0.0.0.0:80", AF_INET, 80 },
		{ "127.0.0.1:0", AF_INET, 0 },
		{ "[::1]:65535", AF_INET6, 65535 },
		{ "[::]:8080", AF_INET6, 8080 },
	};
	static const char *const bad[] = {
		"localhost:8080", "127.0.0.1", "127.0.0.1:65536", "127.0.0.1:",
		"127.0.0.1:-1", "[::1]8080", "[::1]", "::1:8080", "1.2.3:80",
		"[127.0.0.1]:80", ":80",
	};
	char json[512];

	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		struct cfg *cfg;

		snprintf(json, sizeof(json), "{\"listen\": \"%s\", " SOURCES
			 ", \"instruments\": [{\"symbol\": \"X-Y\", "
			 "\"min_sources\": 1, \"legs\": [{\"source\": \"a\", "
			 "\"market\": \"XY\"}]}]}", good[i].listen);
		cfg = load_ok_buffer(json);
		ck_assert_int_eq(cfg->listen_addr.ss_family, good[i].family);
		ck_assert_uint_eq(cfg->listen_port, good[i].port);
		cfg_free(cfg);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		static struct cfg_errors errs;

		snprintf(json, sizeof(json), "{\"listen\": \"%s\", " SOURCES
			 ", \"instruments\": [{\"symbol\": \"X-Y\", "
			 "\"min_sources\": 1, \"legs\": [{\"source\": \"a\", "
			 "\"market\": \"XY\"}]}]}", bad[i]);
		load_bad_buffer(json, &errs);
		ck_assert_msg(errs.count == 1 &&
			      strcmp(errs.e[0].path, "listen") == 0,
			      "listen %s accepted or misreported", bad[i]);
	}
}
END_TEST

START_TEST(test_untrusted_text_in_messages)
{
	/* Control bytes in keys and values never reach a message raw, so
	 * every error stays on one line. */
	static struct cfg_errors errs;

	load_bad_buffer("{\"bad\\nkey\": 1, " SOURCES ", \"instruments\": ["
		"{\"symbol\": \"X-Y\", \"min_sources\": 1, \"legs\": ["
		"{\"source\": \"a\\u0007\\n\", \"market\": \"XY\"}]}]}", &errs);
	ck_assert_uint_eq(errs.count, 2);
	ck_assert_str_eq(errs.e[0].path, "bad?key");
	ck_assert_str_eq(errs.e[1].msg, "unknown source \"a\\x07\\x0a\"");
	for (size_t i = 0; i < errs.count; i++)
		ck_assert_ptr_null(strpbrk(errs.e[i].msg, "\n\r\a"));
}
END_TEST

/* ---- the markd program ---- */

/* Runs the built markd (tests/testutil.h: output captured, killed after
 * 60 s). */
static void
run_markd(const char *const *args, struct tu_run *r)
{
	tu_run_program("markd", args, 60, r);
}

START_TEST(test_markd_check_config_ok)
{
	static struct tu_run r;
	char file[PATH_LEN], want[2 * PATH_LEN];
	const char *args[] = { "--check-config", "-c", file, NULL };

	tu_srcpath(file, sizeof(file), "conf/demo.json");
	run_markd(args, &r);
	ck_assert_int_eq(r.status, 0);
	snprintf(want, sizeof(want), "%s: ok\n", file);
	ck_assert_msg(strncmp(r.out, want, strlen(want)) == 0, "stdout: %s",
		      r.out);
	ck_assert_ptr_nonnull(strstr(r.out, "3 instruments, 10 sources"));
	ck_assert_str_eq(r.err, "");
}
END_TEST

START_TEST(test_markd_check_config_bad)
{
	static struct tu_run r;
	char file[PATH_LEN], want[3 * PATH_LEN];
	const char *args[] = { "-c", file, "--check-config", NULL };

	tu_srcpath(file, sizeof(file),
		   "tests/data/config/bad/unknown_source.json");
	run_markd(args, &r);
	ck_assert_int_eq(r.status, 1);
	ck_assert_str_eq(r.out, "");
	snprintf(want, sizeof(want), "%s: instruments[2].legs[0].source: "
		 "unknown source \"bnb\"\n%s: instruments[2].legs[2].source: "
		 "unknown source \"Kraken\"\n", file, file);
	ck_assert_str_eq(r.err, want);

	/* A syntax error is reported as FILE:LINE:COLUMN. */
	tu_srcpath(file, sizeof(file), "tests/data/config/bad/syntax.json");
	run_markd(args, &r);
	ck_assert_int_eq(r.status, 1);
	snprintf(want, sizeof(want), "%s:3:18: invalid JSON", file);
	ck_assert_msg(strncmp(r.err, want, strlen(want)) == 0, "stderr: %s",
		      r.err);

	/* A file that cannot be read is an invalid config too. */
	run_markd((const char *[]){ "-t", "-c", "/nonexistent.json", NULL },
		  &r);
	ck_assert_int_eq(r.status, 1);
	ck_assert_ptr_nonnull(strstr(r.err, "/nonexistent.json: cannot open"));
}
END_TEST

START_TEST(test_markd_version_help_usage)
{
	static struct tu_run r;

	run_markd((const char *[]){ "--version", NULL }, &r);
	ck_assert_int_eq(r.status, 0);
	ck_assert_str_eq(r.out, "markd " PACKAGE_VERSION "\n");

	run_markd((const char *[]){ "--help", NULL }, &r);
	ck_assert_int_eq(r.status, 0);
	ck_assert_ptr_nonnull(strstr(r.out, "--check-config"));

	/* Usage errors exit 2 and say what was wrong on stderr. */
	run_markd((const char *[]){ "--bogus", NULL }, &r);
	ck_assert_int_eq(r.status, 2);
	ck_assert_ptr_nonnull(strstr(r.err, "unknown option '--bogus'"));
	ck_assert_str_eq(r.out, "");

	run_markd((const char *[]){ "--check-config", NULL }, &r);
	ck_assert_int_eq(r.status, 2);
	ck_assert_ptr_nonnull(strstr(r.err, "no configuration file"));

	run_markd((const char *[]){ "-c", NULL }, &r);
	ck_assert_int_eq(r.status, 2);
	ck_assert_ptr_nonnull(strstr(r.err, "missing argument"));

	run_markd((const char *[]){ "-c", "a.json", "extra", NULL }, &r);
	ck_assert_int_eq(r.status, 2);
	ck_assert_ptr_nonnull(strstr(r.err, "unexpected argument 'extra'"));
}
END_TEST

static Suite *
config_suite(void)
{
	Suite *s = suite_create("config");
	TCase *files = tcase_create("files");
	TCase *values = tcase_create("values");
	TCase *cli = tcase_create("cli");

	tcase_add_test(files, test_demo_config);
	tcase_add_test(files, test_real_config);
	tcase_add_test(files, test_good_fixtures);
	tcase_add_test(files, test_bad_fixtures);
	tcase_add_test(files, test_errors_collected_and_capped);
	tcase_add_test(files, test_syntax_error_position);
	tcase_add_test(files, test_file_errors);
	suite_add_tcase(s, files);

	tcase_add_test(values, test_defaults_and_overrides);
	tcase_add_test(values, test_top_level_and_source_settings);
	tcase_add_test(values, test_full_fixture_values);
	tcase_add_test(values, test_cum_derivation);
	tcase_add_test(values, test_cum_continuity_error);
	tcase_add_test(values, test_quote_conversion);
	tcase_add_test(values, test_quote_conversion_missing);
	tcase_add_test(values, test_listen_values);
	tcase_add_test(values, test_untrusted_text_in_messages);
	suite_add_tcase(s, values);

	tcase_add_test(cli, test_markd_check_config_ok);
	tcase_add_test(cli, test_markd_check_config_bad);
	tcase_add_test(cli, test_markd_version_help_usage);
	suite_add_tcase(s, cli);
	return s;
}

TU_MAIN(config_suite)
