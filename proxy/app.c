#include "app.h"

#include <arpa/inet.h>
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "epmd_srv.h"
#include "log.h"
#include "proxy.h"
#include "sock.h"

typedef struct app_listener {
    struct app_listener *next;
    unsigned long owner;
    int port;
    char node[RULES_MAX_NAME + 1];
} app_listener;

/* An announced connection, from its APPCONNECT until its socket arrives on
 * the relay listener (then it becomes a link) or its timer fires. */
typedef struct app_pending {
    struct app_pending *prev, *next;
    app *a;
    loop_timer *expiry;
    int src_port;
    int family;                         /* of the address it connects from */
    char from[RULES_MAX_NAME + 1];
    char to[RULES_MAX_NAME + 1];
    struct sockaddr_storage dest;
    socklen_t destlen;
    int port;
} app_pending;

struct app {
    epx *x;
    app_listener *ls;
    int nls;
    app_pending *pend;
    int npend;
    int lfd4, lfd6;                     /* the relay listeners, -1 until needed */
    int port4, port6;
};

app *app_new(epx *x)
{
    app *a = calloc(1, sizeof *a);
    if (!a)
        return NULL;
    a->x = x;
    a->lfd4 = a->lfd6 = -1;
    return a;
}

static void pending_free(app_pending *p)
{
    app *a = p->a;
    loop_timer_del(a->x->loop, p->expiry);
    if (p->prev)
        p->prev->next = p->next;
    else
        a->pend = p->next;
    if (p->next)
        p->next->prev = p->prev;
    a->npend--;
    free(p);
}

void app_free(app *a)
{
    if (!a)
        return;
    while (a->ls) {
        app_listener *l = a->ls;
        a->ls = l->next;
        free(l);
    }
    while (a->pend)
        pending_free(a->pend);
    int fds[2] = { a->lfd4, a->lfd6 };
    for (int i = 0; i < 2; i++)
        if (fds[i] >= 0) {
            loop_del(a->x->loop, fds[i]);
            close(fds[i]);
        }
    free(a);
}

int app_listen(app *a, unsigned long owner, const char *node, int port, char *err,
               size_t errlen)
{
    for (app_listener *l = a->ls; l; l = l->next)
        if (l->owner == owner && l->port == port && !strcmp(l->node, node))
            return 0;   /* listen() called again on the same socket */
    if (a->nls >= APP_MAX_LISTENERS) {
        snprintf(err, errlen, "too many app listeners: at most %d", APP_MAX_LISTENERS);
        return -1;
    }
    app_listener *l = calloc(1, sizeof *l);
    if (!l) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    l->owner = owner;
    l->port = port;
    snprintf(l->node, sizeof l->node, "%s", node);
    l->next = a->ls;
    a->ls = l;
    a->nls++;
    log_msg(LOG_INFO, "app: %s listens on port %d", node, port);
    events_add(&a->x->ev, loop_now_ms(), "app_listen", "\"node\":%s,\"port\":%d",
               events_q(node), port);
    return 0;
}

/* Unlink and free *pp. */
static void listener_drop(app *a, app_listener **pp, const char *why)
{
    app_listener *l = *pp;
    log_msg(LOG_INFO, "app: %s no longer listens on port %d (%s)", l->node, l->port, why);
    events_add(&a->x->ev, loop_now_ms(), "app_unlisten", "\"node\":%s,\"port\":%d",
               events_q(l->node), l->port);
    *pp = l->next;
    a->nls--;
    free(l);
}

int app_unlisten(app *a, unsigned long owner, const char *node, int port)
{
    for (app_listener **pp = &a->ls; *pp; pp = &(*pp)->next)
        if ((*pp)->owner == owner && (*pp)->port == port && !strcmp((*pp)->node, node)) {
            listener_drop(a, pp, "closed");
            return 1;
        }
    return 0;
}

void app_owner_gone(app *a, unsigned long owner)
{
    if (!a)
        return;
    for (app_listener **pp = &a->ls; *pp;)
        if ((*pp)->owner == owner)
            listener_drop(a, pp, "its process left");
        else
            pp = &(*pp)->next;
}

int app_nlisteners(const app *a)
{
    return a ? a->nls : 0;
}

/* Is port one of the daemon's own listeners?  Those are never app ports
 * (a stale registration must not relay a connection to the daemon twice). */
static int daemon_port(app *a, int port)
{
    epx *x = a->x;
    if (epmd_srv_is_port(x->epmd, port) || port == x->control_port || port == a->port4 ||
        port == a->port6)
        return 1;
    for (reg_node *n = x->reg.reg; n; n = n->next)
        if (n->proxy_port == port)
            return 1;
    return 0;
}

/* Who else listens on port?  NULL if nobody (or only node itself). */
static app_listener *route_find(app *a, const char *node, int port)
{
    for (app_listener *l = a->ls; l; l = l->next)
        if (l->port == port && strcmp(l->node, node) != 0)
            return l;
    return NULL;
}

static void relay_accept(void *ctx, int lfd, short rev);

/* Open the relay listeners on 127.0.0.1 and ::1 (if there is one).  0, or
 * -1 if not even the IPv4 one opens. */
static int relay_open(app *a, char *err, size_t errlen)
{
    if (a->lfd4 >= 0)
        return 0;
    int fd = sock_listen("127.0.0.1", 0, err, errlen);
    if (fd < 0)
        return -1;
    sock_shape(fd, a->x->hold.rcvbuf, a->x->hold.mss);   /* as proxy listeners: see proxy_node_up */
    if (loop_add(a->x->loop, fd, POLLIN, relay_accept, a) < 0) {
        close(fd);
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    a->lfd4 = fd;
    a->port4 = sock_local_port(fd);
    char e6[128];
    fd = sock_listen("::1", 0, e6, sizeof e6);
    if (fd >= 0)
        sock_shape(fd, a->x->hold.rcvbuf, a->x->hold.mss);
    if (fd >= 0 && loop_add(a->x->loop, fd, POLLIN, relay_accept, a) == 0) {
        a->lfd6 = fd;
        a->port6 = sock_local_port(fd);
    } else if (fd >= 0) {
        close(fd);
    }
    log_msg(LOG_INFO, "app relay listening on port %d (IPv6: %d)", a->port4, a->port6);
    return 0;
}

int app_route(app *a, const char *node, int port, sbuf *out, char *err, size_t errlen)
{
    app_listener *l = daemon_port(a, port) ? NULL : route_find(a, node, port);
    if (!l) {
        sbuf_addstr(out, "{\"route\":false}");
        return 0;
    }
    if (relay_open(a, err, errlen) < 0)
        return -1;
    sbuf_addstr(out, "{\"route\":true,\"to\":");
    sbuf_json_str(out, l->node, strlen(l->node));
    sbuf_printf(out, ",\"port\":%d,\"port6\":%d}", a->port4, a->port6 > 0 ? a->port6 : 0);
    return 0;
}

static void pending_expired(void *ctx)
{
    app_pending *p = ctx;
    p->expiry = NULL;   /* the loop already freed it */
    log_msg(LOG_INFO, "app: connection from %s (port %d) to %s port %d never arrived", p->from,
            p->src_port, p->to, p->port);
    pending_free(p);
}

/* The family the announced socket arrives in: the shim connects an IPv4
 * or v4-mapped destination to the IPv4 relay, ::1 to the IPv6 one. */
static int family_of_dest(const app_args *args)
{
    if (args->dest.ss_family == AF_INET6 &&
        IN6_IS_ADDR_LOOPBACK(&((const struct sockaddr_in6 *)&args->dest)->sin6_addr))
        return AF_INET6;
    return AF_INET;
}

int app_announce(app *a, const app_args *args, char *err, size_t errlen)
{
    app_listener *l = daemon_port(a, args->port) ? NULL : route_find(a, args->node, args->port);
    if (!l) {
        snprintf(err, errlen, "no other member listens on port %d", args->port);
        return -1;
    }
    if (a->lfd4 < 0) {
        snprintf(err, errlen, "APPROUTE first");
        return -1;
    }
    int fam = family_of_dest(args);
    /* a source port announced again (its first socket never came): the
     * newer announcement wins */
    for (app_pending *p = a->pend; p; p = p->next)
        if (p->src_port == args->src_port && p->family == fam) {
            pending_free(p);
            break;
        }
    if (a->npend >= APP_MAX_PENDING) {
        snprintf(err, errlen, "too many pending app connections: at most %d", APP_MAX_PENDING);
        return -1;
    }
    app_pending *p = calloc(1, sizeof *p);
    if (!p || !(p->expiry = loop_timer_in(a->x->loop, APP_PENDING_MS, pending_expired, p))) {
        free(p);
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    p->a = a;
    p->src_port = args->src_port;
    p->family = fam;
    p->port = args->port;
    snprintf(p->from, sizeof p->from, "%s", args->node);
    snprintf(p->to, sizeof p->to, "%s", l->node);
    memcpy(&p->dest, &args->dest, args->destlen);
    p->destlen = args->destlen;
    p->next = a->pend;
    if (a->pend)
        a->pend->prev = p;
    a->pend = p;
    a->npend++;
    return 0;
}

/* A socket on the relay listener: the pending announcement with its peer
 * port makes it a link; a socket nobody announced is closed. */
static void relay_accept(void *ctx, int lfd, short rev)
{
    app *a = ctx;
    (void)rev;
    for (int k = 0; k < 64; k++) {
        int fd = sock_accept(lfd);
        if (fd < 0) {
            if (sock_accept_starved(errno)) {
                log_msg(LOG_ERR, "app relay: accept: %s; pausing accepts for %d ms",
                        strerror(errno), ACCEPT_BACKOFF_MS);
                loop_pause(a->x->loop, lfd, ACCEPT_BACKOFF_MS);
            }
            return;
        }
        struct sockaddr_storage peer;
        socklen_t pl = sizeof peer;
        int port = -1;
        if (getpeername(fd, (struct sockaddr *)&peer, &pl) == 0) {
            if (peer.ss_family == AF_INET)
                port = ntohs(((struct sockaddr_in *)&peer)->sin_port);
            else if (peer.ss_family == AF_INET6)
                port = ntohs(((struct sockaddr_in6 *)&peer)->sin6_port);
        }
        app_pending *p = a->pend;
        while (p && !(p->src_port == port && p->family == peer.ss_family))
            p = p->next;
        if (!p || !sock_is_local_peer(fd)) {
            log_msg(LOG_ERR, "app relay: a connection from port %d nobody announced: closed",
                    port);
            close(fd);
            continue;
        }
        sock_nodelay(fd);
        proxy_app_link(a->x->proxy, fd, p->from, p->to, (struct sockaddr *)&p->dest, p->destlen,
                       p->port);
        pending_free(p);
    }
}

void app_json(app *a, sbuf *o)
{
    sbuf_addstr(o, "{\"listeners\":[");
    int first = 1;
    for (app_listener *l = a ? a->ls : NULL; l; l = l->next) {
        sbuf_addstr(o, first ? "{\"node\":" : ",{\"node\":");
        first = 0;
        sbuf_json_str(o, l->node, strlen(l->node));
        sbuf_printf(o, ",\"port\":%d}", l->port);
    }
    sbuf_printf(o, "],\"pending\":%d,\"relay_port\":%d,\"relay_port6\":%d}", a ? a->npend : 0,
                a ? a->port4 : 0, a ? a->port6 : 0);
}
