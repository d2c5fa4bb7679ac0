/* cli_cluster: the epx-cluster program, driven as a user drives it.
 *
 * `up` runs in the background (its stdout on a pipe, or on a pseudo-
 * terminal for the live view) and the other subcommands are run against
 * it: split, status --json as the nodes see it, heal --reconnect, down;
 * then nothing of the cluster may be left.  Also: a node killed with
 * SIGKILL, Ctrl-C while the cluster starts, the live view on an 80-column
 * terminal, a second `up` of the same name, every command without a
 * cluster, a stale state file, usage errors and --help.
 *
 * The binary is $EPX_CLUSTER (default build/epx-cluster).  Every test has
 * its own state directory (XDG_RUNTIME_DIR, made and removed here) and
 * its own cluster name. */
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pty.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define JSMN_STATIC
#include <jsmn.h>

#include "testutil.h"
#include "tucase.h"

#define START_MS   90000    /* up: daemon and nodes started and meshed */
#define CMD_MS     30000    /* any other command */
#define SLOW_MS    90000    /* heal --reconnect, down */
#define NAP_MS     100

/* ---- fixture: a private state directory, a unique name ------------------- */

static char tmpdir[128];             /* ours: holds the state dir and logs */
static char cname[64];               /* this test's cluster name */
static char *saved_xdg;
static int name_seq;

/* the background `up` */
static pid_t up_pid = -1;
static int up_fd = -1;               /* its stdout (pipe or pty master) */
static int up_status = -1;           /* waitpid status once reaped */
static char *up_out;                 /* everything it printed */
static size_t up_len, up_cap;

/* processes of the cluster (from status --json), for the leak check */
static int cl_pids[64];
static int cl_npids;

static const char *cli_path(void)
{
    const char *p = getenv("EPX_CLUSTER");
    return p && *p ? p : "build/epx-cluster";
}

static void setup(void)
{
    const char *x = getenv("XDG_RUNTIME_DIR");
    saved_xdg = x ? strdup(x) : NULL;
    snprintf(tmpdir, sizeof tmpdir, "/tmp/epx-cli-test.XXXXXX");
    ck_assert_msg(mkdtemp(tmpdir) != NULL, "mkdtemp: %s", strerror(errno));
    setenv("XDG_RUNTIME_DIR", tmpdir, 1);
    snprintf(cname, sizeof cname, "t%d-%d", (int)getpid(), ++name_seq);
    up_pid = -1;
    up_fd = -1;
    up_status = -1;
    up_len = 0;
    cl_npids = 0;
}

static void rm_tree(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
            continue;
        char p[PATH_MAX];
        snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
        struct stat st;
        if (lstat(p, &st) == 0 && S_ISDIR(st.st_mode))
            rm_tree(p);
        else
            unlink(p);
    }
    closedir(d);
    rmdir(dir);
}

/* Reap up within timeout_ms: 1 if it exited (status in up_status). */
static int up_wait(int timeout_ms)
{
    if (up_pid <= 0)
        return 1;
    long long deadline = tu_now_ms() + timeout_ms;
    for (;;) {
        int st;
        pid_t r = waitpid(up_pid, &st, WNOHANG);
        if (r == up_pid) {
            up_status = st;
            up_pid = -1;
            return 1;
        }
        if (r < 0 && errno != EINTR) {
            up_pid = -1;
            return 1;
        }
        if (tu_now_ms() >= deadline)
            return 0;
        /* keep its stdout drained meanwhile */
        if (up_fd >= 0) {
            struct pollfd p = { up_fd, POLLIN, 0 };
            if (poll(&p, 1, 20) > 0) {
                char b[4096];
                ssize_t k = read(up_fd, b, sizeof b);
                if (k > 0 && up_len + (size_t)k + 1 <= up_cap) {
                    memcpy(up_out + up_len, b, (size_t)k);
                    up_len += (size_t)k;
                    up_out[up_len] = 0;
                }
            }
        } else {
            tu_sleep_ms(20);
        }
    }
}

static void teardown(void)
{
    /* an up left running (a failed test): stop it as a user would, then
     * for sure; its children die with it (PR_SET_PDEATHSIG) */
    if (up_pid > 0) {
        kill(up_pid, SIGTERM);
        if (!up_wait(20000)) {
            kill(up_pid, SIGKILL);
            up_wait(5000);
        }
    }
    if (up_fd >= 0)
        close(up_fd);
    up_fd = -1;
    rm_tree(tmpdir);
    if (saved_xdg) {
        setenv("XDG_RUNTIME_DIR", saved_xdg, 1);
        free(saved_xdg);
        saved_xdg = NULL;
    } else {
        unsetenv("XDG_RUNTIME_DIR");
    }
}

/* ---- running the program ------------------------------------------------- */

typedef struct run_result {
    int code;            /* exit code; -1 if it had to be killed */
    char out[65536];
    char err[16384];
} run_result;

static run_result rr;

/* Read what is there from fd into dst (NUL-terminated); 0 at EOF. */
static int drain(int fd, char *dst, size_t cap, size_t *len)
{
    char b[4096];
    ssize_t k = read(fd, b, sizeof b);
    if (k < 0 && (errno == EINTR || errno == EAGAIN))
        return 1;
    if (k <= 0)
        return 0;
    size_t take = (size_t)k;
    if (*len + take + 1 > cap)
        take = cap - 1 - *len;
    memcpy(dst + *len, b, take);
    *len += take;
    dst[*len] = 0;
    return 1;
}

/* Run epx-cluster with args (NULL-terminated, without the program name)
 * and wait for it within timeout_ms.  The exit code (rr.code); its
 * stdout and stderr in rr.out, rr.err. */
static int run_v(int timeout_ms, const char *const *args)
{
    const char *argv[64];
    int argc = 0;
    argv[argc++] = cli_path();
    for (int i = 0; args[i] && argc < 63; i++)
        argv[argc++] = args[i];
    argv[argc] = NULL;

    memset(&rr, 0, sizeof rr);
    int out[2], err[2];
    ck_assert(pipe2(out, O_CLOEXEC) == 0 && pipe2(err, O_CLOEXEC) == 0);
    pid_t parent = getpid();
    pid_t pid = fork();
    ck_assert_msg(pid >= 0, "fork: %s", strerror(errno));
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent)
            _exit(127);
        int nul = open("/dev/null", O_RDONLY);
        dup2(nul, 0);
        dup2(out[1], 1);
        dup2(err[1], 2);
        signal(SIGPIPE, SIG_DFL);
        execv(argv[0], (char *const *)argv);
        dprintf(2, "exec %s: %s\n", argv[0], strerror(errno));
        _exit(127);
    }
    close(out[1]);
    close(err[1]);
    size_t lo = 0, le = 0;
    int open_out = 1, open_err = 1;
    long long deadline = tu_now_ms() + timeout_ms;
    while ((open_out || open_err) && tu_now_ms() < deadline) {
        struct pollfd p[2] = { { open_out ? out[0] : -1, POLLIN, 0 },
                               { open_err ? err[0] : -1, POLLIN, 0 } };
        if (poll(p, 2, 100) <= 0)
            continue;
        if (p[0].revents && !drain(out[0], rr.out, sizeof rr.out, &lo))
            open_out = 0;
        if (p[1].revents && !drain(err[0], rr.err, sizeof rr.err, &le))
            open_err = 0;
    }
    close(out[0]);
    close(err[0]);
    int st = 0;
    for (;;) {
        pid_t r = waitpid(pid, &st, WNOHANG);
        if (r == pid)
            break;
        if (tu_now_ms() >= deadline) {
            kill(pid, SIGKILL);
            waitpid(pid, &st, 0);
            rr.code = -1;
            return -1;
        }
        tu_sleep_ms(20);
    }
    rr.code = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
    return rr.code;
}

/* run_v with the arguments listed, NULL last. */
static int run(int timeout_ms, const char *arg0, ...)
{
    const char *args[64];
    int n = 0;
    va_list ap;
    va_start(ap, arg0);
    for (const char *a = arg0; a && n < 63; a = va_arg(ap, const char *))
        args[n++] = a;
    va_end(ap);
    args[n] = NULL;
    return run_v(timeout_ms, args);
}

/* "a b c" for messages */
static const char *joined(const char *const *args)
{
    static char b[512];
    size_t used = 0;
    b[0] = 0;
    for (int i = 0; args[i] && used < sizeof b; i++)
        used += (size_t)snprintf(b + used, sizeof b - used, "%s%s", i ? " " : "", args[i]);
    return b[0] ? b : "(nothing)";
}

/* Append what up has printed so far; wait at most wait_ms for more. */
static void up_pump(int wait_ms)
{
    if (up_fd < 0)
        return;
    struct pollfd p = { up_fd, POLLIN, 0 };
    if (poll(&p, 1, wait_ms) <= 0)
        return;
    char b[16384];
    ssize_t k = read(up_fd, b, sizeof b);
    if (k <= 0)
        return;   /* EOF, or EIO on a pty whose child has gone */
    if (up_len + (size_t)k + 1 > up_cap) {
        size_t cap = up_cap ? up_cap : 65536;
        while (cap < up_len + (size_t)k + 1)
            cap *= 2;
        up_out = realloc(up_out, cap);
        ck_assert(up_out != NULL);
        up_cap = cap;
    }
    memcpy(up_out + up_len, b, (size_t)k);
    up_len += (size_t)k;
    up_out[up_len] = 0;
}

/* Wait until up's output from offset `from` on contains s. */
static int up_saw(const char *s, size_t from, int timeout_ms)
{
    long long deadline = tu_now_ms() + timeout_ms;
    for (;;) {
        if (up_out && up_len > from && strstr(up_out + from, s))
            return 1;
        if (tu_now_ms() >= deadline)
            return 0;
        up_pump(100);
    }
}

/* Start `epx-cluster up N --name <cname> extra...` in the background,
 * on a pipe (pty = 0) or on a pseudo-terminal, and wait for `ready`. */
static void up_launch(int pty, int cols, const char *n, const char *const *extra)
{
    const char *argv[32];
    int argc = 0;
    argv[argc++] = cli_path();
    argv[argc++] = "up";
    argv[argc++] = n;
    argv[argc++] = "--name";
    argv[argc++] = cname;
    for (int i = 0; extra && extra[i] && argc < 31; i++)
        argv[argc++] = extra[i];
    argv[argc] = NULL;
    if (!up_out) {
        up_cap = 65536;
        up_out = malloc(up_cap);
        ck_assert(up_out != NULL);
    }
    up_len = 0;
    up_out[0] = 0;
    char errlog[PATH_MAX];
    snprintf(errlog, sizeof errlog, "%s/up.err", tmpdir);

    pid_t parent = getpid();
    pid_t pid;
    int fd[2] = { -1, -1 };
    if (pty) {
        struct winsize ws = { 50, (unsigned short)cols, 0, 0 };
        int master;
        pid = forkpty(&master, NULL, NULL, &ws);
        fd[0] = master;
    } else {
        ck_assert(pipe2(fd, O_CLOEXEC) == 0);
        pid = fork();
    }
    ck_assert_msg(pid >= 0, "fork: %s", strerror(errno));
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent)
            _exit(127);
        if (!pty) {
            /* away from any terminal of ours: it must not touch it */
            setsid();
            int nul = open("/dev/null", O_RDONLY);
            dup2(nul, 0);
            dup2(fd[1], 1);
            int e = open(errlog, O_WRONLY | O_CREAT | O_TRUNC, 0600);
            if (e >= 0)
                dup2(e, 2);
        }
        signal(SIGPIPE, SIG_DFL);
        execv(argv[0], (char *const *)argv);
        dprintf(2, "exec %s: %s\n", argv[0], strerror(errno));
        _exit(127);
    }
    if (!pty)
        close(fd[1]);
    up_pid = pid;
    up_fd = fd[0];
}

/* up_launch on a 160-column terminal (or a pipe), then wait for `ready`. */
static void up_start(int pty, const char *n, const char *const *extra)
{
    char errlog[PATH_MAX];
    snprintf(errlog, sizeof errlog, "%s/up.err", tmpdir);
    up_launch(pty, 160, n, extra);
    int ok = up_saw("ready", 0, START_MS);
    char tail[2048] = "";
    FILE *f = fopen(errlog, "r");
    if (f) {
        size_t k = fread(tail, 1, sizeof tail - 1, f);
        tail[k] = 0;
        fclose(f);
    }
    ck_assert_msg(ok, "no 'ready' from epx-cluster up %s within %d ms; stdout: %.2000s; "
                      "stderr: %s", n, START_MS, up_out, tail);
}

/* GET / on the control port: 200, text/html, the dashboard's page. */
static int dashboard_served(int port)
{
    int fd = tu_connect(port);
    if (fd < 0)
        return 0;
    const char req[] = "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
    static char resp[1 << 18];
    size_t n = 0;
    if (write(fd, req, sizeof req - 1) == (ssize_t)(sizeof req - 1)) {
        struct pollfd p = { .fd = fd, .events = POLLIN };
        while (n < sizeof resp - 1 && poll(&p, 1, 10000) == 1) {
            ssize_t k = read(fd, resp + n, sizeof resp - 1 - n);
            if (k <= 0)
                break;
            n += (size_t)k;
        }
    }
    close(fd);
    resp[n] = 0;
    return !strncmp(resp, "HTTP/1.1 200", 12) && strstr(resp, "text/html") &&
           strstr(resp, "<html");
}

/* ---- reading status --json ----------------------------------------------- */

typedef struct jdoc {
    const char *s;
    jsmntok_t t[4096];
    int n;
} jdoc;

static jdoc jd;

static int j_skip(const jdoc *d, int i)
{
    int left = 1;
    while (left > 0 && i < d->n) {
        if (d->t[i].type == JSMN_OBJECT || d->t[i].type == JSMN_ARRAY ||
            (d->t[i].type == JSMN_STRING && d->t[i].size > 0))
            left += d->t[i].size;
        left--;
        i++;
    }
    return i;
}

static int j_eq(const jdoc *d, int i, const char *s)
{
    size_t n = strlen(s);
    return d->t[i].type == JSMN_STRING && (size_t)(d->t[i].end - d->t[i].start) == n &&
           !memcmp(d->s + d->t[i].start, s, n);
}

/* Value of key in the object at i, or -1. */
static int j_get(const jdoc *d, int i, const char *key)
{
    if (i < 0 || d->t[i].type != JSMN_OBJECT)
        return -1;
    int k = i + 1;
    for (int m = 0; m < d->t[i].size; m++) {
        if (j_eq(d, k, key))
            return k + 1;
        k = j_skip(d, k + 1);
    }
    return -1;
}

static long j_num(const jdoc *d, int i)
{
    if (i < 0 || d->t[i].type != JSMN_PRIMITIVE)
        return -1;
    return strtol(d->s + d->t[i].start, NULL, 10);
}

/* "n2,n3" from an array of strings at i. */
static void j_list(const jdoc *d, int i, char *out, size_t len)
{
    out[0] = 0;
    if (i < 0 || d->t[i].type != JSMN_ARRAY)
        return;
    size_t used = 0;
    int k = i + 1;
    for (int m = 0; m < d->t[i].size && used < len; m++) {
        used += (size_t)snprintf(out + used, len - used, "%s%.*s", m ? "," : "",
                                 d->t[k].end - d->t[k].start, d->s + d->t[k].start);
        k = j_skip(d, k);
    }
}

/* Run status --json and parse it into jd.  0 or -1. */
static int status_json(void)
{
    if (run(CMD_MS, "status", "--json", "--name", cname, NULL) != 0)
        return -1;
    jsmn_parser p;
    jsmn_init(&p);
    jd.s = rr.out;
    jd.n = jsmn_parse(&p, rr.out, strlen(rr.out), jd.t, 4096);
    return jd.n > 0 && jd.t[0].type == JSMN_OBJECT ? 0 : -1;
}

/* Does node `node` see exactly `want` ("n2,n3") by the last status? */
static int row_is(const char *node, const char *want)
{
    char got[512];
    j_list(&jd, j_get(&jd, j_get(&jd, 0, "matrix"), node), got, sizeof got);
    return !strcmp(got, want);
}

static int matrix_is(const char *const *rows, int n)
{
    if (status_json() < 0)
        return 0;
    for (int i = 0; i < n; i++) {
        char node[16];
        snprintf(node, sizeof node, "n%d", i + 1);
        if (!row_is(node, rows[i]))
            return 0;
    }
    return 1;
}

/* Record the daemon's and the nodes' pids from the last status --json. */
static void record_pids(int nodes)
{
    cl_npids = 0;
    long d = j_num(&jd, j_get(&jd, 0, "daemon_pid"));
    ck_assert_msg(d > 0, "no daemon_pid in %s", rr.out);
    cl_pids[cl_npids++] = (int)d;
    int arr = j_get(&jd, 0, "nodes");
    ck_assert_msg(arr > 0 && jd.t[arr].type == JSMN_ARRAY && jd.t[arr].size == nodes,
                  "expected %d nodes in %s", nodes, rr.out);
    int k = arr + 1;
    for (int m = 0; m < nodes; m++) {
        long p = j_num(&jd, j_get(&jd, k, "pid"));
        ck_assert_msg(p > 0, "node %d has no pid in %s", m + 1, rr.out);
        cl_pids[cl_npids++] = (int)p;
        k = j_skip(&jd, k);
    }
}

static int alive(int pid)
{
    return kill(pid, 0) == 0 || errno != ESRCH;
}

static int none_alive(void)
{
    for (int i = 0; i < cl_npids; i++)
        if (alive(cl_pids[i]))
            return 0;
    return 1;
}

static void assert_nothing_left(void)
{
    ck_assert_msg(TU_WAIT_UNTIL(none_alive(), 10000),
                  "a process of the cluster is still there after up exited");
    char p[PATH_MAX];
    const char *ext[] = { "lock", "state", "sock" };
    for (int i = 0; i < 3; i++) {
        snprintf(p, sizeof p, "%s/epx-cluster/%s.%s", tmpdir, cname, ext[i]);
        ck_assert_msg(access(p, F_OK) != 0, "%s is left behind", p);
    }
}

/* ---- the whole life of a cluster ----------------------------------------- */

START_TEST(test_lifecycle)
{
    const char *extra[] = { "--ticktime", "1", NULL };
    up_start(0, "5", extra);
    const char *ready = strstr(up_out, "ready");
    ck_assert_ptr_nonnull(ready);
    for (int i = 1; i <= 5; i++) {
        char node[32];
        snprintf(node, sizeof node, "n%d@localhost", i);
        ck_assert_msg(strstr(ready, node), "ready line lacks %s: %.500s", node, ready);
    }
    ck_assert_msg(strstr(ready, "-remsh n1@localhost"), "no attach command: %.500s", ready);

    ck_assert_msg(status_json() == 0, "status --json: %d %s %s", rr.code, rr.out, rr.err);
    ck_assert_int_eq(j_num(&jd, j_get(&jd, 0, "pid")), up_pid);
    long epmd = j_num(&jd, j_get(&jd, 0, "epmd_port"));
    char want[64];
    snprintf(want, sizeof want, "ERL_EPMD_PORT=%ld ", epmd);
    ck_assert_msg(strstr(ready, want), "ready line lacks %s: %.500s", want, ready);
    char cookie[128] = "";
    int ck = j_get(&jd, 0, "cookie");
    ck_assert_int_gt(ck, 0);
    snprintf(cookie, sizeof cookie, "-setcookie %.*s", jd.t[ck].end - jd.t[ck].start,
             jd.s + jd.t[ck].start);
    ck_assert_msg(strstr(ready, cookie), "ready line lacks %s: %.500s", cookie, ready);
    snprintf(want, sizeof want, "control port %ld",
             j_num(&jd, j_get(&jd, 0, "control_port")));
    ck_assert_msg(strstr(ready, want), "ready line lacks %s: %.500s", want, ready);
    /* the dashboard is where the ready line says */
    long ctl = j_num(&jd, j_get(&jd, 0, "control_port"));
    char url[96];
    snprintf(url, sizeof url, "dashboard http://127.0.0.1:%ld/", ctl);
    ck_assert_msg(strstr(ready, url), "ready line lacks %s: %.500s", url, ready);
    ck_assert_msg(dashboard_served((int)ctl), "no dashboard page on control port %ld", ctl);
    record_pids(5);
    const char *mesh[] = { "n2,n3,n4,n5", "n1,n3,n4,n5", "n1,n2,n4,n5", "n1,n2,n3,n5",
                           "n1,n2,n3,n4" };
    ck_assert_msg(matrix_is(mesh, 5), "not a full mesh at ready: %s", rr.out);

    /* the name is taken */
    ck_assert_int_eq(run(CMD_MS, "up", "2", "--name", cname, NULL), 1);
    ck_assert_msg(strstr(rr.err, "already running"), "second up: %s", rr.err);

    /* names must be nodes of this cluster */
    ck_assert_int_eq(run(CMD_MS, "split", "n1,n9", "n2", "--name", cname, NULL), 1);
    ck_assert_msg(strstr(rr.err, "unknown node n9"), "split n9: %s", rr.err);
    ck_assert_int_eq(run(CMD_MS, "isolate", "n6", "--name", cname, NULL), 1);
    ck_assert_msg(strstr(rr.err, "unknown node n6"), "isolate n6: %s", rr.err);
    ck_assert_int_eq(run(CMD_MS, "cut", "n1", "->", "n7@localhost", "--name", cname, NULL), 1);
    ck_assert_msg(strstr(rr.err, "unknown node n7@localhost"), "cut n7: %s", rr.err);
    ck_assert_int_eq(run(CMD_MS, "cut", "n1", "->", "n2@otherhost", "--name", cname, NULL), 1);
    ck_assert_msg(strstr(rr.err, "unknown node n2@otherhost"), "cut otherhost: %s", rr.err);

    /* split, as the nodes see it (after their tick timeout) */
    ck_assert_msg(run(CMD_MS, "split", "n1,n2", "n3,n4,n5", "--name", cname, NULL) == 0,
                  "split: %d %s", rr.code, rr.err);
    const char *split[] = { "n2", "n1", "n4,n5", "n3,n5", "n3,n4" };
    ck_assert_msg(TU_WAIT_UNTIL(matrix_is(split, 5), 30000),
                  "the nodes do not see the split after 30 s: %s", rr.out);
    int rules = j_get(&jd, 0, "rules");
    ck_assert_msg(rules > 0 && jd.t[rules].type == JSMN_ARRAY && jd.t[rules].size == 12,
                  "expected 12 rules: %s", rr.out);
    ck_assert_int_eq(run(CMD_MS, "status", "--name", cname, NULL), 0);
    ck_assert_msg(strstr(rr.out, "islands n1,n2 | n3,n4,n5"), "status: %s", rr.out);

    /* heal --reconnect returns once every node sees every other */
    ck_assert_msg(run(SLOW_MS, "heal", "--reconnect", "--name", cname, NULL) == 0,
                  "heal --reconnect: %d %s", rr.code, rr.err);
    ck_assert_int_eq(run(CMD_MS, "status", "--name", cname, NULL), 0);
    ck_assert_msg(strstr(rr.out, "full mesh") && strstr(rr.out, "rules: none"), "status: %s",
                  rr.out);
    ck_assert_msg(matrix_is(mesh, 5), "not a full mesh after heal --reconnect: %s", rr.out);

    /* the plain view said so too, one line per change */
    ck_assert_msg(up_saw("visibility: islands n1,n2 | n3,n4,n5", 0, 10000), "%s", up_out);
    ck_assert_msg(up_saw("event: ", 0, 10000), "%s", up_out);

    /* down: everything stops, up exits 0, nothing is left */
    ck_assert_msg(run(SLOW_MS, "down", "--name", cname, NULL) == 0, "down: %d %s", rr.code,
                  rr.err);
    ck_assert_msg(strstr(rr.out, "stopped"), "down said: %s", rr.out);
    ck_assert_msg(up_wait(30000), "up did not exit after down");
    ck_assert_msg(WIFEXITED(up_status) && WEXITSTATUS(up_status) == 0, "up exit status 0x%x",
                  up_status);
    assert_nothing_left();
    ck_assert_int_eq(run(CMD_MS, "status", "--name", cname, NULL), 1);
    ck_assert_msg(strstr(rr.err, "is running"), "status after down: %s", rr.err);
}
END_TEST

/* ---- the live view on a terminal ------------------------------------------ */

START_TEST(test_live_view)
{
    const char *extra[] = { "--ticktime", "1", NULL };
    up_start(1, "3", extra);
    ck_assert_msg(up_saw("full mesh", 0, 30000), "no matrix on the terminal: %.3000s", up_out);
    ck_assert_msg(up_saw(" n1  -  x  x", 0, 30000), "no matrix rows: %.3000s", up_out);
    ck_assert_msg(status_json() == 0, "status --json: %s", rr.err);
    record_pids(3);

    size_t before = up_len;
    ck_assert_msg(run(CMD_MS, "split", "n1", "n2,n3", "--name", cname, NULL) == 0, "split: %s",
                  rr.err);
    ck_assert_msg(up_saw("islands n1 | n2,n3", before, 30000),
                  "the view was not redrawn after the split: %.3000s", up_out + before);
    ck_assert_msg(up_saw(" n1  -  .  .", before, 30000), "rows: %.3000s", up_out + before);
    ck_assert_msg(up_saw("n1 <-> n2", before, 30000), "rules: %.3000s", up_out + before);

    /* Ctrl-C on the terminal stops everything */
    ck_assert_int_eq(write(up_fd, "\003", 1), 1);
    ck_assert_msg(up_wait(30000), "up did not exit after Ctrl-C");
    ck_assert_msg(WIFEXITED(up_status) && WEXITSTATUS(up_status) == 0, "up exit status 0x%x",
                  up_status);
    ck_assert_msg(strstr(up_out, "stopped cluster"), "%s", up_out + before);
    assert_nothing_left();
}
END_TEST


/* ---- a node killed with SIGKILL ------------------------------------------ */

/* Is n2 dead in the last status --json: "n2": null, nodes[1].alive false? */
static int n2_dead(void)
{
    if (status_json() < 0)
        return 0;
    int row = j_get(&jd, j_get(&jd, 0, "matrix"), "n2");
    int nodes = j_get(&jd, 0, "nodes");
    if (row < 0 || jd.t[row].type != JSMN_PRIMITIVE || jd.s[jd.t[row].start] != 'n' ||
        nodes < 0 || jd.t[nodes].type != JSMN_ARRAY || jd.t[nodes].size < 2)
        return 0;
    int n2 = j_skip(&jd, nodes + 1);
    int alive_v = j_get(&jd, n2, "alive");
    return alive_v > 0 && jd.s[jd.t[alive_v].start] == 'f';
}

START_TEST(test_dead_node)
{
    const char *extra[] = { "--ticktime", "1", NULL };
    up_start(0, "3", extra);
    ck_assert_msg(status_json() == 0, "status --json: %s", rr.err);
    record_pids(3);
    int n2 = cl_pids[2];
    ck_assert_int_eq(kill(n2, SIGKILL), 0);

    ck_assert_msg(TU_WAIT_UNTIL(n2_dead(), 15000),
                  "status --json does not show n2 dead 15 s after SIGKILL: %s", rr.out);
    ck_assert_msg(row_is("n1", "n3") && row_is("n3", "n1"), "the live nodes: %s", rr.out);
    ck_assert_int_eq(run(CMD_MS, "status", "--name", cname, NULL), 0);
    ck_assert_msg(strstr(rr.out, "full mesh; n2 dead"), "status: %s", rr.out);
    ck_assert_msg(strstr(rr.out, "n2  dead"), "status matrix: %s", rr.out);
    ck_assert_msg(up_saw("n2 dead", 0, 10000), "the plain view: %s", up_out);

    /* heal --reconnect does not wait for the dead (its deadline is 30 s) */
    long long t0 = tu_now_ms();
    ck_assert_msg(run(SLOW_MS, "heal", "--reconnect", "--name", cname, NULL) == 0,
                  "heal --reconnect: %d %s", rr.code, rr.err);
    ck_assert_msg(tu_now_ms() - t0 < 10000, "heal --reconnect took %lld ms", tu_now_ms() - t0);
    ck_assert_msg(strstr(rr.out, "skipped the dead: n2"), "heal --reconnect: %s", rr.out);

    ck_assert_msg(run(SLOW_MS, "down", "--name", cname, NULL) == 0, "down: %s", rr.err);
    ck_assert_msg(up_wait(30000), "up did not exit after down");
    ck_assert_msg(WIFEXITED(up_status) && WEXITSTATUS(up_status) == 0, "up exit status 0x%x",
                  up_status);
    assert_nothing_left();
}
END_TEST

/* ---- Ctrl-C while the cluster starts ---------------------------------------- */

/* Node pids written by the slow erl wrapper, into cl_pids; their count. */
static int wrapper_pids(const char *file)
{
    FILE *f = fopen(file, "r");
    cl_npids = 0;
    if (!f)
        return 0;
    int p;
    while (cl_npids < 64 && fscanf(f, "%d", &p) == 1)
        cl_pids[cl_npids++] = p;
    fclose(f);
    return cl_npids;
}

START_TEST(test_start_interrupted)
{
    /* an erl that takes 20 s to boot: a start that Ctrl-C must cut short */
    char wrapper[PATH_MAX], pids[PATH_MAX];
    snprintf(wrapper, sizeof wrapper, "%s/slow-erl", tmpdir);
    snprintf(pids, sizeof pids, "%s/pids", tmpdir);
    FILE *f = fopen(wrapper, "w");
    ck_assert_ptr_nonnull(f);
    fprintf(f, "#!/bin/sh\necho $$ >> %s\nexec erl -eval 'timer:sleep(20000)' \"$@\"\n", pids);
    fclose(f);
    ck_assert_int_eq(chmod(wrapper, 0700), 0);
    setenv("EPX_ERL", wrapper, 1);
    up_launch(1, 160, "3", NULL);
    unsetenv("EPX_ERL");
    ck_assert_msg(up_saw("starting cluster", 0, 30000), "%s", up_out);
    ck_assert_msg(TU_WAIT_UNTIL(wrapper_pids(pids) == 3, 30000), "the nodes did not start");

    long long t0 = tu_now_ms();
    ck_assert_int_eq(write(up_fd, "\003", 1), 1);
    /* the nodes would take 20 s: well under that proves the start was cut
     * short, with room for a loaded machine */
    ck_assert_msg(up_wait(10000), "up still runs 10 s after Ctrl-C while starting: %s", up_out);
    ck_assert_msg(WIFEXITED(up_status) && WEXITSTATUS(up_status) == 0, "up exit status 0x%x",
                  up_status);
    up_pump(0);
    ck_assert_msg(strstr(up_out, "stopped while starting"), "%s", up_out);
    ck_assert_msg(tu_now_ms() - t0 < 10000, "took %lld ms", tu_now_ms() - t0);
    assert_nothing_left();
}
END_TEST

/* ---- the live view on an 80-column terminal ---------------------------------- */

/* The last whole frame up drew: after the last cursor-home, without the
 * terminal codes, lines ending in '\n'. */
static void last_frame(char *out, size_t len)
{
    out[0] = 0;
    if (!up_out)
        return;
    const char *p = up_out, *home;
    while ((home = strstr(p, "\033[H")) != NULL && strstr(home + 3, "\033[J"))
        p = home + 3;
    const char *end = strstr(p, "\033[J");
    size_t o = 0;
    for (; *p && p != end && o + 1 < len; p++) {
        if (*p == '\033') {
            p++;
            while (*p && !((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z')))
                p++;
            if (!*p)
                break;
            continue;
        }
        if (*p != '\r')
            out[o++] = *p;
    }
    out[o] = 0;
}

static char frame[65536];

static int frame_has(const char *a, const char *b)
{
    up_pump(50);
    last_frame(frame, sizeof frame);
    return strstr(frame, a) && (!b || strstr(frame, b));
}

START_TEST(test_live_view_narrow)
{
    const char *extra[] = { "--ticktime", "1", NULL };
    up_launch(1, 80, "5", extra);
    ck_assert_msg(up_saw("full mesh", 0, START_MS), "no view: %.3000s", up_out);
    ck_assert_msg(status_json() == 0, "status --json: %s", rr.err);
    record_pids(5);
    int ck = j_get(&jd, 0, "cookie");
    char cookie[160];
    snprintf(cookie, sizeof cookie, "-setcookie %.*s", jd.t[ck].end - jd.t[ck].start,
             jd.s + jd.t[ck].start);
    ck_assert_msg(TU_WAIT_UNTIL(frame_has("full mesh", "q or Ctrl-C"), 10000), "%s", frame);
    /* nothing wider than the terminal: it never breaks a word */
    for (const char *p = frame; *p;) {
        size_t n = strcspn(p, "\n");
        ck_assert_msg(n <= 80, "a line of %zu columns: '%.*s'", n, (int)n, p);
        p += n + (p[n] == '\n');
    }
    ck_assert_msg(strstr(frame, cookie), "the attach command is broken: %s", frame);
    /* the footer names the program as this shell can run it (it is not
     * on PATH here) */
    char abs[PATH_MAX], want[PATH_MAX + 128];
    ck_assert_ptr_nonnull(realpath(cli_path(), abs));
    snprintf(want, sizeof want, "%s --name %s split n1 n2", abs, cname);
    char flat[65536];
    size_t o = 0;
    /* wrapped lines joined, every run of blanks folded into one space (a
     * wrapped line goes on indented) */
    for (const char *p = frame; *p && o + 1 < sizeof flat; p++) {
        char ch = *p == '\n' ? ' ' : *p;
        if (ch != ' ' || (o && flat[o - 1] != ' '))
            flat[o++] = ch;
    }
    flat[o] = 0;
    ck_assert_msg(strstr(flat, want), "the footer lacks '%s': %s", want, frame);

    /* the split stays on screen while the links it cut close */
    ck_assert_msg(run(CMD_MS, "split", "n1,n2", "n3,n4,n5", "--name", cname, NULL) == 0,
                  "split: %s", rr.err);
    ck_assert_msg(TU_WAIT_UNTIL(frame_has("islands n1,n2 | n3,n4,n5", "links: 4 (4 up)"), 30000),
                  "the links across the split did not close: %s", frame);
    ck_assert_msg(strstr(frame, "split spec=\"n1,n2 n3,n4,n5\""),
                  "the split scrolled off the screen: %s", frame);

    ck_assert_int_eq(write(up_fd, "q", 1), 1);
    ck_assert_msg(up_wait(30000), "up did not exit after q");
    assert_nothing_left();
}
END_TEST

/* ---- SIGTERM -------------------------------------------------------------- */

START_TEST(test_sigterm)
{
    up_start(0, "1", NULL);
    ck_assert_msg(status_json() == 0, "status --json: %s", rr.err);
    record_pids(1);
    ck_assert_int_eq(kill(up_pid, SIGTERM), 0);
    ck_assert_msg(up_wait(30000), "up did not exit after SIGTERM");
    ck_assert_msg(WIFEXITED(up_status) && WEXITSTATUS(up_status) == 0, "up exit status 0x%x",
                  up_status);
    assert_nothing_left();
}
END_TEST

/* ---- no cluster ----------------------------------------------------------- */

START_TEST(test_no_cluster)
{
    const char *cmds[][7] = {
        { "split", "n1", "n2", "--name", cname, NULL },
        { "cut", "n1", "n2", "--name", cname, NULL },
        { "fix", "n1", "->", "n2", "--name", cname, NULL },
        { "heal", "--name", cname, NULL },
        { "heal", "--reconnect", "--name", cname, NULL },
        { "isolate", "n1", "--name", cname, NULL },
        { "mode", "--name", cname, NULL },
        { "status", "--name", cname, NULL },
        { "status", "--json", "--name", cname, NULL },
        { "down", "--name", cname, NULL },
        { "--name", cname, "down", NULL },
    };
    char msg[128], where[256];
    snprintf(msg, sizeof msg, "no cluster named %s is running", cname);
    /* and where it looked, since another shell may look elsewhere */
    snprintf(where, sizeof where, "looked in %s/epx-cluster, from $XDG_RUNTIME_DIR", tmpdir);
    for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++) {
        run_v(CMD_MS, cmds[i]);
        ck_assert_msg(rr.code == 1, "%s without a cluster: exit %d", joined(cmds[i]), rr.code);
        ck_assert_msg(strstr(rr.err, msg), "%s without a cluster: %s", joined(cmds[i]), rr.err);
        ck_assert_msg(strstr(rr.err, where), "%s without a cluster: %s", joined(cmds[i]), rr.err);
    }
    ck_assert_int_eq(run(CMD_MS, "status", "--control", "1", NULL), 1);
    ck_assert_msg(strstr(rr.err, "no cluster with control port 1"), "%s", rr.err);
    ck_assert_msg(strstr(rr.err, where), "%s", rr.err);
}
END_TEST

/* A state file whose process is gone: said so, and cleaned up. */
START_TEST(test_stale_state)
{
    pid_t dead = fork();
    ck_assert_int_ge(dead, 0);
    if (dead == 0)
        _exit(0);
    ck_assert_int_eq(waitpid(dead, NULL, 0), dead);

    char dir[256], p[512];
    snprintf(dir, sizeof dir, "%s/epx-cluster", tmpdir);
    ck_assert_int_eq(mkdir(dir, 0700), 0);
    const char *ext[] = { "lock", "state", "sock" };
    for (int i = 0; i < 3; i++) {
        snprintf(p, sizeof p, "%s/%s.%s", dir, cname, ext[i]);
        FILE *f = fopen(p, "w");
        ck_assert_ptr_nonnull(f);
        if (i == 0)
            fprintf(f, "%d running\n", (int)dead);
        else if (i == 1)
            fprintf(f, "name=%s\npid=%d\ncontrol_port=1234\nsocket=%s/%s.sock\n", cname,
                    (int)dead, dir, cname);
        fclose(f);
    }
    ck_assert_int_eq(run(CMD_MS, "status", "--name", cname, NULL), 1);
    char pid[32];
    snprintf(pid, sizeof pid, "%d", (int)dead);
    ck_assert_msg(strstr(rr.err, "stale") && strstr(rr.err, "gone") && strstr(rr.err, pid),
                  "stale state: %s", rr.err);
    for (int i = 0; i < 3; i++) {
        snprintf(p, sizeof p, "%s/%s.%s", dir, cname, ext[i]);
        ck_assert_msg(access(p, F_OK) != 0, "%s was not removed", p);
    }
    ck_assert_int_eq(run(CMD_MS, "status", "--name", cname, NULL), 1);
    ck_assert_msg(strstr(rr.err, "is running") && !strstr(rr.err, "stale"), "%s", rr.err);
}
END_TEST

/* ---- usage ---------------------------------------------------------------- */

START_TEST(test_usage)
{
    static const char *const bad[][6] = {
        { NULL },
        { "bogus", NULL },
        { "--bogus", "status", NULL },
        { "up", NULL },
        { "up", "0", NULL },
        { "up", "1000", NULL },
        { "up", "-3", NULL },
        { "up", "five", NULL },
        { "up", "3", "--mode", "sideways", NULL },
        { "up", "3", "--ticktime", "0", NULL },
        { "up", "3", "--prefix", "a b", NULL },
        { "up", "3", "--bogus", NULL },
        { "split", NULL },
        { "split", "n1,,n2", "n3", NULL },
        { "split", "n1,", NULL },
        { "split", "n1", "->", "n2", NULL },
        { "split", "n1,n2", "n2,n3", NULL },
        { "cut", "n1", NULL },
        { "cut", "n1", "->", NULL },
        { "cut", "->", "n1", NULL },
        { "cut", "n1", "-", NULL },
        { "cut", "n1", "n2", "->", "n3", NULL },
        { "fix", "n!", "n2", NULL },
        { "isolate", NULL },
        { "isolate", "n1", "n2", NULL },
        { "heal", "--json", NULL },
        { "heal", "now", NULL },
        { "status", "extra", NULL },
        { "mode", "sideways", NULL },
        { "status", "--name", "a/b", NULL },
        { "status", "--control", "70000", NULL },
        { "down", "--name", NULL },
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        run_v(CMD_MS, bad[i]);
        ck_assert_msg(rr.code == 2, "%s: exit %d (want 2); stderr: %s", joined(bad[i]), rr.code,
                      rr.err);
        ck_assert_msg(strstr(rr.err, "epx-cluster"), "no message for usage error %zu", i);
        ck_assert_msg(rr.out[0] == 0, "usage error %zu printed on stdout: %s", i, rr.out);
    }
    run(CMD_MS, "up", "0", NULL);
    ck_assert_msg(strstr(rr.err, "1..32"), "up 0: %s", rr.err);
    run(CMD_MS, "up", "1000", NULL);
    ck_assert_msg(strstr(rr.err, "1..32"), "up 1000: %s", rr.err);
    run(CMD_MS, "split", "n1,,n2", "n3", NULL);
    ck_assert_msg(strstr(rr.err, "bad island"), "split n1,,n2: %s", rr.err);
    /* nothing was started or left by any of them */
    char dir[256];
    snprintf(dir, sizeof dir, "%s/epx-cluster", tmpdir);
    DIR *d = opendir(dir);
    int files = 0;
    if (d) {
        struct dirent *e;
        while ((e = readdir(d)) != NULL)
            files += e->d_name[0] != '.';
        closedir(d);
    }
    ck_assert_int_eq(files, 0);
}
END_TEST

START_TEST(test_help)
{
    static const char *const cmds[] = { "up", "split", "cut", "fix", "heal", "isolate",
                                        "mode", "status", "down" };
    ck_assert_int_eq(run(CMD_MS, "--help", NULL), 0);
    for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++) {
        ck_assert_msg(strstr(rr.out, cmds[i]), "--help does not list %s", cmds[i]);
    }
    for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++) {
        char want[64];
        snprintf(want, sizeof want, "usage: epx-cluster %s", cmds[i]);
        ck_assert_msg(run(CMD_MS, cmds[i], "--help", NULL) == 0, "%s --help: exit %d", cmds[i],
                      rr.code);
        ck_assert_msg(strstr(rr.out, want), "%s --help: %s", cmds[i], rr.out);
        /* --help wins over anything else on the line */
        ck_assert_int_eq(run(CMD_MS, cmds[i], "bogus", "-h", NULL), 0);
        ck_assert_int_eq(run(CMD_MS, "help", cmds[i], NULL), 0);
        ck_assert_msg(strstr(rr.out, want), "help %s: %s", cmds[i], rr.out);
    }
    ck_assert_int_eq(run(CMD_MS, "--version", NULL), 0);
    ck_assert_msg(strstr(rr.out, "epx-cluster"), "--version: %s", rr.out);
}
END_TEST

Suite *cli_cluster_suite(void)
{
    Suite *s = suite_create("cli_cluster");
    struct {
        const char *name;
        const TTest *test;
        int timeout;
    } cases[] = {
        { "lifecycle", test_lifecycle, 150 },
        { "live_view", test_live_view, 120 },
        { "dead_node", test_dead_node, 150 },
        { "start_interrupted", test_start_interrupted, 90 },
        { "live_view_narrow", test_live_view_narrow, 150 },
        { "sigterm", test_sigterm, 90 },
        { "no_cluster", test_no_cluster, 60 },
        { "stale_state", test_stale_state, 30 },
        { "usage", test_usage, 60 },
        { "help", test_help, 60 },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        tu_add_case(s, cases[i].name, cases[i].test, cases[i].timeout, setup, teardown);
    return s;
}
