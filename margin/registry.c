/*
 * registry.c - the in-memory position registry (see registry.h).
 *
 * Layout:
 *   - a slab of compact records (struct rec) in fixed chunks of
 *     CHUNK_RECS, addressed by a uint32 slot; freed slots form a list;
 *   - an open-addressing id table (linear probing, backward-shift delete)
 *     of uint32 slots, hashed by FNV-1a over the id;
 *   - per instrument: one margin_pindex per side keyed by watch price, the
 *     hot set (positions every usable tick evaluates: see "the hot sets";
 *     an array with each record's position in it, swap-remove), its
 *     capacity kept at least the instrument's position count so a tick
 *     never allocates;
 *   - bracket tables (struct reg_table), each with its buffered twin, in
 *     one array indexed by a uint32; custom ones are interned per
 *     instrument and freed when their last position and view let go.
 */
#include "config.h"

#include "margin/registry.h"

#include <assert.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "margin/math.h"
#include "margin/pindex.h"

#define CHUNK_SHIFT 12u
#define CHUNK_RECS (1u << CHUNK_SHIFT)
#define NONE UINT32_MAX
#define ID_INLINE 40u
#define HOT_PREFETCH 8u

#if defined(__GNUC__)
#define PREFETCH(p) __builtin_prefetch((p), 1)
#else
#define PREFETCH(p) ((void)(p))
#endif

/* Mantissas of a position, in this order. */
enum { F_SIZE, F_CSIZE, F_ENTRY, F_COLL, F_LEV, F_COUNT };

#define B_LIVE 0x01u
#define B_SHORT 0x02u
#define B_INVERSE 0x04u
#define B_LEVERAGE 0x08u
/* Threshold bits (see "thresholds" below). */
#define T_FAST 0x10u                 /* the thresholds decide the flags */
#define T_W 0x20u                    /* a buffered root exists */
#define T_L 0x40u                    /* a liquidation price exists */
#define T_B 0x80u                    /* a bankruptcy price exists */
#define T_MASK (T_FAST | T_W | T_L | T_B)

struct rec {
	int64_t m[F_COUNT];          /* mantissas */
	struct margin_tracker trk;
	int64_t watch;
	int64_t liq;                 /* liquidation price (T_L), half-even at
				      * the price scale */
	int64_t bkr;                 /* bankruptcy price (T_B), likewise */
	uint32_t table;              /* index into reg->tables */
	uint32_t aux;                /* place in the hot set (NONE), or
				      * the next free slot when not live */
	uint32_t epoch;              /* the instrument's tick that visited it */
	uint16_t inst;
	uint8_t sc[F_COUNT];         /* scales */
	uint8_t bits;
	uint8_t idlen;
	union {
		char in[ID_INLINE];  /* idlen < ID_INLINE, NUL-terminated */
		char *heap;          /* longer ids */
	} id;
};

/* The memory budget of a position (registry.h): keep the record compact. */
_Static_assert(sizeof(struct rec) <= 160, "struct rec grew past 160 bytes");

struct reg_table {
	atomic_uint refs;            /* the registry's one + one per view */
	uint32_t users;              /* positions using it */
	uint32_t inst;
	bool custom;
	bool has_buffered;
	uint64_t hash;
	struct margin_brackets t;
	struct margin_brackets buffered; /* mmr and cum times 1 + buffer */
};

/* The tick's prices at the price scale, each floored and ceiled. */
struct tick_px {
	bool fast;                   /* all fit, and the lower edge is > 0 */
	int64_t lo_f, lo_c;          /* mark - conf */
	int64_t mk_f, mk_c;          /* mark */
	int64_t hi_f, hi_c;          /* mark + conf */
};

struct reg_inst {
	char symbol[MARGIN_REGISTRY_MAX_SYMBOL];
	struct margin_params prm;
	uint32_t def_table;          /* NONE: positions bring their own */
	struct margin_pindex *ix[2]; /* longs, shorts */
	uint32_t *hot;            /* the hot set: slots evaluated on every
				      * usable tick (see hot_wanted) */
	uint32_t nhot;
	uint32_t hot_cap;         /* >= count */
	uint32_t epoch;
	bool has_tick;
	struct margin_tick tick;     /* the last one */
	int64_t held_since_ms;       /* first held tick of the current held
				      * stretch; 0 after a usable tick */
	bool has_adv;
	int64_t adv_lo;              /* longs' adverse price of the last usable
				      * tick, ceiled at the price scale
				      * (INT64_MAX when it does not fit) */
	int64_t adv_hi;              /* shorts', floored (INT64_MIN) */
	struct tick_px px;           /* the last tick's prices */
	size_t count;
	size_t by_state[MARGIN_STATE_COUNT];  /* tracked states */
};

struct margin_registry {
	struct reg_inst *inst;
	size_t ninst;
	uint32_t *by_symbol;         /* instrument indexes sorted by symbol */

	struct rec **chunks;
	size_t nchunks, chunks_cap;
	uint32_t nslots;             /* slots ever handed out */
	uint32_t free_head;
	size_t live;
	size_t heap_id_bytes;

	uint32_t *ht;                /* slots, NONE when empty */
	size_t ht_cap;               /* power of two (or 0) */

	struct reg_table **tables;
	size_t ntables;              /* used entries of tables[] */
	size_t tables_cap;
	size_t ncustom;

	size_t reported[MARGIN_STATE_COUNT];  /* by reported state */
};

/* ---- small helpers ---- */

static struct rec *
rec_at(const struct margin_registry *reg, uint32_t slot)
{
	return &reg->chunks[slot >> CHUNK_SHIFT][slot & (CHUNK_RECS - 1u)];
}

static const char *
rec_id(const struct rec *r)
{
	return r->idlen < ID_INLINE ? r->id.in : r->id.heap;
}

static int
side_ix(const struct rec *r)
{
	return (r->bits & B_SHORT) ? 1 : 0;
}

static uint64_t
hash_bytes(const void *p, size_t n, uint64_t h)
{
	const unsigned char *s = p;

	for (size_t i = 0; i < n; i++) {
		h ^= s[i];
		h *= UINT64_C(0x100000001b3);
	}
	return h;
}

#define FNV_BASIS UINT64_C(0xcbf29ce484222325)

static bool
inst_held(const struct reg_inst *in)
{
	return !in->has_tick || !margin_tick_usable(&in->tick);
}

/* One more / one less position of tracked state s on instrument in. */
static void
count_inc(struct margin_registry *reg, struct reg_inst *in,
	  enum margin_state s)
{
	in->by_state[s]++;
	reg->reported[inst_held(in) ? MARGIN_STATE_HELD : s]++;
}

static void
count_dec(struct margin_registry *reg, struct reg_inst *in,
	  enum margin_state s)
{
	assert(in->by_state[s] > 0);
	in->by_state[s]--;
	reg->reported[inst_held(in) ? MARGIN_STATE_HELD : s]--;
}

/* Moves the instrument's positions between "held" and their tracked
 * states in the reported counts. */
static void
count_flip(struct margin_registry *reg, const struct reg_inst *in,
	   bool now_held)
{
	for (size_t s = 0; s < MARGIN_STATE_COUNT; s++) {
		size_t n = in->by_state[s];

		if (now_held) {
			reg->reported[s] -= n;
			reg->reported[MARGIN_STATE_HELD] += n;
		} else {
			reg->reported[MARGIN_STATE_HELD] -= n;
			reg->reported[s] += n;
		}
	}
}

static void
table_unref(struct reg_table *t)
{
	if (t != NULL && atomic_fetch_sub(&t->refs, 1u) == 1u)
		free(t);
}

static void
rec_position(const struct margin_registry *reg, const struct rec *r,
	     struct margin_position *p)
{
	memset(p, 0, sizeof(*p));
	p->kind = (r->bits & B_INVERSE) ? MARGIN_INVERSE : MARGIN_LINEAR;
	p->side = (r->bits & B_SHORT) ? MARGIN_SHORT : MARGIN_LONG;
	p->size = MK_DEC(r->m[F_SIZE], r->sc[F_SIZE]);
	p->contract_size = MK_DEC(r->m[F_CSIZE], r->sc[F_CSIZE]);
	p->entry_price = MK_DEC(r->m[F_ENTRY], r->sc[F_ENTRY]);
	p->collateral = MK_DEC(r->m[F_COLL], r->sc[F_COLL]);
	p->has_leverage = (r->bits & B_LEVERAGE) != 0;
	p->leverage = MK_DEC(r->m[F_LEV], r->sc[F_LEV]);
	p->brackets = &reg->tables[r->table]->t;
}

static void
rec_set_position(struct rec *r, const struct margin_position *p)
{
	const struct mk_dec v[F_COUNT] = {
		p->size, p->contract_size, p->entry_price, p->collateral,
		p->leverage,
	};

	for (int i = 0; i < F_COUNT; i++) {
		r->m[i] = v[i].m;
		r->sc[i] = (uint8_t)v[i].scale;
	}
	if (p->kind != MARGIN_INVERSE) {
		r->m[F_CSIZE] = 0;
		r->sc[F_CSIZE] = 0;
	}
	if (!p->has_leverage) {
		r->m[F_LEV] = 0;
		r->sc[F_LEV] = 0;
	}
	r->bits = (uint8_t)(B_LIVE |
			    (p->side == MARGIN_SHORT ? B_SHORT : 0u) |
			    (p->kind == MARGIN_INVERSE ? B_INVERSE : 0u) |
			    (p->has_leverage ? B_LEVERAGE : 0u));
}

/* ---- bracket tables ---- */

static uint64_t
table_hash(size_t inst, const struct margin_brackets *t)
{
	uint64_t h = hash_bytes(&inst, sizeof(inst), FNV_BASIS);

	h = hash_bytes(&t->n, sizeof(t->n), h);
	for (size_t i = 0; i < t->n; i++) {
		const struct margin_bracket *b = &t->b[i];
		const int64_t v[] = {
			b->floor.m, b->floor.scale, b->cap.m, b->cap.scale,
			b->mmr.m, b->mmr.scale, b->cum.m, b->cum.scale,
			b->has_cap,
		};

		h = hash_bytes(v, sizeof(v), h);
	}
	return h;
}

static bool
dec_same(struct mk_dec a, struct mk_dec b)
{
	return a.m == b.m && a.scale == b.scale;
}

static bool
table_same(const struct margin_brackets *a, const struct margin_brackets *b)
{
	if (a->n != b->n)
		return false;
	for (size_t i = 0; i < a->n; i++) {
		const struct margin_bracket *x = &a->b[i], *y = &b->b[i];

		if (!dec_same(x->floor, y->floor) || x->has_cap != y->has_cap ||
		    (x->has_cap && !dec_same(x->cap, y->cap)) ||
		    !dec_same(x->mmr, y->mmr) || !dec_same(x->cum, y->cum))
			return false;
	}
	return true;
}

/* The table with mmr and cum times (10000 + bps) / 10000, exactly; false
 * when a value does not fit or an mmr reaches 1. */
static bool
make_buffered(const struct margin_brackets *t, uint32_t bps,
	      struct margin_brackets *out)
{
	struct mk_dec f = MK_DEC(10000 + (int64_t)bps, 4);

	memset(out, 0, sizeof(*out));
	out->n = t->n;
	for (size_t i = 0; i < t->n; i++) {
		const struct margin_bracket *b = &t->b[i];
		struct margin_bracket *o = &out->b[i];
		int ms = b->mmr.scale + 4, cs = b->cum.scale + 4;

		*o = *b;
		if (ms > MK_DEC_MAX_SCALE)
			ms = MK_DEC_MAX_SCALE;
		if (cs > MK_DEC_MAX_SCALE)
			cs = MK_DEC_MAX_SCALE;
		if (mk_dec_mul(b->mmr, f, ms, MK_ROUND_EXACT, &o->mmr) != MK_OK ||
		    mk_dec_mul(b->cum, f, cs, MK_ROUND_EXACT, &o->cum) != MK_OK)
			return false;
		o->has_cum = true;
	}
	return margin_brackets_prepare(out, NULL) == MK_OK;
}

/* A new table (one registry reference, no users) at a free index. */
static enum mk_status
table_add(struct margin_registry *reg, size_t inst,
	  const struct margin_brackets *t, bool custom, uint32_t *idx)
{
	struct reg_table *tb;
	size_t i;

	for (i = 0; i < reg->ntables; i++)
		if (reg->tables[i] == NULL)
			break;
	if (i == reg->ntables && reg->ntables == reg->tables_cap) {
		size_t cap = reg->tables_cap ? reg->tables_cap * 2 : 16;
		struct reg_table **nt = realloc(reg->tables, cap * sizeof(*nt));

		if (nt == NULL)
			return MK_ENOMEM;
		reg->tables = nt;
		reg->tables_cap = cap;
	}
	tb = calloc(1, sizeof(*tb));
	if (tb == NULL)
		return MK_ENOMEM;
	atomic_init(&tb->refs, 1u);
	tb->inst = (uint32_t)inst;
	tb->custom = custom;
	tb->t = *t;
	tb->hash = table_hash(inst, t);
	tb->has_buffered = make_buffered(t, reg->inst[inst].prm.buffer_bps,
					 &tb->buffered);
	if (i == reg->ntables)
		reg->ntables++;
	reg->tables[i] = tb;
	if (custom)
		reg->ncustom++;
	*idx = (uint32_t)i;
	return MK_OK;
}

static void
table_drop(struct margin_registry *reg, uint32_t idx)
{
	struct reg_table *tb = reg->tables[idx];

	reg->tables[idx] = NULL;
	if (tb->custom)
		reg->ncustom--;
	table_unref(tb);
}

/* The table already held for brackets t on instrument inst (the default
 * one, or an interned custom one): true and *idx, else false. */
static bool
table_lookup(const struct margin_registry *reg, size_t inst,
	     const struct margin_brackets *t, uint32_t *idx)
{
	const struct reg_inst *in = &reg->inst[inst];
	uint64_t h;

	if (in->def_table != NONE &&
	    (t == &reg->tables[in->def_table]->t ||
	     table_same(t, &reg->tables[in->def_table]->t))) {
		*idx = in->def_table;
		return true;
	}
	h = table_hash(inst, t);
	for (size_t i = 0; i < reg->ntables; i++) {
		const struct reg_table *tb = reg->tables[i];

		if (tb != NULL && tb->custom && tb->hash == h &&
		    tb->inst == inst && table_same(&tb->t, t)) {
			*idx = (uint32_t)i;
			return true;
		}
	}
	return false;
}

/* The table a position of instrument inst uses for brackets t: the
 * default one, or an interned custom one (created with no users). */
static enum mk_status
table_find(struct margin_registry *reg, size_t inst,
	   const struct margin_brackets *t, uint32_t *idx,
	   struct mk_err *err)
{
	if (table_lookup(reg, inst, t, idx))
		return MK_OK;
	if (reg->ncustom >= MARGIN_REGISTRY_MAX_TABLES)
		return mk_err_set(err, MK_ETOOBIG,
				  "brackets: too many distinct bracket tables"
				  " (at most %u)", MARGIN_REGISTRY_MAX_TABLES);
	if (table_add(reg, inst, t, true, idx) != MK_OK)
		return mk_err_set(err, MK_ENOMEM, "out of memory");
	return MK_OK;
}

/* Drops a custom table that no position uses. */
static void
table_settle(struct margin_registry *reg, uint32_t idx)
{
	struct reg_table *tb = reg->tables[idx];

	if (tb != NULL && tb->custom && tb->users == 0)
		table_drop(reg, idx);
}

/* ---- thresholds ---- */

/*
 * A position's thresholds at the instrument's price scale. Its verdict
 * flags (margin_verdict) compare three prices against three exact roots,
 * each of a function of the price that is strictly monotone (brackets are
 * continuous and every mmr is below 1: margin/liqprice.c):
 *   W  MB = MM * (1 + buffer)   AT_RISK at the adverse edge;
 *   L  MB = MM                  *_BREACH at the mark and both edges;
 *   B  MB = 0                   *_BANKRUPT likewise;
 * a long is flagged strictly below W and L and at or below B, a short
 * strictly above W and L and at or above B; a root that does not exist
 * (at any positive price) never flags. Each root is kept rounded
 * half-even, so the exact root lies within half a unit of the key: a
 * price more than a unit away from the key is decided by comparing
 * integers, and one closer is left to margin_verdict. T_FAST is set only
 * when every root is known that way; otherwise the position is decided by
 * margin_verdict on every tick (and stays in the hot set).
 *
 * The watch price is the W key moved one unit outwards (up for a long,
 * down for a short), so that it lies beyond the exact root; INT64_MAX /
 * INT64_MIN for "always a candidate" (long / short) and the opposite for
 * "never" (registry.h).
 */
struct thr {
	int64_t watch;
	int64_t liq;
	int64_t bkr;
	uint8_t bits;                /* T_* */
};

static void
thresholds(const struct reg_inst *in, const struct reg_table *tb,
	   const struct margin_position *p, struct thr *out)
{
	bool lng = p->side == MARGIN_LONG;
	int ps = in->prm.price_scale;
	struct margin_position q = *p;
	struct margin_liq liq;
	struct mk_dec w;

	memset(out, 0, sizeof(*out));
	out->watch = lng ? INT64_MAX : INT64_MIN;        /* always */
	if (!tb->has_buffered)
		return;
	q.brackets = &tb->buffered;
	if (margin_liquidation(&q, &in->prm, &liq, NULL) != MK_OK)
		return;
	if (!liq.has_price) {
		/* A root too large for the scale: always a candidate for a
		 * long, never for a short. */
		out->watch = liq.out_of_range ? INT64_MAX
			     : lng            ? INT64_MIN
					      : INT64_MAX;
		if (liq.out_of_range)
			return;
	} else {
		if (mk_dec_rescale(liq.price, ps,
				   lng ? MK_ROUND_CEIL : MK_ROUND_FLOOR,
				   &w) != MK_OK) {
			out->watch = INT64_MAX;
			return;
		}
		if (lng)
			out->watch = w.m == INT64_MAX ? w.m : w.m + 1;
		else
			out->watch = w.m == INT64_MIN ? w.m : w.m - 1;
		if (liq.price.scale != ps || w.m == INT64_MAX ||
		    w.m == INT64_MIN)
			return;
		out->bits |= T_W;
	}
	if (margin_liquidation(p, &in->prm, &liq, NULL) != MK_OK ||
	    liq.out_of_range || liq.bankruptcy_out_of_range ||
	    (liq.has_price && liq.price.scale != ps) ||
	    (liq.has_bankruptcy && liq.bankruptcy.scale != ps))
		return;
	if (liq.has_price) {
		out->liq = liq.price.m;
		out->bits |= T_L;
	}
	if (liq.has_bankruptcy) {
		out->bkr = liq.bankruptcy.m;
		out->bits |= T_B;
	}
	out->bits |= T_FAST;
}

static void
rec_set_thr(struct rec *r, const struct thr *t)
{
	r->watch = t->watch;
	r->liq = t->liq;
	r->bkr = t->bkr;
	r->bits = (uint8_t)((r->bits & ~T_MASK) | t->bits);
}

static bool
floor_ceil(struct mk_dec a, int scale, int64_t *f, int64_t *c)
{
	struct mk_dec r;

	if (mk_dec_rescale(a, scale, MK_ROUND_FLOOR, &r) != MK_OK)
		return false;
	*f = r.m;
	if (mk_dec_rescale(a, scale, MK_ROUND_CEIL, &r) != MK_OK)
		return false;
	*c = r.m;
	return true;
}

static void
tick_prices(const struct reg_inst *in, const struct margin_tick *tick,
	    struct tick_px *x)
{
	int ps = in->prm.price_scale;
	struct mk_dec lo, hi;

	memset(x, 0, sizeof(*x));
	x->lo_f = x->mk_f = x->hi_f = INT64_MIN;
	x->lo_c = x->mk_c = x->hi_c = INT64_MAX;
	if (!margin_tick_usable(tick) ||
	    mk_dec_sub(tick->price, tick->conf, &lo) != MK_OK ||
	    mk_dec_add(tick->price, tick->conf, &hi) != MK_OK)
		return;
	x->fast = mk_dec_is_pos(lo);
	x->fast &= floor_ceil(lo, ps, &x->lo_f, &x->lo_c);
	x->fast &= floor_ceil(tick->price, ps, &x->mk_f, &x->mk_c);
	x->fast &= floor_ceil(hi, ps, &x->hi_f, &x->hi_c);
}

/* Whether a price [f, c] (its floor and ceiling) lies below the exact
 * root keyed k (|root - k| <= 1/2): 1 when surely below, 0 when surely
 * above, -1 when too close to tell. "Below" and "at or below" agree on
 * the sure answers. */
static int
below(int64_t f, int64_t c, int64_t k)
{
	if (c < k)
		return 1;
	if (f > k)
		return 0;
	return -1;
}

static int
above(int64_t f, int64_t c, int64_t k)
{
	if (f > k)
		return 1;
	if (c < k)
		return 0;
	return -1;
}

/*
 * The verdict flags of record r at the tick's prices from its thresholds
 * alone: true and *flags, or false when the thresholds cannot decide
 * (then margin_verdict must). Equal to margin_verdict whenever it answers.
 */
static bool
fast_flags(const struct rec *r, const struct tick_px *x, unsigned *flags)
{
	int (*cmp)(int64_t, int64_t, int64_t);
	int64_t af, ac, ff, fc;
	unsigned f = 0;
	int v;

	if (!x->fast || !(r->bits & T_FAST))
		return false;
	if (r->bits & B_SHORT) {
		cmp = above;
		af = x->hi_f, ac = x->hi_c, ff = x->lo_f, fc = x->lo_c;
	} else {
		cmp = below;
		af = x->lo_f, ac = x->lo_c, ff = x->hi_f, fc = x->hi_c;
	}
	if (r->bits & T_W) {
		int64_t w = (r->bits & B_SHORT) ? r->watch + 1 : r->watch - 1;

		if ((v = cmp(af, ac, w)) < 0)
			return false;
		f |= v ? MARGIN_FLAG_AT_RISK : 0u;
	}
	if (r->bits & T_L) {
		if ((v = cmp(af, ac, r->liq)) < 0)
			return false;
		f |= v ? MARGIN_FLAG_ADV_BREACH : 0u;
		if ((v = cmp(x->mk_f, x->mk_c, r->liq)) < 0)
			return false;
		f |= v ? MARGIN_FLAG_MARK_BREACH : 0u;
		if ((v = cmp(ff, fc, r->liq)) < 0)
			return false;
		f |= v ? MARGIN_FLAG_FAV_BREACH : 0u;
	}
	if (r->bits & T_B) {
		if ((v = cmp(af, ac, r->bkr)) < 0)
			return false;
		f |= v ? MARGIN_FLAG_ADV_BANKRUPT : 0u;
		if ((v = cmp(x->mk_f, x->mk_c, r->bkr)) < 0)
			return false;
		f |= v ? MARGIN_FLAG_MARK_BANKRUPT : 0u;
		if ((v = cmp(ff, fc, r->bkr)) < 0)
			return false;
		f |= v ? MARGIN_FLAG_FAV_BANKRUPT : 0u;
	}
	*flags = f;
	return true;
}

/* The tick's adverse prices at the price scale: the longs' (mark - conf)
 * floored and ceiled, the shorts' (mark + conf) likewise; INT64_MIN /
 * INT64_MAX stand for "below / above anything" when they do not fit. */
static void
tick_adverse(const struct reg_inst *in, const struct margin_tick *tick,
	     int64_t *lo_f, int64_t *lo_c, int64_t *hi_f, int64_t *hi_c)
{
	struct mk_dec a;

	*lo_f = *hi_f = INT64_MIN;
	*lo_c = *hi_c = INT64_MAX;
	if (mk_dec_sub(tick->price, tick->conf, &a) != MK_OK ||
	    !floor_ceil(a, in->prm.price_scale, lo_f, lo_c)) {
		*lo_f = INT64_MIN;
		*lo_c = INT64_MAX;
	}
	if (mk_dec_add(tick->price, tick->conf, &a) != MK_OK ||
	    !floor_ceil(a, in->prm.price_scale, hi_f, hi_c)) {
		*hi_f = INT64_MIN;
		*hi_c = INT64_MAX;
	}
}

/* ---- the hot sets ---- */

/*
 * An instrument's hot set holds the positions its usable ticks evaluate
 * whatever the price did: every position whose tracked state is not
 * safe, every position without usable thresholds (T_FAST), and every
 * safe one that has not been evaluated since it was written (registered,
 * replaced, restored, a new collateral) or whose last evaluation failed.
 * A safe position with thresholds outside the set was safe at the
 * instrument's last usable tick, which is what lets a tick find the safe
 * ones that may leave "safe" in a narrow band of the watch index.
 */

static void
hot_add(struct reg_inst *in, struct rec *r, uint32_t slot)
{
	assert(r->aux == NONE && in->nhot < in->hot_cap);
	r->aux = in->nhot;
	in->hot[in->nhot++] = slot;
}

static void
hot_del(struct margin_registry *reg, struct reg_inst *in, struct rec *r)
{
	uint32_t at = r->aux, last;

	assert(at != NONE && at < in->nhot);
	last = in->hot[--in->nhot];
	in->hot[at] = last;
	rec_at(reg, last)->aux = at;
	r->aux = NONE;
}

/* Puts r in the hot set if it is not there. */
static void
hot_ensure(struct reg_inst *in, struct rec *r, uint32_t slot)
{
	if (r->aux == NONE)
		hot_add(in, r, slot);
}

/* After a successful evaluation: in the set unless safe with usable
 * thresholds. */
static void
hot_sync(struct margin_registry *reg, struct reg_inst *in, struct rec *r,
	 uint32_t slot)
{
	bool want = r->trk.state != MARGIN_STATE_SAFE ||
		    !(r->bits & T_FAST);

	if (want && r->aux == NONE)
		hot_add(in, r, slot);
	else if (!want && r->aux != NONE)
		hot_del(reg, in, r);
}

/* Makes room for `need` members; MK_ENOMEM. */
static enum mk_status
hot_reserve(struct reg_inst *in, size_t need)
{
	size_t cap;
	uint32_t *n;

	if (need <= in->hot_cap)
		return MK_OK;
	cap = in->hot_cap ? (size_t)in->hot_cap * 2 : 64;
	while (cap < need)
		cap *= 2;
	if (cap > UINT32_MAX)
		cap = UINT32_MAX;
	n = realloc(in->hot, cap * sizeof(*n));
	if (n == NULL)
		return MK_ENOMEM;
	in->hot = n;
	in->hot_cap = (uint32_t)cap;
	return MK_OK;
}

/* ---- the id table ---- */

static size_t
ht_home(const struct margin_registry *reg, const char *id, size_t len)
{
	return (size_t)hash_bytes(id, len, FNV_BASIS) & (reg->ht_cap - 1u);
}

/* The slot of id, or NONE. */
static uint32_t
ht_find(const struct margin_registry *reg, const char *id)
{
	size_t len = strlen(id), i;

	if (reg->ht_cap == 0)
		return NONE;
	for (i = ht_home(reg, id, len);; i = (i + 1u) & (reg->ht_cap - 1u)) {
		uint32_t s = reg->ht[i];
		const struct rec *r;

		if (s == NONE)
			return NONE;
		r = rec_at(reg, s);
		if (r->idlen == len && memcmp(rec_id(r), id, len) == 0)
			return s;
	}
}

static void
ht_insert_slot(struct margin_registry *reg, uint32_t slot)
{
	const struct rec *r = rec_at(reg, slot);
	size_t i = ht_home(reg, rec_id(r), r->idlen);

	while (reg->ht[i] != NONE)
		i = (i + 1u) & (reg->ht_cap - 1u);
	reg->ht[i] = slot;
}

/* Keeps the load at most one half. */
static enum mk_status
ht_reserve(struct margin_registry *reg, size_t live)
{
	size_t cap = reg->ht_cap ? reg->ht_cap : 64;
	uint32_t *old = reg->ht;
	size_t oldcap = reg->ht_cap;

	while (live * 2 > cap)
		cap *= 2;
	if (cap == reg->ht_cap)
		return MK_OK;
	reg->ht = malloc(cap * sizeof(*reg->ht));
	if (reg->ht == NULL) {
		reg->ht = old;
		return MK_ENOMEM;
	}
	memset(reg->ht, 0xff, cap * sizeof(*reg->ht));
	reg->ht_cap = cap;
	for (size_t i = 0; i < oldcap; i++)
		if (old[i] != NONE)
			ht_insert_slot(reg, old[i]);
	free(old);
	return MK_OK;
}

/* Backward-shift deletion keeps every probe chain unbroken. */
static void
ht_delete(struct margin_registry *reg, uint32_t slot)
{
	const struct rec *r = rec_at(reg, slot);
	size_t mask = reg->ht_cap - 1u;
	size_t i = ht_home(reg, rec_id(r), r->idlen), j;

	while (reg->ht[i] != slot)
		i = (i + 1u) & mask;
	for (j = i;;) {
		const struct rec *o;
		size_t home;

		j = (j + 1u) & mask;
		if (reg->ht[j] == NONE)
			break;
		o = rec_at(reg, reg->ht[j]);
		home = ht_home(reg, rec_id(o), o->idlen);
		/* Move j back to i unless its home lies cyclically in (i, j]. */
		if (i <= j ? (i < home && home <= j) : (i < home || home <= j))
			continue;
		reg->ht[i] = reg->ht[j];
		i = j;
	}
	reg->ht[i] = NONE;
}

/* ---- the slab ---- */

static enum mk_status
slot_alloc(struct margin_registry *reg, uint32_t *slot)
{
	if (reg->free_head != NONE) {
		*slot = reg->free_head;
		reg->free_head = rec_at(reg, *slot)->aux;
		return MK_OK;
	}
	if (reg->nslots >= MARGIN_REGISTRY_MAX_POSITIONS)
		return MK_ETOOBIG;
	if ((reg->nslots & (CHUNK_RECS - 1u)) == 0) {
		struct rec *c;

		if (reg->nchunks == reg->chunks_cap) {
			size_t cap = reg->chunks_cap ? reg->chunks_cap * 2 : 16;
			struct rec **n = realloc(reg->chunks, cap * sizeof(*n));

			if (n == NULL)
				return MK_ENOMEM;
			reg->chunks = n;
			reg->chunks_cap = cap;
		}
		c = calloc(CHUNK_RECS, sizeof(*c));
		if (c == NULL)
			return MK_ENOMEM;
		reg->chunks[reg->nchunks++] = c;
	}
	*slot = reg->nslots++;
	return MK_OK;
}

static void
slot_free(struct margin_registry *reg, uint32_t slot)
{
	struct rec *r = rec_at(reg, slot);

	if (r->idlen >= ID_INLINE) {
		reg->heap_id_bytes -= (size_t)r->idlen + 1u;
		free(r->id.heap);
	}
	memset(r, 0, sizeof(*r));
	r->aux = reg->free_head;
	reg->free_head = slot;
}

/* ---- evaluation ---- */

struct visit {
	struct margin_registry *reg;
	struct reg_inst *in;
	const struct margin_tick *tick;
	margin_registry_event_fn fn;
	void *ctx;
	struct margin_registry_tick_stats *st;
	int64_t held_since_ms;       /* the held stretch this tick ends */
};

/* Evaluates one record at v->tick (usable) and books the transition. */
static void
evaluate(struct visit *v, uint32_t slot)
{
	struct rec *r = rec_at(v->reg, slot);
	struct margin_decision d;
	struct margin_registry_event e;
	enum margin_state from = (enum margin_state)r->trk.state;
	unsigned flags = 0;

	if (!fast_flags(r, &v->in->px, &flags)) {
		struct margin_position p;

		rec_position(v->reg, r, &p);
		if (margin_verdict(&p, &v->in->prm, v->tick->price,
				   v->tick->conf, &flags, NULL) != MK_OK) {
			v->st->errors++;
			hot_ensure(v->in, r, slot);
			return;
		}
		v->st->exact++;
	}
	v->st->visited++;
	/* The held stretch is the instrument's: margin_track restarts the
	 * confirmation run when it lasted the window (state.h). */
	r->trk.held_since_ms = v->held_since_ms;
	margin_track(&r->trk, &v->in->prm, v->tick, flags, &d, &e.ev);
	hot_sync(v->reg, v->in, r, slot);
	if (!d.changed)
		return;
	count_dec(v->reg, v->in, from);
	count_inc(v->reg, v->in, d.state);
	if (from == MARGIN_STATE_NEW && d.state == MARGIN_STATE_SAFE)
		return;
	v->st->events++;
	if (v->fn != NULL) {
		e.id = rec_id(r);
		e.inst = r->inst;
		e.symbol = v->in->symbol;
		v->fn(v->ctx, &e);
	}
}

static int
visit_cb(void *ctx, int64_t price, uint32_t slot)
{
	struct visit *v = ctx;
	struct rec *r = rec_at(v->reg, slot);

	(void)price;
	if (r->epoch != v->in->epoch) {
		r->epoch = v->in->epoch;
		evaluate(v, slot);
	}
	return 0;
}

/* After a write: evaluates the position at the instrument's last tick if
 * usable, else leaves it in the hot set for the next usable one. */
static void
evaluate_now(struct margin_registry *reg, struct reg_inst *in, uint32_t slot,
	     margin_registry_event_fn fn, void *ctx)
{
	struct margin_registry_tick_stats st;
	struct visit v = { reg, in, &in->tick, fn, ctx, &st, 0 };

	memset(&st, 0, sizeof(st));
	hot_ensure(in, rec_at(reg, slot), slot);
	if (in->has_tick && margin_tick_usable(&in->tick))
		evaluate(&v, slot);
}

/* ---- public ---- */

static int
symbol_cmp(const struct margin_registry *reg, uint32_t a, const char *s)
{
	return strcmp(reg->inst[a].symbol, s);
}

enum mk_status
margin_registry_create(const struct margin_registry_instrument *insts,
		       size_t n, struct margin_registry **out,
		       struct mk_err *err)
{
	struct margin_registry *reg;
	enum mk_status st = MK_ENOMEM;

	*out = NULL;
	if (n == 0 || n > MARGIN_REGISTRY_MAX_INSTRUMENTS)
		return mk_err_set(err, MK_EINVAL,
				  "instruments: need 1 to %u, got %zu",
				  MARGIN_REGISTRY_MAX_INSTRUMENTS, n);
	reg = calloc(1, sizeof(*reg));
	if (reg == NULL)
		return mk_err_set(err, MK_ENOMEM, "out of memory");
	reg->free_head = NONE;
	reg->inst = calloc(n, sizeof(*reg->inst));
	reg->by_symbol = calloc(n, sizeof(*reg->by_symbol));
	if (reg->inst == NULL || reg->by_symbol == NULL)
		goto fail;
	for (size_t i = 0; i < n; i++) {
		const struct margin_registry_instrument *s = &insts[i];
		struct reg_inst *in = &reg->inst[i];
		size_t len = s->symbol != NULL ? strlen(s->symbol) : 0;

		reg->ninst = i + 1;
		in->def_table = NONE;
		if (len == 0 || len >= MARGIN_REGISTRY_MAX_SYMBOL) {
			st = mk_err_set(err, MK_EINVAL,
					"instruments[%zu].symbol: must be 1 to"
					" %d bytes", i,
					MARGIN_REGISTRY_MAX_SYMBOL - 1);
			goto fail;
		}
		memcpy(in->symbol, s->symbol, len + 1);
		st = margin_params_check(&s->params, err);
		if (st != MK_OK) {
			mk_err_prefix(err, "instruments[%zu] (%s).params", i,
				      in->symbol);
			goto fail;
		}
		in->prm = s->params;
		if (margin_pindex_create(&in->ix[0]) != MK_OK ||
		    margin_pindex_create(&in->ix[1]) != MK_OK) {
			st = mk_err_set(err, MK_ENOMEM, "out of memory");
			goto fail;
		}
		if (s->brackets != NULL) {
			if (!s->brackets->ready) {
				st = mk_err_set(err, MK_EINVAL,
						"instruments[%zu] (%s).brackets:"
						" not prepared", i, in->symbol);
				goto fail;
			}
			if (table_add(reg, i, s->brackets, false,
				      &in->def_table) != MK_OK) {
				st = mk_err_set(err, MK_ENOMEM,
						"out of memory");
				goto fail;
			}
		}
		/* insertion sort by symbol; duplicates refused */
		{
			size_t j = i;

			while (j > 0 &&
			       symbol_cmp(reg, reg->by_symbol[j - 1],
					  in->symbol) > 0) {
				reg->by_symbol[j] = reg->by_symbol[j - 1];
				j--;
			}
			if (j > 0 && symbol_cmp(reg, reg->by_symbol[j - 1],
						in->symbol) == 0) {
				st = mk_err_set(err, MK_EINVAL,
						"instruments[%zu].symbol: \"%s\""
						" is listed twice", i,
						in->symbol);
				goto fail;
			}
			reg->by_symbol[j] = (uint32_t)i;
		}
	}
	*out = reg;
	return MK_OK;
fail:
	if (st == MK_ENOMEM)
		mk_err_set(err, MK_ENOMEM, "out of memory");
	margin_registry_destroy(reg);
	return st;
}

void
margin_registry_destroy(struct margin_registry *reg)
{
	if (reg == NULL)
		return;
	for (uint32_t s = 0; s < reg->nslots; s++) {
		struct rec *r = rec_at(reg, s);

		if ((r->bits & B_LIVE) && r->idlen >= ID_INLINE)
			free(r->id.heap);
	}
	for (size_t i = 0; i < reg->nchunks; i++)
		free(reg->chunks[i]);
	free(reg->chunks);
	free(reg->ht);
	for (size_t i = 0; i < reg->ntables; i++)
		if (reg->tables[i] != NULL)
			table_unref(reg->tables[i]);
	free(reg->tables);
	for (size_t i = 0; reg->inst != NULL && i < reg->ninst; i++) {
		margin_pindex_destroy(reg->inst[i].ix[0]);
		margin_pindex_destroy(reg->inst[i].ix[1]);
		free(reg->inst[i].hot);
	}
	free(reg->inst);
	free(reg->by_symbol);
	free(reg);
}

size_t
margin_registry_instruments(const struct margin_registry *reg)
{
	return reg->ninst;
}

const char *
margin_registry_symbol(const struct margin_registry *reg, size_t inst)
{
	return inst < reg->ninst ? reg->inst[inst].symbol : NULL;
}

const struct margin_params *
margin_registry_params(const struct margin_registry *reg, size_t inst)
{
	return inst < reg->ninst ? &reg->inst[inst].prm : NULL;
}

const struct margin_brackets *
margin_registry_brackets(const struct margin_registry *reg, size_t inst)
{
	if (inst >= reg->ninst || reg->inst[inst].def_table == NONE)
		return NULL;
	return &reg->tables[reg->inst[inst].def_table]->t;
}

enum mk_status
margin_registry_find(const struct margin_registry *reg, const char *symbol,
		     size_t *inst)
{
	size_t lo = 0, hi = reg->ninst;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = symbol_cmp(reg, reg->by_symbol[mid], symbol);

		if (c == 0) {
			*inst = reg->by_symbol[mid];
			return MK_OK;
		}
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return MK_ENOTFOUND;
}

static enum mk_status
check_id(const char *id, struct mk_err *err)
{
	size_t len = id != NULL ? strlen(id) : 0;

	if (len == 0 || len > MARGIN_REGISTRY_MAX_ID)
		return mk_err_set(err, MK_EINVAL, "id: must be 1 to %d bytes",
				  MARGIN_REGISTRY_MAX_ID);
	return MK_OK;
}

/* A restored tracker: the recorded state (held and unknown states become
 * new), and a new confirmation run, as after any rebuild of the
 * aggregator (state.h). */
static void
tracker_restore(struct margin_tracker *t, const struct margin_tracker *from)
{
	margin_tracker_init(t);
	if (from == NULL || from->state < MARGIN_STATE_SAFE ||
	    from->state > MARGIN_STATE_BANKRUPT)
		return;
	t->state = from->state;
	t->last_valid = from->state;
	t->reason = from->reason < MARGIN_REASON_COUNT ? from->reason
						       : MARGIN_REASON_NONE;
	t->flags = from->flags;
}

/* Replaces the position in slot by p (instrument inst, table tidx). */
static enum mk_status
replace(struct margin_registry *reg, uint32_t slot, size_t inst,
	const struct margin_position *p, uint32_t tidx, const struct thr *th,
	struct mk_err *err)
{
	struct rec *r = rec_at(reg, slot);
	struct reg_inst *old = &reg->inst[r->inst], *in = &reg->inst[inst];
	int oside = side_ix(r), nside = p->side == MARGIN_SHORT ? 1 : 0;
	uint32_t otable = r->table;
	enum margin_state state = (enum margin_state)r->trk.state;
	enum mk_status st;

	if (old == in && oside == nside) {
		st = margin_pindex_update(in->ix[nside], r->watch, th->watch,
					  slot);
	} else {
		st = old != in ? hot_reserve(in, in->count + 1) : MK_OK;
		if (st == MK_OK)
			st = margin_pindex_insert(in->ix[nside], th->watch,
						  slot);
		if (st == MK_OK)
			margin_pindex_remove(old->ix[oside], r->watch, slot);
	}
	if (st != MK_OK)
		return mk_err_set(err, st, "out of memory");
	if (old != in) {
		if (r->aux != NONE)
			hot_del(reg, old, r);
		old->count--;
		count_dec(reg, old, state);
		in->count++;
		count_inc(reg, in, state);
		r->epoch = 0;
		r->inst = (uint16_t)inst;
	}
	reg->tables[tidx]->users++;
	reg->tables[otable]->users--;
	r->table = tidx;
	table_settle(reg, otable);
	rec_set_position(r, p);
	rec_set_thr(r, th);
	r->trk.count = 0;
	r->trk.first_ms = 0;
	r->trk.last_seq = 0;
	r->trk.held_since_ms = 0;
	return MK_OK;
}

/* Adds a new position in a fresh slot. */
static enum mk_status
add(struct margin_registry *reg, const char *id, size_t inst,
    const struct margin_position *p, uint32_t tidx, const struct thr *th,
    const struct margin_tracker *restore, uint32_t *out, struct mk_err *err)
{
	struct reg_inst *in = &reg->inst[inst];
	size_t len = strlen(id);
	char *heap = NULL;
	uint32_t slot;
	struct rec *r;
	enum mk_status st;

	st = ht_reserve(reg, reg->live + 1);
	if (st == MK_OK)
		st = hot_reserve(in, in->count + 1);
	if (st == MK_OK && len >= ID_INLINE) {
		heap = malloc(len + 1);
		st = heap != NULL ? MK_OK : MK_ENOMEM;
	}
	if (st == MK_OK)
		st = slot_alloc(reg, &slot);
	if (st != MK_OK) {
		free(heap);
		return st == MK_ETOOBIG
			       ? mk_err_set(err, st, "too many positions")
			       : mk_err_set(err, st, "out of memory");
	}
	st = margin_pindex_insert(in->ix[p->side == MARGIN_SHORT], th->watch,
				  slot);
	if (st != MK_OK) {
		free(heap);
		slot_free(reg, slot);
		return mk_err_set(err, st, "out of memory");
	}
	r = rec_at(reg, slot);
	memset(r, 0, sizeof(*r));
	rec_set_position(r, p);
	r->idlen = (uint8_t)len;
	if (heap != NULL) {
		memcpy(heap, id, len + 1);
		r->id.heap = heap;
		reg->heap_id_bytes += len + 1;
	} else {
		memcpy(r->id.in, id, len + 1);
	}
	r->inst = (uint16_t)inst;
	r->table = tidx;
	rec_set_thr(r, th);
	r->aux = NONE;
	tracker_restore(&r->trk, restore);
	reg->tables[tidx]->users++;
	ht_insert_slot(reg, slot);
	reg->live++;
	in->count++;
	count_inc(reg, in, (enum margin_state)r->trk.state);
	hot_add(in, r, slot);       /* not evaluated yet */
	*out = slot;
	return MK_OK;
}

enum mk_status
margin_registry_put(struct margin_registry *reg, const char *id, size_t inst,
		    const struct margin_position *pos,
		    const struct margin_tracker *restore,
		    margin_registry_event_fn fn, void *ctx, bool *created,
		    struct mk_err *err)
{
	struct reg_inst *in;
	uint32_t slot, tidx;
	struct thr th;
	enum mk_status st;

	st = check_id(id, err);
	if (st != MK_OK)
		return st;
	if (inst >= reg->ninst)
		return mk_err_set(err, MK_EINVAL, "symbol: unknown instrument");
	in = &reg->inst[inst];
	if (pos->brackets == NULL)
		return mk_err_set(err, MK_EINVAL,
				  "brackets: %s has no default brackets",
				  in->symbol);
	st = margin_position_check(pos, err);
	if (st != MK_OK)
		return st;
	if (pos->brackets->n > MARGIN_MAX_BRACKETS)
		return mk_err_set(err, MK_EINVAL, "brackets: too many");
	st = table_find(reg, inst, pos->brackets, &tidx, err);
	if (st != MK_OK)
		return st;
	thresholds(in, reg->tables[tidx], pos, &th);
	slot = ht_find(reg, id);
	if (created != NULL)
		*created = slot == NONE;
	if (slot != NONE)
		st = replace(reg, slot, inst, pos, tidx, &th, err);
	else
		st = add(reg, id, inst, pos, tidx, &th, restore, &slot, err);
	if (st != MK_OK) {
		table_settle(reg, tidx);
		return st;
	}
	evaluate_now(reg, in, slot, fn, ctx);
	return MK_OK;
}

enum mk_status
margin_registry_room(const struct margin_registry *reg, const char *id,
		     size_t inst, const struct margin_brackets *brackets,
		     struct mk_err *err)
{
	uint32_t idx;

	if (inst >= reg->ninst)
		return mk_err_set(err, MK_EINVAL, "symbol: unknown instrument");
	if (brackets != NULL && !table_lookup(reg, inst, brackets, &idx) &&
	    reg->ncustom >= MARGIN_REGISTRY_MAX_TABLES)
		return mk_err_set(err, MK_ETOOBIG,
				  "brackets: too many distinct bracket tables"
				  " (at most %u)", MARGIN_REGISTRY_MAX_TABLES);
	if ((id == NULL || ht_find(reg, id) == NONE) &&
	    reg->free_head == NONE &&
	    reg->nslots >= MARGIN_REGISTRY_MAX_POSITIONS)
		return mk_err_set(err, MK_ETOOBIG, "too many positions");
	return MK_OK;
}

enum mk_status
margin_registry_restore(struct margin_registry *reg, const char *id,
			const struct margin_tracker *t)
{
	uint32_t slot = id != NULL ? ht_find(reg, id) : NONE;
	enum margin_state from, to;
	struct reg_inst *in;
	struct rec *r;

	if (slot == NONE)
		return MK_ENOTFOUND;
	r = rec_at(reg, slot);
	in = &reg->inst[r->inst];
	from = (enum margin_state)r->trk.state;
	tracker_restore(&r->trk, t);
	to = (enum margin_state)r->trk.state;
	count_dec(reg, in, from);
	count_inc(reg, in, to);
	hot_ensure(in, r, slot);    /* not evaluated since */
	return MK_OK;
}

enum mk_status
margin_registry_remove(struct margin_registry *reg, const char *id)
{
	uint32_t slot = id != NULL ? ht_find(reg, id) : NONE;
	struct reg_inst *in;
	struct rec *r;
	uint32_t tidx;

	if (slot == NONE)
		return MK_ENOTFOUND;
	r = rec_at(reg, slot);
	in = &reg->inst[r->inst];
	margin_pindex_remove(in->ix[side_ix(r)], r->watch, slot);
	if (r->aux != NONE)
		hot_del(reg, in, r);
	in->count--;
	count_dec(reg, in, (enum margin_state)r->trk.state);
	tidx = r->table;
	reg->tables[tidx]->users--;
	table_settle(reg, tidx);
	ht_delete(reg, slot);
	reg->live--;
	slot_free(reg, slot);
	return MK_OK;
}

enum mk_status
margin_registry_set_collateral(struct margin_registry *reg, const char *id,
			       struct mk_dec collateral,
			       margin_registry_event_fn fn, void *ctx,
			       struct mk_err *err)
{
	uint32_t slot = id != NULL ? ht_find(reg, id) : NONE;
	struct margin_position p;
	struct reg_inst *in;
	struct rec *r;
	struct thr th;
	enum mk_status st;

	if (slot == NONE)
		return mk_err_set(err, MK_ENOTFOUND, "no position \"%s\"",
				  id != NULL ? id : "");
	r = rec_at(reg, slot);
	in = &reg->inst[r->inst];
	rec_position(reg, r, &p);
	p.collateral = collateral;
	st = margin_position_check(&p, err);
	if (st != MK_OK)
		return st;
	thresholds(in, reg->tables[r->table], &p, &th);
	st = margin_pindex_update(in->ix[side_ix(r)], r->watch, th.watch,
				  slot);
	if (st != MK_OK)
		return mk_err_set(err, st, "out of memory");
	rec_set_thr(r, &th);
	r->m[F_COLL] = collateral.m;
	r->sc[F_COLL] = (uint8_t)collateral.scale;
	evaluate_now(reg, in, slot, fn, ctx);
	return MK_OK;
}

/* Starts a new tick epoch; on wrap-around, clears every record's epoch. */
static void
next_epoch(struct margin_registry *reg, struct reg_inst *in)
{
	if (++in->epoch != 0)
		return;
	for (uint32_t s = 0; s < reg->nslots; s++) {
		struct rec *r = rec_at(reg, s);

		if ((r->bits & B_LIVE) && &reg->inst[r->inst] == in)
			r->epoch = 0;
	}
	in->epoch = 1;
}

enum mk_status
margin_registry_on_mark(struct margin_registry *reg, size_t inst,
			const struct margin_tick *tick,
			margin_registry_event_fn fn, void *ctx,
			struct margin_registry_tick_stats *st)
{
	struct margin_registry_tick_stats dummy;
	struct reg_inst *in;
	struct visit v;
	int64_t lo_f, lo_c, hi_f, hi_c, prev_c, prev_f;
	bool was_held;

	if (st == NULL)
		st = &dummy;
	memset(st, 0, sizeof(*st));
	if (inst >= reg->ninst || tick == NULL)
		return MK_EINVAL;
	in = &reg->inst[inst];
	was_held = inst_held(in);
	in->tick = *tick;
	in->has_tick = true;
	if (was_held != inst_held(in))
		count_flip(reg, in, !was_held);
	if (!margin_tick_usable(tick)) {
		if (in->held_since_ms == 0)
			in->held_since_ms = tick->time_ms > 0 ? tick->time_ms
							      : 1;
		st->held = true;
		return MK_OK;
	}
	/* A safe long outside the hot set had its adverse price at or above
	 * its buffered root W at the last usable tick (prev); it may leave
	 * "safe" now only if W lies in (adverse now, prev], and its watch
	 * price lies in (W, W + 1.5 units]. Shorts mirrored. */
	tick_adverse(in, tick, &lo_f, &lo_c, &hi_f, &hi_c);
	/* An adverse edge at or below zero is judged at the limit, where a
	 * long without a root (watch INT64_MIN) can still be bankrupt (a
	 * fully collateralised linear long at price 0): look at them all. */
	if (mk_dec_cmp(tick->conf, tick->price) >= 0)
		lo_f = INT64_MIN;
	prev_c = in->has_adv ? in->adv_lo : INT64_MAX;
	prev_f = in->has_adv ? in->adv_hi : INT64_MIN;
	prev_c = prev_c > INT64_MAX - 3 ? INT64_MAX : prev_c + 3;
	prev_f = prev_f < INT64_MIN + 3 ? INT64_MIN : prev_f - 3;
	in->adv_lo = lo_c;
	in->adv_hi = hi_f;
	in->has_adv = true;
	tick_prices(in, tick, &in->px);
	next_epoch(reg, in);

	v.reg = reg;
	v.in = in;
	v.tick = &in->tick;
	v.fn = fn;
	v.ctx = ctx;
	v.st = st;
	v.held_since_ms = in->held_since_ms;
	in->held_since_ms = 0;
	if (lo_f <= prev_c)
		margin_pindex_range(in->ix[0], lo_f, prev_c, visit_cb, &v);
	if (prev_f <= hi_c)
		margin_pindex_range(in->ix[1], prev_f, hi_c, visit_cb, &v);
	/* Downwards: a member removed at i is replaced by the last one,
	 * which this loop has already seen. The records are scattered:
	 * fetch a few ahead. */
	for (uint32_t i = in->nhot; i-- > 0;) {
		if (i >= HOT_PREFETCH)
			PREFETCH(rec_at(reg, in->hot[i - HOT_PREFETCH]));
		if (i < in->nhot)
			visit_cb(&v, 0, in->hot[i]);
	}
	st->hot = in->nhot;
	return MK_OK;
}

bool
margin_registry_last_tick(const struct margin_registry *reg, size_t inst,
			  struct margin_tick *tick)
{
	if (inst >= reg->ninst || !reg->inst[inst].has_tick)
		return false;
	*tick = reg->inst[inst].tick;
	return true;
}

static void
make_view(const struct margin_registry *reg, uint32_t slot,
	  struct margin_registry_view *v)
{
	const struct rec *r = rec_at(reg, slot);
	const struct reg_inst *in = &reg->inst[r->inst];
	struct reg_table *tb = reg->tables[r->table];

	memset(v, 0, sizeof(*v));
	v->slot = slot;
	v->inst = r->inst;
	v->symbol = in->symbol;
	memcpy(v->id, rec_id(r), (size_t)r->idlen + 1u);
	rec_position(reg, r, &v->pos);
	v->custom_brackets = tb->custom;
	v->tracker = r->trk;
	v->held = inst_held(in);
	v->last_valid = (enum margin_state)r->trk.state;
	if (v->held) {
		v->state = MARGIN_STATE_HELD;
		v->reason = in->has_tick && in->tick.valid_for_liquidation
				    ? MARGIN_REASON_MARK_UNUSABLE
				    : MARGIN_REASON_MARK_INVALID;
	} else {
		v->state = (enum margin_state)r->trk.state;
		v->reason = (enum margin_reason)r->trk.reason;
	}
	v->watch = r->watch;
	atomic_fetch_add(&tb->refs, 1u);
	v->table_ = tb;
}

enum mk_status
margin_registry_get(const struct margin_registry *reg, const char *id,
		    struct margin_registry_view *out)
{
	uint32_t slot = id != NULL ? ht_find(reg, id) : NONE;

	if (slot == NONE)
		return MK_ENOTFOUND;
	make_view(reg, slot, out);
	return MK_OK;
}

static bool
view_matches(const struct margin_registry *reg, const struct rec *r,
	     const struct margin_registry_filter *f)
{
	const struct reg_inst *in = &reg->inst[r->inst];
	enum margin_state s;

	if (f == NULL)
		return true;
	if (f->has_inst && f->inst != r->inst)
		return false;
	if (!f->has_state)
		return true;
	s = inst_held(in) ? MARGIN_STATE_HELD
			  : (enum margin_state)r->trk.state;
	return s == f->state;
}

size_t
margin_registry_list(const struct margin_registry *reg, uint32_t *cursor,
		     const struct margin_registry_filter *f,
		     struct margin_registry_view *out, size_t cap,
		     size_t max_scan, bool *end)
{
	uint32_t s = *cursor;
	size_t n = 0, scanned = 0;

	if (max_scan == 0)
		max_scan = 1;
	while (s < reg->nslots && n < cap && scanned < max_scan) {
		const struct rec *r = rec_at(reg, s);

		if ((r->bits & B_LIVE) && view_matches(reg, r, f))
			make_view(reg, s, &out[n++]);
		s++;
		scanned++;
	}
	*cursor = s;
	*end = s >= reg->nslots;
	return n;
}

void
margin_registry_view_release(struct margin_registry_view *v)
{
	if (v == NULL || v->table_ == NULL)
		return;
	table_unref(v->table_);
	v->table_ = NULL;
	v->pos.brackets = NULL;
}

size_t
margin_registry_count(const struct margin_registry *reg)
{
	return reg->live;
}

void
margin_registry_state_counts(const struct margin_registry *reg,
			     size_t counts[MARGIN_STATE_COUNT])
{
	memcpy(counts, reg->reported, sizeof(reg->reported));
}

size_t
margin_registry_memory(const struct margin_registry *reg)
{
	size_t m = sizeof(*reg);

	m += reg->nchunks * CHUNK_RECS * sizeof(struct rec);
	m += reg->chunks_cap * sizeof(struct rec *);
	m += reg->ht_cap * sizeof(uint32_t);
	m += reg->heap_id_bytes;
	m += reg->tables_cap * sizeof(struct reg_table *);
	for (size_t i = 0; i < reg->ntables; i++)
		if (reg->tables[i] != NULL)
			m += sizeof(struct reg_table);
	m += reg->ninst * (sizeof(struct reg_inst) + sizeof(uint32_t));
	for (size_t i = 0; i < reg->ninst; i++) {
		const struct reg_inst *in = &reg->inst[i];

		m += (size_t)in->hot_cap * sizeof(uint32_t);
		m += margin_pindex_memory(in->ix[0]);
		m += margin_pindex_memory(in->ix[1]);
	}
	return m;
}

enum mk_status
margin_registry_check(const struct margin_registry *reg, struct mk_err *err)
{
	size_t live = 0, *count = NULL, *users = NULL;
	enum mk_status st = MK_OK;

	count = calloc(reg->ninst * MARGIN_STATE_COUNT + 1, sizeof(*count));
	users = calloc(reg->ntables + 1, sizeof(*users));
	if (count == NULL || users == NULL) {
		st = mk_err_set(err, MK_ENOMEM, "out of memory");
		goto out;
	}
	for (uint32_t s = 0; s < reg->nslots; s++) {
		const struct rec *r = rec_at(reg, s);
		const struct reg_inst *in;
		struct margin_position p;
		struct thr th;

		if (!(r->bits & B_LIVE))
			continue;
		live++;
		in = &reg->inst[r->inst];
		if (ht_find(reg, rec_id(r)) != s) {
			st = mk_err_set(err, MK_ESTATE, "slot %u: id \"%s\" not"
					" in the id table", s, rec_id(r));
			goto out;
		}
		if (!margin_pindex_contains(in->ix[side_ix(r)], r->watch, s)) {
			st = mk_err_set(err, MK_ESTATE, "slot %u: not in its"
					" index at its watch price", s);
			goto out;
		}
		rec_position(reg, r, &p);
		thresholds(in, reg->tables[r->table], &p, &th);
		if (th.watch != r->watch || th.bits != (r->bits & T_MASK) ||
		    ((th.bits & T_L) && th.liq != r->liq) ||
		    ((th.bits & T_B) && th.bkr != r->bkr)) {
			st = mk_err_set(err, MK_ESTATE, "slot %u: stale watch"
					" price or thresholds", s);
			goto out;
		}
		if (((r->trk.state != MARGIN_STATE_SAFE ||
		      !(r->bits & T_FAST)) && r->aux == NONE) ||
		    (r->aux != NONE &&
		     (r->aux >= in->nhot || in->hot[r->aux] != s))) {
			st = mk_err_set(err, MK_ESTATE, "slot %u: hot set"
					" membership is wrong (state %s)", s,
					margin_state_name(r->trk.state));
			goto out;
		}
		/* Outside the hot set: safe at the last usable tick. */
		if (r->aux == NONE && in->has_tick &&
		    margin_tick_usable(&in->tick)) {
			unsigned f = 0;

			if (margin_verdict(&p, &in->prm, in->tick.price,
					   in->tick.conf, &f, NULL) != MK_OK ||
			    f != 0) {
				st = mk_err_set(err, MK_ESTATE, "slot %u: not"
						" safe at the last tick (flags"
						" %#x) but not in the hot set",
						s, f);
				goto out;
			}
		}
		count[r->inst * MARGIN_STATE_COUNT + r->trk.state]++;
		users[r->table]++;
	}
	if (live != reg->live) {
		st = mk_err_set(err, MK_ESTATE, "%zu live records, %zu counted",
				live, reg->live);
		goto out;
	}
	for (size_t i = 0; i < reg->ninst; i++) {
		const struct reg_inst *in = &reg->inst[i];
		size_t total = 0, nu = 0;

		for (size_t s = 0; s < MARGIN_STATE_COUNT; s++) {
			if (count[i * MARGIN_STATE_COUNT + s] !=
			    in->by_state[s]) {
				st = mk_err_set(err, MK_ESTATE, "%s: count of"
						" state %s is wrong",
						in->symbol,
						margin_state_name(
							(enum margin_state)s));
				goto out;
			}
			total += in->by_state[s];
			if (s != MARGIN_STATE_SAFE)
				nu += in->by_state[s];
		}
		if (total != in->count || nu > in->nhot ||
		    in->hot_cap < in->count ||
		    margin_pindex_count(in->ix[0]) +
				    margin_pindex_count(in->ix[1]) !=
			    in->count) {
			st = mk_err_set(err, MK_ESTATE, "%s: counts disagree",
					in->symbol);
			goto out;
		}
		st = margin_pindex_check(in->ix[0], err);
		if (st == MK_OK)
			st = margin_pindex_check(in->ix[1], err);
		if (st != MK_OK)
			goto out;
	}
	{
		size_t rep[MARGIN_STATE_COUNT];

		memset(rep, 0, sizeof(rep));
		for (size_t i = 0; i < reg->ninst; i++)
			for (size_t s = 0; s < MARGIN_STATE_COUNT; s++)
				rep[inst_held(&reg->inst[i])
					    ? MARGIN_STATE_HELD
					    : s] += reg->inst[i].by_state[s];
		if (memcmp(rep, reg->reported, sizeof(rep)) != 0) {
			st = mk_err_set(err, MK_ESTATE,
					"reported state counts are wrong");
			goto out;
		}
	}
	for (size_t i = 0; i < reg->ntables; i++) {
		const struct reg_table *tb = reg->tables[i];

		if (tb != NULL && tb->users != users[i]) {
			st = mk_err_set(err, MK_ESTATE, "table %zu: %u users,"
					" %zu counted", i, tb->users, users[i]);
			goto out;
		}
		if (tb != NULL && tb->custom && tb->users == 0) {
			st = mk_err_set(err, MK_ESTATE, "table %zu: unused", i);
			goto out;
		}
	}
out:
	free(count);
	free(users);
	return st;
}
