/* The hold model: when a path that dropped packets lets a TCP stream go on
 * (doc/hold-model.md).  Pure: times in, times out; no sockets, no loop.
 *
 * A blocked direction of a link loses its segments; once the block lifts,
 * the stream resumes only at the sender's next retransmission, counted
 * from the first segment that was lost (RTO0, doubling, each interval
 * capped).  A connection attempt across a block resumes at its next SYN
 * retry, counted from the attempt's start, and fails after the last.  The
 * reverse of a one-way block flows for a grace (its ACKs are lost: the
 * sender's window fills) and then stalls. */
#ifndef HOLDMODEL_H
#define HOLDMODEL_H

#include <stddef.h>

#define HOLD_SYN_MAX 16

typedef struct hold_params {
    int rto_ms;                 /* first retransmission after the first loss */
    int rto_max_ms;             /* cap of one retransmission interval */
    int syn_ms[HOLD_SYN_MAX];   /* SYN retries, ms after the attempt began, increasing */
    int nsyn;
    int grace_ms;               /* reverse of a one-way block: flows this long after its first byte */
    size_t grace_bytes;         /* ... or this many bytes, whichever first */
    size_t held_bytes;          /* a held direction reads this many bytes, then stops */
    int rcvbuf;                 /* SO_RCVBUF of proxied sockets; 0: the kernel's autotuning */
    int mss;                    /* MSS proxied sockets announce; 0: loopback's */
    int held_rcvbuf;            /* SO_RCVBUF of a held source socket, from the block to its
                                 * lifting (its kernel then drops rather than acknowledges,
                                 * as the path would); 0: not shrunk */
} hold_params;

/* Defaults measured on Linux 6.x (tcp_syn_linear_timeouts 4, tcp_rto_min
 * 200 ms plus a loopback-like srtt): see doc/hold-model.md. */
void hold_params_default(hold_params *hp);

/* The release time of a stream whose first segment was lost at t_first:
 * the first retransmission t_first + sum_{j<k} min(rto*2^j, rto_max),
 * k >= 1, that is >= now. */
long long hold_next_retx(const hold_params *hp, long long t_first, long long now);

/* The next SYN retry of an attempt begun at t_attempt that is >= now, or
 * -1 when the schedule is spent (the attempt has failed). */
long long hold_next_syn(const hold_params *hp, long long t_attempt, long long now);

/* When an attempt begun at t_attempt fails if the path never comes back
 * (its last SYN retry); t_attempt when the schedule is empty. */
long long hold_syn_give_up(const hold_params *hp, long long t_attempt);

/* Parse "1,2,3.5,7" (seconds, increasing, at most HOLD_SYN_MAX, each >= 0
 * and < 1 day) into hp's SYN schedule.  0, or -1 with a message in err
 * (hp unchanged). */
int hold_parse_syn(hold_params *hp, const char *text, char *err, size_t errlen);

/* Set one knob from "name=value": rto, rto_max (ms), syn (as above),
 * grace (ms), grace_bytes, held_bytes, rcvbuf (bytes), mss, held_rcvbuf
 * (bytes).  0, or -1 with a
 * message in err (hp unchanged). */
int hold_set(hold_params *hp, const char *kv, size_t len, char *err, size_t errlen);

/* Append the knobs as a JSON object ("rto":210,...,"syn":[1000,...]) to
 * buf; returns what snprintf would. */
int hold_format(const hold_params *hp, char *buf, size_t len);

#endif
