/*
 * it-guest: a CUDA driver-API program for the integration tests.  It links
 * vgpu's libcuda.so.1 and declares the few functions it calls itself (the
 * product's headers declare none), with the clean-room types.
 *
 *   it-guest noserver     cuInit must fail with CUDA_ERROR_NO_DEVICE within 1 s
 *   it-guest work N       N rounds of alloc / copy / memset / copy back / check / free
 *   it-guest leak         allocations, a stream and a module left behind at exit
 *   it-guest wait USEC    launch vg_sleep(USEC), print "WAITING <worker pid>"... then
 *                         synchronise: prints "RESULT <code> <ms>" when it returns
 *   it-guest bulk MIB     a MIB MiB copy there and back (several chunks), checked;
 *                         the same copies with a too small allocation fail, and the
 *                         session goes on
 *   it-guest load N       N rounds of allocations, copies both ways (synchronous and on a
 *                         stream), memsets and launches of vg_vadd, vg_scale and vg_fill,
 *                         every result checked
 *   it-guest limits MEM STREAMS
 *                         hits the daemon's max_device_memory (MEM bytes, a multiple of
 *                         1 MiB, at least 4 MiB) and max_streams: each gets
 *                         CUDA_ERROR_OUT_OF_MEMORY; frees and allocates again; what a
 *                         destroyed context held is credited
 *   it-guest hold BYTES FILE
 *                         allocates BYTES, prints HOLDING, frees them once FILE exists
 *   it-guest bigmsg BYTES CODE
 *                         cuModuleLoadData of a BYTES-long image: must return CODE
 *   it-guest threads N OK N threads hold a channel at once: OK of them may call, the
 *                         others get CUDA_ERROR_DEVICE_UNAVAILABLE; then a new one may
 *
 * Exit status 0 when every check of the mode held, 1 otherwise.
 */
#include <dirent.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "vgpu/cuda_types.h"

CUresult cuInit(unsigned int flags);
CUresult cuDeviceGet(CUdevice *dev, int ordinal);
CUresult cuCtxCreate_v2(CUcontext *ctx, unsigned int flags, CUdevice dev);
CUresult cuCtxDestroy_v2(CUcontext ctx);
CUresult cuCtxSynchronize(void);
CUresult cuMemAlloc_v2(CUdeviceptr *p, size_t n);
CUresult cuMemFree_v2(CUdeviceptr p);
CUresult cuMemcpyHtoD_v2(CUdeviceptr dst, const void *src, size_t n);
CUresult cuMemcpyDtoH_v2(void *dst, CUdeviceptr src, size_t n);
CUresult cuMemsetD32_v2(CUdeviceptr p, unsigned int v, size_t n);
CUresult cuStreamCreate(CUstream *s, unsigned int flags);
CUresult cuModuleLoadData(CUmodule *m, const void *image);
CUresult cuModuleGetFunction(CUfunction *f, CUmodule m, const char *name);
CUresult cuLaunchKernel(CUfunction f, unsigned int gx, unsigned int gy, unsigned int gz,
			unsigned int bx, unsigned int by, unsigned int bz, unsigned int shmem,
			CUstream s, void **params, void **extra);
CUresult cuCtxSetCurrent(CUcontext ctx);
CUresult cuStreamDestroy_v2(CUstream s);
CUresult cuStreamSynchronize(CUstream s);
CUresult cuModuleUnload(CUmodule m);
CUresult cuMemAllocPitch_v2(CUdeviceptr *p, size_t *pitch, size_t w, size_t h, unsigned int elem);
CUresult cuMemcpyHtoDAsync_v2(CUdeviceptr dst, const void *src, size_t n, CUstream s);
CUresult cuMemcpyDtoHAsync_v2(void *dst, CUdeviceptr src, size_t n, CUstream s);
CUresult cuMemcpyDtoD_v2(CUdeviceptr dst, CUdeviceptr src, size_t n);
CUresult cuDevicePrimaryCtxRetain(CUcontext *ctx, CUdevice dev);
CUresult cuDevicePrimaryCtxRelease_v2(CUdevice dev);
CUresult cuDevicePrimaryCtxReset_v2(CUdevice dev);
CUresult cuDevicePrimaryCtxSetFlags_v2(CUdevice dev, unsigned int flags);
CUresult cuDevicePrimaryCtxGetState(CUdevice dev, unsigned int *flags, int *active);

/*
 * A module image the CPU test driver understands: it looks for the test
 * kernels' ".entry NAME(" lines.  Written by hand; never run on a GPU.
 */
static const char it_ptx[] =
	".version 8.0\n"
	".target sm_90\n"
	".address_size 64\n"
	".visible .entry vg_sleep(\n"
	"\t.param .u32 vg_sleep_param_0\n"
	")\n"
	"{\n"
	"\tret;\n"
	"}\n"
	".visible .entry vg_vadd(\n"
	"\t.param .u64 a, .param .u64 b, .param .u64 c, .param .u32 n\n"
	")\n"
	"{\n"
	"\tret;\n"
	"}\n"
	".visible .entry vg_fill(\n"
	"\t.param .u64 p, .param .u32 v, .param .u32 n\n"
	")\n"
	"{\n"
	"\tret;\n"
	"}\n"
	".visible .entry vg_scale(\n"
	"\t.param .u64 p, .param .f32 s, .param .u32 n\n"
	")\n"
	"{\n"
	"\tret;\n"
	"}\n";

static int failed;

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static int check(const char *what, CUresult r, CUresult want)
{
	if (r == want)
		return 1;
	printf("FAIL %s: %d, expected %d\n", what, (int)r, (int)want);
	failed = 1;
	return 0;
}

#define MUST(call) do { if (!check(#call, (call), CUDA_SUCCESS)) return 1; } while (0)

static int mode_noserver(void)
{
	double t0 = now_ms(), ms;
	CUresult r = cuInit(0);

	ms = now_ms() - t0;
	printf("RESULT %d %.1f\n", (int)r, ms);
	check("cuInit without a server", r, CUDA_ERROR_NO_DEVICE);
	if (ms > 1000) {
		printf("FAIL cuInit took %.0f ms to fail\n", ms);
		failed = 1;
	}
	/* Still NO_DEVICE, still at once, when asked again. */
	check("cuInit again", cuInit(0), CUDA_ERROR_NO_DEVICE);
	return failed;
}

static int ctx_open(CUcontext *ctx)
{
	CUdevice dev;

	MUST(cuInit(0));
	MUST(cuDeviceGet(&dev, 0));
	MUST(cuCtxCreate_v2(ctx, 0, dev));
	return 0;
}

static int one_round(int round)
{
	enum { N = 4096 };
	static uint32_t in[N], out[N];
	CUdeviceptr a, b;
	int i;

	for (i = 0; i < N; i++)
		in[i] = (uint32_t)(round * 7919 + i);
	MUST(cuMemAlloc_v2(&a, sizeof(in)));
	MUST(cuMemAlloc_v2(&b, sizeof(in)));
	MUST(cuMemcpyHtoD_v2(a, in, sizeof(in)));
	MUST(cuMemsetD32_v2(b, 0xabcd0000u + (unsigned)round, N));
	MUST(cuMemcpyDtoH_v2(out, a, sizeof(out)));
	if (memcmp(in, out, sizeof(in)) != 0) {
		printf("FAIL round %d: copied data differ\n", round);
		return 1;
	}
	MUST(cuMemcpyDtoH_v2(out, b, sizeof(out)));
	for (i = 0; i < N; i++) {
		if (out[i] != 0xabcd0000u + (unsigned)round) {
			printf("FAIL round %d: memset word %d is %#x\n", round, i, out[i]);
			return 1;
		}
	}
	MUST(cuMemFree_v2(a));
	MUST(cuMemFree_v2(b));
	return 0;
}

static int mode_work(int rounds)
{
	CUcontext ctx;
	int i;

	if (ctx_open(&ctx))
		return 1;
	for (i = 0; i < rounds; i++)
		if (one_round(i))
			return 1;
	MUST(cuCtxDestroy_v2(ctx));
	printf("RESULT ok %d rounds\n", rounds);
	return 0;
}

static int mode_leak(void)
{
	CUdeviceptr p;
	CUcontext ctx;
	CUmodule mod;
	CUstream s;
	int i;

	if (ctx_open(&ctx))
		return 1;
	for (i = 0; i < 3; i++)
		MUST(cuMemAlloc_v2(&p, 1u << 20));
	MUST(cuStreamCreate(&s, 0));
	MUST(cuModuleLoadData(&mod, it_ptx));
	printf("RESULT left 3 allocations, a stream, a module and a context\n");
	return 0;
}

static int mode_wait(unsigned int usec)
{
	CUfunction f;
	CUcontext ctx;
	CUmodule mod;
	CUresult r;
	void *params[] = { &usec };
	double t0;

	if (ctx_open(&ctx))
		return 1;
	MUST(cuModuleLoadData(&mod, it_ptx));
	MUST(cuModuleGetFunction(&f, mod, "vg_sleep"));
	MUST(cuLaunchKernel(f, 1, 1, 1, 1, 1, 1, 0, NULL, params, NULL));
	printf("WAITING\n");
	fflush(stdout);
	t0 = now_ms();
	r = cuCtxSynchronize();
	printf("RESULT %d %.1f\n", (int)r, now_ms() - t0);
	/* Once lost, every later call says so at once. */
	if (r == CUDA_ERROR_DEVICE_UNAVAILABLE)
		check("cuCtxSynchronize after the loss", cuCtxSynchronize(), CUDA_ERROR_DEVICE_UNAVAILABLE);
	return r == CUDA_ERROR_DEVICE_UNAVAILABLE && !failed ? 0 : 1;
}

/*
 * A module large enough to be offered by hash (VG_IMG_CACHE_MIN), loaded
 * as a module and as a library, its kernel run: the module-cache case
 * reads from the worker's statistics what crossed the wire.
 */
CUresult cuLibraryLoadData(CUlibrary *library, const void *code, CUjit_option *jitOptions, void **jitOptionsValues,
			   unsigned int numJitOptions, CUlibraryOption *libraryOptions, void **libraryOptionValues,
			   unsigned int numLibraryOptions);
CUresult cuLibraryGetKernel(CUkernel *pKernel, CUlibrary library, const char *name);

static int mode_bigmodule(const char *tag)
{
	static char img[96 << 10];
	unsigned int usec = 1;
	void *params[] = { &usec };
	size_t off;
	CUcontext ctx;
	CUmodule mod;
	CUlibrary lib;
	CUkernel k;
	CUfunction f;

	off = (size_t)snprintf(img, sizeof(img), "%s", it_ptx);
	while (off + 64 < sizeof(img))
		off += (size_t)snprintf(img + off, sizeof(img) - off, "// padding line %08zu of a large module %s\n", off, tag);
	if (ctx_open(&ctx))
		return 1;
	MUST(cuModuleLoadData(&mod, img));
	MUST(cuModuleGetFunction(&f, mod, "vg_sleep"));
	MUST(cuLaunchKernel(f, 1, 1, 1, 1, 1, 1, 0, NULL, params, NULL));
	MUST(cuCtxSynchronize());
	MUST(cuLibraryLoadData(&lib, img, NULL, NULL, 0, NULL, NULL, 0));
	MUST(cuLibraryGetKernel(&k, lib, "vg_sleep"));
	printf("RESULT ok %zu bytes\n", off + 1);
	return 0;
}

/* Threads of this process named name (/proc/self/task/N/comm). */
static int threads_named(const char *name)
{
	DIR *d = opendir("/proc/self/task");
	struct dirent *e;
	char path[64], comm[32];
	int n = 0;

	while (d && (e = readdir(d))) {
		FILE *f;

		if (e->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "/proc/self/task/%.16s/comm", e->d_name);
		f = fopen(path, "r");
		if (f && fgets(comm, sizeof(comm), f)) {
			comm[strcspn(comm, "\n")] = '\0';
			n += !strcmp(comm, name);
		}
		if (f)
			fclose(f);
	}
	if (d)
		closedir(d);
	return n;
}

static int mode_bulk(size_t mib)
{
	size_t n = mib << 20, i;
	uint32_t *in = malloc(n), *out = malloc(n);
	CUdeviceptr big, small;
	CUcontext ctx;
	double t0;

	if (!in || !out || ctx_open(&ctx))
		return 1;
	for (i = 0; i < n / 4; i++)
		in[i] = (uint32_t)(i * 2654435761u);
	MUST(cuMemAlloc_v2(&big, n));
	MUST(cuMemAlloc_v2(&small, 4u << 20));
	t0 = now_ms();
	MUST(cuMemcpyHtoD_v2(big, in, n));
	MUST(cuMemcpyDtoH_v2(out, big, n));
	if (memcmp(in, out, n) != 0) {
		printf("FAIL bulk: copied data differ\n");
		return 1;
	}
	printf("bulk %zu MiB there and back in %.1f ms; %d copy helpers\n", mib, now_ms() - t0,
	       threads_named("vgpu-copy"));
	/*
	 * Below the staging size but above the size sent from the caller's
	 * memory and used in place by the worker (64 KiB): at an odd offset,
	 * synchronous and asynchronous, each way.
	 */
	for (i = 0; i < 2; i++) {
		size_t mid = (100u << 10) + 3, at = 4 * i + 1;

		memset(out, 0, mid + at);
		if (i)
			MUST(cuMemcpyHtoDAsync_v2(big + 7, (uint8_t *)in + at, mid, NULL));
		else
			MUST(cuMemcpyHtoD_v2(big + 7, (uint8_t *)in + at, mid));
		MUST(i ? cuMemcpyDtoHAsync_v2((uint8_t *)out + at, big + 7, mid, NULL) :
			 cuMemcpyDtoH_v2((uint8_t *)out + at, big + 7, mid));
		MUST(cuCtxSynchronize());
		if (memcmp((uint8_t *)in + at, (uint8_t *)out + at, mid) != 0) {
			printf("FAIL bulk: a %zu-byte %s copy there and back differs\n", mid, i ? "async" : "sync");
			return 1;
		}
	}
	/* Past the end of the allocation: some chunk fails, so does the copy. */
	if (cuMemcpyHtoD_v2(small, in, n) == CUDA_SUCCESS) {
		printf("FAIL bulk: a copy past the end of an allocation succeeded\n");
		return 1;
	}
	MUST(cuMemcpyHtoD_v2(small, in, 4u << 20));
	if (cuMemcpyDtoH_v2(out, small, n) == CUDA_SUCCESS) {
		printf("FAIL bulk: a copy back past the end of an allocation succeeded\n");
		return 1;
	}
	/* The chunks in flight behind the failed one are all answered: the next copy is in step. */
	memset(out, 0, 4u << 20);
	MUST(cuMemcpyDtoH_v2(out, small, 4u << 20));
	if (memcmp(in, out, 4u << 20) != 0) {
		printf("FAIL bulk: the copy back after a failed one differs\n");
		return 1;
	}
	MUST(cuCtxSynchronize());
	MUST(cuMemFree_v2(big));
	MUST(cuMemFree_v2(small));
	MUST(cuCtxDestroy_v2(ctx));
	free(in);
	free(out);
	printf("RESULT ok bulk\n");
	return 0;
}

/* ---- load: what 16 clients at once do in the load test ---------------- */

#define LOAD_N 4096

static int expect_f32(const char *what, int round, const float *got, float (*want)(int, int))
{
	int i;

	for (i = 0; i < LOAD_N; i++) {
		if (got[i] != want(round, i)) {
			printf("FAIL round %d: %s element %d is %g, want %g\n", round, what, i,
			       (double)got[i], (double)want(round, i));
			failed = 1;
			return 1;
		}
	}
	return 0;
}

static float load_a(int round, int i) { return (float)(round + i); }
static float load_b(int round, int i) { return (float)(2 * i - round); }
static float load_sum(int round, int i) { return load_a(round, i) + load_b(round, i); }
static float load_twice(int round, int i) { return 2.0f * load_sum(round, i); }

static int load_round(CUfunction vadd, CUfunction fill, CUfunction scale, CUstream s, int round)
{
	static float a[LOAD_N], b[LOAD_N], out[LOAD_N];
	static uint32_t words[LOAD_N];
	CUdeviceptr da, db, dc;
	unsigned int n = LOAD_N, v = 0x5eed0000u + (unsigned)round;
	float two = 2.0f;
	void *p_vadd[] = { &da, &db, &dc, &n }, *p_fill[] = { &db, &v, &n }, *p_scale[] = { &dc, &two, &n };
	int i;

	for (i = 0; i < LOAD_N; i++) {
		a[i] = load_a(round, i);
		b[i] = load_b(round, i);
	}
	MUST(cuMemAlloc_v2(&da, sizeof(a)));
	MUST(cuMemAlloc_v2(&db, sizeof(b)));
	MUST(cuMemAlloc_v2(&dc, sizeof(a)));
	MUST(cuMemcpyHtoD_v2(da, a, sizeof(a)));
	MUST(cuMemcpyHtoDAsync_v2(db, b, sizeof(b), s));
	MUST(cuStreamSynchronize(s));
	MUST(cuMemsetD32_v2(dc, 0xffffffffu, LOAD_N));
	MUST(cuLaunchKernel(vadd, LOAD_N / 256, 1, 1, 256, 1, 1, 0, s, p_vadd, NULL));
	MUST(cuMemcpyDtoHAsync_v2(out, dc, sizeof(out), s));
	MUST(cuStreamSynchronize(s));
	if (expect_f32("vg_vadd", round, out, load_sum))
		return 1;
	MUST(cuLaunchKernel(scale, LOAD_N / 256, 1, 1, 256, 1, 1, 0, NULL, p_scale, NULL));
	MUST(cuMemcpyDtoH_v2(out, dc, sizeof(out)));
	if (expect_f32("vg_scale", round, out, load_twice))
		return 1;
	MUST(cuLaunchKernel(fill, LOAD_N / 256, 1, 1, 256, 1, 1, 0, NULL, p_fill, NULL));
	MUST(cuMemcpyDtoD_v2(da, db, sizeof(a)));
	MUST(cuMemcpyDtoH_v2(words, da, sizeof(words)));
	for (i = 0; i < LOAD_N; i++) {
		if (words[i] != v) {
			printf("FAIL round %d: vg_fill word %d is %#x\n", round, i, words[i]);
			return 1;
		}
	}
	MUST(cuMemFree_v2(da));
	MUST(cuMemFree_v2(db));
	MUST(cuMemFree_v2(dc));
	return 0;
}

static int mode_load(int rounds)
{
	CUfunction vadd, fill, scale;
	CUcontext ctx;
	CUmodule mod;
	CUstream s;
	int i;

	if (ctx_open(&ctx))
		return 1;
	MUST(cuModuleLoadData(&mod, it_ptx));
	MUST(cuModuleGetFunction(&vadd, mod, "vg_vadd"));
	MUST(cuModuleGetFunction(&fill, mod, "vg_fill"));
	MUST(cuModuleGetFunction(&scale, mod, "vg_scale"));
	MUST(cuStreamCreate(&s, 0));
	for (i = 0; i < rounds; i++)
		if (load_round(vadd, fill, scale, s, i))
			return 1;
	MUST(cuStreamDestroy_v2(s));
	MUST(cuModuleUnload(mod));
	MUST(cuCtxDestroy_v2(ctx));
	printf("RESULT ok %d rounds\n", rounds);
	return 0;
}

/* ---- limits ------------------------------------------------------------ */

#define MiB (1ull << 20)

static int limits_memory(uint64_t mem)
{
	CUdeviceptr a, b, c;
	size_t pitch;

	/* Up to the limit and one byte over. */
	MUST(cuMemAlloc_v2(&a, mem - 2 * MiB));
	check("an allocation past max_device_memory", cuMemAlloc_v2(&b, 3 * MiB), CUDA_ERROR_OUT_OF_MEMORY);
	MUST(cuMemAlloc_v2(&b, 2 * MiB));
	check("one byte past max_device_memory", cuMemAlloc_v2(&c, 1), CUDA_ERROR_OUT_OF_MEMORY);
	/* Freed memory is credited. */
	MUST(cuMemFree_v2(b));
	MUST(cuMemAlloc_v2(&b, 2 * MiB));
	MUST(cuMemFree_v2(a));
	MUST(cuMemFree_v2(b));
	/* Pitched allocations count too. */
	check("a pitched allocation past the limit", cuMemAllocPitch_v2(&a, &pitch, mem / 2, 3, 4),
	      CUDA_ERROR_OUT_OF_MEMORY);
	MUST(cuMemAllocPitch_v2(&a, &pitch, 1000, 1000, 4));
	check("an allocation past what the pitched one left",
	      cuMemAlloc_v2(&b, mem - 1000 * 1000 + 1), CUDA_ERROR_OUT_OF_MEMORY);
	MUST(cuMemFree_v2(a));
	MUST(cuMemAlloc_v2(&a, mem));
	MUST(cuMemFree_v2(a));
	return failed;
}

static int limits_streams(unsigned int max)
{
	CUstream s[64], extra;
	unsigned int i;

	if (max > 63)
		return 1;
	for (i = 0; i < max; i++)
		MUST(cuStreamCreate(&s[i], 0));
	check("a stream past max_streams", cuStreamCreate(&extra, 0), CUDA_ERROR_OUT_OF_MEMORY);
	if (max) {
		MUST(cuStreamDestroy_v2(s[0]));
		MUST(cuStreamCreate(&s[0], 0));
	}
	for (i = 0; i < max; i++)
		MUST(cuStreamDestroy_v2(s[i]));
	return failed;
}

/* A context destroyed with memory and streams in it gives them back. */
static int limits_context(CUcontext main_ctx, uint64_t mem, unsigned int max)
{
	CUcontext ctx;
	CUdeviceptr p;
	CUstream s;
	CUdevice dev;
	unsigned int i;

	MUST(cuDeviceGet(&dev, 0));
	MUST(cuCtxCreate_v2(&ctx, 0, dev));
	MUST(cuMemAlloc_v2(&p, mem));
	for (i = 0; i < max; i++)
		MUST(cuStreamCreate(&s, 0));
	MUST(cuCtxDestroy_v2(ctx));
	MUST(cuCtxSetCurrent(main_ctx));
	MUST(cuMemAlloc_v2(&p, mem));
	MUST(cuMemFree_v2(p));
	return limits_streams(max);
}

static int mode_limits(uint64_t mem, unsigned int streams)
{
	CUcontext ctx;

	if (mem < 4 * MiB || mem % MiB)
		return 2;
	if (ctx_open(&ctx) || limits_memory(mem) || limits_streams(streams) ||
	    limits_context(ctx, mem, streams))
		return 1;
	MUST(cuCtxDestroy_v2(ctx));
	if (failed)
		return 1;
	printf("RESULT ok\n");
	return 0;
}

static int mode_hold(uint64_t bytes, const char *file)
{
	CUdeviceptr p;
	CUcontext ctx;
	int i;

	if (ctx_open(&ctx))
		return 1;
	MUST(cuMemAlloc_v2(&p, bytes));
	printf("HOLDING\n");
	for (i = 0; i < 6000 && access(file, F_OK) != 0; i++)
		usleep(10000);
	MUST(cuMemFree_v2(p));
	MUST(cuCtxDestroy_v2(ctx));
	printf("RESULT ok\n");
	return 0;
}

static int mode_bigmsg(size_t bytes, int want)
{
	CUcontext ctx;
	CUmodule mod;
	char *img;
	CUresult r;

	if (ctx_open(&ctx))
		return 1;
	img = malloc(bytes);
	if (!img || bytes < sizeof(it_ptx) + 1)
		return 1;
	memset(img, ' ', bytes);
	memcpy(img, it_ptx, sizeof(it_ptx) - 1);
	img[bytes - 1] = '\0';
	r = cuModuleLoadData(&mod, img);
	printf("RESULT %d\n", (int)r);
	free(img);
	return check("cuModuleLoadData of a large image", r, (CUresult)want) ? 0 : 1;
}

/* ---- max_threads ---------------------------------------------------------- */

struct th {
	CUcontext ctx;
	CUresult r;
	pthread_barrier_t *bar;
};

static void *th_main(void *arg)
{
	struct th *t = arg;
	CUdeviceptr p = 0;

	t->r = cuCtxSetCurrent(t->ctx);
	if (t->r == CUDA_SUCCESS)
		t->r = cuMemAlloc_v2(&p, 4096);
	pthread_barrier_wait(t->bar);	/* every thread holds its channel now */
	if (t->r == CUDA_SUCCESS)
		t->r = cuMemFree_v2(p);
	return NULL;
}

static int mode_threads(int n, int want_ok)
{
	pthread_barrier_t bar;
	pthread_t tid[64];
	struct th t[64];
	CUcontext ctx;
	int i, ok = 0, unavailable = 0, tries;

	if (n > 64 || ctx_open(&ctx))
		return 1;
	pthread_barrier_init(&bar, NULL, (unsigned)n);
	for (i = 0; i < n; i++) {
		t[i] = (struct th){ .ctx = ctx, .bar = &bar };
		pthread_create(&tid[i], NULL, th_main, &t[i]);
	}
	for (i = 0; i < n; i++) {
		pthread_join(tid[i], NULL);
		ok += t[i].r == CUDA_SUCCESS;
		unavailable += t[i].r == CUDA_ERROR_DEVICE_UNAVAILABLE;
	}
	printf("THREADS ok=%d unavailable=%d\n", ok, unavailable);
	if (ok != want_ok || ok + unavailable != n) {
		printf("FAIL %d of %d threads could call, want %d (and the others 46)\n", ok, n, want_ok);
		return 1;
	}
	/* Their channels are gone with them: one more thread may call again. */
	for (tries = 0; tries < 100; tries++) {
		pthread_barrier_destroy(&bar);
		pthread_barrier_init(&bar, NULL, 1);
		t[0] = (struct th){ .ctx = ctx, .bar = &bar };
		pthread_create(&tid[0], NULL, th_main, &t[0]);
		pthread_join(tid[0], NULL);
		if (t[0].r == CUDA_SUCCESS)
			break;
		usleep(20000);
	}
	MUST(t[0].r);
	MUST(cuCtxDestroy_v2(ctx));
	printf("RESULT ok\n");
	return 0;
}

/*
 * The primary context's answers, one line each, for comparing a warm worker
 * (which made device 0's context ahead) with a cold one: the state before
 * any retain, a release of the inactive context, retain/release, flags set
 * while inactive, a reset.
 */
static int mode_primary(void)
{
	CUcontext c = NULL;
	CUdevice dev;
	unsigned int flags = 99;
	int active = 99;

	MUST(cuInit(0));
	MUST(cuDeviceGet(&dev, 0));
#define STATE(tag) do { \
		CUresult r_; \
		flags = 99, active = 99; \
		r_ = cuDevicePrimaryCtxGetState(dev, &flags, &active); \
		printf("RESULT %s getstate=%d flags=%u active=%d\n", tag, (int)r_, flags, active); \
	} while (0)
	CUresult r;

	STATE("start");
	printf("RESULT release_inactive=%d\n", (int)cuDevicePrimaryCtxRelease_v2(dev));
	STATE("after_release_inactive");
	r = cuDevicePrimaryCtxRetain(&c, dev);
	printf("RESULT retain=%d ctx=%s\n", (int)r, c ? "set" : "NULL");
	STATE("retained");
	printf("RESULT release=%d\n", (int)cuDevicePrimaryCtxRelease_v2(dev));
	STATE("released");
	printf("RESULT release_again=%d\n", (int)cuDevicePrimaryCtxRelease_v2(dev));
	printf("RESULT setflags=%d\n", (int)cuDevicePrimaryCtxSetFlags_v2(dev, CU_CTX_SCHED_BLOCKING_SYNC));
	STATE("flags_set");
	printf("RESULT retain2=%d\n", (int)cuDevicePrimaryCtxRetain(&c, dev));
	STATE("retained2");
	printf("RESULT reset=%d\n", (int)cuDevicePrimaryCtxReset_v2(dev));
	STATE("reset");
#undef STATE
	printf("RESULT ok\n");
	return failed;
}

int main(int argc, char **argv)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc == 2 && !strcmp(argv[1], "noserver"))
		return mode_noserver();
	if (argc == 3 && !strcmp(argv[1], "work"))
		return mode_work(atoi(argv[2]));
	if (argc == 2 && !strcmp(argv[1], "primary"))
		return mode_primary();
	if (argc == 2 && !strcmp(argv[1], "leak"))
		return mode_leak();
	if (argc == 3 && !strcmp(argv[1], "wait"))
		return mode_wait((unsigned int)strtoul(argv[2], NULL, 0));
	if ((argc == 2 || argc == 3) && !strcmp(argv[1], "bigmodule"))
		return mode_bigmodule(argc == 3 ? argv[2] : "");
	if (argc == 3 && !strcmp(argv[1], "bulk"))
		return mode_bulk(strtoul(argv[2], NULL, 0));
	if (argc == 3 && !strcmp(argv[1], "load"))
		return mode_load(atoi(argv[2]));
	if (argc == 4 && !strcmp(argv[1], "limits"))
		return mode_limits(strtoull(argv[2], NULL, 0), (unsigned int)atoi(argv[3]));
	if (argc == 4 && !strcmp(argv[1], "hold"))
		return mode_hold(strtoull(argv[2], NULL, 0), argv[3]);
	if (argc == 4 && !strcmp(argv[1], "bigmsg"))
		return mode_bigmsg((size_t)strtoull(argv[2], NULL, 0), atoi(argv[3]));
	if (argc == 4 && !strcmp(argv[1], "threads"))
		return mode_threads(atoi(argv[2]), atoi(argv[3]));
	fprintf(stderr, "usage: it-guest noserver | work N | leak | wait USEC | bigmodule [TAG] | bulk MIB |\n"
		"                load N | limits MEM STREAMS | hold BYTES FILE | bigmsg BYTES CODE | threads N OK\n");
	return 2;
}
