/*
 * testutil.h - small helpers shared by the Check suites: a seeded PRNG,
 * fixture paths, and the main() that runs one suite.
 *
 * Header-only (static inline) so each test program stays one file.
 */
#ifndef MARKD_TESTS_TESTUTIL_H
#define MARKD_TESTS_TESTUTIL_H

#include <check.h>
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* splitmix64: a tiny PRNG with a fixed seed, so failures reproduce. */
struct tu_rng {
	uint64_t s;
};
#define TU_RNG_INIT(seed) ((struct tu_rng){ .s = (uint64_t)(seed) })

static inline uint64_t
tu_rng_next(struct tu_rng *r)
{
	uint64_t z = (r->s += UINT64_C(0x9e3779b97f4a7c15));

	z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
	z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
	return z ^ (z >> 31);
}

/* A uniform integer in [lo, hi]. */
static inline int64_t
tu_rng_range(struct tu_rng *r, int64_t lo, int64_t hi)
{
	uint64_t span = (uint64_t)(hi - lo) + 1u;

	return lo + (int64_t)(span == 0 ? tu_rng_next(r)
					: tu_rng_next(r) % span);
}

/* "$MARKD_SRCDIR/rel" (or "./rel" when unset) into buf. */
static inline const char *
tu_srcpath(char *buf, size_t cap, const char *rel)
{
	const char *top = getenv("MARKD_SRCDIR");

	snprintf(buf, cap, "%s/%s", top != NULL ? top : ".", rel);
	return buf;
}

/* "$MARKD_BUILDDIR/rel" (or "./rel" when unset) into buf. */
static inline const char *
tu_buildpath(char *buf, size_t cap, const char *rel)
{
	const char *top = getenv("MARKD_BUILDDIR");

	snprintf(buf, cap, "%s/%s", top != NULL ? top : ".", rel);
	return buf;
}

/* What tu_run_program captured. */
struct tu_run {
	int status;              /* exit code, or -1 (killed or signalled) */
	char out[8192];          /* stdout, NUL-terminated, cut at the cap */
	char err[8192];          /* stderr, likewise */
};

/*
 * Runs the built program "$MARKD_BUILDDIR/rel" with args (argv[1..],
 * NULL-terminated, at most 30), capturing stdout and stderr; kills it
 * after timeout_s seconds, so the wait is bounded.
 */
static inline void
tu_run_program(const char *rel, const char *const *args, int timeout_s,
	       struct tu_run *r)
{
	char bin[1024];
	const char *argv[32];
	int po[2], pe[2];
	size_t len[2] = { 0, 0 }, n;
	struct timespec start, now;
	pid_t pid;
	int ws;

	tu_buildpath(bin, sizeof(bin), rel);
	argv[0] = bin;
	for (n = 1; args[n - 1] != NULL && n < 31; n++)
		argv[n] = args[n - 1];
	argv[n] = NULL;
	memset(r, 0, sizeof(*r));
	r->status = -1;
	ck_assert_int_eq(pipe(po), 0);
	ck_assert_int_eq(pipe(pe), 0);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		dup2(po[1], 1);
		dup2(pe[1], 2);
		close(po[0]);
		close(pe[0]);
		close(po[1]);
		close(pe[1]);
		execv(bin, (char *const *)argv);
		_exit(127);
	}
	close(po[1]);
	close(pe[1]);
	clock_gettime(CLOCK_MONOTONIC, &start);
	while (po[0] >= 0 || pe[0] >= 0) {
		/* poll() skips the descriptors already closed (-1). */
		struct pollfd fds[2] = {
			{ .fd = po[0], .events = POLLIN },
			{ .fd = pe[0], .events = POLLIN },
		};

		clock_gettime(CLOCK_MONOTONIC, &now);
		if (now.tv_sec - start.tv_sec > timeout_s) {
			kill(pid, SIGKILL);
			break;
		}
		if (poll(fds, 2, 1000) < 0 && errno != EINTR)
			break;
		for (int i = 0; i < 2; i++) {
			int *fd = i ? &pe[0] : &po[0];
			char *buf = i ? r->err : r->out;
			size_t cap = i ? sizeof(r->err) : sizeof(r->out);
			char sink[512];
			ssize_t got;

			if (*fd < 0 || !(fds[i].revents & (POLLIN | POLLHUP)))
				continue;
			if (len[i] + 1 < cap)
				got = read(*fd, buf + len[i], cap - 1 - len[i]);
			else
				got = read(*fd, sink, sizeof(sink));
			if (got <= 0) {
				close(*fd);
				*fd = -1;
			} else if (len[i] + 1 < cap) {
				len[i] += (size_t)got;
			}
		}
	}
	if (po[0] >= 0)
		close(po[0]);
	if (pe[0] >= 0)
		close(pe[0]);
	ck_assert_int_eq(waitpid(pid, &ws, 0), pid);
	if (WIFEXITED(ws))
		r->status = WEXITSTATUS(ws);
}

/* main() for a test program running one suite; exits non-zero when any
 * test failed. The closing line is Check's own summary. */
#define TU_MAIN(suite_fn)                                                  \
	int main(void)                                                     \
	{                                                                  \
		SRunner *sr = srunner_create(suite_fn());                  \
		int failed;                                                \
		srunner_run_all(sr, CK_NORMAL);                            \
		failed = srunner_ntests_failed(sr);                        \
		srunner_free(sr);                                          \
		return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;          \
	}

#endif
