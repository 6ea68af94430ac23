#include "config.h"

#include "feeds/health.h"

#include <assert.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

const int64_t feed_health_bucket_le_ms[FEED_HEALTH_NBUCKETS] = {
	5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000,
};

/* Raw facts of one (source, market) job. */
struct hjob {
	int src;                    /* index of its source */
	int next;                   /* next job of the same source, or -1 */
	int64_t interval_ms;
	bool any_success;
	int64_t last_success_mono;
	bool any_ratelimit;
	int64_t last_ratelimit_mono;
	bool last_ok;               /* the last completed poll was ok */
	uint32_t consecutive;       /* failures since the last ok */
	bool in_flight;
	int64_t backoff_ms;
	int64_t next_poll_ms;
};

/* Per-source aggregates. */
struct hsource {
	char name[AGG_SOURCE_MAX];
	int first_job;              /* head of the job list */
	uint32_t njobs;
	int64_t interval_ms;
	int64_t last_success_ms, last_error_ms;
	enum feed_outcome last_error_outcome;
	char last_error[FEED_HEALTH_TEXT_MAX];
	uint64_t polls, bans;
	uint64_t counts[FEED_OUTCOME_COUNT];
	int64_t ring[FEED_HEALTH_LATENCY_RING];
	uint32_t ring_n, ring_pos;
	int64_t p50_us, p99_us;
	uint64_t lat_count, lat_sum_us;
	uint64_t lat_le[FEED_HEALTH_NBUCKETS];
};

struct feed_health_table {
	pthread_mutex_t mu;
	struct feed_health_params params;
	struct hsource *src;
	size_t nsrc, capsrc;
	struct hjob *job;
	size_t njob, capjob;
};

const char *
feed_outcome_name(enum feed_outcome o)
{
	switch (o) {
	case FEED_OK: return "ok";
	case FEED_VENUE_ERROR: return "venue_error";
	case FEED_RATE_LIMITED: return "rate_limited";
	case FEED_HTTP_ERROR: return "http_error";
	case FEED_TIMEOUT: return "timeout";
	case FEED_CONNECT_ERROR: return "connect_error";
	case FEED_TOO_LARGE: return "too_large";
	case FEED_PARSE_ERROR: return "parse_error";
	}
	return "unknown";
}

const char *
feed_state_name(enum feed_state s)
{
	switch (s) {
	case FEED_STATE_DOWN: return "down";
	case FEED_STATE_DEGRADED: return "degraded";
	case FEED_STATE_UP: return "up";
	}
	return "unknown";
}

void
feed_health_params_default(struct feed_health_params *p)
{
	p->down_after_failures = 3;
	p->down_after_intervals = 3;
	p->degraded_intervals = 3;
}

int64_t
feed_now_mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t
feed_now_wall_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

struct feed_health_table *
feed_health_create(const struct feed_health_params *params)
{
	struct feed_health_table *t;

	t = calloc(1, sizeof(*t));
	if (t == NULL)
		return NULL;
	if (pthread_mutex_init(&t->mu, NULL) != 0) {
		free(t);
		return NULL;
	}
	if (params != NULL)
		t->params = *params;
	else
		feed_health_params_default(&t->params);
	return t;
}

void
feed_health_destroy(struct feed_health_table *t)
{
	if (t == NULL)
		return;
	pthread_mutex_destroy(&t->mu);
	free(t->src);
	free(t->job);
	free(t);
}

/* Grows an array of `size`-byte elements to hold at least need; 0 on
 * allocation failure (the old array stays valid). */
static int
grow(void **arr, size_t *cap, size_t need, size_t size)
{
	size_t ncap;
	void *p;

	if (need <= *cap)
		return 1;
	ncap = *cap ? *cap * 2 : 8;
	while (ncap < need)
		ncap *= 2;
	p = realloc(*arr, ncap * size);
	if (p == NULL)
		return 0;
	*arr = p;
	*cap = ncap;
	return 1;
}

int
feed_health_add_job(struct feed_health_table *t, const char *source,
		    int64_t interval_ms, int64_t first_poll_ms)
{
	size_t i, len = strlen(source);
	struct hsource *s;
	struct hjob *j;
	int slot = -1;

	if (len == 0 || len >= AGG_SOURCE_MAX || interval_ms <= 0)
		return -1;
	pthread_mutex_lock(&t->mu);
	for (i = 0; i < t->nsrc; i++)
		if (strcmp(t->src[i].name, source) == 0)
			break;
	if (!grow((void **)&t->job, &t->capjob, t->njob + 1, sizeof(*t->job)))
		goto out;
	if (i == t->nsrc) {
		if (!grow((void **)&t->src, &t->capsrc, t->nsrc + 1,
			  sizeof(*t->src)))
			goto out;
		s = &t->src[t->nsrc++];
		memset(s, 0, sizeof(*s));
		memcpy(s->name, source, len + 1);
		s->first_job = -1;
		s->interval_ms = interval_ms;
		s->p50_us = s->p99_us = -1;
	}
	s = &t->src[i];
	slot = (int)t->njob++;
	j = &t->job[slot];
	memset(j, 0, sizeof(*j));
	j->src = (int)i;
	j->interval_ms = interval_ms;
	j->next_poll_ms = first_poll_ms;
	j->next = s->first_job;
	s->first_job = slot;
	s->njobs++;
	if (interval_ms < s->interval_ms)
		s->interval_ms = interval_ms;
out:
	pthread_mutex_unlock(&t->mu);
	return slot;
}

void
feed_health_started(struct feed_health_table *t, int slot)
{
	pthread_mutex_lock(&t->mu);
	if (slot >= 0 && (size_t)slot < t->njob)
		t->job[slot].in_flight = true;
	pthread_mutex_unlock(&t->mu);
}

static int
cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

	return (x > y) - (x < y);
}

/* Nearest-rank percentile p (1..100) of the sorted a[0..n), n > 0. */
static int64_t
percentile(const int64_t *a, size_t n, unsigned p)
{
	size_t rank = (p * n + 99) / 100;

	return a[rank > 0 ? rank - 1 : 0];
}

static void
add_latency(struct hsource *s, int64_t us)
{
	int64_t sorted[FEED_HEALTH_LATENCY_RING];
	size_t i;

	s->ring[s->ring_pos] = us;
	s->ring_pos = (s->ring_pos + 1) % FEED_HEALTH_LATENCY_RING;
	if (s->ring_n < FEED_HEALTH_LATENCY_RING)
		s->ring_n++;
	memcpy(sorted, s->ring, s->ring_n * sizeof(sorted[0]));
	qsort(sorted, s->ring_n, sizeof(sorted[0]), cmp_i64);
	s->p50_us = percentile(sorted, s->ring_n, 50);
	s->p99_us = percentile(sorted, s->ring_n, 99);
	s->lat_count++;
	s->lat_sum_us += (uint64_t)us;
	for (i = 0; i < FEED_HEALTH_NBUCKETS; i++)
		if (us <= feed_health_bucket_le_ms[i] * 1000)
			s->lat_le[i]++;
}

void
feed_health_record(struct feed_health_table *t, int slot,
		   const struct feed_health_event *ev)
{
	struct hjob *j;
	struct hsource *s;

	assert((unsigned)ev->outcome < FEED_OUTCOME_COUNT);
	pthread_mutex_lock(&t->mu);
	if (slot < 0 || (size_t)slot >= t->njob)
		goto out;
	j = &t->job[slot];
	s = &t->src[j->src];
	j->in_flight = false;
	j->backoff_ms = ev->backoff_ms;
	j->next_poll_ms = ev->next_poll_ms;
	s->polls++;
	s->counts[ev->outcome]++;
	if (ev->outcome == FEED_OK) {
		j->last_ok = true;
		j->consecutive = 0;
		j->any_success = true;
		j->last_success_mono = ev->now_mono_ms;
		s->last_success_ms = ev->now_wall_ms;
	} else {
		j->last_ok = false;
		if (j->consecutive < UINT32_MAX)
			j->consecutive++;
		s->last_error_ms = ev->now_wall_ms;
		s->last_error_outcome = ev->outcome;
		snprintf(s->last_error, sizeof(s->last_error), "%s",
			 ev->text != NULL ? ev->text
					  : feed_outcome_name(ev->outcome));
		if (ev->outcome == FEED_RATE_LIMITED) {
			j->any_ratelimit = true;
			j->last_ratelimit_mono = ev->now_mono_ms;
			if (ev->http_status == 418 || ev->http_status == 451)
				s->bans++;
		}
	}
	if (ev->latency_us >= 0)
		add_latency(s, ev->latency_us);
out:
	pthread_mutex_unlock(&t->mu);
}

size_t
feed_health_count(struct feed_health_table *t)
{
	size_t n;

	pthread_mutex_lock(&t->mu);
	n = t->nsrc;
	pthread_mutex_unlock(&t->mu);
	return n;
}

/* The state rules of the header, for one job. */
static enum feed_state
job_state(const struct feed_health_params *p, const struct hjob *j,
	  int64_t now)
{
	if (!j->any_success || j->consecutive >= p->down_after_failures ||
	    now - j->last_success_mono >
		    (int64_t)p->down_after_intervals * j->interval_ms)
		return FEED_STATE_DOWN;
	if (!j->last_ok ||
	    (j->any_ratelimit &&
	     now - j->last_ratelimit_mono <=
		     (int64_t)p->degraded_intervals * j->interval_ms))
		return FEED_STATE_DEGRADED;
	return FEED_STATE_UP;
}

/* Copies source i out; the mutex is held. */
static void
copy_source(struct feed_health_table *t, size_t i, int64_t now,
	    struct feed_health *out)
{
	const struct hsource *s = &t->src[i];
	const struct hjob *j;
	enum feed_state st;
	int k;

	memset(out, 0, sizeof(*out));
	memcpy(out->source, s->name, sizeof(out->source));
	out->jobs = s->njobs;
	out->interval_ms = s->interval_ms;
	out->last_success_ms = s->last_success_ms;
	out->last_error_ms = s->last_error_ms;
	out->last_error_outcome = s->last_error_outcome;
	memcpy(out->last_error, s->last_error, sizeof(out->last_error));
	out->polls = s->polls;
	out->bans = s->bans;
	memcpy(out->counts, s->counts, sizeof(out->counts));
	out->latency_p50_us = s->p50_us;
	out->latency_p99_us = s->p99_us;
	out->latency_samples = s->ring_n;
	out->latency_count = s->lat_count;
	out->latency_sum_us = s->lat_sum_us;
	memcpy(out->latency_le, s->lat_le, sizeof(out->latency_le));
	for (k = s->first_job; k >= 0; k = j->next) {
		j = &t->job[k];
		st = job_state(&t->params, j, now);
		if (st == FEED_STATE_UP)
			out->jobs_up++;
		else if (st == FEED_STATE_DEGRADED)
			out->jobs_degraded++;
		else
			out->jobs_down++;
		if (j->consecutive > out->consecutive_failures)
			out->consecutive_failures = j->consecutive;
		if (j->backoff_ms > out->backoff_ms)
			out->backoff_ms = j->backoff_ms;
		if (!j->in_flight && (out->next_poll_ms == 0 ||
				      j->next_poll_ms < out->next_poll_ms))
			out->next_poll_ms = j->next_poll_ms;
	}
	if (out->jobs_up == out->jobs)
		out->state = FEED_STATE_UP;
	else if (out->jobs_down == out->jobs)
		out->state = FEED_STATE_DOWN;
	else
		out->state = FEED_STATE_DEGRADED;
}

enum mk_status
feed_health_get(struct feed_health_table *t, const char *source,
		int64_t now_mono_ms, struct feed_health *out)
{
	enum mk_status st = MK_ENOTFOUND;
	size_t i;

	pthread_mutex_lock(&t->mu);
	for (i = 0; i < t->nsrc; i++) {
		if (strcmp(t->src[i].name, source) == 0) {
			copy_source(t, i, now_mono_ms, out);
			st = MK_OK;
			break;
		}
	}
	pthread_mutex_unlock(&t->mu);
	return st;
}

size_t
feed_health_list(struct feed_health_table *t, int64_t now_mono_ms,
		 struct feed_health *out, size_t cap)
{
	size_t i, n;

	pthread_mutex_lock(&t->mu);
	n = t->nsrc;
	for (i = 0; i < n && i < cap; i++)
		copy_source(t, i, now_mono_ms, &out[i]);
	pthread_mutex_unlock(&t->mu);
	return n;
}
