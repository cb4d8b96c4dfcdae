/* SPDX-License-Identifier: MIT */
/*
 * The suite's test kernels.  The CPU test driver implements the same names
 * in C, so every case runs unchanged on a real GPU and on the test driver;
 * keep the signatures and the thread mapping in step with tests/testdrv/.
 *
 * Mapping: one thread per element, i = blockIdx.x * blockDim.x + threadIdx.x,
 * guarded by the element count (n, or n * n for vg_matmul).
 */

/* Read and written by cases through cuModuleGetGlobal. */
extern "C" __device__ unsigned vg_counter;
__device__ unsigned vg_counter;

extern "C" __global__ void vg_vadd(const float *a, const float *b, float *c, int n)
{
	int i = blockIdx.x * blockDim.x + threadIdx.x;

	if (i < n)
		c[i] = a[i] + b[i];
}

extern "C" __global__ void vg_fill(unsigned *p, unsigned v, int n)
{
	int i = blockIdx.x * blockDim.x + threadIdx.x;

	if (i < n)
		p[i] = v;
}

extern "C" __global__ void vg_scale(float *p, float s, int n)
{
	int i = blockIdx.x * blockDim.x + threadIdx.x;

	if (i < n)
		p[i] *= s;
}

/* C = A * B, n x n, row-major; thread i computes C[i / n][i % n]. */
extern "C" __global__ void vg_matmul(const float *A, const float *B, float *C, int n)
{
	int i = blockIdx.x * blockDim.x + threadIdx.x;
	int row, col, k;
	float acc = 0.0f;

	if (i >= n * n)
		return;
	row = i / n;
	col = i % n;
	for (k = 0; k < n; k++)
		acc += A[row * n + k] * B[k * n + col];
	C[i] = acc;
}

/*
 * Busy-waits about usec microseconds of wall time, so that a stream stays
 * busy long enough for cuStreamQuery/cuEventQuery to see CUDA_ERROR_NOT_READY.
 * %globaltimer counts nanoseconds.
 */
extern "C" __global__ void vg_sleep(unsigned usec)
{
	unsigned long long start, now;

	if (blockIdx.x != 0 || threadIdx.x != 0)
		return;
	asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(start));
	do {
		asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(now));
	} while (now - start < (unsigned long long)usec * 1000ull);
}

/* Launched with an invalid pointer: the write faults (illegal address, 700). */
extern "C" __global__ void vg_fault(int *p)
{
	if (blockIdx.x == 0 && threadIdx.x == 0)
		*(volatile int *)p = 0x5a5a;
}
