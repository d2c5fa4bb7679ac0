/* epmd_interop: epmdpxy's EPMD server against OTP's own epmd, byte for byte.
 *
 * Every test starts OTP's `epmd -port P` (foreground, loopback) and
 * `epmdpxy --port 0 --control 0` with the same epmd options, plays the same
 * script against both, and compares every reply and whether the server
 * closed the connection.  Masked before comparing (epmd_script.c, es_mask):
 * creations in successful ALIVE2 replies, PortNo in PORT2 replies, the
 * EPMDPortNo word of NAMES/DUMP (checked to equal each server's own port),
 * and the decimal port / fd numbers in NAMES/DUMP lines: epmdpxy answers
 * with its proxy ports, so those always differ.
 *
 * Each step also carries the reply OTP's epmd gives (OTP 25.2.3, measured),
 * so the scripts are checked against OTP itself as well.
 *
 * Notation of requests and replies: see epmd_script.h.  `L` is the 16-bit
 * request length, `@'foo'` is a 16-bit length and the bytes, `??` a masked
 * byte.  Command bytes: 78 'x' ALIVE2, 7a 'z' PORT_PLEASE2, 6e 'n' NAMES,
 * 64 'd' DUMP, 6b 'k' KILL, 73 's' STOP; replies 76 'v' / 79 'y' ALIVE2,
 * 77 'w' PORT2.
 *
 * EPX_INTEROP_OTP_ONLY=1 plays the scripts against OTP's epmd alone and
 * checks them against their expectations (to work on the scripts without
 * a daemon); it tests nothing of epmdpxy. */
#include <check.h>
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "ctl_parse.h"
#include "epmd_script.h"
#include "testutil.h"

/* ---- request and reply shorthands ---------------------------------------
 * ALIVE2: 'x' PortNo=1234 NodeType=77 ('M') Protocol=0 HighVsn LowVsn=5
 * Nlen Name Elen=0.  V6T/V5T take a name token ('foo', 61*255, c3a9*3). */
#define V6T(TOK) "L 78 04d2 4d 00 0006 0005 @" TOK " @''"
#define V5T(TOK) "L 78 04d2 4d 00 0005 0005 @" TOK " @''"
#define V6(NAME) V6T("'" NAME "'")
#define V5(NAME) V5T("'" NAME "'")
#define PORT2(NAME) "L 7a '" NAME "'"
#define OK6 "76 00 ????????"          /* v, result 0, creation (masked) */
#define OK5 "79 00 ????"              /* y, result 0, creation (masked) */
#define ERR6 "76 01 00000063"         /* v, result 1, creation 99 */
#define ERR5 "79 01 0063"             /* y, result 1, creation 99 */
#define NOTFOUND "77 01"
#define NOTHING ""                    /* no byte at all */
/* PORT2 reply for a node registered by V6T / V5T. */
#define FOUND6T(TOK) "77 00 ???? 4d 00 0006 0005 @" TOK " @''"
#define FOUND5T(TOK) "77 00 ???? 4d 00 0005 0005 @" TOK " @''"
#define FOUND6(NAME) FOUND6T("'" NAME "'")
#define NAMES_HDR "????????"          /* EPMDPortNo, checked to be the port */
#define NAMES_LINE(N) " 'name " N " at port #' 0a"
#define DUMP_ACTIVE(N) " 'active name     <" N "> at port #, fd = #' 0a 00"
#define DUMP_OLD(N) " 'old/unused name <" N ">, port = #, fd = # ' 0a 00"

#define CLOSED .end = ES_X_CLOSED
#define OPEN .end = ES_X_OPEN
#define KEEP(k) .slot = (k)
#define BYTES .how = ES_BYTEWISE
#define TRAIL(t) .how = ES_TRAILING, .trail = (t)
#define THEN_FIN .how = ES_THEN_FIN
#define SEND_ON(k) .op = ES_SEND_ON, .slot = (k)
#define HALFCLOSE(k) .op = ES_HALFCLOSE, .slot = (k), .expect = NOTHING, CLOSED
#define WAIT_EOF(k) .op = ES_WAIT_EOF, .slot = (k)
#define SERVER_EXITS_0 .op = ES_EXIT, .end = ES_X_EXIT0
#define QUIET(ms) .quiet_ms = (ms)

#define NSTEPS(a) (sizeof(a) / sizeof((a)[0]))

/* ---- fixture ------------------------------------------------------------ */

static es_server otp, ours;
static char *saved_relaxed;

static int otp_only(void)
{
    const char *v = getenv("EPX_INTEROP_OTP_ONLY");
    return v && *v && strcmp(v, "0") != 0;
}

static void setup(void)
{
    memset(&otp, 0, sizeof otp);
    memset(&ours, 0, sizeof ours);
    otp.pid = ours.pid = -1;
    const char *r = getenv("ERL_EPMD_RELAXED_COMMAND_CHECK");
    saved_relaxed = r ? strdup(r) : NULL;
    unsetenv("ERL_EPMD_RELAXED_COMMAND_CHECK");
}

static void teardown(void)
{
    es_server_stop(&otp);
    es_server_stop(&ours);
    es_reap_all();
    if (saved_relaxed) {
        setenv("ERL_EPMD_RELAXED_COMMAND_CHECK", saved_relaxed, 1);
        free(saved_relaxed);
        saved_relaxed = NULL;
    } else {
        unsetenv("ERL_EPMD_RELAXED_COMMAND_CHECK");
    }
}

static void start_both(const char *const *opts)
{
    ck_assert_msg(es_otp_start(&otp, opts) == 0, "OTP's epmd (%s) did not start",
                  es_otp_epmd_path());
    if (otp_only())
        return;
    ck_assert_msg(es_ours_start(&ours, opts) == 0, "epmdpxy (%s) did not start",
                  tu_epmdpxy_path());
}

/* Fail with the report; the whole report goes to stderr, the assertion
 * message gets as much as fits. */
static void fail_report(const char *what, int ndiff, char *report)
{
    fprintf(stderr, "\n==== %s: %d difference(s) ====\n%s\n", what, ndiff,
            report ? report : "");
    char msg[3500];
    snprintf(msg, sizeof msg, "%s: %d difference(s):\n%s", what, ndiff,
             report ? report : "");
    free(report);
    ck_abort_msg("%s", msg);
}

/* Play the script on both servers (already started), check OTP against the
 * script's expectations, then epmdpxy against the expectations and OTP.
 * The plays are returned for further checks when po/pu are non-NULL. */
static void play_both(const es_step *steps, size_t n, es_play *po, es_play *pu)
{
    es_play a, b;
    char err[256];
    ck_assert_msg(es_play_run(&a, &otp, steps, n, err, sizeof err) == 0,
                  "script: %s", err);
    if (otp_only())
        b = a;   /* compared with itself */
    else
        ck_assert_msg(es_play_run(&b, &ours, steps, n, err, sizeof err) == 0,
                      "script: %s", err);
    char *rep_otp = NULL, *rep_ours = NULL;
    int d_otp = es_check(steps, n, &a, NULL, &rep_otp);
    int d_ours = otp_only() ? 0 : es_check(steps, n, &b, &a, &rep_ours);
    if (d_otp)
        fail_report("OTP's epmd does not do what the script says (script bug?)",
                    d_otp, rep_otp);
    free(rep_otp);
    if (d_ours)
        fail_report("epmdpxy differs from OTP's epmd", d_ours, rep_ours);
    free(rep_ours);
    if (otp_only()) {
        /* b aliases a: hand out a once; pu gets an empty play */
        if (pu)
            memset(pu, 0, sizeof *pu);
        if (po)
            *po = a;
        else
            es_play_free(&a);
        return;
    }
    if (po)
        *po = a;
    else
        es_play_free(&a);
    if (pu)
        *pu = b;
    else
        es_play_free(&b);
}

static void interop(const char *const *opts, const es_step *steps, size_t n)
{
    start_both(opts);
    play_both(steps, n, NULL, NULL);
}

static const char *const STRICT[] = { NULL };
static const char *const RELAXED[] = { "-relaxed_command_check", NULL };

/* ---- ALIVE2 -------------------------------------------------------------- */

static const es_step alive2_script[] = {
    { "ALIVE2 HighVsn 6 registers 'foo': v reply, connection stays open",
      V6("foo"), KEEP(1), .expect = OK6, OPEN },
    { "ALIVE2 HighVsn 5 registers 'bar': y reply",
      V5("bar"), KEEP(2), .expect = OK5, OPEN },
    { "ALIVE2 HighVsn 7: v reply",
      "L 78 04d2 4d 00 0007 0005 @'hv7' @''", KEEP(3), .expect = OK6, OPEN },
    { "ALIVE2 HighVsn 0 LowVsn 0: y reply",
      "L 78 04d2 4d 00 0000 0000 @'hv0' @''", KEEP(4), .expect = OK5, OPEN },
    { "duplicate 'foo' (v6): result 1, creation 99, connection stays open",
      V6("foo"), KEEP(5), .expect = ERR6, OPEN },
    { "duplicate 'bar' (v5): y error", V5("bar"), KEEP(6), .expect = ERR5, OPEN },
    { "duplicate 'foo' asked as v5: y error", V5("foo"), KEEP(7), .expect = ERR5, OPEN },
    { "a byte on the connection that got the error closes it, no reply",
      "00", SEND_ON(5), .expect = NOTHING, CLOSED },
    { "half-closing a connection that got an error: closed, nothing", HALFCLOSE(6) },
    { "half-closing the other one", HALFCLOSE(7) },
    { "'foo' is still registered after the duplicates",
      PORT2("foo"), .expect = FOUND6("foo"), CLOSED },
    { "'bar' (v5) is found with HighVsn 5",
      PORT2("bar"), .expect = FOUND5T("'bar'"), CLOSED },
    { "'hv0' is found with HighVsn 0 LowVsn 0",
      PORT2("hv0"), .expect = "77 00 ???? 4d 00 0000 0000 @'hv0' @''", CLOSED },
    { "name containing a NUL: no reply, closed",
      "L 78 04d2 4d 00 0006 0005 0003 'a' 00 'b' 0000", .expect = NOTHING, CLOSED },
    { "Nlen beyond the body: closed",
      "L 78 04d2 4d 00 0006 0005 0010 'abc' 0000", .expect = NOTHING, CLOSED },
    { "Nlen covers the name but leaves half an Elen: closed",
      "L 78 04d2 4d 00 0006 0005 0004 'abc' 00", .expect = NOTHING, CLOSED },
    { "Elen beyond the body: closed",
      "L 78 04d2 4d 00 0006 0005 @'abc' 0005 'xy'", .expect = NOTHING, CLOSED },
    { "Elen one byte beyond the body: closed",
      "L 78 04d2 4d 00 0006 0005 @'abc' 0003 'xy'", .expect = NOTHING, CLOSED },
    { "body of 13 bytes (Nlen 0, Elen 0): closed",
      "L 78 04d2 4d 00 0006 0005 0000 0000", .expect = NOTHING, CLOSED },
    { "body of 12 bytes: closed",
      "L 78 04d2 4d 00 0006 0005 0000 00", .expect = NOTHING, CLOSED },
    { "body of 1 byte: closed", "L 78", .expect = NOTHING, CLOSED },
    { "body of 14 bytes, Nlen 0 + 1 trailing byte: the empty name registers",
      "L 78 04d2 4d 00 0006 0005 0000 0000 00", KEEP(8), .expect = OK6, OPEN },
    { "Nlen 1021 (> 1020): error", V6T("61*1021"), .expect = ERR6, OPEN },
    { "name of 256 characters: error", V6T("'b'*256"), .expect = ERR6, OPEN },
    { "name of 255 characters: registered", V6T("'c'*255"), KEEP(9), .expect = OK6, OPEN },
    { "255 two-byte characters (510 bytes): registered",
      V6T("c3a9*255"), KEEP(10), .expect = OK6, OPEN },
    { "256 two-byte characters: error", V6T("c3b1*256"), .expect = ERR6, OPEN },
    { "255 four-byte characters (1020 bytes): registered",
      V6T("f09f9880*255"), KEEP(11), .expect = OK6, OPEN },
    { "three-byte character U+20AC: registered", V6T("e282ac"), KEEP(12), .expect = OK6, OPEN },
    { "U+10FFFF (f4 8f bf bf): registered", V6T("f48fbfbf"), KEEP(13), .expect = OK6, OPEN },
    { "invalid UTF-8, lone continuation byte: error", V6T("758041"), .expect = ERR6, OPEN },
    { "invalid UTF-8, overlong c0 80: error", V6T("c080"), .expect = ERR6, OPEN },
    { "invalid UTF-8, overlong c1 bf: error", V6T("c1bf"), .expect = ERR6, OPEN },
    { "invalid UTF-8, truncated two-byte at the end: error", V6T("41c3"), .expect = ERR6, OPEN },
    { "invalid UTF-8, surrogate ed a0 80: error", V6T("eda080"), .expect = ERR6, OPEN },
    { "invalid UTF-8, overlong e0 80 80: error", V6T("e08080"), .expect = ERR6, OPEN },
    { "invalid UTF-8, above U+10FFFF f4 90 80 80: error", V6T("f4908080"), .expect = ERR6, OPEN },
    { "invalid UTF-8, lead byte f5: error", V6T("f5808080"), .expect = ERR6, OPEN },
    { "invalid UTF-8, byte ff: error", V6T("ff"), .expect = ERR6, OPEN },
    { "Elen 1021 (> 1020): error",
      "L 78 04d2 4d 00 0006 0005 @'e1' @00*1021", .expect = ERR6, OPEN },
    { "Elen 1020: registered",
      "L 78 04d2 4d 00 0006 0005 @'e2' @ab*1020", KEEP(14), .expect = OK6, OPEN },
    { "PORT2 'e2' returns the 1020 Extra bytes",
      PORT2("e2"), .expect = "77 00 ???? 4d 00 0006 0005 @'e2' @ab*1020", CLOSED },
    { "trailing bytes after Extra are accepted (NodeType 48 'H', Protocol 1)",
      "L 78 04d2 48 01 0006 0005 @'t1' @'XY' 'junk'", KEEP(15), .expect = OK6, OPEN },
    { "PORT2 't1': type, protocol and Extra as sent, no trailing junk",
      PORT2("t1"), .expect = "77 00 ???? 48 01 0006 0005 @'t1' @'XY'", CLOSED },
    { "largest request, Len 3057: 255 four-byte chars, 1020 Extra, 1004 trailing",
      "L 78 04d2 4d 00 0006 0005 @f09f9881*255 @cd*1020 ee*1004", KEEP(16),
      .expect = OK6, OPEN },
    { "PORT2 with 254 of those characters: not found",
      "L 7a f09f9881*254", .expect = NOTFOUND, CLOSED },
    { "PORT2 with all 255 of them (1020 bytes): closed, no reply",
      "L 7a f09f9881*255", .expect = NOTHING, CLOSED },
    { "PortNo 0, NodeType ff, Protocol ff, Extra with NULs: registered",
      "L 78 0000 ff ff 0006 0005 @'odd' @00010002", KEEP(17), .expect = OK6, OPEN },
    { "PORT2 'odd': all of it echoed",
      PORT2("odd"), .expect = "77 00 ???? ff ff 0006 0005 @'odd' @00010002", CLOSED },
    { "a second ALIVE2 on a registration connection: closed, no reply",
      V6("foo2"), SEND_ON(1), .expect = NOTHING, CLOSED },
    { "... which unregistered 'foo'", PORT2("foo"), .expect = NOTFOUND, CLOSED },
    { "... and did not register 'foo2'", PORT2("foo2"), .expect = NOTFOUND, CLOSED },
    { "'foo' registers again", V6("foo"), KEEP(1), .expect = OK6, OPEN },
    { "NAMES lists every registered node, newest first, the empty name too",
      "L 6e", .expect = NAMES_HDR NAMES_LINE("foo") NAMES_LINE("odd")
          " 'name ' f09f9881*255 ' at port #' 0a"
          NAMES_LINE("t1") NAMES_LINE("e2")
          " 'name ' f48fbfbf ' at port #' 0a"
          " 'name ' e282ac ' at port #' 0a"
          " 'name ' f09f9880*255 ' at port #' 0a"
          " 'name ' c3a9*255 ' at port #' 0a"
          " 'name ' 'c'*255 ' at port #' 0a"
          " 'name  at port #' 0a"
          NAMES_LINE("hv0") NAMES_LINE("hv7") NAMES_LINE("bar"),
      CLOSED },
};

START_TEST(test_alive2)
{
    interop(STRICT, alive2_script, NSTEPS(alive2_script));
}
END_TEST

/* ---- registration lifetime ------------------------------------------------ */

static const es_step lifetime_script[] = {
    { "register 'life'", V6("life"), KEEP(1), .expect = OK6, OPEN },
    { "PORT2 'life' found", PORT2("life"), .expect = FOUND6("life"), CLOSED },
    { "half-close the registration: the server closes it, sends nothing", HALFCLOSE(1) },
    { "PORT2 'life' not found any more", PORT2("life"), .expect = NOTFOUND, CLOSED },
    { "register 'life2'", V6("life2"), KEEP(2), .expect = OK6, OPEN },
    { "one byte on the registration connection: closed, no reply",
      "00", SEND_ON(2), .expect = NOTHING, CLOSED },
    { "PORT2 'life2' not found", PORT2("life2"), .expect = NOTFOUND, CLOSED },
    { "register 'life3'", V6("life3"), KEEP(3), .expect = OK6, OPEN },
    { "an idle registration gets nothing and stays open",
      WAIT_EOF(3), QUIET(500), .expect = NOTHING, OPEN },
    { "'life' registers again", V6("life"), KEEP(4), .expect = OK6, OPEN },
    { "NAMES: life, life3",
      "L 6e", .expect = NAMES_HDR NAMES_LINE("life") NAMES_LINE("life3"), CLOSED },
    { "DUMP: active life, life3; old life2",
      "L 64", .expect = NAMES_HDR DUMP_ACTIVE("life") DUMP_ACTIVE("life3")
          DUMP_OLD("life2"), CLOSED },
    { "several bytes on a registration: closed, unregistered",
      "'abc'", SEND_ON(3), .expect = NOTHING, CLOSED },
    { "PORT2 'life3' not found", PORT2("life3"), .expect = NOTFOUND, CLOSED },
};

START_TEST(test_lifetime)
{
    interop(STRICT, lifetime_script, NSTEPS(lifetime_script));
}
END_TEST

/* ---- PORT_PLEASE2 --------------------------------------------------------- */

static const es_step port2_script[] = {
    { "register 'foo'", V6("foo"), KEEP(1), .expect = OK6, OPEN },
    { "register a 254-character name", V6T("'b'*254"), KEEP(2), .expect = OK6, OPEN },
    { "register a 255-character name", V6T("'c'*255"), KEEP(3), .expect = OK6, OPEN },
    { "register 254 two-byte characters", V6T("c3a9*254"), KEEP(4), .expect = OK6, OPEN },
    { "register 255 two-byte characters", V6T("c3b1*255"), KEEP(5), .expect = OK6, OPEN },
    { "register 'gone'", V6("gone"), KEEP(6), .expect = OK6, OPEN },
    { "unregister 'gone'", HALFCLOSE(6) },
    { "found", PORT2("foo"), .expect = FOUND6("foo"), CLOSED },
    { "not found", PORT2("nope"), .expect = NOTFOUND, CLOSED },
    { "one trailing NUL is stripped", "L 7a 'foo' 00", .expect = FOUND6("foo"), CLOSED },
    { "two trailing NULs: closed, no reply", "L 7a 'foo' 0000", .expect = NOTHING, CLOSED },
    { "NUL inside the name: closed", "L 7a 'fo' 00 'o'", .expect = NOTHING, CLOSED },
    { "empty name: closed", "L 7a", .expect = NOTHING, CLOSED },
    { "only a NUL: closed", "L 7a 00", .expect = NOTHING, CLOSED },
    { "prefix of a registered name: not found", PORT2("fo"), .expect = NOTFOUND, CLOSED },
    { "registered name plus a letter: not found", PORT2("fooo"), .expect = NOTFOUND, CLOSED },
    { "other case: not found", PORT2("FOO"), .expect = NOTFOUND, CLOSED },
    { "254-character name: found",
      "L 7a 'b'*254", .expect = FOUND6T("'b'*254"), CLOSED },
    { "254-character name with trailing NUL: found",
      "L 7a 'b'*254 00", .expect = FOUND6T("'b'*254"), CLOSED },
    { "255-character name (registered!): closed without reply",
      "L 7a 'c'*255", .expect = NOTHING, CLOSED },
    { "255-character name with trailing NUL: closed",
      "L 7a 'c'*255 00", .expect = NOTHING, CLOSED },
    { "256-character name: closed", "L 7a 'd'*256", .expect = NOTHING, CLOSED },
    { "254 two-byte characters: found",
      "L 7a c3a9*254", .expect = FOUND6T("c3a9*254"), CLOSED },
    { "255 two-byte characters (registered): closed",
      "L 7a c3b1*255", .expect = NOTHING, CLOSED },
    { "invalid UTF-8 name: closed", "L 7a ff", .expect = NOTHING, CLOSED },
    { "truncated UTF-8 name: closed", "L 7a 'a' c3", .expect = NOTHING, CLOSED },
    { "valid UTF-8 name, not registered: not found",
      "L 7a c3a9", .expect = NOTFOUND, CLOSED },
    { "an unregistered (old) name: not found", PORT2("gone"), .expect = NOTFOUND, CLOSED },
    { "byte by byte: found", PORT2("foo"), BYTES, .expect = FOUND6("foo"), CLOSED },
    { "with a second request pipelined: closed, no reply",
      PORT2("foo"), TRAIL(PORT2("foo")), .expect = NOTHING, CLOSED },
    { "with one byte beyond Len: closed, no reply",
      PORT2("foo"), TRAIL("00"), .expect = NOTHING, CLOSED },
};

START_TEST(test_port2)
{
    interop(STRICT, port2_script, NSTEPS(port2_script));
}
END_TEST

/* ---- NAMES and DUMP --------------------------------------------------------- */

static const es_step names_script[] = {
    { "NAMES with nothing registered: the port word only",
      "L 6e", .expect = NAMES_HDR, CLOSED },
    { "DUMP with nothing registered", "L 64", .expect = NAMES_HDR, CLOSED },
    { "register a1", V6("a1"), KEEP(1), .expect = OK6, OPEN },
    { "register a2 (v5)", V5("a2"), KEEP(2), .expect = OK5, OPEN },
    { "register a3", V6("a3"), KEEP(3), .expect = OK6, OPEN },
    { "NAMES: newest first",
      "L 6e", .expect = NAMES_HDR NAMES_LINE("a3") NAMES_LINE("a2") NAMES_LINE("a1"),
      CLOSED },
    { "NAMES with extra bytes after the command: ignored",
      "L 6e 'junk' 00", .expect = NAMES_HDR NAMES_LINE("a3") NAMES_LINE("a2")
          NAMES_LINE("a1"), CLOSED },
    { "NAMES byte by byte",
      "L 6e", BYTES, .expect = NAMES_HDR NAMES_LINE("a3") NAMES_LINE("a2")
          NAMES_LINE("a1"), CLOSED },
    { "NAMES with a second request pipelined: closed, no reply",
      "L 6e", TRAIL("L 6e"), .expect = NOTHING, CLOSED },
    { "DUMP: every line ends with a NUL",
      "L 64", .expect = NAMES_HDR DUMP_ACTIVE("a3") DUMP_ACTIVE("a2") DUMP_ACTIVE("a1"),
      CLOSED },
    { "unregister a2", HALFCLOSE(2) },
    { "unregister a1", HALFCLOSE(1) },
    { "NAMES: a3 only", "L 6e", .expect = NAMES_HDR NAMES_LINE("a3"), CLOSED },
    { "DUMP: active a3, then old entries in unregistration order",
      "L 64", .expect = NAMES_HDR DUMP_ACTIVE("a3") DUMP_OLD("a2") DUMP_OLD("a1"),
      CLOSED },
    { "DUMP with extra bytes: ignored",
      "L 64 'xyz'", .expect = NAMES_HDR DUMP_ACTIVE("a3") DUMP_OLD("a2") DUMP_OLD("a1"),
      CLOSED },
    { "DUMP byte by byte",
      "L 64", BYTES, .expect = NAMES_HDR DUMP_ACTIVE("a3") DUMP_OLD("a2")
          DUMP_OLD("a1"), CLOSED },
    { "a1 registers again and leaves the old list",
      V6("a1"), KEEP(1), .expect = OK6, OPEN },
    { "DUMP: a1, a3 active; a2 old",
      "L 64", .expect = NAMES_HDR DUMP_ACTIVE("a1") DUMP_ACTIVE("a3") DUMP_OLD("a2"),
      CLOSED },
    { "NAMES: a1, a3", "L 6e", .expect = NAMES_HDR NAMES_LINE("a1") NAMES_LINE("a3"),
      CLOSED },
};

START_TEST(test_names_dump)
{
    interop(STRICT, names_script, NSTEPS(names_script));
}
END_TEST

/* ---- DUMP: an old entry keeps the fd it had -------------------------------------
 * The fd numbers themselves differ between servers (masked above), but in
 * each server an old/unused entry shows the fd its registration had, never
 * -1: epmd keeps the number when it moves a node to the unused list. */
static const es_step dump_fd_script[] = {
    /* 0 */ { "register f1", V6("f1"), KEEP(1), .expect = OK6, OPEN },
    /* 1 */ { "register f2", V6("f2"), KEEP(2), .expect = OK6, OPEN },
    /* 2 */ { "DUMP: both active", "L 64",
              .expect = NAMES_HDR DUMP_ACTIVE("f2") DUMP_ACTIVE("f1"), CLOSED },
    /* 3 */ { "unregister f1", HALFCLOSE(1) },
    /* 4 */ { "DUMP: f1 old", "L 64",
              .expect = NAMES_HDR DUMP_ACTIVE("f2") DUMP_OLD("f1"), CLOSED },
    /* 5 */ { "unregister f2", HALFCLOSE(2) },
    /* 6 */ { "DUMP: both old", "L 64",
              .expect = NAMES_HDR DUMP_OLD("f1") DUMP_OLD("f2"), CLOSED },
};

/* The fd number on the DUMP line of <name> in b, or -99999 if none. */
static long dump_fd_of(const es_buf *b, const char *name)
{
    char tag[64];
    snprintf(tag, sizeof tag, "<%s>", name);
    const char *at = memmem(b->b, b->n, tag, strlen(tag));
    if (!at)
        return -99999;
    const char *end = (const char *)b->b + b->n;
    const char *fd = memmem(at, (size_t)(end - at), "fd = ", 5);
    if (!fd || fd + 5 >= end)
        return -99999;
    return strtol(fd + 5, NULL, 10);
}

START_TEST(test_dump_old_fd)
{
    start_both(STRICT);
    es_play po, pu;
    play_both(dump_fd_script, NSTEPS(dump_fd_script), &po, &pu);
    const es_play *pl[2] = { &po, &pu };
    char *rep = NULL;
    int bad = 0;
    for (int k = 0; k < (otp_only() ? 1 : 2); k++) {
        const es_play *p = pl[k];
        long f1 = dump_fd_of(&p->out[2].raw, "f1"), f2 = dump_fd_of(&p->out[2].raw, "f2");
        long f1_old = dump_fd_of(&p->out[4].raw, "f1");
        long f1_old2 = dump_fd_of(&p->out[6].raw, "f1"), f2_old = dump_fd_of(&p->out[6].raw, "f2");
        fprintf(stderr, "dump_old_fd %-9s f1 fd %ld, then old %ld, %ld; f2 fd %ld, then old %ld\n",
                p->srv->name, f1, f1_old, f1_old2, f2, f2_old);
        if (f1 < 0 || f2 < 0 || f1_old != f1 || f1_old2 != f1 || f2_old != f2) {
            es_appendf(&rep, "%s: f1 fd %ld then old %ld, %ld; f2 fd %ld then old %ld "
                       "(an old entry keeps its fd)\n", p->srv->name, f1, f1_old, f1_old2,
                       f2, f2_old);
            bad++;
        }
    }
    es_play_free(&po);
    if (!otp_only())
        es_play_free(&pu);
    if (bad)
        fail_report("DUMP fd of old entries", bad, rep);
    free(rep);
}
END_TEST

/* ---- start-up: stdout as epmd's, listen addresses -------------------------------- */

/* KILL the EPMD server on port (nothing registered): 0 if it said OK. */
static int kill_server(int port)
{
    int fd = tu_connect(port);
    if (fd < 0)
        return -1;
    char ok[2];
    int r = tu_write_all(fd, "\0\1k", 3) == 0 && tu_read_exact(fd, ok, 2, 5000) == 0 &&
            !memcmp(ok, "OK", 2) ? 0 : -1;
    close(fd);
    return r;
}

/* Start prog (argv) on P, wait until it serves NAMES, KILL it, and return
 * what it wrote on stdout (NUL-terminated, in out). */
static void stdout_of(const char *const *argv, int port, char *out, size_t cap)
{
    int ofd = -1;
    char log[128];
    snprintf(log, sizeof log, "/tmp/epx-interop-stdout.%d.log", (int)getpid());
    pid_t pid = es_spawn(argv, NULL, &ofd, log);
    ck_assert_int_gt(pid, 0);
    int up = TU_WAIT_UNTIL(es_names_probe(port), 10000);
    if (!up)
        es_kill_pid(pid);
    ck_assert_msg(up, "%s %s %s: nothing serves NAMES on %d within 10 s (log %s)", argv[0],
                  argv[1], argv[2], port, log);
    ck_assert_msg(kill_server(port) == 0, "%s: KILL not answered OK", argv[0]);
    int st;
    if (!es_wait_pid(pid, 10000, &st)) {
        es_kill_pid(pid);
        ck_abort_msg("%s still runs 10 s after KILL", argv[0]);
    }
    int eof = 0;
    size_t n = tu_read_until_eof(ofd, (uint8_t *)out, cap - 1, 5000, &eof);
    out[n] = 0;
    close(ofd);
    unlink(log);
}

/* Started as epmd is (`-port P`), stdout carries what epmd's does:
 * nothing (OTP's epmd_SUITE reads it).  READY comes only when asked. */
START_TEST(test_startup_stdout)
{
    char otp_out[512], our_out[512];
    int p = es_free_port_pair();
    ck_assert_int_gt(p, 0);
    char ps[16];
    snprintf(ps, sizeof ps, "%d", p);
    const char *otp_argv[] = { es_otp_epmd_path(), "-port", ps, NULL };
    stdout_of(otp_argv, p, otp_out, sizeof otp_out);
    if (otp_only())
        return;
    const char *our_argv[] = { tu_epmdpxy_path(), "-port", ps, NULL };
    stdout_of(our_argv, p, our_out, sizeof our_out);
    ck_assert_msg(!strcmp(our_out, otp_out), "epmdpxy -port %d wrote \"%s\" on stdout; OTP's "
                  "epmd wrote \"%s\"", p, our_out, otp_out);
    /* asked for with --ready: one READY line with the ports */
    p = es_free_port_pair();
    ck_assert_int_gt(p, 0);
    snprintf(ps, sizeof ps, "%d", p);
    const char *ready_argv[] = { tu_epmdpxy_path(), "-port", ps, "--ready", NULL };
    stdout_of(ready_argv, p, our_out, sizeof our_out);
    char want[64];
    snprintf(want, sizeof want, "READY epmd=%d control=%d\n", p, p + 1);
    ck_assert_msg(!strcmp(our_out, want), "epmdpxy -port %d --ready wrote \"%s\", want \"%s\"",
                  p, our_out, want);
}
END_TEST

/* 1 if a NAMES request to addr:port gets the port word back. */
static int names_at(const char *addr, int port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return 0;
    struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
    inet_pton(AF_INET, addr, &sa.sin_addr);
    struct timeval tv = { 5, 0 };
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    uint8_t rep[4];
    int ok = connect(fd, (struct sockaddr *)&sa, sizeof sa) == 0 &&
             tu_write_all(fd, "\0\1n", 3) == 0 && tu_read_exact(fd, rep, 4, 5000) == 0 &&
             ((uint32_t)rep[0] << 24 | (uint32_t)rep[1] << 16 | (uint32_t)rep[2] << 8 |
              rep[3]) == (uint32_t)port;
    close(fd);
    return ok;
}

/* Every --bind and every -address entry is listened on (they used to
 * overwrite each other, so two binds of one address failed the start). */
START_TEST(test_bind_repeated)
{
    if (otp_only())
        return;
    static const char *const opts[] = { "--bind", "127.0.0.2", "--bind", "127.0.0.3",
                                        "--bind", "127.0.0.4", "-address", "127.0.0.5,127.0.0.6",
                                        "--bind", "127.0.0.3", NULL };
    ck_assert_msg(es_ours_start(&ours, opts) == 0, "epmdpxy --bind x3 -address a,b did not "
                  "start (log %s)", ours.d.log);
    static const char *const addrs[] = { "127.0.0.1", "127.0.0.2", "127.0.0.3", "127.0.0.4",
                                         "127.0.0.5", "127.0.0.6" };
    for (size_t i = 0; i < sizeof addrs / sizeof addrs[0]; i++)
        ck_assert_msg(names_at(addrs[i], ours.port), "no EPMD answer on %s:%d", addrs[i],
                      ours.port);
    ck_assert_msg(!names_at("127.0.0.7", ours.port), "127.0.0.7 answers, never bound");
}
END_TEST

/* --help lists every control command the parser knows, each at the start
 * of a line of its own, and ISOLATE's EXCEPT form. */
START_TEST(test_help_lists_commands)
{
    if (otp_only())
        return;
    const char *argv[] = { tu_epmdpxy_path(), "--help", NULL };
    es_run_result r;
    ck_assert_msg(es_run(argv, NULL, 10000, &r) == 0, "epmdpxy --help did not exit");
    ck_assert_msg(WIFEXITED(r.status) && WEXITSTATUS(r.status) == 0, "--help: status %d",
                  r.status);
    for (int c = CTL_EMPTY + 1; c < CTL_UNKNOWN; c++) {
        char want[48];
        snprintf(want, sizeof want, "\n  %s", ctl_cmd_name((ctl_cmd)c));
        ck_assert_msg(strstr(r.out, want), "--help does not list %s:\n%s",
                      ctl_cmd_name((ctl_cmd)c), r.out);
    }
    ck_assert_msg(strstr(r.out, "ISOLATE n [EXCEPT n,...]"), "--help lacks ISOLATE's EXCEPT "
                  "form:\n%s", r.out);
    es_run_free(&r);
}
END_TEST

/* ---- KILL -------------------------------------------------------------------- */

static const es_step kill_empty_script[] = {
    { "KILL with nothing registered: OK", "L 6b", .expect = "'OK'", CLOSED },
    { "the server exits with status 0", SERVER_EXITS_0 },
};

static const es_step kill_live_strict_script[] = {
    { "register k1", V6("k1"), KEEP(1), .expect = OK6, OPEN },
    { "KILL with a live node, strict: NO", "L 6b", .expect = "'NO'", CLOSED },
    { "KILL with extra bytes: NO as well", "L 6b 'xx'", .expect = "'NO'", CLOSED },
    { "KILL byte by byte: NO", "L 6b", BYTES, .expect = "'NO'", CLOSED },
    { "the server still serves: k1 found", PORT2("k1"), .expect = FOUND6("k1"), CLOSED },
    { "the registration is untouched", WAIT_EOF(1), QUIET(300), .expect = NOTHING, OPEN },
    { "unregister k1", HALFCLOSE(1) },
    { "KILL with only an old entry left: OK", "L 6b", .expect = "'OK'", CLOSED },
    { "the server exits with status 0", SERVER_EXITS_0 },
};

static const es_step kill_live_relaxed_script[] = {
    { "register k1", V6("k1"), KEEP(1), .expect = OK6, OPEN },
    { "register k2 (v5)", V5("k2"), KEEP(2), .expect = OK5, OPEN },
    { "KILL with live nodes, relaxed, extra bytes: OK", "L 6b 'xx'", .expect = "'OK'", CLOSED },
    { "k1's registration is closed by the exit", WAIT_EOF(1), .expect = NOTHING, CLOSED },
    { "k2's registration is closed by the exit", WAIT_EOF(2), .expect = NOTHING, CLOSED },
    { "the server exits with status 0", SERVER_EXITS_0 },
};

START_TEST(test_kill_empty)
{
    interop(STRICT, kill_empty_script, NSTEPS(kill_empty_script));
}
END_TEST

START_TEST(test_kill_empty_relaxed)
{
    interop(RELAXED, kill_empty_script, NSTEPS(kill_empty_script));
}
END_TEST

START_TEST(test_kill_live_strict)
{
    interop(STRICT, kill_live_strict_script, NSTEPS(kill_live_strict_script));
}
END_TEST

START_TEST(test_kill_live_relaxed)
{
    interop(RELAXED, kill_live_relaxed_script, NSTEPS(kill_live_relaxed_script));
}
END_TEST

/* ---- STOP --------------------------------------------------------------------- */

static const es_step stop_relaxed_script[] = {
    { "register s1", V6("s1"), KEEP(1), .expect = OK6, OPEN },
    { "register s2", V6("s2"), KEEP(2), .expect = OK6, OPEN },
    { "register s3", V5("s3"), KEEP(3), .expect = OK5, OPEN },
    { "register s4", V6("s4"), KEEP(4), .expect = OK6, OPEN },
    { "register a 255-character name", V6T("'l'*255"), KEEP(5), .expect = OK6, OPEN },
    { "STOP of the 255-character name: STOPPED (no PORT2-style length check)",
      "L 73 'l'*255", .expect = "'STOPPED'", CLOSED },
    { "the server closed its registration", WAIT_EOF(5), .expect = NOTHING, CLOSED },
    { "STOP with invalid UTF-8: NOEXISTSTOPPED", "L 73 ff fe", .expect = "'NOEXISTSTOPPED'",
      CLOSED },
    { "STOP with a 3000-byte name: NOEXISTSTOPPED", "L 73 'q'*3000",
      .expect = "'NOEXISTSTOPPED'", CLOSED },
    { "STOP s1: STOPPED", "L 73 's1'", .expect = "'STOPPED'", CLOSED },
    { "the server closed s1's registration", WAIT_EOF(1), .expect = NOTHING, CLOSED },
    { "PORT2 s1: not found", PORT2("s1"), .expect = NOTFOUND, CLOSED },
    { "STOP s1 again (an old entry now): NOEXIST then STOPPED",
      "L 73 's1'", .expect = "'NOEXISTSTOPPED'", CLOSED },
    { "STOP an unknown name: NOEXISTSTOPPED",
      "L 73 'nosuch'", .expect = "'NOEXISTSTOPPED'", CLOSED },
    { "STOP with no name: closed, no reply", "L 73", .expect = NOTHING, CLOSED },
    { "STOP with an empty name and a NUL: NOEXISTSTOPPED",
      "L 73 00", .expect = "'NOEXISTSTOPPED'", CLOSED },
    { "STOP 's2' NUL 'junk': the name ends at the NUL",
      "L 73 's2' 00 'junk'", .expect = "'STOPPED'", CLOSED },
    { "the server closed s2's registration", WAIT_EOF(2), .expect = NOTHING, CLOSED },
    { "STOP 's3' byte by byte", "L 73 's3'", BYTES, .expect = "'STOPPED'", CLOSED },
    { "the server closed s3's registration", WAIT_EOF(3), .expect = NOTHING, CLOSED },
    { "STOP 's' (a prefix of s4): NOEXISTSTOPPED",
      "L 73 's'", .expect = "'NOEXISTSTOPPED'", CLOSED },
    { "STOP with a pipelined request: closed, no reply",
      "L 73 's4'", TRAIL("L 6e"), .expect = NOTHING, CLOSED },
    { "NAMES: s4 only", "L 6e", .expect = NAMES_HDR NAMES_LINE("s4"), CLOSED },
    { "DUMP: s4 active; the long name, s1, s2, s3 old in stop order",
      "L 64", .expect = NAMES_HDR DUMP_ACTIVE("s4") " 'old/unused name <' 'l'*255"
          " '>, port = #, fd = # ' 0a 00" DUMP_OLD("s1") DUMP_OLD("s2") DUMP_OLD("s3"),
      CLOSED },
};

static const es_step stop_strict_script[] = {
    { "register t1", V6("t1"), KEEP(1), .expect = OK6, OPEN },
    { "STOP t1 in strict mode: closed, no reply", "L 73 't1'", .expect = NOTHING, CLOSED },
    { "t1 still registered", PORT2("t1"), .expect = FOUND6("t1"), CLOSED },
    { "t1's registration untouched", WAIT_EOF(1), QUIET(300), .expect = NOTHING, OPEN },
    { "STOP unknown name in strict mode: closed, no reply",
      "L 73 'zz'", .expect = NOTHING, CLOSED },
};

START_TEST(test_stop_relaxed)
{
    interop(RELAXED, stop_relaxed_script, NSTEPS(stop_relaxed_script));
}
END_TEST

START_TEST(test_stop_strict)
{
    interop(STRICT, stop_strict_script, NSTEPS(stop_strict_script));
}
END_TEST

/* ERL_EPMD_RELAXED_COMMAND_CHECK (any value) turns relaxed mode on. */
static const es_step stop_env_script[] = {
    { "register e1", V6("e1"), KEEP(1), .expect = OK6, OPEN },
    { "STOP e1: STOPPED (relaxed through the environment)",
      "L 73 'e1'", .expect = "'STOPPED'", CLOSED },
    { "the server closed e1's registration", WAIT_EOF(1), .expect = NOTHING, CLOSED },
    { "register e2", V6("e2"), KEEP(2), .expect = OK6, OPEN },
    { "KILL with a live node: OK", "L 6b", .expect = "'OK'", CLOSED },
    { "the server exits with status 0", SERVER_EXITS_0 },
};

START_TEST(test_relaxed_env)
{
    setenv("ERL_EPMD_RELAXED_COMMAND_CHECK", "", 1);
    start_both(STRICT);
    unsetenv("ERL_EPMD_RELAXED_COMMAND_CHECK");
    play_both(stop_env_script, NSTEPS(stop_env_script), NULL, NULL);
}
END_TEST

/* ---- IPv6 loopback: ::1 is a local peer like 127.0.0.1 ------------------------ */

#define V6PEER .v6 = 1
static const es_step ipv6_script[] = {
    { "ALIVE2 over ::1: registered", V6("six"), V6PEER, KEEP(1), .expect = OK6, OPEN },
    { "PORT2 over 127.0.0.1: found", PORT2("six"), .expect = FOUND6("six"), CLOSED },
    { "PORT2 over ::1: found", PORT2("six"), V6PEER, .expect = FOUND6("six"), CLOSED },
    { "NAMES over ::1", "L 6e", V6PEER, .expect = NAMES_HDR NAMES_LINE("six"), CLOSED },
    { "DUMP over ::1 (a local-only command)", "L 64", V6PEER,
      .expect = NAMES_HDR DUMP_ACTIVE("six"), CLOSED },
    { "duplicate over 127.0.0.1: error", V6("six"), .expect = ERR6, OPEN },
    { "STOP over ::1 (relaxed): STOPPED", "L 73 'six'", V6PEER, .expect = "'STOPPED'",
      CLOSED },
    { "the server closed the ::1 registration", WAIT_EOF(1), .expect = NOTHING, CLOSED },
    { "KILL over ::1 (relaxed): OK", "L 6b", V6PEER, .expect = "'OK'", CLOSED },
    { "the server exits with status 0", SERVER_EXITS_0 },
};

START_TEST(test_ipv6)
{
    int fd = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        fprintf(stderr, "epmd_interop: no IPv6 here, ipv6 test skipped\n");
        return;
    }
    close(fd);
    interop(RELAXED, ipv6_script, NSTEPS(ipv6_script));
}
END_TEST

/* ---- framing ------------------------------------------------------------------- */

static const es_step framing_script[] = {
    { "Len 0: closed, no reply", "0000", .expect = NOTHING, CLOSED },
    { "Len 0 followed by a byte: closed", "0000 6e", .expect = NOTHING, CLOSED },
    { "Len 65535: closed", "ffff", .expect = NOTHING, CLOSED },
    { "Len 3058, header only: closed", "0bf2", .expect = NOTHING, CLOSED },
    { "Len 3058 with its body: closed", "0bf2 6e 00*3057", .expect = NOTHING, CLOSED },
    { "Len 3057: NAMES with 3056 bytes of padding is served",
      "0bf1 6e 00*3056", .expect = NAMES_HDR, CLOSED },
    { "Len 3057, header only: the server waits",
      "0bf1", QUIET(500), .expect = NOTHING, OPEN },
    { "Len 5 and 3 bytes of body: the server waits",
      "0005 7a 'ab'", QUIET(500), .expect = NOTHING, OPEN },
    { "a single byte: the server waits", "00", QUIET(500), .expect = NOTHING, OPEN },
    { "unknown command 'a' (old ALIVE): closed, no reply",
      "L 61 04d2 'foo'", .expect = NOTHING, CLOSED },
    { "unknown command 'p' (old PORT_PLEASE): closed, no reply",
      "L 70 'foo'", .expect = NOTHING, CLOSED },
    { "command 00: closed", "L 00", .expect = NOTHING, CLOSED },
    { "command ff: closed", "L ff 'x'", .expect = NOTHING, CLOSED },
    { "command 'N' (upper case): closed", "L 4e", .expect = NOTHING, CLOSED },
    { "command 'X' (an upper-case ALIVE2): closed",
      "L 58 04d2 4d 00 0006 0005 @'up' @''", .expect = NOTHING, CLOSED },
    { "two NAMES in one write: closed, no reply",
      "L 6e", TRAIL("L 6e"), .expect = NOTHING, CLOSED },
    { "NAMES and one byte more: closed, no reply",
      "L 6e", TRAIL("00"), .expect = NOTHING, CLOSED },
    { "ALIVE2 with a PORT2 pipelined: closed, no reply",
      V6("pipe"), TRAIL(PORT2("pipe")), .expect = NOTHING, CLOSED },
    { "... and 'pipe' was not registered", PORT2("pipe"), .expect = NOTFOUND, CLOSED },
    { "ALIVE2 byte by byte: registered", V6("slow"), BYTES, KEEP(1), .expect = OK6, OPEN },
    { "PORT2 byte by byte: found", PORT2("slow"), BYTES, .expect = FOUND6("slow"), CLOSED },
    { "Len 3058 byte by byte: closed after the header",
      "0bf2 6e 00", BYTES, .expect = NOTHING, CLOSED },
    { "Len 0 byte by byte: closed", "0000 6e", BYTES, .expect = NOTHING, CLOSED },
    { "NAMES then FIN: served", "L 6e", THEN_FIN,
      .expect = NAMES_HDR NAMES_LINE("slow"), CLOSED },
    { "PORT2 then FIN: served", PORT2("slow"), THEN_FIN, .expect = FOUND6("slow"), CLOSED },
    { "half a request then FIN: closed, no reply", "0005 7a", THEN_FIN,
      .expect = NOTHING, CLOSED },
    { "ALIVE2 then FIN: registered, answered, then unregistered by the FIN",
      V6("fin"), THEN_FIN, .expect = OK6, CLOSED },
    { "... 'fin' is not registered", PORT2("fin"), .expect = NOTFOUND, CLOSED },
    /* Two connections interleaved: each keeps its own half request. */
    { "connection 2: Len 5 only", "0005", KEEP(2), QUIET(200), .expect = NOTHING, OPEN },
    { "connection 3: half an ALIVE2", "000f 78 04d2 4d 00", KEEP(3), QUIET(200),
      .expect = NOTHING, OPEN },
    { "meanwhile a NAMES on a third connection",
      "L 6e", .expect = NAMES_HDR NAMES_LINE("slow"), CLOSED },
    { "connection 2 completes its PORT2 'slow'", "7a 'slow'", SEND_ON(2),
      .expect = FOUND6("slow"), CLOSED },
    { "connection 3 completes the ALIVE2 of 'pq'", "0006 0005 @'pq' @''", SEND_ON(3),
      .expect = OK6, OPEN },
    { "PORT2 'pq': found", PORT2("pq"), .expect = FOUND6("pq"), CLOSED },
    /* OTP reads only up to Len once it knows Len (S:do_read): bytes beyond
     * Len that arrive in a LATER read than the header are not read at all,
     * so the request is served (and the close becomes a reset).  Bytes
     * beyond Len in the SAME read as the header close without a reply. */
    { "quirk: Len 1 alone...", "0001", KEEP(4), QUIET(200), .expect = NOTHING, OPEN },
    { "... then 'n' and one byte beyond Len: served",
      "6e 6e", SEND_ON(4), .expect = NAMES_HDR NAMES_LINE("pq") NAMES_LINE("slow"),
      CLOSED },
    { "quirk: one byte of Len alone...", "00", KEEP(5), QUIET(200), .expect = NOTHING, OPEN },
    { "... then the rest of Len, 'n' and one byte more: closed, no reply",
      "01 6e 6e", SEND_ON(5), .expect = NOTHING, CLOSED },
    { "quirk: an ALIVE2 header alone...", "000f", KEEP(6), QUIET(200),
      .expect = NOTHING, OPEN },
    { "... then its body and a PORT2: registered, then unregistered by the PORT2 bytes",
      "78 04d2 4d 00 0006 0005 @'pp' @'' 0003 7a 'pp'", SEND_ON(6), .expect = OK6, CLOSED },
    { "... 'pp' is not registered", PORT2("pp"), .expect = NOTFOUND, CLOSED },
};

START_TEST(test_framing)
{
    interop(STRICT, framing_script, NSTEPS(framing_script));
}
END_TEST

/* ---- packet timeout -------------------------------------------------------------- */

/* With -packet_timeout 2 both servers close idle half-requests after 2 to 5
 * seconds, measured from the last byte received; registrations never time
 * out.  Both servers are measured at the same time. */
enum { TO_NOTHING, TO_ONE_BYTE, TO_PARTIAL, TO_RESET, TO_REG, TO_N };
static const char *const to_desc[TO_N] = {
    "connection that sent nothing",
    "connection that sent 1 byte (half a Len)",
    "connection that sent Len 5 and 2 bytes of body",
    "connection that sent 1 byte, then another 1.5 s later",
    "registration (ALIVE2, reply read)",
};

typedef struct to_conn {
    int fd;
    long long last_send;    /* ms */
    long long closed_at;    /* ms, 0 = still open */
    int pending_second;     /* TO_RESET: second byte not yet sent */
} to_conn;

static void timeout_open(es_server *s, to_conn c[TO_N])
{
    long long now = tu_now_ms();
    for (int i = 0; i < TO_N; i++) {
        c[i].fd = tu_connect(s->port);
        ck_assert_msg(c[i].fd >= 0, "%s: connect failed", s->name);
        c[i].closed_at = 0;
        c[i].pending_second = 0;
    }
    ck_assert_int_eq(tu_write_all(c[TO_ONE_BYTE].fd, "\x00", 1), 0);
    ck_assert_int_eq(tu_write_all(c[TO_PARTIAL].fd, "\x00\x05zab", 4), 0);
    ck_assert_int_eq(tu_write_all(c[TO_RESET].fd, "\x00", 1), 0);
    c[TO_RESET].pending_second = 1;
    es_buf req = { 0 };
    char err[128];
    ck_assert_int_eq(es_bytes(V6("tmo"), &req, err, sizeof err), 0);
    ck_assert_int_eq(tu_write_all(c[TO_REG].fd, req.b, req.n), 0);
    es_buf_free(&req);
    uint8_t rep[6];
    ck_assert_msg(tu_read_exact(c[TO_REG].fd, rep, 6, 5000) == 0 && rep[0] == 'v' &&
                  rep[1] == 0, "%s: registration failed", s->name);
    now = tu_now_ms();
    for (int i = 0; i < TO_N; i++)
        c[i].last_send = now;
}

/* Poll both servers' connections until every non-registration connection
 * closed or 8 s passed; send the delayed byte at 1.5 s. */
static void timeout_watch(to_conn c[2][TO_N], long long t0)
{
    long long end = t0 + 8000;
    for (;;) {
        long long now = tu_now_ms();
        int open = 0;
        struct pollfd pf[2 * TO_N];
        int idx[2 * TO_N], np = 0;
        for (int s = 0; s < 2; s++)
            for (int i = 0; i < TO_N; i++) {
                to_conn *k = &c[s][i];
                if (k->pending_second && now >= t0 + 1500) {
                    if (write(k->fd, "\x05", 1) == 1)
                        k->last_send = tu_now_ms();
                    k->pending_second = 0;
                }
                if (k->closed_at || k->fd < 0)
                    continue;
                if (i != TO_REG)
                    open++;
                pf[np].fd = k->fd;
                pf[np].events = POLLIN;
                pf[np].revents = 0;
                idx[np++] = s * TO_N + i;
            }
        if (!open || now >= end)
            break;
        int r = poll(pf, (nfds_t)np, 20);
        if (r <= 0)
            continue;
        for (int j = 0; j < np; j++) {
            if (!pf[j].revents)
                continue;
            to_conn *k = &c[idx[j] / TO_N][idx[j] % TO_N];
            char b[64];
            ssize_t n = read(k->fd, b, sizeof b);
            if (n <= 0)
                k->closed_at = tu_now_ms();
            else if (idx[j] % TO_N != TO_REG)
                k->closed_at = -1;   /* bytes where none are due: a reply */
        }
    }
}

START_TEST(test_packet_timeout)
{
    static const char *const opts[] = { "-packet_timeout", "2", NULL };
    start_both(opts);
    es_server *srv[2] = { &otp, &ours };
    to_conn c[2][TO_N];
    long long t0 = tu_now_ms();
    int nsrv = otp_only() ? 1 : 2;
    timeout_open(&otp, c[0]);
    if (nsrv == 2)
        timeout_open(&ours, c[1]);
    else
        for (int i = 0; i < TO_N; i++)
            c[1][i] = (to_conn){ .fd = -1 };
    timeout_watch(c, t0);
    char *rep = NULL;
    int bad = 0;
    for (int s = 0; s < nsrv; s++) {
        for (int i = 0; i < TO_N; i++) {
            to_conn *k = &c[s][i];
            long ms = k->closed_at > 0 ? (long)(k->closed_at - k->last_send) : -1;
            fprintf(stderr, "packet_timeout 2: %-9s %-50s %s %ld ms\n", srv[s]->name,
                    to_desc[i], k->closed_at > 0 ? "closed after" : "open/odd",
                    ms);
            if (i == TO_REG) {
                if (k->closed_at) {
                    es_appendf(&rep, "%s: the registration was closed (%ld ms)\n",
                               srv[s]->name, ms);
                    bad++;
                }
            } else if (k->closed_at == -1) {
                es_appendf(&rep, "%s: %s: got bytes, expected a silent close\n",
                           srv[s]->name, to_desc[i]);
                bad++;
            } else if (k->closed_at == 0 || ms < 1900 || ms > 5000) {
                es_appendf(&rep, "%s: %s: closed after %ld ms, expected 2000-5000\n",
                           srv[s]->name, to_desc[i], ms);
                bad++;
            }
            if (k->fd >= 0)
                close(k->fd);
        }
    }
    if (bad)
        fail_report("packet timeout", bad, rep);
    free(rep);
}
END_TEST

/* A request dripped one byte a second with -packet_timeout 1 is served:
 * epmd closes only once its whole-second clock shows more than N seconds
 * of silence, checked at its wake-ups, so a gap of N s never closes.
 * (OTP's epmd_SUITE slow_get_port_nr does this.)  Both servers at once. */
START_TEST(test_packet_timeout_drip)
{
    static const char *const opts[] = { "-packet_timeout", "1", NULL };
    start_both(opts);
    es_server *srv[2] = { &otp, &ours };
    int nsrv = otp_only() ? 1 : 2;
    static const uint8_t req[] = { 0, 5, 'z', 'n', 'o', 'p', 'e' };   /* PORT2 "nope" */
    int fd[2] = { -1, -1 };
    for (int k = 0; k < nsrv; k++) {
        fd[k] = tu_connect(srv[k]->port);
        ck_assert_int_ge(fd[k], 0);
        ck_assert_int_eq(tu_write_all(fd[k], req, 3), 0);
    }
    for (size_t i = 3; i < sizeof req; i++) {
        tu_sleep_ms(1000);   /* the drip rate under test, not a synchronization */
        for (int k = 0; k < nsrv; k++)
            ck_assert_msg(tu_write_all(fd[k], req + i, 1) == 0, "%s: closed after %zu bytes "
                          "sent a second apart with -packet_timeout 1", srv[k]->name, i);
    }
    for (int k = 0; k < nsrv; k++) {
        uint8_t rep[2];
        ck_assert_msg(tu_read_exact(fd[k], rep, 2, 5000) == 0 && rep[0] == 0x77 && rep[1] == 1,
                      "%s: PORT2 sent a byte a second with -packet_timeout 1 got no "
                      "'not found' reply", srv[k]->name);
        close(fd[k]);
    }
}
END_TEST

/* ---- -delay_write / -delay_accept (epmd's "busy server" knobs) -------------------
 * OTP sleeps N s before every write (so a NAMES with k nodes costs k+1
 * sleeps) and, with -delay_accept, N s after EVERY wake-up of its select
 * loop, so a request costs about 2N s (one wake-up to accept, one to read).
 * Both must reply the same bytes, no sooner than N s. */
static const es_step delay_script[] = {
    { "PORT2 not found, delayed", PORT2("nope"), .expect = NOTFOUND, CLOSED },
    { "NAMES (nothing registered), delayed", "L 6e", .expect = NAMES_HDR, CLOSED },
};

static void delay_case(const char *opt)
{
    const char *const opts[] = { opt, "1", NULL };
    start_both(opts);
    es_play po, pu;
    play_both(delay_script, NSTEPS(delay_script), &po, &pu);
    int nsrv = otp_only() ? 1 : 2;
    const es_play *pl[2] = { &po, &pu };
    char *rep = NULL;
    int bad = 0;
    for (int k = 0; k < nsrv; k++)
        for (size_t i = 0; i < NSTEPS(delay_script); i++) {
            long ms = pl[k]->out[i].ms;
            fprintf(stderr, "%s 1: %-9s %-40s replied after %ld ms\n", opt,
                    pl[k]->srv->name, delay_script[i].desc, ms);
            if (ms < 900 || ms > 6000) {
                es_appendf(&rep, "%s 1: %s: \"%s\" took %ld ms, expected 1000..6000\n",
                           opt, pl[k]->srv->name, delay_script[i].desc, ms);
                bad++;
            }
        }
    es_play_free(&po);
    if (!otp_only())
        es_play_free(&pu);
    if (bad)
        fail_report("delay option", bad, rep);
    free(rep);
}

START_TEST(test_delay_write)
{
    delay_case("-delay_write");
}
END_TEST

START_TEST(test_delay_accept)
{
    delay_case("-delay_accept");
}
END_TEST

/* ---- creation counter ------------------------------------------------------------ */

static const es_step creation_script[] = {
    /* 0 */ { "c (v6) first registration", V6("c"), KEEP(1), .expect = OK6, OPEN },
    /* 1 */ { "unregister", HALFCLOSE(1) },
    /* 2 */ { "c (v6) again: +1", V6("c"), KEEP(1), .expect = OK6, OPEN },
    /* 3 */ { "unregister", HALFCLOSE(1) },
    /* 4 */ { "c (v6) again: +1", V6("c"), KEEP(1), .expect = OK6, OPEN },
    /* 5 */ { "unregister", HALFCLOSE(1) },
    /* 6 */ { "c (v5): counter % 3 + 1", V5("c"), KEEP(1), .expect = OK5, OPEN },
    /* 7 */ { "unregister", HALFCLOSE(1) },
    /* 8 */ { "c (v5)", V5("c"), KEEP(1), .expect = OK5, OPEN },
    /* 9 */ { "unregister", HALFCLOSE(1) },
    /* 10 */ { "c (v5)", V5("c"), KEEP(1), .expect = OK5, OPEN },
    /* 11 */ { "unregister", HALFCLOSE(1) },
    /* 12 */ { "c (v5)", V5("c"), KEEP(1), .expect = OK5, OPEN },
    /* 13 */ { "unregister", HALFCLOSE(1) },
    /* 14 */ { "c (v6) again: the counter went on under v5", V6("c"), KEEP(1),
               .expect = OK6, OPEN },
    /* 15 */ { "d (v5) first registration", V5("d"), KEEP(2), .expect = OK5, OPEN },
    /* 16 */ { "unregister", HALFCLOSE(2) },
    /* 17 */ { "d (v5)", V5("d"), KEEP(2), .expect = OK5, OPEN },
    /* 18 */ { "unregister", HALFCLOSE(2) },
    /* 19 */ { "d (v5)", V5("d"), KEEP(2), .expect = OK5, OPEN },
    /* 20 */ { "unregister", HALFCLOSE(2) },
    /* 21 */ { "d (v5)", V5("d"), KEEP(2), .expect = OK5, OPEN },
    /* 22 */ { "a failed duplicate does not move the counter", V6("c"),
               .expect = ERR6, OPEN },
    /* 23 */ { "unregister c", HALFCLOSE(1) },
    /* 24 */ { "c (v6): +1 from step 15", V6("c"), KEEP(1), .expect = OK6, OPEN },
};

/* Check the shape of the creation sequence of one server; returns the
 * number of problems, described in *rep. */
static int creation_shape(const es_play *p, time_t t_before, time_t t_after, char **rep)
{
    const char *n = p->srv->name;
    long long c0 = es_creation(&p->out[0]);
    int bad = 0;
#define EXPECT(cond, ...) do { if (!(cond)) { es_appendf(rep, __VA_ARGS__); bad++; } } while (0)
    EXPECT(c0 >= (long long)t_before + 1 - 2 && c0 <= (long long)t_after + 1 + 2,
           "%s: a new name got creation %lld, expected time()+1 (%lld..%lld)\n", n, c0,
           (long long)t_before + 1, (long long)t_after + 1);
    EXPECT(es_creation(&p->out[2]) == c0 + 1, "%s: re-registration (v6) gave %lld, "
           "expected %lld\n", n, es_creation(&p->out[2]), c0 + 1);
    EXPECT(es_creation(&p->out[4]) == c0 + 2, "%s: third registration (v6) gave %lld, "
           "expected %lld\n", n, es_creation(&p->out[4]), c0 + 2);
    for (int k = 0; k < 4; k++) {
        long long want = (c0 + 3 + k) % 3 + 1;
        long long got = es_creation(&p->out[6 + 2 * k]);
        EXPECT(got == want, "%s: v5 registration %d gave %lld, expected (counter %lld) "
               "%% 3 + 1 = %lld\n", n, k + 1, got, c0 + 3 + k, want);
    }
    EXPECT(es_creation(&p->out[14]) == c0 + 7, "%s: v6 after four v5 gave %lld, "
           "expected %lld\n", n, es_creation(&p->out[14]), c0 + 7);
    long long d0 = es_creation(&p->out[15]);
    EXPECT(d0 >= 1 && d0 <= 3, "%s: v5 creation %lld out of 1..3\n", n, d0);
    long long prev = d0;
    for (int k = 1; k < 4; k++) {
        long long got = es_creation(&p->out[15 + 2 * k]);
        EXPECT(got == prev % 3 + 1, "%s: v5 sequence: %lld after %lld, expected %lld\n",
               n, got, prev, prev % 3 + 1);
        prev = got;
    }
    EXPECT(es_creation(&p->out[24]) == c0 + 8, "%s: v6 after a failed duplicate gave "
           "%lld, expected %lld\n", n, es_creation(&p->out[24]), c0 + 8);
#undef EXPECT
    return bad;
}

START_TEST(test_creation)
{
    start_both(STRICT);
    time_t t_before = time(NULL);
    es_play po, pu;
    play_both(creation_script, NSTEPS(creation_script), &po, &pu);
    time_t t_after = time(NULL);
    char *rep_otp = NULL, *rep_ours = NULL;
    int b1 = creation_shape(&po, t_before, t_after, &rep_otp);
    int b2 = otp_only() ? 0 : creation_shape(&pu, t_before, t_after, &rep_ours);
    es_play_free(&po);
    es_play_free(&pu);
    if (b1)
        fail_report("OTP's creation sequence is not what the script says", b1, rep_otp);
    if (b2)
        fail_report("epmdpxy's creation sequence differs from OTP's", b2, rep_ours);
    free(rep_otp);
    free(rep_ours);
}
END_TEST

/* ---- the FIFO of unused names with -d ---------------------------------------------
 * Measured on OTP 25.2.3: with -d a new name takes over the oldest unused
 * entry once there are MORE than 5 unused entries (so 6 are kept), and it
 * keeps that entry's counter unchanged (no +1).  The check happens only at
 * registration: names registered while 5 or fewer are unused each get a new
 * entry, so the list can grow beyond 6. */
static const es_step fifo_debug_script[] = {
    /* 0..9: a0 registered 5 times, so its counter is ahead of the others */
    { "a0 #1", V6("a0"), KEEP(1), .expect = OK6, OPEN }, { "unregister", HALFCLOSE(1) },
    { "a0 #2", V6("a0"), KEEP(1), .expect = OK6, OPEN }, { "unregister", HALFCLOSE(1) },
    { "a0 #3", V6("a0"), KEEP(1), .expect = OK6, OPEN }, { "unregister", HALFCLOSE(1) },
    { "a0 #4", V6("a0"), KEEP(1), .expect = OK6, OPEN }, { "unregister", HALFCLOSE(1) },
    { "a0 #5", V6("a0"), KEEP(1), .expect = OK6, OPEN }, { "unregister", HALFCLOSE(1) },
    /* 10..19 */
    { "a1", V6("a1"), KEEP(1), .expect = OK6, OPEN }, { "unregister", HALFCLOSE(1) },
    { "a2", V6("a2"), KEEP(1), .expect = OK6, OPEN }, { "unregister", HALFCLOSE(1) },
    { "a3", V6("a3"), KEEP(1), .expect = OK6, OPEN }, { "unregister", HALFCLOSE(1) },
    { "a4", V6("a4"), KEEP(1), .expect = OK6, OPEN }, { "unregister", HALFCLOSE(1) },
    { "a5", V6("a5"), KEEP(1), .expect = OK6, OPEN }, { "unregister", HALFCLOSE(1) },
    /* 20 */
    { "DUMP: six unused entries, oldest first",
      "L 64", .expect = NAMES_HDR DUMP_OLD("a0") DUMP_OLD("a1") DUMP_OLD("a2")
          DUMP_OLD("a3") DUMP_OLD("a4") DUMP_OLD("a5"), CLOSED },
    /* 21 */
    { "new name 'new': takes over a0's entry", V6("new"), KEEP(1), .expect = OK6, OPEN },
    /* 22 */
    { "DUMP: a0 is gone",
      "L 64", .expect = NAMES_HDR DUMP_ACTIVE("new") DUMP_OLD("a1") DUMP_OLD("a2")
          DUMP_OLD("a3") DUMP_OLD("a4") DUMP_OLD("a5"), CLOSED },
    /* 23..25: 5 unused, so these three get entries of their own */
    { "x1 while 5 are unused", V6("x1"), KEEP(2), .expect = OK6, OPEN },
    { "x2", V6("x2"), KEEP(3), .expect = OK6, OPEN },
    { "x3", V6("x3"), KEEP(4), .expect = OK6, OPEN },
    /* 26..29 */
    { "unregister new", HALFCLOSE(1) }, { "unregister x1", HALFCLOSE(2) },
    { "unregister x2", HALFCLOSE(3) }, { "unregister x3", HALFCLOSE(4) },
    /* 30 */
    { "DUMP: nine unused entries",
      "L 64", .expect = NAMES_HDR DUMP_OLD("a1") DUMP_OLD("a2") DUMP_OLD("a3")
          DUMP_OLD("a4") DUMP_OLD("a5") DUMP_OLD("new") DUMP_OLD("x1")
          DUMP_OLD("x2") DUMP_OLD("x3"), CLOSED },
    /* 31 */
    { "new name 'y': takes over a1's entry", V5("y"), KEEP(5), .expect = OK5, OPEN },
    /* 32 */
    { "new name 'z': takes over a2's entry", V6("z"), KEEP(6), .expect = OK6, OPEN },
    /* 33 */
    { "a3 again: its own entry, +1", V6("a3"), KEEP(7), .expect = OK6, OPEN },
    /* 34 */
    { "DUMP",
      "L 64", .expect = NAMES_HDR DUMP_ACTIVE("a3") DUMP_ACTIVE("z") DUMP_ACTIVE("y")
          DUMP_OLD("a4") DUMP_OLD("a5") DUMP_OLD("new") DUMP_OLD("x1")
          DUMP_OLD("x2") DUMP_OLD("x3"), CLOSED },
};

static int fifo_shape(const es_play *p, char **rep)
{
    const char *n = p->srv->name;
    int bad = 0;
    long long a0 = es_creation(&p->out[8]), a1 = es_creation(&p->out[10]),
              a2 = es_creation(&p->out[12]), a3 = es_creation(&p->out[14]),
              nw = es_creation(&p->out[21]), y = es_creation(&p->out[31]),
              z = es_creation(&p->out[32]), a3b = es_creation(&p->out[33]);
    if (nw != a0) {
        es_appendf(rep, "%s: 'new' got %lld; a0's last creation was %lld (OTP keeps "
                   "it unchanged)\n", n, nw, a0);
        bad++;
    }
    if (y != a1 % 3 + 1) {
        es_appendf(rep, "%s: 'y' (v5) got %lld; a1's counter %lld %% 3 + 1 = %lld\n",
                   n, y, a1, a1 % 3 + 1);
        bad++;
    }
    if (z != a2) {
        es_appendf(rep, "%s: 'z' got %lld; a2's counter was %lld\n", n, z, a2);
        bad++;
    }
    if (a3b != a3 + 1) {
        es_appendf(rep, "%s: a3 again got %lld, expected %lld\n", n, a3b, a3 + 1);
        bad++;
    }
    fprintf(stderr, "fifo -d %-9s a0=%lld a1=%lld a2=%lld new=%lld y(v5)=%lld z=%lld\n",
            n, a0, a1, a2, nw, y, z);
    return bad;
}

START_TEST(test_fifo_debug)
{
    static const char *const opts[] = { "-d", NULL };
    start_both(opts);
    es_play po, pu;
    play_both(fifo_debug_script, NSTEPS(fifo_debug_script), &po, &pu);
    char *r1 = NULL, *r2 = NULL;
    int b1 = fifo_shape(&po, &r1), b2 = otp_only() ? 0 : fifo_shape(&pu, &r2);
    es_play_free(&po);
    es_play_free(&pu);
    if (b1)
        fail_report("OTP's -d FIFO is not what the script says", b1, r1);
    if (b2)
        fail_report("epmdpxy's -d FIFO differs from OTP's", b2, r2);
    free(r1);
    free(r2);
}
END_TEST

/* ---- the FIFO of 1000 unused names (no -d) -----------------------------------------
 * 1001 names registered and unregistered one after the other: all 1001 stay
 * (the take-over starts only with MORE than 1000 unused); the next new name
 * takes over the oldest entry and its counter.  Generated, not a table. */
#define FIFO_N 1001
START_TEST(test_fifo_1000)
{
    size_t n = 2 * FIFO_N + 4;
    es_step *steps = calloc(n, sizeof *steps);
    char (*reqs)[64] = calloc(FIFO_N + 1, sizeof *reqs);
    ck_assert_ptr_nonnull(steps);
    size_t k = 0;
    for (int i = 0; i < FIFO_N; i++) {
        snprintf(reqs[i], sizeof reqs[i], V6T("'n%04d'"), i);
        steps[k++] = (es_step){ "register nNNNN", reqs[i], KEEP(1), .expect = OK6, OPEN,
                                .settle_ms = -1 };
        steps[k++] = (es_step){ "unregister it", HALFCLOSE(1) };
    }
    size_t dump1 = k;
    steps[k++] = (es_step){ "DUMP: 1001 unused entries", "L 64", CLOSED };
    size_t fresh = k;
    steps[k++] = (es_step){ "new name: takes over n0000's entry", V6("fresh"), KEEP(2),
                            .expect = OK6, OPEN };
    size_t dump2 = k;
    steps[k++] = (es_step){ "DUMP: fresh active, n0001..n1000 unused", "L 64", CLOSED };
    steps[k++] = (es_step){ "PORT2 n0000: not found", PORT2("n0000"),
                            .expect = NOTFOUND, CLOSED };
    ck_assert_uint_eq(k, n);
    start_both(STRICT);
    es_play po, pu;
    play_both(steps, n, &po, &pu);
    /* the 1001 unused entries are all listed; then n0000 is gone */
    const es_play *pl[2] = { &po, &pu };
    char *rep = NULL;
    int bad = 0;
    for (int s = 0; s < (otp_only() ? 1 : 2); s++) {
        const es_play *p = pl[s];
        size_t lines = 0;
        const es_buf *d = &p->out[dump1].raw;
        for (size_t i = 4; i < d->n; i++)   /* after the port word */
            lines += d->b[i] == 0;
        if (lines != FIFO_N) {
            es_appendf(&rep, "%s: first DUMP has %zu lines, expected %d\n",
                       p->srv->name, lines, FIFO_N);
            bad++;
        }
        d = &p->out[dump2].raw;
        if (memmem(d->b, d->n, "<n0000>", 7) || !memmem(d->b, d->n, "<n1000>", 7)) {
            es_appendf(&rep, "%s: second DUMP still lists n0000 or lost n1000\n",
                       p->srv->name);
            bad++;
        }
        long long c0 = es_creation(&p->out[0]), cf = es_creation(&p->out[fresh]);
        if (c0 != cf) {
            es_appendf(&rep, "%s: 'fresh' got creation %lld, n0000 had %lld\n",
                       p->srv->name, cf, c0);
            bad++;
        }
    }
    es_play_free(&po);
    es_play_free(&pu);
    free(steps);
    free(reqs);
    if (bad)
        fail_report("FIFO of 1000", bad, rep);
    free(rep);
}
END_TEST

/* ---- suite ---------------------------------------------------------------------------- */

#define TC(s, name, fn, timeout) do {                       \
        TCase *c_ = tcase_create(name);                         \
        tcase_add_checked_fixture(c_, setup, teardown);         \
        tcase_set_timeout(c_, timeout);                         \
        tcase_add_test(c_, fn);                                 \
        suite_add_tcase(s, c_);                                 \
    } while (0)

Suite *epmd_interop_suite(void)
{
    Suite *s = suite_create("epmd_interop");
    TC(s, "alive2", test_alive2, 60);
    TC(s, "lifetime", test_lifetime, 60);
    TC(s, "port2", test_port2, 60);
    TC(s, "names_dump", test_names_dump, 60);
    TC(s, "dump_old_fd", test_dump_old_fd, 60);
    TC(s, "startup_stdout", test_startup_stdout, 60);
    TC(s, "bind_repeated", test_bind_repeated, 60);
    TC(s, "help_lists_commands", test_help_lists_commands, 60);
    TC(s, "kill_empty", test_kill_empty, 60);
    TC(s, "kill_empty_relaxed", test_kill_empty_relaxed, 60);
    TC(s, "kill_live_strict", test_kill_live_strict, 60);
    TC(s, "kill_live_relaxed", test_kill_live_relaxed, 60);
    TC(s, "stop_relaxed", test_stop_relaxed, 60);
    TC(s, "stop_strict", test_stop_strict, 60);
    TC(s, "relaxed_env", test_relaxed_env, 60);
    TC(s, "ipv6", test_ipv6, 60);
    TC(s, "framing", test_framing, 60);
    TC(s, "packet_timeout", test_packet_timeout, 60);
    TC(s, "packet_timeout_drip", test_packet_timeout_drip, 60);
    TC(s, "delay_write", test_delay_write, 60);
    TC(s, "delay_accept", test_delay_accept, 60);
    TC(s, "creation", test_creation, 60);
    TC(s, "fifo_debug", test_fifo_debug, 60);
    TC(s, "fifo_1000", test_fifo_1000, 120);
    return s;
}
