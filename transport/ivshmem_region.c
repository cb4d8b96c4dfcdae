/*
 * ivshmem regions, the daemon's side: the file, its header, handing out
 * slots guests claimed and freeing them when both sides are done.  The
 * layout: ivshmem.h.
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

/* ---- the host: the daemon's region ------------------------------------- */

static void slot_reset(struct tp_ivshmem *r, uint32_t k)
{
	struct iv_slot *s = iv_slot_at(r->map, &r->g, k);
	struct iv_ring *a = iv_ring_at(s, &r->g, 0), *b = iv_ring_at(s, &r->g, 1);

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
	ret = iv_geom_compute(size, ring_bytes, &r->g);
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
	h->boot = tp_mono_ns() ^ ((uint64_t)getpid() << 32);
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
		__atomic_fetch_or(&iv_slot_at(r->map, &r->g, k)->state, IV_CLOSED_H, __ATOMIC_SEQ_CST);
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
	uint64_t now = tp_mono_ns(), limit = iv_dead_ns();
	uint32_t k;

	if (now - r->beat_at >= IV_BEAT_NS / 2) {
		__atomic_fetch_add(&h->host_beat, 1, __ATOMIC_RELAXED);
		r->beat_at = now;
	}
	for (k = 0; k < r->g.nslots; k++) {
		struct iv_slot *s = iv_slot_at(r->map, &r->g, k);
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
	s = iv_slot_at(r->map, &r->g, k);
	__atomic_fetch_or(&s->state, IV_CLOSED_H, __ATOMIC_SEQ_CST);
	r->slots[k].draining = 1;
	r->slots[k].guest_beat = __atomic_load_n(&s->guest_beat, __ATOMIC_RELAXED);
	r->slots[k].seen_at = tp_mono_ns();
}

void tp_ivshmem_slot_adopted(struct tp_ivshmem *r, uint32_t k)
{
	struct iv_slot *s;

	if (k >= r->g.nslots || !r->slots[k].busy || r->slots[k].draining)
		return;
	s = iv_slot_at(r->map, &r->g, k);
	r->slots[k].adopted = 1;
	r->slots[k].host_beat = __atomic_load_n(&s->host_beat, __ATOMIC_RELAXED);
	r->slots[k].seen_at = tp_mono_ns();
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
