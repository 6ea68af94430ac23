/*
 * venue_json.h - private to feeds/: the adapter table type and the helpers
 * every adapter file shares (bounded URL building, reading decimals and
 * timestamps out of a jansson tree with messages that name the venue and
 * the field, collecting quotes).
 *
 * Thread safety: reentrant; a struct vj_parse / vj_url belongs to one call.
 */
#ifndef MARKD_FEEDS_VENUE_JSON_H
#define MARKD_FEEDS_VENUE_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "feeds/adapter.h"

/* A bounded string being built in a caller's buffer. */
struct vj_url {
	char *buf;
	size_t cap, len;
	bool overflow;          /* something did not fit; buf is cut short */
};

/* State of one feed_adapter_parse call. */
struct vj_parse {
	const struct feed_adapter *a;
	const struct feed_adapter_opts *opts;
	const char *market;     /* asked-for market, or NULL for every entry */
	struct feed_quote *out;
	size_t cap, n;
	struct mk_err *err;
};

enum vj_ts_unit { VJ_TS_S, VJ_TS_MS, VJ_TS_US, VJ_TS_NS, VJ_TS_RFC3339 };

struct feed_adapter {
	const char *name;
	const char *summary;
	/* The request is base URL + url_head + escaped market + url_tail
	 * (NULL: nothing), unless url is set: then url appends path and
	 * query for market to u, which holds the base URL. market has
	 * passed feed_adapter_check_market. */
	const char *url_head, *url_tail;
	enum mk_status (*url)(const struct feed_adapter_opts *o,
			      const char *market, struct vj_url *u,
			      struct mk_err *err);
	/* Walks the parsed body; adds quotes with vj_emit. */
	enum mk_status (*parse)(struct vj_parse *p, const json_t *root);
	/* Extra market id check (pyth), or NULL. */
	enum mk_status (*check_market)(const char *market, struct mk_err *err);
	/* Options compiler, or NULL for adapters without options. */
	enum mk_status (*opts_create)(const json_t *options,
				      struct feed_adapter_opts **out,
				      struct mk_err *err);
	void (*opts_destroy)(struct feed_adapter_opts *o);
};

extern const struct feed_adapter feed_adapter_binance;
extern const struct feed_adapter feed_adapter_bitfinex;
extern const struct feed_adapter feed_adapter_bitstamp;
extern const struct feed_adapter feed_adapter_bybit;
extern const struct feed_adapter feed_adapter_coinbase;
extern const struct feed_adapter feed_adapter_gemini;
extern const struct feed_adapter feed_adapter_kraken;
extern const struct feed_adapter feed_adapter_kucoin;
extern const struct feed_adapter feed_adapter_okx;
extern const struct feed_adapter feed_adapter_pyth;
extern const struct feed_adapter feed_adapter_json;

/* --- URL building --------------------------------------------------- */

/* Appends s, or s[0..len), verbatim. */
void vj_url_puts(struct vj_url *u, const char *s);
void vj_url_putn(struct vj_url *u, const char *s, size_t len);
/* Appends s percent-encoded: every byte except A-Z a-z 0-9 - . _ ~. */
void vj_url_escape(struct vj_url *u, const char *s);

/* --- parse state and messages ---------------------------------------- */

/* Records "<venue>: <message>" with status st in p->err; returns st. */
enum mk_status vj_fail(struct vj_parse *p, enum mk_status st,
		       const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Writes a short, printable rendering of v for messages: a string quoted
 * and cut at 40 bytes, a number as written, else its type name. */
void vj_describe(const json_t *v, char *buf, size_t cap);

/* True when the asked-for market is id (or every market is asked for). */
bool vj_match(const struct vj_parse *p, const char *id);

/*
 * Adds a quote for the entry named id (NULL when the answer names none):
 * with an asked-for market the quote gets that market, a second one is a
 * parse error and a quote without a usable price (bid and ask, or last) is
 * a parse error; without, unusable entries are skipped and the quote gets
 * id ("" for NULL), MK_ETOOBIG past cap, MK_EPARSE for an id seen twice.
 */
enum mk_status vj_emit(struct vj_parse *p, const char *id,
		       const struct agg_quote *q);

/* --- reading fields ------------------------------------------------- */

/* The object member key of obj (NULL when obj is no object or lacks it). */
const json_t *vj_get(const json_t *obj, const char *key);

/*
 * Reads a price field: v is its value (NULL when absent). Absent, null, ""
 * and zero leave *has false; a decimal string or a JSON number sets *out
 * and *has. Anything else, or digits that do not fit, is MK_EPARSE with
 * "field \"<where>\": ..." in the message.
 */
enum mk_status vj_dec(struct vj_parse *p, const json_t *v, const char *where,
		      struct mk_dec *out, bool *has);

/*
 * Reads a timestamp into Unix milliseconds (sub-millisecond digits are
 * truncated): a JSON integer, a decimal string or number in unit, or an
 * RFC 3339 string for VJ_TS_RFC3339. Absent, null, "" and 0 give 0. A
 * negative value or one past year 9999 is MK_EPARSE naming where.
 */
enum mk_status vj_ts(struct vj_parse *p, const json_t *v, const char *where,
		     enum vj_ts_unit unit, int64_t *ms);

/* "prefix.key", or "key" when prefix is "" (for messages). */
const char *vj_path(char *buf, size_t cap, const char *prefix,
		    const char *key);

/* vj_dec and vj_ts on member key of obj, named prefix.key in messages. */
enum mk_status vj_dec_at(struct vj_parse *p, const json_t *obj,
			 const char *prefix, const char *key,
			 struct mk_dec *out, bool *has);
enum mk_status vj_ts_at(struct vj_parse *p, const json_t *obj,
			const char *prefix, const char *key,
			enum vj_ts_unit unit, int64_t *ms);

/* Fills q's bid, ask and last from the members so named (a NULL name
 * skips that field); q is cleared first. */
enum mk_status vj_quote_fields(struct vj_parse *p, const json_t *obj,
			       const char *prefix, const char *bid,
			       const char *ask, const char *last,
			       struct agg_quote *q);

/* Where a flat ticker object keeps its fields (a NULL name: none). */
struct vj_fields {
	const char *bid, *ask, *last, *ts;
	enum vj_ts_unit ts_unit;
};

/* Reads the fields f of obj (named prefix.* in messages) into a quote and
 * adds it for the entry id (see vj_emit). */
enum mk_status vj_flat_ticker(struct vj_parse *p, const json_t *obj,
			      const char *prefix, const char *id,
			      const struct vj_fields *f);

/* Fails with MK_EPARSE 'field "<where>": expected <type>, got <v>' (or
 * "the answer: ..." for where == "") unless v is of JSON type `type`;
 * v == NULL reads "missing". */
enum mk_status vj_want(struct vj_parse *p, const json_t *v, json_type type,
		       const char *where);

/* Reads an integer id-like field that venues send as a JSON integer or as
 * a string of digits (an error code); MK_EPARSE otherwise. */
enum mk_status vj_code(struct vj_parse *p, const json_t *v, const char *where,
		       int64_t *out);

/* The numeric-code envelope of Binance, OKX, Bybit and KuCoin. */
struct vj_envelope {
	const char *code_key;   /* "code", "retCode" */
	const char *msg_key;    /* "msg", "retMsg" */
	int64_t ok;             /* the code of a good answer */
	int64_t limits[3];      /* rate-limit codes; unused slots hold ok */
};

/*
 * Checks root (which must be an object) against the envelope e: a missing
 * or non-integer code is MK_EPARSE; a code other than e->ok fails with
 * "error <code>: <message>", MK_ERATELIMIT for e->limits, else MK_EVENUE.
 */
enum mk_status vj_check_envelope(struct vj_parse *p, const json_t *root,
				 const struct vj_envelope *e);

/* ASCII case-insensitive "needle occurs in hay". */
bool vj_contains_ci(const char *hay, const char *needle);

#endif
