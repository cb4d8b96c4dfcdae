/* SPDX-License-Identifier: MIT */
/*
 * Pointer attributes of device memory (also at an interior address) and of
 * pinned host memory, one by one and with cuPointerGetAttributes.
 */
#include <stdint.h>

#include "gcase.h"

int main(void)
{
	CUcontext ctx, actx = NULL;
	CUdeviceptr d = 0, dp = 0, start = 0;
	CUdevice dev;
	unsigned type = 0, managed = 9, mapped = 9;
	unsigned long long id1 = 0, id2 = 0;
	size_t size = 0;
	int ordinal = -1;
	void *h = NULL, *hp = NULL;
	CUpointer_attribute attrs[4] = {
		CU_POINTER_ATTRIBUTE_MEMORY_TYPE, CU_POINTER_ATTRIBUTE_CONTEXT,
		CU_POINTER_ATTRIBUTE_RANGE_SIZE, CU_POINTER_ATTRIBUTE_DEVICE_ORDINAL,
	};
	void *data[4];

	gc_begin("pointer");
	ctx = gc_setup(&dev);
	gc_must("alloc", cuMemAlloc(&d, 1 << 20));

	gc_expect("context", cuPointerGetAttribute(&actx, CU_POINTER_ATTRIBUTE_CONTEXT, d),
		  CUDA_SUCCESS);
	gc_check("context.same", actx == ctx);
	gc_expect("memory_type", cuPointerGetAttribute(&type, CU_POINTER_ATTRIBUTE_MEMORY_TYPE, d),
		  CUDA_SUCCESS);
	gc_result("memory_type.value", "%u", type);
	gc_check("memory_type.device", type == CU_MEMORYTYPE_DEVICE);
	gc_expect("device_pointer",
		  cuPointerGetAttribute(&dp, CU_POINTER_ATTRIBUTE_DEVICE_POINTER, d + 100),
		  CUDA_SUCCESS);
	gc_check("device_pointer.same", dp == d + 100);
	gc_expect("is_managed", cuPointerGetAttribute(&managed, CU_POINTER_ATTRIBUTE_IS_MANAGED, d),
		  CUDA_SUCCESS);
	gc_result("is_managed.value", "%u", managed);
	gc_expect("device_ordinal",
		  cuPointerGetAttribute(&ordinal, CU_POINTER_ATTRIBUTE_DEVICE_ORDINAL, d),
		  CUDA_SUCCESS);
	gc_result("device_ordinal.value", "%d", ordinal);
	gc_expect("range_start",
		  cuPointerGetAttribute(&start, CU_POINTER_ATTRIBUTE_RANGE_START_ADDR, d + 4096),
		  CUDA_SUCCESS);
	gc_check("range_start.base", start == d);
	gc_expect("range_size", cuPointerGetAttribute(&size, CU_POINTER_ATTRIBUTE_RANGE_SIZE, d + 4096),
		  CUDA_SUCCESS);
	gc_hw("range_size.value", "%zu", size);
	gc_check("range_size.covers", size >= (1 << 20));
	gc_expect("buffer_id", cuPointerGetAttribute(&id1, CU_POINTER_ATTRIBUTE_BUFFER_ID, d),
		  CUDA_SUCCESS);
	gc_expect("buffer_id.interior",
		  cuPointerGetAttribute(&id2, CU_POINTER_ATTRIBUTE_BUFFER_ID, d + 8),
		  CUDA_SUCCESS);
	gc_check("buffer_id.same", id1 == id2 && id1 != 0);
	gc_expect("mapped", cuPointerGetAttribute(&mapped, CU_POINTER_ATTRIBUTE_MAPPED, d),
		  CUDA_SUCCESS);
	gc_result("mapped.value", "%u", mapped);

	type = 0;
	actx = NULL;
	size = 0;
	ordinal = -1;
	data[0] = &type;
	data[1] = &actx;
	data[2] = &size;
	data[3] = &ordinal;
	gc_expect("get_attributes", cuPointerGetAttributes(4, attrs, data, d), CUDA_SUCCESS);
	gc_check("get_attributes.values", type == CU_MEMORYTYPE_DEVICE && actx == ctx &&
		 size >= (1 << 20) && ordinal == 0);

	/* Pinned host memory: a host pointer, and its device alias. */
	gc_must("host_alloc", cuMemHostAlloc(&h, 65536, CU_MEMHOSTALLOC_DEVICEMAP));
	type = 0;
	gc_expect("host.memory_type",
		  cuPointerGetAttribute(&type, CU_POINTER_ATTRIBUTE_MEMORY_TYPE,
					(CUdeviceptr)(uintptr_t)h), CUDA_SUCCESS);
	gc_check("host.memory_type.host", type == CU_MEMORYTYPE_HOST);
	gc_expect("host.host_pointer",
		  cuPointerGetAttribute(&hp, CU_POINTER_ATTRIBUTE_HOST_POINTER,
					(CUdeviceptr)(uintptr_t)h + 16), CUDA_SUCCESS);
	gc_check("host.host_pointer.same", hp == (char *)h + 16);

	/* Memory CUDA never saw. */
	type = 0;
	gc_expect_err("unknown.memory_type",
		      cuPointerGetAttribute(&type, CU_POINTER_ATTRIBUTE_MEMORY_TYPE,
					    (CUdeviceptr)(uintptr_t)&type),
		      CUDA_ERROR_INVALID_VALUE);
	/* The array form does not fail there: it reports "not CUDA memory". */
	type = 77;
	data[0] = &type;
	gc_expect("unknown.get_attributes",
		  cuPointerGetAttributes(1, attrs, data, (CUdeviceptr)(uintptr_t)&type),
		  CUDA_SUCCESS);
	gc_result("unknown.get_attributes.type", "%u", type);

	gc_expect("free_host", cuMemFreeHost(h), CUDA_SUCCESS);
	gc_expect("free", cuMemFree(d), CUDA_SUCCESS);
	return gc_end();
}
