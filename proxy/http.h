/* HTTP/1.1 requests on the control port: a pure parser, no sockets.
 *
 * Bytes in; out comes a whole request, "need more", or an error with the
 * status code to answer before closing.  Every length has a hard limit.
 * Bodies only with Content-Length (at most HTTP_MAX_BODY); any
 * Transfer-Encoding is refused: chunked with 411 (send a Content-Length
 * instead), any other coding with 501.  Lines may end in CRLF or a bare LF. */
#ifndef HTTP_H
#define HTTP_H

#include <stddef.h>

#define HTTP_MAX_LINE    8192          /* request line; longer: 414 */
#define HTTP_MAX_HEAD    16384         /* request line + headers; more: 431 */
#define HTTP_MAX_HEADERS 48            /* header fields; more: 431 */
#define HTTP_MAX_BODY    (64 * 1024)   /* Content-Length above this: 413 */
#define HTTP_MAX_METHOD  16

typedef struct http_hdr {
    const char *name, *value;          /* into the caller's buffer */
    size_t namelen, valuelen;          /* value without surrounding blanks */
} http_hdr;

typedef struct http_req {
    char method[HTTP_MAX_METHOD + 1];
    const char *path;                  /* request target up to '?' */
    size_t pathlen;
    const char *query;                 /* after '?' (NULL if none) */
    size_t querylen;
    int minor;                         /* HTTP/1.<minor> */
    int keep_alive;                    /* the connection may carry another request */
    int expect_continue;               /* "Expect: 100-continue" */
    int head_done;                     /* headers complete (also with "need more") */
    http_hdr hdr[HTTP_MAX_HEADERS];
    int nhdr;
    size_t head_len;                   /* bytes of request line + headers */
    const char *body;
    size_t body_len;                   /* Content-Length */
    size_t total;                      /* head_len + body_len: bytes to consume */
} http_req;

enum { HTTP_ERROR = -1, HTTP_MORE = 0, HTTP_DONE = 1 };

/* Parse the request at the start of buf[0..n).  HTTP_DONE: *r describes it
 * (pointers into buf) and r->total bytes belong to it.  HTTP_MORE: not all
 * there yet; if r->head_done, the head was valid and the body is missing.
 * HTTP_ERROR: *status is the code to answer (400, 411, 413, 414, 431, 501,
 * 505) and the connection must close.  *scan carries where the search for
 * the end of the head stopped between calls on the same request (start it
 * at 0), so that a head that trickles in is not searched from the start
 * each time. */
int http_parse(const char *buf, size_t n, size_t *scan, http_req *r, int *status);

/* Does this line (no terminator) look like an HTTP request line,
 * "METHOD SP /target SP HTTP/1.x"?  How the control port tells HTTP from
 * its line protocol: 1 or 0. */
int http_is_request_line(const char *line, size_t len);

/* The value of header `name` (case-insensitive), or NULL; *len gets its
 * length.  The first one if there are several. */
const char *http_header(const http_req *r, const char *name, size_t *len);

/* Does the comma-separated header value contain token tok (case-insensitive)? */
int http_has_token(const char *value, size_t len, const char *tok);

/* The value of query parameter `key` in r->query (not decoded), or NULL. */
const char *http_query_param(const http_req *r, const char *key, size_t *len);

/* The reason phrase of a status code ("Not Found"); "" if unknown. */
const char *http_reason(int status);

#endif
