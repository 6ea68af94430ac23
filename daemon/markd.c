/*
 * markd.c - the markd program: command line, signals, and the daemon's
 * main thread.
 *
 *   markd -c FILE                  load FILE and run the daemon
 *   markd --check-config -c FILE   validate FILE and exit
 *   markd --version | --help
 *
 * The main thread blocks SIGTERM, SIGINT and SIGHUP before any other
 * thread exists (so every thread inherits the mask) and takes them with
 * sigtimedwait: SIGHUP reloads the config, SIGTERM/SIGINT stop cleanly.
 * SIGPIPE is ignored. Once the server listens, the first line on stdout
 * is "listening ADDR:PORT" (the real port when the config asks for 0).
 *
 * Exit status: 0 clean shutdown (or success), 1 an invalid config, 2 a
 * usage error, 3 the daemon could not start or failed while running.
 */
/* Autoconf's header; "config.h" would find this folder's config.h. */
#include "config.h"

#include <curl/curl.h>
#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "daemon/app.h"
#include "daemon/cfg.h"
#include "daemon/log.h"

#define EXIT_USAGE 2
#define EXIT_RUN 3
/* How often the main thread checks the feeds thread between signals. */
#define WATCH_MS 500
/* The open-files limit markd raises itself to when the hard limit is
 * unlimited (Linux's default fs.nr_open). */
#define NOFILE_CAP 1048576
/* Descriptors kept for what is not an HTTP client: the store, the
 * feeds' sockets, logs. */
#define NOFILE_RESERVE 64

static void
usage(FILE *out)
{
	fprintf(out,
		"Usage: markd -c FILE [--check-config]\n"
		"       markd --version | --help\n"
		"\n"
		"markd is a price oracle daemon: it polls exchanges and\n"
		"oracles, publishes a robust mark price per instrument and\n"
		"evaluates isolated-margin positions against it, over HTTP.\n"
		"\n"
		"Options:\n"
		"  -c, --config FILE   the JSON configuration file (required)\n"
		"  -t, --check-config  validate the configuration and exit:\n"
		"                      \"FILE: ok\" and a summary (status 0),\n"
		"                      or every error with its JSON path\n"
		"                      (status 1)\n"
		"  -V, --version       print the version and exit\n"
		"  -h, --help          print this help and exit\n"
		"\n"
		"Running: markd -c FILE serves the HTTP API on the config's\n"
		"\"listen\" address and prints \"listening ADDR:PORT\" on\n"
		"stdout; logs go to stderr. SIGHUP reloads FILE (a bad file\n"
		"is refused and the running config kept), SIGTERM or SIGINT\n"
		"stop it (requests in flight finish first).\n"
		"\n"
		"Exit status: 0 success or clean shutdown, 1 invalid\n"
		"configuration, 2 usage error, 3 could not start or failed\n"
		"while running. See markd(8) and markd.json(5).\n");
}

static int
usage_error(const char *msg, const char *arg)
{
	if (arg != NULL)
		fprintf(stderr, "markd: %s '%s'\n", msg, arg);
	else
		fprintf(stderr, "markd: %s\n", msg);
	fprintf(stderr, "Try 'markd --help' for more information.\n");
	return EXIT_USAGE;
}

/* Prints every error of a failed load, one per line, on stderr. */
static void
print_errors(const char *file, const struct cfg_errors *errs)
{
	for (size_t i = 0; i < errs->count; i++) {
		const struct cfg_error *e = &errs->e[i];

		if (e->line > 0)
			fprintf(stderr, "%s:%d:%d: %s\n", file, e->line,
				e->column, e->msg);
		else if (e->path[0] != '\0')
			fprintf(stderr, "%s: %s: %s\n", file, e->path, e->msg);
		else
			fprintf(stderr, "%s: %s\n", file, e->msg);
	}
	if (errs->total > errs->count)
		fprintf(stderr, "%s: %zu more errors not shown\n", file,
			errs->total - errs->count);
}

/* Raises the soft limit on open files to the hard one, as long-running
 * servers do: every HTTP connection holds a descriptor, and the usual
 * soft default (1024) is below what http.max_connections allows. Logs
 * the change, and warns when the limit stays below max_connections plus
 * a reserve (connections beyond it would be refused by accept). */
static void
raise_nofile_limit(const struct cfg *cfg)
{
	struct rlimit rl;
	struct md_log_line l;
	rlim_t want, need;

	if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
		return;
	want = rl.rlim_max == RLIM_INFINITY || rl.rlim_max > NOFILE_CAP
		       ? NOFILE_CAP : rl.rlim_max;
	if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < want) {
		rlim_t from = rl.rlim_cur;

		rl.rlim_cur = want;
		if (setrlimit(RLIMIT_NOFILE, &rl) == 0) {
			md_log_begin(&l, CFG_LOG_INFO, "nofile_limit");
			md_log_uint(&l, "from", from);
			md_log_uint(&l, "to", want);
			md_log_end(&l);
		} else {
			rl.rlim_cur = from;
		}
	}
	need = (rlim_t)cfg->http.max_connections + NOFILE_RESERVE;
	if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < need) {
		md_log_begin(&l, CFG_LOG_WARN, "nofile_limit");
		md_log_uint(&l, "limit", rl.rlim_cur);
		md_log_uint(&l, "max_connections", cfg->http.max_connections);
		md_log_str(&l, "msg",
			   "the open-files limit is below http.max_connections plus a reserve; raise the hard limit (ulimit -Hn, LimitNOFILE=)");
		md_log_end(&l);
	}
}

/* Runs the daemon until SIGTERM/SIGINT; cfg is taken over. Returns the
 * exit status. */
static int
run(const char *file, struct cfg *cfg)
{
	struct md_app *app = NULL;
	struct mk_err err = { 0 };
	struct md_log_line l;
	struct timespec wait = { WATCH_MS / 1000, (WATCH_MS % 1000) * 1000000L };
	char summary[256];
	sigset_t set;
	enum mk_status st;
	int rc = EXIT_SUCCESS;

	md_log_configure(cfg->log_level, cfg->log_format);
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	/* before any thread: every thread inherits the mask */
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	signal(SIGPIPE, SIG_IGN);
	raise_nofile_limit(cfg);
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		md_log_msg(CFG_LOG_ERROR, "start_failed",
			   "libcurl could not be initialized");
		cfg_free(cfg);
		return EXIT_RUN;
	}
	cfg_summary(cfg, summary, sizeof summary);
	md_log_begin(&l, CFG_LOG_INFO, "starting");
	md_log_str(&l, "version", PACKAGE_VERSION);
	md_log_str(&l, "config", file);
	md_log_str(&l, "summary", summary);
	md_log_end(&l);

	/* wiring fails on what the config names (the tokens file, margin
	 * settings): status 1; on the system (a database that cannot be
	 * opened for writing, a port in use): 3 */
	st = md_app_create(file, cfg, &app, &err);
	rc = EXIT_FAILURE;
	if (st == MK_OK) {
		st = md_app_add_margin(app, &err);
		if (st != MK_OK && st != MK_ECONFIG)
			rc = EXIT_RUN;
	}
	if (st == MK_OK) {
		st = md_app_start(app, &err);
		rc = st == MK_ECONFIG ? EXIT_FAILURE : EXIT_RUN;
	}
	if (st != MK_OK) {
		md_log_begin(&l, CFG_LOG_ERROR, "start_failed");
		md_log_str(&l, "error", err.msg);
		md_log_end(&l);
		fprintf(stderr, "markd: %s\n", err.msg);
		goto out;
	}
	rc = EXIT_SUCCESS;
	if (strchr(md_app_bind(app), ':') != NULL)
		printf("listening [%s]:%u\n", md_app_bind(app),
		       (unsigned)md_app_port(app));
	else
		printf("listening %s:%u\n", md_app_bind(app),
		       (unsigned)md_app_port(app));
	fflush(stdout);
	md_log_begin(&l, CFG_LOG_INFO, "listening");
	md_log_str(&l, "addr", md_app_bind(app));
	md_log_uint(&l, "port", md_app_port(app));
	md_log_end(&l);

	for (;;) {
		siginfo_t si;
		int sig = sigtimedwait(&set, &si, &wait);

		if (sig == SIGHUP) {
			md_app_reload(app);
		} else if (sig == SIGTERM || sig == SIGINT) {
			md_log_begin(&l, CFG_LOG_INFO, "stopping");
			md_log_str(&l, "signal", sig == SIGTERM ? "SIGTERM"
								 : "SIGINT");
			md_log_end(&l);
			break;
		} else if (sig < 0 && errno != EAGAIN && errno != EINTR) {
			md_log_msg(CFG_LOG_ERROR, "signal_wait_failed", "%s",
				   strerror(errno));
			rc = EXIT_RUN;
			break;
		}
		if (md_app_failed(app, &err)) {
			md_log_msg(CFG_LOG_ERROR, "stopping",
				   "the feeds thread failed: %s", err.msg);
			rc = EXIT_RUN;
			break;
		}
	}
out:
	md_app_stop(app);
	curl_global_cleanup();
	md_log_begin(&l, CFG_LOG_INFO, "stopped");
	md_log_int(&l, "exit", rc);
	md_log_end(&l);
	return rc;
}

int
main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "check-config", no_argument, NULL, 't' },
		{ "version", no_argument, NULL, 'V' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *file = NULL;
	bool check_only = false;
	struct cfg_errors *errs = NULL;
	struct cfg *cfg = NULL;
	char summary[256];
	int opt, rc = EXIT_FAILURE;

	opterr = 0;
	while ((opt = getopt_long(argc, argv, ":c:tVh", longopts, NULL)) !=
	       -1) {
		switch (opt) {
		case 'c':
			file = optarg;
			break;
		case 't':
			check_only = true;
			break;
		case 'V':
			printf("markd %s\n", PACKAGE_VERSION);
			return EXIT_SUCCESS;
		case 'h':
			usage(stdout);
			return EXIT_SUCCESS;
		case ':':
			return usage_error("missing argument for",
					   argv[optind - 1]);
		default:
			if (optopt != 0) {
				char shortopt[3] = { '-', (char)optopt, '\0' };

				return usage_error("unknown option", shortopt);
			}
			return usage_error("unknown option", argv[optind - 1]);
		}
	}
	if (optind < argc)
		return usage_error("unexpected argument", argv[optind]);
	if (file == NULL)
		return usage_error("no configuration file given (use -c FILE)",
				   NULL);

	errs = malloc(sizeof(*errs));
	if (errs == NULL) {
		fprintf(stderr, "markd: out of memory\n");
		goto out;
	}
	if (cfg_load(file, &cfg, errs) != MK_OK) {
		print_errors(file, errs);
		goto out;
	}
	if (check_only) {
		cfg_summary(cfg, summary, sizeof(summary));
		printf("%s: ok\n%s\n", file, summary);
		rc = EXIT_SUCCESS;
		goto out;
	}
	free(errs);
	return run(file, cfg);
out:
	cfg_free(cfg);
	free(errs);
	return rc;
}
