#include "faults.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "units.h"

void faults_init(faults *f)
{
    memset(f, 0, sizeof *f);
}

void faults_free(faults *f)
{
    free(f->v);
    memset(f, 0, sizeof *f);
}

size_t faults_clear(faults *f)
{
    size_t n = f->n;
    f->n = 0;
    if (n)
        f->changes++;
    return n;
}

static fault *find(const faults *f, const char *from, const char *to)
{
    for (size_t i = 0; i < f->n; i++)
        if (!strcmp(f->v[i].from, from) && !strcmp(f->v[i].to, to))
            return &f->v[i];
    return NULL;
}

/* Is (names[a], names[b]) one of the spec's pairs?  (As rules.c.) */
static int spec_pair(const rules_spec *s, int a, int b)
{
    int ia = s->island_of[a], ib = s->island_of[b];
    return ia != ib && (!s->oneway || (ia == 0 && ib == 1));
}

/* Copy the kinds of src->set from src into dst. */
static void merge(fault_params *dst, const fault_params *src)
{
    unsigned s = src->set;
    if (s & FAULT_BIT(FAULT_DELAY)) {
        dst->delay_ms = src->delay_ms;
        dst->jitter_ms = src->jitter_ms;
    }
    if (s & FAULT_BIT(FAULT_RATE))
        dst->rate = src->rate;
    if (s & FAULT_BIT(FAULT_RESET)) {
        dst->reset_bytes = src->reset_bytes;
        dst->reset_ms = src->reset_ms;
    }
    if (s & FAULT_BIT(FAULT_SLICE)) {
        dst->slice_bytes = src->slice_bytes;
        dst->slice_gap_ms = src->slice_gap_ms;
    }
    if (s & FAULT_BIT(FAULT_SLOWCLOSE))
        dst->slowclose_ms = src->slowclose_ms;
    dst->set |= s;
}

/* Drop the kinds in mask from k's params (values zeroed). */
static void drop_kinds(fault_params *p, unsigned mask)
{
    fault_params zero = { 0 };
    zero.set = mask & p->set;
    unsigned keep = p->set & ~mask;
    merge(p, &zero);
    p->set = keep;
}

static void remove_at(faults *f, size_t i)
{
    f->v[i] = f->v[--f->n];   /* order among distinct pairs matters only for patterns */
}

int faults_set(faults *f, const rules_spec *s, const fault_params *p, unsigned long owner)
{
    size_t fresh = 0;
    for (int a = 0; a < s->nnames; a++)
        for (int b = 0; b < s->nnames; b++)
            if (spec_pair(s, a, b) && !find(f, s->names[a], s->names[b]))
                fresh++;
    if (f->n + fresh > FAULTS_MAX)
        return -2;
    if (f->n + fresh > f->cap) {
        size_t cap = f->cap ? f->cap : 16;
        while (cap < f->n + fresh)
            cap *= 2;
        fault *v = realloc(f->v, cap * sizeof *v);
        if (!v)
            return -1;
        f->v = v;
        f->cap = cap;
    }
    int changed = 0;
    for (int a = 0; a < s->nnames; a++)
        for (int b = 0; b < s->nnames; b++) {
            if (!spec_pair(s, a, b))
                continue;
            fault *k = find(f, s->names[a], s->names[b]);
            if (!k) {
                k = &f->v[f->n++];
                memset(k, 0, sizeof *k);
                snprintf(k->from, sizeof k->from, "%s", s->names[a]);
                snprintf(k->to, sizeof k->to, "%s", s->names[b]);
            }
            unsigned cover = 0, lasting = 0;
            for (int kind = 0; kind < FAULT_NKINDS; kind++) {
                unsigned bit = FAULT_BIT(kind);
                if (!(p->set & bit))
                    continue;
                if (owner && (k->p.set & bit) && !k->owner[kind])
                    cover |= bit;   /* a lasting value goes aside */
                if (!owner)
                    lasting |= bit; /* a lasting value replaces what was aside */
                k->owner[kind] = owner;
            }
            if (cover) {
                fault_params aside = k->p;
                aside.set = cover;
                merge(&k->saved, &aside);
            }
            drop_kinds(&k->saved, lasting);
            merge(&k->p, p);
            changed++;
        }
    if (changed)
        f->changes++;
    return changed;
}

int faults_clear_spec(faults *f, const rules_spec *s)
{
    int removed = 0;
    for (int a = 0; a < s->nnames; a++)
        for (int b = 0; b < s->nnames; b++) {
            if (!spec_pair(s, a, b))
                continue;
            fault *k = find(f, s->names[a], s->names[b]);
            if (k) {
                remove_at(f, (size_t)(k - f->v));
                removed++;
            }
        }
    if (removed)
        f->changes++;
    return removed;
}

int faults_undo(faults *f, unsigned long owner)
{
    int removed = 0;
    if (!owner)
        return 0;
    for (size_t i = 0; i < f->n;) {
        fault *k = &f->v[i];
        unsigned mask = 0;
        for (int kind = 0; kind < FAULT_NKINDS; kind++)
            if ((k->p.set & FAULT_BIT(kind)) && k->owner[kind] == owner) {
                mask |= FAULT_BIT(kind);
                k->owner[kind] = 0;
                removed++;
            }
        drop_kinds(&k->p, mask);
        fault_params back = k->saved;
        back.set &= mask;
        merge(&k->p, &back);            /* owners of restored kinds are 0 */
        drop_kinds(&k->saved, mask);
        if (!k->p.set)
            remove_at(f, i);
        else
            i++;
    }
    if (removed)
        f->changes++;
    return removed;
}

int faults_spend_reset(faults *f, const char *from, const char *to)
{
    int removed = 0;
    for (size_t i = 0; i < f->n;) {
        fault *k = &f->v[i];
        if ((k->p.set & FAULT_BIT(FAULT_RESET)) && rules_name_match(k->from, from) &&
            rules_name_match(k->to, to)) {
            drop_kinds(&k->p, FAULT_BIT(FAULT_RESET));
            k->owner[FAULT_RESET] = 0;
            removed++;
            if (!k->p.set) {
                remove_at(f, i);
                continue;
            }
        }
        i++;
    }
    if (removed)
        f->changes++;
    return removed;
}

void faults_lookup(const faults *f, const char *from, const char *to, fault_params *out)
{
    memset(out, 0, sizeof *out);
    if (!from || !to || !*from || !*to)
        return;
    /* exact pairs after patterns: the plain name is the more specific */
    for (int pass = 0; pass < 2; pass++)
        for (size_t i = 0; i < f->n; i++) {
            const fault *k = &f->v[i];
            int glob = rules_is_pattern(k->from) || rules_is_pattern(k->to);
            if (glob == !pass && rules_name_match(k->from, from) && rules_name_match(k->to, to))
                merge(out, &k->p);
        }
}

int faults_reset_due(const fault_params *p, uint64_t bytes, long long age_ms)
{
    if (!(p->set & FAULT_BIT(FAULT_RESET)))
        return 0;
    if (p->reset_bytes)
        return bytes >= p->reset_bytes;
    return age_ms >= (long long)p->reset_ms;
}

void faults_params_json(const fault_params *p, sbuf *o)
{
    if (p->set & FAULT_BIT(FAULT_DELAY))
        sbuf_printf(o, ",\"delay_ms\":%u,\"jitter_ms\":%u", p->delay_ms, p->jitter_ms);
    if (p->set & FAULT_BIT(FAULT_RATE))
        sbuf_printf(o, ",\"rate\":%llu", (unsigned long long)p->rate);
    if (p->set & FAULT_BIT(FAULT_RESET)) {
        if (p->reset_bytes)
            sbuf_printf(o, ",\"reset_after_bytes\":%llu", (unsigned long long)p->reset_bytes);
        else
            sbuf_printf(o, ",\"reset_after_ms\":%u", p->reset_ms);
    }
    if (p->set & FAULT_BIT(FAULT_SLICE))
        sbuf_printf(o, ",\"slice_bytes\":%u,\"slice_gap_ms\":%u", p->slice_bytes,
                    p->slice_gap_ms);
    if (p->set & FAULT_BIT(FAULT_SLOWCLOSE))
        sbuf_printf(o, ",\"slowclose_ms\":%u", p->slowclose_ms);
}

void faults_json(const faults *f, sbuf *o)
{
    sbuf_addstr(o, "[");
    for (size_t i = 0; i < f->n; i++) {
        const fault *k = &f->v[i];
        sbuf_addstr(o, i ? ",{\"from\":" : "{\"from\":");
        sbuf_json_str(o, k->from, strlen(k->from));
        sbuf_addstr(o, ",\"to\":");
        sbuf_json_str(o, k->to, strlen(k->to));
        faults_params_json(&k->p, o);
        int timed = 0;
        for (int kind = 0; kind < FAULT_NKINDS; kind++)
            timed |= (k->p.set & FAULT_BIT(kind)) && k->owner[kind];
        if (timed)
            sbuf_addstr(o, ",\"timed\":true");
        sbuf_addstr(o, "}");
    }
    sbuf_addstr(o, "]");
}

/* ---- the grammar --------------------------------------------------------- */

static const char *kind_names[FAULT_NKINDS] = { "DELAY", "RATE", "RESET", "SLICE", "SLOWCLOSE" };

const char *faults_kind_name(fault_kind kind)
{
    return kind >= 0 && kind < FAULT_NKINDS ? kind_names[kind] : "?";
}

static int blank(char c)
{
    return c == ' ' || c == '\t';
}

/* Take the last blank-separated token of text[0..*len): *tok, *toklen;
 * *len shrinks to what is before it (blanks dropped).  0 if none. */
static int pop_token(const char *text, size_t *len, const char **tok, size_t *toklen)
{
    size_t e = *len;
    while (e > 0 && blank(text[e - 1]))
        e--;
    size_t b = e;
    while (b > 0 && !blank(text[b - 1]))
        b--;
    if (b == e)
        return 0;
    *tok = text + b;
    *toklen = e - b;
    while (b > 0 && blank(text[b - 1]))
        b--;
    *len = b;
    return 1;
}

static int word_is(const char *s, size_t n, const char *w)
{
    return n == strlen(w) && strncasecmp(s, w, n) == 0;
}

#define SHOW(n) (int)((n) > 40 ? 40 : (n))

static int bad_duration(const char *what, const char *t, size_t n, char *err, size_t errlen)
{
    snprintf(err, errlen, "%s: '%.*s' is not a duration (like 50ms, 2s, 1m)", what, SHOW(n), t);
    return -1;
}

int faults_parse(fault_kind kind, const char *text, size_t len, rules_spec *spec,
                 fault_params *p, char *err, size_t errlen)
{
    const char *kw = faults_kind_name(kind), *t, *t2;
    size_t n, n2;
    long long ms, ms2;
    uint64_t v;
    memset(p, 0, sizeof *p);
    memset(spec, 0, sizeof *spec);
    if (kind < 0 || kind >= FAULT_NKINDS) {
        snprintf(err, errlen, "no such fault");
        return -1;
    }
    p->set = FAULT_BIT(kind);
    switch (kind) {
    case FAULT_DELAY:
        if (!pop_token(text, &len, &t, &n)) {
            snprintf(err, errlen, "DELAY needs islands and a duration");
            return -1;
        }
        {
            size_t keep = len;
            if (pop_token(text, &len, &t2, &n2) && word_is(t2, n2, "JITTER")) {
                if (units_duration(t, n, &ms2) < 0)
                    return bad_duration("JITTER", t, n, err, errlen);
                if (!pop_token(text, &len, &t, &n)) {
                    snprintf(err, errlen, "DELAY needs islands and a duration");
                    return -1;
                }
                p->jitter_ms = (uint32_t)(ms2 > FAULTS_MAX_DELAY_MS ? FAULTS_MAX_DELAY_MS + 1 : ms2);
            } else {
                len = keep;
            }
        }
        if (units_duration(t, n, &ms) < 0)
            return bad_duration("DELAY", t, n, err, errlen);
        if (ms > FAULTS_MAX_DELAY_MS || p->jitter_ms > FAULTS_MAX_DELAY_MS) {
            snprintf(err, errlen, "DELAY and JITTER are at most %d minutes",
                     FAULTS_MAX_DELAY_MS / 60000);
            return -1;
        }
        p->delay_ms = (uint32_t)ms;
        break;
    case FAULT_RATE:
        if (!pop_token(text, &len, &t, &n) || units_rate(t, n, &v) < 0) {
            snprintf(err, errlen, "RATE needs islands and a rate (like 1MB/s, 512KB/s, 10Mbit/s)");
            return -1;
        }
        p->rate = v;
        break;
    case FAULT_RESET:
        if (!pop_token(text, &len, &t, &n) || !pop_token(text, &len, &t2, &n2) ||
            !word_is(t2, n2, "AFTER")) {
            snprintf(err, errlen, "RESET needs islands and AFTER <size or duration>");
            return -1;
        }
        if (units_size(t, n, &v) == 0 && v > 0) {
            p->reset_bytes = v;
        } else if (units_duration(t, n, &ms) == 0 && ms > 0) {
            p->reset_ms = (uint32_t)ms;
        } else {
            snprintf(err, errlen, "RESET AFTER: '%.*s' is neither a size (64KB) nor a duration (3s)",
                     SHOW(n), t);
            return -1;
        }
        break;
    case FAULT_SLICE:
        if (!pop_token(text, &len, &t2, &n2) || !pop_token(text, &len, &t, &n)) {
            snprintf(err, errlen, "SLICE needs islands, a size and a gap (like 8B 1ms)");
            return -1;
        }
        if (units_size(t, n, &v) < 0 || v == 0 || v > 1024 * 1024) {
            snprintf(err, errlen, "SLICE: '%.*s' is not a size from 1B to 1MiB", SHOW(n), t);
            return -1;
        }
        if (units_duration(t2, n2, &ms) < 0)
            return bad_duration("SLICE", t2, n2, err, errlen);
        if (ms > FAULTS_MAX_SLICE_GAP_MS) {
            snprintf(err, errlen, "SLICE: the gap is at most %d s", FAULTS_MAX_SLICE_GAP_MS / 1000);
            return -1;
        }
        p->slice_bytes = (uint32_t)v;
        p->slice_gap_ms = (uint32_t)ms;
        break;
    case FAULT_SLOWCLOSE:
        if (!pop_token(text, &len, &t, &n))
            return bad_duration("SLOWCLOSE", "", 0, err, errlen);
        if (units_duration(t, n, &ms) < 0)
            return bad_duration("SLOWCLOSE", t, n, err, errlen);
        if (ms > FAULTS_MAX_DELAY_MS) {
            snprintf(err, errlen, "SLOWCLOSE is at most %d minutes", FAULTS_MAX_DELAY_MS / 60000);
            return -1;
        }
        p->slowclose_ms = (uint32_t)ms;
        break;
    default:
        break;
    }
    char serr[200];
    if (rules_parse_spec(text, len, spec, serr, sizeof serr) < 0) {
        snprintf(err, errlen, "%s%s%s", strncmp(serr, "needs", 5) ? "" : kw,
                 strncmp(serr, "needs", 5) ? "" : " ", serr);
        return -1;
    }
    return 0;
}
