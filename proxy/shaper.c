#include "shaper.h"

#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "nemesis.h"

/* The delay line's bytes live in their own mapping, not in the heap: a
 * burst of megabytes on a slow link is given back to the system when the
 * line empties, instead of staying in the daemon's heap (make soak checks
 * the daemon's RSS).  NULL if out of memory. */
static uint8_t *line_resize(uint8_t *old, size_t oldcap, size_t cap)
{
    void *p = old ? mremap(old, oldcap, cap, MREMAP_MAYMOVE)
                  : mmap(NULL, cap, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    return p == MAP_FAILED ? NULL : p;
}

static void line_free(uint8_t *p, size_t cap)
{
    if (p)
        munmap(p, cap);
}

void shaper_init(shaper *s, uint64_t seed)
{
    memset(s, 0, sizeof *s);
    s->rng = seed;
}

void shaper_free(shaper *s)
{
    line_free(s->buf, s->cap);
    free(s->ch);
    s->buf = NULL;
    s->ch = NULL;
    s->off = s->len = s->cap = 0;
    s->chead = s->nch = s->chcap = 0;
}

static int has(const shaper *s, fault_kind k)
{
    return (s->p.set & FAULT_BIT(k)) != 0;
}

static uint64_t burst(const shaper *s)
{
    uint64_t b = s->p.rate * SHAPER_BURST_MS / 1000;
    return (b < SHAPER_MIN_BURST ? SHAPER_MIN_BURST : b) * 1000;
}

static void refill(shaper *s, long long now)
{
    if (!has(s, FAULT_RATE)) {
        s->tok_ms = now;
        return;
    }
    if (now > s->tok_ms) {
        unsigned __int128 t = (unsigned __int128)s->p.rate * (uint64_t)(now - s->tok_ms) + s->tokens;
        s->tokens = t > burst(s) ? burst(s) : (uint64_t)t;
    }
    s->tok_ms = now;
}

void shaper_set(shaper *s, const fault_params *p, long long now)
{
    refill(s, now);
    int had_rate = has(s, FAULT_RATE);
    s->p = *p;
    if (has(s, FAULT_RATE) && !had_rate)
        s->tokens = burst(s);   /* a new cap starts with a full bucket */
    if (s->tokens > burst(s))
        s->tokens = burst(s);
    long long cap = now + (has(s, FAULT_DELAY) && (s->p.delay_ms || s->p.jitter_ms)
                               ? (long long)s->p.delay_ms + s->p.jitter_ms + 1 : 0);
    for (size_t i = 0; i < s->nch; i++) {
        shaper_chunk *c = &s->ch[(s->chead + i) % s->chcap];
        if (c->due_ms > cap)
            c->due_ms = cap;   /* still non-decreasing: min with a constant */
    }
    if (s->last_due > cap)
        s->last_due = cap;
    if (!has(s, FAULT_SLICE))
        s->slice_next_ms = 0;
}

size_t shaper_held(const shaper *s)
{
    return s->len - s->off;
}

int shaper_active(const shaper *s)
{
    return shaper_held(s) ||
           (s->p.set & (FAULT_BIT(FAULT_DELAY) | FAULT_BIT(FAULT_RATE) | FAULT_BIT(FAULT_SLICE)));
}

/* The bound on held bytes: with RATE alone about a second of bytes (a slow
 * link's queue, not a 4 MiB one), with DELAY what arrives during it. */
static size_t bound(const shaper *s)
{
    if (!has(s, FAULT_RATE))
        return SHAPER_MAX_HELD;
    uint64_t ms = 1000 + (has(s, FAULT_DELAY) ? (uint64_t)s->p.delay_ms + s->p.jitter_ms : 0);
    uint64_t b = s->p.rate * ms / 1000;
    if (b < SHAPER_MIN_HELD)
        b = SHAPER_MIN_HELD;
    return b > SHAPER_MAX_HELD ? SHAPER_MAX_HELD : (size_t)b;
}

size_t shaper_room(const shaper *s)
{
    size_t held = shaper_held(s), max = bound(s);
    if (s->nch >= SHAPER_MAX_CHUNKS || held >= max)
        return 0;
    return max - held;
}

static shaper_chunk *tail(shaper *s)
{
    return s->nch ? &s->ch[(s->chead + s->nch - 1) % s->chcap] : NULL;
}

/* Room for one more chunk: the ring doubles (unwrapped) up to
 * SHAPER_MAX_CHUNKS.  0, or -1 if out of memory. */
static int ring_room(shaper *s)
{
    if (s->nch < s->chcap)
        return 0;
    size_t cap = s->chcap ? s->chcap * 2 : 16;
    if (cap > SHAPER_MAX_CHUNKS)
        cap = SHAPER_MAX_CHUNKS;
    shaper_chunk *n = malloc(cap * sizeof *n);
    if (!n)
        return -1;
    for (size_t i = 0; i < s->nch; i++)
        n[i] = s->ch[(s->chead + i) % s->chcap];
    free(s->ch);
    s->ch = n;
    s->chcap = cap;
    s->chead = 0;
    return 0;
}

int shaper_accept(shaper *s, const uint8_t *p, size_t n, long long now)
{
    if (n == 0)
        return 0;
    if (n > shaper_room(s))
        return -1;
    if (s->len + n > s->cap) {
        if (s->off) {   /* slide the held bytes to the front first */
            memmove(s->buf, s->buf + s->off, s->len - s->off);
            s->len -= s->off;
            s->off = 0;
        }
        if (s->len + n > s->cap) {
            size_t cap = s->cap ? s->cap : 16384;
            while (cap < s->len + n)
                cap *= 2;
            uint8_t *b = line_resize(s->buf, s->cap, cap);
            if (!b)
                return -1;
            s->buf = b;
            s->cap = cap;
        }
    }
    long long due = now;
    if (has(s, FAULT_DELAY) && (s->p.delay_ms || s->p.jitter_ms)) {
        /* now is whole ms rounded down: one more, so that no byte is ever
         * early (a round trip under DELAY 50ms both ways is >= 100 ms) */
        due += (long long)s->p.delay_ms + 1;
        if (s->p.jitter_ms)
            due += (long long)(nemesis_rand(&s->rng) % ((uint64_t)s->p.jitter_ms + 1));
    }
    if (due < s->last_due)
        due = s->last_due;   /* jitter never reorders */
    shaper_chunk *t = tail(s);
    if (t && t->due_ms == due && (uint64_t)t->len + n <= UINT32_MAX) {
        t->len += (uint32_t)n;
    } else {
        if (ring_room(s) < 0)
            return -1;   /* nothing taken: buf may have grown, which is harmless */
        shaper_chunk *c = &s->ch[(s->chead + s->nch++) % s->chcap];
        c->len = (uint32_t)n;
        c->due_ms = due;
    }
    s->last_due = due;
    memcpy(s->buf + s->len, p, n);
    s->len += n;
    return 0;
}

size_t shaper_ready(shaper *s, long long now, const uint8_t **p)
{
    if (!s->nch)
        return 0;
    shaper_chunk *h = &s->ch[s->chead];
    if (h->due_ms > now || (has(s, FAULT_SLICE) && s->slice_next_ms > now))
        return 0;
    size_t n = h->len;
    if (has(s, FAULT_SLICE) && n > s->p.slice_bytes)
        n = s->p.slice_bytes;
    if (has(s, FAULT_RATE)) {
        refill(s, now);
        uint64_t whole = s->tokens / 1000;
        if (whole < n) {
            /* wait for a quantum, not a byte: no storm of tiny writes */
            uint64_t want = burst(s) / 1000 < n ? burst(s) / 1000 : n;
            if (whole < want)
                return 0;
            n = (size_t)whole;
        }
    }
    *p = s->buf + s->off;
    return n;
}

void shaper_sent(shaper *s, size_t n, long long now)
{
    if (n == 0)
        return;
    if (has(s, FAULT_RATE)) {
        refill(s, now);
        uint64_t cost = (uint64_t)n * 1000;
        s->tokens = s->tokens > cost ? s->tokens - cost : 0;
    }
    if (has(s, FAULT_SLICE))
        s->slice_next_ms = now + s->p.slice_gap_ms;
    s->off += n;
    while (n && s->nch) {
        shaper_chunk *h = &s->ch[s->chead];
        size_t k = n < h->len ? n : h->len;
        h->len -= (uint32_t)k;
        n -= k;
        if (!h->len) {
            s->chead = (s->chead + 1) % s->chcap;
            s->nch--;
        }
    }
    if (s->off == s->len) {
        /* empty: give the memory back (an idle delay line costs nothing) */
        line_free(s->buf, s->cap);
        free(s->ch);
        s->buf = NULL;
        s->ch = NULL;
        s->off = s->len = s->cap = 0;
        s->chead = s->nch = s->chcap = 0;
    }
}

long long shaper_next_ms(shaper *s, long long now)
{
    if (!s->nch)
        return -1;
    long long t = s->ch[s->chead].due_ms;
    if (has(s, FAULT_SLICE) && s->slice_next_ms > t)
        t = s->slice_next_ms;
    if (t < now)
        t = now;
    if (has(s, FAULT_RATE)) {
        refill(s, now);
        uint64_t n = s->ch[s->chead].len;
        if (has(s, FAULT_SLICE) && n > s->p.slice_bytes)
            n = s->p.slice_bytes;
        uint64_t want = (burst(s) / 1000 < n ? burst(s) / 1000 : n) * 1000;
        if (s->tokens < want) {
            uint64_t ms = (want - s->tokens + s->p.rate - 1) / s->p.rate;
            if (now + (long long)ms > t)
                t = now + (long long)ms;
        }
    }
    return t;
}

long long shaper_close_at(const shaper *s, long long eof_ms)
{
    return eof_ms + (has(s, FAULT_SLOWCLOSE) ? (long long)s->p.slowclose_ms : 0);
}
