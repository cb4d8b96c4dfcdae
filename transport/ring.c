/*
 * Shared-memory channels: a byte pipe in each direction, in one sealed
 * memfd shared by the guest thread and its host thread.  The framing on top
 * is the same as on sockets; the socket stays beside the rings to carry file
 * descriptors and to tell when the peer is gone.
 *
 * Each ring is single-producer, single-consumer, and carries records: a
 * send is one record (a long one several), written at a 64-byte aligned
 * position p as
 *     u64 word    ((p / 64) ^ key) << 24 | len   (key: the ring's random
 *                 word, set at creation; len: data bytes, 1..rec_max)
 *     len bytes   (they may wrap around the ring's end)
 * and the next record starts at the next 64-byte boundary.  The word is
 * stored last, with release order: the consumer polls the word where the
 * next record will start, so a small message costs it one cache line, and
 * no index word travels between the cores per message.  What a previous lap
 * left there is an older record's word or data; only the word this
 * position's stamp gives is taken as the record (the random key makes data
 * that looks like one a 2^-40 chance).  `tail` counts bytes consumed,
 * record by record, and is read by the producer only when the space it last
 * saw runs out.
 *
 * Wake-ups: a waiter spins for its channel's spin time (tp_ring_set_spin; a
 * futex wake-up of a sleeping thread costs tens of microseconds, more in a
 * VM), then yields a little, then announces itself in its `waiting` word and
 * sleeps on it with a futex; a publisher that sees the word set clears it
 * and wakes.  Between the store of `waiting` and the reload of the watched
 * word on one side, and the store of that word and the load of `waiting` on
 * the other, there is a full barrier, so one of the two always sees the
 * other: no lost wake-up.
 *
 * A full barrier on the publishing side is the expensive one: it waits
 * until the message's bytes have reached the peer's core, once per message.
 * So the barrier is made asymmetric where the kernel allows it: both
 * processes register for membarrier(2)'s global expedited command, each says
 * so in the ring header, and then a sleeper (rare: it spun first) issues
 * that command, which puts a full barrier into every running thread of both
 * processes, and the publisher needs only a compiler barrier.  A side whose
 * peer has not said so, or that could not register, keeps the full barrier
 * (VGPU_RING_MEMBARRIER=0 forces that).
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/futex.h>
#include <linux/membarrier.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "tp.h"

#define RING_SPIN      512	/* polls of the index before the clock is read */
#define RING_POLLS     256	/* polls between two readings of the clock */
#define RING_POLITE_NS 50000	/* a long spin yields the CPU once this often */
#define RING_YIELD     50	/* sched_yield()s before sleeping */
#define RING_NAP_MS    100	/* a sleep's length: then the peer is checked */

/*
 * The *_membarrier words are written once, when that side's process has
 * registered (membarrier_check), and say that side
 * issues the heavy barrier before it sleeps; each sits in the line its peer
 * reads to wake it anyway.
 */
struct ring {
	uint64_t key;			/* mixed into record stamps; set at creation */
	uint8_t pad0[56];
	uint64_t tail;			/* bytes read; consumer stores, producer loads */
	uint8_t pad1[56];
	uint32_t data_waiting;		/* the consumer sleeps on it */
	uint32_t consumer_membarrier;
	uint8_t pad2[56];
	uint32_t space_waiting;		/* the producer sleeps on it */
	uint32_t producer_membarrier;
	uint8_t pad3[56];
};

#define RING_HDR 256u
#define REC_ALIGN 64u			/* records start on cache lines */
#define REC_HDR 8u			/* the record's word: stamp and length */
#define REC_LEN_BITS 24
#define REC_LEN_MASK ((1u << REC_LEN_BITS) - 1)

struct tp_ring_chan {
	struct tp_chan c;		/* c.fd: the socket beside the rings */
	uint8_t *map;
	size_t map_len;
	struct ring *tx, *rx;
	uint8_t *tx_data, *rx_data;
	uint32_t size;			/* bytes of data per ring, a power of two */
	uint32_t spin_us;		/* spin this long before yielding */
	uint32_t rec_max;		/* the most data bytes in one record */
	uint64_t tx_key, rx_key;
	uint64_t tx_head;		/* where this side's next record on tx goes */
	uint64_t tx_tail;		/* the peer's tail on tx when last read */
	/*
	 * The record being read on rx: it starts at rx_tail (which is also
	 * the shared tail), has rx_len bytes (0: none taken yet), rx_off read.
	 */
	uint64_t rx_tail;
	uint32_t rx_len, rx_off;
	/*
	 * Per direction, so the sending and the receiving thread each touch
	 * only their own: 1 when this side's sleeps on that ring issue the
	 * heavy barrier (and the header says so), -1 never
	 * (VGPU_RING_MEMBARRIER=0, or not to be had), 0 not yet decided.
	 */
	int tx_mb, rx_mb;
	int tx_light, rx_light;		/* the peer said it does too: publish with a light barrier */
	int (*peer_alive)(int fd);
};

_Static_assert(sizeof(struct ring) <= RING_HDR, "ring header fits its slot");

/* Tests set this to widen the race windows of the wake-up handshake. */
void (*tp_ring_delay_hook)(void);
unsigned long tp_ring_missed_wakeups;

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

/* ---- barriers -------------------------------------------------------------- */

/*
 * Registration can take a grace period of the kernel's (tens of ms on some
 * kernels once the process has threads), so it runs in a thread of its
 * own, started by the first ring; channels use the barrier once it is done.
 */
static int membarrier_state;		/* 0: registering (or not asked), 1: done, -1: unusable */
static pthread_once_t membarrier_once = PTHREAD_ONCE_INIT;
static pthread_mutex_t membarrier_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t membarrier_done = PTHREAD_COND_INITIALIZER;

static void *membarrier_register(void *arg)
{
	long cmds = syscall(SYS_membarrier, MEMBARRIER_CMD_QUERY, 0, 0);
	int ok = cmds > 0 && (cmds & MEMBARRIER_CMD_GLOBAL_EXPEDITED) &&
		 syscall(SYS_membarrier, MEMBARRIER_CMD_REGISTER_GLOBAL_EXPEDITED, 0, 0) == 0;

	(void)arg;
	pthread_mutex_lock(&membarrier_lock);
	__atomic_store_n(&membarrier_state, ok ? 1 : -1, __ATOMIC_RELEASE);
	pthread_cond_broadcast(&membarrier_done);
	pthread_mutex_unlock(&membarrier_lock);
	return NULL;
}

static void membarrier_start(void)
{
	pthread_attr_t a;
	pthread_t th;
	sigset_t all, old;
	int ret;

	pthread_attr_init(&a);
	pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
	/* The helper takes none of the host program's signals. */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	ret = pthread_create(&th, &a, membarrier_register, NULL);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	pthread_attr_destroy(&a);
	if (ret != 0)
		__atomic_store_n(&membarrier_state, -1, __ATOMIC_RELEASE);
}

int tp_ring_membarrier_ready(int wait)
{
	int st;

	pthread_once(&membarrier_once, membarrier_start);
	st = __atomic_load_n(&membarrier_state, __ATOMIC_ACQUIRE);
	if (st == 0 && wait) {
		pthread_mutex_lock(&membarrier_lock);
		while ((st = __atomic_load_n(&membarrier_state, __ATOMIC_ACQUIRE)) == 0)
			pthread_cond_wait(&membarrier_done, &membarrier_lock);
		pthread_mutex_unlock(&membarrier_lock);
	}
	return st > 0;
}

/*
 * Once the process is registered, this side's sleeps on one ring (*mb:
 * tx_mb or rx_mb) issue the heavy barrier, and the ring's header says so to
 * the peer (*flag: producer_membarrier of tx, consumer_membarrier of rx).
 * Called by the thread that sends (or receives) between its sleeps: a sleep
 * never runs half under the old promise and half under the new.
 */
static inline void membarrier_check(int *mb, uint32_t *flag)
{
	int st;

	if (*mb)
		return;
	st = __atomic_load_n(&membarrier_state, __ATOMIC_ACQUIRE);
	if (st == 0)
		return;
	*mb = st;
	if (st > 0)
		__atomic_store_n(flag, 1, __ATOMIC_RELEASE);
}

/*
 * The sleeper's side: a full barrier here, and in every running thread of
 * the registered processes (the publisher's included) when membarrier is in
 * use.  A failure falls back to nothing worse than the nap's recheck.
 */
static void heavy_barrier(int mb)
{
	if (mb > 0)
		syscall(SYS_membarrier, MEMBARRIER_CMD_GLOBAL_EXPEDITED, 0, 0);
}

/*
 * The publisher's store of the word its peer watches: sequentially
 * consistent (with the load of `waiting` in ring_wake), or, light, a plain
 * release store and a compiler barrier.
 */
static inline void publish_word(uint64_t *w, uint64_t v, int light)
{
	if (light) {
		__atomic_store_n(w, v, __ATOMIC_RELEASE);
		__atomic_signal_fence(__ATOMIC_SEQ_CST);
	} else {
		__atomic_store_n(w, v, __ATOMIC_SEQ_CST);
	}
}

/*
 * The spin phase: 1 as soon as *idx differs from seen, 0 once the channel's
 * spin time is over.  Every poll pauses: a spinning thread may share a core
 * with its peer (hyperthreads), and an unpaused loop takes the peer's
 * cycles.  The clock is read rarely: in some VMs reading it costs as much as
 * a round trip, and a message that arrives meanwhile waits for it.  A long
 * spin gives the CPU away now and then, so a peer (or anything else)
 * waiting for this CPU is not starved.
 */
static int ring_spin(struct tp_ring_chan *r, uint64_t *idx, uint64_t seen)
{
	uint64_t start, now, polite;
	int i;

	for (i = 0; i < RING_SPIN; i++) {
		if (__atomic_load_n(idx, __ATOMIC_ACQUIRE) != seen)
			return 1;
		tp_cpu_relax();
	}
	if (!r->spin_us)
		return 0;
	start = tp_mono_ns();
	polite = start + RING_POLITE_NS;
	for (;;) {
		for (i = 0; i < RING_POLLS; i++) {
			if (__atomic_load_n(idx, __ATOMIC_ACQUIRE) != seen)
				return 1;
			tp_cpu_relax();
		}
		now = tp_mono_ns();
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
static int ring_wait(struct tp_ring_chan *r, uint64_t *idx, uint64_t seen, uint32_t *waiting, int mb)
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
		heavy_barrier(mb);
		if (__atomic_load_n(idx, __ATOMIC_SEQ_CST) != seen) {
			__atomic_store_n(waiting, 0, __ATOMIC_RELAXED);
			return 0;
		}
		if (futex(waiting, FUTEX_WAIT, 1, &nap) < 0 && errno == ETIMEDOUT &&
		    __atomic_load_n(idx, __ATOMIC_ACQUIRE) != seen)
			__atomic_add_fetch(&tp_ring_missed_wakeups, 1, __ATOMIC_RELAXED);
		if (__atomic_load_n(idx, __ATOMIC_ACQUIRE) != seen) {
			__atomic_store_n(waiting, 0, __ATOMIC_RELAXED);
			return 0;
		}
		if (!r->peer_alive(r->c.fd))
			return -ECONNRESET;
	}
}

/*
 * After this side published a word the peer may sleep on (publish_word):
 * a wake if the peer announced a sleep.
 */
static void ring_wake(uint32_t *waiting, int light)
{
	if (tp_ring_delay_hook)
		tp_ring_delay_hook();
	if (__atomic_load_n(waiting, light ? __ATOMIC_RELAXED : __ATOMIC_SEQ_CST)) {
		__atomic_store_n(waiting, 0, __ATOMIC_RELAXED);
		futex(waiting, FUTEX_WAKE, 1, NULL);
	}
}

static inline uint64_t rec_span(uint32_t len)
{
	return ((uint64_t)REC_HDR + len + REC_ALIGN - 1) & ~(uint64_t)(REC_ALIGN - 1);
}

static inline uint64_t *rec_word(uint8_t *data, uint32_t size, uint64_t pos)
{
	return (uint64_t *)(data + (pos & (size - 1)));
}

static inline uint64_t rec_stamp(uint64_t pos, uint64_t key)
{
	return ((pos / REC_ALIGN) ^ key) << REC_LEN_BITS;
}

/* Copies n bytes into the ring's data at position pos, wrapping. */
static void ring_put(struct tp_ring_chan *r, uint64_t pos, const uint8_t *p, size_t n)
{
	size_t off = (size_t)(pos & (r->size - 1)), first = r->size - off < n ? r->size - off : n;

	memcpy(r->tx_data + off, p, first);
	memcpy(r->tx_data, p + first, n - first);
}

static void ring_get(const struct tp_ring_chan *r, uint64_t pos, uint8_t *p, size_t n)
{
	size_t off = (size_t)(pos & (r->size - 1)), first = r->size - off < n ? r->size - off : n;

	memcpy(p, r->rx_data + off, first);
	memcpy(p + first, r->rx_data, n - first);
}

/*
 * Waits until span bytes are free on tx.  The peer's tail is read again
 * only when the space last seen is not enough: each reading moves its line.
 */
static int ring_room(struct tp_ring_chan *r, uint64_t span)
{
	struct ring *t = r->tx;

	while (r->size - (r->tx_head - r->tx_tail) < span) {
		uint64_t tail = __atomic_load_n(&t->tail, __ATOMIC_ACQUIRE);

		if (tail == r->tx_tail) {
			int ret = ring_wait(r, &t->tail, tail, &t->space_waiting, r->tx_mb);

			if (ret < 0)
				return ret;
			tail = __atomic_load_n(&t->tail, __ATOMIC_ACQUIRE);
		}
		if (r->tx_head - tail > r->size || (tail & (REC_ALIGN - 1)))
			return -EPROTO;		/* the peer broke the ring */
		r->tx_tail = tail;
	}
	return 0;
}

static int ring_send(struct tp_chan *c, const struct iovec *iov, int iovcnt, int fd)
{
	struct tp_ring_chan *r = (struct tp_ring_chan *)c;
	struct ring *t = r->tx;
	size_t total = 0, done = 0, at = 0;
	int i = 0, ret;

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
	membarrier_check(&r->tx_mb, &t->producer_membarrier);
	for (i = 0; i < iovcnt; i++)
		total += iov[i].iov_len;
	/* One record for the message; a long one is cut into several. */
	i = 0;
	while (done < total) {
		uint32_t len = total - done < r->rec_max ? (uint32_t)(total - done) : r->rec_max;
		uint64_t pos = r->tx_head, w = pos + REC_HDR;
		size_t left = len;

		ret = ring_room(r, rec_span(len));
		if (ret < 0)
			return ret;
		while (left) {
			size_t k = iov[i].iov_len - at < left ? iov[i].iov_len - at : left;

			ring_put(r, w, (const uint8_t *)iov[i].iov_base + at, k);
			w += k;
			at += k;
			left -= k;
			if (at == iov[i].iov_len) {
				i++;
				at = 0;
			}
		}
		r->tx_head = pos + rec_span(len);
		done += len;
		if (!r->tx_light && r->tx_mb > 0)
			r->tx_light = __atomic_load_n(&t->consumer_membarrier, __ATOMIC_RELAXED) == 1;
		publish_word(rec_word(r->tx_data, r->size, pos), rec_stamp(pos, r->tx_key) | len, r->tx_light);
		ring_wake(&t->data_waiting, r->tx_light);
	}
	c->bytes_sent += total;
	return 0;
}

/*
 * Whether the record at rx_tail is there: 1 with *len, 0 not yet (*seen:
 * the word found where its stamp goes), or -EPROTO.  Changes nothing, so a
 * thread that only peeks may call it.
 */
static int rec_ready(const struct tp_ring_chan *r, uint64_t *seen, uint32_t *len)
{
	uint64_t v = __atomic_load_n(rec_word(r->rx_data, r->size, r->rx_tail), __ATOMIC_ACQUIRE);

	if ((v & ~(uint64_t)REC_LEN_MASK) != rec_stamp(r->rx_tail, r->rx_key)) {
		*seen = v;
		return 0;
	}
	*len = (uint32_t)(v & REC_LEN_MASK);
	if (*len == 0 || *len > r->rec_max)
		return -EPROTO;		/* the peer broke the ring */
	return 1;
}

/* Waits until the record at rx_tail is there: 1 with *len, or < 0. */
static int rec_wait(struct tp_ring_chan *r, uint32_t *len)
{
	uint64_t seen;
	int ret;

	while ((ret = rec_ready(r, &seen, len)) == 0) {
		ret = ring_wait(r, rec_word(r->rx_data, r->size, r->rx_tail), seen, &r->rx->data_waiting,
				 r->rx_mb);
		if (ret < 0)
			return ret;
	}
	return ret;
}

/* The record at rx_tail is read: its space goes back to the peer. */
static void rec_done(struct tp_ring_chan *r)
{
	struct ring *t = r->rx;

	r->rx_tail += rec_span(r->rx_len);
	r->rx_len = 0;
	if (!r->rx_light && r->rx_mb > 0)
		r->rx_light = __atomic_load_n(&t->producer_membarrier, __ATOMIC_RELAXED) == 1;
	publish_word(&t->tail, r->rx_tail, r->rx_light);
	ring_wake(&t->space_waiting, r->rx_light);
}

static int ring_recv(struct tp_chan *c, void *p, size_t n, int *fd)
{
	struct tp_ring_chan *r = (struct tp_ring_chan *)c;
	struct ring *t = r->rx;
	uint8_t *dst = p;
	int ret;

	(void)fd;	/* descriptors come from tp_ring_take_fd() */
	membarrier_check(&r->rx_mb, &t->consumer_membarrier);
	while (n) {
		size_t k;

		if (!r->rx_len) {
			uint32_t len;

			ret = rec_wait(r, &len);
			if (ret < 0)
				return ret;
			r->rx_len = len;
			r->rx_off = 0;
		}
		k = r->rx_len - r->rx_off < n ? r->rx_len - r->rx_off : n;
		ring_get(r, r->rx_tail + REC_HDR + r->rx_off, dst, k);
		r->rx_off += (uint32_t)k;
		dst += k;
		n -= k;
		c->bytes_received += k;
		if (r->rx_off == r->rx_len)
			rec_done(r);
	}
	return 0;
}

/*
 * A whole message that is one record, header and payload in one pass (the
 * common case: every message up to a record's size).  -EAGAIN, having
 * consumed nothing, where it is not so (in the middle of a record, a
 * descriptor announced, a message cut into records): the general path
 * reads it.
 */
int tp_ring_recv_msg(struct tp_chan *c, struct vg_hdr *h, struct vg_buf *buf, size_t max_len)
{
	struct tp_ring_chan *r = (struct tp_ring_chan *)c;
	struct ring *t = r->rx;
	uint8_t hb[VG_HDR_SIZE];
	uint32_t len;
	size_t n;
	void *p;
	int ret;

	if (r->rx_len)
		return -EAGAIN;
	membarrier_check(&r->rx_mb, &t->consumer_membarrier);
	ret = rec_wait(r, &len);
	if (ret < 0)
		return ret;
	/* From here on the general path may take over at the record's start. */
	r->rx_len = len;
	r->rx_off = 0;
	if (len < VG_HDR_SIZE)
		return -EAGAIN;
	ring_get(r, r->rx_tail + REC_HDR, hb, VG_HDR_SIZE);
	ret = vg_hdr_decode(hb, h);
	if (ret < 0)
		return ret;
	if (h->len != len || (h->flags & VG_F_FD))
		return -EAGAIN;
	n = len - VG_HDR_SIZE;
	ret = tp_msg_space(buf, n, max_len, &p);
	if (ret < 0)
		return ret;
	ring_get(r, r->rx_tail + REC_HDR + VG_HDR_SIZE, p, n);
	c->bytes_received += len;
	rec_done(r);
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

/* Each ring's stamp key, random.  (Zeroed memory is no record: len >= 1.) */
static int ring_keys(int fd, uint32_t ring_bytes)
{
	uint64_t key[2];
	int k;

	if (getrandom(key, sizeof(key), GRND_NONBLOCK) != (ssize_t)sizeof(key)) {
		struct timespec ts;

		clock_gettime(CLOCK_MONOTONIC, &ts);
		key[0] = ((uint64_t)ts.tv_nsec << 32) ^ (uint64_t)ts.tv_sec ^ ((uint64_t)getpid() << 16);
		key[1] = key[0] * 0x9e3779b97f4a7c15ull + (uint64_t)(uintptr_t)&ts;
	}
	for (k = 0; k < 2; k++) {
		if (pwrite(fd, &key[k], sizeof(key[k]), (off_t)(k * ((size_t)RING_HDR + ring_bytes))) !=
		    (ssize_t)sizeof(key[k]))
			return -1;
	}
	return 0;
}

int tp_ring_create_fd(uint32_t ring_bytes)
{
	int fd;

	if (ring_bytes < 4096 || (ring_bytes & (ring_bytes - 1)) || ring_bytes > TP_RING_BYTES_MAX)
		return -EINVAL;
	fd = memfd_create("vgpu-ring", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (fd < 0)
		return -errno;
	if (ftruncate(fd, (off_t)tp_ring_map_size(ring_bytes)) < 0 || ring_keys(fd, ring_bytes) < 0 ||
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
	/* A fresh ring: both sides start at 0 (a creator's key is all it wrote). */
	r->rec_max = ring_bytes / 4 < REC_LEN_MASK - REC_ALIGN ? ring_bytes / 4 : REC_LEN_MASK - REC_ALIGN;
	r->tx_key = __atomic_load_n(&r->tx->key, __ATOMIC_RELAXED);
	r->rx_key = __atomic_load_n(&r->rx->key, __ATOMIC_RELAXED);
	r->peer_alive = socket_peer_alive;
	{
		const char *e = getenv("VGPU_RING_MEMBARRIER");

		if (e && !strcmp(e, "0"))
			r->tx_mb = r->rx_mb = -1;
	}
	if (!r->tx_mb)
		tp_ring_membarrier_ready(0);	/* starts the registration */
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

int tp_ring_uses_membarrier(const struct tp_chan *c)
{
	const struct tp_ring_chan *r = (const struct tp_ring_chan *)c;

	return r->tx_mb > 0 || r->rx_mb > 0;
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
	uint64_t seen;
	uint32_t len = r->rx_len, off = r->rx_off;

	if (!len) {
		if (rec_ready(r, &seen, &len) <= 0)
			return 0;
		off = 0;
	}
	if (len - off < n)
		return 0;
	ring_get(r, r->rx_tail + REC_HDR + off, p, n);
	return 1;
}

int tp_ring_readable(struct tp_chan *c)
{
	struct tp_ring_chan *r = (struct tp_ring_chan *)c;
	uint64_t seen;
	uint32_t len;

	return r->rx_len || rec_ready(r, &seen, &len) != 0;
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

	uint32_t len;
	int ret;

	if (r->rx_len)
		return 0;
	ret = rec_wait(r, &len);
	return ret < 0 ? ret : 0;
}
