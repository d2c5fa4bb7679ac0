/* What a split does to an application's own TCP channel: src/feed.erl, a
 * leader on n1 that pushes numbered updates to followers on n2 and n3 over
 * gen_tcp, not over the Erlang distribution.
 *
 *   1. n2 and n3 follow n1; updates 1..3 reach both.  The daemon lists the
 *      followers' connections as "app" links: they go through it because
 *      every node runs under libepx's LD_PRELOAD shim.
 *   2. Split n1,n2 | n3, push 4..6: n2 gets them, n3 does not, neither
 *      while the nodes still see each other nor once they have noticed the
 *      split.  The connection stays open (hold mode): the bytes wait.
 *   3. Heal: n3 gets 4..6, each once and in order, with nothing lost and
 *      nothing twice on n2; update 7 then reaches both. */
#define _POSIX_C_SOURCE 200809L    /* clock_gettime, nanosleep */
#include <check.h>
#include <epx_check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Evaluate expr on node and return what it printed (until the next call). */
static const char *on(const char *node, const char *expr)
{
    static char out[4096];
    if (epx_fixture_eval(epx_check_cluster, node, expr, out, sizeof out) < 0)
        ck_abort_msg("%s on %s: %s", expr, node, epx_fixture_last_error());
    return out;
}

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000LL + ts.tv_nsec / 1000000;
}

static void nap(void)
{
    struct timespec ts = { 0, 20 * 1000000L };
    nanosleep(&ts, NULL);
}

/* What node's follower has received, as printed: "\"1,2,3\"". */
static const char *received(const char *node)
{
    return on(node, "feed:received()");
}

/* Wait up to 30 s until node's follower has received exactly want ("1,2,3");
 * what it had last. */
static const char *until_received(const char *node, const char *want)
{
    char quoted[256];
    snprintf(quoted, sizeof quoted, "\"%s\"", want);
    long long deadline = now_ms() + 30000;
    const char *got;
    while (strcmp(got = received(node), quoted) != 0 && now_ms() < deadline)
        nap();
    return got;
}

#define ck_assert_received(node, want)                                          \
    do {                                                                        \
        char q_[256];                                                           \
        snprintf(q_, sizeof q_, "\"%s\"", want);                                \
        ck_assert_str_eq(until_received(node, want), q_);                       \
    } while (0)

/* Push updates from..to on the leader. */
static void push(int from, int to)
{
    char expr[64];
    snprintf(expr, sizeof expr, "feed:push(%d, %d)", from, to);
    ck_assert_str_eq(on("n1", expr), "ok");
}

/* How many app links to port the daemon lists. */
static int app_links(epx_cluster *c, int port)
{
    static char links[65536];
    char pat[64];
    ck_assert_epx_ok(epx_fixture_control(c, "LINKS", links, sizeof links));
    snprintf(pat, sizeof pat, "\"kind\":\"app\",\"port\":%d,", port);
    int n = 0;
    for (const char *p = links; (p = strstr(p, pat)) != NULL; p++)
        n++;
    return n;
}

START_TEST(split_stops_the_feed_heal_resumes_it)
{
    epx_cluster *c = epx_check_cluster;

    /* 1. the leader and its two followers, over gen_tcp */
    int port = atoi(on("n1", "feed:lead()"));
    ck_assert_int_gt(port, 0);
    char follow[64];
    snprintf(follow, sizeof follow, "feed:follow(%d)", port);
    ck_assert_str_eq(on("n2", follow), "ok");
    ck_assert_str_eq(on("n3", follow), "ok");
    long long deadline = now_ms() + 30000;
    while (strcmp(on("n1", "feed:followers()"), "2") != 0 && now_ms() < deadline)
        nap();
    ck_assert_str_eq(on("n1", "feed:followers()"), "2");
    ck_assert_int_eq(app_links(c, port), 2);   /* through the daemon, as app links */
    push(1, 3);
    ck_assert_received("n2", "1,2,3");
    ck_assert_received("n3", "1,2,3");

    /* 2. the split: n3 alone.  n2 is the witness that 4..6 were sent. */
    ck_assert_epx_ok(epx_fixture_split(c, "n1,n2 n3"));
    push(4, 6);
    ck_assert_received("n2", "1,2,3,4,5,6");
    ck_assert_str_eq(received("n3"), "\"1,2,3\"");
    ck_assert_epx_partition(c, 30000);          /* the nodes noticed (tick timeout) */
    ck_assert_str_eq(received("n3"), "\"1,2,3\"");   /* and the feed is still cut */
    ck_assert_int_eq(app_links(c, port), 2);    /* held, not closed */

    /* 3. heal: everything held arrives, once, in order */
    ck_assert_epx_ok(epx_fixture_heal(c));
    ck_assert_received("n3", "1,2,3,4,5,6");
    ck_assert_str_eq(received("n2"), "\"1,2,3,4,5,6\"");
    push(7, 7);
    ck_assert_received("n2", "1,2,3,4,5,6,7");
    ck_assert_received("n3", "1,2,3,4,5,6,7");
}
END_TEST

int main(void)
{
    static const char *code[] = { EBIN, NULL };    /* -pa for every node */
    epx_options opts = { .code_paths = code };     /* the shim is on by default */
    Suite *s = suite_create("feed");
    TCase *tc = tcase_create("app_channel");
    epx_check_add_fixture(tc, 3, &opts);
    tcase_add_test(tc, split_stops_the_feed_heal_resumes_it);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
