/*
 * check_store.c - the SQLite store (margin/store.h) on real files in a
 * temporary directory: round trips, versions and conflicts, deletes, event
 * paging, reopening, schema migration and refusal, read-only, disk-full
 * and busy errors, argument checks, and a crash test that SIGKILLs a
 * writer (tests/store_crash_child) and checks every acknowledged write.
 */
#include "config.h"

#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <sqlite3.h>

#include "margin/store.h"
#include "tests/testutil.h"

static char tmpdir[512];
static char dbpath[600];

static void
setup(void)
{
	const char *base = getenv("TMPDIR");

	snprintf(tmpdir, sizeof(tmpdir), "%s/markd-store-XXXXXX",
		 base != NULL && base[0] != '\0' ? base : "/tmp");
	ck_assert_msg(mkdtemp(tmpdir) != NULL, "mkdtemp: %s", strerror(errno));
	snprintf(dbpath, sizeof(dbpath), "%s/markd.db", tmpdir);
}

static void
teardown(void)
{
	DIR *d = opendir(tmpdir);
	struct dirent *e;
	char p[1200];

	if (d == NULL)
		return;
	while ((e = readdir(d)) != NULL) {
		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		snprintf(p, sizeof(p), "%s/%s", tmpdir, e->d_name);
		unlink(p);
	}
	closedir(d);
	rmdir(tmpdir);
}

static struct margin_store *
open_ok(const struct margin_store_options *opt)
{
	struct margin_store *st = NULL;
	struct mk_err err = { 0 };
	enum mk_status rs = margin_store_sqlite_open(dbpath, opt, &st, &err);

	ck_assert_msg(rs == MK_OK, "open: %s: %s", mk_strstatus(rs), err.msg);
	ck_assert(st != NULL);
	return st;
}

static int64_t
put_ok(struct margin_store *st, const char *id, const char *sym,
       const char *body, int64_t expected)
{
	struct mk_err err = { 0 };
	int64_t v = -7;
	enum mk_status rs = margin_store_put_position(st, id, sym, body,
						      strlen(body), expected,
						      &v, &err);

	ck_assert_msg(rs == MK_OK, "put %s: %s: %s", id, mk_strstatus(rs),
		      err.msg);
	return v;
}

/* Runs SQL on the file through a plain SQLite connection. */
static void
raw_exec(const char *sql)
{
	sqlite3 *db = NULL;
	char *msg = NULL;
	int rc = sqlite3_open(dbpath, &db);

	ck_assert_int_eq(rc, SQLITE_OK);
	rc = sqlite3_exec(db, sql, NULL, NULL, &msg);
	ck_assert_msg(rc == SQLITE_OK, "raw sql: %s", msg ? msg : "?");
	sqlite3_free(msg);
	ck_assert_int_eq(sqlite3_close(db), SQLITE_OK);
}

static int64_t
raw_int(const char *sql)
{
	sqlite3 *db = NULL;
	sqlite3_stmt *q = NULL;
	int64_t v;

	ck_assert_int_eq(sqlite3_open(dbpath, &db), SQLITE_OK);
	ck_assert_int_eq(sqlite3_prepare_v2(db, sql, -1, &q, NULL), SQLITE_OK);
	ck_assert_int_eq(sqlite3_step(q), SQLITE_ROW);
	v = sqlite3_column_int64(q, 0);
	sqlite3_finalize(q);
	ck_assert_int_eq(sqlite3_close(db), SQLITE_OK);
	return v;
}

/* The whole file, for "unchanged" checks. */
static char *
slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	char *buf;
	long n;

	ck_assert_msg(f != NULL, "open %s: %s", path, strerror(errno));
	ck_assert_int_eq(fseek(f, 0, SEEK_END), 0);
	n = ftell(f);
	ck_assert(n >= 0);
	rewind(f);
	buf = malloc((size_t)n + 1);
	ck_assert(buf != NULL);
	ck_assert_uint_eq(fread(buf, 1, (size_t)n, f), (size_t)n);
	fclose(f);
	*len = (size_t)n;
	return buf;
}

static void
assert_file_same(const char *before, size_t blen)
{
	size_t alen;
	char *after = slurp(dbpath, &alen);

	ck_assert_uint_eq(alen, blen);
	ck_assert(memcmp(before, after, blen) == 0);
	free(after);
}

/* Collects positions into a small table. */
#define MAXROWS 512
struct rows {
	size_t n;
	char id[MAXROWS][MARGIN_STORE_MAX_ID + 1];
	char symbol[MAXROWS][MARGIN_STORE_MAX_SYMBOL + 1];
	int64_t version[MAXROWS];
	char *body[MAXROWS];
	size_t stop_at;         /* 0: never; else return MK_EPARSE there */
	struct margin_store *reenter;
};

static enum mk_status
collect_pos(void *ctx, const struct margin_store_position *p)
{
	struct rows *r = ctx;

	ck_assert_uint_lt(r->n, MAXROWS);
	if (r->reenter != NULL) {
		struct mk_err err = { 0 };
		int64_t v;

		ck_assert_int_eq(margin_store_put_position(r->reenter, "x", "S",
							   "{}", 2, -1, &v,
							   &err), MK_ESTATE);
		ck_assert(strstr(err.msg, "callback") != NULL);
	}
	ck_assert_uint_eq(strlen(p->body), p->body_len);
	snprintf(r->id[r->n], sizeof(r->id[0]), "%s", p->id);
	snprintf(r->symbol[r->n], sizeof(r->symbol[0]), "%s", p->symbol);
	r->version[r->n] = p->version;
	r->body[r->n] = strdup(p->body);
	r->n++;
	if (r->stop_at != 0 && r->n == r->stop_at)
		return MK_EPARSE;
	return MK_OK;
}

static void
rows_free(struct rows *r)
{
	size_t i;

	for (i = 0; i < r->n; i++)
		free(r->body[i]);
	free(r);
}

static struct rows *
load_all(struct margin_store *st)
{
	struct rows *r = calloc(1, sizeof(*r));
	struct mk_err err = { 0 };
	enum mk_status rs;

	ck_assert(r != NULL);
	rs = margin_store_load_positions(st, collect_pos, r, &err);
	ck_assert_msg(rs == MK_OK, "load: %s", err.msg);
	return r;
}

/* Collects events. */
#define MAXEV 4096
struct evs {
	size_t n;
	int64_t seq[MAXEV];
	int64_t time_ms[MAXEV];
	char pid[MAXEV][24];
	char symbol[MAXEV][16];
	char *body[MAXEV];
};

static enum mk_status
collect_ev(void *ctx, const struct margin_store_event *e)
{
	struct evs *v = ctx;

	ck_assert_uint_lt(v->n, MAXEV);
	ck_assert_uint_eq(strlen(e->body), e->body_len);
	v->seq[v->n] = e->seq;
	v->time_ms[v->n] = e->time_ms;
	snprintf(v->pid[v->n], sizeof(v->pid[0]), "%s", e->position_id);
	snprintf(v->symbol[v->n], sizeof(v->symbol[0]), "%s", e->symbol);
	v->body[v->n] = strdup(e->body);
	v->n++;
	return MK_OK;
}

static void
evs_free(struct evs *v)
{
	size_t i;

	for (i = 0; i < v->n; i++)
		free(v->body[i]);
	free(v);
}

/* Every event, through pages of `page`. */
static struct evs *
events_all(struct margin_store *st, size_t page)
{
	struct evs *v = calloc(1, sizeof(*v));
	struct mk_err err = { 0 };
	int64_t since = 0;
	size_t before;
	int guard = 0;

	ck_assert(v != NULL);
	do {
		enum mk_status rs;

		before = v->n;
		rs = margin_store_list_events(st, since, page, collect_ev, v,
					      &err);
		ck_assert_msg(rs == MK_OK, "list_events: %s", err.msg);
		ck_assert_uint_le(v->n - before, page);
		if (v->n > before)
			since = v->seq[v->n - 1];
		ck_assert_int_lt(++guard, MAXEV + 2);
	} while (v->n > before);
	return v;
}

static struct margin_store_event_in
event_in(const char *pid, const char *sym, int64_t t, const char *body)
{
	struct margin_store_event_in e = { pid, sym, t, body, strlen(body) };

	return e;
}

START_TEST(test_round_trip)
{
	struct margin_store *st = open_ok(NULL);
	struct margin_store_position *p = NULL;
	struct mk_err err = { 0 };
	static const char body[] =
		"{\"symbol\":\"BTC-USD\",\"kind\":\"linear\",\"side\":\"long\","
		"\"size\":\"1\",\"entry_price\":\"40000\","
		"\"collateral\":\"2000\",\"note\":\"caf\xc3\xa9 \\\"q\\\"\"}";
	struct rows *r;

	ck_assert_int_eq(put_ok(st, "acct-1/pos-9", "BTC-USD", body, -1), 1);
	ck_assert_int_eq(margin_store_get_position(st, "acct-1/pos-9", &p,
						   &err), MK_OK);
	ck_assert_str_eq(p->id, "acct-1/pos-9");
	ck_assert_str_eq(p->symbol, "BTC-USD");
	ck_assert_str_eq(p->body, body);
	ck_assert_uint_eq(p->body_len, strlen(body));
	ck_assert_int_eq(p->version, 1);
	free(p);

	ck_assert_int_eq(margin_store_get_position(st, "nope", &p, &err),
			 MK_ENOTFOUND);
	ck_assert(strstr(err.msg, "\"nope\"") != NULL);

	/* Lengths travel with the body: bytes past body_len are not kept. */
	ck_assert_int_eq(margin_store_put_position(st, "b", "ETH-USD",
						   "{\"a\":1}GARBAGE", 7, -1,
						   NULL, &err), MK_OK);
	r = load_all(st);
	ck_assert_uint_eq(r->n, 2);
	ck_assert_str_eq(r->id[0], "acct-1/pos-9");
	ck_assert_str_eq(r->id[1], "b");
	ck_assert_str_eq(r->body[1], "{\"a\":1}");
	ck_assert_str_eq(r->symbol[1], "ETH-USD");
	rows_free(r);
	margin_store_close(st);
	margin_store_close(NULL);
}
END_TEST

START_TEST(test_versions_and_conflicts)
{
	struct margin_store *st = open_ok(NULL);
	struct margin_store_position *p = NULL;
	struct mk_err err = { 0 };
	int64_t v = -7;

	/* expected 0: create only. */
	ck_assert_int_eq(put_ok(st, "p", "BTC-USD", "{\"n\":1}", 0), 1);
	ck_assert_int_eq(margin_store_put_position(st, "p", "BTC-USD", "{}", 2,
						   0, &v, &err), MK_ESTATE);
	ck_assert_int_eq(v, -7);
	ck_assert(strstr(err.msg, "exists already (version 1)") != NULL);
	/* expected n: compare and swap. */
	ck_assert_int_eq(put_ok(st, "p", "BTC-USD", "{\"n\":2}", 1), 2);
	ck_assert_int_eq(margin_store_put_position(st, "p", "BTC-USD", "{}", 2,
						   1, &v, &err), MK_ESTATE);
	ck_assert(strstr(err.msg, "version is 2, expected 1") != NULL);
	ck_assert_int_eq(margin_store_put_position(st, "q", "BTC-USD", "{}", 2,
						   5, &v, &err), MK_ESTATE);
	ck_assert(strstr(err.msg, "does not exist") != NULL);
	/* -1: unconditional. */
	ck_assert_int_eq(put_ok(st, "p", "ETH-USD", "{\"n\":3}", -1), 3);
	ck_assert_int_eq(margin_store_get_position(st, "p", &p, &err), MK_OK);
	ck_assert_int_eq(p->version, 3);
	ck_assert_str_eq(p->body, "{\"n\":3}");
	ck_assert_str_eq(p->symbol, "ETH-USD");
	free(p);
	/* A refused write changed nothing. */
	ck_assert_int_eq(margin_store_get_position(st, "q", &p, &err),
			 MK_ENOTFOUND);
	margin_store_close(st);
}
END_TEST

START_TEST(test_delete)
{
	struct margin_store *st = open_ok(NULL);
	struct margin_store_position *p = NULL;
	struct mk_err err = { 0 };
	struct rows *r;

	ck_assert_int_eq(margin_store_delete_position(st, "p", -1, &err),
			 MK_ENOTFOUND);
	ck_assert(strstr(err.msg, "\"p\"") != NULL);
	put_ok(st, "p", "BTC-USD", "{}", -1);
	put_ok(st, "p", "BTC-USD", "{}", -1);
	put_ok(st, "keep", "BTC-USD", "{}", -1);
	ck_assert_int_eq(margin_store_delete_position(st, "p", 1, &err),
			 MK_ESTATE);
	ck_assert_int_eq(margin_store_delete_position(st, "p", 2, &err), MK_OK);
	ck_assert_int_eq(margin_store_get_position(st, "p", &p, &err),
			 MK_ENOTFOUND);
	ck_assert_int_eq(margin_store_delete_position(st, "p", -1, &err),
			 MK_ENOTFOUND);
	/* Created again, it starts over at version 1. */
	ck_assert_int_eq(put_ok(st, "p", "BTC-USD", "{}", 0), 1);
	ck_assert_int_eq(margin_store_delete_position(st, "p", -1, &err), MK_OK);
	r = load_all(st);
	ck_assert_uint_eq(r->n, 1);
	ck_assert_str_eq(r->id[0], "keep");
	rows_free(r);
	margin_store_close(st);
}
END_TEST

START_TEST(test_events_paging)
{
	struct margin_store *st = open_ok(NULL);
	struct mk_err err = { 0 };
	struct evs *v;
	int64_t seq = 0, last = 0, ver = 0;
	char body[64];
	size_t i;

	for (i = 0; i < 25; i++) {
		struct margin_store_event_in e;

		snprintf(body, sizeof(body), "{\"i\":%zu}", i);
		e = event_in(i % 2 ? "a" : "b", "BTC-USD",
			     1700000000000 + (int64_t)i, body);
		if (i == 7) {
			ck_assert_int_eq(margin_store_put_position_with_event(
					 st, "a", "BTC-USD", "{}", 2, -1, &e,
					 &ver, &seq, &err), MK_OK);
			ck_assert_int_eq(ver, 1);
		} else if (i == 8) {
			ck_assert_int_eq(margin_store_delete_position_with_event(
					 st, "a", 1, &e, &seq, &err), MK_OK);
		} else {
			ck_assert_int_eq(margin_store_append_event(st, &e, &seq,
								   &err),
					 MK_OK);
		}
		ck_assert_int_gt(seq, last);
		last = seq;
	}
	/* Pages of 10: 10 + 10 + 5 + an empty one. */
	v = events_all(st, 10);
	ck_assert_uint_eq(v->n, 25);
	for (i = 0; i < 25; i++) {
		snprintf(body, sizeof(body), "{\"i\":%zu}", i);
		ck_assert_str_eq(v->body[i], body);
		ck_assert_str_eq(v->pid[i], i % 2 ? "a" : "b");
		ck_assert_str_eq(v->symbol[i], "BTC-USD");
		ck_assert_int_eq(v->time_ms[i], 1700000000000 + (int64_t)i);
		if (i > 0)
			ck_assert_int_gt(v->seq[i], v->seq[i - 1]);
	}
	ck_assert_int_eq(v->seq[24], last);
	evs_free(v);
	/* Paging from the middle, and past the end. */
	v = calloc(1, sizeof(*v));
	ck_assert_int_eq(margin_store_list_events(st, last - 3, 100, collect_ev,
						  v, &err), MK_OK);
	ck_assert_uint_eq(v->n, 3);
	ck_assert_int_eq(margin_store_list_events(st, last, 100, collect_ev, v,
						  &err), MK_OK);
	ck_assert_uint_eq(v->n, 3);
	evs_free(v);
	ck_assert_int_eq(margin_store_list_events(st, 0, 0, collect_ev, NULL,
						  &err), MK_EINVAL);
	ck_assert_int_eq(margin_store_list_events(st, -1, 5, collect_ev, NULL,
						  &err), MK_EINVAL);
	margin_store_close(st);
}
END_TEST

/* Random writes against a model; close; reopen; everything is back. */
START_TEST(test_reopen_reloads)
{
	enum { NIDS = 200 };
	static int64_t model[NIDS];
	static char mbody[NIDS][64];
	struct tu_rng rng = TU_RNG_INIT(7);
	struct margin_store *st = open_ok(NULL);
	struct mk_err err = { 0 };
	struct rows *r;
	struct evs *v;
	size_t nev = 0, i, live = 0;
	int op;

	memset(model, 0, sizeof(model));
	for (op = 0; op < 1500; op++) {
		int k = (int)(tu_rng_next(&rng) % NIDS);
		char id[16], body[64];

		snprintf(id, sizeof(id), "id-%03d", k);
		if (tu_rng_next(&rng) % 5 == 0 && model[k] > 0) {
			ck_assert_int_eq(margin_store_delete_position(
					 st, id, model[k], &err), MK_OK);
			model[k] = 0;
		} else if (tu_rng_next(&rng) % 4 == 0) {
			struct margin_store_event_in e =
				event_in(id, "BTC-USD", op, "{\"e\":true}");

			ck_assert_int_eq(margin_store_append_event(st, &e, NULL,
								   &err),
					 MK_OK);
			nev++;
		} else {
			snprintf(body, sizeof(body), "{\"op\":%d}", op);
			model[k] = put_ok(st, id, "BTC-USD", body, model[k]);
			snprintf(mbody[k], sizeof(mbody[k]), "%s", body);
		}
	}
	margin_store_close(st);

	st = open_ok(NULL);
	r = load_all(st);
	for (i = 0; i < NIDS; i++)
		live += model[i] > 0;
	ck_assert_uint_eq(r->n, live);
	for (i = 0; i < r->n; i++) {
		int k = atoi(r->id[i] + 3);

		ck_assert_int_eq(r->version[i], model[k]);
		ck_assert_str_eq(r->body[i], mbody[k]);
		if (i > 0)
			ck_assert(strcmp(r->id[i - 1], r->id[i]) < 0);
	}
	rows_free(r);
	v = events_all(st, 64);
	ck_assert_uint_eq(v->n, nev);
	evs_free(v);
	margin_store_close(st);
}
END_TEST

/* Schema 1 exactly as migration 1 creates it, made by hand. */
static const char v1_schema[] =
	"CREATE TABLE schema_version (version INTEGER NOT NULL PRIMARY KEY,"
	" applied_at TEXT NOT NULL) STRICT;"
	"INSERT INTO schema_version VALUES (1, '2024-01-01T00:00:00.000Z');"
	"CREATE TABLE positions (id TEXT NOT NULL PRIMARY KEY,"
	" symbol TEXT NOT NULL, version INTEGER NOT NULL CHECK (version > 0),"
	" body TEXT NOT NULL) STRICT;"
	"CREATE INDEX positions_symbol ON positions (symbol);"
	"INSERT INTO positions VALUES ('old-1', 'BTC-USD', 4, '{\"v\":4}');"
	"INSERT INTO positions VALUES ('old-2', 'ETH-USD', 1, '{\"v\":1}');";

START_TEST(test_migrate_from_v1)
{
	struct margin_store *st;
	struct margin_store_event_in e = event_in("old-1", "BTC-USD", 1, "{}");
	struct mk_err err = { 0 };
	struct rows *r;
	int64_t seq = 0;

	raw_exec(v1_schema);
	st = open_ok(NULL);
	r = load_all(st);
	ck_assert_uint_eq(r->n, 2);
	ck_assert_str_eq(r->id[0], "old-1");
	ck_assert_int_eq(r->version[0], 4);
	ck_assert_str_eq(r->body[0], "{\"v\":4}");
	rows_free(r);
	/* The new table works and versions continue. */
	ck_assert_int_eq(margin_store_append_event(st, &e, &seq, &err), MK_OK);
	ck_assert_int_eq(seq, 1);
	ck_assert_int_eq(put_ok(st, "old-1", "BTC-USD", "{}", 4), 5);
	margin_store_close(st);
	ck_assert_int_eq(raw_int("SELECT max(version) FROM schema_version"),
			 MARGIN_STORE_SCHEMA_VERSION);
	ck_assert_int_eq(raw_int("SELECT count(*) FROM schema_version"),
			 MARGIN_STORE_SCHEMA_VERSION);
	/* Opening again applies nothing more. */
	st = open_ok(NULL);
	margin_store_close(st);
	ck_assert_int_eq(raw_int("SELECT count(*) FROM schema_version"),
			 MARGIN_STORE_SCHEMA_VERSION);
}
END_TEST

/* A migration that fails leaves the file at its old version. */
START_TEST(test_migration_is_atomic)
{
	struct margin_store *st = NULL;
	struct mk_err err = { 0 };
	enum mk_status rs;

	raw_exec(v1_schema);
	raw_exec("CREATE TABLE events (x INTEGER);");
	rs = margin_store_sqlite_open(dbpath, NULL, &st, &err);
	ck_assert_int_eq(rs, MK_EIO);
	ck_assert(st == NULL);
	ck_assert_msg(strstr(err.msg, "migration to schema 2") != NULL &&
		      strstr(err.msg, "already exists") != NULL, "%s", err.msg);
	ck_assert_int_eq(raw_int("SELECT max(version) FROM schema_version"), 1);
	ck_assert_int_eq(raw_int("SELECT count(*) FROM sqlite_schema WHERE"
				 " name = 'events_position'"), 0);
	ck_assert_int_eq(raw_int("SELECT count(*) FROM positions"), 2);
}
END_TEST

START_TEST(test_refuse_newer_schema)
{
	struct margin_store *st = NULL;
	struct margin_store_options ro = { .read_only = 1 };
	struct mk_err err = { 0 };
	char *before;
	size_t blen;

	raw_exec(v1_schema);
	raw_exec("INSERT INTO schema_version VALUES (99, 'future');");
	before = slurp(dbpath, &blen);
	ck_assert_int_eq(margin_store_sqlite_open(dbpath, NULL, &st, &err),
			 MK_ESTATE);
	ck_assert(st == NULL);
	ck_assert_msg(strstr(err.msg, "schema version 99 is newer") != NULL,
		      "%s", err.msg);
	ck_assert_int_eq(margin_store_sqlite_open(dbpath, &ro, &st, &err),
			 MK_ESTATE);
	ck_assert(strstr(err.msg, "newer") != NULL);
	assert_file_same(before, blen);
	free(before);
}
END_TEST

START_TEST(test_refuse_foreign_files)
{
	struct margin_store *st = NULL;
	struct mk_err err = { 0 };
	FILE *f;

	raw_exec("CREATE TABLE customers (name TEXT);");
	ck_assert_int_eq(margin_store_sqlite_open(dbpath, NULL, &st, &err),
			 MK_ESTATE);
	ck_assert(strstr(err.msg, "not a markd store") != NULL);
	ck_assert_int_eq(raw_int("SELECT count(*) FROM sqlite_schema"), 1);

	unlink(dbpath);
	f = fopen(dbpath, "w");
	ck_assert(f != NULL);
	fputs("this is a text file, long enough to look like a header....."
	      "..........................................................\n",
	      f);
	fclose(f);
	ck_assert_int_eq(margin_store_sqlite_open(dbpath, NULL, &st, &err),
			 MK_EIO);
	ck_assert_int_eq(err.sys_errno, EILSEQ);
	ck_assert_msg(strstr(err.msg, "not a database") != NULL, "%s", err.msg);
	ck_assert(st == NULL);
}
END_TEST

START_TEST(test_open_errors)
{
	struct margin_store *st = NULL;
	struct margin_store_options ro = { .read_only = 1 };
	struct mk_err err = { 0 };
	char bad[700];

	snprintf(bad, sizeof(bad), "%s/no/such/dir/x.db", tmpdir);
	ck_assert_int_eq(margin_store_sqlite_open(bad, NULL, &st, &err),
			 MK_EIO);
	ck_assert(strstr(err.msg, bad) != NULL);
	ck_assert(strstr(err.msg, "cannot open") != NULL);
	ck_assert_int_ne(err.sys_errno, 0);
	/* Read-only does not create. */
	ck_assert_int_eq(margin_store_sqlite_open(dbpath, &ro, &st, &err),
			 MK_EIO);
	ck_assert(access(dbpath, F_OK) != 0);
	ck_assert_int_eq(margin_store_sqlite_open("", NULL, &st, &err),
			 MK_EINVAL);
	ck_assert(st == NULL);
}
END_TEST

START_TEST(test_read_only)
{
	struct margin_store_options ro = { .read_only = 1 };
	struct margin_store *st = open_ok(NULL);
	struct margin_store_event_in e = event_in("p1", "BTC-USD", 5, "{}");
	struct mk_err err = { 0 };
	struct rows *r;
	char *before;
	size_t blen;
	int64_t v = -7;

	put_ok(st, "p1", "BTC-USD", "{\"a\":1}", -1);
	ck_assert_int_eq(margin_store_append_event(st, &e, NULL, &err), MK_OK);
	margin_store_close(st);
	before = slurp(dbpath, &blen);

	st = open_ok(&ro);
	r = load_all(st);
	ck_assert_uint_eq(r->n, 1);
	rows_free(r);
	ck_assert_int_eq(margin_store_put_position(st, "p2", "BTC-USD", "{}", 2,
						   -1, &v, &err), MK_EIO);
	ck_assert_int_eq(v, -7);
	ck_assert_int_eq(err.sys_errno, EROFS);
	ck_assert_msg(strstr(err.msg, "put_position \"p2\"") != NULL &&
		      strstr(err.msg, "read-only") != NULL, "%s", err.msg);
	ck_assert_int_eq(margin_store_delete_position(st, "p1", -1, &err),
			 MK_EIO);
	ck_assert_int_eq(err.sys_errno, EROFS);
	ck_assert_int_eq(margin_store_append_event(st, &e, NULL, &err), MK_EIO);
	ck_assert_int_eq(err.sys_errno, EROFS);
	/* Reads still work after refused writes. */
	r = load_all(st);
	ck_assert_uint_eq(r->n, 1);
	ck_assert_int_eq(r->version[0], 1);
	rows_free(r);
	margin_store_close(st);
	assert_file_same(before, blen);
	free(before);

	/* An old schema cannot be migrated read-only. */
	unlink(dbpath);
	raw_exec(v1_schema);
	before = slurp(dbpath, &blen);
	ck_assert_int_eq(margin_store_sqlite_open(dbpath, &ro, &st, &err),
			 MK_ESTATE);
	ck_assert(strstr(err.msg, "read-only") != NULL);
	assert_file_same(before, blen);
	free(before);
}
END_TEST

/* A size cap turns into SQLITE_FULL: the disk-full path, for real. */
START_TEST(test_disk_full)
{
	struct margin_store_options cap = { .max_db_bytes = 96 * 1024 };
	struct margin_store *st = open_ok(&cap);
	struct margin_store_event_in e;
	struct mk_err err = { 0 };
	static char big[3001];
	enum mk_status rs = MK_OK;
	struct rows *r;
	int64_t v = 0, seq = -7;
	int i, acked = 0;
	char id[16];

	memset(big, 'x', sizeof(big) - 1);
	big[0] = '"';
	big[sizeof(big) - 2] = '"';
	for (i = 0; i < 200; i++) {
		snprintf(id, sizeof(id), "p%d", i);
		rs = margin_store_put_position(st, id, "BTC-USD", big,
					       strlen(big), 0, &v, &err);
		if (rs != MK_OK)
			break;
		acked++;
	}
	ck_assert_int_eq(rs, MK_EIO);
	ck_assert_int_gt(acked, 3);
	ck_assert_int_eq(err.sys_errno, ENOSPC);
	ck_assert_msg(strstr(err.msg, "disk full") != NULL, "%s", err.msg);
	/* Still usable: reads, and a write that needs no new page. */
	r = load_all(st);
	ck_assert_uint_eq(r->n, (size_t)acked);
	rows_free(r);
	ck_assert_int_eq(put_ok(st, "p0", "BTC-USD", "{}", 1), 2);
	/* Fill what room is left with events until one does not fit;
	 * then a put with such an event is one transaction: the event does
	 * not fit, so the position is not replaced either. */
	e = event_in("p1", "BTC-USD", 1, big);
	for (i = 0; i < 100; i++)
		if (margin_store_append_event(st, &e, NULL, &err) != MK_OK)
			break;
	ck_assert_int_lt(i, 100);
	ck_assert_int_eq(err.sys_errno, ENOSPC);
	ck_assert_int_eq(margin_store_put_position_with_event(
			 st, "p1", "BTC-USD", "{\"tiny\":1}", 10, 1, &e, &v,
			 &seq, &err), MK_EIO);
	ck_assert_int_eq(err.sys_errno, ENOSPC);
	ck_assert_int_eq(seq, -7);
	margin_store_close(st);
	st = open_ok(NULL);
	r = load_all(st);
	ck_assert_uint_eq(r->n, (size_t)acked);
	ck_assert_str_eq(r->id[1], "p1");
	ck_assert_int_eq(r->version[1], 1);
	ck_assert_str_eq(r->body[1], big);
	rows_free(r);
	margin_store_close(st);
}
END_TEST

/* Another writer holds the lock past the busy timeout. */
START_TEST(test_busy)
{
	struct margin_store_options quick = { .busy_timeout_ms = 50 };
	struct margin_store *st = open_ok(&quick);
	struct mk_err err = { 0 };
	sqlite3 *other = NULL;
	int64_t v = -7;

	ck_assert_int_eq(sqlite3_open(dbpath, &other), SQLITE_OK);
	ck_assert_int_eq(sqlite3_exec(other, "BEGIN IMMEDIATE", NULL, NULL,
				      NULL), SQLITE_OK);
	ck_assert_int_eq(margin_store_put_position(st, "p", "BTC-USD", "{}", 2,
						   -1, &v, &err), MK_EIO);
	ck_assert_int_eq(err.sys_errno, EBUSY);
	ck_assert(strstr(err.msg, "busy") != NULL);
	ck_assert_int_eq(v, -7);
	ck_assert_int_eq(sqlite3_exec(other, "ROLLBACK", NULL, NULL, NULL),
			 SQLITE_OK);
	ck_assert_int_eq(sqlite3_close(other), SQLITE_OK);
	ck_assert_int_eq(put_ok(st, "p", "BTC-USD", "{}", -1), 1);
	margin_store_close(st);
}
END_TEST

START_TEST(test_bad_arguments)
{
	struct margin_store *st = open_ok(NULL);
	struct margin_store_event_in e = event_in("p", "BTC-USD", 1, "{}");
	struct mk_err err = { 0 };
	struct margin_store_position *got = NULL;
	char longid[MARGIN_STORE_MAX_ID + 2];
	int64_t v;

	memset(longid, 'a', sizeof(longid) - 1);
	longid[sizeof(longid) - 1] = '\0';
	ck_assert_int_eq(margin_store_put_position(st, "", "S", "{}", 2, -1,
						   &v, &err), MK_EINVAL);
	ck_assert(strstr(err.msg, "position id is empty") != NULL);
	ck_assert_int_eq(margin_store_put_position(st, longid, "S", "{}", 2,
						   -1, &v, &err), MK_EINVAL);
	ck_assert(strstr(err.msg, "longer than 128") != NULL);
	longid[MARGIN_STORE_MAX_ID] = '\0';
	ck_assert_int_eq(margin_store_put_position(st, longid, "S", "{}", 2,
						   -1, &v, &err), MK_OK);
	ck_assert_int_eq(margin_store_put_position(st, "a\nb", "S", "{}", 2,
						   -1, &v, &err), MK_EINVAL);
	ck_assert(strstr(err.msg, "control character at byte 1") != NULL);
	ck_assert_int_eq(margin_store_put_position(st, "p", NULL, "{}", 2, -1,
						   &v, &err), MK_EINVAL);
	ck_assert_int_eq(margin_store_put_position(st, "p", "S", "{}", 0, -1,
						   &v, &err), MK_EINVAL);
	ck_assert_int_eq(margin_store_put_position(st, "p", "S", "{\0}", 3, -1,
						   &v, &err), MK_EINVAL);
	ck_assert(strstr(err.msg, "NUL") != NULL);
	ck_assert_int_eq(margin_store_put_position(st, "p", "S", "{}",
						   MARGIN_STORE_MAX_BODY + 1,
						   -1, &v, &err), MK_EINVAL);
	ck_assert_int_eq(margin_store_put_position(st, "p", "S", "{}", 2, -2,
						   &v, &err), MK_EINVAL);
	ck_assert(strstr(err.msg, "expected_version") != NULL);
	ck_assert_int_eq(margin_store_delete_position(st, "p", -5, &err),
			 MK_EINVAL);
	e.time_ms = -1;
	ck_assert_int_eq(margin_store_append_event(st, &e, NULL, &err),
			 MK_EINVAL);
	ck_assert(strstr(err.msg, "time_ms") != NULL);
	e.time_ms = 0;
	e.symbol = "";
	ck_assert_int_eq(margin_store_append_event(st, &e, NULL, &err),
			 MK_EINVAL);
	ck_assert(strstr(err.msg, "event symbol") != NULL);
	/* A bad event spoils the whole put. */
	ck_assert_int_eq(margin_store_put_position_with_event(
			 st, "p", "S", "{}", 2, -1, &e, &v, NULL, &err),
			 MK_EINVAL);
	ck_assert_int_eq(margin_store_get_position(st, "p", &got, &err),
			 MK_ENOTFOUND);
	ck_assert(got == NULL);
	margin_store_close(st);
}
END_TEST

START_TEST(test_callbacks)
{
	struct margin_store *st = open_ok(NULL);
	struct mk_err err = { 0 };
	struct rows *r = calloc(1, sizeof(*r));
	int i;
	char id[8];

	for (i = 0; i < 5; i++) {
		snprintf(id, sizeof(id), "p%d", i);
		put_ok(st, id, "BTC-USD", "{}", -1);
	}
	/* A callback's error stops the walk and comes back. */
	r->stop_at = 2;
	ck_assert_int_eq(margin_store_load_positions(st, collect_pos, r, &err),
			 MK_EPARSE);
	ck_assert_uint_eq(r->n, 2);
	rows_free(r);
	/* Calling the store from inside a callback is refused. */
	r = calloc(1, sizeof(*r));
	r->reenter = st;
	ck_assert_int_eq(margin_store_load_positions(st, collect_pos, r, &err),
			 MK_OK);
	ck_assert_uint_eq(r->n, 5);
	rows_free(r);
	/* And the store is fine afterwards. */
	ck_assert_int_eq(put_ok(st, "p0", "BTC-USD", "{}", 1), 2);
	margin_store_close(st);
}
END_TEST

/* --- the crash test ----------------------------------------------------- */

#define CRASH_IDS 40

struct crash_model {
	int64_t version[CRASH_IDS];
	size_t nevents;
	int64_t last_seq;
};

/* What the parent learned from one child's lines. */
struct crash_log {
	int64_t acked_version[CRASH_IDS];
	int touched[CRASH_IDS];
	size_t acked_events;
	int64_t *acked_seqs;
	size_t nseqs, capseqs;
	size_t acks;
	/* The last intent without its acknowledgement. */
	int pending;
	char pend_op[4];
	int pend_id;
	int64_t pend_expected;
};

static int
id_index(const char *id)
{
	int k = -1;

	ck_assert_msg(sscanf(id, "pos-%d", &k) == 1 && k >= 0 && k < CRASH_IDS,
		      "bad id %s", id);
	return k;
}

static void
crash_line(struct crash_log *lg, const struct crash_model *m, char *line)
{
	char kind, op[4], id[24];
	int64_t a = 0, b = 0;
	int n = sscanf(line, "%c %3s %23s %" SCNd64 " %" SCNd64, &kind, op, id,
		       &a, &b);
	int k;

	ck_assert_msg(n >= 3, "bad line from child: %s", line);
	k = id_index(id);
	if (kind == 'W') {
		ck_assert_msg(!lg->pending, "two intents in a row: %s", line);
		lg->pending = 1;
		snprintf(lg->pend_op, sizeof(lg->pend_op), "%s", op);
		lg->pend_id = k;
		lg->pend_expected = a;
		/* The child writes conditionally on what it knows. */
		if (strcmp(op, "E") != 0) {
			int64_t known = lg->touched[k] ? lg->acked_version[k]
						       : m->version[k];
			ck_assert_int_eq(a, known);
		}
		return;
	}
	ck_assert_msg(kind == 'A' && lg->pending && lg->pend_id == k &&
		      strcmp(lg->pend_op, op) == 0, "unexpected ack: %s", line);
	lg->pending = 0;
	lg->acks++;
	if (strcmp(op, "D") == 0) {
		lg->touched[k] = 1;
		lg->acked_version[k] = 0;
		return;
	}
	if (strcmp(op, "P") == 0 || strcmp(op, "PE") == 0) {
		ck_assert_int_eq(a, lg->pend_expected + 1);
		lg->touched[k] = 1;
		lg->acked_version[k] = a;
	}
	if (strcmp(op, "E") == 0 || strcmp(op, "PE") == 0) {
		int64_t seq = strcmp(op, "E") == 0 ? a : b;

		if (lg->nseqs == lg->capseqs) {
			lg->capseqs = lg->capseqs ? 2 * lg->capseqs : 256;
			lg->acked_seqs = realloc(lg->acked_seqs,
						 lg->capseqs * sizeof(int64_t));
			ck_assert(lg->acked_seqs != NULL);
		}
		lg->acked_seqs[lg->nseqs++] = seq;
		lg->acked_events++;
	}
}

static int64_t
ms_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Reads lines from fd into lg until `until` acknowledgements (or EOF when
 * until < 0). Every wait is bounded; returns 1 at EOF. */
static int
crash_read(int fd, struct crash_log *lg, const struct crash_model *m,
	   size_t until, int to_eof, char *buf, size_t *have, size_t cap)
{
	int64_t deadline = ms_now() + 60000;

	for (;;) {
		struct pollfd pfd = { fd, POLLIN, 0 };
		char *nl;
		ssize_t got;
		int pr;

		while ((nl = memchr(buf, '\n', *have)) != NULL) {
			size_t len = (size_t)(nl - buf) + 1;

			*nl = '\0';
			crash_line(lg, m, buf);
			memmove(buf, buf + len, *have - len);
			*have -= len;
			if (!to_eof && lg->acks >= until)
				return 0;
		}
		ck_assert_msg(ms_now() < deadline, "crash child: no progress");
		pr = poll(&pfd, 1, 10000);
		ck_assert_msg(pr > 0, "crash child: silent for 10 s");
		ck_assert_uint_lt(*have, cap);
		got = read(fd, buf + *have, cap - *have);
		ck_assert_msg(got >= 0, "read: %s", strerror(errno));
		if (got == 0) {
			ck_assert_uint_eq(*have, 0); /* no half line */
			return 1;
		}
		*have += (size_t)got;
	}
}

struct verify_ctx {
	int64_t version[CRASH_IDS];
	size_t rows;
};

static enum mk_status
verify_row(void *ctx, const struct margin_store_position *p)
{
	struct verify_ctx *vc = ctx;
	json_error_t jerr;
	json_t *doc;
	int k = id_index(p->id);

	doc = json_loadb(p->body, p->body_len, JSON_REJECT_DUPLICATES, &jerr);
	ck_assert_msg(doc != NULL, "row %s: body does not parse: %s", p->id,
		      jerr.text);
	ck_assert_str_eq(json_string_value(json_object_get(doc, "id")), p->id);
	ck_assert_int_eq(json_integer_value(json_object_get(doc, "version")),
			 p->version);
	ck_assert_str_eq(p->symbol, k % 2 ? "ETH-USD" : "BTC-USD");
	json_decref(doc);
	vc->version[k] = p->version;
	vc->rows++;
	return MK_OK;
}

/* Reopens the store after a kill, checks it against the model and the
 * child's log, and moves the model to what is on disk. */
static void
crash_verify(struct crash_model *m, const struct crash_log *lg)
{
	struct margin_store *st = open_ok(NULL);
	struct mk_err err = { 0 };
	struct verify_ctx vc;
	struct evs *v;
	size_t i, j, expect_ev;
	int k, pend_applied = -1;

	memset(&vc, 0, sizeof(vc));
	ck_assert_int_eq(margin_store_load_positions(st, verify_row, &vc, &err),
			 MK_OK);
	for (k = 0; k < CRASH_IDS; k++) {
		int64_t want = lg->touched[k] ? lg->acked_version[k]
					      : m->version[k];

		if (lg->pending && lg->pend_id == k &&
		    strcmp(lg->pend_op, "E") != 0) {
			/* The write in flight: either before or after. */
			int64_t after = strcmp(lg->pend_op, "D") == 0
					? 0 : lg->pend_expected + 1;

			ck_assert_msg(vc.version[k] == want ||
				      vc.version[k] == after,
				      "pos-%d: version %" PRId64 ", acked %"
				      PRId64 ", in flight %" PRId64, k,
				      vc.version[k], want, after);
			pend_applied = vc.version[k] == after;
		} else {
			ck_assert_msg(vc.version[k] == want,
				      "pos-%d: version %" PRId64 ", acked %"
				      PRId64, k, vc.version[k], want);
		}
	}

	v = events_all(st, 100);
	for (i = 0; i < v->n; i++) {
		json_error_t jerr;
		json_t *doc = json_loads(v->body[i], JSON_REJECT_DUPLICATES,
					 &jerr);

		ck_assert_msg(doc != NULL, "event %" PRId64 ": %s", v->seq[i],
			      jerr.text);
		ck_assert_str_eq(json_string_value(json_object_get(
					 doc, "position_id")), v->pid[i]);
		json_decref(doc);
		if (i > 0)
			ck_assert_int_gt(v->seq[i], v->seq[i - 1]);
	}
	/* Every acknowledged event is there (both lists ascend). */
	for (i = 0, j = 0; i < lg->nseqs; i++) {
		while (j < v->n && v->seq[j] < lg->acked_seqs[i])
			j++;
		ck_assert_msg(j < v->n && v->seq[j] == lg->acked_seqs[i],
			      "acknowledged event %" PRId64 " is missing",
			      lg->acked_seqs[i]);
	}
	expect_ev = m->nevents + lg->acked_events;
	if (lg->pending && strcmp(lg->pend_op, "E") == 0) {
		ck_assert(v->n == expect_ev || v->n == expect_ev + 1);
	} else if (lg->pending && strcmp(lg->pend_op, "PE") == 0) {
		/* Position and event commit together or not at all. */
		ck_assert_uint_eq(v->n, expect_ev + (size_t)pend_applied);
	} else {
		ck_assert_uint_eq(v->n, expect_ev);
	}

	memcpy(m->version, vc.version, sizeof(m->version));
	m->nevents = v->n;
	m->last_seq = v->n > 0 ? v->seq[v->n - 1] : 0;
	evs_free(v);
	margin_store_close(st);
}

START_TEST(test_crash)
{
	static const size_t kill_at[] = { 0, 1, 2, 17, 150, 600 };
	struct crash_model m;
	char child[1024];
	size_t round, total_acks = 0;

	memset(&m, 0, sizeof(m));
	tu_buildpath(child, sizeof(child), "tests/store_crash_child");
	ck_assert_msg(access(child, X_OK) == 0, "%s: %s", child,
		      strerror(errno));
	for (round = 0; round < sizeof(kill_at) / sizeof(kill_at[0]); round++) {
		struct crash_log lg;
		char buf[8192], seed[24];
		size_t have = 0;
		int fds[2], status = 0;
		pid_t pid;

		memset(&lg, 0, sizeof(lg));
		ck_assert_int_eq(pipe2(fds, O_CLOEXEC), 0);
		snprintf(seed, sizeof(seed), "%zu", 1000 + round);
		pid = fork();
		ck_assert_int_ge(pid, 0);
		if (pid == 0) {
			if (dup2(fds[1], STDOUT_FILENO) < 0)
				_exit(126);
			execl(child, child, dbpath, seed, (char *)NULL);
			_exit(127);
		}
		close(fds[1]);
		if (kill_at[round] > 0)
			crash_read(fds[0], &lg, &m, kill_at[round], 0, buf,
				   &have, sizeof(buf));
		ck_assert_int_eq(kill(pid, SIGKILL), 0);
		ck_assert_int_eq(waitpid(pid, &status, 0), pid);
		ck_assert_msg(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL,
			      "child ended by itself (status %d)", status);
		/* Lines already in the pipe are acknowledgements too. */
		crash_read(fds[0], &lg, &m, 0, 1, buf, &have, sizeof(buf));
		close(fds[0]);
		ck_assert_uint_ge(lg.acks, kill_at[round]);
		total_acks += lg.acks;
		crash_verify(&m, &lg);
		free(lg.acked_seqs);
	}
	ck_assert_uint_ge(total_acks, 770);
}
END_TEST

static Suite *
store_suite(void)
{
	Suite *s = suite_create("store");
	TCase *tc = tcase_create("sqlite");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_round_trip);
	tcase_add_test(tc, test_versions_and_conflicts);
	tcase_add_test(tc, test_delete);
	tcase_add_test(tc, test_events_paging);
	tcase_add_test(tc, test_reopen_reloads);
	tcase_add_test(tc, test_migrate_from_v1);
	tcase_add_test(tc, test_migration_is_atomic);
	tcase_add_test(tc, test_refuse_newer_schema);
	tcase_add_test(tc, test_refuse_foreign_files);
	tcase_add_test(tc, test_open_errors);
	tcase_add_test(tc, test_read_only);
	tcase_add_test(tc, test_disk_full);
	tcase_add_test(tc, test_busy);
	tcase_add_test(tc, test_bad_arguments);
	tcase_add_test(tc, test_callbacks);
	tcase_add_test(tc, test_crash);
	suite_add_tcase(s, tc);
	return s;
}

TU_MAIN(store_suite)
