/*
 * Host ("pinned") allocations and pointer attributes.
 *
 * When the worker runs on the same machine (a unix socket), pinned memory is
 * a memfd shared with it at the same address and registered with the driver
 * there.  Otherwise it is ordinary guest memory that this library tracks;
 * copies through it are staged, and it has no device pointer.
 * cuMemHostRegister of ordinary memory is not supported yet.
 */
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "lc.h"


static CUresult need_context(void)
{
	CUcontext c = NULL;
	CUresult res = cuCtxGetCurrent(&c);

	if (res != CUDA_SUCCESS)
		return res;
	return c ? CUDA_SUCCESS : CUDA_ERROR_INVALID_CONTEXT;
}

static CUresult host_mem_rpc(uint32_t which, uint64_t a, uint32_t b, int fd, uint64_t *out)
{
	struct vg_buf *req = lc_scratch(), rep;
	struct vg_rd r;
	CUresult res;

	if (!req)
		return CUDA_ERROR_DEVICE_UNAVAILABLE;
	vg_put_u32(req, which);
	vg_put_u64(req, a);
	if (which != VG_HM_FREE)
		vg_put_u32(req, b);
	vg_buf_init(&rep);
	res = lc_rpc_fd(VG_OP_HOST_MEM, req, &rep, fd);
	if (res == CUDA_SUCCESS && out) {
		vg_rd_init(&r, rep.p, rep.len);
		*out = vg_get_u64(&r);
		if (r.err)
			res = CUDA_ERROR_UNKNOWN;
	}
	vg_buf_fini(&rep);
	return res;
}

/*
 * Pinned memory shared with the worker: a sealed memfd that the worker maps
 * and registers with the driver, and that we map at the address it chose.
 * Copies to and from it are then zero-copy DMA, asynchronous copies stay
 * asynchronous, and its device pointer is real.  NULL when that cannot be
 * arranged (no shared-memory capability, the address is taken here).
 */
static void *host_alloc_shared(size_t size, unsigned int flags, CUresult *res)
{
	uint64_t addr = 0;
	void *p = NULL;
	int fd;

	*res = CUDA_SUCCESS;
	if (!(lc.caps & VG_CAP_SHM) || size > VG_HOST_ALLOC_MAX)
		return NULL;
	fd = memfd_create("vgpu-pinned", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (fd < 0)
		return NULL;
	if (ftruncate(fd, (off_t)size) < 0 ||
	    fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) < 0)
		goto out;
	*res = host_mem_rpc(VG_HM_ALLOC, size, flags, fd, &addr);
	if (*res != CUDA_SUCCESS)
		goto out;
	p = mmap((void *)(uintptr_t)addr, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED_NOREPLACE, fd, 0);
	if (p != (void *)(uintptr_t)addr) {
		VG_INFO("pinned memory: address %#llx is taken here; using guest memory",
			(unsigned long long)addr);
		if (p != MAP_FAILED)
			munmap(p, size);
		host_mem_rpc(VG_HM_FREE, addr, 0, -1, NULL);
		p = NULL;
	}
out:
	close(fd);
	return p;
}

/* Shared pinned memory for the library's own use (staging buffers). */
void *lc_shared_alloc(size_t size);
void *lc_shared_alloc(size_t size)
{
	CUresult res;
	void *p = host_alloc_shared(size, 0, &res);

	if (!p)
		return NULL;
	pthread_mutex_lock(&lc.lock);
	if (!vg_htab_put(&lc.hostmem, (uint64_t)(uintptr_t)p, size, LC_HOSTMEM_SHARED, NULL)) {
		pthread_mutex_unlock(&lc.lock);
		host_mem_rpc(VG_HM_FREE, (uint64_t)(uintptr_t)p, 0, -1, NULL);
		munmap(p, size);
		return NULL;
	}
	pthread_mutex_unlock(&lc.lock);
	return p;
}

static CUresult host_alloc(void **pp, size_t bytesize, unsigned int flags)
{
	CUresult res = lc_check();
	uint32_t tflags = flags;
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
	p = host_alloc_shared(bytesize, flags, &res);
	if (res != CUDA_SUCCESS)
		return res;
	if (p) {
		tflags |= LC_HOSTMEM_SHARED;
	} else {
		p = mmap(NULL, bytesize, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (p == MAP_FAILED)
			return CUDA_ERROR_OUT_OF_MEMORY;
	}
	pthread_mutex_lock(&lc.lock);
	if (!vg_htab_put(&lc.hostmem, (uint64_t)(uintptr_t)p, bytesize, tflags, NULL)) {
		pthread_mutex_unlock(&lc.lock);
		if (tflags & LC_HOSTMEM_SHARED)
			host_mem_rpc(VG_HM_FREE, (uint64_t)(uintptr_t)p, 0, -1, NULL);
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
	uint32_t flags = 0;

	pthread_mutex_lock(&lc.lock);
	e = vg_htab_get(&lc.hostmem, (uint64_t)(uintptr_t)p);
	if (e) {
		size = (size_t)e->val;
		flags = e->type;
		vg_htab_del(&lc.hostmem, (uint64_t)(uintptr_t)p);
	}
	pthread_mutex_unlock(&lc.lock);
	if (!size)
		return CUDA_ERROR_INVALID_VALUE;
	/* The worker unregisters and unmaps first: no DMA into freed memory. */
	if (flags & LC_HOSTMEM_SHARED)
		res = host_mem_rpc(VG_HM_FREE, (uint64_t)(uintptr_t)p, 0, -1, NULL);
	munmap(p, size);
	return res;
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
static int hostmem_find(uint64_t ptr, uint64_t *base, uint64_t *size, uint32_t *flags)
{
	size_t i;
	int found = 0;

	pthread_mutex_lock(&lc.lock);
	for (i = 0; i < lc.hostmem.cap && !found; i++) {
		struct vg_hent *e = &lc.hostmem.slots[i];

		if (e->key && e->key != VG_HTAB_TOMB && ptr >= e->key && ptr - e->key < e->val) {
			*base = e->key;
			*size = e->val;
			*flags = e->type;
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
	uint32_t hflags;
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
	/* Shared pinned memory is registered on the host, which answers for it. */
	if (hostmem_find(ptr, &base, &hsize, &hflags) && !(hflags & LC_HOSTMEM_SHARED))
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

int lc_hostmem_shared(const void *p, uint64_t n)
{
	uint64_t base, size;
	uint32_t flags;

	if (!lc.caps || !p)
		return 0;
	return hostmem_find((uint64_t)(uintptr_t)p, &base, &size, &flags) && (flags & LC_HOSTMEM_SHARED) &&
	       n <= size - ((uint64_t)(uintptr_t)p - base);
}

VG_EXPORT CUresult cuMemHostGetDevicePointer_v2(CUdeviceptr *pdptr, void *p, unsigned int Flags)
{
	CUresult res = lc_check();
	uint64_t d = 0;

	if (res != CUDA_SUCCESS)
		return res;
	if (!pdptr || Flags != 0)
		return CUDA_ERROR_INVALID_VALUE;
	if (!lc_hostmem_shared(p, 1)) {
		VG_WARN("cuMemHostGetDevicePointer: %p is not pinned memory shared with the GPU host", p);
		return CUDA_ERROR_INVALID_VALUE;
	}
	res = host_mem_rpc(VG_HM_DEVPTR, (uint64_t)(uintptr_t)p, Flags, -1, &d);
	if (res == CUDA_SUCCESS)
		*pdptr = d;
	return res;
}
