/*
 * book_int.h - the quote book's private state, shared by book.c (entry
 * points, ordering, publication) and eval.c (evaluation of one instrument).
 * Not for use outside aggregator/.
 *
 * Prices inside are int64 mantissas at the instrument's scale.
 */
#ifndef MARKD_AGGREGATOR_BOOK_INT_H
#define MARKD_AGGREGATOR_BOOK_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "aggregator/book.h"
#include "aggregator/median.h"
#include "aggregator/stats.h"

struct agg_leg {
	struct agg_leg_spec spec;
	/* Index of the first leg of this instrument with the same source:
	 * quorum counts venues, not markets (one venue's three markets are
	 * one opinion). */
	uint32_t source_rank;

	/* latest quote */
	bool has_quote;
	struct agg_quote q;
	int64_t recv_ms;
	uint64_t qver;           /* quotes received so far; identifies q */

	/* latest fetch error */
	bool bad_data;           /* the last fetch was bad data: excluded */
	int64_t error_at_ms;     /* 0 = no error yet */
	bool error_bad_data;
	char error[AGG_ERROR_MAX];

	/* what the last aggregate used: 0 when the leg was not used */
	uint64_t used_qver;
	uint64_t used_conv_seq;
};

/* One leg's evaluation, scratch of agg_eval_instrument. */
struct agg_leg_eval {
	unsigned excl;           /* bit (1u << enum agg_exclusion) per reason */
	bool has_raw;
	int64_t raw;             /* price in the leg's own quote currency */
	bool has_price;
	int64_t price, conf;     /* converted */
	int64_t data_ts;         /* time of the data behind price */
	uint64_t conv_seq;       /* seq of the converting mark used, 0 = none */
};

struct agg_inst {
	char symbol[AGG_SYMBOL_MAX];
	struct agg_params p;
	size_t nlegs;
	struct agg_leg *legs;
	size_t *dependents;      /* instruments with a leg converted via this */
	size_t ndependents;
	bool dirty;              /* to be re-evaluated by the current run */

	uint64_t seq;            /* marks computed so far */

	/* the last aggregate (quorum met) */
	bool has_agg;
	int64_t agg_price, agg_conf;
	int64_t agg_at_ms, agg_data_ts;
	unsigned agg_flags;      /* NON_POSITIVE/TOO_VOLATILE/TOO_UNCERTAIN */

	/* the last valid aggregate */
	bool has_good;
	int64_t good_price, good_conf;
	int64_t good_at_ms, good_data_ts;

	struct agg_ema ema;
	struct agg_twap twap;
	struct agg_vol vol;

	struct agg_mark *mark;   /* current mark; the book holds a reference */
};

struct agg_book {
	size_t n;
	struct agg_inst *insts;
	size_t *order;           /* evaluation order: converters first */
	size_t *leg_base;        /* leg id of each instrument's leg 0 */
	size_t total_legs;

	/* scratch for one evaluation, sized for the largest instrument */
	struct agg_vote *votes;
	int64_t *prices;
	struct agg_leg_eval *evals;

	uint64_t version;        /* publications so far */
	int64_t last_now_ms;
	struct agg_pub pub;
};

/*
 * Re-evaluates instrument i of book at now_ms: builds its new mark,
 * advances its aggregate and statistics when a new mark is due, and
 * replaces inst->mark. Instruments it converts through must have been
 * evaluated first (book->order). MK_ENOMEM leaves the instrument as it was.
 */
enum mk_status agg_eval_instrument(struct agg_book *book, size_t i,
				   int64_t now_ms);

#endif
