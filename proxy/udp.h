/* UDP between cluster members (README.md, "The LD_PRELOAD shim"): the
 * ports members' UDP sockets are bound to, registered by the shim over its
 * control connection, and the generation page the shim reads to know when
 * what it cached may be wrong (udp_page.h).
 *
 * The daemon never sees a datagram: the shim asks APPUDPROUTE once per
 * destination port and generation ("is that port another member's, and is
 * me -> it blocked?") and drops what a block would, in the sending
 * process.  Nothing here depends on the mode: a datagram is never held. */
#ifndef UDP_H
#define UDP_H

#include "epx.h"
#include "sbuf.h"

#define UDP_MAX_PORTS 4096      /* registered (node, port) pairs in all */

typedef struct udp udp;

/* Creates the generation page: a file in $XDG_RUNTIME_DIR (else /tmp)
 * named after the daemon's pid and control port, made with O_EXCL and
 * O_NOFOLLOW, mode 0644, unlinked by udp_free.  If it cannot be made the
 * module works without it (answers carry no "genfile": the shim then
 * passes every datagram).  NULL only when out of memory. */
udp *udp_new(epx *x);
/* Marks the page closed, unlinks it. */
void udp_free(udp *u);

/* APPUDP: owner's process has a UDP socket of node's bound to port.  0, or
 * -1 with a message in err (limit, memory).  Registering the same triple
 * again is a no-op. */
int udp_register(udp *u, unsigned long owner, const char *node, int port, char *err,
                 size_t errlen);
/* APPUNUDP: it closed.  1 removed, 0 not there. */
int udp_unregister(udp *u, unsigned long owner, const char *node, int port);
/* The control connection closed: everything it registered goes. */
void udp_owner_gone(udp *u, unsigned long owner);

/* APPUDPROUTE's payload for a datagram from node to a loopback port:
 * {"gen":G,"member":false,"genfile":PATH} or
 * {"gen":G,"member":true,"blocked":B,"genfile":PATH,"to":NAME}: NAME is
 * another member with a socket on port ("genfile" absent without a page).
 * The answer holds until the page shows a generation other than G. */
void udp_route(udp *u, const char *node, int port, sbuf *out);

/* Publish a new generation if the rules changed since the last one.  Call
 * after anything that may change them, before the reply goes out.  NULL
 * is ignored. */
void udp_sync(udp *u);

/* {"ports":[{"node":..,"port":..},...],"gen":G,"genfile":PATH|null} (APPS) */
void udp_json(const udp *u, sbuf *out);

#endif
