/* Suite "chaos": timed faults, FLAP and the nemesis against a real daemon,
 * with real OTP nodes where the nodes' view is the point.
 *
 *   refusals_change_nothing  bad DELAY/RATE/FLAP/NEMESIS/FOR lines get ERR and
 *                            leave RULES and FAULTS as they were (no nodes)
 *   timed_fault_expires      DELAY ... FOR 300ms is gone by itself with an
 *                            "expired" event; a lasting DELAY under it is back
 *   heal_stops_all           HEAL removes rules, faults, flaps and the schedule
 *   cut_for_heals            CUT n1 n2 FOR 2s (reset mode): nodedown at once, the
 *                            block gone after 2 s (not before), nodes meet again
 *   flap_pattern             FLAP n1 n2 UP 1.5s DOWN 1.5s FOR 7s: n1 sees
 *                            nodedown/nodeup of n2 strictly in turn, at least
 *                            twice each, starting down, ending up
 *   nemesis_shapes           5 nodes: halves gives n1,n2 | n3,n4,n5; the nodes
 *                            see exactly that; majorities-ring: every node sees
 *                            a majority and no two the same; same seed, same reply
 *   nemesis_schedule_replays START ... SEED 9 FOR 2s twice: the same sequence of
 *                            partitions, each step an event; ends healed
 *   nemesis_seven            7 nodes: halves gives n1..n3 | n4..n7, and the nodes see
 *                            it; majorities-ring: a majority each, no two alike
 *   config_file              --config FILE runs its lines before READY; a bad line
 *                            stops the start with exit 2, naming the line; so does
 *                            a registration of the shim's (APPLISTEN, APPUDP) */
#include <check.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "epx_fixture.h"
#include "testutil.h"
#include "tucase.h"

#define TCASE_S 120
#define WAIT_MS 20000

static epx_cluster *C;
static tu_daemon D;
static char buf[1 << 20];

static const char *node(int i)
{
    const char *n = epx_fixture_node(C, i);
    ck_assert_msg(n != NULL, "no node %d", i);
    return n;
}

/* A control command on the cluster's daemon that must answer OK. */
static const char *ctl(const char *cmd)
{
    if (epx_fixture_control(C, cmd, buf, sizeof buf) != 0)
        ck_abort_msg("control %s: %s", cmd, epx_fixture_last_error());
    return buf;
}

/* A command on the bare daemon D; the reply line in buf. */
static const char *dctl(const char *cmd)
{
    ck_assert_int_eq(tu_ctl(D.control_port, cmd, buf, sizeof buf), 0);
    return buf;
}

static void eval_ok(int i, const char *expr, char *out, size_t outlen)
{
    if (epx_fixture_eval(C, node(i), expr, out, outlen) != 0)
        ck_abort_msg("eval on %s of `%s`: %s", node(i), expr, epx_fixture_last_error());
}

static void start(int n, int mode)
{
    epx_options o = { 0 };
    o.mode = mode;
    o.no_preload = 1;
    C = epx_fixture_start_cluster(n, &o);
    ck_assert_msg(C != NULL, "cluster: %s", epx_fixture_last_error());
}

static void setup_daemon(void)
{
    ck_assert_int_eq(tu_daemon_start(&D, NULL), 0);
}

static void teardown_daemon(void)
{
    tu_daemon_stop(&D);
}

static void setup2(void) { start(2, EPX_MODE_RESET); }
static void setup5(void) { start(5, EPX_MODE_HOLD); }
static void teardown(void)
{
    epx_fixture_stop_cluster(C);
    C = NULL;
}

/* ---- no nodes ---------------------------------------------------------- */

START_TEST(refusals_change_nothing)
{
    dctl("CUT a b");
    dctl("DELAY a b 50ms");
    char rules[4096], faults[4096];
    snprintf(rules, sizeof rules, "%s", dctl("RULES"));
    snprintf(faults, sizeof faults, "%s", dctl("FAULTS"));
    const char *bad[] = {
        "DELAY a b", "DELAY a b 50", "DELAY a 50ms", "RATE a b 1MB", "RESET a b AFTER never",
        "SLICE a b 8B", "SLOWCLOSE a b", "CUT a b FOR 0s", "CUT a b FOR soon", "CUT a FOR 2s",
        "DELAY a b 50ms FOR x", "FLAP a b UP 1s", "FLAP a UP 1s DOWN 1s", "NEMESIS",
        "NEMESIS SHAPE squares", "NEMESIS SHAPE halves", "NEMESIS START halves EVERY 1s",
        "ISOLATE a EXCEPT FOR 2s", "SPLIT a -> b FOR 2s", "CLEAR a", "FAULTS x",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        dctl(bad[i]);
        ck_assert_msg(!strncmp(buf, "ERR ", 4), "%s answered %s", bad[i], buf);
        ck_assert_str_eq(dctl("RULES"), rules);
        ck_assert_str_eq(dctl("FAULTS"), faults);
    }
}
END_TEST

START_TEST(timed_fault_expires)
{
    ck_assert_str_eq(dctl("DELAY a -> b 50ms"), "OK not registered: a,b");
    dctl("DELAY a -> b 500ms FOR 300ms");
    ck_assert_ptr_nonnull(strstr(dctl("FAULTS"), "\"delay_ms\":500"));
    long long t0 = tu_now_ms();
    ck_assert(TU_WAIT_UNTIL(strstr(dctl("FAULTS"), "\"delay_ms\":50,"), 5000));
    ck_assert_int_ge(tu_now_ms() - t0, 250);
    ck_assert_ptr_nonnull(strstr(dctl("FAULTS"), "\"timed\":[]"));
    ck_assert_ptr_nonnull(strstr(dctl("EVENTS"), "\"type\":\"expired\",\"command\":\"DELAY a -> b 500ms FOR 300ms\""));
}
END_TEST

START_TEST(heal_stops_all)
{
    dctl("CUT a b FOR 1h");
    dctl("RATE a b 1MB/s");
    dctl("FLAP c d UP 1s DOWN 1s");
    dctl("NEMESIS START halves EVERY 1s HEAL 500ms");
    ck_assert_ptr_nonnull(strstr(dctl("FAULTS"), "\"nemesis\":{"));
    ck_assert_str_eq(dctl("HEAL"), "OK");
    ck_assert_str_eq(dctl("RULES"), "OK []");
    ck_assert_str_eq(dctl("FAULTS"), "OK {\"links\":[],\"timed\":[],\"flaps\":[],\"nemesis\":null}");
    /* and nothing comes back by itself */
    tu_sleep_ms(1200);
    ck_assert_str_eq(dctl("RULES"), "OK []");
}
END_TEST

/* ---- real nodes --------------------------------------------------------- */

START_TEST(cut_for_heals)
{
    char cmd[256], out[256];
    long long t0 = tu_now_ms();
    ck_assert_int_eq(epx_fixture_cut_for(C, "n1 n2", 2000), 0);   /* libepx's CUT ... FOR */
    ck_assert_int_eq(epx_fixture_await_partition(C, WAIT_MS), 0);
    ck_assert_int_eq(epx_fixture_sees(C, node(1), node(2)), 0);
    ck_assert(TU_WAIT_UNTIL(!strcmp(ctl("RULES"), "OK []"), WAIT_MS));
    ck_assert_int_ge(tu_now_ms() - t0, 1900);
    ck_assert_ptr_nonnull(strstr(ctl("EVENTS"), "\"type\":\"expired\""));
    ck_assert_int_eq(epx_fixture_connect_all(C), 0);
    ck_assert_int_eq(epx_fixture_await_connected(C, WAIT_MS), 0);
    snprintf(cmd, sizeof cmd, "net_adm:ping('%s')", node(2));
    eval_ok(1, cmd, out, sizeof out);
    ck_assert_str_eq(out, "pong");
}
END_TEST

START_TEST(flap_pattern)
{
    char expr[1024], out[4096];
    /* on n1: a recorder of n2's nodeup/nodedown, and a pinger that makes
     * n1 reconnect as soon as the pair is up again */
    snprintf(expr, sizeof expr,
             "begin Me = self(), spawn(fun() -> register(flaprec, self()), "
             "net_kernel:monitor_nodes(true), Me ! ready, "
             "(fun L(A) -> receive {nodeup, '%s'} -> L([up|A]); {nodedown, '%s'} -> L([down|A]); "
             "{get, F} -> F ! {log, lists:reverse(A)}, L(A); _ -> L(A) end end)([]) end), "
             "receive ready -> ok end, "
             "spawn(fun P() -> net_adm:ping('%s'), timer:sleep(100), P() end), ok end",
             node(2), node(2), node(2));
    eval_ok(1, expr, out, sizeof out);
    ck_assert_int_eq(epx_fixture_flap(C, "n1 n2", 1500, 1500, 7000), 0);
    ck_assert_ptr_nonnull(strstr(ctl("FAULTS"), "\"state\":\"down\""));
    /* the flap ends fixed; the pinger brings n2 back */
    ck_assert(TU_WAIT_UNTIL(strstr(ctl("FAULTS"), "\"flaps\":[]") != NULL, 20000));
    ck_assert_str_eq(ctl("RULES"), "OK []");
    ck_assert(TU_WAIT_UNTIL(epx_fixture_sees(C, node(1), node(2)) == 1, WAIT_MS));
    eval_ok(1, "begin flaprec ! {get, self()}, receive {log, L} -> L after 5000 -> timeout end end",
            out, sizeof out);
    /* [down,up,down,up,...,up] */
    ck_assert_msg(!strncmp(out, "[down,up,down,up", 16), "pattern %s", out);
    int downs = 0, ups = 0;
    const char *p = out + 1;
    const char *expect = "down";
    while (*p && *p != ']') {
        size_t n = strlen(expect);
        ck_assert_msg(!strncmp(p, expect, n), "not in turn at '%s' in %s", p, out);
        if (*expect == 'd')
            downs++;
        else
            ups++;
        p += n;
        if (*p == ',')
            p++;
        expect = *expect == 'd' ? "up" : "down";
    }
    ck_assert_int_ge(downs, 2);
    ck_assert_int_eq(downs, ups);
    ck_assert_ptr_nonnull(strstr(ctl("EVENTS"), "\"type\":\"flap_end\""));
}
END_TEST

/* The JSON after "OK " of a NEMESIS SHAPE, copied out. */
static void shape(const char *args, char *out, size_t outlen)
{
    char cmd[256];
    snprintf(cmd, sizeof cmd, "NEMESIS SHAPE %s", args);
    ctl(cmd);
    ck_assert_msg(!strncmp(buf, "OK {", 4), "%s: %s", cmd, buf);
    size_t n = strlen(buf + 3);
    ck_assert_uint_lt(n, outlen);
    memcpy(out, buf + 3, n + 1);
}

START_TEST(nemesis_shapes)
{
    static char a[65536], b[65536];
    ck_assert_int_eq(epx_fixture_nemesis(C, "halves", 1, 0, a, sizeof a), 0);
    ck_assert_msg(strstr(a, "\"islands\":[[\"n1\",\"n2\"],[\"n3\",\"n4\",\"n5\"]]"), "%s", a);
    ck_assert_int_eq(epx_fixture_await_partition(C, WAIT_MS), 0);
    ck_assert_int_eq(epx_fixture_sees(C, node(1), node(2)), 1);
    ck_assert_int_eq(epx_fixture_sees(C, node(1), node(3)), 0);
    ck_assert_int_eq(epx_fixture_sees(C, node(4), node(5)), 1);
    ctl("HEAL");
    ck_assert_int_eq(epx_fixture_connect_all(C), 0);
    ck_assert_int_eq(epx_fixture_await_connected(C, WAIT_MS), 0);

    shape("majorities-ring SEED 5", a, sizeof a);
    ck_assert_ptr_nonnull(strstr(a, "\"sees\":{"));
    ck_assert_int_eq(epx_fixture_await_partition(C, WAIT_MS), 0);
    unsigned char seen[25];
    ck_assert_int_eq(epx_fixture_visibility(C, seen, sizeof seen), 0);
    unsigned rows[5];
    for (int i = 0; i < 5; i++) {
        int count = 1;   /* itself */
        rows[i] = 1u << i;
        for (int j = 0; j < 5; j++)
            if (seen[i * 5 + j]) {
                count++;
                rows[i] |= 1u << j;
            }
        ck_assert_msg(count >= 3, "n%d sees %d of 5, no majority", i + 1, count);
    }
    for (int i = 0; i < 5; i++)
        for (int j = i + 1; j < 5; j++)
            ck_assert_msg(rows[i] != rows[j], "n%d and n%d see the same majority", i + 1, j + 1);
    ctl("HEAL");
    /* the same seed, the same partition */
    shape("random-halves SEED 77", a, sizeof a);
    ctl("HEAL");
    shape("random-halves SEED 77", b, sizeof b);
    ck_assert_str_eq(a, b);
    ctl("HEAL");
}
END_TEST

/* The "nemesis_partition" events' islands after seq, in order, into out. */
static int partitions(char *out, size_t outlen)
{
    const char *ev = ctl("EVENTS");
    size_t used = 0;
    int n = 0;
    out[0] = 0;
    for (const char *p = ev; (p = strstr(p, "\"type\":\"nemesis_partition\"")); p++) {
        const char *is = strstr(p, "\"islands\":");
        const char *end = is ? strstr(is, "]]") : NULL;
        if (!end)
            break;
        used += (size_t)snprintf(out + used, outlen - used, "%.*s;", (int)(end + 2 - is), is);
        n++;
    }
    return n;
}

START_TEST(nemesis_schedule_replays)
{
    static char first[65536], second[65536];
    ck_assert_ptr_nonnull(strstr(ctl("NEMESIS START random-halves EVERY 500ms HEAL 250ms SEED 9 FOR 2s"),
                                 "\"seed\":9"));
    ck_assert(TU_WAIT_UNTIL(strstr(ctl("FAULTS"), "\"nemesis\":null") != NULL, WAIT_MS));
    ck_assert_str_eq(ctl("RULES"), "OK []");
    int n1 = partitions(first, sizeof first);
    ck_assert_int_ge(n1, 3);
    ck_assert_ptr_nonnull(strstr(ctl("EVENTS"), "\"type\":\"nemesis_heal\""));
    ck_assert_ptr_nonnull(strstr(buf, "\"type\":\"nemesis_end\""));
    ck_assert_int_eq(epx_fixture_nemesis_start(C, "random-halves", 500, 250, 9, 2000), 0);
    ck_assert(TU_WAIT_UNTIL(strstr(ctl("FAULTS"), "\"nemesis\":null") != NULL, WAIT_MS));
    int n2 = partitions(second, sizeof second);
    ck_assert_int_eq(n2, 2 * n1);
    /* the second run's steps repeat the first's */
    ck_assert_msg(!strcmp(second + strlen(first), first), "first %s\nthen %s", first,
                  second + strlen(first));
}
END_TEST

static void setup7(void) { start(7, EPX_MODE_HOLD); }

START_TEST(nemesis_seven)
{
    static char a[65536];
    shape("halves SEED 1", a, sizeof a);
    ck_assert_msg(strstr(a, "\"islands\":[[\"n1\",\"n2\",\"n3\"],[\"n4\",\"n5\",\"n6\",\"n7\"]]"),
                  "%s", a);
    ck_assert_int_eq(epx_fixture_await_partition(C, WAIT_MS), 0);
    ck_assert_int_eq(epx_fixture_sees(C, node(3), node(4)), 0);
    ck_assert_int_eq(epx_fixture_sees(C, node(4), node(7)), 1);
    ctl("HEAL");
    ck_assert_int_eq(epx_fixture_connect_all(C), 0);
    ck_assert_int_eq(epx_fixture_await_connected(C, WAIT_MS), 0);
    shape("majorities-ring SEED 11", a, sizeof a);
    ck_assert_int_eq(epx_fixture_await_partition(C, WAIT_MS), 0);
    unsigned char seen[49];
    ck_assert_int_eq(epx_fixture_visibility(C, seen, sizeof seen), 0);
    unsigned rows[7];
    for (int i = 0; i < 7; i++) {
        int count = 1;
        rows[i] = 1u << i;
        for (int j = 0; j < 7; j++)
            if (seen[i * 7 + j]) {
                count++;
                rows[i] |= 1u << j;
            }
        ck_assert_msg(count >= 4, "n%d sees %d of 7, no majority", i + 1, count);
    }
    for (int i = 0; i < 7; i++)
        for (int j = i + 1; j < 7; j++)
            ck_assert_msg(rows[i] != rows[j], "n%d and n%d see the same majority", i + 1, j + 1);
}
END_TEST

/* A --config file whose text must stop the start before READY: the
 * daemon's stderr must hold want. */
static void config_refused(const char *path, const char *text, const char *want)
{
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fputs(text, f);
    fclose(f);
    const char *extra[] = { "--config", path, NULL };
    tu_daemon d;
    memset(&d, 0, sizeof d);
    ck_assert_int_ne(tu_daemon_start(&d, extra), 0);
    char out[4096];
    FILE *log = fopen(d.log, "r");
    ck_assert_ptr_nonnull(log);
    size_t n = fread(out, 1, sizeof out - 1, log);
    out[n] = 0;
    fclose(log);
    unlink(d.log);
    ck_assert_msg(strstr(out, want), "want '%s' in stderr: %s", want, out);
}

START_TEST(config_file)
{
    char path[256];
    snprintf(path, sizeof path, "/tmp/epx-chaos-config.%d", (int)getpid());
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fputs("# faults declared up front\nMODE reset\n\nDELAY a b 20ms\nCUT c d FOR 1h\n", f);
    fclose(f);
    const char *extra[] = { "--config", path, NULL };
    tu_daemon d;
    ck_assert_int_eq(tu_daemon_start(&d, extra), 0);
    char out[4096];
    ck_assert_int_eq(tu_ctl(d.control_port, "MODE", out, sizeof out), 0);
    ck_assert_str_eq(out, "OK reset");
    ck_assert_int_eq(tu_ctl(d.control_port, "FAULTS", out, sizeof out), 0);
    ck_assert_ptr_nonnull(strstr(out, "{\"from\":\"a\",\"to\":\"b\",\"delay_ms\":20"));
    ck_assert_ptr_nonnull(strstr(out, "\"command\":\"CUT c d FOR 1h\""));
    tu_daemon_stop(&d);
    /* a refused line: its stderr names the file, the line and the error */
    config_refused(path, "DELAY a b 20ms\nDELAY a b 20\n", ":2: DELAY a b 20: ERR DELAY:");
    /* the shim's registrations end with the line connection that made
     * them: a config line has none, and is refused */
    config_refused(path, "APPLISTEN n1@h 5555\n", ":1: APPLISTEN has no place in a config file");
    config_refused(path, "APPUDP n1@h 5555\n",
                   ":1: APPUDP n1@h 5555: ERR APPUDP needs a line connection");
    unlink(path);
}
END_TEST

Suite *chaos_suite(void)
{
    Suite *s = suite_create("chaos");
    tu_fixture_case cases[] = {
        { "refusals_change_nothing", refusals_change_nothing, setup_daemon, teardown_daemon },
        { "timed_fault_expires", timed_fault_expires, setup_daemon, teardown_daemon },
        { "heal_stops_all", heal_stops_all, setup_daemon, teardown_daemon },
        { "cut_for_heals", cut_for_heals, setup2, teardown },
        { "flap_pattern", flap_pattern, setup2, teardown },
        { "nemesis_shapes", nemesis_shapes, setup5, teardown },
        { "nemesis_schedule_replays", nemesis_schedule_replays, setup5, teardown },
        { "nemesis_seven", nemesis_seven, setup7, teardown },
        { "config_file", config_file, NULL, NULL },
    };
    tu_add_fixture_cases(s, cases, sizeof cases / sizeof cases[0], TCASE_S);
    return s;
}
