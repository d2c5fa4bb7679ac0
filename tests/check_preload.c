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
 * UDP between members: datagrams pass before a cut, are dropped (reported
 * sent) during it in either mode and pass again after HEAL; a one-way cut
 * drops one direction; a port the kernel bound on the first send counts;
 * the socket module, connected gen_udp, and every sending call of the C
 * tool (sendto, sendmsg, sendmmsg, send, write); non-members and a
 * member's UDP to itself pass.  Unit tests of the APP* argument parser
 * (proxy/app_parse.c) and of the shim's UDP answer parser and verdict
 * cache (fixture/preload_udp.h) come first. */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "app_parse.h"
#include "epx_fixture.h"
#include "preload_udp.h"
#include "testutil.h"
#include "tucase.h"
#include "udp_page.h"

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
    /* a NUL inside the address ends inet_pton's string, not the word
     * (found by tests/fuzz/fuzz_app.c) */
    static const char nul[] = "db 80 40000 127.0.0.1\0junk";
    ck_assert_int_eq(app_parse(nul, sizeof nul - 1, 2, &a, err, sizeof err), -1);
}
END_TEST

/* ---- the shim's UDP answers and verdict cache (pure) -------------------- */

START_TEST(udp_answer_parse)
{
    pu_answer a;
    ck_assert_int_eq(pu_parse_answer("OK {\"gen\":7,\"member\":false,\"genfile\":\"/tmp/g\"}", &a), 0);
    ck_assert_uint_eq(a.gen, 7);
    ck_assert_int_eq(a.member, 0);
    ck_assert_str_eq(a.genfile, "/tmp/g");
    ck_assert_int_eq(pu_parse_answer("OK {\"gen\":9223372036854775807,\"member\":true,"
                                     "\"blocked\":true,\"genfile\":\"/run/u/x\",\"to\":\"a\\\"b\"}",
                                     &a),
                     0);
    ck_assert_uint_eq(a.gen, INT64_MAX);
    ck_assert_int_eq(a.member, 1);
    ck_assert_int_eq(a.blocked, 1);
    ck_assert_str_eq(a.genfile, "/run/u/x");
    /* without a page: an answer, but no path */
    ck_assert_int_eq(pu_parse_answer("OK {\"gen\":2,\"member\":true,\"blocked\":false,\"to\":\"n\"}",
                                     &a),
                     0);
    ck_assert_int_eq(a.blocked, 0);
    ck_assert_str_eq(a.genfile, "");
    const char *bad[] = {
        "",
        "ERR APPUDPROUTE: needs a port (1-65535)",
        "OK {\"gen\":0,\"member\":false}",              /* gen 0 is never published */
        "OK {\"gen\":01,\"member\":false}",
        "OK {\"gen\":123456789012345678901,\"member\":false}",
        "OK {\"gen\":3,\"member\":maybe}",
        "OK {\"gen\":3,\"member\":true}",               /* a member without a verdict */
        "OK {\"gen\":3,\"member\":true,\"blocked\":1}",
        "OK {\"gen\":3,\"member\":false,\"genfile\":\"rel/path\"}",
        "OK {\"gen\":3,\"member\":false,\"genfile\":\"/a\\\\b\"}",
        "OK {\"gen\":3,\"member\":false,\"genfile\":\"\"}",
        "OK {\"gen\":3,\"member\":false,\"genfile\":\"/unterminated}",
        "OK {\"gen\":3,\"member\":falsey}",
        "OK {\"member\":false,\"gen\":3}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        ck_assert_msg(pu_parse_answer(bad[i], &a) == -1, "'%s' was taken", bad[i]);
    /* a path as long as the buffer is refused, one shorter taken */
    char line[PU_PATH_MAX + 80], path[PU_PATH_MAX + 1];
    memset(path, 'p', sizeof path);
    path[0] = '/';
    path[PU_PATH_MAX] = 0;
    snprintf(line, sizeof line, "OK {\"gen\":1,\"member\":false,\"genfile\":\"%s\"}", path);
    ck_assert_int_eq(pu_parse_answer(line, &a), -1);
    path[PU_PATH_MAX - 1] = 0;
    snprintf(line, sizeof line, "OK {\"gen\":1,\"member\":false,\"genfile\":\"%s\"}", path);
    ck_assert_int_eq(pu_parse_answer(line, &a), 0);
    ck_assert_str_eq(a.genfile, path);
}
END_TEST

START_TEST(udp_cache_entries)
{
    uint64_t e = pu_entry(42, 5353, PU_DROP);
    ck_assert_int_eq(pu_entry_verdict(e, 42, 5353), PU_DROP);
    ck_assert_int_eq(pu_entry_verdict(e, 43, 5353), PU_NONE);   /* a newer generation */
    ck_assert_int_eq(pu_entry_verdict(e, 42, 5354), PU_NONE);   /* another port */
    ck_assert_int_eq(pu_entry_verdict(pu_entry(9, 65535, PU_PASS), 9, 65535), PU_PASS);
    ck_assert_int_eq(pu_entry_verdict(0, 1, 1), PU_NONE);       /* an empty slot */
    /* generations past 46 bits compare by their low bits, both sides alike */
    uint64_t big = (UINT64_C(1) << 50) + 77;
    ck_assert_int_eq(pu_entry_verdict(pu_entry(big, 80, PU_PASS), big, 80), PU_PASS);
    ck_assert_int_eq(pu_entry_verdict(pu_entry(big, 80, PU_PASS), big + 1, 80), PU_NONE);
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

/* The generation in the page at path; 0 if it cannot be read. */
static uint64_t page_gen(const char *path)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    void *m = mmap(NULL, UDP_PAGE_SIZE, PROT_READ, MAP_SHARED, fd, 0);
    close(fd);
    if (m == MAP_FAILED)
        return 0;
    const udp_page *pg = m;
    uint64_t g = memcmp(pg->magic, UDP_PAGE_MAGIC, 8) ? 0 : __atomic_load_n(&pg->gen, __ATOMIC_ACQUIRE);
    munmap(m, UDP_PAGE_SIZE);
    return g;
}

/* APPUDPROUTE from node to port, parsed (fails the test if it is no answer). */
static pu_answer udp_route(int cport, const char *node, int port)
{
    char cmd[128], r[1024];
    snprintf(cmd, sizeof cmd, "APPUDPROUTE %s %d", node, port);
    ck_assert_int_eq(tu_ctl(cport, cmd, r, sizeof r), 0);
    pu_answer a;
    char line[1100];
    snprintf(line, sizeof line, "%s", r);
    ck_assert_msg(pu_parse_answer(line, &a) == 0, "not an answer: %s", r);
    return a;
}

START_TEST(udp_registrations_and_generation)
{
    tu_daemon d;
    ck_assert_int_eq(tu_daemon_start(&d, NULL), 0);
    int cp = d.control_port;
    int fd = tu_connect(cp);
    ck_assert_int_ge(fd, 0);
    const char *cmd = "APPUDP srv 5555\n";
    ck_assert_int_eq(tu_write_all(fd, cmd, strlen(cmd)), 0);
    char line[3];
    ck_assert_int_eq(tu_read_exact(fd, line, 3, 5000), 0);
    ck_assert_int_eq(memcmp(line, "OK\n", 3), 0);
    pu_answer a = udp_route(cp, "cli", 5555);
    ck_assert_msg(a.member && !a.blocked, "srv's port before a cut: member %d blocked %d",
                  a.member, a.blocked);
    ck_assert_msg(a.genfile[0] == '/', "no generation page");
    ck_assert_uint_eq(page_gen(a.genfile), a.gen);
    char path[PU_PATH_MAX];
    snprintf(path, sizeof path, "%s", a.genfile);
    /* a member to itself, and a port nobody registered: not members */
    ck_assert_int_eq(udp_route(cp, "srv", 5555).member, 0);
    ck_assert_int_eq(udp_route(cp, "cli", 5556).member, 0);
    /* the page shows a cut's generation by the time its OK arrives */
    uint64_t g0 = page_gen(path);
    char r[512];
    ck_assert_int_eq(tu_ctl(cp, "CUT cli srv", r, sizeof r), 0);
    ck_assert_msg(!strncmp(r, "OK", 2), "%s", r);
    uint64_t g1 = page_gen(path);
    ck_assert_msg(g1 > g0, "CUT left the generation at %llu", (unsigned long long)g1);
    a = udp_route(cp, "cli", 5555);
    ck_assert_msg(a.member && a.blocked, "cli -> srv during a cut: blocked %d", a.blocked);
    ck_assert_uint_eq(a.gen, g1);
    /* the mode does not matter: nothing to hold */
    ck_assert_int_eq(tu_ctl(cp, "MODE reset", r, sizeof r), 0);
    ck_assert_int_eq(udp_route(cp, "cli", 5555).blocked, 1);
    /* one way: only that direction */
    ck_assert_int_eq(tu_ctl(cp, "HEAL", r, sizeof r), 0);
    ck_assert_uint_gt(page_gen(path), g1);
    ck_assert_int_eq(udp_route(cp, "cli", 5555).blocked, 0);
    ck_assert_int_eq(tu_ctl(cp, "CUT srv -> cli", r, sizeof r), 0);
    ck_assert_int_eq(udp_route(cp, "cli", 5555).blocked, 0);
    ck_assert_int_eq(tu_ctl(cp, "CUT cli -> srv", r, sizeof r), 0);
    ck_assert_int_eq(udp_route(cp, "cli", 5555).blocked, 1);
    /* a command that changes nothing keeps the generation (caches stay) */
    uint64_t g2 = page_gen(path);
    ck_assert_int_eq(tu_ctl(cp, "RULES", r, sizeof r), 0);
    ck_assert_int_eq(tu_ctl(cp, "CUT cli -> srv", r, sizeof r), 0);
    ck_assert_uint_eq(page_gen(path), g2);
    /* APPS lists the port; bad arguments are refused with the name */
    char apps[2048];
    ck_assert_int_eq(tu_ctl(cp, "APPS", apps, sizeof apps), 0);
    ck_assert_msg(strstr(apps, "\"udp\":{\"ports\":[{\"node\":\"srv\",\"port\":5555}]"), "%s",
                  apps);
    ck_assert_int_eq(tu_ctl(cp, "APPUDP x 0", r, sizeof r), 0);
    ck_assert_msg(!strncmp(r, "ERR APPUDP", 10), "%s", r);
    ck_assert_int_eq(tu_ctl(cp, "APPUDPROUTE x* 80", r, sizeof r), 0);
    ck_assert_msg(!strncmp(r, "ERR APPUDPROUTE", 15), "%s", r);
    /* the registration ends with its connection, with a new generation */
    close(fd);
    ck_assert_msg(TU_WAIT_UNTIL(udp_route(cp, "cli", 5555).member == 0, 5000),
                  "srv's UDP port outlived its connection");
    ck_assert_uint_gt(page_gen(path), g2);
    /* and the page goes with the daemon */
    tu_daemon_stop(&d);
    ck_assert_msg(access(path, F_OK) != 0, "%s left behind", path);
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

/* Spawn the C tool as member name with args.  With $EPX_SAN_PRELOAD set
 * (make sanitize: the shim built with ASan+UBSan), the tool runs under
 * that shim instead of the cluster's: `env` (under the cluster's shim)
 * replaces LD_PRELOAD and execs the tool, which was linked with the ASan
 * runtime, so the runtime comes first and the shim's instrumentation
 * checks it inside a real member.  The nodes keep the plain shim: erl has
 * no ASan runtime to resolve the sanitized one against. */
static int spawn_tool(const char *name, const char *const args[])
{
    static char tool[1100], pre[1100];
    snprintf(tool, sizeof tool, "%s/epx_apptool", tools);
    const char *san = getenv("EPX_SAN_PRELOAD");
    const char *argv[16];
    int k = 0;
    if (san && *san) {
        snprintf(pre, sizeof pre, "LD_PRELOAD=%s", san);
        argv[k++] = "env";
        argv[k++] = pre;
    }
    argv[k++] = tool;
    for (int i = 0; args[i] && k < 15; i++)
        argv[k++] = args[i];
    argv[k] = NULL;
    return epx_fixture_spawn(C, name, argv);
}

/* Start the C echo server as member name; its port. */
static int spawn_server(const char *name)
{
    char file[700];
    snprintf(file, sizeof file, "%s/%s.port", tmp, name);
    const char *args[] = { "serve", file, NULL };
    ck_assert_msg(spawn_tool(name, args) > 0, "spawn: %s", epx_fixture_last_error());
    ck_assert_msg(TU_WAIT_UNTIL(file_exists(file), WAIT_MS), "%s never wrote its port", name);
    return file_int(file);
}

/* Has our child pid exited (a zombie, not yet reaped)? */
static int exited(int pid)
{
    char path[64], buf[512];
    snprintf(path, sizeof path, "/proc/%d/stat", pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return 1;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    const char *rp = strrchr(buf, ')');   /* "pid (comm) S ..." */
    return rp && rp[1] == ' ' && rp[2] == 'Z';
}

/* Run the C client as member name (mode nbclient or refused) against
 * port; its result line. */
static const char *run_client(const char *name, const char *mode, int port)
{
    static char line[512];
    char file[700], p[16];
    snprintf(file, sizeof file, "%s/%s.result", tmp, name);
    snprintf(p, sizeof p, "%d", port);
    const char *args[] = { mode, p, file, NULL };
    int pid = spawn_tool(name, args);
    ck_assert_msg(pid > 0, "spawn: %s", epx_fixture_last_error());
    ck_assert_msg(TU_WAIT_UNTIL(file_exists(file), WAIT_MS), "%s gave no result", name);
    FILE *f = fopen(file, "r");
    ck_assert_ptr_nonnull(f);
    if (!fgets(line, sizeof line, f))
        line[0] = 0;
    fclose(f);
    line[strcspn(line, "\n")] = 0;
    /* its exit status says the same: let it exit by itself (under ASan
     * the exit takes a while, LeakSanitizer runs) before reaping it */
    ck_assert_msg(TU_WAIT_UNTIL(exited(pid), WAIT_MS), "%s did not exit after its result", name);
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

/* ---- UDP between nodes -------------------------------------------------- */

#define UDP_WAIT_MS 20000   /* a datagram that passes arrives well within this */

/* A UDP socket owned by `name` on node (backend gen_udp, socket or
 * socket_unbound); its port (0 for socket_unbound). */
static int udp_open(const char *node, const char *name, const char *backend)
{
    const char *p = ev(node, "epx_apptest:udp_open(%s, %s).", name, backend);
    int port = atoi(p);
    ck_assert_msg(port > 0 || !strcmp(backend, "socket_unbound"), "udp_open on %s: %s", node,
                  p);
    return port;
}

/* name on node sends seqs first..last to port ("connected": its peer);
 * every send must report success. */
static void udp_send(const char *node, const char *name, const char *port, int first, int last)
{
    ck_ev(node, "ok", "epx_apptest:udp_send(%s, %s, lists:seq(%d, %d)).", name, port, first,
          last);
}

static void udp_send_port(const char *node, const char *name, int port, int first, int last)
{
    char p[16];
    snprintf(p, sizeof p, "%d", port);
    udp_send(node, name, p, first, last);
}

/* name on node receives seq within UDP_WAIT_MS. */
static void udp_arrives(const char *node, const char *name, int seq)
{
    ck_ev(node, "ok", "epx_apptest:udp_await(%s, %d, %d).", name, seq, UDP_WAIT_MS);
}

/* name on node received exactly want (an Erlang list expression). */
static void udp_got(const char *node, const char *name, const char *want)
{
    ck_ev(node, "ok", "epx_apptest:udp_expect(%s, lists:sort(%s)).", name, want);
}

/* Before, during and after a split of n1 and n2, both ways: what is sent
 * during the cut is reported sent and never arrives; a marker sent after
 * HEAL arrives, so anything that had passed would have been there (the
 * loopback keeps a socket pair's datagrams in order). */
static void udp_split_heal(int mode)
{
    start(mode);
    int p2 = udp_open("n2", "u2", "gen_udp");
    int p1 = udp_open("n1", "u1", "gen_udp");
    udp_send_port("n1", "u1", p2, 1, 5);
    udp_arrives("n2", "u2", 5);
    udp_send_port("n2", "u2", p1, 11, 15);
    udp_arrives("n1", "u1", 15);
    ck_assert_int_eq(epx_fixture_split(C, "n1 n2"), 0);
    udp_send_port("n1", "u1", p2, 100, 149);
    udp_send_port("n2", "u2", p1, 200, 249);
    ck_assert_int_eq(epx_fixture_heal(C), 0);
    udp_send_port("n1", "u1", p2, 1000, 1000);
    udp_send_port("n2", "u2", p1, 2000, 2000);
    udp_arrives("n2", "u2", 1000);
    udp_arrives("n1", "u1", 2000);
    udp_got("n2", "u2", "lists:seq(1, 5) ++ [1000]");
    udp_got("n1", "u1", "lists:seq(11, 15) ++ [2000]");
}

START_TEST(gen_udp_split_drops_hold)
{
    udp_split_heal(EPX_MODE_HOLD);
}
END_TEST

START_TEST(gen_udp_split_drops_reset)
{
    udp_split_heal(EPX_MODE_RESET);
}
END_TEST

START_TEST(udp_one_way_and_first_send_bind)
{
    start(EPX_MODE_HOLD);
    int p2 = udp_open("n2", "u2", "gen_udp");
    /* n1's socket is not bound: its first send binds it, and that port is
     * n1's for the rules from then on */
    udp_open("n1", "u1", "socket_unbound");
    udp_send_port("n1", "u1", p2, 1, 1);
    udp_arrives("n2", "u2", 1);
    int p1 = atoi(ev("n1", "epx_apptest:udp_port(u1)."));
    ck_assert_int_gt(p1, 0);
    /* n1 -> n2 cut: n1's datagrams are dropped, n2's still arrive */
    ck_assert_int_eq(epx_fixture_cut(C, "n1 -> n2"), 0);
    udp_send_port("n1", "u1", p2, 100, 149);
    udp_send_port("n2", "u2", p1, 20, 20);
    udp_arrives("n1", "u1", 20);
    ck_assert_int_eq(epx_fixture_fix(C, "n1 -> n2"), 0);
    /* the other way round */
    ck_assert_int_eq(epx_fixture_cut(C, "n2 -> n1"), 0);
    udp_send_port("n2", "u2", p1, 200, 249);
    udp_send_port("n1", "u1", p2, 30, 30);
    udp_arrives("n2", "u2", 30);
    ck_assert_int_eq(epx_fixture_heal(C), 0);
    udp_send_port("n2", "u2", p1, 40, 40);
    udp_arrives("n1", "u1", 40);
    udp_got("n2", "u2", "[1, 30]");
    udp_got("n1", "u1", "[20, 40]");
}
END_TEST

START_TEST(udp_socket_module_and_connected)
{
    start(EPX_MODE_HOLD);
    int p2 = udp_open("n2", "u2", "socket");
    udp_open("n1", "s1", "socket");
    udp_open("n1", "g1", "gen_udp");
    ck_ev("n1", "ok", "epx_apptest:udp_connect(g1, %d).", p2);
    udp_send_port("n1", "s1", p2, 1, 1);
    udp_send("n1", "g1", "connected", 2, 2);
    udp_arrives("n2", "u2", 1);
    udp_arrives("n2", "u2", 2);
    ck_assert_int_eq(epx_fixture_isolate(C, "n2"), 0);
    udp_send_port("n1", "s1", p2, 100, 149);
    udp_send("n1", "g1", "connected", 200, 249);
    ck_assert_int_eq(epx_fixture_heal(C), 0);
    udp_send_port("n1", "s1", p2, 1000, 1000);
    udp_send("n1", "g1", "connected", 2000, 2000);
    udp_arrives("n2", "u2", 1000);
    udp_arrives("n2", "u2", 2000);
    udp_got("n2", "u2", "[1, 2, 1000, 2000]");
}
END_TEST

START_TEST(udp_not_between_members)
{
    start(EPX_MODE_HOLD);
    int p2 = udp_open("n2", "u2", "gen_udp");
    udp_open("n2", "v2", "gen_udp");
    ck_assert_int_eq(epx_fixture_isolate(C, "n2"), 0);
    /* a member to itself (another socket of its own) */
    udp_send_port("n2", "v2", p2, 1, 1);
    udp_arrives("n2", "u2", 1);
    /* the test process is no member: its datagrams to n2 pass, and n2's
     * to its port */
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    ck_assert_int_ge(fd, 0);
    struct sockaddr_in me;
    socklen_t ml = sizeof me;
    memset(&me, 0, sizeof me);
    me.sin_family = AF_INET;
    me.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ck_assert_int_eq(bind(fd, (struct sockaddr *)&me, sizeof me), 0);
    ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&me, &ml), 0);
    struct sockaddr_in a = me;
    a.sin_port = htons((uint16_t)p2);
    uint32_t seq = htonl(2);
    ck_assert_int_eq(sendto(fd, &seq, 4, 0, (struct sockaddr *)&a, sizeof a), 4);
    udp_arrives("n2", "u2", 2);
    udp_send_port("n2", "u2", ntohs(me.sin_port), 3, 3);
    struct timeval tv = { UDP_WAIT_MS / 1000, 0 };
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    uint32_t got = 0;
    ck_assert_int_eq(recv(fd, &got, 4, 0), 4);
    ck_assert_uint_eq(ntohl(got), 3);
    close(fd);
    udp_got("n2", "u2", "[1, 2]");
}
END_TEST

/* Run the C tool as member name: every sending call, seqs base..base+6, to
 * port; its result line must say ok. */
static void tool_udpsend(const char *name, int port, int base)
{
    char file[700], p[16], b[16];
    snprintf(file, sizeof file, "%s/%s-%d.result", tmp, name, base);
    snprintf(p, sizeof p, "%d", port);
    snprintf(b, sizeof b, "%d", base);
    const char *args[] = { "udpsend", p, b, file, NULL };
    int pid = spawn_tool(name, args);
    ck_assert_msg(pid > 0, "spawn: %s", epx_fixture_last_error());
    ck_assert_msg(TU_WAIT_UNTIL(file_exists(file), WAIT_MS), "%s gave no result", name);
    ck_assert_msg(TU_WAIT_UNTIL(exited(pid), WAIT_MS), "%s did not exit after its result", name);
    epx_fixture_spawn_stop(C, pid);
    FILE *f = fopen(file, "r");
    ck_assert_ptr_nonnull(f);
    char line[512] = "";
    if (!fgets(line, sizeof line, f))
        line[0] = 0;
    fclose(f);
    ck_assert_msg(!strncmp(line, "ok", 2), "%s udpsend %d: %s", name, base, line);
}

START_TEST(c_udp_every_send_call)
{
    start(EPX_MODE_HOLD);
    int p2 = udp_open("n2", "u2", "gen_udp");
    /* three runs of the tool, each a fresh process (cold cache), under
     * three names (libepx does not reuse a member's name): one pattern
     * cuts them all */
    tool_udpsend("db-a", p2, 10);
    udp_arrives("n2", "u2", 16);
    char out[256];
    ck_assert_int_eq(epx_fixture_control(C, "CUT db-* n2@localhost", out, sizeof out), 0);
    ck_assert_msg(!strncmp(out, "OK", 2), "%s", out);
    tool_udpsend("db-b", p2, 100);   /* every call says sent */
    ck_assert_int_eq(epx_fixture_heal(C), 0);
    tool_udpsend("db-c", p2, 1000);
    udp_arrives("n2", "u2", 1006);
    udp_got("n2", "u2", "lists:seq(10, 16) ++ lists:seq(1000, 1006)");
}
END_TEST

Suite *preload_suite(void)
{
    Suite *s = suite_create("preload");
    TCase *tc = tcase_create("app_parse");
    tcase_add_test(tc, parse_listen_args);
    tcase_add_test(tc, parse_connect_args);
    suite_add_tcase(s, tc);

    tc = tcase_create("udp_answer");
    tcase_add_test(tc, udp_answer_parse);
    tcase_add_test(tc, udp_cache_entries);
    suite_add_tcase(s, tc);

    tc = tcase_create("daemon");
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, registrations_end_with_their_connection);
    suite_add_tcase(s, tc);

    tc = tcase_create("udp_daemon");
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, udp_registrations_and_generation);
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
        { "gen_udp_split_drops_hold", gen_udp_split_drops_hold },
        { "gen_udp_split_drops_reset", gen_udp_split_drops_reset },
        { "udp_one_way_and_first_send_bind", udp_one_way_and_first_send_bind },
        { "udp_socket_module_and_connected", udp_socket_module_and_connected },
        { "udp_not_between_members", udp_not_between_members },
        { "c_udp_every_send_call", c_udp_every_send_call },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        tu_add_case(s, cases[i].name, cases[i].test, 180, setup, teardown);
    return s;
}
