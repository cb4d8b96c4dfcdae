/*
 * The worker: module and library images (plain, or a version-2 wrapper's
 * fatbins), function parameter layouts and names.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tp.h"
#include "vgpu/ops.h"
#include "worker.h"

/*
 * An image (libcuda/module.c put_image): a blob, u32 n, n blobs of a
 * version-2 wrapper's fatbins.  Returns what to hand the driver: an aligned
 * copy of the blob, or a wrapper of ours around copies.  The copies are kept
 * for the worker's life: with lazy loading the driver may read them later.
 */
#define WK_WRAPPER_FATBINS_MAX 256

struct wk_wrapper {
	uint32_t magic, version;
	const void *data;
	const void **list;
};

static void *copy_aligned(const void *p, uint32_t n)
{
	size_t cap = ((size_t)n + 64) & ~(size_t)63;
	void *c = aligned_alloc(64, cap);

	if (c) {
		memcpy(c, p, n);
		memset((char *)c + n, 0, cap - n);
	}
	return c;
}

/* is_wrapper: what get_image said it built (never judged from the bytes, which the client chose). */
static void free_image(const void *img, int is_wrapper)
{
	const struct wk_wrapper *w = img;
	size_t i;

	if (!img)
		return;
	if (is_wrapper) {
		for (i = 0; w->list[i]; i++)
			free((void *)w->list[i]);
		free(w->list);
		free((void *)w->data);
	}
	free((void *)img);
}

static const void *get_image(struct vg_rd *r, int *is_wrapper)
{
	uint32_t n = 0, count, i;
	int is_null = 0;
	const void *img = vg_get_blob(r, VG_MSG_MAX, &n, &is_null);
	struct wk_wrapper *w;
	void *first;

	if (r->err || is_null)
		wk_fatal("malformed module image");
	*is_wrapper = 0;
	first = copy_aligned(img, n);
	if (getenv("VGPU_DUMP_DIR") && first) {
		/* Debugging aid: the images as received, for loading them natively. */
		static int seq;
		char path[4200];
		FILE *f;

		snprintf(path, sizeof(path), "%s/image-%d-%d.bin", getenv("VGPU_DUMP_DIR"), (int)getpid(), ++seq);
		f = fopen(path, "wb");
		if (f) {
			fwrite(first, 1, n, f);
			fclose(f);
		}
	}
	count = vg_get_u32(r);
	if (r->err || count > WK_WRAPPER_FATBINS_MAX)
		wk_fatal("malformed module image list");
	if (!count || !first)
		return first;
	w = calloc(1, sizeof(*w));
	if (!w || !(w->list = calloc(count + 1, sizeof(void *)))) {
		free(w);
		free(first);
		return NULL;
	}
	*is_wrapper = 1;
	w->magic = 0x466243b1u;
	w->version = 2;
	w->data = first;
	for (i = 0; i < count; i++) {
		img = vg_get_blob(r, VG_MSG_MAX, &n, &is_null);
		if (r->err || is_null)
			wk_fatal("malformed module image list");
		w->list[i] = copy_aligned(img, n);
		if (!w->list[i]) {
			free_image(w, 1);
			return NULL;
		}
	}
	return w;
}

/*
 * MODULE_LOAD: u32 kind (enum vg_module_kind), u64 proposed id, image.
 * Reply: u64 module id.
 */
CUresult wk_op_module_load(struct vg_rd *r, struct vg_buf *out)
{
	uint32_t kind = vg_get_u32(r);
	uint64_t proposed = vg_get_u64(r);
	int wrapped;
	const void *img = get_image(r, &wrapped);
	CUmodule mod = NULL;
	CUresult res;

	if (r->err || r->off != r->len || kind > VG_MOD_FATBIN)
		wk_fatal("malformed MODULE_LOAD");
	if (!img)
		return CUDA_ERROR_OUT_OF_MEMORY;
	switch (kind) {
	case VG_MOD_DATA:
		res = WK_CALL(cuModuleLoadData, &mod, img);
		break;
	case VG_MOD_DATA_EX:
		res = WK_CALL(cuModuleLoadDataEx, &mod, img, 0, NULL, NULL);
		break;
	default:
		res = WK_CALL(cuModuleLoadFatBinary, &mod, img);
		break;
	}
	/* Modules are loaded whole: the driver has its own copy now. */
	free_image(img, wrapped);
	if (res != CUDA_SUCCESS)
		return res;
	proposed = wk_handle_register(mod, VG_H_CUmodule, proposed);
	if (!proposed)
		wk_fatal("MODULE_LOAD with a bad proposed id");
	vg_put_u64(out, proposed);
	return CUDA_SUCCESS;
}

/*
 * FUNC_INFO: u64 function (or kernel) id.  Reply: u32 n, n x (u32 offset,
 * u32 size): the parameter layout, from cuFuncGetParamInfo.
 */
CUresult wk_op_func_info(struct vg_rd *r, struct vg_buf *out)
{
	uint64_t id = vg_get_u64(r);
	void *f;
	size_t off, size;
	uint32_t n = 0, *pairs;
	int is_kernel = 0;
	CUresult res;

	if (r->err || r->off != r->len)
		wk_fatal("malformed FUNC_INFO");
	if (wk_handle_lookup(id, VG_H_CUkernel, &f))
		is_kernel = 1;
	else if (!wk_handle_lookup(id, VG_H_CUfunction, &f))
		return CUDA_ERROR_INVALID_HANDLE;
	pairs = malloc(sizeof(uint32_t) * 2 * VG_PARAMS_MAX);
	if (!pairs)
		return CUDA_ERROR_OUT_OF_MEMORY;
	for (;;) {
		if (is_kernel)
			res = WK_CALL(cuKernelGetParamInfo, (CUkernel)f, n, &off, &size);
		else
			res = WK_CALL(cuFuncGetParamInfo, (CUfunction)f, n, &off, &size);
		if (res != CUDA_SUCCESS || n == VG_PARAMS_MAX)
			break;
		pairs[2 * n] = (uint32_t)off;
		pairs[2 * n + 1] = (uint32_t)size;
		n++;
	}
	/* The end of the list is the first index the driver refuses. */
	if (res == CUDA_ERROR_INVALID_VALUE || (res == CUDA_SUCCESS && n == VG_PARAMS_MAX))
		res = CUDA_SUCCESS;
	if (res == CUDA_SUCCESS) {
		uint32_t i;

		vg_put_u32(out, n);
		for (i = 0; i < 2 * n; i++)
			vg_put_u32(out, pairs[i]);
	}
	free(pairs);
	return res;
}

static void free_syms(char **names, void **addrs, uint32_t n)
{
	uint32_t i;

	for (i = 0; names && i < n; i++)
		free(names[i]);
	free(names);
	free(addrs);
}

/*
 * LIBRARY_LOAD: documented in libcuda/module.c.  The symbol names and
 * addresses are kept for the worker's life, like the image, once the
 * library is loaded; a failed load frees them (a client repeating one must
 * not grow the worker without bound).
 */
CUresult wk_op_library_load(struct vg_rd *r, struct vg_buf *out)
{
	uint64_t proposed = vg_get_u64(r);
	int wrapped;
	const void *img = get_image(r, &wrapped);
	uint32_t nsyms = vg_get_u32(r), i;
	CUjit_option opts[3] = { CU_JIT_GLOBAL_SYMBOL_NAMES, CU_JIT_GLOBAL_SYMBOL_ADDRESSES, CU_JIT_GLOBAL_SYMBOL_COUNT };
	void *vals[3];
	char **names = NULL;
	void **addrs = NULL;
	CUlibrary lib = NULL;
	CUresult res;

	/* Each symbol takes at least 13 bytes: allocate only for what can be there. */
	if (r->err || nsyms > VG_GLOBAL_SYMS_MAX || (uint64_t)nsyms * 13 > r->len - r->off)
		wk_fatal("malformed LIBRARY_LOAD");
	if (nsyms) {
		names = calloc(nsyms, sizeof(*names));
		addrs = calloc(nsyms, sizeof(*addrs));
		if (!names || !addrs) {
			res = CUDA_ERROR_OUT_OF_MEMORY;
			goto err;
		}
	}
	for (i = 0; i < nsyms; i++) {
		uint32_t n = 0;
		int is_null = 0;
		const char *q = vg_get_blob(r, VG_STR_MAX, &n, &is_null);

		if (r->err || is_null || n == 0 || q[n - 1] != '\0')
			wk_fatal("malformed LIBRARY_LOAD symbol");
		names[i] = strdup(q);
		addrs[i] = (void *)(uintptr_t)vg_get_u64(r);
		if (!names[i]) {
			res = CUDA_ERROR_OUT_OF_MEMORY;
			goto err;
		}
	}
	if (r->err || r->off != r->len)
		wk_fatal("malformed LIBRARY_LOAD");
	if (!img) {
		res = CUDA_ERROR_OUT_OF_MEMORY;
		goto err;
	}
	vals[0] = names;
	vals[1] = addrs;
	vals[2] = (void *)(uintptr_t)nsyms;
	res = WK_CALL(cuLibraryLoadData, &lib, img, nsyms ? opts : NULL, nsyms ? vals : NULL, nsyms ? 3 : 0,
		      NULL, NULL, 0);
	if (res != CUDA_SUCCESS)
		goto err;
	proposed = wk_handle_register(lib, VG_H_CUlibrary, proposed);
	if (!proposed)
		wk_fatal("LIBRARY_LOAD with a bad proposed id");
	vg_put_u64(out, proposed);
	return CUDA_SUCCESS;
err:
	free_image(img, wrapped);
	free_syms(names, addrs, nsyms);
	return res;
}

/* FUNC_NAME: u64 function or kernel id, u32 is_kernel.  Reply: blob name. */
CUresult wk_op_func_name(struct vg_rd *r, struct vg_buf *out)
{
	uint64_t id = vg_get_u64(r);
	uint32_t is_kernel = vg_get_u32(r);
	const char *name = NULL;
	void *f;
	CUresult res;

	if (r->err || r->off != r->len || is_kernel > 1)
		wk_fatal("malformed FUNC_NAME");
	if (!wk_handle_lookup(id, is_kernel ? VG_H_CUkernel : VG_H_CUfunction, &f))
		return CUDA_ERROR_INVALID_HANDLE;
	if (is_kernel)
		res = WK_CALL(cuKernelGetName, &name, (CUkernel)f);
	else
		res = WK_CALL(cuFuncGetName, &name, (CUfunction)f);
	if (res == CUDA_SUCCESS) {
		if (!name || strlen(name) >= VG_STR_MAX)
			return CUDA_ERROR_UNKNOWN;
		vg_put_blob(out, name, (uint32_t)strlen(name) + 1);
	}
	return res;
}
