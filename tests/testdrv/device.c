/* SPDX-License-Identifier: MIT */
/*
 * The two test devices: names, UUIDs, PCI bus ids, memory and every
 * attribute.  Values are those of a small H100 (compute capability 9.0,
 * 4 SMs) so that programs which size their work by the device behave.
 */
#include <stdio.h>
#include <string.h>

#include "td.h"

#define A(name) [CU_DEVICE_ATTRIBUTE_##name]

/* 0 is a valid value; every index 1..CU_DEVICE_ATTRIBUTE_MAX-1 is known. */
static const int td_attrs[CU_DEVICE_ATTRIBUTE_MAX] = {
	A(MAX_THREADS_PER_BLOCK) = 1024,
	A(MAX_BLOCK_DIM_X) = 1024,
	A(MAX_BLOCK_DIM_Y) = 1024,
	A(MAX_BLOCK_DIM_Z) = 64,
	A(MAX_GRID_DIM_X) = 2147483647,
	A(MAX_GRID_DIM_Y) = 65535,
	A(MAX_GRID_DIM_Z) = 65535,
	A(MAX_SHARED_MEMORY_PER_BLOCK) = TD_SMEM_DEFAULT,
	A(TOTAL_CONSTANT_MEMORY) = 65536,
	A(WARP_SIZE) = 32,
	A(MAX_PITCH) = 2147483647,
	A(MAX_REGISTERS_PER_BLOCK) = 65536,
	A(CLOCK_RATE) = 1755000,
	A(TEXTURE_ALIGNMENT) = 512,
	A(GPU_OVERLAP) = 1,
	A(MULTIPROCESSOR_COUNT) = 4,
	A(KERNEL_EXEC_TIMEOUT) = 0,
	A(INTEGRATED) = 0,
	A(CAN_MAP_HOST_MEMORY) = 1,
	A(COMPUTE_MODE) = 0,
	A(MAXIMUM_TEXTURE1D_WIDTH) = 131072,
	A(MAXIMUM_TEXTURE2D_WIDTH) = 131072,
	A(MAXIMUM_TEXTURE2D_HEIGHT) = 65536,
	A(MAXIMUM_TEXTURE3D_WIDTH) = 16384,
	A(MAXIMUM_TEXTURE3D_HEIGHT) = 16384,
	A(MAXIMUM_TEXTURE3D_DEPTH) = 16384,
	A(MAXIMUM_TEXTURE2D_LAYERED_WIDTH) = 32768,
	A(MAXIMUM_TEXTURE2D_LAYERED_HEIGHT) = 32768,
	A(MAXIMUM_TEXTURE2D_LAYERED_LAYERS) = 2048,
	A(SURFACE_ALIGNMENT) = 512,
	A(CONCURRENT_KERNELS) = 1,
	A(ECC_ENABLED) = 1,
	A(PCI_BUS_ID) = 1,	/* per device: see td_attr_value */
	A(PCI_DEVICE_ID) = 0,
	A(TCC_DRIVER) = 0,
	A(MEMORY_CLOCK_RATE) = 2619000,
	A(GLOBAL_MEMORY_BUS_WIDTH) = 5120,
	A(L2_CACHE_SIZE) = 52428800,
	A(MAX_THREADS_PER_MULTIPROCESSOR) = 2048,
	A(ASYNC_ENGINE_COUNT) = 3,
	A(UNIFIED_ADDRESSING) = 1,
	A(MAXIMUM_TEXTURE1D_LAYERED_WIDTH) = 32768,
	A(MAXIMUM_TEXTURE1D_LAYERED_LAYERS) = 2048,
	A(CAN_TEX2D_GATHER) = 0,
	A(MAXIMUM_TEXTURE2D_GATHER_WIDTH) = 32768,
	A(MAXIMUM_TEXTURE2D_GATHER_HEIGHT) = 32768,
	A(MAXIMUM_TEXTURE3D_WIDTH_ALTERNATE) = 8192,
	A(MAXIMUM_TEXTURE3D_HEIGHT_ALTERNATE) = 8192,
	A(MAXIMUM_TEXTURE3D_DEPTH_ALTERNATE) = 32768,
	A(PCI_DOMAIN_ID) = 0,
	A(TEXTURE_PITCH_ALIGNMENT) = 32,
	A(MAXIMUM_TEXTURECUBEMAP_WIDTH) = 32768,
	A(MAXIMUM_TEXTURECUBEMAP_LAYERED_WIDTH) = 32768,
	A(MAXIMUM_TEXTURECUBEMAP_LAYERED_LAYERS) = 2046,
	A(MAXIMUM_SURFACE1D_WIDTH) = 32768,
	A(MAXIMUM_SURFACE2D_WIDTH) = 131072,
	A(MAXIMUM_SURFACE2D_HEIGHT) = 65536,
	A(MAXIMUM_SURFACE3D_WIDTH) = 16384,
	A(MAXIMUM_SURFACE3D_HEIGHT) = 16384,
	A(MAXIMUM_SURFACE3D_DEPTH) = 16384,
	A(MAXIMUM_SURFACE1D_LAYERED_WIDTH) = 32768,
	A(MAXIMUM_SURFACE1D_LAYERED_LAYERS) = 2048,
	A(MAXIMUM_SURFACE2D_LAYERED_WIDTH) = 32768,
	A(MAXIMUM_SURFACE2D_LAYERED_HEIGHT) = 32768,
	A(MAXIMUM_SURFACE2D_LAYERED_LAYERS) = 2048,
	A(MAXIMUM_SURFACECUBEMAP_WIDTH) = 32768,
	A(MAXIMUM_SURFACECUBEMAP_LAYERED_WIDTH) = 32768,
	A(MAXIMUM_SURFACECUBEMAP_LAYERED_LAYERS) = 2046,
	A(MAXIMUM_TEXTURE1D_LINEAR_WIDTH) = 268435456,
	A(MAXIMUM_TEXTURE2D_LINEAR_WIDTH) = 131072,
	A(MAXIMUM_TEXTURE2D_LINEAR_HEIGHT) = 65000,
	A(MAXIMUM_TEXTURE2D_LINEAR_PITCH) = 2097120,
	A(MAXIMUM_TEXTURE2D_MIPMAPPED_WIDTH) = 32768,
	A(MAXIMUM_TEXTURE2D_MIPMAPPED_HEIGHT) = 32768,
	A(COMPUTE_CAPABILITY_MAJOR) = 9,
	A(COMPUTE_CAPABILITY_MINOR) = 0,
	A(MAXIMUM_TEXTURE1D_MIPMAPPED_WIDTH) = 32768,
	A(STREAM_PRIORITIES_SUPPORTED) = 1,
	A(GLOBAL_L1_CACHE_SUPPORTED) = 1,
	A(LOCAL_L1_CACHE_SUPPORTED) = 1,
	A(MAX_SHARED_MEMORY_PER_MULTIPROCESSOR) = 233472,
	A(MAX_REGISTERS_PER_MULTIPROCESSOR) = 65536,
	A(MANAGED_MEMORY) = 1,
	A(MULTI_GPU_BOARD) = 0,
	A(MULTI_GPU_BOARD_GROUP_ID) = 0,	/* per device */
	A(HOST_NATIVE_ATOMIC_SUPPORTED) = 0,
	A(SINGLE_TO_DOUBLE_PRECISION_PERF_RATIO) = 2,
	A(PAGEABLE_MEMORY_ACCESS) = 0,
	A(CONCURRENT_MANAGED_ACCESS) = 1,
	A(COMPUTE_PREEMPTION_SUPPORTED) = 1,
	A(CAN_USE_HOST_POINTER_FOR_REGISTERED_MEM) = 1,
	A(CAN_USE_STREAM_MEM_OPS_V1) = 1,
	A(CAN_USE_64_BIT_STREAM_MEM_OPS_V1) = 1,
	A(CAN_USE_STREAM_WAIT_VALUE_NOR_V1) = 1,
	A(COOPERATIVE_LAUNCH) = 1,
	A(COOPERATIVE_MULTI_DEVICE_LAUNCH) = 1,
	A(MAX_SHARED_MEMORY_PER_BLOCK_OPTIN) = TD_SMEM_OPTIN_MAX,
	A(CAN_FLUSH_REMOTE_WRITES) = 0,
	A(HOST_REGISTER_SUPPORTED) = 1,
	A(PAGEABLE_MEMORY_ACCESS_USES_HOST_PAGE_TABLES) = 0,
	A(DIRECT_MANAGED_MEM_ACCESS_FROM_HOST) = 0,
	A(VIRTUAL_MEMORY_MANAGEMENT_SUPPORTED) = 1,
	A(HANDLE_TYPE_POSIX_FILE_DESCRIPTOR_SUPPORTED) = 1,
	A(HANDLE_TYPE_WIN32_HANDLE_SUPPORTED) = 0,
	A(HANDLE_TYPE_WIN32_KMT_HANDLE_SUPPORTED) = 0,
	A(MAX_BLOCKS_PER_MULTIPROCESSOR) = 32,
	A(GENERIC_COMPRESSION_SUPPORTED) = 1,
	A(MAX_PERSISTING_L2_CACHE_SIZE) = 32505856,
	A(MAX_ACCESS_POLICY_WINDOW_SIZE) = 134213632,
	A(GPU_DIRECT_RDMA_WITH_CUDA_VMM_SUPPORTED) = 0,
	A(RESERVED_SHARED_MEMORY_PER_BLOCK) = 1024,
	A(SPARSE_CUDA_ARRAY_SUPPORTED) = 1,
	A(READ_ONLY_HOST_REGISTER_SUPPORTED) = 1,
	A(TIMELINE_SEMAPHORE_INTEROP_SUPPORTED) = 1,
	A(MEMORY_POOLS_SUPPORTED) = 1,
	A(GPU_DIRECT_RDMA_SUPPORTED) = 0,
	A(GPU_DIRECT_RDMA_FLUSH_WRITES_OPTIONS) = 0,
	A(GPU_DIRECT_RDMA_WRITES_ORDERING) = 0,
	A(MEMPOOL_SUPPORTED_HANDLE_TYPES) = 9,
	A(CLUSTER_LAUNCH) = 1,
	A(DEFERRED_MAPPING_CUDA_ARRAY_SUPPORTED) = 1,
	A(CAN_USE_64_BIT_STREAM_MEM_OPS) = 1,
	A(CAN_USE_STREAM_WAIT_VALUE_NOR) = 1,
	A(DMA_BUF_SUPPORTED) = 0,
	A(IPC_EVENT_SUPPORTED) = 1,
	A(MEM_SYNC_DOMAIN_COUNT) = 4,
	A(TENSOR_MAP_ACCESS_SUPPORTED) = 1,
	A(HANDLE_TYPE_FABRIC_SUPPORTED) = 0,
	A(UNIFIED_FUNCTION_POINTERS) = 1,
	A(NUMA_CONFIG) = 0,
	A(NUMA_ID) = -1,
	A(MULTICAST_SUPPORTED) = 0,
	A(MPS_ENABLED) = 0,
	A(HOST_NUMA_ID) = 0,
	A(D3D12_CIG_SUPPORTED) = 0,
	A(MEM_DECOMPRESS_ALGORITHM_MASK) = 0,
	A(MEM_DECOMPRESS_MAXIMUM_LENGTH) = 0,
	A(VULKAN_CIG_SUPPORTED) = 0,
	A(GPU_PCI_DEVICE_ID) = 0x233010de,
	A(GPU_PCI_SUBSYSTEM_ID) = 0x16c110de,
	A(HOST_NUMA_VIRTUAL_MEMORY_MANAGEMENT_SUPPORTED) = 0,
	A(HOST_NUMA_MEMORY_POOLS_SUPPORTED) = 0,
	A(HOST_NUMA_MULTINODE_IPC_SUPPORTED) = 0,
	A(HOST_MEMORY_POOLS_SUPPORTED) = 0,
	A(HOST_VIRTUAL_MEMORY_MANAGEMENT_SUPPORTED) = 0,
	A(HOST_ALLOC_DMA_BUF_SUPPORTED) = 0,
	A(ONLY_PARTIAL_HOST_NATIVE_ATOMIC_SUPPORTED) = 0,
};

/* Device ordinal check shared by every per-device call. */
static CUresult td_dev_check(CUdevice dev)
{
	CUresult res = td_check_init();

	if (res != CUDA_SUCCESS)
		return res;
	if (dev < 0 || dev >= TD_DEV_COUNT)
		return CUDA_ERROR_INVALID_DEVICE;
	return CUDA_SUCCESS;
}

static int td_attr_value(int attr, int dev)
{
	switch (attr) {
	case CU_DEVICE_ATTRIBUTE_PCI_BUS_ID:
		return dev + 1;
	case CU_DEVICE_ATTRIBUTE_MULTI_GPU_BOARD_GROUP_ID:
		return dev;
	default:
		return td_attrs[attr];
	}
}

TD_EXPORT CUresult cuDeviceGetCount(int *count)
{
	CUresult res = td_check_init();

	if (res != CUDA_SUCCESS)
		return res;
	if (!count)
		return CUDA_ERROR_INVALID_VALUE;
	*count = TD_DEV_COUNT;
	return CUDA_SUCCESS;
}

TD_EXPORT CUresult cuDeviceGet(CUdevice *device, int ordinal)
{
	CUresult res = td_check_init();

	if (res != CUDA_SUCCESS)
		return res;
	if (!device)
		return CUDA_ERROR_INVALID_VALUE;
	if (ordinal < 0 || ordinal >= TD_DEV_COUNT)
		return CUDA_ERROR_INVALID_DEVICE;
	*device = ordinal;
	return CUDA_SUCCESS;
}

TD_EXPORT CUresult cuDeviceGetName(char *name, int len, CUdevice dev)
{
	CUresult res = td_dev_check(dev);

	if (res != CUDA_SUCCESS)
		return res;
	if (!name || len <= 0)
		return CUDA_ERROR_INVALID_VALUE;
	snprintf(name, (size_t)len, "vgpu CPU test device %d", dev);
	return CUDA_SUCCESS;
}

/* Fixed, distinct, version-4-shaped UUIDs. */
static void td_uuid(CUdevice dev, CUuuid *u)
{
	static const unsigned char base[16] = {
		0x76, 0x67, 0x70, 0x75, 0x2d, 0x74, 0x64, 0x40,
		0x80, 0x00, 0x43, 0x50, 0x55, 0x74, 0x65, 0x00,
	};

	memcpy(u->bytes, base, sizeof(base));
	u->bytes[6] = 0x40 | (unsigned char)dev;
	u->bytes[15] = (unsigned char)(0x10 + dev);
}

TD_EXPORT CUresult cuDeviceGetUuid(CUuuid *uuid, CUdevice dev)
{
	CUresult res = td_dev_check(dev);

	if (res != CUDA_SUCCESS)
		return res;
	if (!uuid)
		return CUDA_ERROR_INVALID_VALUE;
	td_uuid(dev, uuid);
	return CUDA_SUCCESS;
}

TD_EXPORT CUresult cuDeviceGetUuid_v2(CUuuid *uuid, CUdevice dev)
{
	return cuDeviceGetUuid(uuid, dev);
}

/* The real driver's form: 4-digit domain, 2-digit bus, device and function. */
TD_EXPORT CUresult cuDeviceGetPCIBusId(char *pciBusId, int len, CUdevice dev)
{
	CUresult res = td_dev_check(dev);

	if (res != CUDA_SUCCESS)
		return res;
	if (!pciBusId || len <= 0)
		return CUDA_ERROR_INVALID_VALUE;
	snprintf(pciBusId, (size_t)len, "%04X:%02X:%02X.0", 0, dev + 1, 0);
	return CUDA_SUCCESS;
}

/* Accepts "domain:bus:device.function" and "bus:device.function", hex. */
TD_EXPORT CUresult cuDeviceGetByPCIBusId(CUdevice *dev, const char *pciBusId)
{
	CUresult res = td_check_init();
	unsigned dom = 0, bus, devn, fn = 0;
	char tail;

	if (res != CUDA_SUCCESS)
		return res;
	if (!dev || !pciBusId)
		return CUDA_ERROR_INVALID_VALUE;
	if (sscanf(pciBusId, "%x:%x:%x.%x%c", &dom, &bus, &devn, &fn, &tail) != 4) {
		dom = 0;
		fn = 0;
		if (sscanf(pciBusId, "%x:%x.%x%c", &bus, &devn, &fn, &tail) != 3)
			return CUDA_ERROR_INVALID_VALUE;
	}
	if (dom != 0 || devn != 0 || fn != 0 || bus < 1 || bus > TD_DEV_COUNT)
		return CUDA_ERROR_INVALID_DEVICE;
	*dev = (CUdevice)(bus - 1);
	return CUDA_SUCCESS;
}

TD_EXPORT CUresult cuDeviceTotalMem_v2(size_t *bytes, CUdevice dev)
{
	CUresult res = td_dev_check(dev);

	if (res != CUDA_SUCCESS)
		return res;
	if (!bytes)
		return CUDA_ERROR_INVALID_VALUE;
	*bytes = TD_DEV_MEM;
	return CUDA_SUCCESS;
}

TD_EXPORT CUresult cuDeviceGetAttribute(int *pi, CUdevice_attribute attrib, CUdevice dev)
{
	CUresult res = td_dev_check(dev);

	if (res != CUDA_SUCCESS)
		return res;
	if (!pi || (int)attrib < 1 || (int)attrib >= CU_DEVICE_ATTRIBUTE_MAX)
		return CUDA_ERROR_INVALID_VALUE;
	*pi = td_attr_value((int)attrib, dev);
	return CUDA_SUCCESS;
}

TD_EXPORT CUresult cuDeviceComputeCapability(int *major, int *minor, CUdevice dev)
{
	CUresult res = td_dev_check(dev);

	if (res != CUDA_SUCCESS)
		return res;
	if (!major || !minor)
		return CUDA_ERROR_INVALID_VALUE;
	*major = td_attrs[CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR];
	*minor = td_attrs[CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR];
	return CUDA_SUCCESS;
}

TD_EXPORT CUresult cuDeviceGetProperties(CUdevprop *prop, CUdevice dev)
{
	CUresult res = td_dev_check(dev);

	if (res != CUDA_SUCCESS)
		return res;
	if (!prop)
		return CUDA_ERROR_INVALID_VALUE;
	memset(prop, 0, sizeof(*prop));
	prop->maxThreadsPerBlock = td_attrs[CU_DEVICE_ATTRIBUTE_MAX_THREADS_PER_BLOCK];
	prop->maxThreadsDim[0] = td_attrs[CU_DEVICE_ATTRIBUTE_MAX_BLOCK_DIM_X];
	prop->maxThreadsDim[1] = td_attrs[CU_DEVICE_ATTRIBUTE_MAX_BLOCK_DIM_Y];
	prop->maxThreadsDim[2] = td_attrs[CU_DEVICE_ATTRIBUTE_MAX_BLOCK_DIM_Z];
	prop->maxGridSize[0] = td_attrs[CU_DEVICE_ATTRIBUTE_MAX_GRID_DIM_X];
	prop->maxGridSize[1] = td_attrs[CU_DEVICE_ATTRIBUTE_MAX_GRID_DIM_Y];
	prop->maxGridSize[2] = td_attrs[CU_DEVICE_ATTRIBUTE_MAX_GRID_DIM_Z];
	prop->sharedMemPerBlock = td_attrs[CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK];
	prop->totalConstantMemory = td_attrs[CU_DEVICE_ATTRIBUTE_TOTAL_CONSTANT_MEMORY];
	prop->SIMDWidth = td_attrs[CU_DEVICE_ATTRIBUTE_WARP_SIZE];
	prop->memPitch = td_attrs[CU_DEVICE_ATTRIBUTE_MAX_PITCH];
	prop->regsPerBlock = td_attrs[CU_DEVICE_ATTRIBUTE_MAX_REGISTERS_PER_BLOCK];
	prop->clockRate = td_attrs[CU_DEVICE_ATTRIBUTE_CLOCK_RATE];
	prop->textureAlign = td_attrs[CU_DEVICE_ATTRIBUTE_TEXTURE_ALIGNMENT];
	return CUDA_SUCCESS;
}
