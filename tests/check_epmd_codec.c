/* Unit tests of proxy/epmd_codec.c: EPMD framing, request parsing and reply
 * building, byte for byte against reference/epmd-protocol.md section 1 and
 * OTP 25's epmd_srv.c (verify_utf8, do_read, do_request, node_reg2).
 * Pure functions: no sockets, no processes. */
#include <check.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "epmd_codec.h"

/* The captures on the reference page. */
static const uint8_t CAP_ALIVE2[] = { 0x00, 0x0e, 0x78, 0x88, 0x27, 0x4d, 0x00, 0x00, 0x06,
                                      0x00, 0x05, 0x00, 0x01, 0x61, 0x00, 0x00 };
static const uint8_t CAP_ALIVE2_REPLY[] = { 0x76, 0x00, 0x6b, 0x07, 0xa6, 0x85 };
static const uint8_t CAP_PORT2_REPLY[] = { 0x77, 0x00, 0x82, 0x05, 0x4d, 0x00, 0x00, 0x06,
                                           0x00, 0x05, 0x00, 0x01, 0x62, 0x00, 0x00 };

/* Build an ALIVE2 body ('x' ... Extra, then `trail` extra bytes of 'T').
 * Returns its length. */
static size_t mk_alive2(uint8_t *out, uint16_t port, uint8_t type, uint8_t proto,
                        uint16_t hi, uint16_t lo, const void *name, size_t nlen,
                        const void *extra, size_t elen, size_t trail)
{
    size_t i = 0;
    out[i++] = 'x';
    epmd_put16(out + i, port); i += 2;
    out[i++] = type;
    out[i++] = proto;
    epmd_put16(out + i, hi); i += 2;
    epmd_put16(out + i, lo); i += 2;
    epmd_put16(out + i, (uint16_t)nlen); i += 2;
    if (nlen) memcpy(out + i, name, nlen);
    i += nlen;
    epmd_put16(out + i, (uint16_t)elen); i += 2;
    if (elen) memcpy(out + i, extra, elen);
    i += elen;
    memset(out + i, 'T', trail);
    return i + trail;
}

/* A name of `count` copies of the UTF-8 sequence `seq`; returns its length. */
static size_t rep(uint8_t *out, const char *seq, size_t count)
{
    size_t sl = strlen(seq);
    for (size_t k = 0; k < count; k++)
        memcpy(out + k * sl, seq, sl);
    return count * sl;
}

static uint8_t big[4 * 4096];
static uint8_t body[4 * 4096];

/* ------------------------------------------------------------------ */
/* epmd_frame */

START_TEST(frame_limits_constants)
{
    ck_assert_int_eq(EPMD_MAXSYMLEN, 1020);
    ck_assert_int_eq(EPMD_INBUF_SIZE, 3060);
    ck_assert_int_eq(EPMD_MAX_REQ_LEN, 3057);
}
END_TEST

START_TEST(frame_need_more)
{
    size_t len = 12345;
    ck_assert_int_eq(epmd_frame(CAP_ALIVE2, 0, &len), EPMD_FRAME_MORE);
    ck_assert_int_eq(epmd_frame(CAP_ALIVE2, 1, &len), EPMD_FRAME_MORE);
    /* header known, body incomplete: every cut of the captured request */
    for (size_t got = 2; got < sizeof CAP_ALIVE2; got++)
        ck_assert_msg(epmd_frame(CAP_ALIVE2, got, &len) == EPMD_FRAME_MORE,
                      "got %zu bytes of 16: expected MORE", got);
    /* a first byte that alone would be a bad length still needs the second */
    uint8_t hi[2] = { 0xff, 0xff };
    ck_assert_int_eq(epmd_frame(hi, 1, &len), EPMD_FRAME_MORE);
    uint8_t zero[2] = { 0, 0 };
    ck_assert_int_eq(epmd_frame(zero, 1, &len), EPMD_FRAME_MORE);
}
END_TEST

START_TEST(frame_bad_len)
{
    size_t len = 0;
    uint8_t b[4] = { 0x00, 0x00, 'n', 0 };
    /* Len 0 is refused as soon as the header is there, whatever follows */
    ck_assert_int_eq(epmd_frame(b, 2, &len), EPMD_FRAME_BADLEN);
    ck_assert_int_eq(epmd_frame(b, 3, &len), EPMD_FRAME_BADLEN);
    /* 3058 = 0x0bf2: one over the limit, refused before the body arrives */
    b[0] = 0x0b; b[1] = 0xf2;
    ck_assert_int_eq(epmd_frame(b, 2, &len), EPMD_FRAME_BADLEN);
    b[0] = 0xff; b[1] = 0xff;
    ck_assert_int_eq(epmd_frame(b, 2, &len), EPMD_FRAME_BADLEN);
    b[0] = 0x0c; b[1] = 0x00;     /* 3072 */
    ck_assert_int_eq(epmd_frame(b, 4, &len), EPMD_FRAME_BADLEN);
}
END_TEST

START_TEST(frame_ok)
{
    size_t len = 0;
    ck_assert_int_eq(epmd_frame(CAP_ALIVE2, sizeof CAP_ALIVE2, &len), EPMD_FRAME_OK);
    ck_assert_uint_eq(len, 14);

    uint8_t one[3] = { 0x00, 0x01, 'n' };
    len = 0;
    ck_assert_int_eq(epmd_frame(one, 3, &len), EPMD_FRAME_OK);
    ck_assert_uint_eq(len, 1);

    /* 3057 = 0x0bf1, the largest Len epmd accepts */
    memset(big, 'a', sizeof big);
    big[0] = 0x0b; big[1] = 0xf1;
    ck_assert_int_eq(epmd_frame(big, 2, &len), EPMD_FRAME_MORE);
    ck_assert_int_eq(epmd_frame(big, 3058, &len), EPMD_FRAME_MORE);
    len = 0;
    ck_assert_int_eq(epmd_frame(big, 3059, &len), EPMD_FRAME_OK);
    ck_assert_uint_eq(len, 3057);
}
END_TEST

START_TEST(frame_extra)
{
    size_t len = 0;
    uint8_t b[sizeof CAP_ALIVE2 + 16];
    memcpy(b, CAP_ALIVE2, sizeof CAP_ALIVE2);
    memset(b + sizeof CAP_ALIVE2, 0, 16);
    for (size_t more = 1; more <= 16; more++)
        ck_assert_msg(epmd_frame(b, sizeof CAP_ALIVE2 + more, &len) == EPMD_FRAME_EXTRA,
                      "%zu bytes beyond Len: expected EXTRA", more);
    /* two pipelined NAMES requests: EXTRA, no reply */
    uint8_t two[6] = { 0x00, 0x01, 'n', 0x00, 0x01, 'n' };
    ck_assert_int_eq(epmd_frame(two, 6, &len), EPMD_FRAME_EXTRA);
    ck_assert_int_eq(epmd_frame(two, 4, &len), EPMD_FRAME_EXTRA);
    /* 3057-byte request plus one byte */
    memset(big, 'a', sizeof big);
    big[0] = 0x0b; big[1] = 0xf1;
    ck_assert_int_eq(epmd_frame(big, 3060, &len), EPMD_FRAME_EXTRA);
}
END_TEST

/* ------------------------------------------------------------------ */
/* ALIVE2 parsing */

START_TEST(alive2_captured)
{
    size_t len = 0;
    ck_assert_int_eq(epmd_frame(CAP_ALIVE2, sizeof CAP_ALIVE2, &len), EPMD_FRAME_OK);
    epmd_req r;
    epmd_parse(CAP_ALIVE2 + 2, len, &r);
    ck_assert_int_eq(r.kind, EPMD_REQ_ALIVE2);
    ck_assert_int_eq(r.alive_ok, 1);
    ck_assert_uint_eq(r.alive.port, 0x8827);
    ck_assert_uint_eq(r.alive.nodetype, 'M');
    ck_assert_uint_eq(r.alive.protocol, 0);
    ck_assert_uint_eq(r.alive.highvsn, 6);
    ck_assert_uint_eq(r.alive.lowvsn, 5);
    ck_assert_uint_eq(r.alive.namelen, 1);
    ck_assert_ptr_eq(r.alive.name, CAP_ALIVE2 + 2 + 11);
    ck_assert_int_eq(r.alive.name[0], 'a');
    ck_assert_uint_eq(r.alive.extralen, 0);
    ck_assert_ptr_eq(r.alive.extra, CAP_ALIVE2 + 2 + 14);
}
END_TEST

START_TEST(alive2_too_short)
{
    /* any 'x' body of 13 bytes or less: no reply, close */
    uint8_t b[14];
    size_t n = mk_alive2(b, 0x8827, 'M', 0, 6, 5, "a", 1, NULL, 0, 0);
    ck_assert_uint_eq(n, 14);
    for (size_t len = 1; len <= 13; len++) {
        epmd_req r;
        epmd_parse(b, len, &r);
        ck_assert_msg(r.kind == EPMD_REQ_BAD, "ALIVE2 body of %zu bytes: expected BAD", len);
        ck_assert_ptr_nonnull(r.why);
    }
    /* a 13-byte body with Nlen 0 and Elen 0 is "complete" but still too short */
    n = mk_alive2(b, 1, 'M', 0, 6, 5, NULL, 0, NULL, 0, 0);
    ck_assert_uint_eq(n, 13);
    epmd_req r;
    epmd_parse(b, n, &r);
    ck_assert_int_eq(r.kind, EPMD_REQ_BAD);
}
END_TEST

START_TEST(alive2_nlen_beyond)
{
    epmd_req r;
    /* captured body with Nlen 2: 2 + 13 = 15 > 14 */
    size_t n = mk_alive2(body, 0x8827, 'M', 0, 6, 5, "a", 1, NULL, 0, 0);
    epmd_put16(body + 9, 2);
    epmd_parse(body, n, &r);
    ck_assert_int_eq(r.kind, EPMD_REQ_BAD);
    ck_assert_ptr_nonnull(r.why);
    /* Nlen 0xffff */
    epmd_put16(body + 9, 0xffff);
    epmd_parse(body, n, &r);
    ck_assert_int_eq(r.kind, EPMD_REQ_BAD);
    /* boundary: Nlen + 13 == len is fine (Elen 0, name "ab") */
    n = mk_alive2(body, 0x8827, 'M', 0, 6, 5, "ab", 2, NULL, 0, 0);
    epmd_parse(body, n, &r);
    ck_assert_int_eq(r.kind, EPMD_REQ_ALIVE2);
    ck_assert_int_eq(r.alive_ok, 1);
    ck_assert_uint_eq(r.alive.namelen, 2);
}
END_TEST

START_TEST(alive2_elen_beyond)
{
    epmd_req r;
    size_t n = mk_alive2(body, 0x8827, 'M', 0, 6, 5, "a", 1, NULL, 0, 0);
    /* Elen 1: 1 + 1 + 13 = 15 > 14 */
    epmd_put16(body + 12, 1);
    epmd_parse(body, n, &r);
    ck_assert_int_eq(r.kind, EPMD_REQ_BAD);
    ck_assert_ptr_nonnull(r.why);
    epmd_put16(body + 12, 0xffff);
    epmd_parse(body, n, &r);
    ck_assert_int_eq(r.kind, EPMD_REQ_BAD);
    /* Elen exactly filling the body is fine */
    n = mk_alive2(body, 0x8827, 'M', 0, 6, 5, "a", 1, "XYZ", 3, 0);
    epmd_parse(body, n, &r);
    ck_assert_int_eq(r.kind, EPMD_REQ_ALIVE2);
    ck_assert_int_eq(r.alive_ok, 1);
    ck_assert_uint_eq(r.alive.extralen, 3);
    ck_assert_mem_eq(r.alive.extra, "XYZ", 3);
    ck_assert_ptr_eq(r.alive.extra, body + 14);
    /* one byte short of the Extra it announces */
    epmd_parse(body, n - 1, &r);
    ck_assert_int_eq(r.kind, EPMD_REQ_BAD);
}
END_TEST

START_TEST(alive2_nul_in_name)
{
    static const char *names[] = { "\0ab", "a\0b", "ab\0" };
    for (size_t k = 0; k < 3; k++) {
        epmd_req r;
        size_t n = mk_alive2(body, 1234, 'M', 0, 6, 5, names[k], 3, NULL, 0, 0);
        epmd_parse(body, n, &r);
        ck_assert_msg(r.kind == EPMD_REQ_BAD, "NUL at %zu of the name: expected BAD", k);
        ck_assert_ptr_nonnull(r.why);
    }
    /* a NUL in Extra is no problem */
    epmd_req r;
    size_t n = mk_alive2(body, 1234, 'M', 0, 6, 5, "abc", 3, "\0\0", 2, 0);
    epmd_parse(body, n, &r);
    ck_assert_int_eq(r.kind, EPMD_REQ_ALIVE2);
    ck_assert_int_eq(r.alive_ok, 1);
    /* the NUL check comes before the length/UTF-8 checks: no reply at all */
    memset(big, 'a', 1100);
    big[700] = 0;
    n = mk_alive2(body, 1234, 'M', 0, 6, 5, big, 1100, NULL, 0, 0);
    epmd_parse(body, n, &r);
    ck_assert_int_eq(r.kind, EPMD_REQ_BAD);
}
END_TEST

START_TEST(alive2_trailing_bytes)
{
    epmd_req r;
    size_t n = mk_alive2(body, 0x8827, 'M', 0, 6, 5, "q", 1, "E", 1, 3);
    ck_assert_uint_eq(n, 18);
    epmd_parse(body, n, &r);
    ck_assert_int_eq(r.kind, EPMD_REQ_ALIVE2);
    ck_assert_int_eq(r.alive_ok, 1);
    ck_assert_uint_eq(r.alive.namelen, 1);
    ck_assert_int_eq(r.alive.name[0], 'q');
    ck_assert_uint_eq(r.alive.extralen, 1);
    ck_assert_int_eq(r.alive.extra[0], 'E');
    /* Nlen 0 plus a trailing byte: OTP's epmd registers the empty name
     * (checked against /usr/bin/epmd: reply 76 00 ...) */
    n = mk_alive2(body, 0x1234, 'M', 0, 6, 5, NULL, 0, NULL, 0, 1);
    ck_assert_uint_eq(n, 14);
    epmd_parse(body, n, &r);
    ck_assert_int_eq(r.kind, EPMD_REQ_ALIVE2);
    ck_assert_int_eq(r.alive_ok, 1);
    ck_assert_uint_eq(r.alive.namelen, 0);
}
END_TEST

/* ALIVE2 whose name or extra is refused with an error reply. */
static void expect_refused(const uint8_t *name, size_t nlen, size_t elen, const char *what)
{
    epmd_req r;
    memset(big + 8192, 'e', elen);
    size_t n = mk_alive2(body, 0x8827, 'M', 0, 6, 5, name, nlen, big + 8192, elen, 0);
    epmd_parse(body, n, &r);
    ck_assert_msg(r.kind == EPMD_REQ_ALIVE2, "%s: kind %d, expected ALIVE2", what, r.kind);
    ck_assert_msg(r.alive_ok == 0, "%s: alive_ok %d, expected 0", what, r.alive_ok);
    ck_assert_msg(r.why != NULL, "%s: no why", what);
}

static void expect_accepted(const uint8_t *name, size_t nlen, size_t elen, const char *what)
{
    epmd_req r;
    memset(big + 8192, 'e', elen);
    size_t n = mk_alive2(body, 0x8827, 'M', 0, 6, 5, name, nlen, big + 8192, elen, 0);
    epmd_parse(body, n, &r);
    ck_assert_msg(r.kind == EPMD_REQ_ALIVE2, "%s: kind %d, expected ALIVE2", what, r.kind);
    ck_assert_msg(r.alive_ok == 1, "%s: alive_ok %d, expected 1 (%s)", what, r.alive_ok,
                  r.why ? r.why : "");
    ck_assert_uint_eq(r.alive.namelen, nlen);
    ck_assert_uint_eq(r.alive.extralen, elen);
}

START_TEST(alive2_refused)
{
    uint8_t nm[2048];
    /* Nlen > 1020 */
    memset(nm, 'a', 1021);
    expect_refused(nm, 1021, 0, "Nlen 1021");
    /* more than 255 characters */
    expect_refused(nm, 256, 0, "256 ASCII chars");
    expect_refused(nm, 1020, 0, "1020 ASCII chars");
    size_t l = rep(nm, "\xc3\xa9", 256);
    expect_refused(nm, l, 0, "256 two-byte chars");
    l = rep(nm, "\xf0\x9f\x98\x80", 256);   /* 1024 bytes: also over 1020 */
    expect_refused(nm, l, 0, "256 four-byte chars");
    /* invalid UTF-8 */
    expect_refused((const uint8_t *)"a\xc0\x80", 3, 0, "overlong 2-byte");
    expect_refused((const uint8_t *)"\xe0\x80\xaf", 3, 0, "overlong 3-byte");
    expect_refused((const uint8_t *)"\xf0\x80\x80\xaf", 4, 0, "overlong 4-byte");
    expect_refused((const uint8_t *)"\xed\xa0\x80", 3, 0, "surrogate U+D800");
    expect_refused((const uint8_t *)"x\xed\xbf\xbf", 4, 0, "surrogate U+DFFF");
    expect_refused((const uint8_t *)"ab\xc3", 3, 0, "truncated 2-byte");
    expect_refused((const uint8_t *)"\xe2\x82", 2, 0, "truncated 3-byte");
    expect_refused((const uint8_t *)"\xf0\x9f\x98", 3, 0, "truncated 4-byte");
    expect_refused((const uint8_t *)"\xf4\x90\x80\x80", 4, 0, "U+110000");
    expect_refused((const uint8_t *)"\xf5\x80\x80\x80", 4, 0, "lead F5");
    expect_refused((const uint8_t *)"\x80", 1, 0, "lone continuation");
    expect_refused((const uint8_t *)"\xff", 1, 0, "byte FF");
    /* Elen > 1020 */
    expect_refused((const uint8_t *)"a", 1, 1021, "Elen 1021");
}
END_TEST

START_TEST(alive2_name_chars)
{
    uint8_t nm[2048];
    memset(nm, 'a', 255);
    expect_accepted(nm, 255, 0, "255 ASCII chars");
    size_t l = rep(nm, "\xc3\xa9", 255);                  /* 510 bytes */
    expect_accepted(nm, l, 0, "255 two-byte chars");
    l = rep(nm, "\xe2\x82\xac", 255);                     /* 765 bytes */
    expect_accepted(nm, l, 0, "255 three-byte chars");
    l = rep(nm, "\xf0\x9f\x98\x80", 255);                 /* 1020 bytes: the limit */
    ck_assert_uint_eq(l, 1020);
    expect_accepted(nm, l, 0, "255 four-byte chars (Nlen 1020)");
    /* 254 ASCII + one 4-byte char = 255 characters, 258 bytes */
    memset(nm, 'b', 254);
    memcpy(nm + 254, "\xf4\x8f\xbf\xbf", 4);
    expect_accepted(nm, 258, 0, "254 ASCII + U+10FFFF");
    /* 300 bytes but only 150 characters */
    l = rep(nm, "\xc3\xa9", 150);
    expect_accepted(nm, l, 0, "150 two-byte chars");
    /* Elen exactly 1020 */
    expect_accepted((const uint8_t *)"a", 1, 1020, "Elen 1020");
}
END_TEST

/* ------------------------------------------------------------------ */
/* ALIVE2 replies */

START_TEST(alive2_reply_v6)
{
    uint8_t out[8];
    memset(out, 0xee, sizeof out);
    ck_assert_uint_eq(epmd_alive2_reply(out, 6, 1, 0x6b07a685), 6);
    ck_assert_mem_eq(out, CAP_ALIVE2_REPLY, 6);
    ck_assert_uint_eq(out[6], 0xee);          /* nothing written beyond */

    static const uint8_t err[6] = { 0x76, 0x01, 0x00, 0x00, 0x00, 0x63 };
    ck_assert_uint_eq(epmd_alive2_reply(out, 6, 0, 0x6b07a685), 6);
    ck_assert_mem_eq(out, err, 6);
    /* any HighVsn >= 6 gets 'v' */
    ck_assert_uint_eq(epmd_alive2_reply(out, 7, 1, 0xfffffffe), 6);
    static const uint8_t v7[6] = { 0x76, 0x00, 0xff, 0xff, 0xff, 0xfe };
    ck_assert_mem_eq(out, v7, 6);
    ck_assert_uint_eq(epmd_alive2_reply(out, 0xffff, 1, 4), 6);
    ck_assert_uint_eq(out[0], 0x76);
}
END_TEST

START_TEST(alive2_reply_v5)
{
    uint8_t out[8];
    static const uint8_t err[4] = { 0x79, 0x01, 0x00, 0x63 };
    memset(out, 0xee, sizeof out);
    ck_assert_uint_eq(epmd_alive2_reply(out, 5, 0, 0x6b07a685), 4);
    ck_assert_mem_eq(out, err, 4);
    ck_assert_uint_eq(out[4], 0xee);
    /* ok: counter % 3 + 1, as observed: 03 01 02 03 for successive counters */
    static const struct { uint32_t counter; uint8_t cr; } t[] = {
        { 0x6b07a685, 3 }, { 4, 2 }, { 5, 3 }, { 6, 1 }, { 7, 2 }, { 0xffffffff, 1 },
    };
    for (size_t k = 0; k < sizeof t / sizeof t[0]; k++) {
        memset(out, 0xee, sizeof out);
        ck_assert_uint_eq(epmd_alive2_reply(out, 5, 1, t[k].counter), 4);
        uint8_t want[4] = { 0x79, 0x00, 0x00, t[k].cr };
        ck_assert_msg(memcmp(out, want, 4) == 0, "counter %#x: got %02x %02x %02x %02x",
                      (unsigned)t[k].counter, out[0], out[1], out[2], out[3]);
    }
    /* HighVsn below 5 is answered the same way */
    ck_assert_uint_eq(epmd_alive2_reply(out, 0, 1, 6), 4);
    ck_assert_uint_eq(out[0], 0x79);
    ck_assert_uint_eq(out[3], 1);
}
END_TEST

/* ------------------------------------------------------------------ */
/* PORT_PLEASE2 */

static void parse_str(const void *b, size_t n, epmd_req *r)
{
    memcpy(body, b, n);
    epmd_parse(body, n, r);
}

START_TEST(port2_parse)
{
    epmd_req r;
    parse_str("zb", 2, &r);
    ck_assert_int_eq(r.kind, EPMD_REQ_PORT2);
    ck_assert_uint_eq(r.namelen, 1);
    ck_assert_ptr_eq(r.name, body + 1);
    ck_assert_int_eq(r.name[0], 'b');

    /* one trailing NUL is stripped */
    parse_str("zfoo\0", 5, &r);
    ck_assert_int_eq(r.kind, EPMD_REQ_PORT2);
    ck_assert_uint_eq(r.namelen, 3);
    ck_assert_mem_eq(r.name, "foo", 3);

    /* UTF-8 names are fine */
    parse_str("z\xc3\xa9t\xc3\xa9", 6, &r);
    ck_assert_int_eq(r.kind, EPMD_REQ_PORT2);
    ck_assert_uint_eq(r.namelen, 5);
}
END_TEST

START_TEST(port2_bad)
{
    epmd_req r;
    static const struct { const char *b; size_t n; const char *what; } t[] = {
        { "z", 1, "empty name" },
        { "z\0", 2, "z\\0" },
        { "z\0\0", 3, "two NULs" },
        { "zfoo\0\0", 6, "name then two NULs" },
        { "za\0b", 4, "NUL inside" },
        { "z\0ab", 4, "NUL first" },
        { "za\0b\0", 5, "NUL inside, NUL at the end" },
        { "z\xc0\x80", 3, "overlong" },
        { "z\xed\xa0\x80", 4, "surrogate" },
        { "zab\xe2\x82", 5, "truncated" },
        { "zab\xe2\x82\0", 6, "truncated before the NUL" },
        { "z\xf4\x90\x80\x80", 5, "over U+10FFFF" },
        { "z\x80", 2, "lone continuation" },
    };
    for (size_t k = 0; k < sizeof t / sizeof t[0]; k++) {
        parse_str(t[k].b, t[k].n, &r);
        ck_assert_msg(r.kind == EPMD_REQ_BAD, "PORT2 %s: kind %d, expected BAD", t[k].what,
                      r.kind);
        ck_assert_msg(r.why != NULL, "PORT2 %s: no why", t[k].what);
    }
}
END_TEST

START_TEST(port2_name_limit)
{
    /* epmd's UTF-8 check counts the terminating NUL: 254 characters pass,
     * 255 are closed with no reply (verified against /usr/bin/epmd) */
    epmd_req r;
    uint8_t b[1100];
    b[0] = 'z';
    memset(b + 1, 'n', 255);
    epmd_parse(b, 1 + 254, &r);
    ck_assert_int_eq(r.kind, EPMD_REQ_PORT2);
    ck_assert_uint_eq(r.namelen, 254);
    b[255] = 0;
    epmd_parse(b, 1 + 254 + 1, &r);                 /* 254 + NUL */
    ck_assert_int_eq(r.kind, EPMD_REQ_PORT2);
    ck_assert_uint_eq(r.namelen, 254);
    memset(b + 1, 'n', 255);
    epmd_parse(b, 1 + 255, &r);
    ck_assert_int_eq(r.kind, EPMD_REQ_BAD);
    b[256] = 0;
    epmd_parse(b, 1 + 255 + 1, &r);                 /* 255 + NUL */
    ck_assert_int_eq(r.kind, EPMD_REQ_BAD);

    size_t l = rep(b + 1, "\xc3\xa9", 254);
    epmd_parse(b, 1 + l, &r);
    ck_assert_int_eq(r.kind, EPMD_REQ_PORT2);
    ck_assert_uint_eq(r.namelen, 508);
    l = rep(b + 1, "\xc3\xa9", 255);
    epmd_parse(b, 1 + l, &r);
    ck_assert_int_eq(r.kind, EPMD_REQ_BAD);
    l = rep(b + 1, "\xe2\x82\xac", 254);
    epmd_parse(b, 1 + l, &r);
    ck_assert_int_eq(r.kind, EPMD_REQ_PORT2);
}
END_TEST

START_TEST(port2_reply_found)
{
    /* the captured reply for node b registered at port 0x8205 */
    uint8_t reg[32];
    size_t n = mk_alive2(reg, 0x8205, 'M', 0, 6, 5, "b", 1, NULL, 0, 0);
    epmd_req r;
    epmd_parse(reg, n, &r);
    ck_assert_int_eq(r.kind, EPMD_REQ_ALIVE2);
    uint8_t out[64];
    memset(out, 0xee, sizeof out);
    size_t len = epmd_port2_reply(out, sizeof out, 0x8205, &r.alive);
    ck_assert_uint_eq(len, sizeof CAP_PORT2_REPLY);
    ck_assert_mem_eq(out, CAP_PORT2_REPLY, sizeof CAP_PORT2_REPLY);
    ck_assert_uint_eq(out[len], 0xee);

    /* the port given replaces the node's own one; everything else is copied */
    n = mk_alive2(reg, 0x1111, 'H', 1, 7, 5, "node1", 5, "ex", 2, 0);
    epmd_parse(reg, n, &r);
    ck_assert_int_eq(r.kind, EPMD_REQ_ALIVE2);
    len = epmd_port2_reply(out, sizeof out, 0xabcd, &r.alive);
    static const uint8_t want[] = { 0x77, 0x00, 0xab, 0xcd, 'H', 0x01, 0x00, 0x07, 0x00,
                                    0x05, 0x00, 0x05, 'n', 'o', 'd', 'e', '1', 0x00,
                                    0x02, 'e', 'x' };
    ck_assert_uint_eq(len, sizeof want);
    ck_assert_mem_eq(out, want, sizeof want);

    /* too small a buffer gives 0, exactly enough works */
    ck_assert_uint_eq(epmd_port2_reply(out, sizeof want - 1, 0xabcd, &r.alive), 0);
    ck_assert_uint_eq(epmd_port2_reply(out, sizeof want, 0xabcd, &r.alive), sizeof want);
}
END_TEST

START_TEST(port2_reply_notfound)
{
    uint8_t out[4] = { 0xee, 0xee, 0xee, 0xee };
    ck_assert_uint_eq(epmd_port2_notfound(out), 2);
    ck_assert_uint_eq(out[0], 0x77);
    ck_assert_uint_eq(out[1], 0x01);
    ck_assert_uint_eq(out[2], 0xee);
}
END_TEST

/* ------------------------------------------------------------------ */
/* NAMES, DUMP, KILL, STOP, garbage */

START_TEST(simple_kinds)
{
    epmd_req r;
    parse_str("n", 1, &r);
    ck_assert_int_eq(r.kind, EPMD_REQ_NAMES);
    parse_str("nXYZ\0", 5, &r);                  /* extra bytes ignored */
    ck_assert_int_eq(r.kind, EPMD_REQ_NAMES);
    parse_str("d", 1, &r);
    ck_assert_int_eq(r.kind, EPMD_REQ_DUMP);
    parse_str("d\0\1", 3, &r);
    ck_assert_int_eq(r.kind, EPMD_REQ_DUMP);
    parse_str("k", 1, &r);
    ck_assert_int_eq(r.kind, EPMD_REQ_KILL);
    parse_str("kXYZ", 4, &r);                    /* epmd answers OK to this too */
    ck_assert_int_eq(r.kind, EPMD_REQ_KILL);
}
END_TEST

START_TEST(stop_parse)
{
    epmd_req r;
    parse_str("sa", 2, &r);
    ck_assert_int_eq(r.kind, EPMD_REQ_STOP);
    ck_assert_uint_eq(r.namelen, 1);
    ck_assert_ptr_eq(r.name, body + 1);
    ck_assert_int_eq(r.name[0], 'a');
    parse_str("snode1", 6, &r);
    ck_assert_int_eq(r.kind, EPMD_REQ_STOP);
    ck_assert_uint_eq(r.namelen, 5);
    ck_assert_mem_eq(r.name, "node1", 5);
    /* the name ends at the first NUL (epmd STOPs "q" for "q\0junk",
     * verified against /usr/bin/epmd) */
    parse_str("sq\0junk", 7, &r);
    ck_assert_int_eq(r.kind, EPMD_REQ_STOP);
    ck_assert_uint_eq(r.namelen, 1);
    ck_assert_int_eq(r.name[0], 'q');
    parse_str("sab\0", 4, &r);
    ck_assert_int_eq(r.kind, EPMD_REQ_STOP);
    ck_assert_uint_eq(r.namelen, 2);
    /* "s\0": an empty name, which epmd looks up (NOEXISTSTOPPED) */
    parse_str("s\0", 2, &r);
    ck_assert_int_eq(r.kind, EPMD_REQ_STOP);
    ck_assert_uint_eq(r.namelen, 0);
    /* no name at all: too small, no reply */
    parse_str("s", 1, &r);
    ck_assert_int_eq(r.kind, EPMD_REQ_BAD);
    ck_assert_ptr_nonnull(r.why);
}
END_TEST

START_TEST(unknown_commands)
{
    epmd_req r;
    /* the old ALIVE ('a') and PORT ('p') requests are garbage to OTP 25 */
    parse_str("aXYZ", 4, &r);
    ck_assert_int_eq(r.kind, EPMD_REQ_BAD);
    ck_assert_ptr_nonnull(r.why);
    parse_str("pfoo", 4, &r);
    ck_assert_int_eq(r.kind, EPMD_REQ_BAD);
    /* every command byte that is not x z n d k s */
    for (int c = 0; c < 256; c++) {
        if (strchr("xzndks", c) && c != 0)
            continue;
        uint8_t b[3] = { (uint8_t)c, 'a', 'b' };
        epmd_parse(b, 3, &r);
        ck_assert_msg(r.kind == EPMD_REQ_BAD, "command byte %#x: kind %d, expected BAD", c,
                      r.kind);
        epmd_parse(b, 1, &r);
        ck_assert_msg(r.kind == EPMD_REQ_BAD, "lone command byte %#x: expected BAD", c);
    }
    /* an empty body */
    epmd_parse(body, 0, &r);
    ck_assert_int_eq(r.kind, EPMD_REQ_BAD);
    /* upper-case variants are not commands */
    parse_str("N", 1, &r);
    ck_assert_int_eq(r.kind, EPMD_REQ_BAD);
    parse_str("Xabc", 4, &r);
    ck_assert_int_eq(r.kind, EPMD_REQ_BAD);
}
END_TEST

/* ------------------------------------------------------------------ */
/* NAMES and DUMP lines */

START_TEST(names_line)
{
    char out[128];
    size_t n = epmd_names_line(out, sizeof out, (const uint8_t *)"a", 1, 5);
    ck_assert_uint_eq(n, strlen("name a at port 5\n"));
    ck_assert_mem_eq(out, "name a at port 5\n", n);
    /* the name is taken by length, not up to a NUL */
    n = epmd_names_line(out, sizeof out, (const uint8_t *)"node1XYZ", 5, 65535);
    ck_assert_str_eq(out, "name node1 at port 65535\n");
    ck_assert_uint_eq(n, 25);
    n = epmd_names_line(out, sizeof out, (const uint8_t *)"\xc3\xa9t\xc3\xa9", 5, 4660);
    ck_assert_str_eq(out, "name \xc3\xa9t\xc3\xa9 at port 4660\n");
    ck_assert_uint_eq(n, strlen(out));
    /* too small: snprintf-style length, truncated NUL-terminated text */
    memset(out, 'Z', sizeof out);
    n = epmd_names_line(out, 5, (const uint8_t *)"a", 1, 5);
    ck_assert_uint_eq(n, 17);
    ck_assert_str_eq(out, "name");
}
END_TEST

START_TEST(dump_line)
{
    char out[128];
    static const char act[] = "active name     <a> at port 5, fd = 7\n";      /* + NUL */
    static const char old[] = "old/unused name <a>, port = 5, fd = 7 \n";     /* + NUL */
    memset(out, 'Z', sizeof out);
    size_t n = epmd_dump_line(out, sizeof out, 1, (const uint8_t *)"a", 1, 5, 7);
    ck_assert_uint_eq(n, sizeof act);           /* the NUL is counted */
    ck_assert_mem_eq(out, act, sizeof act);     /* and present */
    memset(out, 'Z', sizeof out);
    n = epmd_dump_line(out, sizeof out, 0, (const uint8_t *)"a", 1, 5, 7);
    ck_assert_uint_eq(n, sizeof old);
    ck_assert_mem_eq(out, old, sizeof old);
    /* name by length; a real port number */
    n = epmd_dump_line(out, sizeof out, 1, (const uint8_t *)"n1@@", 2, 41234, 12);
    static const char act2[] = "active name     <n1> at port 41234, fd = 12\n";
    ck_assert_uint_eq(n, sizeof act2);
    ck_assert_mem_eq(out, act2, sizeof act2);
}
END_TEST

START_TEST(put_port32)
{
    uint8_t out[5] = { 0xee, 0xee, 0xee, 0xee, 0xee };
    epmd_put_port32(out, 4369);
    static const uint8_t want[4] = { 0x00, 0x00, 0x11, 0x11 };
    ck_assert_mem_eq(out, want, 4);
    ck_assert_uint_eq(out[4], 0xee);
    epmd_put_port32(out, 0xb9a4);
    ck_assert_uint_eq(out[2], 0xb9);
    ck_assert_uint_eq(out[3], 0xa4);
    ck_assert_uint_eq(epmd_get32(out), 0xb9a4);
    ck_assert_uint_eq(epmd_get16(out + 2), 0xb9a4);
}
END_TEST

/* ------------------------------------------------------------------ */
/* epmd_utf8_chars */

START_TEST(utf8_table)
{
    static const struct { const char *s; size_t n; int chars; } t[] = {
        { "", 0, 0 },
        { "a", 1, 1 },
        { "a@vm", 4, 4 },
        { "\0", 1, 1 },                       /* NUL is ASCII to epmd's check */
        { "\x7f", 1, 1 },
        { "\xc2\x80", 2, 1 },                 /* U+0080 */
        { "\xc3\xa9", 2, 1 },                 /* é */
        { "\xdf\xbf", 2, 1 },                 /* U+07FF */
        { "\xe0\xa0\x80", 3, 1 },             /* U+0800 */
        { "\xe2\x82\xac", 3, 1 },             /* € */
        { "\xed\x9f\xbf", 3, 1 },             /* U+D7FF */
        { "\xee\x80\x80", 3, 1 },             /* U+E000 */
        { "\xef\xbf\xbf", 3, 1 },             /* U+FFFF */
        { "\xf0\x90\x80\x80", 4, 1 },         /* U+10000 */
        { "\xf0\x9f\x98\x80", 4, 1 },         /* 😀 */
        { "\xf4\x8f\xbf\xbf", 4, 1 },         /* U+10FFFF */
        { "a\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80z", 11, 5 },
        /* invalid */
        { "\x80", 1, -1 },                    /* lone continuation */
        { "\xbf", 1, -1 },
        { "a\x80", 2, -1 },
        { "\xc0\x80", 2, -1 },                /* overlong NUL */
        { "\xc1\xbf", 2, -1 },                /* overlong */
        { "\xe0\x80\x80", 3, -1 },            /* overlong */
        { "\xe0\x9f\xbf", 3, -1 },            /* overlong U+07FF */
        { "\xf0\x80\x80\x80", 4, -1 },        /* overlong */
        { "\xf0\x8f\xbf\xbf", 4, -1 },        /* overlong U+FFFF */
        { "\xed\xa0\x80", 3, -1 },            /* U+D800 */
        { "\xed\xbf\xbf", 3, -1 },            /* U+DFFF */
        { "\xf4\x90\x80\x80", 4, -1 },        /* U+110000 */
        { "\xf5\x80\x80\x80", 4, -1 },
        { "\xf7\xbf\xbf\xbf", 4, -1 },
        { "\xf8\x88\x80\x80\x80", 5, -1 },    /* 5-byte form */
        { "\xfc\x84\x80\x80\x80\x80", 6, -1 },
        { "\xfe", 1, -1 },
        { "\xff", 1, -1 },
        { "\xc3", 1, -1 },                    /* truncated */
        { "a\xc3", 2, -1 },
        { "\xe2\x82", 2, -1 },
        { "\xe2", 1, -1 },
        { "\xf0\x9f\x98", 3, -1 },
        { "\xf0\x9f", 2, -1 },
        { "\xc3\x41", 2, -1 },                /* bad continuation */
        { "\xc3\xc3\xa9", 3, -1 },
        { "\xe2\x41\xac", 3, -1 },
        { "\xe2\x82\x41", 3, -1 },
        { "\xf0\x41\x98\x80", 4, -1 },
        { "\xf0\x9f\x41\x80", 4, -1 },
        { "\xf0\x9f\x98\x41", 4, -1 },
        { "\xe2\x82\xac\xe2\x82", 5, -1 },    /* good then truncated */
    };
    for (size_t k = 0; k < sizeof t / sizeof t[0]; k++) {
        int got = epmd_utf8_chars((const uint8_t *)t[k].s, t[k].n);
        ck_assert_msg(got == t[k].chars, "table row %zu (%zu bytes): got %d, expected %d", k,
                      t[k].n, got, t[k].chars);
    }
    /* only n bytes are looked at */
    ck_assert_int_eq(epmd_utf8_chars((const uint8_t *)"ab\xff", 2), 2);
    ck_assert_int_eq(epmd_utf8_chars((const uint8_t *)"\xc3\xa9", 1), -1);
}
END_TEST

/* An independent strict UTF-8 decoder: decode the code point, then judge
 * it by its value (shortest form, no surrogates, at most U+10FFFF). */
static int ref_utf8_chars(const uint8_t *s, size_t n)
{
    int chars = 0;
    for (size_t i = 0; i < n; chars++) {
        uint32_t c = s[i];
        size_t extra;
        uint32_t min;
        if (c < 0x80) { i++; continue; }
        if ((c & 0xe0) == 0xc0) { extra = 1; c &= 0x1f; min = 0x80; }
        else if ((c & 0xf0) == 0xe0) { extra = 2; c &= 0x0f; min = 0x800; }
        else if ((c & 0xf8) == 0xf0) { extra = 3; c &= 0x07; min = 0x10000; }
        else return -1;
        if (i + extra >= n)
            return -1;
        for (size_t k = 1; k <= extra; k++) {
            if ((s[i + k] & 0xc0) != 0x80)
                return -1;
            c = c << 6 | (s[i + k] & 0x3f);
        }
        if (c < min || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff))
            return -1;
        i += extra + 1;
    }
    return chars;
}

START_TEST(utf8_exhaustive)
{
    /* every string of 1, 2 and 3 bytes: 16.8 million comparisons */
    uint8_t s[4];
    for (uint32_t v = 0; v < 256; v++) {
        s[0] = (uint8_t)v;
        ck_assert_int_eq(epmd_utf8_chars(s, 1), ref_utf8_chars(s, 1));
    }
    for (uint32_t v = 0; v < 65536; v++) {
        s[0] = (uint8_t)(v >> 8); s[1] = (uint8_t)v;
        int a = epmd_utf8_chars(s, 2), b = ref_utf8_chars(s, 2);
        ck_assert_msg(a == b, "%02x %02x: %d, expected %d", s[0], s[1], a, b);
    }
    for (uint32_t v = 0; v < (1u << 24); v++) {
        s[0] = (uint8_t)(v >> 16); s[1] = (uint8_t)(v >> 8); s[2] = (uint8_t)v;
        int a = epmd_utf8_chars(s, 3), b = ref_utf8_chars(s, 3);
        if (a != b)
            ck_abort_msg("%02x %02x %02x: %d, expected %d", s[0], s[1], s[2], a, b);
    }
    /* 4-byte forms: every lead F0..FF and second byte, with a few third and
     * fourth bytes around the continuation range's edges */
    static const uint8_t edge[] = { 0x00, 0x41, 0x7f, 0x80, 0x8f, 0x90, 0xbf, 0xc0, 0xff };
    for (uint32_t lead = 0xf0; lead <= 0xff; lead++)
        for (uint32_t b1 = 0; b1 < 256; b1++)
            for (size_t i2 = 0; i2 < sizeof edge; i2++)
                for (size_t i3 = 0; i3 < sizeof edge; i3++) {
                    s[0] = (uint8_t)lead; s[1] = (uint8_t)b1;
                    s[2] = edge[i2]; s[3] = edge[i3];
                    int a = epmd_utf8_chars(s, 4), b = ref_utf8_chars(s, 4);
                    if (a != b)
                        ck_abort_msg("%02x %02x %02x %02x: %d, expected %d", s[0], s[1],
                                     s[2], s[3], a, b);
                }
}
END_TEST

Suite *epmd_codec_suite(void)
{
    Suite *s = suite_create("epmd_codec");
    const TTest *cases[] = {
        frame_limits_constants,
        frame_need_more,
        frame_bad_len,
        frame_ok,
        frame_extra,
        alive2_captured,
        alive2_too_short,
        alive2_nlen_beyond,
        alive2_elen_beyond,
        alive2_nul_in_name,
        alive2_trailing_bytes,
        alive2_refused,
        alive2_name_chars,
        alive2_reply_v6,
        alive2_reply_v5,
        port2_parse,
        port2_bad,
        port2_name_limit,
        port2_reply_found,
        port2_reply_notfound,
        simple_kinds,
        stop_parse,
        unknown_commands,
        names_line,
        dump_line,
        put_port32,
        utf8_table,
        utf8_exhaustive,
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        TCase *tc = tcase_create(cases[k]->name);
        /* pure CPU work; generous for a loaded box or a sanitizer build */
        tcase_set_timeout(tc, 60);
        tcase_add_test(tc, cases[k]);
        suite_add_tcase(s, tc);
    }
    return s;
}
