/*
 * replay_sim.h - markd-replay's methods and its simulation loop.
 *
 * A method turns the legs' quotes into one mark per step and decides
 * liquidations with it:
 *   markd              every leg of every instrument of the config goes
 *                      into a real aggregator book (agg_book_quotes at the
 *                      step's time, then agg_book_tick so that silent legs
 *                      age), and each position runs the real margin state
 *                      tracker (margin_step) with the instrument's band
 *                      and confirmation window (confirm_count marks and
 *                      confirm_ms);
 *   single:LEG         that leg's latest price as quoted (its own quote
 *                      currency taken as the instrument's), while it is
 *                      younger than the instrument's max_age_ms;
 *   median             the plain median of the latest price of every leg
 *                      that has quoted so far, quote currencies taken as
 *                      1:1, no staleness and no outlier rule;
 *   median-converted   the same with every leg converted through the plain
 *                      median of its quote currency's instrument (computed
 *                      the same way, recursively).
 * The three baselines liquidate at the first step whose mark breaches
 * (margin_step with no band, one mark and 0 ms of confirmation).
 *
 * Quotes: a leg with a bar in the minute quotes its sub-tick price as
 * `last` (no bid/ask: the bars carry trade prices only, so the leg's own
 * uncertainty is one tick) with exchange_ts = the step's time.
 *
 * Cost: the markd method costs one aggregator evaluation per step; every
 * method costs, per step and live position, one integer comparison with
 * the position's liquidation price, and a margin_step only near it (or
 * while a confirmation is running), which gives the same decisions as
 * calling margin_step on every step (see replay_sim.c).
 *
 * Thread safety: one thread. Ownership: replay_result_clear.
 */
#ifndef MARKD_TOOLS_REPLAY_SIM_H
#define MARKD_TOOLS_REPLAY_SIM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "aggregator/dec.h"
#include "aggregator/status.h"
#include "margin/state.h"
#include "tools/replay_data.h"
#include "tools/replay_pos.h"

#define REPLAY_METHOD_NAME_MAX 96
#define REPLAY_MAX_METHODS 80
/* marks[] value of a step without a mark */
#define REPLAY_NO_MARK INT64_MIN

enum replay_method_kind {
	REPLAY_MARKD,
	REPLAY_MEDIAN,
	REPLAY_MEDIAN_CONVERTED,
	REPLAY_SINGLE,
};

struct replay_method {
	enum replay_method_kind kind;
	size_t leg;                /* single: index of the target's leg */
	char name[REPLAY_METHOD_NAME_MAX];
};

/* A method's liquidation of one position. */
struct replay_liq {
	bool has;
	size_t step;
	int64_t t_ms;
	int64_t mark, conf;        /* mantissas at the instrument's scale */
	uint8_t state;             /* liquidatable or bankrupt */
};

struct replay_result {
	size_t nsteps;
	size_t nmethods;
	struct replay_method *methods;   /* copied */
	int64_t *marks;            /* [method * nsteps + step], or
				    * REPLAY_NO_MARK */
	int64_t *markd_conf;       /* per step (markd's band), or -1 */
	uint8_t *markd_status;     /* per step: enum agg_mark_status, 255
				    * when there is no price */
	size_t npos;
	struct replay_liq *liqs;   /* [method * npos + position] */
};

/* Checks the form of a --method value without the data (a known name, or
 * "single:" and a leg name). MK_EINVAL naming the method. */
enum mk_status replay_method_check(const char *text, struct mk_err *err);

/*
 * Parses a --method value against d's target legs: "markd", "median",
 * "median-converted", "single:LEG" (LEG a leg's name, its CSV name
 * without "_1m.csv"/".csv", or the whole CSV name). MK_EINVAL naming the
 * method (and the legs there are, for an unknown one).
 */
enum mk_status replay_method_parse(const struct replay_data *d,
				   const char *text, struct replay_method *out,
				   struct mk_err *err);

/* Every method: markd, median, median-converted, then single: of each of
 * the target's legs. Returns the count (at most cap written). */
size_t replay_methods_all(const struct replay_data *d,
			  struct replay_method *out, size_t cap);

/*
 * Runs the window: enters the positions (sorted by at_ms) as the markd
 * mark allows, steps every method and records marks and liquidations
 * into *res (new). markd runs even when it is not among the methods (the
 * positions enter at its mark). Errors: MK_ENOMEM, MK_ECONFIG (the book
 * refuses the config), MK_EINVAL / MK_ERANGE from a position (named).
 */
enum mk_status replay_run(const struct replay_data *d,
			  struct replay_positions *ps,
			  const struct replay_method *methods, size_t nm,
			  struct replay_result *res, struct mk_err *err);

/* Releases res's arrays; NULL accepted. */
void replay_result_clear(struct replay_result *res);

/* The margin parameters of d's target instrument, from its config. */
void replay_margin_params(const struct replay_data *d,
			  struct margin_params *prm);

#endif
