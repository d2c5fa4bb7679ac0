/* The control protocol's line syntax: pure functions, no sockets. */
#ifndef CTL_PARSE_H
#define CTL_PARSE_H

#include <stddef.h>

#define CTL_MAX_LINE (64 * 1024)   /* longer lines get ERR and a close */

typedef enum {
    CTL_EMPTY = 0,   /* blank line: no reply */
    CTL_PING,
    CTL_NODES,
    CTL_LINKS,
    CTL_RULES,
    CTL_STATUS,
    CTL_EVENTS,
    CTL_CUT,
    CTL_SPLIT,
    CTL_FIX,
    CTL_ISOLATE,
    CTL_HEAL,
    CTL_MODE,
    CTL_SHUTDOWN,
    CTL_QUIT,
    CTL_APPLISTEN,   /* the LD_PRELOAD shim's commands (app.h) */
    CTL_APPUNLISTEN,
    CTL_APPROUTE,
    CTL_APPCONNECT,
    CTL_APPS,
    CTL_APPUDP,      /* the shim's UDP commands (udp.h) */
    CTL_APPUNUDP,
    CTL_APPUDPROUTE,
    CTL_DELAY,       /* link faults (faults.h) */
    CTL_RATE,
    CTL_RESET,
    CTL_SLICE,
    CTL_SLOWCLOSE,
    CTL_CLEAR,
    CTL_FAULTS,
    CTL_FLAP,        /* schedules (chaos.h) */
    CTL_NEMESIS,
    CTL_EPMDPORT,    /* a node's own EPMD port */
    CTL_UNKNOWN,
} ctl_cmd;

typedef struct ctl_line {
    ctl_cmd cmd;
    char word[32];        /* the command word as sent (truncated), for errors */
    const char *args;     /* the rest of the line, leading blanks skipped */
    size_t argslen;       /* trailing blanks dropped */
} ctl_line;

/* Find the end of the next line in buf[0..n).  Returns the length of the
 * line without its terminator ("\n" or "\r\n") and sets *consumed to the
 * bytes to drop (line + terminator); returns -1 if no full line is there. */
long ctl_next_line(const char *buf, size_t n, size_t *consumed);

/* Split one line (no terminator) into command and arguments.  Command words
 * are case-insensitive. */
void ctl_parse_line(const char *line, size_t len, ctl_line *out);

/* The name of a command, upper case ("PING"). */
const char *ctl_cmd_name(ctl_cmd cmd);

/* Does cmd take arguments?  Those that do not must refuse any: "HEAL extra"
 * is a typo or a misunderstanding, never a HEAL. */
int ctl_cmd_takes_args(ctl_cmd cmd);

/* A trailing "FOR <duration>" (FOR in any case) on args[0..*len): 1 with
 * the duration in *for_ms and *len shortened to what is before it; 0 if
 * there is none; -1 with a message in err if the duration is not one
 * (or is 0).  A node called FOR is still a node: only "FOR" followed by a
 * last word is taken. */
int ctl_strip_for(const char *args, size_t *len, long long *for_ms, char *err, size_t errlen);

/* FLAP's arguments after FOR is stripped: "<islands or a -> b> UP <d> DOWN <d>"
 * (UP and DOWN in either order, any case; both above 0).  *speclen gets
 * the length of the islands part.  0, or -1 with a message in err. */
int ctl_parse_flap(const char *args, size_t len, size_t *speclen, long long *up_ms,
                   long long *down_ms, char *err, size_t errlen);

#endif
