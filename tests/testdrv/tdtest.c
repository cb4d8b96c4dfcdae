/* SPDX-License-Identifier: MIT */
/* Helpers shared by the CPU test driver's unit tests: see tdtest.h. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <cmocka.h>

#include "tdtest.h"

/* Written for these tests: PTX-shaped text naming every test kernel. */
const char test_ptx[] =
	"// test module\n"
	".version 8.0\n"
	".target sm_90\n"
	".global .align 4 .u32 vg_counter;\n"
	".visible .entry vg_vadd(.param .u64 a, .param .u64 b, .param .u64 c, .param .u32 n)\n{ ret; }\n"
	".visible .entry vg_fill (.param .u64 p, .param .u32 v, .param .u32 n)\n{ ret; }\n"
	".visible .entry vg_scale(.param .u64 p, .param .f32 s, .param .u32 n)\n{ ret; }\n"
	".visible .entry vg_matmul(.param .u64 a, .param .u64 b, .param .u64 c, .param .u32 n)\n{ ret; }\n"
	".visible .entry vg_sleep(.param .u32 usec)\n{ ret; }\n"
	".visible .entry vg_fault(.param .u64 p)\n{ ret; }\n";

int base_allocs, base_objects;

double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* Each test: a fresh context on device 0, current; nothing left after. */
int ctx_setup(void **state)
{
	CUcontext c = NULL;

	base_allocs = vgtd_live_allocations();
	base_objects = vgtd_live_objects();
	if (cuCtxCreate_v2(&c, 0, 0) != CUDA_SUCCESS)
		return -1;
	*state = c;
	return 0;
}

int ctx_teardown(void **state)
{
	CUcontext c = *state;

	if (cuCtxDestroy_v2(c) != CUDA_SUCCESS)
		return -1;
	/* Destroying a context frees everything it owned. */
	if (vgtd_live_allocations() != base_allocs || vgtd_live_objects() != base_objects)
		return -1;
	return 0;
}

CUmodule load_module(void)
{
	CUmodule m = NULL;

	OK(cuModuleLoadData(&m, test_ptx));
	return m;
}

CUfunction get_fn(CUmodule m, const char *name)
{
	CUfunction f = NULL;

	OK(cuModuleGetFunction(&f, m, name));
	return f;
}

void launch_sleep(CUfunction f, unsigned usec, CUstream s)
{
	void *args[] = { &usec };

	OK(cuLaunchKernel(f, 1, 1, 1, 1, 1, 1, 0, s, args, NULL));
}

void launch_fill(CUfunction f, CUdeviceptr p, unsigned v, int n, CUstream s)
{
	void *args[] = { &p, &v, &n };

	OK(cuLaunchKernel(f, (unsigned)(n + 127) / 128, 1, 1, 128, 1, 1, 0, s, args, NULL));
}
