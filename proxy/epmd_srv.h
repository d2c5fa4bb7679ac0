/* The EPMD server: listeners, request connections, registrations.  Speaks
 * exactly what OTP 25's epmd speaks (see epmd_codec.h), except that
 * PORT_PLEASE2, NAMES and DUMP give the proxy's ports. */
#ifndef EPMD_SRV_H
#define EPMD_SRV_H

#include "epx.h"
#include "sbuf.h"

typedef struct epmd_srv epmd_srv;

epmd_srv *epmd_srv_new(epx *x);
/* Listen on addr:port (port 0 = any; every later call reuses the port the
 * first one got, as epmd binds one port on all its addresses).  0, or -1
 * with a message in err; *in_use is set when the port was taken. */
int epmd_srv_listen(epmd_srv *s, const char *addr, int port, char *err, size_t errlen,
                    int *in_use);
/* The port bound, or -1 before the first listen. */
int epmd_srv_port(const epmd_srv *s);
/* The node `name`'s own EPMD port (made on first use, the same after):
 * what comes in on it is asked by that node, so that lookups across a
 * block are held as the node's SYN would be.  addr (a loopback literal, or
 * NULL) is the node's host address: every EPMD port listens there too,
 * NAMES sent there lists that host's nodes, and the node's proxy listener
 * is there.  The port, or -1 with a message in err. */
int epmd_srv_node_port(epmd_srv *s, const char *name, const char *addr, char *err,
                       size_t errlen);
/* The host address given for a node's own port, or NULL. */
const char *epmd_srv_node_addr(const epmd_srv *s, const char *name, size_t len);
/* Is port one of the EPMD ports (the shared one or a node's own)? */
int epmd_srv_is_port(const epmd_srv *s, int port);
/* The nodes' own ports as JSON: [{"name":..,"port":..,"addr":..}, ...]. */
void epmd_srv_ports_json(const epmd_srv *s, sbuf *o);
/* The rules or the mode changed: held lookups go on, wait for their next
 * SYN retry, or are answered. */
void epmd_srv_rules_changed(epmd_srv *s);
/* Close every listener and connection (registrations end). */
void epmd_srv_free(epmd_srv *s);

#endif
