/*
 * VG_OP_MEMLOC: functions whose structs hold memory locations.  The guest
 * has already mapped device ordinals to ours; here pointer fields are
 * cleared again (never trust them) and every count is bounded.
 *
 * Payload: u32 which (enum vg_memloc_fn), then per function:
 *   MEM_CREATE        u64 size, u64 flags, prop            -> u64 handle
 *   GRANULARITY       u32 option, prop                     -> u64 granularity
 *   SET_ACCESS        u64 ptr, u64 size, u32 n, n x desc   -> (empty)
 *   GET_ACCESS        u64 ptr, location                    -> u64 flags
 *   POOL_CREATE       u64 proposed id, pool props          -> u64 pool id
 *   POOL_SET_ACCESS   u64 pool id, u32 n, n x desc         -> (empty)
 *   POOL_GET_ACCESS   u64 pool id, location                -> u32 flags
 *   PROPS_FROM_HANDLE u64 handle                           -> prop
 *   ADVISE            u64 ptr, u64 count, u32 advice, location
 *   PREFETCH          u64 ptr, u64 count, location, u32 flags, u64 stream id
 * Structs travel as their bytes (sizeof of our clean-room types).
 */
#include <string.h>

#include "vgpu/ops.h"
#include "worker.h"


static void get_struct(struct vg_rd *r, void *dst, size_t n)
{
	const void *q = vg_get_bytes(r, n);

	if (!q)
		wk_fatal("truncated MEMLOC struct");
	memcpy(dst, q, n);
}

static CUresult get_descs(struct vg_rd *r, CUmemAccessDesc *d, size_t *count)
{
	uint32_t n = vg_get_u32(r), i;

	if (r->err || n > VG_ACCESS_DESC_MAX)
		wk_fatal("MEMLOC with %u access descriptors", n);
	for (i = 0; i < n; i++)
		get_struct(r, &d[i], sizeof(d[i]));
	*count = n;
	return CUDA_SUCCESS;
}

CUresult wk_memloc(struct vg_rd *r, struct vg_buf *out)
{
	uint32_t which = vg_get_u32(r);
	CUmemAllocationProp prop;
	CUmemLocation loc;
	CUmemAccessDesc desc[VG_ACCESS_DESC_MAX];
	CUmemPoolProps pp;
	uint64_t a, b2;
	size_t n;
	void *h;
	CUresult res = CUDA_SUCCESS;

	if (r->err || which > VG_ML_MAX)
		wk_fatal("malformed MEMLOC");
	switch (which) {
	case VG_ML_MEM_CREATE: {
		CUmemGenericAllocationHandle gh = 0;

		a = vg_get_u64(r);
		b2 = vg_get_u64(r);
		get_struct(r, &prop, sizeof(prop));
		prop.win32HandleMetaData = NULL;
		if (r->off != r->len)
			break;
		res = wk_limits_vmm_pre(a);
		if (res != CUDA_SUCCESS)
			return res;
		res = WK_CALL(cuMemCreate, &gh, (size_t)a, &prop, b2);
		wk_limits_vmm_post(res, gh, a);
		if (res == CUDA_SUCCESS)
			vg_put_u64(out, gh);
		return res;
	}
	case VG_ML_GRANULARITY: {
		size_t g = 0;

		a = vg_get_u32(r);
		get_struct(r, &prop, sizeof(prop));
		prop.win32HandleMetaData = NULL;
		if (r->off != r->len)
			break;
		res = WK_CALL(cuMemGetAllocationGranularity, &g, &prop, (CUmemAllocationGranularity_flags)a);
		if (res == CUDA_SUCCESS)
			vg_put_u64(out, g);
		return res;
	}
	case VG_ML_SET_ACCESS:
		a = vg_get_u64(r);
		b2 = vg_get_u64(r);
		get_descs(r, desc, &n);
		if (r->off != r->len)
			break;
		return WK_CALL(cuMemSetAccess, (CUdeviceptr)a, (size_t)b2, desc, n);
	case VG_ML_GET_ACCESS: {
		unsigned long long f = 0;

		a = vg_get_u64(r);
		get_struct(r, &loc, sizeof(loc));
		if (r->off != r->len)
			break;
		res = WK_CALL(cuMemGetAccess, &f, &loc, (CUdeviceptr)a);
		if (res == CUDA_SUCCESS)
			vg_put_u64(out, f);
		return res;
	}
	case VG_ML_POOL_CREATE: {
		CUmemoryPool pool = NULL;

		a = vg_get_u64(r);
		get_struct(r, &pp, sizeof(pp));
		pp.win32SecurityAttributes = NULL;
		if (r->off != r->len)
			break;
		res = WK_CALL(cuMemPoolCreate, &pool, &pp);
		if (res != CUDA_SUCCESS)
			return res;
		a = wk_handle_register(pool, VG_H_CUmemoryPool, a);
		if (!a)
			wk_fatal("POOL_CREATE with a bad proposed id");
		vg_put_u64(out, a);
		return CUDA_SUCCESS;
	}
	case VG_ML_POOL_SET_ACCESS:
		res = wk_get_handle(r, VG_H_CUmemoryPool, &h);
		get_descs(r, desc, &n);
		if (r->off != r->len)
			break;
		return res != CUDA_SUCCESS ? res : WK_CALL(cuMemPoolSetAccess, (CUmemoryPool)h, desc, n);
	case VG_ML_POOL_GET_ACCESS: {
		CUmemAccess_flags f = 0;

		res = wk_get_handle(r, VG_H_CUmemoryPool, &h);
		get_struct(r, &loc, sizeof(loc));
		if (r->off != r->len)
			break;
		if (res == CUDA_SUCCESS)
			res = WK_CALL(cuMemPoolGetAccess, &f, (CUmemoryPool)h, &loc);
		if (res == CUDA_SUCCESS)
			vg_put_u32(out, (uint32_t)f);
		return res;
	}
	case VG_ML_PROPS_FROM_HANDLE:
		a = vg_get_u64(r);
		if (r->err || r->off != r->len)
			break;
		memset(&prop, 0, sizeof(prop));
		res = WK_CALL(cuMemGetAllocationPropertiesFromHandle, &prop, (CUmemGenericAllocationHandle)a);
		prop.win32HandleMetaData = NULL;
		if (res == CUDA_SUCCESS)
			vg_put_bytes(out, &prop, sizeof(prop));
		return res;
	case VG_ML_ADVISE: {
		uint32_t advice;

		a = vg_get_u64(r);
		b2 = vg_get_u64(r);
		advice = vg_get_u32(r);
		get_struct(r, &loc, sizeof(loc));
		if (r->off != r->len)
			break;
		return WK_CALL(cuMemAdvise_v2, (CUdeviceptr)a, (size_t)b2, (CUmem_advise)advice, loc);
	}
	case VG_ML_PREFETCH: {
		uint32_t flags;

		a = vg_get_u64(r);
		b2 = vg_get_u64(r);
		get_struct(r, &loc, sizeof(loc));
		flags = vg_get_u32(r);
		res = wk_get_handle(r, VG_H_CUstream, &h);
		if (r->off != r->len)
			break;
		return res != CUDA_SUCCESS ? res
					   : WK_CALL(cuMemPrefetchAsync_v2, (CUdeviceptr)a, (size_t)b2, loc, flags,
						  (CUstream)h);
	}
	}
	wk_fatal("malformed MEMLOC (function %u)", which);
}
