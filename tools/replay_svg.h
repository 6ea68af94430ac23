/*
 * replay_svg.h - markd-replay's plot: a small SVG writer of its own (no
 * plotting dependency).
 *
 * The plot spans REPLAY_SVG_HALF_MIN minutes either side of the worst
 * moment (replay_score.worst_step): each leg's sub-tick prices as quoted
 * (grey, dashed: a BTC/USDC leg shows the de-peg as it was quoted), each
 * method's mark (markd thick black, the others in colours), a marker at
 * every step where a method liquidated (a filled red dot when one of
 * those liquidations was false, an open dot otherwise), axes with times
 * in UTC and a legend. Coordinates are doubles (display only); the same
 * inputs give the same bytes.
 *
 * Thread safety: one thread; reads its inputs only.
 */
#ifndef MARKD_TOOLS_REPLAY_SVG_H
#define MARKD_TOOLS_REPLAY_SVG_H

#include <stdio.h>

#include "tools/replay_data.h"
#include "tools/replay_pos.h"
#include "tools/replay_report.h"
#include "tools/replay_sim.h"

#define REPLAY_SVG_HALF_MIN 30

/* Writes the plot to f (write errors show in ferror(f)). */
void replay_svg_write(FILE *f, const struct replay_data *d,
		      const struct replay_positions *ps,
		      const struct replay_result *res,
		      const struct replay_score *sc);

#endif
