/*
 * view.c - the immutable views readers get from the feeds thread, and
 * the symbol index they search.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "daemon/feeds_int.h"
#include "daemon/feeds_thread.h"
#include "httpd/render_marks.h"
#include "httpd/response.h"

/* ---- symbol index ---- */

struct sym_key {
	const char *symbol;
	size_t i;
};

static int
sym_key_cmp(const void *a, const void *b)
{
	const struct sym_key *x = a, *y = b;

	return strcmp(x->symbol, y->symbol);
}

struct md_symidx *
md_symidx_build(const struct cfg *cfg)
{
	size_t n = cfg->ninstruments;
	struct md_symidx *s = malloc(sizeof *s + n * sizeof s->idx[0]);
	struct sym_key *k = calloc(n > 0 ? n : 1, sizeof *k);

	if (s == NULL || k == NULL) {
		free(s);
		free(k);
		return NULL;
	}
	for (size_t i = 0; i < n; i++)
		k[i] = (struct sym_key){ cfg->specs[i].symbol, i };
	qsort(k, n, sizeof *k, sym_key_cmp);
	atomic_init(&s->refs, 1);
	s->n = n;
	for (size_t i = 0; i < n; i++)
		s->idx[i] = k[i].i;
	free(k);
	return s;
}

void
md_symidx_unref(struct md_symidx *s)
{
	if (s != NULL && atomic_fetch_sub(&s->refs, 1) == 1)
		free(s);
}

/* ---- views ---- */

struct md_view *
md_view_alloc(size_t n)
{
	size_t sz = sizeof(struct md_view) +
		    n * (sizeof(struct httpd_buf *) + sizeof(uint64_t) +
			 sizeof(bool));
	struct md_view *v = calloc(1, sz);
	char *p;

	if (v == NULL)
		return NULL;
	atomic_init(&v->refs, 1);
	atomic_init(&v->all, NULL);
	v->n = n;
	/* one allocation: the struct, then the three arrays (pointers and
	 * uint64_t first, so every array is aligned) */
	p = (char *)(v + 1);
	v->marks = (struct httpd_buf **)(void *)p;
	p += n * sizeof(struct httpd_buf *);
	v->seq = (uint64_t *)(void *)p;
	p += n * sizeof(uint64_t);
	v->ever_valid = (bool *)p;
	return v;
}

void
md_view_ref(struct md_view *v)
{
	atomic_fetch_add_explicit(&v->refs, 1, memory_order_relaxed);
}

static void
view_free(struct md_view *v)
{
	for (size_t i = 0; i < v->n; i++)
		httpd_buf_unref(v->marks[i]);
	httpd_buf_unref(atomic_load(&v->all));
	agg_snapshot_release(v->snap);
	if (v->fs != NULL)
		atomic_fetch_sub(&v->fs->refs, 1);
	md_symidx_unref(v->idx);
	free(v);
}

void
md_view_release(const struct md_view *cv)
{
	struct md_view *v = (struct md_view *)(uintptr_t)cv;

	if (v != NULL &&
	    atomic_fetch_sub_explicit(&v->refs, 1, memory_order_acq_rel) == 1)
		view_free(v);
}

const struct agg_snapshot *
md_view_snapshot(const struct md_view *v)
{
	return v->snap;
}

size_t
md_view_count(const struct md_view *v)
{
	return v->n;
}

long
md_view_find(const struct md_view *v, const char *symbol)
{
	size_t lo = 0, hi = v->idx->n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2, i = v->idx->idx[mid];
		int c = strcmp(v->snap->marks[i]->symbol, symbol);

		if (c == 0)
			return (long)i;
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return -1;
}

struct httpd_buf *
md_view_mark(const struct md_view *v, size_t i)
{
	return i < v->n ? v->marks[i] : NULL;
}

struct httpd_buf *
md_view_all(const struct md_view *cv)
{
	/* the lazily built document is the one part of a view that is
	 * written after publication, once, by compare-and-swap */
	struct md_view *v = (struct md_view *)(uintptr_t)cv;
	struct httpd_buf *b = atomic_load(&v->all), *expect = NULL;

	if (b != NULL)
		return b;
	b = httpd_render_marks_list(v->marks, v->n);
	if (b == NULL)
		return NULL;
	if (!atomic_compare_exchange_strong(&v->all, &expect, b)) {
		httpd_buf_unref(b);
		return expect;
	}
	return b;
}

uint64_t
md_view_seq(const struct md_view *v, size_t i)
{
	return i < v->n ? v->seq[i] : 0;
}

bool
md_view_ever_valid(const struct md_view *v, size_t i)
{
	return i < v->n && v->ever_valid[i];
}

struct feed_health_table *
md_view_health(const struct md_view *v)
{
	return feed_poller_health(v->fs->poller);
}
