/* SPDX-License-Identifier: MIT */
/*
 * The CPU test driver: the CUDA driver ABI on host memory.
 *
 * Loaded only by `vgpud --test-driver PATH` (and by its own unit tests), so
 * the whole guest -> daemon -> worker chain runs without a GPU.  It enforces
 * the driver's rules rather than being lenient: handles are looked up in live
 * registries before use, device pointers must lie inside a live allocation,
 * calls before cuInit and after fork fail, a faulting kernel makes its
 * context's error sticky, streams really run asynchronously.
 *
 * Concurrency: one process-wide mutex (td.lock) guards every registry and
 * every stream queue; one condition variable (td.cond) is broadcast whenever
 * a queue gains work or an operation completes.  Operations themselves (the
 * copies, kernels, host functions) run on the stream threads without the
 * lock.  The driver is a test double; simplicity beats throughput here.
 */
#ifndef VGPU_TESTDRV_TD_H
#define VGPU_TESTDRV_TD_H

#include <pthread.h>
#include <stdint.h>
#include <sys/types.h>

#include "g_api.h"

/* Exported names: the cu* ABI (already default via g_api.h) and vgtd_*. */
#define TD_EXPORT __attribute__((visibility("default")))

#define TD_DEV_COUNT		2
#define TD_DEV_MEM		(1ull << 30)	/* "device memory" per device */
#define TD_ALLOC_ALIGN		256ull		/* as cuMemAlloc promises */
#define TD_PITCH_ALIGN		512ull
#define TD_CTX_STACK_MAX	64		/* per-thread context stack depth */
#define TD_HOST_ALLOC_MAX	(1ull << 36)
#define TD_IMAGE_MAX		(256u << 20)	/* longest module image scanned */
#define TD_DRIVER_VERSION	13000
#define TD_SMEM_DEFAULT		49152		/* dynamic shared memory without opt-in */
#define TD_SMEM_OPTIN_MAX	232448		/* H100: 227 KiB per block with opt-in */

/* ---- fences: completion of one queued operation ------------------------ */

/*
 * A fence is shared by the operation that signals it, its stream's tail,
 * events recorded on it and operations that depend on it; reference counted
 * under td.lock.
 */
struct td_fence {
	int refs;
	int done;
	uint64_t ns;		/* CLOCK_MONOTONIC at completion */
};

/* ---- allocations ------------------------------------------------------- */

enum td_alloc_kind {
	TD_ALLOC_DEVICE,	/* cuMemAlloc, cuMemAllocPitch */
	TD_ALLOC_GLOBAL,	/* a module's __device__ variable */
	TD_ALLOC_HOST,		/* cuMemAllocHost, cuMemHostAlloc */
	TD_ALLOC_HOST_REG,	/* cuMemHostRegister: the caller's memory */
};

struct td_alloc {
	struct td_alloc *next;
	uint64_t base;
	uint64_t size;		/* as asked */
	uint64_t span;		/* as reserved (page multiple) */
	enum td_alloc_kind kind;
	unsigned flags;		/* host allocation / registration flags */
	uint64_t id;		/* CU_POINTER_ATTRIBUTE_BUFFER_ID */
	int dev;
	struct td_ctx *ctx;
};

/* ---- streams, operations, events --------------------------------------- */

struct td_op;
typedef void (*td_op_fn)(struct td_op *op);

struct td_kernel;

struct td_op {
	struct td_op *next;
	td_op_fn run;
	struct td_ctx *ctx;
	struct td_stream *stream;
	struct td_fence *fence;
	struct td_fence **deps;
	int ndeps;
	void *staging;		/* freed after run */
	int host;		/* a host function: runs even after a sticky error */
	union {
		struct {
			char *dst;
			const char *src;
			size_t dpitch, dheight, spitch, sheight;
			size_t width, height, depth;
		} copy;
		struct {
			char *dst;
			size_t pitch, width, height;
			unsigned value;
			int elem;
		} set;
		struct {
			const struct td_kernel *k;
			unsigned grid[3], block[3];
			unsigned char *params;
		} launch;
		struct {
			CUhostFn fn;
			CUstreamCallback cb;
			CUstream handle;
			void *user;
		} host;
	} u;
};

struct td_stream {
	struct td_stream *next;
	uint32_t magic;
	struct td_ctx *ctx;
	unsigned flags;
	int priority;
	int legacy;
	int quit;
	int started;
	pthread_t thread;
	struct td_op *head, *tail;
	struct td_fence *last;	/* fence of the newest operation, or NULL */
	unsigned long long id;
	int capture;		/* a CUstreamCaptureStatus */
	unsigned long long capture_id;
};

struct td_event {
	struct td_event *next;
	uint32_t magic;
	struct td_ctx *ctx;
	unsigned flags;
	struct td_fence *fence;	/* NULL: never recorded */
};

/* ---- modules and functions --------------------------------------------- */

/* A test kernel, implemented in C (kernels.c). */
struct td_kernel {
	const char *name;
	int nparams;
	uint16_t off[4], size[4];
	int param_bytes;
	int num_regs;
	/* Checks the memory the launch touches: 0, or -EFAULT (sticky 700). */
	int (*check)(const unsigned char *params, uint64_t threads);
	void (*run)(const unsigned char *params, uint64_t threads);
};

#define TD_KERNEL_COUNT	6
extern const struct td_kernel td_kernels[TD_KERNEL_COUNT];

struct td_func {
	uint32_t magic;
	struct td_module *mod;
	const struct td_kernel *k;
	int max_dyn_smem;
	int carveout;
	int cache;
	int cluster[3];
	int non_portable;
	int sched_policy;
};

struct td_module {
	struct td_module *next;
	uint32_t magic;
	struct td_ctx *ctx;
	unsigned present;	/* bit i: td_kernels[i] is in the image */
	struct td_func funcs[TD_KERNEL_COUNT];
	struct td_alloc *counter;	/* vg_counter, if the image has it */
};

/*
 * A library is context-independent: its kernels (CUkernel) and the same
 * kernels as functions (cuKernelGetFunction, cuLibraryGetModule) live in
 * two module structures without a context.  A CUkernel is accepted
 * wherever a CUfunction is, as with NVIDIA's driver.
 */
struct td_library {
	struct td_library *next;
	uint32_t magic;
	struct td_module kmod;
	struct td_module fmod;
};

/* ---- contexts ---------------------------------------------------------- */

struct td_ctx {
	struct td_ctx *next;	/* td.ctxs: live contexts */
	uint32_t magic;
	int dev;
	unsigned flags;
	int primary;
	CUresult sticky;	/* 0, or the error every call now returns */
	unsigned long long id;
	size_t limits[CU_LIMIT_MAX];
	int cache_config;
	int shared_config;
	struct td_stream *legacy;
	struct td_stream *streams;
	struct td_event *events;
	struct td_module *modules;
};

struct td_device {
	int primary_refs;
	int primary_implicit;	/* activated by use: active until reset */
	unsigned primary_flags;
	struct td_ctx *primary;	/* non-NULL while active */
	uint64_t used;		/* bytes reserved in this device's window */
	char *window;		/* TD_DEV_MEM bytes of address space */
};

struct td_state {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	int inited;
	pid_t pid;
	struct td_ctx *ctxs;
	struct td_alloc *allocs;
	struct td_device dev[TD_DEV_COUNT];
	unsigned long long next_id;
	/*
	 * Destroyed objects are kept, never freed: a handle is never reused,
	 * so a stale one can only ever miss the live registries.
	 */
	struct td_ctx *dead_ctxs;
	struct td_stream *dead_streams;
	struct td_event *dead_events;
	struct td_module *dead_modules;
	struct td_library *libs;
	struct td_library *dead_libs;
	int live_libraries;
	int live_streams, live_events, live_modules, live_ctxs;
	int null_launch;	/* VGPU_TESTDRV_NULL_LAUNCH=1: launches are checked, not run */
};

extern struct td_state td;

#define TD_MAGIC_CTX	0x74646378u
#define TD_MAGIC_STREAM	0x74647374u
#define TD_MAGIC_EVENT	0x74646576u
#define TD_MAGIC_MODULE	0x74646d6fu
#define TD_MAGIC_FUNC	0x7464666eu
#define TD_MAGIC_LIB	0x74646c62u

static inline void td_lock(void)
{
	pthread_mutex_lock(&td.lock);
}

static inline void td_unlock(void)
{
	pthread_mutex_unlock(&td.lock);
}

/* core.c */
CUresult td_check_init(void);
uint64_t td_now_ns(void);

/* ctx.c: current context (checked: live, not sticky unless allowed). */
struct td_ctx *td_ctx_current(void);
CUresult td_ctx_get(struct td_ctx **out);
CUresult td_ctx_get_any(struct td_ctx **out);
int td_ctx_live_locked(const struct td_ctx *c);
void td_ctx_teardown(struct td_ctx *c);
struct td_ctx *td_ctx_new(int dev, unsigned flags, int primary);

/* mem.c */
struct td_alloc *td_alloc_find_locked(uint64_t p);
CUresult td_range_check(uint64_t p, uint64_t n);
int td_range_ok_locked(uint64_t p, uint64_t n);
void td_alloc_release_ctx(struct td_ctx *c);
CUresult td_alloc_device(struct td_ctx *c, uint64_t size, enum td_alloc_kind kind,
			 struct td_alloc **out);
void td_alloc_free_locked(struct td_alloc *a);

/* stream.c */
struct td_op *td_op_new(td_op_fn run);
void td_op_free(struct td_op *op);
CUresult td_stream_resolve(CUstream h, struct td_ctx **ctx, struct td_stream **s);
CUresult td_submit(struct td_stream *s, struct td_op *op, struct td_fence *extra_dep,
		   int wait, struct td_fence **out);
void td_fence_put_locked(struct td_fence *f);
void td_fence_wait_locked(struct td_fence *f);
CUresult td_ctx_sync(struct td_ctx *c);
void td_streams_teardown(struct td_ctx *c);
int td_stream_live_locked(const struct td_stream *s);

/* event.c */
int td_event_live_locked(const struct td_event *e);
CUresult td_event_get(CUevent h, struct td_event **out);
void td_event_bury_locked(struct td_event *e);

/* module.c */
CUresult td_func_resolve_locked(CUfunction h, struct td_func **out);
void td_modules_teardown(struct td_ctx *c);
CUresult td_image_scan(const void *image, unsigned *present, int *counter);
CUresult td_image_read(const char *path, char **out);
void td_module_init(struct td_module *m, struct td_ctx *c, unsigned present,
		    struct td_alloc *counter);
int td_module_live_locked(const struct td_module *m);
CUresult td_module_get(CUmodule h, struct td_module **out);

/* copy.c */
int td_is_pinned_locked(uint64_t p, uint64_t n);

#endif
