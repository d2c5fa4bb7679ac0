/* epx-soak: `make soak`, a bounded soak test of epmdpxy and libepx.
 *
 * Five nodes (a libepx cluster) exchange checksummed, sequence-numbered
 * messages without pause, every node to every other (soak/epx_soak.erl:
 * one sender per peer, payloads from 1 byte to 1 MiB, one receiver per node
 * that checks them), while this driver cuts and heals random islands every
 * few hundred ms: SPLITs into 2 or 3 islands, one-way and two-way CUTs,
 * ISOLATE, FIX, HEAL, then connect_all.  Phases:
 *
 *   1 freeze-short freeze mode, net_ticktime 10 s, every cut lifted within
 *                  0.3-2 s: shorter than the tick window, and bytes go on
 *                  the instant a cut lifts, so no message may be lost
 *   2 reset        reset mode: cuts kill links, messages are lost
 *   3 hold-long    hold mode, net_ticktime 2 s, cuts held 0.3-5 s: tick
 *                  timeouts, held connection attempts, messages are lost
 *   4 freeze-slow  as 1 on slow links: every pair delayed 20 ms with 15 ms
 *                  of jitter and capped at 20 MB/s each way (DELAY, RATE;
 *                  set again after each HEAL): still no loss, no reordering
 *   5 hold-short   hold mode as in 1: a link cut again before its next
 *                  virtual retransmission backs off further, as TCP does,
 *                  so cuts in quick succession can outlast the tick window
 *                  and lose messages (a real network would too); nothing
 *                  may be reordered, doubled or corrupted
 *
 * Between phases every block is lifted, the mesh reconnected, and each
 * sender puts a mark behind its last message of the phase; the next phase
 * starts once every mark has arrived, so each phase's figures are final.
 * After the last phase the senders stop and the traffic drains the same way.
 *
 * Checks (any failure: exit 1):
 *   - every delivered message is intact (md5) and well-formed, on every node
 *   - per sender, sequence numbers only grow: nothing out of order, nothing
 *     delivered twice, never more delivered than sent
 *   - in the freeze phases nothing is lost (delivered = sent, no gap)
 *     and every pair delivered something
 *   - after every phase the mesh and the traffic come back (marks arrive)
 *   - after each command the daemon's RULES block exactly the pairs the
 *     commands so far imply, every link it lists is held in exactly the
 *     blocked directions, and every control command is answered OK
 *   - no soak process crashed
 *   - at the end (HEAL, connect_all, traffic stopped) the daemon's fd count
 *     equals its baseline (the meshed cluster before any traffic) and its
 *     RSS is within SOAK_RSS_SLACK_KIB (2048) of it
 *   - the daemon is alive at the end; nothing this run started is left
 *
 * When a check fails, the journal (every command with its time, and the
 * daemon's EVENTS) is kept in $TMPDIR/epx-soak.<pid>.journal, and each gap
 * of a no-loss phase is shown beside what happened around it.
 *
 * Usage: epx-soak --beam-dir DIR   (the directory of epx_soak.beam)
 * Environment: SOAK_SECONDS (180: the chaos time, split over the phases;
 *   barriers and the drain come on top), SOAK_SEED (random), SOAK_NODES
 *   (5), SOAK_INTERVAL_MS (100: mean pause between two messages of one
 *   sender), SOAK_MAX_PAYLOAD (1048576), SOAK_TICKTIME (10),
 *   SOAK_SHORT_TICKTIME (2), SOAK_RSS_SLACK_KIB (2048), SOAK_TIMEOUT_S (120:
 *   deadline of each wait), SOAK_INJECT (none; dup, corrupt, reorder or
 *   drop make the senders misbehave on purpose, to see the checks fail),
 *   EPX_EPMDPXY, EPX_AGENT_DIR, EPX_ERL.
 *
 * Every process it starts (through libepx) is its child with
 * PR_SET_PDEATHSIG; on SIGINT, SIGTERM or SIGHUP each is killed and reaped
 * before it dies of the signal itself. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../bench/benchutil.h"
#include "clock.h"
#include "epx_ctl.h"
#include "epx_fixture.h"

#define MAX_N    8
#define NPH      5          /* phases with traffic; phase NPH+1 drains */
#define COLS     10         /* counters per (phase, peer), as epx_soak:stats/0 */
#define OUT_MAX  65536
#define MAX_SPECS 32
#define MAX_FAILS 64

enum { C_SENT, C_SENT_BYTES, C_RX, C_RX_BYTES, C_GAPS, C_MISSING, C_DUPS, C_REORDERS,
       C_BAD_MD5, C_MAX_LAT };

/* ---- configuration ------------------------------------------------------- */

static struct {
    int seconds, n, interval_ms, max_payload, tick, short_tick, rss_slack_kib, timeout_s;
    unsigned long long seed;
    const char *beam_dir;
    const char *inject;
} cfg;

typedef struct phase {
    const char *name;
    int mode;
    int short_tick;             /* 1: cfg.short_tick, else cfg.tick */
    int hold_min_ms, hold_max_ms;
    int share;                  /* percent of SOAK_SECONDS */
    int lossless;
    int slow;                   /* links delayed and capped (set_slow) */
    /* what the driver did */
    int episodes, split2, split3, cut1, cut2, isolate, fix, heal, connect_all, rules_checked;
    long long max_held_ms, ms;
    int barrier_ok;
    long long barrier_ms;
    int fd_after;               /* the daemon after the phase's barrier */
    long rss_after;
} phase;

static phase phases[NPH] = {
    { .name = "freeze-short", .mode = EPX_MODE_FREEZE, .hold_min_ms = 300, .hold_max_ms = 2000,
      .share = 25, .lossless = 1 },
    { .name = "reset", .mode = EPX_MODE_RESET, .hold_min_ms = 300, .hold_max_ms = 3000,
      .share = 20 },
    { .name = "hold-long", .mode = EPX_MODE_HOLD, .short_tick = 1, .hold_min_ms = 300,
      .hold_max_ms = 5000, .share = 20 },
    { .name = "freeze-slow", .mode = EPX_MODE_FREEZE, .hold_min_ms = 300, .hold_max_ms = 2000,
      .share = 20, .lossless = 1, .slow = 1 },
    { .name = "hold-short", .mode = EPX_MODE_HOLD, .hold_min_ms = 300, .hold_max_ms = 2000,
      .share = 15 },
};

/* ---- small things -------------------------------------------------------- */

/* The pipes the daemon's links say they hold (LINKS: "out_splice":true,
 * "in_splice":true): a direction that carried bulk keeps one, two fds,
 * for the link's life.  -1 if LINKS could not be read. */
static int pipes_listed(epx_cluster *c)
{
    static char reply[EPX_CTL_MAX];
    if (epx_fixture_control(c, "LINKS", reply, sizeof reply) < 0)
        return -1;
    int n = 0;
    for (const char *p = reply; (p = strstr(p, "_splice\":true")); p++)
        n++;
    return n;
}

static const char *mode_name(int m)
{
    return m == EPX_MODE_HOLD ? "hold" : m == EPX_MODE_FREEZE ? "freeze" : "reset";
}

/* The nodes' net_ticktime in phase ph. */
static int phase_tick(const phase *ph)
{
    return ph->short_tick ? cfg.short_tick : cfg.tick;
}

static long long t_start;

__attribute__((format(printf, 1, 2))) static void say(const char *fmt, ...)
{
    char buf[8192];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    printf("[%6.1fs] %s\n", (double)(now_ms() - t_start) / 1000.0, buf);
    fflush(stdout);
}

static int env_int(const char *name, int dflt, int min, int max)
{
    const char *v = getenv(name);
    if (!v || !*v)
        return dflt;
    char *end;
    long x = strtol(v, &end, 10);
    if (*end || x < min || x > max) {
        fprintf(stderr, "epx-soak: %s=%s is not in %d..%d\n", name, v, min, max);
        exit(2);
    }
    return (int)x;
}

static double mib(long long bytes)
{
    return (double)bytes / (1024.0 * 1024.0);
}

/* xorshift64*: the whole run follows from SOAK_SEED. */
static unsigned long long rng_state;

static unsigned long long rnd(void)
{
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 2685821657736338717ULL;
}

/* Uniform in [lo, hi]. */
static int rnd_in(int lo, int hi)
{
    return lo + (int)(rnd() % (unsigned long long)(hi - lo + 1));
}

/* ---- checks -------------------------------------------------------------- */

static int nfails;
static char fails[MAX_FAILS][1024];

__attribute__((format(printf, 1, 2))) static void failure(const char *fmt, ...)
{
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    if (nfails < MAX_FAILS)
        snprintf(fails[nfails], sizeof fails[nfails], "%s", buf);
    nfails++;
    say("FAILURE: %s", buf);
}

/* ---- the journal: what was done and what the daemon reported, in time --- */

/* One line per driver action and per daemon event, stamped with
 * CLOCK_REALTIME in microseconds (the nodes' os:system_time): a gap in a
 * no-loss phase is then laid beside what happened when.  Kept on failure. */
static FILE *journal;
static char journal_path[512];
static long long daemon_t0_us;             /* realtime of the daemon's t = 0 */
static int cur_phase = -1;                 /* 0-based, for the tallies below */

/* How the daemon's links ended, per phase: (by, reason) -> count. */
#define MAX_CLOSE_KINDS 12
static struct close_kind {
    char what[120];
    int count;
} closes[NPH][MAX_CLOSE_KINDS];
static int nopened[NPH];
static unsigned long long events_seq;      /* last daemon event journaled */

__attribute__((format(printf, 1, 2))) static void jlog(const char *fmt, ...)
{
    if (!journal)
        return;
    va_list ap;
    va_start(ap, fmt);
    fprintf(journal, "%lld driver ", bu_real_us());
    vfprintf(journal, fmt, ap);
    fputc('\n', journal);
    va_end(ap);
}

/* ---- the daemon's resources ---------------------------------------------- */

static int dpid;                        /* the daemon */
static int peak_fd;
static long peak_rss;

/* The daemon's fds and RSS now, for the peaks in the report. */
static void sample_daemon(void)
{
    int f = bu_proc_fd_count(dpid);
    long r = bu_proc_status_kib(dpid, "VmRSS");
    if (f > peak_fd)
        peak_fd = f;
    if (r > peak_rss)
        peak_rss = r;
}

/* ---- the cluster ---------------------------------------------------------- */

static epx_cluster *cl;
static int nn;                         /* nodes */
static char nodes_list[MAX_N * 80];    /* "['n1@localhost',...]" */

static const char *sname(int i)        /* 0-based */
{
    static char names[MAX_N][16];
    snprintf(names[i], sizeof names[i], "n%d", i + 1);
    return names[i];
}

static const char *fname(int i)
{
    return epx_fixture_node(cl, i + 1);
}

/* Evaluate on node i; 0 or -1 (out holds the error). */
static int eval(int i, const char *expr, char *out, size_t len)
{
    return epx_fixture_eval(cl, sname(i), expr, out, len);
}

static int control_ok = 1;

static int control(const char *cmd, char *out, size_t len)
{
    if (epx_fixture_control(cl, cmd, out, len) < 0) {
        failure("control command '%s' failed: %s", cmd, epx_fixture_last_error());
        control_ok = 0;
        return -1;
    }
    return 0;
}

static int json_field(const char *p, const char *end, const char *key, char *out, size_t len);

/* Copy the daemon's new events into the journal (it keeps only its last
 * 1000, so this runs after every episode). */
static void journal_events(void)
{
    static char reply[EPX_CTL_MAX];
    char cmd[64];
    if (!journal)
        return;
    snprintf(cmd, sizeof cmd, "EVENTS %llu", events_seq);
    if (epx_fixture_control(cl, cmd, reply, sizeof reply) < 0)
        return;
    for (const char *p = reply; (p = strstr(p, "{\"seq\":")) != NULL;) {
        unsigned long long seq;
        long long t;
        const char *end = strchr(p, '}');
        if (!end)
            break;
        if (sscanf(p, "{\"seq\":%llu,\"t\":%lld", &seq, &t) == 2) {
            if (seq > events_seq + 1 && events_seq)
                fprintf(journal, "%lld daemon (events %llu..%llu were not seen)\n",
                        daemon_t0_us + t * 1000, events_seq + 1, seq - 1);
            fprintf(journal, "%lld daemon %.*s\n", daemon_t0_us + t * 1000, (int)(end - p + 1), p);
            events_seq = seq;
            char type[32], by[32], reason[80];
            if (cur_phase >= 0 && json_field(p, end, "type", type, sizeof type) == 0) {
                if (!strcmp(type, "link_opened"))
                    nopened[cur_phase]++;
                if (!strcmp(type, "link_closed") && json_field(p, end, "by", by, sizeof by) == 0 &&
                    json_field(p, end, "reason", reason, sizeof reason) == 0) {
                    char what[120];
                    snprintf(what, sizeof what, "by %s: %s", by, reason);
                    struct close_kind *k = closes[cur_phase];
                    for (int x = 0; x < MAX_CLOSE_KINDS; x++)
                        if (!k[x].count || !strcmp(k[x].what, what)) {
                            if (!k[x].count)
                                snprintf(k[x].what, sizeof k[x].what, "%s", what);
                            k[x].count++;
                            break;
                        }
                }
            }
        }
        p = end + 1;
    }
    fflush(journal);
}

/* Count LINKS entries and those "up". */
static int links(int *up)
{
    static char reply[EPX_CTL_MAX];
    *up = 0;
    if (epx_fixture_control(cl, "LINKS", reply, sizeof reply) < 0)
        return -1;
    int n = 0;
    for (const char *p = reply; (p = strstr(p, "\"state\":")) != NULL; p += 8) {
        n++;
        if (!strncmp(p + 8, "\"up\"", 4))
            (*up)++;
    }
    return n;
}

/* ---- the rules model ------------------------------------------------------- */

static unsigned char blk[MAX_N][MAX_N];   /* pair rules (from, to) */
static unsigned char iso[MAX_N];          /* ISOLATE'd nodes ('*' rules) */

static int model_blocked(int i, int j)
{
    return i != j && (blk[i][j] || iso[i] || iso[j]);
}

static int model_any(void)
{
    for (int i = 0; i < nn; i++)
        for (int j = 0; j < nn; j++)
            if (model_blocked(i, j))
                return 1;
    return 0;
}

static void model_clear(void)
{
    memset(blk, 0, sizeof blk);
    memset(iso, 0, sizeof iso);
}

typedef struct spec {
    int kind;                   /* SPLIT, CUT1 (one way), CUT2 (islands) */
    char text[256];
    unsigned char m[MAX_N][MAX_N];
} spec;

enum { K_SPLIT, K_CUT1, K_CUT2 };

static int rules_mismatches;

static int links_mismatches;

/* Copy the JSON string value of "key" found between p and end into out. */
static int json_field(const char *p, const char *end, const char *key, char *out, size_t len)
{
    char pat[32];
    snprintf(pat, sizeof pat, "\"%s\":\"", key);
    const char *k = strstr(p, pat);
    if (!k || k > end)
        return -1;
    k += strlen(pat);
    const char *q = strchr(k, '"');
    if (!q || q > end || (size_t)(q - k) >= len)
        return -1;
    memcpy(out, k, (size_t)(q - k));
    out[q - k] = 0;
    return 0;
}

static int node_of(const char *name);

/* Every link the daemon lists must be held exactly in the blocked
 * directions: "out" when from -> to is blocked, "in" when to -> from is. */
static void check_links(const char *after)
{
    static char reply[EPX_CTL_MAX];
    if (control("LINKS", reply, sizeof reply) < 0)
        return;
    for (const char *p = reply; (p = strstr(p, "{\"id\":")) != NULL;) {
        const char *end = strchr(p, '}');
        if (!end)
            break;
        char from[256], to[256], held[16], state[16];
        if (json_field(p, end, "from", from, sizeof from) == 0 &&
            json_field(p, end, "to", to, sizeof to) == 0 &&
            json_field(p, end, "held", held, sizeof held) == 0 &&
            json_field(p, end, "state", state, sizeof state) == 0) {
            int i = node_of(from), j = node_of(to);
            if (i >= 0 && j >= 0 && i != j) {
                int out = !strcmp(held, "out") || !strcmp(held, "both");
                int in = !strcmp(held, "in") || !strcmp(held, "both");
                if (out != model_blocked(i, j) || in != model_blocked(j, i)) {
                    if (links_mismatches++ < 5)
                        failure("after '%s' the daemon's link %s -> %s (%s) is held '%s', but "
                                "%s -> %s is %sblocked and %s -> %s is %sblocked: %.*s",
                                after, sname(i), sname(j), state, held, sname(i), sname(j),
                                model_blocked(i, j) ? "" : "not ", sname(j), sname(i),
                                model_blocked(j, i) ? "" : "not ", (int)(end - p + 1), p);
                    return;
                }
            }
        }
        p = end + 1;
    }
}

/* Ask the daemon for RULES and compare what they block with the model. */
static void check_rules(phase *ph, const char *after)
{
    static char reply[EPX_CTL_MAX];
    static epx_rule rules[1024];
    if (control("RULES", reply, sizeof reply) < 0)
        return;
    int nr = epx_ctl_parse_rules(reply + 3, rules, 1024);
    if (nr < 0) {
        failure("cannot parse the daemon's RULES reply after %s: %.300s", after, reply);
        rules_mismatches++;
        return;
    }
    ph->rules_checked++;
    sample_daemon();
    check_links(after);
    for (int i = 0; i < nn; i++)
        for (int j = 0; j < nn; j++) {
            if (i == j)
                continue;
            int d = epx_ctl_blocked(rules, nr, fname(i), fname(j)) != 0;
            int m = model_blocked(i, j);
            if (d != m) {
                if (rules_mismatches++ < 5)
                    failure("after '%s' the daemon %s %s -> %s, the commands say it %s; RULES: %.400s",
                            after, d ? "blocks" : "does not block", sname(i), sname(j),
                            m ? "should" : "should not", reply);
                return;
            }
        }
}

/* Islands text of a partition: island[i] = island number of node i. */
static void islands_text(const int *island, int k, char *out, size_t len)
{
    size_t used = 0;
    out[0] = 0;
    for (int isl = 0; isl < k; isl++) {
        int first = 1;
        for (int i = 0; i < nn; i++)
            if (island[i] == isl) {
                int w = snprintf(out + used, len - used, "%s%s", first ? (isl ? " " : "") : ",",
                                 sname(i));
                used += w > 0 ? (size_t)w : 0;
                first = 0;
            }
    }
}

static void set_text(const unsigned char *in, char *out, size_t len)
{
    size_t used = 0;
    out[0] = 0;
    for (int i = 0; i < nn; i++)
        if (in[i]) {
            int w = snprintf(out + used, len - used, "%s%s", used ? "," : "", sname(i));
            used += w > 0 ? (size_t)w : 0;
        }
}

static void make_split(spec *s, int k)
{
    int island[MAX_N], count[3];
    do {
        count[0] = count[1] = count[2] = 0;
        for (int i = 0; i < nn; i++)
            count[island[i] = rnd_in(0, k - 1)]++;
    } while (count[0] == 0 || count[1] == 0 || (k == 3 && count[2] == 0));
    s->kind = K_SPLIT;
    islands_text(island, k, s->text, sizeof s->text);
    memset(s->m, 0, sizeof s->m);
    for (int i = 0; i < nn; i++)
        for (int j = 0; j < nn; j++)
            s->m[i][j] = island[i] != island[j];
}

/* Two disjoint non-empty sets; one way (a -> b) or both. */
static void make_cut(spec *s, int oneway)
{
    unsigned char a[MAX_N], b[MAX_N];
    int na, nb;
    do {
        na = nb = 0;
        for (int i = 0; i < nn; i++) {
            int r = rnd_in(0, 3);   /* a, b, or neither (twice as likely) */
            a[i] = r == 0;
            b[i] = r == 1;
            na += a[i];
            nb += b[i];
        }
    } while (na == 0 || nb == 0);
    char ta[96], tb[96];
    set_text(a, ta, sizeof ta);
    set_text(b, tb, sizeof tb);
    s->kind = oneway ? K_CUT1 : K_CUT2;
    snprintf(s->text, sizeof s->text, "%s%s%s", ta, oneway ? " -> " : " ", tb);
    memset(s->m, 0, sizeof s->m);
    for (int i = 0; i < nn; i++)
        for (int j = 0; j < nn; j++)
            if ((a[i] && b[j]) || (!oneway && b[i] && a[j]))
                s->m[i][j] = 1;
}

/* ---- actions -------------------------------------------------------------- */

static int do_split(phase *ph, spec *s, int k)
{
    char what[300];
    snprintf(what, sizeof what, "SPLIT %s", s->text);
    if (epx_fixture_split(cl, s->text) < 0) {
        failure("%s: %s", what, epx_fixture_last_error());
        control_ok = 0;
        return -1;
    }
    jlog("%s", what);
    memcpy(blk, s->m, sizeof blk);
    memset(iso, 0, sizeof iso);
    if (k == 2)
        ph->split2++;
    else
        ph->split3++;
    check_rules(ph, what);
    return 0;
}

static int do_cut(phase *ph, spec *s)
{
    char what[300];
    snprintf(what, sizeof what, "CUT %s", s->text);
    if (epx_fixture_cut(cl, s->text) < 0) {
        failure("%s: %s", what, epx_fixture_last_error());
        control_ok = 0;
        return -1;
    }
    jlog("%s", what);
    for (int i = 0; i < nn; i++)
        for (int j = 0; j < nn; j++)
            blk[i][j] |= s->m[i][j];
    if (s->kind == K_CUT1)
        ph->cut1++;
    else
        ph->cut2++;
    check_rules(ph, what);
    return 0;
}

static int do_fix(phase *ph, spec *s)
{
    char what[300];
    snprintf(what, sizeof what, "FIX %s", s->text);
    if (epx_fixture_fix(cl, s->text) < 0) {
        failure("%s: %s", what, epx_fixture_last_error());
        control_ok = 0;
        return -1;
    }
    jlog("%s", what);
    for (int i = 0; i < nn; i++)
        for (int j = 0; j < nn; j++)
            if (s->m[i][j])
                blk[i][j] = 0;
    ph->fix++;
    check_rules(ph, what);
    return 0;
}

static int do_isolate(phase *ph, int i)
{
    char what[64];
    snprintf(what, sizeof what, "ISOLATE %s", sname(i));
    if (epx_fixture_isolate(cl, sname(i)) < 0) {
        failure("%s: %s", what, epx_fixture_last_error());
        control_ok = 0;
        return -1;
    }
    jlog("%s", what);
    iso[i] = 1;
    ph->isolate++;
    check_rules(ph, what);
    return 0;
}

static int set_slow(phase *ph);

static int do_heal(phase *ph)
{
    if (epx_fixture_heal(cl) < 0) {
        failure("HEAL: %s", epx_fixture_last_error());
        control_ok = 0;
        return -1;
    }
    jlog("HEAL");
    model_clear();
    ph->heal++;
    check_rules(ph, "HEAL");
    return ph->slow ? set_slow(ph) : 0;   /* HEAL removed the link faults too */
}

/* hold-slow: every pair of nodes delayed and capped, both ways. */
static int set_slow(phase *ph)
{
    char islands[1024], cmd[1200], out[256];
    size_t k = 0;
    for (int i = 0; i < cfg.n; i++)
        k += (size_t)snprintf(islands + k, sizeof islands - k, "%s%s", i ? " " : "", sname(i));
    const char *tails[] = { "20ms JITTER 15ms", "20MB/s" };
    for (int t = 0; t < 2; t++) {
        snprintf(cmd, sizeof cmd, "%s %s %s", t ? "RATE" : "DELAY", islands, tails[t]);
        if (epx_fixture_control(cl, cmd, out, sizeof out) < 0) {
            failure("%s: %s", cmd, epx_fixture_last_error());
            control_ok = 0;
            return -1;
        }
        jlog("%s", cmd);
    }
    (void)ph;
    return 0;
}

/* connect_all may fail when a node is slow to answer; that is not the
 * daemon's fault and the barrier checks the mesh anyway: just say so. */
static void do_connect_all(phase *ph)
{
    jlog("connect_all");
    if (epx_fixture_connect_all(cl) < 0)
        say("note: connect_all: %s", epx_fixture_last_error());
    jlog("connect_all done");
    ph->connect_all++;
}

/* ---- the nodes' counters --------------------------------------------------- */

typedef struct nstats {
    long long crashes, junk, violations;
    long long down[NPH + 1], up[NPH + 1];
    long long v[NPH + 1][MAX_N][COLS];
} nstats;

static nstats st[MAX_N];

/* Parse epx_soak:stats/0's tuple into st[i]. */
static int parse_stats(int i, const char *txt)
{
    const char *p = strstr(txt, "{stats,");
    if (!p)
        return -1;
    p += 7;
    long long vals[4 + 3 + (NPH + 1) * (2 + MAX_N * COLS)];
    int nv = 0, cap = (int)(sizeof vals / sizeof vals[0]);
    while (*p && *p != '}' && nv < cap) {
        char *end;
        long long x = strtoll(p, &end, 10);
        if (end == p)
            return -1;
        vals[nv++] = x;
        p = end;
        if (*p == ',')
            p++;
    }
    if (nv < 5)
        return -1;
    int n = (int)vals[0], np = (int)vals[1];
    if (n != nn || np != NPH || nv != 5 + (np + 1) * (2 + n * COLS))
        return -1;
    nstats *s = &st[i];
    memset(s, 0, sizeof *s);
    s->crashes = vals[2];
    s->junk = vals[3];
    s->violations = vals[4];
    int k = 5;
    for (int ph = 0; ph <= np; ph++) {
        s->down[ph] = vals[k++];
        s->up[ph] = vals[k++];
        for (int j = 0; j < n; j++)
            for (int c = 0; c < COLS; c++)
                s->v[ph][j][c] = vals[k++];
    }
    return 0;
}

static int collect_stats(void)
{
    static char out[OUT_MAX];
    int rc = 0;
    for (int i = 0; i < nn; i++) {
        if (eval(i, "epx_soak:stats().", out, sizeof out) < 0) {
            say("note: stats of %s: %s", sname(i), out);
            rc = -1;
        } else if (parse_stats(i, out) < 0) {
            failure("cannot read the stats of %s: %.300s", sname(i), out);
            rc = -1;
        }
    }
    return rc;
}

typedef struct totals {
    long long sent, sent_bytes, rx, rx_bytes, gaps, missing, dups, reorders, bad_md5, max_lat;
    long long downs, ups;
} totals;

/* Sums over every pair for phase ph (0-based). */
static totals phase_totals(int ph)
{
    totals t;
    memset(&t, 0, sizeof t);
    for (int i = 0; i < nn; i++) {
        t.downs += st[i].down[ph];
        t.ups += st[i].up[ph];
        for (int j = 0; j < nn; j++) {
            const long long *v = st[i].v[ph][j];
            t.sent += v[C_SENT];
            t.sent_bytes += v[C_SENT_BYTES];
            t.rx += v[C_RX];
            t.rx_bytes += v[C_RX_BYTES];
            t.gaps += v[C_GAPS];
            t.missing += v[C_MISSING];
            t.dups += v[C_DUPS];
            t.reorders += v[C_REORDERS];
            t.bad_md5 += v[C_BAD_MD5];
            if (v[C_MAX_LAT] > t.max_lat)
                t.max_lat = v[C_MAX_LAT];
        }
    }
    return t;
}

/* ---- barriers ---------------------------------------------------------------- */

/* Every block lifted, the mesh back: 0, or -1 at the deadline. */
static int restore_mesh(phase *ph, long long deadline)
{
    if (model_any() && do_heal(ph) < 0)
        return -1;
    for (;;) {
        do_connect_all(ph);
        int left = (int)(deadline - now_ms());
        int wait = left < 20000 ? left : 20000;
        if (wait > 0 && epx_fixture_await_connected(cl, wait) == 0)
            return 0;
        if (now_ms() >= deadline) {
            failure("the mesh did not come back after HEAL and connect_all within %d s: %s",
                    cfg.timeout_s, epx_fixture_last_error());
            return -1;
        }
    }
}

static int set_ticktime_all(int t, long long deadline)
{
    char expr[64], out[256], want[16];
    snprintf(expr, sizeof expr, "epx_soak:set_ticktime(%d).", t);
    snprintf(want, sizeof want, "%d", t);
    for (int i = 0; i < nn; i++)
        if (eval(i, expr, out, sizeof out) < 0) {
            failure("net_ticktime %d on %s: %s", t, sname(i), out);
            return -1;
        }
    for (int i = 0; i < nn; i++)
        for (;;) {
            if (eval(i, "epx_soak:ticktime().", out, sizeof out) == 0 && !strcmp(out, want))
                break;
            if (now_ms() >= deadline) {
                failure("net_ticktime of %s is still %s, not %d", sname(i), out, t);
                return -1;
            }
            nap_ms(100);
        }
    return 0;
}

/* End the phase `ph` (0-based; NPH = none) and start phase `next` (1-based,
 * as the nodes count; NPH+1 = drain): lift every block, bring the mesh
 * back, set the next phase's mode and tick time, move every sender on and
 * wait until every mark has arrived. */
static int barrier(phase *ph, int next, const phase *nph)
{
    long long t0 = now_ms();
    long long deadline = t0 + cfg.timeout_s * 1000LL;
    char out[OUT_MAX], expr[128];
    if (restore_mesh(ph, deadline) < 0)
        return -1;
    if (nph) {
        if (epx_fixture_set_mode(cl, nph->mode) < 0) {
            failure("MODE: %s", epx_fixture_last_error());
            control_ok = 0;
            return -1;
        }
        int want = phase_tick(nph);
        if (set_ticktime_all(want, deadline) < 0)
            return -1;
    }
    snprintf(expr, sizeof expr, "epx_soak:phase(%d, %s).", next, next <= NPH ? "true" : "false");
    jlog("barrier: mesh whole, senders move to phase %d", next);
    for (int i = 0; i < nn; i++)
        if (eval(i, expr, out, sizeof out) < 0) {
            failure("phase %d on %s: %s", next, sname(i), out);
            return -1;
        }
    snprintf(expr, sizeof expr, "epx_soak:marks(%d).", next);
    long long remark_at = now_ms() + 5000;
    int done[MAX_N] = { 0 };
    for (;;) {
        int all = 1;
        for (int i = 0; i < nn; i++) {
            if (done[i])
                continue;
            if (eval(i, expr, out, sizeof out) == 0 && atoi(out) == nn - 1)
                done[i] = 1;
            else
                all = 0;
        }
        if (all)
            break;
        if (now_ms() >= deadline) {
            char missing[256] = "";
            for (int i = 0; i < nn; i++)
                if (!done[i])
                    snprintf(missing + strlen(missing), sizeof missing - strlen(missing), " %s",
                             sname(i));
            failure("traffic did not resume: after %d s, not every sender's mark for phase %d "
                    "reached%s", cfg.timeout_s, next, missing);
            return -1;
        }
        if (now_ms() >= remark_at) {
            /* a mark lost with a link that went down late: send them again */
            do_connect_all(ph);
            for (int i = 0; i < nn; i++)
                eval(i, "epx_soak:remark().", out, sizeof out);
            jlog("barrier: marks sent again");
            remark_at = now_ms() + 5000;
        }
        nap_ms(100);
    }
    jlog("barrier: every mark for phase %d arrived", next);
    journal_events();
    ph->barrier_ok = 1;
    ph->barrier_ms = now_ms() - t0;
    ph->fd_after = bu_proc_fd_count(dpid);
    ph->rss_after = bu_proc_status_kib(dpid, "VmRSS");
    sample_daemon();
    return 0;
}

/* ---- one phase of chaos ------------------------------------------------------- */

static void progress(int p, const phase *ph)
{
    if (collect_stats() < 0)
        return;
    totals t = phase_totals(p);
    say("  %s so far: %d episodes, sent %lld (%.1f MiB), delivered %lld, nodedowns %lld", ph->name,
        ph->episodes, t.sent, mib(t.sent_bytes), t.rx, t.downs);
}

/* A block action at random; adds what FIX may undo to specs. */
static int block_action(phase *ph, spec *specs, int *nspecs, int *need_heal)
{
    spec s;
    int r = rnd_in(0, 99);
    if (r < 30) {
        int k = rnd_in(2, 3);
        make_split(&s, k);
        if (do_split(ph, &s, k) < 0)
            return -1;
        *nspecs = 0;   /* SPLIT replaced every rule */
    } else if (r < 60) {
        make_cut(&s, 1);
        if (do_cut(ph, &s) < 0)
            return -1;
    } else if (r < 80) {
        make_cut(&s, 0);
        if (do_cut(ph, &s) < 0)
            return -1;
    } else {
        if (do_isolate(ph, rnd_in(0, nn - 1)) < 0)
            return -1;
        *need_heal = 1;
        return 0;
    }
    if (*nspecs < MAX_SPECS)
        specs[(*nspecs)++] = s;
    return 0;
}

static int run_phase(int p)
{
    phase *ph = &phases[p];
    long long t0 = now_ms();
    long long end = t0 + (long long)cfg.seconds * 1000 * ph->share / 100;
    long long next_progress = t0 + 15000;
    journal_events();
    cur_phase = p;
    jlog("phase %d %s starts", p + 1, ph->name);
    say("phase %d %s: %s mode, net_ticktime %d s, cuts held %.1f-%.1f s, for %lld s", p + 1,
        ph->name, mode_name(ph->mode),
        phase_tick(ph), ph->hold_min_ms / 1000.0,
        ph->hold_max_ms / 1000.0, (end - t0) / 1000);
    if (ph->slow && set_slow(ph) < 0)
        return -1;
    while (now_ms() < end && control_ok) {
        /* an episode: blocks for D ms, changed every few hundred ms, then
         * lifted (HEAL, or FIX of what is left), then connect_all */
        int d = rnd_in(ph->hold_min_ms, ph->hold_max_ms);
        spec specs[MAX_SPECS];
        int nspecs = 0, need_heal = 0;
        long long e0 = now_ms();
        long long lift = e0 + d;
        if (block_action(ph, specs, &nspecs, &need_heal) < 0)
            break;
        for (;;) {
            long long next = now_ms() + rnd_in(150, 500);
            if (next >= lift) {
                nap_ms(lift - now_ms());
                break;
            }
            nap_ms(next - now_ms());
            int r = rnd_in(0, 99);
            if (r < 45) {
                if (block_action(ph, specs, &nspecs, &need_heal) < 0)
                    goto out;
            } else if (r < 75 && nspecs > 0) {
                int k = rnd_in(0, nspecs - 1);
                if (do_fix(ph, &specs[k]) < 0)
                    goto out;
                specs[k] = specs[--nspecs];
            }
        }
        if (!need_heal && rnd_in(0, 1) == 0) {
            while (nspecs > 0 && model_any())
                if (do_fix(ph, &specs[--nspecs]) < 0)
                    goto out;
            if (model_any()) {
                failure("FIX of every CUT and SPLIT of an episode left blocks (model)");
                if (do_heal(ph) < 0)
                    goto out;
            }
        } else if (do_heal(ph) < 0) {
            goto out;
        }
        long long held = now_ms() - e0;
        if (held > ph->max_held_ms)
            ph->max_held_ms = held;
        do_connect_all(ph);
        ph->episodes++;
        journal_events();
        nap_ms(rnd_in(200, 800));   /* the network whole for a moment */
        if (now_ms() >= next_progress) {
            progress(p, ph);
            next_progress = now_ms() + 15000;
        }
    }
out:
    ph->ms = now_ms() - t0;
    say("phase %d %s: did %d episodes in %.1f s (longest hold %.1f s): SPLIT 2 islands %d, "
        "3 islands %d, CUT one-way %d, two-way %d, ISOLATE %d, FIX %d, HEAL %d, connect_all %d; "
        "RULES checked %d times",
        p + 1, ph->name, ph->episodes, ph->ms / 1000.0, ph->max_held_ms / 1000.0, ph->split2,
        ph->split3, ph->cut1, ph->cut2, ph->isolate, ph->fix, ph->heal, ph->connect_all,
        ph->rules_checked);
    return control_ok ? 0 : -1;
}

/* ---- the report -------------------------------------------------------------- */

static void report_tables(void)
{
    printf("\nwhat the driver did (per phase):\n");
    printf("  %-13s %-5s %4s %5s %8s %6s %6s %5s %5s %7s %4s %4s %7s %7s %6s %9s\n", "phase", "mode",
           "tick", "time", "episodes", "SPLIT2", "SPLIT3", "CUT->", "CUT", "ISOLATE", "FIX", "HEAL",
           "connect", "longest", "RULES", "settled");
    printf("  %-13s %-5s %4s %5s %8s %6s %6s %5s %5s %7s %4s %4s %7s %7s %6s %9s\n", "", "",
           "s", "s", "", "", "", "1-way", "2-way", "", "", "", "_all", "hold s", "checks", "s");
    for (int p = 0; p < NPH; p++) {
        const phase *ph = &phases[p];
        char name[32];
        snprintf(name, sizeof name, "%d %s", p + 1, ph->name);
        printf("  %-13s %-5s %4d %5.0f %8d %6d %6d %5d %5d %7d %4d %4d %7d %7.1f %6d %9.1f\n", name,
               mode_name(ph->mode), phase_tick(ph),
               ph->ms / 1000.0, ph->episodes, ph->split2, ph->split3, ph->cut1, ph->cut2,
               ph->isolate, ph->fix, ph->heal, ph->connect_all, ph->max_held_ms / 1000.0,
               ph->rules_checked, ph->barrier_ms / 1000.0);
    }
    printf("\nwhat the nodes saw (per phase, all %d senders):\n", nn * (nn - 1));
    printf("  %-13s %9s %9s %9s %9s %7s %5s %4s %4s %5s %8s %6s  %s\n", "phase", "sent", "sent",
           "delivered", "delivered", "lost", "gaps", "bad", "dup", "out of", "max", "node", "");
    printf("  %-13s %9s %9s %9s %9s %7s %5s %4s %4s %5s %8s %6s  %s\n", "", "msgs", "MiB", "msgs",
           "MiB", "msgs", "", "md5", "", "order", "latency", "downs", "");
    totals all;
    memset(&all, 0, sizeof all);
    for (int p = 0; p < NPH; p++) {
        totals t = phase_totals(p);
        char name[32];
        snprintf(name, sizeof name, "%d %s", p + 1, phases[p].name);
        printf("  %-13s %9lld %9.1f %9lld %9.1f %7lld %5lld %4lld %4lld %5lld %7.2fs %6lld  %s\n",
               name, t.sent, mib(t.sent_bytes), t.rx, mib(t.rx_bytes), t.sent - t.rx, t.gaps,
               t.bad_md5, t.dups, t.reorders, (double)t.max_lat / 1e6, t.downs,
               phases[p].lossless ? "(no loss allowed)" : "(loss allowed)");
        all.sent += t.sent;
        all.sent_bytes += t.sent_bytes;
        all.rx += t.rx;
        all.rx_bytes += t.rx_bytes;
        all.gaps += t.gaps;
        all.bad_md5 += t.bad_md5;
        all.dups += t.dups;
        all.reorders += t.reorders;
        all.downs += t.downs;
        if (t.max_lat > all.max_lat)
            all.max_lat = t.max_lat;
    }
    printf("  %-13s %9lld %9.1f %9lld %9.1f %7lld %5lld %4lld %4lld %5lld %7.2fs %6lld\n", "total",
           all.sent, mib(all.sent_bytes), all.rx, mib(all.rx_bytes), all.sent - all.rx, all.gaps,
           all.bad_md5, all.dups, all.reorders, (double)all.max_lat / 1e6, all.downs);
    printf("\nthe daemon's links (from its EVENTS, per phase and its barrier):\n");
    for (int p = 0; p < NPH; p++) {
        printf("  %d %-11s opened %d", p + 1, phases[p].name, nopened[p]);
        const char *sep = "; closed ";
        for (int x = 0; x < MAX_CLOSE_KINDS && closes[p][x].count; x++) {
            printf("%s%d %s", sep, closes[p][x].count, closes[p][x].what);
            sep = ", ";
        }
        printf("\n");
    }
    printf("\n");
    fflush(stdout);
}

static void check_traffic(void)
{
    long long bad = 0, junk = 0, crashes = 0, dups = 0, reorders = 0;
    for (int i = 0; i < nn; i++) {
        junk += st[i].junk;
        crashes += st[i].crashes;
    }
    for (int p = 0; p <= NPH; p++) {
        totals t = phase_totals(p);
        bad += t.bad_md5;
        dups += t.dups;
        reorders += t.reorders;
        if (p == NPH && (t.sent || t.rx))
            failure("the drain phase moved data: sent %lld, delivered %lld", t.sent, t.rx);
    }
    if (bad || junk)
        failure("%lld messages failed their md5 and %lld were not soak messages", bad, junk);
    if (dups)
        failure("%lld messages were delivered twice", dups);
    if (reorders)
        failure("%lld messages were delivered out of order", reorders);
    if (crashes)
        failure("%lld soak processes crashed", crashes);
    for (int p = 0; p < NPH; p++) {
        totals t = phase_totals(p);
        if (t.rx == 0)
            failure("phase %d %s: no message was delivered at all", p + 1, phases[p].name);
        for (int i = 0; i < nn; i++)
            for (int j = 0; j < nn; j++) {
                if (i == j)
                    continue;
                long long sent = st[i].v[p][j][C_SENT], rx = st[j].v[p][i][C_RX];
                long long gaps = st[j].v[p][i][C_GAPS];
                if (rx > sent)
                    failure("phase %d: %s -> %s delivered %lld messages, more than the %lld sent",
                            p + 1, sname(i), sname(j), rx, sent);
                if (phases[p].lossless && (rx != sent || gaps))
                    failure("phase %d %s (no loss allowed): %s -> %s sent %lld, delivered %lld "
                            "(%lld lost, %lld gaps, %lld missing by sequence)",
                            p + 1, phases[p].name, sname(i), sname(j), sent, rx, sent - rx, gaps,
                            st[j].v[p][i][C_MISSING]);
                if (phases[p].lossless && rx == 0)
                    failure("phase %d %s: %s -> %s delivered nothing", p + 1, phases[p].name,
                            sname(i), sname(j));
            }
    }
}

static int node_of(const char *name)
{
    for (int i = 0; i < nn; i++)
        if (!strcmp(name, fname(i)) || !strcmp(name, sname(i)))
            return i;
    return -1;
}

typedef struct jline {
    long long t;
    long no;
    char *text;
} jline;

static int jline_cmp(const void *a, const void *b)
{
    const jline *x = a, *y = b;
    if (x->t != y->t)
        return x->t < y->t ? -1 : 1;
    return x->no < y->no ? -1 : x->no > y->no;
}

/* Print the journal lines between from_us and to_us, in time order. */
static void journal_window(long long from_us, long long to_us)
{
    if (!journal)
        return;
    fflush(journal);
    FILE *f = fopen(journal_path, "r");
    if (!f)
        return;
    enum { MAXL = 400 };
    static jline lines[MAXL];
    int n = 0, more = 0;
    long no = 0;
    char line[4096];
    while (fgets(line, sizeof line, f)) {
        long long t = strtoll(line, NULL, 10);
        no++;
        if (t < from_us || t > to_us)
            continue;
        if (n == MAXL) {
            more = 1;
            continue;
        }
        char *rest = strchr(line, ' ');
        lines[n].t = t;
        lines[n].no = no;
        lines[n].text = strdup(rest ? rest + 1 : line);
        if (lines[n].text)
            n++;
    }
    fclose(f);
    qsort(lines, (size_t)n, sizeof lines[0], jline_cmp);
    for (int k = 0; k < n; k++) {
        printf("      %+8.3f s %s", (double)(lines[k].t - from_us) / 1e6, lines[k].text);
        free(lines[k].text);
    }
    if (more)
        printf("      ... (more in %s)\n", journal_path);
}

/* For the gaps of the no-loss phases: what the sender remembers of the
 * first missing message, and what the driver and the daemon did around
 * it. */
static void explain_gaps(void)
{
    static char out[OUT_MAX];
    int shown = 0;
    for (int j = 0; j < nn && shown < 3; j++) {
        if (eval(j, "epx_soak:gaps().", out, sizeof out) < 0)
            continue;
        for (const char *p = out; (p = strchr(p, '{')) != NULL && shown < 3; p++) {
            char from[128];
            int ph;
            long long first, last, prev_us, next_us, recv_us;
            if (sscanf(p, "{%127[^,],%d,%lld,%lld,%lld,%lld,%lld}", from, &ph, &first, &last,
                       &prev_us, &next_us, &recv_us) != 7)
                continue;
            if (ph < 1 || ph > NPH || !phases[ph - 1].lossless)
                continue;
            int i = node_of(from);
            if (i < 0)
                continue;
            shown++;
            char expr[128], info[512] = "?";
            snprintf(expr, sizeof expr, "epx_soak:sent_info(%d, %lld).", j + 1, first);
            eval(i, expr, info, sizeof info);
            say("gap in phase %d %s: %s -> %s lost seq %lld..%lld; the sender's record of %lld "
                "as {Seq, Phase, SentUs, Size}: %s; the message before it was sent at %lld, the "
                "one after at %lld, received %.3f s later",
                ph, phases[ph - 1].name, sname(i), sname(j), first, last, first, info, prev_us,
                next_us, (double)(recv_us - next_us) / 1e6);
            long long ref = prev_us ? prev_us : next_us;   /* 0: nothing came before it */
            printf("    the journal from 3 s before the message %s it (driver actions, daemon "
                   "events; times from then):\n", prev_us ? "before" : "after");
            journal_window(ref - 3000000, recv_us + 1000000);
        }
    }
}

static void print_node_details(int any_violation)
{
    static char out[OUT_MAX];
    for (int i = 0; i < nn; i++) {
        if (eval(i, "epx_soak:downs().", out, sizeof out) == 0 && strcmp(out, "[]"))
            say("nodedowns seen by %s, as [{Phase, Reason, Count}]: %s", sname(i), out);
        if (any_violation && eval(i, "epx_soak:violations().", out, sizeof out) == 0 &&
            strcmp(out, "[]"))
            say("violations seen by %s: %s", sname(i), out);
    }
}

/* ---- main ------------------------------------------------------------------ */

/* Could not run at all: stop everything, exit status 2. */
static int give_up(void)
{
    epx_fixture_stop_cluster(cl);
    cl = NULL;
    if (journal) {
        fclose(journal);
        journal = NULL;
        unlink(journal_path);
    }
    return 2;
}

static void usage(void)
{
    fprintf(stderr, "usage: epx-soak --beam-dir DIR   (see soak/soak.c for the environment)\n");
    exit(2);
}

int main(int argc, char **argv)
{
    t_start = now_ms();
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--beam-dir") && i + 1 < argc)
            cfg.beam_dir = argv[++i];
        else
            usage();
    }
    if (!cfg.beam_dir)
        usage();
    cfg.seconds = env_int("SOAK_SECONDS", 180, 20, 24 * 3600);
    cfg.n = env_int("SOAK_NODES", 5, 3, MAX_N);
    cfg.interval_ms = env_int("SOAK_INTERVAL_MS", 100, 0, 60000);
    cfg.max_payload = env_int("SOAK_MAX_PAYLOAD", 1048576, 1, 2 * 1048576);
    cfg.tick = env_int("SOAK_TICKTIME", 10, 3, 600);
    cfg.short_tick = env_int("SOAK_SHORT_TICKTIME", 2, 1, 60);
    cfg.rss_slack_kib = env_int("SOAK_RSS_SLACK_KIB", 2048, 0, 1 << 20);
    cfg.timeout_s = env_int("SOAK_TIMEOUT_S", 120, 10, 3600);
    cfg.inject = getenv("SOAK_INJECT");
    if (!cfg.inject || !*cfg.inject)
        cfg.inject = "none";
    if (strcmp(cfg.inject, "none") && strcmp(cfg.inject, "dup") && strcmp(cfg.inject, "corrupt") &&
        strcmp(cfg.inject, "reorder") && strcmp(cfg.inject, "drop")) {
        fprintf(stderr, "epx-soak: SOAK_INJECT=%s: none, dup, corrupt, reorder or drop\n",
                cfg.inject);
        return 2;
    }
    const char *seed = getenv("SOAK_SEED");
    cfg.seed = seed && *seed ? strtoull(seed, NULL, 10)
                             : (unsigned long long)time(NULL) ^ ((unsigned long long)getpid() << 20);
    cfg.seed &= 0xffffffffULL;
    rng_state = cfg.seed * 0x9E3779B97F4A7C15ULL + 1;
    for (int p = 0; p < NPH; p++)
        if (!phases[p].short_tick && phases[p].mode == EPX_MODE_HOLD && phases[p].lossless &&
            phases[p].hold_max_ms >= cfg.tick * 750) {
            fprintf(stderr, "epx-soak: SOAK_TICKTIME %d s is too short for cuts held %d ms\n",
                    cfg.tick, phases[p].hold_max_ms);
            return 2;
        }
    setvbuf(stdout, NULL, _IOLBF, 0);
    bu_install_signals();
    nn = cfg.n;

    say("epx-soak: %d nodes, %d s of cuts (SOAK_SECONDS), SOAK_SEED=%llu, payloads 1 B..%d B, "
        "one message per ~%d ms per sender (%d senders)",
        nn, cfg.seconds, cfg.seed, cfg.max_payload, cfg.interval_ms, nn * (nn - 1));
    double la[3];
    if (getloadavg(la, 3) == 3)
        say("load average %.2f %.2f %.2f on %ld CPUs", la[0], la[1], la[2],
            sysconf(_SC_NPROCESSORS_ONLN));

    const char *paths[2] = { cfg.beam_dir, NULL };
    epx_options o;
    memset(&o, 0, sizeof o);
    /* phase 1's mode and tick time from the start: the barriers set only
     * the phases after it */
    o.net_ticktime = phase_tick(&phases[0]);
    o.code_paths = paths;
    o.timeout_ms = cfg.timeout_s * 1000;
    o.mode = phases[0].mode;
    cl = epx_fixture_start_cluster(nn, &o);
    if (!cl) {
        fprintf(stderr, "epx-soak: cannot start the cluster: %s\n", epx_fixture_last_error());
        return 2;
    }
    dpid = epx_fixture_daemon_pid(cl);
    int want_links = nn * (nn - 1) / 2;
    say("cluster up: daemon pid %d, epmd port %d, control port %d", dpid,
        epx_fixture_epmd_port(cl), epx_fixture_control_port(cl));
    {
        const char *tmp = getenv("TMPDIR");
        snprintf(journal_path, sizeof journal_path, "%s/epx-soak.%d.journal",
                 tmp && *tmp ? tmp : "/tmp", (int)getpid());
        journal = fopen(journal_path, "w");
        bu_remove_on_signal(journal_path);
        char status[4096];
        long long up_ms = -1;
        long long r0 = bu_real_us();
        if (epx_fixture_control(cl, "STATUS", status, sizeof status) == 0) {
            const char *u = strstr(status, "\"uptime_ms\":");
            if (u)
                up_ms = strtoll(u + 12, NULL, 10);
        }
        daemon_t0_us = r0 - (up_ms > 0 ? up_ms * 1000 : 0);
        jlog("cluster up, SOAK_SEED=%llu", cfg.seed);
    }

    /* Baseline: the mesh up, no traffic yet, the fd count steady for 1 s. */
    int base_fd = -1, steady = 0, nl = -1, up = 0;
    long base_rss = -1;
    long long deadline = now_ms() + cfg.timeout_s * 1000LL;
    while (now_ms() < deadline) {
        nl = links(&up);
        int f = bu_proc_fd_count(dpid);
        if (nl == want_links && up == want_links && f > 0 && f == base_fd)
            steady++;
        else
            steady = 0;
        base_fd = f;
        if (steady >= 4)
            break;
        nap_ms(250);
    }
    base_rss = bu_proc_status_kib(dpid, "VmRSS");
    if (steady < 4) {
        fprintf(stderr, "epx-soak: no steady mesh within %d s (%d links, %d up, %d fds)\n",
                cfg.timeout_s, nl, up, base_fd);
        return give_up();
    }
    say("daemon baseline: %d fds, RSS %ld KiB, %d links up", base_fd, base_rss, up);

    char expr[2048], out[OUT_MAX];
    size_t used = (size_t)snprintf(nodes_list, sizeof nodes_list, "[");
    for (int i = 0; i < nn; i++)
        used += (size_t)snprintf(nodes_list + used, sizeof nodes_list - used, "%s'%s'",
                                 i ? "," : "", fname(i));
    snprintf(nodes_list + used, sizeof nodes_list - used, "]");
    for (int i = 0; i < nn; i++) {
        snprintf(expr, sizeof expr,
                 "epx_soak:start(%s, %d, #{interval_ms => %d, max_size => %d, seed => %llu, "
                 "inject => %s}).",
                 nodes_list, NPH, cfg.interval_ms, cfg.max_payload, cfg.seed + 1, cfg.inject);
        if (eval(i, expr, out, sizeof out) < 0) {
            fprintf(stderr, "epx-soak: cannot start epx_soak on %s: %s\n", sname(i), out);
            return give_up();
        }
    }
    /* every receiver is there: let the senders go */
    for (int i = 0; i < nn; i++)
        if (eval(i, "epx_soak:phase(1, true).", out, sizeof out) < 0) {
            fprintf(stderr, "epx-soak: cannot start the senders on %s: %s\n", sname(i), out);
            return give_up();
        }
    say("traffic started%s%s", strcmp(cfg.inject, "none") ? "; SOAK_INJECT=" : "",
        strcmp(cfg.inject, "none") ? cfg.inject : "");

    int aborted = 0;
    for (int p = 0; p < NPH && !aborted; p++) {
        if (run_phase(p) < 0)
            aborted = 1;
        say("phase %d %s ends: lifting every block, reconnecting, waiting for every mark", p + 1,
            phases[p].name);
        if (barrier(&phases[p], p + 2, p + 1 < NPH ? &phases[p + 1] : NULL) < 0)
            aborted = 1;
        else
            say("phase %d %s: traffic settled in %.1f s; the daemon now has %d fds, RSS %ld KiB",
                p + 1, phases[p].name, phases[p].barrier_ms / 1000.0, phases[p].fd_after,
                phases[p].rss_after);
    }
    if (!aborted)
        say("senders stopped, every message of every phase delivered or lost for good");

    int have_stats = collect_stats() == 0;
    if (have_stats) {
        report_tables();
        int before = nfails;
        check_traffic();
        if (nfails > before)
            explain_gaps();
    } else {
        failure("could not read the nodes' counters");
    }
    int violations = 0;
    for (int i = 0; i < nn; i++)
        violations += st[i].violations > 0;
    print_node_details(violations || !have_stats);

    /* The daemon's resources back to the baseline, with a deadline: the
     * mesh must be whole again first (aborted runs get a HEAL too). */
    if (aborted) {
        epx_fixture_heal(cl);
        epx_fixture_connect_all(cl);
    }
    int end_fd = -1, pipes = 0;
    long end_rss = -1;
    long long t_res = now_ms();
    deadline = t_res + cfg.timeout_s * 1000LL;
    for (;;) {
        pipes = pipes_listed(cl);
        end_fd = bu_proc_fd_count(dpid);
        end_rss = bu_proc_status_kib(dpid, "VmRSS");
        if (end_fd == base_fd + 2 * pipes && end_rss >= 0 &&
            end_rss <= base_rss + cfg.rss_slack_kib)
            break;
        if (now_ms() >= deadline)
            break;
        nap_ms(250);
    }
    nl = links(&up);
    say("daemon at the end: %d fds (baseline %d, peak %d, and 2 for each of %d pipes), RSS %ld KiB "
        "(baseline %ld, limit +%d, peak %ld), %d links (%d up), after %.1f s",
        end_fd, base_fd, peak_fd, pipes, end_rss, base_rss, cfg.rss_slack_kib, peak_rss, nl, up,
        (now_ms() - t_res) / 1000.0);
    if (end_fd != base_fd + 2 * pipes) {
        static char reply[EPX_CTL_MAX];
        failure("the daemon holds %d fds, not its baseline %d and 2 for each of the %d pipes its "
                "links list, %d s after the traffic stopped",
                end_fd, base_fd, pipes, cfg.timeout_s);
        if (epx_fixture_control(cl, "LINKS", reply, sizeof reply) == 0)
            say("LINKS: %.4000s", reply);
    }
    if (end_rss < 0 || end_rss > base_rss + cfg.rss_slack_kib)
        failure("the daemon's RSS is %ld KiB, more than its baseline %ld KiB + %d KiB", end_rss,
                base_rss, cfg.rss_slack_kib);
    if (kill(dpid, 0) < 0 || epx_fixture_control(cl, "PING", out, sizeof out) < 0)
        failure("the daemon is not answering at the end: %s", epx_fixture_last_error());
    if (rules_mismatches)
        failure("the daemon's RULES disagreed with the commands %d times", rules_mismatches);
    if (links_mismatches)
        failure("the daemon's links were held against the rules %d times", links_mismatches);

    journal_events();
    epx_fixture_stop_cluster(cl);
    cl = NULL;
    pid_t kids[256];
    int nk = bu_children(kids, 256);
    if (nk != 0) {
        failure("%d processes this run started are still there after stop_cluster", nk);
        for (int i = 0; i < nk; i++)
            kill(kids[i], SIGKILL);
        for (int i = 0; i < nk; i++)
            waitpid(kids[i], NULL, 0);
    }

    say("checks: md5, order, duplicates, no loss in the freeze phases, traffic resumes, "
        "RULES and held links, fds, RSS, daemon alive, nothing left running");
    if (journal) {
        fclose(journal);
        journal = NULL;
        if (!nfails)
            unlink(journal_path);
    }
    if (nfails) {
        say("soak FAILED: %d problem%s:", nfails, nfails == 1 ? "" : "s");
        if (journal_path[0])
            printf("  (what was done and what the daemon reported, in time: %s)\n", journal_path);
        for (int i = 0; i < nfails && i < MAX_FAILS; i++)
            printf("  - %s\n", fails[i]);
        printf("reproduce with: SOAK_SEED=%llu SOAK_SECONDS=%d make soak\n", cfg.seed,
               cfg.seconds);
        return 1;
    }
    say("soak passed (SOAK_SEED=%llu)", cfg.seed);
    return 0;
}
