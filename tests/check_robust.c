/* Suite "robust": hostile and sloppy clients on every port of the daemon.
 * Thousands of connections send junk, half frames, bad lengths, valid
 * requests with trailing garbage or nothing, then vanish (close or RST).
 * Afterwards the daemon must still serve, and its fd count must come back
 * to where it started.  The junk comes from a fixed seed, printed. */
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "epx.h"
#include "fakenode.h"
#include "testutil.h"
#include "tucase.h"

#define SEED 0x20251126ULL

static tu_daemon D;

static void setup(void)
{
    ck_assert_msg(tu_daemon_start(&D, NULL) == 0, "epmdpxy did not start (%s)",
                  tu_epmdpxy_path());
}

static void teardown(void)
{
    fn_close_all();
    tu_daemon_stop(&D);
}

#define ASSERT_ALIVE() ck_assert_msg(fn_daemon_alive(&D) == 0, "%s", fn_err())

static void put16(uint8_t *p, unsigned v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}

/* A well-formed EPMD request of a harmless kind (never KILL or STOP). */
static size_t epmd_valid(fn_rng *r, uint8_t *b)
{
    char name[32];
    snprintf(name, sizeof name, "junk%u", fn_rng_below(r, 50));
    size_t nl = strlen(name);
    switch (fn_rng_below(r, 4)) {
    case 0: /* ALIVE2 */
        b[2] = 'x';
        put16(b + 3, 1000 + fn_rng_below(r, 60000));
        b[5] = 'M';
        b[6] = 0;
        put16(b + 7, 6);
        put16(b + 9, 5);
        put16(b + 11, (unsigned)nl);
        memcpy(b + 13, name, nl);
        put16(b + 13 + nl, 0);
        put16(b, (unsigned)(13 + nl));
        return 15 + nl;
    case 1: /* PORT_PLEASE2 */
        b[2] = 'z';
        memcpy(b + 3, name, nl);
        put16(b, (unsigned)(1 + nl));
        return 3 + nl;
    case 2: /* NAMES */
        b[2] = 'n';
        put16(b, 1);
        return 3;
    default: /* DUMP */
        b[2] = 'd';
        put16(b, 1);
        return 3;
    }
}

/* Request bodies starting with these could stop the daemon. */
static void defuse(uint8_t *b, size_t n)
{
    if (n > 2 && (b[2] == 'k' || b[2] == 's'))
        b[2] = '?';
}

enum { K_NOTHING, K_RANDOM, K_HALF, K_ZERO, K_HUGE, K_TRAILING, K_VALID, K_NKINDS };
static const char *kind_name[K_NKINDS] = { "nothing", "random", "half frame", "Len 0",
                                           "oversized Len", "valid+garbage", "valid" };

/* What a connection to the EPMD port sends. */
static size_t gen_epmd(fn_rng *r, uint8_t *b, size_t cap, int *kind)
{
    size_t n = 0;
    *kind = (int)fn_rng_below(r, K_NKINDS);
    switch (*kind) {
    case K_NOTHING:
        break;
    case K_RANDOM:
        n = 1 + fn_rng_below(r, 400);
        fn_rng_fill(r, b, n);
        break;
    case K_HALF: {
        size_t full = epmd_valid(r, b);
        n = 1 + fn_rng_below(r, (uint32_t)full - 1);
        break;
    }
    case K_ZERO:
        b[0] = b[1] = 0;
        n = 2 + fn_rng_below(r, 20);
        fn_rng_fill(r, b + 2, n - 2);
        break;
    case K_HUGE:
        n = 2 + fn_rng_below(r, 4000);
        fn_rng_fill(r, b + 2, n - 2);
        put16(b, 3058 + fn_rng_below(r, 65536 - 3058));
        break;
    case K_TRAILING:
        n = epmd_valid(r, b);
        {
            size_t g = 1 + fn_rng_below(r, 100);
            fn_rng_fill(r, b + n, g);
            n += g;
        }
        break;
    default:
        n = epmd_valid(r, b);
        break;
    }
    (void)cap;
    defuse(b, n);
    return n;
}

/* What a connection to a proxy listener sends. */
static size_t gen_proxy(fn_rng *r, uint8_t *b, size_t cap, int *kind)
{
    size_t n = 0;
    char name[32];
    snprintf(name, sizeof name, "evil%u@localhost", fn_rng_below(r, 1000));
    *kind = (int)fn_rng_below(r, K_NKINDS);
    switch (*kind) {
    case K_NOTHING:
        break;
    case K_RANDOM:
        n = 1 + fn_rng_below(r, 400);
        fn_rng_fill(r, b, n);
        break;
    case K_HALF: {
        size_t full = fn_frame_send_name(b, name, FN_FLAGS, fn_rng_below(r, 100));
        n = 1 + fn_rng_below(r, (uint32_t)full - 1);
        break;
    }
    case K_ZERO:
        b[0] = b[1] = 0;
        n = 2 + fn_rng_below(r, 20);
        fn_rng_fill(r, b + 2, n - 2);
        break;
    case K_HUGE:
        n = 3 + fn_rng_below(r, 3000);
        fn_rng_fill(r, b + 2, n - 2);
        put16(b, 4096 + fn_rng_below(r, 65536 - 4096));
        b[2] = fn_rng_below(r, 2) ? 'N' : 'n';
        break;
    case K_TRAILING:
        n = fn_rng_below(r, 2) ? fn_frame_send_name(b, name, FN_FLAGS, 7)
                               : fn_frame_old_send_name(b, name, 0x7fbd);
        {
            size_t g = 1 + fn_rng_below(r, 3000);
            fn_rng_fill(r, b + n, g);
            n += g;
        }
        break;
    default:
        n = fn_frame_send_name(b, name, FN_FLAGS, 7);
        break;
    }
    (void)cap;
    return n;
}

/* 1 if b[0..n) contains `word`, ignoring case. */
static int has_word(const uint8_t *b, size_t n, const char *word)
{
    size_t wl = strlen(word);
    for (size_t i = 0; i + wl <= n; i++) {
        size_t k = 0;
        while (k < wl && (b[i + k] | 0x20) == word[k])
            k++;
        if (k == wl)
            return 1;
    }
    return 0;
}

/* What a connection to the control port sends. */
static size_t gen_control(fn_rng *r, uint8_t *b, size_t cap, int *kind)
{
    static const char *valid[] = { "PING\n", "STATUS\n", "NODES\n", "LINKS\n", "ping\r\n",
                                   "RULES\n", "bogus\n", "\n", "\r\n" };
    size_t n = 0;
    *kind = (int)fn_rng_below(r, K_NKINDS);
    switch (*kind) {
    case K_NOTHING:
        break;
    case K_RANDOM:
        n = 1 + fn_rng_below(r, 600);
        fn_rng_fill(r, b, n);
        break;
    case K_HALF: /* a command without its newline */
        n = 1 + fn_rng_below(r, 4);
        memcpy(b, "STATUS", n);
        break;
    case K_ZERO: /* NULs and newlines */
        n = 1 + fn_rng_below(r, 100);
        for (size_t i = 0; i < n; i++)
            b[i] = fn_rng_below(r, 2) ? 0 : '\n';
        break;
    case K_HUGE: /* an overlong line, now and then */
        if (fn_rng_below(r, 10) == 0) {
            n = 66000 + fn_rng_below(r, 4000);
            memset(b, 'x', n);
            b[n - 1] = '\n';
        } else {
            n = 1000 + fn_rng_below(r, 5000);
            memset(b, 'y', n);
        }
        break;
    case K_TRAILING:
        n = 0;
        for (int k = (int)fn_rng_below(r, 5); k >= 0; k--) {
            const char *v = valid[fn_rng_below(r, sizeof valid / sizeof valid[0])];
            memcpy(b + n, v, strlen(v));
            n += strlen(v);
        }
        {
            size_t g = 1 + fn_rng_below(r, 200);
            fn_rng_fill(r, b + n, g);
            n += g;
        }
        break;
    default: {
        const char *v = valid[fn_rng_below(r, sizeof valid / sizeof valid[0])];
        n = strlen(v);
        memcpy(b, v, n);
        break;
    }
    }
    (void)cap;
    /* Never tell the daemon to go away. */
    if (has_word(b, n, "shutdown") || has_word(b, n, "quit"))
        memset(b, 'q', n);
    return n;
}

typedef size_t (*gen_fn)(fn_rng *, uint8_t *, size_t, int *);

typedef struct abuse_stats {
    int kinds[K_NKINDS];
    int rst, closed, connect_failed, early;
} abuse_stats;

/* Accept and drop whatever the daemon connected to the fake node. */
static int drain(int lfd)
{
    int n = 0;
    if (lfd < 0)
        return 0;
    while (fn_pending(lfd, 0)) {
        int fd = fn_accept(lfd, 0);
        if (fd < 0)
            break;
        if (n++ % 2)
            fn_close_rst(fd);
        else
            fn_close(fd);
    }
    return n;
}

/* `total` connections to port, `batch` open at once; each sends what gen
 * makes and vanishes, some at once, the rest at the end of their batch,
 * half of them with an RST. */
static void abuse(const char *what, int port, int total, int batch, gen_fn gen, uint64_t seed,
                  int drain_lfd, abuse_stats *st)
{
    fn_rng r;
    fn_rng_seed(&r, seed);
    memset(st, 0, sizeof *st);
    uint8_t *buf = malloc(80000);
    int *fds = malloc(sizeof(int) * (size_t)batch);
    long long t0 = tu_now_ms();
    for (int done = 0; done < total;) {
        int nb = total - done < batch ? total - done : batch;
        for (int i = 0; i < nb; i++) {
            int err = 0;
            fds[i] = fn_connect(port, &err);
            if (fds[i] < 0) {
                st->connect_failed++;
                continue;
            }
            int kind;
            size_t n = gen(&r, buf, 80000, &kind);
            st->kinds[kind]++;
            if (n)
                fn_send_all(fds[i], buf, n);   /* may fail: the daemon may have closed */
            if (fn_rng_below(&r, 3) == 0) {
                st->early++;
                if (fn_rng_below(&r, 2)) {
                    fn_close_rst(fds[i]);
                    st->rst++;
                } else {
                    fn_close(fds[i]);
                    st->closed++;
                }
                fds[i] = -1;
            }
        }
        for (int i = 0; i < nb; i++) {
            if (fds[i] < 0)
                continue;
            if (fn_rng_below(&r, 2)) {
                fn_close_rst(fds[i]);
                st->rst++;
            } else {
                fn_close(fds[i]);
                st->closed++;
            }
        }
        drain(drain_lfd);
        done += nb;
        ck_assert_msg(fn_daemon_alive(&D) == 0, "%s: after %d connections: %s", what, done,
                      fn_err());
    }
    free(buf);
    free(fds);
    printf("robust %s: %d connections in %lld ms (seed %#llx): ", what, total,
           tu_now_ms() - t0, (unsigned long long)seed);
    for (int k = 0; k < K_NKINDS; k++)
        printf("%s %d, ", kind_name[k], st->kinds[k]);
    printf("%d closed, %d reset, %d vanished at once, %d connects failed\n", st->closed,
           st->rst, st->early, st->connect_failed);
    ck_assert_msg(st->connect_failed == 0, "%s: %d of %d connects failed", what,
                  st->connect_failed, total);
}

/* The daemon's fd count once it is fully up: it prints READY before it
 * has made its signal pipe, so a first control round trip comes first. */
static int base_fds(void)
{
    /* QUIT: the daemon closes its end before we see EOF, so the count
     * below does not include this connection. */
    fn_ctl c;
    ck_assert(fn_ctl_open(&c, D.control_port) == 0);
    ck_assert(fn_ctl_send(&c, "PING\nQUIT\n", 10) == 0);
    char *r = fn_ctl_line(&c, 10000);
    ck_assert_msg(r && !strcmp(r, "OK PONG"), "PING: \"%s\"", r ? r : fn_err());
    r = fn_ctl_line(&c, 10000);
    ck_assert_msg(r && !strcmp(r, "OK"), "QUIT: \"%s\"", r ? r : fn_err());
    ck_assert_msg(fn_wait_eof(c.fd, 10000, NULL, NULL) == 1, "no close after QUIT");
    fn_ctl_close(&c);
    int n = tu_fd_count(D.pid);
    ck_assert(n > 0);
    return n;
}

/* Wait for the daemon's fd count to come back to `base`. */
static void assert_fds_back(int base, const char *after, int drain_lfd)
{
    int now = -1;
    int ok = TU_WAIT_UNTIL((drain(drain_lfd), (now = tu_fd_count(D.pid)) == base), 20000);
    ck_assert_msg(ok, "after %s the daemon has %d open fds, %d before (waited 20 s): %s", after,
                  now, base, fn_fd_describe(D.pid));
}

/* A clean registration is served: v 0, then the name is found. */
static void assert_serves(void)
{
    ASSERT_ALIVE();
    fn_node n;
    ck_assert_msg(fn_node_start(&n, D.epmd_port, "clean") == 0, "clean ALIVE2/PORT2: %s",
                  fn_err());
    fn_link l;
    ck_assert_msg(fn_link_open(&l, &n, "a@localhost") == 0, "clean link: %s", fn_err());
    ck_assert_msg(fn_link_handshake(&l, "clean@localhost") == 0, "clean link: %s", fn_err());
    fn_link_close(&l);
    fn_node_stop(&n);
    char *r = fn_ctl_cmd(D.control_port, "PING");
    ck_assert_msg(r && !strcmp(r, "OK PONG"), "control PING: \"%s\"", r ? r : fn_err());
    free(r);
}

static int nodes_now(void)
{
    fn_status st;
    return fn_get_status(D.control_port, &st) == 0 ? (int)st.nodes : -1;
}

START_TEST(epmd_port_abuse)
{
    int base = base_fds();
    abuse_stats st;
    abuse("epmd", D.epmd_port, 10000, 150, gen_epmd, SEED, -1, &st);
    ck_assert_msg(TU_WAIT_UNTIL(nodes_now() == 0, 20000),
                  "junk registrations still listed: STATUS nodes %d", nodes_now());
    assert_fds_back(base, "10000 junk EPMD connections", -1);
    assert_serves();
    assert_fds_back(base, "a clean registration and link", -1);
}
END_TEST

START_TEST(proxy_port_abuse)
{
    fn_node b;
    ck_assert_msg(fn_node_start(&b, D.epmd_port, "b") == 0, "%s", fn_err());
    int base = base_fds();
    abuse_stats st;
    abuse("proxy", b.proxy_port, 2000, 150, gen_proxy, SEED + 1, b.lfd, &st);
    fn_linkinfo li[4];
    int n = 0;
    ck_assert_msg(TU_WAIT_UNTIL((drain(b.lfd), (n = fn_get_links(D.control_port, li, 4)) == 0),
                                20000),
                  "%d junk links still listed 20 s later (%s)", n, n < 0 ? fn_err() : "");
    assert_fds_back(base, "2000 junk proxy connections", b.lfd);
    fn_link l;
    ck_assert_msg(fn_link_open(&l, &b, "a@localhost") == 0, "clean link: %s", fn_err());
    ck_assert_msg(fn_link_handshake(&l, "b@localhost") == 0, "clean link: %s", fn_err());
    ck_assert_msg(fn_xfer(l.ini, l.acc, 100000, 100000, 5, 10000) == 0, "%s", fn_err());
    fn_link_close(&l);
    assert_fds_back(base, "a clean link", b.lfd);
    assert_serves();
}
END_TEST

START_TEST(control_port_abuse)
{
    int base = base_fds();
    abuse_stats st;
    abuse("control", D.control_port, 2000, 150, gen_control, SEED + 2, -1, &st);
    assert_fds_back(base, "2000 junk control connections", -1);
    assert_serves();
    assert_fds_back(base, "a clean registration and link", -1);
}
END_TEST

START_TEST(thousand_registrations)
{
    enum { N = 1000 };
    long lim = fn_raise_nofile();
    ck_assert_msg(lim >= 2 * N + 100, "RLIMIT_NOFILE hard limit %ld is too low", lim);
    int base = base_fds();
    int port;
    int lfd = fn_listen(&port);
    ck_assert(lfd >= 0);
    static int reg[N], proxy[N];
    char name[32];
    long long t0 = tu_now_ms();
    for (int i = 0; i < N; i++) {
        snprintf(name, sizeof name, "r%d", i);
        reg[i] = fn_alive2(D.epmd_port, name, port, NULL);
        ck_assert_msg(reg[i] >= 0, "registration %d of %d: %s", i + 1, N, fn_err());
    }
    for (int i = 0; i < N; i++) {
        snprintf(name, sizeof name, "r%d", i);
        proxy[i] = fn_port_please(D.epmd_port, name);
        ck_assert_msg(proxy[i] > 0, "PORT_PLEASE2 %s with %d nodes registered: %d (%s)", name,
                      N, proxy[i], fn_err());
    }
    /* Every node has its own proxy listener. */
    static uint8_t seen[65536];
    memset(seen, 0, sizeof seen);
    for (int i = 0; i < N; i++) {
        ck_assert_msg(!seen[proxy[i]], "proxy port %d given to two nodes", proxy[i]);
        seen[proxy[i]] = 1;
    }
    static fn_nodeinfo ns[N + 1];
    int n = fn_get_nodes(D.control_port, ns, N + 1);
    ck_assert_msg(n == N, "NODES lists %d nodes, want %d (%s)", n, N, n < 0 ? fn_err() : "");
    printf("robust: %d registrations and lookups in %lld ms, daemon fds %d\n", N,
           tu_now_ms() - t0, tu_fd_count(D.pid));
    for (int i = 0; i < N; i++)
        fn_close(reg[i]);
    ck_assert_msg(TU_WAIT_UNTIL(fn_get_nodes(D.control_port, ns, 1) == 0, 20000),
                  "NODES not empty 20 s after %d registrations closed", N);
    fn_close(lfd);
    assert_fds_back(base, "1000 registrations released", -1);
    assert_serves();
}
END_TEST

/* A control client that sends commands and never reads the replies: the
 * daemon must stop reading it rather than queue replies without bound, and
 * keep serving everyone else. */
START_TEST(control_client_never_reads)
{
    int base = base_fds();
    long rss0 = fn_rss_kib(D.pid);
    int fd = fn_connect(D.control_port, NULL);
    ck_assert(fd >= 0);
    static char req[65536];
    for (size_t i = 0; i + 7 <= sizeof req; i += 7)
        memcpy(req + i, "STATUS\n", 7);
    size_t chunk = sizeof req - sizeof req % 7, sent = 0, off = 0;
    const size_t cap = 64u << 20;     /* 64 MB of requests = ~1 GB of replies */
    int stalled = 0;
    long long deadline = tu_now_ms() + 60000;
    while (sent < cap && tu_now_ms() < deadline) {
        ssize_t k = send(fd, req + off, chunk - off, MSG_DONTWAIT | MSG_NOSIGNAL);
        if (k > 0) {
            sent += (size_t)k;
            off = (off + (size_t)k) % chunk;
            continue;
        }
        if (k < 0 && errno != EAGAIN && errno != EINTR)
            break;
        struct pollfd p = { fd, POLLOUT, 0 };
        if (poll(&p, 1, 500) == 0) {
            stalled = 1;
            break;
        }
    }
    long rss = fn_rss_kib(D.pid);
    printf("robust control_client_never_reads: %zu bytes of STATUS requests sent, %s; daemon "
           "RSS %ld -> %ld KiB\n", sent, stalled ? "then the daemon stopped reading" :
           "never stalled", rss0, rss);
    ASSERT_ALIVE();
    ck_assert_msg(rss - rss0 < 64 * 1024, "daemon RSS %ld KiB after %zu bytes of unread STATUS replies",
                  rss, sent / 7 * 130);
    ck_assert_msg(stalled, "the daemon kept reading requests from a client that reads nothing "
                  "(%zu bytes)", sent);
    long long t0 = tu_now_ms();
    char *r = fn_ctl_cmd(D.control_port, "PING");
    ck_assert_msg(r && !strcmp(r, "OK PONG"), "PING beside the stuck client: \"%s\"",
                  r ? r : fn_err());
    free(r);
    ck_assert_msg(tu_now_ms() - t0 < 2000, "PING took %lld ms beside the stuck client",
                  tu_now_ms() - t0);
    fn_close_rst(fd);
    assert_fds_back(base, "the stuck control client left", -1);
    assert_serves();
}
END_TEST

/* CPU time (user+system, in clock ticks) the daemon used so far. */
static long long cpu_ticks(pid_t pid)
{
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    size_t k = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[k] = 0;
    char *p = strrchr(buf, ')');
    unsigned long long ut, stt;
    if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut,
                     &stt) != 2)
        return -1;
    return (long long)(ut + stt);
}

/* pid's open fds numbered below `below`: those that count against an fd
 * limit of `below` (under valgrind, its own fds sit above the limit). */
static int fds_below(pid_t pid, int below)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/fd", (int)pid);
    DIR *d = opendir(path);
    if (!d)
        return -1;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        if (e->d_name[0] != '.' && atoi(e->d_name) < below)
            n++;
    closedir(d);
    return n;
}

/* The tests below cut the daemon's fd limit to 64 with prlimit.  valgrind
 * answers the daemon's getrlimit from its own copy of the limit, taken when
 * it starts, and never sees that: the daemon would keep no fd reserve
 * (its accepts would run into EMFILE instead, and take the fds a link
 * needs).  Under EPX_VALGRIND the daemon starts again with the soft limit
 * already 64, which valgrind passes on as soft and hard limit (keeping
 * its own fds above it); cut_fd_limit() is then a no-op. */
static void limit_fds_at_start(void)
{
    if (!getenv("EPX_VALGRIND"))
        return;
    tu_daemon_stop(&D);
    struct rlimit rl;
    ck_assert(getrlimit(RLIMIT_NOFILE, &rl) == 0);
    struct rlimit low = { 64, rl.rlim_max };
    ck_assert_msg(setrlimit(RLIMIT_NOFILE, &low) == 0, "setrlimit: %s", strerror(errno));
    int r = tu_daemon_start(&D, NULL);
    ck_assert(setrlimit(RLIMIT_NOFILE, &rl) == 0);
    ck_assert_msg(r == 0, "epmdpxy did not start with the fd limit 64");
}

/* Cut the running daemon's fd limit to 64 (see limit_fds_at_start). */
static void cut_fd_limit(void)
{
    if (getenv("EPX_VALGRIND"))
        return;
    struct rlimit low = { 64, 64 };
    ck_assert_msg(prlimit(D.pid, RLIMIT_NOFILE, &low, NULL) == 0, "prlimit: %s",
                  strerror(errno));
}

/* The daemon's fd limit is cut to 64 (soft and hard; cut_fd_limit) and
 * 120 idle connections to `port` exceed it.  It must neither die nor spin
 * (poll says the listener is readable, accept says EMFILE), and must serve
 * again once they go. */
static void exhaust(const char *what, int port, int base)
{
    cut_fd_limit();
    enum { N = 120 };
    int fds[N];
    for (int i = 0; i < N; i++) {
        fds[i] = fn_connect(port, NULL);
        ck_assert_msg(fds[i] >= 0, "%s: connect %d: %s", what, i, fn_err());
    }
    /* Let the daemon reach what it will accept: the limit, or for EPMD and
     * control clients the limit less its fd reserve (epx.h).  Then measure
     * its CPU use and log growth over 2 s.  An idle daemon uses next to
     * nothing; a busy loop gets a good share of a core even on a loaded
     * machine. */
    int now = 0;
    int full = TU_WAIT_UNTIL((now = fds_below(D.pid, 64)) >= 64 - EPX_FD_RESERVE, 10000);
    ck_assert_msg(full, "%s: the daemon has %d fds 10 s after %d connections; it should take "
                  "them up to its limit (64, less a reserve of %d): %s", what, now, N,
                  EPX_FD_RESERVE, fn_fd_describe(D.pid));
    struct stat lst;
    long log0 = stat(D.log, &lst) == 0 ? (long)lst.st_size : -1;
    long long c0 = cpu_ticks(D.pid), t0 = tu_now_ms();
    tu_sleep_ms(2000);
    long long c1 = cpu_ticks(D.pid), t1 = tu_now_ms();
    long log1 = stat(D.log, &lst) == 0 ? (long)lst.st_size : -1;
    long hz = sysconf(_SC_CLK_TCK);
    double busy = (double)(c1 - c0) / (double)hz / ((double)(t1 - t0) / 1000.0);
    printf("robust fd_exhaustion %s: daemon fds %d (base %d), CPU %.0f%% and %ld log bytes "
           "in 2 s at its limit\n", what, now, base, busy * 100, log1 - log0);
    ASSERT_ALIVE();
    ck_assert_msg(busy < 0.1, "%s: the daemon used %.0f%% CPU while out of fds (busy loop on "
                  "EMFILE?); its log grew by %ld bytes in 2 s", what, busy * 100, log1 - log0);
    ck_assert_msg(log1 - log0 < 65536, "%s: the daemon logged %ld bytes in 2 s while out of fds",
                  what, log1 - log0);
    for (int i = 0; i < N; i++)
        fn_close(fds[i]);
    assert_fds_back(base, "idle connections over the fd limit closed", -1);
    assert_serves();
}

/* Idle EPMD clients up to the fd limit must not take the fds a
 * registration needs: an ALIVE2 on an accepted connection still opens its
 * proxy listener (the daemon keeps a reserve and stops accepting before). */
START_TEST(fd_reserve_for_alive2)
{
    limit_fds_at_start();
    int base = base_fds();
    cut_fd_limit();
    /* the registration's connection first, so that it is accepted */
    int reg = fn_connect(D.epmd_port, NULL);
    ck_assert_msg(reg >= 0, "connect: %s", fn_err());
    ck_assert_msg(TU_WAIT_UNTIL(tu_fd_count(D.pid) > base, 10000),
                  "the daemon did not accept a connection (fds %d)", tu_fd_count(D.pid));
    enum { N = 120 };
    int fds[N];
    for (int i = 0; i < N; i++) {
        fds[i] = fn_connect(D.epmd_port, NULL);
        ck_assert_msg(fds[i] >= 0, "connect %d: %s", i, fn_err());
    }
    int now = 0;
    ck_assert_msg(TU_WAIT_UNTIL((now = fds_below(D.pid, 64)) >= 64 - EPX_FD_RESERVE, 10000),
                  "the daemon has %d fds 10 s after %d connections", now, N);
    int port;
    int lfd = fn_listen(&port);
    ck_assert(lfd >= 0);
    /* ALIVE2 for "res" on the accepted connection */
    uint8_t req[32] = { 0, 16, 'x', (uint8_t)(port >> 8), (uint8_t)port, 'M', 0, 0, 6, 0, 5,
                        0, 3, 'r', 'e', 's', 0, 0 };
    ck_assert_int_eq(fn_send_all(reg, req, 18), 0);
    uint8_t rep[6];
    ck_assert_msg(tu_read_exact(reg, rep, 6, 10000) == 0, "no ALIVE2 reply");
    printf("robust fd_reserve_for_alive2: daemon fds %d (base %d, limit 64), ALIVE2 result %d\n",
           tu_fd_count(D.pid), base, rep[1]);
    ck_assert_msg(rep[0] == 'v' && rep[1] == 0, "ALIVE2 beside %d idle clients at the fd limit: "
                  "reply %02x %02x (the proxy listener could not be opened?)", N, rep[0], rep[1]);
    for (int i = 0; i < N; i++)
        fn_close(fds[i]);
    fn_close(reg);
    fn_close(lfd);
    assert_fds_back(base, "idle connections and the registration closed", -1);
    assert_serves();
}
END_TEST

START_TEST(fd_exhaustion_epmd)
{
    limit_fds_at_start();
    int base = base_fds();
    exhaust("EPMD port", D.epmd_port, base);
}
END_TEST

START_TEST(fd_exhaustion_control)
{
    limit_fds_at_start();
    int base = base_fds();
    exhaust("control port", D.control_port, base);
}
END_TEST

START_TEST(fd_exhaustion_proxy)
{
    limit_fds_at_start();
    fn_node b;
    ck_assert_msg(fn_node_start(&b, D.epmd_port, "b") == 0, "%s", fn_err());
    int base = base_fds();
    exhaust("proxy port", b.proxy_port, base);
}
END_TEST

Suite *robust_suite(void)
{
    Suite *s = suite_create("robust");
    struct { const char *name; const TTest *t; int timeout; } cases[] = {
        { "epmd_port_abuse", epmd_port_abuse, 150 },
        { "proxy_port_abuse", proxy_port_abuse, 120 },
        { "control_port_abuse", control_port_abuse, 120 },
        { "thousand_registrations", thousand_registrations, 120 },
        { "control_client_never_reads", control_client_never_reads, 120 },
        { "fd_exhaustion_epmd", fd_exhaustion_epmd, 60 },
        { "fd_reserve_for_alive2", fd_reserve_for_alive2, 60 },
        { "fd_exhaustion_control", fd_exhaustion_control, 60 },
        { "fd_exhaustion_proxy", fd_exhaustion_proxy, 60 },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        tu_add_case(s, cases[i].name, cases[i].t, cases[i].timeout, setup, teardown);
    return s;
}
