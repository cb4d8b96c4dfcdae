/*
 * ivshmem regions, private to transport/ (ivshmem.c: the channels;
 * ivshmem_region.c: the daemon's side).  Byte streams through a memory
 * region shared by a VM and its host: the host maps a file (vgpud creates
 * it; QEMU or Cloud Hypervisor back the guest's ivshmem device with it), the
 * guest maps the device's BAR2 through sysfs (or, for tests, the same file).
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
 * IV_NAP_MAX_NS, so latency stays bounded.  A process's exit closes its
 * connections; a peer killed outright is noticed by its heartbeat: a thread
 * in each process bumps its side's word of every open slot every
 * IV_BEAT_NS; a word that stays still for VGPU_IVSHMEM_DEAD_MS (default
 * 10 s) means the peer is gone.
 *
 * Memory type: data is written with plain stores, then the index with a
 * sequentially consistent (locked) store; that order holds on
 * write-combining memory too (see README: the guest maps resource2_wc where
 * the kernel offers it).
 */
#ifndef VGPU_IVSHMEM_H
#define VGPU_IVSHMEM_H

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <time.h>

#include "tp.h"

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

/* At offset 0; written by the daemon (the guest only reads it). */
struct iv_hdr {
	char magic[8];			/*  0: "VGPUIVSH" */
	uint32_t version;		/*  8: IV_VERSION, stored last (0 while initialising) */
	uint32_t hdr_bytes;		/* 12: IV_HDR_BYTES, where slot 0 starts */
	uint32_t nslots;		/* 16 */
	uint32_t slot_bytes;		/* 20: a multiple of the page size */
	uint32_t ring_bytes;		/* 24: data bytes per ring, a power of two */
	uint32_t reserved;		/* 28 */
	uint64_t region_bytes;		/* 32: the file's size */
	uint64_t boot;			/* 40: differs for each daemon start */
	uint8_t pad0[16];
	uint64_t host_beat;		/* 64: the daemon's heartbeat (a guest sees it serve) */
};

/* At the start of each slot: who holds it, and both sides' heartbeats. */
struct iv_slot {
	uint32_t state;			/*  0: IV_FREE/CONNECTING/ACCEPTED | IV_CLOSED_G | IV_CLOSED_H */
	uint32_t gen;			/*  4: bumped by the daemon at each reuse */
	uint32_t guest_pid;		/*  8: the guest process (informational) */
	uint8_t pad0[52];
	uint64_t guest_beat;		/* 64: bumped by the guest every IV_BEAT_NS */
	uint8_t pad1[56];
	uint64_t host_beat;		/* 128: bumped by the worker every IV_BEAT_NS */
};

/* Each ring: free-running byte counters on cache lines of their own, then the data. */
struct iv_ring {
	uint64_t head;			/*  0: bytes written: the producer stores it */
	uint8_t pad0[56];
	uint64_t tail;			/* 64: bytes read: the consumer stores it */
};

_Static_assert(sizeof(struct iv_hdr) <= IV_HDR_BYTES, "header fits");
_Static_assert(sizeof(struct iv_slot) <= IV_CTL_BYTES, "slot control fits");
_Static_assert(sizeof(struct iv_ring) <= IV_RING_HDR, "ring header fits");

struct iv_geom {
	uint32_t nslots, slot_bytes, ring_bytes;
};


static inline void iv_nap(uint64_t ns)
{
	struct timespec ts = { (time_t)(ns / 1000000000ull), (long)(ns % 1000000000ull) };

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

static inline uint64_t iv_dead_ns(void)
{
	const char *e = getenv("VGPU_IVSHMEM_DEAD_MS");
	unsigned long ms = e && *e ? strtoul(e, NULL, 10) : 0;

	return (uint64_t)(ms ? ms : IV_DEAD_MS_DEFAULT) * 1000000ull;
}

static inline int iv_geom_compute(uint64_t region_bytes, uint32_t ring_bytes, struct iv_geom *g)
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

static inline struct iv_slot *iv_slot_at(uint8_t *map, const struct iv_geom *g, uint32_t k)
{
	return (struct iv_slot *)(map + IV_HDR_BYTES + (size_t)k * g->slot_bytes);
}

static inline struct iv_ring *iv_ring_at(struct iv_slot *s, const struct iv_geom *g, int h2g)
{
	return (struct iv_ring *)((uint8_t *)s + IV_CTL_BYTES + (h2g ? IV_RING_HDR + g->ring_bytes : 0));
}

#endif
