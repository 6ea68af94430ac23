/*
 * adapter_pyth.c - Pyth Network prices from a Hermes server.
 *
 * Asks GET /v2/updates/price/latest?ids[]=<feed id>. The answer is
 * {"binary":{...},"parsed":[{"id","price":{"price","conf","expo",
 * "publish_time"},"ema_price":{...},"metadata":{...}}]}; the legacy
 * /api/latest_price_feeds answer (a bare array of such entries) is read
 * too. price and conf are integers (as strings) scaled by 10^expo; they
 * become exact decimals: price -> last, conf -> conf, publish_time (Unix
 * seconds) -> the timestamp. Feed ids match without regard to case or a
 * 0x prefix. Hermes reports errors as plain text with an HTTP status,
 * which is not JSON and fails as such (the message quotes the text).
 */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include "feeds/venue_json.h"

#define FEED_ID_HEX 64

static const char *
strip0x(const char *s)
{
	return s[0] == '0' && (s[1] == 'x' || s[1] == 'X') ? s + 2 : s;
}

static bool
is_hex(char c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') ||
	       (c >= 'A' && c <= 'F');
}

static enum mk_status
pyth_check_market(const char *market, struct mk_err *err)
{
	const char *h = strip0x(market);
	size_t n = strlen(h);

	for (size_t i = 0; i < n; i++)
		if (!is_hex(h[i]))
			n = 0;
	if (n != FEED_ID_HEX)
		return mk_err_set(err, MK_EINVAL,
				  "pyth: market \"%.70s\" is not a price feed "
				  "id (64 hex digits, with or without 0x)",
				  market);
	return MK_OK;
}

static bool
same_id(const char *a, const char *b)
{
	a = strip0x(a);
	b = strip0x(b);
	for (; *a != '\0' && *b != '\0'; a++, b++) {
		char x = *a, y = *b;

		if (x >= 'A' && x <= 'Z')
			x = (char)(x - 'A' + 'a');
		if (y >= 'A' && y <= 'Z')
			y = (char)(y - 'A' + 'a');
		if (x != y)
			return false;
	}
	return *a == *b;
}

/* Reads member key of obj, an integer sent as a string of digits (or a
 * JSON integer), into *v at scale 0. Zero is a value here. */
static enum mk_status
int_field(struct vj_parse *p, const json_t *obj, const char *prefix,
	  const char *key, struct mk_dec *v)
{
	const json_t *raw = vj_get(obj, key);
	bool has;
	char where[64];
	enum mk_status st;

	vj_path(where, sizeof(where), prefix, key);
	if (!json_is_integer(raw) &&
	    (!json_is_string(raw) || json_string_length(raw) == 0))
		return json_is_string(raw)
			       ? vj_fail(p, MK_EPARSE, "field \"%s\": empty",
					 where)
			       : vj_want(p, raw, JSON_STRING, where);
	st = vj_dec(p, raw, where, v, &has);
	if (st != MK_OK)
		return st;
	if (!has)
		*v = MK_DEC(0, 0);
	if (v->scale != 0)
		return vj_fail(p, MK_EPARSE, "field \"%s\": expected an "
			       "integer", where);
	return MK_OK;
}

/* mantissa * 10^expo as an exact decimal. */
static enum mk_status
apply_expo(struct vj_parse *p, struct mk_dec m, json_int_t expo,
	   const char *where, struct mk_dec *out)
{
	struct mk_dec r = m;

	if (expo > 0) {
		if (expo > 18)
			goto range;
		for (json_int_t k = 0; k < expo; k++)
			if (mk_dec_mul(r, MK_DEC(10, 0), 0, MK_ROUND_EXACT,
				       &r) != MK_OK)
				goto range;
	} else {
		/* Drop trailing zeros that a scale above 18 cannot hold. */
		while (expo < -MK_DEC_MAX_SCALE && r.m % 10 == 0 && r.m != 0) {
			r.m /= 10;
			expo++;
		}
		if (r.m == 0)
			expo = 0;
		if (expo < -MK_DEC_MAX_SCALE)
			goto range;
		r.scale = (int)-expo;
	}
	*out = r;
	return MK_OK;
range:
	return vj_fail(p, MK_EPARSE, "field \"%s\": value * 10^%lld does not "
		       "fit in an exact decimal", where, (long long)expo);
}

static enum mk_status
pyth_entry(struct vj_parse *p, const json_t *e, const char *prefix)
{
	const json_t *id = vj_get(e, "id"), *price = vj_get(e, "price");
	const json_t *expo;
	struct agg_quote q = { 0 };
	struct mk_dec m, c;
	char where[64], pp[48];
	enum mk_status st;

	st = vj_want(p, e, JSON_OBJECT, prefix);
	if (st == MK_OK)
		st = vj_want(p, id, JSON_STRING,
			     vj_path(where, sizeof(where), prefix, "id"));
	if (st != MK_OK)
		return st;
	if (p->market != NULL && !same_id(json_string_value(id), p->market))
		return MK_OK;
	vj_path(pp, sizeof(pp), prefix, "price");
	st = vj_want(p, price, JSON_OBJECT, pp);
	if (st != MK_OK)
		return st;
	expo = vj_get(price, "expo");
	st = vj_want(p, expo, JSON_INTEGER,
		     vj_path(where, sizeof(where), pp, "expo"));
	if (st == MK_OK)
		st = int_field(p, price, pp, "price", &m);
	if (st == MK_OK)
		st = int_field(p, price, pp, "conf", &c);
	if (st != MK_OK)
		return st;
	if (mk_dec_is_neg(c))
		return vj_fail(p, MK_EPARSE, "field \"%s.conf\": negative",
			       pp);
	st = apply_expo(p, m, json_integer_value(expo),
			vj_path(where, sizeof(where), pp, "price"), &q.last);
	if (st == MK_OK)
		st = apply_expo(p, c, json_integer_value(expo),
				vj_path(where, sizeof(where), pp, "conf"),
				&q.conf);
	if (st == MK_OK)
		st = vj_ts_at(p, price, pp, "publish_time", VJ_TS_S,
			      &q.exchange_ts_ms);
	if (st != MK_OK)
		return st;
	q.has_last = !mk_dec_is_zero(q.last);
	q.has_conf = true;
	return vj_emit(p, json_string_value(id), &q);
}

static enum mk_status
pyth_parse(struct vj_parse *p, const json_t *root)
{
	const json_t *list = root, *e;
	const char *prefix = "";
	size_t i;
	enum mk_status st;

	if (json_is_object(root)) {
		const json_t *msg = vj_get(root, "message");

		list = vj_get(root, "parsed");
		prefix = "parsed";
		if (list == NULL && json_is_string(msg))
			return vj_fail(p, MK_EVENUE, "%s",
				       json_string_value(msg));
	}
	st = vj_want(p, list, JSON_ARRAY, prefix);
	if (st != MK_OK)
		return st;
	json_array_foreach(list, i, e) {
		char where[32];

		snprintf(where, sizeof(where), "%s[%zu]", prefix, i);
		st = pyth_entry(p, e, where);
		if (st != MK_OK)
			return st;
	}
	return MK_OK;
}

const struct feed_adapter feed_adapter_pyth = {
	.name = "pyth",
	.summary = "Pyth Hermes: GET /v2/updates/price/latest?ids[]=<feed id>",
	.url_head = "/v2/updates/price/latest?ids[]=",
	.parse = pyth_parse,
	.check_market = pyth_check_market,
};
