/*
 * Stream channels over unix sockets, and message framing on any channel.
 * A channel is used by one thread at a time; callers serialise.  Nothing
 * here has global state.
 */
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "tp.h"

static int unix_send(struct tp_chan *c, const struct iovec *iov, int iovcnt, int fd)
{
	struct iovec v[8];
	union {
		struct cmsghdr h;
		char buf[CMSG_SPACE(sizeof(int))];
	} cm;
	struct msghdr m;
	int n = iovcnt, i;
	ssize_t sent;

	if (n > 8)
		return -EINVAL;
	memcpy(v, iov, sizeof(*iov) * (size_t)n);
	i = 0;
	while (i < n) {
		memset(&m, 0, sizeof(m));
		m.msg_iov = v + i;
		m.msg_iovlen = (size_t)(n - i);
		if (fd >= 0) {
			/* The descriptor rides on the first byte of the message. */
			memset(&cm, 0, sizeof(cm));
			m.msg_control = cm.buf;
			m.msg_controllen = sizeof(cm.buf);
			cm.h.cmsg_level = SOL_SOCKET;
			cm.h.cmsg_type = SCM_RIGHTS;
			cm.h.cmsg_len = CMSG_LEN(sizeof(int));
			memcpy(CMSG_DATA(&cm.h), &fd, sizeof(int));
		}
		sent = sendmsg(c->fd, &m, MSG_NOSIGNAL);
		if (sent < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		fd = -1;
		c->bytes_sent += (uint64_t)sent;
		while (i < n && (size_t)sent >= v[i].iov_len) {
			sent -= (ssize_t)v[i].iov_len;
			i++;
		}
		if (i < n) {
			v[i].iov_base = (char *)v[i].iov_base + sent;
			v[i].iov_len -= (size_t)sent;
		}
	}
	return 0;
}

static int unix_recv(struct tp_chan *c, void *p, size_t n, int *fd)
{
	size_t got = 0;

	while (got < n) {
		union {
			struct cmsghdr h;
			char buf[CMSG_SPACE(sizeof(int) * 4)];
		} cm;
		struct iovec v = { (char *)p + got, n - got };
		struct msghdr m;
		struct cmsghdr *h;
		ssize_t r;

		memset(&m, 0, sizeof(m));
		m.msg_iov = &v;
		m.msg_iovlen = 1;
		m.msg_control = cm.buf;
		m.msg_controllen = sizeof(cm.buf);
		r = recvmsg(c->fd, &m, MSG_CMSG_CLOEXEC);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (r == 0)
			return -ECONNRESET;
		for (h = CMSG_FIRSTHDR(&m); h; h = CMSG_NXTHDR(&m, h)) {
			int k, cnt, fds[4];

			if (h->cmsg_level != SOL_SOCKET || h->cmsg_type != SCM_RIGHTS)
				continue;
			cnt = (int)((h->cmsg_len - CMSG_LEN(0)) / sizeof(int));
			if (cnt > 4)
				cnt = 4;
			memcpy(fds, CMSG_DATA(h), sizeof(int) * (size_t)cnt);
			for (k = 0; k < cnt; k++) {
				/* Keep one descriptor, where the caller wants one. */
				if (fd && *fd < 0)
					*fd = fds[k];
				else
					close(fds[k]);
			}
		}
		got += (size_t)r;
		c->bytes_received += (uint64_t)r;
	}
	return 0;
}

/* One byte and, on sending, a descriptor, outside the message framing. */
int tp_fd_send(int sock, uint8_t byte, int fd)
{
	struct tp_chan c = { .fd = sock };
	struct iovec v = { &byte, 1 };

	return unix_send(&c, &v, 1, fd);
}

int tp_fd_recv(int sock, uint8_t *byte, int *fd)
{
	struct tp_chan c = { .fd = sock };

	*fd = -1;
	return unix_recv(&c, byte, 1, fd);
}

static void unix_destroy(struct tp_chan *c)
{
	if (c->fd >= 0)
		close(c->fd);
	free(c);
}

static const struct tp_chan_ops unix_ops = {
	.name = "unix",
	.send = unix_send,
	.recv = unix_recv,
	.destroy = unix_destroy,
};

/* Streams that cannot carry descriptors (TCP, vsock, a VMM's unix socket). */
static int stream_send(struct tp_chan *c, const struct iovec *iov, int iovcnt, int fd)
{
	if (fd >= 0)
		return -ENOTSUP;
	return unix_send(c, iov, iovcnt, -1);
}

static int stream_recv(struct tp_chan *c, void *p, size_t n, int *fd)
{
	if (fd)
		*fd = -1;
	return unix_recv(c, p, n, NULL);
}

static const struct tp_chan_ops stream_ops = {
	.name = "stream",
	.send = stream_send,
	.recv = stream_recv,
	.destroy = unix_destroy,
};

static int chan_wrap(int fd, const struct tp_chan_ops *ops, struct tp_chan **out)
{
	struct tp_chan *c = calloc(1, sizeof(*c));

	if (!c)
		return -ENOMEM;
	c->ops = ops;
	c->fd = fd;
	*out = c;
	return 0;
}

int tp_unix_wrap(int fd, struct tp_chan **out)
{
	return chan_wrap(fd, &unix_ops, out);
}

int tp_stream_wrap(int fd, struct tp_chan **out)
{
	return chan_wrap(fd, &stream_ops, out);
}

int tp_chan_passes_fds(const struct tp_chan *c)
{
	return c->ops == &unix_ops || tp_chan_is_ring(c);
}

static int unix_addr(const char *path, struct sockaddr_un *sa, socklen_t *len)
{
	size_t n = strlen(path);

	memset(sa, 0, sizeof(*sa));
	sa->sun_family = AF_UNIX;
	if (n == 0 || (path[0] == '@' && n == 1))
		return -EINVAL;
	if (n >= sizeof(sa->sun_path))
		return -ENAMETOOLONG;
	memcpy(sa->sun_path, path, n);
	/* "@name" is an abstract socket. */
	if (path[0] == '@')
		sa->sun_path[0] = '\0';
	*len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n + (path[0] == '@' ? 0 : 1));
	return 0;
}

static int unix_connect_fd(const char *path, int *out)
{
	struct sockaddr_un sa;
	socklen_t len;
	int fd, ret;

	ret = unix_addr(path, &sa, &len);
	if (ret < 0)
		return ret;
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	while (connect(fd, (struct sockaddr *)&sa, len) < 0) {
		if (errno == EINTR)
			continue;
		ret = -errno;
		close(fd);
		return ret;
	}
	*out = fd;
	return 0;
}

int tp_unix_connect(const char *path, struct tp_chan **out)
{
	int fd, ret = unix_connect_fd(path, &fd);

	if (ret < 0)
		return ret;
	ret = tp_unix_wrap(fd, out);
	if (ret < 0)
		close(fd);
	return ret;
}

int tp_unix_connect_nofd(const char *path, struct tp_chan **out)
{
	int fd, ret = unix_connect_fd(path, &fd);

	if (ret < 0)
		return ret;
	ret = tp_stream_wrap(fd, out);
	if (ret < 0)
		close(fd);
	return ret;
}

/*
 * A socket file left by a daemon that died is in the way of bind(); one a
 * live daemon serves is not ours to take, and a file that is no socket was
 * never ours.  0 when the path is free (now), else a negative errno.
 */
static int unix_path_clear(const char *path, const struct sockaddr_un *sa, socklen_t len)
{
	struct stat st;
	int fd, ret;

	if (lstat(path, &st) < 0)
		return errno == ENOENT ? 0 : -errno;
	if (!S_ISSOCK(st.st_mode))
		return -EEXIST;
	/* Non-blocking, so a live server with a full backlog cannot stall us. */
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -errno;
	do
		ret = connect(fd, (const struct sockaddr *)sa, len);
	while (ret < 0 && errno == EINTR);
	if (ret == 0 || errno == EAGAIN)
		ret = -EADDRINUSE;
	else if (errno == ECONNREFUSED)
		ret = unlink(path) < 0 && errno != ENOENT ? -errno : 0;
	else
		ret = -errno;
	close(fd);
	return ret;
}

int tp_unix_listen(const char *path, int *listen_fd)
{
	struct sockaddr_un sa;
	socklen_t len;
	int fd, ret;

	ret = unix_addr(path, &sa, &len);
	if (ret < 0)
		return ret;
	if (path[0] != '@') {
		ret = unix_path_clear(path, &sa, len);
		if (ret < 0)
			return ret;
	}
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (bind(fd, (struct sockaddr *)&sa, len) < 0 || listen(fd, 128) < 0) {
		ret = -errno;
		close(fd);
		return ret;
	}
	*listen_fd = fd;
	return 0;
}

int tp_unix_accept(int listen_fd, struct tp_chan **out)
{
	int fd, ret;

	do
		fd = accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC);
	while (fd < 0 && errno == EINTR);
	if (fd < 0)
		return -errno;
	ret = tp_unix_wrap(fd, out);
	if (ret < 0)
		close(fd);
	return ret;
}

int tp_unix_pair(struct tp_chan **a, int *b_fd)
{
	int sv[2], ret;

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
		return -errno;
	ret = tp_unix_wrap(sv[0], a);
	if (ret < 0) {
		close(sv[0]);
		close(sv[1]);
		return ret;
	}
	*b_fd = sv[1];
	return 0;
}

int tp_connect(const char *address, struct tp_chan **out)
{
	if (!strncmp(address, "unix:", 5))
		return tp_unix_connect(address + 5, out);
	if (!strncmp(address, "ivshmem:", 8))
		return tp_ivshmem_connect(address + 8, out);
	if (!strncmp(address, "unix-nofd:", 10))
		return tp_unix_connect_nofd(address + 10, out);
	if (!strncmp(address, "tcp:", 4))
		return tp_tcp_connect(address + 4, out);
	if (!strncmp(address, "vsock:", 6))
		return tp_vsock_connect(address + 6, out);
	return -EPROTONOSUPPORT;
}

void tp_chan_destroy(struct tp_chan *c)
{
	if (c)
		c->ops->destroy(c);
}

int tp_send_msgv(struct tp_chan *c, struct vg_hdr *h, const struct iovec *iov, int iovcnt, int fd)
{
	uint8_t hb[VG_HDR_SIZE];
	struct iovec v[8];
	size_t total = VG_HDR_SIZE;
	int i;

	if (iovcnt > 7)
		return -EINVAL;
	for (i = 0; i < iovcnt; i++)
		total += iov[i].iov_len;
	if (total > VG_MSG_MAX)
		return -EMSGSIZE;
	h->len = (uint32_t)total;
	if (fd >= 0)
		h->flags |= VG_F_FD;
	vg_hdr_encode(h, hb);
	v[0].iov_base = hb;
	v[0].iov_len = VG_HDR_SIZE;
	memcpy(v + 1, iov, sizeof(*iov) * (size_t)iovcnt);
	return c->ops->send(c, v, iovcnt + 1, fd);
}

int tp_send_msg(struct tp_chan *c, struct vg_hdr *h, const void *payload, size_t n, int fd)
{
	struct iovec v = { (void *)payload, n };

	return tp_send_msgv(c, h, &v, n ? 1 : 0, fd);
}

int tp_recv_msg(struct tp_chan *c, struct vg_hdr *h, struct vg_buf *buf, size_t max_len, int *fd)
{
	uint8_t hb[VG_HDR_SIZE];
	size_t n;
	void *p;
	int ret;

	if (fd)
		*fd = -1;
	if (tp_chan_is_ring(c)) {
		ret = tp_ring_recv_msg(c, h, buf, max_len);
		if (ret != -EAGAIN)
			return ret;
	}
	ret = c->ops->recv(c, hb, VG_HDR_SIZE, fd);
	if (ret < 0)
		return ret;
	ret = vg_hdr_decode(hb, h);
	if (ret < 0)
		return ret;
	/* On rings the announced descriptor comes on the socket beside them. */
	if ((h->flags & VG_F_FD) && tp_chan_is_ring(c)) {
		int rfd = -1;

		ret = tp_ring_take_fd(c, &rfd);
		if (ret < 0)
			return ret;
		if (fd)
			*fd = rfd;
		else
			close(rfd);
	}
	n = h->len - VG_HDR_SIZE;
	ret = tp_msg_space(buf, n, max_len, &p);
	if (ret < 0)
		return ret;
	return n ? c->ops->recv(c, p, n, NULL) : 0;
}

int tp_msg_space(struct vg_buf *buf, size_t n, size_t max_len, void **p)
{
	if (n > max_len)
		return -EMSGSIZE;
	vg_buf_reset(buf);
	*p = vg_put_space(buf, n);
	if (!*p && n)
		return buf->err ? buf->err : -ENOMEM;
	return 0;
}

int tp_chan_spin(struct tp_chan *c, unsigned int usec)
{
	struct pollfd p = { .fd = c->fd, .events = POLLIN };
	uint64_t end;

	if (!usec || c->fd < 0)
		return 0;	/* nothing to poll: the channel waits by itself */
	end = tp_mono_ns() + (uint64_t)usec * 1000;
	do {
		if (poll(&p, 1, 0) > 0)
			return 1;
	} while (tp_mono_ns() < end);
	return 0;
}
