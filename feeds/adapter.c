/*
 * adapter.c - the adapter registry and the entry points that every adapter
 * shares: argument checks, option handling, URL assembly and loading the
 * body (see adapter.h).
 */
#include "config.h"

#include "feeds/adapter.h"

#include <stdio.h>
#include <string.h>

#include "feeds/venue_json.h"

/* Alphabetical, the generic adapter last. */
static const struct feed_adapter *const adapters[] = {
	&feed_adapter_binance, &feed_adapter_bitfinex, &feed_adapter_bitstamp,
	&feed_adapter_bybit, &feed_adapter_coinbase, &feed_adapter_gemini,
	&feed_adapter_kraken, &feed_adapter_kucoin, &feed_adapter_okx,
	&feed_adapter_pyth, &feed_adapter_json,
};

#define NADAPTERS (sizeof(adapters) / sizeof(adapters[0]))

const struct feed_adapter *
feed_adapter_find(const char *name)
{
	if (name == NULL)
		return NULL;
	for (size_t i = 0; i < NADAPTERS; i++)
		if (strcmp(adapters[i]->name, name) == 0)
			return adapters[i];
	return NULL;
}

size_t
feed_adapter_count(void)
{
	return NADAPTERS;
}

const struct feed_adapter *
feed_adapter_at(size_t i)
{
	return i < NADAPTERS ? adapters[i] : NULL;
}

const char *
feed_adapter_name(const struct feed_adapter *a)
{
	return a->name;
}

const char *
feed_adapter_summary(const struct feed_adapter *a)
{
	return a->summary;
}

size_t
feed_adapter_names(char *buf, size_t cap)
{
	size_t need = 0;

	if (cap > 0)
		buf[0] = '\0';
	for (size_t i = 0; i < NADAPTERS; i++) {
		const char *sep = i > 0 ? ", " : "";

		/* snprintf cuts the text short and always terminates it. */
		if (need < cap)
			snprintf(buf + need, cap - need, "%s%s", sep,
				 adapters[i]->name);
		need += strlen(sep) + strlen(adapters[i]->name);
	}
	return need;
}

/* --- options ----------------------------------------------------------- */

enum mk_status
feed_adapter_opts_create(const struct feed_adapter *a, const json_t *options,
			 struct feed_adapter_opts **out,
			 struct mk_err *err)
{
	*out = NULL;
	if (a->opts_create != NULL)
		return a->opts_create(options, out, err);
	if (options == NULL || json_is_null(options))
		return MK_OK;
	if (!json_is_object(options))
		return mk_err_set(err, MK_ECONFIG,
				  "options: expected an object (the %s adapter "
				  "takes no options)", a->name);
	if (json_object_size(options) > 0) {
		const char *key = json_object_iter_key(
			json_object_iter((json_t *)options));

		return mk_err_set(err, MK_ECONFIG,
				  "options.%s: unknown key (the %s adapter "
				  "takes no options)", key, a->name);
	}
	return MK_OK;
}

enum mk_status
feed_adapter_check_options(const struct feed_adapter *a,
			   const json_t *options, struct mk_err *err)
{
	struct feed_adapter_opts *o = NULL;
	enum mk_status st;

	st = feed_adapter_opts_create(a, options, &o, err);
	if (o != NULL)
		a->opts_destroy(o);
	return st;
}

void
feed_adapter_opts_destroy(struct feed_adapter_opts *o)
{
	/* Only the json adapter compiles options. */
	if (o != NULL)
		feed_adapter_json.opts_destroy(o);
}

/* --- markets and URLs -------------------------------------------------- */

enum mk_status
feed_adapter_check_market(const struct feed_adapter *a, const char *market,
			  struct mk_err *err)
{
	size_t len;

	if (market == NULL || market[0] == '\0')
		return mk_err_set(err, MK_EINVAL, "%s: empty market id",
				  a->name);
	len = strlen(market);
	if (len >= FEED_MARKET_MAX)
		return mk_err_set(err, MK_EINVAL,
				  "%s: market id \"%.40s...\" is longer than "
				  "%d bytes", a->name, market,
				  FEED_MARKET_MAX - 1);
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)market[i];

		if (c < 0x20 || c == 0x7f)
			return mk_err_set(err, MK_EINVAL,
					  "%s: market id has a control "
					  "character at offset %zu", a->name,
					  i);
	}
	if (strcmp(market, ".") == 0 || strcmp(market, "..") == 0)
		return mk_err_set(err, MK_EINVAL, "%s: market id \"%s\" is "
				  "not usable", a->name, market);
	if (a->check_market != NULL)
		return a->check_market(market, err);
	return MK_OK;
}

enum mk_status
feed_adapter_url(const struct feed_adapter *a,
		 const struct feed_adapter_opts *o, const char *base_url,
		 const char *market, char *buf, size_t cap,
		 struct mk_err *err)
{
	struct vj_url u = { .buf = buf, .cap = cap };
	size_t blen;
	enum mk_status st;

	if (cap == 0)
		return mk_err_set(err, MK_ETOOBIG, "%s: no room for the URL",
				  a->name);
	buf[0] = '\0';
	if (base_url == NULL || base_url[0] == '\0')
		return mk_err_set(err, MK_EINVAL, "%s: empty base URL",
				  a->name);
	if (strpbrk(base_url, "?# \t\r\n") != NULL)
		return mk_err_set(err, MK_EINVAL,
				  "%s: base URL \"%.60s\" must not contain a "
				  "query, a fragment or white space", a->name,
				  base_url);
	if (a->opts_create != NULL && o == NULL)
		return mk_err_set(err, MK_EINVAL,
				  "%s: options are required", a->name);
	st = feed_adapter_check_market(a, market, err);
	if (st != MK_OK)
		return st;
	blen = strlen(base_url);
	while (blen > 0 && base_url[blen - 1] == '/')
		blen--;
	vj_url_putn(&u, base_url, blen);
	if (a->url != NULL) {
		st = a->url(o, market, &u, err);
		if (st != MK_OK) {
			buf[0] = '\0';
			return st;
		}
	} else {
		vj_url_puts(&u, a->url_head);
		vj_url_escape(&u, market);
		if (a->url_tail != NULL)
			vj_url_puts(&u, a->url_tail);
	}
	if (u.overflow) {
		buf[0] = '\0';
		return mk_err_set(err, MK_ETOOBIG,
				  "%s: the URL is longer than %zu bytes",
				  a->name, cap - 1);
	}
	return MK_OK;
}

/* --- parsing ------------------------------------------------------------ */

/* Loads the body; the messages say why it is not JSON and how it starts
 * (an HTML error page, a proxy's text) without printing control bytes. */
static enum mk_status
load_body(struct vj_parse *p, const char *body, size_t len, json_t **root)
{
	json_error_t jerr;
	json_t *v;
	char start[64];
	size_t i = 0, o = 0;

	if (len == 0)
		return vj_fail(p, MK_EPARSE, "empty body");
	v = json_loadb(body, len, JSON_REJECT_DUPLICATES, &jerr);
	if (v != NULL) {
		*root = v;
		return MK_OK;
	}
	if (json_error_code(&jerr) == json_error_out_of_memory)
		return vj_fail(p, MK_ENOMEM, "out of memory parsing the body");
	while (i < len && (body[i] == ' ' || body[i] == '\n' ||
			   body[i] == '\r' || body[i] == '\t'))
		i++;
	for (; i < len && o < 40; i++) {
		unsigned char c = (unsigned char)body[i];

		if (c == '"')
			c = '\'';
		start[o++] = c >= 0x20 && c < 0x7f ? (char)c : '?';
	}
	start[o] = '\0';
	return vj_fail(p, MK_EPARSE,
		       "body is not valid JSON (%s, line %d column %d); it "
		       "starts with \"%s%s\"", jerr.text, jerr.line,
		       jerr.column, start, i < len ? "..." : "");
}

enum mk_status
feed_adapter_parse(const struct feed_adapter *a,
		   const struct feed_adapter_opts *o, const char *market,
		   const char *body, size_t len, struct feed_quote *out,
		   size_t cap, size_t *n, struct mk_err *err)
{
	struct vj_parse p = {
		.a = a, .opts = o, .market = market, .out = out, .cap = cap,
		.err = err,
	};
	json_t *root = NULL;
	enum mk_status st;

	*n = 0;
	if (cap == 0 || out == NULL || (body == NULL && len > 0))
		return mk_err_set(err, MK_EINVAL,
				  "%s: no room for quotes or no body", a->name);
	if (a->opts_create != NULL && o == NULL)
		return mk_err_set(err, MK_EINVAL,
				  "%s: options are required", a->name);
	if (market != NULL) {
		st = feed_adapter_check_market(a, market, err);
		if (st != MK_OK)
			return st;
	}
	st = load_body(&p, body, len, &root);
	if (st != MK_OK)
		goto out;
	st = a->parse(&p, root);
	if (st != MK_OK)
		goto out;
	if (p.n == 0) {
		if (market != NULL)
			st = vj_fail(&p, MK_ENOTFOUND,
				     "the answer has no entry for market "
				     "\"%s\"", market);
		else
			st = vj_fail(&p, MK_ENOTFOUND,
				     "the answer has no entry with a price");
		goto out;
	}
	*n = p.n;
out:
	json_decref(root);
	return st;
}
