/*
 * adapter_bitfinex.c - Bitfinex v2 trading-pair ticker.
 *
 * Asks GET /v2/ticker/tBTCUSD; the answer is a bare array of 10 JSON
 * numbers [BID, BID_SIZE, ASK, ASK_SIZE, DAILY_CHANGE,
 * DAILY_CHANGE_RELATIVE, LAST_PRICE, VOLUME, HIGH, LOW], read through
 * their shortest round-trip decimal form, with no time. The /v2/tickers
 * form (an array of [SYMBOL, ...those 10]) is read too. Funding tickers
 * (f...) have another layout and are refused. Errors are
 * ["error", code, "text"] (11010 is the rate limit) or, from the older
 * gateway, {"error":"ERR_RATE_LIMIT"} / {"message":"..."}; an empty array
 * means the symbol is unknown.
 */
#include "config.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "feeds/venue_json.h"

#define TICKER_LEN 10
#define IDX_BID 0
#define IDX_ASK 2
#define IDX_LAST 6

/* Reads the 10 ticker values starting at arr[off]; prefix names arr. */
static enum mk_status
ticker(struct vj_parse *p, const json_t *arr, size_t off, const char *prefix,
       const char *id)
{
	struct agg_quote q = { 0 };
	char where[48];
	enum mk_status st;

	if (json_array_size(arr) != off + TICKER_LEN)
		return vj_fail(p, MK_EPARSE,
			       "%s%sexpected %d values in a trading-pair "
			       "ticker, got %zu (funding tickers are not "
			       "supported)", prefix, prefix[0] ? ": " : "",
			       TICKER_LEN + (int)off, json_array_size(arr));
	snprintf(where, sizeof(where), "%s[%zu]", prefix, off + IDX_BID);
	st = vj_dec(p, json_array_get(arr, off + IDX_BID), where, &q.bid,
		    &q.has_bid);
	if (st != MK_OK)
		return st;
	snprintf(where, sizeof(where), "%s[%zu]", prefix, off + IDX_ASK);
	st = vj_dec(p, json_array_get(arr, off + IDX_ASK), where, &q.ask,
		    &q.has_ask);
	if (st != MK_OK)
		return st;
	snprintf(where, sizeof(where), "%s[%zu]", prefix, off + IDX_LAST);
	st = vj_dec(p, json_array_get(arr, off + IDX_LAST), where, &q.last,
		    &q.has_last);
	if (st != MK_OK)
		return st;
	return vj_emit(p, id, &q);
}

static enum mk_status
bitfinex_envelope(struct vj_parse *p, const json_t *root)
{
	const json_t *code = json_array_get(root, 1);
	const json_t *msg = json_array_get(root, 2);
	int64_t c = 0;

	if (json_is_integer(code))
		c = (int64_t)json_integer_value(code);
	return vj_fail(p, c == 11010 ? MK_ERATELIMIT : MK_EVENUE,
		       "error %" PRId64 ": %s", c,
		       json_is_string(msg) ? json_string_value(msg)
					   : "(no message)");
}

static enum mk_status
bitfinex_object(struct vj_parse *p, const json_t *root)
{
	const json_t *e = vj_get(root, "error");
	const json_t *msg = vj_get(root, "message");

	if (json_is_string(e))
		return vj_fail(p, strcmp(json_string_value(e),
					 "ERR_RATE_LIMIT") == 0
					  ? MK_ERATELIMIT : MK_EVENUE,
			       "%s", json_string_value(e));
	if (json_is_string(msg))
		return vj_fail(p, MK_EVENUE, "%s", json_string_value(msg));
	return vj_want(p, root, JSON_ARRAY, "");
}

static enum mk_status
bitfinex_parse(struct vj_parse *p, const json_t *root)
{
	const json_t *first = json_array_get(root, 0), *e;
	size_t i;
	enum mk_status st;

	if (json_is_object(root))
		return bitfinex_object(p, root);
	st = vj_want(p, root, JSON_ARRAY, "");
	if (st != MK_OK || first == NULL)
		return st;      /* [] : unknown symbol, not found */
	if (json_is_string(first) &&
	    strcmp(json_string_value(first), "error") == 0)
		return bitfinex_envelope(p, root);
	if (!json_is_array(first))
		return ticker(p, root, 0, "", NULL);
	json_array_foreach(root, i, e) {
		const json_t *sym = json_array_get(e, 0);
		char prefix[32];

		snprintf(prefix, sizeof(prefix), "[%zu]", i);
		st = vj_want(p, e, JSON_ARRAY, prefix);
		if (st == MK_OK && !json_is_string(sym)) {
			char where[40];

			snprintf(where, sizeof(where), "%s[0]", prefix);
			st = vj_want(p, sym, JSON_STRING, where);
		}
		if (st != MK_OK)
			return st;
		if (!vj_match(p, json_string_value(sym)))
			continue;
		st = ticker(p, e, 1, prefix, json_string_value(sym));
		if (st != MK_OK)
			return st;
	}
	return MK_OK;
}

const struct feed_adapter feed_adapter_bitfinex = {
	.name = "bitfinex",
	.summary = "Bitfinex: GET /v2/ticker/tBTCUSD",
	.url_head = "/v2/ticker/",
	.parse = bitfinex_parse,
};
