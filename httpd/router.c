/*
 * router.c - the route table: pattern parsing, lookup with 404/405.
 */
#include "config.h"

#include "httpd/router.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "httpd/httpd_int.h"

struct httpd_router {
	struct httpd_route *routes;
	size_t n;
	size_t cap;
};

static const struct {
	enum httpd_method m;
	const char *name;
} methods[] = {
	{ HTTPD_GET, "GET" },
	{ HTTPD_HEAD, "HEAD" },
	{ HTTPD_POST, "POST" },
	{ HTTPD_PUT, "PUT" },
	{ HTTPD_PATCH, "PATCH" },
	{ HTTPD_DELETE, "DELETE" },
	{ HTTPD_OPTIONS, "OPTIONS" },
};
#define NMETHODS (sizeof methods / sizeof methods[0])

const char *
httpd_method_name(enum httpd_method m)
{
	for (size_t i = 0; i < NMETHODS; i++)
		if (methods[i].m == m)
			return methods[i].name;
	return "?";
}

enum httpd_method
httpd_method_parse(const char *name)
{
	if (name == NULL)
		return 0;
	for (size_t i = 0; i < NMETHODS; i++)
		if (strcmp(methods[i].name, name) == 0)
			return methods[i].m;
	return 0;
}

const char *
httpd_allow_header(unsigned mask, char *buf, size_t cap)
{
	size_t off = 0;

	if (cap == 0)
		return buf;
	buf[0] = '\0';
	for (size_t i = 0; i < NMETHODS; i++) {
		int n;

		if ((mask & methods[i].m) == 0)
			continue;
		n = snprintf(buf + off, cap - off, "%s%s",
			     off > 0 ? ", " : "", methods[i].name);
		if (n < 0 || (size_t)n >= cap - off)
			break;
		off += (size_t)n;
	}
	return buf;
}

struct httpd_router *
httpd_router_create(void)
{
	return calloc(1, sizeof(struct httpd_router));
}

static void
route_free(struct httpd_route *rt)
{
	for (size_t i = 0; i < rt->nseg; i++)
		free(rt->segs[i].text);
	free(rt->segs);
	free(rt->pattern);
}

void
httpd_router_destroy(struct httpd_router *r)
{
	if (r == NULL)
		return;
	for (size_t i = 0; i < r->n; i++)
		route_free(&r->routes[i]);
	free(r->routes);
	free(r);
}

static bool
is_param_name(const char *s, size_t len)
{
	if (len == 0 || !((s[0] >= 'a' && s[0] <= 'z') || s[0] == '_'))
		return false;
	for (size_t i = 1; i < len; i++) {
		char c = s[i];

		if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
		      c == '_'))
			return false;
	}
	return true;
}

/* Splits pattern into rt->segs; fills err on a bad pattern. */
static enum mk_status
parse_pattern(const char *pattern, struct httpd_route *rt, struct mk_err *err)
{
	const char *p;
	size_t nseg = 0, nparams = 0;

	if (pattern == NULL || pattern[0] != '/')
		return mk_err_set(err, MK_EINVAL,
				  "route pattern \"%s\" must start with '/'",
				  pattern != NULL ? pattern : "(null)");
	if (strcmp(pattern, "/") != 0)
		for (p = pattern; *p != '\0'; p++)
			if (*p == '/')
				nseg++;
	rt->segs = calloc(nseg > 0 ? nseg : 1, sizeof(struct httpd_seg));
	if (rt->segs == NULL)
		return mk_err_set(err, MK_ENOMEM, "out of memory");
	p = pattern + 1;
	for (size_t i = 0; i < nseg; i++) {
		const char *end = strchr(p, '/');
		size_t len = end != NULL ? (size_t)(end - p) : strlen(p);
		struct httpd_seg *s = &rt->segs[i];
		bool param = len >= 2 && p[0] == '{' && p[len - 1] == '}';

		rt->nseg = i + 1;
		if (len == 0)
			return mk_err_set(err, MK_EINVAL,
					  "route pattern \"%s\": empty segment %zu",
					  pattern, i + 1);
		if (param) {
			if (!is_param_name(p + 1, len - 2))
				return mk_err_set(err, MK_EINVAL,
						  "route pattern \"%s\": bad parameter name in segment %zu",
						  pattern, i + 1);
			if (++nparams > HTTPD_MAX_PARAMS)
				return mk_err_set(err, MK_EINVAL,
						  "route pattern \"%s\": more than %d parameters",
						  pattern, HTTPD_MAX_PARAMS);
			s->text = strndup(p + 1, len - 2);
			s->param = true;
			for (size_t j = 0; s->text != NULL && j < i; j++)
				if (rt->segs[j].param &&
				    strcmp(rt->segs[j].text, s->text) == 0)
					return mk_err_set(err, MK_EINVAL,
							  "route pattern \"%s\": parameter {%s} appears twice",
							  pattern, s->text);
		} else {
			if (strcspn(p, "{}?#") < len)
				return mk_err_set(err, MK_EINVAL,
						  "route pattern \"%s\": segment %zu has '{', '}', '?' or '#'",
						  pattern, i + 1);
			s->text = strndup(p, len);
		}
		if (s->text == NULL)
			return mk_err_set(err, MK_ENOMEM, "out of memory");
		p += len + 1;
	}
	return MK_OK;
}

static bool
same_shape(const struct httpd_route *a, const struct httpd_route *b)
{
	if (a->nseg != b->nseg)
		return false;
	for (size_t i = 0; i < a->nseg; i++) {
		if (a->segs[i].param != b->segs[i].param)
			return false;
		if (!a->segs[i].param &&
		    strcmp(a->segs[i].text, b->segs[i].text) != 0)
			return false;
	}
	return true;
}

enum mk_status
httpd_router_add(struct httpd_router *r, enum httpd_method method,
		 const char *pattern, unsigned flags, httpd_handler_fn fn,
		 void *arg, struct mk_err *err)
{
	struct httpd_route rt = { 0 };
	enum mk_status st;

	if (r == NULL || fn == NULL)
		return mk_err_set(err, MK_EINVAL, "route needs a router and a handler");
	if (strcmp(httpd_method_name(method), "?") == 0)
		return mk_err_set(err, MK_EINVAL,
				  "route \"%s\": not exactly one known method",
				  pattern != NULL ? pattern : "(null)");
	if ((flags & ~(HTTPD_ROUTE_AUTH | HTTPD_ROUTE_BODY |
		       HTTPD_ROUTE_STREAM)) != 0)
		return mk_err_set(err, MK_EINVAL, "route \"%s\": unknown flags",
				  pattern != NULL ? pattern : "(null)");
	st = parse_pattern(pattern, &rt, err);
	if (st != MK_OK)
		goto fail;
	rt.method = method;
	rt.flags = flags;
	rt.fn = fn;
	rt.arg = arg;
	rt.pattern = strdup(pattern);
	if (rt.pattern == NULL) {
		st = mk_err_set(err, MK_ENOMEM, "out of memory");
		goto fail;
	}
	for (size_t i = 0; i < r->n; i++)
		if (r->routes[i].method == method &&
		    same_shape(&r->routes[i], &rt)) {
			st = mk_err_set(err, MK_ESTATE,
					"route %s %s clashes with %s %s",
					httpd_method_name(method), pattern,
					httpd_method_name(method),
					r->routes[i].pattern);
			goto fail;
		}
	if (r->n == r->cap) {
		size_t ncap = r->cap > 0 ? r->cap * 2 : 16;
		struct httpd_route *nr = realloc(r->routes, ncap * sizeof *nr);

		if (nr == NULL) {
			st = mk_err_set(err, MK_ENOMEM, "out of memory");
			goto fail;
		}
		r->routes = nr;
		r->cap = ncap;
	}
	r->routes[r->n++] = rt;
	return MK_OK;
fail:
	route_free(&rt);
	return st;
}

int
httpd_router_has_flag(const struct httpd_router *r, unsigned flag)
{
	for (size_t i = 0; r != NULL && i < r->n; i++)
		if ((r->routes[i].flags & flag) != 0)
			return 1;
	return 0;
}

/* Whether a is more specific than b: at the first segment where one is a
 * literal and the other a parameter, the literal wins. */
static bool
more_specific(const struct httpd_route *a, const struct httpd_route *b)
{
	for (size_t i = 0; i < a->nseg; i++)
		if (a->segs[i].param != b->segs[i].param)
			return !a->segs[i].param;
	return false;
}

enum httpd_lookup
httpd_router_lookup(const struct httpd_router *r, enum httpd_method method,
		    char *scratch, struct httpd_match *m)
{
	char *segv[64];
	size_t nseg = 0;
	const struct httpd_route *best = NULL;
	bool best_exact = false;

	memset(m, 0, sizeof *m);
	if (scratch[0] != '/')
		return HTTPD_LOOKUP_NO_PATH;
	if (scratch[1] != '\0') {
		char *p = scratch + 1;

		for (;;) {
			char *slash = strchr(p, '/');

			if (nseg == sizeof segv / sizeof segv[0])
				return HTTPD_LOOKUP_NO_PATH;
			segv[nseg++] = p;
			if (slash == NULL)
				break;
			*slash = '\0';
			p = slash + 1;
		}
	}
	for (size_t i = 0; i < r->n; i++) {
		const struct httpd_route *rt = &r->routes[i];
		bool ok = rt->nseg == nseg, exact;

		for (size_t k = 0; ok && k < nseg; k++)
			ok = rt->segs[k].param ? segv[k][0] != '\0'
					       : strcmp(rt->segs[k].text, segv[k]) == 0;
		if (!ok)
			continue;
		m->allowed |= rt->method;
		if (rt->method == HTTPD_GET)
			m->allowed |= HTTPD_HEAD;
		exact = rt->method == method;
		if (!exact && !(method == HTTPD_HEAD && rt->method == HTTPD_GET))
			continue;
		/* The more specific pattern wins; for the same shape an
		 * explicit HEAD route beats a GET answering HEAD. */
		if (best == NULL || more_specific(rt, best) ||
		    (!more_specific(best, rt) && exact && !best_exact)) {
			best = rt;
			best_exact = exact;
		}
	}
	if (best == NULL)
		return m->allowed != 0 ? HTTPD_LOOKUP_NO_METHOD
				       : HTTPD_LOOKUP_NO_PATH;
	m->route = best;
	for (size_t k = 0; k < nseg; k++)
		if (best->segs[k].param) {
			m->params[m->nparams].name = best->segs[k].text;
			m->params[m->nparams].value = segv[k];
			m->nparams++;
		}
	return HTTPD_LOOKUP_OK;
}
