/*
 * Function and kernel names (VG_OP_FUNC_NAME), kept for the life of the
 * process because callers hold on to the returned pointer; and cuCtxCreate_v4,
 * whose parameter struct holds pointers.
 */
#include <stdlib.h>
#include <string.h>

#include "lc.h"


static pthread_mutex_t names_lock = PTHREAD_MUTEX_INITIALIZER;
static struct vg_htab names;	/* handle id -> strdup'd name */

static CUresult get_name(const char **name, uint64_t id, int htype)
{
	struct vg_buf *b, rep;
	struct vg_hent *e;
	struct vg_rd r;
	CUresult res = lc_check();
	const char *s = NULL;

	if (res != CUDA_SUCCESS)
		return res;
	if (!name)
		return CUDA_ERROR_INVALID_VALUE;
	if (!id || !lc_handle_known(id, htype))
		return CUDA_ERROR_INVALID_HANDLE;
	pthread_mutex_lock(&names_lock);
	e = vg_htab_get(&names, id);
	if (e)
		s = e->data;
	pthread_mutex_unlock(&names_lock);
	if (s) {
		*name = s;
		return CUDA_SUCCESS;
	}
	b = lc_scratch();
	if (!b)
		return CUDA_ERROR_DEVICE_UNAVAILABLE;
	vg_put_u64(b, id);
	vg_put_u32(b, htype == VG_H_CUkernel);
	vg_buf_init(&rep);
	res = lc_rpc(VG_OP_FUNC_NAME, b, &rep);
	if (res == CUDA_SUCCESS) {
		uint32_t n = 0;
		int is_null = 0;
		const char *q;
		char *copy;

		vg_rd_init(&r, rep.p, rep.len);
		q = vg_get_blob(&r, VG_STR_MAX, &n, &is_null);
		if (!q || n == 0 || q[n - 1] != '\0' || !(copy = strdup(q))) {
			res = CUDA_ERROR_UNKNOWN;
		} else {
			pthread_mutex_lock(&names_lock);
			e = vg_htab_get(&names, id);
			if (e) {
				free(copy);
				copy = e->data;
			} else {
				vg_htab_put(&names, id, 0, 0, copy);
			}
			pthread_mutex_unlock(&names_lock);
			*name = copy;
		}
	}
	vg_buf_fini(&rep);
	return res;
}

VG_EXPORT CUresult cuFuncGetName(const char **name, CUfunction hfunc)
{
	return get_name(name, (uint64_t)(uintptr_t)hfunc, VG_H_CUfunction);
}

VG_EXPORT CUresult cuKernelGetName(const char **name, CUkernel hfunc)
{
	return get_name(name, (uint64_t)(uintptr_t)hfunc, VG_H_CUkernel);
}

VG_EXPORT CUresult cuCtxCreate_v4(CUcontext *pctx, CUctxCreateParams *ctxCreateParams, unsigned int flags,
				  CUdevice dev)
{
	/* Without execution-affinity or CIG parameters it is cuCtxCreate. */
	if (ctxCreateParams && (ctxCreateParams->execAffinityParams || ctxCreateParams->numExecAffinityParams ||
				ctxCreateParams->cigParams)) {
		VG_WARN("cuCtxCreate_v4 with affinity or CIG parameters is not supported yet");
		return CUDA_ERROR_NOT_SUPPORTED;
	}
	return cuCtxCreate_v2(pctx, flags, dev);
}
