/*
 * targets_int.h - helpers shared by the fuzz target bodies (targets.c,
 * targets_http.c); not for other code.
 *
 * Thread safety: reentrant. Ownership: markd_fuzz_copy returns a new
 * buffer the caller frees.
 */
#ifndef MARKD_FUZZ_TARGETS_INT_H
#define MARKD_FUZZ_TARGETS_INT_H

#include <stdbool.h>
#include <stddef.h>

#include "aggregator/status.h"

/* Reports a broken promise of the parser under test on stderr
 * ("markd-fuzz TARGET: ...") and aborts: the fuzzer's "crash". */
void markd_fuzz_fail(const char *target, const char *fmt, ...)
	__attribute__((format(printf, 2, 3), noreturn));

/* A copy of p[0..len) in a buffer of exactly len bytes (at least one), so
 * ASan sees any read past the end of a slice of the input. Never NULL
 * (aborts when out of memory). */
char *markd_fuzz_copy(const char *target, const void *p, size_t len);

/* True when s[0..cap) holds a NUL, i.e. the string is terminated. */
bool markd_fuzz_terminated(const char *s, size_t cap);

/* A failed call (`what`, status st) must have left a non-empty,
 * terminated message in err; aborts otherwise. */
void markd_fuzz_check_err(const char *target, const char *what,
			  enum mk_status st, const struct mk_err *err);

#endif
