/*
 * Bandwidth of large copies between the device and pageable memory, both
 * ways: the median and the best of R copies of M MiB.
 *
 *   gpu-staging-bw [R [MIB [LABEL]]]
 *
 * Prints one line: LABEL htod MEDIAN BEST dtoh MEDIAN BEST (GB/s).  The
 * buffer is touched before the first copy, so page faults are not timed.
 * tests/gpu/tune-staging runs it natively and through vgpu.
 */
#include <cuda.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_R 64

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
	int reps = argc > 1 ? atoi(argv[1]) : 9, mib = argc > 2 ? atoi(argv[2]) : 256, r;
	const char *label = argc > 3 ? argv[3] : "copy";
	double up[MAX_R], down[MAX_R], t0;
	size_t n;
	CUdevice dev;
	CUcontext ctx;
	CUdeviceptr d;
	char *p;

	if (reps < 1 || reps > MAX_R || mib < 1 || mib > 4096) {
		fprintf(stderr, "usage: gpu-staging-bw [REPS 1-%d [MIB 1-4096 [LABEL]]]\n", MAX_R);
		return 2;
	}
	n = (size_t)mib << 20;
	p = malloc(n);
	if (!p || cuInit(0) || cuDeviceGet(&dev, 0) || cuDevicePrimaryCtxRetain(&ctx, dev) ||
	    cuCtxSetCurrent(ctx) || cuMemAlloc(&d, n)) {
		fprintf(stderr, "gpu-staging-bw: set-up failed\n");
		return 1;
	}
	memset(p, 1, n);
	if (cuMemcpyHtoD(d, p, n) || cuMemcpyDtoH(p, d, n))
		return 1;
	for (r = 0; r < reps; r++) {
		t0 = now_s();
		if (cuMemcpyHtoD(d, p, n))
			return 1;
		up[r] = (double)n / (now_s() - t0) / 1e9;
		t0 = now_s();
		if (cuMemcpyDtoH(p, d, n))
			return 1;
		down[r] = (double)n / (now_s() - t0) / 1e9;
	}
	qsort(up, (size_t)reps, sizeof(double), cmp);
	qsort(down, (size_t)reps, sizeof(double), cmp);
	printf("%s htod %.2f %.2f dtoh %.2f %.2f\n", label, up[reps / 2], up[reps - 1], down[reps / 2],
	       down[reps - 1]);
	cuMemFree(d);
	cuDevicePrimaryCtxRelease(dev);
	free(p);
	return 0;
}
