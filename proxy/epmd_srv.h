/* The EPMD server: listeners, request connections, registrations.  Speaks
 * exactly what OTP 25's epmd speaks (see epmd_codec.h), except that
 * PORT_PLEASE2, NAMES and DUMP give the proxy's ports. */
#ifndef EPMD_SRV_H
#define EPMD_SRV_H

#include "epx.h"

typedef struct epmd_srv epmd_srv;

epmd_srv *epmd_srv_new(epx *x);
/* Listen on addr:port (port 0 = any; every later call reuses the port the
 * first one got, as epmd binds one port on all its addresses).  0, or -1
 * with a message in err; *in_use is set when the port was taken. */
int epmd_srv_listen(epmd_srv *s, const char *addr, int port, char *err, size_t errlen,
                    int *in_use);
/* The port bound, or -1 before the first listen. */
int epmd_srv_port(const epmd_srv *s);
/* Close every listener and connection (registrations end). */
void epmd_srv_free(epmd_srv *s);

#endif
