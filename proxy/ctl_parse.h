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

#endif
