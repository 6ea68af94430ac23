#include "config.h"

#include "aggregator/snapshot.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

const char *
agg_mark_status_name(enum agg_mark_status st)
{
	switch (st) {
	case AGG_MARK_OK: return "ok";
	case AGG_MARK_DEGRADED: return "degraded";
	case AGG_MARK_NO_QUORUM: return "no_quorum";
	case AGG_MARK_STALE: return "stale";
	case AGG_MARK_TOO_UNCERTAIN: return "too_uncertain";
	case AGG_MARK_TOO_VOLATILE: return "too_volatile";
	case AGG_MARK_NON_POSITIVE: return "non_positive";
	}
	return "unknown";
}

const char *
agg_leg_state_name(enum agg_leg_state st)
{
	switch (st) {
	case AGG_LEG_USED: return "used";
	case AGG_LEG_STALE: return "stale";
	case AGG_LEG_OUTLIER: return "outlier";
	case AGG_LEG_ERROR: return "error";
	case AGG_LEG_INVALID: return "invalid";
	}
	return "unknown";
}

const char *
agg_exclusion_name(enum agg_exclusion r)
{
	switch (r) {
	case AGG_EXCL_NONE: return "";
	case AGG_EXCL_NO_DATA: return "no_data";
	case AGG_EXCL_ERROR: return "error";
	case AGG_EXCL_CLOCK_SKEW: return "clock_skew";
	case AGG_EXCL_STALE: return "stale";
	case AGG_EXCL_NON_POSITIVE: return "non_positive";
	case AGG_EXCL_BAD_SPREAD: return "bad_spread";
	case AGG_EXCL_OUT_OF_RANGE: return "out_of_range";
	case AGG_EXCL_CONVERSION_UNAVAILABLE: return "conversion_unavailable";
	case AGG_EXCL_OUTLIER: return "outlier";
	}
	return "unknown";
}

enum agg_leg_state
agg_exclusion_state(enum agg_exclusion r)
{
	switch (r) {
	case AGG_EXCL_NONE:
		return AGG_LEG_USED;
	case AGG_EXCL_NO_DATA:
	case AGG_EXCL_STALE:
		return AGG_LEG_STALE;
	case AGG_EXCL_ERROR:
		return AGG_LEG_ERROR;
	case AGG_EXCL_OUTLIER:
		return AGG_LEG_OUTLIER;
	case AGG_EXCL_CLOCK_SKEW:
	case AGG_EXCL_NON_POSITIVE:
	case AGG_EXCL_BAD_SPREAD:
	case AGG_EXCL_OUT_OF_RANGE:
	case AGG_EXCL_CONVERSION_UNAVAILABLE:
		break;
	}
	return AGG_LEG_INVALID;
}

/* ---- reference counts ------------------------------------------------ */

/* Objects are created non-const and only handed out as const, so casting
 * the const away to update the private counter is well defined. */
static void
ref_inc(atomic_uint_fast32_t *refs)
{
	/* Taking a reference needs no ordering: the caller already holds one
	 * (or the publisher's lock), which keeps the object alive. */
	atomic_fetch_add_explicit(refs, 1, memory_order_relaxed);
}

/* True when this was the last reference. acq_rel: every write made
 * through other references happens before the free. */
static bool
ref_dec(atomic_uint_fast32_t *refs)
{
	uint_fast32_t old;

	old = atomic_fetch_sub_explicit(refs, 1, memory_order_acq_rel);
	assert(old > 0);
	return old == 1;
}

/* ---- marks ---------------------------------------------------------- */

struct agg_mark *
agg_mark_create(size_t nlegs)
{
	struct agg_mark *m;

	if (nlegs > (SIZE_MAX - sizeof(*m)) / sizeof(m->legs[0]))
		return NULL;
	m = calloc(1, sizeof(*m) + nlegs * sizeof(m->legs[0]));
	if (m == NULL)
		return NULL;
	atomic_init(&m->_refs, 1);
	m->nlegs = nlegs;
	return m;
}

const struct agg_mark *
agg_mark_acquire(const struct agg_mark *m)
{
	if (m != NULL)
		ref_inc(&((struct agg_mark *)m)->_refs);
	return m;
}

void
agg_mark_release(const struct agg_mark *m)
{
	struct agg_mark *mm = (struct agg_mark *)m;

	if (mm != NULL && ref_dec(&mm->_refs))
		free(mm);
}

/* ---- snapshots ------------------------------------------------------ */

struct agg_snapshot *
agg_snapshot_create(size_t count)
{
	struct agg_snapshot *s;

	if (count > (SIZE_MAX - sizeof(*s)) / sizeof(s->marks[0]))
		return NULL;
	s = calloc(1, sizeof(*s) + count * sizeof(s->marks[0]));
	if (s == NULL)
		return NULL;
	atomic_init(&s->_refs, 1);
	s->count = count;
	return s;
}

const struct agg_snapshot *
agg_snapshot_acquire(const struct agg_snapshot *s)
{
	if (s != NULL)
		ref_inc(&((struct agg_snapshot *)s)->_refs);
	return s;
}

void
agg_snapshot_release(const struct agg_snapshot *s)
{
	struct agg_snapshot *ss = (struct agg_snapshot *)s;
	size_t i;

	if (ss == NULL || !ref_dec(&ss->_refs))
		return;
	for (i = 0; i < ss->count; i++)
		agg_mark_release(ss->marks[i]);
	free(ss);
}

const struct agg_mark *
agg_snapshot_find(const struct agg_snapshot *s, const char *symbol)
{
	size_t i;

	if (s == NULL || symbol == NULL)
		return NULL;
	for (i = 0; i < s->count; i++)
		if (s->marks[i] != NULL &&
		    strcmp(s->marks[i]->symbol, symbol) == 0)
			return s->marks[i];
	return NULL;
}

/* ---- publisher ------------------------------------------------------ */

enum mk_status
agg_pub_init(struct agg_pub *p)
{
	p->cur = NULL;
	if (pthread_mutex_init(&p->mu, NULL) != 0)
		return MK_EIO;
	return MK_OK;
}

void
agg_pub_clear(struct agg_pub *p)
{
	if (p == NULL)
		return;
	agg_snapshot_release(p->cur);
	p->cur = NULL;
	pthread_mutex_destroy(&p->mu);
}

void
agg_pub_publish(struct agg_pub *p, struct agg_snapshot *s)
{
	struct agg_snapshot *old;

	pthread_mutex_lock(&p->mu);
	old = p->cur;
	p->cur = s;
	pthread_mutex_unlock(&p->mu);
	agg_snapshot_release(old);
}

const struct agg_snapshot *
agg_pub_acquire(struct agg_pub *p)
{
	struct agg_snapshot *s;

	pthread_mutex_lock(&p->mu);
	s = p->cur;
	if (s != NULL)
		ref_inc(&s->_refs);
	pthread_mutex_unlock(&p->mu);
	return s;
}
