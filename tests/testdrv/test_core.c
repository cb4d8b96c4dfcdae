/* SPDX-License-Identifier: MIT */
/*
 * CPU test driver, unit tests (1/2): the calls before cuInit, devices,
 * contexts (primary ones, per-thread current context), memory, host
 * memory and pointer attributes, copies, memsets, the fork rule and the
 * exit report.  The tests run in order: the first one checks the calls
 * before cuInit and then initialises.
 */
#include <elf.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "tdtest.h"

/* ---- init, version, devices ------------------------------------------- */

static void test_before_init(void **state)
{
	int n = -1, v = 0;
	CUcontext c = NULL;
	CUdeviceptr p;

	ERR(cuDeviceGetCount(&n), CUDA_ERROR_NOT_INITIALIZED);
	ERR(cuCtxCreate_v2(&c, 0, 0), CUDA_ERROR_NOT_INITIALIZED);
	ERR(cuMemAlloc_v2(&p, 16), CUDA_ERROR_NOT_INITIALIZED);
	OK(cuDriverGetVersion(&v));
	assert_int_equal(v, 13000);
	ERR(cuInit(1), CUDA_ERROR_INVALID_VALUE);
	OK(cuInit(0));
	OK(cuInit(0));
	OK(cuDeviceGetCount(&n));
	assert_int_equal(n, 2);
	/* No context is current until one is made or set. */
	ERR(cuMemAlloc_v2(&p, 16), CUDA_ERROR_INVALID_CONTEXT);
	ERR(cuCtxSynchronize(), CUDA_ERROR_INVALID_CONTEXT);
}

static void test_devices(void **state)
{
	char name[64], bus[32];
	CUuuid u0, u1;
	CUdevice d = -1;
	size_t mem = 0;
	int a, i, major = 0, minor = -1;
	CUdevprop prop;

	OK(cuDeviceGet(&d, 1));
	assert_int_equal(d, 1);
	ERR(cuDeviceGet(&d, 2), CUDA_ERROR_INVALID_DEVICE);
	OK(cuDeviceGetName(name, sizeof(name), 1));
	assert_string_equal(name, "vgpu CPU test device 1");
	ERR(cuDeviceGetName(name, sizeof(name), 5), CUDA_ERROR_INVALID_DEVICE);
	OK(cuDeviceGetUuid(&u0, 0));
	OK(cuDeviceGetUuid_v2(&u1, 1));
	assert_memory_not_equal(u0.bytes, u1.bytes, 16);
	OK(cuDeviceGetUuid(&u1, 0));
	assert_memory_equal(u0.bytes, u1.bytes, 16);
	OK(cuDeviceGetPCIBusId(bus, sizeof(bus), 1));
	assert_string_equal(bus, "0000:02:00.0");
	OK(cuDeviceGetByPCIBusId(&d, bus));
	assert_int_equal(d, 1);
	OK(cuDeviceGetByPCIBusId(&d, "01:00.0"));
	assert_int_equal(d, 0);
	ERR(cuDeviceGetByPCIBusId(&d, "0000:09:00.0"), CUDA_ERROR_INVALID_DEVICE);
	ERR(cuDeviceGetByPCIBusId(&d, "junk"), CUDA_ERROR_INVALID_VALUE);
	OK(cuDeviceTotalMem_v2(&mem, 0));
	assert_true(mem == (size_t)1 << 30);
	for (i = 1; i < CU_DEVICE_ATTRIBUTE_MAX; i++)
		OK(cuDeviceGetAttribute(&a, (CUdevice_attribute)i, 0));
	ERR(cuDeviceGetAttribute(&a, (CUdevice_attribute)0, 0), CUDA_ERROR_INVALID_VALUE);
	ERR(cuDeviceGetAttribute(&a, CU_DEVICE_ATTRIBUTE_MAX, 0), CUDA_ERROR_INVALID_VALUE);
	ERR(cuDeviceGetAttribute(&a, CU_DEVICE_ATTRIBUTE_WARP_SIZE, 2), CUDA_ERROR_INVALID_DEVICE);
	OK(cuDeviceGetAttribute(&a, CU_DEVICE_ATTRIBUTE_WARP_SIZE, 0));
	assert_int_equal(a, 32);
	OK(cuDeviceGetAttribute(&a, CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT, 0));
	assert_int_equal(a, 4);
	OK(cuDeviceGetAttribute(&a, CU_DEVICE_ATTRIBUTE_UNIFIED_ADDRESSING, 0));
	assert_int_equal(a, 1);
	OK(cuDeviceGetAttribute(&a, CU_DEVICE_ATTRIBUTE_PCI_BUS_ID, 1));
	assert_int_equal(a, 2);
	OK(cuDeviceComputeCapability(&major, &minor, 0));
	assert_int_equal(major, 9);
	assert_int_equal(minor, 0);
	OK(cuDeviceGetProperties(&prop, 0));
	assert_int_equal(prop.maxThreadsPerBlock, 1024);
	assert_int_equal(prop.SIMDWidth, 32);
}

/* ---- contexts ---------------------------------------------------------- */

static void test_contexts(void **state)
{
	CUcontext a = NULL, b = NULL, cur = NULL, pop = NULL;
	unsigned flags = 99, ver = 0;
	unsigned long long ida = 0, idb = 0;
	size_t lim = 0;
	int lo = 9, hi = 9;
	CUdevice dev = -1;
	CUfunc_cache cfg;

	OK(cuCtxCreate_v2(&a, CU_CTX_SCHED_YIELD, 0));
	OK(cuCtxGetCurrent(&cur));
	assert_ptr_equal(cur, a);
	OK(cuCtxCreate_v2(&b, 0, 1));
	OK(cuCtxGetDevice(&dev));
	assert_int_equal(dev, 1);
	OK(cuCtxPopCurrent_v2(&pop));
	assert_ptr_equal(pop, b);
	OK(cuCtxGetFlags(&flags));
	assert_int_equal(flags, CU_CTX_SCHED_YIELD);
	OK(cuCtxPushCurrent_v2(b));
	OK(cuCtxSetCurrent(a));
	OK(cuCtxGetCurrent(&cur));
	assert_ptr_equal(cur, a);
	OK(cuCtxPopCurrent_v2(&pop));
	assert_ptr_equal(pop, a);
	OK(cuCtxGetCurrent(&cur));
	assert_ptr_equal(cur, a);
	OK(cuCtxSetCurrent(NULL));
	OK(cuCtxGetCurrent(&cur));
	assert_null(cur);
	ERR(cuCtxGetDevice(&dev), CUDA_ERROR_INVALID_CONTEXT);
	ERR(cuCtxPopCurrent_v2(&pop), CUDA_ERROR_INVALID_CONTEXT);
	ERR(cuCtxCreate_v2(&b, 0x1000, 0), CUDA_ERROR_INVALID_VALUE);
	ERR(cuCtxCreate_v2(&b, 0, 7), CUDA_ERROR_INVALID_DEVICE);

	OK(cuCtxSetCurrent(a));
	OK(cuCtxGetApiVersion(NULL, &ver));
	assert_true(ver > 0);
	OK(cuCtxGetId(a, &ida));
	OK(cuCtxGetId(b, &idb));
	assert_true(ida != idb);
	OK(cuCtxGetStreamPriorityRange(&lo, &hi));
	assert_int_equal(lo, 0);
	assert_true(hi < 0);
	OK(cuCtxSetLimit(CU_LIMIT_MALLOC_HEAP_SIZE, 16 << 20));
	OK(cuCtxGetLimit(&lim, CU_LIMIT_MALLOC_HEAP_SIZE));
	assert_int_equal(lim, 16 << 20);
	ERR(cuCtxSetLimit((CUlimit)0x7fff, 1), CUDA_ERROR_INVALID_VALUE);
	OK(cuCtxSetCacheConfig(CU_FUNC_CACHE_PREFER_L1));
	OK(cuCtxGetCacheConfig(&cfg));
	assert_int_equal(cfg, CU_FUNC_CACHE_PREFER_L1);
	OK(cuCtxSetFlags(CU_CTX_SCHED_SPIN));
	OK(cuCtxGetFlags(&flags));
	assert_int_equal(flags, CU_CTX_SCHED_SPIN);
	OK(cuCtxSynchronize());

	OK(cuCtxDestroy_v2(b));
	ERR(cuCtxDestroy_v2(b), CUDA_ERROR_CONTEXT_IS_DESTROYED);
	ERR(cuCtxPushCurrent_v2(b), CUDA_ERROR_INVALID_CONTEXT);
	/* A pointer that never was a context. */
	ERR(cuCtxDestroy_v2((CUcontext)&lo), CUDA_ERROR_INVALID_CONTEXT);
	OK(cuCtxDestroy_v2(a));
	OK(cuCtxGetCurrent(&cur));
	assert_null(cur);
}

static void test_primary(void **state)
{
	CUcontext p = NULL, q = NULL, cur = NULL;
	unsigned flags = 9;
	int active = 9;
	CUdevice dev = -1;
	CUdeviceptr d;

	OK(cuDevicePrimaryCtxGetState(1, &flags, &active));
	assert_int_equal(active, 0);
	OK(cuDevicePrimaryCtxSetFlags_v2(1, CU_CTX_SCHED_BLOCKING_SYNC));
	OK(cuDevicePrimaryCtxRetain(&p, 1));
	OK(cuDevicePrimaryCtxRetain(&q, 1));
	assert_ptr_equal(p, q);
	OK(cuDevicePrimaryCtxGetState(1, &flags, &active));
	assert_int_equal(active, 1);
	assert_int_equal(flags, CU_CTX_SCHED_BLOCKING_SYNC);
	/* Retaining does not make it current. */
	OK(cuCtxGetCurrent(&cur));
	assert_null(cur);
	OK(cuCtxSetCurrent(p));
	OK(cuMemAlloc_v2(&d, 4096));
	/* Not destroyable through cuCtxDestroy. */
	ERR(cuCtxDestroy_v2(p), CUDA_ERROR_INVALID_CONTEXT);
	OK(cuDevicePrimaryCtxRelease_v2(1));
	OK(cuDevicePrimaryCtxGetState(1, &flags, &active));
	assert_int_equal(active, 1);
	OK(cuDevicePrimaryCtxRelease_v2(1));
	OK(cuDevicePrimaryCtxGetState(1, &flags, &active));
	assert_int_equal(active, 0);
	/* Its memory went with it; the thread's current context is dead. */
	ERR(cuMemFree_v2(d), CUDA_ERROR_CONTEXT_IS_DESTROYED);
	ERR(cuDevicePrimaryCtxRelease_v2(1), CUDA_ERROR_INVALID_CONTEXT);
	OK(cuDevicePrimaryCtxRetain(&q, 1));
	assert_ptr_equal(p, q);
	OK(cuMemAlloc_v2(&d, 4096));
	OK(cuDevicePrimaryCtxReset_v2(1));
	OK(cuDevicePrimaryCtxGetState(1, &flags, &active));
	assert_int_equal(active, 0);
	assert_int_equal(flags, 0);
	ERR(cuDevicePrimaryCtxGetState(2, &flags, &active), CUDA_ERROR_INVALID_DEVICE);
	OK(cuCtxSetCurrent(NULL));
	assert_int_equal(vgtd_live_allocations(), 0);

	/*
	 * Made current while inactive (as cudart does with the handle it gets
	 * unretained), the primary context is activated and usable.
	 */
	OK(cuCtxSetCurrent(p));
	OK(cuDevicePrimaryCtxGetState(1, &flags, &active));
	assert_int_equal(active, 1);
	OK(cuCtxGetDevice_v2(&dev, NULL));
	assert_int_equal(dev, 1);
	OK(cuCtxGetDevice_v2(&dev, p));
	assert_int_equal(dev, 1);
	OK(cuMemAlloc_v2(&d, 4096));
	OK(cuCtxSynchronize_v2(NULL));
	/* A retain and release meanwhile do not end it: only a reset does. */
	OK(cuDevicePrimaryCtxRetain(&q, 1));
	OK(cuDevicePrimaryCtxRelease(1));
	OK(cuDevicePrimaryCtxGetState(1, &flags, &active));
	assert_int_equal(active, 1);
	OK(cuMemFree_v2(d));
	OK(cuMemAlloc_v2(&d, 4096));
	OK(cuDevicePrimaryCtxReset(1));
	OK(cuDevicePrimaryCtxGetState(1, &flags, &active));
	assert_int_equal(active, 0);
	OK(cuCtxSetCurrent(NULL));
	assert_int_equal(vgtd_live_allocations(), 0);
}

struct thread_arg {
	CUcontext mine;
	CUcontext seen_at_start;
	CUcontext seen_after_set;
	CUresult alloc_without;
};

static void *other_thread(void *p)
{
	struct thread_arg *t = p;
	CUdeviceptr d;

	cuCtxGetCurrent(&t->seen_at_start);
	t->alloc_without = cuMemAlloc_v2(&d, 64);
	cuCtxSetCurrent(t->mine);
	cuCtxGetCurrent(&t->seen_after_set);
	return NULL;
}

/* The current context is per thread. */
static void test_thread_current(void **state)
{
	CUcontext main_ctx = *state, cur = NULL, other = NULL;
	struct thread_arg t = { 0 };
	pthread_t th;

	OK(cuCtxCreate_v2(&other, 0, 1));
	OK(cuCtxPopCurrent_v2(NULL));
	t.mine = other;
	assert_int_equal(pthread_create(&th, NULL, other_thread, &t), 0);
	pthread_join(th, NULL);
	assert_null(t.seen_at_start);
	assert_int_equal(t.alloc_without, CUDA_ERROR_INVALID_CONTEXT);
	assert_ptr_equal(t.seen_after_set, other);
	OK(cuCtxGetCurrent(&cur));
	assert_ptr_equal(cur, main_ctx);
	OK(cuCtxDestroy_v2(other));
}

/* ---- memory ------------------------------------------------------------ */

static void test_memory(void **state)
{
	CUdeviceptr d = 0, e = 0, base = 0, big;
	size_t fr = 0, fr2 = 0, total = 0, size = 0, pitch = 0;

	OK(cuMemGetInfo_v2(&fr, &total));
	assert_true(total == (size_t)1 << 30);
	OK(cuMemAlloc_v2(&d, 1000));
	assert_true(d % 256 == 0);
	OK(cuMemAlloc_v2(&e, 1 << 20));
	assert_true(e % 256 == 0);
	/* Device memory is not host heap: no two allocations overlap. */
	assert_true(e >= d + 1000 || d >= e + (1 << 20));
	OK(cuMemGetInfo_v2(&fr2, &total));
	assert_true(fr2 < fr);
	assert_int_equal(vgtd_live_allocations(), base_allocs + 2);

	OK(cuMemGetAddressRange_v2(&base, &size, e + 4096));
	assert_true(base == e);
	assert_int_equal(size, 1 << 20);
	ERR(cuMemGetAddressRange_v2(&base, &size, 0x10), CUDA_ERROR_NOT_FOUND);

	ERR(cuMemAlloc_v2(&big, 0), CUDA_ERROR_INVALID_VALUE);
	ERR(cuMemAlloc_v2(NULL, 16), CUDA_ERROR_INVALID_VALUE);
	ERR(cuMemAlloc_v2(&big, (size_t)1 << 40), CUDA_ERROR_OUT_OF_MEMORY);
	ERR(cuMemAlloc_v2(&big, ((size_t)1 << 30) + 1), CUDA_ERROR_OUT_OF_MEMORY);
	/* The budget is the device's: what is left still fits, more does not. */
	OK(cuMemAlloc_v2(&big, (size_t)900 << 20));
	ERR(cuMemAlloc_v2(&base, (size_t)200 << 20), CUDA_ERROR_OUT_OF_MEMORY);
	OK(cuMemFree_v2(big));
	OK(cuMemAlloc_v2(&big, (size_t)200 << 20));
	OK(cuMemFree_v2(big));

	ERR(cuMemFree_v2(e + 256), CUDA_ERROR_INVALID_VALUE);
	ERR(cuMemFree_v2(0xdead0000ull), CUDA_ERROR_INVALID_VALUE);
	OK(cuMemFree_v2(e));
	ERR(cuMemFree_v2(e), CUDA_ERROR_INVALID_VALUE);

	OK(cuMemAllocPitch_v2(&e, &pitch, 1000, 37, 4));
	assert_true(pitch >= 1000 && pitch % 256 == 0);
	OK(cuMemGetAddressRange_v2(&base, &size, e));
	assert_true(size >= pitch * 37);
	ERR(cuMemAllocPitch_v2(&base, &pitch, 1000, 37, 3), CUDA_ERROR_INVALID_VALUE);
	OK(cuMemFree_v2(e));
	OK(cuMemFree_v2(d));
	assert_int_equal(vgtd_live_allocations(), base_allocs);
}

static void test_host_memory(void **state)
{
	CUcontext c = *state, actx = NULL;
	void *h = NULL, *h2 = NULL, *hp = NULL;
	unsigned flags = 0, type = 0;
	CUdeviceptr dp = 0, d = 0, start = 0;
	char *buf = malloc(8192);
	size_t rsize = 0;
	int ord = -1;
	unsigned long long id1 = 0, id2 = 0;
	CUpointer_attribute attrs[3] = {
		CU_POINTER_ATTRIBUTE_MEMORY_TYPE, CU_POINTER_ATTRIBUTE_CONTEXT,
		CU_POINTER_ATTRIBUTE_DEVICE_ORDINAL,
	};
	void *data[3] = { &type, &actx, &ord };

	assert_non_null(buf);
	OK(cuMemHostAlloc(&h, 65536, CU_MEMHOSTALLOC_DEVICEMAP | CU_MEMHOSTALLOC_PORTABLE));
	OK(cuMemAllocHost_v2(&h2, 100));
	ERR(cuMemHostAlloc(&hp, 100, 0x80), CUDA_ERROR_INVALID_VALUE);
	OK(cuMemHostGetFlags(&flags, h));
	assert_true(flags & CU_MEMHOSTALLOC_DEVICEMAP);
	assert_true(flags & CU_MEMHOSTALLOC_PORTABLE);
	ERR(cuMemHostGetFlags(&flags, buf), CUDA_ERROR_INVALID_VALUE);
	OK(cuMemHostGetDevicePointer_v2(&dp, h, 0));
	assert_true(dp == (CUdeviceptr)(uintptr_t)h);

	/* The device sees mapped host memory: a memset through dp. */
	OK(cuMemsetD32_v2(dp, 0x01020304, 16));
	assert_int_equal(((unsigned *)h)[15], 0x01020304);

	OK(cuPointerGetAttribute(&type, CU_POINTER_ATTRIBUTE_MEMORY_TYPE, dp + 16));
	assert_int_equal(type, CU_MEMORYTYPE_HOST);
	OK(cuPointerGetAttribute(&hp, CU_POINTER_ATTRIBUTE_HOST_POINTER, dp + 16));
	assert_ptr_equal(hp, (char *)h + 16);
	ERR(cuPointerGetAttribute(&type, CU_POINTER_ATTRIBUTE_MEMORY_TYPE, (CUdeviceptr)(uintptr_t)buf),
	    CUDA_ERROR_INVALID_VALUE);
	type = 77;
	OK(cuPointerGetAttributes(1, attrs, data, (CUdeviceptr)(uintptr_t)buf));
	assert_int_equal(type, 0);

	OK(cuMemAlloc_v2(&d, 1 << 16));
	OK(cuPointerGetAttribute(&actx, CU_POINTER_ATTRIBUTE_CONTEXT, d));
	assert_ptr_equal(actx, c);
	OK(cuPointerGetAttribute(&type, CU_POINTER_ATTRIBUTE_MEMORY_TYPE, d));
	assert_int_equal(type, CU_MEMORYTYPE_DEVICE);
	OK(cuPointerGetAttribute(&dp, CU_POINTER_ATTRIBUTE_DEVICE_POINTER, d + 100));
	assert_true(dp == d + 100);
	ERR(cuPointerGetAttribute(&hp, CU_POINTER_ATTRIBUTE_HOST_POINTER, d), CUDA_ERROR_INVALID_VALUE);
	OK(cuPointerGetAttribute(&start, CU_POINTER_ATTRIBUTE_RANGE_START_ADDR, d + 4096));
	assert_true(start == d);
	OK(cuPointerGetAttribute(&rsize, CU_POINTER_ATTRIBUTE_RANGE_SIZE, d + 4096));
	assert_int_equal(rsize, 1 << 16);
	OK(cuPointerGetAttribute(&id1, CU_POINTER_ATTRIBUTE_BUFFER_ID, d));
	OK(cuPointerGetAttribute(&id2, CU_POINTER_ATTRIBUTE_BUFFER_ID, d + 8));
	assert_true(id1 == id2 && id1 != 0);
	OK(cuPointerGetAttribute(&flags, CU_POINTER_ATTRIBUTE_IS_MANAGED, d));
	assert_int_equal(flags, 0);
	OK(cuPointerGetAttribute(&flags, CU_POINTER_ATTRIBUTE_MAPPED, d));
	assert_int_equal(flags, 1);
	type = 0;
	actx = NULL;
	OK(cuPointerGetAttributes(3, attrs, data, d));
	assert_int_equal(type, CU_MEMORYTYPE_DEVICE);
	assert_ptr_equal(actx, c);
	assert_int_equal(ord, 0);

	/* Registered memory: a device operand from then on, until unregistered. */
	ERR(cuMemsetD8_v2((CUdeviceptr)(uintptr_t)buf, 1, 16), CUDA_ERROR_INVALID_VALUE);
	OK(cuMemHostRegister_v2(buf, 8192, CU_MEMHOSTREGISTER_DEVICEMAP));
	ERR(cuMemHostRegister_v2(buf + 100, 10, 0), CUDA_ERROR_HOST_MEMORY_ALREADY_REGISTERED);
	OK(cuMemsetD8_v2((CUdeviceptr)(uintptr_t)buf, 0x3c, 8192));
	assert_int_equal((unsigned char)buf[8191], 0x3c);
	ERR(cuMemHostUnregister(buf + 1), CUDA_ERROR_HOST_MEMORY_NOT_REGISTERED);
	OK(cuMemHostUnregister(buf));
	ERR(cuMemHostUnregister(buf), CUDA_ERROR_HOST_MEMORY_NOT_REGISTERED);

	ERR(cuMemFreeHost(buf), CUDA_ERROR_INVALID_VALUE);
	ERR(cuMemFreeHost((char *)h + 8), CUDA_ERROR_INVALID_VALUE);
	OK(cuMemFreeHost(h));
	OK(cuMemFreeHost(h2));
	OK(cuMemFree_v2(d));
	free(buf);
}

/* ---- copies and memsets ------------------------------------------------ */

static void test_copies(void **state)
{
	enum { N = 4096, W = 100, H = 7, D = 3 };
	unsigned char *src = malloc(N), *dst = malloc(N);
	CUdeviceptr a, b, p2;
	CUDA_MEMCPY2D c2;
	CUDA_MEMCPY3D c3;
	CUstream s;
	size_t pitch;
	int i, x, y, z;

	assert_non_null(src);
	assert_non_null(dst);
	for (i = 0; i < N; i++)
		src[i] = (unsigned char)(i * 7 + 1);
	OK(cuMemAlloc_v2(&a, N));
	OK(cuMemAlloc_v2(&b, N));
	OK(cuMemcpyHtoD_v2(a, src, N));
	OK(cuMemcpyDtoD_v2(b, a, N));
	memset(dst, 0, N);
	OK(cuMemcpyDtoH_v2(dst, b, N));
	assert_memory_equal(src, dst, N);
	memset(dst, 0, N);
	OK(cuMemcpy((CUdeviceptr)(uintptr_t)dst, a + 10, 100));
	assert_memory_equal(src + 10, dst, 100);

	/* Out of range, interior overrun, unknown memory. */
	ERR(cuMemcpyHtoD_v2(a + 1, src, N), CUDA_ERROR_INVALID_VALUE);
	ERR(cuMemcpyDtoH_v2(dst, a + N - 1, 2), CUDA_ERROR_INVALID_VALUE);
	ERR(cuMemcpyDtoD_v2((CUdeviceptr)(uintptr_t)dst, a, 16), CUDA_ERROR_INVALID_VALUE);
	ERR(cuMemcpyHtoD_v2(a, NULL, 16), CUDA_ERROR_INVALID_VALUE);

	/* Async copies on a stream, pageable source staged at the call. */
	OK(cuStreamCreate(&s, CU_STREAM_NON_BLOCKING));
	memset(dst, 0, N);
	OK(cuMemcpyHtoDAsync_v2(b, src, N, s));
	OK(cuMemcpyDtoHAsync_v2(dst, b, N, s));
	OK(cuStreamSynchronize(s));
	assert_memory_equal(src, dst, N);
	OK(cuMemcpyDtoDAsync_v2(a, b, 64, s));
	OK(cuMemcpyAsync(b, a, 64, s));
	ERR(cuMemcpyHtoDAsync_v2(b + N, src, 1, s), CUDA_ERROR_INVALID_VALUE);

	/* 2D: host (pitch W) -> pitched device -> host (pitch W + 3). */
	OK(cuMemAllocPitch_v2(&p2, &pitch, W, H, 4));
	memset(&c2, 0, sizeof(c2));
	c2.srcMemoryType = CU_MEMORYTYPE_HOST;
	c2.srcHost = src;
	c2.srcPitch = W;
	c2.dstMemoryType = CU_MEMORYTYPE_DEVICE;
	c2.dstDevice = p2;
	c2.dstPitch = pitch;
	c2.WidthInBytes = W;
	c2.Height = H;
	OK(cuMemcpy2D_v2(&c2));
	memset(&c2, 0, sizeof(c2));
	memset(dst, 0, N);
	c2.srcMemoryType = CU_MEMORYTYPE_DEVICE;
	c2.srcDevice = p2;
	c2.srcPitch = pitch;
	c2.dstMemoryType = CU_MEMORYTYPE_HOST;
	c2.dstHost = dst;
	c2.dstPitch = W + 3;
	c2.WidthInBytes = W;
	c2.Height = H;
	OK(cuMemcpy2DAsync_v2(&c2, s));
	OK(cuStreamSynchronize(s));
	for (y = 0; y < H; y++)
		assert_memory_equal(dst + y * (W + 3), src + y * W, W);
	OK(cuMemcpy2DUnaligned_v2(&c2));
	c2.srcPitch = W - 1;
	ERR(cuMemcpy2D_v2(&c2), CUDA_ERROR_INVALID_VALUE);
	c2.srcPitch = pitch;
	c2.Height = H + 1;	/* one row past the allocation */
	ERR(cuMemcpy2D_v2(&c2), CUDA_ERROR_INVALID_VALUE);

	/* 3D: a W x H x D box from host into a and back, with offsets. */
	memset(&c3, 0, sizeof(c3));
	c3.srcMemoryType = CU_MEMORYTYPE_HOST;
	c3.srcHost = src;
	c3.srcPitch = W;
	c3.srcHeight = H;
	c3.dstMemoryType = CU_MEMORYTYPE_DEVICE;
	c3.dstDevice = a;
	c3.dstPitch = W + 28;
	c3.dstHeight = H + 1;
	c3.dstXInBytes = 4;
	c3.WidthInBytes = W - 10;
	c3.Height = H;
	c3.Depth = D;
	OK(cuMemcpy3D_v2(&c3));
	memset(&c3, 0, sizeof(c3));
	memset(dst, 0, N);
	c3.srcMemoryType = CU_MEMORYTYPE_DEVICE;
	c3.srcDevice = a;
	c3.srcPitch = W + 28;
	c3.srcHeight = H + 1;
	c3.srcXInBytes = 4;
	c3.dstMemoryType = CU_MEMORYTYPE_HOST;
	c3.dstHost = dst;
	c3.dstPitch = W;
	c3.dstHeight = H;
	c3.WidthInBytes = W - 10;
	c3.Height = H;
	c3.Depth = D;
	OK(cuMemcpy3DAsync_v2(&c3, s));
	OK(cuStreamSynchronize(s));
	for (z = 0; z < D; z++)
		for (y = 0; y < H; y++)
			for (x = 0; x < W - 10; x++)
				assert_int_equal(dst[(z * H + y) * W + x], src[(z * H + y) * W + x]);
	c3.Depth = 100;
	ERR(cuMemcpy3D_v2(&c3), CUDA_ERROR_INVALID_VALUE);

	OK(cuStreamDestroy_v2(s));
	OK(cuMemFree_v2(p2));
	OK(cuMemFree_v2(a));
	OK(cuMemFree_v2(b));
	free(src);
	free(dst);
}

static void test_memsets(void **state)
{
	CUdeviceptr d;
	unsigned char b[64];
	unsigned short h[32];
	unsigned w[16];
	CUstream s;
	int i;

	OK(cuMemAlloc_v2(&d, 4096));
	OK(cuMemsetD8_v2(d, 0xab, 64));
	OK(cuMemcpyDtoH_v2(b, d, 64));
	for (i = 0; i < 64; i++)
		assert_int_equal(b[i], 0xab);
	OK(cuMemsetD16_v2(d, 0x1234, 32));
	OK(cuMemcpyDtoH_v2(h, d, 64));
	for (i = 0; i < 32; i++)
		assert_int_equal(h[i], 0x1234);
	OK(cuMemsetD32_v2(d, 0xdeadbeef, 16));
	OK(cuMemcpyDtoH_v2(w, d, 64));
	for (i = 0; i < 16; i++)
		assert_int_equal(w[i], 0xdeadbeef);
	ERR(cuMemsetD32_v2(d + 2, 0, 4), CUDA_ERROR_INVALID_VALUE);
	ERR(cuMemsetD16_v2(d + 1, 0, 4), CUDA_ERROR_INVALID_VALUE);
	ERR(cuMemsetD8_v2(d, 0, 4097), CUDA_ERROR_INVALID_VALUE);

	/* 2D: 4 rows of 3 elements at pitch 16, the gaps untouched. */
	OK(cuMemsetD8_v2(d, 0, 64));
	OK(cuMemsetD2D32_v2(d, 16, 7, 3, 4));
	OK(cuMemcpyDtoH_v2(w, d, 64));
	for (i = 0; i < 16; i++)
		assert_int_equal(w[i], i % 4 == 3 ? 0 : 7);
	OK(cuMemsetD2D8_v2(d, 16, 1, 16, 4));
	OK(cuMemsetD2D16_v2(d, 16, 2, 8, 4));
	ERR(cuMemsetD2D8_v2(d, 8, 1, 16, 2), CUDA_ERROR_INVALID_VALUE);

	OK(cuStreamCreate(&s, 0));
	OK(cuMemsetD8Async(d, 5, 64, s));
	OK(cuMemsetD16Async(d + 64, 6, 32, s));
	OK(cuMemsetD32Async(d + 128, 9, 16, s));
	OK(cuMemsetD2D8Async(d + 256, 16, 3, 8, 2, s));
	OK(cuMemsetD2D16Async(d + 512, 16, 3, 8, 2, s));
	OK(cuMemsetD2D32Async(d + 1024, 16, 3, 4, 2, s));
	OK(cuStreamSynchronize(s));
	OK(cuMemcpyDtoH_v2(w, d + 128, 64));
	for (i = 0; i < 16; i++)
		assert_int_equal(w[i], 9);
	OK(cuMemcpyDtoH_v2(b, d, 64));
	assert_int_equal(b[63], 5);
	OK(cuStreamDestroy_v2(s));
	OK(cuMemFree_v2(d));
}

/* A child of an initialised process cannot use the driver (code 3). */
static void test_fork(void **state)
{
	int status = 0;
	pid_t pid = fork();

	assert_true(pid >= 0);
	if (pid == 0) {
		CUdeviceptr d;
		int n;
		int bad = 0;

		bad |= cuInit(0) != CUDA_ERROR_NOT_INITIALIZED;
		bad |= cuDeviceGetCount(&n) != CUDA_ERROR_NOT_INITIALIZED;
		bad |= cuMemAlloc_v2(&d, 64) != CUDA_ERROR_NOT_INITIALIZED;
		bad |= cuCtxSynchronize() != CUDA_ERROR_NOT_INITIALIZED;
		_exit(bad ? 1 : 0);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	/* The parent still works. */
	OK(cuCtxSynchronize());
}

/* --report-child DIR: leave things alive and exit; the destructor reports. */
static int report_child(void)
{
	CUcontext c;
	CUdeviceptr d;
	CUstream s;
	CUevent e;
	CUmodule m;

	if (cuInit(0) || cuCtxCreate_v2(&c, 0, 0) || cuMemAlloc_v2(&d, 100) ||
	    cuMemAlloc_v2(&d, 200) || cuStreamCreate(&s, 0) || cuEventCreate(&e, 0) ||
	    cuModuleLoadData(&m, test_ptx))
		return 2;
	return 0;
}

static void test_report(void **state)
{
	char dir[] = "/tmp/vgtd-report-XXXXXX", path[256], text[512];
	int status = 0;
	pid_t pid;
	FILE *f;
	size_t n;

	assert_non_null(mkdtemp(dir));
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		setenv("VGPU_TESTDRV_REPORT", dir, 1);
		execl("/proc/self/exe", "test-testdrv", "--report-child", (char *)NULL);
		_exit(127);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	snprintf(path, sizeof(path), "%s/testdrv-%d.txt", dir, (int)pid);
	f = fopen(path, "r");
	assert_non_null(f);
	n = fread(text, 1, sizeof(text) - 1, f);
	fclose(f);
	text[n] = '\0';
	unlink(path);
	rmdir(dir);
	/* Two allocations and the module's vg_counter. */
	assert_string_equal(text, "live_allocations 3\nlive_contexts 1\nlive_streams 1\n"
			    "live_events 1\nlive_modules 1\n");
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_before_init),
		cmocka_unit_test(test_devices),
		cmocka_unit_test(test_contexts),
		cmocka_unit_test(test_primary),
		cmocka_unit_test_setup_teardown(test_thread_current, ctx_setup, ctx_teardown),
		cmocka_unit_test_setup_teardown(test_memory, ctx_setup, ctx_teardown),
		cmocka_unit_test_setup_teardown(test_host_memory, ctx_setup, ctx_teardown),
		cmocka_unit_test_setup_teardown(test_copies, ctx_setup, ctx_teardown),
		cmocka_unit_test_setup_teardown(test_memsets, ctx_setup, ctx_teardown),
		cmocka_unit_test_setup_teardown(test_fork, ctx_setup, ctx_teardown),
		cmocka_unit_test(test_report),
	};

	if (argc == 2 && !strcmp(argv[1], "--report-child"))
		return report_child();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
