/*
 * venue_json.c - helpers shared by the adapters (see venue_json.h).
 */
#include "config.h"

#include "feeds/venue_json.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "aggregator/json_dec.h"
#include "feeds/rfc3339.h"

/* --- URL building --------------------------------------------------- */

void
vj_url_putn(struct vj_url *u, const char *s, size_t len)
{
	if (u->overflow)
		return;
	if (len >= u->cap - u->len) {
		u->overflow = true;
		return;
	}
	memcpy(u->buf + u->len, s, len);
	u->len += len;
	u->buf[u->len] = '\0';
}

void
vj_url_puts(struct vj_url *u, const char *s)
{
	vj_url_putn(u, s, strlen(s));
}

static bool
unreserved(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
	       (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_' ||
	       c == '~';
}

void
vj_url_escape(struct vj_url *u, const char *s)
{
	static const char hex[] = "0123456789ABCDEF";

	for (; *s != '\0'; s++) {
		unsigned char c = (unsigned char)*s;
		char enc[3] = { '%', hex[c >> 4], hex[c & 15] };

		if (unreserved(c))
			vj_url_putn(u, s, 1);
		else
			vj_url_putn(u, enc, 3);
	}
}

/* --- messages -------------------------------------------------------- */

enum mk_status
vj_fail(struct vj_parse *p, enum mk_status st, const char *fmt, ...)
{
	char msg[sizeof(p->err->msg)];
	va_list ap;

	if (p->err == NULL)
		return st;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	/* Venue texts end up in logs and on one line of markd-parse's
	 * output: no control characters. */
	for (char *c = msg; *c != '\0'; c++)
		if ((unsigned char)*c < 0x20 || *c == 0x7f)
			*c = '?';
	return mk_err_set(p->err, st, "%s: %s", p->a->name, msg);
}

/* Copies at most max bytes of s[0..len) into buf as printable text. */
static void
printable(const char *s, size_t len, size_t max, char *buf, size_t cap)
{
	size_t o = 0;

	for (size_t i = 0; i < len && i < max && o + 2 < cap; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c == '"')
			c = '\'';
		buf[o++] = c >= 0x20 && c < 0x7f ? (char)c : '?';
	}
	if (len > max && o + 4 < cap) {
		memcpy(buf + o, "...", 3);
		o += 3;
	}
	buf[o] = '\0';
}

void
vj_describe(const json_t *v, char *buf, size_t cap)
{
	char t[64];

	if (json_is_string(v)) {
		printable(json_string_value(v), json_string_length(v), 40, t,
			  sizeof(t));
		snprintf(buf, cap, "\"%s\"", t);
	} else if (json_is_integer(v)) {
		snprintf(buf, cap, "%" JSON_INTEGER_FORMAT,
			 json_integer_value(v));
	} else if (json_is_real(v)) {
		snprintf(buf, cap, "%.17g", json_real_value(v));
	} else {
		snprintf(buf, cap, "%s", mk_json_type_name(v));
	}
}

/* --- quotes ---------------------------------------------------------- */

bool
vj_match(const struct vj_parse *p, const char *id)
{
	return p->market == NULL || (id != NULL && strcmp(id, p->market) == 0);
}

static bool
usable(const struct agg_quote *q)
{
	return (q->has_bid && q->has_ask) || q->has_last;
}

enum mk_status
vj_emit(struct vj_parse *p, const char *id, const struct agg_quote *q)
{
	struct feed_quote *fq;
	const char *name;

	if (p->market != NULL) {
		if (p->n > 0)
			return vj_fail(p, MK_EPARSE,
				       "the answer has two entries for "
				       "market \"%s\"", p->market);
		if (!usable(q))
			return vj_fail(p, MK_EPARSE,
				       "no usable price for \"%s\" (bid and "
				       "ask, or last, are missing, empty or "
				       "zero)", p->market);
		name = p->market;
	} else {
		if (!usable(q))
			return MK_OK;
		name = id != NULL ? id : "";
		if (strlen(name) >= FEED_MARKET_MAX)
			return vj_fail(p, MK_EPARSE,
				       "market id \"%.40s...\" is too long",
				       name);
		for (size_t i = 0; i < p->n; i++)
			if (strcmp(p->out[i].market, name) == 0)
				return vj_fail(p, MK_EPARSE,
					       "the answer has two entries "
					       "for market \"%s\"", name);
		if (p->n == p->cap)
			return vj_fail(p, MK_ETOOBIG,
				       "the answer has more than %zu "
				       "entries", p->cap);
	}
	fq = &p->out[p->n++];
	snprintf(fq->market, sizeof(fq->market), "%s", name);
	fq->q = *q;
	return MK_OK;
}

/* --- fields ---------------------------------------------------------- */

const json_t *
vj_get(const json_t *obj, const char *key)
{
	if (!json_is_object(obj))
		return NULL;
	return json_object_get(obj, key);
}

static bool
empty_value(const json_t *v)
{
	return v == NULL || json_is_null(v) ||
	       (json_is_string(v) && json_string_length(v) == 0);
}

enum mk_status
vj_dec(struct vj_parse *p, const json_t *v, const char *where,
       struct mk_dec *out, bool *has)
{
	struct mk_err sub = { 0 };
	struct mk_dec d;
	char got[64];

	*has = false;
	if (empty_value(v))
		return MK_OK;
	if (!json_is_string(v) && !json_is_number(v)) {
		vj_describe(v, got, sizeof(got));
		return vj_fail(p, MK_EPARSE,
			       "field \"%s\": expected a decimal string, got %s",
			       where, got);
	}
	if (mk_json_dec(v, &d, &sub) != MK_OK)
		return vj_fail(p, MK_EPARSE, "field \"%s\": %s", where, sub.msg);
	if (mk_dec_is_zero(d))
		return MK_OK;
	*out = d;
	*has = true;
	return MK_OK;
}

enum mk_status
vj_ts(struct vj_parse *p, const json_t *v, const char *where,
      enum vj_ts_unit unit, int64_t *ms)
{
	struct mk_err sub = { 0 };
	struct mk_dec d, factor;
	char got[64];

	*ms = 0;
	if (empty_value(v))
		return MK_OK;
	if (unit == VJ_TS_RFC3339) {
		int64_t t;

		if (!json_is_string(v)) {
			vj_describe(v, got, sizeof(got));
			return vj_fail(p, MK_EPARSE,
				       "field \"%s\": expected an RFC 3339 "
				       "time string, got %s", where, got);
		}
		if (feed_rfc3339_parse_ms(json_string_value(v),
					  json_string_length(v), &t,
					  &sub) != MK_OK)
			return vj_fail(p, MK_EPARSE, "field \"%s\": %s", where,
				       sub.msg);
		*ms = t;
		return MK_OK;
	}
	if (!json_is_string(v) && !json_is_number(v)) {
		vj_describe(v, got, sizeof(got));
		return vj_fail(p, MK_EPARSE,
			       "field \"%s\": expected a timestamp, got %s",
			       where, got);
	}
	if (mk_json_dec(v, &d, &sub) != MK_OK)
		return vj_fail(p, MK_EPARSE, "field \"%s\": %s", where, sub.msg);
	switch (unit) {
	case VJ_TS_S: factor = MK_DEC(1000, 0); break;
	case VJ_TS_US: factor = MK_DEC(1, 3); break;
	case VJ_TS_NS: factor = MK_DEC(1, 6); break;
	case VJ_TS_MS:
	case VJ_TS_RFC3339:
	default: factor = MK_DEC(1, 0); break;
	}
	if (mk_dec_is_neg(d) ||
	    mk_dec_mul(d, factor, 0, MK_ROUND_DOWN, &d) != MK_OK ||
	    d.m > FEED_TS_MAX_MS) {
		vj_describe(v, got, sizeof(got));
		return vj_fail(p, MK_EPARSE,
			       "field \"%s\": timestamp %s is out of range",
			       where, got);
	}
	*ms = d.m;
	return MK_OK;
}

enum mk_status
vj_code(struct vj_parse *p, const json_t *v, const char *where,
	int64_t *out)
{
	struct mk_dec d;
	char got[64];

	if (json_is_integer(v)) {
		*out = (int64_t)json_integer_value(v);
		return MK_OK;
	}
	if (json_is_string(v) &&
	    mk_dec_parse(json_string_value(v), json_string_length(v), &d,
			 NULL) == MK_OK &&
	    d.scale == 0) {
		*out = d.m;
		return MK_OK;
	}
	vj_describe(v, got, sizeof(got));
	return vj_fail(p, MK_EPARSE, "field \"%s\": expected an integer code, "
		       "got %s", where, got);
}

bool
vj_contains_ci(const char *hay, const char *needle)
{
	size_t n = strlen(needle);

	for (; *hay != '\0'; hay++) {
		size_t i = 0;

		while (i < n && hay[i] != '\0') {
			char a = hay[i], b = needle[i];

			if (a >= 'A' && a <= 'Z')
				a = (char)(a - 'A' + 'a');
			if (b >= 'A' && b <= 'Z')
				b = (char)(b - 'A' + 'a');
			if (a != b)
				break;
			i++;
		}
		if (i == n)
			return true;
	}
	return n == 0;
}

const char *
vj_path(char *buf, size_t cap, const char *prefix, const char *key)
{
	snprintf(buf, cap, "%s%s%s", prefix, prefix[0] != '\0' ? "." : "",
		 key);
	return buf;
}

enum mk_status
vj_dec_at(struct vj_parse *p, const json_t *obj, const char *prefix,
	  const char *key, struct mk_dec *out, bool *has)
{
	char where[96];

	return vj_dec(p, vj_get(obj, key), vj_path(where, sizeof(where),
						   prefix, key), out, has);
}

enum mk_status
vj_ts_at(struct vj_parse *p, const json_t *obj, const char *prefix,
	 const char *key, enum vj_ts_unit unit, int64_t *ms)
{
	char where[96];

	return vj_ts(p, vj_get(obj, key), vj_path(where, sizeof(where),
						  prefix, key), unit, ms);
}

enum mk_status
vj_quote_fields(struct vj_parse *p, const json_t *obj, const char *prefix,
		const char *bid, const char *ask, const char *last,
		struct agg_quote *q)
{
	enum mk_status st = MK_OK;

	memset(q, 0, sizeof(*q));
	if (bid != NULL)
		st = vj_dec_at(p, obj, prefix, bid, &q->bid, &q->has_bid);
	if (st == MK_OK && ask != NULL)
		st = vj_dec_at(p, obj, prefix, ask, &q->ask, &q->has_ask);
	if (st == MK_OK && last != NULL)
		st = vj_dec_at(p, obj, prefix, last, &q->last, &q->has_last);
	return st;
}

enum mk_status
vj_flat_ticker(struct vj_parse *p, const json_t *obj, const char *prefix,
	       const char *id, const struct vj_fields *f)
{
	struct agg_quote q;
	enum mk_status st;

	st = vj_quote_fields(p, obj, prefix, f->bid, f->ask, f->last, &q);
	if (st == MK_OK && f->ts != NULL)
		st = vj_ts_at(p, obj, prefix, f->ts, f->ts_unit,
			      &q.exchange_ts_ms);
	if (st != MK_OK)
		return st;
	return vj_emit(p, id, &q);
}

static const char *
type_word(json_type t)
{
	switch (t) {
	case JSON_OBJECT: return "an object";
	case JSON_ARRAY: return "an array";
	case JSON_STRING: return "a string";
	case JSON_INTEGER: return "an integer";
	case JSON_REAL: return "a number";
	case JSON_TRUE:
	case JSON_FALSE: return "a boolean";
	case JSON_NULL: return "null";
	}
	return "a JSON value";
}

enum mk_status
vj_want(struct vj_parse *p, const json_t *v, json_type type,
	const char *where)
{
	char got[64], name[112];

	if (v != NULL && json_typeof(v) == type)
		return MK_OK;
	if (where[0] == '\0')
		snprintf(name, sizeof(name), "the answer");
	else
		snprintf(name, sizeof(name), "field \"%s\"", where);
	if (v == NULL)
		return vj_fail(p, MK_EPARSE, "%s: missing (expected %s)", name,
			       type_word(type));
	vj_describe(v, got, sizeof(got));
	return vj_fail(p, MK_EPARSE, "%s: expected %s, got %s", name,
		       type_word(type), got);
}

enum mk_status
vj_check_envelope(struct vj_parse *p, const json_t *root,
		  const struct vj_envelope *e)
{
	const json_t *msg = vj_get(root, e->msg_key);
	const json_t *code = vj_get(root, e->code_key);
	enum mk_status st, kind = MK_EVENUE;
	int64_t c;

	st = vj_want(p, root, JSON_OBJECT, "");
	if (st != MK_OK)
		return st;
	if (code == NULL)
		return vj_fail(p, MK_EPARSE, "the answer has no \"%s\"",
			       e->code_key);
	st = vj_code(p, code, e->code_key, &c);
	if (st != MK_OK || c == e->ok)
		return st;
	for (size_t i = 0; i < sizeof(e->limits) / sizeof(e->limits[0]); i++)
		if (e->limits[i] != e->ok && c == e->limits[i])
			kind = MK_ERATELIMIT;
	return vj_fail(p, kind, "error %" PRId64 ": %s", c,
		       json_is_string(msg) && json_string_length(msg) > 0
			       ? json_string_value(msg) : "(no message)");
}
