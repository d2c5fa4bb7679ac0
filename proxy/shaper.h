/* The shaper of one direction of a link: what DELAY, JITTER, RATE and
 * SLICE do to its bytes, and when SLOWCLOSE lets its EOF go.  Pure: bytes
 * and the time come in as arguments, no sockets, no clock.
 *
 * The relay reads from the source into the shaper (shaper_room bytes at
 * most: zero means stop reading, the backpressure), writes what
 * shaper_ready offers to the sink, reports what the sink took with
 * shaper_sent, and sets a loop timer for shaper_next_ms when nothing is
 * ready yet.
 *
 * The delay line is one buffer of bytes in arrival order and a ring of
 * chunks (a length and a due time each).  Invariants:
 *  - held == sum of the chunks' lengths == len - off <= the bound;
 *  - due times never decrease along the ring: a chunk is due no earlier
 *    than the one before it, so jitter never reorders bytes;
 *  - tokens <= burst (milli-bytes), refilled at rate per ms;
 *  - an empty delay line holds no memory (buf and ch are freed when the
 *    last byte leaves): an idle link costs nothing. */
#ifndef SHAPER_H
#define SHAPER_H

#include <stddef.h>
#include <stdint.h>

#include "faults.h"

#define SHAPER_MAX_HELD   (4u * 1024 * 1024)  /* held bytes per direction at most */
#define SHAPER_MIN_HELD   (64u * 1024)        /* with RATE: about a second of bytes, not less */
#define SHAPER_MAX_CHUNKS 4096                /* chunks in the delay line at most */
#define SHAPER_BURST_MS   10                  /* RATE's burst: this many ms of bytes */
#define SHAPER_MIN_BURST  1500                /* ... but at least a packet's worth */

typedef struct shaper_chunk {
    uint32_t len;
    long long due_ms;
} shaper_chunk;

typedef struct shaper {
    fault_params p;            /* the faults that apply now */
    uint8_t *buf;              /* held bytes: buf[off..len) */
    size_t off, len, cap;
    shaper_chunk *ch;          /* ring of chcap (<= SHAPER_MAX_CHUNKS), from chead, nch used */
    size_t chead, nch, chcap;
    long long last_due;        /* due time of the newest chunk */
    uint64_t tokens;           /* token bucket, milli-bytes */
    long long tok_ms;          /* last refill */
    long long slice_next_ms;   /* SLICE: the next write no earlier */
    uint64_t rng;              /* JITTER draws */
} shaper;

/* An empty shaper with no faults; seed drives the jitter. */
void shaper_init(shaper *s, uint64_t seed);
/* Free what it holds. */
void shaper_free(shaper *s);

/* Apply new faults at now.  Held bytes keep their order; a smaller delay
 * brings their due times closer (never past now + the new delay). */
void shaper_set(shaper *s, const fault_params *p, long long now);
/* Does it shape anything: faults that touch bytes, or bytes still held?
 * If not, the relay may pass bytes straight through. */
int shaper_active(const shaper *s);
/* Bytes held. */
size_t shaper_held(const shaper *s);
/* How many more bytes it takes now (0: stop reading the source). */
size_t shaper_room(const shaper *s);

/* Take n bytes that arrived at now (n <= shaper_room).  With DELAY they
 * are due at now + delay + 1 (+ jitter): now is whole milliseconds rounded
 * down, and a byte must never leave early.  0, or -1 if out of
 * memory (nothing taken). */
int shaper_accept(shaper *s, const uint8_t *p, size_t n, long long now);
/* The bytes that may be written at now: *p and the count (0: none yet). */
size_t shaper_ready(shaper *s, long long now, const uint8_t **p);
/* The sink took n of the bytes shaper_ready offered, at now. */
void shaper_sent(shaper *s, size_t n, long long now);
/* When shaper_ready will next offer bytes: a time >= now, or -1 if
 * nothing is held. */
long long shaper_next_ms(shaper *s, long long now);

/* SLOWCLOSE: when an EOF seen at eof_ms may be passed on. */
long long shaper_close_at(const shaper *s, long long eof_ms);

#endif
