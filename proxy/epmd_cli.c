#include "epmd_cli.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "epmd_codec.h"

/* Connect like epmd's client: ::1 first, then 127.0.0.1.  -1 on failure. */
static int connect_local(int port)
{
    int fd = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd >= 0) {
        struct sockaddr_in6 a6;
        memset(&a6, 0, sizeof a6);
        a6.sin6_family = AF_INET6;
        a6.sin6_port = htons((uint16_t)port);
        a6.sin6_addr = in6addr_loopback;
        if (connect(fd, (struct sockaddr *)&a6, sizeof a6) == 0)
            return fd;
        close(fd);
    }
    fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    struct sockaddr_in a4;
    memset(&a4, 0, sizeof a4);
    a4.sin_family = AF_INET;
    a4.sin_port = htons((uint16_t)port);
    a4.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&a4, sizeof a4) == 0)
        return fd;
    close(fd);
    return -1;
}

/* Read until len bytes or EOF; returns bytes read, -1 on error. */
static int read_fill(int fd, char *buf, int len)
{
    int got = 0;
    while (got < len) {
        ssize_t k = read(fd, buf + got, (size_t)(len - got));
        if (k < 0 && errno == EINTR)
            continue;
        if (k < 0)
            return got ? got : -1;
        if (k == 0)
            break;
        got += (int)k;
    }
    return got;
}

static int send_request(int fd, const char *body, size_t len)
{
    char buf[1100];
    buf[0] = (char)(len >> 8);
    buf[1] = (char)len;
    memcpy(buf + 2, body, len);
    if (write(fd, buf, len + 2) != (ssize_t)(len + 2)) {
        printf("epmd: Can't write to epmd\n");
        return -1;
    }
    return 0;
}

/* A short answer (KILL: 2 bytes, STOP: 7): what epmd prints when it is cut. */
static int short_answer(int rval)
{
    if (rval < 0)
        printf("epmd: failed to read answer from local epmd\n");
    return 1;
}

int epmd_cli_run(enum epmd_cli_mode mode, int port, const char *name)
{
    if (mode == EPMD_CLI_STOP && strlen(name) > 1000) {
        printf("epmd: Name too long!");
        return 1;
    }
    int fd = connect_local(port);
    if (fd < 0) {
        fprintf(stderr, "epmd: Cannot connect to local epmd\n");
        return 1;
    }
    int rc = 1;
    char buf[4096];
    switch (mode) {
    case EPMD_CLI_NAMES:
    case EPMD_CLI_DUMP: {
        char req = mode == EPMD_CLI_NAMES ? EPMD_NAMES_REQ : EPMD_DUMP_REQ;
        if (send_request(fd, &req, 1) < 0)
            break;
        uint8_t p4[4];
        if (read_fill(fd, (char *)p4, 4) != 4) {
            printf("epmd: no response from local epmd\n");
            break;
        }
        printf("epmd: up and running on port %u with data:\n", epmd_get32(p4));
        ssize_t k;
        while ((k = read(fd, buf, sizeof buf)) > 0)
            fwrite(buf, 1, (size_t)k, stdout);
        rc = 0;
        break;
    }
    case EPMD_CLI_KILL: {
        char req = EPMD_KILL_REQ;
        if (send_request(fd, &req, 1) < 0)
            break;
        int r = read_fill(fd, buf, 2);
        if (r == 2) {
            if (buf[0] == 'O' && buf[1] == 'K') {
                printf("Killed\n");
                rc = 0;
            } else {
                printf("Killing not allowed - living nodes in database.\n");
            }
        } else if (r < 0) {
            rc = short_answer(r);
        } else {
            buf[r] = 0;
            printf("epmd: local epmd responded with <%s>\n", buf);
        }
        break;
    }
    case EPMD_CLI_STOP: {
        char req[1100];
        size_t n = strlen(name);
        req[0] = EPMD_STOP_REQ;
        memcpy(req + 1, name, n);
        if (send_request(fd, req, n + 1) < 0)
            break;
        int r = read_fill(fd, buf, 7);
        if (r == 7) {
            buf[7] = 0;
            printf("%s\n", buf);
            rc = 0;
        } else if (r < 0) {
            rc = short_answer(r);
        } else {
            buf[r] = 0;
            printf("epmd: local epmd responded with <%s>\n", buf);
        }
        break;
    }
    default:
        break;
    }
    close(fd);
    fflush(stdout);
    return rc;
}
