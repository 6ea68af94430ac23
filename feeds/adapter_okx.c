/*
 * adapter_okx.c - OKX v5 market ticker.
 *
 * Asks GET /api/v5/market/ticker?instId=BTC-USDT. The answer is
 * {"code":"0","msg":"","data":[{"instId","last","bidPx","askPx","ts",...}]}
 * with "ts" in Unix milliseconds as a string. Entries of the index-tickers
 * ("idxPx") and mark-price ("markPx") endpoints are read too, that price
 * standing in for last. A "code" other than "0" is an error; 50011 and
 * 50061 are rate limits.
 */
#include "config.h"

#include <stdio.h>

#include "feeds/venue_json.h"

static const struct vj_envelope okx_envelope = {
	.code_key = "code", .msg_key = "msg", .ok = 0,
	.limits = { 50011, 50061 },
};

static enum mk_status
okx_entry(struct vj_parse *p, const json_t *e, const char *prefix)
{
	const json_t *id = vj_get(e, "instId");
	struct vj_fields f = {
		.bid = "bidPx", .ask = "askPx", .last = "last", .ts = "ts",
		.ts_unit = VJ_TS_MS,
	};
	char where[64];
	enum mk_status st;

	st = vj_want(p, e, JSON_OBJECT, prefix);
	if (st == MK_OK)
		st = vj_want(p, id, JSON_STRING,
			     vj_path(where, sizeof(where), prefix, "instId"));
	if (st != MK_OK || !vj_match(p, json_string_value(id)))
		return st;
	if (vj_get(e, "last") == NULL) {
		if (vj_get(e, "idxPx") != NULL)
			f.last = "idxPx";
		else if (vj_get(e, "markPx") != NULL)
			f.last = "markPx";
	}
	return vj_flat_ticker(p, e, prefix, json_string_value(id), &f);
}

static enum mk_status
okx_parse(struct vj_parse *p, const json_t *root)
{
	const json_t *data = vj_get(root, "data"), *e;
	size_t i;
	enum mk_status st;

	st = vj_check_envelope(p, root, &okx_envelope);
	if (st != MK_OK)
		return st;
	st = vj_want(p, data, JSON_ARRAY, "data");
	if (st != MK_OK)
		return st;
	json_array_foreach(data, i, e) {
		char prefix[32];

		snprintf(prefix, sizeof(prefix), "data[%zu]", i);
		st = okx_entry(p, e, prefix);
		if (st != MK_OK)
			return st;
	}
	return MK_OK;
}

const struct feed_adapter feed_adapter_okx = {
	.name = "okx",
	.summary = "OKX: GET /api/v5/market/ticker?instId=BTC-USDT",
	.url_head = "/api/v5/market/ticker?instId=",
	.parse = okx_parse,
};
