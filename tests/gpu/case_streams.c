/* SPDX-License-Identifier: MIT */
/*
 * Streams: create (flags, priority), query while busy (NOT_READY during
 * vg_sleep) and after, synchronize, wait on an event recorded in another
 * stream (the waiting stream's work must see the other stream's result),
 * flags, priority, context, destroy.
 */
#include "gcase.h"

#define GC_N 65536
/* Long enough that the queries below surely land while the kernel runs. */
#define GC_SLEEP_US 300000u

int main(void)
{
	CUstream s1 = NULL, s2 = NULL, sp = NULL;
	CUcontext ctx, sctx = NULL;
	CUevent ev = NULL;
	CUmodule mod;
	CUfunction sleepfn, fill;
	CUdeviceptr d = 0;
	CUdevice dev;
	unsigned *h = NULL;
	unsigned usec = GC_SLEEP_US, v = 0x600dcafeu, flags = 99;
	int n = GC_N, lo = 0, hi = 0, prio = 99, i, bad = 0;
	void *sleep_args[] = { &usec };
	void *fill_args[] = { &d, &v, &n };

	gc_begin("streams");
	ctx = gc_setup(&dev);
	/* Pinned: an async copy to pageable memory would block the caller. */
	gc_must("alloc_host", cuMemAllocHost((void **)&h, GC_N * sizeof(unsigned)));
	mod = gc_module("ptx");
	sleepfn = gc_function(mod, "vg_sleep");
	fill = gc_function(mod, "vg_fill");
	gc_must("alloc", cuMemAlloc(&d, GC_N * sizeof(unsigned)));
	gc_must("memset", cuMemsetD32(d, 0, GC_N));

	gc_must("create.non_blocking", cuStreamCreate(&s1, CU_STREAM_NON_BLOCKING));
	gc_must("create.default", cuStreamCreate(&s2, CU_STREAM_DEFAULT));
	gc_expect("get_flags.s1", cuStreamGetFlags(s1, &flags), CUDA_SUCCESS);
	gc_result("get_flags.s1.value", "%u", flags);
	gc_expect("get_flags.s2", cuStreamGetFlags(s2, &flags), CUDA_SUCCESS);
	gc_result("get_flags.s2.value", "%u", flags);
	gc_expect("get_ctx", cuStreamGetCtx(s1, &sctx), CUDA_SUCCESS);
	gc_check("get_ctx.same", sctx == ctx);

	/* Priorities: lower numbers are higher; the greatest is 'hi'. */
	gc_expect("priority_range", cuCtxGetStreamPriorityRange(&lo, &hi), CUDA_SUCCESS);
	gc_hw("priority_range.value", "%d %d", lo, hi);
	gc_must("create_with_priority", cuStreamCreateWithPriority(&sp, CU_STREAM_NON_BLOCKING,
								     hi));
	gc_expect("get_priority", cuStreamGetPriority(sp, &prio), CUDA_SUCCESS);
	gc_check("get_priority.value", prio == hi);
	gc_expect("get_priority.s1", cuStreamGetPriority(s1, &prio), CUDA_SUCCESS);
	gc_hw("get_priority.s1.value", "%d", prio);

	gc_expect("query.idle", cuStreamQuery(s1), CUDA_SUCCESS);
	gc_must("launch.sleep", cuLaunchKernel(sleepfn, 1, 1, 1, 1, 1, 1, 0, s1,
					       sleep_args, NULL));
	gc_expect("query.busy", cuStreamQuery(s1), CUDA_ERROR_NOT_READY);
	/* s1 is non-blocking: the legacy stream does not wait for it. */
	gc_expect("query.other", cuStreamQuery(sp), CUDA_SUCCESS);

	/* s1: sleep, then fill; s2 waits for the event, then copies. */
	gc_must("launch.fill", cuLaunchKernel(fill, gc_blocks(GC_N), 1, 1, 256, 1, 1, 0, s1,
					      fill_args, NULL));
	gc_must("event_create", cuEventCreate(&ev, CU_EVENT_DISABLE_TIMING));
	gc_must("event_record", cuEventRecord(ev, s1));
	gc_expect("wait_event", cuStreamWaitEvent(s2, ev, 0), CUDA_SUCCESS);
	gc_must("dtoh_async.s2", cuMemcpyDtoHAsync(h, d, GC_N * sizeof(unsigned), s2));
	gc_expect("query.s2.waiting", cuStreamQuery(s2), CUDA_ERROR_NOT_READY);
	gc_expect("synchronize.s2", cuStreamSynchronize(s2), CUDA_SUCCESS);
	for (i = 0; i < GC_N; i++)
		bad += h[i] != v;
	gc_check("wait_event.ordered", bad == 0);
	gc_expect("query.s1.done", cuStreamQuery(s1), CUDA_SUCCESS);
	gc_expect("synchronize.s1", cuStreamSynchronize(s1), CUDA_SUCCESS);
	gc_expect("query.s2.done", cuStreamQuery(s2), CUDA_SUCCESS);

	/* The legacy default stream and the per-thread one are accepted. */
	gc_expect("synchronize.legacy", cuStreamSynchronize(CU_STREAM_LEGACY), CUDA_SUCCESS);
	gc_expect("synchronize.per_thread", cuStreamSynchronize(CU_STREAM_PER_THREAD),
		  CUDA_SUCCESS);
	gc_expect("query.null", cuStreamQuery(NULL), CUDA_SUCCESS);

	gc_expect("event_destroy", cuEventDestroy(ev), CUDA_SUCCESS);
	gc_expect("destroy.s1", cuStreamDestroy(s1), CUDA_SUCCESS);
	gc_expect("destroy.s2", cuStreamDestroy(s2), CUDA_SUCCESS);
	gc_expect("destroy.sp", cuStreamDestroy(sp), CUDA_SUCCESS);
	gc_expect("free", cuMemFree(d), CUDA_SUCCESS);
	gc_expect("module_unload", cuModuleUnload(mod), CUDA_SUCCESS);
	gc_expect("free_host", cuMemFreeHost(h), CUDA_SUCCESS);
	return gc_end();
}
