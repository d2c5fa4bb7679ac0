#include "rules.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

void rules_init(rules *r)
{
    memset(r, 0, sizeof *r);
}

void rules_free(rules *r)
{
    for (size_t k = 0; k < r->n; k++)
        free(r->v[k].except);
    free(r->v);
    free(r->slot);
    free(r->glob);
    memset(r, 0, sizeof *r);
}

static size_t alive_len(const char *s)
{
    const char *at = strchr(s, '@');
    return at ? (size_t)(at - s) : strlen(s);
}

/* FNV-1a over the alive parts only: every pair a name can match through
 * the index (its own host's or any host's) lies on that name's probe path. */
static size_t pair_hash(const char *from, const char *to)
{
    size_t h = 1469598103934665603ULL;
    for (size_t i = 0, n = alive_len(from); i < n; i++)
        h = (h ^ (unsigned char)from[i]) * 1099511628211ULL;
    h = (h ^ 0xff) * 1099511628211ULL;
    for (size_t i = 0, n = alive_len(to); i < n; i++)
        h = (h ^ (unsigned char)to[i]) * 1099511628211ULL;
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

/* Is (from, to) in the set? */
static int present(const rules *r, const char *from, const char *to)
{
    int found = 0;
    if (r->nslot)
        find_slot(r, from, to, &found);
    return found;
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

/* Make room for `more` new pairs, `moreglob` of them with a pattern, so
 * that adding them cannot fail: every command checks and allocates first,
 * then changes the set.  0, or -1 (the set is as it was). */
static int reserve(rules *r, size_t more, size_t moreglob)
{
    if ((!r->nslot || (r->n + r->ndeleted + more) * 2 > r->nslot) && reindex(r, r->n + more) < 0)
        return -1;
    if (r->n + more > r->cap) {
        size_t cap = r->cap ? r->cap : 16;
        while (cap < r->n + more)
            cap *= 2;
        rule *v = realloc(r->v, cap * sizeof *v);
        if (!v)
            return -1;
        r->v = v;
        r->cap = cap;
    }
    if (r->nglob + moreglob > r->globcap) {
        size_t cap = r->globcap ? r->globcap : 16;
        while (cap < r->nglob + moreglob)
            cap *= 2;
        size_t *g = realloc(r->glob, cap * sizeof *g);
        if (!g)
            return -1;
        r->glob = g;
        r->globcap = cap;
    }
    return 0;
}

int rules_is_pattern(const char *s)
{
    return strpbrk(s, "*?") != NULL;
}

/* The length of the UTF-8 character at s[0..n) (1 for a stray byte), so
 * that '?' takes one character and '*' never stops inside one. */
static size_t char_len(const char *s, size_t n)
{
    size_t k = 1;
    if ((unsigned char)s[0] >= 0xC0)
        while (k < n && k < 4 && ((unsigned char)s[k] & 0xC0) == 0x80)
            k++;
    return k;
}

/* Does pattern p[0..pn) match x[0..xn)?  Greedy, going back only to the
 * last '*': linear for usual patterns, O(pn * xn) at worst. */
static int glob_match(const char *p, size_t pn, const char *x, size_t xn)
{
    size_t i = 0, j = 0, star = SIZE_MAX, mark = 0;
    while (j < xn) {
        if (i < pn && p[i] == '*') {
            star = ++i;
            mark = j;
        } else if (i < pn && p[i] == '?') {
            i++;
            j += char_len(x + j, xn - j);
        } else if (i < pn && p[i] == x[j]) {
            i++;
            j++;
        } else if (star == SIZE_MAX) {
            return 0;
        } else {
            i = star;
            mark += char_len(x + mark, xn - mark);
            j = mark;
        }
    }
    while (i < pn && p[i] == '*')
        i++;
    return i == pn;
}

/* rules_name_match for the pattern p[0..pn). */
static int match_n(const char *p, size_t pn, const char *x)
{
    const char *pat = memchr(p, '@', pn), *xat = strchr(x, '@');
    size_t pa = pat ? (size_t)(pat - p) : pn, xa = xat ? (size_t)(xat - x) : strlen(x);
    if (!glob_match(p, pa, x, xa))
        return 0;
    if (pat && xat)
        return glob_match(pat + 1, pn - pa - 1, xat + 1, strlen(xat + 1));
    return 1;
}

int rules_name_match(const char *p, const char *x)
{
    return match_n(p, strlen(p), x);
}

int rules_list_match(const char *list, const char *x)
{
    if (!list)
        return 0;
    for (const char *s = list; *s;) {
        const char *comma = strchr(s, ',');
        size_t n = comma ? (size_t)(comma - s) : strlen(s);
        if (n && match_n(s, n, x))
            return 1;
        s += n + (comma != NULL);
    }
    return 0;
}

static int rule_matches(const rule *k, const char *from, const char *to)
{
    return rules_name_match(k->from, from) && rules_name_match(k->to, to) &&
           !rules_list_match(k->except, from) && !rules_list_match(k->except, to);
}

int rules_blocked(const rules *r, const char *from, const char *to)
{
    if (!from || !to || !*from || !*to)
        return 0;
    if (r->nslot) {
        /* every plain pair that can match is on this one probe path */
        size_t mask = r->nslot - 1;
        for (size_t i = pair_hash(from, to) & mask; r->slot[i] != -1; i = (i + 1) & mask)
            if (r->slot[i] >= 0 && rule_matches(&r->v[r->slot[i]], from, to))
                return 1;
    }
    for (size_t g = 0; g < r->nglob; g++)
        if (rule_matches(&r->v[r->glob[g]], from, to))
            return 1;
    return 0;
}

static int same_except(const char *a, const char *b)
{
    return (!a || !*a) ? (!b || !*b) : (b && !strcmp(a, b));
}

/* Put (from, to) with except (taken: kept or freed) into a set that has
 * room (reserve).  1 added or its except changed, 0 it was there as is. */
static int put(rules *r, const char *from, const char *to, char *except)
{
    int found;
    size_t at = find_slot(r, from, to, &found);
    if (found) {
        rule *k = &r->v[r->slot[at]];
        if (k->tag)
            k->tag = r->tag;   /* a lasting pair stays; a timed one goes to the last naming it */
        if (same_except(k->except, except)) {
            free(except);
            return 0;
        }
        free(k->except);
        k->except = except;
        return 1;
    }
    rule *k = &r->v[r->n];
    snprintf(k->from, sizeof k->from, "%s", from);
    snprintf(k->to, sizeof k->to, "%s", to);
    k->except = except;
    k->tag = r->tag;
    k->glob = rules_is_pattern(from) || rules_is_pattern(to);
    if (k->glob)
        r->glob[r->nglob++] = r->n;
    if (r->slot[at] == -2)
        r->ndeleted--;
    r->slot[at] = (int)r->n++;
    return 1;
}

int rules_add(rules *r, const char *from, const char *to)
{
    int fresh = !present(r, from, to), glob = rules_is_pattern(from) || rules_is_pattern(to);
    if (fresh && r->n >= RULES_MAX)
        return -2;
    if (fresh && glob && r->nglob >= RULES_MAX_GLOB)
        return -3;
    if (reserve(r, (size_t)fresh, (size_t)(fresh && glob)) < 0)
        return -1;
    int changed = put(r, from, to, NULL);
    r->gen += (unsigned long long)changed;
    return changed;
}

/* The place of index k in the pattern list. */
static size_t glob_pos(const rules *r, size_t k)
{
    size_t g = 0;
    while (g < r->nglob && r->glob[g] != k)
        g++;
    return g;
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
    free(r->v[k].except);
    if (r->v[k].glob) {
        size_t g = glob_pos(r, k);
        r->glob[g] = r->glob[--r->nglob];
    }
    if (k != --r->n) {
        /* the last pair moves into the hole; its slot and list entry follow */
        r->v[k] = r->v[r->n];
        size_t moved = find_slot(r, r->v[k].from, r->v[k].to, &found);
        r->slot[moved] = (int)k;
        if (r->v[k].glob)
            r->glob[glob_pos(r, r->n)] = k;
    }
    r->gen++;
    return 1;
}

void rules_clear(rules *r)
{
    if (r->n)
        r->gen++;
    for (size_t k = 0; k < r->n; k++)
        free(r->v[k].except);
    r->n = 0;
    r->ndeleted = 0;
    r->nglob = 0;
    for (size_t i = 0; i < r->nslot; i++)
        r->slot[i] = -1;
}

int rules_remove_tag(rules *r, unsigned long tag)
{
    int removed = 0;
    if (!tag)
        return 0;
    for (size_t k = r->n; k-- > 0;) {
        if (k >= r->n || r->v[k].tag != tag)
            continue;
        char from[RULES_MAX_NAME + 1], to[RULES_MAX_NAME + 1];
        memcpy(from, r->v[k].from, sizeof from);
        memcpy(to, r->v[k].to, sizeof to);
        removed += rules_remove(r, from, to);
    }
    return removed;
}

int rules_valid_name(const char *s, size_t n)
{
    if (n == 0 || n > RULES_MAX_NAME)
        return 0;
    int ats = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c <= ' ' || c == 0x7f || c == ',' || c == '>')
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

/* Is (names[a], names[b]) one of the spec's pairs? */
static int spec_pair(const rules_spec *s, int a, int b)
{
    int ia = s->island_of[a], ib = s->island_of[b];
    return ia != ib && (!s->oneway || (ia == 0 && ib == 1));
}

int rules_apply(rules *r, const rules_spec *s, int cut)
{
    if (cut) {
        /* count and allocate first, so that the changes cannot fail */
        size_t fresh = 0, freshglob = 0;
        for (int a = 0; a < s->nnames; a++)
            for (int b = 0; b < s->nnames; b++)
                if (spec_pair(s, a, b) && !present(r, s->names[a], s->names[b])) {
                    fresh++;
                    freshglob += rules_is_pattern(s->names[a]) || rules_is_pattern(s->names[b]);
                }
        if (r->n + fresh > RULES_MAX)
            return -2;
        if (r->nglob + freshglob > RULES_MAX_GLOB)
            return -3;
        if (reserve(r, fresh, freshglob) < 0)
            return -1;
    }
    int changed = 0;
    for (int a = 0; a < s->nnames; a++)
        for (int b = 0; b < s->nnames; b++)
            if (spec_pair(s, a, b))
                changed += cut ? put(r, s->names[a], s->names[b], NULL)
                               : rules_remove(r, s->names[a], s->names[b]);
    if (cut)
        r->gen += (unsigned long long)changed;   /* rules_remove counts its own */
    return changed;
}

int rules_replace(rules *r, const rules_spec *s)
{
    rules fresh;
    rules_init(&fresh);
    fresh.tag = r->tag;
    int rc = rules_apply(&fresh, s, 1);
    if (rc < 0) {
        rules_free(&fresh);
        return rc;
    }
    unsigned long long gen = r->gen;
    rules_free(r);
    *r = fresh;
    r->gen = gen + 1;   /* never back to a value a reader has seen */
    return rc;
}

int rules_isolate(rules *r, const char *name, const char *except)
{
    if (except && !*except)
        except = NULL;
    int every = strcmp(name, "*") == 0;   /* (*, *) is one pair, not two */
    size_t fresh = (size_t)!present(r, name, "*") + (every ? 0 : (size_t)!present(r, "*", name));
    if (r->n + fresh > RULES_MAX)
        return -2;
    if (r->nglob + fresh > RULES_MAX_GLOB)
        return -3;
    char *e1 = except ? strdup(except) : NULL, *e2 = except ? strdup(except) : NULL;
    if ((except && (!e1 || !e2)) || reserve(r, fresh, fresh) < 0) {
        free(e1);
        free(e2);
        return -1;
    }
    int changed = put(r, name, "*", e1);
    if (every)
        free(e2);
    else
        changed += put(r, "*", name, e2);
    r->gen += (unsigned long long)changed;
    return changed;
}

/* Is s[0..n) the word w, in any case? */
static int word_is(const char *s, size_t n, const char *w)
{
    return n == strlen(w) && strncasecmp(s, w, n) == 0;
}

int rules_parse_isolate(const char *text, size_t len, char name[RULES_MAX_NAME + 1],
                        sbuf *except, char *err, size_t errlen)
{
    /* at most three blank-separated tokens: name [EXCEPT list] */
    const char *tok[4];
    size_t tlen[4];
    int nt = 0;
    for (size_t i = 0; i < len;) {
        while (i < len && (text[i] == ' ' || text[i] == '\t'))
            i++;
        if (i == len)
            break;
        size_t j = i;
        while (j < len && text[j] != ' ' && text[j] != '\t')
            j++;
        if (nt == 4)
            break;
        tok[nt] = text + i;
        tlen[nt++] = j - i;
        i = j;
    }
    sbuf_reset(except);
    if (nt == 0) {
        snprintf(err, errlen, "needs a node name");
        return -1;
    }
    if (nt > 1 && !word_is(tok[1], tlen[1], "EXCEPT")) {
        snprintf(err, errlen, "takes one node name (and EXCEPT names)");
        return -1;
    }
    if (nt != 1 && nt != 3) {
        snprintf(err, errlen, nt == 2 ? "EXCEPT needs node names"
                                      : "EXCEPT takes comma-separated names, without blanks");
        return -1;
    }
    if (!rules_valid_name(tok[0], tlen[0])) {
        snprintf(err, errlen, "invalid node name '%.*s'", (int)(tlen[0] > 64 ? 64 : tlen[0]),
                 tok[0]);
        return -1;
    }
    memcpy(name, tok[0], tlen[0]);
    name[tlen[0]] = 0;
    if (nt == 1)
        return 0;
    const char *s = tok[2];
    size_t n = tlen[2], count = 0;
    for (size_t i = 0;;) {
        size_t j = i;
        while (j < n && s[j] != ',')
            j++;
        if (!rules_valid_name(s + i, j - i)) {
            snprintf(err, errlen, j == i ? "empty name in the EXCEPT list"
                                         : "invalid node name '%.*s' after EXCEPT",
                     (int)(j - i > 64 ? 64 : j - i), s + i);
            return -1;
        }
        if (++count > RULES_MAX_SPEC_NAMES) {
            snprintf(err, errlen, "too many names after EXCEPT");
            return -1;
        }
        if (j == n)
            break;
        i = j + 1;
    }
    sbuf_add(except, s, n);
    if (except->oom) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    if (rules_list_match(sbuf_str(except), name)) {
        snprintf(err, errlen, "%s is both isolated and excepted", name);
        sbuf_reset(except);
        return -1;
    }
    return 0;
}

void rules_json(const rules *r, sbuf *out)
{
    sbuf_addstr(out, "[");
    for (size_t i = 0; i < r->n; i++) {
        sbuf_addstr(out, i ? ",{\"from\":" : "{\"from\":");
        sbuf_json_str(out, r->v[i].from, strlen(r->v[i].from));
        sbuf_addstr(out, ",\"to\":");
        sbuf_json_str(out, r->v[i].to, strlen(r->v[i].to));
        if (r->v[i].except) {
            sbuf_addstr(out, ",\"except\":");
            sbuf_json_str(out, r->v[i].except, strlen(r->v[i].except));
        }
        sbuf_addstr(out, "}");
    }
    sbuf_addstr(out, "]");
}
