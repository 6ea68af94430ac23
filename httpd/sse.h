/*
 * sse.h - the Server-Sent Events hub behind GET /v1/stream.
 *
 * Publishers (any thread) push events: an id (increasing uint64, given by
 * the hub), a type ("mark", "feed", "position") and JSON text. Each event
 * is rendered once into its wire form
 *   id: 42\nevent: mark\ndata: {...}\n\n
 * and kept in a bounded ring shared by every client. Each stream reads the
 * ring through its own cursor:
 *   - events go out in id order; a client sends "Last-Event-ID: n" to
 *     resume after n while n+1 is still in the ring, else it starts from
 *     now after a comment saying events were missed;
 *   - an idle stream gets a ": keep-alive" comment every keepalive_ms;
 *   - a client more than max_lag events behind is dropped after a final
 *     comment, when MHD next gets to write to it (a client that reads
 *     nothing at all is closed by the connection timeout instead);
 *   - a client that hangs up while its stream waits is noticed by the
 *     hub's ticker within keepalive_ms / 4 (at most 1 s) and closed.
 *
 * MHD's single thread never waits here: when a stream has nothing to
 * send, its content reader suspends the connection (MHD_suspend_connection)
 * and returns 0; a publication, the keep-alive ticker or closing the hub
 * resumes it (MHD_resume_connection). Both run under the hub's mutex, so a
 * resume never races a suspend.
 *
 * Thread safety: httpd_sse_publish, httpd_sse_clients, httpd_sse_next_id
 * and httpd_sse_close may be called from any thread, route handlers
 * included (publish never blocks on a client). The hub owns a ticker
 * thread.
 *
 * Lifetime: create the hub before the server, give it to the server config
 * (so httpd_server_stop ends the streams), destroy it after the server is
 * stopped.
 */
#ifndef MARKD_HTTPD_SSE_H
#define MARKD_HTTPD_SSE_H

#include <stddef.h>
#include <stdint.h>

#include "aggregator/status.h"

struct httpd_req;
struct httpd_metrics;
struct httpd_sse_hub;

struct httpd_sse_config {
	size_t ring_capacity;    /* events held for resuming (>= 2) */
	size_t max_lag;          /* events a client may fall behind
				  * (1 .. ring_capacity) */
	unsigned keepalive_ms;   /* idle comment interval (>= 10) */
	unsigned retry_ms;       /* "retry:" sent to clients on connect */
	size_t max_clients;      /* streams at once; more get 503 */
	size_t max_event_bytes;  /* largest data accepted by publish */
	uint64_t first_id;       /* id of the first event; 0 = the wall clock
				  * in microseconds, so ids keep increasing
				  * across restarts */
};

/* Defaults: ring 1024, lag 512, keep-alive 15000 ms, retry 3000 ms, 256
 * clients, 64 KiB per event, first_id 0. */
void httpd_sse_config_default(struct httpd_sse_config *cfg);

/*
 * Creates a hub and starts its ticker thread. metrics may be NULL; when
 * set, markd_sse_clients, markd_sse_events_total and
 * markd_sse_dropped_clients_total are registered there.
 * Errors: MK_EINVAL (a bad setting, named in err), MK_ENOMEM, MK_EIO
 * (thread creation failed).
 */
enum mk_status httpd_sse_hub_create(const struct httpd_sse_config *cfg,
				    struct httpd_metrics *metrics,
				    struct httpd_sse_hub **out,
				    struct mk_err *err);

/*
 * Publishes one event. type: 1 to 32 characters of [A-Za-z0-9_.-]; json:
 * len bytes of JSON text (line breaks in it become several data: lines).
 * *id (when not NULL) receives the event's id. Errors: MK_EINVAL (bad
 * type), MK_ETOOBIG (len > max_event_bytes), MK_ESTATE (hub closed),
 * MK_ENOMEM. Cost: one allocation and a copy, plus a resume per waiting
 * stream.
 */
enum mk_status httpd_sse_publish(struct httpd_sse_hub *hub, const char *type,
				 const char *json, size_t len, uint64_t *id);

/* Streams open now. */
size_t httpd_sse_clients(struct httpd_sse_hub *hub);

/* Id the next event will get. */
uint64_t httpd_sse_next_id(struct httpd_sse_hub *hub);

/*
 * Ends every stream (each gets ": server shutting down" and then the end
 * of the stream) and refuses new ones with 503; publish then fails with
 * MK_ESTATE. Idempotent. Called by httpd_server_stop.
 */
void httpd_sse_close(struct httpd_sse_hub *hub);

/* Closes (if needed), joins the ticker and frees. No stream may remain:
 * stop the server first. NULL is accepted. */
void httpd_sse_hub_destroy(struct httpd_sse_hub *hub);

/*
 * The route handler of GET /v1/stream (arg: the hub). Register it with
 * HTTPD_ROUTE_STREAM so stream lifetimes stay out of the latency
 * histogram:
 *   httpd_router_add(r, HTTPD_GET, "/v1/stream", HTTPD_ROUTE_STREAM,
 *                    httpd_sse_handler, hub, &err);
 */
void httpd_sse_handler(struct httpd_req *req, void *hub);

#endif
