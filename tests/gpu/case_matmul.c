/* SPDX-License-Identifier: MIT */
/*
 * Matrix multiply, from the image named by argv[1]:
 *   ptx     cuModuleLoadData on PTX text (JIT on the host)
 *   cubin   cuModuleLoadData on an sm_90 ELF
 *   fatbin  cuModuleLoadFatBinary, then cuModuleLoadDataEx (with a JIT
 *           option) on the same fat binary
 * The result is checked against a CPU matmul.  Entries are small integers,
 * so every partial sum is exact in float and the check can be exact.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gcase.h"

#define GC_DIM 96

static int gc_matmul_run(const char *tag, CUmodule mod, const float *A,
			 const float *B, const float *ref)
{
	char key[64];
	size_t bytes = GC_DIM * GC_DIM * sizeof(float);
	CUdeviceptr dA = 0, dB = 0, dC = 0;
	CUfunction fn = NULL;
	float *C = calloc(GC_DIM * GC_DIM, sizeof(float));
	int n = GC_DIM, i, bad = 0;
	void *params[] = { &dA, &dB, &dC, &n };

	if (!C)
		gc_abort();
#define K(s) (snprintf(key, sizeof(key), "%s.%s", tag, s), key)
	gc_must(K("get_function"), cuModuleGetFunction(&fn, mod, "vg_matmul"));
	gc_must(K("alloc.A"), cuMemAlloc(&dA, bytes));
	gc_must(K("alloc.B"), cuMemAlloc(&dB, bytes));
	gc_must(K("alloc.C"), cuMemAlloc(&dC, bytes));
	gc_must(K("htod.A"), cuMemcpyHtoD(dA, A, bytes));
	gc_must(K("htod.B"), cuMemcpyHtoD(dB, B, bytes));
	gc_must(K("memset.C"), cuMemsetD32(dC, 0, GC_DIM * GC_DIM));
	gc_must(K("launch"), cuLaunchKernel(fn, gc_blocks(GC_DIM * GC_DIM), 1, 1,
					    256, 1, 1, 0, NULL, params, NULL));
	gc_must(K("synchronize"), cuCtxSynchronize());
	gc_must(K("dtoh.C"), cuMemcpyDtoH(C, dC, bytes));
	for (i = 0; i < GC_DIM * GC_DIM; i++)
		bad += C[i] != ref[i];
	gc_check(K("values"), bad == 0);
	gc_result(K("trace"), "%.1f", (double)C[0] + C[GC_DIM * GC_DIM - 1]);
	gc_expect(K("free.A"), cuMemFree(dA), CUDA_SUCCESS);
	gc_expect(K("free.B"), cuMemFree(dB), CUDA_SUCCESS);
	gc_expect(K("free.C"), cuMemFree(dC), CUDA_SUCCESS);
	gc_expect(K("module_unload"), cuModuleUnload(mod), CUDA_SUCCESS);
#undef K
	free(C);
	return bad;
}

int main(int argc, char **argv)
{
	const char *form = argc > 1 ? argv[1] : "ptx";
	float *A, *B, *ref;
	CUmodule mod = NULL;
	CUdevice dev;
	size_t len;
	void *img;
	int i, j, k;

	gc_begin("matmul");
	gc_info("form", "%s", form);
	A = malloc(GC_DIM * GC_DIM * sizeof(float));
	B = malloc(GC_DIM * GC_DIM * sizeof(float));
	ref = malloc(GC_DIM * GC_DIM * sizeof(float));
	if (!A || !B || !ref)
		gc_abort();
	for (i = 0; i < GC_DIM * GC_DIM; i++) {
		A[i] = (float)((i * 7 + 3) % 9) - 4.0f;
		B[i] = (float)((i * 5 + 1) % 7) - 3.0f;
	}
	for (i = 0; i < GC_DIM; i++)
		for (j = 0; j < GC_DIM; j++) {
			float acc = 0.0f;

			for (k = 0; k < GC_DIM; k++)
				acc += A[i * GC_DIM + k] * B[k * GC_DIM + j];
			ref[i * GC_DIM + j] = acc;
		}

	gc_setup(&dev);
	if (strcmp(form, "ptx") == 0 || strcmp(form, "cubin") == 0) {
		char file[32];

		snprintf(file, sizeof(file), "kernels.%s", form);
		img = gc_image_load(file, &len);
		gc_must("module_load_data", cuModuleLoadData(&mod, img));
		gc_matmul_run(form, mod, A, B, ref);
		free(img);
	} else if (strcmp(form, "fatbin") == 0) {
		CUjit_option opt[] = { CU_JIT_OPTIMIZATION_LEVEL };
		void *val[] = { (void *)(uintptr_t)3 };

		img = gc_image_load("kernels.fatbin", &len);
		gc_must("module_load_fat_binary", cuModuleLoadFatBinary(&mod, img));
		gc_matmul_run("fatbin", mod, A, B, ref);
		mod = NULL;
		gc_must("module_load_data_ex", cuModuleLoadDataEx(&mod, img, 1, opt, val));
		gc_matmul_run("fatbin_ex", mod, A, B, ref);
		free(img);
	} else {
		gc_fail("form", "unknown image form %s", form);
	}
	free(A);
	free(B);
	free(ref);
	return gc_end();
}
