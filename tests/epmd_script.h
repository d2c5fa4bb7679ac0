/* Scripted EPMD exchanges for the interop and CLI suites.
 *
 * A script is a table of steps.  Each step opens a connection (or acts on a
 * connection held open by an earlier step), sends bytes written in a small
 * hex notation, and records what came back and how the connection ended.
 * The same script is played against OTP's epmd and against epmdpxy; the
 * outcomes are masked (creations, ports, fds) and compared byte for byte.
 *
 * Byte notation (es_bytes), tokens separated by blanks:
 *   0e78 4d        hex, two digits per byte (any even number of digits)
 *   ??             (in expectations) one masked byte: a creation or a port
 *   'foo bar'      the ASCII bytes between the quotes
 *   T*N            token T repeated N times: 61*255, c3a9*3, 'ab'*2
 *   @T             token T preceded by its length as 16 bits: @'foo' is
 *                  00 03 66 6f 6f, @'' is 00 00, @61*300 is 01 2c 61...
 *   L              a 16-bit length of every byte after it, up to `|` or
 *                  the end: "L 6e" is 00 01 6e
 *   |              ends the span counted by L: "L 6e | 00" is 00 01 6e 00
 */
#ifndef EPMD_SCRIPT_H
#define EPMD_SCRIPT_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "testutil.h"

/* ---- byte notation ---------------------------------------------------- */

typedef struct es_buf {
    uint8_t *b;        /* bytes */
    uint8_t *wild;     /* 1 where the byte is masked (`??`) */
    size_t n, cap;
} es_buf;

void es_buf_free(es_buf *b);
void es_buf_put(es_buf *b, const void *p, size_t n, int wild);
/* Parse notation into *out (appending).  0, or -1 with a message in err. */
int es_bytes(const char *text, es_buf *out, char *err, size_t errlen);

/* ---- servers ----------------------------------------------------------- */

typedef enum { ES_OTP, ES_OURS } es_kind;

typedef struct es_server {
    es_kind kind;
    const char *name;   /* "otp" or "epmdpxy", for messages */
    int port;           /* EPMD port */
    pid_t pid;          /* -1 once reaped */
    int status;         /* waitpid status once reaped */
    tu_daemon d;        /* ES_OURS only */
    char log[256];      /* server's stderr */
} es_server;

/* Path of OTP's epmd ($EPX_OTP_EPMD, else /usr/bin/epmd). */
const char *es_otp_epmd_path(void);
/* Start OTP's epmd in the foreground on a free loopback port with `opts`
 * (NULL-terminated, may be NULL) and wait up to 10 s until it accepts.
 * 0 or -1. */
int es_otp_start(es_server *s, const char *const *opts);
/* Same for epmdpxy (through tu_daemon_start). */
int es_ours_start(es_server *s, const char *const *opts);
/* Wait up to timeout_ms for the server to exit by itself.  1 if it exited
 * (s->status holds the status), 0 if it is still running. */
int es_server_wait_exit(es_server *s, int timeout_ms);
/* Stop (SIGTERM, then SIGKILL) and reap, if still running.  Idempotent. */
void es_server_stop(es_server *s);

/* Every process spawned through this file is recorded; es_reap_all kills
 * (SIGKILL) and reaps whatever is still recorded.  For teardowns. */
void es_reap_all(void);

/* ---- running programs -------------------------------------------------- */

typedef struct es_run_result {
    int status;         /* waitpid status; -1 if killed on timeout */
    int timed_out;
    long ms;            /* how long it ran */
    char *out, *err;    /* NUL-terminated (may contain NULs: see lengths) */
    size_t out_n, err_n;
} es_run_result;

/* Run argv[0] with argv, with environment changes env ("K=V" sets, "K"
 * unsets; NULL-terminated, may be NULL), stdin /dev/null, stdout/stderr into
 * files.  Waits for the process itself (not for its output to close), up to
 * timeout_ms, then SIGKILLs it.  0 if it exited, -1 on timeout or spawn
 * error. */
int es_run(const char *const *argv, const char *const *env, int timeout_ms,
           es_run_result *r);
void es_run_free(es_run_result *r);
/* Spawn a long-running child like es_run, stdout into a pipe (*out_fd) and
 * stderr into `errlog`; recorded for es_reap_all.  Returns the pid or -1. */
pid_t es_spawn(const char *const *argv, const char *const *env, int *out_fd,
               const char *errlog);
/* Wait up to timeout_ms for a recorded child; 1 if reaped (*status set). */
int es_wait_pid(pid_t pid, int timeout_ms, int *status);
/* SIGKILL + reap a recorded child. */
void es_kill_pid(pid_t pid);

/* ---- scripts ----------------------------------------------------------- */

typedef enum {
    ES_REQ = 0,     /* new connection, send `req` */
    ES_SEND_ON,     /* send `req` on the connection held in `slot` */
    ES_HALFCLOSE,   /* shutdown(SHUT_WR) the connection in `slot`: the
                       server sees the same FIN as after close(), and its
                       own close tells us it has processed it */
    ES_WAIT_EOF,    /* send nothing; read what `slot` gets until it closes */
    ES_EXIT,        /* the server process must exit by itself */
} es_op;

typedef enum {
    ES_WHOLE = 0,   /* the request in one write */
    ES_BYTEWISE,    /* one byte per write, TCP_NODELAY, each sent once the
                       server has read the previous one (its rx_queue in
                       /proc/net/tcp is empty) */
    ES_TRAILING,    /* the request and then `trail` in the same write */
    ES_THEN_FIN,    /* the request in one write, then shutdown(SHUT_WR) */
} es_how;

typedef enum {
    ES_X_ANY = 0,
    ES_X_CLOSED,    /* the server closed the connection (FIN or RST) */
    ES_X_OPEN,      /* still open when we stopped reading */
    ES_X_EXIT0,     /* ES_EXIT: exited with status 0 */
} es_expect_end;

typedef struct es_step {
    const char *desc;
    const char *req;        /* notation; the request */
    es_op op;
    es_how how;
    const char *trail;      /* ES_TRAILING: bytes sent after the request */
    int slot;               /* ES_REQ: 0 = close after; k>0 = keep in slot k
                               (and wait until the server has read what was
                               sent, so later bytes come in a read of their
                               own).
                               other ops: the slot acted on */
    const char *expect;     /* notation; the expected reply after masking;
                               NULL = only compare the two servers */
    es_expect_end end;
    int quiet_ms;           /* how long to wait for a reply that never
                               comes (default 3000 ms) */
    int v6;                 /* ES_REQ: connect to [::1] instead of 127.0.0.1 */
    int settle_ms;          /* once an ALIVE2 reply is complete, how long
                               to watch for more bytes or a close (default
                               100 ms; -1: not at all) */
} es_step;

typedef enum { ES_END_OPEN, ES_END_EOF, ES_END_RESET, ES_END_NOCONN,
               ES_END_EXIT, ES_END_ERROR } es_end;

typedef struct es_outcome {
    es_buf raw;          /* bytes as received */
    es_buf masked;       /* after masking */
    es_end end;
    int exit_status;     /* ES_EXIT */
    int port_word;       /* NAMES/DUMP: 1 = first 4 bytes = server port,
                            0 = they were not, -1 = not applicable */
    long ms;             /* from sending to the end of reading */
} es_outcome;

#define ES_MAX_SLOTS 32

typedef struct es_play {
    es_server *srv;
    int slots[ES_MAX_SLOTS + 1];
    uint8_t head[ES_MAX_SLOTS + 1][3];  /* first bytes sent on each slot: */
    size_t headn[ES_MAX_SLOTS + 1];     /* the command byte masks replies */
    size_t nsteps;
    es_outcome *out;     /* one per step */
} es_play;

/* Play steps against srv.  Each outcome is masked; never fails the test by
 * itself (returns 0, -1 only on notation errors, with err set). */
int es_play_run(es_play *p, es_server *srv, const es_step *steps, size_t n,
                char *err, size_t errlen);
/* Close every held connection and free the outcomes. */
void es_play_free(es_play *p);

/* Check a's outcomes against the steps' expectations and, if b is non-NULL,
 * against b's (byte for byte after masking, and open/closed).  Appends one
 * paragraph per difference to *report (malloc'ed, may be NULL on entry);
 * returns the number of differences.  With EPX_SCRIPT_VERBOSE set, every
 * step's outcome on both servers is printed to stderr. */
int es_check(const es_step *steps, size_t n, const es_play *a,
             const es_play *b, char **report);

/* Hex dump of a buffer, `??` for masked bytes, ASCII shown beside printable
 * runs; at most `max` bytes then "...".  Returns out. */
char *es_hex(const es_buf *b, size_t max, char *out, size_t outlen);
/* Mask a reply in place according to the request's command byte. */
void es_mask(int cmd, int server_port, const es_buf *raw, es_buf *masked,
             int *port_word);
/* Creation value of an ALIVE2 reply ('v': 32 bits, 'y': 16 bits); -1 if the
 * reply is not a successful ALIVE2 reply. */
long long es_creation(const es_outcome *o);

/* Append printf-style text to a malloc'ed string. */
void es_appendf(char **s, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* NAMES on 127.0.0.1:port; 1 if the reply starts with the port itself. */
int es_names_probe(int port);
/* Read one line (without its newline) from fd within timeout_ms; 0 or -1. */
int es_read_line(int fd, char *out, size_t len, int timeout_ms);
/* The pid of the process listening on 127.0.0.1:port (or [::1]:port, or a
 * wildcard), found through /proc; -1 if none. */
pid_t es_pid_listening_on(int port);
/* How many processes hold that listening socket (a forking daemon's
 * parent, until it has exited, holds it too); *first gets one, or -1. */
int es_pids_listening_on(int port, pid_t *first);
/* Mask "port N", "port = N", "fd = N" (N decimal) to '#' in text, in place;
 * returns the new length. */
size_t es_mask_text(char *s, size_t n);

/* 1 if something accepts TCP connections on 127.0.0.1:port. */
int es_port_open(int port);
/* A port P such that P and P+1 were both free a moment ago; -1 if none. */
int es_free_port_pair(void);

#endif
