/* SPDX-License-Identifier: MIT */
/*
 * Error paths that leave the context usable: invalid (NULL) handles, out of memory (1 TiB), bad frees, a missing kernel, a bad image,
 * null arguments.  Each is an exact CUresult; afterwards real work still runs.
 */
#include <stdlib.h>
#include <string.h>

#include "gcase.h"

int main(void)
{
	CUstream s = NULL;
	CUevent ev = NULL;
	CUdeviceptr d = 0, big = 0;
	CUmodule mod = NULL;
	CUdevice dev;
	unsigned char junk[256];
	unsigned back = 0, v = 42;

	gc_begin("errors");
	gc_setup(&dev);

	/*
	 * Invalid handles.  NVIDIA's driver may crash on a destroyed handle
	 * (it did on an H100 with driver 580), so the native comparison uses
	 * NULL handles; destroyed ones are checked where only vgpu runs.
	 */
	gc_expect_err("event.null.query", cuEventQuery(NULL), CUDA_ERROR_INVALID_HANDLE);
	gc_expect_err("event.null.record", cuEventRecord(NULL, NULL), CUDA_ERROR_INVALID_HANDLE);
	gc_expect_err("event.null.synchronize", cuEventSynchronize(NULL), CUDA_ERROR_INVALID_HANDLE);
	{
		CUfunction f = NULL;

		gc_expect_err("module.null.get_function", cuModuleGetFunction(&f, NULL, "vg_vadd"),
			      CUDA_ERROR_INVALID_HANDLE);
		gc_expect_err("launch.null_function",
			      cuLaunchKernel(NULL, 1, 1, 1, 1, 1, 1, 0, NULL, NULL, NULL),
			      CUDA_ERROR_INVALID_HANDLE);
	}
	if (gc_testdrv() || getenv("VGPU_SERVER")) {
		/* Informational: the native leg has no such lines to compare. */
		gc_info("stream_create", "%d", (int)cuStreamCreate(&s, CU_STREAM_NON_BLOCKING));
		gc_info("stream_destroy", "%d", (int)cuStreamDestroy(s));
		gc_info("stream.destroyed.synchronize", "%d", (int)cuStreamSynchronize(s));
		gc_info("event_create", "%d", (int)cuEventCreate(&ev, CU_EVENT_DEFAULT));
		gc_info("event_destroy", "%d", (int)cuEventDestroy(ev));
		gc_info("event.destroyed.query", "%d", (int)cuEventQuery(ev));
	}

	gc_expect_err("alloc.1tib", cuMemAlloc(&big, (size_t)1 << 40), CUDA_ERROR_OUT_OF_MEMORY);
	/* Out of memory is not sticky. */
	gc_must("alloc.after_oom", cuMemAlloc(&d, 4096));

	gc_expect_err("free.interior", cuMemFree(d + 256), CUDA_ERROR_INVALID_VALUE);
	gc_expect_err("free.unknown", cuMemFree((CUdeviceptr)0xdead0000ull),
		      CUDA_ERROR_INVALID_VALUE);
	gc_expect("free", cuMemFree(d), CUDA_SUCCESS);
	gc_expect_err("free.twice", cuMemFree(d), CUDA_ERROR_INVALID_VALUE);

	memset(junk, 0x5a, sizeof(junk));
	junk[sizeof(junk) - 1] = '\0';
	gc_expect_err("module_load.garbage", cuModuleLoadData(&mod, junk),
		      CUDA_ERROR_INVALID_IMAGE);
	gc_expect_err("alloc.null_out", cuMemAlloc(NULL, 4096), CUDA_ERROR_INVALID_VALUE);

	/* The context still works. */
	gc_must("alloc.final", cuMemAlloc(&d, 4096));
	gc_must("htod.final", cuMemcpyHtoD(d, &v, sizeof(v)));
	gc_must("dtoh.final", cuMemcpyDtoH(&back, d, sizeof(back)));
	gc_check("final.roundtrip", back == v);
	gc_expect("synchronize.final", cuCtxSynchronize(), CUDA_SUCCESS);
	gc_expect("free.final", cuMemFree(d), CUDA_SUCCESS);
	return gc_end();
}
