/*
 * adapter_gemini.c - Gemini v1 public ticker.
 *
 * Asks GET /v1/pubticker/btcusd; the answer is {"bid","ask","last",
 * "volume":{"BTC":..,"USD":..,"timestamp":<ms>}} with no symbol; the
 * timestamp comes as a number or a string. Errors are
 * {"result":"error","reason":"InvalidSymbol","message":"..."}; the reasons
 * RateLimit and RateLimited are rate limits.
 */
#include "config.h"

#include <string.h>

#include "feeds/venue_json.h"

static enum mk_status
gemini_parse(struct vj_parse *p, const json_t *root)
{
	const json_t *result = vj_get(root, "result");
	const json_t *volume = vj_get(root, "volume");
	struct agg_quote q;
	enum mk_status st;

	st = vj_want(p, root, JSON_OBJECT, "");
	if (st != MK_OK)
		return st;
	if (json_is_string(result) &&
	    strcmp(json_string_value(result), "error") == 0) {
		const json_t *reason = vj_get(root, "reason");
		const json_t *msg = vj_get(root, "message");
		const char *r = json_is_string(reason)
					? json_string_value(reason) : "error";

		return vj_fail(p, strncmp(r, "RateLimit", 9) == 0
					  ? MK_ERATELIMIT : MK_EVENUE,
			       "%s: %s", r,
			       json_is_string(msg) ? json_string_value(msg)
						   : "(no message)");
	}
	st = vj_quote_fields(p, root, "", "bid", "ask", "last", &q);
	if (st == MK_OK && volume != NULL) {
		st = vj_want(p, volume, JSON_OBJECT, "volume");
		if (st == MK_OK)
			st = vj_ts_at(p, volume, "volume", "timestamp",
				      VJ_TS_MS, &q.exchange_ts_ms);
	}
	if (st != MK_OK)
		return st;
	return vj_emit(p, NULL, &q);
}

const struct feed_adapter feed_adapter_gemini = {
	.name = "gemini",
	.summary = "Gemini: GET /v1/pubticker/btcusd",
	.url_head = "/v1/pubticker/",
	.parse = gemini_parse,
};
