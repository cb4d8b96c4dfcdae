/* SPDX-License-Identifier: MIT */
/*
 * Stream-ordered allocation and memory pools (issue 3, item 7): the default
 * pool, cuMemAllocAsync / cuMemFreeAsync, a pool of our own created with a
 * device location, its attributes set and read back, allocation from it,
 * trimming, destruction.
 */
#include <stdlib.h>
#include <string.h>

#include "gcase.h"

int main(void)
{
	CUdevice dev;
	CUstream s;
	CUmemoryPool defpool = NULL, pool = NULL;
	CUmemPoolProps props;
	CUmemAccessDesc acc;
	CUmemAccess_flags aflags = 0;
	CUmemLocation loc;
	CUdeviceptr a = 0, b = 0;
	cuuint64_t thresh = 1 << 20, got = 0, used = 0;
	unsigned v = 0, x = 0x1234;

	gc_begin("pool");
	gc_setup(&dev);
	gc_must("stream_create", cuStreamCreate(&s, CU_STREAM_NON_BLOCKING));
	gc_expect("default_pool", cuDeviceGetDefaultMemPool(&defpool, 0), CUDA_SUCCESS);
	gc_check("default_pool.nonnull", defpool != NULL);
	gc_must("alloc_async", cuMemAllocAsync(&a, 1 << 20, s));
	gc_must("memset_async", cuMemsetD32Async(a, x, 1, s));
	gc_must("dtoh_async", cuMemcpyDtoHAsync(&v, a, 4, s));
	gc_must("free_async", cuMemFreeAsync(a, s));
	gc_must("synchronize", cuStreamSynchronize(s));
	gc_check("alloc_async.value", v == x);

	memset(&props, 0, sizeof(props));
	props.allocType = CU_MEM_ALLOCATION_TYPE_PINNED;
	props.location.type = CU_MEM_LOCATION_TYPE_DEVICE;
	props.location.id = 0;
	gc_must("pool_create", cuMemPoolCreate(&pool, &props));
	gc_expect("pool_set_threshold", cuMemPoolSetAttribute(pool, CU_MEMPOOL_ATTR_RELEASE_THRESHOLD, &thresh),
		  CUDA_SUCCESS);
	gc_expect("pool_get_threshold", cuMemPoolGetAttribute(pool, CU_MEMPOOL_ATTR_RELEASE_THRESHOLD, &got),
		  CUDA_SUCCESS);
	gc_result("pool_threshold", "%llu", (unsigned long long)got);
	memset(&acc, 0, sizeof(acc));
	acc.location = props.location;
	acc.flags = CU_MEM_ACCESS_FLAGS_PROT_READWRITE;
	gc_expect("pool_set_access", cuMemPoolSetAccess(pool, &acc, 1), CUDA_SUCCESS);
	loc = props.location;
	gc_expect("pool_get_access", cuMemPoolGetAccess(&aflags, pool, &loc), CUDA_SUCCESS);
	gc_result("pool_access", "%d", (int)aflags);
	gc_must("alloc_from_pool", cuMemAllocFromPoolAsync(&b, 4096, pool, s));
	gc_must("memset_from_pool", cuMemsetD32Async(b, x + 1, 1, s));
	gc_must("dtoh_from_pool", cuMemcpyDtoHAsync(&v, b, 4, s));
	gc_must("synchronize.2", cuStreamSynchronize(s));
	gc_check("alloc_from_pool.value", v == x + 1);
	gc_expect("pool_used", cuMemPoolGetAttribute(pool, CU_MEMPOOL_ATTR_USED_MEM_CURRENT, &used), CUDA_SUCCESS);
	gc_check("pool_used.positive", used > 0);
	gc_must("free_from_pool", cuMemFreeAsync(b, s));
	gc_must("synchronize.3", cuStreamSynchronize(s));
	gc_expect("pool_trim", cuMemPoolTrimTo(pool, 0), CUDA_SUCCESS);
	gc_expect("pool_destroy", cuMemPoolDestroy(pool), CUDA_SUCCESS);
	gc_expect("stream_destroy", cuStreamDestroy(s), CUDA_SUCCESS);
	return gc_end();
}
