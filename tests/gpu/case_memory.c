/* SPDX-License-Identifier: MIT */
/*
 * Device and host memory: alloc/free, info, pitch, address range, and the
 * pinned host allocations (cuMemAllocHost, cuMemHostAlloc with flags, the
 * device pointer of a mapped allocation), used for real copies.
 */
#include <stdint.h>
#include <string.h>

#include "gcase.h"

#define GC_BYTES (3u << 20)

int main(void)
{
	CUdevice dev;
	CUdeviceptr d = 0, base = 0, pitched = 0, mapped = 0;
	size_t freeb = 0, total = 0, freeb2 = 0, pitch = 0, range = 0;
	unsigned char *h1 = NULL, *h2 = NULL;
	unsigned flags = 0;
	int i, bad = 0;

	gc_begin("memory");
	gc_setup(&dev);

	gc_expect("get_info", cuMemGetInfo(&freeb, &total), CUDA_SUCCESS);
	gc_info("get_info.value", "%zu %zu", freeb, total);
	gc_check("get_info.sane", freeb > 0 && freeb <= total);

	gc_must("alloc", cuMemAlloc(&d, GC_BYTES));
	gc_check("alloc.nonnull", d != 0);
	gc_check("alloc.aligned", d % 256 == 0);
	gc_expect("get_info.after", cuMemGetInfo(&freeb2, &total), CUDA_SUCCESS);
	gc_check("get_info.after.less", freeb2 < freeb);

	/* The range of an interior address is the whole allocation. */
	gc_expect("address_range", cuMemGetAddressRange(&base, &range, d + 4096),
		  CUDA_SUCCESS);
	gc_check("address_range.base", base == d);
	gc_check("address_range.size", range >= GC_BYTES);
	gc_hw("address_range.size.value", "%zu", range);
	gc_expect_err("address_range.unknown",
		      cuMemGetAddressRange(&base, &range, (CUdeviceptr)0x10),
		      CUDA_ERROR_NOT_FOUND);

	gc_expect_err("alloc.zero", cuMemAlloc(&base, 0), CUDA_ERROR_INVALID_VALUE);

	gc_expect("alloc_pitch", cuMemAllocPitch(&pitched, &pitch, 1000, 37, 4),
		  CUDA_SUCCESS);
	gc_check("alloc_pitch.pitch", pitch >= 1000);
	gc_hw("alloc_pitch.pitch.value", "%zu", pitch);
	gc_expect_err("alloc_pitch.bad_elem", cuMemAllocPitch(&base, &pitch, 1000, 37, 3),
		      CUDA_ERROR_INVALID_VALUE);

	/* Pinned host memory, both entry points, round-tripped through d. */
	gc_must("alloc_host", cuMemAllocHost((void **)&h1, 1 << 20));
	gc_must("host_alloc", cuMemHostAlloc((void **)&h2, 1 << 20,
					     CU_MEMHOSTALLOC_PORTABLE |
					     CU_MEMHOSTALLOC_DEVICEMAP));
	gc_expect("host_get_flags", cuMemHostGetFlags(&flags, h2), CUDA_SUCCESS);
	gc_result("host_get_flags.value", "%u", flags);
	gc_check("host_get_flags.devicemap", (flags & CU_MEMHOSTALLOC_DEVICEMAP) != 0);
	gc_expect("host_get_device_pointer", cuMemHostGetDevicePointer(&mapped, h2, 0),
		  CUDA_SUCCESS);
	gc_check("host_get_device_pointer.nonnull", mapped != 0);

	for (i = 0; i < (1 << 20); i++)
		h1[i] = (unsigned char)(i * 31 + 7);
	memset(h2, 0, 1 << 20);
	gc_must("htod.pinned", cuMemcpyHtoD(d, h1, 1 << 20));
	gc_must("dtoh.pinned", cuMemcpyDtoH(h2, d, 1 << 20));
	gc_check("pinned.roundtrip", memcmp(h1, h2, 1 << 20) == 0);

	/* The device sees the mapped allocation: copy device -> mapped. */
	gc_must("memset.d", cuMemsetD8(d, 0x5c, 4096));
	gc_must("dtod.to_mapped", cuMemcpyDtoD(mapped, d, 4096));
	gc_must("synchronize", cuCtxSynchronize());
	for (i = 0; i < 4096; i++)
		bad += h2[i] != 0x5c;
	gc_check("mapped.values", bad == 0);

	gc_expect("free_host.1", cuMemFreeHost(h1), CUDA_SUCCESS);
	gc_expect("free_host.2", cuMemFreeHost(h2), CUDA_SUCCESS);
	gc_expect("free.pitched", cuMemFree(pitched), CUDA_SUCCESS);
	gc_expect("free", cuMemFree(d), CUDA_SUCCESS);
	gc_expect("get_info.end", cuMemGetInfo(&freeb2, &total), CUDA_SUCCESS);
	gc_info("get_info.end.value", "%zu %zu", freeb2, total);
	return gc_end();
}
