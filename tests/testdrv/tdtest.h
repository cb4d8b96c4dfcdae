/* SPDX-License-Identifier: MIT */
/*
 * Shared pieces of the CPU test driver's unit tests (test_core.c,
 * test_exec.c), which link against libvgpu-testdrv.so.  Each test after
 * the first works in a context of its own (ctx_setup) and must leave
 * nothing behind (ctx_teardown checks the live-object hooks).
 */
#ifndef VGPU_TESTDRV_TDTEST_H
#define VGPU_TESTDRV_TDTEST_H

#include "g_api.h"

int vgtd_live_allocations(void);
int vgtd_live_objects(void);

#define OK(x) assert_int_equal((x), CUDA_SUCCESS)
#define ERR(x, code) assert_int_equal((x), (code))

/* PTX-shaped text naming every test kernel and vg_counter. */
extern const char test_ptx[];
extern int base_allocs, base_objects;

double now_ms(void);
int ctx_setup(void **state);
int ctx_teardown(void **state);
CUmodule load_module(void);
CUfunction get_fn(CUmodule m, const char *name);
void launch_sleep(CUfunction f, unsigned usec, CUstream s);
void launch_fill(CUfunction f, CUdeviceptr p, unsigned v, int n, CUstream s);

#endif
