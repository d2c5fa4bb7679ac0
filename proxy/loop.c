#include "loop.h"

#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <time.h>

typedef struct entry {
    loop_fn *fn;
    void *ctx;
    short events;
    unsigned gen;     /* bumped on every add: stale events are dropped */
    int pos;          /* index in active[], -1 when unused */
    long long paused_until;   /* loop_pause: 0 = not paused */
} entry;

struct loop {
    entry *ent;       /* indexed by fd */
    int nent;
    int *active;      /* fds in use, compact */
    int nactive, capactive;
    struct pollfd *pfd;
    unsigned *pgen;
    int cappfd;
    int npaused;
};

long long loop_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

loop *loop_new(void)
{
    return calloc(1, sizeof(loop));
}

void loop_free(loop *l)
{
    if (!l)
        return;
    free(l->ent);
    free(l->active);
    free(l->pfd);
    free(l->pgen);
    free(l);
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
        for (int i = l->nent; i < n; i++) {
            e[i].pos = -1;
            e[i].gen = 0;
            e[i].paused_until = 0;
        }
        l->ent = e;
        l->nent = n;
    }
    if (l->nactive == l->capactive) {
        int n = l->capactive ? l->capactive * 2 : 64;
        int *a = realloc(l->active, (size_t)n * sizeof *a);
        if (!a)
            return -1;
        l->active = a;
        l->capactive = n;
    }
    entry *e = &l->ent[fd];
    if (e->pos < 0) {
        e->pos = l->nactive;
        l->active[l->nactive++] = fd;
    }
    e->fn = fn;
    e->ctx = ctx;
    e->events = events;
    e->gen++;
    if (e->paused_until) {
        e->paused_until = 0;
        l->npaused--;
    }
    return 0;
}

void loop_mod(loop *l, int fd, short events)
{
    if (fd >= 0 && fd < l->nent && l->ent[fd].pos >= 0)
        l->ent[fd].events = events;
}

void loop_del(loop *l, int fd)
{
    if (fd < 0 || fd >= l->nent || l->ent[fd].pos < 0)
        return;
    entry *e = &l->ent[fd];
    int last = l->active[--l->nactive];
    l->active[e->pos] = last;
    l->ent[last].pos = e->pos;
    e->pos = -1;
    e->gen++;
    if (e->paused_until) {
        e->paused_until = 0;
        l->npaused--;
    }
}

void loop_pause(loop *l, int fd, int ms)
{
    if (fd < 0 || fd >= l->nent || l->ent[fd].pos < 0)
        return;
    entry *e = &l->ent[fd];
    if (!e->paused_until)
        l->npaused++;
    e->paused_until = loop_now_ms() + ms;
}

int loop_has(const loop *l, int fd)
{
    return fd >= 0 && fd < l->nent && l->ent[fd].pos >= 0;
}

int loop_count(const loop *l)
{
    return l->nactive;
}

int loop_run_once(loop *l, int timeout_ms)
{
    int n = l->nactive;
    if (n > l->cappfd) {
        struct pollfd *p = realloc(l->pfd, (size_t)n * sizeof *p);
        if (!p)
            return -1;
        l->pfd = p;
        unsigned *g = realloc(l->pgen, (size_t)n * sizeof *g);
        if (!g)
            return -1;
        l->pgen = g;
        l->cappfd = n;
    }
    long long now = l->npaused ? loop_now_ms() : 0;
    for (int i = 0; i < n; i++) {
        int fd = l->active[i];
        entry *e = &l->ent[fd];
        int paused = 0;
        if (e->paused_until) {
            if (now >= e->paused_until) {
                e->paused_until = 0;
                l->npaused--;
            } else {
                paused = 1;
                long long wait = e->paused_until - now;
                if (timeout_ms < 0 || wait < timeout_ms)
                    timeout_ms = (int)wait;
            }
        }
        l->pfd[i].fd = e->events && !paused ? fd : -1;
        l->pfd[i].events = e->events;
        l->pfd[i].revents = 0;
        l->pgen[i] = e->gen;
    }
    int r = poll(l->pfd, (nfds_t)n, timeout_ms);
    if (r < 0)
        return errno == EINTR ? 0 : -1;
    int seen = 0;
    for (int i = 0; i < n && seen < r; i++) {
        short rev = l->pfd[i].revents;
        if (!rev)
            continue;
        seen++;
        int fd = l->pfd[i].fd;
        entry *e = &l->ent[fd];
        if (e->pos < 0 || e->gen != l->pgen[i])
            continue;   /* closed (and maybe reused) by an earlier callback */
        e->fn(e->ctx, fd, rev);
    }
    return r;
}
