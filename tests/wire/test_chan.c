/*
 * Unix channel tests: framing against the golden bytes in both directions,
 * descriptor passing (one kept, extras closed, all close-on-exec), large
 * messages through partial reads and writes, EOF and dead peers, header
 * validation before a payload is read, addresses, listen/accept.
 *
 * SIGPIPE keeps its default action here on purpose: a send that raised it
 * would kill the test, which is how MSG_NOSIGNAL is proved.
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "golden.h"
#include "tp.h"

/* ---- helpers ----------------------------------------------------------- */

/* Two connected channels. */
static void chan_pair(struct tp_chan **a, struct tp_chan **b)
{
	int fd;

	assert_int_equal(tp_unix_pair(a, &fd), 0);
	assert_int_equal(tp_unix_wrap(fd, b), 0);
}

static void write_all(int fd, const void *p, size_t n)
{
	const uint8_t *q = p;

	while (n) {
		ssize_t w = write(fd, q, n);

		if (w < 0 && errno == EINTR)
			continue;
		assert_true(w > 0);
		q += w;
		n -= (size_t)w;
	}
}

static void read_all(int fd, void *p, size_t n)
{
	uint8_t *q = p;

	while (n) {
		ssize_t r = read(fd, q, n);

		if (r < 0 && errno == EINTR)
			continue;
		assert_true(r > 0);
		q += r;
		n -= (size_t)r;
	}
}

static int is_cloexec(int fd)
{
	int f = fcntl(fd, F_GETFD);

	assert_true(f >= 0);
	return (f & FD_CLOEXEC) != 0;
}

/* 1 when every writer of the pipe whose read end is rfd is closed. */
static int pipe_writers_gone(int rfd)
{
	char c;
	ssize_t r;

	fcntl(rfd, F_SETFL, fcntl(rfd, F_GETFL) | O_NONBLOCK);
	r = read(rfd, &c, 1);
	if (r == 0)
		return 1;
	assert_true(r < 0 && errno == EAGAIN);
	return 0;
}

/* Sends bytes with the given descriptors attached (raw, not through tp). */
static void send_with_fds(int sock, const void *p, size_t n, const int *fds, int nfds)
{
	union {
		struct cmsghdr h;
		char buf[CMSG_SPACE(sizeof(int) * 4)];
	} cm;
	struct iovec v = { (void *)p, n };
	struct msghdr m;

	assert_true(nfds >= 1 && nfds <= 4);
	memset(&m, 0, sizeof(m));
	memset(&cm, 0, sizeof(cm));
	m.msg_iov = &v;
	m.msg_iovlen = 1;
	m.msg_control = cm.buf;
	m.msg_controllen = CMSG_SPACE(sizeof(int) * (size_t)nfds);
	cm.h.cmsg_level = SOL_SOCKET;
	cm.h.cmsg_type = SCM_RIGHTS;
	cm.h.cmsg_len = CMSG_LEN(sizeof(int) * (size_t)nfds);
	memcpy(CMSG_DATA(&cm.h), fds, sizeof(int) * (size_t)nfds);
	assert_int_equal(sendmsg(sock, &m, MSG_NOSIGNAL), (ssize_t)n);
}

/* ---- framing against the golden bytes ---------------------------------- */

/* tp_send_msg puts exactly the golden bytes on the socket, whatever h->len
 * held before. */
static void test_send_matches_golden(void **state)
{
	struct tp_chan *a, *b;
	size_t i;

	chan_pair(&a, &b);
	for (i = 0; i < golden_count; i++) {
		const struct golden *g = golden_all[i];
		uint8_t *got = malloc(g->len);
		struct vg_hdr h;

		assert_non_null(got);
		assert_int_equal(vg_hdr_decode(g->bytes, &h), 0);
		h.len = 12345;
		assert_int_equal(tp_send_msg(a, &h, g->bytes + VG_HDR_SIZE, g->len - VG_HDR_SIZE, -1), 0);
		assert_int_equal(h.len, g->len);
		read_all(b->fd, got, g->len);
		if (memcmp(got, g->bytes, g->len))
			fail_msg("%s: tp_send_msg framed different bytes", g->name);
		free(got);
	}
	assert_true(a->bytes_sent > 0);
	tp_chan_destroy(a);
	tp_chan_destroy(b);
}

/* tp_recv_msg takes the golden bytes apart again, back to back on one stream. */
static void test_recv_golden(void **state)
{
	struct tp_chan *a, *b;
	struct vg_buf buf;
	size_t i;

	chan_pair(&a, &b);
	vg_buf_init(&buf);
	for (i = 0; i < golden_count; i++)
		write_all(a->fd, golden_all[i]->bytes, golden_all[i]->len);
	for (i = 0; i < golden_count; i++) {
		const struct golden *g = golden_all[i];
		struct vg_hdr h, want;
		int fd = 99;

		assert_int_equal(vg_hdr_decode(g->bytes, &want), 0);
		assert_int_equal(tp_recv_msg(b, &h, &buf, 4096, &fd), 0);
		assert_int_equal(fd, -1);
		assert_int_equal(h.len, g->len);
		assert_int_equal(h.kind, want.kind);
		assert_int_equal(h.flags, want.flags);
		assert_int_equal(h.op, want.op);
		assert_int_equal(h.tid, want.tid);
		assert_true(h.seq == want.seq);
		assert_int_equal(h.status, want.status);
		assert_int_equal(buf.len, g->len - VG_HDR_SIZE);
		if (buf.len)
			assert_memory_equal(buf.p, g->bytes + VG_HDR_SIZE, buf.len);
	}
	vg_buf_fini(&buf);
	tp_chan_destroy(a);
	tp_chan_destroy(b);
}

/* ---- descriptors ------------------------------------------------------- */

static void test_fd_round_trip(void **state)
{
	const struct golden *g = &golden_thread_opened;
	struct tp_chan *a, *b;
	struct vg_buf buf;
	struct vg_hdr h;
	int p[2], fd = -1;
	char c = 0;

	chan_pair(&a, &b);
	vg_buf_init(&buf);
	assert_int_equal(pipe(p), 0);
	assert_int_equal(vg_hdr_decode(g->bytes, &h), 0);
	assert_int_equal(tp_send_msg(a, &h, g->bytes + VG_HDR_SIZE, 8, p[1]), 0);
	/* The sender keeps its copy. */
	assert_true(fcntl(p[1], F_GETFD) >= 0);

	assert_int_equal(tp_recv_msg(b, &h, &buf, 64, &fd), 0);
	assert_int_equal(h.kind, VG_MSG_THREAD_OPENED);
	assert_int_equal(buf.len, 8);
	assert_memory_equal(buf.p, g->bytes + VG_HDR_SIZE, 8);
	assert_true(fd >= 0);
	assert_true(fd != p[1]);
	assert_true(is_cloexec(fd));
	/* It is the same pipe. */
	write_all(fd, "x", 1);
	read_all(p[0], &c, 1);
	assert_int_equal(c, 'x');
	close(fd);
	close(p[1]);
	assert_true(pipe_writers_gone(p[0]));
	close(p[0]);

	/* The next message carries none. */
	assert_int_equal(tp_send_msg(a, &h, g->bytes + VG_HDR_SIZE, 8, -1), 0);
	fd = 5;
	assert_int_equal(tp_recv_msg(b, &h, &buf, 64, &fd), 0);
	assert_int_equal(fd, -1);
	vg_buf_fini(&buf);
	tp_chan_destroy(a);
	tp_chan_destroy(b);
}

/* Two descriptors arrive: one is kept, the other closed; with nowhere to
 * put one (fd == NULL), both are closed. */
static void test_extra_fds_closed(void **state)
{
	const struct golden *g = &golden_stats;
	struct tp_chan *a, *b;
	struct vg_buf buf;
	struct vg_hdr h;
	int p1[2], p2[2], fds[2], fd = -1;

	chan_pair(&a, &b);
	vg_buf_init(&buf);
	assert_int_equal(pipe(p1), 0);
	assert_int_equal(pipe(p2), 0);
	fds[0] = p1[1];
	fds[1] = p2[1];
	send_with_fds(a->fd, g->bytes, g->len, fds, 2);
	close(p1[1]);
	close(p2[1]);
	assert_int_equal(tp_recv_msg(b, &h, &buf, 64, &fd), 0);
	assert_int_equal(h.kind, VG_MSG_STATS);
	assert_true(fd >= 0);
	assert_true(is_cloexec(fd));
	/* Exactly one pipe still has a writer: the one we were given. */
	assert_int_equal(pipe_writers_gone(p1[0]) + pipe_writers_gone(p2[0]), 1);
	close(fd);
	assert_true(pipe_writers_gone(p1[0]));
	assert_true(pipe_writers_gone(p2[0]));
	close(p1[0]);
	close(p2[0]);

	assert_int_equal(pipe(p1), 0);
	assert_int_equal(pipe(p2), 0);
	fds[0] = p1[1];
	fds[1] = p2[1];
	send_with_fds(a->fd, g->bytes, g->len, fds, 2);
	close(p1[1]);
	close(p2[1]);
	assert_int_equal(tp_recv_msg(b, &h, &buf, 64, NULL), 0);
	assert_true(pipe_writers_gone(p1[0]));
	assert_true(pipe_writers_gone(p2[0]));
	close(p1[0]);
	close(p2[0]);
	vg_buf_fini(&buf);
	tp_chan_destroy(a);
	tp_chan_destroy(b);
}

/* ---- large messages: partial writes and reads -------------------------- */

#define BIG (8u << 20)

struct big_send {
	struct tp_chan *c;
	uint8_t *data;
	int fd;
	int ret;
};

static void *big_sender(void *arg)
{
	struct big_send *s = arg;
	struct vg_hdr h = { .kind = VG_MSG_CALL, .op = 77, .seq = 5 };
	struct iovec v[3] = {
		{ s->data, 3 },
		{ s->data + 3, 0 },
		{ s->data + 3, BIG - 3 },
	};

	s->ret = tp_send_msgv(s->c, &h, v, 3, s->fd);
	return NULL;
}

static void test_large_message(void **state)
{
	struct big_send s = { .fd = -1 };
	struct tp_chan *b;
	struct vg_buf buf;
	struct vg_hdr h;
	pthread_t t;
	int p[2], fd = -1;
	uint32_t i;

	chan_pair(&s.c, &b);
	vg_buf_init(&buf);
	assert_int_equal(pipe(p), 0);
	s.fd = p[1];
	s.data = malloc(BIG);
	assert_non_null(s.data);
	for (i = 0; i < BIG; i++)
		s.data[i] = (uint8_t)(i * 131 + (i >> 13));
	/* Far more than a socket buffer: the sender blocks part way until
	 * the receiver reads. */
	assert_int_equal(pthread_create(&t, NULL, big_sender, &s), 0);
	assert_int_equal(tp_recv_msg(b, &h, &buf, BIG, &fd), 0);
	pthread_join(t, NULL);
	assert_int_equal(s.ret, 0);
	assert_int_equal(h.len, VG_HDR_SIZE + BIG);
	assert_int_equal(h.op, 77);
	assert_int_equal(buf.len, BIG);
	assert_memory_equal(buf.p, s.data, BIG);
	/* The descriptor went once, with the first bytes. */
	assert_true(fd >= 0);
	close(fd);
	assert_true(s.c->bytes_sent == VG_HDR_SIZE + BIG);
	assert_true(b->bytes_received == VG_HDR_SIZE + BIG);
	close(p[0]);
	close(p[1]);
	free(s.data);
	vg_buf_fini(&buf);
	tp_chan_destroy(s.c);
	tp_chan_destroy(b);
}

/* ---- the peer goes away ------------------------------------------------ */

static void eof_after(size_t n)
{
	const struct golden *g = &golden_hello;
	struct tp_chan *b;
	struct vg_buf buf;
	struct vg_hdr h;
	int fd;

	assert_int_equal(tp_unix_pair(&b, &fd), 0);
	vg_buf_init(&buf);
	write_all(fd, g->bytes, n);
	close(fd);
	assert_int_equal(tp_recv_msg(b, &h, &buf, 4096, NULL), -ECONNRESET);
	vg_buf_fini(&buf);
	tp_chan_destroy(b);
}

static void test_eof(void **state)
{
	eof_after(0);                           /* between messages */
	eof_after(20);                          /* inside the header */
	eof_after(VG_HDR_SIZE);                 /* header, no payload */
	eof_after(golden_hello.len - 1);        /* one byte short */
}

static void test_send_to_closed_peer(void **state)
{
	struct tp_chan *a;
	struct vg_hdr h = { .kind = VG_MSG_STATS };
	sigset_t set;
	int fd;

	/* Whatever our parent left us: SIGPIPE would kill this process. */
	assert_true(signal(SIGPIPE, SIG_DFL) != SIG_ERR);
	sigemptyset(&set);
	sigaddset(&set, SIGPIPE);
	assert_int_equal(sigprocmask(SIG_UNBLOCK, &set, NULL), 0);

	assert_int_equal(tp_unix_pair(&a, &fd), 0);
	close(fd);
	assert_int_equal(tp_send_msg(a, &h, NULL, 0, -1), -EPIPE);
	assert_int_equal(tp_send_msg(a, &h, "abc", 3, -1), -EPIPE);
	tp_chan_destroy(a);
}

/* ---- headers are checked before any payload is read -------------------- */

static void test_recv_bad_headers(void **state)
{
	uint8_t m[VG_HDR_SIZE + 100], rest[100];
	struct tp_chan *b;
	struct vg_buf buf;
	struct vg_hdr h;
	int fd;

	vg_buf_init(&buf);

	/* Unknown kind. */
	assert_int_equal(tp_unix_pair(&b, &fd), 0);
	memcpy(m, golden_stats.bytes, VG_HDR_SIZE);
	m[4] = 0;
	write_all(fd, m, VG_HDR_SIZE);
	assert_int_equal(tp_recv_msg(b, &h, &buf, 4096, NULL), -EPROTO);
	close(fd);
	tp_chan_destroy(b);

	/* Over VG_MSG_MAX. */
	assert_int_equal(tp_unix_pair(&b, &fd), 0);
	memcpy(m, golden_stats.bytes, VG_HDR_SIZE);
	m[0] = 0x01, m[1] = 0x00, m[2] = 0x00, m[3] = 0x10;   /* len VG_MSG_MAX + 1 */
	write_all(fd, m, VG_HDR_SIZE);
	assert_int_equal(tp_recv_msg(b, &h, &buf, VG_MSG_MAX, NULL), -EMSGSIZE);
	close(fd);
	tp_chan_destroy(b);

	/* Over the caller's maximum: refused, and the payload is left unread. */
	assert_int_equal(tp_unix_pair(&b, &fd), 0);
	memcpy(m, golden_call.bytes, VG_HDR_SIZE);
	m[0] = VG_HDR_SIZE + 100;                             /* len 132 */
	memset(m + VG_HDR_SIZE, 0x5a, 100);
	write_all(fd, m, sizeof(m));
	assert_int_equal(tp_recv_msg(b, &h, &buf, 99, NULL), -EMSGSIZE);
	assert_int_equal(recv(b->fd, rest, sizeof(rest), MSG_DONTWAIT), 100);
	assert_int_equal(rest[0], 0x5a);
	close(fd);
	tp_chan_destroy(b);

	vg_buf_fini(&buf);
}

static void test_send_limits(void **state)
{
	static uint8_t byte;
	struct tp_chan *a;
	struct vg_hdr h = { .kind = VG_MSG_CALL };
	struct iovec v[8];
	int fd, i;

	assert_int_equal(tp_unix_pair(&a, &fd), 0);
	for (i = 0; i < 8; i++)
		v[i] = (struct iovec){ &byte, 1 };
	assert_int_equal(tp_send_msgv(a, &h, v, 8, -1), -EINVAL);
	/* Refused from the lengths alone: the bytes are never touched. */
	v[0].iov_len = VG_MSG_MAX - VG_HDR_SIZE + 1;
	assert_int_equal(tp_send_msgv(a, &h, v, 1, -1), -EMSGSIZE);
	assert_int_equal(tp_send_msgv(a, &h, v, 7, -1), -EMSGSIZE);
	assert_true(a->bytes_sent == 0);
	assert_int_equal(tp_send_msgv(a, &h, v + 1, 7, -1), 0);
	assert_true(a->bytes_sent == VG_HDR_SIZE + 7);
	close(fd);
	tp_chan_destroy(a);
}

/* ---- addresses, listen and accept -------------------------------------- */

static void test_connect_addresses(void **state)
{
	char addr[300];
	struct tp_chan *c = NULL;

	/* ivshmem is implemented: a device that is not there. */
	assert_int_equal(tp_connect("ivshmem:0000:00:05.0", &c), -ENOENT);
	assert_int_equal(tp_connect("vgpu:whatever", &c), -EPROTONOSUPPORT);
	assert_int_equal(tp_connect("/run/vgpu/vgpud.sock", &c), -EPROTONOSUPPORT);
	assert_int_equal(tp_connect("tcp:127.0.0.1", &c), -EINVAL);
	assert_int_equal(tp_connect("tcp::5000", &c), -EINVAL);
	assert_int_equal(tp_connect("tcp:127.0.0.1:", &c), -EINVAL);
	assert_int_equal(tp_connect("tcp:[::1:5000", &c), -EINVAL);
	assert_int_equal(tp_connect("vsock:2", &c), -EINVAL);
	assert_int_equal(tp_connect("vsock:x:5", &c), -EINVAL);
	assert_int_equal(tp_connect("vsock:2:5x", &c), -EINVAL);
	assert_int_equal(tp_connect("unix-nofd:", &c), -EINVAL);
	assert_int_equal(tp_connect("unix:", &c), -EINVAL);
	assert_int_equal(tp_connect("unix:@", &c), -EINVAL);
	memset(addr, 'a', sizeof(addr));
	memcpy(addr, "unix:/", 6);
	addr[sizeof(addr) - 1] = '\0';
	assert_int_equal(tp_connect(addr, &c), -ENAMETOOLONG);
	assert_int_equal(tp_connect("unix:/nonexistent-vgpu-dir/s", &c), -ENOENT);
	assert_null(c);
}

/* Connects to address, accepts on lfd, and passes a message each way. */
static void round_trip(const char *address, int lfd)
{
	const struct golden *g = &golden_thread_open;
	struct tp_chan *cl, *sv;
	struct vg_buf buf;
	struct vg_hdr h;

	vg_buf_init(&buf);
	assert_int_equal(tp_connect(address, &cl), 0);
	assert_int_equal(tp_unix_accept(lfd, &sv), 0);
	assert_true(is_cloexec(cl->fd));
	assert_true(is_cloexec(sv->fd));
	assert_int_equal(vg_hdr_decode(g->bytes, &h), 0);
	assert_int_equal(tp_send_msg(cl, &h, g->bytes + VG_HDR_SIZE, 4, -1), 0);
	assert_int_equal(tp_recv_msg(sv, &h, &buf, 64, NULL), 0);
	assert_int_equal(h.kind, VG_MSG_THREAD_OPEN);
	assert_memory_equal(buf.p, g->bytes + VG_HDR_SIZE, 4);
	h.kind = VG_MSG_THREAD_OPENED;
	assert_int_equal(tp_send_msg(sv, &h, NULL, 0, -1), 0);
	assert_int_equal(tp_recv_msg(cl, &h, &buf, 64, NULL), 0);
	assert_int_equal(h.kind, VG_MSG_THREAD_OPENED);
	assert_int_equal(buf.len, 0);
	tp_chan_destroy(cl);
	tp_chan_destroy(sv);
	vg_buf_fini(&buf);
}

static void test_listen_path(void **state)
{
	char dir[] = "/tmp/vgpu-wire-XXXXXX", path[256], addr[300], plain[256];
	struct tp_chan *probe;
	struct stat st;
	int lfd, lfd2 = -1, f;

	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/s", dir);
	snprintf(addr, sizeof(addr), "unix:%s", path);
	snprintf(plain, sizeof(plain), "%s/plain", dir);

	assert_int_equal(tp_unix_listen(path, &lfd), 0);
	assert_true(is_cloexec(lfd));
	round_trip(addr, lfd);

	/* A live daemon's socket is not taken over. */
	assert_int_equal(tp_unix_listen(path, &lfd2), -EADDRINUSE);
	assert_int_equal(tp_unix_accept(lfd, &probe), 0);   /* the liveness probe */
	tp_chan_destroy(probe);
	round_trip(addr, lfd);

	/* Its file left behind after it died is. */
	close(lfd);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(tp_connect(addr, &probe), -ECONNREFUSED);
	assert_int_equal(tp_unix_listen(path, &lfd), 0);
	round_trip(addr, lfd);
	close(lfd);

	/* A file that is no socket is never removed. */
	f = open(plain, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	assert_true(f >= 0);
	write_all(f, "keep", 4);
	close(f);
	assert_int_equal(tp_unix_listen(plain, &lfd2), -EEXIST);
	assert_int_equal(stat(plain, &st), 0);
	assert_int_equal(st.st_size, 4);

	unlink(plain);
	unlink(path);
	rmdir(dir);
}

/* TCP on loopback: a port the kernel picks, messages both ways, no
 * descriptors (refused before anything is sent), Nagle off. */
static void test_tcp(void **state)
{
	struct sockaddr_in sa;
	socklen_t len = sizeof(sa);
	struct tp_chan *cl, *sv;
	char addr[64];
	int lfd, loopback = 0, one = 0, fd;
	socklen_t olen = sizeof(one);
	struct vg_hdr h = { .kind = VG_MSG_STATS };

	assert_int_equal(tp_tcp_listen("127.0.0.1:0", &lfd, &loopback), 0);
	assert_int_equal(loopback, 1);
	assert_int_equal(getsockname(lfd, (struct sockaddr *)&sa, &len), 0);
	snprintf(addr, sizeof(addr), "tcp:127.0.0.1:%d", ntohs(sa.sin_port));
	round_trip(addr, lfd);

	assert_int_equal(tp_connect(addr, &cl), 0);
	assert_int_equal(tp_unix_accept(lfd, &sv), 0);
	assert_int_equal(tp_chan_passes_fds(cl), 0);
	assert_int_equal(getsockopt(cl->fd, IPPROTO_TCP, TCP_NODELAY, &one, &olen), 0);
	assert_int_equal(one, 1);
	fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	assert_int_equal(tp_send_msg(cl, &h, NULL, 0, fd), -ENOTSUP);
	assert_true(cl->bytes_sent == 0);
	close(fd);
	tp_chan_destroy(cl);
	tp_chan_destroy(sv);
	close(lfd);

	/* Nobody listens there any more. */
	assert_int_equal(tp_connect(addr, &cl), -ECONNREFUSED);
	assert_int_equal(tp_tcp_listen("0.0.0.0:0", &lfd, &loopback), 0);
	assert_int_equal(loopback, 0);
	close(lfd);
}

/* unix-nofd: the same socket as unix:, used like vsock. */
static void test_unix_nofd(void **state)
{
	char name[64], addr[80];
	struct tp_chan *c, *u;
	int lfd;

	snprintf(name, sizeof(name), "@vgpu-wire-nofd-%d", (int)getpid());
	snprintf(addr, sizeof(addr), "unix-nofd:%s", name);
	assert_int_equal(tp_unix_listen(name, &lfd), 0);
	round_trip(addr, lfd);
	assert_int_equal(tp_connect(addr, &c), 0);
	assert_int_equal(tp_chan_passes_fds(c), 0);
	snprintf(addr, sizeof(addr), "unix:%s", name);
	assert_int_equal(tp_connect(addr, &u), 0);
	assert_int_equal(tp_chan_passes_fds(u), 1);
	tp_chan_destroy(c);
	tp_chan_destroy(u);
	close(lfd);
}

static void test_listen_abstract(void **state)
{
	char name[64], addr[80];
	int lfd;

	snprintf(name, sizeof(name), "@vgpu-wire-test-%d", (int)getpid());
	snprintf(addr, sizeof(addr), "unix:%s", name);
	assert_int_equal(tp_unix_listen(name, &lfd), 0);
	round_trip(addr, lfd);
	close(lfd);
}

static void test_spin(void **state)
{
	struct tp_chan *a, *b;

	chan_pair(&a, &b);
	assert_int_equal(tp_chan_spin(b, 2000), 0);
	write_all(a->fd, "z", 1);
	assert_int_equal(tp_chan_spin(b, 2000), 1);
	tp_chan_destroy(a);
	tp_chan_destroy(b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_send_matches_golden),
		cmocka_unit_test(test_recv_golden),
		cmocka_unit_test(test_fd_round_trip),
		cmocka_unit_test(test_extra_fds_closed),
		cmocka_unit_test(test_large_message),
		cmocka_unit_test(test_eof),
		cmocka_unit_test(test_send_to_closed_peer),
		cmocka_unit_test(test_recv_bad_headers),
		cmocka_unit_test(test_send_limits),
		cmocka_unit_test(test_connect_addresses),
		cmocka_unit_test(test_tcp),
		cmocka_unit_test(test_unix_nofd),
		cmocka_unit_test(test_listen_path),
		cmocka_unit_test(test_listen_abstract),
		cmocka_unit_test(test_spin),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
