/* SPDX-License-Identifier: MIT */
/*
 * The test kernels in C, cuLaunchKernel and the occupancy calculator.
 *
 * A kernel's thread mapping is the CUDA source's (tests/gpu/kernels.cu):
 * i = blockIdx.x * blockDim.x + threadIdx.x, guarded by the element count,
 * so a launch covers the indices [0, gridDim.x * blockDim.x).  Before a
 * kernel runs, every byte it would touch is checked against the allocation
 * registry; a kernel that would leave it faults instead, which makes its
 * context's error sticky (CUDA_ERROR_ILLEGAL_ADDRESS), as on a GPU.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "td.h"

#define TD_LAUNCH_EXTRA_MAX	64	/* (key, value) pairs read from `extra` */

static uint64_t td_get_ptr(const unsigned char *params, int off)
{
	uint64_t v;

	memcpy(&v, params + off, 8);
	return v;
}

static int32_t td_get_i32(const unsigned char *params, int off)
{
	int32_t v;

	memcpy(&v, params + off, 4);
	return v;
}

static uint64_t td_min(uint64_t a, uint64_t b)
{
	return a < b ? a : b;
}

/* All of [p, p + n) is memory the device may touch (n == 0: nothing). */
static int td_touch_ok(uint64_t p, uint64_t n)
{
	int ok;

	if (!n)
		return 1;
	td_lock();
	ok = td_range_ok_locked(p, n);
	td_unlock();
	return ok;
}

/* Elements a guarded one-thread-per-element kernel touches. */
static uint64_t td_elems(int32_t n, uint64_t threads)
{
	return n > 0 ? td_min((uint64_t)n, threads) : 0;
}

static int td_vadd_check(const unsigned char *pa, uint64_t threads)
{
	uint64_t m = td_elems(td_get_i32(pa, 24), threads) * 4;

	return td_touch_ok(td_get_ptr(pa, 0), m) && td_touch_ok(td_get_ptr(pa, 8), m) &&
	       td_touch_ok(td_get_ptr(pa, 16), m) ? 0 : -EFAULT;
}

static void td_vadd_run(const unsigned char *pa, uint64_t threads)
{
	const float *a = (const float *)(uintptr_t)td_get_ptr(pa, 0);
	const float *b = (const float *)(uintptr_t)td_get_ptr(pa, 8);
	float *c = (float *)(uintptr_t)td_get_ptr(pa, 16);
	uint64_t i, m = td_elems(td_get_i32(pa, 24), threads);

	for (i = 0; i < m; i++)
		c[i] = a[i] + b[i];
}

/* vg_fill and vg_scale share the layout (pointer, 4-byte value, n). */
static int td_fill_check(const unsigned char *pa, uint64_t threads)
{
	uint64_t m = td_elems(td_get_i32(pa, 12), threads) * 4;

	return td_touch_ok(td_get_ptr(pa, 0), m) ? 0 : -EFAULT;
}

static void td_fill_run(const unsigned char *pa, uint64_t threads)
{
	unsigned *p = (unsigned *)(uintptr_t)td_get_ptr(pa, 0);
	uint32_t v = (uint32_t)td_get_i32(pa, 8);
	uint64_t i, m = td_elems(td_get_i32(pa, 12), threads);

	for (i = 0; i < m; i++)
		p[i] = v;
}

static void td_scale_run(const unsigned char *pa, uint64_t threads)
{
	float *p = (float *)(uintptr_t)td_get_ptr(pa, 0);
	uint64_t i, m = td_elems(td_get_i32(pa, 12), threads);
	float s;

	memcpy(&s, pa + 8, 4);
	for (i = 0; i < m; i++)
		p[i] *= s;
}

/* n x n cells; every thread that computes a cell reads a row and a column. */
static uint64_t td_cells(int32_t n)
{
	return n > 0 ? (uint64_t)n * (uint64_t)n : 0;
}

static int td_matmul_check(const unsigned char *pa, uint64_t threads)
{
	uint64_t cells = td_cells(td_get_i32(pa, 24)), m = td_min(cells, threads);

	if (!m)
		return 0;
	return td_touch_ok(td_get_ptr(pa, 0), cells * 4) && td_touch_ok(td_get_ptr(pa, 8), cells * 4) &&
	       td_touch_ok(td_get_ptr(pa, 16), m * 4) ? 0 : -EFAULT;
}

static void td_matmul_run(const unsigned char *pa, uint64_t threads)
{
	const float *A = (const float *)(uintptr_t)td_get_ptr(pa, 0);
	const float *B = (const float *)(uintptr_t)td_get_ptr(pa, 8);
	float *C = (float *)(uintptr_t)td_get_ptr(pa, 16);
	int32_t n = td_get_i32(pa, 24);
	uint64_t i, m = td_min(td_cells(n), threads);

	for (i = 0; i < m; i++) {
		uint64_t row = i / (uint64_t)n, col = i % (uint64_t)n, k;
		float acc = 0.0f;

		for (k = 0; k < (uint64_t)n; k++)
			acc += A[row * (uint64_t)n + k] * B[k * (uint64_t)n + col];
		C[i] = acc;
	}
}

static int td_sleep_check(const unsigned char *pa, uint64_t threads)
{
	return 0;
}

static void td_sleep_run(const unsigned char *pa, uint64_t threads)
{
	uint32_t usec = (uint32_t)td_get_i32(pa, 0);
	struct timespec ts = {
		.tv_sec = usec / 1000000u,
		.tv_nsec = (long)(usec % 1000000u) * 1000L,
	};

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

static int td_fault_check(const unsigned char *pa, uint64_t threads)
{
	return td_touch_ok(td_get_ptr(pa, 0), 4) ? 0 : -EFAULT;
}

static void td_fault_run(const unsigned char *pa, uint64_t threads)
{
	*(volatile int *)(uintptr_t)td_get_ptr(pa, 0) = 0x5a5a;
}

const struct td_kernel td_kernels[TD_KERNEL_COUNT] = {
	{ "vg_vadd", 4, { 0, 8, 16, 24 }, { 8, 8, 8, 4 }, 28, 16, td_vadd_check, td_vadd_run },
	{ "vg_fill", 3, { 0, 8, 12 }, { 8, 4, 4 }, 16, 10, td_fill_check, td_fill_run },
	{ "vg_scale", 3, { 0, 8, 12 }, { 8, 4, 4 }, 16, 10, td_fill_check, td_scale_run },
	{ "vg_matmul", 4, { 0, 8, 16, 24 }, { 8, 8, 8, 4 }, 28, 32, td_matmul_check, td_matmul_run },
	{ "vg_sleep", 1, { 0 }, { 4 }, 4, 8, td_sleep_check, td_sleep_run },
	{ "vg_fault", 1, { 0 }, { 8 }, 8, 8, td_fault_check, td_fault_run },
};

static void td_run_launch(struct td_op *op)
{
	const struct td_kernel *k = op->u.launch.k;
	uint64_t threads = (uint64_t)op->u.launch.grid[0] * op->u.launch.block[0];

	if (k->check(op->u.launch.params, threads) < 0) {
		td_lock();
		op->ctx->sticky = CUDA_ERROR_ILLEGAL_ADDRESS;
		td_unlock();
		return;
	}
	k->run(op->u.launch.params, threads);
}

/* The parameter buffer from `extra`: BUFFER_POINTER, BUFFER_SIZE, END. */
static CUresult td_extra_params(void **extra, const struct td_kernel *k, unsigned char *buf)
{
	void *ptr = NULL;
	size_t *size = NULL;
	int i;

	for (i = 0; i < TD_LAUNCH_EXTRA_MAX; i++) {
		uintptr_t key = (uintptr_t)extra[2 * i];

		if (key == (uintptr_t)CU_LAUNCH_PARAM_END)
			break;
		if (key == (uintptr_t)CU_LAUNCH_PARAM_BUFFER_POINTER)
			ptr = extra[2 * i + 1];
		else if (key == (uintptr_t)CU_LAUNCH_PARAM_BUFFER_SIZE)
			size = extra[2 * i + 1];
		else
			return CUDA_ERROR_INVALID_VALUE;
	}
	if (i == TD_LAUNCH_EXTRA_MAX || !ptr || !size || *size < (size_t)k->param_bytes)
		return CUDA_ERROR_INVALID_VALUE;
	memcpy(buf, ptr, (size_t)k->param_bytes);
	return CUDA_SUCCESS;
}

static CUresult td_launch_check(const struct td_func *f, unsigned gx, unsigned gy, unsigned gz,
				unsigned bx, unsigned by, unsigned bz, unsigned smem)
{
	if (!gx || !gy || !gz || !bx || !by || !bz)
		return CUDA_ERROR_INVALID_VALUE;
	if (gx > 2147483647u || gy > 65535u || gz > 65535u)
		return CUDA_ERROR_INVALID_VALUE;
	if (bx > 1024u || by > 1024u || bz > 64u || (uint64_t)bx * by * bz > 1024u)
		return CUDA_ERROR_INVALID_VALUE;
	if (smem > (unsigned)f->max_dyn_smem)
		return CUDA_ERROR_INVALID_VALUE;
	return CUDA_SUCCESS;
}

static int td_occ_blocks(const struct td_func *f, int bs, size_t smem);

#define TD_SM_COUNT		4

/* Launch-time options of cuLaunchKernelEx and cuLaunchCooperativeKernel. */
struct td_launch_opts {
	int cooperative;
	unsigned cluster[3];	/* 0: none */
};

static CUresult td_launch(CUfunction f, unsigned int gridDimX, unsigned int gridDimY,
			  unsigned int gridDimZ, unsigned int blockDimX, unsigned int blockDimY,
			  unsigned int blockDimZ, unsigned int sharedMemBytes, CUstream hStream,
			  void **kernelParams, void **extra, const struct td_launch_opts *o)
{
	struct td_func *fn;
	struct td_ctx *c;
	struct td_stream *s;
	const struct td_kernel *k;
	struct td_op *op;
	unsigned char *buf;
	CUresult res = td_check_init();
	int i;

	if (res != CUDA_SUCCESS)
		return res;
	td_lock();
	res = td_func_resolve_locked(f, &fn);
	td_unlock();
	if (res != CUDA_SUCCESS)
		return res;
	res = td_stream_resolve(hStream, &c, &s);
	if (res != CUDA_SUCCESS)
		return res;
	res = td_launch_check(fn, gridDimX, gridDimY, gridDimZ, blockDimX, blockDimY, blockDimZ,
			      sharedMemBytes);
	if (res != CUDA_SUCCESS)
		return res;
	k = fn->k;
	if ((kernelParams && extra) || (!kernelParams && !extra && k->nparams))
		return CUDA_ERROR_INVALID_VALUE;
	if (o && o->cluster[0]) {
		/* The grid is whole clusters of at most 8 blocks (portable size). */
		if (!o->cluster[1] || !o->cluster[2] ||
		    gridDimX % o->cluster[0] || gridDimY % o->cluster[1] ||
		    gridDimZ % o->cluster[2] ||
		    (uint64_t)o->cluster[0] * o->cluster[1] * o->cluster[2] > 8)
			return CUDA_ERROR_INVALID_CLUSTER_SIZE;
	}
	/* Every block of a cooperative grid must be resident at once. */
	if (o && o->cooperative &&
	    (uint64_t)gridDimX * gridDimY * gridDimZ >
	    (uint64_t)td_occ_blocks(fn, (int)(blockDimX * blockDimY * blockDimZ), sharedMemBytes) *
	    TD_SM_COUNT)
		return CUDA_ERROR_COOPERATIVE_LAUNCH_TOO_LARGE;
	op = td_op_new(td_run_launch);
	buf = op ? calloc(1, (size_t)k->param_bytes) : NULL;
	if (!buf) {
		td_op_free(op);
		return CUDA_ERROR_OUT_OF_MEMORY;
	}
	op->staging = buf;
	if (extra) {
		res = td_extra_params(extra, k, buf);
	} else {
		for (i = 0; i < k->nparams && res == CUDA_SUCCESS; i++) {
			if (!kernelParams[i])
				res = CUDA_ERROR_INVALID_VALUE;
			else
				memcpy(buf + k->off[i], kernelParams[i], k->size[i]);
		}
	}
	if (res != CUDA_SUCCESS || td.null_launch) {
		td_op_free(op);
		return res;
	}
	op->u.launch.k = k;
	op->u.launch.params = buf;
	op->u.launch.grid[0] = gridDimX;
	op->u.launch.grid[1] = gridDimY;
	op->u.launch.grid[2] = gridDimZ;
	op->u.launch.block[0] = blockDimX;
	op->u.launch.block[1] = blockDimY;
	op->u.launch.block[2] = blockDimZ;
	return td_submit(s, op, NULL, 0, NULL);
}

TD_EXPORT CUresult cuLaunchKernel(CUfunction f, unsigned int gridDimX, unsigned int gridDimY,
				  unsigned int gridDimZ, unsigned int blockDimX, unsigned int blockDimY,
				  unsigned int blockDimZ, unsigned int sharedMemBytes, CUstream hStream,
				  void **kernelParams, void **extra)
{
	return td_launch(f, gridDimX, gridDimY, gridDimZ, blockDimX, blockDimY, blockDimZ,
			 sharedMemBytes, hStream, kernelParams, extra, NULL);
}

TD_EXPORT CUresult cuLaunchCooperativeKernel(CUfunction f, unsigned int gridDimX,
					     unsigned int gridDimY, unsigned int gridDimZ,
					     unsigned int blockDimX, unsigned int blockDimY,
					     unsigned int blockDimZ, unsigned int sharedMemBytes,
					     CUstream hStream, void **kernelParams)
{
	struct td_launch_opts o = { .cooperative = 1 };

	return td_launch(f, gridDimX, gridDimY, gridDimZ, blockDimX, blockDimY, blockDimZ,
			 sharedMemBytes, hStream, kernelParams, NULL, &o);
}

/*
 * Attributes that change scheduling only are accepted and have no effect
 * on a CPU; those that name events (programmatic dependent launch) are not
 * part of the test driver.
 */
TD_EXPORT CUresult cuLaunchKernelEx(const CUlaunchConfig *config, CUfunction f, void **kernelParams,
				    void **extra)
{
	struct td_launch_opts o = { 0 };
	CUresult res = td_check_init();
	unsigned i;

	if (res != CUDA_SUCCESS)
		return res;
	if (!config || (config->numAttrs && !config->attrs))
		return CUDA_ERROR_INVALID_VALUE;
	for (i = 0; i < config->numAttrs; i++) {
		const CUlaunchAttribute *a = &config->attrs[i];

		switch (a->id) {
		case CU_LAUNCH_ATTRIBUTE_IGNORE:
		case CU_LAUNCH_ATTRIBUTE_ACCESS_POLICY_WINDOW:
		case CU_LAUNCH_ATTRIBUTE_SYNCHRONIZATION_POLICY:
		case CU_LAUNCH_ATTRIBUTE_CLUSTER_SCHEDULING_POLICY_PREFERENCE:
		case CU_LAUNCH_ATTRIBUTE_PROGRAMMATIC_STREAM_SERIALIZATION:
		case CU_LAUNCH_ATTRIBUTE_PRIORITY:
		case CU_LAUNCH_ATTRIBUTE_MEM_SYNC_DOMAIN_MAP:
		case CU_LAUNCH_ATTRIBUTE_MEM_SYNC_DOMAIN:
		case CU_LAUNCH_ATTRIBUTE_PREFERRED_CLUSTER_DIMENSION:
		case CU_LAUNCH_ATTRIBUTE_PREFERRED_SHARED_MEMORY_CARVEOUT:
		case CU_LAUNCH_ATTRIBUTE_NVLINK_UTIL_CENTRIC_SCHEDULING:
			break;
		case CU_LAUNCH_ATTRIBUTE_COOPERATIVE:
			o.cooperative = a->value.cooperative != 0;
			break;
		case CU_LAUNCH_ATTRIBUTE_CLUSTER_DIMENSION:
			o.cluster[0] = a->value.clusterDim.x;
			o.cluster[1] = a->value.clusterDim.y;
			o.cluster[2] = a->value.clusterDim.z;
			if (!o.cluster[0])
				return CUDA_ERROR_INVALID_CLUSTER_SIZE;
			break;
		case CU_LAUNCH_ATTRIBUTE_PROGRAMMATIC_EVENT:
		case CU_LAUNCH_ATTRIBUTE_LAUNCH_COMPLETION_EVENT:
		case CU_LAUNCH_ATTRIBUTE_DEVICE_UPDATABLE_KERNEL_NODE:
			return CUDA_ERROR_NOT_SUPPORTED;
		default:
			return CUDA_ERROR_INVALID_VALUE;
		}
	}
	return td_launch(f, config->gridDimX, config->gridDimY, config->gridDimZ, config->blockDimX,
			 config->blockDimY, config->blockDimZ, config->sharedMemBytes, config->hStream,
			 kernelParams, extra, &o);
}

/* ---- occupancy --------------------------------------------------------- */

#define TD_SM_THREADS		2048
#define TD_SM_BLOCKS		32
#define TD_SM_REGS		65536
#define TD_SM_SMEM		233472
#define TD_SMEM_RESERVED	1024	/* per block, taken by the system */

static int td_min_int(int a, int b)
{
	return a < b ? a : b;
}

/* Resident blocks of f per SM with bs threads and smem dynamic bytes. */
static int td_occ_blocks(const struct td_func *f, int bs, size_t smem)
{
	int warps, regs_per_warp, n;

	if (bs <= 0 || bs > 1024 || smem > (size_t)f->max_dyn_smem)
		return 0;
	warps = (bs + 31) / 32;
	/* Registers are allocated per warp in 256-register units. */
	regs_per_warp = (f->k->num_regs * 32 + 255) / 256 * 256;
	n = td_min_int(TD_SM_BLOCKS, TD_SM_THREADS / (warps * 32));
	n = td_min_int(n, TD_SM_REGS / (regs_per_warp * warps));
	n = td_min_int(n, (int)(TD_SM_SMEM / (smem + TD_SMEM_RESERVED)));
	return n;
}

static CUresult td_occ_func(CUfunction func, struct td_func **out)
{
	CUresult res = td_check_init();

	if (res != CUDA_SUCCESS)
		return res;
	td_lock();
	res = td_func_resolve_locked(func, out);
	td_unlock();
	return res;
}

TD_EXPORT CUresult cuOccupancyMaxActiveBlocksPerMultiprocessorWithFlags(int *numBlocks,
		CUfunction func, int blockSize, size_t dynamicSMemSize, unsigned int flags)
{
	struct td_func *f;
	CUresult res = td_occ_func(func, &f);

	if (res != CUDA_SUCCESS)
		return res;
	if (!numBlocks || blockSize <= 0 || (flags & ~(unsigned)CU_OCCUPANCY_DISABLE_CACHING_OVERRIDE))
		return CUDA_ERROR_INVALID_VALUE;
	*numBlocks = td_occ_blocks(f, blockSize, dynamicSMemSize);
	return CUDA_SUCCESS;
}

TD_EXPORT CUresult cuOccupancyMaxActiveBlocksPerMultiprocessor(int *numBlocks, CUfunction func,
							       int blockSize, size_t dynamicSMemSize)
{
	return cuOccupancyMaxActiveBlocksPerMultiprocessorWithFlags(numBlocks, func, blockSize,
								    dynamicSMemSize, 0);
}

/* The block size with the most resident threads; larger sizes win ties. */
TD_EXPORT CUresult cuOccupancyMaxPotentialBlockSizeWithFlags(int *minGridSize, int *blockSize,
		CUfunction func, CUoccupancyB2DSize blockSizeToDynamicSMemSize, size_t dynamicSMemSize,
		int blockSizeLimit, unsigned int flags)
{
	struct td_func *f;
	int limit, bs, best_bs = 0, best_blocks = 0;
	CUresult res = td_occ_func(func, &f);

	if (res != CUDA_SUCCESS)
		return res;
	if (!minGridSize || !blockSize || blockSizeLimit < 0 ||
	    (flags & ~(unsigned)CU_OCCUPANCY_DISABLE_CACHING_OVERRIDE))
		return CUDA_ERROR_INVALID_VALUE;
	limit = blockSizeLimit == 0 || blockSizeLimit > 1024 ? 1024 : blockSizeLimit;
	bs = limit >= 32 ? limit / 32 * 32 : limit;
	for (; bs > 0; bs = bs > 32 ? bs - 32 : 0) {
		size_t smem = blockSizeToDynamicSMemSize ? blockSizeToDynamicSMemSize(bs) :
							   dynamicSMemSize;
		int blocks = td_occ_blocks(f, bs, smem);

		if ((int64_t)blocks * bs > (int64_t)best_blocks * best_bs) {
			best_blocks = blocks;
			best_bs = bs;
		}
	}
	*blockSize = best_bs;
	*minGridSize = best_blocks * TD_SM_COUNT;
	return CUDA_SUCCESS;
}

TD_EXPORT CUresult cuOccupancyMaxPotentialBlockSize(int *minGridSize, int *blockSize,
		CUfunction func, CUoccupancyB2DSize blockSizeToDynamicSMemSize, size_t dynamicSMemSize,
		int blockSizeLimit)
{
	return cuOccupancyMaxPotentialBlockSizeWithFlags(minGridSize, blockSize, func,
			blockSizeToDynamicSMemSize, dynamicSMemSize, blockSizeLimit, 0);
}

TD_EXPORT CUresult cuOccupancyAvailableDynamicSMemPerBlock(size_t *dynamicSmemSize, CUfunction func,
							   int numBlocks, int blockSize)
{
	struct td_func *f;
	size_t per;
	CUresult res = td_occ_func(func, &f);

	if (res != CUDA_SUCCESS)
		return res;
	if (!dynamicSmemSize || numBlocks <= 0 || blockSize <= 0 || blockSize > 1024)
		return CUDA_ERROR_INVALID_VALUE;
	per = TD_SM_SMEM / (size_t)numBlocks;
	per = per > TD_SMEM_RESERVED ? per - TD_SMEM_RESERVED : 0;
	if (per > (size_t)f->max_dyn_smem)
		per = (size_t)f->max_dyn_smem;
	*dynamicSmemSize = per;
	return CUDA_SUCCESS;
}
