/*
 * The calling thread's current context and its device, answered here once
 * known (PyTorch asks for the device about a hundred thousand times a run).
 *
 * The current context is a property of the thread, changed only by the
 * thread's own calls: the mirror is set by the calls whose effect we know
 * (cuCtxSetCurrent, cuCtxPushCurrent, cuCtxCreate) and forgotten after any
 * other call that may change it; then the host is asked again.  A context's
 * device never changes; it is kept with the context's handle.
 */
#include <string.h>

#include "darkapi.h"
#include "lc.h"

static __thread int cur_known;
static __thread uint64_t cur_ctx;

void lc_ctx_after_call(int fn, const uint64_t *a);
void lc_ctx_after_call(int fn, const uint64_t *a)
{
	switch (fn) {
	case VG_FN_cuCtxSetCurrent:
	case VG_FN_cuCtxPushCurrent:
	case VG_FN_cuCtxPushCurrent_v2:
		cur_ctx = a[0];
		cur_known = 1;
		break;
	case VG_FN_cuCtxCreate_v2:
		cur_ctx = *(const uint64_t *)(uintptr_t)a[0];
		cur_known = 1;
		break;
	case VG_FN_cuCtxAttach:
	case VG_FN_cuCtxCreate:
	case VG_FN_cuCtxCreate_v3:
	case VG_FN_cuCtxCreate_v4:
	case VG_FN_cuCtxDestroy:
	case VG_FN_cuCtxDestroy_v2:
	case VG_FN_cuCtxDetach:
	case VG_FN_cuCtxPopCurrent:
	case VG_FN_cuCtxPopCurrent_v2:
	case VG_FN_cuCtxFromGreenCtx:
	case VG_FN_cuDevicePrimaryCtxRelease:
	case VG_FN_cuDevicePrimaryCtxRelease_v2:
	case VG_FN_cuDevicePrimaryCtxReset:
	case VG_FN_cuDevicePrimaryCtxReset_v2:
	case VG_FN_cuGreenCtxDestroy:
		cur_known = 0;
		break;
	default:
		break;
	}
}

/* The calling thread's current context when the mirror knows it (1), else 0. */
int lc_ctx_current_known(uint64_t *ctx)
{
	*ctx = cur_ctx;
	return cur_known;
}

VG_EXPORT CUresult cuCtxGetCurrent(CUcontext *pctx)
{
	uint64_t a[1] = { (uint64_t)(uintptr_t)pctx };
	CUresult res = lc_check();

	if (res != CUDA_SUCCESS)
		return res;
	if (!pctx)
		return CUDA_ERROR_INVALID_VALUE;
	if (cur_known) {
		*pctx = (CUcontext)(uintptr_t)cur_ctx;
		return CUDA_SUCCESS;
	}
	res = lc_call(VG_FN_cuCtxGetCurrent, a);
	if (res == CUDA_SUCCESS) {
		cur_ctx = (uint64_t)(uintptr_t)*pctx;
		cur_known = 1;
	}
	return res;
}

static int ctx_device(uint64_t ctx)
{
	struct vg_hent *e;
	int dev = -1;

	pthread_mutex_lock(&lc.lock);
	e = vg_htab_get(&lc.handles, ctx);
	if (e && e->type == VG_H_CUcontext && e->val)
		dev = (int)e->val - 1;
	pthread_mutex_unlock(&lc.lock);
	return dev;
}

static void ctx_device_set(uint64_t ctx, int dev)
{
	struct vg_hent *e;

	pthread_mutex_lock(&lc.lock);
	e = vg_htab_get(&lc.handles, ctx);
	if (e && e->type == VG_H_CUcontext)
		e->val = (uint64_t)dev + 1;
	pthread_mutex_unlock(&lc.lock);
}

VG_EXPORT CUresult cuCtxGetDevice(CUdevice *device)
{
	uint64_t a[1] = { (uint64_t)(uintptr_t)device };
	CUresult res = lc_check();
	int dev;

	if (res != CUDA_SUCCESS)
		return res;
	if (!device)
		return CUDA_ERROR_INVALID_VALUE;
	if (cur_known && cur_ctx) {
		dev = ctx_device(cur_ctx);
		if (dev >= 0) {
			*device = dev;
			return CUDA_SUCCESS;
		}
	}
	res = lc_call(VG_FN_cuCtxGetDevice, a);
	if (res == CUDA_SUCCESS && cur_known && cur_ctx)
		ctx_device_set(cur_ctx, *device);
	return res;
}

VG_EXPORT CUresult cuCtxGetDevice_v2(CUdevice *device, CUcontext ctx)
{
	uint64_t a[2] = { (uint64_t)(uintptr_t)device, (uint64_t)(uintptr_t)ctx };
	uint64_t id = (uint64_t)(uintptr_t)ctx;
	CUresult res = lc_check();
	int dev;

	if (res != CUDA_SUCCESS)
		return res;
	if (!device)
		return CUDA_ERROR_INVALID_VALUE;
	if (!id && cur_known)
		id = cur_ctx;
	if (id) {
		dev = ctx_device(id);
		if (dev >= 0) {
			*device = dev;
			return CUDA_SUCCESS;
		}
	}
	res = lc_call(VG_FN_cuCtxGetDevice_v2, a);
	if (res == CUDA_SUCCESS && id)
		ctx_device_set(id, *device);
	return res;
}

/*
 * Primary context state changes only through this process's calls (any
 * thread's): it is kept per device and forgotten after any call that may
 * change it.
 */
static pthread_mutex_t prim_lock = PTHREAD_MUTEX_INITIALIZER;
static struct {
	int known;
	unsigned int flags;
	int active;
} prim[LC_DEV_MAX];

/* The primary context's handle per device, once a retain has shown it. */
static uint64_t prim_ctx[LC_DEV_MAX];


static int peek_unsupported;	/* the host said so once: not asked again */

/* The host's PRIMARY_PEEK: the handle without retaining the context. */
static CUresult primary_peek(CUdevice dev, uint64_t *id)
{
	struct vg_buf *b = lc_scratch(), rep;
	struct vg_rd r;
	CUresult res = lc_check();

	if (res != CUDA_SUCCESS)
		return res;
	if (!b)
		return CUDA_ERROR_DEVICE_UNAVAILABLE;
	vg_put_u32(b, (uint32_t)lc_device(dev)->host_ordinal);
	vg_buf_init(&rep);
	res = lc_rpc(VG_OP_PRIMARY_PEEK, b, &rep);
	if (res == CUDA_SUCCESS) {
		vg_rd_init(&r, rep.p, rep.len);
		*id = vg_get_u64(&r);
		if (r.err || r.off != r.len || !*id)
			res = CUDA_ERROR_NOT_SUPPORTED;
		else
			lc_handle_add(*id, VG_H_CUcontext);
	}
	vg_buf_fini(&rep);
	if (res == CUDA_ERROR_NOT_SUPPORTED)
		__atomic_store_n(&peek_unsupported, 1, __ATOMIC_RELAXED);
	return res;
}

CUresult lc_ctx_primary_peek(CUdevice dev, CUcontext *pctx)
{
	uint64_t id;

	if (!lc_device(dev) || !pctx)
		return CUDA_ERROR_INVALID_DEVICE;
	id = __atomic_load_n(&prim_ctx[dev], __ATOMIC_RELAXED);
	if (!id && !__atomic_load_n(&peek_unsupported, __ATOMIC_RELAXED) && primary_peek(dev, &id) == CUDA_SUCCESS)
		__atomic_store_n(&prim_ctx[dev], id, __ATOMIC_RELAXED);
	if (!id) {
		/* The host cannot peek: retain and release once (the context
		 * is created and destroyed); the handle stays the same. */
		CUresult res = cuDevicePrimaryCtxRetain(pctx, dev);

		if (res != CUDA_SUCCESS)
			return res;
		cuDevicePrimaryCtxRelease_v2(dev);
		return CUDA_SUCCESS;
	}
	*pctx = (CUcontext)(uintptr_t)id;
	return CUDA_SUCCESS;
}

/*
 * Context-local storage destructors (darkapi) run when a context ends:
 * destroyed, its primary context reset, or released for the last time.
 * Called with no lock held: the destructors are the client's code.
 */
void lc_capture_ctx_ended(void);
void lc_ctx_ended(int fn, const uint64_t *a);
void lc_ctx_ended(int fn, const uint64_t *a)
{
	int dev = (int)(int32_t)a[0];
	unsigned int flags = 0;
	int active = 1;

	switch (fn) {
	case VG_FN_cuCtxDestroy:
	case VG_FN_cuCtxDestroy_v2:
		lc_capture_ctx_ended();
		lc_cls_context_destroyed((CUcontext)(uintptr_t)a[0]);
		break;
	case VG_FN_cuGreenCtxDestroy:
		lc_capture_ctx_ended();
		break;
	case VG_FN_cuDevicePrimaryCtxReset:
	case VG_FN_cuDevicePrimaryCtxReset_v2:
		lc_capture_ctx_ended();
		if (dev >= 0 && dev < LC_DEV_MAX && prim_ctx[dev])
			lc_cls_context_destroyed((CUcontext)(uintptr_t)prim_ctx[dev]);
		break;
	case VG_FN_cuDevicePrimaryCtxRelease:
	case VG_FN_cuDevicePrimaryCtxRelease_v2:
		if (cuDevicePrimaryCtxGetState(dev, &flags, &active) != CUDA_SUCCESS || !active)
			lc_capture_ctx_ended();
		if (dev >= 0 && dev < LC_DEV_MAX && prim_ctx[dev] && !active)
			lc_cls_context_destroyed((CUcontext)(uintptr_t)prim_ctx[dev]);
		break;
	case VG_FN_cuStreamDestroy:
	case VG_FN_cuStreamDestroy_v2:
		lc_tools_stream_destroyed((CUstream)(uintptr_t)a[0]);
		break;
	default:
		break;
	}
}

void lc_primary_after_call(int fn, const uint64_t *a);
void lc_primary_after_call(int fn, const uint64_t *a)
{
	if (fn == VG_FN_cuDevicePrimaryCtxRetain) {
		int dev = (int)(int32_t)a[1];

		if (dev >= 0 && dev < LC_DEV_MAX)
			__atomic_store_n(&prim_ctx[dev], *(const uint64_t *)(uintptr_t)a[0], __ATOMIC_RELAXED);
	}
	switch (fn) {
	case VG_FN_cuDevicePrimaryCtxRetain:
	case VG_FN_cuDevicePrimaryCtxRelease:
	case VG_FN_cuDevicePrimaryCtxRelease_v2:
	case VG_FN_cuDevicePrimaryCtxReset:
	case VG_FN_cuDevicePrimaryCtxReset_v2:
	case VG_FN_cuDevicePrimaryCtxSetFlags:
	case VG_FN_cuDevicePrimaryCtxSetFlags_v2:
	case VG_FN_cuCtxSetFlags:
		pthread_mutex_lock(&prim_lock);
		memset(prim, 0, sizeof(prim));
		pthread_mutex_unlock(&prim_lock);
		break;
	default:
		break;
	}
}

VG_EXPORT CUresult cuDevicePrimaryCtxGetState(CUdevice dev, unsigned int *flags, int *active)
{
	uint64_t a[3] = { (uint64_t)(int64_t)dev, (uint64_t)(uintptr_t)flags, (uint64_t)(uintptr_t)active };
	CUresult res = lc_check();

	if (res != CUDA_SUCCESS)
		return res;
	if (!lc_device(dev))
		return CUDA_ERROR_INVALID_DEVICE;
	if (!flags || !active)
		return CUDA_ERROR_INVALID_VALUE;
	pthread_mutex_lock(&prim_lock);
	if (prim[dev].known) {
		*flags = prim[dev].flags;
		*active = prim[dev].active;
		pthread_mutex_unlock(&prim_lock);
		return CUDA_SUCCESS;
	}
	pthread_mutex_unlock(&prim_lock);
	res = lc_call(VG_FN_cuDevicePrimaryCtxGetState, a);
	if (res == CUDA_SUCCESS) {
		pthread_mutex_lock(&prim_lock);
		prim[dev].known = 1;
		prim[dev].flags = *flags;
		prim[dev].active = *active;
		pthread_mutex_unlock(&prim_lock);
	}
	return res;
}
