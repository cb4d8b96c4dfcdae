/*
 * fuzz-host: a libFuzzer harness for everything the host decodes from a
 * client.
 *
 * The input is a stream of messages as they travel on a channel: each a
 * 32-byte header (include/vgpu/wire.h) and its payload, back to back; a
 * message announcing more bytes than are left gets what is left.  Each
 * header goes through vg_hdr_decode; a bad one ends the input, as it ends a
 * session.  Then, by kind:
 *   HELLO, WELCOME, THREAD_OPEN(ED), ERROR, STATS, STATS_REPLY
 *       the wire decoders; what decodes is encoded again and must decode
 *       to the same;
 *   CALL
 *       the worker's own dispatch, wk_generic (descriptor-driven decoding,
 *       handle lookups, limits) or wk_manual (every hand-written operation),
 *       as the worker's thread loop calls them.
 *
 * The driver is a stand-in whose entry points ignore their arguments: for
 * generic calls it returns the CALL header's status field (0: success, so
 * the outputs are encoded and handles registered), for manual operations
 * CUDA_ERROR_INVALID_VALUE (their outputs live on the worker's stack; a real
 * driver sets them when it succeeds, a stand-in would not).  The exceptions
 * are the 2D/3D copies and the launches, whose stand-ins touch every host
 * byte the driver would read or write (and the copies succeed).  One
 * handle of every type is known (id 0x1000 + 16 * type), so decoding gets
 * past handle lookups.  wk_fatal, where the real worker ends the session,
 * jumps back here and ends the input.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vgpu/ops.h"
#include "worker.h"

struct wk_state wk = {
	.lock = PTHREAD_MUTEX_INITIALIZER,
	.cb_lock = PTHREAD_MUTEX_INITIALIZER,
};

static jmp_buf fatal_jmp;
static int32_t stub_result;
static struct wk_thread thr;

static int verbose;		/* FUZZ_HOST_VERBOSE=1: say where each input ends */

void wk_fatal(const char *fmt, ...)
{
	va_list ap;

	if (verbose) {
		va_start(ap, fmt);
		fprintf(stderr, "fuzz-host: session ended: ");
		vfprintf(stderr, fmt, ap);
		fputc('\n', stderr);
		va_end(ap);
	}
	longjmp(fatal_jmp, 1);
}

/* No guest on the other end: a host call fails as if the guest had gone. */
int wk_host_call(struct wk_thread *t, uint32_t op, const struct vg_buf *req, struct vg_buf *rep)
{
	(void)t, (void)op, (void)req, (void)rep;
	return -EIO;
}

static CUresult stub(void)
{
	return (CUresult)stub_result;
}

/*
 * Stand-ins that do to host memory what the driver does: they read every
 * byte the worker hands them and write every byte they may write, so ASan
 * sees a staging buffer that is too small or an offset that leaves it.
 */
static volatile uint8_t sink;

static void touch(const void *p, uint64_t n, int write)
{
	volatile uint8_t *q = (volatile uint8_t *)(uintptr_t)p;
	uint64_t i;

	if (!n)
		return;
	for (i = 0; i < n; i++) {
		sink ^= q[i];
		if (write)
			q[i] = 0;
	}
}

/*
 * A copy's host side: slices of rows rows of width bytes, pitch apart,
 * starting at row y (of rows_per_slice-row slices) and byte x.  The first and
 * last bytes are enough: the worker hands one allocation, and a span whose
 * ends lie in it lies in it whole (touching every byte of a 256 MiB copy
 * would make one input take seconds).
 */
static void touch_span(const void *base, uint64_t x, uint64_t y, uint64_t pitch, uint64_t width,
		       uint64_t rows, int write)
{
	const uint8_t *p = (const uint8_t *)base;

	if (!width || !rows)
		return;		/* nothing to copy */
	touch(p + y * pitch + x, 1, write);
	touch(p + (y + rows - 1) * pitch + x + width - 1, 1, write);
}

static CUresult copy2d(const CUDA_MEMCPY2D *c)
{
	if (c->srcMemoryType == CU_MEMORYTYPE_HOST)
		touch_span(c->srcHost, c->srcXInBytes, c->srcY, c->srcPitch, c->WidthInBytes, c->Height, 0);
	if (c->dstMemoryType == CU_MEMORYTYPE_HOST)
		touch_span(c->dstHost, c->dstXInBytes, c->dstY, c->dstPitch, c->WidthInBytes, c->Height, 1);
	return CUDA_SUCCESS;
}

static CUresult copy2d_async(const CUDA_MEMCPY2D *c, CUstream s)
{
	(void)s;
	return copy2d(c);
}

static CUresult copy3d(const CUDA_MEMCPY3D *c)
{
	if (!c->Depth || !c->Height)
		return CUDA_SUCCESS;
	/* Row r of slice z is row (z * height + r) of the whole. */
	if (c->srcMemoryType == CU_MEMORYTYPE_HOST)
		touch_span(c->srcHost, c->srcXInBytes, c->srcZ * c->srcHeight + c->srcY, c->srcPitch,
			   c->WidthInBytes, (c->Depth - 1) * c->srcHeight + c->Height, 0);
	if (c->dstMemoryType == CU_MEMORYTYPE_HOST)
		touch_span(c->dstHost, c->dstXInBytes, c->dstZ * c->dstHeight + c->dstY, c->dstPitch,
			   c->WidthInBytes, (c->Depth - 1) * c->dstHeight + c->Height, 1);
	return CUDA_SUCCESS;
}

static CUresult copy3d_async(const CUDA_MEMCPY3D *c, CUstream s)
{
	(void)s;
	return copy3d(c);
}

/* The parameter buffer of CU_LAUNCH_PARAM_BUFFER_POINTER, read whole. */
static void touch_extra(void **extra)
{
	const void *buf = NULL;
	const size_t *size = NULL;

	for (; extra && extra[0] != CU_LAUNCH_PARAM_END; extra += 2) {
		if (extra[0] == CU_LAUNCH_PARAM_BUFFER_POINTER)
			buf = extra[1];
		else if (extra[0] == CU_LAUNCH_PARAM_BUFFER_SIZE)
			size = extra[1];
	}
	if (buf && size)
		touch(buf, *size, 0);
}

static CUresult launch(CUfunction f, unsigned int gx, unsigned int gy, unsigned int gz, unsigned int bx,
		       unsigned int by, unsigned int bz, unsigned int shmem, CUstream s, void **params,
		       void **extra)
{
	(void)f, (void)gx, (void)gy, (void)gz, (void)bx, (void)by, (void)bz, (void)shmem, (void)s, (void)params;
	touch_extra(extra);
	return CUDA_ERROR_INVALID_VALUE;
}

static CUresult launch_ex(const CUlaunchConfig *cfg, CUfunction f, void **params, void **extra)
{
	(void)f, (void)params;
	touch(cfg->attrs, (uint64_t)cfg->numAttrs * sizeof(*cfg->attrs), 0);
	touch_extra(extra);
	return CUDA_ERROR_INVALID_VALUE;
}

#define FUZZ_ID(htype) (0x1000u + 16u * (uint64_t)(htype))

static void handles_reset(void)
{
	int h;

	for (h = 1; h < VG_H_MAX; h++) {
		wk_handle_forget(FUZZ_ID(h));
		wk_handle_register((void *)(uintptr_t)(0x7f0000000000ull + 0x1000ull * (uint64_t)h), h, FUZZ_ID(h));
	}
}

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	int i;

	(void)argc, (void)argv;
	verbose = getenv("FUZZ_HOST_VERBOSE") != NULL;
	setenv("VGPU_LOG", verbose ? "debug" : "error", 1);
	vg_log_set_component("fuzz-host");
	vg_htab_init(&wk.ids);
	vg_htab_init(&wk.shm);
	for (i = 0; i < VG_H_MAX; i++)
		vg_htab_init(&wk.rev[i]);
	for (i = 1; i < VG_FN_MAX; i++)
		if (vg_fn_descs[i].name)
			wk.fns[i] = (void *)stub;
	wk.fns[VG_FN_cuMemcpy2D_v2] = (void *)copy2d;
	wk.fns[VG_FN_cuMemcpy2DUnaligned_v2] = (void *)copy2d;
	wk.fns[VG_FN_cuMemcpy2DAsync_v2] = (void *)copy2d_async;
	wk.fns[VG_FN_cuMemcpy3D_v2] = (void *)copy3d;
	wk.fns[VG_FN_cuMemcpy3DAsync_v2] = (void *)copy3d_async;
	wk.fns[VG_FN_cuLaunchKernel] = (void *)launch;
	wk.fns[VG_FN_cuLaunchKernelEx] = (void *)launch_ex;
	wk.quiet = 1;
	if (wk_limits_init("max_device_memory=1G,max_streams=64,max_threads=16") < 0)
		abort();
	vg_buf_init(&thr.in);
	vg_buf_init(&thr.out);
	pthread_mutex_init(&thr.rx_lock, NULL);
	pthread_cond_init(&thr.rx_cond, NULL);
	return 0;
}

/* ---- the wire decoders, with a round trip ---------------------------------- */

static void same(const struct vg_buf *b, const uint8_t *p, size_t n)
{
	if (b->err || b->len != n || (n && memcmp(b->p, p, n) != 0))
		abort();	/* an encoder and its decoder disagree */
}

static void control_message(const struct vg_hdr *h, const uint8_t *p, size_t n)
{
	struct vg_buf b;
	struct vg_rd r;

	vg_buf_init(&b);
	vg_rd_init(&r, p, n);
	switch (h->kind) {
	case VG_MSG_HELLO: {
		static struct vg_hello m;

		if (vg_hello_decode(&r, &m) == 0) {
			vg_hello_check_version(&m);
			vg_hello_encode(&m, &b);
			same(&b, p, n);
		}
		break;
	}
	case VG_MSG_WELCOME: {
		struct vg_welcome m;

		if (vg_welcome_decode(&r, &m) == 0) {
			vg_welcome_encode(&m, &b);
			same(&b, p, n);
		}
		break;
	}
	case VG_MSG_THREAD_OPEN: {
		struct vg_thread_open m;

		if (vg_thread_open_decode(&r, &m) == 0) {
			vg_thread_open_encode(&m, &b);
			same(&b, p, n);
		}
		break;
	}
	case VG_MSG_THREAD_OPENED: {
		struct vg_thread_opened m;

		if (vg_thread_opened_decode(&r, &m) == 0) {
			vg_thread_opened_encode(&m, &b);
			same(&b, p, n);
		}
		break;
	}
	case VG_MSG_ERROR: {
		struct vg_error m;

		if (vg_error_decode(&r, &m) == 0) {
			vg_error_encode(&m, &b);
			same(&b, p, n);
		}
		break;
	}
	case VG_MSG_STATS:
		if (vg_stats_decode(&r) == 0) {
			vg_stats_encode(&b);
			same(&b, p, n);
		}
		break;
	case VG_MSG_STATS_REPLY: {
		static struct vg_stat v[VG_STATS_MAX];
		uint32_t cnt = 0;

		if (vg_stats_reply_decode(&r, v, VG_STATS_MAX, &cnt) == 0) {
			vg_stats_reply_encode(v, cnt, &b);
			same(&b, p, n);
		}
		break;
	}
	default:
		break;
	}
	vg_buf_fini(&b);
}

/* ---- the worker's dispatch --------------------------------------------------- */

/* What the worker's thread loop does with one CALL (tools/worker.c). */
static void call_message(const struct vg_hdr *h, const uint8_t *p, size_t n)
{
	struct vg_rd r;

	if (n > wk_limits_payload_max())
		wk_fatal("oversized");
	thr.seq = h->seq;
	vg_buf_reset(&thr.out);
	vg_rd_init(&r, p, n);
	if (h->op < VG_OP_BASE) {
		if (h->op == 0 || h->op >= VG_FN_MAX)
			wk_fatal("unknown function id %u", h->op);
		stub_result = h->status;
		wk_generic(&thr, (int)h->op, &r, &thr.out);
	} else {
		stub_result = CUDA_ERROR_INVALID_VALUE;
		wk_manual(&thr, h->op, &r, &thr.out);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	volatile size_t off = 0;

	handles_reset();
	wk.cb = NULL;
	thr.callback = 0;
	thr.fd_in = -1;
	thr.ring_fd = -1;
	thr.tid = 1;
	if (setjmp(fatal_jmp))
		return 0;	/* the session ended here */
	while (size - off >= VG_HDR_SIZE) {
		struct vg_hdr h;
		size_t n;

		if (vg_hdr_decode(data + off, &h) < 0)
			break;
		off += VG_HDR_SIZE;
		n = h.len - VG_HDR_SIZE;
		if (n > size - off)
			n = size - off;
		if (h.kind == VG_MSG_CALL)
			call_message(&h, data + off, n);
		else
			control_message(&h, data + off, n);
		off += n;
	}
	return 0;
}
