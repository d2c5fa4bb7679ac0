#include "http_body.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#define JSMN_STATIC
#define JSMN_STRICT
#include <jsmn.h>

#include "rules.h"

typedef struct doc {
    const char *s;
    jsmntok_t *t;
    int n;
    char *err;
    size_t errlen;
} doc;

__attribute__((format(printf, 2, 3)))
static int fail(doc *d, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(d->err, d->errlen, fmt, ap);
    va_end(ap);
    return -1;
}

/* The index of the token after token i and everything inside it. */
static int skip(const doc *d, int i)
{
    if (i >= d->n)
        return d->n;
    int end = d->t[i].end;
    for (i++; i < d->n && d->t[i].start < end; i++) {}
    return i;
}

static int hex(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c |= 0x20;
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

static long hex4(const char *s, size_t n, size_t i)
{
    if (i + 4 > n)
        return -1;
    long v = 0;
    for (int k = 0; k < 4; k++) {
        int h = hex(s[i + (size_t)k]);
        if (h < 0)
            return -1;
        v = v * 16 + h;
    }
    return v;
}

long http_body_unescape(const char *s, size_t n, char *out, size_t cap)
{
    size_t o = 0;
    for (size_t i = 0; i < n;) {
        unsigned char c = (unsigned char)s[i];
        unsigned long cp;
        if (c < 0x20)
            return -1;
        if (c != '\\') {
            if (o + 1 >= cap)
                return -1;
            out[o++] = (char)c;
            i++;
            continue;
        }
        if (i + 1 >= n)
            return -1;
        char e = s[i + 1];
        const char *from = "\"\\/bfnrt", *to = "\"\\/\b\f\n\r\t";
        const char *m = e ? strchr(from, e) : NULL;
        if (m) {
            if (o + 1 >= cap)
                return -1;
            out[o++] = to[m - from];
            i += 2;
            continue;
        }
        if (e != 'u')
            return -1;
        long v = hex4(s, n, i + 2);
        if (v < 0)
            return -1;
        i += 6;
        cp = (unsigned long)v;
        if (cp >= 0xDC00 && cp <= 0xDFFF)
            return -1;   /* a low surrogate alone */
        if (cp >= 0xD800 && cp <= 0xDBFF) {
            long lo = i + 1 < n && s[i] == '\\' && s[i + 1] == 'u' ? hex4(s, n, i + 2) : -1;
            if (lo < 0xDC00 || lo > 0xDFFF)
                return -1;
            cp = 0x10000 + ((cp - 0xD800) << 10) + ((unsigned long)lo - 0xDC00);
            i += 6;
        }
        if (cp == 0)
            return -1;
        unsigned char u[4];
        size_t k;
        if (cp < 0x80) {
            u[0] = (unsigned char)cp, k = 1;
        } else if (cp < 0x800) {
            u[0] = (unsigned char)(0xC0 | cp >> 6), u[1] = (unsigned char)(0x80 | (cp & 0x3F)), k = 2;
        } else if (cp < 0x10000) {
            u[0] = (unsigned char)(0xE0 | cp >> 12), u[1] = (unsigned char)(0x80 | (cp >> 6 & 0x3F));
            u[2] = (unsigned char)(0x80 | (cp & 0x3F)), k = 3;
        } else {
            u[0] = (unsigned char)(0xF0 | cp >> 18), u[1] = (unsigned char)(0x80 | (cp >> 12 & 0x3F));
            u[2] = (unsigned char)(0x80 | (cp >> 6 & 0x3F)), u[3] = (unsigned char)(0x80 | (cp & 0x3F));
            k = 4;
        }
        if (o + k >= cap)
            return -1;
        memcpy(out + o, u, k);
        o += k;
    }
    if (o >= cap)
        return -1;
    out[o] = 0;
    return (long)o;
}

static int key_is(const doc *d, int i, const char *key)
{
    const jsmntok_t *t = &d->t[i];
    size_t kl = strlen(key);
    return t->type == JSMN_STRING && (size_t)(t->end - t->start) == kl &&
           memcmp(d->s + t->start, key, kl) == 0;
}

/* Token i as a string into out; what is wrong otherwise. */
static int string_at(doc *d, int i, const char *what, char *out, size_t cap)
{
    if (i >= d->n)
        return fail(d, "body is not valid JSON");
    const jsmntok_t *t = &d->t[i];
    if (t->type != JSMN_STRING)
        return fail(d, "%s must be a string", what);
    if (http_body_unescape(d->s + t->start, (size_t)(t->end - t->start), out, cap) < 0)
        return fail(d, "%s is not a usable string", what);
    return 0;
}

/* Token i, a string of one word: not empty, no blank, control or DEL
 * byte (a blank would add arguments to the command). */
static int word_at(doc *d, int i, const char *what, char *out, size_t cap)
{
    if (string_at(d, i, what, out, cap) < 0)
        return -1;
    for (const char *c = out; *c; c++)
        if ((unsigned char)*c <= ' ' || *c == 0x7f)
            return fail(d, "%s must be one word", what);
    if (!out[0])
        return fail(d, "%s is empty", what);
    return 0;
}

/* Token i, a node name, appended to args after sep. */
static int name_at(doc *d, int i, const char *what, const char *sep, sbuf *args)
{
    static char name[RULES_MAX_NAME + 2];
    if (string_at(d, i, what, name, sizeof name) < 0)
        return -1;
    size_t n = strlen(name);
    if (!rules_valid_name(name, n))
        return fail(d, "invalid node name '%.*s'", (int)(n > 200 ? 200 : n), name);
    sbuf_addstr(args, sep);
    sbuf_add(args, name, n);
    return 0;
}

/* Token i: a list of names (or with one_ok, one name) joined by commas. */
static int names_at(doc *d, int i, const char *what, int one_ok, sbuf *args)
{
    if (i >= d->n)
        return fail(d, "body is not valid JSON");
    if (one_ok && d->t[i].type == JSMN_STRING)
        return name_at(d, i, what, "", args);
    if (d->t[i].type != JSMN_ARRAY)
        return fail(d, "%s must be an array of node names", what);
    if (d->t[i].size == 0)
        return fail(d, "%s is empty", what);
    int k = i + 1;
    for (int m = 0; m < d->t[i].size; m++) {
        if (name_at(d, k, what, m ? "," : "", args) < 0)
            return -1;
        k = skip(d, k);
    }
    return 0;
}

/* The words a fault body's members make: key, the word before the value,
 * and what a number gets after it. */
typedef struct word {
    const char *key, *prefix, *num_suffix;
} word;

static const word *extra_word(const word *w, const doc *d, int k)
{
    for (; w && w->key; w++)
        if (key_is(d, k, w->key))
            return w;
    return NULL;
}

static int spec(doc *d, sbuf *args, const word *extra)
{
    int islands = -1, from = -1, to = -1;
    int k = 1;
    for (int m = 0; m < d->t[0].size; m++, k = skip(d, k + 1)) {
        if (k + 1 >= d->n)
            return fail(d, "body is not valid JSON");
        if (extra_word(extra, d, k))
            continue;
        if (key_is(d, k, "islands"))
            islands = k + 1;
        else if (key_is(d, k, "from"))
            from = k + 1;
        else if (key_is(d, k, "to"))
            to = k + 1;
        else
            return fail(d, "unknown member '%.*s' (islands, or from and to%s)",
                        d->t[k].end - d->t[k].start > 64 ? 64 : d->t[k].end - d->t[k].start,
                        d->s + d->t[k].start, extra ? ", and the fault's" : "");
    }
    if (islands >= 0) {
        if (from >= 0 || to >= 0)
            return fail(d, "give either islands or from and to, not both");
        if (d->t[islands].type != JSMN_ARRAY)
            return fail(d, "islands must be an array of arrays of node names");
        if (d->t[islands].size == 0)
            return fail(d, "islands is empty: give at least one island");
        int i = islands + 1;
        for (int m = 0; m < d->t[islands].size; m++, i = skip(d, i)) {
            if (i >= d->n)
                return fail(d, "body is not valid JSON");
            if (m)
                sbuf_addstr(args, " ");
            if (d->t[i].type != JSMN_ARRAY)
                return fail(d, "islands must be an array of arrays of node names");
            if (names_at(d, i, "an island", 0, args) < 0)
                return -1;
        }
        return 0;
    }
    if (from < 0 || to < 0)
        return fail(d, "needs islands, or from and to");
    if (names_at(d, from, "from", 1, args) < 0)
        return -1;
    sbuf_addstr(args, " -> ");
    return names_at(d, to, "to", 1, args);
}

/* {"<key>": "<string>"} and nothing else. */
static int single(doc *d, const char *key, int name, sbuf *args)
{
    int val = -1;
    for (int m = 0, k = 1; m < d->t[0].size; m++, k = skip(d, k + 1)) {
        if (k + 1 >= d->n)
            return fail(d, "body is not valid JSON");
        if (!key_is(d, k, key))
            return fail(d, "unknown member '%.*s' (only %s)",
                        d->t[k].end - d->t[k].start > 64 ? 64 : d->t[k].end - d->t[k].start,
                        d->s + d->t[k].start, key);
        val = k + 1;
    }
    if (val < 0)
        return fail(d, "needs \"%s\"", key);
    if (name)
        return name_at(d, val, key, "", args);
    char v[64];
    if (word_at(d, val, key, v, sizeof v) < 0)   /* empty: "MODE" alone would only ask */
        return -1;
    sbuf_addstr(args, v);
    return 0;
}

/* Append " <prefix><value>" for each member of the table present in the
 * body, in the table's order.  A value is a string of at most 64
 * printable characters without blanks, or a whole number (then with the
 * entry's suffix). */
static int words(doc *d, const word *w, sbuf *args)
{
    for (; w->key; w++) {
        int val = -1;
        for (int m = 0, k = 1; m < d->t[0].size; m++, k = skip(d, k + 1))
            if (k + 1 < d->n && key_is(d, k, w->key))
                val = k + 1;
        if (val < 0)
            continue;
        const jsmntok_t *t = &d->t[val];
        char v[80];
        if (t->type == JSMN_PRIMITIVE) {
            int n = t->end - t->start;
            if (n < 1 || n > 20 || strspn(d->s + t->start, "0123456789") < (size_t)n)
                return fail(d, "%s must be a string or a whole number", w->key);
            snprintf(v, sizeof v, "%.*s%s", n, d->s + t->start, w->num_suffix);
        } else {
            if (word_at(d, val, w->key, v, 66) < 0)
                return -1;
        }
        sbuf_printf(args, " %s%s", w->prefix, v);
    }
    return 0;
}

static const word delay_words[] = { { "delay", "", "ms" }, { "jitter", "JITTER ", "ms" },
                                    { "for", "FOR ", "ms" }, { 0, 0, 0 } };
static const word rate_words[] = { { "rate", "", "B/s" }, { "for", "FOR ", "ms" }, { 0, 0, 0 } };
static const word flap_words[] = { { "up", "UP ", "ms" }, { "down", "DOWN ", "ms" },
                                   { "for", "FOR ", "ms" }, { 0, 0, 0 } };
static const word nemesis_words[] = { { "shape", "", "" }, { "seed", "SEED ", "" },
                                      { "every", "EVERY ", "ms" }, { "heal", "HEAL ", "ms" },
                                      { "for", "FOR ", "ms" }, { 0, 0, 0 } };

/* A spec and the fault's words after it (CLEAR: {} means every fault). */
static int fault(doc *d, const word *w, sbuf *args)
{
    if (!w && d->t[0].size == 0)
        return 0;
    if (spec(d, args, w) < 0)
        return -1;
    return w ? words(d, w, args) : 0;
}

/* NEMESIS: SHAPE or (with "every") START, then the words. */
static int nemesis(doc *d, sbuf *args)
{
    int every = 0;
    for (int m = 0, k = 1; m < d->t[0].size; m++, k = skip(d, k + 1)) {
        if (k + 1 >= d->n)
            return fail(d, "body is not valid JSON");
        if (!extra_word(nemesis_words, d, k))
            return fail(d, "unknown member '%.*s' (shape, seed, every, heal, for)",
                        d->t[k].end - d->t[k].start > 64 ? 64 : d->t[k].end - d->t[k].start,
                        d->s + d->t[k].start);
        every |= key_is(d, k, "every");
    }
    sbuf_addstr(args, every ? "START" : "SHAPE");
    return words(d, nemesis_words, args);
}

int http_body_args(const char *body, size_t len, http_body_kind kind, sbuf *args, char *err,
                   size_t errlen)
{
    static jsmntok_t tok[HTTP_BODY_MAX_TOKENS];   /* the daemon is single-threaded */
    doc d = { body, tok, 0, err, errlen };
    jsmn_parser p;
    jsmn_init(&p);
    int n = jsmn_parse(&p, body, len, tok, HTTP_BODY_MAX_TOKENS);
    if (n == JSMN_ERROR_NOMEM)
        return fail(&d, "body has too many values (at most %d)", HTTP_BODY_MAX_TOKENS);
    if (n <= 0)
        return fail(&d, "body is not valid JSON");
    d.n = n;
    /* one value and only blanks after it (jsmn would take "{}{}" as two) */
    size_t end = (size_t)tok[0].end;
    while (end < len && strchr(" \t\r\n", body[end]) && body[end])
        end++;
    if (skip(&d, 0) != n || end != len)
        return fail(&d, "body is not valid JSON");
    if (tok[0].type != JSMN_OBJECT)
        return fail(&d, "body must be a JSON object");
    size_t before = args->len;
    int rc;
    switch (kind) {
    case HTTP_BODY_SPEC: rc = spec(&d, args, NULL); break;
    case HTTP_BODY_NODE: rc = single(&d, "node", 1, args); break;
    case HTTP_BODY_DELAY: rc = fault(&d, delay_words, args); break;
    case HTTP_BODY_RATE: rc = fault(&d, rate_words, args); break;
    case HTTP_BODY_CLEAR: rc = fault(&d, NULL, args); break;
    case HTTP_BODY_FLAP: rc = fault(&d, flap_words, args); break;
    case HTTP_BODY_NEMESIS: rc = nemesis(&d, args); break;
    default: rc = single(&d, "mode", 0, args); break;
    }
    if (rc == 0 && args->oom)
        rc = fail(&d, "out of memory");
    if (rc < 0) {
        args->len = before;
        if (args->p)
            args->p[before] = 0;
    }
    return rc;
}
