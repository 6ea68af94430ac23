/*
 * replay_truth.h - the ground truth markd-replay judges every method by,
 * computed from the bars alone, independently of any method.
 *
 * Conversion. Every venue's bar is converted to the instrument's quote
 * currency through the rate of its quote currency in that minute: the
 * plain median of the closes of that currency's instrument's legs with a
 * bar in the minute, each itself converted the same way when it is quoted
 * in yet another currency. A leg whose rate is unknown in a minute (no
 * leg of the currency traded) has no data in that minute.
 *
 * Per minute and position, with n venues (legs of the instrument) with
 * data in the minute and a majority meaning more than n / 2 of them:
 *   touched    a majority traded at or beyond the liquidation price: bar
 *              low <= LP for a long, bar high >= LP for a short;
 *   sustained  a majority closed beyond it: close < LP for a long,
 *              close > LP for a short (liquidation is strict).
 * A minute without data is neither. Each test is one comparison against
 * a per-minute threshold (the majority-th smallest low, ...), so asking
 * costs O(1).
 *
 * Thread safety: immutable once built. Ownership: replay_truth_clear.
 */
#ifndef MARKD_TOOLS_REPLAY_TRUTH_H
#define MARKD_TOOLS_REPLAY_TRUTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "aggregator/status.h"
#include "margin/position.h"
#include "tools/replay_data.h"

/* A sustained run this long (minutes) is a liquidation nobody may miss. */
#define REPLAY_SUSTAINED_RUN 3
/* A liquidation is true when a touched minute lies this close to it. */
#define REPLAY_TOUCH_SLACK_MIN 1

struct replay_truth {
	size_t nmin;
	uint8_t *nvenues;          /* venues with data, per minute */
	/* Per minute, mantissas at the instrument's scale: */
	int64_t *low_k;            /* majority-th smallest converted low */
	int64_t *close_lo_k;       /* majority-th smallest converted close */
	int64_t *high_k;           /* majority-th largest converted high */
	int64_t *close_hi_k;       /* majority-th largest converted close */
	/* Per leg of the target (replay_target_leg order) and minute: the
	 * converted close, 0 when none (for the plot). */
	size_t nlegs;
	int64_t *close;
};

/* Builds the truth of d's target instrument into *t. MK_ENOMEM, or
 * MK_ERANGE when a converted price does not fit. */
enum mk_status replay_truth_build(const struct replay_data *d,
				  struct replay_truth *t, struct mk_err *err);

/* Releases t's arrays; NULL accepted. */
void replay_truth_clear(struct replay_truth *t);

bool replay_truth_touched(const struct replay_truth *t, enum margin_side side,
			  int64_t lp, size_t minute);
bool replay_truth_sustained(const struct replay_truth *t,
			    enum margin_side side, int64_t lp, size_t minute);

/* True when a minute in [minute - 1, minute + 1] (inside the window) is
 * touched. */
bool replay_truth_touched_near(const struct replay_truth *t,
			       enum margin_side side, int64_t lp,
			       size_t minute);

/* The first minute >= from that starts REPLAY_SUSTAINED_RUN consecutive
 * sustained minutes, or SIZE_MAX. O(minutes). */
size_t replay_truth_first_run(const struct replay_truth *t,
			      enum margin_side side, int64_t lp, size_t from);

#endif
