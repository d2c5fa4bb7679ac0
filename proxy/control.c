#include "control.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "app.h"
#include "chaos.h"
#include "ctl_parse.h"
#include "faults.h"
#include "epmd_srv.h"
#include "http.h"
#include "http_api.h"
#include "nemesis.h"
#include "log.h"
#include "proxy.h"
#include "sbuf.h"
#include "sock.h"
#include "udp.h"

#define MAX_LISTENERS   (EPX_MAX_ADDRS + 2)
#define OUT_HIGH_WATER  (1024 * 1024)   /* stop reading a client that does not read */

typedef struct cconn {
    struct cconn *prev, *next;
    control *ctl;
    int fd;
    sbuf in, out;
    int closing;        /* close once out is flushed */
    int eof;
    unsigned long id;   /* owner of what the shim registers on it */
    int lines;          /* lines run so far: the first may turn it into HTTP */
} cconn;

struct control {
    epx *x;
    int lfd[MAX_LISTENERS];
    int nl;
    int port;
    cconn *conns;
    unsigned long next_id;
    http_api *http;     /* connections that spoke HTTP; made on the first */
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
    app_owner_gone(c->x->app, k->id);
    udp_owner_gone(c->x->udp, k->id);
    if (k->fd >= 0) {
        loop_del(c->x->loop, k->fd);
        close(k->fd);
    }
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
                   "\"mode\":\"%s\",\"nodes\":%d,\"links\":%d,\"rules\":%zu,"
                   "\"faults\":%zu,\"uptime_ms\":%lld}",
                EPX_VERSION, (int)getpid(), x->epmd_port, x->control_port,
                epx_mode_name(x->mode), x->reg.nreg,
                proxy_nlinks(x->proxy), x->rules.n, x->faults.n, loop_now_ms() - x->started_ms);
}

/* Is some registered node called like this (alive part compared)? */
static int name_registered(epx *x, const char *name)
{
    for (reg_node *n = x->reg.reg; n; n = n->next)
        if (rules_name_match(name, n->full[0] ? n->full : n->name))
            return 1;
    return 0;
}

/* "OK", or "OK not registered: a,b" when some names are not (yet) known. */
static void ok_names(epx *x, sbuf *o, char names[][RULES_MAX_NAME + 1], int n)
{
    sbuf_addstr(o, "OK");
    int missing = 0;
    for (int i = 0; i < n; i++) {
        if (name_registered(x, names[i]))
            continue;
        sbuf_addstr(o, missing++ ? "," : " not registered: ");
        sbuf_addstr(o, names[i]);
    }
}

/* The ERR line for a rules_* failure code. */
static void rules_err(sbuf *o, int rc)
{
    if (rc == -2)
        sbuf_printf(o, "ERR too many rules: at most %d blocked pairs", RULES_MAX);
    else if (rc == -3)
        sbuf_printf(o, "ERR too many rules with patterns: at most %d pairs", RULES_MAX_GLOB);
    else
        sbuf_addstr(o, "ERR out of memory");
}

/* Strip a trailing FOR from cl's arguments (len gets the rest) and, if
 * there was one, arm the command's end under a fresh tag.  0 (no FOR: *t
 * NULL, *tag 0), 1 (armed), or -1 with the ERR line written. */
static int timed_prefix(epx *x, sbuf *o, const ctl_line *cl, size_t *len, long long *for_ms,
                        unsigned long *tag, chaos_timed **t)
{
    char err[256];
    *len = cl->argslen;
    *for_ms = 0;
    *tag = 0;
    *t = NULL;
    int rc = ctl_strip_for(cl->args, len, for_ms, err, sizeof err);
    if (rc < 0) {
        sbuf_printf(o, "ERR %s", err);
        return -1;
    }
    if (rc == 0)
        return 0;
    *tag = chaos_tag(x->chaos);
    char what[256];
    int wn = snprintf(what, sizeof what, "%s %.*s", ctl_cmd_name(cl->cmd),
                      (int)(cl->argslen > 200 ? 200 : cl->argslen), cl->args);
    if (!(*t = chaos_timed_arm(x->chaos, *tag, *for_ms, what, (size_t)wn, err, sizeof err))) {
        sbuf_printf(o, "ERR %s", err);
        return -1;
    }
    return 1;
}

/* The rules or the mode changed: links and held EPMD lookups follow. */
static void rules_changed(epx *x)
{
    proxy_rules_changed(x->proxy);
    epmd_srv_rules_changed(x->epmd);
}

/* CUT / FIX / SPLIT: islands or (not SPLIT) one way.  SPLIT replaces every
 * rule with exactly the islands' blocks, in one step.  CUT and SPLIT may
 * end with FOR <duration>: then what they added goes again by itself. */
static void cmd_cut_fix(epx *x, sbuf *o, const ctl_line *cl, ctl_cmd cmd)
{
    static rules_spec spec;   /* large; the daemon is single-threaded */
    char err[256];
    int cut = cmd != CTL_FIX;
    const char *verb = ctl_cmd_name(cmd);
    size_t len = cl->argslen;
    long long for_ms = 0;
    unsigned long tag = 0;
    chaos_timed *t = NULL;
    if (cut && timed_prefix(x, o, cl, &len, &for_ms, &tag, &t) < 0)
        return;
    if (rules_parse_spec(cl->args, len, &spec, err, sizeof err) < 0) {
        if (strncmp(err, "needs", 5) == 0)
            sbuf_printf(o, "ERR %s %s", verb, err);
        else
            sbuf_printf(o, "ERR %s", err);
        if (t)
            chaos_timed_cancel(x->chaos, t);
        return;
    }
    if (cmd == CTL_SPLIT && spec.oneway) {
        sbuf_addstr(o, "ERR SPLIT takes islands, not '->'");
        if (t)
            chaos_timed_cancel(x->chaos, t);
        return;
    }
    /* the new set is built aside (SPLIT) or allocated first: a refused
     * command leaves every rule as it was */
    x->rules.tag = tag;
    int changed = cmd == CTL_SPLIT ? rules_replace(&x->rules, &spec)
                                   : rules_apply(&x->rules, &spec, cut);
    x->rules.tag = 0;
    if (changed < 0) {
        rules_err(o, changed);
        if (t)
            chaos_timed_cancel(x->chaos, t);
        return;
    }
    events_add(&x->ev, loop_now_ms(), cmd == CTL_SPLIT ? "split" : cut ? "cut" : "fix",
               "\"spec\":%s,\"pairs\":%d,\"for_ms\":%lld",
               events_qn(cl->args, len), changed, for_ms);
    log_msg(LOG_INFO, "control: %s %.*s (%d pairs changed)", verb, (int)cl->argslen, cl->args,
            changed);
    rules_changed(x);
    ok_names(x, o, spec.names, spec.nnames);
}

/* ISOLATE name [EXCEPT p1,p2] [FOR d]: name against every node but those. */
static void cmd_isolate(epx *x, sbuf *o, const ctl_line *cl)
{
    char name[1][RULES_MAX_NAME + 1];
    char err[256];
    sbuf except = { 0 };
    size_t len;
    long long for_ms;
    unsigned long tag;
    chaos_timed *t;
    if (timed_prefix(x, o, cl, &len, &for_ms, &tag, &t) < 0)
        return;
    if (rules_parse_isolate(cl->args, len, name[0], &except, err, sizeof err) < 0) {
        sbuf_printf(o, "ERR ISOLATE %s", err);
        sbuf_free(&except);
        if (t)
            chaos_timed_cancel(x->chaos, t);
        return;
    }
    x->rules.tag = tag;
    int changed = rules_isolate(&x->rules, name[0], sbuf_str(&except));
    x->rules.tag = 0;
    if (changed < 0) {
        rules_err(o, changed);
        sbuf_free(&except);
        if (t)
            chaos_timed_cancel(x->chaos, t);
        return;
    }
    if (except.len)
        events_add(&x->ev, loop_now_ms(), "isolate", "\"node\":%s,\"except\":%s,\"for_ms\":%lld",
                   events_q(name[0]), events_q(sbuf_str(&except)), for_ms);
    else
        events_add(&x->ev, loop_now_ms(), "isolate", "\"node\":%s,\"for_ms\":%lld",
                   events_q(name[0]), for_ms);
    log_msg(LOG_INFO, "control: ISOLATE %.*s", (int)cl->argslen, cl->args);
    rules_changed(x);
    ok_names(x, o, name, 1);
    sbuf_free(&except);
}

/* DELAY, RATE, RESET, SLICE, SLOWCLOSE: set a link fault on the spec's
 * pairs, for good or FOR a while. */
static void cmd_fault(epx *x, sbuf *o, const ctl_line *cl, fault_kind kind)
{
    static rules_spec spec;
    fault_params p;
    char err[256];
    size_t len;
    long long for_ms;
    unsigned long tag;
    chaos_timed *t;
    if (timed_prefix(x, o, cl, &len, &for_ms, &tag, &t) < 0)
        return;
    if (faults_parse(kind, cl->args, len, &spec, &p, err, sizeof err) < 0) {
        sbuf_printf(o, "ERR %s", err);
        if (t)
            chaos_timed_cancel(x->chaos, t);
        return;
    }
    int n = faults_set(&x->faults, &spec, &p, tag);
    if (n < 0) {
        if (n == -2)
            sbuf_printf(o, "ERR too many faults: at most %d pairs", FAULTS_MAX);
        else
            sbuf_addstr(o, "ERR out of memory");
        if (t)
            chaos_timed_cancel(x->chaos, t);
        return;
    }
    sbuf params = { 0 };
    faults_params_json(&p, &params);
    events_add(&x->ev, loop_now_ms(), "fault",
               "\"kind\":\"%s\",\"spec\":%s,\"pairs\":%d%s,\"for_ms\":%lld",
               faults_kind_name(kind), events_qn(cl->args, len), n, sbuf_str(&params), for_ms);
    sbuf_free(&params);
    log_msg(LOG_INFO, "control: %s %.*s (%d pairs)", faults_kind_name(kind), (int)cl->argslen,
            cl->args, n);
    proxy_rules_changed(x->proxy);
    ok_names(x, o, spec.names, spec.nnames);
}

/* CLEAR [spec]: the link faults of exactly those pairs, or every one. */
static void cmd_clear(epx *x, sbuf *o, const ctl_line *cl)
{
    static rules_spec spec;
    char err[256];
    int n;
    if (cl->argslen == 0) {
        n = (int)faults_clear(&x->faults);
    } else {
        if (rules_parse_spec(cl->args, cl->argslen, &spec, err, sizeof err) < 0) {
            sbuf_printf(o, strncmp(err, "needs", 5) ? "ERR %s" : "ERR CLEAR %s", err);
            return;
        }
        n = faults_clear_spec(&x->faults, &spec);
    }
    events_add(&x->ev, loop_now_ms(), "clear", "\"spec\":%s,\"pairs\":%d",
               events_qn(cl->args, cl->argslen), n);
    log_msg(LOG_INFO, "control: CLEAR %.*s (%d pairs)", (int)cl->argslen, cl->args, n);
    proxy_rules_changed(x->proxy);
    sbuf_printf(o, "OK %d", n);
}

/* FLAP spec UP d DOWN d [FOR d], or FLAP STOP. */
static void cmd_flap(epx *x, sbuf *o, const ctl_line *cl)
{
    static rules_spec spec;
    char err[256];
    size_t len = cl->argslen, speclen;
    long long for_ms = 0, up, down;
    if (len == 4 && strncasecmp(cl->args, "STOP", 4) == 0) {
        sbuf_printf(o, "OK %d", chaos_flap_stop(x->chaos));
        return;
    }
    if (ctl_strip_for(cl->args, &len, &for_ms, err, sizeof err) < 0 ||
        ctl_parse_flap(cl->args, len, &speclen, &up, &down, err, sizeof err) < 0) {
        sbuf_printf(o, "ERR %s", err);
        return;
    }
    if (rules_parse_spec(cl->args, speclen, &spec, err, sizeof err) < 0) {
        sbuf_printf(o, strncmp(err, "needs", 5) ? "ERR %s" : "ERR FLAP %s", err);
        return;
    }
    long id = chaos_flap(x->chaos, cl->args, speclen, up, down, for_ms, err, sizeof err);
    if (id < 0) {
        sbuf_printf(o, "ERR %s", err);
        return;
    }
    log_msg(LOG_INFO, "control: FLAP %.*s", (int)cl->argslen, cl->args);
    sbuf_printf(o, "OK {\"flap\":%ld}", id);
}

/* NEMESIS SHAPE|START|STOP. */
static void cmd_nemesis(epx *x, sbuf *o, const ctl_line *cl)
{
    nemesis_cmd nc;
    char err[256];
    if (nemesis_parse(cl->args, cl->argslen, &nc, err, sizeof err) < 0) {
        sbuf_printf(o, "ERR NEMESIS %s", err);
        return;
    }
    size_t mark = o->len;
    switch (nc.op) {
    case NEM_CMD_STOP:
        sbuf_printf(o, "OK {\"stopped\":%s}", chaos_nemesis_stop(x->chaos) ? "true" : "false");
        return;
    case NEM_CMD_START:
        sbuf_addstr(o, "OK ");
        if (chaos_nemesis_start(x->chaos, &nc, o, err, sizeof err) < 0) {
            o->len = mark;
            sbuf_printf(o, "ERR NEMESIS %s", err);
        }
        return;
    case NEM_CMD_SHAPE: {
        unsigned long tag = chaos_tag(x->chaos);
        chaos_timed *t = NULL;
        char what[256];
        int wn = snprintf(what, sizeof what, "NEMESIS %.*s",
                          (int)(cl->argslen > 200 ? 200 : cl->argslen), cl->args);
        if (nc.for_ms &&
            !(t = chaos_timed_arm(x->chaos, tag, nc.for_ms, what, (size_t)wn, err, sizeof err))) {
            sbuf_printf(o, "ERR %s", err);
            return;
        }
        sbuf_addstr(o, "OK ");
        if (chaos_nemesis_shape(x->chaos, &nc, t ? tag : 0, o, err, sizeof err) < 0) {
            o->len = mark;
            sbuf_printf(o, "ERR NEMESIS %s", err);
            if (t)
                chaos_timed_cancel(x->chaos, t);
        }
        return;
    }
    }
}

static void faults_all_json(epx *x, sbuf *o)
{
    sbuf_addstr(o, "{\"links\":");
    faults_json(&x->faults, o);
    sbuf_addstr(o, ",");
    chaos_json(x->chaos, o);
    sbuf_addstr(o, "}");
}

/* MODE [hold|freeze|reset] [knob=value ...]: read or set what a block
 * does, and MODE hold's knobs (holdmodel.h); the reply names the mode and,
 * for hold, its knobs. */
static void cmd_mode(epx *x, sbuf *o, const ctl_line *cl)
{
    const char *p = cl->args, *end = cl->args + cl->argslen;
    enum epx_mode m = x->mode;
    hold_params hp = x->hold;
    int modes = 0;
    while (p < end) {
        while (p < end && *p == ' ')
            p++;
        const char *w = p;
        while (p < end && *p != ' ')
            p++;
        size_t n = (size_t)(p - w);
        char err[160];
        if (!n)
            break;
        if (!memchr(w, '=', n) && modes++) {
            sbuf_printf(o, "ERR one mode at most, then knob=value ...");
            return;
        }
        if (n == 4 && strncasecmp(w, "hold", 4) == 0) {
            m = EPXD_MODE_HOLD;
        } else if (n == 5 && strncasecmp(w, "reset", 5) == 0) {
            m = EPXD_MODE_RESET;
        } else if (n == 6 && strncasecmp(w, "freeze", 6) == 0) {
            m = EPXD_MODE_FREEZE;
        } else if (memchr(w, '=', n)) {
            if (hold_set(&hp, w, n, err, sizeof err) < 0) {
                sbuf_printf(o, "ERR %s", err);
                return;
            }
        } else {
            sbuf_printf(o, "ERR unknown mode %.*s (hold, freeze or reset)", (int)(n > 64 ? 64 : n),
                        w);
            return;
        }
    }
    if (memcmp(&hp, &x->hold, sizeof hp) != 0) {
        char knobs[512];
        x->hold = hp;
        hold_format(&hp, knobs, sizeof knobs);
        events_add(&x->ev, loop_now_ms(), "hold_knobs", "\"knobs\":%s", knobs);
        log_msg(LOG_INFO, "control: MODE knobs %s", knobs);
    }
    if (m != x->mode) {
        x->mode = m;
        events_add(&x->ev, loop_now_ms(), "mode", "\"mode\":\"%s\"", epx_mode_name(m));
        log_msg(LOG_INFO, "control: MODE %s", epx_mode_name(m));
        rules_changed(x);
    }
    if (m == EPXD_MODE_RESET || cl->argslen == 0 || !memchr(cl->args, '=', cl->argslen)) {
        sbuf_printf(o, "OK %s", epx_mode_name(m));
        return;
    }
    char knobs[512];
    hold_format(&x->hold, knobs, sizeof knobs);
    sbuf_printf(o, "OK %s %s", epx_mode_name(m), knobs);
}

static void cmd_events(epx *x, sbuf *o, const ctl_line *cl)
{
    unsigned long long after = 0;
    if (cl->argslen) {
        char tmp[32], *end;
        size_t n = cl->argslen < sizeof tmp - 1 ? cl->argslen : sizeof tmp - 1;
        memcpy(tmp, cl->args, n);
        tmp[n] = 0;
        after = strtoull(tmp, &end, 10);
        if (*end || tmp[0] < '0' || tmp[0] > '9' || cl->argslen >= sizeof tmp - 1) {
            sbuf_addstr(o, "ERR EVENTS takes an optional sequence number");
            return;
        }
    }
    sbuf_addstr(o, "OK ");
    events_json(&x->ev, after, o);
}

/* EPMDPORT name [addr]: the node's own EPMD port (epmd_srv.h), made on
 * first use; EPMDPORT alone lists them. */
static void cmd_epmdport(epx *x, sbuf *o, const ctl_line *cl)
{
    char name[EPMD_MAXSYMLEN + 2], addr[80], err[256];
    const char *p = cl->args, *end = cl->args + cl->argslen;
    if (!cl->argslen) {
        sbuf_addstr(o, "OK ");
        epmd_srv_ports_json(x->epmd, o);
        return;
    }
    const char *w = p;
    while (p < end && *p != ' ' && *p != '\t')
        p++;
    size_t n = (size_t)(p - w);
    while (p < end && (*p == ' ' || *p == '\t'))
        p++;
    size_t an = (size_t)(end - p);
    if (n >= sizeof name || an >= sizeof addr || memchr(w, '@', n) ||
        (an && (memchr(p, ' ', an) || memchr(p, '\t', an)))) {
        sbuf_addstr(o, "ERR EPMDPORT takes an alive name (no host) and an optional loopback "
                       "address");
        return;
    }
    memcpy(name, w, n);
    name[n] = 0;
    memcpy(addr, p, an);
    addr[an] = 0;
    int port = epmd_srv_node_port(x->epmd, name, an ? addr : NULL, err, sizeof err);
    if (port < 0) {
        sbuf_printf(o, "ERR EPMDPORT %s", err);
        return;
    }
    const char *a = epmd_srv_node_addr(x->epmd, name, n);
    sbuf_addstr(o, "OK {\"name\":");
    sbuf_json_str(o, name, n);
    sbuf_printf(o, ",\"port\":%d,\"addr\":", port);
    sbuf_json_str(o, a ? a : "", a ? strlen(a) : 0);
    sbuf_addstr(o, "}");
}

/* "OK", or "ERR err" when rc < 0. */
static void reply_ok(sbuf *o, int rc, const char *err)
{
    if (rc < 0)
        sbuf_printf(o, "ERR %s", err);
    else
        sbuf_addstr(o, "OK");
}

/* A registration ends with the line connection that made it: none, none. */
static int owner_or_refuse(sbuf *o, const char *name, unsigned long owner)
{
    if (!owner)
        sbuf_printf(o, "ERR %s needs a line connection: its registrations end with it", name);
    return owner != 0;
}

/* The shim's commands (app.h): APPLISTEN, APPUNLISTEN, APPROUTE,
 * APPCONNECT, and APPS to look at them. */
static void cmd_app(epx *x, sbuf *o, const ctl_line *cl, unsigned long owner)
{
    const char *name = ctl_cmd_name(cl->cmd);
    char err[256];
    app_args args;
    if (!x->app && !(x->app = app_new(x))) {
        sbuf_addstr(o, "ERR out of memory");
        return;
    }
    if (cl->cmd == CTL_APPS) {
        sbuf_addstr(o, "OK ");
        app_json(x->app, o);
        if (o->len && o->p[o->len - 1] == '}') {   /* and the members' UDP ports */
            o->len--;
            sbuf_addstr(o, ",\"udp\":");
            udp_json(x->udp, o);
            sbuf_addstr(o, "}");
        }
        return;
    }
    if (app_parse(cl->args, cl->argslen, cl->cmd == CTL_APPCONNECT ? 2 : 1, &args, err,
                  sizeof err) < 0) {
        sbuf_printf(o, "ERR %s: %s", name, err);
        return;
    }
    switch (cl->cmd) {
    case CTL_APPLISTEN:
        if (owner_or_refuse(o, name, owner))
            reply_ok(o, app_listen(x->app, owner, args.node, args.port, err, sizeof err), err);
        return;
    case CTL_APPUNLISTEN:
        app_unlisten(x->app, owner, args.node, args.port);
        sbuf_addstr(o, "OK");
        return;
    case CTL_APPROUTE: {
        size_t mark = o->len;
        sbuf_addstr(o, "OK ");
        if (app_route(x->app, args.node, args.port, o, err, sizeof err) < 0) {
            o->len = mark;
            sbuf_printf(o, "ERR %s", err);
        }
        return;
    }
    case CTL_APPCONNECT:
        reply_ok(o, app_announce(x->app, &args, err, sizeof err), err);
        return;
    default:
        return;
    }
}

/* The shim's UDP commands (udp.h): APPUDP, APPUNUDP, APPUDPROUTE. */
static void cmd_udp(epx *x, sbuf *o, const ctl_line *cl, unsigned long owner)
{
    const char *name = ctl_cmd_name(cl->cmd);
    char err[256];
    app_args args;
    if (app_parse(cl->args, cl->argslen, 1, &args, err, sizeof err) < 0) {
        sbuf_printf(o, "ERR %s: %s", name, err);
        return;
    }
    if (!x->udp && !(x->udp = udp_new(x))) {
        sbuf_addstr(o, "ERR out of memory");
        return;
    }
    switch (cl->cmd) {
    case CTL_APPUDP:
        if (owner_or_refuse(o, name, owner))
            reply_ok(o, udp_register(x->udp, owner, args.node, args.port, err, sizeof err), err);
        return;
    case CTL_APPUNUDP:
        udp_unregister(x->udp, owner, args.node, args.port);
        sbuf_addstr(o, "OK");
        return;
    case CTL_APPUDPROUTE:
        sbuf_addstr(o, "OK ");
        udp_route(x->udp, args.node, args.port, o);
        return;
    default:
        return;
    }
}

control_result control_exec(epx *x, const ctl_line *cl, sbuf *o)
{
    return control_exec_owned(x, cl, o, 0);
}

control_result control_exec_owned(epx *x, const ctl_line *cl, sbuf *o, unsigned long owner)
{
    control_result res = CONTROL_REPLY;
    if (cl->cmd == CTL_EMPTY)
        return CONTROL_NO_REPLY;
    if (cl->cmd != CTL_UNKNOWN && cl->argslen && !ctl_cmd_takes_args(cl->cmd)) {
        sbuf_printf(o, "ERR %s takes no arguments", ctl_cmd_name(cl->cmd));
        return CONTROL_REPLY;
    }
    switch (cl->cmd) {
    case CTL_EMPTY:
        break;
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
    case CTL_RULES:
        sbuf_addstr(o, "OK ");
        rules_json(&x->rules, o);
        break;
    case CTL_CUT:
    case CTL_FIX:
    case CTL_SPLIT:
        cmd_cut_fix(x, o, cl, cl->cmd);
        break;
    case CTL_ISOLATE:
        cmd_isolate(x, o, cl);
        break;
    case CTL_HEAL: {
        /* a healthy network now and later: blocks, link faults, and what
         * would bring them back (timed ends, flaps, the nemesis) */
        size_t n = x->rules.n;
        chaos_heal(x->chaos);
        rules_clear(&x->rules);
        size_t nf = faults_clear(&x->faults);
        events_add(&x->ev, loop_now_ms(), "heal", "\"removed\":%zu,\"faults\":%zu", n, nf);
        log_msg(LOG_INFO, "control: HEAL (%zu pairs, %zu faults removed)", n, nf);
        rules_changed(x);
        sbuf_addstr(o, "OK");
        break;
    }
    case CTL_MODE:
        cmd_mode(x, o, cl);
        break;
    case CTL_DELAY:
    case CTL_RATE:
    case CTL_RESET:
    case CTL_SLICE:
    case CTL_SLOWCLOSE:
        cmd_fault(x, o, cl, cl->cmd == CTL_DELAY  ? FAULT_DELAY
                          : cl->cmd == CTL_RATE   ? FAULT_RATE
                          : cl->cmd == CTL_RESET  ? FAULT_RESET
                          : cl->cmd == CTL_SLICE  ? FAULT_SLICE : FAULT_SLOWCLOSE);
        break;
    case CTL_CLEAR:
        cmd_clear(x, o, cl);
        break;
    case CTL_FAULTS:
        sbuf_addstr(o, "OK ");
        faults_all_json(x, o);
        break;
    case CTL_FLAP:
        cmd_flap(x, o, cl);
        break;
    case CTL_NEMESIS:
        cmd_nemesis(x, o, cl);
        break;
    case CTL_EVENTS:
        cmd_events(x, o, cl);
        break;
    case CTL_SHUTDOWN:
        log_msg(LOG_INFO, "control: SHUTDOWN");
        sbuf_addstr(o, "OK");
        x->stop = 1;
        x->exit_code = 0;
        res = CONTROL_CLOSE;
        break;
    case CTL_QUIT:
        sbuf_addstr(o, "OK");
        res = CONTROL_CLOSE;
        break;
    case CTL_APPLISTEN:
    case CTL_APPUNLISTEN:
    case CTL_APPROUTE:
    case CTL_APPCONNECT:
    case CTL_APPS:
        cmd_app(x, o, cl, owner);
        break;
    case CTL_APPUDP:
    case CTL_APPUNUDP:
    case CTL_APPUDPROUTE:
        cmd_udp(x, o, cl, owner);
        break;
    case CTL_EPMDPORT:
        cmd_epmdport(x, o, cl);
        break;
    default:
        sbuf_addstr(o, "ERR unknown command: ");
        sbuf_add(o, cl->word, strlen(cl->word));
        break;
    }
    /* a block made by this command covers UDP before its OK goes out */
    udp_sync(x->udp);
    return res;
}

/* Run one command line; append the reply line to k->out. */
static void run_line(cconn *k, const char *line, size_t len)
{
    ctl_line cl;
    ctl_parse_line(line, len, &cl);
    control_result res = control_exec_owned(k->ctl->x, &cl, &k->out, k->id);
    if (res == CONTROL_NO_REPLY)
        return;
    sbuf_addstr(&k->out, "\n");
    if (res == CONTROL_CLOSE)
        k->closing = 1;
}

/* The first line is an HTTP request line: the connection, with what it
 * sent so far, goes to http_api; k is gone. */
static void cconn_to_http(cconn *k)
{
    control *c = k->ctl;
    int fd = k->fd;
    sbuf in = k->in;
    k->in = (sbuf){ 0 };
    loop_del(c->x->loop, fd);
    k->fd = -1;
    cconn_close(k);
    if (!c->http)
        c->http = http_api_new(c->x);
    if (c->http)
        http_api_adopt(c->http, fd, in.p, in.len);
    else
        close(fd);
    sbuf_free(&in);
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

/* Is a complete command line waiting (left for want of output room)? */
static int cconn_has_line(const cconn *k)
{
    return k->in.len && memchr(k->in.p, '\n', k->in.len);
}

/* Write what is pending; close once nothing is left to say: after QUIT, or
 * after the client's EOF once every complete line it sent is answered.
 * -1 if the connection was closed. */
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
    if (!k->out.len && (k->closing || (k->eof && !cconn_has_line(k)))) {
        cconn_close(k);
        return -1;
    }
    return 0;
}

/* Run every complete line in the input buffer.  -1 if k went to HTTP. */
static int cconn_lines(cconn *k)
{
    size_t used = 0;
    while (!k->closing && k->out.len < OUT_HIGH_WATER && used < k->in.len) {
        size_t consumed;
        long len = ctl_next_line(k->in.p + used, k->in.len - used, &consumed);
        if (len < 0)
            break;
        if ((size_t)len > CTL_MAX_LINE) {
            sbuf_addstr(&k->out, "ERR line too long\n");
            k->closing = 1;
            break;
        }
        if (!k->lines++ && http_is_request_line(k->in.p, (size_t)len)) {
            cconn_to_http(k);
            return -1;
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
    return 0;
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
    for (;;) {
        if (cconn_lines(k) < 0)
            return;
        if (cconn_flush(k) < 0)
            return;
        /* the output drained while lines wait: after an EOF no read will
         * come to run them, so run them now */
        if (k->out.len || k->closing || !cconn_has_line(k))
            break;
    }
    cconn_update(k);
}

static void listener_event(void *ctx, int lfd, short rev)
{
    control *c = ctx;
    (void)rev;
    for (int i = 0; i < 64; i++) {
        if (!epx_accept_ok(c->x)) {   /* leave the fd reserve (epx.h) alone */
            loop_pause(c->x->loop, lfd, ACCEPT_BACKOFF_MS);
            return;
        }
        int fd = sock_accept(lfd);
        if (fd < 0) {
            if (sock_accept_starved(errno)) {
                log_msg(LOG_ERR, "control: accept: %s; pausing accepts for %d ms",
                        strerror(errno), ACCEPT_BACKOFF_MS);
                loop_pause(c->x->loop, lfd, ACCEPT_BACKOFF_MS);
            }
            return;
        }
        cconn *k = calloc(1, sizeof *k);
        if (!k || loop_add(c->x->loop, fd, POLLIN, cconn_event, k) < 0) {
            free(k);
            close(fd);
            return;
        }
        k->ctl = c;
        k->fd = fd;
        k->id = ++c->next_id;
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
    app_free(c->x->app);   /* its links stay with the proxy until it goes */
    c->x->app = NULL;
    udp_free(c->x->udp);
    c->x->udp = NULL;
    http_api_free(c->http);
    for (int i = 0; i < c->nl; i++) {
        loop_del(c->x->loop, c->lfd[i]);
        close(c->lfd[i]);
    }
    free(c);
}
