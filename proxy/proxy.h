/* The distribution proxy: one listener per registered node, and the links
 * (initiator <-> daemon <-> the node's real port) accepted on them. */
#ifndef PROXY_H
#define PROXY_H

#include "epx.h"
#include "sbuf.h"

typedef struct proxy proxy;

proxy *proxy_new(epx *x);
/* Close every listener and link. */
void proxy_free(proxy *p);

/* Open the proxy listener for a newly registered node (sets n->proxy_fd and
 * n->proxy_port).  0, or -1 if no listener could be opened (logged). */
int proxy_node_up(proxy *p, reg_node *n);
/* The node unregistered: close its listener.  Live links stay until their
 * sockets close. */
void proxy_node_down(proxy *p, reg_node *n);

/* The rules or the mode changed: hold, release or (reset mode) close links. */
void proxy_rules_changed(proxy *p);

/* Number of live links. */
int proxy_nlinks(const proxy *p);
/* Append the LINKS payload (a JSON array) to out. */
void proxy_links_json(proxy *p, sbuf *out);

#endif
