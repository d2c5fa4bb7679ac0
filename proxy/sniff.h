/* The distribution handshake, as far as a proxy needs it: who is the
 * initiator (its first frame), who is the acceptor and when the handshake
 * is over (the acceptor's frames up to its 'a').  Pure: bytes in, facts out. */
#ifndef SNIFF_H
#define SNIFF_H

#include <stddef.h>
#include <stdint.h>

#define SNIFF_MAX_FRAME 2048     /* no handshake frame we look at is longer */
#define SNIFF_MAX_NAME  1023     /* alive (255) + '@' + host, with room */

/* DFLAG_NAME_ME: bit 33 of the 64-bit flags; the name is only the host. */
#define SNIFF_DFLAG_NAME_ME (1ULL << 33)

typedef enum {
    SNIFF_MORE = 0,     /* the first frame is not complete yet */
    SNIFF_OK = 1,       /* the first frame is complete */
    SNIFF_BAD = -1,     /* not a handshake: close the connection */
} sniff_status;

typedef struct sniff_first {
    char name[SNIFF_MAX_NAME + 1];  /* the initiator's name (NUL-terminated) */
    int name_me;                    /* 1: name is only a host; the acceptor names it */
    int old_format;                 /* 1: an old 'n' frame */
    size_t frame_len;               /* bytes of the whole frame, Len included */
    const char *why;                /* SNIFF_BAD: what was wrong */
} sniff_first;

/* Look at the first n bytes an initiator sent. */
sniff_status sniff_first_frame(const uint8_t *buf, size_t n, sniff_first *out);

/* The acceptor's side of the handshake, fed as it streams by.  Frames may be
 * split anywhere.  Zero the struct to start. */
typedef struct sniff_stream {
    uint8_t frame[SNIFF_MAX_FRAME + 2];
    size_t have;                       /* bytes of the current frame so far */
    int done;                          /* 1: ack seen; -1: not a handshake */
    int acked;                         /* the acceptor sent its 'a' */
    char status[32];                   /* last status ("ok", "nok", "named:" ...) */
    char peer_name[SNIFF_MAX_NAME + 1];/* the acceptor's name from its challenge */
    char assigned[SNIFF_MAX_NAME + 1]; /* a name given by "named:" (NAME_ME) */
    const char *why;                   /* done == -1: what was wrong */
} sniff_stream;

/* Feed n more bytes from the acceptor.  Returns how many of them still belong
 * to the handshake (all n unless the ack ends inside this chunk); once done
 * is set, further calls return 0 and change nothing. */
size_t sniff_feed(sniff_stream *s, const uint8_t *p, size_t n);

#endif
