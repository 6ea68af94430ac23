/*
 * config_int.h - private to daemon/config*.c: the loader's walk state,
 * error reporting with JSON paths, typed getters, and the syntax checks
 * of names, symbols, URLs and listen addresses.
 *
 * config_json.c reads typed values out of jansson objects, each failure
 * reported once under its JSON path; config_syntax.c knows the shapes of
 * strings; config.c walks the document with both.
 *
 * Thread safety: a struct cfg_ctx belongs to one load on one thread.
 */
#ifndef MARKD_DAEMON_CONFIG_INT_H
#define MARKD_DAEMON_CONFIG_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "daemon/cfg.h"

#define CFG_SHOW_MAX 64          /* a quoted value inside a message */
#define CFG_URL_MAX 512          /* longest base URL */
#define CFG_WEIGHT_MAX 100000    /* in whole units; * 10000 fits uint32 */

struct cfg_name_ix {
	const char *name;
	size_t ix;
};

/* State of one load. Only the first three members concern config_json.c;
 * the rest is the walk's own (config.c). */
struct cfg_ctx {
	struct cfg_errors *errs;     /* may be NULL */
	size_t nerr;                 /* errors found */
	bool oom;
	bool sources_usable;         /* "sources" was an array we could read */
	struct cfg_name_ix *src_index;   /* sorted by name, unique */
	size_t nsrc_index;
	struct cfg_name_ix *ins_index;   /* sorted by symbol, unique */
	size_t nins_index;
	bool min_sources_in_defaults;
};

/* What a getter found: CFG_ABSENT leaves *out alone; CFG_BAD has already
 * been reported. */
enum cfg_got { CFG_BAD = -1, CFG_ABSENT = 0, CFG_FOUND = 1 };

/* --- reporting (config_json.c) --- */

/* Records an error at path ("" for the whole file); counts it even when
 * the list is full or absent. */
void cfg_report(struct cfg_ctx *c, const char *path, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* The same with a line and column (JSON syntax errors). */
void cfg_report_at(struct cfg_ctx *c, const char *path, int line, int column,
		   const char *fmt, ...)
	__attribute__((format(printf, 5, 6)));

/* Records "out of memory" once and sets c->oom. */
void cfg_oom(struct cfg_ctx *c);

/* snprintf into a fixed buffer where cutting a long path or name short is
 * the intended behaviour. */
void cfg_fit(char *dst, size_t cap, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Untrusted text for a message: in double quotes, control and non-ASCII
 * bytes as \xNN, cut after about 40 characters. buf holds CFG_SHOW_MAX
 * bytes; returns buf. */
const char *cfg_show(const char *s, char *buf);

/* Paths (dst holds CFG_PATH_MAX bytes): member key of the object at parent
 * ("" is the top level; odd bytes of key shown as '?'), and element i of
 * the array at parent. */
void cfg_path_key(char *dst, const char *parent, const char *key);
void cfg_path_index(char *dst, const char *parent, size_t i);

/* Value as text without trailing fraction zeros ("50", "0.005"); buf holds
 * MK_DEC_STRLEN bytes; returns buf. */
const char *cfg_format_dec(struct mk_dec d, char *buf);

/* --- keys and typed values (config_json.c) --- */

/* Reports each key of obj in neither NULL-terminated list (extra may be
 * NULL), suggesting the nearest known key. */
void cfg_check_keys(struct cfg_ctx *c, const json_t *obj, const char *path,
		    const char *const *keys, const char *const *extra);

/* True when v is an object; else reports "expected an object". */
bool cfg_want_object(struct cfg_ctx *c, const json_t *v, const char *path);

/* Member key of obj (at path) as a JSON integer in [lo, hi]. */
enum cfg_got cfg_get_int(struct cfg_ctx *c, const json_t *obj,
			 const char *path, const char *key, int64_t lo,
			 int64_t hi, int64_t *out);
enum cfg_got cfg_get_u32(struct cfg_ctx *c, const json_t *obj,
			 const char *path, const char *key, int64_t lo,
			 int64_t hi, uint32_t *out);
enum cfg_got cfg_get_size(struct cfg_ctx *c, const json_t *obj,
			  const char *path, const char *key, int64_t lo,
			  int64_t hi, size_t *out);

/* A non-empty string without NUL bytes; *out is borrowed from obj.
 * cfg_get_required reports an absent key as "required" (CFG_BAD). */
enum cfg_got cfg_get_str(struct cfg_ctx *c, const json_t *obj,
			 const char *path, const char *key, const char **out);
enum cfg_got cfg_get_required(struct cfg_ctx *c, const json_t *obj,
			      const char *path, const char *key,
			      const char **out);

enum cfg_got cfg_get_bool(struct cfg_ctx *c, const json_t *obj,
			  const char *path, const char *key, bool *out);

/* One of names[0..n); *out is its index. */
enum cfg_got cfg_get_enum(struct cfg_ctx *c, const json_t *obj,
			  const char *path, const char *key,
			  const char *const *names, size_t n, int *out);

/* A decimal string or number (mk_json_dec). */
enum cfg_got cfg_get_dec(struct cfg_ctx *c, const json_t *obj,
			 const char *path, const char *key, struct mk_dec *out);

/* A weight: decimal > 0, at most 4 fraction digits and CFG_WEIGHT_MAX;
 * *out in 1/10000 units. */
enum cfg_got cfg_get_weight(struct cfg_ctx *c, const json_t *obj,
			    const char *path, const char *key, uint32_t *out);

/* --- shapes of strings (config_syntax.c) --- */

/* s[0..len) is a currency code: 1 to CFG_CCY_MAX - 1 of A-Z 0-9. */
bool cfg_is_currency(const char *s, size_t len);

/* A source name: 1 to AGG_SOURCE_MAX - 1 of A-Z a-z 0-9 _ . - */
bool cfg_is_source_name(const char *s);

/* Splits "BASE-QUOTE" into base and quote (CFG_CCY_MAX bytes each);
 * false, leaving them alone, when s is not of that form. */
bool cfg_split_symbol(const char *s, char *base, char *quote);

/* Checks a base URL; on failure writes the reason into why[0..cap). */
bool cfg_check_url(const char *s, char *why, size_t cap);

/* Parses "A.B.C.D:PORT" or "[IPV6]:PORT" (numeric addresses only) into
 * cfg's listen_host, listen_port, listen_addr and listen_addrlen; on
 * failure writes the reason into why[0..cap) and changes nothing. */
bool cfg_parse_listen(const char *s, struct cfg *cfg, char *why, size_t cap);

#endif
