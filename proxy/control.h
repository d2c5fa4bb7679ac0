/* The control port: a line protocol for tests and tools (README.md). */
#ifndef CONTROL_H
#define CONTROL_H

#include "epx.h"

typedef struct control control;

control *control_new(epx *x);
/* Listen on addr:port (0 = any; later calls reuse the first port).  0, or
 * -1 with a message in err. */
int control_listen(control *c, const char *addr, int port, char *err, size_t errlen);
int control_port(const control *c);
void control_free(control *c);

#endif
