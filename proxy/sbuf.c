#include "sbuf.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "epmd_codec.h"   /* epmd_utf8_chars */

void sbuf_free(sbuf *b)
{
    free(b->p);
    memset(b, 0, sizeof *b);
}

void sbuf_reset(sbuf *b)
{
    b->len = 0;
    b->oom = 0;
    if (b->p)
        b->p[0] = 0;
}

static int grow(sbuf *b, size_t more)
{
    if (b->len + more + 1 <= b->cap)
        return 0;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->len + more + 1)
        cap *= 2;
    char *p = realloc(b->p, cap);
    if (!p) {
        b->oom = 1;
        return -1;
    }
    b->p = p;
    b->cap = cap;
    return 0;
}

void sbuf_add(sbuf *b, const void *data, size_t n)
{
    if (grow(b, n) < 0)
        return;
    memcpy(b->p + b->len, data, n);
    b->len += n;
    b->p[b->len] = 0;
}

void sbuf_addstr(sbuf *b, const char *s)
{
    sbuf_add(b, s, strlen(s));
}

void sbuf_printf(sbuf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0 || grow(b, (size_t)n) < 0)
        return;
    va_start(ap, fmt);
    vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

void sbuf_json_str(sbuf *b, const char *s, size_t n)
{
    sbuf_add(b, "\"", 1);
    size_t i = 0;
    while (i < n) {
        unsigned char c = (unsigned char)s[i];
        char esc[8];
        if (c == '"' || c == '\\') {
            esc[0] = '\\';
            esc[1] = (char)c;
            sbuf_add(b, esc, 2);
            i++;
        } else if (c < 0x20 || c == 0x7f) {
            snprintf(esc, sizeof esc, "\\u%04x", c);
            sbuf_add(b, esc, 6);
            i++;
        } else if (c < 0x80) {
            sbuf_add(b, s + i, 1);
            i++;
        } else {
            size_t k = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : 2;
            if (i + k <= n && epmd_utf8_chars((const uint8_t *)s + i, k) == 1) {
                sbuf_add(b, s + i, k);
                i += k;
            } else {
                /* U+DC80..U+DCFF stand for the raw bytes 0x80..0xFF (as
                 * Python's "surrogateescape"): valid UTF-8 never encodes a
                 * surrogate, so no real text reads the same, unlike \u00ff
                 * which is also what "\xc3\xbf" means. */
                snprintf(esc, sizeof esc, "\\udc%02x", c);
                sbuf_add(b, esc, 6);
                i++;
            }
        }
    }
    sbuf_add(b, "\"", 1);
}

void sbuf_consume(sbuf *b, size_t n)
{
    if (n >= b->len) {
        b->len = 0;
    } else {
        memmove(b->p, b->p + n, b->len - n);
        b->len -= n;
    }
    if (b->p)
        b->p[b->len] = 0;
}

const char *sbuf_str(const sbuf *b)
{
    return b->p && b->len ? b->p : "";
}
