/*
 * vgpu-bench: the same driver-API workloads natively and through vgpu, as
 * separate processes in one invocation, with ratios from that one run.
 *
 *   vgpu-bench --native PATH --vgpu PATH [--server unix:SOCK] [--reps N]
 *
 * PATH is a libcuda.so.1 (NVIDIA's, ours).  Each leg runs this program
 * again with --leg LIB, which dlopens LIB and prints one line per workload:
 * "name median p10 p90 unit".  A per-call figure is (N calls + the final
 * synchronisation) / N.
 */
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "vgpu/cuda_types.h"

struct drv {
	CUresult (*Init)(unsigned int);
	CUresult (*DeviceGet)(CUdevice *, int);
	CUresult (*PrimaryCtxRetain)(CUcontext *, CUdevice);
	CUresult (*CtxSetCurrent)(CUcontext);
	CUresult (*CtxSynchronize)(void);
	CUresult (*CtxGetDevice)(CUdevice *);
	CUresult (*DeviceGetAttribute)(int *, CUdevice_attribute, CUdevice);
	CUresult (*ModuleLoadData)(CUmodule *, const void *);
	CUresult (*ModuleGetFunction)(CUfunction *, CUmodule, const char *);
	CUresult (*LaunchKernel)(CUfunction, unsigned, unsigned, unsigned, unsigned, unsigned, unsigned,
				 unsigned, CUstream, void **, void **);
	CUresult (*MemAlloc)(CUdeviceptr *, size_t);
	CUresult (*MemAllocHost)(void **, size_t);
	CUresult (*MemcpyHtoD)(CUdeviceptr, const void *, size_t);
	CUresult (*MemcpyDtoH)(void *, CUdeviceptr, size_t);
	CUresult (*StreamSynchronize)(CUstream);
};

static const char empty_ptx[] =
	".version 7.0\n.target sm_50\n.address_size 64\n"
	".visible .entry vg_empty(.param .u64 p)\n{\n\tret;\n}\n";

static double now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

#define MAXREPS 64

static void report(const char *name, double *v, int n, const char *unit)
{
	qsort(v, (size_t)n, sizeof(*v), cmp_double);
	printf("%s %.3f %.3f %.3f %s\n", name, v[n / 2], v[n / 10], v[n - 1 - n / 10], unit);
	fflush(stdout);
}

#define SYM(field, name) \
	do { \
		*(void **)&d.field = dlsym(h, name); \
		if (!d.field) { \
			fprintf(stderr, "vgpu-bench: %s lacks %s\n", lib, name); \
			return 1; \
		} \
	} while (0)

static int leg(const char *lib, int reps)
{
	struct drv d;
	void *h = dlopen(lib, RTLD_NOW | RTLD_LOCAL);
	CUdevice dev;
	CUcontext ctx;
	CUmodule mod;
	CUfunction fn;
	CUdeviceptr dp, big;
	void *pinned;
	char *pageable;
	double v[MAXREPS];
	size_t bytes = 64u << 20;
	int r, i, n, x;

	if (!h) {
		fprintf(stderr, "vgpu-bench: %s\n", dlerror());
		return 1;
	}
	SYM(Init, "cuInit");
	SYM(DeviceGet, "cuDeviceGet");
	SYM(PrimaryCtxRetain, "cuDevicePrimaryCtxRetain");
	SYM(CtxSetCurrent, "cuCtxSetCurrent");
	SYM(CtxSynchronize, "cuCtxSynchronize");
	SYM(CtxGetDevice, "cuCtxGetDevice");
	SYM(DeviceGetAttribute, "cuDeviceGetAttribute");
	SYM(ModuleLoadData, "cuModuleLoadData");
	SYM(ModuleGetFunction, "cuModuleGetFunction");
	SYM(LaunchKernel, "cuLaunchKernel");
	SYM(MemAlloc, "cuMemAlloc_v2");
	SYM(MemAllocHost, "cuMemAllocHost_v2");
	SYM(MemcpyHtoD, "cuMemcpyHtoD_v2");
	SYM(MemcpyDtoH, "cuMemcpyDtoH_v2");
	SYM(StreamSynchronize, "cuStreamSynchronize");
	if (d.Init(0) || d.DeviceGet(&dev, 0) || d.PrimaryCtxRetain(&ctx, dev) || d.CtxSetCurrent(ctx) ||
	    d.ModuleLoadData(&mod, empty_ptx) || d.ModuleGetFunction(&fn, mod, "vg_empty") ||
	    d.MemAlloc(&dp, 4096) || d.MemAlloc(&big, bytes) || d.MemAllocHost(&pinned, bytes)) {
		fprintf(stderr, "vgpu-bench: setup failed on %s\n", lib);
		return 1;
	}
	pageable = malloc(bytes);
	if (!pageable)
		return 1;
	memset(pageable, 1, bytes);
	memset(pinned, 1, bytes);
	void *params[] = { &dp };

	for (r = 0; r < reps; r++) {
		n = 2000;
		double t0 = now_us();

		for (i = 0; i < n; i++)
			d.LaunchKernel(fn, 1, 1, 1, 32, 1, 1, 0, NULL, params, NULL);
		d.CtxSynchronize();
		v[r] = (now_us() - t0) / n;
	}
	report("launch_empty_kernel", v, reps, "us/call");
	for (r = 0; r < reps; r++) {
		n = 2000;
		double t0 = now_us();

		for (i = 0; i < n; i++)
			d.StreamSynchronize(NULL);
		v[r] = (now_us() - t0) / n;
	}
	report("stream_synchronize_idle", v, reps, "us/call");
	for (r = 0; r < reps; r++) {
		n = 2000;
		double t0 = now_us();

		for (i = 0; i < n; i++)
			d.MemcpyHtoD(dp, &x, sizeof(x));
		v[r] = (now_us() - t0) / n;
	}
	report("memcpy_htod_4B", v, reps, "us/call");
	for (r = 0; r < reps; r++) {
		n = 2000;
		double t0 = now_us();

		for (i = 0; i < n; i++)
			d.MemcpyDtoH(&x, dp, sizeof(x));
		v[r] = (now_us() - t0) / n;
	}
	report("memcpy_dtoh_4B", v, reps, "us/call");
	for (r = 0; r < reps; r++) {
		n = 20000;
		double t0 = now_us();

		for (i = 0; i < n; i++)
			d.CtxGetDevice(&dev);
		v[r] = (now_us() - t0) / n;
	}
	report("ctx_get_device", v, reps, "us/call");
	for (r = 0; r < reps; r++) {
		n = 20000;
		double t0 = now_us();

		for (i = 0; i < n; i++)
			d.DeviceGetAttribute(&x, CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT, dev);
		v[r] = (now_us() - t0) / n;
	}
	report("device_get_attribute", v, reps, "us/call");
	for (r = 0; r < reps; r++) {
		double t0 = now_us();

		d.MemcpyHtoD(big, pageable, bytes);
		v[r] = bytes / (now_us() - t0) / 1e3;
	}
	report("htod_64MiB_pageable", v, reps, "GB/s");
	for (r = 0; r < reps; r++) {
		double t0 = now_us();

		d.MemcpyHtoD(big, pinned, bytes);
		v[r] = bytes / (now_us() - t0) / 1e3;
	}
	report("htod_64MiB_pinned", v, reps, "GB/s");
	for (r = 0; r < reps; r++) {
		double t0 = now_us();

		d.MemcpyDtoH(pinned, big, bytes);
		v[r] = bytes / (now_us() - t0) / 1e3;
	}
	report("dtoh_64MiB_pinned", v, reps, "GB/s");
	return 0;
}

struct row {
	char name[64], unit[16];
	double med, p10, p90;
};

static int run_leg(const char *self, const char *lib, int reps, const char *server, struct row *rows, int max)
{
	char cmd[8192];
	FILE *f;
	int n = 0;

	snprintf(cmd, sizeof(cmd), "%s%s%s '%s' --leg '%s' --reps %d", server ? "VGPU_SERVER='" : "",
		 server ? server : "", server ? "'" : "", self, lib, reps);
	f = popen(cmd, "r");
	if (!f)
		return -1;
	while (n < max && fscanf(f, "%63s %lf %lf %lf %15s", rows[n].name, &rows[n].med, &rows[n].p10,
				 &rows[n].p90, rows[n].unit) == 5)
		n++;
	return pclose(f) == 0 ? n : -1;
}

int main(int argc, char **argv)
{
	const char *native = NULL, *vg = NULL, *server = NULL, *legl = NULL;
	struct row a[32], b[32];
	int reps = 7, na, nb, i, j;
	char self[4096];
	ssize_t sl;

	for (i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--native") && i + 1 < argc)
			native = argv[++i];
		else if (!strcmp(argv[i], "--vgpu") && i + 1 < argc)
			vg = argv[++i];
		else if (!strcmp(argv[i], "--server") && i + 1 < argc)
			server = argv[++i];
		else if (!strcmp(argv[i], "--leg") && i + 1 < argc)
			legl = argv[++i];
		else if (!strcmp(argv[i], "--reps") && i + 1 < argc)
			reps = atoi(argv[++i]);
		else {
			fprintf(stderr, "usage: vgpu-bench --native LIBCUDA --vgpu LIBCUDA [--server unix:SOCK] [--reps N]\n");
			return 2;
		}
	}
	if (reps < 3 || reps > MAXREPS)
		reps = 7;
	if (legl)
		return leg(legl, reps);
	if (!native || !vg) {
		fprintf(stderr, "vgpu-bench: --native and --vgpu are required\n");
		return 2;
	}
	sl = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (sl <= 0)
		return 1;
	self[sl] = '\0';
	na = run_leg(self, native, reps, NULL, a, 32);
	nb = run_leg(self, vg, reps, server, b, 32);
	if (na < 0 || nb < 0) {
		fprintf(stderr, "vgpu-bench: a leg failed (native %d, vgpu %d)\n", na, nb);
		return 1;
	}
	printf("%-26s %12s %12s %10s  %s\n", "workload", "native", "vgpu", "vgpu/native", "(median; p10..p90)");
	for (i = 0; i < na; i++)
		for (j = 0; j < nb; j++)
			if (!strcmp(a[i].name, b[j].name))
				printf("%-26s %12.3f %12.3f %10.2fx  %s; vgpu %.3f..%.3f\n", a[i].name, a[i].med,
				       b[j].med, b[j].med / a[i].med, a[i].unit, b[j].p10, b[j].p90);
	return 0;
}
