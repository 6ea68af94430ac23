/*
 * adapter_json.c - the generic adapter: a URL path template and JSON
 * Pointers (RFC 6901) into the answer, from the source's "options" (the
 * keys are documented at feed_adapter_check_options in adapter.h).
 *
 * A pointer that finds nothing leaves its field absent; when none of the
 * price pointers finds anything the answer is not what the options
 * describe: MK_ENOTFOUND when a pointer names the market ({market}, so
 * the market is probably missing from the answer), else MK_EPARSE.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aggregator/json_dec.h"
#include "feeds/venue_json.h"

#define PTR_MAX 256             /* longest pointer or template we accept */
#define KEY_MAX 1024            /* longest object key after substitution */
#define PLACEHOLDER "{market}"
#define PLACEHOLDER_LEN (sizeof(PLACEHOLDER) - 1)

enum field { F_LAST, F_BID, F_ASK, F_CONF, F_TS, F_ERROR, F_COUNT };

struct feed_adapter_opts {
	char *path;                     /* URL path template */
	char *ptr[F_COUNT];             /* pointers, NULL when not given */
	enum vj_ts_unit unit;
};

static const char *const known_keys =
	"path, price, last, bid, ask, conf, timestamp, timestamp_unit, error";

static void
json_opts_destroy(struct feed_adapter_opts *o)
{
	if (o == NULL)
		return;
	free(o->path);
	for (int i = 0; i < F_COUNT; i++)
		free(o->ptr[i]);
	free(o);
}

/* Checks the text of a template or pointer: printable ASCII, no spaces,
 * braces only in {market}, and for pointers only ~0 and ~1 escapes. */
static enum mk_status
check_text(const char *key, const char *s, bool pointer, struct mk_err *err)
{
	size_t len = strlen(s);

	if (len > PTR_MAX)
		return mk_err_set(err, MK_ECONFIG, "options.%s: longer than %d "
				  "characters", key, PTR_MAX);
	if (pointer && len > 0 && s[0] != '/')
		return mk_err_set(err, MK_ECONFIG, "options.%s: a JSON Pointer "
				  "is \"\" or starts with '/', got \"%s\"",
				  key, s);
	if (!pointer && s[0] != '/' && s[0] != '?')
		return mk_err_set(err, MK_ECONFIG, "options.%s: the template "
				  "is appended to the base URL and must start "
				  "with '/' or '?', got \"%s\"", key, s);
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c == '{' && strncmp(s + i, PLACEHOLDER,
					PLACEHOLDER_LEN) == 0) {
			i += PLACEHOLDER_LEN - 1;
			continue;
		}
		if (c == '{' || c == '}')
			return mk_err_set(err, MK_ECONFIG, "options.%s: unknown "
					  "placeholder at offset %zu (only "
					  "{market} is known)", key, i);
		if (pointer && c == '~' && s[i + 1] != '0' && s[i + 1] != '1')
			return mk_err_set(err, MK_ECONFIG, "options.%s: '~' at "
					  "offset %zu must be followed by 0 or "
					  "1 (RFC 6901)", key, i);
		if (!pointer && (c <= 0x20 || c >= 0x7f || c == '#'))
			return mk_err_set(err, MK_ECONFIG, "options.%s: byte "
					  "0x%02x at offset %zu does not belong "
					  "in a URL", key, c, i);
		if (pointer && (c < 0x20 || c == 0x7f))
			return mk_err_set(err, MK_ECONFIG, "options.%s: control "
					  "character at offset %zu", key, i);
	}
	return MK_OK;
}

static enum mk_status
parse_unit(const char *s, enum vj_ts_unit *unit, struct mk_err *err)
{
	static const struct { const char *name; enum vj_ts_unit unit; } u[] = {
		{ "s", VJ_TS_S }, { "ms", VJ_TS_MS }, { "us", VJ_TS_US },
		{ "ns", VJ_TS_NS }, { "rfc3339", VJ_TS_RFC3339 },
	};

	for (size_t i = 0; i < sizeof(u) / sizeof(u[0]); i++) {
		if (strcmp(s, u[i].name) == 0) {
			*unit = u[i].unit;
			return MK_OK;
		}
	}
	return mk_err_set(err, MK_ECONFIG, "options.timestamp_unit: \"%s\" is "
			  "not one of s, ms, us, ns, rfc3339", s);
}

/* The field a pointer key fills, or -1 for "path" / "timestamp_unit",
 * or -2 for an unknown key. */
static int
field_of(const char *key)
{
	static const struct { const char *key; int field; } map[] = {
		{ "price", F_LAST }, { "last", F_LAST }, { "bid", F_BID },
		{ "ask", F_ASK }, { "conf", F_CONF }, { "timestamp", F_TS },
		{ "error", F_ERROR }, { "path", -1 }, { "timestamp_unit", -1 },
	};

	for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++)
		if (strcmp(key, map[i].key) == 0)
			return map[i].field;
	return -2;
}

static enum mk_status
json_opts_create(const json_t *options, struct feed_adapter_opts **out,
		 struct mk_err *err)
{
	struct feed_adapter_opts *o = NULL;
	const json_t *v;
	const char *key, *unit = NULL;
	enum mk_status st = MK_OK;

	*out = NULL;
	if (options == NULL || json_is_null(options))
		return mk_err_set(err, MK_ECONFIG, "options: the json adapter "
				  "needs options: \"path\" and \"price\" (or "
				  "\"bid\" and \"ask\")");
	if (!json_is_object(options))
		return mk_err_set(err, MK_ECONFIG, "options: expected an "
				  "object, got %s", mk_json_type_name(options));
	o = calloc(1, sizeof(*o));
	if (o == NULL)
		return mk_err_set(err, MK_ENOMEM, "options: out of memory");
	o->unit = VJ_TS_MS;
	json_object_foreach((json_t *)options, key, v) {
		int f = field_of(key);
		char **slot;

		if (f == -2) {
			st = mk_err_set(err, MK_ECONFIG, "options.%s: unknown "
					"key (known: %s)", key, known_keys);
			goto out;
		}
		if (!json_is_string(v)) {
			st = mk_err_set(err, MK_ECONFIG, "options.%s: expected a "
					"string, got %s", key,
					mk_json_type_name(v));
			goto out;
		}
		if (strcmp(key, "timestamp_unit") == 0) {
			unit = json_string_value(v);
			st = parse_unit(unit, &o->unit, err);
			if (st != MK_OK)
				goto out;
			continue;
		}
		if (strcmp(key, "last") == 0 && o->ptr[F_LAST] != NULL) {
			st = mk_err_set(err, MK_ECONFIG, "options.last: give "
					"\"price\" or \"last\", not both");
			goto out;
		}
		if (strcmp(key, "price") == 0 && o->ptr[F_LAST] != NULL) {
			st = mk_err_set(err, MK_ECONFIG, "options.price: give "
					"\"price\" or \"last\", not both");
			goto out;
		}
		st = check_text(key, json_string_value(v), f >= 0, err);
		if (st != MK_OK)
			goto out;
		slot = f >= 0 ? &o->ptr[f] : &o->path;
		*slot = strdup(json_string_value(v));
		if (*slot == NULL) {
			st = mk_err_set(err, MK_ENOMEM, "options: out of memory");
			goto out;
		}
	}
	if (o->path == NULL) {
		st = mk_err_set(err, MK_ECONFIG, "options.path: missing (a URL "
				"path template such as "
				"\"/v1/ticker?symbol={market}\")");
	} else if ((o->ptr[F_BID] == NULL) != (o->ptr[F_ASK] == NULL)) {
		st = mk_err_set(err, MK_ECONFIG, "options.%s: missing (\"bid\" "
				"and \"ask\" go together)",
				o->ptr[F_BID] == NULL ? "bid" : "ask");
	} else if (o->ptr[F_LAST] == NULL && o->ptr[F_BID] == NULL) {
		st = mk_err_set(err, MK_ECONFIG, "options.price: missing (give "
				"\"price\", or \"bid\" and \"ask\")");
	} else if (unit != NULL && o->ptr[F_TS] == NULL) {
		st = mk_err_set(err, MK_ECONFIG, "options.timestamp_unit: given "
				"without \"timestamp\"");
	}
out:
	if (st != MK_OK) {
		json_opts_destroy(o);
		return st;
	}
	*out = o;
	return MK_OK;
}

static enum mk_status
json_url(const struct feed_adapter_opts *o, const char *market,
	 struct vj_url *u, struct mk_err *err)
{
	const char *s = o->path;

	(void)err;
	while (*s != '\0') {
		const char *ph = strstr(s, PLACEHOLDER);
		size_t n = ph != NULL ? (size_t)(ph - s) : strlen(s);

		vj_url_putn(u, s, n);
		s += n;
		if (ph != NULL) {
			vj_url_escape(u, market);
			s += PLACEHOLDER_LEN;
		}
	}
	return MK_OK;
}

/* Decodes the reference token tok[0..len) into key: ~1 is '/', ~0 is '~',
 * {market} is the market. False when it does not fit in cap. */
static bool
token_key(const char *tok, size_t len, const char *market, char *key,
	  size_t cap)
{
	size_t o = 0, mlen = market != NULL ? strlen(market) : 0;

	for (size_t i = 0; i < len; i++) {
		if (tok[i] == '{' && len - i >= PLACEHOLDER_LEN &&
		    memcmp(tok + i, PLACEHOLDER, PLACEHOLDER_LEN) == 0) {
			if (o + mlen >= cap)
				return false;
			memcpy(key + o, market, mlen);
			o += mlen;
			i += PLACEHOLDER_LEN - 1;
			continue;
		}
		if (o + 1 >= cap)
			return false;
		if (tok[i] == '~' && i + 1 < len) {
			key[o++] = tok[i + 1] == '1' ? '/' : '~';
			i++;
		} else {
			key[o++] = tok[i];
		}
	}
	key[o] = '\0';
	return true;
}

/* An array index token: "0" or digits without a leading zero. */
static bool
array_index(const char *key, size_t *idx)
{
	size_t v = 0;

	if (key[0] == '\0' || (key[0] == '0' && key[1] != '\0'))
		return false;
	for (const char *c = key; *c != '\0'; c++) {
		if (*c < '0' || *c > '9' || v > (SIZE_MAX - 9) / 10)
			return false;
		v = v * 10 + (size_t)(*c - '0');
	}
	*idx = v;
	return true;
}

/* What ptr points at in root, or NULL. */
static const json_t *
resolve(const json_t *root, const char *ptr, const char *market)
{
	const json_t *v = root;
	char key[KEY_MAX];

	while (v != NULL && *ptr == '/') {
		const char *end = strchr(ptr + 1, '/');
		size_t len = end != NULL ? (size_t)(end - ptr - 1)
					 : strlen(ptr + 1);
		size_t idx;

		if (!token_key(ptr + 1, len, market, key, sizeof(key)))
			return NULL;
		if (json_is_object(v))
			v = json_object_get(v, key);
		else if (json_is_array(v) && array_index(key, &idx))
			v = json_array_get(v, idx);
		else
			v = NULL;
		ptr += 1 + len;
	}
	return v;
}

/* The answer's own error flag: anything but null, false, "", 0, "0",
 * [] and {}. */
static bool
error_set(const json_t *v)
{
	if (v == NULL || json_is_null(v) || json_is_false(v))
		return false;
	if (json_is_string(v))
		return json_string_length(v) > 0 &&
		       strcmp(json_string_value(v), "0") != 0;
	if (json_is_integer(v))
		return json_integer_value(v) != 0;
	if (json_is_real(v))
		return json_real_value(v) < 0.0 || json_real_value(v) > 0.0;
	if (json_is_array(v))
		return json_array_size(v) > 0;
	if (json_is_object(v))
		return json_object_size(v) > 0;
	return true;
}

static enum mk_status
json_parse(struct vj_parse *p, const json_t *root)
{
	const struct feed_adapter_opts *o = p->opts;
	const json_t *v[F_COUNT] = { 0 };
	struct agg_quote q = { 0 };
	bool any = false, names_market = false;
	enum mk_status st = MK_OK;

	for (int f = 0; f < F_COUNT; f++) {
		if (o->ptr[f] == NULL)
			continue;
		if (strstr(o->ptr[f], PLACEHOLDER) != NULL) {
			if (p->market == NULL)
				return vj_fail(p, MK_EINVAL, "pointer \"%s\" "
					       "needs a market", o->ptr[f]);
			if (f != F_ERROR)
				names_market = true;
		}
		v[f] = resolve(root, o->ptr[f], p->market);
	}
	if (error_set(v[F_ERROR])) {
		char text[64];

		vj_describe(v[F_ERROR], text, sizeof(text));
		return vj_fail(p, MK_EVENUE, "the answer reports an error at "
			       "\"%s\": %s", o->ptr[F_ERROR], text);
	}
	for (int f = F_LAST; f <= F_ASK; f++)
		any = any || (o->ptr[f] != NULL && v[f] != NULL);
	if (!any) {
		const char *ptr = o->ptr[F_LAST] ? o->ptr[F_LAST]
						 : o->ptr[F_BID];

		return vj_fail(p, names_market ? MK_ENOTFOUND : MK_EPARSE,
			       "the answer has nothing at \"%s\"%s", ptr,
			       names_market ? " for this market" : "");
	}
	if (o->ptr[F_BID] != NULL)
		st = vj_dec(p, v[F_BID], o->ptr[F_BID], &q.bid, &q.has_bid);
	if (st == MK_OK && o->ptr[F_ASK] != NULL)
		st = vj_dec(p, v[F_ASK], o->ptr[F_ASK], &q.ask, &q.has_ask);
	if (st == MK_OK && o->ptr[F_LAST] != NULL)
		st = vj_dec(p, v[F_LAST], o->ptr[F_LAST], &q.last,
			    &q.has_last);
	if (st == MK_OK && o->ptr[F_CONF] != NULL) {
		st = vj_dec(p, v[F_CONF], o->ptr[F_CONF], &q.conf,
			    &q.has_conf);
		if (st == MK_OK && q.has_conf && mk_dec_is_neg(q.conf))
			st = vj_fail(p, MK_EPARSE, "field \"%s\": negative",
				     o->ptr[F_CONF]);
	}
	if (st == MK_OK && o->ptr[F_TS] != NULL)
		st = vj_ts(p, v[F_TS], o->ptr[F_TS], o->unit,
			   &q.exchange_ts_ms);
	if (st != MK_OK)
		return st;
	return vj_emit(p, NULL, &q);
}

const struct feed_adapter feed_adapter_json = {
	.name = "json",
	.summary = "generic JSON: options.path template + JSON Pointers",
	.url = json_url,
	.parse = json_parse,
	.opts_create = json_opts_create,
	.opts_destroy = json_opts_destroy,
};
