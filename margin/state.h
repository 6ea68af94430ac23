/*
 * state.h - the decision states of a position and the confirmation window
 * that keeps a wick, a dead feed or a lying venue from liquidating anybody
 * (DESIGN.md section 6.4).
 *
 * Per tick (one mark of the position's instrument) the state is:
 *   held        the mark is not valid for liquidation (or its price is not
 *               positive): no decision is made; the last valid state is
 *               reported alongside and the tracker keeps it;
 *   safe        MB >= MM * (1 + buffer) at the adverse edge;
 *   at_risk     fails that at the adverse edge, but MB >= MM at the mark;
 *   breach_unconfirmed
 *               MB < MM at the mark but not at the favourable edge, or
 *               breached at the favourable edge for fewer than K
 *               consecutive valid marks or less than T ms;
 *   liquidatable
 *               breached (MB < MM, or MB <= 0) at the favourable edge on
 *               at least K consecutive valid marks AND at least T ms since
 *               the first of them;
 *   bankrupt    liquidatable, and MB <= 0 at the favourable edge.
 * Longs are favoured by the upper edge mark + conf, shorts by the lower.
 *
 * The confirmation counter: a valid mark breached at the favourable edge
 * advances it (at most once per mark: a mark with a seq not above the
 * last one counted, e.g. a re-evaluation after a collateral change, does
 * not advance it again); a valid mark not breached there resets it; a held
 * tick neither advances nor resets it, so a short blip of invalid marks
 * does not delay a real liquidation (the T ms are measured from the first
 * breached mark, held time included). But a held stretch lasting at least
 * T ms restarts the run: after an outage the breach must be confirmed
 * again on trustworthy marks. A mark seq lower than the last one counted
 * (the aggregator was rebuilt, e.g. on reload or restart) also starts a
 * new run. Nothing is latched: once the favourable edge recovers, the
 * state follows.
 *
 * Each change of the reported state is a transition and yields an event
 * with the mark, conf, status, sources used and reason of that moment.
 *
 * Thread safety: pure functions over a caller-owned tracker; a tracker
 * needs one writer at a time. The tracker is 32 bytes, so a registry can
 * keep one per position.
 */
#ifndef MARKD_MARGIN_STATE_H
#define MARKD_MARGIN_STATE_H

#include <stdbool.h>
#include <stdint.h>

#include "aggregator/dec.h"
#include "aggregator/status.h"
#include "margin/math.h"
#include "margin/position.h"

enum margin_state {
	MARGIN_STATE_NEW = 0,            /* no tick seen yet */
	MARGIN_STATE_HELD,
	MARGIN_STATE_SAFE,
	MARGIN_STATE_AT_RISK,
	MARGIN_STATE_BREACH_UNCONFIRMED,
	MARGIN_STATE_LIQUIDATABLE,
	MARGIN_STATE_BANKRUPT,
};
#define MARGIN_STATE_COUNT 7

enum margin_reason {
	MARGIN_REASON_NONE = 0,
	MARGIN_REASON_MARK_INVALID,      /* held: not valid for liquidation */
	MARGIN_REASON_MARK_UNUSABLE,     /* held: price <= 0 or conf < 0 */
	MARGIN_REASON_HEALTHY,           /* safe */
	MARGIN_REASON_ADVERSE_BUFFER,    /* at_risk: under the buffer */
	MARGIN_REASON_ADVERSE_BREACH,    /* at_risk: MB < MM at the adverse edge */
	MARGIN_REASON_ADVERSE_BANKRUPT,  /* at_risk: MB <= 0 at the adverse edge */
	MARGIN_REASON_MARK_BREACH,       /* breach_unconfirmed: mark only */
	MARGIN_REASON_CONFIRMING,        /* breach_unconfirmed: window not met */
	MARGIN_REASON_CONFIRMED,         /* liquidatable */
	MARGIN_REASON_BANKRUPT,          /* bankrupt */
};
#define MARGIN_REASON_COUNT 11

/* One mark of the position's instrument, as the aggregator published it. */
struct margin_tick {
	struct mk_dec price;
	struct mk_dec conf;
	bool valid_for_liquidation;
	int status;             /* the mark's status code, carried into events */
	uint32_t sources_used;
	uint64_t seq;           /* the mark's sequence number */
	int64_t time_ms;        /* the mark's time (Unix ms) */
};

/* Per-position state; initialise with margin_tracker_init. */
struct margin_tracker {
	uint64_t last_seq;      /* seq of the last mark counted */
	int64_t first_ms;       /* time of the first breached mark of the run */
	int64_t held_since_ms;  /* first held tick of the current held
				 * stretch; 0 when the last tick was usable */
	uint32_t count;         /* consecutive valid marks breached at the
				 * favourable edge (saturates) */
	uint8_t state;          /* enum margin_state reported last */
	uint8_t last_valid;     /* enum margin_state of the last valid mark */
	uint8_t reason;         /* enum margin_reason reported last */
	uint8_t flags;          /* MARGIN_FLAG_* of the last valid mark */
};

/* What one tick decided. */
struct margin_decision {
	enum margin_state state;        /* reported state */
	enum margin_state last_valid;   /* = state unless held */
	enum margin_reason reason;
	unsigned flags;                 /* of the last valid mark */
	uint32_t breach_marks;          /* confirmation counter */
	int64_t breach_ms;              /* time since the first breached mark */
	bool changed;                   /* a transition: the event is filled */
};

#define MARGIN_EVENT_TEXT 160

/* A transition, with the mark of that moment. */
struct margin_event {
	enum margin_state from;
	enum margin_state to;
	enum margin_state last_valid;
	enum margin_reason reason;
	char text[MARGIN_EVENT_TEXT];   /* the reason in words, with counts */
	struct mk_dec price;
	struct mk_dec conf;
	int status;
	bool valid_for_liquidation;
	uint32_t sources_used;
	uint64_t seq;
	int64_t time_ms;
	unsigned flags;
	uint32_t breach_marks;
	int64_t breach_ms;
};

void margin_tracker_init(struct margin_tracker *t);

/* True when a liquidation decision may be made on this tick: valid for
 * liquidation, price > 0 and conf >= 0. */
bool margin_tick_usable(const struct margin_tick *tick);

/*
 * Advances the tracker by one tick whose verdict flags (margin_verdict)
 * are `flags`; flags are ignored when the tick is not usable (held). Fills
 * *d, and *ev when d->changed (ev may be NULL). Never fails; prm is taken
 * as checked (confirm_marks below 1 counts as 1).
 */
void margin_track(struct margin_tracker *t, const struct margin_params *prm,
		  const struct margin_tick *tick, unsigned flags,
		  struct margin_decision *d, struct margin_event *ev);

/*
 * margin_verdict on a usable tick, then margin_track. Errors (the tracker
 * is then unchanged): MK_EINVAL for a bad position or parameters,
 * MK_ERANGE when the band overflows.
 */
enum mk_status margin_step(struct margin_tracker *t,
			   const struct margin_position *p,
			   const struct margin_params *prm,
			   const struct margin_tick *tick,
			   struct margin_decision *d, struct margin_event *ev,
			   struct mk_err *err);

/* "new", "held", "safe", "at_risk", "breach_unconfirmed",
 * "liquidatable", "bankrupt"; "?" otherwise. */
const char *margin_state_name(enum margin_state s);

/* Stable short names ("mark_invalid", "confirming", ...; "" for none)
 * and one-line texts. Never NULL. */
const char *margin_reason_name(enum margin_reason r);
const char *margin_reason_text(enum margin_reason r);

#endif
