/* SPDX-License-Identifier: MIT */
/*
 * Memsets, checked byte by byte: D8/D16/D32 on odd counts and offsets, the
 * 2D forms on a pitched allocation (only the W x H region changes), and the
 * Async form of each.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gcase.h"

#define GC_BYTES 65536
#define GC_W 100	/* elements per row of the 2D region */
#define GC_H 20

/* Check n elements of size es at offset off are v, the rest stays 0xee. */
static int gc_linear_ok(const unsigned char *h, size_t off, size_t n, unsigned es, uint32_t v)
{
	size_t i;

	for (i = 0; i < GC_BYTES; i++) {
		int in = i >= off && i < off + n * es;
		unsigned char want = in ? (unsigned char)(v >> (8 * ((i - off) % es))) : 0xee;

		if (h[i] != want)
			return 0;
	}
	return 1;
}

static int gc_2d_ok(const unsigned char *h, size_t pitch, unsigned es, uint32_t v)
{
	size_t x, y;

	for (y = 0; y < GC_H + 1; y++)
		for (x = 0; x < pitch; x++) {
			int in = y < GC_H && x < GC_W * es;
			unsigned char want = in ? (unsigned char)(v >> (8 * (x % es))) : 0xee;

			if (h[y * pitch + x] != want)
				return 0;
		}
	return 1;
}

static void gc_memset_one(CUstream s, CUdeviceptr d, unsigned char *h, unsigned es, int async)
{
	/* Element offsets and counts that are neither round nor aligned to more than es. */
	size_t off = 3 * es, n = 1001;
	uint32_t v = es == 1 ? 0xa5 : es == 2 ? 0xbeef : 0xdeadbeefu;
	char key[64];
	CUresult r;

	snprintf(key, sizeof(key), "d%u%s", 8 * es, async ? "_async" : "");
	gc_must("fill", cuMemsetD8(d, 0xee, GC_BYTES));
	if (es == 1)
		r = async ? cuMemsetD8Async(d + off, (unsigned char)v, n, s) :
			    cuMemsetD8(d + off, (unsigned char)v, n);
	else if (es == 2)
		r = async ? cuMemsetD16Async(d + off, (unsigned short)v, n, s) :
			    cuMemsetD16(d + off, (unsigned short)v, n);
	else
		r = async ? cuMemsetD32Async(d + off, v, n, s) : cuMemsetD32(d + off, v, n);
	gc_expect(key, r, CUDA_SUCCESS);
	if (async)
		gc_must("stream_synchronize", cuStreamSynchronize(s));
	gc_must("dtoh", cuMemcpyDtoH(h, d, GC_BYTES));
	snprintf(key, sizeof(key), "d%u%s.bytes", 8 * es, async ? "_async" : "");
	gc_check(key, gc_linear_ok(h, off, n, es, v));
}

static void gc_memset_2d(CUstream s, CUdeviceptr d, size_t pitch, unsigned char *h,
			 unsigned es, int async)
{
	uint32_t v = es == 1 ? 0x3c : es == 2 ? 0x1234 : 0xcafef00du;
	size_t bytes = pitch * (GC_H + 1);
	char key[64];
	CUresult r;

	snprintf(key, sizeof(key), "d2d%u%s", 8 * es, async ? "_async" : "");
	gc_must("fill2d", cuMemsetD8(d, 0xee, bytes));
	if (es == 1)
		r = async ? cuMemsetD2D8Async(d, pitch, (unsigned char)v, GC_W, GC_H, s) :
			    cuMemsetD2D8(d, pitch, (unsigned char)v, GC_W, GC_H);
	else if (es == 2)
		r = async ? cuMemsetD2D16Async(d, pitch, (unsigned short)v, GC_W, GC_H, s) :
			    cuMemsetD2D16(d, pitch, (unsigned short)v, GC_W, GC_H);
	else
		r = async ? cuMemsetD2D32Async(d, pitch, v, GC_W, GC_H, s) :
			    cuMemsetD2D32(d, pitch, v, GC_W, GC_H);
	gc_expect(key, r, CUDA_SUCCESS);
	if (async)
		gc_must("stream_synchronize", cuStreamSynchronize(s));
	gc_must("dtoh2d", cuMemcpyDtoH(h, d, bytes));
	snprintf(key, sizeof(key), "d2d%u%s.bytes", 8 * es, async ? "_async" : "");
	gc_check(key, gc_2d_ok(h, pitch, es, v));
}

int main(void)
{
	unsigned char *h = malloc(GC_BYTES);
	CUdeviceptr d = 0, p2 = 0;
	size_t pitch = 0;
	CUstream s = NULL;
	CUdevice dev;
	unsigned es;
	int async;

	gc_begin("memsets");
	if (!h)
		gc_abort();
	gc_setup(&dev);
	gc_must("stream_create", cuStreamCreate(&s, CU_STREAM_DEFAULT));
	gc_must("alloc", cuMemAlloc(&d, GC_BYTES));
	/* One row more than the region, to see that it stays untouched. */
	gc_must("alloc_pitch", cuMemAllocPitch(&p2, &pitch, GC_W * 4, GC_H + 1, 4));
	if (pitch * (GC_H + 1) > GC_BYTES) {
		gc_fail("alloc_pitch", "pitch %zu too large for the check buffer", pitch);
		gc_abort();
	}
	for (async = 0; async < 2; async++)
		for (es = 1; es <= 4; es *= 2) {
			gc_memset_one(s, d, h, es, async);
			gc_memset_2d(s, p2, pitch, h, es, async);
		}
	gc_expect("free", cuMemFree(d), CUDA_SUCCESS);
	gc_expect("free_pitch", cuMemFree(p2), CUDA_SUCCESS);
	gc_expect("stream_destroy", cuStreamDestroy(s), CUDA_SUCCESS);
	free(h);
	return gc_end();
}
