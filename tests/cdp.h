/* A headless Chromium driven over the DevTools protocol on a pipe
 * (--remote-debugging-pipe: commands as NUL-terminated JSON on the
 * browser's fd 3, replies and events on its fd 4), for tests of the
 * dashboard in a real browser.  The browser runs in its own process group
 * with a scratch profile; cdp_stop ends the group and removes the profile. */
#ifndef CDP_H
#define CDP_H

#include <stddef.h>
#include <sys/types.h>

typedef struct cdp {
    pid_t pid;              /* the browser, leader of its process group */
    int to, from;           /* our ends of its fd 3 and fd 4 */
    char *buf;              /* bytes read, not yet a whole message */
    size_t len, cap;
    char session[128];      /* the page's session id */
    int id;                 /* last command id */
    char profile[128];      /* scratch --user-data-dir */
    char err[512];
} cdp;

/* The browser to run: $EPX_CHROMIUM, else Debian's chromium; NULL if none. */
const char *cdp_browser(void);

/* Start the browser on url with a width x height window and attach to the
 * page.  0, or -1 with a message in c->err (the browser is stopped). */
int cdp_start(cdp *c, const char *url, int width, int height, int timeout_ms);

/* Evaluate a JavaScript expression in the page; its value, as a string
 * (String(value)), goes to out.  0, or -1 with a message in c->err. */
int cdp_eval(cdp *c, const char *expr, char *out, size_t outlen, int timeout_ms);

/* Save a PNG of the page at path.  0, or -1. */
int cdp_screenshot(cdp *c, const char *path, int timeout_ms);

/* Close the browser (kill its process group if it does not go), reap it,
 * remove its profile. */
void cdp_stop(cdp *c);

#endif
