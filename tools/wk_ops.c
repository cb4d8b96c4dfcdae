/*
 * The worker's hand-written operations (VG_OP_*): the dispatch, the device
 * snapshot, capture info, graph updates, ring attachment, and the cleanup
 * after a client.  The others live by concern in wk_module.c, wk_launch.c,
 * wk_memory.c, wk_callback.c and wk_memloc.c.  Payload layouts are documented
 * at each handler; every field is validated before use.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tp.h"
#include "vgpu/ops.h"
#include "worker.h"

static void put_cstr(struct vg_buf *b, const char *s)
{
	vg_put_blob(b, s, (uint32_t)strlen(s) + 1);
}

/*
 * SNAPSHOT: empty request.  Reply: u32 ndev, then per device: u32 ordinal,
 * blob name, 16 bytes UUID, blob PCI bus id, u64 total memory, u32
 * VG_SNAP_ATTRS, that many (i32 status, i32 value), i32 LUID status,
 * 8 bytes LUID, u32 node mask.  Header status: the host's cuInit result.
 */
/* A warm worker's snapshot, made before its client came; served once. */
static struct vg_buf warm_snap;
static int warm_snap_ok;

static CUresult op_snapshot(struct vg_rd *r, struct vg_buf *out)
{
	CUresult res;
	int n = 0, i, a;

	if (r->len != 0)
		wk_fatal("SNAPSHOT with a payload");
	if (warm_snap_ok) {
		vg_put_bytes(out, warm_snap.p, warm_snap.len);
		vg_buf_fini(&warm_snap);
		warm_snap_ok = 0;
		return CUDA_SUCCESS;
	}
	VG_DEBUG("snapshot: cuInit");
	res = WK_CALL(cuInit, 0);
	if (res != CUDA_SUCCESS)
		return res;
	VG_DEBUG("snapshot: cuInit done");
	res = WK_CALL(cuDeviceGetCount, &n);
	if (res != CUDA_SUCCESS)
		return res;
	if (n > VG_SNAP_DEV_MAX)
		n = VG_SNAP_DEV_MAX;
	vg_put_u32(out, (uint32_t)n);
	for (i = 0; i < n; i++) {
		char name[VG_SNAP_NAME_MAX] = "", bus[VG_SNAP_BUSID_MAX] = "", luid[8] = { 0 };
		CUuuid uuid;
		size_t total = 0;
		unsigned int mask = 0;
		CUdevice d = 0;

		memset(&uuid, 0, sizeof(uuid));
		WK_CALL(cuDeviceGet, &d, i);
		WK_CALL(cuDeviceGetName, name, sizeof(name) - 1, d);
		if (WK_CALL(cuDeviceGetUuid_v2, &uuid, d) != CUDA_SUCCESS)
			WK_CALL(cuDeviceGetUuid, &uuid, d);
		WK_CALL(cuDeviceGetPCIBusId, bus, sizeof(bus) - 1, d);
		WK_CALL(cuDeviceTotalMem_v2, &total, d);
		vg_put_u32(out, (uint32_t)i);
		put_cstr(out, name);
		vg_put_bytes(out, &uuid, 16);
		put_cstr(out, bus);
		vg_put_u64(out, total);
		vg_put_u32(out, VG_SNAP_ATTRS);
		for (a = 0; a < VG_SNAP_ATTRS; a++) {
			int v = 0;
			CUresult ar = a == 0 ? CUDA_ERROR_INVALID_VALUE
					     : WK_CALL(cuDeviceGetAttribute, &v, (CUdevice_attribute)a, d);

			vg_put_u32(out, (uint32_t)ar);
			vg_put_u32(out, ar == CUDA_SUCCESS ? (uint32_t)v : 0);
		}
		res = WK_CALL(cuDeviceGetLuid, luid, &mask, d);
		vg_put_u32(out, (uint32_t)res);
		vg_put_bytes(out, luid, 8);
		vg_put_u32(out, mask);
	}
	VG_DEBUG("snapshot: %d devices done", n);
	return CUDA_SUCCESS;
}

int wk_snapshot_prepare(void)
{
	struct vg_rd r;
	CUresult res;

	vg_rd_init(&r, NULL, 0);
	vg_buf_init(&warm_snap);
	res = op_snapshot(&r, &warm_snap);
	if (res != CUDA_SUCCESS || warm_snap.err) {
		vg_buf_fini(&warm_snap);
		return -1;
	}
	warm_snap_ok = 1;
	return 0;
}

/*
 * A warm worker also creates device 0's primary context before its client
 * comes: the context's creation is most of a CUDA program's first call.
 * The worker holds it by a hidden reference only until the client's first
 * cuDevicePrimaryCtxRetain, which takes it over (the hidden reference is
 * dropped at once, so from then on the count is the client's own).  Until
 * then the client must see what a process that never retained it sees:
 * cuDevicePrimaryCtxGetState answers inactive, and any other primary-context
 * call on that device (release, reset, set flags) drops the hidden reference
 * first and then is the driver's own.  The primary-context entries of
 * wk.fns are replaced by the wrappers below, so every path goes through them.
 */
static pthread_mutex_t prewarm_lock = PTHREAD_MUTEX_INITIALIZER;
static int prewarm_held;
static CUdevice prewarm_dev;
static struct {
	__typeof__(&cuDevicePrimaryCtxRetain) retain;
	__typeof__(&cuDevicePrimaryCtxRelease_v2) release2, release;
	__typeof__(&cuDevicePrimaryCtxGetState) getstate;
	__typeof__(&cuDevicePrimaryCtxReset_v2) reset2, reset;
	__typeof__(&cuDevicePrimaryCtxSetFlags_v2) setflags2, setflags;
} pw;

/* Drops the hidden reference when it is on dev; with prewarm_lock held. */
static void prewarm_drop(CUdevice dev)
{
	if (prewarm_held && dev == prewarm_dev) {
		prewarm_held = 0;
		pw.release2(dev);
	}
}

static CUresult pw_retain(CUcontext *pctx, CUdevice dev)
{
	CUresult res;

	pthread_mutex_lock(&prewarm_lock);
	res = pw.retain(pctx, dev);
	if (res == CUDA_SUCCESS)
		prewarm_drop(dev);
	pthread_mutex_unlock(&prewarm_lock);
	return res;
}

static CUresult pw_getstate(CUdevice dev, unsigned int *flags, int *active)
{
	CUresult res;

	pthread_mutex_lock(&prewarm_lock);
	res = pw.getstate(dev, flags, active);
	if (res == CUDA_SUCCESS && prewarm_held && dev == prewarm_dev && active)
		*active = 0;
	pthread_mutex_unlock(&prewarm_lock);
	return res;
}

#define PW_DROP_THEN(name, ...) do { \
	CUresult res_; \
	pthread_mutex_lock(&prewarm_lock); \
	prewarm_drop(dev); \
	res_ = pw.name(__VA_ARGS__); \
	pthread_mutex_unlock(&prewarm_lock); \
	return res_; \
} while (0)

static CUresult pw_release2(CUdevice dev) { PW_DROP_THEN(release2, dev); }
static CUresult pw_release(CUdevice dev) { PW_DROP_THEN(release, dev); }
static CUresult pw_reset2(CUdevice dev) { PW_DROP_THEN(reset2, dev); }
static CUresult pw_reset(CUdevice dev) { PW_DROP_THEN(reset, dev); }
static CUresult pw_setflags2(CUdevice dev, unsigned int f) { PW_DROP_THEN(setflags2, dev, f); }
static CUresult pw_setflags(CUdevice dev, unsigned int f) { PW_DROP_THEN(setflags, dev, f); }

/* The client is gone: a context made ahead that it never took goes too. */
void wk_prewarm_release(void)
{
	pthread_mutex_lock(&prewarm_lock);
	prewarm_drop(prewarm_dev);
	pthread_mutex_unlock(&prewarm_lock);
}

/* After the snapshot; failure only means a slower first call. */
void wk_prewarm_context(void)
{
	CUcontext c = NULL;
	CUdevice dev = 0;

	pw.retain = WK_FN(cuDevicePrimaryCtxRetain);
	pw.release2 = WK_FN(cuDevicePrimaryCtxRelease_v2);
	pw.release = WK_FN(cuDevicePrimaryCtxRelease);
	pw.getstate = WK_FN(cuDevicePrimaryCtxGetState);
	pw.reset2 = WK_FN(cuDevicePrimaryCtxReset_v2);
	pw.reset = WK_FN(cuDevicePrimaryCtxReset);
	pw.setflags2 = WK_FN(cuDevicePrimaryCtxSetFlags_v2);
	pw.setflags = WK_FN(cuDevicePrimaryCtxSetFlags);
	if (!pw.retain || !pw.release2 || !pw.release || !pw.getstate || !pw.reset2 || !pw.reset ||
	    !pw.setflags2 || !pw.setflags || !wk.fns[VG_FN_cuDeviceGet])
		return;
	if (WK_FN(cuDeviceGet)(&dev, 0) != CUDA_SUCCESS || pw.retain(&c, dev) != CUDA_SUCCESS)
		return;
	prewarm_dev = dev;
	prewarm_held = 1;
	wk.fns[VG_FN_cuDevicePrimaryCtxRetain] = (void *)pw_retain;
	wk.fns[VG_FN_cuDevicePrimaryCtxRelease_v2] = (void *)pw_release2;
	wk.fns[VG_FN_cuDevicePrimaryCtxRelease] = (void *)pw_release;
	wk.fns[VG_FN_cuDevicePrimaryCtxGetState] = (void *)pw_getstate;
	wk.fns[VG_FN_cuDevicePrimaryCtxReset_v2] = (void *)pw_reset2;
	wk.fns[VG_FN_cuDevicePrimaryCtxReset] = (void *)pw_reset;
	wk.fns[VG_FN_cuDevicePrimaryCtxSetFlags_v2] = (void *)pw_setflags2;
	wk.fns[VG_FN_cuDevicePrimaryCtxSetFlags] = (void *)pw_setflags;
	VG_DEBUG("warm worker: device 0's primary context made ahead");
}

/* CAPTURE_INFO: documented in libcuda/capture.c. */
static CUresult op_capture_info(struct vg_rd *r, struct vg_buf *out)
{
	uint32_t version = vg_get_u32(r), ptsz = vg_get_u32(r), i;
	CUstreamCaptureStatus st = CU_STREAM_CAPTURE_STATUS_NONE;
	cuuint64_t id = 0;
	CUgraph g = NULL;
	const CUgraphNode *deps = NULL;
	const CUgraphEdgeData *edges = NULL;
	size_t n = 0;
	void *s;
	CUresult res = wk_get_handle(r, VG_H_CUstream, &s);

	if (r->err || r->off != r->len || (version != 2 && version != 3) || ptsz > 1)
		wk_fatal("malformed CAPTURE_INFO");
	if (res != CUDA_SUCCESS)
		return res;
	if (version == 2 && !ptsz)
		res = WK_CALL(cuStreamGetCaptureInfo_v2, (CUstream)s, &st, &id, &g, &deps, &n);
	else if (version == 2)
		res = WK_CALL(cuStreamGetCaptureInfo_v2_ptsz, (CUstream)s, &st, &id, &g, &deps, &n);
	else if (!ptsz)
		res = WK_CALL(cuStreamGetCaptureInfo_v3, (CUstream)s, &st, &id, &g, &deps, &edges, &n);
	else
		res = WK_CALL(cuStreamGetCaptureInfo_v3_ptsz, (CUstream)s, &st, &id, &g, &deps, &edges, &n);
	if (res != CUDA_SUCCESS)
		return res;
	if (n > VG_CAPTURE_DEPS_MAX)
		return CUDA_ERROR_NOT_SUPPORTED;
	vg_put_u32(out, (uint32_t)st);
	vg_put_u64(out, id);
	wk_put_handle(out, g, VG_H_CUgraph);
	vg_put_u32(out, (uint32_t)n);
	for (i = 0; i < n; i++)
		wk_put_handle(out, deps ? deps[i] : NULL, VG_H_CUgraphNode);
	vg_put_u32(out, edges != NULL);
	if (edges)
		vg_put_bytes(out, edges, sizeof(*edges) * n);
	return CUDA_SUCCESS;
}

/* GRAPH_UPDATE: documented in libcuda/attrvalue.c. */
static CUresult op_graph_update(struct vg_rd *r, struct vg_buf *out)
{
	void *exec, *graph;
	CUresult r1 = wk_get_handle(r, VG_H_CUgraphExec, &exec);
	CUresult r2 = wk_get_handle(r, VG_H_CUgraph, &graph);
	CUgraphExecUpdateResultInfo info;
	CUresult res;

	if (r->err || r->off != r->len)
		wk_fatal("malformed GRAPH_UPDATE");
	if (r1 != CUDA_SUCCESS || r2 != CUDA_SUCCESS)
		return r1 != CUDA_SUCCESS ? r1 : r2;
	memset(&info, 0, sizeof(info));
	res = WK_CALL(cuGraphExecUpdate_v2, (CUgraphExec)exec, (CUgraph)graph, &info);
	vg_put_u32(out, (uint32_t)res);
	vg_put_u32(out, (uint32_t)info.result);
	wk_put_handle(out, info.errorNode, VG_H_CUgraphNode);
	wk_put_handle(out, info.errorFromNode, VG_H_CUgraphNode);
	return CUDA_SUCCESS;
}

/*
 * PRIMARY_PEEK: i32 host device ordinal.  Reply: u64 context id.  The
 * handle of the device's primary context, neither retained nor made
 * current, as cudart asks for it at its start (slot 2 of the driver's
 * CUDART_INTERFACE table, whose first word is its size).  Retaining and
 * releasing instead would create and destroy the context, hundreds of
 * milliseconds on a GPU.  NOT_SUPPORTED where the driver has no such slot:
 * the client then retains and releases.
 */
static CUresult op_primary_peek(struct vg_rd *r, struct vg_buf *out)
{
	static const CUuuid cudart_interface = { { 0x6b, 0xd5, 0xfb, 0x6c, 0x5b, 0xf4, 0xe7, 0x4a,
						   (char)0x89, (char)0x87, (char)0xd9, 0x39, 0x12, (char)0xfd,
						   (char)0x9d, (char)0xf9 } };
	int32_t ord = (int32_t)vg_get_u32(r);
	const void *tbl = NULL;
	void *const *words;
	CUresult (*peek)(CUcontext *, CUdevice);
	CUcontext c = NULL;
	CUresult res;

	if (r->err || r->off != r->len)
		wk_fatal("malformed PRIMARY_PEEK");
	if (!wk.fns[VG_FN_cuGetExportTable] ||
	    WK_FN(cuGetExportTable)(&tbl, &cudart_interface) != CUDA_SUCCESS || !tbl)
		return CUDA_ERROR_NOT_SUPPORTED;
	words = tbl;
	if ((uintptr_t)words[0] < 3 * sizeof(void *) || !words[2])
		return CUDA_ERROR_NOT_SUPPORTED;
	peek = (CUresult (*)(CUcontext *, CUdevice))(uintptr_t)words[2];
	res = peek(&c, (CUdevice)ord);
	if (res == CUDA_SUCCESS && !c)
		res = CUDA_ERROR_NOT_SUPPORTED;
	if (res == CUDA_SUCCESS)
		wk_put_handle(out, c, VG_H_CUcontext);
	return res;
}

/*
 * RING_ATTACH: u32 ring bytes, the memfd attached.  Checked now; the channel
 * moves to the rings right after the reply (which still goes on the socket).
 */
static CUresult op_ring_attach(struct wk_thread *t, struct vg_rd *r)
{
	uint32_t bytes = vg_get_u32(r);

	if (r->err || r->off != r->len || t->fd_in < 0 || t->callback)
		wk_fatal("malformed RING_ATTACH");
	if (bytes < 4096 || bytes > TP_RING_BYTES_MAX || (bytes & (bytes - 1)))
		wk_fatal("RING_ATTACH with %u-byte rings", bytes);
	if (!wk.ring_ok) {
		VG_WARN("the client's rings are of an older layout: its channels stay on the socket");
		return CUDA_ERROR_NOT_SUPPORTED;
	}
	t->ring_fd = dup(t->fd_in);
	if (t->ring_fd < 0)
		return CUDA_ERROR_OUT_OF_MEMORY;
	t->ring_bytes = bytes;
	return CUDA_SUCCESS;
}

CUresult wk_manual(struct wk_thread *t, uint32_t op, struct vg_rd *r, struct vg_buf *out)
{
	switch (op) {
	case VG_OP_SNAPSHOT:
		return op_snapshot(r, out);
	case VG_OP_MODULE_LOAD:
		return wk_op_module_load(r, out);
	case VG_OP_FUNC_INFO:
		return wk_op_func_info(r, out);
	case VG_OP_LAUNCH:
		return wk_op_launch(r, 0);
	case VG_OP_LAUNCH_EX:
		return wk_op_launch(r, 1);
	case VG_OP_LIBRARY_LOAD:
		return wk_op_library_load(r, out);
	case VG_OP_MEMCPY2D:
		return wk_op_memcpy(r, out, 0);
	case VG_OP_MEMCPY3D:
		return wk_op_memcpy(r, out, 1);
	case VG_OP_POINTER_ATTR:
		return wk_op_pointer_attr(r, out);
	case VG_OP_OCC_BLOCKSIZE:
		return wk_op_occ_blocksize(t, r, out);
	case VG_OP_FUNC_NAME:
		return wk_op_func_name(r, out);
	case VG_OP_CALLBACK_CHANNEL:
		return wk_op_callback_channel(t, r);
	case VG_OP_HOST_FUNC:
		return wk_op_host_func(r);
	case VG_OP_MEMLOC:
		return wk_memloc(r, out);
	case VG_OP_CAPTURE_INFO:
		return op_capture_info(r, out);
	case VG_OP_HOST_MEM:
		return wk_op_host_mem(t, r, out);
	case VG_OP_ATTR_VALUE:
		return wk_op_attr_value(r, out);
	case VG_OP_GRAPH_UPDATE:
		return op_graph_update(r, out);
	case VG_OP_RING_ATTACH:
		return op_ring_attach(t, r);
	case VG_OP_OCC_CLUSTERS:
		return wk_op_occ_clusters(r, out);
	case VG_OP_PRIMARY_PEEK:
		return op_primary_peek(r, out);
	default:
		wk_fatal("unknown operation %#x", op);
	}
}

/* The client is gone: release what it left, so nothing outlives it. */
void wk_cleanup(void)
{
	int n = 0, i;
	size_t k;
	void *prim[VG_SNAP_DEV_MAX] = { 0 };

	wk.quiet = 1;
	wk_prewarm_release();
	if (WK_CALL(cuDeviceGetCount, &n) != CUDA_SUCCESS)
		return;
	if (n > VG_SNAP_DEV_MAX)
		n = VG_SNAP_DEV_MAX;
	for (i = 0; i < n; i++) {
		unsigned int flags;
		int active = 0;

		if (WK_CALL(cuDevicePrimaryCtxGetState, i, &flags, &active) == CUDA_SUCCESS && active) {
			CUcontext c = NULL;

			if (WK_CALL(cuDevicePrimaryCtxRetain, &c, i) == CUDA_SUCCESS) {
				prim[i] = c;
				WK_CALL(cuDevicePrimaryCtxRelease_v2, i);
			}
		}
	}
	for (k = 0; k < wk.ids.cap; k++) {
		struct vg_hent *e = &wk.ids.slots[k];

		if (e->key == 0 || e->key == VG_HTAB_TOMB || e->type != VG_H_CUcontext)
			continue;
		for (i = 0; i < n; i++)
			if (prim[i] == (void *)(uintptr_t)e->val)
				break;
		if (i == n)
			WK_CALL(cuCtxDestroy_v2, (CUcontext)(uintptr_t)e->val);
	}
	for (i = 0; i < n; i++)
		if (prim[i])
			WK_CALL(cuDevicePrimaryCtxReset_v2, i);
}
