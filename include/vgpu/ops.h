/*
 * Hand-written operations (op ids >= VG_OP_BASE), beside the generated
 * function ids, and host->guest calls.  Each payload is documented at its
 * handler in tools/wk_ops.c and at its caller in libcuda/.  Ids are frozen.
 */
#ifndef VGPU_OPS_H
#define VGPU_OPS_H

#include <stdint.h>

#include "vgpu/wire.h"

enum vg_op_more {
	VG_OP_MEMCPY2D      = VG_OP_BASE + 6,	/* cuMemcpy2D*, Unaligned, Async */
	VG_OP_MEMCPY3D      = VG_OP_BASE + 7,	/* cuMemcpy3D*, Async */
	VG_OP_POINTER_ATTR  = VG_OP_BASE + 8,	/* one cuPointerGetAttribute */
	VG_OP_OCC_BLOCKSIZE = VG_OP_BASE + 9,	/* cuOccupancyMaxPotentialBlockSize* */
	VG_OP_FUNC_NAME     = VG_OP_BASE + 10,	/* cuFuncGetName / cuKernelGetName */
	VG_OP_LAUNCH_EX     = VG_OP_BASE + 11,	/* cuLaunchKernelEx, cooperative launches */
	VG_OP_CALLBACK_CHANNEL = VG_OP_BASE + 12, /* this channel now carries host functions */
	VG_OP_HOST_FUNC     = VG_OP_BASE + 13,	/* cuLaunchHostFunc / cuStreamAddCallback */
	VG_OP_MEMLOC        = VG_OP_BASE + 14,	/* functions whose structs hold memory locations */
	VG_OP_CAPTURE_INFO  = VG_OP_BASE + 15,	/* cuStreamGetCaptureInfo_v2 / _v3 */
	VG_OP_HOST_MEM      = VG_OP_BASE + 16,	/* pinned memory shared with the worker */
	VG_OP_ATTR_VALUE    = VG_OP_BASE + 17,	/* pool and graph-memory attributes (void *value) */
	VG_OP_GRAPH_UPDATE  = VG_OP_BASE + 18,	/* cuGraphExecUpdate_v2 */
	VG_OP_RING_ATTACH   = VG_OP_BASE + 19,	/* u32 ring bytes, memfd attached: this channel moves to rings */
	VG_OP_OCC_CLUSTERS  = VG_OP_BASE + 20,	/* cuOccupancyMaxActiveClusters / MaxPotentialClusterSize */
	VG_OP_PRIMARY_PEEK  = VG_OP_BASE + 21,	/* a primary context's handle, not retained */
};

/* HOST_CALL ops (host -> guest, answered with HOST_RETURN). */
enum vg_host_call {
	VG_HC_OCCUPANCY_SMEM = 1,	/* i32 blockSize -> u64 dynamic shared memory bytes */
	VG_HC_HOST_FN = 2,		/* u64 fn, u64 userData: run a host function */
	VG_HC_STREAM_CB = 3,		/* u64 fn, u64 stream id, i32 status, u64 userData */
};

#define VG_RING_BYTES     (1u << 20)	/* each direction of a thread's shared-memory channel */

/* Device snapshot: attributes 0..VG_SNAP_ATTRS-1 are queried at cuInit. */
#define VG_SNAP_ATTRS     256
#define VG_SNAP_DEV_MAX   64
#define VG_SNAP_NAME_MAX  256
#define VG_SNAP_BUSID_MAX 64

/* Module images and kernel parameter layouts. */
#define VG_PARAMS_MAX     4096		/* parameters of one kernel */
#define VG_PARAM_BYTES_MAX (32u << 10)	/* a kernel's parameter buffer */

/* VG_OP_MEMLOC: which function; payloads at the handler in tools/wk_memloc.c. */
enum vg_memloc_fn {
	VG_ML_MEM_CREATE = 0,
	VG_ML_GRANULARITY = 1,
	VG_ML_SET_ACCESS = 2,
	VG_ML_GET_ACCESS = 3,
	VG_ML_POOL_CREATE = 4,
	VG_ML_POOL_SET_ACCESS = 5,
	VG_ML_POOL_GET_ACCESS = 6,
	VG_ML_PROPS_FROM_HANDLE = 7,
	VG_ML_ADVISE = 8,
	VG_ML_PREFETCH = 9,
	VG_ML_MAX = 9,
};
/*
 * VG_OP_HOST_MEM: u32 which, then
 *   ALLOC   u64 size, u32 flags, a sealed memfd attached -> u64 address
 *           (the worker mapped it there and registered it with the driver;
 *           the guest maps it at the same address)
 *   FREE    u64 address
 *   DEVPTR  u64 address, u32 flags -> u64 device pointer
 */
enum vg_host_mem_fn {
	VG_HM_ALLOC = 0,
	VG_HM_FREE = 1,
	VG_HM_DEVPTR = 2,
};
#define VG_HOST_ALLOC_MAX (64ull << 30)	/* one pinned allocation */

/*
 * VG_OP_ATTR_VALUE: u32 which, the object (u64 pool id, or u32 device),
 * u32 attribute, then for a set the value's bytes; a get replies with them.
 * Every attribute of these families is an int or a 64-bit integer.
 */
enum vg_attr_value_fn {
	VG_AV_POOL_GET = 0,
	VG_AV_POOL_SET = 1,
	VG_AV_GRAPHMEM_GET = 2,
	VG_AV_GRAPHMEM_SET = 3,
};

static inline uint32_t vg_attr_value_size(uint32_t which, int attr)
{
	if (which <= VG_AV_POOL_SET)
		return attr >= 1 && attr <= 3 ? 4 : attr >= 4 && attr <= 8 ? 8 : 0;
	return attr >= 0 && attr <= 3 ? 8 : 0;
}

#define VG_ACCESS_DESC_MAX 64	/* descriptors of one cuMemSetAccess */
#define VG_CAPTURE_DEPS_MAX 4096	/* dependencies one capture-info reply carries */

#define VG_GLOBAL_SYMS_MAX 65536	/* host-side symbol relocations of one library load */

#define VG_LAUNCH_ATTRS_MAX  32	/* attributes of one cuLaunchKernelEx */
#define VG_LAUNCH_ATTR_BYTES 64	/* one attribute's value */

/*
 * Module images (MODULE_LOAD, LIBRARY_LOAD) travel as pieces: the image
 * itself, then u32 n and the n fatbins of a version-2 wrapper.  A piece is
 *   u32 form
 *   VG_IMG_INLINE: blob (u32 len, the bytes)
 *   VG_IMG_CACHED: 32 bytes SHA-256 of the bytes, u32 len (1..VG_MSG_MAX)
 * A client offers VG_IMG_CACHED only when the session has VG_CAP_MODCACHE
 * and the piece has at least VG_IMG_CACHE_MIN bytes.  When the worker's
 * cache lacks a piece it answers the load with CUDA_SUCCESS and the payload
 *   u64 0, u32 n (1..count of pieces), n x u32 piece index (0: the image,
 *   1..: the wrapper's fatbins, in order)
 * and the client sends the load again with those pieces inline.  The worker
 * names each piece it receives inline by the hash it computes itself.
 */
enum vg_image_form {
	VG_IMG_INLINE = 0,
	VG_IMG_CACHED = 1,
};
#define VG_IMG_CACHE_MIN (16u << 10)
#define VG_IMG_PIECES_MAX 257	/* the image and a wrapper's 256 fatbins */

enum vg_module_kind {
	VG_MOD_DATA = 0,	/* cuModuleLoadData */
	VG_MOD_DATA_EX = 1,	/* cuModuleLoadDataEx, options dropped */
	VG_MOD_FATBIN = 2,	/* cuModuleLoadFatBinary */
};

/*
 * cuPointerGetAttribute: bytes the value of each attribute takes, 0 for an
 * attribute we do not know.  Handle-valued ones travel as u64 ids.
 */
static inline uint32_t vg_pointer_attr_size(int attr, int *is_handle)
{
	static const uint8_t sizes[] = {
		0, 8, 4, 8, 8, 16, 4, 8, 4, 4, 4, 8, 8, 4, 8, 4, 4, 8, 8, 8, 8, 4,
	};

	*is_handle = attr == 1 || attr == 17;
	if (attr <= 0 || attr >= (int)sizeof(sizes))
		return 0;
	return sizes[attr];
}

#define VG_PA_CONTEXT        1
#define VG_PA_DEVICE_ORDINAL 9
#define VG_PA_MEMPOOL        17

#endif
