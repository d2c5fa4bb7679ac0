#include "holdmodel.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DAY_MS (24LL * 3600 * 1000)

void hold_params_default(hold_params *hp)
{
    static const int syn[] = { 1000, 2000, 3000, 4000, 5000, 7000, 11000, 19000, 35000 };
    memset(hp, 0, sizeof *hp);
    hp->rto_ms = 210;
    hp->rto_max_ms = 120000;
    hp->nsyn = (int)(sizeof syn / sizeof syn[0]);
    memcpy(hp->syn_ms, syn, sizeof syn);
    hp->grace_ms = 40;
    hp->grace_bytes = 64 * 1024;
    hp->held_bytes = 0;
    hp->rcvbuf = 0;   /* autotuned: the shrink at the cut bounds what a held node sends
                       * (make netsplit: busy_dist_port as with 16 KiB), and bulk runs
                       * at loopback speed (make bench: 0.3x -> 0.6x direct) */
    hp->mss = 1460;
    hp->held_rcvbuf = 4096;
}

long long hold_next_retx(const hold_params *hp, long long t_first, long long now)
{
    long long max = hp->rto_max_ms > 0 ? hp->rto_max_ms : 1;
    long long step = hp->rto_ms > 0 ? hp->rto_ms : 1;
    long long r = t_first;
    for (;;) {
        if (step >= max) {
            /* every further interval is max: jump straight there */
            r += max;
            if (r < now)
                r += (now - r + max - 1) / max * max;
            return r;
        }
        r += step;
        if (r >= now)
            return r;
        step *= 2;
    }
}

long long hold_next_syn(const hold_params *hp, long long t_attempt, long long now)
{
    for (int i = 0; i < hp->nsyn; i++)
        if (t_attempt + hp->syn_ms[i] >= now)
            return t_attempt + hp->syn_ms[i];
    return -1;
}

long long hold_syn_give_up(const hold_params *hp, long long t_attempt)
{
    return t_attempt + (hp->nsyn ? hp->syn_ms[hp->nsyn - 1] : 0);
}

int hold_parse_syn(hold_params *hp, const char *text, char *err, size_t errlen)
{
    int v[HOLD_SYN_MAX] = { 0 }, n = 0;   /* the tail is copied too: MODE compares params with memcmp */
    const char *p = text;
    while (*p) {
        char *end;
        errno = 0;
        double s = strtod(p, &end);
        if (end == p || errno || s < 0 || s * 1000 >= (double)DAY_MS) {
            snprintf(err, errlen, "SYN schedule: not a number of seconds at '%.16s'", p);
            return -1;
        }
        if (n == HOLD_SYN_MAX) {
            snprintf(err, errlen, "SYN schedule: more than %d retries", HOLD_SYN_MAX);
            return -1;
        }
        int ms = (int)(s * 1000 + 0.5);
        if (n && ms <= v[n - 1]) {
            snprintf(err, errlen, "SYN schedule: times must increase (%d ms after %d ms)", ms,
                     v[n - 1]);
            return -1;
        }
        v[n++] = ms;
        p = end;
        if (*p == ',' && p[1])
            p++;
        else if (*p) {
            snprintf(err, errlen, "SYN schedule: expected ',' at '%.16s'", p);
            return -1;
        }
    }
    memcpy(hp->syn_ms, v, sizeof v);
    hp->nsyn = n;
    return 0;
}

/* A non-negative integer below limit from s[0..len). */
static int parse_num(const char *s, size_t len, long long limit, long long *out)
{
    long long v = 0;
    if (!len || len > 18)
        return -1;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    if (v >= limit)
        return -1;
    *out = v;
    return 0;
}

int hold_set(hold_params *hp, const char *kv, size_t len, char *err, size_t errlen)
{
    const char *eq = memchr(kv, '=', len);
    if (!eq) {
        snprintf(err, errlen, "expected name=value, got '%.*s'", (int)(len > 32 ? 32 : len), kv);
        return -1;
    }
    size_t nl = (size_t)(eq - kv);
    const char *val = eq + 1;
    size_t vl = len - nl - 1;
    struct { const char *name; long long min, limit; } knobs[] = {
        { "rto", 1, DAY_MS }, { "rto_max", 1, DAY_MS }, { "grace", 0, DAY_MS },
        { "grace_bytes", 0, 1LL << 40 }, { "held_bytes", 0, 1LL << 40 }, { "rcvbuf", 0, 1LL << 30 },
        { "mss", 0, 65536 }, { "held_rcvbuf", 0, 1LL << 30 },
    };
    if (nl == 3 && !memcmp(kv, "syn", 3)) {
        char tmp[256];
        if (vl >= sizeof tmp) {
            snprintf(err, errlen, "SYN schedule too long");
            return -1;
        }
        memcpy(tmp, val, vl);
        tmp[vl] = 0;
        return hold_parse_syn(hp, tmp, err, errlen);
    }
    for (size_t i = 0; i < sizeof knobs / sizeof knobs[0]; i++) {
        if (strlen(knobs[i].name) != nl || memcmp(knobs[i].name, kv, nl))
            continue;
        long long v;
        if (parse_num(val, vl, knobs[i].limit, &v) < 0 || v < knobs[i].min) {
            snprintf(err, errlen, "%s needs a number from %lld, got '%.*s'", knobs[i].name,
                     knobs[i].min, (int)(vl > 32 ? 32 : vl), val);
            return -1;
        }
        switch (i) {
        case 0: hp->rto_ms = (int)v; break;
        case 1: hp->rto_max_ms = (int)v; break;
        case 2: hp->grace_ms = (int)v; break;
        case 3: hp->grace_bytes = (size_t)v; break;
        case 4: hp->held_bytes = (size_t)v; break;
        case 5: hp->rcvbuf = (int)v; break;
        case 6: hp->mss = (int)v; break;
        default: hp->held_rcvbuf = (int)v; break;
        }
        return 0;
    }
    snprintf(err, errlen, "unknown knob '%.*s' (rto, rto_max, syn, grace, grace_bytes, "
                          "held_bytes, rcvbuf, mss, held_rcvbuf)", (int)(nl > 32 ? 32 : nl), kv);
    return -1;
}

int hold_format(const hold_params *hp, char *buf, size_t len)
{
    size_t n = 0;
    int k = snprintf(buf, len, "{\"rto\":%d,\"rto_max\":%d,\"grace\":%d,\"grace_bytes\":%zu,"
                               "\"held_bytes\":%zu,\"rcvbuf\":%d,\"mss\":%d,\"held_rcvbuf\":%d,"
                               "\"syn\":[",
                     hp->rto_ms, hp->rto_max_ms, hp->grace_ms, hp->grace_bytes, hp->held_bytes,
                     hp->rcvbuf, hp->mss, hp->held_rcvbuf);
    if (k < 0)
        return k;
    n = (size_t)k;
    for (int i = 0; i < hp->nsyn; i++) {
        k = snprintf(n < len ? buf + n : NULL, n < len ? len - n : 0, "%s%d", i ? "," : "",
                     hp->syn_ms[i]);
        if (k < 0)
            return k;
        n += (size_t)k;
    }
    k = snprintf(n < len ? buf + n : NULL, n < len ? len - n : 0, "]}");
    return k < 0 ? k : (int)(n + (size_t)k);
}
