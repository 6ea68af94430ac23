/*
 * status.h - the one status enum of markd, and an error detail struct.
 *
 * Every fallible function in markd returns an enum mk_status; values come
 * back through out-parameters. Functions that read input from outside
 * (venue bodies, HTTP bodies, config files, CSVs) also take an optional
 * struct mk_err that receives a message naming what was wrong and where.
 * Third-party codes (CURLcode, json_error_t, MHD_Result) never cross the
 * edge of the folder that uses them.
 *
 * Thread safety: everything here is reentrant; an mk_err belongs to its
 * caller.
 */
#ifndef MARKD_AGGREGATOR_STATUS_H
#define MARKD_AGGREGATOR_STATUS_H

#include <stddef.h>

enum mk_status {
	MK_OK = 0,
	MK_ENOMEM,      /* allocation failed */
	MK_EINVAL,      /* an argument or a value is not acceptable */
	MK_EPARSE,      /* malformed input text */
	MK_ERANGE,      /* a value or a result does not fit (overflow) */
	MK_EDIVZERO,    /* division by zero */
	MK_EINEXACT,    /* MK_ROUND_EXACT asked for, but digits would be lost */
	MK_ETOOBIG,     /* input larger than its cap */
	MK_ENOTFOUND,   /* no such key, symbol, market or route */
	MK_EVENUE,      /* the venue answered with its own error envelope */
	MK_ERATELIMIT,  /* the venue rate-limited or banned us */
	MK_EIO,         /* a system call failed; see mk_err.sys_errno */
	MK_ECONFIG,     /* the configuration is invalid */
	MK_ESTATE,      /* operation not allowed in the current state */
};

/* Caller-owned error detail; filled only on failure. NULL is accepted
 * wherever a struct mk_err * is taken. */
struct mk_err {
	enum mk_status code;
	int sys_errno;
	char msg[256];
};

/* Short stable name of a status ("ok", "parse error", ...). Never NULL. */
const char *mk_strstatus(enum mk_status st);

/* Records code and a printf-style message into err (when err is not NULL)
 * and returns code, so callers can write `return mk_err_set(err, ...)`. */
enum mk_status mk_err_set(struct mk_err *err, enum mk_status code,
			  const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Prefixes err->msg with "prefix: " (for adding a location while an error
 * travels up). Returns err->code, or MK_OK when err is NULL. */
enum mk_status mk_err_prefix(struct mk_err *err, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

#endif
