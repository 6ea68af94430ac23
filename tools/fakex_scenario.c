/*
 * fakex_scenario.c - scenario loading and the pure price paths of
 * markd-fakex (see fakex_scenario.h and doc/fakex.md).
 */
#include "config.h"

#include "tools/fakex_scenario.h"

#include "aggregator/json_dec.h"

#include <errno.h>
#include <jansson.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const venue_names[FAKEX_NVENUES] = {
	"binance", "coinbase", "kraken", "bitstamp", "okx",
	"bybit", "gemini", "kucoin", "bitfinex", "pyth",
};

static const char *const fault_names[FAKEX_FAULT_NKINDS] = {
	"none", "stale", "wick", "drift", "garbage", "ratelimit",
	"error", "slow", "down", "truncated",
};

/* A walk-only scenario starts here unless it says otherwise. */
#define WALK_DEFAULT_START_MS INT64_C(1704067200000) /* 2024-01-01T00:00:00Z */
#define WALK_DEFAULT_LEN_MS INT64_C(3600000)
#define SCENARIO_MAX_BYTES (4u << 20)

const char *
fakex_venue_name(enum fakex_venue v)
{
	if ((int)v < 0 || v >= FAKEX_NVENUES)
		return NULL;
	return venue_names[v];
}

bool
fakex_venue_from_name(const char *name, size_t len, enum fakex_venue *out)
{
	for (int i = 0; i < FAKEX_NVENUES; i++) {
		if (strlen(venue_names[i]) == len &&
		    memcmp(venue_names[i], name, len) == 0) {
			*out = (enum fakex_venue)i;
			return true;
		}
	}
	return false;
}

const char *
fakex_fault_name(enum fakex_fault_kind k)
{
	if ((int)k < 0 || k >= FAKEX_FAULT_NKINDS)
		return "?";
	return fault_names[k];
}

bool
fakex_fault_from_name(const char *name, enum fakex_fault_kind *out)
{
	for (int i = 1; i < FAKEX_FAULT_NKINDS; i++) {
		if (strcmp(fault_names[i], name) == 0) {
			*out = (enum fakex_fault_kind)i;
			return true;
		}
	}
	return false;
}

void
fakex_fault_params_default(struct fakex_fault_params *p)
{
	memset(p, 0, sizeof(*p));
	p->bps = -2000;
	p->count = 1;
	p->bps_per_min = 100;
	p->max_bps = 2000;
	p->retry_after_s = 2;
	p->status = 500;
	p->delay_ms = 5000;
	p->transfer = false;
	snprintf(p->body, sizeof(p->body), "%s",
		 "<html><head><title>502 Bad Gateway</title></head>"
		 "<body>502 Bad Gateway</body></html>");
}

/* ---- small JSON readers; each error names its path ---- */

/* snprintf for JSON paths in messages: a cut path is acceptable. */
static void pathf(char *buf, size_t cap, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void
pathf(char *buf, size_t cap, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, cap, fmt, ap);
	va_end(ap);
}

static enum mk_status
get_int(const json_t *v, const char *where, int64_t lo, int64_t hi,
	int64_t *out, struct mk_err *err)
{
	json_int_t x;

	if (!json_is_integer(v))
		return mk_err_set(err, MK_ECONFIG, "%s: expected an integer", where);
	x = json_integer_value(v);
	if (x < lo || x > hi)
		return mk_err_set(err, MK_ECONFIG, "%s: %lld is outside %lld..%lld",
				  where, (long long)x, (long long)lo, (long long)hi);
	*out = x;
	return MK_OK;
}

/* A decimal given as a JSON string or number. */
static enum mk_status
get_dec(const json_t *v, const char *where, struct mk_dec *out,
	struct mk_err *err)
{
	struct mk_err e;

	if (mk_json_dec(v, out, &e) != MK_OK)
		return mk_err_set(err, MK_ECONFIG, "%s: %s", where, e.msg);
	return MK_OK;
}

/* A non-negative decimal as an integer count of 10^-`digits` units. */
static enum mk_status
get_fixed(const json_t *v, const char *where, int digits, int64_t max,
	  int64_t *out, struct mk_err *err)
{
	struct mk_dec d, r;
	enum mk_status st = get_dec(v, where, &d, err);

	if (st != MK_OK)
		return st;
	if (mk_dec_is_neg(d))
		return mk_err_set(err, MK_ECONFIG, "%s: must be >= 0", where);
	if (mk_dec_rescale(d, digits, MK_ROUND_EXACT, &r) != MK_OK || r.m > max)
		return mk_err_set(err, MK_ECONFIG,
				  "%s: at most %d decimals and at most %lld units of 10^-%d",
				  where, digits, (long long)max, digits);
	*out = r.m;
	return MK_OK;
}

/* Days since 1970-01-01 of a proleptic Gregorian date. */
static int64_t
days_from_civil(int64_t y, int64_t m, int64_t d)
{
	int64_t era, yoe, doy, doe;

	y -= m <= 2;
	era = (y >= 0 ? y : y - 399) / 400;
	yoe = y - era * 400;
	doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}

/* Unix seconds, or "YYYY-MM-DDTHH:MM:SSZ", as Unix ms. */
static enum mk_status
get_time(const json_t *v, const char *where, int64_t *out_ms,
	 struct mk_err *err)
{
	int y, mo, d, h, mi, s, n = 0;
	const char *t;

	if (json_is_integer(v)) {
		int64_t x;
		enum mk_status st = get_int(v, where, 0, INT64_C(100000000000),
					    &x, err);

		if (st == MK_OK)
			*out_ms = x * 1000;
		return st;
	}
	if (!json_is_string(v))
		return mk_err_set(err, MK_ECONFIG,
				  "%s: expected Unix seconds or \"YYYY-MM-DDTHH:MM:SSZ\"",
				  where);
	t = json_string_value(v);
	if (sscanf(t, "%4d-%2d-%2dT%2d:%2d:%2dZ%n", &y, &mo, &d, &h, &mi, &s,
		   &n) != 6 || n == 0 || t[n] != '\0' || strlen(t) != 20 ||
	    mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || s > 59 ||
	    y < 1970)
		return mk_err_set(err, MK_ECONFIG,
				  "%s: \"%s\" is not \"YYYY-MM-DDTHH:MM:SSZ\"", where, t);
	*out_ms = ((days_from_civil(y, mo, d) * 24 + h) * 60 + mi) * 60000 +
		  (int64_t)s * 1000;
	return MK_OK;
}

/* Rejects keys of obj that are not in `allowed` (NULL-terminated). */
static enum mk_status
check_keys(const json_t *obj, const char *where, const char *const *allowed,
	   struct mk_err *err)
{
	const char *key;
	json_t *val;

	json_object_foreach((json_t *)obj, key, val) {
		bool ok = false;

		(void)val;
		for (size_t i = 0; allowed[i] != NULL; i++)
			if (strcmp(allowed[i], key) == 0)
				ok = true;
		if (!ok)
			return mk_err_set(err, MK_ECONFIG, "%s.%s: unknown key",
					  where, key);
	}
	return MK_OK;
}

enum mk_status
fakex_fault_params_parse(enum fakex_fault_kind kind, const void *json_obj,
			 const char *where, struct fakex_fault_params *p,
			 struct mk_err *err)
{
	const json_t *obj = json_obj;
	const char *key;
	json_t *v;
	char path[256];
	enum mk_status st = MK_OK;

	if (!json_is_object(obj))
		return mk_err_set(err, MK_ECONFIG, "%s: expected an object", where);
	json_object_foreach((json_t *)obj, key, v) {
		int64_t x = 0;

		pathf(path, sizeof(path), "%s.%s", where, key);
		if (kind == FAKEX_FAULT_WICK && strcmp(key, "bps") == 0) {
			st = get_int(v, path, -9999, 100000, &x, err);
			p->bps = (int32_t)x;
		} else if (kind == FAKEX_FAULT_WICK && strcmp(key, "count") == 0) {
			st = get_int(v, path, 1, 1000000, &x, err);
			p->count = (uint32_t)x;
		} else if (kind == FAKEX_FAULT_DRIFT &&
			   strcmp(key, "bps_per_min") == 0) {
			st = get_int(v, path, -10000, 10000, &x, err);
			p->bps_per_min = (int32_t)x;
		} else if (kind == FAKEX_FAULT_DRIFT && strcmp(key, "max_bps") == 0) {
			st = get_int(v, path, 0, 9999, &x, err);
			p->max_bps = (uint32_t)x;
		} else if (kind == FAKEX_FAULT_RATELIMIT &&
			   strcmp(key, "retry_after_s") == 0) {
			st = get_int(v, path, 0, 86400, &x, err);
			p->retry_after_s = (uint32_t)x;
		} else if (kind == FAKEX_FAULT_ERROR && strcmp(key, "status") == 0) {
			st = get_int(v, path, 500, 599, &x, err);
			p->status = (uint32_t)x;
		} else if (kind == FAKEX_FAULT_SLOW && strcmp(key, "delay_ms") == 0) {
			st = get_int(v, path, 1, 600000, &x, err);
			p->delay_ms = (uint32_t)x;
		} else if (kind == FAKEX_FAULT_TRUNCATED &&
			   strcmp(key, "mode") == 0) {
			const char *m = json_string_value(v);

			if (m != NULL && strcmp(m, "body") == 0)
				p->transfer = false;
			else if (m != NULL && strcmp(m, "transfer") == 0)
				p->transfer = true;
			else
				st = mk_err_set(err, MK_ECONFIG,
						"%s: expected \"body\" or \"transfer\"",
						path);
		} else if (kind == FAKEX_FAULT_GARBAGE && strcmp(key, "body") == 0) {
			if (!json_is_string(v) ||
			    json_string_length(v) >= sizeof(p->body) ||
			    memchr(json_string_value(v), '\0',
				   json_string_length(v)) != NULL)
				st = mk_err_set(err, MK_ECONFIG,
						"%s: expected a string of at most %zu bytes",
						path, sizeof(p->body) - 1);
			else
				snprintf(p->body, sizeof(p->body), "%s",
					 json_string_value(v));
		} else {
			st = mk_err_set(err, MK_ECONFIG,
					"%s: not a parameter of fault \"%s\"", path,
					fakex_fault_name(kind));
		}
		if (st != MK_OK)
			return st;
	}
	return MK_OK;
}

/* ---- markets ---- */

/* SplitMix64: a small, well-mixed, seedable generator. */
static uint64_t
splitmix64(uint64_t *state)
{
	uint64_t z = (*state += UINT64_C(0x9E3779B97F4A7C15));

	z = (z ^ (z >> 30)) * UINT64_C(0xBF58476D1CE4E5B9);
	z = (z ^ (z >> 27)) * UINT64_C(0x94D049BB133111EB);
	return z ^ (z >> 31);
}

/*
 * Fills the walk: p[0] = start; p[k+1] = p[k] x (1 + z x sigma), where z is
 * an Irwin-Hall approximation of a standard normal (the sum of 12 uniform
 * 16-bit draws, centred), all in integers: the factor is 1 + r with r in
 * units of 10^-12. Prices never fall below one tick.
 */
static enum mk_status
build_walk(struct fakex_market *m, size_t n, const char *where,
	   struct mk_err *err)
{
	const int64_t sigma_cbps = m->walk_sigma_cbps;
	uint64_t state = m->walk_seed;
	struct mk_dec p = m->walk_start;

	m->walk = calloc(n, sizeof(*m->walk));
	if (m->walk == NULL)
		return mk_err_set(err, MK_ENOMEM, "%s: out of memory", where);
	m->nwalk = n;
	for (size_t k = 0; k < n; k++) {
		int64_t z = 0;   /* z x 65536, |z| <= 6 x 65536 */
		struct mk_dec f;

		m->walk[k] = p;
		for (int i = 0; i < 12; i++) {
			uint64_t r = splitmix64(&state);

			z += (int64_t)(r & 0xffff);
		}
		z -= 6 * 65536;
		/* r x 10^12 = z/65536 x sigma_cbps/10^6 x 10^12; |z x sigma x
		 * 10^6| <= 393216 x 100000 x 10^6 < 2^63. */
		f = MK_DEC(INT64_C(1000000000000) + z * sigma_cbps * 1000000 / 65536,
			   12);
		if (mk_dec_mul(p, f, m->scale, MK_ROUND_HALF_EVEN, &p) != MK_OK)
			return mk_err_set(err, MK_ECONFIG,
					  "%s: the walk overflows; lower sigma_bps",
					  where);
		if (p.m < 1)
			p.m = 1;
	}
	return MK_OK;
}

/* Kraken renames its oldest assets: XBT -> XXBT, USD -> ZUSD. */
static void
kraken_default_key(const char *id, char *key, size_t cap)
{
	static const char *const old_crypto[] = {
		"XBT", "ETH", "LTC", "XRP", "XLM", "XMR", "ZEC", "ETC", "MLN",
		"REP", "XDG", NULL,
	};
	static const char *const old_fiat[] = {
		"USD", "EUR", "GBP", "JPY", "CAD", NULL,
	};
	size_t n = strlen(id);

	snprintf(key, cap, "%s", id);
	if (n == 6) {
		for (size_t i = 0; old_crypto[i] != NULL; i++)
			for (size_t j = 0; old_fiat[j] != NULL; j++)
				if (strncmp(id, old_crypto[i], 3) == 0 &&
				    strcmp(id + 3, old_fiat[j]) == 0)
					snprintf(key, cap, "X%.3sZ%s", id, id + 3);
	} else if (n == 7 && strncmp(id, "USDT", 4) == 0) {
		for (size_t j = 0; old_fiat[j] != NULL; j++)
			if (strcmp(id + 4, old_fiat[j]) == 0)
				snprintf(key, cap, "USDTZ%s", id + 4);
	}
}

static bool
is_hex(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f') ||
		      (s[i] >= 'A' && s[i] <= 'F')))
			return false;
	return true;
}

/* Pyth ids: lower case, no "0x". Others: as given. */
static bool
normalize_id(enum fakex_venue v, const char *id, char *out, size_t cap)
{
	size_t n = strlen(id);

	if (n == 0 || n >= cap)
		return false;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)id[i] <= 0x20 || (unsigned char)id[i] >= 0x7f ||
		    id[i] == '/' || id[i] == '?' || id[i] == '&' || id[i] == '"' ||
		    id[i] == '\\')
			return false;
	if (v == FAKEX_PYTH) {
		if (n > 2 && id[0] == '0' && (id[1] == 'x' || id[1] == 'X')) {
			id += 2;
			n -= 2;
		}
		if (n != 64 || !is_hex(id, n))
			return false;
		for (size_t i = 0; i <= n; i++)
			out[i] = (id[i] >= 'A' && id[i] <= 'F') ? (char)(id[i] + 32) : id[i];
		return true;
	}
	if (v == FAKEX_GEMINI) {
		for (size_t i = 0; i <= n; i++)
			out[i] = (id[i] >= 'A' && id[i] <= 'Z') ? (char)(id[i] + 32) : id[i];
		return true;
	}
	memcpy(out, id, n + 1);
	return true;
}

struct csv_cache {
	char path[4096];
	struct history_series *s;  /* borrowed from the market that loaded it */
};

static enum mk_status
parse_market(enum fakex_venue v, const char *id, const json_t *mj,
	     const char *dir, const char *where, struct fakex_market *m,
	     struct mk_err *err)
{
	static const char *const keys[] = {
		"csv", "walk", "spread_bps", "scale", "key", "expo", NULL,
	};
	static const char *const walk_keys[] = {
		"seed", "start", "sigma_bps", "step_s", NULL,
	};
	char path[512];
	const json_t *csv, *walk, *x;
	int64_t n;
	enum mk_status st;

	if (!json_is_object(mj))
		return mk_err_set(err, MK_ECONFIG, "%s: expected an object", where);
	st = check_keys(mj, where, keys, err);
	if (st != MK_OK)
		return st;
	if (!normalize_id(v, id, m->id, sizeof(m->id)))
		return mk_err_set(err, MK_ECONFIG, "%s: not a valid %s market id",
				  where, fakex_venue_name(v));
	m->expo = -8;
	m->spread_bps = 2;
	m->scale = -1;
	if ((x = json_object_get(mj, "spread_bps")) != NULL) {
		pathf(path, sizeof(path), "%s.spread_bps", where);
		if ((st = get_int(x, path, 0, 5000, &n, err)) != MK_OK)
			return st;
		m->spread_bps = (uint32_t)n;
	}
	if ((x = json_object_get(mj, "scale")) != NULL) {
		pathf(path, sizeof(path), "%s.scale", where);
		if ((st = get_int(x, path, 0, 12, &n, err)) != MK_OK)
			return st;
		m->scale = (int)n;
	}
	if ((x = json_object_get(mj, "expo")) != NULL) {
		pathf(path, sizeof(path), "%s.expo", where);
		if (v != FAKEX_PYTH)
			return mk_err_set(err, MK_ECONFIG, "%s: only for pyth", path);
		if ((st = get_int(x, path, -12, 0, &n, err)) != MK_OK)
			return st;
		m->expo = (int)n;
	}
	if (v == FAKEX_KRAKEN)
		kraken_default_key(m->id, m->key, sizeof(m->key));
	if ((x = json_object_get(mj, "key")) != NULL) {
		pathf(path, sizeof(path), "%s.key", where);
		if (v != FAKEX_KRAKEN)
			return mk_err_set(err, MK_ECONFIG, "%s: only for kraken", path);
		if (!json_is_string(x) ||
		    !normalize_id(v, json_string_value(x), m->key, sizeof(m->key)))
			return mk_err_set(err, MK_ECONFIG, "%s: expected a pair name",
					  path);
	}
	csv = json_object_get(mj, "csv");
	walk = json_object_get(mj, "walk");
	if ((csv == NULL) == (walk == NULL))
		return mk_err_set(err, MK_ECONFIG,
				  "%s: give exactly one of \"csv\" and \"walk\"", where);
	if (csv != NULL) {
		const char *rel = json_string_value(csv);
		char full[4096];

		if (rel == NULL || rel[0] == '\0')
			return mk_err_set(err, MK_ECONFIG, "%s.csv: expected a path",
					  where);
		if (rel[0] == '/' || dir == NULL)
			snprintf(full, sizeof(full), "%s", rel);
		else
			snprintf(full, sizeof(full), "%s/%s", dir, rel);
		st = history_load(full, NULL, &m->csv, err);
		if (st != MK_OK) {
			mk_err_prefix(err, "%s.csv", where);
			return st;
		}
		if (m->scale < 0)
			m->scale = m->csv->scale;
	} else {
		struct mk_dec start, startr;
		int64_t seed = 1, sigma = 500, step = 1;

		pathf(path, sizeof(path), "%s.walk", where);
		if (!json_is_object(walk))
			return mk_err_set(err, MK_ECONFIG, "%s: expected an object",
					  path);
		if ((st = check_keys(walk, path, walk_keys, err)) != MK_OK)
			return st;
		pathf(path, sizeof(path), "%s.walk.start", where);
		if ((x = json_object_get(walk, "start")) == NULL)
			return mk_err_set(err, MK_ECONFIG, "%s: missing", path);
		if ((st = get_dec(x, path, &start, err)) != MK_OK)
			return st;
		if (!mk_dec_is_pos(start))
			return mk_err_set(err, MK_ECONFIG, "%s: must be > 0", path);
		if (m->scale < 0)
			m->scale = start.scale < 2 ? 2 : start.scale;
		if (mk_dec_rescale(start, m->scale, MK_ROUND_HALF_EVEN, &startr) !=
		    MK_OK || !mk_dec_is_pos(startr))
			return mk_err_set(err, MK_ECONFIG,
					  "%s: does not fit scale %d", path, m->scale);
		pathf(path, sizeof(path), "%s.walk.seed", where);
		if ((x = json_object_get(walk, "seed")) != NULL &&
		    (st = get_int(x, path, 0, INT64_MAX, &seed, err)) != MK_OK)
			return st;
		pathf(path, sizeof(path), "%s.walk.sigma_bps", where);
		if ((x = json_object_get(walk, "sigma_bps")) != NULL &&
		    (st = get_fixed(x, path, 2, 100000, &sigma, err)) != MK_OK)
			return st;
		pathf(path, sizeof(path), "%s.walk.step_s", where);
		if ((x = json_object_get(walk, "step_s")) != NULL &&
		    (st = get_int(x, path, 1, 86400, &step, err)) != MK_OK)
			return st;
		m->walk_step_ms = step * 1000;
		m->walk_start = startr;
		m->walk_seed = (uint64_t)seed;
		m->walk_sigma_cbps = sigma;
	}
	return MK_OK;
}

static enum mk_status
parse_venue(enum fakex_venue v, const json_t *vj, const char *dir,
	    const char *where, struct fakex_venue_cfg *cfg, struct mk_err *err)
{
	static const char *const keys[] = { "port", "markets", NULL };
	const json_t *markets, *x;
	const char *id;
	json_t *mj;
	char path[512];
	size_t i = 0;
	enum mk_status st;

	if (!json_is_object(vj))
		return mk_err_set(err, MK_ECONFIG, "%s: expected an object", where);
	if ((st = check_keys(vj, where, keys, err)) != MK_OK)
		return st;
	cfg->enabled = true;
	cfg->port = -1;
	if ((x = json_object_get(vj, "port")) != NULL) {
		int64_t p;

		pathf(path, sizeof(path), "%s.port", where);
		if ((st = get_int(x, path, 0, 65535, &p, err)) != MK_OK)
			return st;
		cfg->port = (int)p;
	}
	markets = json_object_get(vj, "markets");
	pathf(path, sizeof(path), "%s.markets", where);
	if (!json_is_object(markets) || json_object_size(markets) == 0)
		return mk_err_set(err, MK_ECONFIG,
				  "%s: expected an object with at least one market",
				  path);
	if (json_object_size(markets) > FAKEX_MAX_MARKETS)
		return mk_err_set(err, MK_ECONFIG, "%s: more than %d markets", path,
				  FAKEX_MAX_MARKETS);
	cfg->markets = calloc(json_object_size(markets), sizeof(*cfg->markets));
	if (cfg->markets == NULL)
		return mk_err_set(err, MK_ENOMEM, "%s: out of memory", path);
	json_object_foreach((json_t *)markets, id, mj) {
		pathf(path, sizeof(path), "%s.markets.%s", where, id);
		cfg->nmarkets = i + 1;
		st = parse_market(v, id, mj, dir, path, &cfg->markets[i], err);
		if (st != MK_OK)
			return st;
		for (size_t j = 0; j < i; j++)
			if (strcmp(cfg->markets[j].id, cfg->markets[i].id) == 0)
				return mk_err_set(err, MK_ECONFIG,
						  "%s: the same market twice", path);
		i++;
	}
	return MK_OK;
}

static enum mk_status
parse_fault(const json_t *fj, const char *where, const struct fakex_scenario *sc,
	    struct fakex_fault_spec *f, struct mk_err *err)
{
	static const char *const keys[] = {
		"venue", "kind", "at_s", "for_s", "every_s", "params", NULL,
	};
	const json_t *x;
	const char *s;
	char path[512];
	int64_t n;
	enum mk_status st;

	if (!json_is_object(fj))
		return mk_err_set(err, MK_ECONFIG, "%s: expected an object", where);
	if ((st = check_keys(fj, where, keys, err)) != MK_OK)
		return st;
	s = json_string_value(json_object_get(fj, "venue"));
	if (s == NULL || !fakex_venue_from_name(s, strlen(s), &f->venue))
		return mk_err_set(err, MK_ECONFIG, "%s.venue: expected a venue name",
				  where);
	if (!sc->venues[f->venue].enabled)
		return mk_err_set(err, MK_ECONFIG,
				  "%s.venue: \"%s\" is not in \"venues\"", where, s);
	s = json_string_value(json_object_get(fj, "kind"));
	if (s == NULL || !fakex_fault_from_name(s, &f->kind))
		return mk_err_set(err, MK_ECONFIG,
				  "%s.kind: expected one of stale, wick, drift, garbage, ratelimit, error, slow, down, truncated",
				  where);
	pathf(path, sizeof(path), "%s.at_s", where);
	if ((st = get_fixed(json_object_get(fj, "at_s"), path, 3,
			    INT64_C(864000000000), &f->at_ms, err)) != MK_OK)
		return st;
	pathf(path, sizeof(path), "%s.for_s", where);
	if ((st = get_fixed(json_object_get(fj, "for_s"), path, 3,
			    INT64_C(864000000000), &f->for_ms, err)) != MK_OK)
		return st;
	if (f->for_ms == 0)
		return mk_err_set(err, MK_ECONFIG, "%s: must be > 0", path);
	if ((x = json_object_get(fj, "every_s")) != NULL) {
		pathf(path, sizeof(path), "%s.every_s", where);
		if ((st = get_fixed(x, path, 3, INT64_C(864000000000), &n, err)) !=
		    MK_OK)
			return st;
		if (n <= f->for_ms)
			return mk_err_set(err, MK_ECONFIG,
					  "%s: must be longer than for_s", path);
		f->every_ms = n;
	}
	fakex_fault_params_default(&f->params);
	if ((x = json_object_get(fj, "params")) != NULL) {
		pathf(path, sizeof(path), "%s.params", where);
		return fakex_fault_params_parse(f->kind, x, path, &f->params, err);
	}
	return MK_OK;
}

enum mk_status
fakex_scenario_parse(const char *buf, size_t len, const char *dir,
		     struct fakex_scenario **out, struct mk_err *err)
{
	static const char *const keys[] = {
		"listen", "speed", "loop", "start", "end", "venues", "faults",
		"comment", NULL,
	};
	struct fakex_scenario *sc = NULL;
	json_t *root = NULL, *venues, *faults, *x, *vj;
	json_error_t jerr;
	const char *vname;
	char path[512];
	int64_t first_ms = INT64_MAX, last_ms = INT64_MIN;
	bool have_csv = false, have_start = false, have_end = false;
	enum mk_status st = MK_OK;

	sc = calloc(1, sizeof(*sc));
	if (sc == NULL)
		return mk_err_set(err, MK_ENOMEM, "scenario: out of memory");
	snprintf(sc->listen_addr, sizeof(sc->listen_addr), "127.0.0.1");
	sc->port = 8701;
	sc->speed_milli = 1000;
	sc->loop = true;

	root = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &jerr);
	if (root == NULL) {
		st = mk_err_set(err, MK_ECONFIG, "line %d column %d: %s", jerr.line,
				jerr.column, jerr.text);
		goto out;
	}
	if (!json_is_object(root)) {
		st = mk_err_set(err, MK_ECONFIG, "(root): expected an object");
		goto out;
	}
	if ((st = check_keys(root, "(root)", keys, err)) != MK_OK)
		goto out;
	if ((x = json_object_get(root, "listen")) != NULL) {
		const char *l = json_string_value(x);
		const char *colon = l != NULL ? strrchr(l, ':') : NULL;
		char *end = NULL;
		long port;

		if (colon == NULL || colon == l ||
		    (size_t)(colon - l) >= sizeof(sc->listen_addr)) {
			st = mk_err_set(err, MK_ECONFIG,
					"listen: expected \"ADDRESS:PORT\"");
			goto out;
		}
		errno = 0;
		port = strtol(colon + 1, &end, 10);
		if (errno != 0 || end == colon + 1 || *end != '\0' || port < 0 ||
		    port > 65535) {
			st = mk_err_set(err, MK_ECONFIG, "listen: bad port \"%s\"",
					colon + 1);
			goto out;
		}
		memcpy(sc->listen_addr, l, (size_t)(colon - l));
		sc->listen_addr[colon - l] = '\0';
		sc->port = (int)port;
	}
	if ((x = json_object_get(root, "speed")) != NULL &&
	    (st = get_fixed(x, "speed", 3, INT64_C(1000000000), &sc->speed_milli,
			    err)) != MK_OK)
		goto out;
	if ((x = json_object_get(root, "loop")) != NULL) {
		if (!json_is_boolean(x)) {
			st = mk_err_set(err, MK_ECONFIG, "loop: expected true or false");
			goto out;
		}
		sc->loop = json_is_true(x);
	}
	if ((x = json_object_get(root, "start")) != NULL) {
		if ((st = get_time(x, "start", &sc->start_ms, err)) != MK_OK)
			goto out;
		have_start = true;
	}
	if ((x = json_object_get(root, "end")) != NULL) {
		if ((st = get_time(x, "end", &sc->end_ms, err)) != MK_OK)
			goto out;
		have_end = true;
	}

	venues = json_object_get(root, "venues");
	if (!json_is_object(venues) || json_object_size(venues) == 0) {
		st = mk_err_set(err, MK_ECONFIG,
				"venues: expected an object with at least one venue");
		goto out;
	}
	json_object_foreach(venues, vname, vj) {
		enum fakex_venue v;

		pathf(path, sizeof(path), "venues.%s", vname);
		if (!fakex_venue_from_name(vname, strlen(vname), &v)) {
			st = mk_err_set(err, MK_ECONFIG,
					"%s: unknown venue (binance, coinbase, kraken, bitstamp, okx, bybit, gemini, kucoin, bitfinex, pyth)",
					path);
			goto out;
		}
		st = parse_venue(v, vj, dir, path, &sc->venues[v], err);
		if (st != MK_OK)
			goto out;
	}

	/* The simulated window: the CSVs' span unless start/end are given. */
	for (int v = 0; v < FAKEX_NVENUES; v++) {
		for (size_t i = 0; i < sc->venues[v].nmarkets; i++) {
			const struct history_series *h = sc->venues[v].markets[i].csv;

			if (h == NULL)
				continue;
			have_csv = true;
			if (h->bars[0].ts * 1000 < first_ms)
				first_ms = h->bars[0].ts * 1000;
			if ((h->bars[h->nbars - 1].ts + HISTORY_BAR_S) * 1000 > last_ms)
				last_ms = (h->bars[h->nbars - 1].ts + HISTORY_BAR_S) * 1000;
		}
	}
	if (!have_start)
		sc->start_ms = have_csv ? first_ms : WALK_DEFAULT_START_MS;
	if (!have_end)
		sc->end_ms = have_csv && last_ms > sc->start_ms ?
				     last_ms : sc->start_ms + WALK_DEFAULT_LEN_MS;
	if (sc->end_ms <= sc->start_ms) {
		st = mk_err_set(err, MK_ECONFIG, "end: must be after start");
		goto out;
	}
	for (int v = 0; v < FAKEX_NVENUES; v++) {
		for (size_t i = 0; i < sc->venues[v].nmarkets; i++) {
			struct fakex_market *m = &sc->venues[v].markets[i];
			int64_t n;

			if (m->csv != NULL)
				continue;
			pathf(path, sizeof(path), "venues.%s.markets.%s.walk",
				 fakex_venue_name((enum fakex_venue)v), m->id);
			n = (sc->end_ms - sc->start_ms) / m->walk_step_ms + 1;
			if (n > FAKEX_MAX_WALK) {
				st = mk_err_set(err, MK_ECONFIG,
						"%s: more than %d steps between start and end; raise step_s",
						path, FAKEX_MAX_WALK);
				goto out;
			}
			if ((st = build_walk(m, (size_t)n, path, err)) != MK_OK)
				goto out;
		}
	}

	faults = json_object_get(root, "faults");
	if (faults != NULL) {
		if (!json_is_array(faults) || json_array_size(faults) > FAKEX_MAX_FAULTS) {
			st = mk_err_set(err, MK_ECONFIG,
					"faults: expected an array of at most %d faults",
					FAKEX_MAX_FAULTS);
			goto out;
		}
		sc->faults = calloc(json_array_size(faults) + 1, sizeof(*sc->faults));
		if (sc->faults == NULL) {
			st = mk_err_set(err, MK_ENOMEM, "faults: out of memory");
			goto out;
		}
		for (size_t i = 0; i < json_array_size(faults); i++) {
			pathf(path, sizeof(path), "faults[%zu]", i);
			st = parse_fault(json_array_get(faults, i), path, sc,
					 &sc->faults[i], err);
			if (st != MK_OK)
				goto out;
			sc->nfaults = i + 1;
		}
	}
	*out = sc;
	sc = NULL;
out:
	json_decref(root);
	fakex_scenario_destroy(sc);
	return st;
}

enum mk_status
fakex_scenario_load(const char *path, struct fakex_scenario **out,
		    struct mk_err *err)
{
	char *buf = NULL, *dir = NULL, *slash;
	size_t len = 0;
	FILE *fp = NULL;
	enum mk_status st;

	fp = fopen(path, "rb");
	if (fp == NULL) {
		int e = errno;

		st = mk_err_set(err, MK_EIO, "%s: %s", path, strerror(e));
		if (err != NULL)
			err->sys_errno = e;
		goto out;
	}
	buf = malloc(SCENARIO_MAX_BYTES + 1);
	dir = strdup(path);
	if (buf == NULL || dir == NULL) {
		st = mk_err_set(err, MK_ENOMEM, "%s: out of memory", path);
		goto out;
	}
	len = fread(buf, 1, SCENARIO_MAX_BYTES + 1, fp);
	if (ferror(fp)) {
		st = mk_err_set(err, MK_EIO, "%s: read error", path);
		goto out;
	}
	if (len > SCENARIO_MAX_BYTES) {
		st = mk_err_set(err, MK_ETOOBIG, "%s: larger than %u bytes", path,
				SCENARIO_MAX_BYTES);
		goto out;
	}
	slash = strrchr(dir, '/');
	if (slash == NULL) {
		free(dir);
		dir = NULL;
	} else if (slash == dir) {
		slash[1] = '\0';
	} else {
		*slash = '\0';
	}
	st = fakex_scenario_parse(buf, len, dir, out, err);
	if (st != MK_OK)
		mk_err_prefix(err, "%s", path);
out:
	if (fp != NULL)
		fclose(fp);
	free(buf);
	free(dir);
	return st;
}

void
fakex_scenario_destroy(struct fakex_scenario *sc)
{
	if (sc == NULL)
		return;
	for (int v = 0; v < FAKEX_NVENUES; v++) {
		for (size_t i = 0; i < sc->venues[v].nmarkets; i++) {
			history_destroy(sc->venues[v].markets[i].csv);
			free(sc->venues[v].markets[i].walk);
		}
		free(sc->venues[v].markets);
	}
	free(sc->faults);
	free(sc);
}

int64_t
fakex_sim_ms(const struct fakex_scenario *sc, int64_t elapsed_ms)
{
	/* elapsed <= ~2^63 / 10^9 ms is far more than any run lasts; the
	 * product is taken in 128 bits anyway. */
	__int128 e = (__int128)(elapsed_ms < 0 ? 0 : elapsed_ms) *
		     sc->speed_milli / 1000;
	int64_t len = sc->end_ms - sc->start_ms;

	if (sc->loop)
		e %= len;
	else if (e > (__int128)INT64_MAX - sc->start_ms)
		e = INT64_MAX - sc->start_ms;
	return sc->start_ms + (int64_t)e;
}

const struct fakex_market *
fakex_market_find(const struct fakex_scenario *sc, enum fakex_venue v,
		  const char *id)
{
	const struct fakex_venue_cfg *cfg;
	char norm[FAKEX_ID_MAX];

	if ((int)v < 0 || v >= FAKEX_NVENUES || id == NULL)
		return NULL;
	cfg = &sc->venues[v];
	if (!normalize_id(v, id, norm, sizeof(norm)))
		return NULL;
	for (size_t i = 0; i < cfg->nmarkets; i++) {
		if (strcmp(cfg->markets[i].id, norm) == 0)
			return &cfg->markets[i];
		if (v == FAKEX_KRAKEN && strcmp(cfg->markets[i].key, norm) == 0)
			return &cfg->markets[i];
	}
	return NULL;
}

enum mk_status
fakex_market_mid(const struct fakex_scenario *sc, const struct fakex_market *m,
		 int64_t sim_ms, struct mk_dec *out)
{
	int64_t k;

	if (m->csv != NULL)
		return history_price_at(m->csv, sim_ms, m->scale, out);
	if (m->nwalk == 0)
		return MK_ESTATE;
	k = sim_ms <= sc->start_ms ? 0 : (sim_ms - sc->start_ms) / m->walk_step_ms;
	if (k >= (int64_t)m->nwalk)
		k = (int64_t)m->nwalk - 1;
	*out = m->walk[k];
	return MK_OK;
}

enum mk_status
fakex_market_book(const struct fakex_market *m, struct mk_dec mid,
		  struct mk_dec *bid, struct mk_dec *ask)
{
	struct mk_dec half, b, a;
	enum mk_status st;

	/* half = mid x spread / 20000 */
	st = mk_dec_mul(mid, MK_DEC((int64_t)m->spread_bps * 5, 5), m->scale,
			MK_ROUND_HALF_EVEN, &half);
	if (st != MK_OK)
		return st;
	if (m->spread_bps > 0 && half.m < 1)
		half.m = 1;
	st = mk_dec_rescale(mid, m->scale, MK_ROUND_HALF_EVEN, &mid);
	if (st == MK_OK)
		st = mk_dec_sub(mid, half, &b);
	if (st == MK_OK)
		st = mk_dec_add(mid, half, &a);
	if (st != MK_OK)
		return st;
	if (b.m < 1)
		b.m = 1;
	*bid = b;
	*ask = a;
	return MK_OK;
}

enum mk_status
fakex_shift_ppm(struct mk_dec mid, int64_t ppm, int scale, struct mk_dec *out)
{
	struct mk_dec r;
	enum mk_status st;

	if (ppm < -1000000 || ppm > INT64_C(1000000000))
		return MK_EINVAL;
	st = mk_dec_mul(mid, MK_DEC(1000000 + ppm, 6), scale, MK_ROUND_HALF_EVEN,
			&r);
	if (st != MK_OK)
		return st;
	if (r.m < 1)
		r.m = 1;
	*out = r;
	return MK_OK;
}
