/* Suite "loop": the event loop's timers.  Pure unit tests of the timer
 * heap (no sockets, no daemon): order, ties, deletes from callbacks, many
 * timers, a past-due timer added from a callback.  Then the daemon's
 * -delay_write as the timers serve it.
 *
 * Times are set in the past or at "now" wherever a test is about order, so
 * that nothing here waits for a clock; the one real-time test asserts only
 * a lower bound and a generous upper one. */
#include <check.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "loop.h"
#include "testutil.h"

/* ---- a record of which timers fired, in order ----------------------------- */

#define MAXFIRED 4096

typedef struct rec {
    loop *l;
    int fired[MAXFIRED];
    int n;
} rec;

typedef struct tctx {
    rec *r;
    int id;
    loop_timer *self;       /* the handle, for callbacks that delete things */
    loop_timer **victim;    /* a pending timer to delete when this one fires */
    long long readd_ms;     /* >= 0: add a new timer (id + 1000) at now - this */
    int readd_forever;      /* the new timer re-adds itself the same way */
} tctx;

static void fire(void *p)
{
    tctx *c = p;
    rec *r = c->r;
    ck_assert_int_lt(r->n, MAXFIRED);
    r->fired[r->n++] = c->id;
    if (c->self) {
        loop_timer_del(r->l, c->self);   /* itself: already gone, a no-op */
        c->self = NULL;
    }
    if (c->victim && *c->victim) {
        loop_timer_del(r->l, *c->victim);
        *c->victim = NULL;
    }
    if (c->readd_ms >= 0) {
        long long when = loop_now_ms() - c->readd_ms;
        if (!c->readd_forever) {   /* the next one fires as id + 1000, once */
            c->id += 1000;
            c->readd_ms = -1;
        }
        ck_assert_ptr_nonnull(loop_timer_at(r->l, when, fire, c));
    }
}

static tctx *ctxs(rec *r, int n)
{
    tctx *c = calloc((size_t)n, sizeof *c);
    ck_assert_ptr_nonnull(c);
    for (int i = 0; i < n; i++)
        c[i] = (tctx){ .r = r, .id = i, .readd_ms = -1 };
    return c;
}

static loop *new_loop(rec *r)
{
    memset(r, 0, sizeof *r);
    r->l = loop_new();
    ck_assert_ptr_nonnull(r->l);
    return r->l;
}

/* Run rounds (never blocking: every timer here is due) until no timer is
 * left or `max` rounds passed; returns the rounds run. */
static int drain(loop *l, int max)
{
    int k = 0;
    while (loop_timer_count(l) > 0 && k < max) {
        ck_assert_int_ge(loop_run_once(l, 0), 0);
        k++;
    }
    return k;
}

/* ---- heap order --------------------------------------------------------------- */

/* Timers added out of order fire by their time. */
START_TEST(order)
{
    rec r;
    loop *l = new_loop(&r);
    tctx *c = ctxs(&r, 6);
    long long base = loop_now_ms() - 10000;
    static const int when[6] = { 50, 10, 40, 0, 30, 20 };   /* ms after base */
    for (int i = 0; i < 6; i++)
        ck_assert_ptr_nonnull(loop_timer_at(l, base + when[i], fire, &c[i]));
    ck_assert_int_eq(loop_timer_count(l), 6);
    drain(l, 10);
    static const int want[6] = { 3, 1, 5, 4, 2, 0 };
    ck_assert_int_eq(r.n, 6);
    for (int i = 0; i < 6; i++)
        ck_assert_msg(r.fired[i] == want[i], "fired #%d: timer %d, want %d", i, r.fired[i],
                      want[i]);
    ck_assert_int_eq(loop_timer_count(l), 0);
    free(c);
    loop_free(l);
}
END_TEST

/* Timers due at the same time fire in the order they were added. */
START_TEST(ties_in_insertion_order)
{
    rec r;
    loop *l = new_loop(&r);
    enum { N = 100 };
    tctx *c = ctxs(&r, N);
    long long t = loop_now_ms() - 1000;
    /* interleave two times so that the heap has to move the ties around */
    for (int i = 0; i < N; i++)
        ck_assert_ptr_nonnull(loop_timer_at(l, i % 2 ? t : t - 1, fire, &c[i]));
    drain(l, 10);
    ck_assert_int_eq(r.n, N);
    int k = 0;
    for (int i = 0; i < N; i += 2, k++)   /* the earlier time first: evens */
        ck_assert_msg(r.fired[k] == i, "fired #%d: timer %d, want %d", k, r.fired[k], i);
    for (int i = 1; i < N; i += 2, k++)
        ck_assert_msg(r.fired[k] == i, "fired #%d: timer %d, want %d", k, r.fired[k], i);
    free(c);
    loop_free(l);
}
END_TEST

/* A timer not yet due does not fire, and its time is what was asked. */
START_TEST(not_before_time)
{
    rec r;
    loop *l = new_loop(&r);
    tctx *c = ctxs(&r, 2);
    long long far = loop_now_ms() + 3600 * 1000LL;
    loop_timer *t = loop_timer_at(l, far, fire, &c[0]);
    ck_assert_ptr_nonnull(t);
    ck_assert_ptr_nonnull(loop_timer_at(l, loop_now_ms() - 1, fire, &c[1]));
    ck_assert_int_eq(loop_timer_when(t), far);
    ck_assert_int_ge(loop_run_once(l, 0), 0);
    ck_assert_int_eq(r.n, 1);
    ck_assert_int_eq(r.fired[0], 1);
    ck_assert_int_eq(loop_timer_count(l), 1);
    loop_timer_del(l, t);
    ck_assert_int_eq(loop_timer_count(l), 0);
    loop_timer_del(l, NULL);   /* ignored */
    free(c);
    loop_free(l);
}
END_TEST

/* ---- deletes --------------------------------------------------------------------- */

/* A callback deletes itself (a no-op) and a pending timer due in the same
 * round (which then never fires). */
START_TEST(delete_from_callback)
{
    rec r;
    loop *l = new_loop(&r);
    tctx *c = ctxs(&r, 3);
    long long t = loop_now_ms() - 100;
    c[0].self = loop_timer_at(l, t, fire, &c[0]);
    loop_timer *victim = loop_timer_at(l, t, fire, &c[1]);   /* due, after c[0] */
    c[0].victim = &victim;
    ck_assert_ptr_nonnull(loop_timer_at(l, t, fire, &c[2]));
    ck_assert_int_eq(loop_timer_count(l), 3);
    ck_assert_int_ge(loop_run_once(l, 0), 0);
    ck_assert_int_eq(r.n, 2);
    ck_assert_int_eq(r.fired[0], 0);
    ck_assert_int_eq(r.fired[1], 2);
    ck_assert_ptr_null(victim);
    ck_assert_int_eq(loop_timer_count(l), 0);
    free(c);
    loop_free(l);
}
END_TEST

/* Deleting a pending timer from outside, anywhere in the heap, leaves the
 * others in order. */
START_TEST(delete_pending)
{
    rec r;
    loop *l = new_loop(&r);
    enum { N = 64 };
    tctx *c = ctxs(&r, N);
    loop_timer *h[N];
    long long base = loop_now_ms() - 10000;
    for (int i = 0; i < N; i++) {
        h[i] = loop_timer_at(l, base + (i * 37) % N, fire, &c[i]);   /* a permutation */
        ck_assert_ptr_nonnull(h[i]);
    }
    for (int i = 0; i < N; i += 3)
        loop_timer_del(l, h[i]);
    ck_assert_int_eq(loop_timer_count(l), N - (N + 2) / 3);
    drain(l, 10);
    ck_assert_int_eq(r.n, N - (N + 2) / 3);
    for (int k = 0; k < r.n; k++) {
        ck_assert_msg(r.fired[k] % 3 != 0, "deleted timer %d fired", r.fired[k]);
        if (k)
            ck_assert_msg((r.fired[k - 1] * 37) % N < (r.fired[k] * 37) % N,
                          "timer %d fired before timer %d", r.fired[k - 1], r.fired[k]);
    }
    free(c);
    loop_free(l);
}
END_TEST

/* ---- volume ------------------------------------------------------------------------- */

/* Thousands of timers at pseudo-random times fire each once, in order. */
START_TEST(many_timers)
{
    rec r;
    loop *l = new_loop(&r);
    enum { N = MAXFIRED };
    tctx *c = ctxs(&r, N);
    long long *when = malloc(N * sizeof *when);
    ck_assert_ptr_nonnull(when);
    long long base = loop_now_ms() - 100000;
    uint32_t x = 12345;
    for (int i = 0; i < N; i++) {
        x = x * 1103515245u + 12345u;
        when[i] = base + (x >> 16) % 5000;
        ck_assert_ptr_nonnull(loop_timer_at(l, when[i], fire, &c[i]));
    }
    ck_assert_int_eq(loop_timer_count(l), N);
    drain(l, 10);
    ck_assert_int_eq(r.n, N);
    static char seen[N];
    memset(seen, 0, sizeof seen);
    for (int k = 0; k < N; k++) {
        int id = r.fired[k];
        ck_assert_msg(!seen[id], "timer %d fired twice", id);
        seen[id] = 1;
        if (k) {
            int p = r.fired[k - 1];
            ck_assert_msg(when[p] < when[id] || (when[p] == when[id] && p < id),
                          "timer %d (at %lld) fired before timer %d (at %lld)", p, when[p],
                          id, when[id]);
        }
    }
    free(when);
    free(c);
    loop_free(l);
}
END_TEST

/* ---- timers added from callbacks ---------------------------------------------------- */

/* A timer added from a callback for a time already past fires in the next
 * round, not in the round that added it. */
START_TEST(past_timer_from_callback_fires_next_round)
{
    rec r;
    loop *l = new_loop(&r);
    tctx *c = ctxs(&r, 1);
    c[0].readd_ms = 1000;
    ck_assert_ptr_nonnull(loop_timer_at(l, loop_now_ms() - 1, fire, &c[0]));
    ck_assert_int_ge(loop_run_once(l, 0), 0);
    ck_assert_int_eq(r.n, 1);
    ck_assert_int_eq(r.fired[0], 0);
    ck_assert_int_eq(loop_timer_count(l), 1);   /* the new one waits */
    ck_assert_int_ge(loop_run_once(l, 0), 0);
    ck_assert_int_eq(r.n, 2);
    ck_assert_int_eq(r.fired[1], 1000);
    ck_assert_int_eq(loop_timer_count(l), 0);
    free(c);
    loop_free(l);
}
END_TEST

/* A callback that re-adds itself in the past every time fires once per
 * round: the loop returns to poll in between instead of spinning. */
START_TEST(past_timer_forever_is_not_a_busy_loop)
{
    rec r;
    loop *l = new_loop(&r);
    tctx *c = ctxs(&r, 1);
    c[0].readd_ms = 1000;
    c[0].readd_forever = 1;
    ck_assert_ptr_nonnull(loop_timer_at(l, loop_now_ms() - 1, fire, &c[0]));
    for (int round = 1; round <= 50; round++) {
        ck_assert_int_ge(loop_run_once(l, 0), 0);
        ck_assert_msg(r.n == round, "after %d rounds the timer fired %d times", round, r.n);
    }
    free(c);
    loop_free(l);   /* frees the pending one */
}
END_TEST

/* A due timer bounds the poll: loop_run_once(-1) returns for it. */
START_TEST(timer_bounds_the_wait)
{
    rec r;
    loop *l = new_loop(&r);
    tctx *c = ctxs(&r, 1);
    /* t0 before the timer: taken after, it may be a millisecond (or, on a
     * loaded machine, more) later than the time the 20 ms count from */
    long long t0 = loop_now_ms();
    ck_assert_ptr_nonnull(loop_timer_in(l, 20, fire, &c[0]));
    while (r.n == 0 && loop_now_ms() - t0 < 30000)
        ck_assert_int_ge(loop_run_once(l, -1), 0);
    ck_assert_int_eq(r.n, 1);
    ck_assert_int_ge(loop_now_ms() - t0, 20);
    free(c);
    loop_free(l);
}
END_TEST

/* ---- the daemon's -delay_write, on the loop's timers ------------------------------- */

/* -delay_write 1: a NAMES reply comes no sooner than 1000 ms after the
 * request (the timer's lower bound) and well within a few seconds (no
 * tick to wait for; the bound is generous for a loaded machine). */
START_TEST(delay_write_on_time)
{
    static const char *const extra[] = { "-delay_write", "1", NULL };
    tu_daemon d;
    ck_assert_msg(tu_daemon_start(&d, extra) == 0, "epmdpxy did not start");
    for (int k = 0; k < 3; k++) {
        int fd = tu_connect(d.epmd_port);
        ck_assert_int_ge(fd, 0);
        long long t0 = tu_now_ms();
        ck_assert_int_eq(tu_write_all(fd, "\0\1n", 3), 0);
        uint8_t port[4];
        int ok = tu_read_exact(fd, port, 4, 10000);
        long long ms = tu_now_ms() - t0;
        close(fd);
        ck_assert_msg(ok == 0, "no NAMES reply within 10 s");
        ck_assert_msg(ms >= 1000, "-delay_write 1: replied after %lld ms", ms);
        ck_assert_msg(ms < 4000, "-delay_write 1: replied after %lld ms", ms);
    }
    tu_daemon_stop(&d);
}
END_TEST

Suite *loop_suite(void)
{
    Suite *s = suite_create("loop");
    struct { const char *name; const TTest *t; } cases[] = {
        { "order", order },
        { "ties_in_insertion_order", ties_in_insertion_order },
        { "not_before_time", not_before_time },
        { "delete_from_callback", delete_from_callback },
        { "delete_pending", delete_pending },
        { "many_timers", many_timers },
        { "past_timer_from_callback_fires_next_round", past_timer_from_callback_fires_next_round },
        { "past_timer_forever_is_not_a_busy_loop", past_timer_forever_is_not_a_busy_loop },
        { "timer_bounds_the_wait", timer_bounds_the_wait },
        { "delay_write_on_time", delay_write_on_time },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        TCase *tc = tcase_create(cases[i].name);
        tcase_set_timeout(tc, 60);
        tcase_add_test(tc, cases[i].t);
        suite_add_tcase(s, tc);
    }
    return s;
}
