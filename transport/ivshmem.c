/*
 * ivshmem channels: the byte streams of one slot, heartbeats, the guest's
 * connect, a worker's end of a slot and its hand-off to another worker.
 * The layout, the trust rules and the wake-up scheme: ivshmem.h.
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

#include "ivshmem.h"
#include "tp.h"
#include "vgpu/log.h"

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
		iv_nap(IV_BEAT_NS);
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
	uint64_t start = tp_mono_ns(), now = start, sleep = IV_NAP_MIN_NS;
	uint64_t limit = iv_dead_ns();

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
				tp_cpu_relax();
			else
				sched_yield();
			now = tp_mono_ns();
			continue;
		}
		iv_nap(sleep);
		if (sleep < IV_NAP_MAX_NS)
			sleep *= 2;
		now = tp_mono_ns();
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

		/*
		 * Shut down here: what is left unread is dropped, as a socket's
		 * shutdown drops it, and the daemon may soon reset the slot
		 * for its next guest (then the ring's words are not ours).
		 */
		if (__atomic_load_n(&c->shut, __ATOMIC_ACQUIRE) ||
		    __atomic_load_n(&c->slot->gen, __ATOMIC_ACQUIRE) != c->gen)
			return -ECONNRESET;
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
		return peer_gone(c, tp_mono_ns(), iv_dead_ns()) ? -ECONNRESET : -ETIMEDOUT;
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
	c->slot = iv_slot_at(map, g, k);
	c->size = g->ring_bytes;
	c->gen = gen;
	c->host = host;
	g2h = iv_ring_at(c->slot, g, 0);
	h2g = iv_ring_at(c->slot, g, 1);
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
	ret = iv_geom_compute(len, ring_bytes, &g);
	if (ret == 0 && k >= g.nslots)
		ret = -ERANGE;
	if (ret < 0)
		return ret;
	map = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (map == MAP_FAILED)
		return -errno;
	s = iv_slot_at(map, &g, k);
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

	if (n != TP_IVSHMEM_REF_SIZE || vg_load_le(ref + 4, 4) > UINT32_MAX)
		return -EINVAL;
	sent = vg_load_le(ref + 12, 8);
	received = vg_load_le(ref + 20, 8);
	ret = host_chan(fd, (uint32_t)vg_load_le(ref, 4), (uint32_t)vg_load_le(ref + 4, 4),
			(uint32_t)vg_load_le(ref + 8, 4), out);
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
	if (h->region_bytes > len || iv_geom_compute(h->region_bytes, h->ring_bytes, &want) < 0 ||
	    want.nslots != h->nslots || want.slot_bytes != h->slot_bytes)
		return -EPROTO;
	*g = want;
	return 0;
}

/* Claims a free slot and waits for the daemon to accept it. */
static int guest_claim(uint8_t *map, const struct iv_geom *g, uint32_t *slot, uint32_t *gen)
{
	struct iv_hdr *h = (struct iv_hdr *)map;
	uint64_t start = tp_mono_ns(), beat_at = start, beat = __atomic_load_n(&h->host_beat, __ATOMIC_RELAXED);
	struct iv_slot *s = NULL;
	uint32_t k, st;

	/* Slots that were just closed are free again after the daemon's next tick. */
	for (;;) {
		for (k = 0; k < g->nslots; k++) {
			s = iv_slot_at(map, g, k);
			st = IV_FREE;
			if (__atomic_compare_exchange_n(&s->state, &st, IV_CONNECTING, 0, __ATOMIC_SEQ_CST,
							__ATOMIC_SEQ_CST))
				break;
		}
		if (k < g->nslots)
			break;
		if (tp_mono_ns() - start > IV_NO_DAEMON_NS)
			return -EAGAIN;		/* every slot is in use */
		iv_nap(1000 * 1000);
	}
	*gen = __atomic_load_n(&s->gen, __ATOMIC_ACQUIRE);
	__atomic_store_n(&s->guest_pid, (uint32_t)getpid(), __ATOMIC_RELAXED);
	__atomic_fetch_add(&s->guest_beat, 1, __ATOMIC_RELAXED);
	for (;;) {
		uint64_t now = tp_mono_ns(), b;

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
		iv_nap(100 * 1000);
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
