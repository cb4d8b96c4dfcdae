/*
 * The driver's private export tables (cuGetExportTable), served in the
 * guest: the interface between libcuda's core and darkapi.c, ctxlocal.c,
 * integrity.c and toolsctx.c (prefix lc_, tables lc_etbl_).
 *
 * The tables hold pointers into this process and callbacks into the
 * caller's cudart, so they can never be forwarded.  Where a slot needs
 * driver state it calls our exported driver API, declared below with the
 * real prototypes (the definitions are the core's).
 */
#ifndef VGPU_LC_DARKAPI_H
#define VGPU_LC_DARKAPI_H

#include <stdint.h>

#include "vgpu/cuda_types.h"

/* Internal to libcuda.so.1: never exported, bound inside the library. */
#pragma GCC visibility push(hidden)

/* ---- Hooks the core calls ---- */

/*
 * A context's life ended: cuCtxDestroy, cuDevicePrimaryCtxReset, or the
 * last cuDevicePrimaryCtxRelease of a primary context.  Runs the
 * context-local-storage destructors registered for ctx, newest first (the
 * real driver's order is not documented), then forgets the context's tools
 * ids and stream handles.  Call it after the context is gone, without
 * holding any lock: destructors are the client's code.
 */
void lc_cls_context_destroyed(CUcontext ctx);
/* A stream was destroyed: forget its tools handle and id. */
void lc_tools_stream_destroyed(CUstream stream);

/*
 * Optional, provided by the core: the handle of dev's primary context
 * without retaining or activating it (CUDART_INTERFACE slot 2; a later
 * cuDevicePrimaryCtxRetain must return the same handle).  Until the core
 * has it, slot 2 retains and releases the primary context instead.
 */
CUresult lc_ctx_primary_peek(CUdevice dev, CUcontext *pctx);

#pragma GCC visibility pop

/* ---- Our exported driver API that the slots call ---- */

CUresult cuDriverGetVersion(int *driverVersion);
CUresult cuDeviceGetCount(int *count);
CUresult cuDeviceGetUuid(CUuuid *uuid, CUdevice dev);
CUresult cuDeviceGetAttribute(int *pi, CUdevice_attribute attrib, CUdevice dev);
CUresult cuCtxGetCurrent(CUcontext *pctx);
CUresult cuCtxSetCurrent(CUcontext ctx);
CUresult cuCtxPushCurrent_v2(CUcontext ctx);
CUresult cuCtxPopCurrent_v2(CUcontext *pctx);
CUresult cuCtxGetId(CUcontext ctx, unsigned long long *ctxId);
CUresult cuDevicePrimaryCtxRetain(CUcontext *pctx, CUdevice dev);
CUresult cuDevicePrimaryCtxRelease_v2(CUdevice dev);
CUresult cuStreamGetId(CUstream hStream, unsigned long long *streamId);
CUresult cuModuleGetFunctionCount(unsigned int *count, CUmodule mod);
CUresult cuModuleEnumerateFunctions(CUfunction *functions, unsigned int numFunctions,
				    CUmodule mod);

/* ---- Between the table files ---- */

#pragma GCC visibility push(hidden)

/* Table identities (CUuuid bytes in memory order) and real sizes. */
#define LC_ETBL_CUDART_WORDS		13	/* slot 10 NULL */
#define LC_ETBL_HOOKS_WORDS		7
#define LC_ETBL_TOOLS_TLS_WORDS		3
#define LC_ETBL_CLS_WORDS		4	/* no size word; slot 3 NULL */
#define LC_ETBL_GREEN_WORDS		15
#define LC_ETBL_INTEGRITY_WORDS		3
#define LC_ETBL_TOOLS_CONTEXT_WORDS	93	/* slot 91 NULL */
#define LC_ETBL_TOOLS_MODULE_WORDS	99	/* slot 93 NULL */
#define LC_ETBL_CLUSTER_WORDS		17

enum lc_etbl_id {
	LC_ETBL_CUDART,
	LC_ETBL_HOOKS,
	LC_ETBL_TOOLS_TLS,
	LC_ETBL_CLS,
	LC_ETBL_GREEN,
	LC_ETBL_INTEGRITY,
	LC_ETBL_TOOLS_CONTEXT,
	LC_ETBL_TOOLS_MODULE,
	LC_ETBL_CLUSTER,
	LC_ETBL_COUNT
};

/*
 * Fills words[0..n) of table `id`: every slot gets a function that logs
 * once and returns CUDA_ERROR_NOT_SUPPORTED; word 0 gets the size in bytes
 * when sized.  The caller then sets its real slots and NULL words.
 */
void lc_etbl_fill(enum lc_etbl_id id, void **words, unsigned n, int sized);

/* Each returns its table, built once; process-global and never freed. */
const void *lc_etbl_cudart(void);
const void *lc_etbl_cls(void);
const void *lc_etbl_integrity(void);
const void *lc_etbl_tools_context(void);
const void *lc_etbl_tools_module(void);
const void *lc_etbl_cluster(void);

/* Tools ids (ToolsContext slots 4 and 39), also behind the hooks table. */
CUresult lc_tools_ctx_id(CUcontext ctx, uint64_t *id);
void lc_tools_context_destroyed(CUcontext ctx);

#pragma GCC visibility pop

#endif
