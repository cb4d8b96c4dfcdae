/*
 * Host ("pinned") allocations and pointer attributes.
 *
 * Over the socket transport, pinned memory is ordinary guest memory that the
 * guest library tracks; copies from and to it are staged like any other host
 * memory.  Mapping it into the device's address space needs the shared-memory
 * transport, so cuMemHostGetDevicePointer and cuMemHostRegister answer
 * CUDA_ERROR_NOT_SUPPORTED until then.
 */
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "lc.h"

struct vg_buf *lc_scratch(void);

static CUresult need_context(void)
{
	CUcontext c = NULL;
	CUresult res = cuCtxGetCurrent(&c);

	if (res != CUDA_SUCCESS)
		return res;
	return c ? CUDA_SUCCESS : CUDA_ERROR_INVALID_CONTEXT;
}

static CUresult host_alloc(void **pp, size_t bytesize, unsigned int flags)
{
	CUresult res = lc_check();
	void *p;

	if (res != CUDA_SUCCESS)
		return res;
	if (!pp || bytesize == 0)
		return CUDA_ERROR_INVALID_VALUE;
	if (flags & ~(unsigned)(CU_MEMHOSTALLOC_PORTABLE | CU_MEMHOSTALLOC_DEVICEMAP | CU_MEMHOSTALLOC_WRITECOMBINED))
		return CUDA_ERROR_INVALID_VALUE;
	res = need_context();
	if (res != CUDA_SUCCESS)
		return res;
	p = mmap(NULL, bytesize, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		return CUDA_ERROR_OUT_OF_MEMORY;
	pthread_mutex_lock(&lc.lock);
	if (!vg_htab_put(&lc.hostmem, (uint64_t)(uintptr_t)p, bytesize, flags, NULL)) {
		pthread_mutex_unlock(&lc.lock);
		munmap(p, bytesize);
		return CUDA_ERROR_OUT_OF_MEMORY;
	}
	pthread_mutex_unlock(&lc.lock);
	*pp = p;
	return CUDA_SUCCESS;
}

VG_EXPORT CUresult cuMemAllocHost_v2(void **pp, size_t bytesize)
{
	return host_alloc(pp, bytesize, 0);
}

VG_EXPORT CUresult cuMemHostAlloc(void **pp, size_t bytesize, unsigned int Flags)
{
	return host_alloc(pp, bytesize, Flags);
}

VG_EXPORT CUresult cuMemFreeHost(void *p)
{
	struct vg_hent *e;
	CUresult res = lc_check();
	size_t size = 0;

	if (res != CUDA_SUCCESS)
		return res;
	pthread_mutex_lock(&lc.lock);
	e = vg_htab_get(&lc.hostmem, (uint64_t)(uintptr_t)p);
	if (e) {
		size = (size_t)e->val;
		vg_htab_del(&lc.hostmem, (uint64_t)(uintptr_t)p);
	}
	pthread_mutex_unlock(&lc.lock);
	if (!size)
		return CUDA_ERROR_INVALID_VALUE;
	munmap(p, size);
	return CUDA_SUCCESS;
}

VG_EXPORT CUresult cuMemHostGetFlags(unsigned int *pFlags, void *p)
{
	struct vg_hent *e;
	CUresult res = lc_check();

	if (res != CUDA_SUCCESS)
		return res;
	if (!pFlags)
		return CUDA_ERROR_INVALID_VALUE;
	pthread_mutex_lock(&lc.lock);
	e = vg_htab_get(&lc.hostmem, (uint64_t)(uintptr_t)p);
	/*
	 * As NVIDIA's driver reports it under unified addressing: every pinned
	 * allocation is device-mapped, and PORTABLE is not reported back.
	 */
	if (e)
		*pFlags = (e->type & CU_MEMHOSTALLOC_WRITECOMBINED) | CU_MEMHOSTALLOC_DEVICEMAP;
	pthread_mutex_unlock(&lc.lock);
	return e ? CUDA_SUCCESS : CUDA_ERROR_INVALID_VALUE;
}

/* The pinned allocation holding ptr, if any. */
static int hostmem_find(uint64_t ptr, uint64_t *base, uint64_t *size)
{
	size_t i;
	int found = 0;

	pthread_mutex_lock(&lc.lock);
	for (i = 0; i < lc.hostmem.cap && !found; i++) {
		struct vg_hent *e = &lc.hostmem.slots[i];

		if (e->key && e->key != VG_HTAB_TOMB && ptr >= e->key && ptr - e->key < e->val) {
			*base = e->key;
			*size = e->val;
			found = 1;
		}
	}
	pthread_mutex_unlock(&lc.lock);
	return found;
}

/*
 * Attributes of guest pinned memory, which the host has never seen: the
 * answers NVIDIA's driver gives for pinned host memory, where we can give
 * them; device mapping needs the shared-memory transport.
 */
static CUresult hostmem_attr(void *data, int attr, uint64_t ptr, uint64_t base, uint64_t size)
{
	uint32_t u32 = 0;
	uint64_t u64 = 0;

	switch (attr) {
	case CU_POINTER_ATTRIBUTE_CONTEXT:
		return cuCtxGetCurrent((CUcontext *)data);
	case CU_POINTER_ATTRIBUTE_MEMORY_TYPE:
		u32 = CU_MEMORYTYPE_HOST;
		break;
	case CU_POINTER_ATTRIBUTE_HOST_POINTER:
		u64 = ptr;
		memcpy(data, &u64, 8);
		return CUDA_SUCCESS;
	case CU_POINTER_ATTRIBUTE_IS_MANAGED:
		u32 = 0;
		break;
	case CU_POINTER_ATTRIBUTE_MAPPED:
		u32 = 1;
		break;
	case CU_POINTER_ATTRIBUTE_RANGE_START_ADDR:
		memcpy(data, &base, 8);
		return CUDA_SUCCESS;
	case CU_POINTER_ATTRIBUTE_RANGE_SIZE:
		memcpy(data, &size, 8);
		return CUDA_SUCCESS;
	default:
		return lc_unsupported(VG_FN_cuPointerGetAttribute);
	}
	memcpy(data, &u32, 4);
	return CUDA_SUCCESS;
}

static CUresult pointer_attr(void *data, int attr, CUdeviceptr ptr, int multi)
{
	uint64_t base, hsize;
	struct vg_buf *b, rep;
	struct vg_rd r;
	CUresult res = lc_check();
	uint32_t size, n = 0;
	int is_handle, is_null = 0;
	const uint8_t *q;

	if (res != CUDA_SUCCESS)
		return res;
	size = vg_pointer_attr_size(attr, &is_handle);
	if (!data || !size)
		return CUDA_ERROR_INVALID_VALUE;
	if (hostmem_find(ptr, &base, &hsize))
		return hostmem_attr(data, attr, ptr, base, hsize);
	b = lc_scratch();
	if (!b)
		return CUDA_ERROR_DEVICE_UNAVAILABLE;
	vg_put_u32(b, (uint32_t)attr);
	vg_put_u64(b, ptr);
	vg_put_u32(b, (uint32_t)multi);
	vg_buf_init(&rep);
	res = lc_rpc(VG_OP_POINTER_ATTR, b, &rep);
	if (res == CUDA_SUCCESS) {
		vg_rd_init(&r, rep.p, rep.len);
		q = vg_get_blob(&r, 64, &n, &is_null);
		if (!q || n != size) {
			res = CUDA_ERROR_UNKNOWN;
		} else if (is_handle) {
			uint64_t id;

			memcpy(&id, q, 8);
			if (id)
				lc_handle_add(id, attr == VG_PA_CONTEXT ? VG_H_CUcontext : VG_H_CUmemoryPool);
			*(void **)data = (void *)(uintptr_t)id;
		} else if (attr == VG_PA_DEVICE_ORDINAL) {
			int host, i, guest = -1;

			memcpy(&host, q, 4);
			for (i = 0; i < lc.ndev; i++)
				if (lc.dev[i].host_ordinal == host)
					guest = i;
			memcpy(data, &guest, 4);
		} else {
			memcpy(data, q, size);
		}
	}
	vg_buf_fini(&rep);
	return res;
}

VG_EXPORT CUresult cuPointerGetAttribute(void *data, CUpointer_attribute attribute, CUdeviceptr ptr)
{
	return pointer_attr(data, (int)attribute, ptr, 0);
}

VG_EXPORT CUresult cuPointerGetAttributes(unsigned int numAttributes, CUpointer_attribute *attributes,
					  void **data, CUdeviceptr ptr)
{
	unsigned int i;
	CUresult res;

	if (!attributes || !data)
		return CUDA_ERROR_INVALID_VALUE;
	for (i = 0; i < numAttributes; i++) {
		/* cuPointerGetAttributes answers defaults for memory CUDA does not know. */
		res = pointer_attr(data[i], (int)attributes[i], ptr, 1);
		if (res != CUDA_SUCCESS)
			return res;
	}
	return CUDA_SUCCESS;
}
