/*
 * metrics.h - a small registry of counters, gauges and histograms with
 * labels, and its Prometheus text exposition (format 0.0.4).
 *
 * Conventions: names start with "markd_", use base units (seconds, bytes)
 * and counters end in "_total". A family is registered once with its label
 * names; samples are addressed by label values in the same order. A family
 * holds at most HTTPD_METRICS_MAX_SERIES label combinations; updates for
 * more are dropped (guard against unbounded label values).
 *
 * Values that only exist at scrape time (feed health, marks) come from
 * collectors: callbacks run during rendering that write families through
 * the httpd_expo_* functions, reading a snapshot, never blocking.
 *
 * Thread safety: every function may be called from any thread. Each
 * family has its own mutex, held for one update or while rendering writes
 * that family out (microseconds per hundred series). Collectors run on the
 * rendering thread (MHD's) without any registry lock held.
 *
 * Ownership: the registry copies names, help texts, label names and label
 * values. Family pointers stay valid until the registry is destroyed.
 */
#ifndef MARKD_HTTPD_METRICS_H
#define MARKD_HTTPD_METRICS_H

#include <stddef.h>

#include "aggregator/status.h"

#define HTTPD_METRICS_MAX_LABELS 8
#define HTTPD_METRICS_MAX_BUCKETS 32
#define HTTPD_METRICS_MAX_SERIES 10000
#define HTTPD_METRICS_MAX_BYTES (16u << 20) /* cap of one rendering */

enum httpd_metric_type {
	HTTPD_METRIC_COUNTER = 0,
	HTTPD_METRIC_GAUGE,
	HTTPD_METRIC_HISTOGRAM,
};

struct httpd_metrics;
struct httpd_family;
struct httpd_expo;

typedef void (*httpd_collect_fn)(void *arg, struct httpd_expo *w);

/* A new empty registry, or NULL when out of memory. */
struct httpd_metrics *httpd_metrics_create(void);

/* Frees the registry and its families; NULL is accepted. Nothing may use
 * it any more. */
void httpd_metrics_destroy(struct httpd_metrics *m);

/*
 * Registers a family, or finds the one already registered under name with
 * the same type, labels and buckets (so registering twice is harmless).
 * name: [a-zA-Z_:][a-zA-Z0-9_:]* starting with "markd_"; label names:
 * [a-zA-Z_][a-zA-Z0-9_]*, not starting with "__", never "le"; bounds (for
 * histograms only; NULL/0 otherwise): strictly increasing finite upper
 * bounds, the +Inf bucket is implied. Errors: MK_EINVAL (err says what),
 * MK_ESTATE (name taken by a different family), MK_ENOMEM.
 */
enum mk_status httpd_metrics_family(struct httpd_metrics *m,
				    enum httpd_metric_type type,
				    const char *name, const char *help,
				    const char *const *label_names,
				    size_t nlabels, const double *bounds,
				    size_t nbounds, struct httpd_family **out,
				    struct mk_err *err);

/* Counter or gauge: adds v (a counter ignores negative v). values has the
 * family's label count of strings (NULL when it has none). */
void httpd_metric_add(struct httpd_family *f, const char *const *values,
		      double v);

/* Gauge: sets the value. */
void httpd_metric_set(struct httpd_family *f, const char *const *values,
		      double v);

/* Histogram: records one observation. */
void httpd_metric_observe(struct httpd_family *f, const char *const *values,
			  double v);

/* Adds a collector run at every rendering, after the families. */
enum mk_status httpd_metrics_add_collector(struct httpd_metrics *m,
					   httpd_collect_fn fn, void *arg);

/*
 * Renders every family (registration order, series in creation order)
 * then every collector, into a new malloc'd buffer *out of *len bytes
 * (NUL-terminated too). Errors: MK_ETOOBIG past HTTPD_METRICS_MAX_BYTES,
 * MK_ENOMEM.
 */
enum mk_status httpd_metrics_render(struct httpd_metrics *m, char **out,
				    size_t *len);

/* ---- for collectors ---- */

/* Writes the "# HELP" and "# TYPE" lines of a family. */
void httpd_expo_family(struct httpd_expo *w, const char *name,
		       const char *help, enum httpd_metric_type type);

/* Writes one sample line: name{l1="v1",...} value, label values escaped. */
void httpd_expo_sample(struct httpd_expo *w, const char *name,
		       const char *const *label_names,
		       const char *const *label_values, size_t nlabels,
		       double value);

/*
 * Formats v the way the exposition does (shortest text that reads back
 * to the same double; "+Inf", "-Inf", "NaN") into buf of cap bytes.
 * Returns buf.
 */
const char *httpd_metric_format(double v, char *buf, size_t cap);

#endif
