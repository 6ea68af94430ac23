/*
 * render.c - a quote's single price and the normalized JSON line that
 * markd-parse prints and the adapter tests compare (see adapter.h).
 */
#include "config.h"

#include <stdlib.h>

#include "feeds/adapter.h"
#include "feeds/rfc3339.h"

/* x / 2, exact at x's scale or one digit more; rounded half-even only
 * when x is already at the maximum scale. */
static enum mk_status
half(struct mk_dec x, struct mk_dec *out)
{
	enum mk_status st;

	st = mk_dec_div(x, MK_DEC(2, 0), x.scale, MK_ROUND_EXACT, out);
	if (st != MK_EINEXACT)
		return st;
	if (x.scale < MK_DEC_MAX_SCALE) {
		st = mk_dec_div(x, MK_DEC(2, 0), x.scale + 1, MK_ROUND_EXACT,
				out);
		if (st != MK_ERANGE)
			return st;
	}
	return mk_dec_div(x, MK_DEC(2, 0), x.scale, MK_ROUND_HALF_EVEN, out);
}

enum mk_status
feed_quote_price(const struct agg_quote *q, struct mk_dec *out)
{
	struct mk_dec sum, diff, h;
	enum mk_status st;

	if (!(q->has_bid && q->has_ask)) {
		if (!q->has_last)
			return MK_ENOTFOUND;
		*out = q->last;
		return MK_OK;
	}
	/* (bid + ask) / 2, or bid + (ask - bid) / 2 when the sum does not
	 * fit in 64 bits. */
	st = mk_dec_add(q->bid, q->ask, &sum);
	if (st == MK_OK)
		return half(sum, out);
	st = mk_dec_sub(q->ask, q->bid, &diff);
	if (st == MK_OK)
		st = half(diff, &h);
	if (st == MK_OK)
		st = mk_dec_add(q->bid, h, out);
	return st;
}

/* A new JSON string holding d, or JSON null when !has. */
static json_t *
dec_json(bool has, struct mk_dec d)
{
	char buf[MK_DEC_STRLEN];

	if (!has)
		return json_null();
	if (mk_dec_format(d, buf, sizeof(buf)) == 0)
		return NULL;
	return json_string(buf);
}

static json_t *
ts_json(int64_t ms)
{
	char buf[FEED_RFC3339_STRLEN];

	if (ms == 0)
		return json_null();
	if (feed_rfc3339_format_ms(ms, buf, sizeof(buf)) == 0)
		return NULL;
	return json_string(buf);
}

static json_t *
quote_json(const struct feed_quote *fq)
{
	const struct agg_quote *q = &fq->q;
	struct mk_dec price;
	bool has_price = feed_quote_price(q, &price) == MK_OK;
	json_t *o = json_object();

	/* json_object_set_new steals the value even on failure, and a NULL
	 * value makes it fail: any failure leaves o incomplete. */
	if (o == NULL ||
	    json_object_set_new(o, "market", json_string(fq->market)) != 0 ||
	    json_object_set_new(o, "bid", dec_json(q->has_bid, q->bid)) ||
	    json_object_set_new(o, "ask", dec_json(q->has_ask, q->ask)) ||
	    json_object_set_new(o, "last", dec_json(q->has_last, q->last)) ||
	    json_object_set_new(o, "price", dec_json(has_price, price)) ||
	    json_object_set_new(o, "conf", dec_json(q->has_conf, q->conf)) ||
	    json_object_set_new(o, "exchange_ts",
				ts_json(q->exchange_ts_ms)) != 0) {
		json_decref(o);
		return NULL;
	}
	return o;
}

enum mk_status
feed_quotes_render(const char *adapter, const char *market,
		   const struct feed_quote *q, size_t n, char **out,
		   struct mk_err *err)
{
	json_t *root = json_object(), *list = json_array();
	enum mk_status st = MK_OK;

	*out = NULL;
	if (root == NULL || list == NULL ||
	    json_object_set_new(root, "adapter", json_string(adapter)) != 0 ||
	    json_object_set_new(root, "market", market != NULL
					? json_string(market)
					: json_null()) != 0) {
		st = mk_err_set(err, MK_EINVAL, "cannot render adapter or "
				"market name (out of memory or not UTF-8)");
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		if (json_array_append_new(list, quote_json(&q[i])) != 0) {
			st = mk_err_set(err, MK_EINVAL, "cannot render quote "
					"%zu (out of memory, a market that is "
					"not UTF-8 or a time past 9999)", i);
			goto out;
		}
	}
	if (json_object_set(root, "quotes", list) != 0) {
		st = mk_err_set(err, MK_ENOMEM, "out of memory");
		goto out;
	}
	*out = json_dumps(root, JSON_COMPACT);
	if (*out == NULL)
		st = mk_err_set(err, MK_ENOMEM, "out of memory");
out:
	json_decref(list);
	json_decref(root);
	return st;
}
