/*
 * Function and kernel attributes and occupancy answers, kept once asked
 * (llama.cpp asks for the same ones every token, PyTorch for occupancy on
 * every launch configuration).  Setting any function or kernel attribute or
 * a cache preference forgets them all: the host is asked again.
 */
#include <stdlib.h>

#include "lc.h"

struct attr_key {
	uint64_t id, smem;
	int attr, dev;
	unsigned int flags;
	int value;
};

static pthread_mutex_t attr_lock = PTHREAD_MUTEX_INITIALIZER;
static struct vg_htab attrs;	/* mixed key -> struct attr_key */
static uint64_t attr_gen;	/* bumped by every set call */

static uint64_t mix(const struct attr_key *q)
{
	uint64_t k = q->id * 0x9e3779b97f4a7c15ull ^ ((uint64_t)(uint32_t)q->attr << 32) ^ (uint32_t)q->dev;

	k ^= q->smem * 0xc2b2ae3d27d4eb4full ^ ((uint64_t)q->flags << 17);
	return k == 0 || k == VG_HTAB_TOMB ? 1 : k;
}

static int same(const struct attr_key *a, const struct attr_key *b)
{
	return a->id == b->id && a->smem == b->smem && a->attr == b->attr && a->dev == b->dev &&
	       a->flags == b->flags;
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
	case VG_FN_cuCtxSetCacheConfig:
	case VG_FN_cuCtxSetSharedMemConfig:
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

static int lookup(const struct attr_key *q, int *value)
{
	struct vg_hent *e;
	struct attr_key *k;
	int hit = 0;

	pthread_mutex_lock(&attr_lock);
	e = vg_htab_get(&attrs, mix(q));
	k = e ? e->data : NULL;
	if (k && same(k, q)) {
		*value = k->value;
		hit = 1;
	}
	pthread_mutex_unlock(&attr_lock);
	return hit;
}

static void remember(const struct attr_key *q, int value, uint64_t gen)
{
	struct attr_key *k = malloc(sizeof(*k));

	if (!k)
		return;
	*k = *q;
	k->value = value;
	pthread_mutex_lock(&attr_lock);
	/* A set call in between makes this answer stale; a colliding key keeps the first. */
	if (gen != attr_gen || vg_htab_get(&attrs, mix(q)) || !vg_htab_put(&attrs, mix(q), 0, 0, k)) {
		pthread_mutex_unlock(&attr_lock);
		free(k);
		return;
	}
	pthread_mutex_unlock(&attr_lock);
}

static CUresult get_attr(int fn, int *pi, const struct attr_key *q, const uint64_t *a)
{
	CUresult res = lc_check();
	uint64_t gen;

	if (res != CUDA_SUCCESS)
		return res;
	if (pi && lookup(q, pi))
		return CUDA_SUCCESS;
	pthread_mutex_lock(&attr_lock);
	gen = attr_gen;
	pthread_mutex_unlock(&attr_lock);
	res = lc_call(fn, a);
	if (res == CUDA_SUCCESS && pi)
		remember(q, *pi, gen);
	return res;
}

VG_EXPORT CUresult cuFuncGetAttribute(int *pi, CUfunction_attribute attrib, CUfunction hfunc)
{
	uint64_t a[3] = { (uint64_t)(uintptr_t)pi, (uint64_t)attrib, (uint64_t)(uintptr_t)hfunc };

	struct attr_key q = { .id = a[2], .attr = (int)attrib, .dev = -1 };

	return get_attr(VG_FN_cuFuncGetAttribute, pi, &q, a);
}

VG_EXPORT CUresult cuKernelGetAttribute(int *pi, CUfunction_attribute attrib, CUkernel kernel, CUdevice dev)
{
	uint64_t a[4] = { (uint64_t)(uintptr_t)pi, (uint64_t)attrib, (uint64_t)(uintptr_t)kernel,
			  (uint64_t)(int64_t)dev };

	struct attr_key q = { .id = a[2], .attr = (int)attrib, .dev = dev };

	return get_attr(VG_FN_cuKernelGetAttribute, pi, &q, a);
}

/*
 * Occupancy for a function, block size, shared memory and flags never
 * changes unless a function attribute does: kept like the attributes.
 */
static CUresult occupancy_blocks(int fn, int *numBlocks, CUfunction func, int blockSize, size_t smem,
				 unsigned int flags, const uint64_t *a)
{
	/* Attribute numbers from 0x10000 up stand for occupancy questions. */
	struct attr_key q = { .id = (uint64_t)(uintptr_t)func, .smem = smem, .attr = 0x10000,
			      .dev = blockSize, .flags = flags };

	return get_attr(fn, numBlocks, &q, a);
}

VG_EXPORT CUresult cuOccupancyMaxActiveBlocksPerMultiprocessor(int *numBlocks, CUfunction func, int blockSize,
							       size_t dynamicSMemSize)
{
	uint64_t a[4] = { (uint64_t)(uintptr_t)numBlocks, (uint64_t)(uintptr_t)func, (uint64_t)(int64_t)blockSize,
			  dynamicSMemSize };

	return occupancy_blocks(VG_FN_cuOccupancyMaxActiveBlocksPerMultiprocessor, numBlocks, func, blockSize,
				dynamicSMemSize, 0, a);
}

VG_EXPORT CUresult cuOccupancyMaxActiveBlocksPerMultiprocessorWithFlags(int *numBlocks, CUfunction func,
									int blockSize, size_t dynamicSMemSize,
									unsigned int flags)
{
	uint64_t a[5] = { (uint64_t)(uintptr_t)numBlocks, (uint64_t)(uintptr_t)func, (uint64_t)(int64_t)blockSize,
			  dynamicSMemSize, flags };

	return occupancy_blocks(VG_FN_cuOccupancyMaxActiveBlocksPerMultiprocessorWithFlags, numBlocks, func,
				blockSize, dynamicSMemSize, flags, a);
}
