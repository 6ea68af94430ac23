/*
 * adapter_bybit.c - Bybit v5 spot tickers.
 *
 * Asks GET /v5/market/tickers?category=spot&symbol=BTCUSDT. The answer is
 * {"retCode":0,"retMsg":"OK","result":{"category":..,"list":[{"symbol",
 * "bid1Price","ask1Price","lastPrice",...}]},"time":<ms>}; the entry whose
 * symbol matches is taken and the top-level "time" is its timestamp. A
 * non-zero retCode is an error; 10006 (too many visits) and 10018 (IP
 * rate limit) are rate limits.
 */
#include "config.h"

#include <stdio.h>

#include "feeds/venue_json.h"

static const struct vj_envelope bybit_envelope = {
	.code_key = "retCode", .msg_key = "retMsg", .ok = 0,
	.limits = { 10006, 10018 },
};

static enum mk_status
bybit_parse(struct vj_parse *p, const json_t *root)
{
	const json_t *result = vj_get(root, "result");
	const json_t *list = vj_get(result, "list"), *e;
	int64_t ts = 0;
	size_t i;
	enum mk_status st;

	st = vj_check_envelope(p, root, &bybit_envelope);
	if (st != MK_OK)
		return st;
	st = vj_ts_at(p, root, "", "time", VJ_TS_MS, &ts);
	if (st == MK_OK)
		st = vj_want(p, result, JSON_OBJECT, "result");
	if (st == MK_OK)
		st = vj_want(p, list, JSON_ARRAY, "result.list");
	if (st != MK_OK)
		return st;
	json_array_foreach(list, i, e) {
		const json_t *sym = vj_get(e, "symbol");
		struct agg_quote q;
		char prefix[48], where[64];

		snprintf(prefix, sizeof(prefix), "result.list[%zu]", i);
		st = vj_want(p, e, JSON_OBJECT, prefix);
		if (st == MK_OK)
			st = vj_want(p, sym, JSON_STRING,
				     vj_path(where, sizeof(where), prefix,
					     "symbol"));
		if (st != MK_OK)
			return st;
		if (!vj_match(p, json_string_value(sym)))
			continue;
		st = vj_quote_fields(p, e, prefix, "bid1Price", "ask1Price",
				     "lastPrice", &q);
		if (st != MK_OK)
			return st;
		q.exchange_ts_ms = ts;
		st = vj_emit(p, json_string_value(sym), &q);
		if (st != MK_OK)
			return st;
	}
	return MK_OK;
}

const struct feed_adapter feed_adapter_bybit = {
	.name = "bybit",
	.summary = "Bybit spot: GET /v5/market/tickers?category=spot&symbol=BTCUSDT",
	.url_head = "/v5/market/tickers?category=spot&symbol=",
	.parse = bybit_parse,
};
