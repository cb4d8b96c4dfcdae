/*
 * The worker's per-client limits (vgpud --config; format in vdlimits.h).
 *
 * Device memory and streams are accounted at one choke point each: the
 * generic dispatch (wk_generic) asks wk_limits_pre before it calls the
 * driver and wk_limits_post after, for the functions in `fns` below; VMM
 * creation (wk_memloc) asks wk_limits_vmm_*.  A call that would pass a
 * limit answers CUDA_ERROR_OUT_OF_MEMORY without reaching the driver.
 *
 * Memory is reserved before the call (so concurrent threads cannot overrun
 * the limit together) and settled after it: a failed call gives the
 * reservation back, a successful allocation records its address, a
 * successful free credits what was recorded.  Allocations and streams also
 * remember the context that was current: destroying a context (or resetting
 * or finally releasing a primary one) credits everything it took with it.
 *
 * Not accounted: memory of graph memory nodes and mipmapped arrays, and
 * pinned host memory (which is not device memory).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "vdlimits.h"
#include "worker.h"

enum kind {
	K_NONE,
	K_ALLOC,	/* out ptr arg 0, size arg 1; remembers the context */
	K_ALLOC_POOL,	/* the same, from a pool: outlives contexts */
	K_PITCH,	/* out ptr arg 0, out pitch arg 1, width arg 2, height arg 3 */
	K_FREE,		/* ptr arg 0 */
	K_ARRAY,	/* out handle arg 0, descriptor arg 1 (2D) */
	K_ARRAY_V1,
	K_ARRAY3D,
	K_ARRAY3D_V1,
	K_ARRAY_FREE,	/* handle arg 0 */
	K_STREAM,	/* out handle arg 0 */
	K_STREAM_FREE,	/* handle arg 0 */
	K_VMM_RELEASE,	/* generic allocation handle arg 0 */
	K_CTX_DESTROY,	/* context arg 0 */
	K_PRIM_RELEASE,	/* device arg 0 */
	K_PRIM_RESET,
};

static const struct {
	int fn;
	enum kind kind;
} fns[] = {
	{ VG_FN_cuMemAlloc, K_ALLOC },
	{ VG_FN_cuMemAlloc_v2, K_ALLOC },
	{ VG_FN_cuMemAllocManaged, K_ALLOC },
	{ VG_FN_cuMemAllocAsync, K_ALLOC_POOL },
	{ VG_FN_cuMemAllocAsync_ptsz, K_ALLOC_POOL },
	{ VG_FN_cuMemAllocFromPoolAsync, K_ALLOC_POOL },
	{ VG_FN_cuMemAllocFromPoolAsync_ptsz, K_ALLOC_POOL },
	{ VG_FN_cuMemAllocPitch, K_PITCH },
	{ VG_FN_cuMemAllocPitch_v2, K_PITCH },
	{ VG_FN_cuMemFree, K_FREE },
	{ VG_FN_cuMemFree_v2, K_FREE },
	{ VG_FN_cuMemFreeAsync, K_FREE },
	{ VG_FN_cuMemFreeAsync_ptsz, K_FREE },
	{ VG_FN_cuArrayCreate, K_ARRAY_V1 },
	{ VG_FN_cuArrayCreate_v2, K_ARRAY },
	{ VG_FN_cuArray3DCreate, K_ARRAY3D_V1 },
	{ VG_FN_cuArray3DCreate_v2, K_ARRAY3D },
	{ VG_FN_cuArrayDestroy, K_ARRAY_FREE },
	{ VG_FN_cuStreamCreate, K_STREAM },
	{ VG_FN_cuStreamCreateWithPriority, K_STREAM },
	{ VG_FN_cuGreenCtxStreamCreate, K_STREAM },
	{ VG_FN_cuStreamDestroy, K_STREAM_FREE },
	{ VG_FN_cuStreamDestroy_v2, K_STREAM_FREE },
	{ VG_FN_cuMemRelease, K_VMM_RELEASE },
	{ VG_FN_cuCtxDestroy, K_CTX_DESTROY },
	{ VG_FN_cuCtxDestroy_v2, K_CTX_DESTROY },
	{ VG_FN_cuDevicePrimaryCtxRelease, K_PRIM_RELEASE },
	{ VG_FN_cuDevicePrimaryCtxRelease_v2, K_PRIM_RELEASE },
	{ VG_FN_cuDevicePrimaryCtxReset, K_PRIM_RESET },
	{ VG_FN_cuDevicePrimaryCtxReset_v2, K_PRIM_RESET },
};

static struct vd_limits lim = {
	.max_device_memory = VD_LIMITS_NONE,
	.max_streams = VD_LIMITS_NONE,
	.max_threads = VD_LIMITS_NONE,
	.max_message = VG_MSG_MAX,
	.max_clients = VD_LIMITS_NONE - 1,
};
static uint8_t kinds[VG_FN_MAX];
static pthread_mutex_t lim_lock = PTHREAD_MUTEX_INITIALIZER;
static uint64_t mem_used, streams_used, threads_used;
/* key -> (val: bytes or 1, data: the context it dies with, or NULL) */
static struct vg_htab mem, arrays, vmm, streams;

int wk_limits_init(const char *arg)
{
	char err[256];
	size_t i;
	int ret = 0;

	for (i = 0; i < sizeof(fns) / sizeof(fns[0]); i++)
		kinds[fns[i].fn] = (uint8_t)fns[i].kind;
	if (arg) {
		ret = vd_limits_parse_arg(&lim, arg, err, sizeof(err));
		if (ret < 0)
			VG_ERR("--limits: %s", err);
	}
	return ret;
}

size_t wk_limits_payload_max(void)
{
	return lim.max_message - VG_HDR_SIZE;
}

int wk_limits_thread_enter(void)
{
	int ok;

	pthread_mutex_lock(&lim_lock);
	ok = threads_used < lim.max_threads;
	if (ok)
		threads_used++;
	pthread_mutex_unlock(&lim_lock);
	if (!ok)
		VG_WARN("max_threads (%llu) reached: a channel was refused", (unsigned long long)lim.max_threads);
	return ok ? 0 : -EMFILE;
}

void wk_limits_thread_exit(void)
{
	pthread_mutex_lock(&lim_lock);
	threads_used--;
	pthread_mutex_unlock(&lim_lock);
}

/* ---- the ledger (callers hold lim_lock) ---------------------------------- */

static int reserve_locked(uint64_t *used, uint64_t max, uint64_t n)
{
	if (max != VD_LIMITS_NONE && (n > max || *used > max - n))
		return -ENOSPC;
	*used += n;
	return 0;
}

static CUresult reserve(uint64_t *used, uint64_t max, uint64_t n, const char *what)
{
	int ret;

	pthread_mutex_lock(&lim_lock);
	ret = reserve_locked(used, max, n);
	pthread_mutex_unlock(&lim_lock);
	if (ret == 0)
		return CUDA_SUCCESS;
	VG_INFO("%s: %llu more would pass the client's limit of %llu: CUDA_ERROR_OUT_OF_MEMORY", what,
		(unsigned long long)n, (unsigned long long)max);
	return CUDA_ERROR_OUT_OF_MEMORY;
}

static void unreserve(uint64_t *used, uint64_t n)
{
	pthread_mutex_lock(&lim_lock);
	*used -= n;
	pthread_mutex_unlock(&lim_lock);
}

static void record(struct vg_htab *t, uint64_t key, uint64_t n, void *ctx)
{
	pthread_mutex_lock(&lim_lock);
	/* Without memory for the ledger the charge stays: it errs on the safe side. */
	if (key && !vg_htab_put(t, key, n, 0, ctx))
		VG_WARN("limits: out of memory for the ledger");
	pthread_mutex_unlock(&lim_lock);
}

/* Removes key's entry; its charge goes to *n (0 when unknown). */
static void *take(struct vg_htab *t, uint64_t key, uint64_t *n)
{
	struct vg_hent *e;
	void *ctx = NULL;

	*n = 0;
	pthread_mutex_lock(&lim_lock);
	e = vg_htab_get(t, key);
	if (e) {
		*n = e->val;
		ctx = e->data;
		vg_htab_del(t, key);
	}
	pthread_mutex_unlock(&lim_lock);
	return ctx;
}

/* Everything that died with a context is credited. */
static void credit_ctx_locked(struct vg_htab *t, uint64_t *used, void *ctx)
{
	size_t k;

	for (k = 0; k < t->cap; k++) {
		struct vg_hent *e = &t->slots[k];

		if (e->key == 0 || e->key == VG_HTAB_TOMB || e->data != ctx)
			continue;
		*used -= e->val;
		vg_htab_del(t, e->key);
	}
}

static void credit_ctx(void *ctx)
{
	if (!ctx)
		return;
	pthread_mutex_lock(&lim_lock);
	credit_ctx_locked(&mem, &mem_used, ctx);
	credit_ctx_locked(&arrays, &mem_used, ctx);
	credit_ctx_locked(&streams, &streams_used, ctx);
	pthread_mutex_unlock(&lim_lock);
}

/* ---- arguments as wk_generic holds them ---------------------------------- */

static uint64_t arg_scalar(int fn, void **av, int i)
{
	switch (vg_fn_descs[fn].args[i].elem_size) {
	case 1: return *(uint8_t *)av[i];
	case 2: return *(uint16_t *)av[i];
	case 4: return *(uint32_t *)av[i];
	default: return *(uint64_t *)av[i];
	}
}

static void *arg_ptr(void **av, int i)
{
	return *(void **)av[i];
}

/* An OUT handle the driver wrote; 0 when the guest passed NULL. */
static uint64_t out_handle(void **av, int i)
{
	void *const *p = arg_ptr(av, i);

	return p ? (uint64_t)(uintptr_t)*p : 0;
}

/* An OUT scalar the driver wrote (elem_size bytes). */
static uint64_t out_scalar(int fn, void **av, int i)
{
	const void *p = arg_ptr(av, i);
	uint32_t n = vg_fn_descs[fn].args[i].elem_size;

	if (!p)
		return 0;
	if (n == 4)
		return *(const uint32_t *)p;
	return *(const uint64_t *)p;
}

static uint64_t mul_sat(uint64_t a, uint64_t b)
{
	return a && b > UINT64_MAX / a ? UINT64_MAX : a * b;
}

static uint64_t format_bytes(unsigned int f)
{
	switch (f) {
	case CU_AD_FORMAT_UNSIGNED_INT8:
	case CU_AD_FORMAT_SIGNED_INT8:
		return 1;
	case CU_AD_FORMAT_UNSIGNED_INT16:
	case CU_AD_FORMAT_SIGNED_INT16:
	case CU_AD_FORMAT_HALF:
		return 2;
	default:
		return 4;	/* 32-bit formats; an over-estimate for the packed ones */
	}
}

/* Bytes an array will take, from its descriptor (an estimate: no padding). */
static uint64_t array_bytes(enum kind k, const void *desc)
{
	uint64_t w, h, d = 1, ch;
	unsigned int f;

	if (!desc)
		return 0;
	if (k == K_ARRAY) {
		const CUDA_ARRAY_DESCRIPTOR *a = desc;

		w = a->Width, h = a->Height, f = a->Format, ch = a->NumChannels;
	} else if (k == K_ARRAY_V1) {
		const CUDA_ARRAY_DESCRIPTOR_v1 *a = desc;

		w = a->Width, h = a->Height, f = a->Format, ch = a->NumChannels;
	} else if (k == K_ARRAY3D) {
		const CUDA_ARRAY3D_DESCRIPTOR *a = desc;

		w = a->Width, h = a->Height, d = a->Depth, f = a->Format, ch = a->NumChannels;
	} else {
		const CUDA_ARRAY3D_DESCRIPTOR_v1 *a = desc;

		w = a->Width, h = a->Height, d = a->Depth, f = a->Format, ch = a->NumChannels;
	}
	return mul_sat(mul_sat(mul_sat(w, h ? h : 1), d ? d : 1), mul_sat(ch, format_bytes(f)));
}

static void *current_ctx(void)
{
	CUcontext c = NULL;

	if (!wk.fns[VG_FN_cuCtxGetCurrent] || WK_FN(cuCtxGetCurrent)(&c) != CUDA_SUCCESS)
		return NULL;
	return c;
}

/* The primary context of dev while it is active, else NULL (uncounted calls). */
static void *primary_ctx(int dev)
{
	unsigned int flags = 0;
	int active = 0;
	CUcontext c = NULL;

	if (!wk.fns[VG_FN_cuDevicePrimaryCtxGetState] || !wk.fns[VG_FN_cuDevicePrimaryCtxRetain] ||
	    !wk.fns[VG_FN_cuDevicePrimaryCtxRelease_v2])
		return NULL;
	if (WK_FN(cuDevicePrimaryCtxGetState)(dev, &flags, &active) != CUDA_SUCCESS || !active)
		return NULL;
	if (WK_FN(cuDevicePrimaryCtxRetain)(&c, dev) != CUDA_SUCCESS)
		return NULL;
	WK_FN(cuDevicePrimaryCtxRelease_v2)(dev);
	return c;
}

static int primary_active(int dev)
{
	unsigned int flags = 0;
	int active = 0;

	if (!wk.fns[VG_FN_cuDevicePrimaryCtxGetState] ||
	    WK_FN(cuDevicePrimaryCtxGetState)(dev, &flags, &active) != CUDA_SUCCESS)
		return 1;
	return active;
}

/* ---- the hooks ------------------------------------------------------------ */

CUresult wk_limits_pre(int fn, void **av, struct wk_lim_note *n)
{
	enum kind k = fn > 0 && fn < VG_FN_MAX ? (enum kind)kinds[fn] : K_NONE;

	memset(n, 0, sizeof(*n));
	switch (k) {
	case K_NONE:
		return CUDA_SUCCESS;
	case K_ALLOC:
	case K_ALLOC_POOL:
		n->bytes = arg_scalar(fn, av, 1);
		return reserve(&mem_used, lim.max_device_memory, n->bytes, vg_fn_descs[fn].name);
	case K_PITCH:
		n->bytes = mul_sat(arg_scalar(fn, av, 2), arg_scalar(fn, av, 3));
		return reserve(&mem_used, lim.max_device_memory, n->bytes, vg_fn_descs[fn].name);
	case K_ARRAY:
	case K_ARRAY_V1:
	case K_ARRAY3D:
	case K_ARRAY3D_V1:
		n->bytes = array_bytes(k, arg_ptr(av, 1));
		return reserve(&mem_used, lim.max_device_memory, n->bytes, vg_fn_descs[fn].name);
	case K_STREAM:
		n->bytes = 1;
		return reserve(&streams_used, lim.max_streams, 1, vg_fn_descs[fn].name);
	case K_FREE:
		n->key = arg_scalar(fn, av, 0);
		n->ctx = take(&mem, n->key, &n->bytes);
		return CUDA_SUCCESS;
	case K_ARRAY_FREE:
		n->key = (uint64_t)(uintptr_t)arg_ptr(av, 0);
		n->ctx = take(&arrays, n->key, &n->bytes);
		return CUDA_SUCCESS;
	case K_STREAM_FREE:
		n->key = (uint64_t)(uintptr_t)arg_ptr(av, 0);
		n->ctx = take(&streams, n->key, &n->bytes);
		return CUDA_SUCCESS;
	case K_VMM_RELEASE:
		n->key = arg_scalar(fn, av, 0);
		n->ctx = take(&vmm, n->key, &n->bytes);
		return CUDA_SUCCESS;
	case K_CTX_DESTROY:
		n->ctx = arg_ptr(av, 0);
		return CUDA_SUCCESS;
	case K_PRIM_RELEASE:
	case K_PRIM_RESET:
		n->ctx = primary_ctx((int)arg_scalar(fn, av, 0));
		return CUDA_SUCCESS;
	}
	return CUDA_SUCCESS;
}

/* Undoes a pitched allocation that came out larger than the limit allows. */
static CUresult pitch_settle(int fn, void **av, struct wk_lim_note *n)
{
	uint64_t p = out_scalar(fn, av, 0), pitch = out_scalar(fn, av, 1);
	uint64_t real = mul_sat(pitch, arg_scalar(fn, av, 3));
	int ret = 0;

	pthread_mutex_lock(&lim_lock);
	mem_used -= n->bytes;
	ret = reserve_locked(&mem_used, lim.max_device_memory, real);
	pthread_mutex_unlock(&lim_lock);
	if (ret == 0) {
		record(&mem, p, real, current_ctx());
		return CUDA_SUCCESS;
	}
	if (fn == VG_FN_cuMemAllocPitch && wk.fns[VG_FN_cuMemFree])
		WK_FN(cuMemFree)((CUdeviceptr_v1)p);
	else if (wk.fns[VG_FN_cuMemFree_v2])
		WK_FN(cuMemFree_v2)((CUdeviceptr)p);
	VG_INFO("%s: %llu bytes with its pitch pass the client's limit: CUDA_ERROR_OUT_OF_MEMORY",
		vg_fn_descs[fn].name, (unsigned long long)real);
	return CUDA_ERROR_OUT_OF_MEMORY;
}

CUresult wk_limits_post(int fn, void **av, CUresult res, struct wk_lim_note *n)
{
	enum kind k = fn > 0 && fn < VG_FN_MAX ? (enum kind)kinds[fn] : K_NONE;
	int ok = res == CUDA_SUCCESS;

	switch (k) {
	case K_NONE:
		break;
	case K_ALLOC:
	case K_ALLOC_POOL:
		if (!ok)
			unreserve(&mem_used, n->bytes);
		else
			record(&mem, out_scalar(fn, av, 0), n->bytes, k == K_ALLOC ? current_ctx() : NULL);
		break;
	case K_PITCH:
		if (!ok)
			unreserve(&mem_used, n->bytes);
		else
			res = pitch_settle(fn, av, n);
		break;
	case K_ARRAY:
	case K_ARRAY_V1:
	case K_ARRAY3D:
	case K_ARRAY3D_V1:
		if (!ok)
			unreserve(&mem_used, n->bytes);
		else
			record(&arrays, out_handle(av, 0), n->bytes, current_ctx());
		break;
	case K_STREAM:
		if (!ok)
			unreserve(&streams_used, 1);
		else
			record(&streams, out_handle(av, 0), 1, current_ctx());
		break;
	case K_FREE:
	case K_ARRAY_FREE:
	case K_STREAM_FREE:
	case K_VMM_RELEASE: {
		struct vg_htab *t = k == K_FREE ? &mem : k == K_ARRAY_FREE ? &arrays :
				    k == K_STREAM_FREE ? &streams : &vmm;
		uint64_t *used = k == K_STREAM_FREE ? &streams_used : &mem_used;

		if (!n->bytes)
			break;
		if (ok)
			unreserve(used, n->bytes);
		else
			record(t, n->key, n->bytes, n->ctx);
		break;
	}
	case K_CTX_DESTROY:
		if (ok)
			credit_ctx(n->ctx);
		break;
	case K_PRIM_RELEASE:
	case K_PRIM_RESET:
		if (ok && n->ctx && (k == K_PRIM_RESET || !primary_active((int)arg_scalar(fn, av, 0))))
			credit_ctx(n->ctx);
		break;
	}
	return res;
}

CUresult wk_limits_vmm_pre(uint64_t bytes)
{
	return reserve(&mem_used, lim.max_device_memory, bytes, "cuMemCreate");
}

void wk_limits_vmm_post(CUresult res, uint64_t handle, uint64_t bytes)
{
	if (res != CUDA_SUCCESS)
		unreserve(&mem_used, bytes);
	else
		record(&vmm, handle, bytes, NULL);
}
