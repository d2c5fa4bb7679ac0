/* Fake Erlang nodes, handshake frames, control-port lines and JSON checks
 * for the black-box suites (relay, control, robust).  See fakenode.h. */
#include "fakenode.h"
#include "testutil.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#define JSMN_STATIC
#define JSMN_STRICT
#include <jsmn.h>

static char fn_errbuf[512];

const char *fn_err(void)
{
    return fn_errbuf;
}

__attribute__((format(printf, 1, 2)))
static int fail(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(fn_errbuf, sizeof fn_errbuf, fmt, ap);
    va_end(ap);
    return -1;
}

/* ---------------------------------------------------------------- fds */

#define FN_MAXFD 65536
static uint8_t fn_fdset[FN_MAXFD / 8];

int fn_track(int fd)
{
    if (fd >= 0 && fd < FN_MAXFD)
        fn_fdset[fd / 8] |= (uint8_t)(1u << (fd % 8));
    return fd;
}

static void untrack(int fd)
{
    if (fd >= 0 && fd < FN_MAXFD)
        fn_fdset[fd / 8] &= (uint8_t)~(1u << (fd % 8));
}

void fn_close(int fd)
{
    if (fd < 0)
        return;
    untrack(fd);
    close(fd);
}

void fn_close_rst(int fd)
{
    if (fd < 0)
        return;
    struct linger lg = { 1, 0 };
    setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    fn_close(fd);
}

void fn_close_all(void)
{
    for (int i = 0; i < FN_MAXFD; i++)
        if (fn_fdset[i / 8] & (1u << (i % 8)))
            fn_close(i);
}

long fn_raise_nofile(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
        return -1;
    rl.rlim_cur = rl.rlim_max;
    if (rl.rlim_cur > FN_MAXFD)
        rl.rlim_cur = FN_MAXFD;
    setrlimit(RLIMIT_NOFILE, &rl);
    getrlimit(RLIMIT_NOFILE, &rl);
    return (long)rl.rlim_cur;
}

/* ------------------------------------------------------------ sockets */

static void set_timeouts(int fd)
{
    struct timeval tv = { 5, 0 };
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
}

static struct sockaddr_in loopback(int port)
{
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    return sa;
}

int fn_listen(int *port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return fail("socket: %s", strerror(errno));
    struct sockaddr_in sa = loopback(0);
    socklen_t sl = sizeof sa;
    if (bind(fd, (struct sockaddr *)&sa, sizeof sa) < 0 || listen(fd, 1024) < 0 ||
        getsockname(fd, (struct sockaddr *)&sa, &sl) < 0) {
        int e = errno;
        close(fd);
        return fail("listen: %s", strerror(e));
    }
    *port = ntohs(sa.sin_port);
    return fn_track(fd);
}

int fn_connect(int port, int *err)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        if (err)
            *err = errno;
        return fail("socket: %s", strerror(errno));
    }
    set_timeouts(fd);
    struct sockaddr_in sa = loopback(port);
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
        int e = errno;
        close(fd);
        if (err)
            *err = e;
        return fail("connect to 127.0.0.1:%d: %s", port, strerror(e));
    }
    if (err)
        *err = 0;
    return fn_track(fd);
}

int fn_pending(int lfd, int timeout_ms)
{
    struct pollfd p = { lfd, POLLIN, 0 };
    int r;
    do
        r = poll(&p, 1, timeout_ms);
    while (r < 0 && errno == EINTR);
    return r > 0;
}

int fn_accept(int lfd, int timeout_ms)
{
    if (!fn_pending(lfd, timeout_ms))
        return fail("no connection on the fake node's listener within %d ms", timeout_ms);
    int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
    if (fd < 0)
        return fail("accept: %s", strerror(errno));
    set_timeouts(fd);
    return fn_track(fd);
}

int fn_nodelay(int fd)
{
    int one = 1;
    return setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

int fn_send_all(int fd, const void *buf, size_t n)
{
    const uint8_t *p = buf;
    while (n > 0) {
        ssize_t k = send(fd, p, n, MSG_NOSIGNAL);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            return fail("send: %s", k < 0 ? strerror(errno) : "0");
        p += k;
        n -= (size_t)k;
    }
    return 0;
}

int fn_wait_eof(int fd, int timeout_ms, size_t *nread, int *reset)
{
    long long deadline = tu_now_ms() + timeout_ms;
    uint8_t buf[16384];
    if (nread)
        *nread = 0;
    if (reset)
        *reset = 0;
    for (;;) {
        int left = (int)(deadline - tu_now_ms());
        if (left <= 0)
            return 0;
        struct pollfd p = { fd, POLLIN, 0 };
        int r = poll(&p, 1, left);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return 0;
        ssize_t k = recv(fd, buf, sizeof buf, MSG_DONTWAIT);
        if (k < 0 && (errno == EINTR || errno == EAGAIN))
            continue;
        if (k < 0) {
            if (reset)
                *reset = 1;
            return 1;
        }
        if (k == 0)
            return 1;
        if (nread)
            *nread += (size_t)k;
    }
}

/* One direction of fn_xfer. */
typedef struct xdir {
    int src, dst;
    size_t total, sent, rcvd;
    fn_rng wgen, rgen, sizes;
    uint8_t *pend;
    size_t poff, plen;
} xdir;

#define XCHUNK 65536

int fn_xfer(int a, int b, size_t n1, size_t n2, uint64_t seed, int timeout_ms)
{
    xdir d[2] = { { .src = a, .dst = b, .total = n1 }, { .src = b, .dst = a, .total = n2 } };
    uint8_t *rbuf = malloc(XCHUNK), *want = malloc(XCHUNK);
    int rc = 0;
    for (int k = 0; k < 2; k++) {
        fn_rng_seed(&d[k].wgen, seed + 7 * (uint64_t)k);
        fn_rng_seed(&d[k].rgen, seed + 7 * (uint64_t)k);
        fn_rng_seed(&d[k].sizes, seed ^ 0xabcdefULL ^ (uint64_t)k);
        d[k].pend = malloc(XCHUNK);
    }
    long long deadline = tu_now_ms() + timeout_ms;
    while (d[0].rcvd < d[0].total || d[1].rcvd < d[1].total) {
        struct pollfd p[4];
        int np = 0, role[4], dir[4];
        for (int k = 0; k < 2; k++) {
            if (d[k].sent < d[k].total) {
                p[np] = (struct pollfd){ d[k].src, POLLOUT, 0 };
                role[np] = 1;
                dir[np++] = k;
            }
            if (d[k].rcvd < d[k].total) {
                p[np] = (struct pollfd){ d[k].dst, POLLIN, 0 };
                role[np] = 0;
                dir[np++] = k;
            }
        }
        int left = (int)(deadline - tu_now_ms());
        if (left <= 0) {
            rc = fail("xfer timed out after %d ms: a->b sent %zu got %zu of %zu; "
                      "b->a sent %zu got %zu of %zu", timeout_ms, d[0].sent, d[0].rcvd,
                      d[0].total, d[1].sent, d[1].rcvd, d[1].total);
            break;
        }
        int r = poll(p, (nfds_t)np, left);
        if (r < 0 && errno != EINTR) {
            rc = fail("poll: %s", strerror(errno));
            break;
        }
        for (int i = 0; i < np && r > 0 && rc == 0; i++) {
            xdir *x = &d[dir[i]];
            const char *name = dir[i] ? "b->a" : "a->b";
            if (!p[i].revents)
                continue;
            if (role[i]) {
                if (x->poff == x->plen) {
                    size_t c = 1 + fn_rng_below(&x->sizes, XCHUNK);
                    if (c > x->total - x->sent)
                        c = x->total - x->sent;
                    fn_rng_fill(&x->wgen, x->pend, c);
                    x->poff = 0;
                    x->plen = c;
                }
                ssize_t k = send(x->src, x->pend + x->poff, x->plen - x->poff,
                                 MSG_DONTWAIT | MSG_NOSIGNAL);
                if (k < 0 && (errno == EAGAIN || errno == EINTR))
                    continue;
                if (k < 0) {
                    rc = fail("xfer %s: send after %zu bytes: %s", name, x->sent, strerror(errno));
                    break;
                }
                x->poff += (size_t)k;
                x->sent += (size_t)k;
            } else {
                size_t want_n = x->total - x->rcvd;
                if (want_n > XCHUNK)
                    want_n = XCHUNK;
                ssize_t k = recv(x->dst, rbuf, want_n, MSG_DONTWAIT);
                if (k < 0 && (errno == EAGAIN || errno == EINTR))
                    continue;
                if (k <= 0) {
                    rc = fail("xfer %s: %s after %zu of %zu bytes", name,
                              k == 0 ? "EOF" : strerror(errno), x->rcvd, x->total);
                    break;
                }
                fn_rng_fill(&x->rgen, want, (size_t)k);
                if (memcmp(rbuf, want, (size_t)k) != 0) {
                    size_t j = 0;
                    while (rbuf[j] == want[j])
                        j++;
                    rc = fail("xfer %s: byte %zu differs (got %02x, want %02x)", name,
                              x->rcvd + j, rbuf[j], want[j]);
                    break;
                }
                x->rcvd += (size_t)k;
            }
        }
        if (rc)
            break;
    }
    for (int k = 0; k < 2; k++)
        free(d[k].pend);
    free(rbuf);
    free(want);
    return rc;
}

int fn_daemon_alive(struct tu_daemon *d)
{
    if (d->pid <= 0)
        return fail("the daemon is not running");
    int st;
    pid_t r = waitpid(d->pid, &st, WNOHANG);
    if (r == 0)
        return 0;
    char tail[300] = "";
    FILE *f = fopen(d->log, "r");
    if (f) {
        fseek(f, 0, SEEK_END);
        long sz = ftell(f);
        fseek(f, sz > 299 ? sz - 299 : 0, SEEK_SET);
        size_t k = fread(tail, 1, sizeof tail - 1, f);
        tail[k] = 0;
        fclose(f);
    }
    if (d->out_fd > 0)
        close(d->out_fd);
    d->out_fd = -1;
    d->pid = -1;
    if (r < 0)
        return fail("waitpid: %s", strerror(errno));
    if (WIFSIGNALED(st))
        return fail("the daemon died of signal %d (%s); log %s ends: %s", WTERMSIG(st),
                    strsignal(WTERMSIG(st)), d->log, tail);
    return fail("the daemon exited with status %d; log %s ends: %s", WEXITSTATUS(st),
                d->log, tail);
}

int fn_daemon_wait_exit(struct tu_daemon *d, int timeout_ms)
{
    long long deadline = tu_now_ms() + timeout_ms;
    for (;;) {
        int st;
        pid_t r = waitpid(d->pid, &st, WNOHANG);
        if (r == d->pid) {
            if (d->out_fd > 0)
                close(d->out_fd);
            d->out_fd = -1;
            d->pid = -1;
            return st;
        }
        if (r < 0 || tu_now_ms() >= deadline)
            return -1;
        tu_sleep_ms(10);
    }
}

/* "lport->rport STATE" for the TCP socket with this inode, from pid's
 * /proc/net/tcp and tcp6; 0 if found. */
static int tcp_of_inode(pid_t pid, unsigned long inode, char *out, size_t len)
{
    static const char *states[] = { "?", "ESTABLISHED", "SYN_SENT", "SYN_RECV", "FIN_WAIT1",
                                    "FIN_WAIT2", "TIME_WAIT", "CLOSE", "CLOSE_WAIT",
                                    "LAST_ACK", "LISTEN", "CLOSING" };
    const char *files[] = { "tcp", "tcp6" };
    for (int f = 0; f < 2; f++) {
        char path[64], line[512];
        snprintf(path, sizeof path, "/proc/%d/net/%s", (int)pid, files[f]);
        FILE *fp = fopen(path, "r");
        if (!fp)
            continue;
        while (fgets(line, sizeof line, fp)) {
            char la[64], ra[64];
            unsigned st;
            unsigned long ino;
            if (sscanf(line, " %*d: %63s %63s %x %*s %*s %*s %*s %*s %lu", la, ra, &st, &ino) != 4 ||
                ino != inode)
                continue;
            char *lp = strrchr(la, ':'), *rp = strrchr(ra, ':');
            snprintf(out, len, "tcp:%ld->%ld %s", lp ? strtol(lp + 1, NULL, 16) : -1L,
                     rp ? strtol(rp + 1, NULL, 16) : -1L, st < 12 ? states[st] : "?");
            fclose(fp);
            return 0;
        }
        fclose(fp);
    }
    return -1;
}

const char *fn_fd_describe(pid_t pid)
{
    static char out[4096];
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/fd", (int)pid);
    DIR *d = opendir(path);
    out[0] = 0;
    if (!d)
        return "(no /proc entry)";
    size_t o = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL && o + 100 < sizeof out) {
        if (e->d_name[0] == '.')
            continue;
        char lp[400], tgt[256], desc[128];
        snprintf(lp, sizeof lp, "%s/%s", path, e->d_name);
        ssize_t k = readlink(lp, tgt, sizeof tgt - 1);
        if (k < 0)
            continue;
        tgt[k] = 0;
        unsigned long ino;
        if (sscanf(tgt, "socket:[%lu]", &ino) == 1 && tcp_of_inode(pid, ino, desc, sizeof desc) == 0)
            snprintf(tgt, sizeof tgt, "%s", desc);
        o += (size_t)snprintf(out + o, sizeof out - o, "%s=%s ", e->d_name, tgt);
    }
    closedir(d);
    return out;
}

long fn_rss_kib(pid_t pid)
{
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    long kib = -1;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "VmRSS: %ld kB", &kib) == 1)
            break;
    fclose(f);
    return kib;
}

/* --------------------------------------------------------------- EPMD */

static void put16(uint8_t *p, unsigned v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}

static void put32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

static void put64(uint8_t *p, uint64_t v)
{
    put32(p, (uint32_t)(v >> 32));
    put32(p + 4, (uint32_t)v);
}

int fn_alive2(int epmd_port, const char *name, int node_port, uint32_t *creation)
{
    size_t nl = strlen(name);
    uint8_t req[1100];
    if (nl > 1000)
        return fail("name too long");
    size_t body = 13 + nl;
    put16(req, (unsigned)body);
    req[2] = 'x';
    put16(req + 3, (unsigned)node_port);
    req[5] = 'M';
    req[6] = 0;
    put16(req + 7, 6);
    put16(req + 9, 5);
    put16(req + 11, (unsigned)nl);
    memcpy(req + 13, name, nl);
    put16(req + 13 + nl, 0);
    int fd = fn_connect(epmd_port, NULL);
    if (fd < 0)
        return -1;
    if (fn_send_all(fd, req, body + 2) < 0) {
        fn_close(fd);
        return fail("ALIVE2 %s: send failed", name);
    }
    uint8_t rep[6];
    if (tu_read_exact(fd, rep, 6, 5000) < 0) {
        fn_close(fd);
        return fail("ALIVE2 %s: no 6-byte reply within 5 s", name);
    }
    if (rep[0] != 'v' || rep[1] != 0) {
        fn_close(fd);
        return fail("ALIVE2 %s: reply %02x %02x %02x %02x %02x %02x, want 76 00 ...",
                    name, rep[0], rep[1], rep[2], rep[3], rep[4], rep[5]);
    }
    if (creation)
        *creation = (uint32_t)rep[2] << 24 | (uint32_t)rep[3] << 16 |
                    (uint32_t)rep[4] << 8 | rep[5];
    return fd;
}

int fn_port_please(int epmd_port, const char *name)
{
    size_t nl = strlen(name);
    uint8_t req[600], rep[2048];
    if (nl > 500)
        return fail("name too long");
    put16(req, (unsigned)(nl + 1));
    req[2] = 'z';
    memcpy(req + 3, name, nl);
    int fd = fn_connect(epmd_port, NULL);
    if (fd < 0)
        return -1;
    int eof = 0;
    size_t n = 0;
    if (fn_send_all(fd, req, nl + 3) == 0)
        n = tu_read_until_eof(fd, rep, sizeof rep, 5000, &eof);
    fn_close(fd);
    if (n == 2 && rep[0] == 'w' && rep[1] == 1)
        return 0;
    if (n >= 4 && rep[0] == 'w' && rep[1] == 0) {
        int port = rep[2] << 8 | rep[3];
        if (n != 14 + nl || rep[4] != 'M' || rep[5] != 0 ||
            (rep[10] << 8 | rep[11]) != (int)nl || memcmp(rep + 12, name, nl) != 0)
            return fail("PORT_PLEASE2 %s: malformed %zu-byte reply", name, n);
        if (!eof)
            return fail("PORT_PLEASE2 %s: the daemon did not close after replying", name);
        return port;
    }
    return fail("PORT_PLEASE2 %s: unexpected reply of %zu bytes (first %02x)", name, n,
                n ? rep[0] : 0);
}

int fn_node_start(fn_node *n, int epmd_port, const char *name)
{
    memset(n, 0, sizeof *n);
    n->lfd = n->reg = -1;
    snprintf(n->name, sizeof n->name, "%s", name);
    n->lfd = fn_listen(&n->port);
    if (n->lfd < 0)
        return -1;
    n->reg = fn_alive2(epmd_port, name, n->port, &n->creation);
    if (n->reg < 0)
        return -1;
    n->proxy_port = fn_port_please(epmd_port, name);
    if (n->proxy_port <= 0)
        return n->proxy_port == 0 ? fail("PORT_PLEASE2 %s: not found right after ALIVE2", name)
                                  : -1;
    if (n->proxy_port == n->port)
        return fail("PORT_PLEASE2 %s returned the node's own port %d, not a proxy port",
                    name, n->port);
    return 0;
}

void fn_node_unregister(fn_node *n)
{
    fn_close(n->reg);
    n->reg = -1;
}

void fn_node_stop(fn_node *n)
{
    fn_node_unregister(n);
    fn_close(n->lfd);
    n->lfd = -1;
}

/* ------------------------------------------------------------- frames */

size_t fn_frame_send_name(uint8_t *b, const char *full, uint64_t flags, uint32_t creation)
{
    size_t nl = strlen(full);
    b[2] = 'N';
    put64(b + 3, flags);
    put32(b + 11, creation);
    put16(b + 15, (unsigned)nl);
    memcpy(b + 17, full, nl);
    put16(b, (unsigned)(15 + nl));
    return 17 + nl;
}

size_t fn_frame_old_send_name(uint8_t *b, const char *full, uint32_t flags)
{
    size_t nl = strlen(full);
    b[2] = 'n';
    put16(b + 3, 5);
    put32(b + 5, flags);
    memcpy(b + 9, full, nl);
    put16(b, (unsigned)(7 + nl));
    return 9 + nl;
}

size_t fn_frame_status(uint8_t *b, const char *status)
{
    size_t sl = strlen(status);
    b[2] = 's';
    memcpy(b + 3, status, sl);
    put16(b, (unsigned)(1 + sl));
    return 3 + sl;
}

size_t fn_frame_challenge(uint8_t *b, const char *full, uint64_t flags,
                          uint32_t challenge, uint32_t creation)
{
    size_t nl = strlen(full);
    b[2] = 'N';
    put64(b + 3, flags);
    put32(b + 11, challenge);
    put32(b + 15, creation);
    put16(b + 19, (unsigned)nl);
    memcpy(b + 21, full, nl);
    put16(b, (unsigned)(19 + nl));
    return 21 + nl;
}

size_t fn_frame_reply(uint8_t *b, uint32_t challenge)
{
    b[2] = 'r';
    put32(b + 3, challenge);
    for (int i = 0; i < 16; i++)
        b[7 + i] = (uint8_t)(0xa0 + i);
    put16(b, 21);
    return 23;
}

size_t fn_frame_ack(uint8_t *b)
{
    b[2] = 'a';
    for (int i = 0; i < 16; i++)
        b[3 + i] = (uint8_t)(0x50 + i);
    put16(b, 17);
    return 19;
}

int fn_pass(int src, int dst, const void *buf, size_t n, int timeout_ms)
{
    if (fn_send_all(src, buf, n) < 0)
        return -1;
    uint8_t *got = malloc(n ? n : 1);
    int eof = 0;
    size_t k = tu_read_until_eof(dst, got, n, timeout_ms, &eof);
    int rc = 0;
    if (k != n)
        rc = fail("relay: %zu of %zu bytes arrived within %d ms%s", k, n, timeout_ms,
                  eof ? " (then EOF)" : "");
    else if (memcmp(got, buf, n) != 0) {
        size_t i = 0;
        while (((const uint8_t *)buf)[i] == got[i])
            i++;
        rc = fail("relay: byte %zu of %zu differs: sent %02x, got %02x", i, n,
                  ((const uint8_t *)buf)[i], got[i]);
    }
    free(got);
    return rc;
}

int fn_link_open_frame(fn_link *l, fn_node *n, const uint8_t *frame, size_t len)
{
    memset(l, 0, sizeof *l);
    l->acc = -1;
    l->ini = fn_connect(n->proxy_port, NULL);
    if (l->ini < 0)
        return -1;
    if (fn_send_all(l->ini, frame, len) < 0)
        return -1;
    l->acc = fn_accept(n->lfd, 10000);
    if (l->acc < 0)
        return fail("the daemon did not connect to fake node %s (port %d) within 10 s "
                    "after the first frame", n->name, n->port);
    uint8_t got[2048];
    int eof = 0;
    size_t k = tu_read_until_eof(l->acc, got, len, 10000, &eof);
    if (k != len || memcmp(got, frame, len) != 0)
        return fail("first frame: %zu of %zu bytes reached the node%s%s", k, len,
                    k == len ? ", but they differ" : "", eof ? " (then EOF)" : "");
    l->out = len;
    return 0;
}

int fn_link_open(fn_link *l, fn_node *n, const char *from_full)
{
    uint8_t f[600];
    size_t len = fn_frame_send_name(f, from_full, FN_FLAGS, 0x6b07a685);
    return fn_link_open_frame(l, n, f, len);
}

int fn_link_handshake(fn_link *l, const char *to_full)
{
    uint8_t f[600];
    size_t len = fn_frame_status(f, "ok");
    if (fn_pass(l->acc, l->ini, f, len, 10000) < 0)
        return -1;
    l->in += len;
    len = fn_frame_challenge(f, to_full, FN_FLAGS, 0x12345678, 0x6b07a686);
    if (fn_pass(l->acc, l->ini, f, len, 10000) < 0)
        return -1;
    l->in += len;
    len = fn_frame_reply(f, 0x87654321);
    if (fn_pass(l->ini, l->acc, f, len, 10000) < 0)
        return -1;
    l->out += len;
    len = fn_frame_ack(f);
    if (fn_pass(l->acc, l->ini, f, len, 10000) < 0)
        return -1;
    l->in += len;
    return 0;
}

void fn_link_close(fn_link *l)
{
    fn_close(l->ini);
    fn_close(l->acc);
    l->ini = l->acc = -1;
}

/* ------------------------------------------------------------ control */

int fn_ctl_open(fn_ctl *c, int port)
{
    memset(c, 0, sizeof *c);
    c->fd = fn_connect(port, NULL);
    return c->fd < 0 ? -1 : 0;
}

void fn_ctl_close(fn_ctl *c)
{
    fn_close(c->fd);
    c->fd = -1;
    free(c->buf);
    c->buf = NULL;
    c->len = c->cap = 0;
}

int fn_ctl_send(fn_ctl *c, const char *s, size_t n)
{
    return fn_send_all(c->fd, s, n);
}

#define FN_CTL_MAXLINE (8u << 20)

char *fn_ctl_line(fn_ctl *c, int timeout_ms)
{
    long long deadline = tu_now_ms() + timeout_ms;
    /* Drop the line returned last time. */
    if (c->used) {
        memmove(c->buf, c->buf + c->used, c->len - c->used);
        c->len -= c->used;
        c->used = 0;
    }
    for (;;) {
        char *nl = c->buf ? memchr(c->buf, '\n', c->len) : NULL;
        if (nl) {
            *nl = 0;
            c->used = (size_t)(nl - c->buf) + 1;
            if (nl > c->buf && nl[-1] == '\r')
                nl[-1] = 0;
            return c->buf;
        }
        if (c->len + 65536 > c->cap) {
            if (c->cap >= FN_CTL_MAXLINE) {
                fail("reply line longer than %u bytes", FN_CTL_MAXLINE);
                return NULL;
            }
            size_t cap = c->cap ? c->cap * 2 : 131072;
            char *b = realloc(c->buf, cap);
            if (!b)
                return NULL;
            c->buf = b;
            c->cap = cap;
        }
        int left = (int)(deadline - tu_now_ms());
        if (left <= 0) {
            fail("no complete reply line within %d ms (%zu bytes pending)", timeout_ms, c->len);
            return NULL;
        }
        struct pollfd p = { c->fd, POLLIN, 0 };
        int r = poll(&p, 1, left);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            continue;
        ssize_t k = recv(c->fd, c->buf + c->len, c->cap - c->len - 1, MSG_DONTWAIT);
        if (k < 0 && (errno == EINTR || errno == EAGAIN))
            continue;
        if (k <= 0) {
            fail("connection %s before a complete reply line (%zu bytes pending)",
                 k == 0 ? "closed" : strerror(errno), c->len);
            return NULL;
        }
        /* A NUL inside a reply would confuse the line bookkeeping above:
         * make it visible instead. */
        for (ssize_t i = 0; i < k; i++)
            if (c->buf[c->len + (size_t)i] == 0)
                c->buf[c->len + (size_t)i] = '?';
        c->len += (size_t)k;
    }
}

size_t fn_ctl_buffered(const fn_ctl *c)
{
    return c->len - c->used;
}

char *fn_ctl_cmd(int port, const char *cmd)
{
    fn_ctl c;
    if (fn_ctl_open(&c, port) < 0)
        return NULL;
    char *out = NULL;
    size_t n = strlen(cmd);
    if (fn_ctl_send(&c, cmd, n) == 0 && fn_ctl_send(&c, "\n", 1) == 0) {
        char *l = fn_ctl_line(&c, 10000);
        if (l)
            out = strdup(l);
    }
    fn_ctl_close(&c);
    return out;
}

/* --------------------------------------------------------------- JSON */

typedef struct jv {
    const char *s;
    size_t n, i;
    int depth;
} jv;

static void jv_ws(jv *v)
{
    while (v->i < v->n && (v->s[v->i] == ' ' || v->s[v->i] == '\t' ||
                           v->s[v->i] == '\n' || v->s[v->i] == '\r'))
        v->i++;
}

static int jv_value(jv *v);

static int jv_lit(jv *v, const char *w)
{
    size_t l = strlen(w);
    if (v->n - v->i < l || memcmp(v->s + v->i, w, l) != 0)
        return 0;
    v->i += l;
    return 1;
}

static int jv_hex(char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

/* Length of the well-formed UTF-8 sequence at p (1-4), 0 if malformed. */
static int utf8_len(const unsigned char *p, size_t n)
{
    if (p[0] < 0x80)
        return 1;
    int len = p[0] >= 0xf0 ? 4 : p[0] >= 0xe0 ? 3 : p[0] >= 0xc2 ? 2 : 0;
    if (len == 0 || p[0] > 0xf4 || (size_t)len > n)
        return 0;
    for (int k = 1; k < len; k++)
        if ((p[k] & 0xc0) != 0x80)
            return 0;
    if ((p[0] == 0xe0 && p[1] < 0xa0) || (p[0] == 0xed && p[1] > 0x9f) ||
        (p[0] == 0xf0 && p[1] < 0x90) || (p[0] == 0xf4 && p[1] > 0x8f))
        return 0;
    return len;
}

static int jv_string(jv *v)
{
    if (v->i >= v->n || v->s[v->i] != '"')
        return 0;
    v->i++;
    while (v->i < v->n) {
        unsigned char c = (unsigned char)v->s[v->i];
        if (c >= 0x80) {
            int l = utf8_len((const unsigned char *)v->s + v->i, v->n - v->i);
            if (!l)
                return 0;
            v->i += (size_t)l;
            continue;
        }
        v->i++;
        if (c == '"')
            return 1;
        if (c < 0x20)
            return 0;
        if (c == '\\') {
            if (v->i >= v->n)
                return 0;
            char e = v->s[v->i++];
            if (e == 'u') {
                for (int k = 0; k < 4; k++)
                    if (v->i >= v->n || !jv_hex(v->s[v->i++]))
                        return 0;
            } else if (!strchr("\"\\/bfnrt", e)) {
                return 0;
            }
        }
    }
    return 0;
}

static int jv_digits(jv *v)
{
    size_t st = v->i;
    while (v->i < v->n && v->s[v->i] >= '0' && v->s[v->i] <= '9')
        v->i++;
    return v->i > st;
}

static int jv_number(jv *v)
{
    if (v->i < v->n && v->s[v->i] == '-')
        v->i++;
    if (v->i < v->n && v->s[v->i] == '0')
        v->i++;
    else if (!jv_digits(v))
        return 0;
    if (v->i < v->n && v->s[v->i] == '.') {
        v->i++;
        if (!jv_digits(v))
            return 0;
    }
    if (v->i < v->n && (v->s[v->i] == 'e' || v->s[v->i] == 'E')) {
        v->i++;
        if (v->i < v->n && (v->s[v->i] == '+' || v->s[v->i] == '-'))
            v->i++;
        if (!jv_digits(v))
            return 0;
    }
    return 1;
}

static int jv_container(jv *v, char close, int object)
{
    if (++v->depth > 64)
        return 0;
    v->i++;
    jv_ws(v);
    if (v->i < v->n && v->s[v->i] == close) {
        v->i++;
        v->depth--;
        return 1;
    }
    for (;;) {
        jv_ws(v);
        if (object) {
            if (!jv_string(v))
                return 0;
            jv_ws(v);
            if (v->i >= v->n || v->s[v->i++] != ':')
                return 0;
        }
        if (!jv_value(v))
            return 0;
        jv_ws(v);
        if (v->i >= v->n)
            return 0;
        char c = v->s[v->i++];
        if (c == close) {
            v->depth--;
            return 1;
        }
        if (c != ',')
            return 0;
    }
}

static int jv_value(jv *v)
{
    jv_ws(v);
    if (v->i >= v->n)
        return 0;
    switch (v->s[v->i]) {
    case '{': return jv_container(v, '}', 1);
    case '[': return jv_container(v, ']', 0);
    case '"': return jv_string(v);
    case 't': return jv_lit(v, "true");
    case 'f': return jv_lit(v, "false");
    case 'n': return jv_lit(v, "null");
    default: return jv_number(v);
    }
}

int fn_json_valid(const char *s, size_t n)
{
    jv v = { s, n, 0, 0 };
    if (!jv_value(&v))
        return 0;
    jv_ws(&v);
    return v.i == n;
}

/* The jsmn side: tokens of one payload. */
typedef struct jdoc {
    const char *s;
    jsmntok_t *t;
    int n;
} jdoc;

static int jdoc_parse(jdoc *d, const char *s)
{
    size_t len = strlen(s);
    d->s = s;
    d->t = NULL;
    if (strchr(s, '\n') || strchr(s, '\r'))
        return fail("payload is not one line");
    if (!fn_json_valid(s, len))
        return fail("payload is not valid JSON: %.200s", s);
    jsmn_parser p;
    jsmn_init(&p);
    int n = jsmn_parse(&p, s, len, NULL, 0);
    if (n <= 0)
        return fail("jsmn: %d on %.200s", n, s);
    d->t = calloc((size_t)n, sizeof *d->t);
    jsmn_init(&p);
    d->n = jsmn_parse(&p, s, len, d->t, (unsigned)n);
    if (d->n != n) {
        free(d->t);
        d->t = NULL;
        return fail("jsmn: %d on %.200s", d->n, s);
    }
    return 0;
}

static void jdoc_free(jdoc *d)
{
    free(d->t);
    d->t = NULL;
}

/* Index just past token i's subtree. */
static int jskip(const jdoc *d, int i)
{
    int pending = 1;
    while (pending > 0 && i < d->n) {
        pending += d->t[i].size;
        pending--;
        i++;
    }
    return i;
}

/* Index of key's value in the object at obj, -1 if absent. */
static int jget(const jdoc *d, int obj, const char *key)
{
    size_t kl = strlen(key);
    int i = obj + 1;
    for (int k = 0; k < d->t[obj].size; k++) {
        const jsmntok_t *kt = &d->t[i];
        if (kt->type == JSMN_STRING && (size_t)(kt->end - kt->start) == kl &&
            memcmp(d->s + kt->start, key, kl) == 0)
            return i + 1;
        i = jskip(d, i + 1);
    }
    return -1;
}

static int jstr(const jdoc *d, int obj, const char *key, char *out, size_t len, int *isnull)
{
    int i = jget(d, obj, key);
    if (i < 0)
        return fail("field \"%s\" missing", key);
    const jsmntok_t *t = &d->t[i];
    if (isnull) {
        *isnull = 0;
        if (t->type == JSMN_PRIMITIVE && t->end - t->start == 4 &&
            memcmp(d->s + t->start, "null", 4) == 0) {
            *isnull = 1;
            out[0] = 0;
            return 0;
        }
    }
    if (t->type != JSMN_STRING)
        return fail("field \"%s\" is not a string", key);
    size_t o = 0;
    for (int k = t->start; k < t->end && o + 1 < len; k++) {
        char c = d->s[k];
        if (c == '\\' && k + 1 < t->end) {
            c = d->s[++k];
            switch (c) {
            case 'n': c = '\n'; break;
            case 't': c = '\t'; break;
            case 'r': c = '\r'; break;
            case 'b': c = '\b'; break;
            case 'f': c = '\f'; break;
            case 'u': { /* BMP only; surrogate pairs become '?' */
                unsigned u = 0;
                if (k + 4 < t->end && sscanf(d->s + k + 1, "%4x", &u) == 1) {
                    k += 4;
                    if (u >= 0xd800 && u < 0xe000) {
                        c = '?';
                    } else if (u >= 0x800 && o + 3 < len) {
                        out[o++] = (char)(0xe0 | (u >> 12));
                        out[o++] = (char)(0x80 | ((u >> 6) & 0x3f));
                        c = (char)(0x80 | (u & 0x3f));
                    } else if (u >= 0x80 && o + 2 < len) {
                        out[o++] = (char)(0xc0 | (u >> 6));
                        c = (char)(0x80 | (u & 0x3f));
                    } else {
                        c = (char)u;
                    }
                } else {
                    c = '?';
                }
                break;
            }
            default: break;
            }
        }
        out[o++] = c;
    }
    out[o] = 0;
    return 0;
}

static int jint(const jdoc *d, int obj, const char *key, long long *out)
{
    int i = jget(d, obj, key);
    if (i < 0)
        return fail("field \"%s\" missing", key);
    const jsmntok_t *t = &d->t[i];
    char buf[32];
    int l = t->end - t->start;
    if (t->type != JSMN_PRIMITIVE || l <= 0 || l >= (int)sizeof buf)
        return fail("field \"%s\" is not a number", key);
    memcpy(buf, d->s + t->start, (size_t)l);
    buf[l] = 0;
    char *end;
    errno = 0;
    *out = strtoll(buf, &end, 10);
    if (*end || errno)
        return fail("field \"%s\" is not an integer: %s", key, buf);
    return 0;
}

int fn_parse_status(const char *json, fn_status *st)
{
    jdoc d;
    memset(st, 0, sizeof *st);
    if (jdoc_parse(&d, json) < 0)
        return -1;
    int rc = -1;
    if (d.t[0].type != JSMN_OBJECT)
        fail("STATUS payload is not an object: %.200s", json);
    else if (jstr(&d, 0, "version", st->version, sizeof st->version, NULL) == 0 &&
             jint(&d, 0, "epmd_port", &st->epmd_port) == 0 &&
             jint(&d, 0, "control_port", &st->control_port) == 0 &&
             jstr(&d, 0, "mode", st->mode, sizeof st->mode, NULL) == 0 &&
             jint(&d, 0, "nodes", &st->nodes) == 0 &&
             jint(&d, 0, "links", &st->links) == 0 &&
             jint(&d, 0, "rules", &st->rules) == 0)
        rc = 0;
    else {
        char m[sizeof fn_errbuf];
        memcpy(m, fn_errbuf, sizeof m);
        fail("STATUS: %s in %.200s", m, json);
    }
    jdoc_free(&d);
    return rc;
}

/* Walk an array payload, calling each(d, obj_index, k) for every element. */
static int jarray(const char *json, const char *what, void *out, int max,
                  int (*each)(const jdoc *, int, void *, int))
{
    jdoc d;
    if (jdoc_parse(&d, json) < 0)
        return -1;
    if (d.t[0].type != JSMN_ARRAY) {
        jdoc_free(&d);
        return fail("%s payload is not an array: %.200s", what, json);
    }
    int count = d.t[0].size, i = 1;
    for (int k = 0; k < count; k++) {
        if (d.t[i].type != JSMN_OBJECT) {
            jdoc_free(&d);
            return fail("%s element %d is not an object", what, k);
        }
        if (k < max && each(&d, i, out, k) < 0) {
            char m[sizeof fn_errbuf];
            memcpy(m, fn_errbuf, sizeof m);
            jdoc_free(&d);
            return fail("%s element %d: %s in %.300s", what, k, m, json);
        }
        i = jskip(&d, i);
    }
    jdoc_free(&d);
    return count;
}

static int node_each(const jdoc *d, int o, void *out, int k)
{
    fn_nodeinfo *n = (fn_nodeinfo *)out + k;
    memset(n, 0, sizeof *n);
    if (jstr(d, o, "name", n->name, sizeof n->name, NULL) < 0 ||
        jstr(d, o, "node", n->node, sizeof n->node, &n->node_null) < 0 ||
        jint(d, o, "port", &n->port) < 0 || jint(d, o, "proxy_port", &n->proxy_port) < 0 ||
        jint(d, o, "creation", &n->creation) < 0)
        return -1;
    return 0;
}

static int link_each(const jdoc *d, int o, void *out, int k)
{
    fn_linkinfo *l = (fn_linkinfo *)out + k;
    memset(l, 0, sizeof *l);
    if (jint(d, o, "id", &l->id) < 0 ||
        jstr(d, o, "from", l->from, sizeof l->from, NULL) < 0 ||
        jstr(d, o, "to", l->to, sizeof l->to, NULL) < 0 ||
        jstr(d, o, "state", l->state, sizeof l->state, NULL) < 0 ||
        jstr(d, o, "held", l->held, sizeof l->held, NULL) < 0 ||
        jint(d, o, "bytes_out", &l->bytes_out) < 0 || jint(d, o, "bytes_in", &l->bytes_in) < 0)
        return -1;
    if (strcmp(l->state, "handshake") && strcmp(l->state, "up") && strcmp(l->state, "closed") &&
        strcmp(l->state, "held"))
        return fail("state \"%s\" is not handshake/up/held/closed", l->state);
    if (strcmp(l->held, "none") && strcmp(l->held, "out") && strcmp(l->held, "in") &&
        strcmp(l->held, "both"))
        return fail("held \"%s\" is not none/out/in/both", l->held);
    return 0;
}

int fn_parse_nodes(const char *json, fn_nodeinfo *out, int max)
{
    return jarray(json, "NODES", out, max, node_each);
}

int fn_parse_links(const char *json, fn_linkinfo *out, int max)
{
    return jarray(json, "LINKS", out, max, link_each);
}

/* Send cmd, require "OK <payload>", hand the payload to parse. */
static char *ok_payload(int ctl_port, const char *cmd)
{
    char *r = fn_ctl_cmd(ctl_port, cmd);
    if (!r) {
        fail("%s: no reply line (%s)", cmd, fn_errbuf);
        return NULL;
    }
    if (strncmp(r, "OK ", 3) != 0) {
        fail("%s: reply \"%.200s\", want \"OK <json>\"", cmd, r);
        free(r);
        return NULL;
    }
    return r;
}

int fn_get_status(int ctl_port, fn_status *st)
{
    char *r = ok_payload(ctl_port, "STATUS");
    if (!r)
        return -1;
    int rc = fn_parse_status(r + 3, st);
    free(r);
    return rc;
}

int fn_get_nodes(int ctl_port, fn_nodeinfo *out, int max)
{
    char *r = ok_payload(ctl_port, "NODES");
    if (!r)
        return -1;
    int rc = fn_parse_nodes(r + 3, out, max);
    free(r);
    return rc;
}

int fn_get_links(int ctl_port, fn_linkinfo *out, int max)
{
    char *r = ok_payload(ctl_port, "LINKS");
    if (!r)
        return -1;
    int rc = fn_parse_links(r + 3, out, max);
    free(r);
    return rc;
}

/* ---------------------------------------------------------------- RNG */

void fn_rng_seed(fn_rng *r, uint64_t seed)
{
    r->s = seed ? seed : 0x9e3779b97f4a7c15ULL;
    r->left = 0;
    r->w = 0;
}

uint64_t fn_rng_next(fn_rng *r)
{
    r->s ^= r->s >> 12;
    r->s ^= r->s << 25;
    r->s ^= r->s >> 27;
    return r->s * 0x2545f4914f6cdd1dULL;
}

uint32_t fn_rng_below(fn_rng *r, uint32_t n)
{
    return n ? (uint32_t)(fn_rng_next(r) % n) : 0;
}

void fn_rng_fill(fn_rng *r, void *buf, size_t n)
{
    uint8_t *p = buf;
    while (n > 0) {
        if (r->left == 0) {
            r->w = fn_rng_next(r);
            r->left = 8;
        }
        *p++ = (uint8_t)r->w;
        r->w >>= 8;
        r->left--;
        n--;
    }
}
