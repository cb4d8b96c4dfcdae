/*
 * it-raw: a hostile protocol client for the integration tests, written
 * with transport/ and the wire codec.  Each mode misbehaves in one way and
 * then checks that its own session, and only that, was ended: the peer
 * closes the connection within VD_IT_EOF_MS.
 *
 *   it-raw MODE ADDRESS
 *
 * Modes: garbage, truncated, oversized, toolong, badmagic, badversion,
 * early-thread, midcall, thread-garbage, thread-badop, hold, eof;
 * against a daemon with a secret: noauth (HELLO without AUTH), badproof
 * (AUTH with a wrong proof): ERROR EACCES, then the end;
 * against a listener without descriptor passing: attach (a channel by
 * ATTACH works once; the same token again, a changed token and an unknown
 * session are refused with ERROR; the session goes on).
 * Exit status 0 when the mode's expectation held, 1 when not, 2 on usage.
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "auth.h"
#include "tp.h"
#include "vgpu/wire.h"

/* How long the far side may take to end a broken session. */
#define VD_IT_EOF_MS 5000

static const char *mode;

static int fail(const char *fmt, const char *arg)
{
	printf("FAIL %s: ", mode);
	printf(fmt, arg);
	printf("\n");
	return 1;
}

static int send_all(int fd, const void *p, size_t n)
{
	const char *c = p;

	while (n > 0) {
		ssize_t w = send(fd, c, n, MSG_NOSIGNAL);

		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return -errno;
		c += w;
		n -= (size_t)w;
	}
	return 0;
}

/* 0 when the peer closes (EOF or reset) within the limit; what it sends before is read and dropped. */
static int expect_eof_on(int fd, const char *what)
{
	struct pollfd pfd = { .fd = fd, .events = POLLIN };
	struct timespec t0, t;
	char buf[4096];

	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (;;) {
		long ms;
		ssize_t n;

		clock_gettime(CLOCK_MONOTONIC, &t);
		ms = (t.tv_sec - t0.tv_sec) * 1000 + (t.tv_nsec - t0.tv_nsec) / 1000000;
		if (ms >= VD_IT_EOF_MS)
			return fail("the %s was still open after 5000 ms", what);
		if (poll(&pfd, 1, (int)(VD_IT_EOF_MS - ms)) <= 0)
			continue;
		n = recv(fd, buf, sizeof(buf), 0);
		if (n == 0 || (n < 0 && errno == ECONNRESET))
			return 0;
		if (n < 0 && errno != EINTR)
			return fail("recv: %s", strerror(errno));
	}
}

static int expect_eof(int fd)
{
	return expect_eof_on(fd, "session");
}

static void hdr_put(struct vg_buf *b, uint32_t len, uint16_t kind, uint32_t op, uint32_t tid)
{
	struct vg_hdr h = { .len = len, .kind = kind, .op = op, .tid = tid, .seq = 1 };
	uint8_t raw[VG_HDR_SIZE];

	vg_hdr_encode(&h, raw);
	vg_put_bytes(b, raw, sizeof(raw));
}

/* A HELLO payload, field by field, so broken ones can be built too. */
static void hello_put(struct vg_buf *b, uint32_t magic, uint16_t version, uint16_t min_version)
{
	vg_put_u32(b, magic);
	vg_put_u16(b, version);
	vg_put_u16(b, min_version);
	vg_put_u64(b, 0);		/* caps */
	vg_put_u32(b, 13000);		/* driver_version */
	vg_put_u32(b, (uint32_t)getpid());
	vg_put_u32(b, 0);		/* nenv */
}

static int send_hello(int fd, uint32_t magic, uint16_t version, uint16_t min_version)
{
	struct vg_buf p, m;
	int ret;

	vg_buf_init(&p);
	vg_buf_init(&m);
	hello_put(&p, magic, version, min_version);
	hdr_put(&m, (uint32_t)(VG_HDR_SIZE + p.len), VG_MSG_HELLO, 0, 0);
	vg_put_bytes(&m, p.p, p.len);
	ret = m.err ? m.err : send_all(fd, m.p, m.len);
	vg_buf_fini(&p);
	vg_buf_fini(&m);
	return ret;
}

/* A proper handshake; 0 when the worker accepted the session. */
static int handshake(struct tp_chan *c)
{
	struct vg_hdr h;
	struct vg_buf b;
	int ret;

	if (send_hello(c->fd, VG_WIRE_MAGIC, VG_WIRE_VERSION, VG_WIRE_VERSION) < 0)
		return fail("%s", "cannot send HELLO");
	vg_buf_init(&b);
	ret = tp_recv_msg(c, &h, &b, 1u << 20, NULL);
	vg_buf_fini(&b);
	if (ret < 0)
		return fail("no WELCOME: %s", strerror(-ret));
	if (h.kind != VG_MSG_WELCOME || h.status != 0)
		return fail("%s", "the session was refused (is the test driver loadable?)");
	return 0;
}

/* THREAD_OPEN; *fd gets the thread channel's socket. */
static int thread_open(struct tp_chan *c, int *fd, uint32_t *tid)
{
	struct vg_hdr h = { .kind = VG_MSG_THREAD_OPEN, .seq = 2 };
	uint8_t payload[4] = { 1, 0, 0, 0 };
	struct vg_buf b;
	struct vg_rd r;
	int ret;

	*fd = -1;
	if (tp_send_msg(c, &h, payload, sizeof(payload), -1) < 0)
		return fail("%s", "cannot send THREAD_OPEN");
	vg_buf_init(&b);
	ret = tp_recv_msg(c, &h, &b, 1u << 20, fd);
	vg_rd_init(&r, b.p, b.len);
	*tid = vg_get_u32(&r);
	vg_buf_fini(&b);
	if (ret < 0 || h.kind != VG_MSG_THREAD_OPENED || h.status != 0 || *fd < 0)
		return fail("%s", "no thread channel");
	return 0;
}

/* The next message is ERROR with code, then the peer closes. */
static int expect_error(struct tp_chan *c, uint32_t code)
{
	struct vg_error e;
	struct vg_hdr h;
	struct vg_buf b;
	struct vg_rd r;
	char text[64];
	int ret;

	vg_buf_init(&b);
	ret = tp_recv_msg(c, &h, &b, 1u << 20, NULL);
	if (ret < 0) {
		vg_buf_fini(&b);
		return fail("no ERROR: %s", strerror(-ret));
	}
	vg_rd_init(&r, b.p, b.len);
	ret = h.kind == VG_MSG_ERROR && vg_error_decode(&r, &e) == 0 && e.code == code;
	snprintf(text, sizeof(text), "kind %u code %u", h.kind, h.kind == VG_MSG_ERROR ? e.code : 0);
	vg_buf_fini(&b);
	if (!ret)
		return fail("expected ERROR with the code, got %s", text);
	return expect_eof(c->fd);
}

/* THREAD_OPEN on a transport without descriptors: the ATTACH offer. */
static int thread_offer(struct tp_chan *c, struct vg_attach *a, struct vg_hdr *h)
{
	struct vg_hdr q = { .kind = VG_MSG_THREAD_OPEN, .seq = 2 };
	uint8_t payload[4] = { 1, 0, 0, 0 };
	struct vg_buf b;
	struct vg_rd r;
	int ret;

	if (tp_send_msg(c, &q, payload, sizeof(payload), -1) < 0)
		return fail("%s", "cannot send THREAD_OPEN");
	vg_buf_init(&b);
	ret = tp_recv_msg(c, h, &b, 1u << 20, NULL);
	vg_rd_init(&r, b.p, b.len);
	if (ret == 0 && h->kind == VG_MSG_ATTACH)
		ret = vg_attach_decode(&r, a);
	vg_buf_fini(&b);
	if (ret < 0 || h->kind != VG_MSG_ATTACH || h->status != 0 || a->tid != h->tid)
		return fail("%s", "no ATTACH offer");
	return 0;
}

/* A new connection sending a as its first message. */
static int attach_send(const char *address, const struct vg_attach *a, struct tp_chan **conn)
{
	struct vg_hdr h = { .kind = VG_MSG_ATTACH, .tid = a->tid, .seq = 2 };
	struct vg_buf b;
	int ret;

	if (tp_connect(address, conn) < 0)
		return fail("%s", "cannot connect again");
	vg_buf_init(&b);
	vg_attach_encode(a, &b);
	ret = tp_send_msg(*conn, &h, b.p, b.len, -1);
	vg_buf_fini(&b);
	if (ret < 0)
		return fail("%s", "cannot send ATTACH");
	return 0;
}

static int mode_attach(struct tp_chan *c, const char *address)
{
	struct tp_chan *ok = NULL, *again = NULL, *bad = NULL, *lost = NULL;
	struct vg_attach a, x;
	struct vg_hdr h;
	struct vg_buf b;
	int ret = 1;

	vg_buf_init(&b);
	if (handshake(c) || thread_offer(c, &a, &h))
		goto out;
	/* The offer, taken once. */
	if (attach_send(address, &a, &ok) || tp_recv_msg(ok, &h, &b, 64, NULL) < 0 ||
	    h.kind != VG_MSG_THREAD_OPENED || h.tid != a.tid) {
		fail("%s", "the offered channel did not attach");
		goto out;
	}
	/* The same token again: used. */
	if (attach_send(address, &a, &again) || expect_error(again, EACCES))
		goto out;
	/* A fresh offer with one token bit changed: unknown. */
	if (thread_offer(c, &x, &h))
		goto out;
	x.token[5] ^= 0x10;
	if (attach_send(address, &x, &bad) || expect_error(bad, EACCES))
		goto out;
	/* A session nobody has. */
	x.session[0] ^= 0xff;
	if (attach_send(address, &x, &lost) || expect_error(lost, ENOENT))
		goto out;
	/* The session and its channel are still there. */
	if (thread_offer(c, &x, &h))
		goto out;
	ret = 0;
out:
	vg_buf_fini(&b);
	tp_chan_destroy(ok);
	tp_chan_destroy(again);
	tp_chan_destroy(bad);
	tp_chan_destroy(lost);
	return ret;
}

static int send_built(int fd, struct vg_buf *m)
{
	int ret = m->err ? m->err : send_all(fd, m->p, m->len);

	vg_buf_fini(m);
	return ret;
}

static int run(struct tp_chan *c, const char *address)
{
	struct vg_buf m;
	uint32_t tid = 0;
	int tfd, i;

	vg_buf_init(&m);
	if (!strcmp(mode, "garbage")) {
		/* Deterministic noise: a failure can be replayed. */
		uint32_t x = 0x12345678u;

		for (i = 0; i < 4096; i++) {
			x = x * 1664525u + 1013904223u;
			vg_put_u8(&m, (uint8_t)(x >> 24));
		}
		send_built(c->fd, &m);	/* the peer may close before all is sent */
		return expect_eof(c->fd);
	}
	if (!strcmp(mode, "truncated")) {
		/* A header that promises 100 payload bytes; 40 come, then the end. */
		hdr_put(&m, VG_HDR_SIZE + 100, VG_MSG_HELLO, 0, 0);
		hello_put(&m, VG_WIRE_MAGIC, VG_WIRE_VERSION, VG_WIRE_VERSION);
		m.len = VG_HDR_SIZE + 24;
		send_built(c->fd, &m);
		shutdown(c->fd, SHUT_WR);
		return expect_eof(c->fd);
	}
	if (!strcmp(mode, "oversized")) {
		/* Over the protocol's own maximum. */
		hdr_put(&m, 0xffffffffu, VG_MSG_HELLO, 0, 0);
		send_built(c->fd, &m);
		return expect_eof(c->fd);
	}
	if (!strcmp(mode, "toolong")) {
		/* Within VG_MSG_MAX but far beyond what a HELLO may be; the
		 * payload never comes, so only a length check ends this. */
		hdr_put(&m, VG_MSG_MAX, VG_MSG_HELLO, 0, 0);
		send_built(c->fd, &m);
		return expect_eof(c->fd);
	}
	if (!strcmp(mode, "badmagic")) {
		send_hello(c->fd, 0xdeadbeefu, VG_WIRE_VERSION, VG_WIRE_VERSION);
		return expect_eof(c->fd);
	}
	if (!strcmp(mode, "badversion")) {
		send_hello(c->fd, VG_WIRE_MAGIC, 99, 99);
		return expect_eof(c->fd);
	}
	if (!strcmp(mode, "early-thread")) {
		/* THREAD_OPEN before any HELLO. */
		hdr_put(&m, VG_HDR_SIZE + 4, VG_MSG_THREAD_OPEN, 0, 0);
		vg_put_u32(&m, 1);
		send_built(c->fd, &m);
		return expect_eof(c->fd);
	}
	if (!strcmp(mode, "hold")) {
		/* Connected, silent, until killed. */
		pause();
		return 0;
	}
	if (!strcmp(mode, "eof"))
		return expect_eof(c->fd);
	if (!strcmp(mode, "noauth")) {
		send_hello(c->fd, VG_WIRE_MAGIC, VG_WIRE_VERSION, VG_WIRE_VERSION);
		return expect_error(c, EACCES);
	}
	if (!strcmp(mode, "badproof")) {
		struct vg_auth a = { .step = 1 };
		struct vg_hdr h = { .kind = VG_MSG_AUTH };

		vg_auth_encode(&a, &m);
		if (tp_send_msg(c, &h, m.p, m.len, -1) < 0 || tp_recv_msg(c, &h, &m, 1024, NULL) < 0 ||
		    h.kind != VG_MSG_AUTH)
			return fail("%s", "no AUTH challenge");
		/* Step 3 with a proof made up without the secret. */
		a.step = 3;
		memset(a.proof, 0x5a, sizeof(a.proof));
		vg_buf_reset(&m);
		vg_auth_encode(&a, &m);
		h.kind = VG_MSG_AUTH;
		h.flags = 0;
		if (tp_send_msg(c, &h, m.p, m.len, -1) < 0)
			return fail("%s", "cannot send AUTH");
		vg_buf_fini(&m);
		return expect_error(c, EACCES);
	}
	if (!strcmp(mode, "attach"))
		return mode_attach(c, address);

	/* The rest need a session. */
	if (handshake(c) || thread_open(c, &tfd, &tid))
		return 1;
	if (!strcmp(mode, "midcall")) {
		/* Half of a CALL, then the process dies as if killed. */
		hdr_put(&m, VG_HDR_SIZE + 4096, VG_MSG_CALL, VG_OP_BASE + 1, tid);
		vg_put_space(&m, 100);
		send_built(tfd, &m);
		printf("OK %s: died mid-call\n", mode);
		fflush(stdout);
		_exit(0);
	}
	if (!strcmp(mode, "thread-garbage")) {
		/*
		 * A malformed header leaves the stream out of sync (tp.h): the
		 * thread channel closes, and with it the whole session.
		 */
		for (i = 0; i < 64; i++)
			vg_put_u32(&m, 0xfefefefeu);
		send_built(tfd, &m);
		return expect_eof_on(tfd, "thread channel") || expect_eof_on(c->fd, "control channel");
	}
	if (!strcmp(mode, "thread-badop")) {
		/* Operation 0 does not exist; neither does anything past VG_OP_MAX. */
		hdr_put(&m, VG_HDR_SIZE + 8, VG_MSG_CALL, 0, tid);
		vg_put_u64(&m, 0);
		hdr_put(&m, VG_HDR_SIZE, VG_MSG_CALL, VG_OP_MAX + 7, tid);
		send_built(tfd, &m);
		return expect_eof(c->fd);
	}
	vg_buf_fini(&m);
	fprintf(stderr, "it-raw: unknown mode %s\n", mode);
	return 2;
}

int main(int argc, char **argv)
{
	struct tp_chan *c;
	int ret;

	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc != 3) {
		fprintf(stderr, "usage: it-raw MODE ADDRESS\n");
		return 2;
	}
	mode = argv[1];
	ret = tp_connect(argv[2], &c);
	if (ret < 0)
		return fail("connect: %s", strerror(-ret));
	ret = run(c, argv[2]);
	if (ret == 0)
		printf("OK %s\n", mode);
	tp_chan_destroy(c);
	return ret;
}
