/* The control port: a line protocol for tests and tools (README.md). */
#ifndef CONTROL_H
#define CONTROL_H

#include "epx.h"
#include "sbuf.h"

typedef struct control control;

control *control_new(epx *x);
/* Listen on addr:port (0 = any; later calls reuse the first port).  0, or
 * -1 with a message in err. */
int control_listen(control *c, const char *addr, int port, char *err, size_t errlen);
int control_port(const control *c);
void control_free(control *c);

/* Run one command line (no terminator) of the line protocol and append its
 * reply to o without a newline: "OK ...", "ERR ...", nothing for a blank
 * line.  The one implementation of every command, for the line protocol
 * and for HTTP.  Returns 1 if the connection that sent it should close
 * after the reply (QUIT, SHUTDOWN), else 0. */
int control_exec(epx *x, const char *line, size_t len, sbuf *o);

#endif
