#include "loop.h"

#include <errno.h>
#include <poll.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <time.h>
#include <unistd.h>

/* poll(2) and epoll(7) share the bit values of the events used here. */
_Static_assert(POLLIN == EPOLLIN && POLLOUT == EPOLLOUT && POLLERR == EPOLLERR &&
                   POLLHUP == EPOLLHUP && POLLRDHUP == EPOLLRDHUP,
               "poll and epoll event bits differ");

typedef struct entry {
    loop_fn *fn;
    void *ctx;
    short events;             /* what the owner wants */
    short armed;              /* what epoll has now (0 = not in the set) */
    unsigned gen;             /* bumped on every add/del: stale events are dropped */
    int used;
    long long paused_until;   /* loop_pause: 0 = not paused */
} entry;

struct loop_timer {
    long long when;
    unsigned long long seq;   /* ties fire in the order they were added */
    int idx;                  /* position in the heap */
    loop_timer_fn *fn;
    void *ctx;
};

struct loop {
    int epfd;
    loop_timer **heap;        /* min-heap on (when, seq) */
    int ntimers, captimers;
    unsigned long long tseq;
    entry *ent;               /* indexed by fd */
    int nent;
    int count;
    int npaused;
    struct epoll_event *evs;
    int capevs;
};

long long loop_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

loop *loop_new(void)
{
    loop *l = calloc(1, sizeof(loop));
    if (!l)
        return NULL;
    l->epfd = epoll_create1(EPOLL_CLOEXEC);
    if (l->epfd < 0) {
        free(l);
        return NULL;
    }
    return l;
}

void loop_free(loop *l)
{
    if (!l)
        return;
    close(l->epfd);
    for (int i = 0; i < l->ntimers; i++)
        free(l->heap[i]);
    free(l->heap);
    free(l->ent);
    free(l->evs);
    free(l);
}

int loop_fd(const loop *l)
{
    return l->epfd;
}

/* Make epoll's interest in fd match what the entry wants (nothing while
 * paused or when nothing is wanted: a socket left in the set would still
 * report HUP/ERR and could spin the loop).  -1 if epoll refused. */
static int sync_fd(loop *l, int fd)
{
    entry *e = &l->ent[fd];
    short want = e->used && !e->paused_until ? e->events : 0;
    if (want == e->armed)
        return 0;
    struct epoll_event ev = { 0 };
    ev.events = (uint32_t)(unsigned short)want;
    ev.data.u64 = (uint64_t)e->gen << 32 | (uint32_t)fd;
    int op = !want ? EPOLL_CTL_DEL : e->armed ? EPOLL_CTL_MOD : EPOLL_CTL_ADD;
    if (epoll_ctl(l->epfd, op, fd, op == EPOLL_CTL_DEL ? NULL : &ev) < 0 && op != EPOLL_CTL_DEL)
        return -1;
    e->armed = want;
    return 0;
}

int loop_add(loop *l, int fd, short events, loop_fn *fn, void *ctx)
{
    if (fd < 0)
        return -1;
    if (fd >= l->nent) {
        int n = l->nent ? l->nent : 64;
        while (n <= fd)
            n *= 2;
        entry *e = realloc(l->ent, (size_t)n * sizeof *e);
        if (!e)
            return -1;
        for (int i = l->nent; i < n; i++)
            e[i] = (entry){ 0 };
        l->ent = e;
        l->nent = n;
    }
    entry *e = &l->ent[fd];
    if (e->armed) {   /* re-added: the new generation must reach epoll */
        epoll_ctl(l->epfd, EPOLL_CTL_DEL, fd, NULL);
        e->armed = 0;
    }
    if (!e->used)
        l->count++;
    if (e->paused_until)
        l->npaused--;
    e->fn = fn;
    e->ctx = ctx;
    e->events = events;
    e->used = 1;
    e->paused_until = 0;
    e->gen++;
    if (sync_fd(l, fd) < 0) {
        e->used = 0;
        l->count--;
        return -1;
    }
    return 0;
}

void loop_mod(loop *l, int fd, short events)
{
    if (fd < 0 || fd >= l->nent || !l->ent[fd].used)
        return;
    l->ent[fd].events = events;
    sync_fd(l, fd);
}

void loop_del(loop *l, int fd)
{
    if (fd < 0 || fd >= l->nent || !l->ent[fd].used)
        return;
    entry *e = &l->ent[fd];
    e->used = 0;
    sync_fd(l, fd);
    if (e->paused_until) {
        e->paused_until = 0;
        l->npaused--;
    }
    e->gen++;
    l->count--;
}

void loop_pause(loop *l, int fd, int ms)
{
    if (fd < 0 || fd >= l->nent || !l->ent[fd].used)
        return;
    entry *e = &l->ent[fd];
    if (!e->paused_until)
        l->npaused++;
    e->paused_until = loop_now_ms() + ms;
    sync_fd(l, fd);
}

int loop_has(const loop *l, int fd)
{
    return fd >= 0 && fd < l->nent && l->ent[fd].used;
}

int loop_count(const loop *l)
{
    return l->count;
}

static int timer_before(const loop_timer *a, const loop_timer *b)
{
    return a->when < b->when || (a->when == b->when && a->seq < b->seq);
}

static void heap_set(loop *l, int i, loop_timer *t)
{
    l->heap[i] = t;
    t->idx = i;
}

/* Restore the heap order around position i (after an insert or removal). */
static void heap_fix(loop *l, int i)
{
    loop_timer *t = l->heap[i];
    while (i > 0 && timer_before(t, l->heap[(i - 1) / 2])) {
        heap_set(l, i, l->heap[(i - 1) / 2]);
        i = (i - 1) / 2;
    }
    for (;;) {
        int c = 2 * i + 1;
        if (c >= l->ntimers)
            break;
        if (c + 1 < l->ntimers && timer_before(l->heap[c + 1], l->heap[c]))
            c++;
        if (!timer_before(l->heap[c], t))
            break;
        heap_set(l, i, l->heap[c]);
        i = c;
    }
    heap_set(l, i, t);
}

loop_timer *loop_timer_at(loop *l, long long when_ms, loop_timer_fn *fn, void *ctx)
{
    if (l->ntimers == l->captimers) {
        int n = l->captimers ? 2 * l->captimers : 16;
        loop_timer **h = realloc(l->heap, (size_t)n * sizeof *h);
        if (!h)
            return NULL;
        l->heap = h;
        l->captimers = n;
    }
    loop_timer *t = malloc(sizeof *t);
    if (!t)
        return NULL;
    *t = (loop_timer){ .when = when_ms, .seq = ++l->tseq, .fn = fn, .ctx = ctx };
    l->heap[l->ntimers++] = t;
    heap_fix(l, l->ntimers - 1);
    return t;
}

loop_timer *loop_timer_in(loop *l, long long ms, loop_timer_fn *fn, void *ctx)
{
    return loop_timer_at(l, loop_now_ms() + ms, fn, ctx);
}

/* Take t out of the heap (it stays allocated). */
static void heap_remove(loop *l, loop_timer *t)
{
    int i = t->idx;
    loop_timer *last = l->heap[--l->ntimers];
    if (last != t) {
        heap_set(l, i, last);
        heap_fix(l, i);
    }
    t->idx = -1;
}

void loop_timer_del(loop *l, loop_timer *t)
{
    if (!t || t->idx < 0)
        return;
    heap_remove(l, t);
    free(t);
}

long long loop_timer_when(const loop_timer *t)
{
    return t->when;
}

int loop_timer_count(const loop *l)
{
    return l->ntimers;
}

/* Fire every timer due by now.  A timer added by a callback for a time
 * already past fires in the next round, so a callback cannot starve file
 * events.  The handle is marked gone (idx -1) while its callback runs, so
 * loop_timer_del on it from inside the callback does nothing. */
static void run_timers(loop *l)
{
    long long now = loop_now_ms();
    unsigned long long last = l->tseq;
    while (l->ntimers > 0 && l->heap[0]->when <= now && l->heap[0]->seq <= last) {
        loop_timer *t = l->heap[0];
        heap_remove(l, t);
        /* freed only after the callback: a loop_timer_del on its own
         * handle there must find it (idx -1), not freed memory */
        t->fn(t->ctx);
        free(t);
    }
}

/* Shorten *timeout_ms to the next timer. */
static void timer_timeout(loop *l, int *timeout_ms)
{
    if (!l->ntimers)
        return;
    long long wait = l->heap[0]->when - loop_now_ms();
    if (wait < 0)
        wait = 0;
    if (*timeout_ms < 0 || wait < *timeout_ms)
        *timeout_ms = (int)wait;
}

/* Resume the fds whose pause is over; shorten *timeout_ms to the next end. */
static void resume_paused(loop *l, int *timeout_ms)
{
    long long now = loop_now_ms();
    for (int fd = 0; fd < l->nent && l->npaused > 0; fd++) {
        entry *e = &l->ent[fd];
        if (!e->used || !e->paused_until)
            continue;
        if (now >= e->paused_until) {
            e->paused_until = 0;
            l->npaused--;
            sync_fd(l, fd);
        } else {
            long long wait = e->paused_until - now;
            if (*timeout_ms < 0 || wait < *timeout_ms)
                *timeout_ms = (int)wait;
        }
    }
}

int loop_run_once(loop *l, int timeout_ms)
{
    if (l->npaused)
        resume_paused(l, &timeout_ms);
    timer_timeout(l, &timeout_ms);
    int want = l->count < 64 ? 64 : l->count > 4096 ? 4096 : l->count;
    if (want > l->capevs) {
        struct epoll_event *evs = realloc(l->evs, (size_t)want * sizeof *evs);
        if (!evs)
            return -1;
        l->evs = evs;
        l->capevs = want;
    }
    int r = epoll_wait(l->epfd, l->evs, l->capevs, timeout_ms);
    if (r < 0) {
        if (errno != EINTR)
            return -1;
        r = 0;
    }
    for (int i = 0; i < r; i++) {
        int fd = (int)(uint32_t)l->evs[i].data.u64;
        unsigned gen = (unsigned)(l->evs[i].data.u64 >> 32);
        if (fd < 0 || fd >= l->nent)
            continue;
        entry *e = &l->ent[fd];
        /* closed, re-added or no longer wanted since epoll_wait returned */
        if (!e->used || e->gen != gen || !e->armed)
            continue;
        short rev = (short)(l->evs[i].events & ((unsigned short)e->armed | EPOLLERR | EPOLLHUP));
        if (rev)
            e->fn(e->ctx, fd, rev);
    }
    run_timers(l);
    return r;
}
