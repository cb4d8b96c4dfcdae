/* SPDX-License-Identifier: MIT */
/* Vector add from PTX: load, launch with kernelParams, check c = a + b. */
#include <stdlib.h>

#include "gcase.h"

#define GC_N 100000

int main(void)
{
	CUdevice dev;
	CUmodule mod;
	CUfunction fn;
	CUdeviceptr da = 0, db = 0, dc = 0;
	float *a, *b, *c;
	int n = GC_N, i, bad = 0;
	size_t bytes = GC_N * sizeof(float);
	void *params[4];

	gc_begin("vadd");
	gc_setup(&dev);
	mod = gc_module("ptx");
	fn = gc_function(mod, "vg_vadd");

	a = malloc(bytes);
	b = malloc(bytes);
	c = calloc(GC_N, sizeof(float));
	if (!a || !b || !c)
		gc_abort();
	for (i = 0; i < n; i++) {
		a[i] = (float)i;
		b[i] = (float)(2 * i + 1);
	}
	gc_must("alloc.a", cuMemAlloc(&da, bytes));
	gc_must("alloc.b", cuMemAlloc(&db, bytes));
	gc_must("alloc.c", cuMemAlloc(&dc, bytes));
	gc_must("htod.a", cuMemcpyHtoD(da, a, bytes));
	gc_must("htod.b", cuMemcpyHtoD(db, b, bytes));
	params[0] = &da;
	params[1] = &db;
	params[2] = &dc;
	params[3] = &n;
	gc_must("launch", cuLaunchKernel(fn, gc_blocks(GC_N), 1, 1, 256, 1, 1, 0, NULL,
					 params, NULL));
	gc_must("synchronize", cuCtxSynchronize());
	gc_must("dtoh.c", cuMemcpyDtoH(c, dc, bytes));
	for (i = 0; i < n; i++)
		bad += c[i] != a[i] + b[i];
	gc_check("values", bad == 0);
	gc_result("c.last", "%.1f", (double)c[n - 1]);

	gc_expect("free.a", cuMemFree(da), CUDA_SUCCESS);
	gc_expect("free.b", cuMemFree(db), CUDA_SUCCESS);
	gc_expect("free.c", cuMemFree(dc), CUDA_SUCCESS);
	gc_expect("module_unload", cuModuleUnload(mod), CUDA_SUCCESS);
	free(a);
	free(b);
	free(c);
	return gc_end();
}
