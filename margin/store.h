/*
 * store.h - the durable position registry and its event log, behind a
 * narrow interface.
 *
 * A store keeps two things: registered positions (an id, a symbol, the
 * position's JSON text and a version that every write bumps) and an
 * append-only log of events (state transitions, liquidations) with a
 * strictly increasing sequence number. The store never parses the JSON:
 * it stores and returns text, so it does not depend on the margin types.
 *
 * A store is a struct margin_store, whose only public member is its table
 * of operations; a back end embeds it as the first member of its own
 * handle. margin_store_sqlite_open() makes the SQLite back end (one file,
 * WAL, synchronous=FULL); a PostgreSQL back end can provide the same table.
 * Callers use the margin_store_* wrappers below, never the table.
 *
 * Durability: a write function returns MK_OK only after its transaction
 * has committed; that return is the acknowledgement. On any error nothing
 * of the call is visible (one transaction per call).
 *
 * Errors: MK_EINVAL for bad arguments (message names the field),
 * MK_ESTATE for a version conflict (HTTP 409) or an unusable schema,
 * MK_ENOTFOUND for a missing position, MK_ENOMEM, MK_ETOOBIG, and MK_EIO
 * for everything the database reports (HTTP 503). An MK_EIO message names
 * the operation and the database's own text; err->sys_errno says why:
 *   ENOSPC  the disk (or the configured size cap) is full,
 *   EROFS   the database is read-only (opened so, or a read-only file),
 *   EACCES  the file cannot be opened (or the OS errno when it is known),
 *   EBUSY   another writer held the lock past the busy timeout,
 *   EILSEQ  the file is not a database or is corrupt,
 *   EIO     any other I/O failure (or the OS errno when it is known).
 *
 * Thread safety: a store handle is not locked; it must be used by one
 * thread at a time (the daemon calls it from its one writer thread).
 * Callbacks run on the calling thread and must not call back into the
 * same store (MK_ESTATE if they do). Distinct handles are independent,
 * also on the same file (SQLite's own locking serialises them).
 *
 * Ownership: strings passed in are borrowed for the call. Records handed to
 * callbacks are valid only during the callback. margin_store_get_position
 * returns a new record that the caller releases with free().
 */
#ifndef MARKD_MARGIN_STORE_H
#define MARKD_MARGIN_STORE_H

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "aggregator/status.h"

/* Schema version this code creates and reads (see doc/store.md). */
#define MARGIN_STORE_SCHEMA_VERSION 2
/* Longest position id and symbol, in bytes. */
#define MARGIN_STORE_MAX_ID 128
#define MARGIN_STORE_MAX_SYMBOL 64
/* Largest position or event body, in bytes. */
#define MARGIN_STORE_MAX_BODY (1024 * 1024)

/* Open options; a NULL options pointer means all defaults (zeroes). */
struct margin_store_options {
	int read_only;          /* no writes: each fails with MK_EIO/EROFS */
	int busy_timeout_ms;    /* wait for another writer; <= 0: 5000 */
	uint64_t max_db_bytes;  /* cap on the file size; 0: none */
};

/* A stored position, as handed out. Strings are NUL-terminated; body_len
 * is the body's length without the NUL. */
struct margin_store_position {
	const char *id;
	const char *symbol;
	const char *body;       /* JSON text, as stored */
	size_t body_len;
	int64_t version;        /* 1 on creation, +1 on each replace */
};

/* An event to append. position_id and symbol follow the same rules as a
 * position's; time_ms >= 0 (Unix milliseconds); body is JSON text. */
struct margin_store_event_in {
	const char *position_id;
	const char *symbol;
	int64_t time_ms;
	const char *body;
	size_t body_len;
};

/* A stored event, as handed out. */
struct margin_store_event {
	int64_t seq;            /* > 0, strictly increasing, never reused */
	const char *position_id;
	const char *symbol;
	int64_t time_ms;
	const char *body;
	size_t body_len;
};

/* Callbacks for the streaming reads: return MK_OK to go on; any other
 * status stops the walk and becomes the read's result. */
typedef enum mk_status (*margin_store_position_fn)(
	void *ctx, const struct margin_store_position *pos);
typedef enum mk_status (*margin_store_event_fn)(
	void *ctx, const struct margin_store_event *ev);

struct margin_store;

/* The operations a back end provides (contracts at the wrappers below).
 * An optional event (ev != NULL) is written in the same transaction. */
struct margin_store_ops {
	const char *name;
	void (*close)(struct margin_store *st);
	enum mk_status (*put_position)(struct margin_store *st, const char *id,
				       const char *symbol, const char *body,
				       size_t body_len,
				       int64_t expected_version,
				       const struct margin_store_event_in *ev,
				       int64_t *new_version, int64_t *seq,
				       struct mk_err *err);
	enum mk_status (*get_position)(struct margin_store *st, const char *id,
				       struct margin_store_position **out,
				       struct mk_err *err);
	enum mk_status (*delete_position)(
		struct margin_store *st, const char *id,
		int64_t expected_version,
		const struct margin_store_event_in *ev, int64_t *seq,
		struct mk_err *err);
	enum mk_status (*load_positions)(struct margin_store *st,
					 margin_store_position_fn fn,
					 void *ctx, struct mk_err *err);
	enum mk_status (*append_event)(struct margin_store *st,
				       const struct margin_store_event_in *ev,
				       int64_t *seq, struct mk_err *err);
	enum mk_status (*list_events)(struct margin_store *st,
				      int64_t since_seq, size_t limit,
				      margin_store_event_fn fn, void *ctx,
				      struct mk_err *err);
};

/* The handle: back ends put this first in their own struct. */
struct margin_store {
	const struct margin_store_ops *ops;
};

/*
 * Opens (creating it if needed) the SQLite store at path and brings its
 * schema up to MARGIN_STORE_SCHEMA_VERSION: pending migrations run in one
 * transaction, so a failed or interrupted migration leaves the file as it
 * was. Sets WAL mode, synchronous=FULL, foreign keys on and the busy
 * timeout. A read-only store must already be at the current version.
 * Errors: MK_ESTATE when the file's schema is newer than this code knows,
 * older and the store is read-only, or when the file holds tables but is
 * not a markd store; MK_EIO (see above) when SQLite fails; MK_EINVAL for an
 * empty path. On success *out is a new store for margin_store_close().
 */
enum mk_status margin_store_sqlite_open(const char *path,
					const struct margin_store_options *opt,
					struct margin_store **out,
					struct mk_err *err);

/* Closes the store and frees it. NULL is accepted. */
static inline void
margin_store_close(struct margin_store *st)
{
	if (st != NULL)
		st->ops->close(st);
}

/*
 * Creates or replaces position id. expected_version: -1 writes whatever
 * is there, 0 requires that the position does not exist, n > 0 requires
 * that its current version is n; otherwise MK_ESTATE (a conflict; the
 * message gives the current version). On MK_OK the write is committed
 * and *new_version (when not NULL) is the new version.
 * Other errors: MK_EINVAL (empty or too long id/symbol, empty or too
 * large body, expected_version < -1), MK_EIO.
 */
static inline enum mk_status
margin_store_put_position(struct margin_store *st, const char *id,
			  const char *symbol, const char *body,
			  size_t body_len, int64_t expected_version,
			  int64_t *new_version, struct mk_err *err)
{
	return st->ops->put_position(st, id, symbol, body, body_len,
				     expected_version, NULL, new_version,
				     NULL, err);
}

/* margin_store_put_position() and margin_store_append_event() in one
 * transaction: both are committed or neither is. */
static inline enum mk_status
margin_store_put_position_with_event(struct margin_store *st, const char *id,
				     const char *symbol, const char *body,
				     size_t body_len, int64_t expected_version,
				     const struct margin_store_event_in *ev,
				     int64_t *new_version, int64_t *seq,
				     struct mk_err *err)
{
	return st->ops->put_position(st, id, symbol, body, body_len,
				     expected_version, ev, new_version, seq,
				     err);
}

/* Reads position id into a new record (*out, one allocation: release it
 * with free()). Errors: MK_ENOTFOUND, MK_EINVAL, MK_ENOMEM, MK_EIO. */
static inline enum mk_status
margin_store_get_position(struct margin_store *st, const char *id,
			  struct margin_store_position **out,
			  struct mk_err *err)
{
	return st->ops->get_position(st, id, out, err);
}

/* Deletes position id; expected_version is -1 or the version it must
 * have (MK_ESTATE otherwise). Errors: MK_ENOTFOUND when it does not
 * exist, MK_EINVAL, MK_EIO. Events about the position are kept. */
static inline enum mk_status
margin_store_delete_position(struct margin_store *st, const char *id,
			     int64_t expected_version, struct mk_err *err)
{
	return st->ops->delete_position(st, id, expected_version, NULL, NULL,
					err);
}

/* margin_store_delete_position() and an event in one transaction. */
static inline enum mk_status
margin_store_delete_position_with_event(struct margin_store *st,
					const char *id,
					int64_t expected_version,
					const struct margin_store_event_in *ev,
					int64_t *seq, struct mk_err *err)
{
	return st->ops->delete_position(st, id, expected_version, ev, seq,
					err);
}

/* Calls fn for every stored position, in id order (for the registry's
 * start-up). Errors: MK_EIO, or whatever fn returned. */
static inline enum mk_status
margin_store_load_positions(struct margin_store *st,
			    margin_store_position_fn fn, void *ctx,
			    struct mk_err *err)
{
	return st->ops->load_positions(st, fn, ctx, err);
}

/* Appends an event; on MK_OK it is committed and *seq (when not NULL) is
 * its sequence number, larger than every earlier one. Errors: MK_EINVAL,
 * MK_EIO. */
static inline enum mk_status
margin_store_append_event(struct margin_store *st,
			  const struct margin_store_event_in *ev,
			  int64_t *seq, struct mk_err *err)
{
	return st->ops->append_event(st, ev, seq, err);
}

/* Calls fn for the events with seq > since_seq, ascending, at most limit
 * of them (a page: pass the last seq seen to get the next one).
 * Errors: MK_EINVAL (since_seq < 0, limit == 0), MK_EIO, or fn's status. */
static inline enum mk_status
margin_store_list_events(struct margin_store *st, int64_t since_seq,
			 size_t limit, margin_store_event_fn fn, void *ctx,
			 struct mk_err *err)
{
	return st->ops->list_events(st, since_seq, limit, fn, ctx, err);
}

#endif
