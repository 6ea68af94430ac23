/*
 * position.c - validation of positions, bracket tables and margin
 * parameters; derivation of the maintenance amounts (see position.h).
 */
#include "config.h"

#include "margin/position.h"

void
margin_params_default(struct margin_params *p)
{
	p->price_scale = 8;
	p->amount_scale = 8;
	p->ratio_scale = 8;
	p->buffer_bps = 200;
	p->confirm_marks = 3;
	p->confirm_ms = 3000;
}

static bool
scale_ok(int s)
{
	return s >= 0 && s <= MK_DEC_MAX_SCALE;
}

enum mk_status
margin_params_check(const struct margin_params *p, struct mk_err *err)
{
	if (!scale_ok(p->price_scale))
		return mk_err_set(err, MK_EINVAL,
				  "price_scale: must be in 0..18");
	if (!scale_ok(p->amount_scale))
		return mk_err_set(err, MK_EINVAL,
				  "amount_scale: must be in 0..18");
	if (!scale_ok(p->ratio_scale))
		return mk_err_set(err, MK_EINVAL,
				  "ratio_scale: must be in 0..18");
	if (p->buffer_bps > 10000)
		return mk_err_set(err, MK_EINVAL,
				  "buffer_bps: must be at most 10000");
	if (p->confirm_marks < 1)
		return mk_err_set(err, MK_EINVAL,
				  "confirm_marks: must be at least 1");
	if (p->confirm_ms < 0)
		return mk_err_set(err, MK_EINVAL,
				  "confirm_ms: must not be negative");
	return MK_OK;
}

static const char *
fmt(struct mk_dec d, char *buf)
{
	if (mk_dec_format(d, buf, MK_DEC_STRLEN) == 0)
		return "?";
	return buf;
}

/* The maintenance amount that keeps MM continuous at brackets[k].floor. */
static enum mk_status
derive_cum(const struct margin_brackets *t, size_t k, struct mk_dec *out,
	   struct mk_err *err)
{
	struct mk_dec diff, step;
	const struct margin_bracket *b = &t->b[k], *prev = &t->b[k - 1];
	int sc = b->floor.scale + (b->mmr.scale > prev->mmr.scale
				   ? b->mmr.scale : prev->mmr.scale);
	enum mk_status st;

	if (sc > MK_DEC_MAX_SCALE)
		sc = MK_DEC_MAX_SCALE;
	st = mk_dec_sub(b->mmr, prev->mmr, &diff);
	if (st == MK_OK)
		st = mk_dec_mul(b->floor, diff, sc, MK_ROUND_EXACT, &step);
	if (st == MK_OK)
		st = mk_dec_add(prev->cum, step, out);
	if (st != MK_OK)
		return mk_err_set(err, st == MK_EINEXACT ? MK_ERANGE : st,
				  "brackets[%zu].cum: the continuous value "
				  "cannot be represented (%s)", k,
				  mk_strstatus(st));
	return MK_OK;
}

enum mk_status
margin_brackets_prepare(struct margin_brackets *t, struct mk_err *err)
{
	char a[MK_DEC_STRLEN], b[MK_DEC_STRLEN];
	static const struct mk_dec one = MK_DEC(1, 0);
	enum mk_status st;

	t->ready = false;
	if (t->n == 0)
		return mk_err_set(err, MK_EINVAL,
				  "brackets: at least one bracket is needed");
	if (t->n > MARGIN_MAX_BRACKETS)
		return mk_err_set(err, MK_EINVAL,
				  "brackets: at most %d brackets",
				  MARGIN_MAX_BRACKETS);
	for (size_t k = 0; k < t->n; k++) {
		struct margin_bracket *br = &t->b[k];

		if (k == 0 && !mk_dec_is_zero(br->floor))
			return mk_err_set(err, MK_EINVAL,
					  "brackets[0].floor: must be 0, not %s",
					  fmt(br->floor, a));
		if (k > 0 && mk_dec_cmp(br->floor, t->b[k - 1].cap) != 0)
			return mk_err_set(err, MK_EINVAL,
					  "brackets[%zu].floor: must equal "
					  "brackets[%zu].cap (%s), not %s", k,
					  k - 1, fmt(t->b[k - 1].cap, a),
					  fmt(br->floor, b));
		if (!br->has_cap && k + 1 < t->n)
			return mk_err_set(err, MK_EINVAL,
					  "brackets[%zu].cap: required on every "
					  "bracket but the last", k);
		if (br->has_cap && mk_dec_cmp(br->cap, br->floor) <= 0)
			return mk_err_set(err, MK_EINVAL,
					  "brackets[%zu].cap: must be above "
					  "its floor (%s)", k,
					  fmt(br->floor, a));
		if (mk_dec_is_neg(br->mmr) || mk_dec_cmp(br->mmr, one) >= 0)
			return mk_err_set(err, MK_EINVAL,
					  "brackets[%zu].mmr: must be >= 0 and "
					  "< 1, not %s", k, fmt(br->mmr, a));
	}
	for (size_t k = 0; k < t->n; k++) {
		struct margin_bracket *br = &t->b[k];
		struct mk_dec want = MK_DEC(0, 0);

		if (k > 0) {
			st = derive_cum(t, k, &want, err);
			if (st != MK_OK)
				return st;
		}
		if (br->has_cum && mk_dec_cmp(br->cum, want) != 0)
			return mk_err_set(err, MK_EINVAL,
					  "brackets[%zu].cum: %s breaks the "
					  "continuity of the maintenance "
					  "margin; expected %s", k,
					  fmt(br->cum, a), fmt(want, b));
		if (!br->has_cum) {
			br->cum = want;
			br->has_cum = true;
		}
	}
	t->ready = true;
	return MK_OK;
}

enum mk_status
margin_position_check(const struct margin_position *p, struct mk_err *err)
{
	if (p->kind != MARGIN_LINEAR && p->kind != MARGIN_INVERSE)
		return mk_err_set(err, MK_EINVAL,
				  "kind: must be linear or inverse");
	if (p->side != MARGIN_LONG && p->side != MARGIN_SHORT)
		return mk_err_set(err, MK_EINVAL,
				  "side: must be long or short");
	if (!mk_dec_is_pos(p->size))
		return mk_err_set(err, MK_EINVAL, "size: must be positive");
	if (!mk_dec_is_pos(p->entry_price))
		return mk_err_set(err, MK_EINVAL,
				  "entry_price: must be positive");
	if (mk_dec_is_neg(p->collateral))
		return mk_err_set(err, MK_EINVAL,
				  "collateral: must not be negative");
	if (p->kind == MARGIN_INVERSE && !mk_dec_is_pos(p->contract_size))
		return mk_err_set(err, MK_EINVAL,
				  "contract_size: must be positive for an "
				  "inverse position");
	if (p->has_leverage && !mk_dec_is_pos(p->leverage))
		return mk_err_set(err, MK_EINVAL,
				  "leverage: must be positive");
	if (p->brackets == NULL || !p->brackets->ready)
		return mk_err_set(err, MK_EINVAL,
				  "brackets: missing or not prepared");
	return MK_OK;
}

const char *
margin_kind_name(enum margin_kind k)
{
	switch (k) {
	case MARGIN_LINEAR:
		return "linear";
	case MARGIN_INVERSE:
		return "inverse";
	}
	return "?";
}

const char *
margin_side_name(enum margin_side s)
{
	switch (s) {
	case MARGIN_LONG:
		return "long";
	case MARGIN_SHORT:
		return "short";
	}
	return "?";
}
