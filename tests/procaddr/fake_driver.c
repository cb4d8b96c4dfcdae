/*
 * A minimal driver behind the export tables under test: one device, two
 * contexts, a thread-local current context with a push/pop stack, ids that
 * change when a context is forgotten, and call counters that show what the
 * tables cache.
 */
#include <pthread.h>
#include <stdint.h>
#include <string.h>

#include "darkapi.h"
#include "fake_driver.h"

const unsigned char fake_uuid[16] = {
	0x12, 0x49, 0xba, 0xce, 0x41, 0x6b, 0xef, 0xa6,
	0x2b, 0x54, 0x9a, 0xf7, 0x43, 0xa6, 0x96, 0xfd,
};
int fake_primary_refs;
int fake_ctxid_calls;
int fake_streamid_calls;

static __thread CUcontext stack[8];
static __thread int depth;		/* stack[depth] is current */
static __thread uint64_t thread_stream_id;
static uint64_t next_thread_stream_id = 5000;

static struct {
	CUcontext ctx;
	uint64_t id;
} ids[16];
static uint64_t next_ctx_id = 1;

CUresult cuDriverGetVersion(int *v)
{
	*v = 13000;
	return CUDA_SUCCESS;
}

CUresult cuDeviceGetCount(int *count)
{
	*count = 1;
	return CUDA_SUCCESS;
}

CUresult cuDeviceGetUuid(CUuuid *uuid, CUdevice dev)
{
	if (dev != 0)
		return CUDA_ERROR_INVALID_DEVICE;
	memcpy(uuid->bytes, fake_uuid, 16);
	return CUDA_SUCCESS;
}

CUresult cuDeviceGetAttribute(int *pi, CUdevice_attribute attrib, CUdevice dev)
{
	if (dev != 0)
		return CUDA_ERROR_INVALID_DEVICE;
	switch (attrib) {
	case CU_DEVICE_ATTRIBUTE_PCI_DOMAIN_ID: *pi = 0; return CUDA_SUCCESS;
	case CU_DEVICE_ATTRIBUTE_PCI_BUS_ID: *pi = 0; return CUDA_SUCCESS;
	case CU_DEVICE_ATTRIBUTE_PCI_DEVICE_ID: *pi = 6; return CUDA_SUCCESS;
	default: return CUDA_ERROR_INVALID_VALUE;
	}
}

CUresult cuCtxGetCurrent(CUcontext *pctx)
{
	*pctx = stack[depth];
	return CUDA_SUCCESS;
}

CUresult cuCtxSetCurrent(CUcontext ctx)
{
	stack[depth] = ctx;
	return CUDA_SUCCESS;
}

CUresult cuCtxPushCurrent_v2(CUcontext ctx)
{
	if (depth == 7)
		return CUDA_ERROR_INVALID_VALUE;
	stack[++depth] = ctx;
	return CUDA_SUCCESS;
}

CUresult cuCtxPopCurrent_v2(CUcontext *pctx)
{
	if (depth == 0)
		return CUDA_ERROR_INVALID_CONTEXT;
	*pctx = stack[depth--];
	return CUDA_SUCCESS;
}

CUresult cuCtxGetId(CUcontext ctx, unsigned long long *id)
{
	unsigned i;

	fake_ctxid_calls++;
	for (i = 0; i < 16; i++) {
		if (ids[i].ctx == ctx) {
			*id = ids[i].id;
			return CUDA_SUCCESS;
		}
	}
	for (i = 0; i < 16; i++) {
		if (!ids[i].ctx) {
			ids[i].ctx = ctx;
			ids[i].id = next_ctx_id++;
			*id = ids[i].id;
			return CUDA_SUCCESS;
		}
	}
	return CUDA_ERROR_OUT_OF_MEMORY;
}

void fake_ctx_forget(CUcontext ctx)
{
	unsigned i;

	for (i = 0; i < 16; i++)
		if (ids[i].ctx == ctx)
			ids[i].ctx = NULL;
}

CUresult cuDevicePrimaryCtxRetain(CUcontext *pctx, CUdevice dev)
{
	if (dev != 0)
		return CUDA_ERROR_INVALID_DEVICE;
	fake_primary_refs++;
	*pctx = FAKE_CTX_A;
	return CUDA_SUCCESS;
}

CUresult cuDevicePrimaryCtxRelease_v2(CUdevice dev)
{
	if (dev != 0)
		return CUDA_ERROR_INVALID_DEVICE;
	fake_primary_refs--;
	return CUDA_SUCCESS;
}

CUresult lc_ctx_primary_peek(CUdevice dev, CUcontext *pctx)
{
	if (dev != 0)
		return CUDA_ERROR_INVALID_DEVICE;
	*pctx = FAKE_CTX_A;
	return CUDA_SUCCESS;
}

/* Legacy stream: 7 in context A, 8 in B; per-thread: one per thread. */
CUresult cuStreamGetId(CUstream stream, unsigned long long *id)
{
	CUcontext cur = stack[depth];

	fake_streamid_calls++;
	if (!cur)
		return CUDA_ERROR_INVALID_CONTEXT;
	if (stream == NULL || stream == CU_STREAM_LEGACY) {
		*id = cur == FAKE_CTX_A ? 7 : 8;
	} else if (stream == CU_STREAM_PER_THREAD) {
		if (!thread_stream_id)
			thread_stream_id = __atomic_fetch_add(&next_thread_stream_id, 1,
							      __ATOMIC_RELAXED);
		*id = thread_stream_id;
	} else {
		*id = (uintptr_t)stream;
	}
	return CUDA_SUCCESS;
}

/* A module's handle value says how many functions it has (low 4 bits). */
CUresult cuModuleGetFunctionCount(unsigned int *count, CUmodule mod)
{
	if (!mod)
		return CUDA_ERROR_INVALID_HANDLE;
	*count = (unsigned)((uintptr_t)mod & 0xf);
	return CUDA_SUCCESS;
}

CUresult cuModuleEnumerateFunctions(CUfunction *fns, unsigned int n, CUmodule mod)
{
	unsigned i;

	if (!mod || n != ((uintptr_t)mod & 0xf))
		return CUDA_ERROR_INVALID_VALUE;
	for (i = 0; i < n; i++)
		fns[i] = (CUfunction)((uintptr_t)mod * 16 + i);
	return CUDA_SUCCESS;
}
