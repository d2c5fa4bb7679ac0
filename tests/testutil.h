/* Helpers shared by the test suites: start the daemon under test, talk to
 * it over TCP, wait for conditions with deadlines.  Every process started
 * here is recorded, gets PR_SET_PDEATHSIG and is reaped. */
#ifndef TESTUTIL_H
#define TESTUTIL_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

typedef struct tu_daemon {
    pid_t pid;
    int epmd_port;
    int control_port;
    int out_fd;          /* the daemon's stdout (after READY) */
    char log[256];       /* file that receives the daemon's stderr */
} tu_daemon;

void testutil_init(void);
void testutil_cleanup(void);

/* Path of the epmdpxy binary under test ($EPX_EPMDPXY, else build/epmdpxy). */
const char *tu_epmdpxy_path(void);
/* Where the daemons' logs go: $EPX_TEST_LOGDIR (`make check` sets
 * build/test-logs and empties it first), else /tmp. */
const char *tu_log_dir(void);
/* 1 if process pid runs the daemon tu_epmdpxy_path() names: its
 * /proc/PID/exe is that file, or under `make valgrind` (EPX_VALGRIND set,
 * the path a wrapper that execs valgrind) the process is valgrind running
 * a program named epmdpxy. */
int tu_is_daemon_process(pid_t pid);

/* Start epmdpxy --port 0 --control 0 plus `extra` (NULL-terminated, may be
 * NULL) and wait up to 10 s for its READY line.  0 on success, -1 on failure
 * (with a message on stderr). */
int tu_daemon_start(tu_daemon *d, const char *const *extra);
/* SIGTERM, wait up to 5 s, then SIGKILL; always reaps.  Returns the exit
 * status as from waitpid, or -1 if it had to be killed. */
int tu_daemon_stop(tu_daemon *d);

/* Monotonic clock in milliseconds. */
long long tu_now_ms(void);

/* Connect to 127.0.0.1:port (blocking, 5 s timeouts set on the socket).
 * Returns the fd or -1. */
int tu_connect(int port);
/* Write all of buf; 0 or -1. */
int tu_write_all(int fd, const void *buf, size_t n);
/* Read until EOF, until `max` bytes, or until timeout_ms passes.  Returns
 * the number of bytes read; *eof is set to 1 if the peer closed. */
size_t tu_read_until_eof(int fd, uint8_t *buf, size_t max, int timeout_ms, int *eof);
/* Read exactly n bytes within timeout_ms: 0 or -1. */
int tu_read_exact(int fd, void *buf, size_t n, int timeout_ms);

/* Send one control command line (no newline needed) to 127.0.0.1:port on a
 * fresh connection and copy the reply line, without its newline, into reply.
 * 0 if a line came back, -1 otherwise. */
int tu_ctl(int port, const char *cmd, char *reply, size_t len);

/* Number of open fds of process pid, -1 on error. */
int tu_fd_count(pid_t pid);
/* A port that was free a moment ago on 127.0.0.1. */
int tu_free_port(void);

/* Wait until cond is true, checking every 20 ms, for up to timeout_ms.
 * Evaluates to 1 if cond became true, 0 on timeout. */
#define TU_WAIT_UNTIL(cond, timeout_ms) ({                            \
        long long tu_deadline_ = tu_now_ms() + (timeout_ms);          \
        int tu_ok_ = 0;                                               \
        for (;;) {                                                    \
            if (cond) { tu_ok_ = 1; break; }                          \
            if (tu_now_ms() >= tu_deadline_) break;                   \
            tu_sleep_ms(20);                                          \
        }                                                             \
        tu_ok_; })
void tu_sleep_ms(int ms);

#endif
