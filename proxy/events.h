/* The event log: the last EVENTS_KEEP events (registrations, links, cuts,
 * heals, mode changes) as one-line JSON objects, and optionally a file that
 * gets each as a JSON line as it happens. */
#ifndef EVENTS_H
#define EVENTS_H

#include <stdio.h>

#include "sbuf.h"

#define EVENTS_KEEP 1000

/* Told of each event once it is stored: its seq and its JSON object. */
typedef void events_listener(void *ctx, unsigned long long seq, const char *json);

typedef struct events {
    char *ring[EVENTS_KEEP];        /* rendered JSON objects */
    unsigned long long next_seq;    /* seq of the next event (first is 1) */
    long long t0_ms;                /* monotonic start: t is ms since then */
    FILE *file;
    events_listener *listener;      /* one, or NULL (the HTTP event stream) */
    void *listener_ctx;
} events;

/* t0_ms: the monotonic time that t counts from. */
void events_init(events *e, long long t0_ms);
/* Append to path as well (JSON lines).  0, or -1 with errno. */
int events_open_file(events *e, const char *path);
void events_free(events *e);
/* Set (or with NULL clear) the one listener. */
void events_listen(events *e, events_listener *fn, void *ctx);

/* Record one event: type plus extra JSON members written by the caller as
 * `"key":value,...` (may be empty).  Never fails loudly: an event that
 * cannot be stored is dropped. */
void events_add(events *e, long long now_ms, const char *type, const char *members_fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* s as a JSON string literal (quotes included), in one of a few rotating
 * static buffers: for use as an argument of events_add. */
const char *events_q(const char *s);
/* The same for n bytes of s. */
const char *events_qn(const char *s, size_t n);

/* The EVENTS payload: every kept event with seq > after, oldest first. */
void events_json(const events *e, unsigned long long after, sbuf *out);

#endif
