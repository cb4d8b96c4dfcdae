/*
 * The worker's handle tables and generic dispatch: decode a CALL by the
 * function's descriptor, validate every length, count and handle, call the
 * driver through libffi, encode the outputs.
 */
#include <errno.h>
#include <ffi.h>
#include <stdlib.h>
#include <string.h>

#include "vgpu/ops.h"
#include "worker.h"

/* ---- handles ---------------------------------------------------------- */

#define WK_HOST_ID_BIT (1ull << 63)

CUresult wk_bad_handle_error(int htype)
{
	return htype == VG_H_CUcontext ? CUDA_ERROR_INVALID_CONTEXT : CUDA_ERROR_INVALID_HANDLE;
}

/* VGPU_WORKER_TIMING=1 (worker.h): set at start; this thread's ticks in the driver. */
int wk_timing;
__thread uint64_t wk_driver_ticks;

/*
 * Each host thread keeps the handles it looked up last: a launch looks up
 * its function and its stream every time, and the table's lock is shared
 * by every thread.  An entry is good while wk.handle_gen is what it was
 * when the entry was filled (under the lock); every forget moves it.
 */
#define HCACHE_SLOTS 8
static __thread struct {
	uint64_t id, gen;
	void *real;
	int type;
} hcache[HCACHE_SLOTS];

static unsigned int hcache_slot(uint64_t id)
{
	return (unsigned int)((id ^ (id >> 7) ^ (id >> 19)) & (HCACHE_SLOTS - 1));
}

int wk_handle_lookup(uint64_t id, int htype, void **real)
{
	unsigned int k = hcache_slot(id);
	struct vg_hent *e;
	uint64_t gen;
	int ok = 0;

	if (hcache[k].id == id && hcache[k].type == htype && id &&
	    hcache[k].gen == __atomic_load_n(&wk.handle_gen, __ATOMIC_ACQUIRE)) {
		*real = hcache[k].real;
		return 1;
	}
	pthread_mutex_lock(&wk.lock);
	gen = wk.handle_gen;
	e = vg_htab_get(&wk.ids, id);
	if (e && ((int)e->type == htype ||
		  (htype == VG_H_CUfunction && (int)e->type == VG_H_CUkernel))) {
		*real = (void *)(uintptr_t)e->val;
		ok = 1;
	}
	pthread_mutex_unlock(&wk.lock);
	if (ok) {
		hcache[k].id = id;
		hcache[k].gen = gen;
		hcache[k].real = *real;
		hcache[k].type = htype;
	}
	return ok;
}

/*
 * Returns the id for a real handle: the existing one when the driver gave
 * back an object we know (the primary context, a module's function asked
 * twice), else the guest's proposal, else a host id.  0 on a bad proposal.
 */
uint64_t wk_handle_register(void *real, int htype, uint64_t proposed)
{
	struct vg_hent *e;
	uint64_t id = 0;

	if (!real)
		return 0;
	pthread_mutex_lock(&wk.lock);
	e = vg_htab_get(&wk.rev[htype], (uint64_t)(uintptr_t)real);
	if (e) {
		id = e->val;
		goto out;
	}
	if (proposed) {
		if (proposed <= 2 || (proposed & WK_HOST_ID_BIT) || vg_htab_get(&wk.ids, proposed))
			goto out;
		id = proposed;
	} else {
		id = WK_HOST_ID_BIT | (wk.next_host_id += 16);
	}
	if (!vg_htab_put(&wk.ids, id, (uint64_t)(uintptr_t)real, (uint32_t)htype, NULL) ||
	    !vg_htab_put(&wk.rev[htype], (uint64_t)(uintptr_t)real, id, (uint32_t)htype, NULL))
		id = 0;
out:
	pthread_mutex_unlock(&wk.lock);
	return id;
}

void wk_handle_forget(uint64_t id)
{
	struct vg_hent *e;

	pthread_mutex_lock(&wk.lock);
	e = vg_htab_get(&wk.ids, id);
	if (e) {
		vg_htab_del(&wk.rev[e->type], e->val);
		vg_htab_del(&wk.ids, id);
		/* Every thread's cached lookups go stale. */
		__atomic_store_n(&wk.handle_gen, wk.handle_gen + 1, __ATOMIC_RELEASE);
	}
	pthread_mutex_unlock(&wk.lock);
}

static int handle_is_special(uint64_t id, int htype)
{
	return id == 0 || (htype == VG_H_CUstream && (id == 1 || id == 2));
}

CUresult wk_get_handle(struct vg_rd *r, int htype, void **real)
{
	uint64_t id;

	return wk_get_handle_id(r, htype, real, &id);
}

CUresult wk_get_handle_id(struct vg_rd *r, int htype, void **real, uint64_t *idp)
{
	uint64_t id = vg_get_u64(r);

	*idp = id;

	if (r->err)
		wk_fatal("truncated handle");
	if (handle_is_special(id, htype)) {
		*real = (void *)(uintptr_t)id;
		return CUDA_SUCCESS;
	}
	if (!wk_handle_lookup(id, htype, real)) {
		VG_DEBUG("unknown %s handle %#llx", vg_htype_names[htype], (unsigned long long)id);
		return wk_bad_handle_error(htype);
	}
	return CUDA_SUCCESS;
}

void wk_put_handle(struct vg_buf *b, void *real, int htype)
{
	uint64_t id = 0;

	if (real && !handle_is_special((uint64_t)(uintptr_t)real, htype))
		id = wk_handle_register(real, htype, 0);
	else
		id = (uint64_t)(uintptr_t)real;
	vg_put_u64(b, id);
}

/* ---- generic dispatch -------------------------------------------------- */

static ffi_cif *cifs[VG_FN_MAX];
static pthread_mutex_t cif_lock = PTHREAD_MUTEX_INITIALIZER;

static ffi_type *arg_ffi_type(const struct vg_arg_desc *ad)
{
	switch (ad->kind) {
	case VG_A_SCALAR:
		if (ad->flags & VG_ARG_FLOAT)
			return ad->elem_size == 4 ? &ffi_type_float : &ffi_type_double;
		switch (ad->elem_size) {
		case 1: return &ffi_type_uint8;
		case 2: return &ffi_type_uint16;
		case 4: return &ffi_type_uint32;
		default: return &ffi_type_uint64;
		}
	case VG_A_DEVICE:
		return &ffi_type_sint32;
	default:
		return &ffi_type_pointer;
	}
}

static ffi_cif *get_cif(int fn)
{
	const struct vg_fn_desc *d = &vg_fn_descs[fn];
	ffi_cif *cif;
	ffi_type **types;
	int i;

	pthread_mutex_lock(&cif_lock);
	cif = cifs[fn];
	if (cif)
		goto out;
	cif = calloc(1, sizeof(*cif));
	types = calloc((size_t)d->nargs + 1, sizeof(*types));
	if (!cif || !types)
		goto fail;
	for (i = 0; i < d->nargs; i++)
		types[i] = arg_ffi_type(&d->args[i]);
	if (ffi_prep_cif(cif, FFI_DEFAULT_ABI, d->nargs, &ffi_type_sint32, types) != FFI_OK)
		goto fail;
	cifs[fn] = cif;
	goto out;
fail:
	free(cif);
	free(types);
	cif = NULL;
out:
	pthread_mutex_unlock(&cif_lock);
	return cif;
}

union wk_val {
	uint8_t u8;
	uint16_t u16;
	uint32_t u32;
	uint64_t u64;
	float f;
	double d;
	int32_t i32;
	void *p;
};

struct wk_arg {
	union wk_val v;
	void *mem;		/* the buffer behind a pointer argument: small, or allocated */
	uint64_t small[4];	/* a small argument's buffer: no allocation */
	uint64_t count;
	uint64_t *ids;		/* OUT handles: the guest's proposals */
	uint64_t id;		/* HANDLE: the id as sent */
	const void *raw;	/* pass 1: the bytes as received */
	uint64_t shared;	/* pass 1: address in shared pinned memory, or 0 */
	uint32_t rawlen;	/* pass 1: blob length, or announced output count */
	int null;
	int in_place;		/* mem is the message's or the reply's own bytes: not freed, not encoded */
};

/*
 * A byte buffer of at least this size is used where it lies: an input in the
 * received message, a copy's output in the reply being built.  Over remote
 * transports that saves a pass over every byte of a bulk copy.
 */
#define WK_IN_PLACE_MIN (64u << 10)

/* A buffer of n bytes for a pointer argument, zeroed when zero is set. */
static void *arg_mem(struct wk_arg *a, size_t n, int zero)
{
	if (n <= sizeof(a->small)) {
		if (zero)
			memset(a->small, 0, sizeof(a->small));
		a->mem = a->small;
	} else {
		a->mem = zero ? calloc(1, n) : malloc(n);
	}
	return a->mem;
}

static void arg_free(struct wk_arg *a)
{
	if (a->mem != a->small && !a->in_place)
		free(a->mem);
	free(a->ids);
}

static uint32_t wire_elem_size(const struct vg_arg_desc *ad)
{
	if (ad->elem == VG_E_HANDLE)
		return 8;
	if (ad->elem == VG_E_DEVICE)
		return 4;
	return ad->elem_size;
}

static uint32_t mem_elem_size(const struct vg_arg_desc *ad)
{
	if (ad->elem == VG_E_HANDLE)
		return sizeof(void *);
	if (ad->elem == VG_E_DEVICE)
		return sizeof(int);
	return ad->elem_size;
}

/* The count the driver will use, from the already-decoded count argument. */
static uint64_t decoded_count(const struct vg_fn_desc *d, const struct vg_arg_desc *ad, struct wk_arg *args)
{
	const struct vg_arg_desc *cd;
	union wk_val *v;

	if (ad->count_arg < 0)
		return ad->count;
	cd = &d->args[ad->count_arg];
	v = &args[ad->count_arg].v;
	switch (cd->elem_size) {
	case 1: return v->u8;
	case 2: return (uint64_t)(int64_t)(int16_t)v->u16;
	case 4: return (uint64_t)(int64_t)(int32_t)v->u32;
	default: return v->u64;
	}
}

/*
 * Pass 1 reads each pointer argument's raw bytes; pass 2 (below) checks them
 * against the counts, which may come from arguments later in the list.
 */
/* VG_SHARED_LEN: the data is in shared pinned memory at this address. */
static int read_shared(const struct vg_fn_desc *d, int i, struct vg_rd *r, struct wk_arg *a)
{
	struct vg_rd peek = *r;

	if (d->args[i].elem != VG_E_DATA || vg_get_u32(&peek) != VG_SHARED_LEN)
		return 0;
	vg_get_u32(r);
	a->shared = vg_get_u64(r);
	if (r->err || !a->shared)
		wk_fatal("%s: malformed shared argument %d", d->name, i);
	return 1;
}

static void read_in(const struct vg_fn_desc *d, int i, struct vg_rd *r, struct wk_arg *a)
{
	uint32_t n = 0;
	int is_null = 0;

	if (read_shared(d, i, r, a))
		return;
	a->raw = vg_get_blob(r, VG_MSG_MAX, &n, &is_null);
	if (r->err)
		wk_fatal("%s: truncated argument %d", d->name, i);
	a->null = is_null;
	a->rawlen = n;
}

static void read_out(const struct vg_fn_desc *d, int i, struct vg_rd *r, struct wk_arg *a)
{
	const struct vg_arg_desc *ad = &d->args[i];
	uint32_t n;

	if (read_shared(d, i, r, a))
		return;
	n = vg_get_u32(r);

	if (r->err)
		wk_fatal("%s: truncated argument %d", d->name, i);
	if (n == VG_NULL_LEN) {
		a->null = 1;
		return;
	}
	if (n > VG_ARRAY_MAX * (ad->elem == VG_E_DATA ? 256u : 1u))
		wk_fatal("%s: output %d announces %u elements", d->name, i, n);
	a->rawlen = n;
	if (ad->elem == VG_E_HANDLE) {
		a->raw = vg_get_bytes(r, (size_t)n * 8);
		if (!a->raw)
			wk_fatal("%s: truncated handle proposals", d->name);
	}
}

/* A shared argument: the whole range must be memory the client shared. */
static void decode_shared(const struct vg_fn_desc *d, int i, struct wk_arg *args)
{
	struct wk_arg *a = &args[i];
	uint64_t count = decoded_count(d, &d->args[i], args);

	if (count > VG_HOST_ALLOC_MAX || !wk_shm_contains(a->shared, count * d->args[i].elem_size))
		wk_fatal("%s: argument %d points outside shared memory", d->name, i);
	a->v.p = (void *)(uintptr_t)a->shared;
}

static CUresult decode_in(const struct vg_fn_desc *d, int i, struct wk_arg *args)
{
	const struct vg_arg_desc *ad = &d->args[i];
	struct wk_arg *a = &args[i];
	const uint8_t *q = a->raw;
	uint32_t n = a->rawlen;
	uint64_t count, j;
	CUresult res;

	if (a->shared) {
		decode_shared(d, i, args);
		return CUDA_SUCCESS;
	}
	if (a->null) {
		a->v.p = NULL;
		return CUDA_SUCCESS;
	}
	count = decoded_count(d, ad, args);
	if (count > VG_MSG_MAX || (uint64_t)n != count * wire_elem_size(ad))
		wk_fatal("%s: argument %d has %u bytes for %llu elements", d->name, i, n,
			 (unsigned long long)count);
	a->count = count;
	/* Inputs are const to the driver, and the message outlives the call. */
	if (ad->kind == VG_A_IN && ad->elem == VG_E_DATA && ad->elem_size == 1 && n >= WK_IN_PLACE_MIN) {
		a->mem = (void *)q;
		a->in_place = 1;
		a->v.p = a->mem;
		return CUDA_SUCCESS;
	}
	if (!arg_mem(a, count * mem_elem_size(ad) + 1, 0))
		return CUDA_ERROR_OUT_OF_MEMORY;
	switch (ad->elem) {
	case VG_E_DATA:
		memcpy(a->mem, q, n);
		break;
	case VG_E_HANDLE:
		for (j = 0; j < count; j++) {
			struct vg_rd er;

			vg_rd_init(&er, q + 8 * j, 8);
			res = wk_get_handle(&er, ad->htype, &((void **)a->mem)[j]);
			if (res != CUDA_SUCCESS)
				return res;
		}
		break;
	case VG_E_DEVICE:
		for (j = 0; j < count; j++)
			((int *)a->mem)[j] = (int)(q[4 * j] | q[4 * j + 1] << 8 | q[4 * j + 2] << 16 |
						   (uint32_t)q[4 * j + 3] << 24);
		break;
	}
	a->v.p = a->mem;
	return CUDA_SUCCESS;
}

/*
 * Whether the reply (still empty) may take this large byte output in place:
 * a copy (cuMemcpy*) writes every byte of its destination when it succeeds,
 * and a failed call's reply is emptied by the caller; the output must be the
 * reply's only one.  Other outputs are zeroed buffers encoded after the
 * call: a driver may leave part of them unwritten.
 */
static int out_in_place(const struct vg_fn_desc *d, const struct wk_arg *args, const struct vg_buf *out)
{
	int i, n = 0;

	if (out->len || strncmp(d->name, "cuMemcpy", 8))
		return 0;
	for (i = 0; i < d->nargs; i++)
		n += (d->args[i].kind == VG_A_OUT || d->args[i].kind == VG_A_INOUT) && !args[i].null &&
		     !args[i].shared;
	return n == 1;
}

static CUresult decode_out(const struct vg_fn_desc *d, int i, struct wk_arg *args, struct vg_buf *out)
{
	const struct vg_arg_desc *ad = &d->args[i];
	struct wk_arg *a = &args[i];
	uint64_t count, j;

	if (a->shared) {
		decode_shared(d, i, args);
		return CUDA_SUCCESS;
	}
	if (a->null) {
		a->v.p = NULL;
		return CUDA_SUCCESS;
	}
	count = decoded_count(d, ad, args);
	if (count != a->rawlen || count * wire_elem_size(ad) > VG_MSG_MAX - 4096)
		wk_fatal("%s: output %d announces %u elements, the call says %llu", d->name, i,
			 a->rawlen, (unsigned long long)count);
	a->count = count;
	if (ad->elem == VG_E_DATA && ad->elem_size == 1 && count >= WK_IN_PLACE_MIN && out_in_place(d, args, out)) {
		vg_put_u32(out, (uint32_t)count);
		a->mem = vg_put_space(out, count);
		if (!a->mem)
			return CUDA_ERROR_OUT_OF_MEMORY;
		a->in_place = 1;
		a->v.p = a->mem;
		return CUDA_SUCCESS;
	}
	if (!arg_mem(a, count * mem_elem_size(ad) + 1, 1))
		return CUDA_ERROR_OUT_OF_MEMORY;
	if (ad->elem == VG_E_HANDLE) {
		a->ids = malloc(count * sizeof(uint64_t) + 1);
		if (!a->ids)
			return CUDA_ERROR_OUT_OF_MEMORY;
		for (j = 0; j < count; j++)
			a->ids[j] = vg_load_le((const uint8_t *)a->raw + 8 * j, 8);
	}
	a->v.p = a->mem;
	return CUDA_SUCCESS;
}

static void encode_out(const struct vg_fn_desc *d, int i, struct wk_arg *a, struct vg_buf *out)
{
	const struct vg_arg_desc *ad = &d->args[i];
	uint64_t j;

	vg_put_u32(out, (uint32_t)(a->count * wire_elem_size(ad)));
	switch (ad->elem) {
	case VG_E_DATA:
		vg_put_bytes(out, a->mem, a->count * ad->elem_size);
		break;
	case VG_E_HANDLE:
		for (j = 0; j < a->count; j++) {
			void *real = ((void **)a->mem)[j];
			uint64_t id = (uint64_t)(uintptr_t)real;

			if (real && !handle_is_special(id, ad->htype)) {
				id = wk_handle_register(real, ad->htype, a->ids ? a->ids[j] : 0);
				if (!id)
					wk_fatal("%s: the guest proposed a bad handle id", d->name);
			}
			vg_put_u64(out, id);
		}
		break;
	case VG_E_DEVICE:
		for (j = 0; j < a->count; j++)
			vg_put_u32(out, (uint32_t)((int *)a->mem)[j]);
		break;
	}
}

/*
 * Host data staged in this worker's own buffers lives only for the call.  A
 * stream being captured would record a pointer to it in the graph, and every
 * replay would write freed memory: refuse, as a driver refuses what cannot be
 * captured.  Pinned memory shared with the guest is fine (a real address).
 */
static CUresult capture_guard(const struct vg_fn_desc *d, const struct wk_arg *args)
{
	CUstreamCaptureStatus cs = CU_STREAM_CAPTURE_STATUS_NONE;
	void *stream = NULL;
	int i, staged = 0, has_stream = 0;

	for (i = 0; i < d->nargs; i++) {
		const struct vg_arg_desc *ad = &d->args[i];

		if (ad->kind == VG_A_HANDLE && ad->htype == VG_H_CUstream) {
			stream = args[i].v.p;
			has_stream = 1;
		} else if ((ad->kind == VG_A_IN || ad->kind == VG_A_OUT || ad->kind == VG_A_INOUT) &&
			   ad->elem == VG_E_DATA && ad->count_arg >= 0 && !args[i].null && !args[i].shared) {
			/* A buffer sized by an argument: copies, not fixed-size answers. */
			staged = 1;
		}
	}
	if (!has_stream || !staged || !wk.fns[VG_FN_cuStreamIsCapturing])
		return CUDA_SUCCESS;
	if (WK_FN(cuStreamIsCapturing)((CUstream)stream, &cs) != CUDA_SUCCESS || cs == CU_STREAM_CAPTURE_STATUS_NONE)
		return CUDA_SUCCESS;
	VG_WARN("%s: a copy to or from pageable guest memory cannot be captured into a graph "
		"(use pinned memory): CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED", d->name);
	return CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED;
}

CUresult wk_generic(struct wk_thread *t, int fn, struct vg_rd *r, struct vg_buf *out)
{
	const struct vg_fn_desc *d = &vg_fn_descs[fn];
	struct wk_arg args[VG_ARGS_MAX];
	void *avalues[VG_ARGS_MAX];
	struct wk_lim_note note;
	ffi_cif *cif;
	ffi_arg rc = 0;
	uint64_t t0;
	CUresult res = CUDA_SUCCESS;
	int i;

	(void)t;
	if (!d->name || !d->generic || (d->cls != VG_CLASS_SYNC && d->cls != VG_CLASS_ASYNC &&
					d->cls != VG_CLASS_MANUAL))
		wk_fatal("call of function id %d, which is not callable generically", fn);
	if (d->nargs > VG_ARGS_MAX)
		wk_fatal("%s: too many arguments", d->name);
	/* Pass 1 reads the whole message even after a bad handle: the first error wins. */
	for (i = 0; i < d->nargs; i++) {
		const struct vg_arg_desc *ad = &d->args[i];
		struct wk_arg *a = &args[i];
		CUresult hres;

		memset(a, 0, sizeof(*a));	/* a constant size: plain stores, not a string op */
		avalues[i] = &a->v;
		switch (ad->kind) {
		case VG_A_SCALAR: {
			uint64_t v = vg_get_u64(r);

			switch (ad->elem_size) {
			case 1: a->v.u8 = (uint8_t)v; break;
			case 2: a->v.u16 = (uint16_t)v; break;
			case 4: a->v.u32 = (uint32_t)v; break;
			default: a->v.u64 = v; break;
			}
			break;
		}
		case VG_A_DEVICE:
			a->v.i32 = (int32_t)vg_get_u32(r);
			break;
		case VG_A_HANDLE:
			hres = wk_get_handle_id(r, ad->htype, &a->v.p, &a->id);
			if (res == CUDA_SUCCESS)
				res = hres;
			break;
		case VG_A_STR: {
			uint32_t n = 0;
			int is_null = 0;
			const char *s = vg_get_blob(r, VG_STR_MAX, &n, &is_null);

			if (r->err || (!is_null && (n == 0 || s[n - 1] != '\0')))
				wk_fatal("%s: malformed string argument %d", d->name, i);
			a->v.p = (void *)s;
			break;
		}
		case VG_A_IN:
		case VG_A_INOUT:
			read_in(d, i, r, a);
			break;
		case VG_A_OUT:
			read_out(d, i, r, a);
			break;
		default:
			wk_fatal("%s: argument %d cannot be decoded generically", d->name, i);
		}
		if (r->err)
			wk_fatal("%s: truncated call", d->name);
	}
	if (r->off != r->len)
		wk_fatal("%s: %zu trailing bytes", d->name, r->len - r->off);
	for (i = 0; i < d->nargs && res == CUDA_SUCCESS; i++) {
		if (d->args[i].kind == VG_A_IN || d->args[i].kind == VG_A_INOUT)
			res = decode_in(d, i, args);
		else if (d->args[i].kind == VG_A_OUT)
			res = decode_out(d, i, args, out);
	}
	if (res != CUDA_SUCCESS)
		goto out;
	if (!wk.fns[fn]) {
		res = CUDA_ERROR_NOT_SUPPORTED;
		goto out;
	}
	res = capture_guard(d, args);
	if (res != CUDA_SUCCESS)
		goto out;
	cif = get_cif(fn);
	if (!cif) {
		res = CUDA_ERROR_OUT_OF_MEMORY;
		goto out;
	}
	res = wk_limits_pre(fn, avalues, &note);
	if (res != CUDA_SUCCESS)
		goto out;
	t0 = wk_timing ? wk_ticks() : 0;
	ffi_call(cif, FFI_FN(wk.fns[fn]), &rc, avalues);
	if (wk_timing)
		wk_driver_ticks += wk_ticks() - t0;
	res = wk_limits_post(fn, avalues, (CUresult)(int32_t)rc, &note);
	if (res != CUDA_SUCCESS) {
		if (vg_log_enabled(VG_LOG_DEBUG))
			for (i = 0; i < d->nargs; i++) {
				if (d->args[i].kind == VG_A_STR && args[i].v.p)
					VG_DEBUG("%s(\"%.80s\") returned %d", d->name, (const char *)args[i].v.p, res);
				if (d->args[i].kind == VG_A_HANDLE)
					VG_DEBUG("%s: %s argument id %#llx (real %p) returned %d", d->name,
						 vg_htype_names[d->args[i].htype], (unsigned long long)args[i].id,
						 args[i].v.p, res);
			}
		goto out;
	}
	wk_count(fn);
	for (i = 0; i < d->nargs; i++) {
		const struct vg_arg_desc *ad = &d->args[i];

		if ((ad->kind == VG_A_OUT || ad->kind == VG_A_INOUT) && !args[i].null && !args[i].shared &&
		    !args[i].in_place)
			encode_out(d, i, &args[i], out);
		if (ad->kind == VG_A_HANDLE && (ad->flags & VG_ARG_DESTROY) &&
		    !handle_is_special(args[i].id, ad->htype))
			wk_handle_forget(args[i].id);
	}
out:
	for (i = 0; i < d->nargs; i++)
		arg_free(&args[i]);
	return res;
}
