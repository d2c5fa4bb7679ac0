/* Partition rules: a set of directed blocked pairs (from, to) over node
 * names, and the CUT/FIX/ISOLATE grammar that makes them.  Pure: no sockets.
 *
 * A name is "alive" (any host) or "alive@host" (exactly).  A pattern with a
 * host and a name with a host must match in both parts; if either has no
 * host only the alive parts are compared (an EPMD holds each alive name
 * once, so that is unambiguous).  In a pattern '*' stands for any run of
 * characters and '?' for one character, within the alive or the host part
 * ('@' is never matched by them): "*" is every node, "rabbitmqcli-*" every
 * rabbitmqctl helper node.
 *
 * A pair appears at most once.  One may carry an EXCEPT list (ISOLATE ...
 * EXCEPT): it never blocks traffic to or from a node matching one of those.
 * Lookups: pairs of plain names are found through a hash on the alive parts
 * (O(1)); pairs with a pattern are few (RULES_MAX_GLOB) and scanned. */
#ifndef RULES_H
#define RULES_H

#include <stddef.h>

#include "sbuf.h"

#define RULES_MAX_NAME (255 + 1 + 255)
#define RULES_MAX_SPEC_NAMES 256

typedef struct rule {
    char from[RULES_MAX_NAME + 1];
    char to[RULES_MAX_NAME + 1];
    char *except;         /* NULL, or "p1,p2": nodes this pair never blocks */
    int glob;             /* from or to is a pattern: on the scanned list */
    unsigned long tag;    /* the timed command that made it (rules.tag), 0: none */
} rule;

#define RULES_MAX 4096       /* blocked pairs at most: 64 nodes fully split */
#define RULES_MAX_GLOB 256   /* of which pairs with a pattern ('*', '?') */

typedef struct rules {
    rule *v;
    size_t n, cap;
    int *slot;            /* hash index of v: -1 empty, -2 deleted, else index */
    size_t nslot, ndeleted;
    size_t *glob;         /* indexes in v of the pairs with a pattern */
    size_t nglob, globcap;
    unsigned long long gen;   /* bumped by every change of the set: readers
                               * that cache verdicts (udp.c) compare it */
    unsigned long tag;    /* stamped on the pairs a change adds (0: a lasting
                           * change).  A pair that was there keeps lasting if it
                           * did; a timed pair goes to the last command naming
                           * it (which may make it lasting) */
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
/* Does x match one of the comma-separated patterns in list (NULL: none)? */
int rules_list_match(const char *list, const char *x);
/* Is traffic from -> to blocked? */
int rules_blocked(const rules *r, const char *from, const char *to);

/* Add (from, to) unless present; a present pair loses its EXCEPT list.
 * 1 added or changed, 0 already there, -1 no memory, -2 the set already
 * holds RULES_MAX pairs, -3 RULES_MAX_GLOB pairs with a pattern.  Nothing
 * changes on failure. */
int rules_add(rules *r, const char *from, const char *to);
/* Remove exactly (from, to).  1 removed, 0 not there. */
int rules_remove(rules *r, const char *from, const char *to);
void rules_clear(rules *r);
/* Remove every pair tagged tag (a timed command's time is up: exactly what
 * it made and no later command claimed).  The number removed. */
int rules_remove_tag(rules *r, unsigned long tag);

/* Parse the arguments of CUT/FIX: "n1,n2 n3,n4" (islands, at least two) or
 * "n1,n2 -> n3" (one way).  0, or -1 with a message in err
 * ("empty island", "n2 is in two islands", "CUT needs at least two islands"). */
int rules_parse_spec(const char *text, size_t len, rules_spec *spec, char *err, size_t errlen);
/* Apply a spec: add (cut != 0) or remove every pair it names.  Returns the
 * number of pairs changed, or -1 (no memory), -2 (past RULES_MAX pairs),
 * -3 (past RULES_MAX_GLOB): on failure nothing changed. */
int rules_apply(rules *r, const rules_spec *spec, int cut);
/* SPLIT: make the set exactly the spec's pairs.  The new set is built
 * aside and swapped in, so a failure (as rules_apply) changes nothing. */
int rules_replace(rules *r, const rules_spec *spec);

/* ISOLATE's arguments: "name" or "name EXCEPT p1,p2" (EXCEPT in any case).
 * name gets the name, except the list (empty if none).  0, or -1 with a
 * message in err. */
int rules_parse_isolate(const char *text, size_t len, char name[RULES_MAX_NAME + 1],
                        sbuf *except, char *err, size_t errlen);
/* ISOLATE: the pairs (name, *) and (*, name), both with the EXCEPT list
 * (NULL or "" for none), replacing those an earlier ISOLATE of name left.
 * Returns the pairs changed, or as rules_apply (nothing changed). */
int rules_isolate(rules *r, const char *name, const char *except);

/* A valid node name or pattern for the control port: non-empty, printable,
 * no blanks, commas or '>' ; at most one '@', not at either end. */
int rules_valid_name(const char *s, size_t n);
/* Does s hold a '*' or '?' (a pattern, not a name)? */
int rules_is_pattern(const char *s);

/* The RULES payload: [{"from":..,"to":..},...]; a pair with an EXCEPT list
 * has "except":"p1,p2" as well. */
void rules_json(const rules *r, sbuf *out);

#endif
