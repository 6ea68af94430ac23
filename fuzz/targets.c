/*
 * targets.c - fuzz target bodies (see targets.h): drive one parser, then
 * check the promises its header makes; abort() on a broken one.
 */
#include "config.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "aggregator/dec.h"
#include "aggregator/json_dec.h"
#include "daemon/cfg.h"
#include "feeds/adapter.h"
#include "fuzz/targets.h"
#include "fuzz/targets_int.h"
#include "tools/history.h"

/* Every quote of an every-market parse beyond this is MK_ETOOBIG. */
#define SMALL_CAP 2
#define LARGE_CAP 256
/* Rows a fuzzed history file may hold (keeps one run fast). */
#define HISTORY_ROWS 4096
/* Bars whose history_find / history_price_at are checked. */
#define HISTORY_PROBES 64

static const char *const target_names[] = {
	"dec", "config", "history",
	"adapter-binance", "adapter-bitfinex", "adapter-bitstamp",
	"adapter-bybit", "adapter-coinbase", "adapter-gemini",
	"adapter-kraken", "adapter-kucoin", "adapter-okx", "adapter-pyth",
	"adapter-json",
#ifdef MARKD_FUZZ_HTTP
	"position", "evaluate", "collateral",
#endif
};
/* Targets whose code may be left out of a build (fuzz/http.inc adds the
 * margin request bodies): their regression folders are still known. */
static const char *const optional_names[] = { "position", "evaluate",
					       "collateral" };

#define ADAPTER_PREFIX "adapter-"

void
markd_fuzz_fail(const char *target, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "markd-fuzz %s: ", target);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	abort();
}

char *
markd_fuzz_copy(const char *target, const void *p, size_t len)
{
	char *c = malloc(len > 0 ? len : 1);

	if (c == NULL)
		markd_fuzz_fail(target, "out of memory for a %zu-byte copy", len);
	if (len > 0)
		memcpy(c, p, len);
	return c;
}

bool
markd_fuzz_terminated(const char *s, size_t cap)
{
	return memchr(s, '\0', cap) != NULL;
}

void
markd_fuzz_check_err(const char *target, const char *what, enum mk_status st,
	  const struct mk_err *err)
{
	if (!markd_fuzz_terminated(err->msg, sizeof(err->msg)))
		markd_fuzz_fail(target, "%s: %s without a terminated message", what,
		     mk_strstatus(st));
	if (err->msg[0] == '\0')
		markd_fuzz_fail(target, "%s: %s with an empty message", what,
		     mk_strstatus(st));
}

/* ---- dec --------------------------------------------------------------- */

static const enum mk_round all_modes[] = {
	MK_ROUND_EXACT, MK_ROUND_DOWN, MK_ROUND_UP, MK_ROUND_FLOOR,
	MK_ROUND_CEIL, MK_ROUND_HALF_UP, MK_ROUND_HALF_EVEN,
};
static const int probe_scales[] = { 0, 1, 2, 8, 17, 18 };

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

/* Parses s[0..len) from an exact copy; checks the error side. */
static enum mk_status
dec_parse(const char *s, size_t len, struct mk_dec *out)
{
	char *c = markd_fuzz_copy("dec", s, len);
	struct mk_err err;
	enum mk_status st;

	memset(&err, 0, sizeof(err));
	st = mk_dec_parse(c, len, out, &err);
	if (st != MK_OK) {
		if (st != MK_EPARSE && st != MK_ERANGE)
			markd_fuzz_fail("dec", "mk_dec_parse returned %s", mk_strstatus(st));
		markd_fuzz_check_err("dec", "mk_dec_parse", st, &err);
	} else if (out->scale < 0 || out->scale > MK_DEC_MAX_SCALE) {
		markd_fuzz_fail("dec", "mk_dec_parse gave scale %d", out->scale);
	}
	free(c);
	return st;
}

/* format -> parse gives back the same mantissa and scale. */
static void
dec_roundtrip(struct mk_dec a)
{
	char buf[MK_DEC_STRLEN];
	struct mk_dec b;
	size_t n = mk_dec_format(a, buf, sizeof(buf));

	if (n == 0 || n >= sizeof(buf) || strlen(buf) != n)
		markd_fuzz_fail("dec", "mk_dec_format(%lld, %d) returned %zu",
		     (long long)a.m, a.scale, n);
	if (dec_parse(buf, n, &b) != MK_OK)
		markd_fuzz_fail("dec", "\"%s\" from mk_dec_format does not parse", buf);
	if (b.m != a.m || b.scale != a.scale)
		markd_fuzz_fail("dec", "\"%s\" parsed back as (%lld, %d), not (%lld, %d)",
		     buf, (long long)b.m, b.scale, (long long)a.m, a.scale);
	if (mk_dec_format_scaled(a, a.scale, MK_ROUND_HALF_EVEN, buf,
				 sizeof(buf)) != n)
		markd_fuzz_fail("dec", "mk_dec_format_scaled at the own scale differs");
}

/* Every mode at a few scales: floor <= a <= ceil, down/up bracket a
 * toward/away from zero, EXACT succeeds only when it loses nothing. */
static void
dec_rescales(struct mk_dec a)
{
	for (size_t i = 0; i < NELEM(probe_scales); i++) {
		int sc = probe_scales[i];
		struct mk_dec r[NELEM(all_modes)];
		enum mk_status st[NELEM(all_modes)];

		for (size_t k = 0; k < NELEM(all_modes); k++) {
			st[k] = mk_dec_rescale(a, sc, all_modes[k], &r[k]);
			if (st[k] != MK_OK && st[k] != MK_ERANGE &&
			    st[k] != MK_EINEXACT)
				markd_fuzz_fail("dec", "mk_dec_rescale returned %s",
				     mk_strstatus(st[k]));
			if (st[k] == MK_OK && r[k].scale != sc)
				markd_fuzz_fail("dec", "mk_dec_rescale to %d gave scale %d",
				     sc, r[k].scale);
		}
		/* Indexes follow all_modes. */
		if (st[0] == MK_OK && mk_dec_cmp(r[0], a) != 0)
			markd_fuzz_fail("dec", "exact rescale of (%lld, %d) to %d changed it",
			     (long long)a.m, a.scale, sc);
		if (st[3] == MK_OK && mk_dec_cmp(r[3], a) > 0)
			markd_fuzz_fail("dec", "floor of (%lld, %d) at %d is above it",
			     (long long)a.m, a.scale, sc);
		if (st[4] == MK_OK && mk_dec_cmp(r[4], a) < 0)
			markd_fuzz_fail("dec", "ceil of (%lld, %d) at %d is below it",
			     (long long)a.m, a.scale, sc);
		if (st[0] == MK_EINEXACT && st[1] == MK_OK &&
		    mk_dec_cmp(r[1], a) == 0)
			markd_fuzz_fail("dec", "rescale of (%lld, %d) to %d: EXACT refused "
			     "a lossless change", (long long)a.m, a.scale, sc);
		for (size_t k = 1; k < NELEM(all_modes); k++)
			if (st[k] == MK_OK && st[0] == MK_OK &&
			    mk_dec_cmp(r[k], r[0]) != 0)
				markd_fuzz_fail("dec", "rescale mode %zu differs from EXACT "
				     "on a lossless change", k);
	}
}

/* Two operands: ordering and arithmetic identities. */
static void
dec_pair(struct mk_dec a, struct mk_dec b)
{
	struct mk_dec s, d, p, q;
	enum mk_status st;

	if (mk_dec_cmp(a, b) != -mk_dec_cmp(b, a))
		markd_fuzz_fail("dec", "mk_dec_cmp is not antisymmetric");
	st = mk_dec_add(a, b, &s);
	if (st != MK_OK && st != MK_ERANGE)
		markd_fuzz_fail("dec", "mk_dec_add returned %s", mk_strstatus(st));
	if (st == MK_OK) {
		st = mk_dec_sub(s, b, &d);
		if (st == MK_OK && mk_dec_cmp(d, a) != 0)
			markd_fuzz_fail("dec", "(a + b) - b != a");
		if ((mk_dec_cmp(b, MK_DEC(0, 0)) > 0) != (mk_dec_cmp(s, a) > 0))
			markd_fuzz_fail("dec", "a + b is not above a exactly when b > 0");
	}
	for (size_t i = 0; i < NELEM(probe_scales); i++) {
		int sc = probe_scales[i];

		for (size_t k = 0; k < NELEM(all_modes); k++) {
			st = mk_dec_mul(a, b, sc, all_modes[k], &p);
			if (st != MK_OK && st != MK_ERANGE && st != MK_EINEXACT)
				markd_fuzz_fail("dec", "mk_dec_mul returned %s",
				     mk_strstatus(st));
			st = mk_dec_div(a, b, sc, all_modes[k], &q);
			if (st != MK_OK && st != MK_ERANGE &&
			    st != MK_EINEXACT && st != MK_EDIVZERO)
				markd_fuzz_fail("dec", "mk_dec_div returned %s",
				     mk_strstatus(st));
			if ((st == MK_EDIVZERO) != mk_dec_is_zero(b))
				markd_fuzz_fail("dec", "mk_dec_div: MK_EDIVZERO iff b == 0");
			if (st == MK_OK && q.scale != sc)
				markd_fuzz_fail("dec", "mk_dec_div gave scale %d, not %d",
				     q.scale, sc);
		}
	}
}

/* The whole input as a JSON scalar read into a decimal. */
static void
dec_json(const uint8_t *data, size_t size)
{
	json_error_t jerr;
	json_t *v = json_loadb((const char *)data, size,
			       JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, &jerr);
	struct mk_dec d;
	struct mk_err err;
	enum mk_status st;

	if (v == NULL)
		return;
	memset(&err, 0, sizeof(err));
	st = mk_json_dec(v, &d, &err);
	if (st != MK_OK) {
		if (st != MK_EINVAL && st != MK_EPARSE && st != MK_ERANGE)
			markd_fuzz_fail("dec", "mk_json_dec returned %s", mk_strstatus(st));
		markd_fuzz_check_err("dec", "mk_json_dec", st, &err);
	} else {
		if (d.scale < 0 || d.scale > MK_DEC_MAX_SCALE)
			markd_fuzz_fail("dec", "mk_json_dec gave scale %d", d.scale);
		dec_roundtrip(d);
	}
	if (json_typeof(v) != JSON_STRING && json_typeof(v) != JSON_INTEGER &&
	    json_typeof(v) != JSON_REAL && st != MK_EINVAL)
		markd_fuzz_fail("dec", "mk_json_dec took %s", mk_json_type_name(v));
	json_decref(v);
}

int
markd_fuzz_dec(const uint8_t *data, size_t size)
{
	const char *s = (const char *)data;
	const char *bar = memchr(s, '|', size);
	size_t alen = bar != NULL ? (size_t)(bar - s) : size;
	struct mk_dec a, b;
	bool ok_a;

	ok_a = dec_parse(s, alen, &a) == MK_OK;
	if (ok_a) {
		dec_roundtrip(a);
		dec_rescales(a);
	}
	if (bar != NULL && dec_parse(bar + 1, size - alen - 1, &b) == MK_OK &&
	    ok_a)
		dec_pair(a, b);
	dec_json(data, size);
	return ok_a ? 1 : 0;
}

/* ---- adapters ---------------------------------------------------------- */

/* One line of the input: [*pos, '\n') or to the end; advances *pos. */
static void
next_line(const char *s, size_t size, size_t *pos, const char **line,
	  size_t *len)
{
	const char *nl = memchr(s + *pos, '\n', size - *pos);

	*line = s + *pos;
	*len = nl != NULL ? (size_t)(nl - *line) : size - *pos;
	*pos += *len + (nl != NULL ? 1 : 0);
}

/* The statuses a parse may answer (adapter.h). */
static bool
parse_status_known(enum mk_status st)
{
	switch (st) {
	case MK_OK: case MK_EVENUE: case MK_ERATELIMIT: case MK_EPARSE:
	case MK_ENOTFOUND: case MK_ENOMEM: case MK_EINVAL: case MK_ETOOBIG:
		return true;
	default:
		return false;
	}
}

/* Checks one parse's result; renders the quotes. */
static void
check_parse(const char *target, const char *name, const char *market,
	    size_t cap, enum mk_status st, const struct feed_quote *q,
	    size_t n, const struct mk_err *err)
{
	size_t nlen = strlen(name);
	char *text = NULL;
	struct mk_err rerr;
	enum mk_status rst;

	if (!parse_status_known(st))
		markd_fuzz_fail(target, "feed_adapter_parse returned %s", mk_strstatus(st));
	if (st != MK_OK) {
		if (n != 0)
			markd_fuzz_fail(target, "%s with %zu quotes", mk_strstatus(st), n);
		markd_fuzz_check_err(target, "feed_adapter_parse", st, err);
		if (strncmp(err->msg, name, nlen) != 0 ||
		    strncmp(err->msg + nlen, ": ", 2) != 0)
			markd_fuzz_fail(target, "the message does not name the venue: %s",
			     err->msg);
		if (st == MK_ETOOBIG && market != NULL)
			markd_fuzz_fail(target, "MK_ETOOBIG for one market: %s", err->msg);
		return;
	}
	if (n > cap || (market != NULL && n != 1))
		markd_fuzz_fail(target, "%zu quotes for cap %zu, market %s", n, cap,
		     market != NULL ? market : "(all)");
	for (size_t i = 0; i < n; i++) {
		struct mk_dec px;

		if (!markd_fuzz_terminated(q[i].market, sizeof(q[i].market)))
			markd_fuzz_fail(target, "quote %zu: market not terminated", i);
		if (market != NULL && strcmp(q[i].market, market) != 0)
			markd_fuzz_fail(target, "quote for \"%s\", asked for \"%s\"",
			     q[i].market, market);
		rst = feed_quote_price(&q[i].q, &px);
		if (rst != MK_OK && rst != MK_ERANGE)
			markd_fuzz_fail(target, "quote %zu (%s) has no usable price: %s", i,
			     q[i].market, mk_strstatus(rst));
	}
	memset(&rerr, 0, sizeof(rerr));
	rst = feed_quotes_render(name, market, q, n, &text, &rerr);
	if (rst == MK_OK) {
		json_error_t jerr;
		json_t *v = json_loads(text, JSON_REJECT_DUPLICATES, &jerr);

		if (v == NULL)
			markd_fuzz_fail(target, "rendered quotes are not JSON (%s): %s",
			     jerr.text, text);
		json_decref(v);
		free(text);
	} else if (rst == MK_EINVAL || rst == MK_ERANGE || rst == MK_ENOMEM) {
		markd_fuzz_check_err(target, "feed_quotes_render", rst, &rerr);
	} else {
		markd_fuzz_fail(target, "feed_quotes_render returned %s",
		     mk_strstatus(rst));
	}
}

/* Parses body for market (may be NULL) with out[0..cap); returns the
 * status after checking the result. */
static enum mk_status
adapter_run(const char *target, const struct feed_adapter *a,
	    const struct feed_adapter_opts *o, const char *market,
	    const char *body, size_t len, struct feed_quote *out, size_t cap)
{
	const char *name = feed_adapter_name(a);
	struct mk_err err;
	size_t n = 12345;
	enum mk_status st;

	memset(&err, 0, sizeof(err));
	st = feed_adapter_parse(a, o, market, body, len, out, cap, &n, &err);
	check_parse(target, name, market, cap, st, out, n, &err);
	return st;
}

int
markd_fuzz_adapter(const char *adapter, const uint8_t *data, size_t size)
{
	const char *s = (const char *)data;
	const struct feed_adapter *a = feed_adapter_find(adapter);
	struct feed_adapter_opts *o = NULL;
	struct feed_quote *out = NULL;
	char target[64];
	char market[FEED_MARKET_MAX];
	const char *line, *mk = NULL;
	char *body = NULL;
	size_t pos = 0, len, blen;
	struct mk_err err;
	enum mk_status st;
	int ok = 0;

	if (a == NULL)
		markd_fuzz_fail("adapter", "no adapter \"%s\"", adapter);
	snprintf(target, sizeof(target), ADAPTER_PREFIX "%s", adapter);
	memset(&err, 0, sizeof(err));

	next_line(s, size, &pos, &line, &len);
	if (len > 0 && len < sizeof(market) && memchr(line, '\0', len) == NULL) {
		memcpy(market, line, len);
		market[len] = '\0';
		mk = market;
	}
	if (strcmp(adapter, "json") == 0) {
		json_error_t jerr;
		json_t *j;

		next_line(s, size, &pos, &line, &len);
		j = json_loadb(line, len, JSON_REJECT_DUPLICATES, &jerr);
		st = j != NULL ? feed_adapter_opts_create(a, j, &o, &err) :
				 MK_EPARSE;
		json_decref(j);
		if (st != MK_OK && j != NULL) {
			if (st != MK_ECONFIG && st != MK_ENOMEM)
				markd_fuzz_fail(target, "feed_adapter_opts_create returned %s",
				     mk_strstatus(st));
			markd_fuzz_check_err(target, "feed_adapter_opts_create", st, &err);
		}
		if (st == MK_OK && o == NULL)
			markd_fuzz_fail(target, "options compiled to nothing");
	}
	blen = size - pos;
	body = markd_fuzz_copy(target, s + pos, blen);
	out = calloc(LARGE_CAP, sizeof(*out));
	if (out == NULL)
		markd_fuzz_fail(target, "out of memory");

	if (mk != NULL) {
		bool valid = feed_adapter_check_market(a, mk, &err) == MK_OK;

		st = adapter_run(target, a, o, mk, body, blen, out, 1);
		if (!valid && st != MK_EINVAL)
			markd_fuzz_fail(target, "market \"%s\" fails feed_adapter_check_market "
			     "but the parse answered %s", mk, mk_strstatus(st));
		ok |= st == MK_OK;
	}
	st = adapter_run(target, a, o, NULL, body, blen, out, SMALL_CAP);
	ok |= st == MK_OK;
	if (st == MK_ETOOBIG) {
		st = adapter_run(target, a, o, NULL, body, blen, out, LARGE_CAP);
		ok |= st == MK_OK;
	}
	feed_adapter_opts_destroy(o);
	free(out);
	free(body);
	return ok;
}

/* ---- config ------------------------------------------------------------ */

/* The cross references cfg.h promises of a loaded config. */
static void
check_cfg(const struct cfg *cfg)
{
	char buf[512];

	if (cfg->nsources == 0 || cfg->ninstruments == 0)
		markd_fuzz_fail("config", "loaded with %zu sources, %zu instruments",
		     cfg->nsources, cfg->ninstruments);
	for (size_t i = 0; i < cfg->nsources; i++) {
		const struct cfg_source *src = &cfg->sources[i];
		struct feed_adapter_opts *o = NULL;
		struct mk_err err;

		if (!markd_fuzz_terminated(src->name, sizeof(src->name)) ||
		    cfg_source_index(cfg, src->name) != (int)i)
			markd_fuzz_fail("config", "source %zu: name not unique", i);
		if (src->adapter == NULL || src->base_url == NULL ||
		    src->weight == 0)
			markd_fuzz_fail("config", "source %zu: incomplete", i);
		memset(&err, 0, sizeof(err));
		if (feed_adapter_opts_create(src->adapter, src->options, &o,
					     &err) != MK_OK)
			markd_fuzz_fail("config", "source %zu: accepted options do not "
			     "compile: %s", i, err.msg);
		feed_adapter_opts_destroy(o);
	}
	for (size_t i = 0; i < cfg->ninstruments; i++) {
		const struct agg_instrument_spec *sp = &cfg->specs[i];
		const struct cfg_instrument *in = &cfg->instruments[i];

		if (!markd_fuzz_terminated(sp->symbol, sizeof(sp->symbol)) ||
		    cfg_instrument_index(cfg, sp->symbol) != (int)i)
			markd_fuzz_fail("config", "instrument %zu: symbol not unique", i);
		if (sp->nlegs == 0 || sp->params.min_sources > sp->nlegs)
			markd_fuzz_fail("config", "%s: %zu legs, min_sources %u", sp->symbol,
			     sp->nlegs, sp->params.min_sources);
		for (size_t k = 0; k < sp->nlegs; k++) {
			const struct agg_leg_spec *leg = &sp->legs[k];
			size_t si = in->legs[k].source;
			struct mk_err err;

			if (si >= cfg->nsources || !cfg->sources[si].enabled ||
			    strcmp(cfg->sources[si].name, leg->source) != 0)
				markd_fuzz_fail("config", "%s leg %zu: bad source", sp->symbol,
				     k);
			if (feed_adapter_check_market(cfg->sources[si].adapter,
						      leg->market, &err) != MK_OK)
				markd_fuzz_fail("config", "%s leg %zu: market refused by its "
				     "adapter: %s", sp->symbol, k, err.msg);
			if (leg->weight == 0 || leg->convert_via < -1 ||
			    leg->convert_via >= (int)cfg->ninstruments ||
			    leg->convert_via == (int)i)
				markd_fuzz_fail("config", "%s leg %zu: weight %u, convert_via "
				     "%d", sp->symbol, k, leg->weight,
				     leg->convert_via);
		}
		for (size_t k = 1; k < in->margin.nbrackets; k++)
			if (mk_dec_cmp(in->margin.brackets[k].floor,
				       in->margin.brackets[k - 1].floor) <= 0)
				markd_fuzz_fail("config", "%s: bracket floors not ascending",
				     sp->symbol);
	}
	if (cfg_summary(cfg, buf, sizeof(buf)) <= 0)
		markd_fuzz_fail("config", "cfg_summary wrote nothing");
}

int
markd_fuzz_config(const uint8_t *data, size_t size)
{
	struct cfg_errors *errs = calloc(1, sizeof(*errs));
	struct cfg sentinel;             /* must be replaced by NULL on error */
	struct cfg *cfg = &sentinel;
	enum mk_status st;
	int ok;

	if (errs == NULL)
		markd_fuzz_fail("config", "out of memory");
	st = cfg_load_buffer(data, size, &cfg, errs);
	ok = st == MK_OK;
	if (ok) {
		if (cfg == NULL || errs->count != 0)
			markd_fuzz_fail("config", "MK_OK with cfg %p and %zu errors",
			     (void *)cfg, errs->count);
		check_cfg(cfg);
		cfg_free(cfg);
	} else {
		if (st != MK_EPARSE && st != MK_ECONFIG && st != MK_ETOOBIG &&
		    st != MK_ENOMEM)
			markd_fuzz_fail("config", "cfg_load_buffer returned %s",
			     mk_strstatus(st));
		if (cfg != NULL)
			markd_fuzz_fail("config", "%s but a config was returned",
			     mk_strstatus(st));
		if (errs->count == 0 || errs->count > CFG_MAX_ERRORS ||
		    errs->total < errs->count)
			markd_fuzz_fail("config", "%s with %zu errors kept of %zu",
			     mk_strstatus(st), errs->count, errs->total);
		for (size_t i = 0; i < errs->count; i++) {
			const struct cfg_error *e = &errs->e[i];

			if (!markd_fuzz_terminated(e->path, sizeof(e->path)) ||
			    !markd_fuzz_terminated(e->msg, sizeof(e->msg)) ||
			    e->msg[0] == '\0')
				markd_fuzz_fail("config", "error %zu: empty or unterminated",
				     i);
			if (st == MK_EPARSE && e->line <= 0)
				markd_fuzz_fail("config", "syntax error without a line: %s",
				     e->msg);
		}
	}
	free(errs);
	return ok;
}

/* ---- history ----------------------------------------------------------- */

#define HISTORY_NAME "fuzz.csv"

/* The replayed price at t_ms, which lies in bar i; must be within the
 * bar's low..high (at the series' scale, rounding cannot leave it). */
static void
check_price_in_bar(const struct history_series *s, size_t i, int64_t t_ms)
{
	const struct history_bar *b = &s->bars[i];
	struct mk_dec p;
	enum mk_status st = history_price_at(s, t_ms, s->scale, &p);

	if (st == MK_ERANGE)
		return;
	if (st != MK_OK)
		markd_fuzz_fail("history", "history_price_at(%lld) returned %s",
		     (long long)t_ms, mk_strstatus(st));
	if (mk_dec_cmp(p, b->low) < 0 || mk_dec_cmp(p, b->high) > 0)
		markd_fuzz_fail("history", "price at %lld ms is outside bar %zu's range",
		     (long long)t_ms, i);
}

static void
check_series(const struct history_series *s)
{
	size_t probes = s->nbars < HISTORY_PROBES ? s->nbars : HISTORY_PROBES;
	int scale = 0;

	if (s->nbars == 0 || s->nbars > HISTORY_ROWS)
		markd_fuzz_fail("history", "%zu bars", s->nbars);
	if (s->name == NULL || strcmp(s->name, HISTORY_NAME) != 0)
		markd_fuzz_fail("history", "series name not kept");
	for (size_t i = 0; i < s->nbars; i++) {
		const struct history_bar *b = &s->bars[i];
		const struct mk_dec *px[4] = { &b->open, &b->high, &b->low,
					       &b->close };

		if (i > 0 && b->ts - s->bars[i - 1].ts < HISTORY_BAR_S)
			markd_fuzz_fail("history", "bar %zu: %lld after %lld", i,
			     (long long)b->ts, (long long)s->bars[i - 1].ts);
		if (b->ts < 0 || !mk_dec_is_pos(b->low) ||
		    mk_dec_is_neg(b->volume) ||
		    mk_dec_cmp(b->low, b->open) > 0 ||
		    mk_dec_cmp(b->low, b->close) > 0 ||
		    mk_dec_cmp(b->high, b->open) < 0 ||
		    mk_dec_cmp(b->high, b->close) < 0)
			markd_fuzz_fail("history", "bar %zu is inconsistent", i);
		if ((b->trades >= 0) != s->has_trades || b->trades < -1)
			markd_fuzz_fail("history", "bar %zu: trades %lld, has_trades %d", i,
			     (long long)b->trades, s->has_trades);
		for (size_t k = 0; k < 4; k++)
			if (px[k]->scale > scale)
				scale = px[k]->scale;
	}
	if (scale != s->scale)
		markd_fuzz_fail("history", "scale %d, prices have up to %d", s->scale,
		     scale);
	if (history_find(s, s->bars[0].ts - 1) != (size_t)-1)
		markd_fuzz_fail("history", "history_find before the first bar");
	for (size_t i = 0; i < probes; i++) {
		const struct history_bar *b = &s->bars[i];

		if (history_find(s, b->ts) != i ||
		    history_find(s, b->ts + HISTORY_BAR_S - 1) != i)
			markd_fuzz_fail("history", "history_find misses bar %zu", i);
		/* Times in ms exist only for bars before year ~292 million. */
		if (b->ts > INT64_MAX / 1000 - HISTORY_BAR_S)
			continue;
		for (int64_t off = 0; off < HISTORY_BAR_S * 1000; off += 7001)
			check_price_in_bar(s, i, b->ts * 1000 + off);
	}
}

int
markd_fuzz_history(const uint8_t *data, size_t size)
{
	struct history_limits lim = { .max_line = 0, .max_rows = HISTORY_ROWS };
	struct history_series *s = NULL;
	char *buf = markd_fuzz_copy("history", data, size);
	struct mk_err err;
	enum mk_status st;

	memset(&err, 0, sizeof(err));
	st = history_parse(HISTORY_NAME, buf, size, &lim, &s, &err);
	if (st == MK_OK) {
		if (s == NULL)
			markd_fuzz_fail("history", "MK_OK without a series");
		check_series(s);
		history_destroy(s);
	} else {
		if (st != MK_EPARSE && st != MK_ETOOBIG && st != MK_ENOMEM)
			markd_fuzz_fail("history", "history_parse returned %s",
			     mk_strstatus(st));
		if (s != NULL)
			markd_fuzz_fail("history", "%s but a series was returned",
			     mk_strstatus(st));
		markd_fuzz_check_err("history", "history_parse", st, &err);
		if (strncmp(err.msg, HISTORY_NAME ":",
			    sizeof(HISTORY_NAME ":") - 1) != 0)
			markd_fuzz_fail("history", "the message does not name the file: %s",
			     err.msg);
	}
	free(buf);
	return st == MK_OK;
}

/* ---- dispatch ---------------------------------------------------------- */

int
markd_fuzz_run(const char *name, const uint8_t *data, size_t size)
{
	size_t plen = sizeof(ADAPTER_PREFIX) - 1;

	if (strcmp(name, "dec") == 0)
		return markd_fuzz_dec(data, size);
	if (strcmp(name, "config") == 0)
		return markd_fuzz_config(data, size);
	if (strcmp(name, "history") == 0)
		return markd_fuzz_history(data, size);
#ifdef MARKD_FUZZ_HTTP
	if (strcmp(name, "position") == 0)
		return markd_fuzz_position(data, size);
	if (strcmp(name, "evaluate") == 0)
		return markd_fuzz_evaluate(data, size);
	if (strcmp(name, "collateral") == 0)
		return markd_fuzz_collateral(data, size);
#endif
	if (strncmp(name, ADAPTER_PREFIX, plen) == 0 &&
	    feed_adapter_find(name + plen) != NULL)
		return markd_fuzz_adapter(name + plen, data, size);
	return -1;
}

size_t
markd_fuzz_target_count(void)
{
	return NELEM(target_names);
}

const char *
markd_fuzz_target_name(size_t i)
{
	return i < NELEM(target_names) ? target_names[i] : NULL;
}

bool
markd_fuzz_target_known(const char *name)
{
	for (size_t i = 0; i < NELEM(target_names); i++)
		if (strcmp(target_names[i], name) == 0)
			return true;
	for (size_t i = 0; i < NELEM(optional_names); i++)
		if (strcmp(optional_names[i], name) == 0)
			return true;
	return false;
}
