/* epx_apptool: a small non-Erlang cluster member for tests/check_preload.c,
 * run under the LD_PRELOAD shim (epx_fixture_spawn, epx-cluster exec).
 *
 *   epx_apptool serve FILE          echo server on 127.0.0.1 (or [::1] with
 *                                   serve6); writes its port to FILE once
 *                                   listening; one thread per connection
 *   epx_apptool nbclient PORT FILE  non-blocking connect to 127.0.0.1:PORT
 *                                   (EINPROGRESS, poll, SO_ERROR), check
 *                                   getpeername, echo "ping", then write
 *                                   "ok ..." or "fail <why>" to FILE
 *   epx_apptool refused PORT FILE   the same connect must fail with
 *                                   ECONNREFUSED (nobody listens there)
 *   epx_apptool udpsend PORT BASE FILE
 *                                   one <<Seq:32>> datagram to 127.0.0.1:PORT
 *                                   by each way of sending: sendto BASE,
 *                                   sendmsg BASE+1, sendmmsg BASE+2 and +3,
 *                                   then connect() and send BASE+4, write
 *                                   BASE+5, sendmmsg BASE+6; "ok" if every
 *                                   call reported the whole datagram sent
 *   epx_apptool udpbench PORT N     N sendto()s of 4 bytes to 127.0.0.1:PORT;
 *                                   prints "ns_per_sendto=X" on stdout
 *
 * The result file is written whole under a temporary name and renamed, so
 * a reader never sees half of it.  Exit status 0 when it says "ok". */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#define DEADLINE_MS 20000

static void put_file(const char *path, const char *text)
{
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    if (!f)
        exit(3);
    fputs(text, f);
    fclose(f);
    rename(tmp, path);
}

static void *echo_thread(void *arg)
{
    int fd = (int)(long)arg;
    char buf[65536];
    for (;;) {
        ssize_t n = read(fd, buf, sizeof buf);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        for (ssize_t off = 0; off < n;) {
            ssize_t w = write(fd, buf + off, (size_t)(n - off));
            if (w < 0 && errno == EINTR)
                continue;
            if (w <= 0)
                goto out;
            off += w;
        }
    }
out:
    close(fd);
    return NULL;
}

static int serve(const char *file, int v6)
{
    int l = socket(v6 ? AF_INET6 : AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof ss);
    socklen_t sl;
    if (v6) {
        struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
        a->sin6_family = AF_INET6;
        a->sin6_addr = in6addr_loopback;
        sl = sizeof *a;
    } else {
        struct sockaddr_in *a = (struct sockaddr_in *)&ss;
        a->sin_family = AF_INET;
        a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        sl = sizeof *a;
    }
    if (l < 0 || bind(l, (struct sockaddr *)&ss, sl) < 0 || listen(l, 64) < 0) {
        perror("epx_apptool serve");
        return 1;
    }
    sl = sizeof ss;
    getsockname(l, (struct sockaddr *)&ss, &sl);
    int port = v6 ? ntohs(((struct sockaddr_in6 *)&ss)->sin6_port)
                  : ntohs(((struct sockaddr_in *)&ss)->sin_port);
    char text[32];
    snprintf(text, sizeof text, "%d\n", port);
    put_file(file, text);
    for (;;) {
        int fd = accept4(l, NULL, NULL, SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED)
                continue;
            perror("epx_apptool accept");
            return 1;
        }
        pthread_t t;
        if (pthread_create(&t, NULL, echo_thread, (void *)(long)fd) != 0)
            close(fd);
        else
            pthread_detach(t);
    }
}

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Wait for events on fd until the deadline; revents, or 0 on timeout. */
static short wait_fd(int fd, short events, long long deadline)
{
    for (;;) {
        long long left = deadline - now_ms();
        if (left <= 0)
            return 0;
        struct pollfd p = { fd, events, 0 };
        int r = poll(&p, 1, (int)left);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return 0;
        return p.revents;
    }
}

static int client(int port, const char *file, int expect_refused)
{
    char out[512];
    long long deadline = now_ms() + DEADLINE_MS;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons((unsigned short)port);
    errno = 0;
    int r = connect(fd, (struct sockaddr *)&a, sizeof a);
    int e = errno;
    if (r == 0) {
        /* loopback may connect at once; fine, but say so */
    } else if (e != EINPROGRESS && !(expect_refused && e == ECONNREFUSED)) {
        snprintf(out, sizeof out, "fail connect: %s\n", strerror(e));
        goto done;
    }
    int soerr = expect_refused && r < 0 && e == ECONNREFUSED ? ECONNREFUSED : 0;
    if (r < 0 && e == EINPROGRESS) {
        if (!wait_fd(fd, POLLOUT, deadline)) {
            snprintf(out, sizeof out, "fail never writable\n");
            goto done;
        }
        socklen_t sl = sizeof soerr;
        if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) < 0) {
            snprintf(out, sizeof out, "fail SO_ERROR: %s\n", strerror(errno));
            goto done;
        }
    }
    if (expect_refused) {
        if (soerr == ECONNREFUSED)
            snprintf(out, sizeof out, "ok refused (connect %s)\n",
                     r < 0 && e == EINPROGRESS ? "EINPROGRESS" : "at once");
        else
            snprintf(out, sizeof out, "fail expected ECONNREFUSED, SO_ERROR says %s\n",
                     soerr ? strerror(soerr) : "connected");
        goto done;
    }
    if (soerr) {
        snprintf(out, sizeof out, "fail SO_ERROR %s\n", strerror(soerr));
        goto done;
    }
    struct sockaddr_in peer;
    socklen_t pl = sizeof peer;
    if (getpeername(fd, (struct sockaddr *)&peer, &pl) < 0 || peer.sin_family != AF_INET ||
        peer.sin_addr.s_addr != htonl(INADDR_LOOPBACK) || ntohs(peer.sin_port) != port) {
        snprintf(out, sizeof out, "fail getpeername gives port %d, asked for %d\n",
                 ntohs(peer.sin_port), port);
        goto done;
    }
    if (send(fd, "ping", 4, MSG_NOSIGNAL) != 4) {
        snprintf(out, sizeof out, "fail send: %s\n", strerror(errno));
        goto done;
    }
    char got[5] = { 0 };
    size_t n = 0;
    while (n < 4) {
        if (!wait_fd(fd, POLLIN, deadline)) {
            snprintf(out, sizeof out, "fail no echo in time (%zu bytes)\n", n);
            goto done;
        }
        ssize_t k = recv(fd, got + n, 4 - n, 0);
        if (k < 0 && (errno == EAGAIN || errno == EINTR))
            continue;
        if (k <= 0) {
            snprintf(out, sizeof out, "fail echo: %s\n", k ? strerror(errno) : "EOF");
            goto done;
        }
        n += (size_t)k;
    }
    snprintf(out, sizeof out, "%s connect=%s peer=127.0.0.1:%d echo=%s\n",
             strcmp(got, "ping") ? "fail" : "ok", r < 0 ? "EINPROGRESS" : "at-once", port, got);
done:
    put_file(file, out);
    return strncmp(out, "ok", 2) ? 1 : 0;
}

/* One <<Seq:32>> datagram through each sending call (see the top). */
static int udpsend(int port, unsigned base, const char *file)
{
    char out[512] = "ok";
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons((unsigned short)port);
    unsigned char d[8][4];
    for (unsigned i = 0; i < 8; i++) {
        uint32_t v = htonl(base + i);
        memcpy(d[i], &v, 4);
    }
    long r[8];
    memset(r, 0, sizeof r);
    r[0] = sendto(fd, d[0], 4, 0, (struct sockaddr *)&a, sizeof a);
    struct iovec iov[8];
    for (int i = 0; i < 8; i++)
        iov[i] = (struct iovec){ d[i], 4 };
    struct msghdr m = { .msg_name = &a, .msg_namelen = sizeof a, .msg_iov = &iov[1],
                        .msg_iovlen = 1 };
    r[1] = sendmsg(fd, &m, 0);
    struct mmsghdr mm[2];
    memset(mm, 0, sizeof mm);
    for (int i = 0; i < 2; i++) {
        mm[i].msg_hdr = (struct msghdr){ .msg_name = &a, .msg_namelen = sizeof a,
                                         .msg_iov = &iov[2 + i], .msg_iovlen = 1 };
    }
    int k = sendmmsg(fd, mm, 2, 0);
    r[2] = k == 2 ? (long)mm[0].msg_len : -1;
    r[3] = k == 2 ? (long)mm[1].msg_len : -1;
    if (connect(fd, (struct sockaddr *)&a, sizeof a) < 0) {
        snprintf(out, sizeof out, "fail connect: %s", strerror(errno));
        goto done;
    }
    r[4] = send(fd, d[4], 4, 0);
    r[5] = write(fd, d[5], 4);
    memset(mm, 0, sizeof mm);
    mm[0].msg_hdr = (struct msghdr){ .msg_iov = &iov[6], .msg_iovlen = 1 };
    k = sendmmsg(fd, mm, 1, 0);
    r[6] = k == 1 ? (long)mm[0].msg_len : -1;
    for (int i = 0; i < 7; i++)
        if (r[i] != 4) {
            snprintf(out, sizeof out, "fail call %d returned %ld (%s)", i, r[i], strerror(errno));
            break;
        }
done:
    close(fd);
    strcat(out, "\n");
    put_file(file, out);
    return strncmp(out, "ok", 2) ? 1 : 0;
}

static long long now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* The cost of a sendto() to loopback, warm (after the first). */
static int udpbench(int port, long n)
{
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons((unsigned short)port);
    if (fd < 0 || sendto(fd, "warm", 4, 0, (struct sockaddr *)&a, sizeof a) != 4)
        return 1;
    long long t0 = now_ns();
    for (long i = 0; i < n; i++)
        if (sendto(fd, "benc", 4, 0, (struct sockaddr *)&a, sizeof a) != 4)
            return 1;
    long long t1 = now_ns();
    printf("ns_per_sendto=%.1f\n", (double)(t1 - t0) / (double)n);
    close(fd);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc == 5 && !strcmp(argv[1], "udpsend"))
        return udpsend(atoi(argv[2]), (unsigned)atoi(argv[3]), argv[4]);
    if (argc == 4 && !strcmp(argv[1], "udpbench"))
        return udpbench(atoi(argv[2]), atol(argv[3]));
    if (argc == 3 && !strcmp(argv[1], "serve"))
        return serve(argv[2], 0);
    if (argc == 3 && !strcmp(argv[1], "serve6"))
        return serve(argv[2], 1);
    if (argc == 4 && !strcmp(argv[1], "nbclient"))
        return client(atoi(argv[2]), argv[3], 0);
    if (argc == 4 && !strcmp(argv[1], "refused"))
        return client(atoi(argv[2]), argv[3], 1);
    fprintf(stderr, "usage: epx_apptool serve|serve6 FILE | nbclient|refused PORT FILE |\n"
                    "       udpsend PORT BASE FILE | udpbench PORT N\n");
    return 2;
}
