/* Suite "relay": the daemon's distribution proxy seen from both ends, with
 * fake nodes (no Erlang).  A fake node "b" registers; the test connects to
 * b's proxy port as initiator a@localhost and accepts the daemon's
 * connection on b's own listener. */
#include <check.h>
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <linux/tcp.h>

#include "fakenode.h"
#include "testutil.h"
#include "tucase.h"

static tu_daemon D;
static fn_node B;

static void setup(void)
{
    ck_assert_msg(tu_daemon_start(&D, NULL) == 0, "epmdpxy did not start (%s)",
                  tu_epmdpxy_path());
    ck_assert_msg(fn_node_start(&B, D.epmd_port, "b") == 0, "fake node b: %s", fn_err());
}

static void teardown(void)
{
    fn_close_all();
    tu_daemon_stop(&D);
}

#define ASSERT_OK(expr) ck_assert_msg((expr) == 0, "%s: %s", #expr, fn_err())
#define ASSERT_ALIVE() ck_assert_msg(fn_daemon_alive(&D) == 0, "%s", fn_err())

/* The LINKS entry whose from is `from`: 1 if found (copied to *out). */
static int link_of(const char *from, fn_linkinfo *out)
{
    fn_linkinfo ls[64];
    int n = fn_get_links(D.control_port, ls, 64);
    for (int i = 0; i < n && i < 64; i++)
        if (strcmp(ls[i].from, from) == 0) {
            *out = ls[i];
            return 1;
        }
    return 0;
}

static int links_count(void)
{
    fn_linkinfo ls[4];
    return fn_get_links(D.control_port, ls, 4);
}

static void assert_no_links(const char *after)
{
    int ok = TU_WAIT_UNTIL(links_count() == 0, 10000);
    if (!ok) {
        char *r = fn_ctl_cmd(D.control_port, "LINKS");
        ck_abort_msg("after %s the link is still listed 10 s later: %s", after,
                     r ? r : fn_err());
    }
}

/* ------------------------------------------------------------- frames */

START_TEST(first_frame_byte_exact)
{
    fn_link l;
    ASSERT_OK(fn_link_open(&l, &B, "a@localhost"));
    /* Nothing but the frame arrives. */
    uint8_t extra[16];
    int eof = 0;
    size_t k = tu_read_until_eof(l.acc, extra, sizeof extra, 200, &eof);
    ck_assert_msg(k == 0 && !eof, "after the first frame the node got %zu more bytes%s", k,
                  eof ? " and EOF" : "");
    ASSERT_OK(fn_link_handshake(&l, "b@localhost"));
    ASSERT_ALIVE();
}
END_TEST

START_TEST(first_frame_one_byte_per_write)
{
    uint8_t f[128];
    size_t len = fn_frame_send_name(f, "slow@localhost", FN_FLAGS, 77);
    int ini = fn_connect(B.proxy_port, NULL);
    ck_assert_msg(ini >= 0, "%s", fn_err());
    fn_nodelay(ini);
    for (size_t i = 0; i < len; i++) {
        ck_assert_msg(fn_send_all(ini, f + i, 1) == 0, "byte %zu: %s", i, fn_err());
        /* The daemon connects to the node only once it has the whole
         * frame; this also paces the bytes into separate segments. */
        if (i + 1 < len)
            ck_assert_msg(!fn_pending(B.lfd, 5),
                          "the daemon connected to the node after %zu of %zu bytes of "
                          "the first frame", i + 1, len);
    }
    fn_link l = { .ini = ini, .out = len };
    l.acc = fn_accept(B.lfd, 10000);
    ck_assert_msg(l.acc >= 0, "%s", fn_err());
    uint8_t got[128];
    ck_assert_msg(tu_read_exact(l.acc, got, len, 10000) == 0, "first frame did not arrive");
    ck_assert_msg(memcmp(got, f, len) == 0, "first frame differs");
    ASSERT_OK(fn_link_handshake(&l, "b@localhost"));
    ASSERT_OK(fn_xfer(l.ini, l.acc, 10000, 10000, 11, 10000));
    fn_linkinfo li;
    ck_assert_msg(TU_WAIT_UNTIL(link_of("slow@localhost", &li) && !strcmp(li.state, "up"),
                                10000), "LINKS has no up link from slow@localhost");
}
END_TEST

START_TEST(old_n_frame)
{
    uint8_t f[128];
    size_t len = fn_frame_old_send_name(f, "old@localhost", 0x3ffffff4u);
    fn_link l;
    ASSERT_OK(fn_link_open_frame(&l, &B, f, len));
    fn_linkinfo li;
    ck_assert_msg(TU_WAIT_UNTIL(link_of("old@localhost", &li), 10000),
                  "LINKS shows no link from old@localhost after an old 'n' first frame");
    ASSERT_OK(fn_link_handshake(&l, "b@localhost"));
    ck_assert_msg(TU_WAIT_UNTIL(link_of("old@localhost", &li) && !strcmp(li.state, "up"),
                                10000), "old-format link never shown up");
    ASSERT_OK(fn_xfer(l.ini, l.acc, 5000, 5000, 12, 10000));
}
END_TEST

/* Connect, send `bytes`, expect a close and no connection to the node. */
static void expect_rejected(const char *what, const void *bytes, size_t n)
{
    int ini = fn_connect(B.proxy_port, NULL);
    ck_assert_msg(ini >= 0, "%s: %s", what, fn_err());
    fn_send_all(ini, bytes, n);
    size_t got = 0;
    int reset = 0;
    ck_assert_msg(fn_wait_eof(ini, 10000, &got, &reset) == 1,
                  "%s: the daemon kept the initiator open for 10 s", what);
    ck_assert_msg(got == 0, "%s: the initiator was sent %zu bytes before the close", what, got);
    ck_assert_msg(!fn_pending(B.lfd, 300), "%s: the daemon connected to the node anyway", what);
    fn_close(ini);
}

START_TEST(garbage_first_frame_closed)
{
    uint8_t b[2048];
    memset(b, 'z', sizeof b);
    /* Wrong type byte. */
    size_t len = fn_frame_send_name(b, "x@localhost", FN_FLAGS, 5);
    b[2] = 'X';
    expect_rejected("type byte 'X'", b, len);
    /* Len 0. */
    expect_rejected("Len 0", "\0\0\0\0\0\0\0\0", 8);
    /* Len 65535, then part of an 'N' body. */
    len = fn_frame_send_name(b, "x@localhost", FN_FLAGS, 5);
    b[0] = b[1] = 0xff;
    expect_rejected("Len 65535", b, 200);
    /* 'N' frame shorter than its fixed part. */
    expect_rejected("'N' frame of 3 bytes", "\0\3Nab", 5);
    /* 'N' frame whose Nlen runs past the frame. */
    len = fn_frame_send_name(b, "x@localhost", FN_FLAGS, 5);
    b[15] = 0;
    b[16] = 200;
    expect_rejected("'N' frame with Nlen past its end", b, len);
    /* The daemon still serves a good link. */
    fn_link l;
    ASSERT_OK(fn_link_open(&l, &B, "a@localhost"));
    ASSERT_OK(fn_link_handshake(&l, "b@localhost"));
    ASSERT_ALIVE();
}
END_TEST

/* Initiators that never complete the first frame must not hold the
 * daemon's fds for ever (Erlang gives a handshake net_setuptime, 7 s), and
 * the deadline is a timer in the daemon's loop: each connection is closed
 * NAME_TIMEOUT after it was accepted, not at the next poll of some tick.
 * The three are opened a third of a second apart, so a once-a-second
 * check would be at least 667 ms late for one of them. */
START_TEST(silent_initiator_times_out)
{
    enum { N = 3, NAME_TIMEOUT_MS = 15000, LATE_MS = 500, SPACING_MS = 333 };
    uint8_t f[128];
    size_t len = fn_frame_send_name(f, "slowloris@localhost", FN_FLAGS, 1);
    static const char *sent[N] = { "nothing", "1 byte", "all but 1 byte of its frame" };
    int fds[N];
    long long opened[N], closed[N];
    for (int i = 0; i < N; i++) {
        /* pacing, not synchronisation: the spacing is what is measured */
        if (i && opened[0] + i * SPACING_MS > tu_now_ms())
            tu_sleep_ms((int)(opened[0] + i * SPACING_MS - tu_now_ms()));
        fds[i] = fn_connect(B.proxy_port, NULL);
        ck_assert_msg(fds[i] >= 0, "%s", fn_err());
        opened[i] = tu_now_ms();
        closed[i] = 0;
        if (i == 1)
            fn_send_all(fds[i], f, 1);           /* one byte of Len */
        else if (i == 2)
            fn_send_all(fds[i], f, len - 1);
    }
    /* One that leaves before its deadline: its timer must go with it (a
     * timer firing on the freed link is what the sanitizers would see). */
    int quitter = fn_connect(B.proxy_port, NULL);
    ck_assert_msg(quitter >= 0, "%s", fn_err());
    fn_close(quitter);

    long long deadline = opened[0] + 60000;
    for (int left = N; left > 0;) {
        ck_assert_msg(tu_now_ms() < deadline, "%d of %d silent initiators still open after 60 s",
                      left, N);
        struct pollfd p[N];
        for (int i = 0; i < N; i++)
            p[i] = (struct pollfd){ closed[i] ? -1 : fds[i], POLLIN, 0 };
        if (poll(p, N, 1000) <= 0)
            continue;
        for (int i = 0; i < N; i++) {
            if (closed[i] || !p[i].revents)
                continue;
            char c;
            ssize_t k = recv(fds[i], &c, 1, MSG_DONTWAIT);
            ck_assert_msg(k <= 0, "initiator %d (sent %s) was sent data", i, sent[i]);
            if (k < 0 && (errno == EAGAIN || errno == EINTR))
                continue;
            closed[i] = tu_now_ms();
            left--;
        }
    }
    for (int i = 0; i < N; i++) {
        long long ms = closed[i] - opened[i];
        printf("relay slowloris: initiator %d (sent %s) closed after %lld ms\n", i, sent[i], ms);
        ck_assert_msg(ms >= NAME_TIMEOUT_MS - 100 && ms <= NAME_TIMEOUT_MS + LATE_MS,
                      "initiator %d (sent %s) closed after %lld ms, want %d ms (+%d)", i, sent[i],
                      ms, NAME_TIMEOUT_MS, LATE_MS);
    }
    ck_assert_msg(!fn_pending(B.lfd, 0), "the daemon connected to the node for a half frame");
    ASSERT_ALIVE();
}
END_TEST

START_TEST(node_port_dead)
{
    /* b stays registered but nothing listens on its port any more. */
    fn_close(B.lfd);
    B.lfd = -1;
    int ini = fn_connect(B.proxy_port, NULL);
    ck_assert_msg(ini >= 0, "%s", fn_err());
    uint8_t f[128];
    size_t len = fn_frame_send_name(f, "a@localhost", FN_FLAGS, 5);
    ck_assert(fn_send_all(ini, f, len) == 0);
    size_t got = 0;
    ck_assert_msg(fn_wait_eof(ini, 10000, &got, NULL) == 1,
                  "initiator not closed within 10 s when the node's port refuses");
    assert_no_links("a refused connect to the node");
    ASSERT_ALIVE();
}
END_TEST

/* -------------------------------------------------------------- LINKS */

START_TEST(links_states_and_counters)
{
    fn_link l;
    ASSERT_OK(fn_link_open(&l, &B, "a@localhost"));
    fn_linkinfo li;
    ck_assert_msg(TU_WAIT_UNTIL(link_of("a@localhost", &li), 10000),
                  "LINKS has no link from a@localhost: %s", fn_err());
    ck_assert_msg(!strcmp(li.state, "handshake"), "state %s before any reply, want handshake",
                  li.state);
    ck_assert_msg(!strcmp(li.to, "b") || !strncmp(li.to, "b@", 2),
                  "to is \"%s\", want b or b@...", li.to);
    ck_assert_msg(TU_WAIT_UNTIL(link_of("a@localhost", &li) &&
                                li.bytes_out == (long long)l.out, 10000),
                  "bytes_out %lld, want %llu (the first frame)", li.bytes_out,
                  (unsigned long long)l.out);
    ck_assert_msg(li.bytes_in == 0, "bytes_in %lld before the node sent anything", li.bytes_in);

    uint8_t f[256];
    size_t len = fn_frame_status(f, "ok");
    ASSERT_OK(fn_pass(l.acc, l.ini, f, len, 10000));
    l.in += len;
    len = fn_frame_challenge(f, "b@localhost", FN_FLAGS, 0xdeadbeef, 99);
    ASSERT_OK(fn_pass(l.acc, l.ini, f, len, 10000));
    l.in += len;
    ck_assert_msg(TU_WAIT_UNTIL(link_of("a@localhost", &li) && !strcmp(li.to, "b@localhost"),
                                10000),
                  "after the challenge named b@localhost, LINKS to is \"%s\"", li.to);
    ck_assert_msg(!strcmp(li.state, "handshake"), "state %s after the challenge", li.state);
    fn_nodeinfo ns[8];
    int nn = fn_get_nodes(D.control_port, ns, 8);
    ck_assert_msg(nn == 1, "NODES: %d entries (%s)", nn, fn_err());
    ck_assert_msg(!ns[0].node_null && !strcmp(ns[0].node, "b@localhost"),
                  "NODES node is \"%s\"%s after the challenge, want b@localhost", ns[0].node,
                  ns[0].node_null ? " (null)" : "");

    len = fn_frame_reply(f, 0xdeadbeef);
    ASSERT_OK(fn_pass(l.ini, l.acc, f, len, 10000));
    l.out += len;
    ck_assert_msg(link_of("a@localhost", &li), "link vanished");
    ck_assert_msg(!strcmp(li.state, "handshake"), "state %s after 'r', before the ack",
                  li.state);
    len = fn_frame_ack(f);
    ASSERT_OK(fn_pass(l.acc, l.ini, f, len, 10000));
    l.in += len;
    ck_assert_msg(TU_WAIT_UNTIL(link_of("a@localhost", &li) && !strcmp(li.state, "up"), 10000),
                  "state %s after the ack, want up", li.state);
    ck_assert_msg(TU_WAIT_UNTIL(link_of("a@localhost", &li) &&
                                li.bytes_out == (long long)l.out &&
                                li.bytes_in == (long long)l.in, 10000),
                  "counters out %lld in %lld, want %llu %llu", li.bytes_out, li.bytes_in,
                  (unsigned long long)l.out, (unsigned long long)l.in);

    ASSERT_OK(fn_xfer(l.ini, l.acc, 123456, 65432, 13, 10000));
    l.out += 123456;
    l.in += 65432;
    ck_assert_msg(TU_WAIT_UNTIL(link_of("a@localhost", &li) &&
                                li.bytes_out == (long long)l.out &&
                                li.bytes_in == (long long)l.in, 10000),
                  "counters out %lld in %lld after data, want %llu %llu", li.bytes_out,
                  li.bytes_in, (unsigned long long)l.out, (unsigned long long)l.in);
    fn_status st;
    ASSERT_OK(fn_get_status(D.control_port, &st));
    ck_assert_msg(st.links == 1 && st.nodes == 1, "STATUS nodes %lld links %lld, want 1 1",
                  st.nodes, st.links);
    fn_link_close(&l);
    assert_no_links("both ends closed");
}
END_TEST

/* Pass n bytes from src to dst one byte per write, each read before the
 * next is sent, so the daemon sees them one at a time. */
static void pass_bytewise(int src, int dst, const uint8_t *b, size_t n, const char *what)
{
    for (size_t i = 0; i < n; i++) {
        uint8_t g;
        ck_assert_msg(fn_send_all(src, b + i, 1) == 0 && tu_read_exact(dst, &g, 1, 10000) == 0 &&
                      g == b[i], "%s: byte %zu of %zu not relayed", what, i, n);
    }
}

START_TEST(handshake_split_and_coalesced)
{
    uint8_t f[512];
    size_t len;
    fn_linkinfo li;
    /* The node's frames one byte at a time. */
    fn_link l;
    ASSERT_OK(fn_link_open(&l, &B, "split@localhost"));
    fn_nodelay(l.acc);
    fn_nodelay(l.ini);
    len = fn_frame_status(f, "ok");
    len += fn_frame_challenge(f + len, "b@localhost", FN_FLAGS, 42, 43);
    pass_bytewise(l.acc, l.ini, f, len, "status+challenge");
    ck_assert_msg(TU_WAIT_UNTIL(link_of("split@localhost", &li) && !strcmp(li.to, "b@localhost"),
                                10000), "split challenge: LINKS to is \"%s\"", li.to);
    len = fn_frame_reply(f, 42);
    ASSERT_OK(fn_pass(l.ini, l.acc, f, len, 10000));
    ck_assert_msg(link_of("split@localhost", &li) && !strcmp(li.state, "handshake"),
                  "state %s before the ack", li.state);
    len = fn_frame_ack(f);
    pass_bytewise(l.acc, l.ini, f, len, "ack");
    ck_assert_msg(TU_WAIT_UNTIL(link_of("split@localhost", &li) && !strcmp(li.state, "up"),
                                10000), "split ack: state %s, want up", li.state);
    ASSERT_OK(fn_xfer(l.ini, l.acc, 50000, 50000, 41, 10000));

    /* The node's frames coalesced: status+challenge in one write, then the
     * ack and the first data frames in one write. */
    fn_link m;
    ASSERT_OK(fn_link_open(&m, &B, "coal@localhost"));
    len = fn_frame_status(f, "ok");
    len += fn_frame_challenge(f + len, "b@localhost", FN_FLAGS, 42, 43);
    ASSERT_OK(fn_pass(m.acc, m.ini, f, len, 10000));
    len = fn_frame_reply(f, 42);
    ASSERT_OK(fn_pass(m.ini, m.acc, f, len, 10000));
    len = fn_frame_ack(f);
    static const uint8_t data[] = { 0, 0, 0, 0, 0, 0, 0, 3, 'a', 'b', 'c', 0, 0, 0, 0 };
    memcpy(f + len, data, sizeof data);
    ASSERT_OK(fn_pass(m.acc, m.ini, f, len + sizeof data, 10000));
    ck_assert_msg(TU_WAIT_UNTIL(link_of("coal@localhost", &li) && !strcmp(li.state, "up"),
                                10000), "coalesced ack: state %s, want up", li.state);
    ASSERT_OK(fn_xfer(m.ini, m.acc, 50000, 50000, 42, 10000));
}
END_TEST

/* The other status flows of dist_util: "alive" (the initiator answers
 * 's' "true"), "named:" (DFLAG_NAME_ME: the acceptor names the initiator)
 * and "nok" (the acceptor refuses and closes). */
START_TEST(handshake_variants)
{
    uint8_t f[512];
    size_t len;
    fn_linkinfo li;

    fn_link l;
    ASSERT_OK(fn_link_open(&l, &B, "alive@localhost"));
    len = fn_frame_status(f, "alive");
    ASSERT_OK(fn_pass(l.acc, l.ini, f, len, 10000));
    len = fn_frame_status(f, "true");
    ASSERT_OK(fn_pass(l.ini, l.acc, f, len, 10000));
    len = fn_frame_challenge(f, "b@localhost", FN_FLAGS, 1, 2);
    ASSERT_OK(fn_pass(l.acc, l.ini, f, len, 10000));
    len = fn_frame_reply(f, 1);
    ASSERT_OK(fn_pass(l.ini, l.acc, f, len, 10000));
    len = fn_frame_ack(f);
    ASSERT_OK(fn_pass(l.acc, l.ini, f, len, 10000));
    ck_assert_msg(TU_WAIT_UNTIL(link_of("alive@localhost", &li) && !strcmp(li.state, "up"),
                                10000), "\"alive\" flow: state %s, want up", li.state);
    ck_assert_msg(!strcmp(li.to, "b@localhost"), "\"alive\" flow: to %s", li.to);
    ASSERT_OK(fn_xfer(l.ini, l.acc, 10000, 10000, 51, 10000));
    fn_link_close(&l);

    /* DFLAG_NAME_ME: the first frame carries only the host. */
    len = fn_frame_send_name(f, "localhost", FN_FLAGS | (1ULL << 33), 3);
    ASSERT_OK(fn_link_open_frame(&l, &B, f, len));
    static const char named[] = "anon7@localhost";
    f[2] = 's';
    memcpy(f + 3, "named:", 6);
    f[9] = 0;
    f[10] = (uint8_t)strlen(named);
    memcpy(f + 11, named, strlen(named));
    memcpy(f + 11 + strlen(named), "\0\0\0\x09", 4);
    len = 15 + strlen(named);
    f[0] = 0;
    f[1] = (uint8_t)(len - 2);
    ASSERT_OK(fn_pass(l.acc, l.ini, f, len, 10000));
    len = fn_frame_challenge(f, "b@localhost", FN_FLAGS, 1, 2);
    ASSERT_OK(fn_pass(l.acc, l.ini, f, len, 10000));
    len = fn_frame_reply(f, 1);
    ASSERT_OK(fn_pass(l.ini, l.acc, f, len, 10000));
    len = fn_frame_ack(f);
    ASSERT_OK(fn_pass(l.acc, l.ini, f, len, 10000));
    ck_assert_msg(TU_WAIT_UNTIL(link_of(named, &li) && !strcmp(li.state, "up"), 10000),
                  "NAME_ME flow: no up link from %s in LINKS: %s", named,
                  ({ char *r_ = fn_ctl_cmd(D.control_port, "LINKS"); r_ ? r_ : "?"; }));
    fn_link_close(&l);
    assert_no_links("the alive and named: links closed");

    /* "nok": the node refuses and closes; the initiator gets it, then EOF. */
    ASSERT_OK(fn_link_open(&l, &B, "refused@localhost"));
    len = fn_frame_status(f, "nok");
    ASSERT_OK(fn_pass(l.acc, l.ini, f, len, 10000));
    fn_close(l.acc);
    l.acc = -1;
    size_t extra = 0;
    int reset = 0;
    ck_assert_msg(fn_wait_eof(l.ini, 10000, &extra, &reset) == 1 && extra == 0 && !reset,
                  "after 'nok' and the node's close: %zu more bytes, reset %d", extra, reset);
    fn_close(l.ini);
    l.ini = -1;
    assert_no_links("a refused handshake");
}
END_TEST

/* --------------------------------------------------------------- data */

START_TEST(data_both_ways)
{
    fn_link l;
    ASSERT_OK(fn_link_open(&l, &B, "a@localhost"));
    ASSERT_OK(fn_link_handshake(&l, "b@localhost"));
    ASSERT_OK(fn_xfer(l.ini, l.acc, 4 << 20, 4 << 20, 0x1234, 60000));
    /* And single bytes, including every byte value. */
    uint8_t all[256];
    for (int i = 0; i < 256; i++)
        all[i] = (uint8_t)i;
    ASSERT_OK(fn_pass(l.ini, l.acc, all, 256, 10000));
    ASSERT_OK(fn_pass(l.acc, l.ini, all, 256, 10000));
    ASSERT_ALIVE();
}
END_TEST

START_TEST(many_links_at_once)
{
    enum { N = 40 };
    fn_link l[N];
    char name[N][32];
    for (int i = 0; i < N; i++) {
        snprintf(name[i], sizeof name[i], "m%d@localhost", i);
        ck_assert_msg(fn_link_open(&l[i], &B, name[i]) == 0, "link %d: %s", i, fn_err());
    }
    for (int i = 0; i < N; i++)
        ck_assert_msg(fn_link_handshake(&l[i], "b@localhost") == 0, "link %d: %s", i,
                      fn_err());
    for (int i = 0; i < N; i++)
        ck_assert_msg(fn_xfer(l[i].ini, l[i].acc, 3000 + (size_t)i, 2000 + (size_t)i,
                              (uint64_t)i + 100, 10000) == 0, "link %d: %s", i, fn_err());
    fn_linkinfo ls[N + 4];
    int n = fn_get_links(D.control_port, ls, N + 4);
    ck_assert_msg(n == N, "LINKS lists %d links, want %d (%s)", n, N, fn_err());
    for (int i = 0; i < N; i++)
        ck_assert_msg(!strcmp(ls[i].state, "up"), "link %s is %s", ls[i].from, ls[i].state);
    for (int i = 0; i < N; i++)
        fn_link_close(&l[i]);
    assert_no_links("40 links closed");
}
END_TEST

/* Under ASan the quarantine keeps every freed block (up to 256 MB): a
 * relay that sizes each pending buffer anew at every stall then grows by
 * what it has freed, which says nothing about what it holds.  Restart
 * this test's daemon (and b) with the quarantine off, so that its RSS
 * means what it means in a normal build; ASan still checks every access
 * and LeakSanitizer still judges at exit. */
static void restart_without_quarantine(void)
{
    fn_close_all();
    tu_daemon_stop(&D);
    const char *old = getenv("ASAN_OPTIONS");
    char *saved = strdup(old ? old : "");
    char opts[2048];
    snprintf(opts, sizeof opts, "%s%squarantine_size_mb=0", saved, *saved ? ":" : "");
    setenv("ASAN_OPTIONS", opts, 1);
    int r = tu_daemon_start(&D, NULL);
    setenv("ASAN_OPTIONS", saved, 1);
    free(saved);
    ck_assert_msg(r == 0, "epmdpxy did not start again (%s)", tu_epmdpxy_path());
    ck_assert_msg(fn_node_start(&B, D.epmd_port, "b") == 0, "fake node b: %s", fn_err());
}

/* 50 MB initiator -> node.  The node reads nothing until the initiator
 * cannot write any more, then reads slowly, then fast: the daemon must
 * stop reading (backpressure) rather than buffer, so its RSS stays small. */
START_TEST(bulk_50mb_backpressure)
{
    const size_t total = 50u << 20;
    /* Measured growth (KiB): 128 plain, 212 under valgrind (ASan: see
     * restart_without_quarantine).  4 MiB is far above
     * that, and far below what buffering the stall (~8-10 MB in flight) or
     * a relay buffer lost per stall would cost. */
    const long rss_limit = 4 * 1024;
    if (getenv("ASAN_OPTIONS"))
        restart_without_quarantine();
    fn_link l;
    ASSERT_OK(fn_link_open(&l, &B, "a@localhost"));
    ASSERT_OK(fn_link_handshake(&l, "b@localhost"));
    long rss0 = fn_rss_kib(D.pid), rss_max = rss0;
    fn_rng wg, rg;
    fn_rng_seed(&wg, 0xb16);
    fn_rng_seed(&rg, 0xb16);
    uint8_t *wbuf = malloc(1 << 16), *rbuf = malloc(1 << 16), *want = malloc(1 << 16);
    size_t woff = 0, wlen = 0, sent = 0, rcvd = 0, at_stall = 0;
    int stalled = 0;
    long long deadline = tu_now_ms() + 120000;

    /* Phase 1: write until nothing moves for 500 ms. */
    while (!stalled && sent < total) {
        if (woff == wlen) {
            wlen = total - sent < (1 << 16) ? total - sent : (1 << 16);
            fn_rng_fill(&wg, wbuf, wlen);
            woff = 0;
        }
        ssize_t k = send(l.ini, wbuf + woff, wlen - woff, MSG_DONTWAIT | MSG_NOSIGNAL);
        if (k > 0) {
            woff += (size_t)k;
            sent += (size_t)k;
            continue;
        }
        ck_assert_msg(k < 0 && (errno == EAGAIN || errno == EINTR), "send: %s",
                      strerror(errno));
        if (!fn_pending(l.ini, 0)) {
            struct pollfd p = { l.ini, POLLOUT, 0 };
            if (poll(&p, 1, 500) == 0) {
                stalled = 1;
                at_stall = sent;
            }
        }
        ck_assert_msg(tu_now_ms() < deadline, "phase 1 took 120 s");
    }
    long rss_stall = fn_rss_kib(D.pid);
    printf("relay bulk: daemon RSS %ld KiB at start, %ld KiB with %zu bytes in flight\n", rss0,
           rss_stall, at_stall);
    ck_assert_msg(stalled, "no backpressure: the initiator wrote all %zu bytes while the node "
                  "read nothing", total);
    /* growth, not absolute: under valgrind the daemon's RSS starts ~150 MB */
    ck_assert_msg(rss_stall - rss0 < rss_limit, "daemon RSS %ld KiB with %zu bytes in flight", rss_stall,
                  at_stall);

    /* Phase 2: read 512 bytes at a time for the first 2 MB, then 64 KiB. */
    size_t next_sample = 0;
    while (rcvd < total) {
        ck_assert_msg(tu_now_ms() < deadline, "transfer timed out: sent %zu, received %zu of %zu",
                      sent, rcvd, total);
        struct pollfd p[2] = { { l.acc, POLLIN, 0 }, { l.ini, sent < total ? POLLOUT : 0, 0 } };
        int r = poll(p, 2, 1000);
        if (r <= 0)
            continue;
        if ((p[1].revents & POLLOUT) && sent < total) {
            if (woff == wlen) {
                wlen = total - sent < (1 << 16) ? total - sent : (1 << 16);
                fn_rng_fill(&wg, wbuf, wlen);
                woff = 0;
            }
            ssize_t k = send(l.ini, wbuf + woff, wlen - woff, MSG_DONTWAIT | MSG_NOSIGNAL);
            if (k > 0) {
                woff += (size_t)k;
                sent += (size_t)k;
            }
        }
        if (p[0].revents) {
            size_t want_n = rcvd < (2u << 20) ? 512 : (1 << 16);
            ssize_t k = recv(l.acc, rbuf, want_n, MSG_DONTWAIT);
            if (k < 0 && (errno == EAGAIN || errno == EINTR))
                continue;
            ck_assert_msg(k > 0, "node side: %s after %zu of %zu bytes",
                          k == 0 ? "EOF" : strerror(errno), rcvd, total);
            fn_rng_fill(&rg, want, (size_t)k);
            ck_assert_msg(memcmp(rbuf, want, (size_t)k) == 0,
                          "data corrupted in the 64 KiB after byte %zu", rcvd);
            rcvd += (size_t)k;
        }
        if (rcvd >= next_sample) {
            long rss = fn_rss_kib(D.pid);
            if (rss > rss_max)
                rss_max = rss;
            next_sample = rcvd + (1u << 20);
        }
    }
    free(wbuf);
    free(rbuf);
    free(want);
    printf("relay bulk: daemon RSS peak %ld KiB during 50 MB\n", rss_max);
    /* under ASan or valgrind the freed 1 MiB pending buffers sit in their
     * quarantine: the RSS then says nothing (their leak checks judge) */
    if (getenv("ASAN_OPTIONS") || getenv("EPX_VALGRIND"))
        printf("relay bulk: RSS not judged under ASan or valgrind\n");
    else
        ck_assert_msg(rss_max - rss0 < rss_limit,
                      "daemon RSS reached %ld KiB (from %ld) relaying 50 MB", rss_max, rss0);
    fn_linkinfo li;
    ck_assert_msg(TU_WAIT_UNTIL(link_of("a@localhost", &li) &&
                                li.bytes_out == (long long)(l.out + total), 10000),
                  "bytes_out %lld, want %llu", li.bytes_out,
                  (unsigned long long)(l.out + total));
}
END_TEST

/* A thousand links opened, used and closed one after another must leave
 * the daemon with the fds and (nearly) the memory it had: a link record
 * (~7 KiB) or a relay buffer (64 KiB) lost per link shows as 7-64 MiB. */
START_TEST(links_leak_nothing)
{
    enum { WARM = 50, N = 1000 };
    const long rss_limit = 2 * 1024;   /* KiB; measured growth: 0-132 KiB */
    int fds0 = -1;
    long rss0 = -1;
    for (int i = 0; i < WARM + N; i++) {
        if (i == WARM) {
            assert_no_links("the warm-up links closed");
            fds0 = tu_fd_count(D.pid);
            rss0 = fn_rss_kib(D.pid);
        }
        fn_link l;
        char name[32];
        snprintf(name, sizeof name, "leak%d@localhost", i);
        ck_assert_msg(fn_link_open(&l, &B, name) == 0, "link %d: %s", i, fn_err());
        ck_assert_msg(fn_link_handshake(&l, "b@localhost") == 0, "link %d: %s", i, fn_err());
        ck_assert_msg(fn_xfer(l.ini, l.acc, 3000, 3000, (uint64_t)i, 10000) == 0, "link %d: %s",
                      i, fn_err());
        /* alternate who closes first */
        if (i & 1) {
            fn_close(l.ini);
            l.ini = -1;
        }
        fn_link_close(&l);
    }
    assert_no_links("1000 links closed");
    /* fds0 may count a control connection the daemon had not closed yet */
    int fds1 = -1;
    TU_WAIT_UNTIL((fds1 = tu_fd_count(D.pid)) <= fds0, 5000);
    long rss1 = fn_rss_kib(D.pid);
    printf("relay leak: %d links: daemon fds %d -> %d, RSS %ld -> %ld KiB\n", N, fds0, fds1, rss0,
           rss1);
    ck_assert_msg(fds0 > 0 && fds1 > 0 && fds1 <= fds0, "daemon fds %d before %d links, %d after", fds0, N,
                  fds1);
    /* ASan's quarantine and memcheck's freed-block queue (20 MB) keep what
     * the daemon frees: there the RSS says nothing, and their own leak
     * checks judge at exit. */
    if (getenv("ASAN_OPTIONS") || getenv("EPX_VALGRIND"))
        printf("relay leak: RSS not judged under ASan or valgrind\n");
    else
        ck_assert_msg(rss0 > 0 && rss1 - rss0 < rss_limit,
                      "daemon RSS grew %ld KiB over %d links (limit %ld)", rss1 - rss0, N,
                      rss_limit);
    ASSERT_ALIVE();
}
END_TEST

/* Write the stream seeded `seed` on fd (non-blocking) until nothing has
 * moved for 500 ms; the number of bytes written. */
static size_t fill_until_stalled(int fd, uint64_t seed, size_t cap)
{
    fn_rng g;
    fn_rng_seed(&g, seed);
    uint8_t *buf = malloc(1 << 16);
    size_t sent = 0, off = 0, len = 0;
    while (sent < cap) {
        if (off == len) {
            fn_rng_fill(&g, buf, 1 << 16);
            off = 0;
            len = 1 << 16;
        }
        ssize_t k = send(fd, buf + off, len - off, MSG_DONTWAIT | MSG_NOSIGNAL);
        if (k > 0) {
            off += (size_t)k;
            sent += (size_t)k;
            continue;
        }
        if (k < 0 && errno != EAGAIN && errno != EINTR)
            break;
        struct pollfd p = { fd, POLLOUT, 0 };
        if (poll(&p, 1, 500) == 0)
            break;
    }
    free(buf);
    return sent;
}

/* One link whose node reads nothing must not slow another link down. */
START_TEST(stalled_link_isolated)
{
    fn_link l1, l2;
    ASSERT_OK(fn_link_open(&l1, &B, "stuck@localhost"));
    ASSERT_OK(fn_link_handshake(&l1, "b@localhost"));
    size_t stuck = fill_until_stalled(l1.ini, 77, 200u << 20);
    ck_assert_msg(stuck < (200u << 20), "no backpressure on the stuck link");
    ASSERT_OK(fn_link_open(&l2, &B, "free@localhost"));
    ASSERT_OK(fn_link_handshake(&l2, "b@localhost"));
    long long t0 = tu_now_ms();
    ASSERT_OK(fn_xfer(l2.ini, l2.acc, 2 << 20, 2 << 20, 78, 20000));
    printf("relay stalled: %zu bytes stuck on one link, 4 MB through another in %lld ms\n",
           stuck, tu_now_ms() - t0);
    /* The stuck link still holds every byte, in order. */
    fn_rng g;
    fn_rng_seed(&g, 77);
    uint8_t *got = malloc(1 << 16), *want = malloc(1 << 16);
    size_t n = 0;
    while (n < stuck) {
        size_t chunk = stuck - n < (1 << 16) ? stuck - n : (1 << 16);
        ck_assert_msg(tu_read_exact(l1.acc, got, chunk, 10000) == 0,
                      "stuck link: only %zu of %zu bytes arrived once read", n, stuck);
        fn_rng_fill(&g, want, chunk);
        ck_assert_msg(memcmp(got, want, chunk) == 0, "stuck link: data differs after %zu", n);
        n += chunk;
    }
    free(got);
    free(want);
    ASSERT_ALIVE();
}
END_TEST

/* ---------------------------------------------------------- closing */

START_TEST(half_close)
{
    fn_link l;
    ASSERT_OK(fn_link_open(&l, &B, "a@localhost"));
    ASSERT_OK(fn_link_handshake(&l, "b@localhost"));
    ASSERT_OK(fn_xfer(l.ini, l.acc, 200000, 0, 21, 20000));
    uint8_t tail[100];
    memset(tail, 't', sizeof tail);
    ck_assert(fn_send_all(l.ini, tail, sizeof tail) == 0);
    ck_assert(shutdown(l.ini, SHUT_WR) == 0);
    uint8_t got[200];
    int eof = 0;
    size_t k = tu_read_until_eof(l.acc, got, sizeof got, 10000, &eof);
    ck_assert_msg(k == sizeof tail && memcmp(got, tail, k) == 0,
                  "node got %zu of the %zu bytes written before SHUT_WR", k, sizeof tail);
    ck_assert_msg(eof, "node did not see EOF after the initiator's SHUT_WR");
    /* The other direction still works. */
    ASSERT_OK(fn_xfer(l.acc, l.ini, 300000, 0, 22, 20000));
    ASSERT_OK(fn_pass(l.acc, l.ini, "still here", 10, 10000));
    fn_close(l.acc);
    l.acc = -1;
    size_t n = 0;
    int reset = 0;
    ck_assert_msg(fn_wait_eof(l.ini, 10000, &n, &reset) == 1 && n == 0 && !reset,
                  "initiator: %zu extra bytes, eof/reset %d, after the node closed", n, reset);
    assert_no_links("half-close then close");
    ASSERT_ALIVE();
}
END_TEST

/* `from` writes 64 KiB and closes at once; `to` must get all of it, then
 * a clean EOF. */
static void close_with_pending(int from, int to, const char *what)
{
    enum { N = 65536 };
    fn_rng g;
    fn_rng_seed(&g, 31);
    uint8_t *buf = malloc(N), *got = malloc(N + 1);
    fn_rng_fill(&g, buf, N);
    ck_assert_msg(fn_send_all(from, buf, N) == 0, "%s: %s", what, fn_err());
    fn_close(from);
    int eof = 0;
    size_t k = tu_read_until_eof(to, got, N + 1, 10000, &eof);
    ck_assert_msg(k == N && memcmp(got, buf, N) == 0, "%s: %zu of %d pending bytes arrived%s",
                  what, k, N, k == N ? " but differ" : "");
    ck_assert_msg(eof, "%s: no EOF after the data", what);
    char c;
    ssize_t r = recv(to, &c, 1, MSG_DONTWAIT);
    ck_assert_msg(r == 0, "%s: after EOF recv gives %zd (%s), want a clean 0", what, r,
                  r < 0 ? strerror(errno) : "data");
    free(buf);
    free(got);
}

/* One side closes with bytes pending for the other, which then closes too
 * (as a node does on EOF): the pending bytes arrive before the EOF, and the
 * link is gone.  The daemon cannot tell a close from a half-close: the link
 * lives until both have closed. */
static void close_one_side(int node_first)
{
    fn_link l;
    ASSERT_OK(fn_link_open(&l, &B, "a@localhost"));
    ASSERT_OK(fn_link_handshake(&l, "b@localhost"));
    int *first = node_first ? &l.acc : &l.ini, *second = node_first ? &l.ini : &l.acc;
    close_with_pending(*first, *second, node_first ? "node closes" : "initiator closes");
    *first = -1;
    fn_close(*second);
    *second = -1;
    assert_no_links(node_first ? "the node closed, then the initiator"
                               : "the initiator closed, then the node");
}

START_TEST(close_node_side)
{
    close_one_side(1);
}
END_TEST

START_TEST(close_initiator_side)
{
    close_one_side(0);
}
END_TEST

START_TEST(close_during_handshake)
{
    fn_link l;
    ASSERT_OK(fn_link_open(&l, &B, "a@localhost"));
    fn_close(l.ini);
    l.ini = -1;
    ck_assert_msg(fn_wait_eof(l.acc, 10000, NULL, NULL) == 1,
                  "the node side stayed open after the initiator left mid-handshake");
    fn_close(l.acc);
    l.acc = -1;
    assert_no_links("the initiator left mid-handshake, then the node closed");
    /* And the initiator side when the node refuses (closes) at once. */
    ASSERT_OK(fn_link_open(&l, &B, "c@localhost"));
    fn_close_rst(l.acc);
    l.acc = -1;
    ck_assert_msg(fn_wait_eof(l.ini, 10000, NULL, NULL) == 1,
                  "the initiator stayed open after the node reset the connection");
    assert_no_links("the node reset mid-handshake");
    ASSERT_ALIVE();
}
END_TEST

START_TEST(unregister_closes_listener)
{
    fn_link l;
    ASSERT_OK(fn_link_open(&l, &B, "a@localhost"));
    ASSERT_OK(fn_link_handshake(&l, "b@localhost"));
    fn_link_close(&l);
    assert_no_links("close");
    int port = B.proxy_port;
    fn_node_unregister(&B);
    int err = 0;
    int ok = TU_WAIT_UNTIL(({
        int fd = fn_connect(port, &err);
        if (fd >= 0)
            fn_close(fd);
        fd < 0 && err == ECONNREFUSED; }), 10000);
    ck_assert_msg(ok, "proxy port %d still accepts connections 10 s after b unregistered", port);
    ck_assert_msg(TU_WAIT_UNTIL(fn_port_please(D.epmd_port, "b") == 0, 10000),
                  "PORT_PLEASE2 b still answers after unregistration");
    ASSERT_ALIVE();
}
END_TEST

/* --------------------------------------------- resets, cuts, names */

/* cmd on the control port must answer OK. */
static void ctl_ok(const char *cmd)
{
    char *r = fn_ctl_cmd(D.control_port, cmd);
    ck_assert_msg(r && !strncmp(r, "OK", 2), "%s: %s", cmd, r ? r : fn_err());
    free(r);
}

/* The last event of `type` whose "from" is `from` (NULL: any), as its JSON
 * object text in out; 1 if there is one. */
static int find_event(const char *type, const char *from, char *out, size_t len)
{
    char *r = fn_ctl_cmd(D.control_port, "EVENTS");
    int found = 0;
    char want_type[64], want_from[300];
    snprintf(want_type, sizeof want_type, "\"type\":\"%s\"", type);
    snprintf(want_from, sizeof want_from, "\"from\":\"%s\"", from ? from : "");
    for (char *p = r ? strstr(r, "{\"seq\":") : NULL; p; p = strstr(p + 1, "{\"seq\":")) {
        char *end = strchr(p, '}');
        if (!end)
            break;
        *end = 0;
        if (strstr(p, want_type) && (!from || strstr(p, want_from))) {
            snprintf(out, len, "%s}", p);
            found = 1;
        }
        *end = '}';
    }
    free(r);
    return found;
}

/* 1 if nothing is readable on fd for ms milliseconds (a bounded check for
 * the absence of bytes; what must arrive is awaited separately). */
static int stays_silent(int fd, int ms)
{
    struct pollfd p = { fd, POLLIN, 0 };
    return poll(&p, 1, ms) == 0;
}

/* One peer floods the other, which reads nothing, then resets (SO_LINGER
 * 0, what a killed node with unread data sends).  The write error must end
 * the link: gone from LINKS, and the flooding peer sees EOF or a reset. */
static void reset_while_pending(int initiator_resets)
{
    fn_link l;
    ASSERT_OK(fn_link_open(&l, &B, "a@localhost"));
    ASSERT_OK(fn_link_handshake(&l, "b@localhost"));
    int *quiet = initiator_resets ? &l.ini : &l.acc, *flood = initiator_resets ? &l.acc : &l.ini;
    const char *who = initiator_resets ? "initiator" : "node";
    size_t n = fill_until_stalled(*flood, 91, 200u << 20);
    ck_assert_msg(n < (200u << 20), "no backpressure: the %s never stopped the flood", who);
    fn_linkinfo li;
    ck_assert_msg(link_of("a@localhost", &li) && !strcmp(li.state, "up"),
                  "flooded link not up before the reset");
    fn_close_rst(*quiet);
    *quiet = -1;
    char why[128];
    snprintf(why, sizeof why, "the %s reset with %zu bytes sent towards it", who, n);
    assert_no_links(why);
    size_t got = 0;
    int reset = 0;
    ck_assert_msg(fn_wait_eof(*flood, 10000, &got, &reset) == 1,
                  "%s: the other peer saw neither EOF nor a reset in 10 s", why);
    char ev[1024];
    ck_assert_msg(find_event("link_closed", "a@localhost", ev, sizeof ev),
                  "%s: no link_closed event", why);
    ASSERT_ALIVE();
}

START_TEST(reset_pending_initiator)
{
    reset_while_pending(1);
}
END_TEST

START_TEST(reset_pending_node)
{
    reset_while_pending(0);
}
END_TEST

/* CUT a -> b under MODE freeze: a's bytes are held, b's flow (under MODE
 * hold b's would stall after a grace: hold_oneway_reverse_stalls).  Once
 * both have closed their sockets the link must close, although a
 * direction is still held and the rule stays. */
static void one_way_cut(int node_first)
{
    fn_link l;
    ctl_ok("MODE freeze");
    ASSERT_OK(fn_link_open(&l, &B, "a@localhost"));
    ASSERT_OK(fn_link_handshake(&l, "b@localhost"));
    ctl_ok("CUT a -> b");
    fn_linkinfo li;
    ck_assert_msg(TU_WAIT_UNTIL(link_of("a@localhost", &li) && !strcmp(li.state, "held") &&
                                !strcmp(li.held, "out"), 10000),
                  "after CUT a -> b the link is %s, held %s", li.state, li.held);
    /* b's bytes still reach a */
    ASSERT_OK(fn_pass(l.acc, l.ini, "from b", 6, 10000));
    if (node_first) {
        fn_close(l.acc);
        l.acc = -1;
        size_t n = 0;
        ck_assert_msg(fn_wait_eof(l.ini, 10000, &n, NULL) == 1 && n == 0,
                      "the initiator did not see b's close (b -> a is not cut)");
        fn_close(l.ini);
        l.ini = -1;
    } else {
        uint8_t held[64];
        memset(held, 'h', sizeof held);
        ck_assert(fn_send_all(l.ini, held, sizeof held) == 0);
        fn_close(l.ini);
        l.ini = -1;
        ck_assert_msg(stays_silent(l.acc, 300), "b got a's bytes or close across CUT a -> b");
        fn_close(l.acc);
        l.acc = -1;
    }
    assert_no_links(node_first ? "under CUT a -> b, b closed, then a"
                               : "under CUT a -> b, a closed, then b");
    char ev[1024];
    ck_assert_msg(find_event("link_closed", "a@localhost", ev, sizeof ev),
                  "no link_closed event for the cut link");
    char *r = fn_ctl_cmd(D.control_port, "RULES");
    ck_assert_msg(r && strstr(r, "\"from\":\"a\""), "the rule went: %s", r ? r : fn_err());
    free(r);
    ASSERT_ALIVE();
}

START_TEST(one_way_cut_node_closes_first)
{
    one_way_cut(1);
}
END_TEST

START_TEST(one_way_cut_initiator_closes_first)
{
    one_way_cut(0);
}
END_TEST

/* The acceptor's status "named:" frame for a NAME_ME initiator. */
static size_t frame_named(uint8_t *f, const char *named)
{
    size_t n = strlen(named);
    f[2] = 's';
    memcpy(f + 3, "named:", 6);
    f[9] = (uint8_t)(n >> 8);
    f[10] = (uint8_t)n;
    memcpy(f + 11, named, n);
    memcpy(f + 11 + n, "\0\0\0\x09", 4);
    size_t len = 15 + n;
    f[0] = (uint8_t)((len - 2) >> 8);
    f[1] = (uint8_t)(len - 2);
    return len;
}

/* A link whose first frame matched no rule; then the handshake reveals a
 * name a hold rule matches: the initiator's next frame must be held until
 * the rule goes, then arrive intact. */
static void expect_out_held_then_fixed(fn_link *l, const char *from, const char *fix)
{
    fn_linkinfo li;
    ck_assert_msg(TU_WAIT_UNTIL(link_of(from, &li) && !strcmp(li.state, "held") &&
                                !strcmp(li.held, "out"), 10000),
                  "once the handshake named %s -> %s the link is %s, held %s", li.from, li.to,
                  li.state, li.held);
    uint8_t f[64];
    size_t len = fn_frame_reply(f, 1);
    ck_assert(fn_send_all(l->ini, f, len) == 0);
    ck_assert_msg(stays_silent(l->acc, 300), "the initiator's reply crossed the cut");
    ctl_ok(fix);
    uint8_t got[64];
    ck_assert_msg(tu_read_exact(l->acc, got, len, 10000) == 0 && !memcmp(got, f, len),
                  "the held reply did not arrive intact after %s", fix);
    len = fn_frame_ack(f);
    ASSERT_OK(fn_pass(l->acc, l->ini, f, len, 10000));
    ck_assert_msg(TU_WAIT_UNTIL(link_of(from, &li) && !strcmp(li.state, "up"), 10000),
                  "after %s the link is %s", fix, li.state);
    ASSERT_OK(fn_xfer(l->ini, l->acc, 20000, 20000, 61, 10000));
}

/* NAME_ME: the first frame has only a host; the acceptor's "named:" status
 * gives the initiator its name, which a rule matches. */
START_TEST(named_initiator_rule_holds)
{
    ctl_ok("CUT anon7 -> b");
    uint8_t f[256];
    size_t len = fn_frame_send_name(f, "localhost", FN_FLAGS | (1ULL << 33), 3);
    fn_link l;
    ASSERT_OK(fn_link_open_frame(&l, &B, f, len));
    len = frame_named(f, "anon7@localhost");
    ASSERT_OK(fn_pass(l.acc, l.ini, f, len, 10000));
    len = fn_frame_challenge(f, "b@localhost", FN_FLAGS, 1, 2);
    ASSERT_OK(fn_pass(l.acc, l.ini, f, len, 10000));
    expect_out_held_then_fixed(&l, "anon7@localhost", "FIX anon7 -> b");
    ASSERT_ALIVE();
}
END_TEST

START_TEST(named_initiator_rule_resets)
{
    ctl_ok("MODE reset");
    ctl_ok("CUT anon7 b");
    uint8_t f[256];
    size_t len = fn_frame_send_name(f, "localhost", FN_FLAGS | (1ULL << 33), 3);
    fn_link l;
    ASSERT_OK(fn_link_open_frame(&l, &B, f, len));
    len = frame_named(f, "anon7@localhost");
    ck_assert(fn_send_all(l.acc, f, len) == 0);
    ck_assert_msg(fn_wait_eof(l.ini, 10000, NULL, NULL) == 1,
                  "the initiator named anon7 was not closed under CUT anon7 b (reset)");
    ck_assert_msg(fn_wait_eof(l.acc, 10000, NULL, NULL) == 1,
                  "the node was not closed once the initiator was named anon7 (reset)");
    assert_no_links("a NAME_ME initiator named into a reset cut");
    ASSERT_ALIVE();
}
END_TEST

/* The daemon knew b as b@elsewhere (an earlier handshake said so); this
 * time b's challenge says b@localhost, which a rule matches. */
START_TEST(acceptor_name_rule_holds)
{
    fn_link l;
    ASSERT_OK(fn_link_open(&l, &B, "a@localhost"));
    ASSERT_OK(fn_link_handshake(&l, "b@elsewhere"));
    fn_link_close(&l);
    assert_no_links("the first link closed");
    ctl_ok("CUT a -> b@localhost");
    ASSERT_OK(fn_link_open(&l, &B, "a@localhost"));
    uint8_t f[256];
    size_t len = fn_frame_status(f, "ok");
    ASSERT_OK(fn_pass(l.acc, l.ini, f, len, 10000));
    len = fn_frame_challenge(f, "b@localhost", FN_FLAGS, 1, 2);
    ASSERT_OK(fn_pass(l.acc, l.ini, f, len, 10000));
    expect_out_held_then_fixed(&l, "a@localhost", "FIX a -> b@localhost");
    ASSERT_ALIVE();
}
END_TEST

/* The value of "key":"..." in a flat JSON object, copied to out. */
static const char *member(const char *obj, const char *key, char *out, size_t len)
{
    char k[64];
    snprintf(k, sizeof k, "\"%s\":\"", key);
    const char *p = strstr(obj, k);
    out[0] = 0;
    if (p) {
        p += strlen(k);
        const char *e = strchr(p, '"');
        snprintf(out, len, "%.*s", e ? (int)(e - p) : 0, p);
    }
    return out;
}

/* link_opened names the target by its full name whenever the daemon knows
 * it at that moment, else by its registered name; "node" always has the
 * registered name. */
START_TEST(link_opened_names_target)
{
    char ev[1024], v[256];
    /* b has not shown its full name yet */
    fn_link l;
    ASSERT_OK(fn_link_open(&l, &B, "a@localhost"));
    ck_assert_msg(TU_WAIT_UNTIL(find_event("link_opened", "a@localhost", ev, sizeof ev), 10000),
                  "no link_opened for a@localhost");
    ck_assert_msg(!strcmp(member(ev, "to", v, sizeof v), "b"), "to \"%s\" in %s, want b", v, ev);
    ck_assert_msg(!strcmp(member(ev, "node", v, sizeof v), "b"), "node \"%s\" in %s", v, ev);
    fn_link_close(&l);

    /* A connection to b is accepted before b's full name is known; b then
     * names itself as initiator of a link to c; the first connection's
     * link_opened comes after that and must use it. */
    fn_node C;
    ck_assert_msg(fn_node_start(&C, D.epmd_port, "c") == 0, "fake node c: %s", fn_err());
    int ini = fn_connect(B.proxy_port, NULL);
    ck_assert_msg(ini >= 0, "%s", fn_err());
    fn_link lc;
    ASSERT_OK(fn_link_open(&lc, &C, "b@localhost"));
    uint8_t f[128];
    size_t len = fn_frame_send_name(f, "a2@localhost", FN_FLAGS, 5);
    ck_assert(fn_send_all(ini, f, len) == 0);
    ck_assert_msg(TU_WAIT_UNTIL(find_event("link_opened", "a2@localhost", ev, sizeof ev), 10000),
                  "no link_opened for a2@localhost");
    ck_assert_msg(!strcmp(member(ev, "to", v, sizeof v), "b@localhost"),
                  "to \"%s\" in %s, want b@localhost (known since b's own handshake)", v, ev);
    ck_assert_msg(!strcmp(member(ev, "node", v, sizeof v), "b"), "node \"%s\" in %s", v, ev);
    ck_assert_msg(find_event("link_opened", "b@localhost", ev, sizeof ev) &&
                  !strcmp(member(ev, "to", v, sizeof v), "c"), "b -> c: %s", ev);
    ASSERT_ALIVE();
}
END_TEST

/* ----------------------------------------------------------- latency */

/* 1000 round trips where each message is two 1-byte writes, the second
 * sent only once the first has arrived: with Nagle on either daemon socket
 * the second byte waits for a (delayed, ~40 ms) ACK. */
START_TEST(nodelay_round_trips)
{
    fn_link l;
    ASSERT_OK(fn_link_open(&l, &B, "a@localhost"));
    ASSERT_OK(fn_link_handshake(&l, "b@localhost"));
    fn_nodelay(l.ini);
    fn_nodelay(l.acc);
    long long t0 = tu_now_ms();
    int rounds = 0;
    for (; rounds < 1000 && tu_now_ms() - t0 < 10000; rounds++) {
        int pair[2][2] = { { l.ini, l.acc }, { l.acc, l.ini } };
        for (int d = 0; d < 2; d++)
            for (int b = 0; b < 2; b++) {
                uint8_t c = (uint8_t)(rounds * 4 + d * 2 + b), g = 0;
                ck_assert_msg(fn_send_all(pair[d][0], &c, 1) == 0, "round %d: %s", rounds,
                              fn_err());
                ck_assert_msg(tu_read_exact(pair[d][1], &g, 1, 5000) == 0 && g == c,
                              "round %d: byte lost or wrong", rounds);
            }
    }
    long long ms = tu_now_ms() - t0;
    printf("relay nodelay: %d split round trips in %lld ms\n", rounds, ms);
    ck_assert_msg(rounds == 1000 && ms < 10000,
                  "only %d of 1000 round trips in %lld ms: TCP_NODELAY off on a proxied "
                  "socket?", rounds, ms);
}
END_TEST

/* ------------------------------------------------------ the hold model */

/* Does LINKS contain `needle` (e.g. "\"out_state\":\"releasing\"")? */
static int links_have(const char *needle)
{
    char *r = fn_ctl_cmd(D.control_port, "LINKS");
    int found = r && strstr(r, needle);
    free(r);
    return found;
}

/* An up link a -> b with the given MODE line applied first. */
static void open_up(fn_link *l, const char *mode)
{
    ctl_ok(mode);
    ASSERT_OK(fn_link_open(l, &B, "a@localhost"));
    ASSERT_OK(fn_link_handshake(l, "b@localhost"));
}

/* Bytes sent into a two-way cut reach the other side at the next
 * retransmission after the heal, counted from when they had to wait (rto
 * 1000 ms: 1, 3, 7 s), not at the heal; the idle reverse direction lost
 * nothing and flows at once.  LINKS shows the release time; EVENTS the
 * release. */
START_TEST(hold_resumes_at_retransmission)
{
    fn_link l;
    open_up(&l, "MODE hold rto=1000");
    ctl_ok("CUT a b");
    long long t_send = tu_now_ms();
    ck_assert(fn_send_all(l.ini, "lost", 4) == 0);
    ck_assert_msg(stays_silent(l.acc, 150), "bytes crossed a two-way cut");
    ctl_ok("HEAL");
    ck_assert_msg(TU_WAIT_UNTIL(links_have("\"out_state\":\"releasing\",\"out_release_at\":"),
                                2000) || tu_now_ms() - t_send >= 1000,
                  "after HEAL LINKS shows no release time for the held direction");
    /* the idle direction: at once, long before the held one's release */
    long long t_in = tu_now_ms();
    ASSERT_OK(fn_pass(l.acc, l.ini, "idle", 4, 10000));
    long long in_ms = tu_now_ms() - t_in;
    char got[4];
    ck_assert_msg(tu_read_exact(l.acc, got, 4, 15000) == 0 && !memcmp(got, "lost", 4),
                  "the held bytes never arrived after HEAL");
    long long at = tu_now_ms() - t_send;
    ck_assert_msg(at >= 995, "held bytes arrived %lld ms after they were sent: before the "
                             "first retransmission (1000 ms)", at);
    ck_assert_msg(in_ms < 900 || at > 1000 + in_ms,
                  "the idle direction waited %lld ms after HEAL: it lost nothing", in_ms);
    char ev[1024];
    ck_assert_msg(find_event("release", "a@localhost", ev, sizeof ev) && strstr(ev, "\"lost\":true"),
                  "no release event for a -> b");
    ASSERT_OK(fn_xfer(l.ini, l.acc, 5000, 5000, 71, 10000));
    ASSERT_ALIVE();
}
END_TEST

/* One direction's bulk stream, polled: writes into l->ini while it takes,
 * reads l->acc and checks every byte against the same seeded stream. */
typedef struct bulk {
    fn_rng wg, rg;
    uint8_t wbuf[1 << 16], rbuf[1 << 16], want[1 << 16];
    size_t woff, wlen, sent, rcvd, total;
} bulk;

/* Moves bytes for up to ms; reads only if `read`.  Stops early once
 * rcvd reaches stop_at.  Returns the bytes received in this call. */
static size_t bulk_step(fn_link *l, bulk *b, int ms, int read, size_t stop_at)
{
    size_t got = 0;
    long long end = tu_now_ms() + ms;
    while (tu_now_ms() < end && b->rcvd < stop_at) {
        struct pollfd p[2] = { { l->acc, read ? POLLIN : 0, 0 },
                               { l->ini, b->sent < b->total ? POLLOUT : 0, 0 } };
        if (poll(p, 2, 50) <= 0)
            continue;
        if ((p[1].revents & POLLOUT) && b->sent < b->total) {
            if (b->woff == b->wlen) {
                b->wlen = b->total - b->sent < sizeof b->wbuf ? b->total - b->sent : sizeof b->wbuf;
                fn_rng_fill(&b->wg, b->wbuf, b->wlen);
                b->woff = 0;
            }
            ssize_t k = send(l->ini, b->wbuf + b->woff, b->wlen - b->woff,
                             MSG_DONTWAIT | MSG_NOSIGNAL);
            if (k > 0) {
                b->woff += (size_t)k;
                b->sent += (size_t)k;
            }
        }
        if (read && (p[0].revents & POLLIN)) {
            ssize_t k = recv(l->acc, b->rbuf, sizeof b->rbuf, MSG_DONTWAIT);
            if (k < 0 && (errno == EAGAIN || errno == EINTR))
                continue;
            ck_assert_msg(k > 0, "node side: %s after %zu bytes", k == 0 ? "EOF" : strerror(errno),
                          b->rcvd);
            fn_rng_fill(&b->rg, b->want, (size_t)k);
            ck_assert_msg(memcmp(b->rbuf, b->want, (size_t)k) == 0,
                          "bytes lost, doubled or reordered after byte %zu", b->rcvd);
            b->rcvd += (size_t)k;
            got += (size_t)k;
        }
    }
    return got;
}

/* Bulk goes through the direction's pipe (splice), and a cut in the
 * middle still holds it exactly: once what the node's kernel already had
 * is read, nothing more arrives while cut, and after the heal every byte
 * arrives once, in order.  The reverse direction, idle, gets no pipe. */
START_TEST(splice_bulk_held_exactly)
{
    fn_link l;
    open_up(&l, "MODE hold rto=100");
    static bulk b;
    memset(&b, 0, sizeof b);
    fn_rng_seed(&b.wg, 0x5911ce);
    fn_rng_seed(&b.rg, 0x5911ce);
    b.total = 64u << 20;
    long long deadline = tu_now_ms() + 60000;
    while (b.rcvd < (8u << 20)) {
        bulk_step(&l, &b, 1000, 1, 8u << 20);
        ck_assert_msg(tu_now_ms() < deadline, "8 MB took 60 s (%zu received)", b.rcvd);
    }
    ck_assert_msg(links_have("\"out_splice\":true"), "8 MB relayed without the pipe: %s",
                  "LINKS shows no out_splice");
    ck_assert_msg(!links_have("\"in_splice\":true"), "the idle direction got a pipe");
    ctl_ok("CUT a b");
    /* what crossed before the cut: drain until 300 ms pass without a byte */
    while (bulk_step(&l, &b, 300, 1, b.total) > 0)
        ck_assert_msg(tu_now_ms() < deadline, "bytes kept coming 60 s into the cut");
    size_t at_cut = b.rcvd, sent_at_cut = b.sent;
    /* the initiator goes on writing into the cut; the node must see nothing */
    ck_assert_msg(bulk_step(&l, &b, 700, 1, b.total) == 0,
                  "bytes crossed the cut (%zu received, %zu before)", b.rcvd, at_cut);
    printf("relay splice: %zu bytes before the cut, %zu more written into it\n", at_cut,
           b.sent - sent_at_cut);
    ctl_ok("HEAL");
    while (b.rcvd < b.total) {
        bulk_step(&l, &b, 1000, 1, b.total);
        ck_assert_msg(tu_now_ms() < deadline + 60000, "after HEAL only %zu of %zu bytes",
                      b.rcvd, b.total);
    }
    ck_assert_msg(b.rcvd == b.total, "received %zu of %zu", b.rcvd, b.total);
    ck_assert_msg(stays_silent(l.acc, 200), "bytes beyond the stream arrived");
    fn_linkinfo li;
    ck_assert_msg(TU_WAIT_UNTIL(link_of("a@localhost", &li) &&
                                li.bytes_out == (long long)(l.out + b.total), 10000),
                  "bytes_out %lld, want %llu", li.bytes_out,
                  (unsigned long long)(l.out + b.total));
    ASSERT_OK(fn_xfer(l.ini, l.acc, 5000, 5000, 72, 10000));
    ASSERT_ALIVE();
}
END_TEST

/* Bulk one way, then the initiator half-closes: the EOF waits behind what
 * the pipe holds and reaches the node after the last byte; once both
 * close, the link's pipe goes with it (the daemon's fds are back where
 * they were).  With --no-splice the same bytes go without a pipe. */
static void splice_eof_case(int no_splice)
{
    if (no_splice) {
        fn_close_all();
        tu_daemon_stop(&D);
        const char *extra[] = { "--no-splice", NULL };
        ck_assert_msg(tu_daemon_start(&D, extra) == 0, "epmdpxy --no-splice did not start");
        ck_assert_msg(fn_node_start(&B, D.epmd_port, "b") == 0, "fake node b: %s", fn_err());
    }
    int fds0 = tu_fd_count(D.pid);
    fn_link l;
    open_up(&l, "MODE hold");
    static bulk b;
    memset(&b, 0, sizeof b);
    fn_rng_seed(&b.wg, 0xe0f);
    fn_rng_seed(&b.rg, 0xe0f);
    b.total = 16u << 20;
    long long deadline = tu_now_ms() + 60000;
    /* write it all while the node reads slowly, so bytes wait in the relay */
    while (b.sent < b.total) {
        bulk_step(&l, &b, 50, 0, b.total);
        bulk_step(&l, &b, 5, 1, b.total);
        ck_assert_msg(tu_now_ms() < deadline, "16 MB not written in 60 s (%zu)", b.sent);
    }
    ck_assert_msg(shutdown(l.ini, SHUT_WR) == 0, "shutdown: %s", strerror(errno));
    while (b.rcvd < b.total) {
        bulk_step(&l, &b, 500, 1, b.total);
        ck_assert_msg(tu_now_ms() < deadline, "only %zu of %zu bytes before the EOF", b.rcvd,
                      b.total);
    }
    size_t extra = 0;
    int reset = 0;
    ck_assert_msg(fn_wait_eof(l.acc, 10000, &extra, &reset) == 1 && !reset && extra == 0,
                  "the node saw %s after the last byte (%zu more bytes)",
                  reset ? "a reset" : "no EOF", extra);
    ck_assert_msg(links_have(no_splice ? "\"out_state\"" : "\"out_splice\":true"),
                  "LINKS shows no out_splice after 16 MB");
    ck_assert_msg(!no_splice || !links_have("_splice\":true"), "--no-splice made a pipe");
    fn_link_close(&l);
    assert_no_links("both ends closed");
    ck_assert_msg(TU_WAIT_UNTIL(tu_fd_count(D.pid) == fds0, 5000),
                  "the daemon holds %d fds, %d before the link", tu_fd_count(D.pid), fds0);
    ASSERT_ALIVE();
}

START_TEST(splice_eof_after_pipe)
{
    splice_eof_case(0);
}
END_TEST

START_TEST(no_splice_option)
{
    splice_eof_case(1);
}
END_TEST

/* MODE freeze: the same bytes go the instant the block lifts. */
START_TEST(freeze_resumes_at_heal)
{
    fn_link l;
    open_up(&l, "MODE freeze rto=5000");
    ctl_ok("CUT a b");
    ck_assert(fn_send_all(l.ini, "frozen", 6) == 0);
    ck_assert_msg(stays_silent(l.acc, 150), "bytes crossed a two-way cut");
    long long t_heal = tu_now_ms();
    ctl_ok("HEAL");
    char got[6];
    ck_assert_msg(tu_read_exact(l.acc, got, 6, 10000) == 0 && !memcmp(got, "frozen", 6),
                  "frozen bytes did not arrive after HEAL");
    long long ms = tu_now_ms() - t_heal;
    ck_assert_msg(ms < 4500, "MODE freeze delivered %lld ms after HEAL (rto is 5000)", ms);
}
END_TEST

/* A cut that comes back before the release keeps TCP's backoff: with rto
 * 2000 ms the points are 2, 6, 14 s after the loss; healed, cut again
 * before 2 s and healed after it, the bytes wait for 6 s (a backoff
 * restarted at the second heal would release them by ~4.5 s). */
START_TEST(hold_recut_keeps_backoff)
{
    fn_link l;
    open_up(&l, "MODE hold rto=2000");
    ctl_ok("CUT a b");
    long long t_send = tu_now_ms();
    ck_assert(fn_send_all(l.ini, "x", 1) == 0);
    ck_assert_msg(TU_WAIT_UNTIL(links_have("\"out_state\":\"held\""), 5000), "not held");
    ctl_ok("HEAL");
    ck_assert_msg(links_have("\"out_state\":\"releasing\""), "not releasing after HEAL");
    ctl_ok("CUT a b");
    long long recut = tu_now_ms() - t_send;
    ck_assert_msg(recut < 1900, "the machine is too slow for this test: re-cut at %lld ms", recut);
    ck_assert_msg(links_have("\"out_state\":\"held\""), "not held after the new CUT");
    /* past the first point, still cut: nothing */
    ck_assert_msg(stays_silent(l.acc, (int)(2500 - recut)), "released under a cut");
    ctl_ok("HEAL");
    char c;
    ck_assert_msg(tu_read_exact(l.acc, &c, 1, 20000) == 0 && c == 'x', "never released");
    long long at = tu_now_ms() - t_send;
    ck_assert_msg(at >= 5995, "released %lld ms after the loss: the backoff restarted (want 6000)",
                  at);
}
END_TEST

/* CUT a -> b: b -> a flows for grace_bytes more bytes, then stalls; b's
 * close stalls too (a never hears of it while its ACKs are cut).  Lifted,
 * b's bytes and EOF arrive, in order, at b's retransmission. */
START_TEST(hold_oneway_reverse_stalls)
{
    fn_link l;
    open_up(&l, "MODE hold grace=60000 grace_bytes=1000 rto=300");
    ctl_ok("CUT a -> b");
    uint8_t buf[5000];
    for (size_t i = 0; i < sizeof buf; i++)
        buf[i] = (uint8_t)(i * 7);
    ck_assert(fn_send_all(l.acc, buf, sizeof buf) == 0);
    uint8_t got[6000];   /* room past b's 5000: the EOF must be read, not a full buffer */
    ck_assert_msg(tu_read_exact(l.ini, got, 1000, 10000) == 0 && !memcmp(got, buf, 1000),
                  "the grace's 1000 bytes did not reach a");
    ck_assert_msg(stays_silent(l.ini, 300), "more than the grace crossed to a");
    ck_assert_msg(TU_WAIT_UNTIL(links_have("\"in_state\":\"stalled\""), 5000),
                  "LINKS does not show b -> a stalled");
    fn_close(l.acc);
    l.acc = -1;
    ck_assert_msg(stays_silent(l.ini, 300), "b's close reached a across its cut ACK path");
    long long t_fix = tu_now_ms();
    ctl_ok("FIX a -> b");
    size_t n = 0;
    int eof = 0;
    n = tu_read_until_eof(l.ini, got + 1000, sizeof got - 1000, 10000, &eof);
    ck_assert_msg(n == 4000 && eof && !memcmp(got + 1000, buf + 1000, 4000),
                  "after FIX a got %zu of b's 4000 stalled bytes%s", n, eof ? " and EOF" : "");
    printf("relay hold: b's stalled bytes and EOF %lld ms after FIX\n", tu_now_ms() - t_fix);
    ASSERT_ALIVE();
}
END_TEST

/* The reverse of a one-way cut flows for grace ms after its first byte. */
START_TEST(hold_oneway_grace_time)
{
    fn_link l;
    open_up(&l, "MODE hold grace=200 grace_bytes=1000000");
    ctl_ok("CUT a -> b");
    ASSERT_OK(fn_pass(l.acc, l.ini, "first", 5, 10000));
    ck_assert_msg(TU_WAIT_UNTIL(links_have("\"in_state\":\"stalled\""), 10000),
                  "b -> a never stalled after its grace");
    ck_assert(fn_send_all(l.acc, "late", 4) == 0);
    ck_assert_msg(stays_silent(l.ini, 300), "b's bytes crossed after the grace");
    ctl_ok("HEAL");
    char got[4];
    ck_assert_msg(tu_read_exact(l.ini, got, 4, 10000) == 0 && !memcmp(got, "late", 4),
                  "stalled bytes lost");
}
END_TEST

/* A connection attempt across a cut waits for its next SYN retry after
 * the heal (syn=1,3: 1 s after it began), not for the heal. */
START_TEST(hold_pending_waits_for_syn_retry)
{
    ctl_ok("MODE hold syn=1,3");
    ctl_ok("CUT a b");
    uint8_t f[128];
    size_t len = fn_frame_send_name(f, "a@localhost", FN_FLAGS, 9);
    long long t0 = tu_now_ms();
    int ini = fn_connect(B.proxy_port, NULL);
    ck_assert_msg(ini >= 0, "%s", fn_err());
    ck_assert(fn_send_all(ini, f, len) == 0);
    ck_assert_msg(TU_WAIT_UNTIL(link_of("a@localhost", &(fn_linkinfo){0}), 5000),
                  "the attempt is not listed");
    ck_assert_msg(!fn_pending(B.lfd, 100), "the daemon connected across the cut");
    ctl_ok("HEAL");
    int acc = fn_accept(B.lfd, 10000);
    long long at = tu_now_ms() - t0;
    ck_assert_msg(acc >= 0, "the attempt never reached b after HEAL: %s", fn_err());
    ck_assert_msg(at >= 995, "the daemon connected %lld ms after the attempt began: before "
                             "its first SYN retry (1000 ms)", at);
    uint8_t got[128];
    ck_assert_msg(tu_read_exact(acc, got, len, 10000) == 0 && !memcmp(got, f, len),
                  "the first frame did not arrive intact");
    fn_close(acc);
    fn_close(ini);
}
END_TEST

/* An attempt still cut at its last SYN retry fails: the initiator gets a
 * reset, as connect() times out, and the node never hears of it. */
START_TEST(hold_pending_gives_up)
{
    ctl_ok("MODE hold syn=0.3,0.6");
    ctl_ok("CUT a b");
    uint8_t f[128];
    size_t len = fn_frame_send_name(f, "a@localhost", FN_FLAGS, 9);
    long long t0 = tu_now_ms();
    int ini = fn_connect(B.proxy_port, NULL);
    ck_assert_msg(ini >= 0, "%s", fn_err());
    ck_assert(fn_send_all(ini, f, len) == 0);
    size_t got = 0;
    int reset = 0;
    ck_assert_msg(fn_wait_eof(ini, 10000, &got, &reset) == 1 && reset,
                  "the initiator saw no reset when the SYN retries ran out");
    long long at = tu_now_ms() - t0;
    ck_assert_msg(at >= 590, "given up %lld ms after it began: before the last retry (600)", at);
    ck_assert_msg(!fn_pending(B.lfd, 200), "the node was reached anyway");
    assert_no_links("an attempt that ran out of SYN retries");
    fn_close(ini);
    ASSERT_ALIVE();
}
END_TEST

/* Knobs through MODE: the reply shows them; a bad one changes nothing. */
START_TEST(hold_knobs_via_mode)
{
    char *r = fn_ctl_cmd(D.control_port, "MODE hold rto=250 syn=1,2");
    ck_assert_msg(r && !strncmp(r, "OK hold {", 9) && strstr(r, "\"rto\":250") &&
                      strstr(r, "\"syn\":[1000,2000]"),
                  "MODE hold rto=250 syn=1,2: %s", r ? r : fn_err());
    free(r);
    r = fn_ctl_cmd(D.control_port, "MODE freeze rto=0");
    ck_assert_msg(r && !strncmp(r, "ERR", 3), "rto=0 accepted: %s", r ? r : fn_err());
    free(r);
    r = fn_ctl_cmd(D.control_port, "MODE");
    ck_assert_msg(r && !strcmp(r, "OK hold"), "a failed MODE changed the mode: %s",
                  r ? r : fn_err());
    free(r);
    r = fn_ctl_cmd(D.control_port, "MODE hold rto=300");
    ck_assert_msg(r && strstr(r, "\"rto\":300") && strstr(r, "\"syn\":[1000,2000]"),
                  "knobs not kept: %s", r ? r : fn_err());
    free(r);
}
END_TEST



/* The sender's kernel is not acknowledged for what it sends into a cut
 * (held_rcvbuf: the held socket's receive buffer shrinks at the cut), so a
 * node streaming into it stops after about its own send buffer, as on a
 * lossy path, instead of handing megabytes to our kernel: that is when
 * busy_dist_port comes.  A paced sender (200-byte writes, about 400 KB/s
 * for 2 s, a node's distribution traffic) asks its kernel how much of it
 * was acknowledged (what it takes from the sender depends on the sender's
 * own send buffer, over 700 KB for a loopback socket here); after the
 * heal every byte arrives, once, in order. */
/* Bytes of fd's stream its peer's kernel has acknowledged (TCP_INFO). */
static unsigned long long acked_bytes(int fd)
{
    struct tcp_info ti;
    socklen_t len = sizeof ti;
    memset(&ti, 0, sizeof ti);
    ck_assert_msg(getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &len) == 0, "TCP_INFO: %s",
                  strerror(errno));
    return ti.tcpi_bytes_acked;
}

static size_t stream_into_cut(const char *mode, uint64_t seed, unsigned long long *acked)
{
    fn_link l;
    open_up(&l, mode);
    ctl_ok("CUT a b");
    unsigned long long acked0 = acked_bytes(l.ini);
    fn_rng g;
    fn_rng_seed(&g, seed);
    uint8_t chunk[200];
    size_t n = 0;
    long long t0 = tu_now_ms();
    for (int i = 0; tu_now_ms() - t0 < 2000; i++) {
        fn_rng_fill(&g, chunk, sizeof chunk);
        size_t off = 0;
        while (off < sizeof chunk) {
            ssize_t k = send(l.ini, chunk + off, sizeof chunk - off, MSG_DONTWAIT | MSG_NOSIGNAL);
            if (k <= 0)
                break;
            off += (size_t)k;
        }
        n += off;
        if (off < sizeof chunk) {
            /* full: what was not taken is not part of the stream */
            fn_rng_seed(&g, seed);
            uint8_t skip[200];
            for (size_t d = 0; d + sizeof skip <= n; d += sizeof skip)
                fn_rng_fill(&g, skip, sizeof skip);
            if (n % sizeof skip)
                fn_rng_fill(&g, skip, n % sizeof skip);
            break;
        }
        if (i % 20 == 19)
            tu_sleep_ms(10);   /* the pace: 20 writes per 10 ms */
    }
    *acked = acked_bytes(l.ini) - acked0;
    ctl_ok("HEAL");
    fn_rng_seed(&g, seed);
    uint8_t *want = malloc(1 << 16), *got = malloc(1 << 16);
    for (size_t done = 0; done < n;) {
        size_t k = n - done < (1 << 16) ? n - done : (1 << 16);
        fn_rng_fill(&g, want, k);
        ck_assert_msg(tu_read_exact(l.acc, got, k, 20000) == 0,
                      "%zu of %zu bytes arrived after HEAL", done, n);
        ck_assert_msg(!memcmp(want, got, k), "bytes %zu..%zu differ after HEAL", done, done + k);
        done += k;
    }
    free(want);
    free(got);
    ck_assert_msg(stays_silent(l.acc, 50), "more bytes than were sent arrived");
    fn_link_close(&l);
    return n;
}

START_TEST(hold_cut_sender_not_acknowledged)
{
    unsigned long long small, big;
    size_t sent = stream_into_cut("MODE hold rto=100", 93, &small);
    size_t sent0 = stream_into_cut("MODE hold rto=100 held_rcvbuf=0", 94, &big);
    printf("relay hold: %llu of %zu bytes sent into a cut were acknowledged (%llu of %zu "
           "unshrunk)\n", small, sent, big, sent0);
    ck_assert_msg(small < 96 * 1024, "%llu of the %zu bytes sent into a cut were acknowledged",
                  small, sent);
    ck_assert_msg(big > 2 * small, "without held_rcvbuf %llu bytes were acknowledged, %llu with",
                  big, small);
    ASSERT_ALIVE();
}
END_TEST

/* ------------------------------------------------- EPMD across a cut */

/* `EPMDPORT name [addr]` must answer OK; the port. */
static int own_port(const char *name, const char *addr)
{
    char cmd[128];
    snprintf(cmd, sizeof cmd, "EPMDPORT %s%s%s", name, addr ? " " : "", addr ? addr : "");
    char *r = fn_ctl_cmd(D.control_port, cmd);
    const char *p = r ? strstr(r, "\"port\":") : NULL;
    int port = p ? atoi(p + 7) : -1;
    ck_assert_msg(r && !strncmp(r, "OK {", 4) && port > 0, "%s: %s", cmd, r ? r : fn_err());
    free(r);
    return port;
}

/* Connect to addr:port (blocking, 10 s timeouts) and send one EPMD request:
 * PORT_PLEASE2 for name, or NAMES (name NULL).  The fd (tracked). */
static int lookup_send(const char *addr, int port, const char *name)
{
    struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((unsigned short)port) };
    struct timeval tv = { 10, 0 };
    ck_assert(inet_pton(AF_INET, addr, &sa.sin_addr) == 1);
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    ck_assert_msg(fd >= 0, "socket: %s", strerror(errno));
    fn_track(fd);
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    ck_assert_msg(connect(fd, (struct sockaddr *)&sa, sizeof sa) == 0, "connect %s:%d: %s", addr,
                  port, strerror(errno));
    uint8_t req[128];
    size_t n = name ? strlen(name) : 0;
    req[0] = (uint8_t)((n + 1) >> 8);
    req[1] = (uint8_t)(n + 1);
    req[2] = name ? 'z' : 'n';
    memcpy(req + 3, name ? name : "", n);
    ck_assert(fn_send_all(fd, req, n + 3) == 0);
    return fd;
}

/* The proxy port in a PORT_PLEASE2 reply read to its end from fd, or -1. */
static int port2_reply(int fd, int timeout_ms)
{
    uint8_t rep[256];
    int eof = 0;
    size_t n = tu_read_until_eof(fd, rep, sizeof rep, timeout_ms, &eof);
    return n >= 4 && rep[0] == 'w' && rep[1] == 0 && eof ? rep[2] << 8 | rep[3] : -1;
}

/* A NAMES reply read to its end from fd, without its 4-byte port, in out. */
static void names_reply(int fd, int timeout_ms, char *out, size_t len)
{
    int eof = 0;
    size_t n = tu_read_until_eof(fd, (uint8_t *)out, len - 1, timeout_ms, &eof);
    ck_assert_msg(n >= 4 && eof, "NAMES: %zu bytes%s", n, eof ? "" : ", no close");
    memmove(out, out + 4, n - 4);
    out[n - 4] = 0;
}

/* EPMDPORT gives each node one port, the same every time; refuses a full
 * name and an address off loopback; alone, lists them. */
START_TEST(epmdport_command)
{
    int pa = own_port("a", NULL);
    ck_assert_int_eq(own_port("a", NULL), pa);
    ck_assert_msg(pa != D.epmd_port, "a's own port is the shared one");
    int pc = own_port("c", "127.0.0.3");
    ck_assert_msg(pc != pa, "a and c got the same port %d", pc);
    const char *bad[] = { "EPMDPORT a@localhost", "EPMDPORT d 10.1.2.3", "EPMDPORT c 127.0.0.4",
                          "EPMDPORT d 127.0.0.5 x" };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char *r = fn_ctl_cmd(D.control_port, bad[i]);
        ck_assert_msg(r && !strncmp(r, "ERR", 3), "%s: %s", bad[i], r ? r : fn_err());
        free(r);
    }
    char *r = fn_ctl_cmd(D.control_port, "EPMDPORT");
    char want[64];
    snprintf(want, sizeof want, "{\"name\":\"c\",\"port\":%d,\"addr\":\"127.0.0.3\"}", pc);
    ck_assert_msg(r && !strncmp(r, "OK [", 4) && strstr(r, want) && fn_json_valid(r + 3, strlen(r + 3)),
                  "EPMDPORT: %s", r ? r : fn_err());
    free(r);
    /* every port serves the EPMD protocol, on the daemon's address and on c's */
    ck_assert_int_eq(port2_reply(lookup_send("127.0.0.1", pa, "b"), 10000), B.proxy_port);
    ck_assert_int_eq(port2_reply(lookup_send("127.0.0.3", pa, "b"), 10000), B.proxy_port);
    ck_assert_int_eq(port2_reply(lookup_send("127.0.0.3", D.epmd_port, "b"), 10000), B.proxy_port);
    ASSERT_ALIVE();
}
END_TEST

/* PORT_PLEASE2 on a's own port for b across a cut a | b waits, as a's
 * SYN to b's host would, for its next SYN retry after the heal (syn=1,3:
 * 1 s after it began), not for the heal.  The shared port, which cannot
 * tell who asks, and a's port for a node a may reach, answer at once. */
START_TEST(hold_lookup_waits_for_syn_retry)
{
    char ev[512];
    ctl_ok("MODE hold syn=1,3");
    int pa = own_port("a", NULL);
    ctl_ok("CUT a b");
    long long t0 = tu_now_ms();
    int fd = lookup_send("127.0.0.1", pa, "b");
    ck_assert_msg(TU_WAIT_UNTIL(find_event("epmd_held", "a", ev, sizeof ev), 5000),
                  "no epmd_held event for a's lookup across the cut");
    ck_assert_msg(strstr(ev, "\"name\":\"b\""), "epmd_held: %s", ev);
    ck_assert_int_eq(fn_port_please(D.epmd_port, "b"), B.proxy_port);
    ck_assert_int_eq(port2_reply(lookup_send("127.0.0.1", pa, "zz"), 10000), -1);
    ck_assert_msg(stays_silent(fd, 100), "a's lookup of b was answered across the cut");
    ctl_ok("HEAL");
    int port = port2_reply(fd, 10000);
    long long at = tu_now_ms() - t0;
    ck_assert_msg(port == B.proxy_port, "after HEAL a's lookup of b got %d, not b's proxy port %d",
                  port, B.proxy_port);
    ck_assert_msg(at >= 995, "answered %lld ms after it began: before its first SYN retry (1000)",
                  at);
    ck_assert_msg(at < 2900, "answered %lld ms after it began: not at the 1 s retry", at);
    ck_assert_msg(TU_WAIT_UNTIL(find_event("epmd_release", "a", ev, sizeof ev), 5000),
                  "no epmd_release event");
}
END_TEST

/* A lookup still cut at its last SYN retry fails with a reset (connect()
 * timing out); the daemon keeps nothing of it. */
START_TEST(hold_lookup_gives_up)
{
    ctl_ok("MODE hold syn=0.3,0.6");
    int pa = own_port("a", NULL);
    ctl_ok("CUT a b");
    long long t0 = tu_now_ms();
    int fd = lookup_send("127.0.0.1", pa, "b");
    size_t got = 0;
    int reset = 0;
    ck_assert_msg(fn_wait_eof(fd, 10000, &got, &reset) == 1 && reset && got == 0,
                  "the asker saw no reset when the SYN retries ran out (%zu bytes)", got);
    long long at = tu_now_ms() - t0;
    ck_assert_msg(at >= 590, "given up %lld ms after it began: before the last retry (600)", at);
    ctl_ok("HEAL");
    ck_assert_int_eq(port2_reply(lookup_send("127.0.0.1", pa, "b"), 10000), B.proxy_port);
    ASSERT_ALIVE();
}
END_TEST

/* An asker that gives up while held is forgotten: its fd is closed (the
 * daemon's fd count comes back), nothing is answered at the heal. */
START_TEST(hold_lookup_asker_leaves)
{
    ctl_ok("MODE hold syn=0.2,30");
    int pa = own_port("a", NULL);
    ctl_ok("CUT a b");
    ck_assert_int_eq(port2_reply(lookup_send("127.0.0.1", pa, "zz"), 10000), -1);
    int before = tu_fd_count(D.pid);
    int fd = lookup_send("127.0.0.1", pa, "b");
    char ev[512];
    ck_assert_msg(TU_WAIT_UNTIL(find_event("epmd_held", "a", ev, sizeof ev), 5000), "not held");
    ck_assert_msg(TU_WAIT_UNTIL(tu_fd_count(D.pid) == before + 1, 5000),
                  "the held lookup: %d fds, %d before", tu_fd_count(D.pid), before);
    fn_close(fd);
    ck_assert_msg(TU_WAIT_UNTIL(tu_fd_count(D.pid) == before, 5000),
                  "the daemon still has %d fds, %d before the held lookup",
                  tu_fd_count(D.pid), before);
    ctl_ok("HEAL");
    ck_assert_int_eq(port2_reply(lookup_send("127.0.0.1", pa, "b"), 10000), B.proxy_port);
    ASSERT_ALIVE();
}
END_TEST

/* NAMES sent to a node host address lists that host's nodes; across a
 * cut from all of them it waits for the next SYN retry after the heal.
 * NAMES of the daemon's own address (everyone's host) answers at once. */
START_TEST(hold_names_of_another_host)
{
    char ev[512], txt[1024], want[64];
    fn_node C;
    ctl_ok("MODE hold syn=0.5,3");
    int pc = own_port("c", "127.0.0.3");
    ASSERT_OK(fn_node_start(&C, pc, "c"));
    int pa = own_port("a", NULL);
    snprintf(want, sizeof want, "name c at port %d\n", C.proxy_port);
    names_reply(lookup_send("127.0.0.3", pa, NULL), 10000, txt, sizeof txt);
    ck_assert_msg(!strcmp(txt, want), "NAMES of c's host: \"%s\", not \"%s\"", txt, want);
    ctl_ok("CUT a c");
    long long t0 = tu_now_ms();
    int fd = lookup_send("127.0.0.3", pa, NULL);
    ck_assert_msg(TU_WAIT_UNTIL(find_event("epmd_held", "a", ev, sizeof ev), 5000),
                  "NAMES of c's host across a | c was not held");
    ck_assert_msg(strstr(ev, "\"host\":\"127.0.0.3\""), "epmd_held: %s", ev);
    names_reply(lookup_send("127.0.0.1", pa, NULL), 10000, txt, sizeof txt);
    ck_assert_msg(strstr(txt, "name b at port") && strstr(txt, "name c at port"),
                  "NAMES of the daemon's address: \"%s\"", txt);
    ck_assert_msg(stays_silent(fd, 100), "NAMES of c's host answered across the cut");
    ctl_ok("HEAL");
    names_reply(fd, 10000, txt, sizeof txt);
    long long at = tu_now_ms() - t0;
    ck_assert_msg(!strcmp(txt, want), "NAMES of c's host after HEAL: \"%s\"", txt);
    ck_assert_msg(at >= 495, "answered %lld ms after it began: before the 0.5 s retry", at);
    fn_node_stop(&C);
}
END_TEST

Suite *relay_suite(void)
{
    Suite *s = suite_create("relay");
    struct { const char *name; const TTest *t; int timeout; } cases[] = {
        { "first_frame_byte_exact", first_frame_byte_exact, 30 },
        { "first_frame_one_byte_per_write", first_frame_one_byte_per_write, 30 },
        { "old_n_frame", old_n_frame, 30 },
        { "garbage_first_frame_closed", garbage_first_frame_closed, 90 },
        { "silent_initiator_times_out", silent_initiator_times_out, 90 },
        { "node_port_dead", node_port_dead, 30 },
        { "links_states_and_counters", links_states_and_counters, 60 },
        { "handshake_split_and_coalesced", handshake_split_and_coalesced, 60 },
        { "handshake_variants", handshake_variants, 60 },
        { "data_both_ways", data_both_ways, 90 },
        { "many_links_at_once", many_links_at_once, 60 },
        { "bulk_50mb_backpressure", bulk_50mb_backpressure, 150 },
        { "links_leak_nothing", links_leak_nothing, 150 },
        { "stalled_link_isolated", stalled_link_isolated, 90 },
        { "half_close", half_close, 60 },
        { "close_node_side", close_node_side, 30 },
        { "close_initiator_side", close_initiator_side, 30 },
        { "close_during_handshake", close_during_handshake, 60 },
        { "unregister_closes_listener", unregister_closes_listener, 30 },
        { "nodelay_round_trips", nodelay_round_trips, 60 },
        { "reset_pending_initiator", reset_pending_initiator, 60 },
        { "reset_pending_node", reset_pending_node, 60 },
        { "one_way_cut_node_closes_first", one_way_cut_node_closes_first, 60 },
        { "one_way_cut_initiator_closes_first", one_way_cut_initiator_closes_first, 60 },
        { "named_initiator_rule_holds", named_initiator_rule_holds, 60 },
        { "named_initiator_rule_resets", named_initiator_rule_resets, 60 },
        { "acceptor_name_rule_holds", acceptor_name_rule_holds, 60 },
        { "link_opened_names_target", link_opened_names_target, 60 },
        { "hold_resumes_at_retransmission", hold_resumes_at_retransmission, 60 },
        { "freeze_resumes_at_heal", freeze_resumes_at_heal, 60 },
        { "splice_bulk_held_exactly", splice_bulk_held_exactly, 150 },
        { "splice_eof_after_pipe", splice_eof_after_pipe, 120 },
        { "no_splice_option", no_splice_option, 120 },
        { "hold_recut_keeps_backoff", hold_recut_keeps_backoff, 60 },
        { "hold_oneway_reverse_stalls", hold_oneway_reverse_stalls, 60 },
        { "hold_oneway_grace_time", hold_oneway_grace_time, 60 },
        { "hold_pending_waits_for_syn_retry", hold_pending_waits_for_syn_retry, 60 },
        { "hold_pending_gives_up", hold_pending_gives_up, 60 },
        { "hold_knobs_via_mode", hold_knobs_via_mode, 30 },
        { "hold_cut_sender_not_acknowledged", hold_cut_sender_not_acknowledged, 90 },
        { "epmdport_command", epmdport_command, 30 },
        { "hold_lookup_waits_for_syn_retry", hold_lookup_waits_for_syn_retry, 60 },
        { "hold_lookup_gives_up", hold_lookup_gives_up, 60 },
        { "hold_lookup_asker_leaves", hold_lookup_asker_leaves, 60 },
        { "hold_names_of_another_host", hold_names_of_another_host, 60 },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        tu_add_case(s, cases[i].name, cases[i].t, cases[i].timeout, setup, teardown);
    return s;
}
