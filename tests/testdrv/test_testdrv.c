/* SPDX-License-Identifier: MIT */
/*
 * Unit tests of the CPU test driver, linked against libvgpu-testdrv.so.
 * The tests run in order (the first one checks the calls before cuInit);
 * each later test works in a context of its own and leaves nothing behind,
 * which the live-object hooks check.
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

#include "g_api.h"

int vgtd_live_allocations(void);
int vgtd_live_objects(void);

#define OK(x) assert_int_equal((x), CUDA_SUCCESS)
#define ERR(x, code) assert_int_equal((x), (code))

/* Written for these tests: PTX-shaped text naming every test kernel. */
static const char test_ptx[] =
	"// test module\n"
	".version 8.0\n"
	".target sm_90\n"
	".global .align 4 .u32 vg_counter;\n"
	".visible .entry vg_vadd(.param .u64 a, .param .u64 b, .param .u64 c, .param .u32 n)\n{ ret; }\n"
	".visible .entry vg_fill (.param .u64 p, .param .u32 v, .param .u32 n)\n{ ret; }\n"
	".visible .entry vg_scale(.param .u64 p, .param .f32 s, .param .u32 n)\n{ ret; }\n"
	".visible .entry vg_matmul(.param .u64 a, .param .u64 b, .param .u64 c, .param .u32 n)\n{ ret; }\n"
	".visible .entry vg_sleep(.param .u32 usec)\n{ ret; }\n"
	".visible .entry vg_fault(.param .u64 p)\n{ ret; }\n";

static int base_allocs, base_objects;

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* Each test: a fresh context on device 0, current; nothing left after. */
static int ctx_setup(void **state)
{
	CUcontext c = NULL;

	base_allocs = vgtd_live_allocations();
	base_objects = vgtd_live_objects();
	if (cuCtxCreate_v2(&c, 0, 0) != CUDA_SUCCESS)
		return -1;
	*state = c;
	return 0;
}

static int ctx_teardown(void **state)
{
	CUcontext c = *state;

	if (cuCtxDestroy_v2(c) != CUDA_SUCCESS)
		return -1;
	/* Destroying a context frees everything it owned. */
	if (vgtd_live_allocations() != base_allocs || vgtd_live_objects() != base_objects)
		return -1;
	return 0;
}

static CUmodule load_module(void)
{
	CUmodule m = NULL;

	OK(cuModuleLoadData(&m, test_ptx));
	return m;
}

static CUfunction get_fn(CUmodule m, const char *name)
{
	CUfunction f = NULL;

	OK(cuModuleGetFunction(&f, m, name));
	return f;
}

static void launch_sleep(CUfunction f, unsigned usec, CUstream s)
{
	void *args[] = { &usec };

	OK(cuLaunchKernel(f, 1, 1, 1, 1, 1, 1, 0, s, args, NULL));
}

static void launch_fill(CUfunction f, CUdeviceptr p, unsigned v, int n, CUstream s)
{
	void *args[] = { &p, &v, &n };

	OK(cuLaunchKernel(f, (unsigned)(n + 127) / 128, 1, 1, 128, 1, 1, 0, s, args, NULL));
}

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

/* ---- modules and launches ---------------------------------------------- */

/* A minimal ELF64 image with a symbol table: vg_fill (a function) only. */
static size_t make_elf(unsigned char *buf, size_t cap)
{
	static const char strtab[] = "\0vg_fill\0vg_counter\0";
	static const char shstr[] = "\0.symtab\0.strtab\0.shstrtab\0";
	Elf64_Ehdr *eh = (Elf64_Ehdr *)buf;
	Elf64_Sym sym[3];
	Elf64_Shdr sh[4];
	size_t off = sizeof(*eh);

	assert_true(cap > 1024);
	memset(buf, 0, cap);
	memset(sym, 0, sizeof(sym));
	memset(sh, 0, sizeof(sh));
	memcpy(eh->e_ident, ELFMAG, SELFMAG);
	eh->e_ident[EI_CLASS] = ELFCLASS64;
	eh->e_ident[EI_DATA] = ELFDATA2LSB;
	eh->e_ident[EI_VERSION] = EV_CURRENT;
	eh->e_type = ET_EXEC;
	eh->e_ehsize = sizeof(*eh);
	eh->e_shentsize = sizeof(Elf64_Shdr);
	eh->e_shnum = 4;
	eh->e_shstrndx = 3;
	sym[1].st_name = 1;
	sym[1].st_info = ELF64_ST_INFO(STB_GLOBAL, STT_FUNC);
	sym[2].st_name = 9;
	sym[2].st_info = ELF64_ST_INFO(STB_GLOBAL, STT_OBJECT);
	sh[1].sh_name = 1;
	sh[1].sh_type = SHT_SYMTAB;
	sh[1].sh_link = 2;
	sh[1].sh_entsize = sizeof(Elf64_Sym);
	sh[1].sh_offset = off;
	sh[1].sh_size = sizeof(sym);
	memcpy(buf + off, sym, sizeof(sym));
	off += sizeof(sym);
	sh[2].sh_name = 9;
	sh[2].sh_type = SHT_STRTAB;
	sh[2].sh_offset = off;
	sh[2].sh_size = sizeof(strtab);
	memcpy(buf + off, strtab, sizeof(strtab));
	off += sizeof(strtab);
	sh[3].sh_name = 17;
	sh[3].sh_type = SHT_STRTAB;
	sh[3].sh_offset = off;
	sh[3].sh_size = sizeof(shstr);
	memcpy(buf + off, shstr, sizeof(shstr));
	off += sizeof(shstr);
	off = (off + 7) & ~(size_t)7;
	eh->e_shoff = off;
	memcpy(buf + off, sh, sizeof(sh));
	return off + sizeof(sh);
}

static void test_modules(void **state)
{
	static const struct {
		const char *name;
		int n;
		size_t layout[4][2];
	} kernels[] = {
		{ "vg_vadd", 4, { { 0, 8 }, { 8, 8 }, { 16, 8 }, { 24, 4 } } },
		{ "vg_fill", 3, { { 0, 8 }, { 8, 4 }, { 12, 4 } } },
		{ "vg_scale", 3, { { 0, 8 }, { 8, 4 }, { 12, 4 } } },
		{ "vg_matmul", 4, { { 0, 8 }, { 8, 8 }, { 16, 8 }, { 24, 4 } } },
		{ "vg_sleep", 1, { { 0, 4 } } },
		{ "vg_fault", 1, { { 0, 8 } } },
	};
	unsigned char elf[2048], fat[256];
	struct {
		int magic, version;
		const void *data;
		void *filename;
	} wrapper;
	CUmodule m, m2;
	CUfunction f;
	CUdeviceptr g = 0;
	size_t gsize = 0, off, size;
	const char *name;
	unsigned k;
	int i, v;
	uint64_t fsize;

	m = load_module();
	for (k = 0; k < sizeof(kernels) / sizeof(kernels[0]); k++) {
		f = get_fn(m, kernels[k].name);
		OK(cuFuncGetName(&name, f));
		assert_string_equal(name, kernels[k].name);
		for (i = 0; i < kernels[k].n; i++) {
			OK(cuFuncGetParamInfo(f, (size_t)i, &off, &size));
			assert_int_equal(off, kernels[k].layout[i][0]);
			assert_int_equal(size, kernels[k].layout[i][1]);
		}
		ERR(cuFuncGetParamInfo(f, (size_t)kernels[k].n, &off, &size), CUDA_ERROR_INVALID_VALUE);
	}
	ERR(cuModuleGetFunction(&f, m, "vg_nothing"), CUDA_ERROR_NOT_FOUND);
	ERR(cuModuleGetFunction(&f, NULL, "vg_fill"), CUDA_ERROR_INVALID_HANDLE);
	OK(cuModuleGetGlobal_v2(&g, &gsize, m, "vg_counter"));
	assert_int_equal(gsize, 4);
	OK(cuMemsetD32_v2(g, 41, 1));
	OK(cuMemcpyDtoH_v2(&v, g, 4));
	assert_int_equal(v, 41);
	OK(cuModuleGetGlobal_v2(NULL, NULL, m, "vg_counter"));
	ERR(cuModuleGetGlobal_v2(&g, &gsize, m, "vg_nothing"), CUDA_ERROR_NOT_FOUND);

	f = get_fn(m, "vg_vadd");
	OK(cuFuncGetAttribute(&v, CU_FUNC_ATTRIBUTE_MAX_THREADS_PER_BLOCK, f));
	assert_int_equal(v, 1024);
	OK(cuFuncGetAttribute(&v, CU_FUNC_ATTRIBUTE_NUM_REGS, f));
	assert_true(v > 0);
	OK(cuFuncSetAttribute(f, CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES, 65536));
	OK(cuFuncGetAttribute(&v, CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES, f));
	assert_int_equal(v, 65536);
	ERR(cuFuncSetAttribute(f, CU_FUNC_ATTRIBUTE_NUM_REGS, 3), CUDA_ERROR_INVALID_VALUE);
	ERR(cuFuncGetAttribute(&v, (CUfunction_attribute)0x7fff, f), CUDA_ERROR_INVALID_VALUE);
	OK(cuFuncSetCacheConfig(f, CU_FUNC_CACHE_PREFER_SHARED));
	ERR(cuFuncSetCacheConfig(f, (CUfunc_cache)9), CUDA_ERROR_INVALID_VALUE);

	/* Images without any test kernel. */
	ERR(cuModuleLoadData(&m2, "// nothing here\n.entry other(\n"), CUDA_ERROR_INVALID_IMAGE);
	ERR(cuModuleLoadData(&m2, "vg_vadd without an entry"), CUDA_ERROR_INVALID_IMAGE);
	ERR(cuModuleLoadData(&m2, ".entry vg_vaddx("), CUDA_ERROR_INVALID_IMAGE);

	/* An ELF cubin: its symbol table decides. */
	make_elf(elf, sizeof(elf));
	OK(cuModuleLoadDataEx(&m2, elf, 0, NULL, NULL));
	get_fn(m2, "vg_fill");
	ERR(cuModuleGetFunction(&f, m2, "vg_vadd"), CUDA_ERROR_NOT_FOUND);
	OK(cuModuleGetGlobal_v2(&g, &gsize, m2, "vg_counter"));
	OK(cuModuleUnload(m2));

	/* A fatbin (header + payload naming vg_scale), bare and wrapped. */
	memset(fat, 0, sizeof(fat));
	fsize = 64;
	memcpy(fat, "\x50\xed\x55\xba\x01\x00\x10\x00", 8);
	memcpy(fat + 8, &fsize, 8);
	memcpy(fat + 40, ".text.vg_scale", 15);
	OK(cuModuleLoadFatBinary(&m2, fat));
	get_fn(m2, "vg_scale");
	OK(cuModuleUnload(m2));
	wrapper.magic = 0x466243b1;
	wrapper.version = 1;
	wrapper.data = fat;
	wrapper.filename = NULL;
	OK(cuModuleLoadFatBinary(&m2, &wrapper));
	get_fn(m2, "vg_scale");
	OK(cuModuleUnload(m2));
	/* The name past the fatbin's stated size does not count. */
	fsize = 8;
	memcpy(fat + 8, &fsize, 8);
	ERR(cuModuleLoadFatBinary(&m2, fat), CUDA_ERROR_INVALID_IMAGE);

	/* From a file. */
	{
		char path[] = "/tmp/vgtd-ptx-XXXXXX";
		int fd = mkstemp(path);

		assert_true(fd >= 0);
		assert_int_equal(write(fd, test_ptx, strlen(test_ptx)), (ssize_t)strlen(test_ptx));
		close(fd);
		OK(cuModuleLoad(&m2, path));
		unlink(path);
		get_fn(m2, "vg_matmul");
		OK(cuModuleUnload(m2));
		ERR(cuModuleLoad(&m2, path), CUDA_ERROR_FILE_NOT_FOUND);
	}

	OK(cuModuleUnload(m));
	ERR(cuModuleUnload(m), CUDA_ERROR_INVALID_HANDLE);
	/* Functions of an unloaded module are gone too. */
	ERR(cuFuncGetName(&name, f), CUDA_ERROR_INVALID_HANDLE);
}

static void test_launch(void **state)
{
	enum { N = 1000, M = 5 };
	float a[N], b[N], c[N], A[M * M], B[M * M], C[M * M];
	CUdeviceptr da, db, dc;
	CUmodule m = load_module();
	CUfunction vadd = get_fn(m, "vg_vadd"), scale = get_fn(m, "vg_scale");
	CUfunction fill = get_fn(m, "vg_fill"), mm = get_fn(m, "vg_matmul");
	int n = N, mn = M, i, j, k;
	unsigned char pbuf[16];
	size_t psize = sizeof(pbuf);
	float s = 2.5f;
	void *args[] = { &da, &db, &dc, &n };
	void *extra[] = {
		CU_LAUNCH_PARAM_BUFFER_POINTER, pbuf,
		CU_LAUNCH_PARAM_BUFFER_SIZE, &psize,
		CU_LAUNCH_PARAM_END,
	};

	for (i = 0; i < N; i++) {
		a[i] = (float)i;
		b[i] = (float)(2 * i + 1);
	}
	OK(cuMemAlloc_v2(&da, sizeof(a)));
	OK(cuMemAlloc_v2(&db, sizeof(b)));
	OK(cuMemAlloc_v2(&dc, sizeof(c)));
	OK(cuMemcpyHtoD_v2(da, a, sizeof(a)));
	OK(cuMemcpyHtoD_v2(db, b, sizeof(b)));
	OK(cuMemsetD32_v2(dc, 0, N));
	OK(cuLaunchKernel(vadd, (N + 255) / 256, 1, 1, 256, 1, 1, 0, NULL, args, NULL));
	OK(cuMemcpyDtoH_v2(c, dc, sizeof(c)));
	for (i = 0; i < N; i++)
		assert_true(c[i] == a[i] + b[i]);

	/* Fewer threads than elements: only the covered indices change. */
	OK(cuMemsetD32_v2(dc, 0, N));
	OK(cuLaunchKernel(vadd, 2, 1, 1, 100, 1, 1, 0, NULL, args, NULL));
	OK(cuMemcpyDtoH_v2(c, dc, sizeof(c)));
	assert_true(c[199] == a[199] + b[199]);
	assert_true(c[200] == 0.0f);

	/* vg_scale through `extra`: the caller's packed buffer. */
	memcpy(pbuf, &dc, 8);
	memcpy(pbuf + 8, &s, 4);
	memcpy(pbuf + 12, &n, 4);
	OK(cuLaunchKernel(scale, 4, 1, 1, 256, 1, 1, 0, NULL, NULL, extra));
	OK(cuMemcpyDtoH_v2(c, dc, sizeof(c)));
	assert_true(c[10] == (a[10] + b[10]) * 2.5f);
	assert_true(c[300] == 0.0f);
	psize = 8;
	ERR(cuLaunchKernel(scale, 4, 1, 1, 256, 1, 1, 0, NULL, NULL, extra), CUDA_ERROR_INVALID_VALUE);
	psize = sizeof(pbuf);

	ERR(cuLaunchKernel(scale, 1, 1, 1, 32, 1, 1, 0, NULL, args, extra), CUDA_ERROR_INVALID_VALUE);
	ERR(cuLaunchKernel(fill, 1, 1, 1, 4096, 1, 1, 0, NULL, args, NULL), CUDA_ERROR_INVALID_VALUE);
	ERR(cuLaunchKernel(fill, 1, 1, 1, 32, 32, 2, 0, NULL, args, NULL), CUDA_ERROR_INVALID_VALUE);
	ERR(cuLaunchKernel(fill, 0, 1, 1, 32, 1, 1, 0, NULL, args, NULL), CUDA_ERROR_INVALID_VALUE);
	ERR(cuLaunchKernel(fill, 1, 1, 1, 32, 1, 1, 100000, NULL, args, NULL),
	    CUDA_ERROR_INVALID_VALUE);
	ERR(cuLaunchKernel(fill, 1, 1, 1, 32, 1, 1, 0, NULL, NULL, NULL), CUDA_ERROR_INVALID_VALUE);
	ERR(cuLaunchKernel(NULL, 1, 1, 1, 1, 1, 1, 0, NULL, args, NULL), CUDA_ERROR_INVALID_HANDLE);
	ERR(cuLaunchKernel((CUfunction)&n, 1, 1, 1, 1, 1, 1, 0, NULL, args, NULL),
	    CUDA_ERROR_INVALID_HANDLE);

	/* Matrix multiply against the same computation here. */
	for (i = 0; i < M * M; i++) {
		A[i] = (float)(i % 7) - 3.0f;
		B[i] = (float)(i % 5) * 0.5f;
	}
	OK(cuMemcpyHtoD_v2(da, A, sizeof(A)));
	OK(cuMemcpyHtoD_v2(db, B, sizeof(B)));
	args[3] = &mn;
	OK(cuLaunchKernel(mm, 1, 1, 1, 64, 1, 1, 0, NULL, args, NULL));
	OK(cuMemcpyDtoH_v2(C, dc, sizeof(C)));
	for (i = 0; i < M; i++) {
		for (j = 0; j < M; j++) {
			float acc = 0.0f;

			for (k = 0; k < M; k++)
				acc += A[i * M + k] * B[k * M + j];
			assert_true(C[i * M + j] == acc);
		}
	}

	launch_fill(fill, da, 0xfeedu, 16, NULL);
	OK(cuMemcpyDtoH_v2(a, da, 64));
	assert_int_equal(((unsigned *)a)[15], 0xfeedu);
	OK(cuMemFree_v2(da));
	OK(cuMemFree_v2(db));
	OK(cuMemFree_v2(dc));
	OK(cuModuleUnload(m));
}

/* cuLaunchKernelEx with attributes, and cooperative launches. */
static void test_launch_ex(void **state)
{
	CUmodule m = load_module();
	CUfunction fill = get_fn(m, "vg_fill");
	CUlaunchAttribute attrs[2];
	CUlaunchConfig cfg;
	CUdeviceptr d;
	unsigned v = 0, val = 21;
	int n = 256;
	void *args[] = { &d, &val, &n };

	OK(cuMemAlloc_v2(&d, 1024));
	memset(&cfg, 0, sizeof(cfg));
	memset(attrs, 0, sizeof(attrs));
	cfg.gridDimX = 4;
	cfg.gridDimY = cfg.gridDimZ = 1;
	cfg.blockDimX = 64;
	cfg.blockDimY = cfg.blockDimZ = 1;
	attrs[0].id = CU_LAUNCH_ATTRIBUTE_PRIORITY;
	attrs[0].value.priority = -1;
	attrs[1].id = CU_LAUNCH_ATTRIBUTE_CLUSTER_DIMENSION;
	attrs[1].value.clusterDim.x = 2;
	attrs[1].value.clusterDim.y = 1;
	attrs[1].value.clusterDim.z = 1;
	cfg.attrs = attrs;
	cfg.numAttrs = 2;
	OK(cuLaunchKernelEx(&cfg, fill, args, NULL));
	OK(cuMemcpyDtoH_v2(&v, d + 1020, 4));
	assert_int_equal(v, 21);
	/* A grid that is not whole clusters. */
	attrs[1].value.clusterDim.x = 3;
	ERR(cuLaunchKernelEx(&cfg, fill, args, NULL), CUDA_ERROR_INVALID_CLUSTER_SIZE);
	attrs[1].id = (CUlaunchAttributeID)99;
	ERR(cuLaunchKernelEx(&cfg, fill, args, NULL), CUDA_ERROR_INVALID_VALUE);
	cfg.numAttrs = 0;
	ERR(cuLaunchKernelEx(NULL, fill, args, NULL), CUDA_ERROR_INVALID_VALUE);
	ERR(cuLaunchKernelEx(&cfg, NULL, args, NULL), CUDA_ERROR_INVALID_HANDLE);

	val = 22;
	OK(cuLaunchCooperativeKernel(fill, 4, 1, 1, 64, 1, 1, 0, NULL, args));
	OK(cuMemcpyDtoH_v2(&v, d, 4));
	assert_int_equal(v, 22);
	/* More blocks than can be resident at once (4 SMs). */
	ERR(cuLaunchCooperativeKernel(fill, 4096, 1, 1, 1024, 1, 1, 0, NULL, args),
	    CUDA_ERROR_COOPERATIVE_LAUNCH_TOO_LARGE);
	OK(cuMemFree_v2(d));
	OK(cuModuleUnload(m));
}

struct stress_arg {
	CUcontext ctx;
	CUfunction fill;
	CUdeviceptr d;
	unsigned value;
	int bad;
};

/* Many small launches, copies and syncs on a stream of this thread. */
static void *stress_thread(void *p)
{
	struct stress_arg *a = p;
	CUstream s;
	unsigned v;
	int i, n = 64;
	void *args[] = { &a->d, &v, &n };

	if (cuCtxSetCurrent(a->ctx) || cuStreamCreate(&s, 0))
		return (void *)1;
	for (i = 0; i < 200; i++) {
		unsigned back = 0;

		v = a->value + (unsigned)i;
		if (cuLaunchKernel(a->fill, 1, 1, 1, 64, 1, 1, 0, s, args, NULL) ||
		    cuMemcpyDtoHAsync_v2(&back, a->d + 252, 4, s) || cuStreamSynchronize(s) ||
		    back != v)
			a->bad++;
	}
	cuStreamDestroy_v2(s);
	return NULL;
}

static void test_threads(void **state)
{
	CUmodule m = load_module();
	struct stress_arg a[4];
	pthread_t th[4];
	int i;

	for (i = 0; i < 4; i++) {
		a[i].ctx = *state;
		a[i].fill = get_fn(m, "vg_fill");
		a[i].value = 1000u * (unsigned)(i + 1);
		a[i].bad = 0;
		OK(cuMemAlloc_v2(&a[i].d, 256));
		assert_int_equal(pthread_create(&th[i], NULL, stress_thread, &a[i]), 0);
	}
	for (i = 0; i < 4; i++) {
		void *ret = NULL;

		pthread_join(th[i], &ret);
		assert_null(ret);
		assert_int_equal(a[i].bad, 0);
		OK(cuMemFree_v2(a[i].d));
	}
	OK(cuCtxSynchronize());
	OK(cuModuleUnload(m));
}

/* Libraries: context-free kernels, usable wherever a function is. */
static void test_libraries(void **state)
{
	CUlibrary lib = NULL, back = NULL;
	CUkernel k = NULL, ks[8];
	CUfunction f = NULL, fs[8];
	CUmodule lm = NULL, fm = NULL;
	CUmoduleLoadingMode mode;
	CUdeviceptr d, g;
	const char *name = NULL;
	size_t off, size, gsize = 0;
	unsigned count = 0, v = 0, val = 77;
	int n = 4, a = 0;
	void *args[] = { &d, &val, &n };

	OK(cuModuleGetLoadingMode(&mode));
	assert_int_equal(mode, CU_MODULE_EAGER_LOADING);
	OK(cuLibraryLoadData(&lib, test_ptx, NULL, NULL, 0, NULL, NULL, 0));
	ERR(cuLibraryLoadData(&back, "no kernels", NULL, NULL, 0, NULL, NULL, 0),
	    CUDA_ERROR_INVALID_IMAGE);
	OK(cuLibraryGetKernelCount(&count, lib));
	assert_int_equal(count, 6);
	OK(cuLibraryEnumerateKernels(ks, 6, lib));
	OK(cuLibraryGetKernel(&k, lib, "vg_fill"));
	ERR(cuLibraryGetKernel(&k, lib, "vg_nothing"), CUDA_ERROR_NOT_FOUND);
	OK(cuLibraryGetKernel(&k, lib, "vg_fill"));
	OK(cuKernelGetName(&name, k));
	assert_string_equal(name, "vg_fill");
	OK(cuKernelGetParamInfo(k, 1, &off, &size));
	assert_int_equal(off, 8);
	assert_int_equal(size, 4);
	ERR(cuKernelGetParamInfo(k, 3, &off, &size), CUDA_ERROR_INVALID_VALUE);
	OK(cuKernelGetLibrary(&back, k));
	assert_ptr_equal(back, lib);
	OK(cuKernelSetAttribute(CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES, 1024, k, 1));
	OK(cuKernelGetAttribute(&a, CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES, k, 0));
	assert_int_equal(a, 1024);
	ERR(cuKernelGetAttribute(&a, CU_FUNC_ATTRIBUTE_NUM_REGS, k, 5), CUDA_ERROR_INVALID_DEVICE);
	OK(cuKernelGetFunction(&f, k));
	assert_true((void *)f != (void *)k);
	OK(cuFuncGetModule(&fm, f));
	OK(cuLibraryGetModule(&lm, lib));
	assert_ptr_equal(fm, lm);
	OK(cuModuleGetFunctionCount(&count, lm));
	assert_int_equal(count, 6);
	OK(cuModuleEnumerateFunctions(fs, 6, lm));
	/* A library's module is not unloaded on its own. */
	ERR(cuModuleUnload(lm), CUDA_ERROR_INVALID_HANDLE);

	/* The CUkernel launches as a function, as cudart does it. */
	OK(cuMemAlloc_v2(&d, 64));
	OK(cuMemsetD32_v2(d, 0, 16));
	OK(cuLaunchKernel((CUfunction)k, 1, 1, 1, 32, 1, 1, 0, NULL, args, NULL));
	OK(cuMemcpyDtoH_v2(&v, d + 12, 4));
	assert_int_equal(v, 77);
	val = 78;
	OK(cuLaunchKernel(f, 1, 1, 1, 32, 1, 1, 0, NULL, args, NULL));
	OK(cuMemcpyDtoH_v2(&v, d, 4));
	assert_int_equal(v, 78);

	/* Its global is memory of no context. */
	OK(cuLibraryGetGlobal(&g, &gsize, lib, "vg_counter"));
	assert_int_equal(gsize, 4);
	OK(cuMemsetD32_v2(g, 5, 1));
	OK(cuMemcpyDtoH_v2(&v, g, 4));
	assert_int_equal(v, 5);

	OK(cuLibraryUnload(lib));
	ERR(cuLibraryUnload(lib), CUDA_ERROR_INVALID_HANDLE);
	ERR(cuKernelGetName(&name, k), CUDA_ERROR_INVALID_HANDLE);
	ERR(cuLaunchKernel(f, 1, 1, 1, 32, 1, 1, 0, NULL, args, NULL), CUDA_ERROR_INVALID_HANDLE);
	ERR(cuMemcpyDtoH_v2(&v, g, 4), CUDA_ERROR_INVALID_VALUE);
	OK(cuMemFree_v2(d));
}

/* ---- streams, events, callbacks ---------------------------------------- */

static void test_stream_async(void **state)
{
	CUcontext c = *state, sc = NULL;
	CUmodule m = load_module();
	CUfunction sleep_fn = get_fn(m, "vg_sleep"), fill = get_fn(m, "vg_fill");
	CUstream s1, s2, sp, s3;
	CUdeviceptr d;
	unsigned *h, flags = 9;
	int prio = 9;
	double t0;

	OK(cuStreamCreate(&s1, CU_STREAM_NON_BLOCKING));
	OK(cuStreamCreate(&s2, CU_STREAM_NON_BLOCKING));
	OK(cuStreamCreateWithPriority(&sp, 0, -3));
	OK(cuStreamGetFlags(s1, &flags));
	assert_int_equal(flags, CU_STREAM_NON_BLOCKING);
	OK(cuStreamGetPriority(sp, &prio));
	assert_int_equal(prio, -3);
	OK(cuStreamCreateWithPriority(&s3, CU_STREAM_NON_BLOCKING, -100));
	OK(cuStreamGetPriority(s3, &prio));
	assert_int_equal(prio, -5);
	OK(cuStreamDestroy_v2(s3));
	OK(cuStreamGetCtx(s1, &sc));
	assert_ptr_equal(sc, c);
	ERR(cuStreamCreate(&s1, 0x10), CUDA_ERROR_INVALID_VALUE);

	OK(cuMemAlloc_v2(&d, 4096));
	OK(cuMemAllocHost_v2((void **)&h, 4096));
	h[0] = 0;
	OK(cuMemsetD32_v2(d, 1, 1024));
	OK(cuStreamQuery(s1));

	/* Sleep, then fill and copy back, all on s1: the call returns at once. */
	t0 = now_ms();
	launch_sleep(sleep_fn, 300000, s1);
	launch_fill(fill, d, 7, 1024, s1);
	OK(cuMemcpyDtoHAsync_v2(h, d, 4096, s1));
	assert_true(now_ms() - t0 < 150);
	ERR(cuStreamQuery(s1), CUDA_ERROR_NOT_READY);
	assert_int_equal(h[0], 0);
	/* Another stream is not held up by s1. */
	OK(cuMemsetD32Async(d + 4000, 3, 1, s2));
	OK(cuStreamSynchronize(s2));
	OK(cuStreamQuery(s2));
	assert_true(now_ms() - t0 < 200);
	ERR(cuStreamQuery(s1), CUDA_ERROR_NOT_READY);
	OK(cuStreamSynchronize(s1));
	assert_true(now_ms() - t0 >= 290);
	assert_int_equal(h[0], 7);
	assert_int_equal(h[999], 7);
	OK(cuStreamQuery(s1));

	OK(cuStreamSynchronize(CU_STREAM_LEGACY));
	OK(cuStreamSynchronize(CU_STREAM_PER_THREAD));
	OK(cuStreamQuery(NULL));

	OK(cuStreamDestroy_v2(s1));
	ERR(cuStreamSynchronize(s1), CUDA_ERROR_INVALID_HANDLE);
	ERR(cuStreamDestroy_v2(s1), CUDA_ERROR_INVALID_HANDLE);
	ERR(cuStreamQuery((CUstream)&prio), CUDA_ERROR_INVALID_HANDLE);
	OK(cuStreamDestroy_v2(s2));
	OK(cuStreamDestroy_v2(sp));
	OK(cuMemFreeHost(h));
	OK(cuMemFree_v2(d));
	OK(cuModuleUnload(m));
}

/* The legacy stream waits for blocking streams, not for non-blocking ones. */
static void test_legacy_stream(void **state)
{
	CUmodule m = load_module();
	CUfunction sleep_fn = get_fn(m, "vg_sleep"), fill = get_fn(m, "vg_fill");
	CUstream blocking, nonblocking;
	CUdeviceptr d;
	unsigned v = 0;
	double t0;

	OK(cuStreamCreate(&blocking, 0));
	OK(cuStreamCreate(&nonblocking, CU_STREAM_NON_BLOCKING));
	OK(cuMemAlloc_v2(&d, 4096));
	OK(cuMemsetD32_v2(d, 1, 1024));

	launch_sleep(sleep_fn, 200000, blocking);
	launch_fill(fill, d, 5, 1, blocking);
	/* A synchronous copy is on the legacy stream: it sees the fill. */
	OK(cuMemcpyDtoH_v2(&v, d, 4));
	assert_int_equal(v, 5);
	OK(cuStreamQuery(blocking));

	/* Work queued on the legacy stream holds up a later blocking-stream op. */
	launch_sleep(sleep_fn, 200000, NULL);
	launch_fill(fill, d, 6, 1, blocking);
	ERR(cuStreamQuery(blocking), CUDA_ERROR_NOT_READY);
	OK(cuStreamSynchronize(blocking));
	OK(cuMemcpyDtoH_v2(&v, d, 4));
	assert_int_equal(v, 6);

	/* A non-blocking stream's sleep does not hold the legacy stream. */
	t0 = now_ms();
	launch_sleep(sleep_fn, 400000, nonblocking);
	OK(cuMemsetD32_v2(d, 9, 1));
	OK(cuMemcpyDtoH_v2(&v, d, 4));
	assert_int_equal(v, 9);
	assert_true(now_ms() - t0 < 300);
	ERR(cuStreamQuery(nonblocking), CUDA_ERROR_NOT_READY);
	OK(cuCtxSynchronize());
	OK(cuStreamQuery(nonblocking));
	assert_true(now_ms() - t0 >= 390);

	OK(cuStreamDestroy_v2(blocking));
	OK(cuStreamDestroy_v2(nonblocking));
	OK(cuMemFree_v2(d));
	OK(cuModuleUnload(m));
}

static void test_events(void **state)
{
	CUmodule m = load_module();
	CUfunction sleep_fn = get_fn(m, "vg_sleep"), fill = get_fn(m, "vg_fill");
	CUevent a, b, nt, never;
	CUstream s1, s2;
	CUdeviceptr d;
	unsigned v = 0;
	float ms = -1.0f;

	OK(cuStreamCreate(&s1, CU_STREAM_NON_BLOCKING));
	OK(cuStreamCreate(&s2, CU_STREAM_NON_BLOCKING));
	OK(cuEventCreate(&a, CU_EVENT_DEFAULT));
	OK(cuEventCreate(&b, CU_EVENT_BLOCKING_SYNC));
	OK(cuEventCreate(&nt, CU_EVENT_DISABLE_TIMING));
	OK(cuEventCreate(&never, 0));
	ERR(cuEventCreate(&never, 0x40), CUDA_ERROR_INVALID_VALUE);
	ERR(cuEventCreate(&never, CU_EVENT_INTERPROCESS), CUDA_ERROR_INVALID_VALUE);
	OK(cuMemAlloc_v2(&d, 4096));
	OK(cuMemsetD32_v2(d, 0, 1));

	OK(cuEventQuery(never));
	OK(cuEventSynchronize(never));
	OK(cuEventRecord(a, s1));
	launch_sleep(sleep_fn, 200000, s1);
	OK(cuEventRecord(b, s1));
	OK(cuEventRecordWithFlags(nt, s1, CU_EVENT_RECORD_DEFAULT));
	ERR(cuEventQuery(b), CUDA_ERROR_NOT_READY);
	ERR(cuEventElapsedTime(&ms, a, b), CUDA_ERROR_NOT_READY);

	/* s2 waits for b: its fill comes after s1's sleep. */
	OK(cuStreamWaitEvent(s2, b, 0));
	launch_fill(fill, d, 11, 1, s2);
	ERR(cuStreamQuery(s2), CUDA_ERROR_NOT_READY);
	OK(cuStreamSynchronize(s2));
	OK(cuEventQuery(b));
	OK(cuMemcpyDtoH_v2(&v, d, 4));
	assert_int_equal(v, 11);

	OK(cuEventSynchronize(b));
	OK(cuEventSynchronize(nt));
	OK(cuEventElapsedTime(&ms, a, b));
	assert_true(ms >= 190.0f && ms < 5000.0f);
	OK(cuEventElapsedTime_v2(&ms, a, b));
	ERR(cuEventElapsedTime(&ms, a, nt), CUDA_ERROR_INVALID_HANDLE);
	ERR(cuEventElapsedTime(&ms, a, never), CUDA_ERROR_INVALID_HANDLE);
	ERR(cuEventElapsedTime(NULL, a, b), CUDA_ERROR_INVALID_VALUE);

	ERR(cuEventQuery(NULL), CUDA_ERROR_INVALID_HANDLE);
	ERR(cuEventRecord(NULL, NULL), CUDA_ERROR_INVALID_HANDLE);
	ERR(cuEventSynchronize(NULL), CUDA_ERROR_INVALID_HANDLE);
	ERR(cuEventQuery((CUevent)&v), CUDA_ERROR_INVALID_HANDLE);
	ERR(cuStreamWaitEvent(s2, (CUevent)&v, 0), CUDA_ERROR_INVALID_HANDLE);

	OK(cuEventRecord(a, NULL));
	OK(cuEventSynchronize(a));
	OK(cuEventDestroy_v2(a));
	ERR(cuEventQuery(a), CUDA_ERROR_INVALID_HANDLE);
	ERR(cuEventDestroy_v2(a), CUDA_ERROR_INVALID_HANDLE);
	OK(cuEventDestroy_v2(b));
	OK(cuEventDestroy_v2(nt));
	OK(cuEventDestroy_v2(never));
	OK(cuStreamDestroy_v2(s1));
	OK(cuStreamDestroy_v2(s2));
	OK(cuMemFree_v2(d));
	OK(cuModuleUnload(m));
}

struct cb_log {
	pthread_mutex_t lock;
	char order[16];
	int n;
	CUstream stream_seen;
	CUresult status_seen;
};

static void cb_note(struct cb_log *l, char what)
{
	pthread_mutex_lock(&l->lock);
	if (l->n < (int)sizeof(l->order) - 1)
		l->order[l->n++] = what;
	pthread_mutex_unlock(&l->lock);
}

static struct cb_log cb_log = { .lock = PTHREAD_MUTEX_INITIALIZER };

static void host_a(void *p)
{
	cb_note(p, 'A');
}

static void host_c(void *p)
{
	cb_note(p, 'C');
}

static void stream_cb(CUstream s, CUresult status, void *p)
{
	struct cb_log *l = p;

	l->stream_seen = s;
	l->status_seen = status;
	cb_note(l, 'B');
}

static void test_callbacks(void **state)
{
	CUmodule m = load_module();
	CUfunction sleep_fn = get_fn(m, "vg_sleep");
	CUstream s;

	OK(cuStreamCreate(&s, 0));
	cb_log.n = 0;
	cb_log.status_seen = CUDA_ERROR_UNKNOWN;
	launch_sleep(sleep_fn, 100000, s);
	OK(cuLaunchHostFunc(s, host_a, &cb_log));
	launch_sleep(sleep_fn, 50000, s);
	OK(cuStreamAddCallback(s, stream_cb, &cb_log, 0));
	OK(cuLaunchHostFunc(s, host_c, &cb_log));
	/* Nothing has run yet: the first sleep is still going. */
	assert_int_equal(cb_log.n, 0);
	OK(cuStreamSynchronize(s));
	cb_log.order[cb_log.n] = '\0';
	assert_string_equal(cb_log.order, "ABC");
	assert_ptr_equal(cb_log.stream_seen, s);
	assert_int_equal(cb_log.status_seen, CUDA_SUCCESS);
	ERR(cuLaunchHostFunc(s, NULL, NULL), CUDA_ERROR_INVALID_VALUE);
	ERR(cuStreamAddCallback(s, stream_cb, NULL, 1), CUDA_ERROR_INVALID_VALUE);
	/* On the legacy stream too. */
	cb_log.n = 0;
	OK(cuLaunchHostFunc(NULL, host_a, &cb_log));
	OK(cuCtxSynchronize());
	assert_int_equal(cb_log.n, 1);
	OK(cuStreamDestroy_v2(s));
	OK(cuModuleUnload(m));
}

/* A kernel writing outside every allocation: error 700, sticky. */
static void test_sticky(void **state)
{
	CUcontext c = *state, other = NULL;
	CUmodule m = load_module();
	CUfunction fault = get_fn(m, "vg_fault");
	int *bad = (int *)(uintptr_t)0x40;
	void *args[] = { &bad };
	CUdeviceptr d, d2, ok;
	CUstream s;
	unsigned v;

	OK(cuMemAlloc_v2(&d, 4096));
	OK(cuStreamCreate(&s, CU_STREAM_NON_BLOCKING));
	/* A good pointer first: no fault. */
	args[0] = &d;
	OK(cuLaunchKernel(fault, 1, 1, 1, 1, 1, 1, 0, s, args, NULL));
	OK(cuStreamSynchronize(s));
	OK(cuMemcpyDtoH_v2(&v, d, 4));
	assert_int_equal(v, 0x5a5a);
	args[0] = &bad;
	OK(cuLaunchKernel(fault, 1, 1, 1, 1, 1, 1, 0, s, args, NULL));
	ERR(cuStreamSynchronize(s), CUDA_ERROR_ILLEGAL_ADDRESS);
	ERR(cuCtxSynchronize(), CUDA_ERROR_ILLEGAL_ADDRESS);
	ERR(cuCtxSynchronize(), CUDA_ERROR_ILLEGAL_ADDRESS);
	ERR(cuMemAlloc_v2(&d2, 4096), CUDA_ERROR_ILLEGAL_ADDRESS);
	ERR(cuMemcpyDtoH_v2(&v, d, 4), CUDA_ERROR_ILLEGAL_ADDRESS);
	ERR(cuLaunchKernel(fault, 1, 1, 1, 1, 1, 1, 0, s, args, NULL), CUDA_ERROR_ILLEGAL_ADDRESS);
	ERR(cuStreamQuery(s), CUDA_ERROR_ILLEGAL_ADDRESS);

	/* Another context is not affected. */
	OK(cuCtxCreate_v2(&other, 0, 0));
	OK(cuMemAlloc_v2(&ok, 64));
	launch_fill(get_fn(load_module(), "vg_fill"), ok, 1, 16, NULL);
	OK(cuCtxSynchronize());
	OK(cuCtxDestroy_v2(other));
	/* Destroying the faulted context still works (teardown checks). */
	OK(cuCtxSetCurrent(c));
}

static void test_occupancy(void **state)
{
	CUmodule m = load_module();
	CUfunction f = get_fn(m, "vg_matmul");
	int blocks = -1, grid = -1, bs = -1;
	size_t avail = 0;

	OK(cuOccupancyMaxActiveBlocksPerMultiprocessor(&blocks, f, 256, 0));
	assert_true(blocks > 0 && blocks <= 32);
	OK(cuOccupancyMaxActiveBlocksPerMultiprocessorWithFlags(&blocks, f, 1024, 0,
								 CU_OCCUPANCY_DEFAULT));
	assert_true(blocks >= 1 && blocks <= 2);
	OK(cuOccupancyMaxActiveBlocksPerMultiprocessor(&blocks, f, 256, 1 << 20));
	assert_int_equal(blocks, 0);
	ERR(cuOccupancyMaxActiveBlocksPerMultiprocessor(NULL, f, 256, 0), CUDA_ERROR_INVALID_VALUE);
	OK(cuOccupancyMaxPotentialBlockSize(&grid, &bs, f, NULL, 0, 0));
	assert_true(grid > 0 && bs > 0 && bs <= 1024 && bs % 32 == 0);
	OK(cuOccupancyMaxPotentialBlockSize(&grid, &bs, f, NULL, 0, 100));
	assert_true(bs > 0 && bs <= 100);
	OK(cuOccupancyAvailableDynamicSMemPerBlock(&avail, f, 2, 256));
	assert_true(avail > 0 && avail <= 232448);
	ERR(cuOccupancyMaxPotentialBlockSize(&grid, &bs, (CUfunction)&grid, NULL, 0, 0),
	    CUDA_ERROR_INVALID_HANDLE);
	OK(cuModuleUnload(m));
}

static int occ_calls;

static size_t occ_smem(int block_size)
{
	occ_calls++;
	return (size_t)block_size * 64;
}

static void test_occupancy_callback(void **state)
{
	CUmodule m = load_module();
	CUfunction f = get_fn(m, "vg_vadd");
	int grid = -1, bs = -1;

	occ_calls = 0;
	OK(cuOccupancyMaxPotentialBlockSizeWithFlags(&grid, &bs, f, occ_smem, 0, 256, 0));
	assert_true(occ_calls > 0);
	assert_true(bs > 0 && bs <= 256);
	OK(cuModuleUnload(m));
}

/* Everything a context owns goes with it. */
static void test_ctx_destroy_frees(void **state)
{
	CUcontext c = NULL;
	CUdeviceptr d;
	CUstream s;
	CUevent e;
	CUmodule m;
	void *h;
	int allocs = vgtd_live_allocations(), objects = vgtd_live_objects();

	OK(cuCtxCreate_v2(&c, 0, 1));
	OK(cuMemAlloc_v2(&d, 1 << 20));
	OK(cuMemAllocHost_v2(&h, 4096));
	OK(cuStreamCreate(&s, 0));
	OK(cuEventCreate(&e, 0));
	m = load_module();	/* with vg_counter: one more allocation */
	OK(cuMemsetD8Async(d, 1, 1 << 20, s));
	OK(cuEventRecord(e, s));
	assert_int_equal(vgtd_live_allocations(), allocs + 3);
	assert_int_equal(vgtd_live_objects(), objects + 4);
	OK(cuCtxDestroy_v2(c));
	assert_int_equal(vgtd_live_allocations(), allocs);
	assert_int_equal(vgtd_live_objects(), objects);
	/* And its handles are dead. */
	OK(cuCtxSetCurrent(*state));
	ERR(cuStreamQuery(s), CUDA_ERROR_INVALID_HANDLE);
	ERR(cuEventQuery(e), CUDA_ERROR_INVALID_HANDLE);
	ERR(cuModuleUnload(m), CUDA_ERROR_INVALID_HANDLE);
	ERR(cuMemFree_v2(d), CUDA_ERROR_INVALID_VALUE);
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
		cmocka_unit_test_setup_teardown(test_modules, ctx_setup, ctx_teardown),
		cmocka_unit_test_setup_teardown(test_launch, ctx_setup, ctx_teardown),
		cmocka_unit_test_setup_teardown(test_launch_ex, ctx_setup, ctx_teardown),
		cmocka_unit_test_setup_teardown(test_threads, ctx_setup, ctx_teardown),
		cmocka_unit_test_setup_teardown(test_libraries, ctx_setup, ctx_teardown),
		cmocka_unit_test_setup_teardown(test_stream_async, ctx_setup, ctx_teardown),
		cmocka_unit_test_setup_teardown(test_legacy_stream, ctx_setup, ctx_teardown),
		cmocka_unit_test_setup_teardown(test_events, ctx_setup, ctx_teardown),
		cmocka_unit_test_setup_teardown(test_callbacks, ctx_setup, ctx_teardown),
		cmocka_unit_test_setup_teardown(test_sticky, ctx_setup, ctx_teardown),
		cmocka_unit_test_setup_teardown(test_occupancy, ctx_setup, ctx_teardown),
		cmocka_unit_test_setup_teardown(test_occupancy_callback, ctx_setup, ctx_teardown),
		cmocka_unit_test_setup_teardown(test_ctx_destroy_frees, ctx_setup, ctx_teardown),
		cmocka_unit_test_setup_teardown(test_fork, ctx_setup, ctx_teardown),
		cmocka_unit_test(test_report),
	};

	if (argc == 2 && !strcmp(argv[1], "--report-child"))
		return report_child();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
