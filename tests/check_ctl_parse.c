/* Unit tests of proxy/ctl_parse.c: splitting the control port's input into
 * lines and lines into a command word and its arguments.  Pure: no sockets. */
#include <check.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "ctl_parse.h"

/* Every command word and its code, as README.md and DESIGN.md list them. */
static const struct { const char *word; ctl_cmd cmd; } WORDS[] = {
    { "PING", CTL_PING },       { "NODES", CTL_NODES },       { "LINKS", CTL_LINKS },
    { "RULES", CTL_RULES },     { "STATUS", CTL_STATUS },     { "EVENTS", CTL_EVENTS },
    { "CUT", CTL_CUT },         { "FIX", CTL_FIX },           { "ISOLATE", CTL_ISOLATE },
    { "HEAL", CTL_HEAL },       { "MODE", CTL_MODE },         { "SHUTDOWN", CTL_SHUTDOWN },
    { "QUIT", CTL_QUIT },       { "SPLIT", CTL_SPLIT },
    /* the LD_PRELOAD shim's (man epmdpxy: "used by the shim") */
    { "APPLISTEN", CTL_APPLISTEN }, { "APPUNLISTEN", CTL_APPUNLISTEN },
    { "APPROUTE", CTL_APPROUTE },   { "APPCONNECT", CTL_APPCONNECT },
    /* link faults and schedules (README, "Faults beyond cuts") */
    { "DELAY", CTL_DELAY },     { "RATE", CTL_RATE },         { "RESET", CTL_RESET },
    { "SLICE", CTL_SLICE },     { "SLOWCLOSE", CTL_SLOWCLOSE }, { "CLEAR", CTL_CLEAR },
    { "FAULTS", CTL_FAULTS },   { "FLAP", CTL_FLAP },         { "NEMESIS", CTL_NEMESIS },
    { "APPS", CTL_APPS },
    { "APPUDP", CTL_APPUDP },       { "APPUNUDP", CTL_APPUNUDP },
    { "APPUDPROUTE", CTL_APPUDPROUTE },
    { "EPMDPORT", CTL_EPMDPORT },
};
#define NWORDS (sizeof WORDS / sizeof WORDS[0])

/* Parse a string (its bytes copied into a buffer with no NUL after them, so
 * reading past len would be seen by the sanitizers or by the garbage). */
static char linebuf[256];
static void parse(const char *text, ctl_line *out)
{
    size_t n = strlen(text);
    ck_assert_uint_lt(n, sizeof linebuf);
    memset(linebuf, 'Q', sizeof linebuf);
    memcpy(linebuf, text, n);
    ctl_parse_line(linebuf, n, out);
}

static void assert_args(const ctl_line *l, const char *want)
{
    size_t wl = strlen(want);
    ck_assert_msg(l->argslen == wl, "argslen %zu, expected %zu (\"%s\")", l->argslen, wl, want);
    if (wl)
        ck_assert_msg(memcmp(l->args, want, wl) == 0, "args \"%.*s\", expected \"%s\"",
                      (int)l->argslen, l->args, want);
    /* args point into the line */
    ck_assert_msg(l->args >= linebuf && l->args + l->argslen <= linebuf + sizeof linebuf,
                  "args do not point into the line");
}

/* ------------------------------------------------------------------ */
/* ctl_next_line */

START_TEST(next_line_lf)
{
    size_t used = 999;
    ck_assert_int_eq(ctl_next_line("PING\n", 5, &used), 4);
    ck_assert_uint_eq(used, 5);
    ck_assert_int_eq(ctl_next_line("PING\nNODES\n", 11, &used), 4);
    ck_assert_uint_eq(used, 5);
}
END_TEST

START_TEST(next_line_crlf)
{
    size_t used = 999;
    ck_assert_int_eq(ctl_next_line("PING\r\n", 6, &used), 4);
    ck_assert_uint_eq(used, 6);
    /* only the \r right before the \n belongs to the terminator */
    ck_assert_int_eq(ctl_next_line("A\rB\n", 4, &used), 3);
    ck_assert_uint_eq(used, 4);
    ck_assert_int_eq(ctl_next_line("A\r\r\n", 4, &used), 2);
    ck_assert_uint_eq(used, 4);
}
END_TEST

START_TEST(next_line_incomplete)
{
    size_t used = 999;
    ck_assert_int_eq(ctl_next_line("PING", 4, &used), -1);
    ck_assert_int_eq(ctl_next_line("PING\r", 5, &used), -1);
    ck_assert_int_eq(ctl_next_line("", 0, &used), -1);
    /* a \n beyond n does not count */
    ck_assert_int_eq(ctl_next_line("PING\n", 4, &used), -1);
    /* a NUL is just a byte */
    ck_assert_int_eq(ctl_next_line("a\0b\n", 4, &used), 3);
    ck_assert_uint_eq(used, 4);
}
END_TEST

START_TEST(next_line_empty)
{
    size_t used = 999;
    ck_assert_int_eq(ctl_next_line("\n", 1, &used), 0);
    ck_assert_uint_eq(used, 1);
    ck_assert_int_eq(ctl_next_line("\r\n", 2, &used), 0);
    ck_assert_uint_eq(used, 2);
    ck_assert_int_eq(ctl_next_line("\nPING\n", 6, &used), 0);
    ck_assert_uint_eq(used, 1);
}
END_TEST

START_TEST(next_line_several)
{
    static const char buf[] = "PING\nCUT n1,n2 n3\r\n\n\r\nnodes\nHEA";
    size_t n = sizeof buf - 1, off = 0, used;
    static const char *want[] = { "PING", "CUT n1,n2 n3", "", "", "nodes" };
    for (size_t k = 0; k < 5; k++) {
        used = 0;
        long len = ctl_next_line(buf + off, n - off, &used);
        ck_assert_msg(len == (long)strlen(want[k]), "line %zu: len %ld", k, len);
        ck_assert_msg(memcmp(buf + off, want[k], (size_t)len) == 0, "line %zu: \"%.*s\"", k,
                      (int)len, buf + off);
        ck_assert_uint_gt(used, (size_t)len);
        off += used;
    }
    ck_assert_int_eq(ctl_next_line(buf + off, n - off, &used), -1);
    ck_assert_str_eq(buf + off, "HEA");
}
END_TEST

/* ------------------------------------------------------------------ */
/* ctl_parse_line */

START_TEST(parse_every_word)
{
    ctl_line l;
    for (size_t k = 0; k < NWORDS; k++) {
        char low[32], mixed[32];
        size_t n = strlen(WORDS[k].word);
        for (size_t i = 0; i <= n; i++) {
            char c = WORDS[k].word[i];
            low[i] = (char)(c >= 'A' && c <= 'Z' ? c + 32 : c);
            mixed[i] = (char)(i % 2 ? low[i] : c);
        }
        const char *forms[] = { WORDS[k].word, low, mixed };
        for (size_t f = 0; f < 3; f++) {
            parse(forms[f], &l);
            ck_assert_msg(l.cmd == WORDS[k].cmd, "\"%s\": cmd %d, expected %d", forms[f],
                          (int)l.cmd, (int)WORDS[k].cmd);
            ck_assert_str_eq(l.word, forms[f]);       /* the word as sent */
            assert_args(&l, "");
        }
    }
}
END_TEST

START_TEST(parse_blanks)
{
    ctl_line l;
    parse("  \t PING \t ", &l);
    ck_assert_int_eq(l.cmd, CTL_PING);
    ck_assert_str_eq(l.word, "PING");
    assert_args(&l, "");
    parse("\tstatus", &l);
    ck_assert_int_eq(l.cmd, CTL_STATUS);
    parse("HEAL\t", &l);
    ck_assert_int_eq(l.cmd, CTL_HEAL);
    assert_args(&l, "");
    /* a stray \r (from "\r\r\n") is a blank */
    parse("QUIT\r", &l);
    ck_assert_int_eq(l.cmd, CTL_QUIT);
    assert_args(&l, "");
    /* the word ends at a tab as well as a space */
    parse("MODE\thold", &l);
    ck_assert_int_eq(l.cmd, CTL_MODE);
    assert_args(&l, "hold");
}
END_TEST

START_TEST(parse_args_exact)
{
    ctl_line l;
    parse("CUT n1,n2 n3", &l);
    ck_assert_int_eq(l.cmd, CTL_CUT);
    assert_args(&l, "n1,n2 n3");
    ck_assert_ptr_eq(l.args, linebuf + 4);
    parse("cut   n1 -> n2,n3  \t", &l);
    ck_assert_int_eq(l.cmd, CTL_CUT);
    assert_args(&l, "n1 -> n2,n3");
    /* blanks inside the arguments are kept as they are */
    parse(" FIX  a@h1,b  \t c@h2 ", &l);
    ck_assert_int_eq(l.cmd, CTL_FIX);
    assert_args(&l, "a@h1,b  \t c@h2");
    parse("ISOLATE n3", &l);
    ck_assert_int_eq(l.cmd, CTL_ISOLATE);
    assert_args(&l, "n3");
    parse("MODE reset", &l);
    ck_assert_int_eq(l.cmd, CTL_MODE);
    assert_args(&l, "reset");
    /* arguments after a command that takes none are still reported */
    parse("PING extra words", &l);
    ck_assert_int_eq(l.cmd, CTL_PING);
    assert_args(&l, "extra words");
    /* case of the arguments is kept */
    parse("cut N1,n2 N3", &l);
    assert_args(&l, "N1,n2 N3");
}
END_TEST

START_TEST(parse_len_respected)
{
    /* only len bytes are the line */
    ctl_line l;
    static const char text[] = "PINGXYZ";
    ctl_parse_line(text, 4, &l);
    ck_assert_int_eq(l.cmd, CTL_PING);
    ck_assert_uint_eq(l.argslen, 0);
    static const char text2[] = "CUT a b|garbage";
    ctl_parse_line(text2, 7, &l);
    ck_assert_int_eq(l.cmd, CTL_CUT);
    ck_assert_uint_eq(l.argslen, 3);
    ck_assert_int_eq(memcmp(l.args, "a b", 3), 0);
    ctl_parse_line(text2, 0, &l);
    ck_assert_int_eq(l.cmd, CTL_EMPTY);
}
END_TEST

START_TEST(parse_unknown)
{
    ctl_line l;
    parse("FOO bar baz", &l);
    ck_assert_int_eq(l.cmd, CTL_UNKNOWN);
    ck_assert_str_eq(l.word, "FOO");
    assert_args(&l, "bar baz");
    /* prefixes and extensions of real words are not those words */
    static const char *near[] = { "PIN", "PINGX", "PING2", "CUTn1", "NODE", "NODESS",
                                  "HEA", "HEALS", "SHUT", "Q", "QUITT", "ISOLATED",
                                  "MODE:", "P1NG", "-PING" };
    for (size_t k = 0; k < sizeof near / sizeof near[0]; k++) {
        parse(near[k], &l);
        ck_assert_msg(l.cmd == CTL_UNKNOWN, "\"%s\": cmd %d, expected UNKNOWN", near[k],
                      (int)l.cmd);
        ck_assert_str_eq(l.word, near[k]);
    }
    /* a NUL inside the word does not make it match */
    static const char nul[] = "PI\0NG";
    ctl_parse_line(nul, 5, &l);
    ck_assert_int_eq(l.cmd, CTL_UNKNOWN);
    static const char nul2[] = "PING\0";
    ctl_parse_line(nul2, 5, &l);
    ck_assert_int_eq(l.cmd, CTL_UNKNOWN);
}
END_TEST

START_TEST(parse_unknown_long_word)
{
    ctl_line l;
    char text[200];
    /* 31 characters fit exactly */
    memset(text, 'W', 31);
    text[31] = 0;
    parse(text, &l);
    ck_assert_int_eq(l.cmd, CTL_UNKNOWN);
    ck_assert_uint_eq(strlen(l.word), 31);
    ck_assert_str_eq(l.word, text);
    /* 32 and 150: cut to 31, NUL-terminated, the arguments still found */
    for (size_t wl = 32; wl <= 150; wl += 118) {
        memset(text, 'W', wl);
        memcpy(text + wl, " arg1 arg2", 11);
        parse(text, &l);
        ck_assert_int_eq(l.cmd, CTL_UNKNOWN);
        ck_assert_uint_eq(strlen(l.word), sizeof l.word - 1);
        ck_assert_int_eq(memcmp(l.word, text, sizeof l.word - 1), 0);
        assert_args(&l, "arg1 arg2");
    }
    /* a real word followed by more letters, longer than the buffer */
    memcpy(text, "SHUTDOWN", 8);
    memset(text + 8, 'X', 40);
    text[48] = 0;
    parse(text, &l);
    ck_assert_int_eq(l.cmd, CTL_UNKNOWN);
    ck_assert_int_eq(memcmp(l.word, "SHUTDOWNXXX", 11), 0);
}
END_TEST

START_TEST(parse_empty)
{
    static const char *blank[] = { "", " ", "\t", "  \t  ", "\r", " \r" };
    for (size_t k = 0; k < sizeof blank / sizeof blank[0]; k++) {
        ctl_line l;
        memset(&l, 0x5a, sizeof l);
        parse(blank[k], &l);
        ck_assert_msg(l.cmd == CTL_EMPTY, "blank line #%zu: cmd %d", k, (int)l.cmd);
        ck_assert_str_eq(l.word, "");
        ck_assert_uint_eq(l.argslen, 0);
    }
}
END_TEST

/* ------------------------------------------------------------------ */
/* ctl_cmd_name */

START_TEST(cmd_names)
{
    for (size_t k = 0; k < NWORDS; k++) {
        ck_assert_str_eq(ctl_cmd_name(WORDS[k].cmd), WORDS[k].word);
        /* and back */
        ctl_line l;
        parse(ctl_cmd_name(WORDS[k].cmd), &l);
        ck_assert_int_eq(l.cmd, WORDS[k].cmd);
    }
    ck_assert_str_eq(ctl_cmd_name(CTL_UNKNOWN), "UNKNOWN");
    ck_assert_str_eq(ctl_cmd_name(CTL_EMPTY), "");
    ck_assert_str_eq(ctl_cmd_name((ctl_cmd)999), "UNKNOWN");
    /* every code between EMPTY and UNKNOWN has a distinct upper-case name */
    for (int a = CTL_EMPTY + 1; a < CTL_UNKNOWN; a++) {
        const char *na = ctl_cmd_name((ctl_cmd)a);
        ck_assert_ptr_nonnull(na);
        ck_assert_uint_gt(strlen(na), 0);
        ck_assert_str_ne(na, "UNKNOWN");
        for (const char *p = na; *p; p++)
            ck_assert_msg(*p >= 'A' && *p <= 'Z', "name \"%s\" not upper case", na);
        for (int b = a + 1; b < CTL_UNKNOWN; b++)
            ck_assert_str_ne(na, ctl_cmd_name((ctl_cmd)b));
    }
    ck_assert_int_eq(CTL_UNKNOWN - CTL_EMPTY - 1, (int)NWORDS);
}
END_TEST

/* Which commands take arguments: the others refuse any ("HEAL extra"). */
START_TEST(takes_args)
{
    static const struct { ctl_cmd cmd; int args; } T[] = {
        { CTL_PING, 0 },    { CTL_NODES, 0 }, { CTL_LINKS, 0 },   { CTL_RULES, 0 },
        { CTL_STATUS, 0 },  { CTL_HEAL, 0 },  { CTL_SHUTDOWN, 0 }, { CTL_QUIT, 0 },
        { CTL_EVENTS, 1 },  { CTL_CUT, 1 },   { CTL_SPLIT, 1 },   { CTL_FIX, 1 },
        { CTL_ISOLATE, 1 }, { CTL_MODE, 1 },  { CTL_EPMDPORT, 1 }, { CTL_EMPTY, 0 },
        { CTL_UNKNOWN, 0 },
    };
    for (size_t i = 0; i < sizeof T / sizeof T[0]; i++)
        ck_assert_msg(ctl_cmd_takes_args(T[i].cmd) == T[i].args, "%s: takes args %d, want %d",
                      ctl_cmd_name(T[i].cmd), ctl_cmd_takes_args(T[i].cmd), T[i].args);
}
END_TEST

START_TEST(max_line_constant)
{
    ck_assert_int_eq(CTL_MAX_LINE, 65536);
}
END_TEST

Suite *ctl_parse_suite(void)
{
    Suite *s = suite_create("ctl_parse");
    const TTest *cases[] = {
        next_line_lf,     next_line_crlf,   next_line_incomplete, next_line_empty,
        next_line_several, parse_every_word, parse_blanks,        parse_args_exact, takes_args,
        parse_len_respected, parse_unknown, parse_unknown_long_word, parse_empty,
        cmd_names,        max_line_constant,
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        TCase *tc = tcase_create(cases[k]->name);
        tcase_set_timeout(tc, 30);
        tcase_add_test(tc, cases[k]);
        suite_add_tcase(s, tc);
    }
    return s;
}
