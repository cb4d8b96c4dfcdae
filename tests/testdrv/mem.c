/* SPDX-License-Identifier: MIT */
/*
 * Memory: device allocations in the per-device windows, pinned host
 * allocations and registrations, the allocation registry every device
 * pointer operand is checked against, and pointer attributes.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "td.h"

#define TD_PAGE 4096ull

static uint64_t td_round(uint64_t v, uint64_t a)
{
	return (v + a - 1) / a * a;
}

struct td_alloc *td_alloc_find_locked(uint64_t p)
{
	struct td_alloc *a;

	for (a = td.allocs; a; a = a->next)
		if (p >= a->base && p - a->base < a->size)
			return a;
	return NULL;
}

/* [p, p + n) lies inside one allocation (n == 0: p inside one). */
int td_range_ok_locked(uint64_t p, uint64_t n)
{
	struct td_alloc *a = td_alloc_find_locked(p);

	return a && n <= a->size - (p - a->base);
}

CUresult td_range_check(uint64_t p, uint64_t n)
{
	int ok;

	td_lock();
	ok = td_range_ok_locked(p, n);
	td_unlock();
	return ok ? CUDA_SUCCESS : CUDA_ERROR_INVALID_VALUE;
}

int td_is_pinned_locked(uint64_t p, uint64_t n)
{
	struct td_alloc *a = td_alloc_find_locked(p);

	return a && (a->kind == TD_ALLOC_HOST || a->kind == TD_ALLOC_HOST_REG) &&
	       n <= a->size - (p - a->base);
}

static int td_cmp_base(const void *x, const void *y)
{
	const struct td_alloc *a = *(struct td_alloc *const *)x;
	const struct td_alloc *b = *(struct td_alloc *const *)y;

	return a->base < b->base ? -1 : a->base > b->base;
}

/* First fit in the device's window; 0 or -ENOMEM.  td.lock held. */
static int td_window_place_locked(int dev, uint64_t span, uint64_t *out)
{
	struct td_device *d = &td.dev[dev];
	uint64_t lo = (uint64_t)(uintptr_t)d->window, at = lo;
	struct td_alloc *a, **v;
	size_t n = 0, i;

	if (span > TD_DEV_MEM - d->used)
		return -ENOMEM;
	for (a = td.allocs; a; a = a->next)
		if (a->base >= lo && a->base < lo + TD_DEV_MEM)
			n++;
	v = calloc(n ? n : 1, sizeof(*v));
	if (!v)
		return -ENOMEM;
	n = 0;
	for (a = td.allocs; a; a = a->next)
		if (a->base >= lo && a->base < lo + TD_DEV_MEM)
			v[n++] = a;
	qsort(v, n, sizeof(*v), td_cmp_base);
	for (i = 0; i < n && v[i]->base - at < span; i++)
		at = v[i]->base + v[i]->span;
	free(v);
	if (lo + TD_DEV_MEM - at < span)
		return -ENOMEM;
	*out = at;
	return 0;
}

static struct td_alloc *td_alloc_link_locked(struct td_ctx *c, uint64_t base, uint64_t size,
					     uint64_t span, enum td_alloc_kind kind)
{
	struct td_alloc *a = calloc(1, sizeof(*a));

	if (!a)
		return NULL;
	a->base = base;
	a->size = size;
	a->span = span;
	a->kind = kind;
	a->ctx = c;
	a->dev = c ? c->dev : 0;
	a->id = td.next_id++;
	a->next = td.allocs;
	td.allocs = a;
	return a;
}

/* c NULL: memory of no context (a library's globals), on device 0. */
CUresult td_alloc_device(struct td_ctx *c, uint64_t size, enum td_alloc_kind kind,
			 struct td_alloc **out)
{
	uint64_t span, base;
	struct td_alloc *a = NULL;
	int dev = c ? c->dev : 0;

	if (size > TD_DEV_MEM)
		return CUDA_ERROR_OUT_OF_MEMORY;
	span = td_round(size, TD_PAGE);
	td_lock();
	if (td_window_place_locked(dev, span, &base) == 0 &&
	    mprotect((void *)(uintptr_t)base, span, PROT_READ | PROT_WRITE) == 0) {
		a = td_alloc_link_locked(c, base, size, span, kind);
		if (a)
			td.dev[dev].used += span;
		else
			mprotect((void *)(uintptr_t)base, span, PROT_NONE);
	}
	td_unlock();
	if (!a)
		return CUDA_ERROR_OUT_OF_MEMORY;
	*out = a;
	return CUDA_SUCCESS;
}

/* Unlinks and releases a (td.lock held); no work may still use it. */
void td_alloc_free_locked(struct td_alloc *a)
{
	struct td_alloc **pp;
	void *p = (void *)(uintptr_t)a->base;

	for (pp = &td.allocs; *pp; pp = &(*pp)->next) {
		if (*pp == a) {
			*pp = a->next;
			break;
		}
	}
	switch (a->kind) {
	case TD_ALLOC_DEVICE:
	case TD_ALLOC_GLOBAL:
		/* Returned pages read as zero when they are handed out again. */
		madvise(p, a->span, MADV_DONTNEED);
		mprotect(p, a->span, PROT_NONE);
		td.dev[a->dev].used -= a->span;
		break;
	case TD_ALLOC_HOST:
		munmap(p, a->span);
		break;
	case TD_ALLOC_HOST_REG:
		break;
	}
	free(a);
}

/* Everything c allocated; its streams have already stopped. */
void td_alloc_release_ctx(struct td_ctx *c)
{
	struct td_alloc *a, *next;

	td_lock();
	for (a = td.allocs; a; a = next) {
		next = a->next;
		if (a->ctx == c)
			td_alloc_free_locked(a);
	}
	td_unlock();
}

TD_EXPORT CUresult cuMemAlloc_v2(CUdeviceptr *dptr, size_t bytesize)
{
	struct td_ctx *c;
	struct td_alloc *a;
	CUresult res = td_ctx_get(&c);

	if (res != CUDA_SUCCESS)
		return res;
	if (!dptr || bytesize == 0)
		return CUDA_ERROR_INVALID_VALUE;
	res = td_alloc_device(c, bytesize, TD_ALLOC_DEVICE, &a);
	if (res == CUDA_SUCCESS)
		*dptr = a->base;
	return res;
}

TD_EXPORT CUresult cuMemAllocPitch_v2(CUdeviceptr *dptr, size_t *pPitch, size_t WidthInBytes,
				      size_t Height, unsigned int ElementSizeBytes)
{
	struct td_ctx *c;
	struct td_alloc *a;
	uint64_t pitch;
	CUresult res = td_ctx_get(&c);

	if (res != CUDA_SUCCESS)
		return res;
	if (!dptr || !pPitch || !WidthInBytes || !Height ||
	    (ElementSizeBytes != 4 && ElementSizeBytes != 8 && ElementSizeBytes != 16))
		return CUDA_ERROR_INVALID_VALUE;
	pitch = td_round(WidthInBytes, TD_PITCH_ALIGN);
	if (Height > TD_DEV_MEM / pitch)
		return CUDA_ERROR_OUT_OF_MEMORY;
	res = td_alloc_device(c, pitch * Height, TD_ALLOC_DEVICE, &a);
	if (res != CUDA_SUCCESS)
		return res;
	*dptr = a->base;
	*pPitch = pitch;
	return CUDA_SUCCESS;
}

TD_EXPORT CUresult cuMemFree_v2(CUdeviceptr dptr)
{
	struct td_ctx *c, *owner = NULL;
	struct td_alloc *a;
	CUresult res = td_ctx_get(&c);

	if (res != CUDA_SUCCESS)
		return res;
	td_lock();
	a = td_alloc_find_locked(dptr);
	if (a && a->base == dptr && a->kind == TD_ALLOC_DEVICE)
		owner = a->ctx;
	td_unlock();
	if (!owner)
		return CUDA_ERROR_INVALID_VALUE;
	/* As on a GPU, freeing waits for work that may still use the memory. */
	td_ctx_sync(owner);
	td_lock();
	a = td_alloc_find_locked(dptr);
	if (a && a->base == dptr && a->kind == TD_ALLOC_DEVICE)
		td_alloc_free_locked(a);
	else
		res = CUDA_ERROR_INVALID_VALUE;
	td_unlock();
	return res;
}

TD_EXPORT CUresult cuMemGetInfo_v2(size_t *free_bytes, size_t *total)
{
	struct td_ctx *c;
	CUresult res = td_ctx_get(&c);

	if (res != CUDA_SUCCESS)
		return res;
	if (!free_bytes || !total)
		return CUDA_ERROR_INVALID_VALUE;
	td_lock();
	*free_bytes = TD_DEV_MEM - td.dev[c->dev].used;
	*total = TD_DEV_MEM;
	td_unlock();
	return CUDA_SUCCESS;
}

TD_EXPORT CUresult cuMemGetAddressRange_v2(CUdeviceptr *pbase, size_t *psize, CUdeviceptr dptr)
{
	struct td_ctx *c;
	struct td_alloc *a;
	CUresult res = td_ctx_get(&c);

	if (res != CUDA_SUCCESS)
		return res;
	td_lock();
	a = td_alloc_find_locked(dptr);
	if (!a) {
		res = CUDA_ERROR_NOT_FOUND;
	} else {
		if (pbase)
			*pbase = a->base;
		if (psize)
			*psize = a->size;
	}
	td_unlock();
	return res;
}

/* ---- pinned host memory ------------------------------------------------ */

static CUresult td_host_alloc(void **pp, size_t bytesize, unsigned flags)
{
	struct td_ctx *c;
	struct td_alloc *a;
	uint64_t span;
	void *p;
	CUresult res = td_ctx_get(&c);

	if (res != CUDA_SUCCESS)
		return res;
	if (!pp || !bytesize || (flags & ~(unsigned)(CU_MEMHOSTALLOC_PORTABLE |
			CU_MEMHOSTALLOC_DEVICEMAP | CU_MEMHOSTALLOC_WRITECOMBINED)))
		return CUDA_ERROR_INVALID_VALUE;
	if (bytesize > TD_HOST_ALLOC_MAX)
		return CUDA_ERROR_OUT_OF_MEMORY;
	span = td_round(bytesize, TD_PAGE);
	p = mmap(NULL, span, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		return CUDA_ERROR_OUT_OF_MEMORY;
	td_lock();
	a = td_alloc_link_locked(c, (uint64_t)(uintptr_t)p, bytesize, span, TD_ALLOC_HOST);
	/* Unified addressing: every pinned allocation is mapped for the device. */
	if (a)
		a->flags = flags | CU_MEMHOSTALLOC_DEVICEMAP;
	td_unlock();
	if (!a) {
		munmap(p, span);
		return CUDA_ERROR_OUT_OF_MEMORY;
	}
	*pp = p;
	return CUDA_SUCCESS;
}

TD_EXPORT CUresult cuMemAllocHost_v2(void **pp, size_t bytesize)
{
	return td_host_alloc(pp, bytesize, 0);
}

TD_EXPORT CUresult cuMemHostAlloc(void **pp, size_t bytesize, unsigned int Flags)
{
	return td_host_alloc(pp, bytesize, Flags);
}

TD_EXPORT CUresult cuMemFreeHost(void *p)
{
	struct td_ctx *c, *owner = NULL;
	struct td_alloc *a;
	CUresult res = td_ctx_get(&c);

	if (res != CUDA_SUCCESS)
		return res;
	td_lock();
	a = td_alloc_find_locked((uint64_t)(uintptr_t)p);
	if (a && a->base == (uint64_t)(uintptr_t)p && a->kind == TD_ALLOC_HOST)
		owner = a->ctx;
	td_unlock();
	if (!owner)
		return CUDA_ERROR_INVALID_VALUE;
	td_ctx_sync(owner);
	td_lock();
	a = td_alloc_find_locked((uint64_t)(uintptr_t)p);
	if (a && a->base == (uint64_t)(uintptr_t)p && a->kind == TD_ALLOC_HOST)
		td_alloc_free_locked(a);
	else
		res = CUDA_ERROR_INVALID_VALUE;
	td_unlock();
	return res;
}

static struct td_alloc *td_host_find_locked(const void *p)
{
	struct td_alloc *a = td_alloc_find_locked((uint64_t)(uintptr_t)p);

	if (a && (a->kind == TD_ALLOC_HOST || a->kind == TD_ALLOC_HOST_REG))
		return a;
	return NULL;
}

TD_EXPORT CUresult cuMemHostGetFlags(unsigned int *pFlags, void *p)
{
	struct td_ctx *c;
	struct td_alloc *a;
	CUresult res = td_ctx_get(&c);

	if (res != CUDA_SUCCESS)
		return res;
	if (!pFlags)
		return CUDA_ERROR_INVALID_VALUE;
	td_lock();
	a = td_host_find_locked(p);
	if (a)
		*pFlags = a->flags;
	else
		res = CUDA_ERROR_INVALID_VALUE;
	td_unlock();
	return res;
}

/* Unified addressing: the device address of pinned memory is its host address. */
TD_EXPORT CUresult cuMemHostGetDevicePointer_v2(CUdeviceptr *pdptr, void *p, unsigned int Flags)
{
	struct td_ctx *c;
	CUresult res = td_ctx_get(&c);

	if (res != CUDA_SUCCESS)
		return res;
	if (!pdptr || Flags != 0)
		return CUDA_ERROR_INVALID_VALUE;
	td_lock();
	if (td_host_find_locked(p))
		*pdptr = (CUdeviceptr)(uintptr_t)p;
	else
		res = CUDA_ERROR_INVALID_VALUE;
	td_unlock();
	return res;
}

TD_EXPORT CUresult cuMemHostRegister_v2(void *p, size_t bytesize, unsigned int Flags)
{
	struct td_ctx *c;
	struct td_alloc *a;
	uint64_t base = (uint64_t)(uintptr_t)p;
	CUresult res = td_ctx_get(&c);

	if (res != CUDA_SUCCESS)
		return res;
	if (!p || !bytesize || (Flags & ~(unsigned)(CU_MEMHOSTREGISTER_PORTABLE |
			CU_MEMHOSTREGISTER_DEVICEMAP | CU_MEMHOSTREGISTER_IOMEMORY |
			CU_MEMHOSTREGISTER_READ_ONLY)))
		return CUDA_ERROR_INVALID_VALUE;
	if (base + bytesize < base)
		return CUDA_ERROR_INVALID_VALUE;
	td_lock();
	for (a = td.allocs; a; a = a->next)
		if (base < a->base + a->size && a->base < base + bytesize)
			break;
	if (a) {
		res = CUDA_ERROR_HOST_MEMORY_ALREADY_REGISTERED;
	} else {
		a = td_alloc_link_locked(c, base, bytesize, bytesize, TD_ALLOC_HOST_REG);
		if (a)
			a->flags = Flags | CU_MEMHOSTREGISTER_DEVICEMAP;
		else
			res = CUDA_ERROR_OUT_OF_MEMORY;
	}
	td_unlock();
	return res;
}

TD_EXPORT CUresult cuMemHostUnregister(void *p)
{
	struct td_ctx *c, *owner = NULL;
	struct td_alloc *a;
	CUresult res = td_ctx_get(&c);

	if (res != CUDA_SUCCESS)
		return res;
	td_lock();
	a = td_alloc_find_locked((uint64_t)(uintptr_t)p);
	if (a && a->base == (uint64_t)(uintptr_t)p && a->kind == TD_ALLOC_HOST_REG)
		owner = a->ctx;
	td_unlock();
	if (!owner)
		return CUDA_ERROR_HOST_MEMORY_NOT_REGISTERED;
	td_ctx_sync(owner);
	td_lock();
	a = td_alloc_find_locked((uint64_t)(uintptr_t)p);
	if (a && a->base == (uint64_t)(uintptr_t)p && a->kind == TD_ALLOC_HOST_REG)
		td_alloc_free_locked(a);
	else
		res = CUDA_ERROR_HOST_MEMORY_NOT_REGISTERED;
	td_unlock();
	return res;
}

/* ---- pointer attributes ------------------------------------------------ */

/* Attributes answered: 1 .. CU_POINTER_ATTRIBUTE_IS_HW_DECOMPRESS_CAPABLE. */
#define TD_PA_END (CU_POINTER_ATTRIBUTE_IS_HW_DECOMPRESS_CAPABLE + 1)

/* One attribute of a known allocation (a), or of unknown memory (a NULL). */
static CUresult td_pa_fill_locked(void *data, int attr, uint64_t ptr, const struct td_alloc *a)
{
	int host = a && (a->kind == TD_ALLOC_HOST || a->kind == TD_ALLOC_HOST_REG);
	uint64_t u64 = 0;
	uint32_t u32 = 0;
	void *vp = NULL;

	switch (attr) {
	case CU_POINTER_ATTRIBUTE_CONTEXT:
		vp = a ? (void *)a->ctx : NULL;
		memcpy(data, &vp, sizeof(vp));
		return CUDA_SUCCESS;
	case CU_POINTER_ATTRIBUTE_MEMORY_TYPE:
		u32 = !a ? 0 : host ? CU_MEMORYTYPE_HOST : CU_MEMORYTYPE_DEVICE;
		break;
	case CU_POINTER_ATTRIBUTE_DEVICE_POINTER:
		u64 = a ? ptr : 0;
		memcpy(data, &u64, 8);
		return CUDA_SUCCESS;
	case CU_POINTER_ATTRIBUTE_HOST_POINTER:
		if (a && !host)
			return CUDA_ERROR_INVALID_VALUE;
		vp = a ? (void *)(uintptr_t)ptr : NULL;
		memcpy(data, &vp, sizeof(vp));
		return CUDA_SUCCESS;
	case CU_POINTER_ATTRIBUTE_BUFFER_ID:
	case CU_POINTER_ATTRIBUTE_MEMORY_BLOCK_ID:
		u64 = a ? a->id : 0;
		memcpy(data, &u64, 8);
		return CUDA_SUCCESS;
	case CU_POINTER_ATTRIBUTE_IS_MANAGED:
	case CU_POINTER_ATTRIBUTE_SYNC_MEMOPS:
	case CU_POINTER_ATTRIBUTE_IS_GPU_DIRECT_RDMA_CAPABLE:
	case CU_POINTER_ATTRIBUTE_IS_HW_DECOMPRESS_CAPABLE:
		u32 = 0;
		break;
	case CU_POINTER_ATTRIBUTE_DEVICE_ORDINAL:
		u32 = (uint32_t)(a ? a->dev : -2);
		break;
	case CU_POINTER_ATTRIBUTE_IS_LEGACY_CUDA_IPC_CAPABLE:
		u32 = a && a->kind == TD_ALLOC_DEVICE;
		break;
	case CU_POINTER_ATTRIBUTE_RANGE_START_ADDR:
	case CU_POINTER_ATTRIBUTE_MAPPING_BASE_ADDR:
		u64 = a ? a->base : 0;
		memcpy(data, &u64, 8);
		return CUDA_SUCCESS;
	case CU_POINTER_ATTRIBUTE_RANGE_SIZE:
	case CU_POINTER_ATTRIBUTE_MAPPING_SIZE:
		u64 = a ? a->size : 0;
		memcpy(data, &u64, 8);
		return CUDA_SUCCESS;
	case CU_POINTER_ATTRIBUTE_MAPPED:
		u32 = a != NULL;
		break;
	case CU_POINTER_ATTRIBUTE_ALLOWED_HANDLE_TYPES:
		memcpy(data, &u64, 8);
		return CUDA_SUCCESS;
	case CU_POINTER_ATTRIBUTE_ACCESS_FLAGS:
		u32 = a ? 3 : 0;	/* read and write */
		break;
	case CU_POINTER_ATTRIBUTE_MEMPOOL_HANDLE:
		memcpy(data, &vp, sizeof(vp));
		return CUDA_SUCCESS;
	default:
		return CUDA_ERROR_INVALID_VALUE;
	}
	memcpy(data, &u32, 4);
	return CUDA_SUCCESS;
}

TD_EXPORT CUresult cuPointerGetAttribute(void *data, CUpointer_attribute attribute, CUdeviceptr ptr)
{
	CUresult res = td_check_init();
	struct td_alloc *a;

	if (res != CUDA_SUCCESS)
		return res;
	if (!data || (int)attribute <= 0 || (int)attribute >= TD_PA_END ||
	    attribute == CU_POINTER_ATTRIBUTE_P2P_TOKENS)
		return CUDA_ERROR_INVALID_VALUE;
	td_lock();
	a = td_alloc_find_locked(ptr);
	res = a ? td_pa_fill_locked(data, (int)attribute, ptr, a) : CUDA_ERROR_INVALID_VALUE;
	td_unlock();
	return res;
}

/* Unlike the single form, memory the driver never saw is not an error here. */
TD_EXPORT CUresult cuPointerGetAttributes(unsigned int numAttributes, CUpointer_attribute *attributes,
					  void **data, CUdeviceptr ptr)
{
	CUresult res = td_check_init();
	struct td_alloc *a;
	unsigned i;

	if (res != CUDA_SUCCESS)
		return res;
	if (!numAttributes || !attributes || !data)
		return CUDA_ERROR_INVALID_VALUE;
	for (i = 0; i < numAttributes; i++)
		if ((int)attributes[i] <= 0 || (int)attributes[i] >= TD_PA_END ||
		    attributes[i] == CU_POINTER_ATTRIBUTE_P2P_TOKENS || !data[i])
			return CUDA_ERROR_INVALID_VALUE;
	td_lock();
	a = td_alloc_find_locked(ptr);
	for (i = 0; i < numAttributes && res == CUDA_SUCCESS; i++) {
		res = td_pa_fill_locked(data[i], (int)attributes[i], ptr, a);
		/* A device pointer has no host alias: reported as NULL here. */
		if (res == CUDA_ERROR_INVALID_VALUE &&
		    attributes[i] == CU_POINTER_ATTRIBUTE_HOST_POINTER) {
			memset(data[i], 0, sizeof(void *));
			res = CUDA_SUCCESS;
		}
	}
	td_unlock();
	return res;
}
