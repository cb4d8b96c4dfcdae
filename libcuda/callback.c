/*
 * Host functions and stream callbacks run here, in the guest, in stream
 * order: the worker enqueues a trampoline on the real stream, and when the
 * stream reaches it, the trampoline calls over to this process on the
 * callback channel and waits until the function has returned.
 *
 * The callback channel is an ordinary thread channel, opened by a thread of
 * ours started on first use, which then only serves HOST_CALLs.
 */
#include <stdlib.h>
#include <string.h>

#include "lc.h"
#include "tp.h"

struct tp_chan *lc_chan_open_raw(uint32_t *tid);

static pthread_once_t cb_once = PTHREAD_ONCE_INIT;
static CUresult cb_ready = CUDA_ERROR_NOT_INITIALIZED;
static struct tp_chan *cb_chan;
static uint32_t cb_tid;

static void *cb_main(void *arg)
{
	struct vg_buf in;
	struct vg_hdr h;
	struct vg_rd r;

	(void)arg;
	vg_buf_init(&in);
	for (;;) {
		if (tp_recv_msg(cb_chan, &h, &in, 4096, NULL) < 0)
			break;
		if (h.kind != VG_MSG_HOST_CALL)
			break;
		vg_rd_init(&r, in.p, in.len);
		if (h.op == VG_HC_HOST_FN) {
			const uint8_t *q = vg_get_bytes(&r, 16);

			if (q)
				((CUhostFn)(uintptr_t)vg_load_le(q, 8))((void *)(uintptr_t)vg_load_le(q + 8, 8));
		} else if (h.op == VG_HC_STREAM_CB) {
			const uint8_t *q = vg_get_bytes(&r, 28);

			if (q) {
				int32_t st;

				memcpy(&st, q + 16, 4);
				((CUstreamCallback)(uintptr_t)vg_load_le(q, 8))((CUstream)(uintptr_t)vg_load_le(q + 8, 8),
								       (CUresult)st,
								       (void *)(uintptr_t)vg_load_le(q + 20, 8));
			}
		}
		h.kind = VG_MSG_HOST_RETURN;
		h.status = 0;
		if (tp_send_msg(cb_chan, &h, NULL, 0, -1) < 0)
			break;
	}
	vg_buf_fini(&in);
	return NULL;
}

static void cb_start(void)
{
	struct vg_hdr h = { .kind = VG_MSG_CALL, .op = VG_OP_CALLBACK_CHANNEL };
	struct vg_buf rep;
	pthread_attr_t attr;
	pthread_t th;

	cb_chan = lc_chan_open_raw(&cb_tid);
	if (!cb_chan) {
		cb_ready = CUDA_ERROR_DEVICE_UNAVAILABLE;
		return;
	}
	vg_buf_init(&rep);
	h.tid = cb_tid;
	if (tp_send_msg(cb_chan, &h, NULL, 0, -1) < 0 || tp_recv_msg(cb_chan, &h, &rep, 64, NULL) < 0 ||
	    h.kind != VG_MSG_REPLY || h.status != 0) {
		cb_ready = CUDA_ERROR_DEVICE_UNAVAILABLE;
		goto out;
	}
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	if (pthread_create(&th, &attr, cb_main, NULL) == 0)
		cb_ready = CUDA_SUCCESS;
	else
		cb_ready = CUDA_ERROR_OUT_OF_MEMORY;
	pthread_attr_destroy(&attr);
out:
	vg_buf_fini(&rep);
}

/*
 * HOST_FUNC: u64 stream id, u32 kind (0 host function, 1 stream callback),
 * u64 fn, u64 userData, u32 flags.  Empty reply.
 */
static CUresult host_func(CUstream s, uint32_t kind, uint64_t fn, void *ud, unsigned int flags)
{
	struct vg_buf *b, rep;
	CUresult res = lc_check();

	if (res != CUDA_SUCCESS)
		return res;
	if (!fn)
		return CUDA_ERROR_INVALID_VALUE;
	pthread_once(&cb_once, cb_start);
	if (cb_ready != CUDA_SUCCESS)
		return cb_ready;
	b = lc_scratch();
	if (!b)
		return CUDA_ERROR_DEVICE_UNAVAILABLE;
	res = lc_put_handle(b, s, VG_H_CUstream, 1);
	if (res != CUDA_SUCCESS)
		return res;
	vg_put_u32(b, kind);
	vg_put_u64(b, fn);
	vg_put_u64(b, (uint64_t)(uintptr_t)ud);
	vg_put_u32(b, flags);
	vg_buf_init(&rep);
	res = lc_rpc(VG_OP_HOST_FUNC, b, &rep);
	vg_buf_fini(&rep);
	return res;
}

VG_EXPORT CUresult cuLaunchHostFunc(CUstream hStream, CUhostFn fn, void *userData)
{
	return host_func(hStream, 0, (uint64_t)(uintptr_t)fn, userData, 0);
}

VG_EXPORT CUresult cuLaunchHostFunc_ptsz(CUstream hStream, CUhostFn fn, void *userData)
{
	return host_func(hStream ? hStream : CU_STREAM_PER_THREAD, 0, (uint64_t)(uintptr_t)fn, userData, 0);
}

VG_EXPORT CUresult cuStreamAddCallback(CUstream hStream, CUstreamCallback callback, void *userData,
				       unsigned int flags)
{
	if (flags != 0)
		return CUDA_ERROR_INVALID_VALUE;
	return host_func(hStream, 1, (uint64_t)(uintptr_t)callback, userData, flags);
}

VG_EXPORT CUresult cuStreamAddCallback_ptsz(CUstream hStream, CUstreamCallback callback, void *userData,
					    unsigned int flags)
{
	if (flags != 0)
		return CUDA_ERROR_INVALID_VALUE;
	return host_func(hStream ? hStream : CU_STREAM_PER_THREAD, 1, (uint64_t)(uintptr_t)callback, userData,
			 flags);
}
