/* cli: epmdpxy's command line, and the pure parts of epx-cluster's (what
 * the live view and status print, from a snap made up here).
 *
 * --help / --version / unknown options; epmd's client modes (-names, -dump,
 * -kill, -stop NAME, with -port P and with ERL_EPMD_PORT=P) compared with
 * OTP's own `epmd` client against OTP's own server holding the same names;
 * where the EPMD and control ports come from; -daemon.
 *
 * OTP's epmd takes a client mode only as its last argument(s): `epmd -names
 * -port P` prints its usage and exits 1, so both programs are run as
 * `<prog> -port P <mode>`. */
#include <check.h>
#include <errno.h>
#include <libgen.h>
#include <limits.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli/self.h"
#include "cli/snap.h"
#include "cli/view.h"
#include "epmd_script.h"
#include "testutil.h"

#define NSTEPS(a) (sizeof(a) / sizeof((a)[0]))

/* ---- fixtures ------------------------------------------------------------- */

static es_server otp, ours;
static es_play otp_regs, ours_regs;
static int have_otp_regs, have_ours_regs;
static char *saved_relaxed;

static void setup(void)
{
    memset(&otp, 0, sizeof otp);
    memset(&ours, 0, sizeof ours);
    otp.pid = ours.pid = -1;
    have_otp_regs = have_ours_regs = 0;
    const char *r = getenv("ERL_EPMD_RELAXED_COMMAND_CHECK");
    saved_relaxed = r ? strdup(r) : NULL;
    unsetenv("ERL_EPMD_RELAXED_COMMAND_CHECK");
}

static void teardown(void)
{
    if (have_otp_regs)
        es_play_free(&otp_regs);
    if (have_ours_regs)
        es_play_free(&ours_regs);
    have_otp_regs = have_ours_regs = 0;
    es_server_stop(&otp);
    es_server_stop(&ours);
    es_reap_all();
    if (saved_relaxed) {
        setenv("ERL_EPMD_RELAXED_COMMAND_CHECK", saved_relaxed, 1);
        free(saved_relaxed);
        saved_relaxed = NULL;
    }
}

static int run_prog(const char *const *argv, const char *const *env, int timeout_ms,
                    es_run_result *r)
{
    return es_run(argv, env, timeout_ms, r);
}

/* Printable rendering of program output for messages. */
static char *show(const char *s, size_t n, char *out, size_t len)
{
    size_t o = 0;
    for (size_t i = 0; i < n && o + 6 < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '\n') { out[o++] = '\\'; out[o++] = 'n'; }
        else if (c == 0) { out[o++] = '\\'; out[o++] = '0'; }
        else if (c >= 32 && c < 127) out[o++] = (char)c;
        else o += (size_t)snprintf(out + o, len - o, "\\x%02x", c);
    }
    out[o] = 0;
    return out;
}

static int exit_code(int status)
{
    if (status == -1)
        return -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

/* ---- --help, --version, unknown options --------------------------------- */

/* Options listed in README.md's option table: every backticked word that
 * starts with '-' on the table's rows.  NULL-terminated, malloc'ed. */
static char **readme_options(char *where, size_t wlen)
{
    char path[PATH_MAX];
    const char *env = getenv("EPX_README");
    FILE *f = NULL;
    if (env && *env) {
        snprintf(path, sizeof path, "%s", env);
        f = fopen(path, "r");
    }
    if (!f) {
        char bin[PATH_MAX];
        snprintf(bin, sizeof bin, "%s", tu_epmdpxy_path());
        snprintf(path, sizeof path, "%s/../README.md", dirname(bin));
        f = fopen(path, "r");
    }
    if (!f) {
        snprintf(path, sizeof path, "README.md");
        f = fopen(path, "r");
    }
    snprintf(where, wlen, "%s", path);
    if (!f)
        return NULL;
    char **opts = calloc(128, sizeof *opts);
    int n = 0, in_table = 0;
    char line[2048];
    while (fgets(line, sizeof line, f)) {
        if (!in_table) {
            if (strncmp(line, "| option |", 10) == 0)
                in_table = 1;
            continue;
        }
        if (line[0] != '|')
            break;
        for (char *p = strchr(line, '`'); p; ) {
            char *q = strchr(p + 1, '`');
            if (!q)
                break;
            if (p[1] == '-') {
                size_t l = strcspn(p + 1, " ,=`");
                char *o = strndup(p + 1, l);
                int dup = 0;
                for (int i = 0; i < n; i++)
                    dup |= strcmp(opts[i], o) == 0;
                if (!dup && n < 127)
                    opts[n++] = o;
                else
                    free(o);
            }
            p = strchr(q + 1, '`');
        }
    }
    fclose(f);
    return opts;
}

/* 1 if text mentions opt as a word of its own ("-port" is not found in
 * "--port" or "-portly"). */
static int mentions(const char *text, const char *opt)
{
    size_t l = strlen(opt);
    for (const char *p = strstr(text, opt); p; p = strstr(p + 1, opt)) {
        char before = p == text ? ' ' : p[-1];
        char after = p[l];
        int word = (before == ' ' || before == '\n' || before == ',' || before == '(' ||
                    before == '[' || before == '\t' || before == '|') &&
                   !(after == '-' || after == '_' || (after >= 'a' && after <= 'z') ||
                     (after >= 'A' && after <= 'Z') || (after >= '0' && after <= '9'));
        if (word)
            return 1;
    }
    return 0;
}

START_TEST(test_help)
{
    char where[PATH_MAX];
    char **opts = readme_options(where, sizeof where);
    ck_assert_msg(opts != NULL, "cannot read %s (set EPX_README)", where);
    int nopt = 0;
    while (opts[nopt])
        nopt++;
    ck_assert_msg(nopt >= 10, "only %d options found in %s's table", nopt, where);

    const char *argv[] = { tu_epmdpxy_path(), "--help", NULL };
    es_run_result r;
    ck_assert_int_eq(run_prog(argv, NULL, 10000, &r), 0);
    ck_assert_msg(exit_code(r.status) == 0, "--help exited %d", exit_code(r.status));
    char *missing = NULL;
    for (int i = 0; i < nopt; i++)
        if (!mentions(r.out, opts[i]))
            es_appendf(&missing, " %s", opts[i]);
    char msg[2048];
    snprintf(msg, sizeof msg, "%s", missing ? missing : "");
    free(missing);
    for (int i = 0; i < nopt; i++)
        free(opts[i]);
    free(opts);
    ck_assert_msg(msg[0] == 0, "--help (stdout) does not mention:%s", msg);
    es_run_free(&r);
}
END_TEST

START_TEST(test_version)
{
    const char *argv[] = { tu_epmdpxy_path(), "--version", NULL };
    es_run_result r;
    ck_assert_int_eq(run_prog(argv, NULL, 10000, &r), 0);
    ck_assert_msg(exit_code(r.status) == 0, "--version exited %d", exit_code(r.status));
    ck_assert_msg(strstr(r.out, EPX_VERSION) != NULL,
                  "--version printed \"%s\", not the version %s", r.out, EPX_VERSION);
    es_run_free(&r);
}
END_TEST

START_TEST(test_unknown_option)
{
    /* --port 0 --control 0 so that a daemon that ignores the option binds
     * nothing that matters; it is killed at the deadline. */
    const char *argv[] = { tu_epmdpxy_path(), "--port", "0", "--control", "0",
                           "--no-such-option", NULL };
    es_run_result r;
    int rc = run_prog(argv, NULL, 5000, &r);
    ck_assert_msg(rc == 0, "epmdpxy --no-such-option still running after 5 s");
    int code = exit_code(r.status);
    ck_assert_msg(code != 0, "epmdpxy --no-such-option exited 0");
    ck_assert_msg(r.err_n > 0, "epmdpxy --no-such-option: nothing on stderr");
    if (code != 2)
        fprintf(stderr, "cli: note: unknown option exits %d, not 2\n", code);
    es_run_free(&r);

    /* an option without its argument */
    const char *argv2[] = { tu_epmdpxy_path(), "--control", "0", "-port", NULL };
    rc = run_prog(argv2, NULL, 5000, &r);
    ck_assert_msg(rc == 0, "epmdpxy -port (no number) still running after 5 s");
    ck_assert_msg(exit_code(r.status) != 0, "epmdpxy -port (no number) exited 0");
    ck_assert_msg(r.err_n > 0, "epmdpxy -port (no number): nothing on stderr");
    es_run_free(&r);
}
END_TEST

/* ---- client modes against OTP ---------------------------------------------- */

/* Two names, held open for the whole test. */
static const es_step register_two[] = {
    { "register alpha (v6, port 1111)", "L 78 0457 4d 00 0006 0005 @'alpha' @''",
      .slot = 1, .expect = "76 00 ????????", .end = ES_X_OPEN },
    { "register beta (v5, port 2222)", "L 78 08ae 4d 00 0005 0005 @'beta' @''",
      .slot = 2, .expect = "79 00 ????", .end = ES_X_OPEN },
};

static void start_with_names(const char *const *opts)
{
    ck_assert_msg(es_otp_start(&otp, opts) == 0, "OTP's epmd did not start");
    ck_assert_msg(es_ours_start(&ours, opts) == 0, "epmdpxy did not start");
    char err[256], *rep = NULL;
    ck_assert_int_eq(es_play_run(&otp_regs, &otp, register_two, 2, err, sizeof err), 0);
    have_otp_regs = 1;
    ck_assert_int_eq(es_play_run(&ours_regs, &ours, register_two, 2, err, sizeof err), 0);
    have_ours_regs = 1;
    int d = es_check(register_two, 2, &otp_regs, NULL, &rep) +
            es_check(register_two, 2, &ours_regs, NULL, &rep);
    if (d) {
        char msg[2048];
        snprintf(msg, sizeof msg, "%s", rep);
        free(rep);
        ck_abort_msg("registering two names failed:\n%s", msg);
    }
}

typedef struct cli_case {
    const char *desc;
    const char *mode[3];    /* the client-mode arguments */
    int via_env;            /* ERL_EPMD_PORT=P instead of -port P */
    int otp_exit;           /* OTP's exit code (measured) */
    const char *otp_has;    /* OTP's stdout contains this (measured) */
} cli_case;

/* Run one case with OTP's epmd against port po and with epmdpxy against pu;
 * compare exit codes and stdout with ports and fds masked.  Differences go
 * to *rep; returns their number. */
static int cli_compare(const cli_case *c, int po, int pu, char **rep)
{
    const char *progs[2] = { es_otp_epmd_path(), tu_epmdpxy_path() };
    int ports[2] = { po, pu };
    es_run_result r[2];
    char envs[2][40];
    for (int k = 0; k < 2; k++) {
        char ps[16];
        snprintf(ps, sizeof ps, "%d", ports[k]);
        snprintf(envs[k], sizeof envs[k], "ERL_EPMD_PORT=%d", ports[k]);
        const char *argv[8];
        int n = 0;
        argv[n++] = progs[k];
        if (!c->via_env) {
            argv[n++] = "-port";
            argv[n++] = ps;
        }
        for (int i = 0; i < 3 && c->mode[i]; i++)
            argv[n++] = c->mode[i];
        argv[n] = NULL;
        const char *env_flag[] = { "ERL_EPMD_PORT", NULL };
        const char *env_var[] = { envs[k], NULL };
        run_prog(argv, c->via_env ? env_var : env_flag, 10000, &r[k]);
        r[k].out_n = es_mask_text(r[k].out, r[k].out_n);
    }
    int bad = 0;
    char s1[2048], s2[2048];
    int e0 = exit_code(r[0].status), e1 = exit_code(r[1].status);
    const char *how = c->via_env ? "ERL_EPMD_PORT=P" : "-port P";
    if (e0 != c->otp_exit || (c->otp_has && !memmem(r[0].out, r[0].out_n, c->otp_has,
                                                    strlen(c->otp_has)))) {
        es_appendf(rep, "%s (%s): OTP's epmd is not as the test expects (test bug?): "
                   "exit %d (expected %d), stdout \"%s\", stderr \"%s\"\n", c->desc, how,
                   e0, c->otp_exit, show(r[0].out, r[0].out_n, s1, sizeof s1),
                   show(r[0].err, r[0].err_n, s2, sizeof s2));
        bad++;
    }
    if (e0 != e1 || r[0].out_n != r[1].out_n || memcmp(r[0].out, r[1].out, r[0].out_n)) {
        es_appendf(rep, "%s (%s) differs:\n    epmd    %s: exit %d, stdout \"%s\"\n",
                   c->desc, how, c->mode[0], e0, show(r[0].out, r[0].out_n, s1, sizeof s1));
        es_appendf(rep, "    epmdpxy %s: exit %d, stdout \"%s\", stderr \"%s\"\n",
                   c->mode[0], e1, show(r[1].out, r[1].out_n, s1, sizeof s1),
                   show(r[1].err, r[1].err_n, s2, sizeof s2));
        bad++;
    }
    es_run_free(&r[0]);
    es_run_free(&r[1]);
    return bad;
}

static void cli_cases(const cli_case *cases, size_t n, int po, int pu)
{
    char *rep = NULL;
    int bad = 0;
    for (size_t i = 0; i < n; i++)
        bad += cli_compare(&cases[i], po, pu, &rep);
    if (bad) {
        fprintf(stderr, "\n==== cli: %d difference(s) ====\n%s\n", bad, rep);
        char msg[3500];
        snprintf(msg, sizeof msg, "%s", rep);
        free(rep);
        ck_abort_msg("%d difference(s):\n%s", bad, msg);
    }
    free(rep);
}

#define UP "epmd: up and running on port # with data:\n"

static const cli_case strict_cases[] = {
    { "-names", { "-names" }, 0, 0, UP "name beta at port #\nname alpha at port #\n" },
    { "-names", { "-names" }, 1, 0, UP "name beta at port #\nname alpha at port #\n" },
    { "-dump", { "-dump" }, 0, 0, UP "active name     <beta> at port #, fd = #\n" },
    { "-dump", { "-dump" }, 1, 0, UP "active name     <beta> at port #, fd = #\n" },
    { "-stop alpha, strict server", { "-stop", "alpha" }, 0, 1,
      "epmd: local epmd responded with <>\n" },
    { "-stop alpha, strict server", { "-stop", "alpha" }, 1, 1,
      "epmd: local epmd responded with <>\n" },
    { "-kill, strict server, live nodes", { "-kill" }, 0, 1,
      "Killing not allowed - living nodes in database.\n" },
    { "-kill, strict server, live nodes", { "-kill" }, 1, 1,
      "Killing not allowed - living nodes in database.\n" },
    { "-names after the refusals", { "-names" }, 0, 0, "name alpha at port #\n" },
};

START_TEST(test_client_strict)
{
    start_with_names((const char *const[]){ NULL });
    cli_cases(strict_cases, NSTEPS(strict_cases), otp.port, ours.port);
}
END_TEST

static const cli_case relaxed_cases[] = {
    { "-names", { "-names" }, 0, 0, UP "name beta at port #\nname alpha at port #\n" },
    { "-names", { "-names" }, 1, 0, UP "name beta at port #\nname alpha at port #\n" },
    { "-dump", { "-dump" }, 0, 0, "active name     <alpha> at port #, fd = #\n" },
    { "-dump", { "-dump" }, 1, 0, "active name     <alpha> at port #, fd = #\n" },
    { "-stop an unknown name", { "-stop", "nosuch" }, 0, 0, "NOEXIST\n" },
    { "-stop alpha", { "-stop", "alpha" }, 1, 0, "STOPPED\n" },
    { "-stop alpha again", { "-stop", "alpha" }, 0, 0, "NOEXIST\n" },
    { "-names after the stop", { "-names" }, 0, 0, UP "name beta at port #\n" },
    { "-dump after the stop", { "-dump" }, 1, 0, "old/unused name <alpha>, port = #, fd = # \n" },
    { "-kill, relaxed server, live node", { "-kill" }, 1, 0, "Killed\n" },
};

START_TEST(test_client_relaxed)
{
    start_with_names((const char *const[]){ "-relaxed_command_check", NULL });
    cli_cases(relaxed_cases, NSTEPS(relaxed_cases), otp.port, ours.port);
    /* -kill made both servers exit 0 */
    ck_assert_msg(es_server_wait_exit(&otp, 5000), "OTP's epmd still runs after -kill");
    ck_assert_msg(es_server_wait_exit(&ours, 5000), "epmdpxy still runs after -kill");
    ck_assert_msg(WIFEXITED(otp.status) && WEXITSTATUS(otp.status) == 0,
                  "OTP's epmd: status %d after -kill", otp.status);
    ck_assert_msg(WIFEXITED(ours.status) && WEXITSTATUS(ours.status) == 0,
                  "epmdpxy: exit status %d after -kill (expected exit 0)", ours.status);
}
END_TEST

static const cli_case noserver_cases[] = {
    { "-names, nothing listening", { "-names" }, 0, 1, NULL },
    { "-names, nothing listening", { "-names" }, 1, 1, NULL },
    { "-dump, nothing listening", { "-dump" }, 0, 1, NULL },
    { "-dump, nothing listening", { "-dump" }, 1, 1, NULL },
    { "-kill, nothing listening", { "-kill" }, 0, 1, NULL },
    { "-kill, nothing listening", { "-kill" }, 1, 1, NULL },
    { "-stop, nothing listening", { "-stop", "x" }, 0, 1, NULL },
    { "-stop, nothing listening", { "-stop", "x" }, 1, 1, NULL },
};

START_TEST(test_client_no_server)
{
    int p = tu_free_port();
    ck_assert_int_gt(p, 0);
    cli_cases(noserver_cases, NSTEPS(noserver_cases), p, p);
    /* and both say so on stderr */
    const char *argv[] = { tu_epmdpxy_path(), "-port", NULL, "-names", NULL };
    char ps[16];
    snprintf(ps, sizeof ps, "%d", p);
    argv[2] = ps;
    es_run_result r;
    run_prog(argv, (const char *const[]){ "ERL_EPMD_PORT", NULL }, 10000, &r);
    ck_assert_msg(r.err_n > 0, "epmdpxy -names with nothing listening: nothing on stderr");
    if (strcmp(r.err, "epmd: Cannot connect to local epmd\n") != 0)
        fprintf(stderr, "cli: note: epmdpxy -names with no server says \"%s\" on stderr; "
                "epmd says \"epmd: Cannot connect to local epmd\\n\"\n", r.err);
    es_run_free(&r);
}
END_TEST

/* ---- where the ports come from ------------------------------------------------ */

START_TEST(test_env_port)
{
    int p = tu_free_port();
    ck_assert_int_gt(p, 0);
    char env[40];
    snprintf(env, sizeof env, "ERL_EPMD_PORT=%d", p);
    const char *argv[] = { tu_epmdpxy_path(), "--control", "0", NULL };
    int out = -1;
    char log[128];
    snprintf(log, sizeof log, "/tmp/epx-cli-env.%d.log", (int)getpid());
    pid_t pid = es_spawn(argv, (const char *const[]){ env, NULL }, &out, log);
    ck_assert_int_gt(pid, 0);
    char line[256];
    int rc = es_read_line(out, line, sizeof line, 10000);
    ck_assert_msg(rc == 0, "ERL_EPMD_PORT=%d epmdpxy --control 0: no READY line (log %s)",
                  p, log);
    int ep = -1, cp = -1;
    ck_assert_msg(sscanf(line, "READY epmd=%d control=%d", &ep, &cp) == 2,
                  "not a READY line: \"%s\"", line);
    ck_assert_msg(ep == p, "ERL_EPMD_PORT=%d but READY says epmd=%d", p, ep);
    ck_assert_msg(es_names_probe(p), "no EPMD answer on port %d", p);
    char reply[256];
    ck_assert_msg(tu_ctl(cp, "PING", reply, sizeof reply) == 0 &&
                  strcmp(reply, "OK PONG") == 0, "PING on control port %d", cp);
    kill(pid, SIGTERM);
    int st;
    ck_assert_msg(es_wait_pid(pid, 5000, &st), "epmdpxy ignores SIGTERM");
    close(out);
    unlink(log);
}
END_TEST

/* `--port P` (or epmd's `-port P`) without --control: control on P+1. */
static void control_on_next_port(const char *portopt)
{
    int p = es_free_port_pair();
    ck_assert_int_gt(p, 0);
    char ps[16];
    snprintf(ps, sizeof ps, "%d", p);
    const char *argv[] = { tu_epmdpxy_path(), portopt, ps, NULL };
    char log[128];
    snprintf(log, sizeof log, "/tmp/epx-cli-ctl.%d.log", (int)getpid());
    pid_t pid = es_spawn(argv, (const char *const[]){ "ERL_EPMD_PORT", NULL }, NULL, log);
    ck_assert_int_gt(pid, 0);
    char reply[256] = "";
    int ok = TU_WAIT_UNTIL(tu_ctl(p + 1, "PING", reply, sizeof reply) == 0, 10000);
    ck_assert_msg(ok, "epmdpxy %s %d: nothing answers PING on %d (log %s)", portopt, p,
                  p + 1, log);
    ck_assert_str_eq(reply, "OK PONG");
    ck_assert_msg(es_names_probe(p), "epmdpxy %s %d: no EPMD answer on %d", portopt, p, p);
    kill(pid, SIGTERM);
    int st;
    ck_assert_msg(es_wait_pid(pid, 5000, &st), "epmdpxy ignores SIGTERM");
    unlink(log);
}

START_TEST(test_control_default_port)
{
    control_on_next_port("--port");
    control_on_next_port("-port");
}
END_TEST

/* ---- -daemon -------------------------------------------------------------------
 * A detached daemon is not our child: nothing reaps it or kills it when the
 * test dies.  Its port is chosen in the unchecked fixture (in the runner
 * process, so the value survives a failed forked test), and the unchecked
 * teardown always stops whatever listens there: SHUTDOWN on P+1, then, if
 * it is still there, SIGKILL to the epmdpxy process that owns the socket. */

static int dport_free = -1, dport_taken = -1;

static void stop_daemon_on(int p)
{
    if (p <= 0)
        return;
    if (es_port_open(p + 1)) {
        char reply[64];
        tu_ctl(p + 1, "SHUTDOWN", reply, sizeof reply);
    }
    if (TU_WAIT_UNTIL(!es_port_open(p) && !es_port_open(p + 1), 5000))
        return;
    for (int k = 0; k < 2; k++) {
        pid_t pid = es_pid_listening_on(p + k);
        if (pid > 0 && pid != getpid() && tu_is_daemon_process(pid)) {
            fprintf(stderr, "cli: killing leftover epmdpxy daemon %d on port %d\n",
                    (int)pid, p + k);
            kill(pid, SIGKILL);
        }
    }
}

static void daemon_setup(void)
{
    dport_free = es_free_port_pair();
    dport_taken = es_free_port_pair();
    if (dport_taken == dport_free || dport_taken == dport_free + 1 ||
        dport_taken + 1 == dport_free)
        dport_taken = es_free_port_pair();
}

static void daemon_teardown(void)
{
    stop_daemon_on(dport_free);
    stop_daemon_on(dport_taken);
}

/* ppid and session of pid from /proc/pid/stat; 0 or -1. */
static int proc_ids(pid_t pid, int *ppid, int *sid)
{
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    char *p = strrchr(buf, ')');
    char state;
    int pgrp;
    if (!p || sscanf(p + 2, "%c %d %d %d", &state, ppid, &pgrp, sid) != 4)
        return -1;
    return 0;
}

static int proc_gone(pid_t pid)
{
    char path[64], buf[512];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return 1;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    char *p = strrchr(buf, ')');
    return p && p[1] == ' ' && p[2] == 'Z';    /* a zombie is gone too */
}

START_TEST(test_daemon_detaches)
{
    int p = dport_free;
    ck_assert_msg(p > 0 && !es_port_open(p) && !es_port_open(p + 1),
                  "ports %d/%d not free", p, p + 1);
    char ps[16];
    snprintf(ps, sizeof ps, "%d", p);
    const char *argv[] = { tu_epmdpxy_path(), "-daemon", "-port", ps, NULL };
    es_run_result r;
    int rc = run_prog(argv, (const char *const[]){ "ERL_EPMD_PORT", NULL }, 10000, &r);
    ck_assert_msg(rc == 0, "epmdpxy -daemon -port %d: the parent did not return in 10 s", p);
    ck_assert_msg(exit_code(r.status) == 0, "epmdpxy -daemon: the parent exited %d",
                  exit_code(r.status));
    int up = TU_WAIT_UNTIL(es_names_probe(p), 10000);
    ck_assert_msg(up, "epmdpxy -daemon -port %d: no EPMD answer on %d", p, p);
    if (r.out_n || r.err_n)
        fprintf(stderr, "cli: note: epmdpxy -daemon printed stdout \"%s\" stderr \"%s\" "
                "(epmd -daemon prints nothing)\n", r.out, r.err);
    es_run_free(&r);

    pid_t dpid = es_pid_listening_on(p);
    ck_assert_msg(dpid > 0, "no process found listening on %d", p);
    ck_assert_msg(tu_is_daemon_process(dpid), "pid %d on port %d is not epmdpxy", (int)dpid, p);
    int ppid = 0, sid = 0;
    ck_assert_int_eq(proc_ids(dpid, &ppid, &sid), 0);
    ck_assert_msg(ppid != getpid(), "the daemon is still our child");
    ck_assert_msg(sid != getsid(0), "the daemon is still in our session (sid %d)", sid);

    char reply[256];
    ck_assert_msg(tu_ctl(p + 1, "PING", reply, sizeof reply) == 0 &&
                  strcmp(reply, "OK PONG") == 0, "PING on %d", p + 1);
    ck_assert_msg(tu_ctl(p + 1, "SHUTDOWN", reply, sizeof reply) == 0 &&
                  strcmp(reply, "OK") == 0, "SHUTDOWN on %d", p + 1);
    int gone = TU_WAIT_UNTIL(!es_port_open(p) && !es_port_open(p + 1), 5000);
    ck_assert_msg(gone, "ports %d/%d still accept 5 s after SHUTDOWN", p, p + 1);
    ck_assert_msg(TU_WAIT_UNTIL(proc_gone(dpid), 5000),
                  "daemon %d still running after SHUTDOWN", (int)dpid);

    /* the way erlexec starts it: `-daemon` alone, the port from the
     * inherited ERL_EPMD_PORT */
    char env[40];
    snprintf(env, sizeof env, "ERL_EPMD_PORT=%d", p);
    const char *argv2[] = { tu_epmdpxy_path(), "-daemon", NULL };
    rc = run_prog(argv2, (const char *const[]){ env, NULL }, 10000, &r);
    ck_assert_msg(rc == 0 && exit_code(r.status) == 0,
                  "ERL_EPMD_PORT=%d epmdpxy -daemon: parent rc %d status %d", p, rc,
                  r.status);
    es_run_free(&r);
    up = TU_WAIT_UNTIL(es_names_probe(p), 10000);
    ck_assert_msg(up, "ERL_EPMD_PORT=%d epmdpxy -daemon: no EPMD answer on %d", p, p);
    ck_assert_msg(tu_ctl(p + 1, "SHUTDOWN", reply, sizeof reply) == 0 &&
                  strcmp(reply, "OK") == 0, "SHUTDOWN on %d", p + 1);
    gone = TU_WAIT_UNTIL(!es_port_open(p) && !es_port_open(p + 1), 5000);
    ck_assert_msg(gone, "ports %d/%d still accept 5 s after SHUTDOWN", p, p + 1);
}
END_TEST

/* `-daemon` on a port someone else holds: exit 0, quietly, quickly. */
static void daemon_on_taken(int p, const char *holder)
{
    int next_was_free = !es_port_open(p + 1);
    char ps[16];
    snprintf(ps, sizeof ps, "%d", p);
    const char *argv[] = { tu_epmdpxy_path(), "-daemon", "-port", ps, NULL };
    es_run_result r;
    int rc = run_prog(argv, (const char *const[]){ "ERL_EPMD_PORT", NULL }, 10000, &r);
    ck_assert_msg(rc == 0, "epmdpxy -daemon on a port held by %s: still running", holder);
    int code = exit_code(r.status);
    long ms = r.ms;
    char o[512], e[512];
    show(r.out, r.out_n, o, sizeof o);
    show(r.err, r.err_n, e, sizeof e);
    int quiet = r.out_n == 0 && r.err_n == 0;
    es_run_free(&r);
    /* a daemon must not have been left behind on P+1: an epmdpxy listening
     * there (an open port alone could be anyone's, P+1 is an ephemeral one) */
    pid_t lpid = 0;
    int leftover = next_was_free &&
                   TU_WAIT_UNTIL((lpid = es_pid_listening_on(p + 1)) > 0 && tu_is_daemon_process(lpid),
                                 300);
    if (leftover) {
        char reply[64];
        tu_ctl(p + 1, "SHUTDOWN", reply, sizeof reply);
    }
    ck_assert_msg(code == 0, "epmdpxy -daemon, port held by %s: exit %d (epmd: 0)", holder,
                  code);
    ck_assert_msg(quiet, "epmdpxy -daemon, port held by %s: printed stdout \"%s\" "
                  "stderr \"%s\" (epmd: nothing)", holder, o, e);
    ck_assert_msg(ms < 3000, "epmdpxy -daemon, port held by %s: took %ld ms", holder, ms);
    ck_assert_msg(!leftover, "epmdpxy -daemon, port held by %s: daemon %d listens on %d",
                  holder, (int)lpid, p + 1);
}

START_TEST(test_daemon_port_taken)
{
    int p = dport_taken;
    ck_assert_int_gt(p, 0);
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    ck_assert_int_ge(fd, 0);
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in sa = { 0 };
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)p);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ck_assert_msg(bind(fd, (struct sockaddr *)&sa, sizeof sa) == 0 && listen(fd, 4) == 0,
                  "cannot hold port %d: %s", p, strerror(errno));
    daemon_on_taken(p, "a plain listening socket");
    close(fd);

    ck_assert_msg(es_otp_start(&otp, NULL) == 0, "OTP's epmd did not start");
    daemon_on_taken(otp.port, "OTP's epmd");
    ck_assert_msg(es_names_probe(otp.port), "OTP's epmd no longer answers");
}
END_TEST


/* ---- epx-cluster: the view, from a made-up snap ------------------------------ */

static snap vs;

/* n meshed nodes n1@localhost.., no rules, no links, no events. */
static void view_snap(int n)
{
    memset(&vs, 0, sizeof vs);
    snprintf(vs.name, sizeof vs.name, "default");
    vs.pid = 100;
    vs.daemon_pid = 101;
    vs.epmd_port = 40123;
    vs.control_port = 40124;
    vs.ticktime = 2;
    snprintf(vs.cookie, sizeof vs.cookie, "epx0123456789abcdef0123456789");
    snprintf(vs.host, sizeof vs.host, "localhost");
    snprintf(vs.mode, sizeof vs.mode, "hold");
    snprintf(vs.self, sizeof vs.self, "/home/someone/src/epmdpxy/build/epx-cluster");
    vs.n = n;
    for (int i = 0; i < n; i++) {
        snprintf(vs.node[i], sizeof vs.node[i], "n%d@localhost", i + 1);
        snprintf(vs.shortname[i], sizeof vs.shortname[i], "n%d", i + 1);
        vs.node_pid[i] = 200 + i;
        for (int j = 0; j < n; j++)
            vs.seen[i * n + j] = i != j;
    }
    vs.have_matrix = 1;
    sbuf_addstr(&vs.rules, "[]");
    sbuf_addstr(&vs.links, "[]");
}

static void view_snap_free(void)
{
    snap_free(&vs);
}

/* Every line of text fits in cols columns. */
static void assert_fits(const char *text, int cols)
{
    for (const char *p = text; *p;) {
        size_t n = strcspn(p, "\n");
        ck_assert_msg(n <= (size_t)cols, "a line of %zu columns at width %d: '%.*s'\nin:\n%s", n,
                      cols, (int)n, p, text);
        p += n + (p[n] == '\n');
    }
}

/* The words of text, in order, whatever the line breaks: broken lines
 * joined again give back the same words (no word was cut in two). */
static void words_of(const char *text, const char *drop, char *out, size_t len)
{
    size_t o = 0;
    for (const char *p = text; *p && o + 1 < len;) {
        p += strspn(p, " \n");
        size_t n = strcspn(p, " \n");
        if (!n)
            break;
        if (!(drop && n == strlen(drop) && !strncmp(p, drop, n))) {
            int k = snprintf(out + o, len - o, "%s%.*s", o ? " " : "", (int)n, p);
            o += k > 0 ? (size_t)k : 0;
        }
        p += n;
    }
    out[o < len ? o : len - 1] = 0;
}

START_TEST(test_view_wrap)
{
    const char *text = "ready: cluster default, nodes n1@localhost n2@localhost n3@localhost "
                       "n4@localhost n5@localhost, epmd port 40123, control port 40124";
    static const int widths[] = { 20, 40, 80, 160 };
    for (size_t w = 0; w < sizeof widths / sizeof widths[0]; w++) {
        sbuf b = { 0 };
        view_wrap(&b, text, widths[w], "  ", "");
        assert_fits(sbuf_str(&b), widths[w]);
        char got[1024], want[1024];
        words_of(sbuf_str(&b), NULL, got, sizeof got);
        words_of(text, NULL, want, sizeof want);
        ck_assert_str_eq(got, want);
        sbuf_free(&b);
    }
    /* a shell command: every broken line ends in " \", so that it still
     * is one command when pasted */
    sbuf b = { 0 };
    const char *cmd = "ERL_EPMD_PORT=40123 erl -sname me@localhost -hidden -kernel net_ticktime 2 "
                      "-remsh n1@localhost -setcookie epx0123456789abcdef0123456789";
    view_wrap(&b, cmd, 40, "  ", " \\");
    assert_fits(sbuf_str(&b), 40);
    const char *t = sbuf_str(&b);
    int lines = 0;
    for (const char *p = t; *p; p = strchr(p, '\n') + 1) {
        const char *nl = strchr(p, '\n');
        ck_assert_ptr_nonnull(nl);
        if (nl[1])
            ck_assert_msg(nl - p >= 2 && !strncmp(nl - 2, " \\", 2), "no continuation: %s", t);
        lines++;
    }
    ck_assert_int_gt(lines, 1);
    char got[1024], want[1024];
    words_of(t, "\\", got, sizeof got);
    words_of(cmd, NULL, want, sizeof want);
    ck_assert_str_eq(got, want);
    /* a word longer than the line is not cut */
    sbuf_reset(&b);
    view_wrap(&b, "a 0123456789012345678901234567890123456789 b", 10, "", "");
    ck_assert_str_eq(sbuf_str(&b), "a\n0123456789012345678901234567890123456789\nb\n");
    /* 0 columns: never broken */
    sbuf_reset(&b);
    view_wrap(&b, cmd, 0, "  ", " \\");
    size_t cl = strlen(cmd);
    ck_assert_msg(!strncmp(sbuf_str(&b), cmd, cl) && !strcmp(sbuf_str(&b) + cl, "\n"),
                  "broken at 0 columns: %s", sbuf_str(&b));
    sbuf_free(&b);
}
END_TEST

/* The live view at 80 and 160 columns: no line wider than the terminal,
 * so the terminal never breaks a name or the attach command. */
START_TEST(test_view_frame_width)
{
    view_snap(5);
    static const int widths[] = { 80, 160 };
    for (size_t w = 0; w < sizeof widths / sizeof widths[0]; w++) {
        sbuf b = { 0 };
        view_frame(&b, &vs, widths[w]);
        assert_fits(sbuf_str(&b), widths[w]);
        ck_assert_msg(strstr(sbuf_str(&b), "-setcookie epx0123456789abcdef0123456789"), "%s",
                      sbuf_str(&b));
        ck_assert_msg(strstr(sbuf_str(&b), "/home/someone/src/epmdpxy/build/epx-cluster split n1 n2"),
                      "the footer names the program by a path that works: %s", sbuf_str(&b));
        sbuf_free(&b);
    }
    view_snap_free();
}
END_TEST

START_TEST(test_view_faults)
{
    /* the live view's line for slow links, flaps and the schedule */
    sbuf b = { 0 };
    view_faults_text(&b, "{\"links\":[],\"timed\":[],\"flaps\":[],\"nemesis\":null}");
    ck_assert_str_eq(sbuf_str(&b), "none");
    sbuf_reset(&b);
    view_faults_text(&b,
        "{\"links\":[{\"from\":\"n1\",\"to\":\"n2\",\"delay_ms\":50,\"jitter_ms\":10,"
        "\"rate\":1000000},{\"from\":\"n2\",\"to\":\"n1\",\"delay_ms\":50,\"jitter_ms\":0,"
        "\"timed\":true}],\"timed\":[{\"command\":\"DELAY n1 n2 50ms FOR 1m\",\"left_ms\":5}],"
        "\"flaps\":[{\"id\":1,\"spec\":\"n3 n4\",\"up_ms\":1000,\"down_ms\":500,"
        "\"state\":\"down\",\"cycles\":3}],\"nemesis\":{\"shape\":\"random-halves\","
        "\"seed\":9,\"every_ms\":2000,\"heal_ms\":1000,\"step\":2,\"state\":\"partitioned\"}}");
    ck_assert_str_eq(sbuf_str(&b),
                     "n1 -> n2 delay 50ms+10ms, rate 1000000 B/s; n2 -> n1 delay 50ms (timed); "
                     "flap n3 n4 (down, cycle 3); nemesis random-halves seed 9 step 2 "
                     "(partitioned); 1 timed command pending");
    sbuf_reset(&b);
    view_faults_text(&b, "not json");
    ck_assert_str_eq(sbuf_str(&b), "?");
    sbuf_free(&b);
}
END_TEST

START_TEST(test_view_link_counts)
{
    /* the case: 10 links, some closing, some held (some both) */
    const char *links =
        "[{\"state\":\"up\",\"held\":\"none\"},{\"state\":\"up\",\"held\":\"none\"},"
        "{\"state\":\"up\",\"held\":\"none\"},{\"state\":\"up\",\"held\":\"none\"},"
        "{\"state\":\"up\",\"held\":\"out\"},{\"state\":\"up\",\"held\":\"both\"},"
        "{\"state\":\"closed\",\"held\":\"in\"},{\"state\":\"closed\",\"held\":\"out\"},"
        "{\"state\":\"closed\",\"held\":\"none\"},{\"state\":\"handshake\",\"held\":\"none\"}]";
    view_links c;
    ck_assert_int_eq(view_link_counts(links, &c), 0);
    ck_assert_int_eq(c.total, 10);
    ck_assert_int_eq(c.up + c.handshake + c.held + c.closing + c.other, c.total);
    ck_assert_int_eq(c.up, 4);
    ck_assert_int_eq(c.held, 4);
    ck_assert_int_eq(c.closing, 1);
    ck_assert_int_eq(c.handshake, 1);
    sbuf b = { 0 };
    view_links_summary(&b, links);
    ck_assert_str_eq(sbuf_str(&b), "10 (4 up, 1 in handshake, 4 held by a cut, 1 closing)");
    sbuf_reset(&b);
    view_links_summary(&b, "[{\"state\":\"held\",\"held\":\"none\"},{\"state\":\"new\"}]");
    ck_assert_str_eq(sbuf_str(&b), "2 (1 held by a cut, 1 other)");
    sbuf_reset(&b);
    view_links_summary(&b, "[]");
    ck_assert_str_eq(sbuf_str(&b), "0");
    sbuf_reset(&b);
    view_links_summary(&b, "nonsense");
    ck_assert_str_eq(sbuf_str(&b), "unknown");
    ck_assert_int_eq(view_link_counts("{}", &c), -1);
    sbuf_free(&b);
}
END_TEST

/* A split followed by many link events: the split stays on the screen. */
START_TEST(test_view_partition_events)
{
    view_snap(5);
    sbuf p = { 0 };
    sbuf_addstr(&p, "[{\"seq\":1,\"t\":4004,\"type\":\"split\",\"spec\":\"n1,n2 n3,n4,n5\","
                    "\"pairs\":12}");
    for (int k = 0; k < 30; k++)
        sbuf_printf(&p, ",{\"seq\":%d,\"t\":%d,\"type\":\"link_closed\",\"link\":%d,"
                        "\"from\":\"n1@localhost\",\"to\":\"n3@localhost\"}", k + 2, 5000 + k, k);
    sbuf_addstr(&p, "]");
    sbuf lines = { 0 };
    snap_take_events(&vs, sbuf_str(&p), &lines);
    ck_assert_uint_eq(vs.last_seq, 31);
    /* the plain view still gets every event, in order */
    ck_assert_msg(!strncmp(sbuf_str(&lines), "+4.004s split spec=\"n1,n2 n3,n4,n5\" pairs=12\n",
                           45), "%s", sbuf_str(&lines));
    sbuf f = { 0 };
    view_frame(&f, &vs, 80);
    ck_assert_msg(strstr(sbuf_str(&f), "+4.004s split spec=\"n1,n2 n3,n4,n5\" pairs=12"),
                  "the split scrolled away: %s", sbuf_str(&f));
    ck_assert_msg(strstr(sbuf_str(&f), "link=29"), "the latest link event is not shown: %s",
                  sbuf_str(&f));
    /* the same events again change nothing */
    snap_take_events(&vs, sbuf_str(&p), NULL);
    ck_assert_int_eq(vs.npev, 1);
    ck_assert(snap_partition_event("isolate") && snap_partition_event("heal") &&
              snap_partition_event("mode") && !snap_partition_event("link_up"));
    sbuf_free(&f);
    sbuf_free(&lines);
    sbuf_free(&p);
    view_snap_free();
}
END_TEST

/* A dead node is dead everywhere, not a live node that sees nobody. */
START_TEST(test_view_dead_node)
{
    view_snap(3);
    vs.dead[1] = 1;
    memset(vs.seen + 3, SNAP_UNKNOWN, 3);
    vs.seen[0 * 3 + 1] = 0;
    vs.seen[2 * 3 + 1] = 0;
    sbuf b = { 0 };
    view_status_json(&b, &vs);
    ck_assert_msg(strstr(sbuf_str(&b), "\"n2\":null"), "%s", sbuf_str(&b));
    ck_assert_msg(strstr(sbuf_str(&b), "\"n1\":[\"n3\"]"), "%s", sbuf_str(&b));
    ck_assert_msg(strstr(sbuf_str(&b), "\"name\":\"n2\",\"node\":\"n2@localhost\",\"pid\":201,"
                                       "\"alive\":false"), "%s", sbuf_str(&b));
    ck_assert_msg(strstr(sbuf_str(&b), "\"visibility\":\"full mesh; n2 dead\""), "%s",
                  sbuf_str(&b));
    sbuf_reset(&b);
    view_status_text(&b, &vs);
    ck_assert_msg(strstr(sbuf_str(&b), "n2@localhost  pid 201  dead"), "%s", sbuf_str(&b));
    ck_assert_msg(strstr(sbuf_str(&b), "n2  dead\n"), "%s", sbuf_str(&b));
    sbuf_reset(&b);
    view_frame(&b, &vs, 80);
    ck_assert_msg(strstr(sbuf_str(&b), "full mesh; n2 dead"), "%s", sbuf_str(&b));
    sbuf_reset(&b);
    view_plain_visibility(&b, &vs);
    ck_assert_msg(strstr(sbuf_str(&b), "n2 dead"), "%s", sbuf_str(&b));
    /* heal --reconnect waits for the live nodes only */
    ck_assert(view_live_mesh(&vs));
    vs.seen[0 * 3 + 2] = 0;
    ck_assert(!view_live_mesh(&vs));
    sbuf_reset(&b);
    view_summary(&b, &vs);
    ck_assert_str_eq(sbuf_str(&b), "partial; n2 dead");
    vs.dead[0] = vs.dead[2] = 1;
    sbuf_reset(&b);
    view_summary(&b, &vs);
    ck_assert_str_eq(sbuf_str(&b), "every node is dead");
    sbuf_free(&b);
    view_snap_free();
}
END_TEST

/* ---- epx-cluster: how another shell runs it ----------------------------------- */

START_TEST(test_self_command)
{
    char exe[PATH_MAX], out[PATH_MAX + 16];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    ck_assert_int_gt(n, 0);
    exe[n] = 0;
    char dir[] = "/tmp/epx-self.XXXXXX";
    ck_assert_ptr_nonnull(mkdtemp(dir));
    char on[64], other[64], link[PATH_MAX], fake[PATH_MAX], path[3 * PATH_MAX];
    snprintf(on, sizeof on, "%s/on", dir);
    snprintf(other, sizeof other, "%s/other", dir);
    ck_assert_int_eq(mkdir(on, 0700), 0);
    ck_assert_int_eq(mkdir(other, 0700), 0);
    snprintf(link, sizeof link, "%s/epx-cluster", on);
    ck_assert_int_eq(symlink(exe, link), 0);
    snprintf(fake, sizeof fake, "%s/epx-cluster", other);
    FILE *f = fopen(fake, "w");
    ck_assert_ptr_nonnull(f);
    fputs("#!/bin/sh\n", f);
    fclose(f);
    ck_assert_int_eq(chmod(fake, 0700), 0);

    /* not on PATH (make demo): the path that works */
    self_command(out, sizeof out, exe, "/nonexistent:/usr/bin");
    ck_assert_str_eq(out, exe);
    self_command(out, sizeof out, exe, NULL);
    ck_assert_str_eq(out, exe);
    /* on PATH: the bare name */
    snprintf(path, sizeof path, "/nonexistent:%s", on);
    self_command(out, sizeof out, exe, path);
    ck_assert_str_eq(out, "epx-cluster");
    /* another epx-cluster comes first on PATH: not the bare name */
    snprintf(path, sizeof path, "%s:%s", other, on);
    self_command(out, sizeof out, exe, path);
    ck_assert_str_eq(out, exe);
    /* unknown: the name */
    self_command(out, sizeof out, NULL, path);
    ck_assert_str_eq(out, "epx-cluster");
    /* a path a shell would split is quoted */
    char spaced[PATH_MAX];
    snprintf(spaced, sizeof spaced, "%s/it's here", dir);
    f = fopen(spaced, "w");
    ck_assert_ptr_nonnull(f);
    fclose(f);
    self_command(out, sizeof out, spaced, "/nonexistent");
    char want[PATH_MAX + 16];
    snprintf(want, sizeof want, "'%s/it'\\''s here'", dir);
    ck_assert_str_eq(out, want);
    unlink(spaced);
    unlink(link);
    unlink(fake);
    rmdir(on);
    rmdir(other);
    rmdir(dir);
}
END_TEST

/* ---- suite ------------------------------------------------------------------------ */

#define TC(s, name, fn, timeout) do {                       \
        TCase *c_ = tcase_create(name);                         \
        tcase_add_checked_fixture(c_, setup, teardown);         \
        tcase_set_timeout(c_, timeout);                         \
        tcase_add_test(c_, fn);                                 \
        suite_add_tcase(s, c_);                                 \
    } while (0)

Suite *cli_suite(void)
{
    Suite *s = suite_create("cli");
    TC(s, "help", test_help, 20);
    TC(s, "version", test_version, 20);
    TC(s, "unknown_option", test_unknown_option, 30);
    TC(s, "client_strict", test_client_strict, 60);
    TC(s, "client_relaxed", test_client_relaxed, 60);
    TC(s, "client_no_server", test_client_no_server, 60);
    TC(s, "env_port", test_env_port, 30);
    TC(s, "control_default_port", test_control_default_port, 30);
    TC(s, "view_wrap", test_view_wrap, 10);
    TC(s, "view_frame_width", test_view_frame_width, 10);
    TC(s, "view_link_counts", test_view_link_counts, 10);
    TC(s, "view_faults", test_view_faults, 10);
    TC(s, "view_partition_events", test_view_partition_events, 10);
    TC(s, "view_dead_node", test_view_dead_node, 10);
    TC(s, "self_command", test_self_command, 10);
    TCase *d = tcase_create("daemon");
    tcase_add_unchecked_fixture(d, daemon_setup, daemon_teardown);
    tcase_add_checked_fixture(d, setup, teardown);
    tcase_set_timeout(d, 60);
    tcase_add_test(d, test_daemon_detaches);
    tcase_add_test(d, test_daemon_port_taken);
    suite_add_tcase(s, d);
    return s;
}
