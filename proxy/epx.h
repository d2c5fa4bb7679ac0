/* The daemon's shared context: what main.c wires together and every module
 * may reach.  One per process. */
#ifndef EPX_H
#define EPX_H

#include "events.h"
#include "faults.h"
#include "holdmodel.h"
#include "loop.h"
#include "registry.h"
#include "rules.h"
#include "sock.h"

#define EPX_MAX_ADDRS 16
#define ACCEPT_BACKOFF_MS 100   /* a listener out of fds stops accepting this long */
/* Fds kept free of EPMD and control clients, for what ALIVE2 (a proxy
 * listener) and links (two sockets each) must open; a quarter of the limit
 * when the limit is small. */
#define EPX_FD_RESERVE 16

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
    int no_splice;                     /* --no-splice: bulk through user space too */
} epx_config;

/* What a block does (doc/hold-model.md): HOLD models a path that drops
 * packets (a stream resumes at its next retransmission after the block
 * lifts, the reverse of a one-way block stalls, attempts wait for their
 * next SYN retry); FREEZE stops the bytes and lets them go the instant the
 * block lifts; RESET closes blocked links at once. */
enum epx_mode { EPXD_MODE_HOLD = 0, EPXD_MODE_RESET = 1, EPXD_MODE_FREEZE = 2 };

/* "hold", "reset", "freeze". */
static inline const char *epx_mode_name(enum epx_mode m)
{
    return m == EPXD_MODE_RESET ? "reset" : m == EPXD_MODE_FREEZE ? "freeze" : "hold";
}

struct epmd_srv;
struct proxy;
struct control;
struct app;
struct udp;
struct chaos;

typedef struct epx {
    epx_config cfg;
    loop *loop;
    registry reg;
    rules rules;                       /* blocked (from, to) pairs */
    faults faults;                     /* link faults (DELAY, RATE...) by (from, to) */
    struct chaos *chaos;               /* timed faults, flaps, the nemesis (chaos.h) */
    enum epx_mode mode;
    hold_params hold;                  /* the knobs of MODE hold */
    events ev;
    struct epmd_srv *epmd;
    struct proxy *proxy;
    struct control *control;
    int epmd_port;                     /* bound ports */
    int control_port;
    int stop;                          /* set to leave the main loop */
    int exit_code;
    long long started_ms;
    int fds_outside_loop;              /* open fds the loop does not watch (stdio...) */
    struct app *app;                   /* app links (app.h); made on the first APP* command */
    struct udp *udp;                   /* members' UDP (udp.h); made on the first APPUDP* */
} epx;

/* 1 if a client connection may be accepted now: more than the reserve of
 * fds would be left.  Every socket the daemon keeps is in the loop, so the
 * loop's count plus fds_outside_loop is what is open.  The limit is read
 * each time: it can be changed from outside (prlimit). */
static inline int epx_accept_ok(const epx *x)
{
    int limit = sock_fd_limit();
    int reserve = limit / 4 < EPX_FD_RESERVE ? limit / 4 : EPX_FD_RESERVE;
    return limit - loop_count(x->loop) - x->fds_outside_loop > reserve;
}

#endif
