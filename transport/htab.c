/* Open-addressing hash table with linear probing and tombstones. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "vgpu/htab.h"

static size_t htab_hash(uint64_t k)
{
	k ^= k >> 33;
	k *= 0xff51afd7ed558ccdull;
	k ^= k >> 33;
	k *= 0xc4ceb9fe1a85ec53ull;
	k ^= k >> 33;
	return (size_t)k;
}

void vg_htab_init(struct vg_htab *t)
{
	memset(t, 0, sizeof(*t));
}

void vg_htab_fini(struct vg_htab *t)
{
	free(t->slots);
	memset(t, 0, sizeof(*t));
}

struct vg_hent *vg_htab_get(const struct vg_htab *t, uint64_t key)
{
	size_t i, n;

	if (!t->cap || key == 0 || key == VG_HTAB_TOMB)
		return NULL;
	i = htab_hash(key) & (t->cap - 1);
	for (n = 0; n < t->cap; n++, i = (i + 1) & (t->cap - 1)) {
		struct vg_hent *e = &t->slots[i];

		if (e->key == key)
			return e;
		if (e->key == 0)
			return NULL;
	}
	return NULL;
}

static int htab_grow(struct vg_htab *t)
{
	size_t ncap = t->cap ? t->cap * 2 : 64, i;
	struct vg_hent *old = t->slots, *ns;

	/* Rehash in place of growing when most of the fill is tombstones. */
	if (t->cap && t->used * 4 < t->cap)
		ncap = t->cap;
	ns = calloc(ncap, sizeof(*ns));
	if (!ns)
		return -ENOMEM;
	for (i = 0; i < t->cap; i++) {
		size_t j;

		if (old[i].key == 0 || old[i].key == VG_HTAB_TOMB)
			continue;
		j = htab_hash(old[i].key) & (ncap - 1);
		while (ns[j].key)
			j = (j + 1) & (ncap - 1);
		ns[j] = old[i];
	}
	free(old);
	t->slots = ns;
	t->cap = ncap;
	t->filled = t->used;
	return 0;
}

struct vg_hent *vg_htab_put(struct vg_htab *t, uint64_t key, uint64_t val, uint32_t type, void *data)
{
	struct vg_hent *e;
	size_t i;

	if (key == 0 || key == VG_HTAB_TOMB)
		return NULL;
	e = vg_htab_get(t, key);
	if (!e) {
		if ((t->filled + 1) * 4 >= t->cap * 3 && htab_grow(t) < 0)
			return NULL;
		i = htab_hash(key) & (t->cap - 1);
		while (t->slots[i].key && t->slots[i].key != VG_HTAB_TOMB)
			i = (i + 1) & (t->cap - 1);
		e = &t->slots[i];
		if (e->key == 0)
			t->filled++;
		t->used++;
		e->key = key;
	}
	e->val = val;
	e->type = type;
	e->data = data;
	return e;
}

int vg_htab_del(struct vg_htab *t, uint64_t key)
{
	struct vg_hent *e = vg_htab_get(t, key);

	if (!e)
		return -ENOENT;
	e->key = VG_HTAB_TOMB;
	e->data = NULL;
	t->used--;
	return 0;
}

void vg_htab_each(const struct vg_htab *t, void (*fn)(struct vg_hent *e, void *arg), void *arg)
{
	size_t i;

	for (i = 0; i < t->cap; i++)
		if (t->slots[i].key && t->slots[i].key != VG_HTAB_TOMB)
			fn(&t->slots[i], arg);
}
