/*
 * fakex_server.c - libmicrohttpd daemons, request handling, faults and the
 * admin endpoint of markd-fakex (see fakex_server.h and doc/fakex.md).
 */
#include "config.h"

#include "tools/fakex_server.h"
#include "aggregator/json_dec.h"
#include "tools/fakex_fault.h"
#include "tools/fakex_venue.h"

#include <arpa/inet.h>
#include <jansson.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#define MAIN_DAEMON (-1)
#define ALL_DAEMONS (-2)
#define UPLOAD_MAX 16384
#define MAX_PENDING 1024

/* Which daemon a handler runs for: the shared one or a venue's own. */
struct dctx {
	struct fakex_server *srv;
	int venue;                 /* MAIN_DAEMON or an enum fakex_venue */
};

/* One request's state, from the first handler call to completion. */
struct reqstate {
	struct fakex_buf upload;
	bool upload_too_big;
	bool have_answer;          /* a slow answer waits in `ans` */
	bool drop;                 /* close without answering */
	bool transfer_cut;         /* truncated: cut the transfer mid-way */
	struct fakex_answer ans;
};

/* A suspended (slow) connection, resumed at due_ms. */
struct pending {
	struct MHD_Connection *conn;
	struct reqstate *rs;
	int daemon;                /* MAIN_DAEMON or the venue */
	int64_t due_ms;
};

struct fakex_server {
	const struct fakex_scenario *sc;
	bool verbose;
	struct in_addr addr;
	struct MHD_Daemon *main;
	uint16_t main_port;
	struct dctx main_ctx;
	struct {
		struct MHD_Daemon *d;
		uint16_t port;         /* bound port, kept across restarts */
		struct dctx ctx;
	} own[FAKEX_NVENUES];
	struct timespec mono0;
	int64_t wall0_ms;

	pthread_mutex_t lock;      /* faults and pending */
	struct fakex_faults faults;
	struct pending pending[MAX_PENDING];
	size_t npending;
	/* Per daemon (index daemon + 1): about to stop, so suspending a
	 * connection there is no longer allowed (MHD cannot stop with one). */
	bool closing[FAKEX_NVENUES + 1];

	pthread_mutex_t ctl;       /* starting and stopping venue daemons */
};

static int64_t
elapsed_ms(const struct fakex_server *srv)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (int64_t)(now.tv_sec - srv->mono0.tv_sec) * 1000 +
	       (now.tv_nsec - srv->mono0.tv_nsec) / 1000000;
}

/* ---- responses ---- */

static enum MHD_Result
queue(struct MHD_Connection *conn, unsigned status, const char *type,
      const char *body, size_t len, unsigned retry_after_s)
{
	struct MHD_Response *r;
	enum MHD_Result ret;
	char ra[16];

	r = MHD_create_response_from_buffer(len, (void *)body,
					    MHD_RESPMEM_MUST_COPY);
	if (r == NULL)
		return MHD_NO;
	if (MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type) !=
	    MHD_YES) {
		MHD_destroy_response(r);
		return MHD_NO;
	}
	if (retry_after_s > 0) {
		snprintf(ra, sizeof(ra), "%u", retry_after_s);
		if (MHD_add_response_header(r, MHD_HTTP_HEADER_RETRY_AFTER, ra) !=
		    MHD_YES) {
			MHD_destroy_response(r);
			return MHD_NO;
		}
	}
	ret = MHD_queue_response(conn, status, r);
	MHD_destroy_response(r);
	return ret;
}

static enum MHD_Result
queue_json_error(struct MHD_Connection *conn, unsigned status, const char *msg)
{
	struct fakex_buf b = { 0 };
	enum MHD_Result ret;

	fakex_buf_printf(&b, "{\"error\":\"");
	fakex_buf_json_escape(&b, msg);
	fakex_buf_printf(&b, "\"}");
	if (b.failed)
		return MHD_NO;
	ret = queue(conn, status, "application/json", b.p, b.len, 0);
	fakex_buf_release(&b);
	return ret;
}

/* Content reader of a transfer cut in the middle: it serves the first
 * half of a body whose declared length is the whole, then fails. */
struct cut {
	char *p;
	size_t len, half;
};

static ssize_t
cut_reader(void *cls, uint64_t pos, char *buf, size_t max)
{
	struct cut *c = cls;
	size_t n;

	if (pos >= c->half)
		return MHD_CONTENT_READER_END_WITH_ERROR;
	n = c->half - (size_t)pos;
	if (n > max)
		n = max;
	memcpy(buf, c->p + pos, n);
	return (ssize_t)n;
}

static void
cut_free(void *cls)
{
	struct cut *c = cls;

	free(c->p);
	free(c);
}

static enum MHD_Result
queue_answer(struct MHD_Connection *conn, struct reqstate *rs)
{
	struct fakex_answer *a = &rs->ans;
	struct MHD_Response *r;
	struct cut *c;
	enum MHD_Result ret;

	if (!rs->transfer_cut)
		return queue(conn, a->status, a->content_type, a->body.p,
			     a->body.len, a->retry_after_s);
	c = calloc(1, sizeof(*c));
	if (c == NULL)
		return MHD_NO;
	c->p = a->body.p;
	c->len = a->body.len;
	c->half = a->body.len / 2;
	memset(&a->body, 0, sizeof(a->body));
	r = MHD_create_response_from_callback(c->len, 4096, cut_reader, c,
					      cut_free);
	if (r == NULL) {
		cut_free(c);
		return MHD_NO;
	}
	if (MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE,
				    a->content_type) != MHD_YES) {
		MHD_destroy_response(r);
		return MHD_NO;
	}
	ret = MHD_queue_response(conn, a->status, r);
	MHD_destroy_response(r);
	return ret;
}

/* ---- venue daemons ---- */

static enum MHD_Result handle(void *cls, struct MHD_Connection *conn,
			      const char *url, const char *method,
			      const char *version, const char *upload_data,
			      size_t *upload_data_size, void **con_cls);
static void completed(void *cls, struct MHD_Connection *conn, void **con_cls,
		      enum MHD_RequestTerminationCode toe);

static struct MHD_Daemon *
start_daemon(struct fakex_server *srv, uint16_t port, struct dctx *ctx)
{
	struct sockaddr_in sa;

	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_port = htons(port);
	sa.sin_addr = srv->addr;
	return MHD_start_daemon(MHD_USE_POLL_INTERNAL_THREAD | MHD_USE_ERROR_LOG |
				MHD_ALLOW_SUSPEND_RESUME,
				port, NULL, NULL, handle, ctx,
				MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa,
				MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)60,
				MHD_OPTION_CONNECTION_LIMIT, (unsigned)512,
				MHD_OPTION_NOTIFY_COMPLETED, completed, ctx,
				MHD_OPTION_END);
}

static uint16_t
bound_port(struct MHD_Daemon *d)
{
	const union MHD_DaemonInfo *info;

	info = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
	return info != NULL ? info->port : 0;
}

/* Before daemon `which` (or ALL_DAEMONS) stops: forbids new suspensions
 * there and resumes its slow connections, to be closed (drop) or answered
 * at once. Takes srv->lock. */
static void
flush_pending(struct fakex_server *srv, int which, bool drop)
{
	size_t i = 0;

	pthread_mutex_lock(&srv->lock);
	for (int d = MAIN_DAEMON; d < FAKEX_NVENUES; d++)
		if (which == ALL_DAEMONS || which == d)
			srv->closing[d + 1] = true;
	while (i < srv->npending) {
		struct pending *p = &srv->pending[i];

		if (which != ALL_DAEMONS && p->daemon != which) {
			i++;
			continue;
		}
		p->rs->drop = drop;
		MHD_resume_connection(p->conn);
		srv->pending[i] = srv->pending[--srv->npending];
	}
	pthread_mutex_unlock(&srv->lock);
}

/* Stops or restarts the own-port daemons to match their `down` faults.
 * Takes srv->ctl, then srv->lock briefly. */
static void
reconcile(struct fakex_server *srv)
{
	int64_t now = elapsed_ms(srv);

	pthread_mutex_lock(&srv->ctl);
	for (int v = 0; v < FAKEX_NVENUES; v++) {
		struct fakex_active a;
		bool want_up;

		if (!srv->sc->venues[v].enabled || srv->sc->venues[v].port < 0)
			continue;
		pthread_mutex_lock(&srv->lock);
		fakex_faults_get(&srv->faults, (enum fakex_venue)v, now, false, &a,
				 NULL);
		pthread_mutex_unlock(&srv->lock);
		want_up = a.spec.kind != FAKEX_FAULT_DOWN;
		if (!want_up && srv->own[v].d != NULL) {
			flush_pending(srv, v, true);
			MHD_stop_daemon(srv->own[v].d);
			srv->own[v].d = NULL;
			fprintf(stderr, "fakex: venue=%s event=down port=%u\n",
				fakex_venue_name((enum fakex_venue)v), srv->own[v].port);
		} else if (want_up && srv->own[v].d == NULL) {
			pthread_mutex_lock(&srv->lock);
			srv->closing[v + 1] = false;
			pthread_mutex_unlock(&srv->lock);
			srv->own[v].d = start_daemon(srv, srv->own[v].port,
						     &srv->own[v].ctx);
			if (srv->own[v].d == NULL)
				fprintf(stderr, "fakex: venue=%s event=restart_failed port=%u (will retry)\n",
					fakex_venue_name((enum fakex_venue)v),
					srv->own[v].port);
			else
				fprintf(stderr, "fakex: venue=%s event=up port=%u\n",
					fakex_venue_name((enum fakex_venue)v),
					srv->own[v].port);
		}
	}
	pthread_mutex_unlock(&srv->ctl);
}

/* ---- admin ---- */

static bool
is_loopback(struct MHD_Connection *conn)
{
	const union MHD_ConnectionInfo *ci;
	const struct sockaddr *sa;

	ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
	if (ci == NULL || ci->client_addr == NULL)
		return false;
	sa = ci->client_addr;
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *in = (const struct sockaddr_in *)(const void *)sa;

		return (ntohl(in->sin_addr.s_addr) >> 24) == 127;
	}
	if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *in6 =
			(const struct sockaddr_in6 *)(const void *)sa;

		return IN6_IS_ADDR_LOOPBACK(&in6->sin6_addr) ||
		       (IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr) &&
			in6->sin6_addr.s6_addr[12] == 127);
	}
	return false;
}

static json_t *
fault_json(const struct fakex_active *a, int64_t now)
{
	json_t *o;

	if (a->spec.kind == FAKEX_FAULT_NONE)
		return json_null();
	o = json_pack("{s:s, s:s, s:I}", "kind", fakex_fault_name(a->spec.kind),
		      "source", a->from_admin ? "admin" : "schedule", "since_ms",
		      (json_int_t)(now - a->start_ms));
	if (o == NULL)
		return NULL;
	json_object_set_new(o, "remaining_ms",
			    a->until_ms == INT64_MAX ?
				    json_null() :
				    json_integer((json_int_t)(a->until_ms - now)));
	if (a->spec.kind == FAKEX_FAULT_WICK)
		json_object_set_new(o, "wick_left", json_integer(a->wick_left));
	return o;
}

static json_t *
state_json(struct fakex_server *srv)
{
	const struct fakex_scenario *sc = srv->sc;
	int64_t now = elapsed_ms(srv), sim = fakex_sim_ms(sc, now);
	json_t *root, *venues;
	char t[40], s[MK_DEC_STRLEN];

	fakex_rfc3339(sim, t, sizeof(t));
	root = json_object();
	venues = json_object();
	if (root == NULL || venues == NULL) {
		json_decref(root);
		json_decref(venues);
		return NULL;
	}
	json_object_set_new(root, "uptime_ms", json_integer(now));
	json_object_set_new(root, "now_ms", json_integer(srv->wall0_ms + now));
	json_object_set_new(root, "sim_ms", json_integer(sim));
	json_object_set_new(root, "sim_time", json_string(t));
	mk_dec_format(MK_DEC(sc->speed_milli, 3), s, sizeof(s));
	json_object_set_new(root, "speed", json_string(s));
	json_object_set_new(root, "loop", json_boolean(sc->loop));
	json_object_set_new(root, "start_ms", json_integer(sc->start_ms));
	json_object_set_new(root, "end_ms", json_integer(sc->end_ms));
	json_object_set_new(root, "venues", venues);
	for (int v = 0; v < FAKEX_NVENUES; v++) {
		const struct fakex_venue_cfg *cfg = &sc->venues[v];
		struct fakex_active a;
		json_t *vo, *mo;

		if (!cfg->enabled)
			continue;
		pthread_mutex_lock(&srv->lock);
		fakex_faults_get(&srv->faults, (enum fakex_venue)v, now, false, &a,
				 NULL);
		pthread_mutex_unlock(&srv->lock);
		vo = json_object();
		mo = json_object();
		json_object_set_new(venues, fakex_venue_name((enum fakex_venue)v), vo);
		json_object_set_new(vo, "port", cfg->port < 0 ? json_null() :
					 json_integer(srv->own[v].port));
		json_object_set_new(vo, "fault", fault_json(&a, now));
		json_object_set_new(vo, "markets", mo);
		for (size_t i = 0; i < cfg->nmarkets; i++) {
			const struct fakex_market *m = &cfg->markets[i];
			struct mk_dec mid, bid, ask;
			char sb[MK_DEC_STRLEN], sa[MK_DEC_STRLEN];
			json_t *o;

			if (fakex_market_mid(sc, m, sim, &mid) != MK_OK ||
			    fakex_market_book(m, mid, &bid, &ask) != MK_OK)
				continue;
			mk_dec_format(mid, s, sizeof(s));
			mk_dec_format(bid, sb, sizeof(sb));
			mk_dec_format(ask, sa, sizeof(sa));
			o = json_pack("{s:s, s:s, s:s, s:s}", "source",
				      m->csv != NULL ? "csv" : "walk", "mid", s,
				      "bid", sb, "ask", sa);
			if (o != NULL && v == FAKEX_KRAKEN)
				json_object_set_new(o, "key", json_string(m->key));
			json_object_set_new(mo, m->id, o);
		}
	}
	return root;
}

static enum MHD_Result
admin_set(struct fakex_server *srv, struct MHD_Connection *conn,
	  const struct reqstate *rs)
{
	static const char *const top[] = { "venue", "kind", "for_s", "params" };
	struct fakex_fault_spec spec;
	struct mk_err err = { 0 };
	json_error_t jerr;
	json_t *body = NULL, *params = NULL, *x;
	const char *s, *key;
	char msg[512];
	enum MHD_Result ret;

	memset(&spec, 0, sizeof(spec));
	if (rs->upload_too_big)
		return queue_json_error(conn, MHD_HTTP_CONTENT_TOO_LARGE,
					"body larger than 16384 bytes");
	body = json_loadb(rs->upload.p != NULL ? rs->upload.p : "",
			  rs->upload.len, JSON_REJECT_DUPLICATES, &jerr);
	if (!json_is_object(body)) {
		snprintf(msg, sizeof(msg), "body: expected a JSON object (%s)",
			 body == NULL ? jerr.text : "not an object");
		ret = queue_json_error(conn, MHD_HTTP_BAD_REQUEST, msg);
		goto out;
	}
	s = json_string_value(json_object_get(body, "venue"));
	if (s == NULL || !fakex_venue_from_name(s, strlen(s), &spec.venue) ||
	    !srv->sc->venues[spec.venue].enabled) {
		ret = queue_json_error(conn, MHD_HTTP_BAD_REQUEST,
				       "venue: not a venue of this scenario");
		goto out;
	}
	s = json_string_value(json_object_get(body, "kind"));
	if (s == NULL || !fakex_fault_from_name(s, &spec.kind)) {
		ret = queue_json_error(conn, MHD_HTTP_BAD_REQUEST,
				       "kind: expected stale, wick, drift, garbage, ratelimit, error, slow, down or truncated");
		goto out;
	}
	if ((x = json_object_get(body, "for_s")) != NULL) {
		struct mk_dec d, r;

		if (mk_json_dec(x, &d, NULL) != MK_OK || mk_dec_is_neg(d) ||
		    mk_dec_rescale(d, 3, MK_ROUND_EXACT, &r) != MK_OK ||
		    r.m > INT64_C(864000000000)) {
			ret = queue_json_error(conn, MHD_HTTP_BAD_REQUEST,
					       "for_s: expected seconds >= 0 (0 = until cleared), at most 3 decimals");
			goto out;
		}
		spec.for_ms = r.m;
	}
	/* Parameters: in "params", or inline next to venue/kind/for_s. */
	params = json_object();
	if (params == NULL) {
		ret = MHD_NO;
		goto out;
	}
	if ((x = json_object_get(body, "params")) != NULL) {
		if (!json_is_object(x)) {
			ret = queue_json_error(conn, MHD_HTTP_BAD_REQUEST,
					       "params: expected an object");
			goto out;
		}
		json_object_update(params, x);
	}
	json_object_foreach(body, key, x) {
		bool known = false;

		for (size_t i = 0; i < sizeof(top) / sizeof(top[0]); i++)
			if (strcmp(key, top[i]) == 0)
				known = true;
		if (!known)
			json_object_set(params, key, x);
	}
	fakex_fault_params_default(&spec.params);
	if (fakex_fault_params_parse(spec.kind, params, "params", &spec.params,
				     &err) != MK_OK) {
		ret = queue_json_error(conn, MHD_HTTP_BAD_REQUEST, err.msg);
		goto out;
	}
	pthread_mutex_lock(&srv->lock);
	fakex_faults_set(&srv->faults, &spec, elapsed_ms(srv));
	pthread_mutex_unlock(&srv->lock);
	fprintf(stderr, "fakex: venue=%s event=fault kind=%s for_ms=%lld source=admin\n",
		fakex_venue_name(spec.venue), fakex_fault_name(spec.kind),
		(long long)spec.for_ms);
	reconcile(srv);
	snprintf(msg, sizeof(msg), "{\"ok\":true,\"venue\":\"%s\",\"kind\":\"%s\",\"for_ms\":%lld}",
		 fakex_venue_name(spec.venue), fakex_fault_name(spec.kind),
		 (long long)spec.for_ms);
	ret = queue(conn, MHD_HTTP_OK, "application/json", msg, strlen(msg), 0);
out:
	json_decref(body);
	json_decref(params);
	return ret;
}

static enum MHD_Result
admin_clear(struct fakex_server *srv, struct MHD_Connection *conn)
{
	const char *s = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND,
						    "venue");
	enum fakex_venue v = FAKEX_BINANCE;
	int64_t now = elapsed_ms(srv);
	char msg[128];

	if (s != NULL && strcmp(s, "all") != 0 &&
	    (!fakex_venue_from_name(s, strlen(s), &v) ||
	     !srv->sc->venues[v].enabled))
		return queue_json_error(conn, MHD_HTTP_BAD_REQUEST,
					"venue: not a venue of this scenario");
	pthread_mutex_lock(&srv->lock);
	for (int i = 0; i < FAKEX_NVENUES; i++)
		if (s == NULL || strcmp(s, "all") == 0 || (int)v == i)
			fakex_faults_clear(&srv->faults, (enum fakex_venue)i, now);
	pthread_mutex_unlock(&srv->lock);
	fprintf(stderr, "fakex: venue=%s event=cleared source=admin\n",
		s != NULL ? s : "all");
	reconcile(srv);
	snprintf(msg, sizeof(msg), "{\"ok\":true,\"venue\":\"%s\"}",
		 s != NULL && strcmp(s, "all") != 0 ? fakex_venue_name(v) : "all");
	return queue(conn, MHD_HTTP_OK, "application/json", msg, strlen(msg), 0);
}

static enum MHD_Result
admin(struct fakex_server *srv, struct MHD_Connection *conn, const char *url,
      const char *method, struct reqstate *rs)
{
	if (!is_loopback(conn))
		return queue_json_error(conn, MHD_HTTP_FORBIDDEN,
					"the admin endpoint answers loopback clients only");
	if (strcmp(url, "/admin/state") == 0) {
		json_t *st;
		char *text;
		enum MHD_Result ret;

		if (strcmp(method, MHD_HTTP_METHOD_GET) != 0)
			return queue_json_error(conn, MHD_HTTP_METHOD_NOT_ALLOWED,
						"use GET");
		st = state_json(srv);
		text = st != NULL ? json_dumps(st, JSON_COMPACT) : NULL;
		json_decref(st);
		if (text == NULL)
			return MHD_NO;
		ret = queue(conn, MHD_HTTP_OK, "application/json", text,
			    strlen(text), 0);
		free(text);
		return ret;
	}
	if (strcmp(url, "/admin/fault") == 0) {
		if (strcmp(method, MHD_HTTP_METHOD_POST) == 0)
			return admin_set(srv, conn, rs);
		if (strcmp(method, MHD_HTTP_METHOD_DELETE) == 0)
			return admin_clear(srv, conn);
		return queue_json_error(conn, MHD_HTTP_METHOD_NOT_ALLOWED,
					"use POST or DELETE");
	}
	return queue_json_error(conn, MHD_HTTP_NOT_FOUND,
				"admin paths: /admin/state, /admin/fault");
}

/* ---- venues ---- */

static const char *
get_arg(void *ctx, const char *key)
{
	return MHD_lookup_connection_value(ctx, MHD_GET_ARGUMENT_KIND, key);
}

static enum MHD_Result
collect_ids(void *cls, enum MHD_ValueKind kind, const char *key,
	    const char *value)
{
	struct fakex_request *rq = cls;

	(void)kind;
	if (value == NULL || (strcmp(key, "ids[]") != 0 && strcmp(key, "ids") != 0))
		return MHD_YES;
	if (rq->nids == FAKEX_MAX_IDS) {
		rq->too_many_ids = true;
		return MHD_NO;
	}
	rq->ids[rq->nids++] = value;
	return MHD_YES;
}

static enum MHD_Result
serve_venue(struct fakex_server *srv, struct MHD_Connection *conn,
	    int daemon, enum fakex_venue v, const char *path, const char *method,
	    struct reqstate *rs)
{
	const struct fakex_scenario *sc = srv->sc;
	struct fakex_active a;
	struct fakex_request rq;
	struct fakex_view view;
	int64_t now = elapsed_ms(srv);
	bool wick_hit = false;
	enum mk_status st;

	if (strcmp(method, MHD_HTTP_METHOD_GET) != 0 &&
	    strcmp(method, MHD_HTTP_METHOD_HEAD) != 0)
		return queue_json_error(conn, MHD_HTTP_METHOD_NOT_ALLOWED,
					"fakex venues answer GET only");
	pthread_mutex_lock(&srv->lock);
	fakex_faults_get(&srv->faults, v, now, true, &a, &wick_hit);
	pthread_mutex_unlock(&srv->lock);
	if (srv->verbose)
		fprintf(stderr, "fakex: venue=%s path=%s fault=%s\n",
			fakex_venue_name(v), path, fakex_fault_name(a.spec.kind));

	switch (a.spec.kind) {
	case FAKEX_FAULT_DOWN:
		return MHD_NO;    /* closes the connection without an answer */
	case FAKEX_FAULT_RATELIMIT:
		if (fakex_venue_error(v, FAKEX_ERR_RATELIMIT, NULL,
				      srv->wall0_ms + now, 0, &rs->ans) != MK_OK)
			return MHD_NO;
		rs->ans.retry_after_s = a.spec.params.retry_after_s;
		return queue_answer(conn, rs);
	case FAKEX_FAULT_ERROR:
		if (fakex_venue_error(v, FAKEX_ERR_INTERNAL, NULL,
				      srv->wall0_ms + now, a.spec.params.status,
				      &rs->ans) != MK_OK)
			return MHD_NO;
		return queue_answer(conn, rs);
	case FAKEX_FAULT_GARBAGE:
		return queue(conn, MHD_HTTP_OK, "application/json",
			     a.spec.params.body, strlen(a.spec.params.body), 0);
	default:
		break;
	}

	memset(&rq, 0, sizeof(rq));
	rq.path = path;
	rq.arg = get_arg;
	rq.ctx = conn;
	MHD_get_connection_values(conn, MHD_GET_ARGUMENT_KIND, collect_ids, &rq);
	view.sim_ms = fakex_sim_ms(sc, now);
	view.ts_ms = srv->wall0_ms + now;
	view.ppm = fakex_fault_ppm(&a, wick_hit, now);
	if (a.spec.kind == FAKEX_FAULT_STALE) {
		view.sim_ms = fakex_sim_ms(sc, a.start_ms);
		view.ts_ms = srv->wall0_ms + a.start_ms;
	}
	st = fakex_venue_answer(sc, v, &rq, &view, &rs->ans);
	if (st != MK_OK) {
		char msg[128];

		snprintf(msg, sizeof(msg), "fakex could not render: %s",
			 mk_strstatus(st));
		return queue_json_error(conn, MHD_HTTP_INTERNAL_SERVER_ERROR, msg);
	}
	if (a.spec.kind == FAKEX_FAULT_TRUNCATED && rs->ans.status == 200) {
		if (a.spec.params.transfer)
			rs->transfer_cut = true;
		else
			rs->ans.body.len /= 2;
	}
	if (a.spec.kind == FAKEX_FAULT_SLOW) {
		bool ok;

		pthread_mutex_lock(&srv->lock);
		ok = srv->npending < MAX_PENDING && !srv->closing[daemon + 1];
		if (ok) {
			struct pending *p = &srv->pending[srv->npending++];

			p->conn = conn;
			p->rs = rs;
			p->daemon = daemon;
			p->due_ms = now + a.spec.params.delay_ms;
			rs->have_answer = true;
			MHD_suspend_connection(conn);
		}
		pthread_mutex_unlock(&srv->lock);
		if (ok)
			return MHD_YES;
	}
	return queue_answer(conn, rs);
}

static enum MHD_Result
handle(void *cls, struct MHD_Connection *conn, const char *url,
       const char *method, const char *version, const char *upload_data,
       size_t *upload_data_size, void **con_cls)
{
	struct dctx *ctx = cls;
	struct fakex_server *srv = ctx->srv;
	struct reqstate *rs = *con_cls;
	enum fakex_venue v;
	const char *path = url;

	(void)version;
	if (rs == NULL) {
		rs = calloc(1, sizeof(*rs));
		if (rs == NULL)
			return MHD_NO;
		*con_cls = rs;
		return MHD_YES;
	}
	if (rs->drop)
		return MHD_NO;
	if (rs->have_answer) {
		rs->have_answer = false;
		return queue_answer(conn, rs);
	}
	if (*upload_data_size > 0) {
		if (!rs->upload_too_big &&
		    rs->upload.len + *upload_data_size <= UPLOAD_MAX)
			fakex_buf_printf(&rs->upload, "%.*s", (int)*upload_data_size,
					 upload_data);
		else
			rs->upload_too_big = true;
		if (rs->upload.failed)
			rs->upload_too_big = true;
		*upload_data_size = 0;
		return MHD_YES;
	}

	if (ctx->venue == MAIN_DAEMON && strncmp(url, "/admin/", 7) == 0)
		return admin(srv, conn, url, method, rs);
	/* "/<venue>/rest" everywhere; a venue's own port also takes "/rest". */
	if (url[0] == '/') {
		const char *slash = strchr(url + 1, '/');
		size_t n = slash != NULL ? (size_t)(slash - url - 1) : 0;

		if (slash != NULL && fakex_venue_from_name(url + 1, n, &v) &&
		    (ctx->venue == MAIN_DAEMON || (int)v == ctx->venue)) {
			path = slash;
			goto venue;
		}
	}
	if (ctx->venue != MAIN_DAEMON) {
		v = (enum fakex_venue)ctx->venue;
		goto venue;
	}
	return queue_json_error(conn, MHD_HTTP_NOT_FOUND,
				"fakex serves /<venue>/<the venue's path> and /admin/...");
venue:
	if (!srv->sc->venues[v].enabled)
		return queue_json_error(conn, MHD_HTTP_NOT_FOUND,
					"this venue is not in the scenario");
	return serve_venue(srv, conn, ctx->venue, v, path, method, rs);
}

static void
completed(void *cls, struct MHD_Connection *conn, void **con_cls,
	  enum MHD_RequestTerminationCode toe)
{
	struct reqstate *rs = *con_cls;

	(void)cls;
	(void)conn;
	(void)toe;
	if (rs == NULL)
		return;
	fakex_buf_release(&rs->upload);
	fakex_answer_release(&rs->ans);
	free(rs);
	*con_cls = NULL;
}

/* ---- life cycle ---- */

enum mk_status
fakex_server_start(const struct fakex_scenario *sc, bool verbose,
		   struct fakex_server **out, struct mk_err *err)
{
	struct fakex_server *srv;
	struct timespec wall;
	enum mk_status st = MK_OK;

	srv = calloc(1, sizeof(*srv));
	if (srv == NULL)
		return mk_err_set(err, MK_ENOMEM, "out of memory");
	srv->sc = sc;
	srv->verbose = verbose;
	pthread_mutex_init(&srv->lock, NULL);
	pthread_mutex_init(&srv->ctl, NULL);
	fakex_faults_init(&srv->faults, sc);
	clock_gettime(CLOCK_MONOTONIC, &srv->mono0);
	clock_gettime(CLOCK_REALTIME, &wall);
	srv->wall0_ms = (int64_t)wall.tv_sec * 1000 + wall.tv_nsec / 1000000;
	if (inet_pton(AF_INET, sc->listen_addr, &srv->addr) != 1) {
		st = mk_err_set(err, MK_ECONFIG,
				"listen: \"%s\" is not an IPv4 address",
				sc->listen_addr);
		goto out;
	}
	srv->main_ctx.srv = srv;
	srv->main_ctx.venue = MAIN_DAEMON;
	srv->main = start_daemon(srv, (uint16_t)sc->port, &srv->main_ctx);
	if (srv->main == NULL) {
		st = mk_err_set(err, MK_EIO, "cannot listen on %s:%d",
				sc->listen_addr, sc->port);
		goto out;
	}
	srv->main_port = bound_port(srv->main);
	for (int v = 0; v < FAKEX_NVENUES; v++) {
		if (!sc->venues[v].enabled || sc->venues[v].port < 0)
			continue;
		srv->own[v].ctx.srv = srv;
		srv->own[v].ctx.venue = v;
		srv->own[v].d = start_daemon(srv, (uint16_t)sc->venues[v].port,
					     &srv->own[v].ctx);
		if (srv->own[v].d == NULL) {
			st = mk_err_set(err, MK_EIO, "venues.%s.port: cannot listen on %s:%d",
					fakex_venue_name((enum fakex_venue)v),
					sc->listen_addr, sc->venues[v].port);
			goto out;
		}
		srv->own[v].port = bound_port(srv->own[v].d);
	}
	*out = srv;
	srv = NULL;
out:
	fakex_server_stop(srv);
	return st;
}

void
fakex_server_print(const struct fakex_server *srv, FILE *fp)
{
	fprintf(fp, "listening %s:%u\n", srv->sc->listen_addr, srv->main_port);
	for (int v = 0; v < FAKEX_NVENUES; v++)
		if (srv->sc->venues[v].enabled && srv->sc->venues[v].port >= 0)
			fprintf(fp, "venue %s %s:%u\n",
				fakex_venue_name((enum fakex_venue)v),
				srv->sc->listen_addr, srv->own[v].port);
	fflush(fp);
}

void
fakex_server_tick(struct fakex_server *srv)
{
	int64_t now = elapsed_ms(srv);
	size_t i = 0;

	pthread_mutex_lock(&srv->lock);
	while (i < srv->npending) {
		if (srv->pending[i].due_ms > now) {
			i++;
			continue;
		}
		MHD_resume_connection(srv->pending[i].conn);
		srv->pending[i] = srv->pending[--srv->npending];
	}
	pthread_mutex_unlock(&srv->lock);
	reconcile(srv);
}

void
fakex_server_stop(struct fakex_server *srv)
{
	if (srv == NULL)
		return;
	/* Suspended connections must be resumed before MHD can stop. The
	 * shared daemon (the admin endpoint) stops first, so no admin request
	 * restarts a venue daemon meanwhile. */
	flush_pending(srv, ALL_DAEMONS, true);
	if (srv->main != NULL)
		MHD_stop_daemon(srv->main);
	pthread_mutex_lock(&srv->ctl);
	for (int v = 0; v < FAKEX_NVENUES; v++)
		if (srv->own[v].d != NULL)
			MHD_stop_daemon(srv->own[v].d);
	pthread_mutex_unlock(&srv->ctl);
	pthread_mutex_destroy(&srv->lock);
	pthread_mutex_destroy(&srv->ctl);
	free(srv);
}
