/*
 * Functions whose structs name a memory location (virtual memory
 * management, memory pools, advice and prefetch): the guest copies each
 * struct, maps a device location's ordinal to the host's, clears pointer
 * fields (Windows-only metadata, NULL on Linux), and sends the bytes with
 * VG_OP_MEMLOC.  Locations coming back are mapped the other way.
 */
#include <string.h>

#include "lc.h"


static CUresult loc_to_host(CUmemLocation *l)
{
	const struct lc_device *d;

	if (l->type != CU_MEM_LOCATION_TYPE_DEVICE)
		return CUDA_SUCCESS;
	d = lc_device(l->id);
	if (!d)
		return CUDA_ERROR_INVALID_DEVICE;
	l->id = d->host_ordinal;
	return CUDA_SUCCESS;
}

static void loc_to_guest(CUmemLocation *l)
{
	int i;

	if (l->type != CU_MEM_LOCATION_TYPE_DEVICE)
		return;
	for (i = 0; i < lc.ndev; i++)
		if (lc.dev[i].host_ordinal == l->id) {
			l->id = i;
			return;
		}
	l->id = -1;
}

/* Sends the request in b; out (outlen bytes) gets the reply, if any. */
static CUresult memloc_rpc(struct vg_buf *b, void *out, size_t outlen)
{
	struct vg_buf rep;
	struct vg_rd r;
	CUresult res;

	vg_buf_init(&rep);
	res = lc_rpc(VG_OP_MEMLOC, b, &rep);
	if (res == CUDA_SUCCESS && outlen) {
		const void *q;

		vg_rd_init(&r, rep.p, rep.len);
		q = vg_get_bytes(&r, outlen);
		if (!q)
			res = CUDA_ERROR_UNKNOWN;
		else
			memcpy(out, q, outlen);
	}
	vg_buf_fini(&rep);
	return res;
}

static struct vg_buf *begin(uint32_t which, CUresult *res)
{
	struct vg_buf *b;

	*res = lc_check();
	if (*res != CUDA_SUCCESS)
		return NULL;
	b = lc_scratch();
	if (!b) {
		*res = CUDA_ERROR_DEVICE_UNAVAILABLE;
		return NULL;
	}
	vg_put_u32(b, which);
	return b;
}

static CUresult put_prop(struct vg_buf *b, const CUmemAllocationProp *prop)
{
	CUmemAllocationProp p;
	CUresult res;

	memcpy(&p, prop, sizeof(p));
	p.win32HandleMetaData = NULL;
	res = loc_to_host(&p.location);
	vg_put_bytes(b, &p, sizeof(p));
	return res;
}

static CUresult put_loc(struct vg_buf *b, const CUmemLocation *loc)
{
	CUmemLocation l = *loc;
	CUresult res = loc_to_host(&l);

	vg_put_bytes(b, &l, sizeof(l));
	return res;
}

static CUresult put_descs(struct vg_buf *b, const CUmemAccessDesc *desc, size_t count)
{
	size_t i;
	CUresult res;

	if ((count && !desc) || count > VG_ACCESS_DESC_MAX)
		return CUDA_ERROR_INVALID_VALUE;
	vg_put_u32(b, (uint32_t)count);
	for (i = 0; i < count; i++) {
		CUmemAccessDesc d = desc[i];

		res = loc_to_host(&d.location);
		if (res != CUDA_SUCCESS)
			return res;
		vg_put_bytes(b, &d, sizeof(d));
	}
	return CUDA_SUCCESS;
}

VG_EXPORT CUresult cuMemCreate(CUmemGenericAllocationHandle *handle, size_t size, const CUmemAllocationProp *prop,
			       unsigned long long flags)
{
	CUresult res;
	struct vg_buf *b = begin(VG_ML_MEM_CREATE, &res);

	if (!b)
		return res;
	if (!handle || !prop)
		return CUDA_ERROR_INVALID_VALUE;
	vg_put_u64(b, size);
	vg_put_u64(b, flags);
	res = put_prop(b, prop);
	return res != CUDA_SUCCESS ? res : memloc_rpc(b, handle, sizeof(*handle));
}

VG_EXPORT CUresult cuMemGetAllocationGranularity(size_t *granularity, const CUmemAllocationProp *prop,
						 CUmemAllocationGranularity_flags option)
{
	CUresult res;
	struct vg_buf *b = begin(VG_ML_GRANULARITY, &res);
	uint64_t g = 0;

	if (!b)
		return res;
	if (!granularity || !prop)
		return CUDA_ERROR_INVALID_VALUE;
	vg_put_u32(b, (uint32_t)option);
	res = put_prop(b, prop);
	if (res == CUDA_SUCCESS)
		res = memloc_rpc(b, &g, sizeof(g));
	if (res == CUDA_SUCCESS)
		*granularity = (size_t)g;
	return res;
}

VG_EXPORT CUresult cuMemSetAccess(CUdeviceptr ptr, size_t size, const CUmemAccessDesc *desc, size_t count)
{
	CUresult res;
	struct vg_buf *b = begin(VG_ML_SET_ACCESS, &res);

	if (!b)
		return res;
	vg_put_u64(b, ptr);
	vg_put_u64(b, size);
	res = put_descs(b, desc, count);
	return res != CUDA_SUCCESS ? res : memloc_rpc(b, NULL, 0);
}

VG_EXPORT CUresult cuMemGetAccess(unsigned long long *flags, const CUmemLocation *location, CUdeviceptr ptr)
{
	CUresult res;
	struct vg_buf *b = begin(VG_ML_GET_ACCESS, &res);

	if (!b)
		return res;
	if (!flags || !location)
		return CUDA_ERROR_INVALID_VALUE;
	vg_put_u64(b, ptr);
	res = put_loc(b, location);
	return res != CUDA_SUCCESS ? res : memloc_rpc(b, flags, sizeof(*flags));
}

VG_EXPORT CUresult cuMemPoolCreate(CUmemoryPool *pool, const CUmemPoolProps *poolProps)
{
	CUresult res;
	struct vg_buf *b = begin(VG_ML_POOL_CREATE, &res);
	CUmemPoolProps p;
	uint64_t id = 0;

	if (!b)
		return res;
	if (!pool || !poolProps)
		return CUDA_ERROR_INVALID_VALUE;
	memcpy(&p, poolProps, sizeof(p));
	p.win32SecurityAttributes = NULL;
	res = loc_to_host(&p.location);
	if (res != CUDA_SUCCESS)
		return res;
	vg_put_u64(b, lc_handle_propose());
	vg_put_bytes(b, &p, sizeof(p));
	res = memloc_rpc(b, &id, sizeof(id));
	if (res == CUDA_SUCCESS) {
		lc_handle_add(id, VG_H_CUmemoryPool);
		*pool = (CUmemoryPool)(uintptr_t)id;
	}
	return res;
}

VG_EXPORT CUresult cuMemPoolSetAccess(CUmemoryPool pool, const CUmemAccessDesc *map, size_t count)
{
	CUresult res;
	struct vg_buf *b = begin(VG_ML_POOL_SET_ACCESS, &res);

	if (!b)
		return res;
	res = lc_put_handle(b, pool, VG_H_CUmemoryPool, 0);
	if (res == CUDA_SUCCESS)
		res = put_descs(b, map, count);
	return res != CUDA_SUCCESS ? res : memloc_rpc(b, NULL, 0);
}

VG_EXPORT CUresult cuMemPoolGetAccess(CUmemAccess_flags *flags, CUmemoryPool memPool, CUmemLocation *location)
{
	CUresult res;
	struct vg_buf *b = begin(VG_ML_POOL_GET_ACCESS, &res);
	uint32_t f = 0;

	if (!b)
		return res;
	if (!flags || !location)
		return CUDA_ERROR_INVALID_VALUE;
	res = lc_put_handle(b, memPool, VG_H_CUmemoryPool, 0);
	if (res == CUDA_SUCCESS)
		res = put_loc(b, location);
	if (res == CUDA_SUCCESS)
		res = memloc_rpc(b, &f, sizeof(f));
	if (res == CUDA_SUCCESS)
		*flags = (CUmemAccess_flags)f;
	return res;
}

VG_EXPORT CUresult cuMemGetAllocationPropertiesFromHandle(CUmemAllocationProp *prop,
							  CUmemGenericAllocationHandle handle)
{
	CUresult res;
	struct vg_buf *b = begin(VG_ML_PROPS_FROM_HANDLE, &res);

	if (!b)
		return res;
	if (!prop)
		return CUDA_ERROR_INVALID_VALUE;
	vg_put_u64(b, handle);
	res = memloc_rpc(b, prop, sizeof(*prop));
	if (res == CUDA_SUCCESS)
		loc_to_guest(&prop->location);
	return res;
}

VG_EXPORT CUresult cuMemAdvise_v2(CUdeviceptr devPtr, size_t count, CUmem_advise advice, CUmemLocation location)
{
	CUresult res;
	struct vg_buf *b = begin(VG_ML_ADVISE, &res);

	if (!b)
		return res;
	vg_put_u64(b, devPtr);
	vg_put_u64(b, count);
	vg_put_u32(b, (uint32_t)advice);
	res = put_loc(b, &location);
	return res != CUDA_SUCCESS ? res : memloc_rpc(b, NULL, 0);
}

VG_EXPORT CUresult cuMemPrefetchAsync_v2(CUdeviceptr devPtr, size_t count, CUmemLocation location,
					 unsigned int flags, CUstream hStream)
{
	CUresult res;
	struct vg_buf *b = begin(VG_ML_PREFETCH, &res);

	if (!b)
		return res;
	vg_put_u64(b, devPtr);
	vg_put_u64(b, count);
	res = put_loc(b, &location);
	vg_put_u32(b, flags);
	if (res == CUDA_SUCCESS)
		res = lc_put_handle(b, hStream, VG_H_CUstream, 1);
	return res != CUDA_SUCCESS ? res : memloc_rpc(b, NULL, 0);
}
