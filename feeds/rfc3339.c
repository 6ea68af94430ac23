/*
 * rfc3339.c - RFC 3339 timestamps (see rfc3339.h).
 *
 * Calendar arithmetic on the proleptic Gregorian calendar with March-based
 * years, so that the leap day is the last day of a year and a 400-year era
 * has exactly 146097 days.
 */
#include "config.h"

#include "feeds/rfc3339.h"

#include <stdbool.h>
#include <stdio.h>

#define DAYS_PER_ERA 146097       /* days in 400 Gregorian years */
#define EPOCH_SHIFT 719468        /* days from 0000-03-01 to 1970-01-01 */
#define MS_PER_DAY INT64_C(86400000)

static bool
is_leap(int64_t y)
{
	return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static int
month_days(int64_t y, int m)
{
	static const int len[12] = { 31, 28, 31, 30, 31, 30,
				     31, 31, 30, 31, 30, 31 };

	return m == 2 && is_leap(y) ? 29 : len[m - 1];
}

/* Days since 1970-01-01 of y-m-d; assumes y >= 0 and a valid date. */
static int64_t
days_from_civil(int64_t y, int m, int d)
{
	int64_t era, yoe, doy, doe;

	if (m <= 2)
		y -= 1;
	era = y / 400;
	yoe = y - era * 400;                                 /* 0..399 */
	doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1; /* 0..365 */
	doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;         /* 0..146096 */
	return era * DAYS_PER_ERA + doe - EPOCH_SHIFT;
}

/* Inverse of days_from_civil for days >= 0. */
static void
civil_from_days(int64_t z, int64_t *y, int *m, int *d)
{
	int64_t era, doe, yoe, doy, mp;

	z += EPOCH_SHIFT;
	era = z / DAYS_PER_ERA;
	doe = z - era * DAYS_PER_ERA;
	yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	mp = (5 * doy + 2) / 153;
	*d = (int)(doy - (153 * mp + 2) / 5 + 1);
	*m = (int)(mp < 10 ? mp + 3 : mp - 9);
	*y = yoe + era * 400 + (*m <= 2);
}

/* Reads exactly n digits at s[*i]; false when they are not all digits. */
static bool
digits(const char *s, size_t len, size_t *i, int n, int *out)
{
	int v = 0;

	if (*i + (size_t)n > len)
		return false;
	for (int k = 0; k < n; k++) {
		char c = s[*i + (size_t)k];

		if (c < '0' || c > '9')
			return false;
		v = v * 10 + (c - '0');
	}
	*i += (size_t)n;
	*out = v;
	return true;
}

static bool
expect(const char *s, size_t len, size_t *i, char c)
{
	if (*i >= len || s[*i] != c)
		return false;
	(*i)++;
	return true;
}

static enum mk_status
bad(struct mk_err *err, const char *s, size_t len, const char *why)
{
	int shown = len > 40 ? 40 : (int)len;

	return mk_err_set(err, MK_EPARSE, "not an RFC 3339 time \"%.*s%s\": %s",
			  shown, s, len > 40 ? "..." : "", why);
}

enum mk_status
feed_rfc3339_parse_ms(const char *s, size_t len, int64_t *ms,
		      struct mk_err *err)
{
	size_t i = 0;
	int y, mo, d, h, mi, sec, frac_ms = 0, off_min = 0;
	int64_t t;

	for (size_t k = 0; k < len; k++)
		if ((unsigned char)s[k] < 0x20 || (unsigned char)s[k] >= 0x7f ||
		    s[k] == '"')
			return mk_err_set(err, MK_EPARSE,
					  "not an RFC 3339 time: unexpected "
					  "byte 0x%02x at offset %zu",
					  (unsigned char)s[k], k);
	if (!digits(s, len, &i, 4, &y) || !expect(s, len, &i, '-') ||
	    !digits(s, len, &i, 2, &mo) || !expect(s, len, &i, '-') ||
	    !digits(s, len, &i, 2, &d))
		return bad(err, s, len, "expected YYYY-MM-DD");
	if (i >= len || (s[i] != 'T' && s[i] != 't' && s[i] != ' '))
		return bad(err, s, len, "expected 'T' after the date");
	i++;
	if (!digits(s, len, &i, 2, &h) || !expect(s, len, &i, ':') ||
	    !digits(s, len, &i, 2, &mi) || !expect(s, len, &i, ':') ||
	    !digits(s, len, &i, 2, &sec))
		return bad(err, s, len, "expected HH:MM:SS");
	if (i < len && s[i] == '.') {
		int nd = 0;

		i++;
		while (i < len && s[i] >= '0' && s[i] <= '9') {
			if (nd < 3)
				frac_ms = frac_ms * 10 + (s[i] - '0');
			nd++;
			i++;
		}
		if (nd == 0)
			return bad(err, s, len, "no digits after '.'");
		for (; nd < 3; nd++)
			frac_ms *= 10;
	}
	if (i < len && (s[i] == 'Z' || s[i] == 'z')) {
		i++;
	} else if (i < len && (s[i] == '+' || s[i] == '-')) {
		int oh, om;
		int sign = s[i] == '-' ? -1 : 1;

		i++;
		if (!digits(s, len, &i, 2, &oh) || !expect(s, len, &i, ':') ||
		    !digits(s, len, &i, 2, &om) || oh > 23 || om > 59)
			return bad(err, s, len, "bad UTC offset");
		off_min = sign * (oh * 60 + om);
	} else {
		return bad(err, s, len, "expected 'Z' or a UTC offset");
	}
	if (i != len)
		return bad(err, s, len, "text after the time");
	if (y < 1970)
		return bad(err, s, len, "before 1970");
	if (mo < 1 || mo > 12 || d < 1 || d > month_days(y, mo))
		return bad(err, s, len, "no such date");
	/* 60 is a leap second; it counts as the next second. */
	if (h > 23 || mi > 59 || sec > 60)
		return bad(err, s, len, "no such time of day");
	t = days_from_civil(y, mo, d) * MS_PER_DAY +
	    ((int64_t)h * 3600 + mi * 60 + sec - (int64_t)off_min * 60) * 1000 +
	    frac_ms;
	if (t < 0 || t > FEED_TS_MAX_MS)
		return bad(err, s, len, "before 1970 or after 9999");
	*ms = t;
	return MK_OK;
}

size_t
feed_rfc3339_format_ms(int64_t ms, char *buf, size_t cap)
{
	int64_t y, days = ms / MS_PER_DAY, rem = ms % MS_PER_DAY;
	int m, d, n;

	if (ms < 0 || ms > FEED_TS_MAX_MS || cap < FEED_RFC3339_STRLEN)
		return 0;
	civil_from_days(days, &y, &m, &d);
	n = snprintf(buf, cap, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", (int)y,
		     m, d, (int)(rem / 3600000), (int)(rem / 60000 % 60),
		     (int)(rem / 1000 % 60), (int)(rem % 1000));
	return n > 0 ? (size_t)n : 0;
}
