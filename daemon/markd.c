/*
 * markd.c - the markd program: command line, then (later) the daemon.
 *
 *   markd -c FILE                  load FILE and run the daemon
 *   markd --check-config -c FILE   validate FILE and exit
 *   markd --version | --help
 *
 * Exit status: 0 success, 1 an invalid config (or a failure to run),
 * 2 a usage error.
 */
/* Autoconf's header; "config.h" would find this folder's config.h. */
#include "config.h"

#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>

#include "daemon/cfg.h"

#define EXIT_USAGE 2

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
		"Exit status: 0 success, 1 invalid configuration or failure,\n"
		"2 usage error.\n");
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
	cfg_summary(cfg, summary, sizeof(summary));
	if (check_only) {
		printf("%s: ok\n%s\n", file, summary);
		rc = EXIT_SUCCESS;
		goto out;
	}
	fprintf(stderr, "markd: %s: ok (%s)\n"
		"markd: the daemon loop is not built yet; only --check-config "
		"works in this version\n", file, summary);
out:
	cfg_free(cfg);
	free(errs);
	return rc;
}
