/*
 * Internals of the guest library libcuda.so.1 (prefix lc_).
 *
 * Everything here runs inside someone else's program: no constructors, no
 * aborts, no signals; exported functions return CUresult.
 */
#ifndef VGPU_LC_H
#define VGPU_LC_H

#include <pthread.h>
#include <stdint.h>
#include <sys/types.h>

#include "g_api.h"
#include "vgpu/htab.h"
#include "vgpu/log.h"
#include "vgpu/wire.h"
#include "vgpu/ops.h"

#ifndef VGPU_DRIVER_VERSION
#define VGPU_DRIVER_VERSION 13000
#endif

#define LC_DEV_MAX        VG_SNAP_DEV_MAX
#define LC_ATTR_MAX       VG_SNAP_ATTRS
#define LC_NAME_MAX       VG_SNAP_NAME_MAX
#define LC_BUSID_MAX      VG_SNAP_BUSID_MAX

/* One device as the host answered at cuInit. */
struct lc_device {
	int host_ordinal;
	char name[LC_NAME_MAX];
	uint8_t uuid[16];
	char busid[LC_BUSID_MAX];
	uint64_t total_mem;
	int32_t attr_status[LC_ATTR_MAX];
	int32_t attr_value[LC_ATTR_MAX];
	int32_t luid_status;
	uint8_t luid[8];
	uint32_t luid_mask;
};

struct lc_state {
	pthread_mutex_t lock;		/* init, control channel, handle table */
	int initialized;
	pid_t pid;			/* the process that called cuInit */
	int lost;			/* the transport went away after init */
	uint64_t caps;			/* VG_CAP_* granted by the worker */
	int sticky;			/* atomic: a sticky (700-class) error the host reported */
	struct tp_chan *ctl;
	uint64_t seq;			/* atomic */
	uint64_t next_id;		/* atomic: guest handle ids */
	int ndev;
	struct lc_device dev[LC_DEV_MAX];
	struct vg_htab handles;		/* id -> (type, data) */
	struct vg_htab hostmem;		/* guest pinned allocations: address -> size, flags */
};

extern struct lc_state lc;

/* Called first by every exported function that needs the session. */
CUresult lc_check(void);

/* Generic marshalling of a sync/async call by its descriptor. */
CUresult lc_call(int fn, const uint64_t *a);
CUresult lc_unsupported(int fn);

/*
 * One round trip on the calling thread's channel: sends CALL `op` with the
 * payload in req and fills rep with the reply payload.  Returns the
 * CUresult in the reply's header, or CUDA_ERROR_DEVICE_UNAVAILABLE when the
 * transport failed.  Host->guest calls arriving meanwhile are served.
 */
CUresult lc_rpc(uint32_t op, const struct vg_buf *req, struct vg_buf *rep);
/*
 * Sends CALL `op` without waiting (VG_F_NO_REPLY): CUDA_SUCCESS when sent,
 * CUDA_ERROR_NOT_SUPPORTED when asynchronous sends are off (VGPU_SYNC=1):
 * the caller then makes a round trip.
 */
CUresult lc_send_async(uint32_t op, const struct vg_buf *req);
/* The same, with a file descriptor attached to the request (or -1). */
CUresult lc_rpc_fd(uint32_t op, const struct vg_buf *req, struct vg_buf *rep, int fd);
/*
 * lc_rpc in two halves, for calls kept in flight while the thread does
 * something else: the replies come in the order the calls went, so a thread
 * waits for its calls in that order (seq from lc_rpc_send).
 */
CUresult lc_rpc_send(uint32_t op, const struct vg_buf *req, int fd, uint64_t *seq);
CUresult lc_rpc_wait(uint32_t op, uint64_t seq, struct vg_buf *rep);
/*
 * The thread's request scratch buffer (emptied), and a way to make the
 * request carry n bytes at p next, where b's encoding has reached, without
 * copying them into b: they are sent from p, so p must stay as it is until
 * the request is sent.  One such run per request; -1 when b already has
 * one (or is not the scratch buffer): copy them then.
 */
struct vg_buf *lc_scratch(void);
int lc_scratch_borrow(struct vg_buf *b, const void *p, size_t n);
/*
 * A generic call in two halves (lc_call's encoding and decoding), for calls
 * kept in flight: lc_call_end writes the outputs that the reply carries into
 * the memory a names, so a and that memory must stay as they were until then.
 * Only for calls with no effect on the guest's own state (copies).
 */
struct lc_pending {
	uint64_t seq;
	uint32_t shared;	/* bit i: argument i travelled as a shared address */
};
CUresult lc_call_begin(int fn, const uint64_t *a, struct lc_pending *pc);
CUresult lc_call_end(int fn, const uint64_t *a, const struct lc_pending *pc);

/*
 * Synchronisations answered in the guest (session.c): lc_sync_local says 1
 * when fn (cuStreamSynchronize*, cuCtxSynchronize*) with arguments a would
 * return CUDA_SUCCESS again, as the thread's last one did with nothing sent
 * since; lc_sync_done, right after fn returned CUDA_SUCCESS from the host.
 */
int lc_sync_local(int fn, const uint64_t *a);
void lc_sync_done(int fn, const uint64_t *a);
int lc_ctx_current_known(uint64_t *ctx);

/* Guest pinned memory (lc.hostmem: address -> size, flags). */
#define LC_HOSTMEM_SHARED 0x80000000u	/* shared with the worker, same address */
/* 1 when [p, p+n) lies in pinned memory shared with the worker. */
int lc_hostmem_shared(const void *p, uint64_t n);

/* Handles. */
uint64_t lc_handle_propose(void);
int lc_handle_known(uint64_t id, int htype);
void lc_handle_add(uint64_t id, int htype);
void lc_handle_remove(uint64_t id);
void *lc_handle_data(uint64_t id);
void lc_handle_set_data(uint64_t id, void *data);
/* The error the real driver gives for a bad handle of this type. */
CUresult lc_bad_handle_error(int htype);
/* Encodes a handle argument (validated); returns 0 or a CUresult. */
CUresult lc_put_handle(struct vg_buf *b, const void *h, int htype, int null_ok);

/*
 * Before an asynchronous send: the error NVIDIA's driver would return at
 * once (a sticky context error seen earlier), or CUDA_SUCCESS.
 */
static inline CUresult lc_async_precheck(void)
{
	return (CUresult)__atomic_load_n(&lc.sticky, __ATOMIC_RELAXED);
}

/* Devices: guest ordinal -> snapshot. */
const struct lc_device *lc_device(int ordinal);


#endif
