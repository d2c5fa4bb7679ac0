#include "ctl_parse.h"

#include <string.h>
#include <strings.h>

static const struct {
    const char *name;
    ctl_cmd cmd;
} commands[] = {
    { "PING", CTL_PING },       { "NODES", CTL_NODES },
    { "LINKS", CTL_LINKS },     { "RULES", CTL_RULES },
    { "STATUS", CTL_STATUS },   { "EVENTS", CTL_EVENTS },
    { "CUT", CTL_CUT },         { "FIX", CTL_FIX },
    { "SPLIT", CTL_SPLIT },
    { "ISOLATE", CTL_ISOLATE }, { "HEAL", CTL_HEAL },
    { "MODE", CTL_MODE },       { "SHUTDOWN", CTL_SHUTDOWN },
    { "QUIT", CTL_QUIT },
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
