/*
 * margin_service.c - registry + store + threads + metrics (see
 * margin_service.h).
 */
#include "config.h"

#include "daemon/margin_service.h"

#include <errno.h>
#include <jansson.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "aggregator/snapshot.h"
#include "daemon/cfg.h"
#include "httpd/metrics.h"
#include "httpd/routes.h"
#include "httpd/routes_margin.h"
#include "httpd/sse.h"
#include "margin/math.h"
#include "margin/registry.h"
#include "margin/state.h"

#define DEFAULT_MAX_PENDING 1000000u
#define DEFAULT_RETRY_MS 1000u
/* Slots looked at per registry lock while listing. */
#define LIST_SCAN 65536u
/* Events read per page while replaying the log at start. */
#define REPLAY_PAGE 4096u

struct svc_inst {
	struct httpd_margin_instrument info;   /* brackets: the registry's */
	struct margin_brackets table;          /* the config's, prepared */
	bool has_table;
};

/* A transition waiting to be written. */
struct pending {
	struct pending *next;
	size_t inst;
	struct margin_event ev;
	char id[MARGIN_REGISTRY_MAX_ID + 1];
};

struct plist {
	struct pending *head, *tail;
	size_t n;
	size_t lost;        /* could not be allocated */
};

struct margin_service {
	struct svc_inst *inst;
	size_t ninst;

	pthread_mutex_t reg_mu;
	struct margin_registry *reg;
	size_t published[MARGIN_STATE_COUNT];   /* gauge values (reg_mu) */
	bool counts_published;

	pthread_mutex_t st_mu;                  /* the writer connection */
	struct margin_store *st;
	pthread_mutex_t rd_mu;                  /* the read connection */
	struct margin_store *rd;

	pthread_mutex_t snap_mu;
	const struct agg_snapshot *snap;
	uint64_t *last_seq;                     /* feeds thread only */
	bool *seen;

	pthread_mutex_t q_mu;
	pthread_cond_t q_cv;                    /* work or stop */
	pthread_cond_t idle_cv;                 /* queue drained */
	struct plist q;
	bool writing;
	bool stopping;
	/* The database refuses writes (full disk, read-only file), as seen
	 * by the event writer and by the HTTP writes, each until its own
	 * next successful write; readiness fails while either is set. */
	bool events_failing;
	char events_error[256];
	bool writes_failing;
	char writes_error[256];
	char *db_path;
	bool overflowing;
	pthread_t writer;
	bool writer_started;
	size_t max_pending;
	unsigned retry_ms;

	atomic_uint_fast64_t evaluations;
	atomic_uint_fast64_t written;
	atomic_uint_fast64_t dropped;
	atomic_uint_fast64_t store_errors;
	size_t skipped;

	struct httpd_sse_hub *hub;
	struct httpd_family *f_positions, *f_evals, *f_events, *f_dropped;
	struct httpd_family *f_pending, *f_store_errors, *f_tick;
	margin_service_log_fn log;
	void *log_arg;

	struct httpd_margin_ops ops;
	struct httpd_margin_routes routes;
};

/* ---- logging ---------------------------------------------------------- */

static void
log_stderr(void *arg, enum margin_service_level level, const char *msg)
{
	static const char *const names[] = { "debug", "info", "warn",
					     "error" };

	(void)arg;
	fprintf(stderr, "level=%s component=margin %s\n",
		names[(unsigned)level < 4u ? level : 3], msg);
}

static void slog(struct margin_service *svc, enum margin_service_level level,
		 const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static void
slog(struct margin_service *svc, enum margin_service_level level,
     const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	svc->log(svc->log_arg, level, msg);
}

/* Records a store failure of op: counter, metric and a log line. */
static void
store_failed(struct margin_service *svc, const char *op,
	     const struct mk_err *err)
{
	const char *labels[] = { op };

	atomic_fetch_add(&svc->store_errors, 1);
	if (svc->f_store_errors != NULL)
		httpd_metric_add(svc->f_store_errors, labels, 1);
	slog(svc, MARGIN_LOG_ERROR,
	     "msg=\"position store failed\" op=%s database=\"%s\" errno=%d"
	     " error=\"%s\"", op, svc->db_path, err->sys_errno, err->msg);
}

/*
 * After an HTTP write to the store (st is its result): a refusal of the
 * database (MK_EIO: full disk, read-only file) fails readiness as the
 * event writer's does, until a write succeeds again; a success clears
 * it. Other errors are logged and change nothing.
 */
static void
store_wrote(struct margin_service *svc, const char *op, enum mk_status st,
	    const struct mk_err *err)
{
	if (st != MK_OK && st != MK_ENOTFOUND)
		store_failed(svc, op, err);
	if (st != MK_OK && st != MK_EIO)
		return;
	pthread_mutex_lock(&svc->q_mu);
	if (st == MK_EIO) {
		svc->writes_failing = true;
		snprintf(svc->writes_error, sizeof(svc->writes_error), "%s",
			 err->msg);
	} else if (svc->writes_failing) {
		svc->writes_failing = false;
		slog(svc, MARGIN_LOG_INFO,
		     "msg=\"position store writable again\"");
	}
	pthread_mutex_unlock(&svc->q_mu);
}

/* ---- time ------------------------------------------------------------- */

static uint64_t
mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void
deadline_after(struct timespec *ts, unsigned ms)
{
	clock_gettime(CLOCK_MONOTONIC, ts);
	ts->tv_sec += (time_t)(ms / 1000u);
	ts->tv_nsec += (long)(ms % 1000u) * 1000000L;
	if (ts->tv_nsec >= 1000000000L) {
		ts->tv_sec++;
		ts->tv_nsec -= 1000000000L;
	}
}

static int
cond_init_mono(pthread_cond_t *cv)
{
	pthread_condattr_t a;
	int rc = pthread_condattr_init(&a);

	if (rc == 0)
		rc = pthread_condattr_setclock(&a, CLOCK_MONOTONIC);
	if (rc == 0)
		rc = pthread_cond_init(cv, &a);
	pthread_condattr_destroy(&a);
	return rc;
}

/* ---- metrics ---------------------------------------------------------- */

/* Sets markd_positions{state} where it changed. Under reg_mu. */
static void
publish_counts(struct margin_service *svc)
{
	size_t c[MARGIN_STATE_COUNT];

	if (svc->f_positions == NULL)
		return;
	margin_registry_state_counts(svc->reg, c);
	for (size_t s = 0; s < MARGIN_STATE_COUNT; s++) {
		const char *labels[] = {
			margin_state_name((enum margin_state)s),
		};

		if (svc->counts_published && c[s] == svc->published[s])
			continue;
		httpd_metric_set(svc->f_positions, labels, (double)c[s]);
		svc->published[s] = c[s];
	}
	svc->counts_published = true;
}

static enum mk_status
register_metrics(struct margin_service *svc, struct httpd_metrics *m,
		 struct mk_err *err)
{
	static const char *const state_l[] = { "state" };
	static const char *const op_l[] = { "op" };
	static const double tick_b[] = { 1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 1e-1,
					 1.0 };
	enum mk_status st;

	st = httpd_metrics_family(m, HTTPD_METRIC_GAUGE, "markd_positions",
				  "Registered positions by reported state.",
				  state_l, 1, NULL, 0, &svc->f_positions, err);
	if (st == MK_OK)
		st = httpd_metrics_family(
			m, HTTPD_METRIC_COUNTER,
			"markd_position_evaluations_total",
			"Positions evaluated by mark ticks.", NULL, 0, NULL,
			0, &svc->f_evals, err);
	if (st == MK_OK)
		st = httpd_metrics_family(
			m, HTTPD_METRIC_COUNTER,
			"markd_liquidation_events_total",
			"State transitions written to the event log, by the"
			" state entered.",
			state_l, 1, NULL, 0, &svc->f_events, err);
	if (st == MK_OK)
		st = httpd_metrics_family(
			m, HTTPD_METRIC_COUNTER,
			"markd_position_events_dropped_total",
			"Transitions lost because the queue was full or"
			" memory ran out.",
			NULL, 0, NULL, 0, &svc->f_dropped, err);
	if (st == MK_OK)
		st = httpd_metrics_family(
			m, HTTPD_METRIC_GAUGE, "markd_position_events_pending",
			"Transitions waiting to be written to the store.",
			NULL, 0, NULL, 0, &svc->f_pending, err);
	if (st == MK_OK)
		st = httpd_metrics_family(
			m, HTTPD_METRIC_COUNTER,
			"markd_position_store_errors_total",
			"Failed writes and reads of the position store.",
			op_l, 1, NULL, 0, &svc->f_store_errors, err);
	if (st == MK_OK)
		st = httpd_metrics_family(
			m, HTTPD_METRIC_HISTOGRAM, "markd_margin_tick_seconds",
			"Time the registry takes for one mark of one"
			" instrument.",
			NULL, 0, tick_b, sizeof(tick_b) / sizeof(tick_b[0]),
			&svc->f_tick, err);
	return st;
}

/* ---- the event queue -------------------------------------------------- */

/* margin_registry_event_fn: collects into a local list (no lock). */
static void
collect_event(void *ctx, const struct margin_registry_event *e)
{
	struct plist *l = ctx;
	struct pending *p = malloc(sizeof(*p));

	if (p == NULL) {
		l->lost++;
		return;
	}
	p->next = NULL;
	p->inst = e->inst;
	p->ev = e->ev;
	snprintf(p->id, sizeof(p->id), "%s", e->id);
	if (l->tail != NULL)
		l->tail->next = p;
	else
		l->head = p;
	l->tail = p;
	l->n++;
}

static void
plist_free(struct pending *p)
{
	while (p != NULL) {
		struct pending *n = p->next;

		free(p);
		p = n;
	}
}

static void
count_dropped(struct margin_service *svc, size_t n)
{
	if (n == 0)
		return;
	atomic_fetch_add(&svc->dropped, n);
	if (svc->f_dropped != NULL)
		httpd_metric_add(svc->f_dropped, NULL, (double)n);
}

/* Hands a local list to the writer. Called under reg_mu, so that the
 * queue holds transitions in the order the registry made them. */
static void
enqueue(struct margin_service *svc, struct plist *l)
{
	size_t lost = l->lost, room;

	if (l->n == 0 && lost == 0)
		return;
	pthread_mutex_lock(&svc->q_mu);
	room = svc->q.n < svc->max_pending ? svc->max_pending - svc->q.n : 0;
	if (l->n > room) {
		/* keep the first `room`, drop the rest */
		struct pending *p = l->head, *cut;

		lost += l->n - room;
		if (room == 0) {
			plist_free(l->head);
			l->head = l->tail = NULL;
		} else {
			for (size_t i = 1; i < room; i++)
				p = p->next;
			cut = p->next;
			p->next = NULL;
			l->tail = p;
			plist_free(cut);
		}
		l->n = room;
		if (!svc->overflowing)
			slog(svc, MARGIN_LOG_ERROR,
			     "msg=\"event queue full: transitions dropped\""
			     " cap=%zu", svc->max_pending);
		svc->overflowing = true;
	} else if (svc->q.n + l->n < svc->max_pending / 2) {
		svc->overflowing = false;
	}
	if (l->head != NULL) {
		if (svc->q.tail != NULL)
			svc->q.tail->next = l->head;
		else
			svc->q.head = l->head;
		svc->q.tail = l->tail;
		svc->q.n += l->n;
		pthread_cond_signal(&svc->q_cv);
	}
	if (svc->f_pending != NULL)
		httpd_metric_set(svc->f_pending, NULL, (double)svc->q.n);
	pthread_mutex_unlock(&svc->q_mu);
	count_dropped(svc, lost);
	memset(l, 0, sizeof(*l));
}

/* The JSON body of an event (what the store keeps); malloc'd text. */
static char *
event_body(const struct margin_service *svc, const struct pending *p)
{
	const struct margin_event *ev = &p->ev;
	char price[MK_DEC_STRLEN], conf[MK_DEC_STRLEN], at[40];
	json_t *o;
	char *text;

	mk_dec_format(ev->price, price, sizeof(price));
	mk_dec_format(ev->conf, conf, sizeof(conf));
	o = json_pack(
		"{s:s,s:s,s:s,s:s,s:s,s:s,s:s,"
		"s:{s:s,s:s,s:s,s:b,s:I,s:I},"
		"s:s,s:I,s:I,s:I,s:I}",
		"id", p->id, "symbol", svc->inst[p->inst].info.symbol,
		"from", margin_state_name(ev->from),
		"to", margin_state_name(ev->to),
		"last_valid_state", margin_state_name(ev->last_valid),
		"reason", margin_reason_name(ev->reason),
		"reason_text", ev->text,
		"mark", "price", price, "conf", conf,
		"status", agg_mark_status_name((enum agg_mark_status)ev->status),
		"valid_for_liquidation", ev->valid_for_liquidation,
		"sources_used", (json_int_t)ev->sources_used,
		"seq", (json_int_t)ev->seq,
		"at", httpd_margin_time(ev->time_ms, at, sizeof(at)),
		"time_ms", (json_int_t)ev->time_ms,
		"breach_marks", (json_int_t)ev->breach_marks,
		"breach_ms", (json_int_t)ev->breach_ms,
		"flags", (json_int_t)ev->flags);
	if (o == NULL)
		return NULL;
	text = json_dumps(o, JSON_COMPACT);
	json_decref(o);
	return text;
}

/* Writes one event and publishes it: false when the store failed. */
static bool
write_event(struct margin_service *svc, const struct pending *p)
{
	struct margin_store_event_in in;
	struct mk_err err;
	char *body = event_body(svc, p), *sse = NULL;
	int64_t seq = 0;
	enum mk_status st;

	if (body == NULL) {
		slog(svc, MARGIN_LOG_ERROR,
		     "msg=\"out of memory: transition dropped\" id=%s", p->id);
		count_dropped(svc, 1);
		return true;
	}
	memset(&err, 0, sizeof(err));
	in.position_id = p->id;
	in.symbol = svc->inst[p->inst].info.symbol;
	in.time_ms = p->ev.time_ms > 0 ? p->ev.time_ms : 0;
	in.body = body;
	in.body_len = strlen(body);
	pthread_mutex_lock(&svc->st_mu);
	st = margin_store_append_event(svc->st, &in, &seq, &err);
	pthread_mutex_unlock(&svc->st_mu);
	if (st != MK_OK) {
		free(body);
		if (st == MK_EIO) {
			pthread_mutex_lock(&svc->q_mu);
			snprintf(svc->events_error, sizeof(svc->events_error),
				 "%s", err.msg);
			pthread_mutex_unlock(&svc->q_mu);
			store_failed(svc, "append_event", &err);
			return false;
		}
		/* not the disk: this event cannot be written at all */
		store_failed(svc, "append_event", &err);
		count_dropped(svc, 1);
		return true;
	}
	atomic_fetch_add(&svc->written, 1);
	if (svc->f_events != NULL) {
		const char *labels[] = { margin_state_name(p->ev.to) };

		httpd_metric_add(svc->f_events, labels, 1);
	}
	if (svc->hub != NULL) {
		size_t n = strlen(body);

		/* {"seq":N, + the body without its "{" */
		sse = malloc(n + 32);
		if (sse != NULL) {
			int k = snprintf(sse, 32, "{\"seq\":%lld,",
					 (long long)seq);

			memcpy(sse + k, body + 1, n);  /* with the NUL */
			httpd_sse_publish(svc->hub, "position", sse,
					  (size_t)k + n - 1, NULL);
		}
	}
	free(sse);
	free(body);
	return true;
}

static void *
writer_main(void *arg)
{
	struct margin_service *svc = arg;

	pthread_mutex_lock(&svc->q_mu);
	for (;;) {
		struct pending *p;
		bool ok;

		while (svc->q.head == NULL && !svc->stopping)
			pthread_cond_wait(&svc->q_cv, &svc->q_mu);
		if (svc->q.head == NULL)
			break;
		p = svc->q.head;
		svc->q.head = p->next;
		if (svc->q.head == NULL)
			svc->q.tail = NULL;
		svc->q.n--;
		svc->writing = true;
		pthread_mutex_unlock(&svc->q_mu);

		ok = write_event(svc, p);

		pthread_mutex_lock(&svc->q_mu);
		svc->writing = false;
		if (ok) {
			free(p);
			if (svc->events_failing) {
				svc->events_failing = false;
				slog(svc, MARGIN_LOG_INFO,
				     "msg=\"position store writable again\"");
			}
		} else if (svc->stopping) {
			slog(svc, MARGIN_LOG_ERROR,
			     "msg=\"stopping: transition not written\" id=%s",
			     p->id);
			free(p);
			count_dropped(svc, 1);
		} else {
			struct timespec dl;

			/* keep it first and retry after a pause */
			p->next = svc->q.head;
			svc->q.head = p;
			if (svc->q.tail == NULL)
				svc->q.tail = p;
			svc->q.n++;
			svc->events_failing = true;
			deadline_after(&dl, svc->retry_ms);
			while (!svc->stopping &&
			       pthread_cond_timedwait(&svc->q_cv, &svc->q_mu,
						      &dl) != ETIMEDOUT)
				;
		}
		if (svc->f_pending != NULL)
			httpd_metric_set(svc->f_pending, NULL,
					 (double)svc->q.n);
		if (svc->q.head == NULL)
			pthread_cond_broadcast(&svc->idle_cv);
	}
	pthread_cond_broadcast(&svc->idle_cv);
	pthread_mutex_unlock(&svc->q_mu);
	return NULL;
}

bool
margin_service_flush(struct margin_service *svc, unsigned timeout_ms)
{
	struct timespec dl;
	bool done;

	deadline_after(&dl, timeout_ms);
	pthread_mutex_lock(&svc->q_mu);
	while ((svc->q.head != NULL || svc->writing) &&
	       pthread_cond_timedwait(&svc->idle_cv, &svc->q_mu, &dl) !=
		       ETIMEDOUT)
		;
	done = svc->q.head == NULL && !svc->writing;
	pthread_mutex_unlock(&svc->q_mu);
	return done;
}

/* ---- ticks ------------------------------------------------------------ */

static void
tick_of_mark(const struct agg_mark *m, struct margin_tick *t)
{
	memset(t, 0, sizeof(*t));
	if (m->has_price) {
		t->price = m->price;
		t->conf = m->conf;
	}
	t->valid_for_liquidation = m->valid_for_liquidation && m->has_price;
	t->status = (int)m->status;
	t->sources_used = m->sources_used;
	t->seq = m->seq;
	t->time_ms = m->updated_at_ms;
}

/* The registry index of a snapshot's mark i, or false. */
static bool
mark_inst(const struct margin_service *svc, size_t i, const struct agg_mark *m,
	  size_t *inst)
{
	if (i < svc->ninst && strcmp(svc->inst[i].info.symbol, m->symbol) == 0) {
		*inst = i;
		return true;
	}
	return margin_registry_find(svc->reg, m->symbol, inst) == MK_OK;
}

void
margin_service_on_snapshot(void *arg, const struct agg_snapshot *snap,
			   int64_t now_ms)
{
	struct margin_service *svc = arg;
	const struct agg_snapshot *old;

	(void)now_ms;
	if (snap == NULL)
		return;
	agg_snapshot_acquire(snap);
	pthread_mutex_lock(&svc->snap_mu);
	old = svc->snap;
	svc->snap = snap;
	pthread_mutex_unlock(&svc->snap_mu);
	agg_snapshot_release(old);

	for (size_t i = 0; i < snap->count; i++) {
		const struct agg_mark *m = snap->marks[i];
		struct margin_registry_tick_stats ts;
		struct margin_tick tick;
		struct plist l;
		uint64_t t0;
		size_t inst;

		if (m == NULL || !mark_inst(svc, i, m, &inst))
			continue;
		if (svc->seen[inst] && svc->last_seq[inst] == m->seq)
			continue;
		svc->seen[inst] = true;
		svc->last_seq[inst] = m->seq;
		tick_of_mark(m, &tick);
		memset(&l, 0, sizeof(l));
		t0 = mono_ns();
		pthread_mutex_lock(&svc->reg_mu);
		margin_registry_on_mark(svc->reg, inst, &tick, collect_event,
					&l, &ts);
		publish_counts(svc);
		enqueue(svc, &l);
		pthread_mutex_unlock(&svc->reg_mu);
		if (svc->f_tick != NULL)
			httpd_metric_observe(svc->f_tick, NULL,
					     (double)(mono_ns() - t0) / 1e9);
		if (ts.visited > 0) {
			atomic_fetch_add(&svc->evaluations, ts.visited);
			if (svc->f_evals != NULL)
				httpd_metric_add(svc->f_evals, NULL,
						 (double)ts.visited);
		}
	}
}

/* ---- the ops of the HTTP routes --------------------------------------- */

static bool
op_instrument(void *arg, const char *symbol,
	      struct httpd_margin_instrument *out)
{
	struct margin_service *svc = arg;
	size_t i;

	/* the instrument table never changes: no lock */
	if (margin_registry_find(svc->reg, symbol, &i) != MK_OK)
		return false;
	*out = svc->inst[i].info;
	return true;
}

static bool
op_mark(void *arg, size_t inst, struct httpd_margin_mark *out)
{
	struct margin_service *svc = arg;
	const struct agg_snapshot *s;
	const struct agg_mark *m = NULL;
	bool ok = false;

	if (inst >= svc->ninst)
		return false;
	pthread_mutex_lock(&svc->snap_mu);
	s = agg_snapshot_acquire(svc->snap);
	pthread_mutex_unlock(&svc->snap_mu);
	if (s == NULL)
		return false;
	if (inst < s->count && s->marks[inst] != NULL &&
	    strcmp(s->marks[inst]->symbol, svc->inst[inst].info.symbol) == 0)
		m = s->marks[inst];
	else
		m = agg_snapshot_find(s, svc->inst[inst].info.symbol);
	if (m != NULL && m->has_price) {
		memset(out, 0, sizeof(*out));
		tick_of_mark(m, &out->tick);
		out->status = agg_mark_status_name(m->status);
		out->has_volatility = m->has_volatility;
		out->volatility = m->volatility;
		ok = true;
	}
	agg_snapshot_release(s);
	return ok;
}

static enum mk_status
op_put(void *arg, const char *id, const struct httpd_margin_input *in,
       const char *body, size_t len, bool *created, struct mk_err *err)
{
	struct margin_service *svc = arg;
	struct plist l;
	enum mk_status st;

	memset(&l, 0, sizeof(l));
	pthread_mutex_lock(&svc->st_mu);
	pthread_mutex_lock(&svc->reg_mu);
	st = margin_registry_room(svc->reg, id, in->inst.index,
				  in->custom_brackets ? &in->brackets : NULL,
				  err);
	pthread_mutex_unlock(&svc->reg_mu);
	if (st == MK_OK) {
		st = margin_store_put_position(svc->st, id, in->inst.symbol,
					       body, len, -1, NULL, err);
		store_wrote(svc, "put_position", st, err);
	}
	if (st == MK_OK) {
		pthread_mutex_lock(&svc->reg_mu);
		st = margin_registry_put(svc->reg, id, in->inst.index,
					 &in->pos, NULL, collect_event, &l,
					 created, err);
		publish_counts(svc);
		enqueue(svc, &l);
		pthread_mutex_unlock(&svc->reg_mu);
		if (st != MK_OK)
			slog(svc, MARGIN_LOG_ERROR,
			     "msg=\"position stored but not registered\""
			     " id=%s error=\"%s\"", id, err->msg);
	}
	pthread_mutex_unlock(&svc->st_mu);
	return st;
}

static enum mk_status
op_get(void *arg, const char *id, struct margin_registry_view *out)
{
	struct margin_service *svc = arg;
	enum mk_status st;

	pthread_mutex_lock(&svc->reg_mu);
	st = margin_registry_get(svc->reg, id, out);
	pthread_mutex_unlock(&svc->reg_mu);
	return st;
}

static enum mk_status
op_remove(void *arg, const char *id, struct mk_err *err)
{
	struct margin_service *svc = arg;
	enum mk_status st, rs;

	pthread_mutex_lock(&svc->st_mu);
	st = margin_store_delete_position(svc->st, id, -1, err);
	store_wrote(svc, "delete_position", st, err);
	if (st == MK_OK || st == MK_ENOTFOUND) {
		pthread_mutex_lock(&svc->reg_mu);
		rs = margin_registry_remove(svc->reg, id);
		publish_counts(svc);
		pthread_mutex_unlock(&svc->reg_mu);
		if (rs == MK_OK)
			st = MK_OK;
	}
	pthread_mutex_unlock(&svc->st_mu);
	return st;
}

/* The most collateral removable now: the least of what keeps health >=
 * 1 + buffer and MB >= IM at the mark and at the adverse edge. */
static enum mk_status
max_removable(const struct svc_inst *si, const struct margin_position *p,
	      const struct httpd_margin_mark *m, struct mk_dec *out,
	      struct mk_err *err)
{
	const struct margin_params *prm = &si->info.params;
	struct mk_dec h = MK_DEC(10000 + (int64_t)prm->buffer_bps, 4);
	struct mk_dec adv, a, b;
	enum mk_status st;

	st = p->side == MARGIN_LONG ? mk_dec_sub(m->tick.price, m->tick.conf,
						 &adv)
				    : mk_dec_add(m->tick.price, m->tick.conf,
						 &adv);
	if (st != MK_OK)
		return mk_err_set(err, MK_ESTATE, "the mark's band is out of"
				  " range");
	st = margin_max_removable(p, prm, m->tick.price, h, &a, err);
	if (st != MK_OK)
		return st;
	if (!mk_dec_is_pos(adv)) {
		*out = MK_DEC(0, 0);
		return MK_OK;
	}
	st = margin_max_removable(p, prm, adv, h, &b, err);
	if (st != MK_OK)
		return st;
	*out = mk_dec_cmp(a, b) <= 0 ? a : b;
	if (mk_dec_is_neg(*out))
		*out = MK_DEC(0, 0);
	return MK_OK;
}

static enum mk_status
op_collateral(void *arg, const char *id, struct mk_dec delta, bool *has_max,
	      struct mk_dec *maxp, struct mk_err *err)
{
	struct margin_service *svc = arg;
	struct margin_registry_view v;
	struct margin_position p;
	struct httpd_margin_mark m;
	struct plist l;
	char a[MK_DEC_STRLEN], b[MK_DEC_STRLEN];
	char *body = NULL;
	json_t *canon;
	enum mk_status st;

	*has_max = false;
	memset(&l, 0, sizeof(l));
	pthread_mutex_lock(&svc->st_mu);
	pthread_mutex_lock(&svc->reg_mu);
	st = margin_registry_get(svc->reg, id, &v);
	pthread_mutex_unlock(&svc->reg_mu);
	if (st != MK_OK) {
		pthread_mutex_unlock(&svc->st_mu);
		return mk_err_set(err, st, "no position \"%s\"", id);
	}
	p = v.pos;
	if (mk_dec_add(v.pos.collateral, delta, &p.collateral) != MK_OK) {
		st = mk_err_set(err, MK_EINVAL, "delta: the new collateral"
				" does not fit");
		goto out;
	}
	if (mk_dec_is_neg(delta)) {
		struct mk_dec want, max;

		if (!op_mark(svc, v.inst, &m) ||
		    !margin_tick_usable(&m.tick)) {
			st = mk_err_set(err, MK_ESTATE,
					"delta: withdrawals are refused while"
					" the mark of %s is not valid for"
					" liquidation", v.symbol);
			goto out;
		}
		st = max_removable(&svc->inst[v.inst], &v.pos, &m, &max, err);
		if (st != MK_OK) {
			st = mk_err_set(err, MK_ESTATE, "delta: cannot compute"
					" the most removable: %s", err->msg);
			goto out;
		}
		*has_max = true;
		*maxp = max;
		mk_dec_neg(delta, &want);
		if (mk_dec_cmp(want, max) > 0) {
			mk_dec_format(want, a, sizeof(a));
			mk_dec_format(max, b, sizeof(b));
			st = mk_err_set(err, MK_ESTATE,
					"delta: withdrawing %s exceeds the most"
					" removable at the current mark, %s"
					" (the rest keeps health >= 1 + buffer"
					" at the adverse edge and the margin"
					" balance above the initial margin)",
					a, b);
			goto out;
		}
	}
	canon = httpd_margin_position_json(v.symbol, &p, v.custom_brackets);
	body = canon != NULL ? json_dumps(canon, JSON_COMPACT) : NULL;
	json_decref(canon);
	if (body == NULL) {
		st = mk_err_set(err, MK_ENOMEM, "out of memory");
		goto out;
	}
	st = margin_store_put_position(svc->st, id, v.symbol, body,
				       strlen(body), -1, NULL, err);
	store_wrote(svc, "put_position", st, err);
	if (st != MK_OK)
		goto out;
	pthread_mutex_lock(&svc->reg_mu);
	st = margin_registry_set_collateral(svc->reg, id, p.collateral,
					    collect_event, &l, err);
	publish_counts(svc);
	enqueue(svc, &l);
	pthread_mutex_unlock(&svc->reg_mu);
	if (st != MK_OK)
		slog(svc, MARGIN_LOG_ERROR,
		     "msg=\"collateral stored but not registered\" id=%s"
		     " error=\"%s\"", id, err->msg);
out:
	pthread_mutex_unlock(&svc->st_mu);
	margin_registry_view_release(&v);
	free(body);
	return st;
}

static size_t
op_list(void *arg, uint32_t *cursor, const struct margin_registry_filter *f,
	struct margin_registry_view *out, size_t cap, bool *end)
{
	struct margin_service *svc = arg;
	size_t n;

	pthread_mutex_lock(&svc->reg_mu);
	n = margin_registry_list(svc->reg, cursor, f, out, cap, LIST_SCAN,
				 end);
	pthread_mutex_unlock(&svc->reg_mu);
	return n;
}

static enum mk_status
op_events(void *arg, int64_t since, size_t limit, margin_store_event_fn fn,
	  void *ctx, struct mk_err *err)
{
	struct margin_service *svc = arg;
	enum mk_status st;

	pthread_mutex_lock(&svc->rd_mu);
	st = margin_store_list_events(svc->rd, since, limit, fn, ctx, err);
	pthread_mutex_unlock(&svc->rd_mu);
	if (st == MK_EIO)
		store_failed(svc, "list_events", err);
	return st;
}

/* ---- start ------------------------------------------------------------ */

static enum mk_status
instruments_from_cfg(struct margin_service *svc, const struct cfg *cfg,
		     struct mk_err *err)
{
	svc->ninst = cfg->ninstruments;
	svc->inst = calloc(svc->ninst ? svc->ninst : 1, sizeof(*svc->inst));
	if (svc->inst == NULL)
		return mk_err_set(err, MK_ENOMEM, "out of memory");
	for (size_t i = 0; i < svc->ninst; i++) {
		const struct agg_instrument_spec *spec = &cfg->specs[i];
		const struct cfg_margin *cm = &cfg->instruments[i].margin;
		struct svc_inst *si = &svc->inst[i];
		struct httpd_margin_instrument *info = &si->info;
		enum mk_status st;

		info->index = i;
		snprintf(info->symbol, sizeof(info->symbol), "%s",
			 spec->symbol);
		info->kind = cm->contract == CFG_INVERSE ? MARGIN_INVERSE
							 : MARGIN_LINEAR;
		info->has_contract_size = cm->contract == CFG_INVERSE;
		info->contract_size = cm->contract_size;
		margin_params_default(&info->params);
		info->params.price_scale = spec->params.scale;
		info->params.buffer_bps = cm->safe_buffer_bps;
		info->params.confirm_marks = cm->confirm_count;
		info->params.confirm_ms = cm->confirm_ms;
		if (cm->nbrackets == 0)
			continue;
		if (cm->nbrackets > MARGIN_MAX_BRACKETS)
			return mk_err_set(err, MK_ECONFIG,
					  "instruments[%zu].margin.brackets:"
					  " at most %d brackets are supported",
					  i, MARGIN_MAX_BRACKETS);
		si->table.n = cm->nbrackets;
		for (size_t k = 0; k < cm->nbrackets; k++) {
			struct margin_bracket *b = &si->table.b[k];

			b->floor = cm->brackets[k].floor;
			b->cap = cm->brackets[k].cap;
			b->has_cap = true;
			b->mmr = cm->brackets[k].mmr;
			b->cum = cm->brackets[k].cum;
			b->has_cum = true;
		}
		st = margin_brackets_prepare(&si->table, err);
		if (st != MK_OK) {
			mk_err_prefix(err, "instruments[%zu].margin", i);
			return MK_ECONFIG;
		}
		si->has_table = true;
	}
	return MK_OK;
}

static enum mk_status
make_registry(struct margin_service *svc, struct mk_err *err)
{
	struct margin_registry_instrument *ri;
	enum mk_status st;

	ri = calloc(svc->ninst ? svc->ninst : 1, sizeof(*ri));
	if (ri == NULL)
		return mk_err_set(err, MK_ENOMEM, "out of memory");
	for (size_t i = 0; i < svc->ninst; i++) {
		ri[i].symbol = svc->inst[i].info.symbol;
		ri[i].params = svc->inst[i].info.params;
		ri[i].brackets = svc->inst[i].has_table ? &svc->inst[i].table
							: NULL;
	}
	st = margin_registry_create(ri, svc->ninst, &svc->reg, err);
	free(ri);
	if (st != MK_OK)
		return st == MK_ENOMEM ? st : MK_ECONFIG;
	for (size_t i = 0; i < svc->ninst; i++)
		svc->inst[i].info.brackets =
			margin_registry_brackets(svc->reg, i);
	return MK_OK;
}

static enum mk_status
load_position(void *ctx, const struct margin_store_position *sp)
{
	struct margin_service *svc = ctx;
	struct httpd_margin_input *in;
	char field[HTTPD_MARGIN_FIELD_MAX];
	json_error_t je;
	struct mk_err err;
	json_t *j;
	enum mk_status st;

	in = malloc(sizeof(*in));
	if (in == NULL)
		return MK_ENOMEM;
	j = json_loadb(sp->body, sp->body_len, JSON_REJECT_DUPLICATES, &je);
	if (j == NULL) {
		snprintf(err.msg, sizeof(err.msg), "not JSON: %s", je.text);
		st = MK_EPARSE;
	} else {
		st = httpd_margin_parse(j, HTTPD_MARGIN_STORED, op_instrument,
					svc, "", in, field, sizeof(field),
					&err);
	}
	json_decref(j);
	if (st == MK_OK)
		st = margin_registry_put(svc->reg, sp->id, in->inst.index,
					 &in->pos, NULL, NULL, NULL, NULL,
					 &err);
	free(in);
	if (st == MK_ENOMEM)
		return st;
	if (st != MK_OK) {
		svc->skipped++;
		slog(svc, MARGIN_LOG_WARN,
		     "msg=\"stored position skipped\" id=%s error=\"%s\"",
		     sp->id, err.msg);
	}
	return MK_OK;
}

struct replay {
	struct margin_service *svc;
	int64_t last;
	size_t n;
};

static bool
state_from_name(const char *s, int count, const char *(*name)(int),
		uint8_t *out)
{
	for (int i = 0; s != NULL && i < count; i++) {
		if (strcmp(s, name(i)) == 0) {
			*out = (uint8_t)i;
			return true;
		}
	}
	return false;
}

static const char *
state_name_i(int i)
{
	return margin_state_name((enum margin_state)i);
}

static const char *
reason_name_i(int i)
{
	return margin_reason_name((enum margin_reason)i);
}

/* Restores a position's state from one logged event (later events
 * overwrite earlier ones). */
static enum mk_status
replay_event(void *ctx, const struct margin_store_event *ev)
{
	struct replay *r = ctx;
	struct margin_tracker t;
	json_t *j = json_loadb(ev->body, ev->body_len, 0, NULL);

	r->last = ev->seq;
	r->n++;
	margin_tracker_init(&t);
	if (j != NULL &&
	    state_from_name(json_string_value(json_object_get(j, "to")),
			    MARGIN_STATE_COUNT, state_name_i, &t.state)) {
		state_from_name(json_string_value(json_object_get(j, "reason")),
				MARGIN_REASON_COUNT, reason_name_i, &t.reason);
		t.last_valid = t.state;
		t.flags = (uint8_t)json_integer_value(
			json_object_get(j, "flags"));
		/* the confirmation run starts again (the registry's rule) */
		margin_registry_restore(r->svc->reg, ev->position_id, &t);
	}
	json_decref(j);
	return MK_OK;
}

static enum mk_status
load(struct margin_service *svc, struct mk_err *err)
{
	struct replay r = { svc, 0, 0 };
	enum mk_status st;

	st = margin_store_load_positions(svc->st, load_position, svc, err);
	while (st == MK_OK) {
		size_t before = r.n;

		st = margin_store_list_events(svc->st, r.last, REPLAY_PAGE,
					      replay_event, &r, err);
		if (r.n - before < REPLAY_PAGE)
			break;
	}
	if (st == MK_OK)
		slog(svc, MARGIN_LOG_INFO,
		     "msg=\"positions loaded\" positions=%zu skipped=%zu"
		     " events=%zu", margin_registry_count(svc->reg),
		     svc->skipped, r.n);
	return st;
}

enum mk_status
margin_service_create(const struct margin_service_options *o,
		      struct margin_service **out, struct mk_err *err)
{
	struct margin_service *svc;
	struct margin_store_options ro;
	const char *path;
	enum mk_status st;

	*out = NULL;
	if (o == NULL || o->cfg == NULL)
		return mk_err_set(err, MK_EINVAL, "margin service: no config");
	path = o->database != NULL ? o->database : o->cfg->database;
	if (path == NULL || path[0] == '\0')
		return mk_err_set(err, MK_ECONFIG, "database: no path");
	svc = calloc(1, sizeof(*svc));
	if (svc == NULL)
		return mk_err_set(err, MK_ENOMEM, "out of memory");
	svc->log = o->log != NULL ? o->log : log_stderr;
	svc->db_path = strdup(path);
	svc->log_arg = o->log_arg;
	svc->hub = o->hub;
	svc->max_pending = o->max_pending_events ? o->max_pending_events
						 : DEFAULT_MAX_PENDING;
	svc->retry_ms = o->retry_ms ? o->retry_ms : DEFAULT_RETRY_MS;
	atomic_init(&svc->evaluations, 0);
	atomic_init(&svc->written, 0);
	atomic_init(&svc->dropped, 0);
	atomic_init(&svc->store_errors, 0);
	pthread_mutex_init(&svc->reg_mu, NULL);
	pthread_mutex_init(&svc->st_mu, NULL);
	pthread_mutex_init(&svc->rd_mu, NULL);
	pthread_mutex_init(&svc->snap_mu, NULL);
	pthread_mutex_init(&svc->q_mu, NULL);
	if (cond_init_mono(&svc->q_cv) != 0 ||
	    cond_init_mono(&svc->idle_cv) != 0) {
		free(svc->db_path);
		free(svc);
		return mk_err_set(err, MK_EIO, "cannot make condition"
				  " variables");
	}

	st = svc->db_path != NULL ? instruments_from_cfg(svc, o->cfg, err)
				  : mk_err_set(err, MK_ENOMEM, "out of memory");
	if (st == MK_OK)
		st = make_registry(svc, err);
	if (st == MK_OK) {
		svc->last_seq = calloc(svc->ninst + 1, sizeof(*svc->last_seq));
		svc->seen = calloc(svc->ninst + 1, sizeof(*svc->seen));
		if (svc->last_seq == NULL || svc->seen == NULL)
			st = mk_err_set(err, MK_ENOMEM, "out of memory");
	}
	if (st == MK_OK && o->metrics != NULL)
		st = register_metrics(svc, o->metrics, err);
	if (st == MK_OK) {
		st = margin_store_sqlite_open(path, &o->store, &svc->st, err);
		if (st != MK_OK)
			mk_err_prefix(err, "database %s", path);
	}
	if (st == MK_OK) {
		ro = o->store;
		ro.read_only = 1;
		st = margin_store_sqlite_open(path, &ro, &svc->rd, err);
		if (st != MK_OK)
			mk_err_prefix(err, "database %s (reader)", path);
	}
	if (st == MK_OK)
		st = load(svc, err);
	if (st == MK_OK) {
		publish_counts(svc);
		if (pthread_create(&svc->writer, NULL, writer_main, svc) != 0)
			st = mk_err_set(err, MK_EIO,
					"cannot start the event writer");
		else
			svc->writer_started = true;
	}
	if (st != MK_OK) {
		margin_service_destroy(svc);
		return st;
	}
	svc->ops.instrument = op_instrument;
	svc->ops.mark = op_mark;
	svc->ops.put = op_put;
	svc->ops.get = op_get;
	svc->ops.remove = op_remove;
	svc->ops.collateral = op_collateral;
	svc->ops.list = op_list;
	svc->ops.events = op_events;
	svc->routes.ops = &svc->ops;
	svc->routes.arg = svc;
	svc->routes.writes_disabled = o->cfg->token_file == NULL;
	*out = svc;
	return MK_OK;
}

void
margin_service_destroy(struct margin_service *svc)
{
	if (svc == NULL)
		return;
	if (svc->writer_started) {
		pthread_mutex_lock(&svc->q_mu);
		svc->stopping = true;
		pthread_cond_broadcast(&svc->q_cv);
		pthread_mutex_unlock(&svc->q_mu);
		pthread_join(svc->writer, NULL);
	}
	plist_free(svc->q.head);
	margin_store_close(svc->rd);
	margin_store_close(svc->st);
	margin_registry_destroy(svc->reg);
	agg_snapshot_release(svc->snap);
	free(svc->inst);
	free(svc->last_seq);
	free(svc->seen);
	free(svc->db_path);
	pthread_cond_destroy(&svc->q_cv);
	pthread_cond_destroy(&svc->idle_cv);
	pthread_mutex_destroy(&svc->reg_mu);
	pthread_mutex_destroy(&svc->st_mu);
	pthread_mutex_destroy(&svc->rd_mu);
	pthread_mutex_destroy(&svc->snap_mu);
	pthread_mutex_destroy(&svc->q_mu);
	free(svc);
}

enum mk_status
margin_service_routes(struct margin_service *svc, struct httpd_router *r,
		      struct mk_err *err)
{
	return httpd_routes_margin(r, &svc->routes, err);
}

enum mk_status
margin_service_add_routes(struct margin_service *svc, httpd_route_add_fn add,
			  void *ctx, struct mk_err *err)
{
	return httpd_routes_margin_each(&svc->routes, add, ctx, err);
}

void
margin_service_ready(void *arg, struct httpd_readiness *r)
{
	struct margin_service *svc = arg;

	pthread_mutex_lock(&svc->q_mu);
	if (svc->writes_failing)
		httpd_readiness_fail(r, "position store refuses writes: %s",
				     svc->writes_error);
	else if (svc->events_failing)
		httpd_readiness_fail(r, "position store refuses writes: %s",
				     svc->events_error);
	pthread_mutex_unlock(&svc->q_mu);
}

void
margin_service_stats(struct margin_service *svc,
		     struct margin_service_stats *out)
{
	memset(out, 0, sizeof(*out));
	pthread_mutex_lock(&svc->reg_mu);
	out->positions = margin_registry_count(svc->reg);
	pthread_mutex_unlock(&svc->reg_mu);
	out->skipped_on_load = svc->skipped;
	out->evaluations = atomic_load(&svc->evaluations);
	out->events_written = atomic_load(&svc->written);
	out->events_dropped = atomic_load(&svc->dropped);
	out->store_errors = atomic_load(&svc->store_errors);
	pthread_mutex_lock(&svc->q_mu);
	out->pending = svc->q.n;
	pthread_mutex_unlock(&svc->q_mu);
}
