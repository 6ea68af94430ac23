#include "config.h"

#include "feeds/poller.h"

#include <assert.h>
#include <curl/curl.h>
#include <limits.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "feeds/backoff.h"

#define SCHEME_HTTP 1u
#define SCHEME_HTTPS 2u

#define RETRY_AFTER_MAX 64     /* longest Retry-After value kept */
#define BODY_INITIAL 4096      /* first body buffer; doubles up to the cap */
#define RUN_MAX_WAIT_MS 60000  /* feed_poller_run's wait per turn */
#define NOT_IN_HEAP SIZE_MAX

struct feed_job {
	struct feed_poller *p;
	char *source, *market, *url;
	const struct feed_adapter *adapter;
	const struct feed_adapter_opts *opts;
	int64_t interval_ms, timeout_ms, max_backoff_ms, max_retry_after_ms;
	size_t max_body;
	void *user;
	CURL *easy;
	char errbuf[CURL_ERROR_SIZE];   /* lives as long as the handle */
	int health_slot;

	/* The current request (reset before each poll). */
	char *body;                     /* grows up to max_body */
	size_t len, cap;
	bool too_large, body_oom;
	bool has_retry_after;
	char retry_after[RETRY_AFTER_MAX];
	size_t retry_after_len;

	/* Schedule. */
	int64_t due_mono;               /* when the current/next poll is due */
	size_t heap_idx;                /* NOT_IN_HEAP while in flight */
	bool in_flight;
	uint32_t failures;              /* consecutive */
	uint64_t seq;                   /* polls started */
};

struct feed_poller {
	CURLM *multi;
	feed_result_fn on_result;
	void *arg;
	struct feed_rng rng;
	int64_t start_spread_ms;
	char *user_agent;
	struct curl_slist *headers;
	struct feed_health_table *health;
	struct feed_job **jobs;         /* every job, in creation order */
	size_t njobs, capjobs;
	struct feed_job **heap;         /* idle jobs, min-heap on due_mono */
	size_t nheap;                   /* capacity is capjobs */
	size_t in_flight;
	atomic_bool stop;
	struct feed_quote qbuf[1];      /* the adapter's output, per poll */
};

const char *
feed_fail_class_name(enum feed_fail_class c)
{
	switch (c) {
	case FEED_FAIL_NONE: return "none";
	case FEED_FAIL_TRANSIENT: return "transient";
	case FEED_FAIL_BAD_DATA: return "bad_data";
	}
	return "unknown";
}

void
feed_poller_config_default(struct feed_poller_config *c)
{
	memset(c, 0, sizeof(*c));
	c->seed = 1;
	feed_health_params_default(&c->health);
}

void
feed_job_config_default(struct feed_job_config *c)
{
	memset(c, 0, sizeof(*c));
	c->interval_ms = 1000;
	c->timeout_ms = 2000;
	c->max_body_bytes = 262144;
	c->max_backoff_ms = 0;
	c->max_retry_after_ms = 600000;
}

/* ---- the heap of idle jobs, keyed by due_mono ---- */

static void
heap_set(struct feed_poller *p, size_t i, struct feed_job *j)
{
	p->heap[i] = j;
	j->heap_idx = i;
}

static void
heap_push(struct feed_poller *p, struct feed_job *j)
{
	size_t i = p->nheap++, parent;

	/* capjobs >= njobs >= nheap: every job fits. */
	while (i > 0) {
		parent = (i - 1) / 2;
		if (p->heap[parent]->due_mono <= j->due_mono)
			break;
		heap_set(p, i, p->heap[parent]);
		i = parent;
	}
	heap_set(p, i, j);
}

static struct feed_job *
heap_pop(struct feed_poller *p)
{
	struct feed_job *top, *last;
	size_t i = 0, c;

	assert(p->nheap > 0);
	top = p->heap[0];
	last = p->heap[--p->nheap];
	while ((c = 2 * i + 1) < p->nheap) {
		if (c + 1 < p->nheap &&
		    p->heap[c + 1]->due_mono < p->heap[c]->due_mono)
			c++;
		if (last->due_mono <= p->heap[c]->due_mono)
			break;
		heap_set(p, i, p->heap[c]);
		i = c;
	}
	if (p->nheap > 0)
		heap_set(p, i, last);
	top->heap_idx = NOT_IN_HEAP;
	return top;
}

/* ---- creation ---- */

enum mk_status
feed_poller_create(const struct feed_poller_config *cfg,
		   struct feed_poller **out, struct mk_err *err)
{
	struct feed_poller *p = NULL;
	enum mk_status st = MK_OK;
	const char *ua;
	CURLMcode mc;

	*out = NULL;
	if (cfg == NULL || cfg->on_result == NULL)
		return mk_err_set(err, MK_EINVAL, "poller: no result callback");
	if (cfg->start_spread_ms < 0 || cfg->max_host_connections < 0)
		return mk_err_set(err, MK_EINVAL,
				  "poller: negative start_spread_ms or "
				  "max_host_connections");
	p = calloc(1, sizeof(*p));
	if (p == NULL)
		return mk_err_set(err, MK_ENOMEM, "poller: out of memory");
	p->on_result = cfg->on_result;
	p->arg = cfg->arg;
	feed_rng_seed(&p->rng, cfg->seed);
	p->start_spread_ms = cfg->start_spread_ms;
	atomic_init(&p->stop, false);
	ua = cfg->user_agent;
	if (ua == NULL)
		ua = "markd/" PACKAGE_VERSION;
	p->user_agent = strdup(ua);
	p->headers = curl_slist_append(NULL, "Accept: application/json");
	p->health = feed_health_create(&cfg->health);
	if (p->user_agent == NULL || p->headers == NULL || p->health == NULL) {
		st = mk_err_set(err, MK_ENOMEM, "poller: out of memory");
		goto out;
	}
	p->multi = curl_multi_init();
	if (p->multi == NULL) {
		st = mk_err_set(err, MK_EIO, "poller: curl_multi_init failed");
		goto out;
	}
	if (cfg->max_host_connections > 0) {
		mc = curl_multi_setopt(p->multi, CURLMOPT_MAX_HOST_CONNECTIONS,
				       cfg->max_host_connections);
		if (mc != CURLM_OK) {
			st = mk_err_set(err, MK_EIO, "poller: max_host_"
					"connections: %s",
					curl_multi_strerror(mc));
			goto out;
		}
	}
out:
	if (st != MK_OK) {
		feed_poller_destroy(p);
		p = NULL;
	}
	*out = p;
	return st;
}

static void
job_free(struct feed_job *j)
{
	if (j == NULL)
		return;
	if (j->easy != NULL)
		curl_easy_cleanup(j->easy);
	free(j->body);
	free(j->source);
	free(j->market);
	free(j->url);
	free(j);
}

void
feed_poller_destroy(struct feed_poller *p)
{
	size_t i;

	if (p == NULL)
		return;
	for (i = 0; i < p->njobs; i++) {
		if (p->jobs[i]->in_flight)
			curl_multi_remove_handle(p->multi, p->jobs[i]->easy);
		job_free(p->jobs[i]);
	}
	if (p->multi != NULL)
		curl_multi_cleanup(p->multi);
	feed_health_destroy(p->health);
	curl_slist_free_all(p->headers);
	free(p->user_agent);
	free(p->jobs);
	free(p->heap);
	free(p);
}

/* Parses a comma-separated scheme list into a mask. */
static enum mk_status
parse_schemes(const char *s, unsigned *mask, struct mk_err *err)
{
	const char *tok = s, *end;
	size_t n;

	*mask = 0;
	for (;;) {
		end = strchr(tok, ',');
		n = end != NULL ? (size_t)(end - tok) : strlen(tok);
		while (n > 0 && *tok == ' ') {
			tok++;
			n--;
		}
		while (n > 0 && tok[n - 1] == ' ')
			n--;
		if (n == 4 && strncasecmp(tok, "http", 4) == 0)
			*mask |= SCHEME_HTTP;
		else if (n == 5 && strncasecmp(tok, "https", 5) == 0)
			*mask |= SCHEME_HTTPS;
		else
			return mk_err_set(err, MK_ECONFIG,
					  "schemes: \"%.*s\" is not one of "
					  "http, https",
					  (int)(n > 32 ? 32 : n), tok);
		if (end == NULL)
			break;
		tok = end + 1;
	}
	return MK_OK;
}

static const char *
schemes_text(unsigned mask)
{
	switch (mask) {
	case SCHEME_HTTP: return "http";
	case SCHEME_HTTPS: return "https";
	default: return "http,https";
	}
}

/* Checks the scheme of url (the text before "://") against mask. */
static enum mk_status
check_url_scheme(const char *url, unsigned mask, struct mk_err *err)
{
	const char *colon = strstr(url, "://");
	size_t n = colon != NULL ? (size_t)(colon - url) : 0;
	unsigned want = 0;

	if (n == 4 && strncasecmp(url, "http", 4) == 0)
		want = SCHEME_HTTP;
	else if (n == 5 && strncasecmp(url, "https", 5) == 0)
		want = SCHEME_HTTPS;
	if (colon == NULL || n == 0)
		return mk_err_set(err, MK_ECONFIG,
				  "URL \"%.64s\" has no scheme", url);
	if ((want & mask) == 0)
		return mk_err_set(err, MK_ECONFIG,
				  "scheme \"%.*s\" is not allowed "
				  "(allowed: %s)",
				  (int)(n > 16 ? 16 : n), url,
				  schemes_text(mask));
	return MK_OK;
}

static enum mk_status
check_range(const char *what, int64_t v, int64_t lo, int64_t hi,
	    struct mk_err *err)
{
	if (v < lo || v > hi)
		return mk_err_set(err, MK_ECONFIG,
				  "%s %lld is out of range %lld..%lld", what,
				  (long long)v, (long long)lo, (long long)hi);
	return MK_OK;
}

/* Body sink: appends to the job's buffer, stopping the transfer once the
 * body would pass max_body. Decompressed bytes are what is counted. */
static size_t
on_body(char *ptr, size_t size, size_t nmemb, void *ud)
{
	struct feed_job *j = ud;
	size_t n = size * nmemb, ncap;
	char *nb;

	if (n > j->max_body - j->len) {
		j->too_large = true;
		return CURL_WRITEFUNC_ERROR;
	}
	if (n > j->cap - j->len) {
		ncap = j->cap > 0 ? j->cap : BODY_INITIAL;
		while (ncap - j->len < n)
			ncap *= 2;
		if (ncap > j->max_body)
			ncap = j->max_body;
		nb = realloc(j->body, ncap);
		if (nb == NULL) {
			j->body_oom = true;
			return CURL_WRITEFUNC_ERROR;
		}
		j->body = nb;
		j->cap = ncap;
	}
	memcpy(j->body + j->len, ptr, n);
	j->len += n;
	return n;
}

/* Header sink: keeps the Retry-After value of the last response. */
static size_t
on_header(char *buf, size_t size, size_t nitems, void *ud)
{
	static const char name[] = "retry-after:";
	const size_t nlen = sizeof(name) - 1;
	struct feed_job *j = ud;
	size_t len = size * nitems, vlen;
	const char *v;

	if (len >= 5 && memcmp(buf, "HTTP/", 5) == 0) {
		j->has_retry_after = false;     /* a new response begins */
	} else if (len > nlen && strncasecmp(buf, name, nlen) == 0) {
		v = buf + nlen;
		vlen = len - nlen;
		while (vlen > 0 && (v[vlen - 1] == '\r' || v[vlen - 1] == '\n'))
			vlen--;
		/* A longer value cannot be valid: keep a prefix that the
		 * parser will refuse. */
		if (vlen > sizeof(j->retry_after))
			vlen = sizeof(j->retry_after);
		memcpy(j->retry_after, v, vlen);
		j->retry_after_len = vlen;
		j->has_retry_after = true;
	}
	return len;
}

#define SETOPT(opt, val)                                                    \
	do {                                                                \
		CURLcode cc_ = curl_easy_setopt(j->easy, opt, val);         \
		if (cc_ != CURLE_OK) {                                      \
			st = mk_err_set(err, MK_EIO, "curl option %s: %s",  \
					#opt, curl_easy_strerror(cc_));     \
			goto out;                                           \
		}                                                           \
	} while (0)

/* Creates the job's easy handle with every option it keeps for life. */
static enum mk_status
setup_easy(struct feed_poller *p, struct feed_job *j, unsigned schemes,
	   struct mk_err *err)
{
	enum mk_status st = MK_OK;

	j->easy = curl_easy_init();
	if (j->easy == NULL)
		return mk_err_set(err, MK_ENOMEM, "curl_easy_init failed");
	SETOPT(CURLOPT_ERRORBUFFER, j->errbuf);
	SETOPT(CURLOPT_URL, j->url);
	SETOPT(CURLOPT_PRIVATE, (void *)j);
	SETOPT(CURLOPT_NOSIGNAL, 1L);
	SETOPT(CURLOPT_PROTOCOLS_STR, schemes_text(schemes));
	SETOPT(CURLOPT_REDIR_PROTOCOLS_STR, schemes_text(schemes));
	SETOPT(CURLOPT_FOLLOWLOCATION, 0L);
	SETOPT(CURLOPT_ACCEPT_ENCODING, "");
	SETOPT(CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)j->max_body);
	SETOPT(CURLOPT_WRITEFUNCTION, on_body);
	SETOPT(CURLOPT_WRITEDATA, (void *)j);
	SETOPT(CURLOPT_HEADERFUNCTION, on_header);
	SETOPT(CURLOPT_HEADERDATA, (void *)j);
	SETOPT(CURLOPT_TIMEOUT_MS, (long)j->timeout_ms);
	SETOPT(CURLOPT_CONNECTTIMEOUT_MS, (long)j->timeout_ms);
	SETOPT(CURLOPT_USERAGENT, p->user_agent);
	SETOPT(CURLOPT_HTTPHEADER, p->headers);
	SETOPT(CURLOPT_TCP_KEEPALIVE, 1L);
out:
	return st;
}

#undef SETOPT

/* Makes room for one more job in the job list and the heap. */
static int
reserve_job(struct feed_poller *p)
{
	size_t ncap;
	struct feed_job **a;

	if (p->njobs < p->capjobs)
		return 1;
	ncap = p->capjobs > 0 ? p->capjobs * 2 : 16;
	a = realloc(p->jobs, ncap * sizeof(*a));
	if (a == NULL)
		return 0;
	p->jobs = a;
	a = realloc(p->heap, ncap * sizeof(*a));
	if (a == NULL)
		return 0;
	p->heap = a;
	p->capjobs = ncap;
	return 1;
}

static char *
dup_or_null(const char *s)
{
	return s != NULL ? strdup(s) : NULL;
}

enum mk_status
feed_poller_add_job(struct feed_poller *p, const struct feed_job_config *cfg,
		    struct feed_job **jobp, struct mk_err *err)
{
	struct feed_job *j = NULL;
	enum mk_status st = MK_OK;
	char url[FEED_URL_MAX];
	unsigned schemes = 0;
	int64_t now_mono, max_backoff, spread;

	if (jobp != NULL)
		*jobp = NULL;
	if (cfg->source == NULL || cfg->source[0] == '\0' ||
	    strlen(cfg->source) >= AGG_SOURCE_MAX)
		return mk_err_set(err, MK_ECONFIG,
				  "job: source name missing or longer than %d",
				  AGG_SOURCE_MAX - 1);
	if (cfg->market == NULL || cfg->adapter == NULL ||
	    cfg->base_url == NULL)
		return mk_err_set(err, MK_ECONFIG,
				  "%s: job needs an adapter, a base URL and a "
				  "market", cfg->source);
	max_backoff = cfg->max_backoff_ms;
	if (max_backoff == 0)
		max_backoff = cfg->interval_ms > 60000 ? cfg->interval_ms
						       : 60000;
	if ((st = check_range("interval_ms", cfg->interval_ms, 1, 86400000,
			      err)) != MK_OK ||
	    (st = check_range("timeout_ms", cfg->timeout_ms, 1, 600000,
			      err)) != MK_OK ||
	    (st = check_range("max_body_bytes", cfg->max_body_bytes, 16,
			      67108864, err)) != MK_OK ||
	    (st = check_range("max_backoff_ms", max_backoff,
			      cfg->interval_ms, 86400000, err)) != MK_OK ||
	    (st = check_range("max_retry_after_ms", cfg->max_retry_after_ms,
			      0, 86400000, err)) != MK_OK ||
	    (st = parse_schemes(cfg->schemes != NULL ? cfg->schemes
						     : "http,https",
				&schemes, err)) != MK_OK)
		goto fail;
	st = feed_adapter_url(cfg->adapter, cfg->opts, cfg->base_url,
			      cfg->market, url, sizeof(url), err);
	if (st != MK_OK) {
		st = MK_ECONFIG;
		if (err != NULL)
			err->code = st;
		goto fail;
	}
	if ((st = check_url_scheme(url, schemes, err)) != MK_OK)
		goto fail;

	j = calloc(1, sizeof(*j));
	if (j == NULL || !reserve_job(p))
		goto oom;
	j->p = p;
	j->source = dup_or_null(cfg->source);
	j->market = dup_or_null(cfg->market);
	j->url = dup_or_null(url);
	if (j->source == NULL || j->market == NULL || j->url == NULL)
		goto oom;
	j->adapter = cfg->adapter;
	j->opts = cfg->opts;
	j->interval_ms = cfg->interval_ms;
	j->timeout_ms = cfg->timeout_ms;
	j->max_backoff_ms = max_backoff;
	j->max_retry_after_ms = cfg->max_retry_after_ms;
	j->max_body = (size_t)cfg->max_body_bytes;
	j->user = cfg->user;
	j->heap_idx = NOT_IN_HEAP;
	if ((st = setup_easy(p, j, schemes, err)) != MK_OK)
		goto fail;

	now_mono = feed_now_mono_ms();
	spread = p->start_spread_ms < j->interval_ms ? p->start_spread_ms
						     : j->interval_ms;
	j->due_mono = now_mono;
	if (spread > 0)
		j->due_mono += (int64_t)(feed_rng_next(&p->rng) %
					 (uint64_t)spread);
	j->health_slot = feed_health_add_job(p->health, j->source,
					     j->interval_ms,
					     feed_now_wall_ms() +
						     (j->due_mono - now_mono));
	if (j->health_slot < 0)
		goto oom;
	p->jobs[p->njobs++] = j;
	heap_push(p, j);
	if (jobp != NULL)
		*jobp = j;
	return MK_OK;
oom:
	st = mk_err_set(err, MK_ENOMEM, "out of memory");
fail:
	job_free(j);
	mk_err_prefix(err, "%s %s", cfg->source,
		      cfg->market != NULL ? cfg->market : "?");
	return st;
}

/* ---- one poll ---- */

/* Sorts a finished poll into an outcome and writes its text. http_status
 * is 0 when no answer came. *nq gets the number of quotes on FEED_OK. */
static enum feed_outcome
classify(struct feed_poller *p, struct feed_job *j, CURLcode rc,
	 long status, char *text, size_t cap, size_t *nq)
{
	struct mk_err aerr;
	enum mk_status st = MK_EPARSE;
	bool venue_msg;

	*nq = 0;
	text[0] = '\0';
	if (j->too_large || rc == CURLE_FILESIZE_EXCEEDED) {
		snprintf(text, cap, "body larger than %zu bytes", j->max_body);
		return FEED_TOO_LARGE;
	}
	if (j->body_oom) {
		snprintf(text, cap, "no memory for a body over %zu bytes",
			 j->len);
		return FEED_TOO_LARGE;
	}
	if (rc == CURLE_OPERATION_TIMEDOUT) {
		snprintf(text, cap, "timeout after %lld ms",
			 (long long)j->timeout_ms);
		return FEED_TIMEOUT;
	}
	if (rc != CURLE_OK) {
		snprintf(text, cap, "%s",
			 j->errbuf[0] != '\0' ? j->errbuf
					      : curl_easy_strerror(rc));
		return FEED_CONNECT_ERROR;
	}
	if (status >= 200 && status < 300) {
		aerr.msg[0] = '\0';
		st = feed_adapter_parse(j->adapter, j->opts, j->market,
					j->body != NULL ? j->body : "", j->len,
					p->qbuf, 1, nq, &aerr);
		if (st == MK_OK && *nq == 1)
			return FEED_OK;
		*nq = 0;
		snprintf(text, cap, "%s",
			 st != MK_OK ? aerr.msg : "no quote in the answer");
		if (st == MK_EVENUE)
			return FEED_VENUE_ERROR;
		if (st == MK_ERATELIMIT)
			return FEED_RATE_LIMITED;
		return FEED_PARSE_ERROR;
	}
	/* Any other status: the venue's envelope, when it sent one, says
	 * more than the status line. */
	if (j->len > 0) {
		aerr.msg[0] = '\0';
		st = feed_adapter_parse(j->adapter, j->opts, j->market, j->body,
					j->len, p->qbuf, 1, nq, &aerr);
		*nq = 0;
	}
	venue_msg = st == MK_EVENUE || st == MK_ERATELIMIT;
	snprintf(text, cap, "HTTP %ld%s%s", status, venue_msg ? ": " : "",
		 venue_msg ? aerr.msg : "");
	if (status == 429 || status == 418 || status == 451 ||
	    st == MK_ERATELIMIT)
		return FEED_RATE_LIMITED;
	if (st == MK_EVENUE && status < 500)
		return FEED_VENUE_ERROR;
	return FEED_HTTP_ERROR;
}

static enum feed_fail_class
fail_class(enum feed_outcome o, long status)
{
	switch (o) {
	case FEED_OK:
		return FEED_FAIL_NONE;
	case FEED_TIMEOUT:
	case FEED_CONNECT_ERROR:
	case FEED_RATE_LIMITED:
		return FEED_FAIL_TRANSIENT;
	case FEED_HTTP_ERROR:
		return status >= 500 ? FEED_FAIL_TRANSIENT : FEED_FAIL_BAD_DATA;
	case FEED_VENUE_ERROR:
	case FEED_TOO_LARGE:
	case FEED_PARSE_ERROR:
		return FEED_FAIL_BAD_DATA;
	}
	return FEED_FAIL_BAD_DATA;
}

/* Handles a finished (or failed to start) poll of j, which is no longer
 * in the multi handle: classifies it, updates health, reschedules the job
 * and calls the callback. start_error, when not NULL, is why the poll
 * could not start. */
static void
finish(struct feed_poller *p, struct feed_job *j, CURLcode rc,
       const char *start_error)
{
	struct feed_result r;
	struct feed_health_event ev;
	char text[FEED_HEALTH_TEXT_MAX], htext[FEED_HEALTH_TEXT_MAX];
	int64_t now_mono = feed_now_mono_ms(), now_wall = feed_now_wall_ms();
	int64_t delay, ra = -1, next, cap;
	long status = 0;
	curl_off_t total_us = -1;
	enum feed_outcome o;
	size_t nq = 0;

	if (start_error == NULL) {
		if (curl_easy_getinfo(j->easy, CURLINFO_RESPONSE_CODE,
				      &status) != CURLE_OK)
			status = 0;
		if (status > 0 &&
		    curl_easy_getinfo(j->easy, CURLINFO_TOTAL_TIME_T,
				      &total_us) != CURLE_OK)
			total_us = -1;
		o = classify(p, j, rc, status, text, sizeof(text), &nq);
	} else {
		o = FEED_CONNECT_ERROR;
		snprintf(text, sizeof(text), "%s", start_error);
	}
	if (j->has_retry_after &&
	    feed_retry_after_parse(j->retry_after, j->retry_after_len,
				   now_wall, &ra, NULL) != MK_OK)
		ra = -1;

	if (o == FEED_OK) {
		j->failures = 0;
		/* Keep the phase; skip ticks that have passed. */
		next = j->due_mono + j->interval_ms;
		if (next <= now_mono)
			next += ((now_mono - next) / j->interval_ms + 1) *
				j->interval_ms;
		delay = next - now_mono;
	} else {
		if (j->failures < UINT32_MAX)
			j->failures++;
		delay = feed_backoff_delay(j->interval_ms, j->max_backoff_ms,
					   j->failures, &p->rng);
		if (ra > delay &&
		    (o == FEED_RATE_LIMITED || status == 503)) {
			cap = j->max_retry_after_ms > delay
				      ? j->max_retry_after_ms
				      : delay;
			delay = ra < cap ? ra : cap;
		}
		next = now_mono + delay;
	}
	j->due_mono = next;

	memset(&ev, 0, sizeof(ev));
	ev.outcome = o;
	ev.http_status = (int)status;
	ev.latency_us = o != FEED_TIMEOUT && o != FEED_CONNECT_ERROR &&
				status > 0 ? (int64_t)total_us : -1;
	ev.now_mono_ms = now_mono;
	ev.now_wall_ms = now_wall;
	if (o != FEED_OK) {
		snprintf(htext, sizeof(htext), "%s: %s", j->market, text);
		ev.text = htext;
	}
	ev.backoff_ms = o == FEED_OK ? 0 : delay;
	ev.next_poll_ms = now_wall + delay;
	feed_health_record(p->health, j->health_slot, &ev);

	heap_push(p, j);

	memset(&r, 0, sizeof(r));
	r.source = j->source;
	r.market = j->market;
	r.user = j->user;
	r.outcome = o;
	r.fail_class = fail_class(o, status);
	r.quotes = o == FEED_OK ? p->qbuf : NULL;
	r.nquotes = o == FEED_OK ? nq : 0;
	r.recv_ms = now_wall;
	r.http_status = (int)status;
	r.latency_us = ev.latency_us;
	r.text = o == FEED_OK ? NULL : text;
	r.consecutive_failures = j->failures;
	r.retry_after_ms = ra;
	r.delay_ms = delay;
	r.poll_seq = j->seq;
	r.transfer = j->easy;
	p->on_result(p->arg, &r);
}

static void
start_poll(struct feed_poller *p, struct feed_job *j)
{
	char msg[FEED_HEALTH_TEXT_MAX];
	CURLMcode mc;

	j->len = 0;
	j->too_large = false;
	j->body_oom = false;
	j->has_retry_after = false;
	j->errbuf[0] = '\0';
	j->seq++;
	mc = curl_multi_add_handle(p->multi, j->easy);
	if (mc != CURLM_OK) {
		snprintf(msg, sizeof(msg), "could not start: %s",
			 curl_multi_strerror(mc));
		finish(p, j, CURLE_OK, msg);
		return;
	}
	j->in_flight = true;
	p->in_flight++;
	feed_health_started(p->health, j->health_slot);
}

/* Delivers every finished transfer. */
static void
drain(struct feed_poller *p)
{
	struct feed_job *j;
	CURLMsg *msg;
	CURLcode rc;
	CURL *easy;
	char *priv;
	int left;

	while ((msg = curl_multi_info_read(p->multi, &left)) != NULL) {
		if (msg->msg != CURLMSG_DONE)
			continue;
		/* msg dies with curl_multi_remove_handle: copy first. */
		easy = msg->easy_handle;
		rc = msg->data.result;
		priv = NULL;
		if (curl_easy_getinfo(easy, CURLINFO_PRIVATE, &priv) !=
			    CURLE_OK ||
		    priv == NULL)
			continue;   /* not ours: cannot happen */
		j = (struct feed_job *)(void *)priv;
		curl_multi_remove_handle(p->multi, easy);
		j->in_flight = false;
		p->in_flight--;
		finish(p, j, rc, NULL);
	}
}

enum mk_status
feed_poller_step(struct feed_poller *p, int64_t max_wait_ms,
		 struct mk_err *err)
{
	int64_t now, wait;
	int running = 0;
	CURLMcode mc;

	if (atomic_load(&p->stop))
		return MK_OK;
	now = feed_now_mono_ms();
	while (p->nheap > 0 && p->heap[0]->due_mono <= now)
		start_poll(p, heap_pop(p));
	mc = curl_multi_perform(p->multi, &running);
	if (mc != CURLM_OK)
		return mk_err_set(err, mc == CURLM_OUT_OF_MEMORY ? MK_ENOMEM
								: MK_EIO,
				  "poller: curl_multi_perform: %s",
				  curl_multi_strerror(mc));
	drain(p);
	if (atomic_load(&p->stop))
		return MK_OK;
	wait = max_wait_ms;
	if (p->nheap > 0) {
		now = feed_now_mono_ms();
		if (p->heap[0]->due_mono - now < wait)
			wait = p->heap[0]->due_mono - now;
	}
	if (wait < 0)
		wait = 0;
	if (wait > INT_MAX)
		wait = INT_MAX;
	mc = curl_multi_poll(p->multi, NULL, 0, (int)wait, NULL);
	if (mc != CURLM_OK)
		return mk_err_set(err, MK_EIO, "poller: curl_multi_poll: %s",
				  curl_multi_strerror(mc));
	return MK_OK;
}

enum mk_status
feed_poller_run(struct feed_poller *p, struct mk_err *err)
{
	enum mk_status st;

	while (!atomic_load(&p->stop)) {
		st = feed_poller_step(p, RUN_MAX_WAIT_MS, err);
		if (st != MK_OK)
			return st;
	}
	return MK_OK;
}

void
feed_poller_stop(struct feed_poller *p)
{
	atomic_store(&p->stop, true);
	curl_multi_wakeup(p->multi);
}

struct feed_health_table *
feed_poller_health(struct feed_poller *p)
{
	return p->health;
}

size_t
feed_poller_job_count(const struct feed_poller *p)
{
	return p->njobs;
}

size_t
feed_poller_in_flight(const struct feed_poller *p)
{
	return p->in_flight;
}

const char *
feed_job_url(const struct feed_job *job)
{
	return job->url;
}
