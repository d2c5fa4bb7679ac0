/* Suite "hostile": the daemon keeps serving real nodes while hostile or
 * lazy clients hold its sockets: 1000 idle EPMD connections and 200 idle
 * control connections during registration, connection and partition; then
 * a flood of slow-drip ALIVE2 requests that the packet timeout clears. */
#include <check.h>
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "erlnode.h"
#include "fakenode.h"
#include "testutil.h"

#define IDLE_EPMD 1000
#define IDLE_CTL  200
#define DRIPPERS  200
#define NODES     3
#define START_MS  60000
#define EVAL_MS   20000

static tu_daemon D;
static erlnode N[NODES];
static int conns[IDLE_EPMD + IDLE_CTL + DRIPPERS];
static int nconns;

static void raise_nofile(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
}

static void close_conns(void)
{
    for (int i = 0; i < nconns; i++)
        close(conns[i]);
    nconns = 0;
}

static void teardown(void)
{
    close_conns();
    for (int i = 0; i < NODES; i++)
        erlnode_stop(&N[i], 10000);
    tu_daemon_stop(&D);
}

static void start_daemon(const char *const *extra)
{
    memset(N, 0, sizeof N);
    nconns = 0;
    raise_nofile();
    ck_assert_msg(tu_daemon_start(&D, extra) == 0, "epmdpxy did not start");
}

static void start_nodes(void)
{
    char cookie[64];
    ck_assert(erlnode_random_cookie(cookie, sizeof cookie) == 0);
    erlnode_opts o[NODES];
    char names[NODES][8];
    memset(o, 0, sizeof o);
    static const char *const extra[] = { "-kernel", "prevent_overlapping_partitions", "false",
                                         NULL };
    for (int i = 0; i < NODES; i++) {
        snprintf(names[i], sizeof names[i], "h%d", i + 1);
        o[i].name = names[i];
        o[i].cookie = cookie;
        o[i].epmd_port = D.epmd_port;
        o[i].net_ticktime = 2;
        o[i].extra = extra;
    }
    char err[1024];
    ck_assert_msg(erlnode_start_many(N, o, NODES, START_MS, err, sizeof err) == 0,
                  "nodes did not start among hostile clients: %s", err);
}

/* Open n connections to port that send nothing. */
static void open_idle(int port, int n)
{
    for (int i = 0; i < n; i++) {
        int fd = tu_connect(port);
        ck_assert_msg(fd >= 0, "connection %d to port %d failed: %s", i, port, strerror(errno));
        conns[nconns++] = fd;
    }
}

static int sees_count(int i)
{
    char out[512];
    if (erlnode_eval(&N[i], "length(nodes())", out, sizeof out, EVAL_MS) < 0)
        return -1;
    return atoi(out);
}

static int ping(int i, int j)
{
    char out[512];
    if (erlnode_evalf(&N[i], out, sizeof out, EVAL_MS, "net_adm:ping('%s')", N[j].node) < 0)
        return -1;
    return strcmp(out, "pong") == 0;
}

START_TEST(idle_crowd)
{
    start_daemon(NULL);
    int base = tu_fd_count(D.pid);
    open_idle(D.epmd_port, IDLE_EPMD);
    open_idle(D.control_port, IDLE_CTL);
    /* the daemon has taken them all before the nodes come */
    ck_assert_msg(TU_WAIT_UNTIL(tu_fd_count(D.pid) >= base + IDLE_EPMD + IDLE_CTL, 20000),
                  "daemon holds %d fds, expected at least %d", tu_fd_count(D.pid),
                  base + IDLE_EPMD + IDLE_CTL);

    start_nodes();
    ck_assert_msg(ping(0, 1) == 1 && ping(0, 2) == 1 && ping(1, 2) == 1,
                  "nodes cannot ping each other among idle clients");
    ck_assert_msg(TU_WAIT_UNTIL(sees_count(0) == 2 && sees_count(1) == 2 && sees_count(2) == 2,
                                20000), "no full mesh among idle clients");

    char reply[4096];
    ck_assert(tu_ctl(D.control_port, "CUT h1 h2,h3", reply, sizeof reply) == 0);
    ck_assert_msg(strncmp(reply, "OK", 2) == 0, "CUT: %s", reply);
    ck_assert_msg(TU_WAIT_UNTIL(sees_count(0) == 0 && sees_count(1) == 1, 20000),
                  "the cut did not take among idle clients (h1 sees %d, h2 sees %d)",
                  sees_count(0), sees_count(1));
    ck_assert(tu_ctl(D.control_port, "HEAL", reply, sizeof reply) == 0);
    ck_assert_str_eq(reply, "OK");
    ck_assert_msg(ping(0, 1) == 1 && ping(0, 2) == 1, "no pong after HEAL");

    /* the idle clients were never answered nor dropped (their timeout is 60 s) */
    int open_now = 0;
    for (int i = 0; i < nconns; i++) {
        struct pollfd p = { conns[i], POLLIN, 0 };
        if (poll(&p, 1, 0) == 0)
            open_now++;
    }
    ck_assert_int_eq(open_now, IDLE_EPMD + IDLE_CTL);

    for (int i = 0; i < NODES; i++)
        erlnode_stop(&N[i], 10000);
    close_conns();
    ck_assert_msg(TU_WAIT_UNTIL(tu_fd_count(D.pid) == base, 20000),
                  "daemon fds %d, started with %d", tu_fd_count(D.pid), base);
}
END_TEST

/* A 16-byte ALIVE2 request for name "dNNN" (Len included). */
static void alive2_bytes(uint8_t *b, int k)
{
    static const uint8_t head[] = { 0x00, 0x11, 'x', 0x12, 0x34, 'M', 0, 0, 6, 0, 5, 0, 4 };
    memcpy(b, head, sizeof head);
    snprintf((char *)b + sizeof head, 5, "d%03d", k % 1000);
    b[17] = 0;
    b[18] = 0;
}

START_TEST(slow_drip)
{
    static const char *const extra[] = { "-packet_timeout", "2", NULL };
    start_daemon(extra);
    int base = tu_fd_count(D.pid);
    /* each dripper sends one byte per second for 3 s, then stalls */
    uint8_t req[DRIPPERS][19];
    for (int k = 0; k < DRIPPERS; k++)
        alive2_bytes(req[k], k);
    open_idle(D.epmd_port, DRIPPERS);
    long long last_byte = 0;
    for (int sent = 0; sent < 3; sent++) {
        for (int k = 0; k < DRIPPERS; k++)
            ck_assert(tu_write_all(conns[k], &req[k][sent], 1) == 0);
        last_byte = tu_now_ms();
        if (sent == 1)
            start_nodes();   /* a real registration in the middle of the flood */
        else
            tu_sleep_ms(1000);   /* the drip rate itself, not a synchronization */
    }
    /* nodes registered and talk while drippers hang */
    ck_assert_msg(ping(0, 1) == 1 && ping(1, 2) == 1, "nodes cannot talk during the drip flood");

    /* every stalled dripper is closed by the packet timeout (2 s, plus the
     * daemon's 1 s sweep and a loaded machine's slack), without a reply */
    int closed = 0;
    long long deadline = last_byte + 20000;
    while (closed < DRIPPERS && tu_now_ms() < deadline) {
        closed = 0;
        for (int k = 0; k < DRIPPERS; k++) {
            struct pollfd p = { conns[k], POLLIN, 0 };
            if (poll(&p, 1, 0) == 1) {
                char c;
                ssize_t r = read(conns[k], &c, 1);
                ck_assert_msg(r <= 0, "dripper %d got a reply byte 0x%02x", k, (unsigned char)c);
                closed++;
            }
        }
        if (closed < DRIPPERS)
            tu_sleep_ms(100);
    }
    long long took = tu_now_ms() - last_byte;
    ck_assert_msg(closed == DRIPPERS, "only %d of %d drippers cleared %lld ms after their last byte",
                  closed, DRIPPERS, took);
    ck_assert_msg(took >= 1900, "drippers cleared after %lld ms, before the 2 s timeout", took);

    /* and the nodes' registrations, which never time out, are intact */
    char reply[8192];
    ck_assert(tu_ctl(D.control_port, "NODES", reply, sizeof reply) == 0);
    for (int i = 0; i < NODES; i++) {
        char want[32];
        snprintf(want, sizeof want, "\"name\":\"h%d\"", i + 1);
        ck_assert_msg(strstr(reply, want), "NODES lost h%d: %s", i + 1, reply);
    }
    close_conns();
    for (int i = 0; i < NODES; i++)
        erlnode_stop(&N[i], 10000);
    ck_assert_msg(TU_WAIT_UNTIL(tu_fd_count(D.pid) == base, 20000),
                  "daemon fds %d, started with %d", tu_fd_count(D.pid), base);
}
END_TEST

/* 1 if the file holds `needle`. */
static int file_has(const char *path, const char *needle)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    static char buf[1 << 16];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    return strstr(buf, needle) != NULL;
}

/* Names come from the network and go into the log: a name holding a
 * newline or an escape sequence must not split a log line or reach the
 * terminal raw.  Every line of the log is one message. */
START_TEST(log_escapes_names)
{
    static const char *const extra[] = { "-d", NULL };
    start_daemon(extra);
    static const char name[] = "ev\nil\x1b[2J\t\\\x7f\xc3\xa9";   /* é stays as it is */
    static const char shown[] = "ev\\nil\\x1b[2J\\t\\\\\\x7f\xc3\xa9";
    int port;
    int lfd = fn_listen(&port);
    ck_assert(lfd >= 0);
    int reg = fn_alive2(D.epmd_port, name, port, NULL);
    ck_assert_msg(reg >= 0, "ALIVE2 of a name with a newline: %s", fn_err());
    conns[nconns++] = reg;
    conns[nconns++] = lfd;
    /* a duplicate is refused, and the error names it (LOG_ERR) */
    ck_assert_msg(fn_alive2(D.epmd_port, name, port, NULL) < 0, "a duplicate registered");
    char want[128];
    snprintf(want, sizeof want, "registered %s (port", shown);
    ck_assert_msg(TU_WAIT_UNTIL(file_has(D.log, want), 10000),
                  "the log (%s) never says \"%s\"", D.log, want);
    snprintf(want, sizeof want, "name %s already registered", shown);
    ck_assert_msg(TU_WAIT_UNTIL(file_has(D.log, want), 10000),
                  "the log (%s) never says \"%s\"", D.log, want);
    FILE *f = fopen(D.log, "r");
    ck_assert_ptr_nonnull(f);
    char line[8192];
    int n = 0;
    while (fgets(line, sizeof line, f)) {
        n++;
        ck_assert_msg(!strncmp(line, "epmdpxy ", 8), "log line %d is not a message of its "
                      "own: \"%s\"", n, line);
        ck_assert_msg(!strchr(line, '\x1b'), "log line %d holds a raw ESC", n);
    }
    fclose(f);
    ck_assert_int_gt(n, 1);
}
END_TEST

Suite *hostile_suite(void)
{
    Suite *s = suite_create("hostile");
    TCase *tc = tcase_create("idle_crowd");
    tcase_add_checked_fixture(tc, NULL, teardown);
    tcase_set_timeout(tc, 180);
    tcase_add_test(tc, idle_crowd);
    suite_add_tcase(s, tc);
    tc = tcase_create("log_escapes_names");
    tcase_add_checked_fixture(tc, NULL, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, log_escapes_names);
    suite_add_tcase(s, tc);
    tc = tcase_create("slow_drip");
    tcase_add_checked_fixture(tc, NULL, teardown);
    tcase_set_timeout(tc, 180);
    tcase_add_test(tc, slow_drip);
    suite_add_tcase(s, tc);
    return s;
}
