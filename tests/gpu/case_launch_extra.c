/* SPDX-License-Identifier: MIT */
/*
 * Launches with `extra` (CU_LAUNCH_PARAM_BUFFER_POINTER/SIZE/END), the form
 * the CUDA runtime and some libraries use, next to kernelParams, and the
 * argument errors the driver checks at launch.
 */
#include <stdlib.h>
#include <string.h>

#include "gcase.h"

#define GC_N 4096

/* vg_scale's parameter buffer: float *p at 0, float s at 8, int n at 12. */
struct gc_scale_args {
	CUdeviceptr p;
	float s;
	int n;
};

int main(void)
{
	CUdevice dev;
	CUmodule mod;
	CUfunction scale, fill;
	CUdeviceptr d = 0, du = 0;
	struct gc_scale_args args;
	size_t args_size = sizeof(args);
	float *h = malloc(GC_N * sizeof(float));
	unsigned *hu = malloc(GC_N * sizeof(unsigned));
	unsigned v = 0xabcd1234u;
	int n = GC_N, i, bad = 0;
	void *extra[5];
	void *params[3];

	gc_begin("launch_extra");
	if (!h || !hu)
		gc_abort();
	gc_setup(&dev);
	mod = gc_module("ptx");
	scale = gc_function(mod, "vg_scale");
	fill = gc_function(mod, "vg_fill");
	gc_check("args.layout", sizeof(args) == 16);

	for (i = 0; i < GC_N; i++)
		h[i] = (float)(i % 1000);
	gc_must("alloc", cuMemAlloc(&d, GC_N * sizeof(float)));
	gc_must("htod", cuMemcpyHtoD(d, h, GC_N * sizeof(float)));

	memset(&args, 0, sizeof(args));
	args.p = d;
	args.s = 2.5f;
	args.n = GC_N;
	extra[0] = CU_LAUNCH_PARAM_BUFFER_POINTER;
	extra[1] = &args;
	extra[2] = CU_LAUNCH_PARAM_BUFFER_SIZE;
	extra[3] = &args_size;
	extra[4] = CU_LAUNCH_PARAM_END;
	gc_must("launch.extra", cuLaunchKernel(scale, gc_blocks(GC_N), 1, 1, 256, 1, 1,
					       0, NULL, NULL, extra));
	gc_must("synchronize", cuCtxSynchronize());
	gc_must("dtoh", cuMemcpyDtoH(h, d, GC_N * sizeof(float)));
	for (i = 0; i < GC_N; i++)
		bad += h[i] != (float)(i % 1000) * 2.5f;
	gc_check("extra.values", bad == 0);

	/* kernelParams on another kernel in the same module. */
	gc_must("alloc.u", cuMemAlloc(&du, GC_N * sizeof(unsigned)));
	params[0] = &du;
	params[1] = &v;
	params[2] = &n;
	gc_must("launch.params", cuLaunchKernel(fill, gc_blocks(GC_N), 1, 1, 256, 1, 1,
						0, NULL, params, NULL));
	gc_must("dtoh.u", cuMemcpyDtoH(hu, du, GC_N * sizeof(unsigned)));
	for (bad = 0, i = 0; i < GC_N; i++)
		bad += hu[i] != v;
	gc_check("params.values", bad == 0);

	/* Argument errors come back at launch, synchronously. */
	gc_expect_err("launch.both_forms", cuLaunchKernel(scale, 1, 1, 1, 32, 1, 1, 0,
							  NULL, params, extra),
		      CUDA_ERROR_INVALID_VALUE);
	gc_expect_err("launch.too_many_threads", cuLaunchKernel(fill, 1, 1, 1, 4096, 1, 1,
								0, NULL, params, NULL),
		      CUDA_ERROR_INVALID_VALUE);
	gc_expect("synchronize.after_errors", cuCtxSynchronize(), CUDA_SUCCESS);

	gc_expect("free", cuMemFree(d), CUDA_SUCCESS);
	gc_expect("free.u", cuMemFree(du), CUDA_SUCCESS);
	gc_expect("module_unload", cuModuleUnload(mod), CUDA_SUCCESS);
	free(h);
	free(hu);
	return gc_end();
}
