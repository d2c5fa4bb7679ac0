/* Changes the clock makes: timed faults (CUT ... FOR 2s), flapping pairs
 * (FLAP) and the nemesis schedule (NEMESIS START).  Each is a loop timer;
 * each step is an event.  What a timed command adds is tagged (rules.tag,
 * the owner in faults.h), so that its end removes exactly that.
 *
 * HEAL stops all of it (chaos_heal): after HEAL the network is healthy and
 * stays so until the next command. */
#ifndef CHAOS_H
#define CHAOS_H

#include "epx.h"
#include "nemesis.h"
#include "sbuf.h"

#define CHAOS_MAX_TIMED 1024   /* timed commands pending at most */
#define CHAOS_MAX_FLAPS 64

typedef struct chaos chaos;

chaos *chaos_new(epx *x);
void chaos_free(chaos *c);

/* A fresh tag for a command's changes (never 0). */
unsigned long chaos_tag(chaos *c);

/* A timed command: arm its end, for_ms from now, before it changes
 * anything.  what is the command line (for the event).  Returns a handle,
 * or NULL (no memory, or CHAOS_MAX_TIMED pending) with a message in err. */
typedef struct chaos_timed chaos_timed;
chaos_timed *chaos_timed_arm(chaos *c, unsigned long tag, long long for_ms, const char *what,
                             size_t whatlen, char *err, size_t errlen);
/* The command was refused after all: forget its end. */
void chaos_timed_cancel(chaos *c, chaos_timed *t);

/* FLAP: args (islands or "a -> b", already parsed once by the caller)
 * are cut at once, fixed after down_ms, cut again after up_ms, and so on;
 * for_ms > 0 ends it (fixed).  The flap's id (> 0), or -1 with a message. */
long chaos_flap(chaos *c, const char *args, size_t argslen, long long up_ms, long long down_ms,
                long long for_ms, char *err, size_t errlen);
/* Stop every flap, fixing what they cut.  The number stopped. */
int chaos_flap_stop(chaos *c);

/* NEMESIS SHAPE: one partition of the registered nodes now (added to the
 * rules, tagged tag), its JSON members into o.  0, or -1 with a message. */
int chaos_nemesis_shape(chaos *c, const nemesis_cmd *cmd, unsigned long tag, sbuf *o,
                        char *err, size_t errlen);
/* NEMESIS START: the schedule (one at a time).  Its JSON members into o.
 * 0, or -1 with a message. */
int chaos_nemesis_start(chaos *c, const nemesis_cmd *cmd, sbuf *o, char *err, size_t errlen);
/* NEMESIS STOP: end the schedule, removing its partition.  1 if one ran. */
int chaos_nemesis_stop(chaos *c);

/* HEAL: cancel every timed end, flap and schedule (their changes are
 * removed by HEAL itself). */
void chaos_heal(chaos *c);

/* The FAULTS payload's other members: "timed":[..],"flaps":[..],"nemesis":{..}|null */
void chaos_json(chaos *c, sbuf *o);

#endif
