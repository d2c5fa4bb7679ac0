#include "rawtcp.h"
#include "spawn.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#define RTT_MSG    64
#define IO_CHUNK   (1024 * 1024)
#define SINK_NAME  "rawsink"
#define READY_MS   10000
#define HELPER_MS  600000   /* one helper run (1 GiB on a slow machine included) */
#define APP_SINK   "rawappsink"
#define APP_CLIENT "rawappclient"

static const char *path_names[RAW_NPATHS] = {
    "direct", "epmdpxy", "epmdpxy --mss 0", "app link", "socat", "haproxy", "min relay 64 KiB",
    "min relay 1 MiB", "min splice 1 MiB",
};

const char *raw_path_name(int path)
{
    return path >= 0 && path < RAW_NPATHS ? path_names[path] : "?";
}

/* ---- sockets ---------------------------------------------------------- */

static int listen_loopback(int *port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    socklen_t al = sizeof a;
    if (bind(fd, (struct sockaddr *)&a, sizeof a) < 0 || listen(fd, 64) < 0 ||
        getsockname(fd, (struct sockaddr *)&a, &al) < 0) {
        close(fd);
        return -1;
    }
    *port = ntohs(a.sin_port);
    return fd;
}

static int connect_loopback(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    if (connect(fd, (struct sockaddr *)&a, sizeof a) < 0) {
        close(fd);
        return -1;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    return fd;
}

static int write_all(int fd, const void *p, size_t n)
{
    const uint8_t *b = p;
    while (n > 0) {
        ssize_t k = write(fd, b, n);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            return -1;
        b += k;
        n -= (size_t)k;
    }
    return 0;
}

static int read_all(int fd, void *p, size_t n)
{
    uint8_t *b = p;
    while (n > 0) {
        ssize_t k = read(fd, b, n);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            return -1;
        b += k;
        n -= (size_t)k;
    }
    return 0;
}

static void set_nonblock(int fd)
{
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
}

static void put16(uint8_t *b, unsigned v)
{
    b[0] = (uint8_t)(v >> 8);
    b[1] = (uint8_t)v;
}

static void put64(uint8_t *b, uint64_t v)
{
    for (int i = 7; i >= 0; i--, v >>= 8)
        b[i] = (uint8_t)v;
}

static uint64_t get64(const uint8_t *b)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = v << 8 | b[i];
    return v;
}

/* ---- the sink ---------------------------------------------------------- */

/* Every connection opens with a distribution send_name frame (epmdpxy
 * needs one to know who talks; the other paths pass it on as bytes), then
 * one op byte and a 64-bit argument:
 *   'P'  echo RTT_MSG-byte messages until EOF
 *   'B'  read until EOF, then answer the byte count (8 bytes)
 *   'D'  send arg bytes while reading until EOF (both ways at once) */
static uint8_t hello[64];
static size_t hello_len;

static void make_hello(void)
{
    static const char name[] = "rawclient@localhost";
    size_t nl = sizeof name - 1;
    uint8_t *b = hello + 2;
    memset(hello, 0, sizeof hello);
    b[0] = 'N';
    /* flags: the handshake-23 bit and a few every node sets; creation 1 */
    put64(b + 1, (1ULL << 24) | (1ULL << 2) | (1ULL << 8));
    b[12] = 1;
    put16(b + 13, (unsigned)nl);
    memcpy(b + 15, name, nl);
    put16(hello, (unsigned)(15 + nl));
    hello_len = 2 + 15 + nl;
}

/* Both ways at once on a blocking-turned-non-blocking fd: send n bytes from
 * buf (repeated), read until EOF.  Returns bytes read, -1 on error. */
static long long duplex_io(int fd, uint8_t *buf, size_t cap, uint64_t n)
{
    set_nonblock(fd);
    uint64_t sent = 0;
    long long got = 0;
    int wdone = n == 0, rdone = 0;
    if (wdone)
        shutdown(fd, SHUT_WR);
    while (!rdone || !wdone) {
        struct pollfd p = { .fd = fd, .events = (short)((rdone ? 0 : POLLIN) |
                                                          (wdone ? 0 : POLLOUT)) };
        if (poll(&p, 1, 60000) <= 0)
            return -1;
        if (!rdone && (p.revents & (POLLIN | POLLHUP | POLLERR))) {
            ssize_t k = read(fd, buf, cap);
            if (k == 0)
                rdone = 1;
            else if (k > 0)
                got += k;
            else if (errno != EAGAIN && errno != EINTR)
                return -1;
        }
        if (!wdone && (p.revents & POLLOUT)) {
            size_t want = n - sent < cap ? (size_t)(n - sent) : cap;
            ssize_t k = send(fd, buf, want, MSG_NOSIGNAL);
            if (k > 0)
                sent += (uint64_t)k;
            else if (k < 0 && errno != EAGAIN && errno != EINTR)
                return -1;
            if (sent == n) {
                shutdown(fd, SHUT_WR);
                wdone = 1;
            }
        }
    }
    return got;
}

static void sink_conn(int fd, uint8_t *buf)
{
    uint8_t h[2], op[9];
    if (read_all(fd, h, 2) < 0)
        return;
    size_t len = (size_t)h[0] << 8 | h[1];
    if (len > 4096 || read_all(fd, buf, len) < 0 || read_all(fd, op, sizeof op) < 0)
        return;
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    uint64_t arg = get64(op + 1);
    if (op[0] == 'P') {
        uint8_t m[RTT_MSG];
        while (read_all(fd, m, sizeof m) == 0 && write_all(fd, m, sizeof m) == 0) {}
    } else if (op[0] == 'B') {
        uint64_t got = 0;
        for (;;) {
            ssize_t k = read(fd, buf, IO_CHUNK);
            if (k < 0 && errno == EINTR)
                continue;
            if (k <= 0)
                break;
            got += (uint64_t)k;
        }
        uint8_t r[8];
        put64(r, got);
        write_all(fd, r, sizeof r);
    } else if (op[0] == 'D') {
        duplex_io(fd, buf, IO_CHUNK, arg);
    }
}

static void sink_main(int lfd)
{
    uint8_t *buf = malloc(IO_CHUNK);
    if (!buf)
        _exit(1);
    memset(buf, 0x5a, IO_CHUNK);
    for (;;) {
        int fd = accept(lfd, NULL, NULL);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED)
                continue;
            _exit(1);
        }
        sink_conn(fd, buf);
        close(fd);
    }
}

static void sink_entry(void *p)
{
    sink_main(*(int *)p);
}

/* The target of the connect() cost: accept and close at once, so that the
 * accept queue never fills (a full one drops SYNs: a 1 s retransmit). */
static void drain_entry(void *p)
{
    int lfd = *(int *)p;
    for (;;) {
        int fd = accept(lfd, NULL, NULL);
        if (fd >= 0)
            close(fd);
        else if (errno != EINTR && errno != ECONNABORTED)
            _exit(1);
    }
}

/* ---- the minimal relays ---------------------------------------------- */

/* One direction of a minimal relay: bytes from src to dst through a
 * buffer (read/write) or a pipe (splice). */
typedef struct mdir {
    int src, dst;
    uint8_t *buf;
    size_t off, len;       /* read/write: pending buf[off..len) */
    int pipe[2];           /* splice: the pipe; len counts what is in it */
    int eof, done;
} mdir;

static void mdir_move(mdir *d, size_t chunk, int use_splice)
{
    for (int rounds = 0; rounds < 64; rounds++) {
        int progress = 0;
        int may_read = use_splice ? d->len < chunk : d->off == d->len;
        if (!d->eof && may_read) {
            ssize_t k;
            if (use_splice)
                k = splice(d->src, NULL, d->pipe[1], NULL, chunk - d->len,
                           SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
            else
                k = read(d->src, d->buf, chunk);
            if (k == 0) {
                d->eof = 1;
            } else if (k > 0) {
                if (use_splice) {
                    d->len += (size_t)k;
                } else {
                    d->off = 0;
                    d->len = (size_t)k;
                }
                progress = 1;
            }
        }
        size_t pending = use_splice ? d->len : d->len - d->off;
        if (pending > 0) {
            ssize_t k;
            if (use_splice)
                k = splice(d->pipe[0], NULL, d->dst, NULL, pending,
                           SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
            else
                k = send(d->dst, d->buf + d->off, pending, MSG_NOSIGNAL);
            if (k > 0) {
                if (use_splice)
                    d->len -= (size_t)k;
                else
                    d->off += (size_t)k;
                progress = 1;
            } else if (k < 0 && errno != EAGAIN && errno != EINTR) {
                d->eof = 1;
                d->len = d->off = 0;
            }
        }
        pending = use_splice ? d->len : d->len - d->off;
        if (d->eof && pending == 0 && !d->done) {
            shutdown(d->dst, SHUT_WR);
            d->done = 1;
        }
        if (!progress)
            return;
    }
}

static void minrelay_conn(int cfd, int sink_port, size_t chunk, int use_splice)
{
    int sfd = connect_loopback(sink_port);
    if (sfd < 0)
        return;
    int one = 1;
    setsockopt(cfd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    set_nonblock(cfd);
    set_nonblock(sfd);
    mdir d[2] = { { .src = cfd, .dst = sfd }, { .src = sfd, .dst = cfd } };
    for (int i = 0; i < 2; i++) {
        if (use_splice) {
            if (pipe2(d[i].pipe, O_CLOEXEC | O_NONBLOCK) < 0)
                goto out;
            fcntl(d[i].pipe[1], F_SETPIPE_SZ, (int)chunk);
        } else if (!(d[i].buf = malloc(chunk))) {
            goto out;
        }
    }
    while (!d[0].done || !d[1].done) {
        struct pollfd p[2] = { { .fd = cfd }, { .fd = sfd } };
        for (int i = 0; i < 2; i++) {
            mdir *x = &d[i];
            size_t pending = use_splice ? x->len : x->len - x->off;
            int may_read = use_splice ? x->len < chunk : pending == 0;
            if (!x->eof && may_read)
                p[i].events |= POLLIN;
            if (pending > 0)
                p[1 - i].events |= POLLOUT;
        }
        if (poll(p, 2, 60000) <= 0)
            break;
        mdir_move(&d[0], chunk, use_splice);
        mdir_move(&d[1], chunk, use_splice);
    }
out:
    for (int i = 0; i < 2; i++) {
        free(d[i].buf);
        if (use_splice && d[i].pipe[0] > 0) {
            close(d[i].pipe[0]);
            close(d[i].pipe[1]);
        }
    }
    close(sfd);
}

static void minrelay_main(int lfd, int sink_port, size_t chunk, int use_splice)
{
    for (;;) {
        int fd = accept(lfd, NULL, NULL);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED)
                continue;
            _exit(1);
        }
        minrelay_conn(fd, sink_port, chunk, use_splice);
        close(fd);
    }
}

/* ---- processes --------------------------------------------------------- */


/* fork a child with PR_SET_PDEATHSIG that runs fn with only fds 0-2 and
 * keep open: no exec, so O_CLOEXEC closes nothing, and a node's stdin pipe
 * held open here would keep that node from seeing EOF when the bench stops
 * it.  -1 on failure. */
static pid_t spawn_fn(void (*fn)(void *), void *arg, int keep)
{
    prctl(PR_SET_CHILD_SUBREAPER, 1);
    pid_t pid = fork();
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (keep < 3)
            _exit(1);   /* callers pass a socket of their own */
        spawn_close_all_but(keep);
        setpgid(0, 0);
        signal(SIGINT, SIG_DFL);
        signal(SIGTERM, SIG_DFL);
        signal(SIGHUP, SIG_DFL);
        fn(arg);
        _exit(0);
    }
    if (pid > 0)
        bu_track(pid);
    return pid;
}

/* exec argv with PR_SET_PDEATHSIG, stdout and stderr to log; -1. */
static pid_t spawn_exec(char *const argv[], const char *log, int *stdout_pipe)
{
    int pfd[2] = { -1, -1 };
    if (stdout_pipe && pipe2(pfd, O_CLOEXEC) < 0)
        return -1;
    prctl(PR_SET_CHILD_SUBREAPER, 1);
    pid_t pid = fork();
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        setpgid(0, 0);
        int lfd = open(log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        int nul = open("/dev/null", O_RDONLY | O_CLOEXEC);
        if (nul >= 0)
            dup2(nul, 0);
        if (lfd >= 0) {
            dup2(stdout_pipe ? pfd[1] : lfd, 1);
            dup2(lfd, 2);
        }
        signal(SIGINT, SIG_DFL);
        signal(SIGTERM, SIG_DFL);
        signal(SIGPIPE, SIG_DFL);
        execvp(argv[0], argv);
        _exit(127);
    }
    if (stdout_pipe) {
        close(pfd[1]);
        if (pid < 0)
            close(pfd[0]);
        else
            *stdout_pipe = pfd[0];
    }
    if (pid > 0)
        bu_track(pid);
    return pid;
}

/* Kill a child and whatever it forked (socat forks per connection: its
 * own process group), and reap them all: this process is their subreaper.
 * The subreaper flag, set by the first spawn, stays for the rest of the
 * run, so every descendant orphaned later (a node's inet_gethost in the
 * sections after) comes to this process too: bench.c reaps those with
 * bu_reap_adopted. */
static void stop_child(pid_t pid)
{
    if (pid <= 0)
        return;
    kill(-pid, SIGKILL);
    kill(pid, SIGKILL);
    bu_waitpid(pid, NULL, 0);
    while (bu_waitpid(-pid, NULL, 0) > 0) {}
}

/* Wait until something accepts on port (a probe connection is made and
 * closed: every relay here survives one).  0, or -1 after READY_MS. */
static int await_listening(int port)
{
    for (long long end = bu_mono_us() + READY_MS * 1000LL; bu_mono_us() < end;) {
        int fd = connect_loopback(port);
        if (fd >= 0) {
            close(fd);
            return 0;
        }
        bu_sleep_ms(10);
    }
    return -1;
}

static int in_path(const char *prog)
{
    const char *path = getenv("PATH");
    char buf[4096], file[4200];
    snprintf(buf, sizeof buf, "%s", path ? path : "/usr/bin:/bin");
    for (char *save = NULL, *d = strtok_r(buf, ":", &save); d; d = strtok_r(NULL, ":", &save)) {
        snprintf(file, sizeof file, "%s/%s", d, prog);
        if (access(file, X_OK) == 0)
            return 1;
    }
    return 0;
}

/* ---- epmdpxy ------------------------------------------------------------ */

typedef struct daemon_h {
    pid_t pid;
    int epmd_port;
    int control_port;
    int alive_fd;     /* the ALIVE2 connection that keeps the sink registered */
    int proxy_port;
    char log[1100];
} daemon_h;

/* Start the daemon (with its defaults, or with --mss 0), register the sink
 * with it, look up its proxy port.  0, or -1 (daemon_down still needed). */
static int daemon_up(daemon_h *d, const raw_config *cfg, int sink_port, int mss0)
{
    memset(d, 0, sizeof *d);
    d->alive_fd = -1;
    snprintf(d->log, sizeof d->log, "%s/raw-epmdpxy%s.log", cfg->log_dir, mss0 ? "-mss0" : "");
    char *argv[] = { (char *)cfg->epmdpxy, "--port", "0", "--control", "0", NULL, NULL, NULL };
    if (mss0) {
        argv[5] = "--mss";
        argv[6] = "0";
    }
    int out = -1;
    d->pid = spawn_exec(argv, d->log, &out);
    if (d->pid < 0)
        return -1;
    char line[256];
    size_t n = 0;
    struct pollfd p = { .fd = out, .events = POLLIN };
    while (n < sizeof line - 1 && poll(&p, 1, READY_MS) == 1) {
        ssize_t k = read(out, line + n, 1);
        if (k <= 0 || line[n] == '\n')
            break;
        n++;
    }
    line[n] = 0;
    close(out);
    if (sscanf(line, "READY epmd=%d control=%d", &d->epmd_port, &d->control_port) != 2)
        return -1;
    /* ALIVE2_REQ: 'x' PortNo NodeType Protocol HighestVersion LowestVersion Nlen Name Elen */
    uint8_t req[64];
    size_t nl = strlen(SINK_NAME);
    uint8_t *b = req + 2;
    b[0] = 'x';
    put16(b + 1, (unsigned)sink_port);
    b[3] = 77;
    b[4] = 0;
    put16(b + 5, 6);
    put16(b + 7, 6);
    put16(b + 9, (unsigned)nl);
    memcpy(b + 11, SINK_NAME, nl);
    put16(b + 11 + nl, 0);
    put16(req, (unsigned)(13 + nl));
    d->alive_fd = connect_loopback(d->epmd_port);
    uint8_t rep[16];
    if (d->alive_fd < 0 || write_all(d->alive_fd, req, 15 + nl) < 0 ||
        read_all(d->alive_fd, rep, 2) < 0 || rep[1] != 0)
        return -1;
    /* PORT_PLEASE2_REQ: 'z' Name -> 'w' Result PortNo ... */
    int fd = connect_loopback(d->epmd_port);
    if (fd < 0)
        return -1;
    put16(req, (unsigned)(1 + nl));
    req[2] = 'z';
    memcpy(req + 3, SINK_NAME, nl);
    int r = write_all(fd, req, 3 + nl) == 0 && read_all(fd, rep, 4) == 0 && rep[0] == 'w' &&
                    rep[1] == 0
                ? 0
                : -1;
    close(fd);
    if (r == 0)
        d->proxy_port = rep[2] << 8 | rep[3];
    return r;
}

static void daemon_down(daemon_h *d)
{
    if (d->alive_fd >= 0)
        close(d->alive_fd);
    d->alive_fd = -1;
    stop_child(d->pid);
    d->pid = 0;
    if (d->log[0])
        unlink(d->log);
    d->log[0] = 0;
}

/* Is the path epmdpxy's own relay (a daemon of this section's)? */
static int is_epmdpxy(int path)
{
    return path == RAW_EPMDPXY || path == RAW_EPMDPXY_MSS0;
}

/* ---- one path ----------------------------------------------------------- */

typedef struct minrelay_arg {
    int lfd, sink_port;
    size_t chunk;
    int use_splice;
} minrelay_arg;

static void minrelay_entry(void *p)
{
    minrelay_arg *a = p;
    minrelay_main(a->lfd, a->sink_port, a->chunk, a->use_splice);
}

int raw_relay_start(int path, int target_port, const char *log_dir, raw_relay *h)
{
    memset(h, 0, sizeof *h);
    char *log = h->log, *conf = h->conf, a1[128], a2[128];
    snprintf(log, sizeof h->log, "%s/relay-%d-%d.log", log_dir, path, target_port);
    switch (path) {
    case RAW_SOCAT: {
        h->port = bu_free_port();
        snprintf(a1, sizeof a1, "TCP-LISTEN:%d,bind=127.0.0.1,reuseaddr,fork,nodelay", h->port);
        snprintf(a2, sizeof a2, "TCP:127.0.0.1:%d,nodelay", target_port);
        char *argv[] = { "socat", a1, a2, NULL };
        h->pid = spawn_exec(argv, log, NULL);
        break;
    }
    case RAW_HAPROXY: {
        h->port = bu_free_port();
        snprintf(conf, sizeof h->conf, "%s/relay-%d.cfg", log_dir, target_port);
        FILE *f = fopen(conf, "w");
        if (!f)
            return -1;
        /* tcp mode, defaults otherwise: what a user would put in front */
        fprintf(f,
                "global\n  maxconn 64\n"
                "defaults\n  mode tcp\n  timeout connect 5s\n  timeout client 1h\n"
                "  timeout server 1h\n"
                "listen relay\n  bind 127.0.0.1:%d\n  server target 127.0.0.1:%d\n",
                h->port, target_port);
        fclose(f);
        char *argv[] = { "haproxy", "-db", "-f", conf, NULL };
        h->pid = spawn_exec(argv, log, NULL);
        break;
    }
    case RAW_MIN64K:
    case RAW_MIN1M:
    case RAW_SPLICE: {
        int lfd = listen_loopback(&h->port);
        if (lfd < 0)
            return -1;
        minrelay_arg a = { lfd, target_port, path == RAW_MIN64K ? 64 * 1024 : IO_CHUNK,
                           path == RAW_SPLICE };
        h->pid = spawn_fn(minrelay_entry, &a, lfd);
        close(lfd);
        break;
    }
    default:
        return -1;
    }
    if (h->pid <= 0 || await_listening(h->port) < 0) {
        raw_relay_stop(h);
        return -1;
    }
    return 0;
}

void raw_relay_stop(raw_relay *h)
{
    stop_child(h->pid);
    h->pid = 0;
    if (h->log[0])
        unlink(h->log);
    if (h->conf[0])
        unlink(h->conf);
    h->log[0] = h->conf[0] = 0;
}

double raw_relay_cpu_s(const raw_relay *h)
{
    return h->pid > 0 ? bu_proc_cpu_all_s(h->pid) : -1;
}

/* Set up the path in front of the sink (dh: the path's daemon, for the
 * epmdpxy paths).  0, or -1. */
static int path_up(int path, raw_relay *h, const raw_config *cfg, int sink_port,
                   const daemon_h *dh)
{
    memset(h, 0, sizeof *h);
    if (path == RAW_DIRECT) {
        h->port = sink_port;
        return 0;
    }
    if (is_epmdpxy(path)) {
        h->port = dh->proxy_port;
        return dh->proxy_port > 0 ? 0 : -1;
    }
    return raw_relay_start(path, sink_port, cfg->log_dir, h);
}

/* ---- the measurements ---------------------------------------------------- */

static int open_op(int port, char op, uint64_t arg)
{
    int fd = connect_loopback(port);
    if (fd < 0)
        return -1;
    uint8_t o[9];
    o[0] = (uint8_t)op;
    put64(o + 1, arg);
    if (write_all(fd, hello, hello_len) < 0 || write_all(fd, o, sizeof o) < 0) {
        close(fd);
        return -1;
    }
    return fd;
}

/* us per round trip on fd (an open 'P' connection, closed here), -1. */
static double measure_rtt_fd(int fd, int count)
{
    uint8_t m[RTT_MSG];
    memset(m, 7, sizeof m);
    double r = -1;
    long long t0 = 0;
    for (int i = -200; i < count; i++) {   /* 200 untimed */
        if (i == 0)
            t0 = bu_mono_us();
        if (write_all(fd, m, sizeof m) < 0 || read_all(fd, m, sizeof m) < 0)
            goto out;
    }
    r = (double)(bu_mono_us() - t0) / count;
out:
    close(fd);
    return r;
}

/* us per round trip, -1 on failure. */
static double measure_rtt(int port, int count)
{
    int fd = open_op(port, 'P', 0);
    return fd < 0 ? -1 : measure_rtt_fd(fd, count);
}

/* MiB/s one way, -1 on failure (also when the sink counted otherwise). */
static double measure_bulk(int port, int mib, uint8_t *buf)
{
    int fd = open_op(port, 'B', 0);
    if (fd < 0)
        return -1;
    double r = -1;
    long long t0 = bu_mono_us();
    for (int i = 0; i < mib; i++)
        if (write_all(fd, buf, IO_CHUNK) < 0)
            goto out;
    shutdown(fd, SHUT_WR);
    uint8_t c[8];
    if (read_all(fd, c, 8) < 0 || get64(c) != (uint64_t)mib * IO_CHUNK)
        goto out;
    r = mib / ((double)(bu_mono_us() - t0) / 1e6);
out:
    close(fd);
    return r;
}

/* MiB/s both ways added, -1 on failure. */
static double measure_duplex(int port, int mib, uint8_t *buf)
{
    uint64_t n = (uint64_t)mib * IO_CHUNK;
    int fd = open_op(port, 'D', n);
    if (fd < 0)
        return -1;
    long long t0 = bu_mono_us();
    long long got = duplex_io(fd, buf, IO_CHUNK, n);
    double r = got == (long long)n ? 2.0 * mib / ((double)(bu_mono_us() - t0) / 1e6) : -1;
    close(fd);
    return r;
}

/* ---- the app link path and the connect() cost: helper processes -------- */

/* Does the daemon on ctl_port list a live app link to port?  1, 0, -1. */
static int has_app_link(int ctl_port, int port)
{
    static char buf[1 << 16];
    int fd = connect_loopback(ctl_port);
    if (fd < 0)
        return -1;
    size_t n = 0;
    if (write_all(fd, "LINKS\n", 6) == 0) {
        while (n < sizeof buf - 1) {
            ssize_t k = read(fd, buf + n, sizeof buf - 1 - n);
            if (k <= 0)
                break;
            n += (size_t)k;
            if (memchr(buf + n - k, '\n', (size_t)k))
                break;
        }
    }
    close(fd);
    buf[n] = 0;
    char pat[64];
    snprintf(pat, sizeof pat, "\"kind\":\"app\",\"port\":%d,", port);
    return n ? strstr(buf, pat) != NULL : -1;
}

/* us per connect() to port (count of them, after 20 untimed), each socket
 * closed with an RST so that no TIME_WAIT piles up; -1. */
static double measure_connects(int port, int count)
{
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    struct linger lg = { 1, 0 };
    long long total = 0;
    for (int i = -20; i < count; i++) {
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
            return -1;
        long long t0 = bu_mono_us();
        int r = connect(fd, (struct sockaddr *)&a, sizeof a);
        long long t1 = bu_mono_us();
        setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
        close(fd);
        if (r < 0)
            return -1;
        if (i >= 0)
            total += t1 - t0;
    }
    return (double)total / count;
}

/* epx-bench --raw-helper sink                  a sink on a fresh port, printed
 * epx-bench --raw-helper client OP PORT ARG [CTL]
 *     OP P (ARG round trips), B or D (ARG MiB); with CTL, first check that
 *     the daemon there relays the connection as an app link
 * epx-bench --raw-helper connect PORT COUNT    us per connect()
 * Each prints its one figure on stdout. */
int raw_helper_main(int argc, char **argv)
{
    if (argc < 3 || strcmp(argv[1], "--raw-helper") != 0)
        return -1;
    if (!strcmp(argv[2], "sink")) {
        int port, lfd = listen_loopback(&port);   /* under the shim: APPLISTEN */
        if (lfd < 0)
            return 1;
        printf("%d\n", port);
        fflush(stdout);
        sink_main(lfd);
        return 1;
    }
    if (!strcmp(argv[2], "connect") && argc == 5) {
        double v = measure_connects(atoi(argv[3]), atoi(argv[4]));
        printf("%.3f\n", v);
        return v > 0 ? 0 : 1;
    }
    if (!strcmp(argv[2], "client") && (argc == 6 || argc == 7)) {
        int port = atoi(argv[4]), arg = atoi(argv[5]);
        uint8_t *buf = malloc(IO_CHUNK);
        if (!buf)
            return 1;
        memset(buf, 0xa5, IO_CHUNK);
        make_hello();
        double v = -1;
        if (argv[3][0] == 'P') {
            int fd = open_op(port, 'P', 0);
            if (fd >= 0 && argc == 7 && has_app_link(atoi(argv[6]), port) != 1) {
                fprintf(stderr, "epx-bench: the connection to port %d is not an app link\n",
                        port);
                return 3;
            }
            if (fd >= 0)
                v = measure_rtt_fd(fd, arg);
        } else if (argv[3][0] == 'B') {
            v = measure_bulk(port, arg, buf);
        } else if (argv[3][0] == 'D') {
            v = measure_duplex(port, arg, buf);
        }
        printf("%.3f\n", v);
        free(buf);
        return v > 0 ? 0 : 1;
    }
    fprintf(stderr, "epx-bench: bad --raw-helper arguments\n");
    return 2;
}

/* Start this program again as a helper (args after "--raw-helper"), under
 * the shim as member `node` unless node is NULL.  Its pid, its stdout on
 * *out; -1. */
static pid_t helper_start(const raw_config *cfg, const daemon_h *dh, const char *node,
                          const char *const args[], int *out)
{
    char self[1024], ctl[64];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n <= 0)
        return -1;
    self[n] = 0;
    snprintf(ctl, sizeof ctl, "127.0.0.1:%d", dh->control_port);
    char *argv[12];
    int k = 0;
    argv[k++] = "epx-bench";
    argv[k++] = "--raw-helper";
    for (int i = 0; args[i] && k < 11; i++)
        argv[k++] = (char *)args[i];
    argv[k] = NULL;
    int pfd[2];
    if (pipe2(pfd, O_CLOEXEC) < 0)
        return -1;
    prctl(PR_SET_CHILD_SUBREAPER, 1);
    pid_t pid = fork();
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        setpgid(0, 0);
        dup2(pfd[1], 1);
        signal(SIGINT, SIG_DFL);
        signal(SIGTERM, SIG_DFL);
        signal(SIGPIPE, SIG_DFL);
        if (node) {
            setenv("LD_PRELOAD", cfg->preload, 1);
            setenv("EPX_NODE", node, 1);
            setenv("EPX_CONTROL", ctl, 1);
        } else {
            unsetenv("EPX_NODE");
            unsetenv("EPX_CONTROL");
        }
        execv(self, argv);
        _exit(127);
    }
    close(pfd[1]);
    if (pid < 0) {
        close(pfd[0]);
        return -1;
    }
    bu_track(pid);
    *out = pfd[0];
    return pid;
}

/* Read one line from fd within ms; 0, or -1. */
static int read_line(int fd, char *line, size_t cap, int ms)
{
    size_t n = 0;
    long long end = bu_mono_us() + ms * 1000LL;
    while (n < cap - 1) {
        int left = (int)((end - bu_mono_us()) / 1000);
        struct pollfd p = { .fd = fd, .events = POLLIN };
        if (left <= 0 || poll(&p, 1, left) != 1)
            return -1;
        ssize_t k = read(fd, line + n, 1);
        if (k <= 0)
            return -1;
        if (line[n] == '\n')
            break;
        n++;
    }
    line[n] = 0;
    return 0;
}

/* Run a helper to its end; its figure, or -1. */
static double helper_run(const raw_config *cfg, const daemon_h *dh, const char *node,
                         const char *const args[])
{
    int out;
    pid_t pid = helper_start(cfg, dh, node, args, &out);
    if (pid < 0)
        return -1;
    char line[64];
    double v = -1;
    if (read_line(out, line, sizeof line, HELPER_MS) == 0)
        v = atof(line);
    close(out);
    int st = 0;
    bu_waitpid(pid, &st, 0);
    return WIFEXITED(st) && WEXITSTATUS(st) == 0 ? v : -1;
}

typedef struct run_out {
    double rtt, bulk, duplex, cpu;
} run_out;

/* The app link path: the client under the shim, to the app sink's port. */
static void measure_app(const raw_config *cfg, const daemon_h *dh, int app_port, run_out *o)
{
    char port[16], count[16], mib[16], half[16], ctl[16];
    snprintf(port, sizeof port, "%d", app_port);
    snprintf(count, sizeof count, "%d", cfg->rtt_count);
    snprintf(mib, sizeof mib, "%d", cfg->bulk_mib);
    snprintf(half, sizeof half, "%d", cfg->bulk_mib / 2 > 0 ? cfg->bulk_mib / 2 : 1);
    snprintf(ctl, sizeof ctl, "%d", dh->control_port);
    const char *rtt[] = { "client", "P", port, count, ctl, NULL };
    const char *bulk[] = { "client", "B", port, mib, NULL };
    const char *duplex[] = { "client", "D", port, half, NULL };
    o->rtt = helper_run(cfg, dh, APP_CLIENT, rtt);
    double c0 = bu_proc_cpu_all_s(dh->pid);
    o->bulk = helper_run(cfg, dh, APP_CLIENT, bulk);
    double c1 = bu_proc_cpu_all_s(dh->pid);
    if (c0 >= 0 && c1 >= 0 && o->bulk > 0)
        o->cpu = (c1 - c0) / (cfg->bulk_mib / 1024.0);
    o->duplex = helper_run(cfg, dh, APP_CLIENT, duplex);
}

/* One run of one path into o (-1 where it failed); dh is the daemon of an
 * epmdpxy path or of the app link (the --mss 0 one for RAW_EPMDPXY_MSS0). */
static void measure_path(int path, const raw_config *cfg, int sink_port, const daemon_h *dh,
                         uint8_t *buf, run_out *o, int app_port)
{
    o->rtt = o->bulk = o->duplex = o->cpu = -1;
    if (path == RAW_APP) {
        measure_app(cfg, dh, app_port, o);
        return;
    }
    raw_relay h;
    if (path_up(path, &h, cfg, sink_port, dh) < 0) {
        cfg->say("  %s: cannot set up the relay\n", raw_path_name(path));
        return;
    }
    pid_t cpu_pid = is_epmdpxy(path) ? dh->pid : h.pid;
    o->rtt = measure_rtt(h.port, cfg->rtt_count);
    double c0 = cpu_pid > 0 ? bu_proc_cpu_all_s(cpu_pid) : -1;
    o->bulk = measure_bulk(h.port, cfg->bulk_mib, buf);
    double c1 = cpu_pid > 0 ? bu_proc_cpu_all_s(cpu_pid) : -1;
    if (c0 >= 0 && c1 >= 0 && o->bulk > 0)
        o->cpu = (c1 - c0) / (cfg->bulk_mib / 1024.0);
    o->duplex = measure_duplex(h.port, cfg->bulk_mib / 2 > 0 ? cfg->bulk_mib / 2 : 1, buf);
    if (path != RAW_DIRECT && !is_epmdpxy(path))
        raw_relay_stop(&h);
}

static void add_or_fail(bu_series *s, double v)
{
    if (v > 0)
        bu_add(s, v);
    else
        bu_fail(s);
}

void raw_section(const raw_config *cfg, raw_figures *f)
{
    memset(f, 0, sizeof *f);
    make_hello();
    cfg->say("\n== Raw TCP: the relay alone (64-byte ping-pong, %d MiB one way, %d MiB each "
             "way)\n",
             cfg->bulk_mib, cfg->bulk_mib / 2 > 0 ? cfg->bulk_mib / 2 : 1);
    f->skipped[RAW_SOCAT] = !in_path("socat");
    f->skipped[RAW_HAPROXY] = !in_path("haproxy");
    for (int p = 0; p < RAW_NPATHS; p++)
        if (f->skipped[p])
            cfg->say("  %s is not installed: skipped (apt-get install %s)\n", raw_path_name(p),
                     raw_path_name(p));
    uint8_t *buf = malloc(IO_CHUNK);
    if (!buf)
        return;
    memset(buf, 0xa5, IO_CHUNK);
    int sink_port;
    int lfd = listen_loopback(&sink_port);
    if (lfd < 0) {
        cfg->say("  cannot listen for the sink: %s\n", strerror(errno));
        free(buf);
        return;
    }
    pid_t sink = spawn_fn(sink_entry, &lfd, lfd);
    close(lfd);
    /* epmdpxy with its defaults (an Ethernet MSS, as in the hold model),
     * and a second daemon with --mss 0: what that faithfulness costs */
    daemon_h dh, dh_mss0;
    if (daemon_up(&dh, cfg, sink_port, 0) < 0)
        cfg->say("  epmdpxy could not be started or the sink not registered\n");
    if (daemon_up(&dh_mss0, cfg, sink_port, 1) < 0)
        cfg->say("  epmdpxy --mss 0 could not be started or the sink not registered\n");
    /* the connect() cost's target: not a member, a deep accept queue */
    int drain_port = 0;
    pid_t drain = -1;
    int dfd = listen_loopback(&drain_port);
    if (dfd >= 0) {
        listen(dfd, 4096);
        drain = spawn_fn(drain_entry, &dfd, dfd);
        close(dfd);
    }
    /* the app link path: a second sink, under the shim, a member */
    pid_t app_sink = -1;
    int app_port = 0, out = -1;
    char line[32];
    if (!cfg->preload || dh.control_port <= 0) {
        f->skipped[RAW_APP] = 1;
        cfg->say("  app link: no shim (libepx_preload.so) or no daemon: skipped\n");
    } else {
        const char *args[] = { "sink", NULL };
        app_sink = helper_start(cfg, &dh, APP_SINK, args, &out);
        if (app_sink > 0 && read_line(out, line, sizeof line, READY_MS) == 0)
            app_port = atoi(line);
        if (out >= 0)
            close(out);
        if (app_port <= 0) {
            f->skipped[RAW_APP] = 1;
            cfg->say("  app link: the sink under the shim did not start: skipped\n");
        }
    }
    for (int r = 0; r < cfg->runs && sink > 0; r++) {
        run_out o[RAW_NPATHS];
        for (int k = 0; k < RAW_NPATHS; k++) {
            int p = (k + r) % RAW_NPATHS;   /* a different path goes first each run */
            if (f->skipped[p])
                continue;
            measure_path(p, cfg, sink_port, p == RAW_EPMDPXY_MSS0 ? &dh_mss0 : &dh, buf,
                         &o[p], app_port);
        }
        /* connect() to a port no member listens on (the drain's),
         * without and with the shim, in turns */
        double cu[2] = { -1, -1 };
        if (!f->skipped[RAW_APP] && drain > 0) {
            char port[16], count[16];
            snprintf(port, sizeof port, "%d", drain_port);
            snprintf(count, sizeof count, "%d", cfg->connects);
            const char *args[] = { "connect", port, count, NULL };
            for (int k = 0; k < 2; k++) {
                int side = (k + r) % 2;
                cu[side] = helper_run(cfg, &dh, side ? APP_CLIENT : NULL, args);
            }
            add_or_fail(&f->connect_us[0], cu[0]);
            add_or_fail(&f->connect_us[1], cu[1]);
            if (cu[0] > 0 && cu[1] > 0)
                bu_add(&f->connect_r, cu[1] / cu[0]);
        }
        for (int p = 0; p < RAW_NPATHS; p++) {
            if (f->skipped[p])
                continue;
            add_or_fail(&f->rtt[p], o[p].rtt);
            add_or_fail(&f->bulk[p], o[p].bulk);
            add_or_fail(&f->duplex[p], o[p].duplex);
            if (p != RAW_DIRECT)
                add_or_fail(&f->cpu[p], o[p].cpu);
            if (o[RAW_DIRECT].rtt > 0 && o[p].rtt > 0)
                bu_add(&f->rtt_r[p], o[p].rtt / o[RAW_DIRECT].rtt);
            if (o[RAW_DIRECT].bulk > 0 && o[p].bulk > 0)
                bu_add(&f->bulk_r[p], o[p].bulk / o[RAW_DIRECT].bulk);
            if (o[RAW_DIRECT].duplex > 0 && o[p].duplex > 0)
                bu_add(&f->duplex_r[p], o[p].duplex / o[RAW_DIRECT].duplex);
        }
        double floor_bulk = 0;
        for (int p = RAW_MIN64K; p <= RAW_SPLICE; p++)
            if (o[p].bulk > floor_bulk)
                floor_bulk = o[p].bulk;
        if (floor_bulk > 0 && o[RAW_EPMDPXY].bulk > 0)
            bu_add(&f->vs_floor, o[RAW_EPMDPXY].bulk / floor_bulk);
        if (floor_bulk > 0 && o[RAW_EPMDPXY_MSS0].bulk > 0)
            bu_add(&f->vs_floor_mss0, o[RAW_EPMDPXY_MSS0].bulk / floor_bulk);
        cfg->say("  run %d/%d:", r + 1, cfg->runs);
        for (int p = 0; p < RAW_NPATHS; p++)
            if (!f->skipped[p])
                cfg->say(" %s %.1f us %.0f/%.0f MiB/s;", raw_path_name(p), o[p].rtt, o[p].bulk,
                         o[p].duplex);
        if (!f->skipped[RAW_APP])
            cfg->say(" connect() %.1f us, under the shim %.1f us;", cu[0], cu[1]);
        cfg->say("\n");
    }
    stop_child(app_sink);
    stop_child(drain);
    daemon_down(&dh_mss0);
    daemon_down(&dh);
    stop_child(sink);
    free(buf);
}
