/*
 * render_marks.c - marks to JSON bytes, with a small append-only writer
 * (no JSON tree: a mark renders in about a microsecond).
 */
#include "config.h"

#include "httpd/render_marks.h"

#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aggregator/dec.h"
#include "httpd/metrics.h"
#include "httpd/response.h"

/* ---- an append-only text buffer ---- */

struct jw {
	char *p;
	size_t len, cap;
	enum mk_status st;
};

static void
jw_reserve(struct jw *w, size_t more)
{
	size_t ncap;
	char *np;

	if (w->st != MK_OK || w->len + more + 1 <= w->cap)
		return;
	ncap = w->cap > 0 ? w->cap : 1024;
	while (ncap < w->len + more + 1)
		ncap *= 2;
	np = realloc(w->p, ncap);
	if (np == NULL) {
		w->st = MK_ENOMEM;
		return;
	}
	w->p = np;
	w->cap = ncap;
}

static void
jw_mem(struct jw *w, const char *s, size_t n)
{
	jw_reserve(w, n);
	if (w->st != MK_OK)
		return;
	memcpy(w->p + w->len, s, n);
	w->len += n;
	w->p[w->len] = '\0';
}

static void
jw_raw(struct jw *w, const char *s)
{
	jw_mem(w, s, strlen(s));
}

__attribute__((format(printf, 2, 3))) static void
jw_fmt(struct jw *w, const char *fmt, ...)
{
	char tmp[64];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(tmp, sizeof tmp, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof tmp) {
		w->st = MK_ERANGE;
		return;
	}
	jw_mem(w, tmp, (size_t)n);
}

/* v in decimal, zero-padded to at least `width` digits, into buf (room
 * for 20 digits or width); returns the length. No NUL. */
static size_t
put_uint(char *buf, uint64_t v, size_t width)
{
	char tmp[20];
	size_t n = 0, o = 0;

	do {
		tmp[n++] = (char)('0' + (int)(v % 10u));
		v /= 10u;
	} while (v != 0);
	while (n < width && n < sizeof tmp)
		tmp[n++] = '0';
	while (n > 0)
		buf[o++] = tmp[--n];
	return o;
}

static void
jw_uint(struct jw *w, uint64_t v)
{
	char buf[20];

	jw_mem(w, buf, put_uint(buf, v, 1));
}

/* Length of the valid UTF-8 sequence at s (at most n bytes), 0 if none. */
static size_t
utf8_len(const unsigned char *s, size_t n)
{
	size_t need;
	uint32_t cp;

	if (s[0] < 0x80)
		return 1;
	if (s[0] >= 0xc2 && s[0] <= 0xdf) {
		need = 2;
		cp = s[0] & 0x1fu;
	} else if (s[0] >= 0xe0 && s[0] <= 0xef) {
		need = 3;
		cp = s[0] & 0x0fu;
	} else if (s[0] >= 0xf0 && s[0] <= 0xf4) {
		need = 4;
		cp = s[0] & 0x07u;
	} else {
		return 0;
	}
	if (n < need)
		return 0;
	for (size_t i = 1; i < need; i++) {
		if ((s[i] & 0xc0u) != 0x80u)
			return 0;
		cp = (cp << 6) | (s[i] & 0x3fu);
	}
	/* overlong forms, surrogates, beyond U+10FFFF */
	if ((need == 3 && cp < 0x800) || (need == 4 && cp < 0x10000) ||
	    (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff)
		return 0;
	return need;
}

/* A JSON string of s: quotes, backslashes and control characters escaped,
 * bytes that are not UTF-8 replaced by U+FFFD. */
static void
jw_str(struct jw *w, const char *s)
{
	const unsigned char *u = (const unsigned char *)s;
	size_t n = strlen(s), i = 0, run;

	jw_mem(w, "\"", 1);
	while (i < n) {
		/* copy a run of plain characters at once */
		run = 0;
		while (i + run < n && u[i + run] >= 0x20 && u[i + run] < 0x80 &&
		       u[i + run] != '"' && u[i + run] != '\\')
			run++;
		if (run > 0) {
			jw_mem(w, s + i, run);
			i += run;
			continue;
		}
		if (u[i] == '"' || u[i] == '\\') {
			char e[2] = { '\\', (char)u[i] };

			jw_mem(w, e, 2);
			i++;
		} else if (u[i] < 0x20) {
			jw_fmt(w, "\\u%04x", (unsigned)u[i]);
			i++;
		} else {
			size_t k = utf8_len(u + i, n - i);

			if (k == 0) {
				jw_raw(w, "\xef\xbf\xbd");
				i++;
			} else {
				jw_mem(w, s + i, k);
				i += k;
			}
		}
	}
	jw_mem(w, "\"", 1);
}

/* A decimal as a string at `scale`, half-even; null when !has. */
static void
jw_dec(struct jw *w, bool has, struct mk_dec d, int scale)
{
	char buf[MK_DEC_STRLEN];

	if (!has) {
		jw_raw(w, "null");
		return;
	}
	if (mk_dec_format_scaled(d, scale, MK_ROUND_HALF_EVEN, buf,
				 sizeof buf) == 0) {
		w->st = MK_ERANGE;
		return;
	}
	jw_mem(w, "\"", 1);
	jw_raw(w, buf);
	jw_mem(w, "\"", 1);
}

/* A time, or null for 0 (never) and values out of range. */
static void
jw_time(struct jw *w, int64_t ms)
{
	char buf[32];
	size_t n = ms > 0 ? httpd_render_time(ms, buf, sizeof buf) : 0;

	if (n == 0) {
		jw_raw(w, "null");
		return;
	}
	jw_mem(w, "\"", 1);
	jw_mem(w, buf, n);
	jw_mem(w, "\"", 1);
}

/* A non-negative count of ms, or null for a negative one (unknown). */
static void
jw_age(struct jw *w, int64_t ms)
{
	if (ms < 0)
		jw_raw(w, "null");
	else
		jw_uint(w, (uint64_t)ms);
}

/* A weight in 1/10000 units as an exact JSON number: 1, 2.5, 0.0001. */
static void
jw_weight(struct jw *w, uint32_t wt)
{
	uint32_t frac = wt % 10000u;
	char f[8];
	size_t n;

	jw_uint(w, wt / 10000u);
	if (frac == 0)
		return;
	f[0] = '.';
	n = 1 + put_uint(f + 1, frac, 4);
	while (f[n - 1] == '0')
		n--;
	jw_mem(w, f, n);
}

/* ---- time ---- */

size_t
httpd_render_time(int64_t ms, char *buf, size_t cap)
{
	/* 9999-12-31T23:59:59.999Z */
	const int64_t max_ms = INT64_C(253402300799999);
	int64_t days, secs, z, era, doe, yoe, y, doy, mp, d, m;
	size_t n = 0;

	if (ms < 0 || ms > max_ms || cap < 25)
		return 0;
	days = ms / 86400000;
	secs = (ms % 86400000) / 1000;
	/* civil date from days since 1970-01-01 (proleptic Gregorian) */
	z = days + 719468;
	era = z / 146097;
	doe = z - era * 146097;
	yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	y = yoe + era * 400;
	doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	mp = (5 * doy + 2) / 153;
	d = doy - (153 * mp + 2) / 5 + 1;
	m = mp < 10 ? mp + 3 : mp - 9;
	if (m <= 2)
		y++;
	/* written by hand: snprintf was most of a mark's rendering time */
	n += put_uint(buf + n, (uint64_t)y, 4);
	buf[n++] = '-';
	n += put_uint(buf + n, (uint64_t)m, 2);
	buf[n++] = '-';
	n += put_uint(buf + n, (uint64_t)d, 2);
	buf[n++] = 'T';
	n += put_uint(buf + n, (uint64_t)(secs / 3600), 2);
	buf[n++] = ':';
	n += put_uint(buf + n, (uint64_t)(secs / 60 % 60), 2);
	buf[n++] = ':';
	n += put_uint(buf + n, (uint64_t)(secs % 60), 2);
	buf[n++] = '.';
	n += put_uint(buf + n, (uint64_t)(ms % 1000), 3);
	buf[n++] = 'Z';
	buf[n] = '\0';
	return n == 24 ? 24 : 0;
}

/* ---- marks ---- */

static void
render_leg(struct jw *w, const struct agg_leg_view *l, int scale)
{
	jw_raw(w, "{\"source\":");
	jw_str(w, l->source);
	jw_raw(w, ",\"market\":");
	jw_str(w, l->market);
	jw_raw(w, ",\"via\":");
	if (l->via[0] != '\0')
		jw_str(w, l->via);
	else
		jw_raw(w, "null");
	jw_raw(w, ",\"raw_price\":");
	jw_dec(w, l->has_raw, l->raw_price, scale);
	jw_raw(w, ",\"price\":");
	jw_dec(w, l->has_price, l->price, scale);
	jw_raw(w, ",\"conf\":");
	jw_dec(w, l->has_price, l->conf, scale);
	jw_raw(w, ",\"exchange_ts\":");
	jw_time(w, l->exchange_ts_ms);
	jw_raw(w, ",\"received_at\":");
	jw_time(w, l->recv_ts_ms);
	jw_raw(w, ",\"age_ms\":");
	jw_age(w, l->age_ms);
	jw_raw(w, ",\"weight\":");
	jw_weight(w, l->weight);
	jw_raw(w, ",\"state\":");
	jw_str(w, agg_leg_state_name(l->state));
	jw_raw(w, ",\"reason\":");
	if (l->reason != AGG_EXCL_NONE)
		jw_str(w, agg_exclusion_name(l->reason));
	else
		jw_raw(w, "null");
	jw_raw(w, ",\"error\":");
	if (l->error[0] != '\0')
		jw_str(w, l->error);
	else
		jw_raw(w, "null");
	jw_raw(w, ",\"error_at\":");
	jw_time(w, l->error[0] != '\0' ? l->error_at_ms : 0);
	jw_raw(w, "}");
}

enum mk_status
httpd_render_mark(const struct agg_mark *m, uint64_t seq, char **out,
		  size_t *len)
{
	struct jw w = { .st = MK_OK };
	char vol[40];
	bool first = true;

	*out = NULL;
	*len = 0;
	jw_raw(&w, "{\"symbol\":");
	jw_str(&w, m->symbol);
	jw_raw(&w, ",\"price\":");
	jw_dec(&w, m->has_price, m->price, m->scale);
	jw_raw(&w, ",\"conf\":");
	jw_dec(&w, m->has_price, m->conf, m->scale);
	jw_raw(&w, ",\"status\":");
	jw_str(&w, agg_mark_status_name(m->status));
	jw_raw(&w, m->valid_for_liquidation
			   ? ",\"valid_for_liquidation\":true,\"reasons\":["
			   : ",\"valid_for_liquidation\":false,\"reasons\":[");
	for (int s = AGG_MARK_STATUS_COUNT - 1; s > AGG_MARK_OK; s--) {
		if ((m->reasons & AGG_REASON(s)) == 0)
			continue;
		if (!first)
			jw_raw(&w, ",");
		jw_str(&w, agg_mark_status_name((enum agg_mark_status)s));
		first = false;
	}
	jw_raw(&w, m->held ? "],\"held\":true" : "],\"held\":false");
	jw_raw(&w, ",\"sources_used\":");
	jw_uint(&w, m->sources_used);
	jw_raw(&w, ",\"sources_total\":");
	jw_uint(&w, m->sources_total);
	jw_raw(&w, ",\"ema\":");
	jw_dec(&w, m->has_ema, m->ema, m->scale);
	jw_raw(&w, ",\"twap\":");
	jw_dec(&w, m->has_twap, m->twap, m->scale);
	jw_raw(&w, ",\"volatility\":");
	if (m->has_volatility && isfinite(m->volatility))
		jw_raw(&w, httpd_metric_format(m->volatility, vol, sizeof vol));
	else
		jw_raw(&w, "null");
	jw_raw(&w, ",\"updated_at\":");
	jw_time(&w, m->updated_at_ms);
	jw_raw(&w, ",\"age_ms\":");
	jw_age(&w, m->has_price ? m->age_ms : -1);
	jw_raw(&w, ",\"seq\":");
	jw_uint(&w, seq);
	jw_raw(&w, ",\"last_good_at\":");
	jw_time(&w, m->has_last_good ? m->last_good_at_ms : 0);
	jw_raw(&w, ",\"last_good_age_ms\":");
	jw_age(&w, m->held && m->has_last_good
			   ? m->updated_at_ms - m->last_good_at_ms : -1);
	jw_raw(&w, ",\"sources\":[");
	for (size_t i = 0; i < m->nlegs; i++) {
		if (i > 0)
			jw_raw(&w, ",");
		render_leg(&w, &m->legs[i], m->scale);
	}
	jw_raw(&w, "]}");
	if (w.st != MK_OK) {
		free(w.p);
		return w.st;
	}
	*out = w.p;
	*len = w.len;
	return MK_OK;
}

struct httpd_buf *
httpd_render_mark_buf(const struct agg_mark *m, uint64_t seq)
{
	char *text;
	size_t len;

	if (httpd_render_mark(m, seq, &text, &len) != MK_OK)
		return NULL;
	return httpd_buf_take(text, len);
}

struct httpd_buf *
httpd_render_marks_list(struct httpd_buf *const *marks, size_t n)
{
	static const char head[] = "{\"marks\":[", tail[] = "]}";
	size_t total = sizeof head - 1 + sizeof tail - 1, at;
	bool first = true;
	char *p;

	for (size_t i = 0; i < n; i++)
		if (marks[i] != NULL)
			total += httpd_buf_len(marks[i]) + 1;
	p = malloc(total + 1);
	if (p == NULL)
		return NULL;
	memcpy(p, head, sizeof head - 1);
	at = sizeof head - 1;
	for (size_t i = 0; i < n; i++) {
		if (marks[i] == NULL)
			continue;
		if (!first)
			p[at++] = ',';
		memcpy(p + at, httpd_buf_data(marks[i]), httpd_buf_len(marks[i]));
		at += httpd_buf_len(marks[i]);
		first = false;
	}
	memcpy(p + at, tail, sizeof tail - 1);
	at += sizeof tail - 1;
	p[at] = '\0';
	return httpd_buf_take(p, at);
}
