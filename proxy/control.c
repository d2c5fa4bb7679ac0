#include "control.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "ctl_parse.h"
#include "log.h"
#include "proxy.h"
#include "sbuf.h"
#include "sock.h"

#define MAX_LISTENERS   (EPX_MAX_ADDRS + 2)
#define OUT_HIGH_WATER  (1024 * 1024)   /* stop reading a client that does not read */

typedef struct cconn {
    struct cconn *prev, *next;
    control *ctl;
    int fd;
    sbuf in, out;
    int closing;        /* close once out is flushed */
    int eof;
} cconn;

struct control {
    epx *x;
    int lfd[MAX_LISTENERS];
    int nl;
    int port;
    cconn *conns;
};

control *control_new(epx *x)
{
    control *c = calloc(1, sizeof *c);
    if (c) {
        c->x = x;
        c->port = -1;
    }
    return c;
}

int control_port(const control *c)
{
    return c->port;
}

static void cconn_close(cconn *k)
{
    control *c = k->ctl;
    loop_del(c->x->loop, k->fd);
    close(k->fd);
    if (k->prev)
        k->prev->next = k->next;
    else
        c->conns = k->next;
    if (k->next)
        k->next->prev = k->prev;
    sbuf_free(&k->in);
    sbuf_free(&k->out);
    free(k);
}

static void nodes_json(epx *x, sbuf *o)
{
    /* oldest registration first */
    int n = x->reg.nreg, i = n;
    reg_node **v = calloc((size_t)(n ? n : 1), sizeof *v);
    if (!v) {
        o->oom = 1;
        return;
    }
    for (reg_node *r = x->reg.reg; r; r = r->next)
        v[--i] = r;
    sbuf_addstr(o, "[");
    long long now = loop_now_ms();
    for (i = 0; i < n; i++) {
        reg_node *r = v[i];
        sbuf_addstr(o, i ? ",{\"name\":" : "{\"name\":");
        sbuf_json_str(o, r->name, r->namelen);
        sbuf_addstr(o, ",\"node\":");
        if (r->full[0])
            sbuf_json_str(o, r->full, strlen(r->full));
        else
            sbuf_addstr(o, "null");
        sbuf_printf(o, ",\"port\":%u,\"proxy_port\":%d,\"creation\":%u,\"age_ms\":%lld}",
                    r->port, r->proxy_port, r->counter, now - r->since_ms);
    }
    sbuf_addstr(o, "]");
    free(v);
}

static void status_json(epx *x, sbuf *o)
{
    sbuf_printf(o, "{\"version\":\"%s\",\"pid\":%d,\"epmd_port\":%d,\"control_port\":%d,"
                   "\"mode\":\"hold\",\"nodes\":%d,\"links\":%d,\"rules\":0,\"uptime_ms\":%lld}",
                EPX_VERSION, (int)getpid(), x->epmd_port, x->control_port, x->reg.nreg,
                proxy_nlinks(x->proxy), loop_now_ms() - x->started_ms);
}

/* Run one command line; append the reply line to k->out. */
static void run_line(cconn *k, const char *line, size_t len)
{
    epx *x = k->ctl->x;
    ctl_line cl;
    ctl_parse_line(line, len, &cl);
    sbuf *o = &k->out;
    switch (cl.cmd) {
    case CTL_EMPTY:
        return;
    case CTL_PING:
        sbuf_addstr(o, "OK PONG");
        break;
    case CTL_NODES:
        sbuf_addstr(o, "OK ");
        nodes_json(x, o);
        break;
    case CTL_LINKS:
        sbuf_addstr(o, "OK ");
        proxy_links_json(x->proxy, o);
        break;
    case CTL_STATUS:
        sbuf_addstr(o, "OK ");
        status_json(x, o);
        break;
    case CTL_SHUTDOWN:
        log_msg(LOG_INFO, "control: SHUTDOWN");
        sbuf_addstr(o, "OK");
        x->stop = 1;
        x->exit_code = 0;
        k->closing = 1;
        break;
    case CTL_QUIT:
        sbuf_addstr(o, "OK");
        k->closing = 1;
        break;
    default:
        sbuf_addstr(o, "ERR unknown command: ");
        sbuf_add(o, cl.word, strlen(cl.word));
        break;
    }
    sbuf_addstr(o, "\n");
}

static void cconn_update(cconn *k)
{
    short ev = 0;
    if (!k->closing && !k->eof && k->out.len < OUT_HIGH_WATER)
        ev |= POLLIN;
    if (k->out.len)
        ev |= POLLOUT;
    loop_mod(k->ctl->x->loop, k->fd, ev);
}

/* Write what is pending.  -1 if the connection was closed. */
static int cconn_flush(cconn *k)
{
    while (k->out.len) {
        ssize_t n = send(k->fd, k->out.p, k->out.len, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EAGAIN)
            break;
        if (n <= 0) {
            cconn_close(k);
            return -1;
        }
        sbuf_consume(&k->out, (size_t)n);
    }
    if (!k->out.len && (k->closing || k->eof)) {
        cconn_close(k);
        return -1;
    }
    return 0;
}

/* Run every complete line in the input buffer. */
static void cconn_lines(cconn *k)
{
    size_t used = 0;
    while (!k->closing && k->out.len < OUT_HIGH_WATER) {
        size_t consumed;
        long len = ctl_next_line(k->in.p + used, k->in.len - used, &consumed);
        if (len < 0)
            break;
        if ((size_t)len > CTL_MAX_LINE) {
            sbuf_addstr(&k->out, "ERR line too long\n");
            k->closing = 1;
            break;
        }
        run_line(k, k->in.p + used, (size_t)len);
        used += consumed;
    }
    sbuf_consume(&k->in, used);
    if (!k->closing && k->in.len > CTL_MAX_LINE + 2 &&
        !memchr(k->in.p, '\n', k->in.len)) {
        sbuf_addstr(&k->out, "ERR line too long\n");
        k->closing = 1;
    }
}

static void cconn_event(void *ctx, int fd, short rev)
{
    cconn *k = ctx;
    (void)fd;
    if (rev & (POLLIN | POLLHUP | POLLERR)) {
        char buf[16384];
        ssize_t n = recv(k->fd, buf, sizeof buf, 0);
        if (n < 0 && (errno == EINTR || errno == EAGAIN)) {
            /* nothing now */
        } else if (n <= 0) {
            k->eof = 1;   /* answer what was asked, then close */
        } else {
            sbuf_add(&k->in, buf, (size_t)n);
            if (k->in.oom) {
                cconn_close(k);
                return;
            }
        }
    }
    cconn_lines(k);
    if (cconn_flush(k) < 0)
        return;
    cconn_update(k);
}

static void listener_event(void *ctx, int lfd, short rev)
{
    control *c = ctx;
    (void)rev;
    for (int i = 0; i < 64; i++) {
        int fd = sock_accept(lfd);
        if (fd < 0)
            return;
        cconn *k = calloc(1, sizeof *k);
        if (!k || loop_add(c->x->loop, fd, POLLIN, cconn_event, k) < 0) {
            free(k);
            close(fd);
            return;
        }
        k->ctl = c;
        k->fd = fd;
        k->next = c->conns;
        if (c->conns)
            c->conns->prev = k;
        c->conns = k;
    }
}

int control_listen(control *c, const char *addr, int port, char *err, size_t errlen)
{
    if (c->nl >= MAX_LISTENERS) {
        snprintf(err, errlen, "too many control addresses");
        return -1;
    }
    if (c->port > 0)
        port = c->port;
    int fd = sock_listen(addr, port, err, errlen);
    if (fd < 0)
        return -1;
    if (loop_add(c->x->loop, fd, POLLIN, listener_event, c) < 0) {
        close(fd);
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    c->lfd[c->nl++] = fd;
    if (c->port <= 0)
        c->port = sock_local_port(fd);
    return 0;
}

void control_free(control *c)
{
    if (!c)
        return;
    while (c->conns) {
        cconn *k = c->conns;
        k->closing = 1;
        if (cconn_flush(k) == 0)
            cconn_close(k);   /* could not flush all of it: drop the rest */
    }
    for (int i = 0; i < c->nl; i++) {
        loop_del(c->x->loop, c->lfd[i]);
        close(c->lfd[i]);
    }
    free(c);
}
