/* libFuzzer target: the EPMD codec.  Arbitrary bytes as the first bytes of
 * a connection: epmd_frame() on every prefix, epmd_parse() on a whole frame,
 * and the replies the server would build from what was parsed. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "epmd_codec.h"
#include "fuzz_util.h"

/* The frame verdict, recomputed from the rules in epmd-protocol.md. */
static epmd_frame_status expect_frame(const uint8_t *b, size_t n)
{
    if (n < 2)
        return EPMD_FRAME_MORE;
    size_t want = (size_t)b[0] << 8 | b[1];
    if (want < 1 || want > 3057)
        return EPMD_FRAME_BADLEN;
    if (n < want + 2)
        return EPMD_FRAME_MORE;
    return n == want + 2 ? EPMD_FRAME_OK : EPMD_FRAME_EXTRA;
}

static int inside(const uint8_t *p, size_t n, const uint8_t *body, size_t len)
{
    return p >= body && p <= body + len && n <= (size_t)(body + len - p);
}

/* NAMES and DUMP lines for a name, checked against a plain snprintf. */
static void check_lines(const uint8_t *name, size_t namelen, int port, int fd)
{
    char want[4096];
    int wl = snprintf(want, sizeof want, "name %.*s at port %d\n", (int)namelen,
                      (const char *)name, port);
    FZ_CHECK(wl > 0 && (size_t)wl < sizeof want, "reference line");
    /* exact room (+1 for snprintf's NUL), then one byte short */
    char *out = malloc((size_t)wl + 1);
    size_t r = epmd_names_line(out, (size_t)wl + 1, name, namelen, port);
    FZ_CHECK(r == (size_t)wl, "names_line length %zu, want %d", r, wl);
    FZ_CHECK(memcmp(out, want, (size_t)wl + 1) == 0, "names_line text");
    free(out);
    out = malloc((size_t)wl);
    r = epmd_names_line(out, (size_t)wl, name, namelen, port);
    FZ_CHECK(r == (size_t)wl, "names_line truncated length %zu, want %d", r, wl);
    FZ_CHECK(out[wl - 1] == 0, "truncated names_line not NUL-terminated");
    free(out);

    for (int active = 0; active <= 1; active++) {
        wl = active ? snprintf(want, sizeof want, "active name     <%.*s> at port %d, fd = %d\n",
                               (int)namelen, (const char *)name, port, fd)
                    : snprintf(want, sizeof want, "old/unused name <%.*s>, port = %d, fd = %d \n",
                               (int)namelen, (const char *)name, port, fd);
        FZ_CHECK(wl > 0 && (size_t)wl < sizeof want, "reference dump line");
        out = malloc((size_t)wl + 1);
        r = epmd_dump_line(out, (size_t)wl + 1, active, name, namelen, port, fd);
        FZ_CHECK(r == (size_t)wl + 1, "dump_line length %zu, want %d (with NUL)", r, wl + 1);
        FZ_CHECK(memcmp(out, want, (size_t)wl + 1) == 0, "dump_line text");
        FZ_CHECK(out[r - 1] == 0, "dump_line has no NUL at its end");
        free(out);
    }
}

static void check_alive2(const uint8_t *body, size_t len, const epmd_req *q, uint32_t counter)
{
    const epmd_alive2 *a = &q->alive;
    FZ_CHECK(len > 13, "ALIVE2 accepted with len %zu", len);
    FZ_CHECK(a->name == body + 11, "name pointer at offset %td", a->name - body);
    FZ_CHECK(a->namelen == epmd_get16(body + 9), "namelen %zu", a->namelen);
    FZ_CHECK(inside(a->name, a->namelen, body, len), "name outside the body");
    FZ_CHECK(a->extra == body + 13 + a->namelen, "extra pointer");
    FZ_CHECK(inside(a->extra, a->extralen, body, len), "extra outside the body");
    FZ_CHECK(a->extralen == epmd_get16(body + 11 + a->namelen), "extralen");
    FZ_CHECK(!memchr(a->name, 0, a->namelen), "NUL in an accepted name");
    FZ_CHECK(a->port == epmd_get16(body + 1) && a->nodetype == body[3] &&
             a->protocol == body[4] && a->highvsn == epmd_get16(body + 5) &&
             a->lowvsn == epmd_get16(body + 7), "fixed fields");
    int chars = fz_utf8_chars(a->name, a->namelen);
    int ok = a->namelen <= 1020 && chars >= 0 && chars <= 255 && a->extralen <= 1020;
    FZ_CHECK(q->alive_ok == ok, "alive_ok %d, want %d (chars %d, extralen %zu)",
             q->alive_ok, ok, chars, a->extralen);
    FZ_CHECK(ok || q->why, "refused ALIVE2 without a reason");

    /* the reply, in a buffer of exactly the size it needs */
    size_t want = a->highvsn >= 6 ? 6 : 4;
    uint8_t *out = malloc(want);
    size_t r = epmd_alive2_reply(out, a->highvsn, q->alive_ok, counter);
    FZ_CHECK(r == want, "alive2 reply length %zu for highvsn %u", r, a->highvsn);
    FZ_CHECK(out[0] == (want == 6 ? 'v' : 'y'), "alive2 reply tag %02x", out[0]);
    FZ_CHECK(out[1] == (ok ? 0 : 1), "alive2 result %u", out[1]);
    uint32_t creation = want == 6 ? epmd_get32(out + 2) : epmd_get16(out + 2);
    uint32_t wantc = !ok ? 99 : want == 6 ? counter : counter % 3 + 1;
    FZ_CHECK(creation == wantc, "creation %u, want %u", creation, wantc);
    free(out);

    if (!ok)
        return;
    /* PORT2 reply for this node, with the proxy port in place of its own */
    uint16_t pport = (uint16_t)(counter >> 8);
    size_t plen = 14 + a->namelen + a->extralen;
    out = malloc(plen);
    r = epmd_port2_reply(out, plen, pport, a);
    FZ_CHECK(r == plen, "port2 reply length %zu, want %zu", r, plen);
    FZ_CHECK(out[0] == 'w' && out[1] == 0, "port2 reply head");
    FZ_CHECK(epmd_get16(out + 2) == pport, "port2 port");
    FZ_CHECK(out[4] == a->nodetype && out[5] == a->protocol &&
             epmd_get16(out + 6) == a->highvsn && epmd_get16(out + 8) == a->lowvsn,
             "port2 fixed fields");
    FZ_CHECK(epmd_get16(out + 10) == a->namelen &&
             memcmp(out + 12, a->name, a->namelen) == 0, "port2 name");
    FZ_CHECK(epmd_get16(out + 12 + a->namelen) == a->extralen &&
             memcmp(out + 14 + a->namelen, a->extra, a->extralen) == 0, "port2 extra");
    free(out);
    /* one byte short: refused, and nothing written (ASan checks the write) */
    out = malloc(plen - 1);
    r = epmd_port2_reply(out, plen - 1, pport, a);
    FZ_CHECK(r == 0, "port2 reply into a short buffer returned %zu", r);
    free(out);

    check_lines(a->name, a->namelen, a->port, (int)(counter & 0xffff));
}

static void check_body(const uint8_t *body, size_t len, uint32_t counter);

/* An ALIVE2 with its length fields made consistent (Nlen clamped to what is
 * there, Elen the rest), so that long names and extras are reached without
 * the fuzzer having to fix up two fields at once. */
static void check_repaired_alive2(const uint8_t *data, size_t size, uint32_t counter)
{
    if (size < 14 || size > EPMD_MAX_REQ_LEN)
        return;
    uint8_t *body = fz_dup(data, size);
    body[0] = 'x';
    size_t rest = size - 13;
    size_t nl = epmd_get16(body + 9);
    if (nl > rest)
        nl = rest;
    epmd_put16(body + 9, (uint16_t)nl);
    /* Elen sits right after the name */
    memmove(body + 13 + nl, body + 11 + nl, rest - nl);
    epmd_put16(body + 11 + nl, (uint16_t)(rest - nl));
    check_body(body, size, counter);
    free(body);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t *buf = fz_dup(data, size);

    /* every prefix, as the server sees the bytes arrive */
    for (size_t k = 0; k <= size; k++) {
        size_t len = (size_t)-1;
        fz_limit(buf, k, size);
        epmd_frame_status st = epmd_frame(buf, k, &len);
        fz_unlimit(buf, size);
        epmd_frame_status want = expect_frame(buf, k);
        FZ_CHECK(st == want, "epmd_frame(%zu bytes) = %d, want %d", k, st, want);
        if (st == EPMD_FRAME_OK)
            FZ_CHECK(len == k - 2 && len >= 1 && len <= EPMD_MAX_REQ_LEN, "len %zu", len);
        else
            FZ_CHECK(len == (size_t)-1, "len written without a frame");
    }

    size_t len;
    if (epmd_frame(buf, size, &len) != EPMD_FRAME_OK) {
        /* not one frame: parse the raw bytes anyway, the parser must cope */
        len = size > 2 ? size - 2 : 0;
    }
    uint8_t *body = fz_dup(buf + (size >= 2 ? 2 : size), len);
    uint32_t counter = size >= 6 ? epmd_get32(buf + size - 4) : 0x12345678;

    check_body(body, len, counter);
    free(body);
    free(buf);
    check_repaired_alive2(data, size, counter);
    return 0;
}

/* Parse one body and check everything built from it. */
static void check_body(const uint8_t *body, size_t len, uint32_t counter)
{
    epmd_req q;
    epmd_parse(body, len, &q);
    FZ_CHECK(q.kind >= EPMD_REQ_BAD && q.kind <= EPMD_REQ_STOP, "kind %d", (int)q.kind);
    if (q.kind == EPMD_REQ_BAD)
        FZ_CHECK(q.why != NULL, "BAD without a reason");
    if (len == 0)
        FZ_CHECK(q.kind == EPMD_REQ_BAD, "empty body accepted");

    static const struct { int cmd; epmd_req_kind kind; } kinds[] = {
        { 'x', EPMD_REQ_ALIVE2 }, { 'z', EPMD_REQ_PORT2 }, { 'n', EPMD_REQ_NAMES },
        { 'd', EPMD_REQ_DUMP },   { 'k', EPMD_REQ_KILL },  { 's', EPMD_REQ_STOP },
    };
    if (q.kind != EPMD_REQ_BAD) {
        int found = 0;
        for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++)
            if (kinds[i].kind == q.kind) {
                FZ_CHECK(body[0] == kinds[i].cmd, "kind %d from command byte %02x",
                         (int)q.kind, body[0]);
                found = 1;
            }
        FZ_CHECK(found, "kind %d", (int)q.kind);
    } else if (len > 0) {
        /* the commands that cannot fail */
        FZ_CHECK(body[0] != 'n' && body[0] != 'd' && body[0] != 'k',
                 "command %c refused: %s", body[0], q.why);
    }

    switch (q.kind) {
    case EPMD_REQ_ALIVE2:
        check_alive2(body, len, &q, counter);
        break;
    case EPMD_REQ_PORT2: {
        FZ_CHECK(q.name == body + 1, "PORT2 name pointer");
        FZ_CHECK(q.namelen >= 1 && inside(q.name, q.namelen, body, len), "PORT2 name range");
        FZ_CHECK(q.namelen == len - 1 || (q.namelen == len - 2 && body[len - 1] == 0),
                 "PORT2 namelen %zu of body %zu", q.namelen, len);
        FZ_CHECK(!memchr(q.name, 0, q.namelen), "NUL in a PORT2 name");
        int chars = fz_utf8_chars(q.name, q.namelen);
        FZ_CHECK(chars >= 1 && chars <= 254, "PORT2 name of %d characters accepted", chars);
        check_lines(q.name, q.namelen, 0, -1);
        uint8_t nf[2];
        FZ_CHECK(epmd_port2_notfound(nf) == 2 && nf[0] == 'w' && nf[1] == 1, "notfound");
        break;
    }
    case EPMD_REQ_STOP:
        FZ_CHECK(q.name == body + 1, "STOP name pointer");
        FZ_CHECK(inside(q.name, q.namelen, body, len), "STOP name range");
        FZ_CHECK(!memchr(q.name, 0, q.namelen), "NUL in a STOP name");
        FZ_CHECK(q.namelen == len - 1 || q.name[q.namelen] == 0, "STOP name cut short");
        break;
    case EPMD_REQ_BAD:
        if (len > 0 && body[0] == 'x') {
            /* refused ALIVE2: only for framing faults (S:774-818) */
            int fault = len <= 13;
            if (!fault) {
                size_t nl = epmd_get16(body + 9);
                fault = nl + 13 > len || epmd_get16(body + 11 + nl) + nl + 13 > len ||
                        memchr(body + 11, 0, nl) != NULL;
            }
            FZ_CHECK(fault, "ALIVE2 refused (%s) without a framing fault", q.why);
        }
        if (len > 0 && body[0] == 'z') {
            /* refused PORT2: check it was right to */
            size_t n = len - 1;
            if (n > 0 && body[len - 1] == 0)
                n--;
            int chars = n ? fz_utf8_chars(body + 1, n) : -1;
            FZ_CHECK(n == 0 || memchr(body + 1, 0, n) || chars < 0 || chars > 254,
                     "PORT2 refused (%s) with a %d-character name", q.why, chars);
        }
        break;
    default:
        break;
    }

    /* the codec's UTF-8 check against the reference, over the whole body */
    int u = epmd_utf8_chars(body, len), ref = fz_utf8_chars(body, len);
    FZ_CHECK(u == ref, "epmd_utf8_chars = %d, reference %d", u, ref);
}
