/*
 * adapter_bitstamp.c - Bitstamp v2 ticker.
 *
 * Asks GET /api/v2/ticker/btcusd/; the answer is one object with decimal
 * strings "bid", "ask", "last" (and open, high, low, vwap, volume) and
 * "timestamp" in Unix seconds, as a string. Errors are
 * {"status":"error","reason":...,"response_code":"400.021"} (reason may be
 * a string or an object of messages); a reason mentioning a rate limit is
 * a rate limit.
 */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include "feeds/venue_json.h"

/* Appends the first string under each member of reason (an object of
 * messages such as {"__all__":["..."]}), one level deep only. */
static void
reason_text(const json_t *reason, char *buf, size_t cap)
{
	const char *key;
	const json_t *v;
	size_t used = 0;

	buf[0] = '\0';
	json_object_foreach((json_t *)reason, key, v) {
		const json_t *s = json_is_array(v) ? json_array_get(v, 0) : v;

		if (!json_is_string(s) || used >= cap)
			continue;
		used += (size_t)snprintf(buf + used, cap - used, "%s%s: %s",
					 used > 0 ? "; " : "", key,
					 json_string_value(s));
	}
}

static enum mk_status
bitstamp_error(struct vj_parse *p, const json_t *root)
{
	const json_t *reason = vj_get(root, "reason");
	const json_t *code = vj_get(root, "response_code");
	char text[160];

	if (code == NULL)
		code = vj_get(root, "code");
	if (json_is_string(reason))
		snprintf(text, sizeof(text), "%s", json_string_value(reason));
	else if (json_is_object(reason))
		reason_text(reason, text, sizeof(text));
	else
		text[0] = '\0';
	if (text[0] == '\0')
		snprintf(text, sizeof(text), "(no reason given)");
	return vj_fail(p, vj_contains_ci(text, "rate limit") ? MK_ERATELIMIT
							     : MK_EVENUE,
		       "error%s%s: %s", json_is_string(code) ? " " : "",
		       json_is_string(code) ? json_string_value(code) : "",
		       text);
}

static const struct vj_fields bitstamp_fields = {
	.bid = "bid", .ask = "ask", .last = "last", .ts = "timestamp",
	.ts_unit = VJ_TS_S,
};

static enum mk_status
bitstamp_parse(struct vj_parse *p, const json_t *root)
{
	const json_t *status = vj_get(root, "status");
	enum mk_status st;

	st = vj_want(p, root, JSON_OBJECT, "");
	if (st != MK_OK)
		return st;
	if (json_is_string(status) &&
	    strcmp(json_string_value(status), "error") == 0)
		return bitstamp_error(p, root);
	return vj_flat_ticker(p, root, "", NULL, &bitstamp_fields);
}

const struct feed_adapter feed_adapter_bitstamp = {
	.name = "bitstamp",
	.summary = "Bitstamp: GET /api/v2/ticker/btcusd/",
	.url_head = "/api/v2/ticker/",
	.url_tail = "/",
	.parse = bitstamp_parse,
};
