#include "rules.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void rules_init(rules *r)
{
    memset(r, 0, sizeof *r);
}

void rules_free(rules *r)
{
    free(r->v);
    free(r->slot);
    memset(r, 0, sizeof *r);
}

static size_t pair_hash(const char *from, const char *to)
{
    size_t h = 1469598103934665603ULL;
    for (const unsigned char *p = (const unsigned char *)from; *p; p++)
        h = (h ^ *p) * 1099511628211ULL;
    h = (h ^ 0xff) * 1099511628211ULL;
    for (const unsigned char *p = (const unsigned char *)to; *p; p++)
        h = (h ^ *p) * 1099511628211ULL;
    return h;
}

/* The slot holding (from, to), or if absent the first free slot on its
 * probe path (*found tells which).  nslot is a power of two, never full. */
static size_t find_slot(const rules *r, const char *from, const char *to, int *found)
{
    size_t mask = r->nslot - 1, i = pair_hash(from, to) & mask, free_at = (size_t)-1;
    for (;; i = (i + 1) & mask) {
        int k = r->slot[i];
        if (k == -1) {
            *found = 0;
            return free_at != (size_t)-1 ? free_at : i;
        }
        if (k == -2) {
            if (free_at == (size_t)-1)
                free_at = i;
        } else if (!strcmp(r->v[k].from, from) && !strcmp(r->v[k].to, to)) {
            *found = 1;
            return i;
        }
    }
}

/* Rebuild the index with room for at least `want` pairs at load <= 1/2. */
static int reindex(rules *r, size_t want)
{
    size_t n = 64;
    while (n < want * 2)
        n *= 2;
    int *slot = malloc(n * sizeof *slot);
    if (!slot)
        return -1;
    free(r->slot);
    r->slot = slot;
    r->nslot = n;
    r->ndeleted = 0;
    for (size_t i = 0; i < n; i++)
        slot[i] = -1;
    for (size_t k = 0; k < r->n; k++) {
        int found;
        slot[find_slot(r, r->v[k].from, r->v[k].to, &found)] = (int)k;
    }
    return 0;
}

static size_t alive_len(const char *s)
{
    const char *at = strchr(s, '@');
    return at ? (size_t)(at - s) : strlen(s);
}

int rules_name_match(const char *p, const char *x)
{
    if (strcmp(p, "*") == 0)
        return 1;
    if (strchr(p, '@') && strchr(x, '@'))
        return strcmp(p, x) == 0;
    size_t a = alive_len(p), b = alive_len(x);
    return a == b && memcmp(p, x, a) == 0;
}

int rules_blocked(const rules *r, const char *from, const char *to)
{
    if (!from || !to || !*from || !*to)
        return 0;
    for (size_t i = 0; i < r->n; i++)
        if (rules_name_match(r->v[i].from, from) && rules_name_match(r->v[i].to, to))
            return 1;
    return 0;
}

int rules_add(rules *r, const char *from, const char *to)
{
    if ((r->n + r->ndeleted + 1) * 2 > r->nslot && reindex(r, r->n + 1) < 0)
        return -1;
    int found;
    size_t at = find_slot(r, from, to, &found);
    if (found)
        return 0;
    if (r->n >= RULES_MAX)
        return -2;
    if (r->n == r->cap) {
        size_t cap = r->cap ? r->cap * 2 : 16;
        rule *v = realloc(r->v, cap * sizeof *v);
        if (!v)
            return -1;
        r->v = v;
        r->cap = cap;
    }
    snprintf(r->v[r->n].from, sizeof r->v[r->n].from, "%s", from);
    snprintf(r->v[r->n].to, sizeof r->v[r->n].to, "%s", to);
    if (r->slot[at] == -2)
        r->ndeleted--;
    r->slot[at] = (int)r->n++;
    return 1;
}

int rules_remove(rules *r, const char *from, const char *to)
{
    if (r->n == 0)
        return 0;
    int found;
    size_t at = find_slot(r, from, to, &found);
    if (!found)
        return 0;
    size_t k = (size_t)r->slot[at];
    r->slot[at] = -2;
    r->ndeleted++;
    if (k != --r->n) {
        /* the last pair moves into the hole; its slot follows */
        r->v[k] = r->v[r->n];
        size_t moved = find_slot(r, r->v[k].from, r->v[k].to, &found);
        r->slot[moved] = (int)k;
    }
    return 1;
}

void rules_clear(rules *r)
{
    r->n = 0;
    r->ndeleted = 0;
    for (size_t i = 0; i < r->nslot; i++)
        r->slot[i] = -1;
}

int rules_valid_name(const char *s, size_t n)
{
    if (n == 0 || n > RULES_MAX_NAME)
        return 0;
    int ats = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c <= ' ' || c == 0x7f || c == ',' || c == '>' || c == '*')
            return 0;
        if (c == '@' && (++ats > 1 || i == 0 || i == n - 1))
            return 0;
    }
    return 1;
}

/* Parse one island "a,b,c" into spec with island index k. */
static int parse_island(const char *s, size_t n, int k, rules_spec *spec, char *err, size_t errlen)
{
    size_t i = 0;
    for (;;) {
        size_t j = i;
        while (j < n && s[j] != ',')
            j++;
        if (j == i) {
            snprintf(err, errlen, "empty island or empty name in '%.*s'", (int)n, s);
            return -1;
        }
        if (!rules_valid_name(s + i, j - i)) {
            snprintf(err, errlen, "invalid node name '%.*s'", (int)(j - i), s + i);
            return -1;
        }
        for (int m = 0; m < spec->nnames; m++)
            if (strlen(spec->names[m]) == j - i && !memcmp(spec->names[m], s + i, j - i)) {
                snprintf(err, errlen, spec->island_of[m] == k ? "%.*s is named twice"
                                                              : "%.*s is in two islands",
                         (int)(j - i), s + i);
                return -1;
            }
        if (spec->nnames >= RULES_MAX_SPEC_NAMES) {
            snprintf(err, errlen, "too many names");
            return -1;
        }
        memcpy(spec->names[spec->nnames], s + i, j - i);
        spec->names[spec->nnames][j - i] = 0;
        spec->island_of[spec->nnames++] = k;
        if (j == n)
            return 0;
        i = j + 1;
        if (i == n) {
            snprintf(err, errlen, "empty name at the end of '%.*s'", (int)n, s);
            return -1;
        }
    }
}

/* Split s[0..n) into blank-separated tokens and parse each as an island,
 * numbering them from *k on. */
static int parse_islands(const char *s, size_t n, int *k, rules_spec *spec, char *err,
                         size_t errlen)
{
    size_t i = 0;
    while (i < n) {
        while (i < n && (s[i] == ' ' || s[i] == '\t'))
            i++;
        if (i == n)
            break;
        size_t j = i;
        while (j < n && s[j] != ' ' && s[j] != '\t')
            j++;
        if (parse_island(s + i, j - i, *k, spec, err, errlen) < 0)
            return -1;
        (*k)++;
        i = j;
    }
    return 0;
}

int rules_parse_spec(const char *text, size_t len, rules_spec *spec, char *err, size_t errlen)
{
    memset(spec, 0, sizeof *spec);
    const char *arrow = NULL;
    for (size_t i = 0; i + 1 < len; i++)
        if (text[i] == '-' && text[i + 1] == '>') {
            if (arrow) {
                snprintf(err, errlen, "more than one '->'");
                return -1;
            }
            arrow = text + i;
        }
    int k = 0;
    if (!arrow) {
        if (parse_islands(text, len, &k, spec, err, errlen) < 0)
            return -1;
        if (k < 2) {
            snprintf(err, errlen, "needs at least two islands");
            return -1;
        }
        spec->nislands = k;
        return 0;
    }
    /* one way: exactly one island on each side */
    spec->oneway = 1;
    size_t ll = (size_t)(arrow - text);
    if (parse_islands(text, ll, &k, spec, err, errlen) < 0)
        return -1;
    if (k != 1) {
        snprintf(err, errlen, k ? "one island on each side of '->' (use commas)"
                                : "empty island before '->'");
        return -1;
    }
    if (parse_islands(arrow + 2, len - ll - 2, &k, spec, err, errlen) < 0)
        return -1;
    if (k != 2) {
        snprintf(err, errlen, k == 1 ? "empty island after '->'"
                                     : "one island on each side of '->' (use commas)");
        return -1;
    }
    spec->nislands = 2;
    return 0;
}

int rules_apply(rules *r, const rules_spec *s, int cut)
{
    if (cut) {
        size_t pairs = 0;
        for (int a = 0; a < s->nnames; a++)
            for (int b = 0; b < s->nnames; b++)
                if (s->island_of[a] != s->island_of[b] &&
                    (!s->oneway || (s->island_of[a] == 0 && s->island_of[b] == 1)))
                    pairs++;
        if (r->n + pairs > RULES_MAX) {
            /* maybe most are there already: count only the new ones */
            size_t fresh = 0;
            for (int a = 0; a < s->nnames; a++)
                for (int b = 0; b < s->nnames; b++) {
                    if (s->island_of[a] == s->island_of[b] ||
                        (s->oneway && !(s->island_of[a] == 0 && s->island_of[b] == 1)))
                        continue;
                    int found = 0;
                    if (r->nslot)
                        find_slot(r, s->names[a], s->names[b], &found);
                    fresh += !found;
                }
            if (r->n + fresh > RULES_MAX)
                return -2;
        }
    }
    int changed = 0;
    for (int a = 0; a < s->nnames; a++)
        for (int b = 0; b < s->nnames; b++) {
            if (s->island_of[a] == s->island_of[b])
                continue;
            if (s->oneway && !(s->island_of[a] == 0 && s->island_of[b] == 1))
                continue;
            int rc = cut ? rules_add(r, s->names[a], s->names[b])
                         : rules_remove(r, s->names[a], s->names[b]);
            if (rc < 0)
                return -1;
            changed += rc;
        }
    return changed;
}

void rules_json(const rules *r, sbuf *out)
{
    sbuf_addstr(out, "[");
    for (size_t i = 0; i < r->n; i++) {
        sbuf_addstr(out, i ? ",{\"from\":" : "{\"from\":");
        sbuf_json_str(out, r->v[i].from, strlen(r->v[i].from));
        sbuf_addstr(out, ",\"to\":");
        sbuf_json_str(out, r->v[i].to, strlen(r->v[i].to));
        sbuf_addstr(out, "}");
    }
    sbuf_addstr(out, "]");
}
