#include "sniff.h"

#include <string.h>

#include "epmd_codec.h"   /* epmd_get16 / epmd_get32 */

/* A node name is printable ASCII or UTF-8, no NUL, no control bytes. */
static int copy_name(char *dst, const uint8_t *src, size_t n)
{
    if (n == 0 || n > SNIFF_MAX_NAME)
        return -1;
    for (size_t i = 0; i < n; i++)
        if (src[i] < 0x20 || src[i] == 0x7f)
            return -1;
    memcpy(dst, src, n);
    dst[n] = 0;
    return 0;
}

sniff_status sniff_first_frame(const uint8_t *buf, size_t n, sniff_first *out)
{
    memset(out, 0, sizeof *out);
    if (n < 2)
        return SNIFF_MORE;
    size_t len = epmd_get16(buf);
    if (len == 0 || len > SNIFF_MAX_FRAME) {
        out->why = len == 0 ? "empty first frame" : "first frame too long";
        return SNIFF_BAD;
    }
    if (n >= 3 && buf[2] != 'N' && buf[2] != 'n') {
        out->why = "first frame is not a send_name ('N' or 'n')";
        return SNIFF_BAD;
    }
    if (n < len + 2)
        return SNIFF_MORE;
    const uint8_t *b = buf + 2;
    out->frame_len = len + 2;
    if (b[0] == 'N') {
        /* 'N' Flags:64 Creation:32 Nlen:16 Name */
        if (len < 15) {
            out->why = "send_name 'N' too short";
            return SNIFF_BAD;
        }
        size_t nlen = epmd_get16(b + 13);
        if (15 + nlen > len) {
            out->why = "send_name name length beyond the frame";
            return SNIFF_BAD;
        }
        uint64_t flags = (uint64_t)epmd_get32(b + 1) << 32 | epmd_get32(b + 5);
        out->name_me = (flags & SNIFF_DFLAG_NAME_ME) != 0;
        if (copy_name(out->name, b + 15, nlen) < 0) {
            out->why = "send_name carries no valid name";
            return SNIFF_BAD;
        }
        return SNIFF_OK;
    }
    /* old 'n' Version:16 Flags:32 Name */
    if (len < 8) {
        out->why = "send_name 'n' too short";
        return SNIFF_BAD;
    }
    out->old_format = 1;
    if (copy_name(out->name, b + 7, len - 7) < 0) {
        out->why = "send_name carries no valid name";
        return SNIFF_BAD;
    }
    return SNIFF_OK;
}

/* One whole acceptor frame (body of blen bytes). */
static void stream_frame(sniff_stream *s, const uint8_t *b, size_t blen)
{
    switch (b[0]) {
    case 's': {
        size_t tl = blen - 1;
        if (tl >= 6 && memcmp(b + 1, "named:", 6) == 0) {
            memcpy(s->status, "named:", 7);
            /* 's' "named:" Nlen:16 Name Creation:32 */
            if (blen >= 9) {
                size_t nlen = epmd_get16(b + 7);
                if (9 + nlen <= blen && copy_name(s->assigned, b + 9, nlen) < 0)
                    s->assigned[0] = 0;
            }
            break;
        }
        if (tl >= sizeof s->status)
            tl = sizeof s->status - 1;
        memcpy(s->status, b + 1, tl);
        s->status[tl] = 0;
        break;
    }
    case 'N':   /* 'N' Flags:64 Challenge:32 Creation:32 Nlen:16 Name */
        if (blen >= 19) {
            size_t nlen = epmd_get16(b + 17);
            if (19 + nlen <= blen)
                copy_name(s->peer_name, b + 19, nlen);
        }
        break;
    case 'n':   /* 'n' Version:16 Flags:32 Challenge:32 Name */
        if (blen > 11)
            copy_name(s->peer_name, b + 11, blen - 11);
        break;
    case 'a':
        s->acked = 1;
        s->done = 1;
        break;
    default:
        break;  /* e.g. the complement 'c': nothing to learn */
    }
}

size_t sniff_feed(sniff_stream *s, const uint8_t *p, size_t n)
{
    size_t used = 0;
    while (used < n && s->done == 0) {
        if (s->have < 2) {
            s->frame[s->have++] = p[used++];
            if (s->have == 2) {
                size_t len = epmd_get16(s->frame);
                if (len == 0 || len > SNIFF_MAX_FRAME) {
                    s->done = -1;
                    s->why = "acceptor frame length out of range";
                }
            }
            continue;
        }
        size_t len = epmd_get16(s->frame);
        size_t want = len + 2 - s->have;
        size_t take = n - used < want ? n - used : want;
        memcpy(s->frame + s->have, p + used, take);
        s->have += take;
        used += take;
        if (s->have == len + 2) {
            stream_frame(s, s->frame + 2, len);
            s->have = 0;
        }
    }
    return used;
}
