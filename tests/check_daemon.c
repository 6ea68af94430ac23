/*
 * check_daemon.c - markd as a daemon, end to end: markd and markd-fakex
 * run as child processes on 127.0.0.1 (ephemeral ports) and are driven
 * over real HTTP with libcurl.
 *
 * Covered: marks come up with every documented field, feed health and
 * the ?symbols= subset; every error status the read API produces (400,
 * 404, 405, 413) from a real request; a venue fault injected through
 * fakex's admin endpoint shows in /v1/feeds, in the mark's sources[] and
 * in /metrics, and clears; the SSE stream delivers mark events in order
 * (ids increasing, seq never decreasing per symbol), resumes after
 * Last-Event-ID and carries feed events; /metrics passes a strict
 * Prometheus checker; SIGHUP with good files (a source and an instrument
 * added, a source removed) and with a bad one (refused, errors logged,
 * old config still served); SIGTERM while clients hammer the API exits 0
 * promptly without cutting an answer; exit codes of start failures; JSON
 * logs; every route the daemon serves is documented in doc/openapi.yaml.
 *
 * 401, 403 and 415 need a write route (token, JSON body); the daemon has
 * none of its own yet, so tests/check_httpd.c covers them on the same
 * server code.
 *
 * Children get PR_SET_PDEATHSIG(SIGKILL), so a failed test never leaves
 * them behind; every wait has a deadline.
 */
#include "config.h"

#include <check.h>
#include <curl/curl.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <jansson.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>

#include "aggregator/dec.h"
#include "daemon/app.h"
#include "daemon/cfg.h"
#include "tests/promcheck.h"
#include "tests/testutil.h"

#define PATH_LEN 512

/* ---- time and files ---- */

static int64_t
mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Waits ms without busy-looping (used only between polls of a condition
 * with a deadline, never as synchronisation by itself). */
static void
pause_ms(int ms)
{
	poll(NULL, 0, ms);
}

static char tmpdir[PATH_LEN];

static void
write_text(const char *path, const char *text)
{
	char tmp[PATH_LEN + 8];
	FILE *f;

	/* write then rename, so that a reload never reads half a file */
	snprintf(tmp, sizeof tmp, "%s.tmp", path);
	f = fopen(tmp, "w");
	ck_assert_msg(f != NULL, "%s: %s", tmp, strerror(errno));
	ck_assert_int_eq(fputs(text, f) >= 0, 1);
	ck_assert_int_eq(fclose(f), 0);
	ck_assert_int_eq(rename(tmp, path), 0);
}

/* The whole file as a new string ("" when absent). */
static char *
read_text(const char *path)
{
	FILE *f = fopen(path, "r");
	char *buf = NULL;
	size_t len = 0, cap = 0;

	if (f != NULL) {
		for (;;) {
			if (len + 4096 + 1 > cap) {
				cap = cap > 0 ? 2 * cap : 8192;
				buf = realloc(buf, cap);
				ck_assert_ptr_nonnull(buf);
			}
			size_t got = fread(buf + len, 1, cap - len - 1, f);

			if (got == 0)
				break;
			len += got;
		}
		fclose(f);
	}
	if (buf == NULL)
		buf = calloc(1, 1);
	ck_assert_ptr_nonnull(buf);
	buf[len] = '\0';
	return buf;
}

static bool
file_has(const char *path, const char *needle)
{
	char *t = read_text(path);
	bool yes = strstr(t, needle) != NULL;

	free(t);
	return yes;
}

static bool
wait_file_has(const char *path, const char *needle, int timeout_ms)
{
	int64_t deadline = mono_ms() + timeout_ms;

	while (mono_ms() < deadline) {
		if (file_has(path, needle))
			return true;
		pause_ms(20);
	}
	return file_has(path, needle);
}

static void
make_tmpdir(void)
{
	const char *base = getenv("TMPDIR");

	snprintf(tmpdir, sizeof tmpdir, "%s/markd-daemon-XXXXXX",
		 base != NULL && base[0] != '\0' ? base : "/tmp");
	ck_assert_ptr_nonnull(mkdtemp(tmpdir));
}

static void
remove_tmpdir(void)
{
	DIR *d = opendir(tmpdir);
	struct dirent *e;
	char p[2 * PATH_LEN];

	if (d == NULL)
		return;
	while ((e = readdir(d)) != NULL) {
		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		snprintf(p, sizeof p, "%s/%s", tmpdir, e->d_name);
		unlink(p);
	}
	closedir(d);
	rmdir(tmpdir);
}

/* ---- child processes ---- */

struct child {
	pid_t pid;
	int port;
	char out[2 * PATH_LEN];
	char err[2 * PATH_LEN];
};

/* Starts prog (a path under MARKD_BUILDDIR) with args (NULL-terminated),
 * stdout and stderr to <tmpdir>/<name>.out/.err; it dies with us. */
static void
spawn(struct child *c, const char *rel, const char *name,
      const char *const *args)
{
	char prog[PATH_LEN];
	const char *argv[16];
	size_t n = 0;
	pid_t parent = getpid();

	memset(c, 0, sizeof *c);
	tu_buildpath(prog, sizeof prog, rel);
	snprintf(c->out, sizeof c->out, "%s/%s.out", tmpdir, name);
	snprintf(c->err, sizeof c->err, "%s/%s.err", tmpdir, name);
	argv[n++] = prog;
	while (*args != NULL && n < 15)
		argv[n++] = *args++;
	argv[n] = NULL;
	/* no stale "listening" line from an earlier run */
	unlink(c->out);
	unlink(c->err);
	c->pid = fork();
	ck_assert_int_ge(c->pid, 0);
	if (c->pid == 0) {
		int o = open(c->out, O_WRONLY | O_CREAT | O_TRUNC, 0644);
		int e = open(c->err, O_WRONLY | O_CREAT | O_TRUNC, 0644);

		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != parent)
			_exit(126);
		if (o < 0 || e < 0)
			_exit(126);
		dup2(o, STDOUT_FILENO);
		dup2(e, STDERR_FILENO);
		close(o);
		close(e);
		execv(prog, (char *const *)argv);
		_exit(127);
	}
}

/* Reads "listening 127.0.0.1:PORT" from the child's stdout (10 s). */
static bool
wait_listening(struct child *c)
{
	int64_t deadline = mono_ms() + 10000;

	while (mono_ms() < deadline) {
		char *t = read_text(c->out);
		const char *p = strstr(t, "listening 127.0.0.1:");
		int status;

		if (p != NULL && strchr(p, '\n') != NULL &&
		    sscanf(p, "listening 127.0.0.1:%d", &c->port) == 1) {
			free(t);
			return true;
		}
		free(t);
		if (waitpid(c->pid, &status, WNOHANG) == c->pid) {
			c->pid = -1;
			return false;
		}
		pause_ms(20);
	}
	return false;
}

/* Sends sig and reaps within timeout_ms (SIGKILL after). Returns the exit
 * status, or -1 when it had to be killed or died of a signal. */
static int
stop_child(struct child *c, int sig, int timeout_ms)
{
	int64_t deadline = mono_ms() + timeout_ms;
	int status = 0;

	if (c->pid <= 0)
		return -1;
	kill(c->pid, sig);
	while (mono_ms() < deadline) {
		if (waitpid(c->pid, &status, WNOHANG) == c->pid) {
			c->pid = -1;
			return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
		}
		pause_ms(10);
	}
	kill(c->pid, SIGKILL);
	waitpid(c->pid, &status, 0);
	c->pid = -1;
	return -1;
}

/* Waits for a child to exit on its own; its status or -1. */
static int
wait_exit(struct child *c, int timeout_ms)
{
	int64_t deadline = mono_ms() + timeout_ms;
	int status;

	while (mono_ms() < deadline) {
		if (waitpid(c->pid, &status, WNOHANG) == c->pid) {
			c->pid = -1;
			return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
		}
		pause_ms(10);
	}
	stop_child(c, SIGKILL, 1000);
	return -1;
}

/* ---- HTTP ---- */

struct resp {
	long status;
	CURLcode code;
	char *body;
	size_t len;
	char ctype[128];
	char allow[128];
};

static size_t
on_body(char *p, size_t sz, size_t n, void *ud)
{
	struct resp *r = ud;
	char *nb = realloc(r->body, r->len + sz * n + 1);

	if (nb == NULL)
		return 0;
	r->body = nb;
	memcpy(r->body + r->len, p, sz * n);
	r->len += sz * n;
	r->body[r->len] = '\0';
	return sz * n;
}

static void
header_value(const char *line, size_t n, const char *name, char *out,
	     size_t cap)
{
	size_t k = strlen(name);

	if (n > k && strncasecmp(line, name, k) == 0 && line[k] == ':') {
		const char *v = line + k + 1;
		size_t vn = n - k - 1;

		while (vn > 0 && (*v == ' ' || *v == '\t')) {
			v++;
			vn--;
		}
		while (vn > 0 && (v[vn - 1] == '\r' || v[vn - 1] == '\n'))
			vn--;
		snprintf(out, cap, "%.*s", (int)vn, v);
	}
}

static size_t
on_header(char *p, size_t sz, size_t n, void *ud)
{
	struct resp *r = ud;

	header_value(p, sz * n, "Content-Type", r->ctype, sizeof r->ctype);
	header_value(p, sz * n, "Allow", r->allow, sizeof r->allow);
	return sz * n;
}

static void
resp_free(struct resp *r)
{
	free(r->body);
	memset(r, 0, sizeof *r);
}

/* One request (method may be NULL for GET) on h (or a fresh handle). */
static void
http_on(CURL *h, int port, const char *method, const char *path,
	const char *body, struct resp *r)
{
	char url[PATH_LEN];
	CURL *own = NULL;

	memset(r, 0, sizeof *r);
	if (h == NULL)
		h = own = curl_easy_init();
	ck_assert_ptr_nonnull(h);
	snprintf(url, sizeof url, "http://127.0.0.1:%d%s", port, path);
	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, r);
	curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(h, CURLOPT_HEADERDATA, r);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, 5000L);
	curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
	if (method != NULL && strcmp(method, "HEAD") == 0)
		curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
	if (body != NULL) {
		curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
		curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
	}
	r->code = curl_easy_perform(h);
	curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &r->status);
	if (own != NULL)
		curl_easy_cleanup(own);
	if (r->body == NULL)
		r->body = calloc(1, 1);
}

static void
http(int port, const char *method, const char *path, const char *body,
     struct resp *r)
{
	http_on(NULL, port, method, path, body, r);
}

/* GET path as JSON (a new reference), asserting status 200. */
static json_t *
get_json(int port, const char *path)
{
	struct resp r;
	json_error_t je;
	json_t *j;

	http(port, NULL, path, NULL, &r);
	ck_assert_msg(r.status == 200, "GET %s: %ld %s", path, r.status,
		      r.body);
	ck_assert_msg(strncmp(r.ctype, "application/json", 16) == 0,
		      "GET %s: Content-Type %s", path, r.ctype);
	j = json_loadb(r.body, r.len, 0, &je);
	ck_assert_msg(j != NULL, "GET %s: %s: %s", path, je.text, r.body);
	resp_free(&r);
	return j;
}

/* Asserts an API error body with status and code. */
static void
assert_error(struct resp *r, long status, const char *code)
{
	json_t *j, *e;

	ck_assert_msg(r->status == status, "status %ld (want %ld): %s",
		      r->status, status, r->body);
	ck_assert_msg(strncmp(r->ctype, "application/json", 16) == 0,
		      "Content-Type %s", r->ctype);
	j = json_loadb(r->body, r->len, 0, NULL);
	ck_assert_msg(j != NULL, "not JSON: %s", r->body);
	e = json_object_get(j, "error");
	ck_assert_ptr_nonnull(e);
	ck_assert_str_eq(json_string_value(json_object_get(e, "code")), code);
	ck_assert_ptr_nonnull(json_string_value(json_object_get(e, "message")));
	json_decref(j);
}

/* ---- the fake exchange (one per test case, shared by its tests) ---- */

static struct child fakex;

static const char fakex_json[] =
	"{\"listen\": \"127.0.0.1:0\", \"speed\": 1, \"loop\": true,\n"
	" \"venues\": {\n"
	"  \"coinbase\": {\"markets\": {\n"
	"   \"BTC-USD\": {\"walk\": {\"seed\": 7, \"start\": \"30000\", \"sigma_bps\": 1}},\n"
	"   \"ETH-USD\": {\"walk\": {\"seed\": 8, \"start\": \"2000\", \"sigma_bps\": 1}}}},\n"
	"  \"kraken\": {\"markets\": {\n"
	"   \"XBTUSD\": {\"walk\": {\"seed\": 7, \"start\": \"30000\", \"sigma_bps\": 1}},\n"
	"   \"ETHUSD\": {\"walk\": {\"seed\": 8, \"start\": \"2000\", \"sigma_bps\": 1}}}},\n"
	"  \"bitstamp\": {\"markets\": {\n"
	"   \"btcusd\": {\"walk\": {\"seed\": 7, \"start\": \"30000\", \"sigma_bps\": 1}},\n"
	"   \"ethusd\": {\"walk\": {\"seed\": 8, \"start\": \"2000\", \"sigma_bps\": 1}}}}\n"
	" }}\n";

static void
fakex_setup(void)
{
	char path[2 * PATH_LEN];
	const char *args[] = { "-s", path, "-p", "0", NULL };

	curl_global_init(CURL_GLOBAL_ALL);
	make_tmpdir();
	snprintf(path, sizeof path, "%s/fakex.json", tmpdir);
	write_text(path, fakex_json);
	spawn(&fakex, "tools/markd-fakex", "fakex", args);
	if (!wait_listening(&fakex))
		fprintf(stderr, "check_daemon: markd-fakex did not start\n");
}

static void
fakex_teardown(void)
{
	if (stop_child(&fakex, SIGTERM, 5000) != 0)
		fprintf(stderr, "check_daemon: markd-fakex did not exit cleanly\n");
	remove_tmpdir();
	curl_global_cleanup();
}

static void
fault(const char *json)
{
	struct resp r;

	http(fakex.port, "POST", "/admin/fault", json, &r);
	ck_assert_msg(r.status == 200, "fault %s: %ld %s", json, r.status,
		      r.body);
	resp_free(&r);
}

static void
clear_faults(void)
{
	struct resp r;

	http(fakex.port, "DELETE", "/admin/fault?venue=all", NULL, &r);
	ck_assert_msg(r.status == 200, "clear: %ld %s", r.status, r.body);
	resp_free(&r);
}

/* ---- markd ---- */

static struct child markd;
static char conf_path[2 * PATH_LEN];
/* What write_config puts in "listen" and "log" (tests may change them;
 * each_setup restores them). */
static char cfg_listen[64];
static const char *cfg_log;

/* A source of the fake exchange, polled every 100 ms. */
static void
source_json(char *out, size_t cap, const char *name)
{
	snprintf(out, cap,
		 "{\"name\": \"%s\", \"adapter\": \"%s\", "
		 "\"base_url\": \"http://127.0.0.1:%d/%s\", "
		 "\"interval_ms\": 100, \"timeout_ms\": 1000}",
		 name, name, fakex.port, name);
}

/*
 * Writes a config to conf_path: the named sources (comma-separated),
 * instruments as JSON text, and extra top-level keys (may be "").
 */
static void
write_config(const char *sources, const char *instruments, const char *extra)
{
	char text[8192], src[512], names[256], *save = NULL;
	size_t len;

	len = (size_t)snprintf(text, sizeof text,
			       "{\"listen\": \"%s\", "
			       "\"database\": \"%s/markd.db\", "
			       "\"log\": %s, "
			       "\"http\": {\"max_body_bytes\": 1024, "
			       "\"connection_timeout_s\": 5}, %s"
			       "\"defaults\": {\"min_sources\": 2, "
			       "\"max_age_ms\": 5000},\n\"sources\": [",
			       cfg_listen, tmpdir, cfg_log, extra);
	snprintf(names, sizeof names, "%s", sources);
	for (char *n = strtok_r(names, ",", &save); n != NULL;
	     n = strtok_r(NULL, ",", &save)) {
		source_json(src, sizeof src, n);
		len += (size_t)snprintf(text + len, sizeof text - len, "%s%s\n",
					text[len - 1] == '[' ? "" : ",", src);
	}
	snprintf(text + len, sizeof text - len, "],\n\"instruments\": %s}\n",
		 instruments);
	write_text(conf_path, text);
}

#define BTC3 \
	"{\"symbol\": \"BTC-USD\", \"legs\": [" \
	"{\"source\": \"coinbase\", \"market\": \"BTC-USD\"}," \
	"{\"source\": \"kraken\", \"market\": \"XBTUSD\"}," \
	"{\"source\": \"bitstamp\", \"market\": \"btcusd\"}]}"
#define BTC2 \
	"{\"symbol\": \"BTC-USD\", \"legs\": [" \
	"{\"source\": \"coinbase\", \"market\": \"BTC-USD\"}," \
	"{\"source\": \"kraken\", \"market\": \"XBTUSD\"}]}"
#define ETH3 \
	"{\"symbol\": \"ETH-USD\", \"legs\": [" \
	"{\"source\": \"coinbase\", \"market\": \"ETH-USD\"}," \
	"{\"source\": \"kraken\", \"market\": \"ETHUSD\"}," \
	"{\"source\": \"bitstamp\", \"market\": \"ethusd\"}]}"

static void
markd_start(void)
{
	const char *args[] = { "-c", conf_path, NULL };

	spawn(&markd, "markd", "markd", args);
	ck_assert_msg(wait_listening(&markd), "markd did not start: %s",
		      read_text(markd.err));
}

/* Waits until GET /readyz answers 200 (15 s). */
static void
wait_ready(void)
{
	int64_t deadline = mono_ms() + 15000;
	struct resp r;

	for (;;) {
		http(markd.port, NULL, "/readyz", NULL, &r);
		if (r.status == 200) {
			ck_assert_ptr_nonnull(strstr(r.body, "\"ready\""));
			resp_free(&r);
			return;
		}
		ck_assert_msg(mono_ms() < deadline, "not ready: %ld %s",
			      r.status, r.body);
		ck_assert_msg(r.status == 503, "readyz: %ld %s", r.status,
			      r.body);
		resp_free(&r);
		pause_ms(50);
	}
}

/* Whether GET path's JSON satisfies pred. */
static bool
json_poll(const char *path, bool (*pred)(json_t *j, void *arg), void *arg,
	  int timeout_ms)
{
	int64_t deadline = mono_ms() + timeout_ms;

	for (;;) {
		json_t *j = get_json(markd.port, path);
		bool ok = pred(j, arg);

		if (!ok && mono_ms() >= deadline) {
			char *text = json_dumps(j, JSON_COMPACT);

			fprintf(stderr, "check_daemon: GET %s: still %s\n", path,
				text);
			free(text);
		}
		json_decref(j);
		if (ok)
			return true;
		if (mono_ms() >= deadline)
			return false;
		pause_ms(50);
	}
}

static bool
all_legs_used(json_t *m, void *arg)
{
	(void)arg;
	return json_integer_value(json_object_get(m, "sources_used")) ==
	       json_integer_value(json_object_get(m, "sources_total"));
}

/* Ready, and every leg of BTC-USD has delivered (readiness needs only
 * the quorum). */
static void
wait_all_used(void)
{
	wait_ready();
	ck_assert_msg(json_poll("/v1/marks/BTC-USD", all_legs_used, NULL,
				10000),
		      "not every leg of BTC-USD is used");
}

static void
each_setup(void)
{
	snprintf(conf_path, sizeof conf_path, "%s/markd.json", tmpdir);
	snprintf(cfg_listen, sizeof cfg_listen, "127.0.0.1:0");
	cfg_log = "{\"level\": \"info\"}";
	memset(&markd, 0, sizeof markd);
	markd.pid = -1;
	ck_assert_int_gt(fakex.port, 0);
	clear_faults();
}

static void
each_teardown(void)
{
	if (markd.pid > 0)
		stop_child(&markd, SIGTERM, 10000);
	clear_faults();
}

/* ---- JSON checks ---- */

/* A decimal string with exactly `scale` fraction digits. */
static struct mk_dec
dec_field(json_t *o, const char *key, int scale)
{
	const char *s = json_string_value(json_object_get(o, key));
	const char *dot;
	struct mk_dec d;

	ck_assert_msg(s != NULL, "%s: not a string", key);
	dot = strchr(s, '.');
	ck_assert_msg(dot != NULL && (int)strlen(dot + 1) == scale,
		      "%s: \"%s\" does not have %d fraction digits", key, s,
		      scale);
	ck_assert_int_eq(mk_dec_parse(s, strlen(s), &d, NULL), MK_OK);
	return d;
}

/* An RFC 3339 UTC time with milliseconds. */
static void
assert_time(json_t *o, const char *key)
{
	const char *s = json_string_value(json_object_get(o, key));
	int y, mo, d, h, mi, sec, ms;
	char z;

	ck_assert_msg(s != NULL, "%s: not a string", key);
	ck_assert_msg(strlen(s) == 24 &&
			      sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d.%3d%c", &y, &mo,
				     &d, &h, &mi, &sec, &ms, &z) == 8 &&
			      z == 'Z',
		      "%s: \"%s\" is not RFC 3339 UTC with ms", key, s);
}

static void
assert_keys(json_t *o, const char *const *keys)
{
	for (size_t i = 0; keys[i] != NULL; i++)
		ck_assert_msg(json_object_get(o, keys[i]) != NULL,
			      "key \"%s\" missing in %s", keys[i],
			      json_dumps(o, JSON_COMPACT));
}

static json_t *
leg_of(json_t *mark, const char *source)
{
	size_t i;
	json_t *l;

	json_array_foreach(json_object_get(mark, "sources"), i, l)
		if (strcmp(json_string_value(json_object_get(l, "source")),
			   source) == 0)
			return l;
	return NULL;
}

static json_t *
feed_of(json_t *feeds, const char *source)
{
	size_t i;
	json_t *f;

	json_array_foreach(json_object_get(feeds, "sources"), i, f)
		if (strcmp(json_string_value(json_object_get(f, "source")),
			   source) == 0)
			return f;
	return NULL;
}

/* ================= the API ================= */

START_TEST(test_marks_and_feeds)
{
	static const char *const mark_keys[] = {
		"symbol", "price", "conf", "status", "valid_for_liquidation",
		"reasons", "held", "sources_used", "sources_total", "ema",
		"twap", "volatility", "updated_at", "age_ms", "seq",
		"last_good_at", "last_good_age_ms", "sources", NULL,
	};
	static const char *const leg_keys[] = {
		"source", "market", "via", "raw_price", "price", "conf",
		"exchange_ts", "received_at", "age_ms", "weight", "state",
		"reason", "error", "error_at", NULL,
	};
	static const char *const feed_keys[] = {
		"source", "state", "markets", "interval_ms", "last_success",
		"last_error", "consecutive_failures", "polls", "counts", "bans",
		"latency_ms", "backoff_ms", "next_poll", NULL,
	};
	json_t *all, *m, *legs, *l, *feeds, *f;
	struct mk_dec price, lo = MK_DEC(INT64_MAX, 0), hi = MK_DEC(0, 0);
	struct resp r;
	size_t i;

	write_config("coinbase,kraken,bitstamp", "[" BTC3 "]", "");
	markd_start();
	wait_all_used();

	http(markd.port, NULL, "/healthz", NULL, &r);
	ck_assert_int_eq(r.status, 200);
	ck_assert_str_eq(r.body, "{\"status\":\"ok\"}");
	resp_free(&r);

	all = get_json(markd.port, "/v1/marks");
	ck_assert_uint_eq(json_array_size(json_object_get(all, "marks")), 1);
	json_decref(all);

	m = get_json(markd.port, "/v1/marks/BTC-USD");
	assert_keys(m, mark_keys);
	ck_assert_str_eq(json_string_value(json_object_get(m, "symbol")),
			 "BTC-USD");
	price = dec_field(m, "price", 8);
	dec_field(m, "conf", 8);
	ck_assert(json_is_true(json_object_get(m, "valid_for_liquidation")));
	ck_assert(json_is_array(json_object_get(m, "reasons")));
	ck_assert(json_is_false(json_object_get(m, "held")));
	ck_assert_int_eq(json_integer_value(json_object_get(m, "sources_total")),
			 3);
	ck_assert_int_ge(json_integer_value(json_object_get(m, "sources_used")),
			 2);
	ck_assert(json_is_string(json_object_get(m, "ema")) ||
		  json_is_null(json_object_get(m, "ema")));
	ck_assert(json_is_number(json_object_get(m, "volatility")) ||
		  json_is_null(json_object_get(m, "volatility")));
	assert_time(m, "updated_at");
	assert_time(m, "last_good_at");
	ck_assert(json_is_integer(json_object_get(m, "age_ms")));
	ck_assert_int_ge(json_integer_value(json_object_get(m, "age_ms")), 0);
	ck_assert_int_gt(json_integer_value(json_object_get(m, "seq")), 0);
	ck_assert(json_is_null(json_object_get(m, "last_good_age_ms")));
	legs = json_object_get(m, "sources");
	ck_assert_uint_eq(json_array_size(legs), 3);
	json_array_foreach(legs, i, l) {
		struct mk_dec lp;

		assert_keys(l, leg_keys);
		ck_assert(json_is_null(json_object_get(l, "via")));
		dec_field(l, "raw_price", 8);
		lp = dec_field(l, "price", 8);
		dec_field(l, "conf", 8);
		assert_time(l, "received_at");
		ck_assert(json_is_integer(json_object_get(l, "age_ms")));
		ck_assert_int_eq(json_integer_value(json_object_get(l, "weight")),
				 1);
		if (strcmp(json_string_value(json_object_get(l, "state")),
			   "used") == 0) {
			ck_assert(json_is_null(json_object_get(l, "reason")));
			if (mk_dec_cmp(lp, lo) < 0)
				lo = lp;
			if (mk_dec_cmp(lp, hi) > 0)
				hi = lp;
		}
	}
	/* the weighted median lies within the legs used */
	ck_assert(mk_dec_cmp(lo, price) <= 0 && mk_dec_cmp(price, hi) <= 0);
	/* Coinbase gives the exchange's time, Kraken none */
	assert_time(leg_of(m, "coinbase"), "exchange_ts");
	ck_assert(json_is_null(json_object_get(leg_of(m, "kraken"),
					       "exchange_ts")));
	json_decref(m);

	/* the subset, in the order asked, and HEAD */
	all = get_json(markd.port, "/v1/marks?symbols=BTC-USD,BTC-USD");
	ck_assert_uint_eq(json_array_size(json_object_get(all, "marks")), 2);
	json_decref(all);
	http(markd.port, "HEAD", "/v1/marks/BTC-USD", NULL, &r);
	ck_assert_int_eq(r.status, 200);
	ck_assert_uint_eq(r.len, 0);
	resp_free(&r);

	feeds = get_json(markd.port, "/v1/feeds");
	assert_time(feeds, "as_of");
	ck_assert_uint_eq(json_array_size(json_object_get(feeds, "sources")), 3);
	json_array_foreach(json_object_get(feeds, "sources"), i, f) {
		assert_keys(f, feed_keys);
		ck_assert_int_eq(json_integer_value(json_object_get(f, "interval_ms")),
				 100);
		ck_assert_int_gt(json_integer_value(json_object_get(
					 json_object_get(f, "counts"), "ok")),
				 0);
		assert_time(f, "last_success");
		ck_assert(json_is_object(json_object_get(f, "latency_ms")));
	}
	json_decref(feeds);
	f = get_json(markd.port, "/v1/feeds/kraken");
	ck_assert_str_eq(json_string_value(json_object_get(f, "source")),
			 "kraken");
	json_decref(f);

	ck_assert_int_eq(stop_child(&markd, SIGTERM, 10000), 0);
	ck_assert(file_has(markd.err, "event=stopped exit=0"));
}
END_TEST

START_TEST(test_error_statuses)
{
	char big[2100];
	struct resp r;

	write_config("coinbase,kraken,bitstamp", "[" BTC3 "]", "");
	markd_start();
	wait_ready();

	http(markd.port, NULL, "/v1/nothing", NULL, &r);
	assert_error(&r, 404, "not_found");
	resp_free(&r);
	http(markd.port, NULL, "/v1/marks/DOGE-USD", NULL, &r);
	assert_error(&r, 404, "not_found");
	resp_free(&r);
	http(markd.port, NULL, "/v1/feeds/nasdaq", NULL, &r);
	assert_error(&r, 404, "not_found");
	resp_free(&r);
	http(markd.port, NULL, "/v1/marks?symbols=BTC-USD,DOGE-USD", NULL, &r);
	assert_error(&r, 404, "not_found");
	resp_free(&r);

	http(markd.port, "POST", "/v1/marks", "{}", &r);
	assert_error(&r, 405, "method_not_allowed");
	ck_assert_str_eq(r.allow, "GET, HEAD");
	resp_free(&r);
	http(markd.port, "DELETE", "/v1/marks/BTC-USD", NULL, &r);
	assert_error(&r, 405, "method_not_allowed");
	resp_free(&r);

	http(markd.port, NULL, "/v1/marks?symbols=BTC-USD,,ETH-USD", NULL, &r);
	assert_error(&r, 400, "bad_request");
	ck_assert_ptr_nonnull(strstr(r.body, "\"field\":\"symbols\""));
	resp_free(&r);
	http(markd.port, NULL,
	     "/v1/marks?symbols=ABCDEFGHIJKLMNOPQRSTUVWXYZ-ABCDEFGHIJKL", NULL,
	     &r);
	assert_error(&r, 400, "bad_request");
	resp_free(&r);

	/* a body larger than http.max_body_bytes (1024) */
	memset(big, 'x', sizeof big - 1);
	big[sizeof big - 1] = '\0';
	http(markd.port, "GET", "/v1/marks", big, &r);
	assert_error(&r, 413, "payload_too_large");
	resp_free(&r);

	/* the server still answers after all that */
	http(markd.port, NULL, "/v1/marks/BTC-USD", NULL, &r);
	ck_assert_int_eq(r.status, 200);
	resp_free(&r);
}
END_TEST

static bool
kraken_leg_error(json_t *m, void *arg)
{
	json_t *l = leg_of(m, "kraken");

	(void)arg;
	return l != NULL &&
	       strcmp(json_string_value(json_object_get(l, "state")), "error") == 0 &&
	       strcmp(json_string_value(json_object_get(l, "reason")), "error") == 0 &&
	       json_is_string(json_object_get(l, "error")) &&
	       json_is_string(json_object_get(l, "error_at")) &&
	       strcmp(json_string_value(json_object_get(m, "status")), "degraded") == 0 &&
	       json_is_true(json_object_get(m, "valid_for_liquidation")) &&
	       json_integer_value(json_object_get(m, "sources_used")) == 2;
}

static bool
kraken_feed_down(json_t *feeds, void *arg)
{
	json_t *f = feed_of(feeds, "kraken"), *e;

	(void)arg;
	if (f == NULL)
		return false;
	e = json_object_get(f, "last_error");
	return strcmp(json_string_value(json_object_get(f, "state")), "down") == 0 &&
	       json_is_object(e) &&
	       strcmp(json_string_value(json_object_get(e, "outcome")),
		      "parse_error") == 0 &&
	       json_integer_value(json_object_get(json_object_get(f, "counts"),
						  "parse_error")) > 0 &&
	       json_integer_value(json_object_get(f, "consecutive_failures")) >= 3 &&
	       json_integer_value(json_object_get(f, "backoff_ms")) > 0;
}

static bool
kraken_leg_used(json_t *m, void *arg)
{
	json_t *l = leg_of(m, "kraken");

	(void)arg;
	return l != NULL &&
	       strcmp(json_string_value(json_object_get(l, "state")), "used") == 0 &&
	       strcmp(json_string_value(json_object_get(m, "status")), "ok") == 0;
}

static bool
kraken_feed_up(json_t *feeds, void *arg)
{
	json_t *f = feed_of(feeds, "kraken");

	(void)arg;
	return f != NULL &&
	       strcmp(json_string_value(json_object_get(f, "state")), "up") == 0;
}

static char *
get_metrics(void)
{
	struct resp r;
	char why[256];
	char *text;

	http(markd.port, NULL, "/metrics", NULL, &r);
	ck_assert_int_eq(r.status, 200);
	ck_assert_msg(strncmp(r.ctype, "text/plain; version=0.0.4", 25) == 0,
		      "Content-Type %s", r.ctype);
	ck_assert_msg(prom_check(r.body, why, sizeof why), "%s\n%s", why,
		      r.body);
	text = r.body;
	r.body = NULL;
	resp_free(&r);
	return text;
}

START_TEST(test_fault_shows_everywhere)
{
	char *metrics;

	write_config("coinbase,kraken,bitstamp", "[" BTC3 "]", "");
	markd_start();
	wait_all_used();

	/* HTTP 200 with an HTML page: bad data, so the leg is excluded */
	fault("{\"venue\": \"kraken\", \"kind\": \"garbage\"}");
	ck_assert_msg(json_poll("/v1/marks/BTC-USD", kraken_leg_error, NULL,
				10000),
		      "the kraken leg did not turn to error");
	ck_assert_msg(json_poll("/v1/feeds", kraken_feed_down, NULL, 10000),
		      "the kraken feed did not turn down");
	metrics = get_metrics();
	ck_assert(prom_get(metrics, "markd_source_requests_total{source=\"kraken\",outcome=\"parse_error\"}") > 0);
	ck_assert(prom_get(metrics, "markd_source_up{source=\"kraken\"}") == 0);
	ck_assert(prom_get(metrics, "markd_source_up{source=\"coinbase\"}") == 1);
	ck_assert(prom_get(metrics, "markd_source_state{source=\"kraken\",state=\"down\"}") == 1);
	ck_assert(prom_get(metrics, "markd_mark_legs{symbol=\"BTC-USD\",state=\"error\"}") == 1);
	ck_assert(prom_get(metrics, "markd_mark_status{symbol=\"BTC-USD\",status=\"degraded\"}") == 1);
	ck_assert(prom_get(metrics, "markd_mark_valid_for_liquidation{symbol=\"BTC-USD\"}") == 1);
	free(metrics);
	ck_assert(wait_file_has(markd.err,
				"event=feed_state source=kraken from=up to=",
				5000));

	/* the venue recovers: so does everything */
	clear_faults();
	ck_assert_msg(json_poll("/v1/marks/BTC-USD", kraken_leg_used, NULL,
				15000),
		      "the kraken leg did not come back");
	ck_assert_msg(json_poll("/v1/feeds", kraken_feed_up, NULL, 15000),
		      "the kraken feed did not come back up");
	ck_assert(wait_file_has(markd.err, "to=up", 5000));
}
END_TEST

START_TEST(test_metrics_exposition)
{
	char *m;

	write_config("coinbase,kraken,bitstamp", "[" BTC3 "]", "");
	markd_start();
	wait_all_used();
	m = get_metrics();
	ck_assert(prom_get(m, "markd_build_info{version=\"" PACKAGE_VERSION "\"}") == 1);
	ck_assert(prom_get(m, "markd_mark_price{symbol=\"BTC-USD\"}") > 1000);
	ck_assert(prom_get(m, "markd_mark_conf{symbol=\"BTC-USD\"}") >= 0);
	ck_assert(prom_get(m, "markd_mark_age_seconds{symbol=\"BTC-USD\"}") >= 0);
	ck_assert(prom_get(m, "markd_mark_sources_total{symbol=\"BTC-USD\"}") == 3);
	ck_assert(prom_get(m, "markd_mark_sources_used{symbol=\"BTC-USD\"}") >= 2);
	ck_assert(prom_get(m, "markd_mark_updates_total{symbol=\"BTC-USD\"}") > 0);
	ck_assert(prom_get(m, "markd_source_requests_total{source=\"coinbase\",outcome=\"ok\"}") > 0);
	ck_assert(prom_get(m, "markd_source_request_duration_seconds_count{source=\"coinbase\"}") > 0);
	ck_assert(prom_get(m, "markd_source_request_duration_seconds_bucket{source=\"coinbase\",le=\"10\"}") >= 0);
	ck_assert(prom_get(m, "markd_source_staleness_seconds{source=\"coinbase\"}") >= 0);
	ck_assert(prom_get(m, "markd_source_backoff_seconds{source=\"coinbase\"}") == 0);
	ck_assert(prom_get(m, "markd_http_requests_total{route=\"/readyz\",code=\"200\"}") >= 1);
	ck_assert(prom_get(m, "markd_http_request_duration_seconds_count{route=\"/readyz\"}") >= 1);
	ck_assert(prom_get(m, "markd_config_reloads_total{result=\"error\"}") == 0);
	ck_assert(prom_get(m, "markd_start_time_seconds") > 1e9);
	free(m);
}
END_TEST

/* ================= the stream ================= */

struct stream {
	CURLM *m;
	CURL *h;
	struct curl_slist *sl;
	struct resp r;
	size_t parsed;          /* bytes of r.body already split */
	bool done;
};

struct event {
	uint64_t id;
	char type[16];
	json_t *data;
};

static void
stream_open(struct stream *s, const char *last_event_id)
{
	char url[128], hdr[128];

	memset(s, 0, sizeof *s);
	s->m = curl_multi_init();
	s->h = curl_easy_init();
	ck_assert_ptr_nonnull(s->m);
	ck_assert_ptr_nonnull(s->h);
	snprintf(url, sizeof url, "http://127.0.0.1:%d/v1/stream", markd.port);
	if (last_event_id != NULL) {
		snprintf(hdr, sizeof hdr, "Last-Event-ID: %s", last_event_id);
		s->sl = curl_slist_append(s->sl, hdr);
	}
	s->sl = curl_slist_append(s->sl, "Accept: text/event-stream");
	curl_easy_setopt(s->h, CURLOPT_URL, url);
	curl_easy_setopt(s->h, CURLOPT_HTTPHEADER, s->sl);
	curl_easy_setopt(s->h, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(s->h, CURLOPT_WRITEDATA, &s->r);
	curl_easy_setopt(s->h, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(s->h, CURLOPT_HEADERDATA, &s->r);
	curl_easy_setopt(s->h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(s->h, CURLOPT_TIMEOUT_MS, 60000L);
	curl_multi_add_handle(s->m, s->h);
}

/* The next complete event (comments and retry lines skipped), waiting
 * at most timeout_ms; false when none came. */
static bool
stream_next(struct stream *s, struct event *ev, int timeout_ms)
{
	int64_t deadline = mono_ms() + timeout_ms;

	for (;;) {
		while (s->r.body != NULL && s->parsed < s->r.len) {
			char *start = s->r.body + s->parsed;
			char *end = strstr(start, "\n\n");
			char *line, *save = NULL;

			if (end == NULL)
				break;
			*end = '\0';
			s->parsed = (size_t)(end - s->r.body) + 2;
			memset(ev, 0, sizeof *ev);
			for (line = strtok_r(start, "\n", &save); line != NULL;
			     line = strtok_r(NULL, "\n", &save)) {
				if (strncmp(line, "id: ", 4) == 0)
					ev->id = strtoull(line + 4, NULL, 10);
				else if (strncmp(line, "event: ", 7) == 0)
					snprintf(ev->type, sizeof ev->type, "%s",
						 line + 7);
				else if (strncmp(line, "data: ", 6) == 0)
					ev->data = json_loads(line + 6, 0, NULL);
			}
			if (ev->id != 0) {
				ck_assert_msg(ev->data != NULL,
					      "event %" PRIu64 " without JSON data",
					      ev->id);
				return true;
			}
		}
		if (s->done || mono_ms() >= deadline)
			return false;
		{
			int running = 0, left;
			CURLMsg *msg;

			curl_multi_perform(s->m, &running);
			while ((msg = curl_multi_info_read(s->m, &left)) != NULL)
				if (msg->msg == CURLMSG_DONE)
					s->done = true;
			if (!s->done)
				curl_multi_poll(s->m, NULL, 0, 20, NULL);
		}
	}
}

static void
stream_close(struct stream *s)
{
	curl_multi_remove_handle(s->m, s->h);
	curl_easy_cleanup(s->h);
	curl_multi_cleanup(s->m);
	curl_slist_free_all(s->sl);
	resp_free(&s->r);
}

START_TEST(test_sse_stream)
{
	struct stream s, s2;
	struct event ev;
	uint64_t last_id = 0, fifth = 0, last_seq = 0;
	int marks = 0, increases = 0, n = 0;
	char lei[32];
	bool feed_seen = false;

	write_config("coinbase,kraken,bitstamp", "[" BTC3 "]", "");
	markd_start();
	wait_all_used();

	stream_open(&s, NULL);
	while (marks < 30 && stream_next(&s, &ev, 10000)) {
		uint64_t seq;

		ck_assert_msg(ev.id > last_id, "ids not increasing: %" PRIu64
			      " after %" PRIu64, ev.id, last_id);
		last_id = ev.id;
		if (++n == 5)
			fifth = ev.id;
		if (strcmp(ev.type, "mark") == 0) {
			ck_assert_str_eq(json_string_value(json_object_get(ev.data,
									   "symbol")),
					 "BTC-USD");
			seq = (uint64_t)json_integer_value(json_object_get(ev.data,
									   "seq"));
			ck_assert_msg(seq >= last_seq, "seq went back: %" PRIu64
				      " after %" PRIu64, seq, last_seq);
			increases += seq > last_seq;
			last_seq = seq;
			ck_assert_ptr_nonnull(json_object_get(ev.data, "sources"));
			marks++;
		}
		json_decref(ev.data);
	}
	ck_assert_int_ge(marks, 30);
	ck_assert_int_ge(increases, 25);
	ck_assert_str_eq(s.r.ctype, "text/event-stream");

	/* a venue fault: a "feed" event on the same stream */
	fault("{\"venue\": \"kraken\", \"kind\": \"garbage\"}");
	while (!feed_seen && stream_next(&s, &ev, 10000)) {
		ck_assert(ev.id > last_id);
		last_id = ev.id;
		if (strcmp(ev.type, "feed") == 0) {
			ck_assert_str_eq(json_string_value(json_object_get(ev.data,
									   "source")),
					 "kraken");
			ck_assert_str_ne(json_string_value(json_object_get(ev.data,
									   "state")),
					 "up");
			feed_seen = true;
		}
		json_decref(ev.data);
	}
	ck_assert_msg(feed_seen, "no feed event for the kraken fault");
	stream_close(&s);

	/* resume after the fifth event: the sixth comes first */
	snprintf(lei, sizeof lei, "%" PRIu64, fifth);
	stream_open(&s2, lei);
	ck_assert(stream_next(&s2, &ev, 10000));
	ck_assert_msg(ev.id == fifth + 1, "resumed at %" PRIu64 ", want %" PRIu64,
		      ev.id, fifth + 1);
	json_decref(ev.data);
	stream_close(&s2);
}
END_TEST

/* ================= signals ================= */

static bool
has_eth_price(json_t *m, void *arg)
{
	(void)arg;
	return json_is_string(json_object_get(m, "price"));
}

static bool
feeds_have_bitstamp(json_t *f, void *arg)
{
	(void)arg;
	return feed_of(f, "bitstamp") != NULL;
}

static uint64_t
btc_seq(void)
{
	json_t *m = get_json(markd.port, "/v1/marks/BTC-USD");
	uint64_t seq = (uint64_t)json_integer_value(json_object_get(m, "seq"));

	ck_assert(json_is_string(json_object_get(m, "price")));
	json_decref(m);
	return seq;
}

/* Sends SIGHUP and waits for the n-th log line with needle. */
static void
hup_and_wait(const char *needle, int nth)
{
	int64_t deadline = mono_ms() + 10000;

	kill(markd.pid, SIGHUP);
	for (;;) {
		char *t = read_text(markd.err);
		int count = 0;

		for (const char *p = t; (p = strstr(p, needle)) != NULL; p++)
			count++;
		free(t);
		if (count >= nth)
			return;
		ck_assert_msg(mono_ms() < deadline, "no \"%s\" #%d in the log: %s",
			      needle, nth, read_text(markd.err));
		pause_ms(20);
	}
}

START_TEST(test_sighup)
{
	struct resp r;
	json_t *m, *f;
	uint64_t seq0, seq1;
	char *metrics;

	/* A: two sources, one instrument */
	write_config("coinbase,kraken", "[" BTC2 "]", "");
	markd_start();
	wait_ready();
	http(markd.port, NULL, "/v1/marks/ETH-USD", NULL, &r);
	ck_assert_int_eq(r.status, 404);
	resp_free(&r);
	seq0 = btc_seq();

	/* B: a source (bitstamp, also a new BTC-USD leg) and an instrument */
	write_config("coinbase,kraken,bitstamp", "[" BTC3 "," ETH3 "]", "");
	hup_and_wait("event=config_reloaded", 1);
	/* the marks of BTC-USD carry over: a price at once, seq goes on */
	seq1 = btc_seq();
	ck_assert_msg(seq1 >= seq0, "seq went back from %" PRIu64 " to %" PRIu64,
		      seq0, seq1);
	ck_assert(json_poll("/v1/marks/ETH-USD", has_eth_price, NULL, 10000));
	ck_assert(json_poll("/v1/feeds", feeds_have_bitstamp, NULL, 10000));
	m = get_json(markd.port, "/v1/marks/BTC-USD");
	ck_assert_int_eq(json_integer_value(json_object_get(m, "sources_total")), 3);
	ck_assert_ptr_nonnull(leg_of(m, "bitstamp"));
	json_decref(m);
	/* every leg delivers, so that C below has quotes to carry over */
	wait_all_used();

	/* a bad file: refused, every error logged, B still served */
	write_text(conf_path,
		   "{\"sources\": [{\"name\": \"a\", \"adapter\": \"binance\", "
		   "\"base_url\": \"http://127.0.0.1:1\"}], \"instruments\": "
		   "[{\"symbol\": \"BTC-USD\", \"legs\": [{\"source\": \"bnb\", "
		   "\"market\": \"BTCUSDT\"}], \"min_sources\": 1}], "
		   "\"bogus\": 1}\n");
	hup_and_wait("event=config_reload_failed", 1);
	ck_assert(file_has(markd.err, "path=instruments[0].legs[0].source"));
	ck_assert(file_has(markd.err, "unknown source"));
	ck_assert(file_has(markd.err, "path=bogus"));
	ck_assert(json_poll("/v1/marks/ETH-USD", has_eth_price, NULL, 1000));
	f = get_json(markd.port, "/v1/feeds");
	ck_assert_uint_eq(json_array_size(json_object_get(f, "sources")), 3);
	json_decref(f);
	metrics = get_metrics();
	ck_assert(prom_get(metrics, "markd_config_reloads_total{result=\"ok\"}") == 1);
	ck_assert(prom_get(metrics, "markd_config_reloads_total{result=\"error\"}") == 1);
	free(metrics);

	/* C: kraken removed, its legs gone; a new listen address waits for
	 * a restart (the same port keeps serving) */
	snprintf(cfg_listen, sizeof cfg_listen, "127.0.0.1:1");
	write_config("coinbase,bitstamp",
		     "[{\"symbol\": \"BTC-USD\", \"legs\": ["
		     "{\"source\": \"coinbase\", \"market\": \"BTC-USD\"},"
		     "{\"source\": \"bitstamp\", \"market\": \"btcusd\"}]}]", "");
	hup_and_wait("event=config_reloaded", 2);
	ck_assert(file_has(markd.err, "event=restart_needed"));
	f = get_json(markd.port, "/v1/feeds");
	ck_assert_ptr_null(feed_of(f, "kraken"));
	ck_assert_uint_eq(json_array_size(json_object_get(f, "sources")), 2);
	json_decref(f);
	m = get_json(markd.port, "/v1/marks/BTC-USD");
	ck_assert_ptr_null(leg_of(m, "kraken"));
	ck_assert_msg(json_is_string(json_object_get(m, "price")),
		      "no price right after the reload: %s\n%s",
		      json_dumps(m, JSON_COMPACT), read_text(markd.err));
	ck_assert_uint_ge((uint64_t)json_integer_value(json_object_get(m, "seq")),
			  seq1);
	json_decref(m);
	http(markd.port, NULL, "/v1/marks/ETH-USD", NULL, &r);
	ck_assert_int_eq(r.status, 404);
	resp_free(&r);

	ck_assert_int_eq(stop_child(&markd, SIGTERM, 10000), 0);
}
END_TEST

struct hammer {
	int port;
	atomic_bool stop;
	atomic_long ok, partial, refused;
};

static void *
hammer_main(void *arg)
{
	struct hammer *h = arg;
	CURL *c = curl_easy_init();

	while (!atomic_load(&h->stop)) {
		struct resp r;

		http_on(c, h->port, NULL, "/v1/marks", NULL, &r);
		if (r.code == CURLE_OK && r.status == 200) {
			json_t *j = json_loadb(r.body, r.len, 0, NULL);

			if (j != NULL)
				atomic_fetch_add(&h->ok, 1);
			else
				atomic_fetch_add(&h->partial, 1);
			json_decref(j);
		} else if (r.code == CURLE_PARTIAL_FILE ||
			   (r.code == CURLE_OK && r.status != 200)) {
			atomic_fetch_add(&h->partial, 1);
		} else {
			atomic_fetch_add(&h->refused, 1);
		}
		resp_free(&r);
	}
	curl_easy_cleanup(c);
	return NULL;
}

START_TEST(test_sigterm_under_load)
{
	struct hammer h;
	pthread_t t[3];
	int64_t deadline, t0;
	int rc;

	write_config("coinbase,kraken,bitstamp", "[" BTC3 "]", "");
	markd_start();
	wait_all_used();
	memset(&h, 0, sizeof h);
	h.port = markd.port;
	for (int i = 0; i < 3; i++)
		ck_assert_int_eq(pthread_create(&t[i], NULL, hammer_main, &h), 0);
	deadline = mono_ms() + 10000;
	while (atomic_load(&h.ok) < 300 && mono_ms() < deadline)
		pause_ms(5);
	ck_assert_int_ge(atomic_load(&h.ok), 300);
	t0 = mono_ms();
	rc = stop_child(&markd, SIGTERM, 10000);
	ck_assert_int_eq(rc, 0);
	ck_assert_msg(mono_ms() - t0 < 7000, "took %" PRId64 " ms to stop",
		      mono_ms() - t0);
	atomic_store(&h.stop, true);
	for (int i = 0; i < 3; i++)
		pthread_join(t[i], NULL);
	ck_assert_int_eq(atomic_load(&h.partial), 0);
	ck_assert(file_has(markd.err, "event=stopping signal=SIGTERM"));
	ck_assert(file_has(markd.err, "event=stopped exit=0"));
}
END_TEST

/* ================= start-up, logs, docs ================= */

START_TEST(test_start_failures)
{
	struct sockaddr_in sin;
	socklen_t sl = sizeof sin;
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	char extra[2 * PATH_LEN];
	const char *args[] = { "-c", conf_path, NULL };

	/* a port that is taken: exit 3 with the reason */
	memset(&sin, 0, sizeof sin);
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ck_assert_int_eq(bind(fd, (struct sockaddr *)&sin, sizeof sin), 0);
	ck_assert_int_eq(listen(fd, 1), 0);
	ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&sin, &sl), 0);
	snprintf(cfg_listen, sizeof cfg_listen, "127.0.0.1:%u",
		 (unsigned)ntohs(sin.sin_port));
	write_config("coinbase,kraken,bitstamp", "[" BTC3 "]", "");
	spawn(&markd, "markd", "markd", args);
	ck_assert_int_eq(wait_exit(&markd, 10000), 3);
	ck_assert(file_has(markd.err, "event=start_failed"));
	ck_assert(file_has(markd.err, "cannot start the HTTP server"));
	close(fd);

	/* a tokens file that does not exist: a config error, exit 1 */
	snprintf(extra, sizeof extra, "\"token_file\": \"%s/none.tokens\", ",
		 tmpdir);
	write_config("coinbase,kraken,bitstamp", "[" BTC3 "]", extra);
	spawn(&markd, "markd", "markd", args);
	ck_assert_int_eq(wait_exit(&markd, 10000), 1);
	ck_assert(file_has(markd.err, "token_file"));
}
END_TEST

START_TEST(test_json_logs)
{
	char *t, *line, *save = NULL;
	int lines = 0;
	bool starting = false;

	cfg_log = "{\"level\": \"debug\", \"format\": \"json\"}";
	write_config("coinbase,kraken,bitstamp", "[" BTC3 "]", "");
	markd_start();
	wait_ready();
	ck_assert_int_eq(stop_child(&markd, SIGTERM, 10000), 0);
	t = read_text(markd.err);
	for (line = strtok_r(t, "\n", &save); line != NULL;
	     line = strtok_r(NULL, "\n", &save)) {
		json_error_t je;
		json_t *j = json_loads(line, 0, &je);

		ck_assert_msg(j != NULL, "not JSON: %s (%s)", line, je.text);
		ck_assert(json_is_string(json_object_get(j, "ts")));
		ck_assert(json_is_string(json_object_get(j, "level")));
		ck_assert(json_is_string(json_object_get(j, "event")));
		if (strcmp(json_string_value(json_object_get(j, "event")),
			   "starting") == 0)
			starting = true;
		json_decref(j);
		lines++;
	}
	free(t);
	ck_assert(starting);
	ck_assert_int_ge(lines, 4);
}
END_TEST

static const char *
method_key(enum httpd_method m)
{
	switch (m) {
	case HTTPD_GET: return "get";
	case HTTPD_HEAD: return "head";
	case HTTPD_POST: return "post";
	case HTTPD_PUT: return "put";
	case HTTPD_PATCH: return "patch";
	case HTTPD_DELETE: return "delete";
	case HTTPD_OPTIONS: return "options";
	}
	return "?";
}

/* Whether doc/openapi.yaml has `pattern` under paths: with `method`
 * under it (two-space path keys, four-space method keys). */
static bool
yaml_has(const char *yaml, const char *pattern, const char *method)
{
	char key[256], mkey[32];
	const char *p = strstr(yaml, "\npaths:\n"), *end;

	if (p == NULL)
		return false;
	snprintf(key, sizeof key, "\n  %s:\n", pattern);
	p = strstr(p, key);
	if (p == NULL)
		return false;
	p += strlen(key) - 1;
	/* the path's block ends at the next line indented less than 3 */
	for (end = p; (end = strchr(end + 1, '\n')) != NULL;)
		if (end[1] != '\n' && strncmp(end + 1, "   ", 3) != 0)
			break;
	snprintf(mkey, sizeof mkey, "\n    %s:", method);
	for (const char *q = p; (q = strstr(q, mkey)) != NULL; q++)
		if (end == NULL || q < end)
			return true;
	return false;
}

START_TEST(test_routes_documented)
{
	char path[PATH_LEN], dbpath[PATH_LEN + 16];
	struct cfg *cfg = NULL;
	struct cfg_errors errs;
	struct md_app *app = NULL;
	struct mk_err err = { 0 };
	char *yaml;
	size_t n;

	tu_srcpath(path, sizeof path, "conf/demo.json");
	ck_assert_int_eq(cfg_load(path, &cfg, &errs), MK_OK);
	/* the margin service's store goes to a temp dir, not the cwd */
	make_tmpdir();
	free(cfg->database);
	snprintf(dbpath, sizeof dbpath, "%s/routes.db", tmpdir);
	cfg->database = strdup(dbpath);
	ck_assert_ptr_nonnull(cfg->database);
	ck_assert_int_eq(md_app_create(path, cfg, &app, &err), MK_OK);
	ck_assert_msg(md_app_add_margin(app, &err) == MK_OK, "%s", err.msg);
	tu_srcpath(path, sizeof path, "doc/openapi.yaml");
	yaml = read_text(path);
	ck_assert_msg(strncmp(yaml, "openapi: 3.", 11) == 0,
		      "doc/openapi.yaml is not OpenAPI 3");
	n = md_app_route_count(app);
	ck_assert_uint_ge(n, 8);
	for (size_t i = 0; i < n; i++) {
		enum httpd_method m;
		const char *pattern;

		ck_assert(md_app_route_at(app, i, &m, &pattern));
		ck_assert_msg(yaml_has(yaml, pattern, method_key(m)),
			      "%s %s is served but not in doc/openapi.yaml",
			      httpd_method_name(m), pattern);
	}
	/* and the check can fail */
	ck_assert(!yaml_has(yaml, "/v1/nothing", "get"));
	ck_assert(!yaml_has(yaml, "/v1/marks", "delete"));
	free(yaml);
	md_app_stop(app);
	remove_tmpdir();
}
END_TEST

static Suite *
daemon_suite(void)
{
	Suite *s = suite_create("daemon");
	TCase *api = tcase_create("api");
	TCase *sig = tcase_create("signals");
	TCase *misc = tcase_create("misc");
	TCase *docs = tcase_create("docs");

	tcase_add_unchecked_fixture(api, fakex_setup, fakex_teardown);
	tcase_add_checked_fixture(api, each_setup, each_teardown);
	tcase_set_timeout(api, 120);
	tcase_add_test(api, test_marks_and_feeds);
	tcase_add_test(api, test_error_statuses);
	tcase_add_test(api, test_fault_shows_everywhere);
	tcase_add_test(api, test_metrics_exposition);
	tcase_add_test(api, test_sse_stream);
	suite_add_tcase(s, api);

	tcase_add_unchecked_fixture(sig, fakex_setup, fakex_teardown);
	tcase_add_checked_fixture(sig, each_setup, each_teardown);
	tcase_set_timeout(sig, 120);
	tcase_add_test(sig, test_sighup);
	tcase_add_test(sig, test_sigterm_under_load);
	suite_add_tcase(s, sig);

	tcase_add_unchecked_fixture(misc, fakex_setup, fakex_teardown);
	tcase_add_checked_fixture(misc, each_setup, each_teardown);
	tcase_set_timeout(misc, 120);
	tcase_add_test(misc, test_start_failures);
	tcase_add_test(misc, test_json_logs);
	suite_add_tcase(s, misc);

	tcase_add_test(docs, test_routes_documented);
	suite_add_tcase(s, docs);
	return s;
}

TU_MAIN(daemon_suite)
