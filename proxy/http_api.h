/* The HTTP/JSON face of the control port: routes, replies, the event stream
 * (Server-Sent Events) and the dashboard page.  Every endpoint runs a line
 * command through control_exec(), so HTTP and the line protocol cannot
 * disagree.  The control listener hands over each connection whose first
 * line is an HTTP request line. */
#ifndef HTTP_API_H
#define HTTP_API_H

#include <stddef.h>

#include "epx.h"

/* An event-stream client keeps at most this much unsent output in the
 * daemon; what it has not taken yet stays in the event ring.  A client whose
 * backlog falls out of the ring (EVENTS_KEEP events behind) is dropped. */
#define HTTP_SSE_BUF (32 * 1024)
/* ... and its socket's kernel send buffer is fixed at this (SO_SNDBUF). */
#define HTTP_SSE_SNDBUF (64 * 1024)
/* A request/response connection stops being read while this much of its
 * output is unsent. */
#define HTTP_OUT_HIGH (1024 * 1024)

typedef struct http_api http_api;

/* NULL on allocation failure.  Listens to x->ev. */
http_api *http_api_new(epx *x);
/* Closes every HTTP connection. */
void http_api_free(http_api *h);

/* Take over connection fd, of which buf[0..n) has been read already (its
 * first line is an HTTP request line).  h owns fd from now on, also on
 * failure (-1: fd closed). */
int http_api_adopt(http_api *h, int fd, const char *buf, size_t n);

/* Open event-stream clients. */
int http_api_nstreams(const http_api *h);

#endif
