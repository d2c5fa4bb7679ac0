/* fixture: libepx's own tests, against real `erl` nodes and the daemon.
 *
 * Start and stop 1, 5 and 16 nodes (names, ports, pids alive during and
 * gone after, bounded stop time); split / await_partition / heal /
 * connect_all / await_connected; a one-way cut; isolate; fix; set_mode;
 * every eval error; bad node names and bad syntax everywhere; every start
 * failure, fast and with a clear message; the timeout messages; erl_args,
 * code_paths, cookie, prefix and log_dir reaching the nodes; dead nodes
 * shown dead and failing awaits at once; clusters started on a small
 * thread stack, or by a thread that then exits, or with stdin and stdout
 * closed; an eval that never returns; private log files; the
 * <epx_check.h> macros and checked fixture; a test process SIGKILLed
 * mid-test leaving nothing behind; and, last, nothing left over from the
 * whole suite.
 *
 * Leak tracking works in fork mode too: every pid the tests see is written
 * to a MAP_SHARED table made before the runner forks, with its start time
 * (so a recycled pid is not mistaken for ours).  Every test also puts a
 * marker in the environment, which the daemon, the nodes and whatever they
 * spawn (erl_child_setup, inet_gethost) inherit: the last test looks for
 * any live process that still carries it.  $TMPDIR points into one
 * directory of the suite while a test runs, so that logs and files, even
 * those of a failed or killed test, go when the runner exits. */
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "epx_check.h"
#include "testutil.h"
/* The daemon's own header, in the same file as the library's: their names
 * must not collide (the daemon's modes were once EPX_MODE_* in both). */
#include "epx.h"
_Static_assert(EPX_MODE_HOLD == (int)EPXD_MODE_HOLD && EPX_MODE_RESET == (int)EPXD_MODE_RESET,
               "the library's modes are the daemon's");

#define MARK_VAR    "EPX_FIXTURE_SUITE_MARK"
#define MAX_TRACKED 1024
#define WAIT_MS     30000   /* partitions and meshes, on a loaded 2-core box */

/* ---- what the suite started, shared across fork-mode test processes ------ */

typedef struct tracked {
    pid_t pid;
    unsigned long long start;   /* /proc/<pid>/stat starttime */
    char what[16];
} tracked;

static struct shared {
    char mark[64];
    char dir[256];              /* every test's files and the nodes' logs */
    pid_t runner;
    int ntracked;
    tracked t[MAX_TRACKED];
    pid_t checked_daemon;       /* daemon of the first checked-fixture test */
    unsigned long long checked_daemon_start;
    int checked_dirty;          /* that test left a rule in its cluster */
} *sh, sh_local;

/* State and start time of a process; -1 if there is none. */
static int proc_stat(pid_t pid, char *state, unsigned long long *start)
{
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    ssize_t k = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (k <= 0)
        return -1;
    buf[k] = 0;
    char *p = strrchr(buf, ')');
    if (!p || !p[1] || !p[2])
        return -1;
    p += 2;                      /* field 3, the state */
    *state = *p;
    for (int field = 3; field < 22; field++) {   /* to field 22, starttime */
        p = strchr(p, ' ');
        if (!p)
            return -1;
        p++;
    }
    *start = strtoull(p, NULL, 10);
    return 0;
}

/* Is this process (this very one: same start time, if known) still running?
 * A zombie is not. */
static int proc_live(pid_t pid, unsigned long long start)
{
    char st;
    unsigned long long s;
    if (pid <= 0 || proc_stat(pid, &st, &s) < 0)
        return 0;
    if (st == 'Z' || st == 'X' || st == 'x')
        return 0;
    return start == 0 || s == start;
}

static void track(pid_t pid, const char *what)
{
    if (pid <= 0 || sh->ntracked >= MAX_TRACKED)
        return;
    char st;
    unsigned long long start = 0;
    if (proc_stat(pid, &st, &start) < 0)
        start = 0;
    tracked *t = &sh->t[sh->ntracked++];
    t->pid = pid;
    t->start = start;
    snprintf(t->what, sizeof t->what, "%s", what);
}

static void track_cluster(const epx_cluster *c)
{
    track(epx_fixture_daemon_pid(c), "epmdpxy");
    for (int i = 1; i <= epx_fixture_size(c); i++)
        track(epx_fixture_node_pid(c, i), "node");
}

/* Live processes other than this program whose environment holds
 * MARK_VAR=<token...>; listed in desc.  Returns how many. */
static int marked_procs(const char *token, char *desc, size_t desclen)
{
    char want[160], self_exe[512], exe[512], path[64];
    int wl = snprintf(want, sizeof want, "%s=%s", MARK_VAR, token);
    ssize_t k = readlink("/proc/self/exe", self_exe, sizeof self_exe - 1);
    self_exe[k > 0 ? k : 0] = 0;
    size_t used = 0;
    desc[0] = 0;
    int count = 0;
    size_t cap = 1 << 18;
    char *env = malloc(cap);
    DIR *d = opendir("/proc");
    if (!env || !d) {
        free(env);
        if (d)
            closedir(d);
        snprintf(desc, desclen, "(cannot scan /proc)");
        return -1;
    }
    for (struct dirent *e; (e = readdir(d)) != NULL;) {
        char *end;
        long pid = strtol(e->d_name, &end, 10);
        if (*end || pid <= 0 || pid == (long)getpid())
            continue;
        snprintf(path, sizeof path, "/proc/%ld/environ", pid);
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
            continue;
        size_t n = 0;
        while (n < cap - 1 && (k = read(fd, env + n, cap - 1 - n)) > 0)
            n += (size_t)k;
        close(fd);
        env[n] = 0;
        int found = 0;
        for (char *p = env; p < env + n; p += strlen(p) + 1)
            if (!strncmp(p, want, (size_t)wl)) {
                found = 1;
                break;
            }
        if (!found || !proc_live((pid_t)pid, 0))
            continue;
        snprintf(path, sizeof path, "/proc/%ld/exe", pid);
        k = readlink(path, exe, sizeof exe - 1);
        exe[k > 0 ? k : 0] = 0;
        if (!strcmp(exe, self_exe))
            continue;           /* a test process of ours, not something it started */
        count++;
        if (used < desclen) {
            int w = snprintf(desc + used, desclen - used, "%s%ld (%s)", count > 1 ? ", " : "",
                             pid, exe);
            used += w > 0 ? (size_t)w : 0;
        }
    }
    closedir(d);
    free(env);
    return count;
}

/* Tracked processes still running, listed in desc. */
static int tracked_live(char *desc, size_t desclen)
{
    size_t used = 0;
    int count = 0;
    desc[0] = 0;
    for (int i = 0; i < sh->ntracked; i++)
        if (proc_live(sh->t[i].pid, sh->t[i].start)) {
            count++;
            if (used < desclen) {
                int w = snprintf(desc + used, desclen - used, "%s%d (%s)", count > 1 ? ", " : "",
                                 (int)sh->t[i].pid, sh->t[i].what);
                used += w > 0 ? (size_t)w : 0;
            }
        }
    return count;
}

/* ---- per-test state --------------------------------------------------------- */

#define MAX_CL 4
static epx_cluster *cl[MAX_CL];
static char tmpdir[256];

static char *saved_tmpdir;

/* What a thread that ran library calls reports back. */
typedef struct thread_run {
    epx_cluster *c;
    int ok;
    pid_t tid;
    char msg[2048];
} thread_run;


/* Every test runs with $TMPDIR in the suite's directory: the library puts
 * its logs there, also those of clusters that a failed test (which in fork
 * mode exits without teardown) or a killed one leaves behind. */
static void setup(void)
{
    setenv(MARK_VAR, sh->mark, 1);
    memset(cl, 0, sizeof cl);
    tmpdir[0] = 0;
    if (sh->dir[0]) {
        const char *t = getenv("TMPDIR");
        saved_tmpdir = t ? strdup(t) : NULL;
        setenv("TMPDIR", sh->dir, 1);
    }
}

/* A private directory for this test, removed by teardown. */
static void make_tmpdir(void)
{
    if (tmpdir[0])
        return;
    const char *base = getenv("TMPDIR");
    snprintf(tmpdir, sizeof tmpdir, "%s/test-XXXXXX", base && *base ? base : "/tmp");
    if (!mkdtemp(tmpdir)) {
        tmpdir[0] = 0;
        ck_abort_msg("mkdtemp: %s", strerror(errno));
    }
}

static void rm_tmpdir(void)
{
    if (!tmpdir[0])
        return;
    DIR *d = opendir(tmpdir);
    if (d) {
        for (struct dirent *e; (e = readdir(d)) != NULL;) {
            if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
                continue;
            char p[600];
            snprintf(p, sizeof p, "%s/%s", tmpdir, e->d_name);
            unlink(p);
        }
        closedir(d);
    }
    rmdir(tmpdir);
    tmpdir[0] = 0;
}

static void teardown(void)
{
    for (int i = 0; i < MAX_CL; i++)
        if (cl[i]) {
            epx_fixture_stop_cluster(cl[i]);
            cl[i] = NULL;
        }
    rm_tmpdir();
    unsetenv(MARK_VAR);
    if (sh->dir[0]) {
        if (saved_tmpdir)
            setenv("TMPDIR", saved_tmpdir, 1);
        else
            unsetenv("TMPDIR");
        free(saved_tmpdir);
        saved_tmpdir = NULL;
    }
}

/* Start a cluster that teardown stops (also when the test fails). */
static epx_cluster *start(int n, const epx_options *o)
{
    epx_cluster *c = epx_fixture_start_cluster(n, o);
    ck_assert_msg(c != NULL, "starting %d nodes failed: %s", n, epx_fixture_last_error());
    int k = 0;
    while (k < MAX_CL && cl[k])
        k++;
    ck_assert_int_lt(k, MAX_CL);
    cl[k] = c;
    track_cluster(c);
    return c;
}

/* Stop a cluster started by start(); how long it took, in ms. */
static long long stop(epx_cluster *c)
{
    for (int k = 0; k < MAX_CL; k++)
        if (cl[k] == c)
            cl[k] = NULL;
    long long t0 = tu_now_ms();
    epx_fixture_stop_cluster(c);
    return tu_now_ms() - t0;
}

/* Evaluate, asserting success; the result lives until the next call. */
static const char *eval_ok(epx_cluster *c, const char *node, const char *expr)
{
    static char out[16384];
    int r = epx_fixture_eval(c, node, expr, out, sizeof out);
    ck_assert_msg(r == 0, "eval '%s' on %s failed: %s", expr, node, epx_fixture_last_error());
    return out;
}

static void assert_rules(epx_cluster *c, const char *want)
{
    char reply[4096];
    ck_assert_epx_ok(epx_fixture_control(c, "RULES", reply, sizeof reply));
    ck_assert_str_eq(reply, want);
}

#define ck_assert_contains(hay, needle)                                                \
    ck_assert_msg(strstr((hay), (needle)) != NULL, "expected \"%s\" in \"%s\"", (needle), \
                  (hay))

/* When a process started (0 if it does not exist). */
static unsigned long long pid_start(pid_t pid)
{
    char st;
    unsigned long long start;
    return proc_stat(pid, &st, &start) < 0 ? 0 : start;
}

/* A reaped child is gone: kill(pid, 0) says ESRCH, unless the pid already
 * names another process (this box's pid_max is small), one that started
 * at another time. */
static int gone(pid_t pid, unsigned long long start)
{
    if (kill(pid, 0) < 0 && errno == ESRCH)
        return 1;
    unsigned long long now = pid_start(pid);
    return start != 0 && now != 0 && now != start;
}

/* ---- start and stop --------------------------------------------------------- */

static const int sizes[] = { 1, 5, 16 };

START_TEST(start_stop)
{
    int n = sizes[_i];
    long long t0 = tu_now_ms();
    epx_cluster *c = start(n, NULL);
    long long started_ms = tu_now_ms() - t0;

    ck_assert_int_eq(epx_fixture_size(c), n);
    ck_assert_int_eq(epx_fixture_net_ticktime(c), 2);
    int epmd = epx_fixture_epmd_port(c), ctl = epx_fixture_control_port(c);
    ck_assert_int_gt(epmd, 0);
    ck_assert_int_gt(ctl, 0);
    ck_assert_int_ne(epmd, ctl);
    const char *cookie = epx_fixture_cookie(c);
    ck_assert_ptr_nonnull(cookie);
    ck_assert_int_gt((int)strlen(cookie), 8);

    pid_t pids[EPX_MAX_NODES + 1];
    unsigned long long starts[EPX_MAX_NODES + 1];
    pids[0] = epx_fixture_daemon_pid(c);
    starts[0] = pid_start(pids[0]);
    ck_assert_int_gt(pids[0], 0);
    ck_assert_int_eq(kill(pids[0], 0), 0);
    for (int i = 1; i <= n; i++) {
        char want[64];
        snprintf(want, sizeof want, "n%d@localhost", i);
        ck_assert_str_eq(epx_fixture_node(c, i), want);
        pids[i] = epx_fixture_node_pid(c, i);
        starts[i] = pid_start(pids[i]);
        ck_assert_int_gt(pids[i], 0);
        ck_assert_int_eq(kill(pids[i], 0), 0);
        for (int j = 0; j < i; j++)
            ck_assert_int_ne(pids[i], pids[j]);
        /* each node is the node it claims to be, behind our daemon, with
         * the cluster's cookie */
        ck_assert_str_eq(eval_ok(c, want, "node()"), want);
        /* ... asking EPMD on its own port of the daemon, so that the
         * daemon knows who asks (EPMDPORT gives the same port again) */
        char port[32], cmd[32], own[256];
        snprintf(cmd, sizeof cmd, "EPMDPORT n%d", i);
        ck_assert_int_eq(epx_fixture_control(c, cmd, own, sizeof own), 0);
        const char *p = strstr(own, "\"port\":");
        ck_assert_msg(p && atoi(p + 7) > 0 && atoi(p + 7) != epmd, "%s: %s", cmd, own);
        snprintf(port, sizeof port, "\"%d\"", atoi(p + 7));
        ck_assert_str_eq(eval_ok(c, want, "os:getenv(\"ERL_EPMD_PORT\")"), port);
        ck_assert_str_eq(eval_ok(c, want, "erlang:get_cookie()"), cookie);
    }
    ck_assert_ptr_null(epx_fixture_node(c, 0));
    ck_assert_ptr_null(epx_fixture_node(c, n + 1));
    ck_assert_int_eq(epx_fixture_node_pid(c, n + 1), -1);

    /* every node registered with the daemon */
    char reply[16384];
    ck_assert_epx_ok(epx_fixture_control(c, "NODES", reply, sizeof reply));
    int regs = 0;
    for (const char *p = reply; (p = strstr(p, "\"name\":")) != NULL; p++)
        regs++;
    ck_assert_int_eq(regs, n);

    /* and, meshed at start, every node sees every other */
    unsigned char seen[EPX_MAX_NODES * EPX_MAX_NODES];
    ck_assert_epx_ok(epx_fixture_visibility(c, seen, sizeof seen));
    for (int i = 0; i < n; i++)
        for (int j = 0; j < n; j++)
            ck_assert_msg(seen[i * n + j] == (i != j), "n%d sees n%d: %d\n%s", i + 1, j + 1,
                          seen[i * n + j], epx_check_matrix_(c));
    if (n == 1)
        ck_assert_str_eq(eval_ok(c, "n1", "nodes()"), "[]");
    else
        ck_assert_epx_connected(c, 1);

    long long stop_ms = stop(c);
    ck_assert_msg(stop_ms < 12000, "stopping %d nodes took %lld ms", n, stop_ms);
    for (int i = 0; i <= n; i++)
        ck_assert_msg(gone(pids[i], starts[i]), "%s pid %d still exists after stop_cluster",
                      i ? "node" : "daemon", (int)pids[i]);
    fprintf(stderr, "fixture: %d node(s): start %lld ms, stop %lld ms\n", n, started_ms,
            stop_ms);
}
END_TEST

/* ---- partitions ------------------------------------------------------------- */

START_TEST(split_heal)
{
    epx_cluster *c = start(5, NULL);
    ck_assert_epx_ok(epx_fixture_split(c, "n1,n2 n3,n4,n5"));
    ck_assert_epx_partition(c, WAIT_MS);
    ck_assert_epx_sees(c, "n1", "n2");
    ck_assert_epx_sees(c, "n4", "n5");
    ck_assert_epx_not_sees(c, "n1", "n3");
    ck_assert_epx_not_sees(c, "n3", "n1");
    ck_assert_epx_not_sees(c, "n2@localhost", "n5@localhost");   /* full names too */

    unsigned char seen[25];
    ck_assert_epx_ok(epx_fixture_visibility(c, seen, sizeof seen));
    for (int i = 0; i < 5; i++)
        for (int j = 0; j < 5; j++) {
            int same = (i < 2) == (j < 2);
            ck_assert_msg(seen[i * 5 + j] == (i != j && same), "n%d sees n%d: %d", i + 1,
                          j + 1, seen[i * 5 + j]);
        }
    char m[4096];
    ck_assert_epx_ok(epx_fixture_matrix(c, m, sizeof m));
    ck_assert_str_eq(m, "n1 sees: n2\nn2 sees: n1\nn3 sees: n4 n5\nn4 sees: n3 n5\n"
                        "n5 sees: n3 n4");

    ck_assert_epx_ok(epx_fixture_heal(c));
    assert_rules(c, "OK []");
    ck_assert_epx_ok(epx_fixture_connect_all(c));
    ck_assert_epx_connected(c, WAIT_MS);
    ck_assert_epx_sees(c, "n1", "n5");

    /* the nodes not named form one more island */
    ck_assert_epx_ok(epx_fixture_split(c, "n1 n2"));
    ck_assert_epx_partition(c, WAIT_MS);
    ck_assert_epx_not_sees(c, "n1", "n2");
    ck_assert_epx_not_sees(c, "n2", "n3");
    ck_assert_epx_not_sees(c, "n5", "n1");
    ck_assert_epx_sees(c, "n3", "n5");
    ck_assert_str_eq(eval_ok(c, "n1", "nodes()"), "[]");

    /* one island is no cut at all */
    ck_assert_epx_ok(epx_fixture_split(c, "n1,n2,n3,n4,n5"));
    assert_rules(c, "OK []");
    ck_assert_epx_ok(epx_fixture_connect_all(c));
    ck_assert_epx_connected(c, WAIT_MS);
}
END_TEST

START_TEST(one_way_cut)
{
    epx_cluster *c = start(3, NULL);
    ck_assert_epx_ok(epx_fixture_cut(c, "n1 -> n2"));
    assert_rules(c, "OK [{\"from\":\"n1@localhost\",\"to\":\"n2@localhost\"}]");
    /* one blocked direction is enough to part two nodes, and only them */
    ck_assert_epx_partition(c, WAIT_MS);
    ck_assert_epx_not_sees(c, "n1", "n2");
    ck_assert_epx_not_sees(c, "n2", "n1");
    ck_assert_epx_sees(c, "n1", "n3");
    ck_assert_epx_sees(c, "n2", "n3");
    ck_assert_epx_sees(c, "n3", "n1");

    /* fix removes exactly that cut */
    ck_assert_epx_ok(epx_fixture_cut(c, "n3 -> n1"));
    ck_assert_epx_ok(epx_fixture_fix(c, "n1 -> n2"));
    assert_rules(c, "OK [{\"from\":\"n3@localhost\",\"to\":\"n1@localhost\"}]");
    ck_assert_epx_ok(epx_fixture_fix(c, "n3 -> n1"));
    assert_rules(c, "OK []");
    ck_assert_epx_ok(epx_fixture_connect_all(c));
    ck_assert_epx_connected(c, WAIT_MS);
}
END_TEST

START_TEST(isolate_and_kill)
{
    epx_cluster *c = start(3, NULL);
    ck_assert_epx_ok(epx_fixture_isolate(c, "n3"));
    ck_assert_epx_partition(c, WAIT_MS);
    ck_assert_epx_sees(c, "n1", "n2");
    ck_assert_epx_not_sees(c, "n1", "n3");
    ck_assert_epx_not_sees(c, "n2", "n3");
    ck_assert_str_eq(eval_ok(c, "n3", "nodes()"), "[]");
    /* connect_all honours the rules: n3 stays alone */
    ck_assert_epx_ok(epx_fixture_connect_all(c));
    ck_assert_epx_partition(c, WAIT_MS);

    ck_assert_epx_ok(epx_fixture_heal(c));
    ck_assert_epx_ok(epx_fixture_connect_all(c));
    ck_assert_epx_connected(c, WAIT_MS);

    /* a node killed on purpose: reaped at once, and the others notice */
    pid_t p3 = epx_fixture_node_pid(c, 3);
    unsigned long long s3 = pid_start(p3);
    ck_assert_epx_ok(epx_fixture_kill_node(c, "n3"));
    ck_assert_msg(gone(p3, s3), "n3 (pid %d) still exists after kill_node", (int)p3);
    ck_assert_msg(TU_WAIT_UNTIL(epx_fixture_sees(c, "n1", "n3") == 0, WAIT_MS),
                  "n1 still sees the killed n3\n%s", epx_check_matrix_(c));
    /* a dead node is shown dead, and waiting on it fails at once */
    ck_assert_str_eq(epx_check_matrix_(c), "n1 sees: n2\nn2 sees: n1\nn3 is dead");
    ck_assert_int_eq(epx_fixture_await_partition(c, WAIT_MS), -1);
    ck_assert_contains(epx_fixture_last_error(), "n3 is dead (killed by signal 9)");
    char out[512];
    ck_assert_int_eq(epx_fixture_eval(c, "n3", "ok", out, sizeof out), -1);
    ck_assert_contains(epx_fixture_last_error(), "n3 is dead");
    ck_assert_int_eq(epx_fixture_kill_node(c, "n9"), -1);
    ck_assert_contains(epx_fixture_last_error(), "unknown node n9");
    ck_assert_str_eq(eval_ok(c, "n1", "1 + 1"), "2");
}
END_TEST

/* The fixture's expectation follows ISOLATE ... EXCEPT as the daemon does:
 * n3 keeps n2 and loses n1. */
START_TEST(isolate_except)
{
    epx_cluster *c = start(3, NULL);
    char out[512];
    ck_assert_epx_ok(epx_fixture_control(c, "ISOLATE n3 EXCEPT n2", out, sizeof out));
    ck_assert_epx_partition(c, WAIT_MS);
    ck_assert_epx_sees(c, "n3", "n2");
    ck_assert_epx_sees(c, "n1", "n2");
    ck_assert_epx_not_sees(c, "n1", "n3");
    ck_assert_epx_ok(epx_fixture_heal(c));
    ck_assert_epx_ok(epx_fixture_connect_all(c));
    ck_assert_epx_connected(c, WAIT_MS);
}
END_TEST

START_TEST(modes)
{
    /* A minute of ticktime: in hold mode nobody would notice a cut for a
     * minute, so a partition seen sooner proves the reset. */
    epx_options o = { 0 };
    o.mode = EPX_MODE_RESET;
    o.net_ticktime = 60;
    epx_cluster *c = start(3, &o);
    char reply[256];
    ck_assert_epx_ok(epx_fixture_control(c, "MODE", reply, sizeof reply));
    ck_assert_str_eq(reply, "OK reset");
    ck_assert_str_eq(eval_ok(c, "n1", "net_kernel:get_net_ticktime()"), "60");

    long long t0 = tu_now_ms();
    ck_assert_epx_ok(epx_fixture_cut(c, "n1 n2,n3"));
    ck_assert_epx_partition(c, 20000);
    ck_assert_epx_not_sees(c, "n2", "n1");
    ck_assert_epx_sees(c, "n2", "n3");
    long long reset_ms = tu_now_ms() - t0;

    /* await_connected's timeout names the first missing link, shows the matrix */
    ck_assert_int_eq(epx_fixture_await_connected(c, 1), -1);
    ck_assert_contains(epx_fixture_last_error(), "n1 does not see n2 after 1 ms");
    ck_assert_contains(epx_fixture_last_error(), "n1,n2,n3");
    ck_assert_contains(epx_fixture_last_error(), "\nn1 sees: nobody\nn2 sees: n3\nn3 sees: n2");

    ck_assert_epx_ok(epx_fixture_set_mode(c, EPX_MODE_HOLD));
    ck_assert_epx_ok(epx_fixture_control(c, "MODE", reply, sizeof reply));
    ck_assert_str_eq(reply, "OK hold");
    ck_assert_epx_ok(epx_fixture_heal(c));
    ck_assert_epx_ok(epx_fixture_connect_all(c));
    ck_assert_epx_connected(c, WAIT_MS);

    /* hold: the same cut goes unnoticed (ticktime 60) ... */
    ck_assert_epx_ok(epx_fixture_cut(c, "n1 n2,n3"));
    ck_assert_int_eq(epx_fixture_await_partition(c, 1500), -1);
    ck_assert_contains(epx_fixture_last_error(), "n1 still sees n2 after 1500 ms");
    ck_assert_epx_connected(c, 1);
    /* ... and when it heals the held links carry on: still one mesh */
    ck_assert_epx_ok(epx_fixture_heal(c));
    ck_assert_str_eq(eval_ok(c, "n1", "lists:sort([rpc:call(N, erlang, node, []) "
                                      "|| N <- nodes()])"),
                     "[n2@localhost,n3@localhost]");
    ck_assert_epx_connected(c, 1);

    ck_assert_epx_ok(epx_fixture_set_mode(c, EPX_MODE_FREEZE));
    ck_assert_epx_ok(epx_fixture_control(c, "MODE", reply, sizeof reply));
    ck_assert_str_eq(reply, "OK freeze");
    ck_assert_epx_ok(epx_fixture_set_mode(c, EPX_MODE_RESET));
    ck_assert_epx_ok(epx_fixture_control(c, "MODE", reply, sizeof reply));
    ck_assert_str_eq(reply, "OK reset");
    ck_assert_int_eq(epx_fixture_set_mode(c, 7), -1);
    ck_assert_contains(epx_fixture_last_error(), "unknown mode 7");
    ck_assert_epx_ok(epx_fixture_control(c, "MODE", reply, sizeof reply));
    ck_assert_str_eq(reply, "OK reset");
    fprintf(stderr, "fixture: reset-mode partition seen after %lld ms\n", reset_ms);
}
END_TEST

START_TEST(await_timeout_message)
{
    epx_options o = { 0 };
    o.net_ticktime = 60;     /* the hold cut cannot be noticed during the test */
    epx_cluster *c = start(3, &o);
    ck_assert_epx_ok(epx_fixture_cut(c, "n1 n2,n3"));
    ck_assert_int_eq(epx_fixture_await_partition(c, 1), -1);
    /* names the first node that is wrong and what it should see, shows all */
    const char *e = epx_fixture_last_error();
    ck_assert_contains(e, "n1 still sees n2 after 1 ms");
    ck_assert_contains(e, "expected island n1)");
    ck_assert_contains(e, "\nn1 sees: n2 n3\nn2 sees: n1 n3\nn3 sees: n1 n2");
    ck_assert_epx_ok(epx_fixture_heal(c));
    ck_assert_epx_connected(c, WAIT_MS);
}
END_TEST

/* ---- errors ----------------------------------------------------------------- */

/* eval must fail with this text both in out and in the message */
static void eval_fails(epx_cluster *c, const char *node, const char *expr, const char *text)
{
    char out[1024] = "untouched";
    int r = epx_fixture_eval(c, node, expr, out, sizeof out);
    ck_assert_msg(r == -1, "eval '%s' on %s returned %d (%s)", expr, node, r, out);
    ck_assert_msg(strstr(epx_fixture_last_error(), text) != NULL,
                  "eval '%s': expected \"%s\" in the message \"%s\"", expr, text,
                  epx_fixture_last_error());
    ck_assert_msg(strstr(out, text) != NULL, "eval '%s': expected \"%s\" in out \"%s\"", expr,
                  text, out);
}

START_TEST(eval_errors)
{
    epx_cluster *c = start(2, NULL);
    ck_assert_str_eq(eval_ok(c, "n1", "1 + 1"), "2");
    ck_assert_str_eq(eval_ok(c, "n2@localhost", "lists:seq(1, 3)."), "[1,2,3]");
    ck_assert_str_eq(eval_ok(c, "n1", "X = 4, X * X"), "16");
    ck_assert_str_eq(eval_ok(c, "n1", "\"two words\""), "\"two words\"");

    eval_fails(c, "n1", "1 +", "syntax error");
    eval_fails(c, "n1", "\"abc", "syntax error");
    eval_fails(c, "n1", "1 / 0", "error:badarith");
    eval_fails(c, "n1", "nosuchmod:f()", "error:undef");
    eval_fails(c, "n1", "throw(oops)", "throw:oops");
    eval_fails(c, "n1", "exit(bye)", "exit:bye");
    eval_fails(c, "n2", "erlang:error({custom, 42})", "error:{custom,42}");
    eval_fails(c, "n9", "ok", "unknown node n9");
    eval_fails(c, "n1@otherhost", "ok", "unknown node n1@otherhost");
    /* a multi-line expression is refused before it reaches the node */
    char out[256];
    ck_assert_int_eq(epx_fixture_eval(c, "n1", "1 +\n2", out, sizeof out), -1);
    ck_assert_contains(epx_fixture_last_error(), "one line");
    ck_assert_int_eq(epx_fixture_eval(c, "n1", NULL, out, sizeof out), -1);
    /* after all that the nodes still answer, in order */
    ck_assert_str_eq(eval_ok(c, "n1", "ok"), "ok");
    ck_assert_str_eq(eval_ok(c, "n2", "node()"), "n2@localhost");
    /* out may be NULL */
    ck_assert_epx_ok(epx_fixture_eval(c, "n1", "ok", NULL, 0));
}
END_TEST

/* call must fail with text in the message */
#define ck_assert_fails(call, text)                                                    \
    do {                                                                               \
        int r_ = (call);                                                               \
        ck_assert_msg(r_ == -1, "%s returned %d", #call, r_);                          \
        ck_assert_msg(strstr(epx_fixture_last_error(), (text)) != NULL,                 \
                      "%s: expected \"%s\" in \"%s\"", #call, (text),                  \
                      epx_fixture_last_error());                                       \
    } while (0)

START_TEST(bad_names_and_syntax)
{
    epx_cluster *c = start(2, NULL);
    ck_assert_fails(epx_fixture_sees(c, "n1", "n9"), "unknown node n9");
    ck_assert_fails(epx_fixture_sees(c, "n7", "n1"), "unknown node n7");
    ck_assert_fails(epx_fixture_sees(c, NULL, "n1"), "unknown node");
    ck_assert_fails(epx_fixture_split(c, "n1 n9"), "unknown node n9");
    ck_assert_fails(epx_fixture_split(c, "n1,x2 n2"), "unknown node x2");
    ck_assert_fails(epx_fixture_split(c, "n1 -> n2"), "'->'");
    ck_assert_fails(epx_fixture_split(c, NULL), "no islands");
    ck_assert_fails(epx_fixture_cut(c, "n1 n9"), "unknown node n9");
    ck_assert_fails(epx_fixture_cut(c, "n9 -> n1"), "unknown node n9");
    ck_assert_fails(epx_fixture_cut(c, "n1 ->"), "'->'");
    ck_assert_fails(epx_fixture_cut(c, "n1 -> n2 -> n1"), "'->'");
    ck_assert_fails(epx_fixture_cut(c, "n1,,n2"), "empty");
    ck_assert_fails(epx_fixture_cut(c, "n1"), "two islands");
    ck_assert_fails(epx_fixture_cut(c, "n1 n1"), "two islands");       /* n1 in two islands */
    ck_assert_fails(epx_fixture_split(c, "n1,n2 n2"), "two islands");
    ck_assert_fails(epx_fixture_cut(c, ""), "two islands");
    ck_assert_fails(epx_fixture_fix(c, "n1 n9"), "unknown node n9");
    ck_assert_fails(epx_fixture_isolate(c, "n9"), "unknown node n9");
    ck_assert_fails(epx_fixture_isolate(c, NULL), "unknown node");
    ck_assert_fails(epx_fixture_control(c, "BOGUS", NULL, 0), "unknown command");
    unsigned char small[3];
    ck_assert_fails(epx_fixture_visibility(c, small, sizeof small), "4 bytes");
    /* none of them left a rule behind */
    assert_rules(c, "OK []");
    ck_assert_epx_connected(c, 1);

    /* no cluster */
    ck_assert_fails(epx_fixture_split(NULL, "n1 n2"), "no cluster");
    ck_assert_fails(epx_fixture_heal(NULL), "no cluster");
    ck_assert_fails(epx_fixture_await_partition(NULL, 1), "no cluster");
    ck_assert_int_eq(epx_fixture_size(NULL), 0);
    ck_assert_int_eq(epx_fixture_daemon_pid(NULL), -1);
    ck_assert_int_eq(epx_fixture_net_ticktime(NULL), -1);
    epx_fixture_stop_cluster(NULL);
}
END_TEST

/* start_cluster must return NULL, fast, with text in the message */
static void start_fails(int n, const epx_options *o, const char *text, const char *text2)
{
    long long t0 = tu_now_ms();
    epx_cluster *c = epx_fixture_start_cluster(n, o);
    long long ms = tu_now_ms() - t0;
    if (c) {
        track_cluster(c);
        epx_fixture_stop_cluster(c);
    }
    ck_assert_msg(c == NULL, "start_cluster(%d) succeeded, expected \"%s\"", n, text);
    const char *e = epx_fixture_last_error();
    ck_assert_msg(strstr(e, text) != NULL, "expected \"%s\" in \"%s\"", text, e);
    ck_assert_msg(!text2 || strstr(e, text2) != NULL, "expected \"%s\" in \"%s\"", text2, e);
    ck_assert_msg(ms < 5000, "start_cluster(%d) took %lld ms to fail with: %s", n, ms, e);
}

/* Write a file of this mode in tmpdir (made if need be); its path. */
static const char *tmp_file(const char *name, const char *text, mode_t mode)
{
    static char path[2][400];
    static int k;
    make_tmpdir();
    char *p = path[k++ % 2];
    snprintf(p, sizeof path[0], "%s/%s", tmpdir, name);
    FILE *f = fopen(p, "w");
    ck_assert_ptr_nonnull(f);
    fputs(text, f);
    ck_assert_int_eq(fclose(f), 0);
    ck_assert_int_eq(chmod(p, mode), 0);
    return p;
}

/* start_in_sandbox's SIGTERM handler: in any process but the sandbox
 * itself, it tells the sandbox that it ran (by signal: the library may
 * close every inherited fd), and exits. */
static pid_t sandbox_pid;
static volatile sig_atomic_t sandbox_handler_ran;
static void sandbox_on_term(int sig)
{
    (void)sig;
    if (getpid() != sandbox_pid)
        kill(sandbox_pid, SIGUSR1);
    _exit(99);
}

static void sandbox_on_usr1(int sig)
{
    (void)sig;
    sandbox_handler_ran = 1;
}

/* start_cluster in a child of ours, in a process group of its own, with a
 * SIGTERM handler that only notes it ran: any child the library forks
 * inherits that handler until it execs, and must never run it (libcheck's
 * own handler, in its place, kills the test's process group).  Returns the
 * child's wait status; msg gets "NULL|STARTED <ms> <handler ran: 0|1>
 * <message>". */
static int start_in_sandbox(int n, const epx_options *o, char *msg, size_t len)
{
    int p[2];
    ck_assert_int_eq(pipe2(p, O_CLOEXEC), 0);
    pid_t parent = getpid();
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent)
            _exit(127);
        setpgid(0, 0);
        close(p[0]);
        sandbox_pid = getpid();
        sandbox_handler_ran = 0;
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = sandbox_on_usr1;
        sigaction(SIGUSR1, &sa, NULL);
        sa.sa_handler = sandbox_on_term;
        sigaction(SIGTERM, &sa, NULL);
        /* one CPU for us and our children: a parent woken by its child may
         * then run before the child goes on, which makes a race between
         * the two more likely to show */
        cpu_set_t one;
        CPU_ZERO(&one);
        CPU_SET(sched_getcpu() >= 0 ? sched_getcpu() : 0, &one);
        sched_setaffinity(0, sizeof one, &one);
        long long t0 = tu_now_ms();
        epx_cluster *c = epx_fixture_start_cluster(n, o);
        long long ms = tu_now_ms() - t0;
        int ran = sandbox_handler_ran;
        char line[2048];
        int k = snprintf(line, sizeof line, "%s %lld %d %s", c ? "STARTED" : "NULL", ms, ran,
                         c ? "" : epx_fixture_last_error());
        epx_fixture_stop_cluster(c);
        if (write(p[1], line, k < (int)sizeof line ? (size_t)k : sizeof line - 1) < 0)
            _exit(1);
        _exit(0);
    }
    close(p[1]);
    track(pid, "sandbox");
    size_t used = 0;
    long long deadline = tu_now_ms() + 30000;
    for (;;) {
        struct pollfd pf = { p[0], POLLIN, 0 };
        int left = (int)(deadline - tu_now_ms());
        if (left <= 0 || poll(&pf, 1, left) <= 0)
            break;
        ssize_t k = read(p[0], msg + used, len - 1 - used);
        if (k <= 0 || (used += (size_t)k) >= len - 1)
            break;
    }
    msg[used] = 0;
    close(p[0]);
    int st = 0;
    if (!TU_WAIT_UNTIL(waitpid(pid, &st, WNOHANG) == pid, 10000)) {
        kill(pid, SIGKILL);
        waitpid(pid, &st, 0);
    }
    return st;
}

START_TEST(start_failures)
{
    epx_options o = { 0 };
    o.erl = "/nope/erl";
    start_fails(2, &o, "erl not found: /nope/erl", NULL);

    memset(&o, 0, sizeof o);
    o.epmdpxy = "/nope/epmdpxy";
    start_fails(2, &o, "epmdpxy not found: /nope/epmdpxy", NULL);
    o.epmdpxy = tmp_file("not-executable", "#!/bin/sh\nexit 0\n", 0644);
    start_fails(2, &o, "epmdpxy not executable", o.epmdpxy);
    o.epmdpxy = "/bin/true";                     /* runs, never says READY */
    start_fails(2, &o, "/bin/true", "exited with status 0 before READY");

    memset(&o, 0, sizeof o);
    o.erl = "/bin/true";                         /* "erl" that exits at once */
    start_fails(2, &o, "n1@localhost", "before READY");

    char *saved = getenv("EPX_EPMDPXY") ? strdup(getenv("EPX_EPMDPXY")) : NULL;
    setenv("EPX_EPMDPXY", "/nope/from-env", 1);
    start_fails(1, NULL, "/nope/from-env", "$EPX_EPMDPXY");
    if (saved) {
        setenv("EPX_EPMDPXY", saved, 1);
        free(saved);
    } else {
        unsetenv("EPX_EPMDPXY");
    }
    saved = getenv("EPX_AGENT_DIR") ? strdup(getenv("EPX_AGENT_DIR")) : NULL;
    setenv("EPX_AGENT_DIR", "/nope/agent", 1);
    start_fails(1, NULL, "epx_agent.beam not found", "/nope/agent");
    if (saved) {
        setenv("EPX_AGENT_DIR", saved, 1);
        free(saved);
    } else {
        unsetenv("EPX_AGENT_DIR");
    }

    start_fails(0, NULL, "cluster size 0 out of range (1..32)", NULL);
    start_fails(33, NULL, "cluster size 33 out of range (1..32)", NULL);
    start_fails(-1, NULL, "out of range", NULL);

    const char *bad_prefixes[] = { "", "two words", "a@b", "q'uote",
                                   "abcdefghijklmnopqrstu" /* 21 */ };
    for (size_t i = 0; i < sizeof bad_prefixes / sizeof *bad_prefixes; i++) {
        memset(&o, 0, sizeof o);
        o.prefix = bad_prefixes[i];
        start_fails(1, &o, "invalid node name prefix", bad_prefixes[i]);
    }
    memset(&o, 0, sizeof o);
    o.mode = 5;
    start_fails(1, &o, "unknown mode 5", NULL);
    memset(&o, 0, sizeof o);
    o.net_ticktime = -1;
    start_fails(1, &o, "net_ticktime -1", NULL);
}
END_TEST

START_TEST(start_not_a_program)
{
    epx_options o = { 0 };
    /* an epmdpxy that cannot be exec'd (ENOEXEC): the message says why.
     * Run apart: see start_in_sandbox. */
    o.epmdpxy = tmp_file("not-a-program", "this is not a program\n", 0755);
    char msg[2048];
    int st = start_in_sandbox(2, &o, msg, sizeof msg);
    ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "the sandbox ended with status 0x%x: %s",
                  (unsigned)st, msg);
    ck_assert_msg(!strncmp(msg, "NULL ", 5), "start_cluster said: %s", msg);
    ck_assert_msg(atoll(msg + 5) < 5000, "took too long: %s", msg);
    ck_assert_contains(msg, "cannot run epmdpxy");
    ck_assert_contains(msg, "Exec format error");
    const char *ran = strchr(msg + 5, ' ');
    ck_assert_ptr_nonnull(ran);
    ck_assert_msg(ran[1] == '0',
                  "start_cluster(epmdpxy = %s): the library SIGTERMed its forked child after the "
                  "exec failed and before it exited, and the child ran the caller's SIGTERM "
                  "handler (libcheck's kills the whole test process group): %s",
                  o.epmdpxy, msg);
}
END_TEST

/* ---- options reach the nodes -------------------------------------------------- */

/* Compile one module with erlc into dir; 0 or -1. */
static int erlc(const char *dir, const char *src)
{
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent)
            _exit(127);
        execlp("erlc", "erlc", "-o", dir, src, (char *)NULL);
        _exit(127);
    }
    track(pid, "erlc");
    int st = 0;
    if (!TU_WAIT_UNTIL(waitpid(pid, &st, WNOHANG) == pid, 60000)) {
        kill(pid, SIGKILL);
        waitpid(pid, &st, 0);
        return -1;
    }
    return WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0 : -1;
}

static int count_logs(const char *dir, const char *prefix)
{
    int n = 0;
    DIR *d = opendir(dir);
    if (!d)
        return -1;
    for (struct dirent *e; (e = readdir(d)) != NULL;)
        if (!strncmp(e->d_name, prefix, strlen(prefix)))
            n++;
    closedir(d);
    return n;
}

START_TEST(options_reach_nodes)
{
    make_tmpdir();
    char src[400], beam[400];
    snprintf(src, sizeof src, "%s/epx_fixture_probe.erl", tmpdir);
    snprintf(beam, sizeof beam, "%s/epx_fixture_probe.beam", tmpdir);
    FILE *f = fopen(src, "w");
    ck_assert_ptr_nonnull(f);
    fputs("-module(epx_fixture_probe).\n-export([answer/0]).\nanswer() -> 42.\n", f);
    ck_assert_int_eq(fclose(f), 0);
    ck_assert_msg(erlc(tmpdir, src) == 0, "erlc %s failed", src);
    ck_assert_int_eq(access(beam, R_OK), 0);

    const char *args[] = { "-kernel", "epx_fixture_env", "[{answer,42}]",
                           "-epx_fixture_flag", "hello", NULL };
    const char *paths[] = { tmpdir, NULL };
    epx_options o = { 0 };
    o.prefix = "db";
    o.cookie = "epx_fixture_test_cookie";
    o.net_ticktime = 3;
    o.erl_args = args;
    o.code_paths = paths;
    o.log_dir = tmpdir;
    epx_cluster *c = start(2, &o);

    ck_assert_str_eq(epx_fixture_node(c, 1), "db1@localhost");
    ck_assert_str_eq(epx_fixture_node(c, 2), "db2@localhost");
    ck_assert_str_eq(epx_fixture_cookie(c), "epx_fixture_test_cookie");
    ck_assert_int_eq(epx_fixture_net_ticktime(c), 3);
    ck_assert_epx_sees(c, "db1", "db2");
    ck_assert_fails(epx_fixture_sees(c, "n1", "db2"), "unknown node n1");
    char want_dir[400];
    snprintf(want_dir, sizeof want_dir, "\"%s\"", tmpdir);
    for (int i = 1; i <= 2; i++) {
        const char *node = epx_fixture_node(c, i);
        ck_assert_str_eq(eval_ok(c, node, "node()"), node);
        ck_assert_str_eq(eval_ok(c, node, "erlang:get_cookie()"), "epx_fixture_test_cookie");
        ck_assert_str_eq(eval_ok(c, node, "net_kernel:get_net_ticktime()"), "3");
        ck_assert_str_eq(eval_ok(c, node, "application:get_env(kernel, epx_fixture_env)"),
                         "{ok,[{answer,42}]}");
        ck_assert_str_eq(eval_ok(c, node, "init:get_argument(epx_fixture_flag)"),
                         "{ok,[[\"hello\"]]}");
        ck_assert_str_eq(eval_ok(c, node, "epx_fixture_probe:answer()"), "42");
        ck_assert_str_eq(eval_ok(c, node, "filename:dirname(code:which(epx_fixture_probe))"),
                         want_dir);
        /* the library's own default: a node sees exactly what the network allows */
        ck_assert_str_eq(eval_ok(c, node, "application:get_env(kernel, "
                                          "prevent_overlapping_partitions)"),
                         "{ok,false}");
    }
    /* logs go to log_dir while the nodes run, and are removed after */
    ck_assert_int_eq(count_logs(tmpdir, "epx-cluster."), 1);
    stop(c);
    if (!getenv("EPX_KEEP_LOGS"))
        ck_assert_int_eq(count_logs(tmpdir, "epx-cluster."), 0);

    /* a test that wants global's prevent_overlapping_partitions says so */
    const char *pop[] = { "-kernel", "prevent_overlapping_partitions", "true", NULL };
    memset(&o, 0, sizeof o);
    o.erl_args = pop;
    c = start(1, &o);
    ck_assert_str_eq(eval_ok(c, "n1", "application:get_env(kernel, "
                                      "prevent_overlapping_partitions)"),
                     "{ok,true}");
}
END_TEST

/* ---- <epx_check.h> ------------------------------------------------------------ */

START_TEST(checked_split)
{
    epx_cluster *c = epx_check_cluster;
    ck_assert_ptr_nonnull(c);
    track_cluster(c);
    ck_assert_int_eq(epx_fixture_size(c), 3);
    sh->checked_daemon = epx_fixture_daemon_pid(c);
    sh->checked_daemon_start = pid_start(sh->checked_daemon);
    ck_assert_epx_connected(c, WAIT_MS);
    ck_assert_epx_sees(c, "n1", "n2");
    ck_assert_epx_ok(epx_fixture_split(c, "n1 n2,n3"));
    ck_assert_epx_partition(c, WAIT_MS);
    ck_assert_epx_not_sees(c, "n1", "n2");
    ck_assert_epx_not_sees(c, "n3", "n1");
    ck_assert_epx_sees(c, "n2", "n3");
    ck_assert_str_eq(epx_check_matrix_(c), "n1 sees: nobody\nn2 sees: n3\nn3 sees: n2");
    ck_assert_epx_ok(epx_fixture_heal(c));
    ck_assert_epx_ok(epx_fixture_connect_all(c));
    ck_assert_epx_connected(c, WAIT_MS);
    ck_assert_epx_sees(c, "n1", "n3");
    /* leave a rule behind: the next test must not see it */
    ck_assert_epx_ok(epx_fixture_isolate(c, "n2"));
    sh->checked_dirty = 1;
}
END_TEST

START_TEST(checked_fresh)
{
    epx_cluster *c = epx_check_cluster;
    ck_assert_ptr_nonnull(c);
    track_cluster(c);
    pid_t d = epx_fixture_daemon_pid(c);
    ck_assert_int_gt(d, 0);
    /* Without the test before (it runs first in this TCase) there is
     * nothing to be fresh from: that is a failure, not a pass. */
    ck_assert_msg(sh->checked_daemon > 0 && sh->checked_dirty,
                  "checked_split did not run to its end before this test, so there is no "
                  "earlier cluster to tell this one apart from");
    /* another daemon (the same pid would have to be a reused one) */
    ck_assert(d != sh->checked_daemon || pid_start(d) != sh->checked_daemon_start);
    ck_assert_msg(TU_WAIT_UNTIL(!proc_live(sh->checked_daemon, sh->checked_daemon_start), 10000),
                  "the previous test's daemon %d still runs", (int)sh->checked_daemon);
    /* the rule checked_split left is not in this cluster */
    assert_rules(c, "OK []");
    ck_assert_epx_connected(c, WAIT_MS);
    ck_assert_epx_sees(c, "n2", "n1");
}
END_TEST

/* A second checked fixture in the same file, of another size and prefix:
 * each TCase must get the cluster it asked for. */
static const epx_options other_opts = { .prefix = "m" };

START_TEST(checked_other_size)
{
    epx_cluster *c = epx_check_cluster;
    ck_assert_ptr_nonnull(c);
    track_cluster(c);
    ck_assert_msg(epx_fixture_size(c) == 2 && !strcmp(epx_fixture_node(c, 1), "m1@localhost"),
                  "epx_check_add_fixture(tc, 2, {.prefix = \"m\"}) gave this TCase %d nodes "
                  "named %s...: another TCase's epx_check_add_fixture overrode it",
                  epx_fixture_size(c), epx_fixture_node(c, 1));
    ck_assert_epx_sees(c, "m1", "m2");
}
END_TEST

/* ---- nothing left behind ------------------------------------------------------ */

/* Read one line from fd within timeout_ms; 0 or -1. */
static int read_line_within(int fd, char *out, size_t len, int timeout_ms)
{
    long long deadline = tu_now_ms() + timeout_ms;
    size_t n = 0;
    while (n + 1 < len) {
        int left = (int)(deadline - tu_now_ms());
        struct pollfd p = { fd, POLLIN, 0 };
        if (left <= 0)
            return -1;
        int r = poll(&p, 1, left);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return -1;
        ssize_t k = read(fd, out + n, 1);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            return -1;
        if (out[n] == '\n') {
            out[n] = 0;
            return 0;
        }
        n++;
    }
    return -1;
}

static char kill_token[96];

static void *start_5_and_return(void *arg)
{
    thread_run *r = arg;
    r->c = epx_fixture_start_cluster(5, NULL);
    return NULL;
}

static int sigkill_leftovers(const pid_t *pids, const unsigned long long *starts, int np,
                             char *desc, size_t len)
{
    int live = 0;
    size_t used = 0;
    desc[0] = 0;
    for (int i = 0; i < np; i++)
        if (proc_live(pids[i], starts[i])) {
            live++;
            int w = snprintf(desc + used, len - used, "%d ", (int)pids[i]);
            used += w > 0 && (size_t)w < len - used ? (size_t)w : 0;
        }
    int marked = marked_procs(kill_token, desc + used, len - used);
    return live + (marked > 0 ? marked : 0);
}

START_TEST(sigkilled_test_leaves_nothing)
{
    snprintf(kill_token, sizeof kill_token, "%s-sigkill", sh->mark);
    int p[2];
    ck_assert_int_eq(pipe2(p, O_CLOEXEC), 0);
    pid_t parent = getpid();
    pid_t child = fork();
    ck_assert_int_ge(child, 0);
    if (child == 0) {
        /* a "test process": starts 5 nodes, reports, then waits to be killed */
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent)
            _exit(127);
        close(p[0]);
        setenv(MARK_VAR, kill_token, 1);
        /* started by a thread that is gone by the time of the SIGKILL: the
         * nodes must outlive it, and still not the process */
        thread_run tr = { 0 };
        pthread_t t;
        if (pthread_create(&t, NULL, start_5_and_return, &tr) != 0)
            _exit(1);
        pthread_join(t, NULL);
        epx_cluster *c = tr.c;
        char line[512];
        int len;
        if (!c) {
            len = snprintf(line, sizeof line, "ERR %s\n", epx_fixture_last_error());
        } else {
            len = snprintf(line, sizeof line, "OK %d", epx_fixture_daemon_pid(c));
            for (int i = 1; i <= 5; i++)
                len += snprintf(line + len, sizeof line - (size_t)len, " %d",
                                epx_fixture_node_pid(c, i));
            len += snprintf(line + len, sizeof line - (size_t)len, "\n");
        }
        if (write(p[1], line, (size_t)len) != len)
            _exit(1);
        for (;;)
            pause();
    }
    close(p[1]);
    track(child, "test child");
    char line[512];
    int got = read_line_within(p[0], line, sizeof line, 60000);
    close(p[0]);
    pid_t pids[6] = { 0 };
    unsigned long long starts[6] = { 0 };
    int np = 0;
    if (got == 0 && !strncmp(line, "OK ", 3)) {
        char *s = line + 3, *end;
        while (np < 6 && (pids[np] = (pid_t)strtol(s, &end, 10)) > 0 && end != s) {
            track(pids[np], np ? "node" : "epmdpxy");
            starts[np] = pid_start(pids[np]);
            np++;
            s = end;
        }
    }
    int alive = 1;
    for (int i = 0; i < np; i++)
        alive &= starts[i] != 0 && proc_live(pids[i], starts[i]);
    kill(child, SIGKILL);
    waitpid(child, NULL, 0);
    ck_assert_msg(got == 0, "the child reported nothing within 60 s");
    ck_assert_msg(np == 6, "the child said: %s", line);
    ck_assert_msg(alive, "some of the child's processes were not running: %s", line);

    char desc[2048];
    long long t0 = tu_now_ms();
    int clean = TU_WAIT_UNTIL(sigkill_leftovers(pids, starts, np, desc, sizeof desc) == 0, 5000);
    ck_assert_msg(clean, "5 s after SIGKILL these still run: %s", desc);
    fprintf(stderr, "fixture: after SIGKILL everything was gone in %lld ms\n",
            tu_now_ms() - t0);
}
END_TEST

START_TEST(no_leftovers)
{
    char desc[4096], desc2[4096];
    /* A cluster of its own, so that the check below has something to find
     * even when this test runs alone, and proof that the scan sees marked
     * processes at all: while it runs, the daemon and both nodes carry the
     * mark. */
    epx_cluster *c = start(2, NULL);
    int seen = marked_procs(sh->mark, desc, sizeof desc);
    ck_assert_msg(seen >= 3, "the scan for marked processes found %d while a daemon and two "
                  "nodes run: %s", seen, desc);
    ck_assert_int_gt(sh->ntracked, 0);
    stop(c);
    int clean = TU_WAIT_UNTIL(tracked_live(desc, sizeof desc) == 0 &&
                              marked_procs(sh->mark, desc2, sizeof desc2) == 0,
                              10000);
    ck_assert_msg(clean, "left behind by the suite: tracked [%s], marked [%s] (of %d tracked)",
                  desc, desc2, sh->ntracked);
}
END_TEST

/* ---- dead nodes --------------------------------------------------------------- */

START_TEST(dead_node)
{
    epx_cluster *c = start(3, NULL);
    for (int i = 1; i <= 3; i++)
        ck_assert_int_eq(epx_fixture_node_alive(c, i), 1);
    ck_assert_int_eq(epx_fixture_node_alive(c, 0), -1);
    ck_assert_int_eq(epx_fixture_node_alive(c, 4), -1);
    ck_assert_int_eq(epx_fixture_node_alive(NULL, 1), -1);

    /* killed behind the library's back, as `kill -9` from a shell does */
    ck_assert_int_eq(kill(epx_fixture_node_pid(c, 2), SIGKILL), 0);
    ck_assert_msg(TU_WAIT_UNTIL(epx_fixture_node_alive(c, 2) == 0, 10000),
                  "n2 still alive 10 s after SIGKILL");
    ck_assert_int_eq(epx_fixture_node_alive(c, 1), 1);
    ck_assert_int_eq(epx_fixture_node_alive(c, 3), 1);

    /* its row is unknown, not "sees nobody" */
    unsigned char seen[9];
    ck_assert_epx_ok(epx_fixture_visibility(c, seen, sizeof seen));
    for (int j = 0; j < 3; j++)
        ck_assert_msg(seen[3 + j] == EPX_SEEN_UNKNOWN, "seen[n2][n%d] = %d", j + 1, seen[3 + j]);
    ck_assert_int_eq(seen[0], 0);
    ck_assert_int_eq(seen[8], 0);
    ck_assert_int_eq(seen[2], 1);   /* n1 and n3 still see each other */
    ck_assert_int_eq(seen[6], 1);
    char m[1024];
    ck_assert_epx_ok(epx_fixture_matrix(c, m, sizeof m));
    ck_assert_contains(m, "\nn2 is dead\nn3 sees:");

    /* waits fail at once, naming the dead node and how it died */
    long long t0 = tu_now_ms();
    ck_assert_int_eq(epx_fixture_await_connected(c, 20000), -1);
    long long ms = tu_now_ms() - t0;
    ck_assert_contains(epx_fixture_last_error(), "n2 is dead (killed by signal 9)");
    ck_assert_msg(ms < 5000, "await_connected took %lld ms to fail on a dead node", ms);
    t0 = tu_now_ms();
    ck_assert_int_eq(epx_fixture_await_partition(c, 20000), -1);
    ms = tu_now_ms() - t0;
    ck_assert_contains(epx_fixture_last_error(), "n2 is dead (killed by signal 9)");
    ck_assert_msg(ms < 5000, "await_partition took %lld ms to fail on a dead node", ms);
    ck_assert_fails(epx_fixture_sees(c, "n2", "n1"), "n2 is dead (killed by signal 9)");
    ck_assert_fails(epx_fixture_eval(c, "n2", "ok", NULL, 0), "n2 is dead");

    /* a node that exits by itself is dead too, with its exit status */
    ck_assert_fails(epx_fixture_eval(c, "n3", "erlang:halt(3)", NULL, 0), "n3 is dead");
    ck_assert_msg(TU_WAIT_UNTIL(epx_fixture_node_alive(c, 3) == 0, 10000),
                  "n3 still alive after halt(3)");
    ck_assert_fails(epx_fixture_eval(c, "n3", "ok", NULL, 0), "n3 is dead (exit status 3)");
    ck_assert_epx_ok(epx_fixture_matrix(c, m, sizeof m));
    ck_assert_contains(m, "\nn2 is dead\nn3 is dead");
    /* the survivor answers as before */
    ck_assert_str_eq(eval_ok(c, "n1", "1 + 1"), "2");
    ck_assert_epx_ok(epx_fixture_kill_node(c, "n1"));
    ck_assert_int_eq(epx_fixture_node_alive(c, 1), 0);
    ck_assert_fails(epx_fixture_sees(c, "n1", "n2"), "n1 is dead (killed by signal 9)");
}
END_TEST

/* ---- threads -------------------------------------------------------------------- */

/* The whole life of a cluster, on whatever stack this thread has. */
static void *whole_life(void *arg)
{
    thread_run *r = arg;
    char m[512];
    epx_cluster *c = epx_fixture_start_cluster(2, NULL);
    if (!c) {
        snprintf(r->msg, sizeof r->msg, "start: %s", epx_fixture_last_error());
        return NULL;
    }
    track_cluster(c);
    const char *step = "split";
    if (epx_fixture_split(c, "n1 n2") == 0 && (step = "await_partition") &&
        epx_fixture_await_partition(c, WAIT_MS) == 0 && (step = "matrix") &&
        epx_fixture_matrix(c, m, sizeof m) == 0 && (step = "heal") &&
        epx_fixture_heal(c) == 0 && (step = "connect_all") && epx_fixture_connect_all(c) == 0 &&
        (step = "await_connected") && epx_fixture_await_connected(c, WAIT_MS) == 0) {
        r->ok = 1;
        snprintf(r->msg, sizeof r->msg, "%s", m);
    } else {
        snprintf(r->msg, sizeof r->msg, "%s: %s", step, epx_fixture_last_error());
    }
    epx_fixture_stop_cluster(c);
    return NULL;
}

START_TEST(small_stack)
{
    /* 256 KiB: a library call chain that keeps megabytes on the stack
     * crashes here */
    thread_run r = { 0 };
    pthread_attr_t a;
    pthread_attr_init(&a);
    ck_assert_int_eq(pthread_attr_setstacksize(&a, 256 * 1024), 0);
    pthread_t t;
    ck_assert_int_eq(pthread_create(&t, &a, whole_life, &r), 0);
    pthread_attr_destroy(&a);
    pthread_join(t, NULL);
    ck_assert_msg(r.ok, "on a 256 KiB stack: %s", r.msg);
    ck_assert_str_eq(r.msg, "n1 sees: nobody\nn2 sees: nobody");
}
END_TEST

static void *start_and_return(void *arg)
{
    thread_run *r = arg;
    r->tid = gettid();
    r->c = epx_fixture_start_cluster(3, NULL);
    if (!r->c)
        snprintf(r->msg, sizeof r->msg, "%s", epx_fixture_last_error());
    return NULL;
}

START_TEST(outlives_thread)
{
    thread_run r = { 0 };
    pthread_t t;
    ck_assert_int_eq(pthread_create(&t, NULL, start_and_return, &r), 0);
    pthread_join(t, NULL);
    ck_assert_msg(r.c != NULL, "start in a thread: %s", r.msg);
    int k = 0;
    while (k < MAX_CL && cl[k])
        k++;
    ck_assert_int_lt(k, MAX_CL);
    cl[k] = r.c;                /* teardown stops it */
    track_cluster(r.c);
    /* The thread is gone for good once the kernel has released it: any
     * death signal tied to it has been sent by then. */
    char task[64];
    snprintf(task, sizeof task, "/proc/self/task/%d", (int)r.tid);
    ck_assert_msg(TU_WAIT_UNTIL(access(task, F_OK) != 0, 10000), "thread %d never went",
                  (int)r.tid);
    epx_cluster *c = r.c;
    char reply[64];
    ck_assert_epx_ok(epx_fixture_control(c, "PING", reply, sizeof reply));
    ck_assert_str_eq(reply, "OK PONG");
    for (int i = 1; i <= 3; i++) {
        ck_assert_str_eq(eval_ok(c, epx_fixture_node(c, i), "node()"), epx_fixture_node(c, i));
        ck_assert_int_eq(epx_fixture_node_alive(c, i), 1);
    }
    ck_assert_epx_connected(c, WAIT_MS);
}
END_TEST

/* ---- eval deadlines --------------------------------------------------------------- */

START_TEST(eval_deadline)
{
    epx_options o = { 0 };
    o.timeout_ms = 4000;
    o.no_mesh = 1;
    epx_cluster *c = start(1, &o);
    char out[512];
    long long t0 = tu_now_ms();
    int r = epx_fixture_eval(c, "n1", "register(epx_stuck, self()), receive after infinity -> ok end",
                             out, sizeof out);
    long long ms = tu_now_ms() - t0;
    ck_assert_int_eq(r, -1);
    ck_assert_contains(epx_fixture_last_error(), "within 4000 ms");
    ck_assert_msg(ms >= 3900 && ms < 8000, "the stuck eval returned after %lld ms", ms);
    /* the node is not wedged: the next request is answered at once */
    t0 = tu_now_ms();
    ck_assert_str_eq(eval_ok(c, "n1", "1 + 1"), "2");
    ck_assert_msg(tu_now_ms() - t0 < 2000, "the next eval took %lld ms", tu_now_ms() - t0);
    /* and the stuck evaluation was killed, not left to run */
    ck_assert_msg(TU_WAIT_UNTIL(!strcmp(eval_ok(c, "n1", "whereis(epx_stuck)"), "undefined"),
                                5000),
                  "the stuck evaluation still runs");
    ck_assert_int_eq(epx_fixture_node_alive(c, 1), 1);
}
END_TEST

START_TEST(sees_error_whole)
{
    epx_options o = { 0 };
    o.timeout_ms = 4000;
    epx_cluster *c = start(2, &o);
    /* n1's agent stops answering (suspended, not dead): by a process that
     * stays, as a suspension ends with the process that made it */
    ck_assert_int_eq(epx_fixture_eval(c, "n1", "Me = self(), spawn(fun() -> "
                                      "erlang:suspend_process(whereis(epx_agent)), "
                                      "Me ! suspended, receive after infinity -> ok end end), "
                                      "receive suspended -> ok end",
                                      NULL, 0),
                     -1);
    ck_assert_int_eq(epx_fixture_sees(c, "n1", "n2"), -1);
    /* the whole message, with the request at its end */
    const char *e = epx_fixture_last_error();
    ck_assert_msg(strlen(e) > 63, "a %zu-character message: %s", strlen(e), e);
    ck_assert_contains(e, "no reply within 4000 ms to: lists:member('n2@localhost', nodes())");
}
END_TEST

/* ---- files and fds ---------------------------------------------------------------- */

/* Every entry of dir whose name starts with prefix must be a regular file
 * (not a symlink) of mode 0600: how many there are, or -1. */
static int private_files(const char *dir, const char *prefix)
{
    int n = 0;
    DIR *d = opendir(dir);
    if (!d)
        return -1;
    for (struct dirent *e; (e = readdir(d)) != NULL;) {
        if (strncmp(e->d_name, prefix, strlen(prefix)))
            continue;
        char p[700];
        struct stat st;
        snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
        if (lstat(p, &st) < 0 || !S_ISREG(st.st_mode) || (st.st_mode & 0777) != 0600) {
            n = -1;
            break;
        }
        n++;
    }
    closedir(d);
    return n;
}

START_TEST(log_files)
{
    make_tmpdir();
    epx_options o = { 0 };
    o.log_dir = tmpdir;
    epx_cluster *c = start(2, &o);
    /* one fresh directory of ours (0700), with every log in it (0600) */
    char dir[600] = "";
    int entries = 0;
    DIR *d = opendir(tmpdir);
    ck_assert_ptr_nonnull(d);
    for (struct dirent *e; (e = readdir(d)) != NULL;) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
            continue;
        entries++;
        snprintf(dir, sizeof dir, "%s/%s", tmpdir, e->d_name);
    }
    closedir(d);
    ck_assert_msg(entries == 1, "%d entries in log_dir, expected one directory", entries);
    ck_assert_contains(dir, "/epx-cluster.");
    struct stat st;
    ck_assert_int_eq(lstat(dir, &st), 0);
    ck_assert_msg(S_ISDIR(st.st_mode) && (st.st_mode & 0777) == 0700 && st.st_uid == getuid(),
                  "%s: mode 0%o, uid %d", dir, (unsigned)st.st_mode, (int)st.st_uid);
    ck_assert_int_eq(private_files(dir, "epx-daemon"), 1);
    ck_assert_int_eq(private_files(dir, "epx-node-n"), 2);
    stop(c);
    if (!getenv("EPX_KEEP_LOGS"))
        ck_assert_msg(lstat(dir, &st) < 0 && errno == ENOENT, "%s left after stop", dir);
}
END_TEST

START_TEST(closed_stdio)
{
    /* A test program whose stdin and stdout are closed: the daemon's and
     * the nodes' pipes then get fds 0 and 1, and must still end up as the
     * children's stdout, not be closed or clobbered on the way. */
    int p[2];
    ck_assert_int_eq(pipe2(p, O_CLOEXEC), 0);
    pid_t parent = getpid();
    pid_t child = fork();
    ck_assert_int_ge(child, 0);
    if (child == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent)
            _exit(127);
        close(p[0]);
        close(0);
        close(1);
        epx_options o = { 0 };
        o.timeout_ms = 20000;
        epx_cluster *c = epx_fixture_start_cluster(2, &o);
        char line[1024], out[128] = "";
        int len;
        if (!c)
            len = snprintf(line, sizeof line, "ERR %s\n", epx_fixture_last_error());
        else if (epx_fixture_eval(c, "n2", "node()", out, sizeof out) < 0)
            len = snprintf(line, sizeof line, "ERR eval: %s\n", epx_fixture_last_error());
        else
            len = snprintf(line, sizeof line, "OK %s\n", out);
        epx_fixture_stop_cluster(c);
        if (write(p[1], line, (size_t)len) != len)
            _exit(1);
        _exit(0);
    }
    close(p[1]);
    track(child, "test child");
    char line[1024] = "";
    int got = read_line_within(p[0], line, sizeof line, 60000);
    close(p[0]);
    if (!TU_WAIT_UNTIL(waitpid(child, NULL, WNOHANG) == child, 15000)) {
        kill(child, SIGKILL);
        waitpid(child, NULL, 0);
    }
    ck_assert_msg(got == 0, "the child reported nothing within 60 s");
    ck_assert_str_eq(line, "OK n2@localhost");
}
END_TEST

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st, (void)flag, (void)ftw;
    remove(path);
    return 0;
}

/* At the runner's exit (not a forked test's), the suite's directory goes. */
static void remove_suite_dir(void)
{
    if (getpid() != sh->runner || !sh->dir[0])
        return;
    if (getenv("EPX_KEEP_LOGS"))
        fprintf(stderr, "fixture: logs kept in %s\n", sh->dir);
    else
        nftw(sh->dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

Suite *fixture_suite(void)
{
    void *m = mmap(NULL, sizeof *sh, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    sh = m == MAP_FAILED ? &sh_local : m;
    memset(sh, 0, sizeof *sh);
    snprintf(sh->mark, sizeof sh->mark, "fx%d.%lld", (int)getpid(), tu_now_ms());
    const char *base = getenv("TMPDIR");
    snprintf(sh->dir, sizeof sh->dir, "%s/epx-fixture-XXXXXX", base && *base ? base : "/tmp");
    if (!mkdtemp(sh->dir))
        sh->dir[0] = 0;
    sh->runner = getpid();
    atexit(remove_suite_dir);

    Suite *s = suite_create("fixture");
    struct {
        const char *name;
        const TTest *test;
        int loop;
    } cases[] = {
        { "start_stop", start_stop, 3 },
        { "split_heal", split_heal, 0 },
        { "one_way_cut", one_way_cut, 0 },
        { "isolate", isolate_and_kill, 0 },
        { "isolate_except", isolate_except, 0 },
        { "modes", modes, 0 },
        { "await_timeout", await_timeout_message, 0 },
        { "eval_errors", eval_errors, 0 },
        { "bad_names", bad_names_and_syntax, 0 },
        { "start_failures", start_failures, 0 },
        { "start_not_a_program", start_not_a_program, 0 },
        { "options", options_reach_nodes, 0 },
        { "dead_node", dead_node, 0 },
        { "small_stack", small_stack, 0 },
        { "outlives_thread", outlives_thread, 0 },
        { "eval_deadline", eval_deadline, 0 },
        { "sees_error_whole", sees_error_whole, 0 },
        { "log_files", log_files, 0 },
        { "closed_stdio", closed_stdio, 0 },
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        TCase *tc = tcase_create(cases[i].name);
        tcase_add_checked_fixture(tc, setup, teardown);
        tcase_set_timeout(tc, 120);
        if (cases[i].loop)
            tcase_add_loop_test(tc, cases[i].test, 0, cases[i].loop);
        else
            tcase_add_test(tc, cases[i].test);
        suite_add_tcase(s, tc);
    }

    /* two TCases with checked fixtures of different sizes; "checked" is set
     * up last, so that a fixture overriding the other one shows here */
    TCase *tc = tcase_create("checked_other");
    tcase_add_checked_fixture(tc, setup, teardown);
    epx_check_add_fixture(tc, 2, &other_opts);
    tcase_add_test(tc, checked_other_size);
    suite_add_tcase(s, tc);

    tc = tcase_create("checked");
    tcase_add_checked_fixture(tc, setup, teardown);   /* the marker, before the cluster */
    epx_check_add_fixture(tc, 3, NULL);
    tcase_add_test(tc, checked_split);
    tcase_add_test(tc, checked_fresh);
    suite_add_tcase(s, tc);

    tc = tcase_create("sigkill");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, sigkilled_test_leaves_nothing);
    suite_add_tcase(s, tc);

    /* last: the whole suite left nothing running */
    tc = tcase_create("no_leftovers");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, no_leftovers);
    suite_add_tcase(s, tc);
    return s;
}
