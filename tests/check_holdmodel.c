/* Suite "holdmodel": the hold model's schedules (proxy/holdmodel.c), pure:
 * when a stream that lost a segment resumes, when a held connection attempt
 * retries its SYN or fails, and the knobs' parsing. */
#include <check.h>
#include <string.h>

#include "holdmodel.h"
#include "testutil.h"
#include "tucase.h"

static hold_params P;

static void setup(void)
{
    hold_params_default(&P);
}

/* RTO0 210 ms doubling: 0.21, 0.63, 1.47, 3.15, 6.51 s after the loss. */
START_TEST(retx_points)
{
    static const long long pts[] = { 210, 630, 1470, 3150, 6510, 13230 };
    const long long t0 = 100000;
    for (size_t i = 0; i < sizeof pts / sizeof pts[0]; i++) {
        /* exactly at a point: that point; just after it: the next one */
        ck_assert_int_eq(hold_next_retx(&P, t0, t0 + pts[i]), t0 + pts[i]);
        if (i + 1 < sizeof pts / sizeof pts[0])
            ck_assert_int_eq(hold_next_retx(&P, t0, t0 + pts[i] + 1), t0 + pts[i + 1]);
    }
    /* before the first retransmission: the first */
    ck_assert_int_eq(hold_next_retx(&P, t0, t0), t0 + 210);
    ck_assert_int_eq(hold_next_retx(&P, t0, t0 - 50), t0 + 210);
}
END_TEST

/* The issue's rows: heals at 1.5, 2.0, 2.5 and 3.0 s all resume at the
 * fourth point (3.15 s); 3.3 and 3.9 s at the fifth, past the tick window. */
START_TEST(retx_issue_rows)
{
    const long long t0 = 5000;
    long long heals[] = { 1500, 2000, 2500, 3000 };
    for (int i = 0; i < 4; i++)
        ck_assert_int_eq(hold_next_retx(&P, t0, t0 + heals[i]) - t0, 3150);
    ck_assert_int_eq(hold_next_retx(&P, t0, t0 + 3300) - t0, 6510);
    ck_assert_int_eq(hold_next_retx(&P, t0, t0 + 3900) - t0, 6510);
}
END_TEST

/* Intervals are capped: after the cap every retransmission is rto_max
 * apart, also far out (no loop over every interval of a day). */
START_TEST(retx_cap)
{
    P.rto_ms = 200;
    P.rto_max_ms = 1000;
    /* 0.2, 0.6, 1.4, 2.4, 3.4, 4.4 ... */
    ck_assert_int_eq(hold_next_retx(&P, 0, 1401), 2400);
    ck_assert_int_eq(hold_next_retx(&P, 0, 2400), 2400);
    ck_assert_int_eq(hold_next_retx(&P, 0, 2401), 3400);
    ck_assert_int_eq(hold_next_retx(&P, 0, 86400000LL + 1), 86400400LL);
    P.rto_ms = 1;
    P.rto_max_ms = 1;
    ck_assert_int_eq(hold_next_retx(&P, 0, 86400000LL * 30), 86400000LL * 30);
    /* a cap below the first RTO caps the first too */
    P.rto_ms = 500;
    P.rto_max_ms = 300;
    ck_assert_int_eq(hold_next_retx(&P, 0, 1), 300);
    ck_assert_int_eq(hold_next_retx(&P, 0, 301), 600);
}
END_TEST

/* This kernel's SYN retries: 1, 2, 3, 4, 5, 7, 11, 19, 35 s. */
START_TEST(syn_points)
{
    const long long t0 = 1000000;
    ck_assert_int_eq(hold_next_syn(&P, t0, t0 + 1500), t0 + 2000);   /* ping-pending-1.5 */
    ck_assert_int_eq(hold_next_syn(&P, t0, t0 + 5500), t0 + 7000);   /* ping-pending-5.5 */
    ck_assert_int_eq(hold_next_syn(&P, t0, t0 + 7000), t0 + 7000);
    ck_assert_int_eq(hold_next_syn(&P, t0, t0 + 7001), t0 + 11000);
    ck_assert_int_eq(hold_next_syn(&P, t0, t0), t0 + 1000);
    ck_assert_int_eq(hold_next_syn(&P, t0, t0 + 35000), t0 + 35000);
    ck_assert_int_eq(hold_next_syn(&P, t0, t0 + 35001), -1);
    ck_assert_int_eq(hold_syn_give_up(&P, t0), t0 + 35000);
}
END_TEST

START_TEST(syn_parse)
{
    char err[160];
    ck_assert_int_eq(hold_parse_syn(&P, "1,3,7,15,31,63", err, sizeof err), 0);
    ck_assert_int_eq(P.nsyn, 6);
    ck_assert_int_eq(P.syn_ms[5], 63000);
    ck_assert_int_eq(hold_next_syn(&P, 0, 3001), 7000);
    ck_assert_int_eq(hold_parse_syn(&P, "0.5,1.25", err, sizeof err), 0);
    ck_assert_int_eq(P.syn_ms[0], 500);
    ck_assert_int_eq(P.syn_ms[1], 1250);
    /* an empty schedule: an attempt across a block never retries */
    ck_assert_int_eq(hold_parse_syn(&P, "", err, sizeof err), 0);
    ck_assert_int_eq(hold_next_syn(&P, 0, 0), -1);
    hold_params before = P;
    static const char *bad[] = { "1,1", "2,1", "x", "1,,2", "1;2", "-1", "1,", "99999999",
                                 "1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17" };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        err[0] = 0;
        ck_assert_msg(hold_parse_syn(&P, bad[i], err, sizeof err) < 0, "accepted '%s'", bad[i]);
        ck_assert_msg(err[0], "no message for '%s'", bad[i]);
        ck_assert_msg(memcmp(&P, &before, sizeof P) == 0, "'%s' changed the schedule", bad[i]);
    }
}
END_TEST

START_TEST(knobs)
{
    char err[160], out[512];
    ck_assert_int_eq(hold_set(&P, "rto=200", 7, err, sizeof err), 0);
    ck_assert_int_eq(P.rto_ms, 200);
    ck_assert_int_eq(hold_set(&P, "grace_bytes=4096", 16, err, sizeof err), 0);
    ck_assert_int_eq(P.grace_bytes, 4096);
    ck_assert_int_eq(hold_set(&P, "syn=1,2", 7, err, sizeof err), 0);
    ck_assert_int_eq(P.nsyn, 2);
    ck_assert_int_eq(hold_set(&P, "held_bytes=0", 12, err, sizeof err), 0);
    ck_assert_int_eq(P.held_bytes, 0);
    ck_assert_int_eq(P.held_rcvbuf, 4096);   /* the default */
    ck_assert_int_eq(hold_set(&P, "held_rcvbuf=2048", 16, err, sizeof err), 0);
    ck_assert_int_eq(P.held_rcvbuf, 2048);
    hold_params before = P;
    static const char *bad[] = { "rto=0", "rto=", "rto", "nope=1", "grace=-1", "rto=1x",
                                 "rcvbuf=99999999999", "held_rcvbuf=-1" };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        ck_assert_msg(hold_set(&P, bad[i], strlen(bad[i]), err, sizeof err) < 0, "accepted '%s'",
                      bad[i]);
        ck_assert_msg(memcmp(&P, &before, sizeof P) == 0, "'%s' changed a knob", bad[i]);
    }
    /* only the given length counts */
    ck_assert_int_eq(hold_set(&P, "grace=15 trailing", 8, err, sizeof err), 0);
    ck_assert_int_eq(P.grace_ms, 15);
    int n = hold_format(&P, out, sizeof out);
    ck_assert_int_eq(n, (int)strlen(out));
    ck_assert_str_eq(out, "{\"rto\":200,\"rto_max\":120000,\"grace\":15,\"grace_bytes\":4096,"
                          "\"held_bytes\":0,\"rcvbuf\":0,\"mss\":1460,\"held_rcvbuf\":2048,"
                          "\"syn\":[1000,2000]}");
    /* too small a buffer: truncated, and the length it needs */
    char small[8];
    ck_assert_int_eq(hold_format(&P, small, sizeof small), n);
    ck_assert_uint_eq(strlen(small), sizeof small - 1);
}
END_TEST

Suite *holdmodel_suite(void)
{
    Suite *s = suite_create("holdmodel");
    struct { const char *name; const TTest *t; } cases[] = {
        { "retx_points", retx_points },   { "retx_issue_rows", retx_issue_rows },
        { "retx_cap", retx_cap },         { "syn_points", syn_points },
        { "syn_parse", syn_parse },       { "knobs", knobs },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        tu_add_case(s, cases[i].name, cases[i].t, 0, setup, NULL);
    return s;
}
