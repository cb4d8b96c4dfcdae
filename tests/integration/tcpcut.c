/*
 * it-tcpcut: a TCP proxy for the fault tests that cuts its links on demand.
 *
 *   it-tcpcut HOST:PORT
 *
 * Listens on 127.0.0.1 (a free port, printed as "PORT <n>" once it
 * listens), forwards every accepted connection to HOST:PORT both ways, and
 * on SIGUSR1 cuts every link at once: both sockets of each pair are reset
 * (SO_LINGER 0), as when a route or a middlebox drops the connection.  It
 * goes on accepting afterwards.  SIGTERM ends it.
 */
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "tp.h"

#define CUT_PAIRS_MAX 64

static volatile sig_atomic_t cut_now;

static void on_usr1(int sig)
{
	(void)sig;
	cut_now = 1;
}

static void reset_close(int fd)
{
	struct linger l = { 1, 0 };

	setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof(l));
	close(fd);
}

int main(int argc, char **argv)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(sa);
	int pair[CUT_PAIRS_MAX][2], npairs = 0, lfd, i, one = 1;
	struct pollfd pfd[1 + 2 * CUT_PAIRS_MAX];
	char buf[65536];

	if (argc != 2) {
		fprintf(stderr, "usage: it-tcpcut HOST:PORT\n");
		return 2;
	}
	signal(SIGPIPE, SIG_IGN);
	signal(SIGUSR1, on_usr1);
	lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (lfd < 0 || bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(lfd, 64) < 0 ||
	    getsockname(lfd, (struct sockaddr *)&sa, &len) < 0) {
		perror("it-tcpcut: listen");
		return 1;
	}
	printf("PORT %d\n", ntohs(sa.sin_port));
	fflush(stdout);
	for (;;) {
		int n = 0;

		if (cut_now) {
			for (i = 0; i < npairs; i++) {
				reset_close(pair[i][0]);
				reset_close(pair[i][1]);
			}
			fprintf(stderr, "it-tcpcut: cut %d links\n", npairs);
			npairs = 0;
			cut_now = 0;
		}
		pfd[n++] = (struct pollfd){ .fd = lfd, .events = POLLIN };
		for (i = 0; i < npairs; i++) {
			pfd[n++] = (struct pollfd){ .fd = pair[i][0], .events = POLLIN };
			pfd[n++] = (struct pollfd){ .fd = pair[i][1], .events = POLLIN };
		}
		if (poll(pfd, (nfds_t)n, -1) < 0) {
			if (errno == EINTR)
				continue;
			return 1;
		}
		for (i = npairs - 1; i >= 0; i--) {
			int k;

			for (k = 0; k < 2; k++) {
				ssize_t r;

				if (!(pfd[1 + 2 * i + k].revents & (POLLIN | POLLHUP | POLLERR)))
					continue;
				r = recv(pair[i][k], buf, sizeof(buf), MSG_DONTWAIT);
				if (r < 0 && (errno == EAGAIN || errno == EINTR))
					continue;
				/* One side ended: so does the other (blocking write keeps order). */
				if (r <= 0 || send(pair[i][!k], buf, (size_t)r, MSG_NOSIGNAL) != r) {
					close(pair[i][0]);
					close(pair[i][1]);
					pair[i][0] = pair[npairs - 1][0];
					pair[i][1] = pair[npairs - 1][1];
					npairs--;
					break;
				}
			}
		}
		if (pfd[0].revents & POLLIN) {
			struct tp_chan *up;
			int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);

			if (fd < 0)
				continue;
			if (npairs == CUT_PAIRS_MAX || tp_tcp_connect(argv[1], &up) < 0) {
				close(fd);
				continue;
			}
			pair[npairs][0] = fd;
			pair[npairs][1] = up->fd;
			up->fd = -1;
			tp_chan_destroy(up);
			npairs++;
		}
	}
}
