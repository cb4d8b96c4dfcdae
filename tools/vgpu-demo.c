/*
 * vgpu-demo: a small CUDA driver-API program, the README's first command.
 * It lists the devices, adds two vectors with a kernel written in PTX here
 * (so it needs no CUDA toolkit to build), checks the result, and says which
 * libcuda.so.1 it ran on.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vgpu/cuda_types.h"

CUresult cuInit(unsigned int flags);
CUresult cuDriverGetVersion(int *v);
CUresult cuDeviceGetCount(int *n);
CUresult cuDeviceGet(CUdevice *d, int ordinal);
CUresult cuDeviceGetName(char *name, int len, CUdevice d);
CUresult cuDeviceTotalMem_v2(size_t *bytes, CUdevice d);
CUresult cuDevicePrimaryCtxRetain(CUcontext *c, CUdevice d);
CUresult cuDevicePrimaryCtxRelease_v2(CUdevice d);
CUresult cuCtxSetCurrent(CUcontext c);
CUresult cuModuleLoadData(CUmodule *m, const void *image);
CUresult cuModuleGetFunction(CUfunction *f, CUmodule m, const char *name);
CUresult cuModuleUnload(CUmodule m);
CUresult cuMemAlloc_v2(CUdeviceptr *p, size_t n);
CUresult cuMemFree_v2(CUdeviceptr p);
CUresult cuMemcpyHtoD_v2(CUdeviceptr dst, const void *src, size_t n);
CUresult cuMemcpyDtoH_v2(void *dst, CUdeviceptr src, size_t n);
CUresult cuLaunchKernel(CUfunction f, unsigned gx, unsigned gy, unsigned gz, unsigned bx, unsigned by,
			unsigned bz, unsigned shmem, CUstream s, void **params, void **extra);
CUresult cuCtxSynchronize(void);
CUresult cuGetErrorName(CUresult e, const char **s);

/* c[i] = a[i] + b[i] for i < n: one thread per element. */
static const char vadd_ptx[] =
	".version 7.0\n"
	".target sm_50\n"
	".address_size 64\n"
	"\n"
	".visible .entry vg_vadd(\n"
	"\t.param .u64 pa,\n"
	"\t.param .u64 pb,\n"
	"\t.param .u64 pc,\n"
	"\t.param .u32 pn\n"
	")\n"
	"{\n"
	"\t.reg .pred %p<2>;\n"
	"\t.reg .f32 %f<4>;\n"
	"\t.reg .b32 %r<6>;\n"
	"\t.reg .b64 %rd<11>;\n"
	"\n"
	"\tld.param.u64 %rd1, [pa];\n"
	"\tld.param.u64 %rd2, [pb];\n"
	"\tld.param.u64 %rd3, [pc];\n"
	"\tld.param.u32 %r1, [pn];\n"
	"\tmov.u32 %r2, %ctaid.x;\n"
	"\tmov.u32 %r3, %ntid.x;\n"
	"\tmov.u32 %r4, %tid.x;\n"
	"\tmad.lo.s32 %r5, %r2, %r3, %r4;\n"
	"\tsetp.ge.s32 %p1, %r5, %r1;\n"
	"\t@%p1 bra DONE;\n"
	"\tcvta.to.global.u64 %rd4, %rd1;\n"
	"\tcvta.to.global.u64 %rd5, %rd2;\n"
	"\tcvta.to.global.u64 %rd6, %rd3;\n"
	"\tmul.wide.s32 %rd7, %r5, 4;\n"
	"\tadd.s64 %rd8, %rd4, %rd7;\n"
	"\tadd.s64 %rd9, %rd5, %rd7;\n"
	"\tadd.s64 %rd10, %rd6, %rd7;\n"
	"\tld.global.f32 %f1, [%rd8];\n"
	"\tld.global.f32 %f2, [%rd9];\n"
	"\tadd.f32 %f3, %f1, %f2;\n"
	"\tst.global.f32 [%rd10], %f3;\n"
	"DONE:\n"
	"\tret;\n"
	"}\n";

static int check(CUresult r, const char *what)
{
	const char *name = "?";

	if (r == CUDA_SUCCESS)
		return 0;
	cuGetErrorName(r, &name);
	fprintf(stderr, "vgpu-demo: %s failed: %s (%d)\n", what, name, (int)r);
	return -1;
}

static void print_library(void)
{
	char line[4096];
	FILE *f = fopen("/proc/self/maps", "r");

	if (!f)
		return;
	while (fgets(line, sizeof(line), f)) {
		char *p = strchr(line, '/');

		if (p && strstr(p, "libcuda.so")) {
			printf("libcuda.so.1 in use: %s", p);
			break;
		}
	}
	fclose(f);
}

int main(void)
{
	enum { N = 1 << 16 };
	float *a = malloc(N * sizeof(float)), *b = malloc(N * sizeof(float)), *c = malloc(N * sizeof(float));
	CUdeviceptr da, db, dc;
	CUcontext ctx;
	CUmodule mod;
	CUfunction fn;
	CUdevice dev;
	char name[256];
	size_t mem;
	int n = N, count, ver, i, bad = 0;
	void *params[] = { &da, &db, &dc, &n };

	if (!a || !b || !c)
		return 1;
	if (check(cuInit(0), "cuInit") || check(cuDriverGetVersion(&ver), "cuDriverGetVersion") ||
	    check(cuDeviceGetCount(&count), "cuDeviceGetCount"))
		return 1;
	printf("driver API %d.%d, %d device(s)\n", ver / 1000, ver % 1000 / 10, count);
	for (i = 0; i < count; i++) {
		if (check(cuDeviceGet(&dev, i), "cuDeviceGet") ||
		    check(cuDeviceGetName(name, sizeof(name), dev), "cuDeviceGetName") ||
		    check(cuDeviceTotalMem_v2(&mem, dev), "cuDeviceTotalMem"))
			return 1;
		printf("  device %d: %s, %zu MiB\n", i, name, mem >> 20);
	}
	if (check(cuDeviceGet(&dev, 0), "cuDeviceGet") ||
	    check(cuDevicePrimaryCtxRetain(&ctx, dev), "cuDevicePrimaryCtxRetain") ||
	    check(cuCtxSetCurrent(ctx), "cuCtxSetCurrent") ||
	    check(cuModuleLoadData(&mod, vadd_ptx), "cuModuleLoadData") ||
	    check(cuModuleGetFunction(&fn, mod, "vg_vadd"), "cuModuleGetFunction"))
		return 1;
	for (i = 0; i < N; i++) {
		a[i] = (float)i;
		b[i] = (float)(2 * i);
	}
	if (check(cuMemAlloc_v2(&da, N * sizeof(float)), "cuMemAlloc") ||
	    check(cuMemAlloc_v2(&db, N * sizeof(float)), "cuMemAlloc") ||
	    check(cuMemAlloc_v2(&dc, N * sizeof(float)), "cuMemAlloc") ||
	    check(cuMemcpyHtoD_v2(da, a, N * sizeof(float)), "cuMemcpyHtoD") ||
	    check(cuMemcpyHtoD_v2(db, b, N * sizeof(float)), "cuMemcpyHtoD") ||
	    check(cuLaunchKernel(fn, (N + 255) / 256, 1, 1, 256, 1, 1, 0, NULL, params, NULL), "cuLaunchKernel") ||
	    check(cuCtxSynchronize(), "cuCtxSynchronize") ||
	    check(cuMemcpyDtoH_v2(c, dc, N * sizeof(float)), "cuMemcpyDtoH"))
		return 1;
	for (i = 0; i < N; i++)
		if (c[i] != a[i] + b[i])
			bad++;
	cuMemFree_v2(da);
	cuMemFree_v2(db);
	cuMemFree_v2(dc);
	cuModuleUnload(mod);
	cuDevicePrimaryCtxRelease_v2(dev);
	printf("vector add of %d floats: %s\n", N, bad ? "WRONG" : "correct");
	print_library();
	free(a);
	free(b);
	free(c);
	return bad ? 1 : 0;
}
