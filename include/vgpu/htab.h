/*
 * A hash table from 64-bit keys to small records, used for handle tables on
 * both sides (guest: id -> type and data; worker: id -> real pointer and the
 * reverse).  Not thread-safe by itself: callers hold their own lock.
 */
#ifndef VGPU_HTAB_H
#define VGPU_HTAB_H

#include <stddef.h>
#include <stdint.h>

struct vg_hent {
	uint64_t key;		/* 0: empty slot; VG_HTAB_TOMB: deleted */
	uint64_t val;
	uint32_t type;
	void *data;
};

#define VG_HTAB_TOMB  UINT64_MAX

struct vg_htab {
	struct vg_hent *slots;
	size_t cap;		/* power of two */
	size_t used;		/* live entries */
	size_t filled;		/* live + tombstones */
};

void vg_htab_init(struct vg_htab *t);
void vg_htab_fini(struct vg_htab *t);
/* Keys 0 and VG_HTAB_TOMB are reserved. */
struct vg_hent *vg_htab_get(const struct vg_htab *t, uint64_t key);
/* Inserts or overwrites; returns the entry or NULL on allocation failure. */
struct vg_hent *vg_htab_put(struct vg_htab *t, uint64_t key, uint64_t val, uint32_t type, void *data);
/* Removes; returns 0, or -ENOENT. */
int vg_htab_del(struct vg_htab *t, uint64_t key);
/* Calls fn for every live entry (fn must not modify the table). */
void vg_htab_each(const struct vg_htab *t, void (*fn)(struct vg_hent *e, void *arg), void *arg);

#endif
