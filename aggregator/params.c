#include "config.h"

#include "aggregator/instrument.h"

void
agg_params_default(struct agg_params *p)
{
	p->scale = 8;
	p->min_sources = 3;
	p->max_age_ms = 10000;
	p->max_skew_ms = 2000;
	p->max_deviation_bps = 500;
	p->max_conf_bps = 200;
	p->max_spread_bps = 1000;
	p->too_volatile_ratio = 5;
	p->max_twap_deviation_bps = 2000;
	p->ema_window_ms = 60000;
	p->twap_window_ms = 300000;
	p->vol_halflife_ms = 3600000;
}
