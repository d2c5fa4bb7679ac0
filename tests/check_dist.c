/* Suite "dist": real OTP nodes (erl + epx_agent, see erlnode.h) behind the
 * daemon: registration, distribution links through the proxy, the LINKS
 * and NODES views of the control port, and `erl -epmd "epmdpxy -daemon"`. */
#include <check.h>
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define JSMN_STATIC
#include <jsmn.h>

#include "erlnode.h"
#include "testutil.h"
#include "tucase.h"

#define MAX_NODES 5
#define START_MS 60000          /* nodes boot slowly on a loaded 2-core box */
#define EVAL_MS 20000
#define SETTLE_MS 20000         /* links and registrations to show up */

static tu_daemon D;
static erlnode N[MAX_NODES];
static int NN;
static char cookie[64];
static char ctlbuf[1 << 17];    /* control replies (LINKS can be long) */

/* ---- control port JSON: arrays of flat objects ---------------------- */

#define OBJ_KEYS 16
typedef struct jobj {
    int n;
    char key[OBJ_KEYS][32];
    char val[OBJ_KEYS][400];
} jobj;

static const char *jget(const jobj *o, const char *key)
{
    for (int i = 0; i < o->n; i++)
        if (strcmp(o->key[i], key) == 0)
            return o->val[i];
    return NULL;
}

static long long jnum(const jobj *o, const char *key)
{
    const char *v = jget(o, key);
    return v ? strtoll(v, NULL, 10) : -1;
}

/* Index just past token i and everything nested in it. */
static int tok_skip(const jsmntok_t *t, int i)
{
    int n = t[i].size, j = i + 1;
    if (t[i].type == JSMN_OBJECT)
        n *= 2;
    for (int k = 0; k < n; k++)
        j = tok_skip(t, j);
    return j;
}

/* Parses "OK [ {..}, .. ]" into objs (string values unquoted, escapes
 * kept as they are).  Number of objects, or -1 if it is not that. */
static int parse_reply_array(const char *reply, jobj *objs, int max)
{
    if (strncmp(reply, "OK [", 4) != 0)
        return -1;
    const char *js = reply + 3;
    static jsmntok_t t[8192];
    jsmn_parser p;
    jsmn_init(&p);
    int nt = jsmn_parse(&p, js, strlen(js), t, sizeof t / sizeof t[0]);
    if (nt < 1 || t[0].type != JSMN_ARRAY)
        return -1;
    int count = 0, i = 1;
    for (int e = 0; e < t[0].size; e++) {
        if (t[i].type != JSMN_OBJECT || count >= max)
            return -1;
        jobj *o = &objs[count++];
        o->n = 0;
        int pairs = t[i].size;
        i++;
        for (int k = 0; k < pairs; k++) {
            int v = i + 1;
            if (o->n < OBJ_KEYS) {
                snprintf(o->key[o->n], sizeof o->key[0], "%.*s",
                         t[i].end - t[i].start, js + t[i].start);
                snprintf(o->val[o->n], sizeof o->val[0], "%.*s",
                         t[v].end - t[v].start, js + t[v].start);
                o->n++;
            }
            i = tok_skip(t, v);
        }
    }
    return count;
}

static jobj objs[256];

/* Runs cmd on the control port and parses the array it returns into
 * objs; count or -1.  The raw reply stays in ctlbuf for messages. */
static int ctl_array(int port, const char *cmd)
{
    ctlbuf[0] = 0;
    if (tu_ctl(port, cmd, ctlbuf, sizeof ctlbuf) < 0)
        return -1;
    return parse_reply_array(ctlbuf, objs, 256);
}

/* 1 if NODES on the control port lists a node whose "name" is name. */
static int nodes_has(int port, const char *name)
{
    int n = ctl_array(port, "NODES");
    for (int i = 0; i < n; i++) {
        const char *v = jget(&objs[i], "name");
        if (v && strcmp(v, name) == 0)
            return 1;
    }
    return 0;
}

/* Number of links in state "up"; -1 if LINKS cannot be read. */
static int links_up(void)
{
    int n = ctl_array(D.control_port, "LINKS"), up = 0;
    if (n < 0)
        return -1;
    for (int i = 0; i < n; i++) {
        const char *s = jget(&objs[i], "state");
        up += s && strcmp(s, "up") == 0;
    }
    return up;
}

/* The "up" link from -> to in the last LINKS read, or NULL. */
static const jobj *find_up_link(int count, const char *from, const char *to)
{
    for (int i = 0; i < count; i++) {
        const char *f = jget(&objs[i], "from"), *t = jget(&objs[i], "to"),
                   *s = jget(&objs[i], "state");
        if (f && t && s && !strcmp(f, from) && !strcmp(t, to) && !strcmp(s, "up"))
            return &objs[i];
    }
    return NULL;
}

/* ---- EPMD -------------------------------------------------------------- */

/* PORT_PLEASE2 for name on the EPMD port: the reply bytes up to EOF. */
static size_t port_please(int port, const char *name, uint8_t *buf, size_t max,
                          int *eof)
{
    *eof = 0;
    int fd = tu_connect(port);
    if (fd < 0)
        return 0;
    size_t len = strlen(name);
    uint8_t req[300] = { (uint8_t)((len + 1) >> 8), (uint8_t)(len + 1), 'z' };
    memcpy(req + 3, name, len);
    size_t n = 0;
    if (tu_write_all(fd, req, len + 3) == 0)
        n = tu_read_until_eof(fd, buf, max, 10000, eof);
    close(fd);
    return n;
}

static int port_please_found(int port, const char *name)
{
    uint8_t buf[512];
    int eof;
    size_t n = port_please(port, name, buf, sizeof buf, &eof);
    return n >= 2 && buf[0] == 'w' && buf[1] == 0;
}

/* ---- nodes ----------------------------------------------------------- */

static void setup(void)
{
    NN = 0;
    memset(N, 0, sizeof N);
    ck_assert(erlnode_random_cookie(cookie, sizeof cookie) == 0);
    ck_assert_msg(tu_daemon_start(&D, NULL) == 0, "epmdpxy did not start (%s)",
                  tu_epmdpxy_path());
}

static void teardown(void)
{
    for (int i = 0; i < MAX_NODES; i++)
        erlnode_stop(&N[i], 10000);
    NN = 0;
    tu_daemon_stop(&D);
}

/* Starts n1..nN in parallel behind D with one cookie. */
static void start_nodes(int count, int ticktime)
{
    erlnode_opts o[MAX_NODES];
    char names[MAX_NODES][8];
    memset(o, 0, sizeof o);
    for (int i = 0; i < count; i++) {
        snprintf(names[i], sizeof names[i], "n%d", i + 1);
        o[i].name = names[i];
        o[i].cookie = cookie;
        o[i].epmd_port = D.epmd_port;
        o[i].net_ticktime = ticktime;
    }
    char err[1024];
    ck_assert_msg(erlnode_start_many(N, o, (size_t)count, START_MS, err, sizeof err) == 0,
                  "nodes did not start: %s", err);
    NN = count;
}

/* Evaluates on node i and requires success; the result is in out. */
#define EVAL(i, out, ms, ...)                                                \
    do {                                                                     \
        int rc_ = erlnode_evalf(&N[i], out, sizeof out, ms, __VA_ARGS__);    \
        ck_assert_msg(rc_ == 0, "%s: eval failed: %s", N[i].node, out);      \
    } while (0)

/* Evaluates on node i and requires the result text to be want. */
#define EVAL_EQ(i, want, ...)                                                \
    do {                                                                     \
        char out_[4096];                                                     \
        EVAL(i, out_, EVAL_MS, __VA_ARGS__);                                 \
        ck_assert_msg(strcmp(out_, want) == 0, "%s: got %s, want %s",        \
                      N[i].node, out_, want);                                \
    } while (0)

/* The sorted list of every node but i, as ~p prints it (n1@localhost
 * needs no quotes). */
static void others_list(int i, char *buf, size_t len)
{
    size_t off = (size_t)snprintf(buf, len, "[");
    for (int j = 0; j < NN; j++)
        if (j != i)
            off += (size_t)snprintf(buf + off, len - off, "%s%s",
                                    off > 1 ? "," : "", N[j].node);
    snprintf(buf + off, len - off, "]");
}

/* 1 once lists:sort(nodes()) on node i equals want; last result in got. */
static int nodes_are(int i, const char *want, char *got, size_t len)
{
    return erlnode_eval(&N[i], "lists:sort(nodes()).", got, len, EVAL_MS) == 0 &&
           strcmp(got, want) == 0;
}

/* ---- the agent itself ---------------------------------------------- */

/* The protocol as erlnode sees it: results, errors, one line each,
 * unicode, no bindings carried over, noise kept off the reply stream. */
START_TEST(agent_protocol)
{
    start_nodes(1, 0);
    char out[4096];
    ck_assert_str_eq(N[0].node, "n1@localhost");
    EVAL_EQ(0, "n1@localhost", "node()");
    EVAL_EQ(0, "6", "X = 3, X * 2.");
    ck_assert(erlnode_eval(&N[0], "X.", out, sizeof out, EVAL_MS) == -1);
    ck_assert_msg(strcmp(out, "error:{unbound_var,'X'}") == 0, "got %s", out);
    ck_assert(erlnode_eval(&N[0], "1/0.", out, sizeof out, EVAL_MS) == -1);
    ck_assert_str_eq(out, "error:badarith");
    ck_assert(erlnode_eval(&N[0], "throw(x).", out, sizeof out, EVAL_MS) == -1);
    ck_assert_str_eq(out, "throw:x");
    ck_assert(erlnode_eval(&N[0], "exit(self(), kill).", out, sizeof out, EVAL_MS) == -1);
    ck_assert_str_eq(out, "exit:killed");
    ck_assert(erlnode_eval(&N[0], "foo(.", out, sizeof out, EVAL_MS) == -1);
    ck_assert_msg(strncmp(out, "syntax error", 12) == 0, "got %s", out);
    /* newlines inside terms stay escaped; unicode travels as UTF-8 */
    EVAL_EQ(0, "{<<\"a\\nb\">>,\"c\\nd\"}", "{<<\"a\\nb\">>, \"c\\nd\"}");
    /* (with the default +pc latin1, only latin1 text prints as text) */
    EVAL_EQ(0, "true", "<<\"\xc3\xa9\xe4\xbd\xa0\"/utf8>> =:= <<195,169,228,189,160>>");
    EVAL_EQ(0, "<<195,169,228,189,160>>", "<<\"\xc3\xa9\xe4\xbd\xa0\"/utf8>>");
    EVAL_EQ(0, "[233,20320]", "\"\xc3\xa9\xe4\xbd\xa0\"");
    EVAL_EQ(0, "'h\\n\xc3\xa9\xe4\xbd\xa0'", "'h\\n\xc3\xa9\xe4\xbd\xa0'");
    /* what the expression prints, logs or displays is not a reply */
    EVAL_EQ(0, "ok", "io:format(\"noise~n\"), logger:error(\"boom~n\"), ok");
    EVAL_EQ(0, "ok", "erlang:display(noise), ok");
    static char big[1 << 17];
    EVAL(0, big, EVAL_MS, "lists:seq(1, 3000)");
    ck_assert_msg(strlen(big) > 10000 && !strchr(big, '\n'), "long reply: %.80s", big);
    /* a reply too long for the buffer is an error, and the next is fine */
    ck_assert(erlnode_eval(&N[0], "lists:seq(1, 3000).", out, sizeof out, EVAL_MS) == -1);
    ck_assert_msg(strstr(out, "does not fit") != NULL, "got %s", out);
    /* a late reply is skipped, not taken for the next one */
    ck_assert(erlnode_eval(&N[0], "timer:sleep(1500), late.", out, sizeof out, 200) == -1);
    EVAL_EQ(0, "next", "next");
    /* stdin EOF halts the node */
    ck_assert_msg(erlnode_stop(&N[0], 10000) == 0, "node did not halt with status 0 "
                  "after stdin EOF");
}
END_TEST

/* A node that cannot start fails fast, with what it said. */
START_TEST(start_failure_is_reported)
{
    int port = tu_free_port();     /* nobody listens there */
    erlnode_opts o = { 0 };
    o.name = "lost";
    o.cookie = cookie;
    o.epmd_port = port;
    long long t0 = tu_now_ms();
    ck_assert(erlnode_start(&N[0], &o, START_MS) == -1);
    const char *err = erlnode_errstr(&N[0]);
    ck_assert_msg(tu_now_ms() - t0 < START_MS / 2, "took %lld ms: %s",
                  tu_now_ms() - t0, err);
    ck_assert_msg(strstr(err, "lost@localhost") && strstr(err, "before READY") &&
                  strstr(err, "exit status 1") && strstr(err, "econnrefused"),
                  "unhelpful message: %s", err);
    ck_assert_msg(N[0].pid == 0 && !erlnode_running(&N[0]), "node left running");
    char dump[sizeof N[0].log + 8];   /* both kept for a post-mortem */
    snprintf(dump, sizeof dump, "%.*s.dump", (int)strlen(N[0].log) - 4, N[0].log);
    unlink(N[0].log);
    unlink(dump);
}
END_TEST

/* ---- two nodes ------------------------------------------------------- */

START_TEST(ping_pair)
{
    start_nodes(2, 0);
    EVAL_EQ(0, "pong", "net_adm:ping('%s')", N[1].node);
    int n = -1;
    const jobj *l = NULL;
    ck_assert_msg(TU_WAIT_UNTIL((n = ctl_array(D.control_port, "LINKS")) >= 0 &&
                                (l = find_up_link(n, N[0].node, N[1].node)) != NULL,
                                SETTLE_MS),
                  "no up link from %s to %s: %s", N[0].node, N[1].node, ctlbuf);
    ck_assert_msg(jnum(l, "bytes_out") > 0 && jnum(l, "bytes_in") > 0,
                  "byte counters not both > 0: %s", ctlbuf);
    ck_assert_msg(links_up() == 1, "want exactly one up link: %s", ctlbuf);
    /* the other direction reuses the link */
    EVAL_EQ(1, "pong", "net_adm:ping('%s')", N[0].node);
    char want[256], got[4096];
    others_list(0, want, sizeof want);
    ck_assert_msg(nodes_are(0, want, got, sizeof got), "n1 sees %s", got);
    others_list(1, want, sizeof want);
    ck_assert_msg(nodes_are(1, want, got, sizeof got), "n2 sees %s", got);
    ck_assert_msg(links_up() == 1, "want still one up link: %s", ctlbuf);
    n = ctl_array(D.control_port, "LINKS");
    ck_assert_msg(find_up_link(n, N[0].node, N[1].node) != NULL,
                  "n1 -> n2 link gone: %s", ctlbuf);
}
END_TEST

/* ---- five nodes ------------------------------------------------------ */

static int node_index(const char *name)
{
    for (int i = 0; i < NN; i++)
        if (strcmp(N[i].node, name) == 0)
            return i;
    return -1;
}

/* 1 if the last LINKS read has exactly one up link per pair of the NN
 * nodes and no other up link; why says what is wrong. */
static int mesh_ok(int count, char *why, size_t len)
{
    int seen[MAX_NODES][MAX_NODES] = { { 0 } }, up = 0;
    for (int i = 0; i < count; i++) {
        const char *s = jget(&objs[i], "state");
        if (!s || strcmp(s, "up") != 0)
            continue;
        up++;
        const char *f = jget(&objs[i], "from"), *t = jget(&objs[i], "to");
        int a = f ? node_index(f) : -1, b = t ? node_index(t) : -1;
        if (a < 0 || b < 0 || a == b) {
            snprintf(why, len, "bad up link %s -> %s", f ? f : "?", t ? t : "?");
            return 0;
        }
        if (jnum(&objs[i], "bytes_out") <= 0 || jnum(&objs[i], "bytes_in") <= 0) {
            snprintf(why, len, "up link %s -> %s moved no bytes", f, t);
            return 0;
        }
        seen[a < b ? a : b][a < b ? b : a]++;
    }
    for (int a = 0; a < NN; a++)
        for (int b = a + 1; b < NN; b++)
            if (seen[a][b] != 1) {
                snprintf(why, len, "%d up links between %s and %s", seen[a][b],
                         N[a].node, N[b].node);
                return 0;
            }
    if (up != NN * (NN - 1) / 2) {
        snprintf(why, len, "%d up links", up);
        return 0;
    }
    return 1;
}

START_TEST(mesh_of_five)
{
    start_nodes(5, 0);
    for (int i = 0; i < NN; i++) {
        char others[256], want[64] = "[pong,pong,pong,pong]";
        others_list(i, others, sizeof others);
        EVAL_EQ(i, want, "[net_adm:ping(N) || N <- %s]", others);
    }
    char want[256], got[4096];
    for (int i = 0; i < NN; i++) {
        others_list(i, want, sizeof want);
        ck_assert_msg(TU_WAIT_UNTIL(nodes_are(i, want, got, sizeof got), SETTLE_MS),
                      "%s sees %s, want %s", N[i].node, got, want);
    }
    char why[256] = "LINKS unreadable";
    int n = -1;
    ck_assert_msg(TU_WAIT_UNTIL((n = ctl_array(D.control_port, "LINKS")) >= 0 &&
                                mesh_ok(n, why, sizeof why), SETTLE_MS),
                  "LINKS is not one up link per pair (%s): %s", why, ctlbuf);
    /* n1 pinged first, before anyone else knew the others: it initiated
     * every one of its links (the rest may come from global's mesh). */
    for (int j = 1; j < NN; j++)
        ck_assert_msg(find_up_link(n, N[0].node, N[j].node) != NULL,
                      "no up link from %s to %s: %s", N[0].node, N[j].node, ctlbuf);
}
END_TEST

/* All five ping all others at the same moment: pairs race to connect both
 * ways, the nodes keep one connection per pair (the handshake's
 * ok_simultaneous / nok), and LINKS must end with exactly that one up. */
START_TEST(simultaneous_mesh)
{
    start_nodes(5, 0);
    for (int i = 0; i < NN; i++) {
        char others[256], expr[512];
        others_list(i, others, sizeof others);
        snprintf(expr, sizeof expr, "[net_adm:ping(N) || N <- %s]", others);
        ck_assert_msg(erlnode_send(&N[i], expr, EVAL_MS) == 0, "%s",
                      erlnode_errstr(&N[i]));
    }
    for (int i = 0; i < NN; i++) {
        char out[4096];
        ck_assert_msg(erlnode_recv(&N[i], out, sizeof out, EVAL_MS) == 0, "%s: %s",
                      N[i].node, out);
        ck_assert_msg(strcmp(out, "[pong,pong,pong,pong]") == 0, "%s: %s", N[i].node, out);
    }
    char want[256], got[4096];
    for (int i = 0; i < NN; i++) {
        others_list(i, want, sizeof want);
        ck_assert_msg(TU_WAIT_UNTIL(nodes_are(i, want, got, sizeof got), SETTLE_MS),
                      "%s sees %s, want %s", N[i].node, got, want);
    }
    char why[256] = "LINKS unreadable";
    int n = -1;
    ck_assert_msg(TU_WAIT_UNTIL((n = ctl_array(D.control_port, "LINKS")) >= 0 &&
                                mesh_ok(n, why, sizeof why), SETTLE_MS),
                  "LINKS is not one up link per pair (%s): %s", why, ctlbuf);
    /* every link that is not up is closed, none is stuck in handshake */
    for (int i = 0; i < n; i++) {
        const char *st = jget(&objs[i], "state");
        ck_assert_msg(st && (!strcmp(st, "up") || !strcmp(st, "closed")),
                      "link %s -> %s in state %s: %s", jget(&objs[i], "from"),
                      jget(&objs[i], "to"), st ? st : "?", ctlbuf);
    }
}
END_TEST

/* ---- a big message ----------------------------------------------------- */

START_TEST(big_binary)
{
    start_nodes(2, 0);
    const long long size = 100LL * 1024 * 1024;
    /* the sink on n2 keeps size and md5 of what it got and acks */
    EVAL_EQ(1, "true",
            "register(epx_sink, spawn(fun() -> receive {From, Bin} -> "
            "R = {byte_size(Bin), erlang:md5(Bin)}, persistent_term:put(epx_sink, R), "
            "From ! {epx_sink, R} end end))");
    /* 100 chunks of 1 MiB: a counter and random bytes, so that a lost,
     * doubled or reordered chunk changes the md5 */
    char sent[512];
    EVAL(0, sent, 120000,
         "Chunk = rand:bytes(1048568), "
         "Bin = iolist_to_binary([[<<I:64>>, Chunk] || I <- lists:seq(1, 100)]), "
         "{epx_sink, '%s'} ! {self(), Bin}, "
         "receive {epx_sink, _} -> {byte_size(Bin), erlang:md5(Bin)} "
         "after 100000 -> sink_timeout end", N[1].node);
    char head[64];
    snprintf(head, sizeof head, "{%lld,<<", size);
    ck_assert_msg(strncmp(sent, head, strlen(head)) == 0, "n1 sent %s", sent);
    char got[512];
    EVAL(1, got, EVAL_MS, "persistent_term:get(epx_sink)");
    ck_assert_msg(strcmp(sent, got) == 0, "n1 sent %s, n2 got %s", sent, got);
    int n = ctl_array(D.control_port, "LINKS");
    const jobj *l = find_up_link(n, N[0].node, N[1].node);
    ck_assert_msg(l != NULL, "no up link n1 -> n2: %s", ctlbuf);
    ck_assert_msg(jnum(l, "bytes_out") >= size, "bytes_out %lld < %lld: %s",
                  jnum(l, "bytes_out"), size, ctlbuf);
}
END_TEST

/* ---- a killed node --------------------------------------------------- */

START_TEST(killed_node_unregisters)
{
    start_nodes(2, 0);
    EVAL_EQ(0, "pong", "net_adm:ping('%s')", N[1].node);
    ck_assert_msg(nodes_has(D.control_port, "n2"), "n2 not in NODES: %s", ctlbuf);
    ck_assert_msg(TU_WAIT_UNTIL(links_up() == 1, SETTLE_MS), "no up link: %s", ctlbuf);
    erlnode_kill(&N[1]);
    ck_assert_msg(TU_WAIT_UNTIL(!nodes_has(D.control_port, "n2") &&
                                strncmp(ctlbuf, "OK [", 4) == 0, SETTLE_MS),
                  "n2 still in NODES after SIGKILL: %s", ctlbuf);
    uint8_t buf[512];
    int eof;
    size_t k = port_please(D.epmd_port, "n2", buf, sizeof buf, &eof);
    ck_assert_msg(k == 2 && buf[0] == 0x77 && buf[1] == 0x01 && eof,
                  "PORT_PLEASE2 n2: %zu bytes (%02x %02x), eof %d", k,
                  k > 0 ? buf[0] : 0, k > 1 ? buf[1] : 0, eof);
    ck_assert_msg(port_please_found(D.epmd_port, "n1"), "n1 no longer found");
    /* the link closes with the dead node's socket, and n1 sees nodedown
     * by that close, not by a tick timeout (default net_ticktime, 60 s) */
    ck_assert_msg(TU_WAIT_UNTIL(links_up() == 0, SETTLE_MS),
                  "link still up after n2 died: %s", ctlbuf);
    char got[4096];
    ck_assert_msg(TU_WAIT_UNTIL(nodes_are(0, "[]", got, sizeof got), SETTLE_MS),
                  "n1 still sees %s", got);
}
END_TEST

/* ---- erl -epmd "epmdpxy -daemon" ------------------------------------- */

static int dport;               /* the detached daemon's EPMD port */
static pid_t guard_pid = -1;
static int guard_fd = -1;
static char exe_path[PATH_MAX];

static int port_free(int port)
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

static int port_listening(int port)
{
    int fd = tu_connect(port);
    if (fd < 0)
        return 0;
    close(fd);
    return 1;
}

/* Number of live epmdpxy processes (tu_is_daemon_process) with ERL_EPMD_PORT=port in
 * their environment; *first gets the pid of one of them.  Zombies do not
 * count. */
static int count_detached(int port, pid_t *first)
{
    char want[32];
    int wl = snprintf(want, sizeof want, "ERL_EPMD_PORT=%d", port) + 1;
    *first = -1;
    DIR *d = opendir("/proc");
    if (!d)
        return 0;
    int count = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        char *end;
        long pid = strtol(e->d_name, &end, 10);
        if (*end || pid <= 0 || pid == getpid())
            continue;
        char path[64];
        if (!tu_is_daemon_process((pid_t)pid))
            continue;
        snprintf(path, sizeof path, "/proc/%ld/stat", pid);
        FILE *f = fopen(path, "r");
        char st = '?';
        if (f) {
            if (fscanf(f, "%*d (%*[^)]) %c", &st) != 1)
                st = '?';
            fclose(f);
        }
        if (st == 'Z' || st == 'X')
            continue;
        snprintf(path, sizeof path, "/proc/%ld/environ", pid);
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
            continue;
        static char env[1 << 16];
        ssize_t n = read(fd, env, sizeof env - 1);
        close(fd);
        for (ssize_t i = 0; n > 0 && i + wl <= n; i++)
            if ((i == 0 || env[i - 1] == 0) && memcmp(env + i, want, (size_t)wl) == 0) {
                if (count++ == 0)
                    *first = (pid_t)pid;
                break;
            }
    }
    closedir(d);
    return count;
}

/* Pid of a live epmdpxy for port (see count_detached), or -1. */
static pid_t find_detached(int port)
{
    pid_t pid;
    count_detached(port, &pid);
    return pid;
}

/* Stops the detached daemon on port: SHUTDOWN on port+1 (after checking
 * with STATUS that it is the daemon for port), then SIGKILL if it is
 * still there at the deadline.  1 if it is gone. */
static int detached_shutdown(int port, int timeout_ms)
{
    long long deadline = tu_now_ms() + timeout_ms;
    pid_t pid = find_detached(port);
    char r[1024], want[48];
    snprintf(want, sizeof want, "\"epmd_port\":%d", port);
    if (tu_ctl(port + 1, "STATUS", r, sizeof r) == 0 && strstr(r, want))
        tu_ctl(port + 1, "SHUTDOWN", r, sizeof r);
    while (tu_now_ms() < deadline) {
        if (find_detached(port) < 0)
            return 1;
        tu_sleep_ms(20);
    }
    if (pid > 0 && find_detached(port) == pid)
        kill(pid, SIGKILL);
    return find_detached(port) < 0;
}

/* A guard that outlives this process: when its pipe closes (teardown, or
 * the _exit of a failed assertion, or libcheck's SIGKILL on timeout) it
 * stops the detached daemon on port, which is nobody's child. */
static void guard_start(int port)
{
    int p[2];
    ck_assert(pipe2(p, O_CLOEXEC) == 0);
    pid_t pid = fork();
    if (pid == 0) {
        /* no libcheck call in here: in CK_FORK=no mode even a passing
         * assertion writes to the runner's message file */
        setpgid(0, 0);          /* out of reach of libcheck's killpg */
        int keep = p[0];
        for (int fd = 3; fd < 1024; fd++)
            if (fd != keep)
                close(fd);
        int null = open("/dev/null", O_RDWR);
        if (null >= 0) {
            dup2(null, 0);
            dup2(null, 1);
            close(null);
        }
        char c;
        ssize_t k;
        while ((k = read(keep, &c, 1)) < 0 && errno == EINTR) {}
        if (k == 1)
            _exit(0);           /* teardown ran and says all is clean */
        /* EOF: the test died.  The daemon may still be starting: look
         * for it for a while. */
        long long until = tu_now_ms() + 5000;
        while (tu_now_ms() < until && find_detached(port) < 0 &&
               !port_listening(port + 1))
            tu_sleep_ms(100);
        detached_shutdown(port, 5000);
        _exit(0);
    }
    close(p[0]);
    ck_assert_msg(pid > 0, "fork: %s", strerror(errno));
    guard_pid = pid;
    guard_fd = p[1];
}

/* clean: the daemon is known to be gone, the guard may just exit. */
static void guard_stop(int clean)
{
    if (guard_fd >= 0) {
        if (clean && write(guard_fd, "q", 1) != 1)
            clean = 0;
        close(guard_fd);
    }
    guard_fd = -1;
    if (guard_pid > 0) {
        long long deadline = tu_now_ms() + 15000;
        while (waitpid(guard_pid, NULL, WNOHANG) == 0 && tu_now_ms() < deadline)
            tu_sleep_ms(10);
        if (waitpid(guard_pid, NULL, WNOHANG) == 0) {
            kill(guard_pid, SIGKILL);
            waitpid(guard_pid, NULL, 0);
        }
    }
    guard_pid = -1;
}

static void setup_detached(void)
{
    NN = 0;
    memset(N, 0, sizeof N);
    dport = 0;
    ck_assert(erlnode_random_cookie(cookie, sizeof cookie) == 0);
    ck_assert_msg(realpath(tu_epmdpxy_path(), exe_path) != NULL, "no %s",
                  tu_epmdpxy_path());
    for (int i = 0; i < 200 && !dport; i++) {
        int p = tu_free_port();
        if (p > 0 && p < 65535 && port_free(p) && port_free(p + 1))
            dport = p;
    }
    ck_assert_msg(dport > 0, "no free pair of ports");
    guard_start(dport);
}

static void teardown_detached(void)
{
    for (int i = 0; i < MAX_NODES; i++)
        erlnode_stop(&N[i], 10000);
    int gone = dport > 0 ? detached_shutdown(dport, 10000) : 1;
    guard_stop(gone);
}

/* 1 if fd 0, 1 or 2 of pid is the pipe our fd refers to. */
static int holds_pipe(pid_t pid, int ourfd)
{
    struct stat st;
    if (ourfd < 0 || fstat(ourfd, &st) < 0)
        return 0;
    char want[64];
    snprintf(want, sizeof want, "pipe:[%lu]", (unsigned long)st.st_ino);
    for (int fd = 0; fd < 3; fd++) {
        char path[64], link[128];
        snprintf(path, sizeof path, "/proc/%d/fd/%d", (int)pid, fd);
        ssize_t k = readlink(path, link, sizeof link - 1);
        if (k > 0) {
            link[k] = 0;
            if (strcmp(link, want) == 0)
                return 1;
        }
    }
    return 0;
}

START_TEST(erl_starts_daemon)
{
    ck_assert_msg(!port_listening(dport) && !port_listening(dport + 1),
                  "ports %d/%d already taken", dport, dport + 1);
    char prog[PATH_MAX + 32];
    snprintf(prog, sizeof prog, "'%s' -daemon", exe_path);
    erlnode_opts o = { 0 };
    o.name = "x";
    o.cookie = cookie;
    o.epmd_port = dport;
    o.epmd_program = prog;
    ck_assert_msg(erlnode_start(&N[0], &o, START_MS) == 0, "node x did not start: %s",
                  erlnode_errstr(&N[0]));
    NN = 1;
    EVAL_EQ(0, "x@localhost", "node()");
    ck_assert_msg(port_please_found(dport, "x"), "PORT_PLEASE2 x on %d: not found", dport);
    ck_assert_msg(nodes_has(dport + 1, "x"), "NODES on %d: %s", dport + 1, ctlbuf);
    /* one daemon, once what it forked from has exited (slow under valgrind) */
    pid_t pid = -1;
    int count = 0;
    ck_assert_msg(TU_WAIT_UNTIL((count = count_detached(dport, &pid)) == 1, 20000),
                  "%d epmdpxy processes with ERL_EPMD_PORT=%d (first pid %d)", count, dport,
                  (int)pid);
    /* detached like epmd: it must not hold the node's stdio pipes, or the
     * test would never see the node's stdout close */
    ck_assert_msg(!holds_pipe(pid, N[0].out_fd) && !holds_pipe(pid, N[0].in_fd),
                  "detached epmdpxy (pid %d) kept the node's stdin/stdout", (int)pid);

    /* A second node runs the same command: that daemon finds the port
     * taken and exits 0 without a word (as epmd does); y registers with
     * the first one, and x and y talk through it. */
    o.name = "y";
    ck_assert_msg(erlnode_start(&N[1], &o, START_MS) == 0, "node y did not start: %s",
                  erlnode_errstr(&N[1]));
    NN = 2;
    /* y's daemon exits (under valgrind only after its leak check) */
    pid_t again = -1;
    TU_WAIT_UNTIL((count = count_detached(dport, &again)) == 1, 20000);
    ck_assert_msg(count == 1 && again == pid, "%d epmdpxy processes for port %d "
                  "(first pid %d, was %d)", count, dport, (int)again, (int)pid);
    char tail[256];
    erlnode_log_tail(&N[1], tail, sizeof tail);
    ck_assert_msg(tail[0] == 0, "y's stderr: %s", tail);
    ck_assert_msg(nodes_has(dport + 1, "y"), "NODES on %d: %s", dport + 1, ctlbuf);
    EVAL_EQ(0, "pong", "net_adm:ping('%s')", N[1].node);
    int n = -1;
    ck_assert_msg(TU_WAIT_UNTIL((n = ctl_array(dport + 1, "LINKS")) >= 0 &&
                                find_up_link(n, N[0].node, N[1].node) != NULL,
                                SETTLE_MS),
                  "no up link from x to y: %s", ctlbuf);

    ck_assert_msg(erlnode_stop(&N[1], 10000) == 0, "node y did not halt cleanly");
    ck_assert_msg(erlnode_stop(&N[0], 10000) == 0, "node x did not halt cleanly");
    ck_assert_msg(TU_WAIT_UNTIL(!port_please_found(dport, "x") &&
                                !port_please_found(dport, "y"), SETTLE_MS),
                  "x or y still registered after they stopped");
    char r[256];
    ck_assert_msg(tu_ctl(dport + 1, "SHUTDOWN", r, sizeof r) == 0 && strcmp(r, "OK") == 0,
                  "SHUTDOWN on %d: %s", dport + 1, r);
    ck_assert_msg(TU_WAIT_UNTIL(find_detached(dport) < 0 && !port_listening(dport) &&
                                !port_listening(dport + 1), 10000),
                  "detached epmdpxy (pid %d) still there after SHUTDOWN", (int)pid);
}
END_TEST

Suite *dist_suite(void)
{
    Suite *s = suite_create("dist");
    struct {
        const char *name;
        const TTest *fn;
        int timeout;
    } cases[] = {
        { "agent_protocol", agent_protocol, 60 },
        { "start_failure_is_reported", start_failure_is_reported, 90 },
        { "ping_pair", ping_pair, 90 },
        { "mesh_of_five", mesh_of_five, 120 },
        { "simultaneous_mesh", simultaneous_mesh, 120 },
        { "big_binary", big_binary, 180 },
        { "killed_node_unregisters", killed_node_unregisters, 90 },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        tu_add_case(s, cases[i].name, cases[i].fn, cases[i].timeout, setup, teardown);
    TCase *tc = tcase_create("erl_starts_daemon");
    tcase_add_checked_fixture(tc, setup_detached, teardown_detached);
    tcase_set_timeout(tc, 90);
    tcase_add_test(tc, erl_starts_daemon);
    suite_add_tcase(s, tc);
    return s;
}
