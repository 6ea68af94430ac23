/*
 * config_json.c - reading typed values out of the config's JSON, each
 * failure reported once under its JSON path (see config_int.h).
 */
/* Autoconf's header; "config.h" would find this folder's config.h. */
#include "config.h"

#include "daemon/config_int.h"

#include <assert.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "aggregator/json_dec.h"

/* ---- reporting ---- */

static void vreport_at(struct cfg_ctx *c, const char *path, int line,
		       int column, const char *fmt, va_list ap)
	__attribute__((format(printf, 5, 0)));

static void
vreport_at(struct cfg_ctx *c, const char *path, int line, int column,
	   const char *fmt, va_list ap)
{
	struct cfg_error *e;

	c->nerr++;
	if (c->errs == NULL)
		return;
	c->errs->total++;
	if (c->errs->count >= CFG_MAX_ERRORS)
		return;
	e = &c->errs->e[c->errs->count++];
	snprintf(e->path, sizeof(e->path), "%s", path);
	vsnprintf(e->msg, sizeof(e->msg), fmt, ap);
	e->line = line;
	e->column = column;
}

void
cfg_report_at(struct cfg_ctx *c, const char *path, int line, int column,
	      const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vreport_at(c, path, line, column, fmt, ap);
	va_end(ap);
}

void
cfg_report(struct cfg_ctx *c, const char *path, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vreport_at(c, path, 0, 0, fmt, ap);
	va_end(ap);
}

void
cfg_oom(struct cfg_ctx *c)
{
	if (!c->oom)
		cfg_report(c, "", "out of memory");
	c->oom = true;
}

void
cfg_fit(char *dst, size_t cap, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(dst, cap, fmt, ap);
	va_end(ap);
}

const char *
cfg_show(const char *s, char *buf)
{
	size_t o = 0;

	buf[o++] = '"';
	for (; *s != '\0'; s++) {
		unsigned char ch = (unsigned char)*s;

		/* Room for the longest escape, "...", the quote and NUL. */
		if (o + 8 >= CFG_SHOW_MAX - 1) {
			memcpy(buf + o, "...", 3);
			o += 3;
			break;
		}
		if (ch == '"' || ch == '\\') {
			buf[o++] = '\\';
			buf[o++] = (char)ch;
		} else if (ch < 0x20 || ch >= 0x7f) {
			o += (size_t)snprintf(buf + o, CFG_SHOW_MAX - o,
					      "\\x%02x", ch);
		} else {
			buf[o++] = (char)ch;
		}
	}
	buf[o++] = '"';
	buf[o] = '\0';
	return buf;
}

void
cfg_path_key(char *dst, const char *parent, const char *key)
{
	char k[48];
	size_t n = 0;

	for (; key[n] != '\0' && n < sizeof(k) - 4; n++) {
		unsigned char ch = (unsigned char)key[n];

		k[n] = (ch < 0x20 || ch >= 0x7f) ? '?' : (char)ch;
	}
	if (key[n] != '\0') {
		memcpy(k + n, "...", 3);
		n += 3;
	}
	k[n] = '\0';
	if (*parent == '\0')
		cfg_fit(dst, CFG_PATH_MAX, "%s", k);
	else
		cfg_fit(dst, CFG_PATH_MAX, "%s.%s", parent, k);
}

void
cfg_path_index(char *dst, const char *parent, size_t i)
{
	cfg_fit(dst, CFG_PATH_MAX, "%s[%zu]", parent, i);
}

const char *
cfg_format_dec(struct mk_dec d, char *buf)
{
	size_t n = mk_dec_format(d, buf, MK_DEC_STRLEN);

	if (n > 0 && d.scale > 0) {
		while (buf[n - 1] == '0')
			buf[--n] = '\0';
		if (buf[n - 1] == '.')
			buf[--n] = '\0';
	}
	return buf;
}

/* ---- keys ---- */

/* Levenshtein distance, or SIZE_MAX when a string is too long to care. */
static size_t
edit_distance(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);
	size_t row[64];

	if (la >= 64 || lb >= 64)
		return SIZE_MAX;
	for (size_t j = 0; j <= lb; j++)
		row[j] = j;
	for (size_t i = 1; i <= la; i++) {
		size_t diag = row[0];

		row[0] = i;
		for (size_t j = 1; j <= lb; j++) {
			size_t up = row[j];
			size_t best = diag + (a[i - 1] != b[j - 1]);

			if (up + 1 < best)
				best = up + 1;
			if (row[j - 1] + 1 < best)
				best = row[j - 1] + 1;
			row[j] = best;
			diag = up;
		}
	}
	return row[lb];
}

/* True when key is in the NULL-terminated list; meanwhile keeps in *best
 * the closest entry within 2 edits. */
static bool
in_list(const char *key, const char *const *list, const char **best,
	size_t *best_d)
{
	for (; list != NULL && *list != NULL; list++) {
		size_t d;

		if (strcmp(key, *list) == 0)
			return true;
		d = edit_distance(key, *list);
		if (d < *best_d && d <= 2 && d < strlen(*list)) {
			*best = *list;
			*best_d = d;
		}
	}
	return false;
}

void
cfg_check_keys(struct cfg_ctx *c, const json_t *obj, const char *path,
	       const char *const *keys, const char *const *extra)
{
	const char *key;
	json_t *v;

	json_object_foreach((json_t *)obj, key, v) {
		const char *best = NULL;
		size_t best_d = SIZE_MAX;
		char p[CFG_PATH_MAX];

		if (in_list(key, keys, &best, &best_d) ||
		    in_list(key, extra, &best, &best_d))
			continue;
		cfg_path_key(p, path, key);
		if (best != NULL)
			cfg_report(c, p, "unknown key (did you mean \"%s\"?)",
				   best);
		else
			cfg_report(c, p, "unknown key");
	}
}

/* ---- typed values ---- */

bool
cfg_want_object(struct cfg_ctx *c, const json_t *v, const char *path)
{
	if (json_is_object(v))
		return true;
	cfg_report(c, path, "expected an object, got %s",
		   mk_json_type_name(v));
	return false;
}

enum cfg_got
cfg_get_int(struct cfg_ctx *c, const json_t *obj, const char *path,
	    const char *key, int64_t lo, int64_t hi, int64_t *out)
{
	json_t *v = json_object_get(obj, key);
	char p[CFG_PATH_MAX];
	json_int_t n;

	if (v == NULL)
		return CFG_ABSENT;
	cfg_path_key(p, path, key);
	if (!json_is_integer(v)) {
		cfg_report(c, p, "expected an integer, got %s",
			   mk_json_type_name(v));
		return CFG_BAD;
	}
	n = json_integer_value(v);
	if (n < lo || n > hi) {
		cfg_report(c, p, "must be between %" PRId64 " and %" PRId64
			   ", got %" PRId64, lo, hi, (int64_t)n);
		return CFG_BAD;
	}
	*out = (int64_t)n;
	return CFG_FOUND;
}

enum cfg_got
cfg_get_u32(struct cfg_ctx *c, const json_t *obj, const char *path,
	    const char *key, int64_t lo, int64_t hi, uint32_t *out)
{
	int64_t v;
	enum cfg_got g;

	assert(lo >= 0 && hi <= UINT32_MAX);
	g = cfg_get_int(c, obj, path, key, lo, hi, &v);
	if (g == CFG_FOUND)
		*out = (uint32_t)v;
	return g;
}

enum cfg_got
cfg_get_size(struct cfg_ctx *c, const json_t *obj, const char *path,
	     const char *key, int64_t lo, int64_t hi, size_t *out)
{
	int64_t v;
	enum cfg_got g;

	assert(lo >= 0 && (uint64_t)hi <= SIZE_MAX);
	g = cfg_get_int(c, obj, path, key, lo, hi, &v);
	if (g == CFG_FOUND)
		*out = (size_t)v;
	return g;
}

enum cfg_got
cfg_get_str(struct cfg_ctx *c, const json_t *obj, const char *path,
	    const char *key, const char **out)
{
	json_t *v = json_object_get(obj, key);
	char p[CFG_PATH_MAX];

	if (v == NULL)
		return CFG_ABSENT;
	cfg_path_key(p, path, key);
	if (!json_is_string(v)) {
		cfg_report(c, p, "expected a string, got %s",
			   mk_json_type_name(v));
		return CFG_BAD;
	}
	if (json_string_length(v) == 0) {
		cfg_report(c, p, "must not be empty");
		return CFG_BAD;
	}
	if (strlen(json_string_value(v)) != json_string_length(v)) {
		cfg_report(c, p, "must not contain NUL characters");
		return CFG_BAD;
	}
	*out = json_string_value(v);
	return CFG_FOUND;
}

enum cfg_got
cfg_get_required(struct cfg_ctx *c, const json_t *obj, const char *path,
		 const char *key, const char **out)
{
	enum cfg_got g = cfg_get_str(c, obj, path, key, out);
	char p[CFG_PATH_MAX];

	if (g == CFG_ABSENT) {
		cfg_path_key(p, path, key);
		cfg_report(c, p, "required");
		return CFG_BAD;
	}
	return g;
}

enum cfg_got
cfg_get_bool(struct cfg_ctx *c, const json_t *obj, const char *path,
	     const char *key, bool *out)
{
	json_t *v = json_object_get(obj, key);
	char p[CFG_PATH_MAX];

	if (v == NULL)
		return CFG_ABSENT;
	if (!json_is_boolean(v)) {
		cfg_path_key(p, path, key);
		cfg_report(c, p, "expected true or false, got %s",
			   mk_json_type_name(v));
		return CFG_BAD;
	}
	*out = json_is_true(v);
	return CFG_FOUND;
}

enum cfg_got
cfg_get_enum(struct cfg_ctx *c, const json_t *obj, const char *path,
	     const char *key, const char *const *names, size_t n, int *out)
{
	const char *s;
	enum cfg_got g = cfg_get_str(c, obj, path, key, &s);
	char p[CFG_PATH_MAX], shown[CFG_SHOW_MAX], list[128];
	size_t used = 0;

	if (g != CFG_FOUND)
		return g;
	for (size_t i = 0; i < n; i++) {
		if (strcmp(s, names[i]) == 0) {
			*out = (int)i;
			return CFG_FOUND;
		}
	}
	list[0] = '\0';
	for (size_t i = 0; i < n && used < sizeof(list); i++)
		used += (size_t)snprintf(list + used, sizeof(list) - used,
					 "%s\"%s\"", i ? ", " : "", names[i]);
	cfg_path_key(p, path, key);
	cfg_report(c, p, "expected one of %s, got %s", list,
		   cfg_show(s, shown));
	return CFG_BAD;
}

enum cfg_got
cfg_get_dec(struct cfg_ctx *c, const json_t *obj, const char *path,
	    const char *key, struct mk_dec *out)
{
	json_t *v = json_object_get(obj, key);
	char p[CFG_PATH_MAX];
	struct mk_err err;

	if (v == NULL)
		return CFG_ABSENT;
	if (mk_json_dec(v, out, &err) != MK_OK) {
		cfg_path_key(p, path, key);
		cfg_report(c, p, "%s", err.msg);
		return CFG_BAD;
	}
	return CFG_FOUND;
}

enum cfg_got
cfg_get_weight(struct cfg_ctx *c, const json_t *obj, const char *path,
	       const char *key, uint32_t *out)
{
	struct mk_dec d, e4;
	char p[CFG_PATH_MAX], txt[MK_DEC_STRLEN];
	enum cfg_got g = cfg_get_dec(c, obj, path, key, &d);

	if (g != CFG_FOUND)
		return g;
	cfg_path_key(p, path, key);
	cfg_format_dec(d, txt);
	if (!mk_dec_is_pos(d)) {
		cfg_report(c, p, "must be positive, got %s", txt);
		return CFG_BAD;
	}
	if (mk_dec_cmp(d, mk_dec_from_int(CFG_WEIGHT_MAX)) > 0) {
		cfg_report(c, p, "must be at most %d, got %s", CFG_WEIGHT_MAX,
			   txt);
		return CFG_BAD;
	}
	if (mk_dec_rescale(d, 4, MK_ROUND_EXACT, &e4) != MK_OK) {
		cfg_report(c, p, "at most 4 fraction digits, got %s", txt);
		return CFG_BAD;
	}
	/* 0 < e4.m <= CFG_WEIGHT_MAX * 10^4 = 10^9 < UINT32_MAX. */
	*out = (uint32_t)e4.m;
	return CFG_FOUND;
}
