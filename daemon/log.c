/*
 * log.c - structured log lines to stderr.
 */
#include "config.h"

#include "daemon/log.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "feeds/health.h"
#include "feeds/rfc3339.h"

static atomic_int log_level = CFG_LOG_INFO;
static atomic_int log_format = CFG_LOG_KV;
static pthread_mutex_t log_mu = PTHREAD_MUTEX_INITIALIZER;

/* Room kept at the end of a line for the closing text. */
#define TAIL_ROOM 24

void
md_log_configure(enum cfg_log_level level, enum cfg_log_format format)
{
	atomic_store(&log_level, (int)level);
	atomic_store(&log_format, (int)format);
}

bool
md_log_enabled(enum cfg_log_level level)
{
	return (int)level >= atomic_load(&log_level);
}

static void
put(struct md_log_line *l, const char *s, size_t n)
{
	if (l->cut)
		return;
	if (l->len + n + TAIL_ROOM > sizeof l->buf) {
		l->cut = true;
		return;
	}
	memcpy(l->buf + l->len, s, n);
	l->len += n;
}

static void
puts_(struct md_log_line *l, const char *s)
{
	put(l, s, strlen(s));
}

/* Whether a kv value must be quoted. */
static bool
needs_quotes(const char *v)
{
	if (*v == '\0')
		return true;
	for (; *v != '\0'; v++)
		if (*v == ' ' || *v == '"' || *v == '=' || *v == '\\' ||
		    (unsigned char)*v < 0x20 || *v == 0x7f)
			return true;
	return false;
}

/* The value escaped for a kv quoted value or a JSON string (the same
 * rules suffice: \" \\ \n \r \t and \u00XX for other controls). Bytes
 * >= 0x80 pass through. */
static void
put_escaped(struct md_log_line *l, const char *v)
{
	char e[8];

	for (; *v != '\0' && !l->cut; v++) {
		unsigned char c = (unsigned char)*v;

		switch (c) {
		case '"': puts_(l, "\\\""); break;
		case '\\': puts_(l, "\\\\"); break;
		case '\n': puts_(l, "\\n"); break;
		case '\r': puts_(l, "\\r"); break;
		case '\t': puts_(l, "\\t"); break;
		default:
			if (c < 0x20 || c == 0x7f) {
				snprintf(e, sizeof e, "\\u%04x", c);
				puts_(l, e);
			} else {
				put(l, v, 1);
			}
		}
	}
}

static void
put_key(struct md_log_line *l, const char *key)
{
	if (l->json) {
		puts_(l, ",\"");
		put_escaped(l, key);
		puts_(l, "\":");
	} else {
		puts_(l, " ");
		puts_(l, key);
		puts_(l, "=");
	}
}

/* key and an unquoted value (a number or a boolean), whole or not at
 * all. */
static void
put_field(struct md_log_line *l, const char *key, const char *raw)
{
	size_t mark = l->len;

	if (l->cut)
		return;
	put_key(l, key);
	puts_(l, raw);
	if (l->cut)
		l->len = mark;
}

void
md_log_begin(struct md_log_line *l, enum cfg_log_level level,
	     const char *event)
{
	char ts[FEED_RFC3339_STRLEN];

	l->on = md_log_enabled(level);
	l->len = 0;
	l->cut = false;
	if (!l->on)
		return;
	l->json = atomic_load(&log_format) == CFG_LOG_JSON;
	if (feed_rfc3339_format_ms(feed_now_wall_ms(), ts, sizeof ts) == 0)
		snprintf(ts, sizeof ts, "1970-01-01T00:00:00.000Z");
	if (l->json) {
		puts_(l, "{\"ts\":\"");
		puts_(l, ts);
		puts_(l, "\",\"level\":\"");
		puts_(l, cfg_log_level_name(level));
		puts_(l, "\",\"event\":\"");
		put_escaped(l, event);
		puts_(l, "\"");
	} else {
		puts_(l, "ts=");
		puts_(l, ts);
		puts_(l, " level=");
		puts_(l, cfg_log_level_name(level));
		puts_(l, " event=");
		puts_(l, event);
	}
}

void
md_log_str(struct md_log_line *l, const char *key, const char *value)
{
	size_t mark = l->len;

	if (!l->on || l->cut)
		return;
	if (value == NULL)
		value = "";
	put_key(l, key);
	if (l->json || needs_quotes(value)) {
		puts_(l, "\"");
		put_escaped(l, value);
		puts_(l, "\"");
	} else {
		puts_(l, value);
	}
	if (l->cut)
		l->len = mark; /* never half a field */
}

void
md_log_int(struct md_log_line *l, const char *key, int64_t value)
{
	char num[24];

	if (!l->on)
		return;
	snprintf(num, sizeof num, "%" PRId64, value);
	put_field(l, key, num);
}

void
md_log_uint(struct md_log_line *l, const char *key, uint64_t value)
{
	char num[24];

	if (!l->on)
		return;
	snprintf(num, sizeof num, "%" PRIu64, value);
	put_field(l, key, num);
}

void
md_log_bool(struct md_log_line *l, const char *key, bool value)
{
	if (!l->on)
		return;
	put_field(l, key, value ? "true" : "false");
}

void
md_log_fmt(struct md_log_line *l, const char *key, const char *fmt, ...)
{
	char text[1024];
	va_list ap;

	if (!l->on)
		return;
	va_start(ap, fmt);
	vsnprintf(text, sizeof text, fmt, ap);
	va_end(ap);
	md_log_str(l, key, text);
}

void
md_log_end(struct md_log_line *l)
{
	size_t off = 0;
	bool was_cut = l->cut;

	if (!l->on)
		return;
	/* TAIL_ROOM was kept for this. */
	l->cut = false;
	if (l->json)
		puts_(l, was_cut ? ",\"truncated\":true}\n" : "}\n");
	else
		puts_(l, was_cut ? " ...\n" : "\n");
	pthread_mutex_lock(&log_mu);
	while (off < l->len) {
		ssize_t n = write(STDERR_FILENO, l->buf + off, l->len - off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		off += (size_t)n;
	}
	pthread_mutex_unlock(&log_mu);
	l->on = false;
}

void
md_log_msg(enum cfg_log_level level, const char *event, const char *fmt, ...)
{
	struct md_log_line l;
	char text[1024];
	va_list ap;

	if (!md_log_enabled(level))
		return;
	va_start(ap, fmt);
	vsnprintf(text, sizeof text, fmt, ap);
	va_end(ap);
	md_log_begin(&l, level, event);
	md_log_str(&l, "msg", text);
	md_log_end(&l);
}
