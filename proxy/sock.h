/* Thin socket helpers: every socket is non-blocking and close-on-exec. */
#ifndef SOCK_H
#define SOCK_H

#include <stddef.h>
#include <sys/socket.h>

/* Listen on addr (IPv4 or IPv6 literal; NULL = 127.0.0.1) and port (0 =
 * any free port).  Returns the fd, or -1 with a message in err. */
int sock_listen(const char *addr, int port, char *err, size_t errlen);
/* The local port a socket is bound to, or -1. */
int sock_local_port(int fd);
/* Accept one connection (non-blocking, close-on-exec); -1 with errno. */
int sock_accept(int lfd);
/* Did accept fail for lack of fds or memory (back off) rather than for a
 * reason that goes away by itself (EAGAIN, ECONNABORTED...)? */
int sock_accept_starved(int err);
/* The soft RLIMIT_NOFILE (at most INT_MAX). */
int sock_fd_limit(void);
/* Start a non-blocking connect to 127.0.0.1:port, shaped first by
 * sock_shape(fd, rcvbuf, mss) (before the window and MSS are agreed).
 * Returns the fd (the connect may still be in progress: wait for POLLOUT,
 * then sock_error), or -1 with errno. */
int sock_connect_loopback(int port, int rcvbuf, int mss);
/* The same to addr (an IPv4 or IPv6 literal):port; -1 with errno
 * (EINVAL: not a literal). */
int sock_connect_host(const char *addr, int port, int rcvbuf, int mss);
/* The same to any address (non-blocking, close-on-exec). */
int sock_connect_addr(const struct sockaddr *sa, socklen_t len, int rcvbuf, int mss);
/* Set SO_RCVBUF (rcvbuf > 0; the kernel doubles it) and the MSS the socket
 * announces (TCP_MAXSEG, mss > 0); a listener's pass to the sockets it
 * accepts.  Best effort. */
void sock_shape(int fd, int rcvbuf, int mss);
/* The pending error of a socket (SO_ERROR), 0 if none. */
int sock_error(int fd);
/* Turn Nagle off. */
void sock_nodelay(int fd);
/* epmd's idea of a local peer: 127/8, ::1 (also v4-mapped), or a peer whose
 * address equals the socket's own.  1 or 0. */
int sock_is_local_peer(int fd);
/* Close so that the peer sees a reset (RST) rather than an orderly close. */
void sock_close_rst(int fd);

#endif
