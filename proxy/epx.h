/* The daemon's shared context: what main.c wires together and every module
 * may reach.  One per process. */
#ifndef EPX_H
#define EPX_H

#include "events.h"
#include "loop.h"
#include "registry.h"
#include "rules.h"

#define EPX_MAX_ADDRS 16
#define ACCEPT_BACKOFF_MS 100   /* a listener out of fds stops accepting this long */

typedef struct epx_config {
    const char *addrs[EPX_MAX_ADDRS];  /* listen addresses; empty = 127.0.0.1 */
    int naddrs;
    int epmd_port;                     /* 0 = pick a free port */
    int control_port;                  /* 0 = pick a free port */
    int relaxed;                       /* -relaxed_command_check */
    int packet_timeout;                /* seconds */
    int delay_accept;                  /* seconds */
    int delay_write;                   /* seconds */
    int debug;                         /* -d count */
} epx_config;

enum epx_mode { EPXD_MODE_HOLD = 0, EPXD_MODE_RESET = 1 };

struct epmd_srv;
struct proxy;
struct control;

typedef struct epx {
    epx_config cfg;
    loop *loop;
    registry reg;
    rules rules;                       /* blocked (from, to) pairs */
    enum epx_mode mode;
    events ev;
    struct epmd_srv *epmd;
    struct proxy *proxy;
    struct control *control;
    int epmd_port;                     /* bound ports */
    int control_port;
    int stop;                          /* set to leave the main loop */
    int exit_code;
    long long started_ms;
} epx;

#endif
