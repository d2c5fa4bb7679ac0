/* The arguments of the shim's control commands (APPLISTEN, APPUNLISTEN,
 * APPROUTE, APPCONNECT): pure functions, no sockets. */
#ifndef APP_PARSE_H
#define APP_PARSE_H

#include <netinet/in.h>
#include <stddef.h>
#include <sys/socket.h>

#include "rules.h"

typedef struct app_args {
    char node[RULES_MAX_NAME + 1];   /* the sender's node name */
    int port;                        /* the listening / destination port */
    int src_port;                    /* APPCONNECT: the connecting socket's port */
    struct sockaddr_storage dest;    /* APPCONNECT: the address it asked for (port set) */
    socklen_t destlen;
} app_args;

/* "NODE PORT" (nports 1) or "NODE DEST_PORT SRC_PORT DEST_ADDR" (nports 2:
 * APPCONNECT; DEST_ADDR a numeric loopback address, 127/8, ::1 or
 * ::ffff:127.x).  Ports are 1..65535 in decimal; NODE a plain node name
 * (no pattern).  0, or -1 with a message in err. */
int app_parse(const char *text, size_t len, int nports, app_args *out, char *err,
              size_t errlen);

/* Is sa a loopback address (127/8, ::1, ::ffff:127.x)? */
int app_is_loopback(const struct sockaddr *sa);

#endif
