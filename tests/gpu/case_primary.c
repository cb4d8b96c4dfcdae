/* SPDX-License-Identifier: MIT */
/*
 * The primary context's lifecycle: state before and after retain, flags,
 * use, release, reset.  This is the context the CUDA runtime uses.
 */
#include "gcase.h"

int main(void)
{
	CUcontext pctx = NULL, again = NULL, cur = NULL;
	unsigned flags = 99;
	int active = -1;
	CUdevice dev = -1, cdev = -1;
	CUdeviceptr p = 0;

	gc_begin("primary");
	gc_must("init", cuInit(0));
	gc_must("device_get", cuDeviceGet(&dev, 0));

	gc_expect("state.initial", cuDevicePrimaryCtxGetState(dev, &flags, &active),
		  CUDA_SUCCESS);
	gc_result("state.initial.flags", "%u", flags);
	gc_result("state.initial.active", "%d", active);

	/* Flags may be set before the context exists: they apply on creation. */
	gc_expect("set_flags.inactive",
		  cuDevicePrimaryCtxSetFlags(dev, CU_CTX_SCHED_BLOCKING_SYNC), CUDA_SUCCESS);
	gc_must("retain", cuDevicePrimaryCtxRetain(&pctx, dev));
	gc_check("retain.nonnull", pctx != NULL);
	gc_expect("state.retained", cuDevicePrimaryCtxGetState(dev, &flags, &active),
		  CUDA_SUCCESS);
	gc_result("state.retained.flags", "%u", flags);
	gc_check("state.retained.active", active == 1);
	gc_check("state.retained.blocking_sync",
		 (flags & CU_CTX_SCHED_MASK) == CU_CTX_SCHED_BLOCKING_SYNC);

	/* A second retain gives the same context. */
	gc_must("retain.again", cuDevicePrimaryCtxRetain(&again, dev));
	gc_check("retain.same", again == pctx);
	gc_expect("release.again", cuDevicePrimaryCtxRelease(dev), CUDA_SUCCESS);

	/* Retain does not make it current. */
	gc_expect("get_current.none", cuCtxGetCurrent(&cur), CUDA_SUCCESS);
	gc_check("get_current.none.null", cur == NULL);
	gc_must("set_current", cuCtxSetCurrent(pctx));
	gc_expect("get_current", cuCtxGetCurrent(&cur), CUDA_SUCCESS);
	gc_check("get_current.same", cur == pctx);
	gc_expect("ctx_get_device", cuCtxGetDevice(&cdev), CUDA_SUCCESS);
	gc_check("ctx_get_device.same", cdev == dev);

	/*
	 * Setting the flags of an active primary context: older drivers said
	 * CUDA_ERROR_PRIMARY_CONTEXT_ACTIVE, newer ones accept; the native leg
	 * is the reference, so only the code and the state are recorded.
	 */
	gc_result("set_flags.active", "%d",
		  (int)cuDevicePrimaryCtxSetFlags(dev, CU_CTX_SCHED_SPIN));
	gc_expect("state.after_set", cuDevicePrimaryCtxGetState(dev, &flags, &active),
		  CUDA_SUCCESS);
	gc_result("state.after_set.flags", "%u", flags);

	gc_must("mem_alloc", cuMemAlloc(&p, 4096));
	gc_expect("mem_free", cuMemFree(p), CUDA_SUCCESS);
	gc_expect("synchronize", cuCtxSynchronize(), CUDA_SUCCESS);

	gc_expect("release", cuDevicePrimaryCtxRelease(dev), CUDA_SUCCESS);
	gc_expect("state.released", cuDevicePrimaryCtxGetState(dev, &flags, &active),
		  CUDA_SUCCESS);
	gc_check("state.released.inactive", active == 0);

	/* Reset destroys it (after another retain) and forgets the flags. */
	gc_must("retain.for_reset", cuDevicePrimaryCtxRetain(&again, dev));
	gc_expect("reset", cuDevicePrimaryCtxReset(dev), CUDA_SUCCESS);
	gc_expect("state.reset", cuDevicePrimaryCtxGetState(dev, &flags, &active),
		  CUDA_SUCCESS);
	gc_check("state.reset.inactive", active == 0);
	gc_result("state.reset.flags", "%u", flags);

	/* Releasing a primary context that is not retained. */
	gc_result("release.unretained", "%d", (int)cuDevicePrimaryCtxRelease(dev));
	gc_expect_err("state.bad_device", cuDevicePrimaryCtxGetState(9999, &flags, &active),
		      CUDA_ERROR_INVALID_DEVICE);
	return gc_end();
}
