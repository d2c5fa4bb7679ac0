/* Suite "faults": the link-fault grammar, table and shaper, pure (no
 * sockets, the clock passed in).
 *
 *   units_*            durations, sizes and rates, their limits and refusals
 *   strip_for          a trailing FOR <d> comes off; FOR 0 and FOR x are errors
 *   flap_parse         UP/DOWN in either order; errors
 *   parse_*            DELAY/RATE/RESET/SLICE/SLOWCLOSE arguments, and refusals
 *   table_*            set, merge by kind, CLEAR exact, patterns, the limit,
 *                      timed undo restoring what a timed kind covered
 *   rules_tags         a timed CUT's pairs go, lasting pairs stay
 *   shaper_delay       bytes come out no earlier than their delay, in order; an
 *                      empty delay line holds no memory
 *   shaper_jitter      jitter spreads due times but never reorders bytes
 *   shaper_rate        a rate cap releases about rate bytes per second
 *   shaper_slice       slices of at most N bytes, gap apart
 *   shaper_bound       held bytes are bounded: room reaches 0 (backpressure)
 *   shaper_set_less    lowering the delay brings held bytes forward, in order */
#include <check.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl_parse.h"
#include "faults.h"
#include "rules.h"
#include "sbuf.h"
#include "shaper.h"
#include "units.h"

#define S(str) (str), strlen(str)

START_TEST(units_durations)
{
    long long ms;
    ck_assert_int_eq(units_duration(S("50ms"), &ms), 0);
    ck_assert_int_eq(ms, 50);
    ck_assert_int_eq(units_duration(S("2s"), &ms), 0);
    ck_assert_int_eq(ms, 2000);
    ck_assert_int_eq(units_duration(S("1.5s"), &ms), 0);
    ck_assert_int_eq(ms, 1500);
    ck_assert_int_eq(units_duration(S("2m"), &ms), 0);
    ck_assert_int_eq(ms, 120000);
    ck_assert_int_eq(units_duration(S("1H"), &ms), 0);
    ck_assert_int_eq(ms, 3600000);
    ck_assert_int_eq(units_duration(S("0ms"), &ms), 0);
    ck_assert_int_eq(ms, 0);
    const char *bad[] = { "", "50", "ms", "1.5ms", "-1s", "25h", "1.2345s", "1.s", "s1", "1 s",
                          "99999999999999s", "2sec" };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        ck_assert_msg(units_duration(S(bad[i]), &ms) < 0, "'%s' accepted", bad[i]);
    char out[32];
    units_fmt_duration(1500, out, sizeof out);
    ck_assert_str_eq(out, "1500ms");
    units_fmt_duration(120000, out, sizeof out);
    ck_assert_str_eq(out, "2m");
}
END_TEST

START_TEST(units_sizes_rates)
{
    uint64_t v;
    ck_assert_int_eq(units_size(S("64KB"), &v), 0);
    ck_assert_uint_eq(v, 64000);
    ck_assert_int_eq(units_size(S("64KiB"), &v), 0);
    ck_assert_uint_eq(v, 65536);
    ck_assert_int_eq(units_size(S("8b"), &v), 0);
    ck_assert_uint_eq(v, 8);
    ck_assert_int_eq(units_size(S("1.5MB"), &v), 0);
    ck_assert_uint_eq(v, 1500000);
    ck_assert_int_lt(units_size(S("1.5B"), &v), 0);
    ck_assert_int_lt(units_size(S("2TB"), &v), 0);
    ck_assert_int_lt(units_size(S("1001GB"), &v), 0);
    ck_assert_int_eq(units_rate(S("1MB/s"), &v), 0);
    ck_assert_uint_eq(v, 1000000);
    ck_assert_int_eq(units_rate(S("512KB/s"), &v), 0);
    ck_assert_uint_eq(v, 512000);
    ck_assert_int_eq(units_rate(S("8kbit/s"), &v), 0);
    ck_assert_uint_eq(v, 1000);
    ck_assert_int_eq(units_rate(S("10Mbit/s"), &v), 0);
    ck_assert_uint_eq(v, 1250000);
    ck_assert_int_eq(units_rate(S("1MiB/s"), &v), 0);
    ck_assert_uint_eq(v, 1048576);
    const char *bad[] = { "1MB", "1/s", "MB/s", "0MB/s", "4bit/s", "101GB/s", "1MB/h", "1 MB/s" };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        ck_assert_msg(units_rate(S(bad[i]), &v) < 0, "'%s' accepted", bad[i]);
}
END_TEST

START_TEST(strip_for)
{
    char err[256];
    long long ms = 0;
    size_t len;
    const char *a = "n1 n2 FOR 2s";
    len = strlen(a);
    ck_assert_int_eq(ctl_strip_for(a, &len, &ms, err, sizeof err), 1);
    ck_assert_int_eq(ms, 2000);
    ck_assert_int_eq((int)len, 5);
    a = "n1 n2 for  500ms  ";
    len = strlen(a);
    ck_assert_int_eq(ctl_strip_for(a, &len, &ms, err, sizeof err), 1);
    ck_assert_int_eq(ms, 500);
    ck_assert_int_eq((int)len, 5);
    a = "n1 n2";
    len = strlen(a);
    ck_assert_int_eq(ctl_strip_for(a, &len, &ms, err, sizeof err), 0);
    ck_assert_int_eq((int)len, 5);
    a = "n1 xFOR 2s";   /* not the word FOR */
    len = strlen(a);
    ck_assert_int_eq(ctl_strip_for(a, &len, &ms, err, sizeof err), 0);
    a = "n1 n2 FOR 0s";
    len = strlen(a);
    ck_assert_int_eq(ctl_strip_for(a, &len, &ms, err, sizeof err), -1);
    ck_assert_ptr_nonnull(strstr(err, "FOR"));
    a = "n1 n2 FOR x";
    len = strlen(a);
    ck_assert_int_eq(ctl_strip_for(a, &len, &ms, err, sizeof err), -1);
}
END_TEST

START_TEST(flap_parse)
{
    char err[256];
    size_t sl;
    long long up, down;
    const char *a = "n1 n2 UP 1s DOWN 500ms";
    ck_assert_int_eq(ctl_parse_flap(S(a), &sl, &up, &down, err, sizeof err), 0);
    ck_assert_int_eq(up, 1000);
    ck_assert_int_eq(down, 500);
    ck_assert_int_eq((int)sl, 5);
    a = "n1 -> n2 down 2s up 3s";
    ck_assert_int_eq(ctl_parse_flap(S(a), &sl, &up, &down, err, sizeof err), 0);
    ck_assert_int_eq(up, 3000);
    ck_assert_int_eq(down, 2000);
    ck_assert_int_eq((int)sl, 8);
    const char *bad[] = { "n1 n2 UP 1s", "n1 n2 UP 1s UP 2s", "n1 n2 UP 1s DOWN 5ms",
                          "n1 n2 UP x DOWN 1s", "UP 1s DOWN 1s x", "" };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        ck_assert_msg(ctl_parse_flap(S(bad[i]), &sl, &up, &down, err, sizeof err) < 0,
                      "'%s' accepted", bad[i]);
}
END_TEST

static rules_spec spec;

START_TEST(parse_kinds)
{
    fault_params p;
    char err[256];
    ck_assert_int_eq(faults_parse(FAULT_DELAY, S("n1 n2 50ms"), &spec, &p, err, sizeof err), 0);
    ck_assert_uint_eq(p.set, FAULT_BIT(FAULT_DELAY));
    ck_assert_uint_eq(p.delay_ms, 50);
    ck_assert_int_eq(spec.nnames, 2);
    ck_assert_int_eq(faults_parse(FAULT_DELAY, S("n1,n2 n3 50ms JITTER 10ms"), &spec, &p, err,
                                  sizeof err), 0);
    ck_assert_uint_eq(p.jitter_ms, 10);
    ck_assert_int_eq(spec.nislands, 2);
    ck_assert_int_eq(spec.nnames, 3);
    ck_assert_int_eq(faults_parse(FAULT_RATE, S("n1 -> n2 1MB/s"), &spec, &p, err, sizeof err), 0);
    ck_assert_uint_eq(p.rate, 1000000);
    ck_assert(spec.oneway);
    ck_assert_int_eq(faults_parse(FAULT_RESET, S("n1 n2 AFTER 64KB"), &spec, &p, err, sizeof err), 0);
    ck_assert_uint_eq(p.reset_bytes, 64000);
    ck_assert_int_eq(faults_parse(FAULT_RESET, S("n1 n2 after 3s"), &spec, &p, err, sizeof err), 0);
    ck_assert_uint_eq(p.reset_ms, 3000);
    ck_assert_int_eq(faults_parse(FAULT_SLICE, S("n1 -> n2 8B 1ms"), &spec, &p, err, sizeof err), 0);
    ck_assert_uint_eq(p.slice_bytes, 8);
    ck_assert_uint_eq(p.slice_gap_ms, 1);
    ck_assert_int_eq(faults_parse(FAULT_SLOWCLOSE, S("n1 n2 2s"), &spec, &p, err, sizeof err), 0);
    ck_assert_uint_eq(p.slowclose_ms, 2000);
}
END_TEST

START_TEST(parse_refusals)
{
    fault_params p;
    char err[256];
    struct { fault_kind k; const char *a; } bad[] = {
        { FAULT_DELAY, "n1 n2" },             { FAULT_DELAY, "n1 50ms" },
        { FAULT_DELAY, "n1 n2 50" },          { FAULT_DELAY, "n1 n2 11m" },
        { FAULT_DELAY, "n1 n2 50ms JITTER" }, { FAULT_DELAY, "n1 n2 JITTER 5ms" },
        { FAULT_RATE, "n1 n2 1MB" },          { FAULT_RATE, "n1 n2 0MB/s" },
        { FAULT_RESET, "n1 n2 64KB" },        { FAULT_RESET, "n1 n2 AFTER 0B" },
        { FAULT_RESET, "n1 n2 AFTER soon" },  { FAULT_SLICE, "n1 n2 8B" },
        { FAULT_SLICE, "n1 n2 0B 1ms" },      { FAULT_SLICE, "n1 n2 2MiB 1ms" },
        { FAULT_SLOWCLOSE, "n1 n2" },         { FAULT_DELAY, "" },
        { FAULT_DELAY, "n1 n1 5ms" },         { FAULT_RATE, "a -> b -> c 1MB/s" },
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        err[0] = 0;
        ck_assert_msg(faults_parse(bad[i].k, S(bad[i].a), &spec, &p, err, sizeof err) < 0,
                      "%s '%s' accepted", faults_kind_name(bad[i].k), bad[i].a);
        ck_assert_msg(err[0], "no message for '%s'", bad[i].a);
    }
}
END_TEST

static void set(faults *f, fault_kind k, const char *args, unsigned long owner)
{
    fault_params p;
    char err[256];
    ck_assert_msg(faults_parse(k, S(args), &spec, &p, err, sizeof err) == 0, "%s", err);
    ck_assert_int_ge(faults_set(f, &spec, &p, owner), 0);
}

START_TEST(table_set_merge_clear)
{
    faults f;
    fault_params p;
    char err[256];
    faults_init(&f);
    set(&f, FAULT_DELAY, "n1 n2 50ms", 0);
    ck_assert_uint_eq(f.n, 2);
    set(&f, FAULT_RATE, "n1 -> n2 1MB/s", 0);
    ck_assert_uint_eq(f.n, 2);   /* the same pair, one more kind */
    faults_lookup(&f, "n1@h", "n2@h", &p);
    ck_assert_uint_eq(p.set, FAULT_BIT(FAULT_DELAY) | FAULT_BIT(FAULT_RATE));
    ck_assert_uint_eq(p.delay_ms, 50);
    ck_assert_uint_eq(p.rate, 1000000);
    faults_lookup(&f, "n2", "n1", &p);
    ck_assert_uint_eq(p.set, FAULT_BIT(FAULT_DELAY));
    faults_lookup(&f, "n1", "n3", &p);
    ck_assert_uint_eq(p.set, 0);
    /* patterns, with the plain pair winning */
    set(&f, FAULT_DELAY, "* n3 7ms", 0);
    faults_lookup(&f, "n1", "n3", &p);
    ck_assert_uint_eq(p.delay_ms, 7);
    set(&f, FAULT_DELAY, "n1 -> n3 9ms", 0);
    faults_lookup(&f, "n1", "n3", &p);
    ck_assert_uint_eq(p.delay_ms, 9);
    /* CLEAR removes exactly its pairs */
    ck_assert_int_eq(faults_parse(FAULT_DELAY, S("n1 n2 1ms"), &spec, &p, err, sizeof err), 0);
    ck_assert_int_eq(faults_clear_spec(&f, &spec), 2);
    faults_lookup(&f, "n1", "n2", &p);
    ck_assert_uint_eq(p.set, 0);
    faults_lookup(&f, "n1", "n3", &p);
    ck_assert_uint_eq(p.delay_ms, 9);
    sbuf o = { 0 };
    faults_json(&f, &o);
    ck_assert_ptr_nonnull(strstr(sbuf_str(&o), "{\"from\":\"n1\",\"to\":\"n3\",\"delay_ms\":9"));
    sbuf_free(&o);
    ck_assert_uint_gt(faults_clear(&f), 0);
    ck_assert_uint_eq(f.n, 0);
    faults_free(&f);
}
END_TEST

START_TEST(table_limit)
{
    faults f;
    fault_params p;
    char err[256];
    faults_init(&f);
    /* 33 x 32 = 1056 pairs > FAULTS_MAX: refused, nothing set */
    static char line[8192];
    size_t n = 0;
    for (int i = 0; i < 33; i++)
        n += (size_t)snprintf(line + n, sizeof line - n, "%sa%d", i ? "," : "", i);
    n += (size_t)snprintf(line + n, sizeof line - n, " ");
    for (int i = 0; i < 32; i++)
        n += (size_t)snprintf(line + n, sizeof line - n, "%sb%d", i ? "," : "", i);
    snprintf(line + n, sizeof line - n, " 5ms");
    ck_assert_int_eq(faults_parse(FAULT_DELAY, S(line), &spec, &p, err, sizeof err), 0);
    unsigned long before = f.changes;
    ck_assert_int_eq(faults_set(&f, &spec, &p, 0), -2);
    ck_assert_uint_eq(f.n, 0);
    ck_assert_uint_eq(f.changes, before);
    faults_free(&f);
}
END_TEST

START_TEST(table_timed_undo)
{
    faults f;
    fault_params p;
    faults_init(&f);
    set(&f, FAULT_DELAY, "n1 n2 50ms", 0);      /* lasting */
    set(&f, FAULT_DELAY, "n1 n2 500ms", 7);     /* timed, over it */
    set(&f, FAULT_RATE, "n1 n2 1MB/s", 7);      /* timed, new */
    set(&f, FAULT_DELAY, "n1 n3 5ms", 8);       /* another timed command */
    faults_lookup(&f, "n1", "n2", &p);
    ck_assert_uint_eq(p.delay_ms, 500);
    ck_assert_int_eq(faults_undo(&f, 7), 4);    /* 2 pairs x (DELAY, RATE) */
    faults_lookup(&f, "n1", "n2", &p);
    ck_assert_uint_eq(p.set, FAULT_BIT(FAULT_DELAY));
    ck_assert_uint_eq(p.delay_ms, 50);          /* the lasting value is back */
    faults_lookup(&f, "n1", "n3", &p);
    ck_assert_uint_eq(p.delay_ms, 5);           /* not 7's */
    ck_assert_int_eq(faults_undo(&f, 7), 0);
    ck_assert_int_eq(faults_undo(&f, 8), 2);
    faults_lookup(&f, "n1", "n3", &p);
    ck_assert_uint_eq(p.set, 0);
    ck_assert_uint_eq(f.n, 2);
    /* RESET is spent once it fires */
    set(&f, FAULT_RESET, "n1 n2 AFTER 1KB", 0);
    faults_lookup(&f, "n1", "n2", &p);
    ck_assert(!faults_reset_due(&p, 999, 0));
    ck_assert(faults_reset_due(&p, 1000, 0));
    ck_assert_int_eq(faults_spend_reset(&f, "n1@h", "n2@h"), 1);
    faults_lookup(&f, "n1", "n2", &p);
    ck_assert_uint_eq(p.set, FAULT_BIT(FAULT_DELAY));
    faults_free(&f);
}
END_TEST

START_TEST(rules_tags)
{
    rules r;
    char err[256];
    rules_init(&r);
    ck_assert_int_eq(rules_parse_spec(S("n1 n2"), &spec, err, sizeof err), 0);
    ck_assert_int_eq(rules_apply(&r, &spec, 1), 2);   /* lasting */
    ck_assert_int_eq(rules_parse_spec(S("n1 n2,n3"), &spec, err, sizeof err), 0);
    r.tag = 5;
    ck_assert_int_eq(rules_apply(&r, &spec, 1), 2);   /* only n1-n3 is new */
    r.tag = 0;
    ck_assert_int_eq(rules_remove_tag(&r, 5), 2);
    ck_assert(rules_blocked(&r, "n1", "n2"));          /* lasting pairs stay */
    ck_assert(!rules_blocked(&r, "n1", "n3"));
    /* a timed pair named later by a lasting command becomes lasting */
    r.tag = 6;
    ck_assert_int_eq(rules_apply(&r, &spec, 1), 2);
    r.tag = 0;
    ck_assert_int_eq(rules_parse_spec(S("n1 -> n3"), &spec, err, sizeof err), 0);
    rules_apply(&r, &spec, 1);
    ck_assert_int_eq(rules_remove_tag(&r, 6), 1);
    ck_assert(rules_blocked(&r, "n1", "n3"));
    ck_assert(!rules_blocked(&r, "n3", "n1"));
    ck_assert_int_eq(rules_remove_tag(&r, 0), 0);
    rules_free(&r);
}
END_TEST

static fault_params params(fault_kind k, const char *args)
{
    fault_params p;
    char err[256];
    ck_assert_msg(faults_parse(k, S(args), &spec, &p, err, sizeof err) == 0, "%s", err);
    return p;
}

/* Drain everything ready at now into out (if not NULL); bytes written. */
static size_t drain(shaper *s, long long now, uint8_t *out, size_t max)
{
    size_t total = 0;
    const uint8_t *p;
    size_t n;
    while ((n = shaper_ready(s, now, &p)) > 0) {
        if (n > max - total)
            n = max - total;
        if (out)
            memcpy(out + total, p, n);
        shaper_sent(s, n, now);
        total += n;
        if (total == max)
            break;
    }
    return total;
}

START_TEST(shaper_delay)
{
    shaper s;
    shaper_init(&s, 1);
    fault_params p = params(FAULT_DELAY, "a b 50ms");
    shaper_set(&s, &p, 1000);
    ck_assert(shaper_active(&s));
    ck_assert_int_eq(shaper_accept(&s, (const uint8_t *)"hello", 5, 1000), 0);
    ck_assert_int_eq(shaper_accept(&s, (const uint8_t *)" world", 6, 1010), 0);
    ck_assert_uint_eq(shaper_held(&s), 11);
    /* due 50 ms after the arrival's millisecond ends: never early */
    ck_assert_int_eq(shaper_next_ms(&s, 1000), 1051);
    uint8_t out[64];
    ck_assert_uint_eq(drain(&s, 1050, out, sizeof out), 0);
    ck_assert_uint_eq(drain(&s, 1051, out, sizeof out), 5);
    ck_assert_int_eq(memcmp(out, "hello", 5), 0);
    ck_assert_int_eq(shaper_next_ms(&s, 1051), 1061);
    ck_assert_uint_eq(drain(&s, 1061, out + 5, sizeof out - 5), 6);
    ck_assert_int_eq(memcmp(out, "hello world", 11), 0);
    ck_assert_int_eq(shaper_next_ms(&s, 1061), -1);
    ck_assert_uint_eq(shaper_held(&s), 0);
    ck_assert_ptr_null(s.buf);   /* an empty delay line holds no memory */
    ck_assert_ptr_null(s.ch);
    /* no faults and nothing held: the relay may pass bytes straight on */
    fault_params none = { 0 };
    shaper_set(&s, &none, 1100);
    ck_assert(!shaper_active(&s));
    shaper_free(&s);
}
END_TEST

START_TEST(shaper_jitter)
{
    shaper s;
    shaper_init(&s, 42);
    fault_params p = params(FAULT_DELAY, "a b 20ms JITTER 30ms");
    shaper_set(&s, &p, 0);
    uint8_t in[2000], out[2000];
    for (int i = 0; i < 2000; i++)
        in[i] = (uint8_t)(i * 7 + 3);
    long long min_due = 1LL << 60, max_spread = 0;
    size_t got = 0;
    for (long long t = 0; t < 2000; t++) {
        ck_assert_int_eq(shaper_accept(&s, in + t, 1, t), 0);
        long long due = shaper_next_ms(&s, t);
        if (due - t < min_due && shaper_held(&s) == 1)
            min_due = due - t;
        got += drain(&s, t, out + got, sizeof out - got);
        if ((long long)shaper_held(&s) > max_spread)
            max_spread = (long long)shaper_held(&s);
    }
    for (long long t = 2000; got < 2000 && t < 3000; t++)
        got += drain(&s, t, out + got, sizeof out - got);
    ck_assert_uint_eq(got, 2000);
    ck_assert_int_eq(memcmp(in, out, 2000), 0);   /* never reordered */
    ck_assert_int_ge(min_due, 21);                /* never early */
    ck_assert_int_gt(max_spread, 20);             /* the jitter held more than the base delay */
    shaper_free(&s);
}
END_TEST

START_TEST(shaper_rate)
{
    shaper s;
    shaper_init(&s, 1);
    fault_params p = params(FAULT_RATE, "a b 100KB/s");
    shaper_set(&s, &p, 0);
    static uint8_t buf[64 * 1024];
    size_t fed = 0, out = 0;
    long long t = 0;
    /* 300 KB through a 100 KB/s cap: about 3 s (less the first burst) */
    while (out < 300000 && t < 10000) {
        size_t room = shaper_room(&s);
        size_t want = 300000 - fed < sizeof buf ? 300000 - fed : sizeof buf;
        if (room && want) {
            size_t n = want < room ? want : room;
            ck_assert_int_eq(shaper_accept(&s, buf, n, t), 0);
            fed += n;
        }
        out += drain(&s, t, NULL, 1 << 30);
        long long next = shaper_next_ms(&s, t);
        t = next > t ? next : t + 1;
    }
    ck_assert_uint_eq(out, 300000);
    ck_assert_int_ge(t, 2900);
    ck_assert_int_le(t, 3100);
    shaper_free(&s);
}
END_TEST

START_TEST(shaper_slice)
{
    shaper s;
    shaper_init(&s, 1);
    fault_params p = params(FAULT_SLICE, "a b 8B 5ms");
    shaper_set(&s, &p, 0);
    ck_assert_int_eq(shaper_accept(&s, (const uint8_t *)"0123456789abcdefXYZ", 19, 0), 0);
    const uint8_t *q;
    ck_assert_uint_eq(shaper_ready(&s, 0, &q), 8);
    ck_assert_int_eq(memcmp(q, "01234567", 8), 0);
    shaper_sent(&s, 8, 0);
    ck_assert_uint_eq(shaper_ready(&s, 4, &q), 0);
    ck_assert_int_eq(shaper_next_ms(&s, 1), 5);
    ck_assert_uint_eq(shaper_ready(&s, 5, &q), 8);
    shaper_sent(&s, 3, 5);   /* a short write: the rest comes next */
    ck_assert_int_eq(shaper_next_ms(&s, 5), 10);
    ck_assert_uint_eq(shaper_ready(&s, 10, &q), 8);
    ck_assert_int_eq(memcmp(q, "bcdefXYZ", 8), 0);
    shaper_free(&s);
}
END_TEST

START_TEST(shaper_bound)
{
    shaper s;
    shaper_init(&s, 1);
    fault_params p = params(FAULT_DELAY, "a b 1s");
    shaper_set(&s, &p, 0);
    static uint8_t buf[1 << 20];
    size_t total = 0;
    while (shaper_room(&s) > 0) {
        size_t n = shaper_room(&s) < sizeof buf ? shaper_room(&s) : sizeof buf;
        ck_assert_int_eq(shaper_accept(&s, buf, n, 0), 0);
        total += n;
        ck_assert_uint_le(total, SHAPER_MAX_HELD);
    }
    ck_assert_uint_eq(total, SHAPER_MAX_HELD);
    ck_assert_int_lt(shaper_accept(&s, buf, 1, 0), 0);   /* past the bound: refused */
    ck_assert_uint_eq(shaper_held(&s), SHAPER_MAX_HELD);
    /* many tiny chunks (each due at another time) are bounded too */
    shaper_free(&s);
    shaper_init(&s, 1);
    p = params(FAULT_DELAY, "a b 1s");
    shaper_set(&s, &p, 0);
    long long t = 0;
    while (shaper_room(&s) > 0 && t < 100000)
        ck_assert_int_eq(shaper_accept(&s, buf, 1, t++), 0);
    ck_assert_int_eq(t, SHAPER_MAX_CHUNKS);
    ck_assert_uint_eq(shaper_room(&s), 0);
    /* a rate alone keeps about a second of bytes */
    shaper_free(&s);
    shaper_init(&s, 1);
    p = params(FAULT_RATE, "a b 1MB/s");
    shaper_set(&s, &p, 0);
    ck_assert_uint_eq(shaper_room(&s), 1000000);
    shaper_free(&s);
}
END_TEST

START_TEST(shaper_set_less)
{
    shaper s;
    shaper_init(&s, 1);
    fault_params p = params(FAULT_DELAY, "a b 10s");
    shaper_set(&s, &p, 0);
    shaper_accept(&s, (const uint8_t *)"ab", 2, 0);
    shaper_accept(&s, (const uint8_t *)"cd", 2, 100);
    ck_assert_int_eq(shaper_next_ms(&s, 200), 10001);
    fault_params none = { 0 };
    shaper_set(&s, &none, 200);   /* CLEAR: what is held goes now, in order */
    ck_assert(shaper_active(&s));  /* still holds bytes */
    uint8_t out[4];
    ck_assert_uint_eq(drain(&s, 200, out, 4), 4);
    ck_assert_int_eq(memcmp(out, "abcd", 4), 0);
    ck_assert(!shaper_active(&s));
    shaper_free(&s);
}
END_TEST

Suite *faults_suite(void)
{
    Suite *s = suite_create("faults");
    const TTest *cases[] = {
        units_durations, units_sizes_rates, strip_for,      flap_parse,   parse_kinds,
        parse_refusals,  table_set_merge_clear, table_limit, table_timed_undo, rules_tags,
        shaper_delay,    shaper_jitter,     shaper_rate,    shaper_slice, shaper_bound,
        shaper_set_less,
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        TCase *tc = tcase_create(cases[k]->name);
        tcase_set_timeout(tc, 30);
        tcase_add_test(tc, cases[k]);
        suite_add_tcase(s, tc);
    }
    return s;
}
