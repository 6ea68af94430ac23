/*
 * check_crash.c - crash durability of the position store, end to end:
 * markd and markd-fakex as child processes on 127.0.0.1, real HTTP with
 * libcurl, the positions in a real SQLite file that the test also opens
 * itself (PRAGMA integrity_check, the rows as stored).
 *
 * test_kill_loop: three client threads register, replace, fund, withdraw
 *   from and delete positions (each thread owns its ids, so every id sees
 *   one request at a time) while markd is SIGKILLed at random moments
 *   (fixed seed), a quarter of the kills during start-up, before it
 *   listens. A model keeps, per id, what the store must hold: a write
 *   answered 2xx is acknowledged; a refused connection is known not to
 *   have reached markd; a transfer cut by the kill is unknown, and the id
 *   then holds either the state before or the state after it, whole.
 *   After every kill: integrity_check on the file; after every restart:
 *   GET of every id against the model (exact decimal strings), the list's
 *   count, a clean open in the log ("positions loaded positions=N
 *   skipped=0", no error line), and the event log read just before the
 *   kill still there, unchanged, as a prefix of the new one. At the end
 *   the rows in the file, versions included, equal the model, and the
 *   events served are the first rows of its event log. The kill times
 *   and the clients' requests come from fixed seeds (tu_rng); where each
 *   kill lands among the requests is up to the scheduler.
 *
 * test_read_only: the database file made read-only (mode 0444) while
 *   markd runs changes nothing for it (permissions are checked at open:
 *   its descriptors stay writable), so writes go on being acknowledged;
 *   after a SIGKILL, markd restarts on the read-only file with the hot
 *   WAL: reads answer everything acknowledged, every write answers 503
 *   with a JSON error, the log names the file and SQLite's error, /readyz
 *   fails. Mode 0644 again and a restart: writes work, the file is intact
 *   and holds exactly what was acknowledged. Then the folder too is made
 *   read-only (as on a read-only file system) after a clean stop, so
 *   that SQLite would have to make the WAL's files: markd refuses to
 *   start (exit status 1, the file and SQLite's error on stderr) and
 *   leaves the file byte for byte as it was.
 *   As root, permission bits bind nobody, so markd then runs as uid/gid
 *   65534 (its folder handed to that uid) and the same bits bind it.
 *
 * test_size_limit: a disk that lets no database file grow, made with
 *   RLIMIT_FSIZE set on the running markd (prlimit(2); SIGXFSZ ignored,
 *   its log through a pipe so that the limit touches only the database
 *   files): every write(2) that would take a file past L bytes fails with
 *   EFBIG, one that straddles L is cut short, overwriting within L works.
 *   L is the size of the largest database file at that moment (the WAL),
 *   so every commit, which appends to the WAL, fails, as on a disk with
 *   no free block or over its quota: SQLite reports EFBIG as it reports
 *   EDQUOT, SQLITE_IOERR_WRITE ("disk I/O error"), and a write cut short
 *   as SQLITE_FULL. Writes answer 503, reads work, /readyz fails,
 *   nothing acknowledged is lost;
 *   the limit lifted, markd writes again without a restart.
 *   Where it differs from a full disk: SQLite sees EFBIG where a full
 *   disk gives ENOSPC, and the smaller files may still grow up to L.
 *
 * test_full_tmpfs: the real thing where the kernel allows it: the
 *   database on a 2 MiB tmpfs in a private mount namespace (unshare(2),
 *   with a user namespace when not privileged), filled up to ENOSPC by
 *   another file, then that file removed. Skipped, saying so, where no
 *   mount namespace can be made (e.g. a container's seccomp profile).
 *
 * Every wait has a deadline; children get PR_SET_PDEATHSIG(SIGKILL).
 */
#include "config.h"

#include <check.h>
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <inttypes.h>
#include <jansson.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tests/http.h"
#include "tests/proc.h"
#include "tests/testutil.h"

#define TOKEN "tok-crash-0123456789abcdef0123456789"
#define AUTH "Authorization: Bearer " TOKEN
/* The unprivileged uid/gid markd runs as when the test is root. */
#define NOBODY 65534
#define HTTP_TIMEOUT_MS 10000L

static char dir[TU_PATH_LEN];       /* config, tokens, logs */
static char dbdir[TU_PATH_LEN];     /* the database's folder: dir/db */
static char dbpath[TU_PATH_LEN];    /* dbdir/markd.db */
static struct tu_child fakex, markd;
static bool dbdir_mounted;

/* base/name into out, which has room for TU_PATH_LEN bytes. */
static void
join(char *out, const char *base, const char *name)
{
	if (snprintf(out, TU_PATH_LEN, "%s/%s", base, name) >= TU_PATH_LEN) {
		fprintf(stderr, "check_crash: %s/%s: path too long\n", base,
			name);
		abort();
	}
}

static void
put_file(const char *name, const char *text)
{
	ck_assert_msg(tu_put_file(dir, name, text), "%s/%s: %s", dir, name,
		      strerror(errno));
}

/* ---- markd as a child, with the conditions some tests need ---------- */

enum {
	RUN_AS_NOBODY = 1,      /* drop to uid/gid NOBODY before exec */
	IGNORE_XFSZ = 2,        /* SIGXFSZ ignored: EFBIG instead of death */
	LOG_PIPE = 4,           /* stderr through a pipe that the test
				 * copies to markd.err: no file size limit
				 * applies to it */
};

/* Copies markd's stderr from a pipe to its .err file until EOF. */
struct pump {
	int fd;
	pthread_t thread;
	bool running;
	char path[TU_PATH_LEN];
};

static struct pump pump = { -1, 0, false, "" };

static void *
pump_run(void *arg)
{
	struct pump *p = arg;
	int out = open(p->path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC,
		       0644);
	char buf[4096];

	for (;;) {
		ssize_t n = read(p->fd, buf, sizeof(buf));

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		if (out >= 0 && write(out, buf, (size_t)n) != n)
			break;
	}
	if (out >= 0)
		close(out);
	return NULL;
}

/* Waits for the pump to see EOF (markd is gone: it held the only
 * writing end). */
static void
pump_join(void)
{
	if (!pump.running)
		return;
	pthread_join(pump.thread, NULL);
	close(pump.fd);
	pump.fd = -1;
	pump.running = false;
}

/* argv of "markd -c dir/markd.json"; conf has room for TU_PATH_LEN. */
static void
markd_args(char *conf, const char **argv, const char *prog)
{
	join(conf, dir, "markd.json");
	argv[0] = prog;
	argv[1] = "-c";
	argv[2] = conf;
	argv[3] = NULL;
}

/* Runs in markd's child before exec: the conditions of how (a mask of
 * the flags above). */
static bool
markd_before_exec(void *arg)
{
	unsigned how = *(const unsigned *)arg;

	if (how & IGNORE_XFSZ)
		signal(SIGXFSZ, SIG_IGN);
	return !(how & RUN_AS_NOBODY) ||
	       (setgroups(0, NULL) == 0 && setgid(NOBODY) == 0 &&
		setuid(NOBODY) == 0);
}

/* Starts markd as tu_spawn does, with the extra conditions of how. */
static void
markd_spawn(unsigned how)
{
	char prog[TU_PATH_LEN], conf[TU_PATH_LEN];
	const char *argv[4];
	int pfd[2] = { -1, -1 };
	struct tu_spawn_opts o = { markd_before_exec, &how, -1 };

	tu_buildpath(prog, sizeof(prog), "markd");
	markd_args(conf, argv, prog);
	if (how & LOG_PIPE) {
		ck_assert_int_eq(pipe2(pfd, O_CLOEXEC), 0);
		o.err_fd = pfd[1];
	}
	ck_assert(tu_spawn_with(&markd, dir, "markd", "markd", argv + 1, &o));
	if (how & LOG_PIPE) {
		close(pfd[1]);
		pump.fd = pfd[0];
		snprintf(pump.path, sizeof(pump.path), "%s", markd.err);
		ck_assert_int_eq(pthread_create(&pump.thread, NULL, pump_run,
						&pump), 0);
		pump.running = true;
	}
}

/* Stops markd with sig (bounded); its exit code or -1. */
static int
markd_stop(int sig)
{
	int rc = tu_stop(&markd, sig, 10000);

	pump_join();
	return rc;
}

static void
markd_start(unsigned how)
{
	char *log;

	markd_spawn(how);
	if (tu_wait_listening(&markd, 15000))
		return;
	pump_join();
	log = tu_read_file(markd.err);
	ck_abort_msg("markd did not start: %s", log);
}

/* Size of markd's log now: where the lines of the next start begin. */
static size_t
log_size(void)
{
	char path[TU_PATH_LEN];
	struct stat st;

	join(path, dir, "markd.err");
	return stat(path, &st) == 0 ? (size_t)st.st_size : 0;
}

/* The log from byte off on (a new string). */
static char *
log_from(size_t off)
{
	char path[TU_PATH_LEN], *t, *r;

	join(path, dir, "markd.err");
	t = tu_read_file(path);
	r = strdup(strlen(t) >= off ? t + off : "");
	free(t);
	if (r == NULL)
		abort();
	return r;
}

/* Polls the log from off for needle (timeout_ms). */
static bool
log_has(size_t off, const char *needle, int timeout_ms)
{
	int64_t deadline = tu_mono_ms() + timeout_ms;

	for (;;) {
		char *t = log_from(off);
		bool yes = strstr(t, needle) != NULL;

		free(t);
		if (yes || tu_mono_ms() >= deadline)
			return yes;
		tu_pause_ms(20);
	}
}

/* ---- HTTP ------------------------------------------------------------- */

static bool
req(int port, const char *method, const char *path, const char *body,
    struct tu_resp *r)
{
	static const char *const hdr[] = {
		AUTH, "Content-Type: application/json", NULL
	};

	return tu_http(port, method, path, body, hdr, HTTP_TIMEOUT_MS, r);
}

/* The error object's code and message of an error answer ("" when
 * absent). */
static const char *
err_field(const struct tu_resp *r, const char *key)
{
	const char *s = json_string_value(
		json_object_get(json_object_get(r->j, "error"), key));

	return s != NULL ? s : "";
}

/* GET /readyz until its status is want (timeout_ms); the last answer is
 * left in r. */
static bool
readyz_is(int port, long want, int timeout_ms, struct tu_resp *r)
{
	int64_t deadline = tu_mono_ms() + timeout_ms;

	for (;;) {
		bool ok = req(port, "GET", "/readyz", NULL, r) &&
			  r->status == want;

		if (ok || tu_mono_ms() >= deadline)
			return ok;
		tu_pause_ms(50);
	}
}

/* ---- the model of one position --------------------------------------- */

/* What the store holds for one id. Decimals are kept in hundredths and
 * always written with two decimals, which markd keeps (the scale of a
 * sum is the larger scale), so the strings compare exactly. */
struct pstate {
	bool present;
	bool weak;              /* breached from the start: makes events */
	bool is_short;
	int64_t entry;          /* hundredths */
	int64_t coll;           /* hundredths */
	int64_t version;        /* the store's: 1 at creation, +1 each write */
};

struct slot {
	char id[24];
	struct pstate cur;      /* as far as acknowledged */
	bool pending;           /* an unknown write: cur or alt, whole */
	struct pstate alt;
};

enum op {
	OP_CREATE, OP_REPLACE, OP_DEPOSIT, OP_WITHDRAW, OP_DELETE,
	OP_DELETE_ABSENT, OP_DEPOSIT_ABSENT, OP_COUNT
};

static const char *const op_name[OP_COUNT] = {
	"create", "replace", "deposit", "withdraw", "delete",
	"delete-absent", "deposit-absent",
};

static void
hundredths(int64_t v, char *buf, size_t cap)
{
	snprintf(buf, cap, "%s%" PRId64 ".%02" PRId64, v < 0 ? "-" : "",
		 (v < 0 ? -v : v) / 100, (v < 0 ? -v : v) % 100);
}

static void
position_body(const struct pstate *p, char *buf, size_t cap)
{
	char e[32], c[32];

	hundredths(p->entry, e, sizeof(e));
	hundredths(p->coll, c, sizeof(c));
	snprintf(buf, cap,
		 "{\"symbol\":\"BTC-USD\",\"side\":\"%s\",\"size\":\"1\","
		 "\"entry_price\":\"%s\",\"collateral\":\"%s\","
		 "\"leverage\":\"10\"}",
		 p->is_short ? "short" : "long", e, c);
}

static bool
jstr_is(const json_t *o, const char *key, const char *want)
{
	const char *s = json_string_value(json_object_get(o, key));

	return s != NULL && strcmp(s, want) == 0;
}

/* Whether a position object (as GET answers it, or as stored) is p. */
static bool
position_is(const struct pstate *p, const json_t *pos)
{
	char e[32], c[32];

	if (!p->present || !json_is_object(pos))
		return false;
	hundredths(p->entry, e, sizeof(e));
	hundredths(p->coll, c, sizeof(c));
	return jstr_is(pos, "symbol", "BTC-USD") &&
	       jstr_is(pos, "kind", "linear") &&
	       jstr_is(pos, "side", p->is_short ? "short" : "long") &&
	       jstr_is(pos, "size", "1") && jstr_is(pos, "entry_price", e) &&
	       jstr_is(pos, "collateral", c) && jstr_is(pos, "leverage", "10");
}

/* Whether a GET answer shows p (absent: 404). */
static bool
answer_is(const struct pstate *p, const struct tu_resp *r)
{
	if (!p->present)
		return r->status == 404;
	return r->status == 200 &&
	       position_is(p, json_object_get(r->j, "position"));
}

/* A request and the state it leaves when it takes effect. */
struct request {
	enum op op;
	const char *method;
	char path[96];
	char body[256];
	struct pstate after;
};

static void
make_request(const struct slot *s, enum op op, int64_t amount,
	     const struct pstate *fresh, struct request *q)
{
	char d[32];

	memset(q, 0, sizeof(*q));
	q->op = op;
	q->after = s->cur;
	switch (op) {
	case OP_CREATE:
	case OP_REPLACE:
		q->method = "PUT";
		snprintf(q->path, sizeof(q->path), "/v1/positions/%s", s->id);
		q->after = *fresh;
		q->after.present = true;
		q->after.version = op == OP_CREATE ? 1 : s->cur.version + 1;
		position_body(&q->after, q->body, sizeof(q->body));
		break;
	case OP_DEPOSIT:
	case OP_WITHDRAW:
	case OP_DEPOSIT_ABSENT:
		q->method = "POST";
		snprintf(q->path, sizeof(q->path),
			 "/v1/positions/%s/collateral", s->id);
		hundredths(op == OP_WITHDRAW ? -amount : amount, d, sizeof(d));
		snprintf(q->body, sizeof(q->body), "{\"delta\":\"%s\"}", d);
		if (op != OP_DEPOSIT_ABSENT) {
			q->after.coll += op == OP_WITHDRAW ? -amount : amount;
			q->after.version++;
		}
		break;
	case OP_DELETE:
	case OP_DELETE_ABSENT:
		q->method = "DELETE";
		snprintf(q->path, sizeof(q->path), "/v1/positions/%s", s->id);
		q->after.present = false;
		q->after.version = 0;
		break;
	default:
		abort();
	}
}

/* ---- the kill loop: clients ------------------------------------------ */

#define NCLIENTS 3
#define NSLOTS 6
#define ROUNDS 32                /* every 4th kill comes during start-up */

struct client {
	int idx;
	struct tu_rng rng;
	struct slot slot[NSLOTS];
	pthread_t thread;
	unsigned acked[OP_COUNT];     /* answered as expected */
	unsigned not_sent;            /* connection refused: markd was down */
	unsigned unknown;             /* cut by a kill */
	unsigned no_mark;             /* withdrawal refused: no valid mark */
};

static struct client clients[NCLIENTS];

/* The round: clients run while open; the main thread closes it after
 * the kill and waits until every client is idle before markd restarts. */
static pthread_mutex_t round_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t round_cv = PTHREAD_COND_INITIALIZER;
static unsigned round_gen;
static int round_port;
static bool round_open, quitting;
static unsigned idle;
static char failure[2048];       /* the first thing a client found wrong */

static void
client_fail(const struct client *c, const struct request *q,
	    const struct tu_resp *r, const char *what)
{
	pthread_mutex_lock(&round_mu);
	if (failure[0] == '\0')
		snprintf(failure, sizeof(failure),
			 "client %d: %s %s %s: %s: status %ld (curl %d): %.900s",
			 c->idx, op_name[q->op], q->method, q->path, what,
			 r->status, (int)r->code, r->body != NULL ? r->body : "");
	pthread_mutex_unlock(&round_mu);
}

/* A random new position, 1 BTC near 30,000 at leverage 10: a quarter
 * breached from the start (collateral 20 to 100 against a maintenance
 * margin of about 120), the rest with 6,000 to 8,000 of collateral (the
 * initial margin is about 3,000), so that withdrawals of up to 20 stay
 * allowed while the collateral is above 5,000. */
static void
fresh_position(struct tu_rng *g, struct pstate *p)
{
	memset(p, 0, sizeof(*p));
	p->present = true;
	p->weak = tu_rng_range(g, 0, 3) == 0;
	p->is_short = tu_rng_range(g, 0, 1) == 1;
	if (p->weak) {
		p->entry = 3000000;
		p->coll = tu_rng_range(g, 2000, 10000);
	} else {
		p->entry = tu_rng_range(g, 2995000, 3005000);
		p->coll = tu_rng_range(g, 600000, 800000);
	}
}

/* Picks a request for a random slot of c. */
static struct slot *
pick(struct client *c, struct request *q)
{
	struct slot *s = &c->slot[tu_rng_range(&c->rng, 0, NSLOTS - 1)];
	struct pstate fresh;
	int64_t k = tu_rng_range(&c->rng, 0, 19);
	enum op op;

	fresh_position(&c->rng, &fresh);
	if (!s->cur.present)
		op = k < 16 ? OP_CREATE : k < 18 ? OP_DELETE_ABSENT
						 : OP_DEPOSIT_ABSENT;
	else if (k < 3)
		op = OP_REPLACE;
	else if (k < 6)
		op = OP_DELETE;
	else if (k < 13 || s->cur.weak || s->cur.coll < 500000)
		op = OP_DEPOSIT;
	else
		op = OP_WITHDRAW;
	/* a replace always changes something: the two outcomes of an
	 * unknown replace must be told apart */
	if (op == OP_REPLACE && fresh.coll == s->cur.coll)
		fresh.coll++;
	make_request(s, op,
		     op == OP_WITHDRAW ? tu_rng_range(&c->rng, 1, 2000)
				       : tu_rng_range(&c->rng, 1, 5000),
		     &fresh, q);
	return s;
}

enum outcome { OUT_DONE, OUT_NOT_SENT, OUT_UNKNOWN, OUT_BROKEN };

/* Sends one request of c and updates the model; see enum outcome. */
static enum outcome
client_step(struct client *c, int port)
{
	struct tu_resp r = { 0 };
	struct request q;
	struct slot *s = pick(c, &q);
	enum outcome out = OUT_DONE;
	long want;

	req(port, q.method, q.path, q.body[0] != '\0' ? q.body : NULL, &r);
	if (r.status == 0) {
		/* no answer: refused (never reached markd), or cut */
		if (r.code == CURLE_COULDNT_CONNECT) {
			c->not_sent++;
			out = OUT_NOT_SENT;
		} else {
			c->unknown++;
			s->pending = true;
			s->alt = q.after;
			out = OUT_UNKNOWN;
		}
		goto done;
	}
	want = q.op == OP_CREATE ? 201
	       : q.op == OP_DELETE_ABSENT || q.op == OP_DEPOSIT_ABSENT ? 404
								       : 200;
	if (q.op == OP_WITHDRAW && r.status == 409 &&
	    strcmp(err_field(&r, "code"), "conflict") == 0 &&
	    strstr(err_field(&r, "message"), "not valid for liquidation") !=
		    NULL) {
		/* a restarted markd has no valid mark yet: refused, known */
		c->no_mark++;
		goto done;
	}
	if (r.status != want) {
		client_fail(c, &q, &r, "unexpected status");
		out = OUT_BROKEN;
		goto done;
	}
	if ((q.op == OP_CREATE || q.op == OP_REPLACE || q.op == OP_DEPOSIT ||
	     q.op == OP_WITHDRAW) &&
	    !position_is(&q.after, json_object_get(r.j, "position"))) {
		client_fail(c, &q, &r, "the answer is not the position sent");
		out = OUT_BROKEN;
		goto done;
	}
	c->acked[q.op]++;
	s->cur = q.after;
done:
	tu_resp_free(&r);
	return out;
}

static void *
client_run(void *arg)
{
	struct client *c = arg;
	unsigned done_gen = 0;

	for (;;) {
		unsigned gen;
		int port;

		pthread_mutex_lock(&round_mu);
		while (!quitting && (!round_open || round_gen == done_gen))
			pthread_cond_wait(&round_cv, &round_mu);
		if (quitting) {
			pthread_mutex_unlock(&round_mu);
			break;
		}
		gen = round_gen;
		port = round_port;
		pthread_mutex_unlock(&round_mu);
		for (;;) {
			enum outcome o = client_step(c, port);
			bool go_on;

			pthread_mutex_lock(&round_mu);
			go_on = round_open && failure[0] == '\0';
			pthread_mutex_unlock(&round_mu);
			/* after an unknown write, that id waits for the
			 * restart, which tells which state it holds */
			if (o == OUT_UNKNOWN || o == OUT_BROKEN || !go_on)
				break;
			if (o == OUT_NOT_SENT)
				tu_pause_ms(2);
		}
		pthread_mutex_lock(&round_mu);
		done_gen = gen;
		idle++;
		pthread_cond_broadcast(&round_cv);
		pthread_mutex_unlock(&round_mu);
	}
	return NULL;
}

/* Whether a client found something wrong (the message in failure). */
static bool
client_failed(void)
{
	bool yes;

	pthread_mutex_lock(&round_mu);
	yes = failure[0] != '\0';
	pthread_mutex_unlock(&round_mu);
	return yes;
}

static void
round_begin(int port)
{
	pthread_mutex_lock(&round_mu);
	idle = 0;
	round_port = port;
	round_gen++;
	round_open = true;
	pthread_cond_broadcast(&round_cv);
	pthread_mutex_unlock(&round_mu);
}

/* Closes the round and waits (30 s at most) until every client is idle. */
static bool
round_end(void)
{
	struct timespec dl;
	bool ok;

	clock_gettime(CLOCK_REALTIME, &dl);
	dl.tv_sec += 30;
	pthread_mutex_lock(&round_mu);
	round_open = false;
	while (idle < NCLIENTS &&
	       pthread_cond_timedwait(&round_cv, &round_mu, &dl) == 0)
		;
	ok = idle == NCLIENTS;
	pthread_mutex_unlock(&round_mu);
	return ok;
}

/* ---- the file, read by the test itself -------------------------------- */

/* PRAGMA integrity_check on path, opened read-only (so that closing it
 * never checkpoints: markd finds the WAL as the kill left it). The rows
 * joined by "; " into out: "ok" when intact. */
static void
integrity(const char *path, char *out, size_t cap)
{
	sqlite3 *db = NULL;
	sqlite3_stmt *q = NULL;
	size_t n = 0;
	int rc;

	out[0] = '\0';
	rc = sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL);
	if (rc == SQLITE_OK)
		rc = sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &q,
					NULL);
	while (rc == SQLITE_OK && (rc = sqlite3_step(q)) == SQLITE_ROW) {
		n += (size_t)snprintf(out + n, cap - n, "%s%s", n ? "; " : "",
				      (const char *)sqlite3_column_text(q, 0));
		if (n >= cap)
			break;
		rc = SQLITE_OK;
	}
	if (rc != SQLITE_DONE && rc != SQLITE_OK && n < cap)
		snprintf(out + n, cap - n, "%ssqlite: %s", n ? "; " : "",
			 db != NULL ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
	sqlite3_finalize(q);
	sqlite3_close(db);
}

static void
assert_intact(const char *when)
{
	char res[1024];

	integrity(dbpath, res, sizeof(res));
	ck_assert_msg(strcmp(res, "ok") == 0, "integrity_check %s: %s", when,
		      res);
}

/* The slot of id among the slots given, or NULL. */
static struct slot *
find_slot(struct slot *const *slots, size_t n, const char *id)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(slots[i]->id, id) == 0)
			return slots[i];
	return NULL;
}

/*
 * The rows of the file (markd stopped) against the model: every present
 * id is a row with exactly its version and a body that is the position;
 * no other row.
 */
static void
assert_rows(struct slot *const *slots, size_t n)
{
	sqlite3 *db = NULL;
	sqlite3_stmt *q = NULL;
	size_t rows = 0, present = 0;
	int rc;

	for (size_t i = 0; i < n; i++)
		present += slots[i]->cur.present;
	rc = sqlite3_open_v2(dbpath, &db, SQLITE_OPEN_READONLY, NULL);
	ck_assert_msg(rc == SQLITE_OK, "open %s: %s", dbpath,
		      sqlite3_errstr(rc));
	ck_assert_int_eq(sqlite3_prepare_v2(db,
					    "SELECT id, symbol, version, body"
					    " FROM positions ORDER BY id",
					    -1, &q, NULL),
			 SQLITE_OK);
	while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
		const char *id = (const char *)sqlite3_column_text(q, 0);
		const char *sym = (const char *)sqlite3_column_text(q, 1);
		int64_t ver = sqlite3_column_int64(q, 2);
		const char *body = (const char *)sqlite3_column_text(q, 3);
		struct slot *s = find_slot(slots, n, id);
		json_t *j = json_loads(body, 0, NULL);

		ck_assert_msg(s != NULL && s->cur.present,
			      "row %s is not acknowledged: %s", id, body);
		ck_assert_str_eq(sym, "BTC-USD");
		ck_assert_msg(ver == s->cur.version,
			      "row %s: version %" PRId64 ", want %" PRId64,
			      id, ver, s->cur.version);
		ck_assert_msg(position_is(&s->cur, j), "row %s: %s", id, body);
		json_decref(j);
		rows++;
	}
	ck_assert_int_eq(rc, SQLITE_DONE);
	sqlite3_finalize(q);
	ck_assert_msg(rows == present, "%zu rows, %zu acknowledged", rows,
		      present);
	sqlite3_close(db);
}

/* ---- the event log over HTTP ------------------------------------------ */

struct evlog {
	size_t n, cap;
	char **text;            /* each event, compact with sorted keys */
	int64_t *seq;
};

static void
evlog_free(struct evlog *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->text[i]);
	free(l->text);
	free(l->seq);
	memset(l, 0, sizeof(*l));
}

/* Every event, page by page; checks that seqs rise and that each event
 * names one of our ids and a state. */
static void
fetch_events(int port, struct slot *const *slots, size_t nslots,
	     struct evlog *l)
{
	struct tu_resp r = { 0 };
	int64_t since = 0;
	bool more = true;

	evlog_free(l);
	while (more) {
		char path[96];
		json_t *arr;

		snprintf(path, sizeof(path),
			 "/v1/liquidations?since=%" PRId64 "&limit=1000",
			 since);
		ck_assert_msg(req(port, "GET", path, NULL, &r) &&
				      r.status == 200,
			      "GET %s: %ld %s", path, r.status, r.body);
		arr = json_object_get(r.j, "events");
		ck_assert(json_is_array(arr));
		for (size_t i = 0; i < json_array_size(arr); i++) {
			json_t *e = json_array_get(arr, i);
			int64_t seq = json_integer_value(
				json_object_get(e, "seq"));
			const char *id = json_string_value(
				json_object_get(e, "id"));
			const char *to = json_string_value(
				json_object_get(e, "to"));

			ck_assert_msg(seq > since, "event seq %" PRId64
				      " after %" PRId64, seq, since);
			ck_assert_msg(id != NULL &&
					      find_slot(slots, nslots, id) !=
						      NULL &&
					      to != NULL && to[0] != '\0',
				      "event %" PRId64 " is not ours: %s", seq,
				      r.body);
			since = seq;
			if (l->n == l->cap) {
				l->cap = l->cap ? 2 * l->cap : 256;
				l->text = realloc(l->text,
						  l->cap * sizeof(*l->text));
				l->seq = realloc(l->seq,
						 l->cap * sizeof(*l->seq));
				ck_assert(l->text != NULL && l->seq != NULL);
			}
			l->seq[l->n] = seq;
			l->text[l->n] = json_dumps(e, JSON_COMPACT |
							      JSON_SORT_KEYS);
			ck_assert_ptr_nonnull(l->text[l->n]);
			l->n++;
		}
		more = json_is_true(json_object_get(r.j, "more"));
	}
	tu_resp_free(&r);
}

/* Every event of before is in after, at the same place, unchanged. */
static void
assert_prefix(const struct evlog *before, const struct evlog *after)
{
	ck_assert_msg(after->n >= before->n,
		      "%zu events were read before the kill, %zu after",
		      before->n, after->n);
	for (size_t i = 0; i < before->n; i++)
		ck_assert_msg(strcmp(before->text[i], after->text[i]) == 0,
			      "event %zu before the kill: %s, after: %s", i,
			      before->text[i], after->text[i]);
}

/* The events served (l) are the first rows of the file's event log, with
 * the same seq and position id (markd stopped; it may have logged more
 * since). */
static void
assert_events_stored(const struct evlog *l)
{
	sqlite3 *db = NULL;
	sqlite3_stmt *q = NULL;
	size_t i = 0;
	int rc;

	ck_assert_int_eq(sqlite3_open_v2(dbpath, &db, SQLITE_OPEN_READONLY,
					 NULL),
			 SQLITE_OK);
	ck_assert_int_eq(sqlite3_prepare_v2(db,
					    "SELECT seq, position_id FROM"
					    " events ORDER BY seq",
					    -1, &q, NULL),
			 SQLITE_OK);
	while (i < l->n && (rc = sqlite3_step(q)) == SQLITE_ROW) {
		json_t *e = json_loads(l->text[i], 0, NULL);
		const char *id = (const char *)sqlite3_column_text(q, 1);

		ck_assert_msg(sqlite3_column_int64(q, 0) == l->seq[i] &&
				      jstr_is(e, "id", id),
			      "event row %zu: seq %lld id %s, served %s", i,
			      (long long)sqlite3_column_int64(q, 0), id,
			      l->text[i]);
		json_decref(e);
		i++;
	}
	ck_assert_msg(i == l->n, "%zu events stored, %zu served", i, l->n);
	sqlite3_finalize(q);
	sqlite3_close(db);
}

/* ---- the kill loop: checks after a restart ----------------------------- */

struct tally {
	unsigned applied, not_applied, no_effect;
};

/*
 * GETs every id and compares with the model: an acknowledged state
 * exactly; after an unknown write, either state, whole, which then
 * becomes the model's. The list holds as many positions as the model.
 * Returns the number of positions present.
 */
static size_t
verify_all(int port, struct slot *const *slots, size_t n, struct tally *t)
{
	struct tu_resp r = { 0 };
	size_t present = 0;
	char path[96];

	for (size_t i = 0; i < n; i++) {
		struct slot *s = slots[i];
		bool is_cur, is_alt;

		snprintf(path, sizeof(path), "/v1/positions/%s", s->id);
		ck_assert_msg(req(port, "GET", path, NULL, &r),
			      "GET %s: curl %d", path, (int)r.code);
		is_cur = answer_is(&s->cur, &r);
		is_alt = s->pending && answer_is(&s->alt, &r);
		ck_assert_msg(is_cur || is_alt,
			      "%s: acknowledged %s, collateral %" PRId64
			      " hundredths, version %" PRId64 "%s; GET: %ld"
			      " %.500s", s->id,
			      s->cur.present ? "present" : "absent",
			      s->cur.coll, s->cur.version,
			      s->pending ? " (or the unknown write)" : "",
			      r.status, r.body);
		if (s->pending) {
			if (is_cur && is_alt)
				t->no_effect++;
			else if (is_alt)
				t->applied++;
			else
				t->not_applied++;
			if (is_alt)
				s->cur = s->alt;
			s->pending = false;
		}
		present += s->cur.present;
	}
	ck_assert(req(port, "GET", "/v1/positions?limit=1000", NULL, &r));
	ck_assert_int_eq(r.status, 200);
	ck_assert_msg(json_integer_value(json_object_get(r.j, "count")) ==
			      (json_int_t)present,
		      "the list has %" JSON_INTEGER_FORMAT " positions, the"
		      " model %zu", json_integer_value(json_object_get(r.j,
								       "count")),
		      present);
	tu_resp_free(&r);
	return present;
}

/* The start that began at log offset off opened the file cleanly: it
 * loaded exactly `present` positions, skipped none, logged no error. */
static void
assert_clean_open(size_t off, size_t present)
{
	char want[96], *t;

	snprintf(want, sizeof(want), "positions=%zu skipped=0 ", present);
	ck_assert_msg(log_has(off, want, 5000), "no \"%s\" in the log: %s",
		      want, log_from(off));
	t = log_from(off);
	ck_assert_msg(strstr(t, "level=error") == NULL &&
			      strstr(t, "corrupt") == NULL &&
			      strstr(t, "malformed") == NULL,
		      "the start logged an error: %s", t);
	free(t);
}

/* ---- fixture ----------------------------------------------------------- */

static const char SCENARIO[] =
	"{\"listen\":\"127.0.0.1:0\",\"speed\":1,\"loop\":true,\"venues\":{"
	" \"coinbase\":{\"markets\":{\"BTC-USD\":{\"walk\":{\"seed\":7,"
	"  \"start\":\"30000\",\"sigma_bps\":1}}}},"
	" \"kraken\":{\"markets\":{\"XBTUSD\":{\"walk\":{\"seed\":7,"
	"  \"start\":\"30000\",\"sigma_bps\":1}}}},"
	" \"bitstamp\":{\"markets\":{\"btcusd\":{\"walk\":{\"seed\":7,"
	"  \"start\":\"30000\",\"sigma_bps\":1}}}}}}\n";

static void
write_config(void)
{
	char text[4096];

	snprintf(text, sizeof(text),
		 "{\"listen\":\"127.0.0.1:0\",\"database\":\"%s\","
		 " \"token_file\":\"%s/tokens\","
		 " \"defaults\":{\"min_sources\":2,\"max_age_ms\":5000},"
		 " \"sources\":["
		 "  {\"name\":\"coinbase\",\"adapter\":\"coinbase\","
		 "   \"base_url\":\"http://127.0.0.1:%d/coinbase\","
		 "   \"interval_ms\":100,\"timeout_ms\":1000},"
		 "  {\"name\":\"kraken\",\"adapter\":\"kraken\","
		 "   \"base_url\":\"http://127.0.0.1:%d/kraken\","
		 "   \"interval_ms\":100,\"timeout_ms\":1000},"
		 "  {\"name\":\"bitstamp\",\"adapter\":\"bitstamp\","
		 "   \"base_url\":\"http://127.0.0.1:%d/bitstamp\","
		 "   \"interval_ms\":100,\"timeout_ms\":1000}],"
		 " \"instruments\":[{\"symbol\":\"BTC-USD\",\"scale\":2,"
		 "  \"legs\":[{\"source\":\"coinbase\",\"market\":\"BTC-USD\"},"
		 "   {\"source\":\"kraken\",\"market\":\"XBTUSD\"},"
		 "   {\"source\":\"bitstamp\",\"market\":\"btcusd\"}],"
		 "  \"margin\":{\"contract\":\"linear\",\"confirm_count\":2,"
		 "   \"confirm_ms\":300,\"safe_buffer_bps\":200,\"brackets\":["
		 "    {\"floor\":\"0\",\"cap\":\"50000\",\"mmr\":\"0.004\"},"
		 "    {\"floor\":\"50000\",\"cap\":\"250000\",\"mmr\":\"0.005\"}]}}]}\n",
		 dbpath, dir, fakex.port, fakex.port, fakex.port);
	put_file("markd.json", text);
}

static void
setup(void)
{
	char scen[TU_PATH_LEN];
	const char *fargs[] = { "-s", scen, "-p", "0", NULL };

	ck_assert(tu_make_dir(dir, sizeof(dir), "check_crash"));
	/* markd may run as another uid: it must reach its config */
	ck_assert_int_eq(chmod(dir, 0755), 0);
	join(dbdir, dir, "db");
	join(dbpath, dbdir, "markd.db");
	ck_assert_int_eq(mkdir(dbdir, 0755), 0);
	put_file("tokens", TOKEN "\n");
	put_file("fakex.json", SCENARIO);
	join(scen, dir, "fakex.json");
	memset(&markd, 0, sizeof(markd));
	markd.pid = -1;
	ck_assert(tu_spawn(&fakex, dir, "tools/markd-fakex", "fakex", fargs));
	ck_assert_msg(tu_wait_listening(&fakex, 10000),
		      "markd-fakex did not start");
	write_config();
}

static void
teardown(void)
{
	markd_stop(SIGKILL);
	tu_stop(&fakex, SIGTERM, 10000);
	if (dbdir_mounted)
		umount2(dbdir, MNT_DETACH);
	dbdir_mounted = false;
	chmod(dbdir, 0755);
	chmod(dbpath, 0644);
	tu_remove_dir(dir);
}

/* ================= the kill loop ================= */

START_TEST(test_kill_loop)
{
	struct slot *slots[NCLIENTS * NSLOTS];
	struct tu_rng g = TU_RNG_INIT(0x6b696c6cu);
	struct evlog seen = { 0 }, now = { 0 };
	struct tally t = { 0, 0, 0 };
	unsigned kills = 0, early = 0, acked[OP_COUNT] = { 0 };
	unsigned not_sent = 0, unknown = 0, no_mark = 0, total = 0;
	size_t n = 0, present = 0;
	int64_t t0 = tu_mono_ms();

	for (int i = 0; i < NCLIENTS; i++) {
		clients[i].idx = i;
		clients[i].rng = TU_RNG_INIT(1000 + i);
		for (int k = 0; k < NSLOTS; k++) {
			snprintf(clients[i].slot[k].id,
				 sizeof(clients[i].slot[k].id), "c%d-p%d", i,
				 k);
			slots[n++] = &clients[i].slot[k];
		}
		ck_assert_int_eq(pthread_create(&clients[i].thread, NULL,
						client_run, &clients[i]),
				 0);
	}
	for (int round = 0; round <= ROUNDS; round++) {
		size_t off = log_size();
		int64_t until;

		if (round > 0 && round < ROUNDS && round % 4 == 3) {
			/* killed while it opens the file and loads */
			int status;

			markd_spawn(0);
			until = tu_mono_ms() + tu_rng_range(&g, 0, 250);
			while (tu_mono_ms() < until) {
				ck_assert_msg(waitpid(markd.pid, &status,
						      WNOHANG) == 0,
					      "markd exited during start-up:"
					      " %s", log_from(off));
				tu_pause_ms(2);
			}
			markd_stop(SIGKILL);
			kills++;
			early++;
			assert_intact("after a kill during start-up");
			continue;
		}
		markd_start(0);
		present = verify_all(markd.port, slots, n, &t);
		assert_clean_open(off, present);
		fetch_events(markd.port, slots, n, &now);
		assert_prefix(&seen, &now);
		if (round == ROUNDS)
			break;
		round_begin(markd.port);
		until = tu_mono_ms() + tu_rng_range(&g, 30, 700);
		while (tu_mono_ms() < until && !client_failed())
			tu_pause_ms(5);
		/* what can be read now is committed: it must survive */
		fetch_events(markd.port, slots, n, &seen);
		markd_stop(SIGKILL);
		kills++;
		ck_assert_msg(round_end(), "a client did not stop in 30 s");
		ck_assert_msg(!client_failed(), "%s", failure);
		assert_intact("after a kill");
	}
	pthread_mutex_lock(&round_mu);
	quitting = true;
	pthread_cond_broadcast(&round_cv);
	pthread_mutex_unlock(&round_mu);
	for (int i = 0; i < NCLIENTS; i++)
		pthread_join(clients[i].thread, NULL);

	/* a clean stop, then the file itself */
	ck_assert_int_eq(markd_stop(SIGTERM), 0);
	assert_intact("after the last stop");
	assert_rows(slots, n);
	assert_events_stored(&now);

	for (int i = 0; i < NCLIENTS; i++) {
		for (int k = 0; k < OP_COUNT; k++)
			acked[k] += clients[i].acked[k];
		not_sent += clients[i].not_sent;
		unknown += clients[i].unknown;
		no_mark += clients[i].no_mark;
	}
	for (int k = 0; k < OP_COUNT; k++)
		total += acked[k];
	fprintf(stderr,
		"check_crash: kill loop: %u kills (%u during start-up) in %.1f"
		" s; %u writes answered as expected (create %u, replace %u,"
		" deposit %u, withdraw %u, delete %u, 404s %u); %u unknown"
		" (applied %u, not applied %u, no effect %u); %u not sent"
		" (markd down); %u withdrawals refused for want of a valid"
		" mark; %zu positions, %zu events at the end\n",
		kills, early, (double)(tu_mono_ms() - t0) / 1000.0, total,
		acked[OP_CREATE], acked[OP_REPLACE], acked[OP_DEPOSIT],
		acked[OP_WITHDRAW], acked[OP_DELETE],
		acked[OP_DELETE_ABSENT] + acked[OP_DEPOSIT_ABSENT], unknown,
		t.applied, t.not_applied, t.no_effect, not_sent, no_mark,
		present, now.n);
	/* the loop did what it is for */
	ck_assert_int_eq(kills, ROUNDS);
	for (int k = 0; k <= OP_DELETE; k++)
		ck_assert_msg(acked[k] > 0, "no %s was acknowledged",
			      op_name[k]);
	ck_assert_msg(unknown > 0, "no kill cut a write");
	ck_assert_msg(now.n > 0, "no event was logged");
	evlog_free(&seen);
	evlog_free(&now);
}
END_TEST

/* ================= conditions of the file ================= */

/* A few positions of our own, for the single-threaded tests. */
#define NFIX 8

struct fixed {
	struct slot slot[NFIX];
	struct slot *ptr[NFIX];
	int used;
};

static void
fixed_init(struct fixed *f)
{
	memset(f, 0, sizeof(*f));
	for (int i = 0; i < NFIX; i++) {
		snprintf(f->slot[i].id, sizeof(f->slot[i].id), "f%d", i);
		f->ptr[i] = &f->slot[i];
	}
}

/* Sends op on slot i; on 2xx the model takes the new state. Returns the
 * status, and leaves the answer in r. */
static long
fixed_op(struct fixed *f, int i, enum op op, int64_t amount,
	 struct tu_resp *r)
{
	struct slot *s = &f->slot[i];
	struct pstate fresh;
	struct request q;

	memset(&fresh, 0, sizeof(fresh));
	fresh.present = true;
	fresh.entry = 3000000;
	fresh.coll = 700000 + 100 * i + (s->cur.present ? 11 : 0);
	make_request(s, op, amount, &fresh, &q);
	ck_assert_msg(req(markd.port, q.method, q.path,
			  q.body[0] != '\0' ? q.body : NULL, r),
		      "%s %s: curl %d", q.method, q.path, (int)r->code);
	if (r->status >= 200 && r->status < 300)
		s->cur = q.after;
	return r->status;
}

/* Every position as acknowledged, through GET and the list. */
static void
fixed_verify(struct fixed *f)
{
	struct tally t = { 0, 0, 0 };

	verify_all(markd.port, f->ptr, NFIX, &t);
}

/* Every write kind answers 503 with the JSON error, whose message
 * contains text; the model does not change. */
static void
writes_refused(struct fixed *f, const char *text)
{
	static const enum op ops[] = { OP_CREATE, OP_REPLACE, OP_DEPOSIT,
				       OP_DELETE };
	static const int on[] = { 7, 0, 1, 2 };
	struct tu_resp r = { 0 };

	for (size_t k = 0; k < sizeof(ops) / sizeof(ops[0]); k++) {
		long st = fixed_op(f, on[k], ops[k], 123, &r);

		ck_assert_msg(st == 503, "%s on %s while the store refuses"
			      " writes: %ld %s", op_name[ops[k]],
			      f->slot[on[k]].id, st, r.body);
		ck_assert_str_eq(err_field(&r, "code"),
				 "service_unavailable");
		ck_assert_msg(strstr(err_field(&r, "message"), text) != NULL,
			      "503 without \"%s\": %s", text, r.body);
	}
	tu_resp_free(&r);
}

/* Reads work while writes are refused: GETs, the list, the events. */
static void
reads_work(struct fixed *f)
{
	struct tu_resp r = { 0 };

	fixed_verify(f);
	ck_assert(req(markd.port, "GET", "/v1/liquidations", NULL, &r));
	ck_assert_msg(r.status == 200, "%ld %s", r.status, r.body);
	tu_resp_free(&r);
}

/* /readyz says the store refuses writes (polled: 5 s). */
static void
not_ready_for_store(void)
{
	struct tu_resp r = { 0 };
	bool down = readyz_is(markd.port, 503, 5000, &r);

	ck_assert_msg(down && strstr(r.body, "position store refuses writes")
				      != NULL,
		      "/readyz while the store refuses writes: %ld %s",
		      r.status, r.body);
	tu_resp_free(&r);
}

/* The log from off names the file and SQLite's error text. */
static void
logged_store_error(size_t off, const char *sqlite_text)
{
	char *t;

	ck_assert_msg(log_has(off, "position store failed", 5000),
		      "no store error in the log: %s", log_from(off));
	t = log_from(off);
	ck_assert_msg(strstr(t, dbpath) != NULL,
		      "the log does not name %s: %s", dbpath, t);
	ck_assert_msg(strstr(t, sqlite_text) != NULL,
		      "the log does not say \"%s\": %s", sqlite_text, t);
	free(t);
}

/* Registers f0..f3 and funds f0 (all acknowledged), then waits until
 * markd is ready, so that a failing /readyz later is the store's. */
static void
fixed_populate(struct fixed *f)
{
	struct tu_resp r = { 0 };

	for (int i = 0; i < 4; i++)
		ck_assert_int_eq(fixed_op(f, i, OP_CREATE, 0, &r), 201);
	ck_assert_int_eq(fixed_op(f, 0, OP_DEPOSIT, 4321, &r), 200);
	ck_assert_msg(readyz_is(markd.port, 200, 20000, &r),
		      "markd not ready: %ld %s", r.status, r.body);
	tu_resp_free(&r);
}

/* After the condition is gone (and markd restarted where it must be):
 * writes are acknowledged again, /readyz recovers, and after a clean
 * stop the file is intact and holds exactly what was acknowledged. */
static void
recovered(struct fixed *f)
{
	struct tu_resp r = { 0 };

	ck_assert_int_eq(fixed_op(f, 2, OP_DELETE, 0, &r), 200);
	ck_assert_int_eq(fixed_op(f, 7, OP_CREATE, 0, &r), 201);
	ck_assert_int_eq(fixed_op(f, 1, OP_DEPOSIT, 99, &r), 200);
	ck_assert_msg(readyz_is(markd.port, 200, 10000, &r),
		      "/readyz after recovery: %ld %s", r.status, r.body);
	fixed_verify(f);
	ck_assert_int_eq(markd_stop(SIGTERM), 0);
	assert_intact("after recovery");
	assert_rows(f->ptr, NFIX);
	tu_resp_free(&r);
}

/* Whether a child running as NOBODY can run markd and write in dbdir. */
static bool
nobody_can_run(void)
{
	char prog[TU_PATH_LEN];
	pid_t pid;
	int status;

	tu_buildpath(prog, sizeof(prog), "markd");
	pid = fork();
	if (pid < 0)
		return false;
	if (pid == 0) {
		bool ok = setgroups(0, NULL) == 0 && setgid(NOBODY) == 0 &&
			  setuid(NOBODY) == 0 && access(prog, X_OK) == 0 &&
			  access(dbdir, W_OK | X_OK) == 0;

		_exit(ok ? 0 : 1);
	}
	return waitpid(pid, &status, 0) == pid && WIFEXITED(status) &&
	       WEXITSTATUS(status) == 0;
}

START_TEST(test_read_only)
{
	struct fixed f;
	struct tu_resp r = { 0 };
	unsigned how = 0;
	size_t off;
	char *before, *after, *t;
	long st;
	int rc;

	fixed_init(&f);
	if (geteuid() == 0) {
		/* root ignores permission bits: run markd as NOBODY */
		ck_assert_int_eq(chown(dbdir, NOBODY, NOBODY), 0);
		if (!nobody_can_run()) {
			fprintf(stderr, "check_crash: test_read_only SKIPPED:"
				" running as root and uid %d cannot run %s"
				" or write %s\n", NOBODY, "markd", dbdir);
			return;
		}
		how = RUN_AS_NOBODY;
	}
	markd_start(how);
	fixed_populate(&f);

	/* read-only while markd runs: it writes through descriptors opened
	 * before, so this is acknowledged, and must be kept */
	ck_assert_int_eq(chmod(dbpath, 0444), 0);
	ck_assert_int_eq(fixed_op(&f, 4, OP_CREATE, 0, &r), 201);
	ck_assert_int_eq(fixed_op(&f, 3, OP_DEPOSIT, 777, &r), 200);

	/* killed: the WAL holds it all; started on the read-only file */
	markd_stop(SIGKILL);
	off = log_size();
	markd_start(how);
	reads_work(&f);
	writes_refused(&f, "read-only");
	reads_work(&f);
	not_ready_for_store();
	logged_store_error(off, "attempt to write a readonly database");

	/* writable again: does markd notice without a restart? */
	ck_assert_int_eq(chmod(dbpath, 0644), 0);
	st = fixed_op(&f, 5, OP_CREATE, 0, &r);
	ck_assert_msg(st == 201 || st == 503, "%ld %s", st, r.body);
	fprintf(stderr, "check_crash: read-only file made writable again:"
		" markd %s\n", st == 201 ? "writes again at once"
					 : "still refuses writes until it"
					   " restarts");
	ck_assert_int_eq(markd_stop(SIGTERM), 0);
	markd_start(how);
	recovered(&f);

	/* the folder read-only too, as on a read-only file system, after a
	 * clean stop, which removes the WAL's two files (-wal, -shm) that
	 * SQLite now cannot make: markd must say so and not start */
	markd_start(how);
	ck_assert_int_eq(markd_stop(SIGTERM), 0);
	ck_assert_msg(access(dbpath, F_OK) == 0, "%s", dbpath);
	{
		char p[TU_PATH_LEN + 8];

		snprintf(p, sizeof(p), "%s-wal", dbpath);
		ck_assert_msg(access(p, F_OK) != 0, "%s is left", p);
		snprintf(p, sizeof(p), "%s-shm", dbpath);
		ck_assert_msg(access(p, F_OK) != 0, "%s is left", p);
	}
	ck_assert_int_eq(chmod(dbpath, 0444), 0);
	ck_assert_int_eq(chmod(dbdir, 0555), 0);
	before = tu_read_file(dbpath);
	off = log_size();
	markd_spawn(how);
	rc = tu_wait_exit(&markd, 15000);
	t = log_from(off);
	/* 3: could not start (a system problem, not the config) */
	ck_assert_msg(rc == 3, "markd on a read-only folder: exit %d: %s", rc,
		      t);
	ck_assert_msg(strstr(t, dbpath) != NULL &&
			      strstr(t, "readonly") != NULL,
		      "markd on a read-only folder: %s", t);
	after = tu_read_file(dbpath);
	ck_assert_msg(strcmp(before, after) == 0 &&
			      access(dbpath, F_OK) == 0,
		      "the refused file changed");
	ck_assert_int_eq(chmod(dbdir, 0755), 0);
	assert_intact("after the refused start");
	free(before);
	free(after);
	free(t);
	tu_resp_free(&r);
}
END_TEST

/* The largest of the database's files, in bytes. */
static rlim_t
largest_db_file(void)
{
	static const char *const suffix[] = { "", "-wal", "-shm" };
	rlim_t most = 0;

	for (size_t i = 0; i < 3; i++) {
		char p[TU_PATH_LEN + 8];
		struct stat st;

		snprintf(p, sizeof(p), "%s%s", dbpath, suffix[i]);
		if (stat(p, &st) == 0 && (rlim_t)st.st_size > most)
			most = (rlim_t)st.st_size;
	}
	return most;
}

/* Writes new positions until one is refused (at most 200): the store is
 * full. Everything answered before is acknowledged. */
static void
fill_until_refused(struct fixed *f, const char *text)
{
	struct tu_resp r = { 0 };
	int i;

	for (i = 0; i < 200; i++) {
		long st = fixed_op(f, 6, f->slot[6].cur.present ? OP_REPLACE
								: OP_CREATE,
				   0, &r);

		if (st == 503)
			break;
		ck_assert_msg(st == 200 || st == 201, "%ld %s", st, r.body);
	}
	ck_assert_msg(i < 200, "200 writes and the store is not full");
	ck_assert_str_eq(err_field(&r, "code"), "service_unavailable");
	ck_assert_msg(strstr(err_field(&r, "message"), text) != NULL,
		      "503 without \"%s\": %s", text, r.body);
	tu_resp_free(&r);
}

START_TEST(test_size_limit)
{
	struct fixed f;
	struct rlimit old, lim;
	size_t off;

	fixed_init(&f);
	markd_start(IGNORE_XFSZ | LOG_PIPE);
	fixed_populate(&f);
	off = log_size();
	ck_assert_int_eq(prlimit(markd.pid, RLIMIT_FSIZE, NULL, &old), 0);
	lim.rlim_cur = largest_db_file();
	lim.rlim_max = old.rlim_max;
	ck_assert_int_gt(lim.rlim_cur, 0);
	ck_assert_int_eq(prlimit(markd.pid, RLIMIT_FSIZE, &lim, NULL), 0);

	fill_until_refused(&f, "store put_position");
	writes_refused(&f, "store ");
	reads_work(&f);
	not_ready_for_store();
	logged_store_error(off, "disk I/O error");

	/* the limit lifted at run time: no restart */
	ck_assert_int_eq(prlimit(markd.pid, RLIMIT_FSIZE, &old, NULL), 0);
	recovered(&f);
}
END_TEST

/* Writes text to a /proc file in one write(2). */
static bool
proc_write(const char *path, const char *text)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	ssize_t n = fd >= 0 ? write(fd, text, strlen(text)) : -1;

	if (fd >= 0)
		close(fd);
	return n == (ssize_t)strlen(text);
}

/* Mounts a tmpfs of opts over where, in a mount namespace of this
 * process alone (a user namespace too when that is what it takes).
 * NULL, or what failed (errno set) when the kernel or the sandbox allows
 * neither. */
static const char *
private_tmpfs(const char *where, const char *opts)
{
	const char *fork_mode = getenv("CK_FORK");
	uid_t uid = geteuid();
	gid_t gid = getegid();
	char map[64];

	/* the namespace must die with this test's own process */
	if (fork_mode != NULL && strcmp(fork_mode, "no") == 0) {
		errno = EPERM;
		return "CK_FORK=no";
	}
	if (unshare(CLONE_NEWNS) != 0) {
		if (unshare(CLONE_NEWUSER | CLONE_NEWNS) != 0)
			return "unshare";
		snprintf(map, sizeof(map), "0 %u 1\n", (unsigned)uid);
		if (!proc_write("/proc/self/setgroups", "deny") &&
		    errno != ENOENT)
			return "setgroups";
		if (!proc_write("/proc/self/uid_map", map))
			return "uid_map";
		snprintf(map, sizeof(map), "0 %u 1\n", (unsigned)gid);
		if (!proc_write("/proc/self/gid_map", map))
			return "gid_map";
	}
	if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0)
		return "mount --make-rprivate /";
	if (mount("markd-test", where, "tmpfs", MS_NOSUID | MS_NODEV, opts) !=
	    0)
		return "mount -t tmpfs";
	return NULL;
}

/* Fills the file system of dbdir with a file until ENOSPC. */
static void
fill_disk(const char *ballast)
{
	static char block[65536];
	size_t chunk = sizeof(block);
	int fd = open(ballast, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);

	ck_assert_msg(fd >= 0, "%s: %s", ballast, strerror(errno));
	while (chunk > 0) {
		ssize_t n = write(fd, block, chunk);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			ck_assert_msg(errno == ENOSPC, "%s: %s", ballast,
				      strerror(errno));
			chunk /= 2;
		}
	}
	close(fd);
}

START_TEST(test_full_tmpfs)
{
	char ballast[TU_PATH_LEN + 16];
	const char *failed;
	struct fixed f;
	size_t off;

	fixed_init(&f);
	failed = private_tmpfs(dbdir, "size=2m,mode=0755");
	if (failed != NULL) {
		fprintf(stderr, "check_crash: test_full_tmpfs SKIPPED: no"
			" private mount namespace for a tmpfs here (%s: %s)\n",
			failed, strerror(errno));
		return;
	}
	dbdir_mounted = true;
	snprintf(ballast, sizeof(ballast), "%s/ballast", dbdir);
	markd_start(0);
	fixed_populate(&f);
	off = log_size();
	fill_disk(ballast);

	fill_until_refused(&f, "disk full");
	writes_refused(&f, "disk full");
	reads_work(&f);
	not_ready_for_store();
	logged_store_error(off, "database or disk is full");

	/* room again, at run time: no restart */
	ck_assert_int_eq(unlink(ballast), 0);
	recovered(&f);
}
END_TEST

static Suite *
crash_suite(void)
{
	Suite *s = suite_create("crash");
	TCase *tc = tcase_create("crash");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 150);
	tcase_add_test(tc, test_kill_loop);
	tcase_add_test(tc, test_read_only);
	tcase_add_test(tc, test_size_limit);
	tcase_add_test(tc, test_full_tmpfs);
	suite_add_tcase(s, tc);
	return s;
}

TU_MAIN_CURL(crash_suite)
