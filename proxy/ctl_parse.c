#include "ctl_parse.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "units.h"

static const struct {
    const char *name;
    ctl_cmd cmd;
    int args;         /* takes arguments (some optional) */
} commands[] = {
    { "PING", CTL_PING, 0 },       { "NODES", CTL_NODES, 0 },
    { "LINKS", CTL_LINKS, 0 },     { "RULES", CTL_RULES, 0 },
    { "STATUS", CTL_STATUS, 0 },   { "EVENTS", CTL_EVENTS, 1 },
    { "CUT", CTL_CUT, 1 },         { "FIX", CTL_FIX, 1 },
    { "SPLIT", CTL_SPLIT, 1 },
    { "ISOLATE", CTL_ISOLATE, 1 }, { "HEAL", CTL_HEAL, 0 },
    { "MODE", CTL_MODE, 1 },       { "SHUTDOWN", CTL_SHUTDOWN, 0 },
    { "QUIT", CTL_QUIT, 0 },
    { "APPLISTEN", CTL_APPLISTEN, 1 }, { "APPUNLISTEN", CTL_APPUNLISTEN, 1 },
    { "APPROUTE", CTL_APPROUTE, 1 },   { "APPCONNECT", CTL_APPCONNECT, 1 },
    { "APPS", CTL_APPS, 0 },
    { "APPUDP", CTL_APPUDP, 1 },       { "APPUNUDP", CTL_APPUNUDP, 1 },
    { "APPUDPROUTE", CTL_APPUDPROUTE, 1 },
    { "DELAY", CTL_DELAY, 1 },         { "RATE", CTL_RATE, 1 },
    { "RESET", CTL_RESET, 1 },         { "SLICE", CTL_SLICE, 1 },
    { "SLOWCLOSE", CTL_SLOWCLOSE, 1 }, { "CLEAR", CTL_CLEAR, 1 },
    { "FAULTS", CTL_FAULTS, 0 },       { "FLAP", CTL_FLAP, 1 },
    { "NEMESIS", CTL_NEMESIS, 1 },
    { "EPMDPORT", CTL_EPMDPORT, 1 },
};

long ctl_next_line(const char *buf, size_t n, size_t *consumed)
{
    const char *nl = memchr(buf, '\n', n);
    if (!nl)
        return -1;
    size_t len = (size_t)(nl - buf);
    *consumed = len + 1;
    if (len > 0 && buf[len - 1] == '\r')
        len--;
    return (long)len;
}

static int blank(char c)
{
    return c == ' ' || c == '\t' || c == '\r';
}

void ctl_parse_line(const char *line, size_t len, ctl_line *out)
{
    memset(out, 0, sizeof *out);
    size_t i = 0;
    while (i < len && blank(line[i]))
        i++;
    size_t w0 = i;
    while (i < len && !blank(line[i]))
        i++;
    size_t wlen = i - w0;
    while (i < len && blank(line[i]))
        i++;
    size_t end = len;
    while (end > i && blank(line[end - 1]))
        end--;
    out->args = line + i;
    out->argslen = end - i;
    size_t copy = wlen < sizeof out->word - 1 ? wlen : sizeof out->word - 1;
    memcpy(out->word, line + w0, copy);
    out->word[copy] = 0;
    if (wlen == 0) {
        out->cmd = CTL_EMPTY;
        return;
    }
    out->cmd = CTL_UNKNOWN;
    for (size_t k = 0; k < sizeof commands / sizeof commands[0]; k++) {
        if (strlen(commands[k].name) == wlen &&
            strncasecmp(commands[k].name, line + w0, wlen) == 0) {
            out->cmd = commands[k].cmd;
            return;
        }
    }
}

const char *ctl_cmd_name(ctl_cmd cmd)
{
    for (size_t k = 0; k < sizeof commands / sizeof commands[0]; k++)
        if (commands[k].cmd == cmd)
            return commands[k].name;
    return cmd == CTL_EMPTY ? "" : "UNKNOWN";
}

int ctl_cmd_takes_args(ctl_cmd cmd)
{
    for (size_t k = 0; k < sizeof commands / sizeof commands[0]; k++)
        if (commands[k].cmd == cmd)
            return commands[k].args;
    return 0;
}

int ctl_strip_for(const char *args, size_t *len, long long *for_ms, char *err, size_t errlen)
{
    size_t e = *len;
    while (e > 0 && blank(args[e - 1]))
        e--;
    size_t b = e;
    while (b > 0 && !blank(args[b - 1]))
        b--;
    size_t ke = b;
    while (ke > 0 && blank(args[ke - 1]))
        ke--;
    size_t kb = ke;
    while (kb > 0 && !blank(args[kb - 1]))
        kb--;
    if (b == e || ke - kb != 3 || strncasecmp(args + kb, "FOR", 3) != 0 ||
        (kb > 0 && !blank(args[kb - 1])))
        return 0;
    if (units_duration(args + b, e - b, for_ms) < 0 || *for_ms == 0) {
        snprintf(err, errlen, "FOR: '%.*s' is not a duration above 0 (like 2s, 500ms, 1m)",
                 (int)(e - b > 40 ? 40 : e - b), args + b);
        return -1;
    }
    while (kb > 0 && blank(args[kb - 1]))
        kb--;
    *len = kb;
    return 1;
}

/* The last blank-separated word of s[0..*len): *w, *wn; *len drops it and
 * the blanks before it.  0 if there is none. */
static int pop_word(const char *s, size_t *len, const char **w, size_t *wn)
{
    size_t e = *len;
    while (e > 0 && blank(s[e - 1]))
        e--;
    size_t b = e;
    while (b > 0 && !blank(s[b - 1]))
        b--;
    if (b == e)
        return 0;
    *w = s + b;
    *wn = e - b;
    while (b > 0 && blank(s[b - 1]))
        b--;
    *len = b;
    return 1;
}

int ctl_parse_flap(const char *args, size_t len, size_t *speclen, long long *up_ms,
                   long long *down_ms, char *err, size_t errlen)
{
    *up_ms = *down_ms = 0;
    for (int k = 0; k < 2; k++) {
        const char *v, *w;
        size_t vn, wn;
        long long ms;
        if (!pop_word(args, &len, &v, &vn) || !pop_word(args, &len, &w, &wn)) {
            snprintf(err, errlen, "FLAP needs islands, UP <duration> and DOWN <duration>");
            return -1;
        }
        long long *slot = wn == 2 && !strncasecmp(w, "UP", 2)     ? up_ms
                        : wn == 4 && !strncasecmp(w, "DOWN", 4) ? down_ms : NULL;
        if (!slot || *slot) {
            snprintf(err, errlen, "FLAP needs islands, UP <duration> and DOWN <duration>");
            return -1;
        }
        if (units_duration(v, vn, &ms) < 0 || ms < 10) {
            snprintf(err, errlen, "FLAP: %.*s '%.*s' is not a duration of 10ms or more", (int)wn,
                     w, (int)(vn > 40 ? 40 : vn), v);
            return -1;
        }
        *slot = ms;
    }
    *speclen = len;
    return 0;
}
