/*
 * fakex_server.h - the HTTP side of markd-fakex: one libmicrohttpd daemon
 * on the scenario's address serving every venue under /<venue>/... plus the
 * admin endpoint, and one more daemon per venue that asks for its own port
 * (serving the venue's real paths at the root, so a client's base URL can
 * be http://127.0.0.1:PORT). Faults are applied here (see doc/fakex.md).
 *
 * Thread safety: fakex_server_start/_tick/_stop belong to one thread (the
 * program's main thread); MHD runs handlers on its own threads, which
 * share the fault table under a mutex.
 * Ownership: the server borrows the scenario, which must outlive it.
 */
#ifndef MARKD_TOOLS_FAKEX_SERVER_H
#define MARKD_TOOLS_FAKEX_SERVER_H

#include <stdbool.h>
#include <stdio.h>

#include "aggregator/status.h"
#include "tools/fakex_scenario.h"

struct fakex_server;

/*
 * Binds every daemon and starts serving. MK_EIO with a message naming the
 * address when a socket cannot be bound; MK_ENOMEM. When `verbose`, every
 * request is logged to stderr.
 */
enum mk_status fakex_server_start(const struct fakex_scenario *sc,
				  bool verbose, struct fakex_server **out,
				  struct mk_err *err);

/*
 * Writes the bound addresses: first "listening ADDR:PORT", then one
 * "venue NAME ADDR:PORT" line per venue with its own port, then flushes.
 */
void fakex_server_print(const struct fakex_server *srv, FILE *fp);

/*
 * Housekeeping, to call every few milliseconds: answers slow requests
 * that are due, and stops or restarts the daemons of venues that go down
 * or come back on schedule.
 */
void fakex_server_tick(struct fakex_server *srv);

/* Stops every daemon and frees the server; NULL is accepted. */
void fakex_server_stop(struct fakex_server *srv);

#endif
