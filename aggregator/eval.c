/*
 * eval.c - evaluation of one instrument (DESIGN.md section 5, steps 1-7):
 * per-leg price and uncertainty, conversion, exclusions, outliers, quorum,
 * the weighted median of votes, statistics and validity.
 */
#include "config.h"

#include "aggregator/book_int.h"

#include <assert.h>
#include <string.h>

#define EXCL(r) (1u << (unsigned)(r))

static bool
scale_ok(struct mk_dec v)
{
	return v.scale >= 0 && v.scale <= MK_DEC_MAX_SCALE;
}

/* v rounded to `scale` with `mode` into *out; false when it does not fit. */
static bool
to_scale(struct mk_dec v, int scale, enum mk_round mode, int64_t *out)
{
	struct mk_dec r;

	if (mk_dec_rescale(v, scale, mode, &r) != MK_OK)
		return false;
	*out = r.m;
	return true;
}

/* a * 10000 > bps * b, exactly; assumes |a|, |b| < 2^65. */
static bool
above_bps(agg_i128 a, agg_i128 b, uint32_t bps)
{
	return a * 10000 > b * (agg_i128)bps;
}

/*
 * Step 1, own currency: price = mid of bid/ask when both are present, else
 * last; uncertainty = half the spread (rounded up), or the venue's own
 * conf when larger, at least one unit of the scale. Exclusion bits for a
 * non-positive price, an absurd spread or values that do not fit.
 */
static void
leg_price(const struct agg_inst *in, const struct agg_quote *q,
	  struct agg_leg_eval *ev)
{
	int s = in->p.scale;
	int64_t half = 0, c;

	if (q->has_bid && q->has_ask) {
		struct mk_dec sum, spread, mid, hs;

		if (!scale_ok(q->bid) || !scale_ok(q->ask)) {
			ev->excl |= EXCL(AGG_EXCL_OUT_OF_RANGE);
			return;
		}
		if (!mk_dec_is_pos(q->bid) || !mk_dec_is_pos(q->ask)) {
			ev->excl |= EXCL(AGG_EXCL_NON_POSITIVE);
			return;
		}
		/* sum and spread both have the scale max(bid, ask), so their
		 * mantissas compare directly; each fits in 64 bits or the
		 * operation fails. */
		if (mk_dec_add(q->bid, q->ask, &sum) != MK_OK ||
		    mk_dec_sub(q->ask, q->bid, &spread) != MK_OK ||
		    mk_dec_div(sum, mk_dec_from_int(2), s, MK_ROUND_HALF_EVEN,
			       &mid) != MK_OK) {
			ev->excl |= EXCL(AGG_EXCL_OUT_OF_RANGE);
			return;
		}
		ev->has_raw = true;
		ev->raw = mid.m;
		/* (ask - bid) / mid > bps <=> 2 (ask - bid) > bps (bid + ask) */
		if (mk_dec_is_neg(spread) ||
		    above_bps(2 * (agg_i128)spread.m, sum.m,
			      in->p.max_spread_bps))
			ev->excl |= EXCL(AGG_EXCL_BAD_SPREAD);
		if (!mk_dec_is_neg(spread)) {
			if (mk_dec_div(spread, mk_dec_from_int(2), s,
				       MK_ROUND_CEIL, &hs) != MK_OK) {
				ev->excl |= EXCL(AGG_EXCL_OUT_OF_RANGE);
				return;
			}
			half = hs.m;
		}
	} else if (q->has_last) {
		if (!scale_ok(q->last)) {
			ev->excl |= EXCL(AGG_EXCL_OUT_OF_RANGE);
			return;
		}
		if (!mk_dec_is_pos(q->last)) {
			ev->excl |= EXCL(AGG_EXCL_NON_POSITIVE);
			return;
		}
		if (!to_scale(q->last, s, MK_ROUND_HALF_EVEN, &ev->raw)) {
			ev->excl |= EXCL(AGG_EXCL_OUT_OF_RANGE);
			return;
		}
		ev->has_raw = true;
	} else {
		ev->excl |= EXCL(AGG_EXCL_NO_DATA);
		return;
	}
	if (ev->raw <= 0) {
		/* positive, but below one unit of the scale */
		ev->excl |= EXCL(AGG_EXCL_NON_POSITIVE);
		return;
	}
	if (q->has_conf) {
		if (!scale_ok(q->conf) || mk_dec_is_neg(q->conf) ||
		    !to_scale(q->conf, s, MK_ROUND_CEIL, &c)) {
			ev->excl |= EXCL(AGG_EXCL_OUT_OF_RANGE);
			return;
		}
		if (c > half)
			half = c;
	}
	if (half < 1)
		half = 1;
	ev->has_price = true;
	ev->price = ev->raw;
	ev->conf = half;
}

/*
 * Step 1, conversion: price * q and c * q + p * c_q (rounded up) with q,
 * c_q the converting instrument's current mark, which must be valid for
 * liquidation: an unknown or depegged quote currency is never taken as 1.
 * The data time becomes the older of the two.
 */
static int64_t age_of(int64_t now_ms, int64_t ts);

static void
leg_convert(const struct agg_book *book, const struct agg_leg *lg,
	    int64_t now_ms, struct agg_leg_eval *ev)
{
	const struct agg_inst *conv = &book->insts[lg->spec.convert_via];
	const struct agg_mark *cm = conv->mark;
	agg_i128 d, p, c1, c2, c3;
	int64_t t1, t2, t3;

	/* The converter's mark must be valid now, not only when it was
	 * computed: its oldest input must still be fresh by its own bound
	 * (a quote here does not re-evaluate the converter). */
	if (cm == NULL || !cm->valid_for_liquidation || !cm->has_price ||
	    cm->held || cm->price.m <= 0 || cm->conf.m < 0 ||
	    age_of(now_ms, cm->data_ts_ms) > conv->p.max_age_ms) {
		ev->excl |= EXCL(AGG_EXCL_CONVERSION_UNAVAILABLE);
		ev->has_price = false;
		return;
	}
	if (!ev->has_price)
		return;
	/* The interval product: (p +- c)(q +- c_q) spans p*q +- (c*q + p*c_q
	 * + c*c_q). Every factor is below 2^63, so each product is below
	 * 2^126; each term is rounded up and brought back to 64 bits on its
	 * own, and the sum is checked. */
	d = agg_pow10(cm->price.scale);
	p = agg_div_round((agg_i128)ev->price * cm->price.m, d,
			  MK_ROUND_HALF_EVEN);
	c1 = agg_div_round((agg_i128)ev->conf * cm->price.m, d, MK_ROUND_CEIL);
	c2 = agg_div_round((agg_i128)ev->price * cm->conf.m, d, MK_ROUND_CEIL);
	c3 = agg_div_round((agg_i128)ev->conf * cm->conf.m, d, MK_ROUND_CEIL);
	if (!agg_i128_to_i64(p, &ev->price) || !agg_i128_to_i64(c1, &t1) ||
	    !agg_i128_to_i64(c2, &t2) || !agg_i128_to_i64(c3, &t3) ||
	    __builtin_add_overflow(t1, t2, &ev->conf) ||
	    __builtin_add_overflow(ev->conf, t3, &ev->conf)) {
		ev->excl |= EXCL(AGG_EXCL_OUT_OF_RANGE);
		ev->has_price = false;
		return;
	}
	if (ev->price <= 0)
		ev->excl |= EXCL(AGG_EXCL_NON_POSITIVE);
	if (ev->conf < 1)
		ev->conf = 1;
	if (cm->data_ts_ms < ev->data_ts)
		ev->data_ts = cm->data_ts_ms;
	ev->conv_seq = cm->seq;
}

/* now_ms - ts, at least 0. Times here are in [0, AGG_MAX_TIME_MS] except
 * a venue's timestamp, which is only known to be > 0: no overflow. */
static int64_t
age_of(int64_t now_ms, int64_t ts)
{
	return now_ms > ts ? now_ms - ts : 0;
}

/* Steps 1 and 2 for one leg: fills ev and the leg's view (except its
 * final state, known after the outlier step). */
static void
eval_leg(const struct agg_book *book, const struct agg_inst *in,
	 const struct agg_leg *lg, int64_t now_ms, struct agg_leg_eval *ev,
	 struct agg_leg_view *v)
{
	const struct agg_quote *q = &lg->q;
	int64_t xts;

	memset(ev, 0, sizeof(*ev));
	memcpy(v->source, lg->spec.source, sizeof(v->source));
	memcpy(v->market, lg->spec.market, sizeof(v->market));
	if (lg->spec.convert_via >= 0)
		memcpy(v->via, book->insts[lg->spec.convert_via].symbol,
		       sizeof(v->via));
	v->weight = lg->spec.weight;
	v->error_at_ms = lg->error_at_ms;
	v->error_bad_data = lg->error_bad_data;
	memcpy(v->error, lg->error, sizeof(v->error));
	v->age_ms = -1;
	v->exchange_age_ms = -1;
	v->recv_age_ms = -1;
	if (!lg->has_quote) {
		ev->excl |= EXCL(AGG_EXCL_NO_DATA);
		return;
	}

	/* Freshness: the exchange's own time when it gives one. */
	xts = q->exchange_ts_ms > 0 ? q->exchange_ts_ms : 0;
	v->exchange_ts_ms = xts;
	v->recv_ts_ms = lg->recv_ms;
	v->recv_age_ms = age_of(now_ms, lg->recv_ms);
	if (xts > 0) {
		v->exchange_age_ms = age_of(now_ms, xts);
		if (xts > now_ms && xts - now_ms > in->p.max_skew_ms)
			ev->excl |= EXCL(AGG_EXCL_CLOCK_SKEW);
	}
	/* A venue clock ahead of ours buys no extra freshness: the data is
	 * no younger than its receipt. */
	ev->data_ts = xts > 0 && xts < lg->recv_ms ? xts : lg->recv_ms;
	if (lg->recv_ms > now_ms) {
		/* Our clock went back since the quote arrived: its age is
		 * unknown, so it cannot count as fresh. */
		ev->excl |= EXCL(AGG_EXCL_STALE);
	}
	if (lg->bad_data)
		ev->excl |= EXCL(AGG_EXCL_ERROR);

	leg_price(in, q, ev);
	if (lg->spec.convert_via >= 0)
		leg_convert(book, lg, now_ms, ev);
	if (ev->has_price && ev->price > INT64_MAX - ev->conf) {
		/* p + c, the top vote, must fit */
		ev->excl |= EXCL(AGG_EXCL_OUT_OF_RANGE);
	}
	v->age_ms = age_of(now_ms, ev->data_ts);
	if (v->age_ms > in->p.max_age_ms)
		ev->excl |= EXCL(AGG_EXCL_STALE);

	if (ev->has_raw)
		v->raw_price = MK_DEC(ev->raw, in->p.scale);
	v->has_raw = ev->has_raw;
	if (ev->has_price) {
		v->price = MK_DEC(ev->price, in->p.scale);
		v->conf = MK_DEC(ev->conf, in->p.scale);
	}
	v->has_price = ev->has_price;
}

/* The reason of highest precedence (lowest enum value) among excl bits. */
static enum agg_exclusion
first_reason(unsigned excl)
{
	unsigned r;

	if (excl == 0)
		return AGG_EXCL_NONE;
	for (r = 0; (excl & (1u << r)) == 0; r++)
		;
	return (enum agg_exclusion)r;
}

/* Step 3: legs further than max_deviation_bps from the plain median of the
 * remaining legs' prices are outliers. Returns the number of legs used. */
static uint32_t
exclude_outliers(struct agg_book *book, const struct agg_inst *in)
{
	struct agg_leg_eval *ev = book->evals;
	agg_i128 med2;
	size_t j, nc = 0;
	uint32_t used = 0;

	for (j = 0; j < in->nlegs; j++)
		if (ev[j].excl == 0)
			book->prices[nc++] = ev[j].price;
	if (nc == 0)
		return 0;
	/* Candidates are positive, so med2 > 0; |2p - med2| < 2^65. */
	med2 = agg_median2(book->prices, nc);
	for (j = 0; j < in->nlegs; j++) {
		agg_i128 dev;

		if (ev[j].excl != 0)
			continue;
		dev = 2 * (agg_i128)ev[j].price - med2;
		if (dev < 0)
			dev = -dev;
		if (above_bps(dev, med2, in->p.max_deviation_bps))
			ev[j].excl |= EXCL(AGG_EXCL_OUTLIER);
		else
			used++;
	}
	return used;
}

/* The number of distinct sources among the used legs: the quorum counts
 * venues, so one venue listing three markets cannot form one alone. */
static uint32_t
used_sources(const struct agg_book *book, const struct agg_inst *in)
{
	const struct agg_leg_eval *ev = book->evals;
	uint32_t n = 0;

	for (size_t j = 0; j < in->nlegs; j++) {
		bool first = ev[j].excl == 0;

		/* counted once: at the first used leg of its source */
		for (size_t k = 0; first && k < j; k++)
			if (ev[k].excl == 0 && in->legs[k].source_rank ==
						   in->legs[j].source_rank)
				first = false;
		n += first;
	}
	return n;
}

/* True when the used legs (their quotes and conversions) differ from what
 * the last aggregate used: then a new mark is due. */
static bool
inputs_changed(const struct agg_book *book, const struct agg_inst *in)
{
	size_t j;

	if (!in->has_agg)
		return true;
	for (j = 0; j < in->nlegs; j++) {
		const struct agg_leg_eval *ev = &book->evals[j];
		bool used = ev->excl == 0;

		if (in->legs[j].used_qver != (used ? in->legs[j].qver : 0) ||
		    in->legs[j].used_conv_seq != (used ? ev->conv_seq : 0))
			return true;
	}
	return false;
}

/* max(P, T) / min(P, T) > too_volatile_ratio, or |P - T| / P >
 * max_twap_deviation_bps; exact. Assumes P > 0. */
static bool
too_volatile(const struct agg_params *p, int64_t price, int64_t twap)
{
	int64_t hi = price > twap ? price : twap;
	int64_t lo = price > twap ? twap : price;

	if (lo <= 0)
		return true;
	/* lo * ratio < 2^95; hi - lo < 2^64 */
	return (agg_i128)hi > (agg_i128)lo * p->too_volatile_ratio ||
	       above_bps((agg_i128)hi - lo, price, p->max_twap_deviation_bps);
}

/*
 * Steps 5-7 for a new mark: the weighted median of the votes
 * {p - c, p, p + c} of the used legs, conf = max(p50 - p25, p75 - p50)
 * floored at the tightest used leg's own conf, the price-based validity
 * conditions against the TWAP of earlier valid marks, and -- only for a
 * valid mark -- the statistics.
 */
static void
aggregate(struct agg_book *book, struct agg_inst *in, int64_t now_ms)
{
	const struct agg_params *p = &in->p;
	struct agg_vote *votes = book->votes;
	int64_t p25, p50, p75, min_conf = INT64_MAX, data_ts = INT64_MAX;
	int64_t twap, conf;
	agg_i128 wide;
	unsigned flags = 0;
	size_t j, nv = 0;

	for (j = 0; j < in->nlegs; j++) {
		const struct agg_leg_eval *ev = &book->evals[j];
		uint64_t w = in->legs[j].spec.weight;

		in->legs[j].used_qver = ev->excl == 0 ? in->legs[j].qver : 0;
		in->legs[j].used_conv_seq = ev->excl == 0 ? ev->conv_seq : 0;
		if (ev->excl != 0)
			continue;
		/* p > 0, c > 0 and p + c checked to fit: all three do. */
		votes[nv++] = (struct agg_vote){ ev->price - ev->conf, w };
		votes[nv++] = (struct agg_vote){ ev->price, w };
		votes[nv++] = (struct agg_vote){ ev->price + ev->conf, w };
		if (ev->conf < min_conf)
			min_conf = ev->conf;
		if (ev->data_ts < data_ts)
			data_ts = ev->data_ts;
	}
	assert(nv > 0);
	agg_votes_sort(votes, nv);
	p25 = agg_votes_percentile(votes, nv, 1, 4);
	p50 = agg_votes_percentile(votes, nv, 1, 2);
	p75 = agg_votes_percentile(votes, nv, 3, 4);
	wide = (agg_i128)p50 - p25;
	if ((agg_i128)p75 - p50 > wide)
		wide = (agg_i128)p75 - p50;
	if (wide < min_conf)
		wide = min_conf;
	if (!agg_i128_to_i64(wide, &conf))
		conf = INT64_MAX;

	if (p50 <= 0) {
		flags |= AGG_REASON(AGG_MARK_NON_POSITIVE);
	} else {
		if (above_bps(conf, p50, p->max_conf_bps))
			flags |= AGG_REASON(AGG_MARK_TOO_UNCERTAIN);
		/* The TWAP of earlier valid marks; after a whole window without
		 * one it is forgotten, so that a real move that outlasts the
		 * window is eventually accepted. */
		if (in->twap.has &&
		    now_ms - in->twap.last_ms > p->twap_window_ms)
			agg_twap_reset(&in->twap);
		if (agg_twap_value(&in->twap, now_ms, &twap) &&
		    too_volatile(p, p50, twap))
			flags |= AGG_REASON(AGG_MARK_TOO_VOLATILE);
	}

	in->seq++;
	in->has_agg = true;
	in->agg_price = p50;
	in->agg_conf = conf;
	in->agg_at_ms = now_ms;
	in->agg_data_ts = data_ts;
	in->agg_flags = flags;
	if (flags != 0)
		return;
	in->has_good = true;
	in->good_price = p50;
	in->good_conf = conf;
	in->good_at_ms = now_ms;
	in->good_data_ts = data_ts;
	agg_ema_push(&in->ema, p50, now_ms, p->ema_window_ms);
	agg_twap_push(&in->twap, p50, now_ms);
	agg_vol_push(&in->vol, p50, now_ms, p->vol_halflife_ms);
}

/* The most severe status among reason bits. */
static enum agg_mark_status
worst(unsigned reasons)
{
	int s;

	for (s = AGG_MARK_STATUS_COUNT - 1; s > 0; s--)
		if (reasons & AGG_REASON(s))
			return (enum agg_mark_status)s;
	return AGG_MARK_OK;
}

/* Fills the instrument-level fields of m from the state after step 4. */
static void
fill_mark(const struct agg_inst *in, struct agg_mark *m, uint32_t used,
	  bool quorum, int64_t now_ms)
{
	int s = in->p.scale;
	unsigned reasons = 0;
	int64_t twap;

	memcpy(m->symbol, in->symbol, sizeof(m->symbol));
	m->scale = s;
	m->seq = in->seq;
	m->sources_used = used;
	m->sources_total = (uint32_t)in->nlegs;
	m->updated_at_ms = now_ms;
	m->age_ms = -1;
	if (quorum) {
		assert(in->has_agg);
		m->has_price = true;
		m->price = MK_DEC(in->agg_price, s);
		m->conf = MK_DEC(in->agg_conf, s);
		m->price_at_ms = in->agg_at_ms;
		m->data_ts_ms = in->agg_data_ts;
		reasons |= in->agg_flags;
		if (used < in->nlegs)
			reasons |= AGG_REASON(AGG_MARK_DEGRADED);
	} else {
		reasons |= AGG_REASON(AGG_MARK_NO_QUORUM);
		if (in->has_good) {
			m->has_price = true;
			m->held = true;
			m->price = MK_DEC(in->good_price, s);
			m->conf = MK_DEC(in->good_conf, s);
			m->price_at_ms = in->good_at_ms;
			m->data_ts_ms = in->good_data_ts;
			if (now_ms - in->good_at_ms > in->p.max_age_ms)
				reasons |= AGG_REASON(AGG_MARK_STALE);
		}
	}
	if (m->has_price)
		m->age_ms = age_of(now_ms, m->price_at_ms);
	m->reasons = reasons;
	m->status = worst(reasons);
	m->valid_for_liquidation = m->status == AGG_MARK_OK ||
				   m->status == AGG_MARK_DEGRADED;
	m->has_last_good = in->has_good;
	m->last_good_at_ms = in->has_good ? in->good_at_ms : 0;
	if (in->ema.has) {
		m->has_ema = true;
		m->ema = MK_DEC(in->ema.value, s);
	}
	if (agg_twap_value(&in->twap, now_ms, &twap)) {
		m->has_twap = true;
		m->twap = MK_DEC(twap, s);
	}
	m->has_volatility = agg_vol_sigma(&in->vol, &m->volatility);
}

enum mk_status
agg_eval_instrument(struct agg_book *book, size_t i, int64_t now_ms)
{
	struct agg_inst *in = &book->insts[i];
	struct agg_mark *m;
	uint32_t used;
	bool quorum;
	size_t j;

	m = agg_mark_create(in->nlegs);
	if (m == NULL)
		return MK_ENOMEM;
	for (j = 0; j < in->nlegs; j++)
		eval_leg(book, in, &in->legs[j], now_ms, &book->evals[j],
			 &m->legs[j]);
	used = exclude_outliers(book, in);
	quorum = used_sources(book, in) >= in->p.min_sources;
	if (quorum && inputs_changed(book, in))
		aggregate(book, in, now_ms);
	for (j = 0; j < in->nlegs; j++) {
		enum agg_exclusion r = first_reason(book->evals[j].excl);

		m->legs[j].reason = r;
		m->legs[j].state = agg_exclusion_state(r);
	}
	fill_mark(in, m, used, quorum, now_ms);
	agg_mark_release(in->mark);
	in->mark = m;
	return MK_OK;
}
