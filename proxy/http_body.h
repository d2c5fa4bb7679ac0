/* The JSON bodies of the HTTP API, turned into the arguments of the line
 * command they stand for, so that HTTP and the line protocol run the same
 * code.  Pure (jsmn), no sockets.
 *
 *   HTTP_BODY_SPEC  {"islands": [["n1","n2"],["n3"]]}   -> "n1,n2 n3"
 *                   {"from": ["n1"], "to": ["n2","n3"]} -> "n1 -> n2,n3"
 *                   ("from"/"to" may also be one string)
 *   HTTP_BODY_NODE  {"node": "n3"}                      -> "n3"
 *   HTTP_BODY_MODE  {"mode": "reset"}                   -> "reset"
 *
 * Every name must be a valid node name or pattern (rules_valid_name), so a
 * name can never smuggle a separator into the line.  Whether the islands make sense
 * (two at least, nobody in two) is left to the command, which says so in
 * its own words. */
#ifndef HTTP_BODY_H
#define HTTP_BODY_H

#include <stddef.h>

#include "sbuf.h"

typedef enum {
    HTTP_BODY_SPEC, HTTP_BODY_NODE, HTTP_BODY_MODE,
    /* link faults and schedules (README, "Faults beyond cuts"): a spec as HTTP_BODY_SPEC
     * plus members that become the command's words, in this order; a
     * number for a duration is milliseconds, for a rate bytes per second:
     *   DELAY   "delay", "jitter", "for"  {"islands":[["n1"],["n2"]],"delay":"50ms"}
     *   RATE    "rate", "for"             {"from":"n1","to":"n2","rate":"1MB/s"}
     *   CLEAR   (the spec only; {} for every fault)
     *   FLAP    "up", "down", "for"
     *   NEMESIS "shape", "seed", "every", "heal", "for" (no spec; with
     *           "every" a schedule: START, else SHAPE) */
    HTTP_BODY_DELAY, HTTP_BODY_RATE, HTTP_BODY_CLEAR, HTTP_BODY_FLAP, HTTP_BODY_NEMESIS,
} http_body_kind;

#define HTTP_BODY_MAX_TOKENS 640   /* JSON values in one body: 256 names and their arrays */

/* Append the command arguments for body[0..len) to args.  0, or -1 with a
 * message in err (e.g. "body is not valid JSON", "unknown member 'x'"). */
int http_body_args(const char *body, size_t len, http_body_kind kind, sbuf *args, char *err,
                   size_t errlen);

/* Decode the JSON string literal contents s[0..n) (no quotes) into out (cap
 * bytes, NUL-terminated): escapes resolved, \u to UTF-8.  Returns the length,
 * or -1 if it does not fit, holds a control character or a bad escape. */
long http_body_unescape(const char *s, size_t n, char *out, size_t cap);

#endif
