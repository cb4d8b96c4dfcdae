/* SPDX-License-Identifier: MIT */
/*
 * Copies, byte-exact: HtoD, DtoH, DtoD, cuMemcpy (unified addressing), their
 * Async forms on a stream, 2D (pitched, host<->device, device<->device,
 * unaligned) and 3D, each also Async.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gcase.h"

#define GC_BYTES (1u << 20)
/* 2D: a W x H byte region inside pitched allocations. */
#define GC_W 300
#define GC_H 50
/* 3D: W x H x D bytes. */
#define GC_D 6

static void gc_pattern(unsigned char *p, size_t n, unsigned seed)
{
	size_t i;

	for (i = 0; i < n; i++)
		p[i] = (unsigned char)((i * 131 + seed * 17 + (i >> 8)) & 0xff);
}

static void gc_copies_linear(CUstream s, unsigned char *src, unsigned char *dst)
{
	CUdeviceptr a = 0, b = 0;

	gc_must("alloc.a", cuMemAlloc(&a, GC_BYTES));
	gc_must("alloc.b", cuMemAlloc(&b, GC_BYTES));

	gc_pattern(src, GC_BYTES, 1);
	memset(dst, 0, GC_BYTES);
	gc_expect("htod", cuMemcpyHtoD(a, src, GC_BYTES), CUDA_SUCCESS);
	gc_expect("dtod", cuMemcpyDtoD(b, a, GC_BYTES), CUDA_SUCCESS);
	gc_expect("dtoh", cuMemcpyDtoH(dst, b, GC_BYTES), CUDA_SUCCESS);
	gc_check("sync.bytes", memcmp(src, dst, GC_BYTES) == 0);

	/* An odd offset and length: no alignment is assumed anywhere. */
	memset(dst, 0, GC_BYTES);
	gc_expect("htod.odd", cuMemcpyHtoD(a + 3, src + 5, 1001), CUDA_SUCCESS);
	gc_expect("dtoh.odd", cuMemcpyDtoH(dst, a + 3, 1001), CUDA_SUCCESS);
	gc_check("odd.bytes", memcmp(src + 5, dst, 1001) == 0);

	gc_pattern(src, GC_BYTES, 2);
	memset(dst, 0, GC_BYTES);
	gc_expect("htod_async", cuMemcpyHtoDAsync(a, src, GC_BYTES, s), CUDA_SUCCESS);
	gc_expect("dtod_async", cuMemcpyDtoDAsync(b, a, GC_BYTES, s), CUDA_SUCCESS);
	gc_expect("dtoh_async", cuMemcpyDtoHAsync(dst, b, GC_BYTES, s), CUDA_SUCCESS);
	gc_expect("async.synchronize", cuStreamSynchronize(s), CUDA_SUCCESS);
	gc_check("async.bytes", memcmp(src, dst, GC_BYTES) == 0);

	/*
	 * cuMemcpy infers directions from unified addresses: the driver knows
	 * only pinned host memory, so these buffers are pinned (with pageable
	 * memory NVIDIA's driver returns success and copies nothing).
	 */
	{
		unsigned char *psrc = NULL, *pdst = NULL;

		gc_must("memcpy.alloc_host.src", cuMemAllocHost((void **)&psrc, GC_BYTES));
		gc_must("memcpy.alloc_host.dst", cuMemAllocHost((void **)&pdst, GC_BYTES));
		gc_pattern(psrc, GC_BYTES, 3);
		memset(pdst, 0, GC_BYTES);
		gc_expect("memcpy.htod", cuMemcpy(a, (CUdeviceptr)(uintptr_t)psrc, GC_BYTES),
			  CUDA_SUCCESS);
		gc_expect("memcpy.dtod", cuMemcpy(b, a, GC_BYTES), CUDA_SUCCESS);
		/*
		 * A device-to-device cuMemcpy returns before the copy is done,
		 * and s does not wait for the legacy stream (non-blocking): the
		 * copy back must not start before it.  (Natively a DtoH that
		 * overtook it was seen once on the H100, RESULTS.md run 12.)
		 */
		gc_expect("memcpy.dtod.synchronize", cuStreamSynchronize(NULL), CUDA_SUCCESS);
		gc_expect("memcpy_async.dtoh",
			  cuMemcpyAsync((CUdeviceptr)(uintptr_t)pdst, b, GC_BYTES, s), CUDA_SUCCESS);
		gc_expect("memcpy_async.synchronize", cuStreamSynchronize(s), CUDA_SUCCESS);
		gc_check("memcpy.bytes", memcmp(psrc, pdst, GC_BYTES) == 0);
		gc_expect("memcpy.free_host.src", cuMemFreeHost(psrc), CUDA_SUCCESS);
		gc_expect("memcpy.free_host.dst", cuMemFreeHost(pdst), CUDA_SUCCESS);
	}

	gc_expect("free.a", cuMemFree(a), CUDA_SUCCESS);
	gc_expect("free.b", cuMemFree(b), CUDA_SUCCESS);
}

static void gc_2d_desc(CUDA_MEMCPY2D *c, const void *hsrc, CUdeviceptr dsrc, size_t spitch,
		       void *hdst, CUdeviceptr ddst, size_t dpitch)
{
	memset(c, 0, sizeof(*c));
	c->srcMemoryType = hsrc ? CU_MEMORYTYPE_HOST : CU_MEMORYTYPE_DEVICE;
	c->srcHost = hsrc;
	c->srcDevice = dsrc;
	c->srcPitch = spitch;
	c->dstMemoryType = hdst ? CU_MEMORYTYPE_HOST : CU_MEMORYTYPE_DEVICE;
	c->dstHost = hdst;
	c->dstDevice = ddst;
	c->dstPitch = dpitch;
	c->WidthInBytes = GC_W;
	c->Height = GC_H;
}

/* The W x H region of dst (pitch dp) equals that of src (pitch sp). */
static int gc_2d_same(const unsigned char *src, size_t sp, const unsigned char *dst,
		      size_t dp)
{
	int y;

	for (y = 0; y < GC_H; y++)
		if (memcmp(src + y * sp, dst + y * dp, GC_W) != 0)
			return 0;
	return 1;
}

static void gc_copies_2d(CUstream s, unsigned char *src, unsigned char *dst)
{
	CUdeviceptr a = 0, b = 0;
	size_t pa = 0, pb = 0;
	/* Host pitches differ from each other and from the device's. */
	size_t hs = 333, hd = 410;
	CUDA_MEMCPY2D c;

	gc_must("2d.alloc_pitch.a", cuMemAllocPitch(&a, &pa, GC_W, GC_H, 4));
	gc_must("2d.alloc_pitch.b", cuMemAllocPitch(&b, &pb, GC_W, GC_H, 16));

	gc_pattern(src, hs * GC_H, 4);
	memset(dst, 0, hd * GC_H);
	gc_2d_desc(&c, src, 0, hs, NULL, a, pa);
	gc_expect("2d.htod", cuMemcpy2D(&c), CUDA_SUCCESS);
	gc_2d_desc(&c, NULL, a, pa, NULL, b, pb);
	gc_expect("2d.dtod", cuMemcpy2D(&c), CUDA_SUCCESS);
	gc_2d_desc(&c, NULL, b, pb, dst, 0, hd);
	gc_expect("2d.dtoh", cuMemcpy2D(&c), CUDA_SUCCESS);
	gc_check("2d.bytes", gc_2d_same(src, hs, dst, hd));

	gc_pattern(src, hs * GC_H, 5);
	memset(dst, 0, hd * GC_H);
	gc_2d_desc(&c, src, 0, hs, NULL, a, pa);
	gc_expect("2d_async.htod", cuMemcpy2DAsync(&c, s), CUDA_SUCCESS);
	gc_2d_desc(&c, NULL, a, pa, NULL, b, pb);
	gc_expect("2d_async.dtod", cuMemcpy2DAsync(&c, s), CUDA_SUCCESS);
	gc_2d_desc(&c, NULL, b, pb, dst, 0, hd);
	gc_expect("2d_async.dtoh", cuMemcpy2DAsync(&c, s), CUDA_SUCCESS);
	gc_expect("2d_async.synchronize", cuStreamSynchronize(s), CUDA_SUCCESS);
	gc_check("2d_async.bytes", gc_2d_same(src, hs, dst, hd));

	gc_pattern(src, hs * GC_H, 6);
	memset(dst, 0, hd * GC_H);
	gc_2d_desc(&c, src, 0, hs, NULL, a, pa);
	gc_expect("2d_unaligned.htod", cuMemcpy2DUnaligned(&c), CUDA_SUCCESS);
	gc_2d_desc(&c, NULL, a, pa, dst, 0, hd);
	gc_expect("2d_unaligned.dtoh", cuMemcpy2DUnaligned(&c), CUDA_SUCCESS);
	gc_check("2d_unaligned.bytes", gc_2d_same(src, hs, dst, hd));

	/* A source pitch smaller than the width is refused. */
	gc_2d_desc(&c, src, 0, GC_W - 1, NULL, a, pa);
	gc_expect_err("2d.bad_pitch", cuMemcpy2D(&c), CUDA_ERROR_INVALID_VALUE);

	gc_expect("2d.free.a", cuMemFree(a), CUDA_SUCCESS);
	gc_expect("2d.free.b", cuMemFree(b), CUDA_SUCCESS);
}

static void gc_3d_desc(CUDA_MEMCPY3D *c, const void *hsrc, CUdeviceptr dsrc, size_t spitch,
		       void *hdst, CUdeviceptr ddst, size_t dpitch)
{
	memset(c, 0, sizeof(*c));
	c->srcMemoryType = hsrc ? CU_MEMORYTYPE_HOST : CU_MEMORYTYPE_DEVICE;
	c->srcHost = hsrc;
	c->srcDevice = dsrc;
	c->srcPitch = spitch;
	c->srcHeight = GC_H;
	c->dstMemoryType = hdst ? CU_MEMORYTYPE_HOST : CU_MEMORYTYPE_DEVICE;
	c->dstHost = hdst;
	c->dstDevice = ddst;
	c->dstPitch = dpitch;
	c->dstHeight = GC_H;
	c->WidthInBytes = GC_W;
	c->Height = GC_H;
	c->Depth = GC_D;
}

static int gc_3d_same(const unsigned char *src, size_t sp, const unsigned char *dst,
		      size_t dp)
{
	int z;

	for (z = 0; z < GC_D; z++)
		if (!gc_2d_same(src + z * sp * GC_H, sp, dst + z * dp * GC_H, dp))
			return 0;
	return 1;
}

static void gc_copies_3d(CUstream s, unsigned char *src, unsigned char *dst)
{
	size_t hs = 320, hd = 384, dp = 512;
	CUdeviceptr a = 0, b = 0;
	CUDA_MEMCPY3D c;

	gc_must("3d.alloc.a", cuMemAlloc(&a, dp * GC_H * GC_D));
	gc_must("3d.alloc.b", cuMemAlloc(&b, dp * GC_H * GC_D));

	gc_pattern(src, hs * GC_H * GC_D, 7);
	memset(dst, 0, hd * GC_H * GC_D);
	gc_3d_desc(&c, src, 0, hs, NULL, a, dp);
	gc_expect("3d.htod", cuMemcpy3D(&c), CUDA_SUCCESS);
	gc_3d_desc(&c, NULL, a, dp, NULL, b, dp);
	gc_expect("3d.dtod", cuMemcpy3D(&c), CUDA_SUCCESS);
	gc_3d_desc(&c, NULL, b, dp, dst, 0, hd);
	gc_expect("3d.dtoh", cuMemcpy3D(&c), CUDA_SUCCESS);
	gc_check("3d.bytes", gc_3d_same(src, hs, dst, hd));

	gc_pattern(src, hs * GC_H * GC_D, 8);
	memset(dst, 0, hd * GC_H * GC_D);
	gc_3d_desc(&c, src, 0, hs, NULL, a, dp);
	gc_expect("3d_async.htod", cuMemcpy3DAsync(&c, s), CUDA_SUCCESS);
	gc_3d_desc(&c, NULL, a, dp, NULL, b, dp);
	gc_expect("3d_async.dtod", cuMemcpy3DAsync(&c, s), CUDA_SUCCESS);
	gc_3d_desc(&c, NULL, b, dp, dst, 0, hd);
	gc_expect("3d_async.dtoh", cuMemcpy3DAsync(&c, s), CUDA_SUCCESS);
	gc_expect("3d_async.synchronize", cuStreamSynchronize(s), CUDA_SUCCESS);
	gc_check("3d_async.bytes", gc_3d_same(src, hs, dst, hd));

	gc_expect("3d.free.a", cuMemFree(a), CUDA_SUCCESS);
	gc_expect("3d.free.b", cuMemFree(b), CUDA_SUCCESS);
}

/*
 * Pageable copies of several chunks (vgpu stages them 8 MiB at a time, two
 * in flight), an odd size, at an offset, both ways.  With a stream s, the
 * host-to-device copy is the asynchronous one (vgpu stages these too, the
 * stream waited for between chunks): it keeps its place in the stream's
 * order (a memset queued after it wins over its first bytes, one queued
 * before loses), and every byte arrives.
 */
#define GC_LARGE ((37u << 20) + 12345u)

static void gc_copies_pageable(CUstream s)
{
	const char *tag = s ? "large_async" : "large";
	size_t n = GC_LARGE, i, lead = s ? 100 : 0;
	unsigned char *a = malloc(n), *b = malloc(n);
	CUdeviceptr d = 0;
	char what[64];
	int same = 1;

#define GC_WHAT(step) (snprintf(what, sizeof(what), "%s.%s", tag, step), what)
	if (!a || !b) {
		gc_check(GC_WHAT("malloc"), 0);
		free(a);
		free(b);
		return;
	}
	for (i = 0; i < n; i++)
		a[i] = (unsigned char)(s ? i * 77 + (i >> 19) + 1 : i * 131 + (i >> 20));
	memset(b, 0, n);
	gc_must(GC_WHAT("alloc"), cuMemAlloc(&d, n + 64));
	if (s) {
		gc_expect(GC_WHAT("memset_before"), cuMemsetD8Async(d, 0x11, n + 64, s), CUDA_SUCCESS);
		gc_expect(GC_WHAT("htod"), cuMemcpyHtoDAsync(d + 64, a, n, s), CUDA_SUCCESS);
		gc_expect(GC_WHAT("memset_after"), cuMemsetD8Async(d + 64, 0x5a, lead, s), CUDA_SUCCESS);
		gc_expect(GC_WHAT("sync"), cuStreamSynchronize(s), CUDA_SUCCESS);
	} else {
		gc_expect(GC_WHAT("htod"), cuMemcpyHtoD(d + 64, a, n), CUDA_SUCCESS);
	}
	gc_expect(GC_WHAT("dtoh"), cuMemcpyDtoH(b, d + 64, n), CUDA_SUCCESS);
	for (i = 0; i < lead && same; i++)
		same = b[i] == 0x5a;
	for (i = lead; i < n && same; i++)
		same = a[i] == b[i];
	gc_check(GC_WHAT("bytes"), same);
	gc_expect(GC_WHAT("free"), cuMemFree(d), CUDA_SUCCESS);
#undef GC_WHAT
	free(a);
	free(b);
}

int main(void)
{
	unsigned char *src = malloc(GC_BYTES), *dst = malloc(GC_BYTES);
	CUstream s = NULL;
	CUdevice dev;

	gc_begin("copies");
	if (!src || !dst)
		gc_abort();
	gc_setup(&dev);
	gc_must("stream_create", cuStreamCreate(&s, CU_STREAM_NON_BLOCKING));
	gc_copies_linear(s, src, dst);
	gc_copies_2d(s, src, dst);
	gc_copies_3d(s, src, dst);
	gc_copies_pageable(NULL);
	gc_copies_pageable(s);
	gc_expect("stream_destroy", cuStreamDestroy(s), CUDA_SUCCESS);
	free(src);
	free(dst);
	return gc_end();
}
