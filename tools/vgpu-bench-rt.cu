/*
 * vgpu-bench-rt: the runtime-API workloads of vgpu-bench, a program built
 * with nvcc and the static CUDA runtime, run once per leg:
 *   rt_first_call_ms   the first runtime call (cudaMalloc: driver start,
 *                      context, module registration), one sample per process
 *   rt_launch_loop     back-to-back <<<>>> launches of an empty kernel,
 *                      (N + cudaDeviceSynchronize) / N
 * Output lines as vgpu-bench's legs print them: "name median p10 p90 unit".
 * Arguments: reps (default 7), and milliseconds to wait after the first
 * call before the loop (default 0; vgpu-bench's --settle-ms says why).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include <cuda_runtime.h>

/* Empty; named and typed as the CPU test driver's vg_sleep (0 us), so the program runs there too. */
extern "C" __global__ void vg_sleep(unsigned int usec)
{
}

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

int main(int argc, char **argv)
{
	int reps = argc > 1 ? atoi(argv[1]) : 7, r, i;
	int settle_ms = argc > 2 ? atoi(argv[2]) : 0;
	double v[64], t0;
	void *p = NULL;

	if (reps < 3 || reps > 64)
		reps = 7;
	t0 = now_us();
	if (cudaMalloc(&p, 4096) != cudaSuccess) {
		fprintf(stderr, "vgpu-bench-rt: the first call, cudaMalloc, failed\n");
		return 1;
	}
	t0 = (now_us() - t0) / 1e3;
	printf("rt_first_call_ms %.3f %.3f %.3f ms\n", t0, t0, t0);
	for (i = 0; i < 100; i++)
		vg_sleep<<<1, 32>>>(0);
	cudaDeviceSynchronize();
	if (settle_ms > 0 && settle_ms <= 60000) {
		struct timespec ts = { settle_ms / 1000, (long)(settle_ms % 1000) * 1000000L };

		while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
			;
	}
	for (r = 0; r < reps; r++) {
		t0 = now_us();
		for (i = 0; i < 2000; i++)
			vg_sleep<<<1, 32>>>(0);
		if (cudaDeviceSynchronize() != cudaSuccess)
			return 1;
		v[r] = (now_us() - t0) / 2000;
	}
	qsort(v, (size_t)reps, sizeof(double), cmp_double);
	printf("rt_launch_loop %.3f %.3f %.3f us/call\n", v[reps / 2], v[reps / 10], v[reps - 1 - reps / 10]);
	return 0;
}
