/* SPDX-License-Identifier: MIT */
/*
 * Occupancy queries, the callback form included: the callback is the
 * caller's code, so it must run in this process, with block sizes the driver
 * chose, and its answers must shape the result.
 */
#include "gcase.h"

static int gc_cb_calls;
static int gc_cb_bad;

/* 16 bytes of dynamic shared memory per thread of a block. */
static size_t gc_smem_per_block(int block_size)
{
	gc_cb_calls++;
	if (block_size <= 0 || block_size > 1024)
		gc_cb_bad++;
	return (size_t)block_size * 16;
}

int main(void)
{
	CUdevice dev;
	CUmodule mod;
	CUfunction fn;
	int blocks = -1, grid = -1, bs = -1, grid2 = -1, bs2 = -1;
	size_t avail = 0;

	gc_begin("occupancy");
	gc_setup(&dev);
	mod = gc_module("cubin");
	fn = gc_function(mod, "vg_matmul");

	gc_expect("max_active_blocks", cuOccupancyMaxActiveBlocksPerMultiprocessor(&blocks, fn,
										    256, 0),
		  CUDA_SUCCESS);
	gc_hw("max_active_blocks.value", "%d", blocks);
	gc_check("max_active_blocks.positive", blocks > 0);
	gc_expect("max_active_blocks_flags",
		  cuOccupancyMaxActiveBlocksPerMultiprocessorWithFlags(&blocks, fn, 128, 1024,
								       CU_OCCUPANCY_DEFAULT),
		  CUDA_SUCCESS);
	gc_hw("max_active_blocks_flags.value", "%d", blocks);

	gc_expect("potential_block_size",
		  cuOccupancyMaxPotentialBlockSize(&grid, &bs, fn, NULL, 0, 0), CUDA_SUCCESS);
	gc_hw("potential_block_size.value", "%d %d", grid, bs);
	gc_check("potential_block_size.sane", grid > 0 && bs > 0 && bs <= 1024);

	gc_expect("potential_block_size.callback",
		  cuOccupancyMaxPotentialBlockSizeWithFlags(&grid2, &bs2, fn, gc_smem_per_block,
							    0, 0, CU_OCCUPANCY_DEFAULT),
		  CUDA_SUCCESS);
	gc_hw("potential_block_size.callback.value", "%d %d", grid2, bs2);
	gc_info("potential_block_size.callback.calls", "%d", gc_cb_calls);
	gc_check("callback.called", gc_cb_calls > 0);
	gc_check("callback.args", gc_cb_bad == 0);
	gc_check("callback.sane", grid2 > 0 && bs2 > 0 && bs2 <= 1024);

	gc_cb_calls = 0;
	gc_expect("potential_block_size.callback_limit",
		  cuOccupancyMaxPotentialBlockSize(&grid2, &bs2, fn, gc_smem_per_block, 0, 256),
		  CUDA_SUCCESS);
	gc_hw("potential_block_size.callback_limit.value", "%d %d", grid2, bs2);
	gc_check("callback_limit.respected", bs2 > 0 && bs2 <= 256 && gc_cb_calls > 0);

	gc_expect("available_dynamic_smem",
		  cuOccupancyAvailableDynamicSMemPerBlock(&avail, fn, 2, 256), CUDA_SUCCESS);
	gc_hw("available_dynamic_smem.value", "%zu", avail);
	gc_expect("module_unload", cuModuleUnload(mod), CUDA_SUCCESS);
	return gc_end();
}
