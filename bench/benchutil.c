/* Helpers of `make bench`.  See benchutil.h. */
#include "benchutil.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* ---- clocks ---------------------------------------------------------- */

static long long clock_us(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (long long)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

long long bu_mono_us(void)
{
    return clock_us(CLOCK_MONOTONIC);
}

long long bu_real_us(void)
{
    return clock_us(CLOCK_REALTIME);
}

void bu_sleep_ms(int ms)
{
    struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR) {}
}

/* ---- processes ------------------------------------------------------- */

#define MAX_TRACKED 64

static volatile pid_t tracked[MAX_TRACKED];
static char children_path[64];
static char logdir[128];
static char remove_path[512];   /* bu_remove_on_signal */

const char *bu_logdir_create(void)
{
    const char *tmp = getenv("TMPDIR");
    snprintf(logdir, sizeof logdir, "%s/epx-bench.XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(logdir)) {
        logdir[0] = 0;
        return NULL;
    }
    return logdir;
}

int bu_logdir_finish(void)
{
    if (!logdir[0])
        return 1;
    if (rmdir(logdir) < 0)
        return 0;
    logdir[0] = 0;
    return 1;
}

/* Unlink every file in the log directory and remove it, with system calls
 * only (getdents64), so that the signal handler may use it. */
static void logdir_wipe(void)
{
    if (!logdir[0])
        return;
    int dfd = open(logdir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0)
        return;
    static char buf[16384];
    for (int round = 0; round < 64; round++) {
        long n = syscall(SYS_getdents64, dfd, buf, sizeof buf);
        if (n <= 0)
            break;
        for (long off = 0; off < n;) {
            /* struct linux_dirent64: u64 ino, s64 off, u16 reclen, u8 type, name */
            unsigned short reclen;
            memcpy(&reclen, buf + off + 16, sizeof reclen);
            const char *name = buf + off + 19;
            if (strcmp(name, ".") != 0 && strcmp(name, "..") != 0)
                unlinkat(dfd, name, 0);
            off += reclen;
        }
    }
    close(dfd);
    rmdir(logdir);
}

void bu_track(pid_t pid)
{
    for (int i = 0; i < MAX_TRACKED; i++)
        if (tracked[i] <= 0) {
            tracked[i] = pid;
            return;
        }
}

static void untrack(pid_t pid)
{
    for (int i = 0; i < MAX_TRACKED; i++)
        if (tracked[i] == pid)
            tracked[i] = 0;
}

static int is_tracked(pid_t pid)
{
    for (int i = 0; i < MAX_TRACKED; i++)
        if (tracked[i] == pid)
            return 1;
    return 0;
}

pid_t bu_waitpid(pid_t pid, int *status, int flags)
{
    pid_t r;
    while ((r = waitpid(pid, status, flags)) < 0 && errno == EINTR) {}
    if (pid > 0 && (r == pid || (r < 0 && errno == ECHILD)))
        untrack(pid);
    return r;
}

/* Pids listed in /proc/self/task/<tid>/children; only read(2) and plain
 * parsing, so that the signal handler may use it.  Count, or -1. */
int bu_children(pid_t *out, int max)
{
    if (!children_path[0])
        return -1;
    int fd = open(children_path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    static char buf[8192];
    size_t len = 0;
    for (;;) {
        ssize_t k = read(fd, buf + len, sizeof buf - 1 - len);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            break;
        len += (size_t)k;
        if (len >= sizeof buf - 1)
            break;
    }
    close(fd);
    int n = 0;
    long cur = -1;
    for (size_t i = 0; i <= len; i++) {
        char ch = i < len ? buf[i] : ' ';
        if (ch >= '0' && ch <= '9') {
            cur = (cur < 0 ? 0 : cur * 10) + (ch - '0');
        } else if (cur >= 0) {
            if (n < max)
                out[n++] = (pid_t)cur;
            cur = -1;
        }
    }
    return n;
}

int bu_count_children(void)
{
    pid_t p[1024];
    return bu_children(p, 1024);
}

int bu_reap_adopted(int grace_ms)
{
    long long end = bu_mono_us() + grace_ms * 1000LL;
    int reaped_n = 0;
    for (;;) {
        pid_t kids[1024];
        int n = bu_children(kids, 1024), running = 0;
        for (int i = 0; i < n; i++) {
            if (is_tracked(kids[i]))
                continue;
            pid_t r;
            while ((r = waitpid(kids[i], NULL, WNOHANG)) < 0 && errno == EINTR) {}
            if (r == kids[i])
                reaped_n++;
            else if (r == 0)
                running++;
        }
        if (running == 0 || bu_mono_us() >= end)
            return reaped_n;
        bu_sleep_ms(10);
    }
}

static void on_signal(int sig)
{
    pid_t kids[1024];
    int n = bu_children(kids, 1024);
    for (int i = 0; i < n; i++)
        kill(kids[i], SIGKILL);
    for (int i = 0; i < MAX_TRACKED; i++)
        if (tracked[i] > 0)
            kill(tracked[i], SIGKILL);
    for (int i = 0; i < n; i++)
        while (waitpid(kids[i], NULL, 0) < 0 && errno == EINTR) {}
    for (int i = 0; i < MAX_TRACKED; i++)
        if (tracked[i] > 0)
            while (waitpid(tracked[i], NULL, 0) < 0 && errno == EINTR) {}
    logdir_wipe();
    if (remove_path[0])
        unlink(remove_path);
    static const char msg[] = ": interrupted; every process it started is killed and reaped\n";
    if (write(2, "\n", 1) < 0 ||
        write(2, program_invocation_short_name, strlen(program_invocation_short_name)) < 0 ||
        write(2, msg, sizeof msg - 1) < 0) {
        /* nothing to do */
    }
    signal(sig, SIG_DFL);
    raise(sig);   /* delivered when the handler returns: die of it */
}

void bu_remove_on_signal(const char *path)
{
    snprintf(remove_path, sizeof remove_path, "%s", path);
}

void bu_install_signals(void)
{
    snprintf(children_path, sizeof children_path, "/proc/self/task/%d/children", (int)getpid());
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigfillset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
}

int bu_free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t sl = sizeof sa;
    int port = -1;
    if (bind(fd, (struct sockaddr *)&sa, sizeof sa) == 0 &&
        getsockname(fd, (struct sockaddr *)&sa, &sl) == 0)
        port = ntohs(sa.sin_port);
    close(fd);
    return port;
}

/* Does an EPMD on port answer NAMES with its own port number? */
static int names_probe(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return 0;
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    struct timeval tv = { 2, 0 };
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    int ok = 0;
    unsigned char req[3] = { 0, 1, 'n' }, rep[4];
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) == 0 &&
        send(fd, req, sizeof req, MSG_NOSIGNAL) == (ssize_t)sizeof req) {
        size_t got = 0;
        while (got < sizeof rep) {
            ssize_t k = recv(fd, rep + got, sizeof rep - got, 0);
            if (k < 0 && errno == EINTR)
                continue;
            if (k <= 0)
                break;
            got += (size_t)k;
        }
        ok = got == sizeof rep &&
             ((unsigned)rep[0] << 24 | (unsigned)rep[1] << 16 | (unsigned)rep[2] << 8 | rep[3]) ==
                 (unsigned)port;
    }
    close(fd);
    return ok;
}

/* 1 if pid has exited (and is now reaped). */
static int reaped(pid_t pid)
{
    pid_t r = bu_waitpid(pid, NULL, WNOHANG);
    return r == pid || (r < 0 && errno == ECHILD);
}

int bu_epmd_start(bu_epmd *e, const char *log_dir, char *err, size_t errlen)
{
    memset(e, 0, sizeof *e);
    e->pid = -1;
    const char *env = getenv("EPX_OTP_EPMD");
    const char *prog = env && *env ? env : "epmd";
    for (int attempt = 0; attempt < 5; attempt++) {
        int port = bu_free_port();
        if (port <= 0)
            continue;
        char ps[16];
        snprintf(ps, sizeof ps, "%d", port);
        snprintf(e->log, sizeof e->log, "%s/otp-epmd.%d.log", log_dir ? log_dir : "/tmp", port);
        pid_t parent = getpid();
        pid_t pid = fork();
        if (pid < 0) {
            snprintf(err, errlen, "fork: %s", strerror(errno));
            return -1;
        }
        if (pid == 0) {
            prctl(PR_SET_PDEATHSIG, SIGKILL);
            if (getppid() != parent)
                _exit(127);
            unsetenv("ERL_EPMD_PORT");
            unsetenv("ERL_EPMD_ADDRESS");
            unsetenv("ERL_EPMD_RELAXED_COMMAND_CHECK");
            int nul = open("/dev/null", O_RDONLY);
            int lfd = open(e->log, O_WRONLY | O_CREAT | O_TRUNC, 0644);
            if (nul >= 0)
                dup2(nul, 0);
            if (lfd >= 0) {
                dup2(lfd, 1);
                dup2(lfd, 2);
            }
            signal(SIGPIPE, SIG_DFL);
            execlp(prog, prog, "-port", ps, "-address", "127.0.0.1", (char *)NULL);
            dprintf(2, "exec %s: %s\n", prog, strerror(errno));
            _exit(127);
        }
        bu_track(pid);
        long long deadline = bu_mono_us() + 10 * 1000000LL;
        int up = 0, gone = 0;
        while (!up && !gone && bu_mono_us() < deadline) {
            if (reaped(pid))
                gone = 1;
            else if (names_probe(port))
                up = 1;
            else
                bu_sleep_ms(20);
        }
        if (up) {
            e->pid = pid;
            e->port = port;
            return 0;
        }
        if (!gone) {
            kill(pid, SIGKILL);
            bu_waitpid(pid, NULL, 0);
        }
        snprintf(err, errlen, "%s -port %d did not come up (log %s, kept)", prog, port, e->log);
    }
    return -1;
}

void bu_epmd_stop(bu_epmd *e)
{
    if (e->pid <= 0)
        return;
    kill(e->pid, SIGTERM);
    long long deadline = bu_mono_us() + 3 * 1000000LL;
    while (!reaped(e->pid)) {
        if (bu_mono_us() > deadline) {
            kill(e->pid, SIGKILL);
            bu_waitpid(e->pid, NULL, 0);
            break;
        }
        bu_sleep_ms(10);
    }
    e->pid = -1;
    unlink(e->log);
}

/* ---- /proc ----------------------------------------------------------- */

/* utime + stime (+ cutime + cstime with children) of pid in seconds, -1 on
 * error. */
static double proc_cpu(pid_t pid, int children)
{
    char path[64], buf[2048];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    size_t k = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[k] = 0;
    /* the command name may hold blanks and parentheses: skip to the last ')' */
    char *p = strrchr(buf, ')');
    if (!p)
        return -1;
    p++;
    /* fields after the name: 3 state, 4 ppid, ... 14 utime, 15 stime,
     * 16 cutime, 17 cstime (the reaped children's) */
    unsigned long long sum = 0;
    int field = 2, last = children ? 17 : 15;
    for (char *save = NULL, *t = strtok_r(p, " ", &save); t && field < last;
         t = strtok_r(NULL, " ", &save)) {
        field++;
        if (field >= 14)
            sum += strtoull(t, NULL, 10);
    }
    if (field < last)
        return -1;
    long hz = sysconf(_SC_CLK_TCK);
    return (double)sum / (double)(hz > 0 ? hz : 100);
}

double bu_proc_cpu_s(pid_t pid)
{
    return proc_cpu(pid, 0);
}

double bu_proc_cpu_all_s(pid_t pid)
{
    return proc_cpu(pid, 1);
}

long bu_proc_status_kib(pid_t pid, const char *field)
{
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    size_t fl = strlen(field);
    long v = -1;
    while (fgets(line, sizeof line, f))
        if (!strncmp(line, field, fl) && line[fl] == ':') {
            v = strtol(line + fl + 1, NULL, 10);
            break;
        }
    fclose(f);
    return v;
}

/* ---- series and the table -------------------------------------------- */

void bu_add(bu_series *s, double v)
{
    if (s->n < BU_MAX_SAMPLES && !isnan(v))
        s->v[s->n++] = v;
    else if (isnan(v))
        s->failed++;
}

void bu_fail(bu_series *s)
{
    s->failed++;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

int bu_stats(const bu_series *s, double *med, double *min, double *max)
{
    if (!s || s->n == 0)
        return -1;
    double v[BU_MAX_SAMPLES];
    memcpy(v, s->v, (size_t)s->n * sizeof v[0]);
    qsort(v, (size_t)s->n, sizeof v[0], cmp_double);
    *min = v[0];
    *max = v[s->n - 1];
    *med = s->n % 2 ? v[s->n / 2] : (v[s->n / 2 - 1] + v[s->n / 2]) / 2;
    return 0;
}

/* "median (min-max)", or "-" / "n/a" */
static void cell(const bu_series *s, int dec, char *out, size_t len)
{
    double med, mn, mx;
    if (!s) {
        snprintf(out, len, "-");
        return;
    }
    if (bu_stats(s, &med, &mn, &mx) < 0) {
        if (s->failed)
            snprintf(out, len, "n/a [%d failed]", s->failed);
        else
            snprintf(out, len, "n/a");
        return;
    }
    if (s->n == 1)
        snprintf(out, len, "%.*f", dec, med);
    else
        snprintf(out, len, "%.*f (%.*f-%.*f)", dec, med, dec, mn, dec, mx);
    if (s->failed) {
        size_t l = strlen(out);
        snprintf(out + l, len - l, " [%d failed]", s->failed);
    }
}

static void goal_text(const bu_row *r, char *out, size_t len)
{
    out[0] = 0;
    if (r->goal == BU_GOAL_NONE)
        return;
    const char *op = r->goal == BU_GOAL_LE ? "<=" : r->goal == BU_GOAL_GE ? ">=" : "<";
    const bu_series *s = r->ratio ? r->ratio : r->proxied;
    double med, mn, mx;
    const char *verdict = "n/a";
    if (bu_stats(s, &med, &mn, &mx) == 0) {
        int ok = r->goal == BU_GOAL_LE ? med <= r->goal_value
                 : r->goal == BU_GOAL_GE ? med >= r->goal_value
                                         : med < r->goal_value;
        verdict = ok ? "met" : "MISSED";
    }
    snprintf(out, len, "%s %g%s: %s", op, r->goal_value, r->goal_unit ? r->goal_unit : "",
             verdict);
}

#define NCOL 5

void bu_table(const bu_row *rows, int nrows, char *out, size_t outlen)
{
    static const char *head[NCOL] = { "figure", "direct (OTP epmd)", "epmdpxy",
                                      "epmdpxy/direct", "goal" };
    char (*cells)[NCOL][96] = calloc((size_t)nrows + 1, sizeof *cells);
    if (!cells) {
        snprintf(out, outlen, "out of memory\n");
        return;
    }
    size_t w[NCOL];
    for (int c = 0; c < NCOL; c++) {
        snprintf(cells[0][c], sizeof cells[0][c], "%s", head[c]);
        w[c] = strlen(head[c]);
    }
    for (int i = 0; i < nrows; i++) {
        const bu_row *r = &rows[i];
        char (*cl)[96] = cells[i + 1];
        snprintf(cl[0], sizeof cl[0], "%s", r->name);
        cell(r->direct, r->decimals, cl[1], sizeof cl[1]);
        cell(r->proxied, r->decimals, cl[2], sizeof cl[2]);
        cell(r->ratio, 2, cl[3], sizeof cl[3]);
        goal_text(r, cl[4], sizeof cl[4]);
        for (int c = 0; c < NCOL; c++)
            if (strlen(cl[c]) > w[c])
                w[c] = strlen(cl[c]);
    }
    size_t used = 0;
#define EMIT(...)                                                                     \
    do {                                                                              \
        if (used < outlen) {                                                          \
            int k_ = snprintf(out + used, outlen - used, __VA_ARGS__);                \
            used += k_ > 0 ? (size_t)k_ : 0;                                          \
        }                                                                             \
    } while (0)
    const char *section = NULL;
    size_t total = 2 + w[0] + 2 + w[1] + 2 + w[2] + 2 + w[3] + 2 + w[4];
    for (int i = 0; i <= nrows; i++) {
        if (i > 0 && rows[i - 1].section &&
            (!section || strcmp(section, rows[i - 1].section) != 0)) {
            section = rows[i - 1].section;
            EMIT("\n%s\n", section);
        }
        EMIT("  %-*s  %-*s  %-*s  %-*s  %s\n", (int)w[0], cells[i][0], (int)w[1], cells[i][1],
             (int)w[2], cells[i][2], (int)w[3], cells[i][3], cells[i][4]);
        if (i == 0)
            for (size_t k = 0; k < total; k++)
                EMIT("%c", k + 1 < total ? '-' : '\n');
    }
#undef EMIT
    if (used >= outlen && outlen > 0)
        out[outlen - 1] = 0;
    free(cells);
}

int bu_proc_fd_count(pid_t pid)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/fd", (int)pid);
    DIR *d = opendir(path);
    if (!d)
        return -1;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        if (e->d_name[0] != '.')
            n++;
    closedir(d);
    return n;
}
