/* SPDX-License-Identifier: MIT */
/*
 * Contexts: created ones, the primary context of each device, and the
 * per-thread stack of current contexts.
 */
#include <stdlib.h>

#include "td.h"

/* The calling thread's context stack; entries may be NULL (SetCurrent(NULL)). */
static __thread struct td_ctx *td_stack[TD_CTX_STACK_MAX];
static __thread int td_depth;

int td_ctx_live_locked(const struct td_ctx *c)
{
	const struct td_ctx *x;

	for (x = td.ctxs; x; x = x->next)
		if (x == c)
			return 1;
	return 0;
}

/*
 * The primary context keeps its handle across release and retain: its
 * structure is made once and re-entered into the live list on activation.
 */
static struct td_ctx *td_primary_structs[TD_DEV_COUNT];

static void td_ctx_reset(struct td_ctx *c, int dev, unsigned flags, int primary);

/*
 * An inactive primary context made current is activated, without a
 * reference: cudart obtains the handle unretained (CUDART_INTERFACE slot 2,
 * see research/cudart-driver-contract.md) and then simply makes it current
 * and uses it, as NVIDIA's driver allows.  It stays active until reset.
 * Returns whether c is (now) live.  td.lock held.
 */
static int td_ctx_activate_locked(struct td_ctx *c)
{
	int i;

	if (td_ctx_live_locked(c))
		return 1;
	for (i = 0; i < TD_DEV_COUNT; i++) {
		if (td_primary_structs[i] == c && !td.dev[i].primary) {
			td_ctx_reset(c, i, td.dev[i].primary_flags, 1);
			td.dev[i].primary = c;
			td.dev[i].primary_implicit = 1;
			return 1;
		}
	}
	return 0;
}

/* Was c a context once (destroyed, or an inactive primary context)? */
static int td_ctx_dead_locked(const struct td_ctx *c)
{
	const struct td_ctx *x;
	int i;

	for (x = td.dead_ctxs; x; x = x->next)
		if (x == c)
			return 1;
	for (i = 0; i < TD_DEV_COUNT; i++)
		if (td_primary_structs[i] == c)
			return 1;
	return 0;
}

struct td_ctx *td_ctx_current(void)
{
	return td_depth ? td_stack[td_depth - 1] : NULL;
}

/* The current context, live; its sticky error is not checked. */
CUresult td_ctx_get_any(struct td_ctx **out)
{
	CUresult res = td_check_init();
	struct td_ctx *c = td_ctx_current();

	if (res != CUDA_SUCCESS)
		return res;
	if (!c)
		return CUDA_ERROR_INVALID_CONTEXT;
	td_lock();
	if (!td_ctx_live_locked(c))
		res = td_ctx_dead_locked(c) ? CUDA_ERROR_CONTEXT_IS_DESTROYED :
					      CUDA_ERROR_INVALID_CONTEXT;
	td_unlock();
	if (res == CUDA_SUCCESS)
		*out = c;
	return res;
}

/* The current context, live and without a sticky error. */
CUresult td_ctx_get(struct td_ctx **out)
{
	CUresult res = td_ctx_get_any(out);

	if (res == CUDA_SUCCESS && (*out)->sticky)
		res = (*out)->sticky;
	return res;
}

static const size_t td_limit_defaults[CU_LIMIT_MAX] = {
	[CU_LIMIT_STACK_SIZE] = 1024,
	[CU_LIMIT_PRINTF_FIFO_SIZE] = 1 << 20,
	[CU_LIMIT_MALLOC_HEAP_SIZE] = 8 << 20,
	[CU_LIMIT_DEV_RUNTIME_SYNC_DEPTH] = 2,
	[CU_LIMIT_DEV_RUNTIME_PENDING_LAUNCH_COUNT] = 2048,
	[CU_LIMIT_MAX_L2_FETCH_GRANULARITY] = 64,
	[CU_LIMIT_PERSISTING_L2_CACHE_SIZE] = 0,
	[CU_LIMIT_SHMEM_SIZE] = 0,
	[CU_LIMIT_CIG_ENABLED] = 0,
	[CU_LIMIT_CIG_SHMEM_FALLBACK_ENABLED] = 0,
};

static void td_ctx_reset(struct td_ctx *c, int dev, unsigned flags, int primary)
{
	int i;

	c->magic = TD_MAGIC_CTX;
	c->dev = dev;
	c->flags = flags;
	c->primary = primary;
	c->sticky = CUDA_SUCCESS;
	c->id = td.next_id++;
	for (i = 0; i < CU_LIMIT_MAX; i++)
		c->limits[i] = td_limit_defaults[i];
	c->cache_config = CU_FUNC_CACHE_PREFER_NONE;
	c->legacy = NULL;
	c->streams = NULL;
	c->events = NULL;
	c->modules = NULL;
	c->next = td.ctxs;
	td.ctxs = c;
	td.live_ctxs++;
}

/* Called with td.lock held; the context is live on return. */
struct td_ctx *td_ctx_new(int dev, unsigned flags, int primary)
{
	struct td_ctx *c = calloc(1, sizeof(*c));

	if (c)
		td_ctx_reset(c, dev, flags, primary);
	return c;
}

static void td_ctx_unlink_locked(struct td_ctx *c)
{
	struct td_ctx **pp;

	for (pp = &td.ctxs; *pp; pp = &(*pp)->next) {
		if (*pp == c) {
			*pp = c->next;
			c->next = NULL;
			td.live_ctxs--;
			return;
		}
	}
}

/*
 * Everything the context owns goes with it, after its work has finished.
 * The context is already out of the live list, so no new work can reach it.
 */
void td_ctx_teardown(struct td_ctx *c)
{
	td_streams_teardown(c);
	td_modules_teardown(c);
	td_alloc_release_ctx(c);
}

static CUresult td_push(struct td_ctx *c)
{
	if (td_depth == TD_CTX_STACK_MAX)
		return CUDA_ERROR_OUT_OF_MEMORY;
	td_stack[td_depth++] = c;
	return CUDA_SUCCESS;
}

static CUresult td_flags_check(unsigned flags)
{
	if (flags & ~(unsigned)CU_CTX_FLAGS_MASK)
		return CUDA_ERROR_INVALID_VALUE;
	/* At most one scheduling policy. */
	if ((flags & CU_CTX_SCHED_MASK) > CU_CTX_SCHED_BLOCKING_SYNC)
		return CUDA_ERROR_INVALID_VALUE;
	return CUDA_SUCCESS;
}

TD_EXPORT CUresult cuCtxCreate_v2(CUcontext *pctx, unsigned int flags, CUdevice dev)
{
	CUresult res = td_check_init();
	struct td_ctx *c;

	if (res != CUDA_SUCCESS)
		return res;
	if (!pctx)
		return CUDA_ERROR_INVALID_VALUE;
	if (dev < 0 || dev >= TD_DEV_COUNT)
		return CUDA_ERROR_INVALID_DEVICE;
	res = td_flags_check(flags);
	if (res != CUDA_SUCCESS)
		return res;
	if (td_depth == TD_CTX_STACK_MAX)
		return CUDA_ERROR_OUT_OF_MEMORY;
	td_lock();
	c = td_ctx_new(dev, flags, 0);
	td_unlock();
	if (!c)
		return CUDA_ERROR_OUT_OF_MEMORY;
	td_push(c);
	*pctx = (CUcontext)c;
	return CUDA_SUCCESS;
}

/* cuda.h 11.4-12's cuCtxCreate (Ollama's discovery calls it): no execution
 * affinity on a CPU. */
TD_EXPORT CUresult cuCtxCreate_v3(CUcontext *pctx, CUexecAffinityParam *paramsArray,
				  int numParams, unsigned int flags, CUdevice dev)
{
	if (numParams < 0 || (numParams > 0 && !paramsArray))
		return CUDA_ERROR_INVALID_VALUE;
	if (numParams > 0)
		return CUDA_ERROR_NOT_SUPPORTED;
	return cuCtxCreate_v2(pctx, flags, dev);
}

/* cuda.h 13's cuCtxCreate: no affinity or CIG parameters on a CPU. */
TD_EXPORT CUresult cuCtxCreate_v4(CUcontext *pctx, CUctxCreateParams *ctxCreateParams,
				  unsigned int flags, CUdevice dev)
{
	if (ctxCreateParams && (ctxCreateParams->execAffinityParams ||
				ctxCreateParams->numExecAffinityParams || ctxCreateParams->cigParams))
		return CUDA_ERROR_NOT_SUPPORTED;
	return cuCtxCreate_v2(pctx, flags, dev);
}

TD_EXPORT CUresult cuCtxDestroy_v2(CUcontext ctx)
{
	CUresult res = td_check_init();
	struct td_ctx *c = (struct td_ctx *)ctx;
	int i;

	if (res != CUDA_SUCCESS)
		return res;
	if (!c)
		return CUDA_ERROR_INVALID_VALUE;
	td_lock();
	if (!td_ctx_live_locked(c))
		res = td_ctx_dead_locked(c) ? CUDA_ERROR_CONTEXT_IS_DESTROYED :
					      CUDA_ERROR_INVALID_CONTEXT;
	else if (c->primary)
		res = CUDA_ERROR_INVALID_CONTEXT;
	else
		td_ctx_unlink_locked(c);
	td_unlock();
	if (res != CUDA_SUCCESS)
		return res;
	td_ctx_teardown(c);
	td_lock();
	c->magic = 0;
	c->next = td.dead_ctxs;
	td.dead_ctxs = c;
	td_unlock();
	/* The calling thread no longer has it current (others find it dead). */
	for (i = td_depth - 1; i >= 0; i--) {
		if (td_stack[i] == c) {
			for (; i < td_depth - 1; i++)
				td_stack[i] = td_stack[i + 1];
			td_depth--;
			break;
		}
	}
	return CUDA_SUCCESS;
}

TD_EXPORT CUresult cuCtxPushCurrent_v2(CUcontext ctx)
{
	CUresult res = td_check_init();
	struct td_ctx *c = (struct td_ctx *)ctx;

	if (res != CUDA_SUCCESS)
		return res;
	if (!c)
		return CUDA_ERROR_INVALID_CONTEXT;
	td_lock();
	if (!td_ctx_activate_locked(c))
		res = CUDA_ERROR_INVALID_CONTEXT;
	td_unlock();
	if (res != CUDA_SUCCESS)
		return res;
	return td_push(c);
}

TD_EXPORT CUresult cuCtxPopCurrent_v2(CUcontext *pctx)
{
	CUresult res = td_check_init();

	if (res != CUDA_SUCCESS)
		return res;
	if (!td_depth || !td_stack[td_depth - 1])
		return CUDA_ERROR_INVALID_CONTEXT;
	td_depth--;
	if (pctx)
		*pctx = (CUcontext)td_stack[td_depth];
	return CUDA_SUCCESS;
}

TD_EXPORT CUresult cuCtxGetCurrent(CUcontext *pctx)
{
	CUresult res = td_check_init();

	if (res != CUDA_SUCCESS)
		return res;
	if (!pctx)
		return CUDA_ERROR_INVALID_VALUE;
	*pctx = (CUcontext)td_ctx_current();
	return CUDA_SUCCESS;
}

/* Replaces the top of the stack (pushes onto an empty one). */
TD_EXPORT CUresult cuCtxSetCurrent(CUcontext ctx)
{
	CUresult res = td_check_init();
	struct td_ctx *c = (struct td_ctx *)ctx;

	if (res != CUDA_SUCCESS)
		return res;
	if (c) {
		td_lock();
		if (!td_ctx_activate_locked(c))
			res = CUDA_ERROR_INVALID_CONTEXT;
		td_unlock();
		if (res != CUDA_SUCCESS)
			return res;
	}
	if (!td_depth) {
		if (c)
			td_stack[td_depth++] = c;
		return CUDA_SUCCESS;
	}
	td_stack[td_depth - 1] = c;
	return CUDA_SUCCESS;
}

TD_EXPORT CUresult cuCtxSynchronize(void)
{
	struct td_ctx *c;
	CUresult res = td_ctx_get(&c);

	if (res != CUDA_SUCCESS)
		return res;
	return td_ctx_sync(c);
}

TD_EXPORT CUresult cuCtxGetDevice(CUdevice *device)
{
	struct td_ctx *c;
	CUresult res = td_ctx_get_any(&c);

	if (res != CUDA_SUCCESS)
		return res;
	if (!device)
		return CUDA_ERROR_INVALID_VALUE;
	*device = c->dev;
	return CUDA_SUCCESS;
}

TD_EXPORT CUresult cuCtxGetFlags(unsigned int *flags)
{
	struct td_ctx *c;
	CUresult res = td_ctx_get_any(&c);

	if (res != CUDA_SUCCESS)
		return res;
	if (!flags)
		return CUDA_ERROR_INVALID_VALUE;
	*flags = c->flags;
	return CUDA_SUCCESS;
}

TD_EXPORT CUresult cuCtxSetFlags(unsigned int flags)
{
	struct td_ctx *c;
	CUresult res = td_ctx_get(&c);

	if (res != CUDA_SUCCESS)
		return res;
	res = td_flags_check(flags);
	if (res == CUDA_SUCCESS)
		c->flags = flags;
	return res;
}

/* A context argument: NULL means the current one. */
static CUresult td_ctx_arg(CUcontext ctx, struct td_ctx **out)
{
	CUresult res = td_check_init();
	struct td_ctx *c = (struct td_ctx *)ctx;

	if (res != CUDA_SUCCESS)
		return res;
	if (!c)
		return td_ctx_get_any(out);
	td_lock();
	if (!td_ctx_live_locked(c))
		res = td_ctx_dead_locked(c) ? CUDA_ERROR_CONTEXT_IS_DESTROYED :
					      CUDA_ERROR_INVALID_CONTEXT;
	td_unlock();
	if (res == CUDA_SUCCESS)
		*out = c;
	return res;
}

/* CUDA 13: the device of a given context (NULL: the current one). */
TD_EXPORT CUresult cuCtxGetDevice_v2(CUdevice *device, CUcontext ctx)
{
	struct td_ctx *c;
	CUresult res = td_ctx_arg(ctx, &c);

	if (res != CUDA_SUCCESS)
		return res;
	if (!device)
		return CUDA_ERROR_INVALID_VALUE;
	*device = c->dev;
	return CUDA_SUCCESS;
}

TD_EXPORT CUresult cuCtxSynchronize_v2(CUcontext ctx)
{
	struct td_ctx *c;
	CUresult res = td_ctx_arg(ctx, &c);

	if (res != CUDA_SUCCESS)
		return res;
	if (c->sticky)
		return c->sticky;
	return td_ctx_sync(c);
}

/* Contexts made through the _v2 entry points report API version 3020. */
TD_EXPORT CUresult cuCtxGetApiVersion(CUcontext ctx, unsigned int *version)
{
	struct td_ctx *c;
	CUresult res = td_ctx_arg(ctx, &c);

	if (res != CUDA_SUCCESS)
		return res;
	if (!version)
		return CUDA_ERROR_INVALID_VALUE;
	*version = 3020;
	return CUDA_SUCCESS;
}

TD_EXPORT CUresult cuCtxGetId(CUcontext ctx, unsigned long long *ctxId)
{
	struct td_ctx *c;
	CUresult res = td_ctx_arg(ctx, &c);

	if (res != CUDA_SUCCESS)
		return res;
	if (!ctxId)
		return CUDA_ERROR_INVALID_VALUE;
	*ctxId = c->id;
	return CUDA_SUCCESS;
}

TD_EXPORT CUresult cuCtxGetLimit(size_t *pvalue, CUlimit limit)
{
	struct td_ctx *c;
	CUresult res = td_ctx_get(&c);

	if (res != CUDA_SUCCESS)
		return res;
	if (!pvalue || (unsigned)limit >= CU_LIMIT_MAX)
		return CUDA_ERROR_INVALID_VALUE;
	td_lock();
	*pvalue = c->limits[limit];
	td_unlock();
	return CUDA_SUCCESS;
}

TD_EXPORT CUresult cuCtxSetLimit(CUlimit limit, size_t value)
{
	struct td_ctx *c;
	CUresult res = td_ctx_get(&c);

	if (res != CUDA_SUCCESS)
		return res;
	if ((unsigned)limit >= CU_LIMIT_MAX)
		return CUDA_ERROR_INVALID_VALUE;
	/* The stack size is kept in 16-byte granules, as on the GPU. */
	if (limit == CU_LIMIT_STACK_SIZE)
		value = (value + 15) & ~(size_t)15;
	td_lock();
	c->limits[limit] = value;
	td_unlock();
	return CUDA_SUCCESS;
}

/* Lower numbers are higher priorities: 0 least, -5 greatest. */
TD_EXPORT CUresult cuCtxGetStreamPriorityRange(int *leastPriority, int *greatestPriority)
{
	struct td_ctx *c;
	CUresult res = td_ctx_get(&c);

	if (res != CUDA_SUCCESS)
		return res;
	if (leastPriority)
		*leastPriority = 0;
	if (greatestPriority)
		*greatestPriority = -5;
	return CUDA_SUCCESS;
}

TD_EXPORT CUresult cuCtxGetCacheConfig(CUfunc_cache *pconfig)
{
	struct td_ctx *c;
	CUresult res = td_ctx_get(&c);

	if (res != CUDA_SUCCESS)
		return res;
	if (!pconfig)
		return CUDA_ERROR_INVALID_VALUE;
	*pconfig = (CUfunc_cache)c->cache_config;
	return CUDA_SUCCESS;
}

TD_EXPORT CUresult cuCtxSetCacheConfig(CUfunc_cache config)
{
	struct td_ctx *c;
	CUresult res = td_ctx_get(&c);

	if (res != CUDA_SUCCESS)
		return res;
	if ((unsigned)config > CU_FUNC_CACHE_PREFER_EQUAL)
		return CUDA_ERROR_INVALID_VALUE;
	c->cache_config = (int)config;
	return CUDA_SUCCESS;
}

/* ---- primary contexts -------------------------------------------------- */

static CUresult td_primary_dev(CUdevice dev)
{
	CUresult res = td_check_init();

	if (res != CUDA_SUCCESS)
		return res;
	if (dev < 0 || dev >= TD_DEV_COUNT)
		return CUDA_ERROR_INVALID_DEVICE;
	return CUDA_SUCCESS;
}

TD_EXPORT CUresult cuDevicePrimaryCtxRetain(CUcontext *pctx, CUdevice dev)
{
	CUresult res = td_primary_dev(dev);
	struct td_device *d;

	if (res != CUDA_SUCCESS)
		return res;
	if (!pctx)
		return CUDA_ERROR_INVALID_VALUE;
	td_lock();
	d = &td.dev[dev];
	if (!d->primary) {
		struct td_ctx *c = td_primary_structs[dev];

		if (!c)
			c = td_primary_structs[dev] = calloc(1, sizeof(*c));
		if (!c) {
			td_unlock();
			return CUDA_ERROR_OUT_OF_MEMORY;
		}
		td_ctx_reset(c, dev, d->primary_flags, 1);
		d->primary = c;
	}
	d->primary_refs++;
	*pctx = (CUcontext)d->primary;
	td_unlock();
	return CUDA_SUCCESS;
}

static void td_primary_deactivate(int dev)
{
	struct td_ctx *c;

	td_lock();
	c = td.dev[dev].primary;
	td.dev[dev].primary = NULL;
	td.dev[dev].primary_refs = 0;
	td.dev[dev].primary_implicit = 0;
	if (c)
		td_ctx_unlink_locked(c);
	td_unlock();
	if (c)
		td_ctx_teardown(c);
}

TD_EXPORT CUresult cuDevicePrimaryCtxRelease_v2(CUdevice dev)
{
	CUresult res = td_primary_dev(dev);
	int last = 0;

	if (res != CUDA_SUCCESS)
		return res;
	td_lock();
	if (!td.dev[dev].primary_refs)
		res = CUDA_ERROR_INVALID_CONTEXT;
	else
		last = --td.dev[dev].primary_refs == 0 && !td.dev[dev].primary_implicit;
	td_unlock();
	if (last)
		td_primary_deactivate(dev);
	return res;
}

TD_EXPORT CUresult cuDevicePrimaryCtxReset_v2(CUdevice dev)
{
	CUresult res = td_primary_dev(dev);

	if (res != CUDA_SUCCESS)
		return res;
	td_primary_deactivate(dev);
	td_lock();
	td.dev[dev].primary_flags = 0;
	td_unlock();
	return CUDA_SUCCESS;
}

TD_EXPORT CUresult cuDevicePrimaryCtxGetState(CUdevice dev, unsigned int *flags, int *active)
{
	CUresult res = td_primary_dev(dev);

	if (res != CUDA_SUCCESS)
		return res;
	if (!flags || !active)
		return CUDA_ERROR_INVALID_VALUE;
	td_lock();
	*flags = td.dev[dev].primary_flags;
	*active = td.dev[dev].primary != NULL;
	td_unlock();
	return CUDA_SUCCESS;
}

/* Newer drivers accept new flags while the context is active; so do we. */
TD_EXPORT CUresult cuDevicePrimaryCtxSetFlags_v2(CUdevice dev, unsigned int flags)
{
	CUresult res = td_primary_dev(dev);

	if (res != CUDA_SUCCESS)
		return res;
	res = td_flags_check(flags);
	if (res != CUDA_SUCCESS)
		return res;
	td_lock();
	td.dev[dev].primary_flags = flags;
	if (td.dev[dev].primary)
		td.dev[dev].primary->flags = flags;
	td_unlock();
	return CUDA_SUCCESS;
}

/* ---- the unversioned names: same arguments, same behaviour here ---------- */

TD_EXPORT CUresult cuCtxDestroy(CUcontext ctx)
{
	return cuCtxDestroy_v2(ctx);
}

TD_EXPORT CUresult cuCtxPushCurrent(CUcontext ctx)
{
	return cuCtxPushCurrent_v2(ctx);
}

TD_EXPORT CUresult cuCtxPopCurrent(CUcontext *pctx)
{
	return cuCtxPopCurrent_v2(pctx);
}

TD_EXPORT CUresult cuDevicePrimaryCtxRelease(CUdevice dev)
{
	return cuDevicePrimaryCtxRelease_v2(dev);
}

TD_EXPORT CUresult cuDevicePrimaryCtxReset(CUdevice dev)
{
	return cuDevicePrimaryCtxReset_v2(dev);
}

TD_EXPORT CUresult cuDevicePrimaryCtxSetFlags(CUdevice dev, unsigned int flags)
{
	return cuDevicePrimaryCtxSetFlags_v2(dev, flags);
}
