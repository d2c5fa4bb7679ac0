#include "epmd_codec.h"

#include <stdio.h>
#include <string.h>

epmd_frame_status epmd_frame(const uint8_t *buf, size_t got, size_t *len)
{
    if (got < 2)
        return EPMD_FRAME_MORE;
    size_t want = epmd_get16(buf);
    if (want == 0 || want > EPMD_MAX_REQ_LEN)
        return EPMD_FRAME_BADLEN;
    if (got < want + 2)
        return EPMD_FRAME_MORE;
    if (got > want + 2)
        return EPMD_FRAME_EXTRA;
    *len = want;
    return EPMD_FRAME_OK;
}

int epmd_utf8_chars(const uint8_t *s, size_t n)
{
    int chars = 0;
    size_t i = 0;
    while (i < n) {
        uint8_t c = s[i];
        size_t need;
        uint8_t lo = 0x80, hi = 0xBF;   /* allowed range of the 2nd byte */
        if (c < 0x80) {
            need = 0;
        } else if (c >= 0xC2 && c <= 0xDF) {
            need = 1;
        } else if (c >= 0xE0 && c <= 0xEF) {
            need = 2;
            if (c == 0xE0) lo = 0xA0;          /* overlong */
            if (c == 0xED) hi = 0x9F;          /* surrogates */
        } else if (c >= 0xF0 && c <= 0xF4) {
            need = 3;
            if (c == 0xF0) lo = 0x90;          /* overlong */
            if (c == 0xF4) hi = 0x8F;          /* over U+10FFFF */
        } else {
            return -1;
        }
        if (n - i - 1 < need)
            return -1;
        for (size_t k = 1; k <= need; k++) {
            uint8_t b = s[i + k];
            uint8_t l = k == 1 ? lo : 0x80, h = k == 1 ? hi : 0xBF;
            if (b < l || b > h)
                return -1;
        }
        i += need + 1;
        chars++;
    }
    return chars;
}

/* ALIVE2: framing errors close silently; name/extra problems get an error
 * reply (epmd checks those when it tries to register). */
static void parse_alive2(const uint8_t *b, size_t len, epmd_req *r)
{
    if (len <= 13) {
        r->why = "ALIVE2 request too short";
        return;
    }
    size_t namelen = epmd_get16(b + 9);
    if (namelen + 13 > len) {
        r->why = "ALIVE2 name length beyond the request";
        return;
    }
    size_t extralen = epmd_get16(b + 11 + namelen);
    if (extralen + namelen + 13 > len) {
        r->why = "ALIVE2 extra length beyond the request";
        return;
    }
    if (memchr(b + 11, 0, namelen)) {
        r->why = "ALIVE2 name contains a NUL byte";
        return;
    }
    r->kind = EPMD_REQ_ALIVE2;
    epmd_alive2 *a = &r->alive;
    a->port = epmd_get16(b + 1);
    a->nodetype = b[3];
    a->protocol = b[4];
    a->highvsn = epmd_get16(b + 5);
    a->lowvsn = epmd_get16(b + 7);
    a->name = b + 11;
    a->namelen = namelen;
    a->extra = b + 13 + namelen;
    a->extralen = extralen;
    r->alive_ok = 0;
    if (namelen > EPMD_MAXSYMLEN) {
        r->why = "node name too long";
        return;
    }
    int chars = epmd_utf8_chars(a->name, namelen);
    if (chars > EPMD_MAX_NAME_CHARS) {
        r->why = "node name too long";
        return;
    }
    if (chars < 0) {
        r->why = "node name is not valid UTF-8";
        return;
    }
    if (extralen > EPMD_MAXSYMLEN) {
        r->why = "extra data too long";
        return;
    }
    r->alive_ok = 1;
}

/* PORT2: one trailing NUL is dropped; epmd's UTF-8 check runs over the name
 * plus its terminator, so at most 254 characters pass. */
static void parse_port2(const uint8_t *b, size_t len, epmd_req *r)
{
    if (len > 1 && b[len - 1] == 0)
        len--;
    if (len <= 1) {
        r->why = "PORT2 request without a name";
        return;
    }
    const uint8_t *name = b + 1;
    size_t n = len - 1;
    if (memchr(name, 0, n)) {
        r->why = "PORT2 name contains a NUL byte";
        return;
    }
    int chars = epmd_utf8_chars(name, n);
    if (chars < 0 || chars + 1 > EPMD_MAX_NAME_CHARS) {
        r->why = "PORT2 name invalid";
        return;
    }
    r->kind = EPMD_REQ_PORT2;
    r->name = name;
    r->namelen = n;
}

void epmd_parse(const uint8_t *body, size_t len, epmd_req *r)
{
    memset(r, 0, sizeof *r);
    r->kind = EPMD_REQ_BAD;
    if (len == 0) {
        r->why = "empty request";
        return;
    }
    switch (body[0]) {
    case EPMD_ALIVE2_REQ:
        parse_alive2(body, len, r);
        return;
    case EPMD_PORT2_REQ:
        parse_port2(body, len, r);
        return;
    case EPMD_NAMES_REQ:
        r->kind = EPMD_REQ_NAMES;
        return;
    case EPMD_DUMP_REQ:
        r->kind = EPMD_REQ_DUMP;
        return;
    case EPMD_KILL_REQ:
        r->kind = EPMD_REQ_KILL;
        return;
    case EPMD_STOP_REQ:
        if (len <= 1) {
            r->why = "STOP request without a name";
            return;
        }
        /* epmd compares the name as a C string: it ends at the first NUL */
        r->kind = EPMD_REQ_STOP;
        r->name = body + 1;
        r->namelen = strnlen((const char *)body + 1, len - 1);
        return;
    default:
        r->why = "unknown request";
        return;
    }
}

size_t epmd_alive2_reply(uint8_t *out, unsigned highvsn, int ok, uint32_t counter)
{
    if (highvsn >= 6) {
        out[0] = EPMD_ALIVE2_X_RESP;
        out[1] = ok ? 0 : 1;
        epmd_put32(out + 2, ok ? counter : EPMD_ERROR_CREATION);
        return 6;
    }
    out[0] = EPMD_ALIVE2_RESP;
    out[1] = ok ? 0 : 1;
    epmd_put16(out + 2, (uint16_t)(ok ? counter % 3 + 1 : EPMD_ERROR_CREATION));
    return 4;
}

size_t epmd_port2_reply(uint8_t *out, size_t cap, uint16_t port, const epmd_alive2 *n)
{
    size_t len = 12 + n->namelen + 2 + n->extralen;
    if (len > cap)
        return 0;
    out[0] = EPMD_PORT2_RESP;
    out[1] = 0;
    epmd_put16(out + 2, port);
    out[4] = n->nodetype;
    out[5] = n->protocol;
    epmd_put16(out + 6, n->highvsn);
    epmd_put16(out + 8, n->lowvsn);
    epmd_put16(out + 10, (uint16_t)n->namelen);
    memcpy(out + 12, n->name, n->namelen);
    epmd_put16(out + 12 + n->namelen, (uint16_t)n->extralen);
    if (n->extralen)
        memcpy(out + 14 + n->namelen, n->extra, n->extralen);
    return len;
}

size_t epmd_port2_notfound(uint8_t *out)
{
    out[0] = EPMD_PORT2_RESP;
    out[1] = 1;
    return 2;
}

void epmd_put_port32(uint8_t *out, uint32_t port)
{
    epmd_put32(out, port);
}

size_t epmd_names_line(char *out, size_t cap, const uint8_t *name, size_t namelen, int port)
{
    int r = snprintf(out, cap, "name %.*s at port %d\n", (int)namelen, (const char *)name, port);
    return r < 0 ? 0 : (size_t)r;
}

size_t epmd_dump_line(char *out, size_t cap, int active, const uint8_t *name,
                      size_t namelen, int port, int fd)
{
    int r = active
        ? snprintf(out, cap, "active name     <%.*s> at port %d, fd = %d\n",
                   (int)namelen, (const char *)name, port, fd)
        : snprintf(out, cap, "old/unused name <%.*s>, port = %d, fd = %d \n",
                   (int)namelen, (const char *)name, port, fd);
    return r < 0 ? 0 : (size_t)r + 1;   /* the NUL is part of the line */
}
