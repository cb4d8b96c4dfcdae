/* SPDX-License-Identifier: MIT */
/*
 * Libraries (the context-independent loading API the CUDA runtime uses) and
 * their kernels.  A library's image is scanned like a module's; its
 * __device__ variable, if any, is memory of no context.
 */
#include <stdlib.h>
#include <string.h>

#include "td.h"

static CUresult td_lib_get(CUlibrary h, struct td_library **out)
{
	CUresult res = td_check_init();
	struct td_library *l;

	if (res != CUDA_SUCCESS)
		return res;
	td_lock();
	for (l = td.libs; l; l = l->next)
		if ((CUlibrary)l == h)
			break;
	td_unlock();
	if (!h || !l)
		return CUDA_ERROR_INVALID_HANDLE;
	*out = l;
	return CUDA_SUCCESS;
}

/* The kernel (index into td_kernels) of a live library, and the library. */
static CUresult td_kernel_get(CUkernel h, struct td_library **lib, int *index)
{
	CUresult res = td_check_init();
	struct td_library *l;
	int i;

	if (res != CUDA_SUCCESS)
		return res;
	td_lock();
	for (l = td.libs; l; l = l->next) {
		for (i = 0; i < TD_KERNEL_COUNT; i++) {
			if ((l->kmod.present & (1u << i)) && (CUkernel)&l->kmod.funcs[i] == h) {
				*lib = l;
				*index = i;
				td_unlock();
				return CUDA_SUCCESS;
			}
		}
	}
	td_unlock();
	return CUDA_ERROR_INVALID_HANDLE;
}

/* Library options and JIT options have no effect on a CPU. */
TD_EXPORT CUresult cuLibraryLoadData(CUlibrary *library, const void *code, CUjit_option *jitOptions,
				     void **jitOptionsValues, unsigned int numJitOptions,
				     CUlibraryOption *libraryOptions, void **libraryOptionValues,
				     unsigned int numLibraryOptions)
{
	CUresult res = td_check_init();
	struct td_library *l;
	struct td_alloc *a = NULL;
	unsigned present;
	int counter;

	if (res != CUDA_SUCCESS)
		return res;
	if (!library || !code || (numJitOptions && (!jitOptions || !jitOptionsValues)) ||
	    (numLibraryOptions && (!libraryOptions || !libraryOptionValues)))
		return CUDA_ERROR_INVALID_VALUE;
	res = td_image_scan(code, &present, &counter);
	if (res != CUDA_SUCCESS)
		return res;
	l = calloc(1, sizeof(*l));
	if (!l)
		return CUDA_ERROR_OUT_OF_MEMORY;
	if (counter) {
		res = td_alloc_device(NULL, 4, TD_ALLOC_GLOBAL, &a);
		if (res != CUDA_SUCCESS) {
			free(l);
			return res;
		}
	}
	l->magic = TD_MAGIC_LIB;
	td_module_init(&l->kmod, NULL, present, a);
	td_module_init(&l->fmod, NULL, present, a);
	td_lock();
	l->next = td.libs;
	td.libs = l;
	td.live_libraries++;
	td_unlock();
	*library = (CUlibrary)l;
	return CUDA_SUCCESS;
}

TD_EXPORT CUresult cuLibraryLoadFromFile(CUlibrary *library, const char *fileName,
					 CUjit_option *jitOptions, void **jitOptionsValues,
					 unsigned int numJitOptions, CUlibraryOption *libraryOptions,
					 void **libraryOptionValues, unsigned int numLibraryOptions)
{
	CUresult res = td_check_init();
	char *buf;

	if (res != CUDA_SUCCESS)
		return res;
	if (!fileName)
		return CUDA_ERROR_INVALID_VALUE;
	res = td_image_read(fileName, &buf);
	if (res != CUDA_SUCCESS)
		return res;
	res = cuLibraryLoadData(library, buf, jitOptions, jitOptionsValues, numJitOptions,
				libraryOptions, libraryOptionValues, numLibraryOptions);
	free(buf);
	return res;
}

TD_EXPORT CUresult cuLibraryUnload(CUlibrary library)
{
	struct td_library *l, **pp;
	CUresult res = td_lib_get(library, &l);

	if (res != CUDA_SUCCESS)
		return res;
	td_lock();
	for (pp = &td.libs; *pp; pp = &(*pp)->next) {
		if (*pp == l) {
			*pp = l->next;
			if (l->kmod.counter)
				td_alloc_free_locked(l->kmod.counter);
			l->kmod.counter = l->fmod.counter = NULL;
			l->magic = 0;
			l->next = td.dead_libs;
			td.dead_libs = l;
			td.live_libraries--;
			break;
		}
	}
	td_unlock();
	return CUDA_SUCCESS;
}

TD_EXPORT CUresult cuLibraryGetKernel(CUkernel *pKernel, CUlibrary library, const char *name)
{
	struct td_library *l;
	CUresult res = td_lib_get(library, &l);
	int i;

	if (res != CUDA_SUCCESS)
		return res;
	if (!pKernel || !name)
		return CUDA_ERROR_INVALID_VALUE;
	for (i = 0; i < TD_KERNEL_COUNT; i++) {
		if ((l->kmod.present & (1u << i)) && !strcmp(name, td_kernels[i].name)) {
			*pKernel = (CUkernel)&l->kmod.funcs[i];
			return CUDA_SUCCESS;
		}
	}
	return CUDA_ERROR_NOT_FOUND;
}

TD_EXPORT CUresult cuLibraryGetKernelCount(unsigned int *count, CUlibrary lib)
{
	struct td_library *l;
	CUresult res = td_lib_get(lib, &l);

	if (res != CUDA_SUCCESS)
		return res;
	if (!count)
		return CUDA_ERROR_INVALID_VALUE;
	*count = (unsigned)__builtin_popcount(l->kmod.present);
	return CUDA_SUCCESS;
}

TD_EXPORT CUresult cuLibraryEnumerateKernels(CUkernel *kernels, unsigned int numKernels, CUlibrary lib)
{
	struct td_library *l;
	CUresult res = td_lib_get(lib, &l);
	unsigned n = 0;
	int i;

	if (res != CUDA_SUCCESS)
		return res;
	if (!kernels)
		return CUDA_ERROR_INVALID_VALUE;
	for (i = 0; i < TD_KERNEL_COUNT && n < numKernels; i++)
		if (l->kmod.present & (1u << i))
			kernels[n++] = (CUkernel)&l->kmod.funcs[i];
	return CUDA_SUCCESS;
}

TD_EXPORT CUresult cuLibraryGetModule(CUmodule *pMod, CUlibrary library)
{
	struct td_library *l;
	CUresult res = td_lib_get(library, &l);

	if (res != CUDA_SUCCESS)
		return res;
	if (!pMod)
		return CUDA_ERROR_INVALID_VALUE;
	*pMod = (CUmodule)&l->fmod;
	return CUDA_SUCCESS;
}

TD_EXPORT CUresult cuLibraryGetGlobal(CUdeviceptr *dptr, size_t *bytes, CUlibrary library,
				      const char *name)
{
	struct td_library *l;
	CUresult res = td_lib_get(library, &l);

	if (res != CUDA_SUCCESS)
		return res;
	return cuModuleGetGlobal_v2(dptr, bytes, (CUmodule)&l->fmod, name);
}

/* The kernel's function in the current context (one per library here). */
TD_EXPORT CUresult cuKernelGetFunction(CUfunction *pFunc, CUkernel kernel)
{
	struct td_library *l;
	struct td_ctx *c;
	int i;
	CUresult res = td_kernel_get(kernel, &l, &i);

	if (res != CUDA_SUCCESS)
		return res;
	res = td_ctx_get(&c);
	if (res != CUDA_SUCCESS)
		return res;
	if (!pFunc)
		return CUDA_ERROR_INVALID_VALUE;
	*pFunc = (CUfunction)&l->fmod.funcs[i];
	return CUDA_SUCCESS;
}

TD_EXPORT CUresult cuKernelGetLibrary(CUlibrary *pLib, CUkernel kernel)
{
	struct td_library *l;
	int i;
	CUresult res = td_kernel_get(kernel, &l, &i);

	if (res != CUDA_SUCCESS)
		return res;
	if (!pLib)
		return CUDA_ERROR_INVALID_VALUE;
	*pLib = (CUlibrary)l;
	return CUDA_SUCCESS;
}

TD_EXPORT CUresult cuKernelGetName(const char **name, CUkernel hfunc)
{
	struct td_library *l;
	int i;
	CUresult res = td_kernel_get(hfunc, &l, &i);

	if (res != CUDA_SUCCESS)
		return res;
	return cuFuncGetName(name, (CUfunction)hfunc);
}

TD_EXPORT CUresult cuKernelGetParamInfo(CUkernel kernel, size_t paramIndex, size_t *paramOffset,
					size_t *paramSize)
{
	struct td_library *l;
	int i;
	CUresult res = td_kernel_get(kernel, &l, &i);

	if (res != CUDA_SUCCESS)
		return res;
	return cuFuncGetParamInfo((CUfunction)kernel, paramIndex, paramOffset, paramSize);
}

static CUresult td_kernel_dev(CUkernel kernel, CUdevice dev)
{
	struct td_library *l;
	int i;
	CUresult res = td_kernel_get(kernel, &l, &i);

	if (res != CUDA_SUCCESS)
		return res;
	if (dev < 0 || dev >= TD_DEV_COUNT)
		return CUDA_ERROR_INVALID_DEVICE;
	return CUDA_SUCCESS;
}

/* Attributes are kept per kernel, for every device alike. */
TD_EXPORT CUresult cuKernelGetAttribute(int *pi, CUfunction_attribute attrib, CUkernel kernel,
					CUdevice dev)
{
	CUresult res = td_kernel_dev(kernel, dev);

	if (res != CUDA_SUCCESS)
		return res;
	return cuFuncGetAttribute(pi, attrib, (CUfunction)kernel);
}

TD_EXPORT CUresult cuKernelSetAttribute(CUfunction_attribute attrib, int val, CUkernel kernel,
					CUdevice dev)
{
	CUresult res = td_kernel_dev(kernel, dev);

	if (res != CUDA_SUCCESS)
		return res;
	return cuFuncSetAttribute((CUfunction)kernel, attrib, val);
}

TD_EXPORT CUresult cuKernelSetCacheConfig(CUkernel kernel, CUfunc_cache config, CUdevice dev)
{
	CUresult res = td_kernel_dev(kernel, dev);

	if (res != CUDA_SUCCESS)
		return res;
	return cuFuncSetCacheConfig((CUfunction)kernel, config);
}
