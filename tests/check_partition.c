/* Suite "partition": the partition issue end to end, with real OTP nodes
 * meshed through the daemon (libepx starts a private daemon and the nodes;
 * the test drives them over their stdin, never over the distribution).
 *
 *   cut_islands     CUT n1,n2 n3,n4,n5: every node's nodes() is its island
 *                   within the tick window; a ping across is pang; in hold
 *                   mode the daemon closes nothing itself, the nodes do
 *   heal            HEAL + reconnect: the full mesh is back, and the held
 *                   links of the cut are gone from LINKS
 *   one_way         CUT n1 -> n2: n2 -> n1 arrives, n1 -> n2 does not (until
 *                   FIX: then it arrives, nothing was dropped)
 *   before_connect  a cut made before two nodes ever met keeps them apart
 *                   both ways (their EPMD lookups of each other are held);
 *                   FIX lets them connect
 *   short_hold      a hold cut shorter than the tick window: a 50 MB message
 *                   sent during it arrives intact after FIX, no nodedown
 *   reset_mode      MODE reset: CUT gives nodedown on both sides at once;
 *                   EVENTS says the daemon closed the link
 *   isolate         ISOLATE n3: n3 sees nobody, the other four stay meshed,
 *                   and n3 cannot connect later either
 *   links_held      LINKS shows "held" state and direction right after a cut
 *   events_file     --events FILE gets registered / link_up / cut as JSON lines
 *
 * Set EPX_TIMING=1 to print how long the measured steps took. */
#include <check.h>

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define JSMN_STATIC
#include <jsmn.h>

#include "epx_fixture.h"
#include "erlnode.h"
#include "testutil.h"
#include "tucase.h"

#define NNODES       5
#define TCASE_S      120
#define PARTITION_MS 20000      /* tick window (net_ticktime 2) plus lots of slack */
#define WAIT_MS      20000      /* generic "should happen soon" deadline */
/* A connection attempt across a hold cut ends only when the initiator's
 * handshake timer (net_setuptime, default 7 s) fires: make pings across a
 * cut answer pang sooner. */
#define SETUPTIME    "4"

static epx_cluster *C;
static char ctlbuf[1 << 20];          /* EVENTS can be long */

/* ---- small helpers -------------------------------------------------- */

static void timing(const char *what, long long ms)
{
    const char *e = getenv("EPX_TIMING");
    if (e && *e)
        fprintf(stderr, "partition: %s: %lld ms\n", what, ms);
}

static const char *node(int i)
{
    const char *n = epx_fixture_node(C, i);
    ck_assert_msg(n != NULL, "no node %d", i);
    return n;
}

/* Evaluate on node i; the expression must succeed.  Result in out. */
__attribute__((format(printf, 4, 5)))
static void evalf(int i, char *out, size_t outlen, const char *fmt, ...)
{
    char expr[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(expr, sizeof expr, fmt, ap);
    va_end(ap);
    if (epx_fixture_eval(C, node(i), expr, out, outlen) != 0)
        ck_abort_msg("eval on %s of `%s` failed: %s", node(i), expr, epx_fixture_last_error());
}

/* The result of net_adm:ping(to) run on node from: "pong" or "pang". */
static const char *ping(int from, int to)
{
    static char out[256];
    evalf(from, out, sizeof out, "net_adm:ping('%s')", node(to));
    ck_assert_msg(!strcmp(out, "pong") || !strcmp(out, "pang"), "ping %s -> %s gave %s",
                  node(from), node(to), out);
    return out;
}

/* One control command that must answer OK; the reply goes to ctlbuf. */
static const char *ctl(const char *cmd)
{
    if (epx_fixture_control(C, cmd, ctlbuf, sizeof ctlbuf) != 0)
        ck_abort_msg("control %s: %s", cmd, epx_fixture_last_error());
    return ctlbuf;
}

static const char *matrix(void)
{
    static char m[4096];
    if (epx_fixture_matrix(C, m, sizeof m) < 0)
        snprintf(m, sizeof m, "(no matrix: %s)", epx_fixture_last_error());
    return m;
}

/* Does node i see node j (1/0)?  Fails the test on an error. */
static int sees(int i, int j)
{
    int r = epx_fixture_sees(C, node(i), node(j));
    ck_assert_msg(r >= 0, "sees %d %d: %s", i, j, epx_fixture_last_error());
    return r;
}

/* ---- control JSON: arrays of flat objects -------------------------- */

#define JKEYS 24
typedef struct jobj {
    int n;
    char key[JKEYS][32];
    char val[JKEYS][512];       /* strings unquoted (escapes left as they are) */
} jobj;

static const char *jget(const jobj *o, const char *k)
{
    for (int i = 0; i < o->n; i++)
        if (!strcmp(o->key[i], k))
            return o->val[i];
    return "";
}

static long long jnum(const jobj *o, const char *k)
{
    const char *v = jget(o, k);
    return *v ? strtoll(v, NULL, 10) : -1;
}

/* Index just past token i and everything nested in it. */
static int tok_end(const jsmntok_t *t, int i)
{
    int n = t[i].size, j = i + 1;
    for (int k = 0; k < n; k++)
        j = tok_end(t, j);
    return j;
}

/* Parse one JSON text that must be an array of objects (json, len bytes)
 * into a fresh array *out.  Number of objects, or -1. */
static int parse_array(const char *json, size_t len, jobj **out)
{
    *out = NULL;
    jsmn_parser p;
    jsmn_init(&p);
    int nt = jsmn_parse(&p, json, len, NULL, 0);
    if (nt < 1)
        return -1;
    jsmntok_t *t = calloc((size_t)nt, sizeof *t);
    ck_assert(t != NULL);
    jsmn_init(&p);
    if (jsmn_parse(&p, json, len, t, (unsigned)nt) != nt || t[0].type != JSMN_ARRAY ||
        t[0].end != (int)len) {
        free(t);
        return -1;
    }
    int n = t[0].size;
    jobj *v = calloc((size_t)(n ? n : 1), sizeof *v);
    ck_assert(v != NULL);
    int i = 1;
    for (int k = 0; k < n; k++) {
        if (t[i].type != JSMN_OBJECT) {
            free(t);
            free(v);
            return -1;
        }
        int members = t[i].size, j = i + 1;
        for (int m = 0; m < members; m++) {
            if (t[j].type != JSMN_STRING) {
                free(t);
                free(v);
                return -1;
            }
            if (v[k].n < JKEYS) {
                snprintf(v[k].key[v[k].n], sizeof v[k].key[0], "%.*s", t[j].end - t[j].start,
                         json + t[j].start);
                const jsmntok_t *val = &t[j + 1];
                snprintf(v[k].val[v[k].n], sizeof v[k].val[0], "%.*s", val->end - val->start,
                         json + val->start);
                v[k].n++;
            }
            j = tok_end(t, j + 1);
        }
        i = j;
    }
    free(t);
    *out = v;
    return n;
}

/* "OK [..]" from a control command, parsed.  Fails the test otherwise. */
static int ctl_array(const char *cmd, jobj **out)
{
    const char *r = ctl(cmd);
    ck_assert_msg(!strncmp(r, "OK [", 4), "%s: not an array: %.300s", cmd, r);
    int n = parse_array(r + 3, strlen(r + 3), out);
    ck_assert_msg(n >= 0, "%s: bad JSON: %.300s", cmd, r);
    return n;
}

/* The newest event's sequence number (0 if none). */
static long long last_seq(void)
{
    jobj *ev;
    int n = ctl_array("EVENTS", &ev);
    long long s = n ? jnum(&ev[n - 1], "seq") : 0;
    free(ev);
    return s;
}

static int events_after(long long seq, jobj **out)
{
    char cmd[64];
    snprintf(cmd, sizeof cmd, "EVENTS %lld", seq);
    return ctl_array(cmd, out);
}

/* Does a name from the daemon stand for node full ("n5@localhost")?  The
 * daemon names a node it has not yet seen in a handshake by its alive part
 * only ("n5"): a link to a node that never connected says "to":"n5". */
static int same_node(const char *name, const char *full)
{
    if (!strcmp(name, full))
        return 1;
    size_t alive = strcspn(full, "@");
    return !strchr(name, '@') && strlen(name) == alive && !strncmp(name, full, alive);
}

/* Is {a, b} (names from the daemon) the same unordered pair as the nodes
 * {x, y} (full names)? */
static int same_pair(const char *a, const char *b, const char *x, const char *y)
{
    return (same_node(a, x) && same_node(b, y)) || (same_node(a, y) && same_node(b, x));
}

/* An event that says a node closed the link between a and b (both full
 * names): link_peer_closed, or link_closed by the initiator or the node. */
static int node_closed(const jobj *ev, int n, const char *a, const char *b)
{
    for (int k = 0; k < n; k++) {
        const char *type = jget(&ev[k], "type");
        if (!same_pair(jget(&ev[k], "from"), jget(&ev[k], "to"), a, b))
            continue;
        if (!strcmp(type, "link_peer_closed"))
            return 1;
        if (!strcmp(type, "link_closed") &&
            (!strcmp(jget(&ev[k], "by"), "initiator") || !strcmp(jget(&ev[k], "by"), "node")))
            return 1;
    }
    return 0;
}

static void dump_events(const jobj *ev, int n, char *out, size_t len)
{
    size_t used = 0;
    out[0] = 0;
    for (int k = 0; k < n && used + 1 < len; k++) {
        int w = snprintf(out + used, len - used, "\n  %s %s %s->%s by=%s side=%s",
                         jget(&ev[k], "seq"), jget(&ev[k], "type"), jget(&ev[k], "from"),
                         jget(&ev[k], "to"), jget(&ev[k], "by"), jget(&ev[k], "side"));
        used += w > 0 ? (size_t)w : 0;
    }
}

/* Wait until LINKS lists exactly one link per pair of nodes, each up and
 * not held.  1 if it does within timeout_ms. */
static int await_clean_links(int timeout_ms)
{
    long long deadline = tu_now_ms() + timeout_ms;
    for (;;) {
        jobj *l;
        int n = ctl_array("LINKS", &l);
        int ok = n == NNODES * (NNODES - 1) / 2;
        for (int k = 0; ok && k < n; k++) {
            ok = !strcmp(jget(&l[k], "state"), "up") && !strcmp(jget(&l[k], "held"), "none");
            for (int m = 0; ok && m < k; m++)
                ok = !same_pair(jget(&l[k], "from"), jget(&l[k], "to"), jget(&l[m], "from"),
                                jget(&l[m], "to"));
        }
        free(l);
        if (ok)
            return 1;
        if (tu_now_ms() > deadline)
            return 0;
        tu_sleep_ms(100);
    }
}

/* ---- Erlang helpers run in the nodes -------------------------------- */

/* A process registered as rx that keeps every message it gets (a binary
 * over 1 KiB as {bin, Size, Md5Hex}); rx_got() asks it for the list. */
#define RX_START                                                                            \
    "P = spawn(fun() -> (fun L(Got) -> receive "                                            \
    "{epx_get, From} -> From ! {epx_got, lists:reverse(Got)}, L(Got); "                     \
    "M when is_binary(M), byte_size(M) > 1024 -> "                                          \
    "L([{bin, byte_size(M), binary:encode_hex(erlang:md5(M))} | Got]); "                    \
    "M -> L([M | Got]) end end)([]) end), register(rx, P), ok"

static void rx_start(int i)
{
    char out[64];
    evalf(i, out, sizeof out, RX_START);
    ck_assert_str_eq(out, "ok");
}

static const char *rx_got(int i)
{
    static char out[4096];
    evalf(i, out, sizeof out,
          "rx ! {epx_get, self()}, receive {epx_got, G} -> G after 10000 -> rx_silent end");
    return out;
}

/* A process registered as epx_mon that counts nodedown messages; the
 * first query returns only once it is subscribed. */
#define MON_START                                                                           \
    "P = spawn(fun() -> ok = net_kernel:monitor_nodes(true), (fun L(D) -> receive "         \
    "{nodedown, N} -> L([N | D]); "                                                         \
    "{epx_get, From} -> From ! {epx_got, lists:reverse(D)}, L(D); "                         \
    "_ -> L(D) end end)([]) end), register(epx_mon, P), "                                   \
    "P ! {epx_get, self()}, receive {epx_got, D} -> D after 10000 -> mon_silent end"
#define MON_GET "epx_mon ! {epx_get, self()}, receive {epx_got, D} -> D after 10000 -> mon_silent end"

/* ---- fixtures ------------------------------------------------------- */

static const char *const setup_args[] = { "-kernel", "net_setuptime", SETUPTIME, NULL };

static void start(int ticktime, int mode, int no_mesh)
{
    epx_options o;
    memset(&o, 0, sizeof o);
    o.net_ticktime = ticktime;
    o.mode = mode;
    o.no_mesh = no_mesh;
    o.erl_args = setup_args;
    o.timeout_ms = 60000;           /* boots are slow on a loaded 2-core box */
    long long t0 = tu_now_ms();
    C = epx_fixture_start_cluster(NNODES, &o);
    if (!C)
        ck_abort_msg("starting %d nodes failed: %s", NNODES, epx_fixture_last_error());
    timing("cluster start", tu_now_ms() - t0);
}

static void setup_tick2(void)  { start(2, EPX_MODE_HOLD, 0); }
static void setup_tick10(void) { start(10, EPX_MODE_HOLD, 0); }
static void setup_tick20(void) { start(20, EPX_MODE_HOLD, 0); }
static void setup_nomesh(void) { start(2, EPX_MODE_HOLD, 1); }
static void setup_reset(void)  { start(2, EPX_MODE_RESET, 0); }

static void teardown_cluster(void)
{
    epx_fixture_stop_cluster(C);
    C = NULL;
}

/* ---- 1. CUT into islands -------------------------------------------- */

START_TEST(cut_islands)
{
    long long seq0 = last_seq();
    long long t0 = tu_now_ms();
    if (epx_fixture_cut(C, "n1,n2 n3,n4,n5") != 0)
        ck_abort_msg("CUT: %s", epx_fixture_last_error());
    if (epx_fixture_await_partition(C, PARTITION_MS) != 0)
        ck_abort_msg("partition not reached: %s", epx_fixture_last_error());
    timing("hold CUT to islands (tick 2)", tu_now_ms() - t0);

    /* the islands, checked here too and not only through RULES */
    unsigned char seen[NNODES * NNODES];
    ck_assert_int_eq(epx_fixture_visibility(C, seen, sizeof seen), 0);
    for (int i = 1; i <= NNODES; i++)
        for (int j = 1; j <= NNODES; j++) {
            int want = i != j && ((i <= 2) == (j <= 2));
            ck_assert_msg(seen[(i - 1) * NNODES + (j - 1)] == want, "n%d %s n%d\n%s", i,
                          want ? "does not see" : "sees", j, matrix());
        }

    ck_assert_str_eq(ping(1, 3), "pang");
    ck_assert_str_eq(ping(1, 2), "pong");
    ck_assert_msg(!sees(1, 3), "n1 sees n3 after a ping across the cut\n%s", matrix());

    /* hold mode: the nodes closed the cut links, the daemon closed none */
    jobj *ev = NULL;
    int n = 0, all = 0;
    long long deadline = tu_now_ms() + WAIT_MS;
    for (;;) {
        free(ev);
        n = events_after(seq0, &ev);
        all = 1;
        for (int a = 1; a <= 2; a++)
            for (int b = 3; b <= NNODES; b++)
                all &= node_closed(ev, n, node(a), node(b));
        if (all || tu_now_ms() > deadline)
            break;
        tu_sleep_ms(100);
    }
    char dump[8192];
    dump_events(ev, n, dump, sizeof dump);
    for (int k = 0; k < n; k++)
        ck_assert_msg(!(strcmp(jget(&ev[k], "type"), "link_closed") == 0 &&
                        strcmp(jget(&ev[k], "by"), "daemon") == 0),
                      "the daemon closed a link in hold mode (event %s):%s", jget(&ev[k], "seq"),
                      dump);
    ck_assert_msg(all, "not every cut link was closed by its nodes:%s", dump);
    free(ev);
}
END_TEST

/* ---- 2. HEAL -------------------------------------------------------- */

START_TEST(heal)
{
    if (epx_fixture_cut(C, "n1,n2 n3,n4,n5") != 0)
        ck_abort_msg("CUT: %s", epx_fixture_last_error());
    if (epx_fixture_await_partition(C, PARTITION_MS) != 0)
        ck_abort_msg("partition not reached: %s", epx_fixture_last_error());
    ck_assert_msg(!sees(2, 4), "n2 sees n4 across the cut\n%s", matrix());

    long long t0 = tu_now_ms();
    ck_assert_str_eq(ctl("HEAL"), "OK");
    ck_assert_str_eq(ctl("RULES"), "OK []");
    ck_assert_str_eq(ping(1, 3), "pong");
    if (epx_fixture_connect_all(C) != 0)
        ck_abort_msg("connect_all: %s", epx_fixture_last_error());
    if (epx_fixture_await_connected(C, WAIT_MS) != 0)
        ck_abort_msg("no full mesh after HEAL: %s", epx_fixture_last_error());
    timing("HEAL to full mesh", tu_now_ms() - t0);

    /* the links held by the cut went away with their nodes' sockets: in the
     * end LINKS lists one live link per pair and nothing else */
    if (!await_clean_links(WAIT_MS))
        ck_abort_msg("LINKS after HEAL is not one up link per pair: %s", ctl("LINKS"));
}
END_TEST

/* ---- 3. one-way cut ------------------------------------------------- */

START_TEST(one_way)
{
    /* net_ticktime 20: n2 hears nothing from n1 during the cut but would
     * only give up after ~15-20 s; everything below takes a few seconds */
    rx_start(1);
    rx_start(2);
    ck_assert_int_eq(epx_fixture_cut(C, "n1 -> n2"), 0);
    long long t0 = tu_now_ms();
    char out[256];
    evalf(1, out, sizeof out, "{rx, '%s'} ! from_n1", node(2));
    evalf(2, out, sizeof out, "{rx, '%s'} ! from_n2", node(1));
    ck_assert_msg(TU_WAIT_UNTIL(!strcmp(rx_got(1), "[from_n2]"), WAIT_MS),
                  "n1 did not get n2's message across a cut n1 -> n2: %s", rx_got(1));
    timing("one-way cut: allowed direction delivers", tu_now_ms() - t0);
    /* "Nothing arrives": n1's message was sent before n2's, which arrived;
     * give it 1 s more (far less than the 20 s tick window) to show up */
    tu_sleep_ms(1000);
    ck_assert_msg(!strcmp(rx_got(2), "[]"), "n2 got %s across the cut n1 -> n2", rx_got(2));

    /* hold mode drops nothing: lifting the block delivers it */
    ck_assert_int_eq(epx_fixture_fix(C, "n1 -> n2"), 0);
    ck_assert_msg(TU_WAIT_UNTIL(!strcmp(rx_got(2), "[from_n1]"), WAIT_MS),
                  "n2 did not get n1's message after FIX: %s", rx_got(2));
    ck_assert_msg(sees(1, 2) && sees(2, 1), "n1/n2 lost each other\n%s", matrix());
}
END_TEST

/* ---- 4. a cut before the nodes ever connected ----------------------- */

START_TEST(before_connect)
{
    ck_assert_int_eq(epx_fixture_cut(C, "n1 n5"), 0);
    long long seq0 = last_seq();
    long long t0 = tu_now_ms();
    ck_assert_str_eq(ping(1, 5), "pang");
    timing("ping across a hold cut (setuptime " SETUPTIME " s)", tu_now_ms() - t0);
    ck_assert_str_eq(ping(5, 1), "pang");
    ck_assert_str_eq(ping(1, 2), "pong");
    ck_assert_msg(!sees(1, 5) && !sees(5, 1), "n1 and n5 met across the cut\n%s", matrix());

    /* both attempts stopped at their first step, the EPMD lookup of the
     * other node, which the daemon held as a network would (each node asks
     * on its own EPMD port): no link was even opened */
    jobj *ev;
    int n = events_after(seq0, &ev);
    int held = 0;
    char dump[8192];
    dump_events(ev, n, dump, sizeof dump);
    for (int k = 0; k < n; k++) {
        const char *type = jget(&ev[k], "type");
        if (!strcmp(type, "epmd_held") &&
            ((!strcmp(jget(&ev[k], "from"), "n1") && !strcmp(jget(&ev[k], "name"), "n5")) ||
             (!strcmp(jget(&ev[k], "from"), "n5") && !strcmp(jget(&ev[k], "name"), "n1"))))
            held++;
        if (!same_pair(jget(&ev[k], "from"), jget(&ev[k], "to"), node(1), node(5)))
            continue;
        ck_assert_msg(strcmp(type, "link_up") != 0, "a link n1-n5 came up across the cut:%s",
                      dump);
    }
    free(ev);
    ck_assert_msg(held >= 2, "expected both lookups held in EVENTS:%s", dump);

    ck_assert_int_eq(epx_fixture_fix(C, "n1 n5"), 0);
    ck_assert_str_eq(ctl("RULES"), "OK []");
    ck_assert_str_eq(ping(1, 5), "pong");
    ck_assert_msg(sees(1, 5) && sees(5, 1), "n1 and n5 not connected after FIX\n%s", matrix());
}
END_TEST

/* ---- 5. a hold cut shorter than the tick window --------------------- */

#define BIG 50000000

START_TEST(short_hold)
{
    char out[512], want[128];
    rx_start(2);
    for (int i = 1; i <= NNODES; i++) {
        evalf(i, out, sizeof out, MON_START);
        ck_assert_str_eq(out, "[]");
    }
    /* the 50 MB binary waits in a process on n1 until told to send it */
    evalf(1, want, sizeof want,
          "Me = self(), P = spawn(fun() -> B = rand:bytes(%d), "
          "Me ! {epx_md5, {byte_size(B), binary:encode_hex(erlang:md5(B))}}, "
          "receive go -> {rx, '%s'} ! B end end), register(big, P), "
          "receive {epx_md5, R} -> R after 30000 -> no_md5 end",
          BIG, node(2));
    ck_assert_msg(want[0] == '{', "n1 made no binary: %s", want);

    ck_assert_int_eq(epx_fixture_cut(C, "n1 n2"), 0);
    long long t0 = tu_now_ms();
    /* the send blocks in n1's distribution buffers and the kernel's, not
     * in this eval */
    evalf(1, out, sizeof out, "big ! go, ok");
    /* "Nothing happens during the cut": hold it 2 s, a fifth of the 10 s
     * tick window, then look that nothing crossed */
    tu_sleep_ms(2000);
    ck_assert_msg(!strcmp(rx_got(2), "[]"), "n2 got %s during the cut", rx_got(2));
    ck_assert_int_eq(epx_fixture_fix(C, "n1 n2"), 0);
    timing("short hold cut lasted", tu_now_ms() - t0);

    /* want is {50000000,<<"HEX">>}; rx keeps [{bin,50000000,<<"HEX">>}] */
    char expect[256];
    snprintf(expect, sizeof expect, "[{bin,%.*s}]", (int)strlen(want) - 2, want + 1);
    long long t1 = tu_now_ms();
    ck_assert_msg(TU_WAIT_UNTIL(strcmp(rx_got(2), "[]") != 0, 30000),
                  "the 50 MB message never arrived after FIX");
    timing("50 MB delivered after FIX", tu_now_ms() - t1);
    ck_assert_str_eq(rx_got(2), expect);

    for (int i = 1; i <= NNODES; i++) {
        evalf(i, out, sizeof out, MON_GET);
        ck_assert_msg(!strcmp(out, "[]"), "n%d saw nodedown %s during a short hold cut", i, out);
    }
    if (epx_fixture_await_connected(C, 1000) != 0)
        ck_abort_msg("mesh broken after a short hold cut: %s", epx_fixture_last_error());
}
END_TEST

/* ---- 6. reset mode -------------------------------------------------- */

START_TEST(reset_mode)
{
    ck_assert_str_eq(ctl("MODE"), "OK reset");
    long long seq0 = last_seq();
    ck_assert_int_eq(epx_fixture_cut(C, "n1 n2"), 0);
    long long t0 = tu_now_ms();
    /* the goal is "well under a second"; a test only bounds it loosely */
    ck_assert_msg(TU_WAIT_UNTIL(!sees(1, 2) && !sees(2, 1), 3000),
                  "n1/n2 still connected 3 s after a reset-mode CUT\n%s", matrix());
    timing("reset CUT to nodedown on both sides", tu_now_ms() - t0);
    if (epx_fixture_await_partition(C, WAIT_MS) != 0)
        ck_abort_msg("partition not reached: %s", epx_fixture_last_error());

    jobj *ev;
    int n = events_after(seq0, &ev), by_daemon = 0;
    for (int k = 0; k < n; k++)
        if (!strcmp(jget(&ev[k], "type"), "link_closed") &&
            same_pair(jget(&ev[k], "from"), jget(&ev[k], "to"), node(1), node(2)))
            by_daemon += !strcmp(jget(&ev[k], "by"), "daemon");
    char dump[8192];
    dump_events(ev, n, dump, sizeof dump);
    free(ev);
    ck_assert_msg(by_daemon >= 1, "no link_closed by the daemon for n1-n2:%s", dump);

    ck_assert_str_eq(ping(1, 2), "pang");
}
END_TEST

/* ---- 7. ISOLATE ----------------------------------------------------- */

START_TEST(isolate)
{
    long long t0 = tu_now_ms();
    ck_assert_int_eq(epx_fixture_isolate(C, "n3"), 0);
    if (epx_fixture_await_partition(C, PARTITION_MS) != 0)
        ck_abort_msg("partition not reached: %s", epx_fixture_last_error());
    timing("ISOLATE to partition (tick 2)", tu_now_ms() - t0);
    unsigned char seen[NNODES * NNODES];
    ck_assert_int_eq(epx_fixture_visibility(C, seen, sizeof seen), 0);
    for (int i = 1; i <= NNODES; i++)
        for (int j = 1; j <= NNODES; j++) {
            int want = i != j && i != 3 && j != 3;
            ck_assert_msg(seen[(i - 1) * NNODES + (j - 1)] == want, "n%d %s n%d\n%s", i,
                          want ? "does not see" : "sees", j, matrix());
        }
    /* "now and later": a new connection from n3 is held too */
    ck_assert_str_eq(ping(3, 4), "pang");
    ck_assert_msg(!sees(3, 4) && !sees(4, 3), "n3 and n4 met\n%s", matrix());
}
END_TEST

/* ---- 8. LINKS during a hold cut ------------------------------------- */

START_TEST(links_held)
{
    /* net_ticktime 10: the nodes give up on a held link after ~7-10 s,
     * LINKS is read within milliseconds of the cut.  First let the links
     * of the mesh set-up settle: one up link per pair. */
    if (!await_clean_links(WAIT_MS))
        ck_abort_msg("LINKS of a fresh mesh is not one up link per pair: %s", ctl("LINKS"));
    ck_assert_int_eq(epx_fixture_cut(C, "n1 n2"), 0);
    ck_assert_int_eq(epx_fixture_cut(C, "n3 -> n4"), 0);
    jobj *l;
    int n = ctl_array("LINKS", &l);
    int pair12 = 0, pair34 = 0;
    for (int k = 0; k < n; k++) {
        const char *from = jget(&l[k], "from"), *to = jget(&l[k], "to");
        const char *state = jget(&l[k], "state"), *held = jget(&l[k], "held");
        if (same_pair(from, to, node(1), node(2))) {
            pair12++;
            ck_assert_msg(!strcmp(state, "held") && !strcmp(held, "both"),
                          "link %s->%s under CUT n1 n2: state %s held %s", from, to, state, held);
        } else if (same_pair(from, to, node(3), node(4))) {
            pair34++;
            const char *want = !strcmp(from, node(3)) ? "out" : "in";
            ck_assert_msg(!strcmp(state, "held") && !strcmp(held, want),
                          "link %s->%s under CUT n3 -> n4: state %s held %s (want %s)", from,
                          to, state, held, want);
        } else {
            ck_assert_msg(!strcmp(state, "up") && !strcmp(held, "none"),
                          "uncut link %s->%s: state %s held %s", from, to, state, held);
        }
    }
    free(l);
    ck_assert_msg(pair12 == 1 && pair34 == 1 && n == NNODES * (NNODES - 1) / 2,
                  "links n1-n2: %d, n3-n4: %d, all: %d in %s", pair12, pair34, n, ctl("LINKS"));
}
END_TEST

/* ---- 9. --events FILE ----------------------------------------------- */

static tu_daemon ED;
static erlnode EN[2];
static char evpath[256];

static void setup_events(void)
{
    memset(&ED, 0, sizeof ED);
    ED.pid = -1;
    memset(EN, 0, sizeof EN);
    snprintf(evpath, sizeof evpath, "/tmp/epx-partition-events.%d.jsonl", (int)getpid());
    unlink(evpath);
}

static void teardown_events(void)
{
    for (int i = 0; i < 2; i++)
        erlnode_close_input(&EN[i]);
    for (int i = 0; i < 2; i++)
        erlnode_stop(&EN[i], 5000);
    if (ED.pid > 0)
        tu_daemon_stop(&ED);
    unlink(evpath);
}

/* The file's lines, each parsed; every line must be one JSON object. */
static int read_event_file(jobj **out)
{
    static char buf[1 << 20];
    FILE *f = fopen(evpath, "r");
    if (!f)
        return 0;
    size_t len = fread(buf, 1, sizeof buf - 3, f);
    fclose(f);
    /* "{..}\n{..}\n" -> "[{..},{..}]" */
    static char arr[(1 << 20) + 4];
    size_t k = 0;
    arr[k++] = '[';
    size_t start = 0;
    int first = 1;
    for (size_t i = 0; i < len; i++) {
        if (buf[i] != '\n')
            continue;
        ck_assert_msg(buf[start] == '{' && i > start && buf[i - 1] == '}',
                      "not a JSON object line in %s: %.*s", evpath, (int)(i - start), buf + start);
        if (!first)
            arr[k++] = ',';
        first = 0;
        memcpy(arr + k, buf + start, i - start);
        k += i - start;
        start = i + 1;
    }
    arr[k++] = ']';
    arr[k] = 0;
    int n = parse_array(arr, k, out);
    ck_assert_msg(n >= 0, "%s does not hold JSON lines: %.300s", evpath, buf);
    return n;
}

START_TEST(events_file)
{
    const char *extra[] = { "--events", evpath, NULL };
    ck_assert_int_eq(tu_daemon_start(&ED, extra), 0);
    char cookie[64];
    ck_assert_int_eq(erlnode_random_cookie(cookie, sizeof cookie), 0);
    erlnode_opts o[2];
    const char *names[2] = { "ev1", "ev2" };
    for (int i = 0; i < 2; i++) {
        memset(&o[i], 0, sizeof o[i]);
        o[i].name = names[i];
        o[i].cookie = cookie;
        o[i].epmd_port = ED.epmd_port;
        o[i].net_ticktime = 2;
    }
    char err[1024];
    if (erlnode_start_many(EN, o, 2, 60000, err, sizeof err) != 0)
        ck_abort_msg("starting 2 nodes: %s", err);
    char out[256];
    ck_assert_int_eq(erlnode_evalf(&EN[0], out, sizeof out, 30000,
                                   "net_kernel:connect_node('%s')", EN[1].node), 0);
    ck_assert_str_eq(out, "true");
    char reply[256];
    ck_assert_int_eq(tu_ctl(ED.control_port, "CUT ev1 ev2", reply, sizeof reply), 0);
    ck_assert_str_eq(reply, "OK");

    jobj *ev = NULL;
    int n = 0, reg1 = 0, reg2 = 0, up = 0, cut = 0;
    long long deadline = tu_now_ms() + WAIT_MS;
    for (;;) {
        free(ev);
        ev = NULL;
        n = read_event_file(&ev);
        reg1 = reg2 = up = cut = 0;
        for (int k = 0; k < n; k++) {
            const char *type = jget(&ev[k], "type");
            ck_assert_msg(jnum(&ev[k], "seq") == k + 1, "event line %d has seq %s", k + 1,
                          jget(&ev[k], "seq"));
            if (!strcmp(type, "registered")) {
                reg1 += !strcmp(jget(&ev[k], "name"), "ev1");
                reg2 += !strcmp(jget(&ev[k], "name"), "ev2");
            } else if (!strcmp(type, "link_up")) {
                up += same_pair(jget(&ev[k], "from"), jget(&ev[k], "to"), EN[0].node,
                                EN[1].node);
            } else if (!strcmp(type, "cut")) {
                cut += !strcmp(jget(&ev[k], "spec"), "ev1 ev2");
            }
        }
        if ((reg1 && reg2 && up && cut) || tu_now_ms() > deadline)
            break;
        tu_sleep_ms(50);
    }
    free(ev);
    ck_assert_msg(reg1 == 1 && reg2 == 1 && up >= 1 && cut == 1,
                  "events file: registered ev1 %d, ev2 %d, link_up %d, cut %d", reg1, reg2, up,
                  cut);

    /* the file and EVENTS tell the same story */
    ck_assert_int_eq(tu_ctl(ED.control_port, "EVENTS", ctlbuf, sizeof ctlbuf), 0);
    jobj *mem;
    ck_assert_msg(!strncmp(ctlbuf, "OK [", 4), "EVENTS: %.200s", ctlbuf);
    int m = parse_array(ctlbuf + 3, strlen(ctlbuf + 3), &mem);
    ck_assert_int_ge(m, 1);
    jobj *file;
    int nf = read_event_file(&file);
    ck_assert_int_ge(nf, m);
    for (int k = 0; k < m; k++)
        ck_assert_str_eq(jget(&mem[k], "type"), jget(&file[k], "type"));
    free(mem);
    free(file);
}
END_TEST

Suite *partition_suite(void)
{
    Suite *s = suite_create("partition");
    tu_fixture_case cases[] = {
        { "cut_islands", cut_islands, setup_tick2, teardown_cluster },
        { "heal", heal, setup_tick2, teardown_cluster },
        { "one_way", one_way, setup_tick20, teardown_cluster },
        { "before_connect", before_connect, setup_nomesh, teardown_cluster },
        { "short_hold", short_hold, setup_tick10, teardown_cluster },
        { "reset_mode", reset_mode, setup_reset, teardown_cluster },
        { "isolate", isolate, setup_tick2, teardown_cluster },
        { "links_held", links_held, setup_tick10, teardown_cluster },
        { "events_file", events_file, setup_events, teardown_events },
    };
    tu_add_fixture_cases(s, cases, sizeof cases / sizeof cases[0], TCASE_S);
    return s;
}
