/*
 * adapter_kraken.c - Kraken spot ticker.
 *
 * Asks GET /0/public/Ticker?pair=XBTUSD. The answer is
 * {"error":[...],"result":{"<pair>":{"a":[ask,..],"b":[bid,..],
 * "c":[last,..],...}}}, with no time. Kraken keys the result by its own
 * pair name, which for its oldest assets differs from what was asked
 * (XBTUSD and BTCUSD come back as XXBTZUSD, USDTUSD as USDTZUSD): the
 * entry is found by exact name, then by those renaming rules, then, when
 * the result has a single entry, that one. "error" holds strings such as
 * "EQuery:Unknown asset pair"; "EAPI:Rate limit exceeded",
 * "EGeneral:Too many requests" and "EService:Throttled" are rate limits,
 * entries starting with 'W' are warnings and ignored.
 */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include "feeds/venue_json.h"

/* Kraken's legacy asset codes: crypto ones take an X prefix in pair
 * names, fiat ones a Z. Common names map to Kraken's (BTC is XBT). */
static const char *const legacy_crypto[] = {
	"XBT", "ETH", "LTC", "XRP", "XLM", "XMR", "ZEC", "ETC", "REP", "MLN",
	"XDG",
};
static const char *const legacy_fiat[] = {
	"USD", "EUR", "GBP", "JPY", "CAD", "AUD",
};

static bool
in_list(const char *s, size_t len, const char *const *list, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (strlen(list[i]) == len && memcmp(list[i], s, len) == 0)
			return true;
	return false;
}

/* The asset s[0..len) in Kraken's spelling, into buf. Returns the kind:
 * 'X' legacy crypto, 'Z' legacy fiat, 0 other. */
static char
asset(const char *s, size_t len, char *buf, size_t cap)
{
	if (len == 3 && memcmp(s, "BTC", 3) == 0)
		snprintf(buf, cap, "XBT");
	else if (len == 4 && memcmp(s, "DOGE", 4) == 0)
		snprintf(buf, cap, "XDG");
	else
		snprintf(buf, cap, "%.*s", (int)len, s);
	len = strlen(buf);
	if (in_list(buf, len, legacy_crypto,
		    sizeof(legacy_crypto) / sizeof(legacy_crypto[0])))
		return 'X';
	if (in_list(buf, len, legacy_fiat,
		    sizeof(legacy_fiat) / sizeof(legacy_fiat[0])))
		return 'Z';
	return 0;
}

/* The result entry for market, or NULL; *key gets its name. */
static const json_t *
kraken_find(const json_t *result, const char *market, const char **key)
{
	size_t len = strlen(market);
	const json_t *v;

	v = json_object_get(result, market);
	if (v != NULL) {
		*key = market;
		return v;
	}
	for (size_t i = 2; i + 2 <= len; i++) {
		char b[FEED_MARKET_MAX], q[FEED_MARKET_MAX];
		char cand[4][2 * FEED_MARKET_MAX + 4];
		char kb = asset(market, i, b, sizeof(b));
		char kq = asset(market + i, len - i, q, sizeof(q));

		if (kb == 0 && kq == 0)
			continue;
		/* Both prefixed (XXBTZUSD), only the quote (USDTZUSD), none
		 * (XBTUSD for BTCUSD), only the base. */
		snprintf(cand[0], sizeof(cand[0]), "%s%s%s%s",
			 kb ? "X" : "", b, kq == 'Z' ? "Z" : kq ? "X" : "", q);
		snprintf(cand[1], sizeof(cand[1]), "%s%s%s", b,
			 kq == 'Z' ? "Z" : kq ? "X" : "", q);
		snprintf(cand[2], sizeof(cand[2]), "%s%s", b, q);
		snprintf(cand[3], sizeof(cand[3]), "%s%s%s", kb ? "X" : "", b,
			 q);
		for (size_t c = 0; c < 4; c++) {
			void *it = json_object_iter_at((json_t *)result,
						       cand[c]);

			if (it != NULL) {
				*key = json_object_iter_key(it);
				return json_object_iter_value(it);
			}
		}
	}
	if (json_object_size(result) == 1) {
		void *it = json_object_iter((json_t *)result);

		*key = json_object_iter_key(it);
		return json_object_iter_value(it);
	}
	return NULL;
}

/* The first element of array member name of entry, as a price. */
static enum mk_status
first_of(struct vj_parse *p, const json_t *entry, const char *prefix,
	 const char *name, struct mk_dec *out, bool *has)
{
	const json_t *arr = vj_get(entry, name);
	char where[128];
	enum mk_status st;

	*has = false;
	if (arr == NULL || json_is_null(arr))
		return MK_OK;
	snprintf(where, sizeof(where), "%s.%s", prefix, name);
	st = vj_want(p, arr, JSON_ARRAY, where);
	if (st != MK_OK)
		return st;
	snprintf(where, sizeof(where), "%s.%s[0]", prefix, name);
	return vj_dec(p, json_array_get(arr, 0), where, out, has);
}

static enum mk_status
kraken_entry(struct vj_parse *p, const char *key, const json_t *entry)
{
	struct agg_quote q = { 0 };
	char prefix[FEED_MARKET_MAX + 16];
	enum mk_status st;

	snprintf(prefix, sizeof(prefix), "result.%s", key);
	st = vj_want(p, entry, JSON_OBJECT, prefix);
	if (st == MK_OK)
		st = first_of(p, entry, prefix, "b", &q.bid, &q.has_bid);
	if (st == MK_OK)
		st = first_of(p, entry, prefix, "a", &q.ask, &q.has_ask);
	if (st == MK_OK)
		st = first_of(p, entry, prefix, "c", &q.last, &q.has_last);
	if (st != MK_OK)
		return st;
	return vj_emit(p, key, &q);
}

static enum mk_status
kraken_errors(struct vj_parse *p, const json_t *errors)
{
	char text[200] = "";
	size_t used = 0, i;
	const json_t *e;
	bool any = false, limited = false;
	enum mk_status st;

	st = vj_want(p, errors, JSON_ARRAY, "error");
	if (st != MK_OK)
		return st;
	json_array_foreach(errors, i, e) {
		const char *s;

		if (!json_is_string(e))
			return vj_want(p, e, JSON_STRING, "error[]");
		s = json_string_value(e);
		if (s[0] != 'E')
			continue;       /* a warning */
		any = true;
		if (strncmp(s, "EAPI:Rate limit", 15) == 0 ||
		    strcmp(s, "EGeneral:Too many requests") == 0 ||
		    strncmp(s, "EService:Throttled", 18) == 0)
			limited = true;
		if (used < sizeof(text))
			used += (size_t)snprintf(text + used,
						 sizeof(text) - used, "%s%s",
						 used > 0 ? "; " : "", s);
	}
	if (!any)
		return MK_OK;
	return vj_fail(p, limited ? MK_ERATELIMIT : MK_EVENUE, "%s", text);
}

static enum mk_status
kraken_parse(struct vj_parse *p, const json_t *root)
{
	const json_t *errors = vj_get(root, "error");
	const json_t *result = vj_get(root, "result");
	const json_t *entry;
	const char *key;
	enum mk_status st;

	st = vj_want(p, root, JSON_OBJECT, "");
	if (st != MK_OK)
		return st;
	if (errors != NULL) {
		st = kraken_errors(p, errors);
		if (st != MK_OK)
			return st;
	}
	st = vj_want(p, result, JSON_OBJECT, "result");
	if (st != MK_OK)
		return st;
	if (p->market == NULL) {
		json_object_foreach((json_t *)result, key, entry) {
			st = kraken_entry(p, key, entry);
			if (st != MK_OK)
				return st;
		}
		return MK_OK;
	}
	entry = kraken_find(result, p->market, &key);
	if (entry == NULL)
		return MK_OK;   /* no entry: not found */
	return kraken_entry(p, key, entry);
}

const struct feed_adapter feed_adapter_kraken = {
	.name = "kraken",
	.summary = "Kraken spot: GET /0/public/Ticker?pair=XBTUSD",
	.url_head = "/0/public/Ticker?pair=",
	.parse = kraken_parse,
};
