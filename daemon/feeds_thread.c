/*
 * feeds_thread.c - the feeds thread: its loop, poll results into the
 * book, publication of views and events, and reload. Feed sets are in
 * feedset.c, views in view.c.
 */
#include "config.h"

#include "daemon/feeds_thread.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "aggregator/book.h"
#include "daemon/feeds_int.h"
#include "daemon/log.h"
#include "daemon/render_feeds.h"
#include "feeds/health.h"
#include "feeds/poller.h"
#include "httpd/render_marks.h"
#include "httpd/response.h"
#include "httpd/sse.h"

/* Longest wait of one poller step, so that a reload or a stop request is
 * seen within this many ms. */
#define STEP_MAX_MS 250

/* Per-instrument state of the publisher. */
struct inst {
	char symbol[AGG_SYMBOL_MAX];
	uint64_t base;                  /* added to the book's seq */
	const struct agg_mark *mark;    /* last rendered (a reference) */
	struct httpd_buf *buf;          /* its bytes (a reference) */
	bool ever_valid;
	bool sse_init;
	uint64_t sse_seq;
	enum agg_mark_status sse_status;
	bool sse_valid, sse_held;
};

/* A reload request handed to the feeds thread. */
struct reload_req {
	const struct cfg *cfg;
	bool done;
	enum mk_status st;
	struct mk_err err;
	struct md_reload_info info;
};

struct md_feeds {
	struct md_feeds_config c;
	pthread_t thread;

	pthread_mutex_t mu;             /* guards the fields below it */
	pthread_cond_t cv;
	bool started;                   /* init finished (ok or not) */
	enum mk_status start_st;
	struct mk_err start_err;
	struct reload_req *pending;
	struct md_feedset *fs;          /* current, for stop */
	atomic_bool quit;
	atomic_bool failed;
	struct mk_err fail_err;         /* set before failed */

	pthread_mutex_t vmu;            /* guards view */
	struct md_view *view;

	/* Feeds thread only. */
	const struct cfg *cfg;
	struct agg_book *book;
	struct inst *inst;
	size_t ninst;
	struct md_symidx *idx;
	struct agg_quote *qscratch;
	size_t qcap;
	struct feed_health *hscratch;
	size_t hcap;
	int64_t last_now;
	bool all_valid_logged;
};

void
md_feeds_config_default(struct md_feeds_config *c)
{
	memset(c, 0, sizeof *c);
	c->tick_ms = 250;
	c->start_spread_ms = 1000;
	c->seed = 1;
}

static int64_t
now_mono(void)
{
	return feed_now_mono_ms();
}

/* Wall-clock ms for the book: in range and never going back. */
static int64_t
book_now(struct md_feeds *f, int64_t wall)
{
	if (wall < 0)
		wall = 0;
	if (wall > AGG_MAX_TIME_MS)
		wall = AGG_MAX_TIME_MS;
	if (wall < f->last_now)
		wall = f->last_now;
	f->last_now = wall;
	return wall;
}

/* ---- views ---- */

const struct md_view *
md_feeds_view(struct md_feeds *f)
{
	struct md_view *v;

	pthread_mutex_lock(&f->vmu);
	v = f->view;
	if (v != NULL)
		md_view_ref(v);
	pthread_mutex_unlock(&f->vmu);
	return v;
}

/* ---- publication ---- */

static void
log_mark_change(const struct agg_mark *m, const struct inst *in)
{
	struct md_log_line l;
	enum cfg_log_level lvl = m->valid_for_liquidation ? CFG_LOG_INFO
							   : CFG_LOG_WARN;

	md_log_begin(&l, lvl, "mark_status");
	md_log_str(&l, "symbol", m->symbol);
	md_log_str(&l, "from", agg_mark_status_name(in->sse_status));
	md_log_str(&l, "to", agg_mark_status_name(m->status));
	md_log_bool(&l, "valid", m->valid_for_liquidation);
	md_log_uint(&l, "sources_used", m->sources_used);
	md_log_uint(&l, "sources_total", m->sources_total);
	md_log_end(&l);
}

/* Publishes a new view when the book has published a new snapshot:
 * renders the marks that changed, sends their events and runs the
 * snapshot hook. */
static void
publish(struct md_feeds *f, int64_t now_ms)
{
	const struct agg_snapshot *snap = agg_book_acquire(f->book);
	struct md_view *v, *old;

	if (f->view != NULL && f->view->snap == snap) {
		agg_snapshot_release(snap);
		return;
	}
	v = md_view_alloc(snap->count);
	if (v == NULL) {
		agg_snapshot_release(snap);
		md_log_msg(CFG_LOG_ERROR, "publish_failed", "out of memory");
		return;
	}
	v->snap = snap;
	v->fs = f->fs;
	atomic_fetch_add(&f->fs->refs, 1);
	v->idx = f->idx;
	atomic_fetch_add(&f->idx->refs, 1);
	for (size_t i = 0; i < snap->count && i < f->ninst; i++) {
		const struct agg_mark *m = snap->marks[i];
		struct inst *in = &f->inst[i];
		uint64_t seq = in->base + m->seq;

		if (m != in->mark || in->buf == NULL) {
			struct httpd_buf *b = httpd_render_mark_buf(m, seq);

			if (b != NULL) {
				httpd_buf_unref(in->buf);
				in->buf = b;
				agg_mark_release(in->mark);
				in->mark = agg_mark_acquire(m);
			}
			/* else: serve the previous bytes; retried next time */
			if (b != NULL && in->sse_init &&
			    (seq != in->sse_seq || m->status != in->sse_status ||
			     m->valid_for_liquidation != in->sse_valid ||
			     m->held != in->sse_held)) {
				if (m->status != in->sse_status)
					log_mark_change(m, in);
				if (f->c.hub != NULL)
					httpd_sse_publish(f->c.hub, "mark",
							  httpd_buf_data(b),
							  httpd_buf_len(b), NULL);
			}
			if (b != NULL) {
				in->sse_init = true;
				in->sse_seq = seq;
				in->sse_status = m->status;
				in->sse_valid = m->valid_for_liquidation;
				in->sse_held = m->held;
			}
		}
		if (m->valid_for_liquidation)
			in->ever_valid = true;
		v->marks[i] = in->buf != NULL ? httpd_buf_ref(in->buf) : NULL;
		v->seq[i] = in->sse_init ? in->sse_seq : seq;
		v->ever_valid[i] = in->ever_valid;
	}
	if (!f->all_valid_logged) {
		size_t k = 0;

		while (k < v->n && v->ever_valid[k])
			k++;
		if (k == v->n) {
			md_log_msg(CFG_LOG_INFO, "marks_ready",
				   "every instrument has had a valid mark (%zu)",
				   v->n);
			f->all_valid_logged = true;
		}
	}
	pthread_mutex_lock(&f->vmu);
	old = f->view;
	f->view = v;
	pthread_mutex_unlock(&f->vmu);
	md_view_release(old);
	if (f->c.on_snapshot != NULL)
		f->c.on_snapshot(f->c.snapshot_arg, snap, now_ms);
}

/* Publishes a "feed" event and a log line when source s's state changed
 * since the last one. */
static void
check_source(struct md_feeds *f, struct md_src_state *s,
	     const struct feed_health *h)
{
	struct md_log_line l;
	enum cfg_log_level lvl;

	/* judged once each of its markets can have been polled (so that a
	 * source is not "degraded" merely because some markets have not
	 * answered yet) */
	if (h->polls < h->jobs || (s->known && s->state == h->state))
		return;
	lvl = h->state == FEED_STATE_UP ? CFG_LOG_INFO : CFG_LOG_WARN;
	md_log_begin(&l, lvl, "feed_state");
	md_log_str(&l, "source", h->source);
	md_log_str(&l, "from", s->known ? feed_state_name(s->state)
					: "unknown");
	md_log_str(&l, "to", feed_state_name(h->state));
	md_log_uint(&l, "consecutive_failures", h->consecutive_failures);
	if (h->last_error_ms > 0 && h->state != FEED_STATE_UP)
		md_log_str(&l, "last_error", h->last_error);
	md_log_end(&l);
	s->known = true;
	s->state = h->state;
	if (f->c.hub != NULL) {
		json_t *o = md_render_feed(h);
		char *text = o != NULL ? json_dumps(o, JSON_COMPACT) : NULL;

		if (text != NULL)
			httpd_sse_publish(f->c.hub, "feed", text, strlen(text),
					  NULL);
		free(text);
		json_decref(o);
	}
}

static void
check_one_source(struct md_feeds *f, size_t si)
{
	struct feed_health h;
	struct md_src_state *s = &f->fs->srcs[si];

	if (feed_health_get(feed_poller_health(f->fs->poller), s->name,
			    now_mono(), &h) == MK_OK)
		check_source(f, s, &h);
}

static void
check_all_sources(struct md_feeds *f)
{
	struct feed_health_table *t = feed_poller_health(f->fs->poller);
	size_t n = feed_health_count(t);

	if (n > f->hcap) {
		struct feed_health *h = realloc(f->hscratch, n * sizeof *h);

		if (h == NULL)
			return;
		f->hscratch = h;
		f->hcap = n;
	}
	n = feed_health_list(t, now_mono(), f->hscratch, f->hcap);
	if (n > f->hcap)
		n = f->hcap;
	/* the table lists sources in the order of their first job, which
	 * is the order of srcs */
	for (size_t i = 0; i < n && i < f->fs->nsrcs; i++)
		if (strcmp(f->fs->srcs[i].name, f->hscratch[i].source) == 0)
			check_source(f, &f->fs->srcs[i], &f->hscratch[i]);
}

/* ---- poll results ---- */

static void
on_result(void *arg, const struct feed_result *r)
{
	struct md_feeds *f = arg;
	struct md_job *j = r->user;
	int64_t now = book_now(f, r->recv_ms);
	enum mk_status st = MK_OK;

	if (r->outcome == FEED_OK && r->nquotes > 0) {
		j->has_quote = true;
		j->q = r->quotes[0].q;
		j->q_ms = now;
		j->has_err = false;
		for (size_t k = 0; k < j->nlegs; k++)
			f->qscratch[k] = j->q;
		if (j->nlegs > 0)
			st = agg_book_quotes(f->book, j->legs, f->qscratch,
					     j->nlegs, now);
	} else {
		enum agg_fetch_error kind = r->fail_class == FEED_FAIL_BAD_DATA
						    ? AGG_FETCH_BAD_DATA
						    : AGG_FETCH_TRANSIENT;
		struct md_log_line l;

		j->has_err = true;
		j->ekind = kind;
		snprintf(j->etext, sizeof j->etext, "%s",
			 r->text != NULL ? r->text : "");
		j->e_ms = now;
		for (size_t k = 0; k < j->nlegs && st == MK_OK; k++)
			st = agg_book_error(f->book, j->legs[k], kind, r->text,
					    now);
		md_log_begin(&l, CFG_LOG_DEBUG, "poll_failed");
		md_log_str(&l, "source", r->source);
		md_log_str(&l, "market", r->market);
		md_log_str(&l, "outcome", feed_outcome_name(r->outcome));
		md_log_str(&l, "class", feed_fail_class_name(r->fail_class));
		md_log_str(&l, "error", r->text);
		md_log_uint(&l, "consecutive_failures",
			    r->consecutive_failures);
		md_log_int(&l, "next_poll_in_ms", r->delay_ms);
		md_log_end(&l);
	}
	if (st != MK_OK)
		md_log_msg(CFG_LOG_ERROR, "aggregate_failed", "%s %s: %s",
			   r->source, r->market, mk_strstatus(st));
	publish(f, now);
	check_one_source(f, j->src);
}

/* ---- instruments ---- */

static void
inst_free(struct inst *v, size_t n)
{
	for (size_t i = 0; v != NULL && i < n; i++) {
		agg_mark_release(v[i].mark);
		httpd_buf_unref(v[i].buf);
	}
	free(v);
}

/* Per-instrument state for cfg, carrying seq, events and validity over
 * from old (by symbol). */
static struct inst *
inst_build(const struct cfg *cfg, const struct inst *old, size_t nold)
{
	struct inst *v = calloc(cfg->ninstruments > 0 ? cfg->ninstruments : 1,
				sizeof *v);

	if (v == NULL)
		return NULL;
	for (size_t i = 0; i < cfg->ninstruments; i++) {
		snprintf(v[i].symbol, sizeof v[i].symbol, "%s",
			 cfg->specs[i].symbol);
		for (size_t k = 0; k < nold; k++) {
			const struct inst *o = &old[k];

			if (strcmp(o->symbol, v[i].symbol) != 0)
				continue;
			v[i].base = o->sse_init ? o->sse_seq : o->base;
			v[i].ever_valid = o->ever_valid;
			v[i].sse_init = o->sse_init;
			v[i].sse_seq = o->sse_seq;
			v[i].sse_status = o->sse_status;
			v[i].sse_valid = o->sse_valid;
			v[i].sse_held = o->sse_held;
			break;
		}
	}
	return v;
}

/* ---- build and reload (feeds thread) ---- */

/* A feed set for cfg whose results come to on_result. */
static enum mk_status
feedset_build(struct md_feeds *f, const struct cfg *cfg,
	      struct md_feedset **out, struct mk_err *err)
{
	struct feed_poller_config pc;

	feed_poller_config_default(&pc);
	pc.on_result = on_result;
	pc.arg = f;
	pc.seed = f->c.seed;
	pc.start_spread_ms = f->c.start_spread_ms;
	return md_feedset_build(cfg, &pc, out, err);
}

/* md_plan_legs, and room in the quote scratch buffer for the plan. */
static enum mk_status
plan_legs(struct md_feeds *f, const struct md_feedset *fs,
	  const struct agg_book *book, const struct cfg *cfg,
	  struct md_leg_plan *plan, struct mk_err *err)
{
	enum mk_status st = md_plan_legs(fs, book, cfg, plan, err);
	struct agg_quote *q;

	if (st != MK_OK || plan->maxlegs <= f->qcap)
		return st;
	q = realloc(f->qscratch, plan->maxlegs * sizeof *q);
	if (q == NULL) {
		md_plan_free(plan);
		return mk_err_set(err, MK_ENOMEM, "out of memory");
	}
	f->qscratch = q;
	f->qcap = plan->maxlegs;
	return MK_OK;
}

static enum mk_status
initial_build(struct md_feeds *f, struct mk_err *err)
{
	const struct cfg *cfg = f->c.cfg;
	struct md_feedset *fs = NULL;
	struct md_leg_plan plan;
	enum mk_status st;

	st = agg_book_create(cfg->specs, cfg->ninstruments, &f->book, err);
	if (st != MK_OK)
		return st;
	st = feedset_build(f, cfg, &fs, err);
	if (st == MK_OK)
		st = plan_legs(f, fs, f->book, cfg, &plan, err);
	if (st == MK_OK) {
		md_plan_commit(fs, &plan);
		f->inst = inst_build(cfg, NULL, 0);
		f->idx = md_symidx_build(cfg);
		if (f->inst == NULL || f->idx == NULL)
			st = mk_err_set(err, MK_ENOMEM, "out of memory");
	}
	if (st != MK_OK) {
		md_feedset_free(fs);
		return st;
	}
	f->ninst = cfg->ninstruments;
	f->cfg = cfg;
	pthread_mutex_lock(&f->mu);
	f->fs = fs;
	pthread_mutex_unlock(&f->mu);
	publish(f, book_now(f, feed_now_wall_ms()));
	return MK_OK;
}

static enum mk_status
apply_reload(struct md_feeds *f, const struct cfg *cfg,
	     struct md_reload_info *info, struct mk_err *err)
{
	bool new_book = !md_cfg_book_same(f->cfg, cfg);
	bool new_jobs = !md_cfg_jobs_same(f->cfg, cfg);
	struct agg_book *nb = NULL;
	struct md_feedset *nfs = NULL, *old_fs = f->fs;
	struct inst *ninst = NULL;
	struct md_symidx *nidx = NULL;
	struct md_leg_plan plan = { 0 };
	enum mk_status st = MK_OK;
	int64_t now;

	memset(info, 0, sizeof *info);
	if (new_book) {
		st = agg_book_create(cfg->specs, cfg->ninstruments, &nb, err);
		if (st != MK_OK)
			goto fail;
		ninst = inst_build(cfg, f->inst, f->ninst);
		nidx = md_symidx_build(cfg);
		if (ninst == NULL || nidx == NULL) {
			st = mk_err_set(err, MK_ENOMEM, "out of memory");
			goto fail;
		}
	}
	if (new_jobs) {
		st = feedset_build(f, cfg, &nfs, err);
		if (st != MK_OK)
			goto fail;
	}
	if (new_book || new_jobs) {
		st = plan_legs(f, nfs != NULL ? nfs : f->fs,
			       nb != NULL ? nb : f->book, cfg, &plan, err);
		if (st != MK_OK)
			goto fail;
	}

	/* commit: nothing below fails */
	if (new_book || new_jobs)
		md_plan_commit(nfs != NULL ? nfs : f->fs, &plan);
	if (nfs != NULL) {
		md_feedset_carry(nfs, old_fs);
		pthread_mutex_lock(&f->mu);
		f->fs = nfs;
		if (atomic_load(&f->quit))
			feed_poller_stop(nfs->poller);
		pthread_mutex_unlock(&f->mu);
	}
	if (nb != NULL) {
		info->replayed = md_feedset_replay(f->fs, nb, f->qscratch);
		agg_book_destroy(f->book);
		f->book = nb;
		inst_free(f->inst, f->ninst);
		f->inst = ninst;
		f->ninst = cfg->ninstruments;
		md_symidx_unref(f->idx);
		f->idx = nidx;
		f->all_valid_logged = false;
	}
	f->cfg = cfg;
	now = book_now(f, feed_now_wall_ms());
	agg_book_tick(f->book, now);
	publish(f, now);
	/* the new view holds the new set; wait out readers of the old one */
	if (nfs != NULL)
		md_feedset_retire(old_fs);
	info->book_rebuilt = new_book;
	info->poller_rebuilt = new_jobs;
	info->instruments = cfg->ninstruments;
	info->jobs = f->fs->njobs;
	return MK_OK;
fail:
	md_plan_free(&plan);
	agg_book_destroy(nb);
	md_feedset_free(nfs);
	inst_free(ninst, cfg->ninstruments);
	md_symidx_unref(nidx);
	return st;
}

/* ---- the thread ---- */

static void
serve_reload(struct md_feeds *f)
{
	struct reload_req *rq;

	pthread_mutex_lock(&f->mu);
	rq = f->pending;
	pthread_mutex_unlock(&f->mu);
	if (rq == NULL)
		return;
	rq->st = apply_reload(f, rq->cfg, &rq->info, &rq->err);
	pthread_mutex_lock(&f->mu);
	rq->done = true;
	f->pending = NULL;
	pthread_cond_broadcast(&f->cv);
	pthread_mutex_unlock(&f->mu);
}

static void *
thread_main(void *arg)
{
	struct md_feeds *f = arg;
	struct mk_err err = { 0 };
	enum mk_status st = initial_build(f, &err);
	int64_t next_tick;

	pthread_mutex_lock(&f->mu);
	f->started = true;
	f->start_st = st;
	f->start_err = err;
	pthread_cond_broadcast(&f->cv);
	pthread_mutex_unlock(&f->mu);
	if (st != MK_OK)
		return NULL;

	next_tick = now_mono() + f->c.tick_ms;
	while (!atomic_load(&f->quit)) {
		int64_t now, wait;

		serve_reload(f);
		now = now_mono();
		if (now >= next_tick) {
			int64_t t = book_now(f, feed_now_wall_ms());

			agg_book_tick(f->book, t);
			publish(f, t);
			check_all_sources(f);
			next_tick += f->c.tick_ms;
			if (next_tick <= now)
				next_tick = now + f->c.tick_ms;
		}
		wait = next_tick - now;
		if (wait > STEP_MAX_MS)
			wait = STEP_MAX_MS;
		if (wait < 0)
			wait = 0;
		st = feed_poller_step(f->fs->poller, wait, &err);
		if (st != MK_OK) {
			f->fail_err = err;
			atomic_store(&f->failed, true);
			md_log_msg(CFG_LOG_ERROR, "feeds_failed", "%s", err.msg);
			break;
		}
	}
	/* refuse reloads from now on */
	pthread_mutex_lock(&f->mu);
	if (f->pending != NULL) {
		f->pending->st = mk_err_set(&f->pending->err, MK_ESTATE,
					    "the feeds thread has stopped");
		f->pending->done = true;
		f->pending = NULL;
		pthread_cond_broadcast(&f->cv);
	}
	pthread_mutex_unlock(&f->mu);
	return NULL;
}

static void
feeds_free(struct md_feeds *f)
{
	md_view_release(f->view);
	f->view = NULL;
	if (f->fs != NULL) {
		atomic_fetch_sub(&f->fs->refs, 1);
		md_feedset_free(f->fs);
	}
	agg_book_destroy(f->book);
	inst_free(f->inst, f->ninst);
	md_symidx_unref(f->idx);
	free(f->qscratch);
	free(f->hscratch);
	pthread_cond_destroy(&f->cv);
	pthread_mutex_destroy(&f->mu);
	pthread_mutex_destroy(&f->vmu);
	free(f);
}

enum mk_status
md_feeds_start(const struct md_feeds_config *c, struct md_feeds **out,
	       struct mk_err *err)
{
	struct md_feeds *f;
	enum mk_status st;
	int rc;

	*out = NULL;
	if (c->cfg == NULL || c->tick_ms <= 0)
		return mk_err_set(err, MK_EINVAL, "feeds: no config or tick");
	f = calloc(1, sizeof *f);
	if (f == NULL)
		return mk_err_set(err, MK_ENOMEM, "out of memory");
	f->c = *c;
	pthread_mutex_init(&f->mu, NULL);
	pthread_mutex_init(&f->vmu, NULL);
	pthread_cond_init(&f->cv, NULL);
	atomic_init(&f->quit, false);
	atomic_init(&f->failed, false);
	rc = pthread_create(&f->thread, NULL, thread_main, f);
	if (rc != 0) {
		feeds_free(f);
		return mk_err_set(err, MK_EIO, "cannot start the feeds thread: %s",
				  strerror(rc));
	}
	pthread_mutex_lock(&f->mu);
	while (!f->started)
		pthread_cond_wait(&f->cv, &f->mu);
	st = f->start_st;
	if (st != MK_OK && err != NULL)
		*err = f->start_err;
	pthread_mutex_unlock(&f->mu);
	if (st != MK_OK) {
		pthread_join(f->thread, NULL);
		feeds_free(f);
		return st;
	}
	*out = f;
	return MK_OK;
}

enum mk_status
md_feeds_reload(struct md_feeds *f, const struct cfg *cfg,
		struct md_reload_info *info, struct mk_err *err)
{
	struct reload_req rq;

	memset(&rq, 0, sizeof rq);
	rq.cfg = cfg;
	pthread_mutex_lock(&f->mu);
	if (atomic_load(&f->quit) || atomic_load(&f->failed)) {
		pthread_mutex_unlock(&f->mu);
		return mk_err_set(err, MK_ESTATE, "the feeds thread has stopped");
	}
	f->pending = &rq;
	/* the thread sees it within one step (STEP_MAX_MS) */
	while (!rq.done)
		pthread_cond_wait(&f->cv, &f->mu);
	pthread_mutex_unlock(&f->mu);
	if (rq.st != MK_OK) {
		if (err != NULL)
			*err = rq.err;
		return rq.st;
	}
	if (info != NULL)
		*info = rq.info;
	return MK_OK;
}

bool
md_feeds_failed(struct md_feeds *f, struct mk_err *why)
{
	if (!atomic_load(&f->failed))
		return false;
	if (why != NULL)
		*why = f->fail_err;
	return true;
}

void
md_feeds_stop(struct md_feeds *f)
{
	if (f == NULL)
		return;
	pthread_mutex_lock(&f->mu);
	atomic_store(&f->quit, true);
	if (f->fs != NULL)
		feed_poller_stop(f->fs->poller);
	pthread_mutex_unlock(&f->mu);
	pthread_join(f->thread, NULL);
	feeds_free(f);
}
