#include "proxy.h"

#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>
#include <netinet/in.h>

#include "faults.h"
#include "epmd_srv.h"
#include "log.h"
#include "shaper.h"
#include "sniff.h"
#include "sock.h"

/* Bytes move in chunks of RELAY_CHUNK through one shared scratch buffer:
 * at 64 KiB the syscalls per GiB, not the copies, bounded bulk throughput
 * (make bench, raw section: 1 MiB chunks relay about 1.5x faster and halve
 * the CPU per GiB).  A direction keeps a buffer of its own only for what
 * its sink did not take, sized to that, and only until it is gone. */
#define RELAY_CHUNK     (1024 * 1024)
#define FIRST_CAP       (64 * 1024)   /* the initiator's first frame (SNIFF_MAX_FRAME fits) */
#define NAME_TIMEOUT_MS 15000         /* to send the first handshake frame */
#define CONNECT_TIMEOUT_MS 10000      /* to reach the node's real port */
#define PUMP_BUDGET     (4 * RELAY_CHUNK) /* bytes one event may move before others' turn */
#define RESTORE_RCVBUF  (1024 * 1024) /* a shrunk buffer's size after, when rcvbuf is 0 */

/* A direction that carries bulk moves it with splice(2) through a pipe of
 * its own, so its bytes never enter user space.  make bench, in one
 * alternating run on 2 cores: Erlang bulk through a minimal splice relay
 * 1132 MiB/s against 902 through the same relay with read/write and 1 MiB
 * chunks, at half the CPU per GiB (0.27 s against 0.51 s); raw one-way
 * bulk about the same either way.  A pipe costs two fds and a share of
 * the user's pipe quota for the link's life, so a direction gets one
 * only once one event moves SPLICE_AFTER bytes (ticks and RPCs never do),
 * and only while nothing needs to see its bytes (dir_can_splice).  Bytes
 * in the pipe are pending bytes like those in buf, older than them, and
 * held like them.  --no-splice turns it off. */
#define SPLICE_AFTER    (64 * 1024)
#define PIPE_SIZE       (1024 * 1024)
#define PIPE_MIN        (256 * 1024)  /* a smaller pipe (over the user's quota): read and write */
#define TRIM_MIN        (256 * 1024)  /* freeing a buffer this big asks for a malloc_trim... */
#define TRIM_AFTER_MS   1000          /* ...this long after (one for a whole burst) */

enum link_state {
    LINK_NAME,          /* reading the initiator's first frame (deadline: NAME_TIMEOUT_MS) */
    LINK_PENDING,       /* name known, blocked towards the node: held before connecting */
    LINK_CONNECTING,    /* connecting to the node's real port (deadline: CONNECT_TIMEOUT_MS) */
    LINK_HANDSHAKE,     /* relaying, the node has not sent its 'a' yet */
    LINK_UP,            /* handshake done */
};

/* A link's two sockets, and its two directions named after their source. */
enum side { INI = 0, NODE = 1 };        /* fd[INI]: the initiator; fd[NODE]: the node's port */
enum dir { OUT = 0, IN = 1 };           /* OUT: initiator -> node; IN: node -> initiator */

static enum side dir_src(enum dir d) { return d == OUT ? INI : NODE; }
static enum side dir_sink(enum dir d) { return d == OUT ? NODE : INI; }
static enum dir dir_from(enum side s) { return s == INI ? OUT : IN; }
static enum dir dir_into(enum side s) { return s == INI ? IN : OUT; }
static enum dir dir_other(enum dir d) { return d == OUT ? IN : OUT; }

/* One direction: bytes read from its source side, written to its sink side.
 * Two small state machines per direction: its lifecycle (`st`: is the
 * source still there, can the sink still be written) and its hold state
 * (`hs`, below: may bytes move now).  A *blocked* direction (HELD,
 * STALLED, RELEASING) writes nothing to its sink; its source is read only
 * as the hold state says, and a hang-up of the source is still noticed
 * (POLLRDHUP).
 *
 *   OPEN      --source gives EOF or an error---------------------> DRAINING
 *   OPEN      --source hung up, noticed without reading ----------> HUNG
 *   HUNG      (once not blocked it is read again: what the kernel kept, then EOF -> DRAINING)
 *   DRAINING  --nothing pending and not blocked: SHUT_WR the sink-> DONE
 *   OPEN      --sink failed: pending bytes dropped---------------> SINK_DEAD
 *   HUNG, DRAINING --sink failed------------------------------------> DONE
 *   SINK_DEAD --source ended or hung up----------------------------> DONE
 *
 * Invariants, restored by link_settle after every event:
 *  - DRAINING, nothing pending and not blocked => DONE: an EOF waits only
 *    behind data or a block, never for anything else.
 *  - only OPEN, HUNG and DRAINING hold pending bytes.
 *  - a direction is *finished* when it is DONE; or blocked with its source
 *    gone (HUNG, DRAINING): what it holds has no one left to follow it; or
 *    SINK_DEAD while the other direction, which would carry the sink's
 *    reset back, is not blocked.
 *  - both directions finished => the link closes.  So a link closes once
 *    both nodes have closed, whatever is held (a peer that half-closed and
 *    still reads behind a hold loses what was held for it: Erlang nodes
 *    never half-close).
 */
enum dir_state { DIR_OPEN, DIR_HUNG, DIR_DRAINING, DIR_SINK_DEAD, DIR_DONE };

/* The hold state of a direction: what a path that drops packets lets
 * through (doc/hold-model.md).  Driven by the rules and the mode
 * (link_eval) and by the direction's timer.
 *
 *   FLOW      --a rule blocks it---------------------------------> HELD
 *   FLOW      --MODE hold, the reverse direction blocked---------> GRACE
 *   GRACE     --grace_ms after its first byte, or grace_bytes----> STALLED
 *   GRACE     --the reverse block lifts--------------------------> FLOW
 *   HELD, STALLED --the block lifts, nothing was lost-------------> FLOW
 *   HELD, STALLED --the block lifts, a byte was lost (MODE hold)--> RELEASING
 *   HELD, STALLED, RELEASING --the block lifts (MODE freeze)------> FLOW
 *   RELEASING --the timer: the next virtual retransmission-------> FLOW
 *   GRACE, STALLED, RELEASING --a rule blocks it------------------> HELD
 *   HELD      --only the reverse is blocked now-------------------> STALLED (GRACE if nothing lost)
 *
 * Invariants:
 *  - nothing is written to the sink unless hs is FLOW or GRACE;
 *  - the source is read in FLOW and GRACE (GRACE: at most grace_bytes in
 *    all); in HELD and STALLED under MODE hold only until the first byte
 *    is seen, and then while fewer than held_bytes are pending; in
 *    RELEASING and under MODE freeze never;
 *  - timer != NULL exactly in RELEASING (the release), and in GRACE once
 *    its first byte went (the stall);
 *  - t_first is -1 (nothing lost yet) or the time the first byte that had
 *    to wait arrived (for an attempt in LINK_PENDING: its start); it
 *    survives RELEASING -> HELD and HELD <-> STALLED (TCP's backoff goes
 *    on from the first loss); FLOW forgets it;
 *  - MODE freeze knows only FLOW and HELD.
 */
enum hold_state { HS_FLOW, HS_GRACE, HS_HELD, HS_STALLED, HS_RELEASING };

static const char *hs_name[] = { "flow", "flow", "held", "stalled", "releasing" };

typedef struct half {
    enum dir_state st;
    enum hold_state hs;
    long long t_block;          /* when the current block (or grace) began */
    long long t_first;          /* first byte that had to wait; -1: none */
    long long t_lift;           /* when the block lifted (RELEASING) */
    size_t grace_bytes;         /* GRACE: bytes let through since t_block */
    loop_timer *timer;          /* RELEASING: the release; GRACE: the stall */
    int shrunk;                 /* the source socket's SO_RCVBUF is held_rcvbuf (dir_shape) */
    uint8_t *buf;               /* the pending bytes, allocated only while there are some */
    size_t off, len, cap;       /* pending: buf[off..len); buf holds cap */
    int piped;                  /* 1: pfd is this direction's pipe; -1: none can be had */
    int pfd[2];                 /* ... its read and write ends */
    size_t inpipe;              /* pending bytes in the pipe, before those in buf */
    size_t pcap;                /* what the pipe holds at most */
    uint64_t bytes;             /* relayed so far */
    /* link faults (faults.h): what DELAY, RATE, SLICE, SLOWCLOSE do to this
     * direction.  While the shaper is active every byte read goes through
     * its delay line, behind whatever is pending; it writes only when
     * nothing is pending and the direction is not blocked, so faults and
     * blocks compose and the order of bytes is kept. */
    shaper sh;
    loop_timer *sh_timer;       /* the delay line's next release, or a SLOWCLOSE EOF */
    long long eof_ms;           /* when the source ended (SLOWCLOSE counts from it); 0 */
} half;

/* May nothing be written to the sink now? */
static int dir_blocked(const half *h)
{
    return h->hs == HS_HELD || h->hs == HS_STALLED || h->hs == HS_RELEASING;
}

/* What a link carries: Erlang distribution (accepted on a node's proxy
 * listener, names from the handshake) or an app connection between two
 * members under the LD_PRELOAD shim (app.c: names known at accept, no
 * handshake to sniff, the real destination given). */
enum link_kind { KIND_DIST, KIND_APP };

typedef struct plink {
    struct plink *prev, *next;
    proxy *px;
    unsigned long id;
    int fd[2];                  /* by enum side */
    half h[2];                  /* by enum dir */
    enum link_state state;
    loop_timer *deadline;       /* LINK_NAME, LINK_CONNECTING; LINK_PENDING in MODE hold: the
                                 * attempt's last SYN retry, when it fails if still blocked */
    int gave_up;                /* LINK_PENDING: the block lifted after the last SYN retry */
    int names_changed;          /* the node's handshake named someone new: apply the rules */
    int target_port;            /* the node's own port */
    char target_addr[64];       /* ... on this host address (EPMDPORT name addr); "": loopback */
    char target[EPMD_MAXSYMLEN + 1];       /* its registered (alive) name */
    char from[SNIFF_MAX_NAME + 1];
    char to[SNIFF_MAX_NAME + 1];
    const char *closed_by;      /* whose socket ended first: "initiator", "node" */
    sniff_stream ss;            /* the node's handshake frames */
    long long since_ms;
    enum link_kind kind;
    struct sockaddr_storage dest;   /* KIND_APP: where the member connected to */
    socklen_t destlen;
    fault_params reset;         /* RESET AFTER that applies to the link (either way) */
    long long reset_from_ms;    /* ... counted from here */
    uint64_t reset_base;        /* ... and from this many bytes relayed */
    loop_timer *reset_timer;    /* RESET AFTER a duration */
} plink;

struct proxy {
    epx *x;
    plink *links;               /* newest first */
    int nlinks;
    unsigned long next_id;
    loop_timer *trim;           /* malloc_trim soon: big buffers were freed */
};

static void link_event(void *ctx, int fd, short rev);
static void dir_unpipe(plink *l, half *h);
static const char *side_name[2] = { "initiator", "node" };

proxy *proxy_new(epx *x)
{
    proxy *p = calloc(1, sizeof *p);
    if (p)
        p->x = x;
    return p;
}

static void trim_soon(proxy *p);

/* Close both sockets and free l; rst != 0 makes both peers see a reset. */
static void link_close(plink *l, const char *by, const char *why, int rst)
{
    proxy *p = l->px;
    epx *x = p->x;
    if (l->state != LINK_NAME || l->from[0]) {
        log_msg(LOG_INFO, "link %lu %s -> %s closed by %s: %s (%llu bytes out, %llu in)", l->id,
                l->from[0] ? l->from : "?", l->to, by, why, (unsigned long long)l->h[OUT].bytes,
                (unsigned long long)l->h[IN].bytes);
        events_add(&x->ev, loop_now_ms(), "link_closed",
                   "\"link\":%lu,\"from\":%s,\"to\":%s,\"by\":\"%s\",\"reason\":%s,"
                   "\"bytes_out\":%llu,\"bytes_in\":%llu",
                   l->id, events_q(l->from), events_q(l->to), by, events_q(why),
                   (unsigned long long)l->h[OUT].bytes, (unsigned long long)l->h[IN].bytes);
    } else {
        log_msg(LOG_DEBUG, "connection %lu to %s closed: %s", l->id, l->target, why);
    }
    loop_timer_del(x->loop, l->deadline);
    loop_timer_del(x->loop, l->reset_timer);
    for (int i = 0; i < 2; i++) {
        loop_timer_del(x->loop, l->h[i].timer);
        loop_timer_del(x->loop, l->h[i].sh_timer);
        shaper_free(&l->h[i].sh);
        if (l->fd[i] >= 0) {
            loop_del(x->loop, l->fd[i]);
            if (rst)
                sock_close_rst(l->fd[i]);
            else
                close(l->fd[i]);
        }
        free(l->h[i].buf);
        dir_unpipe(l, &l->h[i]);
    }
    if (l->prev)
        l->prev->next = l->next;
    else
        p->links = l->next;
    if (l->next)
        l->next->prev = l->prev;
    p->nlinks--;
    free(l);
    trim_soon(p);
}

/* ---- deadlines ---------------------------------------------------------- */

static void link_deadline_fired(void *ctx)
{
    plink *l = ctx;
    l->deadline = NULL;   /* the loop already freed it */
    if (l->state == LINK_PENDING) {
        /* as connect() times out after its last SYN: the initiator sees a reset */
        link_close(l, "daemon", "connection attempt timed out (SYN retries spent)", 1);
        return;
    }
    link_close(l, "daemon",
               l->state == LINK_NAME ? "no handshake name in time" : "node did not accept in time",
               0);
}

/* Replace l's deadline with one ms from now (0: none).  -1 if no timer
 * could be made (the caller closes the link: it must not live unbounded). */
static int link_deadline(plink *l, int ms)
{
    loop *lp = l->px->x->loop;
    loop_timer_del(lp, l->deadline);
    l->deadline = NULL;
    if (ms && !(l->deadline = loop_timer_in(lp, ms, link_deadline_fired, l)))
        return -1;
    return 0;
}

/* ---- one direction ------------------------------------------------------ */

static size_t dir_pending(const half *h)
{
    return h->inpipe + (h->len - h->off);
}

/* Close d's pipe, if it has one; what it held is dropped. */
static void dir_unpipe(plink *l, half *h)
{
    if (h->piped == 1) {
        close(h->pfd[0]);
        close(h->pfd[1]);
        l->px->x->fds_outside_loop -= 2;
        h->piped = 0;
    }
    h->inpipe = 0;
}

static void dir_shape_timer(plink *l, enum dir d, long long when_ms);

/* Read from the source now?  FLOW and GRACE: when the sink took what was
 * read before; HELD and STALLED (MODE hold): to see the first byte that
 * has to wait, then up to held_bytes (dir_take_held). */
static int dir_reads(const plink *l, enum dir d)
{
    const half *h = &l->h[d];
    switch (h->hs) {
    case HS_FLOW:
    case HS_GRACE:
        return (h->st == DIR_OPEN || h->st == DIR_HUNG) && !dir_pending(h) &&
               (!shaper_active(&h->sh) || shaper_room(&h->sh) > 0);
    case HS_HELD:
    case HS_STALLED:
        /* bytes in a delay line are older than any read now: none is
         * taken past them into the pending buffer */
        return h->st == DIR_OPEN && l->px->x->mode == EPXD_MODE_HOLD &&
               !shaper_held(&h->sh) &&
               (h->t_first < 0 || dir_pending(h) < l->px->x->hold.held_bytes);
    default:
        return 0;
    }
}

/* Not read, but its source's hang-up still matters. */
static int dir_watches(const plink *l, enum dir d)
{
    const half *h = &l->h[d];
    return !dir_reads(l, d) && ((h->st == DIR_OPEN && dir_blocked(h)) || h->st == DIR_SINK_DEAD);
}

static int dir_finished(const plink *l, enum dir d)
{
    const half *h = &l->h[d];
    return h->st == DIR_DONE ||
           (dir_blocked(h) && (h->st == DIR_HUNG || h->st == DIR_DRAINING)) ||
           (h->st == DIR_SINK_DEAD && !dir_blocked(&l->h[dir_other(d)]));
}

/* A byte (or a FIN) has to wait behind a block: the lost segment that
 * TCP's retransmissions count from. */
static void dir_note_first(half *h)
{
    if (h->t_first < 0)
        h->t_first = loop_now_ms();
}

static void note_closed_by(plink *l, enum side s)
{
    if (!l->closed_by)
        l->closed_by = side_name[s];
}

/* glibc keeps what a burst freed (the mmap threshold grows with the
 * buffers it sees): once things are quiet, hand it back to the system. */
static void trim_fired(void *ctx)
{
    proxy *p = ctx;
    p->trim = NULL;
    malloc_trim(0);
}

static void trim_soon(proxy *p)
{
    if (!p->trim)
        p->trim = loop_timer_in(p->x->loop, TRIM_AFTER_MS, trim_fired, p);
}

static void dir_drop_buf(plink *l, half *h)
{
    if (h->cap >= TRIM_MIN)
        trim_soon(l->px);
    free(h->buf);   /* an idle direction holds no buffer */
    h->buf = NULL;
    h->off = h->len = h->cap = 0;
}

/* Every pending byte is dropped, the pipe's too. */
static void dir_drop(plink *l, half *h)
{
    dir_drop_buf(l, h);
    dir_unpipe(l, h);
}

/* Transition: the source gave EOF or an error. */
static void dir_src_ended(plink *l, enum dir d)
{
    half *h = &l->h[d];
    note_closed_by(l, dir_src(d));
    if (h->st == DIR_OPEN || h->st == DIR_HUNG) {
        h->st = DIR_DRAINING;
        h->eof_ms = loop_now_ms();
    }
    else if (h->st == DIR_SINK_DEAD)
        h->st = DIR_DONE;
}

/* Transition: the source hung up, seen without reading it (held, or the
 * sink is dead). */
static void dir_src_hung(plink *l, enum dir d)
{
    half *h = &l->h[d];
    enum side s = dir_src(d);
    note_closed_by(l, s);
    if (h->st == DIR_SINK_DEAD) {
        h->st = DIR_DONE;
    } else if (h->st == DIR_OPEN) {
        h->st = DIR_HUNG;
        if (h->hs == HS_HELD || h->hs == HS_STALLED)
            dir_note_first(h);   /* the FIN is lost like data */
        log_msg(LOG_INFO, "link %lu: %s closed while held", l->id, side_name[s]);
        events_add(&l->px->x->ev, loop_now_ms(), "link_peer_closed",
                   "\"link\":%lu,\"from\":%s,\"to\":%s,\"side\":\"%s\",\"held\":true", l->id,
                   events_q(l->from), events_q(l->to), side_name[s]);
    }
}

/* Transition: the sink cannot be written any more; what was pending for
 * it is dropped. */
static void dir_sink_failed(plink *l, enum dir d)
{
    half *h = &l->h[d];
    dir_drop(l, h);
    fault_params p = h->sh.p;
    shaper_free(&h->sh);   /* what the delay line held goes with the sink */
    shaper_init(&h->sh, h->sh.rng);
    h->sh.p = p;
    if (h->st == DIR_OPEN)
        h->st = DIR_SINK_DEAD;
    else if (h->st == DIR_HUNG || h->st == DIR_DRAINING)
        h->st = DIR_DONE;
}

/* Transition: an EOF waiting behind data or a hold goes out once neither
 * is left (the invariant's first line). */
static void dir_settle(plink *l, enum dir d)
{
    half *h = &l->h[d];
    if (h->buf && h->len == h->off)
        dir_drop_buf(l, h);
    if (h->st == DIR_DRAINING && !dir_blocked(h) && !dir_pending(h) && !shaper_held(&h->sh)) {
        long long at = shaper_close_at(&h->sh, h->eof_ms), now = loop_now_ms();
        if (at > now) {
            dir_shape_timer(l, d, at);   /* SLOWCLOSE: the EOF goes on later */
            return;
        }
        shutdown(l->fd[dir_sink(d)], SHUT_WR);
        h->st = DIR_DONE;
    }
}

/* A socket failed (read or write error, e.g. a reset): nothing more comes
 * from it and nothing more can go to it. */
static void side_failed(plink *l, enum side s, const char *what, int err)
{
    log_msg(LOG_DEBUG, "link %lu: %s on %s: %s", l->id, what, side_name[s], strerror(err));
    dir_sink_failed(l, dir_into(s));
    dir_src_ended(l, dir_from(s));
}

/* Keep n bytes as d's pending bytes (there are none yet).  0, or -1 if
 * out of memory (then the sink is given up: the bytes cannot be kept). */
static int dir_keep(plink *l, enum dir d, const uint8_t *p, size_t n)
{
    half *h = &l->h[d];
    free(h->buf);   /* none pending: whatever it held is spent; sized anew */
    if (!(h->buf = malloc(n ? n : 1))) {
        log_msg(LOG_ERR, "link %lu: out of memory: dropping the link", l->id);
        side_failed(l, dir_sink(d), "keeping bytes", ENOMEM);
        return -1;
    }
    memmove(h->buf, p, n);
    h->off = 0;
    h->len = h->cap = n;
    return 0;
}

/* ---- link faults: the shaper between source and sink ------------------- */

static void dir_shape_fired(plink *l, enum dir d);
static void dir_flush(plink *l, enum dir d);
static int link_settle(plink *l);
static void dir_shape_out_cb(void *ctx) { dir_shape_fired(ctx, OUT); }
static void dir_shape_in_cb(void *ctx) { dir_shape_fired(ctx, IN); }

/* Replace d's shaper timer with one at when_ms.  Without a timer (out of
 * memory) the bytes would wait for ever: the sink is given up instead. */
static void dir_shape_timer(plink *l, enum dir d, long long when_ms)
{
    loop *lp = l->px->x->loop;
    half *h = &l->h[d];
    loop_timer_del(lp, h->sh_timer);
    h->sh_timer = loop_timer_at(lp, when_ms, d == OUT ? dir_shape_out_cb : dir_shape_in_cb, l);
    if (!h->sh_timer)
        side_failed(l, dir_sink(d), "shaper timer", ENOMEM);
}

/* Put n bytes to d's sink: from p, or (p NULL) from d's pipe.  How many
 * the sink took, counted in d's bytes (0 when it is full), or -1 when it
 * failed (side_failed was called).  n > 0. */
static ssize_t dir_put(plink *l, enum dir d, const void *p, size_t n)
{
    half *h = &l->h[d];
    int fd = l->fd[dir_sink(d)];
    for (;;) {
        ssize_t k = p ? send(fd, p, n, MSG_NOSIGNAL)
                      : splice(h->pfd[0], NULL, fd, NULL, n, SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
        if (k > 0) {
            h->bytes += (uint64_t)k;
            return k;
        }
        if (k < 0 && errno == EINTR)
            continue;
        if (k < 0 && errno == EAGAIN)
            return 0;
        side_failed(l, dir_sink(d), "write", k < 0 ? errno : EPIPE);
        return -1;
    }
}

/* Write what the delay line releases now (nothing pending, not blocked).
 * What the sink does not take becomes d's pending bytes (it is due: the
 * sink's room, not the shaper, holds it now); when nothing is due yet the
 * timer is set for the next release. */
static void dir_shape_out(plink *l, enum dir d)
{
    half *h = &l->h[d];
    long long now = loop_now_ms();
    const uint8_t *p;
    size_t n;
    while (!dir_pending(h) && (n = shaper_ready(&h->sh, now, &p)) > 0) {
        ssize_t k = dir_put(l, d, p, n);
        if (k < 0)
            return;
        if ((size_t)k < n) {
            if (dir_keep(l, d, p + k, n - (size_t)k) < 0)
                return;
            shaper_sent(&h->sh, n, now);
            break;
        }
        shaper_sent(&h->sh, n, now);
    }
    long long next = shaper_next_ms(&h->sh, now);
    if (next >= 0 && !dir_pending(h))
        dir_shape_timer(l, d, next > now ? next : now + 1);
}

/* d's shaper timer: release what is due (or pass on a SLOWCLOSE EOF). */
static void dir_shape_fired(plink *l, enum dir d)
{
    l->h[d].sh_timer = NULL;   /* the loop freed it */
    if (l->state != LINK_HANDSHAKE && l->state != LINK_UP)
        return;
    dir_flush(l, d);
    link_settle(l);
}

/* Take n bytes that d read into its delay line (there is room: the read
 * was sized by shaper_room).  -1 if out of memory (the sink is given up). */
static int dir_shape_in(plink *l, enum dir d, const uint8_t *p, size_t n)
{
    if (shaper_accept(&l->h[d].sh, p, n, loop_now_ms()) < 0) {
        log_msg(LOG_ERR, "link %lu: out of memory for delayed bytes: dropping the link", l->id);
        side_failed(l, dir_sink(d), "delaying bytes", ENOMEM);
        return -1;
    }
    return 0;
}

static void link_reset_fired(void *ctx);

/* The faults changed (or the names did): give each direction its own and
 * the link its RESET AFTER. */
static void link_apply_faults(plink *l)
{
    epx *x = l->px->x;
    long long now = loop_now_ms();
    fault_params fp[2];
    faults_lookup(&x->faults, l->from, l->to, &fp[OUT]);
    faults_lookup(&x->faults, l->to, l->from, &fp[IN]);
    for (int d = OUT; d <= IN; d++) {
        half *h = &l->h[d];
        if (!h->sh.rng)
            h->sh.rng = l->id * 2 + (unsigned long)d + 1;   /* jitter: its own draws */
        shaper_set(&h->sh, &fp[d], now);
    }
    unsigned had = l->reset.set & FAULT_BIT(FAULT_RESET);
    l->reset = (fp[OUT].set & FAULT_BIT(FAULT_RESET)) ? fp[OUT] : fp[IN];
    if (!(l->reset.set & FAULT_BIT(FAULT_RESET))) {
        loop_timer_del(x->loop, l->reset_timer);
        l->reset_timer = NULL;
        return;
    }
    if (!had) {   /* counted from now: a live link is reset "once that much has passed" */
        l->reset_from_ms = now;
        l->reset_base = l->h[OUT].bytes + l->h[IN].bytes;
    }
    if (l->reset.reset_ms && !l->reset_timer)
        l->reset_timer = loop_timer_at(x->loop, l->reset_from_ms + l->reset.reset_ms,
                                       link_reset_fired, l);
}

/* RESET AFTER: has the link run its course?  Then reset it (both peers see
 * a reset), spend the fault and say so.  -1 if l was closed (freed). */
static int link_reset_check(plink *l, int timer)
{
    uint64_t bytes = l->h[OUT].bytes + l->h[IN].bytes;
    if (!timer &&
        !faults_reset_due(&l->reset, bytes - l->reset_base, loop_now_ms() - l->reset_from_ms))
        return 0;
    epx *x = l->px->x;
    events_add(&x->ev, loop_now_ms(), "fault_reset",
               "\"link\":%lu,\"from\":%s,\"to\":%s,\"bytes\":%llu", l->id, events_q(l->from),
               events_q(l->to), (unsigned long long)bytes);
    faults_spend_reset(&x->faults, l->from, l->to);
    faults_spend_reset(&x->faults, l->to, l->from);
    link_close(l, "daemon", "RESET AFTER (link fault)", 1);
    return -1;
}

static void link_reset_fired(void *ctx)
{
    plink *l = ctx;
    l->reset_timer = NULL;
    link_reset_check(l, 1);
}

/* Move what d's pipe holds to its sink.  1 when the pipe is empty, 0 when
 * the sink is full, -1 when it failed (side_failed was called). */
static int dir_unpipe_to(plink *l, enum dir d)
{
    half *h = &l->h[d];
    while (h->inpipe) {
        ssize_t w = dir_put(l, d, NULL, h->inpipe);
        if (w <= 0)
            return (int)w;
        h->inpipe -= (size_t)w;
    }
    return 1;
}

/* Write what d holds to its sink, unless held: the pending bytes, then
 * what the delay line releases now.  A write error fails the sink's side. */
static void dir_flush(plink *l, enum dir d)
{
    half *h = &l->h[d];
    if (!dir_blocked(h) && h->inpipe && dir_unpipe_to(l, d) <= 0)
        return;   /* the sink is full, or failed */
    while (!dir_blocked(h) && h->len > h->off) {
        ssize_t k = dir_put(l, d, h->buf + h->off, h->len - h->off);
        if (k <= 0)
            return;   /* the sink is full, or failed */
        h->off += (size_t)k;
    }
    if (!dir_blocked(h) && shaper_held(&h->sh))
        dir_shape_out(l, d);
}

/* ---- the handshake ------------------------------------------------------ */

/* The node's handshake frames tell who it is, what the initiator is called
 * (NAME_ME) and when the link is up.  Returns 1 if a name changed. */
static int sniff_acceptor(plink *l, const uint8_t *p, size_t n)
{
    epx *x = l->px->x;
    int changed = 0;
    if (l->ss.done)
        return 0;
    sniff_feed(&l->ss, p, n);
    if (l->ss.peer_name[0] && strcmp(l->to, l->ss.peer_name) != 0) {
        snprintf(l->to, sizeof l->to, "%s", l->ss.peer_name);
        reg_node *rn = registry_find(&x->reg, (const uint8_t *)l->target, strlen(l->target));
        if (rn && rn->port == l->target_port)
            snprintf(rn->full, sizeof rn->full, "%s", l->ss.peer_name);
        changed = 1;
    }
    if (l->ss.assigned[0] && strcmp(l->from, l->ss.assigned) != 0) {
        snprintf(l->from, sizeof l->from, "%s", l->ss.assigned);
        changed = 1;
    }
    if (l->ss.acked) {
        l->state = LINK_UP;
        log_msg(LOG_INFO, "link %lu %s -> %s up", l->id, l->from, l->to);
        events_add(&x->ev, loop_now_ms(), "link_up", "\"link\":%lu,\"from\":%s,\"to\":%s",
                   l->id, events_q(l->from), events_q(l->to));
    } else if (l->ss.done < 0) {
        log_msg(LOG_ERR, "link %lu: node %s speaks no handshake we know (%s); relaying blind",
                l->id, l->to, l->ss.why);
    }
    return changed;
}

/* ---- the hold state ----------------------------------------------------- */

static void link_update(plink *l);
static int link_settle(plink *l);
static int start_connect(plink *l);
static void dir_timer_out(void *ctx);
static void dir_timer_in(void *ctx);

/* Bytes the kernel holds unread on fd (0 if it cannot say). */
static int fd_unread(int fd)
{
    int n = 0;
    if (fd < 0 || ioctl(fd, FIONREAD, &n) < 0)
        return 0;
    return n;
}

/* Replace d's timer with one at when_ms.  -1 if none could be made (out
 * of memory: the caller lets the bytes go rather than hold them for ever). */
static int dir_timer(plink *l, enum dir d, long long when_ms)
{
    loop *lp = l->px->x->loop;
    half *h = &l->h[d];
    loop_timer_del(lp, h->timer);
    h->timer = loop_timer_at(lp, when_ms, d == OUT ? dir_timer_out : dir_timer_in, l);
    return h->timer ? 0 : -1;
}

static void dir_timer_clear(plink *l, enum dir d)
{
    loop_timer_del(l->px->x->loop, l->h[d].timer);
    l->h[d].timer = NULL;
}

/* Transition to FLOW; a release (from a blocked state) is logged with how
 * long the direction was held and how long it waited after the block lifted.
 * The caller flushes what waited (or, in LINK_PENDING, connects). */
static void dir_flow(plink *l, enum dir d)
{
    half *h = &l->h[d];
    if (dir_blocked(h)) {
        epx *x = l->px->x;
        long long now = loop_now_ms();
        long long wait = h->hs == HS_RELEASING ? now - h->t_lift : 0;
        const char *from = d == OUT ? l->from : l->to, *to = d == OUT ? l->to : l->from;
        log_msg(LOG_INFO, "link %lu: %s -> %s released after %lld ms (%lld ms after the block "
                "lifted)", l->id, from, to, now - h->t_block, wait);
        events_add(&x->ev, now, "release",
                   "\"link\":%lu,\"from\":%s,\"to\":%s,\"held_ms\":%lld,\"wait_ms\":%lld,"
                   "\"lost\":%s",
                   l->id, events_q(from), events_q(to), now - h->t_block, wait,
                   h->t_first >= 0 ? "true" : "false");
    }
    dir_timer_clear(l, d);
    h->hs = HS_FLOW;
    h->t_first = -1;
}

/* Transition: a rule blocks d.  From FLOW (or a GRACE that lost nothing
 * yet) the block begins now, and a byte already waiting is the first lost;
 * an attempt in LINK_PENDING lost its first SYN when it began.  From
 * STALLED and RELEASING the backoff goes on from the first loss. */
static void dir_block(plink *l, enum dir d)
{
    half *h = &l->h[d];
    if (h->hs == HS_HELD)
        return;
    if (h->hs == HS_FLOW || (h->hs == HS_GRACE && h->t_first < 0)) {
        h->t_block = loop_now_ms();
        h->t_first = -1;
        if (l->state == LINK_PENDING)
            h->t_first = l->since_ms;
        else if (dir_pending(h) || shaper_held(&h->sh) || fd_unread(l->fd[dir_src(d)]) > 0)
            h->t_first = h->t_block;
    }
    dir_timer_clear(l, d);
    h->hs = HS_HELD;
}

/* Transition (MODE hold): the reverse of d is blocked, d is not.  d's ACKs
 * are lost: it flows for a grace, then stalls. */
static void dir_arm(plink *l, enum dir d)
{
    half *h = &l->h[d];
    if (h->hs == HS_GRACE || h->hs == HS_STALLED)
        return;
    dir_timer_clear(l, d);
    if (h->t_first >= 0 && h->hs != HS_FLOW) {
        h->hs = HS_STALLED;   /* HELD, RELEASING: a byte was lost already */
        return;
    }
    h->hs = HS_GRACE;         /* nothing lost: it may flow for a grace */
    h->t_block = loop_now_ms();
    h->t_first = -1;
    h->grace_bytes = 0;
}

/* The receive buffer of d's source socket under MODE hold with
 * held_rcvbuf: shrunk while d is HELD or STALLED, so that the source's
 * kernel is no longer acknowledged for what it sends into the cut (its
 * send buffer does not grow behind our window: it fills as on a lossy
 * path, and busy_dist_port comes when it would), restored the moment the
 * block lifts (the path is back; the source's own retransmission then
 * delivers what was dropped, to wait here for d's release). */
static void dir_shape(plink *l, enum dir d)
{
    half *h = &l->h[d];
    const hold_params *hp = &l->px->x->hold;
    int fd = l->fd[dir_src(d)];
    int want = (h->hs == HS_HELD || h->hs == HS_STALLED) && hp->held_rcvbuf > 0 &&
               l->px->x->mode == EPXD_MODE_HOLD &&
               (l->state == LINK_HANDSHAKE || l->state == LINK_UP);
    if (fd < 0 || want == h->shrunk)
        return;
    int v = want ? hp->held_rcvbuf : hp->rcvbuf > 0 ? hp->rcvbuf : RESTORE_RCVBUF;
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &v, sizeof v);
    h->shrunk = want;
}

/* Transition: GRACE -> STALLED (its window is full of unacknowledged bytes). */
static void dir_stall(plink *l, enum dir d)
{
    half *h = &l->h[d];
    dir_timer_clear(l, d);
    dir_note_first(h);
    h->hs = HS_STALLED;
    dir_shape(l, d);
    log_msg(LOG_DEBUG, "link %lu: %s stalled after %zu bytes of grace", l->id,
            d == OUT ? "out" : "in", h->grace_bytes);
}

/* Transition: no rule blocks d, nor its reverse (or the mode is not hold).
 * What lost nothing flows at once; what lost a byte waits for its next
 * virtual retransmission (an attempt in LINK_PENDING: its next SYN retry;
 * none left: l->gave_up).  MODE freeze and reset let everything go now. */
static void dir_unblock(plink *l, enum dir d)
{
    half *h = &l->h[d];
    epx *x = l->px->x;
    long long now = loop_now_ms(), next;
    switch (h->hs) {
    case HS_FLOW:
        return;
    case HS_GRACE:
        dir_flow(l, d);
        return;
    case HS_RELEASING:
        if (x->mode != EPXD_MODE_HOLD)
            dir_flow(l, d);
        return;
    case HS_HELD:
    case HS_STALLED:
        break;
    }
    if (x->mode != EPXD_MODE_HOLD || h->t_first < 0) {
        dir_flow(l, d);
        return;
    }
    next = l->state == LINK_PENDING ? hold_next_syn(&x->hold, h->t_first, now)
                                    : hold_next_retx(&x->hold, h->t_first, now);
    if (next < 0) {
        l->gave_up = 1;
        return;
    }
    h->t_lift = now;
    h->hs = HS_RELEASING;
    if (next <= now || dir_timer(l, d, next) < 0)
        dir_flow(l, d);
}

/* d's timer fired: in RELEASING the release (deliver what waited, then
 * read on; in LINK_PENDING connect), in GRACE the stall. */
static void dir_timer_fired(plink *l, enum dir d)
{
    half *h = &l->h[d];
    h->timer = NULL;   /* the loop freed it */
    if (h->hs == HS_GRACE) {
        dir_stall(l, d);
        link_update(l);
        return;
    }
    if (h->hs != HS_RELEASING)
        return;
    dir_flow(l, d);
    if (l->state == LINK_PENDING) {
        link_deadline(l, 0);
        start_connect(l);
        return;
    }
    if (l->state == LINK_HANDSHAKE || l->state == LINK_UP) {
        dir_flush(l, d);
        link_settle(l);
    }
}

static void dir_timer_out(void *ctx)
{
    dir_timer_fired(ctx, OUT);
}

static void dir_timer_in(void *ctx)
{
    dir_timer_fired(ctx, IN);
}

/* Bring each direction's hold state in line with the rules and the mode.
 * 1 if a rule blocks either direction. */
static int link_eval(plink *l)
{
    epx *x = l->px->x;
    rules *r = &x->rules;
    int blocked[2] = { rules_blocked(r, l->from, l->to), rules_blocked(r, l->to, l->from) };
    for (int d = OUT; d <= IN; d++) {
        if (blocked[d])
            dir_block(l, d);
        else if (x->mode == EPXD_MODE_HOLD && blocked[dir_other(d)] && l->state != LINK_PENDING)
            dir_arm(l, d);
        else
            dir_unblock(l, d);
        dir_shape(l, d);
    }
    return blocked[OUT] || blocked[IN];
}

/* ---- relaying ----------------------------------------------------------- */

/* HELD or STALLED in MODE hold, the source readable: bytes that must wait.
 * Note the first (the lost segment the retransmissions count from), then
 * take up to held_bytes of them into d's pending bytes (what a sender
 * could still hand to a lossy path); the rest stays in the kernel. */
static void dir_take_held(plink *l, enum dir d)
{
    half *h = &l->h[d];
    size_t limit = l->px->x->hold.held_bytes;
    int src = l->fd[dir_src(d)];
    dir_note_first(h);
    while (h->st == DIR_OPEN && dir_pending(h) < limit) {
        size_t want = limit - dir_pending(h);
        if (want > RELAY_CHUNK)
            want = RELAY_CHUNK;
        if (h->cap - h->len < want) {
            if (h->off) {
                memmove(h->buf, h->buf + h->off, h->len - h->off);
                h->len -= h->off;
                h->off = 0;
            }
            if (h->cap - h->len < want) {
                uint8_t *nb = realloc(h->buf, h->len + want);
                if (!nb)
                    return;   /* it stays in the kernel */
                h->buf = nb;
                h->cap = h->len + want;
            }
        }
        ssize_t k = read(src, h->buf + h->len, want);
        if (k < 0 && errno == EINTR)
            continue;
        if (k < 0 && errno == EAGAIN)
            return;
        if (k < 0) {
            side_failed(l, dir_src(d), "read", errno);
            return;
        }
        if (k == 0) {
            dir_src_ended(l, d);
            return;
        }
        if (d == IN && l->kind == KIND_DIST && sniff_acceptor(l, h->buf + h->len, (size_t)k))
            l->names_changed = 1;
        h->len += (size_t)k;
        if ((size_t)k < want)
            return;
    }
}

/* How many bytes d's pump may read now: a chunk, or what is left of a
 * one-way block's grace. */
static size_t dir_read_room(const plink *l, enum dir d)
{
    const half *h = &l->h[d];
    size_t room = RELAY_CHUNK, grace = l->px->x->hold.grace_bytes;
    if (h->hs == HS_GRACE && grace - h->grace_bytes < room)
        room = grace - h->grace_bytes;
    if (shaper_active(&h->sh) && shaper_room(&h->sh) < room)
        room = shaper_room(&h->sh);
    return room;
}

/* GRACE: k more bytes go through.  The first starts the grace's clock. */
static void dir_grace_used(plink *l, enum dir d, size_t k)
{
    half *h = &l->h[d];
    if (h->t_first < 0) {
        h->t_first = loop_now_ms();
        if (dir_timer(l, d, h->t_first + l->px->x->hold.grace_ms) < 0)
            h->grace_bytes = l->px->x->hold.grace_bytes;   /* no timer: stall after these */
    }
    h->grace_bytes += k;
}

/* What a read (or splice) of k bytes from d's source says: 1 bytes came;
 * -1 try again (EINTR); 0 stop: the source is empty (EAGAIN), ended (EOF:
 * d drains) or failed (side_failed). */
static int dir_read_result(plink *l, enum dir d, ssize_t k)
{
    if (k > 0)
        return 1;
    if (k < 0 && errno == EINTR)
        return -1;
    if (k < 0 && errno == EAGAIN)
        return 0;
    if (k < 0) {
        side_failed(l, dir_src(d), "read", errno);
        return 0;
    }
    log_msg(LOG_DEBUG, "link %lu: %s closed", l->id, side_name[dir_src(d)]);
    dir_src_ended(l, d);
    return 0;
}

/* May d move its bytes with splice now?  Only where no one needs to see
 * them: the link relays, the sniffer is done with d (it reads only the
 * node's handshake: the initiator's bytes after its first frame, and the
 * node's once acknowledged or found foreign), d flows freely and no fault
 * shapes it. */
static int dir_can_splice(const plink *l, enum dir d)
{
    const half *h = &l->h[d];
    return (l->state == LINK_UP ||
            (l->state == LINK_HANDSHAKE && (d == OUT || l->ss.done != 0))) &&
           h->hs == HS_FLOW && !shaper_active(&h->sh) && h->piped >= 0;
}

/* Give d its pipe (once).  0 if none can be had: then it goes on with
 * read and write, and does not ask again. */
static int dir_pipe(plink *l, enum dir d)
{
    half *h = &l->h[d];
    epx *x = l->px->x;
    if (h->piped)
        return h->piped > 0;
    if (x->cfg.no_splice || !epx_accept_ok(x)) {
        h->piped = -1;   /* --no-splice, or fds are short: ALIVE2 and links need them more */
        return 0;
    }
    if (pipe2(h->pfd, O_NONBLOCK | O_CLOEXEC) < 0) {
        log_msg(LOG_DEBUG, "link %lu: no pipe (%s): relaying with read and write", l->id,
                strerror(errno));
        h->piped = -1;
        return 0;
    }
    /* Unprivileged users have a quota of pipe pages (pipe-user-pages-soft):
     * past it a pipe stays small, and splicing a few KiB at a time would be
     * slower than read and write with RELAY_CHUNK. */
    h->piped = 1;
    x->fds_outside_loop += 2;
    (void)fcntl(h->pfd[1], F_SETPIPE_SZ, PIPE_SIZE);
    int sz = fcntl(h->pfd[1], F_GETPIPE_SZ);
    if (sz < PIPE_MIN) {
        log_msg(LOG_DEBUG, "link %lu: the pipe holds only %d bytes: relaying with read and write",
                l->id, sz);
        dir_unpipe(l, h);
        h->piped = -1;
        return 0;
    }
    h->pcap = (size_t)sz;
    return 1;
}

/* Splice cannot serve d (the kernel refuses it for these fds, or the
 * source has urgent data, which splice stops at and never passes): its
 * pipe, empty, goes, and d goes on with read and write for good. */
static void dir_splice_off(plink *l, enum dir d, const char *why)
{
    half *h = &l->h[d];
    log_msg(LOG_INFO, "link %lu: %s: relaying with read and write", l->id, why);
    dir_unpipe(l, h);
    h->piped = -1;
}

/* dir_pump for a direction with a pipe: source -> pipe -> sink, a pipe's
 * worth at a time, until the source is empty, the sink full (the rest
 * stays in the pipe, pending), or the budget spent. */
static void dir_pump_splice(plink *l, enum dir d, size_t budget)
{
    half *h = &l->h[d];
    int src = l->fd[dir_src(d)];
    while (budget > 0 && dir_reads(l, d) && dir_can_splice(l, d)) {
        /* the pipe is empty here: dir_reads wants nothing pending */
        ssize_t k = splice(src, NULL, h->pfd[1], NULL, h->pcap, SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
        if (k < 0 && (errno == EINVAL || errno == ENOSYS || errno == EOPNOTSUPP)) {
            dir_splice_off(l, d, strerror(errno));
            return;
        }
        int atmark = 0;
        if (k < 0 && errno == EAGAIN && ioctl(src, SIOCATMARK, &atmark) == 0 && atmark) {
            dir_splice_off(l, d, "urgent data");
            return;
        }
        int r = dir_read_result(l, d, k);
        if (r < 0)
            continue;
        if (r == 0)
            return;
        h->inpipe += (size_t)k;
        if (dir_unpipe_to(l, d) <= 0)
            return;   /* the sink is full: the rest is pending */
        /* a short splice does not mean the socket is empty (one pipe slot
         * per buffer of the socket): only EAGAIN says so */
        budget = budget > (size_t)k ? budget - (size_t)k : 0;
    }
}

/* Move bytes from d's source to its sink through one shared scratch
 * buffer; only what the sink does not take at once is kept, as d's pending
 * bytes.  Stops at EAGAIN, at a short read, when the sink is full, after a
 * budget (fairness), when a grace is used up, or when the node's handshake
 * named someone new (the rules may now hold d: the chunk that said so is
 * kept back if they do).  A held direction only takes what must wait. */
static void dir_pump(plink *l, enum dir d)
{
    static uint8_t scratch[RELAY_CHUNK];
    half *h = &l->h[d];
    int src = l->fd[dir_src(d)];
    if (h->hs == HS_HELD || h->hs == HS_STALLED) {
        if (dir_reads(l, d))
            dir_take_held(l, d);
        return;
    }
    if (h->piped > 0 && dir_can_splice(l, d)) {
        dir_pump_splice(l, d, PUMP_BUDGET);
        return;
    }
    for (size_t budget = PUMP_BUDGET; budget > 0 && dir_reads(l, d);) {
        size_t want = dir_read_room(l, d);
        if (!want) {
            dir_stall(l, d);   /* a grace of 0 bytes */
            return;
        }
        ssize_t k = read(src, scratch, want);
        int r = dir_read_result(l, d, k);
        if (r < 0)
            continue;
        if (r == 0)
            return;
        if (h->hs == HS_GRACE)
            dir_grace_used(l, d, (size_t)k);
        if (d == IN && l->kind == KIND_DIST && sniff_acceptor(l, scratch, (size_t)k)) {
            l->names_changed = 1;
            link_eval(l);
            if (dir_blocked(h)) {
                dir_note_first(h);
                if (shaper_active(&h->sh))
                    dir_shape_in(l, d, scratch, (size_t)k);
                else
                    dir_keep(l, d, scratch, (size_t)k);
                return;
            }
        }
        if (shaper_active(&h->sh)) {
            /* a faulty link: through the delay line, out when it says */
            if (dir_shape_in(l, d, scratch, (size_t)k) < 0)
                return;
            dir_flush(l, d);
            if (h->hs == HS_GRACE && h->grace_bytes >= l->px->x->hold.grace_bytes) {
                dir_stall(l, d);
                return;
            }
            if ((size_t)k < want || l->names_changed || dir_pending(h))
                return;
            budget = budget > (size_t)k ? budget - (size_t)k : 0;
            continue;
        }
        size_t sent = 0;
        while (sent < (size_t)k) {
            ssize_t w = dir_put(l, d, scratch + sent, (size_t)k - sent);
            if (w < 0)
                return;
            if (w == 0)
                break;
            sent += (size_t)w;
        }
        if (sent < (size_t)k) {
            /* the sink is full: keep the rest, read no more until it is gone */
            dir_keep(l, d, scratch + sent, (size_t)k - sent);
            return;
        }
        if (h->hs == HS_GRACE && h->grace_bytes >= l->px->x->hold.grace_bytes) {
            dir_stall(l, d);
            return;
        }
        if (l->names_changed)
            return;
        budget = budget > (size_t)k ? budget - (size_t)k : 0;
        if (PUMP_BUDGET - budget >= SPLICE_AFTER && dir_can_splice(l, d) && dir_pipe(l, d)) {
            /* bulk: from now on through the pipe */
            if ((size_t)k == want)
                dir_pump_splice(l, d, budget);
            return;
        }
        if ((size_t)k < want)
            return;   /* a short read: the socket is most likely empty */
    }
}

/* What fd[s] should be polled for, from the two directions that use it. */
static short side_events(const plink *l, enum side s)
{
    const half *into = &l->h[dir_into(s)];
    short ev = 0;
    if (dir_reads(l, dir_from(s)))
        ev |= POLLIN;
    else if (dir_watches(l, dir_from(s)))
        ev |= POLLRDHUP;
    if (!dir_blocked(into) && dir_pending(into))
        ev |= POLLOUT;
    return ev;
}

/* Poll each fd for what the link's state asks. */
static void link_update(plink *l)
{
    loop *lp = l->px->x->loop;
    short ev[2] = { 0, 0 };
    switch (l->state) {
    case LINK_NAME:
        ev[INI] = POLLIN;
        break;
    case LINK_PENDING:
        ev[INI] = POLLRDHUP;   /* not read: only notice the initiator giving up */
        break;
    case LINK_CONNECTING:
        ev[NODE] = POLLOUT;
        break;
    case LINK_HANDSHAKE:
    case LINK_UP:
        ev[INI] = side_events(l, INI);
        ev[NODE] = side_events(l, NODE);
        break;
    }
    for (int s = INI; s <= NODE; s++)
        if (l->fd[s] >= 0)
            loop_mod(lp, l->fd[s], ev[s]);
}

/* After an event on a relaying link: pass on EOFs that waited, close the
 * link once both directions are finished, else poll for what is next.
 * -1 if l was closed (freed). */
static int link_settle(plink *l)
{
    if ((l->reset.set & FAULT_BIT(FAULT_RESET)) && link_reset_check(l, 0) < 0)
        return -1;
    dir_settle(l, OUT);
    dir_settle(l, IN);
    if (!dir_finished(l, OUT) || !dir_finished(l, IN)) {
        link_update(l);
        return 0;
    }
    const char *why = "both sides closed";
    if (l->h[OUT].st == DIR_SINK_DEAD || l->h[IN].st == DIR_SINK_DEAD)
        why = "connection reset";
    else if (dir_blocked(&l->h[OUT]) || dir_blocked(&l->h[IN]))
        why = "both sides closed while held";
    link_close(l, l->closed_by ? l->closed_by : "daemon", why, 0);
    return -1;
}

/* ---- setting a link up -------------------------------------------------- */

/* Reach the node's real port.  -1 if l was closed (freed). */
static int start_connect(plink *l)
{
    const hold_params *hp = &l->px->x->hold;
    int fd = l->kind == KIND_APP
                 ? sock_connect_addr((struct sockaddr *)&l->dest, l->destlen, hp->rcvbuf, hp->mss)
             : l->target_addr[0]
                 ? sock_connect_host(l->target_addr, l->target_port, hp->rcvbuf, hp->mss)
                 : sock_connect_loopback(l->target_port, hp->rcvbuf, hp->mss);
    if (fd < 0) {
        log_msg(LOG_ERR, "link %lu: cannot connect to %s on port %d: %s", l->id, l->target,
                l->target_port, strerror(errno));
        link_close(l, "daemon", "node unreachable", 0);
        return -1;
    }
    if (loop_add(l->px->x->loop, fd, POLLOUT, link_event, l) < 0) {
        close(fd);
        link_close(l, "daemon", "out of memory", 0);
        return -1;
    }
    sock_nodelay(fd);
    l->fd[NODE] = fd;
    l->state = LINK_CONNECTING;
    if (link_deadline(l, CONNECT_TIMEOUT_MS) < 0) {
        link_close(l, "daemon", "out of memory", 0);
        return -1;
    }
    link_update(l);
    return 0;
}

/* In LINK_PENDING, after link_eval: connect once the attempt flows (at
 * once, or at the SYN retry that comes after the block lifted); under
 * MODE hold an attempt still blocked at its last SYN retry fails (the
 * deadline), and one whose block lifted after it fails now.  -1 if l was
 * closed (freed). */
static int link_pending_apply(plink *l)
{
    epx *x = l->px->x;
    half *h = &l->h[OUT];
    if (l->gave_up) {
        link_close(l, "daemon", "connection attempt timed out (SYN retries spent)", 1);
        return -1;
    }
    if (h->hs == HS_FLOW) {
        link_deadline(l, 0);
        return start_connect(l);
    }
    if (h->hs == HS_HELD && x->mode == EPXD_MODE_HOLD) {
        if (!l->deadline) {
            loop *lp = x->loop;
            l->deadline = loop_timer_at(lp, hold_syn_give_up(&x->hold, l->since_ms),
                                        link_deadline_fired, l);
        }
    } else {
        link_deadline(l, 0);   /* waiting for its SYN retry, or frozen */
    }
    link_update(l);
    return 0;
}

/* Bring l in line with the rules (they changed, or the handshake named
 * someone new): in reset mode close a blocked link; a link held before
 * connecting connects once its way is free; a relaying link releases what
 * waited behind a lifted block (bytes first, then the EOF behind them).
 * -1 if l was closed (freed). */
static int link_apply_rules(plink *l)
{
    if (l->state == LINK_NAME)
        return 0;   /* no name, no rule applies yet */
    link_apply_faults(l);
    int blocked = link_eval(l);
    if (blocked && l->px->x->mode == EPXD_MODE_RESET) {
        link_close(l, "daemon", "blocked (reset mode)", 1);
        return -1;
    }
    switch (l->state) {
    case LINK_NAME:
    case LINK_CONNECTING:
        return 0;   /* the first frame goes (or waits) once connected */
    case LINK_PENDING:
        return link_pending_apply(l);
    case LINK_HANDSHAKE:
    case LINK_UP:
        break;
    }
    dir_flush(l, OUT);
    dir_flush(l, IN);
    return link_settle(l);
}

/* In LINK_NAME: one read of the initiator's first bytes into OUT's buffer.
 * -1 on EOF or error. */
static int read_first(plink *l)
{
    half *h = &l->h[OUT];
    if (!h->buf && !(h->buf = malloc(FIRST_CAP))) {
        log_msg(LOG_ERR, "link %lu: out of memory", l->id);
        return 0;   /* try again later */
    }
    for (;;) {
        ssize_t k = read(l->fd[INI], h->buf + h->len, FIRST_CAP - h->len);
        if (k < 0 && errno == EINTR)
            continue;
        if (k < 0 && errno == EAGAIN)
            return 0;
        if (k <= 0)
            return -1;
        h->len += (size_t)k;
        return 0;
    }
}

/* A registered node named by a handshake: remember its full name, so that
 * links towards it show it even before its own handshake frames do. */
static void learn_full_name(epx *x, const char *full)
{
    const char *at = strchr(full, '@');
    if (!at)
        return;   /* a NAME_ME host only */
    reg_node *rn = registry_find(&x->reg, (const uint8_t *)full, (size_t)(at - full));
    if (rn && !rn->full[0])
        snprintf(rn->full, sizeof rn->full, "%s", full);
}

/* The target's name as events and LINKS show it: its full name if the
 * daemon knows it by now (from any handshake), else its registered name. */
static void refresh_to(plink *l)
{
    epx *x = l->px->x;
    reg_node *rn = registry_find(&x->reg, (const uint8_t *)l->target, strlen(l->target));
    if (rn && rn->port == l->target_port && rn->full[0])
        snprintf(l->to, sizeof l->to, "%s", rn->full);
}

/* The initiator's first frame: learn its name, then reach the node unless
 * the rules say otherwise. */
static void read_name(plink *l)
{
    epx *x = l->px->x;
    int r = read_first(l);
    half *h = &l->h[OUT];
    sniff_first f;
    sniff_status st = h->len ? sniff_first_frame(h->buf, h->len, &f) : SNIFF_MORE;
    if (st == SNIFF_BAD) {
        log_msg(LOG_ERR, "connection %lu to %s: closing: %s", l->id, l->target, f.why);
        link_close(l, "daemon", f.why, 0);
        return;
    }
    if (st == SNIFF_MORE) {
        if (r < 0)
            link_close(l, "initiator", "initiator left before its name", 0);
        return;
    }
    link_deadline(l, 0);
    snprintf(l->from, sizeof l->from, "%s", f.name);
    learn_full_name(x, l->from);
    refresh_to(l);
    log_msg(LOG_INFO, "link %lu: %s -> %s", l->id, l->from, l->to);
    events_add(&x->ev, loop_now_ms(), "link_opened",
               "\"link\":%lu,\"from\":%s,\"to\":%s,\"node\":%s", l->id, events_q(l->from),
               events_q(l->to), events_q(l->target));
    l->state = LINK_PENDING;   /* connects at once unless the rules hold it */
    link_apply_rules(l);
}

/* In LINK_CONNECTING: the connect finished one way or the other. */
static void connected(plink *l, int fd)
{
    int e = sock_error(fd);
    if (e) {
        log_msg(LOG_ERR, "link %lu: connect to %s (port %d): %s", l->id, l->target,
                l->target_port, strerror(e));
        link_close(l, "daemon", "node unreachable", 0);
        return;
    }
    link_deadline(l, 0);
    l->state = LINK_HANDSHAKE;
    if (l->kind == KIND_APP) {
        /* no handshake of ours to wait for: the connection is the link */
        l->state = LINK_UP;
        log_msg(LOG_INFO, "link %lu %s -> %s up (app port %d)", l->id, l->from, l->to,
                l->target_port);
        events_add(&l->px->x->ev, loop_now_ms(), "link_up",
                   "\"link\":%lu,\"from\":%s,\"to\":%s,\"kind\":\"app\"", l->id,
                   events_q(l->from), events_q(l->to));
    }
    dir_flush(l, OUT);   /* the first frame, unless held */
    link_settle(l);
}

static void link_event(void *ctx, int fd, short rev)
{
    plink *l = ctx;
    switch (l->state) {
    case LINK_NAME:
        read_name(l);
        return;
    case LINK_PENDING:
        if (rev & (POLLRDHUP | POLLHUP | POLLERR)) {
            /* it gave up; the frame we hold goes nowhere */
            dir_src_hung(l, OUT);
            link_close(l, "initiator", "initiator gave up while held", 0);
        }
        return;
    case LINK_CONNECTING:
        connected(l, fd);
        return;
    case LINK_HANDSHAKE:
    case LINK_UP:
        break;
    }
    enum side s = fd == l->fd[INI] ? INI : NODE;
    enum dir from = dir_from(s);
    /* write first (makes room), then read and pass on at once */
    if (rev & (POLLOUT | POLLERR | POLLHUP))
        dir_flush(l, dir_into(s));
    if (dir_watches(l, from)) {
        if (rev & (POLLRDHUP | POLLHUP | POLLERR))
            dir_src_hung(l, from);
    } else if (rev & (POLLIN | POLLERR | POLLHUP)) {
        dir_pump(l, from);
    }
    if (l->names_changed) {
        l->names_changed = 0;
        link_apply_rules(l);
        return;
    }
    link_settle(l);
}

static void listener_event(void *ctx, int lfd, short rev)
{
    reg_node *n = ctx;
    proxy *p = n->proxy;
    (void)rev;
    for (int k = 0; k < 64; k++) {
        int fd = sock_accept(lfd);
        if (fd < 0) {
            if (sock_accept_starved(errno)) {
                log_msg(LOG_ERR, "proxy %s: accept: %s; pausing accepts for %d ms", n->name,
                        strerror(errno), ACCEPT_BACKOFF_MS);
                loop_pause(p->x->loop, lfd, ACCEPT_BACKOFF_MS);
            }
            return;
        }
        plink *l = calloc(1, sizeof *l);
        if (!l || loop_add(p->x->loop, fd, POLLIN, link_event, l) < 0) {
            log_msg(LOG_ERR, "proxy %s: out of memory for a link", n->name);
            free(l);
            close(fd);
            return;
        }
        sock_nodelay(fd);
        l->px = p;
        l->id = ++p->next_id;
        l->fd[INI] = fd;
        l->fd[NODE] = -1;
        l->state = LINK_NAME;
        l->h[OUT].t_first = l->h[IN].t_first = -1;
        l->target_port = n->port;
        snprintf(l->target, sizeof l->target, "%s", n->name);
        const char *host = epmd_srv_node_addr(p->x->epmd, n->name, n->namelen);
        snprintf(l->target_addr, sizeof l->target_addr, "%s", host ? host : "");
        snprintf(l->to, sizeof l->to, "%s", n->full[0] ? n->full : n->name);
        l->since_ms = loop_now_ms();
        l->next = p->links;
        if (p->links)
            p->links->prev = l;
        p->links = l;
        p->nlinks++;
        if (link_deadline(l, NAME_TIMEOUT_MS) < 0) {
            log_msg(LOG_ERR, "proxy %s: out of memory for a link's deadline", n->name);
            link_close(l, "daemon", "out of memory", 0);
            return;
        }
    }
}

/* Oldest link first, so that after a heal what waited longest moves first
 * (an old link's bytes and EOF before a newer connection's handshake). */
void proxy_rules_changed(proxy *p)
{
    plink *l = p->links;
    while (l && l->next)
        l = l->next;
    while (l) {
        plink *newer = l->prev;
        link_apply_rules(l);
        l = newer;
    }
}

/* Link a new plink in, newest first. */
static void link_insert(proxy *p, plink *l)
{
    l->px = p;
    l->id = ++p->next_id;
    l->since_ms = loop_now_ms();
    l->next = p->links;
    if (p->links)
        p->links->prev = l;
    p->links = l;
    p->nlinks++;
}

void proxy_app_link(proxy *p, int fd, const char *from, const char *to,
                    const struct sockaddr *dest, socklen_t destlen, int port)
{
    epx *x = p->x;
    plink *l = calloc(1, sizeof *l);
    if (!l || destlen > sizeof l->dest || loop_add(x->loop, fd, 0, link_event, l) < 0) {
        log_msg(LOG_ERR, "app relay: out of memory for a link from %s to %s", from, to);
        free(l);
        sock_close_rst(fd);
        return;
    }
    l->kind = KIND_APP;
    l->h[OUT].t_first = l->h[IN].t_first = -1;
    l->fd[INI] = fd;
    l->fd[NODE] = -1;
    l->target_port = port;
    snprintf(l->target, sizeof l->target, "%s", to);
    snprintf(l->from, sizeof l->from, "%s", from);
    snprintf(l->to, sizeof l->to, "%s", to);
    memcpy(&l->dest, dest, destlen);
    l->destlen = destlen;
    link_insert(p, l);
    log_msg(LOG_INFO, "link %lu: %s -> %s (app port %d)", l->id, l->from, l->to, port);
    events_add(&x->ev, loop_now_ms(), "link_opened",
               "\"link\":%lu,\"from\":%s,\"to\":%s,\"kind\":\"app\",\"port\":%d", l->id,
               events_q(l->from), events_q(l->to), port);
    l->state = LINK_PENDING;   /* connects at once unless the rules hold it */
    link_apply_rules(l);
}

int proxy_node_up(proxy *p, reg_node *n)
{
    char err[256];
    /* on the node's host address if it has one (its name's host: the
     * others connect there), else the daemon's first */
    const char *addr = epmd_srv_node_addr(p->x->epmd, n->name, n->namelen);
    if (!addr)
        addr = p->x->cfg.naddrs ? p->x->cfg.addrs[0] : NULL;
    int fd = sock_listen(addr, 0, err, sizeof err);
    if (fd < 0) {
        log_msg(LOG_ERR, "proxy listener for %s: %s", n->name, err);
        return -1;
    }
    /* a small window and an Ethernet MSS, as a node on a network sees: a
     * cut sender fills its own (MSS-sized) socket buffer, not megabytes of
     * ours or of loopback's 64 KiB segments (doc/hold-model.md,
     * busy_dist_port) */
    sock_shape(fd, p->x->hold.rcvbuf, p->x->hold.mss);
    n->proxy = p;
    if (loop_add(p->x->loop, fd, POLLIN, listener_event, n) < 0) {
        close(fd);
        return -1;
    }
    n->proxy_fd = fd;
    n->proxy_port = sock_local_port(fd);
    return 0;
}

void proxy_node_down(proxy *p, reg_node *n)
{
    if (n->proxy_fd < 0)
        return;
    loop_del(p->x->loop, n->proxy_fd);
    close(n->proxy_fd);
    n->proxy_fd = -1;
}

int proxy_nlinks(const proxy *p)
{
    return p->nlinks;
}

static const char *link_state_name(const plink *l)
{
    if (l->h[OUT].st != DIR_OPEN || l->h[IN].st != DIR_OPEN)
        return "closed";   /* a side has ended: the link is on its way out */
    if (l->state == LINK_PENDING || dir_blocked(&l->h[OUT]) || dir_blocked(&l->h[IN]))
        return "held";
    return l->state == LINK_UP ? "up" : "handshake";
}

void proxy_links_json(proxy *p, sbuf *out)
{
    static const char *held_names[4] = { "none", "out", "in", "both" };
    sbuf_addstr(out, "[");
    int first = 1;
    long long now = loop_now_ms();
    /* oldest first: walk to the tail, then back */
    plink *l = p->links;
    while (l && l->next)
        l = l->next;
    for (; l; l = l->prev) {
        if (l->state == LINK_NAME)
            continue;   /* no name yet: not a link */
        if (!first)
            sbuf_addstr(out, ",");
        first = 0;
        sbuf_printf(out, "{\"id\":%lu,\"from\":", l->id);
        sbuf_json_str(out, l->from, strlen(l->from));
        sbuf_addstr(out, ",\"to\":");
        sbuf_json_str(out, l->to, strlen(l->to));
        if (l->kind == KIND_APP)
            sbuf_printf(out, ",\"kind\":\"app\",\"port\":%d", l->target_port);
        else
            sbuf_addstr(out, ",\"kind\":\"dist\"");
        int held = (l->h[OUT].hs == HS_HELD) | (l->h[IN].hs == HS_HELD) << 1;
        for (int d = OUT; d <= IN; d++) {
            const half *h = &l->h[d];
            const char *dn = d == OUT ? "out" : "in";
            sbuf_printf(out, ",\"%s_state\":\"%s\",\"%s_pending\":%zu", dn, hs_name[h->hs], dn,
                        dir_pending(h));
            if (h->piped > 0)
                sbuf_printf(out, ",\"%s_splice\":true", dn);
            if (h->hs == HS_RELEASING && h->timer)
                sbuf_printf(out, ",\"%s_release_at\":%lld,\"%s_release_in_ms\":%lld", dn,
                            loop_timer_when(h->timer) - p->x->ev.t0_ms, dn,
                            loop_timer_when(h->timer) - now);
        }
        for (int d = OUT; d <= IN; d++) {
            const half *h = &l->h[d];
            if (!h->sh.p.set && !shaper_held(&h->sh))
                continue;
            sbuf f = { 0 };
            faults_params_json(&h->sh.p, &f);
            sbuf_printf(out, ",\"%s_faults\":{\"delayed_bytes\":%zu%s}", d == OUT ? "out" : "in",
                        shaper_held(&h->sh), sbuf_str(&f));
            sbuf_free(&f);
        }
        sbuf_printf(out, ",\"state\":\"%s\",\"held\":\"%s\",\"bytes_out\":%llu,"
                         "\"bytes_in\":%llu,\"since\":%lld,\"age_ms\":%lld}",
                    link_state_name(l), held_names[held],
                    (unsigned long long)l->h[OUT].bytes, (unsigned long long)l->h[IN].bytes,
                    l->since_ms - p->x->ev.t0_ms, now - l->since_ms);
    }
    sbuf_addstr(out, "]");
}

void proxy_free(proxy *p)
{
    if (!p)
        return;
    while (p->links)
        link_close(p->links, "daemon", "daemon exits", 0);
    for (reg_node *n = p->x->reg.reg; n; n = n->next)
        proxy_node_down(p, n);
    loop_timer_del(p->x->loop, p->trim);
    free(p);
}
