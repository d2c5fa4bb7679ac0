/* epx-bench: `make bench`, the proxy measured against direct EPMD.
 *
 * The yardstick is two real nodes that found each other through OTP's own
 * `epmd -port P` (started here, in the foreground, on a free port): their
 * distribution connection is direct, the physical limit.  The proxied case
 * is a libepx cluster, whose every connection goes through epmdpxy.  Every
 * distribution figure is timed inside a node (bench/epx_bench.erl), so the
 * test's stdio channel to the nodes never counts.
 *
 * Sections (BENCH_ONLY=rpc,bulk,partition,links,start,faults,raw picks some):
 *   rpc        sequential erpc:call round trips, us per call, and the ratio
 *   bulk       1 GiB in 1 MiB binaries to a process on the other node, MiB/s
 *   partition  CUT -> nodedown (hold at net_ticktime 1 and 2, reset), and
 *              HEAL + connect_all -> full mesh
 *   links      32 nodes fully meshed through one daemon: its RSS, its CPU
 *              while only ticks flow, the time to the mesh
 *   start      epx_fixture_start_cluster of 5 and of 16 nodes, to meshed
 *   faults     link faults: the erpc round trip under DELAY n1 n2 50ms (the
 *              ideal is 100 ms plus the undelayed round trip) and 5 MB under
 *              RATE n1 -> n2 1MB/s (the ideal is 5.0 s)
 *   raw        raw TCP without the BEAM: direct, epmdpxy (also with --mss 0),
 *              the shim's app link, socat, haproxy and minimal relays side
 *              by side, and what the shim adds to a connect() (bench/rawtcp.c)
 *
 * It reports; it never fails because the machine is slow.  Exit 0 unless
 * it could not run at all: 2 for a bad command line or a missing beam, 1
 * when not a single figure could be measured.  Every figure is the median
 * of BENCH_RUNS runs (default 5) with min and max.  Every process it starts
 * is a child with PR_SET_PDEATHSIG and is killed and reaped on the way out,
 * also on Ctrl-C; logs go to a private directory, removed at the end.
 *
 * Usage: epx-bench [--runs N] [--beam-dir DIR] [--out FILE]
 * Environment: BENCH_RUNS, BENCH_ONLY, BENCH_RPC_CALLS (10000),
 *   BENCH_BULK_MIB (1024), BENCH_IDLE_S (10), BENCH_LINKS_TICKTIME (2),
 *   BENCH_ERL_ARGS (extra erl arguments for every node, blank-separated),
 *   EPX_EPMDPXY, EPX_AGENT_DIR, EPX_ERL, EPX_OTP_EPMD.
 * bench/README.md says exactly what each figure measures. */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include "benchutil.h"
#include "epx_fixture.h"
#include "erlnode.h"
#include "rawtcp.h"

#define MAX_RUNS 50
#define CHUNK    (1024 * 1024)
/* what epx_bench.erl does untimed before the timed part (RPC_WARMUP calls
 * plus one check; BULK_WARMUP chunks): the daemon relays it too */
#define RPC_WARMUP  501
#define BULK_WARMUP 16
#define OUT_MAX  4096

static struct {
    int runs;
    const char *beam_dir;
    const char *out;
    const char *only;
    int rpc_calls;
    int bulk_mib;
    int idle_s;
    int links_tick;
    int raw_rtt;
    int raw_mib;
    int raw_connects;
    const char *erl_args[48];
    char erl_args_buf[1024];
    const char *log_dir;
} cfg;

/* ---- the figures ------------------------------------------------------ */

static bu_series rpc_d, rpc_p, rpc_r, rpc_cpu;
static bu_series bulk_d, bulk_p, bulk_r, bulk_cpu;
static bu_series hold1_first, hold1_last, hold2_first, hold2_last, reset_first, reset_last,
    heal_mesh, cut_rtt;
static bu_series many_boot, many_mesh, many_rss, many_hwm, many_cpu;
static bu_series start5, start16;
static raw_figures raw;
#define NPEER 4
static bu_series peer_rpc[NPEER], peer_rpc_r[NPEER], peer_bulk[NPEER], peer_bulk_r[NPEER],
    peer_cpu[NPEER];

/* ---- small things ----------------------------------------------------- */

static int env_int(const char *name, int dflt, int min, int max)
{
    const char *v = getenv(name);
    if (!v || !*v)
        return dflt;
    char *end;
    long x = strtol(v, &end, 10);
    if (*end || x < min || x > max) {
        fprintf(stderr, "epx-bench: ignoring %s=%s (want %d..%d)\n", name, v, min, max);
        return dflt;
    }
    return (int)x;
}

static int wanted(const char *section)
{
    if (!cfg.only || !*cfg.only)
        return 1;
    size_t l = strlen(section);
    for (const char *p = cfg.only; (p = strstr(p, section)) != NULL; p += l)
        if ((p == cfg.only || p[-1] == ',' || p[-1] == ' ') &&
            (p[l] == 0 || p[l] == ',' || p[l] == ' '))
            return 1;
    return 0;
}

__attribute__((format(printf, 1, 2))) static void say(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    fflush(stdout);
}

static void split_erl_args(void)
{
    const char *v = getenv("BENCH_ERL_ARGS");
    int n = 0;
    if (v && *v) {
        snprintf(cfg.erl_args_buf, sizeof cfg.erl_args_buf, "%s", v);
        for (char *save = NULL, *t = strtok_r(cfg.erl_args_buf, " \t", &save); t && n < 40;
             t = strtok_r(NULL, " \t", &save))
            cfg.erl_args[n++] = t;
    }
    cfg.erl_args[n] = NULL;
}

static void cluster_opts(epx_options *o, const char *prefix, int ticktime, int timeout_ms)
{
    static const char *paths[2];
    paths[0] = cfg.beam_dir;
    paths[1] = NULL;
    memset(o, 0, sizeof *o);
    o->prefix = prefix;
    o->net_ticktime = ticktime;
    o->code_paths = paths;
    o->erl_args = cfg.erl_args[0] ? cfg.erl_args : NULL;
    o->timeout_ms = timeout_ms;
    o->log_dir = cfg.log_dir;
}

/* One line of a command's output, trimmed; "" if it fails. */
static void command_line(const char *cmd, char *out, size_t len)
{
    out[0] = 0;
    FILE *f = popen(cmd, "r");
    if (!f)
        return;
    if (fgets(out, (int)len, f)) {
        size_t l = strlen(out);
        while (l && (out[l - 1] == '\n' || out[l - 1] == '\r' || out[l - 1] == ' '))
            out[--l] = 0;
    }
    while (fgetc(f) != EOF) {}
    pclose(f);
}

static void machine_info(char *out, size_t len)
{
    char model[256] = "unknown", line[512];
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (f) {
        while (fgets(line, sizeof line, f))
            if (!strncmp(line, "model name", 10)) {
                char *p = strchr(line, ':');
                if (p) {
                    p++;
                    while (*p == ' ' || *p == '\t')
                        p++;
                    snprintf(model, sizeof model, "%s", p);
                    model[strcspn(model, "\n")] = 0;
                }
                break;
            }
        fclose(f);
    }
    struct utsname u;
    if (uname(&u) < 0)
        memset(&u, 0, sizeof u);
    const char *erl = getenv("EPX_ERL");
    char cmd[1024], otp[128], daemon[128];
    snprintf(cmd, sizeof cmd,
             "'%s' -noshell -start_epmd false -eval 'io:format(\"OTP ~s (erts ~s)~n\", "
             "[erlang:system_info(otp_release), erlang:system_info(version)]), halt().' "
             "</dev/null 2>/dev/null",
             erl && *erl ? erl : "erl");
    command_line(cmd, otp, sizeof otp);
    const char *px = getenv("EPX_EPMDPXY");
    snprintf(cmd, sizeof cmd, "'%s' --version </dev/null 2>/dev/null",
             px && *px ? px : "build/epmdpxy");
    command_line(cmd, daemon, sizeof daemon);
    double la[3] = { 0, 0, 0 };
    if (getloadavg(la, 3) < 0)
        la[0] = la[1] = la[2] = -1;
    time_t now = time(NULL);
    char when[64];
    strftime(when, sizeof when, "%Y-%m-%d %H:%M:%S %Z", localtime(&now));
    snprintf(out, len,
             "epmdpxy benchmark, %s\n"
             "machine: nproc %ld, CPU %s, %s %s, %s, %s\n"
             "load average at start: %.2f %.2f %.2f\n",
             when, sysconf(_SC_NPROCESSORS_ONLN), model, u.sysname, u.release,
             otp[0] ? otp : "OTP unknown", daemon[0] ? daemon : "epmdpxy version unknown",
             la[0], la[1], la[2]);
}

static double ratio(double proxied, double direct)
{
    return (isnan(proxied) || isnan(direct) || direct == 0) ? NAN : proxied / direct;
}

/* ---- rpc and bulk ----------------------------------------------------- */

typedef struct pair {
    const char *label;       /* NULL: not up */
    erlnode *a;              /* direct or a peer: a -> b */
    const char *b_node;
    epx_cluster *c;          /* proxied: first node -> second */
    pid_t cpu_pid;           /* the daemon, whose CPU time is measured */
    const raw_relay *relay;  /* a peer: the relay process */
} pair;

/* CPU seconds of what relays this pair's traffic so far; -1 if nothing. */
static double pair_cpu(const pair *p)
{
    if (p->relay)
        return raw_relay_cpu_s(p->relay);
    return p->cpu_pid > 0 ? bu_proc_cpu_s(p->cpu_pid) : -1;
}

static int pair_eval(const pair *p, const char *expr, char *out, size_t len, int timeout_ms)
{
    if (p->a)
        return erlnode_eval(p->a, expr, out, len, timeout_ms);
    if (epx_fixture_eval(p->c, epx_fixture_node(p->c, 1), expr, out, len) < 0) {
        snprintf(out, len, "%s", epx_fixture_last_error());
        return -1;
    }
    return 0;
}

/* us per call, NaN on failure; *cpu_us is the daemon's CPU time per call
 * relayed meanwhile (the untimed warm-up calls counted as calls). */
static double run_rpc(const pair *p, pid_t daemon, double *cpu_us)
{
    char expr[512], out[OUT_MAX];
    snprintf(expr, sizeof expr, "epx_bench:rpc('%s', %d)", p->b_node, cfg.rpc_calls);
    double c0 = daemon > 0 ? bu_proc_cpu_s(daemon) : -1;
    int rc = pair_eval(p, expr, out, sizeof out, 60000 + cfg.rpc_calls * 20);
    double c1 = daemon > 0 ? bu_proc_cpu_s(daemon) : -1;
    if (cpu_us)
        *cpu_us = c0 >= 0 && c1 >= 0 ? (c1 - c0) * 1e6 / (cfg.rpc_calls + RPC_WARMUP) : NAN;
    if (rc < 0) {
        say("    rpc %s failed: %s\n", p->label, out);
        return NAN;
    }
    long long ns;
    if (sscanf(out, "%lld", &ns) != 1) {
        say("    rpc %s: unexpected reply %s\n", p->label, out);
        return NAN;
    }
    return (double)ns / 1000.0 / cfg.rpc_calls;
}

/* MiB/s, NaN on failure; *cpu_s is the daemon's CPU time meanwhile. */
static double run_bulk(const pair *p, pid_t daemon, double *cpu_s)
{
    char expr[512], out[OUT_MAX];
    snprintf(expr, sizeof expr, "epx_bench:bulk('%s', %d, %d)", p->b_node, cfg.bulk_mib, CHUNK);
    double c0 = daemon > 0 ? bu_proc_cpu_s(daemon) : -1;
    int rc = pair_eval(p, expr, out, sizeof out, 600000);
    double c1 = daemon > 0 ? bu_proc_cpu_s(daemon) : -1;
    if (rc < 0) {
        say("    bulk %s failed: %s\n", p->label, out);
        return NAN;
    }
    long long bytes, ns;
    if (sscanf(out, "{%lld,%lld}", &bytes, &ns) != 2 || ns <= 0) {
        say("    bulk %s: unexpected reply %s\n", p->label, out);
        return NAN;
    }
    if (bytes != (long long)cfg.bulk_mib * CHUNK) {
        say("    bulk %s: the receiver got %lld bytes, not %lld\n", p->label, bytes,
            (long long)cfg.bulk_mib * CHUNK);
        return NAN;
    }
    if (cpu_s)
        *cpu_s = c0 >= 0 && c1 >= 0 ? c1 - c0 : NAN;
    return ((double)bytes / (1024.0 * 1024.0)) / ((double)ns / 1e9);
}

/* The relays put in front of a real node beside epmdpxy (bench/rawtcp.c). */
static const int peer_path[NPEER] = { RAW_SOCAT, RAW_HAPROXY, RAW_MIN1M, RAW_SPLICE };

/* One run of rpc or bulk over every pair that is up, in an order that
 * rotates from run to run so that a drift in the machine's load does not
 * always favour the same path. */
static void run_pairs(pair *pairs, int np, int r, int bulk, double *val, double *cpu)
{
    for (int k = 0; k < np; k++) {
        int i = (k + r) % np;
        val[i] = cpu[i] = NAN;
        if (!pairs[i].label)
            continue;
        double c0 = pair_cpu(&pairs[i]);
        val[i] = bulk ? run_bulk(&pairs[i], 0, NULL) : run_rpc(&pairs[i], 0, NULL);
        double c1 = pair_cpu(&pairs[i]);
        if (c0 >= 0 && c1 >= 0)
            cpu[i] = c1 - c0;
    }
}

static void sec_rpc_bulk(void)
{
    int do_rpc = wanted("rpc"), do_bulk = wanted("bulk");
    say("\n== RPC round trip and bulk throughput: direct (OTP epmd), through epmdpxy, and "
        "through its peers\n");
    char err[1024];
    bu_epmd e;
    erlnode dn[2], pn[NPEER];
    raw_relay relay[NPEER];
    memset(dn, 0, sizeof dn);
    memset(pn, 0, sizeof pn);
    memset(relay, 0, sizeof relay);
    pair pairs[2 + NPEER];
    memset(pairs, 0, sizeof pairs);
    epx_cluster *c = NULL;
    if (bu_epmd_start(&e, cfg.log_dir, err, sizeof err) < 0) {
        say("  cannot start OTP's epmd: %s\n", err);
        goto out;
    }
    say("  OTP epmd -port %d (pid %d)\n", e.port, (int)e.pid);
    const char *extra[64];
    int ne = 0;
    extra[ne++] = "-kernel";    /* as libepx starts its nodes */
    extra[ne++] = "prevent_overlapping_partitions";
    extra[ne++] = "false";
    extra[ne++] = "-pa";
    extra[ne++] = cfg.beam_dir;
    for (int i = 0; cfg.erl_args[i] && ne < 56; i++)
        extra[ne++] = cfg.erl_args[i];
    extra[ne] = NULL;
    erlnode_opts o[2];
    static const char *names[2] = { "bd1", "bd2" };
    for (int i = 0; i < 2; i++) {
        memset(&o[i], 0, sizeof o[i]);
        o[i].name = names[i];
        o[i].cookie = "epxbenchdirect";
        o[i].epmd_port = e.port;
        o[i].net_ticktime = 2;   /* libepx's default */
        o[i].extra = extra;
        o[i].log_dir = cfg.log_dir;
    }
    if (erlnode_start_many(dn, o, 2, 60000, err, sizeof err) < 0) {
        say("  direct nodes did not start: %s\n", err);
        goto out;
    }
    char out[OUT_MAX];
    if (erlnode_evalf(&dn[0], out, sizeof out, 30000, "net_kernel:connect_node('%s')",
                      dn[1].node) < 0 || strcmp(out, "true") != 0) {
        say("  %s cannot connect to %s through OTP's epmd: %s\n", dn[0].node, dn[1].node, out);
        goto out;
    }
    epx_options co;
    cluster_opts(&co, "bp", 2, 300000);
    c = epx_fixture_start_cluster(2, &co);
    if (!c) {
        say("  the epmdpxy cluster did not start: %s\n", epx_fixture_last_error());
        goto out;
    }
    pid_t daemon = (pid_t)epx_fixture_daemon_pid(c);
    pairs[0] = (pair){ "direct", &dn[0], dn[1].node, NULL, 0, NULL };
    pairs[1] = (pair){ "epmdpxy", NULL, epx_fixture_node(c, 2), c, daemon, NULL };
    say("  direct %s -> %s; proxied %s -> %s (daemon pid %d)\n", dn[0].node, dn[1].node,
        epx_fixture_node(c, 1), epx_fixture_node(c, 2), (int)daemon);

    /* The peers: a relay in front of bd2's own port, and a node that finds
     * bd2 at the relay (bench/epx_bench_epmd.erl). */
    int bd2_port = 0;
    if (erlnode_evalf(&dn[0], out, sizeof out, 10000,
                      "erl_epmd:port_please(\"bd2\", {127,0,0,1})") < 0 ||
        sscanf(out, "{port,%d,", &bd2_port) != 1)
        say("  cannot look up bd2's port (%s): no peers\n", out);
    static char peer_names[NPEER][16], peer_ports[NPEER][16];
    const char *pextra[NPEER][72];
    for (int k = 0; k < NPEER && bd2_port > 0; k++) {
        const char *tool = raw_path_name(peer_path[k]);
        if (raw_relay_start(peer_path[k], bd2_port, cfg.log_dir, &relay[k]) < 0) {
            say("  %s: not available or did not start: skipped\n", tool);
            continue;
        }
        snprintf(peer_names[k], sizeof peer_names[k], "bx%d", k + 1);
        snprintf(peer_ports[k], sizeof peer_ports[k], "%d", relay[k].port);
        int m = 0;
        for (; extra[m]; m++)
            pextra[k][m] = extra[m];
        pextra[k][m++] = "-epmd_module";
        pextra[k][m++] = "epx_bench_epmd";
        pextra[k][m++] = "-epx_bench_relay";
        pextra[k][m++] = "bd2";
        pextra[k][m++] = peer_ports[k];
        pextra[k][m] = NULL;
        erlnode_opts po = o[0];
        po.name = peer_names[k];
        po.extra = pextra[k];
        if (erlnode_start_many(&pn[k], &po, 1, 60000, err, sizeof err) < 0 ||
            erlnode_evalf(&pn[k], out, sizeof out, 30000, "net_kernel:connect_node('%s')",
                          dn[1].node) < 0 ||
            strcmp(out, "true") != 0) {
            say("  %s: the node behind it did not connect: %s\n", tool, err);
            continue;
        }
        pairs[2 + k] = (pair){ tool, &pn[k], dn[1].node, NULL, 0, &relay[k] };
        say("  %s: %s -> %s through port %d (relay pid %d)\n", tool, pn[k].node, dn[1].node,
            relay[k].port, (int)relay[k].pid);
    }
    int np = 2 + NPEER;
    for (int r = 0; r < cfg.runs; r++) {
        double v[2 + NPEER], cpu[2 + NPEER];
        if (do_rpc) {
            run_pairs(pairs, np, r, 0, v, cpu);
            double d = v[0], p = v[1];
            double dcpu = isnan(p) ? NAN : cpu[1] * 1e6 / (cfg.rpc_calls + RPC_WARMUP);
            bu_add(&rpc_d, d);
            bu_add(&rpc_p, p);
            bu_add(&rpc_r, ratio(p, d));
            bu_add(&rpc_cpu, dcpu);
            say("  rpc  run %d/%d: direct %.1f us/call, epmdpxy %.1f us/call, ratio %.2f; "
                "daemon CPU %.1f us per call\n",
                r + 1, cfg.runs, d, p, ratio(p, d), dcpu);
            for (int k = 0; k < NPEER; k++)
                if (pairs[2 + k].label) {
                    bu_add(&peer_rpc[k], v[2 + k]);
                    bu_add(&peer_rpc_r[k], ratio(v[2 + k], d));
                    say("       %s %.1f us/call, ratio %.2f\n", pairs[2 + k].label, v[2 + k],
                        ratio(v[2 + k], d));
                }
        }
        if (do_bulk) {
            run_pairs(pairs, np, r, 1, v, cpu);
            double d = v[0], p = v[1];
            double gib = (cfg.bulk_mib + BULK_WARMUP) / 1024.0;
            double per_gib = isnan(p) ? NAN : cpu[1] / gib;
            bu_add(&bulk_d, d);
            bu_add(&bulk_p, p);
            bu_add(&bulk_r, ratio(p, d));
            bu_add(&bulk_cpu, per_gib);
            say("  bulk run %d/%d: direct %.0f MiB/s, epmdpxy %.0f MiB/s, ratio %.2f; "
                "daemon CPU %.2f s per GiB\n",
                r + 1, cfg.runs, d, p, ratio(p, d), per_gib);
            for (int k = 0; k < NPEER; k++)
                if (pairs[2 + k].label) {
                    bu_add(&peer_bulk[k], v[2 + k]);
                    bu_add(&peer_bulk_r[k], ratio(v[2 + k], d));
                    bu_add(&peer_cpu[k], isnan(v[2 + k]) ? NAN : cpu[2 + k] / gib);
                    say("       %s %.0f MiB/s, ratio %.2f, relay CPU %.2f s per GiB\n",
                        pairs[2 + k].label, v[2 + k], ratio(v[2 + k], d), cpu[2 + k] / gib);
                }
        }
    }
out:
    if (!rpc_d.n && do_rpc)
        bu_fail(&rpc_d);
    if (!bulk_d.n && do_bulk)
        bu_fail(&bulk_d);
    epx_fixture_stop_cluster(c);
    for (int i = 0; i < 2; i++)
        erlnode_close_input(&dn[i]);
    for (int k = 0; k < NPEER; k++)
        erlnode_close_input(&pn[k]);
    for (int i = 0; i < 2; i++)
        erlnode_stop(&dn[i], 5000);
    for (int k = 0; k < NPEER; k++) {
        erlnode_stop(&pn[k], 5000);
        raw_relay_stop(&relay[k]);
    }
    bu_epmd_stop(&e);
}

/* ---- partitions ------------------------------------------------------- */

#define PN 5   /* nodes; islands 1,2 | 3,4,5 */

static int part_setup(epx_cluster **out, const char *prefix, int tick)
{
    epx_options o;
    cluster_opts(&o, prefix, tick, 60000);
    epx_cluster *c = epx_fixture_start_cluster(PN, &o);
    if (!c) {
        say("  %d-node cluster (net_ticktime %d) did not start: %s\n", PN, tick,
            epx_fixture_last_error());
        return -1;
    }
    char res[OUT_MAX];
    for (int i = 1; i <= PN; i++)
        if (epx_fixture_eval(c, epx_fixture_node(c, i), "epx_bench:watch()", res, sizeof res) < 0) {
            say("  %s: cannot start the nodeup/nodedown watcher: %s\n", epx_fixture_node(c, i),
                epx_fixture_last_error());
            epx_fixture_stop_cluster(c);
            return -1;
        }
    *out = c;
    return 0;
}

static int side_of(int i)
{
    return i <= 2 ? 0 : 1;
}

/* The Erlang list of the nodes node i should lose (other = 1) or regain
 * (other = 0: every other node). */
static void peers_list(epx_cluster *c, int i, int other_side_only, char *out, size_t len)
{
    size_t used = (size_t)snprintf(out, len, "[");
    int any = 0;
    for (int j = 1; j <= PN; j++) {
        if (j == i || (other_side_only && side_of(j) == side_of(i)))
            continue;
        used += (size_t)snprintf(out + used, len - used, "%s'%s'", any ? "," : "",
                                 epx_fixture_node(c, j));
        any = 1;
    }
    snprintf(out + used, len - used, "]");
}

static int eval_all(epx_cluster *c, const char *expr)
{
    char res[OUT_MAX];
    for (int i = 1; i <= PN; i++)
        if (epx_fixture_eval(c, epx_fixture_node(c, i), expr, res, sizeof res) < 0) {
            say("    %s: %s: %s\n", epx_fixture_node(c, i), expr, epx_fixture_last_error());
            return -1;
        }
    return 0;
}

/* Wait until every node has its first `kind` event for each of its peers
 * (other side only, or all); the earliest and latest of them in *tmin and
 * *tmax (os:system_time us).  0, or -1 on timeout or error. */
static int await_events(epx_cluster *c, const char *kind, int other_side_only, int timeout_ms,
                        long long *tmin, long long *tmax, int poll_ms)
{
    int done[PN + 1] = { 0 };
    long long mn[PN + 1], mx[PN + 1];
    long long deadline = bu_mono_us() + (long long)timeout_ms * 1000;
    for (;;) {
        int all = 1;
        for (int i = 1; i <= PN; i++) {
            if (done[i])
                continue;
            char peers[1024], expr[1200], res[OUT_MAX];
            peers_list(c, i, other_side_only, peers, sizeof peers);
            int want = 0;
            for (const char *p = peers; (p = strchr(p, '\'')) != NULL; p++, want++)
                p = strchr(p + 1, '\'');
            snprintf(expr, sizeof expr, "epx_bench:span(%s, %s)", kind, peers);
            if (epx_fixture_eval(c, epx_fixture_node(c, i), expr, res, sizeof res) < 0) {
                say("    %s: %s\n", epx_fixture_node(c, i), epx_fixture_last_error());
                return -1;
            }
            int n;
            long long a, b;
            if (sscanf(res, "{%d,%lld,%lld}", &n, &a, &b) != 3) {
                say("    %s: unexpected reply %s\n", epx_fixture_node(c, i), res);
                return -1;
            }
            if (n >= want) {
                done[i] = 1;
                mn[i] = a;
                mx[i] = b;
            } else {
                all = 0;
            }
        }
        if (all)
            break;
        if (bu_mono_us() > deadline) {
            char m[4096] = "";
            epx_fixture_matrix(c, m, sizeof m);
            say("    not every node saw its %s events within %d ms:\n%s\n", kind, timeout_ms, m);
            return -1;
        }
        bu_sleep_ms(poll_ms);
    }
    *tmin = mn[1];
    *tmax = mx[1];
    for (int i = 2; i <= PN; i++) {
        if (mn[i] < *tmin)
            *tmin = mn[i];
        if (mx[i] > *tmax)
            *tmax = mx[i];
    }
    return 0;
}

/* One cut and one heal on c.  Adds to first/last (ms from sending CUT to
 * the first / last nodedown a node saw; the CUT reply's own delay goes to
 * cut_rtt) and to heal_mesh (ms from sending HEAL to the last nodeup). */
static void part_run(epx_cluster *c, int reset, int tick, bu_series *first, bu_series *last,
                     const char *label)
{
    char spec[512];
    snprintf(spec, sizeof spec, "%s,%s %s,%s,%s", epx_fixture_node(c, 1),
             epx_fixture_node(c, 2), epx_fixture_node(c, 3), epx_fixture_node(c, 4),
             epx_fixture_node(c, 5));
    /* a loaded machine can drop a link on its own (net_ticktime 1 is
     * tight): start every run from a full mesh */
    if (epx_fixture_connect_all(c) < 0 || epx_fixture_await_connected(c, 30000) < 0) {
        say("    no full mesh before the cut: %.300s\n", epx_fixture_last_error());
        goto fail;
    }
    if (eval_all(c, "epx_bench:clear()") < 0)
        goto fail;
    if (reset && epx_fixture_set_mode(c, EPX_MODE_RESET) < 0) {
        say("    MODE reset: %s\n", epx_fixture_last_error());
        goto fail;
    }
    long long t_send = bu_real_us();
    if (epx_fixture_cut(c, spec) < 0) {
        say("    CUT: %s\n", epx_fixture_last_error());
        goto fail;
    }
    long long t_cut = bu_real_us();
    bu_add(&cut_rtt, (double)(t_cut - t_send) / 1000.0);
    long long tmin, tmax;
    if (await_events(c, "down", 1, 10000 + 3000 * tick, &tmin, &tmax, reset ? 5 : 20) < 0) {
        bu_fail(first);
        bu_fail(last);
    } else {
        bu_add(first, (double)(tmin - t_send) / 1000.0);
        bu_add(last, (double)(tmax - t_send) / 1000.0);
        say("    %s: CUT sent -> reply %.2f ms, first nodedown %.1f ms, last (12th) %.1f ms\n",
            label, (double)(t_cut - t_send) / 1000.0, (double)(tmin - t_send) / 1000.0,
            (double)(tmax - t_send) / 1000.0);
    }
    if (reset && epx_fixture_set_mode(c, EPX_MODE_HOLD) < 0) {
        say("    MODE hold: %s\n", epx_fixture_last_error());
        goto heal_fail;
    }
    if (eval_all(c, "epx_bench:clear()") < 0)
        goto heal_fail;
    long long t_heal = bu_real_us();
    if (epx_fixture_heal(c) < 0 || epx_fixture_connect_all(c) < 0) {
        say("    HEAL + connect_all: %s\n", epx_fixture_last_error());
        goto heal_fail;
    }
    long long t_conn = bu_real_us();
    if (epx_fixture_await_connected(c, 30000) < 0) {
        say("    no full mesh after HEAL: %s\n", epx_fixture_last_error());
        goto heal_fail;
    }
    if (await_events(c, "up", 1, 10000, &tmin, &tmax, 20) == 0) {
        bu_add(&heal_mesh, (double)(tmax - t_heal) / 1000.0);
        say("    %s: HEAL + connect_all -> full mesh %.1f ms (connect_all returned after "
            "%.1f ms)\n", label, (double)(tmax - t_heal) / 1000.0,
            (double)(t_conn - t_heal) / 1000.0);
    } else {
        bu_fail(&heal_mesh);
    }
    return;
fail:
    bu_fail(first);
    bu_fail(last);
heal_fail:
    bu_fail(&heal_mesh);
    /* leave the cluster whole for the next run, as far as it goes */
    epx_fixture_set_mode(c, EPX_MODE_HOLD);
    epx_fixture_heal(c);
    epx_fixture_connect_all(c);
    epx_fixture_await_connected(c, 30000);
}

static void sec_partition(void)
{
    say("\n== Partitions: %d nodes, CUT n1,n2 n3,n4,n5 (12 nodedowns), then HEAL + connect_all\n",
        PN);
    epx_cluster *c1 = NULL, *c2 = NULL;
    if (part_setup(&c1, "ta", 1) < 0 || part_setup(&c2, "tb", 2) < 0) {
        bu_fail(&hold1_last);
        goto out;
    }
    for (int r = 0; r < cfg.runs; r++) {
        say("  run %d/%d\n", r + 1, cfg.runs);
        part_run(c1, 0, 1, &hold1_first, &hold1_last, "hold, net_ticktime 1");
        part_run(c2, 0, 2, &hold2_first, &hold2_last, "hold, net_ticktime 2");
        part_run(c2, 1, 2, &reset_first, &reset_last, "reset");
    }
out:
    epx_fixture_stop_cluster(c1);
    epx_fixture_stop_cluster(c2);
}

/* ---- many links ------------------------------------------------------- */

static int status_links(epx_cluster *c)
{
    static char reply[65536];
    if (epx_fixture_control(c, "STATUS", reply, sizeof reply) < 0)
        return -1;
    const char *p = strstr(reply, "\"links\":");
    return p ? atoi(p + 8) : -1;
}

static void sec_links(void)
{
    const int n = 32;
    say("\n== Many links: %d nodes fully meshed (%d links) through one daemon, net_ticktime %d\n",
        n, n * (n - 1) / 2, cfg.links_tick);
    for (int r = 0; r < cfg.runs; r++) {
        epx_options o;
        cluster_opts(&o, "m", cfg.links_tick, 180000);
        o.no_mesh = 1;
        long long t0 = bu_mono_us();
        epx_cluster *c = epx_fixture_start_cluster(n, &o);
        long long t1 = bu_mono_us();
        if (!c) {
            say("  run %d/%d: the %d nodes did not start: %s\n", r + 1, cfg.runs, n,
                epx_fixture_last_error());
            bu_fail(&many_mesh);
            continue;
        }
        pid_t d = (pid_t)epx_fixture_daemon_pid(c);
        /* connect_all does not retry a pair whose connect_node gave up
         * (net_setuptime, 7 s, can pass on a loaded machine): ask again */
        int meshed = 0, attempts = 0;
        while (!meshed && attempts < 3) {
            attempts++;
            meshed = epx_fixture_connect_all(c) == 0 && epx_fixture_await_connected(c, 60000) == 0;
            if (!meshed)
                say("  run %d/%d: no full mesh after connect_all #%d: %.300s\n", r + 1, cfg.runs,
                    attempts, epx_fixture_last_error());
        }
        if (!meshed) {
            bu_fail(&many_mesh);
            epx_fixture_stop_cluster(c);
            continue;
        }
        long long t2 = bu_mono_us();
        bu_add(&many_boot, (double)(t1 - t0) / 1e6);
        bu_add(&many_mesh, (double)(t2 - t1) / 1e6);
        /* let global's sync and the connect storm die down: from here on
         * only ticks flow */
        bu_sleep_ms(3000);
        int links = status_links(c);
        long rss = bu_proc_status_kib(d, "VmRSS"), hwm = bu_proc_status_kib(d, "VmHWM");
        double c0 = bu_proc_cpu_s(d);
        long long w0 = bu_mono_us();
        bu_sleep_ms(cfg.idle_s * 1000);
        double c1 = bu_proc_cpu_s(d);
        long long w1 = bu_mono_us();
        int links_after = status_links(c);
        double pct = c0 >= 0 && c1 >= 0 ? (c1 - c0) / ((double)(w1 - w0) / 1e6) * 100.0 : NAN;
        bu_add(&many_rss, rss >= 0 ? rss / 1024.0 : NAN);
        bu_add(&many_hwm, hwm >= 0 ? hwm / 1024.0 : NAN);
        bu_add(&many_cpu, pct);
        say("  run %d/%d: %d nodes up in %.1f s, meshed %.1f s later; daemon: %d links "
            "(%d after %d s), VmRSS %.1f MiB, VmHWM %.1f MiB, CPU %.2f %% of a core\n",
            r + 1, cfg.runs, n, (double)(t1 - t0) / 1e6, (double)(t2 - t1) / 1e6, links,
            links_after, cfg.idle_s, rss / 1024.0, hwm / 1024.0, pct);
        epx_fixture_stop_cluster(c);
    }
}

/* ---- cluster start ---------------------------------------------------- */

/* What sec_faults measured, for the report, and how many samples. */
static char faults_report[1024];
static int faults_measured;

static int cmp_ll(const void *a, const void *b)
{
    long long x = *(const long long *)a, y = *(const long long *)b;
    return x < y ? -1 : x > y;
}

/* The median, min and max of n values (sorted in place) into out. */
static void mmm(long long *v, int n, double scale, const char *unit, char *out, size_t len)
{
    qsort(v, (size_t)n, sizeof *v, cmp_ll);
    snprintf(out, len, "%.1f %s (%.1f-%.1f)", v[n / 2] / scale, unit, v[0] / scale,
             v[n - 1] / scale);
}

static void sec_faults(void)
{
    say("\n== Link faults: DELAY and RATE through epmdpxy, against their ideal\n");
    epx_options co;
    cluster_opts(&co, "bf", 2, 120000);
    epx_cluster *c = epx_fixture_start_cluster(2, &co);
    if (!c) {
        say("  the cluster did not start: %s\n", epx_fixture_last_error());
        return;
    }
    char out[OUT_MAX], rtt[512], base[128] = "?", delayed[128] = "?", rate[128] = "?";
    long long v[64];
    int n = 0;
    snprintf(rtt, sizeof rtt,
             "element(1, timer:tc(fun() -> erpc:call('%s', erlang, node, []) end))",
             epx_fixture_node(c, 2));
    for (int k = 0; k < 21; k++)
        if (epx_fixture_eval(c, epx_fixture_node(c, 1), rtt, out, sizeof out) == 0)
            v[n++] = strtoll(out, NULL, 10);
    faults_measured += n;
    if (n)
        mmm(v, n, 1000.0, "ms", base, sizeof base);
    n = 0;
    if (epx_fixture_delay(c, "bf1 bf2", 50, 0, 0) == 0)
        for (int k = 0; k < 21; k++)
            if (epx_fixture_eval(c, epx_fixture_node(c, 1), rtt, out, sizeof out) == 0)
                v[n++] = strtoll(out, NULL, 10);
    faults_measured += n;
    if (n)
        mmm(v, n, 1000.0, "ms", delayed, sizeof delayed);
    n = 0;
    epx_fixture_clear(c, NULL);
    if (epx_fixture_rate(c, "bf1 -> bf2", 1000000, 0) == 0)
        for (int k = 0; k < cfg.runs && k < 64; k++) {
            char expr[512];
            snprintf(expr, sizeof expr,
                     "begin B = binary:copy(<<7>>, 5000000), {T, 5000000} = timer:tc(fun() -> "
                     "erpc:call('%s', erlang, byte_size, [B], 60000) end), T end",
                     epx_fixture_node(c, 2));
            if (epx_fixture_eval(c, epx_fixture_node(c, 1), expr, out, sizeof out) == 0)
                v[n++] = strtoll(out, NULL, 10);
        }
    faults_measured += n;
    if (n)
        mmm(v, n, 1e6, "s", rate, sizeof rate);
    snprintf(faults_report, sizeof faults_report,
             "link faults (median (min-max)):\n"
             "  erpc round trip, no fault:               %s\n"
             "  erpc round trip, DELAY bf1 bf2 50ms:     %s   (ideal: 100 ms + the above)\n"
             "  5 MB call, RATE bf1 -> bf2 1MB/s:        %s   (ideal: 5.0 s)\n",
             base, delayed, rate);
    say("%s", faults_report);
    epx_fixture_stop_cluster(c);
}

static void sec_start(void)
{
    say("\n== Cluster start: epx_fixture_start_cluster to meshed\n");
    static const int sizes[2] = { 5, 16 };
    bu_series *s[2] = { &start5, &start16 };
    for (int r = 0; r < cfg.runs; r++)
        for (int k = 0; k < 2; k++) {
            epx_options o;
            cluster_opts(&o, "s", 0, 120000);
            long long t0 = bu_mono_us();
            epx_cluster *c = epx_fixture_start_cluster(sizes[k], &o);
            long long t1 = bu_mono_us();
            if (!c) {
                say("  run %d/%d: %d nodes did not start: %s\n", r + 1, cfg.runs, sizes[k],
                    epx_fixture_last_error());
                bu_fail(s[k]);
                continue;
            }
            bu_add(s[k], (double)(t1 - t0) / 1e6);
            say("  run %d/%d: %2d nodes meshed in %.2f s\n", r + 1, cfg.runs, sizes[k],
                (double)(t1 - t0) / 1e6);
            epx_fixture_stop_cluster(c);
        }
}

/* The relay alone, beside its peers (bench/rawtcp.c). */
static void sec_raw(void)
{
    const char *px = getenv("EPX_EPMDPXY");
    raw_config rc = { .runs = cfg.runs, .rtt_count = cfg.raw_rtt, .bulk_mib = cfg.raw_mib,
                      .epmdpxy = px && *px ? px : "build/epmdpxy", .log_dir = cfg.log_dir,
                      .preload = epx_fixture_preload_path(), .connects = cfg.raw_connects,
                      .say = say };
    raw_section(&rc, &raw);
}

/* ---- the table -------------------------------------------------------- */

static int build_rows(bu_row *rows)
{
    int n = 0;
#define ROW(sec, nm, d, p, rt, dec, g, gv, gu)                                        \
    do {                                                                              \
        bu_row *r_ = &rows[n++];                                                      \
        memset(r_, 0, sizeof *r_);                                                    \
        r_->section = (sec);                                                          \
        snprintf(r_->name, sizeof r_->name, "%.*s", (int)sizeof r_->name - 1, (nm));                              \
        r_->direct = (d);                                                             \
        r_->proxied = (p);                                                            \
        r_->ratio = (rt);                                                             \
        r_->decimals = (dec);                                                         \
        r_->goal = (g);                                                               \
        r_->goal_value = (gv);                                                        \
        r_->goal_unit = (gu);                                                         \
    } while (0)
    static char s_rpc[160], s_bulk[160];
    snprintf(s_rpc, sizeof s_rpc,
             "RPC round trip: %d sequential erpc:call(B, erlang, node, []), timed in node A",
             cfg.rpc_calls);
    snprintf(s_bulk, sizeof s_bulk,
             "Bulk: %d MiB as 1 MiB binaries to a process on B, until its ack, timed in A",
             cfg.bulk_mib);
    if (wanted("rpc")) {
        ROW(s_rpc, "us per call", &rpc_d, &rpc_p, &rpc_r, 1, BU_GOAL_LE, 1.2, "x");
        ROW(s_rpc, "daemon CPU per call, us", NULL, &rpc_cpu, NULL, 1, BU_GOAL_NONE, 0, NULL);
        static char pn_rpc[NPEER][96];
        for (int k = 0; k < NPEER; k++)
            if (peer_rpc[k].n) {
                snprintf(pn_rpc[k], sizeof pn_rpc[k], "us per call, through %s",
                         raw_path_name(peer_path[k]));
                ROW(s_rpc, pn_rpc[k], &rpc_d, &peer_rpc[k], &peer_rpc_r[k], 1, BU_GOAL_NONE, 0,
                    NULL);
            }
    }
    if (wanted("bulk")) {
        ROW(s_bulk, "MiB/s", &bulk_d, &bulk_p, &bulk_r, 0, BU_GOAL_GE, 0.9, "x");
        ROW(s_bulk, "daemon CPU per GiB relayed, s", NULL, &bulk_cpu, NULL, 2, BU_GOAL_NONE, 0,
            NULL);
        static char pn_bulk[NPEER][2][96];
        for (int k = 0; k < NPEER; k++)
            if (peer_bulk[k].n) {
                snprintf(pn_bulk[k][0], sizeof pn_bulk[k][0], "MiB/s through %s",
                         raw_path_name(peer_path[k]));
                ROW(s_bulk, pn_bulk[k][0], &bulk_d, &peer_bulk[k], &peer_bulk_r[k], 0,
                    BU_GOAL_NONE, 0, NULL);
                snprintf(pn_bulk[k][1], sizeof pn_bulk[k][1], "%s CPU per GiB relayed, s",
                         raw_path_name(peer_path[k]));
                ROW(s_bulk, pn_bulk[k][1], NULL, &peer_cpu[k], NULL, 2, BU_GOAL_NONE, 0, NULL);
            }
    }
    const char *s_part =
        "Partitions: 5 nodes, CUT n1,n2 n3,n4,n5; ms from sending CUT to nodedown in the nodes";
    if (wanted("partition")) {
        ROW(s_part, "hold, net_ticktime 1: first nodedown", NULL, &hold1_first, NULL, 0,
            BU_GOAL_NONE, 0, NULL);
        ROW(s_part, "hold, net_ticktime 1: last (12th) nodedown", NULL, &hold1_last, NULL, 0,
            BU_GOAL_NONE, 0, NULL);
        ROW(s_part, "hold, net_ticktime 2: first nodedown", NULL, &hold2_first, NULL, 0,
            BU_GOAL_NONE, 0, NULL);
        ROW(s_part, "hold, net_ticktime 2: last (12th) nodedown", NULL, &hold2_last, NULL, 0,
            BU_GOAL_NONE, 0, NULL);
        ROW(s_part, "reset: first nodedown", NULL, &reset_first, NULL, 1, BU_GOAL_NONE, 0, NULL);
        ROW(s_part, "reset: last (12th) nodedown", NULL, &reset_last, NULL, 1, BU_GOAL_LT, 50,
            " ms");
        ROW(s_part, "CUT sent -> its OK reply (libepx control call)", NULL, &cut_rtt, NULL, 2,
            BU_GOAL_NONE, 0, NULL);
        ROW(s_part, "HEAL + connect_all -> last nodeup (after every cut)", NULL, &heal_mesh,
            NULL, 1, BU_GOAL_NONE, 0, NULL);
    }
    static char s_many[96];
    snprintf(s_many, sizeof s_many, "Many links: 32 nodes, 496 links, one daemon (net_ticktime %d)",
             cfg.links_tick);
    if (wanted("links")) {
        ROW(s_many, "32 nodes registered (no mesh), s", NULL, &many_boot, NULL, 1, BU_GOAL_NONE,
            0, NULL);
        ROW(s_many, "connect_all -> full mesh, s", NULL, &many_mesh, NULL, 2, BU_GOAL_NONE, 0,
            NULL);
        ROW(s_many, "daemon VmRSS at full mesh, MiB", NULL, &many_rss, NULL, 1, BU_GOAL_LT, 16,
            " MiB");
        ROW(s_many, "daemon VmHWM (peak RSS), MiB", NULL, &many_hwm, NULL, 1, BU_GOAL_NONE, 0,
            NULL);
        static char cpu_name[96];
        snprintf(cpu_name, sizeof cpu_name, "daemon CPU, only ticks (%d s), %% of a core",
                 cfg.idle_s);
        ROW(s_many, cpu_name, NULL, &many_cpu, NULL, 2, BU_GOAL_LT, 1, " %");
    }
    const char *s_start = "Cluster start: epx_fixture_start_cluster, to meshed";
    if (wanted("start")) {
        ROW(s_start, "5 nodes, s", NULL, &start5, NULL, 2, BU_GOAL_NONE, 0, NULL);
        ROW(s_start, "16 nodes, s", NULL, &start16, NULL, 2, BU_GOAL_NONE, 0, NULL);
    }
    if (wanted("raw")) {
        static char s_raw[4][160], nm[RAW_NPATHS][4][96];
        int half = cfg.raw_mib / 2 > 0 ? cfg.raw_mib / 2 : 1;
        snprintf(s_raw[0], sizeof s_raw[0],
                 "Raw TCP round trip: %d x 64 bytes, us (ratio: path / direct)", cfg.raw_rtt);
        snprintf(s_raw[1], sizeof s_raw[1],
                 "Raw TCP bulk: %d MiB in 1 MiB writes one way, MiB/s (ratio: path / direct)",
                 cfg.raw_mib);
        snprintf(s_raw[2], sizeof s_raw[2],
                 "Raw TCP both ways: %d MiB each way at once, MiB/s summed; relay CPU", half);
        for (int p = RAW_EPMDPXY; p < RAW_NPATHS; p++) {
            if (raw.skipped[p])
                continue;
            snprintf(nm[p][0], sizeof nm[p][0], "%s", raw_path_name(p));
            ROW(s_raw[0], nm[p][0], &raw.rtt[RAW_DIRECT], &raw.rtt[p], &raw.rtt_r[p], 1,
                BU_GOAL_NONE, 0, NULL);
        }
        for (int p = RAW_EPMDPXY; p < RAW_NPATHS; p++) {
            if (raw.skipped[p])
                continue;
            snprintf(nm[p][1], sizeof nm[p][1], "%s", raw_path_name(p));
            ROW(s_raw[1], nm[p][1], &raw.bulk[RAW_DIRECT], &raw.bulk[p], &raw.bulk_r[p], 0,
                BU_GOAL_NONE, 0, NULL);
        }
        ROW(s_raw[1], "epmdpxy / best minimal relay", NULL, &raw.vs_floor, NULL, 2, BU_GOAL_GE,
            0.9, "x");
        ROW(s_raw[1], "epmdpxy --mss 0 / best minimal relay", NULL, &raw.vs_floor_mss0, NULL, 2,
            BU_GOAL_GE, 0.9, "x");
        for (int p = RAW_EPMDPXY; p < RAW_NPATHS; p++) {
            if (raw.skipped[p])
                continue;
            snprintf(nm[p][2], sizeof nm[p][2], "%s", raw_path_name(p));
            ROW(s_raw[2], nm[p][2], &raw.duplex[RAW_DIRECT], &raw.duplex[p], &raw.duplex_r[p],
                0, BU_GOAL_NONE, 0, NULL);
        }
        for (int p = RAW_EPMDPXY; p < RAW_NPATHS; p++) {
            if (raw.skipped[p])
                continue;
            snprintf(nm[p][3], sizeof nm[p][3], "%s: relay CPU s per GiB (one way)",
                     raw_path_name(p));
            ROW(s_raw[2], nm[p][3], NULL, &raw.cpu[p], NULL, 2, BU_GOAL_NONE, 0, NULL);
        }
        if (!raw.skipped[RAW_APP]) {
            snprintf(s_raw[3], sizeof s_raw[3],
                     "connect() to a port no member listens on: %d each, us "
                     "(direct: without the shim; ratio: shim / without)", cfg.raw_connects);
            ROW(s_raw[3], "under the shim (one daemon round trip)", &raw.connect_us[0],
                &raw.connect_us[1], &raw.connect_r, 1, BU_GOAL_NONE, 0, NULL);
        }
    }
#undef ROW
    return n;
}

/* Children of this process still there (bu_count_children, -1 if that
 * cannot be read), and " pid (name) state" for each of the first ones in
 * out: what the warning at the end names. */
static int children_left(char *out, size_t len)
{
    pid_t kids[1024];
    int n = bu_children(kids, 1024);
    size_t used = 0;
    out[0] = 0;
    for (int i = 0; i < n && i < 16 && used < len; i++) {
        char path[64], stat[256] = "";
        snprintf(path, sizeof path, "/proc/%d/stat", (int)kids[i]);
        FILE *f = fopen(path, "r");
        if (f) {
            if (!fgets(stat, sizeof stat, f))
                stat[0] = 0;
            fclose(f);
        }
        /* "pid (comm) S ...": the name and the state */
        char *l = strchr(stat, '('), *r = strrchr(stat, ')');
        int k;
        if (l && r && r > l && r[1] == ' ')
            k = snprintf(out + used, len - used, " %d %.*s %c", (int)kids[i], (int)(r - l + 1),
                         l, r[2]);
        else
            k = snprintf(out + used, len - used, " %d", (int)kids[i]);
        used += k > 0 ? (size_t)k : 0;
    }
    if (n > 16 && used < len)
        snprintf(out + used, len - used, " ...");
    return n;
}

static void usage(void)
{
    fprintf(stderr, "usage: epx-bench [--runs N] [--beam-dir DIR] [--out FILE]\n"
                    "  BENCH_ONLY=rpc,bulk,partition,links,start,faults,raw picks sections\n");
}

int main(int argc, char **argv)
{
    int helper = raw_helper_main(argc, argv);   /* the raw section's helpers */
    if (helper >= 0)
        return helper;
    setvbuf(stdout, NULL, _IOLBF, 0);
    bu_install_signals();
    cfg.runs = env_int("BENCH_RUNS", 5, 1, MAX_RUNS);
    cfg.rpc_calls = env_int("BENCH_RPC_CALLS", 10000, 1, 10000000);
    cfg.bulk_mib = env_int("BENCH_BULK_MIB", 1024, 1, 1 << 20);
    cfg.idle_s = env_int("BENCH_IDLE_S", 10, 1, 3600);
    cfg.links_tick = env_int("BENCH_LINKS_TICKTIME", 2, 1, 3600);
    cfg.raw_rtt = env_int("BENCH_RAW_RTT", 20000, 1, 10000000);
    cfg.raw_mib = env_int("BENCH_RAW_MIB", 1024, 1, 1 << 20);
    cfg.raw_connects = env_int("BENCH_RAW_CONNECTS", 2000, 1, 100000);
    cfg.only = getenv("BENCH_ONLY");
    cfg.beam_dir = getenv("EPX_BENCH_BEAM_DIR");
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--runs") && i + 1 < argc) {
            cfg.runs = atoi(argv[++i]);
            if (cfg.runs < 1 || cfg.runs > MAX_RUNS) {
                fprintf(stderr, "epx-bench: --runs 1..%d\n", MAX_RUNS);
                return 2;
            }
        } else if (!strcmp(argv[i], "--beam-dir") && i + 1 < argc) {
            cfg.beam_dir = argv[++i];
        } else if (!strcmp(argv[i], "--out") && i + 1 < argc) {
            cfg.out = argv[++i];
        } else {
            usage();
            return 2;
        }
    }
    if (!cfg.beam_dir || !*cfg.beam_dir)
        cfg.beam_dir = "build/bench";
    char beam[1024];
    snprintf(beam, sizeof beam, "%s/epx_bench.beam", cfg.beam_dir);
    if (access(beam, R_OK) < 0) {
        fprintf(stderr, "epx-bench: %s: %s (build it with make bench)\n", beam, strerror(errno));
        return 2;
    }
    char dir[1024];
    if (cfg.beam_dir[0] != '/' && getcwd(dir, sizeof dir)) {
        static char abs_dir[2100];
        snprintf(abs_dir, sizeof abs_dir, "%s/%s", dir, cfg.beam_dir);
        cfg.beam_dir = abs_dir;
    }
    split_erl_args();
    cfg.log_dir = bu_logdir_create();
    if (!cfg.log_dir) {
        fprintf(stderr, "epx-bench: cannot create a log directory: %s\n", strerror(errno));
        return 2;
    }

    static char header[2048];
    machine_info(header, sizeof header);
    say("%s", header);
    say("runs: %d (BENCH_RUNS); RPC calls per run: %d; bulk: %d MiB; idle window: %d s%s%s\n",
        cfg.runs, cfg.rpc_calls, cfg.bulk_mib, cfg.idle_s, cfg.only ? "; sections: " : "",
        cfg.only ? cfg.only : "");
    long long t_start = bu_mono_us();

    /* after each section, reap what the bench adopted as a subreaper (the
     * nodes' inet_gethost...): else they stay as zombies to the end */
    if (wanted("rpc") || wanted("bulk"))
        sec_rpc_bulk();
    bu_reap_adopted(0);
    if (wanted("partition"))
        sec_partition();
    bu_reap_adopted(0);
    if (wanted("links"))
        sec_links();
    bu_reap_adopted(0);
    if (wanted("start"))
        sec_start();
    bu_reap_adopted(0);
    if (wanted("faults"))
        sec_faults();
    bu_reap_adopted(0);
    if (wanted("raw"))
        sec_raw();

    static bu_row rows[128];
    int nrows = build_rows(rows);
    int samples = faults_measured;
    for (int i = 0; i < nrows; i++)
        samples += rows[i].proxied ? rows[i].proxied->n : 0;
    static char table[32768];
    bu_table(rows, nrows, table, sizeof table);
    double la[3] = { -1, -1, -1 };
    if (getloadavg(la, 3) < 0)
        la[0] = la[1] = la[2] = -1;
    /* an adopted process gets 2 s to finish (the last nodes' port
     * programs); what the bench started itself must be reaped by now */
    bu_reap_adopted(2000);
    static char left_list[1024];
    int left = children_left(left_list, sizeof left_list);
    static char report[49152];
    snprintf(report, sizeof report,
             "%s"
             "runs: %d; each cell: median (min-max) over the runs; the bench took %.0f s; "
             "load average at the end: %.2f %.2f %.2f\n"
             "%s\n%s"
             "Goals are informative: a shared or slow machine misses them without failing.\n",
             header, cfg.runs, (double)(bu_mono_us() - t_start) / 1e6, la[0], la[1], la[2],
             table, faults_report);
    say("\n==========================================================================\n%s",
        report);
    if (left != 0)
        say("WARNING: %d child processes still there at the end:%s\n", left, left_list);
    if (!bu_logdir_finish())
        say("logs of what failed are kept in %s\n", cfg.log_dir);
    if (cfg.out) {
        FILE *f = fopen(cfg.out, "w");
        if (!f || fputs(report, f) < 0 || fclose(f) != 0)
            fprintf(stderr, "epx-bench: cannot write %s: %s\n", cfg.out, strerror(errno));
        else
            say("(also written to %s)\n", cfg.out);
    }
    if (samples == 0) {
        say("epx-bench: nothing could be measured (see the messages above)\n");
        return 1;
    }
    return 0;
}
