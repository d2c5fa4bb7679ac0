/* libFuzzer target: the arguments of the shim's control commands
 * (app_parse.c), which any local process can send to the control port.
 * The first input byte picks APPLISTEN's form ("NODE PORT") or
 * APPCONNECT's ("NODE DEST_PORT SRC_PORT DEST_ADDR") and the size of the
 * error buffer; the rest is the argument text, given without a NUL and in
 * a block of exactly its size (so that ASan sees a read past it).  The
 * verdict and every field must agree with a reference written here from
 * the grammar, an accepted text must parse again the same once printed
 * back, and app_is_loopback must agree with a byte-level reading of the
 * address. */
#include <arpa/inet.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "app_parse.h"
#include "fuzz_util.h"

#define REF_MAX_WORDS 8

typedef struct ref_word {
    const char *p;
    size_t n;
} ref_word;

/* Split on blanks (space, tab); at most REF_MAX_WORDS + 1 counted. */
static int ref_words(const char *s, size_t n, ref_word *w)
{
    int k = 0;
    size_t i = 0;
    for (;;) {
        while (i < n && (s[i] == ' ' || s[i] == '\t'))
            i++;
        if (i == n)
            return k;
        size_t start = i;
        while (i < n && s[i] != ' ' && s[i] != '\t')
            i++;
        if (k < REF_MAX_WORDS)
            w[k].p = s + start, w[k].n = i - start;
        k++;
        if (k > REF_MAX_WORDS)
            return k;
    }
}

/* A plain node name: 1..RULES_MAX_NAME visible ASCII or high bytes, none
 * of , > * ?, at most one '@' and not first or last. */
static int ref_name(const ref_word *w)
{
    if (w->n < 1 || w->n > RULES_MAX_NAME)
        return 0;
    int ats = 0;
    for (size_t i = 0; i < w->n; i++) {
        unsigned char c = (unsigned char)w->p[i];
        if (c < 0x21 || c == 0x7f || strchr(",>*?", c))
            return 0;
        if (c == '@') {
            ats++;
            if (ats > 1 || i == 0 || i + 1 == w->n)
                return 0;
        }
    }
    return 1;
}

/* 1..5 decimal digits with a value 1..65535; -1 if not. */
static long ref_port(const ref_word *w)
{
    if (w->n < 1 || w->n > 5)
        return -1;
    long v = 0;
    for (size_t i = 0; i < w->n; i++) {
        if (w->p[i] < '0' || w->p[i] > '9')
            return -1;
        v = v * 10 + (w->p[i] - '0');
    }
    return v >= 1 && v <= 65535 ? v : -1;
}

/* A numeric address with no NUL inside: its family and bytes; 0 if not. */
static int ref_addr(const ref_word *w, uint8_t bytes[16])
{
    if (memchr(w->p, 0, w->n) || w->n > 200)
        return 0;
    char buf[201];
    memcpy(buf, w->p, w->n);
    buf[w->n] = 0;
    if (inet_pton(AF_INET, buf, bytes) == 1)
        return AF_INET;
    if (inet_pton(AF_INET6, buf, bytes) == 1)
        return AF_INET6;
    return 0;
}

/* Loopback by the bytes: 127/8, ::1, ::ffff:127.x. */
static int ref_loopback(int family, const uint8_t *b)
{
    static const uint8_t one[16] = { [15] = 1 };
    static const uint8_t mapped[12] = { [10] = 0xff, [11] = 0xff };
    if (family == AF_INET)
        return b[0] == 127;
    if (family == AF_INET6)
        return memcmp(b, one, 16) == 0 || (memcmp(b, mapped, 12) == 0 && b[12] == 127);
    return 0;
}

/* The reference verdict; on acceptance, want holds what app_parse must
 * give (node, ports, the address bytes in dest). */
static int ref_parse(const char *s, size_t n, int nports, app_args *want)
{
    ref_word w[REF_MAX_WORDS];
    int k = ref_words(s, n, w);
    memset(want, 0, sizeof *want);
    if (k != (nports == 2 ? 4 : 2) || !ref_name(&w[0]))
        return -1;
    memcpy(want->node, w[0].p, w[0].n);
    long p = ref_port(&w[1]);
    if (p < 0)
        return -1;
    want->port = (int)p;
    if (nports == 1)
        return 0;
    long sp = ref_port(&w[2]);
    uint8_t b[16];
    int fam = ref_addr(&w[3], b);
    if (sp < 0 || !fam || !ref_loopback(fam, b))
        return -1;
    want->src_port = (int)sp;
    want->dest.ss_family = (sa_family_t)fam;
    if (fam == AF_INET) {
        memcpy(&((struct sockaddr_in *)&want->dest)->sin_addr, b, 4);
        want->destlen = sizeof(struct sockaddr_in);
    } else {
        memcpy(&((struct sockaddr_in6 *)&want->dest)->sin6_addr, b, 16);
        want->destlen = sizeof(struct sockaddr_in6);
    }
    return 0;
}

static void check_dest(const app_args *got, const app_args *want)
{
    FZ_CHECK(got->destlen == want->destlen && got->dest.ss_family == want->dest.ss_family,
             "destination family %d len %u, want %d len %u", got->dest.ss_family,
             (unsigned)got->destlen, want->dest.ss_family, (unsigned)want->destlen);
    if (got->dest.ss_family == AF_INET) {
        const struct sockaddr_in *g = (const struct sockaddr_in *)&got->dest;
        const struct sockaddr_in *r = (const struct sockaddr_in *)&want->dest;
        FZ_CHECK(memcmp(&g->sin_addr, &r->sin_addr, 4) == 0, "IPv4 destination bytes");
        FZ_CHECK(ntohs(g->sin_port) == got->port, "IPv4 destination port %d, want %d",
                 ntohs(g->sin_port), got->port);
    } else {
        const struct sockaddr_in6 *g = (const struct sockaddr_in6 *)&got->dest;
        const struct sockaddr_in6 *r = (const struct sockaddr_in6 *)&want->dest;
        FZ_CHECK(memcmp(&g->sin6_addr, &r->sin6_addr, 16) == 0, "IPv6 destination bytes");
        FZ_CHECK(ntohs(g->sin6_port) == got->port, "IPv6 destination port");
    }
    FZ_CHECK(app_is_loopback((const struct sockaddr *)&got->dest), "accepted a non-loopback");
}

/* Parse s[0..n) from an exact-size heap block; the verdict. */
static int parse_exact(const char *s, size_t n, int nports, app_args *out, size_t errlen)
{
    char *blk = (char *)fz_dup((const uint8_t *)s, n);
    char *err = malloc(errlen ? errlen : 1);
    if (!err)
        abort();
    if (errlen)
        memset(err, 'x', errlen);
    int r = app_parse(blk, n, nports, out, err, errlen);
    FZ_CHECK(r == 0 || r == -1, "returned %d", r);
    if (r < 0 && errlen) {
        FZ_CHECK(memchr(err, 0, errlen), "error message not terminated");
        FZ_CHECK(errlen == 1 || err[0], "an error without a message");
    }
    free(err);
    free(blk);
    return r;
}

static void check_parse(const char *s, size_t n, int nports, size_t errlen)
{
    app_args got, want;
    int r = parse_exact(s, n, nports, &got, errlen);
    int rr = ref_parse(s, n, nports, &want);
    FZ_CHECK(r == rr, "app_parse says %d, the reference %d (nports %d, '%.*s')", r, rr, nports,
             (int)(n > 200 ? 200 : n), s);
    if (r < 0)
        return;
    FZ_CHECK(memchr(got.node, 0, sizeof got.node), "node not terminated");
    FZ_CHECK(strcmp(got.node, want.node) == 0, "node '%s', want '%s'", got.node, want.node);
    FZ_CHECK(got.port == want.port, "port %d, want %d", got.port, want.port);
    if (nports == 1) {
        FZ_CHECK(got.src_port == 0 && got.destlen == 0, "APPLISTEN form set APPCONNECT fields");
        return;
    }
    FZ_CHECK(got.src_port == want.src_port, "source port %d, want %d", got.src_port,
             want.src_port);
    check_dest(&got, &want);

    /* printed back in canonical form, it parses to the same */
    char host[INET6_ADDRSTRLEN], line[RULES_MAX_NAME + 96];
    const void *a = got.dest.ss_family == AF_INET
                        ? (const void *)&((struct sockaddr_in *)&got.dest)->sin_addr
                        : (const void *)&((struct sockaddr_in6 *)&got.dest)->sin6_addr;
    FZ_CHECK(inet_ntop(got.dest.ss_family, a, host, sizeof host), "inet_ntop");
    int len = snprintf(line, sizeof line, "%s\t%d %d  %s ", got.node, got.port, got.src_port,
                       host);
    app_args again;
    FZ_CHECK(parse_exact(line, (size_t)len, 2, &again, 64) == 0, "printed back, refused: %s",
             line);
    FZ_CHECK(strcmp(again.node, got.node) == 0 && again.port == got.port &&
                 again.src_port == got.src_port && again.destlen == got.destlen &&
                 memcmp(&again.dest, &got.dest, got.destlen) == 0,
             "printed back, parsed otherwise: %s", line);
}

/* app_is_loopback on raw sockaddr bytes of any family. */
static void check_loopback(const uint8_t *data, size_t size)
{
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof ss);
    memcpy(&ss, data, size < sizeof ss ? size : sizeof ss);
    int fam = ss.ss_family;
    const uint8_t *b = fam == AF_INET
                           ? (const uint8_t *)&((struct sockaddr_in *)&ss)->sin_addr
                           : (const uint8_t *)&((struct sockaddr_in6 *)&ss)->sin6_addr;
    int want = ref_loopback(fam, b);
    FZ_CHECK(app_is_loopback((struct sockaddr *)&ss) == want, "app_is_loopback, family %d", fam);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    int nports = (data[0] & 1) ? 2 : 1;
    size_t errlen = (data[0] >> 1) & 0x7f;   /* 0..127: a short buffer truncates */
    const char *s = (const char *)data + 1;
    check_parse(s, size - 1, nports, errlen);
    check_parse(s, size - 1, 3 - nports, 128);
    check_loopback(data, size);
    return 0;
}
