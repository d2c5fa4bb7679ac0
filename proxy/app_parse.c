#include "app_parse.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>

/* The next blank-separated word of text[*i..len): its start and length. */
static size_t next_word(const char *text, size_t len, size_t *i, const char **w)
{
    while (*i < len && (text[*i] == ' ' || text[*i] == '\t'))
        (*i)++;
    *w = text + *i;
    size_t s = *i;
    while (*i < len && text[*i] != ' ' && text[*i] != '\t')
        (*i)++;
    return *i - s;
}

/* A port in decimal, 1..65535; -1 if not. */
static int parse_port(const char *w, size_t n)
{
    if (n == 0 || n > 5)
        return -1;
    int v = 0;
    for (size_t k = 0; k < n; k++) {
        if (w[k] < '0' || w[k] > '9')
            return -1;
        v = v * 10 + (w[k] - '0');
    }
    return v >= 1 && v <= 65535 ? v : -1;
}

int app_is_loopback(const struct sockaddr *sa)
{
    if (sa->sa_family == AF_INET)
        return (ntohl(((const struct sockaddr_in *)sa)->sin_addr.s_addr) >> 24) == 127;
    if (sa->sa_family == AF_INET6) {
        const struct in6_addr *a = &((const struct sockaddr_in6 *)sa)->sin6_addr;
        return IN6_IS_ADDR_LOOPBACK(a) || (IN6_IS_ADDR_V4MAPPED(a) && a->s6_addr[12] == 127);
    }
    return 0;
}

int app_parse(const char *text, size_t len, int nports, app_args *out, char *err,
              size_t errlen)
{
    const char *w;
    size_t i = 0, n;
    memset(out, 0, sizeof *out);
    n = next_word(text, len, &i, &w);
    if (!n) {
        snprintf(err, errlen, "needs a node name");
        return -1;
    }
    if (n > RULES_MAX_NAME || !rules_valid_name(w, n)) {
        snprintf(err, errlen, "not a node name");
        return -1;
    }
    memcpy(out->node, w, n);
    out->node[n] = 0;
    if (rules_is_pattern(out->node)) {
        snprintf(err, errlen, "a node name, not a pattern");
        return -1;
    }
    n = next_word(text, len, &i, &w);
    if ((out->port = parse_port(w, n)) < 0) {
        snprintf(err, errlen, "needs a port (1-65535)");
        return -1;
    }
    if (nports == 2) {
        n = next_word(text, len, &i, &w);
        if ((out->src_port = parse_port(w, n)) < 0) {
            snprintf(err, errlen, "needs a source port (1-65535)");
            return -1;
        }
        n = next_word(text, len, &i, &w);
        char addr[INET6_ADDRSTRLEN + 1];
        /* a NUL would end the address early: "127.0.0.1\0junk" is no address */
        if (n == 0 || n >= sizeof addr || memchr(w, 0, n)) {
            snprintf(err, errlen, "needs a destination address");
            return -1;
        }
        memcpy(addr, w, n);
        addr[n] = 0;
        struct sockaddr_in *a4 = (struct sockaddr_in *)&out->dest;
        struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)&out->dest;
        if (inet_pton(AF_INET, addr, &a4->sin_addr) == 1) {
            a4->sin_family = AF_INET;
            a4->sin_port = htons((uint16_t)out->port);
            out->destlen = sizeof *a4;
        } else if (inet_pton(AF_INET6, addr, &a6->sin6_addr) == 1) {
            a6->sin6_family = AF_INET6;
            a6->sin6_port = htons((uint16_t)out->port);
            out->destlen = sizeof *a6;
        } else {
            snprintf(err, errlen, "not an IP address: %s", addr);
            return -1;
        }
        if (!app_is_loopback((struct sockaddr *)&out->dest)) {
            snprintf(err, errlen, "not a loopback address: %s", addr);
            return -1;
        }
    }
    n = next_word(text, len, &i, &w);
    if (n) {
        snprintf(err, errlen, "too many arguments");
        return -1;
    }
    return 0;
}
