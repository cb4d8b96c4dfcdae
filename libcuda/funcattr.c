/*
 * Function and kernel attributes, occupancy answers, a kernel's function in
 * a context and parameter layouts, kept once asked (llama.cpp asks for the
 * same ones every token, PyTorch for occupancy on every launch
 * configuration, cudart for a kernel's function and its parameters on many
 * launches).  Setting any function or kernel attribute or a cache
 * preference forgets them all, and so does unloading a module or library or
 * ending a context (a later object may reuse a handle's value on the host):
 * the host is asked again.  Only successful answers are kept.
 */
#include <stdlib.h>

#include "lc.h"

struct attr_key {
	uint64_t id, smem, ctx;
	int attr, dev;
	unsigned int flags;
	uint64_t value[2];
};

/* attr numbers from 0x10000 up stand for other questions than attributes */
#define Q_OCCUPANCY   0x10000
#define Q_KERNEL_FUNC 0x20000	/* ctx: the current context */
#define Q_PARAM_FUNC  0x30000	/* smem: the parameter's index */
#define Q_PARAM_KERN  0x30001

static pthread_mutex_t attr_lock = PTHREAD_MUTEX_INITIALIZER;
static struct vg_htab attrs;	/* mixed key -> struct attr_key */
static uint64_t attr_gen;	/* bumped by every set call */

static uint64_t mix(const struct attr_key *q)
{
	uint64_t k = q->id * 0x9e3779b97f4a7c15ull ^ ((uint64_t)(uint32_t)q->attr << 32) ^ (uint32_t)q->dev;

	k ^= q->smem * 0xc2b2ae3d27d4eb4full ^ ((uint64_t)q->flags << 17) ^ q->ctx * 0x165667b19e3779f9ull;
	return k == 0 || k == VG_HTAB_TOMB ? 1 : k;
}

static int same(const struct attr_key *a, const struct attr_key *b)
{
	return a->id == b->id && a->smem == b->smem && a->ctx == b->ctx && a->attr == b->attr &&
	       a->dev == b->dev && a->flags == b->flags;
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
	case VG_FN_cuModuleUnload:
	case VG_FN_cuLibraryUnload:
	case VG_FN_cuCtxDestroy:
	case VG_FN_cuCtxDestroy_v2:
	case VG_FN_cuDevicePrimaryCtxRelease:
	case VG_FN_cuDevicePrimaryCtxRelease_v2:
	case VG_FN_cuDevicePrimaryCtxReset:
	case VG_FN_cuDevicePrimaryCtxReset_v2:
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

static int lookup(const struct attr_key *q, uint64_t *value)
{
	struct vg_hent *e;
	struct attr_key *k;
	int hit = 0;

	pthread_mutex_lock(&attr_lock);
	e = vg_htab_get(&attrs, mix(q));
	k = e ? e->data : NULL;
	if (k && same(k, q)) {
		value[0] = k->value[0];
		value[1] = k->value[1];
		hit = 1;
	}
	pthread_mutex_unlock(&attr_lock);
	return hit;
}

static void remember(const struct attr_key *q, const uint64_t *value, uint64_t gen)
{
	struct attr_key *k = malloc(sizeof(*k));

	if (!k)
		return;
	*k = *q;
	k->value[0] = value[0];
	k->value[1] = value[1];
	pthread_mutex_lock(&attr_lock);
	/* A set call in between makes this answer stale; a colliding key keeps the first. */
	if (gen != attr_gen || vg_htab_get(&attrs, mix(q)) || !vg_htab_put(&attrs, mix(q), 0, 0, k)) {
		pthread_mutex_unlock(&attr_lock);
		free(k);
		return;
	}
	pthread_mutex_unlock(&attr_lock);
}

/*
 * The answer to q: from what was kept, else from the host (the call fn with
 * arguments a), kept when it succeeded.  v holds the answer's one or two
 * words: cp copies between them and the caller's outputs (to: 1 into the
 * outputs).
 */
static CUresult ask(int fn, const struct attr_key *q, const uint64_t *a, int outputs,
		    void (*cp)(const uint64_t *a, uint64_t *v, int to))
{
	CUresult res = lc_check();
	uint64_t gen, v[2] = { 0, 0 };

	if (res != CUDA_SUCCESS)
		return res;
	/* With a sticky error known, the host answers: it returns that error. */
	if (outputs && lc_async_precheck() == CUDA_SUCCESS && lookup(q, v)) {
		cp(a, v, 1);
		return CUDA_SUCCESS;
	}
	pthread_mutex_lock(&attr_lock);
	gen = attr_gen;
	pthread_mutex_unlock(&attr_lock);
	res = lc_call(fn, a);
	if (res == CUDA_SUCCESS && outputs) {
		cp(a, v, 0);
		remember(q, v, gen);
	}
	return res;
}

/* a[0]: an int's address. */
static void cp_int(const uint64_t *a, uint64_t *v, int to)
{
	int *p = (int *)(uintptr_t)a[0];

	if (to)
		*p = (int)(int64_t)v[0];
	else
		v[0] = (uint64_t)(int64_t)*p;
}

static CUresult get_attr(int fn, int *pi, const struct attr_key *q, const uint64_t *a)
{
	return ask(fn, q, a, pi != NULL, cp_int);
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
	struct attr_key q = { .id = (uint64_t)(uintptr_t)func, .smem = smem, .attr = Q_OCCUPANCY,
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

/*
 * A kernel's function in the current context: the host gives the same
 * handle for the same kernel and context until one of them ends.  Without a
 * context known to be current the host is asked every time.
 */
static void cp_handle(const uint64_t *a, uint64_t *v, int to)
{
	void **p = (void **)(uintptr_t)a[0];

	if (to)
		*p = (void *)(uintptr_t)v[0];
	else
		v[0] = (uint64_t)(uintptr_t)*p;
}

VG_EXPORT CUresult cuKernelGetFunction(CUfunction *pFunc, CUkernel kernel)
{
	uint64_t a[2] = { (uint64_t)(uintptr_t)pFunc, (uint64_t)(uintptr_t)kernel };
	struct attr_key q = { .id = a[1], .attr = Q_KERNEL_FUNC, .dev = -1 };
	int known = lc_ctx_current_known(&q.ctx);

	return ask(VG_FN_cuKernelGetFunction, &q, a, pFunc && kernel && known && q.ctx, cp_handle);
}

/* A parameter's offset and size: fixed for the function's or kernel's life. */
static void cp_param(const uint64_t *a, uint64_t *v, int to)
{
	size_t *off = (size_t *)(uintptr_t)a[2], *size = (size_t *)(uintptr_t)a[3];

	if (to) {
		if (off)
			*off = (size_t)v[0];
		if (size)
			*size = (size_t)v[1];
	} else {
		v[0] = off ? *off : 0;
		v[1] = size ? *size : 0;
	}
}

/* A function's or kernel's parameter (fn, which): kept only when both outputs were asked for. */
static CUresult param_info(int fn, int which, const void *h, size_t index, size_t *off, size_t *size)
{
	uint64_t a[4] = { (uint64_t)(uintptr_t)h, index, (uint64_t)(uintptr_t)off, (uint64_t)(uintptr_t)size };
	struct attr_key q = { .id = a[0], .smem = index, .attr = which, .dev = -1 };

	return ask(fn, &q, a, h && off && size, cp_param);
}

VG_EXPORT CUresult cuFuncGetParamInfo(CUfunction func, size_t paramIndex, size_t *paramOffset,
				      size_t *paramSize)
{
	return param_info(VG_FN_cuFuncGetParamInfo, Q_PARAM_FUNC, func, paramIndex, paramOffset, paramSize);
}

VG_EXPORT CUresult cuKernelGetParamInfo(CUkernel kernel, size_t paramIndex, size_t *paramOffset,
					size_t *paramSize)
{
	return param_info(VG_FN_cuKernelGetParamInfo, Q_PARAM_KERN, kernel, paramIndex, paramOffset,
			  paramSize);
}
