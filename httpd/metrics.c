/*
 * metrics.c - metric registry and Prometheus text exposition 0.0.4.
 */
#include "config.h"

#include "httpd/metrics.h"

#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct series {
	struct series *hnext;      /* hash chain */
	struct series *onext;      /* creation order */
	uint64_t hash;
	char **values;
	double value;              /* counter, gauge */
	double sum;                /* histogram */
	uint64_t count;
	uint64_t buckets[];        /* histogram: per bound, not cumulative */
};

struct httpd_family {
	struct httpd_family *next;
	enum httpd_metric_type type;
	char *name;
	char *help;
	size_t nlabels;
	char **labels;
	size_t nbounds;
	double *bounds;
	pthread_mutex_t mu;        /* guards everything below */
	struct series **table;
	size_t tsize;              /* power of two */
	size_t nseries;
	struct series *ohead, *otail;
};

struct collector {
	struct collector *next;
	httpd_collect_fn fn;
	void *arg;
};

struct httpd_metrics {
	pthread_mutex_t mu;        /* guards the two lists */
	struct httpd_family *head, *tail;
	struct collector *chead, *ctail;
};

struct httpd_expo {
	char *buf;
	size_t len;
	size_t cap;
	enum mk_status st;
};

struct httpd_metrics *
httpd_metrics_create(void)
{
	struct httpd_metrics *m = calloc(1, sizeof *m);

	if (m != NULL && pthread_mutex_init(&m->mu, NULL) != 0) {
		free(m);
		m = NULL;
	}
	return m;
}

static void
strv_free(char **v, size_t n)
{
	for (size_t i = 0; v != NULL && i < n; i++)
		free(v[i]);
	free(v);
}

static void
family_free(struct httpd_family *f)
{
	struct series *s, *next;

	if (f == NULL)
		return;
	for (s = f->ohead; s != NULL; s = next) {
		next = s->onext;
		strv_free(s->values, f->nlabels);
		free(s);
	}
	free(f->table);
	pthread_mutex_destroy(&f->mu);
	strv_free(f->labels, f->nlabels);
	free(f->bounds);
	free(f->name);
	free(f->help);
	free(f);
}

void
httpd_metrics_destroy(struct httpd_metrics *m)
{
	struct httpd_family *f, *fn;
	struct collector *c, *cn;

	if (m == NULL)
		return;
	for (f = m->head; f != NULL; f = fn) {
		fn = f->next;
		family_free(f);
	}
	for (c = m->chead; c != NULL; c = cn) {
		cn = c->next;
		free(c);
	}
	pthread_mutex_destroy(&m->mu);
	free(m);
}

static bool
valid_name(const char *s, bool colon)
{
	if (s == NULL || s[0] == '\0' || (s[0] >= '0' && s[0] <= '9'))
		return false;
	for (; *s != '\0'; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
		      (*s >= '0' && *s <= '9') || *s == '_' ||
		      (colon && *s == ':')))
			return false;
	return true;
}

/* Whether f was registered with exactly these parameters. */
static bool
family_same(const struct httpd_family *f, enum httpd_metric_type type,
	    const char *const *labels, size_t nlabels, const double *bounds,
	    size_t nbounds)
{
	if (f->type != type || f->nlabels != nlabels || f->nbounds != nbounds)
		return false;
	for (size_t i = 0; i < nlabels; i++)
		if (strcmp(f->labels[i], labels[i]) != 0)
			return false;
	for (size_t i = 0; i < nbounds; i++)
		if (f->bounds[i] != bounds[i])
			return false;
	return true;
}

static enum mk_status
check_family(enum httpd_metric_type type, const char *name,
	     const char *const *labels, size_t nlabels, const double *bounds,
	     size_t nbounds, struct mk_err *err)
{
	if (!valid_name(name, true) || strncmp(name, "markd_", 6) != 0)
		return mk_err_set(err, MK_EINVAL,
				  "metric name \"%s\" must match [a-zA-Z_:][a-zA-Z0-9_:]* and start with markd_",
				  name != NULL ? name : "(null)");
	if ((unsigned)type > HTTPD_METRIC_HISTOGRAM)
		return mk_err_set(err, MK_EINVAL, "metric %s: unknown type", name);
	if (nlabels > HTTPD_METRICS_MAX_LABELS || (nlabels > 0 && labels == NULL))
		return mk_err_set(err, MK_EINVAL, "metric %s: bad label list", name);
	for (size_t i = 0; i < nlabels; i++) {
		if (!valid_name(labels[i], false) ||
		    strncmp(labels[i], "__", 2) == 0 ||
		    strcmp(labels[i], "le") == 0)
			return mk_err_set(err, MK_EINVAL,
					  "metric %s: bad label name \"%s\"",
					  name, labels[i] != NULL ? labels[i] : "(null)");
		for (size_t j = 0; j < i; j++)
			if (strcmp(labels[i], labels[j]) == 0)
				return mk_err_set(err, MK_EINVAL,
						  "metric %s: label \"%s\" twice",
						  name, labels[i]);
	}
	if (type != HTTPD_METRIC_HISTOGRAM) {
		if (nbounds != 0)
			return mk_err_set(err, MK_EINVAL,
					  "metric %s: buckets on a non-histogram",
					  name);
		return MK_OK;
	}
	if (nbounds == 0 || nbounds > HTTPD_METRICS_MAX_BUCKETS || bounds == NULL)
		return mk_err_set(err, MK_EINVAL,
				  "metric %s: 1 to %d bucket bounds needed",
				  name, HTTPD_METRICS_MAX_BUCKETS);
	for (size_t i = 0; i < nbounds; i++)
		if (!isfinite(bounds[i]) || (i > 0 && !(bounds[i] > bounds[i - 1])))
			return mk_err_set(err, MK_EINVAL,
					  "metric %s: bucket bounds must be finite and increasing",
					  name);
	return MK_OK;
}

enum mk_status
httpd_metrics_family(struct httpd_metrics *m, enum httpd_metric_type type,
		     const char *name, const char *help,
		     const char *const *label_names, size_t nlabels,
		     const double *bounds, size_t nbounds,
		     struct httpd_family **out, struct mk_err *err)
{
	struct httpd_family *f = NULL;
	enum mk_status st;

	*out = NULL;
	st = check_family(type, name, label_names, nlabels, bounds, nbounds, err);
	if (st != MK_OK)
		return st;
	pthread_mutex_lock(&m->mu);
	for (struct httpd_family *g = m->head; g != NULL; g = g->next)
		if (strcmp(g->name, name) == 0) {
			if (family_same(g, type, label_names, nlabels, bounds,
					nbounds)) {
				*out = g;
				st = MK_OK;
			} else {
				st = mk_err_set(err, MK_ESTATE,
						"metric %s already registered differently",
						name);
			}
			goto out;
		}
	f = calloc(1, sizeof *f);
	if (f == NULL || pthread_mutex_init(&f->mu, NULL) != 0) {
		free(f);
		f = NULL;
		st = mk_err_set(err, MK_ENOMEM, "out of memory");
		goto out;
	}
	f->type = type;
	f->name = strdup(name);
	f->help = strdup(help != NULL ? help : "");
	f->nlabels = nlabels;
	f->labels = calloc(nlabels + 1, sizeof *f->labels);
	f->nbounds = nbounds;
	f->bounds = calloc(nbounds + 1, sizeof *f->bounds);
	f->tsize = 16;
	f->table = calloc(f->tsize, sizeof *f->table);
	if (f->name == NULL || f->help == NULL || f->labels == NULL ||
	    f->bounds == NULL || f->table == NULL)
		goto nomem;
	for (size_t i = 0; i < nlabels; i++)
		if ((f->labels[i] = strdup(label_names[i])) == NULL)
			goto nomem;
	if (nbounds > 0)
		memcpy(f->bounds, bounds, nbounds * sizeof *bounds);
	if (m->tail != NULL)
		m->tail->next = f;
	else
		m->head = f;
	m->tail = f;
	*out = f;
	st = MK_OK;
	goto out;
nomem:
	family_free(f);
	st = mk_err_set(err, MK_ENOMEM, "out of memory");
out:
	pthread_mutex_unlock(&m->mu);
	return st;
}

static uint64_t
hash_values(const char *const *values, size_t n)
{
	uint64_t h = UINT64_C(1469598103934665603);

	for (size_t i = 0; i < n; i++) {
		for (const char *p = values[i]; *p != '\0'; p++) {
			h ^= (unsigned char)*p;
			h *= UINT64_C(1099511628211);
		}
		h ^= 0xff; /* separator */
		h *= UINT64_C(1099511628211);
	}
	return h;
}

static void
grow_table(struct httpd_family *f)
{
	size_t nsize = f->tsize * 2;
	struct series **nt = calloc(nsize, sizeof *nt);

	if (nt == NULL)
		return; /* keep the longer chains */
	for (struct series *s = f->ohead; s != NULL; s = s->onext) {
		size_t b = (size_t)(s->hash & (nsize - 1));

		s->hnext = nt[b];
		nt[b] = s;
	}
	free(f->table);
	f->table = nt;
	f->tsize = nsize;
}

/* The series for values, created if needed; NULL when out of memory or
 * past the series cap. Needs f->mu held. */
static struct series *
series_get(struct httpd_family *f, const char *const *values)
{
	uint64_t h = hash_values(values, f->nlabels);
	struct series *s;
	size_t b = (size_t)(h & (f->tsize - 1));

	for (s = f->table[b]; s != NULL; s = s->hnext) {
		size_t i;

		if (s->hash != h)
			continue;
		for (i = 0; i < f->nlabels; i++)
			if (strcmp(s->values[i], values[i]) != 0)
				break;
		if (i == f->nlabels)
			return s;
	}
	if (f->nseries >= HTTPD_METRICS_MAX_SERIES)
		return NULL;
	s = calloc(1, sizeof *s + f->nbounds * sizeof s->buckets[0]);
	if (s == NULL)
		return NULL;
	s->values = calloc(f->nlabels + 1, sizeof *s->values);
	if (s->values == NULL)
		goto fail;
	for (size_t i = 0; i < f->nlabels; i++)
		if ((s->values[i] = strdup(values[i])) == NULL)
			goto fail;
	s->hash = h;
	s->hnext = f->table[b];
	f->table[b] = s;
	if (f->otail != NULL)
		f->otail->onext = s;
	else
		f->ohead = s;
	f->otail = s;
	if (++f->nseries > f->tsize)
		grow_table(f);
	return s;
fail:
	strv_free(s->values, f->nlabels);
	free(s);
	return NULL;
}

void
httpd_metric_add(struct httpd_family *f, const char *const *values, double v)
{
	struct series *s;

	if (f == NULL || f->type == HTTPD_METRIC_HISTOGRAM ||
	    (f->type == HTTPD_METRIC_COUNTER && !(v >= 0)))
		return;
	pthread_mutex_lock(&f->mu);
	s = series_get(f, values);
	if (s != NULL)
		s->value += v;
	pthread_mutex_unlock(&f->mu);
}

void
httpd_metric_set(struct httpd_family *f, const char *const *values, double v)
{
	struct series *s;

	if (f == NULL || f->type != HTTPD_METRIC_GAUGE)
		return;
	pthread_mutex_lock(&f->mu);
	s = series_get(f, values);
	if (s != NULL)
		s->value = v;
	pthread_mutex_unlock(&f->mu);
}

void
httpd_metric_observe(struct httpd_family *f, const char *const *values,
		     double v)
{
	struct series *s;

	if (f == NULL || f->type != HTTPD_METRIC_HISTOGRAM || isnan(v))
		return;
	pthread_mutex_lock(&f->mu);
	s = series_get(f, values);
	if (s != NULL) {
		for (size_t i = 0; i < f->nbounds; i++)
			if (v <= f->bounds[i]) {
				s->buckets[i]++;
				break;
			}
		s->count++;
		s->sum += v;
	}
	pthread_mutex_unlock(&f->mu);
}

enum mk_status
httpd_metrics_add_collector(struct httpd_metrics *m, httpd_collect_fn fn,
			    void *arg)
{
	struct collector *c = calloc(1, sizeof *c);

	if (c == NULL)
		return MK_ENOMEM;
	c->fn = fn;
	c->arg = arg;
	pthread_mutex_lock(&m->mu);
	if (m->ctail != NULL)
		m->ctail->next = c;
	else
		m->chead = c;
	m->ctail = c;
	pthread_mutex_unlock(&m->mu);
	return MK_OK;
}

/* ---- exposition ---- */

const char *
httpd_metric_format(double v, char *buf, size_t cap)
{
	if (isnan(v))
		snprintf(buf, cap, "NaN");
	else if (isinf(v))
		snprintf(buf, cap, v > 0 ? "+Inf" : "-Inf");
	else {
		/* The fewest digits that read back as v. A rounding to p
		 * digits that reads back makes every longer one read back
		 * too (it is at least as close), so search, not scan. */
		int lo = 1, hi = 17;

		while (lo < hi) {
			int mid = (lo + hi) / 2;

			snprintf(buf, cap, "%.*g", mid, v);
			if (strtod(buf, NULL) == v)
				hi = mid;
			else
				lo = mid + 1;
		}
		snprintf(buf, cap, "%.*g", lo, v);
	}
	return buf;
}

static void
expo_reserve(struct httpd_expo *w, size_t more)
{
	size_t ncap;
	char *nb;

	if (w->st != MK_OK)
		return;
	if (w->len + more + 1 <= w->cap)
		return;
	if (w->len + more + 1 > HTTPD_METRICS_MAX_BYTES) {
		w->st = MK_ETOOBIG;
		return;
	}
	ncap = w->cap > 0 ? w->cap : 4096;
	while (ncap < w->len + more + 1)
		ncap *= 2;
	if (ncap > HTTPD_METRICS_MAX_BYTES)
		ncap = HTTPD_METRICS_MAX_BYTES;
	nb = realloc(w->buf, ncap);
	if (nb == NULL) {
		w->st = MK_ENOMEM;
		return;
	}
	w->buf = nb;
	w->cap = ncap;
}

static void
expo_put(struct httpd_expo *w, const char *s, size_t n)
{
	expo_reserve(w, n);
	if (w->st != MK_OK)
		return;
	memcpy(w->buf + w->len, s, n);
	w->len += n;
	w->buf[w->len] = '\0';
}

static void
expo_str(struct httpd_expo *w, const char *s)
{
	expo_put(w, s, strlen(s));
}

/* s with '\\' and newline escaped, plus '"' when in a label value. */
static void
expo_escaped(struct httpd_expo *w, const char *s, bool quote)
{
	const char *run = s;

	for (; *s != '\0'; s++) {
		const char *esc = NULL;

		if (*s == '\\')
			esc = "\\\\";
		else if (*s == '\n')
			esc = "\\n";
		else if (quote && *s == '"')
			esc = "\\\"";
		if (esc == NULL)
			continue;
		expo_put(w, run, (size_t)(s - run));
		expo_str(w, esc);
		run = s + 1;
	}
	expo_put(w, run, (size_t)(s - run));
}

static const char *
type_name(enum httpd_metric_type t)
{
	switch (t) {
	case HTTPD_METRIC_COUNTER:
		return "counter";
	case HTTPD_METRIC_GAUGE:
		return "gauge";
	case HTTPD_METRIC_HISTOGRAM:
		return "histogram";
	}
	return "untyped";
}

void
httpd_expo_family(struct httpd_expo *w, const char *name, const char *help,
		  enum httpd_metric_type type)
{
	expo_str(w, "# HELP ");
	expo_str(w, name);
	expo_str(w, " ");
	expo_escaped(w, help != NULL ? help : "", false);
	expo_str(w, "\n# TYPE ");
	expo_str(w, name);
	expo_str(w, " ");
	expo_str(w, type_name(type));
	expo_str(w, "\n");
}

/* name[suffix]{labels[,le="..."]} value */
static void
expo_line(struct httpd_expo *w, const char *name, const char *suffix,
	  const char *const *names, const char *const *values, size_t n,
	  const char *le, const char *value)
{
	expo_str(w, name);
	expo_str(w, suffix);
	if (n > 0 || le != NULL) {
		expo_str(w, "{");
		for (size_t i = 0; i < n; i++) {
			if (i > 0)
				expo_str(w, ",");
			expo_str(w, names[i]);
			expo_str(w, "=\"");
			expo_escaped(w, values[i], true);
			expo_str(w, "\"");
		}
		if (le != NULL) {
			expo_str(w, n > 0 ? ",le=\"" : "le=\"");
			expo_str(w, le);
			expo_str(w, "\"");
		}
		expo_str(w, "}");
	}
	expo_str(w, " ");
	expo_str(w, value);
	expo_str(w, "\n");
}

void
httpd_expo_sample(struct httpd_expo *w, const char *name,
		  const char *const *label_names,
		  const char *const *label_values, size_t nlabels,
		  double value)
{
	char num[40];

	expo_line(w, name, "", label_names, label_values, nlabels, NULL,
		  httpd_metric_format(value, num, sizeof num));
}

static void
render_family(struct httpd_expo *w, struct httpd_family *f)
{
	const char *const *names = (const char *const *)f->labels;
	char num[40], le[40];

	pthread_mutex_lock(&f->mu);
	httpd_expo_family(w, f->name, f->help, f->type);
	for (struct series *s = f->ohead; s != NULL && w->st == MK_OK;
	     s = s->onext) {
		const char *const *vals = (const char *const *)s->values;
		uint64_t cum = 0;

		if (f->type != HTTPD_METRIC_HISTOGRAM) {
			httpd_expo_sample(w, f->name, names, vals, f->nlabels,
					  s->value);
			continue;
		}
		for (size_t i = 0; i < f->nbounds; i++) {
			cum += s->buckets[i];
			snprintf(num, sizeof num, "%" PRIu64, cum);
			expo_line(w, f->name, "_bucket", names, vals,
				  f->nlabels,
				  httpd_metric_format(f->bounds[i], le, sizeof le),
				  num);
		}
		snprintf(num, sizeof num, "%" PRIu64, s->count);
		expo_line(w, f->name, "_bucket", names, vals, f->nlabels,
			  "+Inf", num);
		expo_line(w, f->name, "_sum", names, vals, f->nlabels, NULL,
			  httpd_metric_format(s->sum, le, sizeof le));
		expo_line(w, f->name, "_count", names, vals, f->nlabels, NULL,
			  num);
	}
	pthread_mutex_unlock(&f->mu);
}

enum mk_status
httpd_metrics_render(struct httpd_metrics *m, char **out, size_t *len)
{
	struct httpd_expo w = { .st = MK_OK };
	struct collector *c, **cv = NULL;
	size_t nc = 0;

	*out = NULL;
	*len = 0;
	/* Lock order: registry, then family. Collectors run unlocked, from
	 * a copy of the list. */
	pthread_mutex_lock(&m->mu);
	for (struct httpd_family *f = m->head; f != NULL && w.st == MK_OK;
	     f = f->next)
		render_family(&w, f);
	for (c = m->chead; c != NULL; c = c->next)
		nc++;
	if (nc > 0) {
		cv = calloc(nc, sizeof *cv);
		if (cv == NULL)
			w.st = MK_ENOMEM;
		nc = 0;
		for (c = m->chead; cv != NULL && c != NULL; c = c->next)
			cv[nc++] = c;
	}
	pthread_mutex_unlock(&m->mu);
	for (size_t i = 0; i < nc && w.st == MK_OK; i++)
		cv[i]->fn(cv[i]->arg, &w);
	free(cv);
	expo_reserve(&w, 0);
	if (w.st != MK_OK) {
		free(w.buf);
		return w.st;
	}
	w.buf[w.len] = '\0';
	*out = w.buf;
	*len = w.len;
	return MK_OK;
}
