/* Suite "nemesis": the partition shapes and the NEMESIS grammar, pure.
 *
 *   halves_fixed        halves of 5 and 7 sorted nodes: the documented islands
 *   random_halves_seed  the same seed gives the same islands; sizes n/2 and the rest;
 *                       some other seed gives others
 *   majorities_ring     5 and 7 nodes: each sees a majority (itself included),
 *                       no two see the same set, sight is symmetric
 *   bridge              the middle node sees both sides, the sides not each other
 *   random_isolate      one node against the rest, drawn from the seed
 *   random_one_way      blocks one way only: from the first part to the second
 *   too_few             each shape refuses too few nodes with a message
 *   sequence_replays    a generator state walks the same sequence of plans
 *   parse_cmds          SHAPE/START/STOP and their refusals
 *   json                the reply names the islands and the blocked pairs */
#include <check.h>

#include <string.h>

#include "nemesis.h"
#include "sbuf.h"

static nemesis_plan plan, plan2;

static const char *const names7[] = { "n1", "n2", "n3", "n4", "n5", "n6", "n7" };

static int sees(const nemesis_plan *p, int i, int j)
{
    return !p->blocked[i][j] && !p->blocked[j][i];
}

START_TEST(halves_fixed)
{
    char err[256];
    uint64_t rng = 1;
    ck_assert_int_eq(nemesis_make(NEM_HALVES, 5, &rng, &plan, err, sizeof err), 0);
    int want5[] = { 0, 0, 1, 1, 1 };
    for (int i = 0; i < 5; i++)
        ck_assert_int_eq(plan.island_of[i], want5[i]);
    ck_assert(plan.blocked[0][2] && plan.blocked[2][0] && !plan.blocked[0][1] && !plan.blocked[2][4]);
    ck_assert_int_eq(nemesis_make(NEM_HALVES, 7, &rng, &plan, err, sizeof err), 0);
    int want7[] = { 0, 0, 0, 1, 1, 1, 1 };
    for (int i = 0; i < 7; i++)
        ck_assert_int_eq(plan.island_of[i], want7[i]);
}
END_TEST

START_TEST(random_halves_seed)
{
    char err[256];
    uint64_t a = 42, b = 42;
    ck_assert_int_eq(nemesis_make(NEM_RANDOM_HALVES, 7, &a, &plan, err, sizeof err), 0);
    ck_assert_int_eq(nemesis_make(NEM_RANDOM_HALVES, 7, &b, &plan2, err, sizeof err), 0);
    ck_assert_int_eq(memcmp(plan.island_of, plan2.island_of, sizeof plan.island_of), 0);
    int small = 0;
    for (int i = 0; i < 7; i++)
        small += plan.island_of[i] == 0;
    ck_assert_int_eq(small, 3);
    /* over a few seeds the islands differ (the shuffle is used) */
    int differ = 0;
    for (uint64_t seed = 1; seed < 20; seed++) {
        uint64_t s = seed;
        nemesis_make(NEM_RANDOM_HALVES, 7, &s, &plan2, err, sizeof err);
        differ |= memcmp(plan.island_of, plan2.island_of, 7 * sizeof(int)) != 0;
    }
    ck_assert(differ);
}
END_TEST

static void check_ring(int n, uint64_t seed)
{
    char err[256];
    uint64_t rng = seed;
    ck_assert_int_eq(nemesis_make(NEM_MAJORITIES_RING, n, &rng, &plan, err, sizeof err), 0);
    unsigned long long sets[NEMESIS_MAX_NODES];
    for (int i = 0; i < n; i++) {
        int count = 0;
        sets[i] = 0;
        for (int j = 0; j < n; j++) {
            ck_assert_int_eq(plan.blocked[i][j], plan.blocked[j][i]);   /* symmetric */
            if (!plan.blocked[i][j]) {
                count++;
                sets[i] |= 1ULL << j;
            }
        }
        ck_assert_msg(count > n / 2, "n=%d seed=%llu: node %d sees %d, no majority", n,
                      (unsigned long long)seed, i, count);
        ck_assert_msg(count < n, "node %d sees everyone", i);
    }
    for (int i = 0; i < n; i++)
        for (int j = i + 1; j < n; j++)
            ck_assert_msg(sets[i] != sets[j], "n=%d: nodes %d and %d see the same majority", n, i, j);
}

START_TEST(majorities_ring)
{
    for (uint64_t seed = 0; seed < 10; seed++) {
        check_ring(5, seed);
        check_ring(7, seed);
        check_ring(4, seed);
        check_ring(9, seed);
    }
}
END_TEST

START_TEST(bridge)
{
    char err[256];
    uint64_t rng = 3;
    ck_assert_int_eq(nemesis_make(NEM_BRIDGE, 5, &rng, &plan, err, sizeof err), 0);
    ck_assert_int_eq(plan.bridge, 2);
    for (int i = 0; i < 5; i++)
        ck_assert(sees(&plan, 2, i));
    ck_assert(sees(&plan, 0, 1) && sees(&plan, 3, 4));
    ck_assert(!sees(&plan, 0, 3) && !sees(&plan, 1, 4));
    ck_assert_int_eq(nemesis_make(NEM_BRIDGE, 7, &rng, &plan, err, sizeof err), 0);
    ck_assert_int_eq(plan.bridge, 3);
    ck_assert(!sees(&plan, 2, 4) && sees(&plan, 3, 6) && sees(&plan, 0, 3));
}
END_TEST

START_TEST(random_isolate)
{
    char err[256];
    int hit[5] = { 0 };
    for (uint64_t seed = 0; seed < 50; seed++) {
        uint64_t rng = seed;
        ck_assert_int_eq(nemesis_make(NEM_RANDOM_ISOLATE, 5, &rng, &plan, err, sizeof err), 0);
        int lone = -1, n0 = 0;
        for (int i = 0; i < 5; i++)
            if (plan.island_of[i] == 0) {
                lone = i;
                n0++;
            }
        ck_assert_int_eq(n0, 1);
        for (int j = 0; j < 5; j++)
            if (j != lone)
                ck_assert(plan.blocked[lone][j] && plan.blocked[j][lone]);
        hit[lone]++;
    }
    for (int i = 0; i < 5; i++)
        ck_assert_msg(hit[i] > 0, "node %d never drawn in 50 seeds", i);
}
END_TEST

START_TEST(random_one_way)
{
    char err[256];
    for (uint64_t seed = 0; seed < 20; seed++) {
        uint64_t rng = seed;
        ck_assert_int_eq(nemesis_make(NEM_RANDOM_ONE_WAY, 5, &rng, &plan, err, sizeof err), 0);
        int from = 0, blocked = 0;
        for (int i = 0; i < 5; i++) {
            from += plan.island_of[i] == 0;
            for (int j = 0; j < 5; j++) {
                blocked += plan.blocked[i][j];
                ck_assert(!(plan.blocked[i][j] && plan.blocked[j][i]));   /* one way only */
                ck_assert_int_eq(plan.blocked[i][j],
                                 plan.island_of[i] == 0 && plan.island_of[j] == 1);
            }
        }
        ck_assert(from >= 1 && from <= 4);
        ck_assert_int_eq(blocked, from * (5 - from));
    }
}
END_TEST

START_TEST(too_few)
{
    char err[256];
    uint64_t rng = 1;
    err[0] = 0;
    ck_assert_int_lt(nemesis_make(NEM_MAJORITIES_RING, 3, &rng, &plan, err, sizeof err), 0);
    ck_assert_ptr_nonnull(strstr(err, "at least 4"));
    ck_assert_int_lt(nemesis_make(NEM_BRIDGE, 2, &rng, &plan, err, sizeof err), 0);
    ck_assert_int_lt(nemesis_make(NEM_HALVES, 1, &rng, &plan, err, sizeof err), 0);
    ck_assert_int_lt(nemesis_make(NEM_RANDOM_ISOLATE, 0, &rng, &plan, err, sizeof err), 0);
    ck_assert_int_lt(nemesis_make(NEM_HALVES, NEMESIS_MAX_NODES + 1, &rng, &plan, err, sizeof err), 0);
}
END_TEST

START_TEST(sequence_replays)
{
    char err[256];
    int first[10][7], again[10][7];
    for (int round = 0; round < 2; round++) {
        uint64_t rng = 1234;
        for (int step = 0; step < 10; step++) {
            ck_assert_int_eq(nemesis_make(NEM_RANDOM_HALVES, 7, &rng, &plan, err, sizeof err), 0);
            memcpy(round ? again[step] : first[step], plan.island_of, sizeof first[step]);
        }
    }
    ck_assert_int_eq(memcmp(first, again, sizeof first), 0);
    int changes = 0;
    for (int step = 1; step < 10; step++)
        changes += memcmp(first[step], first[step - 1], sizeof first[step]) != 0;
    ck_assert_int_gt(changes, 0);   /* the steps of a schedule differ */
}
END_TEST

#define S(str) (str), strlen(str)

START_TEST(parse_cmds)
{
    nemesis_cmd c;
    char err[256];
    ck_assert_int_eq(nemesis_parse(S("SHAPE halves"), &c, err, sizeof err), 0);
    ck_assert_int_eq(c.op, NEM_CMD_SHAPE);
    ck_assert_int_eq(c.shape, NEM_HALVES);
    ck_assert(!c.has_seed);
    ck_assert_int_eq(nemesis_parse(S("shape Majorities-Ring SEED 7 FOR 5s"), &c, err, sizeof err), 0);
    ck_assert_int_eq(c.shape, NEM_MAJORITIES_RING);
    ck_assert(c.has_seed);
    ck_assert_uint_eq(c.seed, 7);
    ck_assert_int_eq(c.for_ms, 5000);
    ck_assert_int_eq(nemesis_parse(S("START random-halves EVERY 2s HEAL 1s SEED 3 FOR 60s"), &c,
                                   err, sizeof err), 0);
    ck_assert_int_eq(c.op, NEM_CMD_START);
    ck_assert_int_eq(c.every_ms, 2000);
    ck_assert_int_eq(c.heal_ms, 1000);
    ck_assert_int_eq(c.for_ms, 60000);
    ck_assert_int_eq(nemesis_parse(S("STOP"), &c, err, sizeof err), 0);
    ck_assert_int_eq(c.op, NEM_CMD_STOP);
    ck_assert_int_eq(nemesis_parse(S("SHAPE bridge SEED 18446744073709551615"), &c, err, sizeof err), 0);
    ck_assert_uint_eq(c.seed, UINT64_MAX);
    const char *bad[] = {
        "", "SHAPE", "SHAPE squares", "SHAPE halves SEED", "SHAPE halves SEED x",
        "SHAPE halves SEED 18446744073709551616", "SHAPE halves EVERY 2s",
        "START halves EVERY 2s", "START halves HEAL 1s EVERY 1s", "START halves EVERY 2s HEAL 2s",
        "START halves EVERY 50ms HEAL 10ms", "STOP now", "SHAPE halves SEED 1 SEED 2",
        "START halves EVERY 2s HEAL 1s FOR 0s", "GO halves",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        err[0] = 0;
        ck_assert_msg(nemesis_parse(S(bad[i]), &c, err, sizeof err) < 0, "'%s' accepted", bad[i]);
        ck_assert_msg(err[0], "no message for '%s'", bad[i]);
    }
}
END_TEST

START_TEST(json)
{
    char err[256];
    uint64_t rng = 1;
    sbuf o = { 0 };
    ck_assert_int_eq(nemesis_make(NEM_HALVES, 3, &rng, &plan, err, sizeof err), 0);
    nemesis_plan_json(&plan, (const char *const *)names7, &o);
    ck_assert_str_eq(sbuf_str(&o), "\"shape\":\"halves\",\"islands\":[[\"n1\"],[\"n2\",\"n3\"]],"
                                   "\"blocked\":[[\"n1\",\"n2\"],[\"n1\",\"n3\"],[\"n2\",\"n1\"],"
                                   "[\"n3\",\"n1\"]]");
    sbuf_reset(&o);
    ck_assert_int_eq(nemesis_make(NEM_BRIDGE, 3, &rng, &plan, err, sizeof err), 0);
    nemesis_plan_json(&plan, (const char *const *)names7, &o);
    ck_assert_ptr_nonnull(strstr(sbuf_str(&o), "\"bridge\":\"n2\""));
    sbuf_reset(&o);
    ck_assert_int_eq(nemesis_make(NEM_MAJORITIES_RING, 5, &rng, &plan, err, sizeof err), 0);
    nemesis_plan_json(&plan, (const char *const *)names7, &o);
    ck_assert_ptr_nonnull(strstr(sbuf_str(&o), "\"sees\":{\"n1\":["));
    sbuf_free(&o);
}
END_TEST

Suite *nemesis_suite(void)
{
    Suite *s = suite_create("nemesis");
    const TTest *cases[] = {
        halves_fixed, random_halves_seed, majorities_ring, bridge, random_isolate,
        random_one_way, too_few, sequence_replays, parse_cmds, json,
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        TCase *tc = tcase_create(cases[k]->name);
        tcase_set_timeout(tc, 30);
        tcase_add_test(tc, cases[k]);
        suite_add_tcase(s, tc);
    }
    return s;
}
