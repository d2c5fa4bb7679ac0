/* The control port: a line protocol for tests and tools (README.md). */
#ifndef CONTROL_H
#define CONTROL_H

#include "epx.h"

#include "ctl_parse.h"
#include "sbuf.h"

typedef struct control control;

/* What the transport does after control_exec. */
typedef enum {
    CONTROL_NO_REPLY,   /* a blank line: nothing to send */
    CONTROL_REPLY,      /* send the reply, go on */
    CONTROL_CLOSE,      /* send the reply, then close (QUIT, SHUTDOWN) */
} control_result;

/* Run one parsed command against the daemon and append its reply line
 * ("OK ..." or "ERR ...", no newline) to out.  Independent of any socket,
 * so that every transport runs the same commands.  A refused command
 * (ERR) changes nothing. */
control_result control_exec(epx *x, const ctl_line *cl, sbuf *out);

control *control_new(epx *x);
/* Listen on addr:port (0 = any; later calls reuse the first port).  0, or
 * -1 with a message in err. */
int control_listen(control *c, const char *addr, int port, char *err, size_t errlen);
int control_port(const control *c);
void control_free(control *c);

#endif
