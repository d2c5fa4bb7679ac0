/* The test acting as Erlang nodes, without Erlang: register a fake node
 * with the daemon (EPMD ALIVE2), look up its proxy port, open initiator
 * connections through the proxy, accept them on the fake node's side and
 * play the distribution handshake frames; plus a buffered line reader for
 * the control port and checked parsers for its JSON payloads.
 *
 * Every socket made here is tracked: fn_close_all() (call it in teardown)
 * closes whatever a failed test left open.  All functions return 0 / an fd
 * on success and -1 on failure, with a message in fn_err(). */
#ifndef FAKENODE_H
#define FAKENODE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* The last failure's message. */
const char *fn_err(void);

/* ---- fd bookkeeping ---- */
int fn_track(int fd);            /* returns fd */
void fn_close(int fd);           /* close and forget; ignores -1 */
void fn_close_rst(int fd);       /* SO_LINGER 0 then close: the peer gets RST */
void fn_close_all(void);         /* close every tracked fd */

/* Raise this process's RLIMIT_NOFILE soft limit to the hard limit; returns
 * the new soft limit. */
long fn_raise_nofile(void);

/* ---- sockets (127.0.0.1 only) ---- */
/* Listen on 127.0.0.1:0; *port gets the port.  fd or -1. */
int fn_listen(int *port);
/* Blocking connect with 5 s send/receive timeouts.  fd, or -1 with *err set
 * to errno (err may be NULL). */
int fn_connect(int port, int *err);
/* 1 if lfd has a connection waiting within timeout_ms, 0 if not. */
int fn_pending(int lfd, int timeout_ms);
/* Accept one connection within timeout_ms (5 s socket timeouts set). */
int fn_accept(int lfd, int timeout_ms);
int fn_nodelay(int fd);
/* Write all bytes (MSG_NOSIGNAL): 0 or -1. */
int fn_send_all(int fd, const void *buf, size_t n);
/* Read until EOF within timeout_ms: 1 if EOF (or connection reset, which
 * sets *reset), 0 on timeout; bytes read are discarded but counted. */
int fn_wait_eof(int fd, int timeout_ms, size_t *nread, int *reset);

/* Move n1 bytes a->b and n2 bytes b->a at the same time, in random chunk
 * sizes, from deterministic streams seeded `seed`; every byte is checked.
 * 0, or -1 on a difference, an early EOF/error or the timeout. */
int fn_xfer(int a, int b, size_t n1, size_t n2, uint64_t seed, int timeout_ms);

/* 0 while the daemon runs; -1 (with its exit status and the end of its
 * log in fn_err()) once it has exited, in which case it is reaped and
 * d->pid is cleared. */
struct tu_daemon;
int fn_daemon_alive(struct tu_daemon *d);
/* Wait up to timeout_ms for the daemon to exit by itself; its waitpid
 * status, or -1 if it is still running. */
int fn_daemon_wait_exit(struct tu_daemon *d, int timeout_ms);

/* A one-line description of pid's open fds ("5=tcp:127.0.0.1:4369 LISTEN
 * 7=pipe ..."), for failure messages; a static buffer. */
const char *fn_fd_describe(pid_t pid);

/* Resident set size of pid in KiB (VmRSS), -1 on error. */
long fn_rss_kib(pid_t pid);

/* ---- EPMD ---- */
/* Send ALIVE2 (type 'M', protocol 0, versions 6/5, no extra) for `name`
 * with node port `node_port`; expect `v 0 Creation:32` in one read.  The
 * returned fd is the registration: closing it unregisters. */
int fn_alive2(int epmd_port, const char *name, int node_port, uint32_t *creation);
/* PORT_PLEASE2 for `name`: the port in the `w 0` reply, 0 if the daemon
 * answered "not found" (77 01), -1 on any other answer. */
int fn_port_please(int epmd_port, const char *name);

typedef struct fn_node {
    char name[64];      /* short name, as registered */
    int lfd;            /* the fake node's own listener */
    int port;           /* its port */
    int reg;            /* the ALIVE2 connection */
    uint32_t creation;
    int proxy_port;     /* from PORT_PLEASE2 */
} fn_node;

/* Listen, register, look up the proxy port. */
int fn_node_start(fn_node *n, int epmd_port, const char *name);
/* Close the registration (unregisters; the listener stays). */
void fn_node_unregister(fn_node *n);
void fn_node_stop(fn_node *n);

/* ---- handshake frames (Len:16 + body); each returns the frame length ---- */
#define FN_FLAGS 0x0000000d07df7fbdULL
size_t fn_frame_send_name(uint8_t *buf, const char *full, uint64_t flags, uint32_t creation);
size_t fn_frame_old_send_name(uint8_t *buf, const char *full, uint32_t flags);
size_t fn_frame_status(uint8_t *buf, const char *status);
size_t fn_frame_challenge(uint8_t *buf, const char *full, uint64_t flags,
                          uint32_t challenge, uint32_t creation);
size_t fn_frame_reply(uint8_t *buf, uint32_t challenge);
size_t fn_frame_ack(uint8_t *buf);

/* Write buf on src and read exactly the same bytes on dst within
 * timeout_ms: 0, or -1 if anything differs or is missing. */
int fn_pass(int src, int dst, const void *buf, size_t n, int timeout_ms);

/* One proxied connection: ini is the initiator's socket (to the proxy
 * port), acc the fake node's accepted socket. */
typedef struct fn_link {
    int ini;
    int acc;
    uint64_t out;       /* bytes sent initiator -> acceptor so far */
    uint64_t in;        /* bytes sent acceptor -> initiator so far */
} fn_link;

/* Connect to n's proxy port as `from_full`, send the 'N' first frame and
 * accept the daemon's connection on n's listener; the frame must arrive
 * byte-exact. */
int fn_link_open(fn_link *l, fn_node *n, const char *from_full);
/* Like fn_link_open with a caller-made first frame. */
int fn_link_open_frame(fn_link *l, fn_node *n, const uint8_t *frame, size_t len);
/* Play status "ok", challenge (naming `to_full`), reply, ack through the
 * link, checking each frame arrives byte-exact. */
int fn_link_handshake(fn_link *l, const char *to_full);
void fn_link_close(fn_link *l);

/* ---- control port ---- */
typedef struct fn_ctl {
    int fd;
    char *buf;
    size_t len, cap;
    size_t used;        /* length of the line returned last, with its \n */
} fn_ctl;
int fn_ctl_open(fn_ctl *c, int port);
void fn_ctl_close(fn_ctl *c);
/* Send raw bytes. */
int fn_ctl_send(fn_ctl *c, const char *s, size_t n);
/* Next reply line (without \n / \r\n) within timeout_ms.  The pointer is
 * valid until the next call.  NULL on timeout/EOF/overlong line. */
char *fn_ctl_line(fn_ctl *c, int timeout_ms);
/* Bytes received beyond the line fn_ctl_line returned last. */
size_t fn_ctl_buffered(const fn_ctl *c);
/* One command on a fresh connection; a malloc'd reply line or NULL. */
char *fn_ctl_cmd(int port, const char *cmd);

/* ---- JSON ---- */
/* 1 if s[0..n) is exactly one valid JSON value (RFC 8259, strict). */
int fn_json_valid(const char *s, size_t n);

typedef struct fn_status {
    char version[64];
    long long epmd_port, control_port;
    char mode[32];
    long long nodes, links, rules;
} fn_status;

typedef struct fn_nodeinfo {
    char name[256];
    char node[256];     /* "" when the payload says null */
    int node_null;
    long long port, proxy_port, creation;
} fn_nodeinfo;

typedef struct fn_linkinfo {
    long long id;
    char from[256];
    char to[256];
    char state[32];     /* handshake, up, held, closed */
    char held[8];       /* none, out (from -> to), in, both */
    long long bytes_out, bytes_in;
} fn_linkinfo;

/* Parse a STATUS / NODES / LINKS payload (the text after "OK "), checking
 * it is valid JSON with every documented field of the documented type.
 * Return 0 (status) or the number of entries (at most max are stored), -1
 * with a message in fn_err(). */
int fn_parse_status(const char *json, fn_status *st);
int fn_parse_nodes(const char *json, fn_nodeinfo *out, int max);
int fn_parse_links(const char *json, fn_linkinfo *out, int max);

/* Ask the daemon and parse: like the above but sends the command. */
int fn_get_status(int ctl_port, fn_status *st);
int fn_get_nodes(int ctl_port, fn_nodeinfo *out, int max);
int fn_get_links(int ctl_port, fn_linkinfo *out, int max);

/* ---- deterministic data ---- */
/* xorshift64*; fn_rng_fill gives the same byte stream however it is cut. */
typedef struct fn_rng { uint64_t s, w; int left; } fn_rng;
void fn_rng_seed(fn_rng *r, uint64_t seed);
uint64_t fn_rng_next(fn_rng *r);
uint32_t fn_rng_below(fn_rng *r, uint32_t n);
void fn_rng_fill(fn_rng *r, void *buf, size_t n);

#endif
