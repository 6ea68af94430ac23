/*
 * history.c - the 1-minute OHLCV CSV reader (see history.h).
 */
#include "config.h"

#include "tools/history.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Columns in file order; `trades` is optional. */
static const char *const columns[] = {
	"ts_utc_unix", "open", "high", "low", "close", "volume", "trades",
};
#define NCOL_MIN 6
#define NCOL_MAX 7

/* One field of a line: bytes [p, p+len). */
struct field {
	const char *p;
	size_t len;
};

static size_t
split(const char *line, size_t len, struct field *f, size_t cap)
{
	size_t n = 0, start = 0;

	for (size_t i = 0; i <= len; i++) {
		if (i < len && line[i] != ',')
			continue;
		if (n < cap) {
			f[n].p = line + start;
			f[n].len = i - start;
		}
		n++;
		start = i + 1;
	}
	return n;
}

/* Shows at most 24 bytes of a field in a message, never a NUL inside. */
static void
show(const struct field *f, char *buf, size_t cap)
{
	size_t n = f->len < 24 ? f->len : 24;
	size_t k = 0;

	for (size_t i = 0; i < n && k + 1 < cap; i++)
		buf[k++] = (f->p[i] >= 0x20 && f->p[i] < 0x7f) ? f->p[i] : '?';
	if (n < f->len && k + 3 < cap) {
		memcpy(buf + k, "...", 3);
		k += 3;
	}
	buf[k] = '\0';
}

static enum mk_status
check_header(const char *name, const char *line, size_t len, size_t *ncol,
	     struct mk_err *err)
{
	struct field f[NCOL_MAX + 1];
	size_t n = split(line, len, f, NCOL_MAX + 1);
	char shown[32];

	if (n < NCOL_MIN || n > NCOL_MAX)
		return mk_err_set(err, MK_EPARSE,
				  "%s:1: header has %zu columns, expected "
				  "ts_utc_unix,open,high,low,close,volume[,trades]",
				  name, n);
	for (size_t i = 0; i < n; i++) {
		if (f[i].len == strlen(columns[i]) &&
		    memcmp(f[i].p, columns[i], f[i].len) == 0)
			continue;
		show(&f[i], shown, sizeof(shown));
		return mk_err_set(err, MK_EPARSE,
				  "%s:1:%s: header column %zu is \"%s\", expected \"%s\"",
				  name, columns[i], i + 1, shown, columns[i]);
	}
	*ncol = n;
	return MK_OK;
}

/* A non-negative integer of at most 18 digits. */
static bool
parse_uint(const struct field *f, int64_t *out)
{
	int64_t v = 0;

	if (f->len == 0 || f->len > 18)
		return false;
	for (size_t i = 0; i < f->len; i++) {
		if (f->p[i] < '0' || f->p[i] > '9')
			return false;
		v = v * 10 + (f->p[i] - '0');
	}
	*out = v;
	return true;
}

static enum mk_status
parse_dec(const char *name, size_t lineno, size_t col, const struct field *f,
	  struct mk_dec *out, struct mk_err *err)
{
	struct mk_err e;
	char shown[32];
	enum mk_status st;

	st = mk_dec_parse(f->p, f->len, out, &e);
	if (st != MK_OK) {
		show(f, shown, sizeof(shown));
		return mk_err_set(err, MK_EPARSE, "%s:%zu:%s: \"%s\" is not a decimal (%s)",
				  name, lineno, columns[col], shown, e.msg);
	}
	return MK_OK;
}

static enum mk_status
parse_bar(const char *name, size_t lineno, const char *line, size_t len,
	  size_t ncol, struct history_bar *b, struct mk_err *err)
{
	struct field f[NCOL_MAX + 1];
	struct mk_dec *px[4] = { &b->open, &b->high, &b->low, &b->close };
	size_t n = split(line, len, f, NCOL_MAX + 1);
	char shown[32];
	enum mk_status st;

	if (n != ncol)
		return mk_err_set(err, MK_EPARSE, "%s:%zu:%s: %zu fields, expected %zu",
				  name, lineno, columns[n < ncol ? n : ncol - 1],
				  n, ncol);
	if (!parse_uint(&f[0], &b->ts)) {
		show(&f[0], shown, sizeof(shown));
		return mk_err_set(err, MK_EPARSE,
				  "%s:%zu:ts_utc_unix: \"%s\" is not a Unix time in seconds",
				  name, lineno, shown);
	}
	if (b->ts > HISTORY_TS_MAX) {
		/* later times would overflow once taken to milliseconds */
		show(&f[0], shown, sizeof(shown));
		return mk_err_set(err, MK_EPARSE,
				  "%s:%zu:ts_utc_unix: \"%s\" is after 9999-12-31",
				  name, lineno, shown);
	}
	for (size_t i = 0; i < 4; i++) {
		st = parse_dec(name, lineno, i + 1, &f[i + 1], px[i], err);
		if (st != MK_OK)
			return st;
		if (!mk_dec_is_pos(*px[i]))
			return mk_err_set(err, MK_EPARSE, "%s:%zu:%s: price must be > 0",
					  name, lineno, columns[i + 1]);
	}
	st = parse_dec(name, lineno, 5, &f[5], &b->volume, err);
	if (st != MK_OK)
		return st;
	if (mk_dec_is_neg(b->volume))
		return mk_err_set(err, MK_EPARSE, "%s:%zu:volume: must be >= 0",
				  name, lineno);
	b->trades = -1;
	if (ncol == NCOL_MAX && !parse_uint(&f[6], &b->trades)) {
		show(&f[6], shown, sizeof(shown));
		return mk_err_set(err, MK_EPARSE,
				  "%s:%zu:trades: \"%s\" is not a count", name, lineno,
				  shown);
	}
	if (mk_dec_cmp(b->high, b->low) < 0)
		return mk_err_set(err, MK_EPARSE, "%s:%zu:high: high is below low",
				  name, lineno);
	if (mk_dec_cmp(b->high, b->open) < 0 || mk_dec_cmp(b->high, b->close) < 0)
		return mk_err_set(err, MK_EPARSE,
				  "%s:%zu:high: high is below open or close", name,
				  lineno);
	if (mk_dec_cmp(b->low, b->open) > 0 || mk_dec_cmp(b->low, b->close) > 0)
		return mk_err_set(err, MK_EPARSE,
				  "%s:%zu:low: low is above open or close", name,
				  lineno);
	return MK_OK;
}

static int
max_scale(const struct history_bar *b)
{
	int s = b->open.scale;

	if (b->high.scale > s)
		s = b->high.scale;
	if (b->low.scale > s)
		s = b->low.scale;
	if (b->close.scale > s)
		s = b->close.scale;
	return s;
}

enum mk_status
history_parse(const char *name, const char *buf, size_t len,
	      const struct history_limits *lim, struct history_series **out,
	      struct mk_err *err)
{
	size_t max_line = HISTORY_MAX_LINE_DEFAULT;
	size_t max_rows = HISTORY_MAX_ROWS_DEFAULT;
	struct history_series *s = NULL;
	struct history_bar *bars = NULL;
	size_t nbars = 0, capbars = 0, ncol = 0, lineno = 0, pos = 0;
	enum mk_status st = MK_OK;

	if (lim != NULL && lim->max_line != 0)
		max_line = lim->max_line;
	if (lim != NULL && lim->max_rows != 0)
		max_rows = lim->max_rows;

	while (pos < len) {
		const char *line = buf + pos;
		const char *nl = memchr(line, '\n', len - pos);
		size_t llen = nl != NULL ? (size_t)(nl - line) : len - pos;
		struct history_bar b;

		pos += llen + (nl != NULL ? 1 : 0);
		lineno++;
		if (llen > 0 && line[llen - 1] == '\r')
			llen--;
		if (llen > max_line) {
			st = mk_err_set(err, MK_ETOOBIG,
					"%s:%zu: line is longer than %zu bytes", name,
					lineno, max_line);
			goto out;
		}
		if (lineno == 1) {
			st = check_header(name, line, llen, &ncol, err);
			if (st != MK_OK)
				goto out;
			continue;
		}
		if (llen == 0) {
			st = mk_err_set(err, MK_EPARSE, "%s:%zu:ts_utc_unix: empty line",
					name, lineno);
			goto out;
		}
		st = parse_bar(name, lineno, line, llen, ncol, &b, err);
		if (st != MK_OK)
			goto out;
		if (nbars > 0 && b.ts == bars[nbars - 1].ts) {
			st = mk_err_set(err, MK_EPARSE,
					"%s:%zu:ts_utc_unix: duplicate time %lld (also on the previous line)",
					name, lineno, (long long)b.ts);
			goto out;
		}
		if (nbars > 0 && b.ts < bars[nbars - 1].ts) {
			st = mk_err_set(err, MK_EPARSE,
					"%s:%zu:ts_utc_unix: time %lld is before the previous bar's %lld (rows must be sorted)",
					name, lineno, (long long)b.ts,
					(long long)bars[nbars - 1].ts);
			goto out;
		}
		if (nbars > 0 && b.ts - bars[nbars - 1].ts < HISTORY_BAR_S) {
			st = mk_err_set(err, MK_EPARSE,
					"%s:%zu:ts_utc_unix: bar at %lld overlaps the previous one at %lld (bars are %d s)",
					name, lineno, (long long)b.ts,
					(long long)bars[nbars - 1].ts, HISTORY_BAR_S);
			goto out;
		}
		if (nbars == max_rows) {
			st = mk_err_set(err, MK_ETOOBIG, "%s:%zu: more than %zu rows",
					name, lineno, max_rows);
			goto out;
		}
		if (nbars == capbars) {
			size_t ncap = capbars == 0 ? 256 : capbars * 2;
			struct history_bar *nb;

			if (ncap > max_rows)
				ncap = max_rows;
			nb = realloc(bars, ncap * sizeof(*nb));
			if (nb == NULL) {
				st = mk_err_set(err, MK_ENOMEM, "%s: out of memory", name);
				goto out;
			}
			bars = nb;
			capbars = ncap;
		}
		bars[nbars++] = b;
	}
	if (lineno == 0) {
		st = mk_err_set(err, MK_EPARSE, "%s:1: empty file (no header)", name);
		goto out;
	}
	if (nbars == 0) {
		st = mk_err_set(err, MK_EPARSE, "%s:2: no bars after the header", name);
		goto out;
	}
	s = calloc(1, sizeof(*s));
	if (s == NULL || (s->name = strdup(name)) == NULL) {
		st = mk_err_set(err, MK_ENOMEM, "%s: out of memory", name);
		goto out;
	}
	s->bars = bars;
	s->nbars = nbars;
	s->has_trades = ncol == NCOL_MAX;
	for (size_t i = 0; i < nbars; i++)
		if (max_scale(&bars[i]) > s->scale)
			s->scale = max_scale(&bars[i]);
	bars = NULL;
	*out = s;
	s = NULL;
out:
	free(bars);
	history_destroy(s);
	return st;
}

enum mk_status
history_load(const char *path, const struct history_limits *lim,
	     struct history_series **out, struct mk_err *err)
{
	size_t max_line = HISTORY_MAX_LINE_DEFAULT;
	size_t max_rows = HISTORY_MAX_ROWS_DEFAULT;
	size_t cap_bytes, len = 0, cap = 0;
	char *buf = NULL;
	FILE *fp = NULL;
	enum mk_status st = MK_OK;

	if (lim != NULL && lim->max_line != 0)
		max_line = lim->max_line;
	if (lim != NULL && lim->max_rows != 0)
		max_rows = lim->max_rows;
	/* Each line is at most max_line bytes plus "\r\n". */
	cap_bytes = (max_line + 2) * (max_rows + 1);

	fp = fopen(path, "rb");
	if (fp == NULL) {
		int e = errno;

		st = mk_err_set(err, MK_EIO, "%s: %s", path, strerror(e));
		if (err != NULL)
			err->sys_errno = e;
		goto out;
	}
	for (;;) {
		size_t got;

		if (len == cap) {
			size_t ncap = cap == 0 ? 65536 : cap * 2;
			char *nb;

			if (cap >= cap_bytes + 1) {
				st = mk_err_set(err, MK_ETOOBIG,
						"%s: larger than %zu bytes", path,
						cap_bytes);
				goto out;
			}
			if (ncap > cap_bytes + 1)
				ncap = cap_bytes + 1;
			nb = realloc(buf, ncap);
			if (nb == NULL) {
				st = mk_err_set(err, MK_ENOMEM, "%s: out of memory", path);
				goto out;
			}
			buf = nb;
			cap = ncap;
		}
		got = fread(buf + len, 1, cap - len, fp);
		len += got;
		if (got == 0)
			break;
	}
	if (ferror(fp)) {
		st = mk_err_set(err, MK_EIO, "%s: read error", path);
		goto out;
	}
	if (len > cap_bytes) {
		st = mk_err_set(err, MK_ETOOBIG, "%s: larger than %zu bytes", path,
				cap_bytes);
		goto out;
	}
	st = history_parse(path, buf, len, lim, out, err);
out:
	if (fp != NULL)
		fclose(fp);
	free(buf);
	return st;
}

void
history_destroy(struct history_series *s)
{
	if (s == NULL)
		return;
	free(s->name);
	free(s->bars);
	free(s);
}

void
history_bar_path(const struct history_bar *b, struct mk_dec out[4])
{
	bool up = mk_dec_cmp(b->close, b->open) >= 0;

	out[0] = b->open;
	out[1] = up ? b->low : b->high;
	out[2] = up ? b->high : b->low;
	out[3] = b->close;
}

size_t
history_find(const struct history_series *s, int64_t t)
{
	size_t lo = 0, hi = s->nbars;

	if (s->nbars == 0 || t < s->bars[0].ts)
		return (size_t)-1;
	/* Invariant: bars[lo].ts <= t, and bars[hi].ts > t when hi < n. */
	while (hi - lo > 1) {
		size_t mid = lo + (hi - lo) / 2;

		if (s->bars[mid].ts <= t)
			lo = mid;
		else
			hi = mid;
	}
	return lo;
}

/* floor(a / b) for b > 0. */
static int64_t
floordiv(int64_t a, int64_t b)
{
	int64_t q = a / b;

	return (a % b != 0 && a < 0) ? q - 1 : q;
}

enum mk_status
history_price_at(const struct history_series *s, int64_t t_ms, int scale,
		 struct mk_dec *out)
{
	const int64_t leg_ms = HISTORY_BAR_S * 1000 / 3;
	const struct history_bar *b;
	struct mk_dec path[4], a, diff, step, r;
	int64_t off_ms;
	size_t i;
	enum mk_status st;

	if (scale < 0 || scale > MK_DEC_MAX_SCALE)
		return MK_EINVAL;
	i = history_find(s, floordiv(t_ms, 1000));
	if (i == (size_t)-1)
		return mk_dec_rescale(s->bars[0].open, scale, MK_ROUND_HALF_EVEN, out);
	b = &s->bars[i];
	off_ms = t_ms - b->ts * 1000;
	if (off_ms >= (int64_t)HISTORY_BAR_S * 1000)
		return mk_dec_rescale(b->close, scale, MK_ROUND_HALF_EVEN, out);
	history_bar_path(b, path);
	a = path[off_ms / leg_ms];
	/* p = a + (next - a) * (off % leg) / leg, computed exactly, then
	 * rounded once: (off % leg) / leg == (off % leg) * 5 / 10^5 exactly
	 * (leg = 20 s). */
	st = mk_dec_sub(path[off_ms / leg_ms + 1], a, &diff);
	if (st != MK_OK)
		return st;
	if (diff.scale + 5 > MK_DEC_MAX_SCALE)
		return MK_ERANGE;
	st = mk_dec_mul(diff, MK_DEC((off_ms % leg_ms) * 5, 5), diff.scale + 5,
			MK_ROUND_EXACT, &step);
	if (st != MK_OK)
		return st;
	st = mk_dec_add(a, step, &r);
	if (st != MK_OK)
		return st;
	return mk_dec_rescale(r, scale, MK_ROUND_HALF_EVEN, out);
}
