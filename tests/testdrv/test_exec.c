/* SPDX-License-Identifier: MIT */
/*
 * CPU test driver, unit tests (2/2): modules, launches, libraries,
 * streams (asynchronous and legacy order), events, callbacks, the sticky
 * error of a faulting kernel, occupancy, and what a context takes with it.
 */
#include <elf.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "tdtest.h"

static void test_init(void **state)
{
	OK(cuInit(0));
}

/* ---- modules and launches ---------------------------------------------- */

/* A minimal ELF64 image with a symbol table: vg_fill (a function) only. */
static size_t make_elf(unsigned char *buf, size_t cap)
{
	static const char strtab[] = "\0vg_fill\0vg_counter\0";
	static const char shstr[] = "\0.symtab\0.strtab\0.shstrtab\0";
	Elf64_Ehdr *eh = (Elf64_Ehdr *)buf;
	Elf64_Sym sym[3];
	Elf64_Shdr sh[4];
	size_t off = sizeof(*eh);

	assert_true(cap > 1024);
	memset(buf, 0, cap);
	memset(sym, 0, sizeof(sym));
	memset(sh, 0, sizeof(sh));
	memcpy(eh->e_ident, ELFMAG, SELFMAG);
	eh->e_ident[EI_CLASS] = ELFCLASS64;
	eh->e_ident[EI_DATA] = ELFDATA2LSB;
	eh->e_ident[EI_VERSION] = EV_CURRENT;
	eh->e_type = ET_EXEC;
	eh->e_ehsize = sizeof(*eh);
	eh->e_shentsize = sizeof(Elf64_Shdr);
	eh->e_shnum = 4;
	eh->e_shstrndx = 3;
	sym[1].st_name = 1;
	sym[1].st_info = ELF64_ST_INFO(STB_GLOBAL, STT_FUNC);
	sym[2].st_name = 9;
	sym[2].st_info = ELF64_ST_INFO(STB_GLOBAL, STT_OBJECT);
	sh[1].sh_name = 1;
	sh[1].sh_type = SHT_SYMTAB;
	sh[1].sh_link = 2;
	sh[1].sh_entsize = sizeof(Elf64_Sym);
	sh[1].sh_offset = off;
	sh[1].sh_size = sizeof(sym);
	memcpy(buf + off, sym, sizeof(sym));
	off += sizeof(sym);
	sh[2].sh_name = 9;
	sh[2].sh_type = SHT_STRTAB;
	sh[2].sh_offset = off;
	sh[2].sh_size = sizeof(strtab);
	memcpy(buf + off, strtab, sizeof(strtab));
	off += sizeof(strtab);
	sh[3].sh_name = 17;
	sh[3].sh_type = SHT_STRTAB;
	sh[3].sh_offset = off;
	sh[3].sh_size = sizeof(shstr);
	memcpy(buf + off, shstr, sizeof(shstr));
	off += sizeof(shstr);
	off = (off + 7) & ~(size_t)7;
	eh->e_shoff = off;
	memcpy(buf + off, sh, sizeof(sh));
	return off + sizeof(sh);
}

static void test_modules(void **state)
{
	static const struct {
		const char *name;
		int n;
		size_t layout[4][2];
	} kernels[] = {
		{ "vg_vadd", 4, { { 0, 8 }, { 8, 8 }, { 16, 8 }, { 24, 4 } } },
		{ "vg_fill", 3, { { 0, 8 }, { 8, 4 }, { 12, 4 } } },
		{ "vg_scale", 3, { { 0, 8 }, { 8, 4 }, { 12, 4 } } },
		{ "vg_matmul", 4, { { 0, 8 }, { 8, 8 }, { 16, 8 }, { 24, 4 } } },
		{ "vg_sleep", 1, { { 0, 4 } } },
		{ "vg_fault", 1, { { 0, 8 } } },
	};
	unsigned char elf[2048], fat[256];
	struct {
		int magic, version;
		const void *data;
		void *filename;
	} wrapper;
	CUmodule m, m2;
	CUfunction f;
	CUdeviceptr g = 0;
	size_t gsize = 0, off, size;
	const char *name;
	unsigned k;
	int i, v;
	uint64_t fsize;

	m = load_module();
	for (k = 0; k < sizeof(kernels) / sizeof(kernels[0]); k++) {
		f = get_fn(m, kernels[k].name);
		OK(cuFuncGetName(&name, f));
		assert_string_equal(name, kernels[k].name);
		for (i = 0; i < kernels[k].n; i++) {
			OK(cuFuncGetParamInfo(f, (size_t)i, &off, &size));
			assert_int_equal(off, kernels[k].layout[i][0]);
			assert_int_equal(size, kernels[k].layout[i][1]);
		}
		ERR(cuFuncGetParamInfo(f, (size_t)kernels[k].n, &off, &size), CUDA_ERROR_INVALID_VALUE);
	}
	ERR(cuModuleGetFunction(&f, m, "vg_nothing"), CUDA_ERROR_NOT_FOUND);
	ERR(cuModuleGetFunction(&f, NULL, "vg_fill"), CUDA_ERROR_INVALID_HANDLE);
	OK(cuModuleGetGlobal_v2(&g, &gsize, m, "vg_counter"));
	assert_int_equal(gsize, 4);
	OK(cuMemsetD32_v2(g, 41, 1));
	OK(cuMemcpyDtoH_v2(&v, g, 4));
	assert_int_equal(v, 41);
	OK(cuModuleGetGlobal_v2(NULL, NULL, m, "vg_counter"));
	ERR(cuModuleGetGlobal_v2(&g, &gsize, m, "vg_nothing"), CUDA_ERROR_NOT_FOUND);

	f = get_fn(m, "vg_vadd");
	OK(cuFuncGetAttribute(&v, CU_FUNC_ATTRIBUTE_MAX_THREADS_PER_BLOCK, f));
	assert_int_equal(v, 1024);
	OK(cuFuncGetAttribute(&v, CU_FUNC_ATTRIBUTE_NUM_REGS, f));
	assert_true(v > 0);
	OK(cuFuncSetAttribute(f, CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES, 65536));
	OK(cuFuncGetAttribute(&v, CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES, f));
	assert_int_equal(v, 65536);
	ERR(cuFuncSetAttribute(f, CU_FUNC_ATTRIBUTE_NUM_REGS, 3), CUDA_ERROR_INVALID_VALUE);
	ERR(cuFuncGetAttribute(&v, (CUfunction_attribute)0x7fff, f), CUDA_ERROR_INVALID_VALUE);
	OK(cuFuncSetCacheConfig(f, CU_FUNC_CACHE_PREFER_SHARED));
	ERR(cuFuncSetCacheConfig(f, (CUfunc_cache)9), CUDA_ERROR_INVALID_VALUE);

	/* Images without any test kernel. */
	ERR(cuModuleLoadData(&m2, "// nothing here\n.entry other(\n"), CUDA_ERROR_INVALID_IMAGE);
	ERR(cuModuleLoadData(&m2, "vg_vadd without an entry"), CUDA_ERROR_INVALID_IMAGE);
	ERR(cuModuleLoadData(&m2, ".entry vg_vaddx("), CUDA_ERROR_INVALID_IMAGE);

	/* An ELF cubin: its symbol table decides. */
	make_elf(elf, sizeof(elf));
	OK(cuModuleLoadDataEx(&m2, elf, 0, NULL, NULL));
	get_fn(m2, "vg_fill");
	ERR(cuModuleGetFunction(&f, m2, "vg_vadd"), CUDA_ERROR_NOT_FOUND);
	OK(cuModuleGetGlobal_v2(&g, &gsize, m2, "vg_counter"));
	OK(cuModuleUnload(m2));

	/* A fatbin (header + payload naming vg_scale), bare and wrapped. */
	memset(fat, 0, sizeof(fat));
	fsize = 64;
	memcpy(fat, "\x50\xed\x55\xba\x01\x00\x10\x00", 8);
	memcpy(fat + 8, &fsize, 8);
	memcpy(fat + 40, ".text.vg_scale", 15);
	OK(cuModuleLoadFatBinary(&m2, fat));
	get_fn(m2, "vg_scale");
	OK(cuModuleUnload(m2));
	wrapper.magic = 0x466243b1;
	wrapper.version = 1;
	wrapper.data = fat;
	wrapper.filename = NULL;
	OK(cuModuleLoadFatBinary(&m2, &wrapper));
	get_fn(m2, "vg_scale");
	OK(cuModuleUnload(m2));
	/* The name past the fatbin's stated size does not count. */
	fsize = 8;
	memcpy(fat + 8, &fsize, 8);
	ERR(cuModuleLoadFatBinary(&m2, fat), CUDA_ERROR_INVALID_IMAGE);

	/* From a file. */
	{
		char path[] = "/tmp/vgtd-ptx-XXXXXX";
		int fd = mkstemp(path);

		assert_true(fd >= 0);
		assert_int_equal(write(fd, test_ptx, strlen(test_ptx)), (ssize_t)strlen(test_ptx));
		close(fd);
		OK(cuModuleLoad(&m2, path));
		unlink(path);
		get_fn(m2, "vg_matmul");
		OK(cuModuleUnload(m2));
		ERR(cuModuleLoad(&m2, path), CUDA_ERROR_FILE_NOT_FOUND);
	}

	OK(cuModuleUnload(m));
	ERR(cuModuleUnload(m), CUDA_ERROR_INVALID_HANDLE);
	/* Functions of an unloaded module are gone too. */
	ERR(cuFuncGetName(&name, f), CUDA_ERROR_INVALID_HANDLE);
}

static void test_launch(void **state)
{
	enum { N = 1000, M = 5 };
	float a[N], b[N], c[N], A[M * M], B[M * M], C[M * M];
	CUdeviceptr da, db, dc;
	CUmodule m = load_module();
	CUfunction vadd = get_fn(m, "vg_vadd"), scale = get_fn(m, "vg_scale");
	CUfunction fill = get_fn(m, "vg_fill"), mm = get_fn(m, "vg_matmul");
	int n = N, mn = M, i, j, k;
	unsigned char pbuf[16];
	size_t psize = sizeof(pbuf);
	float s = 2.5f;
	void *args[] = { &da, &db, &dc, &n };
	void *extra[] = {
		CU_LAUNCH_PARAM_BUFFER_POINTER, pbuf,
		CU_LAUNCH_PARAM_BUFFER_SIZE, &psize,
		CU_LAUNCH_PARAM_END,
	};

	for (i = 0; i < N; i++) {
		a[i] = (float)i;
		b[i] = (float)(2 * i + 1);
	}
	OK(cuMemAlloc_v2(&da, sizeof(a)));
	OK(cuMemAlloc_v2(&db, sizeof(b)));
	OK(cuMemAlloc_v2(&dc, sizeof(c)));
	OK(cuMemcpyHtoD_v2(da, a, sizeof(a)));
	OK(cuMemcpyHtoD_v2(db, b, sizeof(b)));
	OK(cuMemsetD32_v2(dc, 0, N));
	OK(cuLaunchKernel(vadd, (N + 255) / 256, 1, 1, 256, 1, 1, 0, NULL, args, NULL));
	OK(cuMemcpyDtoH_v2(c, dc, sizeof(c)));
	for (i = 0; i < N; i++)
		assert_true(c[i] == a[i] + b[i]);

	/* Fewer threads than elements: only the covered indices change. */
	OK(cuMemsetD32_v2(dc, 0, N));
	OK(cuLaunchKernel(vadd, 2, 1, 1, 100, 1, 1, 0, NULL, args, NULL));
	OK(cuMemcpyDtoH_v2(c, dc, sizeof(c)));
	assert_true(c[199] == a[199] + b[199]);
	assert_true(c[200] == 0.0f);

	/* vg_scale through `extra`: the caller's packed buffer. */
	memcpy(pbuf, &dc, 8);
	memcpy(pbuf + 8, &s, 4);
	memcpy(pbuf + 12, &n, 4);
	OK(cuLaunchKernel(scale, 4, 1, 1, 256, 1, 1, 0, NULL, NULL, extra));
	OK(cuMemcpyDtoH_v2(c, dc, sizeof(c)));
	assert_true(c[10] == (a[10] + b[10]) * 2.5f);
	assert_true(c[300] == 0.0f);
	psize = 8;
	ERR(cuLaunchKernel(scale, 4, 1, 1, 256, 1, 1, 0, NULL, NULL, extra), CUDA_ERROR_INVALID_VALUE);
	psize = sizeof(pbuf);

	ERR(cuLaunchKernel(scale, 1, 1, 1, 32, 1, 1, 0, NULL, args, extra), CUDA_ERROR_INVALID_VALUE);
	ERR(cuLaunchKernel(fill, 1, 1, 1, 4096, 1, 1, 0, NULL, args, NULL), CUDA_ERROR_INVALID_VALUE);
	ERR(cuLaunchKernel(fill, 1, 1, 1, 32, 32, 2, 0, NULL, args, NULL), CUDA_ERROR_INVALID_VALUE);
	ERR(cuLaunchKernel(fill, 0, 1, 1, 32, 1, 1, 0, NULL, args, NULL), CUDA_ERROR_INVALID_VALUE);
	ERR(cuLaunchKernel(fill, 1, 1, 1, 32, 1, 1, 100000, NULL, args, NULL),
	    CUDA_ERROR_INVALID_VALUE);
	ERR(cuLaunchKernel(fill, 1, 1, 1, 32, 1, 1, 0, NULL, NULL, NULL), CUDA_ERROR_INVALID_VALUE);
	ERR(cuLaunchKernel(NULL, 1, 1, 1, 1, 1, 1, 0, NULL, args, NULL), CUDA_ERROR_INVALID_HANDLE);
	ERR(cuLaunchKernel((CUfunction)&n, 1, 1, 1, 1, 1, 1, 0, NULL, args, NULL),
	    CUDA_ERROR_INVALID_HANDLE);

	/* Matrix multiply against the same computation here. */
	for (i = 0; i < M * M; i++) {
		A[i] = (float)(i % 7) - 3.0f;
		B[i] = (float)(i % 5) * 0.5f;
	}
	OK(cuMemcpyHtoD_v2(da, A, sizeof(A)));
	OK(cuMemcpyHtoD_v2(db, B, sizeof(B)));
	args[3] = &mn;
	OK(cuLaunchKernel(mm, 1, 1, 1, 64, 1, 1, 0, NULL, args, NULL));
	OK(cuMemcpyDtoH_v2(C, dc, sizeof(C)));
	for (i = 0; i < M; i++) {
		for (j = 0; j < M; j++) {
			float acc = 0.0f;

			for (k = 0; k < M; k++)
				acc += A[i * M + k] * B[k * M + j];
			assert_true(C[i * M + j] == acc);
		}
	}

	launch_fill(fill, da, 0xfeedu, 16, NULL);
	OK(cuMemcpyDtoH_v2(a, da, 64));
	assert_int_equal(((unsigned *)a)[15], 0xfeedu);
	OK(cuMemFree_v2(da));
	OK(cuMemFree_v2(db));
	OK(cuMemFree_v2(dc));
	OK(cuModuleUnload(m));
}

/* cuLaunchKernelEx with attributes, and cooperative launches. */
static void test_launch_ex(void **state)
{
	CUmodule m = load_module();
	CUfunction fill = get_fn(m, "vg_fill");
	CUlaunchAttribute attrs[2];
	CUlaunchConfig cfg;
	CUdeviceptr d;
	unsigned v = 0, val = 21;
	int n = 256;
	void *args[] = { &d, &val, &n };

	OK(cuMemAlloc_v2(&d, 1024));
	memset(&cfg, 0, sizeof(cfg));
	memset(attrs, 0, sizeof(attrs));
	cfg.gridDimX = 4;
	cfg.gridDimY = cfg.gridDimZ = 1;
	cfg.blockDimX = 64;
	cfg.blockDimY = cfg.blockDimZ = 1;
	attrs[0].id = CU_LAUNCH_ATTRIBUTE_PRIORITY;
	attrs[0].value.priority = -1;
	attrs[1].id = CU_LAUNCH_ATTRIBUTE_CLUSTER_DIMENSION;
	attrs[1].value.clusterDim.x = 2;
	attrs[1].value.clusterDim.y = 1;
	attrs[1].value.clusterDim.z = 1;
	cfg.attrs = attrs;
	cfg.numAttrs = 2;
	OK(cuLaunchKernelEx(&cfg, fill, args, NULL));
	OK(cuMemcpyDtoH_v2(&v, d + 1020, 4));
	assert_int_equal(v, 21);
	/* A grid that is not whole clusters. */
	attrs[1].value.clusterDim.x = 3;
	ERR(cuLaunchKernelEx(&cfg, fill, args, NULL), CUDA_ERROR_INVALID_CLUSTER_SIZE);
	attrs[1].id = (CUlaunchAttributeID)99;
	ERR(cuLaunchKernelEx(&cfg, fill, args, NULL), CUDA_ERROR_INVALID_VALUE);
	cfg.numAttrs = 0;
	ERR(cuLaunchKernelEx(NULL, fill, args, NULL), CUDA_ERROR_INVALID_VALUE);
	ERR(cuLaunchKernelEx(&cfg, NULL, args, NULL), CUDA_ERROR_INVALID_HANDLE);

	val = 22;
	OK(cuLaunchCooperativeKernel(fill, 4, 1, 1, 64, 1, 1, 0, NULL, args));
	OK(cuMemcpyDtoH_v2(&v, d, 4));
	assert_int_equal(v, 22);
	/* More blocks than can be resident at once (4 SMs). */
	ERR(cuLaunchCooperativeKernel(fill, 4096, 1, 1, 1024, 1, 1, 0, NULL, args),
	    CUDA_ERROR_COOPERATIVE_LAUNCH_TOO_LARGE);
	OK(cuMemFree_v2(d));
	OK(cuModuleUnload(m));
}

struct stress_arg {
	CUcontext ctx;
	CUfunction fill;
	CUdeviceptr d;
	unsigned value;
	int bad;
};

/* Many small launches, copies and syncs on a stream of this thread. */
static void *stress_thread(void *p)
{
	struct stress_arg *a = p;
	CUstream s;
	unsigned v;
	int i, n = 64;
	void *args[] = { &a->d, &v, &n };

	if (cuCtxSetCurrent(a->ctx) || cuStreamCreate(&s, 0))
		return (void *)1;
	for (i = 0; i < 200; i++) {
		unsigned back = 0;

		v = a->value + (unsigned)i;
		if (cuLaunchKernel(a->fill, 1, 1, 1, 64, 1, 1, 0, s, args, NULL) ||
		    cuMemcpyDtoHAsync_v2(&back, a->d + 252, 4, s) || cuStreamSynchronize(s) ||
		    back != v)
			a->bad++;
	}
	cuStreamDestroy_v2(s);
	return NULL;
}

static void test_threads(void **state)
{
	CUmodule m = load_module();
	struct stress_arg a[4];
	pthread_t th[4];
	int i;

	for (i = 0; i < 4; i++) {
		a[i].ctx = *state;
		a[i].fill = get_fn(m, "vg_fill");
		a[i].value = 1000u * (unsigned)(i + 1);
		a[i].bad = 0;
		OK(cuMemAlloc_v2(&a[i].d, 256));
		assert_int_equal(pthread_create(&th[i], NULL, stress_thread, &a[i]), 0);
	}
	for (i = 0; i < 4; i++) {
		void *ret = NULL;

		pthread_join(th[i], &ret);
		assert_null(ret);
		assert_int_equal(a[i].bad, 0);
		OK(cuMemFree_v2(a[i].d));
	}
	OK(cuCtxSynchronize());
	OK(cuModuleUnload(m));
}

/* Libraries: context-free kernels, usable wherever a function is. */
static void test_libraries(void **state)
{
	CUlibrary lib = NULL, back = NULL;
	CUkernel k = NULL, ks[8];
	CUfunction f = NULL, fs[8];
	CUmodule lm = NULL, fm = NULL;
	CUmoduleLoadingMode mode;
	CUdeviceptr d, g;
	const char *name = NULL;
	size_t off, size, gsize = 0;
	unsigned count = 0, v = 0, val = 77;
	int n = 4, a = 0;
	void *args[] = { &d, &val, &n };

	OK(cuModuleGetLoadingMode(&mode));
	assert_int_equal(mode, CU_MODULE_EAGER_LOADING);
	OK(cuLibraryLoadData(&lib, test_ptx, NULL, NULL, 0, NULL, NULL, 0));
	ERR(cuLibraryLoadData(&back, "no kernels", NULL, NULL, 0, NULL, NULL, 0),
	    CUDA_ERROR_INVALID_IMAGE);
	OK(cuLibraryGetKernelCount(&count, lib));
	assert_int_equal(count, 6);
	OK(cuLibraryEnumerateKernels(ks, 6, lib));
	OK(cuLibraryGetKernel(&k, lib, "vg_fill"));
	ERR(cuLibraryGetKernel(&k, lib, "vg_nothing"), CUDA_ERROR_NOT_FOUND);
	OK(cuLibraryGetKernel(&k, lib, "vg_fill"));
	OK(cuKernelGetName(&name, k));
	assert_string_equal(name, "vg_fill");
	OK(cuKernelGetParamInfo(k, 1, &off, &size));
	assert_int_equal(off, 8);
	assert_int_equal(size, 4);
	ERR(cuKernelGetParamInfo(k, 3, &off, &size), CUDA_ERROR_INVALID_VALUE);
	OK(cuKernelGetLibrary(&back, k));
	assert_ptr_equal(back, lib);
	OK(cuKernelSetAttribute(CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES, 1024, k, 1));
	OK(cuKernelGetAttribute(&a, CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES, k, 0));
	assert_int_equal(a, 1024);
	ERR(cuKernelGetAttribute(&a, CU_FUNC_ATTRIBUTE_NUM_REGS, k, 5), CUDA_ERROR_INVALID_DEVICE);
	OK(cuKernelGetFunction(&f, k));
	assert_true((void *)f != (void *)k);
	OK(cuFuncGetModule(&fm, f));
	OK(cuLibraryGetModule(&lm, lib));
	assert_ptr_equal(fm, lm);
	OK(cuModuleGetFunctionCount(&count, lm));
	assert_int_equal(count, 6);
	OK(cuModuleEnumerateFunctions(fs, 6, lm));
	/* A library's module is not unloaded on its own. */
	ERR(cuModuleUnload(lm), CUDA_ERROR_INVALID_HANDLE);

	/* The CUkernel launches as a function, as cudart does it. */
	OK(cuMemAlloc_v2(&d, 64));
	OK(cuMemsetD32_v2(d, 0, 16));
	OK(cuLaunchKernel((CUfunction)k, 1, 1, 1, 32, 1, 1, 0, NULL, args, NULL));
	OK(cuMemcpyDtoH_v2(&v, d + 12, 4));
	assert_int_equal(v, 77);
	val = 78;
	OK(cuLaunchKernel(f, 1, 1, 1, 32, 1, 1, 0, NULL, args, NULL));
	OK(cuMemcpyDtoH_v2(&v, d, 4));
	assert_int_equal(v, 78);

	/* Its global is memory of no context. */
	OK(cuLibraryGetGlobal(&g, &gsize, lib, "vg_counter"));
	assert_int_equal(gsize, 4);
	OK(cuMemsetD32_v2(g, 5, 1));
	OK(cuMemcpyDtoH_v2(&v, g, 4));
	assert_int_equal(v, 5);

	OK(cuLibraryUnload(lib));
	ERR(cuLibraryUnload(lib), CUDA_ERROR_INVALID_HANDLE);
	ERR(cuKernelGetName(&name, k), CUDA_ERROR_INVALID_HANDLE);
	ERR(cuLaunchKernel(f, 1, 1, 1, 32, 1, 1, 0, NULL, args, NULL), CUDA_ERROR_INVALID_HANDLE);
	ERR(cuMemcpyDtoH_v2(&v, g, 4), CUDA_ERROR_INVALID_VALUE);
	OK(cuMemFree_v2(d));
}

/* ---- streams, events, callbacks ---------------------------------------- */

static void test_stream_async(void **state)
{
	CUcontext c = *state, sc = NULL;
	CUmodule m = load_module();
	CUfunction sleep_fn = get_fn(m, "vg_sleep"), fill = get_fn(m, "vg_fill");
	CUstream s1, s2, sp, s3;
	CUdeviceptr d;
	unsigned *h, flags = 9;
	int prio = 9;
	double t0;

	OK(cuStreamCreate(&s1, CU_STREAM_NON_BLOCKING));
	OK(cuStreamCreate(&s2, CU_STREAM_NON_BLOCKING));
	OK(cuStreamCreateWithPriority(&sp, 0, -3));
	OK(cuStreamGetFlags(s1, &flags));
	assert_int_equal(flags, CU_STREAM_NON_BLOCKING);
	OK(cuStreamGetPriority(sp, &prio));
	assert_int_equal(prio, -3);
	OK(cuStreamCreateWithPriority(&s3, CU_STREAM_NON_BLOCKING, -100));
	OK(cuStreamGetPriority(s3, &prio));
	assert_int_equal(prio, -5);
	OK(cuStreamDestroy_v2(s3));
	OK(cuStreamGetCtx(s1, &sc));
	assert_ptr_equal(sc, c);
	ERR(cuStreamCreate(&s1, 0x10), CUDA_ERROR_INVALID_VALUE);

	OK(cuMemAlloc_v2(&d, 4096));
	OK(cuMemAllocHost_v2((void **)&h, 4096));
	h[0] = 0;
	OK(cuMemsetD32_v2(d, 1, 1024));
	OK(cuStreamQuery(s1));

	/* Sleep, then fill and copy back, all on s1: the call returns at once. */
	t0 = now_ms();
	launch_sleep(sleep_fn, 300000, s1);
	launch_fill(fill, d, 7, 1024, s1);
	OK(cuMemcpyDtoHAsync_v2(h, d, 4096, s1));
	assert_true(now_ms() - t0 < 150);
	ERR(cuStreamQuery(s1), CUDA_ERROR_NOT_READY);
	assert_int_equal(h[0], 0);
	/* Another stream is not held up by s1. */
	OK(cuMemsetD32Async(d + 4000, 3, 1, s2));
	OK(cuStreamSynchronize(s2));
	OK(cuStreamQuery(s2));
	assert_true(now_ms() - t0 < 200);
	ERR(cuStreamQuery(s1), CUDA_ERROR_NOT_READY);
	OK(cuStreamSynchronize(s1));
	assert_true(now_ms() - t0 >= 290);
	assert_int_equal(h[0], 7);
	assert_int_equal(h[999], 7);
	OK(cuStreamQuery(s1));

	OK(cuStreamSynchronize(CU_STREAM_LEGACY));
	OK(cuStreamSynchronize(CU_STREAM_PER_THREAD));
	OK(cuStreamQuery(NULL));

	OK(cuStreamDestroy_v2(s1));
	ERR(cuStreamSynchronize(s1), CUDA_ERROR_INVALID_HANDLE);
	ERR(cuStreamDestroy_v2(s1), CUDA_ERROR_INVALID_HANDLE);
	ERR(cuStreamQuery((CUstream)&prio), CUDA_ERROR_INVALID_HANDLE);
	OK(cuStreamDestroy_v2(s2));
	OK(cuStreamDestroy_v2(sp));
	OK(cuMemFreeHost(h));
	OK(cuMemFree_v2(d));
	OK(cuModuleUnload(m));
}

/* The legacy stream waits for blocking streams, not for non-blocking ones. */
static void test_legacy_stream(void **state)
{
	CUmodule m = load_module();
	CUfunction sleep_fn = get_fn(m, "vg_sleep"), fill = get_fn(m, "vg_fill");
	CUstream blocking, nonblocking;
	CUdeviceptr d;
	unsigned v = 0;
	double t0;

	OK(cuStreamCreate(&blocking, 0));
	OK(cuStreamCreate(&nonblocking, CU_STREAM_NON_BLOCKING));
	OK(cuMemAlloc_v2(&d, 4096));
	OK(cuMemsetD32_v2(d, 1, 1024));

	launch_sleep(sleep_fn, 200000, blocking);
	launch_fill(fill, d, 5, 1, blocking);
	/* A synchronous copy is on the legacy stream: it sees the fill. */
	OK(cuMemcpyDtoH_v2(&v, d, 4));
	assert_int_equal(v, 5);
	OK(cuStreamQuery(blocking));

	/* Work queued on the legacy stream holds up a later blocking-stream op. */
	launch_sleep(sleep_fn, 200000, NULL);
	launch_fill(fill, d, 6, 1, blocking);
	ERR(cuStreamQuery(blocking), CUDA_ERROR_NOT_READY);
	OK(cuStreamSynchronize(blocking));
	OK(cuMemcpyDtoH_v2(&v, d, 4));
	assert_int_equal(v, 6);

	/* A non-blocking stream's sleep does not hold the legacy stream. */
	t0 = now_ms();
	launch_sleep(sleep_fn, 400000, nonblocking);
	OK(cuMemsetD32_v2(d, 9, 1));
	OK(cuMemcpyDtoH_v2(&v, d, 4));
	assert_int_equal(v, 9);
	assert_true(now_ms() - t0 < 300);
	ERR(cuStreamQuery(nonblocking), CUDA_ERROR_NOT_READY);
	OK(cuCtxSynchronize());
	OK(cuStreamQuery(nonblocking));
	assert_true(now_ms() - t0 >= 390);

	OK(cuStreamDestroy_v2(blocking));
	OK(cuStreamDestroy_v2(nonblocking));
	OK(cuMemFree_v2(d));
	OK(cuModuleUnload(m));
}

static void test_events(void **state)
{
	CUmodule m = load_module();
	CUfunction sleep_fn = get_fn(m, "vg_sleep"), fill = get_fn(m, "vg_fill");
	CUevent a, b, nt, never;
	CUstream s1, s2;
	CUdeviceptr d;
	unsigned v = 0;
	float ms = -1.0f;

	OK(cuStreamCreate(&s1, CU_STREAM_NON_BLOCKING));
	OK(cuStreamCreate(&s2, CU_STREAM_NON_BLOCKING));
	OK(cuEventCreate(&a, CU_EVENT_DEFAULT));
	OK(cuEventCreate(&b, CU_EVENT_BLOCKING_SYNC));
	OK(cuEventCreate(&nt, CU_EVENT_DISABLE_TIMING));
	OK(cuEventCreate(&never, 0));
	ERR(cuEventCreate(&never, 0x40), CUDA_ERROR_INVALID_VALUE);
	ERR(cuEventCreate(&never, CU_EVENT_INTERPROCESS), CUDA_ERROR_INVALID_VALUE);
	OK(cuMemAlloc_v2(&d, 4096));
	OK(cuMemsetD32_v2(d, 0, 1));

	OK(cuEventQuery(never));
	OK(cuEventSynchronize(never));
	OK(cuEventRecord(a, s1));
	launch_sleep(sleep_fn, 200000, s1);
	OK(cuEventRecord(b, s1));
	OK(cuEventRecordWithFlags(nt, s1, CU_EVENT_RECORD_DEFAULT));
	ERR(cuEventQuery(b), CUDA_ERROR_NOT_READY);
	ERR(cuEventElapsedTime(&ms, a, b), CUDA_ERROR_NOT_READY);

	/* s2 waits for b: its fill comes after s1's sleep. */
	OK(cuStreamWaitEvent(s2, b, 0));
	launch_fill(fill, d, 11, 1, s2);
	ERR(cuStreamQuery(s2), CUDA_ERROR_NOT_READY);
	OK(cuStreamSynchronize(s2));
	OK(cuEventQuery(b));
	OK(cuMemcpyDtoH_v2(&v, d, 4));
	assert_int_equal(v, 11);

	OK(cuEventSynchronize(b));
	OK(cuEventSynchronize(nt));
	OK(cuEventElapsedTime(&ms, a, b));
	assert_true(ms >= 190.0f && ms < 5000.0f);
	OK(cuEventElapsedTime_v2(&ms, a, b));
	ERR(cuEventElapsedTime(&ms, a, nt), CUDA_ERROR_INVALID_HANDLE);
	ERR(cuEventElapsedTime(&ms, a, never), CUDA_ERROR_INVALID_HANDLE);
	ERR(cuEventElapsedTime(NULL, a, b), CUDA_ERROR_INVALID_VALUE);

	ERR(cuEventQuery(NULL), CUDA_ERROR_INVALID_HANDLE);
	ERR(cuEventRecord(NULL, NULL), CUDA_ERROR_INVALID_HANDLE);
	ERR(cuEventSynchronize(NULL), CUDA_ERROR_INVALID_HANDLE);
	ERR(cuEventQuery((CUevent)&v), CUDA_ERROR_INVALID_HANDLE);
	ERR(cuStreamWaitEvent(s2, (CUevent)&v, 0), CUDA_ERROR_INVALID_HANDLE);

	OK(cuEventRecord(a, NULL));
	OK(cuEventSynchronize(a));
	OK(cuEventDestroy_v2(a));
	ERR(cuEventQuery(a), CUDA_ERROR_INVALID_HANDLE);
	ERR(cuEventDestroy_v2(a), CUDA_ERROR_INVALID_HANDLE);
	OK(cuEventDestroy_v2(b));
	OK(cuEventDestroy_v2(nt));
	OK(cuEventDestroy_v2(never));
	OK(cuStreamDestroy_v2(s1));
	OK(cuStreamDestroy_v2(s2));
	OK(cuMemFree_v2(d));
	OK(cuModuleUnload(m));
}

struct cb_log {
	pthread_mutex_t lock;
	char order[16];
	int n;
	CUstream stream_seen;
	CUresult status_seen;
};

static void cb_note(struct cb_log *l, char what)
{
	pthread_mutex_lock(&l->lock);
	if (l->n < (int)sizeof(l->order) - 1)
		l->order[l->n++] = what;
	pthread_mutex_unlock(&l->lock);
}

static struct cb_log cb_log = { .lock = PTHREAD_MUTEX_INITIALIZER };

static void host_a(void *p)
{
	cb_note(p, 'A');
}

static void host_c(void *p)
{
	cb_note(p, 'C');
}

static void stream_cb(CUstream s, CUresult status, void *p)
{
	struct cb_log *l = p;

	l->stream_seen = s;
	l->status_seen = status;
	cb_note(l, 'B');
}

static void test_callbacks(void **state)
{
	CUmodule m = load_module();
	CUfunction sleep_fn = get_fn(m, "vg_sleep");
	CUstream s;

	OK(cuStreamCreate(&s, 0));
	cb_log.n = 0;
	cb_log.status_seen = CUDA_ERROR_UNKNOWN;
	launch_sleep(sleep_fn, 100000, s);
	OK(cuLaunchHostFunc(s, host_a, &cb_log));
	launch_sleep(sleep_fn, 50000, s);
	OK(cuStreamAddCallback(s, stream_cb, &cb_log, 0));
	OK(cuLaunchHostFunc(s, host_c, &cb_log));
	/* Nothing has run yet: the first sleep is still going. */
	assert_int_equal(cb_log.n, 0);
	OK(cuStreamSynchronize(s));
	cb_log.order[cb_log.n] = '\0';
	assert_string_equal(cb_log.order, "ABC");
	assert_ptr_equal(cb_log.stream_seen, s);
	assert_int_equal(cb_log.status_seen, CUDA_SUCCESS);
	ERR(cuLaunchHostFunc(s, NULL, NULL), CUDA_ERROR_INVALID_VALUE);
	ERR(cuStreamAddCallback(s, stream_cb, NULL, 1), CUDA_ERROR_INVALID_VALUE);
	/* On the legacy stream too. */
	cb_log.n = 0;
	OK(cuLaunchHostFunc(NULL, host_a, &cb_log));
	OK(cuCtxSynchronize());
	assert_int_equal(cb_log.n, 1);
	OK(cuStreamDestroy_v2(s));
	OK(cuModuleUnload(m));
}

/* A kernel writing outside every allocation: error 700, sticky. */
static void test_sticky(void **state)
{
	CUcontext c = *state, other = NULL;
	CUmodule m = load_module();
	CUfunction fault = get_fn(m, "vg_fault");
	int *bad = (int *)(uintptr_t)0x40;
	void *args[] = { &bad };
	CUdeviceptr d, d2, ok;
	CUstream s;
	unsigned v;

	OK(cuMemAlloc_v2(&d, 4096));
	OK(cuStreamCreate(&s, CU_STREAM_NON_BLOCKING));
	/* A good pointer first: no fault. */
	args[0] = &d;
	OK(cuLaunchKernel(fault, 1, 1, 1, 1, 1, 1, 0, s, args, NULL));
	OK(cuStreamSynchronize(s));
	OK(cuMemcpyDtoH_v2(&v, d, 4));
	assert_int_equal(v, 0x5a5a);
	args[0] = &bad;
	OK(cuLaunchKernel(fault, 1, 1, 1, 1, 1, 1, 0, s, args, NULL));
	ERR(cuStreamSynchronize(s), CUDA_ERROR_ILLEGAL_ADDRESS);
	ERR(cuCtxSynchronize(), CUDA_ERROR_ILLEGAL_ADDRESS);
	ERR(cuCtxSynchronize(), CUDA_ERROR_ILLEGAL_ADDRESS);
	ERR(cuMemAlloc_v2(&d2, 4096), CUDA_ERROR_ILLEGAL_ADDRESS);
	ERR(cuMemcpyDtoH_v2(&v, d, 4), CUDA_ERROR_ILLEGAL_ADDRESS);
	ERR(cuLaunchKernel(fault, 1, 1, 1, 1, 1, 1, 0, s, args, NULL), CUDA_ERROR_ILLEGAL_ADDRESS);
	ERR(cuStreamQuery(s), CUDA_ERROR_ILLEGAL_ADDRESS);

	/* Another context is not affected. */
	OK(cuCtxCreate_v2(&other, 0, 0));
	OK(cuMemAlloc_v2(&ok, 64));
	launch_fill(get_fn(load_module(), "vg_fill"), ok, 1, 16, NULL);
	OK(cuCtxSynchronize());
	OK(cuCtxDestroy_v2(other));
	/* Destroying the faulted context still works (teardown checks). */
	OK(cuCtxSetCurrent(c));
}

static void test_occupancy(void **state)
{
	CUmodule m = load_module();
	CUfunction f = get_fn(m, "vg_matmul");
	int blocks = -1, grid = -1, bs = -1;
	size_t avail = 0;

	OK(cuOccupancyMaxActiveBlocksPerMultiprocessor(&blocks, f, 256, 0));
	assert_true(blocks > 0 && blocks <= 32);
	OK(cuOccupancyMaxActiveBlocksPerMultiprocessorWithFlags(&blocks, f, 1024, 0,
								 CU_OCCUPANCY_DEFAULT));
	assert_true(blocks >= 1 && blocks <= 2);
	OK(cuOccupancyMaxActiveBlocksPerMultiprocessor(&blocks, f, 256, 1 << 20));
	assert_int_equal(blocks, 0);
	ERR(cuOccupancyMaxActiveBlocksPerMultiprocessor(NULL, f, 256, 0), CUDA_ERROR_INVALID_VALUE);
	OK(cuOccupancyMaxPotentialBlockSize(&grid, &bs, f, NULL, 0, 0));
	assert_true(grid > 0 && bs > 0 && bs <= 1024 && bs % 32 == 0);
	OK(cuOccupancyMaxPotentialBlockSize(&grid, &bs, f, NULL, 0, 100));
	assert_true(bs > 0 && bs <= 100);
	OK(cuOccupancyAvailableDynamicSMemPerBlock(&avail, f, 2, 256));
	assert_true(avail > 0 && avail <= 232448);
	ERR(cuOccupancyMaxPotentialBlockSize(&grid, &bs, (CUfunction)&grid, NULL, 0, 0),
	    CUDA_ERROR_INVALID_HANDLE);
	OK(cuModuleUnload(m));
}

static int occ_calls;

static size_t occ_smem(int block_size)
{
	occ_calls++;
	return (size_t)block_size * 64;
}

static void test_occupancy_callback(void **state)
{
	CUmodule m = load_module();
	CUfunction f = get_fn(m, "vg_vadd");
	int grid = -1, bs = -1;

	occ_calls = 0;
	OK(cuOccupancyMaxPotentialBlockSizeWithFlags(&grid, &bs, f, occ_smem, 0, 256, 0));
	assert_true(occ_calls > 0);
	assert_true(bs > 0 && bs <= 256);
	OK(cuModuleUnload(m));
}

/* Everything a context owns goes with it. */
static void test_ctx_destroy_frees(void **state)
{
	CUcontext c = NULL;
	CUdeviceptr d;
	CUstream s;
	CUevent e;
	CUmodule m;
	void *h;
	int allocs = vgtd_live_allocations(), objects = vgtd_live_objects();

	OK(cuCtxCreate_v2(&c, 0, 1));
	OK(cuMemAlloc_v2(&d, 1 << 20));
	OK(cuMemAllocHost_v2(&h, 4096));
	OK(cuStreamCreate(&s, 0));
	OK(cuEventCreate(&e, 0));
	m = load_module();	/* with vg_counter: one more allocation */
	OK(cuMemsetD8Async(d, 1, 1 << 20, s));
	OK(cuEventRecord(e, s));
	assert_int_equal(vgtd_live_allocations(), allocs + 3);
	assert_int_equal(vgtd_live_objects(), objects + 4);
	OK(cuCtxDestroy_v2(c));
	assert_int_equal(vgtd_live_allocations(), allocs);
	assert_int_equal(vgtd_live_objects(), objects);
	/* And its handles are dead. */
	OK(cuCtxSetCurrent(*state));
	ERR(cuStreamQuery(s), CUDA_ERROR_INVALID_HANDLE);
	ERR(cuEventQuery(e), CUDA_ERROR_INVALID_HANDLE);
	ERR(cuModuleUnload(m), CUDA_ERROR_INVALID_HANDLE);
	ERR(cuMemFree_v2(d), CUDA_ERROR_INVALID_VALUE);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_init),
		cmocka_unit_test_setup_teardown(test_modules, ctx_setup, ctx_teardown),
		cmocka_unit_test_setup_teardown(test_launch, ctx_setup, ctx_teardown),
		cmocka_unit_test_setup_teardown(test_launch_ex, ctx_setup, ctx_teardown),
		cmocka_unit_test_setup_teardown(test_threads, ctx_setup, ctx_teardown),
		cmocka_unit_test_setup_teardown(test_libraries, ctx_setup, ctx_teardown),
		cmocka_unit_test_setup_teardown(test_stream_async, ctx_setup, ctx_teardown),
		cmocka_unit_test_setup_teardown(test_legacy_stream, ctx_setup, ctx_teardown),
		cmocka_unit_test_setup_teardown(test_events, ctx_setup, ctx_teardown),
		cmocka_unit_test_setup_teardown(test_callbacks, ctx_setup, ctx_teardown),
		cmocka_unit_test_setup_teardown(test_sticky, ctx_setup, ctx_teardown),
		cmocka_unit_test_setup_teardown(test_occupancy, ctx_setup, ctx_teardown),
		cmocka_unit_test_setup_teardown(test_occupancy_callback, ctx_setup, ctx_teardown),
		cmocka_unit_test_setup_teardown(test_ctx_destroy_frees, ctx_setup, ctx_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
