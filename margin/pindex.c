/*
 * pindex.c - a B+-tree of (price, slot) keys with chained leaves.
 *
 * Layout: leaves hold up to LEAF_CAP keys in two parallel arrays (prices,
 * slots) and a pointer to the next leaf; inner nodes hold up to INNER_CAP
 * separator keys and one more child. Child i of an inner node holds the
 * keys k with sep[i-1] <= k < sep[i]. Every node but the root holds at
 * least half its capacity; removal borrows from or merges with a sibling
 * to keep it so, which bounds memory at about 2 x 12 bytes a key even
 * after heavy churn. Separators may name keys that were removed since;
 * they still bound their children correctly.
 *
 * Updates walk down once, remember the path, then work upwards. An insert
 * that must split allocates every node it will need before it changes
 * anything, so running out of memory leaves the tree untouched.
 */
#include "config.h"

#include "margin/pindex.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

#define LEAF_CAP 64u
#define LEAF_MIN (LEAF_CAP / 2u)
#define INNER_CAP 64u
#define INNER_MIN (INNER_CAP / 2u)
/* A tree of height h holds at least 2 * INNER_MIN^(h-1) * LEAF_MIN keys,
 * so 8 levels already exceed 2^32 entries; 16 is far beyond any use. */
#define MAX_HEIGHT 16u

struct leaf {
	struct leaf *next;
	uint32_t n;
	int64_t price[LEAF_CAP];
	uint32_t slot[LEAF_CAP];
};

struct inner {
	uint32_t n;                     /* keys; children are n + 1 */
	int64_t price[INNER_CAP];
	uint32_t slot[INNER_CAP];
	void *child[INNER_CAP + 1u];
};

struct margin_pindex {
	void *root;             /* NULL when empty */
	unsigned height;        /* inner levels above the leaves */
	size_t count;
	size_t nleaves;
	size_t ninner;
};

/* One step of a root-to-leaf walk: the inner node and the child taken. */
struct step {
	struct inner *node;
	uint32_t idx;
};

static int
key_cmp(int64_t p1, uint32_t s1, int64_t p2, uint32_t s2)
{
	if (p1 != p2)
		return p1 < p2 ? -1 : 1;
	if (s1 != s2)
		return s1 < s2 ? -1 : 1;
	return 0;
}

/* First position in the leaf whose key is >= (p, s). */
static uint32_t
leaf_lower(const struct leaf *lf, int64_t p, uint32_t s)
{
	uint32_t lo = 0, hi = lf->n;

	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2u;

		if (key_cmp(lf->price[mid], lf->slot[mid], p, s) < 0)
			lo = mid + 1u;
		else
			hi = mid;
	}
	return lo;
}

/* Child to follow for (p, s): the number of separators <= the key. */
static uint32_t
inner_child(const struct inner *in, int64_t p, uint32_t s)
{
	uint32_t lo = 0, hi = in->n;

	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2u;

		if (key_cmp(in->price[mid], in->slot[mid], p, s) <= 0)
			lo = mid + 1u;
		else
			hi = mid;
	}
	return lo;
}

/* Walks to the leaf that holds (or would hold) the key, filling path[]
 * with the inner nodes passed when path is not NULL. */
static struct leaf *
descend(const struct margin_pindex *ix, int64_t p, uint32_t s,
	struct step *path)
{
	void *node = ix->root;
	unsigned d;

	for (d = 0; d < ix->height; d++) {
		struct inner *in = node;
		uint32_t i = inner_child(in, p, s);

		if (path != NULL) {
			path[d].node = in;
			path[d].idx = i;
		}
		node = in->child[i];
	}
	return node;
}

enum mk_status
margin_pindex_create(struct margin_pindex **out)
{
	struct margin_pindex *ix = calloc(1, sizeof(*ix));

	if (ix == NULL)
		return MK_ENOMEM;
	*out = ix;
	return MK_OK;
}

static void
free_subtree(void *node, unsigned height)
{
	if (height > 0) {
		struct inner *in = node;
		uint32_t i;

		for (i = 0; i <= in->n; i++)
			free_subtree(in->child[i], height - 1u);
	}
	free(node);
}

void
margin_pindex_destroy(struct margin_pindex *ix)
{
	if (ix == NULL)
		return;
	if (ix->root != NULL)
		free_subtree(ix->root, ix->height);
	free(ix);
}

size_t
margin_pindex_count(const struct margin_pindex *ix)
{
	return ix->count;
}

size_t
margin_pindex_memory(const struct margin_pindex *ix)
{
	return sizeof(*ix) + ix->nleaves * sizeof(struct leaf) +
	       ix->ninner * sizeof(struct inner);
}

int
margin_pindex_contains(const struct margin_pindex *ix, int64_t price,
		       uint32_t slot)
{
	const struct leaf *lf;
	uint32_t pos;

	if (ix->root == NULL)
		return 0;
	lf = descend(ix, price, slot, NULL);
	pos = leaf_lower(lf, price, slot);
	return pos < lf->n && lf->price[pos] == price && lf->slot[pos] == slot;
}

/* Moves keys [from, n) of a leaf by delta positions (+1 or -1). */
static void
leaf_shift(struct leaf *lf, uint32_t from, int delta)
{
	size_t cnt = lf->n - from;
	uint32_t to = delta > 0 ? from + 1u : from - 1u;

	memmove(&lf->price[to], &lf->price[from], cnt * sizeof(lf->price[0]));
	memmove(&lf->slot[to], &lf->slot[from], cnt * sizeof(lf->slot[0]));
}

static void
leaf_put(struct leaf *lf, uint32_t pos, int64_t p, uint32_t s)
{
	assert(lf->n < LEAF_CAP && pos <= lf->n);
	leaf_shift(lf, pos, +1);
	lf->price[pos] = p;
	lf->slot[pos] = s;
	lf->n++;
}

static void
leaf_del(struct leaf *lf, uint32_t pos)
{
	assert(pos < lf->n);
	leaf_shift(lf, pos + 1u, -1);
	lf->n--;
}

/* Inserts separator key i and child i + 1 into a non-full inner node. */
static void
inner_put(struct inner *in, uint32_t i, int64_t p, uint32_t s, void *right)
{
	size_t cnt = in->n - i;

	assert(in->n < INNER_CAP && i <= in->n);
	memmove(&in->price[i + 1u], &in->price[i], cnt * sizeof(in->price[0]));
	memmove(&in->slot[i + 1u], &in->slot[i], cnt * sizeof(in->slot[0]));
	memmove(&in->child[i + 2u], &in->child[i + 1u],
		cnt * sizeof(in->child[0]));
	in->price[i] = p;
	in->slot[i] = s;
	in->child[i + 1u] = right;
	in->n++;
}

/* Removes separator key i and child i + 1 from an inner node. */
static void
inner_del(struct inner *in, uint32_t i)
{
	size_t cnt = in->n - i - 1u;

	assert(i < in->n);
	memmove(&in->price[i], &in->price[i + 1u], cnt * sizeof(in->price[0]));
	memmove(&in->slot[i], &in->slot[i + 1u], cnt * sizeof(in->slot[0]));
	memmove(&in->child[i + 1u], &in->child[i + 2u],
		cnt * sizeof(in->child[0]));
	in->n--;
}

/*
 * Splits the full leaf lf while inserting (p, s) at pos; the upper half
 * goes to the empty leaf rt, which is linked after lf. The lower half keeps
 * (LEAF_CAP + 1) / 2 keys so both halves hold at least LEAF_MIN.
 */
static void
leaf_split(struct leaf *lf, struct leaf *rt, uint32_t pos, int64_t p,
	   uint32_t s)
{
	const uint32_t keep = (LEAF_CAP + 1u) / 2u;

	assert(lf->n == LEAF_CAP);
	if (pos < keep) {
		/* The new key lands in the left half. */
		rt->n = LEAF_CAP - (keep - 1u);
		memcpy(rt->price, &lf->price[keep - 1u],
		       rt->n * sizeof(rt->price[0]));
		memcpy(rt->slot, &lf->slot[keep - 1u],
		       rt->n * sizeof(rt->slot[0]));
		lf->n = keep - 1u;
		leaf_put(lf, pos, p, s);
	} else {
		rt->n = LEAF_CAP - keep;
		memcpy(rt->price, &lf->price[keep],
		       rt->n * sizeof(rt->price[0]));
		memcpy(rt->slot, &lf->slot[keep], rt->n * sizeof(rt->slot[0]));
		lf->n = keep;
		leaf_put(rt, pos - keep, p, s);
	}
	rt->next = lf->next;
	lf->next = rt;
}

/*
 * Splits the full inner node in while inserting separator (p, s) with its
 * right child at key position i. The lower INNER_MIN keys stay, the middle
 * key goes up through (*up_p, *up_s), the rest move to the empty node rt.
 */
static void
inner_split(struct inner *in, struct inner *rt, uint32_t i, int64_t p,
	    uint32_t s, void *child, int64_t *up_p, uint32_t *up_s)
{
	int64_t tp[INNER_CAP + 1u];
	uint32_t ts[INNER_CAP + 1u];
	void *tc[INNER_CAP + 2u];
	const uint32_t total = INNER_CAP + 1u, mid = total / 2u;
	uint32_t k;

	assert(in->n == INNER_CAP);
	/* Merge into scratch arrays, then deal them out. */
	memcpy(tp, in->price, i * sizeof(tp[0]));
	memcpy(ts, in->slot, i * sizeof(ts[0]));
	memcpy(tc, in->child, (i + 1u) * sizeof(tc[0]));
	tp[i] = p;
	ts[i] = s;
	tc[i + 1u] = child;
	memcpy(&tp[i + 1u], &in->price[i], (INNER_CAP - i) * sizeof(tp[0]));
	memcpy(&ts[i + 1u], &in->slot[i], (INNER_CAP - i) * sizeof(ts[0]));
	memcpy(&tc[i + 2u], &in->child[i + 1u],
	       (INNER_CAP - i) * sizeof(tc[0]));

	in->n = mid;
	memcpy(in->price, tp, mid * sizeof(tp[0]));
	memcpy(in->slot, ts, mid * sizeof(ts[0]));
	memcpy(in->child, tc, (mid + 1u) * sizeof(tc[0]));
	*up_p = tp[mid];
	*up_s = ts[mid];
	k = total - mid - 1u;
	rt->n = k;
	memcpy(rt->price, &tp[mid + 1u], k * sizeof(tp[0]));
	memcpy(rt->slot, &ts[mid + 1u], k * sizeof(ts[0]));
	memcpy(rt->child, &tc[mid + 1u], (k + 1u) * sizeof(tc[0]));
}

enum mk_status
margin_pindex_insert(struct margin_pindex *ix, int64_t price, uint32_t slot)
{
	struct step path[MAX_HEIGHT];
	struct inner *spare[MAX_HEIGHT + 1u];
	struct leaf *lf, *rt;
	unsigned nspare = 0, used = 0, d;
	uint32_t pos;
	int64_t up_p;
	uint32_t up_s;
	void *up_child;

	if (ix->root == NULL) {
		lf = calloc(1, sizeof(*lf));
		if (lf == NULL)
			return MK_ENOMEM;
		lf->n = 1;
		lf->price[0] = price;
		lf->slot[0] = slot;
		ix->root = lf;
		ix->height = 0;
		ix->count = 1;
		ix->nleaves = 1;
		return MK_OK;
	}
	lf = descend(ix, price, slot, path);
	pos = leaf_lower(lf, price, slot);
	if (pos < lf->n && lf->price[pos] == price && lf->slot[pos] == slot)
		return MK_ESTATE;
	if (lf->n < LEAF_CAP) {
		leaf_put(lf, pos, price, slot);
		ix->count++;
		return MK_OK;
	}

	/* Count the inner nodes that will split (and a new root), then
	 * allocate everything before touching the tree. */
	for (d = ix->height; d > 0 && path[d - 1u].node->n == INNER_CAP; d--)
		nspare++;
	if (d == 0)
		nspare++;
	assert(ix->height < MAX_HEIGHT && nspare <= MAX_HEIGHT + 1u);
	rt = calloc(1, sizeof(*rt));
	if (rt == NULL)
		return MK_ENOMEM;
	for (used = 0; used < nspare; used++) {
		spare[used] = calloc(1, sizeof(struct inner));
		if (spare[used] == NULL) {
			while (used > 0)
				free(spare[--used]);
			free(rt);
			return MK_ENOMEM;
		}
	}

	leaf_split(lf, rt, pos, price, slot);
	ix->nleaves++;
	ix->count++;
	up_p = rt->price[0];
	up_s = rt->slot[0];
	up_child = rt;
	used = 0;
	for (d = ix->height; d > 0; d--) {
		struct inner *in = path[d - 1u].node;
		uint32_t i = path[d - 1u].idx;
		struct inner *nrt;

		if (in->n < INNER_CAP) {
			inner_put(in, i, up_p, up_s, up_child);
			return MK_OK;
		}
		nrt = spare[used++];
		inner_split(in, nrt, i, up_p, up_s, up_child, &up_p, &up_s);
		ix->ninner++;
		up_child = nrt;
	}
	/* The root split: grow the tree by one level. */
	{
		struct inner *root = spare[used++];

		root->n = 1;
		root->price[0] = up_p;
		root->slot[0] = up_s;
		root->child[0] = ix->root;
		root->child[1] = up_child;
		ix->root = root;
		ix->height++;
		ix->ninner++;
	}
	assert(used == nspare);
	return MK_OK;
}

/* Repairs leaf child i of parent after it fell below LEAF_MIN. Returns 1
 * when the parent lost a key (a merge), else 0. */
static int
fix_leaf(struct margin_pindex *ix, struct inner *parent, uint32_t i)
{
	struct leaf *lf = parent->child[i];
	struct leaf *left = i > 0 ? parent->child[i - 1u] : NULL;
	struct leaf *right = i < parent->n ? parent->child[i + 1u] : NULL;

	if (left != NULL && left->n > LEAF_MIN) {
		left->n--;
		leaf_put(lf, 0, left->price[left->n], left->slot[left->n]);
		parent->price[i - 1u] = lf->price[0];
		parent->slot[i - 1u] = lf->slot[0];
		return 0;
	}
	if (right != NULL && right->n > LEAF_MIN) {
		leaf_put(lf, lf->n, right->price[0], right->slot[0]);
		leaf_del(right, 0);
		parent->price[i] = right->price[0];
		parent->slot[i] = right->slot[0];
		return 0;
	}
	if (left != NULL) {
		/* Fold lf into its left sibling. */
		assert(left->n + lf->n <= LEAF_CAP);
		memcpy(&left->price[left->n], lf->price,
		       lf->n * sizeof(lf->price[0]));
		memcpy(&left->slot[left->n], lf->slot,
		       lf->n * sizeof(lf->slot[0]));
		left->n += lf->n;
		left->next = lf->next;
		free(lf);
		inner_del(parent, i - 1u);
	} else {
		/* Fold the right sibling into lf. */
		assert(right != NULL && lf->n + right->n <= LEAF_CAP);
		memcpy(&lf->price[lf->n], right->price,
		       right->n * sizeof(right->price[0]));
		memcpy(&lf->slot[lf->n], right->slot,
		       right->n * sizeof(right->slot[0]));
		lf->n += right->n;
		lf->next = right->next;
		free(right);
		inner_del(parent, i);
	}
	ix->nleaves--;
	return 1;
}

/* Repairs inner child i of parent after it fell below INNER_MIN. Returns
 * 1 when the parent lost a key (a merge), else 0. */
static int
fix_inner(struct margin_pindex *ix, struct inner *parent, uint32_t i)
{
	struct inner *in = parent->child[i];
	struct inner *left = i > 0 ? parent->child[i - 1u] : NULL;
	struct inner *right = i < parent->n ? parent->child[i + 1u] : NULL;

	if (left != NULL && left->n > INNER_MIN) {
		/* Rotate right: the parent's separator comes down in front,
		 * the left sibling's last key goes up. */
		size_t cnt = in->n;

		memmove(&in->price[1], &in->price[0], cnt * sizeof(in->price[0]));
		memmove(&in->slot[1], &in->slot[0], cnt * sizeof(in->slot[0]));
		memmove(&in->child[1], &in->child[0],
			(cnt + 1u) * sizeof(in->child[0]));
		in->price[0] = parent->price[i - 1u];
		in->slot[0] = parent->slot[i - 1u];
		in->child[0] = left->child[left->n];
		in->n++;
		left->n--;
		parent->price[i - 1u] = left->price[left->n];
		parent->slot[i - 1u] = left->slot[left->n];
		return 0;
	}
	if (right != NULL && right->n > INNER_MIN) {
		/* Rotate left, the mirror image. */
		size_t cnt = right->n - 1u;

		in->price[in->n] = parent->price[i];
		in->slot[in->n] = parent->slot[i];
		in->child[in->n + 1u] = right->child[0];
		in->n++;
		parent->price[i] = right->price[0];
		parent->slot[i] = right->slot[0];
		memmove(&right->price[0], &right->price[1],
			cnt * sizeof(right->price[0]));
		memmove(&right->slot[0], &right->slot[1],
			cnt * sizeof(right->slot[0]));
		memmove(&right->child[0], &right->child[1],
			(cnt + 1u) * sizeof(right->child[0]));
		right->n--;
		return 0;
	}
	if (left == NULL) {
		/* Merge with the right sibling instead: same code, shifted. */
		assert(right != NULL);
		left = in;
		in = right;
		i++;
	}
	/* Fold in (child i) into left (child i - 1) with separator i - 1. */
	assert(left->n + 1u + in->n <= INNER_CAP);
	left->price[left->n] = parent->price[i - 1u];
	left->slot[left->n] = parent->slot[i - 1u];
	memcpy(&left->price[left->n + 1u], in->price,
	       in->n * sizeof(in->price[0]));
	memcpy(&left->slot[left->n + 1u], in->slot,
	       in->n * sizeof(in->slot[0]));
	memcpy(&left->child[left->n + 1u], in->child,
	       (in->n + 1u) * sizeof(in->child[0]));
	left->n += 1u + in->n;
	free(in);
	inner_del(parent, i - 1u);
	ix->ninner--;
	return 1;
}

enum mk_status
margin_pindex_remove(struct margin_pindex *ix, int64_t price, uint32_t slot)
{
	struct step path[MAX_HEIGHT];
	struct leaf *lf;
	uint32_t pos;
	unsigned d;

	if (ix->root == NULL)
		return MK_ENOTFOUND;
	lf = descend(ix, price, slot, path);
	pos = leaf_lower(lf, price, slot);
	if (pos >= lf->n || lf->price[pos] != price || lf->slot[pos] != slot)
		return MK_ENOTFOUND;
	leaf_del(lf, pos);
	ix->count--;

	if (ix->height == 0) {
		if (lf->n == 0) {
			free(lf);
			ix->root = NULL;
			ix->nleaves = 0;
		}
		return MK_OK;
	}
	if (lf->n >= LEAF_MIN)
		return MK_OK;
	d = ix->height;
	if (!fix_leaf(ix, path[d - 1u].node, path[d - 1u].idx))
		return MK_OK;
	/* A merge took a key from the parent: walk up while nodes underflow. */
	for (d = ix->height - 1u; d > 0; d--) {
		if (path[d].node->n >= INNER_MIN)
			return MK_OK;
		if (!fix_inner(ix, path[d - 1u].node, path[d - 1u].idx))
			return MK_OK;
	}
	/* d == 0: the root. An inner root with no key is replaced by its
	 * only child. */
	if (path[0].node->n == 0) {
		struct inner *old = path[0].node;

		ix->root = old->child[0];
		ix->height--;
		ix->ninner--;
		free(old);
	}
	return MK_OK;
}

enum mk_status
margin_pindex_update(struct margin_pindex *ix, int64_t old_price,
		     int64_t new_price, uint32_t slot)
{
	enum mk_status st;

	if (!margin_pindex_contains(ix, old_price, slot))
		return MK_ENOTFOUND;
	if (old_price == new_price)
		return MK_OK;
	if (margin_pindex_contains(ix, new_price, slot))
		return MK_ESTATE;
	/* Insert first: if it fails for memory the old key is still there. */
	st = margin_pindex_insert(ix, new_price, slot);
	if (st != MK_OK)
		return st;
	st = margin_pindex_remove(ix, old_price, slot);
	assert(st == MK_OK);
	return st;
}

/* First leaf position holding a key >= (p, s), stepping into the next leaf
 * when the key falls past the end of its own. *lfp is NULL at the end. */
static void
seek(const struct margin_pindex *ix, int64_t p, uint32_t s,
     const struct leaf **lfp, uint32_t *posp)
{
	const struct leaf *lf;
	uint32_t pos;

	if (ix->root == NULL) {
		*lfp = NULL;
		*posp = 0;
		return;
	}
	lf = descend(ix, p, s, NULL);
	pos = leaf_lower(lf, p, s);
	if (pos == lf->n) {
		lf = lf->next;
		pos = 0;
	}
	*lfp = lf;
	*posp = pos;
}

size_t
margin_pindex_range(const struct margin_pindex *ix, int64_t lo, int64_t hi,
		    margin_pindex_visit_fn fn, void *ctx)
{
	const struct leaf *lf;
	uint32_t pos;
	size_t calls = 0;

	if (lo > hi)
		return 0;
	seek(ix, lo, 0, &lf, &pos);
	for (; lf != NULL; lf = lf->next, pos = 0) {
		for (; pos < lf->n; pos++) {
			if (lf->price[pos] > hi)
				return calls;
			calls++;
			if (fn(ctx, lf->price[pos], lf->slot[pos]) != 0)
				return calls;
		}
	}
	return calls;
}

void
margin_pindex_scan_init(struct margin_pindex_scan *sc, int64_t lo,
			int64_t hi)
{
	sc->next_price = lo;
	sc->next_slot = 0;
	sc->hi = hi;
	sc->done = lo > hi;
}

size_t
margin_pindex_collect(const struct margin_pindex *ix,
		      struct margin_pindex_scan *sc, uint32_t *out, size_t cap)
{
	const struct leaf *lf;
	uint32_t pos;
	size_t n = 0;

	if (sc->done || cap == 0)
		return 0;
	seek(ix, sc->next_price, sc->next_slot, &lf, &pos);
	while (lf != NULL) {
		if (pos == lf->n) {
			lf = lf->next;
			pos = 0;
			continue;
		}
		if (lf->price[pos] > sc->hi || n == cap)
			break;
		out[n++] = lf->slot[pos];
		/* Resume strictly after this key; the very last key of the
		 * key space ends the scan. */
		if (lf->slot[pos] < UINT32_MAX) {
			sc->next_price = lf->price[pos];
			sc->next_slot = lf->slot[pos] + 1u;
		} else if (lf->price[pos] < INT64_MAX) {
			sc->next_price = lf->price[pos] + 1;
			sc->next_slot = 0;
		} else {
			sc->done = 1;
			return n;
		}
		pos++;
	}
	/* Stopped at the end, past hi, or with the buffer full: in the last
	 * case the scan goes on only if the next key is still in range. */
	if (lf == NULL || lf->price[pos] > sc->hi)
		sc->done = 1;
	return n;
}

/* margin_pindex_check's recursive walk. lo/hi bound the subtree's keys
 * (lo inclusive, hi exclusive; has_lo/has_hi say whether they apply). */
struct check_ctx {
	size_t keys;
	size_t leaves;
	size_t inners;
	const struct leaf *expect_next; /* leaf chain: next leaf expected */
	int chain_ok;
	const struct leaf *first;
};

static enum mk_status
check_node(const struct margin_pindex *ix, const void *node, unsigned depth,
	   int has_lo, int64_t lo_p, uint32_t lo_s,
	   int has_hi, int64_t hi_p, uint32_t hi_s,
	   struct check_ctx *cc, struct mk_err *err)
{
	int is_root = depth == 0;
	uint32_t k;

	if (depth == ix->height) {
		const struct leaf *lf = node;

		if (lf->n == 0 || lf->n > LEAF_CAP ||
		    (!is_root && lf->n < LEAF_MIN))
			return mk_err_set(err, MK_ESTATE,
					  "leaf with %u keys", (unsigned)lf->n);
		for (k = 0; k < lf->n; k++) {
			if (k > 0 && key_cmp(lf->price[k - 1u],
					     lf->slot[k - 1u], lf->price[k],
					     lf->slot[k]) >= 0)
				return mk_err_set(err, MK_ESTATE,
						  "leaf keys out of order");
			if (has_lo && key_cmp(lf->price[k], lf->slot[k],
					      lo_p, lo_s) < 0)
				return mk_err_set(err, MK_ESTATE,
						  "leaf key below separator");
			if (has_hi && key_cmp(lf->price[k], lf->slot[k],
					      hi_p, hi_s) >= 0)
				return mk_err_set(err, MK_ESTATE,
						  "leaf key at or above separator");
		}
		if (cc->leaves == 0)
			cc->first = lf;
		else if (cc->expect_next != lf)
			cc->chain_ok = 0;
		cc->expect_next = lf->next;
		cc->leaves++;
		cc->keys += lf->n;
		return MK_OK;
	} else {
		const struct inner *in = node;
		enum mk_status st;

		if (in->n > INNER_CAP || (is_root && in->n == 0) ||
		    (!is_root && in->n < INNER_MIN))
			return mk_err_set(err, MK_ESTATE,
					  "inner node with %u keys",
					  (unsigned)in->n);
		for (k = 0; k + 1u < in->n; k++)
			if (key_cmp(in->price[k], in->slot[k],
				    in->price[k + 1u], in->slot[k + 1u]) >= 0)
				return mk_err_set(err, MK_ESTATE,
						  "separators out of order");
		cc->inners++;
		for (k = 0; k <= in->n; k++) {
			int clo = k > 0 ? 1 : has_lo;
			int chi = k < in->n ? 1 : has_hi;
			int64_t lp = k > 0 ? in->price[k - 1u] : lo_p;
			uint32_t ls = k > 0 ? in->slot[k - 1u] : lo_s;
			int64_t hp = k < in->n ? in->price[k] : hi_p;
			uint32_t hs = k < in->n ? in->slot[k] : hi_s;

			st = check_node(ix, in->child[k], depth + 1u, clo, lp,
					ls, chi, hp, hs, cc, err);
			if (st != MK_OK)
				return st;
		}
		return MK_OK;
	}
}

enum mk_status
margin_pindex_check(const struct margin_pindex *ix, struct mk_err *err)
{
	struct check_ctx cc = { 0, 0, 0, NULL, 1, NULL };
	enum mk_status st;

	if (ix->root == NULL) {
		if (ix->count != 0 || ix->nleaves != 0 || ix->ninner != 0 ||
		    ix->height != 0)
			return mk_err_set(err, MK_ESTATE,
					  "empty tree with stale counters");
		return MK_OK;
	}
	if (ix->height >= MAX_HEIGHT)
		return mk_err_set(err, MK_ESTATE, "height %u", ix->height);
	st = check_node(ix, ix->root, 0, 0, 0, 0, 0, 0, 0, &cc, err);
	if (st != MK_OK)
		return st;
	if (!cc.chain_ok || cc.expect_next != NULL)
		return mk_err_set(err, MK_ESTATE, "leaf chain broken");
	if (cc.keys != ix->count)
		return mk_err_set(err, MK_ESTATE, "count %zu but %zu keys",
				  ix->count, cc.keys);
	if (cc.leaves != ix->nleaves || cc.inners != ix->ninner)
		return mk_err_set(err, MK_ESTATE,
				  "node accounting %zu/%zu, found %zu/%zu",
				  ix->nleaves, ix->ninner, cc.leaves,
				  cc.inners);
	return MK_OK;
}
