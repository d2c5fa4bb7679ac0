/* What a network split does to src/counter.erl, a counter registered with
 * `global`, and how the cluster converges when the split heals.
 *
 *   1. One counter for three nodes, on n1.
 *   2. Split n1,n2 | n3: n3 loses the name and can start a second counter
 *      (a split brain: two counters, two values).
 *   3. Heal and reconnect: global finds the name registered twice, kills
 *      one of the two, and every node agrees on the survivor. */
#define _POSIX_C_SOURCE 200809L    /* clock_gettime, nanosleep */
#include <check.h>
#include <epx_check.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Evaluate expr on node and return what it printed (until the next call). */
static const char *on(const char *node, const char *expr)
{
    static char out[4096];
    if (epx_fixture_eval(epx_check_cluster, node, expr, out, sizeof out) < 0)
        ck_abort_msg("%s: %s", expr, epx_fixture_last_error());
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
    struct timespec ts = { 0, 50 * 1000000L };
    nanosleep(&ts, NULL);
}

/* Wait up to 30 s for expr to print want on node; what it printed last. */
static const char *until(const char *node, const char *expr, const char *want)
{
    long long deadline = now_ms() + 30000;
    const char *got;
    while (strcmp(got = on(node, expr), want) != 0 && now_ms() < deadline)
        nap();
    return got;
}

/* Does exactly one counter run, and do all nodes agree on where? */
static int converged(void)
{
    static const char *nodes[] = { "n1", "n2", "n3" };
    char home[64];
    int counters = 0;
    snprintf(home, sizeof home, "%s", on("n1", "counter:home()"));
    for (int i = 0; i < 3; i++) {
        if (strcmp(on(nodes[i], "counter:home()"), home) != 0)
            return 0;
        counters += atoi(on(nodes[i], "counter:local()"));
    }
    return counters == 1 && strcmp(home, "none") != 0;
}

START_TEST(split_brain_then_converge)
{
    epx_cluster *c = epx_check_cluster;

    /* 1. one counter, reachable from every node (once global has synced:
     *    a node in nodes() is not yet a node that global knows) */
    for (int i = 1; i <= 3; i++)
        ck_assert_str_eq(on(epx_fixture_node(c, i), "global:sync()"), "ok");
    ck_assert_str_eq(on("n1", "element(1, counter:start())"), "ok");
    ck_assert_str_eq(on("n3", "counter:incr()"), "1");
    ck_assert_str_eq(on("n3", "counter:home()"), "n1@localhost");
    ck_assert_str_eq(on("n3", "element(1, counter:start())"), "error");   /* taken */

    /* 2. the split: n3 alone */
    ck_assert_epx_ok(epx_fixture_split(c, "n1,n2 n3"));
    ck_assert_epx_partition(c, 30000);
    ck_assert_str_eq(until("n3", "counter:home()", "none"), "none");   /* gone there */
    ck_assert_str_eq(on("n3", "element(1, counter:start())"), "ok");
    ck_assert_str_eq(on("n3", "counter:incr()"), "1");        /* a fresh count */
    ck_assert_str_eq(on("n2", "counter:incr()"), "2");        /* the old one goes on */
    ck_assert_str_eq(on("n2", "counter:home()"), "n1@localhost");
    ck_assert_str_eq(on("n3", "counter:home()"), "n3@localhost");

    /* 3. heal: global resolves the conflict, one counter remains */
    ck_assert_epx_ok(epx_fixture_heal(c));
    ck_assert_epx_ok(epx_fixture_connect_all(c));
    ck_assert_epx_connected(c, 30000);
    long long deadline = now_ms() + 30000;
    while (!converged() && now_ms() < deadline)
        nap();
    ck_assert_msg(converged(), "after 30 s the nodes still disagree on the counter");
    /* the survivor counts on, for everyone */
    int v = atoi(on("n1", "counter:value()"));
    ck_assert(v == 1 || v == 2);
    char next[16];
    snprintf(next, sizeof next, "%d", v + 1);
    ck_assert_str_eq(on("n3", "counter:incr()"), next);
}
END_TEST

int main(void)
{
    static const char *code[] = { EBIN, NULL };    /* -pa for every node */
    epx_options opts = { .code_paths = code };
    Suite *s = suite_create("counter");
    TCase *tc = tcase_create("split_brain");
    epx_check_add_fixture(tc, 3, &opts);
    tcase_add_test(tc, split_brain_then_converge);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
