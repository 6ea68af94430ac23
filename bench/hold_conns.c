/*
 * hold_conns.c - holds N TCP connections open to a loopback server, the
 * way idle or slow ("slowloris") clients do, and counts what the server
 * does with them.
 *
 * Usage: bench/hold_conns -p PORT [-a ADDR] [-b SRC] [-n N] [-m idle|slow]
 *                         [-i MS] [-t SECONDS] [-w MS]
 *   -p PORT     the server's port (required)
 *   -a ADDR     the server's address (default 127.0.0.1)
 *   -b SRC      bind the connections to this source address first (e.g.
 *               127.0.0.2, another client address on the loopback)
 *   -n N        connections to open (default 1000)
 *   -m MODE     idle: send nothing; slow: send a GET request header one
 *               byte at a time, never finishing it (default idle)
 *   -i MS       slow mode: pause between two bytes on one connection
 *               (default 2000); the connections' bytes are spread evenly
 *               over that interval
 *   -t SECONDS  hold this long, then report and exit (default 0: until
 *               SIGTERM or SIGINT)
 *   -w MS       how long to wait for the connections to be established
 *               (default 5000)
 *
 * Both addresses must be IPv4 loopback addresses (127.0.0.0/8).
 *
 * Once every connect has finished (or -w ran out) it prints one line on
 * stdout and flushes it:
 *   connected=C failed=F
 * and at the end:
 *   asked=N connected=C failed=F closed_by_peer=K open=O first_close_ms=A
 *   last_close_ms=B
 * where a connection "closed by peer" is one the server closed or reset
 * (read 0, ECONNRESET or EPIPE), and the close times are milliseconds
 * since the connect phase ended (-1 when none closed). A connection the
 * kernel completed is "connected" even when the server has not accept()ed
 * it yet (it waits in the listen backlog): ask the server how many it
 * holds. Exit status 0, or 2 on bad usage, 1 when nothing could be set up.
 */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_CONNS 100000
#define POLL_MAX_MS 200

enum conn_state { C_CONNECTING, C_OPEN, C_FAILED, C_CLOSED };

struct conn {
	int fd;
	enum conn_state state;
	size_t sent;            /* bytes of the slow header sent */
	int64_t next_send_ms;   /* slow mode: when the next byte goes */
};

struct opts {
	struct sockaddr_in dst;
	struct sockaddr_in src;
	bool bind_src;
	unsigned n;
	bool slow;
	unsigned interval_ms;
	unsigned hold_s;
	unsigned wait_ms;
};

/* The header a slow client sends, one byte at a time; past its end it
 * sends 'a' forever (the value of X-Slow never ends). */
static const char slow_header[] =
	"GET /v1/marks/BTC-USD HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ";

static volatile sig_atomic_t stop_requested;

static void
on_signal(int sig)
{
	(void)sig;
	stop_requested = 1;
}

static int64_t
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int
usage_error(const char *msg, const char *arg)
{
	fprintf(stderr, "hold_conns: %s%s%s\n", msg, arg != NULL ? " " : "",
		arg != NULL ? arg : "");
	fprintf(stderr,
		"usage: hold_conns -p PORT [-a ADDR] [-b SRC] [-n N] [-m idle|slow] [-i MS] [-t SECONDS] [-w MS]\n");
	return 2;
}

/* Reads an unsigned decimal in [lo, hi]; false when arg is not one. */
static bool
parse_uint(const char *arg, unsigned lo, unsigned hi, unsigned *out)
{
	char *end;
	unsigned long v;

	if (arg[0] < '0' || arg[0] > '9')
		return false;
	errno = 0;
	v = strtoul(arg, &end, 10);
	if (errno != 0 || *end != '\0' || v < lo || v > hi)
		return false;
	*out = (unsigned)v;
	return true;
}

/* Reads a loopback IPv4 address; false for anything else. */
static bool
parse_loopback(const char *arg, struct in_addr *out)
{
	if (inet_pton(AF_INET, arg, out) != 1)
		return false;
	return (ntohl(out->s_addr) >> 24) == 127;
}

static int
parse_opts(int argc, char **argv, struct opts *o)
{
	unsigned port = 0;
	int c;

	memset(o, 0, sizeof *o);
	o->dst.sin_family = AF_INET;
	o->dst.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	o->src.sin_family = AF_INET;
	o->n = 1000;
	o->interval_ms = 2000;
	o->wait_ms = 5000;
	while ((c = getopt(argc, argv, "p:a:b:n:m:i:t:w:")) != -1) {
		switch (c) {
		case 'p':
			if (!parse_uint(optarg, 1, 65535, &port))
				return usage_error("-p: not a port (1-65535):", optarg);
			break;
		case 'a':
			if (!parse_loopback(optarg, &o->dst.sin_addr))
				return usage_error("-a: not an IPv4 loopback address:", optarg);
			break;
		case 'b':
			if (!parse_loopback(optarg, &o->src.sin_addr))
				return usage_error("-b: not an IPv4 loopback address:", optarg);
			o->bind_src = true;
			break;
		case 'n':
			if (!parse_uint(optarg, 1, MAX_CONNS, &o->n))
				return usage_error("-n: not a count (1-100000):", optarg);
			break;
		case 'm':
			if (strcmp(optarg, "idle") == 0)
				o->slow = false;
			else if (strcmp(optarg, "slow") == 0)
				o->slow = true;
			else
				return usage_error("-m: expected idle or slow, got", optarg);
			break;
		case 'i':
			if (!parse_uint(optarg, 1, 3600000, &o->interval_ms))
				return usage_error("-i: not milliseconds (1-3600000):", optarg);
			break;
		case 't':
			if (!parse_uint(optarg, 0, 86400, &o->hold_s))
				return usage_error("-t: not seconds (0-86400):", optarg);
			break;
		case 'w':
			if (!parse_uint(optarg, 1, 600000, &o->wait_ms))
				return usage_error("-w: not milliseconds (1-600000):", optarg);
			break;
		default:
			return usage_error("unknown option", NULL);
		}
	}
	if (optind < argc)
		return usage_error("unexpected argument", argv[optind]);
	if (port == 0)
		return usage_error("-p PORT is required", NULL);
	o->dst.sin_port = htons((uint16_t)port);
	return 0;
}

/* Raises the soft limit on open files to what n connections need (up to
 * the hard limit); false when even that is too low. */
static bool
raise_nofile(unsigned n)
{
	struct rlimit rl;
	rlim_t need = (rlim_t)n + 16;

	if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
		return false;
	if (rl.rlim_cur >= need)
		return true;
	if (rl.rlim_max != RLIM_INFINITY && rl.rlim_max < need) {
		fprintf(stderr,
			"hold_conns: %u connections need %lu open files, the hard limit is %lu\n",
			n, (unsigned long)need, (unsigned long)rl.rlim_max);
		return false;
	}
	rl.rlim_cur = need;
	if (setrlimit(RLIMIT_NOFILE, &rl) != 0) {
		fprintf(stderr, "hold_conns: setrlimit(RLIMIT_NOFILE, %lu): %s\n",
			(unsigned long)need, strerror(errno));
		return false;
	}
	return true;
}

/* Starts a non-blocking connect; the connection is C_FAILED when it
 * cannot even start. */
static void
start_connect(const struct opts *o, struct conn *c)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

	c->fd = -1;
	c->state = C_FAILED;
	if (fd < 0)
		return;
	if (o->bind_src &&
	    bind(fd, (const struct sockaddr *)&o->src, sizeof o->src) != 0)
		goto fail;
	if (connect(fd, (const struct sockaddr *)&o->dst, sizeof o->dst) != 0 &&
	    errno != EINPROGRESS)
		goto fail;
	c->fd = fd;
	c->state = C_CONNECTING;
	return;
fail:
	close(fd);
}

/* Waits (up to wait_ms) for every connect to finish; those still
 * connecting then count as failed. */
static void
finish_connects(const struct opts *o, struct conn *cs, struct pollfd *pfd)
{
	int64_t deadline = now_ms() + o->wait_ms;

	for (;;) {
		nfds_t k = 0;
		int64_t left;

		for (unsigned i = 0; i < o->n; i++) {
			if (cs[i].state != C_CONNECTING)
				continue;
			pfd[k].fd = cs[i].fd;
			pfd[k].events = POLLOUT;
			pfd[k].revents = 0;
			k++;
		}
		left = deadline - now_ms();
		if (k == 0 || left <= 0 || stop_requested)
			break;
		if (poll(pfd, k, (int)left) < 0 && errno != EINTR)
			break;
		k = 0;
		for (unsigned i = 0; i < o->n; i++) {
			int err = 0;
			socklen_t len = sizeof err;

			if (cs[i].state != C_CONNECTING)
				continue;
			if (pfd[k++].revents == 0)
				continue;
			if (getsockopt(cs[i].fd, SOL_SOCKET, SO_ERROR, &err,
				       &len) != 0 || err != 0) {
				close(cs[i].fd);
				cs[i].fd = -1;
				cs[i].state = C_FAILED;
			} else {
				cs[i].state = C_OPEN;
			}
		}
	}
	for (unsigned i = 0; i < o->n; i++)
		if (cs[i].state == C_CONNECTING) {
			close(cs[i].fd);
			cs[i].fd = -1;
			cs[i].state = C_FAILED;
		}
}

/* Sends the next byte of the slow header; false when the server closed
 * the connection. */
static bool
send_slow_byte(struct conn *c)
{
	char b = c->sent < sizeof slow_header - 1 ? slow_header[c->sent] : 'a';
	ssize_t w = send(c->fd, &b, 1, MSG_NOSIGNAL | MSG_DONTWAIT);

	if (w == 1) {
		c->sent++;
		return true;
	}
	return w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK ||
			 errno == EINTR);
}

/* Whether a readable connection was closed by the server (anything it
 * sends, such as an error answer, is read and dropped). */
static bool
peer_closed(struct conn *c)
{
	char buf[4096];

	for (;;) {
		ssize_t r = recv(c->fd, buf, sizeof buf, MSG_DONTWAIT);

		if (r > 0)
			continue;
		if (r == 0)
			return true;
		if (errno == EINTR)
			continue;
		return errno != EAGAIN && errno != EWOULDBLOCK;
	}
}

struct tally {
	unsigned closed;
	int64_t first_close_ms;
	int64_t last_close_ms;
};

static void
mark_closed(struct conn *c, struct tally *t, int64_t since_ms)
{
	close(c->fd);
	c->fd = -1;
	c->state = C_CLOSED;
	t->closed++;
	if (t->first_close_ms < 0)
		t->first_close_ms = since_ms;
	t->last_close_ms = since_ms;
}

/* Holds the open connections until -t runs out or a signal comes. */
static void
hold(const struct opts *o, struct conn *cs, struct pollfd *pfd,
     unsigned *map, struct tally *t)
{
	int64_t t0 = now_ms();
	int64_t end = o->hold_s > 0 ? t0 + (int64_t)o->hold_s * 1000 : -1;
	unsigned open = 0;

	for (unsigned i = 0; i < o->n; i++) {
		if (cs[i].state != C_OPEN)
			continue;
		/* spread the bytes evenly over one interval */
		cs[i].next_send_ms =
			t0 + (int64_t)o->interval_ms * open / o->n;
		open++;
	}
	while (!stop_requested) {
		int64_t now = now_ms(), wake = end;
		nfds_t k = 0;
		int r;

		if (end >= 0 && now >= end)
			break;
		for (unsigned i = 0; i < o->n; i++) {
			if (cs[i].state != C_OPEN)
				continue;
			if (o->slow && cs[i].next_send_ms <= now) {
				if (!send_slow_byte(&cs[i])) {
					mark_closed(&cs[i], t, now - t0);
					continue;
				}
				cs[i].next_send_ms += o->interval_ms;
				if (cs[i].next_send_ms <= now)
					cs[i].next_send_ms = now + o->interval_ms;
			}
			if (o->slow && (wake < 0 || cs[i].next_send_ms < wake))
				wake = cs[i].next_send_ms;
			pfd[k].fd = cs[i].fd;
			pfd[k].events = POLLIN | POLLRDHUP;
			pfd[k].revents = 0;
			map[k] = i;
			k++;
		}
		/* wake at least every POLL_MAX_MS to see a signal that came
		 * just before poll() */
		if (wake < 0 || wake - now > POLL_MAX_MS)
			wake = now + POLL_MAX_MS;
		r = poll(pfd, k, wake > now ? (int)(wake - now) : 0);
		if (r < 0 && errno != EINTR)
			break;
		now = now_ms();
		for (nfds_t j = 0; r > 0 && j < k; j++)
			if (pfd[j].revents != 0 && peer_closed(&cs[map[j]]))
				mark_closed(&cs[map[j]], t, now - t0);
	}
}

int
main(int argc, char **argv)
{
	struct opts o;
	struct conn *cs = NULL;
	struct pollfd *pfd = NULL;
	unsigned *map = NULL;
	struct tally t = { 0, -1, -1 };
	struct sigaction sa;
	unsigned connected = 0, failed = 0, open = 0;
	int rc;

	rc = parse_opts(argc, argv, &o);
	if (rc != 0)
		return rc;
	rc = 1;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_signal;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	if (!raise_nofile(o.n))
		goto out;
	cs = calloc(o.n, sizeof *cs);
	pfd = calloc(o.n, sizeof *pfd);
	map = calloc(o.n, sizeof *map);
	if (cs == NULL || pfd == NULL || map == NULL) {
		fprintf(stderr, "hold_conns: out of memory\n");
		goto out;
	}
	for (unsigned i = 0; i < o.n; i++)
		start_connect(&o, &cs[i]);
	finish_connects(&o, cs, pfd);
	for (unsigned i = 0; i < o.n; i++) {
		if (cs[i].state == C_OPEN)
			connected++;
		else
			failed++;
	}
	printf("connected=%u failed=%u\n", connected, failed);
	fflush(stdout);
	hold(&o, cs, pfd, map, &t);
	for (unsigned i = 0; i < o.n; i++)
		if (cs[i].state == C_OPEN)
			open++;
	printf("asked=%u connected=%u failed=%u closed_by_peer=%u open=%u first_close_ms=%lld last_close_ms=%lld\n",
	       o.n, connected, failed, t.closed, open,
	       (long long)t.first_close_ms, (long long)t.last_close_ms);
	fflush(stdout);
	rc = 0;
out:
	if (cs != NULL)
		for (unsigned i = 0; i < o.n; i++)
			if (cs[i].fd >= 0)
				close(cs[i].fd);
	free(cs);
	free(pfd);
	free(map);
	return rc;
}
