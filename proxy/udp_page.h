/* The generation page: what the daemon (udp.c) publishes to the LD_PRELOAD
 * shim (fixture/preload.c) through a small file both map, so that the shim
 * can decide about a UDP datagram without asking the daemon each time.
 *
 * The daemon creates the file, writes the header once and then only ever
 * stores a new gen (atomically, release); the shim maps it read-only and
 * loads gen (acquire).  gen changes whenever a verdict could: a change of
 * the rules, or of the UDP ports members registered.  gen 0 is never
 * published; gen_closed set means the daemon is gone (its file unlinked):
 * the shim stops trusting what it cached. */
#ifndef UDP_PAGE_H
#define UDP_PAGE_H

#include <stdint.h>

#define UDP_PAGE_MAGIC   "EPXUDPG1"
#define UDP_PAGE_SIZE    4096

typedef struct udp_page {
    char magic[8];              /* UDP_PAGE_MAGIC, no NUL */
    uint32_t pid;               /* the daemon's */
    uint32_t control_port;      /* the daemon's control port */
    uint64_t gen;               /* the generation: see above */
    uint32_t closed;            /* 1 once the daemon has left */
    uint32_t reserved;
} udp_page;

#endif
