/* Suite "control": the daemon's line-based control port (README.md). */
#include <check.h>
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fakenode.h"
#include "testutil.h"
#include "tucase.h"

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

/* One command on a fresh connection; the reply must equal want. */
static void expect_reply(const char *cmd, const char *want)
{
    char *r = fn_ctl_cmd(D.control_port, cmd);
    ck_assert_msg(r != NULL, "%s: no reply (%s)", cmd, fn_err());
    ck_assert_msg(strcmp(r, want) == 0, "%s: reply \"%s\", want \"%s\"", cmd, r, want);
    free(r);
}

START_TEST(ping)
{
    expect_reply("PING", "OK PONG");
}
END_TEST

START_TEST(case_insensitive)
{
    expect_reply("ping", "OK PONG");
    expect_reply("PiNg", "OK PONG");
    char *r = fn_ctl_cmd(D.control_port, "sTaTuS");
    ck_assert_msg(r && strncmp(r, "OK {", 4) == 0, "sTaTuS: reply \"%s\"", r ? r : fn_err());
    free(r);
}
END_TEST

START_TEST(crlf_accepted)
{
    fn_ctl c;
    ck_assert(fn_ctl_open(&c, D.control_port) == 0);
    ck_assert(fn_ctl_send(&c, "PING\r\n", 6) == 0);
    char *l = fn_ctl_line(&c, 10000);
    ck_assert_msg(l && strcmp(l, "OK PONG") == 0, "PING\\r\\n: reply \"%s\"", l ? l : fn_err());
    ck_assert(fn_ctl_send(&c, "status\r\nPING\n", 13) == 0);
    l = fn_ctl_line(&c, 10000);
    ck_assert_msg(l && strncmp(l, "OK {", 4) == 0, "status\\r\\n: reply \"%s\"", l ? l : fn_err());
    l = fn_ctl_line(&c, 10000);
    ck_assert_msg(l && strcmp(l, "OK PONG") == 0, "PING after CRLF line: \"%s\"",
                  l ? l : fn_err());
    fn_ctl_close(&c);
}
END_TEST

START_TEST(unknown_command)
{
    fn_ctl c;
    ck_assert(fn_ctl_open(&c, D.control_port) == 0);
    ck_assert(fn_ctl_send(&c, "FROBNICATE now\n", 15) == 0);
    char *l = fn_ctl_line(&c, 10000);
    ck_assert_msg(l && strncmp(l, "ERR", 3) == 0, "FROBNICATE: reply \"%s\", want ERR ...",
                  l ? l : fn_err());
    ck_assert_msg(strstr(l, "FROBNICATE") || strstr(l, "frobnicate"),
                  "ERR reply does not name the unknown word: \"%s\"", l);
    /* The connection stays usable. */
    ck_assert(fn_ctl_send(&c, "PING\n", 5) == 0);
    l = fn_ctl_line(&c, 10000);
    ck_assert_msg(l && strcmp(l, "OK PONG") == 0, "PING after ERR: \"%s\"", l ? l : fn_err());
    fn_ctl_close(&c);
}
END_TEST

START_TEST(pipelined_in_one_write)
{
    static const char cmds[] = "PING\nSTATUS\nping\nNODES\nLINKS\nBOGUS\nPING\n";
    static const char *want[] = { "OK PONG", "OK {", "OK PONG", "OK [", "OK [", "ERR",
                                  "OK PONG" };
    fn_ctl c;
    ck_assert(fn_ctl_open(&c, D.control_port) == 0);
    ck_assert(fn_ctl_send(&c, cmds, sizeof cmds - 1) == 0);
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        char *l = fn_ctl_line(&c, 10000);
        ck_assert_msg(l != NULL, "reply %zu missing: %s", i, fn_err());
        ck_assert_msg(strncmp(l, want[i], strlen(want[i])) == 0,
                      "reply %zu is \"%.100s\", want \"%s...\"", i, l, want[i]);
    }
    fn_ctl_close(&c);
}
END_TEST

/* Send `n` bytes of 'A' (plus a newline if nl), expect "ERR..." then a
 * close. */
static void long_line(size_t n, int nl)
{
    fn_ctl c;
    ck_assert(fn_ctl_open(&c, D.control_port) == 0);
    char *buf = malloc(n + 1);
    memset(buf, 'A', n);
    buf[n] = '\n';
    /* The daemon may close before it has read everything: a failed send
     * is fine, the reply still has to come. */
    fn_ctl_send(&c, buf, n + (nl ? 1 : 0));
    free(buf);
    char *l = fn_ctl_line(&c, 10000);
    ck_assert_msg(l && strncmp(l, "ERR", 3) == 0,
                  "%zu-byte line%s: reply \"%.100s\", want ERR (%s)", n,
                  nl ? "" : " without newline", l ? l : "", l ? "" : fn_err());
    size_t more = 0;
    ck_assert_msg(fn_wait_eof(c.fd, 10000, &more, NULL) == 1,
                  "%zu-byte line: the connection stayed open after the ERR", n);
    ck_assert_msg(more == 0, "%zu bytes after the ERR line", more);
    fn_ctl_close(&c);
}

START_TEST(line_over_64k)
{
    long_line(70000, 1);
    long_line(200000, 0);
    /* A long line under the limit is just an unknown command. */
    fn_ctl c;
    ck_assert(fn_ctl_open(&c, D.control_port) == 0);
    char *buf = malloc(60001);
    memset(buf, 'B', 60000);
    buf[60000] = '\n';
    ck_assert(fn_ctl_send(&c, buf, 60001) == 0);
    free(buf);
    char *l = fn_ctl_line(&c, 10000);
    ck_assert_msg(l && strncmp(l, "ERR", 3) == 0, "60000-byte word: \"%.100s\"", l ? l : "");
    ck_assert(fn_ctl_send(&c, "PING\n", 5) == 0);
    l = fn_ctl_line(&c, 10000);
    ck_assert_msg(l && strcmp(l, "OK PONG") == 0,
                  "PING after a 60000-byte line (under 64 KiB): \"%s\"", l ? l : fn_err());
    fn_ctl_close(&c);
    ASSERT_ALIVE();
}
END_TEST

START_TEST(two_hundred_clients)
{
    enum { N = 200 };
    fn_ctl c[N];
    for (int i = 0; i < N; i++)
        ck_assert_msg(fn_ctl_open(&c[i], D.control_port) == 0, "client %d: %s", i, fn_err());
    for (int i = 0; i < N; i++)
        ck_assert_msg(fn_ctl_send(&c[i], "PING\nSTATUS\n", 12) == 0, "client %d", i);
    for (int i = N - 1; i >= 0; i--) {
        char *l = fn_ctl_line(&c[i], 10000);
        ck_assert_msg(l && strcmp(l, "OK PONG") == 0, "client %d PING: \"%s\"", i,
                      l ? l : fn_err());
        l = fn_ctl_line(&c[i], 10000);
        ck_assert_msg(l && strncmp(l, "OK ", 3) == 0, "client %d STATUS: \"%s\"", i,
                      l ? l : fn_err());
        fn_status st;
        ck_assert_msg(fn_parse_status(l + 3, &st) == 0, "client %d: %s", i, fn_err());
        ck_assert_int_eq(st.epmd_port, D.epmd_port);
    }
    for (int i = 0; i < N; i++)
        fn_ctl_close(&c[i]);
    ASSERT_ALIVE();
}
END_TEST

START_TEST(json_payloads)
{
    fn_status st;
    ck_assert_msg(fn_get_status(D.control_port, &st) == 0, "%s", fn_err());
    ck_assert_msg(st.version[0] != 0, "STATUS version is empty");
    ck_assert_int_eq(st.epmd_port, D.epmd_port);
    ck_assert_int_eq(st.control_port, D.control_port);
    ck_assert_msg(!strcmp(st.mode, "hold"), "STATUS mode \"%s\", want hold (the default)",
                  st.mode);
    ck_assert_int_eq(st.nodes, 0);
    ck_assert_int_eq(st.links, 0);
    ck_assert_int_eq(st.rules, 0);
    fn_nodeinfo n[2];
    ck_assert_msg(fn_get_nodes(D.control_port, n, 2) == 0, "NODES: %s", fn_err());
    fn_linkinfo l[2];
    ck_assert_msg(fn_get_links(D.control_port, l, 2) == 0, "LINKS: %s", fn_err());
    /* The same with a node and a link. */
    fn_node b;
    ck_assert_msg(fn_node_start(&b, D.epmd_port, "b") == 0, "%s", fn_err());
    fn_link k;
    ck_assert_msg(fn_link_open(&k, &b, "a@localhost") == 0, "%s", fn_err());
    ck_assert_msg(TU_WAIT_UNTIL(fn_get_links(D.control_port, l, 2) == 1, 10000),
                  "LINKS: %s", fn_err());
    ck_assert_msg(fn_get_status(D.control_port, &st) == 0, "%s", fn_err());
    ck_assert_int_eq(st.nodes, 1);
    ck_assert_int_eq(st.links, 1);
    ck_assert_msg(fn_get_nodes(D.control_port, n, 2) == 1, "NODES: %s", fn_err());
    /* The checker itself rejects what it should. */
    ck_assert(!fn_json_valid("[1,]", 4));
    ck_assert(!fn_json_valid("{\"a\" 1}", 7));
    ck_assert(fn_json_valid("[{\"a\":null,\"b\":-1.5e3}]", 23));
}
END_TEST

static int find_node(const fn_nodeinfo *ns, int n, const char *name)
{
    for (int i = 0; i < n; i++)
        if (!strcmp(ns[i].name, name))
            return i;
    return -1;
}

START_TEST(nodes_lists_and_drops)
{
    fn_node b, c;
    ck_assert_msg(fn_node_start(&b, D.epmd_port, "bee") == 0, "%s", fn_err());
    ck_assert_msg(fn_node_start(&c, D.epmd_port, "cee") == 0, "%s", fn_err());
    fn_nodeinfo ns[8];
    int n = fn_get_nodes(D.control_port, ns, 8);
    ck_assert_msg(n == 2, "NODES has %d entries, want 2 (%s)", n, fn_err());
    fn_node *want[2] = { &b, &c };
    for (int k = 0; k < 2; k++) {
        int i = find_node(ns, n, want[k]->name);
        ck_assert_msg(i >= 0, "NODES does not list %s", want[k]->name);
        ck_assert_int_eq(ns[i].port, want[k]->port);
        ck_assert_int_eq(ns[i].proxy_port, want[k]->proxy_port);
        ck_assert_int_eq(ns[i].creation, want[k]->creation);
        ck_assert_msg(ns[i].node_null, "NODES node for %s is \"%s\" before any handshake, "
                      "want null", want[k]->name, ns[i].node);
    }
    fn_node_unregister(&b);
    ck_assert_msg(TU_WAIT_UNTIL((n = fn_get_nodes(D.control_port, ns, 8)) == 1 &&
                                !strcmp(ns[0].name, "cee"), 10000),
                  "NODES still has %d entries 10 s after bee unregistered", n);
    fn_status st;
    ck_assert(fn_get_status(D.control_port, &st) == 0);
    ck_assert_int_eq(st.nodes, 1);
    fn_node_unregister(&c);
    ck_assert_msg(TU_WAIT_UNTIL(fn_get_nodes(D.control_port, ns, 8) == 0, 10000),
                  "NODES not empty 10 s after both unregistered");
}
END_TEST

/* Names are bytes from the network: NODES and LINKS must stay valid JSON
 * (escaped quotes, backslashes, control characters) whatever they hold. */
START_TEST(json_escaping)
{
    static const char *names[] = { "we\"ird\\name", "ctl\001\037x", "n\303\266de",
                                   "tab\there" };
    enum { NN = sizeof names / sizeof names[0] };
    int port;
    int lfd = fn_listen(&port);
    ck_assert(lfd >= 0);
    for (int i = 0; i < NN; i++)
        ck_assert_msg(fn_alive2(D.epmd_port, names[i], port, NULL) >= 0,
                      "ALIVE2 of name %d refused: %s", i, fn_err());
    fn_nodeinfo ns[NN + 1];
    char *raw = fn_ctl_cmd(D.control_port, "NODES");
    int n = fn_get_nodes(D.control_port, ns, NN + 1);
    ck_assert_msg(n == NN, "NODES with odd names: %s; reply %s", fn_err(), raw ? raw : "none");
    free(raw);
    for (int i = 0; i < NN; i++)
        ck_assert_msg(find_node(ns, n, names[i]) >= 0, "NODES lost or mangled name %d", i);

    /* Initiator names, including bytes that are not UTF-8. */
    fn_node b;
    ck_assert_msg(fn_node_start(&b, D.epmd_port, "b") == 0, "%s", fn_err());
    static const char *from[] = { "q\"u\\o@localhost", "c\001c@localhost", "\377\376@localhost" };
    fn_link l[3];
    for (int i = 0; i < 3; i++) {
        uint8_t f[128];
        size_t len = fn_frame_send_name(f, from[i], FN_FLAGS, 1);
        int ini = fn_connect(b.proxy_port, NULL);
        ck_assert(ini >= 0);
        ck_assert(fn_send_all(ini, f, len) == 0);
        l[i].ini = ini;
        /* Either the daemon connects to b, or it refuses the name and
         * closes the initiator. */
        struct pollfd p[2] = { { b.lfd, POLLIN, 0 }, { ini, POLLIN, 0 } };
        ck_assert_msg(poll(p, 2, 10000) > 0, "name %d: neither relayed nor refused in 10 s", i);
        l[i].acc = p[0].revents ? fn_accept(b.lfd, 1000) : -1;
    }
    raw = fn_ctl_cmd(D.control_port, "LINKS");
    ck_assert_msg(raw && !strncmp(raw, "OK ", 3), "LINKS: %s", raw ? raw : fn_err());
    fn_linkinfo li[4];
    n = fn_parse_links(raw + 3, li, 4);
    ck_assert_msg(n >= 0, "LINKS with odd initiator names: %s", fn_err());
    for (int i = 0; i < 2; i++) {
        int found = 0;
        for (int k = 0; k < n; k++)
            found |= !strcmp(li[k].from, from[i]);
        /* Quotes and backslashes are printable: such a node must get
         * through.  The daemon may refuse control bytes in a name. */
        if (i == 0)
            ck_assert_msg(l[i].acc >= 0, "initiator name %s was not relayed", from[i]);
        ck_assert_msg(found || l[i].acc < 0, "LINKS mangles initiator name %d: %s", i, raw);
    }
    free(raw);
    ck_assert_msg(fn_daemon_alive(&D) == 0, "%s", fn_err());
}
END_TEST

/* Send cmd on c; its reply must start with want (and is returned). */
static char *expect_on(fn_ctl *c, const char *cmd, const char *want)
{
    char line[70000];
    snprintf(line, sizeof line, "%s\n", cmd);
    ck_assert_msg(fn_ctl_send(c, line, strlen(line)) == 0, "%.60s: send failed", cmd);
    char *l = fn_ctl_line(c, 10000);
    ck_assert_msg(l != NULL, "%.60s: no reply (%s)", cmd, fn_err());
    ck_assert_msg(strncmp(l, want, strlen(want)) == 0, "%.60s: reply \"%.200s\", want \"%s...\"",
                  cmd, l, want);
    return l;
}

/* "SPLIT" or "CUT" followed by n one-node islands i0 .. i<n-1>. */
static void islands_cmd(char *buf, size_t cap, const char *verb, int n)
{
    size_t o = (size_t)snprintf(buf, cap, "%s", verb);
    for (int i = 0; i < n && o < cap; i++)
        o += (size_t)snprintf(buf + o, cap - o, " i%d", i);
}

/* A refused SPLIT used to clear every rule before it found out that the new
 * set was too large: RULES became [] while held links stayed held. */
START_TEST(split_refused_keeps_rules)
{
    fn_ctl c;
    ck_assert(fn_ctl_open(&c, D.control_port) == 0);
    expect_on(&c, "CUT a b", "OK");
    char before[256];
    snprintf(before, sizeof before, "%s", expect_on(&c, "RULES", "OK ["));
    ck_assert_msg(strstr(before, "{\"from\":\"a\",\"to\":\"b\"}") &&
                  strstr(before, "{\"from\":\"b\",\"to\":\"a\"}"), "RULES after CUT a b: %s",
                  before);
    static char cmd[4096];
    islands_cmd(cmd, sizeof cmd, "SPLIT", 65);   /* 65 * 64 pairs > RULES_MAX */
    expect_on(&c, cmd, "ERR too many rules");
    char *after = expect_on(&c, "RULES", "OK [");
    ck_assert_msg(strcmp(after, before) == 0, "a refused SPLIT changed RULES from %s to %s",
                  before, after);
    /* A SPLIT that fits replaces the set in one step. */
    expect_on(&c, "SPLIT x y", "OK");
    after = expect_on(&c, "RULES", "OK [");
    ck_assert_msg(!strstr(after, "\"a\"") && strstr(after, "{\"from\":\"x\",\"to\":\"y\"}") &&
                  strstr(after, "{\"from\":\"y\",\"to\":\"x\"}"), "RULES after SPLIT x y: %s",
                  after);
    fn_ctl_close(&c);
}
END_TEST

/* Every refused command replies ERR and changes nothing: not the rules,
 * not the mode, no event, the daemon and the connection stay up. */
START_TEST(refused_changes_nothing)
{
    fn_ctl c;
    ck_assert(fn_ctl_open(&c, D.control_port) == 0);
    expect_on(&c, "CUT a b", "OK");
    expect_on(&c, "ISOLATE z", "OK");
    expect_on(&c, "MODE reset", "OK reset");
    char rules[1024];
    snprintf(rules, sizeof rules, "%s", expect_on(&c, "RULES", "OK ["));
    /* the last event's seq: refusals must add none */
    char *ev = expect_on(&c, "EVENTS", "OK [");
    char *last = strrchr(ev, '{');
    unsigned long long seq = 0;
    ck_assert_msg(last && sscanf(last, "{\"seq\":%llu", &seq) == 1, "EVENTS: %s", ev);

    static char split65[4096], cut65[4096];
    islands_cmd(split65, sizeof split65, "SPLIT", 65);
    islands_cmd(cut65, sizeof cut65, "CUT", 65);
    const char *refused[] = {
        "HEAL extra", "HEAL a b", "PING x", "NODES x", "LINKS x", "RULES all", "STATUS x",
        "SHUTDOWN now", "QUIT now", "MODE hold extra", "MODE bogus", "EVENTS 1 2",
        "EVENTS x", "CUT a", "CUT a a", "CUT a,,b c", "CUT a -> b -> c", "FIX a", "FIX a ->",
        "SPLIT a -> b", "SPLIT a", split65, cut65, "ISOLATE", "ISOLATE a b", "ISOLATE a,b",
        "ISOLATE a EXCEPT", "ISOLATE a EXCEPT b c", "ISOLATE a EXCEPT b,,c", "ISOLATE EXCEPT b",
        "ISOLATE a@ EXCEPT b", "ISOLATE a except b except c",
    };
    for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++)
        expect_on(&c, refused[i], "ERR");
    char *now = expect_on(&c, "RULES", "OK [");
    ck_assert_msg(strcmp(now, rules) == 0, "refused commands changed RULES from %s to %s", rules,
                  now);
    expect_on(&c, "MODE", "OK reset");
    char q[64];
    snprintf(q, sizeof q, "EVENTS %llu", seq);
    ev = expect_on(&c, q, "OK [");
    ck_assert_msg(strcmp(ev, "OK []") == 0, "refused commands made events: %.300s", ev);
    expect_on(&c, "PING", "OK PONG");
    fn_ctl_close(&c);
    ASSERT_ALIVE();
}
END_TEST

/* `printf ... | nc -N`: the client sends its commands and half-closes at
 * once.  Every complete line must be answered before the close, even when
 * the replies are far more than the daemon buffers at a time. */
START_TEST(pipelined_after_half_close)
{
    fn_ctl c;
    ck_assert(fn_ctl_open(&c, D.control_port) == 0);
    /* Fill the event ring (~60 bytes an event) so EVENTS is ~60 KB. */
    enum { TOGGLES = 600 };
    static char fill[TOGGLES * 22];
    size_t o = 0;
    for (int i = 0; i < TOGGLES; i++)
        o += (size_t)snprintf(fill + o, sizeof fill - o, "MODE reset\nMODE hold\n");
    ck_assert(fn_ctl_send(&c, fill, o) == 0);
    for (int i = 0; i < 2 * TOGGLES; i++) {
        char *l = fn_ctl_line(&c, 10000);
        ck_assert_msg(l && strncmp(l, "OK ", 3) == 0, "MODE %d: %s", i, l ? l : fn_err());
    }
    /* 60 replies of ~60 KB, then PING: several MiB, past the daemon's
     * output high-water mark, queued before the daemon sees the EOF. */
    enum { N = 60 };
    static char cmds[N * 7 + 6];
    o = 0;
    for (int i = 0; i < N; i++)
        o += (size_t)snprintf(cmds + o, sizeof cmds - o, "EVENTS\n");
    o += (size_t)snprintf(cmds + o, sizeof cmds - o, "PING\n");
    ck_assert(fn_ctl_send(&c, cmds, o) == 0);
    ck_assert(shutdown(c.fd, SHUT_WR) == 0);
    size_t total = 0;
    for (int i = 0; i < N; i++) {
        char *l = fn_ctl_line(&c, 10000);
        ck_assert_msg(l != NULL, "reply %d of %d missing after a half-close: %s", i + 1, N + 1,
                      fn_err());
        ck_assert_msg(strncmp(l, "OK [{", 5) == 0, "EVENTS reply %d: %.80s", i, l);
        total += strlen(l);
    }
    ck_assert_msg(total > 2 * 1024 * 1024, "only %zu bytes of EVENTS: too few to test", total);
    char *l = fn_ctl_line(&c, 10000);
    ck_assert_msg(l && strcmp(l, "OK PONG") == 0, "PING after %d EVENTS and a half-close: %s", N,
                  l ? l : fn_err());
    size_t more = 0;
    ck_assert_msg(fn_wait_eof(c.fd, 10000, &more, NULL) == 1,
                  "the connection stayed open after every line was answered");
    ck_assert_msg(more == 0 && fn_ctl_buffered(&c) == 0, "bytes after the last reply");
    fn_ctl_close(&c);
    ASSERT_ALIVE();
}
END_TEST

/* ISOLATE b EXCEPT me,rabbitmqcli-*: b is cut from every node but those
 * (a -remsh shell, rabbitmqctl's helper nodes).  In reset mode a blocked
 * link closes at once, so which links survive shows what is blocked. */
START_TEST(isolate_except)
{
    fn_node b;
    ck_assert_msg(fn_node_start(&b, D.epmd_port, "b") == 0, "%s", fn_err());
    static const char *from[] = { "x@localhost", "me@localhost", "rabbitmqcli-77@localhost" };
    fn_link l[3];
    for (int i = 0; i < 3; i++)
        ck_assert_msg(fn_link_open(&l[i], &b, from[i]) == 0, "link from %s: %s", from[i],
                      fn_err());
    fn_ctl c;
    ck_assert(fn_ctl_open(&c, D.control_port) == 0);
    expect_on(&c, "MODE reset", "OK reset");
    expect_on(&c, "ISOLATE b EXCEPT me,rabbitmqcli-*", "OK");
    char *r = expect_on(&c, "RULES", "OK [");
    ck_assert_msg(strstr(r, "{\"from\":\"b\",\"to\":\"*\",\"except\":\"me,rabbitmqcli-*\"}") &&
                  strstr(r, "{\"from\":\"*\",\"to\":\"b\",\"except\":\"me,rabbitmqcli-*\"}"),
                  "RULES after ISOLATE ... EXCEPT: %s", r);
    ck_assert_msg(fn_wait_eof(l[0].ini, 10000, NULL, NULL) == 1,
                  "the link from x to the isolated b stayed open");
    for (int i = 1; i < 3; i++) {
        uint8_t got = 0;
        ck_assert_msg(fn_send_all(l[i].ini, "k", 1) == 0 &&
                      tu_read_exact(l[i].acc, &got, 1, 10000) == 0 && got == 'k',
                      "the link from %s (excepted) does not relay", from[i]);
    }
    /* ISOLATE again without EXCEPT replaces it: now me is cut as well */
    expect_on(&c, "ISOLATE b", "OK");
    ck_assert_msg(fn_wait_eof(l[1].ini, 10000, NULL, NULL) == 1,
                  "the link from me stayed open after a plain ISOLATE b");
    r = expect_on(&c, "RULES", "OK [");
    ck_assert_msg(!strstr(r, "except"), "RULES still has an EXCEPT: %s", r);
    /* a glob pattern in CUT islands */
    expect_on(&c, "HEAL", "OK");
    expect_on(&c, "CUT rabbitmqcli-* b", "OK");
    ck_assert_msg(fn_wait_eof(l[2].ini, 10000, NULL, NULL) == 1,
                  "CUT rabbitmqcli-* b left the link from rabbitmqcli-77 open");
    fn_ctl_close(&c);
    for (int i = 0; i < 3; i++)
        fn_link_close(&l[i]);
    ASSERT_ALIVE();
}
END_TEST

START_TEST(quit_closes)
{
    fn_ctl c;
    ck_assert(fn_ctl_open(&c, D.control_port) == 0);
    ck_assert(fn_ctl_send(&c, "PING\nQUIT\nPING\n", 15) == 0);
    char *l = fn_ctl_line(&c, 10000);
    ck_assert_msg(l && strcmp(l, "OK PONG") == 0, "PING: \"%s\"", l ? l : fn_err());
    l = fn_ctl_line(&c, 10000);
    ck_assert_msg(l && strcmp(l, "OK") == 0, "QUIT: \"%s\", want OK", l ? l : fn_err());
    size_t more = 0;
    ck_assert_msg(fn_wait_eof(c.fd, 10000, &more, NULL) == 1,
                  "the connection stayed open after QUIT");
    ck_assert_msg(more == 0 && fn_ctl_buffered(&c) == 0, "%zu bytes came after QUIT's OK",
                  more + fn_ctl_buffered(&c));
    fn_ctl_close(&c);
    expect_reply("quit", "OK");
    ASSERT_ALIVE();
    expect_reply("PING", "OK PONG");
}
END_TEST

START_TEST(shutdown_exits_0)
{
    fn_node b;
    ck_assert_msg(fn_node_start(&b, D.epmd_port, "b") == 0, "%s", fn_err());
    fn_ctl c;
    ck_assert(fn_ctl_open(&c, D.control_port) == 0);
    ck_assert(fn_ctl_send(&c, "SHUTDOWN\n", 9) == 0);
    char *l = fn_ctl_line(&c, 10000);
    ck_assert_msg(l && strcmp(l, "OK") == 0, "SHUTDOWN: \"%s\", want OK", l ? l : fn_err());
    int st = fn_daemon_wait_exit(&D, 10000);
    ck_assert_msg(st != -1, "the daemon still runs 10 s after SHUTDOWN");
    ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0,
                  "after SHUTDOWN the daemon %s %d, want exit status 0",
                  WIFEXITED(st) ? "exited with" : "died of signal",
                  WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st));
    ck_assert_msg(fn_wait_eof(c.fd, 5000, NULL, NULL) == 1, "control connection not closed");
    ck_assert_msg(fn_wait_eof(b.reg, 5000, NULL, NULL) == 1, "registration not closed");
    int err = 0;
    int fd = fn_connect(D.epmd_port, &err);
    ck_assert_msg(fd < 0 && err == ECONNREFUSED, "EPMD port still open after SHUTDOWN");
    fn_ctl_close(&c);
}
END_TEST

Suite *control_suite(void)
{
    Suite *s = suite_create("control");
    struct { const char *name; const TTest *t; int timeout; } cases[] = {
        { "ping", ping, 20 },
        { "case_insensitive", case_insensitive, 20 },
        { "crlf_accepted", crlf_accepted, 20 },
        { "unknown_command", unknown_command, 20 },
        { "pipelined_in_one_write", pipelined_in_one_write, 20 },
        { "line_over_64k", line_over_64k, 60 },
        { "two_hundred_clients", two_hundred_clients, 60 },
        { "json_payloads", json_payloads, 30 },
        { "nodes_lists_and_drops", nodes_lists_and_drops, 40 },
        { "json_escaping", json_escaping, 40 },
        { "quit_closes", quit_closes, 30 },
        { "shutdown_exits_0", shutdown_exits_0, 40 },
        { "split_refused_keeps_rules", split_refused_keeps_rules, 30 },
        { "refused_changes_nothing", refused_changes_nothing, 30 },
        { "pipelined_after_half_close", pipelined_after_half_close, 60 },
        { "isolate_except", isolate_except, 40 },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        tu_add_case(s, cases[i].name, cases[i].t, cases[i].timeout, setup, teardown);
    return s;
}
