/*
 * Shared-memory channels: a byte pipe in each direction, in one sealed
 * memfd shared by the guest thread and its host thread.  The framing on top
 * is the same as on sockets; the socket stays beside the rings to carry file
 * descriptors and to tell when the peer is gone.
 *
 * Each ring is single-producer, single-consumer.  `head` counts bytes
 * written, `tail` bytes read; both only grow.  Wake-ups: a waiter spins for
 * its channel's spin time (tp_ring_set_spin; a futex wake-up of a sleeping
 * thread costs tens of microseconds, more in a VM), then yields a little,
 * then announces itself in its `waiting` word and sleeps on it with a
 * futex; a publisher that sees the word set clears it and wakes.  The
 * store of `waiting` and the reload of the index on one side, and the store
 * of the index and the load of `waiting` on the other, are sequentially
 * consistent, so one of the two always sees the other: no lost wake-up.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/futex.h>
#include <poll.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "tp.h"

#define RING_SPIN      2000	/* polls of the index before the clock is read */
#define RING_POLLS     64	/* polls between two readings of the clock */
#define RING_POLITE_NS 50000	/* a long spin yields the CPU once this often */
#define RING_YIELD     50	/* sched_yield()s before sleeping */
#define RING_NAP_MS    100	/* a sleep's length: then the peer is checked */

struct ring {
	uint64_t head;			/* bytes written; producer stores, consumer loads */
	uint8_t pad0[56];
	uint64_t tail;			/* bytes read; consumer stores, producer loads */
	uint8_t pad1[56];
	uint32_t data_waiting;		/* the consumer sleeps on it */
	uint8_t pad2[60];
	uint32_t space_waiting;		/* the producer sleeps on it */
	uint8_t pad3[60];
};

#define RING_HDR 256u

struct tp_ring_chan {
	struct tp_chan c;		/* c.fd: the socket beside the rings */
	uint8_t *map;
	size_t map_len;
	struct ring *tx, *rx;
	uint8_t *tx_data, *rx_data;
	uint32_t size;			/* bytes of data per ring, a power of two */
	uint32_t spin_us;		/* spin this long before yielding */
	uint64_t tx_tail;		/* the peer's tail on tx when last read */
	int (*peer_alive)(int fd);
};

_Static_assert(sizeof(struct ring) <= RING_HDR, "ring header fits its slot");

/* Tests set this to widen the race windows of the wake-up handshake. */
void (*tp_ring_delay_hook)(void);

static long futex(uint32_t *w, int op, uint32_t val, const struct timespec *ts)
{
	return syscall(SYS_futex, w, op, val, ts, NULL, 0);
}

/* The socket beside the rings: closed by the peer means the peer is gone. */
static int socket_peer_alive(int fd)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };
	char b;

	if (poll(&p, 1, 0) <= 0)
		return 1;
	if (p.revents & (POLLHUP | POLLERR))
		return 0;
	/* Readable: data (a descriptor carrier) is fine, EOF is not. */
	return recv(fd, &b, 1, MSG_PEEK | MSG_DONTWAIT) != 0;
}

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#elif defined(__aarch64__)
	__asm__ volatile("yield" ::: "memory");
#endif
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/*
 * The spin phase: 1 as soon as *idx differs from seen, 0 once the channel's
 * spin time is over.  A long spin gives the CPU away now and then, so a
 * peer (or anything else) waiting for this CPU is not starved.
 */
static int ring_spin(struct tp_ring_chan *r, uint64_t *idx, uint64_t seen)
{
	uint64_t start, now, polite;
	int i;

	for (i = 0; i < RING_SPIN; i++)
		if (__atomic_load_n(idx, __ATOMIC_ACQUIRE) != seen)
			return 1;
	if (!r->spin_us)
		return 0;
	start = now_ns();
	polite = start + RING_POLITE_NS;
	for (;;) {
		for (i = 0; i < RING_POLLS; i++) {
			if (__atomic_load_n(idx, __ATOMIC_ACQUIRE) != seen)
				return 1;
			cpu_relax();
		}
		now = now_ns();
		if (now - start >= (uint64_t)r->spin_us * 1000)
			return 0;
		if (now >= polite) {
			sched_yield();
			polite = now + RING_POLITE_NS;
		}
	}
}

/*
 * Waits until *idx differs from seen (the peer moved), or the peer is gone.
 * waiting is this side's announcement word.
 */
static int ring_wait(struct tp_ring_chan *r, uint64_t *idx, uint64_t seen, uint32_t *waiting)
{
	struct timespec nap = { 0, RING_NAP_MS * 1000000L };
	int i;

	if (ring_spin(r, idx, seen))
		return 0;
	for (i = 0; i < RING_YIELD; i++) {
		sched_yield();
		if (__atomic_load_n(idx, __ATOMIC_ACQUIRE) != seen)
			return 0;
	}
	for (;;) {
		__atomic_store_n(waiting, 1, __ATOMIC_SEQ_CST);
		if (tp_ring_delay_hook)
			tp_ring_delay_hook();
		if (__atomic_load_n(idx, __ATOMIC_SEQ_CST) != seen) {
			__atomic_store_n(waiting, 0, __ATOMIC_RELAXED);
			return 0;
		}
		futex(waiting, FUTEX_WAIT, 1, &nap);
		if (__atomic_load_n(idx, __ATOMIC_ACQUIRE) != seen) {
			__atomic_store_n(waiting, 0, __ATOMIC_RELAXED);
			return 0;
		}
		if (!r->peer_alive(r->c.fd))
			return -ECONNRESET;
	}
}

static void ring_wake(uint32_t *waiting)
{
	if (tp_ring_delay_hook)
		tp_ring_delay_hook();
	if (__atomic_load_n(waiting, __ATOMIC_SEQ_CST)) {
		__atomic_store_n(waiting, 0, __ATOMIC_RELAXED);
		futex(waiting, FUTEX_WAKE, 1, NULL);
	}
}

/* Makes the bytes up to head visible to the peer, and wakes it if it sleeps. */
static void ring_publish(struct tp_ring_chan *r, uint64_t head)
{
	struct ring *t = r->tx;

	if (__atomic_load_n(&t->head, __ATOMIC_RELAXED) == head)
		return;
	__atomic_store_n(&t->head, head, __ATOMIC_SEQ_CST);
	ring_wake(&t->data_waiting);
}

/*
 * Copies n bytes into the ring without publishing them (head is this side's
 * private count until published).  The peer's tail is read again only when
 * the space last seen is not enough: each reading moves its cache line.
 */
static int ring_write(struct tp_ring_chan *r, uint64_t *head, const uint8_t *p, size_t n)
{
	struct ring *t = r->tx;

	while (n) {
		size_t space = r->size - (size_t)(*head - r->tx_tail), off, c, first;
		int ret;

		if (!space) {
			uint64_t tail = __atomic_load_n(&t->tail, __ATOMIC_ACQUIRE);

			if (tail == r->tx_tail) {
				/* Full: what is written so far goes out, then wait for room. */
				ring_publish(r, *head);
				ret = ring_wait(r, &t->tail, tail, &t->space_waiting);
				if (ret < 0)
					return ret;
				tail = __atomic_load_n(&t->tail, __ATOMIC_ACQUIRE);
			}
			if (*head - tail > r->size)
				return -EPROTO;		/* the peer broke the ring */
			r->tx_tail = tail;
			continue;
		}
		c = n < space ? n : space;
		off = (size_t)(*head & (r->size - 1));
		first = r->size - off < c ? r->size - off : c;
		memcpy(r->tx_data + off, p, first);
		memcpy(r->tx_data, p + first, c - first);
		*head += c;
		p += c;
		n -= c;
	}
	return 0;
}

static int ring_send(struct tp_chan *c, const struct iovec *iov, int iovcnt, int fd)
{
	struct tp_ring_chan *r = (struct tp_ring_chan *)c;
	uint64_t head;
	int i, ret;

	/* A descriptor travels on the socket, announced by VG_F_FD in the header. */
	if (fd >= 0) {
		uint8_t one = 0;
		struct iovec v = { &one, 1 };
		union {
			struct cmsghdr h;
			char buf[CMSG_SPACE(sizeof(int))];
		} cm;
		struct msghdr m;

		memset(&m, 0, sizeof(m));
		memset(&cm, 0, sizeof(cm));
		m.msg_iov = &v;
		m.msg_iovlen = 1;
		m.msg_control = cm.buf;
		m.msg_controllen = sizeof(cm.buf);
		cm.h.cmsg_level = SOL_SOCKET;
		cm.h.cmsg_type = SCM_RIGHTS;
		cm.h.cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(&cm.h), &fd, sizeof(int));
		while (sendmsg(c->fd, &m, MSG_NOSIGNAL) < 0)
			if (errno != EINTR)
				return -errno;
	}
	/* One publication for the whole message (the header and its payload). */
	head = __atomic_load_n(&r->tx->head, __ATOMIC_RELAXED);
	for (i = 0; i < iovcnt; i++) {
		ret = ring_write(r, &head, iov[i].iov_base, iov[i].iov_len);
		if (ret < 0)
			return ret;
		c->bytes_sent += iov[i].iov_len;
	}
	ring_publish(r, head);
	return 0;
}

static int ring_recv(struct tp_chan *c, void *p, size_t n, int *fd)
{
	struct tp_ring_chan *r = (struct tp_ring_chan *)c;
	struct ring *t = r->rx;
	uint64_t tail = __atomic_load_n(&t->tail, __ATOMIC_RELAXED);
	uint8_t *dst = p;

	(void)fd;	/* descriptors come from tp_ring_take_fd() */
	while (n) {
		uint64_t head = __atomic_load_n(&t->head, __ATOMIC_ACQUIRE);
		size_t avail = (size_t)(head - tail), off, k, first;
		int ret;

		if (avail > r->size)
			return -EPROTO;		/* the peer broke the ring */
		if (!avail) {
			ret = ring_wait(r, &t->head, head, &t->data_waiting);
			if (ret < 0)
				return ret;
			continue;
		}
		k = n < avail ? n : avail;
		off = (size_t)(tail & (r->size - 1));
		first = r->size - off < k ? r->size - off : k;
		memcpy(dst, r->rx_data + off, first);
		memcpy(dst + first, r->rx_data, k - first);
		tail += k;
		dst += k;
		n -= k;
		c->bytes_received += k;
		__atomic_store_n(&t->tail, tail, __ATOMIC_SEQ_CST);
		ring_wake(&t->space_waiting);
	}
	return 0;
}

static void ring_destroy(struct tp_chan *c)
{
	struct tp_ring_chan *r = (struct tp_ring_chan *)c;

	munmap(r->map, r->map_len);
	if (c->fd >= 0)
		close(c->fd);
	free(r);
}

static const struct tp_chan_ops ring_ops = {
	.name = "shm",
	.send = ring_send,
	.recv = ring_recv,
	.destroy = ring_destroy,
};

size_t tp_ring_map_size(uint32_t ring_bytes)
{
	return 2 * ((size_t)RING_HDR + ring_bytes);
}

int tp_ring_create_fd(uint32_t ring_bytes)
{
	int fd;

	if (ring_bytes < 4096 || (ring_bytes & (ring_bytes - 1)) || ring_bytes > TP_RING_BYTES_MAX)
		return -EINVAL;
	fd = memfd_create("vgpu-ring", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (fd < 0)
		return -errno;
	if (ftruncate(fd, (off_t)tp_ring_map_size(ring_bytes)) < 0 ||
	    fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) < 0) {
		int ret = -errno;

		close(fd);
		return ret;
	}
	return fd;
}

int tp_ring_wrap(struct tp_chan *sock, int memfd, uint32_t ring_bytes, int creator, struct tp_chan **out)
{
	size_t len = tp_ring_map_size(ring_bytes);
	struct tp_ring_chan *r;
	struct stat st;
	uint8_t *a, *b;

	if (ring_bytes < 4096 || (ring_bytes & (ring_bytes - 1)) || ring_bytes > TP_RING_BYTES_MAX)
		return -EINVAL;
	/* The memory must be exactly ours to trust its size: sealed, right length. */
	if (fstat(memfd, &st) < 0 || (size_t)st.st_size != len ||
	    (fcntl(memfd, F_GET_SEALS) & (F_SEAL_SHRINK | F_SEAL_GROW)) != (F_SEAL_SHRINK | F_SEAL_GROW))
		return -EINVAL;
	r = calloc(1, sizeof(*r));
	if (!r)
		return -ENOMEM;
	r->map = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, memfd, 0);
	if (r->map == MAP_FAILED) {
		int ret = -errno;

		free(r);
		return ret;
	}
	r->map_len = len;
	r->size = ring_bytes;
	a = r->map;
	b = r->map + RING_HDR + ring_bytes;
	/* The creator (the guest) sends on ring a and receives on ring b. */
	r->tx = (struct ring *)(creator ? a : b);
	r->rx = (struct ring *)(creator ? b : a);
	r->tx_data = (creator ? a : b) + RING_HDR;
	r->rx_data = (creator ? b : a) + RING_HDR;
	r->peer_alive = socket_peer_alive;
	r->c.ops = &ring_ops;
	r->c.fd = sock->fd;
	/* The socket now belongs to the ring channel. */
	sock->fd = -1;
	tp_chan_destroy(sock);
	*out = &r->c;
	return 0;
}

int tp_chan_is_ring(const struct tp_chan *c)
{
	return c->ops == &ring_ops;
}

unsigned int tp_ring_spin_setting(const char *var, unsigned int many_cpus_us)
{
	const char *e = getenv(var);
	long us;

	if (e && *e)
		us = atol(e);
	else
		us = sysconf(_SC_NPROCESSORS_ONLN) >= 4 ? (long)many_cpus_us : 50;
	return us < 0 || us > 100000 ? 50 : (unsigned int)us;
}

void tp_ring_set_spin(struct tp_chan *c, unsigned int usec)
{
	((struct tp_ring_chan *)c)->spin_us = usec > TP_RING_SPIN_MAX_US ? TP_RING_SPIN_MAX_US : usec;
}

int tp_ring_peek(struct tp_chan *c, void *p, size_t n)
{
	struct tp_ring_chan *r = (struct tp_ring_chan *)c;
	struct ring *t = r->rx;
	uint64_t tail = __atomic_load_n(&t->tail, __ATOMIC_RELAXED);
	uint64_t head = __atomic_load_n(&t->head, __ATOMIC_ACQUIRE);
	size_t off, first;

	if (head - tail < n || head - tail > r->size)
		return 0;
	off = (size_t)(tail & (r->size - 1));
	first = r->size - off < n ? r->size - off : n;
	memcpy(p, r->rx_data + off, first);
	memcpy((uint8_t *)p + first, r->rx_data, n - first);
	return 1;
}

int tp_ring_readable(struct tp_chan *c)
{
	struct tp_ring_chan *r = (struct tp_ring_chan *)c;

	return __atomic_load_n(&r->rx->head, __ATOMIC_ACQUIRE) != __atomic_load_n(&r->rx->tail, __ATOMIC_RELAXED);
}

int tp_ring_take_fd(struct tp_chan *c, int *fd)
{
	char one;
	struct iovec v = { &one, 1 };
	union {
		struct cmsghdr h;
		char buf[CMSG_SPACE(sizeof(int) * 4)];
	} cm;
	struct msghdr m;
	struct cmsghdr *h;
	ssize_t n;

	*fd = -1;
	memset(&m, 0, sizeof(m));
	m.msg_iov = &v;
	m.msg_iovlen = 1;
	m.msg_control = cm.buf;
	m.msg_controllen = sizeof(cm.buf);
	do
		n = recvmsg(c->fd, &m, MSG_CMSG_CLOEXEC);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return -errno;
	if (n == 0)
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
			if (*fd < 0)
				*fd = fds[k];
			else
				close(fds[k]);
		}
	}
	return *fd >= 0 ? 0 : -EBADMSG;
}

int tp_ring_wait_readable(struct tp_chan *c)
{
	struct tp_ring_chan *r = (struct tp_ring_chan *)c;
	uint64_t tail = __atomic_load_n(&r->rx->tail, __ATOMIC_RELAXED);

	if (__atomic_load_n(&r->rx->head, __ATOMIC_ACQUIRE) != tail)
		return 0;
	return ring_wait(r, &r->rx->head, tail, &r->rx->data_waiting);
}
