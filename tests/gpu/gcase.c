/* SPDX-License-Identifier: MIT */
/* Shared helpers of the GPU end-to-end cases: see gcase.h. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gcase.h"
#include "pathproof.h"

#ifndef GC_KERNELS_DIR
#define GC_KERNELS_DIR "."
#endif

static int gc_failures;
static int gc_mode_testdrv;
static const char *gc_name = "?";

void gc_begin(const char *name)
{
	const char *mode = getenv("VGPU_SUITE_MODE");

	setvbuf(stdout, NULL, _IOLBF, 0);
	gc_name = name;
	gc_mode_testdrv = mode && strcmp(mode, "testdrv") == 0;
	gc_info("case", "%s mode=%s", name, gc_mode_testdrv ? "testdrv" : "gpu");
}

int gc_testdrv(void)
{
	return gc_mode_testdrv;
}

static void gc_vline(const char *tag, const char *key, const char *fmt, va_list ap)
{
	char buf[1024];

	vsnprintf(buf, sizeof(buf), fmt, ap);
	printf("%s %s %s\n", tag, key, buf);
}

void gc_result(const char *key, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	gc_vline("RESULT", key, fmt, ap);
	va_end(ap);
}

void gc_info(const char *key, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	gc_vline("INFO", key, fmt, ap);
	va_end(ap);
}

void gc_hw(const char *key, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	gc_vline(gc_mode_testdrv ? "INFO" : "RESULT", key, fmt, ap);
	va_end(ap);
}

void gc_fail(const char *key, const char *fmt, ...)
{
	va_list ap;

	gc_failures++;
	va_start(ap, fmt);
	gc_vline("FAIL", key, fmt, ap);
	va_end(ap);
}

CUresult gc_expect(const char *key, CUresult r, CUresult want)
{
	gc_result(key, "%d", (int)r);
	if (r != want)
		gc_fail(key, "got %d, want %d", (int)r, (int)want);
	return r;
}

CUresult gc_must(const char *key, CUresult r)
{
	if (gc_expect(key, r, CUDA_SUCCESS) != CUDA_SUCCESS)
		gc_abort();
	return r;
}

CUresult gc_expect_err(const char *key, CUresult r, CUresult want)
{
	gc_result(key, "%d", (int)r);
	if (gc_mode_testdrv && r != want)
		gc_fail(key, "got %d, want %d", (int)r, (int)want);
	else if (!gc_mode_testdrv && r == CUDA_SUCCESS)
		gc_fail(key, "got success, want an error (%d on the test driver)",
			(int)want);
	return r;
}

int gc_check(const char *key, int cond)
{
	gc_result(key, "%s", cond ? "ok" : "bad");
	if (!cond)
		gc_fail(key, "check failed");
	return cond;
}

int gc_end(void)
{
	if (vg_print_path_proof() < 0)
		gc_failures++;
	gc_info("failures", "%d", gc_failures);
	fflush(stdout);
	return gc_failures ? 1 : 0;
}

void gc_abort(void)
{
	gc_fail("abort", "case %s stopped after a failed required step", gc_name);
	gc_end();
	exit(1);
}

void *gc_image_load(const char *file, size_t *len)
{
	const char *dir = getenv("VGPU_GPU_KERNELS");
	char path[4096];
	char *buf = NULL;
	long size;
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir && *dir ? dir : GC_KERNELS_DIR, file);
	f = fopen(path, "rbe");
	if (!f) {
		gc_fail("image", "%s: %s", path, strerror(errno));
		gc_abort();
	}
	if (fseek(f, 0, SEEK_END) != 0 || (size = ftell(f)) <= 0 ||
	    fseek(f, 0, SEEK_SET) != 0)
		goto err;
	/* One extra NUL: cuModuleLoadData takes PTX as a C string. */
	buf = calloc(1, (size_t)size + 1);
	if (!buf || fread(buf, 1, (size_t)size, f) != (size_t)size)
		goto err;
	fclose(f);
	*len = (size_t)size;
	return buf;
err:
	gc_fail("image", "%s: cannot read", path);
	free(buf);
	fclose(f);
	gc_abort();
}

CUcontext gc_setup(CUdevice *dev)
{
	CUcontext ctx = NULL;

	gc_must("setup.init", cuInit(0));
	gc_must("setup.device_get", cuDeviceGet(dev, 0));
	gc_must("setup.primary_retain", cuDevicePrimaryCtxRetain(&ctx, *dev));
	gc_must("setup.set_current", cuCtxSetCurrent(ctx));
	return ctx;
}

CUmodule gc_module(const char *ext)
{
	char file[64];
	CUmodule mod = NULL;
	size_t len;
	void *img;

	snprintf(file, sizeof(file), "kernels.%s", ext);
	img = gc_image_load(file, &len);
	gc_must("setup.module_load", cuModuleLoadData(&mod, img));
	free(img);
	return mod;
}

CUfunction gc_function(CUmodule mod, const char *name)
{
	CUfunction fn = NULL;
	char key[96];

	snprintf(key, sizeof(key), "setup.get_function.%s", name);
	gc_must(key, cuModuleGetFunction(&fn, mod, name));
	return fn;
}

unsigned gc_blocks(unsigned n)
{
	return (n + 255) / 256;
}
