/*
 * adapter.h - venue adapters: how to ask one venue's public REST API for a
 * market's price, and how to read its answer into exact-decimal quotes
 * (DESIGN.md section 4).
 *
 * An adapter is a constant table found by name ("binance", "kraken", ...,
 * "pyth", "json"). It does no I/O: it builds a request URL from a base URL
 * and a market id, and parses a response body the caller already holds.
 * The poller, markd-parse, the fuzzers and the tests all drive it this way.
 *
 * Market ids are each venue's own (BTCUSDT, BTC-USD, XBTUSD, btcusd,
 * BTC-USDT, tBTCUSD, a Pyth feed id with or without 0x). A quote carries
 * the market id exactly as the caller asked for it, so callers can match
 * answers to requests with strcmp even where the venue renames the pair
 * (Kraken answers XBTUSD under XXBTZUSD).
 *
 * Normalisation, the same for every venue: a bid, ask or last that is
 * absent, JSON null, "" or zero counts as "no value" (venues use these for
 * an empty book side or a market without trades); a negative value is kept
 * (the aggregator rejects it as non-positive). An answer for the asked
 * market without a usable price (bid and ask, or last) is a parse error.
 * exchange_ts_ms is the venue's own timestamp in Unix milliseconds, or 0
 * when the answer has none.
 *
 * Errors name the venue first ("binance: ...") and then what and where
 * ("field \"bidPrice\": ..."). Statuses of feed_adapter_parse:
 *   MK_EVENUE      the venue's own error envelope (message has its code/text)
 *   MK_ERATELIMIT  the venue's rate-limit or ban codes
 *   MK_EPARSE      a body that is not what the venue sends (not JSON,
 *                  wrong types, bad decimals, missing price, duplicate keys)
 *   MK_ENOTFOUND   the answer is fine but holds no entry for the market
 *   MK_ENOMEM, MK_EINVAL (bad arguments), MK_ETOOBIG (more entries than cap)
 *
 * Thread safety: adapters and compiled options are immutable and may be
 * used from any number of threads at once; every function is reentrant.
 * Ownership: adapters are static (never freed); compiled options belong to
 * whoever created them.
 */
#ifndef MARKD_FEEDS_ADAPTER_H
#define MARKD_FEEDS_ADAPTER_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "aggregator/instrument.h"
#include "aggregator/quote.h"
#include "aggregator/status.h"

/* Longest market id, with the NUL (same bound as the aggregator's legs). */
#define FEED_MARKET_MAX AGG_MARKET_MAX
/* A buffer of this size always holds a URL built from a base URL shorter
 * than 1024 bytes and any valid market id (for the json adapter: with a
 * path template that uses {market} at most 3 times). */
#define FEED_URL_MAX 2048

struct feed_adapter;            /* opaque, static */
struct feed_adapter_opts;       /* opaque, compiled "options" of a source */

/* One quote and the market it belongs to. */
struct feed_quote {
	char market[FEED_MARKET_MAX];  /* NUL-terminated */
	struct agg_quote q;
};

/* The adapter called `name`, or NULL if there is none. */
const struct feed_adapter *feed_adapter_find(const char *name);

/* Number of adapters, and the i-th one (0 <= i < count) in a stable order
 * (alphabetical, "json" last); NULL when i is out of range. */
size_t feed_adapter_count(void);
const struct feed_adapter *feed_adapter_at(size_t i);

/* The adapter's name, and a one-line description of the endpoint it
 * polls (for --help). Static strings. */
const char *feed_adapter_name(const struct feed_adapter *a);
const char *feed_adapter_summary(const struct feed_adapter *a);

/*
 * Writes the adapter names, separated by ", ", into buf (NUL-terminated,
 * for "unknown adapter" messages). Returns the length the full list needs;
 * the text is cut short when that is >= cap.
 */
size_t feed_adapter_names(char *buf, size_t cap);

/*
 * Validates the adapter-specific "options" object of a source (options may
 * be NULL, meaning absent). Only the json adapter takes options, and needs
 * them; for every other adapter, options must be absent or {}.
 * Returns MK_OK or MK_ECONFIG; the message starts with the key's path
 * relative to the source ("options.bid: ..."), so the caller prefixes only
 * the source's own path ("sources[2].").
 *
 * json adapter options:
 *   "path"            required. URL template appended to the source's base
 *                     URL; every {market} becomes the escaped market id
 *                     ("/v1/price?symbol={market}").
 *   "price" | "last"  JSON Pointer (RFC 6901) to the price (one of the two
 *                     names, not both);
 *   "bid", "ask"      pointers to the best bid and ask (both or neither);
 *                     at least price/last or bid+ask must be given.
 *   "conf"            optional pointer to the source's own uncertainty.
 *   "timestamp"       optional pointer to the answer's time, read with
 *   "timestamp_unit"  "s", "ms" (default), "us", "ns" or "rfc3339".
 *   "error"           optional pointer: when the answer has a value there
 *                     that is not null, false, "", 0, "0", [] or {}, the
 *                     answer is the venue's error (MK_EVENUE, text quoted).
 *   Pointer tokens may contain {market}, replaced by the raw market id
 *   ("/result/{market}/price").
 */
enum mk_status feed_adapter_check_options(const struct feed_adapter *a,
					  const json_t *options,
					  struct mk_err *err);

/*
 * Compiles options (as feed_adapter_check_options validates them) into
 * *out, which is NULL for adapters that take none. The result is new:
 * release it with feed_adapter_opts_destroy. options is borrowed and may
 * be released afterwards. Errors: MK_ECONFIG, MK_ENOMEM.
 */
enum mk_status feed_adapter_opts_create(const struct feed_adapter *a,
					const json_t *options,
					struct feed_adapter_opts **out,
					struct mk_err *err);

/* Releases compiled options; NULL is accepted. */
void feed_adapter_opts_destroy(struct feed_adapter_opts *o);

/*
 * Checks that market is a usable id for the adapter: non-empty, shorter
 * than FEED_MARKET_MAX, no control characters, not "." or "..", and for
 * pyth a 64-digit hex feed id with or without 0x. MK_OK or MK_EINVAL.
 */
enum mk_status feed_adapter_check_market(const struct feed_adapter *a,
					 const char *market,
					 struct mk_err *err);

/*
 * Builds the request URL for market into buf: base_url (trailing '/'
 * dropped; it must have no '?' or '#') followed by the adapter's path and
 * query, with the market percent-encoded (every byte but A-Z a-z 0-9
 * - . _ ~). o is the compiled options (NULL for adapters without).
 * Pyth asks for one feed: "/v2/updates/price/latest?ids[]=<id>".
 * Errors: MK_EINVAL (empty or unusable base URL, bad market, missing
 * options), MK_ETOOBIG (cap too small; see FEED_URL_MAX).
 */
enum mk_status feed_adapter_url(const struct feed_adapter *a,
				const struct feed_adapter_opts *o,
				const char *base_url, const char *market,
				char *buf, size_t cap, struct mk_err *err);

/*
 * Parses the response body body[0..len) (not NUL-terminated; the caller
 * caps its size) for market into out[0..cap) and sets *n.
 * With a market, at most one quote comes back, for that market, with
 * out[0].market = market; two entries for it in one answer are a parse
 * error. With market == NULL, every entry of the answer that has a usable
 * price comes back (entries without one are skipped), each named by the
 * venue's own id ("" when the answer names none); MK_ETOOBIG when there
 * are more than cap.
 * A market must pass feed_adapter_check_market (else MK_EINVAL).
 * o: compiled options, needed by the json adapter, NULL for the others.
 * On failure *n is 0 and out's contents are unspecified: no quote of a
 * failed parse may be used. Statuses: see the head of this file.
 * Cost: one json_loadb of the body plus a linear walk.
 */
enum mk_status feed_adapter_parse(const struct feed_adapter *a,
				  const struct feed_adapter_opts *o,
				  const char *market, const char *body,
				  size_t len, struct feed_quote *out,
				  size_t cap, size_t *n, struct mk_err *err);

/*
 * The quote's single price: the mid of bid and ask when both exist, else
 * last. The mid is exact: (bid + ask) / 2 at the larger of the two scales,
 * or at one more digit when the halving needs it (so 1.01 and 1.02 give
 * 1.015); only at the maximum scale 18 is it rounded, half-even.
 * Errors: MK_ENOTFOUND (neither a bid/ask pair nor last), MK_ERANGE.
 */
enum mk_status feed_quote_price(const struct agg_quote *q, struct mk_dec *out);

/*
 * Renders quotes as the one-line JSON markd-parse prints:
 * {"adapter":A,"market":M,"quotes":[{"market":..,"bid":..,"ask":..,
 *  "last":..,"price":..,"conf":..,"exchange_ts":..}]}
 * decimals as strings with the venue's own digits, absent values as null,
 * "price" as feed_quote_price (null when there is none), "exchange_ts" as
 * RFC 3339 UTC with milliseconds or null; market may be NULL (null).
 * *out is new (free() it), without a trailing newline.
 * Errors: MK_ENOMEM, MK_EINVAL (a market that is not UTF-8), MK_ERANGE.
 */
enum mk_status feed_quotes_render(const char *adapter, const char *market,
				  const struct feed_quote *q, size_t n,
				  char **out, struct mk_err *err);

#endif
