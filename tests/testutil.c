#include "testutil.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

void testutil_init(void)
{
    signal(SIGPIPE, SIG_IGN);
}

void testutil_cleanup(void) {}

const char *tu_epmdpxy_path(void)
{
    const char *p = getenv("EPX_EPMDPXY");
    return (p && *p) ? p : "build/epmdpxy";
}

const char *tu_log_dir(void)
{
    const char *p = getenv("EPX_TEST_LOGDIR");
    return (p && *p) ? p : "/tmp";
}

/* 1 if one of pid's command-line arguments has the basename "epmdpxy". */
static int cmdline_runs_epmdpxy(pid_t pid)
{
    char path[64], buf[8192];
    snprintf(path, sizeof path, "/proc/%d/cmdline", (int)pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0)
        return 0;
    buf[n] = 0;
    for (char *a = buf; a < buf + n; a += strlen(a) + 1) {
        const char *base = strrchr(a, '/');
        if (!strcmp(base ? base + 1 : a, "epmdpxy"))
            return 1;
    }
    return 0;
}

int tu_is_daemon_process(pid_t pid)
{
    char link[64], exe[PATH_MAX], want[PATH_MAX];
    snprintf(link, sizeof link, "/proc/%d/exe", (int)pid);
    ssize_t k = readlink(link, exe, sizeof exe - 1);
    if (k <= 0)
        return 0;
    exe[k] = 0;
    size_t wl;
    if (realpath(tu_epmdpxy_path(), want) && !strncmp(exe, want, wl = strlen(want)) &&
        (!exe[wl] || !strcmp(exe + wl, " (deleted)")))   /* rebuilt while it runs */
        return 1;
    /* Under valgrind the exe is valgrind's tool (.../valgrind/memcheck-amd64-linux)
     * and the daemon's program one of its arguments. */
    return getenv("EPX_VALGRIND") && strstr(exe, "/valgrind/") && cmdline_runs_epmdpxy(pid);
}

long long tu_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void tu_sleep_ms(int ms)
{
    struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR) {}
}

/* Read one line from fd within the deadline; 0 or -1. */
static int read_line(int fd, char *out, size_t len, long long deadline)
{
    size_t n = 0;
    while (n + 1 < len) {
        int left = (int)(deadline - tu_now_ms());
        if (left <= 0)
            return -1;
        struct pollfd p = { fd, POLLIN, 0 };
        int r = poll(&p, 1, left);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return -1;
        char c;
        ssize_t k = read(fd, &c, 1);
        if (k < 0 && (errno == EINTR || errno == EAGAIN))
            continue;
        if (k <= 0)
            return -1;
        if (c == '\n') {
            if (n > 0 && out[n - 1] == '\r')
                n--;
            out[n] = 0;
            return 0;
        }
        out[n++] = c;
    }
    out[n] = 0;
    return -1;
}

int tu_daemon_start(tu_daemon *d, const char *const *extra)
{
    memset(d, 0, sizeof *d);
    d->pid = -1;
    const char *argv[64];
    int argc = 0;
    argv[argc++] = tu_epmdpxy_path();
    argv[argc++] = "--port";
    argv[argc++] = "0";
    argv[argc++] = "--control";
    argv[argc++] = "0";
    for (int i = 0; extra && extra[i] && argc < 62; i++)
        argv[argc++] = extra[i];
    argv[argc] = NULL;

    snprintf(d->log, sizeof d->log, "%s/epx-test-daemon.%d.%lld.log", tu_log_dir(),
             (int)getpid(), tu_now_ms());
    int pfd[2];
    if (pipe(pfd) < 0)
        return -1;
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent)
            _exit(127);
        dup2(pfd[1], 1);
        close(pfd[0]);
        close(pfd[1]);
        int lfd = open(d->log, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (lfd >= 0) {
            dup2(lfd, 2);
            close(lfd);
        }
        close_range(3, ~0U, 0);   /* nothing of the runner's leaks into the daemon */
        execv(argv[0], (char *const *)argv);
        fprintf(stderr, "exec %s: %s\n", argv[0], strerror(errno));
        _exit(127);
    }
    close(pfd[1]);
    d->pid = pid;
    d->out_fd = pfd[0];
    char line[256];
    if (read_line(pfd[0], line, sizeof line, tu_now_ms() + 10000) < 0 ||
        sscanf(line, "READY epmd=%d control=%d", &d->epmd_port,
               &d->control_port) != 2) {
        fprintf(stderr, "epmdpxy did not print READY (log %s)\n", d->log);
        tu_daemon_stop(d);
        return -1;
    }
    return 0;
}

int tu_daemon_stop(tu_daemon *d)
{
    if (d->pid <= 0)
        return -1;
    int status = -1;
    kill(d->pid, SIGTERM);
    long long deadline = tu_now_ms() + 5000;
    for (;;) {
        pid_t r = waitpid(d->pid, &status, WNOHANG);
        if (r == d->pid)
            break;
        if (r < 0) {
            status = -1;
            break;
        }
        if (tu_now_ms() > deadline) {
            kill(d->pid, SIGKILL);
            waitpid(d->pid, NULL, 0);
            status = -1;
            break;
        }
        tu_sleep_ms(10);
    }
    if (d->out_fd > 0)
        close(d->out_fd);
    d->out_fd = -1;
    d->pid = -1;
    /* keep the log of a daemon that did not exit cleanly, for the post-mortem */
    if (status != -1 && WIFEXITED(status) && WEXITSTATUS(status) == 0 && !getenv("EPX_KEEP_LOGS"))
        unlink(d->log);
    return status;
}

int tu_connect(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    struct timeval tv = { 5, 0 };
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    struct sockaddr_in sa = { 0 };
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
        close(fd);
        return -1;
    }
    /* Nobody listening on an ephemeral-range port, and the kernel picked
     * that very port as our source: TCP's simultaneous open connects the
     * socket to itself.  That is not a server answering. */
    struct sockaddr_in me;
    socklen_t ml = sizeof me;
    if (getsockname(fd, (struct sockaddr *)&me, &ml) == 0 && me.sin_port == sa.sin_port) {
        close(fd);
        errno = ECONNREFUSED;
        return -1;
    }
    return fd;
}

int tu_write_all(int fd, const void *buf, size_t n)
{
    const uint8_t *p = buf;
    while (n > 0) {
        ssize_t k = write(fd, p, n);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            return -1;
        p += k;
        n -= (size_t)k;
    }
    return 0;
}

size_t tu_read_until_eof(int fd, uint8_t *buf, size_t max, int timeout_ms, int *eof)
{
    size_t n = 0;
    long long deadline = tu_now_ms() + timeout_ms;
    if (eof)
        *eof = 0;
    while (n < max) {
        int left = (int)(deadline - tu_now_ms());
        if (left <= 0)
            break;
        struct pollfd p = { fd, POLLIN, 0 };
        int r = poll(&p, 1, left);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        ssize_t k = read(fd, buf + n, max - n);
        if (k < 0 && (errno == EINTR || errno == EAGAIN))
            continue;
        if (k <= 0) {
            if (eof)
                *eof = 1;
            break;
        }
        n += (size_t)k;
    }
    return n;
}

int tu_read_exact(int fd, void *buf, size_t n, int timeout_ms)
{
    int eof;
    return tu_read_until_eof(fd, buf, n, timeout_ms, &eof) == n ? 0 : -1;
}

int tu_ctl(int port, const char *cmd, char *reply, size_t len)
{
    int fd = tu_connect(port);
    if (fd < 0)
        return -1;
    char line[4096];
    snprintf(line, sizeof line, "%s\n", cmd);
    int rc = -1;
    if (tu_write_all(fd, line, strlen(line)) == 0)
        rc = read_line(fd, reply, len, tu_now_ms() + 10000);
    close(fd);
    return rc;
}

int tu_fd_count(pid_t pid)
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

int tu_free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        return -1;
    struct sockaddr_in sa = { 0 };
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
