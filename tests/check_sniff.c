/* Unit tests of proxy/sniff.c: the initiator's first handshake frame and the
 * acceptor's handshake stream up to its 'a', as OTP 25's dist_util.erl
 * sends them (reference/epmd-protocol.md section 3).  Pure: no sockets. */
#include <check.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "epmd_codec.h"
#include "sniff.h"

/* A 25.2.3 node a@vm's send_name, as captured. */
static const uint8_t CAP_NAME[] = { 0x00, 0x13, 0x4e, 0x00, 0x00, 0x00, 0x0d, 0x07, 0xdf,
                                    0x7f, 0xbd, 0x6b, 0x07, 0xa6, 0x85, 0x00, 0x04, 0x61,
                                    0x40, 0x76, 0x6d };

/* An initiator's 'N' send_name frame: Len 'N' Flags:64 Creation:32 Nlen:16 Name.
 * nlen_field is written as given (to lie about the name's length). */
static size_t mk_send_name(uint8_t *out, uint64_t flags, const char *name, size_t nlen,
                           size_t nlen_field)
{
    size_t len = 1 + 8 + 4 + 2 + nlen;
    epmd_put16(out, (uint16_t)len);
    out[2] = 'N';
    epmd_put32(out + 3, (uint32_t)(flags >> 32));
    epmd_put32(out + 7, (uint32_t)flags);
    epmd_put32(out + 11, 0x6b07a685);
    epmd_put16(out + 15, (uint16_t)nlen_field);
    memcpy(out + 17, name, nlen);
    return len + 2;
}

/* The old 'n' send_name: Len 'n' Version:16 Flags:32 Name. */
static size_t mk_old_name(uint8_t *out, const char *name, size_t nlen)
{
    size_t len = 1 + 2 + 4 + nlen;
    epmd_put16(out, (uint16_t)len);
    out[2] = 'n';
    epmd_put16(out + 3, 5);
    epmd_put32(out + 5, 0x0007fffd);
    memcpy(out + 9, name, nlen);
    return len + 2;
}

/* ------------------------------------------------------------------ */
/* sniff_first_frame */

START_TEST(first_captured)
{
    sniff_first f;
    ck_assert_int_eq(sniff_first_frame(CAP_NAME, sizeof CAP_NAME, &f), SNIFF_OK);
    ck_assert_str_eq(f.name, "a@vm");
    ck_assert_uint_eq(f.frame_len, 21);
    ck_assert_int_eq(f.name_me, 0);
    ck_assert_int_eq(f.old_format, 0);

    /* the initiator's next bytes may already be there: still this frame */
    uint8_t more[sizeof CAP_NAME + 8];
    memcpy(more, CAP_NAME, sizeof CAP_NAME);
    memset(more + sizeof CAP_NAME, 0x72, 8);
    ck_assert_int_eq(sniff_first_frame(more, sizeof more, &f), SNIFF_OK);
    ck_assert_str_eq(f.name, "a@vm");
    ck_assert_uint_eq(f.frame_len, 21);
}
END_TEST

START_TEST(first_cut_everywhere)
{
    sniff_first f;
    for (size_t n = 0; n < sizeof CAP_NAME; n++) {
        memset(&f, 0x5a, sizeof f);
        int st = sniff_first_frame(CAP_NAME, n, &f);
        ck_assert_msg(st == SNIFF_MORE, "first %zu of 21 bytes: status %d, expected MORE", n,
                      st);
    }
    ck_assert_int_eq(sniff_first_frame(CAP_NAME, sizeof CAP_NAME, &f), SNIFF_OK);
    ck_assert_uint_eq(f.frame_len, sizeof CAP_NAME);
    ck_assert_str_eq(f.name, "a@vm");
    /* garbage where no bytes came yet must not matter: nothing beyond n is
     * looked at */
    for (size_t n = 0; n <= sizeof CAP_NAME; n++) {
        uint8_t cut[sizeof CAP_NAME];
        memcpy(cut, CAP_NAME, n);
        memset(cut + n, 0xff, sizeof cut - n);   /* garbage where no bytes came yet */
        int st = sniff_first_frame(cut, n, &f);
        ck_assert_int_eq(st, n == sizeof CAP_NAME ? SNIFF_OK : SNIFF_MORE);
    }
}
END_TEST

START_TEST(first_bad_len)
{
    sniff_first f;
    uint8_t b[8] = { 0x00, 0x00, 'N', 0, 0, 0, 0, 0 };
    ck_assert_int_eq(sniff_first_frame(b, 2, &f), SNIFF_BAD);
    ck_assert_ptr_nonnull(f.why);
    ck_assert_int_eq(sniff_first_frame(b, 8, &f), SNIFF_BAD);
    /* over SNIFF_MAX_FRAME: refused from the header alone */
    epmd_put16(b, SNIFF_MAX_FRAME + 1);
    ck_assert_int_eq(sniff_first_frame(b, 2, &f), SNIFF_BAD);
    ck_assert_ptr_nonnull(f.why);
    epmd_put16(b, 0xffff);
    ck_assert_int_eq(sniff_first_frame(b, 3, &f), SNIFF_BAD);
    /* SNIFF_MAX_FRAME itself is acceptable: wait for the rest */
    epmd_put16(b, SNIFF_MAX_FRAME);
    ck_assert_int_eq(sniff_first_frame(b, 2, &f), SNIFF_MORE);
    ck_assert_int_eq(sniff_first_frame(b, 8, &f), SNIFF_MORE);
}
END_TEST

START_TEST(first_wrong_type)
{
    sniff_first f;
    /* judged as soon as byte 3 arrives, long before the frame is complete */
    for (int c = 0; c < 256; c++) {
        if (c == 'N' || c == 'n')
            continue;
        uint8_t b[3] = { 0x00, 0x13, (uint8_t)c };
        int st = sniff_first_frame(b, 3, &f);
        ck_assert_msg(st == SNIFF_BAD, "type byte %#x: status %d, expected BAD", c, st);
        ck_assert_ptr_nonnull(f.why);
    }
    /* an EPMD request sent to a proxy port, and an HTTP request */
    static const uint8_t port2_req[] = { 0x00, 0x02, 0x7a, 0x62 };
    ck_assert_int_eq(sniff_first_frame(port2_req, sizeof port2_req, &f), SNIFF_BAD);
    static const char http[] = "GET / HTTP/1.0\r\n";
    ck_assert_int_eq(sniff_first_frame((const uint8_t *)http, 3, &f), SNIFF_BAD);
    /* 'N' and 'n' at byte 3 keep waiting */
    uint8_t n1[3] = { 0x00, 0x13, 'N' }, n2[3] = { 0x00, 0x13, 'n' };
    ck_assert_int_eq(sniff_first_frame(n1, 3, &f), SNIFF_MORE);
    ck_assert_int_eq(sniff_first_frame(n2, 3, &f), SNIFF_MORE);
}
END_TEST

START_TEST(first_bad_name)
{
    sniff_first f;
    uint8_t b[64];
    /* Nlen beyond the frame */
    size_t n = mk_send_name(b, 0xd07df7fbdULL, "a@vm", 4, 5);
    ck_assert_int_eq(sniff_first_frame(b, n, &f), SNIFF_BAD);
    ck_assert_ptr_nonnull(f.why);
    n = mk_send_name(b, 0xd07df7fbdULL, "a@vm", 4, 0xffff);
    ck_assert_int_eq(sniff_first_frame(b, n, &f), SNIFF_BAD);
    /* empty name */
    n = mk_send_name(b, 0xd07df7fbdULL, "", 0, 0);
    ck_assert_int_eq(sniff_first_frame(b, n, &f), SNIFF_BAD);
    ck_assert_ptr_nonnull(f.why);
    /* control bytes in the name */
    static const char *ctl[] = { "a\n@vm", "a@v\rm", "\0a@vm", "a@vm\0", "a\x01@vm",
                                 "a\x1f@vm", "a\x7f@vm", "a\t@vm" };
    for (size_t k = 0; k < sizeof ctl / sizeof ctl[0]; k++) {
        n = mk_send_name(b, 0xd07df7fbdULL, ctl[k], 5, 5);
        ck_assert_msg(sniff_first_frame(b, n, &f) == SNIFF_BAD, "name #%zu with a control "
                      "byte: expected BAD", k);
    }
    /* an 'N' frame too short to hold Nlen */
    static const uint8_t shortn[] = { 0x00, 0x0e, 'N', 0, 0, 0, 0x0d, 0x07, 0xdf, 0x7f,
                                      0xbd, 0x6b, 0x07, 0xa6, 0x85, 0x00 };
    ck_assert_int_eq(sniff_first_frame(shortn, sizeof shortn, &f), SNIFF_BAD);
    static const uint8_t just_n[] = { 0x00, 0x01, 'N' };
    ck_assert_int_eq(sniff_first_frame(just_n, sizeof just_n, &f), SNIFF_BAD);
}
END_TEST

START_TEST(first_good_names)
{
    sniff_first f;
    uint8_t b[SNIFF_MAX_FRAME + 2];
    /* UTF-8 and printable punctuation are names too */
    static const char utf[] = "\xc3\xa9t\xc3\xa9@vm-1.example";
    size_t n = mk_send_name(b, 0xd07df7fbdULL, utf, strlen(utf), strlen(utf));
    ck_assert_int_eq(sniff_first_frame(b, n, &f), SNIFF_OK);
    ck_assert_str_eq(f.name, "\xc3\xa9t\xc3\xa9@vm-1.example");
    /* bytes after the name inside the frame do not become part of it */
    n = mk_send_name(b, 0xd07df7fbdULL, "a@vmXY", 6, 4);
    ck_assert_int_eq(sniff_first_frame(b, n, &f), SNIFF_OK);
    ck_assert_str_eq(f.name, "a@vm");
    ck_assert_uint_eq(f.frame_len, n);
    /* the longest name the struct holds */
    char longname[SNIFF_MAX_NAME + 1];
    memset(longname, 'h', SNIFF_MAX_NAME);
    longname[0] = 'a'; longname[1] = '@';
    n = mk_send_name(b, 0xd07df7fbdULL, longname, SNIFF_MAX_NAME, SNIFF_MAX_NAME);
    ck_assert_int_eq(sniff_first_frame(b, n, &f), SNIFF_OK);
    ck_assert_uint_eq(strlen(f.name), SNIFF_MAX_NAME);
    /* one more does not fit: refused, not overflowed */
    char toolong[SNIFF_MAX_NAME + 2];
    memset(toolong, 'h', sizeof toolong);
    n = mk_send_name(b, 0xd07df7fbdULL, toolong, SNIFF_MAX_NAME + 1, SNIFF_MAX_NAME + 1);
    ck_assert_int_eq(sniff_first_frame(b, n, &f), SNIFF_BAD);
}
END_TEST

START_TEST(first_name_me)
{
    sniff_first f;
    uint8_t b[64];
    /* DFLAG_NAME_ME is bit 33: the name is only the host */
    ck_assert_uint_eq(SNIFF_DFLAG_NAME_ME, 0x200000000ULL);
    size_t n = mk_send_name(b, SNIFF_DFLAG_NAME_ME | 0x07df7fbdULL, "vm", 2, 2);
    ck_assert_uint_eq(b[6], 0x02);              /* high word 00 00 00 02 */
    ck_assert_int_eq(sniff_first_frame(b, n, &f), SNIFF_OK);
    ck_assert_int_eq(f.name_me, 1);
    ck_assert_str_eq(f.name, "vm");
    ck_assert_int_eq(f.old_format, 0);
    /* neighbouring bits are not NAME_ME */
    n = mk_send_name(b, 0x1ULL << 32 | 0x1ULL << 34 | 0xffffffffULL, "a@vm", 4, 4);
    ck_assert_int_eq(sniff_first_frame(b, n, &f), SNIFF_OK);
    ck_assert_int_eq(f.name_me, 0);
    n = mk_send_name(b, ~0ULL, "a@vm", 4, 4);
    ck_assert_int_eq(sniff_first_frame(b, n, &f), SNIFF_OK);
    ck_assert_int_eq(f.name_me, 1);
}
END_TEST

START_TEST(first_old_format)
{
    sniff_first f;
    uint8_t b[64];
    size_t n = mk_old_name(b, "a@vm", 4);
    static const uint8_t want[] = { 0x00, 0x0b, 0x6e, 0x00, 0x05, 0x00, 0x07, 0xff, 0xfd,
                                    0x61, 0x40, 0x76, 0x6d };
    ck_assert_uint_eq(n, sizeof want);
    ck_assert_mem_eq(b, want, sizeof want);
    ck_assert_int_eq(sniff_first_frame(b, n, &f), SNIFF_OK);
    ck_assert_int_eq(f.old_format, 1);
    ck_assert_int_eq(f.name_me, 0);
    ck_assert_str_eq(f.name, "a@vm");
    ck_assert_uint_eq(f.frame_len, 13);
    for (size_t k = 0; k < n; k++)
        ck_assert_int_eq(sniff_first_frame(b, k, &f), SNIFF_MORE);
    /* no name at all, or a control byte in it */
    n = mk_old_name(b, "", 0);
    ck_assert_int_eq(sniff_first_frame(b, n, &f), SNIFF_BAD);
    ck_assert_ptr_nonnull(f.why);
    n = mk_old_name(b, "a@\nvm", 5);
    ck_assert_int_eq(sniff_first_frame(b, n, &f), SNIFF_BAD);
    static const uint8_t tiny[] = { 0x00, 0x03, 'n', 0x00, 0x05 };
    ck_assert_int_eq(sniff_first_frame(tiny, sizeof tiny, &f), SNIFF_BAD);
}
END_TEST

/* ------------------------------------------------------------------ */
/* sniff_feed: the acceptor's side */

/* Status frame: Len 's' text. */
static size_t mk_status(uint8_t *out, const char *text)
{
    size_t tl = strlen(text);
    epmd_put16(out, (uint16_t)(1 + tl));
    out[2] = 's';
    memcpy(out + 3, text, tl);
    return 3 + tl;
}

/* Challenge: Len 'N' Flags:64 Challenge:32 Creation:32 Nlen:16 Name. */
static size_t mk_challenge(uint8_t *out, const char *name)
{
    size_t nl = strlen(name);
    epmd_put16(out, (uint16_t)(1 + 8 + 4 + 4 + 2 + nl));
    out[2] = 'N';
    epmd_put32(out + 3, 0x0000000d);
    epmd_put32(out + 7, 0x07df7fbd);
    epmd_put32(out + 11, 0xb9e3a7c0);          /* challenge */
    epmd_put32(out + 15, 0x6b07a700);          /* creation */
    epmd_put16(out + 19, (uint16_t)nl);
    memcpy(out + 21, name, nl);
    return 21 + nl;
}

/* Old challenge: Len 'n' Version:16 Flags:32 Challenge:32 Name. */
static size_t mk_old_challenge(uint8_t *out, const char *name)
{
    size_t nl = strlen(name);
    epmd_put16(out, (uint16_t)(1 + 2 + 4 + 4 + nl));
    out[2] = 'n';
    epmd_put16(out + 3, 5);
    epmd_put32(out + 5, 0x0007fffd);
    epmd_put32(out + 9, 0xb9e3a7c0);
    memcpy(out + 13, name, nl);
    return 13 + nl;
}

/* Ack: 00 11 'a' Digest:16. */
static size_t mk_ack(uint8_t *out)
{
    out[0] = 0x00; out[1] = 0x11; out[2] = 'a';
    for (int k = 0; k < 16; k++)
        out[3 + k] = (uint8_t)(0xa0 + k);
    return 19;
}

/* The realistic acceptor stream: status ok, challenge from b@vm, ack, then
 * distribution data in 4-byte frames (a tick and a small message).
 * *hs gets the handshake's length. */
static size_t mk_stream(uint8_t *out, size_t *hs)
{
    size_t n = 0;
    n += mk_status(out + n, "ok");
    n += mk_challenge(out + n, "b@vm");
    n += mk_ack(out + n);
    *hs = n;
    static const uint8_t data[] = { 0x00, 0x00, 0x00, 0x00,                 /* tick */
                                    0x00, 0x00, 0x00, 0x03, 0x70, 0x83, 0x68 };
    memcpy(out + n, data, sizeof data);
    return n + sizeof data;
}

static void assert_acked(const sniff_stream *s, const char *ctx)
{
    ck_assert_msg(s->done == 1, "%s: done %d, expected 1", ctx, s->done);
    ck_assert_msg(s->acked == 1, "%s: acked %d", ctx, s->acked);
    ck_assert_msg(strcmp(s->peer_name, "b@vm") == 0, "%s: peer_name \"%s\"", ctx,
                  s->peer_name);
    ck_assert_msg(strcmp(s->status, "ok") == 0, "%s: status \"%s\"", ctx, s->status);
}

START_TEST(feed_stream_bytes)
{
    uint8_t st[128];
    size_t hs, n = mk_stream(st, &hs);
    /* the exact bytes of the first frames, as on the wire */
    static const uint8_t status[] = { 0x00, 0x03, 0x73, 0x6f, 0x6b };
    ck_assert_mem_eq(st, status, 5);
    ck_assert_uint_eq(st[5], 0x00);
    ck_assert_uint_eq(st[6], 0x17);
    ck_assert_uint_eq(hs, 5 + 25 + 19);
    static const uint8_t ackhdr[] = { 0x00, 0x11, 0x61 };
    ck_assert_mem_eq(st + hs - 19, ackhdr, 3);
    ck_assert_uint_eq(n, hs + 11);
}
END_TEST

START_TEST(feed_whole)
{
    uint8_t st[128];
    size_t hs, n = mk_stream(st, &hs);
    sniff_stream s;
    memset(&s, 0, sizeof s);
    ck_assert_uint_eq(sniff_feed(&s, st, n), hs);   /* the data is not consumed */
    assert_acked(&s, "whole");
    /* after the ack nothing more is taken */
    ck_assert_uint_eq(sniff_feed(&s, st + hs, n - hs), 0);
    ck_assert_uint_eq(sniff_feed(&s, st, n), 0);
    assert_acked(&s, "after more");
    /* exactly the handshake, nothing after it */
    memset(&s, 0, sizeof s);
    ck_assert_uint_eq(sniff_feed(&s, st, hs), hs);
    assert_acked(&s, "exact");
    /* an empty feed changes nothing */
    memset(&s, 0, sizeof s);
    ck_assert_uint_eq(sniff_feed(&s, st, 0), 0);
    ck_assert_int_eq(s.done, 0);
}
END_TEST

START_TEST(feed_byte_by_byte)
{
    uint8_t st[128];
    size_t hs, n = mk_stream(st, &hs);
    sniff_stream s;
    memset(&s, 0, sizeof s);
    size_t total = 0;
    for (size_t k = 0; k < n; k++) {
        size_t used = sniff_feed(&s, st + k, 1);
        ck_assert_msg(used == (k < hs ? 1u : 0u), "byte %zu: used %zu", k, used);
        total += used;
        if (k + 1 < hs) {
            ck_assert_msg(s.done == 0, "byte %zu: done %d before the ack", k, s.done);
            ck_assert_int_eq(s.acked, 0);
        }
        if (k == 4)
            ck_assert_str_eq(s.status, "ok");
        if (k == 29)
            ck_assert_str_eq(s.peer_name, "b@vm");
    }
    ck_assert_uint_eq(total, hs);
    assert_acked(&s, "byte by byte");
}
END_TEST

START_TEST(feed_two_way_splits)
{
    uint8_t st[128];
    size_t hs, n = mk_stream(st, &hs);
    for (size_t cut = 0; cut <= n; cut++) {
        sniff_stream s;
        memset(&s, 0, sizeof s);
        size_t a = sniff_feed(&s, st, cut);
        size_t want_a = cut < hs ? cut : hs;
        ck_assert_msg(a == want_a, "split at %zu: first part used %zu, expected %zu", cut, a,
                      want_a);
        ck_assert_msg(s.done == (cut >= hs ? 1 : 0), "split at %zu: done %d after part 1",
                      cut, s.done);
        size_t b = sniff_feed(&s, st + cut, n - cut);
        ck_assert_msg(a + b == hs, "split at %zu: used %zu + %zu, expected %zu", cut, a, b, hs);
        char ctx[32];
        snprintf(ctx, sizeof ctx, "split at %zu", cut);
        assert_acked(&s, ctx);
    }
}
END_TEST

START_TEST(feed_chunks)
{
    /* every fixed chunk size, and every three-way split */
    uint8_t st[128];
    size_t hs, n = mk_stream(st, &hs);
    for (size_t chunk = 1; chunk <= n; chunk++) {
        sniff_stream s;
        memset(&s, 0, sizeof s);
        size_t total = 0;
        for (size_t off = 0; off < n; off += chunk) {
            size_t len = n - off < chunk ? n - off : chunk;
            size_t used = sniff_feed(&s, st + off, len);
            size_t want = off >= hs ? 0 : (off + len <= hs ? len : hs - off);
            ck_assert_msg(used == want, "chunk %zu at %zu: used %zu, expected %zu", chunk, off,
                          used, want);
            total += used;
        }
        ck_assert_uint_eq(total, hs);
        assert_acked(&s, "chunks");
    }
    for (size_t c1 = 0; c1 <= n; c1++)
        for (size_t c2 = c1; c2 <= n; c2++) {
            sniff_stream s;
            memset(&s, 0, sizeof s);
            size_t t = sniff_feed(&s, st, c1);
            t += sniff_feed(&s, st + c1, c2 - c1);
            t += sniff_feed(&s, st + c2, n - c2);
            ck_assert_msg(t == hs, "cuts %zu,%zu: used %zu", c1, c2, t);
            ck_assert_msg(s.acked == 1 && strcmp(s.peer_name, "b@vm") == 0,
                          "cuts %zu,%zu: not acked / no peer", c1, c2);
        }
}
END_TEST

START_TEST(feed_refusals)
{
    static const char *st_text[] = { "nok", "not_allowed", "alive", "ok_simultaneous" };
    for (size_t k = 0; k < 4; k++) {
        uint8_t b[64];
        size_t n = mk_status(b, st_text[k]);
        sniff_stream s;
        memset(&s, 0, sizeof s);
        ck_assert_uint_eq(sniff_feed(&s, b, n), n);
        ck_assert_str_eq(s.status, st_text[k]);
        ck_assert_int_eq(s.done, 0);      /* a refusal ends in a close, not here */
        ck_assert_int_eq(s.acked, 0);
        ck_assert_str_eq(s.peer_name, "");
    }
    /* the captured nok bytes */
    static const uint8_t nok[] = { 0x00, 0x04, 0x73, 0x6e, 0x6f, 0x6b };
    sniff_stream s;
    memset(&s, 0, sizeof s);
    ck_assert_uint_eq(sniff_feed(&s, nok, sizeof nok), sizeof nok);
    ck_assert_str_eq(s.status, "nok");
    /* after "alive" the handshake goes on as usual */
    uint8_t b[128];
    size_t n = mk_status(b, "alive");
    n += mk_challenge(b + n, "b@vm");
    n += mk_ack(b + n);
    memset(&s, 0, sizeof s);
    ck_assert_uint_eq(sniff_feed(&s, b, n), n);
    ck_assert_int_eq(s.acked, 1);
    ck_assert_str_eq(s.status, "alive");
    ck_assert_str_eq(s.peer_name, "b@vm");
}
END_TEST

START_TEST(feed_status_truncated)
{
    /* a long status text is cut to fit, NUL-terminated */
    uint8_t b[128];
    char text[61];
    memset(text, 'x', 60);
    text[60] = 0;
    size_t n = mk_status(b, text);
    sniff_stream s;
    memset(&s, 0, sizeof s);
    ck_assert_uint_eq(sniff_feed(&s, b, n), n);
    ck_assert_uint_eq(strlen(s.status), sizeof s.status - 1);
    ck_assert_int_eq(s.done, 0);
}
END_TEST

START_TEST(feed_named)
{
    /* 's' "named:" Nlen:16 Name Creation:32, for an initiator with NAME_ME */
    uint8_t b[128];
    size_t n = 0;
    static const uint8_t named[] = { 0x00, 0x11, 's', 'n', 'a', 'm', 'e', 'd', ':', 0x00,
                                     0x04, 'c', '@', 'v', 'm', 0x6b, 0x07, 0xa6, 0x85 };
    memcpy(b, named, sizeof named);
    n += sizeof named;
    n += mk_challenge(b + n, "b@vm");
    n += mk_ack(b + n);
    sniff_stream s;
    memset(&s, 0, sizeof s);
    ck_assert_uint_eq(sniff_feed(&s, b, n), n);
    ck_assert_str_eq(s.status, "named:");
    ck_assert_str_eq(s.assigned, "c@vm");
    ck_assert_str_eq(s.peer_name, "b@vm");
    ck_assert_int_eq(s.acked, 1);
    ck_assert_int_eq(s.done, 1);
    /* byte by byte */
    memset(&s, 0, sizeof s);
    size_t t = 0;
    for (size_t k = 0; k < n; k++)
        t += sniff_feed(&s, b + k, 1);
    ck_assert_uint_eq(t, n);
    ck_assert_str_eq(s.assigned, "c@vm");
    ck_assert_int_eq(s.acked, 1);
    /* a "named:" whose Nlen lies: no name is assigned, the stream goes on */
    uint8_t bad[sizeof named];
    memcpy(bad, named, sizeof named);
    bad[10] = 0x40;
    memset(&s, 0, sizeof s);
    ck_assert_uint_eq(sniff_feed(&s, bad, sizeof bad), sizeof bad);
    ck_assert_str_eq(s.status, "named:");
    ck_assert_str_eq(s.assigned, "");
    ck_assert_int_eq(s.done, 0);
}
END_TEST

START_TEST(feed_old_challenge)
{
    uint8_t b[128];
    size_t n = mk_status(b, "ok");
    n += mk_old_challenge(b + n, "b@vm");
    static const uint8_t want[] = { 0x00, 0x0f, 0x6e, 0x00, 0x05, 0x00, 0x07, 0xff, 0xfd,
                                    0xb9, 0xe3, 0xa7, 0xc0, 'b', '@', 'v', 'm' };
    ck_assert_mem_eq(b + 5, want, sizeof want);
    n += mk_ack(b + n);
    size_t hs = n;
    b[n++] = 0; b[n++] = 0; b[n++] = 0; b[n++] = 0;     /* a tick */
    sniff_stream s;
    memset(&s, 0, sizeof s);
    ck_assert_uint_eq(sniff_feed(&s, b, n), hs);
    ck_assert_str_eq(s.peer_name, "b@vm");
    ck_assert_str_eq(s.status, "ok");
    ck_assert_int_eq(s.acked, 1);
    for (size_t cut = 0; cut <= n; cut++) {
        memset(&s, 0, sizeof s);
        size_t t = sniff_feed(&s, b, cut);
        t += sniff_feed(&s, b + cut, n - cut);
        ck_assert_msg(t == hs, "split at %zu: used %zu", cut, t);
        ck_assert_str_eq(s.peer_name, "b@vm");
        ck_assert_int_eq(s.acked, 1);
    }
}
END_TEST

START_TEST(feed_bad_length)
{
    sniff_stream s;
    /* Len 0 */
    static const uint8_t zero[] = { 0x00, 0x00, 0x73, 0x6f, 0x6b };
    memset(&s, 0, sizeof s);
    size_t used = sniff_feed(&s, zero, sizeof zero);
    ck_assert_int_eq(s.done, -1);
    ck_assert_ptr_nonnull(s.why);
    ck_assert_uint_le(used, sizeof zero);
    ck_assert_int_eq(s.acked, 0);
    /* once done, nothing more is taken or changed */
    ck_assert_uint_eq(sniff_feed(&s, zero, sizeof zero), 0);
    ck_assert_int_eq(s.done, -1);
    /* over SNIFF_MAX_FRAME, also split inside the length */
    uint8_t big[2];
    epmd_put16(big, SNIFF_MAX_FRAME + 1);
    memset(&s, 0, sizeof s);
    sniff_feed(&s, big, 1);
    ck_assert_int_eq(s.done, 0);
    sniff_feed(&s, big + 1, 1);
    ck_assert_int_eq(s.done, -1);
    /* after a good status: the status stays, the stream is refused */
    uint8_t b[16];
    size_t n = mk_status(b, "ok");
    b[n++] = 0xff; b[n++] = 0xff;
    memset(&s, 0, sizeof s);
    sniff_feed(&s, b, n);
    ck_assert_int_eq(s.done, -1);
    ck_assert_str_eq(s.status, "ok");
    ck_assert_int_eq(s.acked, 0);
    /* SNIFF_MAX_FRAME itself is a valid length */
    static uint8_t maxf[SNIFF_MAX_FRAME + 2];
    epmd_put16(maxf, SNIFF_MAX_FRAME);
    maxf[2] = 'c';
    memset(&s, 0, sizeof s);
    ck_assert_uint_eq(sniff_feed(&s, maxf, sizeof maxf), sizeof maxf);
    ck_assert_int_eq(s.done, 0);
}
END_TEST

START_TEST(feed_bad_peer_name)
{
    /* a challenge whose name has control bytes or a lying Nlen gives no peer
     * name (and no overflow) */
    uint8_t b[128];
    size_t n = mk_challenge(b, "b\n@vm");
    sniff_stream s;
    memset(&s, 0, sizeof s);
    ck_assert_uint_eq(sniff_feed(&s, b, n), n);
    ck_assert_str_eq(s.peer_name, "");
    n = mk_challenge(b, "b@vm");
    epmd_put16(b + 19, 200);
    memset(&s, 0, sizeof s);
    ck_assert_uint_eq(sniff_feed(&s, b, n), n);
    ck_assert_str_eq(s.peer_name, "");
    ck_assert_int_eq(s.done, 0);
}
END_TEST

Suite *sniff_suite(void)
{
    Suite *s = suite_create("sniff");
    const TTest *cases[] = {
        first_captured,   first_cut_everywhere, first_bad_len,       first_wrong_type,
        first_bad_name,   first_good_names,     first_name_me,       first_old_format,
        feed_stream_bytes, feed_whole,          feed_byte_by_byte,   feed_two_way_splits,
        feed_chunks,      feed_refusals,        feed_status_truncated, feed_named,
        feed_old_challenge, feed_bad_length,    feed_bad_peer_name,
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        TCase *tc = tcase_create(cases[k]->name);
        tcase_set_timeout(tc, 60);
        tcase_add_test(tc, cases[k]);
        suite_add_tcase(s, tc);
    }
    return s;
}
