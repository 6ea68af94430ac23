/*
 * server.c - MHD daemon lifecycle and the access handler that runs every
 * request through routing, auth, body checks and the route's handler.
 */
#include "config.h"

#include "httpd/server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "httpd/auth.h"
#include "httpd/httpd_int.h"
#include "httpd/metrics.h"
#include "httpd/request.h"
#include "httpd/response.h"
#include "httpd/sse.h"

/* Body bytes read and dropped after an answer was chosen (e.g. a 413 or a
 * 401 on a request with a body). Up to this much, the client gets the
 * answer on a kept-alive connection; an announced body beyond it is
 * answered at once and the connection closed, and an unannounced
 * (chunked) one beyond it cuts the connection. */
#define DISCARD_MAX ((size_t)1 << 20)

struct httpd_server {
	struct httpd_server_config cfg;
	char bind[INET6_ADDRSTRLEN];
	struct MHD_Daemon *d;
	uint16_t port;
	struct MHD_Response *r500;      /* answer when building one failed */
	struct httpd_family *m_requests;
	struct httpd_family *m_duration;
	struct httpd_family *m_conns;
	atomic_bool draining;
	pthread_mutex_t mu;
	pthread_cond_t cv;              /* signalled when in_flight drops */
	unsigned in_flight;             /* guarded by mu */
	char last_log[256];             /* MHD's last message (start errors) */
};

static const char r500_body[] =
	"{\"error\":{\"code\":\"internal\",\"message\":\"the server could not build an answer\"}}";

static const double duration_bounds[] = {
	0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
	0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
};

void
httpd_server_config_default(struct httpd_server_config *cfg)
{
	memset(cfg, 0, sizeof *cfg);
	cfg->bind_addr = "127.0.0.1";
	cfg->port = 0;
	cfg->listen_backlog = 1024;
	cfg->connection_timeout_s = 10;
	cfg->connection_limit = 1024;
	cfg->per_ip_limit = 512;
	cfg->connection_memory = 32 * 1024;
	cfg->body_cap = 64 * 1024;
	cfg->drain_timeout_ms = 5000;
}

/* ---- logging ---- */

/* One line to the configured sink, or key=value to stderr. */
static void
server_log(const struct httpd_server *srv, enum httpd_log_level level,
	   const char *route, const char *msg)
{
	if (srv->cfg.log != NULL) {
		srv->cfg.log(srv->cfg.log_arg, level, route, msg);
		return;
	}
	fprintf(stderr, "level=%s component=httpd msg=\"%s\"%s%s%s\n",
		level == HTTPD_LOG_ERROR ? "error" : "warn", msg,
		route != NULL ? " route=\"" : "", route != NULL ? route : "",
		route != NULL ? "\"" : "");
}

/* One line per MHD message. */
__attribute__((format(printf, 2, 0))) static void
mhd_log(void *cls, const char *fmt, va_list ap)
{
	struct httpd_server *srv = cls;
	char msg[256];
	size_t n;

	vsnprintf(msg, sizeof msg, fmt, ap);
	n = strlen(msg);
	while (n > 0 && (msg[n - 1] == '\n' || msg[n - 1] == '\r'))
		msg[--n] = '\0';
	for (size_t i = 0; i < n; i++)
		if (msg[i] == '"' || msg[i] == '\n')
			msg[i] = '\'';
	memcpy(srv->last_log, msg, n + 1);
	server_log(srv, HTTPD_LOG_WARN, NULL, msg);
}

/* ---- request context ---- */

void
httpd_req_set_response(struct httpd_req *req, unsigned status,
		       struct MHD_Response *resp)
{
	if (req->resp != NULL)
		MHD_destroy_response(req->resp);
	req->resp = resp;
	req->status = status;
}

static const char *
route_label(const struct httpd_req *req)
{
	return req->match.route != NULL ? req->match.route->pattern
					: "unmatched";
}

static void
in_flight_add(struct httpd_server *srv, int delta)
{
	pthread_mutex_lock(&srv->mu);
	if (delta > 0)
		srv->in_flight++;
	else if (srv->in_flight > 0 && --srv->in_flight == 0)
		pthread_cond_broadcast(&srv->cv);
	pthread_mutex_unlock(&srv->mu);
}

static void
reply_auth_failure(struct httpd_req *req, enum httpd_auth_result ar)
{
	switch (ar) {
	case HTTPD_AUTH_MISSING:
		httpd_reply_error(req, HTTPD_ERR_UNAUTHORIZED, NULL,
				  "this endpoint needs an Authorization: Bearer <token> header");
		httpd_reply_header(req, MHD_HTTP_HEADER_WWW_AUTHENTICATE,
				   "Bearer realm=\"markd\"");
		break;
	case HTTPD_AUTH_MALFORMED:
		httpd_reply_error(req, HTTPD_ERR_UNAUTHORIZED, NULL,
				  "malformed Authorization header: expected \"Bearer <token>\"");
		httpd_reply_header(req, MHD_HTTP_HEADER_WWW_AUTHENTICATE,
				   "Bearer realm=\"markd\", error=\"invalid_request\"");
		break;
	case HTTPD_AUTH_DENIED:
		httpd_reply_error(req, HTTPD_ERR_FORBIDDEN, NULL,
				  "the bearer token is not accepted");
		break;
	case HTTPD_AUTH_OK:
		break;
	}
}

/* Whether the request announces a body (Content-Length > 0 or chunked). */
static bool
has_body(struct httpd_req *req, unsigned long long *clen)
{
	const char *cl = httpd_req_header(req, MHD_HTTP_HEADER_CONTENT_LENGTH);
	const char *te = httpd_req_header(req,
					  MHD_HTTP_HEADER_TRANSFER_ENCODING);

	*clen = 0;
	if (cl != NULL) {
		/* MHD has already refused a malformed Content-Length */
		errno = 0;
		*clen = strtoull(cl, NULL, 10);
		if (errno != 0)
			*clen = ~0ull;
	}
	return *clen > 0 || te != NULL;
}

/* Queues the chosen answer (the built-in 500 when building one failed)
 * and counts it. */
static enum MHD_Result
queue(struct httpd_server *srv, struct httpd_req *req)
{
	struct MHD_Response *resp = req->resp;
	enum MHD_Result r;

	if (resp == NULL) {
		resp = srv->r500;
		req->status = 500;
	} else if (atomic_load(&srv->draining)) {
		MHD_add_response_header(resp, MHD_HTTP_HEADER_CONNECTION,
					"close");
	}
	r = MHD_queue_response(req->conn, req->status, resp);
	req->queued = r == MHD_YES;
	if (req->queued && srv->m_requests != NULL) {
		char code[8];
		const char *v[2] = { route_label(req), code };

		snprintf(code, sizeof code, "%u", req->status);
		httpd_metric_add(srv->m_requests, v, 1);
	}
	return r;
}

/* The access handler's first call: route, auth and header checks. An
 * error answer is chosen now but queued on the last call (after the body
 * is read and dropped), except when the announced body is too large to
 * read through. */
static enum MHD_Result
first_call(struct httpd_server *srv, struct httpd_req *req)
{
	char allow[96];
	unsigned long long clen;
	bool body = has_body(req, &clen);
	enum httpd_lookup lk;
	unsigned flags;

	lk = httpd_router_lookup(srv->cfg.router, req->method_id, req->scratch,
				 &req->match);
	if (lk == HTTPD_LOOKUP_NO_PATH) {
		httpd_reply_error(req, HTTPD_ERR_NOT_FOUND, NULL,
				  "no resource at %s", req->path);
		goto chosen;
	}
	if (lk == HTTPD_LOOKUP_NO_METHOD) {
		httpd_allow_header(req->match.allowed, allow, sizeof allow);
		httpd_reply_error(req, HTTPD_ERR_METHOD_NOT_ALLOWED, NULL,
				  "method %s is not allowed on %s (allowed: %s)",
				  req->method, req->path, allow);
		httpd_reply_header(req, MHD_HTTP_HEADER_ALLOW, allow);
		goto chosen;
	}
	req->matched = true;
	flags = req->match.route->flags;
	if ((flags & HTTPD_ROUTE_AUTH) != 0) {
		enum httpd_auth_result ar = httpd_auth_check(
			srv->cfg.auth,
			httpd_req_header(req, MHD_HTTP_HEADER_AUTHORIZATION));

		if (ar != HTTPD_AUTH_OK) {
			reply_auth_failure(req, ar);
			goto chosen;
		}
	}
	if (body && (flags & HTTPD_ROUTE_BODY) != 0) {
		const char *ct = httpd_req_header(req,
						  MHD_HTTP_HEADER_CONTENT_TYPE);

		if (!httpd_content_type_is_json(ct)) {
			httpd_reply_error(req, HTTPD_ERR_UNSUPPORTED_MEDIA_TYPE,
					  NULL,
					  "request body must be Content-Type: application/json (got %s)",
					  ct != NULL ? ct : "none");
			goto chosen;
		}
	}
	if (clen > srv->cfg.body_cap) {
		httpd_reply_error(req, HTTPD_ERR_PAYLOAD_TOO_LARGE, NULL,
				  "request body of %llu bytes is larger than the %zu allowed",
				  clen, srv->cfg.body_cap);
		goto chosen;
	}
	return MHD_YES;
chosen:
	/* Too much to read through: answer now, which makes MHD close the
	 * connection after the answer instead of reading the body. */
	if (clen > DISCARD_MAX)
		return queue(srv, req);
	return MHD_YES;
}

static enum MHD_Result
take_body(struct httpd_server *srv, struct httpd_req *req, const char *data,
	  size_t len)
{
	if (req->resp != NULL || req->status != 0) {
		req->discarded += len;
		return req->discarded > DISCARD_MAX ? MHD_NO : MHD_YES;
	}
	if (!httpd_req_append_body(req, data, len, srv->cfg.body_cap)) {
		httpd_reply_error(req, HTTPD_ERR_PAYLOAD_TOO_LARGE, NULL,
				  "request body is larger than the %zu bytes allowed",
				  srv->cfg.body_cap);
		req->discarded += len;
	}
	return MHD_YES;
}

/* The last call: run the handler (when no answer was chosen yet) and
 * queue the answer. */
static enum MHD_Result
last_call(struct httpd_server *srv, struct httpd_req *req)
{
	const struct httpd_route *rt = req->match.route;

	if (req->resp == NULL && req->status == 0 && req->matched) {
		bool run = true;

		if ((rt->flags & HTTPD_ROUTE_BODY) != 0) {
			struct mk_err err;

			if (req->body_len == 0) {
				httpd_reply_error(req, HTTPD_ERR_BAD_REQUEST, NULL,
						  "this endpoint needs a JSON request body");
				run = false;
			} else if (httpd_parse_json_body(req->body,
							 req->body_len,
							 &req->json,
							 &err) != MK_OK) {
				httpd_reply_error(req, HTTPD_ERR_BAD_REQUEST, NULL,
						  "%s", err.msg);
				run = false;
			}
		}
		if (run)
			rt->fn(req, rt->arg);
		if (req->resp == NULL && req->status == 0) {
			server_log(srv, HTTPD_LOG_ERROR, rt->pattern,
				   "handler gave no answer");
			httpd_reply_error(req, HTTPD_ERR_INTERNAL, NULL,
					  "the handler gave no answer");
		}
	}
	return queue(srv, req);
}

static enum MHD_Result
on_access(void *cls, struct MHD_Connection *conn, const char *url,
	  const char *method, const char *version, const char *upload_data,
	  size_t *upload_data_size, void **req_cls)
{
	struct httpd_server *srv = cls;
	struct httpd_req *req = *req_cls;

	(void)version;
	if (req == NULL) {
		req = calloc(1, sizeof *req);
		if (req == NULL)
			return MHD_NO;
		req->srv = srv;
		req->conn = conn;
		req->method = method;
		req->path = url;
		req->method_id = httpd_method_parse(method);
		req->t_start_ns = httpd_now_ns();
		req->scratch = strdup(url);
		*req_cls = req;
		in_flight_add(srv, 1);
		if (req->scratch == NULL)
			return MHD_NO; /* freed by on_completed */
		return first_call(srv, req);
	}
	if (req->queued) {
		*upload_data_size = 0;
		return MHD_YES;
	}
	if (*upload_data_size > 0) {
		enum MHD_Result r = take_body(srv, req, upload_data,
					      *upload_data_size);

		*upload_data_size = 0;
		return r;
	}
	return last_call(srv, req);
}

static void
on_completed(void *cls, struct MHD_Connection *conn, void **req_cls,
	     enum MHD_RequestTerminationCode toe)
{
	struct httpd_server *srv = cls;
	struct httpd_req *req = *req_cls;

	(void)conn;
	(void)toe;
	if (req == NULL)
		return;
	*req_cls = NULL;
	if (req->queued && srv->m_duration != NULL &&
	    (req->match.route == NULL ||
	     (req->match.route->flags & HTTPD_ROUTE_STREAM) == 0)) {
		const char *v[1] = { route_label(req) };

		httpd_metric_observe(srv->m_duration, v,
				     (double)(httpd_now_ns() - req->t_start_ns) / 1e9);
	}
	httpd_req_release(req);
	free(req);
	in_flight_add(srv, -1);
}

static void
on_connection(void *cls, struct MHD_Connection *conn, void **socket_ctx,
	      enum MHD_ConnectionNotificationCode toe)
{
	struct httpd_server *srv = cls;

	(void)conn;
	(void)socket_ctx;
	if (srv->m_conns != NULL)
		httpd_metric_add(srv->m_conns, NULL,
				 toe == MHD_CONNECTION_NOTIFY_STARTED ? 1 : -1);
}

/* ---- lifecycle ---- */

static enum mk_status
register_metrics(struct httpd_server *srv, struct mk_err *err)
{
	static const char *const rc[] = { "route", "code" };
	static const char *const r[] = { "route" };
	struct httpd_metrics *m = srv->cfg.metrics;
	enum mk_status st;

	if (m == NULL)
		return MK_OK;
	st = httpd_metrics_family(m, HTTPD_METRIC_COUNTER,
				  "markd_http_requests_total",
				  "HTTP requests answered, by route pattern and status code.",
				  rc, 2, NULL, 0, &srv->m_requests, err);
	if (st == MK_OK)
		st = httpd_metrics_family(m, HTTPD_METRIC_HISTOGRAM,
					  "markd_http_request_duration_seconds",
					  "Time from a request's arrival to the end of its answer, streams excluded.",
					  r, 1, duration_bounds,
					  sizeof duration_bounds / sizeof duration_bounds[0],
					  &srv->m_duration, err);
	if (st == MK_OK)
		st = httpd_metrics_family(m, HTTPD_METRIC_GAUGE,
					  "markd_http_connections",
					  "HTTP connections open now.", NULL, 0,
					  NULL, 0, &srv->m_conns, err);
	return st;
}

static enum mk_status
check_config(const struct httpd_server_config *c, struct mk_err *err)
{
	if (c->router == NULL)
		return mk_err_set(err, MK_ECONFIG, "http: no route table");
	if (c->connection_timeout_s == 0)
		return mk_err_set(err, MK_ECONFIG,
				  "http.connection_timeout_s: must be at least 1 (0 would let idle clients hold connections forever)");
	if (c->connection_limit == 0)
		return mk_err_set(err, MK_ECONFIG,
				  "http.connection_limit: must be at least 1");
	if (c->per_ip_limit == 0)
		return mk_err_set(err, MK_ECONFIG,
				  "http.per_ip_limit: must be at least 1");
	if (c->listen_backlog == 0)
		return mk_err_set(err, MK_ECONFIG,
				  "http.listen_backlog: must be at least 1");
	if (c->connection_memory < 4096)
		return mk_err_set(err, MK_ECONFIG,
				  "http.connection_memory: must be at least 4096 bytes");
	if (c->body_cap == 0)
		return mk_err_set(err, MK_ECONFIG,
				  "http.body_cap: must be at least 1 byte");
	if (c->auth == NULL && httpd_router_has_flag(c->router, HTTPD_ROUTE_AUTH))
		return mk_err_set(err, MK_ECONFIG,
				  "http: write endpoints need bearer tokens, but no tokens file is configured");
	return MK_OK;
}

static void
server_free(struct httpd_server *srv)
{
	if (srv == NULL)
		return;
	if (srv->r500 != NULL)
		MHD_destroy_response(srv->r500);
	pthread_cond_destroy(&srv->cv);
	pthread_mutex_destroy(&srv->mu);
	free(srv);
}

enum mk_status
httpd_server_start(const struct httpd_server_config *cfg,
		   struct httpd_server **out, struct mk_err *err)
{
	struct httpd_server *srv = NULL;
	struct sockaddr_in sin;
	struct sockaddr_in6 sin6;
	struct sockaddr *sa;
	unsigned int flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_POLL |
			     MHD_USE_ERROR_LOG | MHD_ALLOW_SUSPEND_RESUME;
	pthread_condattr_t ca;
	const union MHD_DaemonInfo *info;
	enum mk_status st;

	*out = NULL;
	st = check_config(cfg, err);
	if (st != MK_OK)
		return st;
	srv = calloc(1, sizeof *srv);
	if (srv == NULL)
		return mk_err_set(err, MK_ENOMEM, "out of memory");
	srv->cfg = *cfg;
	pthread_mutex_init(&srv->mu, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&srv->cv, &ca);
	pthread_condattr_destroy(&ca);
	atomic_init(&srv->draining, false);

	snprintf(srv->bind, sizeof srv->bind, "%s",
		 cfg->bind_addr != NULL && cfg->bind_addr[0] != '\0'
			 ? cfg->bind_addr : "127.0.0.1");
	srv->cfg.bind_addr = srv->bind;
	memset(&sin, 0, sizeof sin);
	memset(&sin6, 0, sizeof sin6);
	if (inet_pton(AF_INET, srv->bind, &sin.sin_addr) == 1) {
		sin.sin_family = AF_INET;
		sin.sin_port = htons(cfg->port);
		sa = (struct sockaddr *)&sin;
	} else if (inet_pton(AF_INET6, srv->bind, &sin6.sin6_addr) == 1) {
		sin6.sin6_family = AF_INET6;
		sin6.sin6_port = htons(cfg->port);
		sa = (struct sockaddr *)&sin6;
		flags |= MHD_USE_IPv6;
	} else {
		st = mk_err_set(err, MK_ECONFIG,
				"http.bind: \"%s\" is not an IPv4 or IPv6 address",
				cfg->bind_addr != NULL ? cfg->bind_addr : "");
		goto fail;
	}

	srv->r500 = MHD_create_response_from_buffer(sizeof r500_body - 1,
						    (void *)(uintptr_t)r500_body,
						    MHD_RESPMEM_PERSISTENT);
	if (srv->r500 == NULL ||
	    !httpd_response_headers(srv->r500, "application/json")) {
		st = mk_err_set(err, MK_ENOMEM, "out of memory");
		goto fail;
	}
	st = register_metrics(srv, err);
	if (st != MK_OK)
		goto fail;

	srv->d = MHD_start_daemon(
		flags, cfg->port, NULL, NULL, on_access, srv,
		MHD_OPTION_EXTERNAL_LOGGER, mhd_log, srv,
		MHD_OPTION_SOCK_ADDR, sa,
		MHD_OPTION_LISTEN_BACKLOG_SIZE, (unsigned int)cfg->listen_backlog,
		MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int)cfg->connection_timeout_s,
		MHD_OPTION_CONNECTION_LIMIT, (unsigned int)cfg->connection_limit,
		MHD_OPTION_PER_IP_CONNECTION_LIMIT, (unsigned int)cfg->per_ip_limit,
		MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)cfg->connection_memory,
		MHD_OPTION_NOTIFY_COMPLETED, on_completed, srv,
		MHD_OPTION_NOTIFY_CONNECTION, on_connection, srv,
		MHD_OPTION_END);
	if (srv->d == NULL) {
		st = mk_err_set(err, MK_EIO,
				"cannot start the HTTP server on %s port %u: %s",
				srv->bind, (unsigned)cfg->port,
				srv->last_log[0] != '\0' ? srv->last_log
							 : "libmicrohttpd refused to start");
		goto fail;
	}
	info = MHD_get_daemon_info(srv->d, MHD_DAEMON_INFO_BIND_PORT);
	srv->port = info != NULL ? info->port : cfg->port;
	*out = srv;
	return MK_OK;
fail:
	server_free(srv);
	return st;
}

uint16_t
httpd_server_port(const struct httpd_server *srv)
{
	return srv->port;
}

unsigned
httpd_server_in_flight(const struct httpd_server *srv)
{
	struct httpd_server *s = (struct httpd_server *)(uintptr_t)srv;
	unsigned n;

	pthread_mutex_lock(&s->mu);
	n = s->in_flight;
	pthread_mutex_unlock(&s->mu);
	return n;
}

void
httpd_server_stop(struct httpd_server *srv)
{
	MHD_socket lfd;
	struct timespec deadline;

	if (srv == NULL)
		return;
	/* 1. No new connections. The listening socket stays open (and
	 * unaccepted) until MHD's thread is gone, as MHD requires. */
	lfd = MHD_quiesce_daemon(srv->d);
	/* 2. Answers from now on close their connection. */
	atomic_store(&srv->draining, true);
	/* 3. End the streams, which would otherwise never finish. */
	if (srv->cfg.hub != NULL)
		httpd_sse_close(srv->cfg.hub);
	/* 4. Let what is in flight finish, for a bounded time. */
	httpd_deadline_ms(&deadline, srv->cfg.drain_timeout_ms);
	pthread_mutex_lock(&srv->mu);
	while (srv->in_flight > 0)
		if (pthread_cond_timedwait(&srv->cv, &srv->mu, &deadline) ==
		    ETIMEDOUT)
			break;
	pthread_mutex_unlock(&srv->mu);
	/* 5. Stop MHD: closes idle keep-alive connections and whatever
	 * did not finish in time. */
	MHD_stop_daemon(srv->d);
	if (lfd != MHD_INVALID_SOCKET)
		close(lfd);
	server_free(srv);
}
