/*
 * adapter_kucoin.c - KuCoin level-1 order book (best bid/ask and last).
 *
 * Asks GET /api/v1/market/orderbook/level1?symbol=BTC-USDT. The answer is
 * {"code":"200000","data":{"price","bestBid","bestAsk","time":<ms>,...}}
 * with no symbol; "data" is null for a symbol KuCoin does not list. Any
 * other code is an error; 429000 is the rate limit.
 */
#include "config.h"

#include "feeds/venue_json.h"

static const struct vj_envelope kucoin_envelope = {
	.code_key = "code", .msg_key = "msg", .ok = 200000,
	.limits = { 429000, 200000, 200000 },
};

static const struct vj_fields kucoin_fields = {
	.bid = "bestBid", .ask = "bestAsk", .last = "price", .ts = "time",
	.ts_unit = VJ_TS_MS,
};

static enum mk_status
kucoin_parse(struct vj_parse *p, const json_t *root)
{
	const json_t *data = vj_get(root, "data");
	enum mk_status st;

	st = vj_check_envelope(p, root, &kucoin_envelope);
	if (st != MK_OK)
		return st;
	if (data == NULL || json_is_null(data))
		return MK_OK;   /* an unlisted symbol: not found */
	st = vj_want(p, data, JSON_OBJECT, "data");
	if (st != MK_OK)
		return st;
	return vj_flat_ticker(p, data, "data", NULL, &kucoin_fields);
}

const struct feed_adapter feed_adapter_kucoin = {
	.name = "kucoin",
	.summary = "KuCoin: GET /api/v1/market/orderbook/level1?symbol=BTC-USDT",
	.url_head = "/api/v1/market/orderbook/level1?symbol=",
	.parse = kucoin_parse,
};
