#include "nemesis.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "units.h"

static const char *shape_names[NEM_NSHAPES] = {
    "halves", "random-halves", "majorities-ring", "bridge", "random-isolate", "random-one-way",
};

const char *nemesis_shape_name(nemesis_shape s)
{
    return s >= 0 && s < NEM_NSHAPES ? shape_names[s] : "?";
}

int nemesis_shape_parse(const char *s, size_t n)
{
    for (int k = 0; k < NEM_NSHAPES; k++)
        if (strlen(shape_names[k]) == n && strncasecmp(shape_names[k], s, n) == 0)
            return k;
    return -1;
}

uint64_t nemesis_rand(uint64_t *s)
{
    uint64_t z = (*s += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

/* A draw in 0..bound-1 without modulo bias (bound >= 1). */
static int draw(uint64_t *rng, int bound)
{
    uint64_t lim = UINT64_MAX - UINT64_MAX % (uint64_t)bound, v;
    do
        v = nemesis_rand(rng);
    while (v >= lim);
    return (int)(v % (uint64_t)bound);
}

/* order[] = 0..n-1, shuffled (Fisher-Yates) unless rng is NULL. */
static void order_of(int n, uint64_t *rng, int *order)
{
    for (int i = 0; i < n; i++)
        order[i] = i;
    if (!rng)
        return;
    for (int i = n - 1; i > 0; i--) {
        int j = draw(rng, i + 1), t = order[i];
        order[i] = order[j];
        order[j] = t;
    }
}

/* Block every pair across islands (island_of set), both ways. */
static void block_islands(nemesis_plan *p)
{
    for (int i = 0; i < p->n; i++)
        for (int j = 0; j < p->n; j++)
            p->blocked[i][j] = p->island_of[i] != p->island_of[j];
}

static int too_few(nemesis_shape s, int n, int min, char *err, size_t errlen)
{
    snprintf(err, errlen, "%s needs at least %d registered nodes (there %s %d)",
             nemesis_shape_name(s), min, n == 1 ? "is" : "are", n);
    return -1;
}

int nemesis_make(nemesis_shape shape, int n, uint64_t *rng, nemesis_plan *p, char *err,
                 size_t errlen)
{
    static const int min_nodes[NEM_NSHAPES] = { 2, 2, 4, 3, 2, 2 };
    int order[NEMESIS_MAX_NODES];
    memset(p, 0, sizeof *p);
    p->shape = shape;
    p->n = n;
    p->bridge = -1;
    if (shape < 0 || shape >= NEM_NSHAPES) {
        snprintf(err, errlen, "no such shape");
        return -1;
    }
    if (n > NEMESIS_MAX_NODES) {
        snprintf(err, errlen, "at most %d nodes", NEMESIS_MAX_NODES);
        return -1;
    }
    if (n < min_nodes[shape])
        return too_few(shape, n, min_nodes[shape], err, errlen);
    switch (shape) {
    case NEM_HALVES:
    case NEM_RANDOM_HALVES:
        order_of(n, shape == NEM_RANDOM_HALVES ? rng : NULL, order);
        for (int k = 0; k < n; k++)
            p->island_of[order[k]] = k >= n / 2;
        p->nislands = 2;
        block_islands(p);
        break;
    case NEM_RANDOM_ISOLATE: {
        int lone = draw(rng, n);
        for (int k = 0; k < n; k++)
            p->island_of[k] = k != lone;
        p->nislands = 2;
        block_islands(p);
        break;
    }
    case NEM_BRIDGE:
        for (int k = 0; k < n; k++)
            p->island_of[k] = k < n / 2 ? 0 : k == n / 2 ? 2 : 1;
        p->bridge = n / 2;
        p->nislands = 3;
        for (int i = 0; i < n; i++)
            for (int j = 0; j < n; j++)
                p->blocked[i][j] = p->island_of[i] + p->island_of[j] == 1;
        break;
    case NEM_MAJORITIES_RING: {
        order_of(n, rng, order);
        int pos[NEMESIS_MAX_NODES], k = 0;
        while (2 * k + 1 <= n / 2)
            k++;
        for (int i = 0; i < n; i++)
            pos[order[i]] = i;
        for (int i = 0; i < n; i++)
            for (int j = 0; j < n; j++) {
                int d = pos[i] > pos[j] ? pos[i] - pos[j] : pos[j] - pos[i];
                if (n - d < d)
                    d = n - d;
                p->blocked[i][j] = d > k;
            }
        break;
    }
    case NEM_RANDOM_ONE_WAY: {
        order_of(n, rng, order);
        int cut = 1 + draw(rng, n - 1);
        for (int i = 0; i < n; i++)
            p->island_of[order[i]] = i >= cut;
        p->nislands = 2;
        for (int i = 0; i < n; i++)
            for (int j = 0; j < n; j++)
                p->blocked[i][j] = p->island_of[i] == 0 && p->island_of[j] == 1;
        break;
    }
    default:
        break;
    }
    return 0;
}

static void name_list(const nemesis_plan *p, const char *const *names, int island, sbuf *o)
{
    sbuf_addstr(o, "[");
    for (int i = 0, first = 1; i < p->n; i++)
        if (p->island_of[i] == island) {
            if (!first)
                sbuf_addstr(o, ",");
            first = 0;
            sbuf_json_str(o, names[i], strlen(names[i]));
        }
    sbuf_addstr(o, "]");
}

void nemesis_plan_json(const nemesis_plan *p, const char *const *names, sbuf *o)
{
    sbuf_printf(o, "\"shape\":\"%s\"", nemesis_shape_name(p->shape));
    switch (p->shape) {
    case NEM_MAJORITIES_RING:
        sbuf_addstr(o, ",\"sees\":{");
        for (int i = 0; i < p->n; i++) {
            if (i)
                sbuf_addstr(o, ",");
            sbuf_json_str(o, names[i], strlen(names[i]));
            sbuf_addstr(o, ":[");
            for (int j = 0, first = 1; j < p->n; j++)
                if (!p->blocked[i][j]) {
                    if (!first)
                        sbuf_addstr(o, ",");
                    first = 0;
                    sbuf_json_str(o, names[j], strlen(names[j]));
                }
            sbuf_addstr(o, "]");
        }
        sbuf_addstr(o, "}");
        break;
    case NEM_BRIDGE:
        sbuf_addstr(o, ",\"islands\":[");
        name_list(p, names, 0, o);
        sbuf_addstr(o, ",");
        name_list(p, names, 1, o);
        sbuf_addstr(o, "],\"bridge\":");
        sbuf_json_str(o, names[p->bridge], strlen(names[p->bridge]));
        break;
    case NEM_RANDOM_ONE_WAY:
        sbuf_addstr(o, ",\"from\":");
        name_list(p, names, 0, o);
        sbuf_addstr(o, ",\"to\":");
        name_list(p, names, 1, o);
        break;
    default:
        sbuf_addstr(o, ",\"islands\":[");
        name_list(p, names, 0, o);
        sbuf_addstr(o, ",");
        name_list(p, names, 1, o);
        sbuf_addstr(o, "]");
        break;
    }
    sbuf_addstr(o, ",\"blocked\":[");
    for (int i = 0, first = 1; i < p->n; i++)
        for (int j = 0; j < p->n; j++)
            if (p->blocked[i][j]) {
                sbuf_addstr(o, first ? "[" : ",[");
                first = 0;
                sbuf_json_str(o, names[i], strlen(names[i]));
                sbuf_addstr(o, ",");
                sbuf_json_str(o, names[j], strlen(names[j]));
                sbuf_addstr(o, "]");
            }
    sbuf_addstr(o, "]");
}

static int word_is(const char *s, size_t n, const char *w)
{
    return n == strlen(w) && strncasecmp(s, w, n) == 0;
}

#define NEM_MAX_TOKENS 12

int nemesis_parse(const char *text, size_t len, nemesis_cmd *c, char *err, size_t errlen)
{
    const char *tok[NEM_MAX_TOKENS];
    size_t tl[NEM_MAX_TOKENS];
    int nt = 0;
    memset(c, 0, sizeof *c);
    for (size_t i = 0; i < len;) {
        while (i < len && (text[i] == ' ' || text[i] == '\t'))
            i++;
        if (i == len)
            break;
        size_t j = i;
        while (j < len && text[j] != ' ' && text[j] != '\t')
            j++;
        if (nt == NEM_MAX_TOKENS) {
            snprintf(err, errlen, "too many words");
            return -1;
        }
        tok[nt] = text + i;
        tl[nt++] = j - i;
        i = j;
    }
    if (nt == 0) {
        snprintf(err, errlen, "needs SHAPE, START or STOP");
        return -1;
    }
    if (word_is(tok[0], tl[0], "STOP")) {
        if (nt != 1) {
            snprintf(err, errlen, "STOP takes nothing more");
            return -1;
        }
        c->op = NEM_CMD_STOP;
        return 0;
    }
    if (word_is(tok[0], tl[0], "SHAPE"))
        c->op = NEM_CMD_SHAPE;
    else if (word_is(tok[0], tl[0], "START"))
        c->op = NEM_CMD_START;
    else {
        snprintf(err, errlen, "needs SHAPE, START or STOP, not '%.*s'",
                 (int)(tl[0] > 40 ? 40 : tl[0]), tok[0]);
        return -1;
    }
    int sh = nt > 1 ? nemesis_shape_parse(tok[1], tl[1]) : -1;
    if (sh < 0) {
        snprintf(err, errlen, "needs a shape: halves, random-halves, majorities-ring, bridge, "
                              "random-isolate or random-one-way");
        return -1;
    }
    c->shape = (nemesis_shape)sh;
    int seen_every = 0, seen_heal = 0, seen_for = 0;
    for (int k = 2; k < nt; k += 2) {
        if (k + 1 >= nt) {
            snprintf(err, errlen, "'%.*s' needs a value", (int)(tl[k] > 40 ? 40 : tl[k]), tok[k]);
            return -1;
        }
        const char *v = tok[k + 1];
        size_t vn = tl[k + 1];
        long long ms;
        if (word_is(tok[k], tl[k], "SEED") && !c->has_seed) {
            uint64_t s = 0;
            if (vn == 0 || vn > 20) {
                snprintf(err, errlen, "SEED takes a number below 2^64");
                return -1;
            }
            for (size_t i = 0; i < vn; i++) {
                if (v[i] < '0' || v[i] > '9' || s > (UINT64_MAX - (uint64_t)(v[i] - '0')) / 10) {
                    snprintf(err, errlen, "SEED takes a number below 2^64");
                    return -1;
                }
                s = s * 10 + (uint64_t)(v[i] - '0');
            }
            c->seed = s;
            c->has_seed = 1;
            continue;
        }
        int *seen = word_is(tok[k], tl[k], "EVERY") ? &seen_every
                  : word_is(tok[k], tl[k], "HEAL")  ? &seen_heal
                  : word_is(tok[k], tl[k], "FOR")   ? &seen_for : NULL;
        if (!seen || *seen || (c->op == NEM_CMD_SHAPE && seen != &seen_for)) {
            snprintf(err, errlen, "unexpected '%.*s'", (int)(tl[k] > 40 ? 40 : tl[k]), tok[k]);
            return -1;
        }
        if (units_duration(v, vn, &ms) < 0 || ms == 0) {
            snprintf(err, errlen, "%.*s: '%.*s' is not a duration above 0", (int)tl[k], tok[k],
                     (int)(vn > 40 ? 40 : vn), v);
            return -1;
        }
        *seen = 1;
        if (seen == &seen_every)
            c->every_ms = ms;
        else if (seen == &seen_heal)
            c->heal_ms = ms;
        else
            c->for_ms = ms;
    }
    if (c->op == NEM_CMD_START) {
        if (!seen_every || !seen_heal) {
            snprintf(err, errlen, "START needs EVERY <duration> HEAL <duration>");
            return -1;
        }
        if (c->every_ms < NEMESIS_MIN_EVERY_MS || c->heal_ms >= c->every_ms) {
            snprintf(err, errlen, "EVERY is at least %d ms and HEAL shorter than EVERY",
                     NEMESIS_MIN_EVERY_MS);
            return -1;
        }
    }
    return 0;
}
