/*
 * auth.h - bearer tokens for the write endpoints.
 *
 * Tokens come from a file: one token per line; '#' starts a comment (a
 * whole line or the rest of one); blank lines are ignored; surrounding
 * spaces, tabs and CRs are trimmed. A token is 16 to 256 characters of the
 * RFC 6750 token68 set (A-Z a-z 0-9 - . _ ~ + / and trailing '='). The
 * file must exist, be at most 1 MiB and hold at least one token (and at
 * most 1024); any other line is an error naming the file and line.
 *
 * Checking compares the presented token against every loaded token over a
 * fixed width, without early exit, so the time taken does not depend on
 * how many characters match nor on which token matched.
 *
 * Thread safety: httpd_auth_check may run on any number of threads while
 * httpd_auth_reload runs on another (a read-write lock guards the token
 * set; reload parses the file before taking the lock, and a bad file
 * leaves the old tokens in place).
 */
#ifndef MARKD_HTTPD_AUTH_H
#define MARKD_HTTPD_AUTH_H

#include <stddef.h>

#include "aggregator/status.h"

#define HTTPD_TOKEN_MIN 16
#define HTTPD_TOKEN_MAX 256
#define HTTPD_TOKENS_MAX 1024

struct httpd_auth;

enum httpd_auth_result {
	HTTPD_AUTH_OK = 0,
	HTTPD_AUTH_MISSING,   /* no Authorization header: 401 */
	HTTPD_AUTH_MALFORMED, /* not "Bearer <token68>": 401 */
	HTTPD_AUTH_DENIED,    /* well-formed, but no such token: 403 */
};

/*
 * Loads the tokens of the file at path. On success *out owns a copy of
 * path (for reloads) and the tokens. Errors: MK_EIO (cannot open or read;
 * err->sys_errno set), MK_ETOOBIG, MK_EPARSE (a bad line: err names file
 * and line, never the token), MK_ECONFIG (no token at all), MK_ENOMEM.
 */
enum mk_status httpd_auth_load(const char *path, struct httpd_auth **out,
			       struct mk_err *err);

/* Re-reads the file given at load. On error the previous tokens stay and
 * the error is returned as for httpd_auth_load. */
enum mk_status httpd_auth_reload(struct httpd_auth *a, struct mk_err *err);

/* Number of tokens loaded. */
size_t httpd_auth_count(struct httpd_auth *a);

/* Checks an Authorization header value (NULL when the header is absent). */
enum httpd_auth_result httpd_auth_check(struct httpd_auth *a,
					const char *authorization);

/* Frees; NULL is accepted. No check may be running. */
void httpd_auth_destroy(struct httpd_auth *a);

#endif
