/*
 * store_crash_child.c - the victim of check_store's crash test.
 *
 * Usage: store_crash_child DBPATH SEED
 *
 * Opens the store, learns the current version of every position from it,
 * then writes forever (up to a bound): conditional puts, puts with an
 * event, deletes and plain events on 40 ids, chosen by a seeded PRNG.
 * Before each write it prints an intent line, and after the write function
 * returned MK_OK (the commit) an acknowledgement line, each with one
 * write(2) so the parent never sees half a line:
 *   W P id expected      ->  A P id new_version
 *   W PE id expected     ->  A PE id new_version seq
 *   W D id version       ->  A D id
 *   W E id               ->  A E id seq
 * Each position body is {"id":ID,"version":V,"pad":"..."} with V the
 * version the write will create, so the parent can check that body and
 * version were written together. The parent kills it with SIGKILL.
 * Exit status: 0 after the bound, 2 usage, 3 a store error (on stderr).
 */
#include "config.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "margin/store.h"
#include "tests/testutil.h"

#define NIDS 40
#define MAX_OPS 200000

static int64_t versions[NIDS];

static void
say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void
say(const char *fmt, ...)
{
	char line[160];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (n <= 0 || (size_t)n >= sizeof(line) ||
	    write(STDOUT_FILENO, line, (size_t)n) != (ssize_t)n)
		exit(3);
}

static void
die(const char *what, enum mk_status st, const struct mk_err *err)
{
	fprintf(stderr, "store_crash_child: %s: %s: %s\n", what,
		mk_strstatus(st), err->msg);
	exit(3);
}

static enum mk_status
learn(void *ctx, const struct margin_store_position *p)
{
	int k;

	(void)ctx;
	if (sscanf(p->id, "pos-%d", &k) == 1 && k >= 0 && k < NIDS)
		versions[k] = p->version;
	return MK_OK;
}

int
main(int argc, char **argv)
{
	static char body[4096];
	struct margin_store *st = NULL;
	struct mk_err err = { 0 };
	struct tu_rng rng;
	enum mk_status rs;
	long n;

	if (argc != 3) {
		fprintf(stderr, "usage: store_crash_child DBPATH SEED\n");
		return 2;
	}
	rng = TU_RNG_INIT(strtoull(argv[2], NULL, 10));
	rs = margin_store_sqlite_open(argv[1], NULL, &st, &err);
	if (rs != MK_OK)
		die("open", rs, &err);
	rs = margin_store_load_positions(st, learn, NULL, &err);
	if (rs != MK_OK)
		die("load", rs, &err);

	for (n = 0; n < MAX_OPS; n++) {
		int k = (int)(tu_rng_next(&rng) % NIDS);
		unsigned kind = (unsigned)(tu_rng_next(&rng) % 10u);
		size_t pad = (size_t)(tu_rng_next(&rng) % 3000u);
		char id[16], evbody[96];
		const char *sym = k % 2 ? "ETH-USD" : "BTC-USD";
		struct margin_store_event_in ev;
		int64_t v = 0, seq = 0;
		int blen;

		snprintf(id, sizeof(id), "pos-%d", k);
		snprintf(evbody, sizeof(evbody),
			 "{\"position_id\":\"%s\",\"n\":%ld}", id, n);
		ev.position_id = id;
		ev.symbol = sym;
		ev.time_ms = 1700000000000 + n;
		ev.body = evbody;
		ev.body_len = strlen(evbody);
		if (kind == 0 && versions[k] > 0) {
			say("W D %s %" PRId64 "\n", id, versions[k]);
			rs = margin_store_delete_position(st, id, versions[k],
							  &err);
			if (rs != MK_OK)
				die("delete", rs, &err);
			versions[k] = 0;
			say("A D %s\n", id);
			continue;
		}
		if (kind == 1) {
			say("W E %s\n", id);
			rs = margin_store_append_event(st, &ev, &seq, &err);
			if (rs != MK_OK)
				die("append_event", rs, &err);
			say("A E %s %" PRId64 "\n", id, seq);
			continue;
		}
		blen = snprintf(body, sizeof(body),
				"{\"id\":\"%s\",\"version\":%" PRId64
				",\"pad\":\"%*s\"}", id, versions[k] + 1,
				(int)pad, "");
		if (blen <= 0 || (size_t)blen >= sizeof(body))
			return 3;
		if (kind <= 3) {
			say("W PE %s %" PRId64 "\n", id, versions[k]);
			rs = margin_store_put_position_with_event(
				st, id, sym, body, (size_t)blen, versions[k],
				&ev, &v, &seq, &err);
			if (rs != MK_OK)
				die("put_position_with_event", rs, &err);
			versions[k] = v;
			say("A PE %s %" PRId64 " %" PRId64 "\n", id, v, seq);
		} else {
			say("W P %s %" PRId64 "\n", id, versions[k]);
			rs = margin_store_put_position(st, id, sym, body,
						       (size_t)blen,
						       versions[k], &v, &err);
			if (rs != MK_OK)
				die("put_position", rs, &err);
			versions[k] = v;
			say("A P %s %" PRId64 "\n", id, v);
		}
	}
	margin_store_close(st);
	return 0;
}
