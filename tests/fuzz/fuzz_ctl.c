/* libFuzzer target: the control side.  The input is what a control client
 * sends: split into lines with ctl_next_line(), each parsed with
 * ctl_parse_line(); every line's arguments go through rules_parse_spec(),
 * and a spec that parses is applied (cut, cut again, JSON, fix) to a rule
 * set; they also go through rules_parse_isolate(), and what parses is
 * applied with rules_isolate(); and they go through app_parse() as one
 * port (APPLISTEN ...) and as APPCONNECT's four words.  Each line is also
 * quoted with
 * sbuf_json_str() and must come back. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "app_parse.h"
#include "ctl_parse.h"
#include "rules.h"
#include "sbuf.h"
#include "fuzz_util.h"

static int blank(char c)
{
    return c == ' ' || c == '\t' || c == '\r';
}

/* The end of the JSON string literal that starts at s[i] ('"'), or 0. */
static size_t str_end(const char *s, size_t n, size_t i)
{
    for (size_t k = i + 1; k < n; k++) {
        if (s[k] == '\\')
            k++;
        else if (s[k] == '"')
            return k + 1;
    }
    return 0;
}

/* rules_json() output: exactly [{"from":F,"to":T[,"except":E]},...] for r's
 * pairs, in order. */
static void check_rules_json(const rules *r)
{
    sbuf out = { 0 };
    rules_json(r, &out);
    FZ_CHECK(!out.oom, "out of memory");
    FZ_CHECK(out.p && fz_json_valid(out.p, out.len), "RULES JSON invalid: %.300s",
             out.p ? out.p : "(null)");
    FZ_CHECK(!memchr(out.p, '\n', out.len), "RULES JSON is not one line");
    const char *s = out.p;
    size_t n = out.len, i = 0;
    FZ_CHECK(s[i++] == '[', "no '['");
    static uint8_t dec[2 * (RULES_MAX_NAME + 1)];
    for (size_t k = 0; k < r->n; k++) {
        if (k)
            FZ_CHECK(s[i++] == ',', "no ',' before pair %zu", k);
        FZ_CHECK(n - i > 8 && memcmp(s + i, "{\"from\":", 8) == 0, "pair %zu head", k);
        i += 8;
        size_t e = str_end(s, n, i);
        FZ_CHECK(e, "pair %zu from", k);
        long dl = fz_json_unquote(s + i, e - i, dec, sizeof dec);
        FZ_CHECK(dl == (long)strlen(r->v[k].from) && !memcmp(dec, r->v[k].from, (size_t)dl),
                 "pair %zu: from '%s' came back as %.*s", k, r->v[k].from, (int)(e - i), s + i);
        i = e;
        FZ_CHECK(n - i > 6 && memcmp(s + i, ",\"to\":", 6) == 0, "pair %zu to", k);
        i += 6;
        e = str_end(s, n, i);
        FZ_CHECK(e, "pair %zu to", k);
        dl = fz_json_unquote(s + i, e - i, dec, sizeof dec);
        FZ_CHECK(dl == (long)strlen(r->v[k].to) && !memcmp(dec, r->v[k].to, (size_t)dl),
                 "pair %zu: to '%s' came back as %.*s", k, r->v[k].to, (int)(e - i), s + i);
        i = e;
        if (r->v[k].except) {
            FZ_CHECK(n - i > 10 && memcmp(s + i, ",\"except\":", 10) == 0, "pair %zu except", k);
            i += 10;
            e = str_end(s, n, i);
            FZ_CHECK(e, "pair %zu except", k);
            size_t el = strlen(r->v[k].except);
            uint8_t *ed = malloc(el + 1);
            FZ_CHECK(ed, "out of memory");
            dl = fz_json_unquote(s + i, e - i, ed, el + 1);
            FZ_CHECK(dl == (long)el && !memcmp(ed, r->v[k].except, el),
                     "pair %zu: except came back as %.*s", k, (int)(e - i), s + i);
            free(ed);
            i = e;
        }
        FZ_CHECK(i < n && s[i++] == '}', "pair %zu end", k);
    }
    FZ_CHECK(i + 1 == n && s[i] == ']', "trailing bytes after %zu pairs", r->n);
    sbuf_free(&out);
}

static void check_spec(const char *args, size_t len)
{
    static rules_spec spec;
    char err[256];
    memset(err, 0x55, sizeof err);
    int rc = rules_parse_spec(args, len, &spec, err, sizeof err);
    FZ_CHECK(rc == 0 || rc == -1, "rc %d", rc);
    if (rc < 0) {
        FZ_CHECK(memchr(err, 0, sizeof err) && err[0], "no error message");
        return;
    }
    FZ_CHECK(spec.nislands >= 2 && spec.nnames >= 2 && spec.nnames <= RULES_MAX_SPEC_NAMES,
             "%d islands, %d names", spec.nislands, spec.nnames);
    FZ_CHECK(!spec.oneway || spec.nislands == 2, "one-way spec with %d islands", spec.nislands);
    size_t count[RULES_MAX_SPEC_NAMES] = { 0 };
    for (int a = 0; a < spec.nnames; a++) {
        const char *x = spec.names[a];
        size_t xl = strnlen(x, RULES_MAX_NAME + 1);
        FZ_CHECK(xl <= RULES_MAX_NAME && rules_valid_name(x, xl), "name %d invalid", a);
        FZ_CHECK(memmem(args, len, x, xl), "name '%s' is not in the arguments", x);
        FZ_CHECK(spec.island_of[a] >= 0 && spec.island_of[a] < spec.nislands,
                 "island %d", spec.island_of[a]);
        FZ_CHECK(a == 0 || spec.island_of[a] >= spec.island_of[a - 1], "islands out of order");
        FZ_CHECK(rules_name_match(x, x), "'%s' does not match itself", x);
        count[spec.island_of[a]]++;
        for (int b = 0; b < a; b++)
            FZ_CHECK(strcmp(x, spec.names[b]) != 0, "'%s' named twice", x);
    }
    size_t pairs = 0, total = (size_t)spec.nnames, globpairs = 0;
    for (int k = 0; k < spec.nislands; k++) {
        FZ_CHECK(count[k] > 0, "island %d is empty", k);
        pairs += count[k] * (total - count[k]);
    }
    if (spec.oneway)
        pairs = count[0] * count[1];
    for (int a = 0; a < spec.nnames; a++)
        for (int b = 0; b < spec.nnames; b++) {
            int ia = spec.island_of[a], ib = spec.island_of[b];
            if (ia != ib && (!spec.oneway || (ia == 0 && ib == 1)))
                globpairs += rules_is_pattern(spec.names[a]) || rules_is_pattern(spec.names[b]);
        }

    rules r;
    rules_init(&r);
    check_rules_json(&r);
    int changed = rules_apply(&r, &spec, 1);
    if (pairs > RULES_MAX || globpairs > RULES_MAX_GLOB) {
        FZ_CHECK(changed == (pairs > RULES_MAX ? -2 : -3) && r.n == 0,
                 "cut of %zu pairs (%zu with a pattern) past a limit gave %d, %zu rules", pairs,
                 globpairs, changed, r.n);
        /* and a refused SPLIT leaves a set as it was */
        FZ_CHECK(rules_add(&r, "keep", "me") == 1, "add to an empty set");
        FZ_CHECK(rules_replace(&r, &spec) == changed && r.n == 1 && rules_blocked(&r, "keep", "me"),
                 "a refused SPLIT changed the set");
        rules_free(&r);
        return;
    }
    FZ_CHECK(changed >= 0 && (size_t)changed == pairs && r.n == pairs,
             "cut changed %d, %zu rules, want %zu", changed, r.n, pairs);
    FZ_CHECK(rules_apply(&r, &spec, 1) == 0, "cut twice changed something");
    /* a few of the pairs are blocked, in the direction the spec says */
    for (int a = 0, seen = 0; a < spec.nnames && seen < 64; a++)
        for (int b = 0; b < spec.nnames && seen < 64; b++) {
            int ia = spec.island_of[a], ib = spec.island_of[b];
            if (ia == ib || (spec.oneway && ia != 0))
                continue;
            FZ_CHECK(rules_blocked(&r, spec.names[a], spec.names[b]), "%s -> %s not blocked",
                     spec.names[a], spec.names[b]);
            seen++;
        }
    check_rules_json(&r);
    changed = rules_apply(&r, &spec, 0);
    FZ_CHECK(changed >= 0 && (size_t)changed == pairs && r.n == 0,
             "fix changed %d, %zu rules left, want %zu changed and none left", changed, r.n,
             pairs);
    check_rules_json(&r);
    rules_free(&r);
}

static void check_isolate(const char *args, size_t len)
{
    static char name[RULES_MAX_NAME + 1];
    char err[256];
    sbuf ex = { 0 };
    memset(err, 0x55, sizeof err);
    int rc = rules_parse_isolate(args, len, name, &ex, err, sizeof err);
    FZ_CHECK(rc == 0 || rc == -1, "rc %d", rc);
    if (rc < 0) {
        FZ_CHECK(memchr(err, 0, sizeof err) && err[0], "no error message");
        sbuf_free(&ex);
        return;
    }
    size_t nl = strnlen(name, sizeof name);
    FZ_CHECK(nl < sizeof name && rules_valid_name(name, nl), "ISOLATE name invalid");
    FZ_CHECK(memmem(args, len, name, nl), "ISOLATE name '%s' is not in the arguments", name);
    FZ_CHECK(!rules_list_match(sbuf_str(&ex), name), "'%s' isolated and excepted", name);
    rules r;
    rules_init(&r);
    int every = strcmp(name, "*") == 0;
    FZ_CHECK(rules_isolate(&r, name, sbuf_str(&ex)) == 2 - every && r.n == (size_t)(2 - every),
             "ISOLATE %s: %zu pairs", name, r.n);
    FZ_CHECK(rules_isolate(&r, name, sbuf_str(&ex)) == 0, "ISOLATE twice changed something");
    check_rules_json(&r);
    /* a node no EXCEPT pattern matches is cut from name, both ways */
    if (!rules_list_match(sbuf_str(&ex), "zz9q") && !rules_name_match(name, "zz9q") &&
        !rules_is_pattern(name))
        FZ_CHECK(rules_blocked(&r, name, "zz9q") && rules_blocked(&r, "zz9q", name),
                 "ISOLATE %s does not cut zz9q", name);
    /* and one the list names is not */
    if (ex.len && !rules_is_pattern(name)) {
        const char *comma = strchr(sbuf_str(&ex), ',');
        size_t first = comma ? (size_t)(comma - sbuf_str(&ex)) : ex.len;
        char *p = strndup(sbuf_str(&ex), first);
        FZ_CHECK(p, "out of memory");
        if (!rules_is_pattern(p))
            FZ_CHECK(!rules_blocked(&r, name, p) && !rules_blocked(&r, p, name),
                     "ISOLATE %s EXCEPT %s cuts %s", name, sbuf_str(&ex), p);
        free(p);
    }
    rules_free(&r);
    sbuf_free(&ex);
}

/* A word of args is the port p in decimal (leading zeros allowed: "0864"). */
static int has_port_word(const char *args, size_t len, int p)
{
    for (size_t i = 0; i < len;) {
        while (i < len && blank(args[i]))
            i++;
        size_t s = i;
        long v = 0;
        int digits = 1;
        for (; i < len && !blank(args[i]); i++) {
            digits &= args[i] >= '0' && args[i] <= '9';
            if (digits && v < 100000)
                v = v * 10 + (args[i] - '0');
        }
        if (i > s && digits && v == p)
            return 1;
    }
    return 0;
}

/* The shim's commands' arguments: what parses is a plain node name that
 * opens the arguments and ports in range that appear in them; APPCONNECT's
 * destination is loopback with the port set; a refusal says why. */
static void check_app(const char *args, size_t len)
{
    for (int nports = 1; nports <= 2; nports++) {
        app_args a;
        char err[256];
        err[0] = 0;
        int r = app_parse(args, len, nports, &a, err, sizeof err);
        FZ_CHECK(r == 0 || r == -1, "app_parse returned %d", r);
        if (r < 0) {
            FZ_CHECK(err[0] && memchr(err, 0, sizeof err), "refused without a reason");
            continue;
        }
        size_t nl = strnlen(a.node, sizeof a.node);
        FZ_CHECK(nl > 0 && nl < sizeof a.node && rules_valid_name(a.node, nl) &&
                     !rules_is_pattern(a.node),
                 "node '%s' accepted", a.node);
        FZ_CHECK(nl <= len && !memcmp(args, a.node, nl) && (nl == len || blank(args[nl])),
                 "node '%s' is not the first word", a.node);
        FZ_CHECK(a.port >= 1 && a.port <= 65535 && has_port_word(args, len, a.port),
                 "port %d", a.port);
        if (nports == 1) {
            FZ_CHECK(a.src_port == 0 && a.destlen == 0, "one port, yet a destination");
            continue;
        }
        FZ_CHECK(a.src_port >= 1 && a.src_port <= 65535 && has_port_word(args, len, a.src_port),
                 "source port %d", a.src_port);
        const struct sockaddr *sa = (const struct sockaddr *)&a.dest;
        if (sa->sa_family == AF_INET)
            FZ_CHECK(a.destlen == sizeof(struct sockaddr_in) &&
                         ntohs(((const struct sockaddr_in *)sa)->sin_port) == a.port,
                     "IPv4 destination");
        else
            FZ_CHECK(sa->sa_family == AF_INET6 && a.destlen == sizeof(struct sockaddr_in6) &&
                         ntohs(((const struct sockaddr_in6 *)sa)->sin6_port) == a.port,
                     "destination family %d", sa->sa_family);
        FZ_CHECK(app_is_loopback(sa), "a destination that is not loopback");
        /* every byte of the accepted address is part of it: no NUL cuts it short */
        FZ_CHECK(!memchr(args, 0, len), "arguments with a NUL byte accepted");
    }
}

static void check_quote(const char *line, size_t len)
{
    sbuf out = { 0 };
    sbuf_json_str(&out, line, len);
    FZ_CHECK(!out.oom && out.p, "out of memory");
    FZ_CHECK(fz_json_valid(out.p, out.len), "quoted line is not valid JSON: %.300s", out.p);
    FZ_CHECK(!memchr(out.p, '\n', out.len), "quoted line has a newline");
    uint8_t *dec = malloc(len + 1);
    long dl = fz_json_unquote(out.p, out.len, dec, len + 1);
    FZ_CHECK(dl == (long)len && memcmp(dec, line, len) == 0, "quoting lost bytes");
    free(dec);
    sbuf_free(&out);
}

static void check_line(const char *line, size_t len)
{
    ctl_line cl;
    ctl_parse_line(line, len, &cl);
    FZ_CHECK(cl.cmd >= CTL_EMPTY && cl.cmd <= CTL_UNKNOWN, "cmd %d", (int)cl.cmd);
    FZ_CHECK(memchr(cl.word, 0, sizeof cl.word), "word not terminated");
    FZ_CHECK(cl.args >= line && cl.args <= line + len &&
             cl.argslen <= (size_t)(line + len - cl.args), "args outside the line");
    if (cl.argslen)
        FZ_CHECK(!blank(cl.args[0]) && !blank(cl.args[cl.argslen - 1]), "args not trimmed");
    int all_blank = 1;
    for (size_t i = 0; i < len; i++)
        if (!blank(line[i]))
            all_blank = 0;
    FZ_CHECK((cl.cmd == CTL_EMPTY) == all_blank, "cmd %d for a line that is%s blank",
             (int)cl.cmd, all_blank ? "" : " not");
    if (cl.cmd != CTL_EMPTY && cl.cmd != CTL_UNKNOWN)
        FZ_CHECK(strcasecmp(cl.word, ctl_cmd_name(cl.cmd)) == 0, "word '%s' gave %s", cl.word,
                 ctl_cmd_name(cl.cmd));
    if (cl.cmd == CTL_UNKNOWN)
        FZ_CHECK(strcmp(ctl_cmd_name(cl.cmd), "UNKNOWN") == 0, "name of UNKNOWN");
    /* the word is the line's first token, truncated */
    size_t w0 = 0;
    while (w0 < len && blank(line[w0]))
        w0++;
    size_t wl = strlen(cl.word);
    FZ_CHECK(wl <= len - w0 && memcmp(cl.word, line + w0, wl) == 0, "word is not the first token");

    FZ_CHECK(cl.cmd == CTL_UNKNOWN || cl.cmd == CTL_EMPTY ||
             strcmp(ctl_cmd_name(cl.cmd), "UNKNOWN") != 0, "cmd without a name");
    (void)ctl_cmd_takes_args(cl.cmd);
    check_spec(cl.args, cl.argslen);
    check_isolate(cl.args, cl.argslen);
    check_app(cl.args, cl.argslen);
    check_quote(line, len);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t *buf = fz_dup(data, size);
    const char *p = (const char *)buf;
    size_t left = size;
    for (;;) {
        size_t consumed = (size_t)-1;
        long n = ctl_next_line(p, left, &consumed);
        if (n < 0) {
            FZ_CHECK(!memchr(p, '\n', left), "a line was not found");
            FZ_CHECK(consumed == (size_t)-1, "consumed set without a line");
            /* the unterminated tail, as if the client had closed */
            check_line(p, left);
            break;
        }
        FZ_CHECK(consumed >= 1 && consumed <= left && p[consumed - 1] == '\n',
                 "consumed %zu of %zu", consumed, left);
        FZ_CHECK(!memchr(p, '\n', consumed - 1), "line ends after a newline");
        size_t ln = (size_t)n;
        FZ_CHECK(ln == consumed - 1 || (ln == consumed - 2 && p[ln] == '\r'),
                 "line of %zu for %zu consumed", ln, consumed);
        if (ln > 0 && ln == consumed - 1)
            FZ_CHECK(p[ln - 1] != '\r', "CRLF not stripped");
        check_line(p, ln);
        p += consumed;
        left -= consumed;
    }
    free(buf);
    return 0;
}
