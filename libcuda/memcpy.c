/*
 * 2D and 3D copies (VG_OP_MEMCPY2D / VG_OP_MEMCPY3D), whose descriptors
 * hold host pointers and array handles: host regions are gathered into (or
 * scattered from) a packed blob, arrays travel as ids.
 */
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "lc.h"
#include "pcopy.h"

struct lc_side {
	CUmemorytype type;
	const void *host;
	CUdeviceptr dev;
	CUarray array;
	size_t pitch, x, y, z, lod, height;
};

static CUresult put_side(struct vg_buf *b, const struct lc_side *s, int three_d)
{
	CUresult res = CUDA_SUCCESS;

	vg_put_u32(b, (uint32_t)s->type);
	vg_put_u64(b, s->dev);
	if (s->type == CU_MEMORYTYPE_ARRAY)
		res = lc_put_handle(b, s->array, VG_H_CUarray, 0);
	else
		vg_put_u64(b, 0);
	vg_put_u64(b, s->pitch);
	vg_put_u64(b, s->x);
	vg_put_u64(b, s->y);
	if (three_d) {
		vg_put_u64(b, s->z);
		vg_put_u64(b, s->lod);
		vg_put_u64(b, s->height);
	}
	return res;
}

/* Row (y, z) of a host side starts here. */
static size_t host_row(const struct lc_side *s, size_t y, size_t z)
{
	size_t height = s->height ? s->height : 0;

	return ((s->z + z) * height + s->y + y) * s->pitch + s->x;
}

static CUresult copy(int three_d, uint32_t variant, const struct lc_side *src, const struct lc_side *dst,
		     size_t w, size_t h, size_t d, CUstream stream)
{
	struct vg_buf *b, rep;
	struct vg_rd r;
	CUresult res = lc_check();
	size_t y, z;

	if (res != CUDA_SUCCESS)
		return res;
	if (src->type < CU_MEMORYTYPE_HOST || src->type > CU_MEMORYTYPE_UNIFIED ||
	    dst->type < CU_MEMORYTYPE_HOST || dst->type > CU_MEMORYTYPE_UNIFIED)
		return CUDA_ERROR_INVALID_VALUE;
	if (w == 0 || h == 0 || d == 0)
		return CUDA_SUCCESS;
	if (w > VG_MSG_MAX || h > VG_MSG_MAX || d > VG_MSG_MAX || (uint64_t)w * h * d > VG_MSG_MAX - 4096) {
		VG_WARN("a %zux%zux%zu copy is larger than one message; not supported yet", w, h, d);
		return CUDA_ERROR_NOT_SUPPORTED;
	}
	if ((src->type == CU_MEMORYTYPE_HOST && (!src->host || src->pitch < src->x + w)) ||
	    (dst->type == CU_MEMORYTYPE_HOST && (!dst->host || dst->pitch < dst->x + w)))
		return CUDA_ERROR_INVALID_VALUE;
	b = lc_scratch();
	if (!b)
		return CUDA_ERROR_DEVICE_UNAVAILABLE;
	vg_put_u32(b, variant);
	res = lc_put_handle(b, stream, VG_H_CUstream, 1);
	if (res == CUDA_SUCCESS)
		res = put_side(b, src, three_d);
	if (res == CUDA_SUCCESS)
		res = put_side(b, dst, three_d);
	if (res != CUDA_SUCCESS)
		return res;
	vg_put_u64(b, w);
	vg_put_u64(b, h);
	if (three_d)
		vg_put_u64(b, d);
	if (src->type == CU_MEMORYTYPE_HOST) {
		uint8_t *q;

		vg_put_u32(b, (uint32_t)(w * h * d));
		q = vg_put_space(b, w * h * d);
		if (!q)
			return CUDA_ERROR_OUT_OF_MEMORY;
		for (z = 0; z < d; z++)
			for (y = 0; y < h; y++)
				memcpy(q + (z * h + y) * w, (const uint8_t *)src->host + host_row(src, y, z), w);
	}
	vg_buf_init(&rep);
	res = lc_rpc(three_d ? VG_OP_MEMCPY3D : VG_OP_MEMCPY2D, b, &rep);
	if (res == CUDA_SUCCESS && dst->type == CU_MEMORYTYPE_HOST) {
		uint32_t n = 0;
		int is_null = 0;
		const uint8_t *q;

		vg_rd_init(&r, rep.p, rep.len);
		q = vg_get_blob(&r, VG_MSG_MAX, &n, &is_null);
		if (!q || n != w * h * d) {
			res = CUDA_ERROR_UNKNOWN;
		} else {
			for (z = 0; z < d; z++)
				for (y = 0; y < h; y++)
					memcpy((uint8_t *)dst->host + host_row(dst, y, z), q + (z * h + y) * w, w);
		}
	}
	vg_buf_fini(&rep);
	return res;
}

static void sides_2d(const CUDA_MEMCPY2D *c, struct lc_side *s, struct lc_side *d)
{
	memset(s, 0, sizeof(*s));
	memset(d, 0, sizeof(*d));
	s->type = c->srcMemoryType;
	s->host = c->srcHost;
	s->dev = c->srcDevice;
	s->array = c->srcArray;
	s->pitch = c->srcPitch;
	s->x = c->srcXInBytes;
	s->y = c->srcY;
	d->type = c->dstMemoryType;
	d->host = c->dstHost;
	d->dev = c->dstDevice;
	d->array = c->dstArray;
	d->pitch = c->dstPitch;
	d->x = c->dstXInBytes;
	d->y = c->dstY;
}

static CUresult copy2d(const CUDA_MEMCPY2D *c, uint32_t variant, CUstream stream)
{
	struct lc_side s, d;

	if (!c)
		return CUDA_ERROR_INVALID_VALUE;
	sides_2d(c, &s, &d);
	return copy(0, variant, &s, &d, c->WidthInBytes, c->Height, 1, stream);
}

static CUresult copy3d(const CUDA_MEMCPY3D *c, uint32_t variant, CUstream stream)
{
	struct lc_side s, d;

	if (!c)
		return CUDA_ERROR_INVALID_VALUE;
	memset(&s, 0, sizeof(s));
	memset(&d, 0, sizeof(d));
	s.type = c->srcMemoryType;
	s.host = c->srcHost;
	s.dev = c->srcDevice;
	s.array = c->srcArray;
	s.pitch = c->srcPitch;
	s.height = c->srcHeight;
	s.x = c->srcXInBytes;
	s.y = c->srcY;
	s.z = c->srcZ;
	s.lod = c->srcLOD;
	d.type = c->dstMemoryType;
	d.host = c->dstHost;
	d.dev = c->dstDevice;
	d.array = c->dstArray;
	d.pitch = c->dstPitch;
	d.height = c->dstHeight;
	d.x = c->dstXInBytes;
	d.y = c->dstY;
	d.z = c->dstZ;
	d.lod = c->dstLOD;
	if ((s.type == CU_MEMORYTYPE_HOST && c->Depth > 1 && s.height < c->Height) ||
	    (d.type == CU_MEMORYTYPE_HOST && c->Depth > 1 && d.height < c->Height))
		return CUDA_ERROR_INVALID_VALUE;
	return copy(1, variant, &s, &d, c->WidthInBytes, c->Height, c->Depth, stream);
}

VG_EXPORT CUresult cuMemcpy2D_v2(const CUDA_MEMCPY2D *pCopy)
{
	return copy2d(pCopy, 0, NULL);
}

VG_EXPORT CUresult cuMemcpy2DUnaligned_v2(const CUDA_MEMCPY2D *pCopy)
{
	return copy2d(pCopy, 1, NULL);
}

VG_EXPORT CUresult cuMemcpy2DAsync_v2(const CUDA_MEMCPY2D *pCopy, CUstream hStream)
{
	return copy2d(pCopy, 2, hStream);
}

VG_EXPORT CUresult cuMemcpy3D_v2(const CUDA_MEMCPY3D *pCopy)
{
	return copy3d(pCopy, 0, NULL);
}

VG_EXPORT CUresult cuMemcpy3DAsync_v2(const CUDA_MEMCPY3D *pCopy, CUstream hStream)
{
	return copy3d(pCopy, 2, hStream);
}

VG_EXPORT CUresult cuMemcpy2DAsync_v2_ptsz(const CUDA_MEMCPY2D *pCopy, CUstream hStream)
{
	return copy2d(pCopy, 2, hStream ? hStream : CU_STREAM_PER_THREAD);
}

VG_EXPORT CUresult cuMemcpy3DAsync_v2_ptsz(const CUDA_MEMCPY3D *pCopy, CUstream hStream)
{
	return copy3d(pCopy, 2, hStream ? hStream : CU_STREAM_PER_THREAD);
}

/*
 * Unified copies: under unified addressing either side may be host memory.
 * The host cannot tell a guest address from its own, so the guest sorts
 * them: an address mapped in this process is host memory, anything else a
 * device address.
 */
static int guest_mapped(CUdeviceptr p, size_t n)
{
	static long page;
	unsigned char v;
	uintptr_t a, b;

	if (!page)
		page = sysconf(_SC_PAGESIZE);
	a = (uintptr_t)p & ~(uintptr_t)(page - 1);
	b = (uintptr_t)(p + (n ? n - 1 : 0)) & ~(uintptr_t)(page - 1);
	return mincore((void *)a, 1, &v) == 0 && mincore((void *)b, 1, &v) == 0;
}

static CUresult unified_copy(CUdeviceptr dst, CUdeviceptr src, size_t n, CUstream s, int async, int fn)
{
	/* Shared pinned memory has the same address in the worker: it may go as is. */
	int hd = !lc_hostmem_shared((void *)(uintptr_t)dst, n) && guest_mapped(dst, n);
	int hs = !lc_hostmem_shared((void *)(uintptr_t)src, n) && guest_mapped(src, n);
	uint64_t a[4] = { dst, src, n, (uint64_t)(uintptr_t)s };
	CUresult res;

	if (hd && hs) {
		res = lc_check();
		if (res == CUDA_SUCCESS && n)
			memmove((void *)(uintptr_t)dst, (const void *)(uintptr_t)src, n);
		return res;
	}
	if (hs)
		return async ? cuMemcpyHtoDAsync_v2(dst, (const void *)(uintptr_t)src, n, s)
			     : cuMemcpyHtoD_v2(dst, (const void *)(uintptr_t)src, n);
	if (hd)
		return async ? cuMemcpyDtoHAsync_v2((void *)(uintptr_t)dst, src, n, s)
			     : cuMemcpyDtoH_v2((void *)(uintptr_t)dst, src, n);
	return lc_call(fn, a);
}

VG_EXPORT CUresult cuMemcpy(CUdeviceptr dst, CUdeviceptr src, size_t ByteCount)
{
	return unified_copy(dst, src, ByteCount, NULL, 0, VG_FN_cuMemcpy);
}

VG_EXPORT CUresult cuMemcpy_ptds(CUdeviceptr dst, CUdeviceptr src, size_t ByteCount)
{
	return unified_copy(dst, src, ByteCount, NULL, 0, VG_FN_cuMemcpy_ptds);
}

VG_EXPORT CUresult cuMemcpyAsync(CUdeviceptr dst, CUdeviceptr src, size_t ByteCount, CUstream hStream)
{
	return unified_copy(dst, src, ByteCount, hStream, 1, VG_FN_cuMemcpyAsync);
}

VG_EXPORT CUresult cuMemcpyAsync_ptsz(CUdeviceptr dst, CUdeviceptr src, size_t ByteCount, CUstream hStream)
{
	return unified_copy(dst, src, ByteCount, hStream ? hStream : CU_STREAM_PER_THREAD, 1,
			    VG_FN_cuMemcpyAsync_ptsz);
}

/*
 * Linear copies between the device and pageable memory.  Small ones carry
 * their bytes in the message.  Large ones go in chunks: when the worker
 * shares memory with us, through a per-thread pinned staging area of
 * LC_STAGE_TOTAL bytes cut into slots of one chunk each, pipelined (while
 * the worker copies into or out of some slots by DMA, this thread fills or
 * empties another); otherwise each chunk carries its bytes.  Each chunk is
 * the same synchronous driver call, so the copy keeps the function's
 * ordering; its replies come in order, and every call in flight is waited
 * for, so an error leaves nothing behind.
 *
 * The guest's copies into and out of the slots are split over helper
 * threads (lc_pcopy): one thread's memcpy bounded these copies.
 *
 * VGPU_STAGE_KIB=CHUNK[xSLOTS] sets the chunk (KiB, a power of two from 64
 * to 8192) and how many slots are used (2 to 16, at most what fits).  On an
 * H100 machine no shape did better than the default, two 8 MiB halves
 * (tests/gpu/tune-staging; tests/gpu/RESULTS.md, run 13).
 */
#define LC_STAGE_TOTAL (16u << 20)
#define LC_STAGE_MIN   (256u << 10)
#define LC_STAGE_CHUNK (LC_STAGE_TOTAL / 2)	/* default chunk: two slots, the halves */

void *lc_shared_alloc(size_t size);

static __thread uint8_t *tls_stage;
static __thread int tls_stage_failed;

static uint8_t *stage_get(void)
{
	if (!tls_stage && !tls_stage_failed) {
		tls_stage = lc_shared_alloc(LC_STAGE_TOTAL);
		tls_stage_failed = !tls_stage;
	}
	return tls_stage;
}

/* Calls in flight, oldest first (a ring of LC_INFLIGHT_MAX). */
#define LC_INFLIGHT_MAX 16
#define LC_REMOTE_WINDOW 8	/* chunks in flight that carry their bytes */

/* A staged copy's chunk and slots (VGPU_STAGE_KIB), read once. */
static void stage_shape(size_t *chunk, unsigned int *slots)
{
	static uint64_t shape;	/* chunk << 8 | slots; 0: not read yet */
	uint64_t v = __atomic_load_n(&shape, __ATOMIC_RELAXED);

	if (!v) {
		const char *e = getenv("VGPU_STAGE_KIB");
		char *end = NULL;
		unsigned long kib = e && *e ? strtoul(e, &end, 10) : 0, n = 0;
		int ok = kib >= 64 && kib <= (LC_STAGE_TOTAL >> 11) && !(kib & (kib - 1));

		if (ok && *end == 'x') {
			n = strtoul(end + 1, &end, 10);
			ok = n >= 2 && n <= LC_INFLIGHT_MAX && n <= (LC_STAGE_TOTAL >> 10) / kib;
		} else if (ok) {
			n = (LC_STAGE_TOTAL >> 10) / kib;
			n = n > LC_INFLIGHT_MAX ? LC_INFLIGHT_MAX : n;
		}
		ok = ok && *end == '\0';
		if (e && *e && !ok)
			VG_WARN("VGPU_STAGE_KIB=%s is not CHUNK[xSLOTS] (CHUNK a power of two from 64 to %u KiB, "
				"SLOTS 2 to 16, CHUNK x SLOTS at most %u KiB); ignored", e, LC_STAGE_TOTAL >> 11,
				LC_STAGE_TOTAL >> 10);
		v = ok ? (uint64_t)kib << 10 << 8 | n : (uint64_t)LC_STAGE_CHUNK << 8 | 2;
		__atomic_store_n(&shape, v, __ATOMIC_RELAXED);
	}
	*chunk = (size_t)(v >> 8);
	*slots = (unsigned int)(v & 0xff);
}

struct lc_inflight {
	struct {
		struct lc_pending pc;
		uint64_t a[3];
	} c[LC_INFLIGHT_MAX];
	unsigned int head, n;
};

static CUresult inflight_end(int fn, struct lc_inflight *q)
{
	CUresult res = lc_call_end(fn, q->c[q->head].a, &q->c[q->head].pc);

	q->head = (q->head + 1) % LC_INFLIGHT_MAX;
	q->n--;
	return res;
}

/* Waits for every call in flight; the first error, or res. */
static CUresult inflight_drain(int fn, struct lc_inflight *q, CUresult res)
{
	while (q->n) {
		CUresult r = inflight_end(fn, q);

		if (res == CUDA_SUCCESS)
			res = r;
	}
	return res;
}

static CUresult inflight_begin(int fn, struct lc_inflight *q, const uint64_t *a)
{
	unsigned int i = (q->head + q->n) % LC_INFLIGHT_MAX;
	CUresult res;

	memcpy(q->c[i].a, a, sizeof(q->c[i].a));
	res = lc_call_begin(fn, q->c[i].a, &q->c[i].pc);
	if (res == CUDA_SUCCESS)
		q->n++;
	return res;
}

/*
 * Host to device.  Staged: chunk k fills slot k % slots once the copy that
 * used that slot is done.  Without shared memory (a remote transport) the
 * chunks carry their bytes and up to LC_REMOTE_WINDOW stream without
 * waiting a round trip each.
 */
static CUresult htod(int fn, CUdeviceptr dst, const void *src, size_t n)
{
	uint64_t a[3] = { dst, (uint64_t)(uintptr_t)src, n };
	struct lc_inflight q = { .n = 0 };
	uint8_t *stage, *slot;
	unsigned int window;
	size_t off, c, k, chunk;
	CUresult res = CUDA_SUCCESS;

	if (n < LC_STAGE_MIN || !src || lc_hostmem_shared(src, n))
		return lc_call(fn, a);
	stage = stage_get();
	chunk = LC_STAGE_CHUNK;
	window = LC_REMOTE_WINDOW;
	if (stage)
		stage_shape(&chunk, &window);
	for (off = 0, k = 0; off < n && res == CUDA_SUCCESS; off += c, k++) {
		c = n - off < chunk ? n - off : chunk;
		if (q.n == window && (res = inflight_end(fn, &q)) != CUDA_SUCCESS)
			break;
		a[0] = dst + off;
		a[2] = c;
		if (stage) {
			slot = stage + (k % window) * chunk;
			lc_pcopy(slot, (const uint8_t *)src + off, c);
			a[1] = (uint64_t)(uintptr_t)slot;
		} else {
			a[1] = (uint64_t)(uintptr_t)((const uint8_t *)src + off);
		}
		res = inflight_begin(fn, &q, a);
	}
	return inflight_drain(fn, &q, res);
}

static CUresult dtoh(int fn, void *dst, CUdeviceptr src, size_t n)
{
	uint64_t a[3] = { (uint64_t)(uintptr_t)dst, src, n };
	struct lc_inflight q = { .n = 0 };
	uint8_t *stage;
	unsigned int slots;
	size_t next, done, c, k, kd, chunk;
	CUresult res = CUDA_SUCCESS;

	if (n < LC_STAGE_MIN || !dst || lc_hostmem_shared(dst, n))
		return lc_call(fn, a);
	stage = stage_get();
	if (stage) {
		stage_shape(&chunk, &slots);
	} else {
		chunk = LC_STAGE_CHUNK;
		slots = LC_REMOTE_WINDOW;
	}
	/* Chunk k goes to slot k % slots; all slots in flight but the one being emptied. */
	for (next = 0, done = 0, k = 0, kd = 0; done < n;) {
		while (q.n < slots && next < n && res == CUDA_SUCCESS) {
			c = n - next < chunk ? n - next : chunk;
			a[0] = (uint64_t)(uintptr_t)(stage ? stage + (k % slots) * chunk : (uint8_t *)dst + next);
			a[1] = src + next;
			a[2] = c;
			res = inflight_begin(fn, &q, a);
			next += c;
			k++;
		}
		if (res != CUDA_SUCCESS || !q.n)
			break;
		res = inflight_end(fn, &q);
		if (res != CUDA_SUCCESS)
			break;
		c = n - done < chunk ? n - done : chunk;
		if (stage)
			lc_pcopy((uint8_t *)dst + done, stage + (kd % slots) * chunk, c);
		done += c;
		kd++;
	}
	return inflight_drain(fn, &q, res);
}

/*
 * Asynchronous copies from pageable memory.  Generically the bytes travel in
 * the message; a large copy instead goes through the staging halves, each
 * chunk an asynchronous copy from pinned memory on the caller's stream.  A
 * half is refilled only once the stream has finished with it (a stream
 * synchronisation after every two chunks), and the function returns once
 * the copy is done, so the halves are free for the next copy of this
 * thread.  The driver itself makes a pageable copy wait for the stream's
 * earlier work, so the waits add no ordering an application could see; a
 * capturing stream cannot be synchronised, and its error comes back, as the
 * driver refuses pageable copies in a capture.
 */
static CUresult htod_async(int fn, int sync_fn, CUdeviceptr dst, const void *src, size_t n, CUstream s)
{
	uint64_t a[4] = { dst, (uint64_t)(uintptr_t)src, n, (uint64_t)(uintptr_t)s };
	uint64_t sa[1] = { (uint64_t)(uintptr_t)s };
	uint8_t *stage;
	size_t off, c, k;
	CUresult res;

	if (n < LC_STAGE_MIN || !src || lc_hostmem_shared(src, n) || !(stage = stage_get()))
		return lc_call(fn, a);
	for (off = 0, k = 0; off < n; off += c, k++) {
		c = n - off < LC_STAGE_CHUNK ? n - off : LC_STAGE_CHUNK;
		if (k >= 2 && !(k & 1) && (res = lc_call(sync_fn, sa)) != CUDA_SUCCESS)
			return res;
		lc_pcopy(stage + (k & 1) * (size_t)LC_STAGE_CHUNK, (const uint8_t *)src + off, c);
		a[0] = dst + off;
		a[1] = (uint64_t)(uintptr_t)(stage + (k & 1) * (size_t)LC_STAGE_CHUNK);
		a[2] = c;
		if ((res = lc_call(fn, a)) != CUDA_SUCCESS)
			return res;
	}
	return lc_call(sync_fn, sa);
}

VG_EXPORT CUresult cuMemcpyHtoDAsync_v2(CUdeviceptr dstDevice, const void *srcHost, size_t ByteCount, CUstream hStream)
{
	return htod_async(VG_FN_cuMemcpyHtoDAsync_v2, VG_FN_cuStreamSynchronize, dstDevice, srcHost, ByteCount,
			  hStream);
}

VG_EXPORT CUresult cuMemcpyHtoDAsync_v2_ptsz(CUdeviceptr dstDevice, const void *srcHost, size_t ByteCount,
					     CUstream hStream)
{
	return htod_async(VG_FN_cuMemcpyHtoDAsync_v2_ptsz, VG_FN_cuStreamSynchronize_ptsz, dstDevice, srcHost,
			  ByteCount, hStream);
}

VG_EXPORT CUresult cuMemcpyHtoD_v2(CUdeviceptr dstDevice, const void *srcHost, size_t ByteCount)
{
	return htod(VG_FN_cuMemcpyHtoD_v2, dstDevice, srcHost, ByteCount);
}

VG_EXPORT CUresult cuMemcpyHtoD_v2_ptds(CUdeviceptr dstDevice, const void *srcHost, size_t ByteCount)
{
	return htod(VG_FN_cuMemcpyHtoD_v2_ptds, dstDevice, srcHost, ByteCount);
}

VG_EXPORT CUresult cuMemcpyDtoH_v2(void *dstHost, CUdeviceptr srcDevice, size_t ByteCount)
{
	return dtoh(VG_FN_cuMemcpyDtoH_v2, dstHost, srcDevice, ByteCount);
}

VG_EXPORT CUresult cuMemcpyDtoH_v2_ptds(void *dstHost, CUdeviceptr srcDevice, size_t ByteCount)
{
	return dtoh(VG_FN_cuMemcpyDtoH_v2_ptds, dstHost, srcDevice, ByteCount);
}
