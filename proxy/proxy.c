#include "proxy.h"

#include <errno.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "log.h"
#include "sniff.h"
#include "sock.h"

#define HALF_CAP        (64 * 1024)   /* relay buffer per direction */
#define NAME_TIMEOUT_MS 15000         /* to send the first handshake frame */
#define CONNECT_TIMEOUT_MS 10000      /* to reach the node's real port */
#define PUMP_BUDGET     (1024 * 1024) /* bytes one event may move before others' turn */

enum link_state {
    LINK_NAME,          /* reading the initiator's first frame */
    LINK_PENDING,       /* name known, blocked towards the node: held before connecting */
    LINK_CONNECTING,    /* connecting to the node's real port */
    LINK_HANDSHAKE,     /* relaying, the node has not sent its 'a' yet */
    LINK_UP,            /* handshake done */
};

/* Bytes read from fd[i] on their way to fd[1-i]. */
typedef struct half {
    uint8_t *buf;       /* HALF_CAP bytes, allocated while in use */
    size_t off, len;    /* pending: buf[off..len) */
    int eof;            /* fd[i] will give no more (EOF or error) */
    int shut;           /* ...and everything before it reached fd[1-i] */
    int held;           /* blocked by a rule: fd[i] is not read, buf not written */
    int gone_seen;      /* while held, fd[i]'s peer was seen closing */
    uint64_t bytes;     /* relayed so far */
} half;

typedef struct plink {
    struct plink *prev, *next;
    proxy *px;
    unsigned long id;
    int fd[2];                  /* 0: the initiator, 1: the node's real port */
    half h[2];                  /* 0: initiator -> node, 1: node -> initiator */
    enum link_state state;
    int target_port;            /* the node's own port */
    char target[EPMD_MAXSYMLEN + 1];       /* its alive name */
    char from[SNIFF_MAX_NAME + 1];
    char to[SNIFF_MAX_NAME + 1];
    const char *closed_by;      /* who closed first: "initiator", "node" */
    sniff_stream ss;            /* the node's handshake frames */
    long long since_ms, deadline_ms;
} plink;

struct proxy {
    epx *x;
    plink *links;
    int nlinks;
    unsigned long next_id;
};

static void link_event(void *ctx, int fd, short rev);
static const char *side_name[2] = { "initiator", "node" };

proxy *proxy_new(epx *x)
{
    proxy *p = calloc(1, sizeof *p);
    if (p)
        p->x = x;
    return p;
}

/* Close both sockets; rst != 0 makes both peers see a reset. */
static void link_close(plink *l, const char *by, const char *why, int rst)
{
    proxy *p = l->px;
    epx *x = p->x;
    if (l->state != LINK_NAME || l->from[0]) {
        log_msg(LOG_INFO, "link %lu %s -> %s closed by %s: %s (%llu bytes out, %llu in)", l->id,
                l->from[0] ? l->from : "?", l->to, by, why, (unsigned long long)l->h[0].bytes,
                (unsigned long long)l->h[1].bytes);
        events_add(&x->ev, loop_now_ms(), "link_closed",
                   "\"link\":%lu,\"from\":%s,\"to\":%s,\"by\":\"%s\",\"reason\":%s,"
                   "\"bytes_out\":%llu,\"bytes_in\":%llu",
                   l->id, events_q(l->from), events_q(l->to), by, events_q(why),
                   (unsigned long long)l->h[0].bytes, (unsigned long long)l->h[1].bytes);
    } else {
        log_msg(LOG_DEBUG, "connection %lu to %s closed: %s", l->id, l->target, why);
    }
    for (int i = 0; i < 2; i++) {
        if (l->fd[i] >= 0) {
            loop_del(x->loop, l->fd[i]);
            if (rst)
                sock_close_rst(l->fd[i]);
            else
                close(l->fd[i]);
        }
        free(l->h[i].buf);
    }
    if (l->prev)
        l->prev->next = l->next;
    else
        p->links = l->next;
    if (l->next)
        l->next->prev = l->prev;
    p->nlinks--;
    free(l);
}

/* Work out from the rules which directions are blocked.  Returns 1 if any. */
static int link_eval(plink *l)
{
    rules *r = &l->px->x->rules;
    l->h[0].held = rules_blocked(r, l->from, l->to);
    l->h[1].held = rules_blocked(r, l->to, l->from);
    return l->h[0].held || l->h[1].held;
}

/* What each fd should be polled for, from the link's state and buffers. */
static void link_update(plink *l)
{
    loop *lp = l->px->x->loop;
    short ev[2] = { 0, 0 };
    switch (l->state) {
    case LINK_NAME:
        ev[0] = POLLIN;
        break;
    case LINK_PENDING:
        /* not read: only notice the initiator giving up */
        if (!l->h[0].gone_seen)
            ev[0] = POLLRDHUP;
        break;
    case LINK_CONNECTING:
        ev[1] = POLLOUT;
        break;
    case LINK_HANDSHAKE:
    case LINK_UP:
        for (int i = 0; i < 2; i++) {
            half *in = &l->h[i], *out = &l->h[1 - i];
            if (in->held) {
                if (!in->eof && !in->gone_seen)
                    ev[i] |= POLLRDHUP;
            } else if (!in->eof && in->off == in->len) {
                ev[i] |= POLLIN;   /* read on only when the last chunk went out */
            }
            if (!out->held && out->len > out->off)
                ev[i] |= POLLOUT;
        }
        break;
    }
    for (int i = 0; i < 2; i++)
        if (l->fd[i] >= 0)
            loop_mod(lp, l->fd[i], ev[i]);
}

static void note_closed_by(plink *l, int i)
{
    if (!l->closed_by)
        l->closed_by = side_name[i];
}

/* fd[i] is gone for writing: what was meant for it is dropped, and nothing
 * more will be read from it either. */
static void side_dead(plink *l, int i)
{
    half *to_i = &l->h[1 - i];
    to_i->off = to_i->len = 0;
    to_i->eof = to_i->shut = 1;
    l->h[i].eof = 1;
    note_closed_by(l, i);
}

/* After a half drained: pass an EOF on once everything before it went out
 * (never while the direction is held: the EOF waits behind the data). */
static void half_finish(plink *l, int i)
{
    half *h = &l->h[i];
    if (h->held || h->off != h->len)
        return;
    h->off = h->len = 0;
    free(h->buf);   /* an idle link holds no buffer */
    h->buf = NULL;
    if (h->eof && !h->shut) {
        shutdown(l->fd[1 - i], SHUT_WR);
        h->shut = 1;
    }
}

/* Write what half i holds to fd[1-i].  -1 if that socket failed. */
static int half_flush(plink *l, int i)
{
    half *h = &l->h[i];
    int o = 1 - i;
    if (h->held)
        return 0;
    while (h->off < h->len) {
        ssize_t k = send(l->fd[o], h->buf + h->off, h->len - h->off, MSG_NOSIGNAL);
        if (k < 0 && errno == EINTR)
            continue;
        if (k < 0 && errno == EAGAIN)
            return 0;
        if (k <= 0) {
            log_msg(LOG_DEBUG, "link %lu: write to %s failed: %s", l->id, side_name[o],
                    strerror(errno));
            side_dead(l, o);
            return -1;
        }
        h->off += (size_t)k;
        h->bytes += (uint64_t)k;
    }
    half_finish(l, i);
    return 0;
}

/* The node's handshake frames tell who it is and when the link is up. */
static void sniff_acceptor(plink *l, const uint8_t *p, size_t n)
{
    epx *x = l->px->x;
    if (l->ss.done)
        return;
    sniff_feed(&l->ss, p, n);
    if (l->ss.peer_name[0] && strcmp(l->to, l->ss.peer_name) != 0) {
        snprintf(l->to, sizeof l->to, "%s", l->ss.peer_name);
        reg_node *rn = registry_find(&x->reg, (const uint8_t *)l->target, strlen(l->target));
        if (rn && rn->port == l->target_port)
            snprintf(rn->full, sizeof rn->full, "%s", l->ss.peer_name);
    }
    if (l->ss.assigned[0])
        snprintf(l->from, sizeof l->from, "%s", l->ss.assigned);
    if (l->ss.acked) {
        l->state = LINK_UP;
        log_msg(LOG_INFO, "link %lu %s -> %s up", l->id, l->from, l->to);
        events_add(&x->ev, loop_now_ms(), "link_up", "\"link\":%lu,\"from\":%s,\"to\":%s",
                   l->id, events_q(l->from), events_q(l->to));
    } else if (l->ss.done < 0) {
        log_msg(LOG_ERR, "link %lu: node %s speaks no handshake we know (%s); relaying blind",
                l->id, l->to, l->ss.why);
    }
}

/* In LINK_NAME: one read of the initiator's first bytes into half 0.
 * -1 on EOF or error. */
static int read_first(plink *l)
{
    half *h = &l->h[0];
    if (!h->buf && !(h->buf = malloc(HALF_CAP))) {
        log_msg(LOG_ERR, "link %lu: out of memory", l->id);
        return 0;   /* try again later */
    }
    for (;;) {
        ssize_t k = read(l->fd[0], h->buf + h->len, HALF_CAP - h->len);
        if (k < 0 && errno == EINTR)
            continue;
        if (k < 0 && errno == EAGAIN)
            return 0;
        if (k <= 0)
            return -1;
        h->len += (size_t)k;
        return 0;
    }
}

/* Move bytes from fd[i] to fd[1-i] through one shared scratch buffer; only
 * what fd[1-i] does not take at once is kept, in half i.  Stops at EAGAIN,
 * at a short read, when fd[1-i] is full, or after a budget (fairness). */
static void half_pump(plink *l, int i)
{
    static uint8_t scratch[HALF_CAP];
    half *h = &l->h[i];
    int o = 1 - i;
    if (h->held || h->eof || h->off != h->len)
        return;
    for (size_t budget = PUMP_BUDGET; budget > 0;) {
        ssize_t k = read(l->fd[i], scratch, sizeof scratch);
        if (k < 0 && errno == EINTR)
            continue;
        if (k < 0 && errno == EAGAIN)
            break;
        if (k <= 0) {
            log_msg(LOG_DEBUG, "link %lu: %s %s", l->id, side_name[i],
                    k == 0 ? "closed" : strerror(errno));
            h->eof = 1;
            note_closed_by(l, i);
            if (k < 0)
                side_dead(l, i);
            break;
        }
        if (i == 1)
            sniff_acceptor(l, scratch, (size_t)k);
        size_t sent = 0;
        while (sent < (size_t)k) {
            ssize_t w = send(l->fd[o], scratch + sent, (size_t)k - sent, MSG_NOSIGNAL);
            if (w < 0 && errno == EINTR)
                continue;
            if (w < 0 && errno == EAGAIN)
                break;
            if (w <= 0) {
                log_msg(LOG_DEBUG, "link %lu: write to %s failed: %s", l->id, side_name[o],
                        strerror(errno));
                side_dead(l, o);
                return;
            }
            sent += (size_t)w;
        }
        h->bytes += sent;
        if (sent < (size_t)k) {
            /* fd[o] is full: keep the rest, read no more until it is gone */
            if (!h->buf && !(h->buf = malloc(HALF_CAP))) {
                log_msg(LOG_ERR, "link %lu: out of memory: dropping the link", l->id);
                side_dead(l, o);
                return;
            }
            memcpy(h->buf, scratch + sent, (size_t)k - sent);
            h->off = 0;
            h->len = (size_t)k - sent;
            return;
        }
        if ((size_t)k < sizeof scratch)
            break;   /* a short read: the socket is most likely empty */
        budget = budget > (size_t)k ? budget - (size_t)k : 0;
    }
    half_finish(l, i);
}

static void start_connect(plink *l)
{
    int fd = sock_connect_loopback(l->target_port);
    if (fd < 0) {
        log_msg(LOG_ERR, "link %lu: cannot connect to %s on port %d: %s", l->id, l->target,
                l->target_port, strerror(errno));
        link_close(l, "daemon", "node unreachable", 0);
        return;
    }
    if (loop_add(l->px->x->loop, fd, POLLOUT, link_event, l) < 0) {
        close(fd);
        link_close(l, "daemon", "out of memory", 0);
        return;
    }
    sock_nodelay(fd);
    l->fd[1] = fd;
    l->state = LINK_CONNECTING;
    l->deadline_ms = loop_now_ms() + CONNECT_TIMEOUT_MS;
    link_update(l);
}

/* A registered node named by a handshake: remember its full name, so that
 * links towards it show it even before its own handshake frames do. */
static void learn_full_name(epx *x, const char *full)
{
    const char *at = strchr(full, '@');
    if (!at)
        return;   /* a NAME_ME host only */
    reg_node *rn = registry_find(&x->reg, (const uint8_t *)full, (size_t)(at - full));
    if (rn && !rn->full[0])
        snprintf(rn->full, sizeof rn->full, "%s", full);
}

/* The initiator's first frame: learn its name, then reach the node unless
 * the rules say otherwise. */
static void read_name(plink *l)
{
    epx *x = l->px->x;
    int r = read_first(l);
    half *h = &l->h[0];
    sniff_first f;
    sniff_status st = h->len ? sniff_first_frame(h->buf, h->len, &f) : SNIFF_MORE;
    if (st == SNIFF_BAD) {
        log_msg(LOG_ERR, "connection %lu to %s: closing: %s", l->id, l->target, f.why);
        link_close(l, "daemon", f.why, 0);
        return;
    }
    if (st == SNIFF_MORE) {
        if (r < 0)
            link_close(l, "initiator", "initiator left before its name", 0);
        return;
    }
    snprintf(l->from, sizeof l->from, "%s", f.name);
    learn_full_name(x, l->from);
    log_msg(LOG_INFO, "link %lu: %s -> %s", l->id, l->from, l->target);
    events_add(&x->ev, loop_now_ms(), "link_opened", "\"link\":%lu,\"from\":%s,\"to\":%s",
               l->id, events_q(l->from), events_q(l->to));
    if (link_eval(l)) {
        if (x->mode == EPXD_MODE_RESET) {
            link_close(l, "daemon", "blocked (reset mode)", 1);
            return;
        }
        if (l->h[0].held) {
            l->state = LINK_PENDING;
            link_update(l);
            return;
        }
    }
    start_connect(l);
}

static void link_done_check(plink *l)
{
    if (l->h[0].shut && l->h[1].shut)
        link_close(l, l->closed_by ? l->closed_by : "daemon", "both sides closed", 0);
    else if (l->h[0].gone_seen && l->h[1].gone_seen)
        /* both nodes hung up while held: nobody is left to deliver to */
        link_close(l, l->closed_by ? l->closed_by : "daemon", "both sides closed while held", 0);
    else
        link_update(l);
}

/* A held side's peer hung up: note it once, stop asking. */
static void note_gone(plink *l, int i)
{
    half *h = &l->h[i];
    if (h->gone_seen)
        return;
    h->gone_seen = 1;
    note_closed_by(l, i);
    log_msg(LOG_INFO, "link %lu: %s closed while held", l->id, side_name[i]);
    events_add(&l->px->x->ev, loop_now_ms(), "link_peer_closed",
               "\"link\":%lu,\"from\":%s,\"to\":%s,\"side\":\"%s\",\"held\":true", l->id,
               events_q(l->from), events_q(l->to), side_name[i]);
}

static void link_event(void *ctx, int fd, short rev)
{
    plink *l = ctx;
    int i = fd == l->fd[0] ? 0 : 1;
    switch (l->state) {
    case LINK_NAME:
        read_name(l);
        return;
    case LINK_PENDING:
        if (rev & (POLLRDHUP | POLLHUP | POLLERR)) {
            /* it gave up; the frame we hold goes nowhere */
            note_gone(l, 0);
            link_close(l, "initiator", "initiator gave up while held", 0);
        }
        return;
    case LINK_CONNECTING: {
        int e = sock_error(fd);
        if (e) {
            log_msg(LOG_ERR, "link %lu: connect to %s (port %d): %s", l->id, l->target,
                    l->target_port, strerror(e));
            link_close(l, "daemon", "node unreachable", 0);
            return;
        }
        l->state = LINK_HANDSHAKE;
        half_flush(l, 0);
        link_done_check(l);
        return;
    }
    case LINK_HANDSHAKE:
    case LINK_UP:
        break;
    }
    /* relay: write first (makes room), then read and pass on at once */
    if (rev & (POLLOUT | POLLERR | POLLHUP))
        half_flush(l, 1 - i);
    if (l->h[i].held) {
        if (rev & (POLLRDHUP | POLLHUP | POLLERR))
            note_gone(l, i);
    } else if (rev & (POLLIN | POLLERR | POLLHUP)) {
        half_pump(l, i);
    }
    link_done_check(l);
}

static void listener_event(void *ctx, int lfd, short rev)
{
    reg_node *n = ctx;
    proxy *p = n->proxy;
    (void)rev;
    for (int k = 0; k < 64; k++) {
        int fd = sock_accept(lfd);
        if (fd < 0) {
            if (sock_accept_starved(errno)) {
                log_msg(LOG_ERR, "proxy %s: accept: %s; pausing accepts for %d ms", n->name,
                        strerror(errno), ACCEPT_BACKOFF_MS);
                loop_pause(p->x->loop, lfd, ACCEPT_BACKOFF_MS);
            }
            return;
        }
        plink *l = calloc(1, sizeof *l);
        if (!l || loop_add(p->x->loop, fd, POLLIN, link_event, l) < 0) {
            log_msg(LOG_ERR, "proxy %s: out of memory for a link", n->name);
            free(l);
            close(fd);
            return;
        }
        sock_nodelay(fd);
        l->px = p;
        l->id = ++p->next_id;
        l->fd[0] = fd;
        l->fd[1] = -1;
        l->state = LINK_NAME;
        l->target_port = n->port;
        snprintf(l->target, sizeof l->target, "%s", n->name);
        snprintf(l->to, sizeof l->to, "%s", n->full[0] ? n->full : n->name);
        l->since_ms = loop_now_ms();
        l->deadline_ms = l->since_ms + NAME_TIMEOUT_MS;
        l->next = p->links;
        if (p->links)
            p->links->prev = l;
        p->links = l;
        p->nlinks++;
    }
}

void proxy_rules_changed(proxy *p)
{
    epx *x = p->x;
    plink *l = p->links;
    while (l) {
        plink *nx = l->next;
        if (l->state == LINK_NAME) {
            l = nx;
            continue;
        }
        int blocked = link_eval(l);
        if (blocked && x->mode == EPXD_MODE_RESET) {
            link_close(l, "daemon", "blocked (reset mode)", 1);
        } else if (l->state == LINK_PENDING) {
            if (!l->h[0].held)
                start_connect(l);
        } else if (l->state != LINK_CONNECTING) {
            /* a lifted block: move what waited, then EOFs that waited behind it */
            for (int i = 0; i < 2; i++)
                if (!l->h[i].held && l->fd[1 - i] >= 0) {
                    half_flush(l, i);
                    half_finish(l, i);
                }
            link_done_check(l);
        }
        l = nx;
    }
}

int proxy_node_up(proxy *p, reg_node *n)
{
    char err[256];
    const char *addr = p->x->cfg.naddrs ? p->x->cfg.addrs[0] : NULL;
    int fd = sock_listen(addr, 0, err, sizeof err);
    if (fd < 0) {
        log_msg(LOG_ERR, "proxy listener for %s: %s", n->name, err);
        return -1;
    }
    n->proxy = p;
    if (loop_add(p->x->loop, fd, POLLIN, listener_event, n) < 0) {
        close(fd);
        return -1;
    }
    n->proxy_fd = fd;
    n->proxy_port = sock_local_port(fd);
    return 0;
}

void proxy_node_down(proxy *p, reg_node *n)
{
    if (n->proxy_fd < 0)
        return;
    loop_del(p->x->loop, n->proxy_fd);
    close(n->proxy_fd);
    n->proxy_fd = -1;
}

int proxy_nlinks(const proxy *p)
{
    return p->nlinks;
}

static const char *link_state_name(const plink *l)
{
    if (l->h[0].eof || l->h[1].eof || l->h[0].gone_seen || l->h[1].gone_seen)
        return "closed";
    if (l->state == LINK_PENDING || l->h[0].held || l->h[1].held)
        return "held";
    return l->state == LINK_UP ? "up" : "handshake";
}

void proxy_links_json(proxy *p, sbuf *out)
{
    static const char *held_names[4] = { "none", "out", "in", "both" };
    sbuf_addstr(out, "[");
    int first = 1;
    long long now = loop_now_ms();
    /* oldest first: walk to the tail, then back */
    plink *l = p->links;
    while (l && l->next)
        l = l->next;
    for (; l; l = l->prev) {
        if (l->state == LINK_NAME)
            continue;   /* no name yet: not a link */
        if (!first)
            sbuf_addstr(out, ",");
        first = 0;
        sbuf_printf(out, "{\"id\":%lu,\"from\":", l->id);
        sbuf_json_str(out, l->from, strlen(l->from));
        sbuf_addstr(out, ",\"to\":");
        sbuf_json_str(out, l->to, strlen(l->to));
        sbuf_printf(out, ",\"state\":\"%s\",\"held\":\"%s\",\"bytes_out\":%llu,"
                         "\"bytes_in\":%llu,\"since\":%lld,\"age_ms\":%lld}",
                    link_state_name(l), held_names[l->h[0].held | l->h[1].held << 1],
                    (unsigned long long)l->h[0].bytes, (unsigned long long)l->h[1].bytes,
                    l->since_ms - p->x->ev.t0_ms, now - l->since_ms);
    }
    sbuf_addstr(out, "]");
}

void proxy_tick(proxy *p, long long now)
{
    plink *l = p->links;
    while (l) {
        plink *nx = l->next;
        if (l->state == LINK_NAME && now > l->deadline_ms)
            link_close(l, "daemon", "no handshake name in time", 0);
        else if (l->state == LINK_CONNECTING && now > l->deadline_ms)
            link_close(l, "daemon", "node did not accept in time", 0);
        l = nx;
    }
}

void proxy_free(proxy *p)
{
    if (!p)
        return;
    while (p->links)
        link_close(p->links, "daemon", "daemon exits", 0);
    for (reg_node *n = p->x->reg.reg; n; n = n->next)
        proxy_node_down(p, n);
    free(p);
}
