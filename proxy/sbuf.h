/* A growable byte buffer for building replies (EPMD, control, JSON). */
#ifndef SBUF_H
#define SBUF_H

#include <stddef.h>

typedef struct sbuf {
    char *p;
    size_t len, cap;
    int oom;          /* an allocation failed: contents are incomplete */
} sbuf;

void sbuf_free(sbuf *b);
void sbuf_reset(sbuf *b);
void sbuf_add(sbuf *b, const void *data, size_t n);
void sbuf_addstr(sbuf *b, const char *s);
void sbuf_printf(sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Append s (n bytes) as a JSON string literal, quotes included.  Valid UTF-8
 * is kept as it is (control characters, '"' and '\\' escaped); each byte that
 * is not part of valid UTF-8 (0x80..0xFF) becomes the lone surrogate
 * \udc80..\udcff, so the result is lossless and never equal to the literal
 * of some other, valid string. */
void sbuf_json_str(sbuf *b, const char *s, size_t n);
/* The text so far, NUL-terminated; "" for an empty buffer. */
const char *sbuf_str(const sbuf *b);
/* Drop the first n bytes. */
void sbuf_consume(sbuf *b, size_t n);

#endif
