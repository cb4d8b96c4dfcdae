/*
 * Function and kernel attributes, kept once asked (llama.cpp asks for the
 * same ones every token).  Setting any function or kernel attribute or cache
 * preference forgets them all: the host is asked again.
 */
#include <stdlib.h>

#include "lc.h"

struct attr_key {
	uint64_t id;
	int attr, dev;
	int value;
};

static pthread_mutex_t attr_lock = PTHREAD_MUTEX_INITIALIZER;
static struct vg_htab attrs;	/* mixed key -> struct attr_key */
static uint64_t attr_gen;	/* bumped by every set call */

static uint64_t mix(uint64_t id, int attr, int dev)
{
	uint64_t k = id * 0x9e3779b97f4a7c15ull ^ ((uint64_t)(uint32_t)attr << 32) ^ (uint32_t)dev;

	return k == 0 || k == VG_HTAB_TOMB ? 1 : k;
}

static void free_entry(struct vg_hent *e, void *arg)
{
	(void)arg;
	free(e->data);
}

void lc_funcattr_forget(int fn);
void lc_funcattr_forget(int fn)
{
	switch (fn) {
	case VG_FN_cuFuncSetAttribute:
	case VG_FN_cuFuncSetCacheConfig:
	case VG_FN_cuFuncSetSharedMemConfig:
	case VG_FN_cuKernelSetAttribute:
	case VG_FN_cuKernelSetCacheConfig:
		pthread_mutex_lock(&attr_lock);
		vg_htab_each(&attrs, free_entry, NULL);
		vg_htab_fini(&attrs);
		attr_gen++;
		pthread_mutex_unlock(&attr_lock);
		break;
	default:
		break;
	}
}

static int lookup(uint64_t id, int attr, int dev, int *value)
{
	struct vg_hent *e;
	struct attr_key *k;
	int hit = 0;

	pthread_mutex_lock(&attr_lock);
	e = vg_htab_get(&attrs, mix(id, attr, dev));
	k = e ? e->data : NULL;
	if (k && k->id == id && k->attr == attr && k->dev == dev) {
		*value = k->value;
		hit = 1;
	}
	pthread_mutex_unlock(&attr_lock);
	return hit;
}

static void remember(uint64_t id, int attr, int dev, int value, uint64_t gen)
{
	struct attr_key *k = malloc(sizeof(*k));
	struct vg_hent *e;

	if (!k)
		return;
	k->id = id;
	k->attr = attr;
	k->dev = dev;
	k->value = value;
	pthread_mutex_lock(&attr_lock);
	/* A set call in between makes this answer stale: drop it. */
	if (gen != attr_gen || vg_htab_get(&attrs, mix(id, attr, dev)) ||
	    !(e = vg_htab_put(&attrs, mix(id, attr, dev), 0, 0, k))) {
		pthread_mutex_unlock(&attr_lock);
		free(k);
		return;
	}
	pthread_mutex_unlock(&attr_lock);
}

static CUresult get_attr(int fn, int *pi, int attrib, uint64_t id, int dev, const uint64_t *a)
{
	CUresult res = lc_check();
	uint64_t gen;

	if (res != CUDA_SUCCESS)
		return res;
	if (pi && lookup(id, attrib, dev, pi))
		return CUDA_SUCCESS;
	pthread_mutex_lock(&attr_lock);
	gen = attr_gen;
	pthread_mutex_unlock(&attr_lock);
	res = lc_call(fn, a);
	if (res == CUDA_SUCCESS && pi)
		remember(id, attrib, dev, *pi, gen);
	return res;
}

VG_EXPORT CUresult cuFuncGetAttribute(int *pi, CUfunction_attribute attrib, CUfunction hfunc)
{
	uint64_t a[3] = { (uint64_t)(uintptr_t)pi, (uint64_t)attrib, (uint64_t)(uintptr_t)hfunc };

	return get_attr(VG_FN_cuFuncGetAttribute, pi, (int)attrib, a[2], -1, a);
}

VG_EXPORT CUresult cuKernelGetAttribute(int *pi, CUfunction_attribute attrib, CUkernel kernel, CUdevice dev)
{
	uint64_t a[4] = { (uint64_t)(uintptr_t)pi, (uint64_t)attrib, (uint64_t)(uintptr_t)kernel,
			  (uint64_t)(int64_t)dev };

	return get_attr(VG_FN_cuKernelGetAttribute, pi, (int)attrib, a[2], dev, a);
}
