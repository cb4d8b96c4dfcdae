/* SPDX-License-Identifier: MIT */
/*
 * An illegal address in a kernel: the launch itself succeeds (it is
 * asynchronous), the next synchronising call reports 700, and the error is
 * sticky: every later call on the context reports it again.  Alone in its
 * process because the context is lost afterwards.
 */
#include <stdint.h>

#include "gcase.h"

int main(void)
{
	CUdevice dev;
	CUmodule mod;
	CUfunction fault;
	CUdeviceptr d = 0, d2 = 0;
	CUstream s = NULL;
	unsigned v = 0;
	/* Near NULL: mapped by nothing, on the GPU or in any registry. */
	int *bad = (int *)(uintptr_t)0x40;
	void *args[] = { &bad };

	gc_begin("sticky");
	gc_setup(&dev);
	mod = gc_module("ptx");
	fault = gc_function(mod, "vg_fault");
	gc_must("alloc", cuMemAlloc(&d, 4096));
	gc_must("stream_create", cuStreamCreate(&s, CU_STREAM_NON_BLOCKING));

	gc_expect("launch.fault", cuLaunchKernel(fault, 1, 1, 1, 1, 1, 1, 0, s, args, NULL),
		  CUDA_SUCCESS);
	gc_expect("stream_synchronize", cuStreamSynchronize(s), CUDA_ERROR_ILLEGAL_ADDRESS);
	gc_expect("ctx_synchronize", cuCtxSynchronize(), CUDA_ERROR_ILLEGAL_ADDRESS);
	gc_expect("ctx_synchronize.again", cuCtxSynchronize(), CUDA_ERROR_ILLEGAL_ADDRESS);
	/* Later calls fail too; their exact codes are the native leg's. */
	gc_expect_err("alloc.after", cuMemAlloc(&d2, 4096), CUDA_ERROR_ILLEGAL_ADDRESS);
	gc_expect_err("dtoh.after", cuMemcpyDtoH(&v, d, sizeof(v)), CUDA_ERROR_ILLEGAL_ADDRESS);
	gc_expect_err("launch.after",
		      cuLaunchKernel(fault, 1, 1, 1, 1, 1, 1, 0, s, args, NULL),
		      CUDA_ERROR_ILLEGAL_ADDRESS);
	return gc_end();
}
