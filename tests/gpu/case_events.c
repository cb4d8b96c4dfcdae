/* SPDX-License-Identifier: MIT */
/*
 * Events: create (default, disable-timing, blocking-sync), record around a
 * vg_sleep, query NOT_READY then SUCCESS, synchronize, elapsed time (about
 * the sleep), record with flags, the timing error, destroy.
 */
#include "gcase.h"

#define GC_SLEEP_US 200000u

int main(void)
{
	CUevent a = NULL, b = NULL, nt = NULL, bs = NULL;
	CUstream s = NULL;
	CUmodule mod;
	CUfunction sleepfn;
	CUdevice dev;
	unsigned usec = GC_SLEEP_US;
	void *args[] = { &usec };
	float ms = -1.0f;

	gc_begin("events");
	gc_setup(&dev);
	mod = gc_module("cubin");
	sleepfn = gc_function(mod, "vg_sleep");
	gc_must("stream_create", cuStreamCreate(&s, CU_STREAM_NON_BLOCKING));

	gc_must("create.default", cuEventCreate(&a, CU_EVENT_DEFAULT));
	gc_must("create.default.2", cuEventCreate(&b, CU_EVENT_DEFAULT));
	gc_must("create.disable_timing", cuEventCreate(&nt, CU_EVENT_DISABLE_TIMING));
	gc_must("create.blocking_sync", cuEventCreate(&bs, CU_EVENT_BLOCKING_SYNC));

	/* Never recorded: complete. */
	gc_expect("query.unrecorded", cuEventQuery(a), CUDA_SUCCESS);

	gc_expect("record.a", cuEventRecord(a, s), CUDA_SUCCESS);
	gc_must("launch.sleep", cuLaunchKernel(sleepfn, 1, 1, 1, 1, 1, 1, 0, s, args, NULL));
	gc_expect("record.b", cuEventRecord(b, s), CUDA_SUCCESS);
	gc_expect("record_with_flags.nt", cuEventRecordWithFlags(nt, s, CU_EVENT_RECORD_DEFAULT),
		  CUDA_SUCCESS);
	gc_expect("record.bs", cuEventRecord(bs, s), CUDA_SUCCESS);
	gc_expect("query.busy", cuEventQuery(b), CUDA_ERROR_NOT_READY);
	gc_expect("synchronize.b", cuEventSynchronize(b), CUDA_SUCCESS);
	gc_expect("query.done", cuEventQuery(b), CUDA_SUCCESS);
	gc_expect("synchronize.bs", cuEventSynchronize(bs), CUDA_SUCCESS);
	gc_expect("synchronize.nt", cuEventSynchronize(nt), CUDA_SUCCESS);

	gc_expect("elapsed", cuEventElapsedTime(&ms, a, b), CUDA_SUCCESS);
	gc_info("elapsed.ms", "%.3f", (double)ms);
	/* The kernel waited GC_SLEEP_US; allow for coarse timers, not for less. */
	gc_check("elapsed.covers_sleep", ms >= 0.9f * GC_SLEEP_US / 1000.0f && ms < 10000.0f);
	gc_expect_err("elapsed.disable_timing", cuEventElapsedTime(&ms, a, nt),
		      CUDA_ERROR_INVALID_HANDLE);

	gc_expect("destroy.a", cuEventDestroy(a), CUDA_SUCCESS);
	gc_expect("destroy.b", cuEventDestroy(b), CUDA_SUCCESS);
	gc_expect("destroy.nt", cuEventDestroy(nt), CUDA_SUCCESS);
	gc_expect("destroy.bs", cuEventDestroy(bs), CUDA_SUCCESS);
	gc_expect("stream_destroy", cuStreamDestroy(s), CUDA_SUCCESS);
	gc_expect("module_unload", cuModuleUnload(mod), CUDA_SUCCESS);
	return gc_end();
}
