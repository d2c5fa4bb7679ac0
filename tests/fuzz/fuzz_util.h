/* Helpers for the fuzz targets: an invariant check that aborts (so libFuzzer
 * records a crash with its input), a reference UTF-8 decoder written
 * independently of epmd_utf8_chars(), and a strict JSON validator.
 * Header-only: each target includes it once. */
#ifndef FUZZ_UTIL_H
#define FUZZ_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define FZ_HAVE_ASAN 1
#endif
#endif
#ifdef FZ_HAVE_ASAN
#include <sanitizer/asan_interface.h>
#endif

/* Fail the run: libFuzzer sees the abort and saves the input. */
#define FZ_CHECK(cond, ...)                                                   \
    do {                                                                      \
        if (!(cond)) {                                                        \
            fprintf(stderr, "%s:%d: invariant failed: %s: ", __FILE__,        \
                    __LINE__, #cond);                                         \
            fprintf(stderr, __VA_ARGS__);                                     \
            fputc('\n', stderr);                                              \
            abort();                                                          \
        }                                                                     \
    } while (0)

/* A heap copy of exactly n bytes, so that ASan sees any read past the end. */
static inline uint8_t *fz_dup(const uint8_t *p, size_t n)
{
    uint8_t *q = malloc(n ? n : 1);
    if (!q)
        abort();
    if (n)
        memcpy(q, p, n);
    return q;
}

/* Make only the first k bytes of the n-byte heap block p readable, so
 * that a function given a prefix of k bytes is caught reading past it
 * (fz_unlimit() undoes it).  Without ASan these do nothing. */
static inline void fz_limit(const uint8_t *p, size_t k, size_t n)
{
#ifdef FZ_HAVE_ASAN
    if (k < n)
        ASAN_POISON_MEMORY_REGION(p + k, n - k);
#else
    (void)p, (void)k, (void)n;
#endif
}

static inline void fz_unlimit(const uint8_t *p, size_t n)
{
#ifdef FZ_HAVE_ASAN
    ASAN_UNPOISON_MEMORY_REGION(p, n);
#else
    (void)p, (void)n;
#endif
}

/* Decode one code point the textbook way (lead byte pattern, then
 * continuation bytes, then reject overlong forms, surrogates and values over
 * U+10FFFF by value).  Returns the sequence length or 0 if invalid. */
static inline size_t fz_utf8_one(const uint8_t *s, size_t n, uint32_t *cp)
{
    if (n == 0)
        return 0;
    uint8_t c = s[0];
    size_t len;
    uint32_t v, min;
    if ((c & 0x80) == 0) {
        *cp = c;
        return 1;
    } else if ((c & 0xE0) == 0xC0) {
        len = 2, v = c & 0x1F, min = 0x80;
    } else if ((c & 0xF0) == 0xE0) {
        len = 3, v = c & 0x0F, min = 0x800;
    } else if ((c & 0xF8) == 0xF0) {
        len = 4, v = c & 0x07, min = 0x10000;
    } else {
        return 0;
    }
    if (n < len)
        return 0;
    for (size_t k = 1; k < len; k++) {
        if ((s[k] & 0xC0) != 0x80)
            return 0;
        v = v << 6 | (s[k] & 0x3F);
    }
    if (v < min || v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF))
        return 0;
    *cp = v;
    return len;
}

/* Characters in s[0..n) or -1: the reference for epmd_utf8_chars(). */
static inline int fz_utf8_chars(const uint8_t *s, size_t n)
{
    int chars = 0;
    size_t i = 0;
    while (i < n) {
        uint32_t cp;
        size_t l = fz_utf8_one(s + i, n - i, &cp);
        if (!l)
            return -1;
        i += l;
        chars++;
    }
    return chars;
}

/* Strict JSON (RFC 8259): one value, whitespace around it, strings in valid
 * UTF-8 without raw control characters, escapes from the standard set. */
typedef struct fz_json {
    const char *s;
    size_t n, i;
    int depth;
} fz_json;

static int fz_json_value(fz_json *j);

static inline void fz_json_ws(fz_json *j)
{
    while (j->i < j->n && (j->s[j->i] == ' ' || j->s[j->i] == '\t' ||
                           j->s[j->i] == '\n' || j->s[j->i] == '\r'))
        j->i++;
}

static inline int fz_json_hex(char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

static inline int fz_json_string(fz_json *j)
{
    if (j->i >= j->n || j->s[j->i] != '"')
        return 0;
    j->i++;
    while (j->i < j->n) {
        unsigned char c = (unsigned char)j->s[j->i];
        if (c == '"') {
            j->i++;
            return 1;
        }
        if (c < 0x20)
            return 0;
        if (c == '\\') {
            if (++j->i >= j->n)
                return 0;
            char e = j->s[j->i++];
            if (e == 'u') {
                for (int k = 0; k < 4; k++)
                    if (j->i >= j->n || !fz_json_hex(j->s[j->i++]))
                        return 0;
            } else if (!strchr("\"\\/bfnrt", e) || e == 0) {
                return 0;
            }
            continue;
        }
        uint32_t cp;
        size_t l = fz_utf8_one((const uint8_t *)j->s + j->i, j->n - j->i, &cp);
        if (!l)
            return 0;
        j->i += l;
    }
    return 0;
}

static inline int fz_json_digits(fz_json *j)
{
    size_t st = j->i;
    while (j->i < j->n && j->s[j->i] >= '0' && j->s[j->i] <= '9')
        j->i++;
    return j->i > st;
}

static inline int fz_json_number(fz_json *j)
{
    if (j->i < j->n && j->s[j->i] == '-')
        j->i++;
    if (j->i < j->n && j->s[j->i] == '0')
        j->i++;
    else if (!fz_json_digits(j))
        return 0;
    if (j->i < j->n && j->s[j->i] == '.') {
        j->i++;
        if (!fz_json_digits(j))
            return 0;
    }
    if (j->i < j->n && (j->s[j->i] == 'e' || j->s[j->i] == 'E')) {
        j->i++;
        if (j->i < j->n && (j->s[j->i] == '+' || j->s[j->i] == '-'))
            j->i++;
        if (!fz_json_digits(j))
            return 0;
    }
    return 1;
}

static inline int fz_json_lit(fz_json *j, const char *w)
{
    size_t l = strlen(w);
    if (j->n - j->i < l || memcmp(j->s + j->i, w, l) != 0)
        return 0;
    j->i += l;
    return 1;
}

static inline int fz_json_container(fz_json *j, char close, int object)
{
    if (++j->depth > 256)
        return 0;
    j->i++;
    fz_json_ws(j);
    if (j->i < j->n && j->s[j->i] == close) {
        j->i++;
        j->depth--;
        return 1;
    }
    for (;;) {
        fz_json_ws(j);
        if (object) {
            if (!fz_json_string(j))
                return 0;
            fz_json_ws(j);
            if (j->i >= j->n || j->s[j->i++] != ':')
                return 0;
        }
        if (!fz_json_value(j))
            return 0;
        fz_json_ws(j);
        if (j->i >= j->n)
            return 0;
        char c = j->s[j->i++];
        if (c == close) {
            j->depth--;
            return 1;
        }
        if (c != ',')
            return 0;
    }
}

static int fz_json_value(fz_json *j)
{
    fz_json_ws(j);
    if (j->i >= j->n)
        return 0;
    switch (j->s[j->i]) {
    case '{': return fz_json_container(j, '}', 1);
    case '[': return fz_json_container(j, ']', 0);
    case '"': return fz_json_string(j);
    case 't': return fz_json_lit(j, "true");
    case 'f': return fz_json_lit(j, "false");
    case 'n': return fz_json_lit(j, "null");
    default: return fz_json_number(j);
    }
}

/* 1 if s[0..n) is exactly one valid JSON text. */
static inline int fz_json_valid(const char *s, size_t n)
{
    fz_json j = { s, n, 0, 0 };
    if (!fz_json_value(&j))
        return 0;
    fz_json_ws(&j);
    return j.i == n;
}

/* Decode the JSON string literal at s[0..n) (quotes included) into out
 * (cap bytes); returns the decoded length or -1.  \u escapes are only
 * accepted as sbuf_json_str writes them: below U+0080 (control characters)
 * or U+DC80..U+DCFF (a byte that is not UTF-8), each back to that one byte,
 * so a round trip of arbitrary bytes can be compared. */
static inline long fz_json_unquote(const char *s, size_t n, uint8_t *out, size_t cap)
{
    if (n < 2 || s[0] != '"' || s[n - 1] != '"')
        return -1;
    size_t o = 0;
    for (size_t i = 1; i + 1 < n;) {
        if (o >= cap)
            return -1;
        if (s[i] != '\\') {
            out[o++] = (uint8_t)s[i++];
            continue;
        }
        if (i + 1 >= n - 1)
            return -1;
        char e = s[i + 1];
        if (e == 'u') {
            if (i + 6 > n - 1)
                return -1;
            unsigned v = 0;
            for (int k = 2; k < 6; k++) {
                char h = s[i + (size_t)k];
                v = v * 16 + (unsigned)(h <= '9' ? h - '0' : (h | 0x20) - 'a' + 10);
            }
            if (v >= 0x80 && (v < 0xDC80 || v > 0xDCFF))
                return -1;
            out[o++] = (uint8_t)(v & 0xFF);
            i += 6;
            continue;
        }
        const char *from = "\"\\/bfnrt", *to = "\"\\/\b\f\n\r\t";
        const char *p = strchr(from, e);
        if (!p || !e)
            return -1;
        out[o++] = (uint8_t)to[p - from];
        i += 2;
    }
    return (long)o;
}

#endif
