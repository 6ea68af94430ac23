/*
 * replay_pos.c - grid specs, positions files and entering a position.
 */
#include "config.h"

#include "tools/replay_pos.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "aggregator/json_dec.h"
#include "feeds/rfc3339.h"
#include "tools/replay_data.h"

#define GRID_PREFIX "grid:"
#define GRID_MAX_EVERY_MIN INT64_C(525600)   /* a year */
#define MAX_LEVERAGE 1000

/* Parses one leverage s[0..len) of spec into *out. */
static enum mk_status
grid_leverage(const char *spec, const char *s, size_t len,
	      struct mk_dec *out, struct mk_err *err)
{
	struct mk_err e;

	if (len == 0)
		return mk_err_set(err, MK_EINVAL, "%s: empty leverage", spec);
	if (mk_dec_parse(s, len, out, &e) != MK_OK)
		return mk_err_set(err, MK_EINVAL, "%s: leverage \"%.*s\" is "
				  "not a decimal", spec, (int)len, s);
	if (!mk_dec_is_pos(*out) ||
	    mk_dec_cmp(*out, mk_dec_from_int(MAX_LEVERAGE)) > 0)
		return mk_err_set(err, MK_EINVAL, "%s: leverage \"%.*s\" is "
				  "not in (0, %d]", spec, (int)len, s,
				  MAX_LEVERAGE);
	return MK_OK;
}

enum mk_status
replay_grid_parse(const char *spec, struct replay_grid *g, struct mk_err *err)
{
	const char *levs, *colon, *p, *every;
	char *end;
	long long v;

	memset(g, 0, sizeof(*g));
	if (strncmp(spec, GRID_PREFIX, strlen(GRID_PREFIX)) != 0)
		return mk_err_set(err, MK_EINVAL, "%s: a grid spec starts with "
				  "\"grid:\"", spec);
	levs = spec + strlen(GRID_PREFIX);
	colon = strchr(levs, ':');
	if (colon == NULL)
		return mk_err_set(err, MK_EINVAL, "%s: expected "
				  "grid:LEVERAGES:EVERY_MIN (e.g. "
				  "grid:5,10,25,50,100:30)", spec);
	for (p = levs; p <= colon;) {
		const char *q = p;

		while (q < colon && *q != ',')
			q++;
		if (g->nlev == REPLAY_GRID_MAX_LEVERAGES)
			return mk_err_set(err, MK_EINVAL, "%s: more than %d "
					  "leverages", spec,
					  REPLAY_GRID_MAX_LEVERAGES);
		if (grid_leverage(spec, p, (size_t)(q - p), &g->lev[g->nlev],
				  err) != MK_OK)
			return MK_EINVAL;
		for (size_t i = 0; i < g->nlev; i++)
			if (mk_dec_cmp(g->lev[i], g->lev[g->nlev]) == 0)
				return mk_err_set(err, MK_EINVAL, "%s: leverage "
						  "\"%.*s\" is listed twice",
						  spec, (int)(q - p), p);
		g->nlev++;
		p = q + 1;
	}
	every = colon + 1;
	errno = 0;
	v = strtoll(every, &end, 10);
	if (every[0] < '0' || every[0] > '9' || *end != '\0' || errno != 0 ||
	    v < 1 || v > GRID_MAX_EVERY_MIN)
		return mk_err_set(err, MK_EINVAL, "%s: EVERY_MIN \"%s\" is not "
				  "a whole number of minutes in 1..%lld", spec,
				  every, (long long)GRID_MAX_EVERY_MIN);
	g->every_min = v;
	return MK_OK;
}

enum mk_status
replay_grid_positions(const struct replay_grid *g, int64_t from_ms,
		      int64_t to_ms, struct replay_positions *out,
		      struct mk_err *err)
{
	int64_t step = g->every_min * 60000;
	size_t entries, n, k = 0;

	memset(out, 0, sizeof(*out));
	if (to_ms <= from_ms)
		return MK_OK;
	entries = (size_t)((to_ms - from_ms + step - 1) / step);
	if (entries > REPLAY_MAX_POSITIONS / (2 * g->nlev))
		return mk_err_set(err, MK_ETOOBIG, "the grid makes more than "
				  "%d positions in this window; enter them "
				  "less often", REPLAY_MAX_POSITIONS);
	n = entries * 2 * g->nlev;
	out->p = calloc(n, sizeof(*out->p));
	if (out->p == NULL)
		return mk_err_set(err, MK_ENOMEM, "out of memory");
	for (size_t e = 0; e < entries; e++)
		for (size_t l = 0; l < g->nlev; l++)
			for (int s = 0; s < 2; s++) {
				struct replay_position *p = &out->p[k++];
				char lt[MK_DEC_STRLEN];

				replay_dec_text(g->lev[l], lt, sizeof(lt));
				p->at_ms = from_ms + (int64_t)e * step;
				p->side = s == 0 ? MARGIN_LONG : MARGIN_SHORT;
				p->size = mk_dec_from_int(1);
				p->has_leverage = true;
				p->leverage = g->lev[l];
				snprintf(p->id, sizeof(p->id), "g%zu-%sx-%s",
					 e, lt, s == 0 ? "long" : "short");
			}
	out->n = n;
	return MK_OK;
}

void
replay_positions_clear(struct replay_positions *ps)
{
	if (ps == NULL)
		return;
	free(ps->p);
	ps->p = NULL;
	ps->n = 0;
}

/* Reads the whole file (at most REPLAY_POS_FILE_MAX bytes). */
static enum mk_status
read_file(const char *path, char **buf, size_t *len, struct mk_err *err)
{
	FILE *fp = fopen(path, "rb");
	size_t cap = 0, n = 0;
	char *b = NULL;
	enum mk_status st = MK_OK;

	if (fp == NULL) {
		int e = errno;

		st = mk_err_set(err, MK_EIO, "%s: %s", path, strerror(e));
		if (err != NULL)
			err->sys_errno = e;
		return st;
	}
	for (;;) {
		size_t got;

		if (n == cap) {
			char *nb;

			if (cap > REPLAY_POS_FILE_MAX) {
				st = mk_err_set(err, MK_ETOOBIG, "%s: larger "
						"than %u bytes", path,
						REPLAY_POS_FILE_MAX);
				goto out;
			}
			cap = cap == 0 ? 65536 : cap * 2;
			nb = realloc(b, cap + 1);
			if (nb == NULL) {
				st = mk_err_set(err, MK_ENOMEM, "out of memory");
				goto out;
			}
			b = nb;
		}
		got = fread(b + n, 1, cap - n, fp);
		n += got;
		if (got == 0)
			break;
	}
	if (ferror(fp)) {
		st = mk_err_set(err, MK_EIO, "%s: read error", path);
		goto out;
	}
	if (n > REPLAY_POS_FILE_MAX) {
		st = mk_err_set(err, MK_ETOOBIG, "%s: larger than %u bytes",
				path, REPLAY_POS_FILE_MAX);
		goto out;
	}
	*buf = b;
	*len = n;
	b = NULL;
out:
	fclose(fp);
	free(b);
	return st;
}

/* A decimal member `key` of o into *out; *has says whether it was there.
 * sign: 1 means > 0, 0 means >= 0. */
static enum mk_status
get_dec(const char *file, size_t i, json_t *o, const char *key, int sign,
	bool required, bool *has, struct mk_dec *out, struct mk_err *err)
{
	json_t *v = json_object_get(o, key);
	struct mk_err e;

	*has = false;
	if (v == NULL) {
		if (required)
			return mk_err_set(err, MK_EINVAL, "%s: positions[%zu]"
					  ".%s: required", file, i, key);
		return MK_OK;
	}
	if (mk_json_dec(v, out, &e) != MK_OK)
		return mk_err_set(err, MK_EINVAL, "%s: positions[%zu].%s: %s",
				  file, i, key, e.msg);
	if (sign == 1 ? !mk_dec_is_pos(*out) : mk_dec_is_neg(*out))
		return mk_err_set(err, MK_EINVAL, "%s: positions[%zu].%s: must "
				  "be %s", file, i, key,
				  sign == 1 ? "> 0" : ">= 0");
	*has = true;
	return MK_OK;
}

/* Fills p from the JSON object o (positions[i] of file). */
static enum mk_status
parse_position(const char *file, size_t i, json_t *o,
	       struct replay_position *p, struct mk_err *err)
{
	static const char *const keys[] = { "id", "at", "side", "size",
		"entry_price", "collateral", "leverage", NULL };
	const char *key;
	json_t *v;
	bool has;
	enum mk_status st;

	if (!json_is_object(o))
		return mk_err_set(err, MK_EINVAL, "%s: positions[%zu]: expected "
				  "an object, got %s", file, i,
				  mk_json_type_name(o));
	json_object_foreach(o, key, v) {
		size_t k;

		for (k = 0; keys[k] != NULL; k++)
			if (strcmp(keys[k], key) == 0)
				break;
		if (keys[k] == NULL)
			return mk_err_set(err, MK_EINVAL, "%s: positions[%zu]: "
					  "unknown key \"%.40s\"", file, i, key);
	}
	v = json_object_get(o, "id");
	if (v == NULL) {
		snprintf(p->id, sizeof(p->id), "p%zu", i);
	} else {
		const char *s = json_string_value(v);

		if (s == NULL || s[0] == '\0' ||
		    strlen(s) >= sizeof(p->id) ||
		    strpbrk(s, "\",\r\n\t") != NULL)
			return mk_err_set(err, MK_EINVAL, "%s: positions[%zu].id:"
					  " expected a string of 1-%zu "
					  "characters without quotes, commas "
					  "or line breaks", file, i,
					  sizeof(p->id) - 1);
		snprintf(p->id, sizeof(p->id), "%s", s);
	}
	v = json_object_get(o, "at");
	if (json_is_integer(v)) {
		json_int_t s = json_integer_value(v);

		if (s < 0 || s > FEED_TS_MAX_MS / 1000)
			return mk_err_set(err, MK_EINVAL, "%s: positions[%zu].at:"
					  " Unix seconds out of range", file, i);
		p->at_ms = (int64_t)s * 1000;
	} else if (json_is_string(v)) {
		struct mk_err e;

		if (feed_rfc3339_parse_ms(json_string_value(v),
					  json_string_length(v), &p->at_ms,
					  &e) != MK_OK)
			return mk_err_set(err, MK_EINVAL, "%s: positions[%zu].at:"
					  " %s", file, i, e.msg);
	} else {
		return mk_err_set(err, MK_EINVAL, "%s: positions[%zu].at: "
				  "expected an RFC 3339 time or Unix seconds",
				  file, i);
	}
	v = json_object_get(o, "side");
	if (json_is_string(v) && strcmp(json_string_value(v), "long") == 0)
		p->side = MARGIN_LONG;
	else if (json_is_string(v) &&
		 strcmp(json_string_value(v), "short") == 0)
		p->side = MARGIN_SHORT;
	else
		return mk_err_set(err, MK_EINVAL, "%s: positions[%zu].side: "
				  "expected \"long\" or \"short\"", file, i);
	st = get_dec(file, i, o, "size", 1, true, &has, &p->size, err);
	if (st == MK_OK)
		st = get_dec(file, i, o, "entry_price", 1, false,
			     &p->has_entry, &p->entry, err);
	if (st == MK_OK)
		st = get_dec(file, i, o, "collateral", 0, false,
			     &p->has_collateral, &p->collateral, err);
	if (st == MK_OK)
		st = get_dec(file, i, o, "leverage", 1, false,
			     &p->has_leverage, &p->leverage, err);
	if (st != MK_OK)
		return st;
	if (!p->has_collateral && !p->has_leverage)
		return mk_err_set(err, MK_EINVAL, "%s: positions[%zu]: needs "
				  "\"collateral\" or \"leverage\"", file, i);
	return MK_OK;
}

/* Orders by entry time, then by index (a total order: deterministic). */
static int
cmp_at(const void *a, const void *b)
{
	const struct replay_position *x = a, *y = b;

	if (x->at_ms != y->at_ms)
		return x->at_ms < y->at_ms ? -1 : 1;
	return (x->entry_step > y->entry_step) - (x->entry_step < y->entry_step);
}

static int
cmp_id(const void *a, const void *b)
{
	const struct replay_position *const *x = a, *const *y = b;

	return strcmp((*x)->id, (*y)->id);
}

/* MK_EINVAL when two positions share an id. */
static enum mk_status
check_ids(const char *file, const struct replay_positions *ps,
	  struct mk_err *err)
{
	const struct replay_position **v;
	enum mk_status st = MK_OK;

	if (ps->n < 2)
		return MK_OK;
	v = malloc(ps->n * sizeof(*v));
	if (v == NULL)
		return mk_err_set(err, MK_ENOMEM, "out of memory");
	for (size_t i = 0; i < ps->n; i++)
		v[i] = &ps->p[i];
	qsort(v, ps->n, sizeof(*v), cmp_id);
	for (size_t i = 1; i < ps->n; i++)
		if (strcmp(v[i - 1]->id, v[i]->id) == 0) {
			st = mk_err_set(err, MK_EINVAL, "%s: id \"%s\" is used "
					"by two positions", file, v[i]->id);
			break;
		}
	free(v);
	return st;
}

enum mk_status
replay_positions_load(const char *path, struct replay_positions *out,
		      struct mk_err *err)
{
	json_error_t jerr;
	json_t *root = NULL, *arr;
	char *buf = NULL;
	size_t len = 0, n;
	enum mk_status st;

	memset(out, 0, sizeof(*out));
	st = read_file(path, &buf, &len, err);
	if (st != MK_OK)
		return st;
	root = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &jerr);
	if (root == NULL) {
		st = mk_err_set(err, MK_EPARSE, "%s:%d:%d: %s", path, jerr.line,
				jerr.column, jerr.text);
		goto out;
	}
	arr = root;
	if (json_is_object(root)) {
		if (json_object_size(root) != 1 ||
		    !json_is_array(json_object_get(root, "positions"))) {
			st = mk_err_set(err, MK_EINVAL, "%s: expected an array "
					"of positions or {\"positions\": [...]}",
					path);
			goto out;
		}
		arr = json_object_get(root, "positions");
	} else if (!json_is_array(root)) {
		st = mk_err_set(err, MK_EINVAL, "%s: expected an array of "
				"positions or {\"positions\": [...]}", path);
		goto out;
	}
	n = json_array_size(arr);
	if (n > REPLAY_MAX_POSITIONS) {
		st = mk_err_set(err, MK_ETOOBIG, "%s: %zu positions, at most %d",
				path, n, REPLAY_MAX_POSITIONS);
		goto out;
	}
	out->p = calloc(n > 0 ? n : 1, sizeof(*out->p));
	if (out->p == NULL) {
		st = mk_err_set(err, MK_ENOMEM, "out of memory");
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		st = parse_position(path, i, json_array_get(arr, i),
				    &out->p[i], err);
		if (st != MK_OK)
			goto out;
		out->p[i].entry_step = i;   /* file order, for the sort */
	}
	out->n = n;
	st = check_ids(path, out, err);
	if (st != MK_OK)
		goto out;
	qsort(out->p, n, sizeof(*out->p), cmp_at);
	for (size_t i = 0; i < n; i++)
		out->p[i].entry_step = 0;
out:
	if (st != MK_OK)
		replay_positions_clear(out);
	json_decref(root);
	free(buf);
	return st;
}

enum mk_status
replay_position_enter(struct replay_position *p, enum margin_kind kind,
		      struct mk_dec contract_size,
		      const struct margin_brackets *b,
		      const struct margin_params *prm, struct mk_dec mark,
		      int64_t t_ms, size_t step, struct mk_err *err)
{
	struct margin_position *mp = &p->pos;
	struct margin_figures fig;
	struct mk_dec lp;
	struct mk_err e = { 0 };
	enum mk_status st;

	memset(mp, 0, sizeof(*mp));
	mp->kind = kind;
	mp->side = p->side;
	mp->size = p->size;
	mp->contract_size = contract_size;
	mp->entry_price = p->has_entry ? p->entry : mark;
	mp->collateral = p->has_collateral ? p->collateral
					   : mk_dec_from_int(0);
	mp->has_leverage = p->has_leverage;
	mp->leverage = p->leverage;
	mp->brackets = b;
	if (!p->has_collateral) {
		st = margin_figures_at(mp, prm, mp->entry_price, &fig, &e);
		if (st == MK_OK)
			st = mk_dec_div(fig.notional, p->leverage,
					prm->amount_scale, MK_ROUND_HALF_EVEN,
					&mp->collateral);
		if (st != MK_OK)
			goto fail;
	}
	st = margin_liquidation(mp, prm, &p->liq, &e);
	if (st != MK_OK)
		goto fail;
	p->has_lp = p->liq.has_price;
	if (p->has_lp) {
		st = mk_dec_rescale(p->liq.price, prm->price_scale,
				    MK_ROUND_HALF_EVEN, &lp);
		if (st != MK_OK)
			goto fail;
		p->lp = lp.m;
	}
	p->entered = true;
	p->entry_ms = t_ms;
	p->entry_step = step;
	return MK_OK;
fail:
	return mk_err_set(err, st, "position %s: %s", p->id,
			  e.msg[0] != '\0' ? e.msg : mk_strstatus(st));
}
