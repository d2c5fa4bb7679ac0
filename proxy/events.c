#include "events.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

void events_init(events *e, long long t0_ms)
{
    memset(e, 0, sizeof *e);
    e->next_seq = 1;
    e->t0_ms = t0_ms;
}

int events_open_file(events *e, const char *path)
{
    if (e->file)
        fclose(e->file);
    e->file = fopen(path, "ae");
    return e->file ? 0 : -1;
}

void events_free(events *e)
{
    for (int i = 0; i < EVENTS_KEEP; i++)
        free(e->ring[i]);
    if (e->file)
        fclose(e->file);
    memset(e, 0, sizeof *e);
}

void events_add(events *e, long long now_ms, const char *type, const char *fmt, ...)
{
    sbuf b = { 0 };
    sbuf_printf(&b, "{\"seq\":%llu,\"t\":%lld,\"type\":\"%s\"", e->next_seq, now_ms - e->t0_ms,
                type);
    if (fmt && *fmt) {
        /* measured first: a cut-off member list would not be JSON */
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(NULL, 0, fmt, ap);
        va_end(ap);
        char *tmp = n > 0 ? malloc((size_t)n + 1) : NULL;
        if (n > 0 && !tmp) {
            sbuf_free(&b);
            return;
        }
        if (tmp) {
            va_start(ap, fmt);
            vsnprintf(tmp, (size_t)n + 1, fmt, ap);
            va_end(ap);
            sbuf_addstr(&b, ",");
            sbuf_add(&b, tmp, (size_t)n);
            free(tmp);
        }
    }
    sbuf_addstr(&b, "}");
    if (b.oom) {
        sbuf_free(&b);
        return;
    }
    size_t slot = (size_t)(e->next_seq % EVENTS_KEEP);
    free(e->ring[slot]);
    e->ring[slot] = b.p;
    e->next_seq++;
    if (e->file) {
        fprintf(e->file, "%s\n", b.p);
        fflush(e->file);
    }
    if (e->listener)
        e->listener(e->listener_ctx, e->next_seq - 1, b.p);
}

void events_listen(events *e, events_listener *fn, void *ctx)
{
    e->listener = fn;
    e->listener_ctx = ctx;
}

void events_json(const events *e, unsigned long long after, sbuf *out)
{
    unsigned long long first = e->next_seq > EVENTS_KEEP ? e->next_seq - EVENTS_KEEP : 1;
    if (after >= first)
        first = after < e->next_seq ? after + 1 : e->next_seq;   /* no overflow */
    sbuf_addstr(out, "[");
    for (unsigned long long s = first; s < e->next_seq; s++) {
        if (s != first)
            sbuf_addstr(out, ",");
        sbuf_addstr(out, e->ring[s % EVENTS_KEEP]);
    }
    sbuf_addstr(out, "]");
}

const char *events_q(const char *s)
{
    return events_qn(s, strlen(s));
}

const char *events_qn(const char *s, size_t n)
{
    static char bufs[6][6 * 1024 + 3];  /* worst case: every byte as \u00XX */
    static int k;
    char *out = bufs[k];
    k = (k + 1) % 6;
    sbuf b = { 0 };
    sbuf_json_str(&b, s, n > 1024 ? 1024 : n);
    snprintf(out, sizeof bufs[0], "%s", b.oom || !b.p ? "null" : b.p);
    sbuf_free(&b);
    return out;
}
