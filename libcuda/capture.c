/*
 * cuStreamGetCaptureInfo_v2/_v3: the dependency array the driver returns
 * lives in the guest here, per thread, valid until this thread's next call,
 * as with the real driver.
 *
 * CAPTURE_INFO: u32 version (2 or 3), u32 per-thread-stream form, u64 stream.
 * Reply: u32 status, u64 capture id, u64 graph id, u32 n (<=
 * VG_CAPTURE_DEPS_MAX), n x u64 node ids, u32 has_edges, then (version 3,
 * has_edges) n x edge data bytes.
 */
#include <stdlib.h>
#include <string.h>

#include "lc.h"

struct vg_buf *lc_scratch(void);

static __thread CUgraphNode *tls_deps;
static __thread CUgraphEdgeData *tls_edges;
static __thread size_t tls_cap;

static CUresult capture_info(CUstream s, int version, int ptsz, CUstreamCaptureStatus *status_out,
			     cuuint64_t *id_out, CUgraph *graph_out, const CUgraphNode **deps_out,
			     const CUgraphEdgeData **edges_out, size_t *n_out)
{
	struct vg_buf *b, rep;
	struct vg_rd r;
	CUresult res = lc_check();
	uint32_t st, n, i, has_edges;
	uint64_t cid, gid;

	if (res != CUDA_SUCCESS)
		return res;
	if (!status_out)
		return CUDA_ERROR_INVALID_VALUE;
	b = lc_scratch();
	if (!b)
		return CUDA_ERROR_DEVICE_UNAVAILABLE;
	vg_put_u32(b, (uint32_t)version);
	vg_put_u32(b, (uint32_t)ptsz);
	res = lc_put_handle(b, s, VG_H_CUstream, 1);
	if (res != CUDA_SUCCESS)
		return res;
	vg_buf_init(&rep);
	res = lc_rpc(VG_OP_CAPTURE_INFO, b, &rep);
	if (res != CUDA_SUCCESS)
		goto out;
	vg_rd_init(&r, rep.p, rep.len);
	st = vg_get_u32(&r);
	cid = vg_get_u64(&r);
	gid = vg_get_u64(&r);
	n = vg_get_u32(&r);
	if (r.err || n > VG_CAPTURE_DEPS_MAX)
		goto bad;
	if (n > tls_cap) {
		CUgraphNode *d = realloc(tls_deps, sizeof(*d) * n);
		CUgraphEdgeData *e;

		if (!d)
			goto oom;
		tls_deps = d;
		e = realloc(tls_edges, sizeof(*e) * n);
		if (!e)
			goto oom;
		tls_edges = e;
		tls_cap = n;
	}
	for (i = 0; i < n; i++) {
		uint64_t id = vg_get_u64(&r);

		if (id)
			lc_handle_add(id, VG_H_CUgraphNode);
		tls_deps[i] = (CUgraphNode)(uintptr_t)id;
	}
	has_edges = vg_get_u32(&r);
	if (has_edges) {
		const void *q = vg_get_bytes(&r, sizeof(CUgraphEdgeData) * n);

		if (!q)
			goto bad;
		memcpy(tls_edges, q, sizeof(CUgraphEdgeData) * n);
	}
	if (r.err || r.off != r.len)
		goto bad;
	if (gid)
		lc_handle_add(gid, VG_H_CUgraph);
	*status_out = (CUstreamCaptureStatus)st;
	if (id_out)
		*id_out = cid;
	if (graph_out)
		*graph_out = (CUgraph)(uintptr_t)gid;
	if (deps_out)
		*deps_out = n ? tls_deps : NULL;
	if (edges_out)
		*edges_out = n && has_edges ? tls_edges : NULL;
	if (n_out)
		*n_out = n;
	goto out;
oom:
	res = CUDA_ERROR_OUT_OF_MEMORY;
	goto out;
bad:
	VG_ERR("malformed capture info from the worker");
	res = CUDA_ERROR_UNKNOWN;
out:
	vg_buf_fini(&rep);
	return res;
}

VG_EXPORT CUresult cuStreamGetCaptureInfo_v2(CUstream hStream, CUstreamCaptureStatus *captureStatus_out,
					     cuuint64_t *id_out, CUgraph *graph_out,
					     const CUgraphNode **dependencies_out, size_t *numDependencies_out)
{
	return capture_info(hStream, 2, 0, captureStatus_out, id_out, graph_out, dependencies_out, NULL,
			    numDependencies_out);
}

VG_EXPORT CUresult cuStreamGetCaptureInfo_v2_ptsz(CUstream hStream, CUstreamCaptureStatus *captureStatus_out,
						  cuuint64_t *id_out, CUgraph *graph_out,
						  const CUgraphNode **dependencies_out, size_t *numDependencies_out)
{
	return capture_info(hStream, 2, 1, captureStatus_out, id_out, graph_out, dependencies_out, NULL,
			    numDependencies_out);
}

VG_EXPORT CUresult cuStreamGetCaptureInfo_v3(CUstream hStream, CUstreamCaptureStatus *captureStatus_out,
					     cuuint64_t *id_out, CUgraph *graph_out,
					     const CUgraphNode **dependencies_out, const CUgraphEdgeData **edgeData_out,
					     size_t *numDependencies_out)
{
	return capture_info(hStream, 3, 0, captureStatus_out, id_out, graph_out, dependencies_out, edgeData_out,
			    numDependencies_out);
}

VG_EXPORT CUresult cuStreamGetCaptureInfo_v3_ptsz(CUstream hStream, CUstreamCaptureStatus *captureStatus_out,
						  cuuint64_t *id_out, CUgraph *graph_out,
						  const CUgraphNode **dependencies_out,
						  const CUgraphEdgeData **edgeData_out, size_t *numDependencies_out)
{
	return capture_info(hStream, 3, 1, captureStatus_out, id_out, graph_out, dependencies_out, edgeData_out,
			    numDependencies_out);
}
