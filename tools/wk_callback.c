/*
 * The worker: host functions and stream callbacks, which run in the guest.
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

/*
 * Host functions.  The trampoline runs on a driver thread when the stream
 * reaches it, calls the guest on the callback channel and waits, so the
 * stream does not move on before the guest function has returned.
 */
struct wk_hostfn {
	uint64_t fn, ud, stream_id;
	int keep;		/* captured into a graph: called on every replay */
};

static void hostfn_call(uint32_t op, const struct vg_buf *req)
{
	struct vg_hdr h = { .kind = VG_MSG_HOST_CALL, .op = op };
	struct vg_buf rep;
	struct wk_thread *t = wk.cb;

	if (!t)
		return;
	vg_buf_init(&rep);
	pthread_mutex_lock(&wk.cb_lock);
	h.tid = t->tid;
	if (tp_send_msg(t->chan, &h, req->p, req->len, -1) == 0)
		tp_recv_msg(t->chan, &h, &rep, 64, NULL);
	pthread_mutex_unlock(&wk.cb_lock);
	vg_buf_fini(&rep);
}

static void hostfn_trampoline(void *p)
{
	struct wk_hostfn *hf = p;
	struct vg_buf req;

	vg_buf_init(&req);
	vg_put_u64(&req, hf->fn);
	vg_put_u64(&req, hf->ud);
	hostfn_call(VG_HC_HOST_FN, &req);
	vg_buf_fini(&req);
	if (!hf->keep)
		free(hf);
}

static void stream_cb_trampoline(CUstream s, CUresult status, void *p)
{
	struct wk_hostfn *hf = p;
	struct vg_buf req;

	(void)s;
	vg_buf_init(&req);
	vg_put_u64(&req, hf->fn);
	vg_put_u64(&req, hf->stream_id);
	vg_put_u32(&req, (uint32_t)status);
	vg_put_u64(&req, hf->ud);
	hostfn_call(VG_HC_STREAM_CB, &req);
	vg_buf_fini(&req);
	free(hf);
}

/* CALLBACK_CHANNEL: empty.  This thread's channel carries host functions from now on. */
CUresult wk_op_callback_channel(struct wk_thread *t, struct vg_rd *r)
{
	if (r->len != 0 || wk.cb)
		wk_fatal("unexpected CALLBACK_CHANNEL");
	t->callback = 1;
	wk.cb = t;
	return CUDA_SUCCESS;
}

/*
 * HOST_FUNC: u64 stream id, u32 kind (0 host function, 1 stream callback),
 * u64 fn, u64 userData, u32 flags.  The guest's pointers are only handed
 * back to the guest, never called here.
 */
CUresult wk_op_host_func(struct vg_rd *r)
{
	void *s;
	uint64_t sid;
	CUresult res = wk_get_handle_id(r, VG_H_CUstream, &s, &sid);
	uint32_t kind = vg_get_u32(r);
	uint64_t fn = vg_get_u64(r), ud = vg_get_u64(r);
	uint32_t flags = vg_get_u32(r);
	CUstreamCaptureStatus cs = CU_STREAM_CAPTURE_STATUS_NONE;
	struct wk_hostfn *hf;

	if (r->err || r->off != r->len || kind > 1)
		wk_fatal("malformed HOST_FUNC");
	if (res != CUDA_SUCCESS)
		return res;
	if (!wk.cb)
		wk_fatal("HOST_FUNC before the callback channel");
	hf = calloc(1, sizeof(*hf));
	if (!hf)
		return CUDA_ERROR_OUT_OF_MEMORY;
	hf->fn = fn;
	hf->ud = ud;
	hf->stream_id = sid;
	if (kind == 0) {
		if (wk.fns[VG_FN_cuStreamIsCapturing])
			WK_FN(cuStreamIsCapturing)((CUstream)s, &cs);
		hf->keep = cs != CU_STREAM_CAPTURE_STATUS_NONE;
		res = WK_CALL(cuLaunchHostFunc, (CUstream)s, hostfn_trampoline, hf);
	} else {
		res = WK_CALL(cuStreamAddCallback, (CUstream)s, stream_cb_trampoline, hf, flags);
	}
	if (res != CUDA_SUCCESS)
		free(hf);
	return res;
}
