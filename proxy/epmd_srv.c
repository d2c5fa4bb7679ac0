#include "epmd_srv.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "epmd_codec.h"
#include "log.h"
#include "proxy.h"
#include "rules.h"
#include "sbuf.h"
#include "sock.h"

#define MAX_LISTENERS (EPX_MAX_ADDRS + 2)
#define MAX_HOSTS 64          /* distinct node host addresses (EPMDPORT name addr) */
#define ADDR_LEN 64           /* an IPv4 or IPv6 literal */

enum after_write { AFTER_CLOSE, AFTER_KEEP, AFTER_EXIT };

/* One EPMD port and the listeners that serve it: the shared port (name
 * ""), or a node's own port (EPMDPORT name): what comes in on it is asked
 * by that node, so a lookup across a block waits as the node's SYN to the
 * other host would (doc/hold-model.md, "EPMD across a cut").  Every port
 * listens on the daemon's addresses and on every node host address. */
typedef struct eport {
    struct eport *next;
    struct epmd_srv *srv;
    char name[EPMD_MAXSYMLEN + 1];  /* the asker's alive name; "" for the shared port */
    char addr[ADDR_LEN];            /* the node's host address; "" = the daemon's */
    int port;                       /* -1 before the first listener */
    int fd[MAX_LISTENERS + MAX_HOSTS];
    int nfd;
} eport;

/* A lookup across a block (MODE hold, freeze): read, not answered. */
enum lookup_hold { LH_NONE, LH_HELD, LH_RELEASING };

/* A connection reads one request, then writes one reply (after
 * -delay_write, if set), then closes, or stays as a registration.  Its one
 * deadline is `timer`: the packet timeout while reading or writing (fired
 * lazily: the callback re-arms from mod_ms if there was activity since),
 * the -delay_write delay while a reply waits, none for a registration. */
typedef struct econn {
    struct econn *prev, *next;
    epmd_srv *srv;
    int fd;
    char asker[EPMD_MAXSYMLEN + 1];  /* the node whose own port this came in on, or "" */
    char host[ADDR_LEN];    /* the node host address it was sent to, or "" */
    long long t_accept;     /* the attempt's start, for the SYN schedule */
    enum lookup_hold lh;    /* timer: the release (RELEASING) or the give-up (HELD, hold) */
    int released;           /* a held lookup let go: answer it, whatever the rules say now */
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
    eport shared;           /* the EPMD port every client may use */
    eport *nodes;           /* nodes' own ports (EPMDPORT) */
    const char *base[MAX_LISTENERS];   /* the daemon's addresses the shared port got */
    int nbase;
    char hosts[MAX_HOSTS][ADDR_LEN];   /* node host addresses, every port listens there too */
    int nhosts;
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
    s->shared.srv = s;
    s->shared.port = -1;
    return s;
}

int epmd_srv_port(const epmd_srv *s)
{
    return s->shared.port;
}

static void listeners_enable(epmd_srv *s, int on)
{
    for (eport *e = &s->shared; e; e = e == &s->shared ? s->nodes : e->next)
        for (int i = 0; i < e->nfd; i++)
            loop_mod(s->x->loop, e->fd[i], on ? POLLIN : 0);
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

static int on_host(const epmd_srv *s, const reg_node *n, const char *host);

static void do_names(econn *c, int dump)
{
    epx *x = c->srv->x;
    uint8_t p4[4];
    epmd_put_port32(p4, (uint32_t)x->epmd_port);
    sbuf_add(&c->out, p4, 4);
    char line[EPMD_MAXSYMLEN + 128];
    for (reg_node *n = x->reg.reg; n; n = n->next) {
        if (!dump && c->host[0] && !on_host(c->srv, n, c->host))
            continue;   /* sent to a node host address: that host's nodes */
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

/* Does node n live on host address host (EPMDPORT name addr)? */
static int on_host(const epmd_srv *s, const reg_node *n, const char *host)
{
    const char *h = epmd_srv_node_addr(s, n->name, n->namelen);
    return h && !strcmp(h, host);
}

/* The name the rules know a node by: its full name once a handshake showed
 * it, else its alive name (a rule matches that by its alive part). */
static const char *rule_name(const epx *x, const uint8_t *alive, size_t len, char *buf,
                             size_t blen)
{
    reg_node *n = registry_find(&x->reg, alive, len);
    if (n && n->full[0])
        return n->full;
    snprintf(buf, blen, "%.*s", (int)len, (const char *)alive);
    return buf;
}

/* Would the asker's SYN to the host this request is for be lost?  Only a
 * node's own port knows the asker.  PORT_PLEASE2: the asker is blocked
 * towards the node asked for; NAMES sent to a node host address: towards
 * every node registered on that host (a host with none is reachable).
 * MODE reset refuses at the distribution connection, not here. */
static int lookup_blocked(const econn *c, const epmd_req *r)
{
    epx *x = c->srv->x;
    char a[EPMD_MAXSYMLEN + 1], b[EPMD_MAXSYMLEN + 1];
    if (!c->asker[0] || x->mode == EPXD_MODE_RESET)
        return 0;
    const char *from = rule_name(x, (const uint8_t *)c->asker, strlen(c->asker), a, sizeof a);
    if (r->kind == EPMD_REQ_PORT2)
        return rules_blocked(&x->rules, from, rule_name(x, r->name, r->namelen, b, sizeof b));
    if (r->kind != EPMD_REQ_NAMES || !c->host[0])
        return 0;
    int any = 0;
    for (reg_node *n = x->reg.reg; n; n = n->next) {
        if (!on_host(c->srv, n, c->host))
            continue;
        any = 1;
        if (!rules_blocked(&x->rules, from,
                           rule_name(x, (const uint8_t *)n->name, n->namelen, b, sizeof b)))
            return 0;
    }
    return any;
}

static const char *lookup_what(const epmd_req *r)
{
    return r->kind == EPMD_REQ_PORT2 ? "PORT_PLEASE2" : "NAMES";
}

static void lookup_give_up(void *ctx);
static void lookup_release(void *ctx);
static void do_request(econn *c, const uint8_t *body, size_t len);

/* Hold a lookup across a block (-> LH_HELD): no answer, no packet timeout;
 * under MODE hold it fails at the attempt's last SYN retry.  Only a hang-up
 * of the asker is watched.  0, or -1 if c was closed. */
static int lookup_hold(econn *c, const epmd_req *r)
{
    epx *x = c->srv->x;
    loop_timer_del(x->loop, c->timer);
    c->timer = NULL;
    if (c->lh == LH_NONE) {
        log_msg(LOG_INFO, "epmd: %s from %s held (%s%.*s%s%s)", lookup_what(r), c->asker,
                r->kind == EPMD_REQ_PORT2 ? "for " : "", (int)r->namelen,
                r->kind == EPMD_REQ_PORT2 ? (const char *)r->name : "",
                c->host[0] ? "host " : "", c->host);
        char nm[EPMD_MAXSYMLEN + 1];
        snprintf(nm, sizeof nm, "%.*s", (int)(r->kind == EPMD_REQ_PORT2 ? r->namelen : 0),
                 r->kind == EPMD_REQ_PORT2 ? (const char *)r->name : "");
        events_add(&x->ev, loop_now_ms(), "epmd_held",
                   "\"from\":%s,\"request\":\"%s\",\"name\":%s,\"host\":%s", events_q(c->asker),
                   lookup_what(r), events_q(nm), events_q(c->host));
    }
    c->lh = LH_HELD;
    if (x->mode == EPXD_MODE_HOLD) {
        c->timer = loop_timer_at(x->loop, hold_syn_give_up(&x->hold, c->t_accept),
                                 lookup_give_up, c);
        if (!c->timer) {
            log_msg(LOG_ERR, "epmd: out of memory for a timer: closing fd %d", c->fd);
            conn_close(c);
            return -1;
        }
    }
    loop_mod(x->loop, c->fd, POLLRDHUP);
    return 0;
}

/* The attempt's SYN retries are spent: the asker sees a reset, as its
 * connect() would time out. */
static void lookup_give_up(void *ctx)
{
    econn *c = ctx;
    c->timer = NULL;
    log_msg(LOG_INFO, "epmd: lookup from %s failed: SYN retries spent", c->asker);
    struct linger lg = { 1, 0 };
    setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    conn_close(c);
}

/* Answer a held lookup now (-> LH_NONE). */
static void lookup_answer(econn *c)
{
    epx *x = c->srv->x;
    long long now = loop_now_ms();
    loop_timer_del(x->loop, c->timer);
    c->timer = NULL;
    c->lh = LH_NONE;
    c->released = 1;
    events_add(&x->ev, now, "epmd_release", "\"from\":%s,\"held_ms\":%lld",
               events_q(c->asker), now - c->t_accept);
    if (arm_idle(c) < 0)
        return;
    do_request(c, c->buf + 2, c->want - 2);
}

static void lookup_release(void *ctx)
{
    econn *c = ctx;
    c->timer = NULL;
    lookup_answer(c);
}

/* The rules or the mode changed: a held lookup still blocked stays held
 * (a release not yet due goes back to held, the schedule goes on); one
 * whose block lifted is answered at its next SYN retry (MODE hold; none
 * left: it fails), or at once (freeze, reset). */
static void lookup_reeval(econn *c)
{
    epx *x = c->srv->x;
    epmd_req r;
    epmd_parse(c->buf + 2, c->want - 2, &r);
    if (lookup_blocked(c, &r)) {
        lookup_hold(c, &r);
        return;
    }
    if (x->mode != EPXD_MODE_HOLD) {
        lookup_answer(c);
        return;
    }
    if (c->lh == LH_RELEASING)
        return;
    long long now = loop_now_ms(), next = hold_next_syn(&x->hold, c->t_accept, now);
    if (next < 0) {
        lookup_give_up(c);
        return;
    }
    loop_timer_del(x->loop, c->timer);
    c->lh = LH_RELEASING;
    c->timer = next > now ? loop_timer_at(x->loop, next, lookup_release, c) : NULL;
    if (!c->timer)
        lookup_answer(c);
}

void epmd_srv_rules_changed(epmd_srv *s)
{
    econn *c = s->conns, *next;
    for (; c; c = next) {
        next = c->next;   /* c may be closed; a reply never opens a connection */
        if (c->lh != LH_NONE)
            lookup_reeval(c);
    }
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
    if ((r.kind == EPMD_REQ_PORT2 || r.kind == EPMD_REQ_NAMES) && !c->released &&
        lookup_blocked(c, &r)) {
        lookup_hold(c, &r);
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
    if (c->lh != LH_NONE) {
        if (rev & (POLLRDHUP | POLLHUP | POLLERR)) {
            log_msg(LOG_DEBUG, "epmd: %s gave up a held lookup", c->asker);
            conn_close(c);
        }
        return;
    }
    if (c->writing) {
        if (rev & (POLLOUT | POLLERR | POLLHUP))
            try_write(c);
        return;
    }
    conn_read(c);
}

/* The node host address a connection was sent to (one of s->hosts), or
 * "" if it came to one of the daemon's own addresses. */
static void conn_host(epmd_srv *s, int fd, char *out, size_t len)
{
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    char a[ADDR_LEN] = "";
    out[0] = 0;
    if (!s->nhosts || getsockname(fd, (struct sockaddr *)&ss, &sl) < 0)
        return;
    if (ss.ss_family == AF_INET)
        inet_ntop(AF_INET, &((struct sockaddr_in *)&ss)->sin_addr, a, sizeof a);
    else if (ss.ss_family == AF_INET6)
        inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&ss)->sin6_addr, a, sizeof a);
    for (int i = 0; i < s->nhosts; i++)
        if (!strcmp(s->hosts[i], a)) {
            snprintf(out, len, "%s", a);
            return;
        }
}

/* Accept one connection from lfd, a listener of port e.  1 if one was
 * accepted, 0 if there was none or it could not be (lfd is then paused
 * when waiting helps). */
static int accept_one(eport *e, int lfd)
{
    epmd_srv *s = e->srv;
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
    c->t_accept = loop_now_ms();
    snprintf(c->asker, sizeof c->asker, "%s", e->name);
    conn_host(s, fd, c->host, sizeof c->host);
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
    for (eport *e = &s->shared; e; e = e == &s->shared ? s->nodes : e->next)
        for (int i = 0; i < e->nfd; i++)
            if (accept_one(e, e->fd[i]))
                goto done;
done:
    listeners_enable(s, 1);
}

static void listener_event(void *ctx, int fd, short rev)
{
    eport *e = ctx;
    epmd_srv *s = e->srv;
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
    for (int i = 0; i < 64 && accept_one(e, fd); i++) {}
}

/* Listen for e on addr (on e's port once it has one).  0, or -1 with a
 * message in err; *in_use is set when the port was taken. */
static int eport_listen(eport *e, const char *addr, int port, char *err, size_t errlen,
                        int *in_use)
{
    epmd_srv *s = e->srv;
    *in_use = 0;
    if (e->nfd >= (int)(sizeof e->fd / sizeof e->fd[0])) {
        snprintf(err, errlen, "too many listen addresses");
        return -1;
    }
    if (e->port > 0)
        port = e->port;
    int fd = sock_listen(addr, port, err, errlen);
    if (fd < 0) {
        *in_use = errno == EADDRINUSE;
        return -1;
    }
    if (loop_add(s->x->loop, fd, POLLIN, listener_event, e) < 0) {
        close(fd);
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    e->fd[e->nfd++] = fd;
    if (e->port <= 0)
        e->port = sock_local_port(fd);
    return 0;
}

int epmd_srv_listen(epmd_srv *s, const char *addr, int port, char *err, size_t errlen,
                    int *in_use)
{
    if (s->shared.nfd >= MAX_LISTENERS) {
        *in_use = 0;
        snprintf(err, errlen, "too many listen addresses");
        return -1;
    }
    if (eport_listen(&s->shared, addr, port, err, errlen, in_use) < 0)
        return -1;
    s->base[s->nbase++] = addr;
    return 0;
}

static eport *eport_find(const epmd_srv *s, const char *name, size_t len)
{
    for (eport *e = s->nodes; e; e = e->next)
        if (strlen(e->name) == len && !memcmp(e->name, name, len))
            return e;
    return NULL;
}

const char *epmd_srv_node_addr(const epmd_srv *s, const char *name, size_t len)
{
    const eport *e = eport_find(s, name, len);
    return e && e->addr[0] ? e->addr : NULL;
}

/* Make addr a node host address: every port listens there from now on. */
static int add_host(epmd_srv *s, const char *addr, char *err, size_t errlen)
{
    for (int i = 0; i < s->nhosts; i++)
        if (!strcmp(s->hosts[i], addr))
            return 0;
    for (int i = 0; i < s->nbase; i++)
        if (!strcmp(s->base[i], addr))
            return 0;   /* the daemon's own: every port listens there already */
    if (s->nhosts >= MAX_HOSTS) {
        snprintf(err, errlen, "too many node host addresses (at most %d)", MAX_HOSTS);
        return -1;
    }
    int in_use;
    for (eport *e = &s->shared; e; e = e == &s->shared ? s->nodes : e->next)
        if (e->port > 0 && eport_listen(e, addr, e->port, err, errlen, &in_use) < 0)
            return -1;
    snprintf(s->hosts[s->nhosts++], ADDR_LEN, "%s", addr);
    return 0;
}

/* Is addr a loopback literal (127/8, ::1)?  Node host addresses must be:
 * they are only ever this machine. */
static int loopback_literal(const char *addr)
{
    struct in_addr a4;
    struct in6_addr a6;
    if (inet_pton(AF_INET, addr, &a4) == 1)
        return (ntohl(a4.s_addr) >> 24) == 127;
    return inet_pton(AF_INET6, addr, &a6) == 1 && IN6_IS_ADDR_LOOPBACK(&a6);
}

int epmd_srv_node_port(epmd_srv *s, const char *name, const char *addr, char *err,
                       size_t errlen)
{
    size_t len = strlen(name);
    if (len == 0 || len > EPMD_MAXSYMLEN) {
        snprintf(err, errlen, "not a node name: %s", name);
        return -1;
    }
    if (addr && (strlen(addr) >= ADDR_LEN || !loopback_literal(addr))) {
        snprintf(err, errlen, "not a loopback address: %s", addr);
        return -1;
    }
    eport *e = eport_find(s, name, len);
    if (e) {
        if (addr && strcmp(addr, e->addr)) {
            snprintf(err, errlen, "%s has host address %s already", name,
                     e->addr[0] ? e->addr : "(the daemon's)");
            return -1;
        }
        return e->port;
    }
    if (s->nbase == 0) {
        snprintf(err, errlen, "no EPMD listener yet");
        return -1;
    }
    if (addr && add_host(s, addr, err, errlen) < 0)
        return -1;
    if (!(e = calloc(1, sizeof *e))) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    e->srv = s;
    e->port = -1;
    snprintf(e->name, sizeof e->name, "%s", name);
    if (addr)
        snprintf(e->addr, sizeof e->addr, "%s", addr);
    int in_use, ok = 0;
    for (int i = 0; i < s->nbase; i++) {
        char why[256];
        if (eport_listen(e, s->base[i], 0, why, sizeof why, &in_use) == 0) {
            ok++;
        } else if (!ok || !strchr(s->base[i], ':')) {
            snprintf(err, errlen, "%s", why);   /* as main: a missing ::1 is no error */
            goto fail;
        }
    }
    for (int i = 0; i < s->nhosts; i++)
        if (eport_listen(e, s->hosts[i], e->port, err, errlen, &in_use) < 0)
            goto fail;
    e->next = s->nodes;
    s->nodes = e;
    log_msg(LOG_INFO, "epmd: port %d is %s's own%s%s", e->port, e->name,
            e->addr[0] ? ", host " : "", e->addr);
    events_add(&s->x->ev, loop_now_ms(), "epmd_port", "\"name\":%s,\"port\":%d,\"addr\":%s",
               events_q(e->name), e->port, events_q(e->addr));
    return e->port;
fail:
    for (int i = 0; i < e->nfd; i++) {
        loop_del(s->x->loop, e->fd[i]);
        close(e->fd[i]);
    }
    free(e);
    return -1;
}

int epmd_srv_is_port(const epmd_srv *s, int port)
{
    if (port == s->shared.port)
        return 1;
    for (const eport *e = s->nodes; e; e = e->next)
        if (e->port == port)
            return 1;
    return 0;
}

void epmd_srv_ports_json(const epmd_srv *s, sbuf *o)
{
    sbuf_addstr(o, "[");
    for (const eport *e = s->nodes; e; e = e->next) {
        sbuf_printf(o, "%s{\"name\":", e == s->nodes ? "" : ",");
        sbuf_json_str(o, e->name, strlen(e->name));
        sbuf_printf(o, ",\"port\":%d,\"addr\":", e->port);
        sbuf_json_str(o, e->addr, strlen(e->addr));
        sbuf_addstr(o, "}");
    }
    sbuf_addstr(o, "]");
}

static void eport_close(epmd_srv *s, eport *e)
{
    for (int i = 0; i < e->nfd; i++) {
        loop_del(s->x->loop, e->fd[i]);
        close(e->fd[i]);
    }
    e->nfd = 0;
}

void epmd_srv_free(epmd_srv *s)
{
    if (!s)
        return;
    loop_timer_del(s->x->loop, s->accept_timer);
    while (s->conns)
        conn_close(s->conns);
    eport_close(s, &s->shared);
    while (s->nodes) {
        eport *e = s->nodes;
        s->nodes = e->next;
        eport_close(s, e);
        free(e);
    }
    free(s);
}
