#include "ctl_parse.h"

#include <string.h>
#include <strings.h>

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
