/* SPDX-License-Identifier: MIT */
/*
 * Shared helpers of the GPU end-to-end cases.  A case is a driver-API client
 * (it uses the toolkit's cuda.h and links libcuda.so.1 by name), so the same
 * binary runs natively on NVIDIA's driver and through vgpu.
 *
 * Output, one line each, on stdout:
 *   RESULT <key> <value>  compared exactly between the native and vgpu legs
 *   INFO <key> <value>    printed only: values that legitimately differ
 *                         between runs or between a GPU and the test driver
 *   FAIL <key> <why>      a self-check failed (the case then exits 1)
 *   PATH <file>           each libcuda* mapped in /proc/self/maps
 *   NVML <yes|no>         whether libnvidia-ml is mapped
 *
 * VGPU_SUITE_MODE=testdrv|gpu (default gpu) says which driver answers in the
 * end: under the CPU test driver, hardware-dependent values become INFO.
 */
#ifndef VGPU_GCASE_H
#define VGPU_GCASE_H

#include <stddef.h>
#include <cuda.h>

/* Start a case: line-buffer stdout, read the mode. */
void gc_begin(const char *name);
/* Print PATH/NVML, return the exit status (0, or 1 after any FAIL). */
int gc_end(void);
/* True under the CPU test driver. */
int gc_testdrv(void);

void gc_result(const char *key, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
void gc_info(const char *key, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* A hardware-dependent value: RESULT on a GPU, INFO under the test driver. */
void gc_hw(const char *key, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
void gc_fail(const char *key, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* Print RESULT key <code>; FAIL unless r == want.  Returns r. */
CUresult gc_expect(const char *key, CUresult r, CUresult want);
/* The same, but a mismatch also ends the case (exit 1): later steps need it. */
CUresult gc_must(const char *key, CUresult r);
/*
 * An error path: RESULT key <code>.  Under the test driver r must be want
 * exactly; on a GPU the native leg is the reference (the runner compares the
 * codes), so here r must only be an error.
 */
CUresult gc_expect_err(const char *key, CUresult r, CUresult want);
/* Check a condition; RESULT key ok|bad, FAIL when bad.  Returns cond. */
int gc_check(const char *key, int cond);

/* End the case now with status 1 (prints PATH/NVML first). */
void gc_abort(void) __attribute__((noreturn));

/* Read a kernel image (kernels.ptx/.cubin/.fatbin) from VGPU_GPU_KERNELS or
 * the build directory; PTX gets a NUL.  Ends the case when it cannot. */
void *gc_image_load(const char *file, size_t *len);

/* cuInit, device 0, its primary context retained and made current (what
 * the CUDA runtime does).  Ends the case when any step fails. */
CUcontext gc_setup(CUdevice *dev);
/* Load kernels.<ext> with cuModuleLoadData; ends the case on failure. */
CUmodule gc_module(const char *ext);
CUfunction gc_function(CUmodule mod, const char *name);

/* Blocks of 256 threads covering n elements. */
unsigned gc_blocks(unsigned n);

#endif
