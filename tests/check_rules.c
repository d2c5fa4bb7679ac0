/* Unit tests of proxy/rules.c: the partition rules (directed blocked pairs
 * over node names), name matching, the CUT/FIX grammar and the RULES JSON.
 * Pure: no sockets, no processes. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rules.h"

/* A rules_spec is ~130 KB: keep it off the stack. */
static rules_spec spec;
static char errbuf[256];

/* Parse `text` (its bytes copied into a buffer followed by junk, not a NUL,
 * so that reading past len would show up as a wrong name). */
static char textbuf[RULES_MAX_SPEC_NAMES * 8 + 4096];
static int parse_n(const char *text, size_t n)
{
    ck_assert_uint_lt(n + 8, sizeof textbuf);
    memset(textbuf, 0, sizeof textbuf);
    memcpy(textbuf, text, n);
    memcpy(textbuf + n, ",zz9 zz8", 8);
    memset(errbuf, 0, sizeof errbuf);
    return rules_parse_spec(textbuf, n, &spec, errbuf, sizeof errbuf);
}
static int parse(const char *text)
{
    return parse_n(text, strlen(text));
}

/* Is exactly the pair (from, to) in r? */
static int has(const rules *r, const char *from, const char *to)
{
    int k = 0;
    for (size_t i = 0; i < r->n; i++)
        if (!strcmp(r->v[i].from, from) && !strcmp(r->v[i].to, to))
            k++;
    ck_assert_msg(k <= 1, "pair %s -> %s stored %d times", from, to, k);
    return k;
}

/* Parse text (must succeed) and apply it; returns the number changed. */
static int apply(rules *r, const char *text, int cut)
{
    int rc = parse(text);
    ck_assert_msg(rc == 0, "parse of \"%s\" failed: %s", text, errbuf);
    return rules_apply(r, &spec, cut);
}

/* ------------------------------------------------------------------ */

START_TEST(rules_name_match_cases)
{
    static const struct { const char *p, *x; int want; } T[] = {
        /* a bare alive name matches that alive name on any host */
        { "n1", "n1", 1 },
        { "n1", "n1@localhost", 1 },
        { "n1", "n1@other", 1 },
        { "n1", "n10", 0 },
        { "n1", "n10@localhost", 0 },
        { "n1", "n", 0 },
        { "n1", "n@localhost", 0 },
        { "n1", "m1", 0 },
        { "n1", "N1", 0 },
        { "n1", "", 0 },
        /* a full name matches exactly, or the bare alive name */
        { "n1@localhost", "n1@localhost", 1 },
        { "n1@localhost", "n1", 1 },
        { "n1@localhost", "n1@other", 0 },
        { "n1@localhost", "n1@localhost2", 0 },
        { "n1@localhost", "n1@localhos", 0 },
        { "n1@localhost", "n10@localhost", 0 },
        { "n1@localhost", "n10", 0 },
        { "n1@localhost", "n", 0 },
        { "n1@localhost", "localhost", 0 },
        /* "*" is every node */
        { "*", "n1", 1 },
        { "*", "n1@localhost", 1 },
        { "*", "x@y", 1 },
        { "*", "*", 1 },
    };
    for (size_t i = 0; i < sizeof T / sizeof T[0]; i++)
        ck_assert_msg(rules_name_match(T[i].p, T[i].x) == T[i].want,
                      "rules_name_match(\"%s\", \"%s\") = %d, expected %d", T[i].p, T[i].x,
                      rules_name_match(T[i].p, T[i].x), T[i].want);
}
END_TEST

START_TEST(rules_blocked_cases)
{
    rules r;
    rules_init(&r);
    ck_assert_uint_eq(r.n, 0);
    ck_assert_int_eq(rules_blocked(&r, "n1", "n2"), 0);

    /* directed: n1 -> n2 does not block n2 -> n1 */
    ck_assert_int_eq(rules_add(&r, "n1", "n2"), 1);
    ck_assert_int_eq(rules_blocked(&r, "n1", "n2"), 1);
    ck_assert_int_eq(rules_blocked(&r, "n1@localhost", "n2@localhost"), 1);
    ck_assert_int_eq(rules_blocked(&r, "n1@a", "n2@b"), 1);
    ck_assert_int_eq(rules_blocked(&r, "n2", "n1"), 0);
    ck_assert_int_eq(rules_blocked(&r, "n2@localhost", "n1@localhost"), 0);
    ck_assert_int_eq(rules_blocked(&r, "n1", "n3"), 0);
    ck_assert_int_eq(rules_blocked(&r, "n10", "n2"), 0);
    ck_assert_int_eq(rules_blocked(&r, "n1", "n20"), 0);

    /* empty or NULL names are never blocked */
    ck_assert_int_eq(rules_add(&r, "*", "*"), 1);
    ck_assert_int_eq(rules_blocked(&r, "n5", "n6"), 1);
    ck_assert_int_eq(rules_blocked(&r, "", "n2"), 0);
    ck_assert_int_eq(rules_blocked(&r, "n1", ""), 0);
    ck_assert_int_eq(rules_blocked(&r, "", ""), 0);
    ck_assert_int_eq(rules_blocked(&r, NULL, "n2"), 0);
    ck_assert_int_eq(rules_blocked(&r, "n1", NULL), 0);
    ck_assert_int_eq(rules_blocked(&r, NULL, NULL), 0);
    rules_clear(&r);

    /* a full-name rule only blocks that host */
    ck_assert_int_eq(rules_add(&r, "n1@h1", "n2"), 1);
    ck_assert_int_eq(rules_blocked(&r, "n1@h1", "n2@h9"), 1);
    ck_assert_int_eq(rules_blocked(&r, "n1@h2", "n2@h9"), 0);
    ck_assert_int_eq(rules_blocked(&r, "n1", "n2"), 1);
    rules_clear(&r);

    /* ISOLATE n3: (n3, *) and (*, n3) */
    ck_assert_int_eq(rules_add(&r, "n3", "*"), 1);
    ck_assert_int_eq(rules_add(&r, "*", "n3"), 1);
    ck_assert_int_eq(rules_blocked(&r, "n3", "n1"), 1);
    ck_assert_int_eq(rules_blocked(&r, "n1", "n3"), 1);
    ck_assert_int_eq(rules_blocked(&r, "n3@localhost", "n7@localhost"), 1);
    ck_assert_int_eq(rules_blocked(&r, "n7@localhost", "n3@localhost"), 1);
    ck_assert_int_eq(rules_blocked(&r, "n1", "n2"), 0);
    ck_assert_int_eq(rules_blocked(&r, "n30", "n1"), 0);
    ck_assert_int_eq(rules_blocked(&r, "n1", "n30"), 0);
    ck_assert_int_eq(rules_blocked(&r, "", "n3"), 0);
    ck_assert_int_eq(rules_blocked(&r, "n3", NULL), 0);

    /* only one direction of an ISOLATE */
    ck_assert_int_eq(rules_remove(&r, "*", "n3"), 1);
    ck_assert_int_eq(rules_blocked(&r, "n3", "n1"), 1);
    ck_assert_int_eq(rules_blocked(&r, "n1", "n3"), 0);
    rules_free(&r);
    ck_assert_ptr_null(r.v);
    ck_assert_uint_eq(r.n, 0);
}
END_TEST

START_TEST(rules_add_dedupes)
{
    rules r;
    rules_init(&r);
    ck_assert_int_eq(rules_add(&r, "n1", "n2"), 1);
    ck_assert_int_eq(rules_add(&r, "n1", "n2"), 0);
    ck_assert_uint_eq(r.n, 1);
    /* the other direction and other spellings are different pairs */
    ck_assert_int_eq(rules_add(&r, "n2", "n1"), 1);
    ck_assert_int_eq(rules_add(&r, "n1@localhost", "n2"), 1);
    ck_assert_int_eq(rules_add(&r, "n1", "n2@localhost"), 1);
    ck_assert_int_eq(rules_add(&r, "n2", "n1"), 0);
    ck_assert_uint_eq(r.n, 4);
    ck_assert_str_eq(r.v[0].from, "n1");
    ck_assert_str_eq(r.v[0].to, "n2");
    ck_assert_str_eq(r.v[1].from, "n2");
    ck_assert_str_eq(r.v[1].to, "n1");

    /* many pairs: the array grows and still dedupes */
    char a[32], b[32];
    for (int i = 0; i < 300; i++) {
        snprintf(a, sizeof a, "a%d", i);
        snprintf(b, sizeof b, "b%d@h", i);
        ck_assert_int_eq(rules_add(&r, a, b), 1);
    }
    ck_assert_uint_eq(r.n, 304);
    for (int i = 0; i < 300; i++) {
        snprintf(a, sizeof a, "a%d", i);
        snprintf(b, sizeof b, "b%d@h", i);
        ck_assert_int_eq(rules_add(&r, a, b), 0);
        ck_assert_int_eq(has(&r, a, b), 1);
        ck_assert_int_eq(rules_blocked(&r, a, b), 1);
    }
    ck_assert_uint_eq(r.n, 304);
    ck_assert_uint_ge(r.cap, r.n);
    rules_free(&r);
}
END_TEST

START_TEST(rules_remove_one)
{
    rules r;
    rules_init(&r);
    ck_assert_int_eq(rules_remove(&r, "n1", "n2"), 0);
    rules_add(&r, "n1", "n2");
    rules_add(&r, "n2", "n1");
    rules_add(&r, "n1", "n3");
    rules_add(&r, "n3", "*");
    ck_assert_uint_eq(r.n, 4);

    /* removes exactly that pair, not the reverse, not a matching pattern */
    ck_assert_int_eq(rules_remove(&r, "n1", "n2"), 1);
    ck_assert_uint_eq(r.n, 3);
    ck_assert_int_eq(has(&r, "n1", "n2"), 0);
    ck_assert_int_eq(has(&r, "n2", "n1"), 1);
    ck_assert_int_eq(has(&r, "n1", "n3"), 1);
    ck_assert_int_eq(has(&r, "n3", "*"), 1);
    ck_assert_int_eq(rules_blocked(&r, "n1", "n2"), 0);
    ck_assert_int_eq(rules_blocked(&r, "n2", "n1"), 1);

    /* absent: reported, nothing changes */
    ck_assert_int_eq(rules_remove(&r, "n1", "n2"), 0);
    ck_assert_int_eq(rules_remove(&r, "n3", "n1"), 0);      /* only (n3,*) is there */
    ck_assert_int_eq(rules_remove(&r, "n1@localhost", "n3"), 0);
    ck_assert_int_eq(rules_remove(&r, "n3", "n2"), 0);
    ck_assert_uint_eq(r.n, 3);

    ck_assert_int_eq(rules_remove(&r, "n3", "*"), 1);
    ck_assert_int_eq(rules_remove(&r, "n2", "n1"), 1);
    ck_assert_int_eq(rules_remove(&r, "n1", "n3"), 1);
    ck_assert_uint_eq(r.n, 0);
    ck_assert_int_eq(rules_remove(&r, "n1", "n3"), 0);
    /* removed pairs can come back */
    ck_assert_int_eq(rules_add(&r, "n1", "n3"), 1);
    ck_assert_int_eq(has(&r, "n1", "n3"), 1);
    rules_free(&r);
}
END_TEST

START_TEST(rules_clear_all)
{
    rules r;
    rules_init(&r);
    rules_clear(&r);                    /* on an empty set */
    ck_assert_uint_eq(r.n, 0);
    rules_add(&r, "n1", "n2");
    rules_add(&r, "*", "n3");
    rules_add(&r, "n3", "*");
    rules_clear(&r);
    ck_assert_uint_eq(r.n, 0);
    ck_assert_int_eq(rules_blocked(&r, "n1", "n2"), 0);
    ck_assert_int_eq(rules_blocked(&r, "n3", "n1"), 0);
    ck_assert_int_eq(rules_blocked(&r, "n1", "n3"), 0);
    /* usable afterwards */
    ck_assert_int_eq(rules_add(&r, "n1", "n2"), 1);
    ck_assert_int_eq(rules_add(&r, "n1", "n2"), 0);
    ck_assert_uint_eq(r.n, 1);
    rules_free(&r);
}
END_TEST

/* ------------------------------------------------------------------ */
/* the grammar */

START_TEST(rules_parse_two_islands)
{
    ck_assert_int_eq(parse("n1,n2 n3,n4,n5"), 0);
    ck_assert_int_eq(spec.oneway, 0);
    ck_assert_int_eq(spec.nislands, 2);
    ck_assert_int_eq(spec.nnames, 5);
    static const char *const names[] = { "n1", "n2", "n3", "n4", "n5" };
    static const int isl[] = { 0, 0, 1, 1, 1 };
    for (int i = 0; i < 5; i++) {
        ck_assert_str_eq(spec.names[i], names[i]);
        ck_assert_int_eq(spec.island_of[i], isl[i]);
    }

    rules r;
    rules_init(&r);
    ck_assert_int_eq(rules_apply(&r, &spec, 1), 12);
    ck_assert_uint_eq(r.n, 12);
    for (int a = 0; a < 5; a++)
        for (int b = 0; b < 5; b++) {
            int want = isl[a] != isl[b];
            ck_assert_msg(has(&r, names[a], names[b]) == want, "pair %s -> %s: expected %d",
                          names[a], names[b], want);
            ck_assert_int_eq(rules_blocked(&r, names[a], names[b]), want);
        }
    /* the same CUT again changes nothing */
    ck_assert_int_eq(rules_apply(&r, &spec, 1), 0);
    ck_assert_uint_eq(r.n, 12);
    rules_free(&r);
}
END_TEST

START_TEST(rules_parse_three_islands)
{
    rules r;
    rules_init(&r);
    ck_assert_int_eq(apply(&r, "a b,c d@h", 1), 10);
    ck_assert_int_eq(spec.nislands, 3);
    ck_assert_int_eq(spec.nnames, 4);
    ck_assert_int_eq(spec.island_of[0], 0);
    ck_assert_int_eq(spec.island_of[1], 1);
    ck_assert_int_eq(spec.island_of[2], 1);
    ck_assert_int_eq(spec.island_of[3], 2);
    ck_assert_str_eq(spec.names[3], "d@h");
    static const char *const names[] = { "a", "b", "c", "d@h" };
    static const int isl[] = { 0, 1, 1, 2 };
    ck_assert_uint_eq(r.n, 10);
    for (int i = 0; i < 4; i++)
        for (int j = 0; j < 4; j++)
            ck_assert_msg(has(&r, names[i], names[j]) == (isl[i] != isl[j]),
                          "pair %s -> %s", names[i], names[j]);
    rules_clear(&r);

    ck_assert_int_eq(apply(&r, "x y z", 1), 6);
    ck_assert_int_eq(spec.nislands, 3);
    ck_assert_int_eq(has(&r, "x", "z"), 1);
    ck_assert_int_eq(has(&r, "z", "y"), 1);
    rules_free(&r);
}
END_TEST

START_TEST(rules_parse_oneway)
{
    rules r;
    rules_init(&r);
    ck_assert_int_eq(apply(&r, "n1 -> n2,n3", 1), 2);
    ck_assert_int_eq(spec.oneway, 1);
    ck_assert_int_eq(spec.nislands, 2);
    ck_assert_int_eq(spec.nnames, 3);
    ck_assert_str_eq(spec.names[0], "n1");
    ck_assert_int_eq(spec.island_of[0], 0);
    ck_assert_int_eq(spec.island_of[1], 1);
    ck_assert_int_eq(spec.island_of[2], 1);
    ck_assert_uint_eq(r.n, 2);
    ck_assert_int_eq(has(&r, "n1", "n2"), 1);
    ck_assert_int_eq(has(&r, "n1", "n3"), 1);
    ck_assert_int_eq(rules_blocked(&r, "n2", "n1"), 0);
    ck_assert_int_eq(rules_blocked(&r, "n3", "n1"), 0);
    ck_assert_int_eq(rules_blocked(&r, "n2", "n3"), 0);
    ck_assert_int_eq(rules_blocked(&r, "n3", "n2"), 0);
    rules_clear(&r);

    /* several on the left */
    ck_assert_int_eq(apply(&r, "n1,n2 -> n3", 1), 2);
    ck_assert_int_eq(has(&r, "n1", "n3"), 1);
    ck_assert_int_eq(has(&r, "n2", "n3"), 1);
    ck_assert_int_eq(rules_blocked(&r, "n1", "n2"), 0);
    ck_assert_int_eq(rules_blocked(&r, "n3", "n1"), 0);
    rules_free(&r);
}
END_TEST

START_TEST(rules_parse_glued_arrow)
{
    rules r;
    rules_init(&r);
    ck_assert_int_eq(apply(&r, "n1,n2->n3", 1), 2);
    ck_assert_int_eq(spec.oneway, 1);
    ck_assert_int_eq(spec.nnames, 3);
    ck_assert_str_eq(spec.names[1], "n2");
    ck_assert_str_eq(spec.names[2], "n3");
    ck_assert_uint_eq(r.n, 2);
    ck_assert_int_eq(has(&r, "n1", "n3"), 1);
    ck_assert_int_eq(has(&r, "n2", "n3"), 1);
    rules_clear(&r);

    ck_assert_int_eq(apply(&r, "n1->n2", 1), 1);
    ck_assert_int_eq(has(&r, "n1", "n2"), 1);
    rules_clear(&r);
    ck_assert_int_eq(apply(&r, "n1@h ->n2@h,n3", 1), 2);
    ck_assert_int_eq(has(&r, "n1@h", "n2@h"), 1);
    ck_assert_int_eq(has(&r, "n1@h", "n3"), 1);
    rules_clear(&r);
    ck_assert_int_eq(apply(&r, "n1-> n2", 1), 1);
    ck_assert_int_eq(has(&r, "n1", "n2"), 1);
    rules_free(&r);
}
END_TEST

START_TEST(rules_parse_blanks)
{
    rules r;
    rules_init(&r);
    ck_assert_int_eq(apply(&r, "   n1,n2 \t  n3\t\t", 1), 4);
    ck_assert_int_eq(spec.nislands, 2);
    ck_assert_int_eq(spec.nnames, 3);
    ck_assert_str_eq(spec.names[2], "n3");
    ck_assert_int_eq(has(&r, "n1", "n3"), 1);
    ck_assert_int_eq(has(&r, "n3", "n2"), 1);
    rules_clear(&r);

    ck_assert_int_eq(apply(&r, "\tn1\t->\t n2,n3  ", 1), 2);
    ck_assert_int_eq(spec.oneway, 1);
    ck_assert_int_eq(has(&r, "n1", "n2"), 1);
    ck_assert_int_eq(has(&r, "n1", "n3"), 1);
    rules_clear(&r);

    ck_assert_int_eq(apply(&r, "a\tb", 1), 2);
    ck_assert_int_eq(has(&r, "a", "b"), 1);
    ck_assert_int_eq(has(&r, "b", "a"), 1);
    rules_free(&r);
}
END_TEST

/* The parser reads len bytes, not up to a NUL (parse_n puts ",zz9 zz8"
 * right after them). */
START_TEST(rules_parse_respects_len)
{
    ck_assert_int_eq(parse_n("n1 n2 n3", 5), 0);
    ck_assert_int_eq(spec.nnames, 2);
    ck_assert_str_eq(spec.names[0], "n1");
    ck_assert_str_eq(spec.names[1], "n2");
    ck_assert_int_eq(parse_n("n1 -> n2", 8), 0);
    ck_assert_int_eq(spec.nnames, 2);
    ck_assert_str_eq(spec.names[1], "n2");
    /* one island, even though what follows in memory would add more */
    ck_assert_int_eq(parse_n("n1", 2), -1);
    ck_assert_str_eq(errbuf, "needs at least two islands");
}
END_TEST

START_TEST(rules_fix_exact)
{
    rules r;
    rules_init(&r);
    rules_add(&r, "x", "y");
    rules_add(&r, "n3", "*");
    rules_add(&r, "*", "n3");
    rules_add(&r, "n1@h", "n3");             /* a different spelling: FIX n1 leaves it */
    ck_assert_int_eq(apply(&r, "n1,n2 n3,n4,n5", 1), 12);
    ck_assert_uint_eq(r.n, 16);

    /* FIX of the same spec removes exactly its 12 pairs */
    ck_assert_int_eq(apply(&r, "n1,n2 n3,n4,n5", 0), 12);
    ck_assert_uint_eq(r.n, 4);
    ck_assert_int_eq(has(&r, "x", "y"), 1);
    ck_assert_int_eq(has(&r, "n3", "*"), 1);
    ck_assert_int_eq(has(&r, "*", "n3"), 1);
    ck_assert_int_eq(has(&r, "n1@h", "n3"), 1);
    ck_assert_int_eq(has(&r, "n1", "n3"), 0);
    /* again: nothing to remove */
    ck_assert_int_eq(apply(&r, "n1,n2 n3,n4,n5", 0), 0);
    ck_assert_uint_eq(r.n, 4);

    /* FIX one way of a two-way cut leaves the other way */
    rules_clear(&r);
    ck_assert_int_eq(apply(&r, "n1 n2,n3", 1), 4);
    ck_assert_int_eq(apply(&r, "n2 -> n1", 0), 1);
    ck_assert_uint_eq(r.n, 3);
    ck_assert_int_eq(has(&r, "n1", "n2"), 1);
    ck_assert_int_eq(has(&r, "n2", "n1"), 0);
    ck_assert_int_eq(has(&r, "n1", "n3"), 1);
    ck_assert_int_eq(has(&r, "n3", "n1"), 1);

    /* FIX of a part of an island cut */
    rules_clear(&r);
    ck_assert_int_eq(apply(&r, "n1,n2 n3,n4", 1), 8);
    ck_assert_int_eq(apply(&r, "n1 n3", 0), 2);
    ck_assert_uint_eq(r.n, 6);
    ck_assert_int_eq(rules_blocked(&r, "n1", "n3"), 0);
    ck_assert_int_eq(rules_blocked(&r, "n3", "n1"), 0);
    ck_assert_int_eq(rules_blocked(&r, "n1", "n4"), 1);
    ck_assert_int_eq(rules_blocked(&r, "n2", "n3"), 1);
    rules_free(&r);
}
END_TEST

/* Every error and its message. */
static const struct { const char *text; const char *err; } ERRS[] = {
    /* empty islands and names */
    { "n1,,n2 n3", "empty island or empty name in 'n1,,n2'" },
    { ",n1 n2", "empty island or empty name in ',n1'" },
    { "n1 ,", "empty island or empty name in ','" },
    { "n1, n2", "empty name at the end of 'n1,'" },
    { "n1,n2, n3", "empty name at the end of 'n1,n2,'" },
    { "n1 n2,", "empty name at the end of 'n2,'" },
    { "n1 -> n2,", "empty name at the end of 'n2,'" },
    { "n1,->n2", "empty name at the end of 'n1,'" },
    /* a name twice */
    { "n1,n2 n2,n3", "n2 is in two islands" },
    { "n1,n1 n2", "n1 is named twice" },
    { "n1 n2 n1", "n1 is in two islands" },
    { "n1 -> n1", "n1 is in two islands" },
    { "n1,n2 -> n3,n2", "n2 is in two islands" },
    /* too few islands */
    { "n1,n2", "needs at least two islands" },
    { "n1", "needs at least two islands" },
    { "", "needs at least two islands" },
    { "  \t ", "needs at least two islands" },
    /* one way with nothing on a side, several islands on a side, arrows */
    { "-> n2", "empty island before '->'" },
    { "  ->n2", "empty island before '->'" },
    { "n1 ->", "empty island after '->'" },
    { "n1->  \t", "empty island after '->'" },
    { "->", "empty island before '->'" },
    { "n1 n2 -> n3", "one island on each side of '->' (use commas)" },
    { "n1 -> n2 n3", "one island on each side of '->' (use commas)" },
    { "n1 -> n2 -> n3", "more than one '->'" },
    { "n1->n2->n3", "more than one '->'" },
    { "n1 ->-> n2", "more than one '->'" },
    /* invalid names */
    { "n1 > n2", "invalid node name '>'" },
    { "n1 n>2", "invalid node name 'n>2'" },
    { "a@b@c n2", "invalid node name 'a@b@c'" },
    { "@h n2", "invalid node name '@h'" },
    { "n1@ n2", "invalid node name 'n1@'" },
    { "n1 @", "invalid node name '@'" },
    { "n1\001 n2", "invalid node name 'n1\001'" },
    { "n1 n\0332", "invalid node name 'n\0332'" },
    { "n1\177 n2", "invalid node name 'n1\177'" },
    { "n1\rn2 n3", "invalid node name 'n1\rn2'" },
    { "n1,n2\n n3", "invalid node name 'n2\n'" },
};

START_TEST(rules_parse_errors)
{
    for (size_t i = 0; i < sizeof ERRS / sizeof ERRS[0]; i++) {
        int rc = parse(ERRS[i].text);
        ck_assert_msg(rc == -1, "\"%s\": accepted, expected error \"%s\"", ERRS[i].text,
                      ERRS[i].err);
        ck_assert_msg(strcmp(errbuf, ERRS[i].err) == 0, "\"%s\": error \"%s\", expected \"%s\"",
                      ERRS[i].text, errbuf, ERRS[i].err);
    }
    /* a NUL byte inside the text is not a name character either */
    ck_assert_int_eq(parse_n("n1\0x n2", 7), -1);
    ck_assert_msg(strncmp(errbuf, "invalid node name '", 19) == 0, "NUL: \"%s\"", errbuf);

    /* a name longer than RULES_MAX_NAME */
    static char big[RULES_MAX_NAME + 8];
    memset(big, 'a', sizeof big);
    big[RULES_MAX_NAME + 1] = 0;               /* RULES_MAX_NAME + 1 bytes */
    char text[sizeof big + 8];
    snprintf(text, sizeof text, "%s n2", big);
    ck_assert_int_eq(parse(text), -1);
    ck_assert_msg(strncmp(errbuf, "invalid node name 'aaaa", 23) == 0, "long name: \"%s\"",
                  errbuf);
    /* exactly RULES_MAX_NAME bytes is fine */
    big[RULES_MAX_NAME] = 0;
    snprintf(text, sizeof text, "%s n2", big);
    ck_assert_int_eq(parse(text), 0);
    ck_assert_uint_eq(strlen(spec.names[0]), RULES_MAX_NAME);

    /* a small error buffer is not overrun and stays terminated */
    char small[8];
    memset(small, 'X', sizeof small);
    ck_assert_int_eq(rules_parse_spec("n1,n2 n2,n3", 11, &spec, small, 5), -1);
    ck_assert_str_eq(small, "n2 i");
    ck_assert_int_eq(small[5], 'X');
}
END_TEST

START_TEST(rules_parse_too_many)
{
    /* RULES_MAX_SPEC_NAMES names are fine, one more is an error */
    static char text[RULES_MAX_SPEC_NAMES * 8 + 64];
    size_t len = 0;
    for (int i = 0; i < RULES_MAX_SPEC_NAMES; i++)
        len += (size_t)snprintf(text + len, sizeof text - len, "%sn%d",
                                i == 0 ? "" : i == RULES_MAX_SPEC_NAMES / 2 ? " " : ",", i);
    ck_assert_int_eq(parse(text), 0);
    ck_assert_int_eq(spec.nnames, RULES_MAX_SPEC_NAMES);
    ck_assert_int_eq(spec.nislands, 2);
    ck_assert_str_eq(spec.names[RULES_MAX_SPEC_NAMES - 1], "n255");
    ck_assert_int_eq(spec.island_of[RULES_MAX_SPEC_NAMES - 1], 1);

    snprintf(text + len, sizeof text - len, ",n%d", RULES_MAX_SPEC_NAMES);
    ck_assert_int_eq(parse(text), -1);
    ck_assert_str_eq(errbuf, "too many names");

    /* also when the extra name is an island of its own, or after '->' */
    snprintf(text + len, sizeof text - len, " x");
    ck_assert_int_eq(parse(text), -1);
    ck_assert_str_eq(errbuf, "too many names");
    len = 0;
    for (int i = 0; i < RULES_MAX_SPEC_NAMES; i++)
        len += (size_t)snprintf(text + len, sizeof text - len, "%sn%d", i ? "," : "", i);
    snprintf(text + len, sizeof text - len, " -> x");
    ck_assert_int_eq(parse(text), -1);
    ck_assert_str_eq(errbuf, "too many names");
}
END_TEST

START_TEST(rules_valid_name_table)
{
    static char big[RULES_MAX_NAME + 2];
    memset(big, 'b', sizeof big);
    static const struct { const char *s; int n; int want; } T[] = {
        { "n1", -1, 1 },
        { "a", -1, 1 },
        { "n1@localhost", -1, 1 },
        { "a@b", -1, 1 },
        { "node_1-x.y", -1, 1 },
        { "N1@Host.Example.COM", -1, 1 },
        { "n\xc3\xb6" "de", -1, 1 },          /* UTF-8 is allowed */
        { "a\"b", -1, 1 },
        { "a\\b", -1, 1 },
        { "a-b", -1, 1 },
        { "", -1, 0 },
        { " ", -1, 0 },
        { "a b", -1, 0 },
        { " a", -1, 0 },
        { "a ", -1, 0 },
        { "a\tb", -1, 0 },
        { "a\nb", -1, 0 },
        { "a\rb", -1, 0 },
        { "a\001", -1, 0 },
        { "\037a", -1, 0 },
        { "a\177", -1, 0 },
        { "a,b", -1, 0 },
        { ",", -1, 0 },
        { "a>b", -1, 0 },
        { "->", -1, 0 },
        { ">", -1, 0 },
        { "*", -1, 1 },                       /* patterns are names too */
        { "a*", -1, 1 },
        { "*@h", -1, 1 },
        { "n?@*", -1, 1 },
        { "a@b@c", -1, 0 },
        { "a@@b", -1, 0 },
        { "@a", -1, 0 },
        { "a@", -1, 0 },
        { "@", -1, 0 },
        /* n is respected */
        { "a\0b", 3, 0 },
        { "n1 junk", 2, 1 },
        { "n1,n2", 2, 1 },
        { "n1@", 2, 1 },
        { "n1@h", 3, 0 },
        { "n1", 0, 0 },
    };
    for (size_t i = 0; i < sizeof T / sizeof T[0]; i++) {
        size_t n = T[i].n < 0 ? strlen(T[i].s) : (size_t)T[i].n;
        ck_assert_msg(rules_valid_name(T[i].s, n) == T[i].want,
                      "rules_valid_name(\"%s\", %zu) = %d, expected %d", T[i].s, n,
                      rules_valid_name(T[i].s, n), T[i].want);
    }
    /* the length limit */
    ck_assert_int_eq(rules_valid_name(big, RULES_MAX_NAME), 1);
    ck_assert_int_eq(rules_valid_name(big, RULES_MAX_NAME + 1), 0);
    big[100] = '@';
    ck_assert_int_eq(rules_valid_name(big, RULES_MAX_NAME), 1);
}
END_TEST

/* ------------------------------------------------------------------ */

static void assert_json(const rules *r, const char *want)
{
    sbuf b = { 0 };
    sbuf_addstr(&b, "OK ");                  /* appends to what is there */
    rules_json(r, &b);
    ck_assert_int_eq(b.oom, 0);
    ck_assert_ptr_nonnull(b.p);
    ck_assert_uint_eq(b.len, strlen(b.p));
    ck_assert_msg(strncmp(b.p, "OK ", 3) == 0, "prefix lost: \"%s\"", b.p);
    ck_assert_msg(strcmp(b.p + 3, want) == 0, "rules_json gave\n  %s\nexpected\n  %s", b.p + 3,
                  want);
    sbuf_free(&b);
}

START_TEST(rules_json_output)
{
    rules r;
    rules_init(&r);
    assert_json(&r, "[]");
    rules_add(&r, "n1", "n2");
    assert_json(&r, "[{\"from\":\"n1\",\"to\":\"n2\"}]");
    rules_add(&r, "n3@localhost", "*");
    rules_add(&r, "*", "n3@localhost");
    assert_json(&r, "[{\"from\":\"n1\",\"to\":\"n2\"},"
                    "{\"from\":\"n3@localhost\",\"to\":\"*\"},"
                    "{\"from\":\"*\",\"to\":\"n3@localhost\"}]");
    rules_clear(&r);
    assert_json(&r, "[]");

    /* escaping: quote, backslash, control bytes, bytes that are not UTF-8;
     * valid UTF-8 passes through */
    rules_add(&r, "a\"b\\c", "d\001e\037f\177");
    assert_json(&r, "[{\"from\":\"a\\\"b\\\\c\",\"to\":\"d\\u0001e\\u001ff\\u007f\"}]");
    rules_clear(&r);
    rules_add(&r, "n\xc3\xb6", "x\xff" "y");
    assert_json(&r, "[{\"from\":\"n\xc3\xb6\",\"to\":\"x\\udcffy\"}]");
    rules_clear(&r);

    /* from the grammar, names with quotes (valid names) come out escaped */
    ck_assert_int_eq(parse("a\"1 -> b\\2"), 0);
    ck_assert_int_eq(rules_apply(&r, &spec, 1), 1);
    assert_json(&r, "[{\"from\":\"a\\\"1\",\"to\":\"b\\\\2\"}]");
    rules_free(&r);
}
END_TEST

/* ------------------------------------------------------------------ */
/* patterns, ISOLATE ... EXCEPT, refusals */

START_TEST(rules_glob_match_cases)
{
    static const struct { const char *p, *x; int want; } T[] = {
        { "rabbitmqcli-*", "rabbitmqcli-123@host", 1 },
        { "rabbitmqcli-*", "rabbitmqcli-", 1 },
        { "rabbitmqcli-*", "rabbit@host", 0 },
        { "n?", "n1", 1 },
        { "n?", "n1@h", 1 },
        { "n?", "n10", 0 },
        { "n?", "n", 0 },
        { "n?", "n\xc3\xb6", 1 },               /* '?' is one character, not one byte */
        { "n??", "n\xc3\xb6", 0 },
        { "*\xb6", "n\xc3\xb6", 0 },            /* '*' does not stop inside a character */
        { "*\xc3\xb6", "n\xc3\xb6", 1 },
        { "*@h1", "a@h1", 1 },
        { "*@h1", "a@h2", 0 },
        { "*@h1", "a", 1 },                    /* no host on one side: alive parts */
        { "n*@*", "n1@x", 1 },
        { "n*@*", "m1@x", 0 },
        { "a*", "ab@c", 1 },
        { "*b", "a@b", 0 },                    /* '*' never crosses '@' */
        { "a*@h", "a@b@h", 0 },
        { "*a*b*", "xxaxxbxx", 1 },
        { "*a*b*", "xxbxxaxx", 0 },
        { "a*a*a*a*a*b", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", 0 },
        { "n1", "n*", 0 },                     /* a name with '*' is no pattern */
        { "n*", "n*", 1 },
        { "?", "", 0 },
        { "*", "n1@localhost", 1 },
    };
    for (size_t i = 0; i < sizeof T / sizeof T[0]; i++)
        ck_assert_msg(rules_name_match(T[i].p, T[i].x) == T[i].want,
                      "rules_name_match(\"%s\", \"%s\") = %d, expected %d", T[i].p, T[i].x,
                      rules_name_match(T[i].p, T[i].x), T[i].want);
    ck_assert_int_eq(rules_list_match(NULL, "a"), 0);
    ck_assert_int_eq(rules_list_match("", "a"), 0);
    ck_assert_int_eq(rules_list_match("me,rabbitmqcli-*", "me@h"), 1);
    ck_assert_int_eq(rules_list_match("me,rabbitmqcli-*", "rabbitmqcli-9"), 1);
    ck_assert_int_eq(rules_list_match("me,rabbitmqcli-*", "mee"), 0);
}
END_TEST

START_TEST(rules_globs_in_islands)
{
    rules r;
    rules_init(&r);
    ck_assert_int_eq(apply(&r, "rabbit* n1", 1), 2);
    ck_assert_uint_eq(r.nglob, 2);
    ck_assert_int_eq(rules_blocked(&r, "rabbit1@h", "n1@h"), 1);
    ck_assert_int_eq(rules_blocked(&r, "n1@h", "rabbit2@h"), 1);
    ck_assert_int_eq(rules_blocked(&r, "n1@h", "n2@h"), 0);
    ck_assert_int_eq(rules_blocked(&r, "n2@h", "rabbit2@h"), 0);
    /* FIX names pairs as written: "rabbit1" is not "rabbit*" */
    ck_assert_int_eq(apply(&r, "rabbit1 n1", 0), 0);
    ck_assert_int_eq(rules_blocked(&r, "rabbit1@h", "n1@h"), 1);
    ck_assert_int_eq(apply(&r, "rabbit* n1", 0), 2);
    ck_assert_uint_eq(r.n, 0);
    ck_assert_uint_eq(r.nglob, 0);
    /* "CUT n1 *" is ISOLATE n1, and FIX undoes it */
    ck_assert_int_eq(rules_isolate(&r, "n1", NULL), 2);
    ck_assert_int_eq(apply(&r, "n1 *", 1), 0);
    ck_assert_int_eq(apply(&r, "n1 *", 0), 2);
    ck_assert_int_eq(rules_blocked(&r, "n1", "n2"), 0);
    rules_free(&r);
}
END_TEST

START_TEST(rules_isolate_except)
{
    rules r;
    rules_init(&r);
    ck_assert_int_eq(rules_isolate(&r, "n1", "me,rabbitmqcli-*"), 2);
    ck_assert_int_eq(rules_blocked(&r, "n1@h", "n2@h"), 1);
    ck_assert_int_eq(rules_blocked(&r, "n2@h", "n1@h"), 1);
    ck_assert_int_eq(rules_blocked(&r, "n1@h", "me@h"), 0);
    ck_assert_int_eq(rules_blocked(&r, "me@h", "n1@h"), 0);
    ck_assert_int_eq(rules_blocked(&r, "rabbitmqcli-42@h", "n1@h"), 0);
    ck_assert_int_eq(rules_blocked(&r, "n1@h", "rabbitmqcli-42@h"), 0);
    ck_assert_int_eq(rules_blocked(&r, "n2@h", "n3@h"), 0);
    assert_json(&r, "[{\"from\":\"n1\",\"to\":\"*\",\"except\":\"me,rabbitmqcli-*\"},"
                    "{\"from\":\"*\",\"to\":\"n1\",\"except\":\"me,rabbitmqcli-*\"}]");
    /* the same again changes nothing; another ISOLATE of n1 replaces it */
    ck_assert_int_eq(rules_isolate(&r, "n1", "me,rabbitmqcli-*"), 0);
    ck_assert_int_eq(rules_isolate(&r, "n1", ""), 2);
    ck_assert_uint_eq(r.n, 2);
    ck_assert_int_eq(rules_blocked(&r, "n1@h", "me@h"), 1);
    assert_json(&r, "[{\"from\":\"n1\",\"to\":\"*\"},{\"from\":\"*\",\"to\":\"n1\"}]");
    ck_assert_int_eq(rules_isolate(&r, "n1", "me"), 2);
    ck_assert_int_eq(rules_blocked(&r, "n1@h", "me@h"), 0);
    /* a CUT of the same pair makes it whole again */
    ck_assert_int_eq(apply(&r, "n1 -> *", 1), 1);
    ck_assert_int_eq(rules_blocked(&r, "n1@h", "me@h"), 1);
    ck_assert_int_eq(rules_blocked(&r, "me@h", "n1@h"), 0);
    /* ISOLATE * is one pair */
    rules_clear(&r);
    ck_assert_int_eq(rules_isolate(&r, "*", "keep"), 1);
    ck_assert_int_eq(rules_blocked(&r, "a", "b"), 1);
    ck_assert_int_eq(rules_blocked(&r, "a", "keep"), 0);
    rules_free(&r);
}
END_TEST

START_TEST(rules_parse_isolate_cases)
{
    char name[RULES_MAX_NAME + 1], err[256];
    sbuf ex = { 0 };
    static const struct { const char *in, *name, *except; } OK[] = {
        { "n1", "n1", "" },
        { "n1@h", "n1@h", "" },
        { "rabbit*", "rabbit*", "" },
        { "n1 EXCEPT me", "n1", "me" },
        { "n1 except me,rabbitmqcli-*", "n1", "me,rabbitmqcli-*" },
        { "n1\tExCePt\t a@b", "n1", "a@b" },
        { "EXCEPT", "EXCEPT", "" },            /* a node may be called that */
    };
    for (size_t i = 0; i < sizeof OK / sizeof OK[0]; i++) {
        int rc = rules_parse_isolate(OK[i].in, strlen(OK[i].in), name, &ex, err, sizeof err);
        ck_assert_msg(rc == 0, "\"%s\" refused: %s", OK[i].in, err);
        ck_assert_str_eq(name, OK[i].name);
        ck_assert_str_eq(sbuf_str(&ex), OK[i].except);
    }
    static const struct { const char *in, *err; } BAD[] = {
        { "", "needs a node name" },
        { "n1 n2", "takes one node name (and EXCEPT names)" },
        { "n1,n2", "invalid node name 'n1,n2'" },
        { "n1 EXCEPT", "EXCEPT needs node names" },
        { "n1 EXCEPT a b", "EXCEPT takes comma-separated names, without blanks" },
        { "n1 EXCEPT a EXCEPT b", "EXCEPT takes comma-separated names, without blanks" },
        { "n1 EXCEPT a,,b", "empty name in the EXCEPT list" },
        { "n1 EXCEPT a,", "empty name in the EXCEPT list" },
        { "n1 EXCEPT a@", "invalid node name 'a@' after EXCEPT" },
        { "n1 EXCEPT n*", "n1 is both isolated and excepted" },
        { "@ EXCEPT a", "invalid node name '@'" },
        { "EXCEPT b", "takes one node name (and EXCEPT names)" },
    };
    for (size_t i = 0; i < sizeof BAD / sizeof BAD[0]; i++) {
        int rc = rules_parse_isolate(BAD[i].in, strlen(BAD[i].in), name, &ex, err, sizeof err);
        ck_assert_msg(rc == -1, "\"%s\" accepted", BAD[i].in);
        ck_assert_msg(strcmp(err, BAD[i].err) == 0, "\"%s\": error \"%s\", expected \"%s\"",
                      BAD[i].in, err, BAD[i].err);
    }
    /* len is respected */
    ck_assert_int_eq(rules_parse_isolate("n1 EXCEPT me", 2, name, &ex, err, sizeof err), 0);
    ck_assert_str_eq(name, "n1");
    ck_assert_str_eq(sbuf_str(&ex), "");
    sbuf_free(&ex);
}
END_TEST

/* Each refusal leaves the set exactly as it was (it used to be emptied by a
 * SPLIT that turned out too large). */
START_TEST(rules_refusals_change_nothing)
{
    rules r;
    rules_init(&r);
    ck_assert_int_eq(apply(&r, "a b", 1), 2);
    ck_assert_int_eq(rules_isolate(&r, "z", "me"), 2);
    sbuf before = { 0 };
    rules_json(&r, &before);
    /* SPLIT into 65 one-node islands: 4160 pairs */
    static char text[2048];
    size_t o = 0;
    for (int i = 0; i < 65; i++)
        o += (size_t)snprintf(text + o, sizeof text - o, "%si%d", i ? " " : "", i);
    ck_assert_int_eq(parse(text), 0);
    ck_assert_int_eq(rules_replace(&r, &spec), -2);
    ck_assert_int_eq(rules_apply(&r, &spec, 1), -2);
    /* too many pairs with a pattern */
    o = 0;
    for (int i = 0; i < 200; i++)
        o += (size_t)snprintf(text + o, sizeof text - o, "%sp%d", i ? "," : "", i);
    snprintf(text + o, sizeof text - o, " q*");
    ck_assert_int_eq(parse(text), 0);
    ck_assert_int_eq(rules_apply(&r, &spec, 1), -3);
    ck_assert_int_eq(rules_replace(&r, &spec), -3);
    sbuf after = { 0 };
    rules_json(&r, &after);
    ck_assert_msg(strcmp(sbuf_str(&before), sbuf_str(&after)) == 0,
                  "refusals changed the rules from %s to %s", sbuf_str(&before), sbuf_str(&after));
    ck_assert_int_eq(rules_blocked(&r, "a", "b"), 1);
    ck_assert_int_eq(rules_blocked(&r, "z", "q"), 1);
    ck_assert_int_eq(rules_blocked(&r, "z", "me"), 0);
    /* a SPLIT that fits replaces everything */
    ck_assert_int_eq(parse("x y"), 0);
    ck_assert_int_eq(rules_replace(&r, &spec), 2);
    ck_assert_uint_eq(r.n, 2);
    ck_assert_int_eq(rules_blocked(&r, "a", "b"), 0);
    ck_assert_int_eq(rules_blocked(&r, "x", "y"), 1);
    /* a full set refuses an ISOLATE whole */
    rules_clear(&r);
    for (int i = 0; (size_t)i < RULES_MAX - 1; i++) {
        char f[16];
        snprintf(f, sizeof f, "f%d", i);
        ck_assert_int_eq(rules_add(&r, f, "t"), 1);
    }
    ck_assert_int_eq(rules_isolate(&r, "n1", NULL), -2);
    ck_assert_uint_eq(r.n, RULES_MAX - 1);
    ck_assert_int_eq(rules_blocked(&r, "n1", "x"), 0);
    ck_assert_int_eq(rules_add(&r, "n1", "*"), 1);
    ck_assert_int_eq(rules_add(&r, "n2", "*"), -2);
    sbuf_free(&before);
    sbuf_free(&after);
    rules_free(&r);
}
END_TEST

/* The index (exact pairs by alive parts, patterns on a list) answers as a
 * scan of every pair would, through adds, removes and tombstones. */
START_TEST(rules_index_matches_scan)
{
    static const char *names[] = { "a", "b", "a@h1", "a@h2", "b@h1", "c", "c@h2", "*", "a*",
                                   "?@h1", "*@h2", "d" };
    static const char *probes[] = { "a", "a@h1", "a@h2", "a@h3", "b", "b@h1", "b@h2", "c@h2",
                                    "c@h1", "d", "d@h2", "ab@h1", "x@h2" };
    enum { NN = sizeof names / sizeof names[0], NP = sizeof probes / sizeof probes[0] };
    rules r;
    rules_init(&r);
    unsigned seed = 12345;
    for (int step = 0; step < 3000; step++) {
        seed = seed * 1103515245u + 12345u;
        const char *f = names[(seed >> 8) % NN], *t = names[(seed >> 16) % NN];
        if ((seed >> 4) % 3)
            ck_assert_int_ge(rules_add(&r, f, t), 0);
        else
            rules_remove(&r, f, t);
        if (step % 50)
            continue;
        size_t globs = 0;
        for (size_t k = 0; k < r.n; k++)
            globs += r.v[k].glob;
        ck_assert_uint_eq(globs, r.nglob);
        for (int i = 0; i < NP; i++)
            for (int j = 0; j < NP; j++) {
                int want = 0;
                for (size_t k = 0; k < r.n && !want; k++)
                    want = rules_name_match(r.v[k].from, probes[i]) &&
                           rules_name_match(r.v[k].to, probes[j]);
                ck_assert_msg(rules_blocked(&r, probes[i], probes[j]) == want,
                              "step %d: %s -> %s blocked %d, a scan says %d", step, probes[i],
                              probes[j], !want, want);
            }
    }
    rules_free(&r);
}
END_TEST

Suite *rules_suite(void)
{
    Suite *s = suite_create("rules");
    const TTest *cases[] = {
        rules_name_match_cases, rules_blocked_cases,     rules_add_dedupes,
        rules_remove_one,       rules_clear_all,         rules_parse_two_islands,
        rules_parse_three_islands, rules_parse_oneway,   rules_parse_glued_arrow,
        rules_parse_blanks,     rules_parse_respects_len, rules_fix_exact,
        rules_parse_errors,     rules_parse_too_many,    rules_valid_name_table,
        rules_json_output,      rules_glob_match_cases,  rules_globs_in_islands,
        rules_isolate_except,   rules_parse_isolate_cases, rules_refusals_change_nothing,
        rules_index_matches_scan,
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        TCase *tc = tcase_create(cases[k]->name);
        tcase_set_timeout(tc, 30);
        tcase_add_test(tc, cases[k]);
        suite_add_tcase(s, tc);
    }
    return s;
}
