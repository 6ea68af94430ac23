/*
 * wide.h - 128-bit integer helpers shared by the aggregator's exact
 * kernels (median, statistics, conversion): rounded division and powers
 * of ten. Internal to aggregator/; callers outside it use struct mk_dec.
 *
 * Pure functions, reentrant.
 */
#ifndef MARKD_AGGREGATOR_WIDE_H
#define MARKD_AGGREGATOR_WIDE_H

#include <stdbool.h>
#include <stdint.h>

#include "aggregator/dec.h"

typedef __int128 agg_i128;
typedef unsigned __int128 agg_u128;

/* 10^k for 0 <= k <= 18. */
int64_t agg_pow10(int k);

/*
 * num / den rounded with `mode` (any enum mk_round except MK_ROUND_EXACT,
 * which is treated as MK_ROUND_HALF_EVEN). Assumes den > 0 and that num is
 * not the most negative agg_i128. Exact: no intermediate overflows.
 */
agg_i128 agg_div_round(agg_i128 num, agg_i128 den, enum mk_round mode);

/* True when v fits in int64_t; then *out = v. */
bool agg_i128_to_i64(agg_i128 v, int64_t *out);

/* (a + b) / 2 rounded half-even, exact for every pair of int64 values. */
int64_t agg_avg2_half_even(int64_t a, int64_t b);

#endif
