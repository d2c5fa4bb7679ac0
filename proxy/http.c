#include "http.h"

#include <string.h>
#include <strings.h>

/* RFC 9110 tchar: the characters of a token (header names). */
static int tchar(unsigned char c)
{
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
        return 1;
    return c && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

static int ows(char c)
{
    return c == ' ' || c == '\t';
}

/* The length of the line at p[0..n) without its terminator (LF or CRLF),
 * *next the offset after it; -1 if there is no LF. */
static long line_at(const char *p, size_t n, size_t *next)
{
    const char *lf = memchr(p, '\n', n);
    if (!lf)
        return -1;
    size_t len = (size_t)(lf - p);
    *next = len + 1;
    if (len && p[len - 1] == '\r')
        len--;
    return (long)len;
}

/* "METHOD SP /target SP HTTP/d.d": 0, or the status to answer. */
static int request_line(const char *s, size_t len, http_req *r)
{
    size_t i = 0;
    while (i < len && s[i] >= 'A' && s[i] <= 'Z')
        i++;
    if (i == 0 || i >= len || s[i] != ' ')
        return 400;
    if (i > HTTP_MAX_METHOD)
        return 501;   /* no method of ours is that long */
    memcpy(r->method, s, i);
    r->method[i] = 0;
    size_t t0 = ++i;
    while (i < len && (unsigned char)s[i] > 0x20 && (unsigned char)s[i] < 0x7f)
        i++;
    if (i == t0 || i >= len || s[i] != ' ' || s[t0] != '/')
        return 400;
    const char *q = memchr(s + t0, '?', i - t0);
    r->path = s + t0;
    r->pathlen = q ? (size_t)(q - (s + t0)) : i - t0;
    if (q) {
        r->query = q + 1;
        r->querylen = (size_t)(s + i - (q + 1));
    }
    i++;
    if (len - i != 8 || memcmp(s + i, "HTTP/", 5) != 0 || s[i + 6] != '.' ||
        s[i + 5] < '0' || s[i + 5] > '9' || s[i + 7] < '0' || s[i + 7] > '9')
        return 400;
    if (s[i + 5] != '1')
        return 505;
    r->minor = s[i + 7] - '0';
    return 0;
}

/* One header field line (not empty): 0, or the status to answer. */
static int header_line(const char *s, size_t len, http_req *r)
{
    if (ows(s[0]))
        return 400;   /* obsolete line folding */
    size_t i = 0;
    while (i < len && tchar((unsigned char)s[i]))
        i++;
    if (i == 0 || i >= len || s[i] != ':')
        return 400;
    if (r->nhdr >= HTTP_MAX_HEADERS)
        return 431;
    http_hdr *h = &r->hdr[r->nhdr++];
    h->name = s;
    h->namelen = i;
    i++;
    while (i < len && ows(s[i]))
        i++;
    size_t end = len;
    while (end > i && ows(s[end - 1]))
        end--;
    for (size_t k = i; k < end; k++) {
        unsigned char c = (unsigned char)s[k];
        if ((c < 0x20 && c != '\t') || c == 0x7f)
            return 400;
    }
    h->value = s + i;
    h->valuelen = end - i;
    return 0;
}

static int name_is(const http_hdr *h, const char *name)
{
    return h->namelen == strlen(name) && strncasecmp(h->name, name, h->namelen) == 0;
}

/* What the headers mean for framing and the connection: 0 or a status. */
static int semantics(http_req *r)
{
    int have_len = 0, hosts = 0;
    size_t clen = 0;
    r->keep_alive = r->minor >= 1;
    for (int k = 0; k < r->nhdr; k++) {
        const http_hdr *h = &r->hdr[k];
        if (name_is(h, "Content-Length")) {
            size_t v = 0;
            if (h->valuelen == 0 || h->valuelen > 12)
                return h->valuelen > 12 && strspn(h->value, "0123456789") >= 12 ? 413 : 400;
            for (size_t i = 0; i < h->valuelen; i++) {
                if (h->value[i] < '0' || h->value[i] > '9')
                    return 400;
                v = v * 10 + (size_t)(h->value[i] - '0');
            }
            if (have_len && v != clen)
                return 400;
            have_len = 1;
            clen = v;
        } else if (name_is(h, "Transfer-Encoding")) {
            return http_has_token(h->value, h->valuelen, "chunked") ? 411 : 501;
        } else if (name_is(h, "Host")) {
            hosts++;
        } else if (name_is(h, "Connection")) {
            if (http_has_token(h->value, h->valuelen, "close"))
                r->keep_alive = 0;
            else if (http_has_token(h->value, h->valuelen, "keep-alive"))
                r->keep_alive = 1;
        } else if (name_is(h, "Expect")) {
            if (h->valuelen != 12 || strncasecmp(h->value, "100-continue", 12) != 0)
                return 417;
            r->expect_continue = 1;
        }
    }
    if (hosts > 1 || (r->minor >= 1 && hosts == 0))
        return 400;   /* RFC 9112 3.2: exactly one Host in HTTP/1.1 */
    if (clen > HTTP_MAX_BODY)
        return 413;
    r->body_len = clen;
    return 0;
}

int http_parse(const char *buf, size_t n, size_t *scan, http_req *r, int *status)
{
    memset(r, 0, sizeof *r);
    *status = 0;
    /* RFC 9112 2.2: empty lines before the request line are ignored */
    size_t skip = 0;
    while (skip < n && (buf[skip] == '\n' || (buf[skip] == '\r' && skip + 1 < n &&
                                               buf[skip + 1] == '\n')))
        skip += buf[skip] == '\r' ? 2 : 1;
    if (skip > HTTP_MAX_HEAD) {
        *status = 400;
        return HTTP_ERROR;
    }
    const char *p = buf + skip;
    size_t m = n - skip;
    if (*scan < skip)
        *scan = skip;

    /* the request line alone has its own limit, checked before the head is whole */
    size_t next = 0;
    long ll = line_at(p, m < HTTP_MAX_LINE + 2 ? m : HTTP_MAX_LINE + 2, &next);
    if (ll < 0 && m >= HTTP_MAX_LINE + 2) {
        *status = 414;
        return HTTP_ERROR;
    }
    if (ll > HTTP_MAX_LINE) {
        *status = 414;
        return HTTP_ERROR;
    }

    /* the end of the head: a LF followed by an empty line */
    size_t end = 0, i = *scan - skip;
    while (i < m) {
        const char *lf = memchr(p + i, '\n', m - i);
        if (!lf) {
            i = m;
            break;
        }
        size_t at = (size_t)(lf - p);
        if (at + 1 < m && p[at + 1] == '\n') {
            end = at + 2;
            break;
        }
        if (at + 2 < m && p[at + 1] == '\r' && p[at + 2] == '\n') {
            end = at + 3;
            break;
        }
        if (at + 2 >= m && !(at + 1 < m && p[at + 1] != '\r')) {
            i = at;   /* cannot tell yet: look here again when more comes */
            break;
        }
        i = at + 1;
    }
    if (!end) {
        *scan = skip + i;
        if (m > HTTP_MAX_HEAD) {
            *status = 431;
            return HTTP_ERROR;
        }
        return HTTP_MORE;
    }
    if (end > HTTP_MAX_HEAD) {
        *status = 431;
        return HTTP_ERROR;
    }

    if (ll < 0 || (*status = request_line(p, (size_t)ll, r)) != 0) {
        if (!*status)
            *status = 400;
        return HTTP_ERROR;
    }
    size_t at = next;
    for (;;) {
        long hl = line_at(p + at, end - at, &next);
        if (hl <= 0)
            break;   /* the empty line that ends the head */
        if ((*status = header_line(p + at, (size_t)hl, r)) != 0)
            return HTTP_ERROR;
        at += next;
    }
    if ((*status = semantics(r)) != 0)
        return HTTP_ERROR;
    r->head_done = 1;
    r->head_len = skip + end;
    r->total = r->head_len + r->body_len;
    if (n < r->total)
        return HTTP_MORE;
    r->body = buf + r->head_len;
    return HTTP_DONE;
}

int http_is_request_line(const char *s, size_t len)
{
    size_t i = 0;
    while (i < len && i <= HTTP_MAX_METHOD && s[i] >= 'A' && s[i] <= 'Z')
        i++;
    if (i == 0 || i > HTTP_MAX_METHOD || i + 1 >= len || s[i] != ' ' || s[i + 1] != '/')
        return 0;
    const char *sp = memchr(s + i + 1, ' ', len - i - 1);
    if (!sp)
        return 0;
    size_t v = (size_t)(sp - s) + 1;
    return len - v == 8 && memcmp(s + v, "HTTP/1.", 7) == 0 && s[v + 7] >= '0' &&
           s[v + 7] <= '9';
}

const char *http_header(const http_req *r, const char *name, size_t *len)
{
    for (int k = 0; k < r->nhdr; k++)
        if (name_is(&r->hdr[k], name)) {
            *len = r->hdr[k].valuelen;
            return r->hdr[k].value;
        }
    return NULL;
}

int http_has_token(const char *v, size_t len, const char *tok)
{
    size_t tl = strlen(tok), i = 0;
    while (i < len) {
        while (i < len && (ows(v[i]) || v[i] == ','))
            i++;
        size_t s = i;
        while (i < len && v[i] != ',')
            i++;
        size_t e = i;
        while (e > s && ows(v[e - 1]))
            e--;
        if (e - s == tl && strncasecmp(v + s, tok, tl) == 0)
            return 1;
    }
    return 0;
}

const char *http_query_param(const http_req *r, const char *key, size_t *len)
{
    size_t kl = strlen(key), i = 0;
    const char *q = r->query;
    while (q && i < r->querylen) {
        size_t s = i;
        while (i < r->querylen && q[i] != '&')
            i++;
        if (i - s > kl && q[s + kl] == '=' && memcmp(q + s, key, kl) == 0) {
            *len = i - s - kl - 1;
            return q + s + kl + 1;
        }
        if (i - s == kl && memcmp(q + s, key, kl) == 0) {
            *len = 0;
            return q + s + kl;
        }
        i++;
    }
    return NULL;
}

const char *http_reason(int status)
{
    switch (status) {
    case 100: return "Continue";
    case 200: return "OK";
    case 400: return "Bad Request";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 411: return "Length Required";
    case 413: return "Content Too Large";
    case 414: return "URI Too Long";
    case 415: return "Unsupported Media Type";
    case 417: return "Expectation Failed";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 503: return "Service Unavailable";
    case 505: return "HTTP Version Not Supported";
    default: return "";
    }
}
