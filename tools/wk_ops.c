/*
 * The worker's hand-written operations (VG_OP_*).  Payload layouts are
 * documented at each handler; every field is validated before use.
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


static void put_cstr(struct vg_buf *b, const char *s)
{
	vg_put_blob(b, s, (uint32_t)strlen(s) + 1);
}

/*
 * SNAPSHOT: empty request.  Reply: u32 ndev, then per device: u32 ordinal,
 * blob name, 16 bytes UUID, blob PCI bus id, u64 total memory, u32
 * VG_SNAP_ATTRS, that many (i32 status, i32 value), i32 LUID status,
 * 8 bytes LUID, u32 node mask.  Header status: the host's cuInit result.
 */
static CUresult op_snapshot(struct vg_rd *r, struct vg_buf *out)
{
	CUresult res;
	int n = 0, i, a;

	if (r->len != 0)
		wk_fatal("SNAPSHOT with a payload");
	res = WK_CALL(cuInit, 0);
	if (res != CUDA_SUCCESS)
		return res;
	res = WK_CALL(cuDeviceGetCount, &n);
	if (res != CUDA_SUCCESS)
		return res;
	if (n > VG_SNAP_DEV_MAX)
		n = VG_SNAP_DEV_MAX;
	vg_put_u32(out, (uint32_t)n);
	for (i = 0; i < n; i++) {
		char name[VG_SNAP_NAME_MAX] = "", bus[VG_SNAP_BUSID_MAX] = "", luid[8] = { 0 };
		CUuuid uuid;
		size_t total = 0;
		unsigned int mask = 0;
		CUdevice d = 0;

		memset(&uuid, 0, sizeof(uuid));
		WK_CALL(cuDeviceGet, &d, i);
		WK_CALL(cuDeviceGetName, name, sizeof(name) - 1, d);
		if (WK_CALL(cuDeviceGetUuid_v2, &uuid, d) != CUDA_SUCCESS)
			WK_CALL(cuDeviceGetUuid, &uuid, d);
		WK_CALL(cuDeviceGetPCIBusId, bus, sizeof(bus) - 1, d);
		WK_CALL(cuDeviceTotalMem_v2, &total, d);
		vg_put_u32(out, (uint32_t)i);
		put_cstr(out, name);
		vg_put_bytes(out, &uuid, 16);
		put_cstr(out, bus);
		vg_put_u64(out, total);
		vg_put_u32(out, VG_SNAP_ATTRS);
		for (a = 0; a < VG_SNAP_ATTRS; a++) {
			int v = 0;
			CUresult ar = a == 0 ? CUDA_ERROR_INVALID_VALUE
					     : WK_CALL(cuDeviceGetAttribute, &v, (CUdevice_attribute)a, d);

			vg_put_u32(out, (uint32_t)ar);
			vg_put_u32(out, ar == CUDA_SUCCESS ? (uint32_t)v : 0);
		}
		res = WK_CALL(cuDeviceGetLuid, luid, &mask, d);
		vg_put_u32(out, (uint32_t)res);
		vg_put_bytes(out, luid, 8);
		vg_put_u32(out, mask);
	}
	return CUDA_SUCCESS;
}

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
	if (!w || !(w->list = calloc(count + 1, sizeof(void *))))
		return NULL;
	*is_wrapper = 1;
	w->magic = 0x466243b1u;
	w->version = 2;
	w->data = first;
	for (i = 0; i < count; i++) {
		img = vg_get_blob(r, VG_MSG_MAX, &n, &is_null);
		if (r->err || is_null)
			wk_fatal("malformed module image list");
		w->list[i] = copy_aligned(img, n);
		if (!w->list[i])
			return NULL;
	}
	return w;
}

/*
 * MODULE_LOAD: u32 kind (enum vg_module_kind), u64 proposed id, image.
 * Reply: u64 module id.
 */
static CUresult op_module_load(struct vg_rd *r, struct vg_buf *out)
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
static CUresult op_func_info(struct vg_rd *r, struct vg_buf *out)
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

/*
 * LAUNCH: u64 function id, u32 grid x y z, u32 block x y z, u32 shared
 * bytes, u64 stream id, blob parameter buffer.  Empty reply.
 * LAUNCH_EX: the same with, before the blob, u32 nattrs and per attribute
 * u32 id and VG_LAUNCH_ATTR_BYTES of value (event handles as ids).
 */
/* Reads geometry, stream and (ex) attributes as LAUNCH / LAUNCH_EX carry them. */
struct wk_config {
	uint32_t g[3], b[3], shmem, nattrs;
	void *stream;
	CUlaunchAttribute attrs[VG_LAUNCH_ATTRS_MAX];
};

static CUresult get_config(struct vg_rd *r, struct wk_config *c, int ex)
{
	CUresult res, hres;
	uint32_t i;

	for (i = 0; i < 3; i++)
		c->g[i] = vg_get_u32(r);
	for (i = 0; i < 3; i++)
		c->b[i] = vg_get_u32(r);
	c->shmem = vg_get_u32(r);
	res = wk_get_handle(r, VG_H_CUstream, &c->stream);
	c->nattrs = 0;
	if (!ex)
		return res;
	c->nattrs = vg_get_u32(r);
	if (c->nattrs > VG_LAUNCH_ATTRS_MAX)
		wk_fatal("a launch configuration with %u attributes", c->nattrs);
	memset(c->attrs, 0, sizeof(c->attrs));
	for (i = 0; i < c->nattrs && !r->err; i++) {
		const void *v;

		c->attrs[i].id = (CUlaunchAttributeID)vg_get_u32(r);
		v = vg_get_bytes(r, VG_LAUNCH_ATTR_BYTES);
		if (!v)
			break;
		memcpy(&c->attrs[i].value, v, VG_LAUNCH_ATTR_BYTES);
		if (c->attrs[i].id == CU_LAUNCH_ATTRIBUTE_PROGRAMMATIC_EVENT ||
		    c->attrs[i].id == CU_LAUNCH_ATTRIBUTE_LAUNCH_COMPLETION_EVENT) {
			struct vg_rd er;
			void *ev;

			vg_rd_init(&er, v, 8);
			hres = wk_get_handle(&er, VG_H_CUevent, &ev);
			if (res == CUDA_SUCCESS)
				res = hres;
			memcpy(&c->attrs[i].value, &ev, sizeof(ev));
		} else if (c->attrs[i].id == CU_LAUNCH_ATTRIBUTE_DEVICE_UPDATABLE_KERNEL_NODE) {
			if (res == CUDA_SUCCESS)
				res = CUDA_ERROR_NOT_SUPPORTED;
		}
	}
	return res;
}

static void config_fill(const struct wk_config *c, CUlaunchConfig *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->gridDimX = c->g[0];
	cfg->gridDimY = c->g[1];
	cfg->gridDimZ = c->g[2];
	cfg->blockDimX = c->b[0];
	cfg->blockDimY = c->b[1];
	cfg->blockDimZ = c->b[2];
	cfg->sharedMemBytes = c->shmem;
	cfg->hStream = (CUstream)c->stream;
	cfg->attrs = (CUlaunchAttribute *)c->attrs;
	cfg->numAttrs = c->nattrs;
}

static CUresult op_launch(struct vg_rd *r, int ex)
{
	uint32_t n = 0;
	int is_null = 0;
	void *f = NULL, *extra[5];
	const void *params;
	size_t size;
	uint64_t buf[VG_PARAM_BYTES_MAX / 8];
	struct wk_config c;
	CUresult res = CUDA_SUCCESS, hres;

	if (!wk_handle_lookup(vg_get_u64(r), VG_H_CUfunction, &f))
		res = CUDA_ERROR_INVALID_HANDLE;
	hres = get_config(r, &c, ex);
	if (res == CUDA_SUCCESS)
		res = hres;
	params = vg_get_blob(r, VG_PARAM_BYTES_MAX, &n, &is_null);
	if (r->err || r->off != r->len)
		wk_fatal("malformed LAUNCH");
	if (res != CUDA_SUCCESS)
		return res;
	memcpy(buf, params ? params : buf, is_null ? 0 : n);
	size = n;
	extra[0] = CU_LAUNCH_PARAM_BUFFER_POINTER;
	extra[1] = buf;
	extra[2] = CU_LAUNCH_PARAM_BUFFER_SIZE;
	extra[3] = &size;
	extra[4] = CU_LAUNCH_PARAM_END;
	if (ex) {
		CUlaunchConfig cfg;

		config_fill(&c, &cfg);
		return WK_CALL(cuLaunchKernelEx, &cfg, (CUfunction)f, NULL, extra);
	}
	return WK_CALL(cuLaunchKernel, (CUfunction)f, c.g[0], c.g[1], c.g[2], c.b[0], c.b[1], c.b[2], c.shmem,
		       (CUstream)c.stream, NULL, extra);
}

/* OCC_CLUSTERS: documented in libcuda/launch.c. */
static CUresult op_occ_clusters(struct vg_rd *r, struct vg_buf *out)
{
	uint32_t which = vg_get_u32(r);
	void *f = NULL;
	struct wk_config c;
	CUlaunchConfig cfg;
	CUresult res = CUDA_SUCCESS, hres;
	int v = 0;

	if (!wk_handle_lookup(vg_get_u64(r), VG_H_CUfunction, &f))
		res = CUDA_ERROR_INVALID_HANDLE;
	hres = get_config(r, &c, 1);
	if (res == CUDA_SUCCESS)
		res = hres;
	if (r->err || r->off != r->len || which > 1)
		wk_fatal("malformed OCC_CLUSTERS");
	if (res != CUDA_SUCCESS)
		return res;
	config_fill(&c, &cfg);
	if (which == 0)
		res = WK_CALL(cuOccupancyMaxActiveClusters, &v, (CUfunction)f, &cfg);
	else
		res = WK_CALL(cuOccupancyMaxPotentialClusterSize, &v, (CUfunction)f, &cfg);
	if (res == CUDA_SUCCESS)
		vg_put_u32(out, (uint32_t)v);
	return res;
}

/*
 * LIBRARY_LOAD: documented in libcuda/module.c.  The symbol names and
 * addresses are kept for the worker's life, like the image.
 */
static CUresult op_library_load(struct vg_rd *r, struct vg_buf *out)
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

	if (r->err || nsyms > VG_GLOBAL_SYMS_MAX)
		wk_fatal("malformed LIBRARY_LOAD");
	if (nsyms) {
		names = calloc(nsyms, sizeof(*names));
		addrs = calloc(nsyms, sizeof(*addrs));
		if (!names || !addrs)
			return CUDA_ERROR_OUT_OF_MEMORY;
	}
	for (i = 0; i < nsyms; i++) {
		uint32_t n = 0;
		int is_null = 0;
		const char *q = vg_get_blob(r, VG_STR_MAX, &n, &is_null);

		if (r->err || is_null || n == 0 || q[n - 1] != '\0')
			wk_fatal("malformed LIBRARY_LOAD symbol");
		names[i] = strdup(q);
		addrs[i] = (void *)(uintptr_t)vg_get_u64(r);
		if (!names[i])
			return CUDA_ERROR_OUT_OF_MEMORY;
	}
	if (r->err || r->off != r->len)
		wk_fatal("malformed LIBRARY_LOAD");
	if (!img)
		return CUDA_ERROR_OUT_OF_MEMORY;
	vals[0] = names;
	vals[1] = addrs;
	vals[2] = (void *)(uintptr_t)nsyms;
	res = WK_CALL(cuLibraryLoadData, &lib, img, nsyms ? opts : NULL, nsyms ? vals : NULL, nsyms ? 3 : 0,
		      NULL, NULL, 0);
	if (res != CUDA_SUCCESS)
		return res;
	proposed = wk_handle_register(lib, VG_H_CUlibrary, proposed);
	if (!proposed)
		wk_fatal("LIBRARY_LOAD with a bad proposed id");
	vg_put_u64(out, proposed);
	return CUDA_SUCCESS;
}

/*
 * MEMCPY2D: u32 variant (0 cuMemcpy2D_v2, 1 Unaligned_v2, 2 Async_v2), u64
 * stream id, then per side (src, dst): u32 memory type, u64 device pointer,
 * u64 array id, u64 pitch, u64 x in bytes, u64 y; then u64 width in bytes,
 * u64 height; then, when the source is host memory, a blob of height rows of
 * width bytes.  Reply: when the destination is host memory, that blob.
 */
struct side {
	uint32_t type;
	uint64_t dev, pitch, x, y, z, lod, height;
	void *array;
};

static CUresult get_side(struct vg_rd *r, struct side *s, int three_d)
{
	uint64_t id;

	s->type = vg_get_u32(r);
	s->dev = vg_get_u64(r);
	id = vg_get_u64(r);
	s->pitch = vg_get_u64(r);
	s->x = vg_get_u64(r);
	s->y = vg_get_u64(r);
	if (three_d) {
		s->z = vg_get_u64(r);
		s->lod = vg_get_u64(r);
		s->height = vg_get_u64(r);
	}
	if (r->err)
		wk_fatal("malformed copy descriptor");
	if (s->type < CU_MEMORYTYPE_HOST || s->type > CU_MEMORYTYPE_UNIFIED)
		return CUDA_ERROR_INVALID_VALUE;
	s->array = NULL;
	if (s->type == CU_MEMORYTYPE_ARRAY && !wk_handle_lookup(id, VG_H_CUarray, &s->array))
		return CUDA_ERROR_INVALID_HANDLE;
	return CUDA_SUCCESS;
}

static CUresult op_memcpy(struct vg_rd *r, struct vg_buf *out, int three_d)
{
	uint32_t variant = vg_get_u32(r), n = 0;
	struct side src, dst;
	uint64_t w, h, d = 1, bytes;
	void *stream, *hostbuf = NULL;
	const void *blob = NULL;
	int is_null = 0;
	CUresult res, r1, r2;

	res = wk_get_handle(r, VG_H_CUstream, &stream);
	r1 = get_side(r, &src, three_d);
	r2 = get_side(r, &dst, three_d);
	w = vg_get_u64(r);
	h = vg_get_u64(r);
	if (three_d)
		d = vg_get_u64(r);
	if (r->err || variant > 2)
		wk_fatal("malformed MEMCPY");
	if (w > VG_MSG_MAX || h > VG_MSG_MAX || d > VG_MSG_MAX || w * h > VG_MSG_MAX ||
	    w * h * d > VG_MSG_MAX)
		wk_fatal("MEMCPY region larger than a message");
	bytes = w * h * d;
	if (src.type == CU_MEMORYTYPE_HOST) {
		blob = vg_get_blob(r, VG_MSG_MAX, &n, &is_null);
		if (r->err || is_null || n != bytes)
			wk_fatal("MEMCPY host source of %u bytes for a %llu-byte region", n,
				 (unsigned long long)bytes);
	}
	if (r->off != r->len)
		wk_fatal("MEMCPY with trailing bytes");
	if (res != CUDA_SUCCESS)
		return res;
	if (r1 != CUDA_SUCCESS || r2 != CUDA_SUCCESS)
		return r1 != CUDA_SUCCESS ? r1 : r2;
	hostbuf = malloc(bytes + 1);
	if (!hostbuf)
		return CUDA_ERROR_OUT_OF_MEMORY;
	if (blob)
		memcpy(hostbuf, blob, bytes);
	if (!three_d) {
		CUDA_MEMCPY2D c;

		memset(&c, 0, sizeof(c));
		c.srcMemoryType = (CUmemorytype)src.type;
		c.srcDevice = src.dev;
		c.srcArray = src.array;
		c.srcPitch = src.pitch;
		c.srcXInBytes = src.x;
		c.srcY = src.y;
		c.dstMemoryType = (CUmemorytype)dst.type;
		c.dstDevice = dst.dev;
		c.dstArray = dst.array;
		c.dstPitch = dst.pitch;
		c.dstXInBytes = dst.x;
		c.dstY = dst.y;
		c.WidthInBytes = w;
		c.Height = h;
		if (src.type == CU_MEMORYTYPE_HOST) {
			c.srcHost = hostbuf;
			c.srcPitch = w;
			c.srcXInBytes = c.srcY = 0;
		}
		if (dst.type == CU_MEMORYTYPE_HOST) {
			c.dstHost = hostbuf;
			c.dstPitch = w;
			c.dstXInBytes = c.dstY = 0;
		}
		if (variant == 0)
			res = WK_CALL(cuMemcpy2D_v2, &c);
		else if (variant == 1)
			res = WK_CALL(cuMemcpy2DUnaligned_v2, &c);
		else
			res = WK_CALL(cuMemcpy2DAsync_v2, &c, (CUstream)stream);
	} else {
		CUDA_MEMCPY3D c;

		memset(&c, 0, sizeof(c));
		c.srcMemoryType = (CUmemorytype)src.type;
		c.srcDevice = src.dev;
		c.srcArray = src.array;
		c.srcPitch = src.pitch;
		c.srcHeight = src.height;
		c.srcXInBytes = src.x;
		c.srcY = src.y;
		c.srcZ = src.z;
		c.srcLOD = src.lod;
		c.dstMemoryType = (CUmemorytype)dst.type;
		c.dstDevice = dst.dev;
		c.dstArray = dst.array;
		c.dstPitch = dst.pitch;
		c.dstHeight = dst.height;
		c.dstXInBytes = dst.x;
		c.dstY = dst.y;
		c.dstZ = dst.z;
		c.dstLOD = dst.lod;
		c.WidthInBytes = w;
		c.Height = h;
		c.Depth = d;
		if (src.type == CU_MEMORYTYPE_HOST) {
			c.srcHost = hostbuf;
			c.srcPitch = w;
			c.srcHeight = h;
			c.srcXInBytes = c.srcY = c.srcZ = 0;
		}
		if (dst.type == CU_MEMORYTYPE_HOST) {
			c.dstHost = hostbuf;
			c.dstPitch = w;
			c.dstHeight = h;
			c.dstXInBytes = c.dstY = c.dstZ = 0;
		}
		if (variant == 2)
			res = WK_CALL(cuMemcpy3DAsync_v2, &c, (CUstream)stream);
		else
			res = WK_CALL(cuMemcpy3D_v2, &c);
	}
	/* The staging buffer must not be reused before an async copy ends. */
	if (res == CUDA_SUCCESS && variant == 2)
		res = WK_CALL(cuStreamSynchronize, (CUstream)stream);
	if (res == CUDA_SUCCESS && dst.type == CU_MEMORYTYPE_HOST)
		vg_put_blob(out, hostbuf, (uint32_t)bytes);
	free(hostbuf);
	return res;
}

/*
 * POINTER_ATTR: u32 attribute, u64 pointer, u32 multi (1: answer as
 * cuPointerGetAttributes does, with defaults for unknown memory).  Reply: a
 * blob of the value (vg_pointer_attr_size bytes; handles as u64 ids).
 */
static CUresult op_pointer_attr(struct vg_rd *r, struct vg_buf *out)
{
	int attr = (int)vg_get_u32(r), is_handle;
	uint64_t ptr = vg_get_u64(r);
	uint32_t multi = vg_get_u32(r);
	uint8_t val[64];
	void *vp = val;
	uint32_t size;
	CUresult res;

	if (r->err || r->off != r->len || multi > 1)
		wk_fatal("malformed POINTER_ATTR");
	size = vg_pointer_attr_size(attr, &is_handle);
	if (!size)
		return CUDA_ERROR_INVALID_VALUE;
	memset(val, 0, sizeof(val));
	if (multi) {
		CUpointer_attribute a = (CUpointer_attribute)attr;

		res = WK_CALL(cuPointerGetAttributes, 1, &a, &vp, (CUdeviceptr)ptr);
	} else {
		res = WK_CALL(cuPointerGetAttribute, val, (CUpointer_attribute)attr, (CUdeviceptr)ptr);
	}
	if (res != CUDA_SUCCESS)
		return res;
	if (is_handle) {
		void *h;

		memcpy(&h, val, sizeof(h));
		vg_put_u32(out, 8);
		wk_put_handle(out, h, attr == VG_PA_CONTEXT ? VG_H_CUcontext : VG_H_CUmemoryPool);
	} else {
		vg_put_blob(out, val, size);
	}
	return CUDA_SUCCESS;
}

/*
 * OCC_BLOCKSIZE: u64 function id, u64 dynamic shared bytes, i32 block size
 * limit, u32 flags, u32 has_callback.  Reply: i32 min grid size, i32 block
 * size.  The callback runs in the guest, through HOST_CALL
 * VG_HC_OCCUPANCY_SMEM on this thread's channel.
 */
static __thread struct wk_thread *occ_thread;
static __thread int occ_failed;

static size_t occ_trampoline(int block)
{
	struct vg_buf req, rep;
	struct vg_rd r;
	uint64_t v = 0;

	vg_buf_init(&req);
	vg_buf_init(&rep);
	vg_put_u32(&req, (uint32_t)block);
	if (wk_host_call(occ_thread, VG_HC_OCCUPANCY_SMEM, &req, &rep) == 0) {
		vg_rd_init(&r, rep.p, rep.len);
		v = vg_get_u64(&r);
	} else {
		occ_failed = 1;
	}
	vg_buf_fini(&req);
	vg_buf_fini(&rep);
	return (size_t)v;
}

static CUresult op_occ_blocksize(struct wk_thread *t, struct vg_rd *r, struct vg_buf *out)
{
	uint64_t id = vg_get_u64(r), smem = vg_get_u64(r);
	int limit = (int)vg_get_u32(r), grid = 0, block = 0;
	uint32_t flags = vg_get_u32(r), has_cb = vg_get_u32(r);
	void *f;
	CUresult res;

	if (r->err || r->off != r->len)
		wk_fatal("malformed OCC_BLOCKSIZE");
	if (!wk_handle_lookup(id, VG_H_CUfunction, &f))
		return CUDA_ERROR_INVALID_HANDLE;
	occ_thread = t;
	occ_failed = 0;
	res = WK_CALL(cuOccupancyMaxPotentialBlockSizeWithFlags, &grid, &block, (CUfunction)f,
		   has_cb ? occ_trampoline : NULL, (size_t)smem, limit, flags);
	if (occ_failed)
		wk_fatal("the guest did not answer an occupancy callback");
	if (res == CUDA_SUCCESS) {
		vg_put_u32(out, (uint32_t)grid);
		vg_put_u32(out, (uint32_t)block);
	}
	return res;
}

/* FUNC_NAME: u64 function or kernel id, u32 is_kernel.  Reply: blob name. */
static CUresult op_func_name(struct vg_rd *r, struct vg_buf *out)
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
		put_cstr(out, name);
	}
	return res;
}

/*
 * Host functions.  The trampoline runs on a driver thread when the stream
 * reaches it, calls the guest on the callback channel and waits, so the
 * stream does not move on before the guest function has returned.
 */
struct wk_hostfn {
	uint64_t fn, ud, stream_id;
	int keep;		/* captured into a graph: called on every replay */
};

static void hostfn_call(uint32_t op, const struct vg_buf *req)
{
	struct vg_hdr h = { .kind = VG_MSG_HOST_CALL, .op = op };
	struct vg_buf rep;
	struct wk_thread *t = wk.cb;

	if (!t)
		return;
	vg_buf_init(&rep);
	pthread_mutex_lock(&wk.cb_lock);
	h.tid = t->tid;
	if (tp_send_msg(t->chan, &h, req->p, req->len, -1) == 0)
		tp_recv_msg(t->chan, &h, &rep, 64, NULL);
	pthread_mutex_unlock(&wk.cb_lock);
	vg_buf_fini(&rep);
}

static void hostfn_trampoline(void *p)
{
	struct wk_hostfn *hf = p;
	struct vg_buf req;

	vg_buf_init(&req);
	vg_put_u64(&req, hf->fn);
	vg_put_u64(&req, hf->ud);
	hostfn_call(VG_HC_HOST_FN, &req);
	vg_buf_fini(&req);
	if (!hf->keep)
		free(hf);
}

static void stream_cb_trampoline(CUstream s, CUresult status, void *p)
{
	struct wk_hostfn *hf = p;
	struct vg_buf req;

	(void)s;
	vg_buf_init(&req);
	vg_put_u64(&req, hf->fn);
	vg_put_u64(&req, hf->stream_id);
	vg_put_u32(&req, (uint32_t)status);
	vg_put_u64(&req, hf->ud);
	hostfn_call(VG_HC_STREAM_CB, &req);
	vg_buf_fini(&req);
	free(hf);
}

/* CALLBACK_CHANNEL: empty.  This thread's channel carries host functions from now on. */
static CUresult op_callback_channel(struct wk_thread *t, struct vg_rd *r)
{
	if (r->len != 0 || wk.cb)
		wk_fatal("unexpected CALLBACK_CHANNEL");
	t->callback = 1;
	wk.cb = t;
	return CUDA_SUCCESS;
}

/*
 * HOST_FUNC: u64 stream id, u32 kind (0 host function, 1 stream callback),
 * u64 fn, u64 userData, u32 flags.  The guest's pointers are only handed
 * back to the guest, never called here.
 */
static CUresult op_host_func(struct vg_rd *r)
{
	void *s;
	uint64_t sid;
	CUresult res = wk_get_handle_id(r, VG_H_CUstream, &s, &sid);
	uint32_t kind = vg_get_u32(r);
	uint64_t fn = vg_get_u64(r), ud = vg_get_u64(r);
	uint32_t flags = vg_get_u32(r);
	CUstreamCaptureStatus cs = CU_STREAM_CAPTURE_STATUS_NONE;
	struct wk_hostfn *hf;

	if (r->err || r->off != r->len || kind > 1)
		wk_fatal("malformed HOST_FUNC");
	if (res != CUDA_SUCCESS)
		return res;
	if (!wk.cb)
		wk_fatal("HOST_FUNC before the callback channel");
	hf = calloc(1, sizeof(*hf));
	if (!hf)
		return CUDA_ERROR_OUT_OF_MEMORY;
	hf->fn = fn;
	hf->ud = ud;
	hf->stream_id = sid;
	if (kind == 0) {
		if (wk.fns[VG_FN_cuStreamIsCapturing])
			WK_FN(cuStreamIsCapturing)((CUstream)s, &cs);
		hf->keep = cs != CU_STREAM_CAPTURE_STATUS_NONE;
		res = WK_CALL(cuLaunchHostFunc, (CUstream)s, hostfn_trampoline, hf);
	} else {
		res = WK_CALL(cuStreamAddCallback, (CUstream)s, stream_cb_trampoline, hf, flags);
	}
	if (res != CUDA_SUCCESS)
		free(hf);
	return res;
}

/* CAPTURE_INFO: documented in libcuda/capture.c. */
static CUresult op_capture_info(struct vg_rd *r, struct vg_buf *out)
{
	uint32_t version = vg_get_u32(r), ptsz = vg_get_u32(r), i;
	CUstreamCaptureStatus st = CU_STREAM_CAPTURE_STATUS_NONE;
	cuuint64_t id = 0;
	CUgraph g = NULL;
	const CUgraphNode *deps = NULL;
	const CUgraphEdgeData *edges = NULL;
	size_t n = 0;
	void *s;
	CUresult res = wk_get_handle(r, VG_H_CUstream, &s);

	if (r->err || r->off != r->len || (version != 2 && version != 3) || ptsz > 1)
		wk_fatal("malformed CAPTURE_INFO");
	if (res != CUDA_SUCCESS)
		return res;
	if (version == 2 && !ptsz)
		res = WK_CALL(cuStreamGetCaptureInfo_v2, (CUstream)s, &st, &id, &g, &deps, &n);
	else if (version == 2)
		res = WK_CALL(cuStreamGetCaptureInfo_v2_ptsz, (CUstream)s, &st, &id, &g, &deps, &n);
	else if (!ptsz)
		res = WK_CALL(cuStreamGetCaptureInfo_v3, (CUstream)s, &st, &id, &g, &deps, &edges, &n);
	else
		res = WK_CALL(cuStreamGetCaptureInfo_v3_ptsz, (CUstream)s, &st, &id, &g, &deps, &edges, &n);
	if (res != CUDA_SUCCESS)
		return res;
	if (n > VG_CAPTURE_DEPS_MAX)
		return CUDA_ERROR_NOT_SUPPORTED;
	vg_put_u32(out, (uint32_t)st);
	vg_put_u64(out, id);
	wk_put_handle(out, g, VG_H_CUgraph);
	vg_put_u32(out, (uint32_t)n);
	for (i = 0; i < n; i++)
		wk_put_handle(out, deps ? deps[i] : NULL, VG_H_CUgraphNode);
	vg_put_u32(out, edges != NULL);
	if (edges)
		vg_put_bytes(out, edges, sizeof(*edges) * n);
	return CUDA_SUCCESS;
}

int wk_shm_contains(uint64_t p, uint64_t n)
{
	size_t i;
	int ok = 0;

	pthread_mutex_lock(&wk.lock);
	for (i = 0; i < wk.shm.cap && !ok; i++) {
		struct vg_hent *e = &wk.shm.slots[i];

		if (e->key && e->key != VG_HTAB_TOMB && p >= e->key && p - e->key <= e->val &&
		    n <= e->val - (p - e->key))
			ok = 1;
	}
	pthread_mutex_unlock(&wk.lock);
	return ok;
}

/* HOST_MEM: documented in include/vgpu/ops.h. */
static CUresult op_host_mem(struct wk_thread *t, struct vg_rd *r, struct vg_buf *out)
{
	uint32_t which = vg_get_u32(r), flags = 0;
	uint64_t a = vg_get_u64(r);
	struct vg_hent *e;
	struct stat st;
	void *p;
	CUresult res;

	if (which != VG_HM_FREE)
		flags = vg_get_u32(r);
	if (r->err || r->off != r->len || which > VG_HM_DEVPTR)
		wk_fatal("malformed HOST_MEM");
	switch (which) {
	case VG_HM_ALLOC:
		/* The memfd must be sealed against shrinking: the GPU DMAs into it. */
		if (t->fd_in < 0 || a == 0 || a > VG_HOST_ALLOC_MAX || fstat(t->fd_in, &st) < 0 ||
		    (uint64_t)st.st_size < a ||
		    !(fcntl(t->fd_in, F_GET_SEALS) & F_SEAL_SHRINK))
			wk_fatal("HOST_MEM ALLOC without a sealed memfd of the right size");
		p = mmap(NULL, a, PROT_READ | PROT_WRITE, MAP_SHARED, t->fd_in, 0);
		if (p == MAP_FAILED)
			return CUDA_ERROR_OUT_OF_MEMORY;
		res = WK_CALL(cuMemHostRegister_v2, p, a, CU_MEMHOSTREGISTER_PORTABLE | CU_MEMHOSTREGISTER_DEVICEMAP);
		if (res != CUDA_SUCCESS) {
			munmap(p, a);
			return res;
		}
		pthread_mutex_lock(&wk.lock);
		e = vg_htab_put(&wk.shm, (uint64_t)(uintptr_t)p, a, flags, NULL);
		pthread_mutex_unlock(&wk.lock);
		if (!e) {
			WK_CALL(cuMemHostUnregister, p);
			munmap(p, a);
			return CUDA_ERROR_OUT_OF_MEMORY;
		}
		vg_put_u64(out, (uint64_t)(uintptr_t)p);
		return CUDA_SUCCESS;
	case VG_HM_FREE: {
		uint64_t size = 0;

		pthread_mutex_lock(&wk.lock);
		e = vg_htab_get(&wk.shm, a);
		if (e) {
			size = e->val;
			vg_htab_del(&wk.shm, a);
		}
		pthread_mutex_unlock(&wk.lock);
		if (!size)
			return CUDA_ERROR_INVALID_VALUE;
		res = WK_CALL(cuMemHostUnregister, (void *)(uintptr_t)a);
		munmap((void *)(uintptr_t)a, size);
		return res;
	}
	default: {
		CUdeviceptr d = 0;

		if (!wk_shm_contains(a, 1))
			return CUDA_ERROR_INVALID_VALUE;
		res = WK_CALL(cuMemHostGetDevicePointer_v2, &d, (void *)(uintptr_t)a, flags);
		if (res == CUDA_SUCCESS)
			vg_put_u64(out, d);
		return res;
	}
	}
}

/* ATTR_VALUE: documented in include/vgpu/ops.h. */
static CUresult op_attr_value(struct vg_rd *r, struct vg_buf *out)
{
	uint32_t which = vg_get_u32(r), size, dev = 0;
	void *pool = NULL;
	uint8_t val[8] = { 0 };
	CUresult res = CUDA_SUCCESS;
	int attr, set;

	if (which > VG_AV_GRAPHMEM_SET)
		wk_fatal("malformed ATTR_VALUE");
	if (which <= VG_AV_POOL_SET)
		res = wk_get_handle(r, VG_H_CUmemoryPool, &pool);
	else
		dev = vg_get_u32(r);
	attr = (int)vg_get_u32(r);
	size = vg_attr_value_size(which, attr);
	set = which == VG_AV_POOL_SET || which == VG_AV_GRAPHMEM_SET;
	if (set && size) {
		const void *q = vg_get_bytes(r, size);

		if (q)
			memcpy(val, q, size);
	}
	if (r->err || r->off != r->len || !size)
		wk_fatal("malformed ATTR_VALUE");
	if (res != CUDA_SUCCESS)
		return res;
	switch (which) {
	case VG_AV_POOL_GET:
		res = WK_CALL(cuMemPoolGetAttribute, (CUmemoryPool)pool, (CUmemPool_attribute)attr, val);
		break;
	case VG_AV_POOL_SET:
		res = WK_CALL(cuMemPoolSetAttribute, (CUmemoryPool)pool, (CUmemPool_attribute)attr, val);
		break;
	case VG_AV_GRAPHMEM_GET:
		res = WK_CALL(cuDeviceGetGraphMemAttribute, (CUdevice)dev, (CUgraphMem_attribute)attr, val);
		break;
	default:
		res = WK_CALL(cuDeviceSetGraphMemAttribute, (CUdevice)dev, (CUgraphMem_attribute)attr, val);
		break;
	}
	if (res == CUDA_SUCCESS && !set)
		vg_put_blob(out, val, size);
	return res;
}

/* GRAPH_UPDATE: documented in libcuda/attrvalue.c. */
static CUresult op_graph_update(struct vg_rd *r, struct vg_buf *out)
{
	void *exec, *graph;
	CUresult r1 = wk_get_handle(r, VG_H_CUgraphExec, &exec);
	CUresult r2 = wk_get_handle(r, VG_H_CUgraph, &graph);
	CUgraphExecUpdateResultInfo info;
	CUresult res;

	if (r->err || r->off != r->len)
		wk_fatal("malformed GRAPH_UPDATE");
	if (r1 != CUDA_SUCCESS || r2 != CUDA_SUCCESS)
		return r1 != CUDA_SUCCESS ? r1 : r2;
	memset(&info, 0, sizeof(info));
	res = WK_CALL(cuGraphExecUpdate_v2, (CUgraphExec)exec, (CUgraph)graph, &info);
	vg_put_u32(out, (uint32_t)res);
	vg_put_u32(out, (uint32_t)info.result);
	wk_put_handle(out, info.errorNode, VG_H_CUgraphNode);
	wk_put_handle(out, info.errorFromNode, VG_H_CUgraphNode);
	return CUDA_SUCCESS;
}

/*
 * RING_ATTACH: u32 ring bytes, the memfd attached.  Checked now; the channel
 * moves to the rings right after the reply (which still goes on the socket).
 */
static CUresult op_ring_attach(struct wk_thread *t, struct vg_rd *r)
{
	uint32_t bytes = vg_get_u32(r);

	if (r->err || r->off != r->len || t->fd_in < 0 || t->callback)
		wk_fatal("malformed RING_ATTACH");
	if (bytes < 4096 || bytes > TP_RING_BYTES_MAX || (bytes & (bytes - 1)))
		wk_fatal("RING_ATTACH with %u-byte rings", bytes);
	t->ring_fd = dup(t->fd_in);
	if (t->ring_fd < 0)
		return CUDA_ERROR_OUT_OF_MEMORY;
	t->ring_bytes = bytes;
	return CUDA_SUCCESS;
}

CUresult wk_manual(struct wk_thread *t, uint32_t op, struct vg_rd *r, struct vg_buf *out)
{
	switch (op) {
	case VG_OP_SNAPSHOT:
		return op_snapshot(r, out);
	case VG_OP_MODULE_LOAD:
		return op_module_load(r, out);
	case VG_OP_FUNC_INFO:
		return op_func_info(r, out);
	case VG_OP_LAUNCH:
		return op_launch(r, 0);
	case VG_OP_LAUNCH_EX:
		return op_launch(r, 1);
	case VG_OP_LIBRARY_LOAD:
		return op_library_load(r, out);
	case VG_OP_MEMCPY2D:
		return op_memcpy(r, out, 0);
	case VG_OP_MEMCPY3D:
		return op_memcpy(r, out, 1);
	case VG_OP_POINTER_ATTR:
		return op_pointer_attr(r, out);
	case VG_OP_OCC_BLOCKSIZE:
		return op_occ_blocksize(t, r, out);
	case VG_OP_FUNC_NAME:
		return op_func_name(r, out);
	case VG_OP_CALLBACK_CHANNEL:
		return op_callback_channel(t, r);
	case VG_OP_HOST_FUNC:
		return op_host_func(r);
	case VG_OP_MEMLOC:
		return wk_memloc(r, out);
	case VG_OP_CAPTURE_INFO:
		return op_capture_info(r, out);
	case VG_OP_HOST_MEM:
		return op_host_mem(t, r, out);
	case VG_OP_ATTR_VALUE:
		return op_attr_value(r, out);
	case VG_OP_GRAPH_UPDATE:
		return op_graph_update(r, out);
	case VG_OP_RING_ATTACH:
		return op_ring_attach(t, r);
	case VG_OP_OCC_CLUSTERS:
		return op_occ_clusters(r, out);
	default:
		wk_fatal("unknown operation %#x", op);
	}
}

/* The client is gone: release what it left, so nothing outlives it. */
void wk_cleanup(void)
{
	int n = 0, i;
	size_t k;
	void *prim[VG_SNAP_DEV_MAX] = { 0 };

	wk.quiet = 1;
	if (WK_CALL(cuDeviceGetCount, &n) != CUDA_SUCCESS)
		return;
	if (n > VG_SNAP_DEV_MAX)
		n = VG_SNAP_DEV_MAX;
	for (i = 0; i < n; i++) {
		unsigned int flags;
		int active = 0;

		if (WK_CALL(cuDevicePrimaryCtxGetState, i, &flags, &active) == CUDA_SUCCESS && active) {
			CUcontext c = NULL;

			if (WK_CALL(cuDevicePrimaryCtxRetain, &c, i) == CUDA_SUCCESS) {
				prim[i] = c;
				WK_CALL(cuDevicePrimaryCtxRelease_v2, i);
			}
		}
	}
	for (k = 0; k < wk.ids.cap; k++) {
		struct vg_hent *e = &wk.ids.slots[k];

		if (e->key == 0 || e->key == VG_HTAB_TOMB || e->type != VG_H_CUcontext)
			continue;
		for (i = 0; i < n; i++)
			if (prim[i] == (void *)(uintptr_t)e->val)
				break;
		if (i == n)
			WK_CALL(cuCtxDestroy_v2, (CUcontext)(uintptr_t)e->val);
	}
	for (i = 0; i < n; i++)
		if (prim[i])
			WK_CALL(cuDevicePrimaryCtxReset_v2, i);
}
