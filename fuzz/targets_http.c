/*
 * targets_http.c - fuzz target bodies of the margin request bodies (see
 * targets.h): PUT /v1/positions/{id} and POST /v1/margin/evaluate, read
 * the way the routes read them (httpd_parse_json_body, then
 * httpd_margin_parse), then evaluated with the margin module; and POST
 * /v1/positions/{id}/collateral (httpd_margin_parse_collateral).
 */
#include "config.h"

#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "fuzz/targets.h"
#include "fuzz/targets_int.h"
#include "httpd/request.h"
#include "httpd/routes_margin.h"
#include "margin/math.h"
#include "margin/position.h"

/* The mark an evaluation without "price" uses. */
#define FUZZ_MARK MK_DEC(4000000, 2)       /* 40000.00 */
#define FUZZ_MARK_CONF MK_DEC(1250, 2)     /* 12.50 */

/* The instruments positions may name: a linear one with brackets, an
 * inverse one with brackets and a contract size, a linear one without
 * brackets (positions must bring theirs). */
struct fuzz_instruments {
	struct margin_brackets linear, inverse;
};

static void
add_bracket(struct margin_brackets *t, struct mk_dec floor, bool has_cap,
	    struct mk_dec cap, struct mk_dec mmr)
{
	struct margin_bracket *b = &t->b[t->n++];

	memset(b, 0, sizeof(*b));
	b->floor = floor;
	b->has_cap = has_cap;
	b->cap = cap;
	b->mmr = mmr;
}

static void
instruments_init(struct fuzz_instruments *fi)
{
	struct mk_err err;

	memset(fi, 0, sizeof(*fi));
	add_bracket(&fi->linear, MK_DEC(0, 0), true, MK_DEC(50000, 0),
		    MK_DEC(4, 3));
	add_bracket(&fi->linear, MK_DEC(50000, 0), true, MK_DEC(250000, 0),
		    MK_DEC(5, 3));
	add_bracket(&fi->linear, MK_DEC(250000, 0), false, MK_DEC(0, 0),
		    MK_DEC(1, 2));
	add_bracket(&fi->inverse, MK_DEC(0, 0), true, MK_DEC(5, 0),
		    MK_DEC(5, 3));
	add_bracket(&fi->inverse, MK_DEC(5, 0), false, MK_DEC(0, 0),
		    MK_DEC(1, 2));
	if (margin_brackets_prepare(&fi->linear, &err) != MK_OK ||
	    margin_brackets_prepare(&fi->inverse, &err) != MK_OK)
		markd_fuzz_fail("http", "fixed brackets refused: %s", err.msg);
}

static bool
lookup(void *arg, const char *symbol, struct httpd_margin_instrument *out)
{
	const struct fuzz_instruments *fi = arg;

	memset(out, 0, sizeof(*out));
	margin_params_default(&out->params);
	if (strcmp(symbol, "BTC-USD") == 0) {
		out->index = 0;
		out->kind = MARGIN_LINEAR;
		out->brackets = &fi->linear;
	} else if (strcmp(symbol, "BTC-USDI") == 0) {
		out->index = 1;
		out->kind = MARGIN_INVERSE;
		out->has_contract_size = true;
		out->contract_size = MK_DEC(100, 0);
		out->brackets = &fi->inverse;
	} else if (strcmp(symbol, "SOL-USD") == 0) {
		out->index = 2;
		out->kind = MARGIN_LINEAR;
	} else {
		return false;
	}
	snprintf(out->symbol, sizeof(out->symbol), "%s", symbol);
	return true;
}

/* The JSON body the way the server reads it; NULL after checking the
 * error of a body that is not JSON. */
static json_t *
read_body(const char *target, const uint8_t *data, size_t size)
{
	char *copy = markd_fuzz_copy(target, data, size);
	struct mk_err err;
	json_t *v = NULL;
	enum mk_status st;

	memset(&err, 0, sizeof(err));
	st = httpd_parse_json_body(copy, size, &v, &err);
	if (st != MK_OK) {
		if (st != MK_EPARSE && st != MK_ENOMEM)
			markd_fuzz_fail(target, "httpd_parse_json_body "
					"returned %s", mk_strstatus(st));
		markd_fuzz_check_err(target, "httpd_parse_json_body", st,
				     &err);
		v = NULL;
	} else if (!json_is_object(v) && !json_is_array(v)) {
		markd_fuzz_fail(target, "body parsed to a JSON scalar");
	}
	free(copy);
	return v;
}

/* One position object in mode; checks the error side; on success also
 * that its canonical JSON reads back (stored mode) as the same
 * position. Returns the status. */
static enum mk_status
parse_position(const char *target, const json_t *obj,
	       enum httpd_margin_mode mode, struct fuzz_instruments *fi,
	       const char *prefix, struct httpd_margin_input *in)
{
	char field[HTTPD_MARGIN_FIELD_MAX];
	struct httpd_margin_input *back;
	struct mk_err err;
	json_t *canon;
	char *a, *b;
	enum mk_status st;

	memset(&err, 0, sizeof(err));
	st = httpd_margin_parse(obj, mode, lookup, fi, prefix, in, field,
				sizeof(field), &err);
	if (st != MK_OK) {
		if (st != MK_EINVAL && st != MK_ENOMEM)
			markd_fuzz_fail(target, "httpd_margin_parse returned %s",
					mk_strstatus(st));
		markd_fuzz_check_err(target, "httpd_margin_parse", st, &err);
		if (!markd_fuzz_terminated(field, sizeof(field)))
			markd_fuzz_fail(target, "field not terminated");
		return st;
	}
	canon = httpd_margin_position_json(in->inst.symbol, &in->pos,
					   in->custom_brackets);
	if (canon == NULL)
		markd_fuzz_fail(target, "no canonical JSON");
	back = malloc(sizeof(*back));
	if (back == NULL)
		markd_fuzz_fail(target, "out of memory");
	st = httpd_margin_parse(canon, HTTPD_MARGIN_STORED, lookup, fi, "",
				back, field, sizeof(field), &err);
	if (st != MK_OK)
		markd_fuzz_fail(target, "the canonical JSON of an accepted "
				"position is refused: %s", err.msg);
	a = json_dumps(canon, JSON_COMPACT | JSON_SORT_KEYS);
	json_decref(canon);
	canon = httpd_margin_position_json(back->inst.symbol, &back->pos,
					   back->custom_brackets);
	b = canon != NULL ? json_dumps(canon, JSON_COMPACT | JSON_SORT_KEYS)
			  : NULL;
	if (a == NULL || b == NULL)
		markd_fuzz_fail(target, "out of memory");
	if (strcmp(a, b) != 0)
		markd_fuzz_fail(target, "canonical JSON changed on reading it "
				"back: %s then %s", a, b);
	free(a);
	free(b);
	json_decref(canon);
	free(back);
	return MK_OK;
}

int
markd_fuzz_position(const uint8_t *data, size_t size)
{
	struct fuzz_instruments fi;
	struct httpd_margin_input *in = malloc(sizeof(*in));
	json_t *body;
	int ok = 0;

	if (in == NULL)
		markd_fuzz_fail("position", "out of memory");
	instruments_init(&fi);
	body = read_body("position", data, size);
	if (body != NULL) {
		ok = parse_position("position", body, HTTPD_MARGIN_PUT, &fi, "",
				    in) == MK_OK;
		json_decref(body);
	}
	free(in);
	return ok;
}

/* Evaluates one accepted evaluate item as the route does: at its own
 * price (conf 0 unless given) or at a fixed mark. */
static void
evaluate(const struct httpd_margin_input *in)
{
	struct margin_options opt;
	struct margin_eval *ev = malloc(sizeof(*ev));
	struct mk_dec price = in->has_price ? in->price : FUZZ_MARK;
	struct mk_dec conf = in->has_price
				     ? (in->has_conf ? in->conf : MK_DEC(0, 0))
				     : FUZZ_MARK_CONF;
	struct mk_err err;
	unsigned flags;
	enum mk_status st;

	if (ev == NULL)
		markd_fuzz_fail("evaluate", "out of memory");
	memset(&opt, 0, sizeof(opt));
	opt.targets = in->targets;
	opt.has_vol = in->has_sigma;
	opt.vol.sigma = in->sigma;
	opt.vol.horizon_s = in->has_horizon ? in->horizon_s
					    : HTTPD_MARGIN_DEFAULT_HORIZON_S;
	opt.vol.model = MARGIN_DRIFTLESS;
	memset(&err, 0, sizeof(err));
	st = margin_evaluate(&in->pos, &in->inst.params, price, conf, &opt, ev,
			     &err);
	if (st != MK_OK) {
		if (st != MK_EINVAL && st != MK_ERANGE && st != MK_ENOMEM)
			markd_fuzz_fail("evaluate", "margin_evaluate returned %s",
					mk_strstatus(st));
		markd_fuzz_check_err("evaluate", "margin_evaluate", st, &err);
	} else {
		if (ev->mark.has && ev->mark.has_topup_probability &&
		    mk_dec_is_neg(ev->mark.topup_probability))
			markd_fuzz_fail("evaluate", "negative top-up");
		if (ev->has_max_leverage && !(ev->max_leverage > 0.0))
			markd_fuzz_fail("evaluate", "max leverage %g",
					ev->max_leverage);
	}
	st = margin_verdict(&in->pos, &in->inst.params, price, conf, &flags,
			    &err);
	if (st != MK_OK && st != MK_ERANGE && st != MK_EINVAL)
		markd_fuzz_fail("evaluate", "margin_verdict returned %s",
				mk_strstatus(st));
	free(ev);
}

int
markd_fuzz_evaluate(const uint8_t *data, size_t size)
{
	struct fuzz_instruments fi;
	struct httpd_margin_input *in = malloc(sizeof(*in));
	const json_t *list;
	json_t *body;
	int ok = 0;

	if (in == NULL)
		markd_fuzz_fail("evaluate", "out of memory");
	instruments_init(&fi);
	body = read_body("evaluate", data, size);
	if (body == NULL)
		goto out;
	/* One position, or {"positions":[...]} with 1 to
	 * HTTPD_MARGIN_MAX_BATCH items, each read with its prefix. */
	list = json_is_object(body) ? json_object_get(body, "positions") : NULL;
	if (list == NULL) {
		if (parse_position("evaluate", body, HTTPD_MARGIN_EVALUATE, &fi,
				   "", in) == MK_OK) {
			evaluate(in);
			ok = 1;
		}
	} else if (json_object_size(body) == 1 && json_is_array(list) &&
		   json_array_size(list) <= HTTPD_MARGIN_MAX_BATCH) {
		ok = json_array_size(list) > 0;
		for (size_t i = 0; i < json_array_size(list); i++) {
			char prefix[48];

			snprintf(prefix, sizeof(prefix), "positions[%zu].", i);
			if (parse_position("evaluate", json_array_get(list, i),
					   HTTPD_MARGIN_EVALUATE, &fi, prefix,
					   in) != MK_OK) {
				ok = 0;
				break;
			}
			evaluate(in);
		}
	}
	json_decref(body);
out:
	free(in);
	return ok;
}

/* The field of a refused collateral body: nothing, "delta", or (the start
 * of) one of the body's keys. */
static bool
collateral_field_ok(const json_t *body, const char *field, size_t cap)
{
	const char *key;
	json_t *v;

	if (field[0] == '\0' || strcmp(field, "delta") == 0)
		return true;
	json_object_foreach((json_t *)body, key, v) {
		/* a key longer than the field is cut to fit it */
		if (strlen(field) == cap - 1 ? strncmp(key, field, cap - 1) == 0
					     : strcmp(key, field) == 0)
			return true;
	}
	return false;
}

int
markd_fuzz_collateral(const uint8_t *data, size_t size)
{
	char field[HTTPD_MARGIN_FIELD_MAX], text[MK_DEC_STRLEN];
	struct mk_dec delta, back;
	struct mk_err err;
	json_t *body = read_body("collateral", data, size);
	enum mk_status st;
	int ok = 0;

	if (body == NULL)
		return 0;
	memset(&err, 0, sizeof(err));
	memset(field, 'x', sizeof(field));
	st = httpd_margin_parse_collateral(body, &delta, field, sizeof(field),
					   &err);
	if (!markd_fuzz_terminated(field, sizeof(field)))
		markd_fuzz_fail("collateral", "field not terminated");
	if (st != MK_OK) {
		if (st != MK_EINVAL && st != MK_ENOMEM)
			markd_fuzz_fail("collateral", "httpd_margin_parse_"
					"collateral returned %s",
					mk_strstatus(st));
		markd_fuzz_check_err("collateral",
				     "httpd_margin_parse_collateral", st, &err);
		if (!collateral_field_ok(body, field, sizeof(field)))
			markd_fuzz_fail("collateral", "field \"%s\" is not "
					"a key of the body: %s", field,
					err.msg);
		goto out;
	}
	/* accepted: exactly {"delta": D}, D not zero, printed and read back
	 * to the same value */
	if (!json_is_object(body) || json_object_size(body) != 1 ||
	    json_object_get(body, "delta") == NULL)
		markd_fuzz_fail("collateral", "accepted a body that is not "
				"{\"delta\":...}");
	if (field[0] != '\0')
		markd_fuzz_fail("collateral", "field \"%s\" set on success",
				field);
	if (mk_dec_is_zero(delta))
		markd_fuzz_fail("collateral", "accepted a zero delta");
	if (mk_dec_format(delta, text, sizeof(text)) == 0 ||
	    mk_dec_parse(text, strlen(text), &back, &err) != MK_OK ||
	    mk_dec_cmp(back, delta) != 0 || back.scale != delta.scale)
		markd_fuzz_fail("collateral", "delta %s does not read back",
				text);
	ok = 1;
out:
	json_decref(body);
	return ok;
}
