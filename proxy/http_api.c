#include "http_api.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "control.h"
#include "http.h"
#include "http_body.h"
#include "log.h"
#include "sbuf.h"

/* The page, embedded at build time (Makefile: build/gen/dashboard_html.c). */
extern const unsigned char dashboard_html[];
extern const size_t dashboard_html_len;

/* Input kept while a request is incomplete: the parser refuses more first. */
#define IN_MAX (HTTP_MAX_HEAD + HTTP_MAX_BODY + 16384)

/* A connection is one of two states:
 *   HC_REQUEST  requests in, responses out, in order (keep-alive, pipelining)
 *   HC_STREAM   after GET /events/stream: events out until either side
 *               closes; input is read and dropped
 * Invariant: a HC_STREAM connection is on h->streams' count and sends
 * events seq..ev.next_seq-1 as its buffer drains; nothing else moves it. */
enum hc_state { HC_REQUEST, HC_STREAM };

typedef struct hconn {
    struct hconn *prev, *next;
    http_api *h;
    int fd;
    enum hc_state state;
    sbuf in, out;
    size_t scan;                 /* http_parse's resume point for this request */
    size_t need;                 /* bytes of input before parsing again is worth it */
    int continued;               /* "100 Continue" sent for this request */
    int closing;                 /* close once out is flushed */
    int eof;
    unsigned long long seq;      /* HC_STREAM: the next event to send */
} hconn;

struct http_api {
    epx *x;
    hconn *conns;
    int nstreams;
    sbuf reply, args, body;      /* scratch for one request */
};

static void hconn_close(hconn *c)
{
    http_api *h = c->h;
    loop_del(h->x->loop, c->fd);
    close(c->fd);
    if (c->prev)
        c->prev->next = c->next;
    else
        h->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    if (c->state == HC_STREAM)
        h->nstreams--;
    sbuf_free(&c->in);
    sbuf_free(&c->out);
    free(c);
}

static void hconn_update(hconn *c)
{
    short ev = 0;
    if (c->state == HC_STREAM)
        ev = c->eof ? 0 : POLLIN;
    else if (!c->closing && !c->eof && c->out.len < HTTP_OUT_HIGH && c->in.len < IN_MAX)
        ev = POLLIN;
    if (c->out.len)
        ev |= POLLOUT;
    loop_mod(c->h->x->loop, c->fd, ev);
}

/* Write what is pending.  -1 if the connection was closed. */
static int hconn_flush(hconn *c)
{
    while (c->out.len) {
        ssize_t n = send(c->fd, c->out.p, c->out.len, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EAGAIN)
            break;
        if (n <= 0) {
            hconn_close(c);
            return -1;
        }
        sbuf_consume(&c->out, (size_t)n);
    }
    if (!c->out.len && (c->closing || (c->eof && c->state == HC_STREAM))) {
        hconn_close(c);
        return -1;
    }
    return 0;
}

/* ---- responses ------------------------------------------------------- */

/* Queue a whole response.  keep: the connection stays open after it. */
static void respond(hconn *c, int status, int keep, int minor, const char *ctype,
                    const char *extra, const void *body, size_t len)
{
    sbuf *o = &c->out;
    sbuf_printf(o, "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
                   "Cache-Control: no-store\r\n%s%s\r\n",
                status, http_reason(status), ctype, len, extra ? extra : "",
                !keep ? "Connection: close\r\n" : minor == 0 ? "Connection: keep-alive\r\n" : "");
    sbuf_add(o, body, len);
    if (!keep)
        c->closing = 1;
}

/* A JSON body (a trailing newline added, for people with curl). */
static void respond_json(hconn *c, const http_req *r, int status, const char *extra,
                         const char *json, size_t len)
{
    sbuf *b = &c->h->body;
    sbuf_reset(b);
    sbuf_add(b, json, len);
    sbuf_addstr(b, "\n");
    if (b->oom) {
        respond(c, 500, 0, r->minor, "application/json", NULL, "{\"error\":\"out of memory\"}\n", 26);
        return;
    }
    respond(c, status, r->keep_alive, r->minor, "application/json", extra, b->p, b->len);
}

/* {"error": msg}; keep 0 closes the connection after it. */
static void respond_error(hconn *c, int status, int keep, int minor, const char *extra,
                          const char *msg, size_t len)
{
    sbuf *b = &c->h->body;
    sbuf_reset(b);
    sbuf_addstr(b, "{\"error\":");
    sbuf_json_str(b, msg, len);
    sbuf_addstr(b, "}\n");
    respond(c, status, keep, minor, "application/json", extra, b->p ? b->p : "", b->len);
}

static void req_error(hconn *c, const http_req *r, int status, const char *msg)
{
    respond_error(c, status, r->keep_alive, r->minor, NULL, msg, strlen(msg));
}

/* ---- commands ---------------------------------------------------------- */

/* Run a line command: the reply ("OK ..." / "ERR ...") in h->reply.  On ERR
 * answer 400 with its text and return -1. */
static int run(hconn *c, const http_req *r, const char *line, size_t len)
{
    sbuf *o = &c->h->reply;
    sbuf_reset(o);
    ctl_line cl;
    ctl_parse_line(line, len, &cl);
    control_exec(c->h->x, &cl, o);
    if (o->oom) {
        req_error(c, r, 500, "out of memory");
        return -1;
    }
    if (o->len >= 3 && memcmp(o->p, "ERR", 3) == 0) {
        size_t skip = o->len > 3 ? 4 : 3;
        respond_error(c, 400, r->keep_alive, r->minor, NULL, o->p + skip, o->len - skip);
        return -1;
    }
    return 0;
}

/* GET for a command whose reply is "OK <json>". */
static void get_json(hconn *c, const http_req *r, const char *cmd)
{
    if (run(c, r, cmd, strlen(cmd)) < 0)
        return;
    sbuf *o = &c->h->reply;
    respond_json(c, r, 200, NULL, o->p + 3, o->len - 3);
}

/* "OK" or "OK not registered: a,b" as {"ok":true,"not_registered":[...]}. */
static void ok_names(hconn *c, const http_req *r)
{
    sbuf *o = &c->h->reply, *j = &c->h->args;
    static const char pre[] = "OK not registered: ";
    sbuf_reset(j);
    sbuf_addstr(j, "{\"ok\":true,\"not_registered\":[");
    if (o->len > sizeof pre - 1 && memcmp(o->p, pre, sizeof pre - 1) == 0) {
        const char *s = o->p + sizeof pre - 1, *end = o->p + o->len;
        while (s < end) {
            const char *comma = memchr(s, ',', (size_t)(end - s));
            const char *e = comma ? comma : end;
            if (s != o->p + sizeof pre - 1)
                sbuf_addstr(j, ",");
            sbuf_json_str(j, s, (size_t)(e - s));
            s = e + 1;
        }
    }
    sbuf_addstr(j, "]}");
    respond_json(c, r, 200, NULL, j->p, j->len);
}

/* A body must be JSON if there is one: 0, or answered with 415 and -1. */
static int json_body(hconn *c, const http_req *r)
{
    if (r->body_len == 0)
        return 0;
    size_t n;
    const char *ct = http_header(r, "Content-Type", &n);
    size_t base = 0;
    while (ct && base < n && ct[base] != ';' && ct[base] != ' ' && ct[base] != '\t')
        base++;
    if (!ct || base != 16 || strncasecmp(ct, "application/json", 16) != 0) {
        req_error(c, r, 415, "the body must be JSON (Content-Type: application/json)");
        return -1;
    }
    return 0;
}

/* POST/PUT with a body that becomes the arguments of `verb`. */
static void body_cmd(hconn *c, const http_req *r, const char *verb, http_body_kind kind)
{
    if (json_body(c, r) < 0)
        return;
    char err[256];
    sbuf *a = &c->h->args;
    sbuf_reset(a);
    sbuf_addstr(a, verb);
    sbuf_addstr(a, " ");
    if (http_body_args(r->body, r->body_len, kind, a, err, sizeof err) < 0) {
        req_error(c, r, 400, err);
        return;
    }
    if (a->oom) {
        req_error(c, r, 500, "out of memory");
        return;
    }
    if (run(c, r, a->p, a->len) < 0)
        return;
    if (kind == HTTP_BODY_MODE) {
        sbuf *o = &c->h->reply, *j = &c->h->args;
        sbuf_reset(j);
        sbuf_addstr(j, "{\"mode\":");
        sbuf_json_str(j, o->p + 3, o->len - 3);
        sbuf_addstr(j, "}");
        respond_json(c, r, 200, NULL, j->p, j->len);
        return;
    }
    ok_names(c, r);
}

/* A decimal sequence number: 0 or -1. */
static int seq_arg(const char *s, size_t n, unsigned long long *out)
{
    if (n == 0 || n > 19)
        return -1;
    unsigned long long v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (unsigned long long)(s[i] - '0');
    }
    *out = v;
    return 0;
}

/* ---- the event stream ---------------------------------------------------- */

/* Queue the stream's next events while its buffer has room.  -1 if the
 * client fell out of the ring and was closed. */
static int stream_fill(hconn *c)
{
    const events *e = &c->h->x->ev;
    unsigned long long first = e->next_seq > EVENTS_KEEP ? e->next_seq - EVENTS_KEEP : 1;
    if (c->seq < first) {
        log_msg(LOG_INFO, "http: event stream fd %d dropped: %llu events behind", c->fd,
                e->next_seq - c->seq);
        hconn_close(c);
        return -1;
    }
    while (c->out.len < HTTP_SSE_BUF && c->seq < e->next_seq) {
        sbuf_printf(&c->out, "id: %llu\ndata: %s\n\n", c->seq, e->ring[c->seq % EVENTS_KEEP]);
        c->seq++;
    }
    if (c->out.oom) {
        hconn_close(c);
        return -1;
    }
    return 0;
}

/* Send what fits now, refill, keep going while the socket takes it. */
static void stream_pump(hconn *c)
{
    do {
        if (stream_fill(c) < 0 || hconn_flush(c) < 0)
            return;
    } while (!c->out.len && c->seq < c->h->x->ev.next_seq);
    hconn_update(c);
}

/* events_listen(): each new event goes out to every stream now. */
static void on_event(void *ctx, unsigned long long seq, const char *json)
{
    http_api *h = ctx;
    (void)seq, (void)json;
    for (hconn *c = h->conns, *nx; c; c = nx) {
        nx = c->next;
        if (c->state == HC_STREAM)
            stream_pump(c);
    }
}

static void start_stream(hconn *c, const http_req *r)
{
    const events *e = &c->h->x->ev;
    unsigned long long after, next = e->next_seq;
    size_t n;
    const char *v = http_header(r, "Last-Event-ID", &n);
    if (!v)
        v = http_query_param(r, "since", &n);
    if (v) {
        if (seq_arg(v, n, &after) < 0) {
            req_error(c, r, 400, "Last-Event-ID and since take an event sequence number");
            return;
        }
        next = after < e->next_seq ? after + 1 : e->next_seq;
        unsigned long long first = e->next_seq > EVENTS_KEEP ? e->next_seq - EVENTS_KEEP : 1;
        if (next < first)
            next = first;   /* what is gone is gone: start at the oldest kept */
    }
    sbuf_addstr(&c->out, "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
                         "Cache-Control: no-store\r\nConnection: close\r\n\r\n"
                         "retry: 1000\n\n");
    /* a fixed kernel buffer: no autotuning to megabytes for a client that
     * does not read, so it falls behind (and is dropped) at a known size */
    int sndbuf = HTTP_SSE_SNDBUF;
    setsockopt(c->fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof sndbuf);
    c->state = HC_STREAM;
    c->seq = next;
    c->h->nstreams++;
    sbuf_reset(&c->in);   /* anything after the request is not ours to answer */
}

/* ---- routing ----------------------------------------------------------- */

/* A state-changing request from a page of another origin is refused: a
 * browser sends Origin with it, and ours is http://<Host>. */
static int foreign_origin(const http_req *r)
{
    size_t on, hn;
    const char *o = http_header(r, "Origin", &on), *host = http_header(r, "Host", &hn);
    if (!o)
        return 0;
    return !host || on != 7 + hn || memcmp(o, "http://", 7) != 0 ||
           strncasecmp(o + 7, host, hn) != 0;
}

/* POST /delay /rate /clear /flap /nemesis: the body (JSON) becomes the
 * line command's arguments (http_body.h); the reply is the command's JSON
 * payload, or {"ok":true,...} as for the rules. */
static void fault_cmd(hconn *c, const http_req *r, const char *p)
{
    static const struct {
        const char *path, *verb;
        http_body_kind kind;
    } map[] = {
        { "/delay", "DELAY", HTTP_BODY_DELAY }, { "/rate", "RATE", HTTP_BODY_RATE },
        { "/clear", "CLEAR", HTTP_BODY_CLEAR }, { "/flap", "FLAP", HTTP_BODY_FLAP },
        { "/nemesis", "NEMESIS", HTTP_BODY_NEMESIS },
    };
    size_t k = 0;
    while (strcmp(map[k].path, p))
        k++;
    if (json_body(c, r) < 0)
        return;
    if (r->body_len == 0 && map[k].kind != HTTP_BODY_CLEAR) {
        req_error(c, r, 400, "needs a JSON body");
        return;
    }
    char err[256];
    sbuf *a = &c->h->args;
    sbuf_reset(a);
    sbuf_addstr(a, map[k].verb);
    sbuf_addstr(a, " ");
    if (r->body_len && http_body_args(r->body, r->body_len, map[k].kind, a, err, sizeof err) < 0) {
        req_error(c, r, 400, err);
        return;
    }
    while (a->len && a->p[a->len - 1] == ' ')
        a->p[--a->len] = 0;   /* "CLEAR " with no spec: every fault */
    if (a->oom) {
        req_error(c, r, 500, "out of memory");
        return;
    }
    if (run(c, r, a->p, a->len) < 0)
        return;
    sbuf *o = &c->h->reply;
    if (o->len > 3 && (o->p[3] == '{' || o->p[3] == '['))
        respond_json(c, r, 200, NULL, o->p + 3, o->len - 3);   /* NEMESIS, FLAP */
    else if (map[k].kind == HTTP_BODY_CLEAR)
        respond_json(c, r, 200, NULL, "{\"ok\":true}", 11);
    else
        ok_names(c, r);
}

static void route(hconn *c, const http_req *r)
{
    static const struct {
        const char *path, *allow;
    } paths[] = {
        { "/", "GET" },          { "/status", "GET" },  { "/nodes", "GET" },
        { "/links", "GET" },     { "/rules", "GET" },   { "/events", "GET" },
        { "/events/stream", "GET" }, { "/cut", "POST" }, { "/fix", "POST" },
        { "/split", "POST" },    { "/isolate", "POST" }, { "/heal", "POST" },
        { "/mode", "GET, PUT" },
        { "/faults", "GET" },    { "/delay", "POST" },  { "/rate", "POST" },
        { "/clear", "POST" },    { "/flap", "POST" },   { "/flap/stop", "POST" },
        { "/nemesis", "POST" },  { "/nemesis/stop", "POST" },
    };
    const char *allow = NULL, *p = NULL;
    for (size_t k = 0; k < sizeof paths / sizeof paths[0]; k++)
        if (strlen(paths[k].path) == r->pathlen && !memcmp(paths[k].path, r->path, r->pathlen)) {
            p = paths[k].path;
            allow = paths[k].allow;
        }
    if (!p) {
        req_error(c, r, 404, "no such resource");
        return;
    }
    int get = !strcmp(r->method, "GET"), post = !strcmp(r->method, "POST"),
        put = !strcmp(r->method, "PUT");
    int ok = strstr(allow, r->method) && (get || post || put);
    if (!ok) {
        char extra[64];
        snprintf(extra, sizeof extra, "Allow: %s\r\n", allow);
        char msg[96];
        snprintf(msg, sizeof msg, "%s takes %s", p, allow);
        respond_error(c, 405, r->keep_alive, r->minor, extra, msg, strlen(msg));
        return;
    }
    if (!get && foreign_origin(r)) {
        req_error(c, r, 403, "cross-origin request refused");
        return;
    }
    if (!strcmp(p, "/")) {
        respond(c, 200, r->keep_alive, r->minor, "text/html; charset=utf-8", NULL, dashboard_html,
                dashboard_html_len);
    } else if (!strcmp(p, "/events")) {
        size_t n;
        const char *v = http_query_param(r, "since", &n);
        char line[64];
        snprintf(line, sizeof line, "EVENTS %.*s", v ? (int)(n > 40 ? 40 : n) : 0, v ? v : "");
        if (v && n > 40)
            req_error(c, r, 400, "EVENTS takes an optional sequence number");
        else
            get_json(c, r, line);
    } else if (!strcmp(p, "/events/stream")) {
        start_stream(c, r);
    } else if (!strcmp(p, "/cut") || !strcmp(p, "/fix") || !strcmp(p, "/split")) {
        body_cmd(c, r, p[1] == 'c' ? "CUT" : p[1] == 'f' ? "FIX" : "SPLIT", HTTP_BODY_SPEC);
    } else if (!strcmp(p, "/delay") || !strcmp(p, "/rate") || !strcmp(p, "/flap") ||
               !strcmp(p, "/clear") || !strcmp(p, "/nemesis")) {
        fault_cmd(c, r, p);
    } else if (!strcmp(p, "/flap/stop") || !strcmp(p, "/nemesis/stop")) {
        if (json_body(c, r) == 0 &&
            run(c, r, p[1] == 'f' ? "FLAP STOP" : "NEMESIS STOP", p[1] == 'f' ? 9 : 12) == 0)
            respond_json(c, r, 200, NULL, "{\"ok\":true}", 11);
    } else if (!strcmp(p, "/faults")) {
        get_json(c, r, "FAULTS");
    } else if (!strcmp(p, "/isolate")) {
        body_cmd(c, r, "ISOLATE", HTTP_BODY_NODE);
    } else if (!strcmp(p, "/heal")) {
        if (json_body(c, r) == 0 && run(c, r, "HEAL", 4) == 0)
            respond_json(c, r, 200, NULL, "{\"ok\":true}", 11);
    } else if (!strcmp(p, "/mode") && put) {
        body_cmd(c, r, "MODE", HTTP_BODY_MODE);
    } else if (!strcmp(p, "/mode")) {
        if (run(c, r, "MODE", 4) == 0) {
            sbuf *o = &c->h->reply, *j = &c->h->args;
            sbuf_reset(j);
            sbuf_addstr(j, "{\"mode\":");
            sbuf_json_str(j, o->p + 3, o->len - 3);
            sbuf_addstr(j, "}");
            respond_json(c, r, 200, NULL, j->p, j->len);
        }
    } else {
        /* /status /nodes /links /rules: the command of the same name */
        char cmd[16];
        size_t k = 0;
        for (const char *s = p + 1; *s && k < sizeof cmd - 1; s++)
            cmd[k++] = (char)(*s - 'a' + 'A');
        cmd[k] = 0;
        get_json(c, r, cmd);
    }
}

/* Answer every whole request in the input, in order. */
static void hconn_requests(hconn *c)
{
    while (c->state == HC_REQUEST && !c->closing && c->out.len < HTTP_OUT_HIGH &&
           c->in.len && c->in.len >= c->need) {
        http_req r;
        int status;
        int rc = http_parse(c->in.p, c->in.len, &c->scan, &r, &status);
        if (rc == HTTP_ERROR) {
            log_msg(LOG_INFO, "http: fd %d: bad request (%d)", c->fd, status);
            const char *msg = status == 413 ? "body too large (at most 65536 bytes)"
                            : status == 411 ? "chunked bodies are not accepted: send Content-Length"
                            : status == 431 ? "request head too large"
                            : status == 414 ? "request line too long"
                            : status == 505 ? "only HTTP/1.x"
                            : "malformed request";
            respond_error(c, status, 0, 1, NULL, msg, strlen(msg));
            break;
        }
        if (rc == HTTP_MORE) {
            c->need = r.head_done ? r.total : 0;
            if (r.head_done && r.expect_continue && !c->continued) {
                sbuf_addstr(&c->out, "HTTP/1.1 100 Continue\r\n\r\n");
                c->continued = 1;
            }
            break;
        }
        route(c, &r);
        if (c->state == HC_REQUEST) {
            if (!r.keep_alive)
                c->closing = 1;
            sbuf_consume(&c->in, r.total);
        }
        c->scan = 0;
        c->need = 0;
        c->continued = 0;
    }
    /* the peer is done sending: once every whole request it sent is
     * answered, close (not while output is backed up: more may follow) */
    if (c->eof && c->state == HC_REQUEST && c->out.len < HTTP_OUT_HIGH)
        c->closing = 1;
}

static void hconn_event(void *ctx, int fd, short rev)
{
    hconn *c = ctx;
    (void)fd;
    if (rev & (POLLIN | POLLHUP | POLLERR)) {
        char buf[16384];
        ssize_t n = recv(c->fd, buf, sizeof buf, 0);
        if (n < 0 && (errno == EINTR || errno == EAGAIN)) {
            /* nothing now */
        } else if (n <= 0) {
            c->eof = 1;
        } else if (c->state == HC_REQUEST) {
            sbuf_add(&c->in, buf, (size_t)n);
            if (c->in.oom) {
                hconn_close(c);
                return;
            }
        }
    }
    if (c->state == HC_STREAM && c->eof) {
        hconn_close(c);   /* nobody left to read the stream */
        return;
    }
    for (;;) {
        hconn_requests(c);
        if (c->state == HC_STREAM) {
            stream_pump(c);
            return;
        }
        if (hconn_flush(c) < 0)
            return;
        /* all sent, the peer half-closed, requests still waiting behind
         * the output limit: nothing will wake us for them, go on now */
        if (c->out.len || !c->eof || c->closing)
            break;
    }
    hconn_update(c);
}

int http_api_adopt(http_api *h, int fd, const char *buf, size_t n)
{
    hconn *c = calloc(1, sizeof *c);
    if (!c) {
        close(fd);
        return -1;
    }
    c->h = h;
    c->fd = fd;
    sbuf_add(&c->in, buf, n);
    if (c->in.oom || loop_add(h->x->loop, fd, POLLIN, hconn_event, c) < 0) {
        sbuf_free(&c->in);
        free(c);
        close(fd);
        return -1;
    }
    c->next = h->conns;
    if (h->conns)
        h->conns->prev = c;
    h->conns = c;
    hconn_event(c, fd, 0);
    return 0;
}

http_api *http_api_new(epx *x)
{
    http_api *h = calloc(1, sizeof *h);
    if (!h)
        return NULL;
    h->x = x;
    events_listen(&x->ev, on_event, h);
    return h;
}

int http_api_nstreams(const http_api *h)
{
    return h ? h->nstreams : 0;
}

void http_api_free(http_api *h)
{
    if (!h)
        return;
    events_listen(&h->x->ev, NULL, NULL);
    while (h->conns) {
        hconn *c = h->conns;
        c->closing = 1;
        if (hconn_flush(c) == 0)
            hconn_close(c);   /* could not flush all of it: drop the rest */
    }
    sbuf_free(&h->reply);
    sbuf_free(&h->args);
    sbuf_free(&h->body);
    free(h);
}
