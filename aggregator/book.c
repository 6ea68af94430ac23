/*
 * book.c - the quote book: creation and validation of the instrument
 * specs, the conversion order, the update entry points and publication.
 * The evaluation itself is in eval.c.
 */
#include "config.h"

#include "aggregator/book_int.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Most legs per instrument: keeps 3 * legs * 2^32 (the total vote weight)
 * far below 2^64 and one evaluation's scratch small. */
#define AGG_MAX_LEGS 1024

static bool
has_nul(const char *s, size_t cap)
{
	return memchr(s, '\0', cap) != NULL;
}

/* Checks everything about specs[i] except conversion cycles. */
static enum mk_status
check_spec(const struct agg_instrument_spec *specs, size_t n, size_t i,
	   struct mk_err *err)
{
	const struct agg_instrument_spec *sp = &specs[i];
	const struct agg_params *p = &sp->params;
	size_t j;

	if (!has_nul(sp->symbol, sizeof(sp->symbol)) || sp->symbol[0] == '\0')
		return mk_err_set(err, MK_ECONFIG,
				  "instruments[%zu]: symbol is empty or longer "
				  "than %d bytes", i, AGG_SYMBOL_MAX - 1);
	for (j = 0; j < i; j++)
		if (strcmp(specs[j].symbol, sp->symbol) == 0)
			return mk_err_set(err, MK_ECONFIG,
					  "instruments[%zu]: symbol \"%s\" is "
					  "already instruments[%zu]",
					  i, sp->symbol, j);
#define BAD(...) mk_err_set(err, MK_ECONFIG, __VA_ARGS__)
	if (p->scale < 0 || p->scale > MK_DEC_MAX_SCALE)
		return BAD("instruments[%zu] (%s): scale %d is not in 0..%d",
			   i, sp->symbol, p->scale, MK_DEC_MAX_SCALE);
	if (sp->nlegs == 0 || sp->legs == NULL)
		return BAD("instruments[%zu] (%s): no legs", i, sp->symbol);
	if (sp->nlegs > AGG_MAX_LEGS)
		return BAD("instruments[%zu] (%s): %zu legs, at most %d",
			   i, sp->symbol, sp->nlegs, AGG_MAX_LEGS);
	if (p->min_sources == 0 || p->min_sources > sp->nlegs)
		return BAD("instruments[%zu] (%s): min_sources %u is not in "
			   "1..%zu (the number of legs)", i, sp->symbol,
			   (unsigned)p->min_sources, sp->nlegs);
	if (p->max_age_ms <= 0)
		return BAD("instruments[%zu] (%s): max_age_ms must be > 0",
			   i, sp->symbol);
	if (p->max_skew_ms < 0)
		return BAD("instruments[%zu] (%s): max_skew_ms must be >= 0",
			   i, sp->symbol);
	if (p->too_volatile_ratio == 0)
		return BAD("instruments[%zu] (%s): too_volatile_ratio must be "
			   ">= 1", i, sp->symbol);
	if (p->ema_window_ms <= 0 ||
	    p->ema_window_ms > AGG_STATS_MAX_WINDOW_MS ||
	    p->twap_window_ms <= 0 ||
	    p->twap_window_ms > AGG_STATS_MAX_WINDOW_MS ||
	    p->vol_halflife_ms <= 0 ||
	    p->vol_halflife_ms > AGG_STATS_MAX_WINDOW_MS)
		return BAD("instruments[%zu] (%s): ema_window_ms, "
			   "twap_window_ms and vol_halflife_ms must be in "
			   "1..%lld", i, sp->symbol,
			   (long long)AGG_STATS_MAX_WINDOW_MS);
	for (j = 0; j < sp->nlegs; j++) {
		const struct agg_leg_spec *l = &sp->legs[j];

		if (!has_nul(l->source, sizeof(l->source)) ||
		    l->source[0] == '\0')
			return BAD("instruments[%zu] (%s): legs[%zu].source is "
				   "empty or longer than %d bytes", i,
				   sp->symbol, j, AGG_SOURCE_MAX - 1);
		if (!has_nul(l->market, sizeof(l->market)))
			return BAD("instruments[%zu] (%s): legs[%zu].market is "
				   "longer than %d bytes", i, sp->symbol, j,
				   AGG_MARKET_MAX - 1);
		if (l->weight == 0)
			return BAD("instruments[%zu] (%s): legs[%zu].weight "
				   "must be > 0", i, sp->symbol, j);
		if (l->convert_via < -1 || (l->convert_via >= 0 &&
					    (size_t)l->convert_via >= n))
			return BAD("instruments[%zu] (%s): legs[%zu]."
				   "convert_via %d names no instrument", i, sp->symbol, j,
				   l->convert_via);
		if (l->convert_via >= 0 && (size_t)l->convert_via == i)
			return BAD("instruments[%zu] (%s): legs[%zu] converts "
				   "through its own instrument", i, sp->symbol,
				   j);
	}
#undef BAD
	return MK_OK;
}

/* Appends dependent i to instrument `via` unless already listed. */
static void
add_dependent(struct agg_inst *via, size_t i)
{
	size_t k;

	for (k = 0; k < via->ndependents; k++)
		if (via->dependents[k] == i)
			return;
	via->dependents[via->ndependents++] = i;
}

/* Writes "A -> B -> ... -> A" for a cycle among the instruments not yet
 * ordered (done[] false); each of them converts through another one. */
static enum mk_status
report_cycle(const struct agg_book *b, const bool *done, struct mk_err *err)
{
	char path[200];
	bool *seen;
	size_t start, u, len = 0;

	seen = calloc(b->n, sizeof(*seen));
	if (seen == NULL)
		return mk_err_set(err, MK_ECONFIG,
				  "instruments: conversion cycle");
	for (start = 0; done[start]; start++)
		;
	/* Walk from `start` along not-yet-ordered conversions until an
	 * instrument repeats; the walk from that instrument on is a cycle. */
	for (u = start; !seen[u];) {
		size_t next = u, j;

		seen[u] = true;
		for (j = 0; j < b->insts[u].nlegs; j++) {
			int v = b->insts[u].legs[j].spec.convert_via;

			if (v >= 0 && !done[v]) {
				next = (size_t)v;
				break;
			}
		}
		assert(next != u);
		u = next;
	}
	path[0] = '\0';
	start = u;
	do {
		size_t j;
		int w = snprintf(path + len, sizeof(path) - len, "%s -> ",
				 b->insts[u].symbol);

		if (w < 0 || (size_t)w >= sizeof(path) - len)
			break;
		len += (size_t)w;
		for (j = 0; j < b->insts[u].nlegs; j++) {
			int v = b->insts[u].legs[j].spec.convert_via;

			if (v >= 0 && !done[v]) {
				u = (size_t)v;
				break;
			}
		}
	} while (u != start);
	free(seen);
	return mk_err_set(err, MK_ECONFIG,
			  "instruments: conversion cycle %s%s", path,
			  b->insts[start].symbol);
}

/* Orders the instruments so that each comes after those it converts
 * through (Kahn's algorithm, ties in index order); MK_ECONFIG on a cycle. */
static enum mk_status
order_instruments(struct agg_book *b, struct mk_err *err)
{
	size_t *pending = NULL, i, k, head = 0, tail = 0;
	bool *done = NULL;
	enum mk_status st = MK_OK;

	pending = calloc(b->n, sizeof(*pending));
	done = calloc(b->n, sizeof(*done));
	if (pending == NULL || done == NULL) {
		st = mk_err_set(err, MK_ENOMEM, "out of memory");
		goto out;
	}
	for (i = 0; i < b->n; i++) {
		for (k = 0; k < b->insts[i].nlegs; k++)
			if (b->insts[i].legs[k].spec.convert_via >= 0)
				pending[i]++;
		if (pending[i] == 0)
			b->order[tail++] = i;
	}
	while (head < tail) {
		size_t via = b->order[head++];
		const struct agg_inst *in = &b->insts[via];

		done[via] = true;
		for (k = 0; k < in->ndependents; k++) {
			size_t di = in->dependents[k], j;
			const struct agg_inst *d = &b->insts[di];

			for (j = 0; j < d->nlegs; j++)
				if (d->legs[j].spec.convert_via >= 0 &&
				    (size_t)d->legs[j].spec.convert_via == via)
					pending[di]--;
			if (pending[di] == 0)
				b->order[tail++] = di;
		}
	}
	if (tail < b->n)
		st = report_cycle(b, done, err);
out:
	free(pending);
	free(done);
	return st;
}

static void
inst_clear(struct agg_inst *in)
{
	free(in->legs);
	free(in->dependents);
	agg_mark_release(in->mark);
}

void
agg_book_destroy(struct agg_book *book)
{
	size_t i;

	if (book == NULL)
		return;
	if (book->insts != NULL)
		for (i = 0; i < book->n; i++)
			inst_clear(&book->insts[i]);
	free(book->insts);
	free(book->order);
	free(book->leg_base);
	free(book->votes);
	free(book->prices);
	free(book->evals);
	agg_pub_clear(&book->pub);
	free(book);
}

static enum mk_status publish(struct agg_book *b, int64_t now_ms);
static enum mk_status run(struct agg_book *b, int64_t now_ms);

enum mk_status
agg_book_create(const struct agg_instrument_spec *specs, size_t n,
		struct agg_book **out, struct mk_err *err)
{
	struct agg_book *b = NULL;
	size_t i, j, max_legs = 0;
	enum mk_status st;

	*out = NULL;
	if (n == 0 || specs == NULL)
		return mk_err_set(err, MK_ECONFIG, "instruments: none given");
	for (i = 0; i < n; i++) {
		st = check_spec(specs, n, i, err);
		if (st != MK_OK)
			return st;
		if (specs[i].nlegs > max_legs)
			max_legs = specs[i].nlegs;
	}

	b = calloc(1, sizeof(*b));
	if (b == NULL)
		return mk_err_set(err, MK_ENOMEM, "out of memory");
	if (agg_pub_init(&b->pub) != MK_OK) {
		free(b);
		return mk_err_set(err, MK_EIO, "cannot create a mutex");
	}
	b->n = n;
	b->insts = calloc(n, sizeof(*b->insts));
	b->order = calloc(n, sizeof(*b->order));
	b->leg_base = calloc(n, sizeof(*b->leg_base));
	b->votes = calloc(3 * max_legs, sizeof(*b->votes));
	b->prices = calloc(max_legs, sizeof(*b->prices));
	b->evals = calloc(max_legs, sizeof(*b->evals));
	if (b->insts == NULL || b->order == NULL || b->leg_base == NULL ||
	    b->votes == NULL || b->prices == NULL || b->evals == NULL)
		goto nomem;
	for (i = 0; i < n; i++) {
		struct agg_inst *in = &b->insts[i];

		memcpy(in->symbol, specs[i].symbol, sizeof(in->symbol));
		in->p = specs[i].params;
		in->nlegs = specs[i].nlegs;
		in->legs = calloc(in->nlegs, sizeof(*in->legs));
		if (in->legs == NULL)
			goto nomem;
		for (j = 0; j < in->nlegs; j++) {
			int v = specs[i].legs[j].convert_via;

			in->legs[j].spec = specs[i].legs[j];
			in->legs[j].source_rank = (uint32_t)j;
			for (size_t k = 0; k < j; k++) {
				if (strcmp(specs[i].legs[k].source,
					   specs[i].legs[j].source) == 0) {
					in->legs[j].source_rank =
						in->legs[k].source_rank;
					break;
				}
			}
			/* count legs converting through v: an upper bound on
			 * its dependents */
			if (v >= 0)
				b->insts[v].ndependents++;
		}
		b->leg_base[i] = b->total_legs;
		b->total_legs += in->nlegs;
		agg_ema_init(&in->ema);
		agg_twap_init(&in->twap, in->p.twap_window_ms);
		agg_vol_init(&in->vol);
		in->dirty = true;
	}
	for (i = 0; i < n; i++) {
		struct agg_inst *in = &b->insts[i];

		if (in->ndependents > 0) {
			in->dependents = calloc(in->ndependents,
						sizeof(*in->dependents));
			if (in->dependents == NULL)
				goto nomem;
			in->ndependents = 0;
		}
	}
	for (i = 0; i < n; i++)
		for (j = 0; j < b->insts[i].nlegs; j++) {
			int v = b->insts[i].legs[j].spec.convert_via;

			if (v >= 0)
				add_dependent(&b->insts[v], i);
		}
	st = order_instruments(b, err);
	if (st != MK_OK)
		goto fail;
	st = run(b, 0);
	if (st != MK_OK) {
		mk_err_set(err, st, "out of memory");
		goto fail;
	}
	*out = b;
	return MK_OK;
nomem:
	st = mk_err_set(err, MK_ENOMEM, "out of memory");
fail:
	agg_book_destroy(b);
	return st;
}

size_t
agg_book_count(const struct agg_book *book)
{
	return book->n;
}

enum mk_status
agg_book_find(const struct agg_book *book, const char *symbol, size_t *inst)
{
	size_t i;

	for (i = 0; i < book->n; i++)
		if (strcmp(book->insts[i].symbol, symbol) == 0) {
			*inst = i;
			return MK_OK;
		}
	return MK_ENOTFOUND;
}

enum mk_status
agg_book_leg_id(const struct agg_book *book, size_t inst, size_t leg,
		size_t *id)
{
	if (inst >= book->n || leg >= book->insts[inst].nlegs)
		return MK_EINVAL;
	*id = book->leg_base[inst] + leg;
	return MK_OK;
}

size_t
agg_book_find_legs(const struct agg_book *book, const char *source,
		   const char *market, size_t *ids, size_t cap)
{
	size_t i, j, count = 0;

	for (i = 0; i < book->n; i++)
		for (j = 0; j < book->insts[i].nlegs; j++) {
			const struct agg_leg_spec *l =
				&book->insts[i].legs[j].spec;

			if (strcmp(l->source, source) != 0 ||
			    strcmp(l->market, market) != 0)
				continue;
			if (count < cap)
				ids[count] = book->leg_base[i] + j;
			count++;
		}
	return count;
}

/* The instrument index of leg id `id` into *inst and the leg into *leg;
 * false when out of range. O(log n). */
static bool
locate(const struct agg_book *b, size_t id, size_t *inst, struct agg_leg **leg)
{
	size_t lo = 0, hi = b->n;

	if (id >= b->total_legs)
		return false;
	/* last instrument whose leg_base <= id */
	while (hi - lo > 1) {
		size_t mid = lo + (hi - lo) / 2;

		if (b->leg_base[mid] <= id)
			lo = mid;
		else
			hi = mid;
	}
	*inst = lo;
	*leg = &b->insts[lo].legs[id - b->leg_base[lo]];
	return true;
}

/* Builds and publishes a snapshot of the current marks. */
static enum mk_status
publish(struct agg_book *b, int64_t now_ms)
{
	struct agg_snapshot *s;
	size_t i;

	s = agg_snapshot_create(b->n);
	if (s == NULL)
		return MK_ENOMEM;
	for (i = 0; i < b->n; i++)
		s->marks[i] = agg_mark_acquire(b->insts[i].mark);
	s->version = ++b->version;
	s->at_ms = now_ms;
	agg_pub_publish(&b->pub, s);
	return MK_OK;
}

/* Re-evaluates the dirty instruments in conversion order (an evaluated
 * instrument makes its dependents dirty), then publishes. */
static enum mk_status
run(struct agg_book *b, int64_t now_ms)
{
	size_t k, d;
	enum mk_status st;

	for (k = 0; k < b->n; k++) {
		struct agg_inst *in = &b->insts[b->order[k]];

		if (!in->dirty)
			continue;
		st = agg_eval_instrument(b, b->order[k], now_ms);
		if (st != MK_OK)
			return st;
		in->dirty = false;
		for (d = 0; d < in->ndependents; d++)
			b->insts[in->dependents[d]].dirty = true;
	}
	return publish(b, now_ms);
}

static bool
time_ok(int64_t now_ms)
{
	return now_ms >= 0 && now_ms <= AGG_MAX_TIME_MS;
}

static void
record_quote(struct agg_book *b, size_t inst, struct agg_leg *lg,
	     const struct agg_quote *q, int64_t now_ms)
{
	lg->has_quote = true;
	lg->q = *q;
	lg->recv_ms = now_ms;
	lg->qver++;
	lg->bad_data = false;
	b->insts[inst].dirty = true;
}

enum mk_status
agg_book_quote(struct agg_book *book, size_t id, const struct agg_quote *q,
	       int64_t now_ms)
{
	return agg_book_quotes(book, &id, q, 1, now_ms);
}

enum mk_status
agg_book_quotes(struct agg_book *book, const size_t *ids,
		const struct agg_quote *qs, size_t n, int64_t now_ms)
{
	struct agg_leg *lg;
	size_t k, inst;

	if ((n > 0 && (ids == NULL || qs == NULL)) || !time_ok(now_ms))
		return MK_EINVAL;
	for (k = 0; k < n; k++)
		if (!locate(book, ids[k], &inst, &lg))
			return MK_EINVAL;
	for (k = 0; k < n; k++) {
		locate(book, ids[k], &inst, &lg);
		record_quote(book, inst, lg, &qs[k], now_ms);
	}
	return run(book, now_ms);
}

enum mk_status
agg_book_error(struct agg_book *book, size_t id, enum agg_fetch_error kind,
	       const char *text, int64_t now_ms)
{
	struct agg_leg *lg;
	size_t inst, len;

	if (!locate(book, id, &inst, &lg) || !time_ok(now_ms))
		return MK_EINVAL;
	if (text == NULL)
		text = "";
	len = strlen(text);
	if (len >= sizeof(lg->error)) {
		len = sizeof(lg->error) - 1;
		/* do not cut a UTF-8 sequence in two */
		while (len > 0 && ((unsigned char)text[len] & 0xC0) == 0x80)
			len--;
	}
	memcpy(lg->error, text, len);
	lg->error[len] = '\0';
	lg->error_at_ms = now_ms;
	lg->error_bad_data = kind == AGG_FETCH_BAD_DATA;
	if (kind == AGG_FETCH_BAD_DATA)
		lg->bad_data = true;
	book->insts[inst].dirty = true;
	return run(book, now_ms);
}

enum mk_status
agg_book_tick(struct agg_book *book, int64_t now_ms)
{
	size_t i;

	if (!time_ok(now_ms))
		return MK_EINVAL;
	for (i = 0; i < book->n; i++)
		book->insts[i].dirty = true;
	return run(book, now_ms);
}

const struct agg_snapshot *
agg_book_acquire(struct agg_book *book)
{
	return agg_pub_acquire(&book->pub);
}

const struct agg_mark *
agg_book_mark(const struct agg_book *book, size_t inst)
{
	if (inst >= book->n)
		return NULL;
	return book->insts[inst].mark;
}
