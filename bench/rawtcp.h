/* The raw-TCP section of `make bench`: the relay alone, without the BEAM.
 *
 * One sink process (echo for ping-pong, count for bulk, both ways for the
 * duplex test) is reached over every path in the same run, in an order
 * that rotates from run to run: directly, through epmdpxy (with its
 * defaults, and a second daemon with --mss 0: loopback's MSS), through
 * socat and haproxy (Debian packages; a missing one is skipped with a
 * note), and through three minimal relays built into the bench (epoll
 * read/write with 64 KiB and with 1 MiB chunks, and splice through a
 * pipe): the floor of a user-space relay on this machine.  The "app link"
 * path is what the LD_PRELOAD shim makes of a connection between two
 * cluster members: a second sink and the client both run under the shim
 * (this program re-executed, raw_helper_main), and the client's connect()
 * to the sink's own port is redirected through the daemon's app relay.  Last, the cost of
 * a connect() to a port no member listens on, with and without the shim
 * (one round trip to the daemon).  bench/README.md says what each figure
 * is. */
#ifndef RAWTCP_H
#define RAWTCP_H

#include <sys/types.h>

#include "benchutil.h"

enum {
    RAW_DIRECT,
    RAW_EPMDPXY,
    RAW_EPMDPXY_MSS0,   /* its daemon started with --mss 0 */
    RAW_APP,
    RAW_SOCAT,
    RAW_HAPROXY,
    RAW_MIN64K,
    RAW_MIN1M,
    RAW_SPLICE,
    RAW_NPATHS
};

typedef struct raw_figures {
    bu_series rtt[RAW_NPATHS];       /* us per 64-byte round trip */
    bu_series bulk[RAW_NPATHS];      /* MiB/s, one way */
    bu_series duplex[RAW_NPATHS];    /* MiB/s, both ways added */
    bu_series cpu[RAW_NPATHS];       /* relay CPU s per GiB relayed */
    bu_series rtt_r[RAW_NPATHS], bulk_r[RAW_NPATHS], duplex_r[RAW_NPATHS];   /* / direct */
    bu_series vs_floor;              /* epmdpxy bulk / best minimal relay's, same run */
    bu_series vs_floor_mss0;         /* the same for epmdpxy --mss 0 */
    int skipped[RAW_NPATHS];         /* the tool is not installed */
    bu_series connect_us[2];         /* us per connect() to a non-member: plain, shim */
    bu_series connect_r;             /* shim / plain */
} raw_figures;

typedef struct raw_config {
    int runs;
    int rtt_count;        /* round trips per run (BENCH_RAW_RTT, 20000) */
    int bulk_mib;         /* MiB per bulk run (BENCH_RAW_MIB, 1024) */
    const char *epmdpxy;  /* the daemon binary */
    const char *preload;  /* the shim (libepx_preload.so); NULL: no app link path */
    int connects;         /* connect()s per run and side (BENCH_RAW_CONNECTS, 2000) */
    const char *log_dir;
    void (*say)(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
} raw_config;

/* Run the section; figures go to f.  Never fails: a path that cannot be set
 * up is reported through cfg->say and left without samples. */
void raw_section(const raw_config *cfg, raw_figures *f);

/* A relay process (socat, haproxy or a minimal relay) in front of
 * 127.0.0.1:target_port, listening on 127.0.0.1:port; bench/bench.c puts
 * one in front of a real node as well. */
typedef struct raw_relay {
    pid_t pid;
    int port;
    char log[1100], conf[1100];   /* removed by raw_relay_stop */
} raw_relay;

/* Start one and wait until it accepts.  0, or -1 (nothing left running). */
int raw_relay_start(int path, int target_port, const char *log_dir, raw_relay *r);
/* Kill and reap it. */
void raw_relay_stop(raw_relay *r);
/* Its CPU time so far (children included), seconds; -1. */
double raw_relay_cpu_s(const raw_relay *r);

/* The helper processes of the app link path and of the connect() cost are
 * this program run again with argv[1] "--raw-helper".  Their exit code if
 * argv asks for one, else -1 (then main goes on). */
int raw_helper_main(int argc, char **argv);

/* The short name of a path ("socat", "min 1 MiB", ...). */
const char *raw_path_name(int path);

#endif
