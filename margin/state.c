/*
 * state.c - decision states and the confirmation window (see state.h).
 */
#include "config.h"

#include "margin/state.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

void
margin_tracker_init(struct margin_tracker *t)
{
	memset(t, 0, sizeof(*t));
	t->state = MARGIN_STATE_NEW;
	t->last_valid = MARGIN_STATE_NEW;
	t->reason = MARGIN_REASON_NONE;
}

bool
margin_tick_usable(const struct margin_tick *tick)
{
	return tick->valid_for_liquidation && mk_dec_is_pos(tick->price) &&
	       !mk_dec_is_neg(tick->conf);
}

const char *
margin_state_name(enum margin_state s)
{
	switch (s) {
	case MARGIN_STATE_NEW:
		return "new";
	case MARGIN_STATE_HELD:
		return "held";
	case MARGIN_STATE_SAFE:
		return "safe";
	case MARGIN_STATE_AT_RISK:
		return "at_risk";
	case MARGIN_STATE_BREACH_UNCONFIRMED:
		return "breach_unconfirmed";
	case MARGIN_STATE_LIQUIDATABLE:
		return "liquidatable";
	case MARGIN_STATE_BANKRUPT:
		return "bankrupt";
	}
	return "?";
}

static const struct {
	const char *name;
	const char *text;
} reasons[MARGIN_REASON_COUNT] = {
	[MARGIN_REASON_NONE] = { "", "" },
	[MARGIN_REASON_MARK_INVALID] = {
		"mark_invalid", "mark not valid for liquidation" },
	[MARGIN_REASON_MARK_UNUSABLE] = {
		"mark_unusable", "mark price not positive or conf negative" },
	[MARGIN_REASON_HEALTHY] = {
		"healthy", "healthy with the buffer at the adverse edge" },
	[MARGIN_REASON_ADVERSE_BUFFER] = {
		"adverse_buffer", "under the buffer at the adverse edge" },
	[MARGIN_REASON_ADVERSE_BREACH] = {
		"adverse_breach",
		"margin balance below maintenance at the adverse edge" },
	[MARGIN_REASON_ADVERSE_BANKRUPT] = {
		"adverse_bankrupt",
		"margin balance <= 0 at the adverse edge" },
	[MARGIN_REASON_MARK_BREACH] = {
		"mark_breach",
		"breached at the mark, not at the favourable edge" },
	[MARGIN_REASON_CONFIRMING] = {
		"confirming",
		"breached at the favourable edge, not yet confirmed" },
	[MARGIN_REASON_CONFIRMED] = {
		"confirmed", "breached at the favourable edge, confirmed" },
	[MARGIN_REASON_BANKRUPT] = {
		"bankrupt",
		"margin balance <= 0 at the favourable edge, confirmed" },
};

const char *
margin_reason_name(enum margin_reason r)
{
	if ((unsigned)r >= MARGIN_REASON_COUNT)
		return "?";
	return reasons[r].name;
}

const char *
margin_reason_text(enum margin_reason r)
{
	if ((unsigned)r >= MARGIN_REASON_COUNT)
		return "?";
	return reasons[r].text;
}

/* The state of a usable tick from its flags and the counter. */
static enum margin_state
classify(unsigned flags, uint32_t count, int64_t elapsed, uint32_t k,
	 int64_t tms, enum margin_reason *why)
{
	if (flags & (MARGIN_FLAG_FAV_BREACH | MARGIN_FLAG_FAV_BANKRUPT)) {
		if (count < k || elapsed < tms) {
			*why = MARGIN_REASON_CONFIRMING;
			return MARGIN_STATE_BREACH_UNCONFIRMED;
		}
		if (flags & MARGIN_FLAG_FAV_BANKRUPT) {
			*why = MARGIN_REASON_BANKRUPT;
			return MARGIN_STATE_BANKRUPT;
		}
		*why = MARGIN_REASON_CONFIRMED;
		return MARGIN_STATE_LIQUIDATABLE;
	}
	if (flags & (MARGIN_FLAG_MARK_BREACH | MARGIN_FLAG_MARK_BANKRUPT)) {
		*why = MARGIN_REASON_MARK_BREACH;
		return MARGIN_STATE_BREACH_UNCONFIRMED;
	}
	if (flags & MARGIN_FLAG_ADV_BANKRUPT) {
		*why = MARGIN_REASON_ADVERSE_BANKRUPT;
		return MARGIN_STATE_AT_RISK;
	}
	if (flags & MARGIN_FLAG_ADV_BREACH) {
		*why = MARGIN_REASON_ADVERSE_BREACH;
		return MARGIN_STATE_AT_RISK;
	}
	if (flags & MARGIN_FLAG_AT_RISK) {
		*why = MARGIN_REASON_ADVERSE_BUFFER;
		return MARGIN_STATE_AT_RISK;
	}
	*why = MARGIN_REASON_HEALTHY;
	return MARGIN_STATE_SAFE;
}

static void
event_text(char *buf, size_t cap, const struct margin_decision *d,
	   const struct margin_tick *tick, uint32_t k, int64_t tms)
{
	const char *base = margin_reason_text(d->reason);

	switch (d->reason) {
	case MARGIN_REASON_MARK_INVALID:
	case MARGIN_REASON_MARK_UNUSABLE:
		snprintf(buf, cap, "%s (status %d); last valid state %s", base,
			 tick->status, margin_state_name(d->last_valid));
		break;
	case MARGIN_REASON_CONFIRMING:
	case MARGIN_REASON_CONFIRMED:
	case MARGIN_REASON_BANKRUPT:
		snprintf(buf, cap,
			 "%s (%" PRIu32 " of %" PRIu32 " marks, %" PRId64
			 " of %" PRId64 " ms)",
			 base, d->breach_marks, k, d->breach_ms, tms);
		break;
	default:
		snprintf(buf, cap, "%s", base);
		break;
	}
}

void
margin_track(struct margin_tracker *t, const struct margin_params *prm,
	     const struct margin_tick *tick, unsigned flags,
	     struct margin_decision *d, struct margin_event *ev)
{
	enum margin_state from = (enum margin_state)t->state;
	uint32_t k = prm->confirm_marks < 1 ? 1 : prm->confirm_marks;
	int64_t tms = prm->confirm_ms;
	enum margin_reason why;
	enum margin_state st;

	memset(d, 0, sizeof(*d));
	if (!margin_tick_usable(tick)) {
		if (t->held_since_ms == 0)
			t->held_since_ms = tick->time_ms > 0 ? tick->time_ms : 1;
		st = MARGIN_STATE_HELD;
		why = tick->valid_for_liquidation
			      ? MARGIN_REASON_MARK_UNUSABLE
			      : MARGIN_REASON_MARK_INVALID;
	} else {
		int64_t elapsed = 0;

		/* An outage as long as the window, or a rebuilt aggregator
		 * (its seq starts again), begins a new confirmation run. */
		if (t->held_since_ms != 0 &&
		    tick->time_ms - t->held_since_ms >= tms)
			t->count = 0;
		if (t->count > 0 && tick->seq < t->last_seq)
			t->count = 0;
		t->held_since_ms = 0;
		if (flags & (MARGIN_FLAG_FAV_BREACH |
			     MARGIN_FLAG_FAV_BANKRUPT)) {
			if (t->count == 0 || tick->seq > t->last_seq) {
				if (t->count == 0)
					t->first_ms = tick->time_ms;
				if (t->count < UINT32_MAX)
					t->count++;
				t->last_seq = tick->seq;
			}
		} else {
			t->count = 0;
		}
		if (t->count > 0 && tick->time_ms > t->first_ms)
			elapsed = tick->time_ms - t->first_ms;
		st = classify(flags, t->count, elapsed, k, tms, &why);
		t->last_valid = (uint8_t)st;
		t->flags = (uint8_t)flags;
	}
	t->state = (uint8_t)st;
	t->reason = (uint8_t)why;
	d->state = st;
	d->last_valid = (enum margin_state)t->last_valid;
	d->reason = why;
	d->flags = t->flags;
	d->breach_marks = t->count;
	if (t->count > 0 && tick->time_ms > t->first_ms)
		d->breach_ms = tick->time_ms - t->first_ms;
	d->changed = st != from;
	if (!d->changed || ev == NULL)
		return;
	memset(ev, 0, sizeof(*ev));
	ev->from = from;
	ev->to = st;
	ev->last_valid = d->last_valid;
	ev->reason = why;
	event_text(ev->text, sizeof(ev->text), d, tick, k, tms);
	ev->price = tick->price;
	ev->conf = tick->conf;
	ev->status = tick->status;
	ev->valid_for_liquidation = tick->valid_for_liquidation;
	ev->sources_used = tick->sources_used;
	ev->seq = tick->seq;
	ev->time_ms = tick->time_ms;
	ev->flags = d->flags;
	ev->breach_marks = d->breach_marks;
	ev->breach_ms = d->breach_ms;
}

enum mk_status
margin_step(struct margin_tracker *t, const struct margin_position *p,
	    const struct margin_params *prm, const struct margin_tick *tick,
	    struct margin_decision *d, struct margin_event *ev,
	    struct mk_err *err)
{
	unsigned flags = 0;
	enum mk_status st = margin_params_check(prm, err);

	if (st == MK_OK && margin_tick_usable(tick))
		st = margin_verdict(p, prm, tick->price, tick->conf, &flags,
				    err);
	if (st != MK_OK)
		return st;
	margin_track(t, prm, tick, flags, d, ev);
	return MK_OK;
}
