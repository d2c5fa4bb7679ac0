/* Unit tests of proxy/http.c (the HTTP/1.1 request parser) and
 * proxy/http_body.c (JSON bodies to command arguments).  Pure: no sockets. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http.h"
#include "http_body.h"
#include "rules.h"
#include "sbuf.h"

/* The bytes of text in a heap block of exactly that size (no NUL after
 * them), so a read past the end is seen by the sanitizers. */
static char *dup_exact(const char *text, size_t n)
{
    char *p = malloc(n ? n : 1);
    ck_assert_ptr_nonnull(p);
    memcpy(p, text, n);
    return p;
}

/* Parse text in one go; returns the result, fills *r and *status. */
static int parse(const char *text, http_req *r, int *status)
{
    size_t n = strlen(text), scan = 0;
    char *p = dup_exact(text, n);
    int rc = http_parse(p, n, &scan, r, status);
    /* r points into p: callers only look at scalars and copies after this */
    static char *last;
    free(last);
    last = p;
    return rc;
}

static void expect_error(const char *text, int want)
{
    http_req r;
    int status;
    int rc = parse(text, &r, &status);
    ck_assert_msg(rc == HTTP_ERROR && status == want, "%.60s...: rc %d status %d, want error %d",
                  text, rc, status, want);
}

#define GET_OK "GET /status HTTP/1.1\r\nHost: x\r\n\r\n"

START_TEST(simple_get)
{
    http_req r;
    int status;
    ck_assert_int_eq(parse("GET /events?since=12&x HTTP/1.1\r\nHost: localhost:1\r\n"
                           "Accept:  */*  \r\n\r\n", &r, &status), HTTP_DONE);
    ck_assert_str_eq(r.method, "GET");
    ck_assert_int_eq((int)r.pathlen, 7);
    ck_assert(memcmp(r.path, "/events", 7) == 0);
    ck_assert_int_eq((int)r.querylen, 10);
    ck_assert_int_eq(r.minor, 1);
    ck_assert_int_eq(r.keep_alive, 1);
    ck_assert_int_eq(r.nhdr, 2);
    size_t n;
    const char *v = http_header(&r, "accept", &n);
    ck_assert_msg(v && n == 3 && memcmp(v, "*/*", 3) == 0, "Accept value trimmed");
    v = http_query_param(&r, "since", &n);
    ck_assert_msg(v && n == 2 && memcmp(v, "12", 2) == 0, "since=12");
    v = http_query_param(&r, "x", &n);
    ck_assert_msg(v && n == 0, "x present, empty");
    ck_assert_ptr_null(http_query_param(&r, "sinc", &n));
    ck_assert_int_eq((int)r.total, (int)strlen("GET /events?since=12&x HTTP/1.1\r\nHost: localhost:1\r\n"
                                               "Accept:  */*  \r\n\r\n"));
    ck_assert_int_eq((int)r.body_len, 0);
}
END_TEST

START_TEST(bare_lf_and_leading_blank_lines)
{
    http_req r;
    int status;
    const char *t = "\r\n\nGET / HTTP/1.0\n\n";
    ck_assert_int_eq(parse(t, &r, &status), HTTP_DONE);
    ck_assert_int_eq((int)r.total, (int)strlen(t));
    ck_assert_int_eq(r.minor, 0);
    ck_assert_int_eq(r.keep_alive, 0);   /* 1.0 closes by default */
    ck_assert_int_eq((int)r.pathlen, 1);
}
END_TEST

/* Fed one byte at a time with *scan carried: "need more" until the last
 * byte, then the same request as in one go. */
START_TEST(trickle)
{
    const char *t = "POST /cut HTTP/1.1\r\nHost: h\r\nContent-Type: application/json\r\n"
                    "Content-Length: 5\r\n\r\n{\"a\"}";
    size_t n = strlen(t), scan = 0;
    http_req r;
    int status;
    for (size_t k = 0; k < n; k++) {
        char *p = dup_exact(t, k);
        int rc = http_parse(p, k, &scan, &r, &status);
        ck_assert_msg(rc == HTTP_MORE, "prefix of %zu: rc %d (status %d)", k, rc, status);
        ck_assert_msg(scan <= k, "scan %zu past the %zu bytes", scan, k);
        if (r.head_done)
            ck_assert_int_eq((int)r.total, (int)n);
        free(p);
    }
    char *p = dup_exact(t, n);
    ck_assert_int_eq(http_parse(p, n, &scan, &r, &status), HTTP_DONE);
    ck_assert_int_eq((int)r.body_len, 5);
    ck_assert(memcmp(r.body, "{\"a\"}", 5) == 0);
    free(p);
}
END_TEST

START_TEST(pipelined)
{
    http_req r;
    int status;
    const char *t = GET_OK "GET /nodes HTTP/1.1\r\nHost: x\r\n\r\n";
    ck_assert_int_eq(parse(t, &r, &status), HTTP_DONE);
    ck_assert_int_eq((int)r.total, (int)strlen(GET_OK));
    ck_assert(memcmp(r.path, "/status", 7) == 0);
}
END_TEST

START_TEST(body_incomplete)
{
    http_req r;
    int status;
    ck_assert_int_eq(parse("PUT /mode HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n"
                           "Expect: 100-continue\r\n\r\n{\"mo", &r, &status), HTTP_MORE);
    ck_assert_int_eq(r.head_done, 1);
    ck_assert_int_eq(r.expect_continue, 1);
    ck_assert_int_eq((int)r.body_len, 10);
    ck_assert_int_eq((int)r.total, (int)r.head_len + 10);
}
END_TEST

START_TEST(connection_header)
{
    http_req r;
    int status;
    ck_assert_int_eq(parse("GET / HTTP/1.1\r\nHost: x\r\nConnection: foo, Close\r\n\r\n", &r, &status),
                     HTTP_DONE);
    ck_assert_int_eq(r.keep_alive, 0);
    ck_assert_int_eq(parse("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", &r, &status), HTTP_DONE);
    ck_assert_int_eq(r.keep_alive, 1);
}
END_TEST

START_TEST(bad_request_lines)
{
    expect_error("get / HTTP/1.1\r\nHost: x\r\n\r\n", 400);
    expect_error("GET  / HTTP/1.1\r\nHost: x\r\n\r\n", 400);
    expect_error("GET status HTTP/1.1\r\nHost: x\r\n\r\n", 400);
    expect_error("GET http://x/ HTTP/1.1\r\nHost: x\r\n\r\n", 400);
    expect_error("GET / HTTP/1.1 \r\nHost: x\r\n\r\n", 400);
    expect_error("GET / HTTP/11\r\nHost: x\r\n\r\n", 400);
    expect_error("GET /\x01 HTTP/1.1\r\nHost: x\r\n\r\n", 400);
    expect_error("GET / HTTP/2.0\r\nHost: x\r\n\r\n", 505);
    expect_error("ABCDEFGHIJKLMNOPQ / HTTP/1.1\r\nHost: x\r\n\r\n", 501);
    expect_error("\r\r\n\r\n", 400);
}
END_TEST

START_TEST(bad_headers)
{
    expect_error("GET / HTTP/1.1\r\n\r\n", 400);                                  /* no Host */
    expect_error("GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400);
    expect_error("GET / HTTP/1.1\r\nHost: x\r\nX-A: 1\r\n  folded\r\n\r\n", 400);
    expect_error("GET / HTTP/1.1\r\nHost: x\r\nNoColon\r\n\r\n", 400);
    expect_error("GET / HTTP/1.1\r\nHost : x\r\n\r\n", 400);
    expect_error("GET / HTTP/1.1\r\nHost: x\r\nX: a\x01z\r\n\r\n", 400);
    expect_error("GET / HTTP/1.1\r\nHost: x\r\nX: a\rz\r\n\r\n", 400);
    expect_error("GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 1x\r\n\r\n", 400);
    expect_error("GET / HTTP/1.1\r\nHost: x\r\nContent-Length: \r\n\r\n", 400);
    expect_error("GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n", 400);
    expect_error("GET / HTTP/1.1\r\nHost: x\r\nExpect: magic\r\n\r\n", 417);
}
END_TEST

START_TEST(framing_refused)
{
    expect_error("POST /cut HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n", 411);
    expect_error("POST /cut HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", 411);
    expect_error("POST /cut HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n", 501);
    expect_error("POST /cut HTTP/1.1\r\nHost: x\r\nContent-Length: 65537\r\n\r\n", 413);
    expect_error("POST /cut HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999999999999999\r\n\r\n", 413);
    /* exactly the limit is fine (and needs more) */
    http_req r;
    int status;
    ck_assert_int_eq(parse("POST /cut HTTP/1.1\r\nHost: x\r\nContent-Length: 65536\r\n\r\n", &r, &status),
                     HTTP_MORE);
    ck_assert_int_eq((int)r.body_len, HTTP_MAX_BODY);
}
END_TEST

START_TEST(limits)
{
    /* a request line past the limit is refused before its newline comes */
    size_t n = HTTP_MAX_LINE + 2;
    char *p = malloc(n);
    memcpy(p, "GET /", 5);
    memset(p + 5, 'a', n - 5);
    size_t scan = 0;
    http_req r;
    int status;
    ck_assert_int_eq(http_parse(p, n, &scan, &r, &status), HTTP_ERROR);
    ck_assert_int_eq(status, 414);
    free(p);

    /* a head that never ends */
    sbuf b = { 0 };
    sbuf_addstr(&b, "GET / HTTP/1.1\r\nHost: x\r\n");
    while (b.len <= HTTP_MAX_HEAD)
        sbuf_addstr(&b, "X-Filler: 0123456789012345678901234567890123456789\r\n");
    scan = 0;
    ck_assert_int_eq(http_parse(b.p, b.len, &scan, &r, &status), HTTP_ERROR);
    ck_assert_int_eq(status, 431);

    /* too many header fields, though short */
    sbuf_reset(&b);
    sbuf_addstr(&b, "GET / HTTP/1.1\r\nHost: x\r\n");
    for (int k = 0; k < HTTP_MAX_HEADERS; k++)
        sbuf_addstr(&b, "A: b\r\n");
    sbuf_addstr(&b, "\r\n");
    scan = 0;
    ck_assert_int_eq(http_parse(b.p, b.len, &scan, &r, &status), HTTP_ERROR);
    ck_assert_int_eq(status, 431);

    /* HTTP_MAX_HEADERS fields, Host included, is fine */
    sbuf_reset(&b);
    sbuf_addstr(&b, "GET / HTTP/1.1\r\nHost: x\r\n");
    for (int k = 1; k < HTTP_MAX_HEADERS; k++)
        sbuf_addstr(&b, "A: b\r\n");
    sbuf_addstr(&b, "\r\n");
    scan = 0;
    ck_assert_int_eq(http_parse(b.p, b.len, &scan, &r, &status), HTTP_DONE);
    ck_assert_int_eq(r.nhdr, HTTP_MAX_HEADERS);
    sbuf_free(&b);
}
END_TEST

START_TEST(request_line_detection)
{
    static const char *yes[] = { "GET / HTTP/1.1", "POST /cut HTTP/1.0", "PUT /mode?x=1 HTTP/1.1",
                                 "FOO /x/y HTTP/1.9" };
    static const char *no[] = { "PING", "CUT n1,n2 n3", "GET / HTTP/2.0", "get / HTTP/1.1",
                                "GET x HTTP/1.1", "GET / HTTP/1.1 ", "GET /", "GET / HTTP/1.",
                                "", " GET / HTTP/1.1", "GET  / HTTP/1.1", "ISOLATE /x HTTP/1.1x",
                                "ABCDEFGHIJKLMNOPQ / HTTP/1.1" };
    for (size_t k = 0; k < sizeof yes / sizeof yes[0]; k++)
        ck_assert_msg(http_is_request_line(yes[k], strlen(yes[k])), "'%s' is HTTP", yes[k]);
    for (size_t k = 0; k < sizeof no / sizeof no[0]; k++)
        ck_assert_msg(!http_is_request_line(no[k], strlen(no[k])), "'%s' is not HTTP", no[k]);
    ck_assert(!http_is_request_line("GET / HTTP/1.1", 13));   /* length respected */
}
END_TEST

START_TEST(tokens)
{
    ck_assert(http_has_token("keep-alive, Upgrade", 19, "upgrade"));
    ck_assert(http_has_token(" close ", 7, "close"));
    ck_assert(!http_has_token("closed", 6, "close"));
    ck_assert(!http_has_token("", 0, "close"));
    ck_assert_str_eq(http_reason(404), "Not Found");
    ck_assert_str_eq(http_reason(413), "Content Too Large");
    ck_assert_str_eq(http_reason(999), "");
}
END_TEST

/* ---- bodies ---- */

static void expect_args(http_body_kind kind, const char *body, const char *want)
{
    sbuf a = { 0 };
    char err[256] = "";
    char *p = dup_exact(body, strlen(body));
    int rc = http_body_args(p, strlen(body), kind, &a, err, sizeof err);
    ck_assert_msg(rc == 0, "%s: error '%s'", body, err);
    ck_assert_msg(strcmp(sbuf_str(&a), want) == 0, "%s gave '%s', want '%s'", body, sbuf_str(&a), want);
    free(p);
    sbuf_free(&a);
}

static void expect_body_error(http_body_kind kind, const char *body, const char *want_err)
{
    sbuf a = { 0 };
    sbuf_addstr(&a, "CUT ");
    char err[256] = "";
    char *p = dup_exact(body, strlen(body));
    int rc = http_body_args(p, strlen(body), kind, &a, err, sizeof err);
    ck_assert_msg(rc == -1, "%s: accepted as '%s'", body, sbuf_str(&a));
    ck_assert_msg(strstr(err, want_err), "%s: error '%s', want '%s' in it", body, err, want_err);
    ck_assert_msg(strcmp(sbuf_str(&a), "CUT ") == 0, "args changed on error: '%s'", sbuf_str(&a));
    free(p);
    sbuf_free(&a);
}

START_TEST(body_spec)
{
    expect_args(HTTP_BODY_SPEC, "{\"islands\": [[\"n1\",\"n2\"],[\"n3\"]]}", "n1,n2 n3");
    expect_args(HTTP_BODY_SPEC, " {\"islands\":[[\"a@h\"],[\"b\"],[\"c\",\"d\"]]}\n", "a@h b c,d");
    expect_args(HTTP_BODY_SPEC, "{\"from\": [\"n1\"], \"to\": [\"n2\",\"n3\"]}", "n1 -> n2,n3");
    expect_args(HTTP_BODY_SPEC, "{\"to\": \"n2\", \"from\": \"n1\"}", "n1 -> n2");
    expect_args(HTTP_BODY_SPEC, "{\"islands\": [[\"n\\u0031\"],[\"n\\/2\"]]}", "n1 n/2");
    /* one island is for the command to refuse, in its own words */
    expect_args(HTTP_BODY_SPEC, "{\"islands\": [[\"n1\"]]}", "n1");
    /* no island at all is refused by the decoder, not turned into a bare
     * command (found by fuzz_http) */
    expect_body_error(HTTP_BODY_SPEC, "{\"islands\":[]}", "islands is empty");
}
END_TEST

START_TEST(body_faults)
{
    expect_args(HTTP_BODY_DELAY, "{\"islands\":[[\"n1\"],[\"n2\"]],\"delay\":\"50ms\"}", "n1 n2 50ms");
    /* members in any order, words in the command's; numbers are ms */
    expect_args(HTTP_BODY_DELAY, "{\"for\":\"2s\",\"jitter\":10,\"delay\":50,\"from\":\"a\",\"to\":\"b\"}",
                "a -> b 50ms JITTER 10ms FOR 2s");
    expect_args(HTTP_BODY_RATE, "{\"islands\":[[\"a\"],[\"b\"]],\"rate\":1000000}", "a b 1000000B/s");
    expect_args(HTTP_BODY_RATE, "{\"islands\":[[\"a\"],[\"b\"]],\"rate\":\"1MB/s\"}", "a b 1MB/s");
    expect_args(HTTP_BODY_CLEAR, "{}", "");
    expect_args(HTTP_BODY_CLEAR, "{\"islands\":[[\"a\"],[\"b\"]]}", "a b");
    expect_args(HTTP_BODY_FLAP, "{\"islands\":[[\"a\"],[\"b\"]],\"down\":\"1s\",\"up\":2000}",
                "a b UP 2000ms DOWN 1s");
    expect_args(HTTP_BODY_NEMESIS, "{\"shape\":\"halves\",\"seed\":7}", "SHAPE halves SEED 7");
    expect_args(HTTP_BODY_NEMESIS, "{\"shape\":\"bridge\",\"every\":\"2s\",\"heal\":1000}",
                "START bridge EVERY 2s HEAL 1000ms");
    /* what the command says is wrong is left to it; what would change the
     * line's words is refused here */
    expect_body_error(HTTP_BODY_DELAY, "{\"islands\":[[\"a\"],[\"b\"]],\"delay\":\"5 ms\"}", "one word");
    expect_body_error(HTTP_BODY_DELAY, "{\"islands\":[[\"a\"],[\"b\"]],\"delay\":-5}", "whole number");
    expect_body_error(HTTP_BODY_DELAY, "{\"islands\":[[\"a\"],[\"b\"]],\"delay\":\"\"}", "empty");
    expect_body_error(HTTP_BODY_DELAY, "{\"islands\":[[\"a\"],[\"b\"]],\"rate\":5}", "unknown member 'rate'");
    expect_body_error(HTTP_BODY_NEMESIS, "{\"shape\":\"halves\",\"islands\":[]}", "unknown member");
    expect_body_error(HTTP_BODY_FLAP, "{\"up\":1}", "needs islands");
}
END_TEST

START_TEST(body_spec_errors)
{
    expect_body_error(HTTP_BODY_SPEC, "", "not valid JSON");
    expect_body_error(HTTP_BODY_SPEC, "{", "not valid JSON");
    expect_body_error(HTTP_BODY_SPEC, "{}{}", "not valid JSON");
    expect_body_error(HTTP_BODY_SPEC, "{} x", "not valid JSON");
    expect_body_error(HTTP_BODY_SPEC, "[1]", "must be a JSON object");
    expect_body_error(HTTP_BODY_SPEC, "{}", "needs islands");
    expect_body_error(HTTP_BODY_SPEC, "{\"isles\": []}", "unknown member 'isles'");
    expect_body_error(HTTP_BODY_SPEC, "{\"islands\": [[\"a\"]], \"from\": [\"b\"]}", "not both");
    expect_body_error(HTTP_BODY_SPEC, "{\"islands\": [\"a\", \"b\"]}", "array of arrays");
    expect_body_error(HTTP_BODY_SPEC, "{\"islands\": [[], [\"b\"]]}", "is empty");
    expect_body_error(HTTP_BODY_SPEC, "{\"islands\": [[\"a,b\"], [\"c\"]]}", "invalid node name 'a,b'");
    expect_body_error(HTTP_BODY_SPEC, "{\"islands\": [[\"a b\"], [\"c\"]]}", "invalid node name");
    expect_body_error(HTTP_BODY_SPEC, "{\"islands\": [[\"->\"], [\"c\"]]}", "invalid node name");
    expect_body_error(HTTP_BODY_SPEC, "{\"islands\": [[\"a>b\"], [\"c\"]]}", "invalid node name");
    expect_body_error(HTTP_BODY_SPEC, "{\"islands\": [[\"@a\"], [\"c\"]]}", "invalid node name");
    expect_body_error(HTTP_BODY_SPEC, "{\"islands\": [[\"a\\n\"], [\"c\"]]}", "invalid node name");
    expect_body_error(HTTP_BODY_SPEC, "{\"islands\": [[1], [\"c\"]]}", "must be a string");
    expect_body_error(HTTP_BODY_SPEC, "{\"islands\": [[\"\\u0000\"], [\"c\"]]}", "not a usable string");
    expect_body_error(HTTP_BODY_SPEC, "{\"from\": [\"a\"]}", "needs islands, or from and to");
    expect_body_error(HTTP_BODY_SPEC, "{\"from\": 3, \"to\": [\"a\"]}", "must be an array");
    /* a body that is all values */
    sbuf b = { 0 };
    sbuf_addstr(&b, "{\"islands\": [[");
    for (int k = 0; k < HTTP_BODY_MAX_TOKENS; k++)
        sbuf_addstr(&b, k ? ",\"n\"" : "\"n\"");
    sbuf_addstr(&b, "]]}");
    expect_body_error(HTTP_BODY_SPEC, sbuf_str(&b), "too many values");
    sbuf_free(&b);
}
END_TEST

START_TEST(body_node_mode)
{
    expect_args(HTTP_BODY_NODE, "{\"node\": \"n3\"}", "n3");
    expect_args(HTTP_BODY_MODE, "{\"mode\": \"reset\"}", "reset");
    expect_body_error(HTTP_BODY_NODE, "{\"node\": \"n3\", \"x\": 1}", "unknown member 'x'");
    expect_body_error(HTTP_BODY_NODE, "{\"node\": [\"n3\"]}", "must be a string");
    expect_body_error(HTTP_BODY_NODE, "{\"node\": \"n3,n4\"}", "invalid node name");
    /* patterns are names to the line protocol, so they are here */
    expect_args(HTTP_BODY_NODE, "{\"node\": \"n*\"}", "n*");
    expect_body_error(HTTP_BODY_NODE, "{}", "needs \"node\"");
    expect_body_error(HTTP_BODY_MODE, "{\"mode\": \"\"}", "mode is empty");
    expect_body_error(HTTP_BODY_MODE, "{\"mode\": true}", "must be a string");
    /* found by fuzz_http: jsmn's tokens for this end early; nothing past them is read */
    expect_body_error(HTTP_BODY_MODE, "{\"mode\"\":reset\"}", "");
    expect_body_error(HTTP_BODY_SPEC, "{\"from\"\":[\"a\"]}", "");
}
END_TEST

START_TEST(unescape)
{
    char out[16];
    ck_assert_int_eq(http_body_unescape("a\\\"b", 4, out, sizeof out), 3);
    ck_assert_str_eq(out, "a\"b");
    ck_assert_int_eq(http_body_unescape("\\u00e9", 6, out, sizeof out), 2);
    ck_assert_str_eq(out, "\xc3\xa9");
    ck_assert_int_eq(http_body_unescape("\\ud83d\\ude00", 12, out, sizeof out), 4);
    ck_assert_str_eq(out, "\xf0\x9f\x98\x80");
    ck_assert_int_eq(http_body_unescape("\\ude00", 6, out, sizeof out), -1);
    ck_assert_int_eq(http_body_unescape("\\ud83d", 6, out, sizeof out), -1);
    ck_assert_int_eq(http_body_unescape("\\ud83dx", 7, out, sizeof out), -1);
    ck_assert_int_eq(http_body_unescape("\\x", 2, out, sizeof out), -1);
    ck_assert_int_eq(http_body_unescape("\\", 1, out, sizeof out), -1);
    ck_assert_int_eq(http_body_unescape("\\u12", 4, out, sizeof out), -1);
    ck_assert_int_eq(http_body_unescape("0123456789abcdef", 16, out, sizeof out), -1);  /* no room for NUL */
    ck_assert_int_eq(http_body_unescape("0123456789abcde", 15, out, sizeof out), 15);
}
END_TEST

Suite *http_parse_suite(void)
{
    Suite *s = suite_create("http_parse");
    const TTest *cases[] = {
        simple_get, bare_lf_and_leading_blank_lines, trickle, pipelined, body_incomplete,
        connection_header, bad_request_lines, bad_headers, framing_refused, limits,
        request_line_detection, tokens, body_spec, body_spec_errors, body_faults, body_node_mode, unescape,
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        TCase *tc = tcase_create(cases[k]->name);
        tcase_set_timeout(tc, 30);
        tcase_add_test(tc, cases[k]);
        suite_add_tcase(s, tc);
    }
    return s;
}
