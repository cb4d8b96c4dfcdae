/* SPDX-License-Identifier: MIT */
/*
 * Virtual memory management as llama.cpp uses it (issue 3, item 6): reserve
 * a large range, create physical chunks on device 0, map them, set access,
 * use the addresses in a kernel and in copies, unmap and release.
 */
#include <stdlib.h>
#include <string.h>

#include "gcase.h"

int main(void)
{
	CUdevice dev;
	CUmodule mod;
	CUfunction fill;
	CUmemAllocationProp prop;
	CUmemAccessDesc acc;
	CUmemGenericAllocationHandle hnd[2];
	CUdeviceptr base = 0;
	size_t gran = 0, reserve = (size_t)32 << 30, chunk;
	unsigned long long flags = 0;
	unsigned *h, v = 0x5a5a;
	int n, i, bad = 0;
	void *params[3];

	gc_begin("vmm");
	gc_setup(&dev);
	mod = gc_module("ptx");
	fill = gc_function(mod, "vg_fill");

	memset(&prop, 0, sizeof(prop));
	prop.type = CU_MEM_ALLOCATION_TYPE_PINNED;
	prop.location.type = CU_MEM_LOCATION_TYPE_DEVICE;
	prop.location.id = 0;
	gc_expect("granularity", cuMemGetAllocationGranularity(&gran, &prop, CU_MEM_ALLOC_GRANULARITY_RECOMMENDED),
		  CUDA_SUCCESS);
	gc_check("granularity.positive", gran > 0);
	chunk = gran;
	gc_must("address_reserve", cuMemAddressReserve(&base, reserve, 0, 0, 0));
	for (i = 0; i < 2; i++) {
		gc_must("create", cuMemCreate(&hnd[i], chunk, &prop, 0));
		gc_must("map", cuMemMap(base + (CUdeviceptr)i * chunk, chunk, 0, hnd[i], 0));
	}
	memset(&acc, 0, sizeof(acc));
	acc.location = prop.location;
	acc.flags = CU_MEM_ACCESS_FLAGS_PROT_READWRITE;
	gc_must("set_access", cuMemSetAccess(base, 2 * chunk, &acc, 1));
	gc_expect("get_access", cuMemGetAccess(&flags, &prop.location, base), CUDA_SUCCESS);
	gc_result("get_access.flags", "%llu", flags);

	n = (int)(2 * chunk / sizeof(unsigned));
	params[0] = &base;
	params[1] = &v;
	params[2] = &n;
	gc_must("launch", cuLaunchKernel(fill, gc_blocks((unsigned)n), 1, 1, 256, 1, 1, 0, NULL, params, NULL));
	gc_must("synchronize", cuCtxSynchronize());
	h = malloc(2 * chunk);
	if (!h)
		gc_abort();
	gc_must("dtoh", cuMemcpyDtoH(h, base, 2 * chunk));
	for (i = 0; i < n; i++)
		bad += h[i] != v;
	gc_check("values", bad == 0);

	for (i = 0; i < 2; i++)
		gc_expect("unmap", cuMemUnmap(base + (CUdeviceptr)i * chunk, chunk), CUDA_SUCCESS);
	for (i = 0; i < 2; i++)
		gc_expect("release", cuMemRelease(hnd[i]), CUDA_SUCCESS);
	gc_expect("address_free", cuMemAddressFree(base, reserve), CUDA_SUCCESS);
	free(h);
	return gc_end();
}
