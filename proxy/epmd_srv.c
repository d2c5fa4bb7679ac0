#include "epmd_srv.h"

#include <errno.h>
#include <stdio.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "epmd_codec.h"
#include "log.h"
#include "proxy.h"
#include "sbuf.h"
#include "sock.h"

#define MAX_LISTENERS (EPX_MAX_ADDRS + 2)

enum after_write { AFTER_CLOSE, AFTER_KEEP, AFTER_EXIT };

/* A connection reads one request, then writes one reply (after
 * -delay_write, if set), then closes, or stays as a registration.  Its one
 * deadline is `timer`: the packet timeout while reading or writing (fired
 * lazily: the callback re-arms from mod_ms if there was activity since),
 * the -delay_write delay while a reply waits, none for a registration. */
typedef struct econn {
    struct econn *prev, *next;
    epmd_srv *srv;
    int fd;
    int local;              /* epmd's local-peer test passed */
    int keep;               /* an ALIVE2 was answered: never times out */
    int writing;
    int delayed;            /* the reply waits for -delay_write */
    enum after_write after;
    size_t got, want;
    long long mod_ms;       /* last activity */
    loop_timer *timer;
    reg_node *node;         /* the registration this socket holds */
    sbuf out;
    size_t outoff;
    uint8_t buf[EPMD_INBUF_SIZE];
} econn;

struct epmd_srv {
    epx *x;
    int lfd[MAX_LISTENERS];
    int nl;
    int port;
    loop_timer *accept_timer;  /* -delay_accept: listeners paused until it fires */
    int reserve_logged;     /* "keeping fds in reserve" said once per episode */
    econn *conns;
    int nconns;
};

static void conn_close(econn *c);

epmd_srv *epmd_srv_new(epx *x)
{
    epmd_srv *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->x = x;
    s->port = -1;
    return s;
}

int epmd_srv_port(const epmd_srv *s)
{
    return s->port;
}

static void listeners_enable(epmd_srv *s, int on)
{
    for (int i = 0; i < s->nl; i++)
        loop_mod(s->x->loop, s->lfd[i], on ? POLLIN : 0);
}

/* Unregister the node this connection holds, if any. */
static void drop_registration(econn *c)
{
    reg_node *n = c->node;
    if (!n)
        return;
    epx *x = c->srv->x;
    log_msg(LOG_INFO, "unregistered %s (port %u, proxy port %d)", n->name, n->port, n->proxy_port);
    events_add(&x->ev, loop_now_ms(), "unregistered", "\"name\":%s,\"port\":%u",
               events_q(n->name), n->port);
    proxy_node_down(x->proxy, n);
    registry_unregister(&x->reg, n);
    /* n->reg_fd stays: epmd's DUMP shows an old entry with its last fd */
    c->node = NULL;
}

static void conn_close(econn *c)
{
    epmd_srv *s = c->srv;
    drop_registration(c);
    loop_timer_del(s->x->loop, c->timer);
    loop_del(s->x->loop, c->fd);
    close(c->fd);
    if (c->prev)
        c->prev->next = c->next;
    else
        s->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    s->nconns--;
    sbuf_free(&c->out);
    free(c);
}

static void idle_fire(void *ctx);

/* How long a connection may stay idle.  epmd closes once its whole-second
 * clock shows more than packet_timeout seconds since the last activity,
 * checked when select wakes (every 1 s, or 5 s from a timeout of 5): N to
 * about N+2 s.  N+1 s is in that range, never sooner than epmd can close,
 * and leaves a client that sends one byte every N seconds (OTP's
 * epmd_SUITE slow_get_port_nr, with N = 1) the slack epmd gives it. */
static long long idle_ms(const econn *c)
{
    return (c->srv->x->cfg.packet_timeout + 1) * 1000LL;
}

/* Arm the packet timeout from now.  0, or -1 (connection closed) if no
 * timer could be had: a connection without a deadline could be held forever. */
static int arm_idle(econn *c)
{
    loop *l = c->srv->x->loop;
    loop_timer_del(l, c->timer);
    c->mod_ms = loop_now_ms();
    c->timer = loop_timer_at(l, c->mod_ms + idle_ms(c), idle_fire, c);
    if (!c->timer) {
        log_msg(LOG_ERR, "epmd: out of memory for a timer: closing fd %d", c->fd);
        conn_close(c);
        return -1;
    }
    return 0;
}

/* The packet timeout: close a connection idle too long (reading a request
 * or stuck writing a reply), as epmd does. */
static void idle_fire(void *ctx)
{
    econn *c = ctx;
    c->timer = NULL;
    long long due = c->mod_ms + idle_ms(c);
    if (loop_now_ms() < due) {
        /* there was activity since the timer was armed */
        c->timer = loop_timer_at(c->srv->x->loop, due, idle_fire, c);
        if (c->timer)
            return;
    }
    log_msg(LOG_DEBUG, "epmd: closing idle connection (fd %d)", c->fd);
    conn_close(c);
}

static void try_write(econn *c)
{
    while (c->outoff < c->out.len) {
        ssize_t k = write(c->fd, c->out.p + c->outoff, c->out.len - c->outoff);
        if (k < 0 && errno == EINTR)
            continue;
        if (k < 0 && errno == EAGAIN) {
            loop_mod(c->srv->x->loop, c->fd, POLLOUT);
            return;
        }
        if (k <= 0) {
            log_msg(LOG_DEBUG, "epmd: write failed on fd %d: %s", c->fd, strerror(errno));
            conn_close(c);   /* a registration whose reply failed is undone */
            return;
        }
        c->outoff += (size_t)k;
        c->mod_ms = loop_now_ms();
    }
    c->writing = 0;
    sbuf_free(&c->out);
    c->outoff = 0;
    switch (c->after) {
    case AFTER_KEEP:
        c->keep = 1;
        loop_timer_del(c->srv->x->loop, c->timer);   /* registrations never time out */
        c->timer = NULL;
        loop_mod(c->srv->x->loop, c->fd, POLLIN);
        break;
    case AFTER_EXIT:
        log_msg(LOG_INFO, "epmd: KILL: exiting");
        c->srv->x->stop = 1;
        c->srv->x->exit_code = 0;
        conn_close(c);
        break;
    case AFTER_CLOSE:
        conn_close(c);
        break;
    }
}

/* -delay_write is over: the reply goes, under the packet timeout again. */
static void delay_fire(void *ctx)
{
    econn *c = ctx;
    c->timer = NULL;
    c->delayed = 0;
    if (arm_idle(c) < 0)
        return;
    try_write(c);
}

/* Send what is in c->out (one write when the socket allows), then do `after`. */
static void reply(econn *c, enum after_write after)
{
    c->after = after;
    c->writing = 1;
    c->outoff = 0;
    int delay = c->srv->x->cfg.delay_write;
    if (delay > 0) {
        /* epmd sleeps before it writes; we leave the socket out of poll */
        loop *l = c->srv->x->loop;
        loop_mod(l, c->fd, 0);
        loop_timer_del(l, c->timer);
        c->timer = loop_timer_in(l, delay * 1000LL, delay_fire, c);
        if (!c->timer) {
            log_msg(LOG_ERR, "epmd: out of memory for a timer: closing fd %d", c->fd);
            conn_close(c);
            return;
        }
        c->delayed = 1;
        return;
    }
    try_write(c);
}

static void do_alive2(econn *c, const epmd_req *r)
{
    epx *x = c->srv->x;
    reg_node *n = NULL;
    if (r->alive_ok) {
        n = registry_register(&x->reg, &r->alive, time(NULL));
        if (!n)
            log_msg(LOG_ERR, "epmd: ALIVE2 refused: name %.*s already registered",
                    (int)r->alive.namelen, (const char *)r->alive.name);
    } else {
        log_msg(LOG_ERR, "epmd: ALIVE2 refused: %s", r->why);
    }
    if (n) {
        n->reg_fd = c->fd;
        n->since_ms = loop_now_ms();
        c->node = n;
        if (proxy_node_up(x->proxy, n) < 0) {
            drop_registration(c);
            n = NULL;
        } else {
            log_msg(LOG_INFO, "registered %s (port %u, creation %u, proxy port %d)",
                    n->name, n->port, n->counter, n->proxy_port);
            events_add(&x->ev, loop_now_ms(), "registered",
                       "\"name\":%s,\"port\":%u,\"proxy_port\":%d,\"creation\":%u",
                       events_q(n->name), n->port, n->proxy_port, n->counter);
        }
    }
    uint8_t rep[8];
    size_t len = epmd_alive2_reply(rep, r->alive.highvsn, n != NULL, n ? n->counter : 0);
    sbuf_add(&c->out, rep, len);
    reply(c, AFTER_KEEP);
}

static void do_port2(econn *c, const epmd_req *r)
{
    epx *x = c->srv->x;
    reg_node *n = registry_find(&x->reg, r->name, r->namelen);
    uint8_t rep[16 + 2 * EPMD_MAXSYMLEN];
    size_t len;
    if (n) {
        epmd_alive2 a;
        registry_as_alive2(n, &a);
        len = epmd_port2_reply(rep, sizeof rep, (uint16_t)n->proxy_port, &a);
    } else {
        len = epmd_port2_notfound(rep);
    }
    sbuf_add(&c->out, rep, len);
    reply(c, AFTER_CLOSE);
}

static void do_names(econn *c, int dump)
{
    epx *x = c->srv->x;
    uint8_t p4[4];
    epmd_put_port32(p4, (uint32_t)x->epmd_port);
    sbuf_add(&c->out, p4, 4);
    char line[EPMD_MAXSYMLEN + 128];
    for (reg_node *n = x->reg.reg; n; n = n->next) {
        size_t len = dump
            ? epmd_dump_line(line, sizeof line, 1, (const uint8_t *)n->name, n->namelen,
                             n->proxy_port, n->reg_fd)
            : epmd_names_line(line, sizeof line, (const uint8_t *)n->name, n->namelen,
                              n->proxy_port);
        sbuf_add(&c->out, line, len < sizeof line ? len : sizeof line - 1);
    }
    if (dump)
        for (reg_node *n = x->reg.unused; n; n = n->next) {
            size_t len = epmd_dump_line(line, sizeof line, 0, (const uint8_t *)n->name,
                                        n->namelen, n->proxy_port, n->reg_fd);
            sbuf_add(&c->out, line, len < sizeof line ? len : sizeof line - 1);
        }
    reply(c, AFTER_CLOSE);
}

static void do_stop(econn *c, const epmd_req *r)
{
    epmd_srv *s = c->srv;
    reg_node *n = registry_find(&s->x->reg, r->name, r->namelen);
    if (!n) {
        /* epmd falls through after NOEXIST and also says STOPPED */
        sbuf_addstr(&c->out, "NOEXIST");
    } else {
        for (econn *o = s->conns; o; o = o->next)
            if (o->node == n) {
                log_msg(LOG_INFO, "epmd: STOP %s", n->name);
                conn_close(o);
                break;
            }
    }
    sbuf_addstr(&c->out, "STOPPED");
    reply(c, AFTER_CLOSE);
}

/* One whole request: answer it or close. */
static void do_request(econn *c, const uint8_t *body, size_t len)
{
    epx *x = c->srv->x;
    epmd_req r;
    epmd_parse(body, len, &r);
    int local_only = r.kind == EPMD_REQ_ALIVE2 || r.kind == EPMD_REQ_DUMP ||
                     r.kind == EPMD_REQ_KILL || r.kind == EPMD_REQ_STOP ||
                     (len > 0 && (body[0] == EPMD_ALIVE2_REQ || body[0] == EPMD_STOP_REQ));
    if (local_only && !c->local) {
        log_msg(LOG_ERR, "epmd: request '%c' from a non-local address refused", body[0]);
        conn_close(c);
        return;
    }
    switch (r.kind) {
    case EPMD_REQ_ALIVE2:
        do_alive2(c, &r);
        return;
    case EPMD_REQ_PORT2:
        do_port2(c, &r);
        return;
    case EPMD_REQ_NAMES:
        do_names(c, 0);
        return;
    case EPMD_REQ_DUMP:
        do_names(c, 1);
        return;
    case EPMD_REQ_KILL:
        if (!x->cfg.relaxed && x->reg.reg) {
            log_msg(LOG_ERR, "epmd: KILL refused: nodes are registered");
            sbuf_addstr(&c->out, "NO");
            reply(c, AFTER_CLOSE);
            return;
        }
        sbuf_addstr(&c->out, "OK");
        reply(c, AFTER_EXIT);
        return;
    case EPMD_REQ_STOP:
        if (!x->cfg.relaxed) {
            log_msg(LOG_ERR, "epmd: STOP refused: no -relaxed_command_check");
            conn_close(c);
            return;
        }
        do_stop(c, &r);
        return;
    case EPMD_REQ_BAD:
    default:
        log_msg(LOG_ERR, "epmd: closing connection: %s", r.why ? r.why : "bad request");
        conn_close(c);
        return;
    }
}

static void conn_read(econn *c)
{
    if (c->keep) {
        /* a registration ends on EOF, an error, or any byte at all */
        uint8_t tmp[256];
        ssize_t k = read(c->fd, tmp, sizeof tmp);
        if (k < 0 && (errno == EINTR || errno == EAGAIN))
            return;
        if (k > 0)
            log_msg(LOG_ERR, "epmd: data on a registration socket: unregistering");
        conn_close(c);
        return;
    }
    /* Like epmd: until the length is known read up to the whole buffer, so
     * pipelined bytes in the same read are seen (and refused); after that
     * read no more than the request. */
    size_t room = c->want ? c->want - c->got : EPMD_INBUF_SIZE - 1 - c->got;
    ssize_t k = read(c->fd, c->buf + c->got, room);
    if (k < 0 && (errno == EINTR || errno == EAGAIN))
        return;
    if (k <= 0) {
        if (c->got)
            log_msg(LOG_DEBUG, "epmd: peer left after %zu bytes of a request", c->got);
        conn_close(c);
        return;
    }
    c->got += (size_t)k;
    if (c->want == 0 && c->got >= 2) {
        size_t len;
        epmd_frame_status st = epmd_frame(c->buf, c->got, &len);
        if (st == EPMD_FRAME_BADLEN) {
            log_msg(LOG_ERR, "epmd: invalid packet size %u", epmd_get16(c->buf));
            conn_close(c);
            return;
        }
        if (st == EPMD_FRAME_EXTRA) {
            log_msg(LOG_ERR, "epmd: got more than one request at once: closing");
            conn_close(c);
            return;
        }
        c->want = (size_t)epmd_get16(c->buf) + 2;
    }
    c->mod_ms = loop_now_ms();
    if (c->want && c->got == c->want) {
        loop_mod(c->srv->x->loop, c->fd, 0);
        do_request(c, c->buf + 2, c->want - 2);
    }
}

static void conn_event(void *ctx, int fd, short rev)
{
    econn *c = ctx;
    (void)fd;
    if (c->writing) {
        if (rev & (POLLOUT | POLLERR | POLLHUP))
            try_write(c);
        return;
    }
    conn_read(c);
}

/* Accept one connection from lfd.  1 if one was accepted, 0 if there was
 * none or it could not be (lfd is then paused when waiting helps). */
static int accept_one(epmd_srv *s, int lfd)
{
    if (!epx_accept_ok(s->x)) {
        /* Leave the last fds to ALIVE2's proxy listeners and to links, or
         * idle clients could make every registration fail. */
        if (!s->reserve_logged)
            log_msg(LOG_ERR, "epmd: few fds left (limit %d); not accepting for now",
                    sock_fd_limit());
        s->reserve_logged = 1;
        loop_pause(s->x->loop, lfd, ACCEPT_BACKOFF_MS);
        return 0;
    }
    int fd = sock_accept(lfd);
    if (fd < 0) {
        if (sock_accept_starved(errno)) {
            log_msg(LOG_ERR, "epmd: accept: %s; pausing accepts for %d ms", strerror(errno),
                    ACCEPT_BACKOFF_MS);
            loop_pause(s->x->loop, lfd, ACCEPT_BACKOFF_MS);
        }
        return 0;
    }
    s->reserve_logged = 0;
    econn *c = calloc(1, sizeof *c);
    if (!c || loop_add(s->x->loop, fd, POLLIN, conn_event, c) < 0) {
        log_msg(LOG_ERR, "epmd: out of memory for a connection");
        free(c);
        close(fd);
        return 0;
    }
    c->srv = s;
    c->fd = fd;
    c->local = sock_is_local_peer(fd);
    c->next = s->conns;
    if (s->conns)
        s->conns->prev = c;
    s->conns = c;
    s->nconns++;
    if (arm_idle(c) < 0)
        return 0;
    return 1;
}

/* -delay_accept is over: accept one connection (epmd accepts one per
 * sleep), then listen again. */
static void accept_fire(void *ctx)
{
    epmd_srv *s = ctx;
    s->accept_timer = NULL;
    for (int i = 0; i < s->nl; i++)
        if (accept_one(s, s->lfd[i]))
            break;
    listeners_enable(s, 1);
}

static void listener_event(void *ctx, int fd, short rev)
{
    epmd_srv *s = ctx;
    (void)rev;
    if (s->x->cfg.delay_accept > 0) {
        /* epmd sleeps before it accepts; we pause the listeners instead */
        if (s->accept_timer)
            return;
        s->accept_timer = loop_timer_in(s->x->loop, s->x->cfg.delay_accept * 1000LL,
                                        accept_fire, s);
        if (!s->accept_timer) {
            log_msg(LOG_ERR, "epmd: out of memory for a timer; pausing accepts for %d ms",
                    ACCEPT_BACKOFF_MS);
            loop_pause(s->x->loop, fd, ACCEPT_BACKOFF_MS);
            return;
        }
        listeners_enable(s, 0);
        return;
    }
    for (int i = 0; i < 64 && accept_one(s, fd); i++) {}
}

int epmd_srv_listen(epmd_srv *s, const char *addr, int port, char *err, size_t errlen,
                    int *in_use)
{
    *in_use = 0;
    if (s->nl >= MAX_LISTENERS) {
        snprintf(err, errlen, "too many listen addresses");
        return -1;
    }
    if (s->port > 0)
        port = s->port;
    int fd = sock_listen(addr, port, err, errlen);
    if (fd < 0) {
        *in_use = errno == EADDRINUSE;
        return -1;
    }
    if (loop_add(s->x->loop, fd, POLLIN, listener_event, s) < 0) {
        close(fd);
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    s->lfd[s->nl++] = fd;
    if (s->port <= 0)
        s->port = sock_local_port(fd);
    return 0;
}

void epmd_srv_free(epmd_srv *s)
{
    if (!s)
        return;
    loop_timer_del(s->x->loop, s->accept_timer);
    while (s->conns)
        conn_close(s->conns);
    for (int i = 0; i < s->nl; i++) {
        loop_del(s->x->loop, s->lfd[i]);
        close(s->lfd[i]);
    }
    free(s);
}
