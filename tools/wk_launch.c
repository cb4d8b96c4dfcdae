/*
 * The worker: launches (plain and Ex, cooperative) and occupancy queries,
 * the callback form included.
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

CUresult wk_op_launch(struct vg_rd *r, int ex)
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
CUresult wk_op_occ_clusters(struct vg_rd *r, struct vg_buf *out)
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

CUresult wk_op_occ_blocksize(struct wk_thread *t, struct vg_rd *r, struct vg_buf *out)
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
