/*
 * markd-parse - runs one adapter's parser on a saved response body and
 * prints the normalized quote(s) as one line of JSON.
 *
 *   markd-parse --adapter NAME --market ID [--options JSON] FILE
 *
 * FILE may be "-" for standard input. Exit status: 0 parsed, 1 the body is
 * a venue error or cannot be read as the venue's answer (one line on
 * standard error naming the venue and the problem), 2 usage (unknown
 * adapter, missing or bad arguments, unreadable file).
 */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "feeds/adapter.h"

#define EXIT_PARSE 1
#define EXIT_USAGE 2
/* A saved body larger than this is not a ticker answer. */
#define BODY_MAX (64u << 20)

static const char *progname = "markd-parse";

static void
usage(FILE *f)
{
	fprintf(f,
		"usage: %s --adapter NAME --market ID [--options JSON] FILE\n"
		"\n"
		"Parses FILE (a saved response body; - for standard input) with\n"
		"the adapter NAME and prints the quote for market ID as one line:\n"
		"  {\"adapter\":..,\"market\":..,\"quotes\":[{\"market\":..,\"bid\":..,\n"
		"   \"ask\":..,\"last\":..,\"price\":..,\"conf\":..,\"exchange_ts\":..}]}\n"
		"Decimals are strings with the venue's own digits; missing values\n"
		"are null; price is the exact mid of bid and ask (one more digit\n"
		"when halving needs it), else last; exchange_ts is RFC 3339 UTC.\n"
		"\n"
		"  -a, --adapter NAME   the venue adapter (list below)\n"
		"  -m, --market ID      the venue's market id (BTCUSDT, XBTUSD, ...)\n"
		"  -o, --options JSON   the source's options object (json adapter)\n"
		"  -h, --help           this text\n"
		"\n"
		"Exit status: 0 parsed; 1 venue error or unreadable body;\n"
		"2 usage error.\n"
		"\n"
		"Adapters:\n", progname);
	for (size_t i = 0; i < feed_adapter_count(); i++) {
		const struct feed_adapter *a = feed_adapter_at(i);

		fprintf(f, "  %-9s %s\n", feed_adapter_name(a),
			feed_adapter_summary(a));
	}
}

static int
usage_error(const char *msg)
{
	fprintf(stderr, "%s: %s (see %s --help)\n", progname, msg, progname);
	return EXIT_USAGE;
}

/* Reads all of f into a new buffer; false with errno set on failure. */
static bool
read_all(FILE *f, char **out, size_t *len)
{
	size_t cap = 0, n = 0;
	char *buf = NULL;

	for (;;) {
		size_t got;

		if (n == cap) {
			char *nb;

			if (cap >= BODY_MAX) {
				free(buf);
				errno = EFBIG;
				return false;
			}
			cap = cap == 0 ? 65536 : cap * 2;
			nb = realloc(buf, cap);
			if (nb == NULL) {
				free(buf);
				errno = ENOMEM;
				return false;
			}
			buf = nb;
		}
		got = fread(buf + n, 1, cap - n, f);
		n += got;
		if (got == 0) {
			if (ferror(f)) {
				int e = errno;

				free(buf);
				errno = e != 0 ? e : EIO;
				return false;
			}
			break;
		}
	}
	*out = buf;
	*len = n;
	return true;
}

int
main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "adapter", required_argument, NULL, 'a' },
		{ "market", required_argument, NULL, 'm' },
		{ "options", required_argument, NULL, 'o' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *adapter = NULL, *market = NULL, *options = NULL, *file;
	const struct feed_adapter *a;
	struct feed_adapter_opts *opts = NULL;
	struct feed_quote quote;
	struct mk_err err = { 0 };
	json_t *ojson = NULL;
	json_error_t jerr;
	char *body = NULL, *line = NULL, names[256];
	size_t len = 0, n = 0;
	FILE *f;
	int c, rc = EXIT_USAGE;

	while ((c = getopt_long(argc, argv, "a:m:o:h", longopts, NULL)) != -1) {
		switch (c) {
		case 'a': adapter = optarg; break;
		case 'm': market = optarg; break;
		case 'o': options = optarg; break;
		case 'h': usage(stdout); return 0;
		default: return usage_error("bad option");
		}
	}
	if (adapter == NULL)
		return usage_error("--adapter is required");
	if (market == NULL)
		return usage_error("--market is required");
	if (optind != argc - 1)
		return usage_error(optind == argc
				   ? "a FILE to parse is required"
				   : "exactly one FILE is expected");
	file = argv[optind];
	a = feed_adapter_find(adapter);
	if (a == NULL) {
		feed_adapter_names(names, sizeof(names));
		fprintf(stderr, "%s: unknown adapter \"%s\" (known: %s)\n",
			progname, adapter, names);
		return EXIT_USAGE;
	}
	if (options != NULL) {
		ojson = json_loads(options, JSON_REJECT_DUPLICATES, &jerr);
		if (ojson == NULL) {
			fprintf(stderr, "%s: --options is not valid JSON: %s\n",
				progname, jerr.text);
			goto out;
		}
	}
	if (feed_adapter_opts_create(a, ojson, &opts, &err) != MK_OK) {
		fprintf(stderr, "%s: --options: %s\n", progname, err.msg);
		goto out;
	}
	if (strcmp(file, "-") == 0) {
		f = stdin;
	} else {
		f = fopen(file, "rb");
		if (f == NULL) {
			fprintf(stderr, "%s: %s: %s\n", progname, file,
				strerror(errno));
			goto out;
		}
	}
	if (!read_all(f, &body, &len)) {
		fprintf(stderr, "%s: %s: %s\n", progname, file,
			strerror(errno));
		if (f != stdin)
			fclose(f);
		goto out;
	}
	if (f != stdin)
		fclose(f);
	rc = EXIT_PARSE;
	if (feed_adapter_parse(a, opts, market, body, len, &quote, 1, &n,
			       &err) != MK_OK) {
		fprintf(stderr, "%s: %s (%s)\n", progname, err.msg,
			mk_strstatus(err.code));
		goto out;
	}
	if (feed_quotes_render(adapter, market, &quote, n, &line, &err) !=
	    MK_OK) {
		fprintf(stderr, "%s: %s: %s\n", progname, adapter, err.msg);
		goto out;
	}
	printf("%s\n", line);
	rc = fflush(stdout) == 0 ? 0 : EXIT_PARSE;
out:
	free(line);
	free(body);
	feed_adapter_opts_destroy(opts);
	json_decref(ojson);
	return rc;
}
