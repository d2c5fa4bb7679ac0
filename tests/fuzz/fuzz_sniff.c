/* libFuzzer target: the handshake sniffer.  The input is read two ways:
 * as the initiator's first bytes (sniff_first_frame on every prefix), and,
 * after its first byte, as the acceptor's stream, fed whole, split in two at
 * a position taken from that first byte, and one byte at a time.  All three
 * feeds must agree with each other and with a reference frame walk. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "epmd_codec.h"
#include "sniff.h"
#include "fuzz_util.h"

static int valid_name(const char *s)
{
    size_t n = strnlen(s, SNIFF_MAX_NAME + 1);
    if (n == 0 || n > SNIFF_MAX_NAME)
        return 0;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
            return 0;
    return 1;
}

static void check_first(const uint8_t *buf, size_t size)
{
    sniff_status prev = SNIFF_MORE;
    sniff_first prevf;
    memset(&prevf, 0, sizeof prevf);
    size_t limit = size < SNIFF_MAX_FRAME + 8 ? size : SNIFF_MAX_FRAME + 8;
    for (size_t k = 0; k <= limit; k++) {
        sniff_first f;
        fz_limit(buf, k, size);
        sniff_status st = sniff_first_frame(buf, k, &f);
        fz_unlimit(buf, size);
        FZ_CHECK(st == SNIFF_MORE || st == SNIFF_OK || st == SNIFF_BAD, "status %d", st);
        /* a verdict, once given, holds for every longer prefix */
        if (prev != SNIFF_MORE) {
            FZ_CHECK(st == prev, "prefix %zu: status %d after %d on a shorter prefix", k, st,
                     prev);
            if (st == SNIFF_OK)
                FZ_CHECK(strcmp(f.name, prevf.name) == 0 && f.frame_len == prevf.frame_len &&
                         f.name_me == prevf.name_me && f.old_format == prevf.old_format,
                         "prefix %zu: a longer prefix changed the result", k);
        }
        if (st == SNIFF_MORE) {
            FZ_CHECK(k < 2 || k < (size_t)epmd_get16(buf) + 2, "MORE with %zu bytes", k);
        } else if (st == SNIFF_BAD) {
            FZ_CHECK(f.why != NULL, "BAD without a reason");
        } else {
            size_t len = epmd_get16(buf);
            FZ_CHECK(f.frame_len == len + 2 && f.frame_len <= k, "frame_len %zu", f.frame_len);
            FZ_CHECK(len >= 1 && len <= SNIFF_MAX_FRAME, "frame of %zu bytes accepted", len);
            FZ_CHECK(valid_name(f.name), "accepted name is not valid");
            FZ_CHECK(f.old_format == (buf[2] == 'n'), "old_format %d for tag %02x",
                     f.old_format, buf[2]);
            FZ_CHECK(buf[2] == 'N' || buf[2] == 'n', "tag %02x accepted", buf[2]);
            size_t nl = strlen(f.name);
            if (buf[2] == 'N') {
                FZ_CHECK(len >= 15 && epmd_get16(buf + 2 + 13) == nl && 15 + nl <= len,
                         "'N' name length");
                FZ_CHECK(memcmp(f.name, buf + 2 + 15, nl) == 0, "'N' name bytes");
                uint64_t flags = (uint64_t)epmd_get32(buf + 3) << 32 | epmd_get32(buf + 7);
                FZ_CHECK(f.name_me == ((flags >> 33) & 1), "name_me");
            } else {
                FZ_CHECK(len >= 8 && nl == len - 7, "'n' name length %zu of frame %zu", nl, len);
                FZ_CHECK(memcmp(f.name, buf + 2 + 7, nl) == 0, "'n' name bytes");
                FZ_CHECK(f.name_me == 0, "name_me in an old frame");
            }
        }
        prev = st;
        prevf = f;
    }
}

/* Where the acceptor's handshake ends, by walking the frames. */
static size_t expect_consumed(const uint8_t *p, size_t n, int *done)
{
    size_t pos = 0;
    *done = 0;
    for (;;) {
        if (n - pos < 2)
            return n;
        size_t len = epmd_get16(p + pos);
        if (len == 0 || len > SNIFF_MAX_FRAME) {
            *done = -1;
            return pos + 2;
        }
        if (n - pos - 2 < len)
            return n;
        if (p[pos + 2] == 'a') {
            *done = 1;
            return pos + 2 + len;
        }
        pos += 2 + len;
    }
}

static void check_stream_state(const sniff_stream *s)
{
    FZ_CHECK(s->done >= -1 && s->done <= 1, "done %d", s->done);
    FZ_CHECK(s->acked == (s->done == 1), "acked %d with done %d", s->acked, s->done);
    FZ_CHECK(s->done != -1 || s->why, "done -1 without a reason");
    FZ_CHECK(memchr(s->status, 0, sizeof s->status), "status not terminated");
    FZ_CHECK(memchr(s->peer_name, 0, sizeof s->peer_name), "peer_name not terminated");
    FZ_CHECK(memchr(s->assigned, 0, sizeof s->assigned), "assigned not terminated");
    FZ_CHECK(!s->peer_name[0] || valid_name(s->peer_name), "peer_name invalid");
    FZ_CHECK(!s->assigned[0] || valid_name(s->assigned), "assigned name invalid");
    FZ_CHECK(s->have <= SNIFF_MAX_FRAME + 2, "have %zu", s->have);
}

static int same(const sniff_stream *a, const sniff_stream *b)
{
    return a->done == b->done && a->acked == b->acked && strcmp(a->status, b->status) == 0 &&
           strcmp(a->peer_name, b->peer_name) == 0 && strcmp(a->assigned, b->assigned) == 0 &&
           (a->why == NULL) == (b->why == NULL);
}

static size_t feed(sniff_stream *s, const uint8_t *p, size_t n, const uint8_t *blk, size_t blkn)
{
    /* only p[0..n) readable */
    fz_limit(blk, (size_t)(p - blk), blkn);
    fz_unlimit(p, n);
    size_t used = sniff_feed(s, p, n);
    fz_unlimit(blk, blkn);
    FZ_CHECK(used <= n, "used %zu of %zu", used, n);
    FZ_CHECK(s->done != 0 || used == n, "stopped at %zu of %zu without a verdict", used, n);
    check_stream_state(s);
    return used;
}

static void check_stream(const uint8_t *buf, size_t size)
{
    if (size == 0)
        return;
    const uint8_t *p = buf + 1;
    size_t n = size - 1;
    size_t cut = (size_t)buf[0] * (n + 1) / 256;

    static sniff_stream whole, split, bytes, snap;
    memset(&whole, 0, sizeof whole);
    memset(&split, 0, sizeof split);
    memset(&bytes, 0, sizeof bytes);

    size_t uw = feed(&whole, p, n, buf, size);

    size_t us = feed(&split, p, cut, buf, size);
    if (split.done == 0)
        FZ_CHECK(us == cut, "first part");
    us += feed(&split, p + cut, n - cut, buf, size);

    size_t ub = 0;
    for (size_t i = 0; i < n; i++)
        ub += feed(&bytes, p + i, 1, buf, size);

    FZ_CHECK(uw == us && uw == ub, "consumed: whole %zu, split at %zu %zu, bytewise %zu", uw,
             cut, us, ub);
    FZ_CHECK(same(&whole, &split), "whole and split (at %zu) disagree: acked %d/%d "
             "status '%s'/'%s' peer '%s'/'%s'", cut, whole.acked, split.acked, whole.status,
             split.status, whole.peer_name, split.peer_name);
    FZ_CHECK(same(&whole, &bytes), "whole and bytewise disagree: acked %d/%d "
             "status '%s'/'%s' peer '%s'/'%s'", whole.acked, bytes.acked, whole.status,
             bytes.status, whole.peer_name, bytes.peer_name);

    int done;
    size_t want = expect_consumed(p, n, &done);
    FZ_CHECK(uw == want && whole.done == done, "consumed %zu done %d, want %zu done %d", uw,
             whole.done, want, done);

    /* once done, more bytes change nothing */
    if (whole.done != 0) {
        memcpy(&snap, &whole, sizeof snap);
        size_t more = sniff_feed(&whole, p, n);
        FZ_CHECK(more == 0 && memcmp(&snap, &whole, sizeof snap) == 0,
                 "a finished stream took %zu more bytes", more);
    }
}

/* The same bytes with their length fields made consistent, so that the
 * fuzzer reaches long names without having to fix up two fields at once:
 * as a first frame (Len, and Nlen of an 'N'), and as one acceptor frame
 * (Nlen of an 'N' challenge) followed by an ack. */
static void check_repaired(const uint8_t *data, size_t size)
{
    if (size < 3 || size - 2 > SNIFF_MAX_FRAME)
        return;
    uint8_t *f = fz_dup(data, size);
    epmd_put16(f, (uint16_t)(size - 2));
    if (f[2] == 'N' && size >= 17)
        epmd_put16(f + 2 + 13, (uint16_t)(size - 17));
    check_first(f, size);
    free(f);

    /* split byte, Len, body, then 'a' + 16 bytes */
    size_t blen = size - 1, n = 1 + 2 + blen + 2 + 17;
    uint8_t *st = malloc(n);
    st[0] = data[0];
    epmd_put16(st + 1, (uint16_t)blen);
    memcpy(st + 3, data + 1, blen);
    if (st[3] == 'N' && blen >= 19)
        epmd_put16(st + 3 + 17, (uint16_t)(blen - 19));
    epmd_put16(st + 3 + blen, 17);
    st[5 + blen] = 'a';
    memset(st + 6 + blen, 0x5a, 16);
    check_stream(st, n);
    free(st);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t *buf = fz_dup(data, size);
    check_first(buf, size);
    check_stream(buf, size);
    free(buf);
    check_repaired(data, size);
    return 0;
}
