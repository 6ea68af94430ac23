/*
 * markd-fakex - a fake exchange for demos and tests: serves every venue's
 * real paths and body formats on loopback, with prices from a scenario
 * (history CSVs or seeded random walks) and faults injected on schedule or
 * through an admin endpoint. See doc/fakex.md.
 *
 * Usage: markd-fakex [-s SCENARIO] [-l ADDR:PORT] [-p PORT] [--check]
 *                    [-v] [--help] [--version]
 * Exit status: 0 clean shutdown (SIGINT/SIGTERM) or a valid --check,
 * 1 a bad scenario or a socket that cannot be bound, 2 usage.
 */
#include "config.h"

#include "tools/fakex_scenario.h"
#include "tools/fakex_server.h"

#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Without -s: every venue, a random walk around 30000 (a BTC-like
 * market), on the default port. */
static const char default_scenario[] =
	"{\"venues\":{"
	"\"binance\":{\"markets\":{\"BTCUSDT\":{\"walk\":{\"seed\":1,\"start\":\"30000.00\",\"sigma_bps\":3}}}},"
	"\"coinbase\":{\"markets\":{\"BTC-USD\":{\"walk\":{\"seed\":2,\"start\":\"30000.00\",\"sigma_bps\":3}}}},"
	"\"kraken\":{\"markets\":{\"XBTUSD\":{\"walk\":{\"seed\":3,\"start\":\"30000.0\",\"sigma_bps\":3}}}},"
	"\"bitstamp\":{\"markets\":{\"btcusd\":{\"walk\":{\"seed\":4,\"start\":\"30000\",\"sigma_bps\":3}}}},"
	"\"okx\":{\"markets\":{\"BTC-USDT\":{\"walk\":{\"seed\":5,\"start\":\"30000.0\",\"sigma_bps\":3}}}},"
	"\"bybit\":{\"markets\":{\"BTCUSDT\":{\"walk\":{\"seed\":6,\"start\":\"30000.00\",\"sigma_bps\":3}}}},"
	"\"gemini\":{\"markets\":{\"btcusd\":{\"walk\":{\"seed\":7,\"start\":\"30000.00\",\"sigma_bps\":3}}}},"
	"\"kucoin\":{\"markets\":{\"BTC-USDT\":{\"walk\":{\"seed\":8,\"start\":\"30000.0\",\"sigma_bps\":3}}}},"
	"\"bitfinex\":{\"markets\":{\"tBTCUSD\":{\"walk\":{\"seed\":9,\"start\":\"30000\",\"sigma_bps\":3}}}},"
	"\"pyth\":{\"markets\":{\"e62df6c8b4a85fe1a67db44dc12de5db330f7ac66b72dc658afedf0f4a415b43\":"
	"{\"walk\":{\"seed\":10,\"start\":\"30000.00\",\"sigma_bps\":3}}}}"
	"}}";

static volatile sig_atomic_t stop_requested;

static void
on_signal(int sig)
{
	(void)sig;
	stop_requested = 1;
}

static void
usage(FILE *fp)
{
	fprintf(fp,
		"usage: markd-fakex [-s SCENARIO] [-l ADDR:PORT] [-p PORT] [--check] [-v]\n"
		"  -s, --scenario FILE   scenario JSON (doc/fakex.md); default: a random\n"
		"                        walk on every venue\n"
		"  -l, --listen A:P      listen address and port (overrides the scenario)\n"
		"  -p, --port N          listen port (0 = any free port)\n"
		"      --check           validate the scenario and exit\n"
		"  -v, --verbose         log every request to stderr\n"
		"      --help, --version\n"
		"On start it prints \"listening ADDR:PORT\" (and one \"venue NAME ADDR:PORT\"\n"
		"line per venue with its own port) on stdout. Venues answer under\n"
		"/<venue>/<real path>; the admin endpoint is /admin/state and /admin/fault.\n");
}

static bool
parse_port(const char *s, int *out)
{
	char *end = NULL;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0' || v < 0 || v > 65535)
		return false;
	*out = (int)v;
	return true;
}

int
main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "scenario", required_argument, NULL, 's' },
		{ "listen", required_argument, NULL, 'l' },
		{ "port", required_argument, NULL, 'p' },
		{ "check", no_argument, NULL, 'c' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	const char *scenario_path = NULL, *listen = NULL;
	int port = -1, c, rc = 1;
	bool check = false, verbose = false;
	struct fakex_scenario *sc = NULL;
	struct fakex_server *srv = NULL;
	struct mk_err err = { 0 };
	struct sigaction sa;

	while ((c = getopt_long(argc, argv, "s:l:p:v", opts, NULL)) != -1) {
		switch (c) {
		case 's':
			scenario_path = optarg;
			break;
		case 'l':
			listen = optarg;
			break;
		case 'p':
			if (!parse_port(optarg, &port)) {
				fprintf(stderr, "markd-fakex: --port: \"%s\" is not a port\n",
					optarg);
				return 2;
			}
			break;
		case 'c':
			check = true;
			break;
		case 'v':
			verbose = true;
			break;
		case 'h':
			usage(stdout);
			return 0;
		case 'V':
			printf("markd-fakex %s\n", PACKAGE_VERSION);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind != argc) {
		usage(stderr);
		return 2;
	}

	json_object_seed(1);
	if (scenario_path != NULL) {
		if (fakex_scenario_load(scenario_path, &sc, &err) != MK_OK) {
			fprintf(stderr, "markd-fakex: %s\n", err.msg);
			goto out;
		}
	} else if (fakex_scenario_parse(default_scenario,
					sizeof(default_scenario) - 1, NULL, &sc,
					&err) != MK_OK) {
		fprintf(stderr, "markd-fakex: built-in scenario: %s\n", err.msg);
		goto out;
	}
	if (listen != NULL) {
		const char *colon = strrchr(listen, ':');

		if (colon == NULL || colon == listen ||
		    (size_t)(colon - listen) >= sizeof(sc->listen_addr) ||
		    !parse_port(colon + 1, &sc->port)) {
			fprintf(stderr, "markd-fakex: --listen: expected ADDRESS:PORT\n");
			rc = 2;
			goto out;
		}
		memcpy(sc->listen_addr, listen, (size_t)(colon - listen));
		sc->listen_addr[colon - listen] = '\0';
	}
	if (port >= 0)
		sc->port = port;
	if (check) {
		printf("scenario ok\n");
		rc = 0;
		goto out;
	}

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sa.sa_handler = SIG_IGN;
	sigaction(SIGPIPE, &sa, NULL);

	if (fakex_server_start(sc, verbose, &srv, &err) != MK_OK) {
		fprintf(stderr, "markd-fakex: %s\n", err.msg);
		goto out;
	}
	fakex_server_print(srv, stdout);
	while (!stop_requested) {
		struct timespec ts = { 0, 10 * 1000 * 1000 };

		fakex_server_tick(srv);
		nanosleep(&ts, NULL);
	}
	rc = 0;
out:
	fakex_server_stop(srv);
	fakex_scenario_destroy(sc);
	return rc;
}
