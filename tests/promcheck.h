/*
 * promcheck.h - a strict checker of the Prometheus text exposition
 * format (0.0.4) for the test suites: every family has # HELP then
 * # TYPE before its samples, appears once, samples belong to their
 * family, label values are properly escaped, histograms have cumulative
 * buckets with increasing "le", a +Inf bucket, _sum and _count, and
 * _count equals the +Inf bucket. prom_get reads one sample's value.
 *
 * Header-only (static inline) so each test program stays one file.
 * Not thread-safe (prom_check keeps its current family in a static).
 */
#ifndef MARKD_TESTS_PROMCHECK_H
#define MARKD_TESTS_PROMCHECK_H

#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>


struct hseries {
	char key[256];     /* the label set without le */
	double last_le;
	double last_cum;
	bool inf;
	double inf_count;
	bool sum, count;
	double count_v;
};

struct pfam {
	char name[128];
	char type[16];
	bool help, typed;
	size_t nh;
	struct hseries h[64];
};

static inline bool
prom_name(const char **p, char *out, size_t cap, bool colon)
{
	size_t n = 0;
	const char *s = *p;

	if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
	      *s == '_' || (colon && *s == ':')))
		return false;
	while ((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
	       (*s >= '0' && *s <= '9') || *s == '_' || (colon && *s == ':')) {
		if (n + 1 < cap)
			out[n++] = *s;
		s++;
	}
	out[n] = '\0';
	*p = s;
	return true;
}

static inline bool
prom_value(const char *s, double *v, const char **end)
{
	char *e;

	if (strncmp(s, "+Inf", 4) == 0) {
		*v = INFINITY;
		*end = s + 4;
		return true;
	}
	if (strncmp(s, "-Inf", 4) == 0) {
		*v = -INFINITY;
		*end = s + 4;
		return true;
	}
	if (strncmp(s, "NaN", 3) == 0) {
		*v = NAN;
		*end = s + 3;
		return true;
	}
	*v = strtod(s, &e);
	if (e == s)
		return false;
	*end = e;
	return true;
}

static inline bool
fam_done(struct pfam *f, char *why, size_t cap)
{
	if (strcmp(f->type, "histogram") != 0)
		return true;
	for (size_t i = 0; i < f->nh; i++) {
		struct hseries *h = &f->h[i];

		if (!h->inf || !h->sum || !h->count) {
			snprintf(why, cap, "%s{%s}: missing +Inf, _sum or _count",
				 f->name, h->key);
			return false;
		}
		if (h->count_v != h->inf_count) {
			snprintf(why, cap, "%s{%s}: _count differs from +Inf bucket",
				 f->name, h->key);
			return false;
		}
	}
	return true;
}

static inline struct hseries *
hseries_get(struct pfam *f, const char *key)
{
	for (size_t i = 0; i < f->nh; i++)
		if (strcmp(f->h[i].key, key) == 0)
			return &f->h[i];
	if (f->nh == sizeof f->h / sizeof f->h[0])
		return NULL;
	memset(&f->h[f->nh], 0, sizeof f->h[0]);
	snprintf(f->h[f->nh].key, sizeof f->h[0].key, "%s", key);
	f->h[f->nh].last_le = -INFINITY;
	return &f->h[f->nh++];
}

/* Checks text; on failure fills why and returns false. */
static inline bool
prom_check(const char *text, char *why, size_t cap)
{
	static struct pfam fam; /* current family (large: not on stack) */
	char seen[64][128];
	size_t nseen = 0, lineno = 0;
	const char *p = text;
	bool have = false;

	memset(&fam, 0, sizeof fam);
	if (*text == '\0' || text[strlen(text) - 1] != '\n') {
		snprintf(why, cap, "empty or not newline-terminated");
		return false;
	}
	while (*p != '\0') {
		const char *eol = strchr(p, '\n');
		char line[1024], name[128], lname[128], key[256], le[64];
		const char *s;
		size_t ll = (size_t)(eol - p);
		double v;

		lineno++;
		if (ll >= sizeof line) {
			snprintf(why, cap, "line %zu too long", lineno);
			return false;
		}
		memcpy(line, p, ll);
		line[ll] = '\0';
		p = eol + 1;
		s = line;
		if (strncmp(s, "# HELP ", 7) == 0 || strncmp(s, "# TYPE ", 7) == 0) {
			bool help = s[2] == 'H';

			s += 7;
			if (!prom_name(&s, name, sizeof name, true) || *s != ' ') {
				snprintf(why, cap, "line %zu: bad HELP/TYPE", lineno);
				return false;
			}
			s++;
			if (help) {
				if (have && !fam_done(&fam, why, cap))
					return false;
				for (size_t i = 0; i < nseen; i++)
					if (strcmp(seen[i], name) == 0) {
						snprintf(why, cap, "line %zu: family %s twice",
							 lineno, name);
						return false;
					}
				if (nseen < 64)
					snprintf(seen[nseen++], 128, "%s", name);
				memset(&fam, 0, sizeof fam);
				snprintf(fam.name, sizeof fam.name, "%s", name);
				fam.help = true;
				have = true;
				continue;
			}
			if (!have || strcmp(fam.name, name) != 0 || fam.typed) {
				snprintf(why, cap, "line %zu: TYPE without its HELP first",
					 lineno);
				return false;
			}
			if (strcmp(s, "counter") != 0 && strcmp(s, "gauge") != 0 &&
			    strcmp(s, "histogram") != 0 && strcmp(s, "summary") != 0 &&
			    strcmp(s, "untyped") != 0) {
				snprintf(why, cap, "line %zu: unknown type %s", lineno, s);
				return false;
			}
			snprintf(fam.type, sizeof fam.type, "%s", s);
			fam.typed = true;
			continue;
		}
		if (s[0] == '#')
			continue;
		if (s[0] == '\0') {
			snprintf(why, cap, "line %zu: empty line", lineno);
			return false;
		}
		/* a sample */
		if (!prom_name(&s, name, sizeof name, true)) {
			snprintf(why, cap, "line %zu: bad metric name", lineno);
			return false;
		}
		key[0] = le[0] = '\0';
		if (*s == '{') {
			s++;
			while (*s != '}') {
				char val[256];
				size_t vn = 0;

				if (!prom_name(&s, lname, sizeof lname, false) ||
				    s[0] != '=' || s[1] != '"') {
					snprintf(why, cap, "line %zu: bad label", lineno);
					return false;
				}
				s += 2;
				while (*s != '"') {
					if (*s == '\0') {
						snprintf(why, cap, "line %zu: open label value", lineno);
						return false;
					}
					if (*s == '\\') {
						s++;
						if (*s != '\\' && *s != '"' && *s != 'n') {
							snprintf(why, cap, "line %zu: bad escape", lineno);
							return false;
						}
					}
					if (vn + 1 < sizeof val)
						val[vn++] = *s;
					s++;
				}
				val[vn] = '\0';
				s++;
				if (strcmp(lname, "le") == 0)
					snprintf(le, sizeof le, "%.60s", val);
				else
					snprintf(key + strlen(key), sizeof key - strlen(key),
						 "%.60s=%.100s;", lname, val);
				if (*s == ',')
					s++;
				else if (*s != '}') {
					snprintf(why, cap, "line %zu: bad label list", lineno);
					return false;
				}
			}
			s++;
		}
		if (*s != ' ' || !prom_value(s + 1, &v, &s) ||
		    (*s != '\0' && *s != ' ')) {
			snprintf(why, cap, "line %zu: bad value", lineno);
			return false;
		}
		if (!have || !fam.help || !fam.typed) {
			snprintf(why, cap, "line %zu: sample %s before HELP and TYPE",
				 lineno, name);
			return false;
		}
		if (strcmp(fam.type, "histogram") == 0) {
			size_t fl = strlen(fam.name);
			struct hseries *h;
			const char *suf = name + fl;

			if (strncmp(name, fam.name, fl) != 0 ||
			    (strcmp(suf, "_bucket") != 0 && strcmp(suf, "_sum") != 0 &&
			     strcmp(suf, "_count") != 0)) {
				snprintf(why, cap, "line %zu: %.60s is not in family %.60s",
					 lineno, name, fam.name);
				return false;
			}
			h = hseries_get(&fam, key);
			if (h == NULL) {
				snprintf(why, cap, "too many series");
				return false;
			}
			if (strcmp(suf, "_bucket") == 0) {
				double lev;
				const char *e;

				if (le[0] == '\0' || !prom_value(le, &lev, &e) ||
				    *e != '\0' || h->inf || !(lev > h->last_le) ||
				    v < h->last_cum) {
					snprintf(why, cap,
						 "line %zu: buckets not increasing/cumulative", lineno);
					return false;
				}
				h->last_le = lev;
				h->last_cum = v;
				if (strcmp(le, "+Inf") == 0) {
					h->inf = true;
					h->inf_count = v;
				}
			} else if (!h->inf) {
				snprintf(why, cap, "line %zu: %s before the +Inf bucket",
					 lineno, name);
				return false;
			} else if (strcmp(suf, "_sum") == 0) {
				h->sum = true;
			} else {
				h->count = true;
				h->count_v = v;
			}
		} else if (strcmp(name, fam.name) != 0) {
			snprintf(why, cap, "line %zu: %.60s is not in family %.60s", lineno,
				 name, fam.name);
			return false;
		}
	}
	return !have || fam_done(&fam, why, cap);
}

/* The value of the sample whose text before the value is exactly series,
 * or -1 when absent. */
static inline double
prom_get(const char *text, const char *series)
{
	size_t n = strlen(series);

	for (const char *p = text; p != NULL && *p != '\0';) {
		if (strncmp(p, series, n) == 0 && p[n] == ' ')
			return strtod(p + n + 1, NULL);
		p = strchr(p, '\n');
		if (p != NULL)
			p++;
	}
	return -1;
}

#endif
