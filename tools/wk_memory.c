/*
 * The worker: 2D and 3D copies, pointer attributes, pinned memory shared
 * with the guest, pool and graph-memory attribute values.
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
 * MEMCPY2D: u32 variant (0 cuMemcpy2D_v2, 1 Unaligned_v2, 2 Async_v2), u64
 * stream id, then per side (src, dst): u32 memory type, u64 device pointer,
 * u64 array id, u64 pitch, u64 x in bytes, u64 y; then u64 width in bytes,
 * u64 height; then, when the source is host memory, a blob of height rows of
 * width bytes.  Reply: when the destination is host memory, that blob.
 */
struct side {
	uint32_t type;
	uint64_t dev, pitch, x, y, z, lod, height;
	void *array;
};

static CUresult get_side(struct vg_rd *r, struct side *s, int three_d)
{
	uint64_t id;

	s->type = vg_get_u32(r);
	s->dev = vg_get_u64(r);
	id = vg_get_u64(r);
	s->pitch = vg_get_u64(r);
	s->x = vg_get_u64(r);
	s->y = vg_get_u64(r);
	if (three_d) {
		s->z = vg_get_u64(r);
		s->lod = vg_get_u64(r);
		s->height = vg_get_u64(r);
	}
	if (r->err)
		wk_fatal("malformed copy descriptor");
	if (s->type < CU_MEMORYTYPE_HOST || s->type > CU_MEMORYTYPE_UNIFIED)
		return CUDA_ERROR_INVALID_VALUE;
	s->array = NULL;
	if (s->type == CU_MEMORYTYPE_ARRAY && !wk_handle_lookup(id, VG_H_CUarray, &s->array))
		return CUDA_ERROR_INVALID_HANDLE;
	return CUDA_SUCCESS;
}

CUresult wk_op_memcpy(struct vg_rd *r, struct vg_buf *out, int three_d)
{
	uint32_t variant = vg_get_u32(r), n = 0;
	struct side src, dst;
	uint64_t w, h, d = 1, bytes;
	void *stream, *hostbuf = NULL;
	const void *blob = NULL;
	int is_null = 0;
	CUresult res, r1, r2;

	res = wk_get_handle(r, VG_H_CUstream, &stream);
	r1 = get_side(r, &src, three_d);
	r2 = get_side(r, &dst, three_d);
	w = vg_get_u64(r);
	h = vg_get_u64(r);
	if (three_d)
		d = vg_get_u64(r);
	if (r->err || variant > 2)
		wk_fatal("malformed MEMCPY");
	if (w > VG_MSG_MAX || h > VG_MSG_MAX || d > VG_MSG_MAX || w * h > VG_MSG_MAX ||
	    w * h * d > VG_MSG_MAX)
		wk_fatal("MEMCPY region larger than a message");
	bytes = w * h * d;
	if (src.type == CU_MEMORYTYPE_HOST) {
		blob = vg_get_blob(r, VG_MSG_MAX, &n, &is_null);
		if (r->err || is_null || n != bytes)
			wk_fatal("MEMCPY host source of %u bytes for a %llu-byte region", n,
				 (unsigned long long)bytes);
	}
	if (r->off != r->len)
		wk_fatal("MEMCPY with trailing bytes");
	if (res != CUDA_SUCCESS)
		return res;
	if (r1 != CUDA_SUCCESS || r2 != CUDA_SUCCESS)
		return r1 != CUDA_SUCCESS ? r1 : r2;
	hostbuf = malloc(bytes + 1);
	if (!hostbuf)
		return CUDA_ERROR_OUT_OF_MEMORY;
	if (blob)
		memcpy(hostbuf, blob, bytes);
	if (!three_d) {
		CUDA_MEMCPY2D c;

		memset(&c, 0, sizeof(c));
		c.srcMemoryType = (CUmemorytype)src.type;
		c.srcDevice = src.dev;
		c.srcArray = src.array;
		c.srcPitch = src.pitch;
		c.srcXInBytes = src.x;
		c.srcY = src.y;
		c.dstMemoryType = (CUmemorytype)dst.type;
		c.dstDevice = dst.dev;
		c.dstArray = dst.array;
		c.dstPitch = dst.pitch;
		c.dstXInBytes = dst.x;
		c.dstY = dst.y;
		c.WidthInBytes = w;
		c.Height = h;
		if (src.type == CU_MEMORYTYPE_HOST) {
			c.srcHost = hostbuf;
			c.srcPitch = w;
			c.srcXInBytes = c.srcY = 0;
		}
		if (dst.type == CU_MEMORYTYPE_HOST) {
			c.dstHost = hostbuf;
			c.dstPitch = w;
			c.dstXInBytes = c.dstY = 0;
		}
		if (variant == 0)
			res = WK_CALL(cuMemcpy2D_v2, &c);
		else if (variant == 1)
			res = WK_CALL(cuMemcpy2DUnaligned_v2, &c);
		else
			res = WK_CALL(cuMemcpy2DAsync_v2, &c, (CUstream)stream);
	} else {
		CUDA_MEMCPY3D c;

		memset(&c, 0, sizeof(c));
		c.srcMemoryType = (CUmemorytype)src.type;
		c.srcDevice = src.dev;
		c.srcArray = src.array;
		c.srcPitch = src.pitch;
		c.srcHeight = src.height;
		c.srcXInBytes = src.x;
		c.srcY = src.y;
		c.srcZ = src.z;
		c.srcLOD = src.lod;
		c.dstMemoryType = (CUmemorytype)dst.type;
		c.dstDevice = dst.dev;
		c.dstArray = dst.array;
		c.dstPitch = dst.pitch;
		c.dstHeight = dst.height;
		c.dstXInBytes = dst.x;
		c.dstY = dst.y;
		c.dstZ = dst.z;
		c.dstLOD = dst.lod;
		c.WidthInBytes = w;
		c.Height = h;
		c.Depth = d;
		if (src.type == CU_MEMORYTYPE_HOST) {
			c.srcHost = hostbuf;
			c.srcPitch = w;
			c.srcHeight = h;
			c.srcXInBytes = c.srcY = c.srcZ = 0;
		}
		if (dst.type == CU_MEMORYTYPE_HOST) {
			c.dstHost = hostbuf;
			c.dstPitch = w;
			c.dstHeight = h;
			c.dstXInBytes = c.dstY = c.dstZ = 0;
		}
		if (variant == 2)
			res = WK_CALL(cuMemcpy3DAsync_v2, &c, (CUstream)stream);
		else
			res = WK_CALL(cuMemcpy3D_v2, &c);
	}
	/* The staging buffer must not be reused before an async copy ends. */
	if (res == CUDA_SUCCESS && variant == 2)
		res = WK_CALL(cuStreamSynchronize, (CUstream)stream);
	if (res == CUDA_SUCCESS && dst.type == CU_MEMORYTYPE_HOST)
		vg_put_blob(out, hostbuf, (uint32_t)bytes);
	free(hostbuf);
	return res;
}

/*
 * POINTER_ATTR: u32 attribute, u64 pointer, u32 multi (1: answer as
 * cuPointerGetAttributes does, with defaults for unknown memory).  Reply: a
 * blob of the value (vg_pointer_attr_size bytes; handles as u64 ids).
 */
CUresult wk_op_pointer_attr(struct vg_rd *r, struct vg_buf *out)
{
	int attr = (int)vg_get_u32(r), is_handle;
	uint64_t ptr = vg_get_u64(r);
	uint32_t multi = vg_get_u32(r);
	uint8_t val[64];
	void *vp = val;
	uint32_t size;
	CUresult res;

	if (r->err || r->off != r->len || multi > 1)
		wk_fatal("malformed POINTER_ATTR");
	size = vg_pointer_attr_size(attr, &is_handle);
	if (!size)
		return CUDA_ERROR_INVALID_VALUE;
	memset(val, 0, sizeof(val));
	if (multi) {
		CUpointer_attribute a = (CUpointer_attribute)attr;

		res = WK_CALL(cuPointerGetAttributes, 1, &a, &vp, (CUdeviceptr)ptr);
	} else {
		res = WK_CALL(cuPointerGetAttribute, val, (CUpointer_attribute)attr, (CUdeviceptr)ptr);
	}
	if (res != CUDA_SUCCESS)
		return res;
	if (is_handle) {
		void *h;

		memcpy(&h, val, sizeof(h));
		vg_put_u32(out, 8);
		wk_put_handle(out, h, attr == VG_PA_CONTEXT ? VG_H_CUcontext : VG_H_CUmemoryPool);
	} else {
		vg_put_blob(out, val, size);
	}
	return CUDA_SUCCESS;
}

int wk_shm_contains(uint64_t p, uint64_t n)
{
	size_t i;
	int ok = 0;

	pthread_mutex_lock(&wk.lock);
	for (i = 0; i < wk.shm.cap && !ok; i++) {
		struct vg_hent *e = &wk.shm.slots[i];

		if (e->key && e->key != VG_HTAB_TOMB && p >= e->key && p - e->key <= e->val &&
		    n <= e->val - (p - e->key))
			ok = 1;
	}
	pthread_mutex_unlock(&wk.lock);
	return ok;
}

/* HOST_MEM: documented in include/vgpu/ops.h. */
CUresult wk_op_host_mem(struct wk_thread *t, struct vg_rd *r, struct vg_buf *out)
{
	uint32_t which = vg_get_u32(r), flags = 0;
	uint64_t a = vg_get_u64(r);
	struct vg_hent *e;
	struct stat st;
	void *p;
	CUresult res;

	if (which != VG_HM_FREE)
		flags = vg_get_u32(r);
	if (r->err || r->off != r->len || which > VG_HM_DEVPTR)
		wk_fatal("malformed HOST_MEM");
	switch (which) {
	case VG_HM_ALLOC:
		/* The memfd must be sealed against shrinking: the GPU DMAs into it. */
		if (t->fd_in < 0 || a == 0 || a > VG_HOST_ALLOC_MAX || fstat(t->fd_in, &st) < 0 ||
		    (uint64_t)st.st_size < a ||
		    !(fcntl(t->fd_in, F_GET_SEALS) & F_SEAL_SHRINK))
			wk_fatal("HOST_MEM ALLOC without a sealed memfd of the right size");
		p = mmap(NULL, a, PROT_READ | PROT_WRITE, MAP_SHARED, t->fd_in, 0);
		if (p == MAP_FAILED)
			return CUDA_ERROR_OUT_OF_MEMORY;
		res = WK_CALL(cuMemHostRegister_v2, p, a, CU_MEMHOSTREGISTER_PORTABLE | CU_MEMHOSTREGISTER_DEVICEMAP);
		if (res != CUDA_SUCCESS) {
			munmap(p, a);
			return res;
		}
		pthread_mutex_lock(&wk.lock);
		e = vg_htab_put(&wk.shm, (uint64_t)(uintptr_t)p, a, flags, NULL);
		pthread_mutex_unlock(&wk.lock);
		if (!e) {
			WK_CALL(cuMemHostUnregister, p);
			munmap(p, a);
			return CUDA_ERROR_OUT_OF_MEMORY;
		}
		vg_put_u64(out, (uint64_t)(uintptr_t)p);
		return CUDA_SUCCESS;
	case VG_HM_FREE: {
		uint64_t size = 0;

		pthread_mutex_lock(&wk.lock);
		e = vg_htab_get(&wk.shm, a);
		if (e) {
			size = e->val;
			vg_htab_del(&wk.shm, a);
		}
		pthread_mutex_unlock(&wk.lock);
		if (!size)
			return CUDA_ERROR_INVALID_VALUE;
		res = WK_CALL(cuMemHostUnregister, (void *)(uintptr_t)a);
		munmap((void *)(uintptr_t)a, size);
		return res;
	}
	default: {
		CUdeviceptr d = 0;

		if (!wk_shm_contains(a, 1))
			return CUDA_ERROR_INVALID_VALUE;
		res = WK_CALL(cuMemHostGetDevicePointer_v2, &d, (void *)(uintptr_t)a, flags);
		if (res == CUDA_SUCCESS)
			vg_put_u64(out, d);
		return res;
	}
	}
}

/* ATTR_VALUE: documented in include/vgpu/ops.h. */
CUresult wk_op_attr_value(struct vg_rd *r, struct vg_buf *out)
{
	uint32_t which = vg_get_u32(r), size, dev = 0;
	void *pool = NULL;
	uint8_t val[8] = { 0 };
	CUresult res = CUDA_SUCCESS;
	int attr, set;

	if (which > VG_AV_GRAPHMEM_SET)
		wk_fatal("malformed ATTR_VALUE");
	if (which <= VG_AV_POOL_SET)
		res = wk_get_handle(r, VG_H_CUmemoryPool, &pool);
	else
		dev = vg_get_u32(r);
	attr = (int)vg_get_u32(r);
	size = vg_attr_value_size(which, attr);
	set = which == VG_AV_POOL_SET || which == VG_AV_GRAPHMEM_SET;
	if (set && size) {
		const void *q = vg_get_bytes(r, size);

		if (q)
			memcpy(val, q, size);
	}
	if (r->err || r->off != r->len || !size)
		wk_fatal("malformed ATTR_VALUE");
	if (res != CUDA_SUCCESS)
		return res;
	switch (which) {
	case VG_AV_POOL_GET:
		res = WK_CALL(cuMemPoolGetAttribute, (CUmemoryPool)pool, (CUmemPool_attribute)attr, val);
		break;
	case VG_AV_POOL_SET:
		res = WK_CALL(cuMemPoolSetAttribute, (CUmemoryPool)pool, (CUmemPool_attribute)attr, val);
		break;
	case VG_AV_GRAPHMEM_GET:
		res = WK_CALL(cuDeviceGetGraphMemAttribute, (CUdevice)dev, (CUgraphMem_attribute)attr, val);
		break;
	default:
		res = WK_CALL(cuDeviceSetGraphMemAttribute, (CUdevice)dev, (CUgraphMem_attribute)attr, val);
		break;
	}
	if (res == CUDA_SUCCESS && !set)
		vg_put_blob(out, val, size);
	return res;
}
