/*
 * config.c - loading and validating markd's JSON configuration: the walk
 * over the document (see config.h for the keys).
 *
 * The file is parsed once with jansson (duplicate keys refused) and then
 * walked top-down. Every check reports through cfg_report(), which
 * records the JSON path and keeps going, so one run of --check-config
 * lists every problem. Values that fail a check keep their default, which
 * keeps later checks meaningful without cascading errors.
 *
 * Order of the walk: top-level scalars, "sources" (then their name index),
 * "defaults", "instruments" (then their symbol index), then the quote
 * conversions between instruments and the cycle check.
 */
/* Autoconf's header; "config.h" would find this folder's config.h. */
#include "config.h"

#include "daemon/cfg.h"

#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aggregator/json_dec.h"
#include "daemon/config_int.h"
#include "feeds/adapter.h"

#define MAX_SOURCES 4096
#define WINDOW_MAX_MS 2592000000LL  /* 30 days */

/* Filter parameters: the instrument keys that "defaults" may also set,
 * with their bounds (config.h documents them). */
#define PARAM_FIELDS(X) \
	X(scale, F_INT, 0, MK_DEC_MAX_SCALE) \
	X(min_sources, F_U32, 1, CFG_MAX_LEGS) \
	X(max_age_ms, F_I64, 1, 86400000) \
	X(max_skew_ms, F_I64, 0, 3600000) \
	X(max_deviation_bps, F_U32, 1, 10000) \
	X(max_conf_bps, F_U32, 1, 10000) \
	X(max_spread_bps, F_U32, 1, 10000) \
	X(too_volatile_ratio, F_U32, 2, 1000) \
	X(max_twap_deviation_bps, F_U32, 1, 100000) \
	X(ema_window_ms, F_I64, 1000, WINDOW_MAX_MS) \
	X(twap_window_ms, F_I64, 1000, WINDOW_MAX_MS) \
	X(vol_halflife_ms, F_I64, 1000, WINDOW_MAX_MS)

enum field_kind { F_INT, F_U32, F_I64 };

struct param_field {
	const char *key;
	enum field_kind kind;
	size_t off;
	int64_t lo, hi;
};

#define PARAM_FIELD(k, kind, lo, hi) \
	{ #k, kind, offsetof(struct agg_params, k), lo, hi },
#define PARAM_KEY(k, kind, lo, hi) #k,
static const struct param_field param_fields[] = { PARAM_FIELDS(PARAM_FIELD) };
static const char *const param_keys[] = { PARAM_FIELDS(PARAM_KEY) NULL };
#undef PARAM_FIELD
#undef PARAM_KEY
#define NPARAMS (sizeof(param_fields) / sizeof(param_fields[0]))

static const char *const top_keys[] = {
	"listen", "token_file", "database", "log", "http", "sources",
	"defaults", "instruments", NULL,
};
static const char *const log_keys[] = { "level", "format", NULL };
static const char *const http_keys[] = {
	"max_connections", "max_connections_per_ip", "connection_timeout_s",
	"max_body_bytes", "connection_memory_bytes", NULL,
};
static const char *const source_keys[] = {
	"name", "adapter", "base_url", "interval_ms", "timeout_ms", "weight",
	"max_body_bytes", "enabled", "options", NULL,
};
static const char *const instrument_keys[] = {
	"symbol", "legs", "margin", NULL,
};
static const char *const leg_keys[] = {
	"source", "market", "weight", "quote", NULL,
};
static const char *const margin_keys[] = {
	"brackets", "confirm_count", "confirm_ms", "safe_buffer_bps",
	"contract", "contract_size", NULL,
};
static const char *const bracket_keys[] = {
	"floor", "cap", "mmr", "cum", NULL,
};

/* ---- sections ---- */

static char *
dup_str(struct cfg_ctx *c, const char *s)
{
	char *d = strdup(s);

	if (d == NULL)
		cfg_oom(c);
	return d;
}

static void
parse_log(struct cfg_ctx *c, const json_t *v, struct cfg *cfg)
{
	static const char *const levels[] = {
		"debug", "info", "warn", "error",
	};
	static const char *const formats[] = { "kv", "json" };
	int x;

	if (!cfg_want_object(c, v, "log"))
		return;
	cfg_check_keys(c, v, "log", log_keys, NULL);
	if (cfg_get_enum(c, v, "log", "level", levels, 4, &x) == CFG_FOUND)
		cfg->log_level = (enum cfg_log_level)x;
	if (cfg_get_enum(c, v, "log", "format", formats, 2, &x) == CFG_FOUND)
		cfg->log_format = (enum cfg_log_format)x;
}

static void
parse_http(struct cfg_ctx *c, const json_t *v, struct cfg *cfg)
{
	struct cfg_http *h = &cfg->http;
	enum cfg_got per_ip;

	if (!cfg_want_object(c, v, "http"))
		return;
	cfg_check_keys(c, v, "http", http_keys, NULL);
	cfg_get_u32(c, v, "http", "max_connections", 1, 1000000,
		    &h->max_connections);
	per_ip = cfg_get_u32(c, v, "http", "max_connections_per_ip", 1, 1000000,
			     &h->max_connections_per_ip);
	cfg_get_u32(c, v, "http", "connection_timeout_s", 1, 3600,
		    &h->connection_timeout_s);
	cfg_get_size(c, v, "http", "max_body_bytes", 1024, 16 << 20,
		     &h->max_body_bytes);
	cfg_get_size(c, v, "http", "connection_memory_bytes", 4096, 1 << 20,
		     &h->connection_memory_bytes);
	if (h->max_connections_per_ip > h->max_connections) {
		if (per_ip == CFG_FOUND)
			cfg_report(c, "http.max_connections_per_ip",
				   "%" PRIu32 " is more than max_connections (%"
				   PRIu32 ")", h->max_connections_per_ip,
				   h->max_connections);
		h->max_connections_per_ip = h->max_connections;
	}
}

/* Asks the adapter about the source's options; its message starts with
 * the key's path relative to the source ("options.bid: ..."). */
static void
check_options(struct cfg_ctx *c, const char *path, const struct cfg_source *s)
{
	struct mk_err err;
	char p[CFG_PATH_MAX];
	const char *sep;
	size_t plen;

	if (feed_adapter_check_options(s->adapter, s->options, &err) == MK_OK)
		return;
	sep = strstr(err.msg, ": ");
	plen = sep != NULL ? (size_t)(sep - err.msg) : 0;
	if (plen > 0 && plen < 64 &&
	    strspn(err.msg, "abcdefghijklmnopqrstuvwxyz"
		   "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.[]") == plen) {
		cfg_fit(p, sizeof(p), "%s.%.*s", path, (int)plen, err.msg);
		cfg_report(c, p, "%s", sep + 2);
	} else {
		cfg_path_key(p, path, "options");
		cfg_report(c, p, "%s", err.msg);
	}
}

static void
parse_source(struct cfg_ctx *c, const json_t *v, const char *path,
	     struct cfg_source *s)
{
	const char *str;
	char p[CFG_PATH_MAX], shown[CFG_SHOW_MAX], why[96];
	json_t *opt;

	if (!cfg_want_object(c, v, path))
		return;
	cfg_check_keys(c, v, path, source_keys, NULL);

	if (cfg_get_required(c, v, path, "name", &str) == CFG_FOUND) {
		if (cfg_is_source_name(str)) {
			strcpy(s->name, str);
		} else {
			cfg_path_key(p, path, "name");
			cfg_report(c, p, "%s: expected 1-%d characters of "
				   "A-Z a-z 0-9 _ . -", cfg_show(str, shown),
				   AGG_SOURCE_MAX - 1);
		}
	}
	if (cfg_get_required(c, v, path, "adapter", &str) == CFG_FOUND) {
		s->adapter = feed_adapter_find(str);
		if (s->adapter == NULL) {
			char names[256];

			feed_adapter_names(names, sizeof(names));
			cfg_path_key(p, path, "adapter");
			cfg_report(c, p, "unknown adapter %s (known: %s)",
				   cfg_show(str, shown), names);
		}
	}
	if (cfg_get_required(c, v, path, "base_url", &str) == CFG_FOUND) {
		cfg_path_key(p, path, "base_url");
		if (!cfg_check_url(str, why, sizeof(why))) {
			cfg_report(c, p, "%s: %s", cfg_show(str, shown), why);
		} else if ((s->base_url = dup_str(c, str)) != NULL) {
			size_t n = strlen(s->base_url);

			/* check_url proved a host follows "//". */
			while (s->base_url[n - 1] == '/')
				s->base_url[--n] = '\0';
		}
	}
	cfg_get_int(c, v, path, "interval_ms", 50, 3600000, &s->interval_ms);
	cfg_get_int(c, v, path, "timeout_ms", 1, 60000, &s->timeout_ms);
	cfg_get_weight(c, v, path, "weight", &s->weight);
	cfg_get_size(c, v, path, "max_body_bytes", 1024, 64 << 20,
		     &s->max_body_bytes);
	cfg_get_bool(c, v, path, "enabled", &s->enabled);

	opt = json_object_get(v, "options");
	if (opt != NULL && !json_is_object(opt)) {
		cfg_path_key(p, path, "options");
		cfg_report(c, p, "expected an object, got %s",
			   mk_json_type_name(opt));
	} else {
		s->options = json_incref(opt);
		if (s->adapter != NULL)
			check_options(c, path, s);
	}
}

static int
cmp_name_ix(const void *a, const void *b)
{
	const struct cfg_name_ix *x = a, *y = b;
	int r = strcmp(x->name, y->name);

	if (r != 0)
		return r;
	return (x->ix > y->ix) - (x->ix < y->ix);
}

/*
 * Sorts the n entries of ix by name, reports each later duplicate as
 * "<what>[j].<key>: duplicate <noun> ... (first at <what>[i])", and drops
 * duplicates so lookups find the first. Returns the new count.
 */
static size_t
index_names(struct cfg_ctx *c, struct cfg_name_ix *ix, size_t n,
	    const char *what, const char *key, const char *noun)
{
	size_t out = 0;
	char p[CFG_PATH_MAX], q[CFG_PATH_MAX], shown[CFG_SHOW_MAX];

	qsort(ix, n, sizeof(*ix), cmp_name_ix);
	for (size_t i = 0; i < n; i++) {
		if (out > 0 && strcmp(ix[out - 1].name, ix[i].name) == 0) {
			cfg_path_index(q, what, ix[i].ix);
			cfg_path_key(p, q, key);
			cfg_path_index(q, what, ix[out - 1].ix);
			cfg_report(c, p, "duplicate %s %s (first at %s)", noun,
				   cfg_show(ix[i].name, shown), q);
			continue;
		}
		ix[out++] = ix[i];
	}
	return out;
}

static long
lookup(const struct cfg_name_ix *ix, size_t n, const char *name)
{
	size_t lo = 0, hi = n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int r = strcmp(name, ix[mid].name);

		if (r == 0)
			return (long)ix[mid].ix;
		if (r < 0)
			hi = mid;
		else
			lo = mid + 1;
	}
	return -1;
}

static void
parse_sources(struct cfg_ctx *c, const json_t *v, struct cfg *cfg)
{
	size_t n;

	if (v == NULL) {
		cfg_report(c, "sources", "required");
		return;
	}
	if (!json_is_array(v)) {
		cfg_report(c, "sources", "expected an array, got %s",
			   mk_json_type_name(v));
		return;
	}
	n = json_array_size(v);
	if (n == 0 || n > MAX_SOURCES) {
		cfg_report(c, "sources", "expected 1 to %d sources, got %zu",
			   MAX_SOURCES, n);
		return;
	}
	cfg->sources = calloc(n, sizeof(*cfg->sources));
	c->src_index = calloc(n, sizeof(*c->src_index));
	if (cfg->sources == NULL || c->src_index == NULL) {
		cfg_oom(c);
		return;
	}
	cfg->nsources = n;
	c->sources_usable = true;
	for (size_t i = 0; i < n; i++) {
		struct cfg_source *s = &cfg->sources[i];
		char p[CFG_PATH_MAX];

		s->interval_ms = 1000;
		s->timeout_ms = 2000;
		s->weight = CFG_WEIGHT_ONE;
		s->max_body_bytes = 262144;
		s->enabled = true;
		cfg_path_index(p, "sources", i);
		parse_source(c, json_array_get(v, i), p, s);
		if (s->name[0] != '\0') {
			c->src_index[c->nsrc_index].name = s->name;
			c->src_index[c->nsrc_index++].ix = i;
		}
	}
	c->nsrc_index = index_names(c, c->src_index, c->nsrc_index, "sources",
				    "name", "source");
}

/* Reads the filter parameters of obj into p; *min_set tells whether obj
 * set min_sources. */
static void
parse_params(struct cfg_ctx *c, const json_t *obj, const char *path,
	     struct agg_params *p, bool *min_set)
{
	for (size_t i = 0; i < NPARAMS; i++) {
		const struct param_field *f = &param_fields[i];
		char *field = (char *)p + f->off;
		int64_t v;

		if (cfg_get_int(c, obj, path, f->key, f->lo, f->hi, &v) !=
		    CFG_FOUND)
			continue;
		/* The table's bounds make each narrowing exact. */
		switch (f->kind) {
		case F_INT: {
			int x = (int)v;

			memcpy(field, &x, sizeof(x));
			break;
		}
		case F_U32: {
			uint32_t x = (uint32_t)v;

			memcpy(field, &x, sizeof(x));
			break;
		}
		case F_I64:
			memcpy(field, &v, sizeof(v));
			break;
		}
		if (strcmp(f->key, "min_sources") == 0)
			*min_set = true;
	}
}

/* Reads the bracket object b (at bp) into br and its optional cum into
 * *given (*have_cum says whether there was one). False, after reporting,
 * when a value is missing or malformed. */
static bool
read_bracket(struct cfg_ctx *c, const json_t *b, const char *bp,
	     struct cfg_bracket *br, struct mk_dec *given, bool *have_cum)
{
	static const char *const req[] = { "floor", "cap", "mmr" };
	struct mk_dec *dst[] = { &br->floor, &br->cap, &br->mmr };
	char p[CFG_PATH_MAX];
	bool ok = true;
	enum cfg_got g;

	if (!cfg_want_object(c, b, bp))
		return false;
	cfg_check_keys(c, b, bp, bracket_keys, NULL);
	for (size_t f = 0; f < 3; f++) {
		g = cfg_get_dec(c, b, bp, req[f], dst[f]);
		if (g == CFG_ABSENT) {
			cfg_path_key(p, bp, req[f]);
			cfg_report(c, p, "required");
		}
		ok = ok && g == CFG_FOUND;
	}
	g = cfg_get_dec(c, b, bp, "cum", given);
	*have_cum = g == CFG_FOUND;
	return ok && g != CFG_BAD;
}

/* Checks bracket k (at bp) on its own and, when prev is not NULL, against
 * the bracket before it. False after reporting. */
static bool
check_bracket(struct cfg_ctx *c, const char *bp, size_t k,
	      const struct cfg_bracket *br, const struct cfg_bracket *prev)
{
	char p[CFG_PATH_MAX], t1[MK_DEC_STRLEN], t2[MK_DEC_STRLEN];
	bool ok = true;

	cfg_path_key(p, bp, "floor");
	cfg_format_dec(br->floor, t1);
	if (k == 0 && !mk_dec_is_zero(br->floor)) {
		cfg_report(c, p, "the first bracket must start at 0, got %s",
			   t1);
		ok = false;
	} else if (prev != NULL && mk_dec_cmp(br->floor, prev->cap) != 0) {
		cfg_report(c, p, "%s leaves a gap or overlap: the previous "
			   "bracket's cap is %s", t1,
			   cfg_format_dec(prev->cap, t2));
		ok = false;
	}
	cfg_path_key(p, bp, "cap");
	if (mk_dec_cmp(br->cap, br->floor) <= 0) {
		cfg_report(c, p, "%s must be above the floor %s",
			   cfg_format_dec(br->cap, t2), t1);
		ok = false;
	}
	cfg_path_key(p, bp, "mmr");
	cfg_format_dec(br->mmr, t1);
	if (mk_dec_is_neg(br->mmr) ||
	    mk_dec_cmp(br->mmr, mk_dec_from_int(1)) >= 0) {
		cfg_report(c, p, "must be at least 0 and below 1, got %s", t1);
		ok = false;
	} else if (prev != NULL && mk_dec_cmp(br->mmr, prev->mmr) < 0) {
		cfg_report(c, p, "%s is below the previous bracket's %s "
			   "(rates may not decrease)", t1,
			   cfg_format_dec(prev->mmr, t2));
		ok = false;
	}
	return ok;
}

/* The maintenance amount of br after prev, exactly:
 * cum_k = cum_{k-1} + floor_k * (mmr_k - mmr_{k-1}).
 * MK_ERANGE or MK_EINEXACT when it does not fit an mk_dec. */
static enum mk_status
next_cum(const struct cfg_bracket *prev, const struct cfg_bracket *br,
	 struct mk_dec *out)
{
	struct mk_dec diff, step;
	int sc = br->floor.scale + (br->mmr.scale > prev->mmr.scale ?
				    br->mmr.scale : prev->mmr.scale);
	enum mk_status st;

	if (sc > MK_DEC_MAX_SCALE)
		sc = MK_DEC_MAX_SCALE;
	st = mk_dec_sub(br->mmr, prev->mmr, &diff);
	if (st == MK_OK)
		st = mk_dec_mul(br->floor, diff, sc, MK_ROUND_EXACT, &step);
	if (st == MK_OK)
		st = mk_dec_add(prev->cum, step, out);
	return st;
}

static void
parse_brackets(struct cfg_ctx *c, const json_t *v, const char *path,
	       struct cfg_margin *m)
{
	bool chain = true;   /* every bracket so far was sound */
	size_t n;

	if (!json_is_array(v)) {
		cfg_report(c, path, "expected an array, got %s",
			   mk_json_type_name(v));
		return;
	}
	n = json_array_size(v);
	if (n == 0 || n > CFG_MAX_BRACKETS) {
		cfg_report(c, path, "expected 1 to %d brackets, got %zu",
			   CFG_MAX_BRACKETS, n);
		return;
	}
	m->brackets = calloc(n, sizeof(*m->brackets));
	if (m->brackets == NULL) {
		cfg_oom(c);
		return;
	}
	m->nbrackets = n;
	for (size_t k = 0; k < n; k++) {
		struct cfg_bracket *br = &m->brackets[k];
		const struct cfg_bracket *prev =
			chain && k > 0 ? &m->brackets[k - 1] : NULL;
		char bp[CFG_PATH_MAX], p[CFG_PATH_MAX];
		char t1[MK_DEC_STRLEN], t2[MK_DEC_STRLEN];
		struct mk_dec given, cum = MK_DEC(0, 0);
		bool have_cum;

		cfg_path_index(bp, path, k);
		if (!read_bracket(c, json_array_get(v, k), bp, br, &given,
				  &have_cum) ||
		    !check_bracket(c, bp, k, br, prev) ||
		    (k > 0 && !chain)) {
			chain = false;
			continue;
		}
		cfg_path_key(p, bp, "cum");
		if (prev != NULL && next_cum(prev, br, &cum) != MK_OK) {
			cfg_report(c, p, "the maintenance amount cannot be "
				   "represented exactly");
			chain = false;
			continue;
		}
		if (have_cum && mk_dec_cmp(given, cum) != 0)
			cfg_report(c, p, "%s breaks continuity: expected %s "
				   "(cum_k = cum_{k-1} + floor_k * (mmr_k - "
				   "mmr_{k-1}))", cfg_format_dec(given, t1),
				   cfg_format_dec(cum, t2));
		br->cum = cum;
	}
}

static void
parse_margin(struct cfg_ctx *c, const json_t *v, const char *path,
	     struct cfg_margin *m)
{
	static const char *const contracts[] = { "linear", "inverse" };
	const json_t *b;
	char p[CFG_PATH_MAX], t[MK_DEC_STRLEN];
	enum cfg_got size_got;
	int x;

	if (!cfg_want_object(c, v, path))
		return;
	cfg_check_keys(c, v, path, margin_keys, NULL);
	b = json_object_get(v, "brackets");
	if (b != NULL) {
		cfg_path_key(p, path, "brackets");
		parse_brackets(c, b, p, m);
	}
	cfg_get_u32(c, v, path, "confirm_count", 1, 1000, &m->confirm_count);
	cfg_get_int(c, v, path, "confirm_ms", 0, 86400000, &m->confirm_ms);
	cfg_get_u32(c, v, path, "safe_buffer_bps", 0, 10000,
		    &m->safe_buffer_bps);
	if (cfg_get_enum(c, v, path, "contract", contracts, 2, &x) == CFG_FOUND)
		m->contract = (enum cfg_contract)x;
	size_got = cfg_get_dec(c, v, path, "contract_size", &m->contract_size);
	cfg_path_key(p, path, "contract_size");
	if (size_got == CFG_FOUND && m->contract == CFG_LINEAR) {
		cfg_report(c, p, "only for \"contract\": \"inverse\"");
		m->contract_size = MK_DEC(0, 0);
	} else if (size_got == CFG_FOUND && !mk_dec_is_pos(m->contract_size)) {
		cfg_format_dec(m->contract_size, t);
		cfg_report(c, p, "must be positive, got %s", t);
	} else if (size_got == CFG_ABSENT && m->contract == CFG_INVERSE) {
		cfg_report(c, p, "required for an inverse contract");
	}
}

static void
parse_leg(struct cfg_ctx *c, const json_t *v, const char *path,
	  const struct cfg *cfg, const struct cfg_instrument *ins,
	  struct agg_leg_spec *leg, struct cfg_leg *cl)
{
	const char *str;
	char p[CFG_PATH_MAX], shown[CFG_SHOW_MAX];
	const struct cfg_source *src = NULL;
	enum cfg_got g;

	leg->convert_via = -1;
	memcpy(cl->quote, ins->quote, sizeof(cl->quote));
	if (!cfg_want_object(c, v, path))
		return;
	cfg_check_keys(c, v, path, leg_keys, NULL);
	if (cfg_get_required(c, v, path, "source", &str) == CFG_FOUND &&
	    c->sources_usable) {
		long ix = lookup(c->src_index, c->nsrc_index, str);

		cfg_path_key(p, path, "source");
		cfg_show(str, shown);
		if (ix < 0) {
			cfg_report(c, p, "unknown source %s", shown);
		} else if (!cfg->sources[ix].enabled) {
			cfg_report(c, p, "source %s is disabled", shown);
		} else {
			src = &cfg->sources[ix];
			cl->source = (size_t)ix;
			strcpy(leg->source, src->name);
			leg->weight = src->weight;
		}
	}
	if (cfg_get_required(c, v, path, "market", &str) == CFG_FOUND) {
		struct mk_err err;

		cfg_path_key(p, path, "market");
		if (strlen(str) >= AGG_MARKET_MAX)
			cfg_report(c, p, "%s: longer than %d characters",
				   cfg_show(str, shown), AGG_MARKET_MAX - 1);
		else if (src != NULL && src->adapter != NULL &&
			 feed_adapter_check_market(src->adapter, str, &err)
			 != MK_OK)
			cfg_report(c, p, "%s", err.msg);
		else
			strcpy(leg->market, str);
	}
	cfg_get_weight(c, v, path, "weight", &leg->weight);
	g = cfg_get_str(c, v, path, "quote", &str);
	if (g == CFG_FOUND) {
		cfg_path_key(p, path, "quote");
		if (cfg_is_currency(str, strlen(str)))
			strcpy(cl->quote, str);
		else
			cfg_report(c, p, "%s: expected a currency code of 1-%d "
				   "characters A-Z 0-9", cfg_show(str, shown),
				   CFG_CCY_MAX - 1);
	}
}

static void
parse_legs(struct cfg_ctx *c, const json_t *v, const char *path,
	   const struct cfg *cfg, struct agg_instrument_spec *spec,
	   struct cfg_instrument *ins)
{
	size_t n;

	if (v == NULL) {
		cfg_report(c, path, "required");
		return;
	}
	if (!json_is_array(v)) {
		cfg_report(c, path, "expected an array, got %s",
			   mk_json_type_name(v));
		return;
	}
	n = json_array_size(v);
	if (n == 0 || n > CFG_MAX_LEGS) {
		cfg_report(c, path, "expected 1 to %d legs, got %zu",
			   CFG_MAX_LEGS, n);
		return;
	}
	spec->legs = calloc(n, sizeof(*spec->legs));
	ins->legs = calloc(n, sizeof(*ins->legs));
	if (spec->legs == NULL || ins->legs == NULL) {
		cfg_oom(c);
		return;
	}
	spec->nlegs = n;
	for (size_t k = 0; k < n; k++) {
		struct agg_leg_spec *leg = &spec->legs[k];
		char p[CFG_PATH_MAX], q[CFG_PATH_MAX], shown[CFG_SHOW_MAX];

		cfg_path_index(p, path, k);
		parse_leg(c, json_array_get(v, k), p, cfg, ins, leg,
			  &ins->legs[k]);
		if (leg->source[0] == '\0' || leg->market[0] == '\0')
			continue;
		for (size_t j = 0; j < k; j++) {
			if (strcmp(spec->legs[j].source, leg->source) == 0 &&
			    strcmp(spec->legs[j].market, leg->market) == 0) {
				cfg_path_key(q, p, "market");
				cfg_path_index(p, path, j);
				cfg_report(c, q, "%s on source \"%s\" is "
					   "already leg %s",
					   cfg_show(leg->market, shown),
					   leg->source, p);
				break;
			}
		}
	}
}

/* Number of distinct source names among the instrument's legs. */
static size_t
distinct_sources(const struct agg_instrument_spec *spec)
{
	size_t n = 0;

	for (size_t j = 0; j < spec->nlegs; j++) {
		size_t k;

		for (k = 0; k < j; k++)
			if (strcmp(spec->legs[k].source,
				   spec->legs[j].source) == 0)
				break;
		n += k == j;
	}
	return n;
}

static void
parse_instrument(struct cfg_ctx *c, const json_t *v, const char *path,
		 const struct cfg *cfg, struct agg_instrument_spec *spec,
		 struct cfg_instrument *ins)
{
	const char *str;
	char p[CFG_PATH_MAX], shown[CFG_SHOW_MAX];
	bool min_set = false;
	size_t nsrc;

	if (!cfg_want_object(c, v, path))
		return;
	cfg_check_keys(c, v, path, instrument_keys, param_keys);
	if (cfg_get_required(c, v, path, "symbol", &str) == CFG_FOUND) {
		if (cfg_split_symbol(str, ins->base, ins->quote)) {
			strcpy(spec->symbol, str);
		} else {
			cfg_path_key(p, path, "symbol");
			cfg_report(c, p, "%s: expected \"BASE-QUOTE\" with "
				   "1-%d characters A-Z 0-9 on each side, "
				   "e.g. \"BTC-USD\"", cfg_show(str, shown),
				   CFG_CCY_MAX - 1);
		}
	}
	parse_params(c, v, path, &spec->params, &min_set);
	cfg_path_key(p, path, "legs");
	parse_legs(c, json_object_get(v, "legs"), p, cfg, spec, ins);
	nsrc = distinct_sources(spec);
	if (spec->nlegs > 0 && spec->params.min_sources > nsrc) {
		/* The quorum counts venues, not legs. */
		cfg_path_key(p, path, "min_sources");
		cfg_report(c, p, "%" PRIu32 "%s is more than the %zu distinct "
			   "source%s of the legs",
			   spec->params.min_sources,
			   min_set ? "" : c->min_sources_in_defaults ?
			   " (from \"defaults\")" : " (the default)",
			   nsrc, nsrc == 1 ? "" : "s");
	}
	if (json_object_get(v, "margin") != NULL) {
		cfg_path_key(p, path, "margin");
		parse_margin(c, json_object_get(v, "margin"), p, &ins->margin);
	}
}

/* Wires each leg quoted in another currency to its conversion
 * instrument "<leg quote>-<instrument quote>". */
static void
wire_conversions(struct cfg_ctx *c, struct cfg *cfg)
{
	for (size_t i = 0; i < cfg->ninstruments; i++) {
		struct agg_instrument_spec *spec = &cfg->specs[i];
		const struct cfg_instrument *ins = &cfg->instruments[i];

		if (ins->quote[0] == '\0')
			continue;
		for (size_t k = 0; k < spec->nlegs; k++) {
			const char *q = ins->legs[k].quote;
			char sym[2 * CFG_CCY_MAX], p[CFG_PATH_MAX];
			long j;

			if (strcmp(q, ins->quote) == 0)
				continue;
			cfg_fit(sym, sizeof(sym), "%s-%s", q, ins->quote);
			j = lookup(c->ins_index, c->nins_index, sym);
			if (j < 0) {
				cfg_fit(p, sizeof(p),
					"instruments[%zu].legs[%zu].quote",
					i, k);
				cfg_report(c, p, "no instrument \"%s\" to "
					   "convert %s into %s", sym, q,
					   ins->quote);
				continue;
			}
			spec->legs[k].convert_via = (int)j;
		}
	}
}

struct frame {
	size_t node;    /* instrument index */
	size_t leg;     /* next leg to follow */
};

/* Reports the cycle closed by leg k of the instrument on top of the
 * stack, which converts through stack[from]. */
static void
report_cycle(struct cfg_ctx *c, const struct cfg *cfg,
	     const struct frame *stack, size_t from, size_t sp, size_t k)
{
	char chain[CFG_MSG_MAX - 64], p[CFG_PATH_MAX];
	size_t used = 0;

	for (size_t t = from; t < sp && used < sizeof(chain); t++)
		used += (size_t)snprintf(chain + used, sizeof(chain) - used,
					 "%s -> ",
					 cfg->specs[stack[t].node].symbol);
	if (used < sizeof(chain))
		snprintf(chain + used, sizeof(chain) - used, "%s",
			 cfg->specs[stack[from].node].symbol);
	cfg_fit(p, sizeof(p), "instruments[%zu].legs[%zu].quote",
		stack[sp - 1].node, k);
	cfg_report(c, p, "quote conversions form a cycle: %s", chain);
}

/* Reports each conversion cycle once, at the leg that closes it: a
 * depth-first walk over the legs' convert_via edges, iterative so that a
 * long chain cannot exhaust the stack. Cost O(instruments + legs). */
static void
check_cycles(struct cfg_ctx *c, const struct cfg *cfg)
{
	enum { WHITE, GREY, BLACK };
	size_t n = cfg->ninstruments;
	struct frame *stack = calloc(n, sizeof(*stack));
	unsigned char *color = calloc(n, 1);

	if (stack == NULL || color == NULL) {
		cfg_oom(c);
		goto out;
	}
	for (size_t r = 0; r < n; r++) {
		size_t sp = 0;

		if (color[r] != WHITE)
			continue;
		color[r] = GREY;
		stack[sp++] = (struct frame){ r, 0 };
		while (sp > 0) {
			struct frame *f = &stack[sp - 1];
			const struct agg_instrument_spec *s =
				&cfg->specs[f->node];
			size_t k, from = 0;
			int j;

			if (f->leg == s->nlegs) {
				color[f->node] = BLACK;
				sp--;
				continue;
			}
			k = f->leg++;
			j = s->legs[k].convert_via;
			if (j < 0 || color[j] == BLACK)
				continue;
			if (color[j] == WHITE) {
				/* Each node is pushed once: sp <= n. */
				color[j] = GREY;
				stack[sp++] = (struct frame){ (size_t)j, 0 };
				continue;
			}
			while (stack[from].node != (size_t)j)
				from++;
			report_cycle(c, cfg, stack, from, sp, k);
		}
	}
out:
	free(stack);
	free(color);
}

static void
parse_instruments(struct cfg_ctx *c, const json_t *v, struct cfg *cfg,
		  const struct agg_params *defaults)
{
	size_t n, ni = 0;

	if (v == NULL) {
		cfg_report(c, "instruments", "required");
		return;
	}
	if (!json_is_array(v)) {
		cfg_report(c, "instruments", "expected an array, got %s",
			   mk_json_type_name(v));
		return;
	}
	n = json_array_size(v);
	if (n == 0) {
		cfg_report(c, "instruments",
			   "at least one instrument is needed");
		return;
	}
	cfg->specs = calloc(n, sizeof(*cfg->specs));
	cfg->instruments = calloc(n, sizeof(*cfg->instruments));
	c->ins_index = calloc(n, sizeof(*c->ins_index));
	if (cfg->specs == NULL || cfg->instruments == NULL ||
	    c->ins_index == NULL) {
		cfg_oom(c);
		return;
	}
	cfg->ninstruments = n;
	for (size_t i = 0; i < n; i++) {
		struct cfg_margin *m = &cfg->instruments[i].margin;
		char p[CFG_PATH_MAX];

		cfg->specs[i].params = *defaults;
		m->confirm_count = 3;
		m->confirm_ms = 3000;
		m->safe_buffer_bps = 200;
		m->contract = CFG_LINEAR;
		m->contract_size = MK_DEC(0, 0);
		cfg_path_index(p, "instruments", i);
		parse_instrument(c, json_array_get(v, i), p, cfg,
				 &cfg->specs[i], &cfg->instruments[i]);
		if (c->oom)
			return;
		if (cfg->specs[i].symbol[0] != '\0') {
			c->ins_index[ni].name = cfg->specs[i].symbol;
			c->ins_index[ni++].ix = i;
		}
	}
	c->nins_index = index_names(c, c->ins_index, ni, "instruments",
				    "symbol", "instrument");
	wire_conversions(c, cfg);
	check_cycles(c, cfg);
}

/* Walks the whole document into cfg, reporting through c. */
static void
build(struct cfg_ctx *c, const json_t *root, struct cfg *cfg)
{
	const json_t *v;
	const char *str;
	char why[96], shown[CFG_SHOW_MAX];
	struct agg_params defaults;

	if (!json_is_object(root)) {
		cfg_report(c, "", "the top level must be an object, got %s",
			   mk_json_type_name(root));
		return;
	}
	cfg_check_keys(c, root, "", top_keys, NULL);
	if (cfg_get_str(c, root, "", "listen", &str) == CFG_FOUND &&
	    !cfg_parse_listen(str, cfg, why, sizeof(why)))
		cfg_report(c, "listen", "%s: %s", cfg_show(str, shown), why);
	if (cfg_get_str(c, root, "", "token_file", &str) == CFG_FOUND)
		cfg->token_file = dup_str(c, str);
	if (cfg_get_str(c, root, "", "database", &str) == CFG_FOUND) {
		free(cfg->database);
		cfg->database = dup_str(c, str);
	}
	if ((v = json_object_get(root, "log")) != NULL)
		parse_log(c, v, cfg);
	if ((v = json_object_get(root, "http")) != NULL)
		parse_http(c, v, cfg);
	parse_sources(c, json_object_get(root, "sources"), cfg);
	if (c->oom)
		return;

	agg_params_default(&defaults);
	if ((v = json_object_get(root, "defaults")) != NULL &&
	    cfg_want_object(c, v, "defaults")) {
		cfg_check_keys(c, v, "defaults", param_keys, NULL);
		parse_params(c, v, "defaults", &defaults,
			     &c->min_sources_in_defaults);
	}
	parse_instruments(c, json_object_get(root, "instruments"), cfg,
			  &defaults);
}

/* ---- public interface ---- */

static struct cfg *
cfg_new(void)
{
	struct cfg *cfg = calloc(1, sizeof(*cfg));
	char why[96];

	if (cfg == NULL)
		return NULL;
	cfg->database = strdup("markd.db");
	if (cfg->database == NULL) {
		free(cfg);
		return NULL;
	}
	if (!cfg_parse_listen("127.0.0.1:8080", cfg, why, sizeof(why)))
		assert(!"the default listen address parses");
	cfg->log_level = CFG_LOG_INFO;
	cfg->log_format = CFG_LOG_KV;
	cfg->http.max_connections = 1024;
	cfg->http.max_connections_per_ip = 64;
	cfg->http.connection_timeout_s = 10;
	cfg->http.max_body_bytes = 65536;
	cfg->http.connection_memory_bytes = 8192;
	return cfg;
}

static void
errs_reset(struct cfg_errors *errs)
{
	if (errs != NULL) {
		errs->count = 0;
		errs->total = 0;
	}
}

enum mk_status
cfg_load_buffer(const void *buf, size_t len, struct cfg **out,
		struct cfg_errors *errs)
{
	struct cfg_ctx c = { .errs = errs };
	struct cfg *cfg = NULL;
	json_t *root = NULL;
	json_error_t jerr;
	enum mk_status st;

	*out = NULL;
	errs_reset(errs);
	root = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &jerr);
	if (root == NULL) {
		cfg_report_at(&c, "", jerr.line, jerr.column,
			      "invalid JSON: %s", jerr.text);
		st = MK_EPARSE;
		goto out;
	}
	cfg = cfg_new();
	if (cfg == NULL) {
		cfg_oom(&c);
		st = MK_ENOMEM;
		goto out;
	}
	build(&c, root, cfg);
	if (c.oom) {
		st = MK_ENOMEM;
	} else if (c.nerr > 0) {
		st = MK_ECONFIG;
	} else {
		st = MK_OK;
		*out = cfg;
		cfg = NULL;
	}
out:
	free(c.src_index);
	free(c.ins_index);
	cfg_free(cfg);
	json_decref(root);
	return st;
}

enum mk_status
cfg_load(const char *path, struct cfg **out, struct cfg_errors *errs)
{
	struct cfg_ctx c = { .errs = errs };
	FILE *f = NULL;
	char *buf = NULL;
	size_t len = 0, cap = 0;
	enum mk_status st = MK_OK;

	*out = NULL;
	errs_reset(errs);
	f = fopen(path, "rb");
	if (f == NULL) {
		cfg_report(&c, "", "cannot open: %s", strerror(errno));
		st = MK_EIO;
		goto out;
	}
	/* Read at most CFG_FILE_MAX + 1 bytes: one more means too big. */
	for (;;) {
		size_t got;

		if (len == cap) {
			size_t ncap = cap ? cap * 2 : 16384;
			char *nbuf;

			if (cap == CFG_FILE_MAX + 1)
				break;
			if (ncap > CFG_FILE_MAX + 1)
				ncap = CFG_FILE_MAX + 1;
			nbuf = realloc(buf, ncap);
			if (nbuf == NULL) {
				cfg_oom(&c);
				st = MK_ENOMEM;
				goto out;
			}
			buf = nbuf;
			cap = ncap;
		}
		got = fread(buf + len, 1, cap - len, f);
		len += got;
		if (got == 0)
			break;
	}
	if (ferror(f)) {
		cfg_report(&c, "", "cannot read: %s", strerror(errno));
		st = MK_EIO;
		goto out;
	}
	if (len > CFG_FILE_MAX) {
		cfg_report(&c, "", "larger than %u bytes", CFG_FILE_MAX);
		st = MK_ETOOBIG;
		goto out;
	}
	st = cfg_load_buffer(buf, len, out, errs);
out:
	if (f != NULL)
		fclose(f);
	free(buf);
	return st;
}

void
cfg_free(struct cfg *cfg)
{
	if (cfg == NULL)
		return;
	for (size_t i = 0; i < cfg->nsources; i++) {
		free(cfg->sources[i].base_url);
		json_decref(cfg->sources[i].options);
	}
	free(cfg->sources);
	for (size_t i = 0; i < cfg->ninstruments; i++) {
		free(cfg->specs[i].legs);
		free(cfg->instruments[i].legs);
		free(cfg->instruments[i].margin.brackets);
	}
	free(cfg->specs);
	free(cfg->instruments);
	free(cfg->token_file);
	free(cfg->database);
	free(cfg);
}

int
cfg_source_index(const struct cfg *cfg, const char *name)
{
	for (size_t i = 0; i < cfg->nsources; i++)
		if (strcmp(cfg->sources[i].name, name) == 0)
			return (int)i;
	return -1;
}

int
cfg_instrument_index(const struct cfg *cfg, const char *symbol)
{
	for (size_t i = 0; i < cfg->ninstruments; i++)
		if (strcmp(cfg->specs[i].symbol, symbol) == 0)
			return (int)i;
	return -1;
}

int
cfg_summary(const struct cfg *cfg, char *buf, size_t cap)
{
	size_t enabled = 0, legs = 0;
	bool v6 = cfg->listen_addr.ss_family == AF_INET6;

	for (size_t i = 0; i < cfg->nsources; i++)
		enabled += cfg->sources[i].enabled;
	for (size_t i = 0; i < cfg->ninstruments; i++)
		legs += cfg->specs[i].nlegs;
	return snprintf(buf, cap, "%zu instrument%s, %zu source%s "
			"(%zu enabled), %zu leg%s, listen %s%s%s:%u, "
			"database %s", cfg->ninstruments,
			cfg->ninstruments == 1 ? "" : "s", cfg->nsources,
			cfg->nsources == 1 ? "" : "s", enabled, legs,
			legs == 1 ? "" : "s", v6 ? "[" : "",
			cfg->listen_host, v6 ? "]" : "",
			(unsigned)cfg->listen_port, cfg->database);
}

const char *
cfg_log_level_name(enum cfg_log_level level)
{
	switch (level) {
	case CFG_LOG_DEBUG: return "debug";
	case CFG_LOG_INFO: return "info";
	case CFG_LOG_WARN: return "warn";
	case CFG_LOG_ERROR: return "error";
	}
	return "?";
}

const char *
cfg_log_format_name(enum cfg_log_format format)
{
	switch (format) {
	case CFG_LOG_KV: return "kv";
	case CFG_LOG_JSON: return "json";
	}
	return "?";
}

const char *
cfg_contract_name(enum cfg_contract contract)
{
	switch (contract) {
	case CFG_LINEAR: return "linear";
	case CFG_INVERSE: return "inverse";
	}
	return "?";
}
