/* epmdpxy: parse the command line, wire the modules, run the loop. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "chaos.h"
#include "control.h"
#include "epmd_cli.h"
#include "epmd_srv.h"
#include "epx.h"
#include "log.h"
#include "proxy.h"
#include "udp.h"

static const char usage_text[] =
    "usage: epmdpxy [options]\n"
    "\n"
    "An EPMD that proxies every Erlang distribution connection, so that tests\n"
    "can cut and heal links between named nodes.\n"
    "\n"
    "  --port N, -port N        EPMD port (default $ERL_EPMD_PORT, else 4369; 0 = any free port)\n"
    "  --control N              control port (default EPMD port + 1; 0 = any free port,\n"
    "                           also the default when the EPMD port is 0)\n"
    "  --bind ADDR              listen on ADDR (repeatable; default 127.0.0.1 and ::1)\n"
    "  -address LIST            epmd's form of --bind: comma-separated addresses, loopback\n"
    "                           always added ($ERL_EPMD_ADDRESS)\n"
    "  --ready                  print READY (below) even with fixed ports\n"
    "  --no-splice              relay bulk with read/write, not splice(2) through a pipe\n"
    "  -daemon                  detach; if the EPMD port is taken, exit 0 quietly\n"
    "  -relaxed_command_check   allow KILL with live nodes, enable STOP\n"
    "                           ($ERL_EPMD_RELAXED_COMMAND_CHECK)\n"
    "  -packet_timeout N        close idle EPMD connections after N s (default 60)\n"
    "  -delay_accept N          wait N s before each accept (testing)\n"
    "  -delay_write N           wait N s before each EPMD reply (testing)\n"
    "  --events FILE            append every event to FILE as a JSON line\n"
    "  --config FILE            run FILE's control commands (one a line, # comments)\n"
    "                           at start-up, before READY; any ERR is fatal\n"
    "  --mode MODE              what a block does: hold (default), freeze or reset\n"
    "  --rto-ms MS              hold: first retransmission after a loss (default 210)\n"
    "  --rto-max-ms MS          hold: cap of a retransmission interval (default 120000)\n"
    "  --syn-schedule S,S,...   hold: SYN retries, seconds after an attempt began\n"
    "                           (default 1,2,3,4,5,7,11,19,35)\n"
    "  --oneway-grace-ms MS     hold: the reverse of a one-way block stalls this long after\n"
    "                           its first byte (default 40)\n"
    "  --oneway-grace-bytes N   ... or after N bytes (default 65536)\n"
    "  --held-bytes N           hold: bytes a blocked direction reads before it stops\n"
    "                           (default 0: they wait in the kernel)\n"
    "  --rcvbuf N               SO_RCVBUF of proxied sockets (default 0: autotuned)\n"
    "  --mss N                  MSS proxied sockets announce (default 1460; 0: loopback's)\n"
    "  --held-rcvbuf N          hold: SO_RCVBUF of a held source socket until the block\n"
    "                           lifts, so that its sender is not acknowledged (default\n"
    "                           4096; 0: not shrunk)\n"
    "  -d, -debug               log more to stderr (repeat for more)\n"
    "  -names                   client: list the names registered at the daemon on -port\n"
    "  -dump                    client: dump its registry\n"
    "  -kill                    client: tell it to exit\n"
    "  -stop NAME               client: end NAME's registration (relaxed mode)\n"
    "  --help, -h               this text\n"
    "  --version                the version\n"
    "\n"
    "With --port 0, --control 0 or --ready it prints one line once it listens\n"
    "(started as epmd is, it prints nothing):\n"
    "  READY epmd=<port> control=<port>\n"
    "\n"
    "Control commands, one per line on the control port (case-insensitive;\n"
    "ISLAND = comma-separated node names, n1 or n1@host):\n"
    "  PING                           OK PONG\n"
    "  CUT ISLAND ISLAND...           block every pair across the islands, both ways\n"
    "  CUT ISLAND -> ISLAND           block one way only\n"
    "  FIX <as CUT>                   remove exactly those blocks\n"
    "  SPLIT ISLAND ISLAND...         as CUT, replacing every block at once\n"
    "  ISOLATE n [EXCEPT n,...]       block n against every other node (but\n"
    "                                 those), now and later\n"
    "  HEAL                           remove every block and fault, stop flaps\n"
    "                                 and the nemesis\n"
    "  MODE [hold|freeze|reset] [knob=value...]\n"
    "                                 read or set what a block does; knobs of hold:\n"
    "                                 rto, rto_max, syn, grace, grace_bytes, held_bytes,\n"
    "                                 rcvbuf, mss, held_rcvbuf (as the options above)\n"
    "  NODES                          the registered nodes (JSON)\n"
    "  LINKS                          the proxied links (JSON)\n"
    "  RULES                          the blocks (JSON)\n"
    "  STATUS                         a summary (JSON)\n"
    "  EVENTS [SEQ]                   recent events, or those after SEQ\n"
    "  DELAY ISLANDS DUR [JITTER DUR]  every byte between them arrives DUR later\n"
    "  RATE ISLANDS RATE              a bandwidth cap (1MB/s, 64kbit/s, ...)\n"
    "  RESET ISLANDS AFTER SIZE|DUR   reset the next link between them mid-stream\n"
    "  SLICE ISLANDS SIZE DUR         deliver SIZE bytes at a time, DUR apart\n"
    "  SLOWCLOSE ISLANDS DUR          a close reaches the other side DUR late\n"
    "  CLEAR [ISLANDS]                remove link faults (blocks stay)\n"
    "  FAULTS                         link faults, timed ends, flaps, nemesis (JSON)\n"
    "  FLAP ISLANDS UP DUR DOWN DUR [FOR DUR] | FLAP STOP\n"
    "                                 cut and fix in turn\n"
    "  NEMESIS SHAPE S [SEED N] | START S EVERY DUR HEAL DUR [SEED N] [FOR DUR] | STOP\n"
    "                                 a seeded partition or schedule: halves,\n"
    "                                 random-halves, majorities-ring, bridge,\n"
    "                                 random-isolate, random-one-way\n"
    "  (CUT, SPLIT, ISOLATE, DELAY and RATE take FOR DUR: undone after DUR;\n"
    "   ISLANDS are as for CUT, '->' included)\n"
    "  EPMDPORT [NODE [ADDR]]         NODE's own EPMD port (JSON): lookups on it are\n"
    "                                 NODE's, held across its cuts; ADDR: its host\n"
    "  SHUTDOWN                       reply OK, then exit 0\n"
    "  QUIT                           reply OK, then close the connection\n"
    "Used by the LD_PRELOAD shim (libepx_preload.so), see epmdpxy(1):\n"
    "  APPLISTEN NODE PORT            NODE listens on PORT (this connection's life)\n"
    "  APPUNLISTEN NODE PORT          it no longer does\n"
    "  APPROUTE NODE PORT             does another member listen there? (JSON)\n"
    "  APPCONNECT NODE PORT SRC ADDR  the next connection from port SRC is NODE's\n"
    "  APPS                           the members' listeners and UDP ports (JSON)\n"
    "  APPUDP NODE PORT               NODE has a UDP socket on PORT (this connection's life)\n"
    "  APPUNUDP NODE PORT             it closed\n"
    "  APPUDPROUTE NODE PORT          is PORT another member's, blocked from NODE? (JSON)\n"
    "See epmdpxy(1) and README.md.\n";

static int sigpipe_fd[2] = { -1, -1 };

static void on_signal(int sig)
{
    int e = errno;
    char c = (char)sig;
    if (write(sigpipe_fd[1], &c, 1) < 0) {
        /* the pipe is full: a stop is already pending */
    }
    errno = e;
}

static void signal_event(void *ctx, int fd, short rev)
{
    epx *x = ctx;
    char buf[16];
    (void)rev;
    while (read(fd, buf, sizeof buf) > 0) {}
    log_msg(LOG_INFO, "signal: exiting");
    x->stop = 1;
    x->exit_code = 0;
}

static int parse_port(const char *opt, const char *s, int *out)
{
    char *end;
    errno = 0;
    long v = s ? strtol(s, &end, 10) : -1;
    if (!s || errno || *end || v < 0 || v > 65535) {
        fprintf(stderr, "epmdpxy: %s needs a port number (0-65535), got '%s'\n", opt,
                s ? s : "");
        return -1;
    }
    *out = (int)v;
    return 0;
}

static int parse_secs(const char *opt, const char *s, int *out)
{
    char *end;
    errno = 0;
    long v = s ? strtol(s, &end, 10) : -1;
    if (!s || errno || *end || v < 0 || v > 86400) {
        fprintf(stderr, "epmdpxy: %s needs a number of seconds, got '%s'\n", opt, s ? s : "");
        return -1;
    }
    *out = (int)v;
    return 0;
}

static void add_addr_once(epx_config *cfg, const char *a);

/* Add each address of a comma/space separated list, once each.  The
 * strings live in addr_store, each list after the previous one. */
static int add_addrs(epx_config *cfg, const char *list)
{
    static char addr_store[1024];
    static size_t addr_used;
    size_t n = strlen(list) + 1;
    if (n > sizeof addr_store - addr_used) {
        fprintf(stderr, "epmdpxy: address list too long\n");
        return -1;
    }
    char *copy = addr_store + addr_used;
    memcpy(copy, list, n);
    addr_used += n;
    char *save = NULL;
    for (char *tok = strtok_r(copy, ", ", &save); tok; tok = strtok_r(NULL, ", ", &save)) {
        /* room for the two loopback addresses added after */
        if (cfg->naddrs >= EPX_MAX_ADDRS - 2) {
            fprintf(stderr, "epmdpxy: too many addresses\n");
            return -1;
        }
        add_addr_once(cfg, tok);
    }
    return 0;
}

static void add_addr_once(epx_config *cfg, const char *a)
{
    for (int i = 0; i < cfg->naddrs; i++)
        if (strcmp(cfg->addrs[i], a) == 0)
            return;
    if (cfg->naddrs < EPX_MAX_ADDRS)
        cfg->addrs[cfg->naddrs++] = a;
}

/* Open fds the loop does not watch (stdio, the epoll fd, the signal pipe's
 * write end, the events file): with the loop's count, what is open.  Only
 * fds below the limit count: one above it takes no slot a new fd could
 * have (valgrind keeps its own fds there). */
static int count_fds_outside_loop(const loop *l)
{
    int n = 0, top = sock_fd_limit() < 4096 ? sock_fd_limit() : 4096;
    for (int fd = 0; fd < top; fd++)
        if (fcntl(fd, F_GETFD) >= 0)
            n++;
    return n - loop_count(l);
}

static void raise_fd_limit(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
}

/* Close every fd >= 3 this process did not open itself (what a detached
 * daemon inherited: a make jobserver pipe, a CI log...), as epmd does. */
static void close_inherited(const epx *x)
{
    int keep_events = x->ev.file ? fileno(x->ev.file) : -1;
    struct rlimit rl;
    int max = getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < 65536 ? (int)rl.rlim_cur : 65536;
    for (int fd = 3; fd < max; fd++)
        if (!loop_has(x->loop, fd) && fd != loop_fd(x->loop) && fd != keep_events &&
            fd != sigpipe_fd[1])
            close(fd);
}

/* Detach from the terminal and the parent; the parent exits 0. */
static int daemonize(const epx *x)
{
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid > 0)
        _exit(0);
    setsid();
    pid = fork();
    if (pid < 0)
        return -1;
    if (pid > 0)
        _exit(0);
    if (chdir("/") < 0) {
        /* keep going in the current directory */
    }
    close_inherited(x);
    int fd = open("/dev/null", O_RDWR);
    if (fd >= 0) {
        dup2(fd, 0);
        dup2(fd, 1);
        if (log_level <= LOG_ERR)
            dup2(fd, 2);
        if (fd > 2)
            close(fd);
    }
    return 0;
}

/* --config FILE: each line a control command, as a client would send it
 * (blank lines and # comments skipped).  The first that is refused stops
 * the start: a test must not run against faults it did not get.  0, or -1
 * with a message on stderr. */
#define CONFIG_MAX (1024 * 1024)
static int run_config(epx *x, const char *path)
{
    FILE *f = fopen(path, "re");
    if (!f) {
        fprintf(stderr, "epmdpxy: --config %s: %s\n", path, strerror(errno));
        return -1;
    }
    char *buf = malloc(CONFIG_MAX + 1);
    size_t n = buf ? fread(buf, 1, CONFIG_MAX + 1, f) : 0;
    int bad = ferror(f) || !buf;
    fclose(f);
    if (bad || n > CONFIG_MAX) {
        fprintf(stderr, "epmdpxy: --config %s: %s\n", path,
                !buf ? "out of memory" : bad ? "read error" : "larger than 1 MiB");
        free(buf);
        return -1;
    }
    buf[n] = '\n';
    int rc = 0, lineno = 0;
    sbuf out = { 0 };
    for (size_t at = 0; at < n && rc == 0;) {
        size_t used;
        long len = ctl_next_line(buf + at, n + 1 - at, &used);
        const char *line = buf + at;
        at += used;
        lineno++;
        size_t k = 0;
        while (k < (size_t)len && (line[k] == ' ' || line[k] == '\t'))
            k++;
        if (k == (size_t)len || line[k] == '#')
            continue;
        ctl_line cl;
        ctl_parse_line(line, (size_t)len, &cl);
        sbuf_reset(&out);
        if (cl.cmd == CTL_SHUTDOWN || cl.cmd == CTL_QUIT || cl.cmd == CTL_APPLISTEN ||
            cl.cmd == CTL_APPUNLISTEN || cl.cmd == CTL_APPCONNECT) {
            fprintf(stderr, "epmdpxy: %s:%d: %s has no place in a config file\n", path, lineno,
                    ctl_cmd_name(cl.cmd));
            rc = -1;
            break;
        }
        control_exec(x, &cl, &out);
        if (out.len < 2 || strncmp(out.p, "OK", 2) != 0) {
            fprintf(stderr, "epmdpxy: %s:%d: %.*s: %s\n", path, lineno, (int)len, line,
                    out.len ? sbuf_str(&out) : "no reply");
            rc = -1;
        }
    }
    sbuf_free(&out);
    free(buf);
    if (rc == 0)
        log_msg(LOG_INFO, "--config %s: %d lines run", path, lineno);
    return rc;
}

/* The knob (holdmodel.h hold_set) a command-line option sets, or NULL. */
static const char *hold_knob(const char *opt)
{
    static const char *map[][2] = {
        { "--rto-ms", "rto" }, { "--rto-max-ms", "rto_max" }, { "--syn-schedule", "syn" },
        { "--oneway-grace-ms", "grace" }, { "--oneway-grace-bytes", "grace_bytes" },
        { "--held-bytes", "held_bytes" }, { "--rcvbuf", "rcvbuf" }, { "--mss", "mss" },
        { "--held-rcvbuf", "held_rcvbuf" },
    };
    for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
        if (!strcmp(opt, map[i][0]))
            return map[i][1];
    return NULL;
}

int main(int argc, char **argv)
{
    epx x;
    memset(&x, 0, sizeof x);
    x.cfg.epmd_port = 4369;
    x.cfg.control_port = -1;
    x.cfg.packet_timeout = 60;
    hold_params_default(&x.hold);
    int daemon_mode = 0;
    enum epmd_cli_mode cli = EPMD_CLI_NONE;
    const char *stop_name = NULL;
    const char *events_file = NULL;
    const char *config_file = NULL;
    int have_bind = 0;
    int want_ready = 0;     /* --ready, or a port left for the daemon to pick */

    const char *env = getenv("ERL_EPMD_PORT");
    if (env && *env && parse_port("ERL_EPMD_PORT", env, &x.cfg.epmd_port) < 0)
        return 2;
    if (getenv("ERL_EPMD_RELAXED_COMMAND_CHECK"))
        x.cfg.relaxed = 1;

    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--help") || !strcmp(a, "-h") || !strcmp(a, "-help")) {
            fputs(usage_text, stdout);
            return 0;
        } else if (!strcmp(a, "--version") || !strcmp(a, "-version")) {
            printf("epmdpxy %s\n", EPX_VERSION);
            return 0;
        } else if (!strcmp(a, "--port") || !strcmp(a, "-port")) {
            if (parse_port(a, v, &x.cfg.epmd_port) < 0)
                return 2;
            i++;
        } else if (!strcmp(a, "--control")) {
            if (parse_port(a, v, &x.cfg.control_port) < 0)
                return 2;
            if (x.cfg.control_port == 0)
                want_ready = 1;   /* the caller can learn the port only from READY */
            i++;
        } else if (!strcmp(a, "--no-splice")) {
            x.cfg.no_splice = 1;
        } else if (!strcmp(a, "--ready")) {
            want_ready = 1;
        } else if (!strcmp(a, "--bind") || !strcmp(a, "-address")) {
            if (!v) {
                fprintf(stderr, "epmdpxy: %s needs an address\n", a);
                return 2;
            }
            if (add_addrs(&x.cfg, v) < 0)
                return 2;
            have_bind = 1;
            i++;
        } else if (!strcmp(a, "--config")) {
            if (!v) {
                fprintf(stderr, "epmdpxy: --config needs a file name\n");
                return 2;
            }
            config_file = v;
            i++;
        } else if (!strcmp(a, "--events")) {
            if (!v) {
                fprintf(stderr, "epmdpxy: --events needs a file name\n");
                return 2;
            }
            events_file = v;
            i++;
        } else if (!strcmp(a, "--mode")) {
            if (v && !strcmp(v, "hold"))
                x.mode = EPXD_MODE_HOLD;
            else if (v && !strcmp(v, "freeze"))
                x.mode = EPXD_MODE_FREEZE;
            else if (v && !strcmp(v, "reset"))
                x.mode = EPXD_MODE_RESET;
            else {
                fprintf(stderr, "epmdpxy: --mode needs hold, freeze or reset\n");
                return 2;
            }
            i++;
        } else if (hold_knob(a)) {
            char kv[256], err[160];
            if (!v || snprintf(kv, sizeof kv, "%s=%s", hold_knob(a), v) >= (int)sizeof kv ||
                hold_set(&x.hold, kv, strlen(kv), err, sizeof err) < 0) {
                fprintf(stderr, "epmdpxy: %s: %s\n", a, v ? err : "needs a value");
                return 2;
            }
            i++;
        } else if (!strcmp(a, "-daemon")) {
            daemon_mode = 1;
        } else if (!strcmp(a, "-relaxed_command_check")) {
            x.cfg.relaxed = 1;
        } else if (!strcmp(a, "-packet_timeout")) {
            if (parse_secs(a, v, &x.cfg.packet_timeout) < 0)
                return 2;
            i++;
        } else if (!strcmp(a, "-delay_accept")) {
            if (parse_secs(a, v, &x.cfg.delay_accept) < 0)
                return 2;
            i++;
        } else if (!strcmp(a, "-delay_write")) {
            if (parse_secs(a, v, &x.cfg.delay_write) < 0)
                return 2;
            i++;
        } else if (!strcmp(a, "-d") || !strcmp(a, "-debug")) {
            x.cfg.debug++;
        } else if (!strcmp(a, "-names")) {
            cli = EPMD_CLI_NAMES;
        } else if (!strcmp(a, "-dump")) {
            cli = EPMD_CLI_DUMP;
        } else if (!strcmp(a, "-kill")) {
            cli = EPMD_CLI_KILL;
        } else if (!strcmp(a, "-stop")) {
            if (!v) {
                fprintf(stderr, "epmdpxy: -stop needs a node name\n");
                return 2;
            }
            cli = EPMD_CLI_STOP;
            stop_name = v;
            i++;
        } else {
            fprintf(stderr, "epmdpxy: unknown option '%s' (try --help)\n", a);
            return 2;
        }
    }

    if (cli != EPMD_CLI_NONE)
        return epmd_cli_run(cli, x.cfg.epmd_port, stop_name);

    if (x.cfg.epmd_port == 0)
        want_ready = 1;
    log_level = LOG_ERR + x.cfg.debug;
    if (!have_bind) {
        env = getenv("ERL_EPMD_ADDRESS");
        if (env && *env) {
            if (add_addrs(&x.cfg, env) < 0)
                return 2;
            have_bind = 1;
        }
    }
    /* loopback always, as epmd does; first in the list when nothing was asked */
    add_addr_once(&x.cfg, "127.0.0.1");
    add_addr_once(&x.cfg, "::1");
    if (x.cfg.control_port < 0)
        x.cfg.control_port = x.cfg.epmd_port ? x.cfg.epmd_port + 1 : 0;
    if (x.cfg.control_port > 65535) {
        fprintf(stderr, "epmdpxy: EPMD port 65535 leaves no default control port; use --control\n");
        return 2;
    }

    signal(SIGPIPE, SIG_IGN);
    raise_fd_limit();
    x.loop = loop_new();
    registry_init(&x.reg, x.cfg.debug > 0);
    x.epmd = epmd_srv_new(&x);
    x.proxy = proxy_new(&x);
    x.control = control_new(&x);
    x.started_ms = loop_now_ms();
    rules_init(&x.rules);
    faults_init(&x.faults);
    x.chaos = chaos_new(&x);
    events_init(&x.ev, x.started_ms);
    if (!x.loop || !x.epmd || !x.proxy || !x.control || !x.chaos) {
        fprintf(stderr, "epmdpxy: out of memory\n");
        x.exit_code = 1;
        goto out;
    }
    if (events_file && events_open_file(&x.ev, events_file) < 0) {
        fprintf(stderr, "epmdpxy: --events %s: %s\n", events_file, strerror(errno));
        x.exit_code = 1;
        goto out;
    }

    char err[256];
    int bound = 0;
    for (int i = 0; i < x.cfg.naddrs; i++) {
        int in_use;
        int port = bound ? epmd_srv_port(x.epmd) : x.cfg.epmd_port;
        if (epmd_srv_listen(x.epmd, x.cfg.addrs[i], port, err, sizeof err, &in_use) == 0) {
            bound++;
            continue;
        }
        if (in_use) {
            /* epmd: another one already serves this port: nothing to do */
            if (daemon_mode)
                goto out;
            fprintf(stderr, "epmdpxy: EPMD port: %s\n", err);
            x.exit_code = 1;
            goto out;
        }
        if (strchr(x.cfg.addrs[i], ':') && errno == EADDRNOTAVAIL) {
            log_msg(LOG_INFO, "no IPv6 loopback here: %s", err);
            continue;
        }
        fprintf(stderr, "epmdpxy: EPMD port: %s\n", err);
        x.exit_code = 1;
        goto out;
    }
    x.epmd_port = epmd_srv_port(x.epmd);
    {
        int cbound = 0;
        for (int i = 0; i < x.cfg.naddrs; i++) {
            int port = cbound ? control_port(x.control) : x.cfg.control_port;
            if (control_listen(x.control, x.cfg.addrs[i], port, err, sizeof err) == 0) {
                cbound++;
                continue;
            }
            if (strchr(x.cfg.addrs[i], ':') && errno == EADDRNOTAVAIL)
                continue;
            fprintf(stderr, "epmdpxy: control port: %s\n", err);
            x.exit_code = 1;
            goto out;
        }
    }
    x.control_port = control_port(x.control);
    if (config_file && run_config(&x, config_file) < 0) {
        x.exit_code = 2;
        goto out;
    }

    if (pipe2(sigpipe_fd, O_NONBLOCK | O_CLOEXEC) < 0 ||
        loop_add(x.loop, sigpipe_fd[0], POLLIN, signal_event, &x) < 0) {
        fprintf(stderr, "epmdpxy: cannot set up signals\n");
        x.exit_code = 1;
        goto out;
    }
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);

    if (daemon_mode) {
        if (daemonize(&x) < 0) {
            fprintf(stderr, "epmdpxy: cannot detach: %s\n", strerror(errno));
            x.exit_code = 1;
            goto out;
        }
    } else if (want_ready) {
        /* Only when asked: started as epmd is, stdout is epmd's, and
         * tools that read it (OTP's epmd_SUITE) must see what epmd prints. */
        printf("READY epmd=%d control=%d\n", x.epmd_port, x.control_port);
        fflush(stdout);
    }
    log_msg(LOG_INFO, "listening: epmd port %d, control port %d", x.epmd_port, x.control_port);


    x.fds_outside_loop = count_fds_outside_loop(x.loop);

    /* Every deadline is a loop timer and every signal a write to a pipe in
     * the loop: nothing to poll from here, so the loop may sleep for good. */
    while (!x.stop) {
        if (loop_run_once(x.loop, -1) < 0) {
            log_msg(LOG_ERR, "poll: %s", strerror(errno));
            x.exit_code = 1;
            break;
        }
        /* rules a timer changed reach the shim's UDP verdicts too */
        udp_sync(x.udp);
    }

out:
    chaos_free(x.chaos);
    control_free(x.control);
    proxy_free(x.proxy);
    epmd_srv_free(x.epmd);
    registry_free(&x.reg);
    rules_free(&x.rules);
    faults_free(&x.faults);
    events_free(&x.ev);
    if (x.loop)
        loop_del(x.loop, sigpipe_fd[0]);
    if (sigpipe_fd[0] >= 0) {
        close(sigpipe_fd[0]);
        close(sigpipe_fd[1]);
    }
    loop_free(x.loop);
    return x.exit_code;
}
