/* Suite "slow": link faults on real OTP nodes through the relay.
 *
 *   delay_rtt           DELAY n1 n2 50ms: an erpc:call round trip from n1 to n2
 *                       takes at least 100 ms (and under a generous bound);
 *                       CLEAR makes it fast again; LINKS shows the delay
 *   rate_5mb            RATE n1 -> n2 1MB/s: a 5 MB call argument takes at
 *                       least 4 s (under a generous 12 s); the reply way is free
 *   delay_over_tick     a delay above net_ticktime brings n1 and n2 down;
 *                       CLEAR lets them reconnect
 *   delayed_and_cut     a delayed link can also be cut: CUT holds it, FIX lets
 *                       the calls through, still delayed
 *   order_intact        2000 messages and a 4 MB binary through DELAY+JITTER and
 *                       RATE arrive complete, once each and in order
 *   reset_after         RESET n1 n2 AFTER 64KB: the link is reset mid-transfer
 *                       (nodedown), the fault is spent, the nodes reconnect */
#include <check.h>

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "epx_fixture.h"
#include "testutil.h"
#include "tucase.h"

#define TCASE_S 120
#define WAIT_MS 20000

static epx_cluster *C;
static char buf[1 << 20];

static const char *node(int i)
{
    const char *n = epx_fixture_node(C, i);
    ck_assert_msg(n != NULL, "no node %d", i);
    return n;
}

static const char *ctl(const char *cmd)
{
    if (epx_fixture_control(C, cmd, buf, sizeof buf) != 0)
        ck_abort_msg("control %s: %s", cmd, epx_fixture_last_error());
    return buf;
}

__attribute__((format(printf, 4, 5)))
static void evalf(int i, char *out, size_t outlen, const char *fmt, ...)
{
    char expr[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(expr, sizeof expr, fmt, ap);
    va_end(ap);
    if (epx_fixture_eval(C, node(i), expr, out, outlen) != 0)
        ck_abort_msg("eval on %s of `%s`: %s", node(i), expr, epx_fixture_last_error());
}

/* Microseconds an erpc:call from n1 to n2 takes (the result must be ok). */
static long long rtt_us(void)
{
    char out[4096];
    evalf(1, out, sizeof out, "element(1, timer:tc(fun() -> erpc:call('%s', erlang, node, []) end))",
          node(2));
    return strtoll(out, NULL, 10);
}

static void setup(void)
{
    epx_options o = { 0 };
    o.no_preload = 1;
    o.timeout_ms = 60000;
    C = epx_fixture_start_cluster(2, &o);
    ck_assert_msg(C != NULL, "cluster: %s", epx_fixture_last_error());
}

static void teardown(void)
{
    epx_fixture_stop_cluster(C);
    C = NULL;
}

START_TEST(delay_rtt)
{
    long long before = rtt_us();
    ck_assert_int_eq(epx_fixture_delay(C, "n1 n2", 50, 0, 0), 0);
    ck_assert_ptr_nonnull(strstr(ctl("LINKS"), "\"delay_ms\":50"));
    for (int k = 0; k < 5; k++) {
        long long us = rtt_us();
        if (getenv("EPX_TIMING"))
            fprintf(stderr, "slow: round trip with DELAY 50ms both ways: %lld us\n", us);
        ck_assert_msg(us >= 100000, "round trip %lld us with 2 x 50 ms of delay", us);
        ck_assert_msg(us < 1000000, "round trip %lld us: far more than the delay", us);
    }
    ck_assert_int_eq(epx_fixture_clear(C, "n1 n2"), 0);
    long long after = rtt_us();
    ck_assert_msg(after < 50000, "after CLEAR a round trip took %lld us (before: %lld)", after,
                  before);
}
END_TEST

START_TEST(rate_5mb)
{
    char out[4096];
    ck_assert_int_eq(epx_fixture_rate(C, "n1 -> n2", 1000000, 0), 0);
    evalf(1, out, sizeof out,
          "begin B = binary:copy(<<7>>, 5000000), {T, 5000000} = timer:tc(fun() -> "
          "erpc:call('%s', erlang, byte_size, [B], 60000) end), T div 1000 end", node(2));
    long long ms = strtoll(out, NULL, 10);
    if (getenv("EPX_TIMING"))
        fprintf(stderr, "slow: 5 MB at RATE 1MB/s: %lld ms\n", ms);
    ck_assert_msg(ms >= 4000, "5 MB at 1 MB/s took only %lld ms", ms);
    ck_assert_msg(ms <= 12000, "5 MB at 1 MB/s took %lld ms", ms);
    /* the other way is not capped */
    evalf(2, out, sizeof out,
          "begin B = binary:copy(<<7>>, 5000000), {T, 5000000} = timer:tc(fun() -> "
          "erpc:call('%s', erlang, byte_size, [B], 60000) end), T div 1000 end", node(1));
    ck_assert_msg(strtoll(out, NULL, 10) < 3000, "n2 -> n1 took %s ms uncapped", out);
}
END_TEST

START_TEST(delay_over_tick)
{
    int tick = epx_fixture_net_ticktime(C);
    ck_assert_int_eq(epx_fixture_delay(C, "n1 n2", (tick + 3) * 1000, 0, 0), 0);
    ck_assert_msg(TU_WAIT_UNTIL(epx_fixture_sees(C, node(1), node(2)) == 0 &&
                                    epx_fixture_sees(C, node(2), node(1)) == 0,
                                (tick * 4 + 10) * 1000),
                  "still connected with a delay above net_ticktime");
    ck_assert_ptr_nonnull(strstr(ctl("EVENTS"), "\"type\":\"fault\""));
    ck_assert_int_eq(epx_fixture_clear(C, NULL), 0);
    ck_assert_str_eq(ctl("FAULTS"), "OK {\"links\":[],\"timed\":[],\"flaps\":[],\"nemesis\":null}");
    ck_assert(TU_WAIT_UNTIL(epx_fixture_connect_all(C) == 0 &&
                                epx_fixture_await_connected(C, 2000) == 0, WAIT_MS));
    ck_assert_msg(rtt_us() < 50000, "slow after CLEAR");
}
END_TEST

START_TEST(delayed_and_cut)
{
    char out[4096];
    ck_assert_int_eq(epx_fixture_delay(C, "n1 n2", 40, 0, 0), 0);
    ck_assert_int_eq(epx_fixture_cut(C, "n1 n2"), 0);
    /* a call across the cut does not come back while it holds */
    evalf(1, out, sizeof out, "catch erpc:call('%s', erlang, node, [], 500)", node(2));
    ck_assert_msg(strstr(out, "timeout") != NULL, "a call crossed the cut: %s", out);
    ck_assert_int_eq(epx_fixture_fix(C, "n1 n2"), 0);
    long long us = 0;
    ck_assert(TU_WAIT_UNTIL((us = rtt_us()) > 0, WAIT_MS));
    ck_assert_msg(us >= 80000, "after FIX the delay is gone: %lld us", us);
}
END_TEST

START_TEST(order_intact)
{
    char out[4096];
    /* a collector on n2, fed from n1 through a jittery, capped link */
    evalf(2, out, sizeof out,
          "begin Me = self(), spawn(fun() -> register(coll, self()), Me ! ok, "
          "(fun L(Acc) -> receive {n, I} -> L([I | Acc]); {bin, B} -> L([erlang:md5(B) | Acc]); "
          "{get, F} -> F ! {got, lists:reverse(Acc)}, L(Acc) end end)([]) end), "
          "receive ok -> ok end end");
    ctl("DELAY n1 -> n2 20ms JITTER 15ms");
    ctl("RATE n1 -> n2 4MB/s");
    evalf(1, out, sizeof out,
          "begin P = {coll, '%s'}, [P ! {n, I} || I <- lists:seq(1, 1000)], "
          "B = crypto:strong_rand_bytes(4000000), P ! {bin, B}, "
          "[P ! {n, I} || I <- lists:seq(1001, 2000)], binary:decode_unsigned(erlang:md5(B)) end",
          node(2));
    /* the digest as an integer: a binary prints as a string or as bytes
     * depending on its bytes and on what it stands in */
    static char md5[4096];
    memcpy(md5, out, sizeof md5);
    /* wait until the collector has all 2001 messages */
    ck_assert(TU_WAIT_UNTIL((epx_fixture_eval(C, node(2),
                                "begin coll ! {get, self()}, receive {got, L} -> length(L) after 5000 -> 0 end end",
                                out, sizeof out) == 0 && !strcmp(out, "2001")), 30000));
    evalf(2, out, sizeof out,
          "begin coll ! {get, self()}, receive {got, L} -> "
          "{Ns1, [M | Ns2]} = lists:splitwith(fun erlang:is_integer/1, L), "
          "{Ns1 =:= lists:seq(1, 1000), Ns2 =:= lists:seq(1001, 2000), binary:decode_unsigned(M)} "
          "after 5000 -> timeout end end");
    static char want[4200];
    snprintf(want, sizeof want, "{true,true,%s}", md5);
    ck_assert_str_eq(out, want);
}
END_TEST

START_TEST(reset_after)
{
    char out[4096];
    ck_assert_int_eq(epx_fixture_control(C, "RESET n1 n2 AFTER 64KB", out, sizeof out), 0);
    /* a 1 MB call cannot get through: the link is reset on the way */
    evalf(1, out, sizeof out,
          "catch erpc:call('%s', erlang, byte_size, [binary:copy(<<1>>, 1000000)], 10000)", node(2));
    ck_assert_msg(strstr(out, "noconnection") || strstr(out, "EXIT"), "call went through: %s", out);
    ck_assert_ptr_nonnull(strstr(ctl("EVENTS"), "\"type\":\"fault_reset\""));
    ck_assert_ptr_null(strstr(ctl("FAULTS"), "reset_after"));   /* spent */
    ck_assert(TU_WAIT_UNTIL(epx_fixture_connect_all(C) == 0 &&
                                epx_fixture_await_connected(C, 2000) == 0, WAIT_MS));
    evalf(1, out, sizeof out, "erpc:call('%s', erlang, byte_size, [binary:copy(<<1>>, 1000000)])",
          node(2));
    ck_assert_str_eq(out, "1000000");
}
END_TEST

Suite *slow_suite(void)
{
    Suite *s = suite_create("slow");
    struct {
        const char *name;
        const TTest *test;
    } cases[] = {
        { "delay_rtt", delay_rtt },           { "rate_5mb", rate_5mb },
        { "delay_over_tick", delay_over_tick }, { "delayed_and_cut", delayed_and_cut },
        { "order_intact", order_intact },     { "reset_after", reset_after },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        tu_add_case(s, cases[i].name, cases[i].test, TCASE_S, setup, teardown);
    return s;
}
