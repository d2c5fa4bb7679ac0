/* Helpers of `make bench` (and `make soak`): clocks, the processes the bench starts itself
 * (OTP's epmd), /proc figures of a process, and the series of measurements
 * that end up in the report's table. */
#ifndef BENCHUTIL_H
#define BENCHUTIL_H

#include <stddef.h>
#include <sys/types.h>

#define BU_MAX_SAMPLES 256

/* ---- clocks ---------------------------------------------------------- */

long long bu_mono_us(void);          /* CLOCK_MONOTONIC */
long long bu_real_us(void);          /* CLOCK_REALTIME = os:system_time() */
void bu_sleep_ms(int ms);            /* whole ms, EINTR-safe */

/* ---- processes ------------------------------------------------------- */

/* Every pid started is recorded, so that a signal can kill and reap it
 * (bu_install_signals), and it stays recorded until bu_waitpid reaps it:
 * a child whose waitpid was forgotten is still counted at the end. */
void bu_track(pid_t pid);
/* waitpid(pid, status, flags), EINTR-safe; once pid is reaped (or is no
 * child at all: ECHILD) it is no longer recorded.  waitpid's result. */
pid_t bu_waitpid(pid_t pid, int *status, int flags);
/* Reap the children this process adopted rather than started: a child
 * subreaper (bench/rawtcp.c) inherits every descendant whose parent dies
 * first, e.g. a node's inet_gethost once its beam is gone.  Recorded pids
 * are left to their owner.  Waits up to grace_ms for adopted ones still
 * running (0: only those that have exited).  How many it reaped. */
int bu_reap_adopted(int grace_ms);
/* SIGINT, SIGTERM, SIGHUP: SIGKILL and reap every child (recorded or
 * listed in /proc as ours), then die of the signal.  SIGPIPE ignored. */
void bu_install_signals(void);
/* Children of this process that are still there (from /proc), -1 if that
 * cannot be read. */
int bu_count_children(void);
/* The same, listed: up to max pids in out; their count, or -1. */
int bu_children(pid_t *out, int max);
/* A file the signal handler removes too (a journal of the run). */
void bu_remove_on_signal(const char *path);

/* A private directory for every log of the run (nodes, daemons, epmd):
 * created here; a signal empties and removes it (bu_install_signals), and
 * bu_logdir_finish removes it at the end if nothing was kept in it (the
 * fixture keeps a log only when something failed).  NULL on failure. */
const char *bu_logdir_create(void);
/* Remove the directory if it is empty: 1 if removed, 0 if logs were kept. */
int bu_logdir_finish(void);

/* A port that was free on 127.0.0.1 a moment ago. */
int bu_free_port(void);

typedef struct bu_epmd {
    pid_t pid;
    int port;
    char log[256];
} bu_epmd;

/* Start OTP's `epmd -port P -address 127.0.0.1` in the foreground on a free
 * port ($EPX_OTP_EPMD, else epmd from PATH), with PR_SET_PDEATHSIG, and wait
 * until it answers NAMES; its output goes to a log in log_dir.  0, or -1
 * with a message in err. */
int bu_epmd_start(bu_epmd *e, const char *log_dir, char *err, size_t errlen);
/* SIGTERM, then SIGKILL after 3 s; always reaps.  No-op if not running. */
void bu_epmd_stop(bu_epmd *e);

/* ---- /proc ----------------------------------------------------------- */

/* utime + stime of pid in seconds, -1 on error. */
double bu_proc_cpu_s(pid_t pid);
/* The same plus its reaped children's (socat forks per connection). */
double bu_proc_cpu_all_s(pid_t pid);
/* A "Vm...:" field of /proc/pid/status in KiB ("VmRSS", "VmHWM"), -1. */
long bu_proc_status_kib(pid_t pid, const char *field);
/* Open fds of pid, -1 on error. */
int bu_proc_fd_count(pid_t pid);

/* ---- series and the table -------------------------------------------- */

typedef struct bu_series {
    double v[BU_MAX_SAMPLES];
    int n;              /* samples */
    int failed;         /* runs that produced no sample */
} bu_series;

void bu_add(bu_series *s, double v);
void bu_fail(bu_series *s);
/* Median, min, max of the samples; 0 if there are none (-1). */
int bu_stats(const bu_series *s, double *med, double *min, double *max);

enum { BU_GOAL_NONE, BU_GOAL_LE, BU_GOAL_GE, BU_GOAL_LT };

/* One line of the table: a comparison (direct, proxied, ratio) or a
 * single figure (direct NULL, ratio NULL: the value goes under proxied). */
typedef struct bu_row {
    const char *section;      /* printed as a heading when it changes */
    char name[96];
    const bu_series *direct, *proxied, *ratio;
    int decimals;
    int goal;                 /* BU_GOAL_*: on ratio if given, else proxied */
    double goal_value;
    const char *goal_unit;    /* "x", " ms", " MiB", " %" */
} bu_row;

/* The table as text into out (NUL-terminated, cut at outlen). */
void bu_table(const bu_row *rows, int nrows, char *out, size_t outlen);

#endif
