/*
 * markd-replay.c - replays history CSVs through markd's aggregator and
 * margin code in simulated time and scores every method's liquidations
 * against what the market really did (doc/replay.md).
 *
 *   markd-replay --data DIR --config FILE --positions SPEC
 *                [--method M]... [--out DIR] [--symbol S]
 *                [--from TIME] [--to TIME]
 *
 * Exit status: 0 success, 1 a data error (config, CSV, positions file,
 * output), 2 a usage error (options, --positions grid spec, --method).
 */
/* Autoconf's header. */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/cfg.h"
#include "feeds/rfc3339.h"
#include "tools/replay_data.h"
#include "tools/replay_pos.h"
#include "tools/replay_report.h"
#include "tools/replay_sim.h"
#include "tools/replay_truth.h"

#define EXIT_USAGE 2
#define PROG "markd-replay"

struct opts {
	const char *data, *config, *positions, *out, *symbol;
	const char *method_text[REPLAY_MAX_METHODS];
	size_t nmethods;
	struct replay_window win;
	bool grid;
	struct replay_grid g;
	bool quiet;
};

static void
usage(FILE *out)
{
	fprintf(out,
		"Usage: " PROG " --data DIR --config FILE --positions SPEC\n"
		"                    [--method M]... [--out DIR] [--symbol S]\n"
		"                    [--from TIME] [--to TIME] [--quiet]\n"
		"       " PROG " --version | --help\n"
		"\n"
		"Feeds 1-minute history CSVs through markd's aggregator and\n"
		"margin code in simulated time (no network, no clock) and\n"
		"reports, per method, liquidations, false liquidations, missed\n"
		"ones and the delay, judged against the venues' own bars.\n"
		"\n"
		"Options:\n"
		"  --data DIR        folder of the CSV files\n"
		"  --config FILE     markd's config; each leg's \"market\" is\n"
		"                    its CSV file name relative to DIR\n"
		"  --positions SPEC  grid:LEVERAGES:EVERY_MIN (e.g.\n"
		"                    grid:5,10,25,50,100:30: a long and a short\n"
		"                    per leverage every EVERY_MIN minutes), or a\n"
		"                    JSON positions file\n"
		"  --method M        markd, median, median-converted or\n"
		"                    single:LEG; repeatable; default: all of\n"
		"                    them, with single: for every leg\n"
		"  --out DIR         output folder (default replay-out):\n"
		"                    summary.json, marks.csv, liquidations.csv,\n"
		"                    plot.svg\n"
		"  --symbol S        the instrument of the positions (default:\n"
		"                    the first one with margin brackets)\n"
		"  --from, --to TIME cut the window (RFC 3339 or Unix seconds)\n"
		"  --quiet           do not print the table\n"
		"  -V, --version     print the version and exit\n"
		"  -h, --help        print this help and exit\n"
		"\n"
		"Exit status: 0 success, 1 data error, 2 usage error.\n");
}

static int usage_error(const char *fmt, ...)
	__attribute__((format(printf, 1, 2)));

static int
usage_error(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, PROG ": ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\nTry '" PROG " --help' for more information.\n");
	return EXIT_USAGE;
}

/* A time given as RFC 3339 or Unix seconds. */
static bool
parse_time(const char *s, int64_t *out_s)
{
	int64_t ms;
	char *end;
	long long v;

	if (feed_rfc3339_parse_ms(s, strlen(s), &ms, NULL) == MK_OK) {
		*out_s = ms / 1000;
		return true;
	}
	errno = 0;
	v = strtoll(s, &end, 10);
	if (s[0] < '0' || s[0] > '9' || *end != '\0' || errno != 0 ||
	    v > FEED_TS_MAX_MS / 1000)
		return false;
	*out_s = v;
	return true;
}

/* Parses the command line; returns -1 to go on, else the exit status. */
static int
parse_args(int argc, char **argv, struct opts *o)
{
	static const struct option longopts[] = {
		{ "data", required_argument, NULL, 'd' },
		{ "config", required_argument, NULL, 'c' },
		{ "positions", required_argument, NULL, 'p' },
		{ "method", required_argument, NULL, 'm' },
		{ "out", required_argument, NULL, 'o' },
		{ "symbol", required_argument, NULL, 's' },
		{ "from", required_argument, NULL, 'F' },
		{ "to", required_argument, NULL, 'T' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "version", no_argument, NULL, 'V' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct mk_err e;
	int opt;

	opterr = 0;
	while ((opt = getopt_long(argc, argv, ":Vh", longopts, NULL)) != -1) {
		switch (opt) {
		case 'd': o->data = optarg; break;
		case 'c': o->config = optarg; break;
		case 'p': o->positions = optarg; break;
		case 'o': o->out = optarg; break;
		case 's': o->symbol = optarg; break;
		case 'q': o->quiet = true; break;
		case 'm':
			if (o->nmethods == REPLAY_MAX_METHODS)
				return usage_error("more than %d methods",
						   REPLAY_MAX_METHODS);
			if (replay_method_check(optarg, &e) != MK_OK)
				return usage_error("%s", e.msg);
			o->method_text[o->nmethods++] = optarg;
			break;
		case 'F':
		case 'T':
			if (!parse_time(optarg, opt == 'F' ? &o->win.from_s
							   : &o->win.to_s))
				return usage_error("--from/--to: \"%s\" is not "
						   "an RFC 3339 time or Unix "
						   "seconds", optarg);
			if (opt == 'F')
				o->win.has_from = true;
			else
				o->win.has_to = true;
			break;
		case 'V':
			printf(PROG " %s\n", PACKAGE_VERSION);
			return EXIT_SUCCESS;
		case 'h':
			usage(stdout);
			return EXIT_SUCCESS;
		case ':':
			return usage_error("missing argument for '%s'",
					   argv[optind - 1]);
		default:
			if (optopt != 0) {
				static char so[3] = "-?";

				so[1] = (char)optopt;
				return usage_error("unknown option '%s'", so);
			}
			return usage_error("unknown option '%s'",
					   argv[optind - 1]);
		}
	}
	if (optind < argc)
		return usage_error("unexpected argument '%s'", argv[optind]);
	if (o->data == NULL || o->config == NULL || o->positions == NULL)
		return usage_error("%s", "--data, --config and --positions are "
				   "required");
	if (o->win.has_from && o->win.has_to && o->win.to_s <= o->win.from_s)
		return usage_error("%s", "--to must be after --from");
	if (o->out == NULL)
		o->out = "replay-out";
	if (strncmp(o->positions, "grid:", 5) == 0) {
		o->grid = true;
		if (replay_grid_parse(o->positions, &o->g, &e) != MK_OK)
			return usage_error("--positions %s", e.msg);
	}
	return -1;
}

/* Prints every error of a failed config load. */
static void
print_cfg_errors(const char *file, const struct cfg_errors *errs)
{
	for (size_t i = 0; i < errs->count; i++) {
		const struct cfg_error *e = &errs->e[i];

		if (e->line > 0)
			fprintf(stderr, PROG ": %s:%d:%d: %s\n", file, e->line,
				e->column, e->msg);
		else if (e->path[0] != '\0')
			fprintf(stderr, PROG ": %s: %s: %s\n", file, e->path,
				e->msg);
		else
			fprintf(stderr, PROG ": %s: %s\n", file, e->msg);
	}
	if (errs->total > errs->count)
		fprintf(stderr, PROG ": %s: %zu more errors not shown\n", file,
			errs->total - errs->count);
}

/* The methods to run into m[]; returns -1 or an exit status. */
static int
pick_methods(const struct opts *o, const struct replay_data *d,
	     struct replay_method *m, size_t *nm)
{
	struct mk_err e;

	if (o->nmethods == 0) {
		*nm = replay_methods_all(d, m, REPLAY_MAX_METHODS);
		if (*nm > REPLAY_MAX_METHODS)
			*nm = REPLAY_MAX_METHODS;
		return -1;
	}
	for (size_t i = 0; i < o->nmethods; i++) {
		if (replay_method_parse(d, o->method_text[i], &m[i], &e) !=
		    MK_OK)
			return usage_error("%s", e.msg);
		for (size_t k = 0; k < i; k++)
			if (strcmp(m[k].name, m[i].name) == 0)
				return usage_error("--method: \"%s\" is given "
						   "twice", m[i].name);
	}
	*nm = o->nmethods;
	return -1;
}

int
main(int argc, char **argv)
{
	static struct opts o;
	static struct replay_method methods[REPLAY_MAX_METHODS];
	struct cfg_errors *errs = NULL;
	struct cfg *cfg = NULL;
	struct replay_data *d = NULL;
	struct replay_positions ps = { 0 };
	struct replay_truth truth = { 0 };
	struct replay_result res = { 0 };
	struct replay_score sc = { 0 };
	struct mk_err e = { 0 };
	size_t nm = 0;
	int rc;

	rc = parse_args(argc, argv, &o);
	if (rc >= 0)
		return rc;
	rc = EXIT_FAILURE;
	errs = malloc(sizeof(*errs));
	if (errs == NULL) {
		fprintf(stderr, PROG ": out of memory\n");
		goto out;
	}
	if (cfg_load(o.config, &cfg, errs) != MK_OK) {
		print_cfg_errors(o.config, errs);
		goto out;
	}
	if (replay_data_load(o.data, cfg, o.symbol, &o.win, &d, &e) != MK_OK) {
		if (e.code == MK_ENOTFOUND) {
			rc = usage_error("%s", e.msg);
			goto out;
		}
		fprintf(stderr, PROG ": %s: %s\n", o.config, e.msg);
		goto out;
	}
	rc = pick_methods(&o, d, methods, &nm);
	if (rc >= 0)
		goto out;
	rc = EXIT_FAILURE;
	if (o.grid ? replay_grid_positions(&o.g, d->from_ms,
					   d->from_ms + (int64_t)d->nmin *
						   REPLAY_MINUTE_MS,
					   &ps, &e) != MK_OK
		   : replay_positions_load(o.positions, &ps, &e) != MK_OK) {
		fprintf(stderr, PROG ": --positions: %s\n", e.msg);
		goto out;
	}
	if (replay_truth_build(d, &truth, &e) != MK_OK ||
	    replay_run(d, &ps, methods, nm, &res, &e) != MK_OK ||
	    replay_score_build(d, &ps, &truth, &res, &sc, &e) != MK_OK ||
	    replay_write_outputs(o.out, d, &ps, &res, &sc, &e) != MK_OK) {
		fprintf(stderr, PROG ": %s\n", e.msg);
		goto out;
	}
	if (!o.quiet)
		replay_print_table(stdout, &res, &sc);
	rc = EXIT_SUCCESS;
out:
	replay_score_clear(&sc);
	replay_result_clear(&res);
	replay_truth_clear(&truth);
	replay_positions_clear(&ps);
	replay_data_free(d);
	free(errs);
	return rc;
}
