#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <time.h>

int log_level = LOG_ERR;

/* Length of the valid UTF-8 sequence at s[0..n) (2-4), or 0 if there is
 * none: such bytes are printed as \xNN. */
static size_t utf8_len(const unsigned char *s, size_t n)
{
    unsigned c = s[0];
    size_t len;
    unsigned min;
    if (c >= 0xC2 && c <= 0xDF) {
        len = 2;
        min = 0x80;
    } else if (c >= 0xE0 && c <= 0xEF) {
        len = 3;
        min = 0x800;
    } else if (c >= 0xF0 && c <= 0xF4) {
        len = 4;
        min = 0x10000;
    } else {
        return 0;
    }
    if (len > n)
        return 0;
    unsigned cp = c & (0x7F >> len);
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xC0) != 0x80)
            return 0;
        cp = cp << 6 | (s[i] & 0x3F);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
        return 0;
    return len;
}

size_t log_escape(char *out, size_t cap, const char *in, size_t n)
{
    const unsigned char *s = (const unsigned char *)in;
    size_t o = 0;
    if (!cap)
        return 0;
    for (size_t i = 0; i < n;) {
        char tmp[8];
        size_t tl;
        const unsigned char *src = s + i;
        size_t u = s[i] >= 0x80 ? utf8_len(s + i, n - i) : 0;
        if (u) {
            tl = u;
        } else if (s[i] == '\n' || s[i] == '\r' || s[i] == '\t' || s[i] == '\\') {
            tmp[0] = '\\';
            tmp[1] = s[i] == '\n' ? 'n' : s[i] == '\r' ? 'r' : s[i] == '\t' ? 't' : '\\';
            tl = 2;
            src = (const unsigned char *)tmp;
        } else if (s[i] < 0x20 || s[i] >= 0x7F) {
            snprintf(tmp, sizeof tmp, "\\x%02x", s[i]);
            tl = 4;
            src = (const unsigned char *)tmp;
        } else {
            tl = 1;
        }
        if (o + tl >= cap)
            break;   /* truncated, never mid-escape */
        for (size_t k = 0; k < tl; k++)
            out[o++] = (char)src[k];
        i += u ? u : 1;
    }
    out[o] = 0;
    return o;
}

void log_msg(int level, const char *fmt, ...)
{
    if (level > log_level)
        return;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    localtime_r(&ts.tv_sec, &tm);
    char stamp[32];
    strftime(stamp, sizeof stamp, "%H:%M:%S", &tm);
    /* Names from the network go into messages: escape the whole message so
     * that one always stays one line (a name may hold \n or ESC). */
    char raw[4096], esc[4 * sizeof raw];
    va_list ap;
    va_start(ap, fmt);
    int k = vsnprintf(raw, sizeof raw, fmt, ap);
    va_end(ap);
    size_t n = k < 0 ? 0 : (size_t)k < sizeof raw ? (size_t)k : sizeof raw - 1;
    log_escape(esc, sizeof esc, raw, n);
    fprintf(stderr, "epmdpxy %s.%03ld: %s%s\n", stamp, ts.tv_nsec / 1000000, esc,
            (size_t)k >= sizeof raw ? "..." : "");
}
