/* preload: the LD_PRELOAD shim (fixture/preload.c) and app links, with real
 * `erl` nodes and real programs under the shim.
 *
 * Two nodes n1, n2 started by libepx (the shim is on by default): an echo
 * server over the nodes' own TCP on n2 (gen_tcp on inet_drv, or the socket
 * module: tests/erl/epx_apptest.erl) and a client on n1.  A split in hold
 * mode stalls the echo and HEAL delivers every byte once and in order; in
 * reset mode the client sees the connection closed; a one-way cut holds
 * one direction only; ISOLATE holds; a connection opened during a cut
 * obeys it; LINKS shows the app link with kind and port, and dist links
 * with theirs.  Programs that are not Erlang (tests/tools/apptool.c) run
 * as members through epx_fixture_spawn and `epx-cluster exec`: a C server
 * cut from a node, a non-blocking C client (EINPROGRESS, poll, SO_ERROR,
 * getpeername).  What must stay direct stays direct: a connection to a
 * port no member listens on, a self-connection, a node without the shim.
 * Unit tests of the APP* argument parser (proxy/app_parse.c) come first. */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "app_parse.h"
#include "epx_fixture.h"
#include "testutil.h"

#define WAIT_MS  30000    /* conditions on a loaded 2-core machine */
#define STALL_MS 1500     /* how long a held echo must stay away */

static epx_cluster *C;
static pid_t exec_pid;    /* an `epx-cluster exec` child, if a test made one */
static char tools[1024];  /* build/tests/tools (beside the runner) */
static char tmp[512];     /* the test's own scratch directory */

/* ---- helpers ------------------------------------------------------------ */

static void find_tools(void)
{
    char exe[900];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    ck_assert_msg(n > 0, "readlink /proc/self/exe: %s", strerror(errno));
    exe[n] = 0;
    snprintf(tools, sizeof tools, "%s/tests/tools", dirname(exe));
}

static void setup(void)
{
    find_tools();
    C = NULL;
    exec_pid = 0;
    snprintf(tmp, sizeof tmp, "%s/epx-preload-test.XXXXXX",
             getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    ck_assert_msg(mkdtemp(tmp) != NULL, "mkdtemp: %s", strerror(errno));
}

static void teardown(void)
{
    if (exec_pid > 0) {
        kill(exec_pid, SIGTERM);
        waitpid(exec_pid, NULL, 0);
        exec_pid = 0;
    }
    epx_fixture_stop_cluster(C);
    C = NULL;
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp);
    if (tmp[0] && system(cmd) != 0) {
        /* leftovers in TMPDIR only */
    }
}

static epx_cluster *start_opts(int mode, int no_preload)
{
    const char *paths[] = { tools, NULL };
    epx_options o;
    memset(&o, 0, sizeof o);
    o.code_paths = paths;
    o.mode = mode;
    o.no_preload = no_preload;
    o.timeout_ms = 60000;
    C = epx_fixture_start_cluster(2, &o);
    ck_assert_msg(C != NULL, "start: %s", epx_fixture_last_error());
    return C;
}

static epx_cluster *start(int mode)
{
    return start_opts(mode, 0);
}

/* Evaluate on node; the printed result in a static buffer.  Fails the test
 * on an error. */
__attribute__((format(printf, 2, 3))) static const char *ev(const char *node, const char *fmt, ...)
{
    static char out[8][4096];
    static int k;
    char expr[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(expr, sizeof expr, fmt, ap);
    va_end(ap);
    char *o = out[k++ % 8];
    ck_assert_msg(epx_fixture_eval(C, node, expr, o, 4096) == 0, "%s: %s: %s", node, expr,
                  epx_fixture_last_error());
    return o;
}

#define ck_ev(node, want, ...)                                                            \
    do {                                                                                  \
        const char *got_ = ev(node, __VA_ARGS__);                                         \
        ck_assert_msg(strcmp(got_, want) == 0, "%s: got %s, expected %s", node, got_, want); \
    } while (0)

static int ctl(const char *cmd, char *out, size_t len)
{
    return epx_fixture_control(C, cmd, out, len);
}

/* The LINKS entry of the app link to port whose text contains `also`
 * (NULL: any), copied into out.  1 if there is one. */
static int app_link(int port, const char *also, char *out, size_t len)
{
    static char links[65536];
    if (ctl("LINKS", links, sizeof links) < 0)
        return 0;
    char key[64];
    snprintf(key, sizeof key, "\"kind\":\"app\",\"port\":%d,", port);
    for (char *p = strchr(links, '{'); p; p = strchr(p + 1, '{')) {
        char *end = strchr(p, '}');
        if (!end)
            break;
        size_t n = (size_t)(end - p + 1);
        snprintf(out, len, "%.*s", (int)n, p);
        if (strstr(out, key) && (!also || strstr(out, also)))
            return 1;
    }
    return 0;
}

static int echo_server(const char *node, const char *backend)
{
    const char *p = ev(node, "epx_apptest:server(%s).", backend);
    int port = atoi(p);
    ck_assert_msg(port > 0, "server on %s: %s", node, p);
    return port;
}

/* The client `name` on n1 sends text and expects it back within 20 s. */
static void echo_ok(const char *name, const char *text)
{
    ck_ev("n1", "ok", "epx_apptest:send(%s, <<\"%s\">>).", name, text);
    char want[256];
    snprintf(want, sizeof want, "{ok,<<\"%s\">>}", text);
    ck_ev("n1", want, "epx_apptest:recv(%s, %zu, 20000).", name, strlen(text));
}

/* Nothing comes back for STALL_MS. */
static void echo_stalls(const char *name)
{
    ck_ev("n1", "{error,timeout}", "epx_apptest:recv(%s, 1, %d).", name, STALL_MS);
}

/* Wait for the app link to port to show `what` (e.g. "\"state\":\"held\""). */
static void await_link(int port, const char *what)
{
    char l[2048] = "";
    ck_assert_msg(TU_WAIT_UNTIL(app_link(port, what, l, sizeof l), WAIT_MS),
                  "no app link to port %d with %s; last: %s", port, what, l);
}

static int file_int(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    int v = -1;
    if (fscanf(f, "%d", &v) != 1)
        v = -1;
    fclose(f);
    return v;
}

static int file_exists(const char *path)
{
    return access(path, F_OK) == 0;
}

/* ---- APP* argument parser (pure) ---------------------------------------- */

static int parse(const char *s, int nports, app_args *a, char *err)
{
    return app_parse(s, strlen(s), nports, a, err, 128);
}

START_TEST(parse_listen_args)
{
    app_args a;
    char err[128];
    ck_assert_int_eq(parse("n1@localhost 4242", 1, &a, err), 0);
    ck_assert_str_eq(a.node, "n1@localhost");
    ck_assert_int_eq(a.port, 4242);
    ck_assert_int_eq(parse("db\t65535", 1, &a, err), 0);
    ck_assert_int_eq(a.port, 65535);
    const char *bad[] = { "", "n1", "n1 0", "n1 65536", "n1 12x", "n1 -1", "n1 1 2",
                          "n* 80", "a,b 80", "a>b 80", "@x 80", "n1 999999" };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        ck_assert_msg(parse(bad[i], 1, &a, err) == -1, "'%s' was taken", bad[i]);
    /* the message says what is wrong */
    parse("n1 0", 1, &a, err);
    ck_assert_msg(strstr(err, "port") != NULL, "%s", err);
}
END_TEST

START_TEST(parse_connect_args)
{
    app_args a;
    char err[128];
    ck_assert_int_eq(parse("n1@h 80 40000 127.0.0.1", 2, &a, err), 0);
    ck_assert_int_eq(a.port, 80);
    ck_assert_int_eq(a.src_port, 40000);
    ck_assert_int_eq(a.dest.ss_family, AF_INET);
    ck_assert_int_eq(ntohs(((struct sockaddr_in *)&a.dest)->sin_port), 80);
    ck_assert_int_eq(parse("db 80 40000 ::1", 2, &a, err), 0);
    ck_assert_int_eq(a.dest.ss_family, AF_INET6);
    ck_assert_int_eq(parse("db 80 40000 ::ffff:127.0.0.9", 2, &a, err), 0);
    ck_assert_int_eq(parse("db 80 40000 127.1.2.3", 2, &a, err), 0);
    /* the daemon connects only to loopback: never an open relay */
    ck_assert_int_eq(parse("db 80 40000 10.0.0.1", 2, &a, err), -1);
    ck_assert_msg(strstr(err, "loopback") != NULL, "%s", err);
    ck_assert_int_eq(parse("db 80 40000 ::ffff:10.0.0.1", 2, &a, err), -1);
    ck_assert_int_eq(parse("db 80 40000 localhost", 2, &a, err), -1);
    ck_assert_int_eq(parse("db 80 40000", 2, &a, err), -1);
    ck_assert_int_eq(parse("db 80 0 127.0.0.1", 2, &a, err), -1);
    ck_assert_int_eq(parse("db 80 40000 127.0.0.1 x", 2, &a, err), -1);
    /* a NUL inside the address word would cut it short (found by fuzz_ctl) */
    static const char nul[] = "db 80 40000 127.0.0.1\0junk";
    ck_assert_int_eq(app_parse(nul, sizeof nul - 1, 2, &a, err, 128), -1);
}
END_TEST

/* ---- the daemon's side alone: APP* commands over the control port ------- */

START_TEST(registrations_end_with_their_connection)
{
    tu_daemon d;
    ck_assert_int_eq(tu_daemon_start(&d, NULL), 0);
    int fd = tu_connect(d.control_port);
    ck_assert_int_ge(fd, 0);
    const char *cmds = "APPLISTEN srv 5555\n";
    ck_assert_int_eq(tu_write_all(fd, cmds, strlen(cmds)), 0);
    char line[3];
    ck_assert_int_eq(tu_read_exact(fd, line, 3, 5000), 0);
    ck_assert_int_eq(memcmp(line, "OK\n", 3), 0);
    char r[1024];
    ck_assert_int_eq(tu_ctl(d.control_port, "APPROUTE cli 5555", r, sizeof r), 0);
    ck_assert_msg(strstr(r, "\"route\":true") && strstr(r, "\"to\":\"srv\""), "%s", r);
    /* the listener itself connecting to its own port stays direct */
    ck_assert_int_eq(tu_ctl(d.control_port, "APPROUTE srv 5555", r, sizeof r), 0);
    ck_assert_msg(strstr(r, "\"route\":false"), "%s", r);
    /* the daemon's own ports are never app ports */
    char cmd[64];
    snprintf(cmd, sizeof cmd, "APPROUTE cli %d", d.epmd_port);
    ck_assert_int_eq(tu_ctl(d.control_port, cmd, r, sizeof r), 0);
    ck_assert_msg(strstr(r, "\"route\":false"), "%s", r);
    /* a connection that registers and leaves takes its registration along */
    ck_assert_int_eq(tu_ctl(d.control_port, "APPLISTEN x 6000", r, sizeof r), 0);
    ck_assert_str_eq(r, "OK");
    ck_assert_msg(TU_WAIT_UNTIL(tu_ctl(d.control_port, "APPROUTE cli 6000", r, sizeof r) == 0 &&
                                    strstr(r, "\"route\":false"),
                                5000),
                  "x's registration outlived its connection: %s", r);
    /* bad arguments are refused with the command's name */
    ck_assert_int_eq(tu_ctl(d.control_port, "APPROUTE cli 0", r, sizeof r), 0);
    ck_assert_msg(!strncmp(r, "ERR APPROUTE", 12), "%s", r);
    close(fd);
    ck_assert_msg(TU_WAIT_UNTIL(tu_ctl(d.control_port, "APPROUTE cli 5555", r, sizeof r) == 0 &&
                                    strstr(r, "\"route\":false"),
                                5000),
                  "the registration outlived its connection: %s", r);
    /* an announcement for a port nobody listens on is refused */
    ck_assert_int_eq(tu_ctl(d.control_port, "APPCONNECT cli 5555 40000 127.0.0.1", r, sizeof r),
                     0);
    ck_assert_msg(!strncmp(r, "ERR", 3), "%s", r);
    tu_daemon_stop(&d);
}
END_TEST

/* ---- gen_tcp between nodes ---------------------------------------------- */

START_TEST(gen_tcp_hold_and_heal)
{
    start(EPX_MODE_HOLD);
    int port = echo_server("n2", "gen_tcp");
    ck_ev("n1", "ok", "epx_apptest:connect(c1, %d, gen_tcp).", port);
    echo_ok("c1", "before");
    /* LINKS: the app link with its kind, port and names, dist links as dist */
    char l[2048];
    ck_assert_msg(app_link(port, "\"from\":\"n1@localhost\",\"to\":\"n2@localhost\"", l,
                           sizeof l),
                  "no app link n1 -> n2 to port %d in LINKS", port);
    ck_assert_msg(strstr(l, "\"state\":\"up\""), "%s", l);
    char links[65536];
    ck_assert_int_eq(ctl("LINKS", links, sizeof links), 0);
    ck_assert_msg(strstr(links, "\"kind\":\"dist\""), "no dist link in %s", links);
    /* what the client asked for is what getpeername says */
    char want[64];
    snprintf(want, sizeof want, "{ok,{{127,0,0,1},%d}}", port);
    ck_ev("n1", want, "epx_apptest:peer(c1).");

    ck_assert_int_eq(epx_fixture_split(C, "n1 n2"), 0);
    await_link(port, "\"held\":\"both\"");
    ck_ev("n1", "ok", "epx_apptest:send(c1, epx_apptest:pattern(3, 200000)).");
    echo_stalls("c1");
    ck_assert_int_eq(epx_fixture_heal(C), 0);
    /* every byte, once, in order: exactly the pattern and nothing after it */
    ck_ev("n1", "true", "epx_apptest:recv(c1, 200000, 20000) =:= {ok, epx_apptest:pattern(3, 200000)}.");
    ck_ev("n1", "{error,timeout}", "epx_apptest:recv(c1, 1, 200).");
    echo_ok("c1", "after");
}
END_TEST

START_TEST(gen_tcp_reset)
{
    start(EPX_MODE_RESET);
    int port = echo_server("n2", "gen_tcp");
    ck_ev("n1", "ok", "epx_apptest:connect(c1, %d, gen_tcp).", port);
    echo_ok("c1", "x");
    long long t0 = tu_now_ms();
    ck_assert_int_eq(epx_fixture_split(C, "n1 n2"), 0);
    /* closed or reset, long before the recv's own 10 s */
    const char *r = ev("n1", "epx_apptest:recv(c1, 1, 10000).");
    long long took = tu_now_ms() - t0;
    ck_assert_msg(!strcmp(r, "{error,closed}") || !strcmp(r, "{error,econnreset}"),
                  "recv after a reset-mode split: %s", r);
    ck_assert_msg(took < 5000, "the reset took %lld ms", took);
    /* a connection opened across the block is reset at once too: the
     * connect may see it already (SO_ERROR), or the first recv does */
    r = ev("n1", "epx_apptest:connect(c2, %d, gen_tcp).", port);
    if (!strcmp(r, "ok"))
        r = ev("n1", "epx_apptest:recv(c2, 1, 10000).");
    ck_assert_msg(!strcmp(r, "{error,closed}") || !strcmp(r, "{error,econnreset}"),
                  "a new connection across a reset-mode block: %s", r);
    ck_assert_int_eq(epx_fixture_heal(C), 0);
    ck_ev("n1", "ok", "epx_apptest:connect(c3, %d, gen_tcp).", port);
    echo_ok("c3", "healed");
}
END_TEST

START_TEST(gen_tcp_one_way)
{
    start(EPX_MODE_HOLD);
    int port = echo_server("n2", "gen_tcp");
    ck_ev("n1", "ok", "epx_apptest:connect(c1, %d, gen_tcp).", port);
    echo_ok("c1", "x");
    /* the echo's way back is cut: n2 gets the bytes, n1 not the answer */
    ck_assert_int_eq(epx_fixture_cut(C, "n2 -> n1"), 0);
    await_link(port, "\"held\":\"in\"");
    ck_ev("n1", "ok", "epx_apptest:send(c1, <<\"back\">>).");
    echo_stalls("c1");
    ck_assert_int_eq(epx_fixture_fix(C, "n2 -> n1"), 0);
    ck_ev("n1", "{ok,<<\"back\">>}", "epx_apptest:recv(c1, 4, 20000).");
    /* the other way */
    ck_assert_int_eq(epx_fixture_cut(C, "n1 -> n2"), 0);
    await_link(port, "\"held\":\"out\"");
    ck_ev("n1", "ok", "epx_apptest:send(c1, <<\"fwd\">>).");
    echo_stalls("c1");
    ck_assert_int_eq(epx_fixture_fix(C, "n1 -> n2"), 0);
    ck_ev("n1", "{ok,<<\"fwd\">>}", "epx_apptest:recv(c1, 3, 20000).");
}
END_TEST

START_TEST(gen_tcp_isolate)
{
    start(EPX_MODE_HOLD);
    int port = echo_server("n2", "gen_tcp");
    ck_ev("n1", "ok", "epx_apptest:connect(c1, %d, gen_tcp).", port);
    echo_ok("c1", "x");
    ck_assert_int_eq(epx_fixture_isolate(C, "n2"), 0);
    await_link(port, "\"state\":\"held\"");
    ck_ev("n1", "ok", "epx_apptest:send(c1, <<\"iso\">>).");
    echo_stalls("c1");
    ck_assert_int_eq(epx_fixture_heal(C), 0);
    ck_ev("n1", "{ok,<<\"iso\">>}", "epx_apptest:recv(c1, 3, 20000).");
}
END_TEST

START_TEST(gen_tcp_connect_during_cut)
{
    start(EPX_MODE_HOLD);
    int port = echo_server("n2", "gen_tcp");
    ck_assert_int_eq(epx_fixture_split(C, "n1 n2"), 0);
    /* the connect itself succeeds (as over a real network before the
     * partition is noticed: the SYN went out); nothing goes through */
    ck_ev("n1", "ok", "epx_apptest:connect(c1, %d, gen_tcp).", port);
    await_link(port, "\"state\":\"held\"");
    ck_ev("n1", "ok", "epx_apptest:send(c1, <<\"early\">>).");
    echo_stalls("c1");
    ck_assert_int_eq(epx_fixture_heal(C), 0);
    ck_ev("n1", "{ok,<<\"early\">>}", "epx_apptest:recv(c1, 5, 20000).");
    await_link(port, "\"state\":\"up\"");
}
END_TEST

/* ---- the socket module -------------------------------------------------- */

START_TEST(socket_module_hold_and_heal)
{
    start(EPX_MODE_HOLD);
    int port = echo_server("n2", "socket");
    ck_ev("n1", "ok", "epx_apptest:connect(s1, %d, socket).", port);
    echo_ok("s1", "sock");
    char l[2048];
    ck_assert_msg(app_link(port, "\"from\":\"n1@localhost\"", l, sizeof l),
                  "no app link for the socket module's connection to %d", port);
    char want[64];
    snprintf(want, sizeof want, "{ok,{{127,0,0,1},%d}}", port);
    ck_ev("n1", want, "epx_apptest:peer(s1).");
    ck_assert_int_eq(epx_fixture_split(C, "n1 n2"), 0);
    await_link(port, "\"held\":\"both\"");
    ck_ev("n1", "ok", "epx_apptest:send(s1, epx_apptest:pattern(5, 100000)).");
    echo_stalls("s1");
    ck_assert_int_eq(epx_fixture_heal(C), 0);
    ck_ev("n1", "true", "epx_apptest:recv(s1, 100000, 20000) =:= {ok, epx_apptest:pattern(5, 100000)}.");
}
END_TEST

/* ---- what stays direct -------------------------------------------------- */

START_TEST(direct_when_not_between_members)
{
    start(EPX_MODE_HOLD);
    int port = echo_server("n2", "gen_tcp");
    /* n2 to itself: a self-connection is not a link */
    ck_ev("n2", "ok", "epx_apptest:connect(self1, %d, gen_tcp).", port);
    ck_ev("n2", "ok", "epx_apptest:send(self1, <<\"me\">>).");
    ck_ev("n2", "{ok,<<\"me\">>}", "epx_apptest:recv(self1, 2, 20000).");
    char l[2048];
    ck_assert_msg(!app_link(port, NULL, l, sizeof l), "a self-connection was relayed: %s", l);
    /* the test process is not a member: its connection is direct, and a
     * cut does not touch it */
    ck_assert_int_eq(epx_fixture_split(C, "n1 n2"), 0);
    int fd = tu_connect(port);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(tu_write_all(fd, "abc", 3), 0);
    char b[3];
    ck_assert_int_eq(tu_read_exact(fd, b, 3, 10000), 0);
    ck_assert_int_eq(memcmp(b, "abc", 3), 0);
    close(fd);
    ck_assert_msg(!app_link(port, NULL, l, sizeof l), "a non-member's connection was relayed: %s",
                  l);
    /* a port nobody listens on: refused as before, by the kernel */
    int free_port = tu_free_port();
    const char *r = ev("n1", "gen_tcp:connect({127,0,0,1}, %d, []).", free_port);
    ck_assert_msg(!strcmp(r, "{error,econnrefused}"), "connect to a free port: %s", r);
    /* distribution links are never relayed twice: each is one dist link */
    ck_assert_int_eq(epx_fixture_heal(C), 0);
    ck_assert_int_eq(epx_fixture_connect_all(C), 0);
    ck_assert_int_eq(epx_fixture_await_connected(C, WAIT_MS), 0);
    char links[65536];
    ck_assert_int_eq(ctl("LINKS", links, sizeof links), 0);
    ck_assert_msg(!strstr(links, "\"kind\":\"app\""), "an app link appeared: %s", links);
}
END_TEST

START_TEST(no_preload_leaves_app_traffic_alone)
{
    start_opts(EPX_MODE_HOLD, 1);
    int port = echo_server("n2", "gen_tcp");
    ck_ev("n1", "ok", "epx_apptest:connect(c1, %d, gen_tcp).", port);
    ck_assert_int_eq(epx_fixture_split(C, "n1 n2"), 0);
    /* without the shim a cut does not reach the nodes' own TCP */
    echo_ok("c1", "through");
    char l[2048];
    ck_assert_msg(!app_link(port, NULL, l, sizeof l), "app link without the shim: %s", l);
}
END_TEST

/* ---- programs that are not Erlang --------------------------------------- */

/* Start the C echo server as member name; its port. */
static int spawn_server(const char *name)
{
    char file[700], tool[1100];
    snprintf(file, sizeof file, "%s/%s.port", tmp, name);
    snprintf(tool, sizeof tool, "%s/epx_apptool", tools);
    const char *argv[] = { tool, "serve", file, NULL };
    ck_assert_msg(epx_fixture_spawn(C, name, argv) > 0, "spawn: %s", epx_fixture_last_error());
    ck_assert_msg(TU_WAIT_UNTIL(file_exists(file), WAIT_MS), "%s never wrote its port", name);
    return file_int(file);
}

/* pid (a child of this process) has exited; it is left to be reaped. */
static int has_exited(int pid)
{
    siginfo_t si;
    memset(&si, 0, sizeof si);
    return waitid(P_PID, (id_t)pid, &si, WEXITED | WNOHANG | WNOWAIT) == 0 && si.si_pid == pid;
}

/* Run the C client as member name (mode nbclient or refused) against
 * port; its result line. */
static const char *run_client(const char *name, const char *mode, int port)
{
    static char line[512];
    char file[700], tool[1100], p[16];
    snprintf(file, sizeof file, "%s/%s.result", tmp, name);
    snprintf(tool, sizeof tool, "%s/epx_apptool", tools);
    snprintf(p, sizeof p, "%d", port);
    const char *argv[] = { tool, mode, p, file, NULL };
    int pid = epx_fixture_spawn(C, name, argv);
    ck_assert_msg(pid > 0, "spawn: %s", epx_fixture_last_error());
    ck_assert_msg(TU_WAIT_UNTIL(file_exists(file), WAIT_MS), "%s gave no result", name);
    FILE *f = fopen(file, "r");
    ck_assert_ptr_nonnull(f);
    if (!fgets(line, sizeof line, f))
        line[0] = 0;
    fclose(f);
    line[strcspn(line, "\n")] = 0;
    /* The result is written just before the client exits: wait for the
     * exit itself (without reaping it, spawn_stop does that), or a loaded
     * machine lets spawn_stop's SIGTERM arrive first. */
    ck_assert_msg(TU_WAIT_UNTIL(has_exited(pid), WAIT_MS), "%s did not exit after its result '%s'",
                  name, line);
    int st = epx_fixture_spawn_stop(C, pid);
    ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == (strncmp(line, "ok", 2) ? 1 : 0),
                  "%s: status %d for '%s'", name, st, line);
    return line;
}

START_TEST(c_nonblocking_client)
{
    start(EPX_MODE_HOLD);
    int port = spawn_server("db");
    const char *r = run_client("web", "nbclient", port);
    ck_assert_msg(!strncmp(r, "ok", 2), "non-blocking client under the shim: %s", r);
    /* it went through the daemon, as web -> db */
    char evs[65536];
    ck_assert_int_eq(ctl("EVENTS", evs, sizeof evs), 0);
    char want[128];
    snprintf(want, sizeof want, "\"from\":\"web\",\"to\":\"db\",\"kind\":\"app\",\"port\":%d",
             port);
    ck_assert_msg(strstr(evs, want), "no app link web -> db in %s", evs);
    /* the same client to a port nobody listens on: ECONNREFUSED, untouched */
    r = run_client("web2", "refused", tu_free_port());
    ck_assert_msg(!strncmp(r, "ok", 2), "%s", r);
    /* and the node n1 to db, cut and healed */
    ck_ev("n1", "ok", "epx_apptest:connect(c1, %d, gen_tcp).", port);
    echo_ok("c1", "to-db");
    char out[256];
    ck_assert_int_eq(epx_fixture_control(C, "CUT n1@localhost db", out, sizeof out), 0);
    await_link(port, "\"state\":\"held\"");
    ck_ev("n1", "ok", "epx_apptest:send(c1, <<\"held\">>).");
    echo_stalls("c1");
    ck_assert_int_eq(epx_fixture_heal(C), 0);
    ck_ev("n1", "{ok,<<\"held\">>}", "epx_apptest:recv(c1, 4, 20000).");
}
END_TEST

START_TEST(cluster_exec_member_cut_from_node)
{
    start(EPX_MODE_HOLD);
    const char *cli = getenv("EPX_CLUSTER");
    ck_assert_msg(cli && *cli, "EPX_CLUSTER not set (make check sets it)");
    char file[700], tool[1100], cport[16];
    snprintf(file, sizeof file, "%s/exec.port", tmp);
    snprintf(tool, sizeof tool, "%s/epx_apptool", tools);
    snprintf(cport, sizeof cport, "%d", epx_fixture_control_port(C));
    exec_pid = fork();
    ck_assert_int_ge(exec_pid, 0);
    if (exec_pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        execl(cli, cli, "exec", "db", "--control", cport, "--", tool, "serve", file, (char *)NULL);
        _exit(127);
    }
    ck_assert_msg(TU_WAIT_UNTIL(file_exists(file), WAIT_MS), "epx-cluster exec: no port");
    int port = file_int(file);
    ck_ev("n1", "ok", "epx_apptest:connect(c1, %d, gen_tcp).", port);
    echo_ok("c1", "exec");
    char l[2048];
    ck_assert_msg(app_link(port, "\"to\":\"db\"", l, sizeof l), "no app link n1 -> db");
    char out[256];
    ck_assert_int_eq(epx_fixture_control(C, "CUT n1@localhost db", out, sizeof out), 0);
    await_link(port, "\"held\":\"both\"");
    ck_ev("n1", "ok", "epx_apptest:send(c1, <<\"cut\">>).");
    echo_stalls("c1");
    ck_assert_int_eq(epx_fixture_control(C, "FIX n1@localhost db", out, sizeof out), 0);
    ck_ev("n1", "{ok,<<\"cut\">>}", "epx_apptest:recv(c1, 3, 20000).");
    /* the exec'd program ends with the CLI: SIGTERM reaches it */
    kill(exec_pid, SIGTERM);
    int st;
    ck_assert_int_eq(waitpid(exec_pid, &st, 0), exec_pid);
    exec_pid = 0;
    ck_assert_msg(WIFSIGNALED(st) || WIFEXITED(st), "status %d", st);
}
END_TEST

Suite *preload_suite(void)
{
    Suite *s = suite_create("preload");
    TCase *tc = tcase_create("app_parse");
    tcase_add_test(tc, parse_listen_args);
    tcase_add_test(tc, parse_connect_args);
    suite_add_tcase(s, tc);

    tc = tcase_create("daemon");
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, registrations_end_with_their_connection);
    suite_add_tcase(s, tc);

    const struct {
        const char *name;
        const TTest *test;
    } cases[] = {
        { "gen_tcp_hold_and_heal", gen_tcp_hold_and_heal },
        { "gen_tcp_reset", gen_tcp_reset },
        { "gen_tcp_one_way", gen_tcp_one_way },
        { "gen_tcp_isolate", gen_tcp_isolate },
        { "gen_tcp_connect_during_cut", gen_tcp_connect_during_cut },
        { "socket_module_hold_and_heal", socket_module_hold_and_heal },
        { "direct_when_not_between_members", direct_when_not_between_members },
        { "no_preload_leaves_app_traffic_alone", no_preload_leaves_app_traffic_alone },
        { "c_nonblocking_client", c_nonblocking_client },
        { "cluster_exec_member_cut_from_node", cluster_exec_member_cut_from_node },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        tc = tcase_create(cases[i].name);
        tcase_add_checked_fixture(tc, setup, teardown);
        tcase_set_timeout(tc, 180);
        tcase_add_test(tc, cases[i].test);
        suite_add_tcase(s, tc);
    }
    return s;
}
