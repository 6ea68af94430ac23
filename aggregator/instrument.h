/*
 * instrument.h - what the aggregator needs to know about an instrument:
 * its filter parameters (DESIGN.md section 5) and its legs.
 *
 * The config loader fills these from JSON; the aggregator copies what it
 * keeps, so specs are owned by whoever built them. Plain data, no locking.
 */
#ifndef MARKD_AGGREGATOR_INSTRUMENT_H
#define MARKD_AGGREGATOR_INSTRUMENT_H

#include <stddef.h>
#include <stdint.h>

#include "aggregator/dec.h"

#define AGG_SYMBOL_MAX 32   /* "BTC-USD", with the NUL */
#define AGG_SOURCE_MAX 32   /* a source's configured name, with the NUL */
#define AGG_MARKET_MAX 80   /* a venue's market id (a Pyth feed id is 66) */

/* Filter and statistics parameters; every one has a default
 * (agg_params_default) and can be set per instrument. */
struct agg_params {
	int scale;                       /* fraction digits of the mark (8) */
	uint32_t min_sources;            /* quorum: distinct sources used (3) */
	int64_t max_age_ms;              /* a quote older than this is stale (10000) */
	int64_t max_skew_ms;             /* exchange time may lead ours by this (2000) */
	uint32_t max_deviation_bps;      /* outlier bound around the median (500) */
	uint32_t max_conf_bps;           /* conf/price above this: too_uncertain (200) */
	uint32_t max_spread_bps;         /* (ask-bid)/mid above this: bad_spread (1000) */
	uint32_t too_volatile_ratio;     /* max(P,TWAP)/min(P,TWAP) above: too_volatile (5) */
	uint32_t max_twap_deviation_bps; /* |P-TWAP|/P above this: too_volatile (2000) */
	int64_t ema_window_ms;           /* EMA time constant (60000) */
	int64_t twap_window_ms;          /* TWAP window (300000) */
	int64_t vol_halflife_ms;         /* EWMA volatility half-life (3600000) */
};

struct agg_leg_spec {
	char source[AGG_SOURCE_MAX];  /* configured source name */
	char market[AGG_MARKET_MAX];  /* the venue's market id */
	uint32_t weight;              /* in 1/10000 units; > 0 */
	/* Index (in the same spec array) of the instrument that converts this
	 * leg's quote currency into the instrument's quote currency, e.g. the
	 * USDT-USD instrument for a BTC/USDT leg of BTC-USD; -1 when the leg is
	 * quoted in the instrument's own quote currency. */
	int convert_via;
};

struct agg_instrument_spec {
	char symbol[AGG_SYMBOL_MAX];
	struct agg_params params;
	size_t nlegs;
	struct agg_leg_spec *legs;    /* nlegs entries, owned by the spec's builder */
};

/* Fills p with the documented defaults. */
void agg_params_default(struct agg_params *p);

#endif
