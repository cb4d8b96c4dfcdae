/*
 * gen-corpus: writes the fuzzer's seed inputs (tests/fuzz/corpus/), one
 * small file each, in the form fuzz_host.c reads: messages back to back,
 * each a 32-byte header and its payload.
 *
 *   gen-corpus DIR
 *
 * The seeds are built by hand from the protocol's documentation: the
 * control messages (HELLO with forwarded variables, WELCOME, THREAD_OPEN,
 * ERROR, STATS, STATS_REPLY), one well-formed CALL for every function the
 * worker calls generically (arguments laid out from its descriptor, handles
 * as the ids the harness knows), and every hand-written operation.  Its
 * output is committed; run it again (and commit) when the protocol changes.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "g_api.h"
#include "vgpu/ops.h"
#include "vgpu/wire.h"

#define FUZZ_ID(htype) (0x1000u + 16u * (uint64_t)(htype))
#define COUNT 4		/* every count argument's value */

static const char *outdir;
static int written;

static void put_msg(struct vg_buf *file, uint16_t kind, uint32_t op, const struct vg_buf *payload)
{
	struct vg_hdr h = { .kind = kind, .op = op, .tid = kind == VG_MSG_CALL, .seq = 1 };
	uint8_t hb[VG_HDR_SIZE];

	h.len = VG_HDR_SIZE + (uint32_t)payload->len;
	vg_hdr_encode(&h, hb);
	vg_put_bytes(file, hb, sizeof(hb));
	vg_put_bytes(file, payload->p, payload->len);
}

static void save(const char *name, const struct vg_buf *file)
{
	char path[4096];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", outdir, name);
	f = fopen(path, "wb");
	if (!f || fwrite(file->p, 1, file->len, f) != file->len || fclose(f) != 0) {
		fprintf(stderr, "gen-corpus: %s: %s\n", path, strerror(errno));
		exit(1);
	}
	written++;
}

static void zeros(struct vg_buf *b, size_t n)
{
	void *p = vg_put_space(b, n);

	if (p)
		memset(p, 0, n);
}

/* One file holding one message. */
static void save_one(const char *name, uint16_t kind, uint32_t op, const struct vg_buf *payload)
{
	struct vg_buf file;

	vg_buf_init(&file);
	put_msg(&file, kind, op, payload);
	save(name, &file);
	vg_buf_fini(&file);
}

/* ---- control messages ----------------------------------------------------- */

static void control(void)
{
	static const char *env[] = { "CUDA_MODULE_LOADING=LAZY", "CUDA_DEVICE_ORDER=PCI_BUS_ID" };
	struct vg_hello hello = { .magic = VG_WIRE_MAGIC, .version = VG_WIRE_VERSION,
				  .min_version = VG_WIRE_VERSION, .caps = VG_CAP_ASYNC | VG_CAP_SHM,
				  .driver_version = 13000, .pid = 1234, .nenv = 2 };
	struct vg_welcome welcome = { .version = VG_WIRE_VERSION, .caps = VG_CAP_SHM,
				      .driver_version = 13000, .worker_pid = 99, .text = "refused", .ntext = 7 };
	struct vg_thread_open topen = { .guest_tid = 4321 };
	struct vg_thread_opened topened = { .tid = 2, .status = 0 };
	struct vg_error err = { .code = 3, .text = "bad", .ntext = 3 };
	struct vg_stat st[2] = { { VG_FN_cuMemAlloc_v2, 5 }, { VG_FN_cuInit, 1 } };
	struct vg_buf b;
	unsigned i;

	for (i = 0; i < 2; i++) {
		hello.env[i] = env[i];
		hello.env_len[i] = (uint32_t)strlen(env[i]);
	}
	vg_buf_init(&b);
	vg_hello_encode(&hello, &b);
	save_one("ctl-hello", VG_MSG_HELLO, 0, &b);
	vg_buf_reset(&b);
	vg_welcome_encode(&welcome, &b);
	save_one("ctl-welcome", VG_MSG_WELCOME, 0, &b);
	vg_buf_reset(&b);
	vg_thread_open_encode(&topen, &b);
	save_one("ctl-thread-open", VG_MSG_THREAD_OPEN, 0, &b);
	vg_buf_reset(&b);
	vg_thread_opened_encode(&topened, &b);
	save_one("ctl-thread-opened", VG_MSG_THREAD_OPENED, 0, &b);
	vg_buf_reset(&b);
	vg_error_encode(&err, &b);
	save_one("ctl-error", VG_MSG_ERROR, 0, &b);
	vg_buf_reset(&b);
	vg_stats_encode(&b);
	save_one("ctl-stats", VG_MSG_STATS, 0, &b);
	vg_buf_reset(&b);
	vg_stats_reply_encode(st, 2, &b);
	save_one("ctl-stats-reply", VG_MSG_STATS_REPLY, 0, &b);
	vg_buf_fini(&b);
}

/* ---- generic calls, from the descriptors ------------------------------------ */

static uint32_t wire_elem(const struct vg_arg_desc *ad)
{
	return ad->elem == VG_E_HANDLE ? 8 : ad->elem == VG_E_DEVICE ? 4 : ad->elem_size;
}

static uint64_t arg_count(const struct vg_arg_desc *ad)
{
	return ad->count_arg >= 0 ? COUNT : ad->count;
}

static int generic_call(int fn, struct vg_buf *b)
{
	const struct vg_fn_desc *d = &vg_fn_descs[fn];
	int is_count[VG_ARGS_MAX] = { 0 };
	int i;
	uint64_t j;

	for (i = 0; i < d->nargs; i++)
		if (d->args[i].count_arg >= 0 && d->args[i].count_arg < (int)VG_ARGS_MAX)
			is_count[d->args[i].count_arg] = 1;
	for (i = 0; i < d->nargs; i++) {
		const struct vg_arg_desc *ad = &d->args[i];
		uint64_t n = arg_count(ad);

		switch (ad->kind) {
		case VG_A_SCALAR:
			vg_put_u64(b, is_count[i] ? COUNT : 0);
			break;
		case VG_A_DEVICE:
			vg_put_u32(b, 0);
			break;
		case VG_A_HANDLE:
			vg_put_u64(b, FUZZ_ID(ad->htype));
			break;
		case VG_A_STR:
			vg_put_blob(b, "vg_fill", 8);
			break;
		case VG_A_IN:
		case VG_A_INOUT:
			vg_put_u32(b, (uint32_t)(n * wire_elem(ad)));
			for (j = 0; j < n; j++) {
				if (ad->elem == VG_E_HANDLE)
					vg_put_u64(b, FUZZ_ID(ad->htype));
				else if (ad->elem == VG_E_DEVICE)
					vg_put_u32(b, 0);
				else
					zeros(b, ad->elem_size);
			}
			break;
		case VG_A_OUT:
			vg_put_u32(b, (uint32_t)n);
			if (ad->elem == VG_E_HANDLE)
				for (j = 0; j < n; j++)
					vg_put_u64(b, 0x100000u + 16 * j + (uint64_t)i);
			break;
		default:
			return -1;
		}
	}
	return b->err ? -1 : 0;
}

static void generic(void)
{
	struct vg_buf b;
	char name[160];
	int fn;

	vg_buf_init(&b);
	for (fn = 1; fn < VG_FN_MAX; fn++) {
		const struct vg_fn_desc *d = &vg_fn_descs[fn];

		if (!d->name || !d->generic ||
		    (d->cls != VG_CLASS_SYNC && d->cls != VG_CLASS_ASYNC && d->cls != VG_CLASS_MANUAL))
			continue;
		vg_buf_reset(&b);
		if (generic_call(fn, &b) < 0)
			continue;
		snprintf(name, sizeof(name), "call-%s", d->name);
		save_one(name, VG_MSG_CALL, (uint32_t)fn, &b);
	}
	vg_buf_fini(&b);
}

/* ---- hand-written operations (payloads as the handlers document them) ------- */

static void image(struct vg_buf *b)
{
	static const char ptx[] = ".version 8.0\n.target sm_90\n.visible .entry vg_fill(\n)\n{\nret;\n}\n";

	vg_put_u32(b, VG_IMG_INLINE);
	vg_put_blob(b, ptx, sizeof(ptx));
	vg_put_u32(b, 0);
}

static void copy_side(struct vg_buf *b, uint32_t type, int three_d)
{
	vg_put_u32(b, type);
	vg_put_u64(b, type == CU_MEMORYTYPE_DEVICE ? 0x7f0000100000ull : 0);
	vg_put_u64(b, FUZZ_ID(VG_H_CUarray));
	vg_put_u64(b, 64);	/* pitch */
	vg_put_u64(b, 0);	/* x */
	vg_put_u64(b, 0);	/* y */
	if (three_d) {
		vg_put_u64(b, 0);	/* z */
		vg_put_u64(b, 0);	/* lod */
		vg_put_u64(b, 2);	/* height */
	}
}

static void memcpy_op(const char *name, int three_d, uint32_t src, uint32_t dst)
{
	struct vg_buf b;
	uint32_t w = 16, h = 2;

	vg_buf_init(&b);
	vg_put_u32(&b, 0);
	vg_put_u64(&b, 0);	/* the legacy stream */
	copy_side(&b, src, three_d);
	copy_side(&b, dst, three_d);
	vg_put_u64(&b, w);
	vg_put_u64(&b, h);
	if (three_d)
		vg_put_u64(&b, 1);
	if (src == CU_MEMORYTYPE_HOST) {
		vg_put_u32(&b, w * h);
		zeros(&b, w * h);
	}
	save_one(name, VG_MSG_CALL, three_d ? VG_OP_MEMCPY3D : VG_OP_MEMCPY2D, &b);
	vg_buf_fini(&b);
}

static void launch_op(int ex)
{
	struct vg_buf b;
	int i;

	vg_buf_init(&b);
	vg_put_u64(&b, FUZZ_ID(VG_H_CUfunction));
	for (i = 0; i < 6; i++)
		vg_put_u32(&b, i < 3 ? 2 : 32);
	vg_put_u32(&b, 0);
	vg_put_u64(&b, FUZZ_ID(VG_H_CUstream));
	if (ex) {
		vg_put_u32(&b, 2);
		vg_put_u32(&b, CU_LAUNCH_ATTRIBUTE_COOPERATIVE);
		zeros(&b, VG_LAUNCH_ATTR_BYTES);
		vg_put_u32(&b, CU_LAUNCH_ATTRIBUTE_LAUNCH_COMPLETION_EVENT);
		vg_put_u64(&b, FUZZ_ID(VG_H_CUevent));
		zeros(&b, VG_LAUNCH_ATTR_BYTES - 8);
	}
	vg_put_u32(&b, 16);
	vg_put_u64(&b, 0x7f0000100000ull);
	vg_put_u32(&b, 7);
	vg_put_u32(&b, 64);
	save_one(ex ? "op-launch-ex" : "op-launch", VG_MSG_CALL, ex ? VG_OP_LAUNCH_EX : VG_OP_LAUNCH, &b);
	vg_buf_fini(&b);
}

static void memloc_op(uint32_t which, const char *name)
{
	struct vg_buf b;

	vg_buf_init(&b);
	vg_put_u32(&b, which);
	switch (which) {
	case VG_ML_MEM_CREATE:
		vg_put_u64(&b, 2u << 20);
		vg_put_u64(&b, 0);
		zeros(&b, sizeof(CUmemAllocationProp));
		break;
	case VG_ML_GRANULARITY:
		vg_put_u32(&b, 0);
		zeros(&b, sizeof(CUmemAllocationProp));
		break;
	case VG_ML_SET_ACCESS:
		vg_put_u64(&b, 0x7f0000100000ull);
		vg_put_u64(&b, 2u << 20);
		vg_put_u32(&b, 1);
		zeros(&b, sizeof(CUmemAccessDesc));
		break;
	case VG_ML_GET_ACCESS:
		vg_put_u64(&b, 0x7f0000100000ull);
		zeros(&b, sizeof(CUmemLocation));
		break;
	case VG_ML_POOL_CREATE:
		vg_put_u64(&b, 0x200000);
		zeros(&b, sizeof(CUmemPoolProps));
		break;
	case VG_ML_POOL_SET_ACCESS:
		vg_put_u64(&b, FUZZ_ID(VG_H_CUmemoryPool));
		vg_put_u32(&b, 1);
		zeros(&b, sizeof(CUmemAccessDesc));
		break;
	case VG_ML_POOL_GET_ACCESS:
		vg_put_u64(&b, FUZZ_ID(VG_H_CUmemoryPool));
		zeros(&b, sizeof(CUmemLocation));
		break;
	case VG_ML_PROPS_FROM_HANDLE:
		vg_put_u64(&b, 0x1234);
		break;
	case VG_ML_ADVISE:
		vg_put_u64(&b, 0x7f0000100000ull);
		vg_put_u64(&b, 4096);
		vg_put_u32(&b, 1);
		zeros(&b, sizeof(CUmemLocation));
		break;
	case VG_ML_PREFETCH:
		vg_put_u64(&b, 0x7f0000100000ull);
		vg_put_u64(&b, 4096);
		zeros(&b, sizeof(CUmemLocation));
		vg_put_u32(&b, 0);
		vg_put_u64(&b, FUZZ_ID(VG_H_CUstream));
		break;
	}
	save_one(name, VG_MSG_CALL, VG_OP_MEMLOC, &b);
	vg_buf_fini(&b);
}

static void manual(void)
{
	struct vg_buf b;
	uint32_t i;

	vg_buf_init(&b);
	save_one("op-snapshot", VG_MSG_CALL, VG_OP_SNAPSHOT, &b);
	save_one("op-callback-channel", VG_MSG_CALL, VG_OP_CALLBACK_CHANNEL, &b);

	for (i = VG_MOD_DATA; i <= VG_MOD_FATBIN; i++) {
		char name[64];

		vg_buf_reset(&b);
		vg_put_u32(&b, i);
		vg_put_u64(&b, 0x300000);
		image(&b);
		snprintf(name, sizeof(name), "op-module-load-%u", i);
		save_one(name, VG_MSG_CALL, VG_OP_MODULE_LOAD, &b);
	}
	/* A version-2 wrapper with two fatbins. */
	vg_buf_reset(&b);
	vg_put_u32(&b, VG_MOD_FATBIN);
	vg_put_u64(&b, 0x300010);
	vg_put_u32(&b, VG_IMG_INLINE);
	vg_put_blob(&b, "wrapper", 8);
	vg_put_u32(&b, 2);
	vg_put_u32(&b, VG_IMG_INLINE);
	vg_put_blob(&b, "fatbin one", 11);
	vg_put_u32(&b, VG_IMG_CACHED);
	vg_put_bytes(&b, "0123456789abcdef0123456789abcdef", 32);
	vg_put_u32(&b, 1u << 20);
	save_one("op-module-load-wrapper", VG_MSG_CALL, VG_OP_MODULE_LOAD, &b);
	/* An image offered by hash alone (VG_IMG_CACHED). */
	vg_buf_reset(&b);
	vg_put_u32(&b, VG_MOD_DATA);
	vg_put_u64(&b, 0x300018);
	vg_put_u32(&b, VG_IMG_CACHED);
	vg_put_bytes(&b, "fedcba9876543210fedcba9876543210", 32);
	vg_put_u32(&b, 65536);
	vg_put_u32(&b, 0);
	save_one("op-module-load-cached", VG_MSG_CALL, VG_OP_MODULE_LOAD, &b);

	vg_buf_reset(&b);
	vg_put_u64(&b, 0x300020);
	image(&b);
	vg_put_u32(&b, 2);
	vg_put_blob(&b, "sym_a", 6);
	vg_put_u64(&b, 0x7f0000200000ull);
	vg_put_blob(&b, "sym_b", 6);
	vg_put_u64(&b, 0x7f0000200100ull);
	save_one("op-library-load", VG_MSG_CALL, VG_OP_LIBRARY_LOAD, &b);

	vg_buf_reset(&b);
	vg_put_u64(&b, FUZZ_ID(VG_H_CUfunction));
	save_one("op-func-info", VG_MSG_CALL, VG_OP_FUNC_INFO, &b);

	for (i = 0; i < 2; i++) {
		vg_buf_reset(&b);
		vg_put_u64(&b, FUZZ_ID(i ? VG_H_CUkernel : VG_H_CUfunction));
		vg_put_u32(&b, i);
		save_one(i ? "op-func-name-kernel" : "op-func-name", VG_MSG_CALL, VG_OP_FUNC_NAME, &b);
	}
	launch_op(0);
	launch_op(1);
	memcpy_op("op-memcpy2d-htod", 0, CU_MEMORYTYPE_HOST, CU_MEMORYTYPE_DEVICE);
	memcpy_op("op-memcpy2d-dtoh", 0, CU_MEMORYTYPE_DEVICE, CU_MEMORYTYPE_HOST);
	memcpy_op("op-memcpy2d-array", 0, CU_MEMORYTYPE_ARRAY, CU_MEMORYTYPE_DEVICE);
	memcpy_op("op-memcpy3d-htod", 1, CU_MEMORYTYPE_HOST, CU_MEMORYTYPE_DEVICE);
	memcpy_op("op-memcpy3d-dtoh", 1, CU_MEMORYTYPE_DEVICE, CU_MEMORYTYPE_HOST);

	for (i = 0; i < 2; i++) {
		vg_buf_reset(&b);
		vg_put_u32(&b, i ? VG_PA_CONTEXT : VG_PA_DEVICE_ORDINAL);
		vg_put_u64(&b, 0x7f0000100000ull);
		vg_put_u32(&b, i);
		save_one(i ? "op-pointer-attr-ctx" : "op-pointer-attr", VG_MSG_CALL, VG_OP_POINTER_ATTR, &b);
	}

	vg_buf_reset(&b);
	vg_put_u64(&b, FUZZ_ID(VG_H_CUfunction));
	vg_put_u64(&b, 0);
	vg_put_u32(&b, 1024);
	vg_put_u32(&b, 0);
	vg_put_u32(&b, 1);
	save_one("op-occ-blocksize", VG_MSG_CALL, VG_OP_OCC_BLOCKSIZE, &b);

	for (i = 0; i < 2; i++) {
		int k;

		vg_buf_reset(&b);
		vg_put_u32(&b, i);
		vg_put_u64(&b, FUZZ_ID(VG_H_CUfunction));
		for (k = 0; k < 6; k++)
			vg_put_u32(&b, 2);
		vg_put_u32(&b, 0);
		vg_put_u64(&b, 0);
		vg_put_u32(&b, 0);
		save_one(i ? "op-occ-clusters-size" : "op-occ-clusters", VG_MSG_CALL, VG_OP_OCC_CLUSTERS, &b);
	}

	vg_buf_reset(&b);
	vg_put_u32(&b, 0);
	save_one("op-primary-peek", VG_MSG_CALL, VG_OP_PRIMARY_PEEK, &b);

	/* Host functions come after the callback channel is open. */
	for (i = 0; i < 2; i++) {
		struct vg_buf file;

		vg_buf_init(&file);
		vg_buf_reset(&b);
		put_msg(&file, VG_MSG_CALL, VG_OP_CALLBACK_CHANNEL, &b);
		vg_put_u64(&b, FUZZ_ID(VG_H_CUstream));
		vg_put_u32(&b, i);
		vg_put_u64(&b, 0x401000);
		vg_put_u64(&b, 0x402000);
		vg_put_u32(&b, 0);
		put_msg(&file, VG_MSG_CALL, VG_OP_HOST_FUNC, &b);
		save(i ? "op-host-func-callback" : "op-host-func", &file);
		vg_buf_fini(&file);
	}

	for (i = 2; i <= 3; i++) {
		uint32_t ptsz;

		for (ptsz = 0; ptsz < 2; ptsz++) {
			char name[64];

			vg_buf_reset(&b);
			vg_put_u32(&b, i);
			vg_put_u32(&b, ptsz);
			vg_put_u64(&b, FUZZ_ID(VG_H_CUstream));
			snprintf(name, sizeof(name), "op-capture-info-v%u-%u", i, ptsz);
			save_one(name, VG_MSG_CALL, VG_OP_CAPTURE_INFO, &b);
		}
	}

	for (i = VG_HM_ALLOC; i <= VG_HM_DEVPTR; i++) {
		char name[64];

		vg_buf_reset(&b);
		vg_put_u32(&b, i);
		vg_put_u64(&b, 0x7f0000300000ull);
		if (i != VG_HM_FREE)
			vg_put_u32(&b, 0);
		snprintf(name, sizeof(name), "op-host-mem-%u", i);
		save_one(name, VG_MSG_CALL, VG_OP_HOST_MEM, &b);
	}

	for (i = VG_AV_POOL_GET; i <= VG_AV_GRAPHMEM_SET; i++) {
		char name[64];

		vg_buf_reset(&b);
		vg_put_u32(&b, i);
		if (i <= VG_AV_POOL_SET)
			vg_put_u64(&b, FUZZ_ID(VG_H_CUmemoryPool));
		else
			vg_put_u32(&b, 0);
		vg_put_u32(&b, i <= VG_AV_POOL_SET ? 4 : 1);	/* attributes with 8-byte values */
		if (i == VG_AV_POOL_SET || i == VG_AV_GRAPHMEM_SET)
			vg_put_u64(&b, 0);
		snprintf(name, sizeof(name), "op-attr-value-%u", i);
		save_one(name, VG_MSG_CALL, VG_OP_ATTR_VALUE, &b);
	}

	vg_buf_reset(&b);
	vg_put_u64(&b, FUZZ_ID(VG_H_CUgraphExec));
	vg_put_u64(&b, FUZZ_ID(VG_H_CUgraph));
	save_one("op-graph-update", VG_MSG_CALL, VG_OP_GRAPH_UPDATE, &b);

	vg_buf_reset(&b);
	vg_put_u32(&b, 1u << 20);
	save_one("op-ring-attach", VG_MSG_CALL, VG_OP_RING_ATTACH, &b);

	memloc_op(VG_ML_MEM_CREATE, "op-memloc-mem-create");
	memloc_op(VG_ML_GRANULARITY, "op-memloc-granularity");
	memloc_op(VG_ML_SET_ACCESS, "op-memloc-set-access");
	memloc_op(VG_ML_GET_ACCESS, "op-memloc-get-access");
	memloc_op(VG_ML_POOL_CREATE, "op-memloc-pool-create");
	memloc_op(VG_ML_POOL_SET_ACCESS, "op-memloc-pool-set-access");
	memloc_op(VG_ML_POOL_GET_ACCESS, "op-memloc-pool-get-access");
	memloc_op(VG_ML_PROPS_FROM_HANDLE, "op-memloc-props-from-handle");
	memloc_op(VG_ML_ADVISE, "op-memloc-advise");
	memloc_op(VG_ML_PREFETCH, "op-memloc-prefetch");
	vg_buf_fini(&b);
}

/* A short session: HELLO, a thread, an allocation, a copy, a launch, a free. */
static void session(void)
{
	struct vg_buf file, b;

	vg_buf_init(&file);
	vg_buf_init(&b);
	vg_put_u32(&b, VG_WIRE_MAGIC);
	vg_put_u16(&b, VG_WIRE_VERSION);
	vg_put_u16(&b, VG_WIRE_VERSION);
	vg_put_u64(&b, VG_CAP_SHM);
	vg_put_u32(&b, 13000);
	vg_put_u32(&b, 1);
	vg_put_u32(&b, 0);
	put_msg(&file, VG_MSG_HELLO, 0, &b);
	vg_buf_reset(&b);
	vg_put_u32(&b, 77);
	put_msg(&file, VG_MSG_THREAD_OPEN, 0, &b);
	vg_buf_reset(&b);
	put_msg(&file, VG_MSG_CALL, VG_OP_SNAPSHOT, &b);
	vg_buf_reset(&b);
	generic_call(VG_FN_cuMemAlloc_v2, &b);
	put_msg(&file, VG_MSG_CALL, VG_FN_cuMemAlloc_v2, &b);
	vg_buf_reset(&b);
	generic_call(VG_FN_cuMemcpyHtoD_v2, &b);
	put_msg(&file, VG_MSG_CALL, VG_FN_cuMemcpyHtoD_v2, &b);
	vg_buf_reset(&b);
	generic_call(VG_FN_cuStreamCreate, &b);
	put_msg(&file, VG_MSG_CALL, VG_FN_cuStreamCreate, &b);
	vg_buf_reset(&b);
	generic_call(VG_FN_cuMemFree_v2, &b);
	put_msg(&file, VG_MSG_CALL, VG_FN_cuMemFree_v2, &b);
	save("session-small", &file);
	vg_buf_fini(&b);
	vg_buf_fini(&file);
}

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: gen-corpus DIR\n");
		return 2;
	}
	outdir = argv[1];
	control();
	generic();
	manual();
	session();
	printf("gen-corpus: %d inputs written to %s\n", written, outdir);
	return 0;
}
