/*
 * The worker (prefix wk_): one process per client, forked and exec'd by
 * vgpud.  It loads the driver (NVIDIA's libcuda.so.1, or the CPU test
 * driver), serves the client's control channel on its main thread and each
 * guest thread's channel on a host thread of its own.
 */
#ifndef VGPU_WORKER_H
#define VGPU_WORKER_H

#include <pthread.h>
#include <stdint.h>
#include <time.h>

#include "g_api.h"
#include "vgpu/htab.h"
#include "vgpu/log.h"
#include "vgpu/wire.h"

struct tp_chan;

/*
 * VGPU_WORKER_TIMING=1: per operation, the messages served, the time from
 * a message's arrival to its end (reply sent, or the next message for a
 * no-reply call) and the part of it inside the driver; in the statistics
 * file.  What is outside the driver is vgpu's own cost on the host side.
 */
#define WK_TIMING_SLOTS (VG_FN_MAX + 64)	/* function ids, then manual ops from VG_OP_BASE */
struct wk_op_timing {
	uint64_t n[WK_TIMING_SLOTS], busy[WK_TIMING_SLOTS], driver[WK_TIMING_SLOTS];
};

/* One host thread serving one guest thread's channel. */
struct wk_thread {
	struct tp_chan *chan;
	uint32_t tid;
	pthread_t thread;
	struct wk_thread *next;
	struct vg_buf in, out;
	uint64_t seq;			/* of the CALL being served */
	int callback;			/* now the callback channel: no longer read here */
	int fd_in;			/* a descriptor that came with the CALL, or -1 */
	/* Ordering of no-reply calls across channels (VG_F_ORDERED). */
	pthread_mutex_t rx_lock;	/* held while a message is read */
	pthread_cond_t rx_cond;		/* a no-reply call finished */
	uint64_t busy_seq;		/* seq of the no-reply call running, or 0 */
	CUresult deferred;		/* first error of a no-reply call, not yet reported */
	int ring_fd;			/* RING_ATTACH accepted: switch after the reply */
	uint32_t ring_bytes;
	struct wk_op_timing *timing;	/* VGPU_WORKER_TIMING=1 only */
};

struct wk_state {
	void *driver;			/* dlopen handle */
	void *fns[VG_FN_MAX];		/* the driver's entry points, NULL where absent */
	uint64_t calls[VG_FN_MAX];	/* atomic: per-function counts of successful calls */
	uint8_t syncs[VG_FN_MAX];	/* functions that report deferred errors */
	pthread_mutex_t lock;		/* handle tables, thread list */
	struct vg_htab ids;		/* id -> real pointer, type */
	struct vg_htab rev[VG_H_MAX];	/* real pointer -> id, per handle type */
	uint64_t handle_gen;		/* moves at every forget (written under lock, read atomically) */
	uint64_t next_host_id;
	struct wk_thread *threads;
	const char *stats_dir;
	int quiet;			/* cleanup after the client: calls not counted */
	struct vg_htab shm;		/* guest pinned memory mapped here: address -> size */
	struct wk_thread *cb;		/* the callback channel, once the guest opened it */
	pthread_mutex_t cb_lock;	/* one host function call at a time on it */
	int ring_ok;			/* the guest's rings carry records (VG_CAP_RING_RECORDS) */
	int stopping;			/* atomic: the session ends; the channels are being shut */
};

extern struct wk_state wk;

/* A protocol violation: the client's session ends (the worker exits). */
void wk_fatal(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

/* Handle tables. */
int wk_handle_lookup(uint64_t id, int htype, void **real);
uint64_t wk_handle_register(void *real, int htype, uint64_t proposed);
void wk_handle_forget(uint64_t id);
CUresult wk_bad_handle_error(int htype);
/* Decodes a u64 id into the real handle; 0/1/2 special values pass. */
CUresult wk_get_handle(struct vg_rd *r, int htype, void **real);
CUresult wk_get_handle_id(struct vg_rd *r, int htype, void **real, uint64_t *id);
/* Encodes a real handle as an id (registering it with a host id if new). */
void wk_put_handle(struct vg_buf *b, void *real, int htype);

/* Counting and calling the driver. */
static inline void wk_count(int fn)
{
	if (!wk.quiet)
		__atomic_add_fetch(&wk.calls[fn], 1, __ATOMIC_RELAXED);
}
#define WK_FN(name) ((__typeof__(&name))wk.fns[VG_FN_##name])

extern int wk_timing;			/* VGPU_WORKER_TIMING=1 */
extern __thread uint64_t wk_driver_ticks;	/* in the driver during this thread's message */

/* A cheap clock: the time-stamp counter where there is one (converted at the end). */
static inline uint64_t wk_ticks(void)
{
#if defined(__x86_64__) || defined(__i386__)
	return __builtin_ia32_rdtsc();
#else
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
#endif
}
/* Calls the driver's `name`; the statistics count calls that succeeded. */
#define WK_CALL(name, ...) ({ \
	uint64_t t0_ = wk_timing ? wk_ticks() : 0; \
	CUresult r_ = wk.fns[VG_FN_##name] ? WK_FN(name)(__VA_ARGS__) : CUDA_ERROR_NOT_SUPPORTED; \
	if (wk_timing) \
		wk_driver_ticks += wk_ticks() - t0_; \
	if (r_ == CUDA_SUCCESS) \
		wk_count(VG_FN_##name); \
	r_; \
})

CUresult wk_generic(struct wk_thread *t, int fn, struct vg_rd *r, struct vg_buf *out);
CUresult wk_manual(struct wk_thread *t, uint32_t op, struct vg_rd *r, struct vg_buf *out);
CUresult wk_memloc(struct vg_rd *r, struct vg_buf *out);

/* The hand-written operations, by file (payloads documented at each). */
CUresult wk_op_module_load(struct vg_rd *r, struct vg_buf *out);		/* wk_module.c */
CUresult wk_op_library_load(struct vg_rd *r, struct vg_buf *out);
CUresult wk_op_func_info(struct vg_rd *r, struct vg_buf *out);
CUresult wk_op_func_name(struct vg_rd *r, struct vg_buf *out);
CUresult wk_op_launch(struct vg_rd *r, int ex);				/* wk_launch.c */
CUresult wk_op_occ_clusters(struct vg_rd *r, struct vg_buf *out);
CUresult wk_op_occ_blocksize(struct wk_thread *t, struct vg_rd *r, struct vg_buf *out);
CUresult wk_op_memcpy(struct vg_rd *r, struct vg_buf *out, int three_d);	/* wk_memory.c */
CUresult wk_op_pointer_attr(struct vg_rd *r, struct vg_buf *out);
CUresult wk_op_host_mem(struct wk_thread *t, struct vg_rd *r, struct vg_buf *out);
CUresult wk_op_attr_value(struct vg_rd *r, struct vg_buf *out);
CUresult wk_op_callback_channel(struct wk_thread *t, struct vg_rd *r);	/* wk_callback.c */
CUresult wk_op_host_func(struct vg_rd *r);
/* Host->guest call on the thread's channel; returns 0 and the reply payload in rep. */
int wk_host_call(struct wk_thread *t, uint32_t op, const struct vg_buf *req, struct vg_buf *rep);

void wk_cleanup(void);
/* A warm worker: the device snapshot made ahead of the client (wk_ops.c); 0 or -1. */
int wk_snapshot_prepare(void);
void wk_prewarm_context(void);
void wk_prewarm_release(void);
/* 1 when [p, p+n) lies in pinned memory this client shared with us. */
int wk_shm_contains(uint64_t p, uint64_t n);

/*
 * Per-client limits (wk_limits.c): device memory and streams accounted
 * around every allocating call, channels counted, the message size bounded.
 */
struct wk_lim_note {		/* what wk_limits_pre decided, for wk_limits_post */
	uint64_t bytes;		/* reserved, or taken off the ledger */
	uint64_t key;
	void *ctx;
};
int wk_limits_init(const char *arg);		/* --limits LIST, or NULL */
size_t wk_limits_payload_max(void);		/* of one message, header excluded */
int wk_limits_thread_enter(void);		/* 0, or -EMFILE at max_threads */
void wk_limits_thread_exit(void);
/* av: the libffi argument values of wk_generic (outputs: their buffers). */
CUresult wk_limits_pre(int fn, void **av, struct wk_lim_note *n);
CUresult wk_limits_post(int fn, void **av, CUresult res, struct wk_lim_note *n);
CUresult wk_limits_vmm_pre(uint64_t bytes);
void wk_limits_vmm_post(CUresult res, uint64_t handle, uint64_t bytes);

#endif
