/* The nemesis: partitions of a set of nodes in the shapes Jepsen made
 * common, drawn from a seeded generator, and the NEMESIS command's grammar.
 * Pure: nodes are indexes 0..n-1 into a list the caller sorted, so that the
 * same seed and the same node set always give the same partitions.
 *
 * Shapes (n nodes, sorted; "shuffled" means by the seeded generator):
 *   halves            the first n/2 (rounded down) against the rest
 *   random-halves     shuffled, then as halves
 *   majorities-ring   shuffled into a ring; each node sees the nodes within
 *                     k places of it, k the least with 2k+1 > n/2: everyone
 *                     sees a majority, and no two see the same one (n >= 4)
 *   bridge            the first n/2 against the last (n-1)/2; the middle
 *                     node, the bridge, sees both sides (n >= 3)
 *   random-isolate    one node, drawn, against the rest
 *   random-one-way    shuffled, cut at a drawn point 1..n-1: traffic from
 *                     the first part to the second is blocked, the other
 *                     way flows
 * halves and bridge use no randomness (a seed is accepted and ignored). */
#ifndef NEMESIS_H
#define NEMESIS_H

#include <stddef.h>
#include <stdint.h>

#include "sbuf.h"

#define NEMESIS_MAX_NODES 64

typedef enum {
    NEM_HALVES,
    NEM_RANDOM_HALVES,
    NEM_MAJORITIES_RING,
    NEM_BRIDGE,
    NEM_RANDOM_ISOLATE,
    NEM_RANDOM_ONE_WAY,
    NEM_NSHAPES
} nemesis_shape;

/* One partition: blocked[i][j] != 0 blocks traffic from node i to node j. */
typedef struct nemesis_plan {
    nemesis_shape shape;
    int n;
    int nislands;                    /* 0 for majorities-ring */
    int island_of[NEMESIS_MAX_NODES];/* halves, random-*: which side; bridge: 0, 1, 2 = bridge */
    int bridge;                      /* bridge: its index; else -1 */
    unsigned char blocked[NEMESIS_MAX_NODES][NEMESIS_MAX_NODES];
} nemesis_plan;

/* The seeded generator (splitmix64): state in *s. */
uint64_t nemesis_rand(uint64_t *s);

/* Make one partition of n nodes in the shape, drawing from *rng.  0, or -1
 * with a message in err (too few or too many nodes for the shape). */
int nemesis_make(nemesis_shape shape, int n, uint64_t *rng, nemesis_plan *out, char *err,
                 size_t errlen);

/* The plan as JSON members (no braces): "shape":..,"islands":[[..],..] or
 * "sees":{..} or "bridge":.. or "from":[..],"to":[..], then
 * "blocked":[[from,to],..], with names[i] for node i. */
void nemesis_plan_json(const nemesis_plan *p, const char *const *names, sbuf *o);

const char *nemesis_shape_name(nemesis_shape s);
/* The shape named s[0..n) (any case), or -1. */
int nemesis_shape_parse(const char *s, size_t n);

/* A NEMESIS command line's arguments (FOR is part of them here). */
typedef enum { NEM_CMD_SHAPE, NEM_CMD_START, NEM_CMD_STOP } nemesis_op;
typedef struct nemesis_cmd {
    nemesis_op op;
    nemesis_shape shape;
    int has_seed;
    uint64_t seed;
    long long every_ms, heal_ms;     /* START */
    long long for_ms;                /* 0: no end */
} nemesis_cmd;

#define NEMESIS_MIN_EVERY_MS 100

/* "SHAPE <shape> [SEED n] [FOR d]", "START <shape> EVERY d HEAL d [SEED n]
 * [FOR d]" (HEAL below EVERY: a partition every EVERY, healed HEAL after
 * it began), "STOP".  0, or -1 with a message in err. */
int nemesis_parse(const char *text, size_t len, nemesis_cmd *cmd, char *err, size_t errlen);

#endif
