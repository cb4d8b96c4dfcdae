/* SPDX-License-Identifier: MIT */
/* cuModuleGetGlobal: find vg_counter, write it, read it back, and miss. */
#include "gcase.h"

int main(void)
{
	CUdevice dev;
	CUmodule mod;
	CUdeviceptr g = 0, g2 = 0;
	CUfunction fn = NULL;
	size_t size = 0;
	unsigned v = 0x13572468u, back = 0;

	gc_begin("global");
	gc_setup(&dev);
	mod = gc_module("cubin");
	gc_must("get_global", cuModuleGetGlobal(&g, &size, mod, "vg_counter"));
	gc_result("get_global.size", "%zu", size);
	gc_check("get_global.nonnull", g != 0);
	/* Both outputs are optional. */
	gc_expect("get_global.no_size", cuModuleGetGlobal(&g2, NULL, mod, "vg_counter"),
		  CUDA_SUCCESS);
	gc_check("get_global.same", g2 == g);
	gc_expect("get_global.no_ptr", cuModuleGetGlobal(NULL, &size, mod, "vg_counter"),
		  CUDA_SUCCESS);

	/* A module global starts zeroed. */
	gc_must("dtoh.initial", cuMemcpyDtoH(&back, g, sizeof(back)));
	gc_result("initial", "%u", back);
	gc_must("htod", cuMemcpyHtoD(g, &v, sizeof(v)));
	gc_must("dtoh", cuMemcpyDtoH(&back, g, sizeof(back)));
	gc_check("roundtrip", back == v);
	gc_must("memset", cuMemsetD32(g, 7, 1));
	gc_must("dtoh.memset", cuMemcpyDtoH(&back, g, sizeof(back)));
	gc_check("memset.value", back == 7);

	gc_expect_err("get_global.missing", cuModuleGetGlobal(&g2, &size, mod, "vg_nothing"),
		      CUDA_ERROR_NOT_FOUND);
	gc_expect_err("get_function.missing", cuModuleGetFunction(&fn, mod, "vg_nothing"),
		      CUDA_ERROR_NOT_FOUND);
	gc_expect("module_unload", cuModuleUnload(mod), CUDA_SUCCESS);
	return gc_end();
}
