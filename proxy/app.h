/* App links: TCP between cluster members that run under the LD_PRELOAD shim
 * (fixture/preload.c, README.md, "The LD_PRELOAD shim").  This module keeps who listens on
 * which port (registered by the shim over its control connection), the
 * connections announced but not yet arrived, and the app relay listener
 * they arrive on; proxy.c relays them as links of kind "app".
 *
 * Flow: the shim's connect() asks app_route; if another member listens on
 * that port it binds, announces (app_announce: from, port, source port,
 * the address it asked for) and connects to the relay port; the accepted
 * socket is matched to its announcement by its peer port and handed to
 * proxy_app_link.  An announcement that no connection follows expires. */
#ifndef APP_H
#define APP_H

#include "app_parse.h"
#include "epx.h"
#include "sbuf.h"

#define APP_MAX_LISTENERS 4096      /* registered (node, port) pairs in all */
#define APP_MAX_PENDING   1024      /* announced connections not yet arrived */
#define APP_PENDING_MS    10000     /* an announcement lives this long */

typedef struct app app;

/* No sockets yet: the relay listener opens on the first APPROUTE that
 * needs it. */
app *app_new(epx *x);
void app_free(app *a);

/* owner: the control connection that registers (its registrations end with
 * it).  0, or -1 with a message in err (limit reached, out of memory). */
int app_listen(app *a, unsigned long owner, const char *node, int port, char *err,
               size_t errlen);
/* Remove that registration if owner made it.  1 removed, 0 not there. */
int app_unlisten(app *a, unsigned long owner, const char *node, int port);
/* The control connection closed: everything it registered goes. */
void app_owner_gone(app *a, unsigned long owner);

/* APPROUTE's payload for a connect from node to port: {"route":false} when
 * no other member listens there (or the port is one of the daemon's own),
 * else {"route":true,"to":NAME,"port":RELAY4,"port6":RELAY6} (port6 0 when
 * there is no IPv6 loopback).  -1 with a message in err if the relay
 * listener cannot be opened. */
int app_route(app *a, const char *node, int port, sbuf *out, char *err, size_t errlen);
/* APPCONNECT: remember that a connection from args->node with source port
 * args->src_port to args->port is on its way.  0, or -1 with a message. */
int app_announce(app *a, const app_args *args, char *err, size_t errlen);

/* The APPS payload: [{"node":..,"port":..},...] and the pending count. */
void app_json(app *a, sbuf *out);
/* Registered listeners (for STATUS). */
int app_nlisteners(const app *a);

#endif
