/* The EPMD wire format, as OTP 25's epmd speaks it: pure functions, bytes in,
 * a verdict or bytes out.  No sockets, no state. */
#ifndef EPMD_CODEC_H
#define EPMD_CODEC_H

#include <stddef.h>
#include <stdint.h>

#define EPMD_MAXSYMLEN    1020
#define EPMD_INBUF_SIZE   (3 * EPMD_MAXSYMLEN)     /* 3060 */
#define EPMD_MAX_REQ_LEN  (EPMD_INBUF_SIZE - 3)    /* largest Len accepted: 3057 */
#define EPMD_MAX_NAME_CHARS 255

/* Request and reply tags. */
enum {
    EPMD_ALIVE2_REQ    = 'x',
    EPMD_ALIVE2_RESP   = 'y',   /* creation 16 bits, HighVsn < 6 */
    EPMD_ALIVE2_X_RESP = 'v',   /* creation 32 bits, HighVsn >= 6 */
    EPMD_PORT2_REQ     = 'z',
    EPMD_PORT2_RESP    = 'w',
    EPMD_NAMES_REQ     = 'n',
    EPMD_DUMP_REQ      = 'd',
    EPMD_KILL_REQ      = 'k',
    EPMD_STOP_REQ      = 's',
};

/* The creation epmd reports when a registration fails. */
#define EPMD_ERROR_CREATION 99

/* What epmd_frame() says about the bytes received so far. */
typedef enum {
    EPMD_FRAME_MORE = 0,      /* need more bytes */
    EPMD_FRAME_OK = 1,        /* exactly one whole request */
    EPMD_FRAME_BADLEN = -1,   /* Len is 0 or over EPMD_MAX_REQ_LEN: close, no reply */
    EPMD_FRAME_EXTRA = -2,    /* more bytes than Len+2: close, no reply */
} epmd_frame_status;

/* Judge the first `got` bytes of a connection.  On EPMD_FRAME_OK *len is the
 * body length (the body starts at buf+2). */
epmd_frame_status epmd_frame(const uint8_t *buf, size_t got, size_t *len);

/* A node's registration as sent in ALIVE2 and returned by PORT_PLEASE2. */
typedef struct epmd_alive2 {
    uint16_t port;
    uint8_t nodetype;
    uint8_t protocol;
    uint16_t highvsn;
    uint16_t lowvsn;
    const uint8_t *name;
    size_t namelen;
    const uint8_t *extra;
    size_t extralen;
} epmd_alive2;

typedef enum {
    EPMD_REQ_BAD = 0,     /* malformed: close without a reply (why says what) */
    EPMD_REQ_ALIVE2,
    EPMD_REQ_PORT2,
    EPMD_REQ_NAMES,
    EPMD_REQ_DUMP,
    EPMD_REQ_KILL,
    EPMD_REQ_STOP,
} epmd_req_kind;

typedef struct epmd_req {
    epmd_req_kind kind;
    const char *why;          /* EPMD_REQ_BAD, or ALIVE2 with alive_ok == 0 */
    epmd_alive2 alive;        /* EPMD_REQ_ALIVE2: points into the body */
    int alive_ok;             /* ALIVE2: 0 = the name or extra is refused:
                                 answer Result=1, creation 99 */
    const uint8_t *name;      /* PORT2 / STOP: the name, without NULs */
    size_t namelen;
} epmd_req;

/* Parse one request body (Len bytes, command byte first).  Never fails to
 * return: malformed input gives kind EPMD_REQ_BAD.  Pointers in *out point
 * into body.  Whether a command is allowed (local peer, relaxed mode) and
 * whether a name is registered is the server's business, not the codec's. */
void epmd_parse(const uint8_t *body, size_t len, epmd_req *out);

/* Number of characters in a strict UTF-8 string (no overlongs, surrogates or
 * code points over U+10FFFF), or -1 if it is not valid UTF-8. */
int epmd_utf8_chars(const uint8_t *s, size_t n);

/* The ALIVE2 reply for a client that sent `highvsn`: 'v' with 32-bit
 * creation (highvsn >= 6) or 'y' with counter % 3 + 1.  ok == 0 gives
 * Result 1 and creation 99.  out needs 6 bytes; returns the length. */
size_t epmd_alive2_reply(uint8_t *out, unsigned highvsn, int ok, uint32_t counter);

/* PORT2 reply for a found node, with `port` in place of the node's port.
 * Returns the length, or 0 if cap is too small. */
size_t epmd_port2_reply(uint8_t *out, size_t cap, uint16_t port, const epmd_alive2 *node);
/* PORT2 reply for a name that is not registered: "w\1".  Returns 2. */
size_t epmd_port2_notfound(uint8_t *out);

/* The 4-byte EPMDPortNo that starts NAMES and DUMP replies. */
void epmd_put_port32(uint8_t *out, uint32_t port);

/* One NAMES line: "name <Name> at port <port>\n".  Returns its length
 * (snprintf-style: may exceed cap, then out holds a truncated line). */
size_t epmd_names_line(char *out, size_t cap, const uint8_t *name, size_t namelen, int port);
/* One DUMP line, including its trailing NUL byte, for a registered
 * (active != 0) or an old/unused name.  Returns its length with the NUL. */
size_t epmd_dump_line(char *out, size_t cap, int active, const uint8_t *name,
                      size_t namelen, int port, int fd);

/* Big-endian helpers. */
static inline uint16_t epmd_get16(const uint8_t *p) { return (uint16_t)(p[0] << 8 | p[1]); }
static inline uint32_t epmd_get32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}
static inline void epmd_put16(uint8_t *p, uint16_t v) { p[0] = (uint8_t)(v >> 8); p[1] = (uint8_t)v; }
static inline void epmd_put32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24); p[1] = (uint8_t)(v >> 16); p[2] = (uint8_t)(v >> 8); p[3] = (uint8_t)v;
}

#endif
