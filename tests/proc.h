/*
 * proc.h - what the integration suites need to run markd and markd-fakex
 * as real child processes: a private temp folder, files in it, a child
 * that dies with the test, its "listening 127.0.0.1:PORT" line, and a
 * bounded stop.
 *
 * Every wait here has a deadline; the short pauses are only between
 * polls of a condition, never synchronisation by themselves.
 * Header-only (static inline), like testutil.h.
 */
#ifndef MARKD_TESTS_PROC_H
#define MARKD_TESTS_PROC_H

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "tests/testutil.h"

#define TU_PATH_LEN 700

static inline int64_t
tu_mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The wall clock in ms since the epoch (what markd's timestamps use). */
static inline int64_t
tu_wall_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Between polls of a condition that has a deadline. */
static inline void
tu_pause_ms(int ms)
{
	poll(NULL, 0, ms);
}

/* Polls cond(arg) every few ms until it holds or timeout_ms has passed;
 * whether it held (it is asked once more at the deadline). */
static inline bool
tu_wait_until(bool (*cond)(void *arg), void *arg, int timeout_ms)
{
	int64_t deadline = tu_mono_ms() + timeout_ms;

	while (tu_mono_ms() < deadline) {
		if (cond(arg))
			return true;
		tu_pause_ms(5);
	}
	return cond(arg);
}

/* A new folder "$TMPDIR/<name>.XXXXXX" into dir; false on failure. */
static inline bool
tu_make_dir(char *dir, size_t cap, const char *name)
{
	const char *tmp = getenv("TMPDIR");

	snprintf(dir, cap, "%s/%s.XXXXXX",
		 tmp != NULL && tmp[0] != '\0' ? tmp : "/tmp", name);
	return mkdtemp(dir) != NULL;
}

/* Removes dir and everything in it (files and folders). */
static inline void
tu_remove_dir(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;

	while (d != NULL && (e = readdir(d)) != NULL) {
		char p[TU_PATH_LEN + 256];
		struct stat st;

		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		if (snprintf(p, sizeof(p), "%s/%s", dir, e->d_name) >=
		    (int)sizeof(p))
			continue;
		if (lstat(p, &st) == 0 && S_ISDIR(st.st_mode)) {
			chmod(p, 0700);
			tu_remove_dir(p);
		} else {
			unlink(p);
		}
	}
	if (d != NULL)
		closedir(d);
	rmdir(dir);
}

/* Writes text to dir/name through a rename, so that a reader (a reload)
 * never sees half a file. False (errno set) on failure. */
static inline bool
tu_put_file(const char *dir, const char *name, const char *text)
{
	char p[TU_PATH_LEN], tmp[TU_PATH_LEN + 8];
	FILE *f;
	bool ok;

	if (snprintf(p, sizeof(p), "%s/%s", dir, name) >= (int)sizeof(p) ||
	    snprintf(tmp, sizeof(tmp), "%s.tmp", p) >= (int)sizeof(tmp)) {
		errno = ENAMETOOLONG;
		return false;
	}
	f = fopen(tmp, "w");
	if (f == NULL)
		return false;
	ok = fputs(text, f) >= 0;
	ok = fclose(f) == 0 && ok;
	return ok && rename(tmp, p) == 0;
}

/* The whole file as a new NUL-terminated string ("" when absent). */
static inline char *
tu_read_file(const char *path)
{
	FILE *f = fopen(path, "r");
	char *buf = NULL;
	size_t len = 0, cap = 0;

	while (f != NULL) {
		size_t got;

		if (len + 4096 + 1 > cap) {
			char *nb;

			cap = cap > 0 ? 2 * cap : 8192;
			nb = realloc(buf, cap);
			if (nb == NULL)
				abort();
			buf = nb;
		}
		got = fread(buf + len, 1, cap - len - 1, f);
		if (got == 0)
			break;
		len += got;
	}
	if (f != NULL)
		fclose(f);
	if (buf == NULL && (buf = malloc(1)) == NULL)
		abort();
	buf[len] = '\0';
	return buf;
}

static inline bool
tu_file_has(const char *path, const char *needle)
{
	char *t = tu_read_file(path);
	bool yes = strstr(t, needle) != NULL;

	free(t);
	return yes;
}

/* Polls path for needle until timeout_ms has passed. */
static inline bool
tu_wait_file_has(const char *path, const char *needle, int timeout_ms)
{
	int64_t deadline = tu_mono_ms() + timeout_ms;

	while (tu_mono_ms() < deadline) {
		if (tu_file_has(path, needle))
			return true;
		tu_pause_ms(20);
	}
	return tu_file_has(path, needle);
}

/* A child process of ours; stdout and stderr go to files. */
struct tu_child {
	pid_t pid;               /* -1 once reaped */
	int port;                /* from its "listening" line */
	char out[TU_PATH_LEN];   /* <dir>/<name>.out */
	char err[TU_PATH_LEN];   /* <dir>/<name>.err (appended across runs) */
};

/* What tu_spawn_with may change in the child before it runs rel. */
struct tu_spawn_opts {
	/* Runs in the child after fork, before PR_SET_PDEATHSIG (which a
	 * change of credentials would clear) and exec; false: the child
	 * exits 126. NULL: nothing. */
	bool (*before_exec)(void *arg);
	void *arg;
	/* The child's stderr: this descriptor (the child closes it after
	 * dup2) instead of dir/name.err; -1: the file. */
	int err_fd;
};

/*
 * Starts "$MARKD_BUILDDIR/rel" with args (NULL-terminated, at most 30),
 * stdout truncated into dir/name.out, stderr appended to dir/name.err, so
 * a restarted child keeps one log. The child gets SIGKILL when the test
 * dies. o (NULL: none) adds a pre-exec hook or another stderr. False when
 * fork failed or the paths do not fit.
 */
static inline bool
tu_spawn_with(struct tu_child *c, const char *dir, const char *rel,
	      const char *name, const char *const *args,
	      const struct tu_spawn_opts *o)
{
	char prog[TU_PATH_LEN];
	const char *argv[32];
	size_t n = 0;
	pid_t parent = getpid();

	memset(c, 0, sizeof(*c));
	c->pid = -1;
	tu_buildpath(prog, sizeof(prog), rel);
	if (snprintf(c->out, sizeof(c->out), "%s/%s.out", dir, name) >=
		    (int)sizeof(c->out) ||
	    snprintf(c->err, sizeof(c->err), "%s/%s.err", dir, name) >=
		    (int)sizeof(c->err))
		return false;
	argv[n++] = prog;
	while (*args != NULL && n < 31)
		argv[n++] = *args++;
	argv[n] = NULL;
	unlink(c->out); /* no stale "listening" line from an earlier run */
	c->pid = fork();
	if (c->pid < 0)
		return false;
	if (c->pid == 0) {
		int out = open(c->out, O_WRONLY | O_CREAT | O_TRUNC, 0644);
		int e = o != NULL && o->err_fd >= 0
				? o->err_fd
				: open(c->err, O_WRONLY | O_CREAT | O_APPEND,
				       0644);

		if (o != NULL && o->before_exec != NULL &&
		    !o->before_exec(o->arg))
			_exit(126);
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != parent || out < 0 || e < 0)
			_exit(126);
		dup2(out, STDOUT_FILENO);
		dup2(e, STDERR_FILENO);
		close(out);
		close(e);
		execv(prog, (char *const *)argv);
		_exit(127);
	}
	return true;
}

/* tu_spawn_with without options. */
static inline bool
tu_spawn(struct tu_child *c, const char *dir, const char *rel,
	 const char *name, const char *const *args)
{
	return tu_spawn_with(c, dir, rel, name, args, NULL);
}

/* Reads "listening 127.0.0.1:PORT" from the child's stdout within
 * timeout_ms; false when it exited (reaped) or did not say it. */
static inline bool
tu_wait_listening(struct tu_child *c, int timeout_ms)
{
	int64_t deadline = tu_mono_ms() + timeout_ms;

	while (c->pid > 0 && tu_mono_ms() < deadline) {
		char *t = tu_read_file(c->out);
		const char *p = strstr(t, "listening 127.0.0.1:");
		bool ok = p != NULL && strchr(p, '\n') != NULL &&
			  sscanf(p, "listening 127.0.0.1:%d", &c->port) == 1;
		int status;

		free(t);
		if (ok)
			return true;
		if (waitpid(c->pid, &status, WNOHANG) == c->pid) {
			c->pid = -1;
			return false;
		}
		tu_pause_ms(20);
	}
	return false;
}

/* Waits up to timeout_ms for the child to exit; its exit code, or -1 when
 * it died of a signal or had to be killed (after the deadline). */
static inline int
tu_wait_exit(struct tu_child *c, int timeout_ms)
{
	int64_t deadline = tu_mono_ms() + timeout_ms;
	int status = 0;

	if (c->pid <= 0)
		return -1;
	while (tu_mono_ms() < deadline) {
		if (waitpid(c->pid, &status, WNOHANG) == c->pid) {
			c->pid = -1;
			return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
		}
		tu_pause_ms(10);
	}
	kill(c->pid, SIGKILL);
	waitpid(c->pid, &status, 0);
	c->pid = -1;
	return -1;
}

/* Sends sig and reaps within timeout_ms (SIGKILL after); as tu_wait_exit. */
static inline int
tu_stop(struct tu_child *c, int sig, int timeout_ms)
{
	if (c->pid <= 0)
		return -1;
	kill(c->pid, sig);
	return tu_wait_exit(c, timeout_ms);
}

#endif
