/* Link faults: a table of directed pairs (from, to) over node names or
 * patterns, as the rules are, each with the faults that traffic from -> to
 * suffers: DELAY (and JITTER), RATE, RESET AFTER, SLICE, SLOWCLOSE.  And
 * the grammar of the commands that set them.  Pure: no sockets, no clock.
 *
 * A pair appears at most once and carries any set of kinds; setting a kind
 * on a pair replaces that kind only.  Each kind remembers the timed command
 * that set it (owner, 0 for none): when the command's time is up,
 * faults_undo removes exactly the kinds it still owns.  Lookups merge every
 * entry that matches (patterns as in rules.h), later entries winning per
 * kind: faults are looked up when a link opens or the table changes, never
 * per byte. */
#ifndef FAULTS_H
#define FAULTS_H

#include <stddef.h>
#include <stdint.h>

#include "rules.h"
#include "sbuf.h"

#define FAULTS_MAX 1024                     /* directed pairs with faults */
#define FAULTS_MAX_DELAY_MS (10 * 60 * 1000) /* DELAY and JITTER at most 10 min */
#define FAULTS_MAX_SLICE_GAP_MS 10000

typedef enum {
    FAULT_DELAY,
    FAULT_RATE,
    FAULT_RESET,
    FAULT_SLICE,
    FAULT_SLOWCLOSE,
    FAULT_NKINDS
} fault_kind;
#define FAULT_BIT(k) (1u << (k))

typedef struct fault_params {
    unsigned set;              /* FAULT_BIT of each kind present */
    uint32_t delay_ms;         /* DELAY: every byte this much later */
    uint32_t jitter_ms;        /*   plus 0..jitter_ms, never reordering */
    uint64_t rate;             /* RATE: bytes per second */
    uint64_t reset_bytes;      /* RESET AFTER size (0: by time) */
    uint32_t reset_ms;         /* RESET AFTER duration (0: by size) */
    uint32_t slice_bytes;      /* SLICE: writes of at most this many bytes */
    uint32_t slice_gap_ms;     /*   this far apart */
    uint32_t slowclose_ms;     /* SLOWCLOSE: an EOF goes on this much later */
} fault_params;

typedef struct fault {
    char from[RULES_MAX_NAME + 1];
    char to[RULES_MAX_NAME + 1];
    fault_params p;
    unsigned long owner[FAULT_NKINDS];  /* the timed command that set a kind, 0: lasting */
    fault_params saved;        /* a lasting kind a timed one covers, back at its end */
} fault;

typedef struct faults {
    fault *v;
    size_t n, cap;
    unsigned long changes;     /* bumped by every change: links re-read theirs */
} faults;

void faults_init(faults *f);
void faults_free(faults *f);
/* Remove every fault.  The number of pairs removed. */
size_t faults_clear(faults *f);

/* Set p's kinds on every pair of spec, owned by owner (0: lasting).  A
 * timed kind over a lasting one keeps the lasting value aside, and
 * faults_undo brings it back.  The
 * number of pairs, or -1 (no memory) or -2 (past FAULTS_MAX pairs): then
 * nothing changed. */
int faults_set(faults *f, const rules_spec *spec, const fault_params *p, unsigned long owner);
/* CLEAR: remove every fault of exactly the spec's pairs.  Pairs removed. */
int faults_clear_spec(faults *f, const rules_spec *spec);
/* Remove the kinds that owner still owns (its time is up), bringing back
 * the lasting values they covered.  Kinds removed. */
int faults_undo(faults *f, unsigned long owner);
/* A RESET fired on a link from -> to: the RESET kinds that matched it are
 * spent ("the next link is reset").  Kinds removed. */
int faults_spend_reset(faults *f, const char *from, const char *to);

/* What traffic from -> to suffers, merged; out->set == 0 if nothing. */
void faults_lookup(const faults *f, const char *from, const char *to, fault_params *out);

/* Has a link with these faults (kind RESET) run its course: bytes relayed
 * (both ways) or its age past the threshold? */
int faults_reset_due(const fault_params *p, uint64_t bytes, long long age_ms);

/* The FAULTS payload: [{"from":..,"to":..,"delay_ms":..,...},...]. */
void faults_json(const faults *f, sbuf *out);
/* The members of one set of params, `"delay_ms":50,"jitter_ms":10`, each
 * preceded by a comma (nothing for an empty set). */
void faults_params_json(const fault_params *p, sbuf *out);

/* The arguments of DELAY, RATE, RESET, SLICE, SLOWCLOSE (FOR already
 * stripped, ctl_parse.h): islands or "a -> b" as for CUT, then
 *   DELAY      <duration> [JITTER <duration>]
 *   RATE       <rate>
 *   RESET      AFTER <size>|<duration>
 *   SLICE      <size> <duration>
 *   SLOWCLOSE  <duration>
 * spec gets the names, p the kind and its values.  0, or -1 with a message
 * in err. */
int faults_parse(fault_kind kind, const char *text, size_t len, rules_spec *spec,
                 fault_params *p, char *err, size_t errlen);
/* The command word of a kind ("DELAY"). */
const char *faults_kind_name(fault_kind kind);

#endif
