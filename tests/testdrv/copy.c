/* SPDX-License-Identifier: MIT */
/*
 * Copies and memsets, synchronous and asynchronous.  Every copy is reduced
 * to one strided form (width x height x depth with a pitch and a slice
 * height per side), checked against the allocation registry on the device
 * side, and queued on a stream; the synchronous forms queue on the legacy
 * stream and wait, which gives them the legacy stream's ordering.
 */
#include <stdlib.h>
#include <string.h>

#include "td.h"

/* One side of a copy: where it starts and how rows and slices are laid out. */
struct td_side {
	char *p;
	size_t pitch;
	size_t height;		/* rows per slice */
	int pageable;		/* host memory the driver does not know */
};

struct td_shape {
	size_t width, height, depth;
};

/* Bytes from the first to one past the last byte touched on a side. */
static int td_extent(const struct td_side *s, const struct td_shape *sh, uint64_t *out)
{
	uint64_t slice, ext;

	if ((sh->height > 1 || sh->depth > 1) && s->pitch < sh->width)
		return -1;
	if (sh->depth > 1 && s->height < sh->height)
		return -1;
	slice = (uint64_t)s->pitch * s->height;
	ext = (uint64_t)(sh->depth - 1) * slice + (uint64_t)(sh->height - 1) * s->pitch + sh->width;
	*out = ext;
	return 0;
}

/*
 * type: CU_MEMORYTYPE_*.  Device memory must lie inside one allocation;
 * unified addresses are device memory when the registry knows them.
 */
static CUresult td_side_check(int type, struct td_side *s, const struct td_shape *sh)
{
	uint64_t ext;
	int known;

	if (td_extent(s, sh, &ext) < 0)
		return CUDA_ERROR_INVALID_VALUE;
	td_lock();
	known = td_alloc_find_locked((uint64_t)(uintptr_t)s->p) != NULL;
	switch (type) {
	case CU_MEMORYTYPE_HOST:
		s->pageable = !td_is_pinned_locked((uint64_t)(uintptr_t)s->p, ext);
		break;
	case CU_MEMORYTYPE_DEVICE:
		known = td_range_ok_locked((uint64_t)(uintptr_t)s->p, ext);
		if (!known) {
			td_unlock();
			return CUDA_ERROR_INVALID_VALUE;
		}
		s->pageable = 0;
		break;
	case CU_MEMORYTYPE_UNIFIED:
		if (known && !td_range_ok_locked((uint64_t)(uintptr_t)s->p, ext)) {
			td_unlock();
			return CUDA_ERROR_INVALID_VALUE;
		}
		s->pageable = !known;
		break;
	default:
		/* CUDA arrays are not part of the test driver. */
		td_unlock();
		return type == CU_MEMORYTYPE_ARRAY ? CUDA_ERROR_NOT_SUPPORTED :
						     CUDA_ERROR_INVALID_VALUE;
	}
	td_unlock();
	if (!s->p)
		return CUDA_ERROR_INVALID_VALUE;
	return CUDA_SUCCESS;
}

static void td_run_copy(struct td_op *op)
{
	size_t y, z;

	for (z = 0; z < op->u.copy.depth; z++) {
		char *d = op->u.copy.dst + z * op->u.copy.dpitch * op->u.copy.dheight;
		const char *s = op->u.copy.src + z * op->u.copy.spitch * op->u.copy.sheight;

		for (y = 0; y < op->u.copy.height; y++)
			memmove(d + y * op->u.copy.dpitch, s + y * op->u.copy.spitch,
				op->u.copy.width);
	}
}

/*
 * Queues a checked copy.  async: on hStream without waiting, except that
 * a pageable destination is written before returning and a pageable source
 * is read (staged) before returning, as NVIDIA's driver does.
 */
static CUresult td_copy(CUstream hStream, int async, struct td_side *dst, int dtype,
			struct td_side *src, int stype, const struct td_shape *sh)
{
	struct td_ctx *c;
	struct td_stream *s;
	struct td_op *op;
	uint64_t ext = 0;
	CUresult res;

	res = async ? td_stream_resolve(hStream, &c, &s) : td_stream_resolve(NULL, &c, &s);
	if (res != CUDA_SUCCESS)
		return res;
	res = td_side_check(dtype, dst, sh);
	if (res == CUDA_SUCCESS)
		res = td_side_check(stype, src, sh);
	if (res != CUDA_SUCCESS)
		return res;
	if (!sh->width || !sh->height || !sh->depth)
		return CUDA_SUCCESS;
	op = td_op_new(td_run_copy);
	if (!op)
		return CUDA_ERROR_OUT_OF_MEMORY;
	if (async && src->pageable) {
		td_extent(src, sh, &ext);
		op->staging = malloc(ext);
		if (!op->staging) {
			td_op_free(op);
			return CUDA_ERROR_OUT_OF_MEMORY;
		}
		memcpy(op->staging, src->p, ext);
		src->p = op->staging;
	}
	op->u.copy.dst = dst->p;
	op->u.copy.src = src->p;
	op->u.copy.dpitch = dst->pitch;
	op->u.copy.dheight = dst->height;
	op->u.copy.spitch = src->pitch;
	op->u.copy.sheight = src->height;
	op->u.copy.width = sh->width;
	op->u.copy.height = sh->height;
	op->u.copy.depth = sh->depth;
	return td_submit(s, op, NULL, !async || dst->pageable, NULL);
}

static CUresult td_copy_linear(CUstream hStream, int async, void *dst, int dtype,
			       const void *src, int stype, size_t n)
{
	struct td_side d = { .p = dst, .pitch = n, .height = 1 };
	struct td_side s = { .p = (char *)(uintptr_t)src, .pitch = n, .height = 1 };
	struct td_shape sh = { n, 1, 1 };

	CUresult res = td_check_init();

	if (res != CUDA_SUCCESS)
		return res;
	if (!dst || !src)
		return CUDA_ERROR_INVALID_VALUE;
	return td_copy(hStream, async, &d, dtype, &s, stype, &sh);
}

#define DPTR(x) ((void *)(uintptr_t)(x))

TD_EXPORT CUresult cuMemcpyHtoD_v2(CUdeviceptr dstDevice, const void *srcHost, size_t ByteCount)
{
	return td_copy_linear(NULL, 0, DPTR(dstDevice), CU_MEMORYTYPE_DEVICE, srcHost,
			      CU_MEMORYTYPE_HOST, ByteCount);
}

TD_EXPORT CUresult cuMemcpyDtoH_v2(void *dstHost, CUdeviceptr srcDevice, size_t ByteCount)
{
	return td_copy_linear(NULL, 0, dstHost, CU_MEMORYTYPE_HOST, DPTR(srcDevice),
			      CU_MEMORYTYPE_DEVICE, ByteCount);
}

TD_EXPORT CUresult cuMemcpyDtoD_v2(CUdeviceptr dstDevice, CUdeviceptr srcDevice, size_t ByteCount)
{
	return td_copy_linear(NULL, 0, DPTR(dstDevice), CU_MEMORYTYPE_DEVICE, DPTR(srcDevice),
			      CU_MEMORYTYPE_DEVICE, ByteCount);
}

TD_EXPORT CUresult cuMemcpy(CUdeviceptr dst, CUdeviceptr src, size_t ByteCount)
{
	return td_copy_linear(NULL, 0, DPTR(dst), CU_MEMORYTYPE_UNIFIED, DPTR(src),
			      CU_MEMORYTYPE_UNIFIED, ByteCount);
}

TD_EXPORT CUresult cuMemcpyHtoDAsync_v2(CUdeviceptr dstDevice, const void *srcHost, size_t ByteCount,
					CUstream hStream)
{
	return td_copy_linear(hStream, 1, DPTR(dstDevice), CU_MEMORYTYPE_DEVICE, srcHost,
			      CU_MEMORYTYPE_HOST, ByteCount);
}

TD_EXPORT CUresult cuMemcpyDtoHAsync_v2(void *dstHost, CUdeviceptr srcDevice, size_t ByteCount,
					CUstream hStream)
{
	return td_copy_linear(hStream, 1, dstHost, CU_MEMORYTYPE_HOST, DPTR(srcDevice),
			      CU_MEMORYTYPE_DEVICE, ByteCount);
}

TD_EXPORT CUresult cuMemcpyDtoDAsync_v2(CUdeviceptr dstDevice, CUdeviceptr srcDevice,
					size_t ByteCount, CUstream hStream)
{
	return td_copy_linear(hStream, 1, DPTR(dstDevice), CU_MEMORYTYPE_DEVICE, DPTR(srcDevice),
			      CU_MEMORYTYPE_DEVICE, ByteCount);
}

TD_EXPORT CUresult cuMemcpyAsync(CUdeviceptr dst, CUdeviceptr src, size_t ByteCount,
				 CUstream hStream)
{
	return td_copy_linear(hStream, 1, DPTR(dst), CU_MEMORYTYPE_UNIFIED, DPTR(src),
			      CU_MEMORYTYPE_UNIFIED, ByteCount);
}

/* The address a 2D/3D descriptor names for one side. */
static char *td_desc_ptr(int type, const void *host, CUdeviceptr dev)
{
	return type == CU_MEMORYTYPE_HOST ? (char *)(uintptr_t)host : (char *)(uintptr_t)dev;
}

static CUresult td_copy2d(const CUDA_MEMCPY2D *c, CUstream hStream, int async)
{
	struct td_side d, s;
	struct td_shape sh;
	CUresult res = td_check_init();

	if (res != CUDA_SUCCESS)
		return res;
	if (!c)
		return CUDA_ERROR_INVALID_VALUE;
	d.p = td_desc_ptr(c->dstMemoryType, c->dstHost, c->dstDevice);
	s.p = td_desc_ptr(c->srcMemoryType, c->srcHost, c->srcDevice);
	if (!d.p || !s.p)
		return CUDA_ERROR_INVALID_VALUE;
	d.p += c->dstY * c->dstPitch + c->dstXInBytes;
	s.p += c->srcY * c->srcPitch + c->srcXInBytes;
	d.pitch = c->dstPitch;
	s.pitch = c->srcPitch;
	d.height = s.height = c->Height;
	sh.width = c->WidthInBytes;
	sh.height = c->Height;
	sh.depth = 1;
	/* A pitch below the width is refused even for a single row. */
	if (c->srcPitch < c->WidthInBytes || c->dstPitch < c->WidthInBytes)
		return CUDA_ERROR_INVALID_VALUE;
	return td_copy(hStream, async, &d, c->dstMemoryType, &s, c->srcMemoryType, &sh);
}

TD_EXPORT CUresult cuMemcpy2D_v2(const CUDA_MEMCPY2D *pCopy)
{
	return td_copy2d(pCopy, NULL, 0);
}

TD_EXPORT CUresult cuMemcpy2DUnaligned_v2(const CUDA_MEMCPY2D *pCopy)
{
	return td_copy2d(pCopy, NULL, 0);
}

TD_EXPORT CUresult cuMemcpy2DAsync_v2(const CUDA_MEMCPY2D *pCopy, CUstream hStream)
{
	return td_copy2d(pCopy, hStream, 1);
}

static CUresult td_copy3d(const CUDA_MEMCPY3D *c, CUstream hStream, int async)
{
	struct td_side d, s;
	struct td_shape sh;
	CUresult res = td_check_init();

	if (res != CUDA_SUCCESS)
		return res;
	if (!c || c->srcLOD || c->dstLOD || c->reserved0 || c->reserved1)
		return CUDA_ERROR_INVALID_VALUE;
	d.p = td_desc_ptr(c->dstMemoryType, c->dstHost, c->dstDevice);
	s.p = td_desc_ptr(c->srcMemoryType, c->srcHost, c->srcDevice);
	if (!d.p || !s.p)
		return CUDA_ERROR_INVALID_VALUE;
	if (c->srcPitch < c->WidthInBytes || c->dstPitch < c->WidthInBytes)
		return CUDA_ERROR_INVALID_VALUE;
	d.p += (c->dstZ * c->dstHeight + c->dstY) * c->dstPitch + c->dstXInBytes;
	s.p += (c->srcZ * c->srcHeight + c->srcY) * c->srcPitch + c->srcXInBytes;
	d.pitch = c->dstPitch;
	s.pitch = c->srcPitch;
	d.height = c->dstHeight;
	s.height = c->srcHeight;
	sh.width = c->WidthInBytes;
	sh.height = c->Height;
	sh.depth = c->Depth;
	return td_copy(hStream, async, &d, c->dstMemoryType, &s, c->srcMemoryType, &sh);
}

TD_EXPORT CUresult cuMemcpy3D_v2(const CUDA_MEMCPY3D *pCopy)
{
	return td_copy3d(pCopy, NULL, 0);
}

TD_EXPORT CUresult cuMemcpy3DAsync_v2(const CUDA_MEMCPY3D *pCopy, CUstream hStream)
{
	return td_copy3d(pCopy, hStream, 1);
}

/* ---- memsets ----------------------------------------------------------- */

static void td_run_memset(struct td_op *op)
{
	size_t y, x;

	for (y = 0; y < op->u.set.height; y++) {
		char *row = op->u.set.dst + y * op->u.set.pitch;

		switch (op->u.set.elem) {
		case 1:
			memset(row, (int)(op->u.set.value & 0xff), op->u.set.width);
			break;
		case 2:
			for (x = 0; x < op->u.set.width; x++) {
				uint16_t v = (uint16_t)op->u.set.value;

				memcpy(row + 2 * x, &v, 2);
			}
			break;
		default:
			for (x = 0; x < op->u.set.width; x++)
				memcpy(row + 4 * x, &op->u.set.value, 4);
			break;
		}
	}
}

/* width in elements; pitch in bytes.  Device (or pinned) memory only. */
static CUresult td_memset(CUstream hStream, int async, CUdeviceptr dst, size_t pitch,
			  unsigned value, int elem, size_t width, size_t height)
{
	struct td_ctx *c;
	struct td_stream *s;
	struct td_op *op;
	uint64_t ext;
	CUresult res;

	res = async ? td_stream_resolve(hStream, &c, &s) : td_stream_resolve(NULL, &c, &s);
	if (res != CUDA_SUCCESS)
		return res;
	if (dst % (unsigned)elem || (height > 1 && pitch < width * (size_t)elem))
		return CUDA_ERROR_INVALID_VALUE;
	if (!width || !height)
		return CUDA_SUCCESS;
	ext = (uint64_t)(height - 1) * pitch + (uint64_t)width * (uint64_t)elem;
	res = td_range_check(dst, ext);
	if (res != CUDA_SUCCESS)
		return res;
	op = td_op_new(td_run_memset);
	if (!op)
		return CUDA_ERROR_OUT_OF_MEMORY;
	op->u.set.dst = (char *)(uintptr_t)dst;
	op->u.set.pitch = pitch;
	op->u.set.width = width;
	op->u.set.height = height;
	op->u.set.value = value;
	op->u.set.elem = elem;
	return td_submit(s, op, NULL, !async, NULL);
}

TD_EXPORT CUresult cuMemsetD8_v2(CUdeviceptr dstDevice, unsigned char uc, size_t N)
{
	return td_memset(NULL, 0, dstDevice, N, uc, 1, N, 1);
}

TD_EXPORT CUresult cuMemsetD16_v2(CUdeviceptr dstDevice, unsigned short us, size_t N)
{
	return td_memset(NULL, 0, dstDevice, N * 2, us, 2, N, 1);
}

TD_EXPORT CUresult cuMemsetD32_v2(CUdeviceptr dstDevice, unsigned int ui, size_t N)
{
	return td_memset(NULL, 0, dstDevice, N * 4, ui, 4, N, 1);
}

TD_EXPORT CUresult cuMemsetD2D8_v2(CUdeviceptr dstDevice, size_t dstPitch, unsigned char uc,
				   size_t Width, size_t Height)
{
	return td_memset(NULL, 0, dstDevice, dstPitch, uc, 1, Width, Height);
}

TD_EXPORT CUresult cuMemsetD2D16_v2(CUdeviceptr dstDevice, size_t dstPitch, unsigned short us,
				    size_t Width, size_t Height)
{
	return td_memset(NULL, 0, dstDevice, dstPitch, us, 2, Width, Height);
}

TD_EXPORT CUresult cuMemsetD2D32_v2(CUdeviceptr dstDevice, size_t dstPitch, unsigned int ui,
				    size_t Width, size_t Height)
{
	return td_memset(NULL, 0, dstDevice, dstPitch, ui, 4, Width, Height);
}

TD_EXPORT CUresult cuMemsetD8Async(CUdeviceptr dstDevice, unsigned char uc, size_t N,
				   CUstream hStream)
{
	return td_memset(hStream, 1, dstDevice, N, uc, 1, N, 1);
}

TD_EXPORT CUresult cuMemsetD16Async(CUdeviceptr dstDevice, unsigned short us, size_t N,
				    CUstream hStream)
{
	return td_memset(hStream, 1, dstDevice, N * 2, us, 2, N, 1);
}

TD_EXPORT CUresult cuMemsetD32Async(CUdeviceptr dstDevice, unsigned int ui, size_t N,
				    CUstream hStream)
{
	return td_memset(hStream, 1, dstDevice, N * 4, ui, 4, N, 1);
}

TD_EXPORT CUresult cuMemsetD2D8Async(CUdeviceptr dstDevice, size_t dstPitch, unsigned char uc,
				     size_t Width, size_t Height, CUstream hStream)
{
	return td_memset(hStream, 1, dstDevice, dstPitch, uc, 1, Width, Height);
}

TD_EXPORT CUresult cuMemsetD2D16Async(CUdeviceptr dstDevice, size_t dstPitch, unsigned short us,
				      size_t Width, size_t Height, CUstream hStream)
{
	return td_memset(hStream, 1, dstDevice, dstPitch, us, 2, Width, Height);
}

TD_EXPORT CUresult cuMemsetD2D32Async(CUdeviceptr dstDevice, size_t dstPitch, unsigned int ui,
				      size_t Width, size_t Height, CUstream hStream)
{
	return td_memset(hStream, 1, dstDevice, dstPitch, ui, 4, Width, Height);
}
