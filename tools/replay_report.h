/*
 * replay_report.h - scoring markd-replay's liquidations against the
 * ground truth, and writing the results.
 *
 * Per method:
 *   liquidations  positions the method liquidated (each at most once);
 *   false         those with no touched minute within +-1 minute of the
 *                 liquidation (replay_truth.h);
 *   missed        positions sustained beyond their liquidation price for
 *                 REPLAY_SUSTAINED_RUN consecutive minutes (from their
 *                 entry minute on) that the method never liquidated;
 *   delay         for positions with such a run that the method did
 *                 liquidate: from the start of the first run's first
 *                 minute to the liquidation, 0 when the liquidation came
 *                 first; median (the mean of the middle two for an even
 *                 count), p90 (nearest rank: the ceil(0.9 n)-th smallest)
 *                 and max, in seconds.
 *
 * Files written into the output folder (all deterministic: the same run
 * gives the same bytes):
 *   summary.json      {"window":{"from","to"},"symbol","positions",
 *                      "methods":{NAME:{"liquidations","false","missed",
 *                      "delay_s":{"n","median","p90","max"}}}} (delays
 *                      null when there are none);
 *   marks.csv         one row per step: time, markd's status and conf,
 *                     then each method's mark (empty when it has none);
 *   liquidations.csv  one row per liquidation, with its verdict;
 *   positions.csv     one row per entered position: its figures, when
 *                     its first sustained run began, and when each
 *                     method liquidated it;
 *   plot.svg          replay_svg.h.
 *
 * Thread safety: one thread. Ownership: replay_score_clear.
 */
#ifndef MARKD_TOOLS_REPLAY_REPORT_H
#define MARKD_TOOLS_REPLAY_REPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "aggregator/status.h"
#include "tools/replay_data.h"
#include "tools/replay_pos.h"
#include "tools/replay_sim.h"
#include "tools/replay_truth.h"

struct replay_stats {
	size_t liquidations, falses, missed;
	size_t ndelays;
	int64_t delay_median_ms2;  /* twice the median, ms */
	int64_t delay_p90_ms, delay_max_ms;
};

struct replay_score {
	size_t positions;          /* positions entered */
	struct replay_stats *stats;/* per method */
	uint8_t *is_false;         /* [method * npos + position] */
	int64_t *delay_ms;         /* [method * npos + position], -1: none */
	size_t *run;               /* per position: the first minute of its
				    * first sustained run, SIZE_MAX: none */
	size_t worst_step;         /* the moment the plot is centred on */
};

/* Scores res against t into *sc (new). MK_ENOMEM. */
enum mk_status replay_score_build(const struct replay_data *d,
				  const struct replay_positions *ps,
				  const struct replay_truth *t,
				  const struct replay_result *res,
				  struct replay_score *sc, struct mk_err *err);

void replay_score_clear(struct replay_score *sc);

/* Creates folder `dir` when missing and writes the five files into it.
 * MK_EIO naming the file, MK_ENOMEM. */
enum mk_status replay_write_outputs(const char *dir,
				    const struct replay_data *d,
				    const struct replay_positions *ps,
				    const struct replay_result *res,
				    const struct replay_score *sc,
				    struct mk_err *err);

/* Prints the summary as a Markdown table (one row per method) on out. */
void replay_print_table(FILE *out, const struct replay_result *res,
			const struct replay_score *sc);

/* Seconds as plain decimal text without trailing zeros ("30", "37.5")
 * from a number of milliseconds times `mult` (1, or 2 for a doubled
 * median). */
void replay_format_seconds(int64_t ms_times_mult, int mult, char *buf,
			   size_t cap);

#endif
