/* The event loop: one epoll set over every fd the daemon owns (level
 * triggered, with poll(2)'s event bits).  The only place that blocks. */
#ifndef LOOP_H
#define LOOP_H

typedef struct loop loop;

/* Called with the poll revents of fd (POLLIN, POLLOUT, POLLHUP, POLLERR...). */
typedef void loop_fn(void *ctx, int fd, short revents);

loop *loop_new(void);
void loop_free(loop *l);

/* Watch fd for events (POLLIN/POLLOUT; 0 = not at all for now: the fd stays
 * registered but is left out of poll, so a hung-up socket cannot spin the
 * loop).  0, or -1 on allocation failure. */
int loop_add(loop *l, int fd, short events, loop_fn *fn, void *ctx);
/* Change what fd is watched for. */
void loop_mod(loop *l, int fd, short events);
/* Stop watching fd (call before closing it).  Events already collected for
 * it in this round are not delivered. */
void loop_del(loop *l, int fd);

/* Leave fd out of poll for ms milliseconds, then watch it for what it was
 * watched for before (a listener out of fds backs off this way). */
void loop_pause(loop *l, int fd, int ms);

/* Time events, beside the file events (as redis's ae.c keeps them): a timer
 * fires once, from loop_run_once, no earlier than its time.  The loop owns
 * the handle until the timer fires or is deleted; after either the handle is
 * gone.  A callback may add and delete timers, itself included (deleting
 * itself from its own callback is a no-op: it is already gone). */
typedef struct loop_timer loop_timer;
typedef void loop_timer_fn(void *ctx);
/* Fire fn(ctx) at monotonic time when_ms (loop_now_ms()).  NULL on
 * allocation failure. */
loop_timer *loop_timer_at(loop *l, long long when_ms, loop_timer_fn *fn, void *ctx);
/* Fire fn(ctx) in ms milliseconds. */
loop_timer *loop_timer_in(loop *l, long long ms, loop_timer_fn *fn, void *ctx);
/* Cancel a pending timer; NULL is ignored.  Callers keep the handle in a
 * field and clear it here and in the callback. */
void loop_timer_del(loop *l, loop_timer *t);
/* When a timer is due (monotonic ms). */
long long loop_timer_when(const loop_timer *t);
/* Number of pending timers. */
int loop_timer_count(const loop *l);

/* Poll once for up to timeout_ms (-1: forever), never past the next timer,
 * then dispatch file events and due timers.  Returns the number of fds
 * that had events, or -1 if poll failed for a reason other than EINTR. */
int loop_run_once(loop *l, int timeout_ms);

/* 1 if fd is registered. */
int loop_has(const loop *l, int fd);

/* The loop's own fd (the epoll instance). */
int loop_fd(const loop *l);

/* Number of fds registered. */
int loop_count(const loop *l);

/* Monotonic time in milliseconds. */
long long loop_now_ms(void);

#endif
