/*
 * The worker: module and library images (plain, or a version-2 wrapper's
 * fatbins), function parameter layouts and names.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tp.h"
#include "vgpu/ops.h"
#include "wk_cache.h"
#include "worker.h"

/*
 * An image (include/vgpu/ops.h, VG_IMG_*): the pieces as the driver gets
 * them: the image alone, or a wrapper of ours around the fatbins of a
 * version-2 wrapper.  Pieces are aligned copies of what the client sent or
 * what the cache holds.  Library images are kept for the worker's life:
 * with lazy loading the driver may read them later.
 */
struct wk_wrapper {
	uint32_t magic, version;
	const void *data;
	const void **list;
};

struct wk_image {
	uint32_t n;				/* pieces */
	void *piece[VG_IMG_PIECES_MAX];
	uint32_t len[VG_IMG_PIECES_MAX];
	uint8_t mapped[VG_IMG_PIECES_MAX];	/* from the cache, mapped */
	uint32_t nmissing;			/* pieces offered by hash the cache lacks */
	uint32_t missing[VG_IMG_PIECES_MAX];
	struct wk_wrapper w;
	const void *list[VG_IMG_PIECES_MAX];	/* w.list: pieces 1.., then NULL */
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

static void image_free(struct wk_image *im)
{
	uint32_t i;

	if (!im)
		return;
	for (i = 0; i < im->n; i++) {
		if (im->mapped[i])
			munmap(im->piece[i], im->len[i]);
		else
			free(im->piece[i]);
	}
	free(im);
}

static void dump_image(const void *p, uint32_t n)
{
	/* Debugging aid: the images as received, for loading them natively. */
	static int seq;
	char path[4200];
	FILE *f;

	snprintf(path, sizeof(path), "%s/image-%d-%d.bin", getenv("VGPU_DUMP_DIR"), (int)getpid(), ++seq);
	f = fopen(path, "wb");
	if (f) {
		fwrite(p, 1, n, f);
		fclose(f);
	}
}

/*
 * One piece into im->piece[i]; 0, -ENOMEM, or -EPROTO (malformed: the
 * caller frees what it holds, then ends the session).
 */
static int get_piece(struct vg_rd *r, struct wk_image *im, uint32_t i)
{
	uint32_t form = vg_get_u32(r), n = 0;
	int is_null = 0, mapped = 0;
	const void *p;

	if (form == VG_IMG_INLINE) {
		p = vg_get_blob(r, VG_MSG_MAX, &n, &is_null);
		if (r->err || is_null)
			return -EPROTO;
		__atomic_add_fetch(&wk_cache_stats.inline_bytes, n, __ATOMIC_RELAXED);
		im->piece[i] = copy_aligned(p, n);
		im->len[i] = n;
		if (!im->piece[i])
			return -ENOMEM;
		wk_cache_put(im->piece[i], n);
		return 0;
	}
	if (form != VG_IMG_CACHED)
		return -EPROTO;
	p = vg_get_bytes(r, TP_SHA256_LEN);
	n = vg_get_u32(r);
	if (r->err || !n || n > VG_MSG_MAX)
		return -EPROTO;
	im->piece[i] = wk_cache_get(p, n, &mapped);
	im->len[i] = n;
	im->mapped[i] = (uint8_t)mapped;
	if (!im->piece[i])
		im->missing[im->nmissing++] = i;
	return 0;
}

/* Decodes an image; NULL only when out of memory.  A malformed one ends the session. */
static struct wk_image *get_image(struct vg_rd *r)
{
	struct wk_image *im = calloc(1, sizeof(*im));
	uint32_t count, i;
	int ret = 0;

	if (!im)
		return NULL;
	ret = get_piece(r, im, 0);
	im->n = 1;
	count = vg_get_u32(r);
	if (!ret && (r->err || count > VG_IMG_PIECES_MAX - 1))
		ret = -EPROTO;
	for (i = 1; i <= count && !ret; i++) {
		ret = get_piece(r, im, i);
		im->n = i + 1;
	}
	if (ret < 0) {
		image_free(im);
		if (ret == -EPROTO)
			wk_fatal("malformed module image");
		return NULL;
	}
	if (getenv("VGPU_DUMP_DIR") && im->piece[0])
		dump_image(im->piece[0], im->len[0]);
	if (im->n > 1) {
		im->w.magic = 0x466243b1u;
		im->w.version = 2;
		im->w.data = im->piece[0];
		im->w.list = im->list;
		for (i = 1; i < im->n; i++)
			im->list[i - 1] = im->piece[i];
	}
	return im;
}

/* What the driver gets. */
static const void *image_data(const struct wk_image *im)
{
	return im->n > 1 ? (const void *)&im->w : im->piece[0];
}

/* The answer when the cache lacked pieces: the client sends them. */
static CUresult ask_pieces(const struct wk_image *im, struct vg_buf *out)
{
	uint32_t i;

	vg_put_u64(out, 0);
	vg_put_u32(out, im->nmissing);
	for (i = 0; i < im->nmissing; i++)
		vg_put_u32(out, im->missing[i]);
	return CUDA_SUCCESS;
}

/*
 * MODULE_LOAD: u32 kind (enum vg_module_kind), u64 proposed id, image.
 * Reply: u64 module id, or the pieces to send (ask_pieces).
 */
CUresult wk_op_module_load(struct vg_rd *r, struct vg_buf *out)
{
	uint32_t kind = vg_get_u32(r);
	uint64_t proposed = vg_get_u64(r);
	struct wk_image *im = get_image(r);
	const void *img;
	CUmodule mod = NULL;
	CUresult res;

	if (r->err || r->off != r->len || kind > VG_MOD_FATBIN) {
		image_free(im);
		wk_fatal("malformed MODULE_LOAD");
	}
	if (!im)
		return CUDA_ERROR_OUT_OF_MEMORY;
	if (im->nmissing) {
		res = ask_pieces(im, out);
		image_free(im);
		return res;
	}
	img = image_data(im);
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
	image_free(im);
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
 * What a loaded library keeps for the worker's life: its image (the driver
 * may read it later, with lazy loading) and its symbol relocations.
 */
struct wk_kept {
	struct wk_kept *next;
	struct wk_image *im;
	char **names;
	void **addrs;
};

static struct wk_kept *kept;
static pthread_mutex_t kept_lock = PTHREAD_MUTEX_INITIALIZER;

static int keep(struct wk_image *im, char **names, void **addrs)
{
	struct wk_kept *k = malloc(sizeof(*k));

	if (!k)
		return -ENOMEM;
	k->im = im;
	k->names = names;
	k->addrs = addrs;
	pthread_mutex_lock(&kept_lock);
	k->next = kept;
	kept = k;
	pthread_mutex_unlock(&kept_lock);
	return 0;
}

/* A load that failed keeps nothing. */
static void unkeep(const struct wk_image *im)
{
	struct wk_kept **pp, *k;

	pthread_mutex_lock(&kept_lock);
	for (pp = &kept; *pp; pp = &(*pp)->next) {
		if ((*pp)->im == im) {
			k = *pp;
			*pp = k->next;
			free(k);
			break;
		}
	}
	pthread_mutex_unlock(&kept_lock);
}

/*
 * LIBRARY_LOAD: documented in libcuda/module.c.  The symbol names and
 * addresses are kept for the worker's life, like the image.
 */
CUresult wk_op_library_load(struct vg_rd *r, struct vg_buf *out)
{
	uint64_t proposed = vg_get_u64(r);
	struct wk_image *im = get_image(r);
	uint32_t nsyms = vg_get_u32(r), i;
	CUjit_option opts[3] = { CU_JIT_GLOBAL_SYMBOL_NAMES, CU_JIT_GLOBAL_SYMBOL_ADDRESSES, CU_JIT_GLOBAL_SYMBOL_COUNT };
	void *vals[3];
	char **names = NULL;
	void **addrs = NULL;
	CUlibrary lib = NULL;
	CUresult res;

	/* Each symbol takes at least 13 bytes: allocate only for what can be there. */
	if (r->err || nsyms > VG_GLOBAL_SYMS_MAX || (uint64_t)nsyms * 13 > r->len - r->off) {
		image_free(im);
		wk_fatal("malformed LIBRARY_LOAD");
	}
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

		if (r->err || is_null || n == 0 || q[n - 1] != '\0') {
			image_free(im);
			free_syms(names, addrs, nsyms);
			wk_fatal("malformed LIBRARY_LOAD symbol");
		}
		names[i] = strdup(q);
		addrs[i] = (void *)(uintptr_t)vg_get_u64(r);
		if (!names[i]) {
			res = CUDA_ERROR_OUT_OF_MEMORY;
			goto err;
		}
	}
	if (r->err || r->off != r->len) {
		image_free(im);
		free_syms(names, addrs, nsyms);
		wk_fatal("malformed LIBRARY_LOAD");
	}
	if (!im || im->nmissing) {
		res = im ? ask_pieces(im, out) : CUDA_ERROR_OUT_OF_MEMORY;
		goto err;
	}
	vals[0] = names;
	vals[1] = addrs;
	vals[2] = (void *)(uintptr_t)nsyms;
	if (keep(im, names, addrs) < 0) {
		res = CUDA_ERROR_OUT_OF_MEMORY;
		goto err;
	}
	res = WK_CALL(cuLibraryLoadData, &lib, image_data(im), nsyms ? opts : NULL, nsyms ? vals : NULL,
		      nsyms ? 3 : 0, NULL, NULL, 0);
	if (res != CUDA_SUCCESS) {
		unkeep(im);
		goto err;
	}
	proposed = wk_handle_register(lib, VG_H_CUlibrary, proposed);
	if (!proposed)
		wk_fatal("LIBRARY_LOAD with a bad proposed id");
	/* The image and the symbols stay for the worker's life (lazy loading). */
	vg_put_u64(out, proposed);
	return CUDA_SUCCESS;
err:
	image_free(im);
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
