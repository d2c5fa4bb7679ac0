#include "units.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

/* A decimal number at s: at most 12 integer digits and 3 decimals.  Its
 * value times 1000 in *milli; the length of the number, or 0 if none. */
static size_t number(const char *s, size_t n, uint64_t *milli)
{
    size_t i = 0, ndig = 0, nfrac = 0;
    uint64_t v = 0;
    while (i < n && s[i] >= '0' && s[i] <= '9') {
        if (++ndig > 12)
            return 0;
        v = v * 10 + (uint64_t)(s[i++] - '0');
    }
    if (!ndig)
        return 0;
    v *= 1000;
    if (i < n && s[i] == '.') {
        i++;
        uint64_t scale = 100;
        while (i < n && s[i] >= '0' && s[i] <= '9') {
            if (++nfrac > 3)
                return 0;
            v += (uint64_t)(s[i++] - '0') * scale;
            scale /= 10;
        }
        if (!nfrac)
            return 0;
    }
    *milli = v;
    return i;
}

typedef struct unit {
    const char *name;
    uint64_t mult;        /* of the base unit (ms, bytes, bytes/s times 8 for bits) */
} unit;

/* milli / 1000 * mult / div into *out: 0, or -1 if past max or (exact) not
 * whole. */
static int scaled(uint64_t milli, uint64_t mult, uint64_t div, uint64_t max, int exact,
                  uint64_t *out)
{
    /* milli < 10^16 and mult < 2^31: the product fits in 128 bits */
    unsigned __int128 p = (unsigned __int128)milli * mult;
    unsigned __int128 d = (unsigned __int128)1000 * div;
    if (exact && p % d)
        return -1;
    p /= d;
    if (p > max)
        return -1;
    *out = (uint64_t)p;
    return 0;
}

static const unit *find_unit(const unit *units, const char *s, size_t n)
{
    for (const unit *u = units; u->name; u++)
        if (strlen(u->name) == n && strncasecmp(u->name, s, n) == 0)
            return u;
    return NULL;
}

int units_duration(const char *s, size_t n, long long *ms)
{
    static const unit units[] = {
        { "ms", 1 }, { "s", 1000 }, { "m", 60000 }, { "min", 60000 }, { "h", 3600000 }, { 0, 0 }
    };
    uint64_t milli, v;
    size_t k = number(s, n, &milli);
    const unit *u = k ? find_unit(units, s + k, n - k) : NULL;
    if (!u || scaled(milli, u->mult, 1, (uint64_t)UNITS_MAX_MS, 1, &v) < 0)
        return -1;
    *ms = (long long)v;
    return 0;
}

static const unit size_units[] = {
    { "B", 1 },          { "KB", 1000 },       { "MB", 1000000 },  { "GB", 1000000000 },
    { "KiB", 1024 },     { "MiB", 1048576 },   { "GiB", 1073741824 }, { 0, 0 }
};

int units_size(const char *s, size_t n, uint64_t *bytes)
{
    uint64_t milli;
    size_t k = number(s, n, &milli);
    const unit *u = k ? find_unit(size_units, s + k, n - k) : NULL;
    if (!u)
        return -1;
    return scaled(milli, u->mult, 1, UNITS_MAX_BYTES, 1, bytes);
}

int units_rate(const char *s, size_t n, uint64_t *bps)
{
    static const unit bit_units[] = {
        { "bit", 1 }, { "kbit", 1000 }, { "Mbit", 1000000 }, { "Gbit", 1000000000 }, { 0, 0 }
    };
    uint64_t milli;
    size_t k = number(s, n, &milli);
    if (!k || n - k < 3 || memcmp(s + n - 2, "/s", 2) != 0)
        return -1;
    const char *us = s + k;
    size_t un = n - k - 2;
    const unit *u = find_unit(bit_units, us, un);
    int rc;
    if (u)
        rc = scaled(milli, u->mult, 8, UNITS_MAX_RATE, 0, bps);
    else if ((u = find_unit(size_units, us, un)))
        rc = scaled(milli, u->mult, 1, UNITS_MAX_RATE, 0, bps);
    else
        return -1;
    return rc < 0 || *bps == 0 ? -1 : 0;
}

void units_fmt_duration(long long ms, char *out, size_t outlen)
{
    if (ms && ms % 3600000 == 0)
        snprintf(out, outlen, "%lldh", ms / 3600000);
    else if (ms && ms % 60000 == 0)
        snprintf(out, outlen, "%lldm", ms / 60000);
    else if (ms && ms % 1000 == 0)
        snprintf(out, outlen, "%llds", ms / 1000);
    else
        snprintf(out, outlen, "%lldms", ms);
}
