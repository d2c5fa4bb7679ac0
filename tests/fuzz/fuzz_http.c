/* libFuzzer target: the HTTP side of the control port.  The input is what an
 * HTTP client sends on one connection: requests are parsed one after the
 * other with http_parse() (as the daemon does with pipelining), each prefix
 * fed again with the carried scan position must give what a fresh parse
 * gives, and every body goes through http_body_args() for each kind.  The
 * whole input is also tried as a JSON body directly. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "http.h"
#include "http_body.h"
#include "rules.h"
#include "sbuf.h"
#include "fuzz_util.h"

static void check_args(http_body_kind kind, const char *s, size_t n, const sbuf *a)
{
    char err[128];
    memset(err, 0x55, sizeof err);
    sbuf out = { 0 };
    sbuf_addstr(&out, "X ");
    int rc = http_body_args(s, n, kind, &out, err, sizeof err);
    FZ_CHECK(rc == 0 || rc == -1, "rc %d", rc);
    if (rc < 0) {
        FZ_CHECK(memchr(err, 0, sizeof err) && err[0], "no error message");
        FZ_CHECK(strcmp(sbuf_str(&out), "X ") == 0, "args changed on error");
        sbuf_free(&out);
        return;
    }
    const char *args = out.p + 2;
    size_t al = out.len - 2;
    FZ_CHECK(al > 0, "empty arguments");
    for (size_t i = 0; i < al; i++)
        FZ_CHECK((unsigned char)args[i] > 0x20 || (args[i] == ' ' && kind == HTTP_BODY_SPEC),
                 "byte 0x%02x in arguments", (unsigned char)args[i]);
    if (kind == HTTP_BODY_NODE)
        FZ_CHECK(rules_valid_name(args, al), "node '%.*s' invalid", (int)al, args);
    if (kind == HTTP_BODY_SPEC) {
        /* every name between separators is valid: nothing was smuggled */
        size_t i = 0;
        while (i < al) {
            size_t j = i;
            while (j < al && args[j] != ',' && args[j] != ' ')
                j++;
            int arrow = j - i == 2 && args[i] == '-' && args[i + 1] == '>';
            FZ_CHECK(arrow || rules_valid_name(args + i, j - i), "name '%.*s' invalid",
                     (int)(j - i), args + i);
            i = j + 1;
        }
    }
    (void)a;
    sbuf_free(&out);
}

static void check_body(const char *s, size_t n)
{
    check_args(HTTP_BODY_SPEC, s, n, NULL);
    check_args(HTTP_BODY_NODE, s, n, NULL);
    check_args(HTTP_BODY_MODE, s, n, NULL);
}

/* One parse of p[0..n) from a fresh start. */
static int fresh(const char *p, size_t n, http_req *r, int *status)
{
    size_t scan = 0;
    return http_parse(p, n, &scan, r, status);
}

static void check_request(const char *p, size_t n, const http_req *r)
{
    FZ_CHECK(r->total <= n && r->head_len <= r->total, "total %zu head %zu of %zu", r->total,
             r->head_len, n);
    FZ_CHECK(r->body_len <= HTTP_MAX_BODY, "body %zu", r->body_len);
    FZ_CHECK(r->total == r->head_len + r->body_len, "total is not head + body");
    FZ_CHECK(r->pathlen >= 1 && r->path[0] == '/' && r->path >= p && r->path + r->pathlen <= p + n,
             "path");
    FZ_CHECK(!r->query || (r->query == r->path + r->pathlen + 1 && r->query[-1] == '?'), "query");
    FZ_CHECK(r->method[0] && strlen(r->method) <= HTTP_MAX_METHOD, "method");
    FZ_CHECK(r->nhdr >= 0 && r->nhdr <= HTTP_MAX_HEADERS, "nhdr %d", r->nhdr);
    for (int k = 0; k < r->nhdr; k++) {
        const http_hdr *h = &r->hdr[k];
        FZ_CHECK(h->name >= p && h->value + h->valuelen <= p + r->head_len && h->namelen > 0,
                 "header %d outside the head", k);
        for (size_t i = 0; i < h->valuelen; i++)
            FZ_CHECK((unsigned char)h->value[i] >= 0x20 || h->value[i] == '\t', "control char in value");
    }
    FZ_CHECK(r->body == p + r->head_len, "body pointer");
    /* the request line of a whole request is what the control port takes
     * for HTTP: the two functions agree */
    const char *line = r->path - strlen(r->method) - 1;
    const char *lf = memchr(line, '\n', (size_t)(p + n - line));
    FZ_CHECK(lf, "no end of request line");
    size_t ll = (size_t)(lf - line);
    if (ll && line[ll - 1] == '\r')
        ll--;
    FZ_CHECK(http_is_request_line(line, ll), "request line '%.*s' not recognised", (int)ll, line);
    if (r->body_len)
        check_body(r->body, r->body_len);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t *buf = fz_dup(data, size);
    const char *p = (const char *)buf;
    size_t left = size;
    int requests = 0;
    while (left && requests < 64) {
        http_req r, r2;
        int st, st2;
        /* the same input fed in three growing prefixes, scan carried */
        size_t scan = 0;
        size_t cut1 = left / 3, cut2 = 2 * left / 3;
        size_t cuts[3] = { cut1, cut2, left };
        int rc = HTTP_MORE;
        for (int k = 0; k < 3; k++) {
            fz_limit(buf, (size_t)(p - (const char *)buf) + cuts[k], size);
            rc = http_parse(p, cuts[k], &scan, &r, &st);
            int rc2 = fresh(p, cuts[k], &r2, &st2);
            fz_unlimit(buf, size);
            FZ_CHECK(rc == rc2 && (rc != HTTP_ERROR || st == st2) &&
                     (rc != HTTP_DONE || r.total == r2.total),
                     "prefix %zu: carried scan gave %d/%d, fresh %d/%d", cuts[k], rc, st, rc2, st2);
            FZ_CHECK(scan <= cuts[k], "scan %zu past %zu", scan, cuts[k]);
            if (rc != HTTP_MORE)
                break;
        }
        if (rc == HTTP_ERROR) {
            FZ_CHECK(st >= 400 && st <= 505 && http_reason(st)[0], "status %d", st);
            break;
        }
        if (rc == HTTP_MORE) {
            if (r.head_done)
                FZ_CHECK(r.total > left, "need more, yet %zu of %zu there", r.total, left);
            break;
        }
        check_request(p, left, &r);
        FZ_CHECK(r.total > 0, "empty request consumed");
        p += r.total;
        left -= r.total;
        requests++;
    }
    check_body((const char *)buf, size);
    free(buf);
    return 0;
}
