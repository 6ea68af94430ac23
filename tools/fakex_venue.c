/*
 * fakex_venue.c - paths and body shapes of every venue markd-fakex
 * imitates (see fakex_venue.h). The shapes follow the real payloads in
 * ../shared/data/payloads/: field names, strings versus numbers, envelopes.
 */
#include "config.h"

#include "tools/fakex_venue.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char json_type[] = "application/json";
static const char text_type[] = "text/plain; charset=utf-8";

/* ---- buffer ---- */

void
fakex_buf_printf(struct fakex_buf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (b->failed)
		return;
	for (;;) {
		size_t room = b->cap - b->len;

		va_start(ap, fmt);
		n = room > 0 ? vsnprintf(b->p + b->len, room, fmt, ap) : -1;
		va_end(ap);
		if (n >= 0 && (size_t)n < room) {
			b->len += (size_t)n;
			return;
		}
		{
			size_t ncap = b->cap == 0 ? 1024 : b->cap * 2;
			char *np;

			if (n >= 0 && ncap < b->len + (size_t)n + 1)
				ncap = b->len + (size_t)n + 1;
			if (ncap > FAKEX_BODY_MAX) {
				b->failed = true;
				return;
			}
			np = realloc(b->p, ncap);
			if (np == NULL) {
				b->failed = true;
				return;
			}
			b->p = np;
			b->cap = ncap;
		}
	}
}

void
fakex_buf_json_escape(struct fakex_buf *b, const char *s)
{
	for (; *s != '\0'; s++) {
		unsigned char c = (unsigned char)*s;

		if (c == '"' || c == '\\')
			fakex_buf_printf(b, "\\%c", c);
		else if (c < 0x20 || c >= 0x7f)
			fakex_buf_printf(b, "\\u%04x", c);
		else
			fakex_buf_printf(b, "%c", c);
	}
}

void
fakex_buf_release(struct fakex_buf *b)
{
	if (b == NULL)
		return;
	free(b->p);
	memset(b, 0, sizeof(*b));
}

void
fakex_answer_release(struct fakex_answer *ans)
{
	if (ans == NULL)
		return;
	fakex_buf_release(&ans->body);
}

void
fakex_rfc3339(int64_t ms, char *buf, size_t cap)
{
	time_t secs = (time_t)(ms / 1000);
	struct tm tm;

	gmtime_r(&secs, &tm);
	snprintf(buf, cap, "%04d-%02d-%02dT%02d:%02d:%02d.%03d000Z",
		 tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
		 tm.tm_min, tm.tm_sec, (int)(ms % 1000));
}

/* ---- prices ---- */

struct quote {
	const struct fakex_market *m;
	struct mk_dec mid, bid, ask;
	char sbid[MK_DEC_STRLEN], sask[MK_DEC_STRLEN], slast[MK_DEC_STRLEN];
};

/* Text of d with at least `min_scale` fraction digits (venues pad). */
static void
fmt_min(struct mk_dec d, int min_scale, char *buf)
{
	if (d.scale < min_scale)
		(void)mk_dec_rescale(d, min_scale, MK_ROUND_EXACT, &d);
	if (mk_dec_format(d, buf, MK_DEC_STRLEN) == 0)
		snprintf(buf, MK_DEC_STRLEN, "0");
}

/* Text of d without trailing fraction zeros (Bitfinex numbers). */
static void
fmt_trim(struct mk_dec d, char *buf)
{
	char *dot, *end;

	fmt_min(d, 0, buf);
	dot = strchr(buf, '.');
	if (dot == NULL)
		return;
	end = buf + strlen(buf);
	while (end > dot + 1 && end[-1] == '0')
		*--end = '\0';
	if (end == dot + 1)
		*dot = '\0';
}

static enum mk_status
make_quote(const struct fakex_scenario *sc, const struct fakex_market *m,
	   const struct fakex_view *view, int min_scale, struct quote *q)
{
	enum mk_status st;

	q->m = m;
	st = fakex_market_mid(sc, m, view->sim_ms, &q->mid);
	if (st == MK_OK && view->ppm != 0)
		st = fakex_shift_ppm(q->mid, view->ppm, m->scale, &q->mid);
	if (st == MK_OK)
		st = fakex_market_book(m, q->mid, &q->bid, &q->ask);
	if (st != MK_OK)
		return st;
	fmt_min(q->bid, min_scale, q->sbid);
	fmt_min(q->ask, min_scale, q->sask);
	fmt_min(q->mid, min_scale, q->slast);
	return MK_OK;
}

/* ---- routing helpers ---- */

/* path == prefix + SEGMENT + suffix, SEGMENT non-empty without '/'. */
static bool
match_seg(const char *path, const char *prefix, const char *suffix,
	  char *seg, size_t cap)
{
	size_t pl = strlen(prefix), sl = strlen(suffix), n;

	if (strncmp(path, prefix, pl) != 0)
		return false;
	path += pl;
	n = strlen(path);
	if (n <= sl || strcmp(path + n - sl, suffix) != 0)
		return false;
	n -= sl;
	if (n >= cap || memchr(path, '/', n) != NULL)
		return false;
	memcpy(seg, path, n);
	seg[n] = '\0';
	return true;
}

static const char *
arg(const struct fakex_request *rq, const char *key)
{
	const char *v = rq->arg != NULL ? rq->arg(rq->ctx, key) : NULL;

	return (v != NULL && v[0] != '\0') ? v : NULL;
}

/* ---- error envelopes ---- */

static void
set(struct fakex_answer *ans, unsigned status, const char *type)
{
	ans->status = status;
	ans->content_type = type;
}

enum mk_status
fakex_venue_error(enum fakex_venue v, enum fakex_error e, const char *detail,
		  int64_t ts_ms, unsigned status, struct fakex_answer *ans)
{
	struct fakex_buf *b = &ans->body;
	unsigned ist = status != 0 ? status : 500;

	memset(ans, 0, sizeof(*ans));
	if (detail == NULL)
		detail = "";
	switch (v) {
	case FAKEX_BINANCE:
		set(ans, 400, json_type);
		if (e == FAKEX_ERR_BAD_MARKET) {
			fakex_buf_printf(b, "{\"code\":-1121,\"msg\":\"Invalid symbol.\"}");
		} else if (e == FAKEX_ERR_BAD_PARAM) {
			fakex_buf_printf(b, "{\"code\":-1102,\"msg\":\"Mandatory parameter 'symbol' was not sent, was empty/null, or malformed.\"}");
		} else if (e == FAKEX_ERR_NO_ROUTE) {
			ans->status = 404;
			fakex_buf_printf(b, "{\"code\":-1000,\"msg\":\"Unknown path.\"}");
		} else if (e == FAKEX_ERR_RATELIMIT) {
			ans->status = 429;
			fakex_buf_printf(b, "{\"code\":-1003,\"msg\":\"Too many requests; current limit of IP(127.0.0.1) is 6000 requests per minute. Please use the websocket for live updates to avoid polling the API.\"}");
		} else {
			ans->status = ist;
			fakex_buf_printf(b, "{\"code\":-1001,\"msg\":\"Internal error; unable to process your request. Please try again.\"}");
		}
		break;
	case FAKEX_COINBASE:
		set(ans, 404, json_type);
		if (e == FAKEX_ERR_BAD_MARKET || e == FAKEX_ERR_NO_ROUTE) {
			fakex_buf_printf(b, "{\"message\":\"NotFound\"}");
		} else if (e == FAKEX_ERR_BAD_PARAM) {
			ans->status = 400;
			fakex_buf_printf(b, "{\"message\":\"Invalid request\"}");
		} else if (e == FAKEX_ERR_RATELIMIT) {
			ans->status = 429;
			fakex_buf_printf(b, "{\"message\":\"Public rate limit exceeded\"}");
		} else {
			ans->status = ist;
			fakex_buf_printf(b, "{\"message\":\"Internal server error\"}");
		}
		break;
	case FAKEX_KRAKEN:
		/* Kraken answers its own errors with HTTP 200. */
		set(ans, 200, json_type);
		if (e == FAKEX_ERR_BAD_MARKET) {
			fakex_buf_printf(b, "{\"error\":[\"EQuery:Unknown asset pair\"]}");
		} else if (e == FAKEX_ERR_BAD_PARAM) {
			fakex_buf_printf(b, "{\"error\":[\"EGeneral:Invalid arguments\"]}");
		} else if (e == FAKEX_ERR_NO_ROUTE) {
			ans->status = 404;
			fakex_buf_printf(b, "{\"error\":[\"EGeneral:Unknown method\"]}");
		} else if (e == FAKEX_ERR_RATELIMIT) {
			ans->status = 429;
			fakex_buf_printf(b, "{\"error\":[\"EGeneral:Too many requests\"]}");
		} else {
			ans->status = ist;
			fakex_buf_printf(b, "{\"error\":[\"EService:Unavailable\"]}");
		}
		break;
	case FAKEX_BITSTAMP:
		set(ans, 404, json_type);
		if (e == FAKEX_ERR_BAD_MARKET || e == FAKEX_ERR_NO_ROUTE) {
			fakex_buf_printf(b, "{\"status\":\"error\",\"reason\":\"Not found: ");
			fakex_buf_json_escape(b, detail);
			fakex_buf_printf(b, "\",\"response_code\":\"404.002\"}");
		} else if (e == FAKEX_ERR_BAD_PARAM) {
			ans->status = 400;
			fakex_buf_printf(b, "{\"status\":\"error\",\"reason\":\"Invalid request\",\"response_code\":\"400.001\"}");
		} else if (e == FAKEX_ERR_RATELIMIT) {
			ans->status = 429;
			fakex_buf_printf(b, "{\"status\":\"error\",\"reason\":\"Rate limit exceeded\",\"response_code\":\"429.001\"}");
		} else {
			ans->status = ist;
			fakex_buf_printf(b, "{\"status\":\"error\",\"reason\":\"Internal server error\",\"response_code\":\"500.001\"}");
		}
		break;
	case FAKEX_OKX:
		set(ans, 200, json_type);
		if (e == FAKEX_ERR_BAD_MARKET) {
			fakex_buf_printf(b, "{\"code\":\"51001\",\"msg\":\"Instrument ID does not exist\",\"data\":[]}");
		} else if (e == FAKEX_ERR_BAD_PARAM) {
			fakex_buf_printf(b, "{\"code\":\"50014\",\"msg\":\"Parameter instId can not be empty\",\"data\":[]}");
		} else if (e == FAKEX_ERR_NO_ROUTE) {
			ans->status = 404;
			fakex_buf_printf(b, "{\"code\":\"404\",\"msg\":\"Not Found\",\"data\":[]}");
		} else if (e == FAKEX_ERR_RATELIMIT) {
			ans->status = 429;
			fakex_buf_printf(b, "{\"msg\":\"Too Many Requests\",\"code\":\"50011\"}");
		} else {
			ans->status = ist;
			fakex_buf_printf(b, "{\"code\":\"50001\",\"msg\":\"Service temporarily unavailable, please try again later\",\"data\":[]}");
		}
		break;
	case FAKEX_BYBIT: {
		int code = 10016;
		const char *msg = "Internal system error.";

		set(ans, 200, json_type);
		if (e == FAKEX_ERR_BAD_MARKET) {
			code = 10001;
			msg = "Not supported symbols";
		} else if (e == FAKEX_ERR_BAD_PARAM) {
			code = 10001;
			msg = "params error: category and symbol are required; category must be spot";
		} else if (e == FAKEX_ERR_NO_ROUTE) {
			ans->status = 404;
			code = 10404;
			msg = "path not found";
		} else if (e == FAKEX_ERR_RATELIMIT) {
			ans->status = 429;
			code = 10006;
			msg = "Too many visits";
		} else {
			ans->status = ist;
		}
		fakex_buf_printf(b, "{\"retCode\":%d,\"retMsg\":\"%s\",\"result\":{},\"retExtInfo\":{},\"time\":%lld}",
				 code, msg, (long long)ts_ms);
		break;
	}
	case FAKEX_GEMINI:
		set(ans, 400, json_type);
		if (e == FAKEX_ERR_BAD_MARKET) {
			fakex_buf_printf(b, "{\"result\":\"error\",\"reason\":\"InvalidSymbol\",\"message\":\"Supplied value '");
			fakex_buf_json_escape(b, detail);
			fakex_buf_printf(b, "' is not a valid symbol\"}");
		} else if (e == FAKEX_ERR_BAD_PARAM) {
			fakex_buf_printf(b, "{\"result\":\"error\",\"reason\":\"MissingParameter\",\"message\":\"Missing parameter\"}");
		} else if (e == FAKEX_ERR_NO_ROUTE) {
			ans->status = 404;
			fakex_buf_printf(b, "{\"result\":\"error\",\"reason\":\"EndpointNotFound\",\"message\":\"API entry point `");
			fakex_buf_json_escape(b, detail);
			fakex_buf_printf(b, "` not found\"}");
		} else if (e == FAKEX_ERR_RATELIMIT) {
			ans->status = 429;
			fakex_buf_printf(b, "{\"result\":\"error\",\"reason\":\"RateLimit\",\"message\":\"Requests were made too frequently\"}");
		} else {
			ans->status = ist;
			fakex_buf_printf(b, "{\"result\":\"error\",\"reason\":\"ServerError\",\"message\":\"Internal server error\"}");
		}
		break;
	case FAKEX_KUCOIN:
		set(ans, 200, json_type);
		if (e == FAKEX_ERR_BAD_MARKET) {
			fakex_buf_printf(b, "{\"code\":\"900001\",\"msg\":\"Symbol [");
			fakex_buf_json_escape(b, detail);
			fakex_buf_printf(b, "] Not Exists\"}");
		} else if (e == FAKEX_ERR_BAD_PARAM) {
			fakex_buf_printf(b, "{\"code\":\"400100\",\"msg\":\"symbol is required\"}");
		} else if (e == FAKEX_ERR_NO_ROUTE) {
			ans->status = 404;
			fakex_buf_printf(b, "{\"code\":\"404000\",\"msg\":\"Url Not Found\"}");
		} else if (e == FAKEX_ERR_RATELIMIT) {
			ans->status = 429;
			fakex_buf_printf(b, "{\"code\":\"429000\",\"msg\":\"Too Many Requests\"}");
		} else {
			ans->status = ist;
			fakex_buf_printf(b, "{\"code\":\"500000\",\"msg\":\"Internal Server Error\"}");
		}
		break;
	case FAKEX_BITFINEX:
		set(ans, 400, json_type);
		if (e == FAKEX_ERR_BAD_MARKET || e == FAKEX_ERR_BAD_PARAM) {
			fakex_buf_printf(b, "[\"error\",10020,\"symbol: invalid\"]");
		} else if (e == FAKEX_ERR_NO_ROUTE) {
			ans->status = 404;
			fakex_buf_printf(b, "[\"error\",10404,\"not found\"]");
		} else if (e == FAKEX_ERR_RATELIMIT) {
			ans->status = 429;
			fakex_buf_printf(b, "[\"error\",11010,\"ratelimit: error\"]");
		} else {
			ans->status = ist;
			fakex_buf_printf(b, "[\"error\",10000,\"unknown error\"]");
		}
		break;
	case FAKEX_PYTH:
	default:
		/* Hermes answers errors in plain text. */
		set(ans, 404, text_type);
		if (e == FAKEX_ERR_BAD_MARKET) {
			fakex_buf_printf(b, "Price ids not found: ");
			fakex_buf_json_escape(b, detail);
		} else if (e == FAKEX_ERR_BAD_PARAM) {
			ans->status = 400;
			fakex_buf_printf(b, "Failed to deserialize query string: missing field `ids`");
		} else if (e == FAKEX_ERR_NO_ROUTE) {
			fakex_buf_printf(b, "Not Found");
		} else if (e == FAKEX_ERR_RATELIMIT) {
			ans->status = 429;
			fakex_buf_printf(b, "Too Many Requests");
		} else {
			ans->status = ist;
			fakex_buf_printf(b, "Internal Server Error");
		}
		break;
	}
	if (b->failed) {
		fakex_answer_release(ans);
		return MK_ENOMEM;
	}
	return MK_OK;
}

/* ---- ticker bodies ---- */

static void
binance_one(struct fakex_buf *b, const struct quote *q, bool book)
{
	if (book)
		fakex_buf_printf(b, "{\"symbol\":\"%s\",\"bidPrice\":\"%s\",\"bidQty\":\"1.25000000\",\"askPrice\":\"%s\",\"askQty\":\"0.75000000\"}",
				 q->m->id, q->sbid, q->sask);
	else
		fakex_buf_printf(b, "{\"symbol\":\"%s\",\"price\":\"%s\"}", q->m->id,
				 q->slast);
}

static void
kraken_one(struct fakex_buf *b, const struct quote *q)
{
	fakex_buf_printf(b, "\"%s\":{\"a\":[\"%s\",\"1\",\"1.000\"],\"b\":[\"%s\",\"2\",\"2.000\"],"
			 "\"c\":[\"%s\",\"0.00100000\"],\"v\":[\"12.50000000\",\"250.00000000\"],"
			 "\"p\":[\"%s\",\"%s\"],\"t\":[35,3276],\"l\":[\"%s\",\"%s\"],"
			 "\"h\":[\"%s\",\"%s\"],\"o\":\"%s\"}",
			 q->m->key, q->sask, q->sbid, q->slast, q->slast, q->slast,
			 q->sbid, q->sbid, q->sask, q->sask, q->slast);
}

/* Gemini names volume by currency: "btcusd" -> "BTC", "USD". */
static void
gemini_currencies(const char *id, char *base, char *quote, size_t cap)
{
	static const char *const quotes[] = {
		"gusd", "usdt", "usdc", "usd", "eur", "gbp", "sgd", "btc", "eth",
		"dai", NULL,
	};
	size_t n = strlen(id), ql = 3;

	for (size_t i = 0; quotes[i] != NULL; i++) {
		size_t l = strlen(quotes[i]);

		if (n > l && strcmp(id + n - l, quotes[i]) == 0) {
			ql = l;
			break;
		}
	}
	if (ql >= n)
		ql = n / 2;
	snprintf(base, cap, "%.*s", (int)(n - ql), id);
	snprintf(quote, cap, "%s", id + n - ql);
	for (char *p = base; *p != '\0'; p++)
		if (*p >= 'a' && *p <= 'z')
			*p = (char)(*p - 32);
	for (char *p = quote; *p != '\0'; p++)
		if (*p >= 'a' && *p <= 'z')
			*p = (char)(*p - 32);
}

/* A deterministic stand-in for Hermes' binary update: "PNAU" and the
 * price bytes, hex-encoded. Nobody verifies it. */
static void
pyth_binary(struct fakex_buf *b, const struct quote *q, size_t n, int64_t ts)
{
	fakex_buf_printf(b, "\"binary\":{\"encoding\":\"hex\",\"data\":[\"504e4155010000000300");
	for (size_t i = 0; i < n; i++)
		fakex_buf_printf(b, "%.16s%016llx", q[i].m->id,
				 (unsigned long long)q[i].mid.m);
	fakex_buf_printf(b, "%016llx\"]}", (unsigned long long)ts);
}

static enum mk_status
pyth_fixed(struct mk_dec d, int expo, char *buf)
{
	struct mk_dec r;
	enum mk_status st = mk_dec_rescale(d, -expo, MK_ROUND_HALF_EVEN, &r);

	if (st != MK_OK)
		return st;
	snprintf(buf, MK_DEC_STRLEN, "%lld", (long long)r.m);
	return MK_OK;
}

static enum mk_status
pyth_one(struct fakex_buf *b, const struct quote *q, int64_t ts_ms)
{
	char price[MK_DEC_STRLEN], conf[MK_DEC_STRLEN];
	struct mk_dec half;
	long long pt = (long long)(ts_ms / 1000);
	enum mk_status st;

	st = mk_dec_sub(q->ask, q->mid, &half);
	if (st == MK_OK)
		st = pyth_fixed(q->mid, q->m->expo, price);
	if (st == MK_OK)
		st = pyth_fixed(half, q->m->expo, conf);
	if (st != MK_OK)
		return st;
	fakex_buf_printf(b, "{\"id\":\"%s\",\"price\":{\"price\":\"%s\",\"conf\":\"%s\",\"expo\":%d,\"publish_time\":%lld},"
			 "\"ema_price\":{\"price\":\"%s\",\"conf\":\"%s\",\"expo\":%d,\"publish_time\":%lld},"
			 "\"metadata\":{\"slot\":%lld,\"proof_available_time\":%lld,\"prev_publish_time\":%lld}}",
			 q->m->id, price, conf, q->m->expo, pt, price, conf,
			 q->m->expo, pt, (long long)(ts_ms / 400), pt + 1, pt - 1);
	return MK_OK;
}

/* Collects markets for a request into qs (at most FAKEX_MAX_MARKETS). */
enum route {
	R_NONE,
	R_BINANCE_BOOK,
	R_BINANCE_PRICE,
	R_ONE,          /* one market from the path or a required argument */
	R_LIST,         /* markets from a list argument */
};

enum mk_status
fakex_venue_answer(const struct fakex_scenario *sc, enum fakex_venue v,
		   const struct fakex_request *rq, const struct fakex_view *view,
		   struct fakex_answer *ans)
{
	const struct fakex_venue_cfg *cfg = &sc->venues[v];
	struct quote *qs = NULL;
	struct fakex_buf *b = &ans->body;
	const struct fakex_market *ms[FAKEX_MAX_MARKETS > FAKEX_MAX_IDS ?
				       FAKEX_MAX_MARKETS : FAKEX_MAX_IDS];
	char seg[FAKEX_ID_MAX + 8], ts[40];
	const char *id = NULL, *p = rq->path;
	size_t n = 0;
	int min_scale = 0;
	bool book = false, all = false;
	enum fakex_error e = FAKEX_ERR_NO_ROUTE;
	enum mk_status st = MK_OK;

	memset(ans, 0, sizeof(*ans));
	switch (v) {
	case FAKEX_BINANCE:
		if (strcmp(p, "/api/v3/ticker/bookTicker") == 0)
			book = true;
		else if (strcmp(p, "/api/v3/ticker/price") != 0)
			goto fail;
		min_scale = 8;
		id = arg(rq, "symbol");
		all = id == NULL;
		break;
	case FAKEX_COINBASE:
		if (!match_seg(p, "/products/", "/ticker", seg, sizeof(seg)))
			goto fail;
		id = seg;
		break;
	case FAKEX_KRAKEN:
		if (strcmp(p, "/0/public/Ticker") != 0)
			goto fail;
		min_scale = 5;
		id = arg(rq, "pair");
		e = FAKEX_ERR_BAD_PARAM;
		if (id == NULL)
			goto fail;
		break;
	case FAKEX_BITSTAMP:
		if (!match_seg(p, "/api/v2/ticker/", "/", seg, sizeof(seg)) &&
		    !match_seg(p, "/api/v2/ticker/", "", seg, sizeof(seg)))
			goto fail;
		id = seg;
		break;
	case FAKEX_OKX:
		if (strcmp(p, "/api/v5/market/ticker") != 0)
			goto fail;
		id = arg(rq, "instId");
		e = FAKEX_ERR_BAD_PARAM;
		if (id == NULL)
			goto fail;
		break;
	case FAKEX_BYBIT: {
		const char *cat;

		if (strcmp(p, "/v5/market/tickers") != 0)
			goto fail;
		cat = arg(rq, "category");
		e = FAKEX_ERR_BAD_PARAM;
		if (cat == NULL || strcmp(cat, "spot") != 0)
			goto fail;
		id = arg(rq, "symbol");
		all = id == NULL;
		break;
	}
	case FAKEX_GEMINI:
		if (!match_seg(p, "/v1/pubticker/", "", seg, sizeof(seg)))
			goto fail;
		id = seg;
		break;
	case FAKEX_KUCOIN:
		if (strcmp(p, "/api/v1/market/orderbook/level1") != 0)
			goto fail;
		id = arg(rq, "symbol");
		e = FAKEX_ERR_BAD_PARAM;
		if (id == NULL)
			goto fail;
		break;
	case FAKEX_BITFINEX:
		if (!match_seg(p, "/v2/ticker/", "", seg, sizeof(seg)))
			goto fail;
		id = seg;
		break;
	case FAKEX_PYTH:
		if (strcmp(p, "/v2/updates/price/latest") != 0)
			goto fail;
		e = FAKEX_ERR_BAD_PARAM;
		if (rq->nids == 0 || rq->too_many_ids)
			goto fail;
		break;
	case FAKEX_NVENUES:
	default:
		goto fail;
	}

	/* Resolve the markets. */
	e = FAKEX_ERR_BAD_MARKET;
	if (all) {
		for (size_t i = 0; i < cfg->nmarkets; i++)
			ms[n++] = &cfg->markets[i];
	} else if (v == FAKEX_PYTH) {
		for (size_t i = 0; i < rq->nids; i++) {
			id = rq->ids[i];
			if ((ms[n++] = fakex_market_find(sc, v, id)) == NULL)
				goto fail;
		}
	} else if (v == FAKEX_KRAKEN) {
		/* pair=XBTUSD,ETHUSD */
		const char *s = id;

		while (*s != '\0') {
			const char *comma = strchr(s, ',');
			size_t l = comma != NULL ? (size_t)(comma - s) : strlen(s);

			if (l == 0 || l >= sizeof(seg) || n == FAKEX_MAX_MARKETS)
				goto fail;
			memcpy(seg, s, l);
			seg[l] = '\0';
			id = seg;
			if ((ms[n] = fakex_market_find(sc, v, seg)) == NULL)
				goto fail;
			/* XBTUSD,XXBTZUSD name one pair: answer it once. */
			for (size_t j = 0; j < n; j++)
				if (ms[j] == ms[n])
					n--;
			n++;
			s += l + (comma != NULL ? 1 : 0);
		}
		if (n == 0)
			goto fail;
	} else {
		if ((ms[n++] = fakex_market_find(sc, v, id)) == NULL)
			goto fail;
	}

	qs = calloc(n, sizeof(*qs));
	if (qs == NULL) {
		st = MK_ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < n; i++)
		if ((st = make_quote(sc, ms[i], view, min_scale, &qs[i])) != MK_OK)
			goto out;
	set(ans, 200, json_type);
	switch (v) {
	case FAKEX_BINANCE:
		if (all)
			fakex_buf_printf(b, "[");
		for (size_t i = 0; i < n; i++) {
			if (i > 0)
				fakex_buf_printf(b, ",");
			binance_one(b, &qs[i], book);
		}
		if (all)
			fakex_buf_printf(b, "]");
		break;
	case FAKEX_COINBASE:
		fakex_rfc3339(view->ts_ms, ts, sizeof(ts));
		fakex_buf_printf(b, "{\"ask\":\"%s\",\"bid\":\"%s\",\"volume\":\"8123.45678901\",\"trade_id\":%lld,"
				 "\"price\":\"%s\",\"size\":\"0.00150000\",\"time\":\"%s\",\"rfq_volume\":\"12.500000\"}",
				 qs[0].sask, qs[0].sbid, (long long)(view->ts_ms / 100),
				 qs[0].slast, ts);
		break;
	case FAKEX_KRAKEN:
		fakex_buf_printf(b, "{\"error\":[],\"result\":{");
		for (size_t i = 0; i < n; i++) {
			if (i > 0)
				fakex_buf_printf(b, ",");
			kraken_one(b, &qs[i]);
		}
		fakex_buf_printf(b, "}}");
		break;
	case FAKEX_BITSTAMP:
		fakex_buf_printf(b, "{\"timestamp\":\"%lld\",\"open\":\"%s\",\"high\":\"%s\",\"low\":\"%s\",\"last\":\"%s\","
				 "\"volume\":\"1520.36412011\",\"vwap\":\"%s\",\"bid\":\"%s\",\"ask\":\"%s\",\"side\":\"0\","
				 "\"open_24\":\"%s\",\"percent_change_24\":\"0.00\"}",
				 (long long)(view->ts_ms / 1000), qs[0].slast, qs[0].sask,
				 qs[0].sbid, qs[0].slast, qs[0].slast, qs[0].sbid,
				 qs[0].sask, qs[0].slast);
		break;
	case FAKEX_OKX:
		fakex_buf_printf(b, "{\"code\":\"0\",\"msg\":\"\",\"data\":[{\"instType\":\"SPOT\",\"instId\":\"%s\",\"last\":\"%s\","
				 "\"lastSz\":\"0.0012\",\"askPx\":\"%s\",\"askSz\":\"0.75\",\"bidPx\":\"%s\",\"bidSz\":\"1.25\","
				 "\"open24h\":\"%s\",\"high24h\":\"%s\",\"low24h\":\"%s\",\"volCcy24h\":\"350123456.789\","
				 "\"vol24h\":\"15234.5678\",\"ts\":\"%lld\",\"sodUtc0\":\"%s\",\"sodUtc8\":\"%s\"}]}",
				 qs[0].m->id, qs[0].slast, qs[0].sask, qs[0].sbid,
				 qs[0].slast, qs[0].sask, qs[0].sbid,
				 (long long)view->ts_ms, qs[0].slast, qs[0].slast);
		break;
	case FAKEX_BYBIT:
		fakex_buf_printf(b, "{\"retCode\":0,\"retMsg\":\"OK\",\"result\":{\"category\":\"spot\",\"list\":[");
		for (size_t i = 0; i < n; i++) {
			if (i > 0)
				fakex_buf_printf(b, ",");
			fakex_buf_printf(b, "{\"symbol\":\"%s\",\"bid1Price\":\"%s\",\"bid1Size\":\"1.25\",\"ask1Price\":\"%s\","
					 "\"ask1Size\":\"0.75\",\"lastPrice\":\"%s\",\"prevPrice24h\":\"%s\",\"price24hPcnt\":\"0\","
					 "\"highPrice24h\":\"%s\",\"lowPrice24h\":\"%s\",\"turnover24h\":\"243765620.65899866\","
					 "\"volume24h\":\"11801.27771\",\"usdIndexPrice\":\"%s\"}",
					 qs[i].m->id, qs[i].sbid, qs[i].sask, qs[i].slast,
					 qs[i].slast, qs[i].sask, qs[i].sbid, qs[i].slast);
		}
		fakex_buf_printf(b, "]},\"retExtInfo\":{},\"time\":%lld}",
				 (long long)view->ts_ms);
		break;
	case FAKEX_GEMINI: {
		char base[16], quote[16];

		gemini_currencies(qs[0].m->id, base, quote, sizeof(base));
		fakex_buf_printf(b, "{\"bid\":\"%s\",\"ask\":\"%s\",\"last\":\"%s\",\"volume\":{\"%s\":\"41.7433\","
				 "\"%s\":\"2915143.3555\",\"timestamp\":\"%lld\"}}",
				 qs[0].sbid, qs[0].sask, qs[0].slast, base, quote,
				 (long long)view->ts_ms);
		break;
	}
	case FAKEX_KUCOIN:
		fakex_buf_printf(b, "{\"code\":\"200000\",\"data\":{\"time\":%lld,\"sequence\":\"%lld\",\"price\":\"%s\","
				 "\"size\":\"0.0015\",\"bestBid\":\"%s\",\"bestBidSize\":\"1.25\",\"bestAsk\":\"%s\","
				 "\"bestAskSize\":\"0.75\"}}",
				 (long long)view->ts_ms, (long long)(view->ts_ms / 10),
				 qs[0].slast, qs[0].sbid, qs[0].sask);
		break;
	case FAKEX_BITFINEX: {
		char bid[MK_DEC_STRLEN], ask[MK_DEC_STRLEN], last[MK_DEC_STRLEN];

		fmt_trim(qs[0].bid, bid);
		fmt_trim(qs[0].ask, ask);
		fmt_trim(qs[0].mid, last);
		/* [BID, BID_SIZE, ASK, ASK_SIZE, DAILY_CHANGE,
		 *  DAILY_CHANGE_RELATIVE, LAST_PRICE, VOLUME, HIGH, LOW] */
		fakex_buf_printf(b, "[%s,12.5,%s,7.5,0,0,%s,1520.36412011,%s,%s]",
				 bid, ask, last, ask, bid);
		break;
	}
	case FAKEX_PYTH:
		fakex_buf_printf(b, "{");
		pyth_binary(b, qs, n, view->ts_ms);
		fakex_buf_printf(b, ",\"parsed\":[");
		for (size_t i = 0; i < n && st == MK_OK; i++) {
			if (i > 0)
				fakex_buf_printf(b, ",");
			st = pyth_one(b, &qs[i], view->ts_ms);
		}
		fakex_buf_printf(b, "]}");
		break;
	case FAKEX_NVENUES:
	default:
		break;
	}
	if (st == MK_OK && b->failed)
		st = MK_ETOOBIG;
	goto out;
fail:
	st = fakex_venue_error(v, e, e == FAKEX_ERR_NO_ROUTE ? p : id,
			       view->ts_ms, 0, ans);
out:
	free(qs);
	if (st != MK_OK)
		fakex_answer_release(ans);
	return st;
}
