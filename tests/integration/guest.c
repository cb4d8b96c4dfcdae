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
 *                         the same copy into a too small allocation fails, and the
 *                         session goes on
 *
 * Exit status 0 when every check of the mode held, 1 otherwise.
 */
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
	printf("bulk %zu MiB there and back in %.1f ms\n", mib, now_ms() - t0);
	/* Past the end of the allocation: some chunk fails, so does the copy. */
	if (cuMemcpyHtoD_v2(small, in, n) == CUDA_SUCCESS) {
		printf("FAIL bulk: a copy past the end of an allocation succeeded\n");
		return 1;
	}
	MUST(cuMemcpyHtoD_v2(small, in, 4u << 20));
	MUST(cuCtxSynchronize());
	MUST(cuMemFree_v2(big));
	MUST(cuMemFree_v2(small));
	MUST(cuCtxDestroy_v2(ctx));
	free(in);
	free(out);
	printf("RESULT ok bulk\n");
	return 0;
}

int main(int argc, char **argv)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc == 2 && !strcmp(argv[1], "noserver"))
		return mode_noserver();
	if (argc == 3 && !strcmp(argv[1], "work"))
		return mode_work(atoi(argv[2]));
	if (argc == 2 && !strcmp(argv[1], "leak"))
		return mode_leak();
	if (argc == 3 && !strcmp(argv[1], "wait"))
		return mode_wait((unsigned int)strtoul(argv[2], NULL, 0));
	if (argc == 3 && !strcmp(argv[1], "bulk"))
		return mode_bulk(strtoul(argv[2], NULL, 0));
	fprintf(stderr, "usage: it-guest noserver | work N | leak | wait USEC | bulk MIB\n");
	return 2;
}
