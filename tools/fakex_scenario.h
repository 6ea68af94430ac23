/*
 * fakex_scenario.h - markd-fakex's scenario: what it listens on, which
 * venues and markets it serves, where their prices come from (history CSVs
 * or seeded random walks), the simulated clock, and the fault schedule.
 * The file format is documented in doc/fakex.md.
 *
 * Prices are a pure function of (scenario, simulated time): the same
 * scenario gives the same price at the same simulated millisecond, in any
 * process, so tests check them without sleeping. Only the server reads a
 * clock; it turns real elapsed time into simulated time with
 * fakex_sim_ms().
 *
 * Thread safety: a loaded scenario is immutable; any thread may read it.
 * Ownership: fakex_scenario_load/_parse return a new scenario released with
 * fakex_scenario_destroy; markets own their history series and walks.
 */
#ifndef MARKD_TOOLS_FAKEX_SCENARIO_H
#define MARKD_TOOLS_FAKEX_SCENARIO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "aggregator/dec.h"
#include "aggregator/status.h"
#include "tools/history.h"

/* The venues fakex can imitate, in the order of DESIGN.md section 4. */
enum fakex_venue {
	FAKEX_BINANCE,
	FAKEX_COINBASE,
	FAKEX_KRAKEN,
	FAKEX_BITSTAMP,
	FAKEX_OKX,
	FAKEX_BYBIT,
	FAKEX_GEMINI,
	FAKEX_KUCOIN,
	FAKEX_BITFINEX,
	FAKEX_PYTH,
	FAKEX_NVENUES
};

enum fakex_fault_kind {
	FAKEX_FAULT_NONE,
	FAKEX_FAULT_STALE,      /* price and timestamp frozen at the start */
	FAKEX_FAULT_WICK,       /* the next `count` answers are `bps` off */
	FAKEX_FAULT_DRIFT,      /* off by bps_per_min x minutes, up to max_bps */
	FAKEX_FAULT_GARBAGE,    /* HTTP 200 with a body that is not JSON */
	FAKEX_FAULT_RATELIMIT,  /* HTTP 429 + Retry-After + the venue's body */
	FAKEX_FAULT_ERROR,      /* HTTP 500 (or `status`) + the venue's body */
	FAKEX_FAULT_SLOW,       /* the normal answer, delay_ms late */
	FAKEX_FAULT_DOWN,       /* connection refused (own port) or closed */
	FAKEX_FAULT_TRUNCATED,  /* the normal body cut in the middle */
	FAKEX_FAULT_NKINDS
};

#define FAKEX_ID_MAX 80          /* a market id (a Pyth feed id is 64 hex) */
#define FAKEX_GARBAGE_MAX 256    /* a garbage fault's body */
#define FAKEX_MAX_MARKETS 64     /* per venue */
#define FAKEX_MAX_FAULTS 256     /* scheduled faults */
#define FAKEX_MAX_WALK 4000000   /* points of one random walk */

/* A fault's parameters; each kind reads its own, the rest keep defaults. */
struct fakex_fault_params {
	int32_t bps;             /* wick: offset (-2000); drift: unused */
	uint32_t count;          /* wick: answers that are off (1) */
	int32_t bps_per_min;     /* drift: rate, real minutes (100) */
	uint32_t max_bps;        /* drift: largest offset (2000) */
	uint32_t retry_after_s;  /* ratelimit: Retry-After (2) */
	uint32_t status;         /* error: HTTP status, 500..599 (500) */
	uint32_t delay_ms;       /* slow: delay before the answer (5000) */
	bool transfer;           /* truncated: cut the transfer, not the body */
	char body[FAKEX_GARBAGE_MAX]; /* garbage: the body sent */
};

struct fakex_fault_spec {
	enum fakex_venue venue;
	enum fakex_fault_kind kind;
	int64_t at_ms;           /* real ms after start (schedule only) */
	int64_t for_ms;          /* duration; 0 = until cleared (admin only) */
	int64_t every_ms;        /* repeat period; 0 = once (schedule only) */
	struct fakex_fault_params params;
};

/* Where a market's prices come from: a history CSV or a random walk. */
struct fakex_market {
	char id[FAKEX_ID_MAX];   /* the id as requested (Pyth: lower-case hex) */
	char key[FAKEX_ID_MAX];  /* Kraken: the result key ("XXBTZUSD") */
	int scale;               /* fraction digits of its prices */
	uint32_t spread_bps;     /* ask - bid, in bps of the mid */
	int expo;                /* Pyth: exponent of price and conf (-8) */
	struct history_series *csv;  /* owned; NULL for a walk */
	struct mk_dec *walk;     /* owned; nwalk points, walk_step_ms apart */
	size_t nwalk;
	int64_t walk_step_ms;
	struct mk_dec walk_start;   /* walk parameters, as configured */
	uint64_t walk_seed;
	int64_t walk_sigma_cbps;    /* sigma per step, in 1/100 bps */
};

struct fakex_venue_cfg {
	bool enabled;
	int port;                /* own port (0 = ephemeral), -1 = none */
	struct fakex_market *markets;
	size_t nmarkets;
};

struct fakex_scenario {
	char listen_addr[64];    /* IPv4 literal, "127.0.0.1" */
	int port;                /* 0..65535 (0 = ephemeral) */
	int64_t speed_milli;     /* simulated ms per 1000 real ms */
	bool loop;
	int64_t start_ms;        /* simulated time at real start */
	int64_t end_ms;          /* end of the simulated window (> start) */
	struct fakex_venue_cfg venues[FAKEX_NVENUES];
	struct fakex_fault_spec *faults;
	size_t nfaults;
};

/* Lower-case venue name ("kraken"); NULL for an invalid value. */
const char *fakex_venue_name(enum fakex_venue v);
/* The venue named `name` (exact, lower-case); false when unknown. */
bool fakex_venue_from_name(const char *name, size_t len, enum fakex_venue *out);
/* Fault kind name ("ratelimit"), and back. */
const char *fakex_fault_name(enum fakex_fault_kind k);
bool fakex_fault_from_name(const char *name, enum fakex_fault_kind *out);

/* The documented defaults of every fault parameter. */
void fakex_fault_params_default(struct fakex_fault_params *p);

/*
 * Reads fault parameters from a JSON object (a `json_t *`, kept opaque so
 * this header does not need jansson) into p, which holds defaults or
 * earlier values. Only the keys of `kind` are accepted; an unknown key or a
 * bad value is MK_ECONFIG with err->msg naming `where`.key.
 */
enum mk_status fakex_fault_params_parse(enum fakex_fault_kind kind,
					const void *json_obj, const char *where,
					struct fakex_fault_params *p,
					struct mk_err *err);

/*
 * Parses scenario JSON text buf[0..len). CSV paths are relative to `dir`
 * (the scenario file's folder; NULL = the current directory). Every error
 * is MK_ECONFIG (or the CSV reader's status) with err->msg naming the JSON
 * path ("venues.kraken.markets.XBTUSD.spread_bps: ...") or the CSV's
 * file:line:column. On success *out is a new scenario.
 */
enum mk_status fakex_scenario_parse(const char *buf, size_t len,
				    const char *dir,
				    struct fakex_scenario **out,
				    struct mk_err *err);

/* Reads the file and parses it, with CSV paths relative to its folder. */
enum mk_status fakex_scenario_load(const char *path,
				   struct fakex_scenario **out,
				   struct mk_err *err);

/* Releases a scenario; NULL is accepted. */
void fakex_scenario_destroy(struct fakex_scenario *sc);

/*
 * Simulated time (Unix ms) after elapsed_ms real milliseconds:
 * start + elapsed x speed, wrapped into [start, end) when the scenario
 * loops. Pure.
 */
int64_t fakex_sim_ms(const struct fakex_scenario *sc, int64_t elapsed_ms);

/* The market `id` of venue v (Pyth ids with or without "0x", any case;
 * Kraken by pair or by result key); NULL when it is not served. */
const struct fakex_market *fakex_market_find(const struct fakex_scenario *sc,
					     enum fakex_venue v,
					     const char *id);

/*
 * The market's mid price at simulated time sim_ms, at the market's scale:
 * a CSV market replays its bars (history_price_at); a walk holds each
 * point for walk_step_ms, counted from the scenario's start (the last
 * point after the walk's end, the first before its start). Pure.
 */
enum mk_status fakex_market_mid(const struct fakex_scenario *sc,
				const struct fakex_market *m, int64_t sim_ms,
				struct mk_dec *out);

/*
 * bid and ask around `mid` for the market's spread: mid -/+ half the
 * spread, rounded half-even to the market's scale, at least one tick each
 * way when spread_bps > 0. Pure.
 */
enum mk_status fakex_market_book(const struct fakex_market *m,
				 struct mk_dec mid, struct mk_dec *bid,
				 struct mk_dec *ask);

/* mid x (1 + ppm / 10^6), rounded half-even to `scale`, never below one
 * tick. Used by the wick and drift faults. Pure. */
enum mk_status fakex_shift_ppm(struct mk_dec mid, int64_t ppm, int scale,
			       struct mk_dec *out);

#endif
