/*
 * routes_margin.c - the margin routes and the JSON form of positions and
 * evaluations (see routes_margin.h).
 */
#include "config.h"

#include "httpd/routes_margin.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "aggregator/json_dec.h"
#include "httpd/request.h"
#include "httpd/response.h"
#include "httpd/router.h"

#define YEAR_S (365.0 * 86400.0)

/* ---- errors with a field ---------------------------------------------- */

/* Where parse errors go: the field path (with its prefix) and the
 * message. */
struct perr {
	char *field;
	size_t fcap;
	const char *prefix;
	struct mk_err *err;
};

static void
set_field(struct perr *pe, const char *name)
{
	if (pe->field == NULL || pe->fcap == 0)
		return;
	snprintf(pe->field, pe->fcap, "%s%s", pe->prefix, name);
	/* "positions[2]." alone names the item itself */
	if (name[0] == '\0') {
		size_t n = strlen(pe->field);

		if (n > 0 && pe->field[n - 1] == '.')
			pe->field[n - 1] = '\0';
	}
}

/* Fails with field `name` and the message "name: ...". */
static enum mk_status
fail(struct perr *pe, const char *name, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static enum mk_status
fail(struct perr *pe, const char *name, const char *fmt, ...)
{
	char msg[200];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	set_field(pe, name);
	if (name[0] != '\0')
		return mk_err_set(pe->err, MK_EINVAL, "%s%s: %s", pe->prefix,
				  name, msg);
	return mk_err_set(pe->err, MK_EINVAL, "%s", msg);
}

/* The field a margin/ message names ("brackets[2].cap: ..." ->
 * "brackets[2].cap"), into buf; "" when it names none. */
static void
message_field(const char *msg, char *buf, size_t cap)
{
	size_t n = strspn(msg, "abcdefghijklmnopqrstuvwxyz"
			       "0123456789_.[]");

	if (n == 0 || n >= cap || msg[n] != ':' || msg[n + 1] != ' ') {
		buf[0] = '\0';
		return;
	}
	memcpy(buf, msg, n);
	buf[n] = '\0';
}

/* Passes a margin/ error on with its field prefixed. */
static enum mk_status
fail_from(struct perr *pe, enum mk_status st, const struct mk_err *e)
{
	char f[HTTPD_MARGIN_FIELD_MAX];

	message_field(e->msg, f, sizeof(f));
	set_field(pe, f);
	mk_err_set(pe->err, st == MK_ENOMEM ? MK_ENOMEM : MK_EINVAL, "%s%s",
		   f[0] != '\0' ? pe->prefix : "", e->msg);
	return pe->err != NULL ? pe->err->code : MK_EINVAL;
}

/* ---- reading ---------------------------------------------------------- */

static bool
key_in(const char *key, const char *const *keys)
{
	for (size_t i = 0; keys[i] != NULL; i++)
		if (strcmp(key, keys[i]) == 0)
			return true;
	return false;
}

static const char *const POSITION_KEYS[] = {
	"symbol", "kind", "side", "size", "entry_price", "collateral",
	"contract_size", "leverage", "brackets", NULL,
};
static const char *const EVALUATE_KEYS[] = {
	"id", "price", "conf", "horizon_s", "sigma", "targets", NULL,
};
static const char *const BRACKET_KEYS[] = {
	"floor", "cap", "mmr", "cum", NULL,
};
static const char *const TARGET_KEYS[] = {
	"margin_ratio", "health", "liq_price", "probability",
	"removable_health", NULL,
};

/* A decimal at key of obj (name: its path for messages). */
static enum mk_status
get_dec(struct perr *pe, const json_t *obj, const char *key,
	const char *name, bool required, bool *has, struct mk_dec *out)
{
	const json_t *v = json_object_get(obj, key);
	struct mk_err e;

	if (has != NULL)
		*has = false;
	if (v == NULL) {
		if (required)
			return fail(pe, name, "required");
		return MK_OK;
	}
	if (!json_is_string(v) && !json_is_number(v))
		return fail(pe, name, "must be a decimal (a string or a "
			    "number), not %s", mk_json_type_name(v));
	if (mk_json_dec(v, out, &e) != MK_OK)
		return fail(pe, name, "%s", e.msg);
	if (has != NULL)
		*has = true;
	return MK_OK;
}

/* A positive statistic (a JSON number or a decimal string) as a double. */
static enum mk_status
get_stat(struct perr *pe, const json_t *obj, const char *key,
	 const char *name, bool *has, double *out)
{
	struct mk_dec d;
	enum mk_status st = get_dec(pe, obj, key, name, false, has, &d);

	if (st == MK_OK && *has)
		*out = mk_dec_to_double(d);
	return st;
}

static bool
id_valid(const char *id)
{
	size_t n = strlen(id);

	return n > 0 && n <= MARGIN_REGISTRY_MAX_ID &&
	       strspn(id, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
			  "0123456789._:-") == n;
}

static enum mk_status
parse_brackets(struct perr *pe, const json_t *arr,
	       struct margin_brackets *t)
{
	char name[64];
	struct mk_err e;
	enum mk_status st;

	if (!json_is_array(arr))
		return fail(pe, "brackets", "must be an array of brackets");
	if (json_array_size(arr) == 0 ||
	    json_array_size(arr) > MARGIN_MAX_BRACKETS)
		return fail(pe, "brackets", "must hold 1 to %d brackets",
			    MARGIN_MAX_BRACKETS);
	memset(t, 0, sizeof(*t));
	t->n = json_array_size(arr);
	for (size_t i = 0; i < t->n; i++) {
		const json_t *b = json_array_get(arr, i);
		struct margin_bracket *br = &t->b[i];
		const char *key;
		json_t *v;

		if (!json_is_object(b)) {
			snprintf(name, sizeof(name), "brackets[%zu]", i);
			return fail(pe, name, "must be an object");
		}
		json_object_foreach((json_t *)b, key, v) {
			if (!key_in(key, BRACKET_KEYS)) {
				snprintf(name, sizeof(name), "brackets[%zu].%s",
					 i, key);
				return fail(pe, name, "unknown key");
			}
		}
		snprintf(name, sizeof(name), "brackets[%zu].floor", i);
		st = get_dec(pe, b, "floor", name, true, NULL, &br->floor);
		if (st == MK_OK) {
			snprintf(name, sizeof(name), "brackets[%zu].cap", i);
			st = get_dec(pe, b, "cap", name, false, &br->has_cap,
				     &br->cap);
		}
		if (st == MK_OK) {
			snprintf(name, sizeof(name), "brackets[%zu].mmr", i);
			st = get_dec(pe, b, "mmr", name, true, NULL, &br->mmr);
		}
		if (st == MK_OK) {
			snprintf(name, sizeof(name), "brackets[%zu].cum", i);
			st = get_dec(pe, b, "cum", name, false, &br->has_cum,
				     &br->cum);
		}
		if (st != MK_OK)
			return st;
	}
	st = margin_brackets_prepare(t, &e);
	if (st != MK_OK)
		return fail_from(pe, st, &e);
	return MK_OK;
}

static enum mk_status
parse_targets(struct perr *pe, const json_t *obj, struct margin_targets *t)
{
	const char *key;
	json_t *v;
	enum mk_status st;

	if (!json_is_object(obj))
		return fail(pe, "targets", "must be an object");
	json_object_foreach((json_t *)obj, key, v) {
		if (!key_in(key, TARGET_KEYS)) {
			char name[64];

			snprintf(name, sizeof(name), "targets.%s", key);
			return fail(pe, name, "unknown key");
		}
	}
	st = get_dec(pe, obj, "margin_ratio", "targets.margin_ratio", false,
		     &t->has_margin_ratio, &t->margin_ratio);
	if (st == MK_OK)
		st = get_dec(pe, obj, "health", "targets.health", false,
			     &t->has_health, &t->health);
	if (st == MK_OK)
		st = get_dec(pe, obj, "liq_price", "targets.liq_price", false,
			     &t->has_liq_price, &t->liq_price);
	if (st == MK_OK)
		st = get_dec(pe, obj, "removable_health",
			     "targets.removable_health", false,
			     &t->has_removable_health, &t->removable_health);
	if (st == MK_OK)
		st = get_stat(pe, obj, "probability", "targets.probability",
			      &t->has_probability, &t->probability);
	if (st != MK_OK)
		return st;
	if (t->has_margin_ratio && !mk_dec_is_pos(t->margin_ratio))
		return fail(pe, "targets.margin_ratio", "must be positive");
	if (t->has_health && !mk_dec_is_pos(t->health))
		return fail(pe, "targets.health", "must be positive");
	if (t->has_liq_price && !mk_dec_is_pos(t->liq_price))
		return fail(pe, "targets.liq_price", "must be positive");
	if (t->has_removable_health && !mk_dec_is_pos(t->removable_health))
		return fail(pe, "targets.removable_health", "must be positive");
	if (t->has_probability &&
	    !(t->probability > 0.0 && t->probability < 1.0))
		return fail(pe, "targets.probability",
			    "must be between 0 and 1 (exclusive)");
	return MK_OK;
}

static enum mk_status
parse_extras(struct perr *pe, const json_t *obj, struct httpd_margin_input *in)
{
	const json_t *t = json_object_get(obj, "targets");
	enum mk_status st;

	st = get_dec(pe, obj, "price", "price", false, &in->has_price,
		     &in->price);
	if (st == MK_OK)
		st = get_dec(pe, obj, "conf", "conf", false, &in->has_conf,
			     &in->conf);
	if (st == MK_OK)
		st = get_stat(pe, obj, "horizon_s", "horizon_s",
			      &in->has_horizon, &in->horizon_s);
	if (st == MK_OK)
		st = get_stat(pe, obj, "sigma", "sigma", &in->has_sigma,
			      &in->sigma);
	if (st != MK_OK)
		return st;
	if (in->has_price && !mk_dec_is_pos(in->price))
		return fail(pe, "price", "must be positive");
	if (in->has_conf && !in->has_price)
		return fail(pe, "conf", "only with \"price\" (the current"
			    " mark brings its own)");
	if (in->has_conf && mk_dec_is_neg(in->conf))
		return fail(pe, "conf", "must not be negative");
	if (in->has_horizon &&
	    !(in->horizon_s > 0.0 && in->horizon_s <= 10.0 * YEAR_S))
		return fail(pe, "horizon_s",
			    "must be above 0 and at most ten years");
	if (in->has_sigma && !(in->sigma > 0.0 && in->sigma <= 100.0))
		return fail(pe, "sigma", "must be above 0 and at most 100"
			    " (annualized, 1 = 100%%)");
	if (t != NULL)
		return parse_targets(pe, t, &in->targets);
	return MK_OK;
}

enum mk_status
httpd_margin_parse(const json_t *obj, enum httpd_margin_mode mode,
		   httpd_margin_lookup_fn lookup, void *arg,
		   const char *prefix, struct httpd_margin_input *in,
		   char *field, size_t fcap, struct mk_err *err)
{
	struct perr pe = { field, fcap, prefix != NULL ? prefix : "", err };
	const json_t *v;
	const char *key, *s;
	json_t *jv;
	struct mk_err e;
	bool has_cs = false;
	enum mk_status st;

	if (field != NULL && fcap > 0)
		field[0] = '\0';
	memset(in, 0, sizeof(*in));
	if (!json_is_object(obj))
		return fail(&pe, "", "%s must be a JSON object",
			    pe.prefix[0] != '\0' ? "each position"
						 : "the position");
	json_object_foreach((json_t *)obj, key, jv) {
		if (key_in(key, POSITION_KEYS))
			continue;
		if (mode == HTTPD_MARGIN_PUT && strcmp(key, "id") == 0)
			continue;
		if (mode == HTTPD_MARGIN_EVALUATE && key_in(key, EVALUATE_KEYS))
			continue;
		if (key_in(key, EVALUATE_KEYS))
			return fail(&pe, key, "only for POST"
				    " /v1/margin/evaluate");
		return fail(&pe, key, "unknown key");
	}
	v = json_object_get(obj, "id");
	if (v != NULL) {
		if (!json_is_string(v) || !id_valid(json_string_value(v)))
			return fail(&pe, "id", "must be 1 to %d characters of"
				    " A-Z a-z 0-9 . _ : -",
				    MARGIN_REGISTRY_MAX_ID);
		in->has_id = true;
		snprintf(in->id, sizeof(in->id), "%s", json_string_value(v));
	}
	v = json_object_get(obj, "symbol");
	if (v == NULL)
		return fail(&pe, "symbol", "required");
	if (!json_is_string(v))
		return fail(&pe, "symbol", "must be a string");
	s = json_string_value(v);
	if (strlen(s) >= MARGIN_REGISTRY_MAX_SYMBOL ||
	    !lookup(arg, s, &in->inst))
		return fail(&pe, "symbol", "unknown instrument \"%.40s\"", s);

	in->pos.kind = in->inst.kind;
	v = json_object_get(obj, "kind");
	if (v != NULL) {
		s = json_is_string(v) ? json_string_value(v) : "";
		if (strcmp(s, "linear") == 0)
			in->pos.kind = MARGIN_LINEAR;
		else if (strcmp(s, "inverse") == 0)
			in->pos.kind = MARGIN_INVERSE;
		else
			return fail(&pe, "kind",
				    "must be \"linear\" or \"inverse\"");
	}
	v = json_object_get(obj, "side");
	if (v == NULL)
		return fail(&pe, "side", "required");
	s = json_is_string(v) ? json_string_value(v) : "";
	if (strcmp(s, "long") == 0)
		in->pos.side = MARGIN_LONG;
	else if (strcmp(s, "short") == 0)
		in->pos.side = MARGIN_SHORT;
	else
		return fail(&pe, "side", "must be \"long\" or \"short\"");

	st = get_dec(&pe, obj, "size", "size", true, NULL, &in->pos.size);
	if (st == MK_OK)
		st = get_dec(&pe, obj, "entry_price", "entry_price", true, NULL,
			     &in->pos.entry_price);
	if (st == MK_OK)
		st = get_dec(&pe, obj, "collateral", "collateral", true, NULL,
			     &in->pos.collateral);
	if (st == MK_OK)
		st = get_dec(&pe, obj, "contract_size", "contract_size", false,
			     &has_cs, &in->pos.contract_size);
	if (st == MK_OK)
		st = get_dec(&pe, obj, "leverage", "leverage", false,
			     &in->pos.has_leverage, &in->pos.leverage);
	if (st != MK_OK)
		return st;
	if (in->pos.kind == MARGIN_LINEAR && has_cs)
		return fail(&pe, "contract_size", "only for inverse positions");
	if (in->pos.kind == MARGIN_INVERSE && !has_cs) {
		if (!in->inst.has_contract_size ||
		    in->inst.kind != MARGIN_INVERSE)
			return fail(&pe, "contract_size", "required for an"
				    " inverse position on %s",
				    in->inst.symbol);
		in->pos.contract_size = in->inst.contract_size;
	}

	v = json_object_get(obj, "brackets");
	if (v != NULL) {
		st = parse_brackets(&pe, v, &in->brackets);
		if (st != MK_OK)
			return st;
		in->custom_brackets = true;
		in->pos.brackets = &in->brackets;
	} else if (in->inst.brackets == NULL) {
		return fail(&pe, "brackets", "required: %s has no default"
			    " brackets", in->inst.symbol);
	} else if (in->pos.kind != in->inst.kind) {
		return fail(&pe, "brackets", "required: the default brackets"
			    " of %s are for %s contracts", in->inst.symbol,
			    margin_kind_name(in->inst.kind));
	} else {
		in->pos.brackets = in->inst.brackets;
	}
	st = margin_position_check(&in->pos, &e);
	if (st != MK_OK)
		return fail_from(&pe, st, &e);
	if (mode == HTTPD_MARGIN_EVALUATE)
		return parse_extras(&pe, obj, in);
	return MK_OK;
}

enum mk_status
httpd_margin_parse_collateral(const json_t *body, struct mk_dec *delta,
			      char *field, size_t fcap, struct mk_err *err)
{
	struct perr pe = { field, fcap, "", err };
	const char *key;
	json_t *v;
	enum mk_status st;

	if (field != NULL && fcap > 0)
		field[0] = '\0';
	*delta = MK_DEC(0, 0);
	if (!json_is_object(body))
		return fail(&pe, "", "the body must be a JSON object"
			    " {\"delta\":\"...\"}");
	json_object_foreach((json_t *)body, key, v) {
		if (strcmp(key, "delta") != 0)
			return fail(&pe, key, "unknown key");
	}
	st = get_dec(&pe, body, "delta", "delta", true, NULL, delta);
	if (st == MK_OK && mk_dec_is_zero(*delta))
		st = fail(&pe, "delta", "must not be zero");
	return st;
}

/* ---- writing ---------------------------------------------------------- */

static json_t *
dec_json(struct mk_dec d)
{
	char buf[MK_DEC_STRLEN];

	if (mk_dec_format(d, buf, sizeof(buf)) == 0)
		return json_null();
	return json_string(buf);
}

static void
put_dec(json_t *o, const char *key, struct mk_dec d)
{
	json_object_set_new(o, key, dec_json(d));
}

static void
put_opt_dec(json_t *o, const char *key, bool has, struct mk_dec d)
{
	json_object_set_new(o, key, has ? dec_json(d) : json_null());
}

/* Statistics: a JSON number, or null when not finite. */
static void
put_real(json_t *o, const char *key, double v)
{
	json_object_set_new(o, key, isfinite(v) ? json_real(v) : json_null());
}

const char *
httpd_margin_time(int64_t ms, char *buf, size_t cap)
{
	struct tm tm;
	time_t s;

	buf[0] = '\0';
	if (ms < 0 || ms > INT64_C(253402300799999) || cap < 32)
		return buf;
	s = (time_t)(ms / 1000);
	if (gmtime_r(&s, &tm) == NULL)
		return buf;
	snprintf(buf, cap, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ",
		 tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
		 tm.tm_min, tm.tm_sec, (int)(ms % 1000));
	return buf;
}

static void
put_time(json_t *o, const char *key, int64_t ms)
{
	char buf[40];

	json_object_set_new(o, key, json_string(httpd_margin_time(
					    ms, buf, sizeof(buf))));
}

json_t *
httpd_margin_position_json(const char *symbol, const struct margin_position *p,
			   bool custom_brackets)
{
	json_t *o = json_object();

	if (o == NULL)
		return NULL;
	json_object_set_new(o, "symbol", json_string(symbol));
	json_object_set_new(o, "kind", json_string(margin_kind_name(p->kind)));
	json_object_set_new(o, "side", json_string(margin_side_name(p->side)));
	put_dec(o, "size", p->size);
	put_dec(o, "entry_price", p->entry_price);
	put_dec(o, "collateral", p->collateral);
	if (p->kind == MARGIN_INVERSE)
		put_dec(o, "contract_size", p->contract_size);
	if (p->has_leverage)
		put_dec(o, "leverage", p->leverage);
	if (custom_brackets && p->brackets != NULL) {
		json_t *a = json_array();

		for (size_t i = 0; a != NULL && i < p->brackets->n; i++) {
			const struct margin_bracket *b = &p->brackets->b[i];
			json_t *bo = json_object();

			if (bo == NULL)
				continue;
			put_dec(bo, "floor", b->floor);
			if (b->has_cap)
				put_dec(bo, "cap", b->cap);
			put_dec(bo, "mmr", b->mmr);
			put_dec(bo, "cum", b->cum);
			json_array_append_new(a, bo);
		}
		json_object_set_new(o, "brackets", a);
	}
	return o;
}

/* The figures at one price, under plain names, into o. */
static void
put_point(json_t *o, const struct margin_point *pt, bool stats)
{
	const struct margin_figures *f = &pt->fig;
	const struct margin_risk *r = &pt->risk;

	put_dec(o, "price", f->price);
	put_dec(o, "notional", f->notional);
	put_dec(o, "unrealized_pnl", f->unrealized_pnl);
	put_dec(o, "margin_balance", f->margin_balance);
	put_dec(o, "initial_margin", f->initial_margin);
	put_dec(o, "maintenance_margin", f->maintenance_margin);
	put_opt_dec(o, "margin_ratio", f->has_margin_ratio, f->margin_ratio);
	put_opt_dec(o, "health", f->has_health, f->health);
	put_opt_dec(o, "effective_leverage", f->has_effective_leverage,
		    f->effective_leverage);
	json_object_set_new(o, "bracket", json_integer((json_int_t)f->bracket));
	json_object_set_new(o, "beyond_cap", json_boolean(f->beyond_cap));
	json_object_set_new(o, "breached", json_boolean(f->breached));
	json_object_set_new(o, "bankrupt", json_boolean(f->bankrupt));
	json_object_set_new(o, "buffered", json_boolean(f->buffered));
	put_opt_dec(o, "distance_pct", r->has_distance_pct, r->distance_pct);
	if (r->has_distance)
		put_real(o, "distance_log", r->distance_log);
	else
		json_object_set_new(o, "distance_log", json_null());
	if (stats) {
		bool d = r->has_distance;

		if (d)
			put_real(o, "z", r->z);
		else
			json_object_set_new(o, "z", json_null());
		put_real(o, "p_liq", r->p_liq);
		put_real(o, "p_liq_discrete", r->p_liq_discrete);
	}
	put_dec(o, "max_removable", pt->max_removable);
	if (pt->has_topup_margin_ratio)
		put_dec(o, "topup_margin_ratio", pt->topup_margin_ratio);
	if (pt->has_topup_health)
		put_dec(o, "topup_health", pt->topup_health);
	if (pt->has_topup_liq_price)
		put_dec(o, "topup_liq_price", pt->topup_liq_price);
	if (pt->has_topup_probability) {
		put_dec(o, "topup_probability", pt->topup_probability);
		put_dec(o, "probability_liq_price", pt->probability_liq_price);
	}
	put_real(o, "delta", pt->greeks.delta);
	put_real(o, "gamma", pt->greeks.gamma);
	put_dec(o, "exposure", pt->greeks.exposure);
}

static json_t *
point_json(const struct margin_point *pt, bool stats)
{
	json_t *o;

	if (!pt->has)
		return json_null();
	o = json_object();
	if (o != NULL)
		put_point(o, pt, stats);
	return o;
}

/* ---- evaluation ------------------------------------------------------- */

/* The mark an evaluation runs at. */
struct used_mark {
	bool requested;                 /* the request's "price" */
	struct httpd_margin_mark m;
};

static int64_t
wall_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static json_t *
mark_json(const struct used_mark *u)
{
	const struct margin_tick *t = &u->m.tick;
	json_t *o = json_object();

	if (o == NULL)
		return NULL;
	json_object_set_new(o, "source",
			    json_string(u->requested ? "request" : "mark"));
	put_dec(o, "price", t->price);
	put_dec(o, "conf", t->conf);
	if (u->requested)
		return o;
	json_object_set_new(o, "status", json_string(u->m.status));
	json_object_set_new(o, "valid_for_liquidation",
			    json_boolean(t->valid_for_liquidation));
	json_object_set_new(o, "sources_used",
			    json_integer((json_int_t)t->sources_used));
	json_object_set_new(o, "seq", json_integer((json_int_t)t->seq));
	put_time(o, "updated_at", t->time_ms);
	if (u->m.has_volatility)
		put_real(o, "volatility", u->m.volatility);
	return o;
}

/*
 * Evaluates p at the used mark into o: "mark", "as_of", the figures at
 * the mark, "band", the liquidation and bankruptcy prices, statistics,
 * and (stateless) "state"/"reason" from the verdict of this one mark.
 * Errors: margin_evaluate's (MK_EINVAL with a field, MK_ERANGE).
 */
static enum mk_status
put_evaluation(json_t *o, const struct margin_position *p,
	       const struct margin_params *prm, const struct used_mark *u,
	       const struct httpd_margin_input *in, struct mk_err *err)
{
	struct margin_options opt;
	struct margin_eval *ev;
	struct margin_tracker trk;
	struct margin_decision d;
	json_t *band;
	bool stats;
	enum mk_status st;

	memset(&opt, 0, sizeof(opt));
	if (in != NULL)
		opt.targets = in->targets;
	if (in != NULL && in->has_sigma) {
		opt.has_vol = true;
		opt.vol.sigma = in->sigma;
	} else if (u->m.has_volatility && isfinite(u->m.volatility) &&
		   u->m.volatility > 0.0) {
		opt.has_vol = true;
		opt.vol.sigma = u->m.volatility;
	}
	opt.vol.horizon_s = in != NULL && in->has_horizon
				    ? in->horizon_s
				    : HTTPD_MARGIN_DEFAULT_HORIZON_S;
	opt.vol.model = MARGIN_DRIFTLESS;
	stats = opt.has_vol;
	/* ~1 KiB of figures: off the handler's stack */
	ev = malloc(sizeof(*ev));
	if (ev == NULL)
		return mk_err_set(err, MK_ENOMEM, "out of memory");
	st = margin_evaluate(p, prm, u->m.tick.price, u->m.tick.conf, &opt, ev,
			     err);
	if (st != MK_OK)
		goto out;
	json_object_set_new(o, "mark", mark_json(u));
	put_time(o, "as_of", u->requested ? wall_ms() : u->m.tick.time_ms);
	json_object_set_new(o, "liquidation_condition",
			    json_string("margin_balance < maintenance_margin"));
	put_opt_dec(o, "liquidation_price", ev->liq.has_price, ev->liq.price);
	if (ev->liq.has_price)
		json_object_set_new(o, "liquidation_bracket",
				    json_integer((json_int_t)ev->liq.bracket));
	put_opt_dec(o, "bankruptcy_price", ev->liq.has_bankruptcy,
		    ev->liq.bankruptcy);
	put_point(o, &ev->mark, stats);
	band = json_object();
	if (band != NULL) {
		put_dec(band, "conf", ev->conf);
		json_object_set_new(band, "favourable",
				    point_json(&ev->fav, stats));
		json_object_set_new(band, "adverse",
				    point_json(&ev->adv, stats));
		json_object_set_new(o, "band", band);
	}
	if (stats) {
		put_real(o, "sigma", opt.vol.sigma);
		put_real(o, "horizon_s", opt.vol.horizon_s);
	}
	if (ev->has_max_leverage)
		put_real(o, "max_leverage", ev->max_leverage);
	/* The verdict of this mark alone (no confirmation history). */
	margin_tracker_init(&trk);
	margin_track(&trk, prm, &u->m.tick, ev->flags, &d, NULL);
	json_object_set_new(o, "state",
			    json_string(margin_state_name(d.state)));
	json_object_set_new(o, "reason",
			    json_string(margin_reason_name(d.reason)));
	json_object_set_new(o, "reason_text",
			    json_string(margin_reason_text(d.reason)));
out:
	free(ev);
	return st;
}

/* ---- replies ---------------------------------------------------------- */

/* Answers an error status of the ops or the codec. */
static void
reply_status(struct httpd_req *req, enum mk_status st, const struct mk_err *e,
	     const char *field)
{
	char f[HTTPD_MARGIN_FIELD_MAX];
	const char *msg = e != NULL && e->msg[0] != '\0' ? e->msg
							  : mk_strstatus(st);

	if (field == NULL || field[0] == '\0') {
		message_field(msg, f, sizeof(f));
		field = f[0] != '\0' ? f : NULL;
	}
	switch (st) {
	case MK_EINVAL:
	case MK_EPARSE:
	case MK_ERANGE:
	case MK_EINEXACT:
	case MK_EDIVZERO:
		httpd_reply_error(req, HTTPD_ERR_BAD_REQUEST, field, "%s", msg);
		break;
	case MK_ENOTFOUND:
		httpd_reply_error(req, HTTPD_ERR_NOT_FOUND, field, "%s", msg);
		break;
	case MK_ESTATE:
	case MK_ETOOBIG:
		httpd_reply_error(req, HTTPD_ERR_CONFLICT, field, "%s", msg);
		break;
	case MK_EIO:
		httpd_reply_error(req, HTTPD_ERR_SERVICE_UNAVAILABLE, NULL,
				  "%s", msg);
		break;
	default:
		httpd_reply_error(req, HTTPD_ERR_INTERNAL, NULL, "%s", msg);
		break;
	}
}

/* The path's {id}, checked; NULL after answering 400. */
static const char *
path_id(struct httpd_req *req)
{
	const char *id = httpd_req_param(req, "id");

	if (id == NULL || !id_valid(id)) {
		httpd_reply_error(req, HTTPD_ERR_BAD_REQUEST, "id",
				  "id: must be 1 to %d characters of A-Z a-z"
				  " 0-9 . _ : -", MARGIN_REGISTRY_MAX_ID);
		return NULL;
	}
	return id;
}

/* The current mark of inst into *u: false when there is none usable for
 * figures (never had a price, or a price that is not positive). */
static bool
current_mark(const struct httpd_margin_routes *mr, size_t inst, struct used_mark *u)
{
	memset(u, 0, sizeof(*u));
	if (!mr->ops->mark(mr->arg, inst, &u->m))
		return false;
	return mk_dec_is_pos(u->m.tick.price) && !mk_dec_is_neg(u->m.tick.conf);
}

/* One evaluate item: a new object, or NULL after filling err/field. */
static json_t *
evaluate_one(const struct httpd_margin_routes *mr, const json_t *item,
	     const char *prefix, enum mk_status *st, struct mk_err *err,
	     char *field, size_t fcap)
{
	struct httpd_margin_input *in = malloc(sizeof(*in));
	struct used_mark u;
	json_t *o = NULL;
	char pf[HTTPD_MARGIN_FIELD_MAX];

	if (in == NULL) {
		*st = mk_err_set(err, MK_ENOMEM, "out of memory");
		return NULL;
	}
	*st = httpd_margin_parse(item, HTTPD_MARGIN_EVALUATE,
				 mr->ops->instrument, mr->arg, prefix, in,
				 field, fcap, err);
	if (*st != MK_OK)
		goto out;
	memset(&u, 0, sizeof(u));
	if (in->has_price) {
		u.requested = true;
		u.m.tick.price = in->price;
		u.m.tick.conf = in->has_conf ? in->conf : MK_DEC(0, 0);
		u.m.tick.valid_for_liquidation = true;
		u.m.tick.time_ms = wall_ms();
		u.m.status = "requested";
	} else if (!current_mark(mr, in->inst.index, &u)) {
		*st = mk_err_set(err, MK_EIO, "no usable mark for %s yet; give"
				 " \"price\" to evaluate at a price of your"
				 " own", in->inst.symbol);
		goto out;
	}
	o = json_object();
	if (o == NULL) {
		*st = mk_err_set(err, MK_ENOMEM, "out of memory");
		goto out;
	}
	if (in->has_id)
		json_object_set_new(o, "id", json_string(in->id));
	json_object_set_new(o, "symbol", json_string(in->inst.symbol));
	json_object_set_new(o, "position",
			    httpd_margin_position_json(in->inst.symbol,
						       &in->pos,
						       in->custom_brackets));
	*st = put_evaluation(o, &in->pos, &in->inst.params, &u, in, err);
	if (*st != MK_OK) {
		struct perr pe = { field, fcap, prefix, err };
		struct mk_err e = *err;

		json_decref(o);
		o = NULL;
		snprintf(pf, sizeof(pf), "%s", prefix);
		pe.prefix = pf;
		fail_from(&pe, *st, &e);
		*st = e.code == MK_ENOMEM ? MK_ENOMEM : MK_EINVAL;
	}
out:
	free(in);
	return o;
}

static void
h_evaluate(struct httpd_req *req, void *arg)
{
	const struct httpd_margin_routes *mr = arg;
	const json_t *body = httpd_req_json(req);
	const json_t *list = json_is_object(body)
				     ? json_object_get(body, "positions")
				     : NULL;
	char field[HTTPD_MARGIN_FIELD_MAX] = "";
	struct mk_err err;
	enum mk_status st;
	json_t *out, *arr;

	memset(&err, 0, sizeof(err));
	if (list == NULL) {
		out = evaluate_one(mr, body, "", &st, &err, field,
				   sizeof(field));
		if (out == NULL)
			reply_status(req, st, &err, field);
		else
			httpd_reply_json(req, 200, out);
		return;
	}
	if (json_object_size(body) != 1) {
		const char *key;
		json_t *v;

		json_object_foreach((json_t *)body, key, v) {
			if (strcmp(key, "positions") != 0)
				break;
		}
		httpd_reply_error(req, HTTPD_ERR_BAD_REQUEST, key,
				  "%s: unknown key (a list request holds only"
				  " \"positions\")", key);
		return;
	}
	if (!json_is_array(list) || json_array_size(list) == 0 ||
	    json_array_size(list) > HTTPD_MARGIN_MAX_BATCH) {
		httpd_reply_error(req, HTTPD_ERR_BAD_REQUEST, "positions",
				  "positions: must be an array of 1 to %d"
				  " positions", HTTPD_MARGIN_MAX_BATCH);
		return;
	}
	arr = json_array();
	if (arr == NULL) {
		httpd_reply_error(req, HTTPD_ERR_INTERNAL, NULL, "out of memory");
		return;
	}
	for (size_t i = 0; i < json_array_size(list); i++) {
		char prefix[48];
		json_t *o;

		snprintf(prefix, sizeof(prefix), "positions[%zu].", i);
		o = evaluate_one(mr, json_array_get(list, i), prefix, &st,
				 &err, field, sizeof(field));
		if (o == NULL) {
			json_decref(arr);
			reply_status(req, st, &err, field);
			return;
		}
		json_array_append_new(arr, o);
	}
	httpd_reply_json(req, 200, json_pack("{s:o}", "evaluations", arr));
}

/*
 * The answer for a registered position: id, symbol, position, tracked
 * state, and (when the instrument has a usable mark) the evaluation at it.
 * A new reference, or NULL when out of memory.
 */
static json_t *
position_answer(const struct httpd_margin_routes *mr,
		const struct margin_registry_view *v)
{
	struct httpd_margin_instrument inst;
	struct used_mark u;
	struct mk_err err;
	json_t *o = json_object();
	bool has_inst;

	if (o == NULL)
		return NULL;
	has_inst = mr->ops->instrument(mr->arg, v->symbol, &inst);
	json_object_set_new(o, "id", json_string(v->id));
	json_object_set_new(o, "symbol", json_string(v->symbol));
	json_object_set_new(o, "position",
			    httpd_margin_position_json(v->symbol, &v->pos,
						       v->custom_brackets));
	if (has_inst && current_mark(mr, v->inst, &u)) {
		if (put_evaluation(o, &v->pos, &inst.params, &u, NULL, &err) !=
		    MK_OK)
			json_object_set_new(o, "evaluation_error",
					    json_string(err.msg));
		else if (v->tracker.count > 0 &&
			 u.m.tick.time_ms >= v->tracker.first_ms)
			json_object_set_new(
				o, "breach_ms",
				json_integer((json_int_t)(u.m.tick.time_ms -
							  v->tracker.first_ms)));
	} else {
		json_object_set_new(o, "mark", json_null());
	}
	/* The tracked state replaces the one-mark verdict. */
	json_object_set_new(o, "state", json_string(margin_state_name(v->state)));
	json_object_set_new(o, "reason",
			    json_string(margin_reason_name(v->reason)));
	json_object_set_new(o, "reason_text",
			    json_string(margin_reason_text(v->reason)));
	json_object_set_new(o, "last_valid_state",
			    v->last_valid == MARGIN_STATE_NEW
				    ? json_null()
				    : json_string(margin_state_name(v->last_valid)));
	json_object_set_new(o, "held", json_boolean(v->held));
	json_object_set_new(o, "breach_marks",
			    json_integer((json_int_t)v->tracker.count));
	if (v->tracker.count > 0)
		put_time(o, "breach_since", v->tracker.first_ms);
	return o;
}

static void
reply_position(struct httpd_req *req, const struct httpd_margin_routes *mr,
	       const char *id, unsigned status)
{
	struct margin_registry_view v;
	json_t *o;

	if (mr->ops->get(mr->arg, id, &v) != MK_OK) {
		httpd_reply_error(req, HTTPD_ERR_NOT_FOUND, NULL,
				  "no position \"%s\"", id);
		return;
	}
	o = position_answer(mr, &v);
	margin_registry_view_release(&v);
	if (o == NULL)
		httpd_reply_error(req, HTTPD_ERR_INTERNAL, NULL, "out of memory");
	else
		httpd_reply_json(req, status, o);
}

static void
h_put(struct httpd_req *req, void *arg)
{
	const struct httpd_margin_routes *mr = arg;
	const char *id = path_id(req);
	struct httpd_margin_input *in;
	char field[HTTPD_MARGIN_FIELD_MAX] = "";
	struct mk_err err;
	json_t *canon;
	char *body;
	bool created = false;
	enum mk_status st;

	if (id == NULL)
		return;
	in = malloc(sizeof(*in));
	if (in == NULL) {
		httpd_reply_error(req, HTTPD_ERR_INTERNAL, NULL, "out of memory");
		return;
	}
	memset(&err, 0, sizeof(err));
	st = httpd_margin_parse(httpd_req_json(req), HTTPD_MARGIN_PUT,
				mr->ops->instrument, mr->arg, "", in, field,
				sizeof(field), &err);
	if (st != MK_OK) {
		reply_status(req, st, &err, field);
		goto out;
	}
	if (in->has_id && strcmp(in->id, id) != 0) {
		httpd_reply_error(req, HTTPD_ERR_BAD_REQUEST, "id",
				  "id: \"%s\" does not match the path's \"%s\"",
				  in->id, id);
		goto out;
	}
	canon = httpd_margin_position_json(in->inst.symbol, &in->pos,
					   in->custom_brackets);
	body = canon != NULL ? json_dumps(canon, JSON_COMPACT) : NULL;
	json_decref(canon);
	if (body == NULL) {
		httpd_reply_error(req, HTTPD_ERR_INTERNAL, NULL, "out of memory");
		goto out;
	}
	st = mr->ops->put(mr->arg, id, in, body, strlen(body), &created, &err);
	free(body);
	if (st != MK_OK) {
		reply_status(req, st, &err, NULL);
		goto out;
	}
	reply_position(req, mr, id, created ? 201 : 200);
out:
	free(in);
}

static void
h_get(struct httpd_req *req, void *arg)
{
	const char *id = path_id(req);

	if (id != NULL)
		reply_position(req, arg, id, 200);
}

static void
h_delete(struct httpd_req *req, void *arg)
{
	const struct httpd_margin_routes *mr = arg;
	const char *id = path_id(req);
	struct mk_err err;
	enum mk_status st;

	if (id == NULL)
		return;
	memset(&err, 0, sizeof(err));
	st = mr->ops->remove(mr->arg, id, &err);
	if (st == MK_ENOTFOUND)
		httpd_reply_error(req, HTTPD_ERR_NOT_FOUND, NULL,
				  "no position \"%s\"", id);
	else if (st != MK_OK)
		reply_status(req, st, &err, NULL);
	else
		httpd_reply_json(req, 200, json_pack("{s:s,s:b}", "id", id,
						     "deleted", 1));
}

static void
h_collateral(struct httpd_req *req, void *arg)
{
	const struct httpd_margin_routes *mr = arg;
	const char *id = path_id(req);
	char field[HTTPD_MARGIN_FIELD_MAX];
	struct mk_dec delta, max;
	struct mk_err err;
	bool has_max = false;
	enum mk_status st;

	if (id == NULL)
		return;
	memset(&err, 0, sizeof(err));
	st = httpd_margin_parse_collateral(httpd_req_json(req), &delta, field,
					   sizeof(field), &err);
	if (st != MK_OK) {
		reply_status(req, st, &err, field);
		return;
	}
	st = mr->ops->collateral(mr->arg, id, delta, &has_max, &max, &err);
	if (st == MK_ENOTFOUND) {
		httpd_reply_error(req, HTTPD_ERR_NOT_FOUND, NULL,
				  "no position \"%s\"", id);
		return;
	}
	if (st != MK_OK) {
		reply_status(req, st, &err,
			     st == MK_ESTATE || st == MK_EINVAL ? "delta"
								 : NULL);
		return;
	}
	reply_position(req, mr, id, 200);
}

/* A query parameter as an unsigned integer in [lo, hi]; def when absent.
 * false after answering 400. */
static bool
query_uint(struct httpd_req *req, const char *name, uint64_t lo, uint64_t hi,
	   uint64_t def, uint64_t *out)
{
	const char *s = httpd_req_query(req, name);
	char *end;
	unsigned long long v;

	*out = def;
	if (s == NULL)
		return true;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (s[0] < '0' || s[0] > '9' || *end != '\0' || errno != 0 || v < lo ||
	    v > hi) {
		httpd_reply_error(req, HTTPD_ERR_BAD_REQUEST, name,
				  "%s: must be an integer from %llu to %llu",
				  name, (unsigned long long)lo,
				  (unsigned long long)hi);
		return false;
	}
	*out = v;
	return true;
}

static bool
state_parse(const char *s, enum margin_state *out)
{
	for (int i = 0; i < MARGIN_STATE_COUNT; i++) {
		if (strcmp(s, margin_state_name((enum margin_state)i)) == 0) {
			*out = (enum margin_state)i;
			return true;
		}
	}
	return false;
}

static void
h_list(struct httpd_req *req, void *arg)
{
	const struct httpd_margin_routes *mr = arg;
	const char *sym = httpd_req_query(req, "symbol");
	const char *state = httpd_req_query(req, "state");
	struct margin_registry_filter f;
	struct margin_registry_view *views = NULL;
	struct httpd_margin_instrument inst;
	uint64_t limit, cursor;
	uint32_t cur;
	size_t n = 0;
	bool end = false;
	json_t *arr = NULL;
	char next[24];

	memset(&f, 0, sizeof(f));
	if (sym != NULL) {
		if (strlen(sym) >= MARGIN_REGISTRY_MAX_SYMBOL ||
		    !mr->ops->instrument(mr->arg, sym, &inst)) {
			httpd_reply_error(req, HTTPD_ERR_BAD_REQUEST, "symbol",
					  "symbol: unknown instrument \"%.40s\"",
					  sym);
			return;
		}
		f.has_inst = true;
		f.inst = inst.index;
	}
	if (state != NULL) {
		if (!state_parse(state, &f.state)) {
			httpd_reply_error(req, HTTPD_ERR_BAD_REQUEST, "state",
					  "state: must be one of new, held,"
					  " safe, at_risk, breach_unconfirmed,"
					  " liquidatable, bankrupt");
			return;
		}
		f.has_state = true;
	}
	if (!query_uint(req, "limit", 1, HTTPD_MARGIN_MAX_PAGE,
			HTTPD_MARGIN_DEFAULT_PAGE, &limit) ||
	    !query_uint(req, "cursor", 0, UINT32_MAX, 0, &cursor))
		return;
	views = calloc(limit, sizeof(*views));
	arr = json_array();
	if (views == NULL || arr == NULL) {
		httpd_reply_error(req, HTTPD_ERR_INTERNAL, NULL, "out of memory");
		goto out;
	}
	cur = (uint32_t)cursor;
	while (n < limit && !end)
		n += mr->ops->list(mr->arg, &cur, &f, views + n, limit - n,
				   &end);
	for (size_t i = 0; i < n; i++) {
		json_t *o = position_answer(mr, &views[i]);

		if (o != NULL)
			json_array_append_new(arr, o);
	}
	snprintf(next, sizeof(next), "%u", (unsigned)cur);
	httpd_reply_json(req, 200,
			 json_pack("{s:O,s:I,s:s?}", "positions", arr, "count",
				   (json_int_t)n, "next_cursor",
				   end ? NULL : next));
out:
	for (size_t i = 0; views != NULL && i < n; i++)
		margin_registry_view_release(&views[i]);
	free(views);
	json_decref(arr);
}

struct events_ctx {
	json_t *arr;
	int64_t last;
	bool bad;
};

static enum mk_status
event_cb(void *ctx, const struct margin_store_event *ev)
{
	struct events_ctx *c = ctx;
	json_t *o = json_loadb(ev->body, ev->body_len, 0, NULL);

	if (!json_is_object(o)) {
		/* not ours: show what the store knows */
		json_decref(o);
		o = json_pack("{s:s,s:s}", "id", ev->position_id, "symbol",
			      ev->symbol);
		c->bad = true;
	}
	if (o == NULL)
		return MK_ENOMEM;
	json_object_set_new(o, "seq", json_integer((json_int_t)ev->seq));
	json_array_append_new(c->arr, o);
	c->last = ev->seq;
	return MK_OK;
}

static void
h_liquidations(struct httpd_req *req, void *arg)
{
	const struct httpd_margin_routes *mr = arg;
	struct events_ctx c = { NULL, 0, false };
	uint64_t since, limit;
	struct mk_err err;
	enum mk_status st;
	bool more;

	if (!query_uint(req, "since", 0, INT64_MAX, 0, &since) ||
	    !query_uint(req, "limit", 1, HTTPD_MARGIN_MAX_PAGE,
			HTTPD_MARGIN_DEFAULT_PAGE, &limit))
		return;
	c.arr = json_array();
	c.last = (int64_t)since;
	if (c.arr == NULL) {
		httpd_reply_error(req, HTTPD_ERR_INTERNAL, NULL, "out of memory");
		return;
	}
	memset(&err, 0, sizeof(err));
	st = mr->ops->events(mr->arg, (int64_t)since, (size_t)limit + 1,
			     event_cb, &c, &err);
	if (st != MK_OK) {
		json_decref(c.arr);
		reply_status(req, st, &err, NULL);
		return;
	}
	more = json_array_size(c.arr) > limit;
	if (more) {
		json_array_remove(c.arr, (size_t)limit);
		c.last = json_integer_value(json_object_get(
			json_array_get(c.arr, (size_t)limit - 1), "seq"));
	}
	httpd_reply_json(req, 200,
			 json_pack("{s:o,s:I,s:b}", "events", c.arr,
				   "next_since", (json_int_t)c.last, "more",
				   more));
}

static void
h_disabled(struct httpd_req *req, void *arg)
{
	(void)arg;
	httpd_reply_error(req, HTTPD_ERR_FORBIDDEN, NULL,
			  "write endpoints are disabled: the configuration"
			  " names no token_file");
}

enum mk_status
httpd_routes_margin_each(const struct httpd_margin_routes *mr,
			 httpd_route_add_fn add, void *ctx, struct mk_err *err)
{
	static const struct {
		enum httpd_method m;
		const char *path;
		unsigned flags;
		httpd_handler_fn fn;
	} routes[] = {
		{ HTTPD_POST, "/v1/margin/evaluate", HTTPD_ROUTE_BODY,
		  h_evaluate },
		{ HTTPD_PUT, "/v1/positions/{id}",
		  HTTPD_ROUTE_AUTH | HTTPD_ROUTE_BODY, h_put },
		{ HTTPD_GET, "/v1/positions/{id}", 0, h_get },
		{ HTTPD_DELETE, "/v1/positions/{id}", HTTPD_ROUTE_AUTH,
		  h_delete },
		{ HTTPD_POST, "/v1/positions/{id}/collateral",
		  HTTPD_ROUTE_AUTH | HTTPD_ROUTE_BODY, h_collateral },
		{ HTTPD_GET, "/v1/positions", 0, h_list },
		{ HTTPD_GET, "/v1/liquidations", 0, h_liquidations },
	};
	/* The handlers do not change it; routers store void *. */
	void *arg = (void *)(uintptr_t)mr;
	enum mk_status st = MK_OK;

	for (size_t i = 0; st == MK_OK && i < sizeof(routes) / sizeof(routes[0]);
	     i++) {
		unsigned flags = routes[i].flags;
		httpd_handler_fn fn = routes[i].fn;

		if (mr->writes_disabled && (flags & HTTPD_ROUTE_AUTH) != 0) {
			flags = 0;
			fn = h_disabled;
		}
		st = add(ctx, routes[i].m, routes[i].path, flags, fn, arg, err);
	}
	return st;
}

static enum mk_status
router_add(void *ctx, enum httpd_method method, const char *pattern,
	   unsigned flags, httpd_handler_fn fn, void *arg, struct mk_err *err)
{
	return httpd_router_add(ctx, method, pattern, flags, fn, arg, err);
}

enum mk_status
httpd_routes_margin(struct httpd_router *r,
		    const struct httpd_margin_routes *mr, struct mk_err *err)
{
	return httpd_routes_margin_each(mr, router_add, r, err);
}
