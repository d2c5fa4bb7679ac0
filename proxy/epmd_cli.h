/* epmd's client modes (-names, -dump, -kill, -stop NAME): ask the server on
 * a port and print what epmd itself would print. */
#ifndef EPMD_CLI_H
#define EPMD_CLI_H

enum epmd_cli_mode { EPMD_CLI_NONE = 0, EPMD_CLI_NAMES, EPMD_CLI_DUMP, EPMD_CLI_KILL, EPMD_CLI_STOP };

/* Run one client mode against 127.0.0.1 (or ::1) on port.  Returns the exit
 * status: 0 done, 1 failed (the message is printed as epmd prints it). */
int epmd_cli_run(enum epmd_cli_mode mode, int port, const char *name);

#endif
