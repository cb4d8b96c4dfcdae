/*
 * cuStreamGetCaptureInfo_v2/_v3: the dependency array the driver returns
 * lives in the guest here, per thread, valid until this thread's next call,
 * as with the real driver.
 *
 * While no capture is open anywhere in the process, the answer for a stream
 * this process knows is CU_STREAM_CAPTURE_STATUS_NONE, and it is given here:
 * cudart asks before each of its asynchronous copies (six times per token
 * in llama.cpp's decode).  Captures are counted by the calls that open and
 * close them (a capture that other streams joined ends with its origin
 * stream's).  The host is asked whenever the answer is not certain: a
 * capture open, a stream created before some context ended, a default
 * stream while the thread's current context is unknown.  For a stream that
 * is not capturing, NVIDIA's driver writes the status only (the GPU suite's
 * graph case checks with every output preset), and so do both paths here.
 *
 * CAPTURE_INFO: u32 version (2 or 3), u32 per-thread-stream form, u64 stream.
 * Reply: u32 status, u64 capture id, u64 graph id, u32 n (<=
 * VG_CAPTURE_DEPS_MAX), n x u64 node ids, u32 has_edges, then (version 3,
 * has_edges) n x edge data bytes.
 */
#include <stdlib.h>
#include <string.h>

#include "lc.h"


static __thread CUgraphNode *tls_deps;
static __thread CUgraphEdgeData *tls_edges;
static __thread size_t tls_cap;

/* ---- captures open in this process ------------------------------------ */

static pthread_mutex_t cap_lock = PTHREAD_MUTEX_INITIALIZER;
static uint64_t *cap_streams;		/* origin streams of open captures */
static size_t cap_n, cap_size;
static size_t cap_open;			/* atomic copy of cap_n, read without the lock */
static uint64_t ctx_end_gen;		/* atomic: contexts ended so far */

/* The per-thread default stream has two spellings. */
static uint64_t stream_key(uint64_t id, int ptsz)
{
	return id == 0 && ptsz ? (uint64_t)(uintptr_t)CU_STREAM_PER_THREAD : id;
}

static void cap_add(uint64_t key)
{
	pthread_mutex_lock(&cap_lock);
	if (cap_n == cap_size) {
		size_t size = cap_size ? 2 * cap_size : 8;
		uint64_t *p = realloc(cap_streams, size * sizeof(*p));

		if (!p) {
			/* Unrecorded, the capture would be missed: count it anyway. */
			cap_open = SIZE_MAX;
			pthread_mutex_unlock(&cap_lock);
			return;
		}
		cap_streams = p;
		cap_size = size;
	}
	cap_streams[cap_n++] = key;
	if (cap_open != SIZE_MAX)
		__atomic_store_n(&cap_open, cap_n, __ATOMIC_RELEASE);
	pthread_mutex_unlock(&cap_lock);
}

static void cap_remove(uint64_t key)
{
	size_t i;

	pthread_mutex_lock(&cap_lock);
	for (i = 0; i < cap_n; i++)
		if (cap_streams[i] == key) {
			cap_streams[i] = cap_streams[--cap_n];
			if (cap_open != SIZE_MAX)
				__atomic_store_n(&cap_open, cap_n, __ATOMIC_RELEASE);
			break;
		}
	pthread_mutex_unlock(&cap_lock);
}

static int cap_has(uint64_t key)
{
	size_t i;
	int found = 0;

	pthread_mutex_lock(&cap_lock);
	for (i = 0; i < cap_n && !found; i++)
		found = cap_streams[i] == key;
	pthread_mutex_unlock(&cap_lock);
	return found;
}

/* The handle table's value of a stream: the context-end count at its creation, plus one. */
uint64_t lc_capture_stream_stamp(void);
uint64_t lc_capture_stream_stamp(void)
{
	return __atomic_load_n(&ctx_end_gen, __ATOMIC_ACQUIRE) + 1;
}

void lc_capture_ctx_ended(void);
void lc_capture_ctx_ended(void)
{
	__atomic_add_fetch(&ctx_end_gen, 1, __ATOMIC_ACQ_REL);
}

/* After a call that may open or close a capture (any result). */
void lc_capture_after_call(int fn, const uint64_t *a, CUresult res);
void lc_capture_after_call(int fn, const uint64_t *a, CUresult res)
{
	CUstreamCaptureStatus st;
	int ptsz = 0;

	switch (fn) {
	case VG_FN_cuStreamBeginCapture_ptsz:
	case VG_FN_cuStreamBeginCapture_v2_ptsz:
	case VG_FN_cuStreamBeginCaptureToGraph_ptsz:
		ptsz = 1;
		/* fall through */
	case VG_FN_cuStreamBeginCapture:
	case VG_FN_cuStreamBeginCapture_v2:
	case VG_FN_cuStreamBeginCaptureToGraph:
		if (res == CUDA_SUCCESS)
			cap_add(stream_key(a[0], ptsz));
		break;
	case VG_FN_cuStreamEndCapture_ptsz:
		ptsz = 1;
		/* fall through */
	case VG_FN_cuStreamEndCapture:
		if (!cap_has(stream_key(a[0], ptsz)))
			break;
		/*
		 * A failed end may or may not have ended the capture (an
		 * invalidated one ends, one from the wrong thread goes on):
		 * the host says which.
		 */
		if (res == CUDA_SUCCESS ||
		    ((ptsz ? cuStreamGetCaptureInfo_v2_ptsz : cuStreamGetCaptureInfo_v2)(
			     (CUstream)(uintptr_t)a[0], &st, NULL, NULL, NULL, NULL) == CUDA_SUCCESS &&
		     st == CU_STREAM_CAPTURE_STATUS_NONE))
			cap_remove(stream_key(a[0], ptsz));
		break;
	default:
		break;
	}
}

/* Whether the answer for s is certainly NONE without asking the host. */
static int answer_here(CUstream s)
{
	uint64_t id = (uint64_t)(uintptr_t)s, ctx = 0;
	struct vg_hent *e;
	int ok;

	if (__atomic_load_n(&cap_open, __ATOMIC_ACQUIRE) != 0)
		return 0;
	if (id == 0 || id == (uint64_t)(uintptr_t)CU_STREAM_LEGACY || id == (uint64_t)(uintptr_t)CU_STREAM_PER_THREAD)
		return lc_ctx_current_known(&ctx) && ctx != 0;
	pthread_mutex_lock(&lc.lock);
	e = vg_htab_get(&lc.handles, id);
	ok = e && e->type == VG_H_CUstream && e->val == lc_capture_stream_stamp();
	pthread_mutex_unlock(&lc.lock);
	return ok;
}

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
	if (answer_here(s)) {
		*status_out = CU_STREAM_CAPTURE_STATUS_NONE;
		return CUDA_SUCCESS;
	}
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
	if (st == CU_STREAM_CAPTURE_STATUS_NONE)
		goto out;	/* the driver writes nothing else then */
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
