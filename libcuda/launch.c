/*
 * Kernel launches.  The guest packs kernelParams into one buffer using the
 * function's parameter layout (asked once per function with
 * VG_OP_FUNC_INFO and kept with its handle); the host launches with
 * CU_LAUNCH_PARAM_BUFFER_POINTER.  Also the occupancy calculator with a
 * callback, which runs here while the host computes.
 */
#include <stdlib.h>
#include <string.h>

#include "lc.h"

void lc_set_occupancy_callback(size_t (*cb)(int));

struct lc_func {
	uint32_t n;		/* parameters */
	uint32_t size;		/* bytes of the packed buffer */
	uint32_t layout[];	/* n x (offset, size) */
};

static CUresult func_layout(uint64_t id, struct lc_func **out)
{
	struct lc_func *fi = lc_handle_data(id);
	struct vg_buf *b, rep;
	struct vg_rd r;
	CUresult res;
	uint32_t n, i;

	if (fi) {
		*out = fi;
		return CUDA_SUCCESS;
	}
	b = lc_scratch();
	if (!b)
		return CUDA_ERROR_DEVICE_UNAVAILABLE;
	vg_put_u64(b, id);
	vg_buf_init(&rep);
	res = lc_rpc(VG_OP_FUNC_INFO, b, &rep);
	if (res != CUDA_SUCCESS)
		goto out;
	vg_rd_init(&r, rep.p, rep.len);
	n = vg_get_u32(&r);
	if (r.err || n > VG_PARAMS_MAX) {
		res = CUDA_ERROR_UNKNOWN;
		goto out;
	}
	fi = calloc(1, sizeof(*fi) + sizeof(uint32_t) * 2 * n);
	if (!fi) {
		res = CUDA_ERROR_OUT_OF_MEMORY;
		goto out;
	}
	fi->n = n;
	for (i = 0; i < n; i++) {
		uint32_t off = vg_get_u32(&r), size = vg_get_u32(&r);

		fi->layout[2 * i] = off;
		fi->layout[2 * i + 1] = size;
		if ((uint64_t)off + size > VG_PARAM_BYTES_MAX) {
			r.err = -1;
			break;
		}
		if (off + size > fi->size)
			fi->size = off + size;
	}
	if (r.err) {
		free(fi);
		res = CUDA_ERROR_UNKNOWN;
		goto out;
	}
	lc_handle_set_data(id, fi);
	*out = lc_handle_data(id);
out:
	vg_buf_fini(&rep);
	return res;
}

/* Finds the packed buffer in an `extra` array. */
static CUresult parse_extra(void **extra, const void **buf, size_t *size)
{
	size_t i;
	const size_t *psize = NULL;

	*buf = NULL;
	for (i = 0; i < 64; i += 2) {
		if (extra[i] == CU_LAUNCH_PARAM_END)
			break;
		if (extra[i] == CU_LAUNCH_PARAM_BUFFER_POINTER)
			*buf = extra[i + 1];
		else if (extra[i] == CU_LAUNCH_PARAM_BUFFER_SIZE)
			psize = extra[i + 1];
		else
			return CUDA_ERROR_INVALID_VALUE;
	}
	if (i >= 64 || !*buf || !psize || *psize > VG_PARAM_BYTES_MAX)
		return CUDA_ERROR_INVALID_VALUE;
	*size = *psize;
	return CUDA_SUCCESS;
}

/* Packs the parameters of a launch into one buffer, as the host wants them. */
static CUresult pack_params(uint64_t id, void **kernelParams, void **extra, uint8_t *packed,
			    const void **params, size_t *size)
{
	struct lc_func *fi;
	CUresult res;
	uint32_t i;

	if (kernelParams && extra)
		return CUDA_ERROR_INVALID_VALUE;
	if (extra)
		return parse_extra(extra, params, size);
	res = func_layout(id, &fi);
	if (res != CUDA_SUCCESS)
		return res;
	if (fi->n && !kernelParams)
		return CUDA_ERROR_INVALID_VALUE;
	memset(packed, 0, fi->size);
	for (i = 0; i < fi->n; i++)
		memcpy(packed + fi->layout[2 * i], kernelParams[i], fi->layout[2 * i + 1]);
	*params = packed;
	*size = fi->size;
	return CUDA_SUCCESS;
}

_Static_assert(sizeof(((CUlaunchAttribute *)0)->value) == VG_LAUNCH_ATTR_BYTES,
	       "a launch attribute value travels as VG_LAUNCH_ATTR_BYTES");

struct launch_dims {
	unsigned int g[3], b[3], shmem;
	CUstream stream;
};

/*
 * Launch geometry the driver refuses at once, checked here because launches
 * do not wait for the host: against the largest limits of any device, so a
 * launch the driver would accept is never refused.
 */
static CUresult check_dims(const struct launch_dims *dm)
{
	static const int lim[] = {
		CU_DEVICE_ATTRIBUTE_MAX_GRID_DIM_X, CU_DEVICE_ATTRIBUTE_MAX_GRID_DIM_Y,
		CU_DEVICE_ATTRIBUTE_MAX_GRID_DIM_Z, CU_DEVICE_ATTRIBUTE_MAX_BLOCK_DIM_X,
		CU_DEVICE_ATTRIBUTE_MAX_BLOCK_DIM_Y, CU_DEVICE_ATTRIBUTE_MAX_BLOCK_DIM_Z,
	};
	unsigned int v[6] = { dm->g[0], dm->g[1], dm->g[2], dm->b[0], dm->b[1], dm->b[2] };
	uint64_t threads = (uint64_t)dm->b[0] * dm->b[1] * dm->b[2], maxthreads = 0;
	int i, k;

	for (i = 0; i < 6; i++)
		if (v[i] == 0)
			return CUDA_ERROR_INVALID_VALUE;
	for (k = 0; k < lc.ndev; k++) {
		const struct lc_device *d = &lc.dev[k];
		int ok = 1;

		for (i = 0; i < 6; i++)
			if (d->attr_status[lim[i]] == CUDA_SUCCESS && v[i] > (unsigned int)d->attr_value[lim[i]])
				ok = 0;
		if (ok && d->attr_status[CU_DEVICE_ATTRIBUTE_MAX_THREADS_PER_BLOCK] == CUDA_SUCCESS &&
		    (uint64_t)d->attr_value[CU_DEVICE_ATTRIBUTE_MAX_THREADS_PER_BLOCK] > maxthreads)
			maxthreads = (uint64_t)d->attr_value[CU_DEVICE_ATTRIBUTE_MAX_THREADS_PER_BLOCK];
	}
	if (lc.ndev && (maxthreads == 0 || threads > maxthreads))
		return CUDA_ERROR_INVALID_VALUE;
	return CUDA_SUCCESS;
}

/*
 * LAUNCH:    u64 function, u32 grid x y z, u32 block x y z, u32 shared bytes,
 *            u64 stream, blob parameters.
 * LAUNCH_EX: the same, then u32 nattrs (<= VG_LAUNCH_ATTRS_MAX) and per
 *            attribute u32 id + VG_LAUNCH_ATTR_BYTES of value (event handles
 *            in the value as ids), before the blob.
 */
/* Geometry, stream and (ex) attributes, as LAUNCH / LAUNCH_EX carry them. */
static CUresult put_config(struct vg_buf *b, const struct launch_dims *dm, const CUlaunchAttribute *attrs,
			   unsigned int nattrs, int ex)
{
	CUresult res;
	unsigned int i;

	for (i = 0; i < 3; i++)
		vg_put_u32(b, dm->g[i]);
	for (i = 0; i < 3; i++)
		vg_put_u32(b, dm->b[i]);
	vg_put_u32(b, dm->shmem);
	res = lc_put_handle(b, dm->stream, VG_H_CUstream, 1);
	if (res != CUDA_SUCCESS || !ex)
		return res;
	vg_put_u32(b, nattrs);
	for (i = 0; i < nattrs; i++) {
		uint8_t v[VG_LAUNCH_ATTR_BYTES];

		memcpy(v, &attrs[i].value, sizeof(attrs[i].value));
		switch ((int)attrs[i].id) {
		case CU_LAUNCH_ATTRIBUTE_PROGRAMMATIC_EVENT:
		case CU_LAUNCH_ATTRIBUTE_LAUNCH_COMPLETION_EVENT: {
			CUevent e;

			memcpy(&e, v, sizeof(e));
			if (!e || !lc_handle_known((uint64_t)(uintptr_t)e, VG_H_CUevent))
				return CUDA_ERROR_INVALID_HANDLE;
			break;
		}
		case CU_LAUNCH_ATTRIBUTE_DEVICE_UPDATABLE_KERNEL_NODE:
			VG_WARN("cuLaunchKernelEx: device-updatable kernel nodes are not supported yet");
			return CUDA_ERROR_NOT_SUPPORTED;
		default:
			break;
		}
		vg_put_u32(b, (uint32_t)attrs[i].id);
		vg_put_bytes(b, v, sizeof(v));
	}
	return CUDA_SUCCESS;
}

static void dims_from_config(const CUlaunchConfig *config, struct launch_dims *dm)
{
	dm->g[0] = config->gridDimX;
	dm->g[1] = config->gridDimY;
	dm->g[2] = config->gridDimZ;
	dm->b[0] = config->blockDimX;
	dm->b[1] = config->blockDimY;
	dm->b[2] = config->blockDimZ;
	dm->shmem = config->sharedMemBytes;
	dm->stream = config->hStream;
}

static CUresult launch(CUfunction f, const struct launch_dims *dm, const CUlaunchAttribute *attrs,
		       unsigned int nattrs, int ex, void **kernelParams, void **extra)
{
	uint64_t id = (uint64_t)(uintptr_t)f;
	uint8_t packed[VG_PARAM_BYTES_MAX];
	const void *params = packed;
	size_t size = 0;
	struct vg_buf *b, rep;
	CUresult res = lc_check();

	if (res != CUDA_SUCCESS)
		return res;
	if (!f || !lc_handle_known(id, VG_H_CUfunction))
		return CUDA_ERROR_INVALID_HANDLE;
	if (nattrs > VG_LAUNCH_ATTRS_MAX || (nattrs && !attrs))
		return CUDA_ERROR_INVALID_VALUE;
	res = check_dims(dm);
	if (res != CUDA_SUCCESS) {
		VG_DEBUG("launch refused: grid %ux%ux%u block %ux%ux%u", dm->g[0], dm->g[1], dm->g[2], dm->b[0],
			 dm->b[1], dm->b[2]);
		return res;
	}
	res = lc_async_precheck();
	if (res != CUDA_SUCCESS)
		return res;
	res = pack_params(id, kernelParams, extra, packed, &params, &size);
	if (res != CUDA_SUCCESS) {
		VG_DEBUG("launch: parameters not packed: %d", res);
		return res;
	}
	b = lc_scratch();
	if (!b)
		return CUDA_ERROR_DEVICE_UNAVAILABLE;
	vg_put_u64(b, id);
	res = put_config(b, dm, attrs, nattrs, ex);
	if (res != CUDA_SUCCESS)
		return res;
	vg_put_blob(b, params, (uint32_t)size);
	/* A launch has no outputs: it does not wait for the host. */
	res = lc_send_async(ex ? VG_OP_LAUNCH_EX : VG_OP_LAUNCH, b);
	if (res != CUDA_ERROR_NOT_SUPPORTED)
		return res;
	vg_buf_init(&rep);
	res = lc_rpc(ex ? VG_OP_LAUNCH_EX : VG_OP_LAUNCH, b, &rep);
	vg_buf_fini(&rep);
	return res;
}

static CUresult launch_plain(CUfunction f, unsigned int gx, unsigned int gy, unsigned int gz, unsigned int bx,
			     unsigned int by, unsigned int bz, unsigned int shmem, CUstream s, void **kernelParams,
			     void **extra, int cooperative)
{
	struct launch_dims dm = { { gx, gy, gz }, { bx, by, bz }, shmem, s };
	CUlaunchAttribute coop;

	if (!cooperative)
		return launch(f, &dm, NULL, 0, 0, kernelParams, extra);
	memset(&coop, 0, sizeof(coop));
	coop.id = CU_LAUNCH_ATTRIBUTE_COOPERATIVE;
	coop.value.cooperative = 1;
	return launch(f, &dm, &coop, 1, 1, kernelParams, NULL);
}

static CUresult launch_ex(const CUlaunchConfig *config, CUfunction f, void **kernelParams, void **extra,
			  int ptsz)
{
	struct launch_dims dm;

	if (!config)
		return CUDA_ERROR_INVALID_VALUE;
	dims_from_config(config, &dm);
	if (ptsz && !dm.stream)
		dm.stream = CU_STREAM_PER_THREAD;
	return launch(f, &dm, config->attrs, config->numAttrs, 1, kernelParams, extra);
}

VG_EXPORT CUresult cuLaunchKernelEx(const CUlaunchConfig *config, CUfunction f, void **kernelParams, void **extra)
{
	return launch_ex(config, f, kernelParams, extra, 0);
}

VG_EXPORT CUresult cuLaunchKernelEx_ptsz(const CUlaunchConfig *config, CUfunction f, void **kernelParams,
					 void **extra)
{
	return launch_ex(config, f, kernelParams, extra, 1);
}

VG_EXPORT CUresult cuLaunchCooperativeKernel(CUfunction f, unsigned int gridDimX, unsigned int gridDimY,
					     unsigned int gridDimZ, unsigned int blockDimX, unsigned int blockDimY,
					     unsigned int blockDimZ, unsigned int sharedMemBytes, CUstream hStream,
					     void **kernelParams)
{
	return launch_plain(f, gridDimX, gridDimY, gridDimZ, blockDimX, blockDimY, blockDimZ, sharedMemBytes,
			    hStream, kernelParams, NULL, 1);
}

VG_EXPORT CUresult cuLaunchCooperativeKernel_ptsz(CUfunction f, unsigned int gridDimX, unsigned int gridDimY,
						  unsigned int gridDimZ, unsigned int blockDimX,
						  unsigned int blockDimY, unsigned int blockDimZ,
						  unsigned int sharedMemBytes, CUstream hStream, void **kernelParams)
{
	return launch_plain(f, gridDimX, gridDimY, gridDimZ, blockDimX, blockDimY, blockDimZ, sharedMemBytes,
			    hStream ? hStream : CU_STREAM_PER_THREAD, kernelParams, NULL, 1);
}

VG_EXPORT CUresult cuLaunchKernel(CUfunction f, unsigned int gridDimX, unsigned int gridDimY,
				  unsigned int gridDimZ, unsigned int blockDimX, unsigned int blockDimY,
				  unsigned int blockDimZ, unsigned int sharedMemBytes, CUstream hStream,
				  void **kernelParams, void **extra)
{
	return launch_plain(f, gridDimX, gridDimY, gridDimZ, blockDimX, blockDimY, blockDimZ, sharedMemBytes,
			    hStream, kernelParams, extra, 0);
}

VG_EXPORT CUresult cuLaunchKernel_ptsz(CUfunction f, unsigned int gridDimX, unsigned int gridDimY,
				       unsigned int gridDimZ, unsigned int blockDimX, unsigned int blockDimY,
				       unsigned int blockDimZ, unsigned int sharedMemBytes, CUstream hStream,
				       void **kernelParams, void **extra)
{
	/* In the per-thread-default-stream build, NULL means this thread's stream. */
	if (!hStream)
		hStream = CU_STREAM_PER_THREAD;
	return launch_plain(f, gridDimX, gridDimY, gridDimZ, blockDimX, blockDimY, blockDimZ, sharedMemBytes,
			    hStream, kernelParams, extra, 0);
}

static CUresult occupancy(int *minGridSize, int *blockSize, CUfunction func, CUoccupancyB2DSize cb,
			  size_t dynamicSMemSize, int blockSizeLimit, unsigned int flags)
{
	uint64_t id = (uint64_t)(uintptr_t)func;
	struct vg_buf *b, rep;
	struct vg_rd r;
	CUresult res = lc_check();

	if (res != CUDA_SUCCESS)
		return res;
	if (!minGridSize || !blockSize)
		return CUDA_ERROR_INVALID_VALUE;
	if (!func || !lc_handle_known(id, VG_H_CUfunction))
		return CUDA_ERROR_INVALID_HANDLE;
	b = lc_scratch();
	if (!b)
		return CUDA_ERROR_DEVICE_UNAVAILABLE;
	vg_put_u64(b, id);
	vg_put_u64(b, dynamicSMemSize);
	vg_put_u32(b, (uint32_t)blockSizeLimit);
	vg_put_u32(b, flags);
	vg_put_u32(b, cb != NULL);
	lc_set_occupancy_callback(cb);
	vg_buf_init(&rep);
	res = lc_rpc(VG_OP_OCC_BLOCKSIZE, b, &rep);
	lc_set_occupancy_callback(NULL);
	if (res == CUDA_SUCCESS) {
		vg_rd_init(&r, rep.p, rep.len);
		*minGridSize = (int)vg_get_u32(&r);
		*blockSize = (int)vg_get_u32(&r);
		if (r.err)
			res = CUDA_ERROR_UNKNOWN;
	}
	vg_buf_fini(&rep);
	return res;
}

VG_EXPORT CUresult cuOccupancyMaxPotentialBlockSize(int *minGridSize, int *blockSize, CUfunction func,
						    CUoccupancyB2DSize blockSizeToDynamicSMemSize,
						    size_t dynamicSMemSize, int blockSizeLimit)
{
	return occupancy(minGridSize, blockSize, func, blockSizeToDynamicSMemSize, dynamicSMemSize,
			 blockSizeLimit, 0);
}

VG_EXPORT CUresult cuOccupancyMaxPotentialBlockSizeWithFlags(int *minGridSize, int *blockSize,
							     CUfunction func,
							     CUoccupancyB2DSize blockSizeToDynamicSMemSize,
							     size_t dynamicSMemSize, int blockSizeLimit,
							     unsigned int flags)
{
	return occupancy(minGridSize, blockSize, func, blockSizeToDynamicSMemSize, dynamicSMemSize,
			 blockSizeLimit, flags);
}

/*
 * OCC_CLUSTERS: u32 which (0 max active clusters, 1 max potential cluster
 * size), u64 function, the configuration as LAUNCH_EX carries it.  Reply:
 * i32 the answer.
 */
static CUresult occ_clusters(uint32_t which, int *out, CUfunction func, const CUlaunchConfig *config)
{
	uint64_t id = (uint64_t)(uintptr_t)func;
	struct launch_dims dm;
	struct vg_buf *b, rep;
	struct vg_rd r;
	CUresult res = lc_check();

	if (res != CUDA_SUCCESS)
		return res;
	if (!out || !config || (config->numAttrs && !config->attrs) || config->numAttrs > VG_LAUNCH_ATTRS_MAX)
		return CUDA_ERROR_INVALID_VALUE;
	if (!func || !lc_handle_known(id, VG_H_CUfunction))
		return CUDA_ERROR_INVALID_HANDLE;
	dims_from_config(config, &dm);
	b = lc_scratch();
	if (!b)
		return CUDA_ERROR_DEVICE_UNAVAILABLE;
	vg_put_u32(b, which);
	vg_put_u64(b, id);
	res = put_config(b, &dm, config->attrs, config->numAttrs, 1);
	if (res != CUDA_SUCCESS)
		return res;
	vg_buf_init(&rep);
	res = lc_rpc(VG_OP_OCC_CLUSTERS, b, &rep);
	if (res == CUDA_SUCCESS) {
		vg_rd_init(&r, rep.p, rep.len);
		*out = (int)vg_get_u32(&r);
		if (r.err)
			res = CUDA_ERROR_UNKNOWN;
	}
	vg_buf_fini(&rep);
	return res;
}

VG_EXPORT CUresult cuOccupancyMaxActiveClusters(int *numClusters, CUfunction func, const CUlaunchConfig *config)
{
	return occ_clusters(0, numClusters, func, config);
}

VG_EXPORT CUresult cuOccupancyMaxPotentialClusterSize(int *clusterSize, CUfunction func, const CUlaunchConfig *config)
{
	return occ_clusters(1, clusterSize, func, config);
}
