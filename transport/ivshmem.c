/*
 * ivshmem channels: byte streams through a memory region shared by a VM
 * and its host.  The host maps a file (vgpud creates it; QEMU or Cloud
 * Hypervisor back the guest's ivshmem device with it), the guest maps the
 * device's BAR2 through sysfs (or, for tests, the same file).
 *
 * Layout (offsets only, never pointers; all words little-endian):
 *
 *   0                  struct iv_hdr: magic, version, geometry, the daemon's
 *                      heartbeat (IV_HDR_BYTES)
 *   IV_HDR_BYTES + k * slot_bytes    slot k:
 *       +0             struct iv_slot: state, generation, heartbeats
 *       +IV_CTL_BYTES  ring guest->host: struct iv_ring + ring_bytes of data
 *       + ...          ring host->guest: struct iv_ring + ring_bytes of data
 *
 * A slot is one connection.  Its state word moves FREE -> CONNECTING (the
 * guest claims it with a compare-and-swap) -> ACCEPTED (the daemon, which
 * starts a worker for it); either side then ORs in its CLOSED bit.  Once
 * the worker has gone and the guest closed (or went silent), the daemon
 * resets the rings, bumps the generation and frees the slot.
 *
 * Trust: the region belongs to one VM; whatever the guest writes can only
 * hurt its own sessions.  The host never takes geometry from the region
 * (the daemon passes it to the worker), loads each guest-written index once
 * and checks it before use, and copies bytes out of the ring before anything
 * decodes them.
 *
 * Wake-ups are by polling (a futex does not cross the VM boundary): spin,
 * then spin yielding the CPU, then sleep with a doubling length up to
 * IV_NAP_MAX_NS, so latency stays bounded.  A peer that dies is noticed by its heartbeat: a thread in each
 * process bumps its side's word of every open slot every IV_BEAT_NS; a word
 * that stays still for VGPU_IVSHMEM_DEAD_MS (default 10 s) while we wait
 * means the peer is gone.
 *
 * Memory type: data is written with plain stores, then the index with a
 * sequentially consistent (locked) store; that order holds on
 * write-combining memory too (see README: the guest maps resource2_wc where
 * the kernel offers it).
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "tp.h"
#include "vgpu/log.h"

#define IV_MAGIC        "VGPUIVSH"
#define IV_VERSION      1u
#define IV_HDR_BYTES    4096u
#define IV_CTL_BYTES    256u		/* struct iv_slot, padded */
#define IV_RING_HDR     128u		/* struct iv_ring, padded */
#define IV_PAGE         4096u

#define IV_FREE         0u
#define IV_CONNECTING   1u
#define IV_ACCEPTED     2u
#define IV_PHASE_MASK   0xffu
#define IV_CLOSED_G     0x100u		/* the guest closed */
#define IV_CLOSED_H     0x200u		/* the host closed (or refused) */

#define IV_BEAT_NS      (100ull * 1000000)
#define IV_DEAD_MS_DEFAULT 10000u
#define IV_SPIN_NS      (20ull * 1000)	/* pure spinning */
#define IV_YIELD_NS     (200ull * 1000)	/* then spinning with sched_yield() */
#define IV_NAP_MIN_NS   (10ull * 1000)
#define IV_NAP_MAX_NS   (1000ull * 1000)
/* How long a guest waits for a daemon that does not beat before giving up. */
#define IV_NO_DAEMON_NS (1500ull * 1000000)

struct iv_hdr {
	char magic[8];
	uint32_t version;
	uint32_t hdr_bytes;
	uint32_t nslots;
	uint32_t slot_bytes;
	uint32_t ring_bytes;
	uint32_t reserved;
	uint64_t region_bytes;
	uint64_t boot;			/* differs for each daemon start */
	uint8_t pad0[16];
	uint64_t host_beat;		/* the daemon's heartbeat, at offset 64 */
};

struct iv_slot {
	uint32_t state;
	uint32_t gen;			/* bumped by the daemon at each reuse */
	uint32_t guest_pid;		/* informational */
	uint8_t pad0[52];
	uint64_t guest_beat;		/* offset 64 */
	uint8_t pad1[56];
	uint64_t host_beat;		/* offset 128 */
};

struct iv_ring {
	uint64_t head;			/* bytes written: producer stores */
	uint8_t pad0[56];
	uint64_t tail;			/* bytes read: consumer stores */
};

_Static_assert(sizeof(struct iv_hdr) <= IV_HDR_BYTES, "header fits");
_Static_assert(sizeof(struct iv_slot) <= IV_CTL_BYTES, "slot control fits");
_Static_assert(sizeof(struct iv_ring) <= IV_RING_HDR, "ring header fits");

struct iv_geom {
	uint32_t nslots, slot_bytes, ring_bytes;
};

struct iv_chan {
	struct tp_chan c;		/* c.fd: -1, there is no OS handle */
	uint8_t *map;
	size_t map_len;
	struct iv_slot *slot;
	struct iv_ring *tx, *rx;
	uint8_t *tx_data, *rx_data;
	uint32_t size;
	uint32_t gen;
	int host;
	int region_fd;			/* host: the region file, for a hand-off; else -1 */
	uint32_t slot_no;
	int handed;			/* exported to another process: not ours to close */
	int shut;			/* tp_ivshmem_shutdown() was called */
	uint64_t *my_beat, *peer_beat;
	uint64_t beat_seen, beat_seen_at;	/* the peer's beat, when it last moved */
	struct iv_chan *tick_next;
};

struct tp_ivshmem {
	int fd;
	uint8_t *map;
	size_t len;
	struct iv_geom g;
	uint64_t beat_at;		/* when the daemon's beat was last bumped */
	struct {
		uint8_t busy;		/* a worker serves it */
		uint8_t draining;	/* the worker went; the guest has not closed yet */
		uint8_t adopted;	/* handed to a worker we do not know */
		uint64_t guest_beat, host_beat, seen_at;
	} *slots;
};

/* ---- helpers ----------------------------------------------------------- */

static uint64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void nap(uint64_t ns)
{
	struct timespec ts = { (time_t)(ns / 1000000000ull), (long)(ns % 1000000000ull) };

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#endif
}

static uint64_t dead_ns(void)
{
	const char *e = getenv("VGPU_IVSHMEM_DEAD_MS");
	unsigned long ms = e && *e ? strtoul(e, NULL, 10) : 0;

	return (uint64_t)(ms ? ms : IV_DEAD_MS_DEFAULT) * 1000000ull;
}

static int geom_compute(uint64_t region_bytes, uint32_t ring_bytes, struct iv_geom *g)
{
	uint64_t slot, n;

	if (ring_bytes < TP_IVSHMEM_RING_MIN || ring_bytes > TP_IVSHMEM_RING_MAX ||
	    (ring_bytes & (ring_bytes - 1)))
		return -EINVAL;
	slot = IV_CTL_BYTES + 2ull * (IV_RING_HDR + ring_bytes);
	slot = (slot + IV_PAGE - 1) & ~(uint64_t)(IV_PAGE - 1);
	if (region_bytes < IV_HDR_BYTES + slot)
		return -ENOSPC;
	n = (region_bytes - IV_HDR_BYTES) / slot;
	if (n > TP_IVSHMEM_SLOTS_MAX)
		n = TP_IVSHMEM_SLOTS_MAX;
	g->nslots = (uint32_t)n;
	g->slot_bytes = (uint32_t)slot;
	g->ring_bytes = ring_bytes;
	return 0;
}

static struct iv_slot *slot_at(uint8_t *map, const struct iv_geom *g, uint32_t k)
{
	return (struct iv_slot *)(map + IV_HDR_BYTES + (size_t)k * g->slot_bytes);
}

static struct iv_ring *ring_at(struct iv_slot *s, const struct iv_geom *g, int h2g)
{
	return (struct iv_ring *)((uint8_t *)s + IV_CTL_BYTES + (h2g ? IV_RING_HDR + g->ring_bytes : 0));
}

/* ---- heartbeats -------------------------------------------------------- */

static pthread_mutex_t tick_lock = PTHREAD_MUTEX_INITIALIZER;
static struct iv_chan *tick_list;
static int tick_started;

static void *tick_main(void *arg)
{
	(void)arg;
	for (;;) {
		struct iv_chan *c;

		pthread_mutex_lock(&tick_lock);
		for (c = tick_list; c; c = c->tick_next)
			__atomic_fetch_add(c->my_beat, 1, __ATOMIC_RELAXED);
		pthread_mutex_unlock(&tick_lock);
		nap(IV_BEAT_NS);
	}
	return NULL;
}

/*
 * At exit (not at _exit or a fatal signal: the heartbeat covers those) a
 * process closes its end of every connection it still has, as the kernel
 * closes a socket: the peer learns at once instead of after
 * VGPU_IVSHMEM_DEAD_MS.  Nothing is unmapped: other threads may still run.
 */
__attribute__((destructor)) static void tick_at_exit(void)
{
	struct iv_chan *c;

	pthread_mutex_lock(&tick_lock);
	for (c = tick_list; c; c = c->tick_next)
		if (!c->handed && __atomic_load_n(&c->slot->gen, __ATOMIC_ACQUIRE) == c->gen)
			__atomic_fetch_or(&c->slot->state, c->host ? IV_CLOSED_H : IV_CLOSED_G, __ATOMIC_SEQ_CST);
	pthread_mutex_unlock(&tick_lock);
}

/*
 * A forked child has no ticker thread and must not keep its parent's
 * connections alive: it starts afresh.
 */
static void tick_prepare(void)
{
	pthread_mutex_lock(&tick_lock);
}

static void tick_parent(void)
{
	pthread_mutex_unlock(&tick_lock);
}

static void tick_child(void)
{
	tick_list = NULL;
	tick_started = 0;
	pthread_mutex_unlock(&tick_lock);
}

static void tick_once(void)
{
	pthread_atfork(tick_prepare, tick_parent, tick_child);
}

static int tick_add(struct iv_chan *c)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;
	int ret = 0;

	pthread_once(&once, tick_once);
	pthread_mutex_lock(&tick_lock);
	if (!tick_started) {
		pthread_attr_t a;
		pthread_t t;

		pthread_attr_init(&a);
		pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
		ret = -pthread_create(&t, &a, tick_main, NULL);
		pthread_attr_destroy(&a);
		tick_started = ret == 0;
	}
	if (ret == 0) {
		c->tick_next = tick_list;
		tick_list = c;
	}
	pthread_mutex_unlock(&tick_lock);
	return ret;
}

static void tick_remove(struct iv_chan *c)
{
	struct iv_chan **p;

	pthread_mutex_lock(&tick_lock);
	for (p = &tick_list; *p; p = &(*p)->tick_next) {
		if (*p == c) {
			*p = c->tick_next;
			break;
		}
	}
	pthread_mutex_unlock(&tick_lock);
}

/* ---- the byte streams -------------------------------------------------- */

/*
 * The peer is gone when it closed, when the slot was reused (another
 * generation), or when its heartbeat stood still too long.  The beat is
 * followed across waits, so short waits (a timeout) see a death too.
 */
static int peer_gone(struct iv_chan *c, uint64_t now, uint64_t limit)
{
	uint32_t st = __atomic_load_n(&c->slot->state, __ATOMIC_ACQUIRE);
	uint64_t b;

	if (st & (c->host ? IV_CLOSED_G : IV_CLOSED_H))
		return 1;
	if (__atomic_load_n(&c->slot->gen, __ATOMIC_ACQUIRE) != c->gen ||
	    (st & IV_PHASE_MASK) != IV_ACCEPTED)
		return 1;
	b = __atomic_load_n(c->peer_beat, __ATOMIC_RELAXED);
	if (b != c->beat_seen || !c->beat_seen_at) {
		c->beat_seen = b;
		c->beat_seen_at = now;
		return 0;
	}
	if (now - c->beat_seen_at > limit) {
		VG_WARN("ivshmem: the %s has not shown signs of life for %" PRIu64 " ms: closing the connection",
			c->host ? "guest" : "host", limit / 1000000);
		return 1;
	}
	return 0;
}

/*
 * Waits until *idx differs from seen (the peer moved): 0; -ECONNRESET when
 * the peer is gone; -ETIMEDOUT after timeout_ns (0: no limit).
 */
static int iv_wait(struct iv_chan *c, const uint64_t *idx, uint64_t seen, uint64_t timeout_ns)
{
	uint64_t start = mono_ns(), now = start, sleep = IV_NAP_MIN_NS;
	uint64_t limit = dead_ns();

	for (;;) {
		if (__atomic_load_n(idx, __ATOMIC_ACQUIRE) != seen)
			return 0;
		if (__atomic_load_n(&c->shut, __ATOMIC_ACQUIRE))
			return -ECONNRESET;
		if (peer_gone(c, now, limit))
			/* What it wrote before it went is still delivered. */
			return __atomic_load_n(idx, __ATOMIC_ACQUIRE) != seen ? 0 : -ECONNRESET;
		if (timeout_ns && now - start >= timeout_ns)
			return -ETIMEDOUT;
		if (now - start < IV_YIELD_NS) {
			/* Yielding lets a peer that shares our CPU (a small VM) run. */
			if (now - start < IV_SPIN_NS)
				cpu_relax();
			else
				sched_yield();
			now = mono_ns();
			continue;
		}
		nap(sleep);
		if (sleep < IV_NAP_MAX_NS)
			sleep *= 2;
		now = mono_ns();
	}
}

static int iv_write(struct iv_chan *c, const uint8_t *p, size_t n)
{
	struct iv_ring *t = c->tx;
	uint64_t head = c->c.bytes_sent;	/* only we move head: never reread it */

	while (n) {
		uint64_t tail = __atomic_load_n(&t->tail, __ATOMIC_ACQUIRE);
		uint64_t used = head - tail;
		size_t space, off, k, first;
		int ret;

		if (used > c->size)
			return -EPROTO;	/* the peer broke the ring */
		space = c->size - (size_t)used;
		if (!space) {
			ret = iv_wait(c, &t->tail, tail, 0);
			if (ret < 0)
				return -EPIPE;
			continue;
		}
		if (__atomic_load_n(&c->slot->state, __ATOMIC_ACQUIRE) & (c->host ? IV_CLOSED_G : IV_CLOSED_H))
			return -EPIPE;
		k = n < space ? n : space;
		off = (size_t)(head & (c->size - 1));
		first = c->size - off < k ? c->size - off : k;
		memcpy(c->tx_data + off, p, first);
		memcpy(c->tx_data, p + first, k - first);
		head += k;
		p += k;
		n -= k;
		c->c.bytes_sent += k;
		/*
		 * Sequentially consistent: on x86 a locked instruction, which
		 * also drains write-combining buffers, so the data is out
		 * before the index even on a WC mapping.
		 */
		__atomic_store_n(&t->head, head, __ATOMIC_SEQ_CST);
	}
	return 0;
}

static int iv_send(struct tp_chan *ch, const struct iovec *iov, int iovcnt, int fd)
{
	struct iv_chan *c = (struct iv_chan *)ch;
	int i, ret;

	if (fd >= 0)
		return -ENOTSUP;	/* no descriptors cross a VM boundary */
	for (i = 0; i < iovcnt; i++) {
		ret = iv_write(c, iov[i].iov_base, iov[i].iov_len);
		if (ret < 0)
			return ret;
	}
	return 0;
}

static int iv_recv(struct tp_chan *ch, void *p, size_t n, int *fd)
{
	struct iv_chan *c = (struct iv_chan *)ch;
	struct iv_ring *t = c->rx;
	uint64_t tail = c->c.bytes_received;	/* only we move tail: never reread it */
	uint8_t *dst = p;

	(void)fd;
	while (n) {
		uint64_t head = __atomic_load_n(&t->head, __ATOMIC_ACQUIRE);
		uint64_t avail = head - tail;
		size_t off, k, first;
		int ret;

		if (avail > c->size)
			return -EPROTO;	/* the peer broke the ring */
		if (!avail) {
			ret = iv_wait(c, &t->head, head, 0);
			if (ret < 0)
				return ret;
			continue;
		}
		k = n < avail ? n : (size_t)avail;
		off = (size_t)(tail & (c->size - 1));
		first = c->size - off < k ? c->size - off : k;
		memcpy(dst, c->rx_data + off, first);
		memcpy(dst + first, c->rx_data, k - first);
		tail += k;
		dst += k;
		n -= k;
		c->c.bytes_received += k;
		/* Our copies are done before the producer may reuse the space. */
		__atomic_store_n(&t->tail, tail, __ATOMIC_SEQ_CST);
	}
	return 0;
}

static void iv_destroy(struct tp_chan *ch)
{
	struct iv_chan *c = (struct iv_chan *)ch;

	tick_remove(c);
	if (!c->handed && __atomic_load_n(&c->slot->gen, __ATOMIC_ACQUIRE) == c->gen)
		__atomic_fetch_or(&c->slot->state, c->host ? IV_CLOSED_H : IV_CLOSED_G, __ATOMIC_SEQ_CST);
	munmap(c->map, c->map_len);
	if (c->region_fd >= 0)
		close(c->region_fd);
	free(c);
}

static const struct tp_chan_ops iv_ops = {
	.name = "ivshmem",
	.send = iv_send,
	.recv = iv_recv,
	.destroy = iv_destroy,
};

void tp_ivshmem_shutdown(struct tp_chan *ch)
{
	struct iv_chan *c = (struct iv_chan *)ch;

	__atomic_store_n(&c->shut, 1, __ATOMIC_RELEASE);
	if (__atomic_load_n(&c->slot->gen, __ATOMIC_ACQUIRE) == c->gen)
		__atomic_fetch_or(&c->slot->state, c->host ? IV_CLOSED_H : IV_CLOSED_G, __ATOMIC_SEQ_CST);
}

int tp_chan_is_ivshmem(const struct tp_chan *c)
{
	return c->ops == &iv_ops;
}

int tp_ivshmem_readable(struct tp_chan *ch)
{
	struct iv_chan *c = (struct iv_chan *)ch;

	return __atomic_load_n(&c->rx->head, __ATOMIC_ACQUIRE) != c->c.bytes_received;
}

int tp_ivshmem_peek(struct tp_chan *ch, void *p, size_t n)
{
	struct iv_chan *c = (struct iv_chan *)ch;
	uint64_t tail = c->c.bytes_received;
	uint64_t head = __atomic_load_n(&c->rx->head, __ATOMIC_ACQUIRE);
	size_t off, first;

	if (head - tail < n || head - tail > c->size)
		return 0;
	off = (size_t)(tail & (c->size - 1));
	first = c->size - off < n ? c->size - off : n;
	memcpy(p, c->rx_data + off, first);
	memcpy((uint8_t *)p + first, c->rx_data, n - first);
	return 1;
}

int tp_ivshmem_wait_readable(struct tp_chan *ch)
{
	return tp_ivshmem_wait_readable_ms(ch, -1);
}

int tp_ivshmem_wait_readable_ms(struct tp_chan *ch, int timeout_ms)
{
	struct iv_chan *c = (struct iv_chan *)ch;
	uint64_t head = __atomic_load_n(&c->rx->head, __ATOMIC_ACQUIRE);

	if (head != c->c.bytes_received)
		return 0;
	if (timeout_ms == 0)
		/* Only the checks: a peer that is gone, or a moment for it to come. */
		return peer_gone(c, mono_ns(), dead_ns()) ? -ECONNRESET : -ETIMEDOUT;
	return iv_wait(c, &c->rx->head, head, timeout_ms < 0 ? 0 : (uint64_t)timeout_ms * 1000000ull);
}

static int chan_make(uint8_t *map, size_t len, int region_fd, const struct iv_geom *g, uint32_t k, int host,
		     uint32_t gen, struct tp_chan **out)
{
	struct iv_chan *c = calloc(1, sizeof(*c));
	struct iv_ring *g2h, *h2g;
	int ret;

	if (!c)
		return -ENOMEM;
	c->region_fd = region_fd;
	c->slot_no = k;
	c->map = map;
	c->map_len = len;
	c->slot = slot_at(map, g, k);
	c->size = g->ring_bytes;
	c->gen = gen;
	c->host = host;
	g2h = ring_at(c->slot, g, 0);
	h2g = ring_at(c->slot, g, 1);
	c->tx = host ? h2g : g2h;
	c->rx = host ? g2h : h2g;
	c->tx_data = (uint8_t *)c->tx + IV_RING_HDR;
	c->rx_data = (uint8_t *)c->rx + IV_RING_HDR;
	c->my_beat = host ? &c->slot->host_beat : &c->slot->guest_beat;
	c->peer_beat = host ? &c->slot->guest_beat : &c->slot->host_beat;
	c->c.ops = &iv_ops;
	c->c.fd = -1;
	ret = tick_add(c);
	if (ret < 0) {
		free(c);
		return ret;
	}
	*out = &c->c;
	return 0;
}

static int map_file(const char *path, int flags, uint8_t **map, size_t *len, int *fdp)
{
	struct stat st;
	void *m;
	int fd, ret;

	fd = open(path, flags | O_CLOEXEC, 0600);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0) {
		ret = -errno;
		goto err;
	}
	if (st.st_size > 0) {
		m = mmap(NULL, (size_t)st.st_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
		if (m == MAP_FAILED) {
			ret = -errno;
			goto err;
		}
		*map = m;
	}
	*len = (size_t)st.st_size;
	if (fdp)
		*fdp = fd;
	else
		close(fd);
	return 0;
err:
	close(fd);
	return ret;
}

/* ---- the host: the daemon's region ------------------------------------- */

static void slot_reset(struct tp_ivshmem *r, uint32_t k)
{
	struct iv_slot *s = slot_at(r->map, &r->g, k);
	struct iv_ring *a = ring_at(s, &r->g, 0), *b = ring_at(s, &r->g, 1);

	__atomic_store_n(&a->head, 0, __ATOMIC_RELAXED);
	__atomic_store_n(&a->tail, 0, __ATOMIC_RELAXED);
	__atomic_store_n(&b->head, 0, __ATOMIC_RELAXED);
	__atomic_store_n(&b->tail, 0, __ATOMIC_RELAXED);
	__atomic_store_n(&s->guest_beat, 0, __ATOMIC_RELAXED);
	__atomic_store_n(&s->host_beat, 0, __ATOMIC_RELAXED);
	__atomic_store_n(&s->guest_pid, 0, __ATOMIC_RELAXED);
	__atomic_fetch_add(&s->gen, 1, __ATOMIC_SEQ_CST);
	__atomic_store_n(&s->state, IV_FREE, __ATOMIC_SEQ_CST);
	r->slots[k].busy = 0;
	r->slots[k].draining = 0;
	r->slots[k].adopted = 0;
}

int tp_ivshmem_region_create(const char *path, uint64_t size, uint32_t ring_bytes, struct tp_ivshmem **out)
{
	struct tp_ivshmem *r;
	struct iv_hdr *h;
	struct stat st;
	uint32_t k;
	int ret;

	r = calloc(1, sizeof(*r));
	if (!r)
		return -ENOMEM;
	r->fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (r->fd < 0) {
		ret = -errno;
		free(r);
		return ret;
	}
	/* One daemon per region: a second one would hand slots out twice. */
	if (flock(r->fd, LOCK_EX | LOCK_NB) < 0) {
		ret = errno == EWOULDBLOCK ? -EADDRINUSE : -errno;
		goto err;
	}
	if (fstat(r->fd, &st) < 0) {
		ret = -errno;
		goto err;
	}
	/*
	 * Never resize a region a VM may have mapped: its BAR keeps the size
	 * it had (0: keep the file's size, or the default for a new file).
	 */
	if (st.st_size > 0 && size && size != (uint64_t)st.st_size) {
		ret = -EFBIG;
		goto err;
	}
	if (!size)
		size = st.st_size > 0 ? (uint64_t)st.st_size : TP_IVSHMEM_SIZE_DEFAULT;
	if (size > TP_IVSHMEM_SIZE_MAX || (size & (IV_PAGE - 1))) {
		ret = -EINVAL;
		goto err;
	}
	ret = geom_compute(size, ring_bytes, &r->g);
	if (ret < 0)
		goto err;
	if ((uint64_t)st.st_size != size && ftruncate(r->fd, (off_t)size) < 0) {
		ret = -errno;
		goto err;
	}
	r->len = (size_t)size;
	r->map = mmap(NULL, r->len, PROT_READ | PROT_WRITE, MAP_SHARED, r->fd, 0);
	if (r->map == MAP_FAILED) {
		ret = -errno;
		goto err;
	}
	r->slots = calloc(r->g.nslots, sizeof(*r->slots));
	if (!r->slots) {
		ret = -ENOMEM;
		goto err_unmap;
	}
	/* A new daemon: every connection of a previous one is over. */
	h = (struct iv_hdr *)r->map;
	__atomic_store_n(&h->version, 0, __ATOMIC_SEQ_CST);
	for (k = 0; k < r->g.nslots; k++)
		slot_reset(r, k);
	memcpy(h->magic, IV_MAGIC, 8);
	h->hdr_bytes = IV_HDR_BYTES;
	h->nslots = r->g.nslots;
	h->slot_bytes = r->g.slot_bytes;
	h->ring_bytes = r->g.ring_bytes;
	h->region_bytes = size;
	h->boot = mono_ns() ^ ((uint64_t)getpid() << 32);
	__atomic_store_n(&h->version, IV_VERSION, __ATOMIC_SEQ_CST);
	*out = r;
	return 0;
err_unmap:
	munmap(r->map, r->len);
err:
	close(r->fd);
	free(r);
	return ret;
}

void tp_ivshmem_region_destroy(struct tp_ivshmem *r)
{
	uint32_t k;

	if (!r)
		return;
	/* Guests still connected see the host side closed. */
	for (k = 0; k < r->g.nslots; k++)
		__atomic_fetch_or(&slot_at(r->map, &r->g, k)->state, IV_CLOSED_H, __ATOMIC_SEQ_CST);
	munmap(r->map, r->len);
	close(r->fd);
	free(r->slots);
	free(r);
}

uint32_t tp_ivshmem_nslots(const struct tp_ivshmem *r)
{
	return r->g.nslots;
}

int tp_ivshmem_poll(struct tp_ivshmem *r)
{
	struct iv_hdr *h = (struct iv_hdr *)r->map;
	uint64_t now = mono_ns(), limit = dead_ns();
	uint32_t k;

	if (now - r->beat_at >= IV_BEAT_NS / 2) {
		__atomic_fetch_add(&h->host_beat, 1, __ATOMIC_RELAXED);
		r->beat_at = now;
	}
	for (k = 0; k < r->g.nslots; k++) {
		struct iv_slot *s = slot_at(r->map, &r->g, k);
		uint32_t st = __atomic_load_n(&s->state, __ATOMIC_ACQUIRE);

		if (r->slots[k].adopted) {
			uint64_t b = __atomic_load_n(&s->host_beat, __ATOMIC_RELAXED);

			if (b != r->slots[k].host_beat) {
				r->slots[k].host_beat = b;
				r->slots[k].seen_at = now;
			}
			/* Its worker closed it, or died (its heartbeat stopped). */
			if ((st & IV_CLOSED_H) || (st & IV_PHASE_MASK) != IV_ACCEPTED ||
			    now - r->slots[k].seen_at > limit) {
				r->slots[k].adopted = 0;
				tp_ivshmem_slot_release(r, k);
			}
			continue;
		}
		if (r->slots[k].draining) {
			uint64_t b = __atomic_load_n(&s->guest_beat, __ATOMIC_RELAXED);

			if (b != r->slots[k].guest_beat) {
				r->slots[k].guest_beat = b;
				r->slots[k].seen_at = now;
			}
			/* Reuse it once the guest let go of it, or died. */
			if ((st & IV_CLOSED_G) || (st & IV_PHASE_MASK) != IV_ACCEPTED ||
			    now - r->slots[k].seen_at > limit)
				slot_reset(r, k);
			continue;
		}
		if (r->slots[k].busy || st != IV_CONNECTING)
			continue;
		if (!__atomic_compare_exchange_n(&s->state, &st, IV_ACCEPTED, 0, __ATOMIC_SEQ_CST,
						 __ATOMIC_SEQ_CST))
			continue;	/* the guest gave up meanwhile */
		r->slots[k].busy = 1;
		return (int)k;
	}
	return -EAGAIN;
}

void tp_ivshmem_slot_release(struct tp_ivshmem *r, uint32_t k)
{
	struct iv_slot *s;

	if (k >= r->g.nslots || !r->slots[k].busy)
		return;
	s = slot_at(r->map, &r->g, k);
	__atomic_fetch_or(&s->state, IV_CLOSED_H, __ATOMIC_SEQ_CST);
	r->slots[k].draining = 1;
	r->slots[k].guest_beat = __atomic_load_n(&s->guest_beat, __ATOMIC_RELAXED);
	r->slots[k].seen_at = mono_ns();
}

void tp_ivshmem_slot_adopted(struct tp_ivshmem *r, uint32_t k)
{
	struct iv_slot *s;

	if (k >= r->g.nslots || !r->slots[k].busy || r->slots[k].draining)
		return;
	s = slot_at(r->map, &r->g, k);
	r->slots[k].adopted = 1;
	r->slots[k].host_beat = __atomic_load_n(&s->host_beat, __ATOMIC_RELAXED);
	r->slots[k].seen_at = mono_ns();
}

/* ---- the host: one worker's slot --------------------------------------- */

/*
 * The host's end of slot k of the region open at fd (taken on success).
 * gen: the generation it must have, or ~0u for the current one.
 */
static int host_chan(int fd, uint32_t k, uint32_t ring_bytes, uint32_t gen, struct tp_chan **out)
{
	struct iv_geom g;
	struct iv_slot *s;
	struct stat st;
	uint8_t *map;
	size_t len;
	uint32_t state;
	int ret;

	if (fstat(fd, &st) < 0)
		return -errno;
	len = (size_t)st.st_size;
	/* Geometry from what the daemon told us and the file's size, never the header. */
	ret = geom_compute(len, ring_bytes, &g);
	if (ret == 0 && k >= g.nslots)
		ret = -ERANGE;
	if (ret < 0)
		return ret;
	map = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (map == MAP_FAILED)
		return -errno;
	s = slot_at(map, &g, k);
	state = __atomic_load_n(&s->state, __ATOMIC_ACQUIRE);
	if (gen == ~0u)
		gen = __atomic_load_n(&s->gen, __ATOMIC_ACQUIRE);
	if ((state & IV_PHASE_MASK) != IV_ACCEPTED || (state & (IV_CLOSED_G | IV_CLOSED_H)) ||
	    __atomic_load_n(&s->gen, __ATOMIC_ACQUIRE) != gen) {
		ret = -ECONNRESET;	/* the guest already went */
		goto err;
	}
	ret = chan_make(map, len, fd, &g, k, 1, gen, out);
	if (ret < 0)
		goto err;
	return 0;
err:
	munmap(map, len);
	return ret;
}

int tp_ivshmem_open_slot(const char *path, uint32_t k, uint32_t ring_bytes, struct tp_chan **out)
{
	int fd = open(path, O_RDWR | O_CLOEXEC), ret;

	if (fd < 0)
		return -errno;
	ret = host_chan(fd, k, ring_bytes, ~0u, out);
	if (ret < 0)
		close(fd);
	return ret;
}

static void put_le(uint8_t *p, uint64_t v, int n)
{
	int i;

	for (i = 0; i < n; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static uint64_t get_le(const uint8_t *p, int n)
{
	uint64_t v = 0;
	int i;

	for (i = 0; i < n; i++)
		v |= (uint64_t)p[i] << (8 * i);
	return v;
}

/*
 * ref: slot u32, ring bytes u32, generation u32, bytes sent u64, bytes
 * received u64 (where the streams stand), little-endian.
 */
int tp_ivshmem_export(struct tp_chan *ch, int *fd, uint8_t ref[TP_IVSHMEM_REF_SIZE])
{
	struct iv_chan *c = (struct iv_chan *)ch;

	if (!tp_chan_is_ivshmem(ch) || !c->host || c->region_fd < 0)
		return -EINVAL;
	put_le(ref, c->slot_no, 4);
	put_le(ref + 4, c->size, 4);
	put_le(ref + 8, c->gen, 4);
	put_le(ref + 12, c->c.bytes_sent, 8);
	put_le(ref + 20, c->c.bytes_received, 8);
	c->handed = 1;
	*fd = c->region_fd;
	return 0;
}

int tp_ivshmem_import(int fd, const uint8_t *ref, size_t n, struct tp_chan **out)
{
	uint64_t sent, received;
	int ret;

	if (n != TP_IVSHMEM_REF_SIZE || get_le(ref + 4, 4) > UINT32_MAX)
		return -EINVAL;
	sent = get_le(ref + 12, 8);
	received = get_le(ref + 20, 8);
	ret = host_chan(fd, (uint32_t)get_le(ref, 4), (uint32_t)get_le(ref + 4, 4), (uint32_t)get_le(ref + 8, 4),
			out);
	if (ret < 0)
		return ret;
	(*out)->bytes_sent = sent;
	(*out)->bytes_received = received;
	return 0;
}

/* ---- the guest --------------------------------------------------------- */

/*
 * The device's BAR2 through sysfs: resource2_wc (write-combining) where
 * the kernel offers it — it does for a prefetchable BAR, which ivshmem's
 * BAR2 is — else resource2 (uncached).
 */
static int map_bar(const char *bdf, uint8_t **map, size_t *len)
{
	char path[256];
	int ret;

	if (strchr(bdf, '/') || strlen(bdf) > 32)
		return -EINVAL;
	snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s%s/resource2_wc",
		 strchr(bdf, ':') == strrchr(bdf, ':') ? "0000:" : "", bdf);
	if (!getenv("VGPU_IVSHMEM_UC")) {
		ret = map_file(path, O_RDWR, map, len, NULL);
		if (ret != -ENOENT)
			return ret;
	}
	path[strlen(path) - 3] = '\0';
	return map_file(path, O_RDWR, map, len, NULL);
}

static int region_check(const uint8_t *map, size_t len, struct iv_geom *g)
{
	const struct iv_hdr *h = (const struct iv_hdr *)map;
	struct iv_geom want;

	if (len < IV_HDR_BYTES || memcmp(h->magic, IV_MAGIC, 8) != 0)
		return -ENODEV;		/* no daemon ever served it */
	if (__atomic_load_n(&h->version, __ATOMIC_ACQUIRE) != IV_VERSION)
		return -EPROTONOSUPPORT;
	if (h->region_bytes > len || geom_compute(h->region_bytes, h->ring_bytes, &want) < 0 ||
	    want.nslots != h->nslots || want.slot_bytes != h->slot_bytes)
		return -EPROTO;
	*g = want;
	return 0;
}

/* Claims a free slot and waits for the daemon to accept it. */
static int guest_claim(uint8_t *map, const struct iv_geom *g, uint32_t *slot, uint32_t *gen)
{
	struct iv_hdr *h = (struct iv_hdr *)map;
	uint64_t start = mono_ns(), beat_at = start, beat = __atomic_load_n(&h->host_beat, __ATOMIC_RELAXED);
	struct iv_slot *s = NULL;
	uint32_t k, st;

	/* Slots that were just closed are free again after the daemon's next tick. */
	for (;;) {
		for (k = 0; k < g->nslots; k++) {
			s = slot_at(map, g, k);
			st = IV_FREE;
			if (__atomic_compare_exchange_n(&s->state, &st, IV_CONNECTING, 0, __ATOMIC_SEQ_CST,
							__ATOMIC_SEQ_CST))
				break;
		}
		if (k < g->nslots)
			break;
		if (mono_ns() - start > IV_NO_DAEMON_NS)
			return -EAGAIN;		/* every slot is in use */
		nap(1000 * 1000);
	}
	*gen = __atomic_load_n(&s->gen, __ATOMIC_ACQUIRE);
	__atomic_store_n(&s->guest_pid, (uint32_t)getpid(), __ATOMIC_RELAXED);
	__atomic_fetch_add(&s->guest_beat, 1, __ATOMIC_RELAXED);
	for (;;) {
		uint64_t now = mono_ns(), b;

		st = __atomic_load_n(&s->state, __ATOMIC_ACQUIRE);
		if (st == IV_ACCEPTED) {
			*slot = k;
			return 0;
		}
		if (st != IV_CONNECTING) {
			__atomic_fetch_or(&s->state, IV_CLOSED_G, __ATOMIC_SEQ_CST);
			return -ECONNREFUSED;
		}
		b = __atomic_load_n(&h->host_beat, __ATOMIC_RELAXED);
		if (b != beat) {
			beat = b;
			beat_at = now;
		} else if (now - beat_at > IV_NO_DAEMON_NS) {
			st = IV_CONNECTING;
			if (__atomic_compare_exchange_n(&s->state, &st, IV_FREE, 0, __ATOMIC_SEQ_CST,
							__ATOMIC_SEQ_CST))
				return -ECONNREFUSED;	/* no daemon serves the region */
			continue;
		}
		nap(100 * 1000);
	}
}

int tp_ivshmem_connect(const char *spec, struct tp_chan **out)
{
	struct iv_geom g;
	uint8_t *map = NULL;
	uint32_t k, gen;
	size_t len = 0;
	int ret;

	if (!strncmp(spec, "file:", 5))
		ret = map_file(spec + 5, O_RDWR, &map, &len, NULL);
	else
		ret = map_bar(spec, &map, &len);
	if (ret < 0)
		return ret;
	ret = map ? region_check(map, len, &g) : -ENODEV;
	if (ret == 0)
		ret = guest_claim(map, &g, &k, &gen);
	if (ret == 0)
		ret = chan_make(map, len, -1, &g, k, 0, gen, out);
	if (ret < 0 && map)
		munmap(map, len);
	return ret;
}

int tp_ivshmem_parse_listen(const char *spec, char *path, size_t pathlen, uint64_t *size, uint32_t *ring)
{
	const char *comma = strchr(spec, ',');
	size_t n = comma ? (size_t)(comma - spec) : strlen(spec);

	*size = 0;
	*ring = TP_IVSHMEM_RING_DEFAULT;
	if (!n || n >= pathlen)
		return -EINVAL;
	memcpy(path, spec, n);
	path[n] = '\0';
	while (comma) {
		const char *opt = comma + 1;
		unsigned long long v;
		char *end;

		comma = strchr(opt, ',');
		if (!strncmp(opt, "size=", 5) || !strncmp(opt, "ring=", 5)) {
			v = strtoull(opt + 5, &end, 10);
			if (*end == 'K' || *end == 'k')
				v <<= 10, end++;
			else if (*end == 'M' || *end == 'm')
				v <<= 20, end++;
			else if (*end == 'G' || *end == 'g')
				v <<= 30, end++;
			if (end == opt + 5 || (*end && *end != ','))
				return -EINVAL;
			if (opt[0] == 's')
				*size = v;
			else if (v > UINT32_MAX)
				return -EINVAL;
			else
				*ring = (uint32_t)v;
		} else {
			return -EINVAL;
		}
	}
	return 0;
}
