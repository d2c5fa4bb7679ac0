/* Partition rules: a set of directed blocked pairs (from, to) over node
 * names, and the CUT/FIX grammar that makes them.  Pure: no sockets.
 *
 * A name is "alive" (any host) or "alive@host" (exactly); "*" stands for
 * every node (ISOLATE).  A pattern with a host and a name with a host must
 * match exactly; if either has no host only the alive parts are compared
 * (an EPMD holds each alive name once, so that is unambiguous). */
#ifndef RULES_H
#define RULES_H

#include <stddef.h>

#include "sbuf.h"

#define RULES_MAX_NAME (255 + 1 + 255)
#define RULES_MAX_SPEC_NAMES 256

typedef struct rule {
    char from[RULES_MAX_NAME + 1];
    char to[RULES_MAX_NAME + 1];
} rule;

#define RULES_MAX 4096   /* blocked pairs at most: 64 nodes fully split */

typedef struct rules {
    rule *v;
    size_t n, cap;
    int *slot;            /* hash index of v: -1 empty, -2 deleted, else index */
    size_t nslot, ndeleted;
} rules;

/* The names of a CUT/FIX line, parsed. */
typedef struct rules_spec {
    int oneway;                         /* "A -> B" */
    int nislands;
    int island_of[RULES_MAX_SPEC_NAMES];/* island index of each name */
    char names[RULES_MAX_SPEC_NAMES][RULES_MAX_NAME + 1];
    int nnames;
} rules_spec;

void rules_init(rules *r);
void rules_free(rules *r);

/* Does name x match pattern p? */
int rules_name_match(const char *p, const char *x);
/* Is traffic from -> to blocked? */
int rules_blocked(const rules *r, const char *from, const char *to);

/* Add (from, to) unless present.  1 added, 0 already there, -1 no memory,
 * -2 the set already holds RULES_MAX pairs. */
int rules_add(rules *r, const char *from, const char *to);
/* Remove exactly (from, to).  1 removed, 0 not there. */
int rules_remove(rules *r, const char *from, const char *to);
void rules_clear(rules *r);

/* Parse the arguments of CUT/FIX: "n1,n2 n3,n4" (islands, at least two) or
 * "n1,n2 -> n3" (one way).  0, or -1 with a message in err
 * ("empty island", "n2 is in two islands", "CUT needs at least two islands"). */
int rules_parse_spec(const char *text, size_t len, rules_spec *spec, char *err, size_t errlen);
/* Apply a spec: add (cut != 0) or remove every pair it names.  Returns the
 * number of pairs changed, -1 on allocation failure, -2 (nothing changed)
 * if the cut could take the set past RULES_MAX pairs. */
int rules_apply(rules *r, const rules_spec *spec, int cut);
/* A valid node name or pattern for the control port: non-empty, printable,
 * no blanks, commas or '>' ; at most one '@'. */
int rules_valid_name(const char *s, size_t n);

/* The RULES payload: [{"from":..,"to":..},...] */
void rules_json(const rules *r, sbuf *out);

#endif
