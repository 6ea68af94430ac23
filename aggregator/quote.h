/*
 * quote.h - one venue's quote for one market, as an adapter produces it
 * and as the aggregator consumes it.
 *
 * Plain value type; no ownership, no thread-safety concerns.
 */
#ifndef MARKD_AGGREGATOR_QUOTE_H
#define MARKD_AGGREGATOR_QUOTE_H

#include <stdbool.h>
#include <stdint.h>

#include "aggregator/dec.h"

struct agg_quote {
	struct mk_dec bid;       /* best bid, when has_bid */
	struct mk_dec ask;       /* best ask, when has_ask */
	struct mk_dec last;      /* last trade or the oracle price, when has_last */
	struct mk_dec conf;      /* the venue's own uncertainty (Pyth), when has_conf */
	bool has_bid, has_ask, has_last, has_conf;
	int64_t exchange_ts_ms;  /* the venue's own timestamp (Unix ms); 0 = none */
};

#endif
