/*
 * server.h - the HTTP server: one libmicrohttpd daemon with one internal
 * poll() thread, a route table, limits, and a clean stop.
 *
 * Mode: MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_POLL | MHD_USE_ERROR_LOG
 * (+ MHD_ALLOW_SUSPEND_RESUME for the SSE stream). Not epoll: on MHD 0.9.75
 * the epoll loop sleeps when exactly 128*k connections are ready at once
 * (reference/perf-baseline.md). One thread measured faster than a pool on
 * our boxes, so there is no pool option.
 *
 * Every request is answered on the access handler's last call (the one
 * after the body), never its first, because MHD 0.9.75 turns a response
 * queued on the first call into "Connection: close" and keep-alive is lost.
 * The only early answer is a 413 for a Content-Length far beyond the body
 * cap, where closing the connection is the point.
 *
 * Slow or idle clients cannot starve others: connections time out after
 * connection_timeout_s without progress, and a per-IP connection limit
 * keeps one address from taking every slot. Keep per_ip_limit above the
 * number of connections a load balancer in front opens.
 *
 * SIGPIPE: MHD writes with MSG_NOSIGNAL on Linux, but other libraries
 * (curl, OpenSSL) may not, so the daemon's main() ignores SIGPIPE before
 * starting any thread. This module does not touch signal dispositions.
 *
 * Logging: the server's own lines (libmicrohttpd's messages, a handler
 * that gave no answer) go to the config's log sink, so that the program
 * using this module keeps one log format; without a sink they are
 * key=value lines on stderr.
 *
 * Thread safety: start and stop from one controlling thread (not from a
 * handler). httpd_server_port and httpd_server_in_flight may be called
 * from any thread while the server runs. Everything handed in through the
 * config (router, auth, metrics, hub, log_arg) is borrowed and must
 * outlive the server; the router must not change while it runs.
 */
#ifndef MARKD_HTTPD_SERVER_H
#define MARKD_HTTPD_SERVER_H

#include <stddef.h>
#include <stdint.h>

#include "aggregator/status.h"

struct httpd_auth;
struct httpd_metrics;
struct httpd_router;
struct httpd_sse_hub;
struct httpd_server;

/* How bad one of the server's own log lines is. */
enum httpd_log_level {
	HTTPD_LOG_WARN,
	HTTPD_LOG_ERROR,
};

/*
 * A sink for the server's own log lines: msg is one line of text (no
 * newline, no double quote), route the pattern of the route the line is
 * about, or NULL. Called from MHD's thread and from httpd_server_start's,
 * possibly at once: it must be thread-safe.
 */
typedef void (*httpd_log_fn)(void *arg, enum httpd_log_level level,
			     const char *route, const char *msg);

struct httpd_server_config {
	/* Listening. */
	const char *bind_addr;       /* IPv4 or IPv6 literal; NULL or "" =
				      * 127.0.0.1 */
	uint16_t port;               /* 0 = an ephemeral port (see
				      * httpd_server_port) */
	unsigned listen_backlog;     /* listen(2) backlog */

	/* Limits. */
	unsigned connection_timeout_s; /* idle/no-progress timeout, >= 1 */
	unsigned connection_limit;   /* open connections in all */
	unsigned per_ip_limit;       /* open connections per client address */
	size_t connection_memory;    /* MHD per-connection pool (headers,
				      * send buffer), bytes */
	size_t body_cap;             /* largest request body accepted */
	unsigned drain_timeout_ms;   /* how long stop waits for requests in
				      * flight */

	/* Wiring (borrowed). */
	struct httpd_router *router; /* required */
	struct httpd_auth *auth;     /* required when a route has
				      * HTTPD_ROUTE_AUTH */
	struct httpd_metrics *metrics; /* optional: HTTP metrics go here */
	struct httpd_sse_hub *hub;   /* optional: its streams are ended on
				      * stop */

	/* Logging (optional): NULL writes "level=warn component=httpd
	 * msg=\"...\" [route=\"...\"]" lines to stderr. */
	httpd_log_fn log;
	void *log_arg;
};

/* Defaults: 127.0.0.1, port 0, backlog 1024, timeout 10 s, 1024
 * connections, 512 per IP, 32 KiB per connection, body cap 64 KiB, drain
 * 5000 ms, no wiring. */
void httpd_server_config_default(struct httpd_server_config *cfg);

/*
 * Binds, registers the HTTP metrics (when cfg->metrics is set:
 * markd_http_requests_total{route,code},
 * markd_http_request_duration_seconds{route}, markd_http_connections) and
 * starts MHD's thread. On success *out is the running server.
 * Errors: MK_ECONFIG (bad address, limit or missing wiring; err says which
 * field), MK_EIO (MHD refused to start, e.g. the port is taken; MHD's own
 * reason is in err and goes to the log), MK_ENOMEM.
 */
enum mk_status httpd_server_start(const struct httpd_server_config *cfg,
				  struct httpd_server **out,
				  struct mk_err *err);

/* The port the server listens on (the real one when 0 was asked). */
uint16_t httpd_server_port(const struct httpd_server *srv);

/* Requests received and not yet completed (SSE streams included). */
unsigned httpd_server_in_flight(const struct httpd_server *srv);

/*
 * Stops cleanly and frees: stops accepting connections
 * (MHD_quiesce_daemon), ends SSE streams of cfg->hub with a final comment,
 * lets requests in flight finish (answers sent meanwhile carry
 * "Connection: close") for up to drain_timeout_ms, then stops MHD, which
 * closes what is left. Blocks for at most about drain_timeout_ms. NULL is
 * accepted.
 */
void httpd_server_stop(struct httpd_server *srv);

#endif
