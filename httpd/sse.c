/*
 * sse.c - Server-Sent Events hub: a ring of rendered events, one cursor
 * per stream, suspend/resume so MHD's thread never waits.
 *
 * Lock order: MHD's response mutex (held around the content reader) ->
 * hub->mu -> MHD's internal connection mutex (taken by suspend/resume) and
 * metric family mutexes. Nothing here calls into MHD in a way that takes a
 * response mutex while hub->mu is held.
 */
#include "config.h"

#include "httpd/sse.h"

#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <time.h>

#include "httpd/httpd_int.h"
#include "httpd/metrics.h"
#include "httpd/request.h"
#include "httpd/response.h"

/* Room before an event's text for its "id: <20 digits>\n" line. */
#define ID_ROOM 32

/* One event in wire form. refs is guarded by the hub's mutex. */
struct frame {
	size_t refs;
	size_t len;          /* bytes from start */
	char *start;         /* into bytes: the id line, then the rest */
	char bytes[];
};

struct client {
	struct client *prev, *next;
	struct httpd_sse_hub *hub;
	struct MHD_Connection *conn;
	int fd;                   /* the connection's socket, -1 unknown */
	uint64_t next_id;         /* next event to send */
	struct frame *cur;        /* event being sent, referenced */
	size_t cur_off;
	char text[320];           /* comment or retry line being sent */
	size_t text_len, text_off;
	bool suspended;           /* we suspended it and nobody resumed it */
	bool gone;                /* the client hung up while suspended */
	bool ending;              /* after the pending bytes, end the stream */
	uint64_t last_send_ms;
};

struct httpd_sse_hub {
	struct httpd_sse_config cfg;
	pthread_mutex_t mu;
	pthread_cond_t cv;        /* wakes the ticker */
	struct frame **ring;      /* slot id % ring_capacity */
	uint64_t next_id;         /* id of the next event */
	size_t count;             /* events held, oldest is next_id - count */
	struct client *clients;
	size_t nclients;
	bool closed;
	bool stop_ticker;
	bool ticker_started;
	pthread_t ticker;
	struct pollfd *pfds;      /* ticker scratch, max_clients long */
	struct client **pcl;
	struct httpd_family *m_clients, *m_events, *m_dropped;
};

void
httpd_sse_config_default(struct httpd_sse_config *cfg)
{
	memset(cfg, 0, sizeof *cfg);
	cfg->ring_capacity = 1024;
	cfg->max_lag = 512;
	cfg->keepalive_ms = 15000;
	cfg->retry_ms = 3000;
	cfg->max_clients = 256;
	cfg->max_event_bytes = 64 * 1024;
	cfg->first_id = 0;
}

/* Needs hub->mu. */
static void
frame_unref(struct frame *f)
{
	if (f != NULL && --f->refs == 0)
		free(f);
}

/* Resumes c if we suspended it. Needs hub->mu. */
static void
wake(struct client *c)
{
	if (c->suspended) {
		c->suspended = false;
		MHD_resume_connection(c->conn);
	}
}

static void
set_text(struct client *c, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void
set_text(struct client *c, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(c->text, sizeof c->text, fmt, ap);
	va_end(ap);
	if (n < 0)
		n = 0;
	c->text_len = (size_t)n < sizeof c->text ? (size_t)n
						 : sizeof c->text - 1;
	c->text_off = 0;
}

/*
 * MHD does not watch suspended connections, so a client that hangs up
 * while its stream waits for events would linger until the next
 * keep-alive. The ticker looks at their sockets (without blocking) and
 * wakes those that hung up, whose reader then ends them. Needs hub->mu.
 */
static void
reap_hangups(struct httpd_sse_hub *hub)
{
	size_t n = 0;

	for (struct client *c = hub->clients; c != NULL; c = c->next)
		if (c->suspended && c->fd >= 0 && n < hub->cfg.max_clients) {
			hub->pfds[n].fd = c->fd;
			hub->pfds[n].events = POLLRDHUP;
			hub->pfds[n].revents = 0;
			hub->pcl[n++] = c;
		}
	if (n == 0 || poll(hub->pfds, (nfds_t)n, 0) <= 0)
		return;
	for (size_t i = 0; i < n; i++)
		if ((hub->pfds[i].revents & (POLLRDHUP | POLLHUP | POLLERR)) != 0) {
			hub->pcl[i]->gone = true;
			wake(hub->pcl[i]);
		}
}

static void *
ticker_main(void *arg)
{
	struct httpd_sse_hub *hub = arg;
	unsigned tick = hub->cfg.keepalive_ms / 4;

	if (tick < 5)
		tick = 5;
	if (tick > 1000)
		tick = 1000;
	pthread_mutex_lock(&hub->mu);
	while (!hub->stop_ticker) {
		uint64_t now = httpd_now_ms();
		struct timespec ts;

		for (struct client *c = hub->clients; c != NULL; c = c->next)
			if (c->suspended &&
			    now - c->last_send_ms >= hub->cfg.keepalive_ms)
				wake(c);
		reap_hangups(hub);
		httpd_deadline_ms(&ts, tick);
		pthread_cond_timedwait(&hub->cv, &hub->mu, &ts);
	}
	pthread_mutex_unlock(&hub->mu);
	return NULL;
}

enum mk_status
httpd_sse_hub_create(const struct httpd_sse_config *cfg,
		     struct httpd_metrics *metrics,
		     struct httpd_sse_hub **out, struct mk_err *err)
{
	struct httpd_sse_hub *hub;
	pthread_condattr_t ca;
	enum mk_status st = MK_OK;

	*out = NULL;
	if (cfg->ring_capacity < 2)
		return mk_err_set(err, MK_EINVAL, "sse.ring_capacity: at least 2");
	if (cfg->max_lag < 1 || cfg->max_lag > cfg->ring_capacity)
		return mk_err_set(err, MK_EINVAL,
				  "sse.max_lag: 1 to ring_capacity (%zu)",
				  cfg->ring_capacity);
	if (cfg->keepalive_ms < 10)
		return mk_err_set(err, MK_EINVAL, "sse.keepalive_ms: at least 10");
	if (cfg->max_clients < 1)
		return mk_err_set(err, MK_EINVAL, "sse.max_clients: at least 1");
	if (cfg->max_event_bytes < 1)
		return mk_err_set(err, MK_EINVAL,
				  "sse.max_event_bytes: at least 1");
	hub = calloc(1, sizeof *hub);
	if (hub == NULL)
		return mk_err_set(err, MK_ENOMEM, "out of memory");
	hub->cfg = *cfg;
	hub->ring = calloc(cfg->ring_capacity, sizeof *hub->ring);
	hub->pfds = calloc(cfg->max_clients, sizeof *hub->pfds);
	hub->pcl = calloc(cfg->max_clients, sizeof *hub->pcl);
	if (hub->ring == NULL || hub->pfds == NULL || hub->pcl == NULL) {
		free(hub->ring);
		free(hub->pfds);
		free(hub->pcl);
		free(hub);
		return mk_err_set(err, MK_ENOMEM, "out of memory");
	}
	if (cfg->first_id != 0) {
		hub->next_id = cfg->first_id;
	} else {
		struct timespec ts;

		clock_gettime(CLOCK_REALTIME, &ts);
		hub->next_id = (uint64_t)ts.tv_sec * 1000000u +
			       (uint64_t)ts.tv_nsec / 1000u;
	}
	pthread_mutex_init(&hub->mu, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&hub->cv, &ca);
	pthread_condattr_destroy(&ca);
	if (metrics != NULL) {
		st = httpd_metrics_family(metrics, HTTPD_METRIC_GAUGE,
					  "markd_sse_clients",
					  "Event streams open now.", NULL, 0,
					  NULL, 0, &hub->m_clients, err);
		if (st == MK_OK)
			st = httpd_metrics_family(metrics, HTTPD_METRIC_COUNTER,
						  "markd_sse_events_total",
						  "Events published to the stream, by type.",
						  (const char *const[]){ "type" },
						  1, NULL, 0, &hub->m_events, err);
		if (st == MK_OK)
			st = httpd_metrics_family(metrics, HTTPD_METRIC_COUNTER,
						  "markd_sse_dropped_clients_total",
						  "Streams ended because the client fell too far behind.",
						  NULL, 0, NULL, 0, &hub->m_dropped, err);
		if (st != MK_OK)
			goto fail;
		httpd_metric_set(hub->m_clients, NULL, 0);
		httpd_metric_add(hub->m_dropped, NULL, 0);
	}
	if (pthread_create(&hub->ticker, NULL, ticker_main, hub) != 0) {
		st = mk_err_set(err, MK_EIO, "cannot start the SSE ticker thread");
		goto fail;
	}
	hub->ticker_started = true;
	*out = hub;
	return MK_OK;
fail:
	httpd_sse_hub_destroy(hub);
	return st;
}

void
httpd_sse_close(struct httpd_sse_hub *hub)
{
	if (hub == NULL)
		return;
	pthread_mutex_lock(&hub->mu);
	if (!hub->closed) {
		hub->closed = true;
		for (struct client *c = hub->clients; c != NULL; c = c->next)
			wake(c);
	}
	pthread_mutex_unlock(&hub->mu);
}

void
httpd_sse_hub_destroy(struct httpd_sse_hub *hub)
{
	if (hub == NULL)
		return;
	httpd_sse_close(hub);
	pthread_mutex_lock(&hub->mu);
	hub->stop_ticker = true;
	pthread_cond_broadcast(&hub->cv);
	pthread_mutex_unlock(&hub->mu);
	if (hub->ticker_started)
		pthread_join(hub->ticker, NULL);
	if (hub->clients != NULL)
		/* A server still running: its streams keep pointers here. */
		fprintf(stderr,
			"level=error component=httpd msg=\"SSE hub destroyed with %zu streams open; leaking it\"\n",
			hub->nclients);
	if (hub->clients != NULL)
		return;
	for (size_t i = 0; i < hub->cfg.ring_capacity; i++)
		frame_unref(hub->ring[i]);
	free(hub->ring);
	free(hub->pfds);
	free(hub->pcl);
	pthread_cond_destroy(&hub->cv);
	pthread_mutex_destroy(&hub->mu);
	free(hub);
}

static bool
valid_type(const char *t)
{
	size_t n = 0;

	if (t == NULL)
		return false;
	for (; t[n] != '\0'; n++)
		if (!((t[n] >= 'a' && t[n] <= 'z') || (t[n] >= 'A' && t[n] <= 'Z') ||
		      (t[n] >= '0' && t[n] <= '9') || t[n] == '_' ||
		      t[n] == '.' || t[n] == '-'))
			return false;
	return n >= 1 && n <= 32;
}

/* Renders "event: T\ndata: ...\n...\n\n" after ID_ROOM bytes. */
static struct frame *
render(const char *type, const char *json, size_t len)
{
	size_t tlen = strlen(type), lines = 1, size;
	struct frame *f;
	char *w;

	while (len > 0 && (json[len - 1] == '\n' || json[len - 1] == '\r'))
		len--;
	for (size_t i = 0; i < len; i++)
		if (json[i] == '\n' ||
		    (json[i] == '\r' && (i + 1 == len || json[i + 1] != '\n')))
			lines++;
	/* "event: " T "\n" + lines * ("data: " "\n") + data + "\n" */
	size = 7 + tlen + 1 + lines * 7 + len + 1;
	f = malloc(sizeof *f + ID_ROOM + size);
	if (f == NULL)
		return NULL;
	w = f->bytes + ID_ROOM;
	memcpy(w, "event: ", 7);
	w += 7;
	memcpy(w, type, tlen);
	w += tlen;
	*w++ = '\n';
	memcpy(w, "data: ", 6);
	w += 6;
	for (size_t i = 0; i < len; i++) {
		if (json[i] == '\r' || json[i] == '\n') {
			if (json[i] == '\r' && i + 1 < len && json[i + 1] == '\n')
				i++;
			memcpy(w, "\ndata: ", 7);
			w += 7;
		} else {
			*w++ = json[i];
		}
	}
	*w++ = '\n';
	*w++ = '\n';
	f->len = (size_t)(w - (f->bytes + ID_ROOM));
	f->refs = 1;
	f->start = f->bytes + ID_ROOM;
	return f;
}

enum mk_status
httpd_sse_publish(struct httpd_sse_hub *hub, const char *type,
		  const char *json, size_t len, uint64_t *id_out)
{
	struct frame *f;
	char idline[ID_ROOM];
	int n;
	uint64_t id;
	size_t slot;

	if (!valid_type(type))
		return MK_EINVAL;
	if (len == 0 || json == NULL || memchr(json, '\0', len) != NULL)
		return MK_EINVAL;
	if (len > hub->cfg.max_event_bytes)
		return MK_ETOOBIG;
	f = render(type, json, len);
	if (f == NULL)
		return MK_ENOMEM;
	pthread_mutex_lock(&hub->mu);
	if (hub->closed) {
		pthread_mutex_unlock(&hub->mu);
		free(f);
		return MK_ESTATE;
	}
	id = hub->next_id++;
	n = snprintf(idline, sizeof idline, "id: %" PRIu64 "\n", id);
	f->start -= n;
	memcpy(f->start, idline, (size_t)n);
	f->len += (size_t)n;
	slot = (size_t)(id % hub->cfg.ring_capacity);
	if (hub->count == hub->cfg.ring_capacity)
		frame_unref(hub->ring[slot]);
	else
		hub->count++;
	hub->ring[slot] = f;
	for (struct client *c = hub->clients; c != NULL; c = c->next)
		wake(c);
	if (hub->m_events != NULL)
		httpd_metric_add(hub->m_events, (const char *const[]){ type }, 1);
	pthread_mutex_unlock(&hub->mu);
	if (id_out != NULL)
		*id_out = id;
	return MK_OK;
}

size_t
httpd_sse_clients(struct httpd_sse_hub *hub)
{
	size_t n;

	pthread_mutex_lock(&hub->mu);
	n = hub->nclients;
	pthread_mutex_unlock(&hub->mu);
	return n;
}

uint64_t
httpd_sse_next_id(struct httpd_sse_hub *hub)
{
	uint64_t n;

	pthread_mutex_lock(&hub->mu);
	n = hub->next_id;
	pthread_mutex_unlock(&hub->mu);
	return n;
}

/* ---- one stream ---- */

/* Copies what fits from src[*off..len) into buf[*out..max). */
static void
copy_out(char *buf, size_t max, size_t *out, const char *src, size_t len,
	 size_t *off)
{
	size_t n = len - *off;

	if (n > max - *out)
		n = max - *out;
	memcpy(buf + *out, src + *off, n);
	*out += n;
	*off += n;
}

/* MHD's content reader: runs on MHD's thread with the response's mutex
 * held. Fills buf with whatever is ready; with nothing ready it suspends
 * the connection and returns 0 (a publication, the ticker or close will
 * resume it). */
static ssize_t
stream_read(void *cls, uint64_t pos, char *buf, size_t max)
{
	struct client *c = cls;
	struct httpd_sse_hub *hub = c->hub;
	uint64_t now = httpd_now_ms();
	size_t out = 0;
	ssize_t ret;

	(void)pos;
	pthread_mutex_lock(&hub->mu);
	if (c->gone) {
		/* hung up while suspended: let MHD close the connection */
		pthread_mutex_unlock(&hub->mu);
		return MHD_CONTENT_READER_END_WITH_ERROR;
	}
	while (out < max) {
		if (c->text_off < c->text_len) {
			copy_out(buf, max, &out, c->text, c->text_len,
				 &c->text_off);
			continue;
		}
		if (c->cur != NULL) {
			copy_out(buf, max, &out, c->cur->start, c->cur->len,
				 &c->cur_off);
			if (c->cur_off == c->cur->len) {
				frame_unref(c->cur);
				c->cur = NULL;
			}
			continue;
		}
		if (c->ending)
			break;
		if (hub->closed) {
			set_text(c, ": server shutting down\n\n");
			c->ending = true;
			continue;
		}
		if (c->next_id < hub->next_id) {
			uint64_t oldest = hub->next_id - hub->count;
			uint64_t behind = hub->next_id - c->next_id;

			if (c->next_id < oldest || behind > hub->cfg.max_lag) {
				set_text(c,
					 ": too slow: %" PRIu64 " events behind (limit %zu); dropped, reconnect with Last-Event-ID\n\n",
					 behind, hub->cfg.max_lag);
				c->ending = true;
				if (hub->m_dropped != NULL)
					httpd_metric_add(hub->m_dropped, NULL, 1);
				continue;
			}
			c->cur = hub->ring[c->next_id % hub->cfg.ring_capacity];
			c->cur->refs++;
			c->cur_off = 0;
			c->next_id++;
			continue;
		}
		if (now - c->last_send_ms >= hub->cfg.keepalive_ms) {
			set_text(c, ": keep-alive\n\n");
			continue;
		}
		break;
	}
	if (out > 0) {
		c->last_send_ms = now;
		ret = (ssize_t)out;
	} else if (c->ending) {
		ret = MHD_CONTENT_READER_END_OF_STREAM;
	} else {
		c->suspended = true;
		MHD_suspend_connection(c->conn);
		ret = 0;
	}
	pthread_mutex_unlock(&hub->mu);
	return ret;
}

static void
unlink_client(struct httpd_sse_hub *hub, struct client *c)
{
	if (c->prev != NULL)
		c->prev->next = c->next;
	else
		hub->clients = c->next;
	if (c->next != NULL)
		c->next->prev = c->prev;
	hub->nclients--;
	if (hub->m_clients != NULL)
		httpd_metric_set(hub->m_clients, NULL, (double)hub->nclients);
}

/* MHD is done with the stream's response (connection closed or answer
 * complete). */
static void
stream_free(void *cls)
{
	struct client *c = cls;
	struct httpd_sse_hub *hub = c->hub;

	pthread_mutex_lock(&hub->mu);
	unlink_client(hub, c);
	frame_unref(c->cur);
	pthread_mutex_unlock(&hub->mu);
	free(c);
}

/* Parses a Last-Event-ID value: decimal digits only. */
static bool
parse_id(const char *s, uint64_t *v)
{
	uint64_t x = 0;

	if (s == NULL || *s == '\0')
		return false;
	for (; *s != '\0'; s++) {
		if (*s < '0' || *s > '9' || x > (UINT64_MAX - 9) / 10)
			return false;
		x = x * 10 + (uint64_t)(*s - '0');
	}
	*v = x;
	return true;
}

void
httpd_sse_handler(struct httpd_req *req, void *arg)
{
	struct httpd_sse_hub *hub = arg;
	const char *lei = httpd_req_header(req, "Last-Event-ID");
	struct client *c = calloc(1, sizeof *c);
	struct MHD_Response *resp;
	uint64_t last, oldest;

	if (c == NULL) {
		httpd_reply_error(req, HTTPD_ERR_INTERNAL, NULL, "out of memory");
		return;
	}
	c->hub = hub;
	c->conn = req->conn;
	c->fd = -1;
	{
		const union MHD_ConnectionInfo *ci = MHD_get_connection_info(
			req->conn, MHD_CONNECTION_INFO_CONNECTION_FD);

		if (ci != NULL)
			c->fd = ci->connect_fd;
	}
	c->last_send_ms = httpd_now_ms();
	pthread_mutex_lock(&hub->mu);
	if (hub->closed || hub->nclients >= hub->cfg.max_clients) {
		bool closed = hub->closed;

		pthread_mutex_unlock(&hub->mu);
		free(c);
		httpd_reply_error(req, HTTPD_ERR_SERVICE_UNAVAILABLE, NULL,
				  closed ? "the event stream is shutting down"
					 : "too many event streams open; retry later");
		httpd_reply_header(req, MHD_HTTP_HEADER_RETRY_AFTER, "5");
		return;
	}
	oldest = hub->next_id - hub->count;
	c->next_id = hub->next_id;
	if (lei == NULL) {
		set_text(c, "retry: %u\n\n", hub->cfg.retry_ms);
	} else if (parse_id(lei, &last) && last < hub->next_id &&
		   last + 1 >= oldest) {
		c->next_id = last + 1;
		set_text(c, "retry: %u\n\n", hub->cfg.retry_ms);
	} else {
		set_text(c,
			 "retry: %u\n\n: events missed: Last-Event-ID %.40s is not held (held: %" PRIu64 " to %" PRIu64 "); starting from now\n\n",
			 hub->cfg.retry_ms, lei, oldest, hub->next_id - 1);
	}
	c->next = hub->clients;
	if (hub->clients != NULL)
		hub->clients->prev = c;
	hub->clients = c;
	hub->nclients++;
	if (hub->m_clients != NULL)
		httpd_metric_set(hub->m_clients, NULL, (double)hub->nclients);
	pthread_mutex_unlock(&hub->mu);

	resp = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 4096,
						 stream_read, c, stream_free);
	if (resp == NULL) {
		stream_free(c);
		httpd_req_set_response(req, 500, NULL);
		return;
	}
	if (!httpd_response_headers(resp, "text/event-stream") ||
	    MHD_add_response_header(resp, "X-Accel-Buffering", "no") != MHD_YES) {
		MHD_destroy_response(resp); /* calls stream_free */
		httpd_req_set_response(req, 500, NULL);
		return;
	}
	httpd_req_set_response(req, 200, resp);
}
