/*
 * adapter_coinbase.c - Coinbase Exchange product ticker.
 *
 * Asks GET /products/BTC-USD/ticker; the answer is one object
 * {"trade_id","price","size","bid","ask","volume","time"} with "time" in
 * RFC 3339 and no product id. The Advanced Trade market ticker
 * ({"trades":[...],"best_bid","best_ask"}, same path under
 * /api/v3/brokerage/market) is read too: last and time from its newest
 * trade. Errors are {"message":"NotFound"}; a message mentioning a rate
 * limit ("Public rate limit exceeded") is a rate limit.
 */
#include "config.h"

#include <stdio.h>

#include "feeds/venue_json.h"

/* Advanced Trade: best_bid/best_ask, and trades[0] for last and time. */
static enum mk_status
coinbase_advanced(struct vj_parse *p, const json_t *root)
{
	const json_t *trades = vj_get(root, "trades");
	const json_t *t0 = NULL, *pid = NULL;
	struct agg_quote q;
	enum mk_status st;

	st = vj_quote_fields(p, root, "", "best_bid", "best_ask", NULL, &q);
	if (st != MK_OK)
		return st;
	if (trades != NULL) {
		st = vj_want(p, trades, JSON_ARRAY, "trades");
		if (st != MK_OK)
			return st;
		t0 = json_array_get(trades, 0);
	}
	if (t0 != NULL) {
		st = vj_want(p, t0, JSON_OBJECT, "trades[0]");
		if (st == MK_OK)
			st = vj_dec_at(p, t0, "trades[0]", "price", &q.last,
				       &q.has_last);
		if (st == MK_OK)
			st = vj_ts_at(p, t0, "trades[0]", "time",
				      VJ_TS_RFC3339, &q.exchange_ts_ms);
		if (st != MK_OK)
			return st;
		/* The trades name their product: an answer for another
		 * product is no answer for this one. */
		pid = vj_get(t0, "product_id");
		if (json_is_string(pid) && !vj_match(p, json_string_value(pid)))
			return MK_OK;
	}
	return vj_emit(p, json_is_string(pid) ? json_string_value(pid) : NULL,
		       &q);
}

static const struct vj_fields exchange_fields = {
	.bid = "bid", .ask = "ask", .last = "price", .ts = "time",
	.ts_unit = VJ_TS_RFC3339,
};

static enum mk_status
coinbase_parse(struct vj_parse *p, const json_t *root)
{
	const json_t *msg = vj_get(root, "message");
	enum mk_status st;

	st = vj_want(p, root, JSON_OBJECT, "");
	if (st != MK_OK)
		return st;
	if (vj_get(root, "best_bid") != NULL || vj_get(root, "trades") != NULL)
		return coinbase_advanced(p, root);
	if (json_is_string(msg) && vj_get(root, "price") == NULL &&
	    vj_get(root, "bid") == NULL && vj_get(root, "ask") == NULL)
		return vj_fail(p, vj_contains_ci(json_string_value(msg),
						 "rate limit")
				       ? MK_ERATELIMIT : MK_EVENUE,
			       "%s", json_string_value(msg));
	return vj_flat_ticker(p, root, "", NULL, &exchange_fields);
}

const struct feed_adapter feed_adapter_coinbase = {
	.name = "coinbase",
	.summary = "Coinbase Exchange: GET /products/BTC-USD/ticker",
	.url_head = "/products/",
	.url_tail = "/ticker",
	.parse = coinbase_parse,
};
