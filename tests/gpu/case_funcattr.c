/* SPDX-License-Identifier: MIT */
/*
 * Function attributes (get and set), cache config, name, and parameter info:
 * the offsets and sizes the guest needs to pack kernelParams.
 */
#include <stdio.h>
#include <string.h>

#include "gcase.h"

struct gc_kernel {
	const char *name;
	int nparams;
	/* offset, size of each parameter, as the ABI lays them out */
	size_t layout[4][2];
};

static const struct gc_kernel gc_kernels[] = {
	{ "vg_vadd", 4, { { 0, 8 }, { 8, 8 }, { 16, 8 }, { 24, 4 } } },
	{ "vg_fill", 3, { { 0, 8 }, { 8, 4 }, { 12, 4 } } },
	{ "vg_scale", 3, { { 0, 8 }, { 8, 4 }, { 12, 4 } } },
	{ "vg_matmul", 4, { { 0, 8 }, { 8, 8 }, { 16, 8 }, { 24, 4 } } },
	{ "vg_sleep", 1, { { 0, 4 } } },
	{ "vg_fault", 1, { { 0, 8 } } },
};

static const struct {
	const char *name;
	CUfunction_attribute attr;
} gc_attrs[] = {
	{ "max_threads_per_block", CU_FUNC_ATTRIBUTE_MAX_THREADS_PER_BLOCK },
	{ "shared_size_bytes", CU_FUNC_ATTRIBUTE_SHARED_SIZE_BYTES },
	{ "const_size_bytes", CU_FUNC_ATTRIBUTE_CONST_SIZE_BYTES },
	{ "local_size_bytes", CU_FUNC_ATTRIBUTE_LOCAL_SIZE_BYTES },
	{ "num_regs", CU_FUNC_ATTRIBUTE_NUM_REGS },
	{ "ptx_version", CU_FUNC_ATTRIBUTE_PTX_VERSION },
	{ "binary_version", CU_FUNC_ATTRIBUTE_BINARY_VERSION },
	{ "cache_mode_ca", CU_FUNC_ATTRIBUTE_CACHE_MODE_CA },
	{ "max_dynamic_shared_size_bytes", CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES },
	{ "preferred_shared_memory_carveout", CU_FUNC_ATTRIBUTE_PREFERRED_SHARED_MEMORY_CARVEOUT },
};

static void gc_kernel_check(CUmodule mod, const struct gc_kernel *k)
{
	char key[128];
	CUfunction fn = NULL;
	const char *name = NULL;
	size_t off, size;
	unsigned a;
	int i, v;

	snprintf(key, sizeof(key), "%s.get_function", k->name);
	gc_must(key, cuModuleGetFunction(&fn, mod, k->name));
	snprintf(key, sizeof(key), "%s.get_name", k->name);
	gc_expect(key, cuFuncGetName(&name, fn), CUDA_SUCCESS);
	snprintf(key, sizeof(key), "%s.get_name.same", k->name);
	gc_check(key, name && strcmp(name, k->name) == 0);

	for (i = 0; i < k->nparams; i++) {
		off = size = 12345;
		snprintf(key, sizeof(key), "%s.param.%d", k->name, i);
		gc_expect(key, cuFuncGetParamInfo(fn, (size_t)i, &off, &size), CUDA_SUCCESS);
		snprintf(key, sizeof(key), "%s.param.%d.layout", k->name, i);
		gc_result(key, "%zu %zu", off, size);
		if (off != k->layout[i][0] || size != k->layout[i][1])
			gc_fail(key, "got %zu/%zu, want %zu/%zu", off, size,
				k->layout[i][0], k->layout[i][1]);
	}
	snprintf(key, sizeof(key), "%s.param.past_end", k->name);
	gc_expect_err(key, cuFuncGetParamInfo(fn, (size_t)k->nparams, &off, &size),
		      CUDA_ERROR_INVALID_VALUE);

	for (a = 0; a < sizeof(gc_attrs) / sizeof(gc_attrs[0]); a++) {
		v = -1;
		snprintf(key, sizeof(key), "%s.attr.%s", k->name, gc_attrs[a].name);
		gc_expect(key, cuFuncGetAttribute(&v, gc_attrs[a].attr, fn), CUDA_SUCCESS);
		snprintf(key, sizeof(key), "%s.attr.%s.value", k->name, gc_attrs[a].name);
		gc_hw(key, "%d", v);
	}
}

int main(void)
{
	CUdevice dev;
	CUmodule mod;
	CUfunction fn = NULL;
	unsigned i;
	int v = -1;

	gc_begin("funcattr");
	gc_setup(&dev);
	mod = gc_module("cubin");
	for (i = 0; i < sizeof(gc_kernels) / sizeof(gc_kernels[0]); i++)
		gc_kernel_check(mod, &gc_kernels[i]);

	fn = gc_function(mod, "vg_vadd");
	gc_expect("set_attribute.dyn_smem",
		  cuFuncSetAttribute(fn, CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES,
				     64 * 1024), CUDA_SUCCESS);
	gc_expect("get_attribute.dyn_smem",
		  cuFuncGetAttribute(&v, CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES, fn),
		  CUDA_SUCCESS);
	gc_check("dyn_smem.value", v == 64 * 1024);
	gc_expect("set_cache_config",
		  cuFuncSetCacheConfig(fn, CU_FUNC_CACHE_PREFER_SHARED), CUDA_SUCCESS);
	gc_expect_err("get_attribute.bad",
		      cuFuncGetAttribute(&v, (CUfunction_attribute)0x7fff, fn),
		      CUDA_ERROR_INVALID_VALUE);
	gc_expect("module_unload", cuModuleUnload(mod), CUDA_SUCCESS);
	return gc_end();
}
