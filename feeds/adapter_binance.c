/*
 * adapter_binance.c - Binance spot REST tickers.
 *
 * Asks GET /api/v3/ticker/bookTicker?symbol=X. Reads any of Binance's
 * ticker shapes, alone or in an array: bookTicker (bidPrice, askPrice),
 * ticker/price (price), ticker/24hr (lastPrice, bidPrice, askPrice,
 * closeTime) and the USD-M futures variants (with "time"). bookTicker and
 * ticker/price carry no time. Errors come as {"code":-1121,"msg":"..."};
 * -1003 (request weight, IP ban) and -1015 (too many orders) are rate
 * limits.
 */
#include "config.h"

#include <stdint.h>
#include <stdio.h>

#include "feeds/venue_json.h"

/* Binance's good answers carry no code: an answer with one is an error
 * whatever its value (the ok value below never occurs). */
static const struct vj_envelope binance_envelope = {
	.code_key = "code", .msg_key = "msg", .ok = INT64_MIN,
	.limits = { -1003, -1015, INT64_MIN },
};

static enum mk_status
binance_entry(struct vj_parse *p, const json_t *e, const char *prefix)
{
	const json_t *sym = vj_get(e, "symbol");
	struct vj_fields f = {
		.bid = "bidPrice", .ask = "askPrice",
		.last = vj_get(e, "lastPrice") != NULL ? "lastPrice" : "price",
		.ts = vj_get(e, "closeTime") != NULL ? "closeTime" : "time",
		.ts_unit = VJ_TS_MS,
	};
	char where[64];
	enum mk_status st;

	st = vj_want(p, sym, JSON_STRING,
		     vj_path(where, sizeof(where), prefix, "symbol"));
	if (st != MK_OK || !vj_match(p, json_string_value(sym)))
		return st;
	return vj_flat_ticker(p, e, prefix, json_string_value(sym), &f);
}

static enum mk_status
binance_parse(struct vj_parse *p, const json_t *root)
{
	enum mk_status st = MK_OK;

	if (json_is_array(root)) {
		size_t i;
		const json_t *e;

		json_array_foreach(root, i, e) {
			char prefix[32];

			snprintf(prefix, sizeof(prefix), "[%zu]", i);
			st = vj_want(p, e, JSON_OBJECT, prefix);
			if (st == MK_OK)
				st = binance_entry(p, e, prefix);
			if (st != MK_OK)
				break;
		}
		return st;
	}
	st = vj_want(p, root, JSON_OBJECT, "");
	if (st != MK_OK)
		return st;
	if (vj_get(root, "symbol") == NULL && vj_get(root, "code") != NULL)
		return vj_check_envelope(p, root, &binance_envelope);
	return binance_entry(p, root, "");
}

const struct feed_adapter feed_adapter_binance = {
	.name = "binance",
	.summary = "Binance spot: GET /api/v3/ticker/bookTicker?symbol=BTCUSDT",
	.url_head = "/api/v3/ticker/bookTicker?symbol=",
	.parse = binance_parse,
};
