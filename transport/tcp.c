/*
 * TCP channels: the stream channel of transport/unix.c on a TCP socket,
 * with Nagle off (requests and replies are small and wait on each other)
 * and keepalive tuned so that a peer that vanished without a word (power,
 * network) is noticed within seconds, not hours.
 */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "tp.h"

/* Keepalive probes after 2 s idle, every 1 s, 3 unanswered: dead. */
#define TP_TCP_KEEPIDLE_S    2
#define TP_TCP_KEEPINTVL_S   1
#define TP_TCP_KEEPCNT       3
/* Unacknowledged data older than this ends the connection. */
#define TP_TCP_USER_TIMEOUT_MS 5000u
#define TP_HOSTPORT_MAX      300
/* A host that drops our SYNs must not stall cuInit for minutes. */
#define TP_TCP_CONNECT_TIMEOUT_MS 10000

void tp_tcp_tune(int fd)
{
	int one = 1, idle = TP_TCP_KEEPIDLE_S, intvl = TP_TCP_KEEPINTVL_S, cnt = TP_TCP_KEEPCNT;
	unsigned int uto = TP_TCP_USER_TIMEOUT_MS;

	/* Best effort: each option only makes failures show sooner. */
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof(one));
	setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof(idle));
	setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &intvl, sizeof(intvl));
	setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &cnt, sizeof(cnt));
	setsockopt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &uto, sizeof(uto));
}

/* "HOST:PORT" or "[V6]:PORT" into host and port strings. */
static int split_hostport(const char *hp, char *host, size_t hostlen, const char **port)
{
	const char *colon;
	size_t n;

	if (hp[0] == '[') {
		const char *end = strchr(hp, ']');

		if (!end || end[1] != ':')
			return -EINVAL;
		n = (size_t)(end - hp - 1);
		hp++;
		colon = end + 1;
	} else {
		colon = strrchr(hp, ':');
		if (!colon)
			return -EINVAL;
		n = (size_t)(colon - hp);
	}
	if (n == 0 || n >= hostlen || !colon[1])
		return -EINVAL;
	memcpy(host, hp, n);
	host[n] = '\0';
	*port = colon + 1;
	return 0;
}

static int resolve(const char *hp, int passive, struct addrinfo **res)
{
	struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM };
	char host[TP_HOSTPORT_MAX];
	const char *port;
	int ret;

	ret = split_hostport(hp, host, sizeof(host), &port);
	if (ret < 0)
		return ret;
	if (passive)
		hints.ai_flags = AI_PASSIVE;
	hints.ai_flags |= AI_NUMERICSERV;
	ret = getaddrinfo(host, port, &hints, res);
	if (ret == EAI_SYSTEM)
		return -errno;
	if (ret)
		return ret == EAI_NONAME || ret == EAI_SERVICE ? -EHOSTUNREACH : -EINVAL;
	return 0;
}

/* connect() with a time limit: 0 or a negative errno (-ETIMEDOUT). */
static int connect_timed(int fd, const struct sockaddr *sa, socklen_t len)
{
	struct pollfd p = { .fd = fd, .events = POLLOUT };
	int flags = fcntl(fd, F_GETFL), err = 0, ret;
	socklen_t elen = sizeof(err);

	if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0)
		return -errno;
	ret = connect(fd, sa, len);
	if (ret < 0 && errno != EINPROGRESS && errno != EINTR)
		return -errno;
	if (ret < 0) {
		do
			ret = poll(&p, 1, TP_TCP_CONNECT_TIMEOUT_MS);
		while (ret < 0 && errno == EINTR);
		if (ret == 0)
			return -ETIMEDOUT;
		if (ret < 0 || getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &elen) < 0)
			return -errno;
		if (err)
			return -err;
	}
	return fcntl(fd, F_SETFL, flags) < 0 ? -errno : 0;
}

int tp_tcp_connect(const char *hostport, struct tp_chan **out)
{
	struct addrinfo *res, *ai;
	int fd = -1, ret;

	ret = resolve(hostport, 0, &res);
	if (ret < 0)
		return ret;
	ret = -EHOSTUNREACH;
	for (ai = res; ai; ai = ai->ai_next) {
		fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
		if (fd < 0) {
			ret = -errno;
			continue;
		}
		tp_tcp_tune(fd);
		ret = connect_timed(fd, ai->ai_addr, ai->ai_addrlen);
		if (ret == 0)
			break;
		close(fd);
		fd = -1;
	}
	freeaddrinfo(res);
	if (fd < 0)
		return ret;
	ret = tp_stream_wrap(fd, out);
	if (ret < 0)
		close(fd);
	return ret;
}

static int is_loopback(const struct sockaddr *sa)
{
	if (sa->sa_family == AF_INET)
		return (ntohl(((const struct sockaddr_in *)sa)->sin_addr.s_addr) >> 24) == 127;
	if (sa->sa_family == AF_INET6) {
		const struct in6_addr *a = &((const struct sockaddr_in6 *)sa)->sin6_addr;

		return IN6_IS_ADDR_LOOPBACK(a) ||
		       (IN6_IS_ADDR_V4MAPPED(a) && a->s6_addr[12] == 127);
	}
	return 0;
}

int tp_tcp_listen(const char *hostport, int *listen_fd, int *loopback)
{
	struct addrinfo *res, *ai;
	int fd = -1, ret, one = 1;

	ret = resolve(hostport, 1, &res);
	if (ret < 0)
		return ret;
	/* The first address that binds; "localhost" gives 127.0.0.1 first. */
	ret = -EADDRNOTAVAIL;
	for (ai = res; ai; ai = ai->ai_next) {
		fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
		if (fd < 0) {
			ret = -errno;
			continue;
		}
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		if (bind(fd, ai->ai_addr, ai->ai_addrlen) == 0 && listen(fd, 128) == 0) {
			*loopback = is_loopback(ai->ai_addr);
			tp_tcp_tune(fd);	/* accepted sockets inherit these */
			break;
		}
		ret = -errno;
		close(fd);
		fd = -1;
	}
	freeaddrinfo(res);
	if (fd < 0)
		return ret;
	*listen_fd = fd;
	return 0;
}
