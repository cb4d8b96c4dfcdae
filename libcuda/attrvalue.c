/*
 * Attributes whose value travels behind a void pointer (memory pools, graph
 * memory): the size is known per attribute (vg_attr_value_size); one
 * round trip each.  And cuGraphExecUpdate_v2, whose result names nodes.
 */
#include <string.h>

#include "lc.h"


static CUresult attr_value(uint32_t which, const void *obj, CUdevice dev, int attr, void *value)
{
	uint32_t size = vg_attr_value_size(which, attr), n = 0;
	int set = which == VG_AV_POOL_SET || which == VG_AV_GRAPHMEM_SET, is_null = 0;
	struct vg_buf *b, rep;
	struct vg_rd r;
	const void *q;
	CUresult res = lc_check();

	if (res != CUDA_SUCCESS)
		return res;
	if (!value || !size)
		return CUDA_ERROR_INVALID_VALUE;
	b = lc_scratch();
	if (!b)
		return CUDA_ERROR_DEVICE_UNAVAILABLE;
	vg_put_u32(b, which);
	if (which <= VG_AV_POOL_SET) {
		res = lc_put_handle(b, obj, VG_H_CUmemoryPool, 0);
		if (res != CUDA_SUCCESS)
			return res;
	} else {
		const struct lc_device *d = lc_device(dev);

		if (!d)
			return CUDA_ERROR_INVALID_DEVICE;
		vg_put_u32(b, (uint32_t)d->host_ordinal);
	}
	vg_put_u32(b, (uint32_t)attr);
	if (set)
		vg_put_bytes(b, value, size);
	vg_buf_init(&rep);
	res = lc_rpc(VG_OP_ATTR_VALUE, b, &rep);
	if (res == CUDA_SUCCESS && !set) {
		vg_rd_init(&r, rep.p, rep.len);
		q = vg_get_blob(&r, 8, &n, &is_null);
		if (!q || n != size)
			res = CUDA_ERROR_UNKNOWN;
		else
			memcpy(value, q, size);
	}
	vg_buf_fini(&rep);
	return res;
}

VG_EXPORT CUresult cuMemPoolGetAttribute(CUmemoryPool pool, CUmemPool_attribute attr, void *value)
{
	return attr_value(VG_AV_POOL_GET, pool, 0, (int)attr, value);
}

VG_EXPORT CUresult cuMemPoolSetAttribute(CUmemoryPool pool, CUmemPool_attribute attr, void *value)
{
	return attr_value(VG_AV_POOL_SET, pool, 0, (int)attr, value);
}

VG_EXPORT CUresult cuDeviceGetGraphMemAttribute(CUdevice device, CUgraphMem_attribute attr, void *value)
{
	return attr_value(VG_AV_GRAPHMEM_GET, NULL, device, (int)attr, value);
}

VG_EXPORT CUresult cuDeviceSetGraphMemAttribute(CUdevice device, CUgraphMem_attribute attr, void *value)
{
	return attr_value(VG_AV_GRAPHMEM_SET, NULL, device, (int)attr, value);
}

/*
 * GRAPH_UPDATE: u64 exec id, u64 graph id.  Reply (always, whatever the
 * update's outcome): i32 the call's CUresult, u32 result, u64 error node
 * id, u64 error-from node id: the driver fills the info on failure too.
 */
VG_EXPORT CUresult cuGraphExecUpdate_v2(CUgraphExec hGraphExec, CUgraph hGraph, CUgraphExecUpdateResultInfo *resultInfo)
{
	struct vg_buf *b, rep;
	struct vg_rd r;
	CUresult res = lc_check(), call;
	uint64_t n1, n2;

	if (res != CUDA_SUCCESS)
		return res;
	if (!resultInfo)
		return CUDA_ERROR_INVALID_VALUE;
	b = lc_scratch();
	if (!b)
		return CUDA_ERROR_DEVICE_UNAVAILABLE;
	res = lc_put_handle(b, hGraphExec, VG_H_CUgraphExec, 0);
	if (res == CUDA_SUCCESS)
		res = lc_put_handle(b, hGraph, VG_H_CUgraph, 0);
	if (res != CUDA_SUCCESS)
		return res;
	vg_buf_init(&rep);
	res = lc_rpc(VG_OP_GRAPH_UPDATE, b, &rep);
	if (res == CUDA_SUCCESS) {
		vg_rd_init(&r, rep.p, rep.len);
		call = (CUresult)(int32_t)vg_get_u32(&r);
		resultInfo->result = (CUgraphExecUpdateResult)vg_get_u32(&r);
		n1 = vg_get_u64(&r);
		n2 = vg_get_u64(&r);
		if (r.err) {
			res = CUDA_ERROR_UNKNOWN;
		} else {
			if (n1)
				lc_handle_add(n1, VG_H_CUgraphNode);
			if (n2)
				lc_handle_add(n2, VG_H_CUgraphNode);
			resultInfo->errorNode = (CUgraphNode)(uintptr_t)n1;
			resultInfo->errorFromNode = (CUgraphNode)(uintptr_t)n2;
			res = call;
		}
	}
	vg_buf_fini(&rep);
	return res;
}
