#include "config.h"

#include "feeds/backoff.h"

#include <string.h>

void
feed_rng_seed(struct feed_rng *r, uint64_t seed)
{
	r->state = seed;
}

uint64_t
feed_rng_next(struct feed_rng *r)
{
	uint64_t z;

	r->state += UINT64_C(0x9e3779b97f4a7c15);
	z = r->state;
	z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
	z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
	return z ^ (z >> 31);
}

int64_t
feed_backoff_ceiling(int64_t interval_ms, int64_t max_backoff_ms,
		     unsigned failures)
{
	int64_t b;
	unsigned i;

	if (failures == 0)
		return 0;
	if (interval_ms <= 0)
		interval_ms = 1;
	if (max_backoff_ms <= 0)
		max_backoff_ms = 1;
	b = interval_ms;
	/* Double failures-1 times, stopping at the cap: b never exceeds
	 * max(interval, max_backoff) * 2, far below INT64_MAX for any
	 * millisecond value a config can hold (both are checked < 2^53). */
	for (i = 1; i < failures && b < max_backoff_ms; i++)
		b *= 2;
	return b < max_backoff_ms ? b : max_backoff_ms;
}

int64_t
feed_backoff_delay(int64_t interval_ms, int64_t max_backoff_ms,
		   unsigned failures, struct feed_rng *r)
{
	int64_t b, half;
	uint64_t span;

	b = feed_backoff_ceiling(interval_ms, max_backoff_ms, failures);
	if (b == 0)
		return 0;
	half = b / 2;
	span = (uint64_t)half + 1;
	return b - half + (int64_t)(feed_rng_next(r) % span);
}

/* ---- Retry-After ---- */

struct cursor {
	const char *p, *end;
};

static int
eat_char(struct cursor *c, char ch)
{
	if (c->p < c->end && *c->p == ch) {
		c->p++;
		return 1;
	}
	return 0;
}

/* Reads exactly n digits (n <= 9). */
static int
eat_digits(struct cursor *c, int n, int *out)
{
	int v = 0, i;

	if (c->end - c->p < n)
		return 0;
	for (i = 0; i < n; i++) {
		if (c->p[i] < '0' || c->p[i] > '9')
			return 0;
		v = v * 10 + (c->p[i] - '0');
	}
	c->p += n;
	*out = v;
	return 1;
}

/* Matches one of `names` (case-sensitive, as the grammar says) and
 * returns its index, or -1. */
static int
eat_name(struct cursor *c, const char *const *names, int n)
{
	int i;
	size_t l;

	for (i = 0; i < n; i++) {
		l = strlen(names[i]);
		if ((size_t)(c->end - c->p) >= l &&
		    memcmp(c->p, names[i], l) == 0) {
			c->p += l;
			return i;
		}
	}
	return -1;
}

static const char *const wkday_short[] = {
	"Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun",
};
/* Tried before the short names: "Sunday" starts with "Sun". */
static const char *const wkday_long[] = {
	"Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday",
	"Sunday",
};
static const char *const gmt_name[] = { "GMT" };
static const char *const month_names[] = {
	"Jan", "Feb", "Mar", "Apr", "May", "Jun",
	"Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
};

static int
is_leap(int y)
{
	return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static int
days_in_month(int y, int m)
{
	static const int dim[12] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31,
				     30, 31 };

	return m == 2 && is_leap(y) ? 29 : dim[m - 1];
}

/* Days from 1970-01-01 to y-m-d (proleptic Gregorian), m in 1..12. */
static int64_t
days_from_epoch(int y, int m, int d)
{
	int64_t days, py = y - 1;
	int i;

	/* Years are bounded to 1000..9999 by the caller, so every division
	 * below is of a positive number. Leap days before year y, minus
	 * those before 1970, plus 365 a year; then the months of year y. */
	days = 365 * (int64_t)(y - 1970) + (py / 4 - py / 100 + py / 400) -
	       (1969 / 4 - 1969 / 100 + 1969 / 400);
	for (i = 1; i < m; i++)
		days += days_in_month(y, i);
	return days + d - 1;
}

/* The calendar year (UTC) of Unix time ms; 1970 for earlier times. */
static int
year_of(int64_t ms)
{
	int64_t days = ms > 0 ? ms / 86400000 : 0;
	int y;

	if (days > 2932896)         /* 9999-12-31 */
		return 9999;
	y = 1970 + (int)(days / 366);  /* never past the answer */
	while (days_from_epoch(y + 1, 1, 1) <= days)
		y++;
	return y;
}

static int
eat_time(struct cursor *c, int *h, int *mi, int *s)
{
	return eat_digits(c, 2, h) && eat_char(c, ':') &&
	       eat_digits(c, 2, mi) && eat_char(c, ':') &&
	       eat_digits(c, 2, s);
}

/* Parses the three HTTP-date forms into Unix ms. */
static enum mk_status
parse_http_date(struct cursor *c, int64_t now_wall_ms, int64_t *out_ms,
		struct mk_err *err)
{
	int y = 0, mo, d = 0, h = 0, mi = 0, s = 0, yy;
	struct cursor save = *c;

	if (eat_name(c, wkday_long, 7) >= 0 && eat_char(c, ',')) {
		/* rfc850-date: Sunday, 06-Nov-94 08:49:37 GMT */
		if (!eat_char(c, ' ') || !eat_digits(c, 2, &d) ||
		    !eat_char(c, '-') ||
		    (mo = eat_name(c, month_names, 12)) < 0 ||
		    !eat_char(c, '-') || !eat_digits(c, 2, &yy) ||
		    !eat_char(c, ' ') || !eat_time(c, &h, &mi, &s) ||
		    !eat_char(c, ' ') || eat_name(c, gmt_name, 1) < 0)
			goto bad;
		/* RFC 9110: a two-digit year more than 50 years in the future
		 * means the most recent past year with those digits. */
		y = 2000 + yy;
		if (y > year_of(now_wall_ms) + 50)
			y -= 100;
	} else {
		*c = save;
		if (eat_name(c, wkday_short, 7) < 0)
			goto bad;
		if (eat_char(c, ',')) {
			/* IMF-fixdate: Sun, 06 Nov 1994 08:49:37 GMT */
			if (!eat_char(c, ' ') || !eat_digits(c, 2, &d) ||
			    !eat_char(c, ' ') ||
			    (mo = eat_name(c, month_names, 12)) < 0 ||
			    !eat_char(c, ' ') || !eat_digits(c, 4, &y) ||
			    !eat_char(c, ' ') || !eat_time(c, &h, &mi, &s) ||
			    !eat_char(c, ' ') ||
			    eat_name(c, gmt_name, 1) < 0)
				goto bad;
		} else {
			/* asctime-date: Sun Nov  6 08:49:37 1994 */
			if (!eat_char(c, ' ') ||
			    (mo = eat_name(c, month_names, 12)) < 0 ||
			    !eat_char(c, ' '))
				goto bad;
			if (eat_char(c, ' ')) {
				if (!eat_digits(c, 1, &d))
					goto bad;
			} else if (!eat_digits(c, 2, &d)) {
				goto bad;
			}
			if (!eat_char(c, ' ') || !eat_time(c, &h, &mi, &s) ||
			    !eat_char(c, ' ') || !eat_digits(c, 4, &y))
				goto bad;
		}
	}
	if (c->p != c->end)
		goto bad;
	mo += 1;
	/* 60 seconds is a leap second; it is read as the next minute. */
	if (y < 1000 || d < 1 || d > days_in_month(y, mo) || h > 23 ||
	    mi > 59 || s > 60)
		return mk_err_set(err, MK_EPARSE,
				  "Retry-After: date out of range");
	*out_ms = ((days_from_epoch(y, mo, d) * 24 + h) * 60 + mi) * 60000 +
		  (int64_t)s * 1000;
	return MK_OK;
bad:
	return mk_err_set(err, MK_EPARSE, "Retry-After: neither "
			  "delay-seconds nor an HTTP-date");
}

enum mk_status
feed_retry_after_parse(const char *s, size_t len, int64_t now_wall_ms,
		       int64_t *delay_ms, struct mk_err *err)
{
	struct cursor c = { s, s + len };
	int64_t v = 0, at_ms = 0;
	enum mk_status st;

	while (c.p < c.end && (*c.p == ' ' || *c.p == '\t'))
		c.p++;
	while (c.end > c.p && (c.end[-1] == ' ' || c.end[-1] == '\t'))
		c.end--;
	if (c.p == c.end)
		return mk_err_set(err, MK_EPARSE, "Retry-After: empty value");
	if (*c.p >= '0' && *c.p <= '9') {
		for (; c.p < c.end; c.p++) {
			if (*c.p < '0' || *c.p > '9')
				return mk_err_set(
					err, MK_EPARSE,
					"Retry-After: '%.*s' is not a number "
					"of seconds",
					(int)(len > 64 ? 64 : len), s);
			/* Saturate instead of overflowing. */
			if (v <= FEED_RETRY_AFTER_MAX_MS / 1000)
				v = v * 10 + (*c.p - '0');
		}
		v = v > FEED_RETRY_AFTER_MAX_MS / 1000 ?
			    FEED_RETRY_AFTER_MAX_MS : v * 1000;
		*delay_ms = v;
		return MK_OK;
	}
	st = parse_http_date(&c, now_wall_ms, &at_ms, err);
	if (st != MK_OK)
		return st;
	v = at_ms - now_wall_ms;
	if (v < 0)
		v = 0;
	if (v > FEED_RETRY_AFTER_MAX_MS)
		v = FEED_RETRY_AFTER_MAX_MS;
	*delay_ms = v;
	return MK_OK;
}
