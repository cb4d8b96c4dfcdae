/*
 * Generic calls: marshal a sync/async function by its descriptor
 * (include/vgpu/api.h documents the payloads), and the guest's handle table.
 */
#include <stdlib.h>
#include <string.h>

#include "lc.h"
#include "pcopy.h"

void lc_ctx_after_call(int fn, const uint64_t *a);
void lc_funcattr_forget(int fn);
void lc_primary_after_call(int fn, const uint64_t *a);
void lc_ctx_ended(int fn, const uint64_t *a);
void lc_capture_after_call(int fn, const uint64_t *a, CUresult res);
uint64_t lc_capture_stream_stamp(void);

/* ---- handles ---------------------------------------------------------- */

/*
 * A destroyed context keeps its id, marked dead: NVIDIA's driver answers
 * CUDA_ERROR_CONTEXT_IS_DESTROYED for it, not INVALID_CONTEXT.
 */
#define LC_H_DEAD_CONTEXT 0xffffu

/* An input at least this long is sent from the caller's memory (lc_scratch_borrow). */
#define LC_BORROW_MIN (64u << 10)

uint64_t lc_handle_propose(void)
{
	/* Ids step by 16 so they look like aligned pointers to programs that care. */
	return __atomic_add_fetch(&lc.next_id, 16, __ATOMIC_RELAXED);
}

int lc_handle_known(uint64_t id, int htype)
{
	struct vg_hent *e;
	int ok;

	pthread_mutex_lock(&lc.lock);
	e = vg_htab_get(&lc.handles, id);
	ok = e && (int)e->type == htype;
	/* A CUkernel is accepted wherever a CUfunction is. */
	if (e && !ok && htype == VG_H_CUfunction && (int)e->type == VG_H_CUkernel)
		ok = 1;
	pthread_mutex_unlock(&lc.lock);
	return ok;
}

void lc_handle_add(uint64_t id, int htype)
{
	pthread_mutex_lock(&lc.lock);
	/* A stream remembers how many contexts had ended when it was made (capture.c). */
	if (!vg_htab_get(&lc.handles, id))
		vg_htab_put(&lc.handles, id, htype == VG_H_CUstream ? lc_capture_stream_stamp() : 0,
			    (uint32_t)htype, NULL);
	pthread_mutex_unlock(&lc.lock);
}

void lc_handle_remove(uint64_t id)
{
	struct vg_hent *e;
	void *data = NULL;

	pthread_mutex_lock(&lc.lock);
	e = vg_htab_get(&lc.handles, id);
	if (e) {
		data = e->data;
		e->data = NULL;
		if (e->type == VG_H_CUcontext)
			e->type = LC_H_DEAD_CONTEXT;
		else
			vg_htab_del(&lc.handles, id);
	}
	pthread_mutex_unlock(&lc.lock);
	free(data);
}

void *lc_handle_data(uint64_t id)
{
	struct vg_hent *e;
	void *data = NULL;

	pthread_mutex_lock(&lc.lock);
	e = vg_htab_get(&lc.handles, id);
	if (e)
		data = e->data;
	pthread_mutex_unlock(&lc.lock);
	return data;
}

void lc_handle_set_data(uint64_t id, void *data)
{
	struct vg_hent *e;

	pthread_mutex_lock(&lc.lock);
	e = vg_htab_get(&lc.handles, id);
	if (e && !e->data) {
		e->data = data;
		data = NULL;
	}
	pthread_mutex_unlock(&lc.lock);
	free(data);
}

CUresult lc_bad_handle_error(int htype)
{
	return htype == VG_H_CUcontext ? CUDA_ERROR_INVALID_CONTEXT : CUDA_ERROR_INVALID_HANDLE;
}

static CUresult bad_handle(uint64_t id, int htype)
{
	struct vg_hent *e;
	int dead;

	if (htype != VG_H_CUcontext)
		return CUDA_ERROR_INVALID_HANDLE;
	pthread_mutex_lock(&lc.lock);
	e = vg_htab_get(&lc.handles, id);
	dead = e && e->type == LC_H_DEAD_CONTEXT;
	pthread_mutex_unlock(&lc.lock);
	return dead ? CUDA_ERROR_CONTEXT_IS_DESTROYED : CUDA_ERROR_INVALID_CONTEXT;
}

static int handle_is_special(uint64_t id, int htype)
{
	/* NULL everywhere; the legacy and per-thread default streams. */
	return id == 0 || (htype == VG_H_CUstream && (id == 1 || id == 2));
}

CUresult lc_put_handle(struct vg_buf *b, const void *h, int htype, int null_ok)
{
	uint64_t id = (uint64_t)(uintptr_t)h;

	if (!handle_is_special(id, htype) && !lc_handle_known(id, htype)) {
		VG_DEBUG("unknown %s handle %#llx", vg_htype_names[htype], (unsigned long long)id);
		return bad_handle(id, htype);
	}
	(void)null_ok;
	vg_put_u64(b, id);
	return CUDA_SUCCESS;
}

/* ---- generic marshalling ----------------------------------------------- */

static int64_t arg_count(const struct vg_fn_desc *d, const struct vg_arg_desc *ad, const uint64_t *a)
{
	const struct vg_arg_desc *cd;
	uint64_t v;

	if (ad->count_arg < 0)
		return ad->count;
	cd = &d->args[ad->count_arg];
	v = a[ad->count_arg];
	/* Counts narrower than 64 bits are signed ints in the prototypes. */
	if (cd->elem_size == 4)
		return (int64_t)(int32_t)(uint32_t)v;
	if (cd->elem_size == 2)
		return (int64_t)(int16_t)(uint16_t)v;
	if (cd->elem_size == 1)
		return (int64_t)(uint8_t)v;
	if (v > VG_MSG_MAX)
		return -1;
	return (int64_t)v;
}

static uint32_t wire_elem_size(const struct vg_arg_desc *ad)
{
	if (ad->elem == VG_E_HANDLE)
		return 8;
	if (ad->elem == VG_E_DEVICE)
		return 4;
	return ad->elem_size;
}

static CUresult put_device(struct vg_buf *b, int64_t ord)
{
	const struct lc_device *dev = lc_device((int)ord);

	if (ord != (int)ord || !dev)
		return CUDA_ERROR_INVALID_DEVICE;
	vg_put_u32(b, (uint32_t)dev->host_ordinal);
	return CUDA_SUCCESS;
}

/* Data in pinned memory shared with the worker travels as its address. */
static int put_shared(struct vg_buf *b, const struct vg_arg_desc *ad, const void *p, int64_t count)
{
	if (ad->elem != VG_E_DATA || count <= 0 || !lc_hostmem_shared(p, (uint64_t)count * ad->elem_size))
		return 0;
	vg_put_u32(b, VG_SHARED_LEN);
	vg_put_u64(b, (uint64_t)(uintptr_t)p);
	return 1;
}

static CUresult put_in(struct vg_buf *b, const struct vg_arg_desc *ad, const void *p, int64_t count)
{
	uint64_t bytes;
	int64_t i;

	if (!p) {
		vg_put_u32(b, VG_NULL_LEN);
		return CUDA_SUCCESS;
	}
	if (count < 0 || count > (int64_t)VG_ARRAY_MAX * (ad->elem == VG_E_DATA ? 256 : 1))
		return CUDA_ERROR_INVALID_VALUE;
	if (put_shared(b, ad, p, count))
		return CUDA_SUCCESS;
	bytes = (uint64_t)count * wire_elem_size(ad);
	if (bytes > VG_MSG_MAX - 4096)
		return CUDA_ERROR_INVALID_VALUE;
	vg_put_u32(b, (uint32_t)bytes);
	switch (ad->elem) {
	case VG_E_DATA:
		/* Sent from where they are (lc_send_async / lc_rpc_send come before the caller returns). */
		if (bytes < LC_BORROW_MIN || lc_scratch_borrow(b, p, (size_t)bytes) < 0)
			vg_put_bytes(b, p, (size_t)bytes);
		break;
	case VG_E_HANDLE:
		for (i = 0; i < count; i++) {
			CUresult r = lc_put_handle(b, ((void *const *)p)[i], ad->htype, 1);

			if (r != CUDA_SUCCESS)
				return r;
		}
		break;
	case VG_E_DEVICE:
		for (i = 0; i < count; i++) {
			CUresult r = put_device(b, ((const int *)p)[i]);

			if (r != CUDA_SUCCESS)
				return r;
		}
		break;
	}
	return CUDA_SUCCESS;
}

static CUresult put_out(struct vg_buf *b, const struct vg_arg_desc *ad, const void *p, int64_t count,
			int *shared)
{
	int64_t i;

	*shared = 0;
	if (!p) {
		vg_put_u32(b, VG_NULL_LEN);
		return CUDA_SUCCESS;
	}
	if (count >= 0 && put_shared(b, ad, p, count)) {
		*shared = 1;
		return CUDA_SUCCESS;
	}
	if (count < 0 || (uint64_t)count * wire_elem_size(ad) > VG_MSG_MAX - 4096 ||
	    (ad->elem != VG_E_DATA && count > VG_ARRAY_MAX))
		return CUDA_ERROR_INVALID_VALUE;
	vg_put_u32(b, (uint32_t)count);
	if (ad->elem == VG_E_HANDLE)
		for (i = 0; i < count; i++)
			vg_put_u64(b, lc_handle_propose());
	return CUDA_SUCCESS;
}

static int device_ordinal_from_host(int host)
{
	int i;

	for (i = 0; i < lc.ndev; i++)
		if (lc.dev[i].host_ordinal == host)
			return i;
	return -1;
}

static CUresult get_out(struct vg_rd *r, const struct vg_arg_desc *ad, void *p, int64_t count)
{
	uint32_t n = 0;
	int is_null = 0;
	const uint8_t *q = vg_get_blob(r, VG_MSG_MAX, &n, &is_null);
	int64_t i;

	if (!q || is_null || n != (uint64_t)count * wire_elem_size(ad))
		return CUDA_ERROR_UNKNOWN;
	switch (ad->elem) {
	case VG_E_DATA:
		lc_pcopy(p, q, n);	/* a copy's chunk over a remote transport: helper threads */
		break;
	case VG_E_HANDLE:
		for (i = 0; i < count; i++) {
			uint64_t id = vg_load_le(q + 8 * i, 8);

			if (id)
				lc_handle_add(id, ad->htype);
			((void **)p)[i] = (void *)(uintptr_t)id;
		}
		break;
	case VG_E_DEVICE:
		for (i = 0; i < count; i++) {
			uint32_t h = (uint32_t)q[4 * i] | (uint32_t)q[4 * i + 1] << 8 |
				     (uint32_t)q[4 * i + 2] << 16 | (uint32_t)q[4 * i + 3] << 24;

			((int *)p)[i] = device_ordinal_from_host((int)h);
		}
		break;
	}
	return CUDA_SUCCESS;
}

/* Encodes a call's arguments into the thread's scratch buffer (*bp). */
static CUresult call_encode(int fn, const uint64_t *a, struct vg_buf **bp, uint32_t *sharedp)
{
	const struct vg_fn_desc *d = &vg_fn_descs[fn];
	struct vg_buf *b;
	CUresult res = CUDA_SUCCESS;
	uint32_t shared = 0;	/* bit i: argument i travelled as a shared address */
	int i;

	b = lc_scratch();
	if (!b)
		return CUDA_ERROR_DEVICE_UNAVAILABLE;
	for (i = 0; i < d->nargs; i++) {
		const struct vg_arg_desc *ad = &d->args[i];
		const void *p = (const void *)(uintptr_t)a[i];
		uint64_t v = a[i];

		switch (ad->kind) {
		case VG_A_SCALAR:
			if (ad->elem_size < 8)
				v &= (1ull << (8 * ad->elem_size)) - 1;
			vg_put_u64(b, v);
			break;
		case VG_A_DEVICE:
			res = put_device(b, (int64_t)(int32_t)(uint32_t)v);
			break;
		case VG_A_HANDLE:
			res = lc_put_handle(b, p, ad->htype, 1);
			break;
		case VG_A_STR:
			if (!p) {
				vg_put_u32(b, VG_NULL_LEN);
			} else {
				size_t n = strnlen(p, VG_STR_MAX);

				if (n == VG_STR_MAX)
					return CUDA_ERROR_INVALID_VALUE;
				vg_put_blob(b, p, (uint32_t)n + 1);
			}
			break;
		case VG_A_IN:
			res = put_in(b, ad, p, arg_count(d, ad, a));
			break;
		case VG_A_INOUT: {
			int64_t n = arg_count(d, ad, a);

			res = put_in(b, ad, p, n);
			if (p && ad->elem == VG_E_DATA && n > 0 &&
			    lc_hostmem_shared(p, (uint64_t)n * ad->elem_size))
				shared |= 1u << i;
			break;
		}
		case VG_A_OUT: {
			int sh;

			res = put_out(b, ad, p, arg_count(d, ad, a), &sh);
			if (sh)
				shared |= 1u << i;
			break;
		}
		default:
			return lc_unsupported(fn);
		}
		if (res != CUDA_SUCCESS)
			return res;
	}
	*bp = b;
	*sharedp = shared;
	return CUDA_SUCCESS;
}

/* The outputs of a reply into the caller's memory (those not shared). */
static CUresult call_outputs(int fn, const uint64_t *a, uint32_t shared, const struct vg_buf *rep)
{
	const struct vg_fn_desc *d = &vg_fn_descs[fn];
	struct vg_rd r;
	CUresult res = CUDA_SUCCESS;
	int i;

	vg_rd_init(&r, rep->p, rep->len);
	for (i = 0; i < d->nargs && res == CUDA_SUCCESS; i++) {
		const struct vg_arg_desc *ad = &d->args[i];
		void *p = (void *)(uintptr_t)a[i];

		if ((ad->kind != VG_A_OUT && ad->kind != VG_A_INOUT) || !p || (shared & (1u << i)))
			continue;
		res = get_out(&r, ad, p, arg_count(d, ad, a));
		if (res != CUDA_SUCCESS)
			VG_ERR("%s: malformed reply from the worker", d->name);
	}
	return res;
}

CUresult lc_call(int fn, const uint64_t *a)
{
	const struct vg_fn_desc *d = &vg_fn_descs[fn];
	struct vg_buf *b, rep;
	CUresult res;
	uint32_t shared = 0;	/* bit i: argument i travelled as a shared address */
	int i;

	res = lc_check();
	if (res != CUDA_SUCCESS)
		return res;
	if (d->cls == VG_CLASS_SYNC && lc_sync_local(fn, a))
		return CUDA_SUCCESS;
	res = call_encode(fn, a, &b, &shared);
	if (res != CUDA_SUCCESS)
		return res;
	/* Asynchronous functions have no outputs: send and go on. */
	if (d->cls == VG_CLASS_ASYNC) {
		res = lc_async_precheck();
		if (res != CUDA_SUCCESS)
			return res;
		/* What the driver refuses at once must be refused here: NULL handles. */
		for (i = 0; i < d->nargs; i++)
			if (d->args[i].kind == VG_A_HANDLE && !a[i] && d->args[i].htype != VG_H_CUstream)
				return lc_bad_handle_error(d->args[i].htype);
		res = lc_send_async((uint32_t)fn, b);
		if (res != CUDA_ERROR_NOT_SUPPORTED) {
			if (res == CUDA_SUCCESS)
				for (i = 0; i < d->nargs; i++)
					if (d->args[i].kind == VG_A_HANDLE && (d->args[i].flags & VG_ARG_DESTROY) &&
					    !handle_is_special(a[i], d->args[i].htype))
						lc_handle_remove(a[i]);
			return res;
		}
	}
	vg_buf_init(&rep);
	res = lc_rpc((uint32_t)fn, b, &rep);
	if (res == CUDA_SUCCESS && d->cls == VG_CLASS_SYNC)
		lc_sync_done(fn, a);
	if (res == CUDA_SUCCESS) {
		res = call_outputs(fn, a, shared, &rep);
		for (i = 0; i < d->nargs; i++)
			if (d->args[i].kind == VG_A_HANDLE && (d->args[i].flags & VG_ARG_DESTROY) &&
			    !handle_is_special(a[i], d->args[i].htype))
				lc_handle_remove(a[i]);
		lc_ctx_after_call(fn, a);
		lc_funcattr_forget(fn);
		lc_primary_after_call(fn, a);
		/* A new context starts without the old one's sticky error. */
		if (fn == VG_FN_cuDevicePrimaryCtxReset_v2 || fn == VG_FN_cuCtxDestroy_v2)
			__atomic_store_n(&lc.sticky, 0, __ATOMIC_RELAXED);
	}
	vg_buf_fini(&rep);
	if (res == CUDA_SUCCESS)
		lc_ctx_ended(fn, a);
	lc_capture_after_call(fn, a, res);
	return res;
}

CUresult lc_call_begin(int fn, const uint64_t *a, struct lc_pending *pc)
{
	struct vg_buf *b;
	CUresult res = lc_check();

	if (res != CUDA_SUCCESS)
		return res;
	res = call_encode(fn, a, &b, &pc->shared);
	if (res != CUDA_SUCCESS)
		return res;
	return lc_rpc_send((uint32_t)fn, b, -1, &pc->seq);
}

CUresult lc_call_end(int fn, const uint64_t *a, const struct lc_pending *pc)
{
	struct vg_buf rep;
	CUresult res;

	vg_buf_init(&rep);
	res = lc_rpc_wait((uint32_t)fn, pc->seq, &rep);
	if (res == CUDA_SUCCESS)
		res = call_outputs(fn, a, pc->shared, &rep);
	vg_buf_fini(&rep);
	return res;
}

CUresult lc_unsupported(int fn)
{
	static uint8_t logged[VG_FN_MAX];

	if (fn > 0 && fn < VG_FN_MAX && !__atomic_exchange_n(&logged[fn], 1, __ATOMIC_RELAXED))
		VG_WARN("%s is not supported by vgpu yet: returning CUDA_ERROR_NOT_SUPPORTED",
			vg_fn_descs[fn].name ? vg_fn_descs[fn].name : "?");
	return CUDA_ERROR_NOT_SUPPORTED;
}
