/* Scripted EPMD exchanges: notation, servers, child processes, playing and
 * comparing.  See epmd_script.h. */
#include "epmd_script.h"

#include <arpa/inet.h>
#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <dirent.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

/* ---- small things ------------------------------------------------------ */

void es_appendf(char **s, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *add = NULL;
    int k = vasprintf(&add, fmt, ap);
    va_end(ap);
    if (k < 0)
        return;
    size_t old = *s ? strlen(*s) : 0;
    char *n = realloc(*s, old + (size_t)k + 1);
    if (!n) {
        free(add);
        return;
    }
    memcpy(n + old, add, (size_t)k + 1);
    *s = n;
    free(add);
}

int es_port_open(int port)
{
    int fd = tu_connect(port);
    if (fd < 0)
        return 0;
    close(fd);
    return 1;
}

static int port_bindable(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return 0;
    struct sockaddr_in sa = { 0 };
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int ok = bind(fd, (struct sockaddr *)&sa, sizeof sa) == 0;
    close(fd);
    return ok;
}

int es_free_port_pair(void)
{
    for (int i = 0; i < 50; i++) {
        int p = tu_free_port();
        if (p > 0 && p < 65535 && port_bindable(p + 1) && port_bindable(p))
            return p;
    }
    return -1;
}

/* ---- notation ---------------------------------------------------------- */

void es_buf_free(es_buf *b)
{
    free(b->b);
    free(b->wild);
    memset(b, 0, sizeof *b);
}

static void buf_reserve(es_buf *b, size_t need)
{
    if (b->n + need <= b->cap)
        return;
    size_t cap = b->cap ? b->cap : 64;
    while (cap < b->n + need)
        cap *= 2;
    uint8_t *nb = realloc(b->b, cap);
    uint8_t *nw = realloc(b->wild, cap);
    if (!nb || !nw)
        abort();
    b->b = nb;
    b->wild = nw;
    b->cap = cap;
}

void es_buf_put(es_buf *b, const void *p, size_t n, int wild)
{
    buf_reserve(b, n + 1);
    if (n == 0)
        return;   /* p may be NULL for an empty reply */
    memcpy(b->b + b->n, p, n);
    memset(b->wild + b->n, wild ? 1 : 0, n);
    b->n += n;
}

static void buf_put_buf(es_buf *b, const es_buf *src)
{
    buf_reserve(b, src->n + 1);
    if (src->n == 0)
        return;
    memcpy(b->b + b->n, src->b, src->n);
    memcpy(b->wild + b->n, src->wild, src->n);
    b->n += src->n;
}

static int hexval(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c = tolower(c);
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

int es_bytes(const char *text, es_buf *out, char *err, size_t errlen)
{
    const char *p = text;
    long lpos = -1;         /* where the L placeholder sits in out */
    while (*p) {
        while (*p == ' ' || *p == '\t' || *p == '\n')
            p++;
        if (!*p)
            break;
        if (*p == 'L' && (p[1] == 0 || isspace((unsigned char)p[1]))) {
            if (lpos >= 0) {
                snprintf(err, errlen, "two L in \"%s\"", text);
                return -1;
            }
            lpos = (long)out->n;
            uint8_t z[2] = { 0, 0 };
            es_buf_put(out, z, 2, 0);
            p++;
            continue;
        }
        if (*p == '|') {
            if (lpos < 0) {
                snprintf(err, errlen, "| without L in \"%s\"", text);
                return -1;
            }
            size_t len = out->n - (size_t)lpos - 2;
            out->b[lpos] = (uint8_t)(len >> 8);
            out->b[lpos + 1] = (uint8_t)len;
            lpos = -2;      /* closed */
            p++;
            continue;
        }
        int prefixed = 0;
        if (*p == '@') {
            prefixed = 1;
            p++;
        }
        es_buf tok = { 0 };
        if (*p == '\'') {
            p++;
            const char *q = strchr(p, '\'');
            if (!q) {
                snprintf(err, errlen, "unterminated quote in \"%s\"", text);
                es_buf_free(&tok);
                return -1;
            }
            es_buf_put(&tok, p, (size_t)(q - p), 0);
            p = q + 1;
        } else {
            const char *s = p;
            while (*p && (hexval(*p) >= 0 || *p == '?'))
                p++;
            size_t len = (size_t)(p - s);
            if (len == 0 || len % 2) {
                snprintf(err, errlen, "bad token at \"%.20s\" in \"%.60s\"", s,
                         text);
                es_buf_free(&tok);
                return -1;
            }
            for (size_t i = 0; i < len; i += 2) {
                if (s[i] == '?' && s[i + 1] == '?') {
                    uint8_t z = 0;
                    es_buf_put(&tok, &z, 1, 1);
                } else if (hexval(s[i]) >= 0 && hexval(s[i + 1]) >= 0) {
                    uint8_t v = (uint8_t)(hexval(s[i]) * 16 + hexval(s[i + 1]));
                    es_buf_put(&tok, &v, 1, 0);
                } else {
                    snprintf(err, errlen, "bad hex at \"%.20s\"", s + i);
                    es_buf_free(&tok);
                    return -1;
                }
            }
        }
        if (*p == '*') {
            p++;
            char *end;
            long rep = strtol(p, &end, 10);
            if (end == p || rep < 0 || rep > 100000) {
                snprintf(err, errlen, "bad repeat at \"%.20s\"", p);
                es_buf_free(&tok);
                return -1;
            }
            p = end;
            es_buf r = { 0 };
            for (long i = 0; i < rep; i++)
                buf_put_buf(&r, &tok);
            es_buf_free(&tok);
            tok = r;
        }
        if (*p && !isspace((unsigned char)*p)) {
            snprintf(err, errlen, "junk after token at \"%.20s\"", p);
            es_buf_free(&tok);
            return -1;
        }
        if (prefixed) {
            uint8_t l[2] = { (uint8_t)(tok.n >> 8), (uint8_t)tok.n };
            es_buf_put(out, l, 2, 0);
        }
        buf_put_buf(out, &tok);
        es_buf_free(&tok);
    }
    if (lpos >= 0) {
        size_t len = out->n - (size_t)lpos - 2;
        out->b[lpos] = (uint8_t)(len >> 8);
        out->b[lpos + 1] = (uint8_t)len;
    }
    return 0;
}

char *es_hex(const es_buf *b, size_t max, char *out, size_t outlen)
{
    size_t o = 0;
    out[0] = 0;
#define PUT(...) do { if (o < outlen) { int k_ = snprintf(out + o, outlen - o, __VA_ARGS__); \
            if (k_ > 0) o += (size_t)k_; } } while (0)
    size_t n = b->n < max ? b->n : max;
    size_t printable = 0;
    for (size_t i = 0; i < b->n; i++)
        printable += (b->b[i] >= 32 && b->b[i] < 127) || b->b[i] == '\n';
    int text = b->n > 24 && printable * 10 >= b->n * 8;
    PUT("[%zu] ", b->n);
    if (!text) {
        for (size_t i = 0; i < n; i++) {
            if (b->wild && b->wild[i])
                PUT("??");
            else
                PUT("%02x", b->b[i]);
            if (i + 1 < n)
                PUT(" ");
        }
        if (n < b->n)
            PUT(" ...");
        PUT("  ");
    }
    /* text replies (NAMES, DUMP) read better as text: \xNN for the rest */
    PUT("\"");
    size_t tn = text ? (b->n < 4 * max ? b->n : 4 * max) : n;
    for (size_t i = 0; i < tn; i++) {
        int c = b->b[i];
        if (b->wild && b->wild[i])
            PUT("?");
        else if (c == '\n')
            PUT("\\n");
        else if (c == 0)
            PUT("\\0");
        else if (c >= 32 && c < 127)
            PUT("%c", c);
        else if (text)
            PUT("\\x%02x", c);
        else
            PUT(".");
    }
    PUT(tn < b->n ? "...\"" : "\"");
#undef PUT
    return out;
}

/* ---- processes --------------------------------------------------------- */

#define MAX_TRACKED 64
static pid_t tracked[MAX_TRACKED];

static void track(pid_t pid)
{
    for (int i = 0; i < MAX_TRACKED; i++)
        if (tracked[i] <= 0) {
            tracked[i] = pid;
            return;
        }
}

static void untrack(pid_t pid)
{
    for (int i = 0; i < MAX_TRACKED; i++)
        if (tracked[i] == pid)
            tracked[i] = 0;
}

void es_reap_all(void)
{
    for (int i = 0; i < MAX_TRACKED; i++)
        if (tracked[i] > 0) {
            kill(tracked[i], SIGKILL);
            waitpid(tracked[i], NULL, 0);
            tracked[i] = 0;
        }
}

static void apply_env(const char *const *env)
{
    for (int i = 0; env && env[i]; i++) {
        const char *eq = strchr(env[i], '=');
        if (eq) {
            char k[256];
            size_t kl = (size_t)(eq - env[i]);
            if (kl >= sizeof k)
                continue;
            memcpy(k, env[i], kl);
            k[kl] = 0;
            setenv(k, eq + 1, 1);
        } else {
            unsetenv(env[i]);
        }
    }
}

/* Fork and exec with stdout to out_fd_child (-1: /dev/null) and stderr to
 * err_fd_child (-1: /dev/null). */
static pid_t spawn_fds(const char *const *argv, const char *const *env,
                       int out_child, int err_child, int close_in_child)
{
    signal(SIGPIPE, SIG_IGN);
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent)
            _exit(127);
        signal(SIGPIPE, SIG_DFL);
        apply_env(env);
        int nul = open("/dev/null", O_RDWR);
        dup2(nul, 0);
        dup2(out_child >= 0 ? out_child : nul, 1);
        dup2(err_child >= 0 ? err_child : nul, 2);
        if (close_in_child >= 0)
            close(close_in_child);
        if (nul > 2)
            close(nul);
        if (out_child > 2)
            close(out_child);
        if (err_child > 2)
            close(err_child);
        execv(argv[0], (char *const *)argv);
        dprintf(2, "exec %s: %s\n", argv[0], strerror(errno));
        _exit(127);
    }
    track(pid);
    return pid;
}

pid_t es_spawn(const char *const *argv, const char *const *env, int *out_fd,
               const char *errlog)
{
    int pfd[2] = { -1, -1 };
    if (out_fd && pipe2(pfd, O_CLOEXEC) < 0)
        return -1;
    int efd = -1;
    if (errlog)
        efd = open(errlog, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    pid_t pid = spawn_fds(argv, env, pfd[1], efd, pfd[0]);
    if (efd >= 0)
        close(efd);
    if (out_fd) {
        close(pfd[1]);
        if (pid < 0)
            close(pfd[0]);
        else
            *out_fd = pfd[0];
    }
    return pid;
}

int es_wait_pid(pid_t pid, int timeout_ms, int *status)
{
    long long deadline = tu_now_ms() + timeout_ms;
    for (;;) {
        int st;
        pid_t r = waitpid(pid, &st, WNOHANG);
        if (r == pid) {
            untrack(pid);
            if (status)
                *status = st;
            return 1;
        }
        if (r < 0 && errno != EINTR) {
            untrack(pid);
            if (status)
                *status = -1;
            return 1;
        }
        if (tu_now_ms() >= deadline)
            return 0;
        tu_sleep_ms(10);
    }
}

void es_kill_pid(pid_t pid)
{
    if (pid <= 0)
        return;
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    untrack(pid);
}

static char *slurp(const char *path, size_t *n)
{
    *n = 0;
    FILE *f = fopen(path, "rb");
    if (!f)
        return calloc(1, 1);
    char *buf = NULL;
    size_t cap = 0;
    for (;;) {
        if (*n + 4096 + 1 > cap) {
            cap = cap ? cap * 2 : 8192;
            char *nb = realloc(buf, cap);
            if (!nb)
                break;
            buf = nb;
        }
        size_t k = fread(buf + *n, 1, cap - *n - 1, f);
        if (k == 0)
            break;
        *n += k;
    }
    fclose(f);
    if (!buf)
        return calloc(1, 1);
    buf[*n] = 0;
    return buf;
}

int es_run(const char *const *argv, const char *const *env, int timeout_ms,
           es_run_result *r)
{
    memset(r, 0, sizeof *r);
    char op[] = "/tmp/epx-run-out.XXXXXX", ep[] = "/tmp/epx-run-err.XXXXXX";
    int ofd = mkstemp(op), efd = mkstemp(ep);
    if (ofd < 0 || efd < 0) {
        if (ofd >= 0) { close(ofd); unlink(op); }
        if (efd >= 0) { close(efd); unlink(ep); }
        return -1;
    }
    long long t0 = tu_now_ms();
    pid_t pid = spawn_fds(argv, env, ofd, efd, -1);
    close(ofd);
    close(efd);
    int rc = -1;
    if (pid > 0) {
        int st;
        if (es_wait_pid(pid, timeout_ms, &st)) {
            r->status = st;
            rc = 0;
        } else {
            r->timed_out = 1;
            r->status = -1;
            es_kill_pid(pid);
        }
    }
    r->ms = (long)(tu_now_ms() - t0);
    r->out = slurp(op, &r->out_n);
    r->err = slurp(ep, &r->err_n);
    unlink(op);
    unlink(ep);
    return rc;
}

void es_run_free(es_run_result *r)
{
    free(r->out);
    free(r->err);
    r->out = r->err = NULL;
}

/* ---- servers ----------------------------------------------------------- */

const char *es_otp_epmd_path(void)
{
    const char *p = getenv("EPX_OTP_EPMD");
    return (p && *p) ? p : "/usr/bin/epmd";
}

int es_names_probe(int port)
{
    int fd = tu_connect(port);
    if (fd < 0)
        return 0;
    uint8_t req[3] = { 0, 1, 'n' }, rep[4];
    int ok = tu_write_all(fd, req, 3) == 0 && tu_read_exact(fd, rep, 4, 2000) == 0 &&
             ((uint32_t)rep[0] << 24 | (uint32_t)rep[1] << 16 |
              (uint32_t)rep[2] << 8 | rep[3]) == (uint32_t)port;
    close(fd);
    return ok;
}

int es_otp_start(es_server *s, const char *const *opts)
{
    memset(s, 0, sizeof *s);
    s->kind = ES_OTP;
    s->name = "otp-epmd";
    s->pid = -1;
    for (int attempt = 0; attempt < 5; attempt++) {
        int port = tu_free_port();
        if (port <= 0)
            continue;
        char ps[16];
        snprintf(ps, sizeof ps, "%d", port);
        const char *argv[40];
        int argc = 0;
        argv[argc++] = es_otp_epmd_path();
        argv[argc++] = "-port";
        argv[argc++] = ps;
        argv[argc++] = "-address";   /* loopback only (it always adds it) */
        argv[argc++] = "127.0.0.1";
        for (int i = 0; opts && opts[i] && argc < 38; i++)
            argv[argc++] = opts[i];
        argv[argc] = NULL;
        snprintf(s->log, sizeof s->log, "%s/epx-otp-epmd.%d.%lld.log", tu_log_dir(),
                 (int)getpid(), tu_now_ms());
        /* Neither variable may leak in from the test's environment. */
        static const char *const env[] = { "ERL_EPMD_PORT",
                                           "ERL_EPMD_ADDRESS", NULL };
        const char *const *envp = env;
        pid_t pid = es_spawn(argv, envp, NULL, s->log);
        if (pid < 0)
            return -1;
        s->pid = pid;
        s->port = port;
        int exited = 0, st = 0;
        int up = TU_WAIT_UNTIL((exited = es_wait_pid(pid, 0, &st)) ||
                               es_names_probe(port), 10000);
        if (up && !exited && es_wait_pid(pid, 0, &st) == 0)
            return 0;
        if (!exited)
            es_kill_pid(pid);
        s->pid = -1;
        fprintf(stderr, "otp epmd on port %d did not come up (log %s)\n",
                port, s->log);
    }
    return -1;
}

int es_ours_start(es_server *s, const char *const *opts)
{
    memset(s, 0, sizeof *s);
    s->kind = ES_OURS;
    s->name = "epmdpxy";
    s->pid = -1;
    if (tu_daemon_start(&s->d, opts) < 0)
        return -1;
    s->pid = s->d.pid;
    s->port = s->d.epmd_port;
    snprintf(s->log, sizeof s->log, "%s", s->d.log);
    track(s->pid);
    return 0;
}

int es_server_wait_exit(es_server *s, int timeout_ms)
{
    if (s->pid <= 0)
        return 1;
    int st;
    if (!es_wait_pid(s->pid, timeout_ms, &st))
        return 0;
    s->status = st;
    s->pid = -1;
    if (s->kind == ES_OURS) {
        s->d.pid = -1;
        if (s->d.out_fd > 0)
            close(s->d.out_fd);
        s->d.out_fd = -1;
    }
    return 1;
}

void es_server_stop(es_server *s)
{
    if (s->pid > 0 && s->kind == ES_OURS) {
        untrack(s->pid);
        s->status = tu_daemon_stop(&s->d);
        s->pid = -1;
    } else if (s->pid > 0) {
        kill(s->pid, SIGTERM);
        if (!es_server_wait_exit(s, 5000)) {
            es_kill_pid(s->pid);
            s->pid = -1;
        }
    }
    /* OTP's log is only kept when a forked test dies before its teardown */
    if (s->kind == ES_OTP && s->log[0]) {
        unlink(s->log);
        s->log[0] = 0;
    }
}

/* ---- playing ----------------------------------------------------------- */

static int cmd_of(const es_buf *req)
{
    return req->n >= 3 ? req->b[2] : -1;
}

static int reply_complete(int cmd, const es_buf *r)
{
    if (cmd != 'x' || r->n == 0)
        return 0;
    return (r->b[0] == 'v' && r->n >= 6) || (r->b[0] == 'y' && r->n >= 4);
}

/* Read what fd gets until the peer closes, or until nothing more comes:
 * quiet_ms before the first byte, 3 s between later bytes, settle_ms once
 * an ALIVE2 reply is complete (the server keeps that connection open). */
static void read_outcome(int fd, int cmd, int quiet_ms, int settle_ms,
                         es_outcome *o)
{
    if (settle_ms == 0)
        settle_ms = 100;
    long long deadline = tu_now_ms() + (quiet_ms > 0 ? quiet_ms : 3000);
    uint8_t tmp[65536];
    o->end = ES_END_OPEN;
    for (;;) {
        int left = (int)(deadline - tu_now_ms());
        if (left <= 0)
            break;
        struct pollfd pf = { fd, POLLIN, 0 };
        int r = poll(&pf, 1, left);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        ssize_t k = read(fd, tmp, sizeof tmp);
        if (k < 0 && (errno == EINTR || errno == EAGAIN))
            continue;
        if (k == 0) {
            o->end = ES_END_EOF;
            break;
        }
        if (k < 0) {
            o->end = errno == ECONNRESET ? ES_END_RESET : ES_END_ERROR;
            break;
        }
        es_buf_put(&o->raw, tmp, (size_t)k, 0);
        if (o->raw.n > (1u << 22))
            break;
        if (reply_complete(cmd, &o->raw)) {
            if (settle_ms < 0)
                break;
            deadline = tu_now_ms() + settle_ms;
        } else {
            deadline = tu_now_ms() + 3000;
        }
    }
}

/* rx_queue of the socket with this exact 4-tuple, through sock_diag
 * (one exact lookup, no table walk).  -1 if not found, -2 if sock_diag is
 * not available. */
static long diag_rqueue(const struct sockaddr_in *local, const struct sockaddr_in *remote)
{
    int nl = socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
    if (nl < 0)
        return -2;
    struct {
        struct nlmsghdr nlh;
        struct inet_diag_req_v2 r;
    } req;
    memset(&req, 0, sizeof req);
    req.nlh.nlmsg_len = sizeof req;
    req.nlh.nlmsg_type = SOCK_DIAG_BY_FAMILY;
    req.nlh.nlmsg_flags = NLM_F_REQUEST;
    req.r.sdiag_family = AF_INET;
    req.r.sdiag_protocol = IPPROTO_TCP;
    req.r.idiag_states = ~0u;
    req.r.id.idiag_sport = local->sin_port;
    req.r.id.idiag_dport = remote->sin_port;
    req.r.id.idiag_src[0] = local->sin_addr.s_addr;
    req.r.id.idiag_dst[0] = remote->sin_addr.s_addr;
    req.r.id.idiag_cookie[0] = INET_DIAG_NOCOOKIE;
    req.r.id.idiag_cookie[1] = INET_DIAG_NOCOOKIE;
    long res = -2;
    if (send(nl, &req, sizeof req, 0) == (ssize_t)sizeof req) {
        struct pollfd pf = { nl, POLLIN, 0 };
        long buf[2048];
        ssize_t n = poll(&pf, 1, 1000) == 1 ? recv(nl, buf, sizeof buf, 0) : -1;
        struct nlmsghdr *h = (struct nlmsghdr *)buf;
        if (n > 0 && NLMSG_OK(h, (size_t)n)) {
            if (h->nlmsg_type == SOCK_DIAG_BY_FAMILY) {
                struct inet_diag_msg *m = NLMSG_DATA(h);
                res = (long)m->idiag_rqueue;
            } else if (h->nlmsg_type == NLMSG_ERROR) {
                struct nlmsgerr *e = NLMSG_DATA(h);
                res = e->error == -ENOENT ? -1 : -2;
            }
        }
    }
    close(nl);
    return res;
}

/* Bytes the server has not read yet from our connection fd: the receive
 * queue of its end of the connection.  -1 if that end is gone, or if it
 * cannot be known (then nobody waits). */
static long server_unread(int fd)
{
    struct sockaddr_in me, peer;
    socklen_t l1 = sizeof me, l2 = sizeof peer;
    if (getsockname(fd, (struct sockaddr *)&me, &l1) < 0 ||
        getpeername(fd, (struct sockaddr *)&peer, &l2) < 0 || me.sin_family != AF_INET)
        return -1;
    long r = diag_rqueue(&peer, &me);
    return r < 0 ? -1 : r;
}

/* Wait (up to timeout_ms) until the server has read everything we sent on
 * fd, so that the next bytes we send arrive in a read of their own. */
static void wait_server_read(int fd, int timeout_ms)
{
    long long deadline = tu_now_ms() + timeout_ms;
    while (server_unread(fd) > 0 && tu_now_ms() < deadline)
        tu_sleep_ms(1);
}

static void send_req(int fd, const es_buf *req, const es_buf *trail, es_how how,
                     int drain)
{
    if (how == ES_BYTEWISE) {
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        for (size_t i = 0; i < req->n; i++) {
            if (write(fd, req->b + i, 1) != 1)
                return;
            wait_server_read(fd, 3000);   /* each byte is its own read */
        }
        return;
    }
    es_buf all = { 0 };
    buf_put_buf(&all, req);
    if (how == ES_TRAILING && trail)
        buf_put_buf(&all, trail);
    (void)tu_write_all(fd, all.b, all.n);   /* may fail: server closed */
    es_buf_free(&all);
    if (how == ES_THEN_FIN)
        shutdown(fd, SHUT_WR);
    else if (drain)
        wait_server_read(fd, 3000);
}

void es_mask(int cmd, int port, const es_buf *raw, es_buf *m, int *port_word)
{
    *port_word = -1;
    m->n = 0;
    const uint8_t *b = raw->b;
    size_t n = raw->n;
    if (cmd == 'n' || cmd == 'd') {
        if (n < 4) {
            es_buf_put(m, b, n, 0);
            return;
        }
        uint32_t w = (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 |
                     (uint32_t)b[2] << 8 | b[3];
        *port_word = w == (uint32_t)port;
        es_buf_put(m, b, 4, *port_word);
        static const char *const marks[] = { "at port ", "port = ", "fd = " };
        size_t i = 4;
        while (i < n) {
            size_t ml = 0;
            for (size_t k = 0; k < 3 && !ml; k++) {
                size_t l = strlen(marks[k]);
                if (i + l <= n && memcmp(b + i, marks[k], l) == 0)
                    ml = l;
            }
            if (!ml) {
                es_buf_put(m, b + i, 1, 0);
                i++;
                continue;
            }
            es_buf_put(m, b + i, ml, 0);
            i += ml;
            size_t j = i;
            if (j < n && b[j] == '-')
                j++;
            while (j < n && isdigit(b[j]))
                j++;
            if (j > i) {
                es_buf_put(m, "#", 1, 0);
                i = j;
            }
        }
        return;
    }
    es_buf_put(m, b, n, 0);
    if (cmd == 'x' && n >= 6 && b[0] == 'v' && b[1] == 0)
        memset(m->wild + 2, 1, 4);
    else if (cmd == 'x' && n >= 4 && b[0] == 'y' && b[1] == 0)
        memset(m->wild + 2, 1, 2);
    else if (cmd == 'z' && n >= 4 && b[0] == 'w' && b[1] == 0)
        memset(m->wild + 2, 1, 2);
}

long long es_creation(const es_outcome *o)
{
    const es_buf *r = &o->raw;
    if (r->n == 6 && r->b[0] == 'v' && r->b[1] == 0)
        return (long long)((uint32_t)r->b[2] << 24 | (uint32_t)r->b[3] << 16 |
                           (uint32_t)r->b[4] << 8 | r->b[5]);
    if (r->n == 4 && r->b[0] == 'y' && r->b[1] == 0)
        return (long long)((uint32_t)r->b[2] << 8 | r->b[3]);
    return -1;
}

/* tu_connect for [::1]. */
static int connect6(int port)
{
    int fd = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    struct sockaddr_in6 sa;
    memset(&sa, 0, sizeof sa);
    sa.sin6_family = AF_INET6;
    sa.sin6_port = htons((uint16_t)port);
    sa.sin6_addr = in6addr_loopback;
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
        close(fd);
        return -1;
    }
    return fd;
}

int es_play_run(es_play *p, es_server *srv, const es_step *steps, size_t n,
                char *err, size_t errlen)
{
    memset(p, 0, sizeof *p);
    signal(SIGPIPE, SIG_IGN);
    p->srv = srv;
    p->nsteps = n;
    p->out = calloc(n ? n : 1, sizeof *p->out);
    for (int i = 0; i <= ES_MAX_SLOTS; i++)
        p->slots[i] = -1;
    for (size_t i = 0; i < n; i++) {
        const es_step *st = &steps[i];
        es_outcome *o = &p->out[i];
        o->port_word = -1;
        es_buf req = { 0 }, trail = { 0 };
        if ((st->req && es_bytes(st->req, &req, err, errlen) < 0) ||
            (st->trail && es_bytes(st->trail, &trail, err, errlen) < 0)) {
            es_buf_free(&req);
            es_buf_free(&trail);
            return -1;
        }
        if (st->slot < 0 || st->slot > ES_MAX_SLOTS) {
            snprintf(err, errlen, "step %zu: bad slot", i);
            return -1;
        }
        int cmd = cmd_of(&req);
        if (st->slot > 0) {
            /* the command byte of a connection is the third byte it sent,
             * whichever step sent it */
            int k = st->slot;
            if (st->op == ES_REQ)
                p->headn[k] = 0;
            if (st->op == ES_REQ || st->op == ES_SEND_ON)
                for (size_t j = 0; j < req.n && p->headn[k] < 3; j++)
                    p->head[k][p->headn[k]++] = req.b[j];
            cmd = p->headn[k] >= 3 ? p->head[k][2] : -1;
        }
        long long t0 = tu_now_ms();
        switch (st->op) {
        case ES_REQ: {
            int fd = st->v6 ? connect6(srv->port) : tu_connect(srv->port);
            if (fd < 0) {
                o->end = ES_END_NOCONN;
                break;
            }
            send_req(fd, &req, &trail, st->how, st->slot > 0);
            read_outcome(fd, cmd, st->quiet_ms, st->settle_ms, o);
            if (st->slot > 0 && o->end == ES_END_OPEN) {
                if (p->slots[st->slot] >= 0)
                    close(p->slots[st->slot]);
                p->slots[st->slot] = fd;
            } else {
                close(fd);
            }
            break;
        }
        case ES_SEND_ON:
        case ES_HALFCLOSE:
        case ES_WAIT_EOF: {
            int fd = p->slots[st->slot];
            if (fd < 0) {
                o->end = ES_END_NOCONN;
                break;
            }
            if (st->op == ES_SEND_ON)
                send_req(fd, &req, &trail, st->how, 1);
            else if (st->op == ES_HALFCLOSE)
                shutdown(fd, SHUT_WR);
            read_outcome(fd, cmd, st->quiet_ms, st->settle_ms, o);
            if (o->end != ES_END_OPEN) {
                close(fd);
                p->slots[st->slot] = -1;
            }
            break;
        }
        case ES_EXIT:
            if (es_server_wait_exit(srv, st->quiet_ms > 0 ? st->quiet_ms : 5000)) {
                o->end = ES_END_EXIT;
                o->exit_status = srv->status;
            } else {
                o->end = ES_END_OPEN;
            }
            break;
        }
        o->ms = (long)(tu_now_ms() - t0);
        es_mask(cmd, srv->port, &o->raw, &o->masked, &o->port_word);
        es_buf_free(&req);
        es_buf_free(&trail);
    }
    return 0;
}

void es_play_free(es_play *p)
{
    if (!p->out)
        return;   /* never played (or already freed) */
    for (int i = 0; i <= ES_MAX_SLOTS; i++)
        if (p->slots[i] >= 0) {
            close(p->slots[i]);
            p->slots[i] = -1;
        }
    for (size_t i = 0; p->out && i < p->nsteps; i++) {
        es_buf_free(&p->out[i].raw);
        es_buf_free(&p->out[i].masked);
    }
    free(p->out);
    p->out = NULL;
}

/* ---- checking ---------------------------------------------------------- */

static const char *end_name(const es_outcome *o, char *buf, size_t len)
{
    switch (o->end) {
    case ES_END_OPEN: return "left open";
    case ES_END_EOF: return "closed (FIN)";
    case ES_END_RESET: return "closed (RST)";
    case ES_END_NOCONN: return "no connection";
    case ES_END_ERROR: return "read error";
    case ES_END_EXIT:
        if (WIFEXITED(o->exit_status))
            snprintf(buf, len, "exited %d", WEXITSTATUS(o->exit_status));
        else if (WIFSIGNALED(o->exit_status))
            snprintf(buf, len, "killed by signal %d", WTERMSIG(o->exit_status));
        else
            snprintf(buf, len, "status %d", o->exit_status);
        return buf;
    }
    return "?";
}

/* Class of an end for comparison: FIN and RST are both "closed". */
static int end_class(const es_outcome *o)
{
    switch (o->end) {
    case ES_END_EOF:
    case ES_END_RESET:
    case ES_END_ERROR:
        return 1;
    case ES_END_EXIT:
        return 1000 + o->exit_status;
    default:
        return (int)o->end + 10;
    }
}

static int same_masked(const es_buf *a, const es_buf *b)
{
    if (a->n != b->n)
        return 0;
    for (size_t i = 0; i < a->n; i++) {
        if (a->wild[i] != b->wild[i])
            return 0;
        if (!a->wild[i] && a->b[i] != b->b[i])
            return 0;
    }
    return 1;
}

static size_t first_diff(const es_buf *a, const es_buf *b)
{
    size_t i = 0;
    while (i < a->n && i < b->n && a->wild[i] == b->wild[i] &&
           (a->wild[i] || a->b[i] == b->b[i]))
        i++;
    return i;
}

static void describe_step(char **rep, size_t i, const es_step *st)
{
    static const char *const ops[] = { "request", "send on held connection",
                                       "half-close held connection",
                                       "wait on held connection", "exit" };
    static const char *const hows[] = { "whole", "byte by byte",
                                        "with trailing bytes", "then FIN" };
    es_appendf(rep, "step %zu \"%s\" (%s", i + 1, st->desc, ops[st->op]);
    if (st->op == ES_REQ || st->op == ES_SEND_ON)
        es_appendf(rep, ", %s", hows[st->how]);
    if (st->slot)
        es_appendf(rep, ", slot %d", st->slot);
    es_appendf(rep, ")\n");
    if (st->req) {
        es_buf req = { 0 };
        char e[128], hx[600];
        if (es_bytes(st->req, &req, e, sizeof e) == 0)
            es_appendf(rep, "    request: %s\n", es_hex(&req, 48, hx, sizeof hx));
        es_buf_free(&req);
    }
    if (st->trail)
        es_appendf(rep, "    trailing: %s\n", st->trail);
}

int es_check(const es_step *steps, size_t n, const es_play *a,
             const es_play *b, char **report)
{
    int diffs = 0;
    char hx1[1200], hx2[1200], e1[64], e2[64];
    for (size_t i = 0; i < n; i++) {
        const es_step *st = &steps[i];
        const es_outcome *o = &a->out[i];
        char *local = NULL;
        if (st->expect) {
            es_buf want = { 0 };
            char err[200];
            if (es_bytes(st->expect, &want, err, sizeof err) < 0) {
                es_appendf(&local, "    bad expectation: %s\n", err);
            } else if (!same_masked(&want, &o->masked)) {
                es_appendf(&local, "    %s replied %s\n    expected %*s%s\n"
                           "    (first difference at byte %zu)\n",
                           a->srv->name, es_hex(&o->masked, 200, hx1, sizeof hx1),
                           (int)strlen(a->srv->name), "",
                           es_hex(&want, 200, hx2, sizeof hx2),
                           first_diff(&want, &o->masked));
            }
            es_buf_free(&want);
        }
        int endok = 1;
        switch (st->end) {
        case ES_X_CLOSED: endok = end_class(o) == 1; break;
        case ES_X_OPEN: endok = o->end == ES_END_OPEN; break;
        case ES_X_EXIT0:
            endok = o->end == ES_END_EXIT && WIFEXITED(o->exit_status) &&
                    WEXITSTATUS(o->exit_status) == 0;
            break;
        default: break;
        }
        if (!endok) {
            static const char *const xs[] = { "anything", "closed", "open",
                                              "exit 0" };
            es_appendf(&local, "    %s: connection %s, expected %s (after %ld ms)\n",
                       a->srv->name, end_name(o, e1, sizeof e1), xs[st->end],
                       o->ms);
        }
        if (o->port_word == 0)
            es_appendf(&local, "    %s: EPMDPortNo word is not its port %d\n",
                       a->srv->name, a->srv->port);
        if (b) {
            const es_outcome *q = &b->out[i];
            if (!same_masked(&o->masked, &q->masked) || end_class(o) != end_class(q)) {
                es_appendf(&local,
                           "    %-9s %s, %s\n    %-9s %s, %s\n",
                           a->srv->name, es_hex(&o->masked, 200, hx1, sizeof hx1),
                           end_name(o, e1, sizeof e1), b->srv->name,
                           es_hex(&q->masked, 200, hx2, sizeof hx2),
                           end_name(q, e2, sizeof e2));
                if (!same_masked(&o->masked, &q->masked))
                    es_appendf(&local, "    (first difference at byte %zu)\n",
                               first_diff(&o->masked, &q->masked));
            }
        }
        if (b && getenv("EPX_SCRIPT_VERBOSE"))
            fprintf(stderr, "step %3zu %-60.60s %s: %zu bytes, %s (%ld ms); %s: %zu "
                    "bytes, %s (%ld ms)\n", i + 1, st->desc, a->srv->name, o->raw.n,
                    end_name(o, e1, sizeof e1), o->ms, b->srv->name, b->out[i].raw.n,
                    end_name(&b->out[i], e2, sizeof e2), b->out[i].ms);
        if (b && !local && o->end != b->out[i].end &&
            end_class(o) == end_class(&b->out[i]))
            fprintf(stderr, "note: step %zu \"%s\": %s %s, %s %s\n", i + 1, st->desc,
                    a->srv->name, end_name(o, e1, sizeof e1), b->srv->name,
                    end_name(&b->out[i], e2, sizeof e2));
        if (local) {
            describe_step(report, i, st);
            es_appendf(report, "%s", local);
            free(local);
            diffs++;
        }
    }
    return diffs;
}

/* ---- odds and ends for the CLI suite ------------------------------------ */

int es_read_line(int fd, char *out, size_t len, int timeout_ms)
{
    long long deadline = tu_now_ms() + timeout_ms;
    size_t n = 0;
    while (n + 1 < len) {
        int left = (int)(deadline - tu_now_ms());
        if (left <= 0)
            break;
        struct pollfd pf = { fd, POLLIN, 0 };
        int r = poll(&pf, 1, left);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        char c;
        ssize_t k = read(fd, &c, 1);
        if (k < 0 && (errno == EINTR || errno == EAGAIN))
            continue;
        if (k <= 0)
            break;
        if (c == '\n') {
            out[n] = 0;
            return 0;
        }
        out[n++] = c;
    }
    out[n] = 0;
    return -1;
}

/* Inode of a listening socket on port in /proc/net/tcp or tcp6; 0 if none. */
static unsigned long listen_inode(const char *table, int port)
{
    FILE *f = fopen(table, "r");
    if (!f)
        return 0;
    char line[512];
    unsigned long found = 0;
    if (!fgets(line, sizeof line, f)) {   /* header */
        fclose(f);
        return 0;
    }
    while (!found && fgets(line, sizeof line, f)) {
        char local[64], remote[64];
        unsigned st;
        unsigned long inode;
        if (sscanf(line, "%*d: %63s %63s %x %*s %*s %*s %*s %*s %lu", local, remote,
                   &st, &inode) != 4)
            continue;
        char *colon = strrchr(local, ':');
        if (!colon || st != 0x0A)
            continue;
        if ((int)strtol(colon + 1, NULL, 16) == port)
            found = inode;
    }
    fclose(f);
    return found;
}

int es_pids_listening_on(int port, pid_t *first)
{
    *first = -1;
    unsigned long inode = listen_inode("/proc/net/tcp", port);
    if (!inode)
        inode = listen_inode("/proc/net/tcp6", port);
    if (!inode)
        return 0;
    char want[64];
    snprintf(want, sizeof want, "socket:[%lu]", inode);
    DIR *d = opendir("/proc");
    if (!d)
        return 0;
    int count = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (!isdigit((unsigned char)e->d_name[0]))
            continue;
        char path[300];
        snprintf(path, sizeof path, "/proc/%s/fd", e->d_name);
        DIR *fdd = opendir(path);
        if (!fdd)
            continue;
        struct dirent *fe;
        while ((fe = readdir(fdd)) != NULL) {
            if (fe->d_name[0] == '.')
                continue;
            char lp[600], tgt[64];
            snprintf(lp, sizeof lp, "%s/%s", path, fe->d_name);
            ssize_t k = readlink(lp, tgt, sizeof tgt - 1);
            if (k <= 0)
                continue;
            tgt[k] = 0;
            if (strcmp(tgt, want) == 0) {
                if (count++ == 0)
                    *first = (pid_t)atoi(e->d_name);
                break;
            }
        }
        closedir(fdd);
    }
    closedir(d);
    return count;
}

pid_t es_pid_listening_on(int port)
{
    pid_t pid;
    es_pids_listening_on(port, &pid);
    return pid;
}

size_t es_mask_text(char *s, size_t n)
{
    static const char *const marks[] = { "port = ", "port ", "fd = " };
    size_t o = 0, i = 0;
    while (i < n) {
        size_t ml = 0;
        for (size_t k = 0; k < 3 && !ml; k++) {
            size_t l = strlen(marks[k]);
            if (i + l < n && memcmp(s + i, marks[k], l) == 0 &&
                (isdigit((unsigned char)s[i + l]) || s[i + l] == '-'))
                ml = l;
        }
        if (!ml) {
            s[o++] = s[i++];
            continue;
        }
        memmove(s + o, s + i, ml);
        o += ml;
        i += ml;
        if (s[i] == '-')
            i++;
        while (i < n && isdigit((unsigned char)s[i]))
            i++;
        s[o++] = '#';
    }
    if (o < n)
        s[o] = 0;
    return o;
}
