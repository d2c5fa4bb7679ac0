/* The node registry: registered names, the FIFO of unused names, and epmd's
 * creation counter.  Pure data, no sockets. */
#ifndef REGISTRY_H
#define REGISTRY_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "epmd_codec.h"
#include "sniff.h"

#define REGISTRY_MAX_UNUSED       1000   /* epmd's MAX_UNREG_COUNT */
#define REGISTRY_MAX_UNUSED_DEBUG 5      /* ... with -d */

typedef struct reg_node {
    struct reg_node *next;
    char name[EPMD_MAXSYMLEN + 1];     /* alive name, NUL-terminated */
    size_t namelen;
    uint8_t extra[EPMD_MAXSYMLEN + 1];
    size_t extralen;
    uint16_t port;                     /* the node's own listen port */
    uint8_t nodetype, protocol;
    uint16_t highvsn, lowvsn;
    uint32_t counter;                  /* creation counter */
    int active;                        /* registered (1) or in the unused FIFO */
    int reg_fd;                        /* the registration socket */
    int proxy_fd;                      /* our listener for this node, -1 if none */
    int proxy_port;
    char full[SNIFF_MAX_NAME + 1];     /* "alive@host" once a handshake showed it */
    long long since_ms;                /* monotonic time of registration */
    void *proxy;                       /* owned by the proxy module */
} reg_node;

typedef struct registry {
    reg_node *reg;          /* registered, newest first */
    reg_node *unused;       /* FIFO of unregistered names, oldest first */
    reg_node *unused_tail;
    int nreg, nunused;
    int max_unused;         /* REGISTRY_MAX_UNUSED or ..._DEBUG */
} registry;

void registry_init(registry *r, int debug);
void registry_free(registry *r);

/* Register a (validated) ALIVE2 request at wall-clock time `now`.  Returns
 * the node, or NULL if the name is taken (or memory ran out). */
reg_node *registry_register(registry *r, const epmd_alive2 *a, time_t now);
/* Move a registered node to the unused FIFO. */
void registry_unregister(registry *r, reg_node *n);

/* The registered node with this name, or NULL. */
reg_node *registry_find(const registry *r, const uint8_t *name, size_t len);
/* The registered node whose registration socket is fd, or NULL. */
reg_node *registry_find_fd(const registry *r, int fd);

/* View of a node as an epmd_alive2 (for PORT2 replies). */
void registry_as_alive2(const reg_node *n, epmd_alive2 *out);

#endif
