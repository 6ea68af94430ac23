/*
 * config.h - markd's JSON configuration: loading, validating, and the
 * immutable struct cfg the rest of the daemon reads.
 *
 * cfg_load() reads one JSON file, checks every key against the reference
 * below and either returns a complete struct cfg or reports every problem
 * it found (up to CFG_MAX_ERRORS), each naming its JSON path, e.g.
 *   instruments[2].legs[0].source: unknown source "bnb"
 * Nothing is half-loaded: on any error no struct cfg is returned.
 *
 * Thread safety: loading is reentrant. A loaded struct cfg is never
 * modified, so any number of threads may read it at once; whoever loaded
 * it frees it with cfg_free() once no thread reads it any more (a reload
 * loads a new one and swaps the pointer).
 *
 * Ownership: the struct cfg owns everything it points to, including one
 * reference to each source's "options" object. The adapters it points to
 * are static tables of feeds/.
 *
 * ---------------------------------------------------------------------
 * Key reference (doc/config.md says the same with examples)
 * ---------------------------------------------------------------------
 * Unknown keys are errors. "decimal" means a JSON string holding a plain
 * decimal ("0.004") or a JSON number (read through its shortest decimal
 * form); "integer" means a JSON integer (no fraction, no string).
 *
 * Top level (an object):
 *   listen        string "ADDR:PORT", ADDR a numeric IPv4 address or a
 *                 bracketed IPv6 one ("[::1]:8080"), PORT 0-65535 (0 picks
 *                 a free port).                     default "127.0.0.1:8080"
 *   token_file    string, path of the bearer-token file for the write
 *                 endpoints; without it they are refused.   default none
 *   database      string, path of the SQLite position store. "markd.db"
 *   log           object:
 *     level       "debug" | "info" | "warn" | "error"        default "info"
 *     format      "kv" (key=value) | "json"                  default "kv"
 *   http          object:
 *     max_connections         integer 1-1000000               default 1024
 *     max_connections_per_ip  integer 1-max_connections       default 64
 *                             (lowered to max_connections when not given)
 *     connection_timeout_s    integer 1-3600                  default 10
 *     max_body_bytes          integer 1024-16777216           default 65536
 *     connection_memory_bytes integer 4096-1048576            default 8192
 *                             (per-connection buffer: request line and
 *                             headers must fit, else 431)
 *   sources       array of source objects, 1-4096 of them.     required
 *   defaults      object of filter parameters (the instrument keys marked
 *                 [p] below) applied to every instrument before its own
 *                 keys.                                        default {}
 *   instruments   array of instrument objects, at least one.   required
 *
 * Source (an element of "sources"):
 *   name          string of [A-Za-z0-9_.-], 1-31 chars, unique. required
 *   adapter       a known adapter: binance, coinbase, kraken, bitstamp,
 *                 okx, bybit, gemini, kucoin, bitfinex, pyth, json. required
 *   base_url      "http://HOST[:PORT][/PATH]" or "https://...", at most 512
 *                 chars, no query or fragment; trailing '/' dropped. required
 *   interval_ms   integer 50-3600000, time between polls.     default 1000
 *   timeout_ms    integer 1-60000, whole-request timeout.     default 2000
 *   weight        decimal > 0, at most 4 fraction digits, at most 100000;
 *                 the default weight of this source's legs.    default "1"
 *   max_body_bytes integer 1024-67108864, response body cap. default 262144
 *   enabled       true | false; a disabled source is not polled and no leg
 *                 may name it.                                 default true
 *   options       object, adapter-specific, checked by the adapter: only
 *                 the json adapter takes options (and needs them), see
 *                 feeds/adapter.h.                           default none
 *
 * Instrument (an element of "instruments"):
 *   symbol        "BASE-QUOTE", each part 1-12 of [A-Z0-9], unique. required
 *   legs          array of 1-64 leg objects.                   required
 *   margin        object, see below.                   default all defaults
 *   [p] scale                  integer 0-18, fraction digits of the mark  8
 *   [p] min_sources            integer 1-64, at most the distinct sources 3
 *   [p] max_age_ms             integer 1-86400000                     10000
 *   [p] max_skew_ms            integer 0-3600000                       2000
 *   [p] max_deviation_bps      integer 1-10000                          500
 *   [p] max_conf_bps           integer 1-10000                          200
 *   [p] max_spread_bps         integer 1-10000                         1000
 *   [p] too_volatile_ratio     integer 2-1000                             5
 *   [p] max_twap_deviation_bps integer 1-100000                        2000
 *   [p] ema_window_ms          integer 1000-2592000000                60000
 *   [p] twap_window_ms         integer 1000-2592000000               300000
 *   [p] vol_halflife_ms        integer 1000-2592000000              3600000
 *   (aggregator/instrument.h says what each parameter does.)
 *
 * Leg (an element of an instrument's "legs"):
 *   source        name of an enabled source.                   required
 *   market        the venue's market id as the source's adapter takes it
 *                 (BTCUSDT, BTC-USD, XBTUSD, btcusd, tBTCUSD, a Pyth feed
 *                 id), checked by the adapter; at most 79 bytes;
 *                 (source, market) unique per instrument.      required
 *   weight        decimal as for sources.       default the source's weight
 *   quote         currency the market is quoted in, [A-Z0-9]{1,12}, when it
 *                 differs from the instrument's quote: the leg is converted
 *                 through the instrument "<quote>-<instrument quote>",
 *                 which must exist; conversions may not form a cycle.
 *                                             default the instrument's quote
 *
 * Margin (an instrument's "margin"):
 *   brackets      array of 1-64 objects {"floor", "cap", "mmr", "cum"}, all
 *                 decimals: floors start at 0 and ascend, each cap is the
 *                 next floor, cap > floor, 0 <= mmr < 1, mmr never
 *                 decreases; cum is optional and derived as cum_1 = 0,
 *                 cum_k = cum_{k-1} + floor_k * (mmr_k - mmr_{k-1}); a given
 *                 cum must equal that value. Notionals are in the quote
 *                 currency (linear) or in the base coin (inverse).
 *                                    default none (positions bring their own)
 *   confirm_count integer 1-1000, consecutive valid marks.     default 3
 *   confirm_ms    integer 0-86400000, breach duration.         default 3000
 *   safe_buffer_bps integer 0-10000, buffer of the safe state. default 200
 *   contract      "linear" | "inverse"                    default "linear"
 *   contract_size decimal > 0, face value of one contract in the quote
 *                 currency; required for inverse, refused for linear.
 */
#ifndef MARKD_DAEMON_CFG_H
#define MARKD_DAEMON_CFG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include <jansson.h>

#include "aggregator/dec.h"
#include "aggregator/instrument.h"
#include "aggregator/status.h"

struct feed_adapter;

#define CFG_MAX_ERRORS 64            /* errors kept by one load */
#define CFG_PATH_MAX 160             /* longest JSON path kept, with NUL */
#define CFG_MSG_MAX 256              /* longest message kept, with NUL */
#define CFG_FILE_MAX (16u << 20)     /* largest config file read, bytes */
#define CFG_CCY_MAX 13               /* a currency code, with the NUL */
#define CFG_HOST_MAX 46              /* INET6_ADDRSTRLEN */
#define CFG_MAX_LEGS 64              /* legs per instrument */
#define CFG_MAX_BRACKETS 64          /* margin brackets per instrument */
#define CFG_WEIGHT_ONE 10000u        /* weights are in 1/10000 units */

/* One problem found while loading. */
struct cfg_error {
	char path[CFG_PATH_MAX];     /* JSON path; "" for file-level errors */
	char msg[CFG_MSG_MAX];       /* what is wrong, without the path */
	int line, column;            /* of a JSON syntax error; else 0 */
};

/* Errors of one load, caller-allocated; filled in the order found. */
struct cfg_errors {
	size_t count;                /* entries in e[] */
	size_t total;                /* errors found, also those not kept */
	struct cfg_error e[CFG_MAX_ERRORS];
};

enum cfg_log_level {
	CFG_LOG_DEBUG, CFG_LOG_INFO, CFG_LOG_WARN, CFG_LOG_ERROR,
};

enum cfg_log_format {
	CFG_LOG_KV, CFG_LOG_JSON,
};

enum cfg_contract {
	CFG_LINEAR, CFG_INVERSE,
};

struct cfg_http {
	uint32_t max_connections;
	uint32_t max_connections_per_ip;
	uint32_t connection_timeout_s;
	size_t max_body_bytes;
	size_t connection_memory_bytes;
};

struct cfg_source {
	char name[AGG_SOURCE_MAX];
	const struct feed_adapter *adapter;  /* static table of feeds/ */
	char *base_url;              /* without a trailing '/' */
	int64_t interval_ms;
	int64_t timeout_ms;
	uint32_t weight;             /* in 1/10000 units, > 0 */
	size_t max_body_bytes;
	bool enabled;
	json_t *options;             /* the "options" object, NULL when absent;
				      * read-only (feed_adapter_opts_create) */
};

/* A maintenance-margin bracket [floor, cap). */
struct cfg_bracket {
	struct mk_dec floor, cap, mmr, cum;
};

struct cfg_margin {
	size_t nbrackets;            /* 0: positions must bring brackets */
	struct cfg_bracket *brackets;
	uint32_t confirm_count;      /* K consecutive valid marks */
	int64_t confirm_ms;          /* and T milliseconds */
	uint32_t safe_buffer_bps;
	enum cfg_contract contract;
	struct mk_dec contract_size; /* inverse only; zero for linear */
};

/* What the config knows about a leg beyond its struct agg_leg_spec. */
struct cfg_leg {
	size_t source;               /* index into cfg->sources */
	char quote[CFG_CCY_MAX];     /* currency the market is quoted in */
};

struct cfg_instrument {
	char base[CFG_CCY_MAX];      /* "BTC" of "BTC-USD" */
	char quote[CFG_CCY_MAX];     /* "USD" of "BTC-USD" */
	struct cfg_leg *legs;        /* specs[i].nlegs entries */
	struct cfg_margin margin;
};

struct cfg {
	char listen_host[CFG_HOST_MAX];  /* numeric, without brackets */
	uint16_t listen_port;
	struct sockaddr_storage listen_addr;  /* host and port, ready to bind */
	socklen_t listen_addrlen;
	char *token_file;            /* NULL when not configured */
	char *database;
	enum cfg_log_level log_level;
	enum cfg_log_format log_format;
	struct cfg_http http;

	size_t nsources;
	struct cfg_source *sources;

	/* specs[i] and instruments[i] describe the same instrument, in file
	 * order; specs is what the aggregator takes (legs' convert_via index
	 * this array, and the conversion graph has no cycle). */
	size_t ninstruments;
	struct agg_instrument_spec *specs;
	struct cfg_instrument *instruments;
};

/*
 * Loads and validates the JSON file at path (at most CFG_FILE_MAX bytes,
 * duplicate object keys refused). On success *out receives a new struct
 * cfg (free it with cfg_free) and errs, when not NULL, has count 0.
 * On failure *out is NULL and errs (when not NULL) holds the errors:
 *   MK_EIO      the file cannot be read (message from the system);
 *   MK_ETOOBIG  it is larger than CFG_FILE_MAX;
 *   MK_EPARSE   it is not JSON (line and column set);
 *   MK_ECONFIG  it is JSON but breaks the rules above (every error kept,
 *               up to CFG_MAX_ERRORS; errs->total counts them all);
 *   MK_ENOMEM   out of memory.
 */
enum mk_status cfg_load(const char *path, struct cfg **out,
			struct cfg_errors *errs);

/* As cfg_load, from the bytes buf[0..len) (not NUL-terminated). */
enum mk_status cfg_load_buffer(const void *buf, size_t len, struct cfg **out,
			       struct cfg_errors *errs);

/* Releases cfg and all it owns. NULL is accepted. */
void cfg_free(struct cfg *cfg);

/* Index of the source / instrument with that name / symbol, or -1. Linear
 * in the number of sources / instruments. */
int cfg_source_index(const struct cfg *cfg, const char *name);
int cfg_instrument_index(const struct cfg *cfg, const char *symbol);

/* Writes a one-line summary ("4 instruments, 11 sources (11 enabled),
 * 32 legs, listen 127.0.0.1:8080, database markd.db") into buf, always
 * NUL-terminated when cap > 0. Returns what snprintf returns. */
int cfg_summary(const struct cfg *cfg, char *buf, size_t cap);

/* Names of the enum values, as written in the config file. */
const char *cfg_log_level_name(enum cfg_log_level level);
const char *cfg_log_format_name(enum cfg_log_format format);
const char *cfg_contract_name(enum cfg_contract contract);

#endif
