/*
 * auth.c - bearer tokens: file loading, reload, constant-time check.
 */
#include "config.h"

#include "httpd/auth.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define TOKENS_FILE_MAX (1u << 20)

/* A token padded with zeros to the fixed width compared. */
struct token {
	size_t len;
	unsigned char bytes[HTTPD_TOKEN_MAX];
};

struct token_set {
	size_t n;
	struct token *v;
};

struct httpd_auth {
	char *path;
	pthread_rwlock_t lock;
	struct token_set *set;  /* guarded by lock */
};

static void
set_free(struct token_set *s)
{
	if (s == NULL)
		return;
	free(s->v);
	free(s);
}

static bool
is_token68(const char *s, size_t len)
{
	size_t i = 0;

	while (i < len) {
		char c = s[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		      (c >= '0' && c <= '9') || c == '-' || c == '.' ||
		      c == '_' || c == '~' || c == '+' || c == '/'))
			break;
		i++;
	}
	if (i == 0)
		return false;
	while (i < len && s[i] == '=')
		i++;
	return i == len;
}

/* Reads the whole file at path (capped) into a new NUL-terminated buffer. */
static enum mk_status
slurp(const char *path, char **out, size_t *len, struct mk_err *err)
{
	FILE *f = fopen(path, "rb");
	char *buf = NULL;
	size_t n = 0;
	enum mk_status st = MK_OK;
	int e;

	*out = NULL;
	if (f == NULL) {
		e = errno;
		st = mk_err_set(err, MK_EIO, "tokens file %s: %s", path,
				strerror(e));
		if (err != NULL)
			err->sys_errno = e;
		return st;
	}
	buf = malloc(TOKENS_FILE_MAX + 1);
	if (buf == NULL) {
		st = mk_err_set(err, MK_ENOMEM, "out of memory");
		goto out;
	}
	n = fread(buf, 1, TOKENS_FILE_MAX + 1, f);
	if (ferror(f)) {
		e = errno;
		st = mk_err_set(err, MK_EIO, "tokens file %s: read error: %s",
				path, strerror(e));
		if (err != NULL)
			err->sys_errno = e;
		goto out;
	}
	if (n > TOKENS_FILE_MAX) {
		st = mk_err_set(err, MK_ETOOBIG,
				"tokens file %s: larger than %u bytes", path,
				TOKENS_FILE_MAX);
		goto out;
	}
	buf[n] = '\0';
	*out = buf;
	*len = n;
	buf = NULL;
out:
	free(buf);
	fclose(f);
	return st;
}

static enum mk_status
parse_tokens(const char *path, char *text, size_t len, struct token_set **out,
	     struct mk_err *err)
{
	struct token_set *set = calloc(1, sizeof *set);
	enum mk_status st = MK_OK;
	size_t lineno = 0;
	char *p = text, *end = text + len;

	*out = NULL;
	if (set == NULL)
		return mk_err_set(err, MK_ENOMEM, "out of memory");
	while (p < end) {
		char *nl = memchr(p, '\n', (size_t)(end - p));
		char *eol = nl != NULL ? nl : end;
		char *hash, *b, *e;
		size_t tlen;

		lineno++;
		if (memchr(p, '\0', (size_t)(eol - p)) != NULL) {
			st = mk_err_set(err, MK_EPARSE,
					"tokens file %s line %zu: NUL byte",
					path, lineno);
			goto out;
		}
		*eol = '\0';
		hash = strchr(p, '#');
		if (hash != NULL)
			*hash = '\0';
		b = p;
		while (*b == ' ' || *b == '\t' || *b == '\r')
			b++;
		e = b + strlen(b);
		while (e > b && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r'))
			e--;
		tlen = (size_t)(e - b);
		p = eol + 1;
		if (tlen == 0)
			continue;
		if (!is_token68(b, tlen)) {
			st = mk_err_set(err, MK_EPARSE,
					"tokens file %s line %zu: not a bearer token (allowed: A-Z a-z 0-9 - . _ ~ + / and trailing =, one token per line)",
					path, lineno);
			goto out;
		}
		if (tlen < HTTPD_TOKEN_MIN || tlen > HTTPD_TOKEN_MAX) {
			st = mk_err_set(err, MK_EPARSE,
					"tokens file %s line %zu: token has %zu characters, %d to %d needed",
					path, lineno, tlen, HTTPD_TOKEN_MIN,
					HTTPD_TOKEN_MAX);
			goto out;
		}
		if (set->n == HTTPD_TOKENS_MAX) {
			st = mk_err_set(err, MK_ETOOBIG,
					"tokens file %s line %zu: more than %d tokens",
					path, lineno, HTTPD_TOKENS_MAX);
			goto out;
		}
		if (set->n % 16 == 0) {
			struct token *nv = realloc(set->v, (set->n + 16) *
							   sizeof *nv);

			if (nv == NULL) {
				st = mk_err_set(err, MK_ENOMEM, "out of memory");
				goto out;
			}
			set->v = nv;
		}
		memset(&set->v[set->n], 0, sizeof set->v[set->n]);
		memcpy(set->v[set->n].bytes, b, tlen);
		set->v[set->n].len = tlen;
		set->n++;
	}
	if (set->n == 0) {
		st = mk_err_set(err, MK_ECONFIG,
				"tokens file %s has no token (one per line; '#' starts a comment)",
				path);
		goto out;
	}
	*out = set;
	set = NULL;
out:
	set_free(set);
	return st;
}

static enum mk_status
load_set(const char *path, struct token_set **out, struct mk_err *err)
{
	char *text = NULL;
	size_t len = 0;
	enum mk_status st = slurp(path, &text, &len, err);

	if (st == MK_OK)
		st = parse_tokens(path, text, len, out, err);
	if (text != NULL) {
		/* Tokens are secrets: do not leave them in freed memory. */
		explicit_bzero(text, len);
		free(text);
	}
	return st;
}

enum mk_status
httpd_auth_load(const char *path, struct httpd_auth **out,
		struct mk_err *err)
{
	struct httpd_auth *a = NULL;
	enum mk_status st;

	*out = NULL;
	if (path == NULL || path[0] == '\0')
		return mk_err_set(err, MK_ECONFIG, "no tokens file given");
	a = calloc(1, sizeof *a);
	if (a == NULL)
		return mk_err_set(err, MK_ENOMEM, "out of memory");
	a->path = strdup(path);
	if (a->path == NULL || pthread_rwlock_init(&a->lock, NULL) != 0) {
		free(a->path);
		free(a);
		return mk_err_set(err, MK_ENOMEM, "out of memory");
	}
	st = load_set(path, &a->set, err);
	if (st != MK_OK) {
		httpd_auth_destroy(a);
		return st;
	}
	*out = a;
	return MK_OK;
}

enum mk_status
httpd_auth_reload(struct httpd_auth *a, struct mk_err *err)
{
	struct token_set *fresh = NULL, *old;
	enum mk_status st = load_set(a->path, &fresh, err);

	if (st != MK_OK)
		return st;
	pthread_rwlock_wrlock(&a->lock);
	old = a->set;
	a->set = fresh;
	pthread_rwlock_unlock(&a->lock);
	if (old != NULL)
		explicit_bzero(old->v, old->n * sizeof *old->v);
	set_free(old);
	return MK_OK;
}

size_t
httpd_auth_count(struct httpd_auth *a)
{
	size_t n;

	pthread_rwlock_rdlock(&a->lock);
	n = a->set != NULL ? a->set->n : 0;
	pthread_rwlock_unlock(&a->lock);
	return n;
}

/* 1 when a (presented, padded) equals t over the full width and length;
 * the loop has no data-dependent exit. */
static unsigned
token_eq(const struct token *a, const struct token *t)
{
	volatile unsigned char diff = 0;
	size_t ld = a->len ^ t->len;

	for (size_t i = 0; i < HTTPD_TOKEN_MAX; i++)
		diff |= a->bytes[i] ^ t->bytes[i];
	return ((unsigned)diff | (unsigned)(ld != 0)) == 0;
}

enum httpd_auth_result
httpd_auth_check(struct httpd_auth *a, const char *authorization)
{
	struct token presented;
	const char *p;
	size_t len;
	unsigned found = 0;

	if (authorization == NULL)
		return HTTPD_AUTH_MISSING;
	p = authorization;
	while (*p == ' ' || *p == '\t')
		p++;
	if (strncasecmp(p, "Bearer", 6) != 0 || (p[6] != ' ' && p[6] != '\t'))
		return HTTPD_AUTH_MALFORMED;
	p += 6;
	while (*p == ' ' || *p == '\t')
		p++;
	len = strlen(p);
	while (len > 0 && (p[len - 1] == ' ' || p[len - 1] == '\t'))
		len--;
	if (!is_token68(p, len))
		return HTTPD_AUTH_MALFORMED;
	if (len > HTTPD_TOKEN_MAX)
		return HTTPD_AUTH_DENIED; /* cannot equal any loaded token */
	memset(&presented, 0, sizeof presented);
	memcpy(presented.bytes, p, len);
	presented.len = len;

	pthread_rwlock_rdlock(&a->lock);
	for (size_t i = 0; a->set != NULL && i < a->set->n; i++)
		found |= token_eq(&presented, &a->set->v[i]);
	pthread_rwlock_unlock(&a->lock);
	explicit_bzero(&presented, sizeof presented);
	return found != 0 ? HTTPD_AUTH_OK : HTTPD_AUTH_DENIED;
}

void
httpd_auth_destroy(struct httpd_auth *a)
{
	if (a == NULL)
		return;
	if (a->set != NULL)
		explicit_bzero(a->set->v, a->set->n * sizeof *a->set->v);
	set_free(a->set);
	pthread_rwlock_destroy(&a->lock);
	free(a->path);
	free(a);
}
