#include "config.h"

#include "aggregator/status.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

const char *
mk_strstatus(enum mk_status st)
{
	switch (st) {
	case MK_OK: return "ok";
	case MK_ENOMEM: return "out of memory";
	case MK_EINVAL: return "invalid value";
	case MK_EPARSE: return "parse error";
	case MK_ERANGE: return "out of range";
	case MK_EDIVZERO: return "division by zero";
	case MK_EINEXACT: return "inexact";
	case MK_ETOOBIG: return "too large";
	case MK_ENOTFOUND: return "not found";
	case MK_EVENUE: return "venue error";
	case MK_ERATELIMIT: return "rate limited";
	case MK_EIO: return "i/o error";
	case MK_ECONFIG: return "configuration error";
	case MK_ESTATE: return "bad state";
	}
	return "unknown status";
}

enum mk_status
mk_err_set(struct mk_err *err, enum mk_status code, const char *fmt, ...)
{
	va_list ap;

	if (err == NULL)
		return code;
	err->code = code;
	err->sys_errno = 0;
	va_start(ap, fmt);
	vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
	va_end(ap);
	return code;
}

enum mk_status
mk_err_prefix(struct mk_err *err, const char *fmt, ...)
{
	char old[sizeof(err->msg)];
	va_list ap;
	int n;
	size_t used, rest;

	if (err == NULL)
		return MK_OK;
	memcpy(old, err->msg, sizeof(old));
	old[sizeof(old) - 1] = '\0';
	va_start(ap, fmt);
	n = vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
	va_end(ap);
	used = n < 0 ? 0 : (size_t)n;
	if (used + 3 >= sizeof(err->msg))
		return err->code; /* the prefix alone fills the message */
	memcpy(err->msg + used, ": ", 2);
	used += 2;
	rest = sizeof(err->msg) - used - 1;
	n = (int)strlen(old);
	if ((size_t)n < rest)
		rest = (size_t)n;
	memcpy(err->msg + used, old, rest);
	err->msg[used + rest] = '\0';
	return err->code;
}
