/*
 * routes_margin.h - the margin part of the HTTP API (DESIGN.md section 7)
 * and the JSON form of positions and evaluations:
 *
 *   POST   /v1/margin/evaluate            stateless, one position or
 *                                         {"positions":[...]} (at most
 *                                         HTTPD_MARGIN_MAX_BATCH)
 *   PUT    /v1/positions/{id}             create (201) or replace (200)  [token]
 *   GET    /v1/positions/{id}             position, evaluation and state
 *   DELETE /v1/positions/{id}             remove (200)                   [token]
 *   POST   /v1/positions/{id}/collateral  {"delta":"..."}                [token]
 *   GET    /v1/positions?symbol=&state=&limit=&cursor=
 *   GET    /v1/liquidations?since=&limit=
 *
 * The routes only speak HTTP and JSON; the registry, the store and the
 * marks live behind struct httpd_margin_ops, which the daemon's margin
 * service implements (daemon/margin_service.h), so that this folder does
 * not depend on the daemon.
 *
 * Shapes (decimals are strings, statistics JSON numbers or null):
 *   evaluation  {"symbol", "position":{canonical position}, "mark":{
 *               "source":"mark"|"request", "price", "conf", "status",
 *               "valid_for_liquidation", "sources_used", "seq",
 *               "updated_at", "volatility"}, "as_of",
 *               "liquidation_condition", "liquidation_price" (or null),
 *               "liquidation_bracket", "bankruptcy_price" (or null),
 *               the figures at the mark: "price", "notional",
 *               "unrealized_pnl", "margin_balance", "initial_margin",
 *               "maintenance_margin", "margin_ratio", "health",
 *               "effective_leverage" (each null when undefined),
 *               "bracket", "beyond_cap", "breached", "bankrupt",
 *               "buffered", "distance_pct", "distance_log", with a
 *               volatility "z", "p_liq", "p_liq_discrete", then
 *               "max_removable", "topup_*" for each target, "delta",
 *               "gamma", "exposure"; "band":{"conf", "favourable":{the
 *               same figures}, "adverse":{...}} (an edge at or below 0 is
 *               null); "sigma", "horizon_s", "max_leverage" when
 *               computed; "state", "reason", "reason_text"}. A stateless
 *               evaluation has no confirmation history: a breach at the
 *               favourable edge shows "breach_unconfirmed" ("confirming")
 *               unless the instrument confirms on one mark.
 *   list        {"evaluations":[evaluation, ...]} in request order.
 *   position    an evaluation at the current mark (absent with
 *               "mark":null when the instrument has none) plus "id",
 *               "state"/"reason" as tracked, "last_valid_state" (null
 *               before any decision), "held", "breach_marks",
 *               "breach_since", "breach_ms".
 *   positions   {"positions":[position, ...], "count", "next_cursor"
 *               (an opaque string, null on the last page)}.
 *   events      {"events":[{"seq", "id", "symbol", "from", "to",
 *               "last_valid_state", "reason", "reason_text", "mark":{
 *               "price", "conf", "status", "valid_for_liquidation",
 *               "sources_used", "seq"}, "at", "time_ms", "breach_marks",
 *               "breach_ms", "flags"}], "next_since", "more"}.
 *   The same event objects are published on the SSE stream as
 *   "position" events.
 *
 * Statuses: 400 with "field" naming the offending input (a JSON path such
 * as "brackets[1].mmr" or "positions[2].size", or a query parameter);
 * 401/403 for writes without a valid token; 404 unknown position; 409 a
 * withdrawal beyond the maximum removable, or one asked while the mark is
 * not valid for liquidation, or too many distinct bracket tables; 413/415
 * from the server; 503 when the store cannot commit (full disk, read-only
 * database) or no mark exists yet for an evaluation without "price".
 *
 * Thread safety: the handlers run on MHD's thread; the ops are called
 * from there and must be safe against the daemon's other threads.
 * The codec functions are reentrant.
 */
#ifndef MARKD_HTTPD_ROUTES_MARGIN_H
#define MARKD_HTTPD_ROUTES_MARGIN_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "aggregator/dec.h"
#include "aggregator/status.h"
#include "httpd/router.h"
#include "margin/math.h"
#include "margin/position.h"
#include "margin/registry.h"
#include "margin/state.h"
#include "margin/store.h"

/* Most positions in one evaluate request; most items in one page. */
#define HTTPD_MARGIN_MAX_BATCH 1000
#define HTTPD_MARGIN_MAX_PAGE 1000
#define HTTPD_MARGIN_DEFAULT_PAGE 100
/* Horizon used for probabilities when a volatility is known and the
 * request names none: one day. */
#define HTTPD_MARGIN_DEFAULT_HORIZON_S 86400.0
/* Longest "field" path kept, with the NUL. */
#define HTTPD_MARGIN_FIELD_MAX 96

/* An instrument as positions on it are read: the defaults and parameters. */
struct httpd_margin_instrument {
	size_t index;                           /* the registry's */
	char symbol[MARGIN_REGISTRY_MAX_SYMBOL];
	enum margin_kind kind;                  /* the contract of its
						 * default brackets */
	bool has_contract_size;                 /* inverse default */
	struct mk_dec contract_size;
	const struct margin_brackets *brackets; /* default table or NULL;
						 * borrowed from the ops'
						 * owner, lives as long as it */
	struct margin_params params;
};

/* The mark an evaluation uses. */
struct httpd_margin_mark {
	struct margin_tick tick;        /* price, conf, valid, status, ... */
	const char *status;             /* "ok", "stale", ... (static) */
	bool has_volatility;
	double volatility;              /* annualized sigma */
};

/* A position as read from JSON, plus the evaluate-only options. */
struct httpd_margin_input {
	bool has_id;
	char id[MARGIN_REGISTRY_MAX_ID + 1];
	struct httpd_margin_instrument inst;
	struct margin_position pos;     /* pos.brackets points to inst's
					 * table or to `brackets` below: do
					 * not copy the struct around */
	bool custom_brackets;
	struct margin_brackets brackets;
	/* evaluate only */
	bool has_price;
	struct mk_dec price;
	bool has_conf;
	struct mk_dec conf;
	bool has_horizon;
	double horizon_s;
	bool has_sigma;
	double sigma;
	struct margin_targets targets;
};

/* Which keys a parse accepts besides the position's own. */
enum httpd_margin_mode {
	HTTPD_MARGIN_STORED = 0,  /* the store's canonical body */
	HTTPD_MARGIN_PUT,         /* also "id" */
	HTTPD_MARGIN_EVALUATE,    /* also "id", "price", "conf", "horizon_s",
				   * "sigma", "targets" */
};

/* Finds an instrument by symbol: true and *out filled, false when
 * unknown. */
typedef bool (*httpd_margin_lookup_fn)(void *arg, const char *symbol,
				       struct httpd_margin_instrument *out);

/*
 * Reads one position object. Keys: "symbol" (required, a known
 * instrument), "kind" ("linear"/"inverse"; default the instrument's),
 * "side" ("long"/"short", required), "size" (> 0), "entry_price" (> 0),
 * "collateral" (>= 0), "contract_size" (> 0; inverse only, default the
 * instrument's), "leverage" (> 0, optional), "brackets" (optional: 1 to
 * 32 objects {"floor","cap","mmr","cum"}; required when the instrument
 * has none or its are for the other kind); decimals as strings or JSON
 * numbers. Any other key is refused.
 * Errors: MK_EINVAL with err->msg saying what is wrong and field
 * (fcap bytes, may be NULL) receiving the offending key's path with
 * `prefix` before it (e.g. "positions[3]."; may be NULL).
 */
enum mk_status httpd_margin_parse(const json_t *obj, enum httpd_margin_mode mode,
				  httpd_margin_lookup_fn lookup, void *arg,
				  const char *prefix,
				  struct httpd_margin_input *out, char *field,
				  size_t fcap, struct mk_err *err);

/*
 * Reads a POST /v1/positions/{id}/collateral body: {"delta": D}, D a
 * decimal (a string or a JSON number) that is not zero (> 0 adds, < 0
 * withdraws). Any other key is refused. On success *delta is D.
 * Errors: MK_EINVAL (or MK_ENOMEM) with err->msg saying what is wrong and
 * field (fcap bytes, may be NULL) receiving the offending key ("delta",
 * an unknown key, or "" when the body is not a JSON object). Pure: no
 * I/O, reentrant.
 */
enum mk_status httpd_margin_parse_collateral(const json_t *body,
					     struct mk_dec *delta, char *field,
					     size_t fcap, struct mk_err *err);

/*
 * The canonical JSON of a position (what the store keeps and what the API
 * shows under "position"): symbol, kind, side, size, entry_price,
 * collateral, contract_size (inverse), leverage (when given), brackets
 * (only custom ones). A new reference, or NULL when out of memory.
 */
json_t *httpd_margin_position_json(const char *symbol,
				   const struct margin_position *p,
				   bool custom_brackets);

/* "2024-06-11T08:00:00.000Z" for Unix ms into buf (>= 32 bytes); "" when
 * out of range. Returns buf. */
const char *httpd_margin_time(int64_t ms, char *buf, size_t cap);

/* What the routes need from the margin service. Every function may be
 * called from MHD's thread while the daemon's other threads run. */
struct httpd_margin_ops {
	httpd_margin_lookup_fn instrument;
	/* The current mark of instrument index inst: false when it has
	 * none (never had a price). */
	bool (*mark)(void *arg, size_t inst, struct httpd_margin_mark *out);
	/* Commits and registers the position (body: its canonical JSON).
	 * Returns only once committed. MK_EIO: store failure (503);
	 * MK_ETOOBIG: no room (409); MK_ENOMEM. */
	enum mk_status (*put)(void *arg, const char *id,
			      const struct httpd_margin_input *in,
			      const char *body, size_t len, bool *created,
			      struct mk_err *err);
	/* A view of position id (release it); MK_ENOTFOUND. */
	enum mk_status (*get)(void *arg, const char *id,
			      struct margin_registry_view *out);
	/* Removes position id (committed first). MK_ENOTFOUND, MK_EIO. */
	enum mk_status (*remove)(void *arg, const char *id,
				 struct mk_err *err);
	/* Adds delta (> 0) or withdraws -delta (< 0) and commits. A
	 * withdrawal beyond the most removable at the current mark, or while
	 * the mark is not valid for liquidation: MK_ESTATE (409), with
	 * *max_removable set when known. MK_ENOTFOUND, MK_EINVAL (the new
	 * collateral does not fit), MK_EIO. */
	enum mk_status (*collateral)(void *arg, const char *id,
				     struct mk_dec delta,
				     bool *has_max_removable,
				     struct mk_dec *max_removable,
				     struct mk_err *err);
	/* margin_registry_list under the service's lock. */
	size_t (*list)(void *arg, uint32_t *cursor,
		       const struct margin_registry_filter *f,
		       struct margin_registry_view *out, size_t cap,
		       bool *end);
	/* The events with seq > since, at most limit, ascending. MK_EIO. */
	enum mk_status (*events)(void *arg, int64_t since, size_t limit,
				 margin_store_event_fn fn, void *ctx,
				 struct mk_err *err);
};

/* The handlers' argument: the ops and their argument. */
struct httpd_margin_routes {
	const struct httpd_margin_ops *ops;
	void *arg;
	/* No bearer tokens are configured: the write routes are added
	 * without HTTPD_ROUTE_AUTH (so the server starts without tokens)
	 * and answer 403 "write endpoints are disabled". */
	bool writes_disabled;
};

/*
 * Adds the routes above to r. mr (and what it points to) is borrowed and
 * must outlive the server. Errors as httpd_router_add.
 */
enum mk_status httpd_routes_margin(struct httpd_router *r,
				   const struct httpd_margin_routes *mr,
				   struct mk_err *err);

/* Something that adds a route the way httpd_router_add does (the daemon's
 * md_app_add_route behind a one-line wrapper). */
typedef enum mk_status (*httpd_route_add_fn)(void *ctx,
					     enum httpd_method method,
					     const char *pattern,
					     unsigned flags,
					     httpd_handler_fn fn, void *arg,
					     struct mk_err *err);

/* The same routes through add(ctx, ...), stopping at the first error. */
enum mk_status httpd_routes_margin_each(const struct httpd_margin_routes *mr,
					httpd_route_add_fn add, void *ctx,
					struct mk_err *err);

#endif
