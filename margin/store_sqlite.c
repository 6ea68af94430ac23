/*
 * store_sqlite.c - the SQLite back end of margin/store.h.
 *
 * One connection, opened without SQLite's own mutexes (the store is used
 * by one thread at a time), in WAL mode with synchronous=FULL so that a
 * COMMIT that returned has reached the disk. Every write is one
 * BEGIN IMMEDIATE ... COMMIT transaction; statements are prepared once at
 * open and reset after each use. SQLite result codes stop here: each one
 * becomes an mk_status with a message and an errno-style reason.
 *
 * The schema and its migrations are listed in migrations[] below; the
 * table schema_version records which ones ran (doc/store.md).
 */
#include "config.h"

#include "margin/store.h"

#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#define DEFAULT_BUSY_TIMEOUT_MS 5000

/*
 * Migration n (1-based) takes the schema from version n - 1 to n. Never
 * edit one that has shipped: add a new one at the end and raise
 * MARGIN_STORE_SCHEMA_VERSION.
 */
static const char *const migrations[] = {
	/* 1: registered positions. */
	"CREATE TABLE positions ("
	" id TEXT NOT NULL PRIMARY KEY,"
	" symbol TEXT NOT NULL,"
	" version INTEGER NOT NULL CHECK (version > 0),"
	" body TEXT NOT NULL"
	") STRICT;"
	"CREATE INDEX positions_symbol ON positions (symbol);",
	/* 2: the event log (state transitions, liquidations). Events keep
	 * the position id as text with no foreign key: they outlive the
	 * position. AUTOINCREMENT: a seq is never reused. */
	"CREATE TABLE events ("
	" seq INTEGER PRIMARY KEY AUTOINCREMENT,"
	" position_id TEXT NOT NULL,"
	" symbol TEXT NOT NULL,"
	" time_ms INTEGER NOT NULL CHECK (time_ms >= 0),"
	" body TEXT NOT NULL"
	") STRICT;"
	"CREATE INDEX events_position ON events (position_id, seq);",
};

_Static_assert(sizeof(migrations) / sizeof(migrations[0]) ==
	       MARGIN_STORE_SCHEMA_VERSION,
	       "one migration per schema version");

enum stmt_id {
	S_BEGIN,
	S_COMMIT,
	S_ROLLBACK,
	S_VERSION,
	S_GET,
	S_INSERT,
	S_UPDATE,
	S_DELETE,
	S_LOAD,
	S_EV_INSERT,
	S_EV_LIST,
	S_COUNT
};

static const char *const stmt_sql[S_COUNT] = {
	[S_BEGIN] = "BEGIN IMMEDIATE",
	[S_COMMIT] = "COMMIT",
	[S_ROLLBACK] = "ROLLBACK",
	[S_VERSION] = "SELECT version FROM positions WHERE id = ?1",
	[S_GET] = "SELECT id, symbol, version, body FROM positions"
		  " WHERE id = ?1",
	[S_INSERT] = "INSERT INTO positions (id, symbol, version, body)"
		     " VALUES (?1, ?2, 1, ?3)",
	[S_UPDATE] = "UPDATE positions SET symbol = ?2, body = ?3,"
		     " version = version + 1 WHERE id = ?1",
	[S_DELETE] = "DELETE FROM positions WHERE id = ?1",
	[S_LOAD] = "SELECT id, symbol, version, body FROM positions"
		   " ORDER BY id",
	[S_EV_INSERT] = "INSERT INTO events (position_id, symbol, time_ms,"
			" body) VALUES (?1, ?2, ?3, ?4)",
	[S_EV_LIST] = "SELECT seq, position_id, symbol, time_ms, body"
		      " FROM events WHERE seq > ?1 ORDER BY seq LIMIT ?2",
};

struct sq_store {
	struct margin_store base;       /* first: the generic handle */
	sqlite3 *db;
	int read_only;
	int in_callback;                /* a read is calling out */
	sqlite3_stmt *stmt[S_COUNT];
};

static const struct margin_store_ops sq_ops;

static struct sq_store *
sq(struct margin_store *st)
{
	assert(st != NULL && st->ops == &sq_ops);
	return (struct sq_store *)st;
}

/*
 * Records a SQLite failure: "store OP: sqlite's message (kind, sqlite
 * error N)" with an errno-style reason in err->sys_errno (store.h lists
 * them). Returns the mk_status for rc.
 */
static enum mk_status
db_fail(sqlite3 *db, int rc, struct mk_err *err, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static enum mk_status
db_fail(sqlite3 *db, int rc, struct mk_err *err, const char *fmt, ...)
{
	char what[160];
	const char *kind, *text;
	enum mk_status code = MK_EIO;
	int eno, sys = db != NULL ? sqlite3_system_errno(db) : 0;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	switch (rc & 0xff) {
	case SQLITE_FULL:
		kind = "disk full";
		eno = ENOSPC;
		break;
	case SQLITE_READONLY:
		kind = "read-only";
		eno = EROFS;
		break;
	case SQLITE_CANTOPEN:
	case SQLITE_PERM:
	case SQLITE_AUTH:
		kind = "cannot open";
		eno = sys != 0 ? sys : EACCES;
		break;
	case SQLITE_BUSY:
	case SQLITE_LOCKED:
		kind = "busy";
		eno = EBUSY;
		break;
	case SQLITE_CORRUPT:
	case SQLITE_NOTADB:
	case SQLITE_FORMAT:
		kind = "corrupt";
		eno = EILSEQ;
		break;
	case SQLITE_NOMEM:
		kind = "out of memory";
		eno = ENOMEM;
		code = MK_ENOMEM;
		break;
	case SQLITE_TOOBIG:
		kind = "too big";
		eno = E2BIG;
		code = MK_ETOOBIG;
		break;
	case SQLITE_IOERR:
		kind = "i/o error";
		eno = sys != 0 ? sys : EIO;
		break;
	default:
		kind = "database error";
		eno = EIO;
		break;
	}
	text = db != NULL ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
	mk_err_set(err, code, "store %s: %s (%s, sqlite error %d)", what, text,
		   kind, rc);
	if (err != NULL)
		err->sys_errno = eno;
	return code;
}

/* Steps a statement that returns no row. */
static int
run(sqlite3_stmt *s)
{
	int rc = sqlite3_step(s);

	sqlite3_reset(s);
	return rc == SQLITE_DONE ? SQLITE_OK : rc;
}

static void
finish(sqlite3_stmt *s)
{
	sqlite3_reset(s);
	sqlite3_clear_bindings(s);
}

/* Binds text the caller guarantees to keep alive until finish(). */
static int
bind_text(sqlite3_stmt *s, int idx, const char *text, size_t len)
{
	assert(len <= MARGIN_STORE_MAX_BODY);
	return sqlite3_bind_text(s, idx, text, (int)len, SQLITE_STATIC);
}

/* A text column's bytes and length (never NULL: "" for NULL). */
static const char *
col_text(sqlite3_stmt *s, int col, size_t *len)
{
	const unsigned char *t = sqlite3_column_text(s, col);
	int n = sqlite3_column_bytes(s, col);

	*len = t != NULL && n > 0 ? (size_t)n : 0;
	return t != NULL ? (const char *)t : "";
}

/* --- argument checks ------------------------------------------------ */

static enum mk_status
check_name(const char *what, const char *s, size_t max, struct mk_err *err)
{
	size_t n, i;

	if (s == NULL || s[0] == '\0')
		return mk_err_set(err, MK_EINVAL, "store: %s is empty", what);
	n = strnlen(s, max + 1);
	if (n > max)
		return mk_err_set(err, MK_EINVAL,
				  "store: %s is longer than %zu bytes", what,
				  max);
	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c < 0x20 || c == 0x7f)
			return mk_err_set(err, MK_EINVAL,
					  "store: %s has a control character"
					  " at byte %zu", what, i);
	}
	return MK_OK;
}

static enum mk_status
check_body(const char *what, const char *body, size_t len,
	   struct mk_err *err)
{
	if (body == NULL || len == 0)
		return mk_err_set(err, MK_EINVAL, "store: %s is empty", what);
	if (len > MARGIN_STORE_MAX_BODY)
		return mk_err_set(err, MK_EINVAL,
				  "store: %s is %zu bytes, more than %d",
				  what, len, MARGIN_STORE_MAX_BODY);
	if (memchr(body, '\0', len) != NULL)
		return mk_err_set(err, MK_EINVAL, "store: %s holds a NUL byte",
				  what);
	return MK_OK;
}

static enum mk_status
check_event(const struct margin_store_event_in *ev, struct mk_err *err)
{
	enum mk_status st;

	st = check_name("event position_id", ev->position_id,
			MARGIN_STORE_MAX_ID, err);
	if (st == MK_OK)
		st = check_name("event symbol", ev->symbol,
				MARGIN_STORE_MAX_SYMBOL, err);
	if (st == MK_OK)
		st = check_body("event body", ev->body, ev->body_len, err);
	if (st == MK_OK && ev->time_ms < 0)
		st = mk_err_set(err, MK_EINVAL,
				"store: event time_ms %" PRId64 " is negative",
				ev->time_ms);
	return st;
}

static enum mk_status
check_usable(struct sq_store *s, const char *op, struct mk_err *err)
{
	if (s->in_callback)
		return mk_err_set(err, MK_ESTATE,
				  "store %s: called from a store callback", op);
	return MK_OK;
}

/* --- transactions ----------------------------------------------------- */

static enum mk_status
tx_begin(struct sq_store *s, const char *op, const char *id,
	 struct mk_err *err)
{
	int rc = run(s->stmt[S_BEGIN]);

	if (rc != SQLITE_OK)
		return db_fail(s->db, rc, err, "%s \"%s\": begin", op, id);
	return MK_OK;
}

static void
tx_rollback(struct sq_store *s)
{
	/* A failed statement may have rolled back already. */
	if (!sqlite3_get_autocommit(s->db))
		(void)run(s->stmt[S_ROLLBACK]);
}

/* Commits; on failure rolls back whatever is left and reports it. */
static enum mk_status
tx_commit(struct sq_store *s, const char *op, const char *id,
	  struct mk_err *err)
{
	int rc = run(s->stmt[S_COMMIT]);
	enum mk_status st;

	if (rc == SQLITE_OK)
		return MK_OK;
	st = db_fail(s->db, rc, err, "%s \"%s\": commit", op, id);
	tx_rollback(s);
	return st;
}

/* Inserts an event inside the current transaction. */
static enum mk_status
insert_event(struct sq_store *s, const char *op,
	     const struct margin_store_event_in *ev, int64_t *seq,
	     struct mk_err *err)
{
	sqlite3_stmt *q = s->stmt[S_EV_INSERT];
	int rc;

	rc = bind_text(q, 1, ev->position_id, strlen(ev->position_id));
	if (rc == SQLITE_OK)
		rc = bind_text(q, 2, ev->symbol, strlen(ev->symbol));
	if (rc == SQLITE_OK)
		rc = sqlite3_bind_int64(q, 3, ev->time_ms);
	if (rc == SQLITE_OK)
		rc = bind_text(q, 4, ev->body, ev->body_len);
	if (rc == SQLITE_OK)
		rc = run(q);
	finish(q);
	if (rc != SQLITE_OK)
		return db_fail(s->db, rc, err, "%s \"%s\": event", op,
			       ev->position_id);
	*seq = sqlite3_last_insert_rowid(s->db);
	return MK_OK;
}

/* Current version of position id inside the transaction (0: absent). */
static enum mk_status
current_version(struct sq_store *s, const char *op, const char *id,
		int64_t *version, struct mk_err *err)
{
	sqlite3_stmt *q = s->stmt[S_VERSION];
	int rc = bind_text(q, 1, id, strlen(id));

	if (rc == SQLITE_OK)
		rc = sqlite3_step(q);
	if (rc == SQLITE_ROW) {
		*version = sqlite3_column_int64(q, 0);
		rc = SQLITE_OK;
	} else if (rc == SQLITE_DONE) {
		*version = 0;
		rc = SQLITE_OK;
	}
	finish(q);
	if (rc != SQLITE_OK)
		return db_fail(s->db, rc, err, "%s \"%s\": read version", op,
			       id);
	return MK_OK;
}

/* MK_ESTATE when expected (>= 0) is not the current version. */
static enum mk_status
check_expected(const char *op, const char *id, int64_t expected,
	       int64_t current, struct mk_err *err)
{
	if (expected < 0 || expected == current)
		return MK_OK;
	if (current == 0)
		return mk_err_set(err, MK_ESTATE,
				  "store %s \"%s\": version conflict: the"
				  " position does not exist, expected version"
				  " %" PRId64, op, id, expected);
	if (expected == 0)
		return mk_err_set(err, MK_ESTATE,
				  "store %s \"%s\": version conflict: the"
				  " position exists already (version %" PRId64
				  ")", op, id, current);
	return mk_err_set(err, MK_ESTATE,
			  "store %s \"%s\": version conflict: version is %"
			  PRId64 ", expected %" PRId64, op, id, current,
			  expected);
}

/* --- operations -------------------------------------------------------- */

static enum mk_status
sq_put_position(struct margin_store *st, const char *id, const char *symbol,
		const char *body, size_t body_len, int64_t expected_version,
		const struct margin_store_event_in *ev, int64_t *new_version,
		int64_t *seq, struct mk_err *err)
{
	static const char op[] = "put_position";
	struct sq_store *s = sq(st);
	sqlite3_stmt *q;
	int64_t cur = 0, evseq = 0;
	enum mk_status rs;
	int rc;

	rs = check_usable(s, op, err);
	if (rs == MK_OK)
		rs = check_name("position id", id, MARGIN_STORE_MAX_ID, err);
	if (rs == MK_OK)
		rs = check_name("symbol", symbol, MARGIN_STORE_MAX_SYMBOL, err);
	if (rs == MK_OK)
		rs = check_body("position body", body, body_len, err);
	if (rs == MK_OK && ev != NULL)
		rs = check_event(ev, err);
	if (rs == MK_OK && expected_version < -1)
		rs = mk_err_set(err, MK_EINVAL,
				"store: expected_version %" PRId64
				" is below -1", expected_version);
	if (rs != MK_OK)
		return rs;

	rs = tx_begin(s, op, id, err);
	if (rs != MK_OK)
		return rs;
	rs = current_version(s, op, id, &cur, err);
	if (rs == MK_OK)
		rs = check_expected(op, id, expected_version, cur, err);
	if (rs == MK_OK && cur == INT64_MAX)
		rs = mk_err_set(err, MK_ERANGE,
				"store %s \"%s\": version overflow", op, id);
	if (rs != MK_OK)
		goto fail;

	q = s->stmt[cur == 0 ? S_INSERT : S_UPDATE];
	rc = bind_text(q, 1, id, strlen(id));
	if (rc == SQLITE_OK)
		rc = bind_text(q, 2, symbol, strlen(symbol));
	if (rc == SQLITE_OK)
		rc = bind_text(q, 3, body, body_len);
	if (rc == SQLITE_OK)
		rc = run(q);
	finish(q);
	if (rc != SQLITE_OK) {
		rs = db_fail(s->db, rc, err, "%s \"%s\": write", op, id);
		goto fail;
	}
	if (ev != NULL) {
		rs = insert_event(s, op, ev, &evseq, err);
		if (rs != MK_OK)
			goto fail;
	}
	rs = tx_commit(s, op, id, err);
	if (rs != MK_OK)
		return rs;
	if (new_version != NULL)
		*new_version = cur + 1;
	if (seq != NULL && ev != NULL)
		*seq = evseq;
	return MK_OK;
fail:
	tx_rollback(s);
	return rs;
}

static enum mk_status
sq_delete_position(struct margin_store *st, const char *id,
		   int64_t expected_version,
		   const struct margin_store_event_in *ev, int64_t *seq,
		   struct mk_err *err)
{
	static const char op[] = "delete_position";
	struct sq_store *s = sq(st);
	int64_t cur = 0, evseq = 0;
	enum mk_status rs;
	int rc;

	rs = check_usable(s, op, err);
	if (rs == MK_OK)
		rs = check_name("position id", id, MARGIN_STORE_MAX_ID, err);
	if (rs == MK_OK && ev != NULL)
		rs = check_event(ev, err);
	if (rs == MK_OK && expected_version < -1)
		rs = mk_err_set(err, MK_EINVAL,
				"store: expected_version %" PRId64
				" is below -1", expected_version);
	if (rs != MK_OK)
		return rs;

	rs = tx_begin(s, op, id, err);
	if (rs != MK_OK)
		return rs;
	rs = current_version(s, op, id, &cur, err);
	if (rs == MK_OK && cur == 0)
		rs = mk_err_set(err, MK_ENOTFOUND,
				"store %s: no position \"%s\"", op, id);
	if (rs == MK_OK)
		rs = check_expected(op, id, expected_version, cur, err);
	if (rs != MK_OK)
		goto fail;
	rc = bind_text(s->stmt[S_DELETE], 1, id, strlen(id));
	if (rc == SQLITE_OK)
		rc = run(s->stmt[S_DELETE]);
	finish(s->stmt[S_DELETE]);
	if (rc != SQLITE_OK) {
		rs = db_fail(s->db, rc, err, "%s \"%s\": write", op, id);
		goto fail;
	}
	if (ev != NULL) {
		rs = insert_event(s, op, ev, &evseq, err);
		if (rs != MK_OK)
			goto fail;
	}
	rs = tx_commit(s, op, id, err);
	if (rs != MK_OK)
		return rs;
	if (seq != NULL && ev != NULL)
		*seq = evseq;
	return MK_OK;
fail:
	tx_rollback(s);
	return rs;
}

static enum mk_status
sq_append_event(struct margin_store *st,
		const struct margin_store_event_in *ev, int64_t *seq,
		struct mk_err *err)
{
	static const char op[] = "append_event";
	struct sq_store *s = sq(st);
	int64_t evseq = 0;
	enum mk_status rs;

	rs = check_usable(s, op, err);
	if (rs == MK_OK)
		rs = check_event(ev, err);
	if (rs != MK_OK)
		return rs;
	rs = tx_begin(s, op, ev->position_id, err);
	if (rs != MK_OK)
		return rs;
	rs = insert_event(s, op, ev, &evseq, err);
	if (rs != MK_OK) {
		tx_rollback(s);
		return rs;
	}
	rs = tx_commit(s, op, ev->position_id, err);
	if (rs == MK_OK && seq != NULL)
		*seq = evseq;
	return rs;
}

/* Fills a position record from a row of S_GET or S_LOAD. */
static void
row_position(sqlite3_stmt *q, struct margin_store_position *p)
{
	size_t len;

	p->id = col_text(q, 0, &len);
	p->symbol = col_text(q, 1, &len);
	p->version = sqlite3_column_int64(q, 2);
	p->body = col_text(q, 3, &p->body_len);
}

static enum mk_status
sq_get_position(struct margin_store *st, const char *id,
		struct margin_store_position **out, struct mk_err *err)
{
	static const char op[] = "get_position";
	struct sq_store *s = sq(st);
	sqlite3_stmt *q = s->stmt[S_GET];
	struct margin_store_position row, *copy;
	size_t idn, symn, total;
	enum mk_status rs;
	char *p;
	int rc;

	rs = check_usable(s, op, err);
	if (rs == MK_OK)
		rs = check_name("position id", id, MARGIN_STORE_MAX_ID, err);
	if (rs != MK_OK)
		return rs;
	rc = bind_text(q, 1, id, strlen(id));
	if (rc == SQLITE_OK)
		rc = sqlite3_step(q);
	if (rc == SQLITE_DONE) {
		rs = mk_err_set(err, MK_ENOTFOUND, "store %s: no position \"%s\"",
				op, id);
		goto out;
	}
	if (rc != SQLITE_ROW) {
		rs = db_fail(s->db, rc, err, "%s \"%s\"", op, id);
		goto out;
	}
	row_position(q, &row);
	idn = strlen(row.id);
	symn = strlen(row.symbol);
	/* One block: the struct, then the three strings with their NULs. */
	total = sizeof(*copy) + idn + symn + row.body_len + 3u;
	copy = malloc(total);
	if (copy == NULL) {
		rs = mk_err_set(err, MK_ENOMEM, "store %s \"%s\": %zu bytes",
				op, id, total);
		goto out;
	}
	p = (char *)(copy + 1);
	memcpy(p, row.id, idn + 1u);
	copy->id = p;
	p += idn + 1u;
	memcpy(p, row.symbol, symn + 1u);
	copy->symbol = p;
	p += symn + 1u;
	memcpy(p, row.body, row.body_len);
	p[row.body_len] = '\0';
	copy->body = p;
	copy->body_len = row.body_len;
	copy->version = row.version;
	*out = copy;
	rs = MK_OK;
out:
	finish(q);
	return rs;
}

static enum mk_status
sq_load_positions(struct margin_store *st, margin_store_position_fn fn,
		  void *ctx, struct mk_err *err)
{
	static const char op[] = "load_positions";
	struct sq_store *s = sq(st);
	sqlite3_stmt *q = s->stmt[S_LOAD];
	struct margin_store_position row;
	enum mk_status rs;
	int rc;

	rs = check_usable(s, op, err);
	if (rs != MK_OK)
		return rs;
	while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
		row_position(q, &row);
		s->in_callback = 1;
		rs = fn(ctx, &row);
		s->in_callback = 0;
		if (rs != MK_OK)
			goto out;
	}
	if (rc != SQLITE_DONE)
		rs = db_fail(s->db, rc, err, "%s", op);
out:
	finish(q);
	return rs;
}

static enum mk_status
sq_list_events(struct margin_store *st, int64_t since_seq, size_t limit,
	       margin_store_event_fn fn, void *ctx, struct mk_err *err)
{
	static const char op[] = "list_events";
	struct sq_store *s = sq(st);
	sqlite3_stmt *q = s->stmt[S_EV_LIST];
	struct margin_store_event ev;
	enum mk_status rs;
	size_t len;
	int rc;

	rs = check_usable(s, op, err);
	if (rs != MK_OK)
		return rs;
	if (since_seq < 0)
		return mk_err_set(err, MK_EINVAL,
				  "store %s: since %" PRId64 " is negative", op,
				  since_seq);
	if (limit == 0)
		return mk_err_set(err, MK_EINVAL, "store %s: limit is 0", op);
	if (limit > (uint64_t)INT64_MAX)
		limit = (size_t)INT64_MAX;
	rc = sqlite3_bind_int64(q, 1, since_seq);
	if (rc == SQLITE_OK)
		rc = sqlite3_bind_int64(q, 2, (sqlite3_int64)limit);
	if (rc != SQLITE_OK) {
		rs = db_fail(s->db, rc, err, "%s", op);
		goto out;
	}
	while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
		ev.seq = sqlite3_column_int64(q, 0);
		ev.position_id = col_text(q, 1, &len);
		ev.symbol = col_text(q, 2, &len);
		ev.time_ms = sqlite3_column_int64(q, 3);
		ev.body = col_text(q, 4, &ev.body_len);
		s->in_callback = 1;
		rs = fn(ctx, &ev);
		s->in_callback = 0;
		if (rs != MK_OK)
			goto out;
	}
	if (rc != SQLITE_DONE)
		rs = db_fail(s->db, rc, err, "%s", op);
out:
	finish(q);
	return rs;
}

static void
sq_close(struct margin_store *st)
{
	struct sq_store *s = sq(st);
	int i, rc;

	for (i = 0; i < S_COUNT; i++)
		sqlite3_finalize(s->stmt[i]);
	/* Every statement is finalized, so this cannot be SQLITE_BUSY; the
	 * last connection checkpoints the WAL into the main file. */
	rc = sqlite3_close(s->db);
	assert(rc == SQLITE_OK);
	(void)rc;
	free(s);
}

static const struct margin_store_ops sq_ops = {
	.name = "sqlite",
	.close = sq_close,
	.put_position = sq_put_position,
	.get_position = sq_get_position,
	.delete_position = sq_delete_position,
	.load_positions = sq_load_positions,
	.append_event = sq_append_event,
	.list_events = sq_list_events,
};

/* --- open and migrate -------------------------------------------------- */

/* Runs SQL without results (pragmas with no answer, DDL). */
static enum mk_status
exec_sql(sqlite3 *db, const char *sql, struct mk_err *err, const char *path,
	 const char *what)
{
	int rc = sqlite3_exec(db, sql, NULL, NULL, NULL);

	if (rc != SQLITE_OK)
		return db_fail(db, rc, err, "%s: %s", path, what);
	return MK_OK;
}

/* Runs a one-row, one-column query; copies a text answer into buf (when
 * not NULL) and an integer answer into *num (when not NULL). A query with
 * no row leaves both as they were. */
static enum mk_status
query1(sqlite3 *db, const char *sql, char *buf, size_t cap, int64_t *num,
       struct mk_err *err, const char *path, const char *what)
{
	sqlite3_stmt *q = NULL;
	int rc = sqlite3_prepare_v2(db, sql, -1, &q, NULL);

	if (rc == SQLITE_OK)
		rc = sqlite3_step(q);
	if (rc == SQLITE_ROW) {
		if (buf != NULL) {
			const unsigned char *t = sqlite3_column_text(q, 0);

			snprintf(buf, cap, "%s", t != NULL ? (const char *)t
							   : "");
		}
		if (num != NULL)
			*num = sqlite3_column_int64(q, 0);
		rc = SQLITE_OK;
	} else if (rc == SQLITE_DONE) {
		rc = SQLITE_OK;
	}
	if (rc != SQLITE_OK) {
		enum mk_status st = db_fail(db, rc, err, "%s: %s", path, what);

		sqlite3_finalize(q);
		return st;
	}
	sqlite3_finalize(q);
	return MK_OK;
}

/* The file's schema version: 0 for a new file, -1 (with MK_ESTATE) when
 * it holds tables but no schema_version. */
static enum mk_status
schema_version(sqlite3 *db, const char *path, int64_t *version,
	       struct mk_err *err)
{
	int64_t has = 0, tables = 0, v = 0;
	enum mk_status st;

	st = query1(db, "SELECT count(*) FROM sqlite_schema WHERE type ="
		    " 'table' AND name = 'schema_version'", NULL, 0, &has,
		    err, path, "read schema");
	if (st == MK_OK && !has)
		st = query1(db, "SELECT count(*) FROM sqlite_schema WHERE"
			    " type = 'table' AND name NOT LIKE 'sqlite_%'",
			    NULL, 0, &tables, err, path, "read schema");
	if (st != MK_OK)
		return st;
	if (!has) {
		if (tables > 0)
			return mk_err_set(err, MK_ESTATE,
					  "store %s: not a markd store (it has"
					  " tables but no schema_version)",
					  path);
		*version = 0;
		return MK_OK;
	}
	st = query1(db, "SELECT coalesce(max(version), 0) FROM schema_version",
		    NULL, 0, &v, err, path, "read schema_version");
	if (st == MK_OK)
		*version = v;
	return st;
}

static enum mk_status
check_known(const char *path, int64_t v, struct mk_err *err)
{
	if (v > MARGIN_STORE_SCHEMA_VERSION)
		return mk_err_set(err, MK_ESTATE,
				  "store %s: schema version %" PRId64 " is newer"
				  " than this markd knows (%d); run a newer"
				  " markd or point it at another file",
				  path, v, MARGIN_STORE_SCHEMA_VERSION);
	return MK_OK;
}

/* Brings a writable file up to date in one IMMEDIATE transaction. */
static enum mk_status
migrate(sqlite3 *db, const char *path, struct mk_err *err)
{
	char what[64];
	int64_t v = 0;
	enum mk_status st;
	int i;

	st = exec_sql(db, "BEGIN IMMEDIATE", err, path, "begin migration");
	if (st != MK_OK)
		return st;
	st = schema_version(db, path, &v, err);
	if (st == MK_OK)
		st = check_known(path, v, err);
	if (st == MK_OK && v == 0)
		st = exec_sql(db, "CREATE TABLE IF NOT EXISTS schema_version ("
			      " version INTEGER NOT NULL PRIMARY KEY,"
			      " applied_at TEXT NOT NULL) STRICT",
			      err, path, "create schema_version");
	for (i = (int)v; st == MK_OK && i < MARGIN_STORE_SCHEMA_VERSION; i++) {
		char sql[160];

		snprintf(what, sizeof(what), "migration to schema %d", i + 1);
		st = exec_sql(db, migrations[i], err, path, what);
		snprintf(sql, sizeof(sql),
			 "INSERT INTO schema_version (version, applied_at)"
			 " VALUES (%d, strftime('%%Y-%%m-%%dT%%H:%%M:%%fZ'))",
			 i + 1);
		if (st == MK_OK)
			st = exec_sql(db, sql, err, path, what);
	}
	if (st == MK_OK)
		return exec_sql(db, "COMMIT", err, path, "commit migration");
	if (!sqlite3_get_autocommit(db))
		(void)sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
	return st;
}

/* A read-only file must be at exactly this code's version. */
static enum mk_status
check_read_only_schema(sqlite3 *db, const char *path, struct mk_err *err)
{
	int64_t v = 0;
	enum mk_status st = schema_version(db, path, &v, err);

	if (st == MK_OK)
		st = check_known(path, v, err);
	if (st == MK_OK && v < MARGIN_STORE_SCHEMA_VERSION)
		st = mk_err_set(err, MK_ESTATE,
				"store %s: schema version %" PRId64 " is older"
				" than %d and the store is read-only; open it"
				" writable once to migrate it",
				path, v, MARGIN_STORE_SCHEMA_VERSION);
	return st;
}

/* WAL, synchronous=FULL, foreign keys, the size cap. */
static enum mk_status
configure(sqlite3 *db, const char *path, const struct margin_store_options *o,
	  struct mk_err *err)
{
	char mode[16] = "";
	char sql[64];
	int64_t page = 0;
	enum mk_status st = MK_OK;

	if (!o->read_only) {
		st = query1(db, "PRAGMA journal_mode = WAL", mode,
			    sizeof(mode), NULL, err, path, "set WAL mode");
		if (st == MK_OK && strcmp(mode, "wal") != 0)
			st = mk_err_set(err, MK_EIO,
					"store %s: cannot use WAL mode (the"
					" journal mode stays \"%s\")",
					path, mode);
	}
	if (st == MK_OK)
		st = exec_sql(db, "PRAGMA synchronous = FULL", err, path,
			      "set synchronous");
	if (st == MK_OK)
		st = exec_sql(db, "PRAGMA foreign_keys = ON", err, path,
			      "set foreign_keys");
	if (st == MK_OK && o->max_db_bytes > 0) {
		st = query1(db, "PRAGMA page_size", NULL, 0, &page, err, path,
			    "read page_size");
		if (st == MK_OK && page > 0) {
			uint64_t pages = o->max_db_bytes / (uint64_t)page;

			snprintf(sql, sizeof(sql),
				 "PRAGMA max_page_count = %" PRIu64,
				 pages > 0 ? pages : 1u);
			st = query1(db, sql, NULL, 0, NULL, err, path,
				    "set max_page_count");
		}
	}
	return st;
}

enum mk_status
margin_store_sqlite_open(const char *path,
			 const struct margin_store_options *opt,
			 struct margin_store **out, struct mk_err *err)
{
	static const struct margin_store_options defaults = { 0, 0, 0 };
	const struct margin_store_options *o = opt != NULL ? opt : &defaults;
	struct sq_store *s = NULL;
	enum mk_status st;
	int64_t v = 0;
	int rc, i, flags;

	if (path == NULL || path[0] == '\0')
		return mk_err_set(err, MK_EINVAL, "store: empty database path");
	s = calloc(1, sizeof(*s));
	if (s == NULL)
		return mk_err_set(err, MK_ENOMEM, "store %s: out of memory",
				  path);
	s->base.ops = &sq_ops;
	s->read_only = o->read_only != 0;
	flags = (s->read_only ? SQLITE_OPEN_READONLY
			      : SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE) |
		SQLITE_OPEN_NOMUTEX;
	rc = sqlite3_open_v2(path, &s->db, flags, NULL);
	if (rc != SQLITE_OK) {
		st = db_fail(s->db, rc, err, "%s: open", path);
		goto fail;
	}
	sqlite3_extended_result_codes(s->db, 1);
	rc = sqlite3_busy_timeout(s->db, o->busy_timeout_ms > 0
						 ? o->busy_timeout_ms
						 : DEFAULT_BUSY_TIMEOUT_MS);
	if (rc != SQLITE_OK) {
		st = db_fail(s->db, rc, err, "%s: busy timeout", path);
		goto fail;
	}
	/* Refuse a file we must not touch before changing anything in it
	 * (switching to WAL rewrites the header); migrate() checks again
	 * under its lock. */
	st = schema_version(s->db, path, &v, err);
	if (st == MK_OK)
		st = check_known(path, v, err);
	if (st == MK_OK)
		st = configure(s->db, path, o, err);
	if (st == MK_OK)
		st = s->read_only ? check_read_only_schema(s->db, path, err)
				  : migrate(s->db, path, err);
	if (st != MK_OK)
		goto fail;
	for (i = 0; i < S_COUNT; i++) {
		rc = sqlite3_prepare_v3(s->db, stmt_sql[i], -1,
					SQLITE_PREPARE_PERSISTENT,
					&s->stmt[i], NULL);
		if (rc != SQLITE_OK) {
			st = db_fail(s->db, rc, err, "%s: prepare", path);
			goto fail;
		}
	}
	*out = &s->base;
	return MK_OK;
fail:
	for (i = 0; i < S_COUNT; i++)
		sqlite3_finalize(s->stmt[i]);
	sqlite3_close(s->db);
	free(s);
	return st;
}
